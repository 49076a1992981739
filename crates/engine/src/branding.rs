//! A merchant's checkout branding: the name buyers see, a logo and a brand colour.

use coffer_core::MerchantId;
use coffer_store::BrandingRecord;

use crate::{Engine, EngineError};

/// Largest logo, as a `data:` URL: the checkout page carries it inline and stays far below
/// its 100 KB budget.
pub const MAX_LOGO_BYTES: usize = 32 * 1024;
const MAX_DISPLAY_NAME: usize = 100;

/// What a merchant asks for; `None` clears a field.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Branding {
    pub display_name: Option<String>,
    pub logo: Option<String>,
    pub color: Option<String>,
}

/// `#rrggbb` (or `#rgb`), lower-cased.
pub fn color(raw: &str) -> Result<String, EngineError> {
    let ok = (raw.len() == 7 || raw.len() == 4)
        && raw.starts_with('#')
        && raw[1..].bytes().all(|b| b.is_ascii_hexdigit());
    if ok {
        Ok(raw.to_ascii_lowercase())
    } else {
        Err(EngineError::invalid(
            "invalid_color",
            "color",
            "color must look like #1d4ed8",
        ))
    }
}

/// A `data:image/(png|jpeg|webp|gif|svg+xml)[;base64],…` URL of at most 32 KiB. Only data
/// URLs: the checkout page loads nothing from elsewhere.
pub fn logo(raw: &str) -> Result<String, EngineError> {
    let bad = |why: &str| EngineError::invalid("invalid_logo", "logo", why.to_owned());
    if raw.len() > MAX_LOGO_BYTES {
        return Err(bad("logo must be at most 32 KiB"));
    }
    let Some(rest) = raw.strip_prefix("data:image/") else {
        return Err(bad(
            "logo must be a data: URL of an image (data:image/png;base64,…)",
        ));
    };
    let (kind, _) = rest.split_once([';', ',']).unwrap_or((rest, ""));
    if !matches!(kind, "png" | "jpeg" | "webp" | "gif" | "svg+xml") || !rest.contains(',') {
        return Err(bad("logo must be a PNG, JPEG, WebP, GIF or SVG data: URL"));
    }
    if raw
        .bytes()
        .any(|b| b.is_ascii_whitespace() || b == b'"' || b < 0x20)
    {
        return Err(bad("logo must not contain spaces or quotes"));
    }
    Ok(raw.to_owned())
}

fn display_name(raw: &str) -> Result<String, EngineError> {
    let name = raw.trim();
    if name.is_empty()
        || name.chars().count() > MAX_DISPLAY_NAME
        || name.chars().any(char::is_control)
    {
        return Err(EngineError::invalid(
            "invalid_display_name",
            "display_name",
            "display_name must be 1-100 characters without control characters",
        ));
    }
    Ok(name.to_owned())
}

impl Engine {
    /// Set (replace) a merchant's checkout branding after validating every field.
    pub async fn set_branding(
        &self,
        merchant: &MerchantId,
        branding: Branding,
    ) -> Result<BrandingRecord, EngineError> {
        let record = BrandingRecord {
            merchant_id: merchant.clone(),
            display_name: branding
                .display_name
                .as_deref()
                .map(display_name)
                .transpose()?,
            logo: branding.logo.as_deref().map(logo).transpose()?,
            color: branding.color.as_deref().map(color).transpose()?,
            updated_at: self.now(),
        };
        if self.store.get_merchant(merchant).await?.is_none() {
            return Err(EngineError::NotFound("merchant"));
        }
        self.store.set_branding(&record).await?;
        Ok(record)
    }

    pub async fn branding(
        &self,
        merchant: &MerchantId,
    ) -> Result<Option<BrandingRecord>, EngineError> {
        Ok(self.store.get_branding(merchant).await?)
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn colors() {
        assert_eq!(color("#1D4ED8").unwrap(), "#1d4ed8");
        assert_eq!(color("#abc").unwrap(), "#abc");
        for bad in ["1d4ed8", "#1d4ed", "#1d4ed8ff", "red", "#ggg", "#12345;"] {
            assert_eq!(color(bad).unwrap_err().code(), "invalid_color", "{bad}");
        }
    }

    #[test]
    fn logos_are_small_image_data_urls() {
        assert!(logo("data:image/png;base64,iVBORw0KGgo=").is_ok());
        assert!(logo("data:image/svg+xml,%3Csvg%2F%3E").is_ok());
        for bad in [
            "https://cdn.example/logo.png",
            "data:text/html,<script>",
            "data:image/png",
            "data:image/png;base64,a\"onerror=x",
            "data:image/tiff;base64,AAAA",
        ] {
            assert_eq!(logo(bad).unwrap_err().code(), "invalid_logo", "{bad}");
        }
        let big = format!("data:image/png;base64,{}", "A".repeat(MAX_LOGO_BYTES));
        assert!(logo(&big).is_err());
    }

    #[test]
    fn display_names() {
        assert_eq!(display_name("  Café 咖啡 ").unwrap(), "Café 咖啡");
        assert!(display_name("").is_err());
        assert!(display_name("a\u{7}b").is_err());
        assert!(display_name(&"x".repeat(101)).is_err());
    }
}
