//! Commands run at once on one checkout and one backup directory, and
//! commands killed part-way (a machine that dies, `kill -9`): what the next
//! run finds, and whether two runs ever work on the database or the backup
//! directory at once.

use crate::common;

use std::os::unix::process::CommandExt;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use common::remote::Remote;
use common::*;

/// Enough rows that a verification takes long enough to land a signal in.
const MANY_ROWS: &str = "WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n \
                         WHERE i < 100000) \
                         INSERT INTO notifications (account_id, company_id, kind, title, body) \
                         SELECT 1, 1, 'bulk', 'row ' || i, hex(randomblob(150)) FROM n;";

/// A local D1 with the seed rows and a hundred thousand notifications, and
/// one verified backup of it; returns the sandbox and the backup's path.
fn big_sandbox_with_a_backup() -> (Sandbox, std::path::PathBuf) {
    let sb = Sandbox::new();
    sb.apply_migrations();
    sb.execute_sql(SEED_SQL);
    sb.execute_sql(MANY_ROWS);
    sb.xtask(&["backup", "local"]).assert_ok();
    let path = sb.backups().join(only_backup(&sb));
    (sb, path)
}

/// `args` started in a process group of its own, output discarded.
fn spawn_in_group(sb: &Sandbox, args: &[&str]) -> Child {
    sb.xtask_command(args)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .process_group(0)
        .spawn()
        .unwrap()
}

/// SIGKILL to the child's whole group (the xtask and whatever it started).
fn kill_group(child: &mut Child) {
    let group = -(child.id() as i32);
    assert!(
        Command::new("kill")
            .args(["-KILL", "--", &group.to_string()])
            .status()
            .unwrap()
            .success()
    );
    child.wait().unwrap();
}

/// Waits until a file in backups/ whose name starts with `prefix` exists
/// and is not empty; panics after a minute or if `child` ends first.
fn wait_for_file(sb: &Sandbox, child: &mut Child, prefix: &str) -> String {
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        for name in sb.backup_files() {
            if name.starts_with(prefix)
                && std::fs::metadata(sb.backups().join(&name)).is_ok_and(|m| m.len() > 0)
            {
                return name;
            }
        }
        assert!(
            child.try_wait().unwrap().is_none(),
            "it ended before writing {prefix}…: {:?}",
            sb.backup_files()
        );
        assert!(Instant::now() < deadline, "no {prefix}… after a minute");
        std::thread::sleep(Duration::from_millis(5));
    }
}

/// `verify` killed while it loads its scratch database leaves a full copy of
/// the backup's rows in backups/ (`.verify-PID-….sqlite.partial`). verify
/// holds no backup lock, so no stale lock points the next run at it: no
/// later backup, prune or verify removes it, and each kill adds another.
#[test]
fn a_verify_killed_midway_leaves_no_scratch_copy_behind_after_the_next_runs() {
    let (sb, backup) = big_sandbox_with_a_backup();
    let mut verify = spawn_in_group(&sb, &["verify", backup.to_str().unwrap()]);
    let scratch = wait_for_file(&sb, &mut verify, ".verify-");
    kill_group(&mut verify);
    assert!(
        sb.backups().join(&scratch).exists(),
        "{:?}",
        sb.backup_files()
    );

    // The next runs: a backup, a verify and a prune, all succeeding.
    sb.xtask(&["backup", "local"]).assert_ok();
    sb.xtask(&["verify", backup.to_str().unwrap()]).assert_ok();
    sb.xtask(&["prune", "--yes"]).assert_ok();
    let left = sb.backup_files();
    assert!(
        !left.iter().any(|n| n.ends_with(".partial")),
        "the killed verify's scratch database (a copy of every row) is still in backups/ \
         after three more runs: {left:?}"
    );
}

/// A backup that finds a stale lock removes every hidden `.partial` file in
/// backups/ as "its unfinished file", including the scratch database of a
/// `verify` running right now (which holds no backup lock): that verify,
/// of a good backup, then fails as "could not run" (exit 2).
#[test]
fn a_stale_lock_clean_up_leaves_a_running_verify_alone() {
    let (sb, backup) = big_sandbox_with_a_backup();
    // What a backup killed by a machine's crash leaves: the lock file still
    // naming its holder, a process long gone.
    std::fs::write(
        sb.backups().join(".lock"),
        r#"{"pid":999999,"started_at":"2026-11-23T10:00:00Z","command":"backup local"}"#,
    )
    .unwrap();
    let mut verify = sb
        .xtask_command(&["verify", backup.to_str().unwrap()])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let scratch = wait_for_file(&sb, &mut verify, ".verify-");

    let next = sb.xtask(&["backup", "local"]);
    next.assert_ok();
    assert!(
        next.stderr.contains("gone without releasing it"),
        "{}",
        next.stderr
    );
    let verify = Run::from_output(verify.wait_with_output().unwrap());
    assert!(
        !next.stderr.contains(&scratch),
        "the backup called a running verify's scratch database the dead holder's unfinished \
         file and removed it:\n{}",
        next.stderr
    );
    verify.assert_ok();
    assert!(verify.stdout.contains("Result: GOOD"), "{}", verify.all());
}

/// A backup killed after its file got its final name and before its manifest
/// was written leaves `backup-local-….sql` with no manifest. The next run
/// reports the dead holder's stale lock but says nothing of that file and
/// leaves it; `list`, `status` and `prune` skip it, so a full copy of the
/// database stays in backups/ unseen, for ever.
#[test]
fn a_backup_killed_before_its_manifest_leaves_no_unlisted_backup_file() {
    let sb = Sandbox::new();
    sb.apply_migrations();
    sb.execute_sql(SEED_SQL);
    sb.execute_sql(MANY_ROWS);
    let mut orphan = None;
    for _attempt in 0..10 {
        let before = sb.backup_files();
        let mut backup = spawn_in_group(&sb, &["backup", "local"]);
        loop {
            if backup.try_wait().unwrap().is_some() {
                break;
            }
            let now = sb.backup_files();
            let new_sql = now
                .iter()
                .find(|n| n.starts_with("backup-") && n.ends_with(".sql") && !before.contains(n));
            if let Some(sql) = new_sql {
                let manifest = sql.replace(".sql", ".manifest.json");
                if !sb.backups().join(&manifest).exists() {
                    kill_group(&mut backup);
                    if !sb.backups().join(&manifest).exists() {
                        orphan = Some(sql.clone());
                    }
                    break;
                }
            }
        }
        let _ = backup.wait();
        if orphan.is_some() {
            break;
        }
    }
    let orphan = orphan.expect("no backup was killed between its rename and its manifest");

    let next = sb.xtask(&["backup", "local"]);
    next.assert_ok();
    assert!(
        next.stderr.contains("gone without releasing it"),
        "{}",
        next.stderr
    );
    let still_there = sb.backups().join(&orphan).exists();
    assert!(
        !still_there || next.stderr.contains(&orphan),
        "the killed backup's {orphan} (no manifest) is neither removed nor named by the next \
         run:\n{}\nbackups/: {:?}",
        next.stderr,
        sb.backup_files()
    );
    let list = sb.xtask(&["list"]);
    assert!(
        !still_there || list.all().contains(&orphan),
        "list does not show {orphan}, which is in backups/:\n{}",
        list.all()
    );
}

/// `migrate` takes the backup lock for its pre-migration backup only and
/// applies the migrations after releasing it. A restore started in that
/// window holds the lock while the migration runs on the same database:
/// the migration fails (`database is locked`) or lands before the restore
/// replaces every table, and migrate then points at the pre-migration
/// backup, which would undo the other restore. While migrate applies, the
/// lock must still be held, so the restore is refused with exit 4 naming it.
#[test]
fn a_restore_while_migrate_applies_is_refused_with_the_lock_held() {
    let (sb, old) = big_sandbox_with_a_backup();
    std::fs::write(
        sb.path().join("migrations/0005_extra.sql"),
        "CREATE TABLE extra (id INTEGER PRIMARY KEY);\nINSERT INTO extra VALUES (42);\n",
    )
    .unwrap();
    let mut migrate = sb
        .xtask_command(&["migrate", "local", "--yes"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    // Once the pre-migration backup is verified, migrate starts wrangler to
    // apply the migration.
    let mut stdout = std::io::BufReader::new(migrate.stdout.take().unwrap());
    let mut seen = String::new();
    loop {
        let mut line = String::new();
        let n = std::io::BufRead::read_line(&mut stdout, &mut line).unwrap();
        assert!(
            n > 0,
            "migrate ended before its backup was verified:\n{seen}"
        );
        seen.push_str(&line);
        if line.starts_with("Result:") {
            break;
        }
    }
    let restore = restore_replacing(&sb, old.to_str().unwrap());
    let rest = {
        let mut rest = String::new();
        let _ = std::io::Read::read_to_string(&mut stdout, &mut rest);
        rest
    };
    let status = migrate.wait().unwrap();
    let mut stderr = String::new();
    let _ = std::io::Read::read_to_string(&mut migrate.stderr.take().unwrap(), &mut stderr);
    let migrate_said = format!("{seen}{rest}\n{stderr}");
    assert_eq!(
        restore.code,
        Some(4),
        "a restore ran while migrate applied its migration to the same database (migrate: \
         {status}):\nrestore:\n{}\nmigrate:\n{migrate_said}",
        restore.all()
    );
    assert!(
        restore.stderr.contains("migrate local"),
        "{}",
        restore.stderr
    );
    assert!(status.success(), "{migrate_said}");
    let applied = sb.query("SELECT name FROM d1_migrations WHERE name = '0005_extra.sql'");
    assert_eq!(applied[0].len(), 1, "{migrate_said}");
}

/// A restore into a remote database killed while D1 imports its file (a
/// machine that dies, `kill -9`): D1 finishes or undoes the import on its
/// own. The next run said only that the restore's holder was gone, neither
/// what the database may now hold nor the safety backup that brings back
/// what it held.
#[test]
fn a_remote_restore_killed_mid_import_is_explained_by_the_next_run_with_its_way_back() {
    let remote = Remote::new("");
    let home = tempfile::tempdir().unwrap();
    let file = remote.sb.backups().join(remote.backup_prod(home.path()));
    let before = remote.sb.backup_files();
    let mut restore = remote
        .xtask_command(
            home.path(),
            &[
                "restore",
                file.to_str().unwrap(),
                "--to",
                "staging",
                "--replace",
                "--yes",
            ],
        )
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .process_group(0)
        .spawn()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(120);
    while !remote
        .server
        .requests()
        .iter()
        .any(|r| r.contains("/import"))
    {
        assert!(
            restore.try_wait().unwrap().is_none(),
            "the restore ended before its import"
        );
        assert!(Instant::now() < deadline, "no import after two minutes");
        std::thread::sleep(Duration::from_millis(2));
    }
    kill_group(&mut restore);
    let safety: Vec<String> = remote
        .sb
        .backup_files()
        .into_iter()
        .filter(|f| f.starts_with("backup-staging-") && f.ends_with(".sql") && !before.contains(f))
        .collect();
    assert_eq!(safety.len(), 1, "{:?}", remote.sb.backup_files());

    let next = remote.xtask(home.path(), &["backup", "staging"]);
    next.assert_ok();
    let said = &next.stderr;
    let loading = format!(
        "when it stopped it was loading {} into qbtime_db_staging",
        file.file_name().unwrap().to_str().unwrap()
    );
    assert!(said.contains(&loading), "{said}");
    assert!(
        said.contains("holds either all of the backup or what it held before"),
        "{said}"
    );
    assert!(
        said.contains(&format!(
            "restore the safety backup taken before it: cargo xtask restore {} --to staging \
             --replace --yes",
            remote.sb.backups().join(&safety[0]).display()
        )),
        "{said}"
    );
}
