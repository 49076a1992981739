-- Every wallet key a merchant has set on a chain, kept after it is replaced: the key stays
-- that merchant's (no other merchant may set it), and its index counter is remembered, so
-- setting an old key again continues after the last address it handed out instead of
-- handing the same addresses out twice.
CREATE TABLE wallet_keys (
    chain       TEXT NOT NULL,
    descriptor  TEXT NOT NULL,
    merchant_id TEXT NOT NULL REFERENCES merchants(id),
    next_index  INTEGER NOT NULL,
    PRIMARY KEY (chain, descriptor)
);
INSERT INTO wallet_keys (chain, descriptor, merchant_id, next_index)
    SELECT chain, descriptor, merchant_id, next_index FROM wallets;
