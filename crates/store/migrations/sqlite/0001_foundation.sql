-- Coffer foundation schema (SQLite). Amounts are TEXT (base-unit integers or decimal strings),
-- timestamps are INTEGER unix milliseconds (UTC), JSON is TEXT.

CREATE TABLE merchants (
    id          TEXT PRIMARY KEY NOT NULL,
    name        TEXT NOT NULL,
    policy      TEXT NOT NULL,
    created_at  INTEGER NOT NULL
) STRICT;

CREATE TABLE api_credentials (
    id          TEXT PRIMARY KEY NOT NULL,
    merchant_id TEXT NOT NULL REFERENCES merchants(id),
    label       TEXT NOT NULL,
    scopes      TEXT NOT NULL,
    secret_hash TEXT NOT NULL,
    created_at  INTEGER NOT NULL,
    expires_at  INTEGER,
    revoked_at  INTEGER
) STRICT;
CREATE INDEX api_credentials_merchant ON api_credentials (merchant_id);

CREATE TABLE orders (
    id                    TEXT PRIMARY KEY NOT NULL,
    merchant_id           TEXT NOT NULL REFERENCES merchants(id),
    order_no              TEXT,
    checkout_token        TEXT NOT NULL UNIQUE,
    status                TEXT NOT NULL,
    reason                TEXT NOT NULL,
    amount                TEXT NOT NULL,
    currency              TEXT NOT NULL,
    fixed_stablecoin_rate INTEGER NOT NULL,
    asset                 TEXT,
    amount_due            TEXT,
    address               TEXT,
    derivation_index      INTEGER,
    derivation_path       TEXT,
    rate_price            TEXT,
    rate_source           TEXT,
    rate_at               INTEGER,
    confirmed             TEXT NOT NULL,
    unconfirmed           TEXT NOT NULL,
    any_late              INTEGER NOT NULL,
    any_reversed          INTEGER NOT NULL,
    policy                TEXT NOT NULL,
    description           TEXT,
    metadata              TEXT NOT NULL,
    success_url           TEXT,
    expired_url           TEXT,
    callback_url          TEXT,
    dialect               TEXT NOT NULL,
    expires_at            INTEGER NOT NULL,
    monitor_until         INTEGER NOT NULL,
    created_at            INTEGER NOT NULL,
    updated_at            INTEGER NOT NULL,
    version               INTEGER NOT NULL,
    UNIQUE (merchant_id, order_no)
) STRICT;
CREATE INDEX orders_merchant_created ON orders (merchant_id, created_at DESC, id DESC);
CREATE INDEX orders_merchant_status ON orders (merchant_id, status, created_at DESC);
CREATE INDEX orders_pending_expiry ON orders (expires_at) WHERE status = 'pending';
CREATE INDEX orders_address ON orders (address) WHERE address IS NOT NULL;

-- Append-only audit trail of every state change.
CREATE TABLE order_transitions (
    seq         INTEGER PRIMARY KEY AUTOINCREMENT,
    order_id    TEXT NOT NULL REFERENCES orders(id),
    at          INTEGER NOT NULL,
    from_status TEXT,
    from_reason TEXT,
    to_status   TEXT NOT NULL,
    to_reason   TEXT NOT NULL,
    cause       TEXT NOT NULL,
    note        TEXT
) STRICT;
CREATE INDEX order_transitions_order ON order_transitions (order_id, seq);

CREATE TABLE payments (
    id            TEXT PRIMARY KEY NOT NULL,
    order_id      TEXT NOT NULL REFERENCES orders(id),
    merchant_id   TEXT NOT NULL REFERENCES merchants(id),
    chain         TEXT NOT NULL,
    asset         TEXT NOT NULL,
    amount        TEXT NOT NULL,
    txid          TEXT NOT NULL,
    output_index  INTEGER NOT NULL,
    from_address  TEXT,
    to_address    TEXT NOT NULL,
    block_height  INTEGER,
    block_hash    TEXT,
    confirmations INTEGER NOT NULL,
    status        TEXT NOT NULL,
    match_status  TEXT NOT NULL,
    late          INTEGER NOT NULL,
    occurred_at   INTEGER NOT NULL,
    detected_at   INTEGER NOT NULL,
    updated_at    INTEGER NOT NULL,
    UNIQUE (chain, txid, output_index)
) STRICT;
CREATE INDEX payments_order ON payments (order_id, detected_at);

-- Immutable events; `seq` gives a stable global order for cursors.
CREATE TABLE events (
    seq         INTEGER PRIMARY KEY AUTOINCREMENT,
    id          TEXT NOT NULL UNIQUE,
    merchant_id TEXT NOT NULL REFERENCES merchants(id),
    type        TEXT NOT NULL,
    subject     TEXT NOT NULL,
    data        TEXT NOT NULL,
    created_at  INTEGER NOT NULL
) STRICT;
CREATE INDEX events_merchant ON events (merchant_id, seq);

-- Transactional outbox: one row per event, written in the same transaction as the event.
CREATE TABLE outbox (
    seq           INTEGER PRIMARY KEY AUTOINCREMENT,
    event_id      TEXT NOT NULL UNIQUE REFERENCES events(id),
    created_at    INTEGER NOT NULL,
    dispatched_at INTEGER
) STRICT;
CREATE INDEX outbox_pending ON outbox (seq) WHERE dispatched_at IS NULL;
