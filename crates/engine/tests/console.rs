//! The console's services on real databases (SQLite and PostgreSQL): the setup link,
//! invitations and who may send them, sign-in behind the shared throttle, the TOTP second
//! factor (with its replay refusal), sessions' idle and absolute expiry, suspension, the
//! dashboard's figures, search and the underpayment tolerance.

#![allow(clippy::unwrap_used, clippy::expect_used)] // tests fail loudly by design

use std::str::FromStr;
use std::sync::Arc;

use coffer_core::{AssetId, Cause, OrderStatus};
use coffer_engine::console::accounts::{SESSION_IDLE, SESSION_MAX, SignIn};
use coffer_engine::console::{Access, ConsoleRole, access, totp};
use coffer_engine::logins::{LoginRefusal, LoginThrottle};
use coffer_engine::{Engine, EngineError, ManualClock, NewOrder};
use coffer_secrets::MasterKey;
use coffer_testkit::{TestDb, both_backends, fixtures};
use rust_decimal::Decimal;
use time::Duration;
use time::macros::datetime;

fn setup(db: &TestDb) -> (Engine, Arc<ManualClock>) {
    let clock = Arc::new(ManualClock::new(datetime!(2026-05-01 10:00 UTC)));
    (fixtures::bsc_shop_engine(db, clock.clone()), clock)
}

const PASSWORD: &str = "correct horse battery staple";
/// A wallet the test deriver takes (`0xab…` addresses).
const WALLET: &str = "ab";

async fn setup_link_invitations_and_roles(db: &TestDb) {
    let (e, clock) = setup(db);
    assert!(e.console_needs_setup().await.unwrap());
    let first = e.console_setup_token().await.unwrap();
    let second = e.console_setup_token().await.unwrap();
    // Only the newest setup link works.
    assert!(e.console_invitation(&first).await.unwrap().is_none());
    let invite = e.console_invitation(&second).await.unwrap().unwrap();
    assert_eq!(invite.role, ConsoleRole::Operator);
    // Bad usernames and short passwords are refused before the link is used.
    for (name, pw, code) in [
        ("x", PASSWORD, "invalid_username"),
        ("has space", PASSWORD, "invalid_username"),
        ("root", "short", "invalid_password"),
    ] {
        let err = e
            .accept_console_invitation(&second, name, pw, None)
            .await
            .unwrap_err();
        assert_eq!(err.code(), code);
    }
    let root = e
        .accept_console_invitation(&second, "Root", PASSWORD, Some("test".into()))
        .await
        .unwrap();
    assert_eq!(root.user.username, "root");
    assert_eq!(root.user.role, ConsoleRole::Operator);
    assert!(root.user.password_hash.starts_with("$argon2id$"));
    assert!(matches!(
        e.accept_console_invitation(&second, "again", PASSWORD, None)
            .await,
        Err(EngineError::NotFound(_))
    ));
    // Setup is over for good.
    assert!(!e.console_needs_setup().await.unwrap());
    assert_eq!(
        e.console_setup_token().await.unwrap_err().code(),
        "setup_done"
    );

    // The operator invites an owner of a merchant; the owner invites staff of it only.
    let (shop, _) = e.create_merchant("Shop").await.unwrap();
    let (other, _) = e.create_merchant("Other").await.unwrap();
    let t = e
        .console_invite(&root.user, ConsoleRole::Owner, Some(&shop.id))
        .await
        .unwrap();
    let owner = e
        .accept_console_invitation(&t, "alice", PASSWORD, None)
        .await
        .unwrap()
        .user;
    assert_eq!(owner.merchant_id.as_ref(), Some(&shop.id));
    assert_eq!(access(&owner, &shop.id), Access::Write);
    assert_eq!(access(&owner, &other.id), Access::None);
    assert_eq!(access(&root.user, &other.id), Access::Write);
    let t = e
        .console_invite(&owner, ConsoleRole::Staff, Some(&shop.id))
        .await
        .unwrap();
    let staff = e
        .accept_console_invitation(&t, "bob", PASSWORD, None)
        .await
        .unwrap()
        .user;
    assert_eq!(access(&staff, &shop.id), Access::Read);
    for (by, role, merchant) in [
        (&owner, ConsoleRole::Owner, Some(&other.id)),
        (&owner, ConsoleRole::Operator, None),
        (&staff, ConsoleRole::Staff, Some(&shop.id)),
    ] {
        let err = e.console_invite(by, role, merchant).await.unwrap_err();
        assert_eq!(err.code(), "forbidden", "{} {role}", by.username);
    }
    // A taken username keeps the invitation for another try.
    let t = e
        .console_invite(&owner, ConsoleRole::Staff, Some(&shop.id))
        .await
        .unwrap();
    assert_eq!(
        e.accept_console_invitation(&t, "BOB", PASSWORD, None)
            .await
            .unwrap_err()
            .code(),
        "username_taken"
    );
    assert!(e.console_invitation(&t).await.unwrap().is_some());
    // Invitations expire after 7 days.
    clock.advance(Duration::days(7));
    assert!(e.console_invitation(&t).await.unwrap().is_none());

    // Owners disable their staff (sessions end), not themselves, not other merchants' users.
    let t2 = e
        .console_invite(&root.user, ConsoleRole::Owner, Some(&other.id))
        .await
        .unwrap();
    let carol = e
        .accept_console_invitation(&t2, "carol", PASSWORD, None)
        .await
        .unwrap();
    assert_eq!(
        e.set_console_user_disabled(&owner, Some(&shop.id), &owner.id, true)
            .await
            .unwrap_err()
            .code(),
        "forbidden"
    );
    assert!(matches!(
        e.set_console_user_disabled(&owner, Some(&other.id), &carol.user.id, true)
            .await,
        Err(EngineError::NotFound(_))
    ));
    assert!(matches!(
        e.set_console_user_disabled(&owner, Some(&shop.id), &carol.user.id, true)
            .await,
        Err(EngineError::NotFound(_))
    ));
    assert!(e.console_session(&carol.token).await.unwrap().is_some());
    e.set_console_user_disabled(&root.user, Some(&other.id), &carol.user.id, true)
        .await
        .unwrap();
    assert!(e.console_session(&carol.token).await.unwrap().is_none());
}

async fn sign_in_throttle_and_second_factor(db: &TestDb) {
    let (e, clock) = setup(db);
    let master = MasterKey::from_bytes([5; 32]);
    let throttle = LoginThrottle::default();
    let token = e.console_setup_token().await.unwrap();
    let root = e
        .accept_console_invitation(&token, "root", PASSWORD, None)
        .await
        .unwrap();

    let signed = |r: SignIn| match r {
        SignIn::Signed(s) => s,
        other => panic!("not signed in: {other:?}"),
    };
    let s = signed(
        e.console_sign_in(&throttle, " ROOT ", PASSWORD, None)
            .await
            .unwrap(),
    );
    assert_eq!(s.user.id, root.user.id);
    assert!(e.console_session(&s.token).await.unwrap().is_some());
    assert!(e.console_session("nonsense").await.unwrap().is_none());

    // Five wrong passwords lock the username, even against the right one.
    for _ in 0..LoginThrottle::MAX_FAILURES {
        assert!(matches!(
            e.console_sign_in(&throttle, "root", "wrong password!!", None)
                .await
                .unwrap(),
            SignIn::Wrong
        ));
    }
    assert!(matches!(
        e.console_sign_in(&throttle, "root", PASSWORD, None)
            .await
            .unwrap(),
        SignIn::Refused(LoginRefusal::Locked { .. })
    ));
    // Unknown users look like wrong passwords.
    assert!(matches!(
        e.console_sign_in(&throttle, "nobody", PASSWORD, None)
            .await
            .unwrap(),
        SignIn::Wrong
    ));

    // TOTP: enrol with a code from the secret, then sign-in asks for a code.
    let throttle = LoginThrottle::default();
    let secret = e.new_totp_secret();
    let bytes = totp::decode_secret(&secret).unwrap();
    let now = || e.now().unix_timestamp();
    let wrong = if totp::code_at(&bytes, now()) == "000000" {
        "111111"
    } else {
        "000000"
    };
    assert_eq!(
        e.enable_console_totp(&master, &root.user, &secret, wrong)
            .await
            .unwrap_err()
            .code(),
        "wrong_code"
    );
    e.enable_console_totp(&master, &root.user, &secret, &totp::code_at(&bytes, now()))
        .await
        .unwrap();
    let half = match e
        .console_sign_in(&throttle, "root", PASSWORD, None)
        .await
        .unwrap()
    {
        SignIn::SecondFactor(h) => h,
        other => panic!("expected the second factor, got {other:?}"),
    };
    // A half session opens no page.
    assert!(e.console_session(&half.token).await.unwrap().is_none());
    assert!(e.console_half_session(&half.token).await.unwrap().is_some());
    // The code used to enrol cannot be replayed.
    let replay = totp::code_at(&bytes, now());
    assert!(matches!(
        e.console_second_factor(&throttle, &master, &half.token, &replay, None)
            .await
            .unwrap(),
        SignIn::Wrong
    ));
    clock.advance(Duration::seconds(30));
    let full = signed(
        e.console_second_factor(
            &throttle,
            &master,
            &half.token,
            &totp::code_at(&bytes, now()),
            None,
        )
        .await
        .unwrap(),
    );
    assert_ne!(
        full.token, half.token,
        "a new token after the second factor"
    );
    assert!(e.console_half_session(&half.token).await.unwrap().is_none());
    assert!(e.console_session(&full.token).await.unwrap().is_some());
    // Turning it off asks for a current code.
    let fresh = e.console_session(&full.token).await.unwrap().unwrap().1;
    assert!(
        e.disable_console_totp(&master, &fresh, "123456")
            .await
            .is_err()
    );
    clock.advance(Duration::seconds(30));
    e.disable_console_totp(&master, &fresh, &totp::code_at(&bytes, now()))
        .await
        .unwrap();
    assert!(matches!(
        e.console_sign_in(&throttle, "root", PASSWORD, None)
            .await
            .unwrap(),
        SignIn::Signed(_)
    ));

    // Idle expiry, kept open by use, and the absolute limit.
    let s = signed(
        e.console_sign_in(&throttle, "root", PASSWORD, None)
            .await
            .unwrap(),
    );
    let mut used = Duration::ZERO;
    while used + SESSION_IDLE - Duration::hours(1) < SESSION_MAX - Duration::hours(8) {
        clock.advance(SESSION_IDLE - Duration::hours(1));
        used += SESSION_IDLE - Duration::hours(1);
        assert!(
            e.console_session(&s.token).await.unwrap().is_some(),
            "after {used}"
        );
    }
    clock.advance(Duration::hours(8));
    assert!(
        e.console_session(&s.token).await.unwrap().is_none(),
        "no session outlives {SESSION_MAX}"
    );
    let idle = signed(
        e.console_sign_in(&throttle, "root", PASSWORD, None)
            .await
            .unwrap(),
    );
    clock.advance(SESSION_IDLE);
    assert!(e.console_session(&idle.token).await.unwrap().is_none());

    // Changing the password ends the other sessions; sign out everywhere ends all.
    let a = signed(
        e.console_sign_in(&throttle, "root", PASSWORD, None)
            .await
            .unwrap(),
    );
    let b = signed(
        e.console_sign_in(&throttle, "root", PASSWORD, None)
            .await
            .unwrap(),
    );
    let new = "another long passphrase";
    assert_eq!(
        e.change_console_password(&a.user, &a.session.token_hash, "wrong", new)
            .await
            .unwrap_err()
            .code(),
        "wrong_password"
    );
    e.change_console_password(&a.user, &a.session.token_hash, PASSWORD, new)
        .await
        .unwrap();
    assert!(e.console_session(&a.token).await.unwrap().is_some());
    assert!(e.console_session(&b.token).await.unwrap().is_none());
    assert!(matches!(
        e.console_sign_in(&throttle, "root", PASSWORD, None)
            .await
            .unwrap(),
        SignIn::Wrong
    ));
    assert_eq!(e.console_sign_out_everywhere(&a.user.id).await.unwrap(), 1);
    assert!(e.console_session(&a.token).await.unwrap().is_none());
}

async fn suspension_refuses_keys_and_users(db: &TestDb) {
    let (e, _) = setup(db);
    let throttle = LoginThrottle::default();
    let token = e.console_setup_token().await.unwrap();
    let root = e
        .accept_console_invitation(&token, "root", PASSWORD, None)
        .await
        .unwrap();
    let (shop, key) = e.create_merchant("Shop").await.unwrap();
    let t = e
        .console_invite(&root.user, ConsoleRole::Owner, Some(&shop.id))
        .await
        .unwrap();
    let owner = e
        .accept_console_invitation(&t, "alice", PASSWORD, None)
        .await
        .unwrap();
    assert!(e.authenticate(&key.token).await.is_ok());
    e.set_merchant_suspended(&shop.id, true).await.unwrap();
    assert!(
        e.merchant_suspended_since(&shop.id)
            .await
            .unwrap()
            .is_some()
    );
    assert!(matches!(
        e.authenticate(&key.token).await,
        Err(EngineError::Unauthorized)
    ));
    assert!(e.console_session(&owner.token).await.unwrap().is_none());
    assert!(matches!(
        e.console_sign_in(&throttle, "alice", PASSWORD, None)
            .await
            .unwrap(),
        SignIn::Disabled
    ));
    // Operators are not a merchant's users.
    assert!(e.console_session(&root.token).await.unwrap().is_some());
    e.set_merchant_suspended(&shop.id, false).await.unwrap();
    assert!(e.authenticate(&key.token).await.is_ok());
    assert!(e.console_session(&owner.token).await.unwrap().is_some());
}

async fn dashboard_search_and_tolerance(db: &TestDb) {
    let (e, clock) = setup(db);
    let (shop, _) = e.create_merchant("Shop").await.unwrap();
    e.set_wallet(&shop.id, "bsc", WALLET).await.unwrap();
    let usdt = AssetId::from_str("bsc:USDT").unwrap();
    let order = |no: &str| NewOrder {
        amount: Decimal::from(10),
        currency: "USD".into(),
        asset: Some(usdt.clone()),
        order_no: Some(no.into()),
        dialect: "native".into(),
        ..NewOrder::default()
    };
    let a = e.create_order(&shop.id, order("A-1")).await.unwrap().order;
    clock.advance(Duration::days(2));
    let b = e.create_order(&shop.id, order("A-2")).await.unwrap().order;
    e.manual_action(&shop.id, &b.id, Cause::MarkSettled, None)
        .await
        .unwrap();
    let d = e.console_dashboard(&shop.id, 7).await.unwrap();
    assert_eq!(d.days.len(), 7);
    assert_eq!(d.orders_per_day.iter().sum::<u64>(), 2);
    assert_eq!(d.orders_per_day[6], 1, "today");
    assert_eq!(d.orders_per_day[4], 1, "two days ago");
    assert_eq!(d.counts["pending"], 1);
    assert_eq!(d.counts["settled"], 1);
    assert_eq!(d.counts["refunded"], 0);
    // Marked settled without payment: counted as settled, nothing received.
    assert_eq!(d.volume[&usdt].settled_orders, 1);
    assert!(d.volume[&usdt].total.is_zero());
    let one_day = e.console_dashboard(&shop.id, 1).await.unwrap();
    assert_eq!(one_day.counts["pending"], 0);

    // Search: by number, id and address; nothing by a substring.
    let by_no = e.search_orders(&shop.id, "A-1").await.unwrap();
    assert_eq!(by_no.iter().map(|o| &o.id).collect::<Vec<_>>(), [&a.id]);
    let by_id = e.search_orders(&shop.id, b.id.as_str()).await.unwrap();
    assert_eq!(by_id[0].id, b.id);
    let address = a.target.as_ref().unwrap().address.to_uppercase();
    assert_eq!(
        e.search_orders(&shop.id, &address).await.unwrap()[0].id,
        a.id
    );
    assert!(e.search_orders(&shop.id, "A-").await.unwrap().is_empty());
    let (other, _) = e.create_merchant("Other").await.unwrap();
    assert!(e.search_orders(&other.id, "A-1").await.unwrap().is_empty());

    // Tolerance: 0 to 50 percent, two decimals.
    let m = e
        .set_underpayment_tolerance(&shop.id, Decimal::from_str("0.5").unwrap())
        .await
        .unwrap();
    assert_eq!(
        m.policy.underpayment_tolerance_percent,
        Decimal::from_str("0.5").unwrap()
    );
    for bad in ["-1", "50.01", "0.001"] {
        assert_eq!(
            e.set_underpayment_tolerance(&shop.id, Decimal::from_str(bad).unwrap())
                .await
                .unwrap_err()
                .code(),
            "invalid_tolerance"
        );
    }
    let c = e.create_order(&shop.id, order("A-3")).await.unwrap().order;
    assert_eq!(
        c.policy.underpayment_tolerance_percent,
        Decimal::from_str("0.5").unwrap()
    );
    assert_eq!(c.state.status, OrderStatus::Pending);

    // The wallet preview derives what orders will get.
    let p = e.wallet_preview("bsc", WALLET).unwrap();
    assert_eq!(p.addresses.len(), 3);
    assert_eq!(p.addresses[0].0, 0);
    assert_eq!(
        e.wallet_preview("nochain", "x").unwrap_err().code(),
        "unknown_chain"
    );
}

both_backends! {
    console_setup_link_invitations_and_roles => setup_link_invitations_and_roles;
    console_sign_in_throttle_and_second_factor => sign_in_throttle_and_second_factor;
    console_suspension_refuses_keys_and_users => suspension_refuses_keys_and_users;
    console_dashboard_search_and_tolerance => dashboard_search_and_tolerance;
}
