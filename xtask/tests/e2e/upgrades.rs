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
