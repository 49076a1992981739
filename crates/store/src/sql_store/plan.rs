//! Planning a changeset: the statements it runs, in order, each with its [`Kind`], which says
//! how the statement's errors read and whether concurrent changesets' rows may share one
//! multi-row statement.

use super::{deposits, events, idempotency, merchants, orders, payments, payouts, wallets, watch};
use crate::backend::Query;
use crate::unique::{OnDuplicate, Unique};
use crate::{Changeset, StoreError};

/// What a write touches: decides how its errors read, and whether the writes of concurrent
/// changesets may share one multi-row statement.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Kind {
    Merchant,
    Order,
    OrderUpdate,
    Payment,
    Transition,
    Event,
    Outbox,
    IdempotencyReserve,
    IdempotencyRespond,
    IdempotencyRelease,
    WalletMark,
    OrderAddress,
    Cursor,
    Payout,
    PayoutUpdate,
    DepositAccount,
    DepositAddress,
    Deposit,
    DepositUpdate,
}

impl Kind {
    /// The kinds whose rows merge, in the order their statements run: every row that a later
    /// kind refers to is written before it.
    pub(super) const MERGED: [Kind; 8] = [
        Kind::Merchant,
        Kind::IdempotencyReserve,
        Kind::Order,
        Kind::OrderAddress,
        Kind::Payment,
        Kind::Transition,
        Kind::Event,
        Kind::Outbox,
    ];

    /// The kinds a bulk load ([`super::bulk`]) writes as multi-row statements, in the order
    /// they run: [`Kind::MERGED`] and the other plain inserts whose rows are checked by no
    /// count (deposit accounts before what refers to them).
    pub(super) const BULK_MERGED: [Kind; 9] = [
        Kind::Merchant,
        Kind::Order,
        Kind::OrderAddress,
        Kind::Payment,
        Kind::Transition,
        Kind::Event,
        Kind::Outbox,
        Kind::DepositAccount,
        Kind::Deposit,
    ];

    /// Whether a changeset made of such writes can join the group's fast pass: the kinds in
    /// [`Kind::MERGED`] as multi-row inserts, and wallet marks collapsed to one update per
    /// wallet (see `group_commit::merged_marks`). An order update must hit exactly its expected version,
    /// which a multi-row statement cannot report row by row.
    pub(super) fn mergeable(self) -> bool {
        Kind::MERGED.contains(&self) || self == Kind::WalletMark
    }

    pub(super) fn sql(self) -> &'static str {
        match self {
            Kind::Merchant => merchants::INSERT_MERCHANT,
            Kind::Order => orders::INSERT_ORDER,
            Kind::OrderUpdate => orders::UPDATE_ORDER,
            Kind::Payment => payments::UPSERT_PAYMENT,
            Kind::Transition => orders::INSERT_TRANSITION,
            Kind::Event => events::INSERT_EVENT,
            Kind::Outbox => events::INSERT_OUTBOX,
            Kind::IdempotencyReserve => idempotency::INSERT_IDEMPOTENCY,
            Kind::IdempotencyRespond => idempotency::RESPOND_IDEMPOTENCY,
            Kind::IdempotencyRelease => idempotency::RELEASE_IDEMPOTENCY,
            Kind::WalletMark => wallets::MARK_WALLET_INDEX,
            Kind::OrderAddress => orders::INSERT_ORDER_ADDRESS,
            Kind::Cursor => watch::UPSERT_CURSOR,
            Kind::Payout => payouts::INSERT_PAYOUT,
            Kind::PayoutUpdate => payouts::UPDATE_PAYOUT,
            Kind::DepositAccount => deposits::INSERT_ACCOUNT,
            Kind::DepositAddress => deposits::INSERT_ADDRESS,
            Kind::Deposit => deposits::INSERT_DEPOSIT,
            Kind::DepositUpdate => deposits::UPDATE_DEPOSIT,
        }
    }

    /// What a unique violation of the statement means: decided here, where the statement
    /// and the unique indexes it can hit are known.
    pub(super) fn on_duplicate(self) -> OnDuplicate {
        match self {
            Kind::Order => orders::ORDER_UNIQUE.into(),
            // The one unique column an order update can change is its address.
            Kind::OrderUpdate | Kind::DepositAddress => Unique::Address.into(),
            Kind::Payment | Kind::Deposit => Unique::Transfer.into(),
            Kind::IdempotencyReserve => Unique::IdempotencyKey.into(),
            Kind::Payout | Kind::PayoutUpdate => Unique::PayoutReference.into(),
            Kind::DepositAccount => Unique::DepositAccount.into(),
            // Random ids, or nothing unique a caller could repeat.
            Kind::Merchant
            | Kind::Transition
            | Kind::Event
            | Kind::Outbox
            | Kind::IdempotencyRespond
            | Kind::IdempotencyRelease
            | Kind::WalletMark
            | Kind::OrderAddress
            | Kind::Cursor
            | Kind::DepositUpdate => Unique::Record.into(),
        }
    }
}

/// One row written by a changeset: `query` is `kind.sql()` with its arguments.
pub(super) struct Write {
    pub(super) kind: Kind,
    pub(super) query: Query,
}

/// The writes of one changeset, in the order they apply, or why it is refused up front.
pub(super) fn plan(changes: &Changeset) -> Result<Vec<Write>, StoreError> {
    let mut writes = Vec::with_capacity(
        changes.new_merchants.len()
            + changes.new_orders.len()
            + changes.order_updates.len()
            + changes.payments.len()
            + changes.timeline.len()
            + 2 * changes.events.len()
            + changes.idempotency_reservations.len()
            + changes.idempotency_responses.len()
            + changes.idempotency_releases.len()
            + changes.wallet_marks.len()
            + 2,
    );
    let write = |kind, query| Write { kind, query };
    // Keys first: a key another request holds fails the changeset as that, not as whatever
    // the other request's writes (the same order number, say) would clash with.
    for r in &changes.idempotency_reservations {
        writes.push(write(Kind::IdempotencyReserve, idempotency::reserve(r)));
    }
    for mark in &changes.wallet_marks {
        writes.push(write(Kind::WalletMark, wallets::mark(mark)));
    }
    for merchant in &changes.new_merchants {
        writes.push(write(Kind::Merchant, merchants::insert(merchant)));
    }
    for order in &changes.new_orders {
        writes.push(write(Kind::Order, orders::insert(order)));
        writes.extend(orders::address(order).map(|q| write(Kind::OrderAddress, q)));
    }
    for update in &changes.order_updates {
        if update.order.version != update.expected_version + 1 {
            return Err(StoreError::Conflict("order version"));
        }
        let query = orders::update(&update.order, update.expected_version);
        writes.push(write(Kind::OrderUpdate, query));
        writes.extend(orders::address(&update.order).map(|q| write(Kind::OrderAddress, q)));
    }
    for payment in &changes.payments {
        writes.push(write(Kind::Payment, payments::upsert(payment)));
    }
    for (order_id, entry) in &changes.timeline {
        writes.push(write(Kind::Transition, orders::transition(order_id, entry)));
    }
    for r in &changes.idempotency_responses {
        writes.push(write(Kind::IdempotencyRespond, idempotency::respond(r)));
    }
    for (merchant, key) in &changes.idempotency_releases {
        writes.push(write(
            Kind::IdempotencyRelease,
            idempotency::release(merchant, key),
        ));
    }
    for payout in &changes.new_payouts {
        writes.push(write(Kind::Payout, payouts::insert(payout)));
    }
    for update in &changes.payout_updates {
        if update.payout.version != update.expected_version + 1 {
            return Err(StoreError::Conflict("payout version"));
        }
        let query = payouts::update(&update.payout, update.expected_version);
        writes.push(write(Kind::PayoutUpdate, query));
    }
    for account in &changes.new_deposit_accounts {
        writes.push(write(
            Kind::DepositAccount,
            deposits::insert_account(account),
        ));
        writes.extend(deposits::insert_addresses(account).map(|q| write(Kind::DepositAddress, q)));
    }
    for deposit in &changes.deposits {
        writes.push(if deposit.seq == 0 {
            write(Kind::Deposit, deposits::insert(deposit))
        } else {
            write(Kind::DepositUpdate, deposits::update(deposit))
        });
    }
    if let Some(cursor) = &changes.cursor {
        writes.push(write(Kind::Cursor, watch::upsert_cursor(cursor)));
    }
    // Events last: every write that can still fail (a duplicate, a stale version) runs
    // before them, so a refused changeset rarely burns event numbers (a gap readers wait on).
    for event in &changes.events {
        writes.push(write(Kind::Event, events::insert(event)));
        writes.push(write(Kind::Outbox, events::outbox(event)));
    }
    Ok(writes)
}
