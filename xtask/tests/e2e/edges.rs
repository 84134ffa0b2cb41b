//! atkBQ: a tired operator and an attacker at the edges: where stdout
//! goes, and what a wrangler configuration may hold beyond its names.

use crate::common::decoys::Decoys;
use crate::common::*;

/// A fake token in the environment: it must never reach the output.
const CANARY: &str = "qbtimeCanaryToken0123456789abcdefABCDEF";

/// The xtask run with its stdout on a full disk (`> /dev/full`), the
/// canary token in its environment.
fn to_a_full_disk(sb: &Sandbox, args: &[&str]) -> Run {
    let full = std::fs::OpenOptions::new()
        .write(true)
        .open("/dev/full")
        .expect("/dev/full");
    let out = sb
        .xtask_command(args)
        .env("CLOUDFLARE_API_TOKEN", CANARY)
        .stdout(full)
        .output()
        .unwrap();
    Run::from_output(out)
}

/// The operator saves what they asked for: `cargo xtask list --json >
/// backups.json` (or `status --json`, or `completions bash >
/// ~/.bash_completion.d/xtask`) on a disk that is full. Every write to
/// stdout fails with ENOSPC, the file is left empty, and the command
/// exited 0 saying nothing: a script or cron job takes the empty file for
/// the answer. The output a command was asked for that could not be
/// written must end the command with an error naming stdout, not 0 (a
/// closed pipe, `| head -1`, stays 0). Cause: `out.rs` `write_redacted`
/// drops every write error on stdout (`let _ = writeln!(…)`), and `main`
/// drops the completions script's (`let _ = write_all(…)`).
#[test]
fn the_output_asked_for_that_meets_a_full_disk_is_not_exit_zero() {
    let (sb, _) = sandbox_with_a_backup();
    let decoys = Decoys::plant(sb.path());
    let before = decoys.hashes();
    for args in [
        &["list"][..],
        &["list", "--json"],
        &["status", "--env", "local", "--json"],
        &["completions", "bash"],
    ] {
        let run = to_a_full_disk(&sb, args);
        assert!(
            !run.ok,
            "`{}` > /dev/full exited 0 with its output lost:\n{}",
            args.join(" "),
            run.all()
        );
        assert!(
            run.stderr.contains("stdout"),
            "`{}` > /dev/full must say the output could not be written:\n{}",
            args.join(" "),
            run.all()
        );
        assert!(!run.all().contains("panicked"), "{}", run.all());
        assert!(!run.all().contains(CANARY), "{}", run.all());
    }
    // A closed pipe is still no failure: `list | head -1`.
    let mut child = sb
        .xtask_command(&["list"])
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    drop(child.stdout.take());
    assert!(child.wait().unwrap().success(), "a closed pipe fails list");
    assert_eq!(decoys.hashes(), before);
}

/// The operator pastes a `database_id` with a line break in it
/// (`database_id = "…\n--remote"`, a copy from a terminal that wrapped).
/// Names are checked as the configuration is read, ids are not:
/// `backup local` writes the backup and its manifest, prints `Result:
/// GOOD`, then fails (exit 2) on its own manifest ("cannot be trusted: its
/// database.uuid holds a control … character … this tool writes none
/// there. Nothing was done"), which is false twice: the tool wrote it,
/// and two files stay in backups/ that every later `status` and `list`
/// warns about. The configuration must be refused before anything is
/// written, naming database_id, as a bad database_name is. Cause:
/// `config/environment.rs` `databases` checks `database_name`, the
/// binding and `migrations_dir`, never `database_id` or
/// `preview_database_id`.
#[test]
fn a_database_id_with_a_line_break_is_refused_before_a_backup_is_written() {
    let (sb, _) = sandbox_with_a_backup();
    let decoys = Decoys::plant(sb.path());
    let before = decoys.hashes();
    let files_before = sb.backup_files();
    let config = sb.path().join("wrangler.toml");
    let text = std::fs::read_to_string(&config).unwrap();
    let local_id = "database_id = \"00000000-0000-4000-8000-000000000000\"";
    assert!(text.contains(local_id));
    for planted in [
        "database_id = \"00000000-0000-4000-8000-000000000000\\n--remote\"",
        "database_id = \"00000000-0000-4000-8000-000000000000\"\npreview_database_id = \"a\\u001b[2Jb\"",
    ] {
        std::fs::write(&config, text.replace(local_id, planted)).unwrap();
        let run = sb.xtask(&["backup", "local"]);
        assert_eq!(run.code, Some(2), "{}", run.all());
        assert!(run.stderr.contains("database_id"), "{}", run.all());
        assert!(!run.all().contains("Result: GOOD"), "{}", run.all());
        assert_eq!(
            sb.backup_files(),
            files_before,
            "a refused configuration left files in backups/:\n{}",
            run.all()
        );
        let status = sb.xtask(&["status", "--env", "local"]);
        assert!(
            !status.all().contains("cannot be trusted"),
            "{}",
            status.all()
        );
    }
    assert_eq!(decoys.hashes(), before);
}

/// A `.sql.zst` of a few hundred kilobytes that unpacks to gigabytes of one
/// valid INSERT, after a table for it: a dump verify surveys for many
/// seconds before it loads a row.
fn zstd_of_one_insert_repeated(path: &std::path::Path) {
    use std::io::Write as _;
    let line = b"INSERT INTO \"t\" VALUES('aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa');\n";
    let chunk: Vec<u8> = line.repeat((1 << 20) / line.len());
    let frame = zstd::encode_all(&chunk[..], 3).unwrap();
    let mut file = std::fs::File::create(path).unwrap();
    file.write_all(
        &zstd::encode_all(
            &b"PRAGMA defer_foreign_keys=TRUE;\nCREATE TABLE t(x TEXT);\n"[..],
            3,
        )
        .unwrap(),
    )
    .unwrap();
    for _ in 0..4000 {
        file.write_all(&frame).unwrap();
    }
}

/// The operator runs `verify FILE --no-manifest` on a large dump and
/// presses Ctrl-C while it is still being read (the survey, before the
/// load). It exits 130, but first prints `Result: BAD: corrupt or does
/// not match its manifest` and `error: FILE is BAD: statements: the dump
/// cannot be read: … interrupted by SIGINT`: a verdict on a file nothing
/// was found wrong with, which an operator throws away. Stopped during
/// the load, or with a manifest, the same Ctrl-C says "the verification
/// could not run". It must say that here too, and no verdict. Cause:
/// `steps/verify.rs` `verify_file`: an error of `survey_unless` (and of
/// `survey_data_only_export`) is always a failed `statements` check,
/// where `load` passes on one that `stops_verification`.
#[test]
fn ctrl_c_while_verify_reads_a_dump_without_a_manifest_is_no_verdict() {
    let sb = Sandbox::new();
    let decoys = Decoys::plant(sb.path());
    let before = decoys.hashes();
    let bomb = sb.path().join("big.sql.zst");
    zstd_of_one_insert_repeated(&bomb);
    assert!(std::fs::metadata(&bomb).unwrap().len() < 2_000_000);
    let child = sb
        .xtask_command(&["verify", "--no-manifest", bomb.to_str().unwrap()])
        .env("CLOUDFLARE_API_TOKEN", CANARY)
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    // Seconds into a survey of gigabytes.
    std::thread::sleep(std::time::Duration::from_millis(1500));
    // SAFETY: kill(2) on our own child, which has not been waited for.
    unsafe {
        libc::kill(child.id() as libc::pid_t, libc::SIGINT);
    }
    let started = std::time::Instant::now();
    let run = Run::from_output(child.wait_with_output().unwrap());
    assert!(
        started.elapsed() < std::time::Duration::from_secs(10),
        "verify went on {:?} after Ctrl-C",
        started.elapsed()
    );
    assert_eq!(run.code, Some(130), "{}", run.all());
    assert!(run.all().contains("could not run"), "{}", run.all());
    assert!(!run.all().contains("Result: BAD"), "{}", run.all());
    assert!(!run.all().contains("is BAD"), "{}", run.all());
    assert!(!run.all().contains(CANARY), "{}", run.all());
    assert_eq!(decoys.hashes(), before);
}

/// rvAP: a TMPDIR the tool refuses "before anything runs" (here one
/// others can write to without the sticky bit) was written to first:
/// every run sweeps the private directories earlier runs that were killed
/// left there, and the sweep ran before the check. Checked first, a
/// refused TMPDIR is left as it is: the directory a killed run left there
/// is still there after the refusal, and swept once TMPDIR is fine.
#[test]
fn a_refused_tmpdir_is_not_swept_before_it_is_refused() {
    use std::os::unix::fs::PermissionsExt as _;
    let (sb, _) = sandbox_with_a_backup();
    let shared = sb.path().join("shared-tmp");
    std::fs::create_dir(&shared).unwrap();
    std::fs::set_permissions(&shared, std::fs::Permissions::from_mode(0o777)).unwrap();
    let mut gone = std::process::Command::new("true").spawn().unwrap();
    let pid = gone.id();
    gone.wait().unwrap();
    let left = shared.join(format!("qbtime-xtask-diff-{pid}-0-1"));
    std::fs::create_dir(&left).unwrap();
    let diff = ["diff", "latest:local", "live:local"];
    let out = sb
        .xtask_command(&diff)
        .env("TMPDIR", &shared)
        .output()
        .unwrap();
    let run = Run::from_output(out);
    assert_eq!(run.code, Some(2), "{}", run.all());
    assert!(run.stderr.contains("TMPDIR"), "{}", run.all());
    assert!(
        left.is_dir(),
        "the refused TMPDIR was swept:\n{}",
        run.all()
    );
    std::fs::set_permissions(&shared, std::fs::Permissions::from_mode(0o1777)).unwrap();
    let out = sb
        .xtask_command(&diff)
        .env("TMPDIR", &shared)
        .output()
        .unwrap();
    Run::from_output(out).assert_ok();
    assert!(!left.exists(), "a TMPDIR that is fine was not swept");
}

/// The operator's TMPDIR is a directory every user can write to without
/// the sticky bit (`chmod 777`, a shared scratch directory). The tool puts
/// what it hands wrangler by name in a 0700 directory of its own there
/// (the repaired SQL of a restore, `wrangler d1 execute --file`; a remote
/// export; wrangler's logs, which hold signed URLs), and counts on nobody
/// being able to enter it. But in such a parent another user can rename
/// that directory away and make one of the same name holding what they
/// like (checked by hand: `nobody` renamed a root 0700
/// `qbtime-xtask-restore-1` and planted `restore-local.sql` in its
/// place), so wrangler would execute their SQL past the SQL gate, or
/// export the database into their directory. The tool runs there today
/// (`diff` and `restore --via-wrangler` exit 0); it must refuse such a
/// TMPDIR before anything runs, naming it, as it refuses a backup
/// directory others can write to. Cause: `edge/wrangler.rs`
/// `PrivateDir::create` checks only that the temporary directory is an
/// absolute path that exists.
#[test]
fn a_tmpdir_others_can_write_to_without_the_sticky_bit_is_refused() {
    use std::os::unix::fs::PermissionsExt as _;
    let (sb, _) = sandbox_with_a_backup();
    let decoys = Decoys::plant(sb.path());
    let before = decoys.hashes();
    let shared = sb.path().join("shared-tmp");
    std::fs::create_dir(&shared).unwrap();
    std::fs::set_permissions(&shared, std::fs::Permissions::from_mode(0o777)).unwrap();
    let rows = sb.live_row_counts();
    for args in [
        &["diff", "latest:local", "live:local"][..],
        &[
            "restore",
            "latest:local",
            "--to",
            "local",
            "--replace",
            "--yes",
            "--via-wrangler",
        ],
    ] {
        let out = sb
            .xtask_command(args)
            .env("TMPDIR", &shared)
            .env("CLOUDFLARE_API_TOKEN", CANARY)
            .output()
            .unwrap();
        let run = Run::from_output(out);
        assert_eq!(run.code, Some(2), "`{}`:\n{}", args.join(" "), run.all());
        assert!(run.stderr.contains("TMPDIR"), "{}", run.all());
        assert!(!run.all().contains(CANARY), "{}", run.all());
    }
    assert_eq!(sb.live_row_counts(), rows);
    // The sticky bit (as /tmp has) keeps others from renaming what is not
    // theirs: that TMPDIR is fine.
    std::fs::set_permissions(&shared, std::fs::Permissions::from_mode(0o1777)).unwrap();
    let out = sb
        .xtask_command(&["diff", "latest:local", "live:local"])
        .env("TMPDIR", &shared)
        .output()
        .unwrap();
    Run::from_output(out).assert_ok();
    assert_eq!(decoys.hashes(), before);
}

/// rvBI 5: a TMPDIR that is a symbolic link (macOS's `/tmp`, a link to a
/// bigger disk) made a restore of a dump without a manifest refuse it, "first loaded into a
/// scratch database, which refused it", blaming "the local D1 state"
/// and advising `rm` of the operator's TMPDIR link: the scratch
/// database's path was walked up for links as the local D1's is, to `/`.
/// The scratch lives in a 0700 directory of the tool's own; where TMPDIR
/// leads is the operator's choice, as verify and backup already take it.
#[test]
fn a_tmpdir_that_is_a_symbolic_link_is_used_for_a_restores_trial_load() {
    let (sb, name) = sandbox_with_a_backup();
    let decoys = Decoys::plant(sb.path());
    let before = decoys.hashes();
    let real = sb.path().join("real-tmp");
    std::fs::create_dir(&real).unwrap();
    let link = sb.path().join("tmp-link");
    std::os::unix::fs::symlink(&real, &link).unwrap();
    // A dump without a manifest (a view more than the local D1 holds):
    // a safety backup is taken, so the dump is loaded on trial first.
    let dump = sb.path().join("hand.sql");
    let mut sql = std::fs::read_to_string(sb.backups().join(&name)).unwrap();
    sql.push_str("CREATE VIEW v AS SELECT * FROM accounts;\n");
    std::fs::write(&dump, sql).unwrap();
    let args = [
        "restore",
        dump.to_str().unwrap(),
        "--to",
        "local",
        "--replace",
        "--no-manifest",
        "--yes",
    ];
    let out = sb
        .xtask_command(&args)
        .env("TMPDIR", &link)
        .output()
        .unwrap();
    let run = Run::from_output(out);
    run.assert_ok();
    assert!(!run.all().contains("symbolic link"), "{}", run.all());
    assert!(link.exists(), "the operator's TMPDIR link was removed");
    assert_eq!(decoys.hashes(), before);
}
