-- The audit log: append-only and hash-chained.
--
-- THE HASH RULE. This comment is the one place it is written down; the app's
-- writer, GET /api/v1/platform/verify-audit and `cargo xtask verify` all
-- follow it.
--
--   hash = lower(hex(SHA-256(canonical)))
--   canonical = the UTF-8 JSON array, with no whitespace between tokens,
--       [prev_hash, id, occurred_at, actor_account_id, company_id, action,
--        target_type, target_id, details_json]
--     where id, actor_account_id and company_id are JSON numbers (or null),
--     the rest are JSON strings (or null), and strings are escaped as
--     JavaScript's JSON.stringify does (only ", \ and control characters).
--   prev_hash = the hash of the row with the next lower id, or 64 '0'
--     characters for the first row.
--
-- A row is never updated or deleted: the triggers below refuse it, so a
-- broken chain means the data was changed outside the app.

CREATE TABLE audit_log (
    id               INTEGER PRIMARY KEY AUTOINCREMENT,
    occurred_at      TEXT    NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%fZ', 'now')),
    actor_account_id INTEGER REFERENCES accounts (id) ON DELETE SET NULL,
    company_id       INTEGER REFERENCES companies (id) ON DELETE SET NULL,
    action           TEXT    NOT NULL,              -- e.g. 'qbt.connect', 'report.run', 'account.sign_in'
    target_type      TEXT,
    target_id        TEXT,
    details_json     TEXT    CHECK (details_json IS NULL OR json_valid(details_json)),
    prev_hash        TEXT    NOT NULL CHECK (length(prev_hash) = 64),
    hash             TEXT    NOT NULL UNIQUE CHECK (length(hash) = 64)
);

CREATE INDEX audit_log_by_company ON audit_log (company_id, occurred_at);

CREATE TRIGGER audit_log_no_update BEFORE UPDATE ON audit_log
BEGIN
    SELECT RAISE(ABORT, 'audit_log is append-only; rows cannot be updated');
END;

CREATE TRIGGER audit_log_no_delete BEFORE DELETE ON audit_log
BEGIN
    SELECT RAISE(ABORT, 'audit_log is append-only; rows cannot be deleted');
END;
