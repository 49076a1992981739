//! Merchant branding of the hosted checkout page (migration 0012).

use time::OffsetDateTime;

use crate::StoreError;
use crate::backend::{Backend, Query, RowExt};
use crate::codec::{from_ms, ms};
use coffer_core::MerchantId;

/// How a merchant's checkout page looks. Validated by the engine before it is stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BrandingRecord {
    pub merchant_id: MerchantId,
    /// Shown to buyers instead of the merchant's name.
    pub display_name: Option<String>,
    /// A `data:image/…` URL.
    pub logo: Option<String>,
    /// `#rrggbb`.
    pub color: Option<String>,
    pub updated_at: OffsetDateTime,
}

pub(crate) async fn set<B: Backend>(backend: &B, b: &BrandingRecord) -> Result<(), StoreError> {
    let q = Query::new(
        "INSERT INTO merchant_branding (merchant_id, display_name, logo, color, updated_at) \
         VALUES ($1, $2, $3, $4, $5) \
         ON CONFLICT (merchant_id) DO UPDATE SET display_name = excluded.display_name, \
           logo = excluded.logo, color = excluded.color, updated_at = excluded.updated_at",
    )
    .text(b.merchant_id.as_str())
    .opt_text(b.display_name.clone())
    .opt_text(b.logo.clone())
    .opt_text(b.color.clone())
    .int(ms(b.updated_at));
    let mut tx = backend.begin().await?;
    B::execute(&mut tx, q).await?;
    B::commit(tx).await
}

pub(crate) async fn get<B: Backend>(
    backend: &B,
    merchant: &MerchantId,
) -> Result<Option<BrandingRecord>, StoreError> {
    let q = Query::new(
        "SELECT merchant_id, display_name, logo, color, updated_at \
         FROM merchant_branding WHERE merchant_id = $1",
    )
    .text(merchant.as_str());
    backend.fetch(q).await?.first().map(from_row).transpose()
}

fn from_row(row: &impl RowExt) -> Result<BrandingRecord, StoreError> {
    Ok(BrandingRecord {
        merchant_id: row
            .text("merchant_id")?
            .parse()
            .map_err(|e| StoreError::Corrupt {
                column: "merchant_branding.merchant_id".into(),
                detail: format!("{e}"),
            })?,
        display_name: row.opt_text("display_name")?,
        logo: row.opt_text("logo")?,
        color: row.opt_text("color")?,
        updated_at: from_ms("merchant_branding.updated_at", row.int("updated_at")?)?,
    })
}
