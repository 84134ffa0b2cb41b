//! Runs an imported SQL file the way D1's import does: every statement of
//! the file, in order, all or nothing.
//!
//! The file is split with SQLite's own parser, as `/query` requests are (see
//! [`crate::query`]), but the call differs in one respect. `/query` hands
//! SQLite the whole remaining text with its length, so the
//! `SQLITE_LIMIT_SQL_LENGTH` limit (100,000 bytes on D1) applies to the
//! whole request, and SQLite copies the remaining text for every statement.
//! An import file may hold hundreds of megabytes, so here the text is
//! NUL-terminated and handed over with a length of -1: SQLite then parses it
//! in place, stops at the end of one statement, and applies the limit to
//! that statement alone. A statement over the limit fails with SQLite's
//! `SQLITE_TOOBIG`, reported as D1 reports it, `statement too long:
//! SQLITE_TOOBIG`.
//!
//! The whole file runs in one SQLite transaction. D1 itself restores the
//! database with Time Travel when an import fails, rather than rolling back
//! a transaction, but the effect is the same: a failed import leaves no
//! trace. Foreign keys are enforced, and a file may defer their checks with
//! `PRAGMA defer_foreign_keys`, as D1's own dumps do; a violation that is
//! still there at the end of the file fails the import.
//!
//! Because D1 cannot honour a transaction opened by the file, it refuses
//! `BEGIN`, `COMMIT`, `ROLLBACK`, `SAVEPOINT` and `RELEASE` statements; so
//! does this module, with the message D1 uses, naming the statement.

use std::ffi::{CStr, c_char};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Instant;

use rusqlite::hooks::{AuthAction, AuthContext, Authorization, TransactionOperation};
use rusqlite::{Connection, ffi};

use crate::query::{SqlError, code_name};

/// The message workerd's SQLite gives, and D1 passes on, for a statement
/// that tries to control the transaction.
pub(crate) const TRANSACTION_REFUSAL: &str = "To execute a transaction, please use the \
    state.storage.transaction() or state.storage.transactionSync() APIs instead of the SQL \
    BEGIN TRANSACTION or SAVEPOINT statements. The JavaScript API is safer because it will \
    automatically roll back on exceptions, and because it interacts correctly with Durable \
    Objects' automatic atomic write coalescing.";

/// How many statements run between two progress reports.
const PROGRESS_EVERY: u64 = 1000;

/// The text of an SQL file, ready for [`run_script`]: NUL-terminated, with
/// no NUL inside.
pub(crate) struct ScriptText(Vec<u8>);

impl ScriptText {
    /// Takes the bytes of a file. SQLite would stop reading at a NUL byte,
    /// silently dropping the rest of the file, so a file holding one is
    /// refused instead.
    pub fn new(mut bytes: Vec<u8>) -> Result<ScriptText, String> {
        if let Some(at) = bytes.iter().position(|&b| b == 0) {
            return Err(format!(
                "The SQL file holds a NUL byte at offset {at}; it is not SQL text"
            ));
        }
        bytes.push(0);
        Ok(ScriptText(bytes))
    }
}

/// What a successful run did.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct ScriptStats {
    /// The statements run; comments and empty statements do not count.
    pub statements: u64,
    /// The rows changed, as `sqlite3_total_changes` counts them.
    pub changes: u64,
    /// The rows the statements returned.
    pub rows_read: u64,
    pub last_row_id: i64,
    pub duration_ms: f64,
}

/// Why a run failed. Nothing it did is left in the database.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct ScriptError {
    /// The message D1 would give, such as `no such table: main.B:
    /// SQLITE_ERROR`.
    pub message: String,
    /// The 1-based number of the statement that failed, and the start of
    /// its text; `None` when the failure came at the end, at commit.
    pub statement: Option<(u64, String)>,
    /// The statements that had run before the failure.
    pub statements_run: u64,
}

/// Runs every statement of `text` in one transaction.
///
/// `fault`, from [`crate::Faults`], stops the run with an injected error.
/// `progress` is told how many statements have run, now and then.
pub(crate) fn run_script(
    conn: &mut Connection,
    text: &ScriptText,
    fault: &IngestFault,
    progress: &mut dyn FnMut(u64),
) -> Result<ScriptStats, ScriptError> {
    let setup_err = |e: rusqlite::Error| ScriptError {
        message: SqlError::from_rusqlite(&e).0,
        statement: None,
        statements_run: 0,
    };
    // A run or request that panicked halfway may have left a transaction
    // open or an authorizer installed; start from a clean connection.
    conn.authorizer(None::<fn(AuthContext<'_>) -> Authorization>)
        .map_err(setup_err)?;
    if !conn.is_autocommit() {
        conn.execute_batch("ROLLBACK").map_err(setup_err)?;
    }
    conn.execute_batch("BEGIN").map_err(setup_err)?;

    // The authorizer refuses transaction control and notes what it refused,
    // so that the error can name the statement.
    let refused: Arc<Mutex<Option<String>>> = Arc::default();
    let noted = Arc::clone(&refused);
    conn.authorizer(Some(move |ctx: AuthContext<'_>| {
        let what = match ctx.action {
            AuthAction::Transaction { operation } => match operation {
                TransactionOperation::Begin => "BEGIN".to_owned(),
                TransactionOperation::Rollback => "ROLLBACK".to_owned(),
                // SQLite names COMMIT (and its synonym END) "COMMIT", which
                // rusqlite does not list.
                _ => "COMMIT".to_owned(),
            },
            AuthAction::Savepoint {
                operation,
                savepoint_name,
            } => match operation {
                TransactionOperation::Release => format!("RELEASE {savepoint_name}"),
                TransactionOperation::Rollback => format!("ROLLBACK TO {savepoint_name}"),
                _ => format!("SAVEPOINT {savepoint_name}"),
            },
            _ => return Authorization::Allow,
        };
        *noted.lock().unwrap_or_else(PoisonError::into_inner) = Some(what);
        Authorization::Deny
    }))
    .map_err(setup_err)?;

    let outcome = run_statements(conn, text, fault, &refused, progress);
    let removed = conn.authorizer(None::<fn(AuthContext<'_>) -> Authorization>);

    let stats = match outcome.and_then(|stats| removed.map(|()| stats).map_err(setup_err)) {
        Ok(stats) => stats,
        Err(e) => {
            if !conn.is_autocommit() {
                let _ = conn.execute_batch("ROLLBACK");
            }
            return Err(e);
        }
    };
    if let Err(e) = conn.execute_batch("COMMIT") {
        // A deferred foreign key violation fails the commit, and leaves the
        // transaction open to be undone.
        if !conn.is_autocommit() {
            let _ = conn.execute_batch("ROLLBACK");
        }
        return Err(ScriptError {
            statements_run: stats.statements,
            ..setup_err(e)
        });
    }
    Ok(stats)
}

/// The start of a statement's text, for error messages: past leading white
/// space and comments, up to the end of its first line, at most 80
/// characters.
fn excerpt(text: &[u8]) -> String {
    let text = text.split(|&b| b == 0).next().unwrap_or_default();
    let mut rest = text;
    loop {
        let trimmed = rest.trim_ascii_start();
        if let Some(comment) = trimmed.strip_prefix(b"--") {
            rest = comment
                .iter()
                .position(|&b| b == b'\n')
                .map_or(&[][..], |i| &comment[i..]);
        } else if let Some(comment) = trimmed.strip_prefix(b"/*") {
            rest = comment
                .windows(2)
                .position(|w| w == b"*/")
                .map_or(&[][..], |i| &comment[i + 2..]);
        } else {
            rest = trimmed;
            break;
        }
    }
    let line = rest.split(|&b| b == b'\n').next().unwrap_or_default();
    let line = String::from_utf8_lossy(line);
    let line = line.trim_end();
    if line.chars().count() > 80 {
        format!("{}...", line.chars().take(80).collect::<String>())
    } else {
        line.to_owned()
    }
}

/// The message of the last error on `db`, as D1 words it: SQLite's text, a
/// colon and the primary result code's name.
///
/// # Safety
///
/// `db` must be an open connection.
unsafe fn last_error(db: *mut ffi::sqlite3, code: i32) -> String {
    // SAFETY: `db` is open, so `sqlite3_errmsg` returns a valid C string.
    let message = unsafe { CStr::from_ptr(ffi::sqlite3_errmsg(db)) }.to_string_lossy();
    // The parser reports a statement over SQLITE_LIMIT_SQL_LENGTH with the
    // generic text for SQLITE_TOOBIG; D1's wording is SQLite's other one.
    let message = if code & 0xff == ffi::SQLITE_TOOBIG && message == "string or blob too big" {
        "statement too long".into()
    } else {
        message
    };
    format!("{message}: {}", code_name(code))
}

fn run_statements(
    conn: &Connection,
    text: &ScriptText,
    fault: &IngestFault,
    refused: &Mutex<Option<String>>,
    progress: &mut dyn FnMut(u64),
) -> Result<ScriptStats, ScriptError> {
    let started = Instant::now();
    let mut stats = ScriptStats {
        statements: 0,
        changes: 0,
        rows_read: 0,
        last_row_id: conn.last_insert_rowid(),
        duration_ms: 0.0,
    };
    let fail_after = fault.after.map(|n| n as u64);
    let fail_at = fault.at_statement_with.as_deref().map(str::as_bytes);
    let total_before = conn.total_changes();
    let bytes = &text.0;
    // SAFETY: the handle is only used while `conn` is borrowed, and by this
    // thread alone.
    let db = unsafe { conn.handle() };
    let mut offset = 0usize;

    // The text ends with its only NUL; `offset` always points into it.
    while bytes[offset] != 0 {
        let number = stats.statements + 1;
        // SAFETY: `db` is open, `bytes` is the NUL-terminated text and
        // `offset` points into it.
        let (stmt, end) = unsafe { prepare_at(db, bytes, offset, refused, stats.statements) }?;
        let statement_text = &bytes[offset..end];
        offset = end;
        if stmt.is_null() {
            // Only white space or comments were left.
            continue;
        }
        if fail_after.is_some_and(|n| stats.statements >= n) {
            // SAFETY: `stmt` is a statement prepared above, finalized once.
            unsafe { ffi::sqlite3_finalize(stmt) };
            return Err(injected(stats.statements));
        }
        if fail_at.is_some_and(|at| statement_text.windows(at.len()).any(|w| w == at)) {
            // SAFETY: `stmt` is a statement prepared above, finalized once.
            unsafe { ffi::sqlite3_finalize(stmt) };
            return Err(ScriptError {
                message:
                    "a fault injected by d1-loopback (Faults::ingest_fail_at_statement_with): \
                          SQLITE_ERROR"
                        .to_owned(),
                statement: Some((number, excerpt(statement_text))),
                statements_run: stats.statements,
            });
        }
        // SAFETY: `db` is open and `stmt` was prepared on it above.
        if let Some(message) = unsafe { step_and_finalize(db, stmt, &mut stats.rows_read) } {
            return Err(ScriptError {
                message,
                statement: Some((number, excerpt(statement_text))),
                statements_run: stats.statements,
            });
        }
        stats.statements = number;
        if number.is_multiple_of(PROGRESS_EVERY) {
            progress(number);
        }
    }
    if fault.after.is_some() {
        return Err(injected(stats.statements));
    }
    stats.changes = conn.total_changes() - total_before;
    stats.last_row_id = conn.last_insert_rowid();
    stats.duration_ms = started.elapsed().as_secs_f64() * 1000.0;
    progress(stats.statements);
    Ok(stats)
}

/// The faults an import runs under (see [`crate::Faults`]).
#[derive(Debug, Clone, Default)]
pub(crate) struct IngestFault {
    /// [`crate::Faults::ingest_fail_after`].
    pub after: Option<usize>,
    /// [`crate::Faults::ingest_fail_at_statement_with`].
    pub at_statement_with: Option<String>,
}

/// The failure `Faults::ingest_fail_after` injects after `run` statements,
/// ending as D1's errors of a statement do, in SQLite's result code.
fn injected(run: u64) -> ScriptError {
    ScriptError {
        message: format!(
            "d1-loopback injected failure: the import was stopped after {run} statements \
             (Faults::ingest_fail_after): SQLITE_ERROR"
        ),
        statement: None,
        statements_run: run,
    }
}

/// Prepares the statement that starts at `offset`, after `run` statements
/// ran: the statement (null when only white space or comments were left)
/// and the offset where the rest of the text starts. A statement that does
/// not prepare is an error, with the gate's refusal when it refused it.
///
/// # Safety
///
/// `db` must be an open connection, and `bytes` a text that ends with its
/// only NUL, with `offset` pointing into it.
unsafe fn prepare_at(
    db: *mut ffi::sqlite3,
    bytes: &[u8],
    offset: usize,
    refused: &Mutex<Option<String>>,
    run: u64,
) -> Result<(*mut ffi::sqlite3_stmt, usize), ScriptError> {
    let number = run + 1;
    let base = bytes.as_ptr();
    let mut stmt: *mut ffi::sqlite3_stmt = std::ptr::null_mut();
    let mut tail: *const c_char = std::ptr::null();
    // SAFETY: `base + offset` points into a NUL-terminated buffer that
    // outlives the call, and a length of -1 makes SQLite read it up to
    // that NUL (or the end of one statement) without copying it.
    let rc = unsafe {
        ffi::sqlite3_prepare_v3(
            db,
            base.add(offset).cast::<c_char>(),
            -1,
            0,
            &mut stmt,
            &mut tail,
        )
    };
    if rc != ffi::SQLITE_OK {
        let what = refused
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .take();
        let message = match what {
            Some(what) => format!(
                "{TRANSACTION_REFUSAL} Refused statement {number}: {what} ({})",
                excerpt(&bytes[offset..])
            ),
            // SAFETY: `db` is open.
            None => unsafe { last_error(db, ffi::sqlite3_extended_errcode(db)) },
        };
        return Err(ScriptError {
            message,
            statement: Some((number, excerpt(&bytes[offset..]))),
            statements_run: run,
        });
    }
    // SAFETY: on success SQLite sets `tail` to a point within the text
    // it was given, at or before its NUL.
    let end = unsafe { tail.cast::<u8>().offset_from(base) } as usize;
    Ok((stmt, end))
}

/// Steps `stmt` to its end, counting the rows it returns, and finalizes it:
/// the error message if a step failed.
///
/// # Safety
///
/// `db` must be an open connection and `stmt` a statement prepared on it,
/// not yet finalized.
unsafe fn step_and_finalize(
    db: *mut ffi::sqlite3,
    stmt: *mut ffi::sqlite3_stmt,
    rows_read: &mut u64,
) -> Option<String> {
    let failed = loop {
        // SAFETY: `stmt` is a valid prepared statement.
        match unsafe { ffi::sqlite3_step(stmt) } {
            ffi::SQLITE_ROW => *rows_read += 1,
            ffi::SQLITE_DONE => break None,
            // SAFETY: `db` is open; the error is read before finalizing.
            _ => break Some(unsafe { last_error(db, ffi::sqlite3_extended_errcode(db)) }),
        }
    };
    // SAFETY: `stmt` is a statement prepared above, finalized once.
    unsafe { ffi::sqlite3_finalize(stmt) };
    failed
}

#[cfg(test)]
mod tests {
    use super::*;

    fn conn() -> Connection {
        let conn = Connection::open_in_memory().unwrap();
        conn.pragma_update(None, "foreign_keys", true).unwrap();
        conn.set_limit(rusqlite::limits::Limit::SQLITE_LIMIT_SQL_LENGTH, 100_000)
            .unwrap();
        conn
    }

    fn run(c: &mut Connection, sql: &str) -> Result<ScriptStats, ScriptError> {
        run_with(c, sql, None)
    }

    fn run_with(
        c: &mut Connection,
        sql: &str,
        fail_after: Option<usize>,
    ) -> Result<ScriptStats, ScriptError> {
        let text = ScriptText::new(sql.as_bytes().to_vec()).unwrap();
        let fault = IngestFault {
            after: fail_after,
            ..IngestFault::default()
        };
        run_script(c, &text, &fault, &mut |_| {})
    }

    fn count(c: &Connection, sql: &str) -> i64 {
        c.query_row(sql, [], |r| r.get(0)).unwrap()
    }

    #[test]
    fn runs_every_statement_with_sqlites_own_splitting() {
        let mut c = conn();
        let stats = run(
            &mut c,
            "-- a header; with a semicolon\n\
             CREATE TABLE t (a, b);\n\
             /* a block comment; */ INSERT INTO t VALUES ('x;y', 1), ('z', 2);\n\
             CREATE TRIGGER tr AFTER INSERT ON t BEGIN SELECT 1; END;\n\
             SELECT * FROM t;;\n\
             INSERT INTO t VALUES ('no semicolon at the end', 3)",
        )
        .unwrap();
        assert_eq!(stats.statements, 5);
        assert_eq!(stats.changes, 3);
        assert_eq!(stats.rows_read, 2);
        assert_eq!(stats.last_row_id, 3);
        assert_eq!(count(&c, "SELECT count(*) FROM t"), 3);
        assert!(c.is_autocommit());
    }

    #[test]
    fn a_failure_leaves_no_trace_and_names_the_statement() {
        let mut c = conn();
        run(&mut c, "CREATE TABLE a (id INTEGER PRIMARY KEY);").unwrap();
        let e = run(
            &mut c,
            "INSERT INTO a VALUES (1);\nCREATE TABLE c (x);\n\
             CREATE TABLE child (b_id REFERENCES B(id));\nINSERT INTO child VALUES (1);",
        )
        .unwrap_err();
        assert_eq!(e.message, "no such table: main.B: SQLITE_ERROR");
        assert_eq!(
            e.statement,
            Some((4, "INSERT INTO child VALUES (1);".to_owned()))
        );
        assert_eq!(e.statements_run, 3);
        assert_eq!(count(&c, "SELECT count(*) FROM a"), 0);
        assert_eq!(count(&c, "SELECT count(*) FROM sqlite_schema"), 1);
        assert!(c.is_autocommit());
    }

    #[test]
    fn foreign_keys_are_enforced_and_may_be_deferred() {
        let mut c = conn();
        run(
            &mut c,
            "CREATE TABLE p (id INTEGER PRIMARY KEY); CREATE TABLE ch (p REFERENCES p(id));",
        )
        .unwrap();
        let e = run(&mut c, "INSERT INTO ch VALUES (5);").unwrap_err();
        assert_eq!(
            e.message,
            "FOREIGN KEY constraint failed: SQLITE_CONSTRAINT"
        );
        // A dump inserts children before parents and defers the checks.
        run(
            &mut c,
            "PRAGMA defer_foreign_keys=TRUE; INSERT INTO ch VALUES (6); INSERT INTO p VALUES (6);",
        )
        .unwrap();
        // A deferred violation still there at the end fails at commit.
        let e = run(
            &mut c,
            "PRAGMA defer_foreign_keys=TRUE; INSERT INTO ch VALUES (7);",
        )
        .unwrap_err();
        assert_eq!(
            e.message,
            "FOREIGN KEY constraint failed: SQLITE_CONSTRAINT"
        );
        assert_eq!(e.statement, None);
        assert_eq!(count(&c, "SELECT count(*) FROM ch"), 1);
    }

    #[test]
    fn transaction_control_is_refused_by_name() {
        let mut c = conn();
        run(&mut c, "CREATE TABLE t (x);").unwrap();
        for (sql, what) in [
            ("INSERT INTO t VALUES (1);\nBEGIN TRANSACTION;", "BEGIN"),
            ("INSERT INTO t VALUES (1);\nCOMMIT;", "COMMIT"),
            ("INSERT INTO t VALUES (1);\nEND TRANSACTION;", "COMMIT"),
            ("INSERT INTO t VALUES (1);\nROLLBACK;", "ROLLBACK"),
            ("INSERT INTO t VALUES (1);\nSAVEPOINT sp;", "SAVEPOINT sp"),
            ("INSERT INTO t VALUES (1);\nRELEASE sp;", "RELEASE sp"),
        ] {
            let e = run(&mut c, sql).unwrap_err();
            assert!(e.message.starts_with(TRANSACTION_REFUSAL), "{}", e.message);
            assert!(
                e.message
                    .ends_with(&format!("Refused statement 2: {what} ({})", {
                        sql.lines().nth(1).unwrap()
                    })),
                "{}",
                e.message
            );
            assert_eq!(e.statement.as_ref().map(|s| s.0), Some(2));
            assert_eq!(count(&c, "SELECT count(*) FROM t"), 0);
        }
        // The refusal does not outlive the run.
        run(&mut c, "INSERT INTO t VALUES (1);").unwrap();
        c.execute_batch("BEGIN; COMMIT;").unwrap();
    }

    #[test]
    fn a_fault_at_a_statement_fails_there_quoting_it_as_d1_does() {
        let mut c = conn();
        run(&mut c, "CREATE TABLE t (x);").unwrap();
        let fault = IngestFault {
            at_statement_with: Some("'marked'".to_owned()),
            ..IngestFault::default()
        };
        let text = ScriptText::new(
            b"INSERT INTO t VALUES (1);\nINSERT INTO t VALUES ('marked');\nINSERT INTO t VALUES (3);"
                .to_vec(),
        )
        .unwrap();
        let e = run_script(&mut c, &text, &fault, &mut |_| {}).unwrap_err();
        let (number, quoted) = e.statement.unwrap();
        assert_eq!(number, 2);
        assert!(quoted.contains("'marked'"), "{quoted}");
        assert_eq!(count(&c, "SELECT count(*) FROM t"), 0, "rolled back");
    }

    #[test]
    fn the_length_limit_applies_to_each_statement() {
        let mut c = conn();
        run(&mut c, "CREATE TABLE t (x);").unwrap();
        // Many statements that fit make a file far over the limit.
        let row = format!("INSERT INTO t VALUES ('{}');\n", "x".repeat(50_000));
        let file = row.repeat(5);
        assert_eq!(run(&mut c, &file).unwrap().statements, 5);
        let long = format!(
            "INSERT INTO t VALUES (1);\nINSERT INTO t VALUES ('{}');",
            "y".repeat(100_000)
        );
        let e = run(&mut c, &long).unwrap_err();
        assert_eq!(e.message, "statement too long: SQLITE_TOOBIG");
        assert_eq!(e.statement.map(|s| s.0), Some(2));
        assert_eq!(count(&c, "SELECT count(*) FROM t"), 5);
    }

    #[test]
    fn an_injected_failure_rolls_back() {
        let mut c = conn();
        run(&mut c, "CREATE TABLE t (x);").unwrap();
        let e = run_with(
            &mut c,
            "INSERT INTO t VALUES (1); INSERT INTO t VALUES (2);",
            Some(1),
        )
        .unwrap_err();
        assert_eq!(e.statements_run, 1);
        assert!(e.message.contains("injected"), "{}", e.message);
        // A file shorter than the count fails at its end.
        let e = run_with(&mut c, "INSERT INTO t VALUES (1);", Some(5)).unwrap_err();
        assert_eq!(e.statements_run, 1);
        assert_eq!(count(&c, "SELECT count(*) FROM t"), 0);
    }

    #[test]
    fn empty_files_and_nul_bytes() {
        let mut c = conn();
        let stats = run(&mut c, "  -- nothing here\n;\n").unwrap();
        assert_eq!(stats.statements, 0);
        assert!(ScriptText::new(b"SELECT 1;\0SELECT 2;".to_vec()).is_err());
    }

    #[test]
    fn syntax_errors_report_sqlites_text() {
        let mut c = conn();
        let e = run(&mut c, "SELECT 1;\nSELEC 2;").unwrap_err();
        assert_eq!(e.message, "near \"SELEC\": syntax error: SQLITE_ERROR");
        assert_eq!(e.statement, Some((2, "SELEC 2;".to_owned())));
    }
}
