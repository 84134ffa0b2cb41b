//! One D1 database: its SQLite file, its bookmarks and its per-database work
//! in progress.
//!
//! Everything that changes lives in [`DbState`] behind the database's
//! `Mutex`, so a request that holds the lock sees and changes one database
//! atomically.
//!
//! Every state the database has been in since the server started has a
//! bookmark and a kept snapshot: a page-for-page copy of the SQLite file,
//! made with SQLite's backup API into a private directory (0700, files
//! 0600) in the server's own private directory each
//! time the bookmark moves. Time Travel restore ([`DbState::restore`])
//! copies a snapshot back over the database's own file, which keeps its
//! path, and is itself a new state with a bookmark and snapshot of its own.
//!
//! Imports are the exception: an import runs on a thread of its own, holding
//! the database's lock for as long as it runs (D1, too, serves no queries
//! while it imports), so the uploads and import jobs that polls look at sit
//! behind a second lock, [`Database::imports`], which an import never holds
//! for long.

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::{Duration, Instant};

use anyhow::Context as _;
use rusqlite::backup::{Backup, StepResult};
use rusqlite::limits::Limit;
use rusqlite::types::Value;
use rusqlite::{Connection, OpenFlags};

use crate::DatabaseSpec;
use crate::export::PendingExport;
use crate::import::Imports;
use crate::query::{self, BatchOutcome, SqlError};
use crate::script::{self, ScriptError, ScriptStats, ScriptText};
use crate::util;

/// D1's limit on the length of SQL text, in bytes.
pub(crate) const MAX_SQL_LENGTH: i32 = 100_000;

/// D1's limit on the length of a string or BLOB, in bytes.
pub(crate) const MAX_VALUE_LENGTH: i32 = 2_000_000;

/// How long to wait for another connection's lock before giving up.
const BUSY_WAIT: Duration = Duration::from_secs(10);

/// A D1 database served by this server.
pub(crate) struct Database {
    pub uuid: String,
    pub name: String,
    /// When the server started serving it, as D1's `created_at` string.
    pub created_at: String,
    /// The SQLite file that holds its data.
    pub path: PathBuf,
    state: Arc<Mutex<DbState>>,
    /// Uploaded import files and import jobs.
    pub imports: Mutex<Imports>,
}

impl Database {
    /// Opens (creating if needed, private) the SQLite file behind a
    /// database; its snapshots are kept in a private directory in `work`.
    pub fn open(spec: &DatabaseSpec, work: &Path) -> anyhow::Result<Database> {
        Ok(Database {
            uuid: spec.uuid.clone(),
            name: spec.name.clone(),
            created_at: util::iso8601(util::now_ms()),
            path: spec.path.clone(),
            state: Arc::new(Mutex::new(DbState::open(&spec.path, work).with_context(
                || {
                    format!(
                        "opening the SQLite file {} for D1 database {}",
                        spec.path.display(),
                        spec.name
                    )
                },
            )?)),
            imports: Mutex::default(),
        })
    }

    /// The database's state, for a thread that outlives the request that
    /// started it.
    pub fn state_handle(&self) -> Arc<Mutex<DbState>> {
        Arc::clone(&self.state)
    }

    /// Locks the uploads and import jobs; a poisoned lock is used as it is.
    pub fn lock_imports(&self) -> MutexGuard<'_, Imports> {
        self.imports.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Locks the database's state. A panic in another request must not take
    /// the database down with it, so a poisoned lock is used as it is.
    pub fn lock(&self) -> MutexGuard<'_, DbState> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

/// What a successful import did.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct ImportDone {
    pub stats: ScriptStats,
    /// The bookmark of the state the import left.
    pub final_bookmark: String,
    /// The database size after the import, in bytes.
    pub size_after: u64,
    /// Whether the import changed rows or the size of the database.
    pub changed_db: bool,
}

/// What a successful Time Travel restore did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Restored {
    /// The bookmark restored to.
    pub bookmark: String,
    /// The bookmark of the state just before the restore, which can itself
    /// be restored to undo it.
    pub previous_bookmark: String,
    /// The bookmark of the state the restore left, a new one.
    pub new_bookmark: String,
}

/// Why a Time Travel restore did not happen. The database is unchanged.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum RestoreError {
    /// The bookmark does not have the shape of a D1 bookmark.
    Malformed,
    /// The bookmark names no state this database has been in.
    Unknown,
    /// The state is known but could not be brought back.
    Failed(String),
}

/// One state the database has been in.
struct KeptState {
    /// When the state began, in milliseconds since the epoch.
    began_ms: i64,
    bookmark: String,
    /// A copy of the database in this state, or why none could be made.
    snapshot: Result<PathBuf, String>,
}

/// The mutable state of one database.
pub(crate) struct DbState {
    conn: Connection,
    /// Counts the states the database has been in; bumped after every
    /// request that may have written and after every outside write.
    version: u64,
    /// The rows changed by all requests so far.
    changes: u64,
    /// Makes bookmarks differ between servers and databases.
    salt: String,
    /// SQLite's `PRAGMA data_version` when last looked at. It changes when
    /// another connection (a test, say) commits to the file.
    data_version: i64,
    /// Every state the database has been in since the server started,
    /// oldest first: its bookmark, when it began and its snapshot.
    history: Vec<KeptState>,
    /// Where the snapshots are kept (0700, in the server's own private
    /// directory); it goes away with the state.
    snapshot_dir: tempfile::TempDir,
    /// Exports started with a first `/export` call and not yet collected.
    pub pending_exports: Vec<PendingExport>,
}

impl DbState {
    fn open(path: &Path, work: &Path) -> anyhow::Result<DbState> {
        util::create_private_file(path)?;
        let conn = Connection::open(path)?;
        // D1 enforces foreign keys and limits the length of SQL text.
        conn.pragma_update(None, "foreign_keys", true)?;
        conn.set_limit(Limit::SQLITE_LIMIT_SQL_LENGTH, MAX_SQL_LENGTH)?;
        // And the length of a string or BLOB, made or read (2 MB): past it,
        // "string or blob too big" (SQLITE_TOOBIG), as D1 answers.
        conn.set_limit(Limit::SQLITE_LIMIT_LENGTH, MAX_VALUE_LENGTH)?;
        // Tests may write to the same file; wait for them rather than fail.
        conn.busy_timeout(Duration::from_secs(10))?;
        let data_version = conn.query_row("PRAGMA data_version", [], |r| r.get(0))?;
        let snapshot_dir = util::private_dir(Some(work), "snapshots-")
            .context("creating a temporary directory for Time Travel snapshots")?;
        let mut state = DbState {
            conn,
            version: 1,
            changes: 0,
            salt: util::random_hex(16),
            data_version,
            history: Vec::new(),
            snapshot_dir,
            pending_exports: Vec::new(),
        };
        state.record_state();
        Ok(state)
    }

    /// The connection, for reading (dumps, statistics).
    pub fn conn(&self) -> &Connection {
        &self.conn
    }

    fn make_bookmark(&self) -> String {
        // D1 bookmarks look like `00000085-0000024c-00004c6d-<32 hex>`, and
        // sort in the order they were made; the leading version keeps that.
        let mut tail = String::with_capacity(32);
        for part in 0..2u64 {
            use std::hash::{Hash, Hasher};
            let mut h = std::collections::hash_map::DefaultHasher::new();
            (&self.salt, self.version, part).hash(&mut h);
            tail.push_str(&format!("{:016x}", h.finish()));
        }
        format!(
            "{:08x}-{:08x}-{:08x}-{tail}",
            self.version & 0xffff_ffff,
            0,
            self.changes & 0xffff_ffff
        )
    }

    /// Moves to a new state and records its bookmark and snapshot.
    fn advance(&mut self, changes: u64) {
        self.version += 1;
        self.changes += changes;
        self.record_state();
    }

    /// Records the current state: its bookmark, made from the current
    /// version, and a snapshot of the database as it is now.
    fn record_state(&mut self) {
        let bookmark = self.make_bookmark();
        let snapshot = self.take_snapshot();
        self.history.push(KeptState {
            began_ms: util::now_ms(),
            bookmark,
            snapshot,
        });
    }

    /// Copies the database as it is now into a new file in the snapshot
    /// directory.
    fn take_snapshot(&self) -> Result<PathBuf, String> {
        let path = self
            .snapshot_dir
            .path()
            .join(format!("{:08}.sqlite", self.version));
        let copy = || -> Result<(), String> {
            util::create_private_file(&path).map_err(|e| e.to_string())?;
            let mut dest = Connection::open(&path).map_err(|e| e.to_string())?;
            // A snapshot only has to outlive the server, not a crash.
            dest.pragma_update(None, "journal_mode", "OFF")
                .and_then(|()| dest.pragma_update(None, "synchronous", "OFF"))
                .map_err(|e| e.to_string())?;
            copy_database(&self.conn, &mut dest)
        };
        copy().map(|()| path.clone()).map_err(|e| {
            let _ = std::fs::remove_file(&path);
            format!("no snapshot could be kept of this state: {e}")
        })
    }

    /// Notices writes made to the file by other connections.
    fn notice_outside_writes(&mut self) {
        let now: Option<i64> = self
            .conn
            .query_row("PRAGMA data_version", [], |r| r.get(0))
            .ok();
        if let Some(now) = now.filter(|v| *v != self.data_version) {
            self.data_version = now;
            self.advance(0);
        }
    }

    /// The bookmark of the database's current state.
    pub fn current_bookmark(&mut self) -> String {
        self.notice_outside_writes();
        self.history
            .last()
            .map(|s| s.bookmark.clone())
            .expect("history always has the first state")
    }

    /// The bookmark of the state the database was in at `at_ms`: the last
    /// state that began no later than that, or the first state if `at_ms`
    /// is before the server started.
    pub fn bookmark_at(&mut self, at_ms: i64) -> String {
        self.notice_outside_writes();
        let index = self.history.partition_point(|s| s.began_ms <= at_ms);
        self.history[index.saturating_sub(1)].bookmark.clone()
    }

    /// Restores the database to the state named by `bookmark`, as D1's Time
    /// Travel does: the snapshot of that state is copied over the database
    /// (whose file keeps its path), and the result is a new state with a
    /// bookmark of its own. The state before the restore stays restorable,
    /// so a restore can be undone by restoring to its `previous_bookmark`.
    /// On error the database is unchanged.
    pub fn restore(&mut self, bookmark: &str) -> Result<Restored, RestoreError> {
        if !is_bookmark(bookmark) {
            return Err(RestoreError::Malformed);
        }
        let previous_bookmark = self.current_bookmark();
        let snapshot = self
            .history
            .iter()
            .rev()
            .find(|s| s.bookmark == bookmark)
            .ok_or(RestoreError::Unknown)?
            .snapshot
            .clone()
            .map_err(RestoreError::Failed)?;
        let source = Connection::open_with_flags(
            &snapshot,
            OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX,
        )
        .map_err(|e| RestoreError::Failed(format!("opening the snapshot: {e}")))?;
        copy_database(&source, &mut self.conn).map_err(RestoreError::Failed)?;
        drop(source);
        // The copy is this connection's own write, which `data_version` may
        // not count; the restore moves the bookmark below either way.
        if let Ok(now) = self.conn.query_row("PRAGMA data_version", [], |r| r.get(0)) {
            self.data_version = now;
        }
        self.advance(0);
        Ok(Restored {
            bookmark: bookmark.to_owned(),
            previous_bookmark,
            new_bookmark: self.current_bookmark(),
        })
    }

    /// Runs the SQL of one `/query` request.
    pub fn query(&mut self, sql: &str, params: &[Value]) -> Result<BatchOutcome, SqlError> {
        self.notice_outside_writes();
        let outcome = query::run_batch(&mut self.conn, sql, params)?;
        if outcome.wrote || outcome.changes > 0 {
            self.advance(outcome.changes);
        }
        Ok(outcome)
    }

    /// Runs an imported SQL file, all or nothing (see [`crate::script`]).
    /// A successful import always moves the bookmark, even if it changed no
    /// rows, as D1's does.
    pub fn import(
        &mut self,
        text: &ScriptText,
        fault: &script::IngestFault,
        progress: &mut dyn FnMut(u64),
    ) -> Result<ImportDone, ScriptError> {
        self.notice_outside_writes();
        let size_before = self.file_size().unwrap_or(0);
        let stats = script::run_script(&mut self.conn, text, fault, progress)?;
        self.advance(stats.changes);
        let size_after = self.file_size().unwrap_or(0);
        Ok(ImportDone {
            final_bookmark: self.current_bookmark(),
            changed_db: stats.changes > 0 || size_after != size_before,
            size_after,
            stats,
        })
    }

    /// Deletes every row of `table`, without a trace in the bookmark: the
    /// fault [`crate::Faults::ingest_loses_table`]. A table that does not
    /// exist loses nothing.
    pub fn lose_rows(&mut self, table: &str) {
        let quoted = format!("\"{}\"", table.replace('"', "\"\""));
        let _ = self.conn.execute(&format!("DELETE FROM {quoted}"), []);
    }

    /// The number of user tables, as D1 reports in `num_tables`.
    pub fn num_tables(&self) -> rusqlite::Result<u64> {
        let count: i64 = self.conn.query_row(
            "SELECT count(*) FROM sqlite_schema WHERE type = 'table' \
             AND name NOT LIKE 'sqlite\\_%' ESCAPE '\\' AND name NOT LIKE '\\_cf\\_%' ESCAPE '\\'",
            [],
            |r| r.get(0),
        )?;
        Ok(u64::try_from(count).unwrap_or(0))
    }

    /// The database file's size in bytes, as D1 reports in `file_size`.
    pub fn file_size(&self) -> rusqlite::Result<u64> {
        query::database_size(&self.conn)
    }
}

/// Whether `s` has the shape of a D1 bookmark:
/// `xxxxxxxx-xxxxxxxx-xxxxxxxx-<32 hex>`, in lowercase hex.
fn is_bookmark(s: &str) -> bool {
    let parts: Vec<&str> = s.split('-').collect();
    parts.len() == 4
        && parts.iter().zip([8, 8, 8, 32]).all(|(part, len)| {
            part.len() == len && part.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'))
        })
}

/// Copies every page of `from`'s main database over `to`'s with SQLite's
/// backup API, in one step, so that `to` goes from its old contents to the
/// new ones in one transaction. Waits up to [`BUSY_WAIT`] for locks that
/// other connections hold.
fn copy_database(from: &Connection, to: &mut Connection) -> Result<(), String> {
    let backup = Backup::new(from, to).map_err(|e| e.to_string())?;
    let deadline = Instant::now() + BUSY_WAIT;
    loop {
        match backup.step(-1).map_err(|e| e.to_string())? {
            StepResult::Done => return Ok(()),
            _ if Instant::now() < deadline => std::thread::sleep(Duration::from_millis(10)),
            _ => return Err("the database stayed locked by another connection".to_owned()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn open(dir: &tempfile::TempDir) -> DbState {
        DbState::open(&dir.path().join("sub").join("db.sqlite"), dir.path()).unwrap()
    }

    /// The snapshots are whole copies of the database: under a umask of
    /// 022 they were 0644 in a 0755 directory, readable by every local
    /// user. Every directory the loopback makes is 0700 and every file it
    /// writes 0600, whatever the umask.
    #[test]
    fn snapshots_and_the_files_made_are_private_under_a_umask_of_022() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        // SAFETY: umask(2) only; 022 is the usual one, put back after.
        let before = unsafe { libc::umask(0o022) };
        let mut db = open(&dir);
        db.query("CREATE TABLE t (x)", &[]).unwrap();
        db.query("INSERT INTO t VALUES ('a row')", &[]).unwrap();
        unsafe { libc::umask(before) };
        let mut made = vec![dir.path().join("sub"), db.snapshot_dir.path().to_owned()];
        for kept in &db.history {
            made.push(kept.snapshot.clone().unwrap());
        }
        assert_eq!(made.len(), 5, "{made:?}");
        made.push(dir.path().join("sub").join("db.sqlite"));
        for path in made {
            let mode = std::fs::metadata(&path).unwrap().permissions().mode() & 0o777;
            assert_eq!(mode & 0o077, 0, "{} is {mode:o}", path.display());
        }
    }

    #[test]
    fn bookmarks_move_on_writes_only() {
        let dir = tempfile::tempdir().unwrap();
        let mut db = open(&dir);
        let b0 = db.current_bookmark();
        assert_eq!(b0.len(), 8 + 1 + 8 + 1 + 8 + 1 + 32);
        db.query("SELECT 1", &[]).unwrap();
        assert_eq!(db.current_bookmark(), b0);
        db.query("CREATE TABLE t (x)", &[]).unwrap();
        let b1 = db.current_bookmark();
        assert!(b1 > b0, "{b1} should sort after {b0}");
        db.query("INSERT INTO t VALUES (1)", &[]).unwrap();
        let b2 = db.current_bookmark();
        assert!(b2 > b1);
        assert!(db.query("INSERT INTO nope VALUES (1)", &[]).is_err());
        assert_eq!(db.current_bookmark(), b2);
        assert_eq!(db.bookmark_at(0), b0);
        assert_eq!(db.bookmark_at(i64::MAX), b2);
    }

    #[test]
    fn outside_writes_move_the_bookmark() {
        let dir = tempfile::tempdir().unwrap();
        let mut db = open(&dir);
        db.query("CREATE TABLE t (x)", &[]).unwrap();
        let before = db.current_bookmark();
        let other = Connection::open(dir.path().join("sub").join("db.sqlite")).unwrap();
        other.execute("INSERT INTO t VALUES (1)", []).unwrap();
        assert_ne!(db.current_bookmark(), before);
        assert_eq!(db.num_tables().unwrap(), 1);
    }

    #[test]
    fn imports_move_the_bookmark_and_failures_do_not() {
        let dir = tempfile::tempdir().unwrap();
        let mut db = open(&dir);
        let b0 = db.current_bookmark();
        let text = |sql: &str| ScriptText::new(sql.as_bytes().to_vec()).unwrap();
        let done = db
            .import(
                &text("CREATE TABLE t (x); INSERT INTO t VALUES (1);"),
                &script::IngestFault::default(),
                &mut |_| {},
            )
            .unwrap();
        assert_eq!(done.stats.statements, 2);
        assert!(done.final_bookmark > b0);
        assert_eq!(db.current_bookmark(), done.final_bookmark);
        assert!(done.size_after > 0);
        let e = db
            .import(
                &text("INSERT INTO t VALUES (2); SELECT * FROM nope;"),
                &script::IngestFault::default(),
                &mut |_| {},
            )
            .unwrap_err();
        assert_eq!(e.message, "no such table: nope: SQLITE_ERROR");
        assert_eq!(db.current_bookmark(), done.final_bookmark);
        // Even an import that changes nothing moves the bookmark.
        let again = db
            .import(
                &text("SELECT 1;"),
                &script::IngestFault::default(),
                &mut |_| {},
            )
            .unwrap();
        assert!(again.final_bookmark > done.final_bookmark);
    }

    /// The rows of `t`, in order.
    fn rows(db: &DbState) -> Vec<i64> {
        let mut stmt = db.conn().prepare("SELECT x FROM t ORDER BY x").unwrap();
        stmt.query_map([], |r| r.get(0))
            .unwrap()
            .collect::<Result<_, _>>()
            .unwrap()
    }

    #[test]
    fn restore_brings_back_a_state_and_can_be_undone() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("sub").join("db.sqlite");
        let mut db = open(&dir);
        db.query("CREATE TABLE t (x); INSERT INTO t VALUES (1), (2)", &[])
            .unwrap();
        let early = db.current_bookmark();
        db.query("INSERT INTO t VALUES (3)", &[]).unwrap();
        db.query("DELETE FROM t WHERE x = 1", &[]).unwrap();
        let late = db.current_bookmark();
        assert_eq!(rows(&db), [2, 3]);

        let restored = db.restore(&early).unwrap();
        assert_eq!(restored.bookmark, early);
        assert_eq!(restored.previous_bookmark, late);
        // A restore is a new state.
        assert!(restored.new_bookmark > late);
        assert_eq!(db.current_bookmark(), restored.new_bookmark);
        assert_eq!(rows(&db), [1, 2]);
        // The file itself holds the restored data.
        let other = Connection::open(&path).unwrap();
        let count: i64 = other
            .query_row("SELECT count(*) FROM t", [], |r| r.get(0))
            .unwrap();
        assert_eq!(count, 2);

        // Undo.
        let undone = db.restore(&restored.previous_bookmark).unwrap();
        assert_eq!(undone.previous_bookmark, restored.new_bookmark);
        assert_eq!(rows(&db), [2, 3]);
        // The state the first restore left is restorable too.
        db.restore(&restored.new_bookmark).unwrap();
        assert_eq!(rows(&db), [1, 2]);
        // And the very first state, before the table existed.
        let first = db.bookmark_at(0);
        db.restore(&first).unwrap();
        assert_eq!(db.num_tables().unwrap(), 0);
        // The connection keeps working after restores.
        db.query("CREATE TABLE t (x); INSERT INTO t VALUES (9)", &[])
            .unwrap();
        assert_eq!(rows(&db), [9]);
        // The bookmark's timestamp history still maps to the newest state.
        assert_eq!(db.bookmark_at(i64::MAX), db.current_bookmark());
    }

    #[test]
    fn unknown_or_malformed_bookmarks_restore_nothing() {
        let dir = tempfile::tempdir().unwrap();
        let mut db = open(&dir);
        db.query("CREATE TABLE t (x); INSERT INTO t VALUES (1)", &[])
            .unwrap();
        let before = db.current_bookmark();
        let flipped = if before.ends_with('0') { '1' } else { '0' };
        let unknown = format!("{}{flipped}", &before[..before.len() - 1]);
        assert_eq!(db.restore(&unknown), Err(RestoreError::Unknown));
        for bad in [
            "",
            "nope",
            "00000001-00000000-00000000",
            &before.to_uppercase(),
            &format!("{before}0"),
        ] {
            assert_eq!(db.restore(bad), Err(RestoreError::Malformed), "{bad:?}");
        }
        assert_eq!(db.current_bookmark(), before);
        assert_eq!(rows(&db), [1]);
    }

    #[test]
    fn outside_writes_and_imports_are_restorable_states() {
        let dir = tempfile::tempdir().unwrap();
        let mut db = open(&dir);
        db.query("CREATE TABLE t (x)", &[]).unwrap();
        let empty = db.current_bookmark();
        let other = Connection::open(dir.path().join("sub").join("db.sqlite")).unwrap();
        other.execute("INSERT INTO t VALUES (1)", []).unwrap();
        let outside = db.current_bookmark();
        assert_ne!(outside, empty);
        let text = ScriptText::new(b"INSERT INTO t VALUES (2);".to_vec()).unwrap();
        let imported = db
            .import(&text, &script::IngestFault::default(), &mut |_| {})
            .unwrap();
        assert_eq!(rows(&db), [1, 2]);

        // An outside write not yet noticed is the state a restore undoes.
        other.execute("INSERT INTO t VALUES (3)", []).unwrap();
        let restored = db.restore(&outside).unwrap();
        assert_ne!(restored.previous_bookmark, imported.final_bookmark);
        assert_eq!(rows(&db), [1]);
        db.restore(&imported.final_bookmark).unwrap();
        assert_eq!(rows(&db), [1, 2]);
        db.restore(&restored.previous_bookmark).unwrap();
        assert_eq!(rows(&db), [1, 2, 3]);
        db.restore(&empty).unwrap();
        assert_eq!(rows(&db), Vec::<i64>::new());
        // The other connection sees the restored file.
        let count: i64 = other
            .query_row("SELECT count(*) FROM t", [], |r| r.get(0))
            .unwrap();
        assert_eq!(count, 0);
    }

    #[test]
    fn restore_works_on_a_wal_database() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("sub").join("db.sqlite");
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        let seed = Connection::open(&path).unwrap();
        seed.pragma_update(None, "journal_mode", "WAL").unwrap();
        seed.execute_batch("CREATE TABLE t (x); INSERT INTO t VALUES (1);")
            .unwrap();
        drop(seed);
        let mut db = DbState::open(&path, dir.path()).unwrap();
        let early = db.current_bookmark();
        db.query("INSERT INTO t VALUES (2)", &[]).unwrap();
        let late = db.current_bookmark();
        db.restore(&early).unwrap();
        assert_eq!(rows(&db), [1]);
        db.restore(&late).unwrap();
        assert_eq!(rows(&db), [1, 2]);
        let mode: String = db
            .conn()
            .query_row("PRAGMA journal_mode", [], |r| r.get(0))
            .unwrap();
        assert_eq!(mode, "wal");
        let other = Connection::open(&path).unwrap();
        let count: i64 = other
            .query_row("SELECT count(*) FROM t", [], |r| r.get(0))
            .unwrap();
        assert_eq!(count, 2);
    }

    #[test]
    fn foreign_keys_are_enforced() {
        let dir = tempfile::tempdir().unwrap();
        let mut db = open(&dir);
        db.query(
            "CREATE TABLE p (id INTEGER PRIMARY KEY); CREATE TABLE c (p REFERENCES p(id))",
            &[],
        )
        .unwrap();
        let e = db.query("INSERT INTO c VALUES (5)", &[]).unwrap_err();
        assert_eq!(e.0, "FOREIGN KEY constraint failed: SQLITE_CONSTRAINT");
        // With deferred checks the violation surfaces at commit, and the
        // request still leaves no trace.
        let e = db
            .query(
                "PRAGMA defer_foreign_keys=TRUE; INSERT INTO c VALUES (5)",
                &[],
            )
            .unwrap_err();
        assert_eq!(e.0, "FOREIGN KEY constraint failed: SQLITE_CONSTRAINT");
        db.query(
            "PRAGMA defer_foreign_keys=TRUE; INSERT INTO c VALUES (6); INSERT INTO p VALUES (6)",
            &[],
        )
        .unwrap();
    }
}
