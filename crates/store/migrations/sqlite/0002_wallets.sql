-- Merchant receiving wallets: one extended public key (or descriptor) per merchant and chain.
-- `next_index` is the next derivation index to hand out; indexes are never reused.
CREATE TABLE wallets (
    merchant_id TEXT NOT NULL REFERENCES merchants(id),
    chain       TEXT NOT NULL,
    descriptor  TEXT NOT NULL,
    next_index  INTEGER NOT NULL,
    created_at  INTEGER NOT NULL,
    updated_at  INTEGER NOT NULL,
    PRIMARY KEY (merchant_id, chain)
) STRICT;

-- The length of an order's rate lock, so that choosing another asset re-locks the rate for
-- the same length of time.
ALTER TABLE orders ADD COLUMN lock_window_ms INTEGER NOT NULL DEFAULT 1800000;
