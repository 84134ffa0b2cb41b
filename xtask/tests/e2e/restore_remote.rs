//! `restore` and `migrate` against remote environments, end to end: the
//! real wrangler's `--remote` code path (the D1 import API, `/query` for
//! migrations) against the loopback D1 API on 127.0.0.1.

use crate::common;

use common::remote::*;
use common::*;

fn import_requests(remote: &Remote) -> usize {
    remote
        .server
        .requests()
        .iter()
        .filter(|r| r.contains("/import"))
        .count()
}

#[test]
fn a_prod_backup_restores_into_staging_through_the_import_api() {
    let remote = Remote::new("");
    let home = tempfile::tempdir().unwrap();
    let file = remote.sb.backups().join(remote.backup_prod(home.path()));

    let before = remote.server.requests().len();
    let run = remote.xtask(
        home.path(),
        &[
            "restore",
            file.to_str().unwrap(),
            "--to",
            "staging",
            "--yes",
        ],
    );
    run.assert_ok();
    // Staging's schema is read for the plan and again under the lock, where
    // the safety backup takes it as read rather than starting wrangler for
    // it a third time; the restored rows are counted in the export that
    // checks their content, not by a query of their own.
    let queries = remote.server.requests()[before..]
        .iter()
        .filter(|r| r.contains("/query"))
        .count();
    assert_eq!(queries, 2, "{:?}", remote.server.requests());
    assert!(
        remote.server.unhandled().is_empty(),
        "{:?}",
        remote.server.unhandled()
    );
    assert!(
        import_requests(&remote) > 0,
        "the load went through D1's import API"
    );
    assert!(
        run.stdout
            .contains("Taking a safety backup of qbtime_db_staging"),
        "{}",
        run.stdout
    );
    assert!(run.stdout.contains("[x] row counts"), "{}", run.stdout);
    // Staging now holds exactly what prod holds.
    assert_eq!(counts(&remote.staging), counts(&remote.db));
    assert!(
        remote
            .sb
            .backup_files()
            .iter()
            .any(|f| f.starts_with("backup-staging-")),
        "a safety backup of staging was kept: {:?}",
        remote.sb.backup_files()
    );
}

/// A local backup holds values D1's own export writes otherwise (an
/// integer beyond 2^53) exactly; restored into a remote database, they
/// arrive exactly, and the check after the restore, which can only read
/// the target back through D1's export, says which table's content it did
/// not compare instead of calling the restore failed.
#[test]
fn a_local_backup_with_exact_values_restores_remotely_and_says_what_was_not_compared() {
    let remote = Remote::new("");
    let home = tempfile::tempdir().unwrap();
    let sb = &remote.sb;
    sb.apply_migrations();
    sb.execute_sql(
        "CREATE TABLE ledger (id INTEGER PRIMARY KEY, big INTEGER);\n\
         INSERT INTO ledger VALUES (1, 9007199254740993);\n",
    );
    sb.xtask(&["backup", "local"]).assert_ok();
    let file = sb.backups().join(only_backup(sb));
    let run = remote.xtask(
        home.path(),
        &[
            "restore",
            file.to_str().unwrap(),
            "--to",
            "staging",
            "--yes",
        ],
    );
    run.assert_ok();
    assert!(
        run.all()
            .contains("content of ledger (1 value) not compared"),
        "{}",
        run.all()
    );
    let big: String = rusqlite::Connection::open(&remote.staging)
        .unwrap()
        .query_row("SELECT CAST(big AS TEXT) FROM ledger", [], |r| r.get(0))
        .unwrap();
    assert_eq!(big, "9007199254740993");
}

#[test]
fn prod_needs_its_name_and_a_failed_import_leaves_prod_unchanged() {
    let remote = Remote::new("");
    let home = tempfile::tempdir().unwrap();
    let file = remote.sb.backups().join(remote.backup_prod(home.path()));
    let path = file.to_str().unwrap();
    let before = dump_of(&remote.db);

    // --yes is never enough for production, and nothing reaches D1.
    let run = remote.xtask(
        home.path(),
        &["restore", path, "--to", "prod", "--replace", "--yes"],
    );
    run.assert_refused("--confirm qbtime_db_prod");
    assert_eq!(import_requests(&remote), 0);
    assert_eq!(dump_of(&remote.db), before);

    // An import that fails part-way leaves prod as it was, and the safety
    // backup taken before it is intact and named.
    remote.server.set_faults(d1_loopback::Faults {
        ingest_fail_after: Some(20),
        ..Default::default()
    });
    let run = remote.xtask(
        home.path(),
        &[
            "restore",
            path,
            "--to",
            "prod",
            "--replace",
            "--confirm",
            "qbtime_db_prod",
        ],
    );
    run.assert_refused("the safety backup taken before it is");
    assert_eq!(
        dump_of(&remote.db),
        before,
        "prod changed after a failed import"
    );
    assert_safety_backup_named(&remote, &run);

    // With the fault gone, the same restore replaces prod with the backup.
    remote.server.set_faults(d1_loopback::Faults::default());
    remote
        .xtask(
            home.path(),
            &[
                "restore",
                path,
                "--to",
                "prod",
                "--replace",
                "--confirm",
                "qbtime_db_prod",
            ],
        )
        .assert_ok();
    let original = manifest_for(&remote.sb, file.file_name().unwrap().to_str().unwrap());
    let want: std::collections::BTreeMap<String, u64> =
        serde_json::from_value(original["rows"].clone()).unwrap();
    assert_eq!(counts(&remote.db), want);
    assert!(
        remote.server.unhandled().is_empty(),
        "{:?}",
        remote.server.unhandled()
    );
}

#[test]
fn a_staging_backup_is_refused_for_prod_before_anything_runs() {
    let remote = Remote::new("");
    let home = tempfile::tempdir().unwrap();
    // Give staging some rows and back it up.
    remote
        .xtask(
            home.path(),
            &["restore", "latest:prod", "--to", "staging", "--yes"],
        )
        .assert_refused("no full backup of prod");
    remote.xtask(home.path(), &["backup", "prod"]).assert_ok();
    remote
        .xtask(
            home.path(),
            &["restore", "latest:prod", "--to", "staging", "--yes"],
        )
        .assert_ok();
    remote
        .xtask(home.path(), &["backup", "staging"])
        .assert_ok();
    let requests = remote.server.requests().len();
    let run = remote.xtask(
        home.path(),
        &[
            "restore",
            "latest:staging",
            "--to",
            "prod",
            "--replace",
            "--confirm",
            "qbtime_db_prod",
        ],
    );
    run.assert_refused("only backups taken from production");
    assert_eq!(
        remote.server.requests().len(),
        requests,
        "no request reached D1"
    );
}

#[test]
fn migrate_prod_backs_up_first_then_applies_through_wrangler() {
    let remote = Remote::with_migrations("", 3);
    let home = tempfile::tempdir().unwrap();

    let run = remote.xtask(home.path(), &["migrate", "prod", "--dry-run"]);
    run.assert_ok();
    assert!(run.stdout.contains("0004_audit_log.sql"), "{}", run.stdout);
    assert!(
        run.stdout
            .contains("wrangler d1 migrations apply qbtime_db_prod")
    );
    assert!(!remote.sb.backups().exists(), "a dry run takes no backup");

    let run = remote.xtask(home.path(), &["migrate", "prod", "--yes"]);
    run.assert_refused("--confirm qbtime_db_prod");
    assert!(!remote.sb.backups().exists());

    let run = remote.xtask(
        home.path(),
        &["migrate", "prod", "--confirm", "qbtime_db_prod"],
    );
    run.assert_ok();
    let backup = only_backup(&remote.sb);
    let m = manifest_for(&remote.sb, &backup);
    assert_eq!(m["reason"], "pre-migration: 0004_audit_log.sql");
    assert_eq!(
        m["migrations"].as_array().unwrap().len(),
        3,
        "taken before the migration"
    );
    assert_eq!(counts(&remote.db)["d1_migrations"], 4);
    assert!(counts(&remote.db).contains_key("audit_log"));
    assert!(
        remote.server.unhandled().is_empty(),
        "{:?}",
        remote.server.unhandled()
    );

    let run = remote.xtask(
        home.path(),
        &["migrate", "prod", "--confirm", "qbtime_db_prod"],
    );
    run.assert_ok();
    assert!(run.stdout.contains("up to date"), "{}", run.stdout);
}

#[test]
fn a_database_without_d1_migrations_has_every_migration_pending_after_one_query() {
    // Staging on the loopback is a new, empty database: no d1_migrations.
    let remote = Remote::new("");
    let home = tempfile::tempdir().unwrap();
    let run = remote.xtask(home.path(), &["migrate", "staging", "--dry-run"]);
    run.assert_ok();
    for file in [
        "0001_accounts_companies_customers.sql",
        "0004_audit_log.sql",
    ] {
        assert!(run.stdout.contains(file), "{file} pending: {}", run.stdout);
    }
    assert!(!run.stdout.contains("up to date"), "{}", run.stdout);
    let queries: Vec<String> = remote
        .server
        .requests()
        .into_iter()
        .filter(|r| r.contains("/query"))
        .collect();
    assert_eq!(
        queries.len(),
        1,
        "one read of the applied migrations: {queries:?}"
    );

    // Prod has d1_migrations: its rows are read at once, without asking
    // first whether the table exists.
    let before = remote.server.requests().len();
    let run = remote.xtask(home.path(), &["migrate", "prod", "--dry-run"]);
    run.assert_ok();
    assert!(run.stdout.contains("up to date"), "{}", run.stdout);
    let queries: Vec<String> = remote.server.requests()[before..]
        .iter()
        .filter(|r| r.contains("/query"))
        .cloned()
        .collect();
    assert_eq!(
        queries.len(),
        1,
        "one read of the applied migrations: {queries:?}"
    );
    assert!(!remote.sb.backups().exists(), "a dry run takes no backup");
}

#[test]
fn a_failed_migration_names_the_backup_to_restore_and_a_failed_backup_blocks_it() {
    let remote = Remote::new("");
    let home = tempfile::tempdir().unwrap();
    std::fs::write(
        remote.sb.path().join("migrations/0005_broken.sql"),
        "ALTER TABLE no_such_table ADD COLUMN x TEXT;",
    )
    .unwrap();

    // The backup cannot be taken: nothing is applied.
    remote.server.set_faults(d1_loopback::Faults {
        export_api_error: Some("export unavailable".into()),
        ..Default::default()
    });
    let run = remote.xtask(
        home.path(),
        &["migrate", "prod", "--confirm", "qbtime_db_prod"],
    );
    run.assert_refused("so no migration was applied");
    assert_eq!(counts(&remote.db)["d1_migrations"], 4);

    // The backup works and the migration fails: the way back is printed.
    remote.server.set_faults(d1_loopback::Faults::default());
    let run = remote.xtask(
        home.path(),
        &["migrate", "prod", "--confirm", "qbtime_db_prod"],
    );
    run.assert_refused("applying migrations to qbtime_db_prod failed");
    let backup = only_backup(&remote.sb);
    assert!(
        run.stderr.contains(&format!(
            "cargo xtask restore {} --to prod --replace --confirm qbtime_db_prod",
            remote.sb.backups().join(&backup).display()
        )),
        "{}",
        run.stderr
    );
    assert_eq!(counts(&remote.db)["d1_migrations"], 4);
}

#[test]
fn a_failed_safety_backup_stops_the_restore_before_anything_is_loaded() {
    let remote = Remote::new("");
    let home = tempfile::tempdir().unwrap();
    let file = remote.sb.backups().join(remote.backup_prod(home.path()));
    let before = dump_of(&remote.db);
    remote.server.set_faults(d1_loopback::Faults {
        export_api_error: Some("export unavailable".into()),
        ..Default::default()
    });
    let run = remote.xtask(
        home.path(),
        &[
            "restore",
            file.to_str().unwrap(),
            "--to",
            "prod",
            "--replace",
            "--confirm",
            "qbtime_db_prod",
        ],
    );
    run.assert_refused("the safety backup of qbtime_db_prod failed, so the restore did not start");
    assert_eq!(
        import_requests(&remote),
        0,
        "nothing was sent to D1's import API"
    );
    assert_eq!(dump_of(&remote.db), before);
}

/// Interrupted once the load is in (during the export that checks it), a
/// restore does not say "the next run starts clean": the target was
/// replaced, and it says so, naming the safety backup (atkL).
#[test]
fn an_interrupt_after_the_load_says_the_target_was_changed() {
    let remote = Remote::new("");
    let home = tempfile::tempdir().unwrap();
    let file = remote.sb.backups().join(remote.backup_prod(home.path()));
    let run = interrupt_once_printed(
        remote.xtask_command(
            home.path(),
            &[
                "restore",
                file.to_str().unwrap(),
                "--to",
                "staging",
                "--replace",
                "--yes",
            ],
        ),
        "again to compare its content",
    );
    let stderr = &run.stderr;
    assert_eq!(run.code, Some(130), "{}", run.all());
    assert!(
        stderr.contains("interrupted by SIGINT")
            && stderr.contains("; qbtime_db_staging was restored from backup-prod-")
            && stderr.contains("; its check did not finish"),
        "{stderr}"
    );
    assert!(
        stderr.contains("the safety backup taken before it is"),
        "{stderr}"
    );
    assert!(!stderr.contains("starts clean"), "{stderr}");
    // It did run: staging holds prod's rows.
    assert_eq!(counts(&remote.staging), counts(&remote.db));
}
