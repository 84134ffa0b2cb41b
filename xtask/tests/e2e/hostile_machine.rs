//! A hostile machine: a disk that fills (a file-size limit, as `ulimit -f`
//! sets it), a low open-files limit, TMPDIR missing, no `git` on PATH, a
//! checkout whose path is not UTF-8. Each ends in a message that names the
//! cause and the fix, with no guard skipped and the target unchanged.

use crate::common;

use std::ffi::OsStr;
use std::os::unix::ffi::OsStrExt as _;
use std::os::unix::process::CommandExt as _;
use std::path::{Path, PathBuf};
use std::process::Command;

use common::*;

/// 20,000 customers of one company: a dump of about 3.9 MB, a local D1
/// file of about 3.1 MB.
const MANY_CUSTOMERS: &str = "INSERT INTO companies(name) VALUES('Acme');\n\
    WITH RECURSIVE c(i) AS (SELECT 1 UNION ALL SELECT i+1 FROM c WHERE i<20000) \
    INSERT INTO customers(company_id,qbt_customer_id,name,email) \
    SELECT 1, 'q'||i, 'Customer number '||i||' with a long-ish name', 'c'||i||'@example.com' FROM c;\n";

fn seeded() -> Sandbox {
    let sb = Sandbox::new();
    sb.apply_migrations();
    sb.execute_sql(MANY_CUSTOMERS);
    sb
}

/// `cmd` run with `resource` limited to `value` (as `ulimit` sets it).
fn run_limited(mut cmd: Command, resource: libc::__rlimit_resource_t, value: u64) -> Run {
    // SAFETY: setrlimit is async-signal-safe; nothing else runs here.
    unsafe {
        cmd.pre_exec(move || {
            let limit = libc::rlimit {
                rlim_cur: value,
                rlim_max: value,
            };
            if libc::setrlimit(resource, &limit) != 0 {
                return Err(std::io::Error::last_os_error());
            }
            Ok(())
        });
    }
    Run::from_output(cmd.stdin(std::process::Stdio::null()).output().unwrap())
}

fn backup_sql_files(dir: &Path) -> Vec<String> {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return Vec::new();
    };
    let mut names: Vec<String> = entries
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| n.starts_with("backup-") && !n.ends_with(".manifest.json"))
        .collect();
    names.sort();
    names
}

/// A directory of links to every program on PATH but `git`.
fn path_without_git() -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    let path = std::env::var_os("PATH").unwrap();
    for entry in std::env::split_paths(&path) {
        let Ok(programs) = std::fs::read_dir(&entry) else {
            continue;
        };
        for program in programs.flatten() {
            let name = program.file_name();
            let link = dir.path().join(&name);
            if name == "git" || link.symlink_metadata().is_ok() {
                continue;
            }
            std::os::unix::fs::symlink(program.path(), link).unwrap();
        }
    }
    dir
}

/// A backup into a git checkout whose .gitignore does not cover backups/
/// is refused ("git would not ignore"). Without `git` on PATH the tool
/// cannot ask, and today it says the directory "is not inside a git work
/// tree" (false: `.git` is right there) and writes the backup, customer
/// PII, where the next `git add .` picks it up. It should refuse, naming
/// git as missing.
#[test]
fn without_git_on_path_a_backup_that_git_would_not_ignore_is_still_refused() {
    let sb = seeded();
    std::fs::write(sb.path().join(".gitignore"), ".wrangler/\n").unwrap();
    // With git, refused.
    sb.xtask(&["backup", "local"])
        .assert_refused("git would not ignore");
    assert!(backup_sql_files(&sb.backups()).is_empty());

    let bin = path_without_git();
    let mut cmd = sb.xtask_command(&["backup", "local"]);
    cmd.env("PATH", bin.path());
    let run = Run::from_output(cmd.output().unwrap());
    assert!(
        !run.ok,
        "a backup git would not ignore was written because git is not on PATH:\n{}",
        run.all()
    );
    assert!(
        !run.stderr.contains("is not inside a git work tree"),
        "{}",
        run.all()
    );
    assert!(run.stderr.contains("git"), "names git: {}", run.all());
    assert!(
        backup_sql_files(&sb.backups()).is_empty(),
        "{:?}",
        sb.backup_files()
    );
}

/// A checkout whose path holds bytes that are not UTF-8 (a Latin-1 user
/// name, say): `git rev-parse --show-toplevel` prints that path, the tool
/// reads it as UTF-8 and fails, and takes the failure for "not inside a
/// git work tree": the "git would not ignore" guard is skipped and the
/// backup is written into a checkout that does not ignore it.
#[test]
fn a_checkout_whose_path_is_not_utf8_still_refuses_a_backup_git_would_not_ignore() {
    let sb = seeded();
    let odd = sb.path().join(OsStr::from_bytes(b"qbtime-caf\xe9"));
    std::fs::create_dir(&odd).unwrap();
    for item in ["wrangler.toml", "backups.toml", "migrations", ".wrangler"] {
        let status = Command::new("cp")
            .arg("-a")
            .arg(sb.path().join(item))
            .arg(&odd)
            .status()
            .unwrap();
        assert!(status.success());
    }
    // A checkout of its own, with no .gitignore at all.
    let git = Command::new("git")
        .args(["init", "-q", "-b", "main"])
        .current_dir(&odd)
        .status()
        .unwrap();
    assert!(git.success());
    let probe = odd.join("backups/backup-local-x.sql");
    let ignored = Command::new("git")
        .arg("check-ignore")
        .arg("-q")
        .arg(&probe)
        .current_dir(&odd)
        .status()
        .unwrap();
    assert_eq!(ignored.code(), Some(1), "git itself says: not ignored");

    let mut cmd = Command::new(env!("CARGO_BIN_EXE_xtask"));
    cmd.arg("--config")
        .arg(odd.join("wrangler.toml"))
        .args(["backup", "local"])
        .current_dir(&odd)
        .env("WRANGLER_SEND_METRICS", "false")
        .env_remove("QBTIME_BACKUP_DIR")
        .env_remove("QBTIME_WRANGLER_CONFIG")
        .env_remove("CLOUDFLARE_API_TOKEN");
    let run = Run::from_output(cmd.output().unwrap());
    assert!(
        !run.ok,
        "a backup git would not ignore was written:\n{}",
        run.all()
    );
    assert!(
        !run.stderr.contains("is not inside a git work tree"),
        "{}",
        run.all()
    );
    assert!(
        backup_sql_files(&odd.join("backups")).is_empty(),
        "written where git would pick it up"
    );
}

/// A restore into local D1 whose load meets a full disk (a file-size limit
/// below the local D1 file's size, above its safety backup's): the load is
/// rolled back and the target is unchanged, but the error blames the
/// backup's data ("the restore broke a foreign key"), sending the operator
/// after a broken backup, when the disk is what failed.
#[test]
fn a_restore_whose_load_meets_a_full_disk_says_so_and_not_a_broken_foreign_key() {
    let sb = seeded();
    sb.xtask(&["backup", "local"]).assert_ok();
    let name = only_backup(&sb);
    sb.execute_sql("DELETE FROM customers WHERE id > 15000;");
    let d1 = sb.local_d1_file();
    let before = std::fs::read(&d1).unwrap();
    // The safety backup (about 2.9 MB) fits; the load's journal and pages
    // (the file is about 3.1 MB) do not.
    let limit = before.len() as u64 - 100_000;
    let cmd = sb.xtask_command(&[
        "restore",
        sb.backups().join(&name).to_str().unwrap(),
        "--to",
        "local",
        "--replace",
        "--yes",
    ]);
    let run = run_limited(cmd, libc::RLIMIT_FSIZE, limit);
    assert_eq!(run.code, Some(1), "{}", run.all());
    assert!(
        run.stderr.contains("safety backup"),
        "the safety backup was taken: {}",
        run.all()
    );
    assert_eq!(
        std::fs::read(&d1).unwrap(),
        before,
        "the target is unchanged"
    );
    assert!(
        !run.stderr.contains("foreign key"),
        "a full disk is blamed on the backup's foreign keys: {}",
        run.stderr
    );
    assert!(
        run.stderr.contains("full") || run.stderr.contains("file-size limit"),
        "names the full disk: {}",
        run.stderr
    );
}

/// A local backup that meets a full disk while it writes its file: the
/// error says the local D1 database "cannot be exported" and names the
/// local D1's SQLite file, as if the database were at fault; it should say
/// that the backup could not be written for want of space, and where.
#[test]
fn a_local_backup_that_meets_a_full_disk_names_the_disk_not_the_database() {
    let sb = seeded();
    let cmd = sb.xtask_command(&["backup", "local"]);
    let run = run_limited(cmd, libc::RLIMIT_FSIZE, 64 << 10);
    assert_eq!(run.code, Some(1), "an error, not a signal: {}", run.all());
    assert!(backup_sql_files(&sb.backups()).is_empty(), "nothing kept");
    assert_no_partials(&sb);
    assert!(
        !run.stderr.contains("cannot export the local D1 database"),
        "the database is blamed for a full disk: {}",
        run.stderr
    );
    assert!(
        run.stderr.contains("full") || run.stderr.contains("file-size limit"),
        "names the full disk: {}",
        run.stderr
    );
    assert!(
        run.stderr.contains(sb.backups().to_str().unwrap()),
        "names the directory to free: {}",
        run.stderr
    );
}

/// A local backup whose read of the local D1 meets a full disk: SQLite
/// grows the file's `-shm` index even to read it, and the error was a bare
/// "disk I/O error: Error code 4874: disk I/O error", with neither the
/// cause nor the fix. It should name the file, the likely causes and the
/// fix, and write nothing.
#[test]
fn a_local_backup_whose_read_meets_a_full_disk_names_the_cause_and_the_fix() {
    let sb = seeded();
    let cmd = sb.xtask_command(&["backup", "local"]);
    let run = run_limited(cmd, libc::RLIMIT_FSIZE, 8 << 10);
    assert_eq!(run.code, Some(1), "an error, not a signal: {}", run.all());
    assert!(backup_sql_files(&sb.backups()).is_empty(), "nothing kept");
    assert_no_partials(&sb);
    assert!(
        run.stderr.contains("cannot read the local D1 database")
            && run.stderr.contains("file-size limit")
            && run.stderr.contains("Free space or fix the cause"),
        "names the cause and the fix: {}",
        run.stderr
    );
    assert!(
        !run.stderr.contains("Error code"),
        "SQLite's bare code: {}",
        run.stderr
    );
}

/// The other side of the message above: a local D1 that another process
/// holds locked (a `sqlite3` shell in exclusive locking mode, a stuck
/// `wrangler dev`) is no full disk. The read meets "database is locked"
/// after its busy timeout, and was told to free space or fix a file-size
/// limit, permissions or memory: it should say another process holds it.
#[test]
fn a_local_backup_of_a_d1_another_process_holds_locked_is_not_told_to_free_space() {
    let sb = seeded();
    let conn = rusqlite::Connection::open(sb.local_d1_file()).unwrap();
    conn.execute_batch("PRAGMA locking_mode = EXCLUSIVE; BEGIN EXCLUSIVE;")
        .unwrap();
    let run = sb.xtask(&["backup", "local"]);
    drop(conn);
    assert!(!run.ok, "the lock was not held: {}", run.all());
    assert!(
        !run.stderr.contains("Free space"),
        "a lock is told as a full disk: {}",
        run.stderr
    );
    assert!(
        run.stderr.contains("another process"),
        "names another process holding it: {}",
        run.stderr
    );
    assert!(backup_sql_files(&sb.backups()).is_empty(), "nothing kept");
}

/// `ulimit -n 32` (a container's default in some CI images): wrangler
/// cannot start workerd (EMFILE) and dies with a Node stack trace, which
/// the tool passes on as it is. It should name the open-files limit and
/// the fix (`ulimit -n`).
#[test]
fn a_low_open_files_limit_is_named_with_its_fix() {
    let sb = seeded();
    let cmd = sb.xtask_command(&["backup", "local", "--via-wrangler"]);
    let run = run_limited(cmd, libc::RLIMIT_NOFILE, 32);
    assert!(!run.ok, "{}", run.all());
    assert!(backup_sql_files(&sb.backups()).is_empty(), "nothing kept");
    assert!(
        run.stderr.contains("ulimit -n") || run.stderr.contains("open files"),
        "names the open-files limit: {}",
        run.stderr
    );
}

/// TMPDIR naming a directory that does not exist (a job's container whose
/// TMPDIR was never created): the error names a private directory under
/// it, but not TMPDIR, the cause and the thing to fix.
#[test]
fn a_missing_tmpdir_is_named_as_tmpdir() {
    let sb = seeded();
    let missing: PathBuf = sb.path().join("no-such-tmp");
    let mut cmd = sb.xtask_command(&["backup", "local"]);
    cmd.env("TMPDIR", &missing);
    let run = Run::from_output(cmd.output().unwrap());
    assert!(!run.ok, "{}", run.all());
    assert!(backup_sql_files(&sb.backups()).is_empty(), "nothing kept");
    assert!(
        run.stderr.contains("TMPDIR"),
        "names TMPDIR: {}",
        run.stderr
    );
}

/// A checkout owned by another user (a backup run with sudo, or in a
/// container, in someone's checkout): git refuses to answer there
/// ("detected dubious ownership", exit 128), and the tool takes that
/// refusal for "not a git repository": the "git would not ignore" guard is
/// skipped and the backup, customer PII, is written into a checkout whose
/// .gitignore does not cover it. `.git` is right there; git could not be
/// asked, and that should refuse, as a missing git does.
#[test]
fn a_checkout_git_refuses_to_read_dubious_ownership_still_refuses_a_backup_git_would_not_ignore() {
    let sb = seeded();
    std::fs::write(sb.path().join(".gitignore"), ".wrangler/\n").unwrap();
    sb.xtask(&["backup", "local"])
        .assert_refused("git would not ignore");
    assert!(backup_sql_files(&sb.backups()).is_empty());

    // The checkout belongs to another user; this process's user is not it.
    let other = if unsafe { libc::geteuid() } == 65534 {
        65533
    } else {
        65534
    };
    let status = Command::new("chown")
        .arg("-R")
        .arg(format!("{other}:{other}"))
        .arg(sb.path())
        .status()
        .unwrap();
    if !status.success() {
        eprintln!("cannot chown the sandbox (not root): nothing to check");
        return;
    }
    let asked = sb.git(&["rev-parse", "--show-toplevel"]);
    assert!(
        asked.stderr.contains("dubious ownership"),
        "git refuses to answer: {}",
        asked.all()
    );

    let run = sb.xtask(&["backup", "local"]);
    assert!(
        !run.ok,
        "a backup git would not ignore was written because git would not answer:\n{}",
        run.all()
    );
    assert!(
        !run.stderr.contains("is not inside a git work tree"),
        "{}",
        run.all()
    );
    assert!(
        backup_sql_files(&sb.backups()).is_empty(),
        "written where the next `git add .` picks it up: {:?}",
        sb.backup_files()
    );
}

/// GIT_DIR left set in the environment (by a dotfiles setup, or a script
/// that exported it) to a repository that is not there: git fails ("not a
/// git repository: ..."), the tool takes it for "no repository" although
/// the project's own `.git` is right there, and writes the backup into a
/// checkout that does not ignore it.
#[test]
fn with_git_dir_set_to_nothing_a_backup_git_would_not_ignore_is_still_refused() {
    let sb = seeded();
    std::fs::write(sb.path().join(".gitignore"), ".wrangler/\n").unwrap();
    let mut cmd = sb.xtask_command(&["backup", "local"]);
    cmd.env("GIT_DIR", sb.path().join("no-such-repository.git"));
    let run = Run::from_output(cmd.output().unwrap());
    assert!(
        !run.ok,
        "a backup git would not ignore was written because GIT_DIR was set:\n{}",
        run.all()
    );
    assert!(
        backup_sql_files(&sb.backups()).is_empty(),
        "{:?}",
        sb.backup_files()
    );
}

/// An encrypted local backup (compressed, then sealed with age) that meets
/// a full disk while it writes: it says the disk is full (or the file-size
/// limit), keeps nothing, and does not blame the database.
#[test]
fn an_encrypted_local_backup_that_meets_a_full_disk_names_the_disk() {
    let sb = seeded();
    let keys = tempfile::tempdir().unwrap();
    let key = keys.path().join("key.txt");
    let recipient = keygen_recipient(&sb.xtask(&["keygen", "--out", key.to_str().unwrap()]));
    let cmd = sb.xtask_command(&["backup", "local", "--encrypt-to", &recipient]);
    let run = run_limited(cmd, libc::RLIMIT_FSIZE, 64 << 10);
    assert_eq!(run.code, Some(1), "an error, not a signal: {}", run.all());
    assert!(backup_sql_files(&sb.backups()).is_empty(), "nothing kept");
    assert_no_partials(&sb);
    assert!(
        run.stderr.contains("full") || run.stderr.contains("file-size limit"),
        "names the full disk: {}",
        run.stderr
    );
    assert!(
        !run.stderr.contains("cannot export the local D1 database"),
        "blames the database: {}",
        run.stderr
    );
}

/// LC 2: TMPDIR naming a directory this user cannot write (`TMPDIR=/sys`,
/// which not even root can): each command that makes temporary files
/// failed with `Permission denied (os error 13)` on a private directory
/// under it, never saying that TMPDIR chose it nor what to do. Each now
/// names the directory, TMPDIR, and the fix (unset TMPDIR, or point it at
/// a directory this user can write), exit 2, with nothing kept.
#[test]
fn a_tmpdir_this_user_cannot_write_is_named_with_its_fix() {
    let (sb, backup) = sandbox_with_a_backup();
    let backup = sb.backups().join(backup);
    let backup = backup.to_str().unwrap();
    let before = sb.backup_files();
    for args in [
        &["backup", "local", "--via-wrangler"][..],
        &["migrate", "local", "--yes"],
        &["restore", backup, "--to", "local", "--replace", "--yes"],
    ] {
        let mut cmd = sb.xtask_command(args);
        cmd.env("TMPDIR", "/sys");
        let run = Run::from_output(cmd.output().unwrap());
        assert_eq!(run.code, Some(2), "{args:?}:\n{}", run.all());
        for told in ["\"/sys\"", "TMPDIR", "unset TMPDIR"] {
            assert!(
                run.stderr.contains(told),
                "{args:?} does not name {told}:\n{}",
                run.stderr
            );
        }
        assert_eq!(sb.backup_files(), before, "{args:?} kept a file");
    }
}

/// `dir` made unwritable while this lives, even to root: mode 555 and,
/// for root (whom modes do not stop), the immutable flag (`chattr +i`,
/// as an operator or a hardening script may set it); writable again
/// when dropped.
struct Unwritable(PathBuf);

impl Unwritable {
    fn new(dir: &Path) -> Unwritable {
        use std::os::unix::fs::PermissionsExt as _;
        std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o555)).unwrap();
        // SAFETY: geteuid(2) has no preconditions.
        if unsafe { libc::geteuid() } == 0 {
            let set = Command::new("chattr").arg("+i").arg(dir).status();
            assert!(set.is_ok_and(|s| s.success()), "chattr +i {dir:?}");
        }
        Unwritable(dir.to_owned())
    }
}

impl Drop for Unwritable {
    fn drop(&mut self) {
        use std::os::unix::fs::PermissionsExt as _;
        let _ = Command::new("chattr").arg("-i").arg(&self.0).status();
        let _ = std::fs::set_permissions(&self.0, std::fs::Permissions::from_mode(0o700));
    }
}

/// LC 3: a backup directory this user cannot write into (`chmod 555`, or
/// immutable, `chattr +i`), its lock file there from an earlier run: a
/// backup, a restore's safety backup and a prune failed with a bare
/// `Permission denied (os error 13)` (or `Operation not permitted`) on a
/// file in it. Each now names the backup directory and the fix (make it
/// writable, or choose another with --backup-dir), exit 2 as the lock's
/// own refusal of such a directory, and leaves it as it was.
#[test]
fn a_backup_directory_this_user_cannot_write_into_is_named_with_its_fix() {
    let (sb, old) = crate::crashes_and_races::sandbox_with_an_old_backup();
    let dir = sb.backups();
    let backup = dir.join(&old);
    let before = sb.backup_files();
    let prune = [crate::output::KEEP_ONE_LOCAL, &["--yes"]].concat();
    let _unwritable = Unwritable::new(&dir);
    let backup = backup.to_str().unwrap();
    let restore = ["restore", backup, "--to", "local", "--replace", "--yes"];
    for args in [&["backup", "local"][..], &restore, &prune] {
        let run = sb.xtask(args);
        assert_eq!(run.code, Some(2), "{args:?}:\n{}", run.all());
        let dir = dir.display().to_string();
        for told in [dir.as_str(), "chmod u+w", "chattr -i", "--backup-dir"] {
            assert!(
                run.stderr.contains(told),
                "{args:?} does not name {told}:\n{}",
                run.stderr
            );
        }
        assert_eq!(sb.backup_files(), before, "{args:?} changed the backups");
    }
}
