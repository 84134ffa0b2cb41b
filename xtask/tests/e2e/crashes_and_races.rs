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
    spawn_in_group_to(sb, args, Stdio::null)
}

/// `args` started in a process group of its own, its output kept.
fn spawn_piped_in_group(sb: &Sandbox, args: &[&str]) -> Child {
    spawn_in_group_to(sb, args, Stdio::piped)
}

/// `args` started in a process group of its own, its output to `output()`.
fn spawn_in_group_to(sb: &Sandbox, args: &[&str], output: fn() -> Stdio) -> Child {
    let mut cmd = sb.xtask_command(args);
    cmd.stdout(output()).stderr(output()).process_group(0);
    cmd.spawn().unwrap()
}

/// Waits until `done`; panics after two minutes, or if `child` ends first.
fn wait_until(child: &mut Child, what: &str, mut done: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(120);
    while !done() {
        assert!(
            child.try_wait().unwrap().is_none(),
            "it ended before {what}"
        );
        assert!(Instant::now() < deadline, "no {what} after two minutes");
        std::thread::sleep(Duration::from_millis(5));
    }
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
/// lock must still be held, so the restore is refused with exit 4 naming
/// it, and changes nothing: not a row of the database, not a file of the
/// backup directory (no safety backup, nothing left behind). Migrate is
/// held still (SIGSTOP to its process group) once its wrangler applies the
/// migration, so the restore meets it there whatever the timing, and then
/// finishes.
#[test]
fn a_restore_while_migrate_applies_is_refused_with_the_lock_held() {
    let (sb, old) = big_sandbox_with_a_backup();
    // Rows the backup has and the database no longer: a restore that ran
    // would bring them back.
    sb.execute_sql("DELETE FROM notifications WHERE id % 2 = 0;");
    std::fs::write(
        sb.path().join("migrations/0005_extra.sql"),
        "CREATE TABLE extra (id INTEGER PRIMARY KEY);\nINSERT INTO extra VALUES (42);\n",
    )
    .unwrap();
    let mut migrate = spawn_piped_in_group(&sb, &["migrate", "local", "--yes"]);
    let pid = migrate.id();
    wait_until(&mut migrate, "wrangler applying the migration", || {
        group_runs(pid, "d1 migrations apply")
    });
    signal_group(&migrate, libc::SIGSTOP);
    let (rows, files) = (every_row(&sb), sb.backup_files());

    let restore = restore_replacing(&sb, old.to_str().unwrap());
    let (rows_after, files_after) = (every_row(&sb), sb.backup_files());
    signal_group(&migrate, libc::SIGCONT);
    let migrated = Run::from_output(migrate.wait_with_output().unwrap());

    assert_eq!(restore.code, Some(4), "{}", restore.all());
    let holder = format!(
        "another backup or restore is running in {} (pid {} (`migrate local`, started ",
        sb.backups().display(),
        pid
    );
    assert!(
        restore.stderr.contains(&holder)
            && restore
                .stderr
                .contains("wait for it to finish, then run this again"),
        "the refusal names neither the migrate holding the lock nor what to do:\n{}",
        restore.all()
    );
    // It printed no plan (one read while migrate changes the database),
    // and nothing of a run: no safety backup, no load.
    assert!(
        !restore.stdout.contains("Restore plan"),
        "{}",
        restore.all()
    );
    for done in ["Taking a safety backup", "Safety backup ", "Restored"] {
        assert!(
            !restore.all().contains(done),
            "{done:?}:\n{}",
            restore.all()
        );
    }
    assert!(rows_after == rows, "the refused restore changed rows");
    assert_eq!(files_after, files, "the refused restore changed backups/");
    migrated.assert_ok();
    let applied = sb.query("SELECT name FROM d1_migrations WHERE name = '0005_extra.sql'");
    assert_eq!(applied[0].len(), 1, "{}", migrated.all());
}

/// A restore on a terminal while another run holds the backup lock: the
/// operator is told so before any plan is printed or the database name is
/// asked, as by migrate and deploy. It used to print its plan and ask for
/// the name, and only then, the name typed, say that the lock was held.
#[test]
fn a_restore_on_a_terminal_asks_nothing_while_another_run_holds_the_lock() {
    let (sb, name) = sandbox_with_a_backup();
    let lock = hold_backup_lock(&sb, "backup staging");
    let mut restore = InATerminal::start(&sb, &["restore", &name, "--to", "local", "--replace"]);
    let asked = restore.prints("Type the database name");
    if asked {
        restore.answer("qbtime_db_local");
    }
    let (code, out) = restore.end();
    drop(lock);
    assert!(
        !asked,
        "it asked for the name with the lock held elsewhere:\n{out}"
    );
    assert_eq!(code, Some(4), "{out}");
    assert!(
        out.contains("another backup or restore is running")
            && out.contains("Nothing was changed."),
        "{out}"
    );
    assert!(
        !out.contains("Restore plan"),
        "a plan read without the lock:\n{out}"
    );
}

/// Two operators restore into one database at once. The first reads the
/// plan and is asked for the database name; while the question is open the
/// second run is refused (exit 4, naming the first), prints no plan and
/// takes no safety backup; the first, answered, restores the plan it
/// printed. It used to ask before taking the lock, so the second restored
/// while the first was asking, and the first then ran a plan read before
/// the second's restore, over it.
#[test]
fn a_second_restore_while_the_first_asks_is_refused_and_the_first_runs_its_plan() {
    let (sb, name) = sandbox_with_a_backup();
    let files = sb.backup_files();
    let mut first = InATerminal::start(&sb, &["restore", &name, "--to", "local", "--replace"]);
    assert!(
        first.prints("Type the database name"),
        "the restore did not ask:\n{}",
        first.seen()
    );
    let second = restore_replacing(&sb, &name);
    let taken_meanwhile = sb.backup_files();
    first.answer("qbtime_db_local");
    let (code, out) = first.end();

    assert_eq!(second.code, Some(4), "{}", second.all());
    assert!(
        second.stderr.contains("(`restore into local`, started "),
        "the refusal does not name the restore waiting for its answer:\n{}",
        second.all()
    );
    assert!(!second.stdout.contains("Restore plan"), "{}", second.all());
    assert_eq!(
        taken_meanwhile, files,
        "the second restore took a safety backup"
    );
    assert_eq!(code, Some(0), "{out}");
    let safety: Vec<String> = { sb.backup_files().into_iter() }
        .filter(|f| f.ends_with(".sql") && !files.contains(f))
        .collect();
    assert_eq!(
        safety.len(),
        1,
        "one safety backup, the first's: {safety:?}\n{out}"
    );
}

/// A sandbox with a backup taken now and a copy of it dated 40 days ago,
/// which [`crate::output::KEEP_ONE_LOCAL`] deletes; returns the copy's name.
pub(crate) fn sandbox_with_an_old_backup() -> (Sandbox, String) {
    let (sb, newest) = sandbox_with_a_backup();
    let old = copy_taken_at(
        &sb,
        &newest,
        "local",
        chrono::Utc::now() - chrono::Duration::days(40),
        |_| {},
    );
    (sb, old)
}

/// A prune on a terminal while another run holds the backup lock is told
/// so before it prints a plan or asks: it used to print its plan and ask
/// "Delete 1 backup?", and only then, answered, say the lock was held.
#[test]
fn a_prune_on_a_terminal_asks_nothing_while_another_run_holds_the_lock() {
    let (sb, old) = sandbox_with_an_old_backup();
    let held = sb.backups_held();
    let lock = hold_backup_lock(&sb, "backup local");
    let mut prune = InATerminal::start(&sb, crate::output::KEEP_ONE_LOCAL);
    let asked = prune.prints("Type yes");
    if asked {
        prune.answer("yes");
    }
    let (code, out) = prune.end();
    drop(lock);
    assert!(!asked, "it asked with the lock held elsewhere:\n{out}");
    assert_eq!(code, Some(4), "{out}");
    assert!(
        out.contains("(`backup local`, started ") && out.contains("Nothing was changed."),
        "{out}"
    );
    assert!(
        !out.contains(&format!("delete  {old}")),
        "a plan read without the lock:\n{out}"
    );
    assert_eq!(sb.backups_held(), held);
}

/// prune judges the backups and asks under the backup lock: while its
/// question is open, a backup, a second prune and a restore are refused
/// (exit 4, naming the prune) and change nothing in backups/ nor the
/// database, and a dry run (which takes no lock) still prints its plan;
/// answered, the prune deletes the plan it printed. It used to ask before
/// taking the lock, so any of them ran while it asked.
#[test]
fn runs_while_prune_asks_are_refused_and_prune_deletes_the_plan_it_showed() {
    let (sb, old) = sandbox_with_an_old_backup();
    let decoys = common::decoys::Decoys::plant(sb.path());
    let (decoyed, rows) = (decoys.hashes(), every_row(&sb));
    let mut prune = InATerminal::start(&sb, crate::output::KEEP_ONE_LOCAL);
    assert!(
        prune.prints("Type yes"),
        "prune did not ask:\n{}",
        prune.seen()
    );
    assert!(
        prune.seen().contains(&format!("delete  {old}")),
        "{}",
        prune.seen()
    );
    let held = sb.backups_held();
    let newest = only_backup_but(&sb, &old);
    let others = [
        sb.xtask(&["backup", "local"]),
        sb.xtask(&[crate::output::KEEP_ONE_LOCAL, &["--yes"]].concat()),
        restore_replacing(&sb, &newest),
    ];
    let dry_run = sb.xtask(&[crate::output::KEEP_ONE_LOCAL, &["--dry-run"]].concat());
    let held_meanwhile = sb.backups_held();
    prune.answer("yes");
    let (code, out) = prune.end();

    for other in &others {
        assert_eq!(other.code, Some(4), "{}", other.all());
        assert!(
            other.stderr.contains("(`prune`, started ")
                && other.stderr.contains("Nothing was changed."),
            "the refusal does not name the prune waiting for its answer:\n{}",
            other.all()
        );
    }
    assert_eq!(held_meanwhile, held, "backups/ changed while prune asked");
    assert_eq!(
        every_row(&sb),
        rows,
        "the database changed while prune asked"
    );
    assert_eq!(decoys.hashes(), decoyed);
    dry_run.assert_ok();
    assert!(
        dry_run.stdout.contains(&format!("delete  {old}")) && dry_run.stdout.contains("Dry run"),
        "{}",
        dry_run.all()
    );
    assert_eq!(code, Some(0), "{out}");
    assert!(out.contains("Deleted 1 backup"), "{out}");
    let left: Vec<String> = { sb.backups_held().into_keys() }
        .filter(|f| f.ends_with(".sql"))
        .collect();
    assert_eq!(left, [newest], "{out}");
}

/// The one backup in backups/ other than `other`.
fn only_backup_but(sb: &Sandbox, other: &str) -> String {
    let mut sql = { sb.backup_files().into_iter() }.filter(|f| f.ends_with(".sql") && f != other);
    let one = sql.next().unwrap();
    assert_eq!(sql.next(), None);
    one
}

/// SIGSTOP, or SIGCONT, to the child's whole process group (the xtask and
/// the wrangler it started).
fn signal_group(child: &Child, signal: libc::c_int) {
    assert_eq!(unsafe { libc::kill(-(child.id() as i32), signal) }, 0);
}

/// Whether a process of the process group `group` runs a command line
/// holding `words`.
fn group_runs(group: u32, words: &str) -> bool {
    let group = group.to_string();
    std::fs::read_dir("/proc").unwrap().flatten().any(|p| {
        // After the command's name in parentheses: state, parent, group.
        let stat = std::fs::read_to_string(p.path().join("stat")).unwrap_or_default();
        let in_group = stat
            .rsplit_once(')')
            .is_some_and(|(_, rest)| rest.split_whitespace().nth(2) == Some(group.as_str()));
        in_group
            && std::fs::read(p.path().join("cmdline")).is_ok_and(|c| {
                String::from_utf8_lossy(&c)
                    .replace('\0', " ")
                    .contains(words)
            })
    })
}

/// Every row of every table of the local D1, with its schema: what a run
/// that changed nothing leaves as it was.
fn every_row(sb: &Sandbox) -> Vec<Vec<serde_json::Value>> {
    let schema = "SELECT type, name, sql FROM sqlite_master ORDER BY name";
    let tables = sb.query(
        "SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite\\_%' \
         ESCAPE '\\' AND name NOT LIKE '\\_cf\\_%' ESCAPE '\\' ORDER BY name",
    );
    let each = tables[0]
        .iter()
        .map(|t| format!("SELECT * FROM \"{}\"", t["name"].as_str().unwrap()));
    sb.query(
        &std::iter::once(schema.to_owned())
            .chain(each)
            .collect::<Vec<_>>()
            .join("; "),
    )
}

/// A restore into a remote database killed while D1 imports its file (a
/// machine that dies, `kill -9`): D1 finishes or undoes the import on its
/// own. The next run said only that the restore's holder was gone, neither
/// what the database may now hold nor the safety backup that brings back
/// what it held.
#[test]
fn a_remote_restore_killed_mid_import_is_explained_by_the_next_run_with_its_way_back() {
    remote_restore_stopped_mid_import_is_explained(kill_group);
}

/// The same restore, its terminal gone mid-import (an SSH session dropped):
/// SIGHUP reaches the xtask and wrangler. What the xtask then prints is
/// lost with the terminal, so the next run must still say what the
/// database may hold and the way back, as after a kill; a clean release of
/// the lock would leave the operator nothing.
#[test]
fn a_remote_restore_whose_terminal_closed_mid_import_is_explained_by_the_next_run_with_its_way_back()
 {
    remote_restore_stopped_mid_import_is_explained(|restore| {
        // SAFETY: kill(2) on the group our own child leads.
        unsafe { libc::kill(-(restore.id() as i32), libc::SIGHUP) };
        let status = restore.wait().unwrap();
        assert_eq!(status.code(), Some(129), "{status:?}");
    });
}

fn remote_restore_stopped_mid_import_is_explained(stop: impl FnOnce(&mut Child)) {
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
    stop(&mut restore);
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
            "restore the safety backup taken before it:\n  cargo xtask restore {} --to staging \
             --replace --yes\n",
            remote.sb.backups().join(&safety[0]).display()
        )),
        "{said}"
    );
}

/// Waits until the loopback has received a request for which `matches`
/// holds, at or after the `from`th; returns its index. Panics after two
/// minutes or if `child` ends first.
fn wait_for_request(
    remote: &Remote,
    child: &mut Child,
    from: usize,
    matches: impl Fn(&str) -> bool,
) -> usize {
    let deadline = Instant::now() + Duration::from_secs(120);
    loop {
        let requests = remote.server.requests();
        if let Some(i) = requests.iter().skip(from).position(|r| matches(r)) {
            return from + i;
        }
        assert!(
            child.try_wait().unwrap().is_none(),
            "it ended before the request: {requests:#?}"
        );
        assert!(
            Instant::now() < deadline,
            "no such request after two minutes"
        );
        std::thread::sleep(Duration::from_millis(5));
    }
}

/// atkAP: a Time Travel restore killed (`kill -9`, a machine that dies)
/// while D1 works on the restore it was sent: D1 makes it or not, on its
/// own. The restore holds the backup lock but writes nothing into it of
/// what it was doing, as `restore` and `migrate` do; the journal's last
/// line stays `started`. The next run says only that a `time-travel
/// restore prod` is gone without releasing the lock: neither that prod may
/// now be back at the older bookmark, nor the bookmark that undoes it.
#[test]
fn a_time_travel_restore_killed_mid_request_is_explained_by_the_next_run_with_its_way_back() {
    time_travel_restore_stopped_mid_request_is_explained(kill_group);
}

/// The same, its terminal gone mid-request (SIGHUP to the xtask and
/// wrangler): what it printed, the undo bookmark among it, is lost with the
/// terminal; the next run must say it.
#[test]
fn a_time_travel_restore_whose_terminal_closed_mid_request_is_explained_by_the_next_run() {
    time_travel_restore_stopped_mid_request_is_explained(|restore| {
        // SAFETY: kill(2) on the group our own child leads.
        unsafe { libc::kill(-(restore.id() as i32), libc::SIGHUP) };
        let status = restore.wait().unwrap();
        assert_eq!(status.code(), Some(129), "{status:?}");
    });
}

fn time_travel_restore_stopped_mid_request_is_explained(stop: impl FnOnce(&mut Child)) {
    let remote = Remote::new("");
    let home = tempfile::tempdir().unwrap();
    let old = prod_bookmark(&remote, home.path());
    {
        let conn = rusqlite::Connection::open(&remote.db).unwrap();
        conn.busy_timeout(Duration::from_secs(10)).unwrap();
        conn.execute(
            "INSERT INTO companies (name, timezone) VALUES ('Newer Co', 'UTC')",
            [],
        )
        .unwrap();
    }
    let mut restore = slow_time_travel_restore(&remote, home.path(), &old);
    wait_for_request(&remote, &mut restore, 0, |r| {
        r.contains("/time_travel/restore")
    });
    stop(&mut restore);
    remote.server.set_faults(d1_loopback::Faults::default());
    let journal = std::fs::read_to_string(remote.sb.backups().join("time-travel.jsonl")).unwrap();
    let last: serde_json::Value = serde_json::from_str(journal.lines().last().unwrap()).unwrap();
    // A kill leaves it started; an interrupt journals it interrupted, with
    // its way back.
    assert!(
        last["status"] == "started" || last["status"] == "interrupted",
        "{journal}"
    );
    let undo = last["bookmark_before"].as_str().unwrap().to_owned();

    let next = remote.xtask(home.path(), &["backup", "prod"]);
    next.assert_ok();
    let said = &next.stderr;
    assert!(said.contains("gone without releasing it"), "{said}");
    assert!(
        said.contains("when it stopped it was") && said.contains(&undo),
        "the next run does not say that the killed Time Travel restore may have moved \
         qbtime_db_prod, nor the bookmark {undo} that undoes it:\n{said}"
    );
}

/// A Time Travel restore whose terminal closes (SIGHUP) after D1 answered
/// and the journal says `done`, while the restore checks that the
/// database answers: the restore is made and journaled, so the lock must
/// not keep a record of one underway, which the next run, finding it at
/// odds with the journal's `done`, tells as bookmarks that "are not the
/// Time Travel journal's".
#[test]
fn a_time_travel_restore_whose_terminal_closed_after_it_was_done_leaves_no_record_of_one_underway()
{
    let remote = Remote::new("");
    let home = tempfile::tempdir().unwrap();
    let old = prod_bookmark(&remote, home.path());
    let mut restore = slow_time_travel_restore(&remote, home.path(), &old);
    let made = wait_for_request(&remote, &mut restore, 0, |r| {
        r.contains("/time_travel/restore")
    });
    // The check that the database answers, after the journal's `done`.
    wait_for_request(&remote, &mut restore, made + 1, |r| {
        r.contains("/query") || r.contains("/raw")
    });
    // SAFETY: kill(2) on the group our own child leads.
    unsafe { libc::kill(-(restore.id() as i32), libc::SIGHUP) };
    let status = restore.wait().unwrap();
    assert_eq!(status.code(), Some(129), "{status:?}");
    remote.server.set_faults(d1_loopback::Faults::default());
    let journal = std::fs::read_to_string(remote.sb.backups().join("time-travel.jsonl")).unwrap();
    let last: serde_json::Value = serde_json::from_str(journal.lines().last().unwrap()).unwrap();
    assert_eq!(last["status"], "done", "{journal}");

    let next = remote.xtask(home.path(), &["backup", "prod"]);
    next.assert_ok();
    let said = &next.stderr;
    assert!(
        !said.contains("not the Time Travel journal's") && !said.contains("when it stopped it was"),
        "a restore that was done and journaled is told by the next run as one underway:\n{said}"
    );
}

/// atkAP: `deploy` killed (`kill -9`) while it applies its migrations, after
/// its pre-migration backup. `migrate` writes into the backup lock what it
/// is applying and the backup to go back to, and the next run says it;
/// the deploy, which holds the same lock from its backup through the same
/// migration, writes nothing, so the next run says only that a `deploy
/// prod` is gone: neither that migrations may be half applied nor the
/// backup that brings prod back.
#[test]
fn a_deploy_killed_while_it_migrates_is_explained_by_the_next_run_with_its_way_back() {
    let remote = Remote::new("");
    let home = tempfile::tempdir().unwrap();
    remote.server.add_bucket("qbtime-d1-backups");
    let key = home.path().join("key.txt");
    let recipient =
        keygen_recipient(&remote.xtask(home.path(), &["keygen", "--out", key.to_str().unwrap()]));
    encrypt_backups_of(&remote.sb, "prod", &recipient);
    std::fs::write(
        remote.sb.path().join("migrations/0005_extra.sql"),
        "CREATE TABLE extra (id INTEGER PRIMARY KEY);\n",
    )
    .unwrap();
    let mut deploy = remote
        .xtask_command(
            home.path(),
            &[
                "deploy",
                "prod",
                "--branch",
                "main",
                "--confirm",
                "qbtime_db_prod",
            ],
        )
        .env("QBTIME_PAGES_DEPLOY", "echo deployed >> deployed.log")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .process_group(0)
        .spawn()
        .unwrap();
    // The upload's last write is the offsite index; the migration's wrangler
    // comes next, and its queries are answered 3 s late.
    let index = wait_for_request(&remote, &mut deploy, 0, |r| {
        r.starts_with("PUT") && r.contains("prod.json")
    });
    remote.server.set_faults(d1_loopback::Faults {
        response_delay_ms: Some(3000),
        ..Default::default()
    });
    wait_for_request(&remote, &mut deploy, index + 1, |r| r.contains("/query"));
    kill_group(&mut deploy);
    remote.server.set_faults(d1_loopback::Faults::default());
    let backup = remote
        .sb
        .backup_files()
        .into_iter()
        .find(|f| f.ends_with(".sql.zst.age"))
        .expect("the pre-migration backup was taken");

    let next = remote.xtask(home.path(), &["backup", "prod"]);
    next.assert_ok();
    let said = &next.stderr;
    assert!(said.contains("`deploy prod`"), "{said}");
    assert!(
        said.contains("when it stopped it was applying migrations to qbtime_db_prod")
            && said.contains(&backup),
        "the next run does not say that the killed deploy was applying migrations to \
         qbtime_db_prod, nor the pre-migration backup {backup} that goes back:\n{said}"
    );
}

/// atkAP: an upload killed (`kill -9`) after its backup reached R2 and was
/// read back, before the local manifest was marked offsite, into a bucket
/// under `offsite lock` (as prod's should be). The README's way on is to
/// run `upload` again; that puts the same key again, which the lock
/// refuses (403, code 10069), so the backup can never be recorded offsite:
/// `list` and `status` say it is not, and the index never names it,
/// though its copy is in the bucket for the lock's whole span.
#[test]
fn an_upload_killed_after_its_object_landed_can_be_run_again_under_a_bucket_lock() {
    let remote = Remote::new("");
    let home = tempfile::tempdir().unwrap();
    let name = remote.backup_prod_under_a_bucket_lock(home.path());
    // Answered 2 s late from the first request naming the backup (its PUT
    // or a look for it before), so that the kill lands after the read-back.
    remote.server.set_faults(d1_loopback::Faults {
        response_delay_ms: Some(2000),
        response_delay_from: Some(name.clone()),
        ..Default::default()
    });
    let mut upload = remote
        .xtask_command(home.path(), &["upload", &name, "--env", "prod"])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .process_group(0)
        .spawn()
        .unwrap();
    // The read-back of the backup's object, after its PUT: it is stored.
    let put = wait_for_request(&remote, &mut upload, 0, |r| {
        r.starts_with("PUT") && r.contains("/objects/") && r.contains(&name)
    });
    wait_for_request(&remote, &mut upload, put, |r| {
        r.starts_with("GET") && r.contains("/objects/") && r.contains(&name)
    });
    kill_group(&mut upload);
    remote.server.set_faults(d1_loopback::Faults::default());
    let stored = remote
        .server
        .r2_keys("qbtime-d1-backups")
        .into_iter()
        .find(|k| k.ends_with(&name));
    assert!(stored.is_some(), "the premise: the object is in R2");

    let again = remote.xtask(home.path(), &["upload", &name, "--env", "prod"]);
    let m = manifest_for(&remote.sb, &name);
    assert!(
        again.ok
            && m["offsite"]["key"]
                .as_str()
                .is_some_and(|k| k.ends_with(&name)),
        "after a killed upload, `upload` again cannot record a backup whose copy the bucket \
         lock keeps ({:?}):\n{}\nmanifest: {m:#}",
        again.code,
        again.all()
    );
}

/// prod's Time Travel bookmark now.
fn prod_bookmark(remote: &Remote, home: &std::path::Path) -> String {
    let info = remote.xtask(home, &["time-travel", "info", "prod", "--json"]);
    info.assert_ok();
    let json: serde_json::Value = serde_json::from_str(info.stdout.trim()).unwrap();
    json["bookmark"].as_str().unwrap().to_owned()
}

/// A Time Travel restore of prod to `bookmark`, started in a process group
/// of its own, against a slow API: each of D1's answers comes 3 s after
/// its request, so the test can stop it at a known request.
fn slow_time_travel_restore(
    remote: &Remote,
    home: &std::path::Path,
    bookmark: &str,
) -> std::process::Child {
    slow_time_travel_restore_command(remote, home, bookmark)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .process_group(0)
        .spawn()
        .unwrap()
}

/// The command of a Time Travel restore of prod to `bookmark`, with every
/// loopback answer from its request to restore on delayed by 3 s (those
/// before it, which no test stops at, are answered at once).
fn slow_time_travel_restore_command(
    remote: &Remote,
    home: &std::path::Path,
    bookmark: &str,
) -> std::process::Command {
    remote.server.set_faults(d1_loopback::Faults {
        response_delay_ms: Some(3000),
        response_delay_from: Some("/time_travel/restore".into()),
        ..Default::default()
    });
    remote.xtask_command(
        home,
        &[
            "time-travel",
            "restore",
            "prod",
            "--bookmark",
            bookmark,
            "--confirm",
            "qbtime_db_prod",
        ],
    )
}

/// A SIGTERM in the first moments of the process, before its handler is
/// installed (the loader is still mapping it), kills it by the default
/// action: no handler can run before the program's own code. A parent that
/// must not lose such a signal starts the xtask with it blocked, and it is
/// delivered once the handler is there. The xtask kept it blocked for the
/// whole run instead: the signal was never acted on, and the command ran to
/// the end as if none had been sent.
#[test]
fn a_sigterm_blocked_at_start_is_taken_once_the_handler_is_installed() {
    let sb = Sandbox::new();
    for _ in 0..10 {
        let mut cmd = sb.xtask_command(&["list"]);
        // SAFETY: sigprocmask(2) only, between fork and exec.
        unsafe {
            cmd.pre_exec(|| {
                let mut set: libc::sigset_t = std::mem::zeroed();
                libc::sigemptyset(&mut set);
                for s in [libc::SIGINT, libc::SIGTERM, libc::SIGHUP] {
                    libc::sigaddset(&mut set, s);
                }
                libc::sigprocmask(libc::SIG_BLOCK, &set, std::ptr::null_mut());
                // Sent here, blocked, it is pending across exec: sent after
                // spawn, a loaded machine could let `list` end first.
                libc::kill(libc::getpid(), libc::SIGTERM);
                Ok(())
            })
        };
        let child = cmd
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let run = Run::from_output(child.wait_with_output().unwrap());
        assert_eq!(
            run.code,
            Some(143),
            "a SIGTERM sent at start was not acted on:\n{}",
            run.all()
        );
        assert!(
            run.stderr.contains("interrupted by SIGTERM"),
            "{}",
            run.all()
        );
    }
}

/// An operator whose restore into prod was interrupted during the load
/// (or whose terminal closed) runs the same command again. D1 may have
/// finished the first import: the second run's safety backup then holds
/// the backup's own rows, and its "to go back" names that, so following it
/// brings back nothing of what the database held before. The re-run must
/// say the target already held the backup's rows and name the safety
/// backup from before the earlier restore.
#[test]
fn a_restore_run_again_after_its_load_landed_names_the_undo_point_from_before_it() {
    let (_source, target, restore, first_safety) = restored_over_a_row();

    // The same command again: the first one's load had landed.
    let run = target.xtask(&restore.iter().map(String::as_str).collect::<Vec<_>>());
    run.assert_ok();
    assert!(
        run.all().contains("already held"),
        "the re-run does not say the target already held the backup's rows:\n{}",
        run.all()
    );
    let stem = first_safety.trim_end_matches(".sql");
    assert!(
        run.all().contains(stem),
        "the re-run names only its own safety backup (the backup's rows) as the way back, not \
         {first_safety}, taken before the earlier restore:\n{}",
        run.all()
    );
}

/// A `--clean` restore killed while wrangler applies the migrations (each
/// its own query) recorded "loading" in the lock, so the next run was
/// told a load that did not finish is undone, whole: some migrations may
/// be applied, and no row was loaded. The lock says so until the
/// migrations are applied.
#[test]
fn a_clean_restore_killed_while_it_applies_the_migrations_is_told_as_such_by_the_next_run() {
    let source = Sandbox::new();
    source.apply_migrations();
    source.execute_sql(SEED_SQL);
    source
        .xtask(&["backup", "local", "--data-only"])
        .assert_ok();
    let backup = source.backups().join(only_backup(&source));
    let sb = Sandbox::new();
    let mut restore = spawn_in_group(
        &sb,
        &[
            "restore",
            backup.to_str().unwrap(),
            "--to",
            "local",
            "--clean",
            "--yes",
        ],
    );
    let lock = sb.backups().join(".lock");
    wait_until(
        &mut restore,
        "the migrations apply recorded in the lock",
        || std::fs::read_to_string(&lock).is_ok_and(|t| t.contains("\"migrations_first\":true")),
    );
    kill_group(&mut restore);
    let next = sb.xtask(&["backup", "local"]);
    assert!(
        next.stderr.contains("gone without releasing it")
            && next
                .stderr
                .contains("some of them may be applied to qbtime_db_local")
            && next.stderr.contains("no row of the backup was loaded")
            && !next.stderr.contains("undone, whole"),
        "{}",
        next.all()
    );
}

/// atkDR: a Time Travel restore of prod interrupted (Ctrl-C) after D1 got
/// its request, which D1 made; the tired operator runs the same command
/// again. The re-run's plan and its "To undo it" name the bookmark the
/// database was at after the interrupted restore (its rows as of the
/// target already), and the bookmark from before it, the only way back to
/// the writes the first restore dropped, is printed nowhere: it is left in
/// the journal, under a `done` line that status shows instead.
#[test]
fn a_time_travel_restore_run_again_after_an_interrupted_one_names_the_bookmark_from_before_both() {
    let remote = Remote::new("");
    let home = tempfile::tempdir().unwrap();
    let old = prod_bookmark(&remote, home.path());
    {
        let conn = rusqlite::Connection::open(&remote.db).unwrap();
        conn.busy_timeout(Duration::from_secs(10)).unwrap();
        conn.execute(
            "INSERT INTO companies (name, timezone) VALUES ('Newer Co', 'UTC')",
            [],
        )
        .unwrap();
    }
    let before = prod_bookmark(&remote, home.path());
    let mut restore = slow_time_travel_restore(&remote, home.path(), &old);
    wait_for_request(&remote, &mut restore, 0, |r| {
        r.contains("/time_travel/restore")
    });
    // SAFETY: kill(2) on the group our own child leads (Ctrl-C).
    unsafe { libc::kill(-(restore.id() as i32), libc::SIGINT) };
    let status = restore.wait().unwrap();
    assert_eq!(status.code(), Some(130), "{status:?}");
    remote.server.set_faults(d1_loopback::Faults::default());
    assert_ne!(
        prod_bookmark(&remote, home.path()),
        before,
        "the premise: D1 made the interrupted restore"
    );

    // The dry run, before anything is confirmed, tells it already.
    let args = ["time-travel", "restore", "prod", "--bookmark", &old];
    let dry = remote.xtask(home.path(), &[&args[..], &["--dry-run"]].concat());
    dry.assert_ok();
    assert!(dry.stderr.contains(&before), "{}", dry.all());
    let confirmed = [&args[..], &["--confirm", "qbtime_db_prod"]].concat();
    let again = remote.xtask(home.path(), &confirmed);
    again.assert_ok();
    // Its bookmark is read from a file in backups/: the command to paste
    // shows its plan, to be confirmed, never runs at once.
    let back = format!("cargo xtask time-travel restore prod --bookmark {before}");
    assert!(
        again.stdout.lines().any(|l| l.trim() == back),
        "{}",
        again.stdout
    );
    assert!(
        again.all().contains(&before),
        "the re-run never names bookmark {before}, prod's before the interrupted restore, \
         which alone brings back the writes it dropped:\n{}",
        again.all()
    );
    // The `done` line records it.
    let journal = std::fs::read_to_string(remote.sb.backups().join("time-travel.jsonl")).unwrap();
    let done: serde_json::Value = serde_json::from_str(journal.lines().last().unwrap()).unwrap();
    assert_eq!(done["status"], "done", "{journal}");
    assert_eq!(
        done["bookmark_before_unfinished"],
        before.as_str(),
        "{journal}"
    );
}

/// fxDZ: the next run tells a killed Time Travel restore, its way back
/// included, only when the journal's last line for its database is that
/// restore's `started`; that line was looked up by the environment's short
/// name. With two configurations sharing a backup directory, each with a
/// `prod` of its own database, a restore of the other `prod` journaled
/// since hid this one's undo, and the other's killed restore was told, its
/// undo bookmark too, as one of this `prod`'s database. The lines are
/// matched by the database id they record, as the unfinished-restore
/// warning matches them.
/// The next run is one for prod: a stale lock's way back is told to a run
/// for its own environment only.
#[test]
fn a_killed_time_travel_restore_is_told_by_its_database_not_another_configurations_prod() {
    let remote = Remote::new("");
    let home = tempfile::tempdir().unwrap();
    let sb = &remote.sb;
    std::fs::create_dir_all(sb.backups()).unwrap();
    let (to, undo) = (bookmark("0001"), bookmark("0000"));
    let line = |id: &str, db: &str, status: &str, to: &str, undo: &str| {
        serde_json::json!({
            "at": "2026-11-30T10:00:00Z",
            "started_at": "2026-11-30T10:00:00Z",
            "environment": "prod",
            "database": db,
            "database_id": id,
            "status": status,
            "restore_to": to,
            "bookmark_before": undo,
        })
    };
    let other = |status: &str, to: &str, undo: &str| {
        line(
            "0f0f0f0f-1111-4222-8333-444444444444",
            "other_db_prod",
            status,
            to,
            undo,
        )
    };
    let ours = |status: &str, to: &str, undo: &str| {
        line(
            common::remote::PROD_UUID,
            "qbtime_db_prod",
            status,
            to,
            undo,
        )
    };
    // Each case: the journal, and whether the lock's bookmarks are this
    // prod's way back.
    let cases = [
        // This prod's restore killed; the other prod's restored since.
        (
            [
                ours("started", &to, &undo),
                other("done", &bookmark("0003"), &bookmark("0002")),
            ],
            true,
        ),
        // The other prod's restore killed, after this one's was done.
        (
            [
                ours("done", &bookmark("0003"), &bookmark("0002")),
                other("started", &to, &undo),
            ],
            false,
        ),
    ];
    for (lines, told) in cases {
        let text: String = lines.iter().map(|l| format!("{l}\n")).collect();
        std::fs::write(sb.backups().join("time-travel.jsonl"), &text).unwrap();
        std::fs::write(
            sb.backups().join(".lock"),
            serde_json::json!({
                "pid": 999_999,
                "started_at": "2026-11-30T10:00:00Z",
                "command": "time-travel restore prod",
                "doing": { "kind": "time_travel", "env": "prod", "to": to, "undo": undo },
            })
            .to_string(),
        )
        .unwrap();
        let run = remote.xtask(home.path(), &["backup", "prod"]);
        run.assert_ok();
        let said = &run.stderr;
        assert!(
            said.contains("restoring qbtime_db_prod by Time Travel"),
            "the premise: the stale lock is told\n{}",
            run.all()
        );
        assert_eq!(
            said.contains("may already be back there") && said.contains(&undo),
            told,
            "journal:\n{text}told:\n{}",
            run.all()
        );
    }
}

/// Under a bucket lock, a copy R2 stored cut short (wrangler said "Upload
/// complete") stays under its key until the lock's retention ends: no
/// upload of that backup can replace it. Both the upload that found it and
/// every re-run say so, and give the way on (a new backup, which goes
/// under a key of its own), never "copy it once R2 answers", which no wait
/// makes true.
#[test]
fn an_upload_whose_locked_copy_was_stored_cut_short_says_to_take_a_new_backup() {
    let remote = Remote::new("");
    let home = tempfile::tempdir().unwrap();
    let name = remote.backup_prod_under_a_bucket_lock(home.path());
    remote.server.set_faults(d1_loopback::Faults {
        r2_put_truncate_to: Some(100),
        ..Default::default()
    });
    let first = remote.xtask(home.path(), &["upload", &name, "--env", "prod"]);
    remote.server.set_faults(d1_loopback::Faults::default());
    let again = remote.xtask(home.path(), &["upload", &name, "--env", "prod"]);
    for run in [&first, &again] {
        assert!(!run.ok, "{}", run.all());
        assert!(
            run.stderr.contains("cargo xtask backup prod")
                && run
                    .stderr
                    .contains("the bucket's lock rule (qbtime-prod-lock")
                && !run.stderr.contains("once R2 answers"),
            "{}",
            run.stderr
        );
    }
    assert!(manifest_for(&remote.sb, &name)["offsite"].is_null());
}

/// rvDT: while a Time Travel restore of prod is still running (its lock
/// says so), its journal line `started` is no restore that stopped
/// unfinished: a dry run made meanwhile does not warn of it, nor offer its
/// bookmark as a way back.
#[test]
fn a_restore_still_running_is_not_told_as_one_that_stopped_unfinished() {
    let remote = Remote::new("");
    let home = tempfile::tempdir().unwrap();
    let old = prod_bookmark(&remote, home.path());
    let mut restore = slow_time_travel_restore(&remote, home.path(), &old);
    wait_for_request(&remote, &mut restore, 0, |r| {
        r.contains("/time_travel/restore")
    });
    // Held where it is, alive, its lock and its `started` line in place.
    // SAFETY: kill(2) on the group our own child leads.
    unsafe { libc::kill(-(restore.id() as i32), libc::SIGSTOP) };
    remote.server.set_faults(d1_loopback::Faults::default());
    let dry = remote.xtask(
        home.path(),
        &[
            "time-travel",
            "restore",
            "prod",
            "--bookmark",
            &old,
            "--dry-run",
        ],
    );
    let still_running = restore.try_wait().unwrap().is_none();
    kill_group(&mut restore);
    assert!(still_running, "the premise: the first restore was running");
    assert!(
        !dry.stderr.contains("stopped before D1 answered"),
        "{}",
        dry.all()
    );
}

/// A Time Travel restore that D1 made but whose `done` line the journal
/// could not take (another process held the journal's lock past the
/// append's bound): the restore's undo is on stdout, and the error says
/// the restore was made and not recorded, not only that a file could not
/// be written, which reads as if nothing happened.
#[test]
fn a_time_travel_restore_whose_done_line_cannot_be_written_says_it_was_made() {
    let remote = Remote::new("");
    let home = tempfile::tempdir().unwrap();
    let old = prod_bookmark(&remote, home.path());
    let mut restore = slow_time_travel_restore_command(&remote, home.path(), &old)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    wait_for_request(&remote, &mut restore, 0, |r| {
        r.contains("/time_travel/restore")
    });
    // Its `started` line is written: the `done` one meets the held lock.
    let journal = remote.sb.path().join("backups/time-travel.jsonl");
    let held = std::fs::File::open(&journal).unwrap();
    held.lock().unwrap();
    let run = Run::from_output(restore.wait_with_output().unwrap());
    drop(held);
    assert!(!run.ok, "{}", run.all());
    assert!(run.stdout.contains("To undo it"), "{}", run.all());
    assert!(
        run.stderr.contains("was restored to bookmark")
            && run
                .stderr
                .contains("could not be recorded in the Time Travel journal"),
        "{}",
        run.all()
    );
}

/// The same for `offsite lock`: a bucket lock rule set and read back, but
/// not journaled (the journal's lock held past the append's bound), is
/// told as set and not recorded, not only as a file that could not be
/// written: the rule cannot be taken back, and the operator must know it
/// is there.
#[test]
fn an_offsite_lock_whose_journal_line_cannot_be_written_says_the_rule_is_set() {
    use std::os::unix::fs::OpenOptionsExt;
    let remote = Remote::new("");
    remote.server.add_bucket("qbtime-d1-backups");
    let home = tempfile::tempdir().unwrap();
    remote.backup_prod(home.path());
    let journal = remote.sb.path().join("backups/offsite-locks.jsonl");
    std::fs::OpenOptions::new()
        .create_new(true)
        .write(true)
        .mode(0o600)
        .open(&journal)
        .unwrap();
    remote.server.set_faults(d1_loopback::Faults {
        response_delay_ms: Some(3000),
        response_delay_from: Some("/lock".into()),
        ..Default::default()
    });
    let mut lock = remote
        .xtask_command(home.path(), &common::remote::LOCK_PROD)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    wait_for_request(&remote, &mut lock, 0, |r| {
        r.starts_with("PUT ") && r.contains("/lock")
    });
    let held = std::fs::File::open(&journal).unwrap();
    held.lock().unwrap();
    let run = Run::from_output(lock.wait_with_output().unwrap());
    drop(held);
    assert!(!run.ok, "{}", run.all());
    assert_eq!(
        remote
            .server
            .r2_lock("qbtime-d1-backups")
            .as_array()
            .unwrap()
            .len(),
        1,
        "the premise: the rule was set"
    );
    assert!(
        run.stderr.contains("the lock rule qbtime-prod-lock")
            && run.stderr.contains("is set on r2://qbtime-d1-backups")
            && run
                .stderr
                .contains("could not be recorded in the offsite lock journal"),
        "{}",
        run.all()
    );
    assert_eq!(std::fs::read(&journal).unwrap(), b"");
}

/// The prune of these tests: the newest backup of the day is kept, every
/// older one deleted.
fn prune_to_one(sb: &Sandbox) -> Run {
    sb.xtask(&[crate::output::KEEP_ONE_LOCAL, &["--yes"]].concat())
}

/// SIGSTOP, or SIGCONT, to the child alone.
fn signal(child: &Child, signal: libc::c_int) {
    assert_eq!(unsafe { libc::kill(child.id() as i32, signal) }, 0);
}

/// Whether process `pid` holds a shared lock (`flock`) on the file whose
/// inode is `ino`, as /proc/locks lists it.
fn holds_shared_lock(pid: u32, ino: u64) -> bool {
    let (pid, ino) = (pid.to_string(), ino.to_string());
    std::fs::read_to_string("/proc/locks")
        .unwrap()
        .lines()
        .map(|l| l.split_whitespace().collect::<Vec<_>>())
        .any(|f| {
            f.len() > 5
                && f[1] == "FLOCK"
                && f[3] == "READ"
                && f[4] == pid
                && f[5].rsplit(':').next() == Some(ino.as_str())
        })
}

/// rvFA2: readers of a backup took no lock, so prune in another terminal
/// deleted a backup that a `verify` was loading, with its manifest: the
/// verify read the whole file through its open handle, then failed (exit
/// 2, "cannot read the manifest"), its verdict lost with the backup. A
/// backup being read is kept by prune, which says so and deletes the rest;
/// the next prune, with no reader, deletes it. A copy of it outside the
/// backup directory is never touched.
#[test]
fn a_prune_while_verify_reads_a_backup_keeps_that_backup_and_deletes_the_rest() {
    let (sb, read) = big_sandbox_with_a_backup();
    let name = d1_file_name(&read);
    sb.xtask(&["backup", "local"]).assert_ok();
    let unread = sb
        .backup_files()
        .into_iter()
        .find(|f| f.ends_with(".sql") && *f != name)
        .unwrap();
    sb.xtask(&["backup", "local"]).assert_ok();
    let decoy = sb.path().join("by-hand.sql");
    std::fs::copy(&read, &decoy).unwrap();
    let bytes = std::fs::read(&read).unwrap();

    let mut verify = sb
        .xtask_command(&["verify", &name])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    wait_for_file(&sb, &mut verify, ".verify-");
    // Held in the middle of its load while prune runs.
    signal(&verify, libc::SIGSTOP);
    let prune = prune_to_one(&sb);
    signal(&verify, libc::SIGCONT);
    let verify = Run::from_output(verify.wait_with_output().unwrap());

    prune.assert_ok();
    assert!(
        prune.stderr.contains(&format!("kept {name}")) && prune.stderr.contains("being read"),
        "{}",
        prune.all()
    );
    assert!(
        prune
            .stdout
            .contains("Deleted 1 backup and their manifests"),
        "{}",
        prune.all()
    );
    verify.assert_ok();
    assert!(verify.stdout.contains("Result: GOOD"), "{}", verify.all());
    let left = sb.backup_files();
    let manifest = name.replace(".sql", ".manifest.json");
    assert!(
        left.contains(&name) && left.contains(&manifest) && !left.contains(&unread),
        "{left:?}"
    );
    assert_eq!(std::fs::read(&read).unwrap(), bytes);
    assert_eq!(manifest_for(&sb, &name)["verification"]["outcome"], "good");

    // No one reads it now: the next prune deletes it, and only it.
    prune_to_one(&sb).assert_ok();
    assert!(
        !sb.backup_files().contains(&name),
        "{:?}",
        sb.backup_files()
    );
    assert_eq!(std::fs::read(&decoy).unwrap(), bytes, "the copy outside");
}

/// The same for a restore: the backup it planned from is kept until it is
/// loaded, instead of deleted between the plan and the load (the restore
/// then took its safety backup and failed with "cannot read …: No such
/// file or directory"). The restore holds the backup lock from before its
/// plan, so the prune is refused (exit 4) and deletes nothing.
#[test]
fn a_prune_while_restore_reads_its_backup_leaves_it_for_the_restore_to_load() {
    let (sb, read) = big_sandbox_with_a_backup();
    let name = d1_file_name(&read);
    let rows = sb.query("SELECT count(*) AS n FROM notifications");
    // A third: the newer backup holds fewer rows, not far fewer, which
    // prune would keep the older one for (the last copy before a fall).
    sb.execute_sql("DELETE FROM notifications WHERE id % 3 = 0;");
    sb.xtask(&["backup", "local"]).assert_ok();
    let ino = std::os::unix::fs::MetadataExt::ino(&std::fs::metadata(&read).unwrap());

    let mut restore = sb
        .xtask_command(&["restore", &name, "--to", "local", "--replace", "--yes"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let pid = restore.id();
    wait_until(&mut restore, "a shared lock on the backup it reads", || {
        holds_shared_lock(pid, ino)
    });
    signal(&restore, libc::SIGSTOP);
    let prune = prune_to_one(&sb);
    signal(&restore, libc::SIGCONT);
    let restore = Run::from_output(restore.wait_with_output().unwrap());

    assert!(
        prune.code == Some(4) && prune.stderr.contains("(`restore into local`, started "),
        "{}",
        prune.all()
    );
    restore.assert_ok();
    assert_eq!(sb.query("SELECT count(*) AS n FROM notifications"), rows);
    prune_to_one(&sb).assert_ok();
    assert!(
        !sb.backup_files().contains(&name),
        "{:?}",
        sb.backup_files()
    );
}

/// The file name of a path in the backup directory.
fn d1_file_name(path: &std::path::Path) -> String {
    path.file_name().unwrap().to_str().unwrap().to_owned()
}

/// rvO 7: a prune at a terminal answered `y` said only "not confirmed;
/// nothing was deleted", not that the answer it waits for is `yes`.
#[test]
fn a_prune_answered_y_says_to_type_yes_and_deletes_nothing() {
    let (sb, _old) = sandbox_with_an_old_backup();
    let held = sb.backups_held();
    let mut prune = InATerminal::start(&sb, crate::output::KEEP_ONE_LOCAL);
    assert!(prune.prints("Type yes"), "{}", prune.seen());
    prune.answer("y");
    let (code, out) = prune.end();
    assert_eq!(code, Some(3), "{out}");
    assert!(
        out.contains("nothing was deleted") && out.contains("only `yes` confirms"),
        "the refusal does not say that only `yes` confirms:\n{out}"
    );
    assert_eq!(sb.backups_held(), held);
}

/// rvW 2: a local restore killed (`kill -9`, a machine that dies) while it
/// checks the database it has just loaded. The load had committed, but the
/// lock was released before the check: the next run said nothing, so no
/// one was told the database holds the backup, unchecked, nor where the
/// safety backup is.
#[test]
fn a_local_restore_killed_while_it_checks_its_load_is_told_loaded_and_unchecked() {
    let (sb, backup, mut restore) = a_local_restore_under_way();
    let lock = sb.backups().join(".lock");
    wait_until(
        &mut restore,
        "the load recorded as in, its check pending",
        || std::fs::read_to_string(&lock).is_ok_and(|t| t.contains("\"checking\":true")),
    );
    kill_group(&mut restore);
    told_loaded_and_unchecked(&sb, &backup);
}

/// rvW 1: the same restore, its terminal gone (SIGHUP) once its load is
/// in. The lock kept its record of the load ("loading"), and the next run
/// said "a load that did not finish is undone, whole, when qbtime_db_local
/// is next opened": false, the load had committed.
#[test]
fn a_local_restore_whose_terminal_closed_after_its_load_is_told_loaded_and_unchecked() {
    let (sb, backup, mut restore) = a_local_restore_under_way();
    let out = sb.path().join("restore.out");
    wait_until(&mut restore, "the load's `Loaded` line", || {
        std::fs::read_to_string(&out).is_ok_and(|t| t.contains("Loaded the dump's"))
    });
    signal_group(&restore, libc::SIGHUP);
    let status = restore.wait().unwrap();
    assert_eq!(status.code(), Some(129), "{status:?}");
    told_loaded_and_unchecked(&sb, &backup);
}

/// A local D1 of a hundred thousand notifications (a check long enough to
/// land a signal in), a backup of it, a row added since, and `restore
/// BACKUP --to local --replace --yes` started in a process group of its
/// own, its stdout in `restore.out` in the sandbox.
fn a_local_restore_under_way() -> (Sandbox, std::path::PathBuf, Child) {
    let (sb, backup) = big_sandbox_with_a_backup();
    sb.execute_sql("INSERT INTO companies (name) VALUES ('added after the backup');");
    let out = std::fs::File::create(sb.path().join("restore.out")).unwrap();
    let restore = sb
        .xtask_command(&[
            "restore",
            backup.to_str().unwrap(),
            "--to",
            "local",
            "--replace",
            "--yes",
        ])
        .stdout(out)
        .stderr(Stdio::null())
        .process_group(0)
        .spawn()
        .unwrap();
    (sb, backup, restore)
}

/// The next run after a local restore stopped once its load of `backup`
/// was in: it says the database holds that backup, unchecked, how to
/// check it, and the safety backup's restore as the way back; never that
/// the load is undone.
fn told_loaded_and_unchecked(sb: &Sandbox, backup: &std::path::Path) {
    let name = d1_file_name(backup);
    let safety = sb.backups().join(only_backup_but(sb, &name));
    let next = sb.xtask(&["backup", "local"]);
    next.assert_ok();
    let said = &next.stderr;
    assert!(
        said.contains(&format!("qbtime_db_local holds {name}, unchecked")),
        "{said}"
    );
    assert!(
        said.contains(&format!("cargo xtask diff {} live:local", backup.display())),
        "{said}"
    );
    assert!(
        said.contains(&format!(
            "restore the safety backup taken before it:\n  cargo xtask restore {} --to local \
             --replace --yes\n",
            safety.display()
        )),
        "{said}"
    );
    assert!(!said.contains("undone"), "{said}");
}

/// Whether any process of the process group `group` is left.
fn group_lives(group: u32) -> bool {
    group_runs(group, "")
}

/// A local D1 with the seed rows, and a migration pending, 0005_slow.sql,
/// whose apply takes long enough (seconds) to land a signal in.
fn sandbox_with_a_slow_migration() -> Sandbox {
    sandbox_with_a_pending_migration(
        "0005_slow.sql",
        // Slow on the database's rows, quick on the plan's empty tables: every
        // pending migration is tried in memory first (NS), on a loaded machine
        // past the trial's 15 s, and one as slow there is refused before it
        // starts.
        "CREATE TABLE slow AS WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n \
         WHERE i < 40000000 * (SELECT count(*) > 0 FROM accounts)) SELECT count(*) AS c FROM n;\n",
    )
}

/// rvAA: `migrate local` killed with SIGKILL, the xtask alone (the OOM
/// killer, `kill -9 PID`), while its wrangler applies a slow migration.
/// wrangler and its workerd must not run on, unwatched, to commit the
/// migration later: they are stopped with the xtask, and while one still
/// lives the next run refuses (the lock held by it, or the database open),
/// and never tells that "nothing was applied by this run", which the
/// orphan would then belie. wrangler is sent SIGTERM as the xtask dies,
/// and ends; a migration its workerd already runs may commit first, which
/// the refusal says ("may yet commit"). Its end is not timed (on a loaded
/// machine it took over 5 s): they are gone within 2 minutes, and then a
/// run applies the migration, once, or finds it applied.
#[test]
fn a_local_migrate_killed_alone_leaves_no_wrangler_applying_behind() {
    let sb = sandbox_with_a_slow_migration();
    let mut migrate = spawn_in_group(&sb, &["migrate", "local", "--yes"]);
    let pid = migrate.id();
    wait_until(&mut migrate, "workerd applying the migration", || {
        group_runs(pid, "d1 migrations apply") && group_runs(pid, "workerd")
    });
    std::thread::sleep(Duration::from_secs(3));
    // SAFETY: kill(2) of our own, not yet reaped child.
    assert_eq!(unsafe { libc::kill(pid as i32, libc::SIGKILL) }, 0);
    migrate.wait().unwrap();
    let left = Instant::now() + Duration::from_secs(120);

    let next = sb.xtask(&["migrate", "local", "--yes"]);
    eprintln!("{}", next.all());
    while group_lives(pid) && Instant::now() < left {
        std::thread::sleep(Duration::from_millis(100));
    }
    let orphaned = group_lives(pid);
    // Whatever the test found, nothing of it is left to run on.
    // SAFETY: kill(2) of a group of our own; none left is no error here.
    unsafe { libc::kill(-(pid as i32), libc::SIGKILL) };
    assert!(
        !next.all().contains("nothing was applied"),
        "the next run said nothing was applied while the killed run's wrangler still \
         applied:\n{}",
        next.all()
    );
    assert!(
        matches!(next.code, Some(0 | 3 | 4)),
        "the next run neither migrated nor refused:\n{}",
        next.all()
    );
    assert!(
        !orphaned,
        "the killed migrate's wrangler or workerd still ran 2 minutes later"
    );
    if next.code == Some(4) {
        assert!(next.stderr.contains("may yet commit"), "{}", next.all());
    }
    sb.xtask(&["migrate", "local", "--yes"]).assert_ok();
    let applied = sb.query("SELECT name FROM d1_migrations WHERE name = '0005_slow.sql'");
    assert_eq!(applied[0].len(), 1, "{applied:?}");
}

/// JE: a remote migrate applied a migration written after its plan was
/// shown (here while the name is asked): wrangler applies whatever is in
/// migrations/ when it runs. Refused (exit 3), naming the file; prod's
/// d1_migrations gains nothing.
#[test]
fn a_remote_migrate_refuses_a_migration_added_after_its_plan_was_shown() {
    let remote = Remote::with_migrations("", 3);
    let home = tempfile::tempdir().unwrap();
    let cmd = remote.xtask_command(home.path(), &["migrate", "prod"]);
    let mut migrate = InATerminal::of(cmd);
    add_a_migration_at_the_question(&mut migrate, remote.sb.path(), "qbtime_db_prod");
    let (code, out) = migrate.end();
    assert_eq!(code, Some(3), "{out}");
    assert!(out.contains("0005_surprise.sql"), "{out}");
    assert!(!out.contains("Applied "), "{out}");
    let applied = query_file(&remote.db, "SELECT name FROM d1_migrations");
    assert_eq!(applied[0].len(), 3, "{applied:?}\n{out}");
    assert!(!remote.live_counts().contains_key("surprise"), "{out}");
}

/// JT: remotely too, a migration written into migrations/ as wrangler
/// starts (after the tool's last look, before wrangler's own read) is not
/// applied: wrangler applies the plan's files from a private copy, to the
/// same remote database.
#[test]
fn a_remote_migrate_applies_only_its_plan_when_a_migration_is_added_as_wrangler_starts() {
    let remote = Remote::with_migrations("", 3);
    let home = tempfile::tempdir().unwrap();
    let args = ["migrate", "prod", "--confirm", "qbtime_db_prod"];
    let mut cmd = remote.xtask_command(home.path(), &args);
    let file = remote.sb.path().join("migrations/0005_surprise.sql");
    let _hook = writing_as_migrations_apply_starts(&mut cmd, &file, "CREATE TABLE surprise (x);\n");
    let run = Run::from_output(cmd.output().unwrap());
    run.assert_ok();
    assert!(file.exists(), "the preload did not run:\n{}", run.all());
    let applied = query_file(&remote.db, "SELECT name FROM d1_migrations ORDER BY id");
    assert_eq!(applied[0].len(), 4, "{applied:?}\n{}", run.all());
    assert_eq!(applied[0][3]["name"], "0004_audit_log.sql", "{applied:?}");
    assert!(
        !remote.live_counts().contains_key("surprise"),
        "{}",
        run.all()
    );
}

/// KJ: Ctrl-C (SIGINT to the whole group, as a terminal sends it) while a
/// local `restore --via-wrangler` has wrangler run the backup against the
/// local D1. It said "nothing was handed to D1: wrangler was stopped
/// before it had uploaded the backup for its import", the words of a
/// remote import: a local one uploads nothing, and D1's import API is not
/// what ran. It says what is true of the local D1 (wrangler runs the file
/// against it as one batch, all or nothing), and the local D1 is as it was.
#[test]
fn an_interrupted_local_restore_via_wrangler_says_what_is_true_of_the_local_d1() {
    let (sb, _) = big_sandbox_with_a_backup();
    let before = sb.query("SELECT count(*) AS n FROM notifications");
    let args = "restore latest:local --to local --replace --yes --via-wrangler";
    let args: Vec<&str> = args.split(' ').collect();
    let mut restore = spawn_piped_in_group(&sb, &args);
    let group = restore.id();
    // The load's wrangler, given the file it runs (not an earlier one
    // that reads the target).
    wait_until(&mut restore, "wrangler's load", || {
        group_runs(group, "restore-local.sql")
    });
    // SAFETY: kill(2) on the group our own child leads.
    unsafe { libc::kill(-(group as i32), libc::SIGINT) };
    let run = Run::from_output(restore.wait_with_output().unwrap());
    assert_eq!(run.code, Some(130), "{}", run.all());
    assert!(!run.stderr.contains("uploaded"), "{}", run.stderr);
    assert!(!run.stderr.contains("handed to D1"), "{}", run.stderr);
    assert!(
        run.stderr.contains("the local D1") && run.stderr.contains("all or nothing"),
        "{}",
        run.stderr
    );
    assert_eq!(sb.query("SELECT count(*) AS n FROM notifications"), before);
}

/// LC 1: `migrate local` killed (`kill -9`, a machine that dies) while its
/// wrangler applies a migration, its pre-migration backup taken. The next
/// run that takes the lock told it, but `status`, what a careful operator
/// runs first after a crash, said nothing: it now says that the migrate
/// stopped unfinished, that migrations may be half applied, and the
/// pre-migration backup's restore, in the words the next run uses.
#[test]
fn status_after_a_local_migrate_killed_mid_apply_says_it_stopped_unfinished_and_the_way_back() {
    let sb = sandbox_with_a_slow_migration();
    let lock = sb.backups().join(".lock");
    let mut migrate = spawn_in_group(&sb, &["migrate", "local", "--yes"]);
    wait_until(&mut migrate, "the lock recording the migration", || {
        std::fs::read_to_string(&lock).is_ok_and(|t| t.contains("\"migrating\""))
    });
    kill_group(&mut migrate);
    let backup = only_backup_but(&sb, "none");

    let status = sb.xtask(&["status"]);
    let said = status.all();
    assert!(said.contains("`migrate local`"), "{said}");
    assert!(
        said.contains("stopped unfinished")
            && said
                .contains("applying migrations to qbtime_db_local, some of which may be applied")
            && said.contains(&backup),
        "status does not say that the killed migrate stopped unfinished, what it leaves, nor \
         the pre-migration backup {backup} that goes back:\n{said}"
    );
}
