//! ISO 4217 fiat currencies Coffer prices in.

use serde::Serialize;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct FiatCurrency {
    pub code: &'static str,
    pub name: &'static str,
    /// Digits after the decimal point (2 for USD, 0 for JPY, 3 for KWD).
    pub minor_units: u32,
}

const fn fiat(code: &'static str, name: &'static str, minor_units: u32) -> FiatCurrency {
    FiatCurrency {
        code,
        name,
        minor_units,
    }
}

/// Supported fiat currencies, sorted by code.
pub const FIAT_CURRENCIES: &[FiatCurrency] = &[
    fiat("AED", "UAE Dirham", 2),
    fiat("ARS", "Argentine Peso", 2),
    fiat("AUD", "Australian Dollar", 2),
    fiat("BRL", "Brazilian Real", 2),
    fiat("CAD", "Canadian Dollar", 2),
    fiat("CHF", "Swiss Franc", 2),
    fiat("CNY", "Yuan Renminbi", 2),
    fiat("CZK", "Czech Koruna", 2),
    fiat("DKK", "Danish Krone", 2),
    fiat("EUR", "Euro", 2),
    fiat("GBP", "Pound Sterling", 2),
    fiat("HKD", "Hong Kong Dollar", 2),
    fiat("HUF", "Forint", 2),
    fiat("IDR", "Rupiah", 2),
    fiat("ILS", "New Israeli Sheqel", 2),
    fiat("INR", "Indian Rupee", 2),
    fiat("JPY", "Yen", 0),
    fiat("KRW", "Won", 0),
    fiat("KWD", "Kuwaiti Dinar", 3),
    fiat("MXN", "Mexican Peso", 2),
    fiat("MYR", "Malaysian Ringgit", 2),
    fiat("NGN", "Naira", 2),
    fiat("NOK", "Norwegian Krone", 2),
    fiat("NZD", "New Zealand Dollar", 2),
    fiat("PHP", "Philippine Peso", 2),
    fiat("PLN", "Zloty", 2),
    fiat("RUB", "Russian Ruble", 2),
    fiat("SAR", "Saudi Riyal", 2),
    fiat("SEK", "Swedish Krona", 2),
    fiat("SGD", "Singapore Dollar", 2),
    fiat("THB", "Baht", 2),
    fiat("TRY", "Turkish Lira", 2),
    fiat("TWD", "New Taiwan Dollar", 2),
    fiat("UAH", "Hryvnia", 2),
    fiat("USD", "US Dollar", 2),
    fiat("VND", "Dong", 0),
    fiat("ZAR", "Rand", 2),
];

pub fn fiat_currency(code: &str) -> Option<&'static FiatCurrency> {
    FIAT_CURRENCIES
        .binary_search_by(|c| c.code.cmp(code))
        .ok()
        .and_then(|i| FIAT_CURRENCIES.get(i))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn list_is_sorted_unique_and_searchable() {
        for pair in FIAT_CURRENCIES.windows(2) {
            assert!(
                pair[0].code < pair[1].code,
                "{} before {}",
                pair[0].code,
                pair[1].code
            );
        }
        for c in FIAT_CURRENCIES {
            assert_eq!(fiat_currency(c.code), Some(c));
            assert_eq!(c.code.len(), 3);
        }
        assert_eq!(fiat_currency("JPY").map(|c| c.minor_units), Some(0));
        assert_eq!(fiat_currency("usd"), None, "codes are upper case");
        assert_eq!(fiat_currency("XXX"), None);
    }
}
