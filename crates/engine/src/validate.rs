//! Input validation: every rule names the field it protects and has a stable code.

use coffer_core::fiat::fiat_currency;
use coffer_core::money::validate_quote_amount;
use rust_decimal::Decimal;
use time::Duration;

use crate::{AssetRegistry, EngineError, EngineSettings, NewOrder};

/// Room for what shop plugins build: the Pay Protocol WooCommerce plugin's
/// `WP-ORDER-{X-PAY-KEY}-{order number}` with a 57-character key from before keys were
/// shortened, order-number plugins' long numbers, and Aurpay's `origin.id`.
pub const MAX_ORDER_NO: usize = 128;
pub const MAX_DESCRIPTION: usize = 1000;
pub const MAX_URL: usize = 2048;
pub const MIN_EXPIRES_IN: Duration = Duration::minutes(1);
pub const MAX_EXPIRES_IN: Duration = Duration::days(7);

pub struct CheckedOrder {
    pub amount: Decimal,
    pub currency: String,
    pub order_no: Option<String>,
    pub description: Option<String>,
}

pub fn merchant_name(name: &str) -> Result<String, EngineError> {
    let name = name.trim();
    if name.is_empty() || name.chars().count() > 100 || name.chars().any(char::is_control) {
        return Err(EngineError::invalid(
            "invalid_name",
            "name",
            "merchant name must be 1-100 printable characters",
        ));
    }
    Ok(name.to_owned())
}

pub fn label(label: &str) -> Result<String, EngineError> {
    let label = label.trim();
    if label.chars().count() > 100 || label.chars().any(char::is_control) {
        return Err(EngineError::invalid(
            "invalid_label",
            "label",
            "label must be at most 100 printable characters",
        ));
    }
    Ok(label.to_owned())
}

pub fn url(field: &'static str, raw: &str) -> Result<(), EngineError> {
    let bad = |why: &str| EngineError::invalid("invalid_url", field, format!("{field} {why}"));
    if raw.len() > MAX_URL {
        return Err(bad("is longer than 2048 characters"));
    }
    let parsed = url::Url::parse(raw).map_err(|_| bad("is not a valid URL"))?;
    if !matches!(parsed.scheme(), "http" | "https") {
        return Err(bad("must be an http or https URL"));
    }
    if parsed.host_str().is_none_or(str::is_empty) {
        return Err(bad("must name a host"));
    }
    Ok(())
}

pub fn new_order(
    input: &NewOrder,
    assets: &AssetRegistry,
    settings: &EngineSettings,
) -> Result<CheckedOrder, EngineError> {
    let currency = input.currency.trim().to_ascii_uppercase();
    let minor_units = if let Some(fiat) = fiat_currency(&currency) {
        fiat.minor_units
    } else if let Some(asset) = assets.by_symbol(&currency) {
        u32::from(asset.decimals.get())
    } else {
        return Err(EngineError::invalid(
            "unknown_currency",
            "currency",
            format!(
                "currency {:?} is neither a supported fiat currency nor an enabled asset",
                input.currency.chars().take(16).collect::<String>()
            ),
        ));
    };
    let amount = validate_quote_amount(input.amount, minor_units)
        .map_err(|e| EngineError::invalid("invalid_amount", "amount", format!("amount: {e}")))?;
    if let Some(asset) = &input.asset
        && assets.asset(asset).is_none()
    {
        return Err(EngineError::invalid(
            "unknown_asset",
            "asset",
            format!("asset {asset} is not enabled on this server"),
        ));
    }
    let order_no = match &input.order_no {
        None => None,
        Some(no) => {
            let ok = !no.is_empty()
                && no.len() <= MAX_ORDER_NO
                && no.bytes().all(|b| b.is_ascii_graphic());
            if !ok {
                return Err(EngineError::invalid(
                    "invalid_order_no",
                    "order_no",
                    "order_no must be 1-128 printable ASCII characters without spaces",
                ));
            }
            Some(no.clone())
        }
    };
    let description = match &input.description {
        Some(d) if d.chars().count() > MAX_DESCRIPTION => {
            return Err(EngineError::invalid(
                "invalid_description",
                "description",
                "description must be at most 1000 characters",
            ));
        }
        other => other.clone(),
    };
    let metadata_size = serde_json::to_vec(&input.metadata)
        .map(|v| v.len())
        .unwrap_or(usize::MAX);
    if metadata_size > settings.max_metadata_bytes {
        return Err(EngineError::invalid(
            "metadata_too_large",
            "metadata",
            format!(
                "metadata must serialise to at most {} bytes",
                settings.max_metadata_bytes
            ),
        ));
    }
    for (field, value) in [
        ("success_url", &input.links.success_url),
        ("expired_url", &input.links.expired_url),
        ("callback_url", &input.links.callback_url),
    ] {
        if let Some(v) = value {
            url(field, v)?;
        }
    }
    if let Some(expires_in) = input.expires_in
        && !(MIN_EXPIRES_IN..=MAX_EXPIRES_IN).contains(&expires_in)
    {
        return Err(EngineError::invalid(
            "invalid_expires_in",
            "expires_in",
            "expires_in must be between 60 seconds and 7 days",
        ));
    }
    Ok(CheckedOrder {
        amount,
        currency,
        order_no,
        description,
    })
}
