//! A history at volume, for tests and benchmarks (hidden from the docs): a deterministic shop
//! history of orders, their addresses, payments and deposit accounts, written through
//! [`SqlStore::bulk_commit`], which plans every changeset as [`crate::Store::commit`] does.
//!
//! Ids, tokens and addresses count up instead of being random, so that every index is
//! appended to and a million orders load in seconds; what the history looks like to a query
//! plan (how many rows, how they spread over time, chains, statuses) is what matters here.
//! Events and timeline entries are left out: no query measured here reads them.

use std::str::FromStr;
use std::time::{Duration as StdDuration, Instant};

use coffer_core::order::{Derivation, LockedRate};
use coffer_core::{
    AssetId, BaseUnits, ChainId, CheckoutToken, Deposit, MatchStatus, Merchant, MerchantId, Order,
    OrderLinks, OrderState, OrderStatus, Payment, PaymentStatus, PaymentTarget, Price,
    SettlementPolicy, StatusReason, Totals,
};
use rust_decimal::Decimal;
use time::{Duration, OffsetDateTime};

use crate::backend::Backend;
use crate::{
    Changeset, DepositAddressRecord, NewDepositAccount, OrderUpdate, SqlStore, StoreError,
    WalletMark,
};

/// Bumped whenever the generated history changes, so cached copies are rebuilt.
const SEED_VERSION: u64 = 1;

/// The chain most orders are on (EVM-like addresses); the others are on [`OTHER_CHAIN`].
pub const CHAIN: &str = "bsc";
/// The second chain (Bitcoin-like addresses): a watcher of [`CHAIN`] must skip its orders.
pub const OTHER_CHAIN: &str = "btc";

/// How big a history, ending when.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Volume {
    pub orders: u64,
    /// The history ends here: the newest order is created just before it. Fixed, so that a
    /// copy made on another day looks the same to a test.
    pub now: OffsetDateTime,
    /// Orders are created evenly over this many days before `now`.
    pub days: u32,
    pub deposit_accounts: u64,
    /// Orders per transaction.
    pub chunk: u64,
    /// Transactions in flight at once, each writing its own range of orders (PostgreSQL
    /// writes them in parallel; SQLite's one writer takes them in turn while the next chunk
    /// is generated).
    pub workers: u64,
}

impl Volume {
    /// A million orders over 100 days (about 10,000 a day, so about 10,000 are still
    /// monitored at `now`), 5,000 deposit accounts.
    pub fn million() -> Self {
        Self {
            orders: 1_000_000,
            now: OffsetDateTime::from_unix_timestamp(1_767_225_600)
                .unwrap_or(OffsetDateTime::UNIX_EPOCH),
            days: 100,
            deposit_accounts: 5_000,
            chunk: 10_000,
            workers: 2,
        }
    }

    /// Identifies the rows [`seed`] writes with this volume and this build's migrations:
    /// the key of a cached seeded database.
    pub fn fingerprint(&self) -> String {
        let mut h = Fnv::default();
        h.write(&SEED_VERSION.to_le_bytes());
        h.write(&self.orders.to_le_bytes());
        h.write(&self.now.unix_timestamp().to_le_bytes());
        h.write(&self.days.to_le_bytes());
        h.write(&self.deposit_accounts.to_le_bytes());
        for sql in crate::backend::migration_texts() {
            h.write(sql.as_bytes());
        }
        format!("{:016x}", h.0)
    }

    /// When the history begins (`days` before `now`).
    pub fn start_of_history(&self) -> OffsetDateTime {
        self.now - Duration::days(i64::from(self.days))
    }

    /// Milliseconds between two orders.
    pub fn step_ms(&self) -> i64 {
        let span = i64::from(self.days) * 86_400_000;
        span / i64::try_from(self.orders.max(1)).unwrap_or(i64::MAX)
    }
}

/// What [`seed`] wrote and how long it took.
#[derive(Debug, Clone)]
pub struct SeedReport {
    pub orders: u64,
    pub order_addresses: u64,
    pub payments: u64,
    pub deposit_accounts: u64,
    pub elapsed: StdDuration,
}

/// FNV-1a, 64 bits: stable across builds and platforms, unlike `DefaultHasher`.
struct Fnv(u64);

impl Default for Fnv {
    fn default() -> Self {
        Self(0xcbf2_9ce4_8422_2325)
    }
}

impl Fnv {
    fn write(&mut self, bytes: &[u8]) {
        for b in bytes {
            self.0 ^= u64::from(*b);
            self.0 = self.0.wrapping_mul(0x0100_0000_01b3);
        }
    }
}

/// `width` letters counting up with `n` (base 26, `a` = 0): ids that sort in creation order.
fn letters(n: u64, width: usize) -> String {
    let mut out = vec![b'a'; width];
    let mut rest = n;
    for slot in out.iter_mut().rev() {
        *slot = b'a' + u8::try_from(rest % 26).unwrap_or(0);
        rest /= 26;
    }
    String::from_utf8(out).unwrap_or_default()
}

fn parsed<T: FromStr>(raw: &str) -> Result<T, StoreError> {
    raw.parse().map_err(|_| StoreError::Corrupt {
        column: "seed".into(),
        detail: format!("generated value {raw:?} does not parse"),
    })
}

fn chain_id(raw: &str) -> Result<ChainId, StoreError> {
    ChainId::parse(raw).map_err(|e| StoreError::Corrupt {
        column: "seed".into(),
        detail: e.to_string(),
    })
}

/// The seed's merchants: the shop (`m[0]`, 85 % of the orders) and three small ones.
pub fn merchants(volume: &Volume) -> Result<Vec<Merchant>, StoreError> {
    (0..4u64)
        .map(|i| {
            Ok(Merchant {
                id: parsed(&format!("mch_s{}", letters(i, 25)))?,
                name: format!("Seed shop {i}"),
                policy: SettlementPolicy::default(),
                created_at: volume.start_of_history() - Duration::days(1),
            })
        })
        .collect()
}

fn merchant_of(n: u64) -> usize {
    match n % 20 {
        0..17 => 0,
        r => usize::try_from(r - 16).unwrap_or(1),
    }
}

/// The wallet descriptor of a seed merchant on a chain.
pub fn descriptor(merchant: &MerchantId, chain: &str) -> String {
    format!("xpub-seed-{chain}-{merchant}")
}

/// An order's address on [`CHAIN`] (`second`: the one it moved to by choosing another asset)
/// or on [`OTHER_CHAIN`].
fn address(n: u64, chain: &str, second: bool) -> String {
    match (chain, second) {
        (CHAIN, false) => format!("0x5eed{n:036x}"),
        (CHAIN, true) => format!("0x5eee{n:036x}"),
        _ => format!("bc1q5eed{n:034x}"),
    }
}

/// A block height on `chain` at `t` (3 s blocks on [`CHAIN`], 10 min on [`OTHER_CHAIN`]).
pub fn height_at(chain: &str, t: OffsetDateTime) -> u64 {
    let secs = u64::try_from(t.unix_timestamp() - 1_700_000_000).unwrap_or(0);
    if chain == CHAIN { secs / 3 } else { secs / 600 }
}

struct Priced {
    asset: &'static str,
    price: i64,
    decimals: u32,
}

const USDT: Priced = Priced {
    asset: "bsc:USDT",
    price: 1,
    decimals: 6,
};
const BNB: Priced = Priced {
    asset: "bsc:BNB",
    price: 600,
    decimals: 18,
};
const BTC: Priced = Priced {
    asset: "btc:BTC",
    price: 65_000,
    decimals: 8,
};

/// What order `n` is priced in: nothing yet (the buyer chooses at checkout), BTC, BNB or
/// USDT.
fn priced_of(n: u64) -> Option<&'static Priced> {
    match n % 10 {
        0 => None,
        1 | 2 => Some(&BTC),
        3 => Some(&BNB),
        _ => Some(&USDT),
    }
}

/// The chain order `n` has an address on.
fn chain_of(n: u64) -> Option<&'static str> {
    priced_of(n).map(|p| {
        if p.asset == BTC.asset {
            OTHER_CHAIN
        } else {
            CHAIN
        }
    })
}

fn target(
    n: u64,
    priced: &Priced,
    amount: Decimal,
    at: OffsetDateTime,
    second: bool,
) -> Result<PaymentTarget, StoreError> {
    let asset: AssetId = parsed(priced.asset)?;
    let chain = asset.chain().as_str().to_owned();
    let units = amount * Decimal::from(10u64.pow(priced.decimals)) / Decimal::from(priced.price);
    let due = u128::try_from(units.trunc().mantissa()).unwrap_or(0);
    Ok(PaymentTarget {
        asset,
        amount_due: BaseUnits::new(due),
        address: address(n, &chain, second),
        derivation: Some(Derivation {
            index: u32::try_from(n).unwrap_or(u32::MAX),
            path: format!("m/0/{n}"),
        }),
        rate: LockedRate {
            price: Price::new(Decimal::from(priced.price)).map_err(|e| StoreError::Corrupt {
                column: "seed".into(),
                detail: e.to_string(),
            })?,
            source: "fixed".into(),
            at,
        },
        details: serde_json::Map::new(),
    })
}

/// The changesets of orders `from..to` (one per order, like the engine's, and a second for
/// an order that moved to another address by choosing another asset).
pub fn order_changesets(
    volume: &Volume,
    merchants: &[Merchant],
    from: u64,
    to: u64,
) -> Result<Vec<Changeset>, StoreError> {
    let mut out = Vec::with_capacity(usize::try_from(to - from).unwrap_or(0));
    let lock = Duration::minutes(30);
    for n in from..to {
        let merchant = &merchants[merchant_of(n) % merchants.len()];
        let created = volume.start_of_history()
            + Duration::milliseconds(volume.step_ms() * i64::try_from(n).unwrap_or(0));
        let expires = created + lock;
        let amount = Decimal::from(5 + n % 200);
        let priced = priced_of(n);
        // One BNB order in a thousand was created for USDT, then the buyer chose BNB: a second
        // address on the same chain, both watched.
        let moved = priced.is_some_and(|p| p.asset == BNB.asset) && n % 1000 == 3;
        // One order in ten is paid (the payments table needs volume, not realism); of the
        // others, those still in their rate lock have an unconfirmed payment one time in ten.
        let paid_at = created + Duration::minutes(2);
        let paid = priced.is_some() && n % 10 == 5 && paid_at <= volume.now;
        let unconfirmed =
            priced.is_some() && n % 10 == 6 && expires > volume.now && paid_at <= volume.now;
        let mut order = Order {
            id: parsed(&format!("ord_s{}", letters(n, 25)))?,
            merchant_id: merchant.id.clone(),
            order_no: Some(format!("S{n:09}")),
            checkout_token: CheckoutToken::parse(&format!("s{}", letters(n, 51))).ok_or_else(
                || StoreError::Corrupt {
                    column: "seed".into(),
                    detail: "checkout token".into(),
                },
            )?,
            state: OrderState::NEW,
            amount,
            currency: "USD".into(),
            fixed_stablecoin_rate: true,
            target: None,
            totals: Totals::default(),
            policy: merchant.policy.clone(),
            description: (n % 3 == 0).then(|| format!("Seed order {n}")),
            metadata: serde_json::Map::from_iter([(
                "sku".to_owned(),
                serde_json::Value::String(format!("item-{}", n % 1000)),
            )]),
            links: OrderLinks::default(),
            dialect: "native".into(),
            dialect_data: serde_json::Map::new(),
            credential_id: None,
            expires_at: expires,
            monitor_until: expires + Duration::hours(24),
            created_at: created,
            updated_at: created,
            version: 1,
            lock_window: lock,
        };
        let mut changes = Changeset::default();
        let mut update = None;
        if let Some(priced) = priced {
            order.target = Some(target(
                n,
                if moved { &USDT } else { priced },
                amount,
                created,
                false,
            )?);
            if moved {
                let mut chosen = order.clone();
                chosen.target = Some(target(n, priced, amount, created, true)?);
                chosen.version = 2;
                chosen.updated_at = created + Duration::minutes(1);
                update = Some(chosen);
            }
        }
        let last = update.as_mut().unwrap_or(&mut order);
        let target = last.target.clone();
        if paid || unconfirmed {
            if let Some(t) = &target {
                let chain = t.asset.chain().as_str().to_owned();
                let height = height_at(&chain, paid_at);
                changes.payments.push(Payment {
                    id: parsed(&format!("pay_s{}", letters(n, 25)))?,
                    order_id: last.id.clone(),
                    merchant_id: last.merchant_id.clone(),
                    asset: t.asset.clone(),
                    amount: t.amount_due,
                    txid: format!("0x{n:064x}"),
                    output_index: 0,
                    from_address: None,
                    to_address: t.address.clone(),
                    block_height: paid.then_some(height),
                    block_hash: paid.then(|| format!("0x{height:064x}")),
                    confirmations: if paid { 12 } else { 0 },
                    status: if paid {
                        PaymentStatus::Confirmed
                    } else {
                        PaymentStatus::Unconfirmed
                    },
                    match_status: MatchStatus::Matched,
                    late: false,
                    occurred_at: paid_at,
                    detected_at: paid_at,
                    updated_at: paid_at,
                    details: serde_json::Map::new(),
                });
                if paid {
                    last.state = OrderState::new(OrderStatus::Settled, StatusReason::None);
                    last.totals.confirmed = t.amount_due;
                } else {
                    last.state = OrderState::new(OrderStatus::Processing, StatusReason::None);
                    last.totals.unconfirmed = t.amount_due;
                }
                last.updated_at = paid_at;
                last.version += 1;
            }
        } else if expires <= volume.now {
            last.state = OrderState::new(OrderStatus::Expired, StatusReason::None);
            last.updated_at = expires;
            last.version += 1;
        }
        if let Some(t) = &order.target
            && let Some(d) = &t.derivation
        {
            changes.wallet_marks.push(WalletMark {
                merchant_id: order.merchant_id.clone(),
                chain: t.asset.chain().clone(),
                descriptor: descriptor(&order.merchant_id, t.asset.chain().as_str()),
                index: d.index,
            });
        }
        match update {
            Some(chosen) => {
                // The order as first stored: pending at its first address.
                let mut first = order.clone();
                first.state = OrderState::NEW;
                first.totals = Totals::default();
                first.updated_at = created;
                first.version = 1;
                changes.new_orders.push(first);
                out.push(changes);
                out.push(Changeset {
                    order_updates: vec![OrderUpdate {
                        expected_version: 1,
                        order: Order {
                            version: 2,
                            ..chosen
                        },
                    }],
                    ..Changeset::default()
                });
            }
            None => {
                changes.new_orders.push(order);
                out.push(changes);
            }
        }
    }
    Ok(out)
}

/// The address of deposit account `k` on [`CHAIN`].
pub fn deposit_address(k: u64) -> String {
    format!("0x5eef{k:036x}")
}

/// The transaction of deposit account `k`'s deposit (even `k` only).
pub fn deposit_txid(k: u64) -> String {
    format!("0x{:064x}", 1u128 << 100 | u128::from(k))
}

/// The changesets of deposit accounts `from..to` of merchant `m[1]`, each with an address on
/// [`CHAIN`]; every other one has received a confirmed deposit. Their numbers (`seq`) count
/// from 1, as on a fresh database.
pub fn deposit_changesets(
    volume: &Volume,
    merchants: &[Merchant],
    from: u64,
    to: u64,
) -> Result<Vec<Changeset>, StoreError> {
    let merchant = &merchants[1 % merchants.len()];
    let chain = chain_id(CHAIN)?;
    let span = i64::from(volume.days) * 86_400_000;
    let step = span / i64::try_from(volume.deposit_accounts.max(1)).unwrap_or(i64::MAX);
    let mut out = Vec::new();
    for k in from..to {
        let created = volume.start_of_history()
            + Duration::milliseconds(step * i64::try_from(k).unwrap_or(0));
        let uuid = format!("user-{k:08}");
        let address = deposit_address(k);
        let index = u32::try_from(10_000_000 + k).unwrap_or(u32::MAX);
        let mut changes = Changeset {
            new_deposit_accounts: vec![NewDepositAccount {
                merchant_id: merchant.id.clone(),
                uuid: uuid.clone(),
                dialect: "payprotocol".into(),
                created_at: created,
                addresses: vec![DepositAddressRecord {
                    chain: chain.clone(),
                    address: address.clone(),
                    derivation_index: index,
                }],
            }],
            ..Changeset::default()
        };
        if k % 2 == 0 {
            let at = created + Duration::hours(1);
            let height = height_at(CHAIN, at);
            changes.deposits.push(Deposit {
                id: parsed(&format!("dep_s{}", letters(k, 25)))?,
                seq: 0,
                merchant_id: merchant.id.clone(),
                account_uuid: uuid,
                account_seq: i64::try_from(k + 1).unwrap_or(i64::MAX),
                dialect: "payprotocol".into(),
                asset: parsed(USDT.asset)?,
                amount: BaseUnits::new(u128::from(10 + k % 90) * 1_000_000),
                txid: deposit_txid(k),
                output_index: 0,
                from_address: None,
                to_address: address,
                derivation_index: index,
                block_height: Some(height),
                block_hash: Some(format!("0x{height:064x}")),
                confirmations: 12,
                status: PaymentStatus::Confirmed,
                occurred_at: at,
                detected_at: at,
                confirmed_at: Some(at),
                updated_at: at,
            });
        }
        out.push(changes);
    }
    Ok(out)
}

/// Write `volume`'s history into an empty, migrated database: merchants and their wallets,
/// then orders and deposit accounts in transactions of `volume.chunk` orders; then the
/// database's own upkeep after a load (statistics on PostgreSQL, a checkpoint on SQLite).
pub async fn seed<B: Backend>(
    store: &SqlStore<B>,
    volume: &Volume,
) -> Result<SeedReport, StoreError> {
    let started = Instant::now();
    let merchants = merchants(volume)?;
    store
        .bulk_commit(&[Changeset {
            new_merchants: merchants.clone(),
            ..Changeset::default()
        }])
        .await?;
    for m in &merchants {
        for chain in [CHAIN, OTHER_CHAIN] {
            let chain_id = chain_id(chain)?;
            crate::Store::set_wallet(
                store,
                &m.id,
                &chain_id,
                &descriptor(&m.id, chain),
                volume.start_of_history(),
            )
            .await?;
        }
    }
    let mut report = SeedReport {
        orders: 0,
        order_addresses: 0,
        payments: 0,
        deposit_accounts: 0,
        elapsed: StdDuration::ZERO,
    };
    let workers = volume.workers.clamp(1, 16);
    let share = volume.orders.div_ceil(workers);
    let ranges = (0..workers).map(|w| (w * share, ((w + 1) * share).min(volume.orders)));
    let counts = futures_util::future::try_join_all(
        ranges.map(|(from, to)| seed_orders(store, volume, &merchants, from, to)),
    )
    .await?;
    for c in counts {
        report.orders += c.orders;
        report.order_addresses += c.order_addresses;
        report.payments += c.payments;
    }
    // Each wallet past the highest index its orders used, once: concurrent chunks marking
    // the same wallet row would wait on each other's row locks (PostgreSQL).
    let mut marks = std::collections::BTreeMap::new();
    for (i, m) in merchants.iter().enumerate() {
        for chain in [CHAIN, OTHER_CHAIN] {
            let last = (0..volume.orders)
                .rev()
                .find(|&n| merchant_of(n) % merchants.len() == i && chain_of(n) == Some(chain));
            if let Some(n) = last {
                marks.insert((m.id.clone(), chain), n);
            }
        }
    }
    let wallet_marks = marks
        .into_iter()
        .map(|((merchant_id, chain), n)| {
            Ok(WalletMark {
                descriptor: descriptor(&merchant_id, chain),
                merchant_id,
                chain: chain_id(chain)?,
                index: u32::try_from(n).unwrap_or(u32::MAX),
            })
        })
        .collect::<Result<Vec<_>, StoreError>>()?;
    store
        .bulk_commit(&[Changeset {
            wallet_marks,
            ..Changeset::default()
        }])
        .await?;
    let chunk = volume.chunk.max(1);
    let mut from = 0;
    while from < volume.deposit_accounts {
        let to = (from + chunk).min(volume.deposit_accounts);
        let changesets = deposit_changesets(volume, &merchants, from, to)?;
        report.deposit_accounts += changesets.len() as u64;
        store.bulk_commit(&changesets).await?;
        from = to;
    }
    store.after_bulk_load().await?;
    report.elapsed = started.elapsed();
    Ok(report)
}

/// Orders `from..to`, a chunk per transaction (wallet marks left to the caller).
async fn seed_orders<B: Backend>(
    store: &SqlStore<B>,
    volume: &Volume,
    merchants: &[Merchant],
    from: u64,
    to: u64,
) -> Result<SeedReport, StoreError> {
    let mut report = SeedReport {
        orders: 0,
        order_addresses: 0,
        payments: 0,
        deposit_accounts: 0,
        elapsed: StdDuration::ZERO,
    };
    let chunk = volume.chunk.max(1);
    let mut at = from;
    while at < to {
        let end = (at + chunk).min(to);
        let mut changesets = order_changesets(volume, merchants, at, end)?;
        for c in &mut changesets {
            c.wallet_marks.clear();
            report.orders += c.new_orders.len() as u64;
            report.order_addresses += c
                .new_orders
                .iter()
                .chain(c.order_updates.iter().map(|u| &u.order))
                .filter(|o| o.target.is_some())
                .count() as u64;
            report.payments += c.payments.len() as u64;
        }
        store.bulk_commit(&changesets).await?;
        // Let the other workers' generation run between this one's chunks.
        tokio::task::yield_now().await;
        at = end;
    }
    Ok(report)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_count_up_and_parse() {
        assert_eq!(letters(0, 3), "aaa");
        assert_eq!(letters(27, 3), "abb");
        assert!(letters(1_000_000, 25) < letters(1_000_001, 25));
        let v = Volume {
            orders: 300,
            ..Volume::million()
        };
        let m = merchants(&v).unwrap();
        let sets = order_changesets(&v, &m, 0, 300).unwrap();
        // One BNB order in a thousand (n ≡ 3 mod 1000) moved to a second address on the
        // same chain: here order 3, with an update of its own.
        let moved: Vec<&Changeset> = sets
            .iter()
            .filter(|c| !c.order_updates.is_empty())
            .collect();
        assert_eq!(moved.len(), 1);
        let second = moved[0].order_updates[0].order.target.as_ref().unwrap();
        let first = sets
            .iter()
            .flat_map(|c| &c.new_orders)
            .find(|o| o.id == moved[0].order_updates[0].order.id)
            .and_then(|o| o.target.as_ref())
            .unwrap();
        assert_eq!(second.asset.chain().as_str(), CHAIN);
        assert_eq!(first.asset.chain(), second.asset.chain());
        assert_ne!(first.address, second.address);
        assert_eq!(sets.iter().map(|c| c.new_orders.len()).sum::<usize>(), 300);
        let ids: Vec<&str> = sets
            .iter()
            .flat_map(|c| &c.new_orders)
            .map(|o| o.id.as_str())
            .collect();
        assert!(ids.windows(2).all(|w| w[0] < w[1]));
        assert_ne!(v.fingerprint(), Volume::million().fingerprint());
    }
}
