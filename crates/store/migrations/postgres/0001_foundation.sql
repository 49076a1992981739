-- Coffer foundation schema (PostgreSQL). Amounts are TEXT (base-unit integers or decimal strings),
-- timestamps are BIGINT unix milliseconds (UTC), JSON is TEXT.

CREATE TABLE merchants (
    id          TEXT PRIMARY KEY NOT NULL,
    name        TEXT NOT NULL,
    policy      TEXT NOT NULL,
    created_at  BIGINT NOT NULL
);

CREATE TABLE api_credentials (
    id          TEXT PRIMARY KEY NOT NULL,
    merchant_id TEXT NOT NULL REFERENCES merchants(id),
    label       TEXT NOT NULL,
    scopes      TEXT NOT NULL,
    secret_hash TEXT NOT NULL,
    created_at  BIGINT NOT NULL,
    expires_at  BIGINT,
    revoked_at  BIGINT
);
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
    fixed_stablecoin_rate BOOLEAN NOT NULL,
    asset                 TEXT,
    amount_due            TEXT,
    address               TEXT,
    derivation_index      BIGINT,
    derivation_path       TEXT,
    rate_price            TEXT,
    rate_source           TEXT,
    rate_at               BIGINT,
    confirmed             TEXT NOT NULL,
    unconfirmed           TEXT NOT NULL,
    any_late              BOOLEAN NOT NULL,
    any_reversed          BOOLEAN NOT NULL,
    policy                TEXT NOT NULL,
    description           TEXT,
    metadata              TEXT NOT NULL,
    success_url           TEXT,
    expired_url           TEXT,
    callback_url          TEXT,
    dialect               TEXT NOT NULL,
    expires_at            BIGINT NOT NULL,
    monitor_until         BIGINT NOT NULL,
    created_at            BIGINT NOT NULL,
    updated_at            BIGINT NOT NULL,
    version               BIGINT NOT NULL,
    UNIQUE (merchant_id, order_no)
);
CREATE INDEX orders_merchant_created ON orders (merchant_id, created_at DESC, id DESC);
CREATE INDEX orders_merchant_status ON orders (merchant_id, status, created_at DESC);
CREATE INDEX orders_pending_expiry ON orders (expires_at) WHERE status = 'pending';
CREATE INDEX orders_address ON orders (address) WHERE address IS NOT NULL;

-- Append-only audit trail of every state change.
CREATE TABLE order_transitions (
    seq         BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    order_id    TEXT NOT NULL REFERENCES orders(id),
    at          BIGINT NOT NULL,
    from_status TEXT,
    from_reason TEXT,
    to_status   TEXT NOT NULL,
    to_reason   TEXT NOT NULL,
    cause       TEXT NOT NULL,
    note        TEXT
);
CREATE INDEX order_transitions_order ON order_transitions (order_id, seq);

CREATE TABLE payments (
    id            TEXT PRIMARY KEY NOT NULL,
    order_id      TEXT NOT NULL REFERENCES orders(id),
    merchant_id   TEXT NOT NULL REFERENCES merchants(id),
    chain         TEXT NOT NULL,
    asset         TEXT NOT NULL,
    amount        TEXT NOT NULL,
    txid          TEXT NOT NULL,
    output_index  BIGINT NOT NULL,
    from_address  TEXT,
    to_address    TEXT NOT NULL,
    block_height  BIGINT,
    block_hash    TEXT,
    confirmations BIGINT NOT NULL,
    status        TEXT NOT NULL,
    match_status  TEXT NOT NULL,
    late          BOOLEAN NOT NULL,
    occurred_at   BIGINT NOT NULL,
    detected_at   BIGINT NOT NULL,
    updated_at    BIGINT NOT NULL,
    UNIQUE (chain, txid, output_index)
);
CREATE INDEX payments_order ON payments (order_id, detected_at);

-- Immutable events; `seq` gives a stable global order for cursors.
CREATE TABLE events (
    seq         BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    id          TEXT NOT NULL UNIQUE,
    merchant_id TEXT NOT NULL REFERENCES merchants(id),
    type        TEXT NOT NULL,
    subject     TEXT NOT NULL,
    data        TEXT NOT NULL,
    created_at  BIGINT NOT NULL
);
CREATE INDEX events_merchant ON events (merchant_id, seq);

-- Transactional outbox: one row per event, written in the same transaction as the event.
CREATE TABLE outbox (
    seq           BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    event_id      TEXT NOT NULL UNIQUE REFERENCES events(id),
    created_at    BIGINT NOT NULL,
    dispatched_at BIGINT
);
CREATE INDEX outbox_pending ON outbox (seq) WHERE dispatched_at IS NULL;
