-- Which dialect credential created the order (`dialect_credentials.id`; NULL for native
-- orders and orders created before this column): the order's callbacks carry and are signed
-- with that credential while it is active. No foreign key: a credential is revoked, never
-- deleted, and the column is only read when a callback is built.
ALTER TABLE orders ADD COLUMN credential_id TEXT;
