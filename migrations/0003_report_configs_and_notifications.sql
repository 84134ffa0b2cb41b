-- Saved report definitions and the notifications shown to accounts.

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

CREATE INDEX notifications_unread ON notifications (account_id, created_at) WHERE read_at IS NULL;

-- Keep updated_at honest without trusting every caller.
CREATE TRIGGER report_configs_touch AFTER UPDATE OF name, kind, filters_json, schedule_cron, recipients_json
ON report_configs
FOR EACH ROW WHEN NEW.updated_at = OLD.updated_at
BEGIN
    UPDATE report_configs SET updated_at = strftime('%Y-%m-%dT%H:%M:%fZ', 'now') WHERE id = NEW.id;
END;
