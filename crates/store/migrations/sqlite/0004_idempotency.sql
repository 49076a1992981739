-- Idempotency keys of the native API (Stripe's semantics): the first request with a key
-- reserves it (status NULL while in progress); its response is stored and replayed for
-- every retry with the same key. Rows are kept at least 24 hours, then purged.
CREATE TABLE idempotency_keys (
    merchant_id  TEXT NOT NULL REFERENCES merchants(id),
    key          TEXT NOT NULL,
    -- "METHOD path sha256(body)": the same key with another request is refused.
    fingerprint  TEXT NOT NULL,
    status       INTEGER,
    body         TEXT,
    created_at   INTEGER NOT NULL,
    completed_at INTEGER,
    PRIMARY KEY (merchant_id, key)
) STRICT;

CREATE INDEX idempotency_keys_created ON idempotency_keys (created_at);
