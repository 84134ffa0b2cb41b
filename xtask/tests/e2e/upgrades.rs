//! After an upgrade: the backups, manifests and records an earlier version
//! of this tool wrote, read by this one (an operator `git pull`s and keeps
//! `backups/`). The files below were written by the commit each names, with
//! its own binary, and are copied here byte for byte so that no old binary
//! is needed at test time.

use crate::common::*;

/// `backup local --table accounts`, as 66107b4 wrote it (before d55a117
/// refused chosen tables without the tables they reference): its file is
/// intact and matches its manifest, which that version verified good.
const OLD_TABLE_BACKUP: &str = "backup-local-20261202-0414-4.sql";
const OLD_TABLE_BACKUP_SQL: &str = r#"PRAGMA defer_foreign_keys=TRUE;
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
INSERT INTO "accounts" ("id","email","display_name","password_hash","role","created_at","updated_at","disabled_at","mfa_secret_ciphertext","mfa_key_id") VALUES(1,'a@x.com','A','h','member','2026-12-02T04:14:51.815Z','2026-12-02T04:14:51.815Z',NULL,NULL,NULL);
INSERT INTO "accounts" ("id","email","display_name","password_hash","role","created_at","updated_at","disabled_at","mfa_secret_ciphertext","mfa_key_id") VALUES(2,'b@x.com','B','h','member','2026-12-02T04:14:51.815Z','2026-12-02T04:14:51.815Z',NULL,NULL,NULL);"#;
const OLD_TABLE_BACKUP_MANIFEST: &str = r#"{
  "format_version": 1,
  "tool": {
    "name": "qbtime-xtask",
    "version": "0.1.0"
  },
  "created_at": "2026-12-02T04:14:52.834230503Z",
  "environment": "local",
  "database": {
    "name": "qbtime_db_local",
    "uuid": "00000000-0000-4000-8000-000000000000",
    "wrangler_env": null,
    "location": "local"
  },
  "mode": "full",
  "tables": [
    "accounts"
  ],
  "file": {
    "name": "backup-local-20261202-0414-4.sql",
    "bytes": 1215,
    "sha256": "cef69872af98a58d5c8ce727f699b7a9af6e516649c2fcc6fcd767bdadbc1983"
  },
  "rows": {
    "accounts": 2
  },
  "statements": 4,
  "migrations": [],
  "migration_sha256": {},
  "encryption_key": null,
  "wrangler_version": "4.164.0",
  "git_commit": "66107b4a6bd8c01437a55f663d7fcd3187671164",
  "time_travel_bookmark": null,
  "virtual_tables": null,
  "reason": null,
  "verification": {
    "verified_at": "2026-12-02T04:14:52.943028829Z",
    "outcome": "good",
    "failed": [],
    "seconds": 0.01,
    "tool_version": "0.1.0"
  },
  "content": {
    "accounts": "72a93f0f3352081d4710c818527ed7c44dd5e64c051183aecf9641f73858baba"
  },
  "sequences": {
    "accounts": 3
  }
}
"#;

fn with_old_table_backup(sb: &Sandbox) {
    std::fs::create_dir_all(sb.backups()).unwrap();
    std::fs::write(sb.backups().join(OLD_TABLE_BACKUP), OLD_TABLE_BACKUP_SQL).unwrap();
    std::fs::write(
        sb.backups()
            .join("backup-local-20261202-0414-4.manifest.json"),
        OLD_TABLE_BACKUP_MANIFEST,
    )
    .unwrap();
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(sb.backups(), std::fs::Permissions::from_mode(0o700)).unwrap();
    }
}

/// atkAZ: a backup of chosen tables written by 66107b4, whose table
/// references one it did not take, is now failed by verify's foreign-key
/// check (d55a117). That verdict may stand, but the headline says "BAD:
/// corrupt or does not match its manifest": the file is intact, its sha256
/// and size match the manifest, and the operator who reads "corrupt" about
/// a backup the older version called good goes looking for disk damage,
/// not for the missing `--table encryption_keys`.
#[test]
fn an_old_backup_of_chosen_tables_is_not_called_corrupt_when_only_its_choice_is_short() {
    let sb = Sandbox::new();
    sb.apply_migrations();
    with_old_table_backup(&sb);
    assert_eq!(
        sha256_hex(OLD_TABLE_BACKUP_SQL.as_bytes()),
        "cef69872af98a58d5c8ce727f699b7a9af6e516649c2fcc6fcd767bdadbc1983",
        "the fixture is the file 66107b4 wrote"
    );
    let run = sb.xtask(&["verify", OLD_TABLE_BACKUP]);
    assert!(
        !run.all().contains("corrupt"),
        "an intact backup whose sha256 matches is called corrupt:\n{}",
        run.all()
    );
    assert!(
        !run.all().contains("does not match its manifest"),
        "an intact backup whose sha256 matches is said not to match its manifest:\n{}",
        run.all()
    );
    assert!(run.all().contains("encryption_keys"), "{}", run.all());
}

/// atkAZ: nothing reads a manifest's `format_version`
/// (crates/d1-core/src/manifest.rs `validate` and `from_json`; the
/// offsite index's is not read either). Every manifest so far is version
/// 1 and fields have been added to it since (`exact_values`, `sequences`,
/// `rowids_renumbered`), each of which an older binary ignores. The day a
/// later version writes version 2, this binary (checked out to bisect, or
/// on a machine not yet updated) lists, verifies GOOD and restores that
/// backup as if it knew every field. It must refuse it, naming the version.
#[test]
fn a_manifest_of_a_newer_format_is_refused_naming_its_version() {
    let (sb, name) = sandbox_with_a_backup();
    let stem = name.split(".sql").next().unwrap().to_owned();
    let path = sb.backups().join(format!("{stem}.manifest.json"));
    let mut manifest = manifest_for(&sb, &name);
    assert_eq!(manifest["format_version"], 1);
    manifest["format_version"] = serde_json::json!(2);
    std::fs::write(&path, serde_json::to_string_pretty(&manifest).unwrap()).unwrap();

    let verify = sb.xtask(&["verify", &name]);
    assert!(
        !verify.ok,
        "a manifest of format 2 is verified as if this version knew it:\n{}",
        verify.all()
    );
    assert!(
        verify.stderr.contains("format") && verify.stderr.contains('2'),
        "the refusal does not name the manifest's format version:\n{}",
        verify.all()
    );

    let restore = sb.xtask(&["restore", &name, "--to", "local", "--replace", "--dry-run"]);
    assert!(
        !restore.ok,
        "restore plans to load a backup of manifest format 2:\n{}",
        restore.all()
    );
    assert!(
        restore.stderr.contains("format") && restore.stderr.contains('2'),
        "the refusal does not name the manifest's format version:\n{}",
        restore.all()
    );
}

/// atkAZ: verify's content line counts one table as "1 tables"
/// (crates/d1-core/src/checks.rs, the content check's pass), where the rows
/// line beside it says "1 table".
#[test]
fn the_content_check_of_a_backup_of_one_table_says_1_table() {
    let sb = Sandbox::new();
    sb.apply_migrations();
    with_old_table_backup(&sb);
    let run = sb.xtask(&["verify", OLD_TABLE_BACKUP]);
    assert!(run.all().contains("1 table, 2 rows"), "{}", run.all());
    assert!(!run.all().contains("1 tables"), "{}", run.all());
}

/// rvAR: the newest backup of local, written by a later version (manifest
/// format 2), is "ignored by this version" (c5e6735): `restore latest:local
/// --to local --replace --yes` then restores the backup before it, exit 0,
/// and the row written between the two is gone from the database, though
/// the warning itself says to update and "run the command again". `latest`
/// must not silently mean an older backup than the newest in backups/.
#[test]
fn restore_latest_does_not_pass_over_a_newer_format_backup_to_an_older_one() {
    let (sb, first) = sandbox_with_a_backup();
    sb.execute_sql(
        "INSERT INTO accounts (email, display_name, password_hash) \
         VALUES ('late@x.com', 'Late', 'h');",
    );
    sb.xtask(&["backup", "local"]).assert_ok();
    let newest: Vec<String> = { sb.backup_files().into_iter() }
        .filter(|n| n.ends_with(".sql") && *n != first)
        .collect();
    assert_eq!(newest.len(), 1, "{:?}", sb.backup_files());
    let stem = newest[0].split(".sql").next().unwrap().to_owned();
    let path = sb.backups().join(format!("{stem}.manifest.json"));
    let mut manifest = manifest_for(&sb, &newest[0]);
    manifest["format_version"] = 2.into();
    std::fs::write(&path, serde_json::to_string_pretty(&manifest).unwrap()).unwrap();

    let run = restore_replacing(&sb, "latest:local");
    let late = sb.query("SELECT COUNT(*) AS n FROM accounts WHERE email = 'late@x.com'");
    assert_eq!(
        late[0][0]["n"],
        1,
        "restore latest restored {first}, older than the newest backup {}, and the row \
         written between them is gone (exit {:?}):\n{}",
        newest[0],
        run.code,
        run.all()
    );
}

/// A sandbox with two verified backups of local, the newest's manifest
/// then rewritten as a later version of this tool writes it (format 2),
/// and an applied migration edited after it was applied (caught by
/// `migrate local --check` before the manifest is planted). Returns the
/// sandbox, the migration's name and its original text.
fn edited_migration_beside_a_newer_format_backup() -> (Sandbox, String, String) {
    let (sb, first) = sandbox_with_a_backup();
    std::thread::sleep(std::time::Duration::from_millis(1100));
    sb.xtask(&["backup", "local"]).assert_ok();
    let name = "0001_accounts_companies_customers.sql";
    let migration = sb.path().join("migrations").join(name);
    let original = std::fs::read_to_string(&migration).unwrap();
    std::fs::write(
        &migration,
        format!("{original}\n-- edited after it was applied\n"),
    )
    .unwrap();
    let run = sb.xtask(&["migrate", "local", "--check"]);
    assert_eq!(
        run.code,
        Some(1),
        "the edit is caught first:\n{}",
        run.all()
    );

    let newest: String = { sb.backup_files().into_iter() }
        .find(|n| n.ends_with(".sql") && *n != first)
        .unwrap();
    let mut manifest = manifest_for(&sb, &newest);
    manifest["format_version"] = 2.into();
    std::fs::write(
        sb.backups().join(newest.replace(".sql", ".manifest.json")),
        serde_json::to_string_pretty(&manifest).unwrap(),
    )
    .unwrap();
    assert_ne!(sb.xtask(&["list"]).code, Some(0), "list stops");
    (sb, name.to_owned(), original)
}

/// rvAS: a newer-format manifest in backups/ now stops `list`, `restore
/// latest`, `status` and `prune` (c65637f, `inventory::scan_all`), but
/// `migrations::record_on_this_machine` reads the directory with
/// `inventory::scan(..).unwrap_or_default()`: the stop becomes "no backup
/// here", so this machine's record of what was applied is dropped in
/// silence. An applied migration edited after it was applied, which
/// `migrate local --check` fails (exit 1) a moment before, then passes,
/// exit 0, "unchanged ... checked by name only", and `migrate local
/// --dry-run` plans with it.
#[test]
fn migrate_check_does_not_pass_an_edited_migration_when_a_newer_format_backup_is_there() {
    let (sb, _name, _original) = edited_migration_beside_a_newer_format_backup();
    let run = sb.xtask(&["migrate", "local", "--check"]);
    assert_ne!(
        run.code,
        Some(0),
        "an edited applied migration passes the check once a newer-format manifest is in \
         backups/:\n{}",
        run.all()
    );
    let run = sb.xtask(&["migrate", "local", "--dry-run"]);
    assert_ne!(run.code, Some(0), "{}", run.all());
}

/// rvAS: the same directory, and `backup local` runs on (exit 0, "GOOD"):
/// it neither stops as `list` does nor keeps the record, so its manifest
/// records the edited file's sha256 as the migration that was applied.
/// Once the older backups are pruned, that record is the only one, and the
/// edit is laundered.
#[test]
fn a_backup_beside_a_newer_format_backup_does_not_record_an_edited_migration_as_applied() {
    let (sb, name, original) = edited_migration_beside_a_newer_format_backup();
    let before = sb.backup_files();
    let run = sb.xtask(&["backup", "local"]);
    let Some(new) =
        { sb.backup_files().into_iter() }.find(|f| f.ends_with(".sql") && !before.contains(f))
    else {
        // Refused before the export, naming why, and nothing written.
        assert_eq!(run.code, Some(2), "{}", run.all());
        assert!(run.stderr.contains("newer version"), "{}", run.all());
        assert_eq!(sb.backup_files(), before);
        return;
    };
    let m = manifest_for(&sb, &new);
    assert_eq!(
        m["migration_sha256"][&name],
        sha256_hex(original.as_bytes()).as_str(),
        "the backup records the edited migration as the one applied (exit {:?}):\n{}",
        run.code,
        run.all()
    );
}

/// A full backup of local D1 holding an account whose id is 2^53 + 1, as
/// 1a228d7 wrote it with `backup local` (its export read the SQLite file,
/// but wrote every number as JavaScript does, until c05b2be): the id is in
/// the file as 9007199254740992. Its manifest predates `wide_integers`.
const OLD_WIDE_BACKUP: &str = "backup-local-20261202-2147.sql";
const OLD_WIDE_BACKUP_SQL: &str = r#"PRAGMA defer_foreign_keys=TRUE;
CREATE TABLE IF NOT EXISTS "d1_migrations"(
		id         INTEGER PRIMARY KEY AUTOINCREMENT,
		name       TEXT UNIQUE,
		applied_at TIMESTAMP DEFAULT CURRENT_TIMESTAMP NOT NULL
);
INSERT INTO "d1_migrations" ("id","name","applied_at") VALUES(1,'0001_accounts_companies_customers.sql','2026-12-02 21:47:56');
INSERT INTO "d1_migrations" ("id","name","applied_at") VALUES(2,'0002_encryption_keys_and_qbt_tokens.sql','2026-12-02 21:47:56');
INSERT INTO "d1_migrations" ("id","name","applied_at") VALUES(3,'0003_report_configs_and_notifications.sql','2026-12-02 21:47:57');
INSERT INTO "d1_migrations" ("id","name","applied_at") VALUES(4,'0004_audit_log.sql','2026-12-02 21:47:57');
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
INSERT INTO "accounts" ("id","email","display_name","password_hash","role","created_at","updated_at","disabled_at","mfa_secret_ciphertext","mfa_key_id") VALUES(9007199254740992,'a@x.com','A','h','member','2026-12-02T21:47:59.644Z','2026-12-02T21:47:59.644Z',NULL,NULL,NULL);
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
INSERT INTO "sqlite_sequence" ("name","seq") VALUES('accounts',9007199254740992);
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
END;"#;
const OLD_WIDE_BACKUP_MANIFEST: &str = r#"{
  "format_version": 1,
  "tool": {
    "name": "qbtime-xtask",
    "version": "0.1.0"
  },
  "created_at": "2026-12-02T21:47:59.790619775Z",
  "environment": "local",
  "database": {
    "name": "qbtime_db_local",
    "uuid": "00000000-0000-4000-8000-000000000000",
    "wrangler_env": null,
    "location": "local"
  },
  "mode": "full",
  "tables": [],
  "file": {
    "name": "backup-local-20261202-2147.sql",
    "bytes": 7402,
    "sha256": "33820586e72d87a5039bb573aa0264e6a46846b358fe622a96288ae2ef848572"
  },
  "rows": {
    "accounts": 1,
    "audit_log": 0,
    "companies": 0,
    "company_members": 0,
    "customers": 0,
    "d1_migrations": 4,
    "encryption_keys": 0,
    "notifications": 0,
    "qbt_connections": 0,
    "report_configs": 0,
    "sqlite_sequence": 2
  },
  "statements": 28,
  "migrations": [
    "0001_accounts_companies_customers.sql",
    "0002_encryption_keys_and_qbt_tokens.sql",
    "0003_report_configs_and_notifications.sql",
    "0004_audit_log.sql"
  ],
  "migration_sha256": {
    "0001_accounts_companies_customers.sql": "cba44122bba249467c933732cb3ecf479a2b02ecdc8078fab33530df22e8b835",
    "0002_encryption_keys_and_qbt_tokens.sql": "968210baf49b005d2c72e8c394b65ac6a3eaa83dd83e9f187d7dab4b2826fdb4",
    "0003_report_configs_and_notifications.sql": "990790ac156869a53a11a4e48b5eeb148377a6472fefc905fe025add9318c50a",
    "0004_audit_log.sql": "26bfcbed50091a1ea0d180568b11a23ad44cfca9a34be491c32212a80a855863"
  },
  "encryption_key": null,
  "wrangler_version": "4.164.0",
  "git_commit": "b81ea1d0ce599c5d7db3b42baa72e7e2b7d6a038",
  "time_travel_bookmark": null,
  "virtual_tables": null,
  "reason": null,
  "verification": {
    "verified_at": "2026-12-02T21:47:59.832326878Z",
    "outcome": "good",
    "failed": [],
    "seconds": 0.01,
    "tool_version": "0.1.0"
  },
  "content": {
    "accounts": "f3b3ee092e7c95f8c9feb8a29310750759e5ae5bfcdddd15e147c45d3b9a095d",
    "audit_log": "e629bbf94c0757411fb037026834bc19bf028b40d3f690748ec6a4fa7377287e",
    "companies": "c479661d53283b9678653cdcddb5e58c57f4eb4b2f9f194ca3238b8de2c0ab10",
    "company_members": "3442ea907406ee87420a13a05d94281b3d8854abc5e54f511b25f7249fd0d330",
    "customers": "9327e9e6123bec7f0bfd3bedd8186410c5c8ffdc44a73357b552c5943c75991e",
    "d1_migrations": "8ebd776158fb3dd2b5619f99c16ce83c1913d070bdab1bbd57bd28c198815a53",
    "encryption_keys": "d2622fd43143ddf975d06d9c0277a3b4dcf3c70feaabd1f2a4cb7bec770cec7a",
    "notifications": "1aaeece0c48f365415e30f48f607ffc29056daf004f3a75930f16648abf08374",
    "qbt_connections": "9b59b94e60ab4e8b5fe29013a855c2c6297f76308d9ef60e1f2009d444aa0b55",
    "report_configs": "f8c5d35ff6d2ee478db5f5ecc2bc46522a911fd70f5d967d1feb500ecf072977"
  }
}
"#;

/// atkBW: the restore plan says `ROUNDED?` of a backup whose manifest
/// records integers beyond 2^53 (59ab8ac). A backup written before that,
/// remote or (before c05b2be) local, records none, so the plan of a backup
/// that did round an id said nothing, and README's "a local backup keeps
/// them exactly" was false for it. Its verification, which reads every
/// value, now says so and records them.
#[test]
fn an_old_backup_that_rounded_an_integer_beyond_2_53_says_so_once_verified() {
    let sb = Sandbox::new();
    sb.apply_migrations();
    std::fs::create_dir_all(sb.backups()).unwrap();
    std::fs::write(sb.backups().join(OLD_WIDE_BACKUP), OLD_WIDE_BACKUP_SQL).unwrap();
    std::fs::write(
        sb.backups()
            .join("backup-local-20261202-2147.manifest.json"),
        OLD_WIDE_BACKUP_MANIFEST,
    )
    .unwrap();
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(sb.backups(), std::fs::Permissions::from_mode(0o700)).unwrap();
    }
    assert_eq!(
        sha256_hex(OLD_WIDE_BACKUP_SQL.as_bytes()),
        "33820586e72d87a5039bb573aa0264e6a46846b358fe622a96288ae2ef848572",
        "the fixture is the file 1a228d7 wrote"
    );
    let verify = sb.xtask(&["verify", OLD_WIDE_BACKUP]);
    verify.assert_ok();
    assert!(
        verify.all().contains("2^53") && verify.all().contains("accounts (1)"),
        "verify of a backup holding a rounded id does not say so:\n{}",
        verify.all()
    );
    let plan = sb.xtask(&[
        "restore",
        OLD_WIDE_BACKUP,
        "--to",
        "local",
        "--replace",
        "--dry-run",
    ]);
    plan.assert_ok();
    assert!(
        plan.stdout.contains("ROUNDED?"),
        "the restore plan of a backup holding a rounded id does not say so:\n{}",
        plan.all()
    );
    assert!(
        !verify.all().contains("9007199254740992") && !plan.all().contains("9007199254740992"),
        "a row value is printed"
    );
}

/// The same old backup, never verified by this version: its manifest
/// records no integers beyond 2^53, so the restore plan said nothing of
/// the rounded id, though the restore reads every statement of the dump
/// before its plan. It says `ROUNDED?` from that read, as after a verify,
/// and records nothing in the manifest (a dry run writes nothing).
#[test]
fn an_old_backup_that_rounded_an_integer_beyond_2_53_says_so_in_the_restore_plan_unverified() {
    let sb = Sandbox::new();
    sb.apply_migrations();
    std::fs::create_dir_all(sb.backups()).unwrap();
    std::fs::write(sb.backups().join(OLD_WIDE_BACKUP), OLD_WIDE_BACKUP_SQL).unwrap();
    let manifest = sb
        .backups()
        .join("backup-local-20261202-2147.manifest.json");
    std::fs::write(&manifest, OLD_WIDE_BACKUP_MANIFEST).unwrap();
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(sb.backups(), std::fs::Permissions::from_mode(0o700)).unwrap();
    }
    let plan = sb.xtask(&[
        "restore",
        OLD_WIDE_BACKUP,
        "--to",
        "local",
        "--replace",
        "--dry-run",
        "--json",
    ]);
    plan.assert_ok();
    assert!(
        plan.stderr.contains("ROUNDED?") && plan.stderr.contains("accounts (1)"),
        "the restore plan of an unverified old backup holding a rounded id does not say so:\n{}",
        plan.all()
    );
    let doc: serde_json::Value = serde_json::from_str(&plan.stdout).unwrap();
    assert_eq!(
        doc["plan"]["wide_integers"]["accounts"], 1,
        "{}",
        plan.stdout
    );
    assert!(
        !plan.all().contains("9007199254740992"),
        "a row value is printed"
    );
    assert_eq!(
        std::fs::read_to_string(&manifest).unwrap(),
        OLD_WIDE_BACKUP_MANIFEST,
        "a dry run changed the manifest"
    );
}

/// `backup local --table accounts --table encryption_keys`, as 5e4ee68
/// wrote it (before 424035d recorded a backup of chosen tables' AUTOINCREMENT
/// counters): account 3 had been deleted, so the source's counter stood at
/// 3, above the highest id the file holds.
const OLD_UNCOUNTED_BACKUP: &str = "backup-local-20261202-2147-2.sql";
const OLD_UNCOUNTED_BACKUP_SQL: &str = r#"PRAGMA defer_foreign_keys=TRUE;
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
INSERT INTO "accounts" ("id","email","display_name","password_hash","role","created_at","updated_at","disabled_at","mfa_secret_ciphertext","mfa_key_id") VALUES(1,'a@x.com','A','h','member','2026-12-02T21:47:04.525Z','2026-12-02T21:47:04.525Z',NULL,NULL,NULL);
INSERT INTO "accounts" ("id","email","display_name","password_hash","role","created_at","updated_at","disabled_at","mfa_secret_ciphertext","mfa_key_id") VALUES(2,'b@x.com','B','h','member','2026-12-02T21:47:04.525Z','2026-12-02T21:47:04.525Z',NULL,NULL,NULL);
CREATE TABLE encryption_keys (
    key_id       TEXT PRIMARY KEY,                  -- e.g. 'dek-2026-01'
    fingerprint  TEXT NOT NULL UNIQUE CHECK (fingerprint LIKE 'sha256:%'),
    algorithm    TEXT NOT NULL DEFAULT 'AES-256-GCM',
    activated_at TEXT NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%fZ', 'now')),
    retired_at   TEXT
);
CREATE UNIQUE INDEX encryption_keys_one_in_force
    ON encryption_keys ((retired_at IS NULL)) WHERE retired_at IS NULL;"#;
const OLD_UNCOUNTED_BACKUP_MANIFEST: &str = r#"{
  "format_version": 1,
  "tool": {
    "name": "qbtime-xtask",
    "version": "0.1.0"
  },
  "created_at": "2026-12-02T21:47:04.701698325Z",
  "environment": "local",
  "database": {
    "name": "qbtime_db_local",
    "uuid": "00000000-0000-4000-8000-000000000000",
    "wrangler_env": null,
    "location": "local"
  },
  "mode": "full",
  "tables": [
    "accounts",
    "encryption_keys"
  ],
  "file": {
    "name": "backup-local-20261202-2147-2.sql",
    "bytes": 1675,
    "sha256": "749db23add6e2e40117afd4d27f37b6dcc202d294e8f356f7b12e77c34d12a3a"
  },
  "rows": {
    "accounts": 2,
    "encryption_keys": 0
  },
  "statements": 6,
  "migrations": [],
  "migration_sha256": {},
  "encryption_key": null,
  "wrangler_version": "4.164.0",
  "git_commit": "2bbe00114e88d83c8d08cc46b00729b1f7892205",
  "time_travel_bookmark": null,
  "virtual_tables": null,
  "reason": null,
  "verification": {
    "verified_at": "2026-12-02T21:47:04.728380423Z",
    "outcome": "good",
    "failed": [],
    "seconds": 0.0,
    "tool_version": "0.1.0"
  },
  "content": {
    "accounts": "698508af578b07cdb2184426beb1b29c3cc25fcb24000b6dc6c815dee72e5e01",
    "encryption_keys": "d2622fd43143ddf975d06d9c0277a3b4dcf3c70feaabd1f2a4cb7bec770cec7a"
  }
}
"#;

/// atkBW: a restore of chosen tables sets their AUTOINCREMENT counters
/// from the manifest (424035d), and its plan lists them. A backup from
/// before that records none: the counter comes back from the rows (2
/// here, where the source had given 3), so a deleted account's id is given
/// again to the next one, and what still names it (its audit rows) then
/// names someone else. The plan said nothing; it says the counters are not
/// recorded and what that means.
#[test]
fn an_old_backup_of_chosen_tables_without_counters_says_deleted_ids_may_be_given_again() {
    let sb = Sandbox::new();
    sb.apply_migrations();
    std::fs::create_dir_all(sb.backups()).unwrap();
    std::fs::write(
        sb.backups().join(OLD_UNCOUNTED_BACKUP),
        OLD_UNCOUNTED_BACKUP_SQL,
    )
    .unwrap();
    std::fs::write(
        sb.backups()
            .join("backup-local-20261202-2147-2.manifest.json"),
        OLD_UNCOUNTED_BACKUP_MANIFEST,
    )
    .unwrap();
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(sb.backups(), std::fs::Permissions::from_mode(0o700)).unwrap();
    }
    assert_eq!(
        sha256_hex(OLD_UNCOUNTED_BACKUP_SQL.as_bytes()),
        "749db23add6e2e40117afd4d27f37b6dcc202d294e8f356f7b12e77c34d12a3a",
        "the fixture is the file 5e4ee68 wrote"
    );
    let plan = sb.xtask(&[
        "restore",
        OLD_UNCOUNTED_BACKUP,
        "--to",
        "local",
        "--replace",
        "--partial",
        "--dry-run",
    ]);
    plan.assert_ok();
    let counters = plan
        .stdout
        .lines()
        .find(|l| l.trim_start().starts_with("counters"));
    assert!(
        counters.is_some_and(|l| l.contains("given again")),
        "the plan of a backup of chosen tables that records no counters does not say \
         deleted ids may be given again:\n{}",
        plan.all()
    );
}

/// The other side of the warning above: a backup this version takes of a
/// table holding exactly 2^53 (a value JavaScript writes unchanged, so the
/// native export records it in no `exact_values`) was taken for an earlier
/// version's by a later `verify`, which warned that its export rounded it
/// and recorded it, so every restore plan said `ROUNDED?` of a backup that
/// holds the database's value exactly.
#[test]
fn a_backup_this_version_takes_of_2_53_is_never_taken_for_an_earlier_ones() {
    let sb = Sandbox::new();
    sb.apply_migrations();
    sb.execute_sql("INSERT INTO companies(id, name) VALUES(9007199254740992, 'Acme');");
    sb.xtask(&["backup", "local"]).assert_ok();
    let name = sb
        .backup_files()
        .into_iter()
        .find(|f| f.ends_with(".sql"))
        .unwrap();
    let verify = sb.xtask(&["verify", &name]);
    verify.assert_ok();
    assert!(
        !verify.all().contains("earlier version"),
        "a backup this version took is called an earlier version's:\n{}",
        verify.all()
    );
    let plan = sb.xtask(&["restore", &name, "--to", "local", "--replace", "--dry-run"]);
    plan.assert_ok();
    assert!(
        !plan.stdout.contains("ROUNDED?"),
        "the plan says a backup read from the SQLite file may be rounded:\n{}",
        plan.all()
    );
}

/// IQ: a reviewer held that `--clean`'s refusal of rows into FTS5 shadow
/// tables (IG) never refuses a backup whose manifest records no virtual
/// tables: `"virtual_tables": null`, as 66107b4 wrote a manifest of chosen
/// tables (above), or the field absent. Such a data-only backup of FTS5
/// shadow tables, with a manifest that describes it, restored `--clean`
/// into migrations that make the FTS5 tables, is refused before anything
/// runs, as without a manifest: the refusal reads the dump's rows and the
/// migrations' FTS5 tables, not the manifest.
#[test]
fn a_clean_restore_into_fts5_shadow_tables_is_refused_whatever_the_manifest_records() {
    use crate::restore_local::{fts_settings_sandbox, fts_target, shadow_tables_export};
    let source = fts_settings_sandbox();
    let text: String = { std::fs::read_to_string(shadow_tables_export(&source)).unwrap() }
        .lines()
        .filter(|l| !l.starts_with("CREATE"))
        .map(|l| format!("{l}\n"))
        .collect();
    let name = "backup-local-20261202-0414-5.sql";
    let manifest = OLD_TABLE_BACKUP_MANIFEST
        .replace(OLD_TABLE_BACKUP, name)
        .replace("\"full\"", "\"data-only\"")
        .replace("1215", &text.len().to_string())
        .replace(
            "cef69872af98a58d5c8ce727f699b7a9af6e516649c2fcc6fcd767bdadbc1983",
            &sha256_hex(text.as_bytes()),
        )
        .replace("\"statements\": 4", "\"statements\": 9");
    let mut manifest: serde_json::Value = serde_json::from_str(&manifest).unwrap();
    for field in ["verification", "content", "sequences"] {
        manifest.as_object_mut().unwrap().remove(field);
    }
    let tables = [
        "docs",
        "docs_fts_config",
        "notes_fts_content",
        "notes_fts_config",
    ];
    manifest["tables"] = serde_json::json!(tables);
    manifest["rows"] = serde_json::json!(dict(&tables, &[2, 3, 1, 2]));
    for absent in [false, true] {
        if absent {
            manifest.as_object_mut().unwrap().remove("virtual_tables");
        }
        let target = fts_target();
        std::fs::create_dir_all(target.backups()).unwrap();
        std::fs::write(target.backups().join(name), &text).unwrap();
        std::fs::write(
            target
                .backups()
                .join(name.replace(".sql", ".manifest.json")),
            serde_json::to_string_pretty(&manifest).unwrap(),
        )
        .unwrap();
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let private = std::fs::Permissions::from_mode(0o700);
            std::fs::set_permissions(target.backups(), private).unwrap();
        }
        let clean = ["--to", "local", "--clean", "--partial", "--yes"];
        let run = target.xtask(&[&["restore", name][..], &clean].concat());
        assert_eq!(run.code, Some(2), "{}", run.all());
        assert!(run.stderr.contains("FTS5 table notes_fts"), "{}", run.all());
        assert!(run.stderr.contains("Nothing was done"), "{}", run.all());
        let docs = target.query("SELECT name FROM sqlite_master WHERE name = 'docs'");
        assert!(docs[0].is_empty(), "the migrations did not run");
    }
}

/// `{tables[i]: rows[i]}`.
fn dict(tables: &[&str], rows: &[u64]) -> serde_json::Map<String, serde_json::Value> {
    { tables.iter().zip(rows) }
        .map(|(t, n)| (t.to_string(), (*n).into()))
        .collect()
}

/// `backup local --data-only`, as e0f800bd wrote it (wrangler 4.86, whose
/// INSERTs name no columns), taken with the migrations of this checkout
/// (0001-0004, unchanged since) and verified good by that version.
const OLD_DATA_ONLY: &str = "backup-local-20261207-1515-2";

fn with_old_data_only_backup(sb: &Sandbox) -> String {
    let fixtures = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures");
    std::fs::create_dir_all(sb.backups()).unwrap();
    for ext in ["sql", "manifest.json"] {
        std::fs::copy(
            fixtures.join(format!("e0f800bd-data-only.{ext}")),
            sb.backups().join(format!("{OLD_DATA_ONLY}.{ext}")),
        )
        .unwrap();
    }
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(sb.backups(), std::fs::Permissions::from_mode(0o700)).unwrap();
    }
    format!("{OLD_DATA_ONLY}.sql")
}

/// rvCF 1: an old data-only backup (unnamed INSERTs, no CREATE TABLE) was
/// called BAD by verify ("name no columns … Export the database again",
/// every table "found 0", a warning of missing triggers), listed bad, and
/// refused by `restore --clean` and `diff`, though its manifest records
/// the migrations it was taken under and they are here unchanged: their
/// schema tells the order of its columns. Verified GOOD, restored with each
/// value in its own column, and diffed the same as the database it made.
#[test]
fn an_old_data_only_backup_of_these_migrations_verifies_and_restores_each_value_in_its_column() {
    let sb = Sandbox::new();
    let file = with_old_data_only_backup(&sb);
    let verify = sb.xtask(&["verify", &file]);
    assert!(verify.ok, "{}", verify.all());
    assert!(verify.stdout.contains("GOOD"), "{}", verify.all());
    assert!(
        !verify.all().contains("name no columns") && !verify.all().contains("lacks triggers"),
        "{}",
        verify.all()
    );
    let list = sb.xtask(&["list"]);
    assert!(!list.all().contains("BAD"), "{}", list.all());

    let restore = sb.xtask(&["restore", &file, "--to", "local", "--clean", "--yes"]);
    restore.assert_ok();
    let rows = sb.query("SELECT email, role FROM accounts WHERE id = 2");
    assert_eq!(rows[0][0]["email"], "ops@example.com", "{rows:?}");
    assert_eq!(rows[0][0]["role"], "devops", "{rows:?}");
    let rows = sb.query("SELECT qbt_company_id, timezone FROM companies WHERE id = 1");
    assert_eq!(rows[0][0]["qbt_company_id"], "qbt-1001", "{rows:?}");
    assert_eq!(rows[0][0]["timezone"], "America/Denver", "{rows:?}");

    let diff = sb.xtask(&["diff", &file, "live:local"]);
    assert_eq!(diff.code, Some(0), "{}", diff.all());
}

/// rvCF 1: where nothing tells the order of an old data-only backup's
/// columns (its manifest gone, or a migration it records edited since),
/// it is still refused, but the fix names what works for a backup of a
/// past point in time: its manifest and the migrations it was taken
/// under (the commit its manifest names), not only "export again".
#[test]
fn an_old_data_only_backup_whose_migrations_changed_is_refused_naming_the_commit_to_restore_it_with()
 {
    let sb = Sandbox::new();
    let file = with_old_data_only_backup(&sb);
    edit_manifest(&sb, &file, |m| {
        m["migration_sha256"] = serde_json::json!({
            "0001_accounts_companies_customers.sql": "0".repeat(64),
        });
    });
    let verify = sb.xtask(&["verify", &file]);
    assert!(!verify.ok, "{}", verify.all());
    assert!(
        verify.all().contains("name no columns")
            && verify
                .all()
                .contains("e0f800bd5aea12f3844c0baa2e81e042fc984444"),
        "the refusal names the commit the manifest names\n{}",
        verify.all()
    );
    let bare = sb.path().join("old-data-only.sql");
    std::fs::copy(sb.backups().join(&file), &bare).unwrap();
    let verify = sb.xtask(&["verify", bare.to_str().unwrap(), "--no-manifest"]);
    let said = verify.all();
    assert!(!verify.ok, "{said}");
    let fixes = ["its manifest", "4.94"].map(|fix| said.contains(fix));
    assert_eq!(
        (said.contains("name no columns"), fixes),
        (true, [true; 2]),
        "the refusal names the manifest, and a new export for a live database\n{said}"
    );
}
