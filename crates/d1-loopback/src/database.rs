//! One D1 database: its SQLite file, its bookmarks and its per-database work
//! in progress.
//!
//! Everything that changes lives in [`DbState`] behind the database's
//! `Mutex`, so a request that holds the lock sees and changes one database
//! atomically. Later features hang their state here as well: kept snapshots
//! for Time Travel restore, injected faults.
//!
//! Imports are the exception: an import runs on a thread of its own, holding
//! the database's lock for as long as it runs (D1, too, serves no queries
//! while it imports), so the uploads and import jobs that polls look at sit
//! behind a second lock, [`Database::imports`], which an import never holds
//! for long.

use std::path::Path;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::Duration;

use anyhow::Context as _;
use rusqlite::Connection;
use rusqlite::limits::Limit;
use rusqlite::types::Value;

use crate::DatabaseSpec;
use crate::export::PendingExport;
use crate::import::Imports;
use crate::query::{self, BatchOutcome, SqlError};
use crate::script::{self, ScriptError, ScriptStats, ScriptText};
use crate::util;

/// D1's limit on the length of SQL text, in bytes.
pub(crate) const MAX_SQL_LENGTH: i32 = 100_000;

/// A D1 database served by this server.
pub(crate) struct Database {
    pub uuid: String,
    pub name: String,
    /// When the server started serving it, as D1's `created_at` string.
    pub created_at: String,
    state: Arc<Mutex<DbState>>,
    /// Uploaded import files and import jobs.
    pub imports: Mutex<Imports>,
}

impl Database {
    /// Opens (creating if needed) the SQLite file behind a database.
    pub fn open(spec: &DatabaseSpec) -> anyhow::Result<Database> {
        Ok(Database {
            uuid: spec.uuid.clone(),
            name: spec.name.clone(),
            created_at: util::iso8601(util::now_ms()),
            state: Arc::new(Mutex::new(DbState::open(&spec.path).with_context(
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
    /// Every bookmark handed out or passed through, with when it began.
    history: Vec<(i64, String)>,
    /// Exports started with a first `/export` call and not yet collected.
    pub pending_exports: Vec<PendingExport>,
}

impl DbState {
    fn open(path: &Path) -> anyhow::Result<DbState> {
        if let Some(parent) = path.parent().filter(|p| !p.as_os_str().is_empty()) {
            std::fs::create_dir_all(parent)?;
        }
        let conn = Connection::open(path)?;
        // D1 enforces foreign keys and limits the length of SQL text.
        conn.pragma_update(None, "foreign_keys", true)?;
        conn.set_limit(Limit::SQLITE_LIMIT_SQL_LENGTH, MAX_SQL_LENGTH)?;
        // Tests may write to the same file; wait for them rather than fail.
        conn.busy_timeout(Duration::from_secs(10))?;
        let data_version = conn.query_row("PRAGMA data_version", [], |r| r.get(0))?;
        let mut state = DbState {
            conn,
            version: 1,
            changes: 0,
            salt: util::random_hex(16),
            data_version,
            history: Vec::new(),
            pending_exports: Vec::new(),
        };
        let first = state.make_bookmark();
        state.history.push((util::now_ms(), first));
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

    /// Moves to a new state and records its bookmark.
    fn advance(&mut self, changes: u64) {
        self.version += 1;
        self.changes += changes;
        let bookmark = self.make_bookmark();
        self.history.push((util::now_ms(), bookmark));
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
            .map(|(_, b)| b.clone())
            .expect("history always has the first bookmark")
    }

    /// The bookmark of the state the database was in at `at_ms`: the last
    /// state that began no later than that, or the first state if `at_ms`
    /// is before the server started.
    pub fn bookmark_at(&mut self, at_ms: i64) -> String {
        self.notice_outside_writes();
        let index = self.history.partition_point(|(t, _)| *t <= at_ms);
        self.history[index.saturating_sub(1)].1.clone()
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
        fail_after: Option<usize>,
        progress: &mut dyn FnMut(u64),
    ) -> Result<ImportDone, ScriptError> {
        self.notice_outside_writes();
        let size_before = self.file_size().unwrap_or(0);
        let stats = script::run_script(&mut self.conn, text, fail_after, progress)?;
        self.advance(stats.changes);
        let size_after = self.file_size().unwrap_or(0);
        Ok(ImportDone {
            final_bookmark: self.current_bookmark(),
            changed_db: stats.changes > 0 || size_after != size_before,
            size_after,
            stats,
        })
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

#[cfg(test)]
mod tests {
    use super::*;

    fn open(dir: &tempfile::TempDir) -> DbState {
        DbState::open(&dir.path().join("sub").join("db.sqlite")).unwrap()
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
                None,
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
                None,
                &mut |_| {},
            )
            .unwrap_err();
        assert_eq!(e.message, "no such table: nope: SQLITE_ERROR");
        assert_eq!(db.current_bookmark(), done.final_bookmark);
        // Even an import that changes nothing moves the bookmark.
        let again = db.import(&text("SELECT 1;"), None, &mut |_| {}).unwrap();
        assert!(again.final_bookmark > done.final_bookmark);
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
