-- Webhook endpoints per merchant. Signing secrets are sealed (ChaCha20-Poly1305 under the
-- server master key) before they reach the database; the store only sees ciphertext.
CREATE TABLE webhook_endpoints (
    id                         TEXT PRIMARY KEY NOT NULL,
    merchant_id                TEXT NOT NULL REFERENCES merchants(id),
    url                        TEXT NOT NULL,
    -- JSON array of event types; empty = every event.
    events                     TEXT NOT NULL,
    enabled                    INTEGER NOT NULL,
    secret                     TEXT NOT NULL,
    previous_secret            TEXT,
    previous_secret_expires_at INTEGER,
    failing_since              INTEGER,
    created_at                 INTEGER NOT NULL,
    updated_at                 INTEGER NOT NULL,
    deleted_at                 INTEGER
) STRICT;
CREATE INDEX webhook_endpoints_merchant ON webhook_endpoints (merchant_id, created_at);

-- One row per (event, destination): a webhook endpoint (destination = its id) or the order's
-- callback URL (destination = 'callback'). Created when the outbox row is dispatched.
CREATE TABLE webhook_deliveries (
    id               TEXT PRIMARY KEY NOT NULL,
    merchant_id      TEXT NOT NULL REFERENCES merchants(id),
    event_id         TEXT NOT NULL REFERENCES events(id),
    endpoint_id      TEXT REFERENCES webhook_endpoints(id),
    destination      TEXT NOT NULL,
    url              TEXT NOT NULL,
    dialect          TEXT NOT NULL,
    status           TEXT NOT NULL,
    attempts         INTEGER NOT NULL,
    -- When the next attempt is due; while an attempt runs, the end of its claim.
    next_attempt_at  INTEGER,
    last_status_code INTEGER,
    response_excerpt TEXT,
    duration_ms      INTEGER,
    error            TEXT,
    request_headers  TEXT,
    request_body     TEXT,
    created_at       INTEGER NOT NULL,
    updated_at       INTEGER NOT NULL,
    UNIQUE (event_id, destination)
) STRICT;
CREATE INDEX webhook_deliveries_due ON webhook_deliveries (next_attempt_at) WHERE status = 'pending';
CREATE INDEX webhook_deliveries_endpoint ON webhook_deliveries (endpoint_id, created_at DESC, id DESC);
