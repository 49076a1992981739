-- Issue 8 (Pay Protocol recharge): deposit accounts, one per user of a merchant, each with one
-- receiving address per chain. `seq` is the small integer id dialects show (Pay Protocol's
-- `userId`). Addresses are derived at indexes taken from the wallet's counter shared with
-- orders, so an index is never used twice.
CREATE TABLE deposit_accounts (
    seq         INTEGER PRIMARY KEY AUTOINCREMENT,
    merchant_id TEXT NOT NULL REFERENCES merchants(id),
    uuid        TEXT NOT NULL,
    dialect     TEXT NOT NULL,
    created_at  INTEGER NOT NULL,
    UNIQUE (merchant_id, uuid)
);

CREATE TABLE deposit_addresses (
    chain            TEXT NOT NULL,
    address          TEXT NOT NULL,
    merchant_id      TEXT NOT NULL,
    uuid             TEXT NOT NULL,
    derivation_index INTEGER NOT NULL,
    created_at       INTEGER NOT NULL,
    PRIMARY KEY (chain, address),
    FOREIGN KEY (merchant_id, uuid) REFERENCES deposit_accounts (merchant_id, uuid)
);
CREATE INDEX deposit_addresses_account ON deposit_addresses (merchant_id, uuid);
-- The watchers' incremental load: addresses created since the last one.
CREATE INDEX deposit_addresses_new ON deposit_addresses (chain, created_at);

-- Transfers received at deposit addresses. Keyed like payments by chain + txid + output
-- index (+ asset: an EVM transaction may move native coin and a token to one address), so a
-- rescan updates the row instead of adding one. `seq` is Pay Protocol's `rechargeId`.
CREATE TABLE deposits (
    seq              INTEGER PRIMARY KEY AUTOINCREMENT,
    id               TEXT NOT NULL UNIQUE,
    merchant_id      TEXT NOT NULL REFERENCES merchants(id),
    account_uuid     TEXT NOT NULL,
    account_seq      INTEGER NOT NULL,
    dialect          TEXT NOT NULL,
    chain            TEXT NOT NULL,
    asset            TEXT NOT NULL,
    amount           TEXT NOT NULL,
    txid             TEXT NOT NULL,
    output_index     INTEGER NOT NULL,
    from_address     TEXT,
    to_address       TEXT NOT NULL,
    derivation_index INTEGER NOT NULL,
    block_height     INTEGER,
    block_hash       TEXT,
    confirmations    INTEGER NOT NULL,
    status           TEXT NOT NULL,
    occurred_at      INTEGER NOT NULL,
    detected_at      INTEGER NOT NULL,
    confirmed_at     INTEGER,
    updated_at       INTEGER NOT NULL,
    UNIQUE (chain, txid, output_index, asset)
);
CREATE INDEX deposits_merchant ON deposits (merchant_id, seq);
CREATE INDEX deposits_open ON deposits (chain, status);
CREATE INDEX deposits_address ON deposits (chain, to_address);

-- Per-merchant settings of a dialect that its vendor keeps in a console (Pay Protocol's
-- recharge callback URL).
CREATE TABLE dialect_settings (
    merchant_id TEXT NOT NULL REFERENCES merchants(id),
    dialect     TEXT NOT NULL,
    name        TEXT NOT NULL,
    value       TEXT NOT NULL,
    updated_at  INTEGER NOT NULL,
    PRIMARY KEY (merchant_id, dialect, name)
);
