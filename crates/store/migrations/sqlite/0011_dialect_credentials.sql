-- Credentials of the vendor-compatible API dialects (Aurpay, Pay Protocol, Zaepe), and the
-- console logins some dialects exchange for a key (Aurpay "Get API-Key").
--
-- A credential has a public key (Aurpay API-Key, Pay Protocol X-PAY-KEY, Zaepe X-API-Key) and
-- optionally a second public identifier (Aurpay API-Token), each found by its SHA-256 (hex,
-- unique); its secrets (the key itself, the HMAC secret, callback token and secret) are one
-- JSON object sealed with the server master key.

CREATE TABLE dialect_credentials (
    id          TEXT PRIMARY KEY NOT NULL,
    merchant_id TEXT NOT NULL REFERENCES merchants(id),
    dialect     TEXT NOT NULL,
    key_hash    TEXT NOT NULL UNIQUE,
    token_hash  TEXT UNIQUE,
    key_prefix  TEXT NOT NULL,
    sealed      TEXT NOT NULL,
    created_at  INTEGER NOT NULL,
    revoked_at  INTEGER
) STRICT;
CREATE INDEX dialect_credentials_merchant ON dialect_credentials (merchant_id, dialect);

CREATE TABLE merchant_logins (
    merchant_id   TEXT PRIMARY KEY NOT NULL REFERENCES merchants(id),
    username      TEXT NOT NULL UNIQUE,
    password_hash TEXT NOT NULL,
    created_at    INTEGER NOT NULL,
    updated_at    INTEGER NOT NULL
) STRICT;
