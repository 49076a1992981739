-- The web console (issue 19, PostgreSQL): users, sessions, invitations, the audit log, suspended
-- merchants, and the indexes the console's lists and searches need at volume.

-- Console users: operators (no merchant) and a merchant's owners and staff. `username` is
-- stored lower case (unique across all users); the password only as an Argon2id PHC string;
-- the TOTP secret sealed with the server master key.
CREATE TABLE console_users (
    id             TEXT PRIMARY KEY NOT NULL,
    username       TEXT NOT NULL UNIQUE,
    password_hash  TEXT NOT NULL,
    role           TEXT NOT NULL,
    merchant_id    TEXT REFERENCES merchants(id),
    totp_secret    TEXT,
    -- The last TOTP time step accepted: a code is never accepted twice.
    totp_last_step BIGINT,
    created_at     BIGINT NOT NULL,
    updated_at     BIGINT NOT NULL,
    disabled_at    BIGINT
);
CREATE INDEX console_users_merchant ON console_users (merchant_id);

-- Sessions: the cookie holds a 256-bit token, the database only its SHA-256. `stage` is
-- `full`, or `second_factor` between a right password and a right TOTP code.
CREATE TABLE console_sessions (
    token_hash   TEXT PRIMARY KEY NOT NULL,
    user_id      TEXT NOT NULL REFERENCES console_users(id),
    csrf         TEXT NOT NULL,
    stage        TEXT NOT NULL,
    client       TEXT,
    created_at   BIGINT NOT NULL,
    last_seen_at BIGINT NOT NULL,
    expires_at   BIGINT NOT NULL
);
CREATE INDEX console_sessions_user ON console_sessions (user_id);
CREATE INDEX console_sessions_expiry ON console_sessions (expires_at);

-- One-time invitations (the first operator's setup link is one): the link holds a 256-bit
-- token, the database only its SHA-256.
CREATE TABLE console_invites (
    token_hash  TEXT PRIMARY KEY NOT NULL,
    role        TEXT NOT NULL,
    merchant_id TEXT REFERENCES merchants(id),
    created_by  TEXT,
    created_at  BIGINT NOT NULL,
    expires_at  BIGINT NOT NULL
);
CREATE INDEX console_invites_merchant ON console_invites (merchant_id);

-- Who did what, append-only.
CREATE TABLE console_audit (
    seq         BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    at          BIGINT NOT NULL,
    user_id     TEXT,
    username    TEXT NOT NULL,
    merchant_id TEXT,
    action      TEXT NOT NULL,
    subject     TEXT,
    detail      TEXT,
    client      TEXT
);
CREATE INDEX console_audit_merchant ON console_audit (merchant_id, seq);

-- A suspended merchant's keys and console users are refused; its open checkouts go on.
ALTER TABLE merchants ADD COLUMN suspended_at BIGINT;

-- The orders list's filters, newest first (status has orders_merchant_status).
CREATE INDEX console_orders_reason ON orders (merchant_id, reason, created_at DESC, id DESC);
CREATE INDEX console_orders_asset ON orders (merchant_id, asset, created_at DESC, id DESC);
-- Search by address (every address an order was given) and by transaction hash, whatever
-- the case the merchant pastes.
CREATE INDEX console_order_addresses_lower ON order_addresses (lower(address));
CREATE INDEX console_payments_txid ON payments (lower(txid));
-- An order's events (its detail page and its webhook deliveries).
CREATE INDEX console_events_subject ON events (subject, seq);
-- A merchant's deposit accounts, newest first.
CREATE INDEX console_deposit_accounts_merchant ON deposit_accounts (merchant_id, seq);
