//! What a tired operator ran into on a local D1 (rvO's review): each test
//! is one of the things it found, run as the operator ran it. On a local D1
//! of a million and a half rows, a step that runs for many seconds says how
//! it is getting on, and an interrupted restore says what the operator
//! needs to know: whether anything was restored.

use crate::common;

use common::*;

use std::io::{BufRead, BufReader};
use std::os::fd::FromRawFd;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

/// Waits (at most a minute) for `file` to exist.
fn wait_for(file: &Path) {
    let deadline = Instant::now() + Duration::from_secs(60);
    while !file.exists() {
        assert!(
            Instant::now() < deadline,
            "{} never appeared",
            file.display()
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// Whether the backup lock is released clean: nobody holds it, and its
/// file says no holder.
fn assert_lock_released(sb: &Sandbox) {
    let lock = std::fs::File::open(sb.backups().join(".lock")).unwrap();
    lock.try_lock().expect("the backup lock is still held");
    let text = std::fs::read_to_string(sb.backups().join(".lock")).unwrap();
    assert_eq!(text.trim(), "", "the lock was not released clean");
}

/// `with-backup local -- CMD` holds the backup lock from before its
/// backup until CMD ends: a restore started meanwhile in another shell is
/// refused (exit 4), naming with-backup and its pid, and the database is
/// untouched. CMD's own `list` runs; its own `backup local`, which takes
/// the lock, is refused saying with-backup holds it for the command it
/// runs. The lock is released once CMD ends.
#[test]
fn with_backup_holds_the_backup_lock_until_its_command_ends() {
    let sb = Sandbox::new();
    sb.apply_migrations();
    sb.execute_sql("INSERT INTO companies (name) VALUES ('Before');");
    // Waits a minute at most for `go`: a failed test leaves nothing running.
    let script = "touch running; i=0; while [ ! -e go ] && [ $i -lt 600 ]; do sleep 0.1; \
                  i=$((i+1)); done; \
                  \"$XT\" list >/dev/null; echo list=$?; \
                  \"$XT\" backup local 2>nested.err; echo backup=$?";
    let mut cmd = sb.xtask_command(&["with-backup", "local", "--", "sh", "-c", script]);
    let child = cmd
        .env("XT", env!("CARGO_BIN_EXE_xtask"))
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let pid = child.id();
    wait_for(&sb.path().join("running"));
    // Changed by the bulk operation after its backup: a restore would lose it.
    sb.execute_sql("INSERT INTO companies (name) VALUES ('During');");
    let restore = sb.xtask(&["restore", "latest", "--to", "local", "--replace", "--yes"]);
    assert_eq!(restore.code, Some(4), "{}", restore.all());
    assert!(
        restore
            .stderr
            .contains(&format!("pid {pid} (`with-backup local`")),
        "{}",
        restore.all()
    );
    for refused in [
        &["migrate", "local", "--yes"][..],
        &["backup", "local"],
        &["prune", "--yes"],
    ] {
        let run = sb.xtask(refused);
        assert_eq!(run.code, Some(4), "{refused:?}: {}", run.all());
    }
    let names = sb.query("SELECT name FROM companies ORDER BY name");
    assert!(
        names[0].iter().any(|r| r["name"] == "During"),
        "the database was changed under with-backup: {names:?}"
    );
    std::fs::write(sb.path().join("go"), "").unwrap();
    let run = Run::from_output(child.wait_with_output().unwrap());
    run.assert_ok();
    assert!(run.stdout.contains("list=0"), "{}", run.all());
    assert!(run.stdout.contains("backup=4"), "{}", run.all());
    let nested = std::fs::read_to_string(sb.path().join("nested.err")).unwrap();
    assert!(
        nested.contains("`with-backup local`") && nested.contains("run it before or after"),
        "{nested}"
    );
    assert_eq!(sql_backups(&sb).len(), 1, "{:?}", sql_backups(&sb));
    assert_lock_released(&sb);
    sb.xtask(&["backup", "local"]).assert_ok();
}

/// The lock with-backup holds is released when its command fails, and
/// when a SIGINT stops it.
#[test]
fn with_backup_releases_the_backup_lock_when_its_command_fails_or_is_interrupted() {
    let sb = Sandbox::new();
    sb.apply_migrations();
    let run = sb.xtask(&["with-backup", "local", "--", "sh", "-c", "exit 3"]);
    assert_eq!(run.code, Some(3), "{}", run.all());
    assert_lock_released(&sb);
    let run = with_backup_interrupted_in_its_command(&sb);
    assert_eq!(run.code, Some(130), "{}", run.all());
    assert_lock_released(&sb);
    sb.xtask(&["restore", "latest", "--to", "local", "--replace", "--yes"])
        .assert_ok();
}

/// A backup directory on a read-only file system (`--backup-dir /ro
/// backup local`) is told as such, with the fix: a writable directory
/// given with --backup-dir, or the directory made writable. Exit 2, as a
/// backup directory that is a file; nothing is written there. (A run as
/// root writes through `chmod 555`: the directory is mounted read-only
/// instead, in a user namespace of its own.)
#[test]
fn a_read_only_backup_directory_is_told_with_its_fix() {
    let sb = Sandbox::new();
    sb.apply_migrations();
    let ro = tempfile::tempdir().unwrap();
    let Some(cmd) = xtask_with_mounted(ro.path(), Mounted::ReadOnly) else {
        return;
    };
    let dir = ro.path().display().to_string();
    let run = Run::from_output(
        sb.sandboxed(cmd, &["--backup-dir", &dir, "backup", "local"])
            .output()
            .unwrap(),
    );
    assert_eq!(run.code, Some(2), "{}", run.all());
    assert!(
        run.stderr.contains("read-only")
            && run.stderr.contains("--backup-dir")
            && run.stderr.contains("Nothing was done"),
        "{}",
        run.all()
    );
    assert_eq!(std::fs::read_dir(ro.path()).unwrap().count(), 0);
}

/// `migrate local` without a terminal and without --yes is refused even
/// with nothing pending (a command line that passes today must not be
/// refused the day a migration is pending), and the refusal says so, and
/// how to see what is pending, rather than read as if there were
/// something to apply.
#[test]
fn a_migrate_refused_for_its_confirmation_says_it_asks_with_nothing_pending_too() {
    let sb = Sandbox::new();
    sb.apply_migrations();
    let run = sb.xtask(&["migrate", "local"]);
    assert_eq!(run.code, Some(3), "{}", run.all());
    assert!(
        run.stderr.contains("whether or not a migration is pending")
            && run.stderr.contains("`cargo xtask migrate local --dry-run`"),
        "{}",
        run.all()
    );
    assert!(!sb.backups().exists(), "refused before the backup lock");
}

/// `migrate local --check` names the backup whose record it compares with
/// as the newest verified one, not the oldest its record dates from; and
/// an applied migration whose file is gone, which no backup records (it
/// was applied after the last backup), is told as recorded in the
/// database's d1_migrations alone, not in a backup that predates it.
#[test]
fn migrate_check_names_the_backups_that_hold_the_record() {
    let sb = Sandbox::new();
    sb.apply_migrations();
    sb.xtask(&["backup", "local"]).assert_ok();
    let oldest = only_backup(&sb);
    sb.xtask(&["backup", "local"]).assert_ok();
    let newest = sql_backups(&sb).into_iter().find(|b| *b != oldest).unwrap();
    let check = sb.xtask(&["migrate", "local", "--check"]);
    check.assert_ok();
    assert!(check.stdout.contains(&newest), "{}", check.all());

    let fifth = sb.path().join("migrations/0005_notes.sql");
    std::fs::write(&fifth, "CREATE TABLE notes (id INTEGER PRIMARY KEY);\n").unwrap();
    sb.xtask(&["migrate", "local", "--yes"]).assert_ok();
    std::fs::remove_file(&fifth).unwrap();
    let check = sb.xtask(&["migrate", "local", "--check"]);
    assert_eq!(check.code, Some(1), "{}", check.all());
    assert!(
        check
            .stderr
            .contains("applied (recorded in qbtime_db_local's d1_migrations) is not in"),
        "{}",
        check.all()
    );
}

/// A local D1 with a table of a million and a half short rows: enough that
/// verifying or loading a backup of it runs past the first progress line
/// (printed after five seconds).
fn big_local() -> Sandbox {
    local_of(1_500_000)
}

/// A local D1 with a table of `rows` short rows.
fn local_of(rows: u64) -> Sandbox {
    let sb = Sandbox::new();
    sb.apply_migrations();
    sb.execute_sql(&format!(
        "CREATE TABLE notes (id INTEGER PRIMARY KEY, body TEXT NOT NULL);
         WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM c WHERE x < {rows})
         INSERT INTO notes SELECT x, 'n' || x FROM c;"
    ));
    sb
}

/// Runs `cmd` with its stdout and stderr in one pipe, in the order it
/// wrote them; once a line contains `interrupt_at` (when given), sends it
/// one SIGINT. Returns its exit code and all it printed. Killed, and the
/// test failed, when it runs on a minute after the signal (or ten minutes
/// in all).
fn merged(mut cmd: Command, interrupt_at: Option<&str>) -> (Option<i32>, String) {
    let mut fds = [0; 2];
    // SAFETY: pipe(2) fills both descriptors, each owned by one File.
    assert_eq!(unsafe { libc::pipe(fds.as_mut_ptr()) }, 0);
    let (read, write) = unsafe {
        (
            std::fs::File::from_raw_fd(fds[0]),
            std::fs::File::from_raw_fd(fds[1]),
        )
    };
    cmd.stdout(Stdio::from(write.try_clone().unwrap()))
        .stderr(Stdio::from(write));
    let mut child = cmd.spawn().unwrap();
    // The write end is held by the child alone from here: its end is EOF.
    drop(cmd);
    let pid = child.id() as libc::pid_t;
    let needle = interrupt_at.map(str::to_owned);
    let reader = std::thread::spawn(move || {
        let mut seen = String::new();
        let mut sent = false;
        for line in BufReader::new(read).lines() {
            let Ok(line) = line else { break };
            seen.push_str(&line);
            seen.push('\n');
            if !sent && needle.as_deref().is_some_and(|n| line.contains(n)) {
                // SAFETY: kill(2) on our own child, not yet waited for.
                unsafe { libc::kill(pid, libc::SIGINT) };
                sent = true;
            }
        }
        seen
    });
    let Some(status) = ended_within(&mut child, Duration::from_secs(600)) else {
        panic!("still running after ten minutes");
    };
    (status.code(), reader.join().unwrap())
}

/// rvO 1: `drill --to local --from local --yes` without a terminal verified
/// its backup for 35 s with no progress line at all: the plan, then
/// `Verified … Result: GOOD (35.1 s)`. Its verification prints the
/// `… verifying (5 s)` lines that `verify` and `backup` print, before the
/// drill goes on to restore (its safety backup).
#[test]
fn a_local_drills_long_verification_prints_progress_lines() {
    let sb = big_local();
    sb.xtask(&["backup", "local"]).assert_ok();
    let drill = sb.xtask_command(&["drill", "--from", "local", "--to", "local", "--yes"]);
    let (code, all) = merged(drill, None);
    assert_eq!(code, Some(0), "{all}");
    let restore_starts = all
        .find("Taking a safety backup")
        .expect("the drill's restore takes a safety backup");
    let own = &all[..restore_starts];
    // A progress line is due once a step has run five seconds: a
    // verification that took longer printed one.
    if verified_for(own) >= 6.0 {
        assert!(
            own.lines()
                .any(|l| l.starts_with("  … verifying") && l.contains(" s)")),
            "the drill's own verification printed no progress line:\n{all}"
        );
    }
}

/// How long the first verification `text` reports took, in seconds, from
/// its `Result: GOOD (N s)` line.
fn verified_for(text: &str) -> f64 {
    let line = { text.lines() }
        .find(|l| l.starts_with("Result: GOOD ("))
        .unwrap_or_else(|| panic!("no verification verdict:\n{text}"));
    let secs = line["Result: GOOD (".len()..].trim_end_matches(" s)");
    secs.parse().unwrap_or_else(|_| panic!("{line:?}"))
}

/// rvO 2: after its last statement is loaded, a verification's checks
/// (integrity, foreign keys, content digests) ran for many seconds under a
/// line that said `1500028 of 1500030 statements, …, about 0 s left`. A
/// progress line never says `about 0 s left`.
#[test]
fn no_progress_line_says_about_0_s_left() {
    // Twice the rows: a verification past five seconds on a fast machine.
    let sb = local_of(3_000_000);
    let (code, all) = merged(sb.xtask_command(&["backup", "local"]), None);
    assert_eq!(code, Some(0), "{all}");
    let name = only_backup(&sb);
    let (code, verified) = merged(sb.xtask_command(&["verify", &name]), None);
    assert_eq!(code, Some(0), "{verified}");
    for text in [&all, &verified] {
        // A progress line is due once a step has run five seconds.
        if verified_for(text) >= 6.0 {
            assert!(
                text.lines().any(|l| l.starts_with("  … verifying")),
                "no progress line at all:\n{text}"
            );
        }
        assert!(
            !text.contains("about 0 s left"),
            "a progress line says 0 s are left while the checks run on:\n{text}"
        );
    }
}

/// rvO 3: Ctrl-C while a local restore loaded its rows said only
/// "stopped, and removed what was unfinished; the next run starts clean";
/// during its safety backup, only that the safety backup's verification did
/// not finish. The load is one transaction: the operator is told that
/// nothing was restored and the database is as it was, and it is.
#[test]
fn ctrl_c_during_a_local_restore_says_nothing_was_restored() {
    let sb = big_local();
    sb.xtask(&["backup", "local"]).assert_ok();
    let name = only_backup(&sb);
    sb.execute_sql("DELETE FROM notes WHERE id <= 10;");
    let before = sb.live_row_counts();
    let restore = ["restore", &name, "--to", "local", "--replace", "--yes"];
    let verbose = [&["-v"][..], &restore].concat();
    for (at, what, args) in [
        // The safety backup's line is the last before the load.
        ("Safety backup ", "its load", &restore[..]),
        // Its block, file then verification, is printed with -v.
        (
            "Backup written: ",
            "its safety backup's verification",
            &verbose,
        ),
    ] {
        let restore = sb.xtask_command(args);
        let (code, all) = merged(restore, Some(at));
        assert_eq!(code, Some(130), "interrupted during {what}:\n{all}");
        assert!(
            all.contains("nothing was restored") && all.contains("as it was"),
            "interrupted during {what}, the message does not say nothing was restored:\n{all}"
        );
        assert_eq!(sb.live_row_counts(), before, "interrupted during {what}");
    }
}

/// rvO 7: every backup into a directory outside the repository printed
/// `note: … is not inside a git work tree, so git cannot pick it up`, a
/// line with nothing to do about it; `-v` still says it.
#[test]
fn a_backup_outside_the_repository_says_git_cannot_pick_it_up_only_with_v() {
    let sb = Sandbox::new();
    sb.apply_migrations();
    let outside = tempfile::tempdir().unwrap();
    let dir = outside.path().join("backups");
    let dir = dir.to_str().unwrap();
    let run = sb.xtask(&["--backup-dir", dir, "backup", "local"]);
    run.assert_ok();
    assert!(
        !run.all().contains("is not inside a git work tree"),
        "{}",
        run.all()
    );
    let run = sb.xtask(&["-v", "--backup-dir", dir, "backup", "local"]);
    run.assert_ok();
    assert!(
        run.all().contains("is not inside a git work tree"),
        "{}",
        run.all()
    );
}

/// rvO 7: `diff` of two backup files printed `repository: <path>` as a
/// plan does, though it reads no database of the checkout's.
#[test]
fn a_diff_of_two_files_prints_no_repository_line() {
    let sb = Sandbox::new();
    sb.apply_migrations();
    sb.xtask(&["backup", "local"]).assert_ok();
    let name = only_backup(&sb);
    let run = sb.xtask(&["diff", &name, &name]);
    assert_eq!(run.code, Some(0), "{}", run.all());
    assert!(!run.all().contains("repository:"), "{}", run.all());
}

/// rvO 4: `status` on a machine with no Cloudflare credentials said
/// "prod has no verified full backup … take one with `cargo xtask backup
/// prod`", which cannot run there (exit 2). It still fails (exit 1) and
/// says so, and names what gives wrangler credentials.
#[test]
fn status_without_credentials_says_a_backup_of_prod_needs_them() {
    let sb = Sandbox::new();
    let home = tempfile::tempdir().unwrap();
    let mut cmd = sb.xtask_command(&["status"]);
    cmd.env("HOME", home.path()).env_remove("XDG_CONFIG_HOME");
    let run = Run::from_output(cmd.output().unwrap());
    assert_eq!(run.code, Some(1), "{}", run.all());
    assert!(
        run.stderr.contains("`cargo xtask backup prod`")
            && run.stderr.contains("no Cloudflare credentials")
            && run.stderr.contains("CLOUDFLARE_API_TOKEN")
            && run.stderr.contains("wrangler login"),
        "{}",
        run.all()
    );
}

/// rvO 4: `drill` and `drill --dry-run` with no backup of prod, on a
/// machine with no Cloudflare credentials, gave the advice to back prod up
/// (exit 2) and never mentioned the drill of local D1 that can run there.
#[test]
fn a_drill_without_credentials_or_a_prod_backup_names_the_local_drill() {
    let sb = Sandbox::new();
    let home = tempfile::tempdir().unwrap();
    for args in [vec!["drill", "--yes"], vec!["drill", "--dry-run"]] {
        let mut cmd = sb.xtask_command(&args);
        cmd.env("HOME", home.path()).env_remove("XDG_CONFIG_HOME");
        let run = Run::from_output(cmd.output().unwrap());
        assert_eq!(run.code, Some(2), "{args:?}: {}", run.all());
        assert!(
            run.stderr.contains("no Cloudflare credentials")
                && run.stderr.contains("--to local --from local"),
            "{args:?}: {}",
            run.all()
        );
    }
}

/// A backup named with a typo, or without its extension, is "no such
/// file" (exit 2, as before) and names the nearest backups that are there:
/// at most three, only names a backup run gives, never a file whose name
/// would print as something else (an escape code), nor one far from what
/// was typed.
#[test]
fn a_near_miss_backup_name_is_told_the_nearest_backups_there() {
    let sb = Sandbox::new();
    std::fs::create_dir_all(sb.backups()).unwrap();
    let near = "backup-local-20261124-0900.sql.zst";
    let hostile = "backup-local\u{1b}[2K-20261124-0900.sql.zst";
    for name in [near, "backup-local-20261124-0930.sql", hostile, "notes.txt"] {
        std::fs::write(sb.backups().join(name), "x").unwrap();
    }
    std::fs::write(sb.backups().join("backup-prod-20250101-0000.sql"), "x").unwrap();
    for (typed, verb) in [
        ("backup-local-20261124-0090.sql.zst", "verify"),
        ("backup-local-20261124-0900", "verify"),
        ("backup-local-20261124-0900.sql", "restore"),
    ] {
        let args: &[&str] = match verb {
            "restore" => &["restore", typed, "--to", "local", "--yes"],
            _ => &["verify", typed],
        };
        let run = sb.xtask(args);
        assert_eq!(run.code, Some(2), "{}", run.all());
        assert!(
            run.stderr.contains("no such file")
                && run.stderr.contains(&format!("did you mean {near}")),
            "{typed}: {}",
            run.all()
        );
        assert!(!run.all().contains('\u{1b}'), "{}", run.all());
        assert!(!run.all().contains("notes.txt"), "{}", run.all());
        assert!(!run.all().contains("backup-prod-2025"), "{}", run.all());
    }
    // Nothing near: told as before, with no guess.
    let run = sb.xtask(&["verify", "yesterday.sql"]);
    assert_eq!(run.code, Some(2), "{}", run.all());
    assert!(!run.stderr.contains("did you mean"), "{}", run.all());
}

/// `with-backup` run again with nothing changed takes a backup holding the
/// same rows as the one before, and says so in one line, naming it; after
/// a change it says nothing of the kind. Nothing is deleted.
#[test]
fn a_backup_holding_the_same_data_as_the_newest_says_so() {
    let sb = Sandbox::new();
    sb.apply_migrations();
    sb.execute_sql("INSERT INTO companies (name) VALUES ('Before');");
    sb.xtask(&["with-backup", "local", "--", "true"])
        .assert_ok();
    let first = only_backup(&sb);
    // An index added since: the same rows, another file, which the line's
    // caveat is for (the same bytes are said to be the same file).
    sb.execute_sql("CREATE INDEX companies_by_name ON companies(name);");
    let again = sb.xtask(&["with-backup", "local", "--", "true"]);
    again.assert_ok();
    let all = again.all();
    let said: Vec<&str> = { all.lines() }
        .filter(|l| l.contains("same rows as"))
        .collect();
    assert_eq!(said.len(), 1, "{}", again.all());
    assert!(said[0].contains(&first), "{}", again.all());
    assert!(
        said[0].contains("schema is not compared"),
        "{}",
        again.all()
    );
    assert_eq!(sql_backups(&sb).len(), 2, "{:?}", sb.backup_files());
    sb.execute_sql("INSERT INTO companies (name) VALUES ('After');");
    let changed = sb.xtask(&["with-backup", "local", "--", "true"]);
    changed.assert_ok();
    assert!(!changed.all().contains("same rows as"), "{}", changed.all());
    assert_eq!(sql_backups(&sb).len(), 3, "{:?}", sb.backup_files());
}

/// Whether the process `pid` has ended: gone, or a zombie nobody reaped.
fn has_ended(pid: u32) -> bool {
    match std::fs::read_to_string(format!("/proc/{pid}/stat")) {
        Ok(stat) => stat
            .rsplit_once(')')
            .is_some_and(|(_, s)| s.trim_start().starts_with('Z')),
        Err(_) => true,
    }
}

/// IC: a with-backup killed (SIGKILL, the OOM killer) while its command
/// still runs leaves that command running; the lock stays held while it
/// lives: a backup started meanwhile is refused (exit 4) naming the
/// command's pid, and changes nothing. Once the command ends, the lock is
/// free (told stale: its with-backup was killed).
#[test]
fn a_killed_with_backup_holds_the_lock_while_its_command_still_runs() {
    let sb = Sandbox::new();
    sb.apply_migrations();
    let script = "echo $$ > child.pid; i=0; while [ ! -e go ] && [ $i -lt 600 ]; do \
                  sleep 0.1; i=$((i+1)); done";
    let mut with_backup = sb
        .xtask_command(&["with-backup", "local", "--", "sh", "-c", script])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let pid_file = sb.path().join("child.pid");
    wait_for(&pid_file);
    std::thread::sleep(Duration::from_millis(200));
    let child: u32 = std::fs::read_to_string(&pid_file)
        .unwrap()
        .trim()
        .parse()
        .unwrap();
    with_backup.kill().unwrap();
    with_backup.wait().unwrap();
    assert!(!has_ended(child), "the command ended with its with-backup");
    let backups = sql_backups(&sb).len();
    let run = sb.xtask(&["backup", "local"]);
    assert_eq!(run.code, Some(4), "{}", run.all());
    assert!(
        run.stderr.contains(&format!("pid {child}")),
        "{}",
        run.all()
    );
    assert!(run.stderr.contains("Nothing was changed."), "{}", run.all());
    assert_eq!(sql_backups(&sb).len(), backups);
    std::fs::write(sb.path().join("go"), "").unwrap();
    let deadline = Instant::now() + Duration::from_secs(60);
    while !has_ended(child) {
        assert!(Instant::now() < deadline, "the command never ended");
        std::thread::sleep(Duration::from_millis(100));
    }
    let run = sb.xtask(&["backup", "local"]);
    run.assert_ok();
    assert!(run.stderr.contains("`with-backup local`"), "{}", run.all());
    assert_eq!(sql_backups(&sb).len(), backups + 1);
}

/// IC: the command with-backup runs may start a locking xtask in another
/// pid namespace (`docker run … cargo xtask migrate`), where no walk of
/// /proc finds with-backup among its parents: it is still told that it was
/// started by with-backup's command and to run before or after it (not to
/// wait for that command, which waits for it), by what with-backup passes
/// its command in the environment. Here the namespace is `unshare`'s,
/// where it runs unprivileged.
#[test]
fn a_locking_xtask_in_another_pid_namespace_under_with_backup_is_told_it_is_nested() {
    let unshare = [
        "unshare",
        "--user",
        "--map-root-user",
        "--pid",
        "--fork",
        "--mount-proc",
    ];
    if !Command::new(unshare[0])
        .args(&unshare[1..])
        .arg("true")
        .status()
        .is_ok_and(|s| s.success())
    {
        eprintln!("skipped: unshare cannot make a pid namespace here");
        return;
    }
    let sb = Sandbox::new();
    sb.apply_migrations();
    let script = format!(
        "{} \"$XT\" backup local 2>nested.err; echo backup=$?",
        unshare.join(" ")
    );
    let run = Run::from_output(
        sb.xtask_command(&["with-backup", "local", "--", "sh", "-c", &script])
            .env("XT", env!("CARGO_BIN_EXE_xtask"))
            .output()
            .unwrap(),
    );
    run.assert_ok();
    assert!(run.stdout.contains("backup=4"), "{}", run.all());
    let nested = std::fs::read_to_string(sb.path().join("nested.err")).unwrap();
    assert!(
        nested.contains("`with-backup local`") && nested.contains("run it before or after"),
        "{nested}"
    );
    assert_lock_released(&sb);
}

/// "The backup before it" is the one every other "newest" names
/// (`d1_core::order::newest_first`): a backup dated after this machine's
/// clock (its own ran fast) that the new backup records as taken before it.
/// Picked by date alone, it was passed over as later than the new backup,
/// and the line named none (or an older backup).
#[test]
fn the_same_rows_line_names_the_backup_before_it_in_the_order_latest_uses() {
    let sb = Sandbox::new();
    sb.apply_migrations();
    sb.execute_sql("INSERT INTO companies (name) VALUES ('Before');");
    sb.xtask(&["backup", "local"]).assert_ok();
    let first = only_backup(&sb);
    let path = sb.backups().join(first.replace(".sql", ".manifest.json"));
    let mut m: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap();
    // Dated two hours ahead, and named for that minute as every backup is.
    let ahead = chrono::Utc::now() + chrono::Duration::hours(2);
    let first = format!("backup-local-{}.sql", ahead.format("%Y%m%d-%H%M"));
    std::fs::rename(
        sb.backups().join(m["file"]["name"].as_str().unwrap()),
        sb.backups().join(&first),
    )
    .unwrap();
    std::fs::remove_file(&path).unwrap();
    m["created_at"] = ahead.to_rfc3339().into();
    m["file"]["name"] = first.as_str().into();
    write_manifest(&sb, &m);
    let again = sb.xtask(&["backup", "local"]);
    again.assert_ok();
    let all = again.all();
    let said: Vec<&str> = { all.lines() }
        .filter(|l| l.contains("same rows as") || l.contains("same file, byte for byte, as"))
        .collect();
    assert_eq!(said.len(), 1, "{all}");
    assert!(said[0].contains(&first), "{all}");
}

/// LE: `migrate --check`'s record dates from the oldest of the backups
/// that made it, by the backups' order, not by their names' text: backups
/// of one minute are `…-HHMM.sql`, `…-HHMM-2.sql`, …, and `-2.sql` sorts
/// before `.sql` as text. It names the pending migration, as `status`
/// points to it for.
#[test]
fn migrate_check_names_the_oldest_backup_of_its_record_by_time() {
    let sb = Sandbox::new();
    sb.apply_migrations();
    sb.xtask(&["backup", "local"]).assert_ok();
    let oldest = only_backup(&sb);
    let fifth = sb.path().join("migrations/0005_notes.sql");
    std::fs::write(&fifth, "CREATE TABLE notes (id INTEGER PRIMARY KEY);\n").unwrap();
    sb.xtask(&["migrate", "local", "--yes"]).assert_ok();
    sb.xtask(&["backup", "local"]).assert_ok();
    let check = sb.xtask(&["migrate", "local", "--check"]);
    check.assert_ok();
    assert!(
        check.stdout.contains(&format!("the oldest {oldest}")),
        "{oldest}: {}",
        check.all()
    );
    let sixth = sb.path().join("migrations/0006_tags.sql");
    std::fs::write(&sixth, "CREATE TABLE tags (id INTEGER PRIMARY KEY);\n").unwrap();
    let check = sb.xtask(&["migrate", "local", "--check"]);
    assert!(check.all().contains("0006_tags.sql"), "{}", check.all());
}

/// rvAX: with `QBTIME_BACKUP_DIR` set, `restore` without its arguments
/// printed `Usage: cargo xtask restore --to <ENV|new:NAME> --backup-dir
/// <DIR> <SOURCE>`, as if `--backup-dir` had to be typed; so did
/// `--config` with `QBTIME_WRANGLER_CONFIG` and `--identity` with
/// `QBTIME_AGE_IDENTITY`. A usage line shows what is to be typed: the
/// options their variables give are left out, and one typed is still
/// shown, as typed.
#[test]
fn a_usage_line_shows_no_option_its_variable_gives() {
    let sb = Sandbox::new();
    let usage = |args: &[&str]| {
        let mut cmd = sb.xtask_command(args);
        cmd.env("QBTIME_BACKUP_DIR", sb.backups())
            .env("QBTIME_AGE_IDENTITY", sb.path().join("key.txt"));
        let run = Run::from_output(cmd.output().unwrap());
        assert_eq!(run.code, Some(2), "{args:?}: {}", run.all());
        let line = run.stderr.lines().find(|l| l.starts_with("Usage: "));
        line.unwrap_or_else(|| panic!("{args:?}: {}", run.all()))
            .to_owned()
    };
    for args in [&["restore"][..], &["verify"], &["keygen"], &["diff", "x"]] {
        let line = usage(args);
        for flag in ["--backup-dir", "--config", "--identity"] {
            assert!(!line.contains(flag), "{args:?}: {line}");
        }
        assert!(
            line.starts_with(&format!("Usage: cargo xtask {}", args[0])),
            "{line}"
        );
    }
    let line = usage(&["restore", "--backup-dir", "backups"]);
    assert!(line.contains("--backup-dir <DIR>"), "{line}");
    assert!(!line.contains("--config"), "{line}");
}

/// A reviewer's finding (a tired operator): an option a command does not
/// take, typed where it has a positional argument still to fill (`cargo
/// xtask with-backup local --replace`, `verify --replace`, `restore
/// latest --to local --zzz`), had clap's tip "to pass '--replace' as a
/// value, use '-- --replace'", which fails as printed (no command named
/// `--replace`, no backup file of that name). The tip now names the
/// command's help, and that help runs.
#[test]
fn a_misplaced_option_is_never_told_to_pass_it_after_dash_dash() {
    let sb = Sandbox::new();
    for args in [
        &["with-backup", "local", "--replace"][..],
        &["verify", "--replace"],
        &["restore", "latest", "--to", "local", "--zzz"],
        &["offsite", "fetch", "--env", "local", "--replace"],
    ] {
        let run = sb.xtask(args);
        assert_eq!(run.code, Some(2), "{args:?}: {}", run.all());
        assert!(!run.stderr.contains("-- --"), "{args:?}: {}", run.stderr);
        let tip = { run.stderr.lines() }.find(|l| l.contains("tip:"));
        let tip = tip.unwrap_or_else(|| panic!("{args:?}: no tip: {}", run.stderr));
        let printed = tip.split('`').nth(1).unwrap_or_else(|| panic!("{tip}"));
        let words: Vec<&str> = printed.split_whitespace().collect();
        assert_eq!(&words[..2], ["cargo", "xtask"], "{tip}");
        assert_eq!(words.last(), Some(&"--help"), "{tip}");
        sb.xtask(&words[2..]).assert_ok();
    }
}
