//! The thin per-database layer. All store logic is written once in `sql_store/` against the
//! [`Backend`] trait; each backend only opens connections, binds neutral [`Value`]s and reads
//! columns. This keeps SQLite and PostgreSQL behaviour identical by construction, and the
//! conformance suite checks that the SQL each runs agrees.

use std::borrow::Cow;
use std::path::Path;
use std::str::FromStr;
use std::time::Duration;

use async_trait::async_trait;
use sqlx::postgres::{PgConnectOptions, PgPool, PgPoolOptions, PgRow};
use sqlx::sqlite::{
    SqliteConnectOptions, SqliteJournalMode, SqlitePool, SqlitePoolOptions, SqliteRow,
    SqliteSynchronous,
};
use sqlx::{AssertSqlSafe, Postgres, Row, Sqlite, Transaction};

use crate::StoreError;
use crate::unique::{OnDuplicate, Unique};

/// A bindable value, independent of the database.
#[derive(Debug, Clone)]
pub enum Value {
    Text(String),
    OptText(Option<String>),
    Int(i64),
    OptInt(Option<i64>),
    Bool(bool),
}

/// A statement and its arguments. SQL uses `$1, $2, …` in ascending order of first use, which
/// both PostgreSQL and SQLite accept.
pub struct Query {
    /// A constant, or built from constants only (multi-row inserts): never from input.
    pub sql: Cow<'static, str>,
    pub args: Vec<Value>,
    /// Which uniqueness rule the statement broke if it hits a unique index.
    pub(crate) on_duplicate: OnDuplicate,
}

impl Query {
    pub fn new(sql: &'static str) -> Self {
        Self::built(Cow::Borrowed(sql))
    }

    /// A statement assembled from constants (never from input).
    pub fn built(sql: impl Into<Cow<'static, str>>) -> Self {
        Self {
            sql: sql.into(),
            args: Vec::new(),
            on_duplicate: OnDuplicate::Always(Unique::Record),
        }
    }

    /// What a unique violation of this statement means (by default [`Unique::Record`]).
    pub(crate) fn on_duplicate(mut self, on_duplicate: impl Into<OnDuplicate>) -> Self {
        self.on_duplicate = on_duplicate.into();
        self
    }

    pub fn text(mut self, v: impl Into<String>) -> Self {
        self.args.push(Value::Text(v.into()));
        self
    }

    pub fn opt_text(mut self, v: Option<impl Into<String>>) -> Self {
        self.args.push(Value::OptText(v.map(Into::into)));
        self
    }

    pub fn int(mut self, v: i64) -> Self {
        self.args.push(Value::Int(v));
        self
    }

    pub fn opt_int(mut self, v: Option<i64>) -> Self {
        self.args.push(Value::OptInt(v));
        self
    }

    pub fn boolean(mut self, v: bool) -> Self {
        self.args.push(Value::Bool(v));
        self
    }
}

/// Column access shared by both backends' rows.
pub trait RowExt {
    fn text(&self, col: &str) -> Result<String, StoreError>;
    fn opt_text(&self, col: &str) -> Result<Option<String>, StoreError>;
    fn int(&self, col: &str) -> Result<i64, StoreError>;
    fn opt_int(&self, col: &str) -> Result<Option<i64>, StoreError>;
    fn boolean(&self, col: &str) -> Result<bool, StoreError>;
}

#[async_trait]
pub trait Backend: Send + Sync + 'static {
    type Tx: Send;
    type Row: RowExt + Send;

    /// Whether generated multi-row statements should use anonymous `?` placeholders instead
    /// of `$n`. SQLite looks numbered placeholders up by name, one scan of all of them per
    /// bound value: quadratic in a statement with thousands of them.
    const ANONYMOUS_PLACEHOLDERS: bool;

    /// Appended to a `SELECT` that claims rows for work so that concurrent instances skip
    /// each other's claims instead of waiting (`FOR UPDATE SKIP LOCKED` on PostgreSQL; empty on
    /// SQLite, whose single writer serialises claims anyway).
    const SKIP_LOCKED: &'static str;

    /// Which database this is (`sqlite`, `postgres`), for logs and metrics.
    fn kind(&self) -> &'static str;
    /// Begin a write transaction.
    async fn begin(&self) -> Result<Self::Tx, StoreError>;
    async fn commit(tx: Self::Tx) -> Result<(), StoreError>;
    async fn rollback(tx: Self::Tx) -> Result<(), StoreError>;
    async fn execute(tx: &mut Self::Tx, q: Query) -> Result<u64, StoreError>;
    async fn fetch_in(tx: &mut Self::Tx, q: Query) -> Result<Vec<Self::Row>, StoreError>;
    /// Read outside a write transaction.
    async fn fetch(&self, q: Query) -> Result<Vec<Self::Row>, StoreError>;
    async fn ping(&self) -> Result<(), StoreError>;
    async fn migrate(&self) -> Result<(), StoreError>;
}

macro_rules! bind_all {
    ($query:expr, $args:expr) => {{
        let mut q = $query;
        for arg in $args {
            q = match arg {
                Value::Text(v) => q.bind(v),
                Value::OptText(v) => q.bind(v),
                Value::Int(v) => q.bind(v),
                Value::OptInt(v) => q.bind(v),
                Value::Bool(v) => q.bind(v),
            };
        }
        q
    }};
}

macro_rules! row_ext {
    ($row:ty) => {
        impl RowExt for $row {
            fn text(&self, col: &str) -> Result<String, StoreError> {
                self.try_get::<String, _>(col).map_err(StoreError::from)
            }
            fn opt_text(&self, col: &str) -> Result<Option<String>, StoreError> {
                self.try_get::<Option<String>, _>(col)
                    .map_err(StoreError::from)
            }
            fn int(&self, col: &str) -> Result<i64, StoreError> {
                self.try_get::<i64, _>(col).map_err(StoreError::from)
            }
            fn opt_int(&self, col: &str) -> Result<Option<i64>, StoreError> {
                self.try_get::<Option<i64>, _>(col)
                    .map_err(StoreError::from)
            }
            fn boolean(&self, col: &str) -> Result<bool, StoreError> {
                self.try_get::<bool, _>(col).map_err(StoreError::from)
            }
        }
    };
}

row_ext!(SqliteRow);
row_ext!(PgRow);

fn migrator(files: &[(i64, &'static str, &'static str)]) -> sqlx::migrate::Migrator {
    let migrations = files
        .iter()
        .map(|(version, description, sql)| {
            sqlx::migrate::Migration::new(
                *version,
                std::borrow::Cow::Borrowed(*description),
                sqlx::migrate::MigrationType::Simple,
                sqlx::SqlStr::from_static(sql),
                false,
            )
        })
        .collect();
    sqlx::migrate::Migrator::with_migrations(migrations)
}

const SQLITE_MIGRATIONS: &[(i64, &str, &str)] = &[
    (
        1,
        "foundation",
        include_str!("../migrations/sqlite/0001_foundation.sql"),
    ),
    (
        2,
        "wallets",
        include_str!("../migrations/sqlite/0002_wallets.sql"),
    ),
    (
        3,
        "chain_watch",
        include_str!("../migrations/sqlite/0003_chain_watch.sql"),
    ),
    (
        4,
        "idempotency",
        include_str!("../migrations/sqlite/0004_idempotency.sql"),
    ),
    (
        5,
        "webhooks",
        include_str!("../migrations/sqlite/0005_webhooks.sql"),
    ),
    (
        7,
        "unique_addresses",
        include_str!("../migrations/sqlite/0007_unique_addresses.sql"),
    ),
    (
        10,
        "payouts_dialects",
        include_str!("../migrations/sqlite/0010_payouts_dialects.sql"),
    ),
    (
        11,
        "dialect_credentials",
        include_str!("../migrations/sqlite/0011_dialect_credentials.sql"),
    ),
    (
        12,
        "merchant_branding",
        include_str!("../migrations/sqlite/0012_merchant_branding.sql"),
    ),
    (
        13,
        "watched_since",
        include_str!("../migrations/sqlite/0013_watched_since.sql"),
    ),
    (
        14,
        "deposit_accounts",
        include_str!("../migrations/sqlite/0014_deposit_accounts.sql"),
    ),
    (
        15,
        "payout_txid",
        include_str!("../migrations/sqlite/0015_payout_txid.sql"),
    ),
    (
        17,
        "wallet_owner",
        include_str!("../migrations/sqlite/0017_wallet_owner.sql"),
    ),
    (
        18,
        "wallet_keys",
        include_str!("../migrations/sqlite/0018_wallet_keys.sql"),
    ),
    (
        19,
        "dialect_lookups",
        include_str!("../migrations/sqlite/0019_dialect_lookups.sql"),
    ),
    (
        20,
        "method_details",
        include_str!("../migrations/sqlite/0020_method_details.sql"),
    ),
    (
        22,
        "console",
        include_str!("../migrations/sqlite/0022_console.sql"),
    ),
    (
        23,
        "order_credential",
        include_str!("../migrations/sqlite/0023_order_credential.sql"),
    ),
];

const POSTGRES_MIGRATIONS: &[(i64, &str, &str)] = &[
    (
        1,
        "foundation",
        include_str!("../migrations/postgres/0001_foundation.sql"),
    ),
    (
        2,
        "wallets",
        include_str!("../migrations/postgres/0002_wallets.sql"),
    ),
    (
        3,
        "chain_watch",
        include_str!("../migrations/postgres/0003_chain_watch.sql"),
    ),
    (
        4,
        "idempotency",
        include_str!("../migrations/postgres/0004_idempotency.sql"),
    ),
    (
        5,
        "webhooks",
        include_str!("../migrations/postgres/0005_webhooks.sql"),
    ),
    (
        7,
        "unique_addresses",
        include_str!("../migrations/postgres/0007_unique_addresses.sql"),
    ),
    (
        10,
        "payouts_dialects",
        include_str!("../migrations/postgres/0010_payouts_dialects.sql"),
    ),
    (
        11,
        "dialect_credentials",
        include_str!("../migrations/postgres/0011_dialect_credentials.sql"),
    ),
    (
        12,
        "merchant_branding",
        include_str!("../migrations/postgres/0012_merchant_branding.sql"),
    ),
    (
        13,
        "watched_since",
        include_str!("../migrations/postgres/0013_watched_since.sql"),
    ),
    (
        14,
        "deposit_accounts",
        include_str!("../migrations/postgres/0014_deposit_accounts.sql"),
    ),
    (
        15,
        "payout_txid",
        include_str!("../migrations/postgres/0015_payout_txid.sql"),
    ),
    (
        16,
        "event_insert_time",
        include_str!("../migrations/postgres/0016_event_insert_time.sql"),
    ),
    (
        17,
        "wallet_owner",
        include_str!("../migrations/postgres/0017_wallet_owner.sql"),
    ),
    (
        18,
        "wallet_keys",
        include_str!("../migrations/postgres/0018_wallet_keys.sql"),
    ),
    (
        19,
        "dialect_lookups",
        include_str!("../migrations/postgres/0019_dialect_lookups.sql"),
    ),
    (
        20,
        "method_details",
        include_str!("../migrations/postgres/0020_method_details.sql"),
    ),
    (
        22,
        "console",
        include_str!("../migrations/postgres/0022_console.sql"),
    ),
    (
        23,
        "order_credential",
        include_str!("../migrations/postgres/0023_order_credential.sql"),
    ),
];

/// The embedded database. WAL journal and `synchronous = FULL`: a commit is on disk before it
/// is acknowledged. Writes go through one connection (SQLite has one writer anyway, and this
/// avoids busy-retry storms); reads use a pool.
pub struct SqliteBackend {
    writer: SqlitePool,
    reader: SqlitePool,
}

impl SqliteBackend {
    pub async fn open(path: &Path) -> Result<Self, StoreError> {
        let options = SqliteConnectOptions::new()
            .filename(path)
            .create_if_missing(true)
            .journal_mode(SqliteJournalMode::Wal)
            .synchronous(SqliteSynchronous::Full)
            .foreign_keys(true)
            .busy_timeout(Duration::from_secs(10));
        // The writer's commits group many changesets (see `SqlStore::with_group_commit`):
        // - statement and savepoint journals (rollback within a transaction, never needed
        //   after a crash) stay in memory instead of a temporary file;
        // - the WAL is checkpointed into the database every 10,000 pages (~40 MB) instead of
        //   1,000: index pages hit again and again are copied once, and the checkpoint, which
        //   runs inside the commit that crosses the mark, stalls the writer ten times less
        //   often. Neither changes durability: every commit still fsyncs the WAL.
        let writer = SqlitePoolOptions::new()
            .max_connections(1)
            .connect_with(
                options
                    .clone()
                    .pragma("temp_store", "memory")
                    .pragma("wal_autocheckpoint", "10000"),
            )
            .await?;
        let reader = SqlitePoolOptions::new()
            .max_connections(8)
            .connect_with(options.read_only(true))
            .await?;
        Ok(Self { writer, reader })
    }
}

#[async_trait]
impl Backend for SqliteBackend {
    type Tx = Transaction<'static, Sqlite>;
    type Row = SqliteRow;
    const ANONYMOUS_PLACEHOLDERS: bool = true;
    const SKIP_LOCKED: &'static str = "";

    fn kind(&self) -> &'static str {
        "sqlite"
    }

    async fn begin(&self) -> Result<Self::Tx, StoreError> {
        // IMMEDIATE takes the write lock up front, so a read-then-write transaction cannot
        // fail half-way with SQLITE_BUSY when another process writes.
        Ok(self.writer.begin_with("BEGIN IMMEDIATE").await?)
    }

    async fn commit(tx: Self::Tx) -> Result<(), StoreError> {
        Ok(tx.commit().await?)
    }

    async fn rollback(tx: Self::Tx) -> Result<(), StoreError> {
        Ok(tx.rollback().await?)
    }

    async fn execute(tx: &mut Self::Tx, q: Query) -> Result<u64, StoreError> {
        let on_duplicate = q.on_duplicate;
        let query = bind_all!(sqlx::query(AssertSqlSafe(q.sql)), q.args);
        let done = query.execute(&mut **tx).await;
        Ok(done
            .map_err(|e| StoreError::of_statement(e, on_duplicate))?
            .rows_affected())
    }

    async fn fetch_in(tx: &mut Self::Tx, q: Query) -> Result<Vec<Self::Row>, StoreError> {
        let on_duplicate = q.on_duplicate;
        let query = bind_all!(sqlx::query(AssertSqlSafe(q.sql)), q.args);
        let rows = query.fetch_all(&mut **tx).await;
        rows.map_err(|e| StoreError::of_statement(e, on_duplicate))
    }

    async fn fetch(&self, q: Query) -> Result<Vec<Self::Row>, StoreError> {
        let query = bind_all!(sqlx::query(AssertSqlSafe(q.sql)), q.args);
        Ok(query.fetch_all(&self.reader).await?)
    }

    async fn ping(&self) -> Result<(), StoreError> {
        sqlx::query("SELECT 1").execute(&self.reader).await?;
        Ok(())
    }

    async fn migrate(&self) -> Result<(), StoreError> {
        migrator(SQLITE_MIGRATIONS)
            .run(&self.writer)
            .await
            .map_err(|e| StoreError::Migration(e.to_string()))
    }
}

pub struct PostgresBackend {
    pool: PgPool,
}

impl PostgresBackend {
    pub async fn connect(url: &str, max_connections: u32) -> Result<Self, StoreError> {
        let options = PgConnectOptions::from_str(url)?;
        let pool = PgPoolOptions::new()
            .max_connections(max_connections)
            .acquire_timeout(Duration::from_secs(10))
            .connect_with(options)
            .await?;
        Ok(Self { pool })
    }
}

#[async_trait]
impl Backend for PostgresBackend {
    type Tx = Transaction<'static, Postgres>;
    type Row = PgRow;
    const ANONYMOUS_PLACEHOLDERS: bool = false;
    const SKIP_LOCKED: &'static str = " FOR UPDATE SKIP LOCKED";

    fn kind(&self) -> &'static str {
        "postgres"
    }

    async fn begin(&self) -> Result<Self::Tx, StoreError> {
        Ok(self.pool.begin().await?)
    }

    async fn commit(tx: Self::Tx) -> Result<(), StoreError> {
        Ok(tx.commit().await?)
    }

    async fn rollback(tx: Self::Tx) -> Result<(), StoreError> {
        Ok(tx.rollback().await?)
    }

    async fn execute(tx: &mut Self::Tx, q: Query) -> Result<u64, StoreError> {
        let on_duplicate = q.on_duplicate;
        let query = bind_all!(sqlx::query(AssertSqlSafe(q.sql)), q.args);
        let done = query.execute(&mut **tx).await;
        Ok(done
            .map_err(|e| StoreError::of_statement(e, on_duplicate))?
            .rows_affected())
    }

    async fn fetch_in(tx: &mut Self::Tx, q: Query) -> Result<Vec<Self::Row>, StoreError> {
        let on_duplicate = q.on_duplicate;
        let query = bind_all!(sqlx::query(AssertSqlSafe(q.sql)), q.args);
        let rows = query.fetch_all(&mut **tx).await;
        rows.map_err(|e| StoreError::of_statement(e, on_duplicate))
    }

    async fn fetch(&self, q: Query) -> Result<Vec<Self::Row>, StoreError> {
        let query = bind_all!(sqlx::query(AssertSqlSafe(q.sql)), q.args);
        Ok(query.fetch_all(&self.pool).await?)
    }

    async fn ping(&self) -> Result<(), StoreError> {
        sqlx::query("SELECT 1").execute(&self.pool).await?;
        Ok(())
    }

    async fn migrate(&self) -> Result<(), StoreError> {
        migrator(POSTGRES_MIGRATIONS)
            .run(&self.pool)
            .await
            .map_err(|e| StoreError::Migration(e.to_string()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// "Durable" means this: every commit waits for the WAL to be fsynced.
    #[tokio::test]
    async fn sqlite_writes_are_durable() {
        let dir = tempfile::tempdir().unwrap();
        let backend = SqliteBackend::open(&dir.path().join("coffer.db"))
            .await
            .unwrap();
        let mut tx = backend.begin().await.unwrap();
        let sync = SqliteBackend::fetch_in(&mut tx, Query::new("PRAGMA synchronous"))
            .await
            .unwrap();
        assert_eq!(sync[0].int("synchronous").unwrap(), 2, "FULL");
        let journal = SqliteBackend::fetch_in(&mut tx, Query::new("PRAGMA journal_mode"))
            .await
            .unwrap();
        assert_eq!(journal[0].text("journal_mode").unwrap(), "wal");
        let temp = SqliteBackend::fetch_in(&mut tx, Query::new("PRAGMA temp_store"))
            .await
            .unwrap();
        assert_eq!(temp[0].int("temp_store").unwrap(), 2, "MEMORY");
        let checkpoint = SqliteBackend::fetch_in(&mut tx, Query::new("PRAGMA wal_autocheckpoint"))
            .await
            .unwrap();
        assert_eq!(checkpoint[0].int("wal_autocheckpoint").unwrap(), 10_000);
    }
}
