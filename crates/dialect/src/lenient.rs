//! Field types for what vendors' clients send either way: a decimal as a JSON number or a
//! numeric string, an integer as `56` or `"56"`, a flag as `true`, `"true"` or `1`, a text as
//! a string or a number. Use them in a dialect's typed request body; the extractor turns their
//! errors into the dialect's envelope, naming the field.
//!
//! - Numbers are read exactly from the text as sent (never through a float), and the text is
//!   kept, so a dialect can echo what the merchant sent ([`LenientDecimal::as_sent`]).
//! - A required field that is absent or `null` is "required"; a text that is blank too.
//! - [`Maybe<T>`] is an optional field: absent, `null` and blank (`""`, as PHP clients send
//!   unset values) all read as not given.
//!
//! They decode JSON bodies exactly (through `serde_json`'s raw values) and also work from a
//! query string or a form ([`crate::Query`], [`crate::JsonOrForm`]), whose values are strings.
//! They must sit in a plain struct field: inside `#[serde(flatten)]` or an untagged enum,
//! serde buffers the value and the raw text is lost (decoding then fails loudly).

use std::fmt;
use std::marker::PhantomData;
use std::str::FromStr;

use rust_decimal::Decimal;
use serde::de::{self, Deserializer, Visitor};
use serde::{Deserialize, Serialize};
use serde_json::value::RawValue;

/// One JSON value as sent.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Scalar {
    Null,
    /// A string, unescaped (not trimmed).
    Text(String),
    /// A number: its literal exactly as sent.
    Number(String),
    Bool(bool),
    /// An array or an object.
    Compound,
}

impl Scalar {
    fn from_raw(raw: &str) -> Result<Self, String> {
        let raw = raw.trim();
        Ok(match raw.as_bytes().first() {
            Some(b'"') => Scalar::Text(serde_json::from_str(raw).map_err(|e| e.to_string())?),
            Some(b'[' | b'{') => Scalar::Compound,
            _ if raw == "null" => Scalar::Null,
            _ if raw == "true" => Scalar::Bool(true),
            _ if raw == "false" => Scalar::Bool(false),
            _ => Scalar::Number(raw.to_owned()),
        })
    }

    /// The string (trimmed) or the number's literal; `None` for anything else.
    pub fn text(&self) -> Option<&str> {
        match self {
            Scalar::Text(s) => Some(s.trim()),
            Scalar::Number(n) => Some(n),
            _ => None,
        }
    }

    /// `null` or a blank string: what clients send for "not given".
    pub fn is_blank(&self) -> bool {
        match self {
            Scalar::Null => true,
            Scalar::Text(s) => s.trim().is_empty(),
            _ => false,
        }
    }
}

/// Read one value as a [`Scalar`], exactly as sent.
pub fn scalar<'de, D: Deserializer<'de>>(deserializer: D) -> Result<Scalar, D::Error> {
    let raw = Box::<RawValue>::deserialize(deserializer)?;
    Scalar::from_raw(raw.get()).map_err(de::Error::custom)
}

/// A field value read from one scalar. `Err` says what the value must be, completing the
/// field's name: `"must be a decimal number"`. Implement it for a dialect's own field types
/// and use them as `T` or [`Maybe<T>`].
pub trait FromScalar: Sized {
    /// Never called with `null` (a required field's `null` is "is required").
    fn from_scalar(scalar: &Scalar) -> Result<Self, String>;
}

/// The message of a required field that is absent, `null` or blank.
pub const REQUIRED: &str = "is required";

fn required<'de, D: Deserializer<'de>, T: FromScalar>(deserializer: D) -> Result<T, D::Error> {
    match scalar(deserializer)? {
        Scalar::Null => Err(de::Error::custom(REQUIRED)),
        s => T::from_scalar(&s).map_err(de::Error::custom),
    }
}

/// A decimal sent as a JSON number or a numeric string, read exactly.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LenientDecimal {
    value: Decimal,
    as_sent: String,
}

impl LenientDecimal {
    pub fn value(&self) -> Decimal {
        self.value
    }

    /// The text as sent (a string trimmed, a number's literal): what a vendor echoes.
    pub fn as_sent(&self) -> &str {
        &self.as_sent
    }
}

impl FromScalar for LenientDecimal {
    fn from_scalar(scalar: &Scalar) -> Result<Self, String> {
        let text = scalar.text().unwrap_or_default();
        Decimal::from_str(text)
            .or_else(|_| Decimal::from_scientific(text))
            .map(|value| LenientDecimal {
                value,
                as_sent: text.to_owned(),
            })
            .map_err(|_| "must be a decimal number".to_owned())
    }
}

/// An integer sent as a JSON number or a numeric string.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(transparent)]
pub struct LenientInt(pub i64);

impl FromScalar for LenientInt {
    fn from_scalar(scalar: &Scalar) -> Result<Self, String> {
        scalar
            .text()
            .and_then(|t| t.parse().ok())
            .map(LenientInt)
            .ok_or_else(|| "must be an integer".to_owned())
    }
}

/// A text sent as a JSON string (trimmed) or a number (its literal); required: blank is
/// "is required".
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(transparent)]
pub struct LenientText(pub String);

impl LenientText {
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl FromScalar for LenientText {
    fn from_scalar(scalar: &Scalar) -> Result<Self, String> {
        match scalar.text() {
            Some("") => Err(REQUIRED.to_owned()),
            Some(t) => Ok(LenientText(t.to_owned())),
            None => Err("must be a string".to_owned()),
        }
    }
}

/// A yes/no sent as `true`/`false`, `"true"`/`"false"`, `1`/`0` or `"1"`/`"0"`; absent,
/// `null` and `""` are no.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct LenientFlag(pub bool);

impl FromScalar for LenientFlag {
    fn from_scalar(scalar: &Scalar) -> Result<Self, String> {
        let yes = match scalar {
            Scalar::Bool(b) => Some(*b),
            Scalar::Null => Some(false),
            Scalar::Text(_) | Scalar::Number(_) => match scalar.text().unwrap_or_default() {
                t if t.eq_ignore_ascii_case("true") || t == "1" => Some(true),
                t if t.eq_ignore_ascii_case("false") || t == "0" || t.is_empty() => Some(false),
                _ => None,
            },
            Scalar::Compound => None,
        };
        yes.map(LenientFlag)
            .ok_or_else(|| "must be a boolean".to_owned())
    }
}

macro_rules! required_field {
    ($($t:ty),*) => {$(
        impl<'de> Deserialize<'de> for $t {
            fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
                required(deserializer)
            }
        }
    )*};
}
required_field!(LenientDecimal, LenientInt, LenientText);

impl<'de> Deserialize<'de> for LenientFlag {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        Ok(Maybe::<LenientFlag>::deserialize(deserializer)?
            .0
            .unwrap_or_default())
    }
}

/// An optional field: absent, `null` or blank is `None`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Maybe<T>(pub Option<T>);

impl<T> Default for Maybe<T> {
    fn default() -> Self {
        Maybe(None)
    }
}

impl<T> Maybe<T> {
    pub fn into_option(self) -> Option<T> {
        self.0
    }

    pub fn as_ref(&self) -> Option<&T> {
        self.0.as_ref()
    }

    pub fn is_none(&self) -> bool {
        self.0.is_none()
    }
}

impl Maybe<LenientText> {
    /// The text, if given.
    pub fn text(self) -> Option<String> {
        self.0.map(|t| t.0)
    }
}

impl<'de, T: FromScalar> Deserialize<'de> for Maybe<T> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct MaybeVisitor<T>(PhantomData<T>);

        impl<'de, T: FromScalar> Visitor<'de> for MaybeVisitor<T> {
            type Value = Maybe<T>;

            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("an optional value")
            }

            fn visit_none<E: de::Error>(self) -> Result<Self::Value, E> {
                Ok(Maybe(None))
            }

            fn visit_unit<E: de::Error>(self) -> Result<Self::Value, E> {
                Ok(Maybe(None))
            }

            fn visit_some<D: Deserializer<'de>>(self, d: D) -> Result<Self::Value, D::Error> {
                let s = scalar(d)?;
                if s.is_blank() {
                    return Ok(Maybe(None));
                }
                T::from_scalar(&s)
                    .map(|v| Maybe(Some(v)))
                    .map_err(de::Error::custom)
            }
        }

        // `deserialize_option` also answers an absent field (serde asks the same way).
        deserializer.deserialize_option(MaybeVisitor(PhantomData))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug, Deserialize)]
    struct Body {
        price: LenientDecimal,
        n: LenientInt,
        name: LenientText,
        #[serde(rename = "post")]
        flag: LenientFlag,
        note: Maybe<LenientText>,
        page: Maybe<LenientInt>,
    }

    fn parse(json: &str) -> Result<Body, String> {
        let mut de = serde_json::Deserializer::from_str(json);
        serde_path_to_error::deserialize(&mut de).map_err(|e| {
            let inner = e.inner().to_string();
            let message = inner
                .split(" at line ")
                .next()
                .unwrap_or_default()
                .to_owned();
            format!("{}: {message}", e.path())
        })
    }

    #[test]
    fn numbers_and_strings_either_way_exactly() {
        let b = parse(r#"{"price":18.000000000000000001,"n":"56","name":1001,"post":"1"}"#)
            .unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(b.price.value().to_string(), "18.000000000000000001");
        assert_eq!(b.price.as_sent(), "18.000000000000000001");
        assert_eq!(b.n, LenientInt(56));
        assert_eq!(b.name.as_str(), "1001");
        assert!(b.flag.0);
        assert!(b.note.is_none() && b.page.is_none());

        let b =
            parse(r#"{"price":" 18.00 ","n":7,"name":" x ","post":false,"note":"","page":"2"}"#)
                .unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(b.price.as_sent(), "18.00", "echoed as sent, not normalised");
        assert_eq!(b.name.as_str(), "x");
        assert!(!b.flag.0);
        assert!(b.note.is_none(), "blank is not given");
        assert_eq!(b.page.0, Some(LenientInt(2)));
        let b = parse(r#"{"price":"1e3","n":1,"name":"a","note":null,"page":" "}"#)
            .unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(b.price.value(), Decimal::from(1000));
        assert!(!b.flag.0, "absent flag is false");
    }

    #[test]
    fn errors_name_the_field() {
        let base = r#""n":1,"name":"a""#;
        for (json, error) in [
            (
                format!(r#"{{"price":"ten",{base}}}"#),
                "price: must be a decimal number",
            ),
            (
                format!(r#"{{"price":true,{base}}}"#),
                "price: must be a decimal number",
            ),
            (format!(r#"{{"price":null,{base}}}"#), "price: is required"),
            (
                format!(r#"{{"price":"",{base}}}"#),
                "price: must be a decimal number",
            ),
            (
                r#"{"price":1,"n":1.5,"name":"a"}"#.to_owned(),
                "n: must be an integer",
            ),
            (
                r#"{"price":1,"n":1,"name":"  "}"#.to_owned(),
                "name: is required",
            ),
            (
                r#"{"price":1,"n":1,"name":{}}"#.to_owned(),
                "name: must be a string",
            ),
            (
                format!(r#"{{"price":1,{base},"post":"maybe"}}"#),
                "post: must be a boolean",
            ),
            (
                format!(r#"{{"price":1,{base},"page":"x"}}"#),
                "page: must be an integer",
            ),
            (
                r#"{"n":1,"name":"a"}"#.to_owned(),
                ".: missing field `price`",
            ),
        ] {
            assert_eq!(parse(&json).err().as_deref(), Some(error), "{json}");
        }
    }

    #[test]
    fn from_strings_of_a_query_or_form() {
        let value = serde_json::json!({"price": "2.50", "n": "-3", "name": "a", "post": "true", "page": ""});
        let b: Body = serde_path_to_error::deserialize(value).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(b.price.as_sent(), "2.50");
        assert_eq!(b.n, LenientInt(-3));
        assert!(b.flag.0);
        assert!(b.page.is_none());
    }
}
