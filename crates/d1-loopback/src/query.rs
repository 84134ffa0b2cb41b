//! Runs the SQL of one `/query` request the way D1 does.
//!
//! The request's SQL text may hold several statements. They are split with
//! SQLite's own parser: rusqlite's [`Batch`] loops `sqlite3_prepare_v3`,
//! passing the remaining text and its length and resuming at the `pzTail`
//! pointer, exactly as workerd's `SqliteDatabase::prepareSql` does. Because
//! the whole remaining text is handed to SQLite each time, the
//! `SQLITE_LIMIT_SQL_LENGTH` limit applies to it, and an oversized request
//! fails with `statement too long: SQLITE_TOOBIG` as it does on D1.
//!
//! All statements of a request run in one transaction: if any fails, none of
//! them leaves a trace.

use std::time::Instant;

use rusqlite::fallible_iterator::FallibleIterator;
use rusqlite::hooks::{AuthAction, AuthContext, Authorization, TransactionOperation};
use rusqlite::types::{Value, ValueRef};
use rusqlite::{Batch, Connection, ffi};
use serde::Serialize;
use serde::ser::SerializeMap;

/// What D1 puts in `meta.served_by`; ours names this server.
const SERVED_BY: &str = "d1-loopback";

/// One row, with its columns in the order SQLite returned them.
///
/// A JSON map type would sort the keys; D1 keeps the query's column order,
/// and so does this type's serialization.
#[derive(Debug, Default)]
pub(crate) struct Row(Vec<(String, serde_json::Value)>);

impl Row {
    /// Sets a column, keeping the first position of a repeated column name
    /// and the last value, as JavaScript's `Object.fromEntries` does.
    fn set(&mut self, name: &str, value: serde_json::Value) {
        match self.0.iter_mut().find(|(n, _)| n == name) {
            Some(slot) => slot.1 = value,
            None => self.0.push((name.to_owned(), value)),
        }
    }
}

impl Serialize for Row {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let mut map = serializer.serialize_map(Some(self.0.len()))?;
        for (name, value) in &self.0 {
            map.serialize_entry(name, value)?;
        }
        map.end()
    }
}

/// The `meta` object of one statement's result.
#[derive(Debug, Serialize)]
pub(crate) struct Meta {
    pub changed_db: bool,
    pub changes: u64,
    pub duration: f64,
    pub last_row_id: i64,
    /// The number of rows the statement returned. D1 counts rows scanned;
    /// this is an approximation that is exact for plain `SELECT`s.
    pub rows_read: u64,
    /// The number of rows the statement changed.
    pub rows_written: u64,
    pub size_after: u64,
    pub served_by: &'static str,
}

/// The result of one statement, one element of the `/query` result array.
#[derive(Debug, Serialize)]
pub(crate) struct StatementResult {
    pub results: Vec<Row>,
    pub success: bool,
    pub meta: Meta,
}

/// The outcome of a successful request.
#[derive(Debug)]
pub(crate) struct BatchOutcome {
    pub results: Vec<StatementResult>,
    /// Whether any statement could have written (it was not read-only).
    pub wrote: bool,
    /// The rows changed by the whole request.
    pub changes: u64,
}

/// A failed request, with the message D1 would send: SQLite's error text,
/// a colon and the primary result code's name, such as
/// `no such table: t: SQLITE_ERROR`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct SqlError(pub String);

impl SqlError {
    pub(crate) fn from_rusqlite(e: &rusqlite::Error) -> SqlError {
        let (message, code) = match e {
            rusqlite::Error::SqliteFailure(err, msg) => (
                msg.clone()
                    .unwrap_or_else(|| ffi::code_to_str(err.extended_code).to_owned()),
                err.extended_code,
            ),
            rusqlite::Error::SqlInputError { error, msg, .. } => (msg.clone(), error.extended_code),
            other => (other.to_string(), ffi::SQLITE_ERROR),
        };
        SqlError(format!("{message}: {}", code_name(code)))
    }
}

/// The name of a result code's primary code, as workerd's `namedErrorCode`
/// prints it.
pub(crate) fn code_name(code: i32) -> &'static str {
    match code & 0xff {
        ffi::SQLITE_INTERNAL => "SQLITE_INTERNAL",
        ffi::SQLITE_PERM => "SQLITE_PERM",
        ffi::SQLITE_ABORT => "SQLITE_ABORT",
        ffi::SQLITE_BUSY => "SQLITE_BUSY",
        ffi::SQLITE_LOCKED => "SQLITE_LOCKED",
        ffi::SQLITE_NOMEM => "SQLITE_NOMEM",
        ffi::SQLITE_READONLY => "SQLITE_READONLY",
        ffi::SQLITE_INTERRUPT => "SQLITE_INTERRUPT",
        ffi::SQLITE_IOERR => "SQLITE_IOERR",
        ffi::SQLITE_CORRUPT => "SQLITE_CORRUPT",
        ffi::SQLITE_NOTFOUND => "SQLITE_NOTFOUND",
        ffi::SQLITE_FULL => "SQLITE_FULL",
        ffi::SQLITE_CANTOPEN => "SQLITE_CANTOPEN",
        ffi::SQLITE_PROTOCOL => "SQLITE_PROTOCOL",
        ffi::SQLITE_EMPTY => "SQLITE_EMPTY",
        ffi::SQLITE_SCHEMA => "SQLITE_SCHEMA",
        ffi::SQLITE_TOOBIG => "SQLITE_TOOBIG",
        ffi::SQLITE_CONSTRAINT => "SQLITE_CONSTRAINT",
        ffi::SQLITE_MISMATCH => "SQLITE_MISMATCH",
        ffi::SQLITE_MISUSE => "SQLITE_MISUSE",
        ffi::SQLITE_NOLFS => "SQLITE_NOLFS",
        ffi::SQLITE_AUTH => "SQLITE_AUTH",
        ffi::SQLITE_FORMAT => "SQLITE_FORMAT",
        ffi::SQLITE_RANGE => "SQLITE_RANGE",
        ffi::SQLITE_NOTADB => "SQLITE_NOTADB",
        _ => "SQLITE_ERROR",
    }
}

/// Converts one SQLite value to JSON as D1 does: blobs become arrays of
/// byte values, and non-finite reals (which JSON cannot hold) become null.
pub(crate) fn value_to_json(value: ValueRef<'_>) -> serde_json::Value {
    match value {
        ValueRef::Null => serde_json::Value::Null,
        ValueRef::Integer(i) => i.into(),
        ValueRef::Real(f) => serde_json::Number::from_f64(f)
            .map(serde_json::Value::Number)
            .unwrap_or(serde_json::Value::Null),
        ValueRef::Text(t) => String::from_utf8_lossy(t).into_owned().into(),
        ValueRef::Blob(b) => b.iter().map(|&x| serde_json::Value::from(x)).collect(),
    }
}

/// Converts one JSON request parameter to a SQLite value: numbers bind as
/// integers when they are whole and fit, strings as text, arrays of byte
/// values as blobs, booleans as 1 or 0.
pub(crate) fn json_to_param(value: &serde_json::Value) -> Result<Value, String> {
    Ok(match value {
        serde_json::Value::Null => Value::Null,
        serde_json::Value::Bool(b) => Value::Integer(i64::from(*b)),
        serde_json::Value::Number(n) => match n.as_i64() {
            Some(i) => Value::Integer(i),
            None => Value::Real(n.as_f64().ok_or("unsupported number")?),
        },
        serde_json::Value::String(s) => Value::Text(s.clone()),
        serde_json::Value::Array(items) => Value::Blob(
            items
                .iter()
                .map(|item| {
                    item.as_u64()
                        .and_then(|b| u8::try_from(b).ok())
                        .ok_or("blob parameters must be arrays of byte values")
                })
                .collect::<Result<_, _>>()?,
        ),
        serde_json::Value::Object(_) => return Err("unsupported parameter type: object".into()),
    })
}

/// The database size in bytes, as `meta.size_after` reports it.
pub(crate) fn database_size(conn: &Connection) -> rusqlite::Result<u64> {
    let pages: i64 = conn.query_row("PRAGMA page_count", [], |r| r.get(0))?;
    let page_size: i64 = conn.query_row("PRAGMA page_size", [], |r| r.get(0))?;
    Ok(u64::try_from(pages * page_size).unwrap_or(0))
}

/// Refuses `COMMIT` and `ROLLBACK` inside a request, which would end the
/// request's transaction early and break its all-or-nothing promise. `BEGIN`
/// is left to SQLite, which answers "cannot start a transaction within a
/// transaction" as D1 does.
fn deny_transaction_control(ctx: AuthContext<'_>) -> Authorization {
    match ctx.action {
        AuthAction::Transaction {
            operation: TransactionOperation::Begin,
        } => Authorization::Allow,
        AuthAction::Transaction { .. } => Authorization::Deny,
        _ => Authorization::Allow,
    }
}

/// Runs every statement in `sql`, binding `params` to each statement that
/// takes parameters, inside one transaction.
pub(crate) fn run_batch(
    conn: &mut Connection,
    sql: &str,
    params: &[Value],
) -> Result<BatchOutcome, SqlError> {
    let err = |e: rusqlite::Error| SqlError::from_rusqlite(&e);
    // A request that panicked halfway may have left its transaction open or
    // its authorizer installed; start from a clean connection either way.
    conn.authorizer(None::<fn(AuthContext<'_>) -> Authorization>)
        .map_err(err)?;
    if !conn.is_autocommit() {
        conn.execute_batch("ROLLBACK").map_err(err)?;
    }
    conn.execute_batch("BEGIN").map_err(err)?;
    conn.authorizer(Some(deny_transaction_control))
        .map_err(err)?;
    let outcome = run_statements(conn, sql, params);
    conn.authorizer(None::<fn(AuthContext<'_>) -> Authorization>)
        .map_err(err)?;
    match outcome {
        Ok(outcome) => match conn.execute_batch("COMMIT") {
            Ok(()) => Ok(outcome),
            Err(e) => {
                // A deferred foreign key violation fails the commit; the
                // transaction is still open then and must be undone.
                let _ = conn.execute_batch("ROLLBACK");
                Err(err(e))
            }
        },
        Err(e) => {
            if !conn.is_autocommit() {
                let _ = conn.execute_batch("ROLLBACK");
            }
            Err(e)
        }
    }
}

fn run_statements(
    conn: &Connection,
    sql: &str,
    params: &[Value],
) -> Result<BatchOutcome, SqlError> {
    let err = |e: rusqlite::Error| SqlError::from_rusqlite(&e);
    let mut outcome = BatchOutcome {
        results: Vec::new(),
        wrote: false,
        changes: 0,
    };
    let mut params_used = false;
    let mut batch = Batch::new(conn, sql);
    while let Some(mut stmt) = batch.next().map_err(err)? {
        let started = Instant::now();
        let total_before = conn.total_changes();
        let last_row_before = conn.last_insert_rowid();
        let size_before = database_size(conn).map_err(err)?;

        let wanted = stmt.parameter_count();
        if wanted > 0 {
            // workerd's message for a mismatch, see `checkRequirements`.
            if wanted != params.len() {
                return Err(SqlError(
                    "Wrong number of parameter bindings for SQL query.".into(),
                ));
            }
            for (i, value) in params.iter().enumerate() {
                stmt.raw_bind_parameter(i + 1, value).map_err(err)?;
            }
            params_used = true;
        }

        let columns: Vec<String> = stmt.column_names().map(str::to_owned).collect();
        let mut results = Vec::new();
        {
            let mut rows = stmt.raw_query();
            while let Some(row) = rows.next().map_err(err)? {
                let mut out = Row::default();
                for (i, name) in columns.iter().enumerate() {
                    out.set(name, value_to_json(row.get_ref(i).map_err(err)?));
                }
                results.push(out);
            }
        }

        let changes = conn.total_changes() - total_before;
        let last_row_id = conn.last_insert_rowid();
        let size_after = database_size(conn).map_err(err)?;
        outcome.wrote |= !stmt.readonly();
        outcome.changes += changes;
        outcome.results.push(StatementResult {
            meta: Meta {
                changed_db: changes != 0
                    || last_row_id != last_row_before
                    || size_after != size_before,
                changes,
                duration: started.elapsed().as_secs_f64() * 1000.0,
                last_row_id,
                rows_read: results.len() as u64,
                rows_written: changes,
                size_after,
                served_by: SERVED_BY,
            },
            results,
            success: true,
        });
    }
    if outcome.results.is_empty() {
        // miniflare's message; D1 refuses empty requests the same way.
        return Err(SqlError("No SQL statements detected.".into()));
    }
    if !params.is_empty() && !params_used {
        return Err(SqlError(
            "Wrong number of parameter bindings for SQL query.".into(),
        ));
    }
    Ok(outcome)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn conn() -> Connection {
        let conn = Connection::open_in_memory().unwrap();
        conn.set_limit(rusqlite::limits::Limit::SQLITE_LIMIT_SQL_LENGTH, 100_000)
            .unwrap();
        conn
    }

    fn json(outcome: &BatchOutcome) -> String {
        serde_json::to_string(
            &outcome
                .results
                .iter()
                .map(|r| &r.results)
                .collect::<Vec<_>>(),
        )
        .unwrap()
    }

    #[test]
    fn splits_with_sqlites_parser() {
        let mut c = conn();
        let out = run_batch(
            &mut c,
            "CREATE TABLE t (a, b); -- a comment; with a semicolon\n\
             INSERT INTO t VALUES ('x;y', 1); CREATE TRIGGER tr AFTER INSERT ON t BEGIN SELECT 1; END;\n\
             SELECT b AS zeta, a AS alpha, x'0102' AS blob, 1.5 AS r, NULL AS n FROM t;;",
            &[],
        )
        .unwrap();
        assert_eq!(out.results.len(), 4);
        assert!(out.wrote);
        assert_eq!(
            json(&out),
            r#"[[],[],[],[{"zeta":1,"alpha":"x;y","blob":[1,2],"r":1.5,"n":null}]]"#
        );
        assert_eq!(out.results[1].meta.changes, 1);
        assert_eq!(out.results[1].meta.last_row_id, 1);
    }

    #[test]
    fn failures_roll_back_everything() {
        let mut c = conn();
        run_batch(&mut c, "CREATE TABLE t (a UNIQUE)", &[]).unwrap();
        let e = run_batch(
            &mut c,
            "INSERT INTO t VALUES (1); INSERT INTO t VALUES (1)",
            &[],
        )
        .unwrap_err();
        assert_eq!(e.0, "UNIQUE constraint failed: t.a: SQLITE_CONSTRAINT");
        let e = run_batch(&mut c, "INSERT INTO t VALUES (2); SELECT * FROM nope", &[]).unwrap_err();
        assert_eq!(e.0, "no such table: nope: SQLITE_ERROR");
        let count: i64 = c
            .query_row("SELECT count(*) FROM t", [], |r| r.get(0))
            .unwrap();
        assert_eq!(count, 0);
        assert!(c.is_autocommit());
    }

    #[test]
    fn transaction_control_is_refused() {
        let mut c = conn();
        run_batch(&mut c, "CREATE TABLE t (a)", &[]).unwrap();
        let e = run_batch(
            &mut c,
            "INSERT INTO t VALUES (1); COMMIT; INSERT INTO t VALUES (2)",
            &[],
        )
        .unwrap_err();
        assert_eq!(e.0, "not authorized: SQLITE_AUTH");
        let e = run_batch(&mut c, "BEGIN", &[]).unwrap_err();
        assert_eq!(
            e.0,
            "cannot start a transaction within a transaction: SQLITE_ERROR"
        );
        let count: i64 = c
            .query_row("SELECT count(*) FROM t", [], |r| r.get(0))
            .unwrap();
        assert_eq!(count, 0);
    }

    #[test]
    fn statement_length_is_limited_like_d1() {
        let mut c = conn();
        let long = format!("SELECT '{}'", "x".repeat(100_000));
        let e = run_batch(&mut c, &long, &[]).unwrap_err();
        assert_eq!(e.0, "statement too long: SQLITE_TOOBIG");
        let fits = format!("SELECT '{}'", "x".repeat(99_000));
        run_batch(&mut c, &fits, &[]).unwrap();
    }

    #[test]
    fn params_bind_and_are_checked() {
        let mut c = conn();
        let out = run_batch(
            &mut c,
            "SELECT ?1 AS a, ?2 AS b, ?3 AS c",
            &[
                Value::Integer(7),
                Value::Text("s".into()),
                Value::Blob(vec![255]),
            ],
        )
        .unwrap();
        assert_eq!(json(&out), r#"[[{"a":7,"b":"s","c":[255]}]]"#);
        let e = run_batch(&mut c, "SELECT ?", &[]).unwrap_err();
        assert!(e.0.starts_with("Wrong number of parameter bindings"));
        let e = run_batch(&mut c, "SELECT 1", &[Value::Integer(1)]).unwrap_err();
        assert!(e.0.starts_with("Wrong number of parameter bindings"));
    }

    #[test]
    fn empty_requests_are_refused() {
        let mut c = conn();
        let e = run_batch(&mut c, "  -- nothing\n ; ", &[]).unwrap_err();
        assert_eq!(e.0, "No SQL statements detected.");
    }

    #[test]
    fn repeated_column_names_keep_the_last_value() {
        let mut c = conn();
        let out = run_batch(&mut c, "SELECT 1 AS a, 2 AS b, 3 AS a", &[]).unwrap();
        assert_eq!(json(&out), r#"[[{"a":3,"b":2}]]"#);
    }
}
