//! `cargo xtask prune` on a backup directory: the plan, the guard, and what
//! is deleted.

use crate::common;

use std::fs::File;

use common::*;
use serde_json::Value;
use std::collections::BTreeSet;

/// One real backup, copied into backups of other ages (manifests rewritten),
/// named `backup-local-<stamp>.sql`, oldest first.
fn backups_aged(sb: &Sandbox, days_ago: &[(i64, &str)]) -> Vec<String> {
    sb.apply_migrations();
    sb.execute_sql(SEED_SQL);
    copies_aged(sb, days_ago)
}

/// [`backups_aged`] of a sandbox whose local D1 is set up already.
fn copies_aged(sb: &Sandbox, days_ago: &[(i64, &str)]) -> Vec<String> {
    sb.xtask(&["backup", "local"]).assert_ok();
    let original = only_backup(sb);
    let manifest = manifest_for(sb, &original);
    let now = chrono::Utc::now();
    let mut names = Vec::new();
    for (days, reason) in days_ago {
        let created = now - chrono::Duration::days(*days) - chrono::Duration::minutes(5);
        // The newest copy has a suffix, as a second backup in one minute
        // has: names of two lengths.
        let suffix = if *days == days_ago.last().unwrap().0 {
            "-2"
        } else {
            ""
        };
        let name = format!("backup-local-{}{suffix}.sql", created.format("%Y%m%d-%H%M"));
        std::fs::copy(sb.backups().join(&original), sb.backups().join(&name)).unwrap();
        let mut m: Value = manifest.clone();
        m["created_at"] = created.to_rfc3339().into();
        m["file"]["name"] = name.clone().into();
        m["reason"] = if reason.is_empty() {
            Value::Null
        } else {
            (*reason).into()
        };
        as_recorded_before_manifest_hashes(&mut m);
        std::fs::write(
            sb.backups().join(name.replace(".sql", ".manifest.json")),
            serde_json::to_string_pretty(&m).unwrap(),
        )
        .unwrap();
        names.push(name);
    }
    // The original (just taken) stays as the newest.
    names.push(original);
    names
}

fn present(sb: &Sandbox) -> Vec<String> {
    let mut files: Vec<String> = sb
        .backup_files()
        .into_iter()
        .filter(|n| n.ends_with(".sql"))
        .collect();
    files.sort();
    files
}

#[test]
fn prune_plans_refuses_without_yes_and_then_deletes_by_the_policy() {
    let sb = Sandbox::new();
    // backups.toml keeps local backups within 7d and the last 3 days.
    let names = backups_aged(
        &sb,
        &[
            (40, ""),
            (20, "pre-migration: 0005_x.sql"),
            (12, ""),
            (11, ""),
            (10, ""),
            (9, ""),
            (2, ""),
        ],
    );
    let before = present(&sb);
    assert_eq!(before.len(), 8);

    // The plan says what goes and why the rest stays; nothing is deleted.
    let run = sb.xtask(&["prune", "--dry-run"]);
    run.assert_ok();
    assert!(
        run.stdout.contains("local: keep_within 7d, keep_daily 3"),
        "{}",
        run.stdout
    );
    // Kept: the newest of each of the last 3 days with backups (today, 2 and
    // 9 days ago). Deleted: the rest, the 20-day-old pre-migration backup
    // included, since its window is keep_within, 7 days.
    for gone in &names[..5] {
        assert!(
            run.stdout.contains(&format!("delete  {gone}")),
            "{gone}\n{}",
            run.stdout
        );
    }
    for stays in &names[5..] {
        assert!(
            run.stdout.contains(&format!("keep    {stays}")),
            "{stays}\n{}",
            run.stdout
        );
    }
    assert!(
        run.stdout.contains("the newest verified backup"),
        "{}",
        run.stdout
    );
    // The reasons start in one column, whatever the names' lengths.
    let columns: BTreeSet<usize> = run
        .stdout
        .lines()
        .filter(|l| l.starts_with("  keep"))
        .map(|l| l.find("  (").unwrap())
        .collect();
    assert_eq!(columns.len(), 1, "{}", run.stdout);
    assert_eq!(present(&sb), before, "a dry run deleted something");

    // Without --yes and without a terminal: refused, nothing deleted.
    sb.xtask(&["prune"]).assert_refused("--yes");
    assert_eq!(present(&sb), before);

    // A held backup lock stops it too.
    let lock = File::create(sb.backups().join(".lock")).unwrap();
    lock.try_lock().unwrap();
    sb.xtask(&["prune", "--yes"]).assert_refused("lock");
    assert_eq!(present(&sb), before);
    drop(lock);

    sb.xtask(&["prune", "--yes"]).assert_ok();
    let after = present(&sb);
    let expected: Vec<String> = {
        let mut e = vec![names[5].clone(), names[6].clone(), names[7].clone()];
        e.sort();
        e
    };
    assert_eq!(after, expected);
    // Manifests went with their files.
    let manifests = sb
        .backup_files()
        .into_iter()
        .filter(|n| n.ends_with(".manifest.json"))
        .count();
    assert_eq!(manifests, 3);
}

#[test]
fn command_line_rules_override_the_file_and_the_newest_verified_backup_stays() {
    let sb = Sandbox::new();
    let names = backups_aged(&sb, &[(3, ""), (2, "")]);
    // Mark the newest bad: the newest verified is then the 2-day-old one.
    let newest = names.last().unwrap();
    let path = sb.backups().join(newest.replace(".sql", ".manifest.json"));
    let mut m: Value = serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap();
    m["verification"]["outcome"] = "bad".into();
    std::fs::write(&path, serde_json::to_string_pretty(&m).unwrap()).unwrap();

    let run = sb.xtask(&[
        "prune",
        "--env",
        "local",
        "--keep-within",
        "1h",
        "--keep-daily",
        "0",
        "--yes",
    ]);
    run.assert_ok();
    let after = present(&sb);
    assert!(
        after.contains(&names[1]),
        "the newest verified backup was deleted: {after:?}\n{}",
        run.stdout
    );
    assert!(
        after.contains(newest),
        "a backup within 1h was deleted: {after:?}"
    );
    assert!(!after.contains(&names[0]), "{after:?}");

    sb.xtask(&["prune", "--keep-within", "6mo"])
        .assert_refused("use 6m for 6 months");
    sb.xtask(&["prune", "--env", "nowhere"])
        .assert_refused("nowhere");
}

/// A copy of `original` (a verified local backup) and its manifest, as a
/// backup taken at `created`; returns the copy's file name.
fn copy_at(sb: &Sandbox, original: &str, created: chrono::DateTime<chrono::Utc>) -> String {
    let name = format!("backup-local-{}.sql", created.format("%Y%m%d-%H%M"));
    std::fs::copy(sb.backups().join(original), sb.backups().join(&name)).unwrap();
    let mut m = manifest_for(sb, original);
    m["created_at"] = created.to_rfc3339().into();
    m["file"]["name"] = name.clone().into();
    as_recorded_before_manifest_hashes(&mut m);
    std::fs::write(
        sb.backups().join(name.replace(".sql", ".manifest.json")),
        serde_json::to_string_pretty(&m).unwrap(),
    )
    .unwrap();
    name
}

#[test]
fn a_days_intact_backup_is_never_deleted_for_a_damaged_newer_one_of_that_day() {
    // Three days ago two backups were taken, at 10:00 and 11:00. The 11:00
    // file was later cut short (a disk that filled, a partial copy back
    // from another disk): `list` shows it as damaged. Today's backup is
    // intact. keep_daily 2 keeps one backup of each of the last two days
    // that have one: of three days ago, the one that can still be restored.
    let (sb, today) = sandbox_with_a_backup();
    let day = (chrono::Utc::now() - chrono::Duration::days(3)).date_naive();
    let at = |h: u32| day.and_hms_opt(h, 0, 0).unwrap().and_utc();
    let intact = copy_at(&sb, &today, at(10));
    let damaged = copy_at(&sb, &today, at(11));
    let path = sb.backups().join(&damaged);
    let bytes = std::fs::read(&path).unwrap();
    std::fs::write(&path, &bytes[..bytes.len() / 2]).unwrap();

    let listed = sb.xtask(&["list", "--json"]);
    listed.assert_ok();
    let rows: Vec<Value> = serde_json::from_str(&listed.stdout).unwrap();
    let verdict = |name: &str| {
        rows.iter()
            .find(|r| r["file"] == name)
            .map(|r| r["verified"].clone())
    };
    assert_eq!(verdict(&damaged), Some("damaged".into()), "{rows:?}");

    let run = sb.xtask(&[
        "prune",
        "--env",
        "local",
        "--keep-within",
        "1h",
        "--keep-daily",
        "2",
        "--yes",
    ]);
    run.assert_ok();
    assert!(
        sb.backups().join(&intact).exists(),
        "prune deleted {intact}, the only intact backup of its day, and kept {damaged}, \
         which list calls damaged:\n{}",
        run.all()
    );
    assert!(sb.backups().join(&today).exists(), "{}", run.all());
}

/// A SIGTERM while `prune --yes` deletes: the run said "the next run starts
/// clean" although backups were deleted, as asked. It says how many were,
/// of how many planned. The signal is sent when the first deletion shows
/// in the backup directory (inotify), while the rest are being deleted.
#[test]
fn a_prune_interrupted_while_it_deletes_says_how_many_it_deleted() {
    for _attempt in 0..3 {
        let sb = Sandbox::new();
        let days: Vec<(i64, &str)> = (10..310).rev().map(|d| (d, "")).collect();
        backups_aged(&sb, &days);
        let before = present(&sb).len();
        // Kept: the newest of each of the last 3 days (the local policy).
        let planned = before - 3;
        // SAFETY: inotify on a directory of our own; the fd is closed below.
        let fd = unsafe { libc::inotify_init1(libc::IN_CLOEXEC) };
        assert!(fd >= 0);
        let dir = std::ffi::CString::new(sb.backups().to_str().unwrap()).unwrap();
        // SAFETY: a valid fd and a NUL-terminated path.
        assert!(unsafe { libc::inotify_add_watch(fd, dir.as_ptr(), libc::IN_DELETE) } >= 0);
        let child = sb
            .xtask_command(&["prune", "--yes"])
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .unwrap();
        let pid = child.id() as libc::pid_t;
        let mut buf = [0u8; 4096];
        // SAFETY: reads into our own buffer; blocks until the first deletion.
        let n = unsafe { libc::read(fd, buf.as_mut_ptr().cast(), buf.len()) };
        assert!(n > 0, "no deletion seen");
        // SAFETY: kill(2) on our own child, not yet waited for.
        unsafe { libc::kill(pid, libc::SIGTERM) };
        // SAFETY: our own fd.
        unsafe { libc::close(fd) };
        let run = Run::from_output(child.wait_with_output().unwrap());
        if run.ok {
            // It had finished before the signal arrived: try again.
            continue;
        }
        assert_eq!(run.code, Some(143), "{}", run.all());
        let deleted = before - present(&sb).len();
        assert!(
            !run.stderr.contains("the next run starts clean"),
            "{deleted} backups deleted, yet:\n{}",
            run.stderr
        );
        let said = if deleted == planned {
            format!("deleted all {planned} backups")
        } else {
            format!("deleted {deleted} of the {planned} backups")
        };
        assert!(
            run.stderr.contains(&said),
            "expected {said:?}:\n{}",
            run.stderr
        );
        return;
    }
    panic!("prune finished before the signal three times");
}

/// [`another_project`]'s backups, in its backup directory, with a
/// `backups.toml` of its own that keeps local backups for 60 days.
fn another_projects_backups_in(days_ago: &[(i64, &str)]) -> (Sandbox, Vec<String>) {
    let other = another_project();
    let settings = other.path().join("backups.toml");
    let text = std::fs::read_to_string(&settings).unwrap().replace(
        "[local.retention]\nkeep_within = \"7d\"",
        "[local.retention]\nkeep_within = \"60d\"",
    );
    std::fs::write(&settings, text).unwrap();
    let names = copies_aged(&other, days_ago);
    (other, names)
}

#[test]
fn prune_never_deletes_another_projects_backups_in_a_shared_backup_directory() {
    let (other, theirs) = another_projects_backups_in(&[(40, ""), (20, ""), (10, "")]);
    let shared = other.backups();
    let shared_arg = shared.to_str().unwrap();
    let sb = Sandbox::new();
    sb.apply_migrations();
    sb.xtask(&["--backup-dir", shared_arg, "backup", "local"])
        .assert_ok();
    // Their own rules keep every one of them.
    let own = other.xtask(&["prune", "--dry-run"]);
    own.assert_ok();
    assert!(own.stdout.contains("Nothing to delete"), "{}", own.all());
    let plan = sb.xtask(&["--backup-dir", shared_arg, "prune", "--dry-run"]);
    plan.assert_ok();
    let run = sb.xtask(&["--backup-dir", shared_arg, "prune", "--yes"]);
    run.assert_ok();
    for name in &theirs {
        assert!(
            shared.join(name).exists(),
            "prune in one project deleted {name}, a backup of the other project's other_db_local, \
             by its own rules:\n{}",
            run.all()
        );
    }
    assert!(
        plan.all().contains("other_db_local")
            && plan.all().contains("not defined by this configuration"),
        "the plan does not say it leaves the other project's backups alone:\n{}",
        plan.all()
    );
}

/// A year of backups gives a dry run of a thousand lines, one per backup,
/// with no total but "N would be deleted": it ends with what each
/// environment keeps and deletes, and under `-q` that line is all it
/// prints (as restic's forget lists each snapshot, then the counts); a
/// real run under `-q` prints nothing.
#[test]
fn a_dry_run_ends_with_what_each_environment_keeps_and_deletes() {
    let sb = Sandbox::new();
    backups_aged(
        &sb,
        &[(40, ""), (12, ""), (11, ""), (10, ""), (9, ""), (2, "")],
    );
    let run = sb.xtask(&["prune", "--dry-run"]);
    run.assert_ok();
    let deleted = run
        .stdout
        .lines()
        .filter(|l| l.starts_with("  delete"))
        .count();
    let kept = run
        .stdout
        .lines()
        .filter(|l| l.starts_with("  keep"))
        .count();
    let counts = format!("local: keep {kept}, delete {deleted}");
    assert!(
        run.stdout.lines().any(|l| l == counts),
        "no {counts:?}:\n{}",
        run.stdout
    );
    let quiet = sb.xtask(&["-q", "prune", "--dry-run"]);
    quiet.assert_ok();
    assert_eq!(quiet.stdout, format!("{counts}\n"), "{}", quiet.all());
    // A real run under -q (the scheduled job's) prints nothing on a good
    // night, as every quiet command does: LP had it print the counts,
    // which broke the scheduled job's silence.
    let quiet = sb.xtask(&["-q", "prune", "--yes"]);
    quiet.assert_ok();
    assert_eq!(quiet.stdout, "", "{}", quiet.all());
    assert_eq!(present(&sb).len(), kept, "{}", quiet.all());
}

/// A backup file another process holds a shared lock on (a reader: a
/// verify, a restore, or anything else that takes one) is kept and named,
/// the others are deleted, and `--json` counts only what was; an
/// exclusive lock on a backup prune keeps anyway changes nothing. The
/// next prune, the lock gone, deletes it.
#[test]
fn a_backup_being_read_is_kept_by_prune_named_and_not_counted_as_deleted() {
    let sb = Sandbox::new();
    let names = backups_aged(&sb, &[(12, ""), (11, "")]);
    let read = File::open(sb.backups().join(&names[0])).unwrap();
    read.lock_shared().unwrap();
    let newest = File::open(sb.backups().join(&names[2])).unwrap();
    newest.lock().unwrap();
    let args = [
        "prune",
        "--env",
        "local",
        "--keep-within",
        "1h",
        "--keep-daily",
        "1",
        "--yes",
        "--json",
    ];
    let run = sb.xtask(&args);
    run.assert_ok();
    assert!(
        run.stderr
            .contains(&format!("kept {} this time: it is being read", names[0])),
        "{}",
        run.all()
    );
    let json: Value = serde_json::from_str(&run.stdout).unwrap();
    assert_eq!(json["deleted"], 1, "{}", run.all());
    assert_eq!(present(&sb), [names[0].clone(), names[2].clone()]);
    assert!(
        sb.backups()
            .join(names[0].replace(".sql", ".manifest.json"))
            .exists()
    );
    drop((read, newest));
    sb.xtask(&args).assert_ok();
    assert_eq!(present(&sb), [names[2].clone()]);
}

/// Another run holds the backup lock (a backup, say). `prune` with no
/// terminal and no `--yes` would need a question it cannot ask: it is
/// refused as such (exit 3, "pass --yes"), not told to wait for the lock
/// (exit 4), and deletes nothing; a dry run takes no lock and prints the
/// plan; `prune --yes` still waits on the lock (exit 4).
#[test]
fn a_prune_that_cannot_ask_is_refused_for_that_before_the_lock_and_a_dry_run_takes_none() {
    let sb = Sandbox::new();
    let names = backups_aged(&sb, &[(40, ""), (20, ""), (12, ""), (2, "")]);
    let before = present(&sb);
    let lock = hold_backup_lock(&sb, "backup prod");

    let run = sb.xtask(&["prune"]);
    assert_eq!(run.code, Some(3), "{}", run.all());
    assert!(run.stderr.contains("--yes"), "{}", run.all());
    assert!(
        !run.all().contains("backup prod"),
        "told of the lock:\n{}",
        run.all()
    );
    assert_eq!(present(&sb), before);

    let dry = sb.xtask(&["prune", "--dry-run"]);
    dry.assert_ok();
    assert!(
        dry.stdout.contains(&format!("delete  {}", names[0])),
        "{}",
        dry.all()
    );
    assert_eq!(present(&sb), before);

    let run = sb.xtask(&["prune", "--yes"]);
    assert_eq!(run.code, Some(4), "{}", run.all());
    assert_eq!(present(&sb), before);
    drop(lock);
}

/// A dry run says of each backup it would delete its size and the rules
/// that no longer keep it, then the bytes the deletions free; the kept
/// lines are as before. `--json` gives the same: each deletion's `bytes`
/// and `why`, and `bytes_freed`.
#[test]
fn a_dry_run_says_each_deletions_size_and_rules_and_the_bytes_freed() {
    let sb = Sandbox::new();
    let names = backups_aged(&sb, &[(40, ""), (12, ""), (9, ""), (2, "")]);
    let bytes = std::fs::metadata(sb.backups().join(&names[0]))
        .unwrap()
        .len();
    let size = |n: u64| {
        let kb = n as f64 / 1000.0;
        match n < 1000 {
            true => format!("{n} B"),
            false => format!("{kb:.1} KB"),
        }
    };
    let run = sb.xtask(&["prune", "--dry-run"]);
    run.assert_ok();
    // backups.toml: keep_within 7d, keep_daily 3.
    for gone in &names[..2] {
        let line = run.stdout_line_with(&format!("delete  {gone}"));
        assert!(
            line.contains(&size(bytes))
                && line.contains("older than keep_within 7d")
                && line.contains("past keep_daily 3"),
            "{line}\n{}",
            run.stdout
        );
    }
    let freed = run.stdout_line_with("would be deleted");
    assert!(
        freed.contains(&format!("freeing {}", size(2 * bytes))),
        "{}",
        run.stdout
    );
    for stays in &names[2..] {
        let line = run.stdout_line_with(&format!("keep    {stays}"));
        assert!(!line.contains(&size(bytes)), "{line}");
    }
    let json = sb.xtask(&["prune", "--dry-run", "--json"]);
    json.assert_ok();
    let v: Value = serde_json::from_str(json.stdout.trim()).unwrap();
    assert_eq!(v["bytes_freed"], 2 * bytes, "{v}");
    for d in v["backups"].as_array().unwrap() {
        match d["action"].as_str().unwrap() {
            "delete" => {
                assert_eq!(d["bytes"], bytes, "{d}");
                let why: Vec<&str> = d["why"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .map(|w| w.as_str().unwrap())
                    .collect();
                assert_eq!(
                    why,
                    ["older than keep_within 7d", "past keep_daily 3"],
                    "{d}"
                );
            }
            _ => assert!(d.get("why").is_none(), "{d}"),
        }
    }
}

/// A sandbox holding one backup 40 days old and a newer one, and the
/// prune that keeps one run under strace with `inject` (its second unlink
/// is the old backup's manifest); `None` (the test skipped) where strace
/// is not installed or may not trace.
fn pruned_under_strace(inject: &str) -> Option<Pruned> {
    let traced = std::process::Command::new("strace")
        .args(["-qq", "-o", "/dev/null", "true"])
        .status();
    if !traced.is_ok_and(|s| s.success()) {
        eprintln!("skipped: strace is not installed, or may not trace here (ptrace refused)");
        return None;
    }
    let sb = Sandbox::new();
    let names = backups_aged(&sb, &[(40, "")]);
    let manifest = sb
        .backups()
        .join(names[0].replace(".sql", ".manifest.json"));
    let prune = [crate::output::KEEP_ONE_LOCAL, &["--yes"]].concat();
    let mut strace = std::process::Command::new("strace");
    strace.args(["-f", "-qq", "-o", "/dev/null", "-e", inject]);
    strace.arg(env!("CARGO_BIN_EXE_xtask"));
    let run = Run::from_output(sb.sandboxed(strace, &prune).output().unwrap());
    Some(Pruned {
        sb,
        names,
        manifest,
        prune,
        run,
    })
}

/// The next prune that keeps one (`prune`) removes `manifest`, left by
/// an earlier one (`left`: whose it is, for the failure), saying so, and
/// leaves only the newer backup `kept`.
fn finished_by_the_next_prune(
    sb: &Sandbox,
    prune: &[&str],
    manifest: &std::path::Path,
    kept: &str,
    left: &str,
) {
    let next = sb.xtask(prune);
    next.assert_ok();
    assert!(
        !manifest.exists()
            && next
                .stderr
                .contains(&format!("removing {}", manifest.display())),
        "{left} is still there, or not told:\n{}",
        next.all()
    );
    assert_eq!(present(sb), vec![kept.to_owned()]);
}

/// What [`pruned_under_strace`] left: the sandbox, its backups' names
/// (oldest first), the old one's manifest, the prune's arguments and its
/// run.
struct Pruned {
    sb: Sandbox,
    names: Vec<String>,
    manifest: std::path::PathBuf,
    prune: Vec<&'static str>,
    run: Run,
}

/// rvW: a prune killed (here by strace, at its second unlink: the
/// manifest of the backup it had just deleted) left that manifest with no
/// backup, which list, status and the next prune never showed, the next
/// run saying only that the prune was gone without releasing its lock. The
/// next run that takes the lock finishes that delete, saying so.
#[test]
fn a_prune_killed_between_a_backups_file_and_its_manifest_is_finished_by_the_next_run() {
    let Some(Pruned {
        sb,
        names,
        manifest,
        prune,
        run: killed,
    }) = pruned_under_strace("inject=unlink:signal=KILL:when=2")
    else {
        return;
    };
    let old = &names[0];
    assert!(
        !sb.backups().join(old).exists() && manifest.exists(),
        "the prune was not killed between the backup and its manifest:\n{}",
        killed.all()
    );

    finished_by_the_next_prune(
        &sb,
        &prune,
        &manifest,
        &names[1],
        "the manifest the killed prune left",
    );
}

/// A manifest whose delete fails (EIO, injected at the syscall: nothing in
/// the tool is told to fail) once its backup is deleted stays recorded in
/// the lock, as a killed prune's does: the run says so, and the next run
/// that takes the lock removes it.
#[test]
fn a_prune_that_cannot_delete_a_deleted_backups_manifest_leaves_it_to_the_next_run() {
    let Some(Pruned {
        sb,
        names,
        manifest,
        prune,
        run: failed,
    }) = pruned_under_strace("inject=unlink:error=EIO:when=2")
    else {
        return;
    };
    let old = &names[0];
    assert!(
        !failed.ok && !sb.backups().join(old).exists() && manifest.exists(),
        "the manifest's delete did not fail after its backup's:\n{}",
        failed.all()
    );
    let file = manifest.file_name().unwrap().to_string_lossy();
    assert!(
        failed.stderr.contains(&*file) && failed.stderr.contains("the next run"),
        "the failed prune does not say the manifest is left, and who finishes it:\n{}",
        failed.all()
    );

    finished_by_the_next_prune(
        &sb,
        &prune,
        &manifest,
        &names[1],
        "the manifest the failed prune left",
    );
}

/// rvAD: a manifest whose delete fails for a lasting reason (EIO, injected
/// at the syscall) fails the prune, and fails again for the next run that
/// takes the lock: that run warns, and carries the record into its own
/// lock, so that the run after it, whose delete succeeds, still removes
/// that manifest. The record was lost: the second run wrote its own over
/// it, and the manifest stayed, told by no run.
#[test]
fn a_manifest_the_next_run_cannot_delete_either_is_left_to_the_run_after() {
    let Some(Pruned {
        sb,
        names,
        manifest,
        prune,
        run: failed,
    }) = pruned_under_strace("inject=unlink:error=EIO:when=2")
    else {
        return;
    };
    assert!(
        !failed.ok && manifest.exists(),
        "the manifest's delete did not fail:\n{}",
        failed.all()
    );
    let mut strace = std::process::Command::new("strace");
    strace.args(["-f", "-qq", "-o", "/dev/null"]);
    strace.args(["-e", "inject=unlink:error=EIO:when=1"]);
    strace.arg(env!("CARGO_BIN_EXE_xtask"));
    let next = Run::from_output(sb.sandboxed(strace, &prune).output().unwrap());
    next.assert_ok();
    assert!(
        manifest.exists()
            && next.stderr.contains("cannot remove")
            && next.stderr.contains(&manifest.display().to_string()),
        "the second run did not fail to remove the manifest, or did not warn of it:\n{}",
        next.all()
    );

    finished_by_the_next_prune(
        &sb,
        &prune,
        &manifest,
        &names[1],
        "the manifest two runs could not delete",
    );
}

/// rvAH: a backup recorded with the environment's name and database name
/// but another `database_id` (another checkout's database of that name
/// sharing `--backup-dir`, or the one the environment had before it was
/// re-created) is not this database's: prune leaves it alone and says so,
/// naming the id and `--previous-database-id`, which prunes them (their
/// newest kept) once said.
#[test]
fn backups_of_another_database_id_under_the_same_name_are_left_alone_and_named() {
    const OTHER_ID: &str = "7e1f0c3a-2b4d-4c5e-8f6a-9b0c1d2e3f4a";
    let sb = Sandbox::new();
    let decoys = common::decoys::Decoys::plant(sb.path());
    let before = decoys.hashes();
    let names = backups_aged(&sb, &[(40, ""), (30, ""), (20, ""), (12, ""), (11, "")]);
    let theirs = &names[..3];
    for name in theirs {
        let mut m = manifest_for(&sb, name);
        m["database"]["uuid"] = OTHER_ID.into();
        std::fs::write(
            sb.backups().join(name.replace(".sql", ".manifest.json")),
            serde_json::to_string_pretty(&m).unwrap(),
        )
        .unwrap();
    }
    let base = ["prune", "--env", "local", "--keep-daily", "1", "--yes"];
    let run = sb.xtask(&base);
    run.assert_ok();
    for name in theirs {
        assert!(
            sb.backups().join(name).exists(),
            "prune deleted {name}, a backup of database id {OTHER_ID}, not local's:\n{}",
            run.all()
        );
    }
    for gone in &names[3..5] {
        assert!(!sb.backups().join(gone).exists(), "{gone}\n{}", run.all());
    }
    assert!(
        run.all().contains("3 backups")
            && run.all().contains(OTHER_ID)
            && run
                .all()
                .contains(&format!("--previous-database-id {OTHER_ID}")),
        "prune does not say it left the backups of {OTHER_ID} alone, nor how to prune them:\n{}",
        run.all()
    );
    assert_eq!(decoys.hashes(), before, "a decoy changed:\n{}", run.all());

    // Said to be the database local had before: pruned as a database of
    // its own, its newest kept.
    let mut said = base.to_vec();
    said.extend(["--previous-database-id", OTHER_ID]);
    let run = sb.xtask(&said);
    run.assert_ok();
    assert!(sb.backups().join(&theirs[2]).exists(), "{}", run.all());
    for gone in &theirs[..2] {
        assert!(!sb.backups().join(gone).exists(), "{gone}\n{}", run.all());
    }
    assert!(sb.backups().join(&names[5]).exists(), "{}", run.all());
    assert_eq!(decoys.hashes(), before, "a decoy changed:\n{}", run.all());
}

/// rvAI: the backups of another database id left alone are named newest
/// first (the order the inventory gives), three of them and how many more.
#[test]
fn backups_of_another_database_id_are_named_newest_first() {
    const OTHER_ID: &str = "7e1f0c3a-2b4d-4c5e-8f6a-9b0c1d2e3f4a";
    let sb = Sandbox::new();
    let names = backups_aged(&sb, &[(40, ""), (30, ""), (20, ""), (12, ""), (11, "")]);
    for name in &names {
        edit_manifest(&sb, name, |m| m["database"]["uuid"] = OTHER_ID.into());
    }
    let run = sb.xtask(&["prune", "--env", "local", "--keep-daily", "1", "--dry-run"]);
    run.assert_ok();
    // The original, just taken, is the newest.
    let said = format!("{}, {}, {}, and 3 more", names[5], names[4], names[3]);
    assert!(run.all().contains(&said), "{said:?} not in:\n{}", run.all());
}

/// rvAL: backups of local's database recorded with the id the
/// configuration gives staging (another checkout's local database, its
/// id copied from staging) are left alone with a command to prune them:
/// that command, run as advised, prunes them (their newest kept).
#[test]
fn the_command_advised_for_backups_of_another_environments_id_prunes_them() {
    const STAGING_ID: &str = "5a1e7c2b-3f4d-4e8a-9b6c-0d1e2f3a4b5c";
    let sb = Sandbox::new();
    let names = backups_aged(&sb, &[(40, ""), (30, ""), (20, "")]);
    let theirs = &names[..3];
    for name in theirs {
        edit_manifest(&sb, name, |m| m["database"]["uuid"] = STAGING_ID.into());
    }
    let run = sb.xtask(&["prune", "--env", "local", "--keep-daily", "1", "--yes"]);
    run.assert_ok();
    let advised = run
        .all()
        .split('`')
        .find(|s| s.starts_with("cargo xtask prune") && s.contains(STAGING_ID))
        .unwrap_or_else(|| panic!("no command advised:\n{}", run.all()))
        .to_owned();
    let mut args: Vec<&str> = advised["cargo xtask ".len()..].split(' ').collect();
    args.extend(["--keep-daily", "1", "--yes"]);
    let run = sb.xtask(&args);
    assert_eq!(
        run.code,
        Some(0),
        "`{advised}` does not work:\n{}",
        run.all()
    );
    assert!(sb.backups().join(&theirs[2]).exists(), "{}", run.all());
    for gone in &theirs[..2] {
        assert!(!sb.backups().join(gone).exists(), "{gone}\n{}", run.all());
    }
    assert!(sb.backups().join(&names[3]).exists(), "{}", run.all());
}

/// A prune of local that keeps the newest verified backup alone.
fn keep_the_newest_alone(sb: &Sandbox) -> Run {
    let args: Vec<&str> = "prune --env local --keep-within 0d --keep-daily 0 --yes"
        .split(' ')
        .collect();
    sb.xtask(&args)
}

/// `status --env local`, which must call `real` local's newest verified
/// backup, not the rehearsal's `copy`.
#[track_caller]
fn status_newest_is(sb: &Sandbox, real: &str, copy: &str) -> Run {
    let status = sb.xtask(&["status", "--env", "local"]);
    let line = { status.stdout.lines() }
        .find(|l| l.contains("newest verified backup"))
        .unwrap_or_default();
    assert!(
        line.contains(real) && !line.contains(copy),
        "status took the rehearsal's copy for local's newest verified backup:\n{}",
        status.all()
    );
    status
}

/// LG: a rehearsal's backup copied into backups/ beside the real ones
/// (its manifest carries the rehearsal's mark) was counted as a real one:
/// `list` showed no mark, `status` called it local's newest verified
/// backup, and `prune --keep-within 0d --keep-daily 0` kept it as that
/// and deleted the real backups. Restore refuses it outside its
/// rehearsal: list marks it, status passes over it (naming it), and prune
/// keeps the newest real backup, leaves the copy alone and names it.
#[test]
fn a_rehearsals_backup_among_the_real_ones_is_marked_and_counted_as_none() {
    // Three real backups (3, 2 and 1 days old) and the one just taken,
    // which becomes the rehearsal's copy.
    let (sb, decoys, before, names) = aged_beside_decoys(&[(3, ""), (2, ""), (1, "")]);
    let copy = names.last().unwrap().clone();
    let newest_real = names[2].clone();
    edit_manifest(&sb, &copy, |m| {
        m["rehearsal"] = ".rehearsal-20261205-233142-966".into();
    });

    let list = sb.xtask(&["list", "--env", "local", "--json"]);
    list.assert_ok();
    let rows: Value = serde_json::from_str(&list.stdout).unwrap();
    let row = |name: &str| {
        rows.as_array()
            .unwrap()
            .iter()
            .find(|r| r["file"] == name)
            .cloned()
            .unwrap()
    };
    assert_eq!(
        row(&copy)["rehearsal"],
        ".rehearsal-20261205-233142-966",
        "{}",
        list.stdout
    );
    assert_eq!(row(&newest_real)["rehearsal"], Value::Null);
    let table = sb.xtask(&["list", "--env", "local"]);
    let marked = table.stdout.lines().find(|l| l.contains(&copy)).unwrap();
    assert!(marked.contains("rehearsal"), "{}", table.stdout);

    let status = status_newest_is(&sb, &newest_real, &copy);
    assert!(status.stderr.contains(&copy), "{}", status.all());

    let prune = keep_the_newest_alone(&sb);
    prune.assert_ok();
    let after = present(&sb);
    assert!(
        after.contains(&newest_real) && after.contains(&copy),
        "prune kept the rehearsal's copy as the newest verified backup and deleted the real \
         ones: {after:?}\n{}",
        prune.all()
    );
    assert!(!after.contains(&names[0]), "{after:?}");
    let said = prune.all();
    let left = { said.lines() }
        .filter(|l| l.contains("rehearsal") && l.contains(&copy))
        .count();
    assert_eq!(left, 1, "{said}");
    assert_eq!(decoys.hashes(), before);
}

/// A sandbox with the decoys planted (and their hashes) and
/// [`backups_aged`]'s backups.
fn aged_beside_decoys(
    days_ago: &[(i64, &str)],
) -> (
    Sandbox,
    common::decoys::Decoys,
    std::collections::BTreeMap<std::path::PathBuf, String>,
    Vec<String>,
) {
    let sb = Sandbox::new();
    let decoys = common::decoys::Decoys::plant(sb.path());
    let hashes = decoys.hashes();
    let names = backups_aged(&sb, days_ago);
    (sb, decoys, hashes, names)
}

/// LM 2: a manifest in backups/ is data from someone else. One that names
/// another backup's file (the newest, which the policy keeps), a path up
/// and out of backups/ (`../decoys/victim.sql`), an absolute path outside
/// the sandbox, or a name with a `/`, or whose own backup is a symbolic
/// link to a file outside backups/ or a hard link of another backup, and
/// that would be deleted by its date (50 days old) if trusted: prune, a
/// dry run and a real one, refuses the directory (exit 3) naming that
/// manifest and deletes nothing, every decoy and every other backup
/// unchanged. Once it is moved away, prune deletes exactly the backups
/// its plan lists, with their manifests, inside backups/.
#[test]
fn a_hostile_manifest_never_makes_prune_delete_beyond_its_plan_or_outside_backups() {
    let (sb, decoys, hashes, names) = aged_beside_decoys(&[(40, ""), (30, ""), (20, "")]);
    let newest = names.last().unwrap().clone();
    let template = manifest_for(&sb, &newest);
    let created = chrono::Utc::now() - chrono::Duration::days(50);
    let stem = format!("backup-local-{}", created.format("%Y%m%d-%H%M"));
    let hostile_manifest = sb.backups().join(format!("{stem}.manifest.json"));
    let own = sb.backups().join(format!("{stem}.sql"));
    let outside = decoys.outside("victim.sql").display().to_string();
    let cases: Vec<(&str, String)> = vec![
        ("another backup's file", newest.clone()),
        ("a path out of backups/", "../decoys/victim.sql".to_owned()),
        ("an absolute path outside", outside.clone()),
        ("a name with a slash", format!("sub/{stem}.sql")),
        ("its own name, a symbolic link out", format!("{stem}.sql")),
        (
            "its own name, a hard link of another",
            format!("{stem}.sql"),
        ),
    ];
    std::fs::create_dir_all(sb.backups().join("sub")).unwrap();
    std::fs::copy(
        sb.backups().join(&newest),
        sb.backups().join(format!("sub/{stem}.sql")),
    )
    .unwrap();
    let base = ["prune", "--env", "local", "--keep-daily", "1"];
    for (case, file_name) in &cases {
        let mut m = template.clone();
        m["created_at"] = created.to_rfc3339().into();
        m["file"]["name"] = file_name.as_str().into();
        std::fs::write(&hostile_manifest, serde_json::to_string_pretty(&m).unwrap()).unwrap();
        match *case {
            "its own name, a symbolic link out" => {
                std::os::unix::fs::symlink(&outside, &own).unwrap()
            }
            "its own name, a hard link of another" => {
                std::fs::hard_link(sb.backups().join(&newest), &own).unwrap()
            }
            _ => {}
        }
        let before = sb.backups_held();
        for extra in ["--dry-run", "--yes"] {
            let mut args = base.to_vec();
            args.push(extra);
            let run = sb.xtask(&args);
            assert_eq!(run.code, Some(3), "{case}, {extra}:\n{}", run.all());
            assert!(
                run.stderr.contains(&format!("{stem}.")),
                "{case}, {extra}: the refusal does not name the manifest:\n{}",
                run.all()
            );
            assert_eq!(sb.backups_held(), before, "{case}, {extra}:\n{}", run.all());
            assert_eq!(decoys.hashes(), hashes, "{case}, {extra}:\n{}", run.all());
        }
        let _ = std::fs::remove_file(&own);
    }
    std::fs::remove_file(&hostile_manifest).unwrap();

    let mut dry = base.to_vec();
    dry.push("--dry-run");
    let plan = sb.xtask(&dry);
    plan.assert_ok();
    let listed: BTreeSet<String> = { plan.stdout.lines() }
        .filter_map(|l| l.trim_start().strip_prefix("delete  "))
        .map(|l| l.split_whitespace().next().unwrap().to_owned())
        .collect();
    assert_eq!(
        listed,
        names[..3].iter().cloned().collect::<BTreeSet<_>>(),
        "{}",
        plan.all()
    );
    let before = sb.backups_held();
    let mut yes = base.to_vec();
    yes.push("--yes");
    let run = sb.xtask(&yes);
    run.assert_ok();
    let mut expected = before.clone();
    for gone in &listed {
        expected.remove(gone);
        expected.remove(&gone.replace(".sql", ".manifest.json"));
    }
    assert_eq!(sb.backups_held(), expected, "{}", run.all());
    assert!(sb.backups().join(format!("sub/{stem}.sql")).exists());
    assert_eq!(decoys.hashes(), hashes, "{}", run.all());
}

/// LO: a backup whose dump starts with a rehearsal's mark line (a copy of
/// the dump, its manifest written anew without the rehearsal's mark) was
/// counted as a real one by all but restore: `list` showed it unmarked,
/// `status` called it local's newest verified backup, `restore latest`
/// chose it and was then refused (exit 3), and `prune --keep-within 0d
/// --keep-daily 0` kept it as the newest verified backup and deleted the
/// real one. Either mark makes it a rehearsal's, for every command.
#[test]
fn a_backup_whose_dump_alone_is_marked_a_rehearsals_is_counted_as_none() {
    let sb = Sandbox::new();
    let names = backups_aged(&sb, &[(3, ""), (1, "")]);
    let copy = names.last().unwrap().clone();
    let newest_real = names[1].clone();
    let real_bytes = std::fs::read(sb.backups().join(&newest_real)).unwrap();
    let path = sb.backups().join(&copy);
    let mut dump = b"-- qbtime-xtask: taken inside the rehearsal .rehearsal-20261206-1: a copy of \
        its loopback's databases, never of a real one, restored only within that rehearsal\n"
        .to_vec();
    dump.extend(std::fs::read(&path).unwrap());
    std::fs::write(&path, &dump).unwrap();
    edit_manifest(&sb, &copy, |m| {
        m["file"]["bytes"] = dump.len().into();
        m["file"]["sha256"] = sha256_hex(&dump).into();
        assert!(m.get("rehearsal").is_none_or(Value::is_null), "{m:#}");
    });

    let list = sb.xtask(&["list", "--env", "local", "--json"]);
    list.assert_ok();
    let rows: Value = serde_json::from_str(&list.stdout).unwrap();
    let row = { rows.as_array().unwrap().iter() }
        .find(|r| r["file"] == copy.as_str())
        .unwrap();
    assert_eq!(row["rehearsal"], ".rehearsal-20261206-1", "{}", list.stdout);

    status_newest_is(&sb, &newest_real, &copy);

    let latest = plan_of_latest(&sb);
    assert_eq!(latest.code, Some(0), "{}", latest.all());
    assert!(latest.all().contains(&newest_real), "{}", latest.all());

    let prune = keep_the_newest_alone(&sb);
    prune.assert_ok();
    let after = present(&sb);
    assert!(
        after.contains(&copy) && !after.contains(&names[0]),
        "{after:?}\n{}",
        prune.all()
    );
    assert_eq!(
        std::fs::read(sb.backups().join(&newest_real)).ok(),
        Some(real_bytes),
        "prune kept the rehearsal's copy as the newest verified backup and deleted the real \
         one:\n{}",
        prune.all()
    );
}

/// A reviewer's finding (a tired operator): a dump deleted by hand (`rm
/// backups/X.sql`) left its manifest, and a dump copied in left without
/// one, and `list`, `status` and `prune` passed both over without a word.
/// Each now names them, with the fix (the manifest: "dump missing",
/// delete it or fetch the file back; the dump: no manifest, so nothing
/// counts it), and prune, dry run or not, deletes neither.
#[test]
fn a_manifest_whose_dump_was_deleted_and_a_dump_without_a_manifest_are_named_not_passed_over() {
    let sb = Sandbox::new();
    let names = backups_aged(&sb, &[(3, "")]);
    let gone = &names[0];
    std::fs::remove_file(sb.backups().join(gone)).unwrap();
    let manifest = gone.replace(".sql", ".manifest.json");
    let stray = "backup-local-20200101-0000.sql";
    std::fs::copy(sb.backups().join(&names[1]), sb.backups().join(stray)).unwrap();
    for args in [
        &["list"][..],
        &["status", "--env", "local"],
        &["prune", "--env", "local", "--dry-run"],
        &["prune", "--env", "local", "--yes"],
    ] {
        let run = sb.xtask(args);
        run.assert_ok();
        let said = run.all();
        let line = { said.lines() }.find(|l| l.contains(&manifest));
        let line = line.unwrap_or_else(|| panic!("{args:?} never names {manifest}:\n{said}"));
        assert!(line.contains("dump missing"), "{args:?}: {line}");
        assert!(line.contains("delete the manifest"), "{args:?}: {line}");
        let line = { said.lines() }.find(|l| l.contains(stray));
        let line = line.unwrap_or_else(|| panic!("{args:?} never names {stray}:\n{said}"));
        assert!(line.contains("no manifest"), "{args:?}: {line}");
        if args[0] == "prune" {
            assert!(said.contains("prune leaves"), "{args:?}:\n{said}");
        }
    }
    assert!(sb.backups().join(&manifest).is_file(), "prune deleted it");
    assert!(sb.backups().join(stray).is_file(), "prune deleted a dump");
}

/// Local's backup copied into prod's (prod's database by name and id)
/// and staging's: prod's of 3 days and 1 day ago, staging's of 2 days
/// ago, and one recorded under prod's name whose manifest names staging's
/// database (misfiled) of an hour ago, every one verified. Returns (the
/// old prod, the new prod, staging's, the misfiled one).
fn prod_and_staging_beside_a_misfiled_one(sb: &Sandbox) -> [String; 4] {
    prod_and_staging_beside_a_misfiled_one_aged(sb, [72, 24, 48, 1])
}

/// [`prod_and_staging_beside_a_misfiled_one`], taken the given hours ago:
/// (the old prod, the new prod, staging's, the misfiled one).
fn prod_and_staging_beside_a_misfiled_one_aged(sb: &Sandbox, hours: [i64; 4]) -> [String; 4] {
    use common::remote::{PROD_UUID, STAGING_UUID};
    sb.apply_migrations();
    sb.execute_sql(SEED_SQL);
    sb.xtask(&["backup", "local"]).assert_ok();
    let original = only_backup(sb);
    let now = chrono::Utc::now();
    let copy = |env: &str, hours: i64, (name, id): (&'static str, &'static str)| {
        copy_taken_at(
            sb,
            &original,
            env,
            now - chrono::Duration::hours(hours),
            |m| {
                m["environment"] = env.into();
                m["database"]["name"] = name.into();
                m["database"]["uuid"] = id.into();
            },
        )
    };
    let prod = ("qbtime_db_prod", PROD_UUID);
    let staging = ("qbtime_db_staging", STAGING_UUID);
    [
        copy("prod", hours[0], prod),
        copy("prod", hours[1], prod),
        copy("staging", hours[2], staging),
        copy("prod", hours[3], staging),
    ]
}

/// The plan line prune printed for `file` (`keep` or `delete`), and the
/// heading of the group it is in (`staging: keep_within …`).
fn plan_line_of<'a>(stdout: &'a str, file: &str) -> Option<(&'a str, &'a str)> {
    let mut heading = "";
    for line in stdout.lines() {
        if !line.starts_with(' ') {
            heading = line;
        } else if line.contains(file) {
            return Some((heading, line.trim_start()));
        }
    }
    None
}

/// MV 3, then NA: a backup recorded under prod's name whose manifest
/// names staging's database is misfiled (`list` marks it `prod (not
/// prod's)`), and `latest:staging` and `status` take it as staging's.
/// prune left it alone, counted toward no environment, and so kept it
/// for ever; then it was judged among staging's, and with `--keep-daily
/// 1`, newer than staging's own, it took staging's one slot and prune
/// deleted staging's own backup. It is judged as one of staging's, its
/// plan line naming it misfiled, but staging's own are judged as if it
/// were not there: staging's own is kept, and so is the misfiled one
/// (staging's newest, which `--keep-daily 1` keeps), while prod keeps its
/// own newest and deletes its own older one, in a dry run and a real one;
/// staging's own, the misfiled one, prod's newest and a decoy outside
/// backups/ stay byte for byte.
#[test]
fn a_misfiled_backup_is_judged_by_prune_as_the_backup_of_the_environment_whose_database_it_names() {
    let sb = Sandbox::new();
    let decoys = common::decoys::Decoys::plant(sb.path());
    let hashes = decoys.hashes();
    let [old_prod, new_prod, stagings, misfiled] = prod_and_staging_beside_a_misfiled_one(&sb);
    // The newest of one day alone: backups.toml's weekly and monthly
    // rules would keep more or fewer by where the week's and month's
    // boundaries fall.
    let prune = [
        "prune",
        "--keep-within",
        "0d",
        "--keep-daily",
        "1",
        "--keep-weekly",
        "0",
        "--keep-monthly",
        "0",
    ];
    for last in ["--dry-run", "--yes"] {
        let before = sb.backups_held();
        let run = sb.xtask(&[&prune[..], &[last]].concat());
        run.assert_ok();
        let said = run.all();
        let (heading, line) = plan_line_of(&run.stdout, &misfiled)
            .unwrap_or_else(|| panic!("{last}: {misfiled} has no plan line:\n{said}"));
        assert!(
            heading.starts_with("staging:") && line.starts_with("keep "),
            "{last}: {misfiled} is not kept as staging's:\n{said}"
        );
        assert!(
            line.contains("misfiled") && line.contains("recorded under prod's name"),
            "{last}: {misfiled} is not named as misfiled:\n{said}"
        );
        for (file, env, verdict) in [
            (&new_prod, "prod:", "keep "),
            (&old_prod, "prod:", "delete "),
            (&stagings, "staging:", "keep "),
        ] {
            let (heading, line) = plan_line_of(&run.stdout, file)
                .unwrap_or_else(|| panic!("{last}: {file} has no plan line:\n{said}"));
            assert!(
                heading.starts_with(env) && line.starts_with(verdict) && !line.contains("misfiled"),
                "{last}: {file} is not {verdict}in {env}:\n{said}"
            );
        }
        assert!(
            said.contains("prod: keep 1, delete 1; staging: keep 2, delete 0"),
            "{last}:\n{said}"
        );
        let mut expected = before.clone();
        if last == "--yes" {
            expected.remove(&old_prod);
            expected.remove(&old_prod.replace(".sql", ".manifest.json"));
        }
        assert_eq!(sb.backups_held(), expected, "{last}:\n{said}");
        assert_eq!(decoys.hashes(), hashes, "{last}:\n{said}");
    }
}

/// NA: staging's rules in backups.toml (the newest of 1 day) delete a
/// misfiled backup (recorded under prod's name, naming staging's
/// database) older than staging's own, as staging's oldest; prod's rules
/// (the newest of 2 days), which would keep it and, counting it as one of
/// prod's two, delete prod's older backup, judge none of it. The dry run
/// names it, misfiled, as the one deletion, and `--yes` deletes that and
/// nothing else: prod's backups, staging's own and a decoy outside
/// backups/ stay byte for byte.
#[test]
fn stagings_rules_delete_a_misfiled_backup_of_its_database_as_its_oldest_and_no_prod_backup() {
    let sb = Sandbox::new();
    let decoys = common::decoys::Decoys::plant(sb.path());
    let hashes = decoys.hashes();
    let settings = sb.path().join("backups.toml");
    let text = std::fs::read_to_string(&settings).unwrap();
    let edited = text
        .replace(
            "[prod.retention]\nkeep_within = \"30d\"\nkeep_daily = 30\nkeep_weekly = 12\n\
             keep_monthly = 12",
            "[prod.retention]\nkeep_within = \"0d\"\nkeep_daily = 2",
        )
        .replace(
            "[staging.retention]\nkeep_within = \"14d\"\nkeep_daily = 7\nkeep_weekly = 4",
            "[staging.retention]\nkeep_within = \"0d\"\nkeep_daily = 1",
        );
    assert_eq!(
        edited.matches("keep_within = \"0d\"").count(),
        2,
        "{edited}"
    );
    std::fs::write(&settings, edited).unwrap();
    // Prod's of 10 and 5 days ago, staging's of 1 day ago, the misfiled
    // one of 3 days ago.
    let [old_prod, new_prod, stagings, misfiled] =
        prod_and_staging_beside_a_misfiled_one_aged(&sb, [240, 120, 24, 72]);
    let deletions = |stdout: &str| -> Vec<String> {
        { stdout.lines() }
            .filter(|l| l.trim_start().starts_with("delete "))
            .map(|l| l.trim_start().to_owned())
            .collect()
    };
    let before = sb.backups_held();
    let dry = sb.xtask(&["prune", "--env", "staging", "--dry-run"]);
    dry.assert_ok();
    let dry_said = dry.all();
    let planned = deletions(&dry.stdout);
    assert!(
        planned.len() == 1
            && planned[0].contains(&misfiled)
            && planned[0].contains("misfiled")
            && planned[0].contains("recorded under prod's name"),
        "the dry run does not plan to delete {misfiled} alone, named misfiled:\n{dry_said}"
    );
    assert_eq!(
        sb.backups_held(),
        before,
        "the dry run deleted:\n{dry_said}"
    );
    let all = sb.xtask(&["prune", "--dry-run"]);
    all.assert_ok();
    assert_eq!(deletions(&all.stdout), planned, "{}", all.all());
    assert!(
        all.all()
            .contains("prod: keep 2, delete 0; staging: keep 1, delete 1"),
        "{}",
        all.all()
    );
    let run = sb.xtask(&["prune", "--yes"]);
    run.assert_ok();
    let said = run.all();
    assert_eq!(deletions(&run.stdout), planned, "{said}");
    let mut expected = before;
    expected.remove(&misfiled);
    expected.remove(&misfiled.replace(".sql", ".manifest.json"));
    assert_eq!(sb.backups_held(), expected, "{said}");
    for kept in [&old_prod, &new_prod, &stagings] {
        assert!(sb.backups_held().contains_key(kept.as_str()), "{said}");
    }
    assert_eq!(decoys.hashes(), hashes, "{said}");
}

/// MV 3: `verify FILE` of a misfiled backup (recorded under prod's name,
/// its manifest naming staging's database) said nothing of it. It warns,
/// in one line, whose database that is.
#[test]
fn verify_warns_of_a_misfiled_backup_naming_whose_database_it_is() {
    let sb = Sandbox::new();
    let [_, new_prod, _, misfiled] = prod_and_staging_beside_a_misfiled_one(&sb);
    let run = sb.xtask(&["verify", &misfiled]);
    run.assert_ok();
    let warned: Vec<&str> = { run.stderr.lines() }
        .filter(|l| l.starts_with("warning:") && l.contains(&misfiled))
        .collect();
    assert!(
        warned.len() == 1 && warned[0].contains("which is staging's"),
        "{}",
        run.all()
    );
    let own = sb.xtask(&["verify", &new_prod]);
    own.assert_ok();
    assert!(!own.stderr.contains("which is staging's"), "{}", own.all());
}

/// PE 2: a dry run's plan said "an undo point (taken before a migration, a
/// restore or a task) younger than 7d" on the line of every undo point.
/// Each such line says `undo point`, what differs; what an undo point is,
/// and how long it is kept, is said once, under the environment's lines.
#[test]
fn a_dry_run_says_what_an_undo_point_is_once_not_on_every_line() {
    let sb = Sandbox::new();
    backups_aged(
        &sb,
        &[
            (4, "pre-migration: 0005_x.sql"),
            (3, "safety backup before restoring backup-local-x.sql"),
            (2, "before: npm run import"),
        ],
    );
    let run = sb.xtask(&["prune", "--dry-run"]);
    run.assert_ok();
    let undo: Vec<&str> = { run.stdout.lines() }
        .filter(|l| l.starts_with("  keep") && l.contains("undo point"))
        .collect();
    assert_eq!(undo.len(), 3, "{}", run.all());
    let explained = "taken before a migration, a restore or a task";
    assert_eq!(
        run.stdout.matches(explained).count(),
        1,
        "said more than once, or not at all:\n{}",
        run.all()
    );
    for line in &undo {
        assert!(!line.contains(explained), "{line}\n{}", run.all());
    }
    let said = run.stdout_line_with(explained);
    assert!(said.contains("7d"), "{}", run.all());
}
