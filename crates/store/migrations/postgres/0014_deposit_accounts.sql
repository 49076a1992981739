-- Issue 8 (Pay Protocol recharge): deposit accounts, one per user of a merchant, each with one
-- receiving address per chain. `seq` is the small integer id dialects show (Pay Protocol's
-- `userId`). Addresses are derived at indexes taken from the wallet's counter shared with
-- orders, so an index is never used twice.
CREATE TABLE deposit_accounts (
    seq         BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    merchant_id TEXT NOT NULL REFERENCES merchants(id),
    uuid        TEXT NOT NULL,
    created_at  BIGINT NOT NULL,
    UNIQUE (merchant_id, uuid)
);

CREATE TABLE deposit_addresses (
    chain            TEXT NOT NULL,
    address          TEXT NOT NULL,
    merchant_id      TEXT NOT NULL,
    uuid             TEXT NOT NULL,
    derivation_index BIGINT NOT NULL,
    created_at       BIGINT NOT NULL,
    PRIMARY KEY (chain, address),
    FOREIGN KEY (merchant_id, uuid) REFERENCES deposit_accounts (merchant_id, uuid)
);
CREATE INDEX deposit_addresses_account ON deposit_addresses (merchant_id, uuid);
