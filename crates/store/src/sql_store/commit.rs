//! Applying one changeset: its planned writes, statement by statement, in one transaction.

use super::plan::{Kind, Write, plan};
use crate::backend::Backend;
use crate::unique::Unique;
use crate::{Changeset, StoreError};

/// One changeset, one transaction.
pub(super) async fn commit_alone<B: Backend>(
    backend: &B,
    changes: &Changeset,
) -> Result<(), StoreError> {
    commit_writes(backend, plan(changes)?).await
}

pub(super) async fn commit_writes<B: Backend>(
    backend: &B,
    writes: Vec<Write>,
) -> Result<(), StoreError> {
    let mut tx = backend.begin().await?;
    apply::<B>(&mut tx, writes).await?;
    B::commit(tx).await
}

/// Run one changeset's writes, statement by statement, inside the caller's transaction. On
/// error the caller rolls back (the whole transaction, or this changeset's savepoint).
pub(super) async fn apply<B: Backend>(
    tx: &mut B::Tx,
    writes: Vec<Write>,
) -> Result<(), StoreError> {
    for Write { kind, query } in writes {
        let n = B::execute(tx, query.on_duplicate(kind.on_duplicate())).await?;
        if kind == Kind::WalletMark && n != 1 {
            return Err(StoreError::Conflict("wallet"));
        }
        if kind == Kind::OrderUpdate && n != 1 {
            return Err(StoreError::Conflict("order"));
        }
        if kind == Kind::PayoutUpdate && n != 1 {
            return Err(StoreError::Conflict("payout"));
        }
        if kind == Kind::IdempotencyRespond && n != 1 {
            return Err(StoreError::Conflict("idempotency key"));
        }
        if kind == Kind::DepositAddress && n != 1 {
            return Err(StoreError::Duplicate(Unique::Address));
        }
        if kind == Kind::DepositUpdate && n != 1 {
            return Err(StoreError::NotFound("deposit"));
        }
    }
    Ok(())
}
