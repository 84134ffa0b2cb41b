//! rvCI: a hard link in the local D1 state. A name beside the database
//! (`ln FILE <id>.sqlite-shm`), or the database's own, can be a second
//! name of a file outside the checkout, and a checkout copied with
//! `cp -al` shares every file of `.wrangler/state` with the original:
//! SQLite writes the database's pages, its log and its index through the
//! name, even to read it, and a restore's chmod reached the file too. Every
//! command that opens, writes or chmods the local D1 refuses (exit 3)
//! before anything is opened or wrangler started, naming the file and the
//! fix; the file outside keeps its bytes and its mode.

use crate::common::*;
use std::path::{Path, PathBuf};

/// A file outside the sandbox, on its file system (a hard link cannot
/// cross one), mode 0644.
struct Decoy {
    _dir: tempfile::TempDir,
    path: PathBuf,
}

impl Decoy {
    fn text(text: &str) -> Decoy {
        let decoy = Decoy::empty("decoy.txt");
        std::fs::write(&decoy.path, text).unwrap();
        decoy.readable()
    }

    /// Another SQLite database, with a table and a row of its own.
    fn database() -> Decoy {
        let decoy = Decoy::empty("other.sqlite");
        execute_file(
            &decoy.path,
            "CREATE TABLE notes (body TEXT); INSERT INTO notes VALUES ('kept');",
        );
        decoy.readable()
    }

    fn empty(name: &str) -> Decoy {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join(name);
        Decoy { _dir: dir, path }
    }

    fn readable(self) -> Decoy {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::Permissions::from_mode(0o644);
        std::fs::set_permissions(&self.path, mode).unwrap();
        self
    }

    /// Its bytes' sha256 and its mode: what a write or a chmod through
    /// another name changes.
    fn sealed(&self) -> (String, u32) {
        use std::os::unix::fs::PermissionsExt;
        let meta = std::fs::metadata(&self.path).unwrap();
        let bytes = std::fs::read(&self.path).unwrap();
        (sha256_hex(&bytes), meta.permissions().mode() & 0o7777)
    }

    /// Gives it the name of the local D1 file with `suffix` (`""`, `-wal`,
    /// `-shm`, `-journal`) as a second name; returns that name.
    fn linked_as(&self, sb: &Sandbox, suffix: &str) -> PathBuf {
        let name = PathBuf::from(format!("{}{suffix}", sb.local_d1_file().display()));
        let _ = std::fs::remove_file(&name);
        std::fs::hard_link(&self.path, &name).unwrap();
        name
    }
}

/// A sandbox with the migrations applied, the seed rows and a backup,
/// `latest:local`.
fn backed_up() -> Sandbox {
    let sb = Sandbox::new();
    sb.apply_migrations();
    sb.execute_sql(SEED_SQL);
    sb.xtask(&["backup", "local"]).assert_ok();
    sb
}

/// `args` run in `sb` is refused (exit 3), naming `linked` as a hard link
/// and the copy that gives it a file of its own; `decoy` keeps its bytes
/// and mode, and backups/ is as it was.
#[track_caller]
fn refused_untouched(sb: &Sandbox, args: &[&str], linked: &Path, decoy: &Decoy) {
    let run = untouched(sb, args, linked, decoy);
    assert_eq!(run.code, Some(3), "{args:?}:\n{}", run.all());
}

/// `args` run in `sb`, naming `linked` as a hard link and the copy that
/// gives it a file of its own; `decoy` keeps its bytes and mode, and
/// backups/ is as it was.
#[track_caller]
fn untouched(sb: &Sandbox, args: &[&str], linked: &Path, decoy: &Decoy) -> Run {
    let before = (decoy.sealed(), sb.backup_files());
    let run = sb.xtask(args);
    let shown = linked.display().to_string();
    let own = format!("{shown}.own");
    assert!(
        run.all().contains(&format!("{shown} is a hard link"))
            && run
                .all()
                .contains(&format!("`cp {shown} {own} && mv {own} {shown}`")),
        "{args:?}:\n{}",
        run.all()
    );
    assert_eq!(
        (decoy.sealed(), sb.backup_files()),
        before,
        "{args:?} wrote the file outside, or to backups/:\n{}",
        run.all()
    );
    run
}

/// Repro A: the write-ahead index linked to a file outside. `backup local`
/// said GOOD and the file held SQLite's WAL index; `diff … live:local` did
/// the same. Every command reading or writing the local D1 refuses it,
/// and a `-journal` too.
#[test]
fn a_write_ahead_index_hard_linked_outside_is_refused_and_what_it_names_left_as_it_was() {
    let sb = backed_up();
    let decoy = Decoy::text("not a write-ahead index\n");
    let shm = decoy.linked_as(&sb, "-shm");
    for args in [
        &["backup", "local"][..],
        &["backup", "local", "--via-wrangler"],
        &["backup", "local", "--dry-run"],
        &["diff", "latest:local", "live:local"],
        &replacing_local("latest:local"),
        &["migrate", "local", "--yes"],
        &["drill", "--to", "local", "--from", "local", "--yes"],
    ] {
        refused_untouched(&sb, args, &shm, &decoy);
    }
    // The drill, refused for the machine's state, blamed no backup.
    assert!(!sb.path().join("docs/restore-drills.md").exists());
    // `migrate --check` says the database did not answer and why, as it
    // says of a symbolic link there, and goes on with the backup's record.
    let check = untouched(&sb, &["migrate", "--check", "local"], &shm, &decoy);
    assert!(check.all().contains("did not answer"), "{}", check.all());
    std::fs::remove_file(&shm).unwrap();
    let journal = decoy.linked_as(&sb, "-journal");
    refused_untouched(&sb, &["backup", "local"], &journal, &decoy);
}

/// Repro B: the database file itself a second name of another database.
/// A `--replace` restore dropped its tables, loaded the backup's rows and
/// made it 0600 through the link; `migrate local` had wrangler apply the
/// pending migration there. Both refuse before anything is opened (no
/// wrangler started), and so does every reader.
#[test]
fn a_local_d1_file_hard_linked_to_another_database_is_refused_and_that_database_left_as_it_was() {
    let sb = backed_up();
    let decoy = Decoy::database();
    let file = sb.local_d1_file();
    for suffix in ["-wal", "-shm"] {
        let _ = std::fs::remove_file(format!("{}{suffix}", file.display()));
    }
    decoy.linked_as(&sb, "");
    std::fs::write(
        sb.path().join("migrations/0099_probe.sql"),
        "CREATE TABLE probe (id INTEGER PRIMARY KEY);\n",
    )
    .unwrap();
    let via_wrangler = [&replacing_local("latest:local")[..], &["--via-wrangler"]].concat();
    for args in [
        &replacing_local("latest:local")[..],
        &via_wrangler,
        &["migrate", "local", "--yes"],
        &["migrate", "local", "--dry-run"],
        &["backup", "local"],
        &["diff", "latest:local", "live:local"],
    ] {
        refused_untouched(&sb, args, &file, &decoy);
    }
}

/// Repro C: the write-ahead log linked to a file outside. A `--replace`
/// restore wrote its frames over the file and made it 0600.
#[test]
fn a_write_ahead_log_hard_linked_outside_is_refused_by_a_restore_and_left_as_it_was() {
    let sb = backed_up();
    let decoy = Decoy::text("notes of mine\n");
    let wal = decoy.linked_as(&sb, "-wal");
    refused_untouched(&sb, &replacing_local("latest:local"), &wal, &decoy);
}

/// The realistic case: a checkout copied with `cp -al` shares its local D1
/// with the original. The copy's commands refuse it, naming the copy of
/// `.wrangler/state` that gives every file of it its own; once that is
/// run, a backup and a `--replace` restore work in the copy and the
/// original's local D1 is as it was.
#[test]
fn a_checkout_copied_with_cp_al_is_refused_until_its_local_d1_has_files_of_its_own() {
    let original = Sandbox::new();
    original.apply_migrations();
    original.execute_sql(SEED_SQL);
    // Every file of the original's state, by its bytes.
    let sealed = |sb: &Sandbox| -> Vec<(PathBuf, String)> {
        let mut files = Vec::new();
        let mut dirs = vec![sb.path().join(".wrangler/state")];
        while let Some(dir) = dirs.pop() {
            for entry in std::fs::read_dir(dir).unwrap() {
                let path = entry.unwrap().path();
                match path.is_dir() {
                    true => dirs.push(path),
                    false => files.push(path),
                }
            }
        }
        files.sort();
        { files.into_iter() }
            .map(|f| {
                let sha = sha256_hex(&std::fs::read(&f).unwrap());
                (f, sha)
            })
            .collect()
    };
    let before = sealed(&original);
    let sb = original.copied_with_hard_links();
    let run = sb.xtask(&["backup", "local"]);
    assert_eq!(run.code, Some(3), "{}", run.all());
    let state = sb.path().join(".wrangler/state");
    let fix = format!(
        "cp -a {0} {0}.own && rm -r {0} && mv {0}.own {0}",
        state.display()
    );
    assert!(run.stderr.contains(&format!("`{fix}`")), "{}", run.all());
    let ran = std::process::Command::new("sh")
        .args(["-c", &fix])
        .status()
        .unwrap();
    assert!(ran.success());
    sb.xtask(&["backup", "local"]).assert_ok();
    restore_replacing(&sb, "latest:local").assert_ok();
    assert_eq!(sealed(&original), before, "the original's local D1 changed");
}
