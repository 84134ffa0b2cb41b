//! atkAU: what a stale lock's records (`backups/.lock`, which anyone who
//! can write the backup directory may have written) make the next run
//! print and do. Each case plants a lock left "unlocked and not empty", as
//! a killed run leaves it, and runs a command that takes the lock.

use crate::common;

use common::decoys::Decoys;
use common::*;

/// A lock left by a "dead" run, with the given fields.
fn plant_stale_lock(sb: &Sandbox, fields: serde_json::Value) {
    std::fs::create_dir_all(sb.backups()).unwrap();
    std::fs::write(
        sb.backups().join(".lock"),
        serde_json::to_string(&fields).unwrap(),
    )
    .unwrap();
}

/// A lock left by a run of `command` that died an hour ago while `doing`
/// what it recorded.
fn plant_stale_run(sb: &Sandbox, command: &str, doing: &serde_json::Value) {
    plant_stale_record(sb, command, "doing", doing.clone());
}

/// A lock left by a run of `command` that died an hour ago, its record
/// `field` being `value`.
fn plant_stale_record(sb: &Sandbox, command: &str, field: &str, value: serde_json::Value) {
    let mut fields = serde_json::json!({
        "pid": 999_999,
        "started_at": started_an_hour_ago(),
        "command": command,
    });
    fields[field] = value;
    plant_stale_lock(sb, fields);
}

/// A lock left by a `restore into staging` that died an hour ago while
/// `doing` what it recorded.
fn plant_stale_restore_into_staging(sb: &Sandbox, doing: &serde_json::Value) {
    plant_stale_run(sb, "restore into staging", doing);
}

/// A sandbox with one backup of prod (its name is returned), and a lock
/// left by a run of `command` killed while it loaded a backup of staging
/// into prod, after taking the safety backup `safety` (`None`: that backup
/// of prod, there and whole).
fn a_killed_load_into_prod(
    command: &str,
    safety: Option<&str>,
) -> (common::remote::Remote, tempfile::TempDir, String) {
    let remote = common::remote::Remote::new("");
    let home = tempfile::tempdir().unwrap();
    let prod = remote.backup_prod(home.path());
    let doing = serde_json::json!({
        "kind": "loading",
        "env": "prod",
        "backup": "backup-staging-20261201-0300.sql",
        "safety": safety.unwrap_or(&prod),
    });
    plant_stale_run(&remote.sb, command, &doing);
    (remote, home, prod)
}

fn started_an_hour_ago() -> String {
    (chrono::Utc::now() - chrono::Duration::hours(1))
        .to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
}

/// The lock's `doing` is free text that the next run repeats as what the
/// dead run was doing "and the way back", which the operator is meant to
/// paste. A planted lock hands the operator a restore into production of a
/// file outside backups/ (no backup, no manifest, nothing the tool ever
/// wrote), worded exactly as the tool's own advice after a killed
/// migration; the tool repeats it as its own word.
#[test]
fn a_stale_lock_never_tells_the_operator_to_restore_a_file_it_did_not_write_into_prod() {
    let sb = Sandbox::new();
    sb.apply_migrations();
    sb.execute_sql(SEED_SQL);
    let decoys = Decoys::plant(sb.path());
    let before = decoys.hashes();
    let planted = decoys.path("victim.sql");
    plant_stale_lock(
        &sb,
        serde_json::json!({
            "pid": 999_999,
            "started_at": started_an_hour_ago(),
            "command": "migrate prod",
            "doing": format!(
                "applying migrations to qbtime_db_prod, some of which may be applied; to go \
                 back, restore the pre-migration backup: cargo xtask restore {} --to prod \
                 --replace --confirm qbtime_db_prod",
                planted.display()
            ),
        }),
    );
    let run = sb.xtask(&["backup", "local"]);
    run.assert_ok();
    assert!(
        run.stderr.contains("gone without releasing it"),
        "the stale lock is reported:\n{}",
        run.all()
    );
    assert!(
        !run.all().contains("victim.sql"),
        "the next run repeated a planted lock's command that restores a file outside backups/ \
         into prod as the way back:\n{}",
        run.all()
    );
    assert_eq!(decoys.hashes(), before, "a decoy outside backups/ changed");
}

/// README (backup, step 4): "A hand dump copied into `backups/` meanwhile
/// is the operator's and is never removed, whatever its name, even one
/// named exactly like a backup of that hour". The only thing that tells the
/// dead run's file from the operator's is the lock's `placing`, which anyone
/// who can write the directory may write: a planted lock naming the
/// operator's copy has the next command (here a `backup`) delete it, with
/// a warning that the tool's own run wrote it.
#[test]
fn a_planted_lock_never_has_the_next_run_delete_a_hand_dump_named_like_a_backup() {
    let (sb, name) = sandbox_with_a_backup();
    let stamp = chrono::Utc::now().format("%Y%m%d-%H%M");
    // The operator's copy, to restore from by path: no manifest.
    let hand = sb.backups().join(format!("backup-local-{stamp}-7.sql"));
    std::fs::copy(sb.backups().join(&name), &hand).unwrap();
    let bytes = std::fs::read(&hand).unwrap();
    plant_stale_lock(
        &sb,
        serde_json::json!({
            "pid": 999_999,
            "started_at": started_an_hour_ago(),
            "command": "backup local",
            "placing": format!("backup-local-{stamp}-7.sql"),
        }),
    );
    let run = sb.xtask(&["backup", "local"]);
    run.assert_ok();
    assert!(
        hand.exists(),
        "the operator's hand dump {} was deleted on a planted lock's word:\n{}",
        hand.display(),
        run.all()
    );
    assert_eq!(std::fs::read(&hand).unwrap(), bytes);
}

/// rvAN: `told` checks that the backup it names as the way back is a
/// backup in backups/ with its manifest, but not that it is a backup of
/// the environment the record names. A run killed while loading into
/// staging took its safety backup *of staging*, and a migration's
/// pre-migration backup is of the database migrated: an honest lock never
/// names another environment's backup. A planted lock naming the local
/// development backup has the next run hand the operator a replacing
/// restore of dev data into staging, worded as "the safety backup taken
/// before it" (and as "the pre-migration backup").
#[test]
fn a_stale_lock_never_offers_another_environments_backup_as_the_way_back() {
    let (sb, local) = sandbox_with_a_backup();
    assert_eq!(manifest_for(&sb, &local)["environment"], "local");
    for doing in [
        serde_json::json!({
            "kind": "loading",
            "env": "staging",
            "backup": "backup-prod-20261201-0300.sql",
            "safety": local,
        }),
        serde_json::json!({ "kind": "migrating", "env": "staging", "backup": local }),
    ] {
        plant_stale_restore_into_staging(&sb, &doing);
        let run = sb.xtask(&["backup", "local"]);
        run.assert_ok();
        assert!(
            run.stderr.contains("gone without releasing it"),
            "the stale lock is reported:\n{}",
            run.all()
        );
        let offered = run
            .all()
            .lines()
            .any(|l| l.contains(&local) && l.contains("--to staging"));
        assert!(
            !offered,
            "a planted lock ({doing}) has the next run offer {local}, a backup of local, as \
             the way back for staging:\n{}",
            run.all()
        );
    }
}

/// FB: a restore into local killed while loading left a lock naming its
/// safety backup, which was pruned before the next run. The next run said
/// only that it "is not a backup in backups/ now", and gave no way back:
/// it names the newest backup of local that is here, with its command, or
/// says plainly that there is none.
#[test]
fn a_stale_locks_way_back_gone_names_the_newest_backup_of_that_environment_here() {
    let (sb, kept) = sandbox_with_a_backup();
    let doing = serde_json::json!({
        "kind": "loading",
        "env": "local",
        "backup": "backup-staging-20261201-0300.sql",
        "safety": "backup-local-20261201-0305.sql",
    });
    let lock = |doing: &serde_json::Value| {
        plant_stale_lock(
            &sb,
            serde_json::json!({
                "pid": 999_999,
                "started_at": started_an_hour_ago(),
                "command": "restore into local",
                "doing": doing,
            }),
        );
    };
    lock(&doing);
    let run = sb.xtask(&["backup", "local"]);
    run.assert_ok();
    let told = warning_with_way_back(&run.stderr, |l| l.contains("gone without releasing it"))
        .unwrap_or_else(|| panic!("the stale lock is not reported:\n{}", run.all()));
    let stem = kept.split(".sql").next().unwrap();
    assert!(
        told.contains("not a backup in")
            && told.contains(stem)
            && told.contains("cargo xtask restore")
            && told.contains("--to local"),
        "the way back gone, {kept}, the newest backup of local here, is not named:\n{told}"
    );

    // No backup of local here at all: said plainly.
    for file in sb.backup_files() {
        if file.starts_with("backup-local-") {
            std::fs::remove_file(sb.backups().join(file)).unwrap();
        }
    }
    lock(&doing);
    let run = sb.xtask(&["backup", "local"]);
    run.assert_ok();
    assert!(
        run.stderr.contains("no verified backup of local is here"),
        "{}",
        run.all()
    );
}

/// rvAN: a Time Travel run writes its `started` line (environment,
/// `restore_to`, `bookmark_before`) to backups/time-travel.jsonl before it
/// records the same bookmarks in the lock. A lock whose bookmarks have
/// D1's shape but are in no journal line is not a record of this tool's
/// run, yet the next run repeats its `undo` as the bookmark that "undoes
/// it": the operator restores prod to a point the planted lock chose.
#[test]
fn a_stale_lock_never_tells_a_bookmark_the_journal_never_recorded_as_the_undo() {
    let (sb, _) = sandbox_with_a_backup();
    let undo = "00000085-0000024c-00004c6d-0123456789abcdef0123456789abcdef";
    let to = "00000084-00000001-00004c6d-fedcba9876543210fedcba9876543210";
    assert!(!sb.backups().join("time-travel.jsonl").exists());
    plant_stale_lock(
        &sb,
        serde_json::json!({
            "pid": 999_999,
            "started_at": started_an_hour_ago(),
            "command": "time-travel restore prod",
            "doing": { "kind": "time_travel", "env": "prod", "to": to, "undo": undo },
        }),
    );
    let run = sb.xtask(&["backup", "local"]);
    run.assert_ok();
    assert!(
        run.stderr.contains("gone without releasing it"),
        "the stale lock is reported:\n{}",
        run.all()
    );
    assert!(
        !run.all().contains(undo),
        "a planted lock's bookmark, recorded in no line of the Time Travel journal, is told \
         as the one that undoes a restore of prod:\n{}",
        run.all()
    );
}

/// rvAT: status judges a `started` Time Travel restore still running when
/// any live process holds the backup lock (`steps::lock::a_run_holds_the_lock`
/// reads only the pid), whatever that run is. A restore of prod killed
/// yesterday is shown `(started)`, with no word that its run is gone nor
/// the bookmark that undoes it, whenever a backup of another environment
/// runs in another terminal (here: a lock naming a live process and
/// `backup staging`), or a lock planted with pid 1.
#[test]
fn status_calls_a_killed_time_travel_restore_stopped_while_another_run_holds_the_lock() {
    let sb = Sandbox::new();
    plant_started_time_travel(&sb);
    let line = time_travel_line;
    // Nothing holds the lock: the restore is told stopped, with its undo.
    assert!(line(&sb).contains(&bookmark("0000")), "{}", line(&sb));
    for (pid, command) in [(std::process::id(), "backup staging"), (1, "prune")] {
        plant_stale_lock(
            &sb,
            serde_json::json!({
                "pid": pid,
                "started_at": "2026-12-01T10:00:00Z",
                "command": command,
            }),
        );
        let told = line(&sb);
        assert!(
            !told.ends_with("(started)") && told.contains(&bookmark("0000")),
            "with a live `{command}` (pid {pid}) in the lock, prod's killed restore is told still \
             running, with no way back: {told}"
        );
    }
}

/// The loading record's `migrations_first` (a `--clean` restore applying
/// the migrations): of the wrong type, or on a migrating record, the record
/// is not read; on an environment the configuration does not name, nothing
/// is told; absent (an older lock), the load is told as before.
#[test]
fn a_stale_lock_with_a_forged_migrations_first_is_told_only_as_written_by_this_tool() {
    let sb = Sandbox::new();
    sb.apply_migrations();
    let cases = [
        (
            serde_json::json!({ "kind": "loading", "env": "staging", "backup": "b.sql",
                                "migrations_first": "yes" }),
            "does not read",
        ),
        (
            serde_json::json!({ "kind": "migrating", "env": "staging", "migrations_first": true }),
            "does not read",
        ),
        (
            serde_json::json!({ "kind": "loading", "env": "nosuch", "backup": "b.sql",
                                "migrations_first": true }),
            "this configuration does not name",
        ),
        (
            serde_json::json!({ "kind": "loading", "env": "staging", "backup": "b.sql",
                                "migrations_first": true }),
            "some of them may be applied to qbtime_db_staging, and no row of the backup was loaded",
        ),
        (
            serde_json::json!({ "kind": "loading", "env": "staging", "backup": "b.sql" }),
            "holds either all of the backup or what it held before",
        ),
    ];
    for (doing, told) in cases {
        plant_stale_restore_into_staging(&sb, &doing);
        let run = sb.xtask(&["backup", "local"]);
        run.assert_ok();
        assert!(run.stderr.contains(told), "{doing}: {}", run.all());
        if !told.contains("some of them") {
            assert!(
                !run.stderr.contains("some of them may be applied"),
                "{doing}: {}",
                run.all()
            );
        }
    }
}

/// A lock left by `restore into local` that died an hour ago while
/// `doing` what it recorded.
fn plant_stale_restore_into_local(sb: &Sandbox, doing: &serde_json::Value) {
    plant_stale_run(sb, "restore into local", doing);
}

/// Whether `line` tells a stale lock, or a record one kept.
fn tells_a_stale_lock(line: &str) -> bool {
    line.contains("gone without releasing it") || line.contains("a record kept from")
}

/// The line that tells the stale lock (or the record it kept).
fn stale_lock_told(run: &Run) -> String {
    warning_with_way_back(&run.stderr, tells_a_stale_lock)
        .unwrap_or_else(|| panic!("the stale lock is not reported:\n{}", run.all()))
}

/// The warning of `stderr` whose first line `first` holds for, with the
/// lines it goes on with (indented): its way back's command is a line of
/// its own (LR).
fn warning_with_way_back(stderr: &str, first: impl Fn(&str) -> bool) -> Option<String> {
    let mut lines = stderr.lines().skip_while(|l| !first(l));
    let head = lines.next()?;
    let rest = lines.take_while(|l| l.starts_with("  "));
    Some(
        std::iter::once(head)
            .chain(rest)
            .collect::<Vec<_>>()
            .join("\n"),
    )
}

/// GB: the lock records the safety backup by its file name only. The
/// file under that name now is another (the dead run's pruned, and a new
/// backup given its name; or the directory rewritten): its manifest is
/// valid and of local, so the next run names it as "the safety backup
/// taken before it", which it is not. The lock records the sha256 its
/// manifest gave the file (`file.sha256`, as a manifest's `taken_after`
/// names a backup), and the file under the name is that one or no way back.
#[test]
fn a_stale_locks_safety_backup_is_the_file_it_recorded_not_another_under_its_name() {
    let (sb, kept) = sandbox_with_a_backup();
    let taken = sha256_hex(b"the safety backup the dead run took, since pruned");
    assert_ne!(manifest_for(&sb, &kept)["file"]["sha256"], taken.as_str());
    plant_stale_restore_into_local(
        &sb,
        &serde_json::json!({
            "kind": "loading",
            "env": "local",
            "backup": "backup-staging-20261201-0300.sql",
            "safety": kept,
            "safety_sha256": taken,
        }),
    );
    let run = sb.xtask(&["backup", "local"]);
    run.assert_ok();
    let told = stale_lock_told(&run);
    assert!(
        told.contains("the safety backup taken before it, which it recorded, is not a backup in"),
        "{kept}, another file than the safety backup the lock recorded, is not said to be \
         gone:\n{told}"
    );
    assert!(
        !told.contains("to go back, restore the safety backup taken before it"),
        "{kept} is named as the safety backup taken before the killed restore:\n{told}"
    );
}

/// GB: the way back from a killed restore is never the backup it loaded
/// nor one of its rows; the backup it loaded was found by its file name.
/// That name now holds another backup (the one loaded moved to another
/// name by hand, or pruned and a new backup given the name): the next run
/// leaves out the other backup and offers one of the rows it loaded,
/// whose restore brings back nothing of before. The backup loaded is
/// found by the sha256 the lock records.
#[test]
fn a_stale_locks_way_back_finds_the_backup_it_loaded_by_its_sha256_not_its_name() {
    let (sb, loaded) = sandbox_with_a_backup();
    sb.execute_sql(
        "INSERT INTO companies (name, qbt_company_id, timezone) VALUES ('Later', 'qbt-8', 'UTC');",
    );
    sb.xtask(&["backup", "local"]).assert_ok();
    let newer = sb
        .backup_files()
        .into_iter()
        .find(|f| f.starts_with("backup-local-") && f.ends_with(".sql") && *f != loaded)
        .expect("a second backup of local");
    let sha256 = manifest_for(&sb, &loaded)["file"]["sha256"]
        .as_str()
        .unwrap()
        .to_owned();
    plant_stale_restore_into_local(
        &sb,
        &serde_json::json!({
            "kind": "loading",
            "env": "local",
            "backup": newer,
            "backup_sha256": sha256,
            "safety": "backup-local-20261201-0305.sql",
        }),
    );
    let run = sb.xtask(&["backup", "local"]);
    run.assert_ok();
    let told = stale_lock_told(&run);
    assert!(
        told.contains(&format!(
            "the newest verified backup of local here is {newer}"
        )) && told.contains("cargo xtask restore")
            && !told.contains(&loaded),
        "the way back is not {newer} (now under the name the lock recorded), or is {loaded}, \
         the rows the killed restore loaded:\n{told}"
    );
}

/// GB: a lock left by a run for one environment told a run for another
/// the way back for the first: a planted `restore into prod` whose safety
/// backup is "gone" has a `backup staging` print the newest verified
/// backup of prod and `cargo xtask restore … --to prod --replace --confirm
/// qbtime_db_prod`, a rollback of production the lock chose. A run tells
/// the way back for its own environment only; of another's it says whose
/// the record is, and that its way back is not told here.
#[test]
fn a_stale_lock_for_one_environment_tells_a_run_for_another_no_way_back() {
    let gone = Some("backup-prod-20261201-0305.sql");
    let (remote, home, prod) = a_killed_load_into_prod("restore into prod", gone);
    let run = remote.xtask(home.path(), &["backup", "staging"]);
    run.assert_ok();
    let told = stale_lock_told(&run);
    assert!(
        told.contains("into qbtime_db_prod") && told.contains("no way back is told"),
        "the record is not told as prod's, with no way back:\n{told}"
    );
    assert!(
        !run.all().contains("--to prod") && !run.all().contains(&prod),
        "a lock of a run for prod has a run for staging offer a restore into prod:\n{}",
        run.all()
    );
}

/// GB: the record names an environment, and the lock a command; a planted
/// lock pairs `restore into staging` with a load into local, so that a
/// run for local tells it, and names the newest verified backup of local
/// as the way back for a run that was not local's. A record its own
/// command does not name is not one this tool wrote: no way back is told.
#[test]
fn a_stale_lock_whose_record_its_command_does_not_name_tells_no_way_back() {
    let (sb, kept) = sandbox_with_a_backup();
    let stem = kept.split(".sql").next().unwrap().to_owned();
    for (command, doing) in [
        (
            "restore into staging",
            serde_json::json!({
                "kind": "loading",
                "env": "local",
                "backup": "backup-staging-20261201-0300.sql",
                "safety": "backup-local-20261201-0305.sql",
            }),
        ),
        (
            "backup local",
            serde_json::json!({
                "kind": "migrating",
                "env": "local",
                "backup": "backup-local-20261201-0305.sql",
            }),
        ),
    ] {
        plant_stale_run(&sb, command, &doing);
        let run = sb.xtask(&["backup", "local"]);
        run.assert_ok();
        let told = stale_lock_told(&run);
        assert!(
            !told.contains(&stem) && !told.contains("cargo xtask restore"),
            "a record of local under `{command}` has the next run offer {kept}:\n{told}"
        );
        assert!(told.contains("no way back is told"), "{told}");
    }
}

/// GJ: a killed `restore into prod` whose safety backup is there, and a
/// `backup staging` (a cron job) and a `backup local` run before anyone
/// runs a command for prod. Each is told the way back is not for it; the
/// record was ended by the first, so the `backup prod` after them was told
/// nothing at all: the way back was printed nowhere. A run for another
/// environment keeps the record for the next, and the first run for prod
/// is told it, the safety backup and the restore into prod; once: the run
/// after that finds the lock released clean.
#[test]
fn a_stale_locks_way_back_is_kept_for_the_first_run_for_its_environment() {
    let (remote, home, prod) = a_killed_load_into_prod("restore into prod", None);
    for env in ["staging", "local"] {
        let run = remote.xtask(home.path(), &["backup", env]);
        run.assert_ok();
        let told = stale_lock_told(&run);
        assert!(
            told.contains("into qbtime_db_prod") && told.contains("kept for the next run for prod"),
            "`backup {env}` is not told the record is kept for prod:\n{told}"
        );
        assert!(!run.all().contains("--to prod"), "{}", run.all());
        // GP: `backup staging` released the lock clean: `backup local`
        // finds the record it kept, told as kept, not as a lock just left.
        if env == "local" {
            assert!(
                told.contains("warning: a record kept from a run of `restore into prod` (pid ")
                    && !told.contains("held the backup lock"),
                "{told}"
            );
        }
    }
    let next = remote.xtask(home.path(), &["backup", "prod"]);
    next.assert_ok();
    let told = stale_lock_told(&next);
    assert!(
        told.contains(&prod) && told.contains("--to prod"),
        "the first run for prod is not told the way back:\n{}",
        next.all()
    );
    let after = remote.xtask(home.path(), &["backup", "prod"]);
    after.assert_ok();
    assert!(
        !tells_a_stale_lock(&after.all()),
        "the record is told again:\n{}",
        after.all()
    );
}

/// GJ: a record whose lock's command does not write it (a planted
/// `restore into staging` beside a load into prod) is withheld from every
/// run, and not kept: the run for prod after a `backup staging` is told
/// nothing of it, and offers no restore into prod.
#[test]
fn a_stale_lock_whose_record_its_command_does_not_name_is_not_kept() {
    let (remote, home, _) = a_killed_load_into_prod("restore into staging", None);
    let staging = remote.xtask(home.path(), &["backup", "staging"]);
    staging.assert_ok();
    assert!(stale_lock_told(&staging).contains("no way back is told"));
    let next = remote.xtask(home.path(), &["backup", "prod"]);
    next.assert_ok();
    assert!(
        !tells_a_stale_lock(&next.all()) && !next.all().contains("--to prod"),
        "a record its lock's command does not write is kept:\n{}",
        next.all()
    );
}

/// GJ: the run that keeps a record for prod is killed in turn (a
/// `backup staging` stopped by the OOM killer): its lock holds the record
/// it kept beside its own, and the next run, for prod, is told both, the
/// way back included.
#[test]
fn a_record_kept_by_a_run_killed_in_turn_is_told_to_the_next_run_for_its_environment() {
    let (remote, home, prod) = a_killed_load_into_prod("restore into prod", None);
    let lock = remote.sb.backups().join(".lock");
    let dead: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&lock).unwrap()).unwrap();
    plant_stale_lock(
        &remote.sb,
        serde_json::json!({
            "pid": 999_998,
            "started_at": started_an_hour_ago(),
            "command": "backup staging",
            "kept": [dead],
        }),
    );
    let next = remote.xtask(home.path(), &["backup", "prod"]);
    next.assert_ok();
    assert!(
        next.stderr.contains("pid 999998 (`backup staging`"),
        "{}",
        next.all()
    );
    let told = warning_with_way_back(&next.stderr, |l| {
        l.contains("a record kept from a run of `restore into prod` (pid 999999")
    });
    assert!(
        told.is_some_and(|t| t.contains(&prod) && t.contains("--to prod")),
        "the record kept is not told:\n{}",
        next.all()
    );
}

/// GP: a `migrate prod --no-backup` killed half-way, then a cron `backup
/// staging`: prod may hold some of the migrations, and there is no backup
/// to go back to. The record was kept only with a way back, so the
/// `backup staging` ended it and the next run for prod was told nothing.
/// Every genuine record of another environment is kept: the run for prod
/// is told some migrations may be applied, with no backup taken.
#[test]
fn a_killed_migration_of_prod_with_no_backup_is_kept_for_the_next_run_for_prod() {
    let remote = common::remote::Remote::new("");
    let home = tempfile::tempdir().unwrap();
    let doing = serde_json::json!({"kind": "migrating", "env": "prod", "backup": null});
    plant_stale_run(&remote.sb, "migrate prod", &doing);
    let staging = remote.xtask(home.path(), &["backup", "staging", "-q"]);
    staging.assert_ok();
    assert!(
        staging.stderr.contains("kept for the next run for prod"),
        "`backup staging` does not keep the record for prod:\n{}",
        staging.all()
    );
    let next = remote.xtask(home.path(), &["backup", "prod"]);
    next.assert_ok();
    let told = next
        .stderr
        .lines()
        .find(|l| l.contains("pid 999999"))
        .unwrap_or_else(|| panic!("the run for prod is told nothing:\n{}", next.all()))
        .to_owned();
    assert!(
        told.contains("applying migrations to qbtime_db_prod")
            && told.contains("may be applied")
            && told.contains("--no-backup"),
        "{told}"
    );
}

/// The start of process `pid` as `/proc/PID/stat` tells it (field 22),
/// which anyone may read.
fn start_of(pid: u32) -> u64 {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap();
    let after = stat.rsplit_once(')').unwrap().1;
    after.split_whitespace().nth(19).unwrap().parse().unwrap()
}

/// A lock left by a `with-backup local` killed an hour ago, on this
/// machine, whose command still running is said to be process `pid`.
fn plant_killed_with_backup(sb: &Sandbox, pid: u32) {
    plant_killed_with_backup_at(sb, pid, &started_an_hour_ago());
}

/// [`plant_killed_with_backup`], the record saying with-backup started at
/// `started_at`.
fn plant_killed_with_backup_at(sb: &Sandbox, pid: u32, started_at: &str) {
    plant_stale_lock(
        sb,
        serde_json::json!({
            "pid": 999_999,
            "started_at": started_at,
            "command": "with-backup local -- sh",
            "machine": machine_here(None),
            "running": {"pid": pid, "start": start_of(pid)},
        }),
    );
}

/// rvU: a planted lock whose command still running is said to be pid 1
/// (with its real start time) held every locking command off forever, and
/// told each, pid 1 being an ancestor of every process, that it was
/// started by with-backup's command ("run it before or after
/// with-backup"), never to remove the lock. pid 1 is never a command
/// with-backup started: the lock is stale, and the backup is taken.
#[test]
fn a_planted_lock_naming_pid_1_as_with_backups_command_is_stale() {
    let sb = Sandbox::new();
    sb.apply_migrations();
    plant_killed_with_backup(&sb, 1);
    let run = sb.xtask(&["backup", "local"]);
    assert!(!run.all().contains("before or after"), "{}", run.all());
    run.assert_ok();
    let stale = "held the backup lock and is gone without releasing it";
    assert!(run.stderr.contains(stale), "{}", run.all());
}

/// rvU: a record naming a live process as with-backup's command still
/// running (here an ancestor of the run, started after the record says
/// with-backup did, as its command would be) refuses the run; the refusal
/// names the lock and how to tell it is stale, and to remove it then.
#[test]
fn a_lock_held_by_with_backups_command_tells_how_to_tell_it_is_stale() {
    let sb = Sandbox::new();
    sb.apply_migrations();
    let me = std::process::id();
    plant_killed_with_backup(&sb, me);
    let run = sb.xtask(&["backup", "local"]);
    assert_eq!(run.code, Some(4), "{}", run.all());
    let lock = sb.backups().join(".lock");
    let told = format!(
        "if pid {me} is not that command (`ps -p {me}` shows it), remove {}",
        lock.display()
    );
    assert!(run.stderr.contains(&told), "{}", run.all());
}

/// rvV: a with-backup's record says when it started by the clock; were the
/// clock stepped back over 10 minutes after it (an NTP fix, a VM resumed),
/// its command, still running, started "before" it, and was taken for
/// another process: the lock was stale and a second run took it while the
/// command could change the database. The record's time, written by
/// whoever wrote the record, protects nothing: a live command (pid and
/// start time as recorded) holds the lock, whatever the clock said.
#[test]
fn a_killed_with_backups_command_holds_the_lock_after_the_clock_was_stepped_back() {
    let sb = Sandbox::new();
    sb.apply_migrations();
    let me = std::process::id();
    let ahead = (chrono::Utc::now() + chrono::Duration::days(1))
        .to_rfc3339_opts(chrono::SecondsFormat::Secs, true);
    plant_killed_with_backup_at(&sb, me, &ahead);
    let run = sb.xtask(&["backup", "local"]);
    assert_eq!(run.code, Some(4), "{}", run.all());
    assert!(run.stderr.contains(&format!("pid {me}")), "{}", run.all());
}

/// A record naming pid 1 as with-backup's command is stale for that
/// reason: pid 1 is never taken for a command with-backup started. The
/// warning says so, not that "the command it started (pid 1) is not
/// running", which it is (pid 1 always runs).
#[test]
fn the_stale_warning_for_a_record_naming_pid_1_says_why_it_is_stale() {
    let sb = Sandbox::new();
    sb.apply_migrations();
    plant_killed_with_backup(&sb, 1);
    let run = sb.xtask(&["backup", "local"]);
    run.assert_ok();
    assert!(
        !run.stderr.contains("(pid 1) is not running"),
        "{}",
        run.all()
    );
    assert!(
        run.stderr.contains(
            "names pid 1 as the command it started, which no command with-backup starts is"
        ),
        "{}",
        run.all()
    );
}

/// A with-backup's record that holds its command too
/// (`with-backup local -- sh`) is told by its environment, `local`, in the
/// advice to a run nested inside it, never as `ENV` or `sh`.
#[test]
fn a_run_nested_in_with_backup_is_told_the_environment_with_backup_is_for() {
    let sb = Sandbox::new();
    sb.apply_migrations();
    plant_killed_with_backup(&sb, std::process::id());
    let run = sb.xtask(&["backup", "local"]);
    assert_eq!(run.code, Some(4), "{}", run.all());
    assert!(
        run.stderr.contains("`with-backup local` runs")
            && run
                .stderr
                .contains("migrate takes its own pre-migration backup")
            && !run.stderr.contains("ENV"),
        "{}",
        run.all()
    );
}

/// A file's name, device, inode and size, as a lock records a file.
fn file_record(sb: &Sandbox, name: &str) -> serde_json::Value {
    use std::os::unix::fs::MetadataExt as _;
    let meta = std::fs::symlink_metadata(sb.backups().join(name))
        .or_else(|_| std::fs::symlink_metadata(sb.path().join(name)))
        .unwrap();
    serde_json::json!({
        "name": name, "device": meta.dev(), "inode": meta.ino(), "size": meta.len(),
    })
}

/// The lock a run of `command` killed an hour ago left, while it deleted
/// the backup and the manifest `pruning` records.
fn plant_killed_prune(sb: &Sandbox, command: &str, pruning: serde_json::Value) {
    plant_stale_record(sb, command, "pruning", pruning);
}

/// rvW: a prune killed between a backup's two deletes (its file, then its
/// manifest) left a manifest with no backup (or, the other way round, a
/// backup with no manifest) that nothing showed nor removed: the next run
/// said only that the prune was gone without releasing its lock. A prune
/// records the pair it deletes in its lock first, and the next run that
/// takes the lock finishes that delete, saying so: only the very file or
/// manifest recorded (its device, inode and size), in backups/, whose
/// partner is gone, and only on a prune's record.
#[test]
fn a_prune_killed_between_a_backups_two_deletes_is_finished_by_the_next_run() {
    let (sb, first) = sandbox_with_a_backup();
    // The next run that takes the lock, writing no backup of its own
    // (which may be given the name of the one deleted).
    let next = ["prune", "--yes"];
    let manifest_of = |name: &str| name.replace(".sql", ".manifest.json");
    let pair = |name: &str| {
        serde_json::json!({
            "backup": file_record(&sb, name),
            "manifest": file_record(&sb, &manifest_of(name)),
        })
    };
    let newest = |sb: &Sandbox| {
        sb.xtask(&["backup", "local"]).assert_ok();
        let mut sql: Vec<String> = { sb.backup_files().into_iter() }
            .filter(|n| n.ends_with(".sql"))
            .collect();
        sql.sort_by_key(|n| {
            std::fs::metadata(sb.backups().join(n))
                .unwrap()
                .modified()
                .unwrap()
        });
        sql.pop().unwrap()
    };

    // Killed between its backup and its manifest: the manifest goes.
    let record = pair(&first);
    std::fs::remove_file(sb.backups().join(&first)).unwrap();
    plant_killed_prune(&sb, "prune", record);
    let run = sb.xtask(&next);
    run.assert_ok();
    let manifest = sb.backups().join(manifest_of(&first));
    assert!(
        !manifest.exists()
            && run
                .stderr
                .contains(&format!("removing {}", manifest.display()))
            && run.stderr.contains("prune"),
        "the manifest a killed prune left without its backup is still there, or not told:\n{}",
        run.all()
    );

    // The other way round, a backup without its manifest, is no prune's
    // leftover: prune deletes the file first. Its manifest was moved aside
    // by someone after the prune was killed before either delete (rvZ),
    // and the backup's data stays.
    let second = newest(&sb);
    let record = pair(&second);
    let aside = sb.path().join("kept-aside.manifest.json");
    std::fs::rename(sb.backups().join(manifest_of(&second)), &aside).unwrap();
    plant_killed_prune(&sb, "prune", record);
    let run = sb.xtask(&next);
    run.assert_ok();
    let file = sb.backups().join(&second);
    assert!(
        file.exists() && !run.stderr.contains(&format!("removing {}", file.display())),
        "a backup whose manifest was moved aside was deleted:\n{}",
        run.all()
    );
    std::fs::rename(&aside, sb.backups().join(manifest_of(&second))).unwrap();

    // Killed before either delete: a whole backup, which stays.
    let third = newest(&sb);
    plant_killed_prune(&sb, "prune", pair(&third));
    sb.xtask(&next).assert_ok();
    assert!(sb.backups().join(&third).exists());
    assert!(sb.backups().join(manifest_of(&third)).exists());

    // A manifest given that name since (another inode) stays; so does one
    // on the word of a record that is not a prune's.
    let fourth = newest(&sb);
    let record = pair(&fourth);
    let manifest = sb.backups().join(manifest_of(&fourth));
    let copy = sb.path().join("manifest-copy.json");
    std::fs::copy(&manifest, &copy).unwrap();
    std::fs::rename(&copy, &manifest).unwrap();
    std::fs::remove_file(sb.backups().join(&fourth)).unwrap();
    plant_killed_prune(&sb, "prune", record);
    sb.xtask(&next);
    assert!(
        manifest.exists(),
        "a manifest not the recorded one was removed"
    );
    plant_killed_prune(
        &sb,
        "backup local",
        pair_of_existing(&sb, &manifest_of(&fourth)),
    );
    sb.xtask(&next);
    assert!(
        manifest.exists(),
        "a record not a prune's had a manifest removed"
    );

    // A record naming a manifest outside backups/.
    let decoys = Decoys::plant(sb.path());
    let before = decoys.hashes();
    std::fs::write(
        sb.path().join("backup-local-20261201-0100.manifest.json"),
        "{}",
    )
    .unwrap();
    let outside = serde_json::json!({
        "backup": {"name": "../backup-local-20261201-0100.sql", "device": 0, "inode": 0, "size": 0},
        "manifest": file_record(&sb, "backup-local-20261201-0100.manifest.json"),
    });
    let mut outside = outside;
    outside["manifest"]["name"] = "../backup-local-20261201-0100.manifest.json".into();
    plant_killed_prune(&sb, "prune", outside);
    sb.xtask(&next);
    assert!(
        sb.path()
            .join("backup-local-20261201-0100.manifest.json")
            .exists()
    );
    assert_eq!(decoys.hashes(), before, "a decoy outside backups/ changed");
}

/// A record of a pair whose backup is gone and whose manifest is `manifest`.
fn pair_of_existing(sb: &Sandbox, manifest: &str) -> serde_json::Value {
    serde_json::json!({
        "backup": {"name": manifest.replace(".manifest.json", ".sql"), "device": 0, "inode": 0, "size": 0},
        "manifest": file_record(sb, manifest),
    })
}

/// rvAD: a planted record of a run killed while its wrangler ran (a
/// `migrate local`), copying this machine's, whose `running` names a live
/// process that is no wrangler (here this test's own `sleep`) and says no
/// start time, held every locking run off and advised `kill` of that
/// process (sshd, say). A wrangler's record is believed only with the start
/// time its process has and a wrangler's command line: this one holds
/// nothing, the run proceeds, and no run is told to kill that process.
#[test]
fn a_planted_wrangler_record_naming_another_process_holds_nothing_and_advises_no_kill() {
    let sb = Sandbox::new();
    sb.apply_migrations();
    let mut other = std::process::Command::new("sleep")
        .arg("60")
        .spawn()
        .unwrap();
    plant_stale_lock(
        &sb,
        serde_json::json!({
            "pid": 999_999,
            "started_at": started_an_hour_ago(),
            "command": "migrate local",
            "machine": machine_here(None),
            "running": {"pid": other.id()},
        }),
    );
    let run = sb.xtask(&["backup", "local"]);
    let _ = other.kill();
    let _ = other.wait();
    assert!(!run.all().contains("kill"), "{}", run.all());
    run.assert_ok();
}

/// rvBK 7: a backup is renamed into place before its manifest is written,
/// and `list` and `status` take no lock: run at that moment they called
/// the backup being written "named as a backup but has no manifest beside
/// it … delete it". The file a live run's lock says it is placing is
/// passed over; the same file with no run placing it is told.
#[test]
fn a_backup_being_placed_by_a_live_run_is_not_told_as_without_its_manifest() {
    use std::os::unix::fs::MetadataExt as _;
    let (sb, name) = sandbox_with_a_backup();
    let placed = "backup-local-20261206-1500-9.sql";
    let file = sb.backups().join(placed);
    std::fs::copy(sb.backups().join(&name), &file).unwrap();
    let meta = std::fs::metadata(&file).unwrap();
    let started = chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Secs, true);
    let record = serde_json::json!({
        "pid": std::process::id(),
        "started_at": started,
        "command": "backup local",
        "machine": machine_here(None),
        "placing": {"name": placed, "device": meta.dev(), "inode": meta.ino(), "size": meta.len()},
    });
    std::fs::write(sb.backups().join(".lock"), record.to_string()).unwrap();
    let lock = std::fs::File::open(sb.backups().join(".lock")).unwrap();
    lock.try_lock().unwrap();
    for command in ["list", "status"] {
        let run = sb.xtask(&[command]);
        assert!(
            !run.stderr.contains("has no manifest beside it"),
            "`{command}` told the backup being placed as without its manifest:\n{}",
            run.all()
        );
    }
    drop(lock);
    std::fs::remove_file(sb.backups().join(".lock")).unwrap();
    let run = sb.xtask(&["list"]);
    assert!(
        run.stderr.contains("has no manifest beside it"),
        "{}",
        run.all()
    );
    assert!(run.stderr.contains(placed), "{}", run.all());
}
