PRAGMA defer_foreign_keys=TRUE;
CREATE TABLE IF NOT EXISTS "d1_migrations"(
		id         INTEGER PRIMARY KEY AUTOINCREMENT,
		name       TEXT UNIQUE,
		applied_at TIMESTAMP DEFAULT CURRENT_TIMESTAMP NOT NULL
);
INSERT INTO "d1_migrations" ("id","name","applied_at") VALUES(1,'0001_accounts_companies_customers.sql','2026-12-03 11:42:38');
INSERT INTO "d1_migrations" ("id","name","applied_at") VALUES(2,'0002_encryption_keys_and_qbt_tokens.sql','2026-12-03 11:42:39');
INSERT INTO "d1_migrations" ("id","name","applied_at") VALUES(3,'0003_report_configs_and_notifications.sql','2026-12-03 11:42:39');
INSERT INTO "d1_migrations" ("id","name","applied_at") VALUES(4,'0004_audit_log.sql','2026-12-03 11:42:40');
CREATE TABLE accounts (
    id            INTEGER PRIMARY KEY AUTOINCREMENT,
    email         TEXT    NOT NULL COLLATE NOCASE UNIQUE,
    display_name  TEXT    NOT NULL,
    password_hash TEXT    NOT NULL,                 -- argon2id PHC string, never a password
    role          TEXT    NOT NULL DEFAULT 'member'
                          CHECK (role IN ('member', 'admin', 'devops')),
    created_at    TEXT    NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%fZ', 'now')),
    updated_at    TEXT    NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%fZ', 'now')),
    disabled_at   TEXT
, mfa_secret_ciphertext BLOB, mfa_key_id TEXT REFERENCES encryption_keys (key_id));
INSERT INTO "accounts" ("id","email","display_name","password_hash","role","created_at","updated_at","disabled_at","mfa_secret_ciphertext","mfa_key_id") VALUES(1,'SECRETVALUE@example.com','O''Brien; --','$argon2id$v=19$m=65536','admin','2026-01-01T00:00:00.000Z','2026-01-01T00:00:00.000Z',NULL,X'00ff10SECRET',NULL);
INSERT INTO "accounts" ("id","email","display_name","password_hash","role","created_at","updated_at","disabled_at","mfa_secret_ciphertext","mfa_key_id") VALUES(2,'b@example.com',replace('line1\nline2 /* not a comment */','\n',char(10)),'h','member','2026-01-02T00:00:00.000Z','2026-01-02T00:00:00.000Z','2026-02-01',X'',NULL);
CREATE TABLE companies (
    id             INTEGER PRIMARY KEY AUTOINCREMENT,
    name           TEXT    NOT NULL,
    qbt_company_id TEXT    UNIQUE,                  -- NULL until QBT is connected
    timezone       TEXT    NOT NULL DEFAULT 'UTC',
    created_at     TEXT    NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%fZ', 'now')),
    updated_at     TEXT    NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%fZ', 'now'))
);
CREATE TABLE company_members (
    company_id INTEGER NOT NULL REFERENCES companies (id) ON DELETE CASCADE,
    account_id INTEGER NOT NULL REFERENCES accounts (id) ON DELETE CASCADE,
    role       TEXT    NOT NULL DEFAULT 'viewer'
                       CHECK (role IN ('owner', 'manager', 'viewer')),
    created_at TEXT    NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%fZ', 'now')),
    PRIMARY KEY (company_id, account_id)
) WITHOUT ROWID;
CREATE TABLE customers (
    id              INTEGER PRIMARY KEY AUTOINCREMENT,
    company_id      INTEGER NOT NULL REFERENCES companies (id) ON DELETE CASCADE,
    qbt_customer_id TEXT    NOT NULL,               -- QBT jobcode id
    name            TEXT    NOT NULL,
    email           TEXT,
    active          INTEGER NOT NULL DEFAULT 1 CHECK (active IN (0, 1)),
    synced_at       TEXT,
    UNIQUE (company_id, qbt_customer_id)
);
CREATE TABLE encryption_keys (
    key_id       TEXT PRIMARY KEY,                  -- e.g. 'dek-2026-01'
    fingerprint  TEXT NOT NULL UNIQUE CHECK (fingerprint LIKE 'sha256:%'),
    algorithm    TEXT NOT NULL DEFAULT 'AES-256-GCM',
    activated_at TEXT NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%fZ', 'now')),
    retired_at   TEXT
);
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
CREATE TABLE report_configs (
    id              INTEGER PRIMARY KEY AUTOINCREMENT,
    company_id      INTEGER NOT NULL REFERENCES companies (id) ON DELETE CASCADE,
    name            TEXT    NOT NULL,
    kind            TEXT    NOT NULL CHECK (kind IN ('timesheet', 'payroll', 'job_costing', 'customer_hours')),
    filters_json    TEXT    NOT NULL DEFAULT '{}' CHECK (json_valid(filters_json)),
    schedule_cron   TEXT,                           -- NULL: run by hand only
    recipients_json TEXT    NOT NULL DEFAULT '[]' CHECK (json_valid(recipients_json)),
    created_by      INTEGER REFERENCES accounts (id) ON DELETE SET NULL,
    created_at      TEXT    NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%fZ', 'now')),
    updated_at      TEXT    NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%fZ', 'now')),
    last_run_at     TEXT,
    UNIQUE (company_id, name)
);
CREATE TABLE notifications (
    id           INTEGER PRIMARY KEY AUTOINCREMENT,
    account_id   INTEGER NOT NULL REFERENCES accounts (id) ON DELETE CASCADE,
    company_id   INTEGER REFERENCES companies (id) ON DELETE CASCADE,
    kind         TEXT    NOT NULL,                  -- e.g. 'report_ready', 'qbt_reconnect_needed'
    title        TEXT    NOT NULL,
    body         TEXT    NOT NULL DEFAULT '',
    payload_json TEXT    CHECK (payload_json IS NULL OR json_valid(payload_json)),
    created_at   TEXT    NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%fZ', 'now')),
    read_at      TEXT
);
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
DELETE FROM sqlite_sequence;
INSERT INTO "sqlite_sequence" ("name","seq") VALUES('d1_migrations',4);
CREATE INDEX company_members_by_account ON company_members (account_id);
CREATE INDEX customers_by_company_name ON customers (company_id, name);
CREATE UNIQUE INDEX encryption_keys_one_in_force
    ON encryption_keys ((retired_at IS NULL)) WHERE retired_at IS NULL;
CREATE INDEX qbt_connections_by_key ON qbt_connections (key_id);
CREATE INDEX notifications_unread ON notifications (account_id, created_at) WHERE read_at IS NULL;
CREATE INDEX audit_log_by_company ON audit_log (company_id, occurred_at);
CREATE TRIGGER report_configs_touch AFTER UPDATE OF name, kind, filters_json, schedule_cron, recipients_json
ON report_configs
FOR EACH ROW WHEN NEW.updated_at = OLD.updated_at
BEGIN
    UPDATE report_configs SET updated_at = strftime('%Y-%m-%dT%H:%M:%fZ', 'now') WHERE id = NEW.id;
END;
CREATE TRIGGER audit_log_no_update BEFORE UPDATE ON audit_log
BEGIN
    SELECT RAISE(ABORT, 'audit_log is append-only; rows cannot be updated');
END;
CREATE TRIGGER audit_log_no_delete BEFORE DELETE ON audit_log
BEGIN
    SELECT RAISE(ABORT, 'audit_log is append-only; rows cannot be deleted');
END;