//! Bulk loads, for seeding a database at volume (tests and benchmarks): many changesets in
//! one transaction, each planned exactly as [`crate::Store::commit`] plans it, so the rows
//! are the ones the normal path writes; the plain inserts go as multi-row statements.

use super::SqlStore;
use super::commit::apply;
use super::group_commit::{merge, merged_marks};
use super::plan::{Kind, Write, plan};
use crate::backend::{Backend, Query};
use crate::{Changeset, StoreError};

impl<B: Backend> SqlStore<B> {
    /// Commit `changesets` in one transaction: all of them or, on any error, none. Not for
    /// serving (one failure fails them all, and the transaction is as long as the slice); for
    /// loading a database with a history to test or measure against.
    #[doc(hidden)]
    pub async fn bulk_commit(&self, changesets: &[Changeset]) -> Result<(), StoreError> {
        let mut inserts = Vec::with_capacity(changesets.len());
        let mut others = Vec::new();
        for changes in changesets {
            let (merged, rest): (Vec<Write>, Vec<Write>) = plan(changes)?
                .into_iter()
                .filter(|w| w.kind != Kind::WalletMark)
                .partition(|w| Kind::BULK_MERGED.contains(&w.kind));
            inserts.push(merged);
            others.extend(rest);
        }
        let statements = merge(inserts, &Kind::BULK_MERGED, B::ANONYMOUS_PLACEHOLDERS);
        let marks = merged_marks(changesets);
        let mut tx = self.backend.begin().await?;
        run::<B>(&mut tx, statements, others, marks).await?;
        B::commit(tx).await
    }

    /// What a database needs after a bulk load: fresh planner statistics on PostgreSQL (as
    /// autovacuum would gather), the WAL folded into the database file on SQLite.
    #[doc(hidden)]
    pub async fn after_bulk_load(&self) -> Result<(), StoreError> {
        self.backend.after_bulk_load().await
    }

    /// Close the database's connections and wait until they are closed (a copy of an SQLite
    /// file taken after this is whole).
    #[doc(hidden)]
    pub async fn close(&self) {
        self.backend.close().await;
    }
}

/// The multi-row inserts first (everything else may refer to their rows), then the other
/// writes in their changesets' order, then one wallet mark per wallet.
async fn run<B: Backend>(
    tx: &mut B::Tx,
    statements: Vec<Query>,
    others: Vec<Write>,
    marks: Vec<Query>,
) -> Result<(), StoreError> {
    for q in statements {
        B::execute(tx, q).await?;
    }
    apply::<B>(tx, others).await?;
    for q in marks {
        if B::execute(tx, q).await? != 1 {
            return Err(StoreError::Conflict("wallet"));
        }
    }
    Ok(())
}
