-- Encrypted secrets and the data-encryption key (DEK) that protects them.
--
-- The DEK itself (DATA_ENCRYPTION_KEY) lives only in the environment's secret
-- store and in the operators' password manager, never in this database. What
-- the database records is the DEK's fingerprint, so that a restore can tell
-- whether the key in force where the data lands is the key the data was
-- encrypted under:
--
--     fingerprint = 'sha256:' || lower(hex(SHA-256('qbtime-dek-v1:' || raw key bytes)))
--
-- Exactly one row has retired_at IS NULL: the key in force. Every ciphertext
-- column is AES-256-GCM output (12-byte nonce || ciphertext || 16-byte tag)
-- and names the key it was made under, so a key rotation can be partial.

CREATE TABLE encryption_keys (
    key_id       TEXT PRIMARY KEY,                  -- e.g. 'dek-2026-01'
    fingerprint  TEXT NOT NULL UNIQUE CHECK (fingerprint LIKE 'sha256:%'),
    algorithm    TEXT NOT NULL DEFAULT 'AES-256-GCM',
    activated_at TEXT NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%fZ', 'now')),
    retired_at   TEXT
);

CREATE UNIQUE INDEX encryption_keys_one_in_force
    ON encryption_keys ((retired_at IS NULL)) WHERE retired_at IS NULL;

-- MFA secrets arrived after accounts existed. `accounts` was created in 0001
-- and now references a table created later, which is exactly the shape that a
-- plain `wrangler d1 export` cannot re-import (workers-sdk #5683).
ALTER TABLE accounts ADD COLUMN mfa_secret_ciphertext BLOB;
ALTER TABLE accounts ADD COLUMN mfa_key_id TEXT REFERENCES encryption_keys (key_id);

-- One QuickBooks Time OAuth connection per company.
CREATE TABLE qbt_connections (
    company_id               INTEGER PRIMARY KEY REFERENCES companies (id) ON DELETE CASCADE,
    key_id                   TEXT    NOT NULL REFERENCES encryption_keys (key_id),
    access_token_ciphertext  BLOB    NOT NULL,
    refresh_token_ciphertext BLOB    NOT NULL,
    client_id                TEXT    NOT NULL,
    client_secret_ciphertext BLOB    NOT NULL,
    access_expires_at        TEXT    NOT NULL,
    connected_by             INTEGER REFERENCES accounts (id) ON DELETE SET NULL,
    connected_at             TEXT    NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%fZ', 'now')),
    refreshed_at             TEXT
);

CREATE INDEX qbt_connections_by_key ON qbt_connections (key_id);
