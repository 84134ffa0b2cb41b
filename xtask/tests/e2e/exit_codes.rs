//! atkQ: the exit codes of README's table ("Exit codes: the same on every
//! command"), bad input and refusals across every command, one table. Each
//! row is a command line and the code the README gives it; the test runs
//! them all and fails listing every row whose code differs, so one run
//! shows every disagreement.
//!
//! Found by it (the rows marked `atkQ`):
//! - `backup local --table <unknown>` is 1, though "no such table" is bad
//!   input refused before the export (2);
//! - `--backup-dir <a regular file>` is 0 for `list` ("No backups in
//!   /etc/passwd"), `prune` and `status --env local` (every environment
//!   shown with no backup), and 1 for `backup` ("is not a directory"): a
//!   path that cannot be the backup directory is bad input (2);
//! - `keygen --out <a directory that does not exist>/key` is 1 (bad input, 2);
//! - `drill` with the backup lock held is 1, not 4, and records a FAIL in
//!   the drill log (docs/restore-drills.md) for a drill that never ran;
//! - `offsite fetch NAME|latest` on a bucket with no index yet is 1 ("no
//!   index ... nothing of ENV has been uploaded to this bucket"), though a NAME missing from an
//!   index is 2 ("no such file").

use crate::common;

use std::fs::File;

use common::remote::*;
use common::*;

/// Runs each row and returns the ones whose code is not the README's.
fn disagreements(run: impl Fn(&[&str]) -> Run, rows: &[(&[&str], i32)]) -> Vec<String> {
    let mut wrong = Vec::new();
    for (args, code) in rows {
        let out = run(args);
        if out.code != Some(*code) {
            let first = out
                .stderr
                .lines()
                .find(|l| l.starts_with("error:"))
                .unwrap_or("")
                .chars()
                .take(200)
                .collect::<String>();
            wrong.push(format!("{args:?}: {:?}, not {code} ({first})", out.code));
        }
    }
    wrong
}

#[test]
fn every_command_gives_the_readmes_code_for_bad_input_refusals_and_a_held_lock() {
    let (sb, name) = sandbox_with_a_backup();
    let name = name.as_str();
    let scratch = tempfile::tempdir().unwrap();
    let a_file = scratch.path().join("a-file");
    std::fs::write(&a_file, "not a directory").unwrap();
    let a_file = a_file.to_str().unwrap();
    let no_dir_key = scratch.path().join("no-such-dir").join("key.txt");
    let no_dir_key = no_dir_key.to_str().unwrap();
    let bookmark = "00000085-0000024c-00004c6d-8e61117bf38d7adb71b934ebbf891683";
    let rows: &[(&[&str], i32)] = &[
        // 2: bad input, a missing file, an unusable configuration.
        (&["backup", "nosuch"], 2),
        (&["backup", "local", "--table", "custmers"], 2), // atkQ: 1
        (&["backup", "local", "--schema-only", "--data-only"], 2),
        (&["restore", "nosuch.sql", "--to", "local"], 2),
        (&["restore", name, "--to", "nosuch"], 2),
        (&["restore", "latest:nosuch", "--to", "local"], 2),
        (&["restore", name, "--to", "new:bad name!"], 2),
        (&["verify", "nosuch.sql"], 2),
        (&["verify", "latest:nosuch"], 2),
        (&["diff", "nosuch.sql", name], 2),
        (&["diff", name, "live:nosuch"], 2),
        (&["list", "--env", "nosuch"], 2),
        (&["prune", "--env", "nosuch"], 2),
        (&["prune", "--keep-within", "6mo"], 2),
        (&["prune", "--keep-within", "6min"], 2),
        (&["upload", "nosuch.sql", "--env", "prod"], 2),
        (&["upload", name, "--env", "nosuch"], 2),
        (&["upload", name, "--env", "local"], 2),
        (&["offsite", "list", "--env", "nosuch"], 2),
        (&["offsite", "fetch", "latest", "--env", "nosuch"], 2),
        (&["migrate", "nosuch"], 2),
        (&["deploy", "nosuch"], 2),
        (&["with-backup", "nosuch", "--", "true"], 2),
        (&["drill", "--to", "nosuch"], 2),
        (&["drill", "--from", "nosuch"], 2),
        (&["drill", "--backup", "nosuch.sql", "--to", "local"], 2),
        (&["time-travel", "info", "nosuch"], 2),
        (&["time-travel", "info", "local"], 2),
        (&["time-travel", "info", "staging", "--at", "garbage"], 2),
        (
            &[
                "time-travel",
                "info",
                "staging",
                "--at",
                "2099-01-01T00:00:00Z",
            ],
            2,
        ),
        (
            &["time-travel", "restore", "staging", "--bookmark", "bad!"],
            2,
        ),
        (&["status", "--env", "nosuch"], 2),
        (&["rehearse", "--from", "nosuch.sql"], 2),
        (&["rehearse", "--from", "latest:nosuch"], 2),
        (&["keygen", "--out", no_dir_key], 2),  // atkQ: 1
        (&["--backup-dir", a_file, "list"], 2), // atkQ: 0
        (&["--backup-dir", a_file, "prune", "--yes"], 2), // atkQ: 0
        (&["--backup-dir", a_file, "status", "--env", "local"], 2), // atkQ: 0
        (&["--backup-dir", a_file, "backup", "local", "--dry-run"], 2), // atkQ: 1
        // 3: a guard's refusal.
        (&["restore", name, "--to", "local"], 3),
        (&["restore", name, "--to", "local", "--replace"], 3),
        (
            &[
                "restore",
                name,
                "--to",
                "prod",
                "--replace",
                "--confirm",
                "wrong",
            ],
            3,
        ),
        (&["drill", "--to", "prod", "--confirm", "qbtime_db_prod"], 3),
    ];
    let mut wrong = disagreements(|args| sb.xtask(args), rows);

    // 4: the backup lock held by another run.
    let lock = File::create(sb.backups().join(".lock")).unwrap();
    lock.try_lock().unwrap();
    let held: &[(&[&str], i32)] = &[
        (&["backup", "local"], 4),
        (&["restore", name, "--to", "local", "--replace", "--yes"], 4),
        (&["with-backup", "local", "--", "true"], 4),
        (&["drill", "--from", "local", "--to", "local", "--yes"], 4), // atkQ: 1
    ];
    wrong.extend(disagreements(|args| sb.xtask(args), held));
    drop(lock);
    let drills =
        std::fs::read_to_string(sb.path().join("docs/restore-drills.md")).unwrap_or_default();
    if drills.contains("FAIL") {
        wrong.push(format!(
            "a drill that the lock stopped is recorded as failed:\n{drills}"
        ));
    }

    // Against the loopback: prod's bucket, with no offsite copy yet.
    let remote = Remote::new("");
    remote.server.add_bucket("qbtime-d1-backups");
    let home = tempfile::tempdir().unwrap();
    let remote_rows: &[(&[&str], i32)] = &[
        (&["offsite", "fetch", "latest", "--env", "prod"], 2), // atkQ: 1
        (
            &[
                "offsite",
                "fetch",
                "backup-prod-20261101-0000.sql",
                "--env",
                "prod",
            ],
            2,
        ), // atkQ: 1
        (
            &["offsite", "lock", "--env", "prod", "--confirm", "wrong"],
            3,
        ),
        (
            &["time-travel", "restore", "staging", "--bookmark", bookmark],
            3,
        ),
        (
            &[
                "time-travel",
                "restore",
                "prod",
                "--bookmark",
                bookmark,
                "--confirm",
                "wrong",
            ],
            3,
        ),
        (&["migrate", "prod", "--check"], 0),
    ];
    wrong.extend(disagreements(
        |args| remote.xtask(home.path(), args),
        remote_rows,
    ));
    assert!(wrong.is_empty(), "codes not the README's: {wrong:#?}");
}

/// Run outside any checkout (no `--config`), every command says it cannot
/// find the repository to act on, and exits 2 as the README's table gives
/// an unusable configuration, not 1 as if it had run and failed: a cron job
/// that `cd`s to the wrong directory is a setup to fix, not a failed backup.
#[test]
fn every_command_run_outside_a_checkout_is_bad_input() {
    wrangler_bin();
    let nowhere = tempfile::tempdir().unwrap();
    let rows: &[(&[&str], i32)] = &[
        (&["backup", "local"], 2),
        (&["restore", "latest", "--to", "local", "--dry-run"], 2),
        (&["verify", "latest"], 2),
        (&["list"], 2),
        (&["status"], 2),
        (&["prune", "--dry-run"], 2),
        (&["doctor"], 2),
        (&["migrate", "local", "--dry-run"], 2),
        (&["drill", "--dry-run"], 2),
    ];
    let run = |args: &[&str]| {
        let out = std::process::Command::new(env!("CARGO_BIN_EXE_xtask"))
            .args(args)
            .current_dir(nowhere.path())
            .env_remove("QBTIME_WRANGLER_CONFIG")
            .env_remove("QBTIME_BACKUP_DIR")
            .output()
            .unwrap();
        let run = Run::from_output(out);
        assert!(
            run.stderr.contains("cannot find the repository to act on"),
            "{args:?}:\n{}",
            run.all()
        );
        run
    };
    let wrong = disagreements(run, rows);
    assert!(wrong.is_empty(), "{}", wrong.join("\n"));
}

/// FF: a run refused at the backup lock named the other run and what to
/// do, but never said what it had left, even after a restore had printed a
/// plan of the tables it would drop. Each run refused there says plainly
/// that nothing was changed; the drill, whose verify has recorded its
/// verdict in the backup's manifest by then, says that instead, and that
/// nothing was restored.
#[test]
fn a_run_refused_at_the_backup_lock_says_what_it_changed() {
    let (sb, name) = sandbox_with_a_backup();
    let stem = name.split(".sql").next().unwrap();
    let manifest = format!("{stem}.manifest.json");
    let lock = hold_backup_lock(&sb, "backup staging");
    let refused = |args: &[&str]| {
        let run = sb.xtask(args);
        assert_eq!(run.code, Some(4), "{args:?}: {}", run.all());
        assert!(
            run.stderr.contains("another backup or restore is running"),
            "{args:?}: {}",
            run.all()
        );
        run
    };
    let restore = ["restore", &name, "--to", "local", "--replace", "--yes"];
    for args in [
        &["backup", "local"][..],
        &restore,
        &["with-backup", "local", "--", "true"],
        &["migrate", "local", "--yes"],
    ] {
        let run = refused(args);
        assert!(
            run.stderr.contains("Nothing was changed."),
            "{args:?}: {}",
            run.all()
        );
    }
    // The plan is read under the lock: none is printed.
    assert!(!refused(&restore).stdout.contains("Restore plan"));
    // The manifest is rewritten by a rename: a new inode is a new write.
    let inode = || {
        use std::os::unix::fs::MetadataExt as _;
        std::fs::metadata(sb.backups().join(&manifest))
            .unwrap()
            .ino()
    };
    let before = inode();
    let run = refused(&["drill", "--from", "local", "--to", "local", "--yes"]);
    assert_ne!(before, inode(), "the drill's verify records its verdict");
    assert!(!run.stderr.contains("Nothing was changed"), "{}", run.all());
    assert!(
        run.stderr.contains(&manifest) && run.stderr.contains("Nothing was restored"),
        "{}",
        run.all()
    );
    drop(lock);
}

/// LE: `-q` and `-v` together are refused (2) wherever each is written:
/// clap checks a conflict between global flags only on one level, so `-q
/// list -v` ran quiet and exited 0.
#[test]
fn quiet_and_verbose_together_are_refused_on_any_level() {
    let sb = Sandbox::new();
    for args in [
        &["-q", "-v", "list"][..],
        &["-q", "list", "-v"],
        &["-v", "list", "-q"],
        &["-v", "backup", "local", "-q"],
        &["list", "-q", "--verbose"],
        &["--quiet", "status", "--verbose"],
    ] {
        let run = sb.xtask(args);
        assert_eq!(run.code, Some(2), "{args:?}: {}", run.all());
        assert!(
            run.stderr.contains("cannot be used with"),
            "{args:?}: {}",
            run.all()
        );
    }
    assert!(!sb.backups().exists(), "nothing ran");
}
