//! Volume for query-plan tests and benchmarks: many orders (with their addresses, payments,
//! events, webhook deliveries, payouts and deposits) written straight with SQL on SQLite or
//! PostgreSQL — seconds for a million rows, where committing them one by one would take an
//! hour — then `ANALYZE`.

use coffer_core::MerchantId;
use sqlx::Connection;

/// How to spread the rows.
#[derive(Debug, Clone)]
pub struct Volume {
    pub orders: i64,
    /// Order `i` belongs to `merchants[i % len]`: repeat a merchant to give it a bigger share.
    pub merchants: Vec<MerchantId>,
    /// `created_at` of order 0 and the step between orders, in ms.
    pub start_ms: i64,
    pub step_ms: i64,
}

/// The statements writing `v` (for the database `kind`, `sqlite` or `postgres`).
pub fn statements(kind: &str, v: &Volume) -> Vec<String> {
    let sqlite = kind == "sqlite";
    let last = v.orders - 1;
    let series = if sqlite {
        format!("WITH RECURSIVE g(i) AS (SELECT 0 UNION ALL SELECT i + 1 FROM g WHERE i < {last})")
    } else {
        format!("WITH g(i) AS (SELECT generate_series(0, {last}))")
    };
    let (t, f) = if sqlite {
        ("1", "0")
    } else {
        ("TRUE", "FALSE")
    };
    let k = v.merchants.len().max(1);
    let values: Vec<String> = v
        .merchants
        .iter()
        .enumerate()
        .map(|(n, m)| format!("({n}, '{m}')"))
        .collect();
    let at = format!("({} + CAST(g.i AS BIGINT) * {})", v.start_ms, v.step_ms);
    vec![
        "CREATE TEMP TABLE volume_merchants (n BIGINT, id TEXT)".to_owned(),
        format!(
            "INSERT INTO volume_merchants (n, id) VALUES {}",
            values.join(", ")
        ),
        format!(
            "{series} INSERT INTO orders (id, merchant_id, order_no, checkout_token, status, reason, \
             amount, currency, fixed_stablecoin_rate, asset, amount_due, address, derivation_index, \
             derivation_path, rate_price, rate_source, rate_at, confirmed, unconfirmed, any_late, \
             any_reversed, policy, description, metadata, success_url, expired_url, callback_url, \
             dialect, expires_at, monitor_until, created_at, updated_at, version) \
             SELECT 'ord_v' || g.i, m.id, 'N' || g.i, 'tok' || g.i, \
             CASE WHEN g.i % 20 < 12 THEN 'settled' WHEN g.i % 20 < 17 THEN 'expired' \
                  WHEN g.i % 20 < 19 THEN 'pending' ELSE 'invalid' END, \
             CASE WHEN g.i % 50 = 0 THEN 'paid_late' WHEN g.i % 33 = 0 THEN 'paid_partial' ELSE 'none' END, \
             '10', 'USD', {t}, \
             CASE g.i % 3 WHEN 0 THEN 'bsc:USDT' WHEN 1 THEN 'eth:USDC' ELSE 'eth:ETH' END, \
             '10000000', '0xaddr' || g.i, g.i, 'm/0', '1', 'peg', {at}, \
             CASE WHEN g.i % 20 < 12 THEN '10000000' ELSE '0' END, '0', {f}, {f}, '{{}}', NULL, '{{}}', \
             NULL, NULL, NULL, 'native', {at}, {at}, {at}, {at}, 1 \
             FROM g JOIN volume_merchants m ON m.n = g.i % {k}"
        ),
        "INSERT INTO order_addresses (chain, address, order_id) \
         SELECT 'bsc', address, id FROM orders"
            .to_owned(),
        format!(
            "INSERT INTO payments (id, order_id, merchant_id, chain, asset, amount, txid, \
             output_index, from_address, to_address, block_height, block_hash, confirmations, \
             status, match_status, late, occurred_at, detected_at, updated_at) \
             SELECT 'pay_' || id, id, merchant_id, 'bsc', asset, confirmed, '0xtx' || id, 0, NULL, \
             address, 1, '0xb', 1, 'confirmed', 'matched', {f}, created_at, created_at, created_at \
             FROM orders WHERE status = 'settled'"
        ),
        "INSERT INTO events (id, merchant_id, type, subject, data, created_at) \
         SELECT 'evt_' || id, merchant_id, 'order.created', id, '{}', created_at FROM orders"
            .to_owned(),
        "INSERT INTO webhook_deliveries (id, merchant_id, event_id, endpoint_id, destination, \
         url, dialect, status, attempts, next_attempt_at, created_at, updated_at) \
         SELECT 'dlv_' || id, merchant_id, id, NULL, 'callback', 'https://shop.example/cb', \
         'native', 'succeeded', 1, NULL, created_at, created_at FROM events"
            .to_owned(),
        "INSERT INTO payout_requests (id, merchant_id, kind, order_id, asset, amount, status, \
         dialect, dialect_data, created_at, updated_at, version) \
         SELECT 'pout_' || id, merchant_id, 'refund', id, asset, '1', 'requested', 'native', \
         '{}', created_at, created_at, 1 FROM orders WHERE derivation_index % 100 = 0"
            .to_owned(),
        "INSERT INTO deposit_accounts (merchant_id, uuid, dialect, created_at) \
         SELECT merchant_id, 'u' || id, 'payprotocol', created_at FROM orders \
         WHERE derivation_index % 100 = 0"
            .to_owned(),
        "INSERT INTO deposits (id, merchant_id, account_uuid, account_seq, dialect, chain, asset, \
         amount, txid, output_index, to_address, derivation_index, confirmations, status, \
         occurred_at, detected_at, updated_at) \
         SELECT 'dep_' || id, merchant_id, 'u' || id, 1, 'payprotocol', 'bsc', asset, '1', \
         '0xd' || id, 0, address, 0, 1, 'confirmed', created_at, created_at, created_at \
         FROM orders WHERE derivation_index % 100 = 0"
            .to_owned(),
        "ANALYZE".to_owned(),
    ]
}

/// Write `v` into the database at `url` (PostgreSQL) or the SQLite file `sqlite_path`.
pub async fn write(
    url: Option<&str>,
    sqlite_path: &std::path::Path,
    v: &Volume,
) -> Result<(), sqlx::Error> {
    match url {
        Some(url) => {
            let mut c = sqlx::PgConnection::connect(url).await?;
            for sql in statements("postgres", v) {
                sqlx::raw_sql(sqlx::AssertSqlSafe(sql))
                    .execute(&mut c)
                    .await?;
            }
            c.close().await
        }
        None => {
            let url = format!("sqlite://{}", sqlite_path.display());
            let mut c = sqlx::SqliteConnection::connect(&url).await?;
            for sql in statements("sqlite", v) {
                sqlx::raw_sql(sqlx::AssertSqlSafe(sql))
                    .execute(&mut c)
                    .await?;
            }
            c.close().await
        }
    }
}
