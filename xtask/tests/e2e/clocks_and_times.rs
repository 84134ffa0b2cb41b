//! Clocks, zones and times (atkAV): a clock that ran fast and was set
//! right, `--at` as a tired operator types it, and times printed without
//! their zone. Each case runs the real xtask and checks what a user would
//! notice: the backup `latest` names, what prune deletes, the exit code and
//! the message.

use crate::common;

use common::decoys::Decoys;
use common::*;
use serde_json::Value;
use std::collections::BTreeMap;

/// Copies `backup` and its manifest to a backup taken at `at`, as a run on
/// this machine at that time would have named and recorded it; returns the
/// copy's file name.
fn copy_taken_at(sb: &Sandbox, backup: &str, at: chrono::DateTime<chrono::Utc>) -> String {
    common::copy_taken_at(sb, backup, "local", at, |_| {})
}

/// A laptop whose clock ran 40 minutes fast took a backup (within the hour
/// the manifest check allows); NTP then set the clock right, rows were
/// written, and a new backup was taken. That new backup is the only one
/// holding the new rows: `restore latest` must restore it, and prune's
/// "newest verified backup is never deleted" must keep it. Today `latest`
/// is the backup dated 40 minutes ahead, so `restore latest` silently
/// drops the rows, and `prune --keep-within 0d --keep-daily 1` deletes the
/// backup just taken.
#[test]
fn the_backup_taken_after_the_clock_was_set_back_is_latest_and_never_pruned() {
    let (sb, first) = sandbox_with_a_backup();
    let decoys = Decoys::plant(sb.path());
    let before = decoys.hashes();
    let fast = chrono::Utc::now() + chrono::Duration::minutes(40);
    let ahead = copy_taken_at(&sb, &first, fast);
    sb.execute_sql(
        "INSERT INTO companies (name, timezone) VALUES ('Written After The Clock Fix', 'UTC');",
    );
    let backup = sb.xtask(&["backup", "local"]);
    if !backup.ok {
        // Refusing to take a backup older than one on disk is a fix too,
        // if it says why.
        assert!(
            backup.stderr.contains(&ahead) && backup.stderr.contains("clock"),
            "a backup refused for a later-dated one must name it and the clock:\n{}",
            backup.all()
        );
        return;
    }
    let newest: Vec<String> = sb
        .backup_files()
        .into_iter()
        .filter(|n| n.ends_with(".sql") && *n != first && *n != ahead)
        .collect();
    assert_eq!(newest.len(), 1, "{:?}", sb.backup_files());
    let newest = &newest[0];

    let plan = plan_of_latest(&sb);
    plan.assert_ok();
    assert!(
        plan.stdout.contains(newest.as_str()),
        "`restore latest` must restore {newest}, the backup just taken (the only one with the \
         rows written since), not {ahead}, dated 40 minutes ahead by a fast clock:\n{}",
        plan.all()
    );

    let prune = sb.xtask(&["prune", "--keep-within", "0d", "--keep-daily", "1", "--yes"]);
    prune.assert_ok();
    assert!(
        sb.backups().join(newest).exists(),
        "prune deleted {newest}, the backup just taken and the only one with the newest rows:\n{}",
        prune.all()
    );
    assert_eq!(decoys.hashes(), before, "a decoy outside backups/ changed");
}

/// `minutes` pass: every backup's date moves that far back, and its name
/// with it, as this machine's clock moving on would leave them. A record
/// of another backup by name (`taken_after`) follows that backup's rename.
/// Returns each old name's new one.
fn time_passes(sb: &Sandbox, minutes: i64) -> BTreeMap<String, String> {
    let manifests: Vec<Value> = { sb.backup_files().into_iter() }
        .filter(|n| n.ends_with(".manifest.json"))
        .map(|n| serde_json::from_str(&std::fs::read_to_string(sb.backups().join(n)).unwrap()))
        .collect::<Result<_, _>>()
        .unwrap();
    let at = |m: &Value| {
        let at: chrono::DateTime<chrono::Utc> = m["created_at"].as_str().unwrap().parse().unwrap();
        at - chrono::Duration::minutes(minutes)
    };
    let file = |m: &Value| m["file"]["name"].as_str().unwrap().to_owned();
    // backup-<env>-YYYYMMDD-HHMM, then `-N` and the extension as they were.
    let renamed: BTreeMap<String, String> = { manifests.iter() }
        .map(|m| {
            let named = format!("backup-{}-", m["environment"].as_str().unwrap());
            let rest = &file(m)[named.len() + "YYYYMMDD-HHMM".len()..];
            let moved = format!("{named}{}{rest}", at(m).format("%Y%m%d-%H%M"));
            (file(m), moved)
        })
        .collect();
    for mut m in manifests {
        let (was, moved) = (file(&m), &renamed[&file(&m)]);
        std::fs::remove_file(sb.backups().join(was.replace(".sql", ".manifest.json"))).unwrap();
        std::fs::rename(sb.backups().join(&was), sb.backups().join(moved)).unwrap();
        m["created_at"] = at(&m).to_rfc3339().into();
        m["file"]["name"] = moved.as_str().into();
        let records = m.get_mut("taken_after").and_then(Value::as_array_mut);
        for earlier in records.into_iter().flatten() {
            let named = earlier["file"].as_str().unwrap().to_owned();
            earlier["file"] = renamed.get(&named).unwrap_or(&named).as_str().into();
        }
        write_manifest(sb, &m);
    }
    renamed
}

/// A backup copied as taken by a clock 40 minutes fast, then one taken
/// (after a row was written) with this machine's clock, then 45 minutes
/// passed: the sandbox and the two backups' names, fast clock's first.
fn taken_after_a_fast_clock() -> (Sandbox, String, String) {
    let (sb, first) = sandbox_with_a_backup();
    let fast = chrono::Utc::now() + chrono::Duration::minutes(40);
    let ahead = copy_taken_at(&sb, &first, fast);
    sb.execute_sql(
        "INSERT INTO companies (name, timezone) VALUES ('Written After The Clock Fix', 'UTC');",
    );
    let backup = sb.xtask(&["backup", "local"]);
    backup.assert_ok();
    assert!(
        backup.stderr.contains(&ahead) && backup.stderr.contains("after this machine's clock"),
        "the backup says it was taken after {ahead}, dated ahead:\n{}",
        backup.all()
    );
    let taken: Vec<String> = { sb.backup_files().into_iter() }
        .filter(|n| n.ends_with(".sql") && *n != first && *n != ahead)
        .collect();
    assert_eq!(taken.len(), 1, "{:?}", sb.backup_files());
    let renamed = time_passes(&sb, 45);
    let (ahead, taken) = (renamed[&ahead].clone(), renamed[&taken[0]].clone());
    (sb, ahead, taken)
}

/// fxDY: the backup taken 40 minutes before a fast clock's backup's date
/// is passed over only until that date: once the clock reaches it, the
/// fast clock's backup (taken first, holding none of the rows written
/// since) is `latest` again, status's newest verified backup, and the
/// day's backup prune keeps, and prune deletes the one taken after it.
/// The backup taken after it must stay the newer one for good.
#[test]
fn a_backup_taken_after_one_dated_ahead_stays_newer_once_that_date_has_passed() {
    let (sb, ahead, taken) = taken_after_a_fast_clock();
    let plan = plan_of_latest(&sb);
    plan.assert_ok();
    assert!(
        plan.stdout.contains(taken.as_str()) && !plan.all().contains(&format!("is {ahead}")),
        "45 minutes on, `restore latest` must still restore {taken}, taken after {ahead} (whose \
         fast clock dated it 40 minutes ahead) and the only one with the rows written since:\n{}",
        plan.all()
    );
    let status = sb.xtask(&["status", "--env", "local", "--json"]);
    let report: Value =
        serde_json::from_str(&status.stdout).unwrap_or_else(|e| panic!("{e}:\n{}", status.all()));
    let local = &report["environments"][0];
    assert_eq!(
        local["newest_verified"]["file"],
        taken.as_str(),
        "status judges by {taken}, the newest:\n{}",
        status.all()
    );
    let prune = sb.xtask(&["prune", "--keep-within", "0d", "--keep-daily", "1", "--yes"]);
    prune.assert_ok();
    assert!(
        sb.backups().join(&taken).exists(),
        "prune deleted {taken}, the newest backup, for {ahead}, taken before it:\n{}",
        prune.all()
    );
}

/// fxDY: a record of the backup taken after counts only for the file it
/// names with the sha256 it records, and only for a backup dated after
/// the one recording it: another file's sha256 changes nothing (dates
/// decide), a record back (the fast clock's manifest recording the one
/// taken after it) cannot make a cycle, thousands of records of names no
/// backup has (of any length) are read past, and a record naming a path
/// has its manifest refused as it is read.
#[test]
fn a_record_of_a_backup_taken_after_counts_only_for_that_file() {
    let (sb, ahead, taken) = taken_after_a_fast_clock();
    let latest = |sb: &Sandbox| {
        let plan = plan_of_latest(sb);
        plan.assert_ok();
        plan.stdout
    };
    let record = manifest_for(&sb, &taken)["taken_after"][0].clone();
    assert_eq!(record["file"], ahead.as_str());
    edit_manifest(&sb, &taken, |m| {
        m["taken_after"][0]["sha256"] = "0".repeat(64).into();
    });
    assert!(
        latest(&sb).contains(&ahead),
        "another file's sha256 counted"
    );

    let sha = manifest_for(&sb, &taken)["file"]["sha256"].clone();
    edit_manifest(&sb, &taken, |m| m["taken_after"][0] = record.clone());
    edit_manifest(&sb, &ahead, |m| {
        m["taken_after"] = serde_json::json!([{"file": taken, "sha256": sha}]);
    });
    assert!(latest(&sb).contains(&taken), "a record back counted");

    let long = format!("backup-local-20261204-1200-{}.sql", "9".repeat(5000));
    edit_manifest(&sb, &taken, |m| {
        let records = m["taken_after"].as_array_mut().unwrap();
        for i in 0..5000 {
            let file = format!("backup-local-20261204-1200-{i}.sql");
            records.push(serde_json::json!({"file": file, "sha256": "1".repeat(64)}));
        }
        records.push(serde_json::json!({"file": long, "sha256": "1".repeat(64)}));
    });
    assert!(latest(&sb).contains(&taken), "thousands of records");
    sb.xtask(&["prune", "--keep-within", "0d", "--dry-run"])
        .assert_ok();

    edit_manifest(&sb, &taken, |m| {
        m["taken_after"][0]["file"] = format!("../{ahead}").into();
    });
    let list = sb.xtask(&["list"]);
    assert!(
        list.stderr.contains("taken_after") && !list.stdout.contains(&taken),
        "{}",
        list.all()
    );
}

/// fxEG: a restore into local ran while the clock was 40 minutes fast,
/// so its safety backup is dated ahead; its load landed, the clock was set
/// right, and the same restore is run again. Its safety backup holds the
/// backup's rows and was taken after the first one (it records it): the
/// warning must name the first one, from before the earlier restore, as
/// the way back, though it is dated after the second.
#[test]
fn a_restore_run_again_names_the_safety_backup_a_fast_clock_took_before_it() {
    let (_source, target, restore, first_safety) = restored_over_a_row();
    let fast = chrono::Utc::now() + chrono::Duration::minutes(40);
    let first_safety = redate(&target, &first_safety, fast);
    let run = target.xtask(&restore.iter().map(String::as_str).collect::<Vec<_>>());
    run.assert_ok();
    // The backup run names it too, as dated ahead: the warning must.
    let said = run.all();
    let way_back = said.split("taken before that restore is ").nth(1);
    assert!(
        way_back.is_some_and(|w| w.split(';').next().unwrap().ends_with(&first_safety)),
        "the re-run does not name {first_safety}, the safety backup taken before the earlier \
         restore (dated ahead by a fast clock), as the way back:\n{said}"
    );
}

/// fxEG: offsite as locally: a prod backup copied as taken by a clock 40
/// minutes fast, then one taken after it (recording it), both uploaded
/// once 45 minutes have passed. On a new machine, `offsite fetch latest`
/// fetches the one taken after, not the fast clock's, now dated before
/// this machine's clock and after the other.
#[test]
fn offsite_latest_is_the_copy_taken_after_one_dated_ahead_once_that_date_has_passed() {
    use common::remote::*;
    let remote = Remote::new("");
    remote.server.add_bucket("qbtime-d1-backups");
    let home = tempfile::tempdir().unwrap();
    let sb = &remote.sb;
    let first = remote.backup_prod(home.path());
    let fast = chrono::Utc::now() + chrono::Duration::minutes(40);
    let ahead = redate(sb, &first, fast);
    execute_file(
        &remote.db,
        "INSERT INTO companies (name, timezone) VALUES ('Written After The Clock Fix', 'UTC');",
    );
    remote.xtask(home.path(), &["backup", "prod"]).assert_ok();
    let taken = only_other_backup(sb, &ahead);
    let renamed = time_passes(sb, 45);
    let (ahead, taken) = (&renamed[&ahead], &renamed[&taken]);
    for name in [ahead, taken] {
        { remote.xtask(home.path(), &["upload", name, "--env", "prod"]) }.assert_ok();
    }
    std::fs::remove_dir_all(sb.backups()).unwrap();
    let fetch = remote.xtask(
        home.path(),
        &["offsite", "fetch", "latest", "--env", "prod"],
    );
    fetch.assert_ok();
    assert_eq!(
        only_backup(sb),
        *taken,
        "offsite latest is not {taken}, taken after {ahead}, whose fast clock dated it 40 \
         minutes ahead:\n{}",
        fetch.all()
    );
}

/// The one `.sql` backup in the sandbox other than `other`.
fn only_other_backup(sb: &Sandbox, other: &str) -> String {
    let found: Vec<String> = { sb.backup_files().into_iter() }
        .filter(|n| n.ends_with(".sql") && n != other)
        .collect();
    assert_eq!(found.len(), 1, "{:?}", sb.backup_files());
    found[0].clone()
}

/// `--at` with more digits than a 64-bit number holds is bad input (exit
/// 2, README "Exit codes"), refused naming `--at` and the forms it takes,
/// as `--at garbage` is. Today it is exit 1 with "the number is too large:
/// number too large to fit in target type", which names neither.
#[test]
fn an_at_of_too_many_digits_is_bad_input_naming_at() {
    let sb = Sandbox::new();
    for cmd in [
        &["time-travel", "info", "staging", "--at"][..],
        &["time-travel", "restore", "staging", "--dry-run", "--at"][..],
    ] {
        let mut args = cmd.to_vec();
        args.push("99999999999999999999");
        let run = sb.xtask(&args);
        assert_eq!(run.code, Some(2), "{args:?}:\n{}", run.all());
        assert!(
            run.stderr.contains("--at") && run.stderr.contains("RFC 3339"),
            "{args:?}: the refusal names --at and the forms it takes:\n{}",
            run.all()
        );
    }
}

/// RFC 3339 allows a leap second (`:60`); chrono reads `09:29:60Z` on any
/// day, the tool formats it back as `…:60.000Z`, and wrangler refuses that
/// (`Invalid timestamp`) after the identity check and the bookmark read
/// have already asked D1. README: `--at` is checked before wrangler runs.
/// Without credentials, wrangler never runs, so the refusal seen must be
/// the tool's own, naming `--at`, not a credentials error for a time
/// printed as `…:60.000Z`.
#[test]
fn an_at_on_a_leap_second_is_refused_before_wrangler_runs() {
    let sb = Sandbox::new();
    let hour_ago = chrono::Utc::now() - chrono::Duration::hours(1);
    let at = format!("{}:60Z", hour_ago.format("%Y-%m-%dT%H:%M"));
    for cmd in [
        &["time-travel", "info", "staging", "--at"][..],
        &["time-travel", "restore", "staging", "--dry-run", "--at"][..],
    ] {
        let mut args = cmd.to_vec();
        args.push(&at);
        let run = sb.xtask(&args);
        assert_eq!(run.code, Some(2), "{args:?}:\n{}", run.all());
        assert!(
            run.stderr.contains("--at") && !run.stderr.contains(":60.000Z"),
            "{args:?}: {at} must be refused by the tool, naming --at, before wrangler is asked \
             for the time {}:\n{}",
            at.replace(":60Z", ":60.000Z"),
            run.all()
        );
    }
}

/// Every time `status` prints is UTC and says so (`last Time Travel restore
/// 2026-12-01 13:11 UTC`, the restore plan's `taken … UTC`), except the
/// last drill's, which the drill log writes in UTC and status prints as a
/// bare `2026-12-02 01:40`: read as local time by an operator in
/// St. John's or Kiritimati, it is hours off.
#[test]
fn status_says_the_last_drills_time_is_utc() {
    let (sb, _) = sandbox_with_a_backup();
    sb.xtask(&["drill", "--from", "local", "--to", "local", "--yes"])
        .assert_ok();
    let run = sb.xtask(&["status", "--env", "local"]);
    let line = run
        .stdout
        .lines()
        .find(|l| l.trim_start().starts_with("last drill"))
        .unwrap_or_else(|| panic!("no last drill line:\n{}", run.all()))
        .to_owned();
    assert!(
        line.contains("UTC"),
        "the drill's time is printed without its zone: {line:?}\n{}",
        run.all()
    );
}

/// Two machines back prod up in the same minute (the scheduled job at
/// 03:17 and an operator's `backup prod --upload`): each names its backup
/// `backup-prod-…-0317.sql`, as neither has the other's manifest, and both
/// upload to `prod/<yyyy>/<mm>/` of one bucket. The second upload must not
/// replace the first machine's offsite copy, whose local file went with its
/// runner; today its PUT goes over it, and the first backup is gone from
/// R2.
#[test]
fn an_upload_never_replaces_another_machines_backup_of_the_same_minute() {
    use common::remote::*;
    const BUCKET: &str = "qbtime-d1-backups";
    let remote = Remote::new("");
    remote.server.add_bucket(BUCKET);
    let home = tempfile::tempdir().unwrap();
    let sb = &remote.sb;
    // Machine A: a backup, uploaded; then its runner, and its backups/, go.
    let name = remote.backup_prod(home.path());
    remote
        .xtask(home.path(), &["upload", &name, "--env", "prod"])
        .assert_ok();
    let key = remote
        .server
        .r2_keys(BUCKET)
        .into_iter()
        .find(|k| k.ends_with(&name))
        .unwrap_or_else(|| {
            panic!(
                "{name} was not uploaded: {:?}",
                remote.server.r2_keys(BUCKET)
            )
        });
    let first = remote.server.r2_object(BUCKET, &key).unwrap();
    let a = manifest_for(sb, &name);
    let stem = name.split(".sql").next().unwrap().to_owned();
    let aside = tempfile::tempdir().unwrap();
    for f in sb.backup_files() {
        if f.starts_with(&stem) {
            std::fs::rename(sb.backups().join(&f), aside.path().join(&f)).unwrap();
        }
    }

    // Machine B, the same minute: prod has a row more; its backup takes the
    // same name, as B's backups/ holds no manifest of that minute.
    let conn = rusqlite::Connection::open(&remote.db).unwrap();
    conn.busy_timeout(std::time::Duration::from_secs(10))
        .unwrap();
    conn.execute(
        "INSERT INTO companies (name, timezone) VALUES ('Machine B', 'UTC')",
        [],
    )
    .unwrap();
    drop(conn);
    remote.xtask(home.path(), &["backup", "prod"]).assert_ok();
    let b_name = sb
        .backup_files()
        .into_iter()
        .find(|f| f.starts_with("backup-prod-") && !f.ends_with(".json"))
        .unwrap();
    let b_stem = b_name.split(".sql").next().unwrap().to_owned();
    if b_stem != stem {
        // Another minute: name it as B would have in A's minute.
        let ext = b_name.strip_prefix(&b_stem).unwrap().to_owned();
        std::fs::rename(
            sb.backups().join(&b_name),
            sb.backups().join(format!("{stem}{ext}")),
        )
        .unwrap();
        let mpath = |s: &str| sb.backups().join(format!("{s}.manifest.json"));
        let mut m: Value =
            serde_json::from_str(&std::fs::read_to_string(mpath(&b_stem)).unwrap()).unwrap();
        m["file"]["name"] = format!("{stem}{ext}").into();
        m["created_at"] = a["created_at"].clone();
        std::fs::remove_file(mpath(&b_stem)).unwrap();
        std::fs::write(mpath(&stem), serde_json::to_string_pretty(&m).unwrap()).unwrap();
    }
    let b_file = format!("{stem}{}", b_name.strip_prefix(&b_stem).unwrap());
    let upload = remote.xtask(home.path(), &["upload", &b_file, "--env", "prod"]);
    let now_there = remote
        .server
        .r2_object(BUCKET, &key)
        .map(|b| sha256_hex(&b));
    assert_eq!(
        now_there,
        Some(sha256_hex(&first)),
        "the upload of machine B's {b_file} replaced machine A's offsite copy \
         r2://{BUCKET}/{key} (sha256 of the object now, then before):\n{}",
        upload.all()
    );
}

/// rvAN: a backup dated after now is "not the newest" everywhere today's
/// fix reached (`latest`, prune, status's freshness, status's "changed
/// since verified"), but status's `newest_is_bad` still reads the first
/// backup by date. A laptop whose clock ran 40 minutes fast took a backup
/// that failed verification; the clock was set right and the backup
/// before it is good, fresh, and what `restore latest` restores. status
/// calls the fast-clock backup "newest backup … BAD" and fails (the
/// scheduled `status -q` pages someone), while every other command says
/// it is not the newest.
#[test]
fn status_never_fails_for_a_bad_backup_dated_after_now_that_latest_passes_over() {
    let (sb, first) = sandbox_with_a_backup();
    let ahead = copy_taken_at(
        &sb,
        &first,
        chrono::Utc::now() + chrono::Duration::minutes(40),
    );
    let stem = ahead.split(".sql").next().unwrap();
    let path = sb.backups().join(format!("{stem}.manifest.json"));
    let mut m: Value = serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap();
    m["verification"]["outcome"] = "bad".into();
    m["verification"]["failed"] = serde_json::json!(["row counts: companies 3, expected 4"]);
    std::fs::write(&path, serde_json::to_string_pretty(&m).unwrap()).unwrap();

    let plan = plan_of_latest(&sb);
    plan.assert_ok();
    assert!(
        plan.stdout.contains(first.as_str()),
        "latest is the backup before the fast clock's:\n{}",
        plan.all()
    );
    let status = sb.xtask(&["status", "--env", "local"]);
    assert!(
        status.ok && !status.all().contains(&format!("{ahead}: BAD")),
        "status fails calling {ahead}, dated 40 minutes after now, the newest backup and BAD, \
         while `latest` is {first}, verified and fresh:\n{}",
        status.all()
    );
}

/// rvAN: the clock of the machine that runs the tool is set back by a day
/// (a dead RTC battery, a VM restored from a snapshot): every backup on
/// disk is now "from the future". Nothing may be deleted, and `latest`
/// must fail saying the clock, not that there is no backup at all, nor
/// advise taking the backups out of backups/.
#[test]
fn a_clock_set_back_a_day_neither_prunes_nor_says_there_is_no_backup() {
    let (sb, first) = sandbox_with_a_backup();
    let tomorrow = chrono::Utc::now() + chrono::Duration::days(1);
    let a = copy_taken_at(&sb, &first, tomorrow);
    let b = copy_taken_at(&sb, &first, tomorrow + chrono::Duration::minutes(5));
    let stem = first.split(".sql").next().unwrap();
    std::fs::remove_file(sb.backups().join(&first)).unwrap();
    std::fs::remove_file(sb.backups().join(format!("{stem}.manifest.json"))).unwrap();
    let before = sb.backup_files();

    let prune = sb.xtask(&["prune", "--keep-within", "0d", "--keep-daily", "1", "--yes"]);
    assert_eq!(
        sb.backup_files(),
        before,
        "prune deleted backups dated after a clock set back:\n{}",
        prune.all()
    );
    let plan = plan_of_latest(&sb);
    let verify = sb.xtask(&["verify", "latest:local"]);
    for run in [&plan, &verify] {
        assert!(
            !run.ok
                && run.all().contains("clock")
                && !run.all().contains("no full backup of local;")
                && !run.all().contains("move the backup and its manifest out"),
            "with {a} and {b} on disk, both dated a day after this machine's clock, `latest` \
             must fail naming the clock, neither saying there is no backup nor advising to move \
             them out of backups/:\n{}",
            run.all()
        );
    }
}

/// rvAN: the only backup of local is verified good but dated 30 minutes
/// after now (this machine's clock was set back since it was taken).
/// `restore latest` refuses it, as it should, but says "no full backup of
/// local has passed verification" and advises `cargo xtask verify` on it:
/// it has passed, and verifying it again changes nothing. The refusal
/// must name the clock and not send the operator to verify.
#[test]
fn latest_refusing_a_verified_backup_dated_after_now_does_not_call_it_unverified() {
    let (sb, first) = sandbox_with_a_backup();
    let ahead = copy_taken_at(
        &sb,
        &first,
        chrono::Utc::now() + chrono::Duration::minutes(30),
    );
    let stem = first.split(".sql").next().unwrap();
    std::fs::remove_file(sb.backups().join(&first)).unwrap();
    std::fs::remove_file(sb.backups().join(format!("{stem}.manifest.json"))).unwrap();
    assert_eq!(manifest_for(&sb, &ahead)["verification"]["outcome"], "good");
    let plan = plan_of_latest(&sb);
    assert!(!plan.ok, "{}", plan.all());
    assert!(
        plan.stderr.contains("clock")
            && !plan.stderr.contains("has passed verification")
            && !plan.stderr.contains("check it with `cargo xtask verify"),
        "{ahead} passed verification; the refusal must say its date is after the clock, not \
         that it is unverified:\n{}",
        plan.all()
    );
}

/// A backup named by its file, dated after this machine's clock (the one
/// that took it ran fast): the replace plan's `since` line said writes
/// made after that time (in the future) leave the target, "0s ago, when
/// the backup was taken": an operator reads that nothing written is lost.
/// When it was really taken is unknown, and the plan must say so.
#[test]
fn a_replace_plan_of_a_backup_dated_after_now_does_not_say_it_was_taken_just_now() {
    let (sb, first) = sandbox_with_a_backup();
    let ahead = copy_taken_at(
        &sb,
        &first,
        chrono::Utc::now() + chrono::Duration::minutes(50),
    );
    let file = sb.backups().join(&ahead);
    let run = sb.xtask(&[
        "restore",
        file.to_str().unwrap(),
        "--to",
        "local",
        "--replace",
        "--dry-run",
    ]);
    run.assert_ok();
    let since = { run.stdout.lines() }
        .find(|l| l.trim_start().starts_with("since"))
        .unwrap_or_else(|| panic!("no `since` line:\n{}", run.stdout));
    assert!(
        !since.contains("0s ago") && since.contains("after this machine's clock"),
        "{since}"
    );
}

/// prod's newest backup offsite ([`Remote::backup_and_upload_prod`]), the
/// index's uploads then set back 400 days (the gap between a clock a year
/// ahead and the scheduled job's), then a `backup prod --upload` on this
/// machine: the upload by the clock a year ahead. Returns the first
/// backup's name and that upload's run. Two tests start so: the first
/// test process's real run is kept and copied into the other's remote
/// ([`Remote::made_once`]: its backups/ and the bucket's objects), with
/// the run's output.
fn uploaded_by_a_clock_a_year_ahead(
    remote: &common::remote::Remote,
    home: &std::path::Path,
) -> (String, Run) {
    const BUCKET: &str = "qbtime-d1-backups";
    remote.server.add_bucket(BUCKET);
    let step = [
        "backup prod then upload NAME --env prod",
        "index uploads set back 400 days",
        "backup prod --upload",
    ];
    let kept = remote.made_once(&step, |dir| {
        let first = remote.backup_and_upload_prod(home);
        let key = "index/prod.json";
        let mut index: Value =
            serde_json::from_slice(&remote.server.r2_object(BUCKET, key).unwrap()).unwrap();
        let year_back = chrono::Utc::now() - chrono::Duration::days(400);
        for entry in index["backups"].as_array_mut().unwrap() {
            entry["uploaded_at"] = year_back.to_rfc3339().into();
        }
        remote
            .server
            .r2_put_object(BUCKET, key, &serde_json::to_vec(&index).unwrap())
            .unwrap();
        let run = remote.xtask(home, &["backup", "prod", "--upload"]);
        let said = (&first, run.ok, run.code, &run.stdout, &run.stderr);
        std::fs::write(dir.join("run.json"), serde_json::to_vec(&said).unwrap()).unwrap();
    });
    let said = std::fs::read(kept.path().join("run.json")).unwrap();
    let (first, ok, code, stdout, stderr) = serde_json::from_slice(&said).unwrap();
    let run = Run {
        ok,
        code,
        stdout,
        stderr,
    };
    (first, run)
}

/// atkDV: every upload rewrites the offsite index and drops the entries
/// whose `uploaded_at` is more than the lifecycle rule's days (372 for
/// prod) before this machine's clock. A laptop whose clock runs a year
/// ahead (a year typed wrong, a VM restored with a bad RTC) uploads once:
/// measured by its clock, every copy the scheduled job uploaded is past the
/// rule, and the index loses them all, though R2, which counts by its own
/// clock, keeps them. `offsite list` no longer shows them, `offsite fetch
/// NAME` cannot find them, and `offsite fetch latest` has only the
/// laptop's copy, which it passes over as dated ahead once its clock is
/// right. The test sets the index's uploads back a year instead of this
/// machine's clock forward: the same gap between the two clocks.
#[test]
fn an_upload_by_a_clock_a_year_ahead_never_drops_the_indexs_copies() {
    let remote = common::remote::Remote::new("");
    let home = tempfile::tempdir().unwrap();
    let (first, run) = uploaded_by_a_clock_a_year_ahead(&remote, home.path());
    run.assert_ok();
    let listed = remote.xtask(home.path(), &["offsite", "list", "--env", "prod"]);
    listed.assert_ok();
    assert!(
        listed.stdout.contains(&first),
        "the upload by a clock 400 days past the index's uploads dropped {first}, whose copy \
         R2 still holds, from the index:\n{}\n{}",
        run.all(),
        listed.all()
    );
    assert!(
        run.stderr.contains("clock") && run.stderr.contains("index"),
        "the upload must say it kept the index's entries for this machine's clock:\n{}",
        run.all()
    );
}

/// rvDX: the laptop whose clock runs a year ahead uploads twice (a second
/// backup that day): its first upload is the "witness" of the second, so
/// the second dropped every copy the scheduled job uploaded from the
/// index, though R2, which counts by its own clock, still holds them.
/// Uploads before a gap of more than the rule's days are kept until
/// uploads have gone on for the rule's days past it; the first upload past
/// the gap says so, naming the clock.
#[test]
fn a_second_upload_by_a_clock_a_year_ahead_never_drops_the_indexs_copies() {
    let remote = common::remote::Remote::new("");
    let home = tempfile::tempdir().unwrap();
    let (first, once) = uploaded_by_a_clock_a_year_ahead(&remote, home.path());
    once.assert_ok();
    assert!(
        once.stderr.contains("Check this machine's clock"),
        "{}",
        once.all()
    );
    let run = remote.xtask(home.path(), &["backup", "prod", "--upload"]);
    run.assert_ok();
    let listed = remote.xtask(home.path(), &["offsite", "list", "--env", "prod"]);
    listed.assert_ok();
    assert!(
        listed.stdout.contains(&first),
        "the second upload by a clock 400 days past the index's uploads dropped {first}, whose \
         copy R2 still holds, from the index:\n{}\n{}",
        run.all(),
        listed.all()
    );
}
