//! Findings of rvAK, a review of the fixes since 3604300: (1) a trigger's
//! RAISE message still reaches the output when the row value it quotes
//! holds a blank line (the message is cut at the last `\n\n` before
//! `: SQLITE_CONSTRAINT`), or at `-v` when it holds any line break (each
//! line is filtered alone); (2) an upload under a bucket lock keeps, as
//! its own, a manifest someone else put under its key that names the same
//! backup file but says other things about it.

use crate::common;

use common::remote::*;
use common::*;

/// A migration whose guard trigger refuses a row with a message that
/// quotes the row's value (`RAISE(ABORT, 'invalid email: ' ||
/// NEW.email)`), where the value holds the line breaks `value_breaks`: what
/// `migrate local` prints with `flags` first.
fn failed_migration_quoting(value_breaks: &str, flags: &[&str]) -> Run {
    let sb = Sandbox::new();
    sb.apply_migrations();
    sb.execute_sql(&format!(
        "INSERT INTO accounts (email, display_name, password_hash) \
         VALUES ('jane.doe.ssn-078-05-1120@examplecom' || {value_breaks} || 'see notes', \
         'Jane Doe', 'x');"
    ));
    std::fs::write(
        sb.path().join("migrations/0005_email_guard.sql"),
        "CREATE TRIGGER accounts_email_guard BEFORE UPDATE ON accounts\n\
         WHEN NEW.email NOT LIKE '%@%.%'\n\
         BEGIN SELECT RAISE(ABORT, 'invalid email: ' || NEW.email); END;\n\
         UPDATE accounts SET email = trim(email);\n",
    )
    .unwrap();
    let mut args = flags.to_vec();
    args.extend(["migrate", "local", "--yes"]);
    let run = sb.xtask(&args);
    assert_eq!(run.code, Some(1), "the migration fails:\n{}", run.all());
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
    assert!(
        !run.all().contains("078-05-1120"),
        "a row value reached a message:\n{}",
        run.all()
    );
}

/// At `-v` wrangler's lines are shown as they come, each filtered alone
/// (`edge/wrangler.rs` `keep_lines`): the first line of a RAISE message
/// over two lines has no `: SQLITE_CONSTRAINT`, so it is shown whole.
#[test]
fn a_raise_message_over_two_lines_is_never_printed_at_verbose() {
    let run = failed_migration_quoting("char(10)", &["-v"]);
    assert!(
        !run.all().contains("078-05-1120"),
        "a row value reached a message:\n{}",
        run.all()
    );
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
    remote.server.add_bucket(bucket);
    let name = remote.backup_prod(home.path());
    remote
        .xtask(
            home.path(),
            &[
                "offsite",
                "lock",
                "--env",
                "prod",
                "--confirm",
                "qbtime_db_prod",
            ],
        )
        .assert_ok();
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
