//! The floor of `scripts/bench-api.sh` (which measures order creation on the release
//! `coffer serve`), and a harness beside it.
//!
//! Serves, on two loopback ports:
//! - the real Coffer app (SQLite with group commit, one merchant, a wallet on `bsc`, fixed
//!   rates; the address deriver is a deterministic stand-in, as in the tests);
//! - the floor: a bare axum handler inserting one row into a SQLite database opened with the
//!   same durability settings (WAL, `synchronous = FULL`, one writer connection).
//!
//! The harness is not the product (no background work, a stand-in deriver): issue 24 found it
//! 1.2× the floor where the product was 0.5–0.85×, so the script measures only its floor.
//!
//! Prints `coffer=<addr> floor=<addr> key=<api key>` and serves until killed.

#![allow(clippy::unwrap_used, clippy::expect_used)] // a benchmark harness: fail loudly

use std::str::FromStr;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use axum::Router;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::StatusCode;
use axum::routing::post;
use coffer_api::v1::ApiSettings;
use coffer_api::{AppState, HttpSettings};
use coffer_core::{
    Asset, AssetId, AssetKind, Chain, ChainId, ChainKind, Decimals, FixedRates, Network, Price,
};
use coffer_engine::{AssetRegistry, Engine, EngineParts, EngineSettings, Methods, SystemClock};
use coffer_testkit::fixtures::TestDeriver;
use rust_decimal::Decimal;
use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePoolOptions, SqliteSynchronous};

fn registry() -> AssetRegistry {
    let bsc = Chain {
        id: ChainId::parse("bsc").unwrap(),
        kind: ChainKind::Evm,
        network: Network::Mainnet,
        name: "BNB Smart Chain".into(),
        confirmations: 15,
        evm_chain_id: Some(56),
    };
    let usdt = Asset {
        id: AssetId::from_str("bsc:USDT").unwrap(),
        kind: AssetKind::Token {
            contract: "0x55d398326f99059fF775485246999027B3197955".into(),
        },
        decimals: Decimals::new(18).unwrap(),
        display_decimals: 6,
        usd_stablecoin: true,
    };
    AssetRegistry::new(vec![bsc], vec![usdt]).unwrap()
}

#[derive(Clone)]
struct Floor {
    pool: sqlx::SqlitePool,
    seq: Arc<AtomicU64>,
}

async fn floor_insert(State(floor): State<Floor>, body: Bytes) -> (StatusCode, String) {
    let n = floor.seq.fetch_add(1, Ordering::Relaxed);
    sqlx::query("INSERT INTO t (id, body) VALUES ($1, $2)")
        .bind(format!("row_{n}"))
        .bind(String::from_utf8_lossy(&body).into_owned())
        .execute(&floor.pool)
        .await
        .unwrap();
    (StatusCode::CREATED, format!("{{\"id\":\"row_{n}\"}}"))
}

#[tokio::main]
async fn main() {
    let dir = tempfile::tempdir().unwrap();

    // Coffer.
    let store = coffer_store::open(None, &dir.path().join("coffer"), 16)
        .await
        .unwrap();
    store.migrate().await.unwrap();
    let engine = Engine::new(EngineParts {
        store,
        rates: Arc::new(FixedRates::new().with("USDT", "USD", Price::new(Decimal::ONE).unwrap())),
        assets: Arc::new(registry()),
        methods: Methods::default().with(
            ChainKind::Evm,
            TestDeriver::new(|d, i| format!("0x{d}{i:08x}")).evm(),
        ),
        clock: Arc::new(SystemClock),
        settings: Arc::new(EngineSettings::default()),
    });
    let (merchant, key) = engine.create_merchant("bench").await.unwrap();
    engine
        .set_wallet(&merchant.id, "bsc", "benchxpub")
        .await
        .unwrap();
    let state = AppState {
        engine,
        metrics: coffer_api::metrics_handle(),
    };
    let api = coffer_api::v1::router(
        &state,
        &ApiSettings {
            rate_limit_per_minute: 0,
            ..ApiSettings::default()
        },
    );
    let app = coffer_api::router(state, &HttpSettings::default(), api);
    let coffer = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();

    // Floor: same durability settings as the embedded store.
    std::fs::create_dir_all(dir.path().join("floor")).unwrap();
    let options = SqliteConnectOptions::new()
        .filename(dir.path().join("floor").join("floor.db"))
        .create_if_missing(true)
        .journal_mode(SqliteJournalMode::Wal)
        .synchronous(SqliteSynchronous::Full);
    let pool = SqlitePoolOptions::new()
        .max_connections(1)
        .connect_with(options)
        .await
        .unwrap();
    sqlx::query("CREATE TABLE t (id TEXT PRIMARY KEY, body TEXT NOT NULL)")
        .execute(&pool)
        .await
        .unwrap();
    let floor_app = Router::new()
        .route("/floor", post(floor_insert))
        .with_state(Floor {
            pool,
            seq: Arc::new(AtomicU64::new(0)),
        });
    let floor = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();

    println!(
        "coffer={} floor={} key={}",
        coffer.local_addr().unwrap(),
        floor.local_addr().unwrap(),
        key.token
    );
    tokio::spawn(async move {
        axum::serve(floor, floor_app).await.unwrap();
    });
    coffer_api::serve(coffer, app, std::future::pending())
        .await
        .unwrap();
    drop(dir);
}
