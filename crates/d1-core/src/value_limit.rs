//! Values a database holds that D1 cannot: a string or BLOB, or a row's
//! strings and BLOBs together, over [`D1_VALUE_LIMIT`]. Local D1
//! (miniflare's SQLite) holds them; D1 refuses them, and so does every
//! load of a dump this tool runs, so a backup holding one can never be
//! restored.

use rusqlite::Connection;
use rusqlite::types::ValueRef;

use crate::catalog::is_stored_table;
use crate::gate::D1_VALUE_LIMIT;
use crate::statement::quote_ident;

/// One place over the limit: a column's largest value, or (no `column`)
/// a row whose values are each within it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Oversized {
    pub table: String,
    pub column: Option<String>,
    /// The largest such value or row, in bytes of strings and BLOBs.
    pub bytes: u64,
}

impl Oversized {
    /// `notes.body holds a value of 2.5 MB`, never the value.
    pub fn said(&self) -> String {
        let table = crate::names::shown(&self.table);
        let size = crate::wording::size(self.bytes);
        match &self.column {
            Some(column) => format!(
                "{table}.{} holds a value of {size}",
                crate::names::shown(column)
            ),
            None => format!("a row of {table} holds {size} of strings and BLOBs"),
        }
    }
}

/// The columns of `tables` (stored tables only; a virtual table's rows are
/// its shadow tables') whose largest string or BLOB is over the limit, and
/// the tables with a row whose strings and BLOBs add up to more, though
/// none is. One scan of each table; `octet_length` and `typeof` read a
/// value's size from its record's header, not the value.
pub fn over_the_limit(db: &Connection, tables: &[String]) -> rusqlite::Result<Vec<Oversized>> {
    let mut found = Vec::new();
    for table in tables {
        if !is_stored_table(db, table)? {
            continue;
        }
        let columns: Vec<String> = db
            .prepare(&format!("PRAGMA table_info({})", quote_ident(table)))?
            .query_map([], |row| row.get(1))?
            .collect::<rusqlite::Result<_>>()?;
        if columns.is_empty() {
            continue;
        }
        let sizes: Vec<String> = { columns.iter() }
            .map(|c| {
                let c = quote_ident(c);
                format!("iif(typeof({c}) IN ('text', 'blob'), octet_length({c}), 0)")
            })
            .collect();
        let maxima: Vec<String> = sizes.iter().map(|s| format!("max({s})")).collect();
        let sql = format!(
            "SELECT {}, max({}) FROM {}",
            maxima.join(", "),
            sizes.join(" + "),
            quote_ident(table)
        );
        let largest: Vec<i64> = db.query_row(&sql, [], |row| {
            (0..=columns.len())
                .map(|i| Ok(row.get::<_, Option<i64>>(i)?.unwrap_or(0)))
                .collect()
        })?;
        found.extend(oversized(table, &columns, &largest));
    }
    Ok(found)
}

/// What [`over_the_limit`] reads from one table's largest values (one a
/// column, then the largest row's sum).
fn oversized(table: &str, columns: &[String], largest: &[i64]) -> Vec<Oversized> {
    let over = |bytes: i64| bytes > i64::from(D1_VALUE_LIMIT);
    let mut found: Vec<Oversized> = { columns.iter().zip(largest) }
        .filter(|(_, bytes)| over(**bytes))
        .map(|(column, bytes)| Oversized {
            table: table.to_owned(),
            column: Some(column.clone()),
            bytes: *bytes as u64,
        })
        .collect();
    let row = largest[columns.len()];
    if found.is_empty() && over(row) {
        found.push(Oversized {
            table: table.to_owned(),
            column: None,
            bytes: row as u64,
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
/// column order: [`over_the_limit`]'s measure of a row, in Rust.
pub fn row_size(values: &[ValueRef<'_>]) -> u64 {
    values.iter().map(|v| value_size(*v)).sum()
}

/// [`over_the_limit`] of one table, taken row by row from values read for
/// another purpose (the native export's own pass over them), so that the
/// table is not read again: [`Tally::row`] for each row, then
/// [`Tally::found`] names the same places, with the same sizes.
pub struct Tally {
    table: String,
    columns: Vec<String>,
    /// Each column's largest value, then the largest row.
    largest: Vec<i64>,
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
            *largest = (*largest).max(value_size(*value) as i64);
        }
        self.largest[n] = self.largest[n].max(row_size(values) as i64);
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

    #[test]
    fn names_each_column_and_row_over_the_limit_and_nothing_within_it() {
        let tables = ["notes", "files", "pairs", "fine", "v", "gone"].map(String::from);
        let found = over_the_limit(&db(), &tables).unwrap();
        let said: Vec<String> = found.iter().map(Oversized::said).collect();
        assert_eq!(
            said,
            [
                "notes.the body holds a value of 2.0 MB",
                "files.data holds a value of 2.0 MB",
                "a row of pairs holds 2.0 MB of strings and BLOBs",
            ]
        );
        assert_eq!(found[0].bytes, 2_000_002);
        assert_eq!(found[2].bytes, 2_000_001);
    }

    /// That of `tables`, only `wide` is over the limit, at `column` by
    /// `bytes`.
    fn assert_only(db: &Connection, tables: [&str; 2], (column, bytes): (Option<&str>, u64)) {
        let found = over_the_limit(db, &tables.map(String::from)).unwrap();
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
        assert_eq!(found, over_the_limit(&db, &tables).unwrap());
        assert_eq!(found.len(), 3);
    }

    #[test]
    fn a_value_of_exactly_the_limit_is_within_it() {
        let db = Connection::open_in_memory().unwrap();
        db.execute_batch(
            "CREATE TABLE t(a BLOB, b TEXT); INSERT INTO t VALUES (zeroblob(2000000), NULL);",
        )
        .unwrap();
        assert_eq!(over_the_limit(&db, &["t".to_owned()]).unwrap(), []);
    }
}
