-- EVM watcher (issue 3): the watched set is updated incrementally from the orders changed
-- since the previous load (new orders, a changed address).
CREATE INDEX orders_updated ON orders (updated_at);
