//! Databases holding a history at volume ([`coffer_store::seed`], a million orders), for
//! the tests that must hold at that size. Seeding takes a while, so it happens once: SQLite
//! into a file under `target/coffer-seed/` (kept between runs, named by the seed's
//! fingerprint, which covers the migrations), PostgreSQL into a template database on the
//! test server; every test then gets its own copy.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use coffer_store::seed::{self, Volume};
use coffer_store::{PostgresBackend, SqlStore, SqliteBackend, StoreError};
use sqlx::Connection;
use tempfile::TempDir;

use crate::{PG_URL_VAR, random_suffix, with_database};

/// A copy of a seeded database, open, and how long getting it took.
pub struct Seeded<B: coffer_store::Backend> {
    pub store: SqlStore<B>,
    pub volume: Volume,
    /// Spent seeding the template now (`None`: it existed already).
    pub seeded_in: Option<Duration>,
    /// Spent copying the template.
    pub copied_in: Duration,
    /// Holds the SQLite copy; deleted when dropped.
    pub dir: TempDir,
    /// PostgreSQL: the copy's database name (its server processes are titled with it).
    pub database: Option<String>,
}

fn unavailable(e: impl std::fmt::Display) -> StoreError {
    StoreError::Unavailable(e.to_string())
}

fn seed_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../target/coffer-seed")
}

/// A fresh copy of the SQLite database seeded with `volume`, seeding it first if this
/// machine has none yet (one process seeds; the others wait for it).
pub async fn seeded_sqlite(volume: &Volume) -> Result<Seeded<SqliteBackend>, StoreError> {
    let dir = seed_dir();
    std::fs::create_dir_all(&dir).map_err(unavailable)?;
    let fingerprint = volume.fingerprint();
    let template = dir.join(format!("{fingerprint}.db"));
    let lock =
        std::fs::File::create(dir.join(format!("{fingerprint}.lock"))).map_err(unavailable)?;
    // Blocking, but only while another test process seeds: nothing else runs meanwhile.
    lock.lock().map_err(unavailable)?;
    let mut seeded_in = None;
    if !template.exists() {
        let started = Instant::now();
        build_sqlite(&dir, &template, volume).await?;
        seeded_in = Some(started.elapsed());
    }
    let copy = tempfile::tempdir().map_err(unavailable)?;
    let started = Instant::now();
    std::fs::copy(&template, copy.path().join("coffer.db")).map_err(unavailable)?;
    let copied_in = started.elapsed();
    lock.unlock().map_err(unavailable)?;
    let backend = SqliteBackend::open(&copy.path().join("coffer.db")).await?;
    Ok(Seeded {
        store: SqlStore::with_group_commit(backend, coffer_store::MAX_GROUP),
        volume: volume.clone(),
        seeded_in,
        copied_in,
        dir: copy,
        database: None,
    })
}

async fn build_sqlite(dir: &Path, template: &Path, volume: &Volume) -> Result<(), StoreError> {
    // Templates of other fingerprints are from older builds of this worktree.
    if let Ok(entries) = std::fs::read_dir(dir) {
        for entry in entries.flatten() {
            let path = entry.path();
            if path.extension().is_some_and(|e| e == "db") && path != template {
                let _ = std::fs::remove_file(&path);
            }
        }
    }
    let building = tempfile::tempdir_in(dir).map_err(unavailable)?;
    let path = building.path().join("coffer.db");
    let store = SqlStore::new(SqliteBackend::open_for_bulk_load(&path).await?);
    coffer_store::Store::migrate(&store).await?;
    let report = seed::seed(&store, volume).await?;
    store.close().await;
    eprintln!(
        "seeded {} orders ({} addresses, {} payments, {} deposit accounts) into SQLite in {:.1} s",
        report.orders,
        report.order_addresses,
        report.payments,
        report.deposit_accounts,
        report.elapsed.as_secs_f64()
    );
    std::fs::rename(&path, template).map_err(unavailable)
}

/// A fresh database on the test server (`COFFER_TEST_PG_URL`) copied from the template
/// seeded with `volume`, seeding the template first if the server has none yet.
pub async fn seeded_postgres(volume: &Volume) -> Result<Seeded<PostgresBackend>, StoreError> {
    let admin_url = std::env::var(PG_URL_VAR).map_err(|_| {
        unavailable(format!(
            "{PG_URL_VAR} is not set: run the suite with scripts/test.sh (which starts a \
             PostgreSQL server), or set {}=1 to skip PostgreSQL on purpose",
            crate::SKIP_PG_VAR
        ))
    })?;
    let template = format!("coffer_seed_{}", volume.fingerprint());
    let mut admin = sqlx::PgConnection::connect(&admin_url).await?;
    // One process seeds; the others wait here for it.
    sqlx::query("SELECT pg_advisory_lock(hashtext($1))")
        .bind(&template)
        .execute(&mut admin)
        .await?;
    let exists = sqlx::query("SELECT 1 FROM pg_database WHERE datname = $1")
        .bind(&template)
        .fetch_optional(&mut admin)
        .await?
        .is_some();
    let mut seeded_in = None;
    if !exists {
        let started = Instant::now();
        let building = format!("{template}_building");
        sqlx::query(sqlx::AssertSqlSafe(format!(
            "DROP DATABASE IF EXISTS {building}"
        )))
        .execute(&mut admin)
        .await?;
        sqlx::query(sqlx::AssertSqlSafe(format!("CREATE DATABASE {building}")))
            .execute(&mut admin)
            .await?;
        let store = SqlStore::new(
            PostgresBackend::connect(&with_database(&admin_url, &building), 4).await?,
        );
        coffer_store::Store::migrate(&store).await?;
        let report = seed::seed(&store, volume).await?;
        store.close().await;
        eprintln!(
            "seeded {} orders ({} addresses, {} payments, {} deposit accounts) into PostgreSQL in {:.1} s",
            report.orders,
            report.order_addresses,
            report.payments,
            report.deposit_accounts,
            report.elapsed.as_secs_f64()
        );
        sqlx::query(sqlx::AssertSqlSafe(format!(
            "ALTER DATABASE {building} RENAME TO {template}"
        )))
        .execute(&mut admin)
        .await?;
        seeded_in = Some(started.elapsed());
    }
    let name = format!("coffer_test_{}", random_suffix());
    let started = Instant::now();
    // A file copy (and a checkpoint) instead of the default, which writes every page of the
    // template through the WAL.
    sqlx::query(sqlx::AssertSqlSafe(format!(
        "CREATE DATABASE {name} TEMPLATE {template} STRATEGY FILE_COPY"
    )))
    .execute(&mut admin)
    .await?;
    let copied_in = started.elapsed();
    sqlx::query("SELECT pg_advisory_unlock(hashtext($1))")
        .bind(&template)
        .execute(&mut admin)
        .await?;
    admin.close().await?;
    let backend = PostgresBackend::connect(&with_database(&admin_url, &name), 8).await?;
    Ok(Seeded {
        store: SqlStore::new(backend),
        volume: volume.clone(),
        seeded_in,
        copied_in,
        dir: tempfile::tempdir().map_err(unavailable)?,
        database: Some(name),
    })
}
