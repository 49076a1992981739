//! Merchants (tenants) and their API credentials.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};
use time::OffsetDateTime;

use crate::ids::{KeyId, MerchantId};
use crate::order::SettlementPolicy;

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Merchant {
    pub id: MerchantId,
    pub name: String,
    /// Defaults snapshotted onto each new order.
    pub policy: SettlementPolicy,
    #[serde(with = "time::serde::rfc3339")]
    pub created_at: OffsetDateTime,
}

/// What an API key may do.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub enum Scope {
    #[serde(rename = "orders:read")]
    OrdersRead,
    #[serde(rename = "orders:write")]
    OrdersWrite,
    #[serde(rename = "refunds:write")]
    RefundsWrite,
    #[serde(rename = "wallets:write")]
    WalletsWrite,
    /// Everything, including managing webhooks and keys.
    #[serde(rename = "admin")]
    Admin,
}

impl Scope {
    pub const ALL: [Scope; 5] = [
        Scope::OrdersRead,
        Scope::OrdersWrite,
        Scope::RefundsWrite,
        Scope::WalletsWrite,
        Scope::Admin,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Scope::OrdersRead => "orders:read",
            Scope::OrdersWrite => "orders:write",
            Scope::RefundsWrite => "refunds:write",
            Scope::WalletsWrite => "wallets:write",
            Scope::Admin => "admin",
        }
    }
}

impl fmt::Display for Scope {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "unknown scope {0:?}: expected one of orders:read, orders:write, refunds:write, wallets:write, admin"
)]
pub struct UnknownScope(pub String);

impl FromStr for Scope {
    type Err = UnknownScope;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Scope::ALL
            .into_iter()
            .find(|x| x.as_str() == s)
            .ok_or_else(|| UnknownScope(s.chars().take(32).collect()))
    }
}

/// Parse a comma-separated scope list (`orders:read,orders:write`).
pub fn parse_scopes(raw: &str) -> Result<Vec<Scope>, UnknownScope> {
    let mut scopes: Vec<Scope> = raw
        .split(',')
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(Scope::from_str)
        .collect::<Result<_, _>>()?;
    scopes.sort();
    scopes.dedup();
    Ok(scopes)
}

/// An API credential. The secret itself is never stored: only its hash, in the store.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ApiCredential {
    pub id: KeyId,
    pub merchant_id: MerchantId,
    pub label: String,
    pub scopes: Vec<Scope>,
    #[serde(with = "time::serde::rfc3339")]
    pub created_at: OffsetDateTime,
    #[serde(with = "time::serde::rfc3339::option")]
    pub expires_at: Option<OffsetDateTime>,
    #[serde(with = "time::serde::rfc3339::option")]
    pub revoked_at: Option<OffsetDateTime>,
}

impl ApiCredential {
    pub fn is_active(&self, now: OffsetDateTime) -> bool {
        self.revoked_at.is_none() && self.expires_at.is_none_or(|at| now < at)
    }

    /// `admin` implies every scope.
    pub fn allows(&self, scope: Scope) -> bool {
        self.scopes.contains(&Scope::Admin) || self.scopes.contains(&scope)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use time::macros::datetime;

    #[test]
    fn scopes_parse_and_imply() {
        let scopes = parse_scopes("orders:write, orders:read,orders:read").unwrap();
        assert_eq!(scopes, vec![Scope::OrdersRead, Scope::OrdersWrite]);
        assert!(parse_scopes("orders:delete").is_err());
        let mut cred = ApiCredential {
            id: KeyId::from_random([0; 16]),
            merchant_id: MerchantId::from_random([0; 16]),
            label: "x".into(),
            scopes,
            created_at: datetime!(2026-01-01 0:00 UTC),
            expires_at: Some(datetime!(2026-02-01 0:00 UTC)),
            revoked_at: None,
        };
        assert!(cred.allows(Scope::OrdersRead));
        assert!(!cred.allows(Scope::WalletsWrite));
        assert!(cred.is_active(datetime!(2026-01-15 0:00 UTC)));
        assert!(!cred.is_active(datetime!(2026-02-01 0:00 UTC)));
        cred.scopes = vec![Scope::Admin];
        assert!(cred.allows(Scope::RefundsWrite));
        cred.expires_at = None;
        cred.revoked_at = Some(datetime!(2026-01-02 0:00 UTC));
        assert!(!cred.is_active(datetime!(2026-01-15 0:00 UTC)));
    }
}
