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
    /// The plan the database would run `q` with, one line per node (SQLite's `EXPLAIN QUERY
    /// PLAN` as an indented tree, PostgreSQL's `EXPLAIN` text).
    async fn explain(&self, q: Query) -> Result<Vec<String>, StoreError>;
    /// After a bulk load: planner statistics on PostgreSQL (what autovacuum would gather), a
    /// WAL checkpoint on SQLite.
    async fn after_bulk_load(&self) -> Result<(), StoreError>;
    /// Close every connection, waiting until they are closed.
    async fn close(&self);
    /// Called by the group-commit writer between groups (`idle`: nothing was queued for a
    /// while). SQLite keeps its WAL bounded here.
    async fn upkeep(&self, idle: bool) {
        let _ = idle;
    }
}

/// The text of every migration of both databases, in order: what a seeded database's cache
/// key depends on.
pub(crate) fn migration_texts() -> impl Iterator<Item = &'static str> {
    SQLITE_MIGRATIONS
        .iter()
        .chain(POSTGRES_MIGRATIONS)
        .map(|(_, _, sql)| *sql)
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
        21,
        "watch_volume",
        include_str!("../migrations/sqlite/0021_watch_volume.sql"),
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
        21,
        "watch_volume",
        include_str!("../migrations/postgres/0021_watch_volume.sql"),
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

tokio::task_local! {
    // Set while a chain watcher's step runs (see `chain_work`).
    static CHAIN_WORK: ();
}

/// Run `work` as a chain watcher's step: its reads (and, on PostgreSQL, its transactions) use
/// connections kept for chain watchers, and on SQLite its commits join the next group ahead
/// of queued ones. Under a burst of orders the shared connections have a queue, and a
/// payment must not wait in it to be seen (issue 25). Only the task running `work` is marked;
/// tasks it spawns are not.
pub async fn chain_work<F: std::future::Future>(work: F) -> F::Output {
    CHAIN_WORK.scope((), work).await
}

/// Whether the running task is a chain watcher's step ([`chain_work`]).
pub(crate) fn is_chain_work() -> bool {
    CHAIN_WORK.try_with(|()| ()).is_ok()
}

/// Connections kept for chain watchers' reads (SQLite) or reads and transactions
/// (PostgreSQL), beside the shared ones.
const CHAIN_CONNECTIONS: u32 = 3;

/// The embedded database. WAL journal and `synchronous = FULL`: a commit is on disk before it
/// is acknowledged. Writes go through one connection (SQLite has one writer anyway, and this
/// avoids busy-retry storms); reads use a pool.
///
/// The WAL is kept bounded (docs/operations.md, "SQLite's WAL"): the writer checkpoints it
/// every [`WAL_AUTOCHECKPOINT_PAGES`] pages as it commits; when the writer has been idle for a
/// moment, or the WAL has outgrown [`WAL_FORCE_CHECKPOINT_BYTES`], it checkpoints everything
/// and truncates the file (`wal_checkpoint(TRUNCATE)`), waiting at most
/// [`CHECKPOINT_READER_WAIT`] for readers still on an older snapshot; and a WAL that was
/// reset is cut back to [`JOURNAL_SIZE_LIMIT`] bytes. Readers keep their snapshots short
/// (long scans are read a page at a time), so the checkpoint is rarely kept waiting.
pub struct SqliteBackend {
    writer: SqlitePool,
    reader: SqlitePool,
    /// Chain watchers' reads ([`chain_work`]).
    chain_reader: SqlitePool,
    wal: std::path::PathBuf,
    wal_upkeep: std::sync::Mutex<WalUpkeep>,
}

/// Checkpoint the WAL into the database as the writer commits, every this many pages (about
/// 40 MB of 4 KiB pages): index pages hit again and again are copied once per checkpoint, and
/// the checkpoint runs inside the commit that crosses the mark, so fewer is cheaper.
pub const WAL_AUTOCHECKPOINT_PAGES: u32 = 10_000;
/// A WAL this large is checkpointed and truncated after the next group commit even if the
/// writer is busy: the bound under sustained writes.
pub const WAL_FORCE_CHECKPOINT_BYTES: u64 = 128 * 1024 * 1024;
/// After the WAL is reset, its file is cut back to this size.
pub const JOURNAL_SIZE_LIMIT: u64 = 64 * 1024 * 1024;
/// How long a truncating checkpoint waits for readers on an older snapshot (the writer waits
/// as long; then it gives up and tries again later).
pub const CHECKPOINT_READER_WAIT: Duration = Duration::from_millis(250);
/// An idle writer truncates the WAL at most this often.
const IDLE_CHECKPOINT_EVERY: Duration = Duration::from_secs(1);

#[derive(Debug, Default)]
struct WalUpkeep {
    last_truncate: Option<std::time::Instant>,
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
        Self::open_with(path, options).await
    }

    /// A database to fill with a bulk load (a seeded copy for tests and benchmarks): no WAL
    /// and no fsync, so a crash mid-load leaves a broken file, which is thrown away. Open it
    /// with [`SqliteBackend::open`] once loaded.
    #[doc(hidden)]
    pub async fn open_for_bulk_load(path: &Path) -> Result<Self, StoreError> {
        let options = SqliteConnectOptions::new()
            .filename(path)
            .create_if_missing(true)
            .journal_mode(SqliteJournalMode::Memory)
            .synchronous(SqliteSynchronous::Off)
            .foreign_keys(true)
            .pragma("cache_size", "-262144")
            .busy_timeout(Duration::from_secs(10));
        Self::open_with(path, options).await
    }

    async fn open_with(path: &Path, options: SqliteConnectOptions) -> Result<Self, StoreError> {
        // The writer's commits group many changesets (see `SqlStore::with_group_commit`):
        // - statement and savepoint journals (rollback within a transaction, never needed
        //   after a crash) stay in memory instead of a temporary file;
        // - the WAL is checkpointed every WAL_AUTOCHECKPOINT_PAGES pages instead of 1,000,
        //   and cut back to JOURNAL_SIZE_LIMIT when it is reset. Neither changes durability:
        //   every commit still fsyncs the WAL.
        let writer = SqlitePoolOptions::new()
            .max_connections(1)
            .connect_with(
                options
                    .clone()
                    .pragma("temp_store", "memory")
                    .pragma("wal_autocheckpoint", WAL_AUTOCHECKPOINT_PAGES.to_string())
                    .pragma("journal_size_limit", JOURNAL_SIZE_LIMIT.to_string()),
            )
            .await?;
        // 16 MiB of page cache per reader (SQLite's default is 2 MiB): a watcher's page of
        // 5,000 orders with their addresses is read from it instead of the OS.
        let read_options = options.read_only(true).pragma("cache_size", "-16384");
        let reader = SqlitePoolOptions::new()
            .max_connections(8)
            .connect_with(read_options.clone())
            .await?;
        let chain_reader = SqlitePoolOptions::new()
            .max_connections(CHAIN_CONNECTIONS)
            .min_connections(0)
            .connect_with(read_options)
            .await?;
        let mut wal = path.as_os_str().to_owned();
        wal.push("-wal");
        Ok(Self {
            writer,
            reader,
            chain_reader,
            wal: wal.into(),
            wal_upkeep: std::sync::Mutex::new(WalUpkeep::default()),
        })
    }

    /// The size of the WAL file now (0 when there is none), also set as the gauge
    /// `coffer_sqlite_wal_bytes`.
    pub fn wal_bytes(&self) -> u64 {
        let bytes = std::fs::metadata(&self.wal).map_or(0, |m| m.len());
        #[allow(clippy::cast_precision_loss)] // a gauge; exact below 2^53 bytes
        metrics::gauge!("coffer_sqlite_wal_bytes").set(bytes as f64);
        bytes
    }

    /// Checkpoint the whole WAL into the database and truncate it, waiting at most `wait` for
    /// readers on an older snapshot. `Ok(false)` if some reader kept it from completing.
    pub async fn checkpoint_truncate(&self, wait: Duration) -> Result<bool, StoreError> {
        let mut conn = self.writer.acquire().await?;
        let ms = wait.as_millis().to_string();
        sqlx::query(AssertSqlSafe(format!("PRAGMA busy_timeout = {ms}")))
            .execute(&mut *conn)
            .await?;
        let outcome = sqlx::query("PRAGMA wal_checkpoint(TRUNCATE)")
            .fetch_one(&mut *conn)
            .await;
        // Back to the writer's usual patience, whatever the checkpoint did.
        sqlx::query("PRAGMA busy_timeout = 10000")
            .execute(&mut *conn)
            .await?;
        let busy: i64 = outcome?.try_get(0)?;
        Ok(busy == 0)
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
        let pool = if is_chain_work() {
            &self.chain_reader
        } else {
            &self.reader
        };
        Ok(query.fetch_all(pool).await?)
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

    async fn explain(&self, q: Query) -> Result<Vec<String>, StoreError> {
        let sql = format!("EXPLAIN QUERY PLAN {}", q.sql);
        let query = bind_all!(sqlx::query(AssertSqlSafe(sql)), q.args);
        let rows = query.fetch_all(&self.reader).await?;
        // Rows are (id, parent, notused, detail) in tree order: indent by depth.
        let mut depth: Vec<(i64, usize)> = Vec::new();
        let mut lines = Vec::with_capacity(rows.len());
        for row in &rows {
            let id: i64 = row.try_get("id")?;
            let parent: i64 = row.try_get("parent")?;
            let detail: String = row.try_get("detail")?;
            let level = depth
                .iter()
                .rev()
                .find(|(i, _)| *i == parent)
                .map_or(0, |(_, l)| l + 1);
            depth.push((id, level));
            lines.push(format!("{}{detail}", "  ".repeat(level)));
        }
        Ok(lines)
    }

    async fn after_bulk_load(&self) -> Result<(), StoreError> {
        self.checkpoint_truncate(Duration::from_secs(10)).await?;
        self.wal_bytes();
        Ok(())
    }

    async fn close(&self) {
        self.chain_reader.close().await;
        self.reader.close().await;
        self.writer.close().await;
    }

    async fn upkeep(&self, idle: bool) {
        let bytes = self.wal_bytes();
        let due = {
            let Ok(state) = self.wal_upkeep.lock() else {
                return;
            };
            bytes > 0
                && (bytes >= WAL_FORCE_CHECKPOINT_BYTES
                    || (idle
                        && state
                            .last_truncate
                            .is_none_or(|t| t.elapsed() >= IDLE_CHECKPOINT_EVERY)))
        };
        if !due {
            return;
        }
        let started = std::time::Instant::now();
        match self.checkpoint_truncate(CHECKPOINT_READER_WAIT).await {
            Ok(done) => {
                if let Ok(mut state) = self.wal_upkeep.lock() {
                    state.last_truncate = Some(std::time::Instant::now());
                }
                let after = self.wal_bytes();
                if !done && bytes >= WAL_FORCE_CHECKPOINT_BYTES {
                    tracing::warn!(
                        wal_bytes = after,
                        waited_ms = started.elapsed().as_millis() as u64,
                        "SQLite WAL checkpoint kept from completing by a long reader; retrying after the next commit"
                    );
                } else {
                    tracing::debug!(
                        wal_bytes_before = bytes,
                        wal_bytes = after,
                        complete = done,
                        took_ms = started.elapsed().as_millis() as u64,
                        "SQLite WAL checkpoint"
                    );
                }
            }
            Err(e) => tracing::warn!(error = %e, "SQLite WAL checkpoint failed"),
        }
    }
}

pub struct PostgresBackend {
    pool: PgPool,
    /// Chain watchers' reads and transactions ([`chain_work`]).
    chain_pool: PgPool,
}

impl PostgresBackend {
    /// `max_connections` shared ones, and [`CHAIN_CONNECTIONS`] more kept for chain watchers
    /// (opened when first needed).
    pub async fn connect(url: &str, max_connections: u32) -> Result<Self, StoreError> {
        let options = PgConnectOptions::from_str(url)?;
        let pool = PgPoolOptions::new()
            .max_connections(max_connections)
            .acquire_timeout(Duration::from_secs(10))
            .connect_with(options.clone())
            .await?;
        let chain_pool = PgPoolOptions::new()
            .max_connections(CHAIN_CONNECTIONS)
            .min_connections(0)
            .acquire_timeout(Duration::from_secs(10))
            .connect_lazy_with(options);
        Ok(Self { pool, chain_pool })
    }

    fn pool(&self) -> &PgPool {
        if is_chain_work() {
            &self.chain_pool
        } else {
            &self.pool
        }
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
        Ok(self.pool().begin().await?)
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
        Ok(query.fetch_all(self.pool()).await?)
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

    async fn explain(&self, q: Query) -> Result<Vec<String>, StoreError> {
        let sql = format!("EXPLAIN {}", q.sql);
        let query = bind_all!(sqlx::query(AssertSqlSafe(sql)), q.args);
        let rows = query.fetch_all(&self.pool).await?;
        rows.iter()
            .map(|r| r.try_get::<String, _>(0).map_err(StoreError::from))
            .collect()
    }

    async fn after_bulk_load(&self) -> Result<(), StoreError> {
        sqlx::query("ANALYZE").execute(&self.pool).await?;
        Ok(())
    }

    async fn close(&self) {
        self.chain_pool.close().await;
        self.pool.close().await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A watcher's step is marked, and only its own task: a task it spawns (the watched
    /// set's full reload) reads through the shared connections.
    #[tokio::test]
    async fn chain_work_marks_its_own_task_only() {
        assert!(!is_chain_work());
        let (inside, spawned) = chain_work(async {
            let spawned = tokio::spawn(async { is_chain_work() }).await;
            (is_chain_work(), spawned)
        })
        .await;
        assert!(inside);
        assert!(!spawned.unwrap_or(true));
        assert!(!is_chain_work());
    }

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
        let limit = SqliteBackend::fetch_in(&mut tx, Query::new("PRAGMA journal_size_limit"))
            .await
            .unwrap();
        assert_eq!(
            limit[0].int("journal_size_limit").unwrap(),
            64 * 1024 * 1024
        );
    }
}

#[cfg(test)]
mod wal_tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    /// Writes a few hundred KB to the WAL.
    async fn write(backend: &SqliteBackend) {
        let mut tx = backend.begin().await.unwrap();
        SqliteBackend::execute(&mut tx, Query::new("CREATE TABLE IF NOT EXISTS t (v TEXT)"))
            .await
            .unwrap();
        for i in 0..200 {
            SqliteBackend::execute(
                &mut tx,
                Query::new("INSERT INTO t (v) VALUES ($1)").text(format!("{i:04000}")),
            )
            .await
            .unwrap();
        }
        SqliteBackend::commit(tx).await.unwrap();
    }

    /// An idle writer empties the WAL; a reader holding an old snapshot keeps it from doing
    /// so, but only for as long as it holds it (issue 25).
    #[tokio::test]
    async fn an_idle_writer_truncates_the_wal_unless_a_reader_holds_it() {
        let dir = tempfile::tempdir().unwrap();
        let backend = SqliteBackend::open(&dir.path().join("coffer.db"))
            .await
            .unwrap();
        write(&backend).await;
        assert!(backend.wal_bytes() > 100_000, "{}", backend.wal_bytes());
        backend.upkeep(true).await;
        assert_eq!(backend.wal_bytes(), 0, "truncated when idle");

        write(&backend).await;
        // A reader in the middle of a read transaction, on the snapshot before the next write.
        let mut reader = backend.reader.acquire().await.unwrap();
        sqlx::query("BEGIN").execute(&mut *reader).await.unwrap();
        sqlx::query("SELECT count(*) FROM t")
            .fetch_one(&mut *reader)
            .await
            .unwrap();
        write(&backend).await;
        let held = backend.wal_bytes();
        // Not due yet (truncated less than a second ago), then due but held back.
        backend.upkeep(true).await;
        assert_eq!(backend.wal_bytes(), held);
        tokio::time::sleep(IDLE_CHECKPOINT_EVERY).await;
        let tried = std::time::Instant::now();
        backend.upkeep(true).await;
        assert!(
            tried.elapsed() < CHECKPOINT_READER_WAIT * 4,
            "the wait is bounded"
        );
        assert!(
            backend.wal_bytes() > 0,
            "the reader's snapshot keeps the WAL"
        );
        sqlx::query("COMMIT").execute(&mut *reader).await.unwrap();
        drop(reader);
        tokio::time::sleep(IDLE_CHECKPOINT_EVERY).await;
        backend.upkeep(true).await;
        assert_eq!(backend.wal_bytes(), 0, "truncated once the reader is done");
    }
}
