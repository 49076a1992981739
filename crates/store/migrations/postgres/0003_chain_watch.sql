-- Chain watchers (issue 3).
-- Every address ever assigned to an order stays watched until the order's monitor_until:
-- choosing another asset changes the order's address, and a late payment to the old one must
-- still be seen.
CREATE TABLE order_addresses (
    chain      TEXT NOT NULL,
    address    TEXT NOT NULL,
    order_id   TEXT NOT NULL REFERENCES orders(id),
    PRIMARY KEY (chain, address, order_id)
);
CREATE INDEX order_addresses_order ON order_addresses (order_id);
INSERT INTO order_addresses (chain, address, order_id)
    SELECT split_part(asset, ':', 1), address, id FROM orders
    WHERE address IS NOT NULL AND asset IS NOT NULL;

-- Where each chain's watcher is: the last block it applied and the hashes of the blocks
-- before it (JSON array of [height, hash]), to find the common ancestor after a reorg.
CREATE TABLE chain_cursors (
    chain      TEXT PRIMARY KEY NOT NULL,
    height     BIGINT NOT NULL,
    hash       TEXT NOT NULL,
    recent     TEXT NOT NULL,
    updated_at BIGINT NOT NULL
);

CREATE INDEX payments_chain_height ON payments (chain, block_height);
CREATE INDEX payments_chain_status ON payments (chain, status);
