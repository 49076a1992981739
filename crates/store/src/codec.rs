//! Conversions between domain values and columns. Both backends use the same encodings:
//! timestamps as unix milliseconds (UTC), amounts as decimal strings, JSON as text.

use std::str::FromStr;

use coffer_core::merchant::Scope;
use coffer_core::order::{Derivation, OrderLinks};
use coffer_core::state::Cause;
use coffer_core::{
    ApiCredential, AssetId, BaseUnits, CheckoutToken, Event, EventType, LockedRate, MatchStatus,
    Merchant, Order, OrderState, OrderStatus, Payment, PaymentStatus, PaymentTarget, Price,
    StatusReason, TimelineEntry, Totals,
};
use rust_decimal::Decimal;
use time::OffsetDateTime;

use crate::backend::RowExt;
use crate::{CredentialRecord, StoreError, StoredEvent, WalletRecord};

pub fn ms(t: OffsetDateTime) -> i64 {
    // Milliseconds since the epoch fit in i64 for every representable date.
    i64::try_from(t.unix_timestamp_nanos() / 1_000_000).unwrap_or(i64::MAX)
}

pub fn opt_ms(t: Option<OffsetDateTime>) -> Option<i64> {
    t.map(ms)
}

pub(crate) fn corrupt(column: &str, detail: impl std::fmt::Display) -> StoreError {
    StoreError::Corrupt {
        column: column.to_owned(),
        detail: detail.to_string(),
    }
}

pub fn from_ms(column: &str, value: i64) -> Result<OffsetDateTime, StoreError> {
    OffsetDateTime::from_unix_timestamp_nanos(i128::from(value) * 1_000_000)
        .map_err(|e| corrupt(column, e))
}

fn parse<T: FromStr>(column: &str, raw: &str) -> Result<T, StoreError>
where
    T::Err: std::fmt::Display,
{
    raw.parse::<T>().map_err(|e| corrupt(column, e))
}

fn json<T: serde::de::DeserializeOwned>(column: &str, raw: &str) -> Result<T, StoreError> {
    serde_json::from_str(raw).map_err(|e| corrupt(column, e))
}

pub fn to_json<T: serde::Serialize>(value: &T) -> String {
    // Serialising our own plain data types cannot fail; fall back to null rather than panic.
    serde_json::to_string(value).unwrap_or_else(|_| "null".to_owned())
}

fn time_col(row: &impl RowExt, column: &str) -> Result<OffsetDateTime, StoreError> {
    from_ms(column, row.int(column)?)
}

fn opt_time_col(row: &impl RowExt, column: &str) -> Result<Option<OffsetDateTime>, StoreError> {
    row.opt_int(column)?.map(|v| from_ms(column, v)).transpose()
}

pub fn merchant_from_row(row: &impl RowExt) -> Result<Merchant, StoreError> {
    Ok(Merchant {
        id: parse("merchants.id", &row.text("id")?)?,
        name: row.text("name")?,
        policy: json("merchants.policy", &row.text("policy")?)?,
        created_at: time_col(row, "created_at")?,
    })
}

pub fn scopes_to_text(scopes: &[Scope]) -> String {
    scopes
        .iter()
        .map(|s| s.as_str())
        .collect::<Vec<_>>()
        .join(",")
}

pub fn credential_from_row(row: &impl RowExt) -> Result<CredentialRecord, StoreError> {
    let scopes = coffer_core::merchant::parse_scopes(&row.text("scopes")?)
        .map_err(|e| corrupt("api_credentials.scopes", e))?;
    Ok(CredentialRecord {
        credential: ApiCredential {
            id: parse("api_credentials.id", &row.text("id")?)?,
            merchant_id: parse("api_credentials.merchant_id", &row.text("merchant_id")?)?,
            label: row.text("label")?,
            scopes,
            created_at: time_col(row, "created_at")?,
            expires_at: opt_time_col(row, "expires_at")?,
            revoked_at: opt_time_col(row, "revoked_at")?,
        },
        secret_hash: row.text("secret_hash")?,
    })
}

pub fn order_from_row(row: &impl RowExt) -> Result<Order, StoreError> {
    let status: OrderStatus = parse("orders.status", &row.text("status")?)?;
    let reason: StatusReason = parse("orders.reason", &row.text("reason")?)?;
    let target = match row.opt_text("asset")? {
        None => None,
        Some(asset) => {
            let need = |col: &str| -> Result<String, StoreError> {
                row.opt_text(col)?
                    .ok_or_else(|| corrupt(col, "missing for an order with an asset"))
            };
            let price: Decimal = parse("orders.rate_price", &need("rate_price")?)?;
            let derivation = match (
                row.opt_int("derivation_index")?,
                row.opt_text("derivation_path")?,
            ) {
                (Some(index), Some(path)) => Some(Derivation {
                    index: u32::try_from(index)
                        .map_err(|e| corrupt("orders.derivation_index", e))?,
                    path,
                }),
                _ => None,
            };
            Some(PaymentTarget {
                asset: parse::<AssetId>("orders.asset", &asset)?,
                amount_due: parse::<BaseUnits>("orders.amount_due", &need("amount_due")?)?,
                address: need("address")?,
                derivation,
                rate: LockedRate {
                    price: Price::new(price).map_err(|e| corrupt("orders.rate_price", e))?,
                    source: need("rate_source")?,
                    at: from_ms(
                        "orders.rate_at",
                        row.opt_int("rate_at")?
                            .ok_or_else(|| corrupt("orders.rate_at", "missing"))?,
                    )?,
                },
                details: json("orders.target_details", &row.text("target_details")?)?,
            })
        }
    };
    Ok(Order {
        id: parse("orders.id", &row.text("id")?)?,
        merchant_id: parse("orders.merchant_id", &row.text("merchant_id")?)?,
        order_no: row.opt_text("order_no")?,
        checkout_token: CheckoutToken::parse(&row.text("checkout_token")?)
            .ok_or_else(|| corrupt("orders.checkout_token", "malformed"))?,
        state: OrderState::new(status, reason),
        amount: parse("orders.amount", &row.text("amount")?)?,
        currency: row.text("currency")?,
        fixed_stablecoin_rate: row.boolean("fixed_stablecoin_rate")?,
        target,
        totals: Totals {
            confirmed: parse("orders.confirmed", &row.text("confirmed")?)?,
            unconfirmed: parse("orders.unconfirmed", &row.text("unconfirmed")?)?,
            late: row.boolean("any_late")?,
            any_reversed: row.boolean("any_reversed")?,
        },
        policy: json("orders.policy", &row.text("policy")?)?,
        description: row.opt_text("description")?,
        metadata: json("orders.metadata", &row.text("metadata")?)?,
        links: OrderLinks {
            success_url: row.opt_text("success_url")?,
            expired_url: row.opt_text("expired_url")?,
            callback_url: row.opt_text("callback_url")?,
        },
        dialect: row.text("dialect")?,
        expires_at: time_col(row, "expires_at")?,
        monitor_until: time_col(row, "monitor_until")?,
        created_at: time_col(row, "created_at")?,
        updated_at: time_col(row, "updated_at")?,
        version: row.int("version")?,
        lock_window: time::Duration::milliseconds(row.int("lock_window_ms")?),
        dialect_data: json("orders.dialect_data", &row.text("dialect_data")?)?,
        credential_id: row.opt_text("credential_id")?,
    })
}

pub fn timeline_from_row(row: &impl RowExt) -> Result<TimelineEntry, StoreError> {
    let from = match (row.opt_text("from_status")?, row.opt_text("from_reason")?) {
        (Some(s), Some(r)) => Some(OrderState::new(
            parse("order_transitions.from_status", &s)?,
            parse("order_transitions.from_reason", &r)?,
        )),
        _ => None,
    };
    Ok(TimelineEntry {
        at: time_col(row, "at")?,
        from,
        to: OrderState::new(
            parse("order_transitions.to_status", &row.text("to_status")?)?,
            parse("order_transitions.to_reason", &row.text("to_reason")?)?,
        ),
        cause: parse::<Cause>("order_transitions.cause", &row.text("cause")?)?,
        note: row.opt_text("note")?,
    })
}

pub fn payment_from_row(row: &impl RowExt) -> Result<Payment, StoreError> {
    let status = row.text("status")?;
    let match_status = row.text("match_status")?;
    Ok(Payment {
        id: parse("payments.id", &row.text("id")?)?,
        order_id: parse("payments.order_id", &row.text("order_id")?)?,
        merchant_id: parse("payments.merchant_id", &row.text("merchant_id")?)?,
        asset: parse("payments.asset", &row.text("asset")?)?,
        amount: parse("payments.amount", &row.text("amount")?)?,
        txid: row.text("txid")?,
        output_index: u32::try_from(row.int("output_index")?)
            .map_err(|e| corrupt("payments.output_index", e))?,
        from_address: row.opt_text("from_address")?,
        to_address: row.text("to_address")?,
        block_height: row
            .opt_int("block_height")?
            .map(u64::try_from)
            .transpose()
            .map_err(|e| corrupt("payments.block_height", e))?,
        block_hash: row.opt_text("block_hash")?,
        confirmations: u32::try_from(row.int("confirmations")?)
            .map_err(|e| corrupt("payments.confirmations", e))?,
        status: PaymentStatus::parse(&status).ok_or_else(|| corrupt("payments.status", status))?,
        match_status: MatchStatus::parse(&match_status)
            .ok_or_else(|| corrupt("payments.match_status", match_status))?,
        late: row.boolean("late")?,
        occurred_at: time_col(row, "occurred_at")?,
        detected_at: time_col(row, "detected_at")?,
        updated_at: time_col(row, "updated_at")?,
        details: json("payments.details", &row.text("details")?)?,
    })
}

pub fn event_from_row(row: &impl RowExt) -> Result<StoredEvent, StoreError> {
    Ok(StoredEvent {
        seq: row.int("seq")?,
        event: Event {
            id: parse("events.id", &row.text("id")?)?,
            merchant_id: parse("events.merchant_id", &row.text("merchant_id")?)?,
            kind: parse::<EventType>("events.type", &row.text("type")?)?,
            subject: row.text("subject")?,
            data: json("events.data", &row.text("data")?)?,
            created_at: time_col(row, "created_at")?,
        },
    })
}

pub fn wallet_from_row(row: &impl RowExt) -> Result<WalletRecord, StoreError> {
    Ok(WalletRecord {
        merchant_id: parse("wallets.merchant_id", &row.text("merchant_id")?)?,
        chain: coffer_core::ChainId::parse(&row.text("chain")?)
            .map_err(|e| corrupt("wallets.chain", e))?,
        descriptor: row.text("descriptor")?,
        next_index: u32::try_from(row.int("next_index")?)
            .map_err(|e| corrupt("wallets.next_index", e))?,
        created_at: time_col(row, "created_at")?,
        updated_at: time_col(row, "updated_at")?,
    })
}

pub fn cursor_from_row(row: &impl RowExt) -> Result<crate::ChainCursor, StoreError> {
    let recent_raw = row.text("recent")?;
    let recent: Vec<(u64, String)> =
        serde_json::from_str(&recent_raw).map_err(|e| corrupt("chain_cursors.recent", e))?;
    Ok(crate::ChainCursor {
        chain: coffer_core::ChainId::parse(&row.text("chain")?)
            .map_err(|e| corrupt("chain_cursors.chain", e))?,
        height: u64::try_from(row.int("height")?)
            .map_err(|e| corrupt("chain_cursors.height", e))?,
        hash: row.text("hash")?,
        recent,
        updated_at: from_ms("chain_cursors.updated_at", row.int("updated_at")?)?,
    })
}

pub fn payout_from_row(row: &impl RowExt) -> Result<coffer_core::PayoutRequest, StoreError> {
    Ok(coffer_core::PayoutRequest {
        id: parse("payout_requests.id", &row.text("id")?)?,
        seq: row.int("seq")?,
        merchant_id: parse("payout_requests.merchant_id", &row.text("merchant_id")?)?,
        kind: parse("payout_requests.kind", &row.text("kind")?)?,
        order_id: row
            .opt_text("order_id")?
            .map(|v| parse("payout_requests.order_id", &v))
            .transpose()?,
        asset: row
            .opt_text("asset")?
            .map(|v| parse::<AssetId>("payout_requests.asset", &v))
            .transpose()?,
        amount: row
            .opt_text("amount")?
            .map(|v| parse::<BaseUnits>("payout_requests.amount", &v))
            .transpose()?,
        fiat_amount: row
            .opt_text("fiat_amount")?
            .map(|v| parse::<Decimal>("payout_requests.fiat_amount", &v))
            .transpose()?,
        fiat_currency: row.opt_text("fiat_currency")?,
        destination: row.opt_text("destination")?,
        memo: row.opt_text("memo")?,
        status: parse("payout_requests.status", &row.text("status")?)?,
        dialect: row.text("dialect")?,
        reference: row.opt_text("reference")?,
        dialect_data: json("payout_requests.dialect_data", &row.text("dialect_data")?)?,
        txid: row.opt_text("txid")?,
        created_at: time_col(row, "created_at")?,
        updated_at: time_col(row, "updated_at")?,
        version: row.int("version")?,
    })
}
