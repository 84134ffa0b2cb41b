-- Accounts (people who sign in), the companies they manage, and each
-- company's customers as synced from QuickBooks Time (QBT).
--
-- Timestamps are ISO 8601 UTC text, e.g. 2026-11-23T22:30:00.000Z.

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
);

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

CREATE INDEX company_members_by_account ON company_members (account_id);

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

CREATE INDEX customers_by_company_name ON customers (company_id, name);
