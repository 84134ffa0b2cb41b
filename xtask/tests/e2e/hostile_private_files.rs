//! Findings of atkAO: private data on failure paths and on the paths added
//! since the first checks of `hostile_printing` and `hostile_messages`.
//! (1) wrangler's report of a failed migration loses a row value that the
//! migration's own SQLite error quotes (a guard trigger's `RAISE(ABORT,
//! '…' || NEW.email)`), and (2) `offsite fetch` refuses, as `backup` does,
//! a backup directory inside the repository that git would not ignore.
//! Then rvAK's: (3) the RAISE message is still left out when the value
//! it quotes holds a blank line, or at `-v` when it holds any line break;
//! (4) an upload under a bucket lock keeps, as its own, only this backup's
//! manifest, never one someone else put under its key.

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
    let run = failed_migration_quoting("''", &[]);
    assert_quotes_no_value(&run);
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

/// A migration whose guard trigger refuses a row with a message that
/// quotes the row's value (`RAISE(ABORT, 'invalid email: ' ||
/// NEW.email)`), where the value holds the line breaks `value_breaks`: what
/// `migrate local` prints with `flags` first.
fn failed_migration_quoting(value_breaks: &str, flags: &[&str]) -> Run {
    let mut args = flags.to_vec();
    args.extend(["migrate", "local", "--yes"]);
    let run = failed_migration(
        &format!(
            "INSERT INTO accounts (email, display_name, password_hash) \
             VALUES ('jane.doe.ssn-078-05-1120@examplecom' || {value_breaks} || 'see notes', \
             'Jane Doe', 'x');"
        ),
        "CREATE TRIGGER accounts_email_guard BEFORE UPDATE ON accounts\n\
         WHEN NEW.email NOT LIKE '%@%.%'\n\
         BEGIN SELECT RAISE(ABORT, 'invalid email: ' || NEW.email); END;\n\
         UPDATE accounts SET email = trim(email);\n",
        &args,
    );
    assert!(
        run.stderr
            .contains("applying migrations to qbtime_db_local failed"),
        "{}",
        run.all()
    );
    run
}

/// A value with a paragraph break (a note, an address pasted in) in a
/// trigger's RAISE message: `gate::without_raise_messages` takes the
/// message to start after the last blank line before `: SQLITE_CONSTRAINT`
/// (meant for the remote API's "failed.\n\n  <message>"), so only the last
/// paragraph is replaced and `✘ [ERROR] invalid email: jane.doe.ssn-…` is
/// printed in `wrangler said:`.
#[test]
fn a_raise_message_quoting_a_value_with_a_blank_line_is_never_printed() {
    let run = failed_migration_quoting("char(10) || char(10)", &[]);
    assert_quotes_no_value(&run);
}

/// At `-v` wrangler's lines are shown as they come, each filtered alone
/// (`edge/wrangler.rs` `keep_lines`): the first line of a RAISE message
/// over two lines has no `: SQLITE_CONSTRAINT`, so it is shown whole.
#[test]
fn a_raise_message_over_two_lines_is_never_printed_at_verbose() {
    let run = failed_migration_quoting("char(10)", &["-v"]);
    assert_quotes_no_value(&run);
}

/// Under a bucket lock, `upload` keeps an object already under the
/// manifest's key when its PUT fails and the object is "a manifest of the
/// same backup" (`steps/offsite.rs`, `Kept::SameBackup`): only its
/// `file` and `environment` are compared. Anyone who can write the bucket
/// sees the backup's object land (its name, size and sha256 are then
/// known) and can put a manifest of their own under the manifest's key
/// first; the lock then keeps theirs for the lock's whole span, and
/// `upload` reports the backup uploaded, its offsite manifest saying
/// whatever they wrote (row counts, migrations, reason) for `offsite
/// fetch` on another machine to write beside the file.
#[test]
fn an_upload_never_keeps_a_manifest_it_did_not_write_as_its_own() {
    let bucket = "qbtime-d1-backups";
    let remote = Remote::new("");
    let home = tempfile::tempdir().unwrap();
    let name = remote.backup_prod_under_a_bucket_lock(home.path());
    let ours = manifest_for(&remote.sb, &name);
    let created: chrono::DateTime<chrono::Utc> =
        ours["created_at"].as_str().unwrap().parse().unwrap();
    let stem = name.split(".sql").next().unwrap();
    let key = format!("prod/{}/{stem}.manifest.json", created.format("%Y/%m"));
    let mut forged = ours.clone();
    for (_, n) in forged["rows"].as_object_mut().unwrap() {
        *n = serde_json::json!(0);
    }
    forged["reason"] = serde_json::json!("forged: not this tool's manifest");
    remote
        .server
        .r2_put_object(bucket, &key, forged.to_string().as_bytes())
        .unwrap();

    let run = remote.xtask(home.path(), &["upload", &name, "--env", "prod"]);
    let there: serde_json::Value =
        serde_json::from_slice(&remote.server.r2_object(bucket, &key).unwrap()).unwrap();
    assert!(
        !run.ok || there["rows"] == ours["rows"] && there["reason"] == ours["reason"],
        "upload (exit {:?}) took a manifest it did not write for its own:\n{}\nin the bucket: {there:#}",
        run.code,
        run.all()
    );
}

/// The customer's value of these tests is nowhere in what `run` printed.
#[track_caller]
fn assert_quotes_no_value(run: &Run) {
    assert!(
        !run.all().contains("078-05-1120"),
        "a row value reached a message:\n{}",
        run.all()
    );
}

/// rvAM: a guard trigger that words its refusal as SQLite does
/// (`RAISE(ABORT, 'CHECK constraint failed: display_name ' ||
/// NEW.display_name)`). `gate::sqlites_own_constraint_message` now keeps
/// an unnamed CHECK's "expression" when it holds names, numbers and
/// operators, `-` among them: the row's value (an SSN) is printed in
/// `wrangler said:`.
#[test]
fn a_raise_message_worded_as_a_check_never_prints_the_value_it_quotes() {
    let run = failed_migration(
        "INSERT INTO accounts (email, display_name, password_hash) \
         VALUES ('jane@example.com', ' 078-05-1120 ', 'x');",
        "CREATE TRIGGER accounts_name_guard BEFORE UPDATE ON accounts\n\
         WHEN NEW.display_name GLOB '*[0-9]*'\n\
         BEGIN SELECT RAISE(ABORT, 'CHECK constraint failed: display_name ' || NEW.display_name); END;\n\
         UPDATE accounts SET display_name = trim(display_name);\n",
        &["migrate", "local", "--yes"],
    );
    assert!(
        !run.all().contains("078-05-1120"),
        "the row's value is printed:\n{}",
        run.all()
    );
}

/// rvAM: an unnamed CHECK written over two lines, as migrations are
/// (`CHECK (amount >= 0\n  AND amount < 1000)`): SQLite's message quotes
/// the expression with its line break, which is not among the characters
/// `sqlites_own_constraint_message` keeps, so the failure is told as a
/// trigger's RAISE whose message is hidden.
#[test]
fn a_migration_failing_on_a_check_written_over_two_lines_is_told_as_such() {
    let run = failed_migration(
        "",
        "CREATE TABLE prices (id INTEGER PRIMARY KEY, amount INTEGER CHECK (amount >= 0\n  \
         AND amount < 1000));\n\
         INSERT INTO prices (amount) VALUES (-1);\n",
        &["migrate", "local", "--yes"],
    );
    assert!(
        run.stderr.contains("CHECK constraint failed: amount >= 0")
            && !run.stderr.contains("a trigger's RAISE"),
        "{}",
        run.all()
    );
}
