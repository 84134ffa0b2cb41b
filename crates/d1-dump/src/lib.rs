//! A faithful Rust port of the SQL dumper that D1 and miniflare share.
//!
//! The original is `dumpSql.ts`; the pinned wrangler's copy is bundled in
//! `node_modules/miniflare/dist/src/workers/d1/database.worker.js`. Its
//! header says it is duplicated by hand between miniflare and D1's own
//! workers, so a port of it produces what both `wrangler d1 export --local`
//! and `wrangler d1 export --remote` write, byte for byte. Tests hold this
//! port to a fixture that the real local wrangler produced, and the xtask's
//! tests compare its `backup local` with the pinned wrangler's export.
//!
//! Two users: the loopback D1 server (`d1-loopback`) answers remote exports
//! with it, and `cargo xtask backup local` reads the local D1's SQLite file
//! with it instead of starting workerd. [`write_dump`] streams, so a dump of
//! any size takes a few megabytes of memory.
//!
//! The port keeps the original's quirks on purpose; each one is called out
//! where it happens. Values pass through the same conversions as in workerd,
//! where every SQLite integer becomes a JavaScript number (a double), so large
//! integers are rounded and all numbers are printed the way JavaScript's
//! `String(number)` prints them.

use std::fmt;
use std::io::Write;

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
    /// Write every value so that it reads back as it is stored, where D1's
    /// format would change it ([`Lossless`]); every other byte is the one
    /// D1 writes. Off, the dump is D1's, byte for byte, losses and all (the
    /// loopback, which stands in for D1, keeps it off).
    pub lossless: bool,
}

/// The values D1's format changes, and how a lossless dump writes them:
/// - an integer beyond 2^53, which workerd turns into a JavaScript number
///   (9007199254740993 is written 9007199254740992): written exactly;
/// - text with a line break that also holds the escape's marker (`C:\new`
///   and a newline: `replace('C:\new\nnext','\n',char(10))` reads back with
///   two newlines): a marker the text does not hold, as SQLite's shell
///   chooses one (`\012`, then `(\n0)`, `(\n1)`…), and the same for `\r`;
/// - text that is not UTF-8, which workerd decodes with U+FFFD, and text
///   holding a NUL, which D1's format writes as it is (SQLite reads the
///   statement only up to it): written as its bytes, `CAST(X'…' AS TEXT)`;
/// - a whole REAL in a column whose type keeps what it is given (no type,
///   BLOB, or a STRICT table's ANY), which JavaScript prints as an integer
///   (`1`): written `1.0`.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Lossless {
    /// Per table, in dump order, how many values were written otherwise
    /// than D1 writes them (tables with none are left out).
    pub rewritten: Vec<(String, u64)>,
}

/// Why a dump could not be produced.
#[derive(Debug)]
pub enum DumpError {
    /// The database has a virtual table in scope, which D1 refuses to export.
    VirtualTable,
    /// SQLite failed while reading the schema or the rows.
    Sqlite(rusqlite::Error),
    /// The output could not be written.
    Io(std::io::Error),
}

impl fmt::Display for DumpError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            // This is the exact message D1 and miniflare throw.
            DumpError::VirtualTable => {
                f.write_str("D1 Export error: cannot export databases with Virtual Tables (fts5)")
            }
            DumpError::Sqlite(e) => write!(f, "{e}"),
            // Its cause (a full disk, say) is the source, for a caller to
            // tell from the error chain.
            DumpError::Io(_) => f.write_str("cannot write the dump"),
        }
    }
}

impl std::error::Error for DumpError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            DumpError::Io(e) => Some(e),
            _ => None,
        }
    }
}

impl From<rusqlite::Error> for DumpError {
    fn from(e: rusqlite::Error) -> Self {
        DumpError::Sqlite(e)
    }
}

impl From<std::io::Error> for DumpError {
    fn from(e: std::io::Error) -> Self {
        DumpError::Io(e)
    }
}

/// What a dump held: its statements, and the INSERTs per table in the
/// order the tables were dumped.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct DumpCounts {
    pub statements: u64,
    pub rows: Vec<(String, u64)>,
    /// With [`DumpOptions::lossless`]: where the dump differs from D1's.
    pub lossless: Lossless,
}

/// Dumps `conn` as a list of SQL statements, in the order `dumpSql` yields them.
///
/// The whole dump reads inside one transaction when the connection is not
/// already in one, so it sees a single consistent state of the database.
pub fn dump_statements(conn: &Connection, options: &DumpOptions) -> Result<Vec<String>, DumpError> {
    let mut out = Vec::new();
    in_read_transaction(conn, |conn| {
        let mut emit = |statement: &[u8]| {
            out.push(String::from_utf8_lossy(statement).into_owned());
            Ok(())
        };
        dump_each(conn, options, &mut emit, &mut ())
    })?;
    Ok(out)
}

/// Dumps `conn` as the exact bytes wrangler writes to its `--output` file.
///
/// Local wrangler writes `dump.join("\n")`, so there is no trailing newline.
pub fn dump_sql(conn: &Connection, options: &DumpOptions) -> Result<String, DumpError> {
    let mut out = Vec::new();
    write_dump(conn, options, &mut out)?;
    Ok(String::from_utf8(out).expect("the dump is written from UTF-8 pieces"))
}

/// Streams the dump wrangler would write for `conn` into `out`, byte for
/// byte, one statement at a time, inside one read transaction (see
/// [`dump_statements`]). On an error, what was written so far is not a
/// dump: wrangler writes nothing in that case, so the caller discards it.
pub fn write_dump(
    conn: &Connection,
    options: &DumpOptions,
    out: &mut impl Write,
) -> Result<DumpCounts, DumpError> {
    write_dump_watched(conn, options, out, &mut ())
}

/// Sees each row [`write_dump_watched`] writes, as it is written, so that
/// a caller can judge the values in the dump's own pass over them rather
/// than reading the database again.
pub trait Watch {
    /// Before a table's rows: its name, and its columns in their order.
    fn table(&mut self, _table: &str, _columns: &[String]) {}
    /// One row of the table last named, its values in column order.
    fn row(&mut self, _values: &[ValueRef<'_>]) {}
}

/// Watches nothing.
impl Watch for () {}

/// [`write_dump`], showing `watch` every row as it is written.
pub fn write_dump_watched(
    conn: &Connection,
    options: &DumpOptions,
    out: &mut impl Write,
    watch: &mut dyn Watch,
) -> Result<DumpCounts, DumpError> {
    in_read_transaction(conn, |conn| {
        let mut first = true;
        let mut emit = |statement: &[u8]| {
            if !first {
                out.write_all(b"\n")?;
            }
            first = false;
            out.write_all(statement)?;
            Ok(())
        };
        dump_each(conn, options, &mut emit, watch)
    })
}

fn in_read_transaction<T>(
    conn: &Connection,
    dump: impl FnOnce(&Connection) -> Result<T, DumpError>,
) -> Result<T, DumpError> {
    if conn.is_autocommit() {
        // The transaction is only read from; dropping it rolls it back.
        let txn = conn.unchecked_transaction()?;
        let out = dump(&txn);
        drop(txn);
        out
    } else {
        dump(conn)
    }
}

/// Where each statement goes, as it is made.
type Emit<'a> = dyn FnMut(&[u8]) -> Result<(), DumpError> + 'a;

fn dump_each(
    conn: &Connection,
    options: &DumpOptions,
    emit: &mut Emit<'_>,
    watch: &mut dyn Watch,
) -> Result<DumpCounts, DumpError> {
    let mut counts = DumpCounts::default();
    let mut emit = |statement: &[u8]| {
        counts.statements += 1;
        emit(statement)
    };
    // The caller in D1 assumes exports are never empty, so this line always
    // comes first, whatever the options.
    emit(b"PRAGMA defer_foreign_keys=TRUE;")?;

    let mut rows = Vec::new();
    for (table, sql) in &schema_tables(conn)? {
        if !is_listed(options, table) {
            continue;
        }
        if !emit_table_schema(table, sql, options, &mut emit)? {
            continue;
        }

        // Note that `sqlite_sequence` and `sqlite_stat*` rows are dumped too.
        if options.no_data {
            continue;
        }
        let (n, rewritten) = dump_rows(conn, table, (options.lossless, watch), &mut emit)?;
        rows.push((table.clone(), n));
        if rewritten > 0 {
            counts.lossless.rewritten.push((table.clone(), rewritten));
        }
    }

    if !options.no_schema {
        emit_late_schema(conn, options, &mut emit)?;
    }
    counts.rows = rows;
    Ok(counts)
}

/// Whether the `--table` filter, if any, lists `name`.
fn is_listed(options: &DumpOptions, name: &str) -> bool {
    let filter = &options.tables;
    filter.is_empty() || filter.iter().any(|t| t == name)
}

/// The tables, as (name, sql), in the order the dump writes them.
fn schema_tables(conn: &Connection) -> Result<Vec<(String, String)>, DumpError> {
    // This query is taken verbatim from `dumpSql`, which took it from SQLite's
    // shell: `sqlite_sequence` sorts last, everything else in rowid order.
    let mut stmt = conn.prepare(
        "SELECT name, type, sql FROM sqlite_schema AS o WHERE (true) AND type=='table' \
         AND sql NOT NULL ORDER BY tbl_name='sqlite_sequence', rowid;",
    )?;
    let rows = stmt.query_map([], |row| Ok((row.get(0)?, row.get(2)?)))?;
    Ok(rows.collect::<Result<_, _>>()?)
}

/// Emits what comes before a table's rows, as `dumpSql` writes it. `false`
/// for a table that is skipped, rows and all.
fn emit_table_schema(
    table: &str,
    sql: &str,
    options: &DumpOptions,
    emit: &mut Emit<'_>,
) -> Result<bool, DumpError> {
    if table == "sqlite_sequence" {
        if !options.no_schema {
            emit(b"DELETE FROM sqlite_sequence;")?;
        }
    } else if is_sqlite_stat(table) {
        if !options.no_schema {
            emit(b"ANALYZE sqlite_schema;")?;
        }
    } else if sql.starts_with("CREATE VIRTUAL TABLE") {
        return Err(DumpError::VirtualTable);
    } else if table.starts_with("_cf_") || table.starts_with("sqlite_") {
        return Ok(false);
    } else if !options.no_schema {
        // The original tests `sql.match(/CREATE TABLE ['"].*/)`, which is
        // not anchored: the pattern may match anywhere in the statement.
        // SQLite's dump adds `IF NOT EXISTS` to tables whose name was
        // quoted, and `dumpSql` follows suit.
        let lossless = options.lossless;
        if sql.contains("CREATE TABLE '") || sql.contains("CREATE TABLE \"") {
            let sql = format!("CREATE TABLE IF NOT EXISTS {}", js_substring_from(sql, 13));
            emit(&terminated(&sql, lossless))?;
        } else {
            emit(&terminated(sql, lossless))?;
        }
    }
    Ok(true)
}

/// Emits the indexes, triggers and views, after every table's rows.
fn emit_late_schema(
    conn: &Connection,
    options: &DumpOptions,
    emit: &mut Emit<'_>,
) -> Result<(), DumpError> {
    // Also taken from SQLite's shell via `dumpSql`. The filter applies to
    // each object's own name, not to the table it belongs to.
    let mut stmt = conn.prepare(
        "SELECT name, sql FROM sqlite_schema AS o WHERE (true) AND sql NOT NULL   \
         AND type IN ('index', 'trigger', 'view') ORDER BY type COLLATE NOCASE",
    )?;
    let mut objects = stmt.query([])?;
    while let Some(row) = objects.next()? {
        let name: String = row.get(0)?;
        let sql: String = row.get(1)?;
        if is_listed(options, &name) {
            emit(&terminated(&sql, options.lossless))?;
        }
    }
    Ok(())
}

/// A schema object's statement: its text and `;`, as D1 writes it. SQLite
/// keeps the text of a WITHOUT ROWID or STRICT table, an index or a view up
/// to a `--` comment written before its `;` (D1 without the line break), so
/// that D1's `;` lands inside the comment, and the statement runs into the
/// next one or never ends. `lossless` puts the `;` on a line of its own
/// there, which loads as the same object (SQLite keeps the line break of a
/// table's or an index's text, and a backup of it writes these bytes again).
fn terminated(sql: &str, lossless: bool) -> Vec<u8> {
    let statement = format!("{sql};");
    if lossless && !d1_sql::statements::is_complete(&statement) {
        return format!("{sql}\n;").into_bytes();
    }
    statement.into_bytes()
}

/// Emits one `INSERT` per row of `table`, naming the columns as wrangler
/// 4.94 and later do: `INSERT INTO "t" ("a","b") VALUES(...);`. Returns
/// the number of rows, and how many values `lossless` wrote otherwise than
/// D1 does; `watch` sees each row's values.
fn dump_rows(
    conn: &Connection,
    table: &str,
    (lossless, watch): (bool, &mut dyn Watch),
    emit: &mut dyn FnMut(&[u8]) -> Result<(), DumpError>,
) -> Result<(u64, u64), DumpError> {
    let (columns, types): (Vec<String>, Vec<String>) = {
        let mut stmt = conn.prepare(&format!("PRAGMA table_info={}", escape_id(table)))?;
        let rows = stmt.query_map([], |row| {
            Ok((row.get::<_, String>("name")?, row.get::<_, String>("type")?))
        })?;
        rows.collect::<Result<Vec<_>, _>>()?.into_iter().unzip()
    };
    // Where a whole REAL printed as an integer would read back as one.
    let keeps_type: Vec<bool> = types.iter().map(|t| keeps_what_it_is_given(t)).collect();
    let quoted: Vec<String> = columns.iter().map(|c| escape_id(c)).collect();
    let select = format!("SELECT {} FROM {};", quoted.join(", "), escape_id(table));
    // Everything before the values is the same for every row.
    let prefix = format!(
        "INSERT INTO {} ({}) VALUES(",
        escape_id(table),
        quoted.join(",")
    );
    let mut stmt = conn.prepare(&select)?;
    let width = stmt.column_count();
    watch.table(table, &columns[..width.min(columns.len())]);
    let mut rows = stmt.query([])?;
    let mut line = Vec::with_capacity(4096);
    let (mut n, mut rewritten) = (0, 0);
    while let Some(row) = rows.next()? {
        line.clear();
        line.extend_from_slice(prefix.as_bytes());
        let values = { 0..width.min(keeps_type.len()) }
            .map(|i| row.get_ref(i))
            .collect::<Result<Vec<_>, _>>()?;
        for (i, (&value, &keeps_type)) in values.iter().zip(&keeps_type).enumerate() {
            if i > 0 {
                line.push(b',');
            }
            let exact = lossless.then_some(keeps_type);
            if write_cell(&mut line, value, exact) {
                rewritten += 1;
            }
        }
        line.extend_from_slice(b");");
        emit(&line)?;
        watch.row(&values);
        n += 1;
    }
    Ok((n, rewritten))
}

/// Whether a column of the declared type `declared` stores a value as it
/// is given: SQLite's BLOB affinity (no type, or one naming BLOB and no
/// INT, CHAR, CLOB or TEXT), and a STRICT table's ANY. Every other
/// affinity turns a whole REAL into an INTEGER or TEXT anyway, or reads
/// `1` back as the REAL it was (REAL affinity).
fn keeps_what_it_is_given(declared: &str) -> bool {
    let t = declared.to_ascii_uppercase();
    let has = |s: &str| t.contains(s);
    t == "ANY"
        || !(has("INT") || has("CHAR") || has("CLOB") || has("TEXT"))
            && (t.is_empty() || has("BLOB"))
}

/// Formats one value as `dumpSql` does after workerd has turned it into a
/// JavaScript value; with `exact` (whether the column keeps the type it is
/// given), a value D1's format would change is written to read back
/// exactly ([`Lossless`]), and `true` says so.
fn write_cell(out: &mut Vec<u8>, value: ValueRef<'_>, exact: Option<bool>) -> bool {
    match value {
        ValueRef::Null => out.extend_from_slice(b"NULL"),
        // workerd hands every integer to JavaScript as a double; up to 2^53
        // that double prints as the integer itself.
        ValueRef::Integer(i) if i.unsigned_abs() <= 1 << 53 => {
            write!(out, "{i}").expect("writing to memory cannot fail")
        }
        ValueRef::Integer(i) => {
            let js = js_cell_number(i as f64);
            if exact.is_some() && js != i.to_string() {
                write!(out, "{i}").expect("writing to memory cannot fail");
                return true;
            }
            out.extend_from_slice(js.as_bytes());
        }
        // JavaScript prints -0 as `0`: written so, it reads back as +0.0,
        // another double (`atan2(v, -1)`, a Worker's `Object.is(v, -0)`).
        ValueRef::Real(f) if exact == Some(true) && f == 0.0 && f.is_sign_negative() => {
            out.extend_from_slice(b"-0.0");
            return true;
        }
        ValueRef::Real(f) => {
            let js = js_cell_number(f);
            out.extend_from_slice(js.as_bytes());
            // A whole double prints as an integer; SQLite reads one that
            // fits in 64 bits back as an INTEGER (a larger one stays REAL).
            if exact == Some(true) && js.parse::<i64>().is_ok() {
                out.extend_from_slice(b".0");
                return true;
            }
        }
        ValueRef::Text(bytes) => match (std::str::from_utf8(bytes), exact) {
            // A NUL would end the statement where SQLite reads it: written
            // as the text of its bytes, as text that is not UTF-8 is.
            (Ok(text), Some(_)) if !text.contains('\0') => {
                return write_quoted_exactly(out, text);
            }
            (Ok(text), None) => write_quoted_escaped_string(out, text),
            (_, Some(_)) => {
                out.extend_from_slice(b"CAST(");
                write_blob(out, bytes);
                out.extend_from_slice(b" AS TEXT)");
                return true;
            }
            // workerd decodes invalid UTF-8 with replacement characters.
            (Err(_), None) => write_quoted_escaped_string(out, &String::from_utf8_lossy(bytes)),
        },
        ValueRef::Blob(bytes) => write_blob(out, bytes),
    }
    false
}

/// `X'00ff'`.
fn write_blob(out: &mut Vec<u8>, bytes: &[u8]) {
    const HEX: &[u8; 16] = b"0123456789abcdef";
    out.reserve(3 + bytes.len() * 2);
    out.extend_from_slice(b"X'");
    for b in bytes {
        out.push(HEX[usize::from(b >> 4)]);
        out.push(HEX[usize::from(b & 15)]);
    }
    out.push(b'\'');
}

/// `Number.isFinite(cell) ? cell : cell > 0 ? "9e999" : "-9e999"`: an
/// infinite REAL is written as a literal SQLite reads back as infinity.
fn js_cell_number(x: f64) -> String {
    if x.is_finite() {
        js_number_to_string(x)
    } else if x > 0.0 {
        "9e999".to_owned()
    } else {
        "-9e999".to_owned()
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
    let mut out = Vec::with_capacity(text.len() + 2);
    write_quoted_escaped_string(&mut out, text);
    String::from_utf8(out).expect("escaping keeps UTF-8")
}

fn write_quoted_escaped_string(out: &mut Vec<u8>, text: &str) {
    write_quoted_with_markers(out, text, "\\n", "\\r");
}

/// Writes `text` as [`write_quoted_escaped_string`] does, but when it has a
/// line feed and holds `\n`, or a carriage return and holds `\r`, with a
/// marker for each that the text does not hold, as SQLite's shell chooses
/// one (`unused_string`): `\012` (`\015`), then `(\n0)`, `(\n1)`…; `true`
/// then (D1's bytes would not read back). A marker that the text does not
/// hold cannot be found in the escaped text either, as it has no prefix
/// that is also its suffix.
fn write_quoted_exactly(out: &mut Vec<u8>, text: &str) -> bool {
    let clash = |c: char, marker: &str| text.contains(c) && text.contains(marker);
    if !clash('\n', "\\n") && !clash('\r', "\\r") {
        write_quoted_escaped_string(out, text);
        return false;
    }
    let free = |first: &str, second: &str, letter: char| -> String {
        [first.to_owned(), second.to_owned()]
            .into_iter()
            .chain((0u32..).map(|i| format!("(\\{letter}{i})")))
            .find(|m| !text.contains(m.as_str()))
            .expect("some marker is not in the text")
    };
    let lf = free("\\n", "\\012", 'n');
    let cr = free("\\r", "\\015", 'r');
    write_quoted_with_markers(out, text, &lf, &cr);
    true
}

fn write_quoted_with_markers(out: &mut Vec<u8>, text: &str, lf: &str, cr: &str) {
    let bytes = text.as_bytes();
    let special = |b: &u8| matches!(b, b'\'' | b'\n' | b'\r');
    if !bytes.iter().any(special) {
        // The common case: nothing to escape.
        out.reserve(bytes.len() + 2);
        out.push(b'\'');
        out.extend_from_slice(bytes);
        out.push(b'\'');
        return;
    }
    let lfs = bytes.contains(&b'\n');
    let crs = bytes.contains(&b'\r');
    if lfs {
        out.extend_from_slice(b"replace(");
    }
    if crs {
        out.extend_from_slice(b"replace(");
    }
    out.push(b'\'');
    for &b in bytes {
        match b {
            b'\'' => out.extend_from_slice(b"''"),
            b'\n' => out.extend_from_slice(lf.as_bytes()),
            b'\r' => out.extend_from_slice(cr.as_bytes()),
            b => out.push(b),
        }
    }
    out.push(b'\'');
    if crs {
        write!(out, ",'{cr}',char(13))").expect("writing to memory cannot fail");
    }
    if lfs {
        write!(out, ",'{lf}',char(10))").expect("writing to memory cannot fail");
    }
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

    /// Every value of `conn`'s table `t`, by rowid: its type and exact
    /// content (text as bytes, so that invalid UTF-8 is seen).
    fn values(conn: &Connection, table: &str) -> Vec<Vec<(String, String)>> {
        let mut stmt = conn
            .prepare(&format!("SELECT * FROM {table} ORDER BY rowid"))
            .unwrap();
        let width = stmt.column_count();
        let mut rows = stmt.query([]).unwrap();
        let mut all = Vec::new();
        while let Some(row) = rows.next().unwrap() {
            all.push(
                (0..width)
                    .map(|i| match row.get_ref(i).unwrap() {
                        ValueRef::Null => ("null".into(), String::new()),
                        ValueRef::Integer(i) => ("integer".into(), i.to_string()),
                        // -0.0 and 0.0 are one value to SQLite.
                        ValueRef::Real(f) => ("real".into(), format!("{:?}", f + 0.0)),
                        ValueRef::Text(t) => ("text".into(), format!("{t:?}")),
                        ValueRef::Blob(b) => ("blob".into(), format!("{b:?}")),
                    })
                    .collect(),
            );
        }
        all
    }

    /// A lossless dump reads back as the database it was made from, value
    /// for value and type for type, where D1's own bytes do not; with
    /// nothing D1 loses, the two dumps are the same bytes. The texts are
    /// made of markers' pieces, so that every marker choice is exercised.
    #[test]
    fn a_lossless_dump_reads_back_exactly() {
        let source = Connection::open_in_memory().unwrap();
        source
            .execute_batch(
                "CREATE TABLE t (id INTEGER PRIMARY KEY, untyped, b BLOB, r REAL, n INTEGER, s TEXT);
                 CREATE TABLE strict_any (id INTEGER PRIMARY KEY, v ANY) STRICT;",
            )
            .unwrap();
        let integers = [
            (1 << 53) + 1,
            -(1 << 53) - 1,
            i64::MAX,
            i64::MIN,
            1 << 60,
            5,
        ];
        let reals = [1.0, -0.0, 2.5, 1e20, 9.2e18, 1e300, -3.0, f64::INFINITY];
        let pieces = [
            "\\", "n", "r", "0", "1", "2", "5", "(", ")", "\n", "\r", "a", "'",
        ];
        let mut seed: u64 = 0x9e37_79b9_7f4a_7c15;
        let mut next = |n: usize| {
            seed = seed
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            (seed >> 33) as usize % n
        };
        let insert = "INSERT INTO t (untyped, b, r, n, s) VALUES (?1, ?1, ?2, ?3, ?4)";
        for i in 0..3000 {
            let text: String = (0..next(12)).map(|_| pieces[next(pieces.len())]).collect();
            let int = integers[i % integers.len()];
            let real = reals[i % reals.len()];
            let untyped: rusqlite::types::Value = match i % 3 {
                0 => int.into(),
                1 => real.into(),
                _ => text.clone().into(),
            };
            source
                .execute(insert, rusqlite::params![untyped, real, int, text])
                .unwrap();
            source
                .execute("INSERT INTO strict_any (v) VALUES (?1)", [untyped])
                .unwrap();
        }
        source
            .execute_batch(
                "INSERT INTO t (untyped, s) VALUES (CAST(X'ff61' AS TEXT), CAST(X'c3' AS TEXT));",
            )
            .unwrap();
        let read_back = |lossless: bool| {
            let options = DumpOptions {
                lossless,
                ..DumpOptions::default()
            };
            let mut out = Vec::new();
            let counts = write_dump(&source, &options, &mut out).unwrap();
            let copy = Connection::open_in_memory().unwrap();
            copy.execute_batch(std::str::from_utf8(&out).unwrap())
                .unwrap();
            (copy, counts)
        };
        let (exact, counts) = read_back(true);
        for table in ["t", "strict_any"] {
            assert_eq!(values(&exact, table), values(&source, table), "{table}");
        }
        let rewritten: u64 = counts.lossless.rewritten.iter().map(|(_, n)| n).sum();
        assert!(rewritten > 0, "{counts:?}");
        // D1's bytes lose values: the test can tell.
        let (lossy, _) = read_back(false);
        assert_ne!(values(&lossy, "t"), values(&source, "t"));

        // Nothing D1 loses: the same bytes either way.
        let plain = Connection::open_in_memory().unwrap();
        plain
            .execute_batch(
                "CREATE TABLE t (id INTEGER PRIMARY KEY, untyped, r REAL, s TEXT);
                 INSERT INTO t VALUES (1, 2.5, 1.0, 'a' || char(10) || 'b\\rc'),
                   (2, 9007199254740992, -0.0, 'x' || char(13) || 'y\\n');",
            )
            .unwrap();
        let dump = |lossless| {
            let options = DumpOptions {
                lossless,
                ..DumpOptions::default()
            };
            dump_sql(&plain, &options).unwrap()
        };
        assert_eq!(dump(true), dump(false));
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

    /// The first column of every row `sql` returns.
    fn first_column<T: rusqlite::types::FromSql>(conn: &Connection, sql: &str) -> Vec<T> {
        let mut stmt = conn.prepare(sql).unwrap();
        let rows = stmt.query_map([], |r| r.get(0)).unwrap();
        rows.collect::<Result<_, _>>().unwrap()
    }

    #[test]
    fn a_watch_sees_each_table_written_and_its_rows_values_in_order() {
        #[derive(Default)]
        struct Seen(Vec<String>);
        impl Watch for Seen {
            fn table(&mut self, table: &str, columns: &[String]) {
                self.0.push(format!("{table}({})", columns.join(",")));
            }
            fn row(&mut self, values: &[ValueRef<'_>]) {
                self.0.push(format!("{values:?}"));
            }
        }
        let conn = db(
            "CREATE TABLE a (x, \"y z\"); INSERT INTO a VALUES (1, 'one'), (NULL, X'00'); \
             CREATE TABLE b (y); CREATE TABLE c (w); INSERT INTO c VALUES (2.5);",
        );
        let options = DumpOptions {
            tables: vec!["a".to_owned(), "b".to_owned()],
            ..DumpOptions::default()
        };
        let (mut seen, mut watched) = (Seen::default(), Vec::new());
        let counts = write_dump_watched(&conn, &options, &mut watched, &mut seen).unwrap();
        assert_eq!(
            seen.0,
            [
                "a(x,y z)",
                "[Integer(1), Text([111, 110, 101])]",
                "[Null, Blob([0])]",
                "b(y)"
            ]
        );
        let mut unwatched = Vec::new();
        assert_eq!(write_dump(&conn, &options, &mut unwatched).unwrap(), counts);
        assert_eq!(watched, unwatched);
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
            "PRAGMA defer_foreign_keys=TRUE;\nCREATE TABLE a (x);\nINSERT INTO \"a\" (\"x\") VALUES(1);\n\
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
            "PRAGMA defer_foreign_keys=TRUE;\nINSERT INTO \"t\" (\"id\",\"v\") VALUES(1,'x');\n\
             INSERT INTO \"sqlite_sequence\" (\"name\",\"seq\") VALUES('t',1);"
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

    #[test]
    fn infinite_reals_are_written_as_literals_sqlite_reads_back() {
        let conn = db("CREATE TABLE t (x); INSERT INTO t VALUES (1e999), (-1e999);");
        let dump = dump_sql(&conn, &DumpOptions::default()).unwrap();
        assert!(
            dump.ends_with("VALUES(9e999);\nINSERT INTO \"t\" (\"x\") VALUES(-9e999);"),
            "{dump}"
        );
        let back = db(&dump.replace("PRAGMA defer_foreign_keys=TRUE;", ""));
        let values: Vec<f64> = first_column(&back, "SELECT x FROM t");
        assert_eq!(values, [f64::INFINITY, f64::NEG_INFINITY]);
    }

    #[test]
    fn the_stream_is_the_joined_statements_and_counts_them() {
        let conn = db("CREATE TABLE a (x); INSERT INTO a VALUES (1), (2); CREATE TABLE b (y);");
        let statements = dump_statements(&conn, &DumpOptions::default()).unwrap();
        let mut streamed = Vec::new();
        let counts = write_dump(&conn, &DumpOptions::default(), &mut streamed).unwrap();
        assert_eq!(String::from_utf8(streamed).unwrap(), statements.join("\n"));
        assert_eq!(counts.statements, statements.len() as u64);
        assert_eq!(counts.rows, [("a".to_owned(), 2), ("b".to_owned(), 0)]);
    }

    #[test]
    fn integers_beyond_two_to_the_53_are_rounded_as_javascript_numbers() {
        let conn = db(
            "CREATE TABLE t (n); INSERT INTO t VALUES (9007199254740992), \
             (9007199254740993), (-9007199254740993), (-9223372036854775808);",
        );
        let dump = dump_sql(&conn, &DumpOptions::default()).unwrap();
        let values: Vec<&str> = dump
            .lines()
            .filter_map(|l| l.strip_prefix("INSERT INTO \"t\" (\"n\") VALUES("))
            .collect();
        assert_eq!(
            values,
            [
                "9007199254740992);",
                "9007199254740992);",
                "-9007199254740992);",
                "-9223372036854776000);"
            ]
        );
    }

    /// Text holding a NUL is legal in D1, and D1's format writes the NUL
    /// as it is, which ends the statement where SQLite reads it: a
    /// lossless dump writes the text's bytes (atkK).
    #[test]
    fn text_holding_a_nul_reads_back_exactly_from_a_lossless_dump() {
        let conn = db("CREATE TABLE t (s TEXT); INSERT INTO t VALUES (CAST(X'610062' AS TEXT));");
        let options = DumpOptions {
            lossless: true,
            ..DumpOptions::default()
        };
        let dump = dump_sql(&conn, &options).unwrap();
        assert!(!dump.contains('\0'), "{dump:?}");
        assert!(dump.contains("CAST(X'610062' AS TEXT)"), "{dump}");
        let copy = Connection::open_in_memory().unwrap();
        copy.execute_batch(&dump).unwrap();
        let (kind, hex): (String, String) = copy
            .query_row("SELECT typeof(s), hex(s) FROM t", [], |r| {
                Ok((r.get(0)?, r.get(1)?))
            })
            .unwrap();
        assert_eq!((kind.as_str(), hex.as_str()), ("text", "610062"));
    }

    /// A table, an index and a view whose text ends in a `--` comment, as
    /// D1 keeps them: D1's bytes end each with a `;` inside the comment; a
    /// lossless dump puts it on a line of its own, and loads.
    #[test]
    fn a_statement_ending_in_a_line_comment_ends_in_a_lossless_dump() {
        let conn = db("CREATE TABLE s (k TEXT PRIMARY KEY) WITHOUT ROWID;\n\
             CREATE INDEX s_k ON s (k);\nCREATE VIEW v AS SELECT k FROM s;\n\
             PRAGMA writable_schema = ON;\n\
             UPDATE sqlite_schema SET sql = sql || ' -- note; END';\n\
             PRAGMA writable_schema = OFF;");
        let dump = |lossless| {
            let options = DumpOptions {
                lossless,
                ..DumpOptions::default()
            };
            dump_sql(&conn, &options).unwrap()
        };
        let d1 = dump(false);
        assert!(d1.contains("WITHOUT ROWID -- note; END;\n"), "{d1}");
        let exact = dump(true);
        assert_eq!(exact.replace(" END\n;", " END;"), d1);
        let copy = db(&exact);
        let objects: Vec<String> = first_column(&copy, "SELECT sql FROM sqlite_schema");
        assert_eq!(objects.len(), 3, "{objects:?}");
        assert!(
            objects
                .iter()
                .all(|sql| sql.trim_end().ends_with("-- note; END"))
        );
    }

    #[test]
    fn invalid_utf8_text_is_replaced_as_workerd_decodes_it() {
        let conn = db("CREATE TABLE t (s); INSERT INTO t VALUES (CAST(X'61ff0a27' AS TEXT));");
        let dump = dump_sql(&conn, &DumpOptions::default()).unwrap();
        assert!(
            dump.ends_with("VALUES(replace('a\u{fffd}\\n''','\\n',char(10)));"),
            "{dump}"
        );
    }
}
