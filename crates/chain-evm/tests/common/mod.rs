//! A real anvil, real test tokens (compiled from tests/evm/contracts/TestToken.sol), a real
//! database, the real engine and watcher.

#![allow(dead_code)]

use std::str::FromStr;
use std::sync::Arc;
use std::time::Duration;

use alloy::network::Ethereum;
use alloy::primitives::{Address, B256, U256};
use alloy::providers::{Provider, RootProvider};
use alloy::sol;
use alloy::sol_types::{SolCall, SolValue};
use coffer_chain_evm::testtools::Anvil;
use coffer_chain_evm::{EvmMethod, EvmWatchConfig, EvmWatcher, Tokens};
use coffer_core::{
    Asset, AssetId, AssetKind, Chain, ChainId, ChainKind, Decimals, FixedRates, MerchantId,
    Network, Order, OrderId, Price,
};
use coffer_engine::{
    AssetRegistry, Engine, EngineParts, EngineSettings, Methods, NewOrder, SystemClock,
};
use coffer_testkit::TestDb;
use rust_decimal::Decimal;
use serde_json::{Value, json};

sol! {
    function mint(address to, uint256 value);
    function transfer(address to, uint256 value) returns (bool);
    function transferThenRevert(address to, uint256 value);
}

/// The account xpub (m/44'/60'/0') of the test mnemonic "test test … junk".
pub const XPUB: &str = "xpub6BemYiVNp19ZzUSZng6uUnx3dQm5eRwcjTjZh2wBRosHnSF4QNykc8MvSiJcUseh3sA1WL82iquWY2bRBv8Qqsn8ugJK63aLXKyPosCnGUv";
/// anvil's default account 0: pays for everything in the tests.
pub const PAYER: &str = "0xf39Fd6e51aad88F6F4ce6aB8827279cffFb92266";

pub fn payer() -> Address {
    PAYER.parse().unwrap()
}

pub struct Env {
    pub anvil: Anvil,
    pub provider: RootProvider<Ethereum>,
    pub engine: Engine,
    /// The test's database, for assertions.
    pub store: std::sync::Arc<dyn coffer_store::Store>,
    pub merchant: MerchantId,
    /// 6 decimals (like USDT on Ethereum).
    pub usdt: Address,
    /// 18 decimals (like USDC on BSC).
    pub usdc: Address,
}

pub fn chain_id() -> ChainId {
    ChainId::parse("anvil").unwrap()
}

pub fn asset(symbol: &str) -> AssetId {
    AssetId::from_str(&format!("anvil:{symbol}")).unwrap()
}

fn artifact() -> (Vec<u8>, String) {
    let path = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../tests/evm/contracts/TestToken.json"
    );
    let raw: Value = serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap();
    let code = raw["bytecode"].as_str().unwrap().trim_start_matches("0x");
    (
        alloy::hex::decode(code).unwrap(),
        raw["compiler"].to_string(),
    )
}

pub async fn rpc(provider: &RootProvider<Ethereum>, method: &'static str, params: Value) -> Value {
    provider
        .raw_request::<_, Value>(method.into(), params)
        .await
        .unwrap_or_else(|e| panic!("{method}: {e}"))
}

/// Send a transaction from the unlocked payer; returns its hash (mined at once with automine).
pub async fn send(
    provider: &RootProvider<Ethereum>,
    to: Option<Address>,
    data: Vec<u8>,
    value: U256,
) -> B256 {
    let mut tx = json!({"from": PAYER, "data": format!("0x{}", alloy::hex::encode(data)), "value": format!("{value:#x}"), "gas": "0x200000"});
    if let Some(to) = to {
        tx["to"] = json!(to.to_checksum(None));
    }
    let hash = rpc(provider, "eth_sendTransaction", json!([tx])).await;
    let hash: B256 = hash.as_str().unwrap().parse().unwrap();
    wait_mined(provider, hash).await;
    hash
}

/// anvil answers eth_sendTransaction before its automine finished: wait for the receipt.
pub async fn wait_mined(provider: &RootProvider<Ethereum>, hash: B256) {
    if rpc(provider, "anvil_getAutomine", json!([])).await != json!(true) {
        return;
    }
    for _ in 0..200 {
        if provider
            .get_transaction_receipt(hash)
            .await
            .unwrap()
            .is_some()
        {
            return;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    panic!("transaction {hash} not mined");
}

pub async fn deploy(
    provider: &RootProvider<Ethereum>,
    name: &str,
    symbol: &str,
    decimals: u8,
) -> Address {
    let (mut code, _) = artifact();
    code.extend((name.to_owned(), symbol.to_owned(), U256::from(decimals)).abi_encode_params());
    let hash = send(provider, None, code, U256::ZERO).await;
    let receipt = provider
        .get_transaction_receipt(hash)
        .await
        .unwrap()
        .unwrap();
    let token = receipt.contract_address.unwrap();
    let data = mintCall {
        to: payer(),
        value: U256::from(10u128.pow(30)),
    }
    .abi_encode();
    send(provider, Some(token), data, U256::ZERO).await;
    token
}

pub async fn pay_token(env: &Env, token: Address, to: &str, amount: u128) -> B256 {
    let data = transferCall {
        to: to.parse().unwrap(),
        value: U256::from(amount),
    }
    .abi_encode();
    send(&env.provider, Some(token), data, U256::ZERO).await
}

pub async fn pay_token_reverting(env: &Env, token: Address, to: &str, amount: u128) -> B256 {
    let data = transferThenRevertCall {
        to: to.parse().unwrap(),
        value: U256::from(amount),
    }
    .abi_encode();
    send(&env.provider, Some(token), data, U256::ZERO).await
}

pub async fn pay_native(env: &Env, to: &str, amount: u128) -> B256 {
    send(
        &env.provider,
        Some(to.parse().unwrap()),
        Vec::new(),
        U256::from(amount),
    )
    .await
}

pub async fn mine(env: &Env, blocks: u64) {
    rpc(&env.provider, "anvil_mine", json!([format!("{blocks:#x}")])).await;
}

pub fn registry(usdt: Address, usdc: Address, confirmations: u32) -> AssetRegistry {
    let chain = Chain {
        id: chain_id(),
        kind: ChainKind::Evm,
        network: Network::Regtest,
        name: "anvil".into(),
        confirmations,
        evm_chain_id: Some(31337),
    };
    let a = |symbol: &str, kind: AssetKind, decimals: u8, stable: bool| Asset {
        id: asset(symbol),
        kind,
        decimals: Decimals::new(decimals).unwrap(),
        display_decimals: 6,
        usd_stablecoin: stable,
    };
    AssetRegistry::new(
        vec![chain],
        vec![
            a("ETH", AssetKind::Native, 18, false),
            a(
                "USDT",
                AssetKind::Token {
                    contract: usdt.to_checksum(None),
                },
                6,
                true,
            ),
            a(
                "USDC",
                AssetKind::Token {
                    contract: usdc.to_checksum(None),
                },
                18,
                true,
            ),
        ],
    )
    .unwrap()
}

pub fn engine_for(db: &TestDb, usdt: Address, usdc: Address, confirmations: u32) -> Engine {
    let rates = FixedRates::new().with("ETH", "USD", Price::new(Decimal::from(2000)).unwrap());
    Engine::new(EngineParts {
        store: db.store.clone(),
        rates: Arc::new(rates),
        assets: Arc::new(registry(usdt, usdc, confirmations)),
        methods: Methods::default().with(ChainKind::Evm, Arc::new(EvmMethod)),
        clock: Arc::new(SystemClock),
        settings: Arc::new(EngineSettings::default()),
    })
}

pub fn watch_config(env: &Env) -> EvmWatchConfig {
    let mut cfg = EvmWatchConfig::new(chain_id(), vec![env.anvil.url()]);
    cfg.evm_chain_id = Some(31337);
    cfg.watch.poll_interval = Duration::from_millis(100);
    cfg.tokens = Tokens::new([(env.usdt, asset("USDT")), (env.usdc, asset("USDC"))]);
    cfg.native = Some(asset("ETH"));
    cfg
}

/// anvil + two tokens + a merchant with the test xpub as its wallet. `confirmations` is the
/// chain's default.
pub async fn env(db: &TestDb, confirmations: u32) -> Env {
    env_with(db, confirmations, &[]).await
}

pub async fn env_with(db: &TestDb, confirmations: u32, anvil_args: &[&str]) -> Env {
    coffer_chain_evm::install_crypto_provider();
    let anvil = Anvil::start(anvil_args).unwrap();
    let provider = RootProvider::<Ethereum>::new_http(anvil.url().parse().unwrap());
    let usdt = deploy(&provider, "Tether USD", "USDT", 6).await;
    let usdc = deploy(&provider, "USD Coin", "USDC", 18).await;
    let engine = engine_for(db, usdt, usdc, confirmations);
    let (merchant, _) = engine.create_merchant("Anvil shop").await.unwrap();
    engine
        .set_wallet(&merchant.id, "anvil", XPUB)
        .await
        .unwrap();
    Env {
        anvil,
        provider,
        engine,
        store: db.store.clone(),
        merchant: merchant.id,
        usdt,
        usdc,
    }
}

pub async fn watcher(env: &Env) -> EvmWatcher {
    let w = EvmWatcher::new(env.engine.clone(), watch_config(env)).unwrap();
    w.check().await.unwrap();
    w
}

/// Step the watcher until it has scanned the tip.
pub async fn sync(w: &mut EvmWatcher) {
    for _ in 0..1000 {
        match w.step().await {
            Ok(coffer_chain_evm::Step::Scanned { to, tip }) if to < tip => continue,
            Ok(_) => return,
            Err(coffer_chain_evm::WatchError::ChangedDuringScan) => continue,
            Err(e) => panic!("watcher step: {e}"),
        }
    }
    panic!("watcher did not reach the tip");
}

pub async fn order(env: &Env, usd: &str, symbol: &str) -> Order {
    order_on(&env.engine, &env.merchant, usd, symbol).await
}

/// An order of `merchant` through `engine` (another merchant, another clock).
pub async fn order_on(engine: &Engine, merchant: &MerchantId, usd: &str, symbol: &str) -> Order {
    engine
        .create_order(
            merchant,
            NewOrder {
                amount: Decimal::from_str(usd).unwrap(),
                currency: "USD".into(),
                asset: Some(asset(symbol)),
                fixed_stablecoin_rate: true,
                dialect: "native".into(),
                ..NewOrder::default()
            },
        )
        .await
        .unwrap()
        .order
}

pub async fn reload(env: &Env, id: &OrderId) -> Order {
    env.engine.get_order(&env.merchant, id).await.unwrap()
}

pub fn address(o: &Order) -> String {
    o.target.as_ref().unwrap().address.clone()
}

pub fn due(o: &Order) -> u128 {
    o.target.as_ref().unwrap().amount_due.get()
}

pub async fn event_kinds(env: &Env, subject_order: &Order) -> Vec<String> {
    order_events(env, subject_order)
        .await
        .into_iter()
        .map(|e| e.kind.as_str().to_owned())
        .collect()
}

/// The events about an order and its payments, oldest first.
pub async fn order_events(env: &Env, subject_order: &Order) -> Vec<coffer_core::Event> {
    let events = env
        .store
        .list_events(&coffer_store::EventQuery {
            limit: 500,
            ..Default::default()
        })
        .await
        .unwrap();
    let payments = env
        .store
        .payments_for_order(&subject_order.id)
        .await
        .unwrap();
    events
        .into_iter()
        .filter(|e| {
            e.event.subject == subject_order.id.to_string()
                || payments.iter().any(|p| p.id.to_string() == e.event.subject)
        })
        .map(|e| e.event)
        .collect()
}
