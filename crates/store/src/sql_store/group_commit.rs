//! Group commit (SQLite): concurrent changesets queued to one writer task and committed in
//! one transaction, the ones that only insert as multi-row statements, each failure rolled
//! back to its own savepoint and reported to its own caller.

use std::borrow::Cow;
use std::collections::BTreeMap;
use std::sync::Arc;

use tokio::sync::{mpsc, oneshot};

use super::commit::{apply, commit_writes};
use super::plan::{Kind, Write, plan};
use super::wallets;
use crate::backend::{Backend, Query};
use crate::{Changeset, StoreError, WalletMark};

/// Most changesets one group commit applies in a single transaction.
pub const MAX_GROUP: usize = 256;

/// One queued `commit` and where its outcome goes.
struct Job {
    /// Planned by the caller, off the writer's critical path.
    writes: Vec<Write>,
    /// Kept to plan again should the group's multi-row pass fail.
    changes: Changeset,
    reply: oneshot::Sender<Result<(), StoreError>>,
}

pub(super) struct GroupCommit {
    queue: mpsc::Sender<Job>,
    /// Chain activity (a watcher's batch, payments, deposits): joins the next group ahead of
    /// whatever else is queued, so that a burst of new orders filling the queue does not
    /// delay the moment a payment is seen (issue 25).
    chain: mpsc::Sender<Job>,
}

/// Whether a changeset records chain activity, which jumps the queue: a chain watcher's
/// ([`crate::chain_work`]), or one that moves a cursor or records payments or deposits.
fn is_chain_activity(changes: &Changeset) -> bool {
    crate::backend::is_chain_work()
        || changes.cursor.is_some()
        || !changes.payments.is_empty()
        || !changes.deposits.is_empty()
}

impl GroupCommit {
    /// Start the writer task, which applies up to `max_group` queued changesets at a time.
    pub(super) fn start<B: Backend>(backend: Arc<B>, max_group: usize) -> Self {
        let max_group = max_group.max(1);
        let (queue, jobs) = mpsc::channel(max_group.saturating_mul(4));
        let (chain, chain_jobs) = mpsc::channel(max_group);
        tokio::spawn(group_writer(backend, chain_jobs, jobs, max_group));
        GroupCommit { queue, chain }
    }

    pub(super) async fn commit(&self, changes: Changeset) -> Result<(), StoreError> {
        let stopped = || StoreError::Unavailable("the database writer task has stopped".into());
        // A changeset refused up front never takes a place in the queue.
        let writes = plan(&changes)?;
        let (reply, outcome) = oneshot::channel();
        let queue = if is_chain_activity(&changes) {
            &self.chain
        } else {
            &self.queue
        };
        queue
            .send(Job {
                writes,
                changes,
                reply,
            })
            .await
            .map_err(|_| stopped())?;
        // If this caller goes away now, its changeset is still committed (or not) with its
        // group; only the answer is lost, as with a dropped connection mid-COMMIT.
        outcome.await.map_err(|_| stopped())?
    }
}

/// How long the writer waits for work before it counts as idle (and tends to the database:
/// on SQLite, truncating the WAL).
const IDLE_AFTER: std::time::Duration = std::time::Duration::from_millis(200);

/// The writer task: take everything queued (chain activity first), commit it as one group,
/// answer, repeat; between groups, the backend's upkeep.
async fn group_writer<B: Backend>(
    backend: Arc<B>,
    mut chain: mpsc::Receiver<Job>,
    mut jobs: mpsc::Receiver<Job>,
    max_group: usize,
) {
    let mut group = Vec::with_capacity(max_group);
    loop {
        match next_group(&mut chain, &mut jobs, &mut group, max_group).await {
            None => return,
            Some(false) => {
                backend.upkeep(true).await;
                continue;
            }
            Some(true) => {}
        }
        let mut changesets = Vec::with_capacity(group.len());
        let mut writes = Vec::with_capacity(group.len());
        let mut replies = Vec::with_capacity(group.len());
        for job in group.drain(..) {
            changesets.push(job.changes);
            writes.push(job.writes);
            replies.push(job.reply);
        }
        let outcomes = commit_group(&*backend, &changesets, writes).await;
        debug_assert_eq!(outcomes.len(), replies.len());
        for (reply, outcome) in replies.into_iter().zip(outcomes) {
            // The caller may have gone away; its changeset's fate is decided either way.
            let _ = reply.send(outcome);
        }
        backend.upkeep(false).await;
    }
}

/// Wait up to [`IDLE_AFTER`] for work, then fill `group` with what is queued, chain activity
/// first, up to `max_group`. `Some(false)`: nothing came (idle); `None`: the store is gone.
async fn next_group(
    chain: &mut mpsc::Receiver<Job>,
    jobs: &mut mpsc::Receiver<Job>,
    group: &mut Vec<Job>,
    max_group: usize,
) -> Option<bool> {
    let first = tokio::time::timeout(IDLE_AFTER, async {
        tokio::select! {
            biased;
            job = chain.recv() => job,
            job = jobs.recv() => job,
        }
    })
    .await;
    match first {
        Ok(Some(job)) => group.push(job),
        // Both senders belong to the store, and go together.
        Ok(None) => return None,
        Err(_) => return Some(false),
    }
    while group.len() < max_group
        && let Ok(job) = chain.try_recv()
    {
        group.push(job);
    }
    while group.len() < max_group
        && let Ok(job) = jobs.try_recv()
    {
        group.push(job);
    }
    Some(true)
}

const SAVEPOINT: &str = "SAVEPOINT coffer_changeset";

const RELEASE: &str = "RELEASE SAVEPOINT coffer_changeset";

const ROLLBACK_TO: &str = "ROLLBACK TO SAVEPOINT coffer_changeset";

/// Commit several changesets (`writes[i]` is `plan(&changesets[i])`) in one transaction and
/// return one outcome per changeset.
///
/// The changesets were queued concurrently, so any serial order is a correct one. Those that
/// only insert (orders being created, events, payments…) are first tried together, as one
/// multi-row statement per table, first thing in the transaction: a few statements for the
/// whole group instead of several per changeset. If that fails, the transaction is rolled
/// back and begun again, and they join the others, which run one by one, each in its own
/// savepoint, so each failure (a duplicate `order_no`, a stale version…) rolls back that
/// changeset alone and is reported to its caller alone. Then one COMMIT, one fsync, for all.
pub(super) async fn commit_group<B: Backend>(
    backend: &B,
    changesets: &[Changeset],
    mut writes: Vec<Vec<Write>>,
) -> Vec<Result<(), StoreError>> {
    if writes.len() == 1
        && let Some(only) = writes.pop()
    {
        return vec![commit_writes(backend, only).await];
    }
    let mut outcomes = vec![None; changesets.len()];
    let group = run_group(backend, changesets, writes, &mut outcomes).await;
    outcomes
        .into_iter()
        .map(|outcome| match (outcome, &group) {
            // A changeset that failed wrote nothing, whatever happened to the group.
            (Some(Err(own)), _) => Err(own),
            // The group's transaction is lost (dropping it rolled it back).
            (_, Err(e)) => Err(e.clone()),
            (Some(Ok(())), Ok(())) => Ok(()),
            (None, Ok(())) => Err(StoreError::Database(
                "group commit skipped a changeset".into(),
            )),
        })
        .collect()
}

/// Apply the group and commit. Fills in each changeset's own outcome; an `Err` return means
/// the transaction is gone and nothing of the group is written.
async fn run_group<B: Backend>(
    backend: &B,
    changesets: &[Changeset],
    writes: Vec<Vec<Write>>,
    outcomes: &mut [Option<Result<(), StoreError>>],
) -> Result<(), StoreError> {
    let mut merged = Vec::new();
    let mut alone = Vec::new();
    for (i, writes) in writes.into_iter().enumerate() {
        if writes.iter().all(|w| w.kind.mergeable()) {
            merged.push((i, writes));
        } else {
            alone.push((i, writes));
        }
    }
    let mut tx = backend.begin().await?;
    if merged.len() > 1 {
        let members: Vec<usize> = merged.iter().map(|(i, _)| *i).collect();
        let statements = merge(
            merged.into_iter().map(|(_, writes)| writes),
            &Kind::MERGED,
            B::ANONYMOUS_PLACEHOLDERS,
        );
        let marks = merged_marks(members.iter().map(|&i| &changesets[i]));
        // Nothing else is in the transaction yet, so a failure here needs no savepoint (whose
        // journal would cost a copy of every page the pass touches): roll back, start over.
        if run_fast::<B>(&mut tx, statements, marks).await.is_ok() {
            for i in members {
                outcomes[i] = Some(Ok(()));
            }
        } else {
            // Someone's changeset fails: find out whose, one by one.
            B::rollback(tx).await?;
            tx = backend.begin().await?;
            for i in members {
                match plan(&changesets[i]) {
                    Ok(writes) => alone.push((i, writes)),
                    Err(refused) => outcomes[i] = Some(Err(refused)),
                }
            }
            alone.sort_by_key(|(i, _)| *i);
        }
    } else {
        alone.extend(merged);
    }
    for (i, writes) in alone {
        B::execute(&mut tx, Query::new(SAVEPOINT)).await?;
        match apply::<B>(&mut tx, writes).await {
            Ok(()) => {
                B::execute(&mut tx, Query::new(RELEASE)).await?;
                outcomes[i] = Some(Ok(()));
            }
            Err(own) => {
                outcomes[i] = Some(Err(own));
                // If even this fails (the database dropped the whole transaction on a disk
                // error, say), the group is lost.
                B::execute(&mut tx, Query::new(ROLLBACK_TO)).await?;
                B::execute(&mut tx, Query::new(RELEASE)).await?;
            }
        }
    }
    B::commit(tx).await
}

/// The group's fast pass: its multi-row inserts, then its wallet marks, each of which must
/// match its wallet.
async fn run_fast<B: Backend>(
    tx: &mut B::Tx,
    statements: Vec<Query>,
    marks: Vec<Query>,
) -> Result<(), StoreError> {
    for q in statements {
        B::execute(tx, q).await?;
    }
    for q in marks {
        if B::execute(tx, q).await? != 1 {
            return Err(StoreError::Conflict("wallet"));
        }
    }
    Ok(())
}

/// The wallet marks of several changesets as one update per wallet, at its highest index. A
/// mark only ever raises `next_index`, and every mark of one wallet and descriptor matches
/// the same row or none, so the highest one has the effect, and the outcome, of them all.
/// Wallets come in a fixed order, so concurrent groups take their row locks in one order.
pub(super) fn merged_marks<'a>(changesets: impl IntoIterator<Item = &'a Changeset>) -> Vec<Query> {
    let mut highest: BTreeMap<(&str, &str, &str), &WalletMark> = BTreeMap::new();
    for mark in changesets.into_iter().flat_map(|c| &c.wallet_marks) {
        let key = (
            mark.merchant_id.as_str(),
            mark.chain.as_str(),
            mark.descriptor.as_str(),
        );
        let entry = highest.entry(key).or_insert(mark);
        if mark.index > entry.index {
            *entry = mark;
        }
    }
    highest.into_values().map(wallets::mark).collect()
}

/// Most rows in one multi-row statement. Row counts are powers of two up to this, so a
/// handful of statement shapes per table stays in the prepared-statement cache.
const MAX_ROWS_PER_STATEMENT: usize = 256;

/// SQLite's default limit on bound values per statement (PostgreSQL allows 65,535).
const MAX_BINDS_PER_STATEMENT: usize = 32_766;

/// The writes of several changesets as multi-row INSERTs, one run per kind in the order of
/// `kinds` (plain `INSERT … VALUES (…)` statements); rows keep the changesets' order within a
/// kind.
pub(super) fn merge(
    changesets: impl IntoIterator<Item = Vec<Write>>,
    kinds: &[Kind],
    anonymous: bool,
) -> Vec<Query> {
    let mut by_kind: Vec<Vec<Query>> = kinds.iter().map(|_| Vec::new()).collect();
    for writes in changesets {
        for Write { kind, query } in writes {
            if let Some(k) = kinds.iter().position(|m| *m == kind) {
                by_kind[k].push(query);
            } else {
                // The caller merges wallet marks itself; nothing else may reach here.
                debug_assert_eq!(kind, Kind::WalletMark);
            }
        }
    }
    let mut statements = Vec::new();
    for (kind, rows) in kinds.iter().zip(by_kind) {
        let binds = rows.first().map_or(1, |q| q.args.len().max(1));
        let cap = (MAX_BINDS_PER_STATEMENT / binds).clamp(1, MAX_ROWS_PER_STATEMENT);
        let mut rows = rows.into_iter();
        let mut left = rows.len();
        while left > 0 {
            // Largest power of two that fits: 7 rows run as 4 + 2 + 1.
            let n = 1usize << (left.min(cap)).ilog2();
            let mut args = Vec::with_capacity(n * binds);
            for q in rows.by_ref().take(n) {
                args.extend(q.args);
            }
            let mut statement = Query::built(if n == 1 {
                Cow::Borrowed(kind.sql())
            } else {
                Cow::Owned(multi_row(kind.sql(), n, anonymous))
            });
            statement.args = args;
            statements.push(statement);
            left -= n;
        }
    }
    statements
}

/// `INSERT … VALUES ($1, …, $k) [tail]` as `INSERT … VALUES ($1, …, $k), ($k+1, …), … [tail]`
/// with `rows` rows, or with every placeholder `?` if `anonymous`. Each placeholder of the
/// row appears once, in order (a unit test checks every statement this is used on), so both
/// forms bind the same arguments.
pub(super) fn multi_row(sql: &str, rows: usize, anonymous: bool) -> String {
    let Some(open) = sql.find("VALUES (").map(|i| i + "VALUES ".len()) else {
        return sql.to_owned();
    };
    let Some(close) = sql[open..].find(')').map(|i| open + i + 1) else {
        return sql.to_owned();
    };
    let (head, row, tail) = (&sql[..open], &sql[open..close], &sql[close..]);
    let per_row = row.matches('$').count();
    let mut out = String::with_capacity(head.len() + rows * (row.len() + 8) + tail.len());
    out.push_str(head);
    for r in 0..rows {
        if r > 0 {
            out.push_str(", ");
        }
        let mut rest = row;
        while let Some(dollar) = rest.find('$') {
            out.push_str(&rest[..dollar]);
            rest = &rest[dollar + 1..];
            let digits = rest.bytes().take_while(u8::is_ascii_digit).count();
            if anonymous {
                out.push('?');
            } else {
                let n: usize = rest[..digits].parse().unwrap_or(0);
                out.push('$');
                out.push_str(&(n + r * per_row).to_string());
            }
            rest = &rest[digits..];
        }
        out.push_str(rest);
    }
    out.push_str(tail);
    out
}

#[cfg(test)]
mod tests {
    use coffer_core::{ChainId, Merchant, MerchantId};
    use time::OffsetDateTime;

    use super::*;
    use crate::backend::{RowExt, Value};
    use crate::sql_store::tests::placeholders;
    use crate::sql_store::{SqlStore, events, orders, payments};
    use crate::unique::Unique;
    use crate::{EventQuery, Store};

    #[test]
    fn merged_statements_number_every_row_in_turn() {
        for kind in Kind::MERGED {
            let sql = kind.sql();
            let per_row = placeholders(sql).len();
            // multi_row relies on this: each placeholder once, in order, all in the VALUES row.
            assert_eq!(
                placeholders(sql),
                (1..=per_row).collect::<Vec<_>>(),
                "{sql}"
            );
            assert_eq!(multi_row(sql, 1, false), sql);
            let three = multi_row(sql, 3, false);
            assert_eq!(
                placeholders(&three),
                (1..=3 * per_row).collect::<Vec<_>>(),
                "{three}"
            );
            assert_eq!(three.matches("), ($").count(), 2, "{three}");
            let anonymous = multi_row(sql, 3, true);
            assert!(!anonymous.contains('$'), "{anonymous}");
            assert_eq!(anonymous.matches('?').count(), 3 * per_row, "{anonymous}");
        }
        assert_eq!(
            multi_row(events::INSERT_OUTBOX, 2, false),
            "INSERT INTO outbox (event_id, created_at) VALUES ($1, $2), ($3, $4)"
        );
        assert_eq!(
            multi_row(events::INSERT_OUTBOX, 2, true),
            "INSERT INTO outbox (event_id, created_at) VALUES (?, ?), (?, ?)"
        );
        // The upsert's tail follows the last row.
        assert!(
            multi_row(payments::UPSERT_PAYMENT, 2, false)
                .contains("$40) ON CONFLICT (id) DO UPDATE")
        );
    }

    #[test]
    fn merge_splits_rows_into_power_of_two_statements_in_kind_order() {
        let outbox = |i: i64| Write {
            kind: Kind::Outbox,
            query: Query::new(events::INSERT_OUTBOX)
                .text(format!("e{i}"))
                .int(i),
        };
        let transition = |i: i64| Write {
            kind: Kind::Transition,
            query: Query::new(orders::INSERT_TRANSITION)
                .text(format!("o{i}"))
                .int(i)
                .opt_text(None::<String>)
                .opt_text(None::<String>)
                .text("pending")
                .text("none")
                .text("created")
                .opt_text(None::<String>),
        };
        // Seven changesets, each writing an outbox row before its transition.
        let statements = merge(
            (0..7).map(|i| vec![outbox(i), transition(i)]),
            &Kind::MERGED,
            false,
        );
        let shape: Vec<(bool, usize)> = statements
            .iter()
            .map(|q| {
                (
                    q.sql.starts_with("INSERT INTO order_transitions"),
                    q.args.len(),
                )
            })
            .collect();
        assert_eq!(
            shape,
            vec![
                (true, 4 * 8),
                (true, 2 * 8),
                (true, 8),
                (false, 4 * 2),
                (false, 2 * 2),
                (false, 2),
            ]
        );
        // Rows keep the changesets' order.
        let firsts: Vec<String> = statements[3..]
            .iter()
            .flat_map(|q| q.args.iter().step_by(2))
            .map(|v| format!("{v:?}"))
            .collect();
        assert_eq!(
            firsts,
            (0..7)
                .map(|i| format!("{:?}", Value::Text(format!("e{i}"))))
                .collect::<Vec<_>>()
        );
        // The bind limit caps a statement's rows below MAX_ROWS_PER_STATEMENT when rows are wide.
        let orders_cap = (MAX_BINDS_PER_STATEMENT / placeholders(orders::INSERT_ORDER).len())
            .min(MAX_ROWS_PER_STATEMENT);
        assert!(orders_cap >= 128);
    }

    fn merchant(n: u8) -> Merchant {
        Merchant {
            id: MerchantId::from_random([n; 16]),
            name: format!("m{n}"),
            policy: coffer_core::SettlementPolicy::default(),
            created_at: OffsetDateTime::UNIX_EPOCH,
        }
    }

    fn event(merchant: &Merchant, n: u8) -> coffer_core::Event {
        coffer_core::Event {
            id: coffer_core::EventId::from_random([n; 16]),
            merchant_id: merchant.id.clone(),
            kind: coffer_core::EventType::OrderCreated,
            subject: format!("s{n}"),
            data: serde_json::json!({}),
            created_at: OffsetDateTime::UNIX_EPOCH,
        }
    }

    fn changeset(merchants: &[&Merchant], events: Vec<coffer_core::Event>) -> Changeset {
        Changeset {
            new_merchants: merchants.iter().map(|m| (*m).clone()).collect(),
            events,
            ..Changeset::default()
        }
    }

    fn planned(changesets: &[Changeset]) -> Vec<Vec<Write>> {
        changesets.iter().map(|c| plan(c).unwrap()).collect()
    }

    /// Group commit called directly, so the grouping is certain (the conformance suite
    /// checks the same through concurrent `Store::commit` calls).
    /// A watcher's batch queued behind a full queue of new orders is in the next group, first.
    #[tokio::test]
    async fn chain_activity_jumps_the_queue() {
        let (chain_tx, mut chain) = mpsc::channel(8);
        let (jobs_tx, mut jobs) = mpsc::channel(8);
        let job = |changes: Changeset| {
            let (reply, _) = oneshot::channel();
            Job {
                writes: Vec::new(),
                changes,
                reply,
            }
        };
        let order_like = || Changeset {
            idempotency_releases: vec![(merchant(1).id, "k".into())],
            ..Changeset::default()
        };
        let batch = Changeset {
            cursor: Some(crate::ChainCursor {
                chain: ChainId::parse("anvil").unwrap(),
                height: 7,
                hash: "0x07".into(),
                recent: Vec::new(),
                updated_at: OffsetDateTime::UNIX_EPOCH,
            }),
            ..Changeset::default()
        };
        assert!(is_chain_activity(&batch) && !is_chain_activity(&order_like()));
        for _ in 0..5 {
            jobs_tx.send(job(order_like())).await.unwrap();
        }
        chain_tx.send(job(batch)).await.unwrap();
        let mut group = Vec::new();
        assert_eq!(
            next_group(&mut chain, &mut jobs, &mut group, 3).await,
            Some(true)
        );
        let firsts: Vec<bool> = group
            .iter()
            .map(|j| is_chain_activity(&j.changes))
            .collect();
        assert_eq!(firsts, [true, false, false]);
        group.clear();
        assert_eq!(
            next_group(&mut chain, &mut jobs, &mut group, 3).await,
            Some(true)
        );
        assert_eq!(group.len(), 3, "the rest in turn");
        group.clear();
        drop((chain_tx, jobs_tx));
        assert_eq!(next_group(&mut chain, &mut jobs, &mut group, 3).await, None);
    }

    #[tokio::test]
    async fn a_group_commits_what_it_can_and_reports_each_failure_to_its_owner() {
        let dir = tempfile::tempdir().unwrap();
        let backend = crate::SqliteBackend::open(&dir.path().join("coffer.db"))
            .await
            .unwrap();
        backend.migrate().await.unwrap();
        let (a, b, c) = (merchant(1), merchant(2), merchant(3));

        // All good: one pass of multi-row statements.
        let first = [
            changeset(&[&a], vec![event(&a, 1)]),
            changeset(&[&b], vec![event(&b, 2)]),
        ];
        let outcomes = commit_group(&backend, &first, planned(&first)).await;
        assert!(outcomes.iter().all(Result::is_ok), "{outcomes:?}");

        // Failures in the middle and at the end, including a clash with a changeset of the
        // same group: each fails alone, the others still commit.
        let second = [
            changeset(&[&c], vec![event(&c, 3)]),
            changeset(&[&a], vec![event(&a, 4)]),
            changeset(&[], vec![event(&c, 5)]),
            changeset(&[], vec![event(&b, 5)]),
        ];
        let outcomes = commit_group(&backend, &second, planned(&second)).await;
        assert!(outcomes[0].is_ok(), "{outcomes:?}");
        assert!(
            matches!(outcomes[1], Err(StoreError::Duplicate(Unique::Record))),
            "{outcomes:?}"
        );
        assert!(outcomes[2].is_ok(), "{outcomes:?}");
        assert!(
            matches!(outcomes[3], Err(StoreError::Duplicate(Unique::Record))),
            "{outcomes:?}"
        );

        let store = SqlStore::new(backend);
        let mut merchants: Vec<String> = store
            .list_merchants()
            .await
            .unwrap()
            .into_iter()
            .map(|m| m.name)
            .collect();
        merchants.sort();
        assert_eq!(merchants, ["m1", "m2", "m3"]);
        let events: Vec<(String, String)> = store
            .list_events(&EventQuery {
                limit: 100,
                ..EventQuery::default()
            })
            .await
            .unwrap()
            .into_iter()
            .map(|e| (e.event.subject, e.event.merchant_id.to_string()))
            .collect();
        assert_eq!(
            events,
            [
                ("s1".to_owned(), a.id.to_string()),
                ("s2".to_owned(), b.id.to_string()),
                ("s3".to_owned(), c.id.to_string()),
                ("s5".to_owned(), c.id.to_string()),
            ]
        );
        assert_eq!(store.pending_outbox(100).await.unwrap().len(), 4);
    }

    async fn count<B: Backend>(backend: &B, sql: &'static str) -> i64 {
        backend.fetch(Query::new(sql)).await.unwrap()[0]
            .int("n")
            .unwrap()
    }

    #[tokio::test]
    async fn a_groups_wallet_marks_collapse_to_the_highest_and_a_stale_one_fails_alone() {
        let dir = tempfile::tempdir().unwrap();
        let backend = crate::SqliteBackend::open(&dir.path().join("coffer.db"))
            .await
            .unwrap();
        backend.migrate().await.unwrap();
        let a = merchant(1);
        let setup = [changeset(&[&a], vec![])];
        let outcomes = commit_group(&backend, &setup, planned(&setup)).await;
        assert!(outcomes[0].is_ok(), "{outcomes:?}");
        let mut tx = backend.begin().await.unwrap();
        let wallet = Query::new(
            "INSERT INTO wallets (merchant_id, chain, descriptor, next_index, created_at, \
             updated_at) VALUES ($1, $2, $3, 0, 0, 0)",
        )
        .text(a.id.as_str())
        .text("bsc")
        .text("xpub-new");
        crate::SqliteBackend::execute(&mut tx, wallet)
            .await
            .unwrap();
        crate::SqliteBackend::commit(tx).await.unwrap();

        let with_mark = |n: u8, index: u32, descriptor: &str| Changeset {
            events: vec![event(&a, n)],
            wallet_marks: vec![WalletMark {
                merchant_id: a.id.clone(),
                chain: ChainId::parse("bsc").unwrap(),
                descriptor: descriptor.into(),
                index,
            }],
            ..Changeset::default()
        };
        let group = [
            with_mark(1, 3, "xpub-new"),
            with_mark(2, 7, "xpub-new"),
            with_mark(3, 5, "xpub-new"),
        ];
        let outcomes = commit_group(&backend, &group, planned(&group)).await;
        assert!(outcomes.iter().all(Result::is_ok), "{outcomes:?}");
        let next = "SELECT next_index AS n FROM wallets";
        assert_eq!(count(&backend, next).await, 8);

        // A mark made with a key the merchant has replaced since fails alone.
        let group = [with_mark(4, 9, "xpub-new"), with_mark(5, 20, "xpub-old")];
        let outcomes = commit_group(&backend, &group, planned(&group)).await;
        assert!(outcomes[0].is_ok(), "{outcomes:?}");
        assert!(
            matches!(outcomes[1], Err(StoreError::Conflict("wallet"))),
            "{outcomes:?}"
        );
        assert_eq!(count(&backend, next).await, 10);
        assert_eq!(
            count(&backend, "SELECT count(*) AS n FROM events").await,
            4,
            "the stale changeset's event is not written"
        );
    }
}
