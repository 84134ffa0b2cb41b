//! Hostile backup directories: manifests and files written by someone else
//! (classes 2 and 5 of issue 11). Each case runs the real xtask, and checks
//! what a user would notice: the exit code, a message naming the problem,
//! the target database unchanged, and decoy files outside the backup
//! directory byte-identical afterwards.

use crate::common;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use common::decoys::Decoys;
use common::remote::*;
use common::*;
use serde_json::Value;

/// Every row of every table of the local D1, and its schema.
pub(crate) fn db_state(sb: &Sandbox) -> BTreeMap<String, Vec<String>> {
    let objects = sb.query(
        "SELECT type, name, sql FROM sqlite_master \
         WHERE name NOT LIKE '\\_cf\\_%' ESCAPE '\\' ORDER BY type, name",
    );
    let mut state = BTreeMap::new();
    state.insert(
        "sqlite_master".to_owned(),
        objects[0].iter().map(Value::to_string).collect(),
    );
    let tables: Vec<String> = objects[0]
        .iter()
        .filter(|o| o["type"] == "table" && !o["sql"].is_null())
        .map(|o| o["name"].as_str().unwrap().to_owned())
        .collect();
    let sql = tables
        .iter()
        .map(|t| format!("SELECT * FROM \"{t}\""))
        .collect::<Vec<_>>()
        .join("; ");
    for (table, rows) in tables.iter().zip(sb.query(&sql)) {
        let mut rows: Vec<String> = rows.iter().map(Value::to_string).collect();
        rows.sort();
        state.insert(table.clone(), rows);
    }
    state
}

fn manifest_file(sb: &Sandbox, stem: &str) -> PathBuf {
    sb.backups().join(format!("{stem}.manifest.json"))
}

fn stem(backup: &str) -> &str {
    backup.split(".sql").next().unwrap()
}

fn write_json(path: &Path, value: &Value) {
    std::fs::write(path, serde_json::to_string_pretty(value).unwrap()).unwrap();
}

/// Copies `backup` and its manifest to a backup of `days` ago, as prune
/// would see an old one, returning the copy's name and manifest path.
fn older_copy(sb: &Sandbox, backup: &str, days: i64) -> (String, PathBuf) {
    let created = chrono::Utc::now() - chrono::Duration::days(days);
    let name = copy_taken_at(sb, backup, "local", created, |_| {});
    let path = manifest_file(sb, stem(&name));
    (name, path)
}

/// What prune with rules that delete everything but the newest verified
/// backup prints and does.
fn prune_all_but_newest(sb: &Sandbox) -> Run {
    sb.xtask(&["prune", "--keep-within", "1h", "--keep-daily", "0", "--yes"])
}

#[track_caller]
fn assert_failed_with(run: &Run, code: i32, needles: &[&str]) {
    assert_eq!(run.code, Some(code), "exit code\n{}", run.all());
    for needle in needles {
        assert!(
            run.stderr.contains(needle),
            "expected {needle:?} in stderr:\n{}",
            run.all()
        );
    }
}

#[test]
fn a_file_name_outside_the_backup_directory_is_refused_by_prune_verify_and_restore() {
    let (sb, original) = sandbox_with_a_backup();
    let decoys = Decoys::plant(sb.path());
    let before = decoys.hashes();
    let state = db_state(&sb);
    let relative = "../decoys/victim.sql".to_owned();
    let absolute = decoys.path("victim").display().to_string();
    for hostile in [relative, absolute] {
        let (copy, manifest) = older_copy(&sb, &original, 40);
        let mut m: Value =
            serde_json::from_str(&std::fs::read_to_string(&manifest).unwrap()).unwrap();
        m["file"]["name"] = hostile.clone().into();
        write_json(&manifest, &m);

        // prune would have deleted the file it names, outside backups/.
        // A guard's refusal exits 3 (the README's exit-code table).
        let run = prune_all_but_newest(&sb);
        assert_failed_with(
            &run,
            3,
            &["cannot be trusted", "file.name", "Nothing was deleted"],
        );
        assert!(!run.stdout.contains("delete"), "{}", run.stdout);

        let copy_path = sb.backups().join(&copy);
        let copy_arg = copy_path.to_str().unwrap();
        let run = sb.xtask(&["verify", copy_arg]);
        assert_failed_with(&run, 2, &["cannot be trusted", "file.name"]);
        // The fetch it advises is one clap takes as printed (it was a bare
        // `cargo xtask offsite fetch`, refused for its missing arguments).
        let advised: Vec<&str> = { run.stderr.split('`').skip(1).step_by(2) }
            .filter_map(|c| c.strip_prefix("cargo xtask offsite "))
            .collect();
        assert!(
            advised.iter().any(|c| c.starts_with("fetch ")),
            "{}",
            run.all()
        );
        for command in advised {
            let mut words = vec!["offsite"];
            words.extend(command.split_whitespace());
            let advice = sb.xtask(&words);
            assert!(
                !advice.all().contains("Usage:"),
                "`{command}` as printed is a usage error:\n{}",
                advice.all()
            );
        }

        let run = sb.xtask(&["restore", copy_arg, "--to", "local", "--replace", "--yes"]);
        assert_failed_with(&run, 2, &["cannot be trusted", "file.name"]);

        // `latest` skips it, saying why, and still finds the real backup.
        let run = sb.xtask(&["list"]);
        run.assert_ok();
        assert!(run.stderr.contains("cannot be trusted"), "{}", run.all());
        assert!(!run.stdout.contains(&copy), "{}", run.stdout);

        assert_eq!(decoys.hashes(), before, "a decoy outside backups/ changed");
        assert!(sb.backups().join(&original).is_file());
        assert!(copy_path.is_file());
        assert_eq!(db_state(&sb), state, "the local D1 changed");
        std::fs::remove_file(&manifest).unwrap();
        std::fs::remove_file(&copy_path).unwrap();
    }
}

#[test]
fn a_migration_name_with_a_path_is_refused_and_never_opened() {
    let sb = Sandbox::new();
    sb.apply_migrations();
    sb.execute_sql(SEED_SQL);
    sb.xtask(&["backup", "local", "--data-only"]).assert_ok();
    let backup = only_backup(&sb);
    let decoys = Decoys::plant(sb.path());
    let before = decoys.hashes();
    let state = db_state(&sb);
    let path = sb.backups().join(&backup);
    let arg = path.to_str().unwrap();

    for hostile in ["../decoys/x.sql", "../../../../../../../tmp/x.sql"] {
        edit_manifest(&sb, &backup, |m| {
            m["migrations"].as_array_mut().unwrap().push(hostile.into());
        });
        let run = sb.xtask(&["verify", arg]);
        assert_failed_with(&run, 2, &["cannot be trusted", "migration name"]);
        let run = sb.xtask(&["restore", arg, "--to", "local", "--clean", "--yes"]);
        assert_failed_with(&run, 2, &["cannot be trusted", "migration name"]);
        edit_manifest(&sb, &backup, |m| {
            m["migrations"].as_array_mut().unwrap().pop();
        });
    }
    // A plain name the migrations directory does not have is not opened either.
    edit_manifest(&sb, &backup, |m| {
        m["migrations"]
            .as_array_mut()
            .unwrap()
            .push("0099_not_here.sql".into());
    });
    let run = sb.xtask(&["verify", arg]);
    assert_failed_with(&run, 2, &["0099_not_here.sql", "does not have"]);
    // Taken outside git: the way names no commit it does not have.
    assert_failed_with(&run, 2, &["its manifest names no commit"]);

    assert_eq!(decoys.hashes(), before);
    assert_eq!(db_state(&sb), state, "the local D1 changed");
}

#[test]
fn hostile_virtual_table_ddl_is_refused_before_anything_runs() {
    let (sb, backup) = sandbox_with_a_backup();
    let decoys = Decoys::plant(sb.path());
    let before = decoys.hashes();
    let state = db_state(&sb);
    let elsewhere = decoys.path("o.db").display().to_string();
    let cases = [
        (
            "notes_fts",
            format!("CREATE VIRTUAL TABLE notes_fts USING fts5(a); ATTACH '{elsewhere}' AS o"),
        ),
        (
            "notes_fts",
            "CREATE VIRTUAL TABLE notes_fts USING fts5(a); DROP TABLE accounts;".to_owned(),
        ),
        (
            "notes_fts",
            format!(
                "/* x */ CREATE VIRTUAL TABLE notes_fts USING fts5(a); VACUUM INTO '{elsewhere}'"
            ),
        ),
        (
            "notes_fts",
            "CREATE VIRTUAL TABLE notes_fts USING rtree(id, a, b)".to_owned(),
        ),
        (
            "notes_fts",
            "CREATE VIRTUAL TABLE accounts_fts USING fts5(email)".to_owned(),
        ),
        (
            "notes_fts",
            "CREATE VIRTUAL TABLE notes_fts USING fts5(a -- )\n); DELETE FROM accounts".to_owned(),
        ),
    ];
    let path = sb.backups().join(&backup);
    let arg = path.to_str().unwrap();
    for (name, sql) in &cases {
        edit_manifest(&sb, &backup, |m| {
            m["virtual_tables"] = serde_json::json!({
                "note": "",
                "export_tables": [],
                "tables": [{
                    "name": name,
                    "module": "fts5",
                    "sql": sql,
                    "content": {"kind": "contentless"},
                }],
            });
        });
        let run = sb.xtask(&["verify", arg]);
        assert_failed_with(&run, 2, &["cannot be trusted", "virtual table notes_fts"]);
        assert!(!run.stdout.contains("GOOD"), "{}", run.stdout);
        // No value of the manifest's SQL is quoted back.
        assert!(!run.all().contains("ATTACH"), "{}", run.all());
        let run = sb.xtask(&["restore", arg, "--to", "local", "--replace", "--yes"]);
        assert_failed_with(&run, 2, &["cannot be trusted", "virtual table notes_fts"]);
        assert_eq!(decoys.hashes(), before, "{sql}");
        assert_eq!(db_state(&sb), state, "the local D1 changed: {sql}");
    }
    // The verdict was not recorded over the manifest either.
    assert!(manifest_for(&sb, &backup)["verification"]["outcome"] == "good");
}

#[test]
fn two_manifests_naming_one_file_are_refused_and_the_file_kept() {
    let (sb, original) = sandbox_with_a_backup();
    // A second, older manifest that names the newest backup's file.
    let (copy, manifest) = older_copy(&sb, &original, 40);
    std::fs::remove_file(sb.backups().join(&copy)).unwrap();
    let mut m: Value = serde_json::from_str(&std::fs::read_to_string(&manifest).unwrap()).unwrap();
    m["file"]["name"] = original.clone().into();
    write_json(&manifest, &m);

    let run = prune_all_but_newest(&sb);
    assert_failed_with(&run, 3, &["cannot be trusted", "Nothing was deleted"]);
    assert!(
        !run.stdout.contains(&format!("delete  {original}")),
        "{}",
        run.stdout
    );
    assert!(sb.backups().join(&original).is_file());
    std::fs::remove_file(&manifest).unwrap();

    // Two names for one file (a hard link), each with its own manifest.
    let (linked, _) = older_copy(&sb, &original, 40);
    std::fs::remove_file(sb.backups().join(&linked)).unwrap();
    std::fs::hard_link(sb.backups().join(&original), sb.backups().join(&linked)).unwrap();
    let run = prune_all_but_newest(&sb);
    assert_failed_with(&run, 3, &["are one file", "Nothing was deleted"]);
    assert!(!run.stdout.contains("delete"), "{}", run.stdout);
    assert!(sb.backups().join(&original).is_file());
    assert!(sb.backups().join(&linked).is_file());
}

#[test]
fn prune_never_deletes_through_a_symbolic_link() {
    let (sb, original) = sandbox_with_a_backup();
    let decoys = Decoys::plant(sb.path());
    let before = decoys.hashes();
    // An old backup whose file is a link to a file outside backups/.
    let (copy, _) = older_copy(&sb, &original, 40);
    let copy_path = sb.backups().join(&copy);
    std::fs::remove_file(&copy_path).unwrap();
    std::os::unix::fs::symlink(decoys.path("victim.sql"), &copy_path).unwrap();
    let run = prune_all_but_newest(&sb);
    assert_failed_with(&run, 3, &["not a regular file", "Nothing was deleted"]);
    assert_eq!(decoys.hashes(), before);
    assert!(
        copy_path.symlink_metadata().is_ok(),
        "the link itself stays"
    );
}

#[test]
fn a_staging_backup_relabelled_prod_is_refused_for_prod() {
    let remote = Remote::new("");
    let sb = &remote.sb;
    let home = tempfile::tempdir().unwrap();
    sb.apply_migrations();
    sb.execute_sql(SEED_SQL);
    sb.xtask(&["backup", "local"]).assert_ok();
    let local = only_backup(sb);
    let prod_before = dump_of(&remote.db);
    let decoys = Decoys::plant(sb.path());
    let before = decoys.hashes();

    // A manifest that says prod beside a backup whose name says local is
    // refused as it is read, by every command.
    edit_manifest(sb, &local, |m| m["environment"] = "prod".into());
    let path = sb.backups().join(&local);
    let run = remote.xtask(
        home.path(),
        &[
            "restore",
            path.to_str().unwrap(),
            "--to",
            "prod",
            "--replace",
            "--confirm",
            "qbtime_db_prod",
        ],
    );
    assert_failed_with(&run, 2, &["cannot be trusted", "backup-prod-YYYYMMDD-HHMM"]);
    let listed = sb.xtask(&["list"]);
    assert!(
        listed.stderr.contains("cannot be trusted"),
        "{}",
        listed.all()
    );
    assert!(!listed.stdout.contains(&local), "{}", listed.all());

    // A staging backup renamed as prod's, whose manifest was then edited
    // to say prod: the database it records is not prod's.
    let backup = local.replacen("backup-local-", "backup-prod-", 1);
    let mut m = manifest_for(sb, &local);
    m["file"]["name"] = backup.clone().into();
    std::fs::remove_file(manifest_file(sb, stem(&local))).unwrap();
    write_json(&manifest_file(sb, stem(&backup)), &m);
    std::fs::rename(path, sb.backups().join(&backup)).unwrap();
    let path = sb.backups().join(&backup);
    let arg = path.to_str().unwrap();
    edit_manifest(sb, &backup, |m| {
        m["environment"] = "prod".into();
        m["database"] = serde_json::json!({
            "name": "qbtime_db_staging",
            "uuid": STAGING_UUID,
            "wrangler_env": "preview",
            "location": "remote",
        });
    });
    let restore = || {
        remote.xtask(
            home.path(),
            &[
                "restore",
                arg,
                "--to",
                "prod",
                "--replace",
                "--confirm",
                "qbtime_db_prod",
            ],
        )
    };
    let run = restore();
    assert_failed_with(
        &run,
        3,
        &["qbtime_db_staging", "qbtime_db_prod", "Nothing was done"],
    );
    // Prod's name, but another database's id.
    edit_manifest(sb, &backup, |m| {
        m["database"]["name"] = "qbtime_db_prod".into();
    });
    let run = restore();
    assert_failed_with(&run, 3, &[STAGING_UUID, PROD_UUID, "Nothing was done"]);

    assert_eq!(dump_of(&remote.db), prod_before, "prod changed");
    assert!(
        !remote
            .server
            .requests()
            .iter()
            .any(|r| r.contains("/import") || r.contains("/query")),
        "a request reached the API: {:?}",
        remote.server.requests()
    );
    assert_eq!(decoys.hashes(), before);
}

/// fxDY: a manifest's `created_at` is what orders backups (`latest`,
/// prune, status), and its backup's name, made from the same instant
/// (UTC, to the minute), is what `list` and prune's plan show. A copy of
/// yesterday's backup whose manifest was edited to say it was taken a
/// moment ago is `latest` today while its name says yesterday: it must be
/// refused as it is read, like a manifest whose environment is not its
/// name's.
#[test]
fn a_manifest_dated_otherwise_than_its_backups_name_is_refused() {
    let (sb, name) = sandbox_with_a_backup();
    let (yesterday, _) = older_copy(&sb, &name, 1);
    edit_manifest(&sb, &yesterday, |m| {
        m["created_at"] = chrono::Utc::now().to_rfc3339().into();
    });
    let listed = sb.xtask(&["list"]);
    assert!(
        listed.stderr.contains("cannot be trusted") && !listed.stdout.contains(&yesterday),
        "{}",
        listed.all()
    );
    let plan = plan_of_latest(&sb);
    assert!(
        plan.stdout.contains(&name) && !plan.stdout.contains(&yesterday),
        "`latest` is {name}, not {yesterday}, whose manifest says it was taken after it:\n{}",
        plan.all()
    );
    let path = sb.backups().join(&yesterday);
    let verify = sb.xtask(&["verify", path.to_str().unwrap()]);
    assert_failed_with(&verify, 2, &["cannot be trusted", "YYYYMMDD-HHMM"]);
}

#[test]
fn a_lock_file_planted_as_a_symbolic_link_is_refused_and_its_target_untouched() {
    let sb = Sandbox::new();
    sb.apply_migrations();
    sb.execute_sql(SEED_SQL);
    let decoys = Decoys::plant(sb.path());
    let before = decoys.hashes();
    std::fs::create_dir(sb.backups()).unwrap();
    std::os::unix::fs::symlink(decoys.path("victim"), sb.backups().join(".lock")).unwrap();

    let run = sb.xtask(&["backup", "local"]);
    assert_failed_with(&run, 1, &[".lock", "symbolic link", "rm "]);
    assert_eq!(decoys.hashes(), before, "the lock's target was written");
    assert!(
        !sb.backup_files()
            .iter()
            .any(|f| f.ends_with(".sql") || f.ends_with(".json")),
        "{:?}",
        sb.backup_files()
    );
}

#[test]
fn a_time_travel_journal_planted_as_a_symbolic_link_stops_the_restore_before_it_runs() {
    let remote = Remote::new("");
    let home = tempfile::tempdir().unwrap();
    let decoys = Decoys::plant(remote.sb.path());
    let before = decoys.hashes();
    let run = remote.xtask(home.path(), &["time-travel", "info", "prod", "--json"]);
    run.assert_ok();
    let json: Value = serde_json::from_str(run.stdout.trim()).unwrap();
    let bookmark = json["bookmark"].as_str().unwrap().to_owned();
    let prod_before = dump_of(&remote.db);

    std::fs::create_dir_all(remote.sb.backups()).unwrap();
    let journal = remote.sb.backups().join("time-travel.jsonl");
    std::os::unix::fs::symlink(decoys.path("victim"), &journal).unwrap();
    let run = remote.xtask(
        home.path(),
        &[
            "time-travel",
            "restore",
            "prod",
            "--bookmark",
            &bookmark,
            "--confirm",
            "qbtime_db_prod",
        ],
    );
    assert_failed_with(&run, 1, &["time-travel.jsonl", "symbolic link"]);
    assert_eq!(decoys.hashes(), before, "the journal's target was written");
    assert_eq!(dump_of(&remote.db), prod_before);
    assert!(
        !remote
            .server
            .requests()
            .iter()
            .any(|r| r.contains("/time_travel/restore")),
        "{:?}",
        remote.server.requests()
    );
}

/// The decoy's bytes and mode, for a check that nothing reached it.
fn bytes_and_mode(path: &Path) -> (Vec<u8>, u32) {
    use std::os::unix::fs::PermissionsExt;
    (
        std::fs::read(path).unwrap(),
        std::fs::metadata(path).unwrap().permissions().mode() & 0o777,
    )
}

/// `O_NOFOLLOW` stops a symbolic link, not a hard link: a lock file that
/// is a second name of a file outside backups/ is truncated and written
/// through by every command that takes the lock (atkU).
#[test]
fn a_lock_file_planted_as_a_hard_link_never_empties_the_file_it_names() {
    let sb = Sandbox::new();
    sb.apply_migrations();
    sb.execute_sql(SEED_SQL);
    let decoys = Decoys::plant(sb.path());
    let before = decoys.hashes();
    let victim = decoys.path("victim");
    let victim_before = bytes_and_mode(&victim);
    std::fs::create_dir(sb.backups()).unwrap();
    std::fs::hard_link(&victim, sb.backups().join(".lock")).unwrap();

    let run = sb.xtask(&["backup", "local"]);
    assert_eq!(
        bytes_and_mode(&victim),
        victim_before,
        "the file outside backups/ that .lock also names was written\n{}",
        run.all()
    );
    assert_eq!(decoys.hashes(), before, "{}", run.all());
}

/// The Time Travel journal is appended to through a hard link planted in
/// its place, as the lock is written through one (atkU).
#[test]
fn a_time_travel_journal_planted_as_a_hard_link_is_never_appended_to() {
    let remote = Remote::new("");
    let home = tempfile::tempdir().unwrap();
    let decoys = Decoys::plant(remote.sb.path());
    let before = decoys.hashes();
    let run = remote.xtask(home.path(), &["time-travel", "info", "prod", "--json"]);
    run.assert_ok();
    let json: Value = serde_json::from_str(run.stdout.trim()).unwrap();
    let bookmark = json["bookmark"].as_str().unwrap().to_owned();

    std::fs::create_dir_all(remote.sb.backups()).unwrap();
    std::fs::hard_link(
        decoys.path("victim.txt"),
        remote.sb.backups().join("time-travel.jsonl"),
    )
    .unwrap();
    let run = remote.xtask(
        home.path(),
        &[
            "time-travel",
            "restore",
            "prod",
            "--bookmark",
            &bookmark,
            "--confirm",
            "qbtime_db_prod",
        ],
    );
    assert_eq!(
        decoys.hashes(),
        before,
        "a file outside backups/ was appended to through the journal's name\n{}",
        run.all()
    );
}

#[test]
fn a_world_writable_backup_directory_is_refused_and_left_as_it_was() {
    use std::os::unix::fs::PermissionsExt;
    let sb = Sandbox::new();
    sb.apply_migrations();
    sb.execute_sql(SEED_SQL);
    // A shared directory outside the repository, as `--backup-dir /tmp/x` gives.
    let outside = tempfile::tempdir().unwrap();
    let shared = outside.path().join("shared");
    std::fs::create_dir(&shared).unwrap();
    std::fs::set_permissions(&shared, std::fs::Permissions::from_mode(0o1777)).unwrap();
    let arg = shared.to_str().unwrap();
    let mode = || std::fs::metadata(&shared).unwrap().permissions().mode() & 0o7777;

    let run = sb.xtask(&["--backup-dir", arg, "backup", "local"]);
    // A guard's refusal: exit 3.
    assert_failed_with(&run, 3, &[arg, "mode 1777", "--backup-dir", "chmod go-w"]);
    assert_eq!(mode(), 0o1777, "the directory's mode was changed");
    assert_eq!(
        std::fs::read_dir(&shared).unwrap().count(),
        0,
        "something was written"
    );

    // A group-writable one too; a directory the tool creates is 0700.
    std::fs::set_permissions(&shared, std::fs::Permissions::from_mode(0o770)).unwrap();
    let run = sb.xtask(&["--backup-dir", arg, "backup", "local"]);
    assert_failed_with(&run, 3, &[arg, "mode 770"]);
    assert_eq!(mode(), 0o770);
    let fresh = outside.path().join("fresh/backups");
    sb.xtask(&["--backup-dir", fresh.to_str().unwrap(), "backup", "local"])
        .assert_ok();
    assert_eq!(
        std::fs::metadata(&fresh).unwrap().permissions().mode() & 0o7777,
        0o700
    );
}

#[test]
fn a_manifest_from_the_future_is_never_latest() {
    // A manifest dated 2099 (a machine with a wrong clock, a hostile R2
    // object fetched) would be `latest` for ever and keep `status` fresh
    // while the backup job had stopped: it is passed over, saying so.
    let (sb, name) = sandbox_with_a_backup();
    let future = copy_taken_at(
        &sb,
        &name,
        "local",
        "2099-01-01T00:00:00Z".parse().unwrap(),
        |_| {},
    );
    let run = sb.xtask(&["list"]);
    run.assert_ok();
    let line = run.stdout.lines().find(|l| l.contains(&future));
    assert!(
        line.is_some_and(|l| l.contains("ahead")),
        "list shows it as dated ahead:\n{}",
        run.all()
    );
    // Its age is unknown, not zero: a monitor reading `age_seconds` must
    // not take it for a backup just taken.
    let json: Value = serde_json::from_str(&sb.xtask(&["list", "--json"]).stdout).unwrap();
    let rows = json.as_array().unwrap();
    let age = |file: &str| rows.iter().find(|r| r["file"] == file).unwrap()["age_seconds"].clone();
    assert_eq!(age(&future), Value::Null, "{json}");
    assert!(age(&name).as_i64().is_some_and(|s| s >= 0), "{json}");
    let plan = plan_of_latest(&sb);
    plan.assert_ok();
    assert!(
        plan.stdout.contains(&name) && !plan.stdout.contains(&future),
        "{}",
        plan.all()
    );
    assert!(
        plan.stderr.contains(&future) && plan.stderr.contains("after this machine's clock"),
        "{}",
        plan.all()
    );
    let status = sb.xtask(&["status", "--env", "local"]);
    assert!(
        status.stderr.contains("dated after this machine's clock"),
        "{}",
        status.all()
    );
}

#[test]
fn prune_never_leaves_only_a_damaged_backup_as_the_newest_verified() {
    // The newest backup's manifest says "good", but its file was damaged
    // afterwards (a partial copy, a disk error). The only intact backup is
    // an older one; prune must not delete it on the damaged one's word.
    let (sb, newest) = sandbox_with_a_backup();
    let (older, _) = older_copy(&sb, &newest, 40);
    let path = sb.backups().join(&newest);
    let bytes = std::fs::read(&path).unwrap();
    std::fs::write(&path, &bytes[..bytes.len() / 2]).unwrap();
    let run = sb.xtask(&["prune", "--keep-within", "1d", "--keep-daily", "1", "--yes"]);
    assert!(
        sb.backups().join(&older).exists(),
        "prune deleted the only intact backup and kept a damaged one:\n{}",
        run.all()
    );
    assert!(
        run.stderr.contains(&format!(
            "{newest} is recorded as verified, but its file is"
        )),
        "{}",
        run.all()
    );
    assert!(
        run.stdout.contains("the newest verified backup"),
        "{}",
        run.all()
    );
}

#[test]
fn a_restore_never_installs_a_trigger_that_no_migration_makes() {
    // A backup in backups/ whose dump ends with a trigger of its own, and
    // whose manifest matches it: every new account would become an admin.
    let (sb, name) = sandbox_with_a_backup();
    let path = sb.backups().join(&name);
    let mut dump = std::fs::read_to_string(&path).unwrap();
    dump.push_str(
        "CREATE TRIGGER accounts_audit AFTER INSERT ON accounts BEGIN \
         UPDATE accounts SET role='admin' WHERE id=NEW.id; END;\n",
    );
    std::fs::write(&path, &dump).unwrap();
    edit_manifest(&sb, &name, |m| {
        m["file"]["bytes"] = dump.len().into();
        m["file"]["sha256"] = sha256_hex(dump.as_bytes()).into();
    });
    let run = sb.xtask(&[
        "restore",
        "latest:local",
        "--to",
        "local",
        "--replace",
        "--confirm",
        "qbtime_db_local",
    ]);
    let triggers = sb.query("SELECT name FROM sqlite_master WHERE name = 'accounts_audit'");
    assert!(
        triggers[0].is_empty(),
        "the restore installed a trigger no migration makes (exit {:?}):\n{}",
        run.code,
        run.all()
    );
    run.assert_refused("creates triggers that the migrations it records as applied do not create");
    assert_eq!(run.code, Some(3), "{}", run.all());
    assert!(run.stderr.contains("accounts_audit"), "{}", run.all());

    // verify names the trigger in a warning, even with -q; the backup
    // stays good (the database it came from would have it too), and
    // restore is what refuses it.
    let verify = sb.xtask(&["-q", "verify", &name]);
    assert_eq!(verify.code, Some(0), "{}", verify.all());
    assert!(
        verify.stderr.contains("triggers: it creates triggers")
            && verify.stderr.contains("do not create")
            && verify.stderr.contains("accounts_audit"),
        "{}",
        verify.all()
    );
}

/// A trigger of the app's accounts that makes every new account an admin,
/// which no migration creates.
/// `dump` written outside the sandbox, as a backup copied from elsewhere
/// (no manifest beside it), in a directory kept while the test runs.
fn planted_dump(dump: &str) -> (tempfile::TempDir, String) {
    let outer = tempfile::tempdir().unwrap();
    let planted = outer.path().join("PLANTED.sql");
    std::fs::write(&planted, dump).unwrap();
    (outer, planted.to_str().unwrap().to_owned())
}

/// `restore FILE --to local --replace --yes --no-manifest` and `extra`.
fn restore_planted(sb: &Sandbox, planted: &str, extra: &[&str]) -> Run {
    let mut args = vec!["restore", planted, "--to", "local", "--replace", "--yes"];
    args.push("--no-manifest");
    args.extend_from_slice(extra);
    sb.xtask(&args)
}

/// The dump of `backup` without the statement that creates `trigger`
/// (its `CREATE TRIGGER`, through its `END;`), and with `instead` there.
fn dump_with_trigger_replaced(sb: &Sandbox, backup: &str, trigger: &str, instead: &str) -> String {
    let dump = std::fs::read_to_string(sb.backups().join(backup)).unwrap();
    let start = dump
        .find(&format!("CREATE TRIGGER {trigger} "))
        .unwrap_or_else(|| panic!("the backup has no trigger {trigger}"));
    let end = start + dump[start..].find("END;").unwrap() + "END;".len();
    format!("{}{instead}{}", &dump[..start], &dump[end..])
}

/// Restores `planted` without and with `--allow-trigger allowed`: each
/// is refused (exit 3, nothing changed) as another body under the name of
/// the migration's trigger `trigger`, never as one no migration creates.
fn assert_refused_as_another_body(sb: &Sandbox, planted: &str, trigger: &str, allowed: &str) {
    let before = db_state(sb);
    for extra in [&[][..], &["--allow-trigger", allowed][..]] {
        let run = restore_planted(sb, planted, extra);
        assert_eq!(run.code, Some(3), "{extra:?}:\n{}", run.all());
        assert!(
            run.stderr.contains(trigger)
                && run.stderr.contains("a migration gives another trigger"),
            "{extra:?}: the refusal does not name the migration's trigger {trigger}:\n{}",
            run.all()
        );
        assert!(!run.stderr.contains("no migration in"), "{}", run.all());
        assert_eq!(db_state(sb), before, "{extra:?}: {}", run.all());
    }
}

const PLANTED_TRIGGER: &str = "CREATE TRIGGER accounts_audit AFTER INSERT ON accounts BEGIN \
                               UPDATE accounts SET role='admin' WHERE id=NEW.id; END;\n";

/// The manifest can only vouch for more, never less: a backup planted
/// with a trigger of its own, copied without its manifest (or with the
/// manifest deleted), used to be told to pass `--no-manifest`, which
/// turned the trigger refusal into a warning and installed the trigger.
/// It is refused without a manifest as with one (exit 3), naming the
/// trigger and the opt-in that installs it on purpose, `--allow-trigger`.
#[test]
fn a_restore_without_a_manifest_refuses_a_trigger_no_migration_makes_too() {
    let (sb, name) = sandbox_with_a_backup();
    let mut dump = std::fs::read_to_string(sb.backups().join(&name)).unwrap();
    dump.push_str(PLANTED_TRIGGER);
    let outer = tempfile::tempdir().unwrap();
    let planted = outer.path().join("PLANTED.sql");
    std::fs::write(&planted, &dump).unwrap();
    let planted = planted.to_str().unwrap();
    let before = db_state(&sb);
    let restore = |extra: &[&str]| {
        let mut args = vec!["restore", planted, "--to", "local", "--replace", "--yes"];
        args.extend_from_slice(extra);
        sb.xtask(&args)
    };
    let run = restore(&[]);
    assert_eq!(run.code, Some(2), "{}", run.all());
    assert!(run.stderr.contains("--no-manifest"), "{}", run.all());

    let run = restore(&["--no-manifest"]);
    assert_eq!(
        run.code,
        Some(3),
        "a dump without a manifest installed a trigger no migration makes:\n{}",
        run.all()
    );
    assert!(
        run.stderr.contains("accounts_audit")
            && run.stderr.contains("--allow-trigger accounts_audit"),
        "the refusal does not name the trigger and the opt-in:\n{}",
        run.all()
    );
    // It is held to the migrations its own d1_migrations rows record,
    // and says so, not "no migration in migrations/ creates" (MP).
    assert!(
        run.stderr
            .contains("that its own d1_migrations rows record as applied"),
        "the refusal does not say what the dump is held to:\n{}",
        run.all()
    );
    assert_eq!(db_state(&sb), before, "{}", run.all());

    // Named on purpose, it is installed, and said so.
    let run = restore(&["--no-manifest", "--allow-trigger", "accounts_audit"]);
    run.assert_ok();
    assert!(run.stderr.contains("accounts_audit"), "{}", run.all());
    let triggers = sb.query("SELECT name FROM sqlite_master WHERE name = 'accounts_audit'");
    assert_eq!(triggers[0].len(), 1, "{}", run.all());
}

/// `--allow-trigger NAME` installs a trigger no migration creates; a
/// backup's trigger under a name a migration gives another trigger (its
/// body changed) is not that: the name would vouch for what it is not. It
/// is refused, flag or not, and said to be another body under a
/// migration's name, not that "no migration creates" it.
#[test]
fn allow_trigger_never_installs_another_body_under_a_migrations_trigger_name() {
    let (sb, name) = sandbox_with_a_backup();
    std::fs::write(
        sb.path().join("migrations/0009_touch.sql"),
        "CREATE TRIGGER accounts_touch AFTER INSERT ON accounts BEGIN SELECT 1; END;\n",
    )
    .unwrap();
    let mut dump = std::fs::read_to_string(sb.backups().join(&name)).unwrap();
    dump.push_str(
        "CREATE TRIGGER accounts_touch AFTER INSERT ON accounts BEGIN \
         UPDATE accounts SET role='admin' WHERE id=NEW.id; END;\n",
    );
    let (_outer, planted) = planted_dump(&dump);
    assert_refused_as_another_body(&sb, &planted, "accounts_touch", "accounts_touch");
}

/// A migration that does not run here (a typo in a column's name), or
/// that cannot be read (a FIFO), leaves which triggers the migrations make
/// unknown. The guard used to warn and go on, installing the backup's
/// planted trigger (exit 0): it now fails closed, refusing a dump that
/// holds a trigger (exit 3, nothing run), naming the migration and the
/// fix, with `--allow-trigger NAME` the explicit way past. A dump with no
/// trigger of its own beyond the migrations' is judged as before. The
/// broken migration is one the dump records as applied (its
/// `d1_migrations` row): one it does not, pending, is not run at all
/// (`a_migration_that_does_not_run_switches_no_schema_guard_off`).
#[test]
fn a_trigger_is_refused_when_a_migration_cannot_be_run_to_check_it() {
    let (sb, name) = sandbox_with_a_backup();
    let decoys = Decoys::plant(sb.path());
    let hashes = decoys.hashes();
    let mut dump = std::fs::read_to_string(sb.backups().join(&name)).unwrap();
    dump.push_str(PLANTED_TRIGGER);
    let recorded = |migration: &str| {
        let row = "INSERT INTO \"d1_migrations\" (\"id\",\"name\",\"applied_at\") VALUES(4,";
        let at = dump.find(row).expect("no 4th d1_migrations row");
        let end = at + dump[at..].find('\n').unwrap() + 1;
        format!(
            "{}INSERT INTO \"d1_migrations\" (\"id\",\"name\",\"applied_at\") \
             VALUES(5,'{migration}','2026-11-30 00:00:00');\n{}",
            &dump[..end],
            &dump[end..]
        )
    };
    let mut planted_files = Vec::new();
    let mut planted = String::new();
    let before = db_state(&sb);
    let typo = sb.path().join("migrations/0005_free_plan.sql");
    std::fs::write(
        &typo,
        "UPDATE accounts SET plan='free' WHERE plan_typo IS NULL;\n",
    )
    .unwrap();
    let fifo = sb.path().join("migrations/0005_x.sql");
    for broken in ["0005_free_plan.sql", "0005_x.sql"] {
        if broken == "0005_x.sql" {
            std::fs::remove_file(&typo).unwrap();
            let made = std::process::Command::new("mkfifo").arg(&fifo).status();
            assert!(made.is_ok_and(|s| s.success()), "mkfifo");
        }
        let (outer, file) = planted_dump(&recorded(broken));
        planted_files.push(outer);
        planted = file;
        let run = restore_planted(&sb, &planted, &[]);
        assert_eq!(
            run.code,
            Some(3),
            "{broken}: a trigger was not refused though the migrations are unknown:\n{}",
            run.all()
        );
        assert!(
            run.stderr.contains(broken)
                && run.stderr.contains("accounts_audit")
                && run.stderr.contains("--allow-trigger accounts_audit"),
            "{broken}: the refusal does not name the migration, the trigger and the way past:\n{}",
            run.all()
        );
        assert_eq!(db_state(&sb), before, "{broken}: {}", run.all());
        assert_eq!(decoys.hashes(), hashes);
    }
    // Named on purpose, each trigger is installed: the migrations' own too,
    // since nothing could check them.
    let mut named = Vec::new();
    for trigger in [
        "accounts_audit",
        "audit_log_no_delete",
        "audit_log_no_update",
    ] {
        named.extend(["--allow-trigger", trigger]);
    }
    named.extend(["--allow-trigger", "report_configs_touch"]);
    // The tables cannot be compared either (the directory cannot be read):
    // refused too, each named with its flag in the one command to run.
    let run = restore_planted(&sb, &planted, &named);
    assert_eq!(run.code, Some(3), "{}", run.all());
    assert!(run.stderr.contains("cannot be compared"), "{}", run.all());
    let words = printed_command_with(&run, "--allow-schema-change accounts");
    let words: Vec<&str> = words.iter().map(String::as_str).collect();
    let run = sb.xtask(&words);
    run.assert_ok();
    let installed = sb.query("SELECT name FROM sqlite_master WHERE name = 'accounts_audit'");
    assert_eq!(installed[0].len(), 1, "{}", run.all());
}

/// SQLite's names ignore ASCII case: `AUDIT_LOG_NO_DELETE` is the
/// migration's `audit_log_no_delete`. A backup that holds it with another
/// body (one that lets rows be deleted) in place of the migration's, with
/// `--allow-trigger AUDIT_LOG_NO_DELETE`, used to replace the append-only
/// guard (exit 0). It is refused as another body under a migration's
/// trigger name, flag or not, naming the migration's trigger it shadows.
#[test]
fn a_case_variant_of_a_migrations_trigger_is_refused_as_that_trigger_changed() {
    let (sb, name) = sandbox_with_a_backup();
    let dump = dump_with_trigger_replaced(
        &sb,
        &name,
        "audit_log_no_delete",
        "CREATE TRIGGER AUDIT_LOG_NO_DELETE BEFORE DELETE ON audit_log BEGIN SELECT 1; END;",
    );
    let (_outer, planted) = planted_dump(&dump);
    assert_refused_as_another_body(&sb, &planted, "audit_log_no_delete", "AUDIT_LOG_NO_DELETE");
}

/// A backup without a trigger its migrations create (the audit log's
/// append-only guard cut out of the dump) used to restore silently (exit
/// 0, its rows deletable after), and verify called it GOOD. verify now
/// warns, naming the trigger and the migration that creates it; restore
/// refuses it (exit 3, nothing run) unless `--allow-missing-trigger NAME`
/// says it is meant.
#[test]
fn a_backup_without_a_migrations_trigger_is_named_by_verify_and_refused_by_restore() {
    let (sb, name) = sandbox_with_a_backup();
    let dump = dump_with_trigger_replaced(&sb, &name, "audit_log_no_delete", "");
    let (_outer, planted) = planted_dump(&dump);
    let before = db_state(&sb);

    let verify = sb.xtask(&["verify", &planted, "--no-manifest"]);
    assert!(
        verify.stderr.contains("audit_log_no_delete")
            && verify.stderr.contains("0004_audit_log.sql"),
        "verify does not name the missing trigger and its migration:\n{}",
        verify.all()
    );
    assert!(
        !verify.all().contains("each as its migrations create it"),
        "{}",
        verify.all()
    );

    let run = restore_planted(&sb, &planted, &[]);
    assert_eq!(
        run.code,
        Some(3),
        "a backup without the migrations' trigger was restored:\n{}",
        run.all()
    );
    assert!(
        run.stderr.contains("audit_log_no_delete")
            && run.stderr.contains("0004_audit_log.sql")
            && run
                .stderr
                .contains("--allow-missing-trigger audit_log_no_delete"),
        "the refusal does not name the trigger, its migration and the way past:\n{}",
        run.all()
    );
    assert_eq!(db_state(&sb), before, "{}", run.all());

    let run = restore_planted(
        &sb,
        &planted,
        &["--allow-missing-trigger", "audit_log_no_delete"],
    );
    run.assert_ok();
    let gone = sb.query("SELECT name FROM sqlite_master WHERE name = 'audit_log_no_delete'");
    assert!(gone[0].is_empty(), "{}", run.all());
}

/// A migration written after the backups below were taken: it drops the
/// audit log's append-only guard, which 0004 made. A dump taken before
/// it applied records 0001 to 0004 in its `d1_migrations` rows.
const DROPPING_THE_GUARD: (&str, &str) = (
    "migrations/0005_audit_log_deletable.sql",
    "DROP TRIGGER audit_log_no_delete;\n",
);

/// MP: restore holds a dump without a manifest to the migrations its own
/// `d1_migrations` rows record (MJ); verify held it to every migration in
/// the directory. A dump of the schema before a later migration dropped
/// a trigger (0005), holding that trigger as 0004 made it, was warned of
/// by verify as creating a trigger no migration creates, while restore
/// accepts it: verify warns of nothing, and restore restores it.
#[test]
fn verify_does_not_warn_of_an_older_schema_restore_accepts_without_a_manifest() {
    let (sb, name) = sandbox_with_a_backup();
    std::fs::write(sb.path().join(DROPPING_THE_GUARD.0), DROPPING_THE_GUARD.1).unwrap();
    let dump = std::fs::read_to_string(sb.backups().join(&name)).unwrap();
    let (_outer, planted) = planted_dump(&dump);

    let verify = sb.xtask(&["verify", &planted, "--no-manifest"]);
    assert_eq!(verify.code, Some(0), "{}", verify.all());
    assert!(
        !verify.stderr.contains("audit_log_no_delete") && !verify.all().contains("restore refuses"),
        "verify warns of a dump restore accepts:\n{}",
        verify.all()
    );

    let run = restore_planted(&sb, &planted, &[]);
    run.assert_ok();
    let guard = sb.query("SELECT name FROM sqlite_master WHERE name = 'audit_log_no_delete'");
    assert_eq!(guard[0].len(), 1, "{}", run.all());
}

/// MP: the other way: the same older dump without the trigger its
/// migrations (0001 to 0004, by its own rows) make is refused by
/// restore, naming it, and verify called it good, holding it to every
/// migration, the last of which drops that trigger. verify warns, naming
/// the trigger and its migration.
#[test]
fn verify_warns_of_an_older_schema_restore_refuses_without_a_manifest() {
    let (sb, name) = sandbox_with_a_backup();
    std::fs::write(sb.path().join(DROPPING_THE_GUARD.0), DROPPING_THE_GUARD.1).unwrap();
    let dump = dump_with_trigger_replaced(&sb, &name, "audit_log_no_delete", "");
    let (_outer, planted) = planted_dump(&dump);
    let before = db_state(&sb);

    let run = restore_planted(&sb, &planted, &[]);
    assert_eq!(run.code, Some(3), "{}", run.all());
    assert!(
        run.stderr
            .contains("--allow-missing-trigger audit_log_no_delete"),
        "{}",
        run.all()
    );
    assert_eq!(db_state(&sb), before, "{}", run.all());

    let verify = sb.xtask(&["verify", &planted, "--no-manifest"]);
    assert!(
        verify.stderr.contains("audit_log_no_delete")
            && verify.stderr.contains("0004_audit_log.sql")
            && verify.stderr.contains("restore refuses"),
        "verify does not warn of a dump restore refuses:\n{}",
        verify.all()
    );
}

/// A safety backup holds what the target held, a trigger no migration
/// makes too (one made by hand, or by an older version of this tool): the
/// way back the restore prints must restore it when run as printed, not
/// be refused for that trigger (it used to be, exit 3: its undo advice led
/// nowhere).
#[test]
fn a_safety_backups_printed_way_back_restores_a_trigger_the_target_held() {
    let (sb, name) = sandbox_with_a_backup();
    sb.execute_sql(PLANTED_TRIGGER);
    let run = sb.xtask(&["restore", &name, "--to", "local", "--replace", "--yes"]);
    run.assert_ok();
    let gone = sb.query("SELECT name FROM sqlite_master WHERE name = 'accounts_audit'");
    assert!(gone[0].is_empty(), "{}", run.all());
    let command = run
        .stdout
        .lines()
        .find_map(|l| l.split_once("  cargo xtask ").filter(|(a, _)| a.is_empty()))
        .unwrap_or_else(|| panic!("no way back printed:\n{}", run.all()))
        .1
        .to_owned();
    let words: Vec<&str> = command.split_whitespace().collect();
    let back = sb.xtask(&words);
    assert_eq!(
        back.code,
        Some(0),
        "the printed way back `{command}` did not restore the safety backup:\n{}",
        back.all()
    );
    let back_again = sb.query("SELECT name FROM sqlite_master WHERE name = 'accounts_audit'");
    assert_eq!(back_again[0].len(), 1, "{}", back.all());
}

/// prune judges the backups, prints its plan and asks; a backup taken (or
/// changed) while it waits for the answer changes what the policy deletes,
/// so prune judges again under its lock and deletes nothing when the plan
/// it was told "yes" to is not the plan any more. The question needs a
/// terminal: `script` gives it one.
#[test]
fn prune_deletes_nothing_when_the_backups_changed_while_it_asked() {
    let (sb, newest) = sandbox_with_a_backup();
    let (old, _) = older_copy(&sb, &newest, 40);
    let mut prune = InATerminal::start(&sb, &["prune", "--keep-within", "1h", "--keep-daily", "0"]);
    assert!(
        prune.prints("Type yes"),
        "prune did not ask:\n{}",
        prune.seen()
    );
    assert!(prune.seen().contains(&format!("delete  {old}")));
    // Another old backup arrives while the operator reads the plan.
    let (another, _) = older_copy(&sb, &newest, 30);
    prune.answer("yes");
    let (code, out) = prune.end();
    assert_eq!(code, Some(3), "{out}");
    assert!(out.contains("changed while prune waited"), "{out}");
    for name in [&newest, &old, &another] {
        assert!(
            sb.backups().join(name).is_file(),
            "{name} was deleted:\n{out}"
        );
    }
}

/// A stale lock removes the one file its dead run was giving a backup's
/// name, and nothing else: not a hand dump named exactly like a backup of
/// that hour, nor a file the lock (which anyone may write) names outside
/// backups/, nor a file named as the dead run's but not the very file it
/// recorded (its inode and size).
#[test]
fn a_stale_lock_removes_only_the_file_its_dead_run_was_placing() {
    use std::os::unix::fs::MetadataExt as _;
    let (sb, name) = sandbox_with_a_backup();
    let stamp = chrono::Utc::now().format("%Y%m%d-%H%M");
    let started = (chrono::Utc::now() - chrono::Duration::hours(1))
        .to_rfc3339_opts(chrono::SecondsFormat::Secs, true);
    let stale_lock = |placing: serde_json::Value| {
        let holder = serde_json::json!({
            "pid": 999_999,
            "started_at": started,
            "command": "backup local",
            "placing": placing,
        });
        std::fs::write(sb.backups().join(".lock"), holder.to_string()).unwrap();
    };
    let placing = |name: &str, file: &std::path::Path| {
        let meta = std::fs::metadata(file).unwrap();
        serde_json::json!({
            "name": name, "device": meta.dev(), "inode": meta.ino(), "size": meta.len(),
        })
    };
    // The operator's copy, named as a backup of this minute would be.
    let hand = sb.backups().join(format!("backup-local-{stamp}-7.sql"));
    std::fs::copy(sb.backups().join(&name), &hand).unwrap();
    // A decoy outside backups/, named by a planted lock.
    let decoy = sb.path().join(format!("backup-local-{stamp}-8.sql"));
    std::fs::write(&decoy, "keep me").unwrap();
    stale_lock(placing(&format!("../backup-local-{stamp}-8.sql"), &decoy));
    let run = sb.xtask(&["backup", "local"]);
    run.assert_ok();
    assert!(
        run.stderr.contains("gone without releasing it"),
        "{}",
        run.all()
    );
    assert!(hand.exists(), "the hand dump was removed:\n{}", run.all());
    assert_eq!(std::fs::read_to_string(&decoy).unwrap(), "keep me");

    // The dead run's file, copied by the operator and the copy given its
    // name (another inode): the copy stays.
    let killed = format!("backup-local-{stamp}-9.sql");
    let dead_file = sb.path().join("the-dead-runs-file.sql");
    std::fs::copy(sb.backups().join(&name), &dead_file).unwrap();
    std::fs::copy(&dead_file, sb.backups().join(&killed)).unwrap();
    stale_lock(placing(&killed, &dead_file));
    let run = sb.xtask(&["backup", "local"]);
    run.assert_ok();
    assert!(sb.backups().join(&killed).exists(), "{}", run.all());

    // The very file the dead run was placing, left without its manifest,
    // goes; the hand dump stays.
    std::fs::remove_file(sb.backups().join(&killed)).unwrap();
    std::fs::rename(&dead_file, sb.backups().join(&killed)).unwrap();
    stale_lock(placing(&killed, &sb.backups().join(&killed)));
    let run = sb.xtask(&["backup", "local"]);
    run.assert_ok();
    assert!(
        run.stderr.contains(&format!(
            "removing {}",
            sb.backups().join(&killed).display()
        )),
        "{}",
        run.all()
    );
    assert!(!sb.backups().join(&killed).exists(), "{}", run.all());
    assert!(hand.exists(), "the hand dump was removed:\n{}", run.all());
}

#[test]
fn a_stale_lock_never_deletes_a_dump_the_backup_run_did_not_write() {
    // A backup was killed an hour ago (OOM, a reboot): backups/.lock is
    // left unlocked and not empty, as it is after any crash. Meanwhile the
    // operator copied a hand dump into backups/ to restore from (a file
    // without a manifest, which restore takes by path). The next command
    // that takes the lock removes "a backup file with no manifest written
    // since that run took the lock": every `backup-*.sql` without a
    // manifest newer than the lock's `started_at`, whatever its name, so
    // the operator's dump is deleted, although no run of this tool wrote
    // it and `backup-local-handmade` is no name a backup is ever given.
    // prune's rule is that files without a manifest are never touched.
    let (sb, name) = sandbox_with_a_backup();
    let hand = sb.backups().join("backup-local-handmade.sql");
    std::fs::copy(sb.backups().join(&name), &hand).unwrap();
    let started = (chrono::Utc::now() - chrono::Duration::hours(1))
        .to_rfc3339_opts(chrono::SecondsFormat::Secs, true);
    std::fs::write(
        sb.backups().join(".lock"),
        format!(r#"{{"pid":999999,"started_at":"{started}","command":"backup local"}}"#),
    )
    .unwrap();
    let run = sb.xtask(&["backup", "local"]);
    run.assert_ok();
    assert!(
        run.stderr.contains("gone without releasing it"),
        "the stale lock should be reported:\n{}",
        run.all()
    );
    assert!(
        hand.exists(),
        "the operator's hand dump {} (no manifest, never written by a backup) was deleted:\n{}",
        hand.display(),
        run.all()
    );
}

/// atkAQ: `status` reads the backup directory once per environment and
/// repeats each untrusted manifest's warning as many times (three, for
/// local, staging and prod), so an operator reading it counts three bad
/// files where there is one.
#[test]
fn status_warns_once_about_one_untrusted_manifest() {
    let (sb, name) = sandbox_with_a_backup();
    let (relabelled, _) = older_copy(&sb, &name, 1);
    edit_manifest(&sb, &relabelled, |m| {
        m["environment"] = "prod".into();
    });
    const SAID: &str = "it says it is a backup of";
    let run = sb.xtask(&["status", "--env", "local"]);
    assert_eq!(run.stderr.matches(SAID).count(), 1, "{}", run.all());
    let run = sb.xtask(&["status"]);
    assert_eq!(
        run.stderr.matches(SAID).count(),
        1,
        "one manifest, one warning:\n{}",
        run.all()
    );
}

/// doctor's identity check opens "each environment's newest encrypted
/// backup", and takes it as scan order gives it: by date, a backup dated
/// after now first. A backup dated 2099 (a clock that ran fast, a planted
/// one) sealed to the key in QBTIME_AGE_IDENTITY makes doctor say the key
/// opens local's newest backup, while `latest:local` (the newest that
/// every other command takes) is sealed to another key and cannot be
/// opened with it: doctor passes a machine whose restore of latest fails.
#[test]
fn doctor_checks_the_identity_against_latest_not_a_backup_dated_ahead() {
    let sb = Sandbox::new();
    sb.apply_migrations();
    sb.execute_sql(SEED_SQL);
    let keys = tempfile::tempdir().unwrap();
    let key_a = keys.path().join("a.txt");
    let key_b = keys.path().join("b.txt");
    let recipient_a = keygen_recipient(&sb.xtask(&["keygen", "--out", key_a.to_str().unwrap()]));
    let recipient_b = keygen_recipient(&sb.xtask(&["keygen", "--out", key_b.to_str().unwrap()]));
    let sealed = |sb: &Sandbox| -> String {
        sb.backup_files()
            .into_iter()
            .find(|n| n.ends_with(".sql.zst.age"))
            .expect("an encrypted backup")
    };

    // Sealed to B, then moved to a name of 2099 and dated then.
    sb.xtask(&["backup", "local", "--encrypt-to", &recipient_b])
        .assert_ok();
    let first = sealed(&sb);
    let ahead = "backup-local-20990101-0000.sql.zst.age".to_owned();
    let mut m = manifest_for(&sb, &first);
    m["created_at"] = "2099-01-01T00:00:00Z".into();
    m["file"]["name"] = ahead.clone().into();
    std::fs::rename(sb.backups().join(&first), sb.backups().join(&ahead)).unwrap();
    std::fs::remove_file(manifest_file(&sb, stem(&first))).unwrap();
    write_json(&manifest_file(&sb, stem(&ahead)), &m);

    // Today's backup, latest:local, sealed to A only.
    sb.xtask(&["backup", "local", "--encrypt-to", &recipient_a])
        .assert_ok();
    let latest = sb
        .backup_files()
        .into_iter()
        .find(|n| n.ends_with(".sql.zst.age") && *n != ahead)
        .expect("today's encrypted backup");
    let plan = plan_of_latest(&sb);
    assert!(
        plan.all().contains(&format!("latest:local is {latest}")),
        "{}",
        plan.all()
    );

    // B's key cannot open latest:local: doctor should warn of it.
    let mut cmd = sb.xtask_command(&["doctor"]);
    cmd.env("QBTIME_AGE_IDENTITY", &key_b);
    let run = Run::from_output(cmd.output().unwrap());
    let identity: Vec<&str> = { run.stdout.lines().chain(run.stderr.lines()) }
        .filter(|l| l.contains("QBTIME_AGE_IDENTITY"))
        .collect();
    assert!(
        identity.iter().all(|l| !l.contains(&ahead)),
        "doctor checked the key against {ahead}, dated 2099, which latest passes over:\n{}",
        run.all()
    );
    assert!(
        identity
            .iter()
            .any(|l| l.contains(&latest) && l.contains("does not open")),
        "doctor should say the key does not open latest:local, {latest}:\n{}",
        run.all()
    );
}

/// The command between backticks that starts with `start` in `text`.
fn printed_command(text: &str, start: &str) -> String {
    text.split('`')
        .find(|part| part.starts_with(start))
        .unwrap_or_else(|| panic!("no `{start}…` printed:\n{text}"))
        .to_owned()
}

/// `command` pasted into a POSIX shell in `dir`.
fn pasted(command: &str, dir: &Path) -> std::process::Output {
    std::process::Command::new("sh")
        .args(["-c", command])
        .current_dir(dir)
        .output()
        .unwrap()
}

/// A backup directory whose path has a space or shell syntax in it
/// (`--backup-dir "my backups $(touch PWNED)"`): the refusals of a planted
/// lock link and of a world-writable directory print `rm PATH` and
/// `chmod go-w PATH` to paste, with the path unquoted. Pasted, `rm` is
/// given two wrong paths (and the command substitution runs), the link
/// stays, and the next run is refused again. Each printed command must be
/// quoted for the shell (`shell_word`), as the tool's other advice is, and
/// do what it says. Cause: `xtask/src/edge/fsutil.rs` (the symlink, hard
/// link and writable-directory refusals).
#[test]
fn the_rm_and_chmod_a_backup_directory_refusal_prints_are_quoted_for_the_shell() {
    let sb = Sandbox::new();
    sb.apply_migrations();
    sb.execute_sql(SEED_SQL);
    let decoys = Decoys::plant(sb.path());
    let before = decoys.hashes();
    // Outside the checkout, where git has nothing to ignore.
    let outer = tempfile::tempdir().unwrap();
    let dir = outer.path().join("my backups $(touch PWNED)");
    std::fs::create_dir(&dir).unwrap();
    let dir_arg = dir.to_str().unwrap();
    std::os::unix::fs::symlink(decoys.path("victim"), dir.join(".lock")).unwrap();

    let run = sb.xtask(&["--backup-dir", dir_arg, "backup", "local"]);
    assert_failed_with(&run, 1, &[".lock", "symbolic link"]);
    let rm = printed_command(&run.stderr, "rm ");
    let out = pasted(&rm, outer.path());
    assert!(
        !outer.path().join("PWNED").exists(),
        "pasting `{rm}` ran the path's command substitution"
    );
    assert!(out.status.success(), "`{rm}` failed: {out:?}");
    assert!(
        std::fs::symlink_metadata(dir.join(".lock")).is_err(),
        "`{rm}` did not remove the link"
    );

    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o777)).unwrap();
    let run = sb.xtask(&["--backup-dir", dir_arg, "backup", "local"]);
    assert_failed_with(&run, 3, &["writable by other users"]);
    let chmod = printed_command(&run.stderr, "chmod ");
    let out = pasted(&chmod, outer.path());
    assert!(
        !outer.path().join("PWNED").exists(),
        "pasting `{chmod}` ran the path's command substitution"
    );
    assert!(out.status.success(), "`{chmod}` failed: {out:?}");
    sb.xtask(&["--backup-dir", dir_arg, "backup", "local"])
        .assert_ok();
    assert_eq!(decoys.hashes(), before, "a file outside was changed");
}

/// The backup directory's path reaches the `cargo xtask verify PATH` that
/// `restore latest:local` (no verified backup) and `prune` (a backup whose
/// file no longer matches its record) print to paste, unquoted: with a
/// space or shell syntax in the path (`--backup-dir "b $(touch PWNED)"`)
/// the pasted command runs the substitution and gives verify the wrong
/// words. The restore plan's and offsite fetch's `verify` already quote
/// it. Cause: `xtask/src/edge/inventory.rs` (`latest`'s refusal) and
/// `xtask/src/commands/prune.rs`; the upload's refusal and the
/// interrupted verification's message (`steps/offsite.rs`,
/// `steps/backup.rs`) are the same line.
#[test]
fn the_cargo_xtask_verify_a_refusal_prints_is_quoted_for_the_shell() {
    let sb = Sandbox::new();
    sb.apply_migrations();
    sb.execute_sql(SEED_SQL);
    let outer = tempfile::tempdir().unwrap();
    let dir = outer.path().join("b $(touch PWNED)");
    std::fs::create_dir(&dir).unwrap();
    let dir_arg = dir.to_str().unwrap();
    sb.xtask(&["--backup-dir", dir_arg, "backup", "local"])
        .assert_ok();
    let file = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .find(|p| p.extension().is_some_and(|e| e == "sql"))
        .unwrap();
    // The directory was typed, so the command carries it too.
    let expected = vec![
        "xtask".to_owned(),
        "--backup-dir".to_owned(),
        dir_arg.to_owned(),
        "verify".to_owned(),
        file.to_str().unwrap().to_owned(),
    ];

    // prune: the file no longer matches its record.
    let mut bytes = std::fs::read(&file).unwrap();
    bytes.extend_from_slice(b"-- appended\n");
    std::fs::write(&file, &bytes).unwrap();
    let run = sb.xtask(&[
        "--backup-dir",
        dir_arg,
        "prune",
        "--env",
        "local",
        "--dry-run",
    ]);
    let verify = printed_command(&run.stderr, "cargo xtask --backup-dir ");
    assert_eq!(
        pasted_words(&verify, outer.path()),
        expected,
        "prune's `{verify}`"
    );
    assert!(
        !outer.path().join("PWNED").exists(),
        "prune's `{verify}` ran it"
    );

    // restore latest: the newest backup is not verified.
    let manifest = file.with_extension("manifest.json");
    let mut m: Value = serde_json::from_str(&std::fs::read_to_string(&manifest).unwrap()).unwrap();
    m["verification"] = Value::Null;
    std::fs::write(&manifest, serde_json::to_string_pretty(&m).unwrap()).unwrap();
    let run = sb.xtask(&[
        "--backup-dir",
        dir_arg,
        "restore",
        "latest:local",
        "--to",
        "local",
        "--dry-run",
    ]);
    let verify = printed_command(&run.stderr, "cargo xtask --backup-dir ");
    assert_eq!(
        pasted_words(&verify, outer.path()),
        expected,
        "latest's `{verify}`"
    );
    assert!(
        !outer.path().join("PWNED").exists(),
        "latest's `{verify}` ran it"
    );
}

/// Every command the tool prints to paste, across a day of everyday runs
/// and refusals, with a backup directory whose path holds a space, a `'`
/// and a command substitution (`b $(touch PWNED) it's`): pasted into a
/// POSIX shell, none runs the substitution, and each word that names the
/// directory names it whole (the path, or a file under it). The tests
/// above pin one command each; this one is the class, so a command added
/// later that forgets `shell_word` fails here.
#[test]
fn every_command_printed_to_paste_names_an_odd_backup_directory_as_one_word() {
    let sb = Sandbox::new();
    sb.apply_migrations();
    sb.execute_sql(SEED_SQL);
    let outer = tempfile::tempdir().unwrap();
    let dir = outer.path().join("b $(touch PWNED) it's");
    std::fs::create_dir(&dir).unwrap();
    let dir_arg = dir.to_str().unwrap().to_owned();
    let run = |args: &[&str]| {
        let mut all = vec!["--backup-dir", dir_arg.as_str()];
        all.extend_from_slice(args);
        sb.xtask(&all)
    };

    let mut printed = String::new();
    let mut keep = |r: Run| {
        printed.push_str(&r.all());
        printed.push('\n');
    };
    keep(run(&["backup", "local"]));
    for args in [
        &["status"][..],
        &["list"],
        &["verify", "latest:local"],
        &["restore", "latest:local", "--to", "local", "--dry-run"],
        &["restore", "latest:local", "--to", "local"],
        &["prune", "--env", "local", "--dry-run"],
        &["migrate", "--check"],
        &["upload", "latest", "--env", "local"],
        &["diff", "latest:local", "live:local"],
        &["drill", "--from", "local", "--dry-run"],
        &["doctor"],
    ] {
        keep(run(args));
    }
    // The same backup, unverified, then changed after its manifest.
    let file = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .find(|p| p.extension().is_some_and(|e| e == "sql"))
        .unwrap();
    let manifest = file.with_extension("manifest.json");
    let mut m: Value = serde_json::from_str(&std::fs::read_to_string(&manifest).unwrap()).unwrap();
    m["verification"] = Value::Null;
    std::fs::write(&manifest, serde_json::to_string_pretty(&m).unwrap()).unwrap();
    for args in [
        &["status"][..],
        &["restore", "latest:local", "--to", "local", "--dry-run"],
        &["upload", "latest", "--env", "local"],
    ] {
        keep(run(args));
    }
    let mut bytes = std::fs::read(&file).unwrap();
    bytes.extend_from_slice(b"-- appended\n");
    std::fs::write(&file, &bytes).unwrap();
    for args in [
        &["status"][..],
        &["verify", file.to_str().unwrap()],
        &["prune", "--env", "local", "--dry-run"],
        &[
            "restore",
            file.to_str().unwrap(),
            "--to",
            "local",
            "--dry-run",
        ],
    ] {
        keep(run(args));
    }
    // A planted lock link, then a directory others can write to.
    let _ = std::fs::remove_file(dir.join(".lock"));
    std::os::unix::fs::symlink(outer.path().join("victim"), dir.join(".lock")).unwrap();
    keep(run(&["backup", "local"]));
    std::fs::remove_file(dir.join(".lock")).unwrap();
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o777)).unwrap();
    keep(run(&["backup", "local"]));
    keep(run(&["status"]));
    std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o700)).unwrap();

    let commands = pasteable_commands(&printed);
    let naming_dir: Vec<&String> = commands.iter().filter(|c| c.contains("PWNED")).collect();
    assert!(
        naming_dir.len() >= 5,
        "too few printed commands name the backup directory to judge: {commands:#?}\n{printed}"
    );
    let dir_text = dir.to_str().unwrap();
    for command in naming_dir {
        let words = pasted_words(command, sb.path());
        assert!(
            !sb.path().join("PWNED").exists() && !outer.path().join("PWNED").exists(),
            "pasting `{command}` ran the path's command substitution"
        );
        for word in words.iter().filter(|w| w.contains("PWNED")) {
            assert!(
                word == dir_text || word.starts_with(&format!("{dir_text}/")),
                "pasting `{command}` gives the word {word:?}, not the backup directory {dir_text:?} \
                 or a file in it: {words:?}"
            );
        }
    }
    // The directory was typed, not set in the environment: a printed
    // `cargo xtask …` carries it, or pasted it would read the default one.
    for command in commands.iter().filter(|c| c.starts_with("cargo xtask ")) {
        let words = pasted_words(command, sb.path());
        let refuses_it = ["keygen", "hooks", "completions"]
            .iter()
            .any(|c| words.contains(&(*c).to_owned()));
        let carried = words
            .windows(2)
            .any(|w| w[0] == "--backup-dir" && w[1] == dir_text);
        assert_eq!(
            carried, !refuses_it,
            "`{command}` and the typed --backup-dir: {words:?}"
        );
    }
}

/// The programs whose commands the tool prints for a user to paste.
const PASTED_PROGRAMS: &[&str] = &["cargo", "rm", "chmod", "git", "export", "mv", "ls", "cat"];

/// Every span between backticks in `text` that starts with one of
/// [`PASTED_PROGRAMS`].
fn pasteable_commands(text: &str) -> Vec<String> {
    let mut commands: Vec<String> = text
        .split('`')
        .skip(1)
        .step_by(2)
        .filter(|span| {
            PASTED_PROGRAMS
                .iter()
                .any(|p| span.starts_with(&format!("{p} ")))
        })
        .map(str::to_owned)
        .collect();
    commands.sort();
    commands.dedup();
    commands
}

/// The words `command` gives its program when pasted into a POSIX shell in
/// `dir`: each program is replaced by a function that prints its words,
/// one a line (`export NAME=VALUE` prints `NAME=VALUE`).
fn pasted_words(command: &str, dir: &Path) -> Vec<String> {
    let functions: String = PASTED_PROGRAMS
        .iter()
        .filter(|p| **p != "export")
        .map(|p| format!("{p}() {{ printf '%s\\n' \"$@\"; }}; "))
        .collect();
    let command = command.replacen("export ", "printf '%s\\n' ", 1);
    let out = pasted(&format!("{functions}{command}"), dir);
    assert!(out.status.success(), "`{command}`: {out:?}");
    String::from_utf8(out.stdout)
        .unwrap()
        .lines()
        .map(str::to_owned)
        .collect()
}

/// `backups/` made a symbolic link to a directory out of the checkout (a
/// bigger disk): git, asked about it, answers "not a git repository" (exit
/// 128), and the refusal said "git cannot be run … install git or put it on
/// PATH", though git is installed and ran. The refusal stands (nothing is
/// written), with git's own answer and the place the link leads to. NU:
/// it led with git's "not a git repository", the cause (the link leads
/// out of the checkout) and its fix (`--backup-dir`) only in a
/// parenthesis after; it leads with them now.
#[test]
fn a_backup_directory_linked_out_of_the_checkout_is_refused_without_blaming_a_missing_git() {
    let sb = Sandbox::new();
    sb.apply_migrations();
    let elsewhere = tempfile::tempdir().unwrap();
    std::os::unix::fs::symlink(elsewhere.path(), sb.backups()).unwrap();

    let run = sb.xtask(&["backup", "local"]);
    assert_eq!(run.code, Some(2), "{}", run.all());
    assert!(
        !run.stderr.contains("install git"),
        "git is installed:\n{}",
        run.all()
    );
    assert!(
        run.stderr.contains("not a git repository")
            && run.stderr.contains(&elsewhere.path().display().to_string()),
        "the refusal says neither git's answer nor where the link leads:\n{}",
        run.all()
    );
    let said = run.stderr.trim_start().trim_start_matches("error: ");
    assert!(
        said.starts_with(&format!(
            "{} leads out of the checkout",
            sb.backups().display()
        )) && said.contains("--backup-dir"),
        "the refusal does not lead with the cause and its fix:\n{}",
        run.all()
    );
    assert_eq!(std::fs::read_dir(elsewhere.path()).unwrap().count(), 0);
}

/// A manifest in the backup directory names its backup `file.name`; the
/// manifest check held it to a plain, printable file name that contains
/// `.sql` and is beside it, which `backup-local-…-0918.sql $(touch PWNED)`
/// was. `status` named such a backup, unverified or bad, in the
/// `cargo xtask verify NAME` it prints to paste, unquoted: pasted, the
/// command substitution ran and verify was given the wrong words. Every
/// command status prints is quoted (`shell_word`), as the rest of the
/// tool's advice is. Cause: `xtask/src/steps/status.rs`. Since a backup's
/// name must be exactly one the tool writes (`d1_core::manifest::backup_name`),
/// such a manifest is not trusted at all: status says so, names it and
/// prints no command with the planted name.
#[test]
fn a_backup_name_planted_in_a_manifest_is_quoted_in_the_commands_status_prints() {
    let sb = Sandbox::new();
    sb.apply_migrations();
    sb.execute_sql(SEED_SQL);
    sb.xtask(&["backup", "local"]).assert_ok();
    let dir = sb.path().join("backups");
    let file = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .find(|p| p.extension().is_some_and(|e| e == "sql"))
        .unwrap();
    let manifest = file.with_extension("manifest.json");
    let name = format!(
        "{} $(touch PWNED)",
        file.file_name().unwrap().to_str().unwrap()
    );
    std::fs::rename(&file, dir.join(&name)).unwrap();
    let mut m: Value = serde_json::from_str(&std::fs::read_to_string(&manifest).unwrap()).unwrap();
    m["file"]["name"] = Value::from(name.as_str());
    m["verification"] = Value::Null;
    std::fs::write(&manifest, serde_json::to_string_pretty(&m).unwrap()).unwrap();

    let mut printed = sb.xtask(&["status"]).all();
    // The same backup, changed after its manifest: bad.
    let mut bytes = std::fs::read(dir.join(&name)).unwrap();
    bytes.extend_from_slice(b"-- appended\n");
    std::fs::write(dir.join(&name), &bytes).unwrap();
    printed.push_str(&sb.xtask(&["status"]).all());

    let verifies: Vec<String> = pasteable_commands(&printed)
        .into_iter()
        .filter(|c| c.starts_with("cargo xtask verify "))
        .collect();
    // Not trusted, and said so, both times; never a command to paste
    // holding the planted name.
    assert_eq!(
        printed
            .matches("cannot be trusted and is ignored: its file.name")
            .count(),
        2,
        "{printed}"
    );
    assert!(
        verifies.iter().all(|c| !c.contains("PWNED")),
        "{verifies:#?}\n{printed}"
    );
    for command in &verifies {
        let words = pasted_words(command, sb.path());
        assert!(
            !sb.path().join("PWNED").exists(),
            "pasting `{command}` ran the backup name's command substitution"
        );
        assert_eq!(
            words,
            ["xtask", "verify", name.as_str()],
            "pasting `{command}` does not give verify the backup's name as one word"
        );
    }
}

/// The triggers the app's migrations create, which a forged backup cuts.
const MIGRATIONS_TRIGGERS: [&str; 3] = [
    "audit_log_no_delete",
    "audit_log_no_update",
    "report_configs_touch",
];

/// The dump of `backup` without the migrations' triggers.
fn dump_without_the_migrations_triggers(sb: &Sandbox, backup: &str) -> String {
    let path = sb.backups().join(backup);
    for trigger in MIGRATIONS_TRIGGERS {
        let dump = dump_with_trigger_replaced(sb, backup, trigger, "");
        std::fs::write(&path, dump).unwrap();
    }
    std::fs::read_to_string(&path).unwrap()
}

/// `backup` (in backups/) rewritten as `dump`, its manifest matching it
/// (size and SHA-256: it passes as a verified backup) and changed by
/// `edit`: a forged backup, as a reviewer made one.
fn forge_backup(sb: &Sandbox, backup: &str, dump: &str, edit: impl FnOnce(&mut Value)) {
    std::fs::write(sb.backups().join(backup), dump).unwrap();
    edit_manifest(sb, backup, |m| {
        m["file"]["bytes"] = dump.len().into();
        m["file"]["sha256"] = sha256_hex(dump.as_bytes()).into();
        edit(m);
    });
}

/// The names of the local D1's triggers.
fn triggers_of(sb: &Sandbox) -> Vec<String> {
    let rows = sb.query("SELECT name FROM sqlite_master WHERE type = 'trigger' ORDER BY name");
    { rows[0].iter() }
        .map(|r| r["name"].as_str().unwrap().to_owned())
        .collect()
}

/// `restore latest:local --to local --replace --yes` and `extra`.
fn restore_latest(sb: &Sandbox, extra: &[&str]) -> Run {
    let mut args: Vec<&str> = "restore latest:local --to local --replace --yes"
        .split(' ')
        .collect();
    args.extend_from_slice(extra);
    sb.xtask(&args)
}

/// That `run` (a restore of a backup without the migrations' triggers)
/// left them in the local D1, and was refused (exit 3), naming each with
/// `--allow-missing-trigger`. `what`: the case, for the messages.
#[track_caller]
fn assert_refused_for_the_missing_triggers(sb: &Sandbox, run: &Run, what: &str) {
    assert_eq!(
        triggers_of(sb),
        MIGRATIONS_TRIGGERS,
        "{what}: the migrations' triggers are gone:\n{}",
        run.all()
    );
    assert_eq!(run.code, Some(3), "{what}: {}", run.all());
    for trigger in MIGRATIONS_TRIGGERS {
        assert!(
            run.stderr
                .contains(&format!("--allow-missing-trigger {trigger}")),
            "{what}: the refusal does not name {trigger} and the way past:\n{}",
            run.all()
        );
    }
}

/// A backup whose records say no migration is applied (its manifest's
/// `"migrations": []`, its dump's `d1_migrations` rows gone or all
/// NULL-named, as the manifest must agree with them), and
/// whose dump lacks the migrations' three triggers, holds every table
/// those migrations create. It used to restore (exit 0) without the
/// triggers and without a word, where the same dump without a manifest
/// was refused: a forged record was weaker than none. A migration whose
/// tables the dump holds counts as applied whatever the records say, so
/// its triggers are required (exit 3, nothing run, naming each), and the
/// records are named inconsistent with the dump (`migrate` would apply
/// those migrations again and fail). verify names the missing triggers.
#[test]
fn a_backup_that_records_no_migration_still_needs_its_tables_triggers() {
    let (sb, name) = sandbox_with_a_backup();
    let cut = dump_without_the_migrations_triggers(&sb, &name);
    let record = "INSERT INTO \"d1_migrations\" (\"id\",\"name\",\"applied_at\") VALUES(";
    let no_rows: String = { cut.lines() }
        .filter(|l| !l.starts_with(record))
        .map(|l| format!("{l}\n"))
        .collect();
    let null_named: String = { cut.lines() }
        .map(|l| match l.strip_prefix(record) {
            Some(row) => {
                let (id, rest) = row.split_once(',').unwrap();
                let (_, at) = rest.split_once(".sql',").unwrap();
                format!("{record}{id},NULL,{at}\n")
            }
            None => format!("{l}\n"),
        })
        .collect();
    let before = db_state(&sb);
    // Each forged from the backup as taken: verify records its outcome.
    let taken = manifest_for(&sb, &name);
    for (what, dump, rows) in [("has no rows", &no_rows, 0), ("names none", &null_named, 4)] {
        write_manifest(&sb, &taken);
        forge_backup(&sb, &name, dump, |m| {
            m["migrations"] = serde_json::json!([]);
            m["migration_sha256"] = serde_json::json!({});
            m["rows"]["d1_migrations"] = rows.into();
        });
        let run = restore_latest(&sb, &[]);
        assert_refused_for_the_missing_triggers(&sb, &run, what);
        let inconsistent = ["0004_audit_log.sql", "not applied", "already exists"];
        assert!(
            inconsistent.iter().all(|n| run.stderr.contains(n)),
            "{what}: the refusal does not name the records inconsistent with the dump:\n{}",
            run.all()
        );
        assert_eq!(db_state(&sb), before, "{what}: {}", run.all());

        let verify = sb.xtask(&["verify", &name]);
        assert!(
            MIGRATIONS_TRIGGERS
                .iter()
                .all(|t| verify.stderr.contains(t))
                && verify.stderr.contains("not applied"),
            "{what}: verify does not name the missing triggers and the records:\n{}",
            verify.all()
        );
    }
}

/// A migration that does not run here (`UPDATE nosuchtable`), recorded as
/// applied in the backup's manifest and its dump's `d1_migrations`, left
/// which triggers the migrations make unknown; a dump with no trigger was
/// then restored with a warning (exit 0), the three triggers of the
/// migrations that ran before it gone. Those triggers are required (exit
/// 3, nothing run), the refusal naming the broken migration, the triggers
/// and both ways past: fix or move the migration, or
/// `--allow-missing-trigger NAME`.
#[test]
fn a_broken_migration_does_not_excuse_the_triggers_of_those_before_it() {
    let (sb, name) = sandbox_with_a_backup();
    let broken = add_broken_migration(&sb);
    let mut dump = dump_without_the_migrations_triggers(&sb, &name);
    let last = "INSERT INTO \"d1_migrations\" (\"id\",\"name\",\"applied_at\") VALUES(4,";
    let at = dump.find(last).expect("the dump records 0004");
    let at = at + dump[at..].find('\n').unwrap() + 1;
    dump.insert_str(
        at,
        &format!(
            "INSERT INTO \"d1_migrations\" (\"id\",\"name\",\"applied_at\") \
             VALUES(5,'{broken}','2026-12-06 06:39:46');\n"
        ),
    );
    forge_backup(&sb, &name, &dump, |m| {
        m["migrations"].as_array_mut().unwrap().push(broken.into());
        m["rows"]["d1_migrations"] = 5.into();
    });
    let before = db_state(&sb);
    let run = restore_latest(&sb, &[]);
    assert_refused_for_the_missing_triggers(&sb, &run, "a later migration does not run");
    assert!(
        run.stderr.contains(broken) && run.stderr.contains("fix that migration"),
        "the refusal does not name the broken migration and its fix:\n{}",
        run.all()
    );
    assert_eq!(db_state(&sb), before, "{}", run.all());
}

/// That `verify backup` warns of 0004_audit_log.sql as an applied
/// migration changed since (`what`: the case, for the message).
#[track_caller]
fn assert_verify_names_the_edit(sb: &Sandbox, backup: &str, what: &str) {
    let verify = sb.xtask(&["verify", backup]);
    assert!(
        verify.stderr.contains("0004_audit_log.sql")
            && verify.stderr.contains("already applied changed"),
        "{what}: verify does not say the migration changed since it was applied:\n{}",
        verify.all()
    );
}

/// An applied migration edited after the backup (a trigger appended to
/// 0004_audit_log.sql, and to the dump): verify called the backup GOOD and
/// restore installed the trigger (exit 0), judging the dump against the
/// edited file, where `migrate` refuses for exactly that (the manifest's
/// `migration_sha256` no longer matches). restore refuses it (exit 3,
/// nothing run) and verify says so, naming the migration and the fix.
#[test]
fn a_migration_edited_after_the_backup_is_no_reference_for_its_triggers() {
    let (sb, name) = sandbox_with_a_backup();
    let evil = "\nCREATE TRIGGER evil AFTER INSERT ON accounts BEGIN \
                UPDATE accounts SET role='admin' WHERE id=NEW.id; END;\n";
    let migration = sb.path().join("migrations/0004_audit_log.sql");
    let mut text = std::fs::read_to_string(&migration).unwrap();
    text.push_str(evil);
    std::fs::write(&migration, text).unwrap();
    let mut dump = std::fs::read_to_string(sb.backups().join(&name)).unwrap();
    dump.push_str(evil.trim_start());
    forge_backup(&sb, &name, &dump, |_| {});
    let before = db_state(&sb);

    assert_verify_names_the_edit(&sb, &name, "");

    let run = restore_latest(&sb, &[]);
    assert!(
        run.code == Some(3)
            && run.stderr.contains("0004_audit_log.sql")
            && run.stderr.contains("already applied changed")
            && run.stderr.contains("put it back as it was"),
        "the backup was judged against an edited migration, or the refusal does not name it \
         and the fix:\n{}",
        run.all()
    );
    assert_eq!(db_state(&sb), before, "{}", run.all());
    assert!(!triggers_of(&sb).contains(&"evil".to_owned()));
}

/// A trigger appended to an applied migration and to a backup's dump:
/// every new account would become an admin.
const ESCALATE: &str = "CREATE TRIGGER accounts_escalate AFTER INSERT ON accounts BEGIN \
                        UPDATE accounts SET role='admin' WHERE id=NEW.id; END;\n";

/// `0004_audit_log.sql` (applied, and recorded by `backup`'s manifest)
/// with [`ESCALATE`] appended; returns the dump of `backup` with it
/// appended too.
fn edit_applied_migration(sb: &Sandbox, backup: &str) -> String {
    let migration = sb.path().join("migrations/0004_audit_log.sql");
    let mut text = std::fs::read_to_string(&migration).unwrap();
    text.push('\n');
    text.push_str(ESCALATE);
    std::fs::write(&migration, &text).unwrap();
    let mut dump = std::fs::read_to_string(sb.backups().join(backup)).unwrap();
    dump.push_str(ESCALATE);
    dump
}

/// That `run` was refused (exit 3) naming the edited migration and the
/// fix, and left the local D1 as `before`, without `accounts_escalate`.
#[track_caller]
fn assert_refused_as_edited(sb: &Sandbox, run: &Run, before: &BTreeMap<String, Vec<String>>) {
    assert!(
        !triggers_of(sb).contains(&"accounts_escalate".to_owned()),
        "the trigger appended to an applied migration was installed:\n{}",
        run.all()
    );
    assert!(
        run.code == Some(3)
            && run.stderr.contains("0004_audit_log.sql")
            && run.stderr.contains("already applied changed")
            && run.stderr.contains("put it back as it was"),
        "not refused as an applied migration edited, naming it and the fix:\n{}",
        run.all()
    );
    assert_eq!(&db_state(sb), before, "{}", run.all());
}

/// The reviewer's attack: 0004_audit_log.sql (applied) and a copy of a
/// real backup each get a trigger appended, and the copy's manifest loses
/// its `migration_sha256` or records 0004 as the edited file. The check
/// of an applied migration edited since went by that manifest alone:
/// restore installed the trigger (exit 0, "changed no row"), and drill
/// logged PASS. The record this machine keeps (its verified backups of
/// local, as `migrate --check` reads it) is compared too: restore, its
/// dry run and drill are refused (exit 3, nothing run, no drill logged),
/// naming the migration and the fix, and verify warns.
#[test]
fn a_forged_manifest_cannot_hide_an_applied_migration_edited_since() {
    let (sb, name) = sandbox_with_a_backup();
    let dump = edit_applied_migration(&sb, &name);
    let edited = sha256_hex(
        std::fs::read(sb.path().join("migrations/0004_audit_log.sql"))
            .unwrap()
            .as_slice(),
    );
    let before = db_state(&sb);
    let log = std::fs::read(sb.path().join("docs/restore-drills.md")).ok();
    type Forge = fn(&mut Value, &str);
    let forgeries: [(&str, Forge); 2] = [
        ("without migration_sha256", |m, _| {
            m.as_object_mut().unwrap().remove("migration_sha256");
        }),
        ("recording the edited file", |m, sha| {
            m["migration_sha256"]["0004_audit_log.sql"] = sha.into();
        }),
    ];
    for (minutes, (what, forge)) in [(5, &forgeries[0]), (6, &forgeries[1])] {
        let at = chrono::Utc::now() - chrono::Duration::minutes(minutes);
        let copy = copy_taken_at(&sb, &name, "local", at, |m| forge(m, &edited));
        forge_backup(&sb, &copy, &dump, |_| {});
        assert_verify_names_the_edit(&sb, &copy, what);

        let drill = sb.xtask(&[
            "drill", "--to", "local", "--from", "local", "--backup", &copy, "--yes",
        ]);
        eprintln!("{what}: drill");
        assert_refused_as_edited(&sb, &drill, &before);
        let logged = std::fs::read(sb.path().join("docs/restore-drills.md")).ok();
        assert!(
            logged == log,
            "{what}: the drill was logged:\n{}",
            drill.all()
        );
        for extra in [&["--dry-run"][..], &["--yes"][..]] {
            let mut args = vec!["restore", &copy, "--to", "local", "--replace"];
            args.extend_from_slice(extra);
            let run = sb.xtask(&args);
            eprintln!("{what} {extra:?}");
            assert_refused_as_edited(&sb, &run, &before);
        }
    }
}

/// The same edit, and the genuine backup's dump with the trigger appended,
/// restored without a manifest (`--no-manifest --source-env local`, or
/// with no environment said): no manifest meant no check at all, and the
/// trigger was installed. This machine's record still applies (exit 3,
/// nothing run).
#[test]
fn a_dump_without_a_manifest_is_held_to_this_machines_record_of_applied_migrations() {
    let (sb, name) = sandbox_with_a_backup();
    let before = db_state(&sb);
    let (_outer, planted) = planted_dump(&edit_applied_migration(&sb, &name));
    for extra in [&["--source-env", "local"][..], &[][..]] {
        for dry in [&["--dry-run"][..], &[][..]] {
            let run = restore_planted(&sb, &planted, &[extra, dry].concat());
            eprintln!("{extra:?} {dry:?}");
            assert_refused_as_edited(&sb, &run, &before);
        }
    }
}

/// rvMD 1: an applied migration edited since staging's backups recorded
/// it, which local's own backup records as it is now (local applied the
/// edited file). A restore of that backup into local holds it to local's
/// record and its own manifest only (exit 0), while verify compared it
/// with every environment's record that shares `migrations/` and warned
/// "restore refuses this backup", its triggers not judged. verify
/// predicts the restore into the backup's own environment (its triggers
/// judged, no such warning) and names the environment whose restore
/// refuses it, staging, with the edit and the record.
#[test]
fn verify_and_restore_agree_on_an_edit_only_another_environments_record_shows() {
    let (sb, name) = sandbox_with_a_backup();
    let migration = sb.path().join("migrations/0004_audit_log.sql");
    let mut text = std::fs::read_to_string(&migration).unwrap();
    text.push_str("\n-- a comment written after staging applied this migration\n");
    std::fs::write(&migration, &text).unwrap();
    let at = chrono::Utc::now() - chrono::Duration::minutes(10);
    copy_taken_at(&sb, &name, "staging", at, |m| {
        m["environment"] = "staging".into();
        m["database"]["name"] = "qbtime_db_staging".into();
        m["database"]["uuid"] = STAGING_UUID.into();
        m["verification"]
            .as_object_mut()
            .unwrap()
            .remove("manifest_sha256");
    });
    // The records each verification would have made: as an earlier
    // version's (no `manifest_sha256`), taken as they stand.
    edit_manifest(&sb, &name, |m| {
        m["migration_sha256"]["0004_audit_log.sql"] = sha256_hex(text.as_bytes()).into();
        m["verification"]
            .as_object_mut()
            .unwrap()
            .remove("manifest_sha256");
    });

    let verify = sb.xtask(&["verify", &name, "--json", "--no-record"]);
    let report: Value = serde_json::from_str(&verify.stdout)
        .unwrap_or_else(|e| panic!("verify --json printed no JSON ({e}):\n{}", verify.all()));
    let triggers = { report["checks"].as_array().unwrap().iter() }
        .find(|c| c["name"] == "triggers")
        .unwrap_or_else(|| panic!("no triggers check:\n{}", verify.all()));
    let judged = verify.code == Some(0) && triggers["status"] == "pass";
    assert!(
        judged,
        "the triggers not judged as for local:\n{}",
        verify.all()
    );
    for told in [
        "into staging",
        "0004_audit_log.sql",
        "already applied changed",
    ] {
        let said = verify.stderr.contains(told);
        assert!(
            said,
            "no restore into staging refused ({told}):\n{}",
            verify.all()
        );
    }
    let restore = sb.xtask(&["restore", &name, "--to", "local", "--replace", "--yes"]);
    restore.assert_ok();
}

/// A migration not applied yet that runs for many minutes in memory, and
/// creates a table: the guards run every migration in memory to learn
/// what a dump's tables and triggers had applied.
const SLOW_MIGRATION: &str = "CREATE TABLE slow_marker (x INTEGER);\n\
     INSERT INTO slow_marker WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM c \
     WHERE x < 4000000000) SELECT x FROM c WHERE x = 0;\n";

/// The CPU seconds process `pid` has spent itself (its children's not
/// counted), as /proc/PID/stat has them; 0 once it is gone.
fn cpu_seconds(pid: u32) -> f64 {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    let fields: Vec<&str> = { stat.rsplit_once(')').map_or("", |(_, rest)| rest) }
        .split_whitespace()
        .collect();
    // utime and stime, fields 14 and 15, in clock ticks of 1/100 s.
    let ticks = |i: usize| fields.get(i).and_then(|t| t.parse::<f64>().ok());
    (ticks(11).unwrap_or(0.0) + ticks(12).unwrap_or(0.0)) / 100.0
}

/// rvMD 3: Ctrl-C while verify or restore runs the migrations in memory
/// for its guards. That run finished through an interrupt (so that an
/// interrupted command's way back names the right triggers, MA), for
/// every guard, not only the way back: the command went on for as long
/// as the migrations took. It stops at once (exit 130), and the restore
/// touches nothing.
#[test]
fn an_interrupt_stops_the_guards_in_memory_run_of_the_migrations() {
    let (sb, name) = sandbox_with_a_backup();
    std::fs::write(sb.path().join("migrations/0099_slow.sql"), SLOW_MIGRATION).unwrap();
    let before = db_state(&sb);
    let restore = ["restore", &name, "--to", "local", "--replace", "--yes"];
    for args in [&["verify", &name, "--no-record"][..], &restore[..]] {
        let log = tempfile::NamedTempFile::new().unwrap();
        let mut child = sb
            .xtask_command(args)
            .stdout(std::process::Stdio::null())
            .stderr(log.reopen().unwrap())
            .spawn()
            .unwrap();
        let said = || std::fs::read_to_string(log.path()).unwrap_or_default();
        // Busy for seconds of its own CPU: in the slow migration, since
        // loading the small backup takes a fraction of that.
        let started = std::time::Instant::now();
        while cpu_seconds(child.id()) < 3.0 {
            if let Some(status) = child.try_wait().unwrap() {
                panic!(
                    "{args:?} ended ({status}) before the slow migration:\n{}",
                    said()
                );
            }
            assert!(started.elapsed().as_secs() < 300, "{args:?}:\n{}", said());
            std::thread::sleep(std::time::Duration::from_millis(100));
        }
        // SAFETY: kill(2) on our own child, which has not been waited for.
        unsafe { libc::kill(child.id() as libc::pid_t, libc::SIGINT) };
        let Some(status) = ended_within(&mut child, std::time::Duration::from_secs(20)) else {
            let _ = child.kill();
            let _ = child.wait();
            panic!("{args:?} still ran 20 s after Ctrl-C:\n{}", said());
        };
        assert_eq!(status.code(), Some(130), "{args:?}:\n{}", said());
        assert_eq!(db_state(&sb), before, "{args:?}:\n{}", said());
    }
}

/// A copy of `backup` planted in backups/ as one taken at `at` (named
/// `backup-local-<at>-<n>.sql`, so beside a real backup of that minute),
/// its manifest changed by `edit`: a pair dated after every real backup.
fn plant_copy_at(
    sb: &Sandbox,
    backup: &str,
    (at, n): (chrono::DateTime<chrono::Utc>, u32),
    edit: impl FnOnce(&mut Value),
) -> String {
    let name = format!("backup-local-{}-{n}.sql", at.format("%Y%m%d-%H%M"));
    copy_as(sb, backup, (&name, at), edit)
}

/// The reviewer's attack on this machine's record: 0004_audit_log.sql
/// (applied) and a copy of a real dump get a trigger appended, and a copy
/// of the real backup is planted dated after it, its manifest leaving 0004
/// out of `migrations` and `migration_sha256`. The record took each
/// migration from the oldest backup "since it was last seen unapplied", so
/// that newest manifest erased 0004's record: the dump restored without a
/// manifest installed the trigger (exit 0, a dry run too) and `migrate
/// local --check` said "unchanged"; a second planted manifest recording
/// 0004 as the edited file made the edit the record, carried into the next
/// real backup. A later manifest never erases or replaces what an older
/// one recorded of an applied migration: both are refused (exit 3, nothing
/// run, no trigger), `migrate --check` names the edit, and a backup taken
/// then carries the sha256 first recorded.
#[test]
fn a_newer_planted_manifest_cannot_erase_or_replace_the_record_of_an_applied_migration() {
    let (sb, taken) = sandbox_with_a_backup();
    // The real backup ten minutes back: the planted pairs are of a later
    // minute (within one, backups are ordered by their sequence).
    let now = chrono::Utc::now();
    let name = copy_taken_at(
        &sb,
        &taken,
        "local",
        now - chrono::Duration::minutes(10),
        |_| {},
    );
    for gone in [taken.clone(), taken.replace(".sql", ".manifest.json")] {
        std::fs::remove_file(sb.backups().join(gone)).unwrap();
    }
    let applied = manifest_for(&sb, &name)["migration_sha256"]["0004_audit_log.sql"].clone();
    let before = db_state(&sb);
    let (_outer, planted) = planted_dump(&edit_applied_migration(&sb, &name));
    let edited = sha256_hex(
        std::fs::read(sb.path().join("migrations/0004_audit_log.sql"))
            .unwrap()
            .as_slice(),
    );
    plant_copy_at(&sb, &name, (now - chrono::Duration::seconds(1), 7), |m| {
        m["migrations"]
            .as_array_mut()
            .unwrap()
            .retain(|n| n != "0004_audit_log.sql");
        m["migration_sha256"]
            .as_object_mut()
            .unwrap()
            .remove("0004_audit_log.sql");
    });
    let second = |sb: &Sandbox| {
        plant_copy_at(sb, &name, (now, 8), |m| {
            m["migration_sha256"]["0004_audit_log.sql"] = edited.clone().into();
        });
    };
    for (what, plant) in [("one planted", None), ("two planted", Some(second))] {
        if let Some(plant) = plant {
            plant(&sb);
        }
        for dry in [&["--dry-run"][..], &[][..]] {
            let run = restore_planted(&sb, &planted, dry);
            eprintln!("{what} {dry:?}");
            assert_refused_as_edited(&sb, &run, &before);
        }
        let check = sb.xtask(&["migrate", "local", "--check"]);
        assert!(
            check.code != Some(0)
                && check.stderr.contains("0004_audit_log.sql")
                && check.stderr.contains("already applied changed"),
            "{what}: migrate --check does not name the edited migration:\n{}",
            check.all()
        );
    }
    let _ = sb.xtask(&["backup", "local"]);
    for file in std::fs::read_dir(sb.backups()).unwrap() {
        let file = file.unwrap().file_name().into_string().unwrap();
        let Some(stem) = file.strip_suffix(".manifest.json") else {
            continue;
        };
        let m = manifest_for(&sb, &format!("{stem}.sql"));
        if !stem.ends_with("-7") && !stem.ends_with("-8") {
            assert_eq!(
                m["migration_sha256"]["0004_audit_log.sql"], applied,
                "{stem} carries a forged record of 0004"
            );
        }
    }
}

/// A table's CHECK, DEFAULT, UNIQUE and FOREIGN KEY act on every later
/// write, as a trigger does: a dump whose `accounts.role` defaults to
/// `'admin'` without its CHECK used to restore without a word (exit 0,
/// verify GOOD, `migrate --check` "unchanged"), and every account made
/// after it was an admin. restore refuses it (exit 3, a dry run too,
/// nothing run), naming the table and `--allow-schema-change accounts` in
/// the one command to run; verify warns the same; that command, run as
/// printed, restores it.
#[test]
fn a_table_defined_otherwise_than_by_its_migrations_is_refused_until_allowed() {
    let (sb, name) = sandbox_with_a_backup();
    let dump = std::fs::read_to_string(sb.backups().join(&name)).unwrap();
    let start = dump
        .find("CREATE TABLE accounts")
        .expect("no accounts table");
    let end = start + dump[start..].find(";\n").unwrap();
    let table = &dump[start..end];
    let changed = table
        .replacen("DEFAULT 'member'", "DEFAULT 'admin'", 1)
        .replacen("CHECK (role IN ('member', 'admin', 'devops'))", "", 1);
    assert!(
        !changed.contains("'member'"),
        "the dump's accounts is not as expected:\n{table}"
    );
    let (_outer, planted) = planted_dump(&format!("{}{changed}{}", &dump[..start], &dump[end..]));
    let before = db_state(&sb);

    let verify = sb.xtask(&["verify", &planted, "--no-manifest"]);
    assert!(
        verify.stderr.contains("accounts")
            && verify.stderr.contains("--allow-schema-change accounts"),
        "verify does not name the changed table and the flag:\n{}",
        verify.all()
    );

    let dry = sb.xtask(&[
        "restore",
        &planted,
        "--to",
        "local",
        "--replace",
        "--dry-run",
        "--no-manifest",
    ]);
    assert_eq!(
        dry.code,
        Some(3),
        "a dry run was not refused:\n{}",
        dry.all()
    );

    let run = restore_planted(&sb, &planted, &[]);
    assert_eq!(
        run.code,
        Some(3),
        "a backup whose accounts is not the migrations' was restored:\n{}",
        run.all()
    );
    assert_eq!(db_state(&sb), before, "{}", run.all());
    // Between backticks, as every refusal a flag answers prints it.
    let command = { run.stderr.split('`').skip(1).step_by(2) }
        .find_map(|c| c.strip_prefix("cargo xtask "))
        .filter(|c| c.contains("--allow-schema-change accounts"))
        .unwrap_or_else(|| panic!("no command with the flag printed:\n{}", run.all()))
        .to_owned();
    let words: Vec<&str> = command.split_whitespace().collect();
    let allowed = sb.xtask(&words);
    allowed.assert_ok();
    let role = sb.query("SELECT sql FROM sqlite_master WHERE name = 'accounts'");
    assert!(
        role[0][0]["sql"]
            .as_str()
            .unwrap()
            .contains("DEFAULT 'admin'"),
        "{}",
        allowed.all()
    );
}

/// A dump that creates one name twice, the first its own and the second
/// the migrations' text under `IF NOT EXISTS`: SQLite keeps the first and
/// passes over the second, so a guard that read the second judged an
/// object that is never made. No database's schema holds two objects of
/// one name, so no export does: restore refuses such a dump (exit 3, a dry
/// run too, nothing run), naming the object, for a table (its DEFAULT
/// `'admin'`, its CHECK gone) and for a trigger (the audit log's guard
/// made to do nothing) alike.
#[test]
fn a_dump_that_creates_one_name_twice_is_refused_before_its_first_is_judged_by_its_second() {
    let (sb, name) = sandbox_with_a_backup();
    let dump = std::fs::read_to_string(sb.backups().join(&name)).unwrap();
    let object = |head: &str| {
        let start = dump.find(head).unwrap_or_else(|| panic!("no {head}"));
        (start, start + dump[start..].find(";\n").unwrap() + 2)
    };
    let (start, end) = object("CREATE TABLE accounts");
    let table = &dump[start..end];
    let evil_table = table
        .replacen("DEFAULT 'member'", "DEFAULT 'admin'", 1)
        .replacen("CHECK (role IN ('member', 'admin', 'devops'))", "", 1);
    let twice_table = format!(
        "{}{evil_table}{}{}",
        &dump[..start],
        table.replacen("CREATE TABLE", "CREATE TABLE IF NOT EXISTS", 1),
        &dump[end..]
    );
    let (start, end) = object("CREATE TRIGGER audit_log_no_update");
    let trigger = &dump[start..end];
    let evil_trigger = "CREATE TRIGGER audit_log_no_update BEFORE UPDATE ON audit_log \
                        BEGIN SELECT 1; END;\n";
    let twice_trigger = format!(
        "{}{evil_trigger}{}{}",
        &dump[..start],
        trigger.replacen("CREATE TRIGGER", "CREATE TRIGGER IF NOT EXISTS", 1),
        &dump[end..]
    );
    let before = db_state(&sb);
    for (planted, what) in [
        (twice_table, "accounts"),
        (twice_trigger, "audit_log_no_update"),
    ] {
        let (_outer, planted) = planted_dump(&planted);
        for extra in [&["--dry-run"][..], &[]] {
            let run = restore_planted(&sb, &planted, extra);
            assert_eq!(
                run.code,
                Some(3),
                "{what} {extra:?}: a dump creating it twice was not refused:\n{}",
                run.all()
            );
            let error = run.stderr.split_once("error:").map_or("", |(_, e)| e);
            assert!(
                error.contains(what) && error.contains("twice"),
                "{what}: the refusal does not name it created twice:\n{}",
                run.all()
            );
            assert_eq!(db_state(&sb), before, "{what} {extra:?}:\n{}", run.all());
        }
    }
}

/// The command between backticks in `run`'s refusal that carries `flag`,
/// as words to run (without `cargo xtask`).
#[track_caller]
fn printed_command_with(run: &Run, flag: &str) -> Vec<String> {
    let command = { run.stderr.split('`').skip(1).step_by(2) }
        .find_map(|c| c.strip_prefix("cargo xtask "))
        .filter(|c| c.contains(flag))
        .unwrap_or_else(|| panic!("no command with {flag} printed:\n{}", run.all()));
    command.split_whitespace().map(str::to_owned).collect()
}

/// `dump` with `from` replaced by `to` once, which it must hold.
#[track_caller]
fn edited(dump: &str, from: &str, to: &str) -> String {
    assert!(dump.contains(from), "the dump has no {from:?}");
    dump.replacen(from, to, 1)
}

/// wrangler's own table, `d1_migrations`, is no migration's, and the
/// schema guard never looked at it: a dump whose `d1_migrations` has
/// `CHECK (name < '0005')` restored (exit 0, no warning, verify GOOD),
/// and every later migration failed, told as "not an SQL error from D1: a
/// network failure, a token…". restore refuses it (exit 3, a dry run
/// too, nothing run) as a table defined otherwise, naming it and
/// `--allow-schema-change d1_migrations`; verify warns. Restored so on
/// purpose, the next migration's failure is told as the SQL error it is.
#[test]
fn a_d1_migrations_table_not_as_wrangler_makes_it_is_refused_and_its_failure_told_as_sql() {
    let (sb, name) = sandbox_with_a_backup();
    let dump = std::fs::read_to_string(sb.backups().join(&name)).unwrap();
    let evil = edited(
        &dump,
        "\t\tname       TEXT UNIQUE,",
        "\t\tname       TEXT UNIQUE CHECK (name < '0005'),",
    );
    let (_outer, planted) = planted_dump(&evil);
    let before = db_state(&sb);
    let verify = sb.xtask(&["verify", &planted, "--no-manifest"]);
    assert!(
        verify
            .stderr
            .contains("--allow-schema-change d1_migrations"),
        "verify does not name d1_migrations and the flag:\n{}",
        verify.all()
    );
    for extra in [&["--dry-run"][..], &[]] {
        let run = restore_planted(&sb, &planted, extra);
        assert_eq!(run.code, Some(3), "{extra:?}:\n{}", run.all());
        assert!(run.stderr.contains("d1_migrations"), "{}", run.all());
        assert_eq!(db_state(&sb), before, "{extra:?}:\n{}", run.all());
    }
    let run = restore_planted(&sb, &planted, &[]);
    let words = printed_command_with(&run, "--allow-schema-change d1_migrations");
    let words: Vec<&str> = words.iter().map(String::as_str).collect();
    sb.xtask(&words).assert_ok();
    std::fs::write(
        sb.path().join("migrations/0005_more.sql"),
        "CREATE TABLE more (x);",
    )
    .unwrap();
    let migrate = sb.xtask(&["migrate", "local", "--yes"]);
    assert_ne!(migrate.code, Some(0), "{}", migrate.all());
    assert!(
        !migrate.stderr.contains("not an SQL error"),
        "a CHECK constraint's failure is told as no SQL error:\n{}",
        migrate.all()
    );
}

/// `d1_migrations` is made by whichever wrangler or tool came first, each
/// laying its text out its own way; the rehearsal's prod had it indented
/// with spaces where wrangler has tabs, and every remote rehearsal failed
/// at its restore to staging (CI, stop 62), refused as "defined
/// otherwise". The same columns and constraints on one line restore with
/// no word of d1_migrations, and verify says none either.
#[test]
fn a_d1_migrations_table_laid_out_otherwise_is_the_same_table() {
    let (sb, name) = sandbox_with_a_backup();
    let dump = std::fs::read_to_string(sb.backups().join(&name)).unwrap();
    let start = dump.find("CREATE TABLE IF NOT EXISTS").unwrap_or_else(|| {
        dump.find("CREATE TABLE d1_migrations")
            .or_else(|| dump.find("CREATE TABLE \"d1_migrations\""))
            .expect("the dump makes d1_migrations")
    });
    let end = start + dump[start..].find(");").unwrap() + 2;
    assert!(
        dump[start..end].contains("d1_migrations"),
        "{}",
        &dump[start..end]
    );
    let flat = "CREATE TABLE d1_migrations (id INTEGER PRIMARY KEY AUTOINCREMENT, name TEXT \
                UNIQUE, applied_at TIMESTAMP DEFAULT CURRENT_TIMESTAMP NOT NULL);";
    let other = format!("{}{flat}{}", &dump[..start], &dump[end..]);
    let (_outer, planted) = planted_dump(&other);
    let told = |out: &str| out.contains("otherwise") || out.contains("--allow-schema-change");
    let verify = sb.xtask(&["verify", &planted, "--no-manifest"]);
    assert!(
        !told(&verify.all()),
        "verify tells of d1_migrations laid out otherwise:\n{}",
        verify.all()
    );
    let run = restore_planted(&sb, &planted, &[]);
    run.assert_ok();
    assert!(!told(&run.all()), "{}", run.all());
}

/// Two ways a dump restored a constraint the migrations do not make, with
/// no flag (rvBL): a comment before `CREATE` naming UNIQUE was taken as the
/// keyword, so the migrations' UNIQUE index came back plain (two keys in
/// force); a table no migration makes whose FOREIGN KEY refers to
/// `accounts` restored silently, and its account could not be deleted
/// again. Each is refused (exit 3, a dry run too, the local D1 unchanged),
/// named with its `--allow-schema-change`, and verify warns of it.
#[test]
fn a_comment_saying_unique_or_a_hand_made_foreign_key_is_refused_as_a_schema_change() {
    let (sb, name) = sandbox_with_a_backup();
    let dump = std::fs::read_to_string(sb.backups().join(&name)).unwrap();
    let plain = edited(
        &dump,
        "CREATE UNIQUE INDEX encryption_keys_one_in_force",
        "/* UNIQUE */ CREATE INDEX encryption_keys_one_in_force",
    );
    let holds = edited(
        &dump,
        "DELETE FROM sqlite_sequence;",
        "CREATE TABLE account_holds (account_id INTEGER NOT NULL REFERENCES accounts (id));\n\
         DELETE FROM sqlite_sequence;",
    );
    for (evil, named) in [
        (plain, "encryption_keys_one_in_force"),
        (holds, "account_holds"),
    ] {
        let (_outer, planted) = planted_dump(&evil);
        let before = db_state(&sb);
        let verify = sb.xtask(&["verify", &planted, "--no-manifest"]);
        let flag = format!("--allow-schema-change {named}");
        assert!(verify.stderr.contains(&flag), "verify:\n{}", verify.all());
        for extra in [&["--dry-run"][..], &[]] {
            let run = restore_planted(&sb, &planted, extra);
            assert_eq!(run.code, Some(3), "{named} {extra:?}:\n{}", run.all());
            assert!(run.stderr.contains(&flag), "{}", run.all());
            assert_eq!(db_state(&sb), before, "{named} {extra:?}:\n{}", run.all());
        }
        // Allowed in a dry run, it is what would be restored, not what was
        // (rvBN: "restored as it has them", then "nothing was changed").
        let plan = restore_planted(
            &sb,
            &planted,
            &["--dry-run", "--allow-schema-change", named],
        );
        plan.assert_ok();
        assert!(
            plan.stderr.contains("would be restored as it has them"),
            "{}",
            plan.all()
        );
        assert_eq!(db_state(&sb), before, "{named}:\n{}", plan.all());
    }
}

/// An index no migration makes on a table one makes was not judged: a
/// UNIQUE index (here partial, on an expression) restored without a word
/// (exit 0, verify GOOD), and a second member account could no longer be
/// made. It constrains every later write as a table's UNIQUE does: refused
/// (exit 3, a dry run too, nothing made), naming it and
/// `--allow-schema-change accounts_one_member`, which restores it. A plain
/// index only slows writes: restored, with a warning naming it.
#[test]
fn a_unique_index_no_migration_makes_is_refused_until_allowed_and_a_plain_one_warned_of() {
    let (sb, name) = sandbox_with_a_backup();
    let dump = std::fs::read_to_string(sb.backups().join(&name)).unwrap();
    let unique = "CREATE UNIQUE INDEX accounts_one_member ON accounts ((role='member')) \
                  WHERE role='member';\n";
    let (_outer, planted) = planted_dump(&format!("{dump}{unique}"));
    let before = db_state(&sb);
    let verify = sb.xtask(&["verify", &planted, "--no-manifest"]);
    assert!(
        verify
            .stderr
            .contains("--allow-schema-change accounts_one_member"),
        "verify does not name the index and the flag:\n{}",
        verify.all()
    );
    for extra in [&["--dry-run"][..], &[]] {
        let run = restore_planted(&sb, &planted, extra);
        assert_eq!(run.code, Some(3), "{extra:?}:\n{}", run.all());
        assert!(run.stderr.contains("accounts_one_member"), "{}", run.all());
        assert_eq!(db_state(&sb), before, "{extra:?}:\n{}", run.all());
    }
    let run = restore_planted(&sb, &planted, &[]);
    let words = printed_command_with(&run, "--allow-schema-change accounts_one_member");
    let words: Vec<&str> = words.iter().map(String::as_str).collect();
    sb.xtask(&words).assert_ok();
    let index = "SELECT name FROM sqlite_master WHERE name = 'accounts_one_member'";
    assert_eq!(sb.query(index)[0].len(), 1);

    let plain = "CREATE INDEX accounts_by_display_name ON accounts (display_name);\n";
    let (_outer, planted) = planted_dump(&format!("{dump}{plain}"));
    let run = restore_planted(&sb, &planted, &[]);
    run.assert_ok();
    assert!(
        run.stderr.contains("accounts_by_display_name"),
        "a plain index no migration makes is not warned of:\n{}",
        run.all()
    );
}

/// A pending migration that does not run in SQLite (`UPDATE nosuchtable`)
/// switched the schema guard off for a dump that never applied it: a dump
/// whose `accounts` defaults to `'admin'` without its CHECK was refused
/// for its triggers only, and the printed "every flag at once" command
/// restored it (exit 0, a warning). The dump's own `d1_migrations` rows
/// say which migrations it had: those run, the pending one does not, and
/// accounts is refused with `--allow-schema-change accounts`. When the
/// broken migration is one the dump records as applied, nothing can be
/// compared: refused too (fail closed), naming the migration, and the
/// printed command names accounts with the flag that admits it.
#[test]
fn a_migration_that_does_not_run_switches_no_schema_guard_off() {
    let (sb, name) = sandbox_with_a_backup();
    let dump = std::fs::read_to_string(sb.backups().join(&name)).unwrap();
    let evil = edited(&dump, "DEFAULT 'member'", "DEFAULT 'admin'");
    let evil = edited(&evil, "CHECK (role IN ('member', 'admin', 'devops'))", "");
    std::fs::write(
        sb.path().join("migrations/0005_broken.sql"),
        "UPDATE nosuchtable SET x = 1;",
    )
    .unwrap();
    let before = db_state(&sb);
    let recorded = "INSERT INTO \"d1_migrations\" (\"id\",\"name\",\"applied_at\") VALUES(4,";
    let at = evil.find(recorded).expect("no 4th d1_migrations row");
    let end = at + evil[at..].find('\n').unwrap() + 1;
    let fifth = "INSERT INTO \"d1_migrations\" (\"id\",\"name\",\"applied_at\") \
                 VALUES(5,'0005_broken.sql','2026-11-30 00:00:00');\n";
    let applied = format!("{}{fifth}{}", &evil[..end], &evil[end..]);
    for (dump, what) in [(evil, "pending"), (applied, "applied")] {
        let (_outer, planted) = planted_dump(&dump);
        let run = restore_planted(&sb, &planted, &[]);
        assert_eq!(run.code, Some(3), "{what}:\n{}", run.all());
        assert_eq!(db_state(&sb), before, "{what}:\n{}", run.all());
        printed_command_with(&run, "--allow-schema-change accounts");
        if what == "applied" {
            assert!(run.stderr.contains("0005_broken.sql"), "{}", run.all());
        }
    }
}

/// A local D1 holding a table no migration makes whose FOREIGN KEY refers
/// to `accounts` (MR 1, 2): every backup and verify printed a paragraph of
/// ~560 characters, labelled `triggers:` though it is about a table, and
/// verify's table of checks had no row for the check that warned (it said
/// "1 warning", `--json` "warn"). The warning is said once per command,
/// under `schema:`, short (the table, what it means, the flag), with its
/// row in verify's table and the same facts in `--json`.
#[test]
fn a_hand_made_table_referring_to_a_migrations_table_is_warned_of_once_and_shortly() {
    let sb = Sandbox::new();
    sb.apply_migrations();
    sb.execute_sql(
        "CREATE TABLE account_holds (account_id INTEGER NOT NULL REFERENCES accounts (id));",
    );
    let backup = sb.xtask(&["backup", "local"]);
    backup.assert_ok();
    let name = only_backup(&sb);
    let verify = sb.xtask(&["verify", &name]);
    verify.assert_ok();
    let flag = "--allow-schema-change account_holds";
    for (command, run) in [("backup", &backup), ("verify", &verify)] {
        let warned: Vec<&str> = { run.stderr.lines() }
            .filter(|l| l.contains("account_holds"))
            .collect();
        assert_eq!(
            warned.len(),
            1,
            "{command} said it other than once:\n{}",
            run.all()
        );
        let line = warned[0];
        assert!(line.starts_with("warning: "), "{command}:\n{}", run.all());
        assert!(
            line.contains(": schema: ") && !line.contains("triggers:"),
            "{command} labels it otherwise than its schema check:\n{}",
            run.all()
        );
        assert!(line.contains(flag), "{command}:\n{}", run.all());
        let said = line.split(": schema: ").nth(1).unwrap_or(line);
        assert!(
            said.len() < 300,
            "{command} said it in {} characters:\n{line}",
            said.len()
        );
    }
    assert!(
        verify
            .stdout
            .lines()
            .any(|l| l.trim_start().starts_with("[warn] schema")),
        "verify's table has no row for the check that warned:\n{}",
        verify.all()
    );
    assert_eq!(
        verify.all().matches(flag).count(),
        1,
        "verify said it other than once:\n{}",
        verify.all()
    );
    let json = sb.xtask(&["verify", &name, "--json", "--no-record"]);
    let report: Value = serde_json::from_str(&json.stdout)
        .unwrap_or_else(|e| panic!("verify --json printed no JSON ({e}):\n{}", json.all()));
    let schema = { report["checks"].as_array().unwrap().iter() }
        .find(|c| c["name"] == "schema")
        .unwrap_or_else(|| panic!("no schema check:\n{}", json.all()));
    assert_eq!(schema["status"], "warn", "{}", json.all());
    let detail = schema["detail"].as_str().unwrap();
    assert!(
        detail.contains("account_holds") && detail.contains(flag),
        "{}",
        json.all()
    );
}
