//! The uniqueness rules callers tell apart, decided by the statement that can break them: the
//! store knows which insert it runs and which unique indexes that insert can hit. Only where
//! one statement can hit two rules callers tell apart (an order's `order_no` and its address)
//! is the broken index looked up, by the name PostgreSQL gives or the columns SQLite lists.

use std::fmt;

/// Which uniqueness rule a write broke (`StoreError::Duplicate`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Unique {
    /// The merchant has an order with this `order_no`.
    OrderNo,
    /// A receiving address is already an order's or a deposit account's.
    Address,
    /// The merchant reserved this idempotency key already.
    IdempotencyKey,
    /// The merchant has a payout request of this kind with this dialect reference.
    PayoutReference,
    /// The merchant has a deposit account with this uuid.
    DepositAccount,
    /// Another merchant set this wallet key (xpub or descriptor) on the chain.
    WalletKey,
    /// Another merchant's console login has this username.
    Username,
    /// A dialect credential with this key (or token) exists.
    DialectCredential,
    /// A transfer (chain, txid, output; deposits: and asset) is recorded already, under
    /// another id.
    Transfer,
    /// Any other rule: a random id drawn twice, a row written twice. Not the caller's input.
    Record,
}

impl Unique {
    pub fn as_str(self) -> &'static str {
        match self {
            Unique::OrderNo => "order_no",
            Unique::Address => "address",
            Unique::IdempotencyKey => "idempotency key",
            Unique::PayoutReference => "payout reference",
            Unique::DepositAccount => "deposit account",
            Unique::WalletKey => "wallet key",
            Unique::Username => "username",
            Unique::DialectCredential => "dialect credential",
            Unique::Transfer => "transfer (chain, txid, output)",
            Unique::Record => "record",
        }
    }
}

impl fmt::Display for Unique {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A unique index a statement can hit, as each database names it when it is hit.
#[derive(Debug)]
pub(crate) struct UniqueIndex {
    pub rule: Unique,
    /// The constraint (or unique index) PostgreSQL names.
    pub postgres: &'static str,
    /// The columns SQLite lists: `UNIQUE constraint failed: <table.column, …>`.
    pub sqlite: &'static str,
}

/// What a unique violation of one statement means.
#[derive(Debug, Clone, Copy)]
pub(crate) enum OnDuplicate {
    /// Every rule the statement can hit means this one (random ids aside, there is one).
    Always(Unique),
    /// The statement can hit several rules callers tell apart; any other one is `Record`.
    OneOf(&'static [UniqueIndex]),
}

impl From<Unique> for OnDuplicate {
    fn from(rule: Unique) -> Self {
        OnDuplicate::Always(rule)
    }
}

impl From<&'static [UniqueIndex]> for OnDuplicate {
    fn from(indexes: &'static [UniqueIndex]) -> Self {
        OnDuplicate::OneOf(indexes)
    }
}

/// How SQLite words a unique violation, before the columns of the index.
const SQLITE_UNIQUE_FAILED: &str = "UNIQUE constraint failed: ";

impl OnDuplicate {
    /// The rule a unique violation of this statement broke, given the constraint PostgreSQL
    /// names (SQLite names none) and the database's message (SQLite lists the columns there).
    pub(crate) fn rule(self, constraint: Option<&str>, message: &str) -> Unique {
        match self {
            OnDuplicate::Always(rule) => rule,
            OnDuplicate::OneOf(indexes) => {
                let sqlite_columns = message.strip_prefix(SQLITE_UNIQUE_FAILED);
                indexes
                    .iter()
                    .find(|index| match constraint {
                        Some(name) => name == index.postgres,
                        None => sqlite_columns == Some(index.sqlite),
                    })
                    .map_or(Unique::Record, |index| index.rule)
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    // A made-up table with two rules callers tell apart (the real ones, for orders, are
    // checked on both databases by the conformance suite).
    const ORDERS: &[UniqueIndex] = &[
        UniqueIndex {
            rule: Unique::OrderNo,
            postgres: "orders_shop_number_key",
            sqlite: "orders.shop, orders.number",
        },
        UniqueIndex {
            rule: Unique::Address,
            postgres: "orders_address_unique",
            sqlite: "orders.address",
        },
    ];

    #[test]
    fn a_statement_with_one_rule_needs_no_lookup() {
        let on = OnDuplicate::from(Unique::Username);
        assert_eq!(on.rule(Some("anything"), ""), Unique::Username);
        assert_eq!(
            on.rule(None, "UNIQUE constraint failed: x.y"),
            Unique::Username
        );
    }

    #[test]
    fn postgres_is_told_apart_by_constraint_name() {
        let on = OnDuplicate::from(ORDERS);
        let message = "duplicate key value violates unique constraint \"orders_address_unique\"";
        assert_eq!(
            on.rule(Some("orders_shop_number_key"), message),
            Unique::OrderNo
        );
        // The name decides, never the message's words.
        assert_eq!(on.rule(Some("orders_address_unique"), ""), Unique::Address);
        assert_eq!(on.rule(Some("orders_pkey"), message), Unique::Record);
    }

    #[test]
    fn sqlite_is_told_apart_by_the_exact_column_list() {
        let on = OnDuplicate::from(ORDERS);
        let failed = |columns: &str| format!("{SQLITE_UNIQUE_FAILED}{columns}");
        assert_eq!(
            on.rule(None, &failed("orders.shop, orders.number")),
            Unique::OrderNo
        );
        assert_eq!(on.rule(None, &failed("orders.address")), Unique::Address);
        // Another index that merely mentions a column is not that rule.
        assert_eq!(
            on.rule(None, &failed("orders.checkout_token")),
            Unique::Record
        );
        assert_eq!(
            on.rule(None, &failed("orders.address, orders.x")),
            Unique::Record
        );
        assert_eq!(on.rule(None, "orders.address"), Unique::Record);
    }
}
