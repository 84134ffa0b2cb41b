//! Values a database holds that D1 cannot: a string or BLOB, or a row,
//! over [`D1_VALUE_LIMIT`]. Local D1 (miniflare's SQLite) holds them; D1
//! refuses them, and so does every load of a dump this tool runs, so a
//! backup holding one can never be restored. A row is measured as SQLite
//! stores it, its record ([`record_bytes`]), which is what SQLite's
//! length limit bounds; text as D1 holds it, in UTF-8.

use rusqlite::Connection;
use rusqlite::types::ValueRef;

use crate::gate::D1_VALUE_LIMIT;
use crate::statement::quote_ident;

/// One place over the limit: a column's largest value, or (no `column`)
/// a row whose values are each within it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Oversized {
    pub table: String,
    pub column: Option<String>,
    /// The largest such value, or the largest row's record, in bytes.
    pub bytes: u64,
}

impl Oversized {
    /// `notes.body holds a value of 2.5 MB`, never the value.
    pub fn said(&self) -> String {
        let table = crate::names::shown_name(&self.table);
        let size = crate::wording::size(self.bytes);
        match &self.column {
            Some(column) => format!(
                "{table}.{} holds a value of {size}",
                crate::names::shown_name(column)
            ),
            None => format!("a row of {table} is {size} as SQLite stores it"),
        }
    }
}

/// A value as SQLite's record format holds it, for [`record_bytes`]: text
/// by its bytes in UTF-8 (D1's encoding).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stored {
    Null,
    Integer(i64),
    Real,
    Text(u64),
    Blob(u64),
}

impl Stored {
    /// `value`, as D1 would hold it.
    pub fn of(value: ValueRef<'_>) -> Stored {
        match value {
            ValueRef::Null => Stored::Null,
            ValueRef::Integer(i) => Stored::Integer(i),
            ValueRef::Real(_) => Stored::Real,
            ValueRef::Text(t) => Stored::Text(t.len() as u64),
            ValueRef::Blob(b) => Stored::Blob(b.len() as u64),
        }
    }

    /// Its serial type, and the bytes of its body.
    fn serial(self) -> (u64, u64) {
        match self {
            Stored::Null => (0, 0),
            Stored::Integer(0) => (8, 0),
            Stored::Integer(1) => (9, 0),
            Stored::Integer(i) => match i {
                -0x80..=0x7f => (1, 1),
                -0x8000..=0x7fff => (2, 2),
                -0x80_0000..=0x7f_ffff => (3, 3),
                -0x8000_0000..=0x7fff_ffff => (4, 4),
                -0x8000_0000_0000..=0x7fff_ffff_ffff => (5, 6),
                _ => (6, 8),
            },
            Stored::Real => (7, 8),
            Stored::Text(n) => (2 * n + 13, n),
            Stored::Blob(n) => (2 * n + 12, n),
        }
    }
}

/// The bytes of SQLite's varint for `v`.
fn varint_bytes(v: u64) -> u64 {
    let bits = 64 - u64::from(v.leading_zeros());
    match bits {
        0..=56 => bits.div_ceil(7).max(1),
        _ => 9,
    }
}

/// The record's header, `serial` bytes of serial types and its own size
/// before them (as `OP_MakeRecord` counts it).
fn header_bytes(serial: u64) -> u64 {
    match serial {
        0..=126 => serial + 1,
        _ => {
            let own = varint_bytes(serial);
            serial + own + u64::from(own < varint_bytes(serial + own))
        }
    }
}

/// The bytes of the record SQLite makes of a row of `values`: its header
/// (its size, then each value's serial type, as varints) and each value's
/// body (an integer 0 to 8 bytes by its value, a real 8, text and BLOBs
/// their length). SQLite's length limit, which D1 sets to
/// [`D1_VALUE_LIMIT`], bounds it. An `INTEGER PRIMARY KEY` is counted as
/// held in the record, which it is not (it is the rowid): at most 9 bytes
/// more than SQLite's own count.
pub fn record_bytes(values: impl IntoIterator<Item = Stored>) -> u64 {
    let (serial, body) = { values.into_iter() }
        .map(|v| {
            let (serial, body) = v.serial();
            (varint_bytes(serial), body)
        })
        .fold((0, 0), |(s, b), (vs, vb)| (s + vs, b + vb));
    header_bytes(serial) + body
}

/// A VIRTUAL generated column SQLite could not compute for some row of
/// its table (`json_extract` of text that is not JSON, an integer
/// overflow): its size was not measured, and D1 fails every read of it on
/// that row as SQLite did here.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Uncomputed {
    pub table: String,
    pub column: String,
    /// SQLite's message, without anything it quotes
    /// ([`crate::gate::without_values`]).
    pub why: String,
}

impl Uncomputed {
    /// `vj.g (malformed JSON)`, never a value.
    pub fn said(&self) -> String {
        format!(
            "{}.{} ({})",
            crate::names::shown_name(&self.table),
            crate::names::shown_name(&self.column),
            self.why
        )
    }
}

/// What [`over_the_limit`] found.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Found {
    pub oversized: Vec<Oversized>,
    /// The VIRTUAL generated columns left unmeasured, since some row's
    /// value could not be computed.
    pub uncomputed: Vec<Uncomputed>,
}

/// The columns of `tables` (stored tables only; a virtual table's rows are
/// its shadow tables') whose largest string or BLOB is over the limit, and
/// the tables with a row whose record is, though none of its values is.
/// One scan of each table. In a UTF-8 database (local D1's), by SQL alone:
/// `octet_length` and `typeof` read a value's size from its record's
/// header, not the value; in another, text is read to be measured in UTF-8.
/// A VIRTUAL generated column whose value SQLite cannot compute for some
/// row is left out of the measure and named ([`Uncomputed`]), not an
/// error: the rest of the table is measured without it. One whose
/// expression this SQLite cannot compile is an error naming it.
pub fn over_the_limit(db: &Connection, tables: &[String]) -> rusqlite::Result<Found> {
    let encoding: String = db.query_row("PRAGMA encoding", [], |row| row.get(0))?;
    let mut found = Found::default();
    let kinds = crate::catalog::Kinds::read(db)?;
    for table in tables {
        if !kinds.stores_rows(table) {
            continue;
        }
        let mut columns = measured_columns(db, table)?;
        if columns.stored.is_empty() {
            continue;
        }
        let measure = |columns: &Measured| match encoding.as_str() {
            "UTF-8" => largest_by_sql(db, table, columns),
            _ => largest_by_reading(db, table, columns),
        };
        let largest = match measure(&columns) {
            Ok(largest) => largest,
            Err(e) if columns.computed.is_empty() || !computing_failed(&e) => return Err(e),
            Err(_) => {
                found
                    .uncomputed
                    .extend(leave_out_uncomputed(db, table, &mut columns)?);
                measure(&columns)?
            }
        };
        found
            .oversized
            .extend(oversized(table, &columns.all(), &largest));
    }
    Ok(found)
}

/// Whether `e` may be SQLite failing to compute a value (a function's
/// error, `malformed JSON`, `integer overflow`, or one over its length
/// limit), not the machine failing to read the database: each computed
/// column is then tried alone ([`leave_out_uncomputed`]), which tells one
/// that fails to compile from one that fails on a row.
pub(crate) fn computing_failed(e: &rusqlite::Error) -> bool {
    use rusqlite::ErrorCode;
    matches!(
        e.sqlite_error_code(),
        Some(ErrorCode::Unknown | ErrorCode::TooBig)
    )
}

/// Takes out of `columns` each computed (VIRTUAL generated) column SQLite
/// fails to compute for some row of `table` (an error of a step over its
/// rows: a function's, `malformed JSON`, `integer overflow`, a value over
/// SQLite's length limit), and says why. An expression this SQLite cannot
/// compile (its statement fails to prepare: `unknown function`, which D1
/// may have and this SQLite lack, a column the table does not have) is
/// an error naming the column and the fix ([`uncompiled`]); any other
/// (of the machine's: I/O, a lock, memory) is returned, not taken for one.
fn leave_out_uncomputed(
    db: &Connection,
    table: &str,
    columns: &mut Measured,
) -> rusqlite::Result<Vec<Uncomputed>> {
    let mut left_out = Vec::new();
    let mut kept = Vec::new();
    for column in std::mem::take(&mut columns.computed) {
        let sql = format!(
            "SELECT max(typeof({})) FROM {}",
            quote_ident(&column),
            quote_ident(table)
        );
        let mut statement = db
            .prepare(&sql)
            .map_err(|e| uncompiled(table, &column, e))?;
        match statement.query_row([], |_| Ok(())) {
            Ok(()) => kept.push(column),
            Err(e) if !computing_failed(&e) => return Err(e),
            Err(e) => left_out.push(Uncomputed {
                table: table.to_owned(),
                column,
                why: crate::gate::without_values(&e),
            }),
        }
    }
    columns.computed = kept;
    Ok(left_out)
}

/// The error of a VIRTUAL generated column `table.column` whose
/// expression this SQLite cannot compile (`e`, its statement's failure
/// to prepare): named with the fix, SQLite's reason without anything it
/// quotes. Its values cannot be measured, so nothing is passed over.
fn uncompiled(table: &str, column: &str, e: rusqlite::Error) -> rusqlite::Error {
    let rusqlite::Error::SqliteFailure(code, _) = e else {
        return e;
    };
    let said = format!(
        "{}.{}: this SQLite ({}) cannot compile the expression of this VIRTUAL generated \
         column ({}), so its values cannot be measured against D1's 2 MB, and the backup \
         stops. An unknown function may be one D1 has that this SQLite lacks: change the \
         column's expression to one this SQLite compiles (ALTER TABLE ... DROP COLUMN, then \
         ADD COLUMN), or drop the column",
        crate::names::shown_name(table),
        crate::names::shown_name(column),
        rusqlite::version(),
        crate::gate::without_values(&e),
    );
    rusqlite::Error::SqliteFailure(code, Some(said))
}

/// The columns [`over_the_limit`] measures in one table.
struct Measured {
    /// Those its rows' records hold, in order: a STORED generated column's
    /// too (its value is in the record, and D1's limit bounds it, though a
    /// dump does not carry it), which `PRAGMA table_info` leaves out.
    stored: Vec<String>,
    /// Its VIRTUAL generated columns, in no record: each value is computed
    /// as it is read, and D1's length limit fails a read of one over it (a
    /// restore loads the row; every read of the column fails).
    computed: Vec<String>,
}

impl Measured {
    /// Every measured column: the stored ones, then the computed ones.
    fn all(&self) -> Vec<String> {
        self.stored.iter().chain(&self.computed).cloned().collect()
    }
}

/// [`Measured`] of `table`.
fn measured_columns(db: &Connection, table: &str) -> rusqlite::Result<Measured> {
    let mut columns = Measured {
        stored: Vec::new(),
        computed: Vec::new(),
    };
    let mut statement = db.prepare(
        "SELECT name, hidden FROM pragma_table_xinfo(?1) WHERE hidden IN (0, 2, 3) ORDER BY cid",
    )?;
    let mut rows = statement.query([table])?;
    while let Some(row) = rows.next()? {
        match row.get::<_, i64>(1)? {
            2 => columns.computed.push(row.get(0)?),
            _ => columns.stored.push(row.get(0)?),
        }
    }
    Ok(columns)
}

/// The tables of `tables` with a generated column, STORED or VIRTUAL: a
/// pass over a dump's values (a [`Tally`]'s) never sees its values, which
/// the load (or a read) computes, so [`over_the_limit`] must read them.
pub fn with_generated(db: &Connection, tables: &[String]) -> rusqlite::Result<Vec<String>> {
    let mut found = Vec::new();
    for table in tables {
        let stored: bool = db.query_row(
            "SELECT count(*) > 0 FROM pragma_table_xinfo(?1) WHERE hidden IN (2, 3)",
            [table],
            |row| row.get(0),
        )?;
        if stored {
            found.push(table.clone());
        }
    }
    Ok(found)
}

/// Each column's largest string or BLOB (the stored ones, then the
/// computed), then the largest record, in a UTF-8 database: the record of
/// [`record_bytes`], in SQL.
fn largest_by_sql(db: &Connection, table: &str, columns: &Measured) -> rusqlite::Result<Vec<u64>> {
    let varint = |x: &str| {
        format!(
            "(CASE WHEN {x} <= 127 THEN 1 WHEN {x} <= 16383 THEN 2 WHEN {x} <= 2097151 THEN 3 \
             WHEN {x} <= 268435455 THEN 4 ELSE 5 END)"
        )
    };
    let (mut sizes, mut serials, mut bodies) = (Vec::new(), Vec::new(), Vec::new());
    for c in &columns.all() {
        let c = quote_ident(c);
        sizes.push(format!(
            "iif(typeof({c}) IN ('text', 'blob'), octet_length({c}), 0)"
        ));
    }
    for c in &columns.stored {
        let c = quote_ident(c);
        let is_bytes = format!("typeof({c}) IN ('text', 'blob')");
        serials.push(format!(
            "iif({is_bytes}, {}, 1)",
            varint(&format!("(2 * octet_length({c}) + 13)"))
        ));
        bodies.push(format!(
            "(CASE typeof({c}) WHEN 'text' THEN octet_length({c}) WHEN 'blob' THEN \
             octet_length({c}) WHEN 'real' THEN 8 WHEN 'integer' THEN (CASE WHEN {c} IN (0, 1) \
             THEN 0 WHEN {c} BETWEEN -128 AND 127 THEN 1 WHEN {c} BETWEEN -32768 AND 32767 THEN 2 \
             WHEN {c} BETWEEN -8388608 AND 8388607 THEN 3 WHEN {c} BETWEEN -2147483648 AND \
             2147483647 THEN 4 WHEN {c} BETWEEN -140737488355328 AND 140737488355327 THEN 6 \
             ELSE 8 END) ELSE 0 END)"
        ));
    }
    let inner: Vec<String> = { sizes.iter().enumerate() }
        .map(|(i, s)| format!("{s} AS s{i}"))
        .collect();
    let maxima: Vec<String> = (0..sizes.len()).map(|i| format!("max(s{i})")).collect();
    // The header's own size, as header_bytes counts it for fewer than
    // 2,097,152 bytes of serial types (a row has at most 32,767 columns).
    let sql = format!(
        "SELECT {}, max(body + serial + (CASE WHEN serial <= 126 THEN 1 WHEN serial <= 16381 \
         THEN 2 ELSE 3 END)) FROM (SELECT {}, {} AS serial, {} AS body FROM {})",
        maxima.join(", "),
        inner.join(", "),
        serials.join(" + "),
        bodies.join(" + "),
        quote_ident(table)
    );
    db.query_row(&sql, [], |row| {
        (0..=sizes.len())
            .map(|i| Ok(row.get::<_, Option<i64>>(i)?.unwrap_or(0).max(0) as u64))
            .collect()
    })
}

/// [`largest_by_sql`] in a database of another encoding (UTF-16), where
/// `octet_length` counts text in that encoding: each row is read, and its
/// text measured as SQLite hands it over, in UTF-8.
fn largest_by_reading(
    db: &Connection,
    table: &str,
    columns: &Measured,
) -> rusqlite::Result<Vec<u64>> {
    let all = columns.all();
    let (width, stored) = (all.len(), columns.stored.len());
    let mut largest = vec![0u64; width + 1];
    let named: Vec<String> = all.iter().map(|c| quote_ident(c)).collect();
    let mut statement = db.prepare(&format!(
        "SELECT {} FROM {}",
        named.join(", "),
        quote_ident(table)
    ))?;
    let mut rows = statement.query([])?;
    while let Some(row) = rows.next()? {
        let mut values = Vec::with_capacity(width);
        for (i, most) in largest.iter_mut().take(width).enumerate() {
            let value = Stored::of(row.get_ref(i)?);
            if let Stored::Text(n) | Stored::Blob(n) = value {
                *most = (*most).max(n);
            }
            values.push(value);
        }
        values.truncate(stored);
        largest[width] = largest[width].max(record_bytes(values));
    }
    Ok(largest)
}

/// What [`over_the_limit`] reads from one table's largest values (one a
/// column, then the largest record).
fn oversized(table: &str, columns: &[String], largest: &[u64]) -> Vec<Oversized> {
    let over = |bytes: u64| bytes > D1_VALUE_LIMIT as u64;
    let mut found: Vec<Oversized> = { columns.iter().zip(largest) }
        .filter(|(_, bytes)| over(**bytes))
        .map(|(column, bytes)| Oversized {
            table: table.to_owned(),
            column: Some(column.clone()),
            bytes: *bytes,
        })
        .collect();
    let row = largest[columns.len()];
    if found.is_empty() && over(row) {
        found.push(Oversized {
            table: table.to_owned(),
            column: None,
            bytes: row,
        });
    }
    found
}

/// What one value counts against [`D1_VALUE_LIMIT`]: a string's or
/// BLOB's bytes; nothing for any other value. [`over_the_limit`]'s
/// `octet_length` of a string or BLOB, in Rust.
pub fn value_size(value: ValueRef<'_>) -> u64 {
    match value {
        ValueRef::Text(bytes) | ValueRef::Blob(bytes) => bytes.len() as u64,
        ValueRef::Null | ValueRef::Integer(_) | ValueRef::Real(_) => 0,
    }
}

/// What one row counts against [`D1_VALUE_LIMIT`], from its values in
/// column order: its record, [`record_bytes`], as [`over_the_limit`]
/// measures a row.
pub fn row_size(values: &[ValueRef<'_>]) -> u64 {
    record_bytes(values.iter().map(|v| Stored::of(*v)))
}

/// [`over_the_limit`] of one table, taken row by row from values read for
/// another purpose (the native export's own pass over them), so that the
/// table is not read again: [`Tally::row`] for each row, then
/// [`Tally::found`] names the same places, with the same sizes.
pub struct Tally {
    table: String,
    columns: Vec<String>,
    /// Each column's largest value, then the largest row.
    largest: Vec<u64>,
}

impl Tally {
    pub fn new(table: &str, columns: &[String]) -> Tally {
        Tally {
            table: table.to_owned(),
            columns: columns.to_vec(),
            largest: vec![0; columns.len() + 1],
        }
    }

    /// One row's values, in column order.
    pub fn row(&mut self, values: &[ValueRef<'_>]) {
        let n = self.columns.len();
        for (largest, value) in self.largest[..n].iter_mut().zip(values) {
            *largest = (*largest).max(value_size(*value));
        }
        self.largest[n] = self.largest[n].max(row_size(values));
    }

    /// The table's columns and row over the limit, as [`over_the_limit`]
    /// names them.
    pub fn found(&self) -> Vec<Oversized> {
        oversized(&self.table, &self.columns, &self.largest)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn db() -> Connection {
        let db = Connection::open_in_memory().unwrap();
        db.execute_batch(
            "CREATE TABLE notes(id INTEGER PRIMARY KEY, \"the body\" TEXT, n REAL);
             CREATE TABLE files(id INTEGER PRIMARY KEY, data BLOB);
             CREATE TABLE pairs(id INTEGER PRIMARY KEY, a TEXT, b BLOB);
             CREATE TABLE fine(id INTEGER PRIMARY KEY, a TEXT, b BLOB);
             CREATE VIEW v AS SELECT * FROM notes;
             INSERT INTO notes VALUES (1, 'short', 1.5), (2, hex(randomblob(1000001)), 2.5);
             INSERT INTO files VALUES (1, randomblob(2000001)), (2, NULL);
             INSERT INTO pairs VALUES (1, hex(randomblob(500000)), randomblob(1000001));
             INSERT INTO fine VALUES (1, hex(randomblob(500000)), randomblob(999990));",
        )
        .unwrap();
        db
    }

    /// A database in memory in `encoding`, made by `sql`.
    fn in_encoding(encoding: &str, sql: &str) -> Connection {
        let db = Connection::open_in_memory().unwrap();
        db.execute_batch(&format!("PRAGMA encoding = '{encoding}'; {sql}"))
            .unwrap();
        db
    }

    /// A STORED generated value is in the record, which D1's limit
    /// bounds; a VIRTUAL one is in none, but D1's limit fails each read of
    /// it: both are measured (`PRAGMA table_info` shows neither), and a
    /// VIRTUAL one is not counted in its row (`w`'s 1.1 MB `x` and its
    /// copy `g` make no row over the limit). In UTF-16 too.
    #[test]
    fn a_generated_value_is_measured_stored_or_virtual() {
        for encoding in ["UTF-8", "UTF-16le"] {
            let db = in_encoding(
                encoding,
                "CREATE TABLE s(id INTEGER PRIMARY KEY, x TEXT, g TEXT AS (x || x) STORED);
                 CREATE TABLE v(id INTEGER PRIMARY KEY, x TEXT, g TEXT AS (x || x) VIRTUAL);
                 CREATE TABLE w(id INTEGER PRIMARY KEY, x TEXT, g TEXT AS (x) VIRTUAL);
                 INSERT INTO s(x) VALUES (hex(randomblob(550000)));
                 INSERT INTO v(x) VALUES (hex(randomblob(550000)));
                 INSERT INTO w(x) VALUES (hex(randomblob(550000)));",
            );
            let tables = ["s", "v", "w"].map(String::from);
            let found = over_the_limit(&db, &tables).unwrap().oversized;
            let said: Vec<String> = found.iter().map(Oversized::said).collect();
            assert_eq!(
                said,
                ["s.g holds a value of 2.2 MB", "v.g holds a value of 2.2 MB"],
                "{encoding}"
            );
            assert_eq!(with_generated(&db, &tables).unwrap(), ["s", "v", "w"]);
        }
    }

    /// A VIRTUAL generated column SQLite cannot compute for one row
    /// (`json_extract` of text that is not JSON) is left out and named,
    /// never a value; the table's other columns are still measured.
    #[test]
    fn a_virtual_column_that_cannot_be_computed_is_named_and_the_rest_measured() {
        for encoding in ["UTF-8", "UTF-16le"] {
            let db = in_encoding(
                encoding,
                "CREATE TABLE vj(id INTEGER PRIMARY KEY, x TEXT);
                 INSERT INTO vj(x) VALUES ('{\"a\":1}'), ('not json secret');
                 INSERT INTO vj(x) VALUES (hex(randomblob(550000)));
                 ALTER TABLE vj ADD COLUMN g TEXT AS (json_extract(x, '$.a')) VIRTUAL;
                 ALTER TABLE vj ADD COLUMN h TEXT AS (x || x) VIRTUAL;",
            );
            let found = over_the_limit(&db, &["vj".to_owned()]).unwrap();
            let said: Vec<String> = found.oversized.iter().map(Oversized::said).collect();
            assert_eq!(said, ["vj.h holds a value of 2.2 MB"], "{encoding}");
            let said: Vec<String> = found.uncomputed.iter().map(Uncomputed::said).collect();
            assert_eq!(said, ["vj.g (malformed JSON)"], "{encoding}");
        }
    }

    /// rvZ 2: any SQLite error while a VIRTUAL generated column was
    /// measured was taken for a row's value that cannot be computed, and
    /// passed over with a warning. Only an error computing a row's value
    /// (`malformed JSON`, `integer overflow`) is: an expression this
    /// SQLite cannot compile (a function it lacks, `unknown function`,
    /// which D1 may have; a column the table does not have) fails the
    /// measure, naming the column and the fix, never a value.
    #[test]
    fn only_a_value_that_cannot_be_computed_is_passed_over_not_an_expression_that_does_not_compile()
    {
        let db = db();
        db.execute_batch(
            "CREATE TABLE vo(id INTEGER PRIMARY KEY, x INTEGER);
             INSERT INTO vo(x) VALUES (-5), (-9223372036854775808);
             ALTER TABLE vo ADD COLUMN g INTEGER AS (abs(x)) VIRTUAL;",
        )
        .unwrap();
        let found = over_the_limit(&db, &["vo".to_owned()]).unwrap();
        let said: Vec<String> = found.uncomputed.iter().map(Uncomputed::said).collect();
        assert_eq!(said, ["vo.g (integer overflow)"]);
        let dir = tempfile::tempdir().unwrap();
        // A column the table does not have fails the schema's own load,
        // before any column is measured: not passed over either.
        let compiled = ["vf.g", "cannot compile", "change the column's expression"];
        for (call, why, told) in [
            ("app_fn(x)", "unknown function: app_fn()", &compiled[..]),
            (
                "upper(y)",
                "no such column: y",
                &["malformed database schema (vf)"][..],
            ),
        ] {
            let path = dir.path().join(format!("{}.sqlite", &call[..3]));
            let made = Connection::open(&path).unwrap();
            made.execute_batch(&format!(
                "CREATE TABLE vf(id INTEGER PRIMARY KEY, x TEXT, g TEXT AS (upper(x)) VIRTUAL);
                 INSERT INTO vf(x) VALUES ('secret value');
                 PRAGMA writable_schema = ON;
                 UPDATE sqlite_schema SET sql = replace(sql, 'upper(x)', '{call}')
                  WHERE name = 'vf';"
            ))
            .unwrap();
            drop(made);
            let db = Connection::open(&path).unwrap();
            let e = over_the_limit(&db, &["vf".to_owned()])
                .unwrap_err()
                .to_string();
            assert!(e.contains(why) && told.iter().all(|t| e.contains(t)), "{e}");
            assert!(!e.contains("secret"), "{e}");
        }
    }

    /// rvAE: D1 has SQLite's math functions (`sqrt`, `pow`, `ln`,
    /// `floor`, …); a VIRTUAL generated column that calls one is measured
    /// here as any other, not refused as an expression this SQLite cannot
    /// compile (the bundled SQLite is built with them: `.cargo/config.toml`,
    /// `LIBSQLITE3_FLAGS`).
    #[test]
    fn a_virtual_column_calling_a_math_function_d1_has_is_measured() {
        let db = Connection::open_in_memory().unwrap();
        let root: f64 = db.query_row("SELECT sqrt(4.0)", [], |r| r.get(0)).unwrap();
        assert_eq!(root, 2.0);
        db.execute_batch(
            "CREATE TABLE m(id INTEGER PRIMARY KEY, x REAL, t TEXT,
               g REAL AS (sqrt(x)) VIRTUAL,
               h REAL AS (pow(x, 2) + ln(x) + log10(x) + floor(x) + ceil(x)
                          + exp(0) + sin(pi()) + mod(x, 3) + trunc(x)) VIRTUAL);
             INSERT INTO m(x, t) VALUES (4.0, 'a'), (9.5, hex(randomblob(1000001)));",
        )
        .unwrap();
        let found = over_the_limit(&db, &["m".to_owned()]).unwrap();
        let said: Vec<String> = found.oversized.iter().map(Oversized::said).collect();
        assert_eq!(said, ["m.t holds a value of 2.0 MB"]);
        assert!(found.uncomputed.is_empty());
    }

    #[test]
    fn names_each_column_and_row_over_the_limit_and_nothing_within_it() {
        let tables = ["notes", "files", "pairs", "fine", "v", "gone"].map(String::from);
        let found = over_the_limit(&db(), &tables).unwrap().oversized;
        let said: Vec<String> = found.iter().map(Oversized::said).collect();
        assert_eq!(
            said,
            [
                "notes.\"the body\" holds a value of 2.0 MB",
                "files.data holds a value of 2.0 MB",
                "a row of pairs is 2.0 MB as SQLite stores it",
            ]
        );
        assert_eq!(found[0].bytes, 2_000_002);
        assert_eq!(found[2].bytes, 2_000_009);
    }

    /// That of `tables`, only `wide` is over the limit, at `column` by
    /// `bytes`.
    fn assert_only(db: &Connection, tables: [&str; 2], (column, bytes): (Option<&str>, u64)) {
        let found = over_the_limit(db, &tables.map(String::from))
            .unwrap()
            .oversized;
        let wide = Oversized {
            table: "wide".to_owned(),
            column: column.map(str::to_owned),
            bytes,
        };
        assert_eq!(found, [wide]);
    }

    /// D1's 2,000,000 bytes bound a row as SQLite stores it (its record:
    /// the header's varints and each value's bytes), not its strings and
    /// BLOBs alone: a row of 1,999,970 bytes of text, two 8-byte integers
    /// and a real is a record of 2,000,002 bytes.
    #[test]
    fn a_row_whose_record_is_over_the_limit_though_its_strings_are_not_is_named() {
        let db = Connection::open_in_memory().unwrap();
        db.execute_batch(
            "CREATE TABLE wide(a TEXT, b INTEGER, c INTEGER, d REAL);
             INSERT INTO wide VALUES (hex(randomblob(999985)), 9000000000000000000,
                                      -9000000000000000000, 1.5);
             CREATE TABLE under(a TEXT, b INTEGER, c INTEGER, d REAL);
             INSERT INTO under VALUES (hex(randomblob(999984)), 9000000000000000000,
                                       -9000000000000000000, 0.5);",
        )
        .unwrap();
        assert_only(&db, ["wide", "under"], (None, 2_000_002));
    }

    /// D1 holds text as UTF-8: a local file in UTF-16 is measured as D1
    /// would hold its text, not as it stores it.
    #[test]
    fn text_is_measured_in_utf8_in_a_utf16_database() {
        let db = Connection::open_in_memory().unwrap();
        db.execute_batch(
            "PRAGMA encoding = 'UTF-16le';
             CREATE TABLE wide(a TEXT);
             CREATE TABLE ascii(a TEXT);",
        )
        .unwrap();
        // 2.1 MB in UTF-8, 1.4 MB in UTF-16.
        db.execute("INSERT INTO wide VALUES (?1)", ["\u{4e2d}".repeat(700_000)])
            .unwrap();
        // 1.2 MB in UTF-8, 2.4 MB in UTF-16.
        db.execute("INSERT INTO ascii VALUES (?1)", ["a".repeat(1_200_000)])
            .unwrap();
        assert_only(&db, ["wide", "ascii"], (Some("a"), 2_100_000));
    }

    #[test]
    fn a_tally_of_each_row_finds_what_the_scan_finds() {
        let db = db();
        let tables = ["notes", "files", "pairs", "fine"].map(String::from);
        let mut found = Vec::new();
        for table in &tables {
            let mut stmt = db.prepare(&format!("SELECT * FROM {table}")).unwrap();
            let columns: Vec<String> = stmt.column_names().map(str::to_owned).collect();
            let mut tally = Tally::new(table, &columns);
            let mut rows = stmt.query([]).unwrap();
            while let Some(row) = rows.next().unwrap() {
                let values: Vec<ValueRef<'_>> = (0..columns.len())
                    .map(|i| row.get_ref(i).unwrap())
                    .collect();
                tally.row(&values);
            }
            found.extend(tally.found());
        }
        assert_eq!(found, over_the_limit(&db, &tables).unwrap().oversized);
        assert_eq!(found.len(), 3);
    }

    /// A value of exactly the limit is within it, but not its row: SQLite
    /// (D1, and every load this tool runs) bounds the record, header
    /// included. A record of exactly the limit is within it.
    #[test]
    fn a_record_of_exactly_the_limit_is_within_it() {
        let db = Connection::open_in_memory().unwrap();
        db.execute_batch(
            "CREATE TABLE t(a BLOB, b TEXT); INSERT INTO t VALUES (zeroblob(1999994), NULL);
             CREATE TABLE u(a BLOB, b TEXT); INSERT INTO u VALUES (zeroblob(2000000), NULL);",
        )
        .unwrap();
        assert_eq!(
            over_the_limit(&db, &["t".to_owned(), "u".to_owned()])
                .unwrap()
                .oversized,
            [Oversized {
                table: "u".to_owned(),
                column: None,
                bytes: 2_000_006,
            }]
        );
    }

    /// [`record_bytes`] is what SQLite's length limit bounds: a row of its
    /// count is stored under a limit of that many bytes, and refused under
    /// one byte less. Values of each size of integer, reals, text, BLOBs
    /// and NULLs, in rows of few and of many columns (a header over 126
    /// bytes).
    #[test]
    fn record_bytes_is_what_sqlites_length_limit_bounds() {
        use rusqlite::limits::Limit;
        use rusqlite::types::Value;
        let integers = [
            0i64,
            1,
            -1,
            127,
            -129,
            40_000,
            -9_000_000,
            1 << 40,
            i64::MIN,
        ];
        let mut values: Vec<Value> = integers.iter().map(|i| Value::Integer(*i)).collect();
        values.extend([
            Value::Real(1.5),
            Value::Null,
            Value::Text("\u{4e2d}x".repeat(50)),
            Value::Blob(vec![7; 9000]),
            Value::Text(String::new()),
        ]);
        for width in [values.len(), 200] {
            let row: Vec<Value> = values.iter().cycle().take(width).cloned().collect();
            let bytes = record_bytes(row.iter().map(|v| Stored::of(v.into())));
            for (limit, stored) in [(bytes, true), (bytes - 1, false)] {
                let db = Connection::open_in_memory().unwrap();
                let columns: Vec<String> = (0..width).map(|i| format!("c{i}")).collect();
                db.execute_batch(&format!("CREATE TABLE t({});", columns.join(", ")))
                    .unwrap();
                db.set_limit(Limit::SQLITE_LIMIT_LENGTH, limit as i32)
                    .unwrap();
                let marks = vec!["?"; width].join(", ");
                let done = db.execute(
                    &format!("INSERT INTO t VALUES ({marks})"),
                    rusqlite::params_from_iter(&row),
                );
                assert_eq!(
                    done.is_ok(),
                    stored,
                    "{width} columns, limit {limit}: {done:?}"
                );
            }
        }
    }
}
