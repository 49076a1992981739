//! Shared by the tests that run the real `coffer` binary against real nodes: starting the
//! binary on the test's database, killing it, waiting for a condition, and an engine over the
//! same database that sees the same chain as the binary (the tests create orders through it,
//! as the API would).

#![allow(dead_code)] // each test binary uses its own subset

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::str::FromStr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use coffer_core::{
    Asset, AssetId, AssetKind, Chain, ChainId, ChainKind, Decimals, FixedRates, Network, Order,
    OrderStatus, Price,
};
use coffer_engine::{
    AssetRegistry, Clock, Engine, EngineParts, EngineSettings, Methods, SystemClock,
};
use coffer_testkit::TestDb;
use rust_decimal::Decimal;

pub const BIN: &str = env!("CARGO_BIN_EXE_coffer");

/// Account xpub (m/44'/60'/0') of the test mnemonic; checked in chain-evm's derive tests.
pub const XPUB: &str = "xpub6BemYiVNp19ZzUSZng6uUnx3dQm5eRwcjTjZh2wBRosHnSF4QNykc8MvSiJcUseh3sA1WL82iquWY2bRBv8Qqsn8ugJK63aLXKyPosCnGUv";

/// `coffer --config CONFIG …` on the test's database, ignoring any `COFFER_*` variable of the
/// environment the test runs in.
pub fn coffer(config: &Path, db: &TestDb) -> Command {
    let mut cmd = Command::new(BIN);
    for (key, _) in std::env::vars() {
        if key.starts_with("COFFER_") {
            cmd.env_remove(key);
        }
    }
    cmd.arg("--config").arg(config);
    cmd.env("COFFER_DATA_DIR", db.dir.path());
    if let Some(url) = &db.url {
        cmd.env("COFFER_DATABASE_URL", url);
    }
    cmd
}

/// `coffer … serve` from `cmd` with its log read and dropped (a full pipe would block it).
pub fn spawn_serve(mut cmd: Command) -> Child {
    let mut child = cmd
        .arg("serve")
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let stderr = child.stderr.take().unwrap();
    std::thread::spawn(move || for _ in BufReader::new(stderr).lines() {});
    child
}

/// Kill without warning (no graceful shutdown), and reap.
pub fn sigkill(child: &mut Child) {
    Command::new("kill")
        .args(["-KILL", &child.id().to_string()])
        .status()
        .unwrap();
    child.wait().unwrap();
}

/// SIGTERM by pid, then wait up to `within` for the exit; its code.
pub fn sigterm(child: &mut Child, within: Duration) -> Option<i32> {
    Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .unwrap();
    let deadline = Instant::now() + within;
    loop {
        if let Some(status) = child.try_wait().unwrap() {
            return status.code();
        }
        assert!(
            Instant::now() < deadline,
            "no exit within {within:?} of SIGTERM"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// Poll `f` every 100 ms until it holds; panic naming `what` after `deadline`.
pub async fn wait_until(what: &str, deadline: Duration, mut f: impl AsyncFnMut() -> bool) {
    let end = Instant::now() + deadline;
    while Instant::now() < end {
        if f().await {
            return;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("timed out waiting for {what}");
}

pub async fn status(engine: &Engine, o: &Order) -> OrderStatus {
    engine
        .find_order(&o.id)
        .await
        .unwrap()
        .unwrap()
        .state
        .status
}

/// An engine over the test's database for one anvil chain (`chain_id` 31337, 1 confirmation)
/// named `chain`, with ETH and a 6-decimal USDT at `usdt`: the same chain and assets as the
/// binary's configuration in these tests.
pub fn anvil_engine(db: &TestDb, chain: &str, usdt: &str) -> Engine {
    anvil_engine_with(db, chain, usdt, 1, Arc::new(SystemClock))
}

/// [`anvil_engine`] with the chain's confirmations and the engine's clock given.
pub fn anvil_engine_with(
    db: &TestDb,
    chain: &str,
    usdt: &str,
    confirmations: u32,
    clock: Arc<dyn Clock>,
) -> Engine {
    let chain_def = Chain {
        id: ChainId::parse(chain).unwrap(),
        kind: ChainKind::Evm,
        network: Network::Regtest,
        name: chain.into(),
        confirmations,
        evm_chain_id: Some(31337),
    };
    let asset = |s: &str, kind, d: u8, stable| Asset {
        id: AssetId::from_str(&format!("{chain}:{s}")).unwrap(),
        kind,
        decimals: Decimals::new(d).unwrap(),
        display_decimals: 6,
        usd_stablecoin: stable,
    };
    let assets = AssetRegistry::new(
        vec![chain_def],
        vec![
            asset("ETH", AssetKind::Native, 18, false),
            asset(
                "USDT",
                AssetKind::Token {
                    contract: usdt.into(),
                },
                6,
                true,
            ),
        ],
    )
    .unwrap();
    Engine::new(EngineParts {
        store: db.store.clone(),
        rates: Arc::new(FixedRates::new().with(
            "ETH",
            "USD",
            Price::new(Decimal::from(2000)).unwrap(),
        )),
        assets: Arc::new(assets),
        methods: Methods::default().with(ChainKind::Evm, Arc::new(coffer_chain_evm::EvmMethod)),
        clock,
        settings: Arc::new(EngineSettings::default()),
    })
}
