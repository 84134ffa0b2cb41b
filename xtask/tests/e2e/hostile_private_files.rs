//! Findings of atkAO: private data on failure paths and on the paths added
//! since the first checks of `hostile_printing` and `hostile_messages`.
//! (1) wrangler's report of a failed migration loses a row value that the
//! migration's own SQLite error quotes (a guard trigger's `RAISE(ABORT,
//! '…' || NEW.email)`), and (2) `offsite fetch` refuses, as `backup` does,
//! a backup directory inside the repository that git would not ignore.

use crate::common;

use common::remote::*;
use common::*;

/// A migration's guard trigger names the row it refuses, as apps write
/// them (`RAISE(ABORT, 'invalid email: ' || NEW.email)`; SQLite 3.47 and
/// later, and so D1, take any expression there). When the migration's own
/// UPDATE trips it, wrangler's `[ERROR]` line carries the customer's email,
/// and `migrate` passes wrangler's output into its error as it is
/// (`steps/migrations.rs`, `edge/wrangler.rs`: only secrets are redacted).
#[test]
fn a_failed_migration_never_prints_the_row_value_its_error_quotes() {
    let sb = Sandbox::new();
    sb.apply_migrations();
    sb.execute_sql(
        "INSERT INTO accounts (email, display_name, password_hash) \
         VALUES ('jane.doe.ssn-078-05-1120@examplecom', 'Jane Doe', 'x');",
    );
    std::fs::write(
        sb.path().join("migrations/0005_email_guard.sql"),
        "CREATE TRIGGER accounts_email_guard BEFORE UPDATE ON accounts\n\
         WHEN NEW.email NOT LIKE '%@%.%'\n\
         BEGIN SELECT RAISE(ABORT, 'invalid email: ' || NEW.email); END;\n\
         UPDATE accounts SET email = trim(email);\n",
    )
    .unwrap();
    let run = sb.xtask(&["migrate", "local", "--yes"]);
    assert_eq!(run.code, Some(1), "the migration fails:\n{}", run.all());
    assert!(
        run.stderr
            .contains("applying migrations to qbtime_db_local failed"),
        "{}",
        run.all()
    );
    assert!(
        !run.all().contains("078-05-1120"),
        "a row value reached a message:\n{}",
        run.all()
    );
    assert!(
        run.stderr
            .contains("a trigger's RAISE refused the statement"),
        "{}",
        run.all()
    );
}

/// `backup --backup-dir DIR` refuses a directory inside the repository
/// that git would not ignore ("Backups hold customer PII … must never be
/// committed"), manifest included. `offsite fetch` writes the same backup
/// and manifest there without asking git (`commands/offsite.rs`, `fetch`):
/// the manifest (row counts, content digests, the reason) is left for the
/// next `git add -A`.
#[test]
fn offsite_fetch_never_leaves_a_backup_or_manifest_for_git_to_commit() {
    let remote = Remote::new("");
    remote.server.add_bucket("qbtime-d1-backups");
    let home = tempfile::tempdir().unwrap();
    let name = remote.backup_prod(home.path());
    remote
        .xtask(home.path(), &["upload", "latest:prod"])
        .assert_ok();
    let decoys = common::decoys::Decoys::plant(remote.sb.path());
    let before = decoys.hashes();
    let here = remote.sb.path().join("fetched");
    let refused = remote.xtask(
        home.path(),
        &["--backup-dir", here.to_str().unwrap(), "backup", "prod"],
    );
    refused.assert_refused("git would not ignore");

    let run = remote.xtask(
        home.path(),
        &[
            "--backup-dir",
            here.to_str().unwrap(),
            "offsite",
            "fetch",
            &name,
            "--env",
            "prod",
        ],
    );
    run.assert_refused("refusing to fetch a backup: git would not ignore");
    let status = remote
        .sb
        .git(&["status", "--porcelain", "--untracked-files=all"]);
    let exposed: Vec<&str> = status
        .stdout
        .lines()
        .filter(|l| l.starts_with("??") && l.contains("fetched/"))
        .collect();
    assert!(
        exposed.is_empty(),
        "offsite fetch (exit {:?}) left files git would commit: {exposed:?}\n{}",
        run.code,
        run.all()
    );
    assert_eq!(decoys.hashes(), before, "a decoy changed");
}
