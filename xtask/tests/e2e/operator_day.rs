//! The operator's day, end to end with the real wrangler against local D1:
//! names that `list` prints work everywhere, `6m` means six months, shell
//! completions, exit codes that mean the same on every command, and
//! `status` failing on a stale environment.

use crate::common;

use std::fs::File;
use std::path::Path;
use std::process::Command;

use common::*;
use serde_json::Value;

/// The file names `list --json` prints.
fn listed(sb: &Sandbox) -> Vec<String> {
    let run = sb.xtask(&["list", "--json"]);
    run.assert_ok();
    let rows: Vec<Value> = serde_json::from_str(&run.stdout).unwrap();
    rows.iter()
        .map(|r| r["file"].as_str().unwrap().to_owned())
        .collect()
}

#[test]
fn a_bare_name_from_list_restores_verifies_and_a_missing_one_says_no_such_file() {
    let (sb, _) = sandbox_with_a_backup();
    let name = listed(&sb).remove(0);
    assert!(!name.contains('/'), "{name}");

    // The README's command for a database that is not empty: the guard
    // refuses without --replace (exit 3), and the bare name restores with it.
    let run = sb.xtask(&["restore", &name, "--to", "local", "--yes"]);
    assert_eq!(run.code, Some(3), "{}", run.all());
    assert!(run.stderr.contains("--replace"), "{}", run.stderr);
    sb.xtask(&["restore", &name, "--to", "local", "--replace", "--yes"])
        .assert_ok();
    sb.xtask(&["verify", &name]).assert_ok();

    // A bare name that is not there: where it looked, exit 2, on every command.
    let missing = "backup-local-20990101-0000.sql";
    for args in [
        vec!["verify", missing],
        vec!["restore", missing, "--to", "local", "--yes"],
        vec!["upload", missing, "--env", "local"],
    ] {
        let run = sb.xtask(&args);
        assert_eq!(run.code, Some(2), "{args:?}: {}", run.all());
        assert!(
            run.stderr.contains(&format!("no such file: {missing}"))
                && run.stderr.contains(sb.backups().to_str().unwrap()),
            "{args:?}: {}",
            run.stderr
        );
        assert!(
            !run.stderr.contains("is not a backup file"),
            "{}",
            run.stderr
        );
    }
    // upload finds the listed name too; it stops later, for want of a bucket.
    let run = sb.xtask(&["upload", &name, "--env", "local", "--dry-run"]);
    assert!(!run.stderr.contains("no such file"), "{}", run.all());
    // `latest:ENV` names the environment, as for restore and verify, and so
    // does a name's manifest: both stop for want of local's bucket, neither
    // asks for --env.
    let run = sb.xtask(&["upload", "latest:local", "--dry-run"]);
    assert!(!run.stderr.contains("--env"), "{}", run.all());
    let by_name = sb.xtask(&["upload", &name, "--dry-run"]);
    assert!(!by_name.stderr.contains("--env"), "{}", by_name.all());
    assert_eq!(by_name.code, run.code, "{}", by_name.all());
    // A bare name may not climb out of the backup directory.
    let run = sb.xtask(&["verify", ".."]);
    assert_eq!(run.code, Some(2), "{}", run.all());
}

#[test]
fn keep_within_6m_keeps_six_months_and_6mo_leads_to_6m() {
    let (sb, name) = sandbox_with_a_backup();
    let manifest = manifest_for(&sb, &name);
    let now = chrono::Utc::now();
    let mut aged = Vec::new();
    for days in [100, 200] {
        let created = now - chrono::Duration::days(days);
        let file = format!("backup-local-{}.sql", created.format("%Y%m%d-%H%M"));
        std::fs::copy(sb.backups().join(&name), sb.backups().join(&file)).unwrap();
        let mut m = manifest.clone();
        m["created_at"] = created.to_rfc3339().into();
        m["file"]["name"] = file.clone().into();
        std::fs::write(
            sb.backups().join(file.replace(".sql", ".manifest.json")),
            m.to_string(),
        )
        .unwrap();
        aged.push(file);
    }
    let run = sb.xtask(&[
        "prune",
        "--env",
        "local",
        "--keep-within",
        "6m",
        "--keep-daily",
        "0",
        "--dry-run",
    ]);
    run.assert_ok();
    // 100 days is within six months (not six minutes); 200 days is not.
    assert!(
        run.stdout
            .contains(&format!("keep    {}  (within 6m)", aged[0])),
        "{}",
        run.stdout
    );
    assert!(
        run.stdout.contains(&format!("delete  {}", aged[1])),
        "{}",
        run.stdout
    );
    assert!(
        run.stdout.contains("Dry run: 1 backup would be deleted"),
        "{}",
        run.stdout
    );

    let run = sb.xtask(&["prune", "--keep-within", "6mo"]);
    assert_eq!(run.code, Some(2), "{}", run.all());
    assert!(run.stderr.contains("use 6m for 6 months"), "{}", run.stderr);
    sb.xtask(&["prune", "--keep-within", "0d", "--dry-run"])
        .assert_ok();
}

#[test]
fn completions_bash_is_a_script_bash_accepts() {
    let sb = Sandbox::new();
    let run = sb.xtask(&["completions", "bash"]);
    run.assert_ok();
    for sub in ["backup", "restore", "verify", "status", "prune"] {
        assert!(run.stdout.contains(sub), "{sub} missing");
    }
    let script = sb.path().join("xtask.bash");
    std::fs::write(&script, &run.stdout).unwrap();
    let check = Command::new("bash")
        .arg("-n")
        .arg(&script)
        .output()
        .unwrap();
    assert!(
        check.status.success(),
        "{}",
        String::from_utf8_lossy(&check.stderr)
    );
    for shell in ["zsh", "fish"] {
        let run = sb.xtask(&["completions", shell]);
        run.assert_ok();
        assert!(run.stdout.contains("restore"), "{shell}");
    }
    let help = sb.xtask(&["restore", "--help"]);
    assert!(
        help.stdout.contains("Usage: cargo xtask restore"),
        "{}",
        help.stdout
    );
    assert!(help.stdout.contains("Global options:"), "{}", help.stdout);
}

/// Whether `status --env local`'s text holds `line`.
fn run_text_has(sb: &Sandbox, line: &str) -> bool {
    let run = sb.xtask(&["status", "--env", "local"]);
    assert_eq!(run.code, Some(0), "{}", run.all());
    let has = run.stdout.contains(line);
    if !has {
        eprintln!("{}", run.stdout);
    }
    has
}

#[test]
fn status_fails_on_a_stale_environment_and_passes_on_a_fresh_one() {
    let (sb, name) = sandbox_with_a_backup();
    // Only local declares a max age here; staging and prod are reported only.
    std::fs::write(
        sb.path().join("backups.toml"),
        "[local]\nmax_age = \"1h\"\n",
    )
    .unwrap();

    let run = sb.xtask(&["status"]);
    assert_eq!(run.code, Some(0), "{}", run.all());
    assert!(run.stdout.contains(&name), "{}", run.stdout);
    assert!(run.stdout.contains("(max 1h): ok"), "{}", run.stdout);
    let run = sb.xtask(&["status", "--json"]);
    assert_eq!(run.code, Some(0), "{}", run.all());
    let report: Value = serde_json::from_str(&run.stdout).unwrap();
    assert_eq!(report["ok"], true, "{report:#}");
    let envs = report["environments"].as_array().unwrap();
    assert_eq!(envs.len(), 3, "{report:#}");
    let env = |report: &Value, name: &str| -> Value {
        report["environments"]
            .as_array()
            .unwrap()
            .iter()
            .find(|e| e["environment"] == name)
            .unwrap()
            .clone()
    };
    let local = env(&report, "local");
    assert_eq!(local["newest_verified"]["file"], name.as_str());
    assert_eq!(local["newest_verified"]["offsite"], Value::Null);
    assert_eq!(local["pending_migrations"], serde_json::json!([]));
    assert_eq!(env(&report, "prod")["stale"], false);
    assert!(
        run_text_has(
            &sb,
            "migrations                all applied as of that backup"
        ),
        "status does not say the migrations are applied"
    );
    // A migration added since the backup: pending as of it.
    let later = sb.path().join("migrations").join("0005_later.sql");
    std::fs::write(&later, "CREATE TABLE later (id INTEGER PRIMARY KEY);").unwrap();
    assert!(
        run_text_has(
            &sb,
            "migrations                1 pending as of that backup: 0005_later.sql \
             (`cargo xtask migrate local --yes` applies it)"
        ),
        "status does not name the pending migration"
    );
    std::fs::remove_file(&later).unwrap();

    // The backup job "stopped" two hours ago: status fails, naming the fix.
    redate(&sb, &name, chrono::Utc::now() - chrono::Duration::hours(2));
    let run = sb.xtask(&["status"]);
    assert_eq!(run.code, Some(1), "{}", run.all());
    assert!(run.stdout.contains("(max 1h): STALE"), "{}", run.stdout);
    assert!(
        run.stderr
            .contains("local's newest verified backup is 2h old")
            && run.stderr.contains("cargo xtask backup local"),
        "{}",
        run.stderr
    );
    let run = sb.xtask(&["status", "--json"]);
    assert_eq!(run.code, Some(1), "{}", run.all());
    let report: Value = serde_json::from_str(&run.stdout).unwrap();
    assert_eq!(report["ok"], false);
    assert_eq!(env(&report, "local")["stale"], true);
}

#[test]
fn exit_codes_mean_the_same_on_every_command() {
    let (sb, _) = sandbox_with_a_backup();
    // Lock held by another run: 4.
    let lock = File::create(sb.backups().join(".lock")).unwrap();
    lock.lock().unwrap();
    let run = sb.xtask(&["backup", "local"]);
    assert_eq!(run.code, Some(4), "{}", run.all());
    drop(lock);
    // Could not run (bad input): 2.
    let run = sb.xtask(&["backup", "nowhere"]);
    assert_eq!(run.code, Some(2), "{}", run.all());
    // Refused by a guard: 3.
    let run = sb.xtask(&["restore", "latest", "--to", "local"]);
    assert_eq!(run.code, Some(3), "{}", run.all());
    // ... on every command that refuses a backup of another environment,
    // and a time that is not one is bad input, before wrangler runs.
    let run = sb.xtask(&["drill", "--backup", "latest:local", "--dry-run"]);
    assert_eq!(run.code, Some(3), "{}", run.all());
    let run = sb.xtask(&["time-travel", "info", "prod", "--at", "yesterday"]);
    assert_eq!(run.code, Some(2), "{}", run.all());

    // with-backup shows the command as a shell would read it back, and a
    // command that cannot be started is 127, as in a shell.
    let run = sb.xtask(&["with-backup", "local", "--", "sh", "-c", "exit 0"]);
    run.assert_ok();
    assert!(
        run.stdout.contains("Running: sh -c 'exit 0'"),
        "{}",
        run.stdout
    );
    let run = sb.xtask(&["with-backup", "local", "--", "no-such-program-xyz", "a b"]);
    assert_eq!(run.code, Some(127), "{}", run.all());
    assert!(
        run.stderr
            .contains("cannot start `no-such-program-xyz 'a b'`"),
        "{}",
        run.stderr
    );
}

/// `kill`, systemd or a CI timeout sends SIGTERM to the xtask alone, not
/// to its process group as a terminal's Ctrl-C does: with-backup passes
/// it on to the command it runs, and reports what the command did.
#[test]
fn with_backup_passes_sigterm_on_to_its_command() {
    let (sb, _) = sandbox_with_a_backup();
    let marker = sb.path().join("the-command-finished");
    let script = format!("sleep 4; touch '{}'", marker.display());
    let before = sb.backup_files().len();
    let child = sb
        .xtask_command(&["with-backup", "local", "--", "sh", "-c", &script])
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    // The backup is taken (file and manifest) before the command starts.
    let started = std::time::Instant::now();
    while sb.backup_files().len() < before + 2 && started.elapsed().as_secs() < 60 {
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
    std::thread::sleep(std::time::Duration::from_millis(700));
    let pid = libc::pid_t::try_from(child.id()).unwrap();
    // SAFETY: the pid of our own child, not yet reaped.
    unsafe { libc::kill(pid, libc::SIGTERM) };
    let out = child.wait_with_output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(143), "{stderr}");
    std::thread::sleep(std::time::Duration::from_secs(5));
    assert!(
        !marker.exists(),
        "the command ran on after SIGTERM:\n{stderr}"
    );
    assert!(stderr.contains("SIGTERM"), "{stderr}");
}

/// Whether process `pid` waits for a `flock` (a `->` line of /proc/locks).
fn waits_for_a_flock(pid: u32) -> bool {
    let locks = std::fs::read_to_string("/proc/locks").unwrap_or_default();
    let pid = pid.to_string();
    locks.lines().any(|line| {
        let words: Vec<&str> = line.split_whitespace().collect();
        words.get(1) == Some(&"->") && words.get(5) == Some(&pid.as_str())
    })
}

/// Whether a thread of process `pid` waits to write to a full pipe.
fn waits_to_write_a_pipe(pid: u32) -> bool {
    let Ok(tasks) = std::fs::read_dir(format!("/proc/{pid}/task")) else {
        return false;
    };
    tasks.flatten().any(|task| {
        std::fs::read_to_string(task.path().join("wchan")).is_ok_and(|w| w.contains("pipe_write"))
    })
}

/// Fills the pipe `w` writes to, whose reader reads nothing meanwhile, so
/// that the next write to it waits.
fn fill_pipe(w: &mut std::io::PipeWriter) {
    use std::io::Write;
    use std::os::fd::AsRawFd;
    let fd = w.as_raw_fd();
    // SAFETY: fcntl(2) and ioctl(2) on a pipe this test owns.
    let (size, queued) = unsafe {
        let mut queued: libc::c_int = 0;
        assert!(libc::ioctl(fd, libc::FIONREAD, &mut queued) == 0);
        (libc::fcntl(fd, libc::F_GETPIPE_SZ), queued)
    };
    let free = usize::try_from(size - queued).unwrap();
    w.write_all(&vec![b'.'; free]).unwrap();
}

/// Polls `ready` for up to a minute.
#[track_caller]
fn wait_until(what: &str, ready: impl Fn() -> bool) {
    let started = std::time::Instant::now();
    while !ready() {
        assert!(started.elapsed().as_secs() < 60, "never: {what}");
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
}

/// A SIGTERM that reaches with-backup once its backup is past its last
/// interrupt check started the command anyway, and passed it the signal:
/// a bulk operation begun after the operator asked to stop. Here the
/// signal comes while with-backup waits to write to its standard output (a
/// full pipe), once the backup has recorded its verification (its
/// standard output, where it says so). The command
/// is now never started; the exit says the backup was taken and the
/// command was not run.
#[test]
fn with_backup_never_starts_its_command_after_a_sigterm_that_came_once_the_backup_was_done() {
    let (sb, _) = sandbox_with_a_backup();
    let before = sb.backup_files();
    // The backup directory's lock, which the backup takes to update its
    // manifest after verifying it: held until the pipe is full.
    let dir = File::open(sb.backups()).unwrap();
    dir.lock().unwrap();
    let (mut r, mut w) = std::io::pipe().unwrap();
    let marker = sb.path().join("the-command-ran");
    let touch = format!("touch '{}'", marker.display());
    let child = sb
        .xtask_command(&["with-backup", "local", "--", "sh", "-c", &touch])
        .stdout(w.try_clone().unwrap())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let id = child.id();
    wait_until("the backup waits for the lock", || waits_for_a_flock(id));
    fill_pipe(&mut w);
    drop(w);
    drop(dir);
    wait_until("with-backup waits to write", || waits_to_write_a_pipe(id));
    let marker_before_signal = marker.exists();
    let pid = libc::pid_t::try_from(id).unwrap();
    // SAFETY: the pid of our own child, not yet reaped.
    unsafe { libc::kill(pid, libc::SIGTERM) };
    let drain = std::thread::spawn(move || std::io::copy(&mut r, &mut std::io::sink()));
    let out = child.wait_with_output().unwrap();
    drain.join().unwrap().unwrap();
    let (status, stderr) = (out.status, String::from_utf8_lossy(&out.stderr));
    assert!(!marker_before_signal, "the command ran before the signal");
    assert_eq!(status.code(), Some(143), "{stderr}");
    assert!(!marker.exists(), "the command ran after SIGTERM:\n{stderr}");
    assert!(
        stderr.contains("was not run") && !stderr.contains("was started"),
        "{stderr}"
    );
    // The backup was taken, verified, and the exit names it.
    let files = sb.backup_files();
    let new: Vec<&String> = files.iter().filter(|f| !before.contains(f)).collect();
    assert_eq!(new.len(), 2, "{files:?}\n{stderr}");
    let taken = new.iter().find(|f| f.ends_with(".sql")).unwrap();
    assert!(stderr.contains(taken.as_str()), "{stderr}");
    assert_eq!(
        manifest_for(&sb, taken)["verification"]["outcome"],
        "good",
        "{stderr}"
    );
}

/// `scripts/scheduled-backup.sh -q` promises "nothing on a good day, so a
/// cron mail means something is wrong" (README, The scheduled backup), and
/// cron mails standard error too. The script runs `cargo xtask -q …`, not
/// `cargo -q xtask -q …` (README, Output: "scripts that want silence run
/// `cargo -q xtask -q …`"), so each of its three steps adds cargo's two
/// lines ("Finished …", "Running …") on stderr: six lines every day.
///
/// `cargo` here is a front for the built xtask that keeps only what this
/// test is about, cargo's rule for those two lines: printed on stderr
/// unless `-q`/`--quiet` comes before the subcommand.
#[test]
fn the_quiet_scheduled_job_prints_nothing_through_cargo_on_a_good_day() {
    let (sb, _) = sandbox_with_a_backup();
    let bin = tempfile::tempdir().unwrap();
    let cargo = bin.path().join("cargo");
    std::fs::write(
        &cargo,
        r#"#!/bin/sh
quiet=
while [ $# -gt 0 ]; do
  case "$1" in -q|--quiet) quiet=1; shift ;; *) break ;; esac
done
[ "$1" = xtask ] || { echo "unexpected: cargo $*" >&2; exit 101; }
shift
if [ -z "$quiet" ]; then
  echo '    Finished `dev` profile [unoptimized] target(s) in 0.07s' >&2
  echo "     Running \`target/debug/xtask $*\`" >&2
fi
exec "$XTASK_BIN" "$@"
"#,
    )
    .unwrap();
    std::fs::set_permissions(&cargo, std::os::unix::fs::PermissionsExt::from_mode(0o755)).unwrap();
    let path = format!(
        "{}:{}",
        bin.path().display(),
        std::env::var("PATH").unwrap_or_default()
    );
    let out = Command::new(sb.path().join("scripts/scheduled-backup.sh"))
        .args(["-q", "local"])
        .env("PATH", path)
        .env("XTASK_BIN", env!("CARGO_BIN_EXE_xtask"))
        .env("QBTIME_WRANGLER_CONFIG", sb.path().join("wrangler.toml"))
        .env("WRANGLER_SEND_METRICS", "false")
        .env_remove("QBTIME_XTASK")
        .env_remove("QBTIME_BACKUP_DIR")
        .env_remove("CLOUDFLARE_API_TOKEN")
        .env_remove("CLOUDFLARE_ACCOUNT_ID")
        .env_remove("CLOUDFLARE_API_BASE_URL")
        .output()
        .unwrap();
    let run = Run::from_output(out);
    run.assert_ok();
    assert_eq!(run.stdout, "", "stdout of the quiet job:\n{}", run.all());
    assert_eq!(
        run.stderr,
        "",
        "stderr of the quiet job (cron mails it):\n{}",
        run.all()
    );
}

/// atkQ2: the xtask run by another operator, for whom `backups/` (0700,
/// taken yesterday by its owner) cannot be read: as uid 65534 when the
/// tests run as root (root reads every directory), else with the directory
/// made unreadable.
#[cfg(unix)]
fn as_another_user(sb: &Sandbox, args: &[&str]) -> Run {
    as_another_user_with_mode(sb, 0o700, args)
}

/// [`as_another_user`], with `backups/` at `mode` (as root runs it).
#[cfg(unix)]
fn as_another_user_with_mode(sb: &Sandbox, mode: u32, args: &[&str]) -> Run {
    use std::os::unix::fs::PermissionsExt;
    let uid = Command::new("id").arg("-u").output().unwrap();
    let root = String::from_utf8_lossy(&uid.stdout).trim() == "0";
    if !root {
        std::fs::set_permissions(sb.backups(), PermissionsExt::from_mode(0o000)).unwrap();
        let run = sb.xtask(args);
        std::fs::set_permissions(sb.backups(), PermissionsExt::from_mode(0o700)).unwrap();
        return run;
    }
    // A checkout every user can read, but for its private backups/.
    let mut dirs = vec![sb.path().to_path_buf()];
    while let Some(dir) = dirs.pop() {
        if dir == sb.backups() {
            continue;
        }
        std::fs::set_permissions(&dir, PermissionsExt::from_mode(0o755)).unwrap();
        for entry in std::fs::read_dir(&dir).unwrap().flatten() {
            let meta = std::fs::symlink_metadata(entry.path()).unwrap();
            if meta.is_dir() {
                dirs.push(entry.path());
            } else if meta.is_file() {
                std::fs::set_permissions(entry.path(), PermissionsExt::from_mode(0o644)).unwrap();
            }
        }
    }
    std::fs::set_permissions(sb.backups(), PermissionsExt::from_mode(mode)).unwrap();
    assert_eq!(
        std::fs::metadata(sb.backups())
            .unwrap()
            .permissions()
            .mode()
            & 0o777,
        mode
    );
    let mut setpriv = Command::new("setpriv");
    setpriv
        .args(["--reuid", "65534", "--regid", "65534", "--clear-groups"])
        .arg(env!("CARGO_BIN_EXE_xtask"));
    let mut cmd = sb.sandboxed(setpriv, args);
    cmd.env("HOME", sb.path());
    Run::from_output(cmd.output().unwrap())
}

/// atkQ2: a backup directory that cannot be read is not an empty one.
/// `read_dir`'s error is dropped (`edge/inventory.rs`, `scan_all`), so
/// `list` said "No backups in …/backups." and exit 0, `status` "newest
/// verified backup none" and exit 0, and `verify latest:local` "no full
/// backup of local; take one with `cargo xtask backup local`", which,
/// pasted, fails on the lock it cannot open.
#[cfg(unix)]
#[test]
fn a_backup_directory_this_user_cannot_read_is_never_reported_as_empty() {
    let (sb, name) = sandbox_with_a_backup();
    let dir = sb.backups().display().to_string();

    let run = as_another_user(&sb, &["list"]);
    assert!(
        !run.all().contains("No backups"),
        "list called an unreadable directory empty:\n{}",
        run.all()
    );
    assert_ne!(run.code, Some(0), "{}", run.all());
    assert!(
        run.stderr.contains("error:") && run.stderr.contains(&dir),
        "list should say it cannot read {dir}:\n{}",
        run.all()
    );

    let run = as_another_user(&sb, &["list", "--json"]);
    assert_ne!(
        run.stdout.trim(),
        "[]",
        "list --json gave an empty list:\n{}",
        run.all()
    );
    assert_ne!(run.code, Some(0), "{}", run.all());

    // local has no max_age: status said "none" and passed.
    let run = as_another_user(&sb, &["status", "--env", "local"]);
    assert_ne!(
        run.code,
        Some(0),
        "status passed on a directory it could not read:\n{}",
        run.all()
    );
    assert!(run.stderr.contains(&dir), "{}", run.all());

    let run = as_another_user(&sb, &["verify", "latest:local"]);
    assert!(
        !run.stderr
            .contains("take one with `cargo xtask backup local`"),
        "verify advised a new backup, as if {name} were not there:\n{}",
        run.all()
    );
    assert!(run.stderr.contains(&dir), "{}", run.all());

    // The owner still sees the backup.
    assert_eq!(listed(&sb), vec![name]);
}

/// atkQ2: the README's status section: "Wherever `latest` passes over a
/// newer backup that is bad or unverified, a warning names it (even with
/// `-q`)". A backup whose verification could not run (a full disk) stays
/// unverified; `restore latest:local` warns that it passes it over, but
/// `status` said nothing of it and exited 0: a monitor running it never
/// hears that the job's backups are no longer verified.
#[test]
fn status_names_a_newer_unverified_backup_that_latest_passes_over() {
    let (sb, first) = sandbox_with_a_backup();
    sb.xtask(&["backup", "local"]).assert_ok();
    let second = sb
        .backup_files()
        .into_iter()
        .find(|f| f.ends_with(".sql") && *f != first)
        .expect("a second backup");
    let manifest = sb.backups().join(second.replace(".sql", ".manifest.json"));
    let mut m: Value = serde_json::from_str(&std::fs::read_to_string(&manifest).unwrap()).unwrap();
    m["verification"] = Value::Null;
    std::fs::write(&manifest, serde_json::to_string_pretty(&m).unwrap()).unwrap();
    let listed = sb.xtask(&["list"]);
    assert!(
        listed
            .stdout
            .lines()
            .any(|l| l.contains(&second) && l.contains("unverified")),
        "{}",
        listed.all()
    );
    // restore says it (the README's rule, as it works elsewhere).
    let run = sb.xtask(&["restore", "latest:local", "--to", "local", "--dry-run"]);
    assert!(
        run.stderr
            .contains(&format!("the newer {second} is unverified")),
        "{}",
        run.all()
    );

    let run = sb.xtask(&["status", "--env", "local"]);
    assert!(
        run.all().contains(&second),
        "status says nothing of the newer unverified {second}:\n{}",
        run.all()
    );
    let run = sb.xtask(&["-q", "status", "--env", "local"]);
    assert!(
        run.stderr.contains(&second),
        "status -q says nothing of the newer unverified {second}:\n{}",
        run.all()
    );
}

/// rvZ: `doctor` checks "everything a backup needs", but for another
/// operator, for whom `backups/` (0700, its owner's) can be neither read
/// nor written, it says `[ok  ] permissions … is mode 700` and "doctor:
/// everything a backup needs is in place", exit 0, while `backup local`
/// then fails at once ("cannot open the backup lock …/backups/.lock:
/// Permission denied") and `list`/`status` stop on the directory they
/// cannot read. The doctor's backups check (xtask/src/steps/doctor.rs:397)
/// looks at the mode, never at whether this user can use the directory.
#[cfg(unix)]
#[test]
fn doctor_fails_for_a_user_who_cannot_use_the_backup_directory() {
    let (sb, _name) = sandbox_with_a_backup();
    let dir = sb.backups().display().to_string();
    let backup = as_another_user(&sb, &["backup", "local"]);
    assert_ne!(backup.code, Some(0), "{}", backup.all());

    let run = as_another_user(&sb, &["doctor"]);
    assert!(
        !run.all().contains("everything a backup needs is in place"),
        "doctor passed a backup directory this user cannot use:\n{}",
        run.all()
    );
    assert_ne!(run.code, Some(0), "{}", run.all());
    assert!(run.all().contains(&dir), "{}", run.all());
}

/// rvZ: a backup directory this user may list but not enter (mode 0744,
/// another user's: `r--` for the rest) is still not an empty one.
/// `scan_all` (xtask/src/edge/inventory.rs) now stops on a directory it
/// cannot read, but here `read_dir` works and each manifest fails to open
/// with "Permission denied", which it files with manifests that are not
/// the tool's: `list` says "No backups in …" and exits 0, and advises
/// "move it aside" for a good backup; `verify latest:local` and `restore
/// latest:local` say "no full backup of local; take one with `cargo xtask
/// backup local`"; `status` shows "newest verified backup none".
#[cfg(unix)]
#[test]
fn a_backup_directory_this_user_can_list_but_not_enter_is_never_reported_as_empty() {
    let (sb, _name) = sandbox_with_a_backup();
    let dir = sb.backups().display().to_string();

    let run = as_another_user_with_mode(&sb, 0o744, &["list"]);
    assert!(
        !run.all().contains("No backups"),
        "list called a directory it cannot enter empty:\n{}",
        run.all()
    );
    assert_ne!(run.code, Some(0), "{}", run.all());
    assert!(
        !run.all().contains("move it aside"),
        "list advised moving a good backup aside:\n{}",
        run.all()
    );
    assert!(run.stderr.contains(&dir), "{}", run.all());

    for args in [
        &["verify", "latest:local"][..],
        &[
            "restore",
            "latest:local",
            "--to",
            "local",
            "--replace",
            "--yes",
        ],
    ] {
        let run = as_another_user_with_mode(&sb, 0o744, args);
        assert!(
            !run.stderr
                .contains("take one with `cargo xtask backup local`"),
            "{args:?} advised a new backup, as if there were none:\n{}",
            run.all()
        );
        assert_ne!(run.code, Some(0), "{}", run.all());
    }
}

/// atkAH: a migration that renames a table (`ALTER TABLE notifications
/// RENAME TO inbox_items`) keeps every row: SQLite moves the table, its
/// indexes and its triggers. migrate counts the pre-migration backup's
/// tables by name, finds no `notifications`, and warns, even with `-q`,
/// that the migrations "emptied or took" it, "(2 rows) is gone", with a
/// `restore --replace` as the fix, which would undo the migration the
/// operator meant. Nothing was lost: the warning is noise, and its fix the
/// wrong one.
#[test]
fn a_migration_that_renames_a_table_is_not_warned_of_as_taking_its_rows() {
    let (sb, _) = sandbox_with_a_backup();
    std::fs::write(
        sb.path().join("migrations/0005_rename_notifications.sql"),
        "ALTER TABLE notifications RENAME TO inbox_items;\n",
    )
    .unwrap();
    let run = sb.xtask(&["migrate", "local", "--yes", "-q"]);
    run.assert_ok();
    assert_eq!(
        sb.query("SELECT count(*) AS n FROM inbox_items")[0][0]["n"],
        2,
        "the rename kept both rows"
    );
    assert!(
        !run.stderr.contains("warning"),
        "migrate warned of rows a table rename kept:\n{}",
        run.all()
    );
}

/// atkAH: after `migrate local`, `status` says the migration is "pending as
/// of that backup, which `migrate` took before applying it" and points at
/// `migrate --check` instead of asking for it again. `status --json`, which
/// a monitor reads, gives only `"pending_migrations": ["0005_note.sql"]`:
/// nothing in the document says the backup was taken to undo exactly that
/// migration, so a script alerting on pending migrations fires after every
/// migrate, and tells the operator to apply what was just applied.
#[test]
fn status_json_after_a_migration_does_not_give_it_as_plainly_pending() {
    let (sb, _) = sandbox_with_a_backup();
    migrate_local_with(
        &sb,
        "0005_note.sql",
        "ALTER TABLE customers ADD COLUMN note TEXT;\n",
    );
    let text = sb.xtask(&["status", "--env", "local"]);
    text.assert_ok();
    assert!(
        text.stdout
            .contains("which `migrate` took before applying it"),
        "{}",
        text.all()
    );
    let run = sb.xtask(&["status", "--env", "local", "--json"]);
    run.assert_ok();
    let doc: Value = serde_json::from_str(&run.stdout).unwrap();
    let env = doc["environments"]
        .as_array()
        .unwrap()
        .iter()
        .find(|e| e["environment"] == "local")
        .unwrap()
        .clone();
    let pending = env["pending_migrations"].as_array().cloned();
    let said_elsewhere = env
        .as_object()
        .unwrap()
        .iter()
        .any(|(k, v)| k != "pending_migrations" && v.to_string().contains("0005_note.sql"));
    assert!(
        pending.is_none_or(|p| p.is_empty()) || said_elsewhere,
        "status --json gives a migration migrate just applied as pending, and nothing more:\n{}",
        run.stdout
    );
}

/// atkAH: `diff` of the pre-migration backup with the live database after
/// a migration that added a seeded table (and renamed another) prints
/// `plans: - -> 2 rows; 0 added, 0 removed, 0 changed (by )`: an empty key
/// in parentheses, and "0 added" for a table whose two rows are all new;
/// `--json` likewise gives `added.count` 0 and `key` []. The counts say
/// the opposite of the line below them ("the table is only in b").
#[test]
fn diff_of_a_table_only_on_one_side_counts_its_rows_and_prints_no_empty_key() {
    let (sb, name) = sandbox_with_a_backup();
    std::fs::write(
        sb.path().join("migrations/0005_plans.sql"),
        "CREATE TABLE plans (id INTEGER PRIMARY KEY, name TEXT NOT NULL UNIQUE);\n\
         INSERT INTO plans (name) VALUES ('free'), ('team');\n",
    )
    .unwrap();
    sb.xtask(&[
        "migrate",
        "local",
        "--yes",
        "--no-backup",
        "--reason",
        "test",
    ])
    .assert_ok();
    let run = sb.xtask(&["diff", &name, "live:local", "-q"]);
    assert_eq!(run.code, Some(1), "{}", run.all());
    assert!(run.stdout.contains("plans: - -> 2 rows"), "{}", run.stdout);
    assert!(
        !run.stdout.contains("(by )"),
        "diff prints an empty key:\n{}",
        run.stdout
    );
    assert!(
        !run.stdout.contains("plans: - -> 2 rows; 0 added"),
        "diff counts 0 rows added for a table whose 2 rows are new:\n{}",
        run.stdout
    );
}

/// atkAM: a command that takes SIGTERM as "finish the batch, then stop"
/// (a bulk import's trap) outlives the first SIGTERM with-backup passes on;
/// a second SIGTERM to the xtask (systemd's or a CI runner's repeated
/// stop, an operator's second `kill`) makes its handler `_exit` at once.
/// The xtask is gone, printing nothing about the backup, while the command
/// it started runs on and changes the database unwatched: "it is never
/// left running while the xtask says it stopped" (README, with-backup),
/// and "a failure names the backup".
#[test]
fn with_backup_never_leaves_its_command_running_after_a_second_sigterm() {
    second_sigterms_leave_nothing_running(|marker| {
        format!(
            "trap 'echo finishing the batch >&2' TERM; sleep 4; touch '{}'",
            marker.display()
        )
    });
}

/// A command's own children (a shell's pipeline, a script's background
/// job) are the command too: a second SIGTERM stops them with it.
#[test]
fn with_backup_never_leaves_its_commands_children_running_after_a_second_sigterm() {
    second_sigterms_leave_nothing_running(|marker| {
        format!(
            "trap '' TERM; (trap '' TERM; sleep 4; touch '{}') & wait; wait",
            marker.display()
        )
    });
}

/// rvAL: a job the command started in a subshell that has since exited
/// (`( job & )`, as `nohup`, a daemonising helper or a double fork does)
/// was reparented away from the command: `signals::process_tree` follows
/// parents in /proc from the command's pid and never finds it, so it runs
/// on, and writes, after the xtask has said the command stopped.
#[test]
fn with_backup_never_leaves_a_job_its_command_detached_running_after_a_second_sigterm() {
    second_sigterms_leave_nothing_running(|marker| {
        format!(
            "trap '' TERM; ( (trap '' TERM; sleep 4; touch '{}') & ); sleep 8",
            marker.display()
        )
    });
}

/// Runs `with-backup local -- sh -c <script>`, where the script touches
/// `marker` a few seconds after it starts, then sends the xtask two
/// SIGTERMs once its backup is taken: nothing of the command may finish
/// after the xtask has exited, and the xtask names the backup.
fn second_sigterms_leave_nothing_running(script: impl Fn(&std::path::Path) -> String) {
    let (sb, _) = sandbox_with_a_backup();
    let marker = sb.path().join("the-command-finished");
    let script = script(&marker);
    let before = sb.backup_files();
    // The command inherits the xtask's stderr: a file, so that the xtask's
    // own exit is seen, not the end of its command.
    let log = sb.path().join("with-backup.stderr");
    let mut child = sb
        .xtask_command(&["with-backup", "local", "--", "sh", "-c", &script])
        .stdout(std::process::Stdio::null())
        .stderr(std::fs::File::create(&log).unwrap())
        .spawn()
        .unwrap();
    let started = std::time::Instant::now();
    while sb.backup_files().len() < before.len() + 2 && started.elapsed().as_secs() < 60 {
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
    std::thread::sleep(std::time::Duration::from_millis(700));
    let taken: Vec<String> = sb
        .backup_files()
        .into_iter()
        .filter(|f| !before.contains(f) && !f.ends_with(".manifest.json"))
        .collect();
    assert_eq!(taken.len(), 1, "{taken:?}");
    let pid = libc::pid_t::try_from(child.id()).unwrap();
    // SAFETY: the pid of our own child, not yet reaped.
    unsafe { libc::kill(pid, libc::SIGTERM) };
    std::thread::sleep(std::time::Duration::from_millis(500));
    // SAFETY: as above; the xtask is still waiting for its command.
    unsafe { libc::kill(pid, libc::SIGTERM) };
    let status = child.wait().unwrap();
    let finished_when_it_exited = marker.exists();
    std::thread::sleep(std::time::Duration::from_secs(6));
    let stderr = std::fs::read_to_string(&log).unwrap();
    assert_eq!(
        marker.exists(),
        finished_when_it_exited,
        "the xtask exited ({status:?}) while its command ran on and finished after it:\n{stderr}"
    );
    assert!(
        stderr.contains(&taken[0]),
        "the xtask stopped without naming the backup taken before the command ({}):\n{stderr}",
        taken[0]
    );
}

/// atkAN: a migration that seeds a table (a plans table's `free` and
/// `team`, as the README's own example has it) makes every data-only
/// backup of other chosen tables BAD: `backup local --table companies
/// --data-only` exits 1, "rows: plans: 2 rows, which the manifest does not
/// record", and the backup is marked bad, although its one table's rows
/// are all there and `restore --clean` takes them. verify loads the rows
/// on today's migrations, whose seed rows stay in the tables not chosen,
/// and then counts those against the manifest.
#[test]
fn a_data_only_backup_of_chosen_tables_is_good_when_a_migration_seeds_another_table() {
    let sb = Sandbox::new();
    std::fs::write(
        sb.path().join("migrations").join("0005_plans.sql"),
        "CREATE TABLE plans (id INTEGER PRIMARY KEY, name TEXT NOT NULL UNIQUE);\n\
         INSERT INTO plans (id, name) VALUES (1, 'free'), (2, 'team');\n",
    )
    .unwrap();
    sb.apply_migrations();
    sb.execute_sql(SEED_SQL);

    let run = sb.xtask(&["backup", "local", "--table", "companies", "--data-only"]);
    assert_eq!(
        run.code,
        Some(0),
        "a good data-only backup of one table is called BAD for the rows a migration seeded elsewhere:\n{}",
        run.all()
    );
    assert!(run.stdout.contains("Result: GOOD"), "{}", run.all());
    let name = only_backup(&sb);
    assert_eq!(
        manifest_for(&sb, &name)["verification"]["outcome"],
        "good",
        "{}",
        run.all()
    );
}

/// atkAN: on a good day `-q` prints nothing. The runbook's data-only
/// export (`wrangler d1 export --no-schema`), whose `d1_migrations` rows
/// name exactly today's migrations, verifies GOOD, yet `verify FILE
/// --no-manifest -q` prints a warning ("schema: no manifest and no CREATE
/// TABLE: a data-only export; loaded on today's 4 migrations (...)") that
/// names nothing wrong and no fix: how the file was judged belongs in the
/// report, not in a warning.
#[test]
fn verify_of_a_healthy_no_schema_export_is_quiet_with_q() {
    let (sb, _) = sandbox_with_a_backup();
    let dump = sb.export_data_only("data.sql");

    let run = sb.xtask(&["verify", dump.to_str().unwrap(), "--no-manifest", "-q"]);
    assert_eq!(run.code, Some(0), "{}", run.all());
    assert!(
        !run.stderr.contains("warning"),
        "a healthy no-schema export warns with -q, naming nothing wrong and no fix:\n{}",
        run.stderr
    );
}

/// atkAN: `backup local --table encryption_keys --data-only -q` (the
/// README's own example of a chosen-table data-only backup) of a healthy
/// database, up to date with `migrations/`, verifies GOOD and still warns
/// on every run ("schema: rows of chosen tables record no migration; loaded
/// on today's 4 migrations (...)"): a warning that names nothing wrong and
/// no fix, in the daily job's quiet output.
#[test]
fn a_data_only_backup_of_chosen_tables_is_quiet_with_q_on_a_healthy_day() {
    let sb = Sandbox::new();
    sb.apply_migrations();
    sb.execute_sql(SEED_SQL);

    let run = sb.xtask(&[
        "backup",
        "local",
        "--table",
        "encryption_keys",
        "--data-only",
        "-q",
    ]);
    assert_eq!(run.code, Some(0), "{}", run.all());
    assert!(
        !run.stderr.contains("warning"),
        "a healthy chosen-table data-only backup warns with -q, naming nothing wrong and no fix:\n{}",
        run.stderr
    );
}

/// A backup directory typed on the command line (`--backup-dir DIR`, not
/// `QBTIME_BACKUP_DIR`): the commands a run prints for the user to paste
/// carry it, so pasted they reach the same backups. Before, `status` said
/// the newest backup was unverified and printed `cargo xtask verify NAME`,
/// which pasted looked for NAME in the default `backups/` and said there
/// was no such file; `--json`'s copy of an error carries it too.
#[test]
fn a_command_printed_under_a_typed_backup_dir_pasted_reaches_the_same_backups() {
    let sb = Sandbox::new();
    sb.apply_migrations();
    sb.execute_sql(SEED_SQL);
    let elsewhere = tempfile::tempdir().unwrap();
    let dir = elsewhere.path().join("nightly");
    let dir_arg = dir.to_str().unwrap();
    sb.xtask(&["--backup-dir", dir_arg, "backup", "local"])
        .assert_ok();
    let backup = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .find(|n| n.ends_with(".sql"))
        .unwrap();
    let manifest = dir.join(backup.replace(".sql", ".manifest.json"));
    let mut m: Value = serde_json::from_str(&std::fs::read_to_string(&manifest).unwrap()).unwrap();
    m["verification"] = Value::Null;
    std::fs::write(&manifest, serde_json::to_string_pretty(&m).unwrap()).unwrap();

    let run = sb.xtask(&["--backup-dir", dir_arg, "status"]);
    let verify = run
        .all()
        .split('`')
        .find(|s| s.starts_with("cargo xtask ") && s.contains(" verify "))
        .unwrap_or_else(|| panic!("status printed no verify:\n{}", run.all()))
        .to_owned();
    // Pasted into a shell where `cargo xtask` is this xtask.
    let script = format!(
        "cargo() {{ shift; {} \"$@\"; }}; {verify}",
        d1_core::wording::shell_word(env!("CARGO_BIN_EXE_xtask"))
    );
    let pasted = Run::from_output(
        sb.sandboxed(Command::new("sh"), &["-c", &script])
            .output()
            .unwrap(),
    );
    assert!(
        pasted.ok && pasted.all().contains("GOOD"),
        "`{verify}`, pasted, did not verify {backup} in {dir_arg}:\n{}",
        pasted.all()
    );

    // The same under --json: the error document's command carries it.
    let run = sb.xtask(&["--backup-dir", dir_arg, "verify", "latest:prod", "--json"]);
    let doc: Value =
        serde_json::from_str(&run.stdout).unwrap_or_else(|e| panic!("{e}: {}", run.all()));
    let error = doc["error"].as_str().unwrap_or_default();
    assert!(
        error.contains(&format!("`cargo xtask --backup-dir {dir_arg} backup prod`")),
        "{doc}"
    );
}

/// `--backup-dir backups` or `--config wrangler.toml` typed to override
/// `QBTIME_BACKUP_DIR` or `QBTIME_WRANGLER_CONFIG` set in the shell (a
/// nightly job's, left exported): the run reads the checkout's own, and
/// the commands it prints leave the option off as noise, since it names
/// the default. Pasted in that shell, they read the environment's other
/// directory or configuration instead: `restore`'s "take one with
/// `cargo xtask backup local`" writes the backup elsewhere, and the restore
/// run again still finds none. An option typed over the environment is
/// carried, default or not. Cause: `Project::globals_to_paste`.
#[test]
fn an_option_typed_over_the_environment_is_carried_even_when_it_names_the_default() {
    let sb = Sandbox::new();
    sb.apply_migrations();
    sb.execute_sql(SEED_SQL);
    let elsewhere = tempfile::tempdir().unwrap();
    let other_dir = elsewhere.path().join("nightly");
    // Only --backup-dir: a sandbox is no checkout that `--config` would
    // be found by anyway (no package.json), so its half cannot be shown
    // here; `globals_to_paste` treats both alike.
    let cases: [(&str, &str, &str, &Path); 1] = [(
        "--backup-dir",
        "backups",
        "QBTIME_BACKUP_DIR",
        other_dir.as_path(),
    )];
    for (flag, value, var, set) in cases {
        let restore = Run::from_output(
            sb.xtask_command(&[flag, value, "restore", "latest:local", "--to", "local"])
                .env(var, set)
                .output()
                .unwrap(),
        );
        let take = restore
            .all()
            .split('`')
            .find(|s| s.starts_with("cargo xtask ") && s.contains(" backup local"))
            .unwrap_or_else(|| panic!("restore printed no backup:\n{}", restore.all()))
            .to_owned();
        // Pasted into the same shell, where `cargo xtask` is this xtask.
        let script = format!(
            "cargo() {{ shift; {} \"$@\"; }}; {take}",
            d1_core::wording::shell_word(env!("CARGO_BIN_EXE_xtask"))
        );
        let pasted = Run::from_output(
            sb.sandboxed(Command::new("sh"), &["-c", &script])
                .env(var, set)
                .output()
                .unwrap(),
        );
        pasted.assert_ok();
        let wrote_here = std::fs::read_dir(sb.path().join("backups"))
            .map(|d| d.count() > 0)
            .unwrap_or(false);
        assert!(
            wrote_here,
            "`{take}` (run with {flag} {value} over {var}={}), pasted, did not write its \
             backup into the backup directory the run read:\n{}",
            set.display(),
            pasted.all()
        );
        let _ = std::fs::remove_dir_all(sb.path().join("backups"));
    }
}

/// atkEC: a `--backup-dir` with a typo (`bakups`) names a directory that
/// does not exist; `list` said "No backups in …/bakups." as of an empty
/// one, and the operator took the backups as gone. It says the directory
/// does not exist.
#[test]
fn list_of_a_backup_directory_that_does_not_exist_says_so() {
    let (sb, _) = sandbox_with_a_backup();
    let run = sb.xtask(&["list", "--backup-dir", "bakups"]);
    run.assert_ok();
    assert!(
        run.stdout.contains("bakups") && run.stdout.contains("does not exist"),
        "{}",
        run.all()
    );
}

/// EH: `status` on a fresh clone, with no backup yet, exits 1 because prod
/// has a max_age: the error says why (no backup of prod, and its max_age)
/// and the command that takes one; `--env local` checks local alone and
/// passes.
#[test]
fn status_on_a_fresh_clone_says_prod_has_no_backup_and_the_command_that_takes_one() {
    let sb = Sandbox::new();
    let run = sb.xtask(&["status"]);
    let told = [
        "prod has no verified full backup",
        "max_age",
        "`cargo xtask backup prod`",
    ];
    let missing: Vec<&str> = told
        .into_iter()
        .filter(|t| !run.stderr.contains(t))
        .collect();
    assert!(
        run.code == Some(1) && missing.is_empty(),
        "exit 1, saying {missing:?}:\n{}",
        run.all()
    );
    sb.xtask(&["status", "--env", "local"]).assert_ok();
}
