-- Issue 25: what a chain watcher reads costs what changed (or what is open), not what exists.
-- Every query these indexes serve has its plan asserted on a million seeded orders
-- (crates/store/tests/volume.rs).

-- The incremental load walks the orders changed since its last one in (updated_at, id)
-- order, a page at a time.
DROP INDEX orders_updated;
CREATE INDEX orders_updated ON orders (updated_at, id);

-- The full load walks the orders whose monitoring window is still open, in
-- (monitor_until, id) order: the open ones only, however long the history.
CREATE INDEX orders_monitored ON orders (monitor_until, id);

-- An order's addresses on one chain: both columns are equalities, so this index wins over
-- the primary key (chain, address, order_id), which only `chain` would narrow to every
-- address ever issued on the chain; and it holds the address, so the table is not read.
DROP INDEX order_addresses_order;
CREATE INDEX order_addresses_order ON order_addresses (order_id, chain, address);

-- The same column and predicate as orders_address_unique (0007): one index less to keep up
-- on every order insert.
DROP INDEX orders_address;

-- Payments and deposits whose confirmations can still change: unconfirmed ones, confirmed
-- ones with no block (zero-conf), and confirmed ones at or above a height. One index serves
-- the three branches of each query.
DROP INDEX payments_chain_status;
DROP INDEX payments_chain_height;
CREATE INDEX payments_open ON payments (chain, status, block_height);
DROP INDEX deposits_open;
CREATE INDEX deposits_open ON deposits (chain, status, block_height);

-- Deposit addresses created since the last load, a page at a time in (created_at, address)
-- order.
DROP INDEX deposit_addresses_new;
CREATE INDEX deposit_addresses_new ON deposit_addresses (chain, created_at, address);
