//! Events, numbered in one global order, and their outbox rows.

use coffer_core::Event;

use super::{page_limit, rows};
use crate::backend::{Backend, Query, RowExt};
use crate::codec::{self, ms, opt_ms, to_json};
use crate::{EventQuery, StoreError, StoredEvent};

pub(super) const INSERT_EVENT: &str = "INSERT INTO events (id, merchant_id, type, subject, data, created_at) \
     VALUES ($1, $2, $3, $4, $5, $6)";

pub(super) const INSERT_OUTBOX: &str = "INSERT INTO outbox (event_id, created_at) VALUES ($1, $2)";

pub(super) const SELECT_EVENTS: &str = "SELECT seq, id, merchant_id, type, subject, data, created_at FROM events \
     WHERE ($1 IS NULL OR merchant_id = $1) \
       AND ($2 IS NULL OR type = $2) \
       AND ($3 IS NULL OR created_at >= $3) \
       AND ($4 IS NULL OR seq > $4) \
       AND ($5 IS NULL OR seq <= $5) \
     ORDER BY seq LIMIT $6";

/// How many of the newest event numbers are checked for gaps (see [`horizon`]).
const EVENT_GAP_WINDOW: i64 = 2000;

/// How long a gap in event numbers is taken for a transaction still writing, in ms; an older
/// one is a rollback's and is passed.
const EVENT_GAP_WAIT_MS: i64 = 5000;

const SELECT_PENDING_OUTBOX: &str = "SELECT o.seq AS seq, e.id AS id, e.merchant_id AS merchant_id, e.type AS type, \
     e.subject AS subject, e.data AS data, e.created_at AS created_at \
     FROM outbox o JOIN events e ON e.id = o.event_id \
     WHERE o.dispatched_at IS NULL ORDER BY o.seq LIMIT $1";

pub(super) fn insert(event: &Event) -> Query {
    Query::new(INSERT_EVENT)
        .text(event.id.as_str())
        .text(event.merchant_id.as_str())
        .text(event.kind.as_str())
        .text(event.subject.clone())
        .text(to_json(&event.data))
        .int(ms(event.created_at))
}

/// The outbox row of an event, written with it.
pub(super) fn outbox(event: &Event) -> Query {
    Query::new(INSERT_OUTBOX)
        .text(event.id.as_str())
        .int(ms(event.created_at))
}

/// The highest event number a reader may be given. PostgreSQL hands out numbers when a
/// row is inserted, not when it commits: a reader can see number n+1 while n is still being
/// written, and a cursor past n+1 would skip n for good. So readers stop before the oldest
/// gap among the newest numbers whose next event was written less than
/// `EVENT_GAP_WAIT_MS` ago by the database's clock (a transaction still writing; events
/// are a changeset's last writes, so a number is held only for the moments before its
/// commit). An older gap is a rollback's and is passed. Without a gap the limit is the
/// newest number seen, so events committed between this look and the read wait for the
/// next one. SQLite commits one writer at a time in number order: no limit.
async fn horizon<B: Backend>(backend: &B) -> Result<Option<i64>, StoreError> {
    if backend.kind() != "postgres" {
        return Ok(None);
    }
    let q = Query::new(
        "SELECT seq, CAST(EXTRACT(EPOCH FROM (clock_timestamp() - inserted_at)) * 1000 \
         AS BIGINT) AS age_ms FROM events ORDER BY seq DESC LIMIT $1",
    )
    .int(EVENT_GAP_WINDOW);
    let newest_first = backend.fetch(q).await?;
    let Some(newest) = newest_first.first() else {
        return Ok(Some(0));
    };
    let mut horizon = newest.int("seq")?;
    for pair in newest_first.windows(2) {
        let (newer, older) = (pair[0].int("seq")?, pair[1].int("seq")?);
        if newer > older + 1 && pair[0].int("age_ms")? < EVENT_GAP_WAIT_MS {
            horizon = older;
        }
    }
    Ok(Some(horizon))
}

pub(super) async fn list<B: Backend>(
    backend: &B,
    query: &EventQuery,
) -> Result<Vec<StoredEvent>, StoreError> {
    let horizon = horizon(backend).await?;
    let q = Query::new(SELECT_EVENTS)
        .opt_text(query.merchant_id.as_ref().map(|m| m.as_str().to_owned()))
        .opt_text(query.kind.map(|k| k.as_str()))
        .opt_int(opt_ms(query.created_from))
        .opt_int(query.after_seq)
        .opt_int(horizon)
        .int(page_limit(query.limit));
    rows(backend.fetch(q).await?, codec::event_from_row)
}

pub(super) async fn pending_outbox<B: Backend>(
    backend: &B,
    limit: u32,
) -> Result<Vec<StoredEvent>, StoreError> {
    let q = Query::new(SELECT_PENDING_OUTBOX).int(page_limit(limit));
    rows(backend.fetch(q).await?, codec::event_from_row)
}
