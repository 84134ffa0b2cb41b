//! `cargo xtask rehearse`: the whole remote cycle offline, through the real
//! wrangler's `--remote` code paths against the loopback API that the xtask
//! starts itself, over a copy of a backup; the real backups are untouched.
//!
//! A whole rehearsal is about 45 wrangler starts, so the tests that check
//! different things of the same run on the same set-up share that run
//! (made once per test process, read-only to them); a test that needs a
//! set-up of its own (an interrupt, a kill, a failing step) runs its own.

use crate::common;

use std::sync::OnceLock;

use common::remote::Remote;
use common::*;

/// A seeded sandbox's local backup, and one `rehearse --from PATH --json`
/// of it: a whole cycle (about 45 wrangler starts), run once per test
/// process for the tests that each check something else of that same run.
/// With `--json` every line a plain run prints is on stderr instead of
/// stdout (the steps' own output included), so `Run::all` holds the same
/// lines. The sandbox is gone by the time a test reads this.
struct RehearsalOfABackup {
    run: Run,
    /// The backup's manifest.
    manifest: serde_json::Value,
    /// backups/'s files before the rehearsal and after it.
    files: (Vec<String>, Vec<String>),
    /// The backup's bytes before the rehearsal and after it.
    source: (Vec<u8>, Vec<u8>),
}

fn rehearsal_of_a_backup() -> &'static RehearsalOfABackup {
    static RUN: OnceLock<RehearsalOfABackup> = OnceLock::new();
    RUN.get_or_init(|| {
        let (sb, name) = sandbox_with_a_backup();
        let before = sb.backup_files();
        let source = sb.backups().join(&name);
        let bytes = std::fs::read(&source).unwrap();
        let run = sb.xtask(&["rehearse", "--from", source.to_str().unwrap(), "--json"]);
        RehearsalOfABackup {
            run,
            manifest: manifest_for(&sb, &name),
            files: (before, sb.backup_files()),
            source: (bytes, std::fs::read(&source).unwrap()),
        }
    })
}

/// A seeded sandbox's local backup whose manifest records a failed
/// verification, `list`, `restore`'s warning of it, and one quiet
/// rehearsal from the name `list` prints (`-q rehearse --from NAME`): run
/// once per test process for the tests that read different things of it.
struct QuietRehearsalFromAName {
    name: String,
    listed: Run,
    restore: Run,
    run: Run,
}

fn quiet_rehearsal_from_a_name() -> &'static QuietRehearsalFromAName {
    static RUN: OnceLock<QuietRehearsalFromAName> = OnceLock::new();
    RUN.get_or_init(|| {
        let (sb, name) = sandbox_with_a_backup();
        let manifest = sb.backups().join(name.replace(".sql", ".manifest.json"));
        let mut m = manifest_for(&sb, &name);
        m["verification"]["outcome"] = "bad".into();
        m["verification"]["failed"] = serde_json::json!(["rows: differ"]);
        std::fs::write(&manifest, serde_json::to_string_pretty(&m).unwrap()).unwrap();
        let listed = sb.xtask(&["list"]);
        // A backup's name has no space.
        let dry_run = format!("-q restore {name} --to local --replace --dry-run");
        let restore = sb.xtask(&dry_run.split(' ').collect::<Vec<_>>());
        let run = sb.xtask(&["-q", "rehearse", "--from", &name]);
        QuietRehearsalFromAName {
            name,
            listed,
            restore,
            run,
        }
    })
}

/// A Global API Key for wrangler, as an operator's shell may hold one.
const GLOBAL_API_KEY: [(&str, &str); 2] = [
    (
        "CLOUDFLARE_API_KEY",
        "0123456789abcdef0123456789abcdef01234",
    ),
    ("CLOUDFLARE_EMAIL", "operator@example.com"),
];

/// One `rehearse --from empty --json` run as an operator's shell may run
/// it: `--backup-dir` typed (a directory outside the sandbox) and a Global
/// API Key set ([`GLOBAL_API_KEY`]); once per test process, for the tests
/// that read different things of it.
fn rehearsal_from_an_operators_shell() -> &'static Run {
    static RUN: OnceLock<Run> = OnceLock::new();
    RUN.get_or_init(|| {
        let sb = Sandbox::new();
        let outside = tempfile::tempdir().unwrap();
        let real = outside.path().join("real backups");
        std::fs::create_dir(&real).unwrap();
        let args = ["--backup-dir", real.to_str().unwrap()];
        let mut cmd = sb.xtask_command(&args);
        cmd.args(["rehearse", "--from", "empty", "--json"])
            .envs(GLOBAL_API_KEY);
        Run::from_output(cmd.output().unwrap())
    })
}

/// One `rehearse --from empty --keep` (a whole cycle, about 45 wrangler
/// starts), run once per test process in a sandbox of its own for the
/// tests that take what a kept rehearsal leaves to the operator's shell:
/// its directory, copied into `sb`'s backups/ (its files with their
/// permission bits, as [`common::template`] keeps them), and what it
/// printed, with the paths it named made `sb`'s. `sb`'s backups/ must hold
/// no rehearsal yet.
fn kept_rehearsal_from_empty(sb: &Sandbox) -> Run {
    const STEP: &str = "rehearse --from empty --keep, in a fresh sandbox";
    static RUN: OnceLock<(Run, String)> = OnceLock::new();
    let (run, root) = RUN.get_or_init(|| {
        let first = Sandbox::new();
        let run = first.xtask(&["rehearse", "--from", "empty", "--keep"]);
        // Kept as it is: what `first` left in its backups/.
        common::template::made_once(STEP, &first.backups(), || {});
        (run, first.path().display().to_string())
    });
    let scratch = tempfile::tempdir().unwrap();
    let copy = scratch.path().join("backups");
    common::template::made_once(STEP, &copy, || unreachable!("kept above"));
    std::fs::create_dir_all(sb.backups()).unwrap();
    for entry in std::fs::read_dir(&copy).unwrap() {
        let entry = entry.unwrap();
        let to = sb.backups().join(entry.file_name());
        assert!(!to.exists(), "{} is there already", to.display());
        std::fs::rename(entry.path(), to).unwrap();
    }
    let here = sb.path().display().to_string();
    Run {
        ok: run.ok,
        code: run.code,
        stdout: run.stdout.replace(root.as_str(), &here),
        stderr: run.stderr.replace(root.as_str(), &here),
    }
}

#[test]
fn a_rehearsal_runs_the_remote_cycle_offline_over_a_copy_of_a_backup() {
    let shared = rehearsal_of_a_backup();
    let run = &shared.run;

    // With --json, stdout is one document and everything for people,
    // the steps' own output included, is on stderr.
    run.assert_ok();
    let doc: serde_json::Value = serde_json::from_str(&run.stdout)
        .unwrap_or_else(|e| panic!("stdout is not one JSON document ({e}):\n{}", run.stdout));
    assert_eq!(doc["command"], "rehearse");
    assert_eq!(doc["result"]["ok"], true);
    assert_eq!(
        doc["result"].get("interrupted"),
        Some(&serde_json::Value::Null),
        "{doc}"
    );
    let steps = doc["result"]["steps"].as_array().unwrap();
    assert_eq!(steps.len(), doc["plan"]["steps"].as_array().unwrap().len());
    assert!(steps.iter().all(|s| s["outcome"] == "pass"), "{doc}");
    assert!(
        doc["plan"]["steps"][0]["command"]
            .as_str()
            .unwrap()
            .starts_with("cargo xtask backup prod"),
        "{doc}"
    );
    let summary = run
        .stderr
        .split("Rehearsal of the remote cycle, offline")
        .nth(1)
        .unwrap_or_else(|| panic!("no summary: {}", run.all()));
    for step in [
        "backup",
        "verify",
        "migrate",
        "restore to staging",
        "restore to prod",
        "upload",
        "offsite list",
        "time-travel restore",
        "time-travel info",
    ] {
        let line = summary
            .lines()
            .find(|l| l.trim_start().starts_with(step) && l.contains("pass"))
            .unwrap_or_else(|| panic!("{step} did not pass:\n{summary}"));
        assert!(!line.contains("FAIL"), "{line}");
    }
    assert!(summary.contains("Every step passed."), "{summary}");
    // The cycle's prod held the backup's rows: its own backup counted them.
    let m = &shared.manifest;
    // As every summary counts them: not sqlite_sequence's bookkeeping.
    let counted: Vec<u64> = m["rows"]
        .as_object()
        .unwrap()
        .iter()
        .filter(|(t, _)| t.as_str() != "sqlite_sequence")
        .map(|(_, v)| v.as_u64().unwrap())
        .collect();
    let (tables, rows) = (counted.len(), counted.iter().sum::<u64>());
    let backed_up = run
        .stderr
        .lines()
        .find(|l| l.contains(", sha256 ") && l.contains("tables,"))
        .unwrap_or_else(|| panic!("no backup line: {}", run.stderr));
    assert!(
        backed_up.ends_with(&format!("{tables} tables, {rows} rows")),
        "{backed_up} (the source had {tables} tables, {rows} rows)"
    );

    // The real backups are as they were, and the rehearsal left nothing.
    assert_eq!(shared.files.1, shared.files.0);
    assert_eq!(shared.source.1, shared.source.0);
    // No Cloudflare credentials were given, and none were needed.
    assert!(!run.all().contains("CLOUDFLARE_API_TOKEN is not set"));
}

#[test]
fn a_rehearsal_from_a_missing_backup_is_refused_before_anything_starts() {
    let sb = Sandbox::new();
    let run = sb.xtask(&["rehearse", "--from", "backups/nope.sql"]);
    // Issue 13: a path that does not exist says "no such file".
    run.assert_refused("no such file: backups/nope.sql");
    assert!(
        !run.stdout.contains("loopback Cloudflare API on"),
        "{}",
        run.stdout
    );
    let left: Vec<String> = sb
        .backup_files()
        .into_iter()
        .filter(|f| f.starts_with(".rehearsal"))
        .collect();
    assert!(left.is_empty(), "{left:?}");
}

/// `rehearse --serve` "serves until Ctrl-C" (README) and says "Press Ctrl-C
/// to stop."; but the first SIGINT is only recorded (the serve loop parks
/// and never looks), so one Ctrl-C does nothing, and a second one `_exit`s
/// at once. One SIGINT should stop it, exit 130.
#[test]
fn a_served_rehearsal_stops_on_one_ctrl_c() {
    let sb = Sandbox::new();
    let run = interrupt_once_printed(
        sb.xtask_command(&["rehearse", "--serve", "--from", "empty"]),
        "Press Ctrl-C to stop",
    );
    assert_eq!(run.code, Some(130), "{}", run.all());
}

/// atkS: `rehearse --serve` prints the exports to paste into another shell
/// (README), but every printed line is redacted and `CLOUDFLARE_API_TOKEN=…`
/// is a credential by its name: the line reads `export
/// CLOUDFLARE_API_TOKEN='[REDACTED]'`. Pasted, every command in that shell
/// fails with wrangler's "Authentication error [code: 10000]" from the
/// loopback. Its token is the rehearsal's own constant, no Cloudflare
/// credential: the exports should work as printed.
#[test]
fn a_served_rehearsal_prints_exports_that_work_when_pasted() {
    let sb = Sandbox::new();
    let run = interrupt_once_printed(
        sb.xtask_command(&["rehearse", "--serve", "--from", "empty"]),
        "Press Ctrl-C to stop",
    );
    let line = run
        .stdout
        .lines()
        .find(|l| l.contains("export CLOUDFLARE_API_TOKEN="))
        .unwrap_or_else(|| panic!("no token export:\n{}", run.all()));
    assert!(!line.contains("[REDACTED]"), "{line}");
}

/// atkQ2: a rehearsal runs `time-travel restore prod` against its own
/// loopback, and passes on the step's "To undo it:" line as it is:
/// `cargo xtask time-travel restore prod --bookmark <the loopback's
/// bookmark> --confirm qbtime_db_prod`. Pasted into the operator's shell,
/// where the credentials point at Cloudflare, it is a Time Travel restore
/// of the real production database to a bookmark that only the rehearsal
/// had. A command a rehearsal prints must not act on the real prod.
#[test]
fn a_rehearsal_prints_no_pasteable_command_that_acts_on_the_real_prod() {
    // What a plain run prints, on stdout and stderr: the same lines.
    let run = &rehearsal_of_a_backup().run;
    run.assert_ok();
    let all = run.all();
    let pasteable: Vec<&str> = all
        .lines()
        .filter(|l| !l.starts_with("== rehearse:"))
        .filter(|l| {
            l.trim_start()
                .starts_with("cargo xtask time-travel restore prod")
        })
        .filter(|l| !l.contains("rehears") && !l.contains("CLOUDFLARE_API_BASE_URL"))
        .map(|l| l.trim())
        .collect();
    assert!(
        pasteable.is_empty(),
        "the rehearsal printed, as a command to paste, {pasteable:?}:\n{}",
        run.all()
    );
}

/// atkAM: a rehearsal runs each step as a child process and waits; a
/// SIGINT or SIGTERM sent to the xtask alone (`kill`, systemd, a CI
/// timeout) is recorded but never looked at between steps, so the cycle
/// runs every remaining step (migrate, both restores, the Time Travel
/// restore) before it exits 130. One interrupt should stop it at the next
/// step, with the rest "not run".
#[test]
fn a_rehearsal_stops_at_the_next_step_on_one_interrupt() {
    let sb = Sandbox::new();
    let run = interrupt_once_printed(
        sb.xtask_command(&["rehearse", "--from", "empty"]),
        "== rehearse: verify",
    );
    assert_eq!(run.code, Some(130), "{}", run.all());
    let all = run.all();
    for later in ["== rehearse: restore to prod", "== rehearse: time-travel"] {
        assert!(
            !all.contains(later),
            "the rehearsal ran on after one SIGINT ({later}):\n{all}"
        );
    }
}

/// A rehearsal killed mid-cycle (SIGKILL of its job: `timeout -s KILL`, a
/// CI runner, the OOM killer) cannot remove its private directory, which
/// holds the loopback's SQLite copy of prod, loaded from the backup named
/// (decrypted, if it was encrypted), and the rehearsal's own backups of it.
/// Nothing removed it afterwards: no later rehearsal nor any other command,
/// so a copy of production's rows stayed under `backups/`, listed nowhere.
/// The next rehearsal removes a directory left by one that is gone (but
/// never one kept with `--keep`).
#[test]
fn a_killed_rehearsal_leaves_no_copy_of_prod_after_the_next_one() {
    use std::io::BufRead;
    use std::os::unix::process::CommandExt;
    let sb = Sandbox::new();
    sb.apply_migrations();
    sb.execute_sql(SEED_SQL);
    sb.xtask(&["backup", "local"]).assert_ok();
    let source = sb.backups().join(only_backup(&sb));
    let rehearsal_dirs = |sb: &Sandbox| -> Vec<String> {
        sb.backup_files()
            .into_iter()
            .filter(|f| f.starts_with(".rehearsal"))
            .collect()
    };

    // A kept rehearsal's directory is the operator's: it stays (stopped
    // at its first step: what it ran does not matter here).
    let kept = interrupt_once_printed(
        sb.xtask_command(&["rehearse", "--from", "empty", "--keep"]),
        "== rehearse: backup",
    );
    assert_eq!(kept.code, Some(130), "{}", kept.all());
    let kept_dirs = rehearsal_dirs(&sb);
    assert_eq!(kept_dirs.len(), 1, "{kept_dirs:?}");

    let mut child = sb
        .xtask_command(&["rehearse", "--from", source.to_str().unwrap()])
        .process_group(0)
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let mut out = std::io::BufReader::new(child.stdout.take().unwrap());
    loop {
        let mut line = String::new();
        assert!(out.read_line(&mut line).unwrap() > 0, "it ended early");
        if line.contains("== rehearse: migrate") {
            break;
        }
    }
    // SAFETY: kill(2) on the group our own child leads.
    unsafe { libc::kill(-(child.id() as i32), libc::SIGKILL) };
    child.wait().unwrap();
    assert_eq!(rehearsal_dirs(&sb).len(), 2, "{:?}", rehearsal_dirs(&sb));

    // The next one removes it as it starts (it is stopped at its first step,
    // and removes its own directory then).
    let next = interrupt_once_printed(
        sb.xtask_command(&["rehearse", "--from", "empty"]),
        "== rehearse: backup",
    );
    assert_eq!(next.code, Some(130), "{}", next.all());
    assert_eq!(
        rehearsal_dirs(&sb),
        kept_dirs,
        "the killed rehearsal's copy of prod is still there:\n{}",
        next.all()
    );
}

/// backups/ made private, as the xtask makes it, with a rehearsal's
/// directory `name` in it holding a loopback's prod and the marker
/// `marker` says.
fn plant_rehearsal(sb: &Sandbox, name: &str, marker: &str) -> std::path::PathBuf {
    let backups = sb.backups();
    std::fs::create_dir_all(&backups).unwrap();
    std::fs::set_permissions(
        &backups,
        std::os::unix::fs::PermissionsExt::from_mode(0o700),
    )
    .unwrap();
    let dir = backups.join(name);
    std::fs::create_dir_all(dir.join("backups")).unwrap();
    std::fs::write(dir.join("prod.sqlite"), "its loopback's prod").unwrap();
    std::fs::write(dir.join(".removed-when-done"), marker).unwrap();
    dir
}

/// A backup directory shared by two machines (a team's, on a network
/// share): a rehearsal's directory there whose pid runs on no process here
/// was removed as a killed one's, though its rehearsal may run on the
/// other machine, whose loopback then lost its databases mid-cycle. Its
/// directory records the machine it runs on, and one from another machine
/// (another host; or a container on this one, whose pids are not ours,
/// pid 1 included) is left, and named, with the way to remove it by hand.
/// So is one from another machine of this host name (`ubuntu`,
/// `raspberrypi`, a compose file's fixed `hostname:`) booted otherwise: it
/// was taken for this host's before its restart, and removed under the
/// rehearsal running there.
#[test]
fn a_rehearsal_never_removes_the_directory_of_one_running_on_another_machine() {
    let sb = Sandbox::new();
    // No process here has this pid.
    let other_host = plant_rehearsal(
        &sb,
        ".rehearsal-20261204-090000-2147483000",
        "host ci-runner-7\nboot 00000000-1111-2222-3333-444444444444\npid-namespace 4026531836",
    );
    // A container on this very boot: its pid 1 is its own.
    let here = machine_here(None);
    let (host_and_boot, _) = here.rsplit_once('\n').unwrap();
    let container = plant_rehearsal(
        &sb,
        ".rehearsal-20261204-090001-1",
        &format!("{host_and_boot}\npid-namespace 1"),
    );
    // Another machine named as this one, with its own machine id and boot.
    let host = here.lines().next().unwrap();
    let (_, pid_namespace) = here.rsplit_once('\n').unwrap();
    let namesake = plant_rehearsal(
        &sb,
        ".rehearsal-20261204-090002-1",
        &format!(
            "{host}\nmachine 0123456789abcdef0123456789abcdef\n\
             boot 00000000-1111-2222-3333-555555555555\n{pid_namespace}"
        ),
    );

    let run = interrupt_once_printed(
        sb.xtask_command(&["rehearse", "--from", "empty"]),
        "== rehearse: backup",
    );
    assert_eq!(run.code, Some(130), "{}", run.all());
    let said = run.all();
    for dir in [&other_host, &container, &namesake] {
        let name = dir.file_name().unwrap().to_str().unwrap();
        let note = said.lines().find(|l| l.contains(name)).unwrap_or("");
        let kept = dir.join("prod.sqlite").exists();
        assert!(
            kept && note.contains("another machine") && note.contains("`rm -rf -- "),
            "kept {kept}, {name}:\n{said}"
        );
    }
}

/// A rehearsal killed by a restart of its machine (a crash, a power loss,
/// a reboot: the common way one is killed) left its decrypted copy of
/// prod for good: its directory recorded the boot it ran in, and every
/// later rehearsal took another boot for another machine, and said one
/// may still run there. A directory made on this host before it last
/// booted is a dead run's, whatever its pid names now (pid 1 lives), and
/// is removed, saying so; one from an older version that records no
/// machine is still removed once its pid is gone.
#[test]
fn a_rehearsal_killed_by_a_restart_of_this_machine_leaves_no_copy_of_prod_after_the_next_one() {
    let sb = Sandbox::new();
    let rebooted = plant_rehearsal(
        &sb,
        ".rehearsal-20261204-080000-1",
        &machine_here(Some("00000000-0000-0000-0000-000000000000")),
    );
    let older = plant_rehearsal(&sb, ".rehearsal-20261204-080001-2147483001", "");

    let run = interrupt_once_printed(
        sb.xtask_command(&["rehearse", "--from", "empty"]),
        "== rehearse: backup",
    );
    assert_eq!(run.code, Some(130), "{}", run.all());
    let said = run.all();
    let note = said
        .lines()
        .find(|l| l.contains(".rehearsal-20261204-080000-1"))
        .unwrap_or("");
    assert!(
        !rebooted.exists() && note.contains("removed") && note.contains("booted"),
        "the copy of prod a rehearsal killed by a restart left is still there:\n{said}"
    );
    assert!(!older.exists(), "{said}");
    assert!(!said.contains("another machine"), "{said}");
}

/// A rehearsal interrupted while a step runs stops that step, which then
/// exits non-zero: the summary said it FAILed (`--json`: `"fail"`) and
/// "A step failed", so a monitor saw a failed migrate, not an interrupted
/// run. It is reported as interrupted.
#[test]
fn an_interrupted_rehearsal_reports_the_running_step_as_interrupted_not_failed() {
    let sb = Sandbox::new();
    let run = interrupt_once_printed(
        sb.xtask_command(&["rehearse", "--from", "empty"]),
        "== rehearse: migrate",
    );
    assert_eq!(run.code, Some(130), "{}", run.all());
    let all = run.all();
    let line = all
        .lines()
        .find(|l| l.trim_start().starts_with("migrate ") && l.contains(" s"))
        .unwrap_or_else(|| panic!("no summary line for migrate:\n{all}"));
    assert!(line.contains("interrupted"), "{line}\n{all}");
    assert!(!all.contains("FAIL"), "{all}");
    assert!(!all.contains("A step failed"), "{all}");
}

#[test]
fn an_interrupted_rehearsal_says_interrupted_in_its_json() {
    let sb = Sandbox::new();
    let (status, stdout, log) = json_rehearsal_interrupted_at(&sb, "== rehearse: migrate");
    assert_eq!(status, Some(130), "{stdout}\n{log}");
    let doc: serde_json::Value = serde_json::from_str(&stdout).unwrap();
    let steps = doc["result"]["steps"].as_array().unwrap();
    let migrate = steps.iter().find(|s| s["name"] == "migrate").unwrap();
    assert_eq!(migrate["outcome"], "interrupted", "{stdout}");
    assert!(
        steps.iter().all(|s| s["outcome"] != "fail"),
        "a step reported failed:\n{stdout}"
    );
    assert_eq!(doc["result"]["ok"], false, "{stdout}");
    // A monitor reads why from the document alone, not the exit code.
    assert_eq!(doc["result"]["interrupted"], "migrate", "{stdout}");
}

/// `rehearse --from empty --json`, sent one SIGINT once a line of its
/// stderr contains `needle`: its exit code, stdout and stderr.
fn json_rehearsal_interrupted_at(sb: &Sandbox, needle: &str) -> (Option<i32>, String, String) {
    use std::io::Read;
    let mut child = sb
        .xtask_command(&["rehearse", "--from", "empty", "--json"])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let mut stdout = child.stdout.take().unwrap();
    let out = std::thread::spawn(move || {
        let mut text = String::new();
        let _ = stdout.read_to_string(&mut text);
        text
    });
    let mut stderr = std::io::BufReader::new(child.stderr.take().unwrap());
    let mut seen = read_until(&mut stderr, needle, |_| {});
    // SAFETY: kill(2) on our own child, which has not been waited for.
    unsafe { libc::kill(child.id() as libc::pid_t, libc::SIGINT) };
    let _ = stderr.read_to_string(&mut seen);
    let status = child.wait().unwrap();
    (status.code(), out.join().unwrap(), seen)
}

/// Ctrl-C once every step had passed (while the rehearsal prints its
/// summary and removes its files) exited 130 with a document saying
/// `ok: true, interrupted: null`: a monitor reading the document saw a
/// passed rehearsal that its exit code called interrupted. They agree.
#[test]
fn a_rehearsal_interrupted_after_its_last_step_says_so_in_its_json_as_its_exit_code_does() {
    let sb = Sandbox::new();
    let (status, stdout, log) =
        json_rehearsal_interrupted_at(&sb, "Rehearsal of the remote cycle, offline");
    let doc: serde_json::Value = serde_json::from_str(&stdout)
        .unwrap_or_else(|e| panic!("stdout is not one JSON document ({e}):\n{stdout}\n{log}"));
    let steps = doc["result"]["steps"].as_array().unwrap();
    assert!(steps.iter().all(|s| s["outcome"] == "pass"), "{doc}");
    match status {
        Some(0) => assert_eq!(doc["result"]["ok"], true, "{doc}\n{log}"),
        Some(130) => {
            assert_eq!(
                doc["result"]["ok"], false,
                "exit 130 with a document saying ok:\n{doc}\n{log}"
            );
            assert_eq!(
                doc["result"]["interrupted"], "after the last step",
                "{doc}\n{log}"
            );
        }
        other => panic!("exit {other:?}:\n{doc}\n{log}"),
    }
}

/// After prod's short name changed (`APP_ENV` prod -> live, the same
/// database), `rehearse` with no `--from` stopped at an `unknown environment
/// prod` the user never typed. The rehearsal is offline (nothing real is
/// written), so the one remote production environment plays prod's part,
/// from its newest verified backup, taken when it was still called prod.
#[test]
fn a_rehearsal_after_prods_short_name_changed_rehearses_the_production_environment() {
    let remote = Remote::new("");
    let home = tempfile::tempdir().unwrap();
    let backup = remote.backup_prod(home.path());
    remote.sb.rename_prod_to_live();

    let run = remote.xtask(home.path(), &["rehearse", "--json"]);
    run.assert_ok();
    let doc: serde_json::Value = serde_json::from_str(&run.stdout)
        .unwrap_or_else(|e| panic!("stdout is not one JSON document ({e}):\n{}", run.all()));
    assert_eq!(doc["result"]["ok"], true, "{doc}");
    assert_eq!(
        doc["plan"]["from"],
        format!("a copy of {backup}"),
        "the rehearsal starts from live's newest backup, taken as prod's:\n{doc}"
    );
    let commands: Vec<&str> = doc["plan"]["steps"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["command"].as_str().unwrap())
        .collect();
    assert!(
        commands[0].starts_with("cargo xtask backup live "),
        "{commands:?}"
    );
    assert!(
        !commands.iter().any(|c| c.contains(" prod ")),
        "{commands:?}"
    );
}

/// `-q` prints nothing but errors and warnings on every command; a
/// rehearsal runs its steps as children, and passed on each one's whole
/// transcript (a hundred lines: wrangler's summaries, plans, listings).
#[test]
fn a_quiet_rehearsal_prints_nothing_but_warnings() {
    // Its backup's failed verification is one warning it prints.
    let run = &quiet_rehearsal_from_a_name().run;
    run.assert_ok();
    assert_eq!(
        run.stdout,
        "",
        "stdout of a quiet rehearsal:\n{}",
        run.all()
    );
    let chatter: Vec<&str> = run
        .stderr
        .lines()
        .filter(|l| !l.trim().is_empty() && !l.contains("warning: "))
        .collect();
    assert!(
        chatter.is_empty(),
        "a quiet rehearsal printed {chatter:?}:\n{}",
        run.all()
    );
}

/// Issue 13: any name `list` prints is taken by every command that takes a
/// backup, a bare one resolved in the backup directory. `rehearse --from`
/// read a bare name as a path from the current directory, and refused it as
/// "a backup with no manifest".
#[test]
fn a_rehearsal_starts_from_a_name_that_list_prints() {
    let shared = quiet_rehearsal_from_a_name();
    let listed = &shared.listed;
    assert!(listed.stdout.contains(&shared.name), "{}", listed.all());

    shared.run.assert_ok();
}

/// `rehearse --serve` prints `export NAME='VALUE'` lines to paste, with
/// the value put between single quotes as it is: a backup directory whose
/// path holds a `'` (`it's backups`, or a `'$(…)'` planted where the
/// directory is named) ends the quotes early, and the pasted line sets a
/// wrong directory or runs what follows. Each value is quoted for the
/// shell, as every printed command is.
#[test]
fn a_served_rehearsal_prints_exports_that_a_shell_reads_back_whatever_the_backup_directory() {
    let sb = Sandbox::new();
    let backup_dir = sb.path().join("it's backups");
    std::fs::create_dir(&backup_dir).unwrap();
    let mut cmd = sb.xtask_command(&["rehearse", "--serve", "--from", "empty"]);
    cmd.env("QBTIME_BACKUP_DIR", &backup_dir);
    let run = interrupt_once_printed(cmd, "Press Ctrl-C to stop");
    let line = run
        .stdout
        .lines()
        .find(|l| l.contains("export QBTIME_BACKUP_DIR="))
        .unwrap_or_else(|| panic!("no backup directory export:\n{}", run.all()))
        .trim()
        .to_owned();
    let read_back = std::process::Command::new("sh")
        .arg("-c")
        .arg(format!("{line}\nprintf %s \"$QBTIME_BACKUP_DIR\""))
        .output()
        .unwrap();
    let value = String::from_utf8_lossy(&read_back.stdout);
    assert!(
        value.starts_with(&format!("{}/.rehearsal-", backup_dir.display())),
        "pasted, {line:?} sets QBTIME_BACKUP_DIR to {value:?} (stderr: {})",
        String::from_utf8_lossy(&read_back.stderr)
    );
}

/// A quiet rehearsal whose step fails names the step that failed, on the
/// channel `-q` does not silence: the cycle's headers and its summary are
/// said (silenced), so a quiet job's log held the step's own error alone,
/// with nothing saying it was the rehearsal's migrate that failed, nor
/// that the steps after it did not run.
#[test]
fn a_quiet_rehearsal_whose_step_fails_names_the_step() {
    let sb = Sandbox::new();
    sb.apply_migrations();
    sb.execute_sql(SEED_SQL);
    sb.xtask(&["backup", "local"]).assert_ok();
    let name = only_backup(&sb);
    // A pending migration that fails when the rehearsal's migrate applies it.
    std::fs::write(
        sb.path().join("migrations").join("0099_broken.sql"),
        "INSERT INTO no_such_table VALUES (1);\n",
    )
    .unwrap();

    let run = sb.xtask(&["-q", "rehearse", "--from", &name]);
    assert_eq!(run.code, Some(1), "{}", run.all());
    assert!(
        run.stderr
            .lines()
            .any(|l| l.starts_with("error: ") && l.contains("migrate step failed")),
        "a quiet rehearsal that failed does not say which step:\n{}",
        run.all()
    );
}

/// `restore` of a backup whose manifest records a failed verification
/// warns that it failed (even with `-q`); a rehearsal loaded it into its
/// prod with no word, and its cycle then passed as if over good data.
#[test]
fn a_rehearsal_from_a_backup_that_failed_its_verification_warns_as_restore_does() {
    let shared = quiet_rehearsal_from_a_name();
    let restore = &shared.restore;
    let warning = restore
        .stderr
        .lines()
        .find(|l| l.contains("failed its verification"))
        .unwrap_or_else(|| panic!("restore does not warn:\n{}", restore.all()))
        .to_owned();

    let run = &shared.run;
    assert!(
        run.stderr.lines().any(|l| l == warning),
        "the rehearsal does not warn as restore does ({warning}):\n{}",
        run.all()
    );
}

/// A rehearsal needs no Cloudflare account, whatever credentials the
/// operator's shell holds. wrangler prefers a Global API Key
/// (`CLOUDFLARE_API_KEY` with `CLOUDFLARE_EMAIL`) over
/// `CLOUDFLARE_API_TOKEN`: a shell that had them set sent the operator's
/// real key to the loopback instead of its token, so every rehearsal failed
/// at its first step with "Cloudflare refused the API token: check
/// CLOUDFLARE_API_TOKEN".
#[test]
fn a_rehearsal_passes_in_a_shell_that_holds_a_global_api_key() {
    let run = rehearsal_from_an_operators_shell();
    run.assert_ok();
    assert!(
        !run.all().contains(GLOBAL_API_KEY[0].1),
        "the key was printed:\n{}",
        run.all()
    );
}

/// A rehearsal serves a copy of prod (decrypted, when the backup was
/// sealed) on 127.0.0.1, where every local user, and every process of the
/// machine, can connect. Its API token was a constant written in this
/// repository's source, so anyone who read the source could query the
/// copy while it ran (`rehearse --serve` runs for hours). Each rehearsal's
/// token is its own: the one in the source is refused.
#[test]
fn a_served_rehearsal_refuses_a_token_anyone_could_read_in_the_source() {
    use std::io::{BufRead, Read, Write};
    let sb = Sandbox::new();
    let mut child = sb
        .xtask_command(&["rehearse", "--serve", "--from", "empty"])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let mut stdout = std::io::BufReader::new(child.stdout.take().unwrap());
    let mut seen = String::new();
    let mut base = None;
    loop {
        let mut line = String::new();
        if stdout.read_line(&mut line).unwrap() == 0 {
            break;
        }
        seen.push_str(&line);
        if let Some((_, value)) = line.trim().split_once("export CLOUDFLARE_API_BASE_URL=") {
            base = Some(value.trim_matches('\'').to_owned());
        }
        if line.contains("Press Ctrl-C to stop") {
            break;
        }
    }
    let base = base.unwrap_or_else(|| panic!("no base URL export:\n{seen}"));
    let rest = base.strip_prefix("http://").unwrap();
    let (host, path) = rest.split_once('/').unwrap();
    let mut stream = std::net::TcpStream::connect(host).unwrap();
    write!(
        stream,
        "GET /{path}/accounts/0000000000000000000000000000cafe/d1/database HTTP/1.1\r\n\
         Host: {host}\r\nAuthorization: Bearer rehearsal-token-not-a-cloudflare-token\r\n\
         Connection: close\r\n\r\n"
    )
    .unwrap();
    let mut answer = String::new();
    let _ = stream.read_to_string(&mut answer);
    // SAFETY: kill(2) on our own child, which has not been waited for.
    unsafe {
        libc::kill(child.id() as libc::pid_t, libc::SIGINT);
    }
    let _ = child.wait();
    let status = answer.lines().next().unwrap_or_default().to_owned();
    assert!(
        !status.contains(" 200 "),
        "the source's token lists the rehearsal's databases: {status}\n{answer}"
    );
}

/// A rehearsal run with `--backup-dir DIR` typed: its steps run with the
/// rehearsal's own backup directory (`QBTIME_BACKUP_DIR`), never DIR. But
/// the commands it prints were given DIR as if to paste against the real
/// backups: `--serve`'s "export these and run" lines read `cargo xtask
/// --backup-dir DIR backup prod`, which pasted after the exports overrides
/// the exported rehearsal directory and writes the loopback's prod into
/// the real backups (where `latest:prod` then finds it), though the run
/// says "never to the real ones"; the step headers and `--json`'s
/// `plan.steps[].command` name a `--backup-dir` the step never had. A
/// rehearsal's commands are its own, printed as they run.
#[test]
fn a_rehearsals_commands_never_carry_the_typed_backup_dir_to_the_real_backups() {
    let sb = Sandbox::new();
    let outside = tempfile::tempdir().unwrap();
    let real = outside.path().join("real backups");
    std::fs::create_dir(&real).unwrap();
    let real_arg = real.to_str().unwrap();
    let run = interrupt_once_printed(
        sb.xtask_command(&[
            "--backup-dir",
            real_arg,
            "rehearse",
            "--serve",
            "--from",
            "empty",
        ]),
        "Press Ctrl-C to stop",
    );
    let commands: Vec<&str> = { run.stdout.lines().chain(run.stderr.lines()) }
        .map(str::trim)
        .filter(|l| l.starts_with("cargo xtask "))
        .collect();
    assert!(
        commands.len() >= 3,
        "too few commands to judge:\n{}",
        run.all()
    );
    for command in commands {
        assert!(
            !command.contains("--backup-dir"),
            "`{command}`, pasted after the exports, reaches the real backups, not the \
             rehearsal's:\n{}",
            run.all()
        );
    }

    // The same, run (once for these tests) with a Global API Key set too.
    let run = rehearsal_from_an_operators_shell();
    run.assert_ok();
    let doc: serde_json::Value = serde_json::from_str(&run.stdout)
        .unwrap_or_else(|e| panic!("stdout is not one JSON document ({e}):\n{}", run.stdout));
    let steps = doc["plan"]["steps"].as_array().cloned().unwrap_or_default();
    assert!(!steps.is_empty(), "{doc}");
    for step in steps {
        let command = step["command"].as_str().unwrap_or_default();
        assert!(
            command.starts_with("cargo xtask ") && !command.contains("--backup-dir"),
            "the step ran with the rehearsal's backup directory, not as {command:?}"
        );
    }
    for header in run.stderr.lines().filter(|l| l.starts_with("== rehearse:")) {
        assert!(!header.contains("--backup-dir"), "{header}");
    }
}

/// rvW: a rehearsal killed (SIGKILL, the OOM killer) left its directory,
/// a plain copy of prod (its loopback's databases, and backups decrypted),
/// until the next *rehearsal*, which may never run: backup, prune, status
/// and doctor never swept nor mentioned it. Every command that takes the
/// backup lock, and status and doctor, remove a dead rehearsal's directory
/// now (as a rehearsal does: only one its mark says is of a run gone),
/// saying so; one whose rehearsal lives (its pid, or a lock on it) stays,
/// and status names it; a look-alike outside backups/ is never touched.
#[test]
fn a_killed_rehearsals_copy_of_prod_is_removed_by_backup_status_and_doctor() {
    let sb = Sandbox::new();
    sb.apply_migrations();
    let here = machine_here(None);
    let dead_name = |n: u32| format!(".rehearsal-20261204-0700{n:02}-21474830{n:02}");
    // A rehearsal running: its pid is a live process of ours.
    let mut running = std::process::Command::new("sleep")
        .arg("600")
        .spawn()
        .unwrap();
    let live = plant_rehearsal(
        &sb,
        &format!(".rehearsal-20261204-065900-{}", running.id()),
        &here,
    );
    // One whose pid is gone but that a live run holds (its lock).
    let held = plant_rehearsal(&sb, &dead_name(99), &here);
    let lock = std::fs::File::open(&held).unwrap();
    lock.lock_shared().unwrap();
    // A look-alike outside backups/.
    let decoy = sb.path().join(dead_name(98));
    std::fs::create_dir_all(&decoy).unwrap();
    std::fs::write(decoy.join("prod.sqlite"), "not the backup directory's").unwrap();
    std::fs::write(decoy.join(".removed-when-done"), &here).unwrap();

    for (n, args) in [
        (1, &["backup", "local"][..]),
        (2, &["status"][..]),
        (3, &["doctor"][..]),
        (4, &["prune", "--dry-run"][..]),
    ] {
        let dead = plant_rehearsal(&sb, &dead_name(n), &here);
        let run = sb.xtask(args);
        let said = run.all();
        let note = said
            .lines()
            .find(|l| l.contains(&dead_name(n)))
            .unwrap_or("");
        assert!(
            !dead.exists() && note.contains("removed") && note.contains("killed"),
            "`{}` left the copy of prod a killed rehearsal left:\n{said}",
            args.join(" ")
        );
        assert!(live.join("prod.sqlite").exists(), "{args:?}: {said}");
        assert!(held.join("prod.sqlite").exists(), "{args:?}: {said}");
        if args == ["status"] {
            let live_name = live.file_name().unwrap().to_str().unwrap();
            assert!(
                said.lines()
                    .any(|l| l.contains(live_name) && l.contains("copy of")),
                "status does not name the rehearsal directory still there:\n{said}"
            );
        }
    }
    assert!(decoy.join("prod.sqlite").exists());
    assert_eq!(
        std::fs::read_to_string(decoy.join("prod.sqlite")).unwrap(),
        "not the backup directory's"
    );
    drop(lock);
    running.kill().unwrap();
    running.wait().unwrap();
}

/// rvAG: the loopback a rehearsal serves kept a Time Travel snapshot (a
/// whole copy of prod, decrypted when the backup was sealed) of every
/// state in `/tmp/d1-loopback-snapshots-*/` (0755, files 0644 under a
/// umask of 022), and its R2 objects in `/tmp/d1-loopback-*`: readable by
/// every local user, and left for good by a `rehearse --serve` killed.
/// Every file the loopback writes is this user's alone (0700, 0600,
/// whatever the umask), inside the rehearsal's own directory.
#[test]
fn a_served_rehearsals_snapshots_of_prod_are_private_and_inside_its_directory() {
    use std::io::{Read, Write};
    use std::os::unix::fs::PermissionsExt;
    use std::os::unix::process::CommandExt;
    let (sb, name) = sandbox_with_a_backup();
    let tmp = sb.path().join("tmp");
    std::fs::create_dir(&tmp).unwrap();
    std::fs::set_permissions(&tmp, std::fs::Permissions::from_mode(0o700)).unwrap();
    let source = sb.backups().join(&name);
    let mut cmd = sb.xtask_command(&["rehearse", "--serve", "--from", source.to_str().unwrap()]);
    cmd.env("TMPDIR", &tmp);
    // SAFETY: umask(2) only, between fork and exec.
    unsafe {
        cmd.pre_exec(|| {
            libc::umask(0o022);
            Ok(())
        });
    }
    let served = Served::start(cmd);
    let vars = &served.vars;
    // Rows added to prod, two states later: two more snapshots.
    let base = &vars["CLOUDFLARE_API_BASE_URL"];
    let (host, path) = base
        .strip_prefix("http://")
        .unwrap()
        .split_once('/')
        .unwrap();
    for n in 0..2 {
        let body = format!(
            r#"{{"sql":"INSERT INTO encryption_keys (key_id, fingerprint, activated_at, retired_at) VALUES ('dek-x{n}', 'sha256:x{n}', '2026-02-01T00:00:00.000Z', '2026-03-01T00:00:00.000Z')"}}"#
        );
        let mut stream = std::net::TcpStream::connect(host).unwrap();
        write!(
            stream,
            "POST /{path}/accounts/{}/d1/database/9c8b7a6d-5e4f-4a3b-8c2d-1e0f9a8b7c6d/query \
             HTTP/1.1\r\nHost: {host}\r\nAuthorization: Bearer {}\r\nContent-Type: \
             application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
            vars["CLOUDFLARE_ACCOUNT_ID"],
            vars["CLOUDFLARE_API_TOKEN"],
            body.len()
        )
        .unwrap();
        let mut answer = String::new();
        let _ = stream.read_to_string(&mut answer);
        assert!(answer.contains("\"success\":true"), "{answer}");
    }
    // Killed: nothing cleans up.
    drop(served);

    let outside: Vec<_> = std::fs::read_dir(&tmp)
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    assert!(
        outside.is_empty(),
        "written outside the rehearsal's directory: {outside:?}"
    );
    let mut walk: Vec<_> = { sb.backup_files().into_iter() }
        .filter(|f| f.starts_with(".rehearsal-"))
        .map(|f| sb.backups().join(f))
        .collect();
    assert_eq!(walk.len(), 1, "{walk:?}");
    let (mut snapshots, mut shared) = (0, Vec::new());
    while let Some(p) = walk.pop() {
        let meta = std::fs::symlink_metadata(&p).unwrap();
        if meta.permissions().mode() & 0o077 != 0 {
            shared.push(format!(
                "{:o} {}",
                meta.permissions().mode() & 0o777,
                p.display()
            ));
        }
        if meta.is_dir() {
            walk.extend(std::fs::read_dir(&p).unwrap().map(|e| e.unwrap().path()));
        }
        let file = p.file_name().unwrap().to_string_lossy().into_owned();
        if file.len() == 15
            && file.ends_with(".sqlite")
            && file[..8].bytes().all(|b| b.is_ascii_digit())
        {
            snapshots += 1;
        }
    }
    assert!(shared.is_empty(), "readable by others: {shared:#?}");
    assert!(
        snapshots >= 3,
        "{snapshots} snapshots in the rehearsal's directory"
    );
}

/// `rehearse` with no `--from` where prod has no backups at all starts
/// from the migrations with no rows: it must say so on stderr (a warning,
/// which `-q` keeps), not only in the plain report.
#[test]
fn a_rehearsal_without_any_backup_of_prod_warns_it_starts_from_empty() {
    let sb = Sandbox::new();
    let run = interrupt_once_printed(
        sb.xtask_command(&["rehearse", "--serve"]),
        "Press Ctrl-C to stop",
    );
    assert!(
        run.stderr
            .lines()
            .any(|l| l.starts_with("warning: ") && l.contains("no backups of prod")),
        "a rehearsal with no backup of prod does not warn that it starts from empty:\n{}",
        run.all()
    );
}

/// prod's only backup is marked bad: `-q rehearse` turned "no good backup"
/// into "start from empty", silently, and exited 0. It must refuse, naming
/// the bad backup and the ways out, and rehearse nothing.
#[test]
fn a_rehearsal_whose_prod_backups_are_all_bad_refuses_and_names_them() {
    let remote = Remote::new("");
    let home = tempfile::tempdir().unwrap();
    let name = remote.backup_prod(home.path());
    edit_manifest(&remote.sb, &name, |m| {
        m["verification"]["outcome"] = "bad".into();
        m["verification"]["failed"] = serde_json::json!(["rows: differ"]);
    });
    let run = remote.xtask(home.path(), &["-q", "rehearse"]);
    assert_eq!(run.code, Some(3), "{}", run.all());
    assert!(
        run.stderr.contains(&name) && run.stderr.contains("--from empty"),
        "{}",
        run.all()
    );
    assert!(run.stdout.is_empty(), "{}", run.stdout);
}

/// rvAR: a kept rehearsal's restore-to-prod step prints its way back,
/// `to go back, restore it: cargo xtask restore <the rehearsal's
/// directory>/backups/backup-prod-….sql --to prod --replace --confirm
/// qbtime_db_prod`. Pasted into the operator's shell, where the
/// credentials point at the real prod, it replaced the real prod's rows
/// with the rehearsal's copy of the loopback's (the plan called it a full
/// backup of qbtime_db_prod). A backup a rehearsal took is refused for any
/// target outside that rehearsal: each restore command it prints, pasted,
/// and a copy of its backup moved out of its directory (a manifest's
/// mark, not only a path, tells it).
#[test]
fn a_rehearsals_backups_are_refused_outside_it_whatever_command_it_printed() {
    // The real prod (here a loopback the rehearsal does not know of).
    let remote = Remote::new("");
    let home = tempfile::tempdir().unwrap();
    let before = remote.live_counts();
    let rehearsal = kept_rehearsal_from_empty(&remote.sb);
    rehearsal.assert_ok();
    let all = rehearsal.all();
    let pasted: Vec<&str> = all
        .lines()
        .filter(|l| !l.starts_with("== rehearse:"))
        .filter_map(|l| l.split("cargo xtask restore ").nth(1))
        .collect();
    assert!(
        !pasted.is_empty(),
        "the rehearsal printed no restore command:\n{all}"
    );
    let mut copied = None;
    for command in pasted {
        let words: Vec<String> = command
            .split_whitespace()
            .map(|w| w.trim_matches(['\'', '`', '"']).to_owned())
            .collect();
        let mut args = vec!["restore"];
        args.extend(words.iter().map(String::as_str));
        let run = remote.xtask(home.path(), &args);
        assert_eq!(
            run.code,
            Some(3),
            "a rehearsal's printed command was not refused in the real shell: cargo xtask \
             restore {command}\n{}",
            run.all()
        );
        assert!(
            run.stderr.contains("rehearsal") && run.stderr.contains("loopback"),
            "the refusal does not say the backup is a rehearsal's copy of the loopback's:\n{}",
            run.all()
        );
        copied.get_or_insert(std::path::PathBuf::from(&words[0]));
    }
    assert_eq!(remote.live_counts(), before, "the real prod was changed");
    // A copy moved out of the rehearsal's directory, beside the real
    // backups, with its manifest.
    let file = copied.unwrap();
    let name = file.file_name().unwrap().to_str().unwrap().to_owned();
    let manifest = name.replace(".sql", ".manifest.json");
    std::fs::copy(&file, remote.sb.backups().join(&name)).unwrap();
    std::fs::copy(
        file.with_file_name(&manifest),
        remote.sb.backups().join(&manifest),
    )
    .unwrap();
    for to in [
        &["--to", "prod", "--replace", "--confirm", "qbtime_db_prod"][..],
        &["--to", "staging", "--replace", "--yes"][..],
    ] {
        let mut args = vec!["restore", name.as_str()];
        args.extend(to);
        let run = remote.xtask(home.path(), &args);
        assert_eq!(
            run.code,
            Some(3),
            "a rehearsal's backup moved beside the real ones was not refused ({to:?}):\n{}",
            run.all()
        );
        assert!(run.stderr.contains("rehearsal"), "{}", run.all());
    }
    assert_eq!(remote.live_counts(), before, "the real prod was changed");
}

/// LB: a rehearsal's backup copied out of its directory without its
/// manifest (`cp …/.rehearsal-…/backups/backup-prod-….sql /tmp/`) and
/// restored with `--no-manifest --source-env prod` into the real prod was
/// not refused: the mark was only in the manifest, and the path rule
/// needs the `.rehearsal-…` directory. The dump itself carries the mark
/// now. And a copy beside the real backups, manifest and all, was
/// `latest:prod`, which restore then refused: `latest` passes over it,
/// naming it, and restores the newest real backup.
#[test]
fn a_rehearsals_backup_is_refused_without_its_manifest_and_passed_over_by_latest() {
    let remote = Remote::new("");
    let home = tempfile::tempdir().unwrap();
    let real = remote.backup_prod(home.path());
    let before = remote.live_counts();
    let rehearsal = kept_rehearsal_from_empty(&remote.sb);
    rehearsal.assert_ok();
    let kept = std::fs::read_dir(remote.sb.backups())
        .unwrap()
        .flatten()
        .find(|e| e.file_name().to_string_lossy().starts_with(".rehearsal-"))
        .expect("the kept rehearsal's directory")
        .path()
        .join("backups");
    let plain = |n: &str| {
        n.len() == "backup-prod-20261205-2331.sql".len()
            && n.starts_with("backup-prod-")
            && n.ends_with(".sql")
    };
    let mut names: Vec<String> = std::fs::read_dir(&kept)
        .unwrap()
        .flatten()
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter(|n| plain(n))
        .collect();
    names.sort();
    let name = names
        .first()
        .expect("a backup of prod in the rehearsal")
        .clone();
    let file = kept.join(&name);
    // The real backup was taken before the rehearsal (the kept rehearsal
    // is shared, made when the first test asked for it): dated an hour
    // before the rehearsal's backup, as when this test took both itself.
    let taken: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(kept.join(name.replace(".sql", ".manifest.json"))).unwrap(),
    )
    .unwrap();
    let taken = chrono::DateTime::parse_from_rfc3339(taken["created_at"].as_str().unwrap())
        .unwrap()
        .with_timezone(&chrono::Utc);
    // The real backup may come from a template taken earlier, in that very
    // minute (found by the suite): then a minute before it.
    let mut before_it = taken - chrono::Duration::hours(1);
    if real.contains(&before_it.format("-%Y%m%d-%H%M.").to_string()) {
        before_it -= chrono::Duration::minutes(1);
    }
    let real = redate(&remote.sb, &real, before_it);
    // Copied out alone, and restored without a manifest.
    let out = tempfile::tempdir().unwrap();
    let alone = out.path().join(&name);
    std::fs::copy(&file, &alone).unwrap();
    for to in [
        &["--to", "prod", "--replace", "--confirm", "qbtime_db_prod"][..],
        &["--to", "staging", "--replace", "--yes"][..],
    ] {
        let mut args = vec!["restore", alone.to_str().unwrap()];
        args.extend(["--no-manifest", "--source-env", "prod"]);
        args.extend(to);
        let run = remote.xtask(home.path(), &args);
        assert_eq!(
            run.code,
            Some(3),
            "a rehearsal's backup without its manifest was not refused ({to:?}):\n{}",
            run.all()
        );
        assert!(
            run.stderr.contains("rehearsal") && run.stderr.contains("loopback"),
            "{}",
            run.all()
        );
    }
    assert_eq!(remote.live_counts(), before, "the real prod was changed");
    // Copied beside the real backups with its manifest, under a name of
    // its own: `latest:prod` passes over it, saying so.
    let copy = name.replace(".sql", "-9.sql");
    std::fs::copy(&file, remote.sb.backups().join(&copy)).unwrap();
    let manifest = name.replace(".sql", ".manifest.json");
    let mut m: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(kept.join(&manifest)).unwrap()).unwrap();
    assert_eq!(m["verification"]["outcome"], "good", "{m:#}");
    m["file"]["name"] = copy.clone().into();
    as_recorded_before_manifest_hashes(&mut m);
    std::fs::write(
        remote
            .sb
            .backups()
            .join(copy.replace(".sql", ".manifest.json")),
        serde_json::to_string_pretty(&m).unwrap(),
    )
    .unwrap();
    let run = remote.xtask(
        home.path(),
        &[
            "restore",
            "latest:prod",
            "--to",
            "staging",
            "--replace",
            "--yes",
        ],
    );
    assert_eq!(
        run.code,
        Some(0),
        "latest:prod chose the rehearsal's backup:\n{}",
        run.all()
    );
    assert!(
        run.stderr
            .lines()
            .any(|l| l.contains(&copy) && l.contains("rehearsal") && l.contains(&real)),
        "latest:prod did not say, in one line, that it passed over the rehearsal's backup for \
         the real one:\n{}",
        run.all()
    );
}

/// rvCN 1: a shell that unset a served rehearsal's `QBTIME_REHEARSAL` and
/// `QBTIME_BACKUP_DIR` but kept `CLOUDFLARE_API_BASE_URL` on its loopback
/// took `backup prod` of the loopback's copy into the real `backups/` as
/// a plain prod backup, `latest:prod` from then on. Every command that
/// writes to `backups/` or `docs/` is refused there (exit 3), naming the
/// mix and both ways out; nothing is written. A full rehearsal shell
/// still backs up prod, a plain shell too.
#[test]
fn a_half_cleared_rehearsal_shell_writes_nothing_into_the_real_backups() {
    let (sb, name) = sandbox_with_a_backup();
    let from = sb.backups().join(&name);
    let served =
        Served::start(sb.xtask_command(&["rehearse", "--serve", "--from", from.to_str().unwrap()]));
    let held = files_under(&sb.backups());
    let drills = std::fs::read(sb.path().join("docs/restore-drills.md")).ok();
    let half: &[&str] = &["QBTIME_REHEARSAL", "QBTIME_BACKUP_DIR"];
    let refused: &[&[&str]] = &[
        &["backup", "prod"],
        &[
            "restore",
            "latest:prod",
            "--to",
            "staging",
            "--replace",
            "--yes",
        ],
        &["migrate", "prod", "--yes"],
        &["with-backup", "prod", "--", "true"],
        &["upload", "latest:prod"],
        &["offsite", "fetch", "latest", "--env", "prod"],
        &["drill", "--from", "prod", "--yes"],
        &["prune", "--env", "prod"],
        &["time-travel", "info", "prod"],
    ];
    for args in refused {
        let run = served.run_in(&sb, args, half);
        let said = format!("{args:?}:\n{}", run.all());
        assert_eq!(run.code, Some(3), "{said}");
        assert!(
            run.stderr.contains("CLOUDFLARE_API_BASE_URL")
                && run.stderr.contains("is not that rehearsal's")
                && run
                    .stderr
                    .contains("unset CLOUDFLARE_API_BASE_URL CLOUDFLARE_API_TOKEN")
                && run.stderr.contains("paste all of its exports again")
                && run.stderr.contains("Nothing was done"),
            "{said}"
        );
        assert!(!run.stdout.contains("Result: GOOD"), "{said}");
        assert_eq!(files_under(&sb.backups()), held, "{said}");
        let log = std::fs::read(sb.path().join("docs/restore-drills.md")).ok();
        assert_eq!(log, drills, "{said}");
    }
    served.run_in(&sb, &["backup", "prod"], &[]).assert_ok();
    sb.xtask(&["backup", "local"]).assert_ok();
}

/// rvCN 2: a directory named like a rehearsal's that no rehearsal made
/// (a `--backup-dir` typed by hand, a checkout under `.rehearsal-2025/`)
/// is no rehearsal's: local's backup is taken there. A real one's typed
/// as `--backup-dir` is refused with the advice that helps: leave out
/// `--backup-dir`.
#[test]
fn only_a_directory_a_rehearsal_made_is_taken_for_a_rehearsals() {
    let (sb, name) = sandbox_with_a_backup();
    // Outside the checkout, where git need not ignore them.
    let elsewhere = tempfile::tempdir().unwrap();
    for dir in [
        ".rehearsal-mine/backups",
        ".rehearsal-2025/checkout/backups",
    ] {
        let dir = elsewhere.path().join(dir);
        let typed = ["--backup-dir", dir.to_str().unwrap(), "backup", "local"];
        let run = sb.xtask(&typed);
        assert_eq!(run.code, Some(0), "{dir:?}:\n{}", run.all());
        assert!(run.stdout.contains("Result: GOOD"), "{}", run.all());
    }
    let from = sb.backups().join(&name);
    let served =
        Served::start(sb.xtask_command(&["rehearse", "--serve", "--from", from.to_str().unwrap()]));
    let its = served.vars["QBTIME_BACKUP_DIR"].clone();
    let held = files_under(&sb.backups());
    let every = [
        "QBTIME_REHEARSAL",
        "QBTIME_BACKUP_DIR",
        "CLOUDFLARE_API_BASE_URL",
    ];
    let run = served.run_in(&sb, &["--backup-dir", &its, "backup", "local"], &every);
    assert_eq!(run.code, Some(3), "{}", run.all());
    assert!(
        run.stderr.contains("leave out `--backup-dir`") && !run.stderr.contains("Run `unset"),
        "{}",
        run.all()
    );
    assert_eq!(files_under(&sb.backups()), held, "{}", run.all());
}

/// rvCN 2: `localhost`, any of 127.0.0.0/8 and `[::1]` are loopback
/// addresses, as 127.0.0.1 is: in a rehearsal's shell, a remote command
/// with one of them is not refused as one on "the real" database.
#[test]
fn every_loopback_address_counts_as_the_loopback() {
    let (sb, name) = sandbox_with_a_backup();
    let from = sb.backups().join(&name);
    let served =
        Served::start(sb.xtask_command(&["rehearse", "--serve", "--from", from.to_str().unwrap()]));
    let url = &served.vars["CLOUDFLARE_API_BASE_URL"];
    for host in ["localhost", "127.0.0.2", "[::1]"] {
        let other = url.replace("127.0.0.1", host);
        let mut cmd = sb.xtask_command(&["backup", "prod"]);
        cmd.envs(served.vars.iter())
            .env("CLOUDFLARE_API_BASE_URL", &other);
        let run = Run::from_output(cmd.output().unwrap());
        assert!(
            run.code != Some(3) && !run.stderr.contains("is the real"),
            "{other}:\n{}",
            run.all()
        );
    }
}

/// rvBV 1: a `QBTIME_REHEARSAL` left in a shell after `rehearse --serve`'s
/// exports (or set by hand) naming no rehearsal that runs, here, with its
/// backups where this command would write, marked a real backup a
/// rehearsal's: `backup local` said "Result: GOOD", `list` showed it
/// `full, rehearsal`, `latest` passed over it and restore refused it for
/// ever. Every command refuses before doing anything (exit 2), naming the
/// variable and the fix; the backups are as they were. So is one naming a
/// rehearsal directory that is there, kept, when this command's backups
/// are the real ones.
#[test]
fn a_leftover_rehearsal_variable_naming_no_live_rehearsal_is_refused_by_every_command() {
    let (sb, _) = sandbox_with_a_backup();
    let kept = sb.backups().join(".rehearsal-20261205-233142-966");
    std::fs::create_dir_all(kept.join("backups")).unwrap();
    let held = sb.backups_held();
    let commands: &[&[&str]] = &[
        &["backup", "local"],
        &["list"],
        &["status", "--env", "local"],
        &["prune", "--env", "local", "--dry-run"],
        &["restore", "latest:local", "--to", "local", "--dry-run"],
        &["verify", "latest:local"],
    ];
    for value in [".rehearsal-x", ".rehearsal-20261205-233142-966"] {
        for args in commands {
            let mut cmd = sb.xtask_command(args);
            cmd.env("QBTIME_REHEARSAL", value);
            let run = Run::from_output(cmd.output().unwrap());
            assert_eq!(run.code, Some(2), "{value} {args:?}:\n{}", run.all());
            assert!(
                run.stderr.contains("QBTIME_REHEARSAL")
                    && run.stderr.contains(value)
                    && run.stderr.contains("`unset QBTIME_REHEARSAL`"),
                "{value} {args:?}:\n{}",
                run.all()
            );
            assert!(!run.stdout.contains("Result: GOOD"), "{}", run.all());
            assert_eq!(sb.backups_held(), held, "{value} {args:?}:\n{}", run.all());
        }
    }
}

/// The lines `reader` gives, each passed to `each`, up to and with the
/// first that holds `needle`; panics if it ends before one does.
fn read_until(
    reader: &mut impl std::io::BufRead,
    needle: &str,
    mut each: impl FnMut(&str),
) -> String {
    let mut seen = String::new();
    loop {
        let mut line = String::new();
        assert!(
            reader.read_line(&mut line).unwrap() > 0,
            "ended early:\n{seen}"
        );
        seen.push_str(&line);
        each(&line);
        if line.contains(needle) {
            return seen;
        }
    }
}

/// A `rehearse --serve` running in its own process group, with the
/// exports it printed (their values unquoted), read once it says "Press
/// Ctrl-C to stop"; killed (the group) when dropped.
struct Served {
    child: std::process::Child,
    vars: std::collections::BTreeMap<String, String>,
}

impl Served {
    /// Starts `cmd`, a `rehearse --serve`, and reads its exports.
    fn start(mut cmd: std::process::Command) -> Served {
        use std::os::unix::process::CommandExt;
        cmd.process_group(0)
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::null());
        let mut child = cmd.spawn().unwrap();
        let mut stdout = std::io::BufReader::new(child.stdout.take().unwrap());
        // Killed on a panic too, once made.
        let mut served = Served {
            child,
            vars: std::collections::BTreeMap::new(),
        };
        read_until(&mut stdout, "Press Ctrl-C to stop", |line| {
            if let Some((k, v)) =
                { line.trim().strip_prefix("export ") }.and_then(|l| l.split_once('='))
            {
                served
                    .vars
                    .insert(k.to_owned(), v.trim_matches('\'').to_owned());
            }
        });
        served
    }

    /// `args` run in `sb` with the exports pasted, but those `left_out`.
    fn run_in(&self, sb: &Sandbox, args: &[&str], left_out: &[&str]) -> Run {
        let mut cmd = sb.xtask_command(args);
        cmd.envs({ self.vars.iter() }.filter(|(k, _)| !left_out.contains(&k.as_str())));
        Run::from_output(cmd.output().unwrap())
    }
}

impl Drop for Served {
    fn drop(&mut self) {
        // SAFETY: kill(2) on the group our own child leads.
        unsafe { libc::kill(-(self.child.id() as i32), libc::SIGKILL) };
        let _ = self.child.wait();
    }
}

/// Every file under `dir`, by its path from `dir`, with its sha256: a
/// backup taken anywhere under backups/, a rehearsal's directory included,
/// shows.
fn files_under(dir: &std::path::Path) -> std::collections::BTreeMap<String, String> {
    let mut found = std::collections::BTreeMap::new();
    let mut walk = vec![dir.to_path_buf()];
    while let Some(p) = walk.pop() {
        match std::fs::read_dir(&p) {
            Ok(entries) => walk.extend(entries.map(|e| e.unwrap().path())),
            Err(_) => {
                let rel = p.strip_prefix(dir).unwrap().display().to_string();
                let bytes = std::fs::read(&p).unwrap_or_default();
                found.insert(rel, sha256_hex(&bytes));
            }
        }
    }
    found
}

/// A row in local that no backup holds: a restore over local removes it.
const LOCAL_ONLY: &str = "INSERT INTO encryption_keys (key_id, fingerprint, activated_at, \
                          retired_at) VALUES ('dek-local-only', 'sha256:l', \
                          '2026-01-01T00:00:00.000Z', '2026-02-01T00:00:00.000Z')";

/// Whether local still holds the [`LOCAL_ONLY`] row.
fn holds_local_only(sb: &Sandbox) -> bool {
    let rows =
        sb.query("SELECT count(*) AS n FROM encryption_keys WHERE key_id = 'dek-local-only'");
    rows[0][0]["n"].as_u64() == Some(1)
}

/// rvCM 1: in a shell holding `rehearse --serve`'s exports ("run any
/// command of this tool"), the README's `restore latest:staging --to local
/// --replace --yes` replaced the real local D1 (no loopback serves it), and
/// put its only undo copy in the rehearsal's `backups/`, marked a
/// rehearsal's: unlisted, its printed way back refused in a plain shell,
/// and deleted by the `rm -rf` that `status` advises. Every command that
/// would act on local (or take its backup) there is refused before it does
/// anything, naming the exports to unset; so is one on a remote
/// environment when the exports left out `CLOUDFLARE_API_BASE_URL` (the real
/// Cloudflare API). Nothing is taken into the rehearsal's `backups/`.
#[test]
fn a_served_rehearsals_exports_refuse_commands_on_the_real_local_d1() {
    let (sb, name) = sandbox_with_a_backup();
    sb.execute_sql(LOCAL_ONLY);
    let from = sb.backups().join(&name);
    let served =
        Served::start(sb.xtask_command(&["rehearse", "--serve", "--from", from.to_str().unwrap()]));
    served.run_in(&sb, &["backup", "prod"], &[]).assert_ok();
    let held = files_under(&sb.backups());
    let drills = std::fs::read(sb.path().join("docs/restore-drills.md")).ok();
    let (local, base_url) = (
        "is this checkout's real local D1",
        "CLOUDFLARE_API_BASE_URL",
    );
    let refused: &[(&[&str], &[&str], &str)] = &[
        (&replacing_local("latest:prod"), &[], local),
        (&replacing_local("latest:staging"), &[], local),
        (&["backup", "local"], &[], local),
        (&["migrate", "local", "--yes"], &[], local),
        (&["with-backup", "local", "--", "true"], &[], local),
        (
            &["drill", "--to", "local", "--from", "prod", "--yes"],
            &[],
            local,
        ),
        (
            &["drill", "--from", "prod", "--yes"],
            &[],
            "the real drill log",
        ),
        (&["backup", "prod"], &[base_url], base_url),
        (
            &["upload", "latest:prod"],
            &[base_url],
            "R2 is the real one",
        ),
    ];
    for (args, left_out, named) in refused {
        let run = served.run_in(&sb, args, left_out);
        let said = format!("{args:?} without {left_out:?}:\n{}", run.all());
        assert_eq!(run.code, Some(3), "{said}");
        assert!(
            run.stderr.contains(named)
                && run
                    .stderr
                    .contains("unset QBTIME_REHEARSAL QBTIME_BACKUP_DIR")
                && run.stderr.contains("Nothing was done"),
            "{said}"
        );
        assert!(holds_local_only(&sb), "replaced local: {said}");
        assert_eq!(files_under(&sb.backups()), held, "{said}");
        let log = std::fs::read(sb.path().join("docs/restore-drills.md")).ok();
        assert_eq!(log, drills, "{said}");
    }
    // latest:local looks in the rehearsal's backups/, and says where, and
    // that local's real backups are read without the exports.
    let run = served.run_in(&sb, &["verify", "latest:local"], &[]);
    let dir = &served.vars["QBTIME_BACKUP_DIR"];
    assert!(
        run.code == Some(2)
            && run
                .stderr
                .contains(&format!("no full backup of local in {dir}"))
            && run
                .stderr
                .contains("QBTIME_BACKUP_DIR names: the rehearsal")
            && run.stderr.contains("real local D1")
            && run
                .stderr
                .contains("unset QBTIME_REHEARSAL QBTIME_BACKUP_DIR"),
        "{}",
        run.all()
    );
}

/// rvCM 1: the way out the refusal prints, pasted into the shell that
/// holds a served rehearsal's exports, lets the README's restore run on
/// the real local D1 with its undo copy a real backup: listed, its printed
/// way back runs as printed, and the `rm -rf` that `status` advises for
/// the rehearsal's directory leaves it.
#[test]
fn the_refusals_way_out_keeps_the_real_local_d1s_undo_copy_real() {
    let (sb, name) = sandbox_with_a_backup();
    sb.execute_sql(LOCAL_ONLY);
    let served = Served::start(sb.xtask_command(&["rehearse", "--serve", "--from", "empty"]));
    let mut restore = replacing_local(&name).to_vec();
    restore.push("--json");
    let refused = served.run_in(&sb, &restore, &[]);
    let unset = { refused.stderr.split('`') }
        .find(|s| s.starts_with("unset "))
        .unwrap_or_else(|| panic!("no way out:\n{}", refused.all()));
    let exports: String = { served.vars.iter() }
        .map(|(k, v)| format!("export {k}={}\n", shell_quoted(v)))
        .collect();
    let run = pasted(
        &sb,
        &format!("{exports}{unset}\ncargo xtask {}", restore.join(" ")),
    );
    run.assert_ok();
    assert!(!holds_local_only(&sb), "{}", run.all());
    let doc: serde_json::Value =
        serde_json::from_str(&run.stdout).unwrap_or_else(|e| panic!("{e}:\n{}", run.all()));
    let undo = doc["result"]["way_back_backup"]
        .as_str()
        .unwrap_or_default();
    let way_back = doc["result"]["way_back"].as_str().unwrap_or_default();
    let real = sb.backups().display().to_string();
    assert!(
        undo.starts_with(&real) && !undo.contains(".rehearsal-"),
        "{doc}"
    );
    drop(served);
    let status = sb.xtask(&["status"]).all();
    let rm = { status.split('`') }
        .find(|s| s.starts_with("rm -rf -- "))
        .unwrap_or_else(|| panic!("no rm advised:\n{status}"));
    pasted(&sb, rm).assert_ok();
    assert!(std::path::Path::new(undo).is_file(), "{rm} removed {undo}");
    let undo_name = std::path::Path::new(undo)
        .file_name()
        .unwrap()
        .to_string_lossy();
    let list = sb.xtask(&["list"]);
    assert!(list.stdout.contains(undo_name.as_ref()), "{}", list.all());
    let back = pasted(&sb, way_back);
    assert_eq!(back.code, Some(0), "{way_back}:\n{}", back.all());
    assert!(holds_local_only(&sb), "{way_back} did not put local back");
}

/// `value` single-quoted for a POSIX shell.
fn shell_quoted(value: &str) -> String {
    format!("'{}'", value.replace('\'', r"'\''"))
}

/// `script` run by a POSIX shell in the sandbox, as an operator pastes
/// it, with `cargo xtask` this build's xtask.
fn pasted(sb: &Sandbox, script: &str) -> Run {
    let script = format!("cargo() {{ shift; \"$XTASK\" \"$@\"; }}\n{script}");
    Run::from_output(
        sb.sandboxed(std::process::Command::new("sh"), &["-c", &script])
            .env("XTASK", env!("CARGO_BIN_EXE_xtask"))
            .output()
            .unwrap(),
    )
}
