//! rvBB: a review of the session's changes (b5cbe71..e28a647), attacked as
//! a hostile or unlucky user would. Each test here failed when it was
//! written.

use crate::common;

use common::*;

/// prod holds 9007199254740993 (2^53 + 1, a snowflake id just past the
/// line) and -9007199254740993 in a plain INTEGER column. The user ran
/// `cargo xtask backup prod`: D1's export writes each through a JavaScript
/// number, which rounds both to ±9007199254740992 (±2^53, ties to even),
/// and the backup said nothing, recorded no `wide_integers`, and a restore
/// brings back another number with no `ROUNDED?` line. The warning added
/// this session counts only integers whose magnitude is *above* 2^53 in
/// the export, but an export's value of exactly ±2^53 is what the nearest
/// neighbours beyond it round to: it must be counted too. Cause:
/// `crates/d1-core/src/digest.rs` `digest_and_wide` (`v.unsigned_abs() >
/// JS_EXACT`).
#[test]
fn a_remote_backup_that_rounds_2_53_plus_one_to_2_53_says_so() {
    let (remote, home, backup) = crate::generated_shapes::remote_backup_of(
        "CREATE TABLE ids (id INTEGER PRIMARY KEY, snowflake INTEGER);\n\
         INSERT INTO ids VALUES (1, 9007199254740993), (2, -9007199254740993);",
    );
    backup.assert_ok();
    let restore = crate::generated_shapes::restored_to_staging(&remote, home.path());
    let staging = query_file(&remote.staging, "SELECT snowflake FROM ids ORDER BY id");
    let exact = staging
        == vec![
            vec![serde_json::json!(9007199254740993_i64)],
            vec![serde_json::json!(-9007199254740993_i64)],
        ];
    assert!(
        exact
            || backup
                .all()
                .lines()
                .any(|l| l.starts_with("warning:") && l.contains("ids (2)")),
        "staging holds {staging:?} for prod's ±9007199254740993, and the backup did not \
         say so:\n{}",
        backup.all()
    );
    assert!(
        exact
            || restore
                .stdout
                .lines()
                .any(|l| l.contains("ROUNDED?") && l.contains("ids (2)")),
        "the restore's plan does not say the backup may hold rounded integers:\n{}",
        restore.all()
    );
}

/// The operator's TMPDIR is their own 0700 directory, but it sits in a
/// shared scratch directory every user can write to without the sticky bit
/// (`/scratch` mode 777, `TMPDIR=/scratch/alice`), or it is a symbolic
/// link there to a private directory (`/scratch/alice-tmp ->
/// ~/tmp`). Another user can rename `/scratch/alice` (a rename in the same
/// parent needs no right on the directory moved) or replace the link, and
/// put one of their own by its name: every path the tool hands wrangler
/// under TMPDIR then reaches theirs, the attack this session's check was
/// added for, one level up. Both are used today (`diff` exits 0); they must
/// be refused as the shared TMPDIR itself is. Cause:
/// `xtask/src/edge/wrangler.rs` `PrivateDir::create` checks the mode of
/// TMPDIR's target only, not of the directories its path goes through.
#[test]
fn a_tmpdir_inside_a_directory_others_can_write_to_is_refused() {
    use std::os::unix::fs::PermissionsExt as _;
    let (sb, _) = sandbox_with_a_backup();
    let shared = sb.path().join("scratch");
    std::fs::create_dir(&shared).unwrap();
    std::fs::set_permissions(&shared, std::fs::Permissions::from_mode(0o777)).unwrap();
    let mine = shared.join("alice");
    std::fs::create_dir(&mine).unwrap();
    std::fs::set_permissions(&mine, std::fs::Permissions::from_mode(0o700)).unwrap();
    let private = sb.path().join("private-tmp");
    std::fs::create_dir(&private).unwrap();
    std::fs::set_permissions(&private, std::fs::Permissions::from_mode(0o700)).unwrap();
    let link = shared.join("alice-tmp");
    std::os::unix::fs::symlink(&private, &link).unwrap();
    for tmpdir in [&mine, &link] {
        let out = sb
            .xtask_command(&["diff", "latest:local", "live:local"])
            .env("TMPDIR", tmpdir)
            .output()
            .unwrap();
        let run = Run::from_output(out);
        assert_eq!(
            run.code,
            Some(2),
            "TMPDIR={} (in a 777 directory) was used:\n{}",
            tmpdir.display(),
            run.all()
        );
        assert!(run.stderr.contains("TMPDIR"), "{}", run.all());
    }
    // A private directory under a sticky shared one (/tmp/alice) is fine.
    std::fs::set_permissions(&shared, std::fs::Permissions::from_mode(0o1777)).unwrap();
    let out = sb
        .xtask_command(&["diff", "latest:local", "live:local"])
        .env("TMPDIR", &mine)
        .output()
        .unwrap();
    Run::from_output(out).assert_ok();
}

/// A script saves each command's `--json` document to a file on a full
/// disk (`cargo xtask verify … --json > result.json`): the document is lost,
/// so the command must not exit 0 (the session made `list`, `status` and
/// `completions` fail so; this holds it for every command with `--json`).
#[test]
fn every_json_document_lost_to_a_full_disk_is_not_exit_zero() {
    let (sb, name) = sandbox_with_a_backup();
    let file = sb.backups().join(&name);
    let file = file.to_str().unwrap();
    let commands: Vec<Vec<&str>> = vec![
        vec!["verify", file, "--json"],
        vec!["backup", "local", "--json"],
        vec!["backup", "local", "--dry-run", "--json"],
        vec![
            "restore",
            file,
            "--to",
            "local",
            "--replace",
            "--yes",
            "--json",
        ],
        vec![
            "restore",
            file,
            "--to",
            "local",
            "--replace",
            "--dry-run",
            "--json",
        ],
        vec!["prune", "--env", "local", "--dry-run", "--json"],
        vec!["doctor", "--json"],
        vec!["migrate", "local", "--yes", "--json"],
    ];
    for args in commands {
        let full = std::fs::OpenOptions::new()
            .write(true)
            .open("/dev/full")
            .expect("/dev/full");
        let out = sb.xtask_command(&args).stdout(full).output().unwrap();
        let run = Run::from_output(out);
        assert!(
            !run.ok,
            "`{}` > /dev/full exited 0 with its document lost:\n{}",
            args.join(" "),
            run.all()
        );
        assert!(
            run.stderr.contains("could not write the output to stdout"),
            "`{}` > /dev/full did not say its document was lost:\n{}",
            args.join(" "),
            run.all()
        );
        assert!(!run.all().contains("panicked"), "{}", run.all());
    }
}

/// The project's migration seeds a cycle of rows under deferred foreign
/// keys (`ring_a` and `ring_b`, each row pointing at the other), which D1
/// runs as one all-or-nothing query and accepts; the session made the
/// in-memory replay of migrations run each in one transaction, as D1
/// does. `cargo xtask rehearse --from empty` (the default before any prod
/// backup) builds its prod from the same migrations another way, one
/// statement at a time, so each deferred key is checked at once: the
/// rehearsal must not fail on a migration D1 applied. Cause:
/// `xtask/src/commands/rehearse.rs` `load_prod` (`From::Empty`,
/// `conn.execute_batch(&sql)` outside a transaction).
#[test]
fn a_rehearsal_from_empty_runs_a_migration_seeding_rows_with_deferred_foreign_keys() {
    let sb = crate::generated_shapes::sandbox_with_a_seeded_ring();
    let run = sb.xtask(&["rehearse", "--from", "empty"]);
    assert!(
        !run.all().contains("applying 0005_ring.sql")
            && !run.all().contains("FOREIGN KEY constraint failed"),
        "the rehearsal could not build prod from a migration D1 applied:\n{}",
        run.all()
    );
}

/// A script runs `cargo xtask backup local --json > result.json` (or
/// `restore … --json`) on a full disk. The backup is written and verified
/// (or the database restored), then the command exits 1 with "could not
/// write the output to stdout …: what it holds is incomplete; … run the
/// command again": the operator, or the script, takes the backup (or the
/// restore) for failed, and running it again takes a second backup (or a
/// second restore with its own safety backup). The message must say that
/// the command's work was done and stays, only its output was lost, and
/// not send the operator to repeat it. Cause: `xtask/src/main.rs`
/// `stdout_lost_message`, one text for every command.
#[test]
fn output_lost_after_a_backup_that_was_written_does_not_say_to_take_it_again() {
    let (sb, _) = sandbox_with_a_backup();
    let before = sb.backup_files();
    let full = std::fs::OpenOptions::new()
        .write(true)
        .open("/dev/full")
        .expect("/dev/full");
    let out = sb
        .xtask_command(&["backup", "local", "--json"])
        .stdout(full)
        .output()
        .unwrap();
    let run = Run::from_output(out);
    assert!(!run.ok, "{}", run.all());
    assert!(
        sb.backup_files().len() > before.len(),
        "the backup was not written:\n{}",
        run.all()
    );
    assert!(
        !run.stderr.contains("run the command again"),
        "the backup was written and verified, and the error sends the operator to take \
         it again:\n{}",
        run.all()
    );
}

/// A nightly job runs `cargo xtask verify BACKUP --json > verdict.json`
/// on a full disk, and the backup is BAD (exit 1). The verdict document
/// is lost and nothing says so: stderr holds the checks' lines alone, the
/// exit is the BAD one, and the script that then reads verdict.json to
/// say which check failed finds it empty. The output lost must be said
/// whatever the command's own exit (which is kept). Cause:
/// `xtask/src/main.rs` `main`, which looks at `out::stdout_lost` only
/// when the command succeeded.
#[test]
fn a_bad_verdict_lost_to_a_full_disk_is_said() {
    let (sb, name) = sandbox_with_a_backup();
    let path = sb.backups().join(&name);
    let mut text = std::fs::read_to_string(&path).unwrap();
    text.push_str("\nINSERT INTO nowhere VALUES (1);\n");
    std::fs::write(&path, text).unwrap();
    let full = std::fs::OpenOptions::new()
        .write(true)
        .open("/dev/full")
        .expect("/dev/full");
    let out = sb
        .xtask_command(&["verify", path.to_str().unwrap(), "--json"])
        .stdout(full)
        .output()
        .unwrap();
    let run = Run::from_output(out);
    assert_eq!(run.code, Some(1), "the BAD verdict's exit:\n{}", run.all());
    assert!(
        run.stderr.contains("could not write the output to stdout"),
        "the verdict document was lost and nothing said so:\n{}",
        run.all()
    );
}
