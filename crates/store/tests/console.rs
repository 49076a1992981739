//! The web console's storage (migration 0025) on SQLite and PostgreSQL: users, sessions,
//! invitations, the audit log, suspensions, and the pages' lists, searches and dashboard —
//! including their query plans over enough rows that a full scan would show.

#![allow(clippy::unwrap_used, clippy::expect_used)] // tests fail loudly by design

use std::str::FromStr;

use coffer_core::order::{Derivation, OrderLinks};
use coffer_core::{
    AssetId, BaseUnits, CheckoutToken, EventId, EventType, LockedRate, MatchStatus, Merchant,
    MerchantId, Order, OrderId, OrderState, OrderStatus, Payment, PaymentId, PaymentStatus,
    PaymentTarget, Price, SettlementPolicy, StatusReason, Totals,
};
use coffer_store::{
    AuditRecord, Changeset, ConsoleInviteRecord, ConsoleOrderQuery, ConsoleRole,
    ConsoleSessionRecord, ConsoleUserRecord, ListCursor, SessionStage, StoreError, Unique,
    WebhookBacklog,
};
use coffer_testkit::{TestDb, both_backends};
use rust_decimal::Decimal;
use time::macros::datetime;
use time::{Duration, OffsetDateTime};

const T0: OffsetDateTime = datetime!(2026-03-01 12:00:00.123 UTC);

fn rnd16() -> [u8; 16] {
    let mut b = [0u8; 16];
    getrandom::fill(&mut b).unwrap();
    b
}

async fn seed_merchant(db: &TestDb, name: &str) -> MerchantId {
    let m = Merchant {
        id: MerchantId::from_random(rnd16()),
        name: name.into(),
        policy: SettlementPolicy::default(),
        created_at: T0,
    };
    db.store
        .commit(Changeset {
            new_merchants: vec![m.clone()],
            ..Changeset::default()
        })
        .await
        .unwrap();
    m.id
}

fn user(name: &str, role: ConsoleRole, merchant: Option<&MerchantId>) -> ConsoleUserRecord {
    ConsoleUserRecord {
        id: format!("usr_{}", hex::encode(rnd16())),
        username: name.into(),
        password_hash: "$argon2id$v=19$m=19456,t=2,p=1$c2FsdA$aGFzaA".into(),
        role,
        merchant_id: merchant.cloned(),
        totp_secret: None,
        totp_last_step: None,
        created_at: T0,
        updated_at: T0,
        disabled_at: None,
    }
}

async fn users_and_totp_steps(db: &TestDb) {
    let s = &db.store;
    let m = seed_merchant(db, "Alpha").await;
    let op = user("root", ConsoleRole::Operator, None);
    let owner = user("alice", ConsoleRole::Owner, Some(&m));
    let mut staff = user("bob", ConsoleRole::Staff, Some(&m));
    for u in [&op, &owner, &staff] {
        s.insert_console_user(u).await.unwrap();
    }
    let twin = user("alice", ConsoleRole::Staff, Some(&m));
    assert!(matches!(
        s.insert_console_user(&twin).await,
        Err(StoreError::Duplicate(Unique::Username))
    ));
    assert_eq!(
        s.find_console_user("alice").await.unwrap(),
        Some(owner.clone())
    );
    assert_eq!(s.get_console_user(&op.id).await.unwrap(), Some(op.clone()));
    assert_eq!(s.find_console_user("nobody").await.unwrap(), None);
    let ids = |v: Vec<ConsoleUserRecord>| v.into_iter().map(|u| u.username).collect::<Vec<_>>();
    assert_eq!(ids(s.list_console_users(Some(&m)).await.unwrap()).len(), 2);
    assert_eq!(ids(s.list_console_users(None).await.unwrap()), ["root"]);
    assert_eq!(s.count_operators().await.unwrap(), 1);

    staff.password_hash = "$argon2id$new".into();
    staff.totp_secret = Some("sealed".into());
    staff.updated_at = T0 + Duration::minutes(1);
    staff.disabled_at = Some(T0 + Duration::minutes(2));
    assert!(s.update_console_user(&staff).await.unwrap());
    assert_eq!(
        s.get_console_user(&staff.id).await.unwrap(),
        Some(staff.clone())
    );
    let ghost = user("ghost", ConsoleRole::Staff, Some(&m));
    assert!(!s.update_console_user(&ghost).await.unwrap());

    // a TOTP step is accepted once, and never an earlier one
    assert!(s.use_totp_step(&staff.id, 100).await.unwrap());
    assert!(!s.use_totp_step(&staff.id, 100).await.unwrap());
    assert!(!s.use_totp_step(&staff.id, 99).await.unwrap());
    assert!(s.use_totp_step(&staff.id, 101).await.unwrap());
    assert_eq!(
        s.get_console_user(&staff.id)
            .await
            .unwrap()
            .unwrap()
            .totp_last_step,
        Some(101)
    );
    // a disabled operator does not count
    let mut op2 = user("root2", ConsoleRole::Operator, None);
    op2.disabled_at = Some(T0);
    s.insert_console_user(&op2).await.unwrap();
    assert_eq!(s.count_operators().await.unwrap(), 1);
}

fn session(
    user: &ConsoleUserRecord,
    token: &str,
    expires_at: OffsetDateTime,
) -> ConsoleSessionRecord {
    ConsoleSessionRecord {
        token_hash: token.into(),
        user_id: user.id.clone(),
        csrf: format!("csrf-{token}"),
        stage: SessionStage::Full,
        client: Some("127.0.0.1 · Chromium".into()),
        created_at: T0,
        last_seen_at: T0,
        expires_at,
    }
}

async fn sessions_expire_and_end(db: &TestDb) {
    let s = &db.store;
    let m = seed_merchant(db, "Alpha").await;
    let alice = user("alice", ConsoleRole::Owner, Some(&m));
    s.insert_console_user(&alice).await.unwrap();
    let a = session(&alice, "hash-a", T0 + Duration::hours(8));
    let mut b = session(&alice, "hash-b", T0 + Duration::hours(8));
    b.stage = SessionStage::SecondFactor;
    let c = session(&alice, "hash-c", T0 + Duration::minutes(5));
    for x in [&a, &b, &c] {
        s.insert_console_session(x).await.unwrap();
    }
    let (found, who) = s.console_session("hash-b", T0).await.unwrap().unwrap();
    assert_eq!((found, who), (b.clone(), alice.clone()));
    assert_eq!(s.console_session("hash-x", T0).await.unwrap(), None);
    // expired at its expiry
    assert_eq!(
        s.console_session("hash-c", T0 + Duration::minutes(5))
            .await
            .unwrap(),
        None
    );
    s.touch_console_session("hash-c", T0 + Duration::minutes(4), T0 + Duration::hours(1))
        .await
        .unwrap();
    let (c2, _) = s
        .console_session("hash-c", T0 + Duration::minutes(5))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(c2.last_seen_at, T0 + Duration::minutes(4));
    assert_eq!(
        s.list_console_sessions(&alice.id, T0).await.unwrap().len(),
        3
    );
    // logout everywhere but here
    assert_eq!(
        s.delete_console_sessions(&alice.id, Some("hash-a"))
            .await
            .unwrap(),
        2
    );
    assert!(s.console_session("hash-a", T0).await.unwrap().is_some());
    assert!(s.console_session("hash-b", T0).await.unwrap().is_none());
    assert!(s.delete_console_session("hash-a").await.unwrap());
    assert!(!s.delete_console_session("hash-a").await.unwrap());
    // purge removes what expired
    s.insert_console_session(&session(&alice, "old", T0))
        .await
        .unwrap();
    s.insert_console_session(&session(&alice, "new", T0 + Duration::days(1)))
        .await
        .unwrap();
    assert_eq!(s.purge_console_sessions(T0).await.unwrap(), 1);
    assert_eq!(
        s.list_console_sessions(&alice.id, T0).await.unwrap().len(),
        1
    );
}

fn invite(token: &str, role: ConsoleRole, merchant: Option<&MerchantId>) -> ConsoleInviteRecord {
    ConsoleInviteRecord {
        token_hash: token.into(),
        role,
        merchant_id: merchant.cloned(),
        created_by: None,
        created_at: T0,
        expires_at: T0 + Duration::days(1),
    }
}

async fn invitations_are_used_once(db: &TestDb) {
    let s = &db.store;
    let m = seed_merchant(db, "Alpha").await;
    let setup = invite("setup", ConsoleRole::Operator, None);
    let mut staff = invite("staff", ConsoleRole::Staff, Some(&m));
    staff.created_by = Some("usr_x".into());
    s.insert_console_invite(&setup).await.unwrap();
    s.insert_console_invite(&staff).await.unwrap();
    assert_eq!(
        s.console_invite("setup", T0).await.unwrap(),
        Some(setup.clone())
    );
    assert_eq!(
        s.console_invite("setup", T0 + Duration::days(1))
            .await
            .unwrap(),
        None,
        "expired"
    );
    assert_eq!(
        s.list_console_invites(Some(&m), T0).await.unwrap(),
        vec![staff.clone()]
    );
    assert_eq!(
        s.list_console_invites(None, T0).await.unwrap(),
        vec![setup.clone()]
    );

    let root = user("root", ConsoleRole::Operator, None);
    assert!(
        !s.accept_console_invite("setup", &root, T0 + Duration::days(2))
            .await
            .unwrap(),
        "an expired invitation is not accepted"
    );
    assert!(s.accept_console_invite("setup", &root, T0).await.unwrap());
    assert_eq!(
        s.find_console_user("root").await.unwrap(),
        Some(root.clone())
    );
    let again = user("root-again", ConsoleRole::Operator, None);
    assert!(!s.accept_console_invite("setup", &again, T0).await.unwrap());
    assert_eq!(s.find_console_user("root-again").await.unwrap(), None);
    // a taken username fails the whole acceptance: the invitation stays
    let taken = user("root", ConsoleRole::Staff, Some(&m));
    assert!(matches!(
        s.accept_console_invite("staff", &taken, T0).await,
        Err(StoreError::Duplicate(Unique::Username))
    ));
    assert!(s.console_invite("staff", T0).await.unwrap().is_some());
    // withdrawn only by its own merchant
    let other = seed_merchant(db, "Beta").await;
    assert!(
        !s.delete_console_invite(Some(&other), "staff")
            .await
            .unwrap()
    );
    assert!(!s.delete_console_invite(None, "staff").await.unwrap());
    assert!(s.delete_console_invite(Some(&m), "staff").await.unwrap());
    // setup links are replaced, invitations by operators are not
    s.insert_console_invite(&invite("s1", ConsoleRole::Operator, None))
        .await
        .unwrap();
    let mut by_op = invite("s2", ConsoleRole::Operator, None);
    by_op.created_by = Some(root.id.clone());
    s.insert_console_invite(&by_op).await.unwrap();
    assert_eq!(s.delete_setup_invites().await.unwrap(), 1);
    assert_eq!(s.list_console_invites(None, T0).await.unwrap(), vec![by_op]);
}

async fn audit_log_and_suspensions(db: &TestDb) {
    let s = &db.store;
    let a = seed_merchant(db, "Alpha").await;
    let b = seed_merchant(db, "Beta").await;
    for i in 0..5 {
        s.insert_audit(&AuditRecord {
            seq: 0,
            at: T0 + Duration::seconds(i),
            user_id: Some("usr_1".into()),
            username: "alice".into(),
            merchant_id: Some(if i % 2 == 0 { a.clone() } else { b.clone() }),
            action: format!("test.{i}"),
            subject: Some("key_1".into()),
            detail: Some("détail ✓".into()),
            client: Some("127.0.0.1".into()),
        })
        .await
        .unwrap();
    }
    let all = s.list_audit(None, None, 10).await.unwrap();
    assert_eq!(
        all.iter().map(|e| e.action.as_str()).collect::<Vec<_>>(),
        ["test.4", "test.3", "test.2", "test.1", "test.0"]
    );
    assert_eq!(all[0].detail.as_deref(), Some("détail ✓"));
    let of_a = s.list_audit(Some(&a), None, 2).await.unwrap();
    assert_eq!(
        of_a.iter().map(|e| e.action.as_str()).collect::<Vec<_>>(),
        ["test.4", "test.2"]
    );
    let next = s.list_audit(Some(&a), Some(of_a[1].seq), 2).await.unwrap();
    assert_eq!(
        next.iter().map(|e| e.action.as_str()).collect::<Vec<_>>(),
        ["test.0"]
    );

    assert_eq!(s.merchant_suspended(&a).await.unwrap(), None);
    assert!(s.set_merchant_suspended(&a, Some(T0)).await.unwrap());
    assert_eq!(s.merchant_suspended(&a).await.unwrap(), Some(T0));
    assert_eq!(
        s.suspended_merchants().await.unwrap(),
        vec![(a.clone(), T0)]
    );
    assert!(s.set_merchant_suspended(&a, None).await.unwrap());
    assert_eq!(s.merchant_suspended(&a).await.unwrap(), None);
    let ghost = MerchantId::from_random(rnd16());
    assert!(!s.set_merchant_suspended(&ghost, Some(T0)).await.unwrap());
    // still a merchant like any other
    assert_eq!(s.get_merchant(&a).await.unwrap().unwrap().name, "Alpha");

    let mut without = s.merchants_without_wallet().await.unwrap();
    without.sort();
    let mut expected = vec![a.clone(), b.clone()];
    expected.sort();
    assert_eq!(without, expected);
    s.set_wallet(
        &a,
        &coffer_core::ChainId::parse("bsc").unwrap(),
        "xpub-a",
        T0,
    )
    .await
    .unwrap();
    assert_eq!(s.merchants_without_wallet().await.unwrap(), vec![b]);
}

fn order(
    merchant: &MerchantId,
    asset: &str,
    status: OrderStatus,
    reason: StatusReason,
    received: u128,
    created_at: OffsetDateTime,
) -> Order {
    Order {
        id: OrderId::from_random(rnd16()),
        merchant_id: merchant.clone(),
        order_no: Some(format!("N-{}", hex::encode(&rnd16()[..4]))),
        checkout_token: CheckoutToken::from_random([rnd16(), rnd16()].concat().try_into().unwrap()),
        state: OrderState { status, reason },
        amount: Decimal::from(10),
        currency: "USD".into(),
        fixed_stablecoin_rate: true,
        target: Some(PaymentTarget {
            asset: AssetId::from_str(asset).unwrap(),
            amount_due: BaseUnits::new(10),
            address: format!("0x{}", hex::encode(&[rnd16(), rnd16()].concat()[..20]))
                .to_uppercase()
                .replacen("0X", "0x", 1),
            derivation: Some(Derivation {
                index: 0,
                path: "m/0".into(),
            }),
            rate: LockedRate {
                price: Price::new(Decimal::ONE).unwrap(),
                source: "peg".into(),
                at: created_at,
            },
            details: Default::default(),
        }),
        totals: Totals {
            confirmed: BaseUnits::new(received),
            ..Totals::default()
        },
        policy: SettlementPolicy::default(),
        description: None,
        metadata: Default::default(),
        links: OrderLinks::default(),
        dialect: "native".into(),
        credential_id: None,
        expires_at: created_at + Duration::minutes(30),
        monitor_until: created_at + Duration::hours(24),
        created_at,
        updated_at: created_at,
        version: 1,
        dialect_data: Default::default(),
        lock_window: Duration::minutes(30),
    }
}

fn payment(o: &Order, txid: &str) -> Payment {
    let t = o.target.as_ref().unwrap();
    Payment {
        id: PaymentId::from_random(rnd16()),
        order_id: o.id.clone(),
        merchant_id: o.merchant_id.clone(),
        asset: t.asset.clone(),
        amount: t.amount_due,
        txid: txid.into(),
        output_index: 0,
        from_address: None,
        to_address: t.address.clone(),
        block_height: Some(1),
        block_hash: Some("0xb".into()),
        confirmations: 1,
        status: PaymentStatus::Confirmed,
        match_status: MatchStatus::Matched,
        late: false,
        occurred_at: o.created_at,
        detected_at: o.created_at,
        updated_at: o.created_at,
        details: Default::default(),
    }
}

fn event_for(o: &Order) -> coffer_core::Event {
    coffer_core::Event {
        id: EventId::from_random(rnd16()),
        merchant_id: o.merchant_id.clone(),
        kind: EventType::OrderCreated,
        subject: o.id.to_string(),
        data: serde_json::json!({"object": {"id": o.id}}),
        created_at: o.created_at,
    }
}

async fn orders_list_filters_pages_and_searches(db: &TestDb) {
    let s = &db.store;
    let a = seed_merchant(db, "Alpha").await;
    let b = seed_merchant(db, "Beta").await;
    use OrderStatus::*;
    use StatusReason as R;
    let mut all = Vec::new();
    // 30 orders of A over three days, several sharing a created_at (ties broken by id)
    for i in 0..30i64 {
        let (status, reason) = match i % 3 {
            0 => (Settled, R::None),
            1 => (Pending, R::PaidPartial),
            _ => (Expired, R::None),
        };
        let asset = if i % 2 == 0 { "bsc:USDT" } else { "eth:ETH" };
        let at = T0 + Duration::hours(i / 2 * 5);
        all.push(order(&a, asset, status, reason, 1, at));
    }
    let other = order(&b, "bsc:USDT", Settled, R::None, 1, T0);
    let mut changes = Changeset {
        new_orders: all.clone(),
        ..Changeset::default()
    };
    changes.new_orders.push(other.clone());
    changes.events = all.iter().map(event_for).collect();
    changes.payments = vec![payment(&all[3], "0xFEED01"), payment(&other, "0xfeed02")];
    s.commit(changes).await.unwrap();

    // newest first, complete and stable over keyset pages
    let mut seen = Vec::new();
    let mut after: Option<ListCursor> = None;
    loop {
        let page = s
            .console_orders(&ConsoleOrderQuery {
                merchant_id: Some(a.clone()),
                after: after.clone(),
                limit: 7,
                ..ConsoleOrderQuery::default()
            })
            .await
            .unwrap();
        if page.is_empty() {
            break;
        }
        let last = page.last().unwrap();
        after = Some(ListCursor {
            created_at: last.created_at,
            id: last.id.to_string(),
        });
        seen.extend(page.into_iter().map(|o| o.id));
    }
    let mut expected = all.clone();
    expected.sort_by(|x, y| (y.created_at, &y.id).cmp(&(x.created_at, &x.id)));
    assert_eq!(
        seen,
        expected.iter().map(|o| o.id.clone()).collect::<Vec<_>>()
    );

    let count = |q: ConsoleOrderQuery| async move {
        s.console_orders(&ConsoleOrderQuery { limit: 100, ..q })
            .await
            .unwrap()
    };
    let base = || ConsoleOrderQuery {
        merchant_id: Some(a.clone()),
        ..ConsoleOrderQuery::default()
    };
    assert_eq!(
        count(ConsoleOrderQuery {
            status: Some(Settled),
            ..base()
        })
        .await
        .len(),
        10
    );
    let partial = count(ConsoleOrderQuery {
        reason: Some(R::PaidPartial),
        ..base()
    })
    .await;
    assert!(partial.len() == 10 && partial.iter().all(|o| o.state.status == Pending));
    let eth = count(ConsoleOrderQuery {
        asset: "eth:ETH".parse().ok(),
        ..base()
    })
    .await;
    assert_eq!(eth.len(), 15);
    let day = count(ConsoleOrderQuery {
        created_from: Some(T0),
        created_to: Some(T0 + Duration::hours(10)),
        ..base()
    })
    .await;
    assert_eq!(day.len(), 4, "hours 0, 0, 5, 5");
    assert!(
        count(ConsoleOrderQuery {
            status: Some(Settled),
            asset: "bsc:USDT".parse().ok(),
            ..base()
        })
        .await
        .iter()
        .all(|o| o.state.status == Settled
            && o.target.as_ref().unwrap().asset.to_string() == "bsc:USDT")
    );
    // no merchant: nothing, never everyone's
    assert!(count(ConsoleOrderQuery::default()).await.is_empty());

    // search by address in any case; another merchant's address finds nothing
    let addr = all[5].target.as_ref().unwrap().address.clone();
    let found = s.orders_by_address(&a, &addr.to_lowercase()).await.unwrap();
    assert_eq!(
        found.iter().map(|o| &o.id).collect::<Vec<_>>(),
        [&all[5].id]
    );
    let theirs = other.target.as_ref().unwrap().address.clone();
    assert!(s.orders_by_address(&a, &theirs).await.unwrap().is_empty());
    assert_eq!(s.orders_by_address(&b, &theirs).await.unwrap().len(), 1);
    // by transaction hash, any case
    let found = s.orders_by_txid(&a, "0xfeed01").await.unwrap();
    assert_eq!(
        found.iter().map(|o| &o.id).collect::<Vec<_>>(),
        [&all[3].id]
    );
    assert!(s.orders_by_txid(&a, "0xFEED02").await.unwrap().is_empty());

    // an order's events, scoped
    assert_eq!(s.order_events(&a, &all[0].id).await.unwrap().len(), 1);
    assert!(s.order_events(&b, &all[0].id).await.unwrap().is_empty());
    assert!(s.order_deliveries(&a, &all[0].id).await.unwrap().is_empty());
}

async fn dashboard_sums_are_exact(db: &TestDb) {
    let s = &db.store;
    let a = seed_merchant(db, "Alpha").await;
    let b = seed_merchant(db, "Beta").await;
    use OrderStatus::*;
    let big = u128::MAX / 4;
    let day0 = T0.replace_time(time::Time::MIDNIGHT);
    let orders = vec![
        order(&a, "bsc:USDT", Settled, StatusReason::None, big, day0),
        order(
            &a,
            "bsc:USDT",
            Settled,
            StatusReason::PaidOver,
            big,
            day0 + Duration::hours(3),
        ),
        order(
            &a,
            "bsc:USDT",
            Settled,
            StatusReason::None,
            7,
            day0 + Duration::hours(23),
        ),
        order(
            &a,
            "bsc:USDT",
            Settled,
            StatusReason::None,
            19_990_000_000_000_000_000,
            day0 + Duration::days(1),
        ),
        order(
            &a,
            "eth:ETH",
            Pending,
            StatusReason::None,
            0,
            day0 + Duration::days(1),
        ),
        order(
            &a,
            "eth:ETH",
            Pending,
            StatusReason::None,
            0,
            day0 + Duration::days(40),
        ),
        order(&b, "bsc:USDT", Settled, StatusReason::None, 1, day0),
    ];
    s.commit(Changeset {
        new_orders: orders,
        ..Changeset::default()
    })
    .await
    .unwrap();
    let mut rows = s
        .order_stats(&a, day0, day0 + Duration::days(30))
        .await
        .unwrap();
    rows.sort_by_key(|r| {
        (
            r.day,
            r.status.as_str(),
            r.asset.as_ref().map(|x| x.to_string()),
        )
    });
    let d0 = day0.unix_timestamp() / 86_400;
    let got: Vec<(i64, &str, String, u64, u128)> = rows
        .iter()
        .map(|r| {
            (
                r.day - d0,
                r.status.as_str(),
                r.asset.as_ref().unwrap().to_string(),
                r.count,
                r.received.get(),
            )
        })
        .collect();
    assert_eq!(
        got,
        vec![
            (0, "settled", "bsc:USDT".to_owned(), 3, big * 2 + 7),
            (1, "pending", "eth:ETH".to_owned(), 1, 0),
            (
                1,
                "settled",
                "bsc:USDT".to_owned(),
                1,
                19_990_000_000_000_000_000
            ),
        ]
    );
}

async fn backlog_of_an_empty_server(db: &TestDb) {
    assert_eq!(
        db.store.webhook_backlog().await.unwrap(),
        WebhookBacklog::default()
    );
}

/// Many orders, payments, events, deliveries, payouts and deposits written straight with SQL
/// (testkit's volume), then the plans of every list and search: none may read a whole big
/// table or sort all of a merchant's orders.
async fn every_list_uses_an_index(db: &TestDb) {
    let mut merchants = Vec::new();
    for i in 0..40 {
        merchants.push(seed_merchant(db, &format!("M{i}")).await);
    }
    let volume = coffer_testkit::sql_volume::Volume {
        orders: 40_000,
        merchants: merchants.clone(),
        start_ms: T0.unix_timestamp() * 1000,
        step_ms: 60_000,
    };
    coffer_testkit::sql_volume::write(db.url.as_deref(), &db.dir.path().join("coffer.db"), &volume)
        .await
        .unwrap();
    let sqlite = db.kind() == "sqlite";
    let plans = db
        .store
        .console_query_plans(&merchants[3], T0 + Duration::days(20))
        .await
        .unwrap();
    assert!(plans.len() >= 15);
    let big = [
        "orders",
        "payments",
        "events",
        "order_addresses",
        "webhook_deliveries",
        "payout_requests",
        "deposits",
        "deposit_accounts",
    ];
    for (name, plan) in &plans {
        eprintln!("{name}:\n{plan}\n");
        for line in plan.lines() {
            let line = line.trim();
            for table in big {
                if sqlite {
                    // `SCAN t` reads the whole table; `SCAN t USING INDEX` walks an index whole.
                    assert!(
                        !line.starts_with(&format!("SCAN {table}"))
                            || line.contains("COVERING INDEX console_"),
                        "{name} scans {table}: {plan}"
                    );
                } else {
                    assert!(
                        !line.contains(&format!("Seq Scan on {table} ")),
                        "{name} scans {table}: {plan}"
                    );
                }
            }
            // A page of a list comes off an index in order; a search or an order's details
            // sort only the few rows they found.
            let list = !(name.starts_with("search") || name.starts_with("order "));
            assert!(
                !(list && line.contains("USE TEMP B-TREE FOR ORDER BY")),
                "{name} sorts every row: {plan}"
            );
        }
    }
}

both_backends! {
    console_users_and_totp_steps => users_and_totp_steps;
    console_sessions_expire_and_end => sessions_expire_and_end;
    console_invitations_are_used_once => invitations_are_used_once;
    console_audit_log_and_suspensions => audit_log_and_suspensions;
    console_orders_list_filters_pages_and_searches => orders_list_filters_pages_and_searches;
    console_dashboard_sums_are_exact => dashboard_sums_are_exact;
    console_backlog_of_an_empty_server => backlog_of_an_empty_server;
    console_every_list_uses_an_index => every_list_uses_an_index;
}
