//! Console accounts: the first operator's setup link, invitations, sign-in with the shared
//! login throttle and an optional TOTP second factor, sessions (hashed tokens, idle and
//! absolute expiry), passwords, users, the audit log and suspended merchants.

use coffer_core::MerchantId;
use coffer_core::ids::base32;
use coffer_secrets::MasterKey;
use coffer_store::{
    AuditRecord, ConsoleInviteRecord, ConsoleRole, ConsoleSessionRecord, ConsoleUserRecord,
    SessionStage, StoreError, Unique,
};
use sha2::{Digest, Sha256};
use time::{Duration, OffsetDateTime};

use super::totp;
use crate::logins::{LoginRefusal, LoginThrottle, MIN_PASSWORD_LEN, hash_password, verify_hash};
use crate::{Engine, EngineError, random16, random32};

/// A session ends after this long without a request.
pub const SESSION_IDLE: Duration = Duration::hours(8);
/// … and this long after sign-in, whatever happens.
pub const SESSION_MAX: Duration = Duration::days(7);
/// Time to type the TOTP code after the password.
pub const SECOND_FACTOR_WINDOW: Duration = Duration::minutes(5);
/// The first operator's setup link stays valid this long.
pub const SETUP_LINK_VALID: Duration = Duration::hours(24);
/// An invitation stays valid this long.
pub const INVITE_VALID: Duration = Duration::days(7);
/// A session's last use is written at most this often.
const TOUCH_EVERY: Duration = Duration::minutes(1);

/// SHA-256 (hex) of a session or invitation token: what the store keeps.
pub fn token_hash(token: &str) -> String {
    hex::encode(Sha256::digest(token.as_bytes()))
}

/// A fresh 256-bit token, URL-safe.
fn new_token() -> String {
    base32(&random32())
}

/// A signed-in (or half signed-in) session: the token for the cookie, shown once.
#[derive(Clone)]
pub struct OpenedSession {
    pub token: String,
    pub session: ConsoleSessionRecord,
    pub user: ConsoleUserRecord,
}

impl std::fmt::Debug for OpenedSession {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("OpenedSession")
            .field("token", &"[redacted]")
            .field("user", &self.user.username)
            .finish_non_exhaustive()
    }
}

/// What a sign-in attempt came to.
#[derive(Debug)]
pub enum SignIn {
    /// Not even checked: too many failures for this username, or too many sign-ins at once.
    Refused(LoginRefusal),
    /// Wrong username or password (the two look the same).
    Wrong,
    /// The password was right but the account is disabled or its merchant suspended.
    Disabled,
    /// The password was right; the TOTP code comes next, on this half session.
    SecondFactor(OpenedSession),
    /// Signed in.
    Signed(OpenedSession),
}

/// Who is acting in the console, for permissions and the audit log.
pub type Actor = ConsoleUserRecord;

/// What a user may do with a merchant's pages.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Access {
    None,
    Read,
    Write,
}

/// A user's access to `merchant`'s pages: operators and the merchant's owners write, its
/// staff read, everyone else has none (and gets the same 404 as for a missing page).
pub fn access(user: &ConsoleUserRecord, merchant: &MerchantId) -> Access {
    match user.role {
        ConsoleRole::Operator => Access::Write,
        _ if user.merchant_id.as_ref() != Some(merchant) => Access::None,
        ConsoleRole::Owner => Access::Write,
        ConsoleRole::Staff => Access::Read,
    }
}

fn forbidden(message: &str) -> EngineError {
    EngineError::Conflict {
        code: "forbidden",
        message: message.into(),
    }
}

/// A username as stored: trimmed, lower case; 3 to 64 of `a-z 0-9 . _ @ -`.
pub fn normalize_username(raw: &str) -> Result<String, EngineError> {
    let name = raw.trim().to_lowercase();
    let ok = (3..=64).contains(&name.len())
        && name
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b".-_@".contains(&b));
    if ok {
        Ok(name)
    } else {
        Err(EngineError::invalid(
            "invalid_username",
            "username",
            "the username must be 3 to 64 letters, digits or . _ @ -",
        ))
    }
}

fn check_password(password: &str) -> Result<(), EngineError> {
    if password.chars().count() < MIN_PASSWORD_LEN || password.len() > 1024 {
        return Err(EngineError::invalid(
            "invalid_password",
            "password",
            format!("the password must be {MIN_PASSWORD_LEN} to 1024 characters"),
        ));
    }
    Ok(())
}

/// Argon2id on a blocking thread (it takes tens of milliseconds on purpose).
async fn hash_blocking(password: &str) -> Result<String, EngineError> {
    let password = password.to_owned();
    tokio::task::spawn_blocking(move || hash_password(&password))
        .await
        .map_err(|e| EngineError::Store(StoreError::Database(format!("password hash: {e}"))))?
}

fn seal_error(e: impl std::fmt::Display) -> EngineError {
    EngineError::Store(StoreError::Database(format!("sealing a TOTP secret: {e}")))
}

impl Engine {
    // ---- setup and invitations -----------------------------------------------------------

    /// Whether no operator can sign in yet: the first start offers the setup link.
    pub async fn console_needs_setup(&self) -> Result<bool, EngineError> {
        Ok(self.store.count_operators().await? == 0)
    }

    /// A new one-time link token that makes its holder the first operator; earlier setup
    /// links stop working. Refused once an operator exists (then operators invite).
    pub async fn console_setup_token(&self) -> Result<String, EngineError> {
        if !self.console_needs_setup().await? {
            return Err(EngineError::Conflict {
                code: "setup_done",
                message: "an operator exists already: operators invite further users in the \
                          console"
                    .into(),
            });
        }
        self.store.delete_setup_invites().await?;
        let token = new_token();
        let now = self.now();
        self.store
            .insert_console_invite(&ConsoleInviteRecord {
                token_hash: token_hash(&token),
                role: ConsoleRole::Operator,
                merchant_id: None,
                created_by: None,
                created_at: now,
                expires_at: now + SETUP_LINK_VALID,
            })
            .await?;
        Ok(token)
    }

    /// Invite someone as `role` (of `merchant` for owners and staff): a one-time link token.
    /// Operators invite anyone; a merchant's owners invite owners and staff of their merchant.
    pub async fn console_invite(
        &self,
        by: &Actor,
        role: ConsoleRole,
        merchant: Option<&MerchantId>,
    ) -> Result<String, EngineError> {
        match (role, merchant) {
            (ConsoleRole::Operator, None) if by.role == ConsoleRole::Operator => {}
            (ConsoleRole::Owner | ConsoleRole::Staff, Some(m))
                if access(by, m) == Access::Write =>
            {
                if self.store.get_merchant(m).await?.is_none() {
                    return Err(EngineError::NotFound("merchant"));
                }
            }
            (ConsoleRole::Operator, Some(_)) | (ConsoleRole::Owner | ConsoleRole::Staff, None) => {
                return Err(EngineError::invalid(
                    "invalid_role",
                    "role",
                    "operators have no merchant; owners and staff have one",
                ));
            }
            _ => return Err(forbidden("you may not invite this user")),
        }
        let token = new_token();
        let now = self.now();
        self.store
            .insert_console_invite(&ConsoleInviteRecord {
                token_hash: token_hash(&token),
                role,
                merchant_id: merchant.cloned(),
                created_by: Some(by.id.clone()),
                created_at: now,
                expires_at: now + INVITE_VALID,
            })
            .await?;
        Ok(token)
    }

    /// The open invitation a link token names (`None`: unknown, used or expired).
    pub async fn console_invitation(
        &self,
        token: &str,
    ) -> Result<Option<ConsoleInviteRecord>, EngineError> {
        if token.is_empty() || token.len() > 128 {
            return Ok(None);
        }
        Ok(self
            .store
            .console_invite(&token_hash(token), self.now())
            .await?)
    }

    /// Open invitations: a merchant's, or with `None` the operators'.
    pub async fn console_invitations(
        &self,
        merchant: Option<&MerchantId>,
    ) -> Result<Vec<ConsoleInviteRecord>, EngineError> {
        Ok(self
            .store
            .list_console_invites(merchant, self.now())
            .await?)
    }

    /// Withdraw an open invitation of `merchant` (or an operator invitation) by its hash.
    pub async fn withdraw_console_invitation(
        &self,
        by: &Actor,
        merchant: Option<&MerchantId>,
        token_hash: &str,
    ) -> Result<(), EngineError> {
        let allowed = match merchant {
            Some(m) => access(by, m) == Access::Write,
            None => by.role == ConsoleRole::Operator,
        };
        if !allowed {
            return Err(forbidden("you may not withdraw this invitation"));
        }
        if self
            .store
            .delete_console_invite(merchant, token_hash)
            .await?
        {
            Ok(())
        } else {
            Err(EngineError::NotFound("invitation"))
        }
    }

    /// Become the user an invitation offers, with a username and password of one's own, and
    /// sign in. The invitation is used up in the same transaction that creates the user.
    pub async fn accept_console_invitation(
        &self,
        token: &str,
        username: &str,
        password: &str,
        client: Option<String>,
    ) -> Result<OpenedSession, EngineError> {
        let username = normalize_username(username)?;
        check_password(password)?;
        let invite = self
            .console_invitation(token)
            .await?
            .ok_or(EngineError::NotFound("invitation"))?;
        let now = self.now();
        let user = ConsoleUserRecord {
            id: format!("usr_{}", base32(&random16())),
            username,
            password_hash: hash_blocking(password).await?,
            role: invite.role,
            merchant_id: invite.merchant_id,
            totp_secret: None,
            totp_last_step: None,
            created_at: now,
            updated_at: now,
            disabled_at: None,
        };
        match self
            .store
            .accept_console_invite(&invite.token_hash, &user, now)
            .await
        {
            Ok(true) => {}
            Ok(false) => return Err(EngineError::NotFound("invitation")),
            Err(StoreError::Duplicate(Unique::Username)) => {
                return Err(EngineError::Conflict {
                    code: "username_taken",
                    message: "this username is taken: choose another".into(),
                });
            }
            Err(e) => return Err(e.into()),
        }
        self.open_session(user, SessionStage::Full, client).await
    }

    // ---- signing in --------------------------------------------------------------------

    /// Check a username and password behind `throttle` (the same guard as every login: five
    /// failures per username in 15 minutes lock it; two hashes at a time). With TOTP on, the
    /// answer is a half session that only [`Engine::console_second_factor`] completes.
    pub async fn console_sign_in(
        &self,
        throttle: &LoginThrottle,
        username: &str,
        password: &str,
        client: Option<String>,
    ) -> Result<SignIn, EngineError> {
        let name = username.trim().to_lowercase();
        let checked = throttle
            .run(&name, password, |permit| async {
                let user = self.store.find_console_user(&name).await?;
                let phc = user.as_ref().map(|u| u.password_hash.clone());
                let ok = verify_hash(phc, password, Some(permit)).await;
                Ok(user.filter(|_| ok))
            })
            .await?;
        let user = match checked {
            Err(refusal) => return Ok(SignIn::Refused(refusal)),
            Ok(None) => return Ok(SignIn::Wrong),
            Ok(Some(user)) => user,
        };
        if !self.console_user_active(&user).await? {
            return Ok(SignIn::Disabled);
        }
        if user.totp_secret.is_some() {
            let half = self
                .open_session(user, SessionStage::SecondFactor, client)
                .await?;
            return Ok(SignIn::SecondFactor(half));
        }
        Ok(SignIn::Signed(
            self.open_session(user, SessionStage::Full, client).await?,
        ))
    }

    /// Complete a sign-in with the TOTP code: the half session ends and a new full one (a new
    /// token) begins. A code is accepted once; failures count against the username in
    /// `throttle` like wrong passwords.
    pub async fn console_second_factor(
        &self,
        throttle: &LoginThrottle,
        master: &MasterKey,
        half_token: &str,
        code: &str,
        client: Option<String>,
    ) -> Result<SignIn, EngineError> {
        let Some((session, user)) = self.session_row(half_token).await? else {
            return Ok(SignIn::Wrong);
        };
        if session.stage != SessionStage::SecondFactor {
            return Ok(SignIn::Wrong);
        }
        if let Err(refusal) = throttle.check(&user.username, std::time::Instant::now()) {
            return Ok(SignIn::Refused(refusal));
        }
        let ok = self.check_totp(master, &user, code).await?;
        throttle.record(&user.username, ok, std::time::Instant::now());
        if !ok {
            return Ok(SignIn::Wrong);
        }
        self.store
            .delete_console_session(&session.token_hash)
            .await?;
        if !self.console_user_active(&user).await? {
            return Ok(SignIn::Disabled);
        }
        Ok(SignIn::Signed(
            self.open_session(user, SessionStage::Full, client).await?,
        ))
    }

    /// Whether `code` is the user's current TOTP code, not used before (it is used now).
    async fn check_totp(
        &self,
        master: &MasterKey,
        user: &ConsoleUserRecord,
        code: &str,
    ) -> Result<bool, EngineError> {
        let Some(sealed) = &user.totp_secret else {
            return Ok(false);
        };
        let secret = master.open(sealed).map_err(seal_error)?;
        let Some(bytes) = totp::decode_secret(&secret) else {
            return Ok(false);
        };
        let Some(step) = totp::matching_step(&bytes, code, self.now().unix_timestamp()) else {
            return Ok(false);
        };
        Ok(self.store.use_totp_step(&user.id, step).await?)
    }

    /// Not disabled, and (owners and staff) their merchant not suspended.
    async fn console_user_active(&self, user: &ConsoleUserRecord) -> Result<bool, EngineError> {
        if user.disabled_at.is_some() {
            return Ok(false);
        }
        match &user.merchant_id {
            Some(m) => Ok(self.store.merchant_suspended(m).await?.is_none()),
            None => Ok(true),
        }
    }

    async fn open_session(
        &self,
        user: ConsoleUserRecord,
        stage: SessionStage,
        client: Option<String>,
    ) -> Result<OpenedSession, EngineError> {
        let token = new_token();
        let now = self.now();
        let session = ConsoleSessionRecord {
            token_hash: token_hash(&token),
            user_id: user.id.clone(),
            csrf: base32(&random32()),
            stage,
            client: client.map(|c| c.chars().take(200).collect()),
            created_at: now,
            last_seen_at: now,
            expires_at: now
                + match stage {
                    SessionStage::Full => SESSION_IDLE,
                    SessionStage::SecondFactor => SECOND_FACTOR_WINDOW,
                },
        };
        self.store.insert_console_session(&session).await?;
        Ok(OpenedSession {
            token,
            session,
            user,
        })
    }

    async fn session_row(
        &self,
        token: &str,
    ) -> Result<Option<(ConsoleSessionRecord, ConsoleUserRecord)>, EngineError> {
        if token.is_empty() || token.len() > 128 {
            return Ok(None);
        }
        Ok(self
            .store
            .console_session(&token_hash(token), self.now())
            .await?)
    }

    /// The signed-in session a cookie's token opens, and its user (`None`: no such session,
    /// expired, half signed-in, user disabled or merchant suspended). Using a session keeps it
    /// open for [`SESSION_IDLE`] more, up to [`SESSION_MAX`] after sign-in.
    pub async fn console_session(
        &self,
        token: &str,
    ) -> Result<Option<(ConsoleSessionRecord, ConsoleUserRecord)>, EngineError> {
        let Some((mut session, user)) = self.session_row(token).await? else {
            return Ok(None);
        };
        if session.stage != SessionStage::Full || !self.console_user_active(&user).await? {
            return Ok(None);
        }
        let now = self.now();
        if now - session.last_seen_at >= TOUCH_EVERY {
            let expires = (now + SESSION_IDLE).min(session.created_at + SESSION_MAX);
            self.store
                .touch_console_session(&session.token_hash, now, expires)
                .await?;
            session.last_seen_at = now;
            session.expires_at = expires;
        }
        Ok(Some((session, user)))
    }

    /// A half session (password right, TOTP code still to come), for the code's page.
    pub async fn console_half_session(
        &self,
        token: &str,
    ) -> Result<Option<(ConsoleSessionRecord, ConsoleUserRecord)>, EngineError> {
        Ok(self
            .session_row(token)
            .await?
            .filter(|(s, _)| s.stage == SessionStage::SecondFactor))
    }

    /// End one session, named by its token's hash (sign out here).
    pub async fn console_sign_out_hash(&self, token_hash: &str) -> Result<(), EngineError> {
        self.store.delete_console_session(token_hash).await?;
        Ok(())
    }

    /// End every session of a user, this one included (sign out everywhere).
    pub async fn console_sign_out_everywhere(&self, user_id: &str) -> Result<u64, EngineError> {
        Ok(self.store.delete_console_sessions(user_id, None).await?)
    }

    /// A user's open sessions, newest first.
    pub async fn console_sessions(
        &self,
        user_id: &str,
    ) -> Result<Vec<ConsoleSessionRecord>, EngineError> {
        Ok(self
            .store
            .list_console_sessions(user_id, self.now())
            .await?)
    }

    /// Delete expired sessions (a background sweep).
    pub async fn purge_console_sessions(&self) -> Result<u64, EngineError> {
        Ok(self.store.purge_console_sessions(self.now()).await?)
    }

    // ---- one's own account -------------------------------------------------------------

    /// Change one's password (the current one is asked again); every other session ends.
    pub async fn change_console_password(
        &self,
        user: &ConsoleUserRecord,
        current_session_hash: &str,
        current: &str,
        new: &str,
    ) -> Result<(), EngineError> {
        check_password(new)?;
        if !verify_hash(Some(user.password_hash.clone()), current, None).await {
            return Err(EngineError::invalid(
                "wrong_password",
                "current_password",
                "the current password is not right",
            ));
        }
        let mut next = self.fresh_user(user).await?;
        next.password_hash = hash_blocking(new).await?;
        next.updated_at = self.now();
        self.store.update_console_user(&next).await?;
        self.store
            .delete_console_sessions(&user.id, Some(current_session_hash))
            .await?;
        Ok(())
    }

    async fn fresh_user(&self, user: &ConsoleUserRecord) -> Result<ConsoleUserRecord, EngineError> {
        self.store
            .get_console_user(&user.id)
            .await?
            .ok_or(EngineError::NotFound("user"))
    }

    /// A new TOTP secret (base32) to show as a QR code; nothing is stored until
    /// [`Engine::enable_console_totp`] confirms a code from it.
    pub fn new_totp_secret(&self) -> String {
        let mut bytes = [0u8; totp::SECRET_LEN];
        bytes.copy_from_slice(&random32()[..totp::SECRET_LEN]);
        totp::encode_secret(&bytes)
    }

    /// Turn the second factor on with `secret` once `code` proves the app has it.
    pub async fn enable_console_totp(
        &self,
        master: &MasterKey,
        user: &ConsoleUserRecord,
        secret: &str,
        code: &str,
    ) -> Result<(), EngineError> {
        let bytes = totp::decode_secret(secret)
            .ok_or_else(|| EngineError::invalid("invalid_secret", "secret", "not a TOTP secret"))?;
        let step =
            totp::matching_step(&bytes, code, self.now().unix_timestamp()).ok_or_else(|| {
                EngineError::invalid(
                    "wrong_code",
                    "code",
                    "the code does not match: try the next one",
                )
            })?;
        let mut next = self.fresh_user(user).await?;
        next.totp_secret = Some(
            master
                .seal(&totp::encode_secret(&bytes))
                .map_err(seal_error)?,
        );
        next.updated_at = self.now();
        self.store.update_console_user(&next).await?;
        self.store.use_totp_step(&user.id, step).await?;
        Ok(())
    }

    /// Turn the second factor off; a current code is asked first.
    pub async fn disable_console_totp(
        &self,
        master: &MasterKey,
        user: &ConsoleUserRecord,
        code: &str,
    ) -> Result<(), EngineError> {
        let fresh = self.fresh_user(user).await?;
        if !self.check_totp(master, &fresh, code).await? {
            return Err(EngineError::invalid(
                "wrong_code",
                "code",
                "the code does not match: try the next one",
            ));
        }
        let mut next = fresh;
        next.totp_secret = None;
        next.updated_at = self.now();
        self.store.update_console_user(&next).await?;
        Ok(())
    }

    // ---- users -------------------------------------------------------------------------

    /// A merchant's console users, or with `None` the operators.
    pub async fn console_users(
        &self,
        merchant: Option<&MerchantId>,
    ) -> Result<Vec<ConsoleUserRecord>, EngineError> {
        Ok(self.store.list_console_users(merchant).await?)
    }

    /// Disable (their sessions end) or enable a user of `scope` (a merchant's, or with `None`
    /// an operator). Owners manage their merchant's users, operators everyone; nobody
    /// disables themselves (so the last operator stays).
    pub async fn set_console_user_disabled(
        &self,
        by: &Actor,
        scope: Option<&MerchantId>,
        user_id: &str,
        disabled: bool,
    ) -> Result<ConsoleUserRecord, EngineError> {
        let mut user = self
            .store
            .get_console_user(user_id)
            .await?
            .filter(|u| u.merchant_id.as_ref() == scope)
            .ok_or(EngineError::NotFound("user"))?;
        let allowed = match &user.merchant_id {
            Some(m) => access(by, m) == Access::Write,
            None => by.role == ConsoleRole::Operator,
        };
        if !allowed {
            return Err(EngineError::NotFound("user"));
        }
        if user.id == by.id {
            return Err(forbidden("you cannot disable your own account"));
        }
        let now = self.now();
        user.disabled_at = disabled.then_some(user.disabled_at.unwrap_or(now));
        user.updated_at = now;
        self.store.update_console_user(&user).await?;
        if disabled {
            self.store.delete_console_sessions(&user.id, None).await?;
        }
        Ok(user)
    }

    // ---- audit log ---------------------------------------------------------------------

    /// Record that `by` did `action` (to `subject`, about `merchant`). Console actions are
    /// audited after the operation they record has committed.
    pub async fn console_audit(
        &self,
        by: &Actor,
        merchant: Option<&MerchantId>,
        action: &str,
        subject: Option<&str>,
        detail: Option<String>,
        client: Option<String>,
    ) -> Result<(), EngineError> {
        self.store
            .insert_audit(&AuditRecord {
                seq: 0,
                at: self.now(),
                user_id: Some(by.id.clone()),
                username: by.username.clone(),
                merchant_id: merchant.cloned(),
                action: action.to_owned(),
                subject: subject.map(str::to_owned),
                detail: detail.map(|d| d.chars().take(500).collect()),
                client: client.map(|c| c.chars().take(200).collect()),
            })
            .await?;
        Ok(())
    }

    /// The audit log, newest first: one merchant's, or with `None` everything.
    pub async fn console_audit_log(
        &self,
        merchant: Option<&MerchantId>,
        before_seq: Option<i64>,
        limit: u32,
    ) -> Result<Vec<AuditRecord>, EngineError> {
        Ok(self.store.list_audit(merchant, before_seq, limit).await?)
    }

    // ---- suspended merchants -----------------------------------------------------------

    /// Suspend a merchant (its API keys, dialect credentials and console users are refused;
    /// checkouts of its open orders go on, so buyers who paid are not stranded) or resume it.
    pub async fn set_merchant_suspended(
        &self,
        merchant: &MerchantId,
        suspended: bool,
    ) -> Result<(), EngineError> {
        let at = suspended.then(|| self.now());
        if !self.store.set_merchant_suspended(merchant, at).await? {
            return Err(EngineError::NotFound("merchant"));
        }
        self.hot.suspended.forget(merchant);
        Ok(())
    }

    /// Since when a merchant is suspended (`None`: it is not).
    pub async fn merchant_suspended_since(
        &self,
        merchant: &MerchantId,
    ) -> Result<Option<OffsetDateTime>, EngineError> {
        Ok(self.store.merchant_suspended(merchant).await?)
    }

    /// Every suspended merchant and since when.
    pub async fn suspended_merchants(
        &self,
    ) -> Result<Vec<(MerchantId, OffsetDateTime)>, EngineError> {
        Ok(self.store.suspended_merchants().await?)
    }

    /// `Unauthorized` for a suspended merchant's credentials (API keys, dialect credentials).
    /// Remembered for [`HOT_TTL`](crate::HOT_TTL): a suspension made by another process
    /// (another instance, the CLI) refuses the merchant's credentials within that bound.
    pub(crate) async fn refuse_suspended(&self, merchant: &MerchantId) -> Result<(), EngineError> {
        let since = match self.hot.suspended.get(merchant) {
            Some(since) => since,
            None => {
                let epoch = self.hot.suspended.epoch();
                let since = self.store.merchant_suspended(merchant).await?;
                self.hot.suspended.put(epoch, merchant.clone(), since);
                since
            }
        };
        match since {
            Some(_) => Err(EngineError::Unauthorized),
            None => Ok(()),
        }
    }
}
