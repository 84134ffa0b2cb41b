//! A faithful Rust port of the SQL dumper that D1 and miniflare share.
//!
//! The original is `dumpSql.ts`, whose TypeScript source ships embedded in
//! `node_modules/miniflare/dist/src/workers/d1/database.worker.js.map`. Its
//! header says it is duplicated by hand between miniflare and D1's own
//! workers, so a port of it produces what both `wrangler d1 export --local`
//! and `wrangler d1 export --remote` write, byte for byte. The crate's tests
//! hold this port to a fixture that the real local wrangler produced.
//!
//! The port keeps the original's quirks on purpose; each one is called out
//! where it happens. Values pass through the same conversions as in workerd,
//! where every SQLite integer becomes a JavaScript number (a double), so large
//! integers are rounded and all numbers are printed the way JavaScript's
//! `String(number)` prints them.

use std::fmt;

use rusqlite::Connection;
use rusqlite::types::ValueRef;

/// The choices `wrangler d1 export` passes as `dump_options`.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct DumpOptions {
    /// Leave out the schema (`--no-schema`): only rows are written.
    pub no_schema: bool,
    /// Leave out the rows (`--no-data`): only the schema is written.
    pub no_data: bool,
    /// Only dump these tables (`--table`, repeatable). Empty means all tables.
    pub tables: Vec<String>,
}

/// Why a dump could not be produced.
#[derive(Debug)]
pub enum DumpError {
    /// The database has a virtual table in scope, which D1 refuses to export.
    VirtualTable,
    /// SQLite failed while reading the schema or the rows.
    Sqlite(rusqlite::Error),
}

impl fmt::Display for DumpError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            // This is the exact message D1 and miniflare throw.
            DumpError::VirtualTable => {
                f.write_str("D1 Export error: cannot export databases with Virtual Tables (fts5)")
            }
            DumpError::Sqlite(e) => write!(f, "{e}"),
        }
    }
}

impl std::error::Error for DumpError {}

impl From<rusqlite::Error> for DumpError {
    fn from(e: rusqlite::Error) -> Self {
        DumpError::Sqlite(e)
    }
}

/// Dumps `conn` as a list of SQL statements, in the order `dumpSql` yields them.
///
/// The whole dump reads inside one transaction when the connection is not
/// already in one, so it sees a single consistent state of the database.
pub fn dump_statements(conn: &Connection, options: &DumpOptions) -> Result<Vec<String>, DumpError> {
    if conn.is_autocommit() {
        // The transaction is only read from; dropping it rolls it back.
        let txn = conn.unchecked_transaction()?;
        let out = dump_statements_inner(&txn, options);
        drop(txn);
        out
    } else {
        dump_statements_inner(conn, options)
    }
}

/// Dumps `conn` as the exact bytes wrangler writes to its `--output` file.
///
/// Local wrangler writes `dump.join("\n")`, so there is no trailing newline.
pub fn dump_sql(conn: &Connection, options: &DumpOptions) -> Result<String, DumpError> {
    Ok(dump_statements(conn, options)?.join("\n"))
}

fn dump_statements_inner(
    conn: &Connection,
    options: &DumpOptions,
) -> Result<Vec<String>, DumpError> {
    // The caller in D1 assumes exports are never empty, so this line always
    // comes first, whatever the options.
    let mut out = vec!["PRAGMA defer_foreign_keys=TRUE;".to_owned()];
    let filter = &options.tables;
    let in_filter = |name: &str| filter.is_empty() || filter.iter().any(|t| t == name);

    // This query is taken verbatim from `dumpSql`, which took it from SQLite's
    // shell: `sqlite_sequence` sorts last, everything else in rowid order.
    let tables: Vec<(String, String)> = {
        let mut stmt = conn.prepare(
            "SELECT name, type, sql FROM sqlite_schema AS o WHERE (true) AND type=='table' \
             AND sql NOT NULL ORDER BY tbl_name='sqlite_sequence', rowid;",
        )?;
        let rows = stmt.query_map([], |row| Ok((row.get(0)?, row.get(2)?)))?;
        rows.collect::<Result<_, _>>()?
    };

    for (table, sql) in &tables {
        if !in_filter(table) {
            continue;
        }
        if table == "sqlite_sequence" {
            if !options.no_schema {
                out.push("DELETE FROM sqlite_sequence;".to_owned());
            }
        } else if is_sqlite_stat(table) {
            if !options.no_schema {
                out.push("ANALYZE sqlite_schema;".to_owned());
            }
        } else if sql.starts_with("CREATE VIRTUAL TABLE") {
            return Err(DumpError::VirtualTable);
        } else if table.starts_with("_cf_") || table.starts_with("sqlite_") {
            continue;
        } else if !options.no_schema {
            // The original tests `sql.match(/CREATE TABLE ['"].*/)`, which is
            // not anchored: the pattern may match anywhere in the statement.
            // SQLite's dump adds `IF NOT EXISTS` to tables whose name was
            // quoted, and `dumpSql` follows suit.
            if sql.contains("CREATE TABLE '") || sql.contains("CREATE TABLE \"") {
                out.push(format!(
                    "CREATE TABLE IF NOT EXISTS {};",
                    js_substring_from(sql, 13)
                ));
            } else {
                out.push(format!("{sql};"));
            }
        }

        // Note that `sqlite_sequence` and `sqlite_stat*` rows are dumped too.
        if options.no_data {
            continue;
        }
        dump_rows(conn, table, &mut out)?;
    }

    if !options.no_schema {
        // Also taken from SQLite's shell via `dumpSql`. The filter applies to
        // each object's own name, not to the table it belongs to.
        let mut stmt = conn.prepare(
            "SELECT name, sql FROM sqlite_schema AS o WHERE (true) AND sql NOT NULL   \
             AND type IN ('index', 'trigger', 'view') ORDER BY type COLLATE NOCASE",
        )?;
        let mut rows = stmt.query([])?;
        while let Some(row) = rows.next()? {
            let name: String = row.get(0)?;
            let sql: String = row.get(1)?;
            if in_filter(&name) {
                out.push(format!("{sql};"));
            }
        }
    }
    Ok(out)
}

/// Appends one `INSERT` per row of `table`.
fn dump_rows(conn: &Connection, table: &str, out: &mut Vec<String>) -> Result<(), DumpError> {
    let columns: Vec<String> = {
        let mut stmt = conn.prepare(&format!("PRAGMA table_info={}", escape_id(table)))?;
        let rows = stmt.query_map([], |row| row.get::<_, String>("name"))?;
        rows.collect::<Result<_, _>>()?
    };
    let select = format!(
        "SELECT {} FROM {};",
        columns
            .iter()
            .map(|c| escape_id(c))
            .collect::<Vec<_>>()
            .join(", "),
        escape_id(table)
    );
    let mut stmt = conn.prepare(&select)?;
    let width = stmt.column_count();
    let mut rows = stmt.query([])?;
    while let Some(row) = rows.next()? {
        let mut cells = Vec::with_capacity(width);
        for i in 0..width {
            cells.push(format_cell(row.get_ref(i)?));
        }
        out.push(format!(
            "INSERT INTO {} VALUES({});",
            escape_id(table),
            cells.join(",")
        ));
    }
    Ok(())
}

/// Formats one value as `dumpSql` does after workerd has turned it into a
/// JavaScript value.
fn format_cell(value: ValueRef<'_>) -> String {
    match value {
        ValueRef::Null => "NULL".to_owned(),
        // workerd hands every integer to JavaScript as a double.
        ValueRef::Integer(i) => js_number_to_string(i as f64),
        ValueRef::Real(f) => js_number_to_string(f),
        ValueRef::Text(bytes) => output_quoted_escaped_string(&String::from_utf8_lossy(bytes)),
        ValueRef::Blob(bytes) => {
            let mut s = String::with_capacity(3 + bytes.len() * 2);
            s.push_str("X'");
            for b in bytes {
                s.push_str(&format!("{b:02x}"));
            }
            s.push('\'');
            s
        }
    }
}

/// `table.match(/^sqlite_stat./)`: the prefix and then any one character
/// that is not a line terminator.
fn is_sqlite_stat(table: &str) -> bool {
    table
        .strip_prefix("sqlite_stat")
        .and_then(|rest| rest.chars().next())
        .is_some_and(|c| !matches!(c, '\n' | '\r' | '\u{2028}' | '\u{2029}'))
}

/// JavaScript's `s.substring(n)`, which counts UTF-16 code units.
fn js_substring_from(s: &str, n: usize) -> &str {
    let mut units = 0;
    for (i, c) in s.char_indices() {
        if units >= n {
            return &s[i..];
        }
        units += c.len_utf16();
    }
    ""
}

/// `escapeId`: wraps an identifier in double quotes, doubling any inside.
fn escape_id(id: &str) -> String {
    format!("\"{}\"", id.replace('"', "\"\""))
}

/// A port of `outputQuotedEscapedString`, itself a port of SQLite shell's
/// `output_quoted_escaped_string`.
///
/// Quotes are doubled; line feeds and carriage returns become the two
/// characters `\n` and `\r`, and the literal is then wrapped in `replace(...)`
/// calls that turn them back, carriage returns innermost.
pub fn output_quoted_escaped_string(text: &str) -> String {
    let mut lfs = false;
    let mut crs = false;
    let mut escaped = String::with_capacity(text.len() + 2);
    escaped.push('\'');
    for c in text.chars() {
        match c {
            '\'' => escaped.push_str("''"),
            '\n' => {
                lfs = true;
                escaped.push_str("\\n");
            }
            '\r' => {
                crs = true;
                escaped.push_str("\\r");
            }
            c => escaped.push(c),
        }
    }
    escaped.push('\'');
    if crs {
        escaped = format!("replace({escaped},'\\r',char(13))");
    }
    if lfs {
        escaped = format!("replace({escaped},'\\n',char(10))");
    }
    escaped
}

/// Formats a double exactly as JavaScript's `Number.prototype.toString()`.
///
/// This follows the ECMAScript `Number::toString` algorithm: take the
/// shortest decimal digits that round-trip (Rust's `{:e}` gives those), then
/// place the decimal point, or switch to exponent form below 1e-6 and from
/// 1e21 up.
pub fn js_number_to_string(x: f64) -> String {
    if x.is_nan() {
        return "NaN".to_owned();
    }
    if x == 0.0 {
        // This covers -0 too, which JavaScript prints as "0".
        return "0".to_owned();
    }
    if x.is_infinite() {
        return if x > 0.0 { "Infinity" } else { "-Infinity" }.to_owned();
    }
    let sign = if x < 0.0 { "-" } else { "" };
    let sci = format!("{:e}", x.abs());
    let (mantissa, exponent) = sci.split_once('e').expect("`{:e}` always has an exponent");
    let digits: String = mantissa.chars().filter(|c| *c != '.').collect();
    let exponent: i32 = exponent.parse().expect("`{:e}` exponents are integers");
    // In the spec's terms the value is 0.DIGITS × 10^n, with k digits.
    let k = digits.len() as i32;
    let n = exponent + 1;
    let body = if k <= n && n <= 21 {
        format!("{digits}{}", "0".repeat((n - k) as usize))
    } else if 0 < n && n <= 21 {
        let (int, frac) = digits.split_at(n as usize);
        format!("{int}.{frac}")
    } else if -6 < n && n <= 0 {
        format!("0.{}{digits}", "0".repeat((-n) as usize))
    } else {
        let e = n - 1;
        let e_sign = if e < 0 { '-' } else { '+' };
        let (first, rest) = digits.split_at(1);
        if rest.is_empty() {
            format!("{first}e{e_sign}{}", e.abs())
        } else {
            format!("{first}.{rest}e{e_sign}{}", e.abs())
        }
    };
    format!("{sign}{body}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn js_numbers_print_like_javascript() {
        // Each expectation was printed by Node.js with `String(x)`.
        let cases: &[(f64, &str)] = &[
            (3.0, "3"),
            (-42.0, "-42"),
            (10.5, "10.5"),
            (0.1, "0.1"),
            (1.0 / 3.0, "0.3333333333333333"),
            (-2.5e-7, "-2.5e-7"),
            (1e-7, "1e-7"),
            (0.000001, "0.000001"),
            (1.5e-6, "0.0000015"),
            (1e21, "1e+21"),
            (1.23e21, "1.23e+21"),
            (1e20, "100000000000000000000"),
            (123456789.125, "123456789.125"),
            (9007199254740993_i64 as f64, "9007199254740992"),
            (i64::MAX as f64, "9223372036854776000"),
            (i64::MIN as f64, "-9223372036854776000"),
            (5e-324, "5e-324"),
            (f64::MAX, "1.7976931348623157e+308"),
            (-0.0, "0"),
            (f64::INFINITY, "Infinity"),
            (f64::NEG_INFINITY, "-Infinity"),
            (f64::NAN, "NaN"),
            (123e-20, "1.23e-18"),
            (0.000123, "0.000123"),
        ];
        for (x, want) in cases {
            assert_eq!(js_number_to_string(*x), *want, "formatting {x:?}");
        }
    }

    #[test]
    fn strings_escape_like_the_sqlite_shell() {
        assert_eq!(output_quoted_escaped_string("plain"), "'plain'");
        assert_eq!(output_quoted_escaped_string("it's"), "'it''s'");
        assert_eq!(
            output_quoted_escaped_string("a\nb"),
            "replace('a\\nb','\\n',char(10))"
        );
        assert_eq!(
            output_quoted_escaped_string("a\rb"),
            "replace('a\\rb','\\r',char(13))"
        );
        assert_eq!(
            output_quoted_escaped_string("a\r\n'"),
            "replace(replace('a\\r\\n''','\\r',char(13)),'\\n',char(10))"
        );
    }

    #[test]
    fn substring_counts_utf16_units() {
        assert_eq!(js_substring_from("CREATE TABLE \"x\"", 13), "\"x\"");
        assert_eq!(js_substring_from("ab", 5), "");
    }

    #[test]
    fn sqlite_stat_matches_like_the_regex() {
        assert!(is_sqlite_stat("sqlite_stat1"));
        assert!(is_sqlite_stat("sqlite_stat4"));
        assert!(!is_sqlite_stat("sqlite_stat"));
        assert!(!is_sqlite_stat("sqlite_sequence"));
    }

    fn db(sql: &str) -> Connection {
        let conn = Connection::open_in_memory().unwrap();
        conn.execute_batch(sql).unwrap();
        conn
    }

    #[test]
    fn filter_applies_to_tables_and_to_other_objects_by_their_own_name() {
        let conn = db(
            "CREATE TABLE a (x); CREATE TABLE b (y); INSERT INTO a VALUES (1); \
             INSERT INTO b VALUES (2); CREATE INDEX a_x ON a(x); CREATE VIEW v AS SELECT * FROM a;",
        );
        let opts = DumpOptions {
            tables: vec!["a".into(), "v".into()],
            ..Default::default()
        };
        assert_eq!(
            dump_sql(&conn, &opts).unwrap(),
            "PRAGMA defer_foreign_keys=TRUE;\nCREATE TABLE a (x);\nINSERT INTO \"a\" VALUES(1);\n\
             CREATE VIEW v AS SELECT * FROM a;"
        );
    }

    #[test]
    fn no_schema_and_no_data_are_honoured() {
        let conn = db("CREATE TABLE t (id INTEGER PRIMARY KEY AUTOINCREMENT, v); \
             INSERT INTO t (v) VALUES ('x'); CREATE INDEX t_v ON t(v);");
        let no_schema = DumpOptions {
            no_schema: true,
            ..Default::default()
        };
        assert_eq!(
            dump_sql(&conn, &no_schema).unwrap(),
            "PRAGMA defer_foreign_keys=TRUE;\nINSERT INTO \"t\" VALUES(1,'x');\n\
             INSERT INTO \"sqlite_sequence\" VALUES('t',1);"
        );
        let no_data = DumpOptions {
            no_data: true,
            ..Default::default()
        };
        assert_eq!(
            dump_sql(&conn, &no_data).unwrap(),
            "PRAGMA defer_foreign_keys=TRUE;\n\
             CREATE TABLE t (id INTEGER PRIMARY KEY AUTOINCREMENT, v);\n\
             DELETE FROM sqlite_sequence;\nCREATE INDEX t_v ON t(v);"
        );
    }

    #[test]
    fn virtual_tables_refuse_to_export_unless_filtered_out() {
        let conn = db("CREATE TABLE plain (x); CREATE VIRTUAL TABLE docs USING fts5(body);");
        let err = dump_sql(&conn, &DumpOptions::default()).unwrap_err();
        assert_eq!(
            err.to_string(),
            "D1 Export error: cannot export databases with Virtual Tables (fts5)"
        );
        let only_plain = DumpOptions {
            tables: vec!["plain".into()],
            ..Default::default()
        };
        assert_eq!(
            dump_sql(&conn, &only_plain).unwrap(),
            "PRAGMA defer_foreign_keys=TRUE;\nCREATE TABLE plain (x);"
        );
    }

    #[test]
    fn unanchored_quote_match_and_cf_tables_are_ported_faithfully() {
        let conn = db("CREATE TABLE t (x DEFAULT 'CREATE TABLE \"y\"'); CREATE TABLE _cf_KV (k);");
        assert_eq!(
            dump_sql(&conn, &DumpOptions::default()).unwrap(),
            "PRAGMA defer_foreign_keys=TRUE;\n\
             CREATE TABLE IF NOT EXISTS t (x DEFAULT 'CREATE TABLE \"y\"');"
        );
    }
}
