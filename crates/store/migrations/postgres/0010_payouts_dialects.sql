-- Issue 8 (dialects), seam S2: payout requests, order dialect data, nonces.

-- Fields a dialect must echo back or use in its callbacks (JSON object text).
ALTER TABLE orders ADD COLUMN dialect_data TEXT NOT NULL DEFAULT '{}';

-- Refunds and withdrawals, recorded as requests awaiting the merchant's approval. `seq` is a
-- small sequential number for dialects whose ids are integers.
CREATE TABLE payout_requests (
    seq           BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    id            TEXT NOT NULL UNIQUE,
    merchant_id   TEXT NOT NULL REFERENCES merchants(id),
    kind          TEXT NOT NULL,
    order_id      TEXT REFERENCES orders(id),
    asset         TEXT,
    amount        TEXT,
    fiat_amount   TEXT,
    fiat_currency TEXT,
    destination   TEXT,
    memo          TEXT,
    status        TEXT NOT NULL,
    dialect       TEXT NOT NULL,
    reference     TEXT,
    dialect_data  TEXT NOT NULL,
    created_at    BIGINT NOT NULL,
    updated_at    BIGINT NOT NULL,
    version       BIGINT NOT NULL
);
CREATE INDEX payout_requests_merchant ON payout_requests (merchant_id, created_at DESC, id DESC);
CREATE INDEX payout_requests_order ON payout_requests (order_id);
CREATE UNIQUE INDEX payout_requests_reference ON payout_requests (merchant_id, kind, dialect, reference)
    WHERE reference IS NOT NULL;

-- Single-use nonces (Zaepe's X-Nonce, any dialect): a second use of (scope, nonce) before it
-- expires is a replay. Expired rows are pruned as new ones arrive.
CREATE TABLE seen_nonces (
    scope      TEXT NOT NULL,
    nonce      TEXT NOT NULL,
    expires_at BIGINT NOT NULL,
    PRIMARY KEY (scope, nonce)
);
CREATE INDEX seen_nonces_expiry ON seen_nonces (expires_at);
