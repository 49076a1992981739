//! Test support: every test gets its own fresh database, SQLite in a temp dir or a new
//! database on the PostgreSQL server named by `COFFER_TEST_PG_URL` (started by
//! `scripts/test.sh`). Without that variable the PostgreSQL half of a suite fails loudly
//! instead of passing silently; set `COFFER_TEST_SKIP_PG=1` to skip it on purpose.

// Test support: a failed fixture must stop the test at once.
#![allow(clippy::expect_used)]

pub mod fixtures;
pub mod sql_volume;
pub mod volume;

use std::sync::Arc;

use coffer_store::{Store, StoreError};
use sqlx::Connection;
use tempfile::TempDir;

pub const PG_URL_VAR: &str = "COFFER_TEST_PG_URL";
pub const SKIP_PG_VAR: &str = "COFFER_TEST_SKIP_PG";

/// A migrated store on a fresh database. Keep it alive for the test's duration: dropping it
/// deletes a SQLite database's directory.
pub struct TestDb {
    pub store: Arc<dyn Store>,
    /// `None` for the embedded database, the URL of the fresh database for PostgreSQL.
    pub url: Option<String>,
    pub dir: TempDir,
}

impl TestDb {
    pub fn kind(&self) -> &'static str {
        self.store.kind()
    }
}

/// An HTTP client for tests. reqwest is built with `rustls-no-provider` (no aws-lc in the
/// tree), so the ring provider must be installed before the first client is built.
pub fn http_client() -> reqwest::Client {
    let _ = rustls::crypto::ring::default_provider().install_default();
    reqwest::Client::new()
}

/// 64 random bits, hex: unique names for databases and test fixtures.
pub fn random_suffix() -> String {
    let mut bytes = [0u8; 8];
    getrandom::fill(&mut bytes).expect("OS random source");
    hex::encode(bytes)
}

pub async fn fresh_sqlite() -> Result<TestDb, StoreError> {
    let dir = tempfile::tempdir().map_err(|e| StoreError::Unavailable(e.to_string()))?;
    let store = coffer_store::open(None, dir.path(), 4).await?;
    store.migrate().await?;
    Ok(TestDb {
        store,
        url: None,
        dir,
    })
}

/// Whether the PostgreSQL half of the suites should run.
pub fn postgres_wanted() -> bool {
    std::env::var_os(SKIP_PG_VAR).is_none()
}

/// Create `coffer_test_<random>` on the test server and open a migrated store on it.
pub async fn fresh_postgres() -> Result<TestDb, StoreError> {
    let admin_url = std::env::var(PG_URL_VAR).map_err(|_| {
        StoreError::Unavailable(format!(
            "{PG_URL_VAR} is not set: run the suite with scripts/test.sh (which starts a \
             PostgreSQL server), or set {SKIP_PG_VAR}=1 to skip PostgreSQL on purpose"
        ))
    })?;
    let name = format!("coffer_test_{}", random_suffix());
    let mut admin = sqlx::PgConnection::connect(&admin_url).await?;
    sqlx::query(sqlx::AssertSqlSafe(format!("CREATE DATABASE {name}")))
        .execute(&mut admin)
        .await?;
    admin.close().await?;
    let url = with_database(&admin_url, &name);
    let dir = tempfile::tempdir().map_err(|e| StoreError::Unavailable(e.to_string()))?;
    let store = coffer_store::open(Some(&url), dir.path(), 4).await?;
    store.migrate().await?;
    Ok(TestDb {
        store,
        url: Some(url),
        dir,
    })
}

/// Replace the database name in a `postgres://…/name?params` URL.
pub fn with_database(url: &str, database: &str) -> String {
    let (base, params) = match url.split_once('?') {
        Some((b, p)) => (b, Some(p)),
        None => (url, None),
    };
    let scheme_end = base.find("://").map_or(0, |i| i + 3);
    let host_part = match base[scheme_end..].find('/') {
        Some(i) => &base[..scheme_end + i],
        None => base,
    };
    match params {
        Some(p) => format!("{host_part}/{database}?{p}"),
        None => format!("{host_part}/{database}"),
    }
}

/// Run the same async test body against SQLite and PostgreSQL.
#[macro_export]
macro_rules! both_backends {
    ($($name:ident => $body:ident;)+) => {
        mod sqlite {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $name() {
                    let db = $crate::fresh_sqlite().await.expect("fresh SQLite database");
                    super::$body(&db).await;
                }
            )+
        }
        mod postgres {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $name() {
                    if !$crate::postgres_wanted() {
                        eprintln!("skipping PostgreSQL: {} is set", $crate::SKIP_PG_VAR);
                        return;
                    }
                    let db = $crate::fresh_postgres().await.expect("fresh PostgreSQL database");
                    super::$body(&db).await;
                }
            )+
        }
    };
}

#[cfg(test)]
mod tests {
    use super::with_database;

    #[test]
    fn database_name_replacement() {
        assert_eq!(
            with_database("postgres://u@127.0.0.1:5433/postgres", "x"),
            "postgres://u@127.0.0.1:5433/x"
        );
        assert_eq!(
            with_database("postgres://u@127.0.0.1:5433?sslmode=disable", "x"),
            "postgres://u@127.0.0.1:5433/x?sslmode=disable"
        );
        assert_eq!(
            with_database("postgresql://u:p@h/db?a=b", "y"),
            "postgresql://u:p@h/y?a=b"
        );
    }
}
