//! Console users, sessions, invitations, the audit log and suspended merchants.

use coffer_core::MerchantId;
use time::OffsetDateTime;

use super::super::{count_of, first, page_limit, rows};
use crate::backend::{Backend, Query, RowExt};
use crate::codec::{corrupt, from_ms, ms, opt_ms};
use crate::unique::Unique;
use crate::{
    AuditRecord, ConsoleInviteRecord, ConsoleSessionRecord, ConsoleUserRecord, StoreError,
};

const USER_COLUMNS: &str = "id, username, password_hash, role, merchant_id, totp_secret, \
     totp_last_step, created_at, updated_at, disabled_at";

fn opt_time(row: &impl RowExt, column: &str) -> Result<Option<OffsetDateTime>, StoreError> {
    row.opt_int(column)?.map(|v| from_ms(column, v)).transpose()
}

fn opt_merchant(row: &impl RowExt, column: &str) -> Result<Option<MerchantId>, StoreError> {
    row.opt_text(column)?
        .map(|m| m.parse().map_err(|e| corrupt(column, e)))
        .transpose()
}

/// A user row; `prefix` is how the query aliased its columns (`""` or `"u_"`).
fn user_from_row(row: &impl RowExt, prefix: &str) -> Result<ConsoleUserRecord, StoreError> {
    let col = |c: &str| format!("{prefix}{c}");
    Ok(ConsoleUserRecord {
        id: row.text(&col("id"))?,
        username: row.text(&col("username"))?,
        password_hash: row.text(&col("password_hash"))?,
        role: row
            .text(&col("role"))?
            .parse()
            .map_err(|e| corrupt("console_users.role", e))?,
        merchant_id: opt_merchant(row, &col("merchant_id"))?,
        totp_secret: row.opt_text(&col("totp_secret"))?,
        totp_last_step: row.opt_int(&col("totp_last_step"))?,
        created_at: from_ms("console_users.created_at", row.int(&col("created_at"))?)?,
        updated_at: from_ms("console_users.updated_at", row.int(&col("updated_at"))?)?,
        disabled_at: opt_time(row, &col("disabled_at"))?,
    })
}

fn session_from_row(row: &impl RowExt) -> Result<ConsoleSessionRecord, StoreError> {
    Ok(ConsoleSessionRecord {
        token_hash: row.text("token_hash")?,
        user_id: row.text("user_id")?,
        csrf: row.text("csrf")?,
        stage: row
            .text("stage")?
            .parse()
            .map_err(|e| corrupt("console_sessions.stage", e))?,
        client: row.opt_text("client")?,
        created_at: from_ms("console_sessions.created_at", row.int("created_at")?)?,
        last_seen_at: from_ms("console_sessions.last_seen_at", row.int("last_seen_at")?)?,
        expires_at: from_ms("console_sessions.expires_at", row.int("expires_at")?)?,
    })
}

fn invite_from_row(row: &impl RowExt) -> Result<ConsoleInviteRecord, StoreError> {
    Ok(ConsoleInviteRecord {
        token_hash: row.text("token_hash")?,
        role: row
            .text("role")?
            .parse()
            .map_err(|e| corrupt("console_invites.role", e))?,
        merchant_id: opt_merchant(row, "merchant_id")?,
        created_by: row.opt_text("created_by")?,
        created_at: from_ms("console_invites.created_at", row.int("created_at")?)?,
        expires_at: from_ms("console_invites.expires_at", row.int("expires_at")?)?,
    })
}

fn audit_from_row(row: &impl RowExt) -> Result<AuditRecord, StoreError> {
    Ok(AuditRecord {
        seq: row.int("seq")?,
        at: from_ms("console_audit.at", row.int("at")?)?,
        user_id: row.opt_text("user_id")?,
        username: row.text("username")?,
        merchant_id: opt_merchant(row, "merchant_id")?,
        action: row.text("action")?,
        subject: row.opt_text("subject")?,
        detail: row.opt_text("detail")?,
        client: row.opt_text("client")?,
    })
}

/// Run one write statement in its own transaction; the rows it touched.
async fn write<B: Backend>(backend: &B, q: Query) -> Result<u64, StoreError> {
    let mut tx = backend.begin().await?;
    let n = B::execute(&mut tx, q).await?;
    B::commit(tx).await?;
    Ok(n)
}

fn insert_user_query(u: &ConsoleUserRecord) -> Query {
    Query::new(
        "INSERT INTO console_users (id, username, password_hash, role, merchant_id, totp_secret, \
         totp_last_step, created_at, updated_at, disabled_at) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)",
    )
    .text(u.id.clone())
    .text(u.username.clone())
    .text(u.password_hash.clone())
    .text(u.role.as_str())
    .opt_text(u.merchant_id.as_ref().map(|m| m.as_str().to_owned()))
    .opt_text(u.totp_secret.clone())
    .opt_int(u.totp_last_step)
    .int(ms(u.created_at))
    .int(ms(u.updated_at))
    .opt_int(opt_ms(u.disabled_at))
    .on_duplicate(Unique::Username)
}

pub(super) async fn insert_user<B: Backend>(
    backend: &B,
    user: &ConsoleUserRecord,
) -> Result<(), StoreError> {
    write(backend, insert_user_query(user)).await.map(|_| ())
}

pub(super) async fn get_user<B: Backend>(
    backend: &B,
    id: &str,
) -> Result<Option<ConsoleUserRecord>, StoreError> {
    let q = Query::built(format!(
        "SELECT {USER_COLUMNS} FROM console_users WHERE id = $1"
    ))
    .text(id);
    first(backend.fetch(q).await?, |r| user_from_row(r, ""))
}

pub(super) async fn find_user<B: Backend>(
    backend: &B,
    username: &str,
) -> Result<Option<ConsoleUserRecord>, StoreError> {
    let q = Query::built(format!(
        "SELECT {USER_COLUMNS} FROM console_users WHERE username = $1"
    ))
    .text(username);
    first(backend.fetch(q).await?, |r| user_from_row(r, ""))
}

pub(super) async fn list_users<B: Backend>(
    backend: &B,
    merchant: Option<&MerchantId>,
) -> Result<Vec<ConsoleUserRecord>, StoreError> {
    let q = match merchant {
        Some(m) => Query::built(format!(
            "SELECT {USER_COLUMNS} FROM console_users WHERE merchant_id = $1 \
             ORDER BY created_at, id"
        ))
        .text(m.as_str()),
        None => Query::built(format!(
            "SELECT {USER_COLUMNS} FROM console_users WHERE role = 'operator' \
             ORDER BY created_at, id"
        )),
    };
    rows(backend.fetch(q).await?, |r| user_from_row(r, ""))
}

pub(super) async fn update_user<B: Backend>(
    backend: &B,
    u: &ConsoleUserRecord,
) -> Result<bool, StoreError> {
    let q = Query::new(
        "UPDATE console_users SET password_hash = $1, totp_secret = $2, updated_at = $3, \
         disabled_at = $4 WHERE id = $5",
    )
    .text(u.password_hash.clone())
    .opt_text(u.totp_secret.clone())
    .int(ms(u.updated_at))
    .opt_int(opt_ms(u.disabled_at))
    .text(u.id.clone());
    Ok(write(backend, q).await? == 1)
}

pub(super) async fn use_totp_step<B: Backend>(
    backend: &B,
    user_id: &str,
    step: i64,
) -> Result<bool, StoreError> {
    let q = Query::new(
        "UPDATE console_users SET totp_last_step = $1 \
         WHERE id = $2 AND (totp_last_step IS NULL OR totp_last_step < $1)",
    )
    .int(step)
    .text(user_id);
    Ok(write(backend, q).await? == 1)
}

pub(super) async fn count_operators<B: Backend>(backend: &B) -> Result<u64, StoreError> {
    let q = Query::new(
        "SELECT COUNT(*) AS n FROM console_users WHERE role = 'operator' AND disabled_at IS NULL",
    );
    count_of(backend.fetch(q).await?)
}

pub(super) async fn insert_session<B: Backend>(
    backend: &B,
    s: &ConsoleSessionRecord,
) -> Result<(), StoreError> {
    let q = Query::new(
        "INSERT INTO console_sessions (token_hash, user_id, csrf, stage, client, created_at, \
         last_seen_at, expires_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
    )
    .text(s.token_hash.clone())
    .text(s.user_id.clone())
    .text(s.csrf.clone())
    .text(s.stage.as_str())
    .opt_text(s.client.clone())
    .int(ms(s.created_at))
    .int(ms(s.last_seen_at))
    .int(ms(s.expires_at));
    write(backend, q).await.map(|_| ())
}

pub(super) async fn session<B: Backend>(
    backend: &B,
    token_hash: &str,
    now: OffsetDateTime,
) -> Result<Option<(ConsoleSessionRecord, ConsoleUserRecord)>, StoreError> {
    let q = Query::new(
        "SELECT s.token_hash AS token_hash, s.user_id AS user_id, s.csrf AS csrf, \
         s.stage AS stage, s.client AS client, s.created_at AS created_at, \
         s.last_seen_at AS last_seen_at, s.expires_at AS expires_at, \
         u.id AS u_id, u.username AS u_username, u.password_hash AS u_password_hash, \
         u.role AS u_role, u.merchant_id AS u_merchant_id, u.totp_secret AS u_totp_secret, \
         u.totp_last_step AS u_totp_last_step, u.created_at AS u_created_at, \
         u.updated_at AS u_updated_at, u.disabled_at AS u_disabled_at \
         FROM console_sessions s JOIN console_users u ON u.id = s.user_id \
         WHERE s.token_hash = $1 AND s.expires_at > $2",
    )
    .text(token_hash)
    .int(ms(now));
    first(backend.fetch(q).await?, |r| {
        Ok((session_from_row(r)?, user_from_row(r, "u_")?))
    })
}

pub(super) async fn touch_session<B: Backend>(
    backend: &B,
    token_hash: &str,
    last_seen_at: OffsetDateTime,
    expires_at: OffsetDateTime,
) -> Result<(), StoreError> {
    let q = Query::new(
        "UPDATE console_sessions SET last_seen_at = $1, expires_at = $2 WHERE token_hash = $3",
    )
    .int(ms(last_seen_at))
    .int(ms(expires_at))
    .text(token_hash);
    write(backend, q).await.map(|_| ())
}

pub(super) async fn delete_session<B: Backend>(
    backend: &B,
    token_hash: &str,
) -> Result<bool, StoreError> {
    let q = Query::new("DELETE FROM console_sessions WHERE token_hash = $1").text(token_hash);
    Ok(write(backend, q).await? == 1)
}

pub(super) async fn delete_sessions<B: Backend>(
    backend: &B,
    user_id: &str,
    except: Option<&str>,
) -> Result<u64, StoreError> {
    let q = Query::new(
        "DELETE FROM console_sessions WHERE user_id = $1 AND ($2 IS NULL OR token_hash <> $2)",
    )
    .text(user_id)
    .opt_text(except);
    write(backend, q).await
}

pub(super) async fn list_sessions<B: Backend>(
    backend: &B,
    user_id: &str,
    now: OffsetDateTime,
) -> Result<Vec<ConsoleSessionRecord>, StoreError> {
    let q = Query::new(
        "SELECT token_hash, user_id, csrf, stage, client, created_at, last_seen_at, expires_at \
         FROM console_sessions WHERE user_id = $1 AND expires_at > $2 \
         ORDER BY last_seen_at DESC, token_hash LIMIT 100",
    )
    .text(user_id)
    .int(ms(now));
    rows(backend.fetch(q).await?, session_from_row)
}

pub(super) async fn purge_sessions<B: Backend>(
    backend: &B,
    now: OffsetDateTime,
) -> Result<u64, StoreError> {
    let q = Query::new("DELETE FROM console_sessions WHERE expires_at <= $1").int(ms(now));
    write(backend, q).await
}

fn insert_invite_query(i: &ConsoleInviteRecord) -> Query {
    Query::new(
        "INSERT INTO console_invites (token_hash, role, merchant_id, created_by, created_at, \
         expires_at) VALUES ($1, $2, $3, $4, $5, $6)",
    )
    .text(i.token_hash.clone())
    .text(i.role.as_str())
    .opt_text(i.merchant_id.as_ref().map(|m| m.as_str().to_owned()))
    .opt_text(i.created_by.clone())
    .int(ms(i.created_at))
    .int(ms(i.expires_at))
}

pub(super) async fn insert_invite<B: Backend>(
    backend: &B,
    invite: &ConsoleInviteRecord,
) -> Result<(), StoreError> {
    write(backend, insert_invite_query(invite))
        .await
        .map(|_| ())
}

const INVITE_COLUMNS: &str =
    "token_hash, role, merchant_id, created_by, created_at, expires_at FROM console_invites";

pub(super) async fn invite<B: Backend>(
    backend: &B,
    token_hash: &str,
    now: OffsetDateTime,
) -> Result<Option<ConsoleInviteRecord>, StoreError> {
    let q = Query::built(format!(
        "SELECT {INVITE_COLUMNS} WHERE token_hash = $1 AND expires_at > $2"
    ))
    .text(token_hash)
    .int(ms(now));
    first(backend.fetch(q).await?, invite_from_row)
}

pub(super) async fn accept_invite<B: Backend>(
    backend: &B,
    token_hash: &str,
    user: &ConsoleUserRecord,
    now: OffsetDateTime,
) -> Result<bool, StoreError> {
    let mut tx = backend.begin().await?;
    let taken = B::execute(
        &mut tx,
        Query::new("DELETE FROM console_invites WHERE token_hash = $1 AND expires_at > $2")
            .text(token_hash)
            .int(ms(now)),
    )
    .await;
    match taken {
        Ok(1) => {}
        Ok(_) => {
            B::rollback(tx).await?;
            return Ok(false);
        }
        Err(e) => {
            B::rollback(tx).await?;
            return Err(e);
        }
    }
    match B::execute(&mut tx, insert_user_query(user)).await {
        Ok(_) => {
            B::commit(tx).await?;
            Ok(true)
        }
        Err(e) => {
            B::rollback(tx).await?;
            Err(e)
        }
    }
}

pub(super) async fn list_invites<B: Backend>(
    backend: &B,
    merchant: Option<&MerchantId>,
    now: OffsetDateTime,
) -> Result<Vec<ConsoleInviteRecord>, StoreError> {
    let q = match merchant {
        Some(m) => Query::built(format!(
            "SELECT {INVITE_COLUMNS} WHERE merchant_id = $1 AND expires_at > $2 \
             ORDER BY created_at DESC, token_hash"
        ))
        .text(m.as_str())
        .int(ms(now)),
        None => Query::built(format!(
            "SELECT {INVITE_COLUMNS} WHERE role = 'operator' AND expires_at > $1 \
             ORDER BY created_at DESC, token_hash"
        ))
        .int(ms(now)),
    };
    rows(backend.fetch(q).await?, invite_from_row)
}

pub(super) async fn delete_invite<B: Backend>(
    backend: &B,
    merchant: Option<&MerchantId>,
    token_hash: &str,
) -> Result<bool, StoreError> {
    let q = match merchant {
        Some(m) => {
            Query::new("DELETE FROM console_invites WHERE token_hash = $1 AND merchant_id = $2")
                .text(token_hash)
                .text(m.as_str())
        }
        None => {
            Query::new("DELETE FROM console_invites WHERE token_hash = $1 AND role = 'operator'")
                .text(token_hash)
        }
    };
    Ok(write(backend, q).await? == 1)
}

pub(super) async fn delete_setup_invites<B: Backend>(backend: &B) -> Result<u64, StoreError> {
    let q =
        Query::new("DELETE FROM console_invites WHERE role = 'operator' AND created_by IS NULL");
    write(backend, q).await
}

pub(super) async fn insert_audit<B: Backend>(
    backend: &B,
    a: &AuditRecord,
) -> Result<(), StoreError> {
    let q = Query::new(
        "INSERT INTO console_audit (at, user_id, username, merchant_id, action, subject, \
         detail, client) VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
    )
    .int(ms(a.at))
    .opt_text(a.user_id.clone())
    .text(a.username.clone())
    .opt_text(a.merchant_id.as_ref().map(|m| m.as_str().to_owned()))
    .text(a.action.clone())
    .opt_text(a.subject.clone())
    .opt_text(a.detail.clone())
    .opt_text(a.client.clone());
    write(backend, q).await.map(|_| ())
}

const AUDIT_COLUMNS: &str =
    "seq, at, user_id, username, merchant_id, action, subject, detail, client FROM console_audit";

pub(super) async fn list_audit<B: Backend>(
    backend: &B,
    merchant: Option<&MerchantId>,
    before_seq: Option<i64>,
    limit: u32,
) -> Result<Vec<AuditRecord>, StoreError> {
    let before = before_seq.unwrap_or(i64::MAX);
    let q = match merchant {
        Some(m) => Query::built(format!(
            "SELECT {AUDIT_COLUMNS} WHERE merchant_id = $1 AND seq < $2 ORDER BY seq DESC LIMIT $3"
        ))
        .text(m.as_str())
        .int(before)
        .int(page_limit(limit)),
        None => Query::built(format!(
            "SELECT {AUDIT_COLUMNS} WHERE seq < $1 ORDER BY seq DESC LIMIT $2"
        ))
        .int(before)
        .int(page_limit(limit)),
    };
    rows(backend.fetch(q).await?, audit_from_row)
}

pub(super) async fn set_suspended<B: Backend>(
    backend: &B,
    merchant: &MerchantId,
    at: Option<OffsetDateTime>,
) -> Result<bool, StoreError> {
    let q = Query::new("UPDATE merchants SET suspended_at = $1 WHERE id = $2")
        .opt_int(opt_ms(at))
        .text(merchant.as_str());
    Ok(write(backend, q).await? == 1)
}

pub(super) async fn suspended<B: Backend>(
    backend: &B,
    merchant: &MerchantId,
) -> Result<Option<OffsetDateTime>, StoreError> {
    let q = Query::new("SELECT suspended_at FROM merchants WHERE id = $1").text(merchant.as_str());
    match backend.fetch(q).await?.first() {
        Some(row) => opt_time(row, "suspended_at"),
        None => Ok(None),
    }
}

pub(super) async fn suspended_list<B: Backend>(
    backend: &B,
) -> Result<Vec<(MerchantId, OffsetDateTime)>, StoreError> {
    let q = Query::new(
        "SELECT id, suspended_at FROM merchants WHERE suspended_at IS NOT NULL ORDER BY id",
    );
    rows(backend.fetch(q).await?, |r| {
        Ok((
            r.text("id")?
                .parse()
                .map_err(|e| corrupt("merchants.id", e))?,
            from_ms("merchants.suspended_at", r.int("suspended_at")?)?,
        ))
    })
}

pub(super) async fn without_wallet<B: Backend>(backend: &B) -> Result<Vec<MerchantId>, StoreError> {
    let q = Query::new(
        "SELECT m.id AS id FROM merchants m \
         WHERE NOT EXISTS (SELECT 1 FROM wallets w WHERE w.merchant_id = m.id) \
         ORDER BY m.created_at, m.id",
    );
    rows(backend.fetch(q).await?, |r| {
        r.text("id")?
            .parse()
            .map_err(|e| corrupt("merchants.id", e))
    })
}
