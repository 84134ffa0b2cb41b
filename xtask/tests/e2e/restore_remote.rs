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

/// The plan's `since` line of a replace, if any.
fn since_line(run: &Run) -> Option<String> {
    run.stdout
        .lines()
        .find(|l| l.trim_start().starts_with("since "))
        .map(str::to_owned)
}

#[test]
fn a_replace_plan_says_the_downtime_and_offers_time_travel_for_a_backup_of_the_target_only() {
    let remote = Remote::new("");
    let home = tempfile::tempdir().unwrap();
    let file = remote.sb.backups().join(remote.backup_prod(home.path()));
    let file = file.to_str().unwrap();
    // Prod's own backup: what prod took after it leaves, and Time Travel
    // keeps the freshest state.
    let run = remote.xtask(
        home.path(),
        &[
            "restore",
            file,
            "--to",
            "prod",
            "--replace",
            "--dry-run",
            "--confirm",
            "qbtime_db_prod",
        ],
    );
    run.assert_ok();
    let since = since_line(&run).unwrap_or_else(|| panic!("no since line:\n{}", run.stdout));
    assert!(
        since.contains("anything written to qbtime_db_prod after")
            && since.contains("`cargo xtask time-travel restore prod --at TIME --dry-run`"),
        "{since}"
    );
    // And what the restore costs the app while it runs.
    assert!(
        run.stdout.contains(
            "downtime     D1 answers no other query on qbtime_db_prod while the safety backup \
             exports it and the import runs, which takes it offline"
        ),
        "{}",
        run.stdout
    );
    // Into staging, prod's backup replaces everything staging holds: no
    // line about staging's writes "after" a backup of another database.
    let run = remote.xtask(
        home.path(),
        &["restore", file, "--to", "staging", "--replace", "--dry-run"],
    );
    run.assert_ok();
    assert_eq!(since_line(&run), None, "{}", run.stdout);
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
    // ME: each says where it went, as the plan's target line does.
    assert!(
        run.stdout
            .contains("Taking a safety backup of qbtime_db_staging (remote D1) first."),
        "{}",
        run.stdout
    );
    assert!(
        run.stdout
            .contains(" into qbtime_db_staging (staging, remote D1)."),
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
    // D1 reported the import failed (its poll answered `status: "error"`):
    // then, and only then, prod is told unchanged.
    assert!(
        run.stderr.contains("D1 reported the import failed")
            && run.stderr.contains("so it is unchanged")
            && !run.stderr.contains("outcome is unknown"),
        "{}",
        run.all()
    );
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
    // rvAH: the refusal names the way, the dry run's too.
    for last in [&["--confirm", "qbtime_db_prod"][..], &["--dry-run"]] {
        let mut args = vec!["restore", "latest:staging", "--to", "prod", "--replace"];
        args.extend(last);
        let run = remote.xtask(home.path(), &args);
        assert_eq!(run.code, Some(3), "{last:?}:\n{}", run.all());
        run.assert_refused("only backups taken from production");
        for way in ["--to new:NAME", "--to staging"] {
            run.assert_refused(way);
        }
        assert_eq!(
            remote.server.requests().len(),
            requests,
            "no request reached D1"
        );
    }
}

/// Prod's backup restored into staging, and staging backed up: the file
/// of that staging backup.
fn a_staging_backup(remote: &Remote, home: &std::path::Path) -> String {
    remote.backup_prod(home);
    remote
        .xtask(
            home,
            &["restore", "latest:prod", "--to", "staging", "--yes"],
        )
        .assert_ok();
    remote.xtask(home, &["backup", "staging"]).assert_ok();
    let m = |f: &String| manifest_for(&remote.sb, f)["environment"] == "staging";
    let file = remote
        .sb
        .backup_files()
        .into_iter()
        .find(|f| f.ends_with(".sql") && m(f));
    file.expect("staging's backup")
}

/// rvAH: `--no-manifest --source-env prod` on a file whose manifest beside
/// it records staging states what the manifest contradicts: refused (exit
/// 3) naming the manifest, both environments and the fix, the dry run too,
/// before any request reaches D1.
#[test]
fn a_no_manifest_restore_into_prod_is_refused_when_the_manifest_beside_it_says_staging() {
    let remote = Remote::new("");
    let home = tempfile::tempdir().unwrap();
    let staging = a_staging_backup(&remote, home.path());
    let file = remote.sb.backups().join(&staging);
    let before = counts(&remote.db);
    let requests = remote.server.requests().len();
    for dry_run in [true, false] {
        let mut args = vec!["restore", file.to_str().unwrap(), "--to", "prod"];
        args.extend(["--no-manifest", "--source-env", "prod", "--replace"]);
        args.extend(["--confirm", "qbtime_db_prod"]);
        if dry_run {
            args.push("--dry-run");
        }
        let run = remote.xtask(home.path(), &args);
        assert_eq!(run.code, Some(3), "dry run {dry_run}:\n{}", run.all());
        let manifest = staging.replace(".sql", ".manifest.json");
        for needle in [manifest.as_str(), "staging", "prod", "drop --no-manifest"] {
            assert!(
                run.stderr.contains(needle),
                "dry run {dry_run}: {needle:?} not in:\n{}",
                run.all()
            );
        }
        assert_eq!(remote.server.requests().len(), requests, "{}", run.all());
        assert_eq!(counts(&remote.db), before, "{}", run.all());
    }
}

/// A copy of prod's backup in a directory of its own, `fix.sql`, with
/// beside it `fix.manifest.json`: prod's manifest edited by `edit`. Such a
/// manifest never passes validation (its file.name is not `fix.sql`).
fn a_copy_with_a_manifest(
    remote: &Remote,
    home: &std::path::Path,
    edit: impl FnOnce(&mut serde_json::Value),
) -> (tempfile::TempDir, std::path::PathBuf) {
    let prod = remote.backup_prod(home);
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("fix.sql");
    std::fs::copy(remote.sb.backups().join(&prod), &file).unwrap();
    let mut m = manifest_for(&remote.sb, &prod);
    edit(&mut m);
    let text = serde_json::to_string_pretty(&m).unwrap();
    std::fs::write(dir.path().join("fix.manifest.json"), text).unwrap();
    (dir, file)
}

/// `restore FILE --to prod --no-manifest --source-env prod --replace`,
/// the dry run or not.
fn no_manifest_into_prod(remote: &Remote, home: &std::path::Path, file: &str, dry: bool) -> Run {
    let mut args = vec!["restore", file, "--to", "prod"];
    args.extend(["--no-manifest", "--source-env", "prod", "--replace"]);
    args.extend(["--confirm", "qbtime_db_prod"]);
    if dry {
        args.push("--dry-run");
    }
    remote.xtask(home, &args)
}

/// rvAI: a staging backup and its manifest copied to fix.sql and
/// fix.manifest.json, restored with `--no-manifest --source-env prod`:
/// that manifest fails validation (its file.name is not fix.sql), but it
/// still records staging, which contradicts what the operator states:
/// refused (exit 3), naming it, the dry run too, before any request
/// reaches D1.
#[test]
fn a_no_manifest_restore_into_prod_is_refused_when_an_untrusted_manifest_beside_it_says_staging() {
    let remote = Remote::new("");
    let home = tempfile::tempdir().unwrap();
    let (_dir, file) = a_copy_with_a_manifest(&remote, home.path(), |m| {
        m["environment"] = "staging".into();
        m["database"]["name"] = "qbtime_db_staging".into();
        m["database"]["uuid"] = STAGING_UUID.into();
    });
    let before = counts(&remote.db);
    let requests = remote.server.requests().len();
    for dry_run in [true, false] {
        let run = no_manifest_into_prod(&remote, home.path(), file.to_str().unwrap(), dry_run);
        assert_eq!(run.code, Some(3), "dry run {dry_run}:\n{}", run.all());
        for needle in [
            "fix.manifest.json",
            "staging",
            "trusted",
            "drop --no-manifest",
        ] {
            assert!(
                run.stderr.contains(needle),
                "dry run {dry_run}: {needle:?} not in:\n{}",
                run.all()
            );
        }
        assert_eq!(remote.server.requests().len(), requests, "{}", run.all());
        assert_eq!(counts(&remote.db), before, "{}", run.all());
    }
}

/// rvAI: a manifest beside the file that records prod's names with
/// another id is refused saying that id and the configured one, quoted
/// alike; one recording staging when prod is configured with no id says
/// so without an empty `id )`.
#[test]
fn a_no_manifest_refusal_over_another_id_names_both_ids() {
    const OTHER_ID: &str = "7e1f0c3a-2b4d-4c5e-8f6a-9b0c1d2e3f4a";
    let remote = Remote::new("");
    let home = tempfile::tempdir().unwrap();
    let prod = remote.backup_prod(home.path());
    edit_manifest(&remote.sb, &prod, |m| {
        m["database"]["uuid"] = OTHER_ID.into()
    });
    let file = remote.sb.backups().join(&prod);
    let run = no_manifest_into_prod(&remote, home.path(), file.to_str().unwrap(), true);
    assert_eq!(run.code, Some(3), "{}", run.all());
    let said = format!(
        "records database id {OTHER_ID}, not {PROD_UUID} (the id the configuration gives prod)"
    );
    assert!(
        run.stderr.contains(&said),
        "{said:?} not in:\n{}",
        run.all()
    );

    let config = remote.sb.path().join("wrangler.toml");
    let text = std::fs::read_to_string(&config).unwrap();
    assert!(text.contains(PROD_UUID));
    let id = format!("database_id = \"{PROD_UUID}\"");
    std::fs::write(&config, text.replace(&id, "database_id = \"\"")).unwrap();
    edit_manifest(&remote.sb, &prod, |m| {
        m["environment"] = "staging".into();
        m["database"]["name"] = "qbtime_db_staging".into();
        m["database"]["uuid"] = STAGING_UUID.into();
    });
    let requests = remote.server.requests().len();
    let run = no_manifest_into_prod(&remote, home.path(), file.to_str().unwrap(), true);
    assert_eq!(run.code, Some(3), "{}", run.all());
    assert!(!run.stderr.contains("id )"), "{}", run.all());
    assert!(run.stderr.contains("staging"), "{}", run.all());
    assert_eq!(remote.server.requests().len(), requests, "{}", run.all());
}

/// rvAI: prod refuses a backup recorded under staging's names with another
/// id (not staging's database) and names the ways: not `--to staging`,
/// which refuses it too, nor a database of another binding, but those of
/// prod's binding that are not production, and `--to new:NAME`.
#[test]
fn a_backup_of_another_database_under_staging_names_is_not_sent_to_staging() {
    const OTHER_ID: &str = "7e1f0c3a-2b4d-4c5e-8f6a-9b0c1d2e3f4a";
    let remote = Remote::new("");
    let home = tempfile::tempdir().unwrap();
    let theirs = prod_copied_as_staging(&remote, home.path(), OTHER_ID);
    // The local environment has a second database, of another binding.
    let config = remote.sb.path().join("wrangler.toml");
    let text = std::fs::read_to_string(&config).unwrap();
    let analytics = "\n[[d1_databases]]\nbinding = \"ANALYTICS\"\ndatabase_name = \
                     \"qbtime_analytics_local\"\ndatabase_id = \
                     \"11111111-2222-4333-8444-555555555555\"\nmigrations_dir = \"migrations\"\n";
    let text = text.replacen("\n[env.", &format!("{analytics}\n[env."), 1);
    std::fs::write(&config, text).unwrap();
    let file = remote.sb.backups().join(&theirs);
    let requests = remote.server.requests().len();
    let args = [
        "restore",
        file.to_str().unwrap(),
        "--to",
        "prod",
        "--replace",
        "--dry-run",
    ];
    let run = remote.xtask(home.path(), &args);
    assert_eq!(run.code, Some(3), "{}", run.all());
    run.assert_refused("only backups taken from production");
    run.assert_refused("--to new:NAME");
    run.assert_refused("--to local");
    for not in ["--to staging", "qbtime_analytics_local"] {
        assert!(!run.stderr.contains(not), "{not:?} in:\n{}", run.all());
    }
    assert_eq!(remote.server.requests().len(), requests, "{}", run.all());
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
    assert!(!remote.sb.backups().exists(), "refused before the lock");
    assert!(!run.stdout.contains("Migration plan"), "{}", run.all());

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

/// The error line of a failed run.
fn error_line(run: &Run) -> String {
    run.stderr
        .lines()
        .find(|l| l.starts_with("error:"))
        .unwrap_or("")
        .to_owned()
}

/// A remote migration whose second statement D1 refuses: wrangler sends
/// the file and its `d1_migrations` INSERT as one `/query`, which D1 runs
/// as a batch (all or nothing), so its first statement left nothing and
/// the file is not recorded. migrate says nothing was applied by this run,
/// remotely as locally.
#[test]
fn a_remote_migration_that_fails_at_its_second_statement_leaves_nothing_and_says_so() {
    let remote = Remote::new("");
    let home = tempfile::tempdir().unwrap();
    std::fs::write(
        remote.sb.path().join("migrations/0005_half.sql"),
        // A key taken twice fails only as it runs: a name the schema lacks
        // (`no such table`) the plan knows, and migrate now refuses first.
        "CREATE TABLE extra (id INTEGER PRIMARY KEY);\nINSERT INTO extra VALUES (1), (1);\n",
    )
    .unwrap();
    let before = counts(&remote.db)["d1_migrations"];
    let run = remote.xtask(
        home.path(),
        &["migrate", "prod", "--confirm", "qbtime_db_prod"],
    );
    assert_eq!(run.code, Some(1), "{}", run.all());
    assert!(
        !counts(&remote.db).contains_key("extra"),
        "the failed file's first statement was kept"
    );
    assert_eq!(counts(&remote.db)["d1_migrations"], before);
    let error = error_line(&run);
    assert!(
        error.contains("nothing was applied by this run")
            && error.contains("0005_half.sql")
            && error.contains("fix it and migrate again"),
        "{}",
        run.all()
    );
}

/// `migrate prod` of 0004_audit_log.sql, whose own `/query` Cloudflare
/// answers with HTTP `status` and API error `code`, `message`, after every
/// read went through: it fails, nothing is applied, and its error line is
/// not the migration's ("fix it and migrate again") but says wrangler's
/// error was not an SQL error from D1. Returns the run.
fn migrate_failing_not_in_its_sql(status: u16, code: u32, message: &str) -> Run {
    let remote = Remote::with_migrations("", 3);
    let home = tempfile::tempdir().unwrap();
    remote.server.set_faults(d1_loopback::Faults {
        query_api_error_with: Some((
            "0004_audit_log.sql".to_owned(),
            status,
            code,
            message.to_owned(),
        )),
        ..Default::default()
    });
    let run = remote.xtask(
        home.path(),
        &["migrate", "prod", "--confirm", "qbtime_db_prod"],
    );
    assert_eq!(run.code, Some(1), "{}", run.all());
    assert_eq!(counts(&remote.db)["d1_migrations"], 3);
    assert!(!counts(&remote.db).contains_key("audit_log"));
    let error = error_line(&run);
    assert!(
        !error.contains("fix it and migrate again"),
        "told to fix a migration D1 never refused:\n{}",
        run.all()
    );
    assert!(
        error.contains("not an SQL error from D1")
            && error.contains("nothing was applied by this run")
            && error.contains("fix what it names and migrate again")
            && !error.contains("needs no change"),
        "{}",
        run.all()
    );
    run
}

/// Cloudflare refuses the token for the migration's own `/query`: migrate
/// said "fix it and migrate again", sending the operator to a migration
/// that is fine. It says wrangler's error was not an SQL error from D1,
/// names the refused token, and says to fix that and migrate again, the
/// migration unchanged. A refusal of the request ran nothing: no word
/// that D1 may still apply it.
#[test]
fn a_remote_migrate_refused_for_its_token_is_not_told_to_fix_the_migration() {
    let run = migrate_failing_not_in_its_sql(403, 10000, "Authentication error");
    assert!(
        run.stderr.contains("Cloudflare refused the API token"),
        "{}",
        run.all()
    );
    assert!(!run.stderr.contains("may still apply"), "{}", run.all());
}

/// D1 overloaded (a 503 with D1's code 7500 but no SQL error) while the
/// migration's `/query` is sent: not the migration's fault either. An
/// error that is no refusal of the request (an internal error, a lost
/// answer) may come of a request D1 carried out or still will (rvAD):
/// "nothing was applied" is what d1_migrations shows as read now, and the
/// run says to look again before migrating again.
#[test]
fn a_remote_migrate_failing_for_an_overloaded_d1_is_not_told_to_fix_the_migration() {
    let run = migrate_failing_not_in_its_sql(
        503,
        7500,
        "D1 DB is overloaded. Requests queued for too long.",
    );
    let error = error_line(&run);
    assert!(
        error.contains("may still apply") && error.contains("migrate prod --dry-run"),
        "{}",
        run.all()
    );
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
    // One read of the applied migrations, and one of the schema the plan's
    // trial runs every pending migration on (rvBW: a migration of schema
    // statements alone was not tried, and passed the dry run).
    assert_eq!(
        queries.len(),
        2,
        "one read of the applied migrations, one of the schema: {queries:?}"
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
    // 0005 applies and 0006 fails in D1 (a NULL where the column takes
    // none, which the plan's trial, running no rows, cannot know): the
    // way back restores what 0005 changed. A run that applied nothing
    // advises no restore (rvBW).
    let migrations = remote.sb.path().join("migrations");
    std::fs::write(migrations.join("0005_ok.sql"), "CREATE TABLE t5 (x);").unwrap();
    std::fs::write(
        migrations.join("0006_broken.sql"),
        "INSERT INTO companies (name) VALUES (NULL);",
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
    assert_eq!(counts(&remote.db)["d1_migrations"], 5);
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
    let run = restore_into_prod(&remote, home.path(), &file);
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

/// The backups in backups/ that `before` did not list (files ending .sql).
fn new_backups(remote: &Remote, before: &[String]) -> Vec<String> {
    remote
        .sb
        .backup_files()
        .into_iter()
        .filter(|f| f.ends_with(".sql") && !before.contains(f))
        .collect()
}

/// A migration that seeds rows, as real apps' do (plans, default settings).
fn add_seeding_migration(remote: &Remote, home: &std::path::Path, sql: &str) {
    std::fs::write(remote.sb.path().join("migrations/0005_seeded.sql"), sql).unwrap();
    remote
        .xtask(home, &["migrate", "prod", "--confirm", "qbtime_db_prod"])
        .assert_ok();
}

/// A migration that inserts rows of its own (a table of plans, a default
/// setting) is part of the schema every restore's verification and
/// `--clean` rebuild. A data-only backup of such a database carries those
/// rows too; loaded on top of the migration's own, they fail a UNIQUE
/// key, so every data-only backup of the database is called bad, although
/// nothing in it is wrong (atkV).
#[test]
fn a_data_only_backup_of_a_database_whose_migration_seeds_rows_is_good() {
    let remote = Remote::new("");
    let home = tempfile::tempdir().unwrap();
    add_seeding_migration(
        &remote,
        home.path(),
        "CREATE TABLE plans (id INTEGER PRIMARY KEY AUTOINCREMENT, code TEXT NOT NULL UNIQUE, \
         seats INTEGER NOT NULL);\n\
         INSERT INTO plans (code, seats) VALUES ('free', 1), ('team', 10);\n",
    );
    let before = remote.sb.backup_files();
    let run = remote.xtask(home.path(), &["backup", "prod", "--data-only"]);
    let taken = new_backups(&remote, &before);
    assert_eq!(taken.len(), 1, "{}", run.all());
    let m = manifest_for(&remote.sb, &taken[0]);
    assert_eq!(m["verification"]["outcome"], "good", "{}", run.all());
    run.assert_ok();
}

/// The runbook's clean restore of a data-only backup (migrations apply,
/// then the rows) into an empty staging: a migration that seeded a row
/// in a table without a key has it twice afterwards, once from the
/// migration and once from the backup. The restore reports the mismatch
/// only after the load, leaving staging with the doubled rows (atkV).
#[test]
fn a_clean_restore_does_not_double_the_rows_a_migration_seeds() {
    let remote = Remote::new("");
    let home = tempfile::tempdir().unwrap();
    add_seeding_migration(
        &remote,
        home.path(),
        "CREATE TABLE app_settings (key TEXT NOT NULL, value TEXT);\n\
         INSERT INTO app_settings VALUES ('theme', 'dark');\n",
    );
    let before = remote.sb.backup_files();
    remote.xtask(home.path(), &["backup", "prod", "--data-only"]);
    let taken = new_backups(&remote, &before);
    assert_eq!(taken.len(), 1);
    let file = remote.sb.backups().join(&taken[0]);
    let run = remote.xtask(
        home.path(),
        &[
            "restore",
            file.to_str().unwrap(),
            "--to",
            "staging",
            "--clean",
            "--yes",
        ],
    );
    let settings: i64 = rusqlite::Connection::open(&remote.staging)
        .unwrap()
        .query_row("SELECT count(*) FROM app_settings", [], |r| r.get(0))
        .unwrap();
    assert_eq!(settings, 1, "app_settings doubled: {}", run.all());
    run.assert_ok();
    assert_eq!(counts(&remote.staging), counts(&remote.db));
}

/// A backup of chosen tables restored `--replace --partial` drops
/// everything else, d1_migrations and its rows included. Every migration
/// then reads as pending (and `migrate` would run 0001 onto the restored
/// `companies` and fail), but neither the plan nor the end says so, as
/// they do for a schema-only backup; the plan guesses the dropped tables
/// were "taken before the migration that made them", and the checklist
/// points at "the restored encryption_keys table", which was dropped (atkV).
#[test]
fn a_partial_replace_of_chosen_tables_says_every_migration_is_pending_again() {
    let remote = Remote::new("");
    let home = tempfile::tempdir().unwrap();
    let full = remote.sb.backups().join(remote.backup_prod(home.path()));
    remote
        .xtask(
            home.path(),
            &[
                "restore",
                full.to_str().unwrap(),
                "--to",
                "staging",
                "--yes",
            ],
        )
        .assert_ok();
    let before = remote.sb.backup_files();
    remote
        .xtask(home.path(), &["backup", "prod", "--table", "companies"])
        .assert_ok();
    let taken = new_backups(&remote, &before);
    assert_eq!(taken.len(), 1);
    let file = remote.sb.backups().join(&taken[0]);
    let run = remote.xtask(
        home.path(),
        &[
            "restore",
            file.to_str().unwrap(),
            "--to",
            "staging",
            "--replace",
            "--partial",
            "--yes",
        ],
    );
    run.assert_ok();
    // As it did: staging has companies and nothing else, no migration recorded.
    let left: Vec<String> = counts(&remote.staging)
        .into_keys()
        .filter(|t| t != "sqlite_sequence")
        .collect();
    assert_eq!(left, ["companies"]);
    assert!(
        run.stderr.contains("0001_accounts_companies_customers.sql"),
        "no word that every migration is pending again:\n{}",
        run.all()
    );
    assert!(
        !run.stdout.contains("taken before the migration that made"),
        "{}",
        run.stdout
    );
    assert!(
        !run.stdout.contains("the restored encryption_keys table"),
        "{}",
        run.stdout
    );
}

/// A backup its own verification called bad (here: prod's audit chain is
/// broken) is kept, and `latest` skips it; restored by name, its plan does
/// not say that it failed verification, nor why (atkV).
#[test]
fn a_restore_of_a_backup_marked_bad_says_so_in_its_plan() {
    let remote = Remote::new(
        "INSERT INTO audit_log (occurred_at, actor_account_id, company_id, action, prev_hash, hash) \
         VALUES ('2026-11-03T10:00:00.000Z', 1, 1, 'report.run', \
         '1111111111111111111111111111111111111111111111111111111111111111', \
         '2222222222222222222222222222222222222222222222222222222222222222');",
    );
    let home = tempfile::tempdir().unwrap();
    let run = remote.xtask(home.path(), &["backup", "prod"]);
    assert_ne!(run.code, Some(0), "{}", run.all());
    let name = only_backup(&remote.sb);
    assert_eq!(
        manifest_for(&remote.sb, &name)["verification"]["outcome"],
        "bad"
    );
    let file = remote.sb.backups().join(&name);
    let run = remote.xtask(
        home.path(),
        &[
            "restore",
            file.to_str().unwrap(),
            "--to",
            "staging",
            "--dry-run",
        ],
    );
    let plan = run.stdout.to_lowercase();
    assert!(
        plan.contains("bad") || plan.contains("failed verification"),
        "the plan does not say the backup failed its verification:\n{}",
        run.all()
    );
}

/// An AUTOINCREMENT table never gives a deleted row's id to a new row:
/// `sqlite_sequence` remembers the highest id ever used. A whole backup
/// carries it; a backup of chosen tables does not, so once restored
/// (`--replace --partial`) the next notification reuses the ids of
/// notifications deleted before the backup, and anything that still
/// names one (a link in an email, an audit row's target_id) now points at
/// another row (atkV).
#[test]
fn a_backup_of_chosen_tables_keeps_their_autoincrement_counters() {
    let remote = Remote::new(
        "INSERT INTO notifications (id, account_id, kind, title) VALUES (500, 1, 'welcome', 'gone');\n\
         DELETE FROM notifications WHERE id = 500;",
    );
    let home = tempfile::tempdir().unwrap();
    let seq = |db: &std::path::Path| -> i64 {
        rusqlite::Connection::open(db)
            .unwrap()
            .query_row(
                "SELECT seq FROM sqlite_sequence WHERE name = 'notifications'",
                [],
                |r| r.get(0),
            )
            .unwrap()
    };
    assert_eq!(seq(&remote.db), 500);
    remote
        .xtask(
            home.path(),
            &[
                "backup",
                "prod",
                "--table",
                "encryption_keys",
                "--table",
                "accounts",
                "--table",
                "companies",
                "--table",
                "notifications",
            ],
        )
        .assert_ok();
    let file = remote.sb.backups().join(only_backup(&remote.sb));
    remote
        .xtask(
            home.path(),
            &[
                "restore",
                file.to_str().unwrap(),
                "--to",
                "staging",
                "--replace",
                "--partial",
                "--yes",
            ],
        )
        .assert_ok();
    assert_eq!(
        counts(&remote.staging)["notifications"],
        counts(&remote.db)["notifications"]
    );
    assert_eq!(
        seq(&remote.staging),
        500,
        "the next notification would reuse a deleted one's id"
    );
}

/// Migrations numbered without leading zeros (`1_init.sql` … `10_x.sql`),
/// as many projects name them. wrangler applies them by their number
/// (`compareMigrationPaths`: 1, 2, … 9, 10), and d1_migrations records
/// them in that order.
fn number_migrations_without_zeros(sb: &Sandbox) {
    let dir = sb.path().join("migrations");
    for (old, new) in [
        (
            "0001_accounts_companies_customers.sql",
            "1_accounts_companies_customers.sql",
        ),
        (
            "0002_encryption_keys_and_qbt_tokens.sql",
            "2_encryption_keys_and_qbt_tokens.sql",
        ),
        (
            "0003_report_configs_and_notifications.sql",
            "3_report_configs_and_notifications.sql",
        ),
        ("0004_audit_log.sql", "4_audit_log.sql"),
    ] {
        std::fs::rename(dir.join(old), dir.join(new)).unwrap();
    }
    for n in 5..10 {
        std::fs::write(
            dir.join(format!("{n}_t{n}.sql")),
            format!("CREATE TABLE t{n} (x TEXT);\n"),
        )
        .unwrap();
    }
    std::fs::write(
        dir.join("10_nickname.sql"),
        "ALTER TABLE accounts ADD COLUMN nickname TEXT;\n",
    )
    .unwrap();
}

/// The plan of `migrate` lists the pending migrations in the order
/// wrangler will apply them: with unpadded numbers it put `10_…` first,
/// before the migration that creates the table it alters (atkV).
#[test]
fn migrate_plans_unpadded_migrations_in_the_order_wrangler_applies_them() {
    let remote = Remote::new("");
    let home = tempfile::tempdir().unwrap();
    number_migrations_without_zeros(&remote.sb);
    let run = remote.xtask(home.path(), &["migrate", "staging", "--dry-run"]);
    run.assert_ok();
    let at = |name: &str| {
        run.stdout
            .find(name)
            .unwrap_or_else(|| panic!("{name} not in the plan:\n{}", run.stdout))
    };
    assert!(
        at("1_accounts_companies_customers.sql") < at("10_nickname.sql"),
        "the plan lists 10_nickname.sql before 1_accounts_companies_customers.sql:\n{}",
        run.stdout
    );
}

/// With unpadded migration numbers, `restore --clean` compares the
/// migrations the backup recorded (in the order they were applied) with
/// the directory's names sorted as text, calls the same ten migrations "a
/// different schema", and refuses every backup; for a data-only backup,
/// which only `--clean` restores, the advice "restore without --clean" is
/// refused in turn, so the backup cannot be restored at all (atkV).
#[test]
fn a_clean_restore_accepts_the_same_unpadded_migrations_in_wranglers_order() {
    let remote = Remote::new("");
    let home = tempfile::tempdir().unwrap();
    let sb = &remote.sb;
    number_migrations_without_zeros(sb);
    sb.xtask(&[
        "migrate",
        "local",
        "--yes",
        "--no-backup",
        "--reason",
        "a fresh local database",
    ])
    .assert_ok();
    sb.execute_sql(SEED_SQL);
    sb.xtask(&["backup", "local", "--data-only"]).assert_ok();
    let file = sb.backups().join(only_backup(sb));
    let run = remote.xtask(
        home.path(),
        &[
            "restore",
            file.to_str().unwrap(),
            "--to",
            "staging",
            "--clean",
            "--yes",
        ],
    );
    run.assert_ok();
    assert_eq!(counts(&remote.staging)["accounts"], 3);
    assert_eq!(counts(&remote.staging)["d1_migrations"], 10);
}

/// The runbook's path into a brand-new database, after `wrangler d1
/// migrations list` (or apply) has made its empty `d1_migrations`: a
/// data-only backup restored `--clean` is refused as "not empty (tables:
/// d1_migrations)", with the advice "Use --replace", which a data-only
/// backup is refused for in turn (and with `--partial` added, the load
/// fails: it has no tables to go into). The advice must lead somewhere
/// (atkV).
#[test]
fn a_data_only_backup_into_a_database_with_only_an_empty_migrations_table_has_a_way_in() {
    let remote = Remote::new("");
    let home = tempfile::tempdir().unwrap();
    let name = remote.backup_prod_with(home.path(), &["--data-only"]);
    let file = remote.sb.backups().join(name);
    // As `wrangler d1 migrations list --remote` leaves a new database.
    rusqlite::Connection::open(&remote.staging)
        .unwrap()
        .execute_batch(
            "CREATE TABLE d1_migrations(\n\
             \t\tid         INTEGER PRIMARY KEY AUTOINCREMENT,\n\
             \t\tname       TEXT UNIQUE,\n\
             \t\tapplied_at TIMESTAMP DEFAULT CURRENT_TIMESTAMP NOT NULL\n);",
        )
        .unwrap();
    let run = remote.xtask(
        home.path(),
        &[
            "restore",
            file.to_str().unwrap(),
            "--to",
            "staging",
            "--clean",
            "--yes",
        ],
    );
    if run.code == Some(0) {
        let mut want = counts(&remote.db);
        want.remove("sqlite_sequence");
        let mut got = counts(&remote.staging);
        got.remove("sqlite_sequence");
        assert_eq!(got, want);
        return;
    }
    assert!(
        !run.stderr.contains("Use --replace"),
        "advice a data-only backup is refused for:\n{}",
        run.stderr
    );
}

/// wrangler applies the `*.sql` files of migrations_dir that are not
/// hidden (minimatch with `dot: false`) and are files. Emacs keeps a lock
/// on a migration being edited as a dangling symlink `.#0005_x.sql`:
/// wrangler ignores it, but every command that reads migrations/ stopped
/// (exit 2), calling it a migration whose name is not plain (atkV).
#[test]
fn migrate_ignores_an_editors_lock_file_as_wrangler_does() {
    let remote = Remote::new("");
    let home = tempfile::tempdir().unwrap();
    std::os::unix::fs::symlink(
        "op@laptop.12345:1764580000",
        remote.sb.path().join("migrations/.#0005_draft.sql"),
    )
    .unwrap();
    let run = remote.xtask(home.path(), &["migrate", "staging", "--dry-run"]);
    run.assert_ok();
    assert!(
        run.stdout.contains("0004_audit_log.sql") && !run.stdout.contains(".#0005_draft.sql"),
        "{}",
        run.stdout
    );
}

/// D1's import names the statement that failed and quotes its start, the
/// row's values with it. A failed remote restore says which statement and
/// why, never what it held: not by default, and not with -v either. The
/// row loads in SQLite (a dump without a manifest is tried in a scratch
/// database first); D1, here the loopback's fault, fails at it.
#[test]
fn a_failed_remote_load_never_quotes_the_failing_rows_values() {
    let remote = Remote::new("");
    let home = tempfile::tempdir().unwrap();
    let file = remote.sb.backups().join(remote.backup_prod(home.path()));
    let dump = std::fs::read_to_string(&file).unwrap();
    let hand = home.path().join("by-hand.sql");
    std::fs::write(
        &hand,
        format!(
            "{dump}\nINSERT INTO companies (id, name) VALUES (7007, 'SECRET-ROW-VALUE-7 Acme private');\n"
        ),
    )
    .unwrap();
    remote.server.set_faults(d1_loopback::Faults {
        ingest_fail_at_statement_with: Some("SECRET-ROW-VALUE-7".to_owned()),
        ..Default::default()
    });
    for level in [None, Some("-v")] {
        let mut args: Vec<&str> = level.into_iter().collect();
        args.extend([
            "restore",
            hand.to_str().unwrap(),
            "--no-manifest",
            "--to",
            "staging",
            "--replace",
            "--yes",
        ]);
        let run = remote.xtask(home.path(), &args);
        run.assert_refused("the safety backup taken before it is");
        assert!(import_requests(&remote) > 0, "{}", run.all());
        for value in ["SECRET-ROW-VALUE-7", "Acme private"] {
            assert!(
                !run.all().contains(value),
                "{level:?}: a row's value in the output:\n{}",
                run.all()
            );
        }
    }
}

/// A remote restore run with no terminal and without its confirmation
/// (`--yes`, or `--confirm` for prod: a script's or a cron job's mistake)
/// took the backup lock and read the target's plan through wrangler
/// against Cloudflare, and only then refused (exit 3). It is refused first,
/// as migrate and deploy refuse: no request reaches the target's account,
/// no plan is printed, and a run holding the lock does not turn the
/// refusal into "another run holds the lock".
#[test]
fn a_remote_restore_without_its_confirmation_is_refused_before_the_lock_and_wrangler() {
    let remote = Remote::new("");
    let home = tempfile::tempdir().unwrap();
    let file = remote.sb.backups().join(remote.backup_prod(home.path()));
    let file = file.to_str().unwrap();
    let before = remote.server.requests().len();
    // Another run holds the backup lock meanwhile.
    let lock = std::fs::File::create(remote.sb.backups().join(".lock")).unwrap();
    lock.lock().unwrap();
    for (to, fix) in [("staging", "--yes"), ("prod", "--confirm qbtime_db_prod")] {
        let run = remote.xtask(home.path(), &["restore", file, "--to", to, "--replace"]);
        assert_eq!(run.code, Some(3), "{to}:\n{}", run.all());
        run.assert_refused(fix);
        assert!(
            !run.stdout.contains("qbtime_db_"),
            "{to}: a plan:\n{}",
            run.all()
        );
        let requests = remote.server.requests();
        assert_eq!(
            requests.len(),
            before,
            "{to}: wrangler reached the account: {:?}",
            &requests[before..]
        );
    }
}

/// A local backup of a database whose WITHOUT ROWID table, plain table,
/// index and view end in a `--` comment (`backup local` writes each `;` on
/// a line of its own), restored into staging: the restore's check exports
/// staging again through D1's export (only the restored tables, by name),
/// and the row counts and the content are checked and equal. The restore
/// writes each comment D1 would keep at the end of an object's text as a
/// `/* */` one (the plain table's SQLite does not keep), and says so, so
/// that the export writes no `... -- comment;`.
#[test]
fn a_restore_into_staging_of_objects_ending_in_a_line_comment_checks_their_content() {
    let remote = Remote::new("");
    let home = tempfile::tempdir().unwrap();
    let sb = &remote.sb;
    sb.apply_migrations();
    sb.execute_sql_with_wrangler(
        "CREATE TABLE sessions (token TEXT PRIMARY KEY, account_id INTEGER) WITHOUT ROWID \
         -- keyed by token\n;\n\
         CREATE TABLE shifts (id INTEGER PRIMARY KEY, starts TEXT, deleted_at TEXT) -- shifts\n;\n\
         CREATE INDEX shifts_live ON shifts (starts) WHERE deleted_at IS NULL -- live rows only\n;\n\
         CREATE VIEW live_shifts AS\n  SELECT id, starts FROM shifts\n  \
         WHERE deleted_at IS NULL -- soft-deleted rows hidden\n;\n",
    );
    sb.execute_sql(
        "INSERT INTO sessions VALUES ('t1', 1), ('t0', 2);\n\
         INSERT INTO shifts (starts, deleted_at) VALUES ('09:00', NULL), ('10:00', 'x');",
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
    for checked in [
        "[x] row counts: 12 tables, 8 rows",
        "[x] content: 12 tables",
    ] {
        assert!(
            run.stdout.contains(checked),
            "{checked:?} unsaid: {}",
            run.all()
        );
    }
    let closed = |object: &str| {
        format!("writes the `--` comment at the end of {object} as a `/* */` comment")
    };
    for object in ["table sessions", "index shifts_live", "view live_shifts"] {
        assert!(run.stdout.contains(&closed(object)), "{}", run.all());
    }
    assert!(
        !run.stdout.contains(&closed("table shifts")),
        "{}",
        run.all()
    );
    let sql = object_sql(&remote.staging);
    assert!(
        sql["live_shifts"].ends_with("/* soft-deleted rows hidden */"),
        "{sql:?}"
    );
    assert_eq!(counts(&remote.staging)["sessions"], 2);
    assert_eq!(counts(&remote.staging)["shifts"], 2);
}

/// A local D1 whose WITHOUT ROWID table, index and view end in a `--`
/// comment (a `schema.sql` run with `wrangler d1 execute --file`), the
/// view's holding `*/`, with rows, and its `backup local` (which writes
/// each `;` on a line of its own), beside a remote: returns the remote, a
/// home for its runs and the backup's path.
pub(crate) fn remote_with_a_commented_backup() -> (Remote, tempfile::TempDir, String) {
    let remote = Remote::new("");
    let sb = &remote.sb;
    sb.apply_migrations();
    sb.execute_sql_with_wrangler(
        "CREATE TABLE sessions (token TEXT PRIMARY KEY, account_id INTEGER) WITHOUT ROWID \
         -- keyed by token\n;\n\
         CREATE TABLE shifts (id INTEGER PRIMARY KEY, starts TEXT, deleted_at TEXT);\n\
         CREATE INDEX shifts_live ON shifts (starts) WHERE deleted_at IS NULL -- live rows only\n;\n\
         CREATE VIEW live_shifts AS\n  SELECT id, starts FROM shifts\n  \
         WHERE deleted_at IS NULL -- hides */ soft-deleted rows\n;\n",
    );
    sb.execute_sql(
        "INSERT INTO sessions VALUES ('tok-alpha-7', 1), ('tok-beta-8', 2);\n\
         INSERT INTO shifts (starts, deleted_at) VALUES ('09:17', NULL), ('10:43', 'gone-5');",
    );
    sb.xtask(&["backup", "local"]).assert_ok();
    let file = sb.backups().join(only_backup(sb));
    let file = file.to_str().unwrap().to_owned();
    (remote, tempfile::tempdir().unwrap(), file)
}

/// What the plan says of each object of [`remote_with_a_commented_backup`]
/// restored into a remote database.
pub(crate) const CLOSED_COMMENTS: [&str; 3] = [
    "writes the `--` comment at the end of table sessions as a `/* */` comment",
    "writes the `--` comment at the end of index shifts_live as a `/* */` comment",
    "drops the `--` comment at the end of view live_shifts",
];

/// Each object's text, as the database `db` keeps it, by name.
pub(crate) fn object_sql(db: &std::path::Path) -> std::collections::BTreeMap<String, String> {
    let rows = query_file(
        db,
        "SELECT name, sql FROM sqlite_master \
           WHERE name IN ('sessions', 'shifts_live', 'live_shifts')",
    );
    { rows[0].iter() }
        .map(|r| {
            let (name, sql) = (r["name"].as_str().unwrap(), r["sql"].as_str().unwrap());
            (name.to_owned(), sql.trim_end().to_owned())
        })
        .collect()
}

/// The backup of [`remote_with_a_commented_backup`] restored into
/// staging succeeded, and D1 kept each object's text with its `--`
/// comment at the end: from then on every backup of staging was refused
/// over it, though the restore's plan said nothing. The plan now says,
/// per object (kind and name, no value), that its comment is written as a
/// `/* */` one, or dropped when it holds `*/`; a dry run changes nothing;
/// the restore keeps them so, its checks pass, and `backup staging` is
/// then GOOD.
#[test]
fn a_restore_into_staging_closes_trailing_line_comments_so_staging_can_be_backed_up() {
    let (remote, home, file) = remote_with_a_commented_backup();
    let file = file.as_str();
    let (staging, imports) = (dump_of(&remote.staging), import_requests(&remote));
    let values = ["tok-alpha-7", "tok-beta-8", "09:17", "10:43", "gone-5"];

    let args = ["restore", file, "--to", "staging", "--yes"];
    let dry = remote.xtask(home.path(), &[&args[..], &["--dry-run"]].concat());
    dry.assert_ok();
    for said in CLOSED_COMMENTS {
        assert!(dry.stdout.contains(said), "{said:?} unsaid: {}", dry.all());
    }
    assert_eq!(
        dump_of(&remote.staging),
        staging,
        "a dry run changed staging"
    );
    assert_eq!(import_requests(&remote), imports);

    let run = remote.xtask(home.path(), &args);
    run.assert_ok();
    for said in CLOSED_COMMENTS {
        assert!(run.stdout.contains(said), "{said:?} unsaid: {}", run.all());
    }
    assert!(
        run.stdout.contains("[x] content: 12 tables"),
        "{}",
        run.all()
    );
    for value in values {
        assert!(!run.all().contains(value), "{value} said: {}", run.all());
    }
    let sql = object_sql(&remote.staging);
    assert!(
        sql["sessions"].ends_with("WITHOUT ROWID /* keyed by token */"),
        "{sql:?}"
    );
    assert!(
        sql["shifts_live"].ends_with("IS NULL /* live rows only */"),
        "{sql:?}"
    );
    assert!(
        sql["live_shifts"].ends_with("WHERE deleted_at IS NULL"),
        "{sql:?}"
    );
    assert_eq!(counts(&remote.staging)["sessions"], 2);

    let before = remote.sb.backup_files();
    let backup = remote.xtask(home.path(), &["backup", "staging"]);
    backup.assert_ok();
    let taken = new_backups(&remote, &before);
    assert_eq!(taken.len(), 1, "{taken:?}: {}", backup.all());
    let m = manifest_for(&remote.sb, &taken[0]);
    assert_eq!(m["verification"]["outcome"], "good", "{m:#}");
}

/// `restore --dry-run --json` of [`remote_with_a_commented_backup`] into
/// staging: the plan's document had no repairs, so a script never learned
/// that each object's `--` comment is rewritten. `plan.repairs` lists each
/// repair as the text plan does (`said`, the same line), with what it is
/// (`repair`) and the object's kind and name, no value; staging unchanged.
#[test]
fn a_json_restore_plan_lists_its_repairs_as_the_text_plan_says_them() {
    let (remote, home, file) = remote_with_a_commented_backup();
    let (staging, imports) = (dump_of(&remote.staging), import_requests(&remote));
    let args = [
        "restore",
        &file,
        "--to",
        "staging",
        "--yes",
        "--dry-run",
        "--json",
    ];
    let run = remote.xtask(home.path(), &args);
    run.assert_ok();
    let doc: serde_json::Value =
        serde_json::from_str(&run.stdout).unwrap_or_else(|e| panic!("{e}: {}", run.all()));
    let repairs = doc["plan"]["repairs"]
        .as_array()
        .unwrap_or_else(|| panic!("no plan.repairs: {doc}"));
    let objects = [
        ("table", "sessions", false),
        ("index", "shifts_live", false),
        ("view", "live_shifts", true),
    ];
    // Every repair, these and the others of the backup (its tables put
    // before their rows), is the text plan's line.
    for repair in repairs {
        let said = repair["said"].as_str().unwrap_or_default();
        assert!(
            !said.is_empty() && run.stderr.contains(&format!("  {said}\n")),
            "the text plan does not say {said:?}:\n{}",
            run.all()
        );
    }
    let closed: Vec<&serde_json::Value> = { repairs.iter() }
        .filter(|r| r["repair"] == "closed_line_comment")
        .collect();
    assert_eq!(closed.len(), objects.len(), "{repairs:#?}");
    for ((repair, (kind, name, dropped)), text) in
        closed.into_iter().zip(objects).zip(CLOSED_COMMENTS)
    {
        assert_eq!(repair["kind"], kind, "{repair}");
        assert_eq!(repair["name"], name, "{repair}");
        assert_eq!(repair["dropped"], dropped, "{repair}");
        let said = repair["said"].as_str().unwrap_or_default();
        assert!(said.starts_with(text), "{text:?} is not {said:?}");
    }
    for value in ["tok-alpha-7", "tok-beta-8", "09:17", "gone-5"] {
        assert!(!run.all().contains(value), "{value} said: {}", run.all());
    }
    assert_eq!(
        dump_of(&remote.staging),
        staging,
        "a dry run changed staging"
    );
    assert_eq!(import_requests(&remote), imports);
}

/// A restore of prod's own backup into prod, `--replace`: the lines it
/// prints about the target having held every row, and its content check.
fn replace_prod_with_its_own_backup(rows: &str) -> (Remote, Run) {
    let remote = Remote::new(rows);
    let home = tempfile::tempdir().unwrap();
    remote.xtask(home.path(), &["backup", "prod"]).assert_ok();
    let run = crate::fault_matrix::restore_latest_into_prod(&remote, home.path());
    run.assert_ok();
    (remote, run)
}

/// The line of `run`'s output that holds `needle`.
#[track_caller]
fn line_with(run: &Run, needle: &str) -> String {
    let all = run.all();
    { all.lines() }
        .find(|l| l.contains(needle))
        .unwrap_or_else(|| panic!("no line with {needle:?}:\n{}", run.all()))
        .to_owned()
}

/// prod holds 7340033.0 in a column with no type (a REAL there) and
/// 9007199254740993 (2^53 + 1). The user backed prod up and restored that
/// backup into prod: "qbtime_db_prod already held every row ... this
/// restore changed no row" and "[x] content: ... every row equal", though
/// prod now holds the INTEGER 7340033 and 9007199254740992. Both sides of those
/// comparisons are D1's exports, which write 7340033.0 as `7340033` and round the
/// integer alike. The lines should say what was compared, and that the
/// values the backup records may differ, naming the table, never a value.
#[test]
fn a_replace_of_prod_holding_whole_reals_does_not_claim_it_changed_no_row() {
    let (remote, run) = replace_prod_with_its_own_backup(
        "CREATE TABLE k (id INTEGER PRIMARY KEY, u);\n\
         INSERT INTO k VALUES (1, 7340033.0), (2, 9007199254740993);",
    );
    assert_eq!(
        query_file(&remote.db, "SELECT typeof(u) AS t FROM k WHERE id = 1"),
        vec![vec![serde_json::json!({"t": "integer"})]],
        "the premise: the restore turned prod's 1.0 into an INTEGER"
    );
    let held = line_with(&run, "already held every row");
    assert!(
        held.contains("as D1's export shows them") && held.contains("may differ"),
        "{held}"
    );
    assert!(held.contains(" k"), "the table is not named: {held}");
    let content = line_with(&run, "[x] content");
    assert!(
        content.contains("as D1's export shows them") && content.contains("may differ"),
        "{content}"
    );
    assert!(
        // A value no timing (`(1.0 s)`) or digest can hold by chance.
        !run.all().contains("9007199254740992") && !run.all().contains("7340033"),
        "a value was printed:\n{}",
        run.all()
    );
}

/// The control: prod holds values D1's export keeps (1.5, text). Its
/// restore into prod still says plainly that it changed no row.
#[test]
fn a_replace_of_prod_holding_ordinary_values_says_it_changed_no_row() {
    let (_remote, run) = replace_prod_with_its_own_backup(
        "CREATE TABLE k (id INTEGER PRIMARY KEY, u);\n\
         INSERT INTO k VALUES (1, 1.5), (2, 'x');",
    );
    let held = line_with(&run, "already held every row");
    assert!(
        held.contains("this restore changed no row") && !held.contains("may differ"),
        "{held}"
    );
    let content = line_with(&run, "[x] content");
    assert!(!content.contains("may differ"), "{content}");
}

/// A remote sandbox, a home, and a backup of prod taken in it.
fn prod_and_its_backup() -> (Remote, tempfile::TempDir, std::path::PathBuf) {
    let remote = Remote::new("");
    let home = tempfile::tempdir().unwrap();
    let file = remote.sb.backups().join(remote.backup_prod(home.path()));
    (remote, home, file)
}

/// prod changes after its backup (its last company is deleted), so that a
/// restore of that backup would change it back.
fn prod_moves_on(remote: &Remote) {
    let conn = rusqlite::Connection::open(&remote.db).unwrap();
    conn.execute(
        "DELETE FROM companies WHERE id = (SELECT max(id) FROM companies)",
        [],
    )
    .unwrap();
}

/// [`restore_into_prod`] under `faults`, which are lifted after it.
fn restore_into_prod_under(
    remote: &Remote,
    home: &std::path::Path,
    file: &std::path::Path,
    faults: d1_loopback::Faults,
) -> Run {
    remote.server.set_faults(faults);
    let run = restore_into_prod(remote, home, file);
    remote.server.set_faults(d1_loopback::Faults::default());
    run
}

/// `restore BACKUP --to prod --replace`, confirmed.
fn restore_into_prod(remote: &Remote, home: &std::path::Path, file: &std::path::Path) -> Run {
    remote.xtask(home, &restore_into_prod_args(file))
}

/// The arguments of [`restore_into_prod`].
fn restore_into_prod_args(file: &std::path::Path) -> [&str; 7] {
    [
        "restore",
        file.to_str().unwrap(),
        "--to",
        "prod",
        "--replace",
        "--confirm",
        "qbtime_db_prod",
    ]
}

/// rvX: wrangler's poll of a running import failed (a 5xx; wrangler never
/// retries a poll) while D1 went on and applied it. The restore is not
/// "as it was": it checks prod's content, and says it was restored
/// despite the error, exiting non-zero.
#[test]
fn an_import_applied_whose_poll_failed_is_told_restored_not_as_it_was() {
    let (remote, home, file) = prod_and_its_backup();
    let backed_up = counts(&remote.db);
    // prod moves on after the backup: the restore takes it back.
    remote.xtask(home.path(), &["backup", "prod"]).assert_ok();
    prod_moves_on(&remote);
    assert_ne!(counts(&remote.db), backed_up, "the premise: prod changed");
    let faults = d1_loopback::Faults {
        import_poll_status_after_apply: Some(500),
        ..Default::default()
    };
    let run = restore_into_prod_under(&remote, home.path(), &file, faults);
    // The premise: D1 applied it.
    assert_eq!(counts(&remote.db), backed_up, "{}", run.all());
    assert_ne!(run.code, Some(0), "{}", run.all());
    assert!(!run.all().contains("as it was"), "{}", run.all());
    assert!(
        run.stderr.contains("was restored from") && run.stderr.contains("despite"),
        "{}",
        run.all()
    );
    assert!(
        run.stderr.contains("the safety backup taken before it is"),
        "{}",
        run.all()
    );
}

/// wrangler lost an import that D1 had not yet run (its poll answered
/// 500; D1 goes on with an import it was handed, and may run it after the
/// export that checks). That export holds what prod held before, but D1
/// did not report the import's end: the restore must not say D1 did not
/// apply it, or that prod is unchanged. It says its outcome is unknown and
/// that the import may still land, with the diff that checks and the
/// restore that undoes; the lock keeps it, and `status` tells it once the
/// import has landed.
#[test]
fn an_import_lost_before_d1_ran_it_is_unknown_and_may_still_land() {
    let (remote, home, file) = prod_and_its_backup();
    let backed_up = counts(&remote.db);
    prod_moves_on(&remote);
    let before = counts(&remote.db);
    assert_ne!(before, backed_up, "the premise: prod changed");
    let faults = d1_loopback::Faults {
        import_poll_status_before_apply: Some(500),
        ..Default::default()
    };
    let run = restore_into_prod_under(&remote, home.path(), &file, faults);
    // The premise: the import had not run when the restore ended.
    assert_eq!(counts(&remote.db), before, "{}", run.all());
    assert_ne!(run.code, Some(0), "{}", run.all());
    let all = run.all();
    for wrong in ["did not apply it", "unchanged", "as it was"] {
        assert!(!all.contains(wrong), "{wrong:?} said:\n{all}");
    }
    assert!(
        run.stderr.contains("outcome is unknown") && run.stderr.contains("may still land"),
        "{all}"
    );
    assert!(run.stderr.contains("cargo xtask diff"), "{all}");
    let restored = file.file_name().unwrap().to_str().unwrap();
    let safety: Vec<String> = { remote.sb.backup_files().into_iter() }
        .filter(|f| f.ends_with(".sql") && f != restored)
        .collect();
    assert_eq!(safety.len(), 1, "{safety:?}");
    assert!(
        run.stderr.contains("--replace --confirm qbtime_db_prod")
            && run.stderr.contains(safety[0].as_str()),
        "the undo is not printed:\n{all}"
    );

    // D1 then runs the import: prod holds the backup after all.
    held_import_run(&remote, &backed_up);
    let status = remote.xtask(home.path(), &["status", "--env", "prod"]);
    assert!(
        status.all().contains("outcome is unknown") && status.all().contains(safety[0].as_str()),
        "status does not tell the unsettled restore:\n{}",
        status.all()
    );
}

/// rvX: as above, and the check cannot tell (its export fails too): the
/// outcome is unknown, said so with the way to check and undo, and the
/// lock keeps the record, so that `status` and the next run tell it.
#[test]
fn an_import_whose_poll_failed_and_cannot_be_checked_is_unknown_and_told_later() {
    let (remote, home, file) = prod_and_its_backup();
    remote.server.set_faults(d1_loopback::Faults {
        import_poll_status_after_apply: Some(500),
        ..Default::default()
    });
    // Once the import starts (the safety backup is taken), exports fail.
    let server = &remote.server;
    let run = std::thread::scope(|scope| {
        scope.spawn(|| {
            let started = std::time::Instant::now();
            while !server.requests().iter().any(|r| r.contains("/import")) {
                assert!(started.elapsed().as_secs() < 300, "no import");
                std::thread::sleep(std::time::Duration::from_millis(10));
            }
            server.set_faults(d1_loopback::Faults {
                import_poll_status_after_apply: Some(500),
                export_api_error: Some("export unavailable".into()),
                ..Default::default()
            });
        });
        restore_into_prod(&remote, home.path(), &file)
    });
    remote.server.set_faults(d1_loopback::Faults::default());
    assert_ne!(run.code, Some(0), "{}", run.all());
    assert!(!run.all().contains("as it was"), "{}", run.all());
    assert!(run.stderr.contains("outcome is unknown"), "{}", run.all());
    // rvZ: wrangler prints "Uploading complete." even when its upload's
    // connection failed, so that D1 was handed the import is not known.
    assert!(
        run.stderr.contains("D1 may have been handed the import")
            && !run.stderr.contains("after D1 was handed the import"),
        "{}",
        run.all()
    );
    // The safety backup: the one backup besides the one restored.
    let restored = file.file_name().unwrap().to_str().unwrap();
    let safety: Vec<String> = { remote.sb.backup_files().into_iter() }
        .filter(|f| f.ends_with(".sql") && f != restored)
        .collect();
    assert_eq!(safety.len(), 1, "{safety:?}");
    let safety = &safety[0];
    assert!(run.stderr.contains(safety.as_str()), "{}", run.all());

    let status = remote.xtask(home.path(), &["status", "--env", "prod"]);
    assert!(
        status.all().contains("outcome is unknown") && status.all().contains(safety.as_str()),
        "status does not tell the unsettled restore:\n{}",
        status.all()
    );
    let next = remote.xtask(home.path(), &["backup", "prod"]);
    next.assert_ok();
    assert!(
        next.stderr.contains("loading ") && next.stderr.contains(safety.as_str()),
        "the next run does not tell it:\n{}",
        next.all()
    );
}

/// rvX: a failure before D1 was handed the file (its upload refused)
/// still leaves prod as it was, and says so.
#[test]
fn an_import_whose_upload_failed_leaves_prod_as_it_was() {
    let (remote, home, file) = prod_and_its_backup();
    let before = dump_of(&remote.db);
    remote.server.set_faults(d1_loopback::Faults {
        upload_status: Some(500),
        ..Default::default()
    });
    let run = restore_into_prod(&remote, home.path(), &file);
    run.assert_refused("so the target is as it was");
    assert_eq!(dump_of(&remote.db), before);
    assert_safety_backup_named(&remote, &run);
}

/// The uploads of import files the loopback was sent so far (`PUT`s to
/// its signed URLs).
fn uploads(remote: &Remote) -> usize {
    { remote.server.requests().into_iter() }
        .filter(|r| r.starts_with("PUT ") && r.contains("/__signed/"))
        .count()
}

/// prod's import of `file` failed once D1 had its file (D1 reported the
/// failure: `ingest_fail_after`), so that D1 keeps the upload: a retry of
/// the same restore finds it, and wrangler says "File already uploaded."
/// and skips the upload. The uploads made by then.
fn failed_once_leaving_the_upload(
    remote: &Remote,
    home: &std::path::Path,
    file: &std::path::Path,
) -> usize {
    let faults = d1_loopback::Faults {
        ingest_fail_after: Some(20),
        ..Default::default()
    };
    let first = restore_into_prod_under(remote, home, file, faults);
    assert!(
        first.stderr.contains("so it is unchanged"),
        "the premise: {}",
        first.all()
    );
    let uploaded = uploads(remote);
    assert!(uploaded > 0, "the premise: the file was uploaded");
    uploaded
}

/// wrangler skips the upload when D1 already has the file (its `init`
/// finds the MD5: "File already uploaded. Processing."), as on a retry
/// after a failed import. The restore goes through that path as through
/// an upload: prod holds the backup, checked.
#[test]
fn a_retry_restores_through_the_file_d1_already_has() {
    let (remote, home, file) = prod_and_its_backup();
    let backed_up = counts(&remote.db);
    prod_moves_on(&remote);
    let uploaded = failed_once_leaving_the_upload(&remote, home.path(), &file);
    let run = restore_into_prod(&remote, home.path(), &file);
    run.assert_ok();
    assert_eq!(
        uploads(&remote),
        uploaded,
        "the retry uploaded the file again"
    );
    assert_eq!(counts(&remote.db), backed_up, "{}", run.all());
    assert!(run.stdout.contains("Restored "), "{}", run.all());
}

/// A failure after "File already uploaded." is told as one after
/// "Uploading complete.": D1 may have been handed the import, so its
/// outcome is read; here it was lost before D1 ran it, so it is unknown,
/// may still land, and the lock keeps it for `status`.
#[test]
fn a_failure_after_the_file_was_already_uploaded_is_told_as_after_an_upload() {
    let (remote, home, file) = prod_and_its_backup();
    prod_moves_on(&remote);
    let before = counts(&remote.db);
    let uploaded = failed_once_leaving_the_upload(&remote, home.path(), &file);
    let faults = d1_loopback::Faults {
        import_poll_status_before_apply: Some(500),
        ..Default::default()
    };
    let run = restore_into_prod_under(&remote, home.path(), &file, faults);
    assert_eq!(uploads(&remote), uploaded, "the premise: no upload");
    assert_eq!(counts(&remote.db), before, "{}", run.all());
    assert_ne!(run.code, Some(0), "{}", run.all());
    let all = run.all();
    assert!(!all.contains("as it was"), "{all}");
    assert!(
        run.stderr.contains("D1 may have been handed the import")
            && run.stderr.contains("outcome is unknown")
            && run.stderr.contains("may still land"),
        "{all}"
    );
    let status = remote.xtask(home.path(), &["status", "--env", "prod"]);
    assert!(
        status.all().contains("outcome is unknown"),
        "status does not tell the unsettled restore:\n{}",
        status.all()
    );
}

/// What D1 answered for an import that ran out of memory (workers-sdk
/// #7554), rolled back: an error of its own, with no SQLite code.
const MEMORY_RESET: &str = "Durable Object's isolate exceeded its memory limit and was reset.";

/// D1 failed the import with an error of its own, no SQLite code (#7554),
/// its poll answering `status: "error"`: that is D1's final word, not a
/// poll wrangler lost. The export then decides: prod holds what it held
/// before, so it is told unchanged, not "may still land", and the lock is
/// settled (`status` tells no unsettled restore).
#[test]
fn an_import_d1_failed_without_an_sqlite_code_is_told_unchanged() {
    let (remote, home, file) = prod_and_its_backup();
    prod_moves_on(&remote);
    let before = dump_of(&remote.db);
    let faults = d1_loopback::Faults {
        import_fails_with: Some(MEMORY_RESET.to_owned()),
        ..Default::default()
    };
    let run = restore_into_prod_under(&remote, home.path(), &file, faults);
    assert_eq!(dump_of(&remote.db), before, "{}", run.all());
    assert_ne!(run.code, Some(0), "{}", run.all());
    let all = run.all();
    for wrong in ["outcome is unknown", "may still land"] {
        assert!(!all.contains(wrong), "{wrong:?} said:\n{all}");
    }
    assert!(
        run.stderr.contains("D1 reported the import failed")
            && run.stderr.contains("so it is unchanged"),
        "{all}"
    );
    assert_safety_backup_named(&remote, &run);
    let status = remote.xtask(home.path(), &["status", "--env", "prod"]);
    assert!(
        !status.all().contains("outcome is unknown"),
        "status tells a settled restore as unsettled:\n{}",
        status.all()
    );
}

/// [`restore_into_prod`] of `file` under `faults` (lifted after it), sent
/// one SIGINT once the loopback has been sent `times` requests whose line
/// (`METHOD /path`) holds `asked`.
fn restore_into_prod_interrupted(
    (remote, home, file): (&Remote, &std::path::Path, &std::path::Path),
    faults: d1_loopback::Faults,
    (asked, times): (&str, usize),
) -> Run {
    remote.server.set_faults(faults);
    let cmd = remote.xtask_command(home, &restore_into_prod_args(file));
    let run = interrupt_once_asked(remote, cmd, (asked, times));
    remote.server.set_faults(d1_loopback::Faults::default());
    run
}

/// `cmd` run, and sent one SIGINT once the loopback has been sent `times`
/// requests whose line (`METHOD /path`) holds `asked`.
fn interrupt_once_asked(
    remote: &Remote,
    mut cmd: std::process::Command,
    (asked, times): (&str, usize),
) -> Run {
    use std::io::Read;
    let mut child = cmd
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let mut stdout = child.stdout.take().unwrap();
    let mut stderr = child.stderr.take().unwrap();
    let out = std::thread::spawn(move || {
        let mut text = Vec::new();
        let _ = stdout.read_to_end(&mut text);
        text
    });
    let err = std::thread::spawn(move || {
        let mut text = Vec::new();
        let _ = stderr.read_to_end(&mut text);
        text
    });
    let polled = || {
        { remote.server.requests().into_iter() }
            .filter(|r| r.contains(asked))
            .count()
            >= times
    };
    let started = std::time::Instant::now();
    while !polled() {
        assert!(started.elapsed().as_secs() < 300, "never asked {asked:?}");
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    // SAFETY: kill(2) on our own child, which has not been waited for.
    unsafe { libc::kill(child.id() as libc::pid_t, libc::SIGINT) };
    let Some(status) = ended_within(&mut child, std::time::Duration::from_secs(60)) else {
        panic!("still running a minute after one SIGINT");
    };
    Run::from_output(std::process::Output {
        status,
        stdout: out.join().unwrap(),
        stderr: err.join().unwrap(),
    })
}

/// [`restore_into_prod_interrupted`] by SIGINT once D1 was handed the
/// import (wrangler polls it), which the loopback holds: its outcome is
/// unknown.
fn restore_into_prod_interrupted_in_its_import(
    remote: &Remote,
    home: &std::path::Path,
    file: &std::path::Path,
) -> Run {
    let faults = d1_loopback::Faults {
        import_held: true,
        ..Default::default()
    };
    restore_into_prod_interrupted((remote, home, file), faults, ("/import", 2))
}

/// Lets D1 run the held import, and waits until prod holds `backed_up`.
fn held_import_run(remote: &Remote, backed_up: &std::collections::BTreeMap<String, u64>) {
    assert_eq!(remote.server.release_held_imports(), 1);
    let started = std::time::Instant::now();
    while counts(&remote.db) != *backed_up {
        assert!(started.elapsed().as_secs() < 120, "the import never ran");
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
}

/// Ctrl-C while wrangler follows an import D1 was handed stops wrangler,
/// not D1: it is told as a failure after the hand-over is (D1 may have
/// been handed the import, its outcome unknown, with the diff that checks
/// and the restore that undoes), and the lock keeps it for `status`.
#[test]
fn an_interrupt_during_a_remote_import_says_d1_may_have_been_handed_it() {
    let (remote, home, file) = prod_and_its_backup();
    let backed_up = counts(&remote.db);
    prod_moves_on(&remote);
    let run = restore_into_prod_interrupted_in_its_import(&remote, home.path(), &file);
    let all = run.all();
    assert_eq!(run.code, Some(130), "{all}");
    assert!(run.stderr.contains("interrupted by SIGINT"), "{all}");
    for wrong in ["starts clean", "as it was"] {
        assert!(!all.contains(wrong), "{wrong:?} said:\n{all}");
    }
    assert!(
        run.stderr.contains("D1 may have been handed the import")
            && run.stderr.contains("outcome is unknown")
            && run.stderr.contains("cargo xtask diff")
            && run.stderr.contains("--replace --confirm qbtime_db_prod"),
        "{all}"
    );
    // D1 then runs the import: prod holds the backup, and `status` tells
    // the unsettled restore.
    held_import_run(&remote, &backed_up);
    let status = remote.xtask(home.path(), &["status", "--env", "prod"]);
    assert!(
        status.all().contains("outcome is unknown"),
        "status does not tell the unsettled restore:\n{}",
        status.all()
    );
    // MO: journaled `interrupted`, not `failed`, with what it may have
    // changed.
    let last = status.stdout_line_with("last restore ");
    assert!(
        last.contains("interrupted by a signal") && last.contains("D1 may have begun the import"),
        "{}",
        status.all()
    );
}

/// NT 4: after Ctrl-C while D1 may have been handed the import (its
/// outcome unknown), `status --json` said `"ok": true`, exit 0, its
/// `last_restore` only `interrupted`: a script watching either missed it.
/// The outcome is named (`"outcome": "unknown"`), `ok` is false and the
/// exit code 1, as for a stale backup; and a later run that takes the lock
/// calls that run interrupted, as the journal does, never killed.
#[test]
fn status_json_after_an_interrupted_remote_import_says_its_outcome_is_unknown_and_fails() {
    let (remote, home, file) = prod_and_its_backup();
    prod_moves_on(&remote);
    let run = restore_into_prod_interrupted_in_its_import(&remote, home.path(), &file);
    assert_eq!(run.code, Some(130), "{}", run.all());
    let status = remote.xtask(home.path(), &["status", "--env", "prod", "--json"]);
    let json: serde_json::Value = serde_json::from_str(&status.stdout).unwrap();
    assert_eq!(json["ok"], false, "{}", status.all());
    assert_eq!(
        json["environments"][0]["last_restore"]["outcome"],
        "unknown",
        "{}",
        status.all()
    );
    assert_eq!(status.code, Some(1), "{}", status.all());
    let next = remote.xtask(home.path(), &["with-backup", "local", "--", "true"]);
    assert!(
        next.stderr.contains("interrupted") && !next.stderr.contains("killed"),
        "{}",
        next.all()
    );
    assert_eq!(remote.server.release_held_imports(), 1);
}

/// rvBX 2: after one restore of unknown outcome `status` failed for ever:
/// a fresh verified `backup prod` did not clear it, and nothing said what
/// would. Before such a backup it fails naming the fix (take a backup,
/// then diff it against the backup before the restore); a verified backup
/// of prod taken after the restore settles it: `status` says the outcome
/// was unknown and that backup records the database as it now is, and is
/// ok (exit 0, `"ok": true`, `last_restore.settled_by` that backup).
#[test]
fn a_backup_taken_after_a_restore_of_unknown_outcome_settles_it_in_status() {
    let (remote, home, file) = prod_and_its_backup();
    let backed_up = counts(&remote.db);
    prod_moves_on(&remote);
    let run = restore_into_prod_interrupted_in_its_import(&remote, home.path(), &file);
    assert_eq!(run.code, Some(130), "{}", run.all());
    held_import_run(&remote, &backed_up);
    let status = remote.xtask(home.path(), &["status", "--env", "prod"]);
    assert_eq!(status.code, Some(1), "{}", status.all());
    assert!(
        status
            .stderr
            .contains("take a backup: `cargo xtask backup prod`")
            && status
                .stderr
                .contains("then diff it against the backup before the restore"),
        "{}",
        status.all()
    );
    remote.xtask(home.path(), &["backup", "prod"]).assert_ok();
    let status = remote.xtask(home.path(), &["status", "--env", "prod", "--json"]);
    assert_eq!(status.code, Some(0), "{}", status.all());
    let json: serde_json::Value = serde_json::from_str(&status.stdout).unwrap();
    let prod = &json["environments"][0];
    assert_eq!(json["ok"], true, "{}", status.all());
    assert_eq!(prod["last_restore"]["outcome"], "unknown", "{json:#}");
    assert_eq!(
        prod["last_restore"]["settled_by"], prod["newest_verified"]["file"],
        "{json:#}"
    );
    let status = remote.xtask(home.path(), &["status", "--env", "prod"]);
    status.assert_ok();
    let newest = prod["newest_verified"]["file"].as_str().unwrap();
    let last = status.stdout_line_with("last restore ");
    assert!(
        last.contains("its outcome was unknown")
            && last.contains(&format!(
                "{newest}, taken after it, records the database as it now is"
            )),
        "{}",
        status.all()
    );
    assert!(
        !status
            .stderr
            .contains("outcome of its last restore is unknown"),
        "{}",
        status.all()
    );
}

/// Ctrl-C while wrangler uploads the import (the loopback holds the
/// upload: `Uploading <file>` printed, not `Uploading complete.`) stops it
/// before D1 was handed anything. It was told as the load of a handed
/// import, "D1 ends an import it was given on its own … holds either all
/// of the backup or what it held before": nothing was handed, and prod is
/// as it was, which is what is told; never that D1 may have been handed
/// it. Prod unchanged, and the lock released: `status` tells no unsettled
/// restore, and the restore run again restores.
#[test]
fn an_interrupt_during_a_remote_restores_upload_says_the_target_is_as_it_was() {
    let (remote, home, file) = prod_and_its_backup();
    let backed_up = counts(&remote.db);
    prod_moves_on(&remote);
    let moved_on = counts(&remote.db);
    let faults = d1_loopback::Faults {
        upload_held: true,
        ..Default::default()
    };
    // While wrangler uploads the file: the loopback holds the upload.
    let at = ("PUT /__signed/", 1);
    let run = restore_into_prod_interrupted((&remote, home.path(), &file), faults, at);
    let all = run.all();
    assert_eq!(run.code, Some(130), "{all}");
    assert!(run.stderr.contains("interrupted by SIGINT"), "{all}");
    for wrong in [
        "may have been handed",
        "outcome is unknown",
        "either all of the backup",
    ] {
        assert!(!all.contains(wrong), "{wrong:?} said:\n{all}");
    }
    assert!(
        run.stderr.contains("nothing was handed to D1")
            && run.stderr.contains("qbtime_db_prod is as it was"),
        "{all}"
    );
    assert_eq!(counts(&remote.db), moved_on, "{all}");
    let status = remote.xtask(home.path(), &["status", "--env", "prod"]);
    assert!(
        !status.all().contains("outcome is unknown"),
        "status tells a restore stopped before the hand-over as unsettled:\n{}",
        status.all()
    );
    // MO: journaled `interrupted`, having changed nothing.
    let last = status.stdout_line_with("last restore ");
    assert!(
        last.contains("interrupted by a signal") && last.contains("changed nothing"),
        "{}",
        status.all()
    );
    restore_into_prod(&remote, home.path(), &file).assert_ok();
    assert_eq!(counts(&remote.db), backed_up);
}

/// `restore --json` said `content_checked: true` and no more, where the
/// text report says the check compared the rows "as D1's export shows
/// them", and names the tables whose values may differ all the same: a
/// script read a restore into staging as compared exactly. The result
/// says what it compared through (`content_checked_through`: `"d1_export"`
/// for a remote target) and those tables (`may_differ`), as `diff --json`
/// does (`through_d1_export`, `may_differ`); `content_checked` is kept.
#[test]
fn a_json_restore_into_a_remote_database_says_its_check_read_through_d1_export() {
    let (remote, home, backup) = crate::generated_shapes::remote_backup_of(
        "CREATE TABLE readings (id INTEGER PRIMARY KEY, v);\n\
         INSERT INTO readings VALUES (1, 3.0), (2, 'x');\n\
         CREATE TABLE plain (id INTEGER PRIMARY KEY, t TEXT);\n\
         INSERT INTO plain VALUES (1, 'a');",
    );
    backup.assert_ok();
    let path = remote.sb.backups().join(only_backup(&remote.sb));
    let run = remote.xtask(
        home.path(),
        &[
            "restore",
            path.to_str().unwrap(),
            "--to",
            "staging",
            "--replace",
            "--yes",
            "--json",
        ],
    );
    run.assert_ok();
    let doc: serde_json::Value = serde_json::from_str(&run.stdout).unwrap();
    let result = &doc["result"];
    assert_eq!(result["content_checked"], true, "{doc:#}");
    assert_eq!(result["content_checked_through"], "d1_export", "{doc:#}");
    assert_eq!(
        result["may_differ"],
        serde_json::json!(["readings"]),
        "{doc:#}"
    );
}

/// A retry of a file D1 already has: wrangler's `init` alone starts the
/// import, so when its answer is lost (here a 500 after D1 began it)
/// wrangler has said only "Checking if file needs uploading", never "File
/// already uploaded." Yet D1 was handed the import, and ran it: the target
/// is not told as it was, but restored despite wrangler's error.
#[test]
fn a_lost_init_answer_for_a_file_d1_has_is_told_as_handed() {
    let (remote, home, file) = prod_and_its_backup();
    prod_moves_on(&remote);
    let uploaded = failed_once_leaving_the_upload(&remote, home.path(), &file);
    let faults = d1_loopback::Faults {
        init_status_after_start: Some(500),
        ..Default::default()
    };
    let run = restore_into_prod_under(&remote, home.path(), &file, faults);
    assert_eq!(uploads(&remote), uploaded, "the premise: no upload");
    assert_ne!(run.code, Some(0), "{}", run.all());
    let all = run.all();
    assert!(!all.contains("as it was"), "{all}");
    assert!(
        run.stderr.contains("despite wrangler's error"),
        "D1 ran the import its init began: {all}"
    );
}

/// A loopback, its home, a backup of prod's rows recorded as staging's
/// (its manifest trusted, taken an hour ago) and a directory of its own
/// for a link or copy of it.
fn prods_rows_as_staging() -> (Remote, tempfile::TempDir, String, tempfile::TempDir) {
    let remote = Remote::new("");
    let home = tempfile::tempdir().unwrap();
    let staging = prod_copied_as_staging(&remote, home.path(), STAGING_UUID);
    (remote, home, staging, tempfile::tempdir().unwrap())
}

/// A backup of prod's rows recorded under staging's names with database
/// id `id`, taken an hour ago: its file name.
fn prod_copied_as_staging(remote: &Remote, home: &std::path::Path, id: &str) -> String {
    let prod = remote.backup_prod(home);
    let at = chrono::Utc::now() - chrono::Duration::hours(1);
    copy_taken_at(&remote.sb, &prod, "staging", at, |m| {
        m["environment"] = "staging".into();
        m["database"]["name"] = "qbtime_db_staging".into();
        m["database"]["uuid"] = id.into();
    })
}

/// rvAL: a link to staging's backup (`latest.sql`, in a directory of its
/// own) restored with `--no-manifest --source-env prod` is judged by the
/// manifest beside the file it leads to: refused (exit 3), the dry run
/// too, before any request reaches D1. Without `--no-manifest` the
/// refusal names the file the link leads to and its manifest, not only
/// the missing `latest.manifest.json`.
#[test]
fn a_no_manifest_restore_of_a_link_is_judged_by_the_manifest_beside_its_target() {
    let (remote, home, staging, dir) = prods_rows_as_staging();
    let link = dir.path().join("latest.sql");
    std::os::unix::fs::symlink(remote.sb.backups().join(&staging), &link).unwrap();
    let manifest = staging.replace(".sql", ".manifest.json");
    refused_before_d1(&remote, home.path(), &link, &manifest);
    let mut args = vec!["restore", link.to_str().unwrap(), "--to", "prod"];
    args.extend(["--replace", "--confirm", "qbtime_db_prod", "--dry-run"]);
    let run = remote.xtask(home.path(), &args);
    let named = [&staging, &manifest]
        .iter()
        .all(|n| run.stderr.contains(*n));
    let why = "the refusal does not name the file the link leads to, nor its manifest";
    assert!(run.code == Some(2) && named, "{why}:\n{}", run.all());
}

/// rvAL: a manifest beside the file that is a link (to staging's
/// manifest) cannot be read as its manifest: with `--no-manifest
/// --source-env prod` that is refused (exit 3), not warned of and gone
/// on with, before any request reaches D1.
#[test]
fn a_no_manifest_restore_is_refused_when_the_manifest_beside_it_is_a_link() {
    let (remote, home, staging, dir) = prods_rows_as_staging();
    let file = dir.path().join("fix.sql");
    std::fs::copy(remote.sb.backups().join(&staging), &file).unwrap();
    let manifest = staging.replace(".sql", ".manifest.json");
    std::os::unix::fs::symlink(
        remote.sb.backups().join(&manifest),
        dir.path().join("fix.manifest.json"),
    )
    .unwrap();
    refused_before_d1(&remote, home.path(), &file, "fix.manifest.json");
}

/// [`no_manifest_into_prod`] of `file`, the dry run and the restore:
/// each refused (exit 3) saying `said`, before any request reaches D1.
fn refused_before_d1(remote: &Remote, home: &std::path::Path, file: &std::path::Path, said: &str) {
    let before = counts(&remote.db);
    let requests = remote.server.requests().len();
    for dry_run in [true, false] {
        let run = no_manifest_into_prod(remote, home, file.to_str().unwrap(), dry_run);
        let refused = run.code == Some(3) && run.stderr.contains(said);
        assert!(
            refused,
            "dry run {dry_run}: not refused saying {said:?}:\n{}",
            run.all()
        );
        assert_eq!(remote.server.requests().len(), requests, "{}", run.all());
        assert_eq!(counts(&remote.db), before, "{}", run.all());
    }
}

/// rvAR: `restore latest:prod --to staging`, when prod's newest backup is
/// the safety backup a restore into prod took, warned "restoring it puts
/// back what the target held before that restore": the target is staging,
/// but what it held was prod's. The warning names the database whose
/// safety backup it is.
#[test]
fn a_safety_backup_restored_elsewhere_names_the_database_it_was_taken_of() {
    let remote = Remote::new("");
    let home = tempfile::tempdir().unwrap();
    let file = remote.sb.backups().join(remote.backup_prod(home.path()));
    let file = file.to_str().unwrap();
    let to_prod = ["--to", "prod", "--replace", "--confirm", "qbtime_db_prod"];
    let mut args = vec!["restore", file];
    args.extend(to_prod);
    remote.xtask(home.path(), &args).assert_ok();
    let run = remote.xtask(
        home.path(),
        &[
            "restore",
            "latest:prod",
            "--to",
            "staging",
            "--replace",
            "--yes",
            "--dry-run",
        ],
    );
    run.assert_ok();
    let warning = { run.stderr.lines() }
        .find(|l| l.contains("the safety backup taken at"))
        .unwrap_or_else(|| panic!("no warning of the safety backup:\n{}", run.all()));
    assert!(
        warning.contains("what qbtime_db_prod held before that restore")
            && !warning.contains("the target held"),
        "{warning}"
    );
}

/// A tired operator's migration day (LP): 0005 (an ALTER) applies, 0006
/// fails at its UNIQUE INDEX over duplicates. `--json`'s failure document
/// names what was applied, the pre-migration backup and the way back; the
/// error puts that way back on a line of its own, nothing after it; the
/// restore it gives advises a migrate that carries its `--confirm`; and
/// `status`, whose newest verified backup is then that restore's safety
/// backup (a picture of what the restore undid), no longer names 0006 as
/// the one migration pending, but says the restore came after it.
#[test]
fn a_failed_migrations_way_back_is_pasteable_and_status_after_it_does_not_guess() {
    let remote = Remote::new("");
    let home = tempfile::tempdir().unwrap();
    let dir = remote.sb.path().join("migrations");
    std::fs::write(
        dir.join("0005_nickname.sql"),
        "ALTER TABLE accounts ADD COLUMN nickname TEXT;\n",
    )
    .unwrap();
    std::fs::write(
        dir.join("0006_tags.sql"),
        "CREATE TABLE tags (id INTEGER PRIMARY KEY, name TEXT);\n\
         INSERT INTO tags (name) VALUES ('a'), ('a');\n\
         CREATE UNIQUE INDEX tags_name ON tags (name);\n",
    )
    .unwrap();
    let run = remote.xtask(
        home.path(),
        &["migrate", "prod", "--confirm", "qbtime_db_prod", "--json"],
    );
    assert_eq!(run.code, Some(1), "{}", run.all());
    let backup = remote.sb.backups().join(only_backup(&remote.sb));
    let way_back = format!(
        "cargo xtask restore {} --to prod --replace --confirm qbtime_db_prod",
        backup.display()
    );
    // The failure document: what a script needs to go on.
    let doc: serde_json::Value =
        serde_json::from_str(&run.stdout).unwrap_or_else(|_| panic!("{}", run.all()));
    assert_eq!(doc["exit_code"], 1, "{doc}");
    assert!(doc["error"].as_str().is_some(), "{doc}");
    assert_eq!(
        doc["result"]["applied"],
        serde_json::json!(["0005_nickname.sql"]),
        "{doc}"
    );
    assert_eq!(
        doc["result"]["pre_migration_backup"],
        backup.display().to_string(),
        "{doc}"
    );
    assert_eq!(doc["result"]["way_back"], way_back, "{doc}");
    assert_eq!(
        doc["plan"]["pending"],
        serde_json::json!(["0005_nickname.sql", "0006_tags.sql"])
    );
    // The way back is a line of its own: copied to its end, it pastes.
    assert!(
        run.stderr.lines().any(|l| l.trim() == way_back),
        "no line holding the way back alone:\n{}",
        run.stderr
    );

    let run = remote.xtask(
        home.path(),
        &[
            "restore",
            &backup.display().to_string(),
            "--to",
            "prod",
            "--replace",
            "--confirm",
            "qbtime_db_prod",
        ],
    );
    run.assert_ok();
    for line in run
        .all()
        .lines()
        .filter(|l| l.contains("cargo xtask migrate prod"))
    {
        for advice in line
            .split('`')
            .filter(|c| c.starts_with("cargo xtask migrate prod"))
        {
            assert!(
                advice.contains("--confirm qbtime_db_prod")
                    || advice.contains("--dry-run")
                    || advice.contains("--check"),
                "a migrate advice without its confirmation: {advice:?} in\n{}",
                run.all()
            );
        }
    }

    let run = remote.xtask(home.path(), &["status", "--env", "prod"]);
    let line = run.stdout_line_with("migrations");
    assert!(
        line.contains("unknown: a restore came after that backup")
            && line.contains("cargo xtask migrate prod --check")
            && !line.contains("pending"),
        "{}",
        run.all()
    );
    let dry = remote.xtask(home.path(), &["migrate", "prod", "--dry-run"]);
    dry.assert_ok();
    assert!(
        dry.stdout.contains("0005_nickname.sql") && dry.stdout.contains("0006_tags.sql"),
        "{}",
        dry.all()
    );
}

/// The names in `backups/`, sorted.
fn backup_dir_names(remote: &Remote) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(remote.sb.backups())
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    names
}

/// A restore into prod reads the target's schema while `wrangler d1 list`
/// checks prod's database_id beside it (README, "Reads that run side by
/// side"). Cloudflare refusing the token for that schema read (the check
/// beside it goes through) is reported as when the two ran in turn: exit
/// 1, the schema read named with the refused token, no plan, no safety
/// backup, nothing imported, prod and `backups/` as they were. With an id
/// that is no database of the account, the check's refusal is the one
/// told (exit 3), not the failed read beside it.
#[test]
fn a_failed_read_beside_the_id_check_is_reported_as_alone_and_nothing_is_written() {
    let remote = Remote::new("");
    let home = tempfile::tempdir().unwrap();
    let file = remote.sb.backups().join(remote.backup_prod(home.path()));
    let path = file.to_str().unwrap();
    let (before, kept) = (dump_of(&remote.db), backup_dir_names(&remote));
    remote.server.set_faults(d1_loopback::Faults {
        query_api_error_with: Some((
            "sqlite_master".to_owned(),
            403,
            10000,
            "Authentication error".to_owned(),
        )),
        ..Default::default()
    });
    let restore = [
        "restore",
        path,
        "--to",
        "prod",
        "--replace",
        "--confirm",
        "qbtime_db_prod",
        "--yes",
    ];
    let run = remote.xtask(home.path(), &restore);
    assert_eq!(run.code, Some(1), "{}", run.all());
    assert_eq!(
        error_line(&run),
        format!(
            "error: wrangler failed (exit status: 1) while trying to read the target's schema \
             (read-only): Cloudflare refused the API token: check CLOUDFLARE_API_TOKEN (not \
             expired or revoked, with the D1 and R2 permissions the README lists) and \
             CLOUDFLARE_ACCOUNT_ID; `cargo xtask doctor` checks them: A request to the \
             Cloudflare API (/accounts/{ACCOUNT}/d1/database/{PROD_UUID}/query) failed.; \
             Authentication error [code: 10000]"
        ),
        "{}",
        run.all()
    );
    assert!(
        remote
            .server
            .requests()
            .iter()
            .any(|r| r.ends_with("/d1/database") || r.contains("/d1/database?")),
        "the id was not checked:\n{:#?}",
        remote.server.requests()
    );
    assert!(!run.stderr.contains("Restore plan"), "{}", run.all());
    assert_eq!(import_requests(&remote), 0);
    assert_eq!(dump_of(&remote.db), before);
    assert_eq!(backup_dir_names(&remote), kept);

    // An id that is no database: the check's refusal, not the read's error.
    let config = remote.sb.path().join("wrangler.toml");
    let text = std::fs::read_to_string(&config).unwrap();
    let other = "00000000-1111-4222-8333-444444444444";
    std::fs::write(&config, text.replace(PROD_UUID, other)).unwrap();
    let run = remote.xtask(
        home.path(),
        &[
            "time-travel",
            "restore",
            "prod",
            "--bookmark",
            "00000085-0000024c-00004c6d-8e61117bf38d7adb71b934ebbf891683",
            "--confirm",
            "qbtime_db_prod",
        ],
    );
    assert_eq!(run.code, Some(3), "{}", run.all());
    assert!(
        error_line(&run).starts_with(&format!(
            "error: refusing to restore it with Time Travel: the configuration gives \
             qbtime_db_prod (prod) the database_id {other}, which is no D1 database of its \
             Cloudflare account."
        )),
        "{}",
        run.all()
    );
    assert_eq!(dump_of(&remote.db), before);
    assert_eq!(backup_dir_names(&remote), kept);
}

/// MM: a manifest in backups/ recorded under prod's name but naming
/// staging's database (name and id: misfiled, or hostile) is not prod's.
/// `list` showed it as a plain prod backup, and `latest:prod` and
/// `status` passed over it without a word. `list` (and `--json`) marks
/// it; `latest:prod` and `status` say once which file they passed over,
/// why (staging's database) and what to do; restoring it by path into
/// prod is refused, nothing restored, naming `--to staging`, which the
/// CLI accepts as printed. One naming a database no environment has is
/// said to be no environment's.
#[test]
fn a_prod_backup_naming_stagings_database_is_marked_told_and_refused_with_the_way_to_staging() {
    let remote = Remote::new("");
    let home = tempfile::tempdir().unwrap();
    let sb = &remote.sb;
    let ours = redate(
        sb,
        &remote.backup_prod(home.path()),
        chrono::Utc::now() - chrono::Duration::hours(2),
    );
    let copy = |minutes: i64, name: &'static str, id: &'static str| {
        let at = chrono::Utc::now() - chrono::Duration::minutes(minutes);
        copy_taken_at(sb, &ours, "prod", at, |m| {
            m["database"]["name"] = name.into();
            m["database"]["uuid"] = id.into();
        })
    };
    let stagings = copy(30, "qbtime_db_staging", STAGING_UUID);
    let nobodys = copy(20, "qbtime_db_gone", "7e1f0c3a-2b4d-4c5e-8f6a-9b0c1d2e3f4a");
    let told_once = |run: &Run| {
        for (file, whose) in [
            (&stagings, "which is staging's"),
            (&nobodys, "no environment's"),
        ] {
            let lines: Vec<&str> = { run.stderr.lines() }
                .filter(|l| l.contains(file.as_str()))
                .collect();
            assert!(
                lines.len() == 1 && lines[0].starts_with("warning:") && lines[0].contains(whose),
                "{file} is not told once as {whose}:\n{}",
                run.all()
            );
        }
        assert!(run.stderr.contains(" --to staging`"), "{}", run.all());
    };
    // list marks both, the table and --json.
    let list = remote.xtask(home.path(), &["list"]);
    list.assert_ok();
    for file in [&stagings, &nobodys] {
        let row = { list.stdout.lines() }.find(|l| l.starts_with(file.as_str()));
        assert!(
            row.is_some_and(|r| r.contains("prod (not prod's)")),
            "{file} is listed as a plain prod backup:\n{}",
            list.all()
        );
    }
    told_once(&list);
    let list = remote.xtask(home.path(), &["list", "--json"]);
    let rows: serde_json::Value = serde_json::from_str(&list.stdout).unwrap();
    let misfiled = |file: &str| {
        let row = rows.as_array().unwrap().iter().find(|r| r["file"] == file);
        row.unwrap()["misfiled"].clone()
    };
    assert_eq!(misfiled(&ours), serde_json::Value::Null, "{}", list.stdout);
    assert_eq!(
        misfiled(&stagings)["database_of"],
        "staging",
        "{}",
        list.stdout
    );
    assert_eq!(misfiled(&nobodys)["database_of"], serde_json::Value::Null);
    assert_eq!(misfiled(&nobodys)["database"], "qbtime_db_gone");
    // latest:prod picks our own, and says it passed over both.
    let latest = remote.xtask(
        home.path(),
        &["restore", "latest:prod", "--to", "staging", "--dry-run"],
    );
    latest.assert_ok();
    let source = format!("source       {}", sb.backups().join(&ours).display());
    assert!(latest.stdout.contains(&source), "{}", latest.all());
    told_once(&latest);
    // status, and status --json.
    let status = remote.xtask(home.path(), &["status", "--env", "prod"]);
    told_once(&status);
    let status = remote.xtask(home.path(), &["status", "--env", "prod", "--json"]);
    let doc: serde_json::Value =
        serde_json::from_str(&status.stdout).unwrap_or_else(|e| panic!("{e}:\n{}", status.all()));
    let listed: Vec<&str> = { doc["environments"][0]["other_databases_passed_over"].as_array() }
        .map(|a| a.iter().filter_map(|o| o["file"].as_str()).collect())
        .unwrap_or_default();
    assert_eq!(
        listed,
        [nobodys.as_str(), stagings.as_str()],
        "{}",
        status.all()
    );
    // Restored by path into prod: refused, nothing restored, and the way
    // it names is accepted as printed.
    let prod_before = dump_of(&remote.db);
    let requests = remote.server.requests().len();
    let file = sb.backups().join(&stagings);
    let run = remote.xtask(
        home.path(),
        &[
            "restore",
            file.to_str().unwrap(),
            "--to",
            "prod",
            "--confirm",
            "qbtime_db_prod",
        ],
    );
    assert_eq!(run.code, Some(3), "{}", run.all());
    assert_eq!(dump_of(&remote.db), prod_before, "prod was changed");
    assert_eq!(remote.server.requests().len(), requests, "{}", run.all());
    let printed = { run.stderr.split('`') }
        .find(|c| c.starts_with("cargo xtask restore ") && c.ends_with("--to staging"))
        .unwrap_or_else(|| panic!("no `--to staging` command in:\n{}", run.all()));
    let words: Vec<&str> = { printed.split_whitespace().skip(2) }
        .map(|w| w.trim_matches('\''))
        .collect();
    let mut args = words;
    args.push("--dry-run");
    let dry = remote.xtask(home.path(), &args);
    dry.assert_ok();
    assert!(
        dry.stdout
            .contains(&format!("source       {}", file.display())),
        "{}",
        dry.all()
    );
}

/// MU: Cloudflare refusing the token for the import's `init` (403, code
/// 10000, "Authentication error", before any upload) was told as an import
/// of unknown outcome, and the lock kept it. An `init` refused for its
/// token was never carried out: the restore fails (exit 1) naming the
/// token and its fix, says prod is as it was, journals that it changed
/// nothing, and leaves the lock settled; prod is unchanged.
#[test]
fn an_import_refused_for_its_token_changed_nothing_and_leaves_the_lock_settled() {
    let (remote, home, file) = prod_and_its_backup();
    prod_moves_on(&remote);
    let before = dump_of(&remote.db);
    let faults = d1_loopback::Faults {
        import_init_refused_with: Some((403, 10000, "Authentication error".to_owned())),
        ..Default::default()
    };
    let run = restore_into_prod_under(&remote, home.path(), &file, faults);
    assert_eq!(run.code, Some(1), "{}", run.all());
    assert_eq!(uploads(&remote), 0, "the premise: no upload");
    let all = run.all();
    assert!(
        run.stderr
            .contains("Cloudflare refused the API token: check CLOUDFLARE_API_TOKEN")
            && run.stderr.contains("so the target is as it was")
            && !all.contains("outcome is unknown")
            && !all.contains("may have been handed the import"),
        "{all}"
    );
    assert!(!all.contains(TOKEN), "the token was printed: {all}");
    assert_eq!(dump_of(&remote.db), before);
    assert_settled_after_a_refused_import(&remote, home.path());
}

/// The last line of the restore journal says the restore `failed` and
/// changed nothing; `status` tells no unsettled restore, and the lock is
/// free: a backup of prod runs, and tells of no earlier run.
fn assert_settled_after_a_refused_import(remote: &Remote, home: &std::path::Path) {
    let journal = std::fs::read_to_string(remote.sb.backups().join("restores.jsonl")).unwrap();
    let last: serde_json::Value = serde_json::from_str(journal.lines().last().unwrap()).unwrap();
    assert_eq!(
        (&last["status"], &last["changed_nothing"]),
        (&"failed".into(), &true.into()),
        "{journal}"
    );
    let status = remote.xtask(home, &["status", "--env", "prod"]);
    status.assert_ok();
    assert!(
        !status.all().contains("outcome is unknown") && !status.all().contains("unsettled"),
        "status tells an unsettled restore:\n{}",
        status.all()
    );
    let next = remote.xtask(home, &["backup", "prod"]);
    next.assert_ok();
    assert!(!next.stderr.contains("loading "), "{}", next.all());
}

/// MU: as above, into a database the restore creates (`--to new:NAME`):
/// the import's `init` refused for the token leaves the new database
/// empty, in place and said so, with the restore journaled as having
/// changed nothing and the lock settled.
#[test]
fn an_import_into_a_new_database_refused_for_its_token_changed_nothing() {
    let (remote, home, file) = prod_and_its_backup();
    let before = dump_of(&remote.db);
    remote.server.set_faults(d1_loopback::Faults {
        import_init_refused_with: Some((403, 10000, "Authentication error".to_owned())),
        ..Default::default()
    });
    let args = [
        "restore",
        file.to_str().unwrap(),
        "--to",
        "new:qbtime_db_fresh",
        "--yes",
    ];
    let run = remote.xtask(home.path(), &args);
    remote.server.set_faults(d1_loopback::Faults::default());
    assert_eq!(run.code, Some(1), "{}", run.all());
    let all = run.all();
    assert!(
        run.stderr
            .contains("Cloudflare refused the API token: check CLOUDFLARE_API_TOKEN")
            && run.stderr.contains("so the target is as it was")
            && run.stderr.contains("qbtime_db_fresh")
            && run.stderr.contains("was left in place")
            && !all.contains("outcome is unknown")
            && !all.contains(TOKEN),
        "{all}"
    );
    assert_eq!(uploads(&remote), 0, "the premise: no upload");
    let fresh = remote.server.database_path("qbtime_db_fresh").unwrap();
    let conn = rusqlite::Connection::open(fresh).unwrap();
    let tables: i64 = conn
        .query_row(
            "SELECT count(*) FROM sqlite_master WHERE type = 'table' AND name NOT LIKE '\\_cf%' ESCAPE '\\'",
            [],
            |r| r.get(0),
        )
        .unwrap();
    assert_eq!(tables, 0, "{all}");
    assert_eq!(dump_of(&remote.db), before);
    assert_settled_after_a_refused_import(&remote, home.path());
}

/// NL 1: when the plan could not read the target's schema, its trial of
/// the pending migrations was skipped, and with it the d1_migrations
/// guard: `migrate --no-backup` applied a migration that writes the table.
/// Without the target's schema the migrations are judged on the schema
/// the applied ones make: refused (exit 3), a dry run too, nothing run.
#[test]
fn a_migration_that_writes_the_migrations_table_is_refused_when_the_schema_cannot_be_read() {
    let remote = Remote::with_migrations("", 3);
    let home = tempfile::tempdir().unwrap();
    std::fs::write(
        remote.sb.path().join("migrations/0005_x.sql"),
        "CREATE TABLE t5(a INTEGER);\nDELETE FROM d1_migrations WHERE name > '0001';\n",
    )
    .unwrap();
    remote.server.set_faults(d1_loopback::Faults {
        query_fail_with: Some("PRAGMA table_list".to_owned()),
        ..Default::default()
    });
    let before = counts(&remote.db);
    for args in [
        &["migrate", "prod", "--dry-run"][..],
        &[
            "migrate",
            "prod",
            "--confirm",
            "qbtime_db_prod",
            "--no-backup",
            "--reason",
            "schema unread",
        ],
    ] {
        let run = remote.xtask(home.path(), args);
        assert_eq!(run.code, Some(3), "{args:?}:\n{}", run.all());
        assert!(
            run.stderr.contains("0005_x.sql: its statement 2")
                && run.stderr.contains("writes d1_migrations")
                && run.stderr.contains("no backup was taken"),
            "{args:?}:\n{}",
            run.all()
        );
        assert_eq!(counts(&remote.db), before, "{args:?}");
        let held = remote.sb.backups_held();
        assert!(held.is_empty(), "{args:?}: {:?}", held.keys());
    }
}

/// PJ: a remote `--clean` restore of a backup holding an empty table no
/// migration makes (`CREATE TABLE t(a)` by hand) loaded the rows, then
/// failed its check on the missing table (exit 1). The plan says t is not
/// made (`LOSES`); it held no row, and the restore ends verified, the
/// other rows prod's.
#[test]
fn a_clean_restore_to_staging_leaves_out_an_empty_table_no_migration_makes_and_says_so() {
    let remote = Remote::new("CREATE TABLE t(a);");
    let home = tempfile::tempdir().unwrap();
    let file = remote.sb.backups().join(remote.backup_prod(home.path()));
    let f = file.to_str().unwrap();
    let run = remote.xtask(
        home.path(),
        &["restore", f, "--to", "staging", "--clean", "--yes"],
    );
    run.assert_ok();
    assert!(
        run.stdout_line_with("LOSES").contains("table t"),
        "{}",
        run.all()
    );
    let mut want = counts(&remote.db);
    let mut got = counts(&remote.staging);
    assert_eq!(want.remove("t"), Some(0));
    for snap in [&mut want, &mut got] {
        snap.remove("sqlite_sequence");
        snap.remove("d1_migrations");
    }
    assert_eq!(got, want);
}

/// rvCM 3: a remote `--no-manifest` restore counts the restored rows
/// ("count the restored rows", under -v) and compares them with the
/// dump's INSERTs, yet its checklist showed `[ ] row counts`: it ticks
/// what ran, and says what the counts were compared with.
#[test]
fn a_no_manifest_restore_ticks_the_row_counts_it_compared() {
    let remote = Remote::new("");
    let home = tempfile::tempdir().unwrap();
    let file = remote.sb.backups().join(remote.backup_prod(home.path()));
    let hand = home.path().join("by-hand.sql");
    std::fs::copy(&file, &hand).unwrap();
    let args = [
        "-v",
        "restore",
        hand.to_str().unwrap(),
        "--no-manifest",
        "--to",
        "staging",
        "--replace",
        "--yes",
    ];
    let run = remote.xtask(home.path(), &args);
    run.assert_ok();
    assert!(
        run.all().contains("count the restored rows"),
        "{}",
        run.all()
    );
    let line = run.stdout_line_with("row counts:");
    assert!(
        line.contains("[x]") && line.contains("the dump's INSERTs"),
        "{}",
        run.all()
    );
}

/// rvCM 1, remotely: a `--replace` of prod with a dump that lacks a view
/// and a trigger prod has (made by hand, no migration makes them) names
/// both on its `LOSES` line and in `--json`'s `loses`.
#[test]
fn a_remote_replace_names_the_view_and_trigger_it_drops_and_does_not_make_again() {
    let remote = Remote::new(
        "CREATE VIEW hand_view AS SELECT id FROM accounts;\n\
         CREATE TRIGGER hand_trigger AFTER INSERT ON companies BEGIN SELECT 1; END;\n",
    );
    let home = tempfile::tempdir().unwrap();
    remote.sb.apply_migrations();
    remote.sb.execute_sql(SEED_SQL);
    let file = remote.sb.path().join("local.sql");
    let out = file.to_str().unwrap();
    let export = [
        "d1",
        "export",
        "qbtime_db_local",
        "--local",
        "--output",
        out,
    ];
    remote.sb.wrangler(&export).assert_ok();
    let args = ["restore", out, "--to", "prod", "--replace", "--no-manifest"];
    let confirm = [
        "--dry-run",
        "--source-env",
        "prod",
        "--confirm",
        "qbtime_db_prod",
    ];
    let plan = remote.xtask(home.path(), &[&args[..], &confirm[..]].concat());
    plan.assert_ok();
    let loses = plan.stdout_line_with("  LOSES ");
    assert!(
        loses.contains("view hand_view") && loses.contains("trigger hand_trigger"),
        "{}",
        plan.all()
    );
    let json = remote.xtask(
        home.path(),
        &[&args[..], &confirm[..], &["--json"]].concat(),
    );
    json.assert_ok();
    let doc: serde_json::Value = serde_json::from_str(&json.stdout).unwrap();
    assert_eq!(
        doc["plan"]["loses"],
        serde_json::json!([
            {"kind": "view", "name": "hand_view", "rows": null},
            {"kind": "trigger", "name": "hand_trigger", "rows": null},
        ]),
        "{}",
        json.stdout
    );
}
