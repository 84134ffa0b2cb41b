//! Content digests: equal means equal, not "the same row counts".
//!
//! A table's digest is the SHA-256 of its column names and then every row,
//! read in primary-key order (rowid order for a table without one), each
//! value in a canonical form: a type tag, then the integer's or the real's
//! eight bytes, or the length and bytes of the text or BLOB. The same rows
//! give the same digest whatever database holds them, so the digest of a
//! backup (taken from verify's scratch database) can be compared with the
//! digest of the database it was restored into.

use std::collections::BTreeMap;

use anyhow::{Context, Result};
use rusqlite::Connection;
use rusqlite::types::ValueRef;
use sha2::{Digest, Sha256};

use crate::catalog::Kinds;
use crate::statement::quote_ident;

/// The largest integer a JavaScript number holds exactly, 2^53. D1's own
/// export writes every value through one, so an integer beyond it in an
/// export of D1's may not be the database's; nor may ±2^53 itself, which is
/// what 2^53 + 1 rounds to.
pub const JS_EXACT: u64 = 1 << 53;

/// 2^63 as a double: what D1's export writes, through a JavaScript number,
/// for an integer within 512 of `i64::MAX` (`9223372036854776000`), which no
/// SQLite integer holds, so the backup reads it back as this REAL; and, with
/// its sign, for `i64::MIN` and its neighbours (`-9223372036854776000`,
/// which SQLite reads as a REAL too).
const ROUNDED_PAST_I64: f64 = 9_223_372_036_854_775_808.0;

/// The table of an `INSERT` in the shape D1's exports write, and how many
/// of its values are integers at or beyond ±[`JS_EXACT`] or REALs of
/// ±2^63 (`digest_and_wide` counts the same once loaded, but for a REAL
/// column's ±2^63); `None` for any other statement, or a row with none.
/// Read from the text, for a dump no load has counted.
pub fn wide_in_insert(sql: &str) -> Option<(String, u64)> {
    use d1_sql::literal::Value;
    let row = d1_sql::literal::parse(sql)?;
    let wide = { row.values.iter() }
        .filter(|v| match v {
            Value::Integer(v) => v.unsigned_abs() >= JS_EXACT,
            Value::Real(f) => f.abs() == ROUNDED_PAST_I64,
            _ => false,
        })
        .count() as u64;
    (wide > 0).then(|| (row.table().into_owned(), wide))
}

/// Each table's digest, and what the same read saw on the way.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Digests {
    pub tables: BTreeMap<String, String>,
    /// Per table that holds any, how many of its integers are ±[`JS_EXACT`]
    /// or beyond (2^53 + 1 reaches a JavaScript number as 2^53).
    pub wide_integers: BTreeMap<String, u64>,
}

/// The digest of each of `tables` that exists in `db`.
pub fn tables<'a>(
    db: &rusqlite::Connection,
    tables: impl IntoIterator<Item = &'a str>,
) -> Result<BTreeMap<String, String>> {
    Ok(read(db, tables)?.tables)
}

/// The digest of each of `tables` that exists in `db`, and the integers
/// of ±2^53 or beyond each holds, counted in the same read.
pub fn read<'a>(
    db: &rusqlite::Connection,
    tables: impl IntoIterator<Item = &'a str>,
) -> Result<Digests> {
    let mut out = Digests::default();
    let kinds = crate::catalog::Kinds::read(db)?;
    for table in tables {
        if let Some((digest, wide)) = digest_and_wide(db, &kinds, table)? {
            out.tables.insert(table.to_owned(), digest);
            if wide > 0 {
                out.wide_integers.insert(table.to_owned(), wide);
            }
        }
    }
    Ok(out)
}

/// The row set of each of `tables` that exists in `db`: an order-free
/// digest of its rows. Each row's canonical form is hashed on its own (128
/// bits) and the hashes added up (mod 2^128), then hashed with the column
/// names and the row count. Two tables have the same row set when they hold
/// the same rows, as many times each, in whatever order and under whatever
/// rowids: how a load of an export is compared, in the same run, with the
/// database it was read from, whose rows no key may order (a table without
/// one, NULLs in a key, a table the export reads through a covering index).
/// Never recorded: the row hash (std's SipHash, not SHA-256, which took
/// four times as long) is only compared within one run of this binary.
pub fn row_sets<'a>(
    db: &rusqlite::Connection,
    tables: impl IntoIterator<Item = &'a str>,
) -> Result<BTreeMap<String, String>> {
    row_sets_with(db, tables, &BTreeMap::new())
}

/// The row sets of [`row_sets`], with the rows of `added`'s shares counted
/// in their tables too, as if `db` held them: a load's, with the rows it
/// could not insert.
pub fn row_sets_with<'a>(
    db: &rusqlite::Connection,
    tables: impl IntoIterator<Item = &'a str>,
    added: &BTreeMap<String, Share>,
) -> Result<BTreeMap<String, String>> {
    let mut out = BTreeMap::new();
    let kinds = crate::catalog::Kinds::read(db)?;
    for table in tables {
        let Some((names, share)) = summed(db, &kinds, table, None)? else {
            continue;
        };
        let share = share.plus(added.get(table).copied().unwrap_or_default());
        let mut hasher = Sha256::new();
        for name in &names {
            hasher.update(name.as_bytes());
            hasher.update([0]);
        }
        hasher.update(share.rows.to_be_bytes());
        hasher.update(share.sum.to_be_bytes());
        out.insert(table.to_owned(), crate::names::hex(&hasher.finalize()));
    }
    Ok(out)
}

/// Rows' part of their table's row set: how many, and their hashes added
/// up. Only compared within one run of this binary, as row sets are.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Share {
    rows: u64,
    sum: u128,
}

impl Share {
    pub fn plus(self, other: Share) -> Share {
        Share {
            rows: self.rows.wrapping_add(other.rows),
            sum: self.sum.wrapping_add(other.sum),
        }
    }

    /// The rows of `self` that `before` did not hold, when `before` is
    /// the same table's share with fewer rows.
    pub fn less(self, before: Share) -> Share {
        Share {
            rows: self.rows.wrapping_sub(before.rows),
            sum: self.sum.wrapping_sub(before.sum),
        }
    }
}

/// The share of `table`'s rows in its row set: all of them, or the row
/// of `rowid` alone; `None` for a table that stores no rows (`kinds`, `db`'s).
pub fn share(
    db: &rusqlite::Connection,
    kinds: &Kinds,
    table: &str,
    rowid: Option<i64>,
) -> Result<Option<Share>> {
    Ok(summed(db, kinds, table, rowid)?.map(|(_, share)| share))
}

/// `table`'s columns as `PRAGMA table_info` names them (its generated
/// columns left out) and the share of its rows, or of the row of `rowid`;
/// `None` for a table that stores no rows.
fn summed(
    db: &rusqlite::Connection,
    kinds: &Kinds,
    table: &str,
    rowid: Option<i64>,
) -> Result<Option<(Vec<String>, Share)>> {
    if !kinds.stores_rows(table) {
        return Ok(None);
    }
    let mut info = db.prepare(&format!("PRAGMA table_info({})", quote_ident(table)))?;
    let names: Vec<String> = info
        .query_map([], |r| r.get(1))?
        .collect::<rusqlite::Result<_>>()?;
    if names.is_empty() {
        return Ok(None);
    }
    let quoted: Vec<String> = names.iter().map(|n| quote_ident(n)).collect();
    let sql = format!(
        "SELECT {} FROM {}{}",
        quoted.join(", "),
        quote_ident(table),
        match rowid {
            Some(_) => " WHERE rowid = ?1",
            None => "",
        }
    );
    let mut stmt = db.prepare(&sql).with_context(|| {
        format!(
            "reading {} for its row set",
            crate::names::shown_name(table)
        )
    })?;
    let mut rows = match rowid {
        Some(rowid) => stmt.query([rowid])?,
        None => stmt.query([])?,
    };
    let (mut share, mut form) = (Share::default(), Vec::new());
    while let Some(row) = rows.next()? {
        form.clear();
        for i in 0..names.len() {
            canonical(&mut form, row.get_ref(i)?);
        }
        share.sum = share.sum.wrapping_add(row_hash(&form));
        share.rows += 1;
    }
    Ok(Some((names, share)))
}

/// 128 bits of one row's canonical form: two SipHashes, told apart by a
/// first byte.
fn row_hash(form: &[u8]) -> u128 {
    use std::hash::Hasher as _;
    let half = |seed: u8| {
        let mut h = std::hash::DefaultHasher::new();
        h.write_u8(seed);
        h.write(form);
        h.finish()
    };
    (u128::from(half(0)) << 64) | u128::from(half(1))
}

/// The tables whose digests differ, or that one side lacks, each with why.
pub fn differences(
    expected: &BTreeMap<String, String>,
    found: &BTreeMap<String, String>,
) -> Vec<String> {
    expected
        .iter()
        .filter_map(|(table, want)| match found.get(table) {
            None => Some(format!("{}: missing", crate::names::shown_name(table))),
            Some(got) if got != want => Some(format!(
                "{}: its rows differ from the backup's (content digest {} where the backup \
                 has {})",
                crate::names::shown_name(table),
                short(got),
                short(want)
            )),
            Some(_) => None,
        })
        .collect()
}

fn short(digest: &str) -> &str {
    digest.get(..16).unwrap_or(digest)
}

/// One table's digest, or `None` when `db` has no such table (a view or a
/// virtual table is none: see [`crate::catalog::Kinds`]).
pub fn table_digest(db: &rusqlite::Connection, table: &str) -> Result<Option<String>> {
    let kinds = crate::catalog::Kinds::read(db)?;
    Ok(digest_and_wide(db, &kinds, table)?.map(|(digest, _)| digest))
}

/// [`table_digest`], and how many of the table's integers are
/// ±[`JS_EXACT`] or beyond.
fn digest_and_wide(db: &Connection, kinds: &Kinds, table: &str) -> Result<Option<(String, u64)>> {
    if !kinds.stores_rows(table) {
        return Ok(None);
    }
    let mut info = db.prepare(&format!("PRAGMA table_info({})", quote_ident(table)))?;
    // Each column's name, place in the key, and whether it has REAL
    // affinity: such a column holds every number as a REAL, so a REAL of
    // ±2^63 there was one before any export rounded it.
    let described: Vec<((String, i64), bool)> = info
        .query_map([], |r| {
            Ok((
                (r.get(1)?, r.get(5)?),
                real_affinity(&r.get::<_, String>(2)?),
            ))
        })?
        .collect::<rusqlite::Result<_>>()?;
    if described.is_empty() {
        return Ok(None);
    }
    let (columns, of_real_affinity): (Vec<(String, i64)>, Vec<bool>) =
        described.into_iter().unzip();
    let mut key: Vec<&(String, i64)> = columns.iter().filter(|(_, pk)| *pk > 0).collect();
    key.sort_by_key(|(_, pk)| *pk);
    let order = if key.is_empty() {
        "rowid".to_owned()
    } else {
        key.iter()
            .map(|(name, _)| quote_ident(name))
            .collect::<Vec<_>>()
            .join(", ")
    };
    let names: Vec<String> = columns.iter().map(|(n, _)| quote_ident(n)).collect();
    let sql = format!(
        "SELECT {} FROM {} ORDER BY {order}",
        names.join(", "),
        quote_ident(table)
    );
    let mut stmt = db.prepare(&sql).with_context(|| {
        format!(
            "reading {} for its content digest",
            crate::names::shown_name(table)
        )
    })?;
    let mut hasher = Sha256::new();
    for (name, _) in &columns {
        hasher.update(name.as_bytes());
        hasher.update([0]);
    }
    let mut rows = stmt.query([])?;
    // Rows are gathered and hashed 64 KB at a time: one call into SHA-256
    // per value would cost more than the hashing.
    let mut pending: Vec<u8> = Vec::with_capacity(1 << 17);
    let mut wide = 0u64;
    while let Some(row) = rows.next()? {
        for (i, &of_real_affinity) in of_real_affinity.iter().enumerate() {
            let value = row.get_ref(i)?;
            // What the export may have rounded: an integer at or beyond
            // ±2^53 (2^53 + 1 arrives as 2^53), and one it rounded past
            // ±2^63, which arrives as the REAL ±2^63.
            let rounded = match value {
                ValueRef::Integer(v) => v.unsigned_abs() >= JS_EXACT,
                ValueRef::Real(f) => f.abs() == ROUNDED_PAST_I64 && !of_real_affinity,
                _ => false,
            };
            if rounded {
                wide += 1;
            }
            canonical(&mut pending, value);
        }
        if pending.len() >= 1 << 16 {
            hasher.update(&pending);
            pending.clear();
        }
    }
    hasher.update(&pending);
    Ok(Some((crate::names::hex(&hasher.finalize()), wide)))
}

/// Whether a column declared `declared` has REAL affinity, by SQLite's
/// rules (section 3.1 of "Datatypes In SQLite"), taken in their order.
fn real_affinity(declared: &str) -> bool {
    let d = declared.to_ascii_uppercase();
    let has = |s: &str| d.contains(s);
    !has("INT")
        && !has("CHAR")
        && !has("CLOB")
        && !has("TEXT")
        && !has("BLOB")
        && (has("REAL") || has("FLOA") || has("DOUB"))
}

/// A value's canonical form: a tag, then its bytes. Two values have the
/// same form exactly when they are of one type with the same bytes, as a
/// restore and a diff compare them.
pub fn canonical(out: &mut Vec<u8>, value: ValueRef<'_>) {
    match value {
        ValueRef::Null => out.push(b'n'),
        ValueRef::Integer(i) => {
            out.push(b'i');
            out.extend_from_slice(&i.to_be_bytes());
        }
        ValueRef::Real(r) => {
            out.push(b'r');
            out.extend_from_slice(&r.to_bits().to_be_bytes());
        }
        ValueRef::Text(t) => {
            out.push(b't');
            out.extend_from_slice(&(t.len() as u64).to_be_bytes());
            out.extend_from_slice(t);
        }
        ValueRef::Blob(b) => {
            out.push(b'b');
            out.extend_from_slice(&(b.len() as u64).to_be_bytes());
            out.extend_from_slice(b);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A dump's row is read as SQLite reads it: 2^53 and beyond (either
    /// sign) and D1's `9223372036854776000` (a REAL of 2^63) count, 2^53 - 1,
    /// a string of digits and `1e+21` do not.
    #[test]
    fn the_wide_integers_of_a_dump_row_are_counted_from_its_text() {
        let row = "INSERT INTO \"t\" (\"a\",\"b\",\"c\",\"d\",\"e\",\"f\") VALUES(\
                   9007199254740992,-9007199254740992,9007199254740991,\
                   '9007199254740993',9223372036854776000,1e+21);";
        assert_eq!(wide_in_insert(row), Some(("t".to_owned(), 3)));
        assert_eq!(wide_in_insert("INSERT INTO \"t\" VALUES(1,'x');"), None);
        assert_eq!(wide_in_insert("CREATE TABLE t (a);"), None);
    }

    /// A row set is the same for the same rows in any order, under any
    /// rowids, and differs for one changed value, one row more or less, or
    /// a duplicate row.
    #[test]
    fn a_row_set_is_of_the_rows_not_their_order() {
        let shape = "CREATE TABLE s (a, b, g AS (a * 2) VIRTUAL); CREATE INDEX s_ab ON s (a, b);";
        let of = |rows: &str| {
            row_sets(
                &db(&format!("{shape} INSERT INTO s (a, b) VALUES {rows};")),
                ["s"],
            )
            .unwrap()
        };
        let set = of("(3, 'c'), (1, 'a'), (2, -0.0)");
        assert_eq!(set, of("(1, 'a'), (2, -0.0), (3, 'c')"));
        assert_eq!(set.len(), 1);
        for other in [
            "(3, 'c'), (1, 'a'), (2, 0.0)",
            "(3, 'c'), (1, 'a')",
            "(3, 'c'), (1, 'a'), (2, -0.0), (2, -0.0)",
            "(3, 'c'), (1, 'a'), (2, '-0.0')",
        ] {
            assert_ne!(set, of(other), "{other}");
        }
        // Two rows swapping a value are other rows.
        assert_ne!(of("(1, 'a'), (2, 'b')"), of("(1, 'b'), (2, 'a')"));
        // A view, or a table that is not there, has none.
        let views = db("CREATE VIEW v AS SELECT 1 AS x;");
        assert!(row_sets(&views, ["v", "nothing"]).unwrap().is_empty());
    }

    fn db(sql: &str) -> rusqlite::Connection {
        let db = rusqlite::Connection::open_in_memory().unwrap();
        db.execute_batch(sql).unwrap();
        db
    }

    const TABLE: &str = "CREATE TABLE t(id INTEGER PRIMARY KEY, a TEXT, b BLOB, c REAL);";

    #[test]
    fn integers_of_2_53_and_beyond_are_counted_as_wide() {
        let db = rusqlite::Connection::open_in_memory().unwrap();
        db.execute_batch(
            "CREATE TABLE t (v);\
             INSERT INTO t VALUES (9007199254740991), (-9007199254740991), (1.0e300),\
             (9007199254740992), (-9007199254740992), (9007199254740993),\
             (-9223372036854775808);",
        )
        .unwrap();
        let read = read(&db, ["t"]).unwrap();
        assert_eq!(read.wide_integers.get("t"), Some(&4), "{read:?}");
    }

    #[test]
    fn a_real_of_2_63_is_counted_as_rounded_only_where_a_column_could_hold_an_integer() {
        let db = rusqlite::Connection::open_in_memory().unwrap();
        db.execute_batch(
            "CREATE TABLE r (a REAL, b DOUBLE PRECISION, c FLOAT, d \"floating point\");\
             INSERT INTO r VALUES (9.2233720368547758e18, -9.2233720368547758e18,\
             9223372036854775807, 9.2233720368547758e18);\
             CREATE TABLE i (a, b INTEGER, c NUMERIC, d BIGINT);\
             INSERT INTO i VALUES (9.2233720368547758e18, 9.2233720368547758e18,\
             -9.2233720368547758e18, 9.2233720368547758e18);",
        )
        .unwrap();
        let read = read(&db, ["r", "i"]).unwrap();
        // `d` of `r` is "floating point", whose "INT" makes it INTEGER.
        assert_eq!(read.wide_integers.get("r"), Some(&1), "{read:?}");
        assert_eq!(read.wide_integers.get("i"), Some(&4), "{read:?}");
    }

    #[test]
    fn the_same_rows_in_another_order_give_the_same_digest() {
        let one = db(&format!(
            "{TABLE} INSERT INTO t VALUES(1,'x',X'00',1.5); INSERT INTO t VALUES(2,NULL,NULL,2);"
        ));
        let two = db(&format!(
            "{TABLE} INSERT INTO t VALUES(2,NULL,NULL,2); INSERT INTO t VALUES(1,'x',X'00',1.5);"
        ));
        assert_eq!(
            table_digest(&one, "t").unwrap(),
            table_digest(&two, "t").unwrap()
        );
    }

    #[test]
    fn one_changed_value_that_row_counts_miss_changes_the_digest() {
        let base = format!("{TABLE} INSERT INTO t VALUES(1,'x',X'00',1.5);");
        let digest = |sql: &str| table_digest(&db(sql), "t").unwrap().unwrap();
        let original = digest(&base);
        for changed in [
            base.replace("'x'", "'y'"),
            base.replace("X'00'", "X'01'"),
            base.replace("1.5", "1.25"),
            // The same text as a BLOB, and an integer as a real, differ too.
            base.replace("'x'", "X'78'"),
            base.replace(",1.5)", ",1)"),
        ] {
            assert_ne!(digest(&changed), original, "{changed}");
        }
        let expected = BTreeMap::from([("t".to_owned(), original)]);
        let found = tables(&db(&base.replace("'x'", "'y'")), ["t"]).unwrap();
        let diff = differences(&expected, &found);
        assert_eq!(diff.len(), 1);
        assert!(diff[0].starts_with("t: its rows differ"), "{diff:?}");
        assert!(!diff[0].contains('y'), "no values in the message");
        assert_eq!(
            differences(&expected, &BTreeMap::new()),
            ["t: missing".to_owned()]
        );
    }
}
