//! Which VIRTUAL generated column a row's INSERT could not compute, and
//! that row's key. SQLite computes a table's generated columns as a row
//! goes in, so a row whose `json_extract` of text that is not JSON fails
//! (an integer overflow, a value past its length limit) fails its INSERT
//! with SQLite's reason alone (`malformed JSON`), naming neither the
//! column nor the row; D1 fails it the same way. A backup of local D1
//! warns of such a column ([`crate::value_limit::Uncomputed`]); a load
//! finds the row.

use rusqlite::Connection;

use crate::digest::Share;
use crate::gate::{Gate, Outcome};
use crate::statement::quote_ident;
use crate::value_limit::{Uncomputed, computing_failed};

/// The row an INSERT failed on, by its key, never a value.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RowKey {
    /// The rowid the row would have had.
    Rowid(i64),
    /// A WITHOUT ROWID table's primary key columns: their values are the
    /// row's own, so only the columns are named.
    Columns(Vec<String>),
}

/// A VIRTUAL generated column SQLite could not compute for one row.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UncomputedRow {
    pub column: Uncomputed,
    pub key: RowKey,
    /// The row's share of its table's row set, as it would be stored
    /// without the column; `None` when it could not be read.
    pub share: Option<Share>,
}

impl UncomputedRow {
    /// `vj.g (malformed JSON): a VIRTUAL generated column SQLite cannot
    /// compute for the row of rowid 7, …`, names escaped, never a value.
    pub fn said(&self) -> String {
        format!(
            "{}: a VIRTUAL generated column SQLite cannot compute for {}, so that row does \
             not load, here or into D1; fix the column's expression or that row",
            self.column.said(),
            self.row()
        )
    }

    /// `the row of rowid 7`, or of a WITHOUT ROWID table's key columns.
    pub fn row(&self) -> String {
        match &self.key {
            RowKey::Rowid(rowid) => format!("the row of rowid {rowid}"),
            RowKey::Columns(columns) => format!(
                "the row of key ({}) this statement writes",
                columns
                    .iter()
                    .map(|c| crate::names::shown(c).into_owned())
                    .collect::<Vec<_>>()
                    .join(", ")
            ),
        }
    }
}

/// For an INSERT `sql` (a statement from a file) that failed on `gate`
/// with `e`: the VIRTUAL generated column of its table SQLite could not
/// compute for its row, and the row's key; `None` when `e` is no failure
/// to compute a value, the table has no such column, or the row fails
/// without them too. Each try runs the INSERT again through the gate
/// inside a savepoint, with the table's other VIRTUAL columns (and its
/// indexes, which may name them) dropped, and is rolled back: first
/// without any (the row then loads, and its rowid is read), then keeping
/// one column at a time. The database is left as it was.
pub fn in_row(gate: &Gate, sql: &str, e: &rusqlite::Error) -> Option<UncomputedRow> {
    if !computing_failed(e) {
        return None;
    }
    let table = crate::statement::insert_target(sql)?;
    let columns = virtual_columns(gate.db(), &table).ok()?;
    if columns.is_empty() {
        return None;
    }
    let (key, share) = match tried(gate, &table, sql, &columns, None)? {
        Ok(loaded) => loaded,
        Err(_) => return None,
    };
    let found =
        columns.iter().find_map(
            |kept| match tried(gate, &table, sql, &columns, Some(kept))? {
                Err(e) if computing_failed(&e) => Some(Uncomputed {
                    table: table.clone(),
                    column: kept.clone(),
                    why: crate::gate::without_values(&e),
                }),
                _ => None,
            },
        );
    gate.db().flush_prepared_statement_cache();
    found.map(|column| UncomputedRow { column, key, share })
}

/// The VIRTUAL generated columns of `table`, in order.
fn virtual_columns(db: &Connection, table: &str) -> rusqlite::Result<Vec<String>> {
    db.prepare("SELECT name FROM pragma_table_xinfo(?1) WHERE hidden = 2 ORDER BY cid")?
        .query_map([table], |row| row.get(0))?
        .collect()
}

/// Runs the INSERT `sql` through `gate` inside a savepoint, with every
/// VIRTUAL column of `columns` but `kept` dropped from `table`, and the
/// indexes made by `CREATE INDEX` on it; then rolls it all back. The row's
/// key and its share of the table's row set (read with no column `kept`)
/// if it ran, SQLite's error if it failed; `None` when the columns could
/// not be dropped (a view or another column names one) or the gate
/// refused it.
fn tried(
    gate: &Gate,
    table: &str,
    sql: &str,
    columns: &[String],
    kept: Option<&String>,
) -> Option<Result<(RowKey, Option<Share>), rusqlite::Error>> {
    let db = gate.db();
    db.execute_batch("SAVEPOINT uncomputed_probe").ok()?;
    let outcome = dropped(db, table, columns, kept).ok().and_then(|()| {
        // A WITHOUT ROWID table's row is told from the rows before it.
        let before = match kept {
            None if without_rowid(db, table).ok()? => {
                crate::digest::share(db, table, None).ok().flatten()
            }
            _ => None,
        };
        match gate.run(sql) {
            Outcome::Ran => row_key(db, table).ok().map(|key| {
                let share = kept.is_none().then(|| inserted(db, table, &key, before));
                Ok((key, share.flatten()))
            }),
            Outcome::Failed(e) => Some(Err(e)),
            Outcome::Refused(_) => None,
        }
    });
    db.execute_batch("ROLLBACK TO uncomputed_probe; RELEASE uncomputed_probe")
        .ok()?;
    outcome
}

/// Drops from `table` its indexes made by `CREATE INDEX` and each of
/// `columns` but `kept`.
fn dropped(
    db: &Connection,
    table: &str,
    columns: &[String],
    kept: Option<&String>,
) -> rusqlite::Result<()> {
    let indexes: Vec<String> = db
        .prepare("SELECT name FROM pragma_index_list(?1) WHERE origin = 'c'")?
        .query_map([table], |row| row.get(0))?
        .collect::<rusqlite::Result<_>>()?;
    for index in indexes {
        db.execute_batch(&format!("DROP INDEX {}", quote_ident(&index)))?;
    }
    for column in columns.iter().filter(|c| Some(*c) != kept) {
        db.execute_batch(&format!(
            "ALTER TABLE {} DROP COLUMN {}",
            quote_ident(table),
            quote_ident(column)
        ))?;
    }
    Ok(())
}

/// The share of the row of `key` just inserted into `table` in its row
/// set: read by its rowid, or a WITHOUT ROWID table's rows less those it
/// held `before`.
fn inserted(db: &Connection, table: &str, key: &RowKey, before: Option<Share>) -> Option<Share> {
    match key {
        RowKey::Rowid(rowid) => crate::digest::share(db, table, Some(*rowid)).ok()?,
        RowKey::Columns(_) => Some(crate::digest::share(db, table, None).ok()??.less(before?)),
    }
}

/// Whether `table` is a WITHOUT ROWID table.
fn without_rowid(db: &Connection, table: &str) -> rusqlite::Result<bool> {
    db.query_row(
        "SELECT count(*) > 0 FROM pragma_table_list WHERE schema = 'main' AND name = ?1 \
         AND wr = 1",
        [table],
        |row| row.get(0),
    )
}

/// The key of the row just inserted into `table`: its rowid, or a
/// WITHOUT ROWID table's primary key columns.
fn row_key(db: &Connection, table: &str) -> rusqlite::Result<RowKey> {
    if !without_rowid(db, table)? {
        return Ok(RowKey::Rowid(db.last_insert_rowid()));
    }
    let columns = db
        .prepare("SELECT name FROM pragma_table_info(?1) WHERE pk > 0 ORDER BY pk")?
        .query_map([table], |row| row.get(0))?
        .collect::<rusqlite::Result<_>>()?;
    Ok(RowKey::Columns(columns))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The schema and the rows of `t`.
    fn state(gate: &Gate) -> String {
        gate.db()
            .query_row(
                "SELECT (SELECT group_concat(sql, ';') FROM sqlite_schema) || \
                 (SELECT count(*) FROM t)",
                [],
                |r| r.get(0),
            )
            .unwrap()
    }

    /// `dump` run through a gate in one transaction, then `sql`: its
    /// failure's uncomputed column. The schema and rows are as they were.
    fn failing(dump: &str, sql: &str) -> Option<UncomputedRow> {
        let gate = Gate::memory().unwrap();
        gate.db().execute_batch("BEGIN").unwrap();
        for statement in dump.lines() {
            assert!(matches!(gate.run(statement), Outcome::Ran), "{statement}");
        }
        let before = state(&gate);
        let Outcome::Failed(e) = gate.run(sql) else {
            panic!("{sql} did not fail")
        };
        let found = in_row(&gate, sql, &e);
        assert_eq!(state(&gate), before, "{sql}");
        found
    }

    const VJ: &str = "CREATE TABLE t(id INTEGER PRIMARY KEY, x TEXT, \
                      g TEXT AS (json_extract(x,'$.a')) VIRTUAL, h AS (length(x)) VIRTUAL, \
                      i AS (json_extract(x,'$.b') + 1) VIRTUAL);\n\
                      CREATE INDEX t_g ON t(g);\n\
                      INSERT INTO \"t\" VALUES(1,'{\"a\":1}');";

    /// The column that fails is named with SQLite's reason and the rowid
    /// the row would have had (given or not), the other columns not, and
    /// the schema and rows are as they were.
    #[test]
    fn the_column_that_fails_is_named_with_its_rowid_and_nothing_is_left_changed() {
        for (sql, rowid) in [
            ("INSERT INTO \"t\" VALUES(7,'not json');", 7),
            ("INSERT INTO t(x) VALUES('not json');", 2),
        ] {
            let found = failing(VJ, sql).expect(sql);
            assert_eq!(found.key, RowKey::Rowid(rowid), "{sql}");
            assert_eq!(found.column.said(), "t.g (malformed JSON)", "{sql}");
            assert!(found.said().contains("rowid"), "{}", found.said());
            assert!(!found.said().contains("not json"), "{}", found.said());
        }
    }

    /// Of two columns that fail, the first is named; a WITHOUT ROWID
    /// table's row by its key's columns, never their values.
    #[test]
    fn a_without_rowid_row_is_named_by_its_key_columns() {
        let dump = "CREATE TABLE t(k TEXT, n INTEGER, x TEXT, \
                    g AS (json_extract(x,'$.a')) VIRTUAL, h AS (abs(-9223372036854775807 - n)) \
                    VIRTUAL, PRIMARY KEY (n, k)) WITHOUT ROWID;";
        let found = failing(dump, "INSERT INTO \"t\" VALUES('secret',1,'nope');").unwrap();
        assert_eq!(found.key, RowKey::Columns(vec!["n".into(), "k".into()]));
        assert_eq!(found.column.said(), "t.g (malformed JSON)");
        let found = failing(dump, "INSERT INTO \"t\" VALUES('secret',1,'{}');").unwrap();
        assert_eq!(found.column.said(), "t.h (integer overflow)");
    }

    /// The row's share of its table's row set is that of the same row
    /// stored without the column: a rowid table's and a WITHOUT ROWID
    /// table's, beside rows already there.
    #[test]
    fn the_row_is_counted_as_the_table_would_store_it() {
        for (dump, plain, sql) in [
            (
                VJ,
                "CREATE TABLE t(id INTEGER PRIMARY KEY, x TEXT);",
                "INSERT INTO \"t\" VALUES(7,'not json');",
            ),
            (
                "CREATE TABLE t(k TEXT PRIMARY KEY, x TEXT, g AS (json_extract(x,'$.a')) \
                 VIRTUAL) WITHOUT ROWID;\nINSERT INTO t VALUES('a','{}');",
                "CREATE TABLE t(k TEXT PRIMARY KEY, x TEXT) WITHOUT ROWID;",
                "INSERT INTO t VALUES('b','nope');",
            ),
        ] {
            let found = failing(dump, sql).expect(sql);
            let db = Connection::open_in_memory().unwrap();
            db.execute_batch(plain).unwrap();
            db.execute_batch(sql).unwrap();
            let want = crate::digest::share(&db, "t", None).unwrap();
            assert_eq!(found.share, want, "{sql}");
            assert!(want.is_some());
        }
    }

    /// A failure that no VIRTUAL column makes is not put on one: a CHECK,
    /// a STORED column, a table with none.
    #[test]
    fn a_failure_no_virtual_column_makes_names_none() {
        for (dump, sql) in [
            (
                "CREATE TABLE t(x, g AS (length(x)) VIRTUAL, CHECK (json_valid(x) OR \
                 json_extract(x, '$') IS NULL));",
                "INSERT INTO t VALUES('not json');",
            ),
            (
                "CREATE TABLE t(x, g AS (json_extract(x,'$.a')) STORED);",
                "INSERT INTO t VALUES('not json');",
            ),
            (
                "CREATE TABLE t(x UNIQUE, g AS (length(x)) VIRTUAL);\nINSERT INTO t VALUES(1);",
                "INSERT INTO t VALUES(1);",
            ),
        ] {
            assert_eq!(failing(dump, sql), None, "{dump}");
        }
    }

    /// A row of a table with an INTEGER PRIMARY KEY is named by its key's
    /// column, not by its rowid, which is that key's value; a row of a
    /// statement of several rows as one of them (the rowid read was the
    /// statement's last row's), and counted as all the rows that statement
    /// does not load; a rowid table's other row by the rowid it would have
    /// had. Never a value.
    #[test]
    fn the_row_is_named_by_its_key_never_its_value_nor_another_rows() {
        let found = failing(VJ, "INSERT INTO \"t\" VALUES(4242,'not json');").unwrap();
        assert_eq!(found.row(), "the row of key (id) this statement writes");
        assert!(!found.said().contains("4242"), "{}", found.said());
        let several = "INSERT INTO t VALUES(5,'{}'),(6,'nope'),(4243,'{}');";
        let found = failing(VJ, several).unwrap();
        assert_eq!(found.row(), "a row this statement writes");
        assert!(!found.said().contains("4243"), "{}", found.said());
        let db = Connection::open_in_memory().unwrap();
        db.execute_batch("CREATE TABLE t(id INTEGER PRIMARY KEY, x TEXT);")
            .unwrap();
        db.execute_batch(several).unwrap();
        assert_eq!(found.share, crate::digest::share(&db, "t", None).unwrap());
        let dump = "CREATE TABLE t(n INTEGER, x TEXT, g AS (json_extract(x,'$.a')) VIRTUAL);\n\
                    INSERT INTO t VALUES(1,'{}');";
        let found = failing(dump, "INSERT INTO t VALUES(4244,'nope');").unwrap();
        assert_eq!(found.row(), "the row of rowid 2");
    }

    /// The tries drop each VIRTUAL column a few times at most, not once
    /// for each try: the virtual machine steps they take for a table of
    /// 48 VIRTUAL columns, its last failing, are not 16 times those for
    /// 12 (each `ALTER TABLE … DROP COLUMN` reads and writes the schema
    /// again, and every column but the one kept was dropped for each try,
    /// so a hostile dump of wide tables and failing rows was slow).
    #[test]
    fn the_tries_grow_with_the_columns_not_their_square() {
        let steps = |columns: usize| {
            let kept: String = (0..columns)
                .map(|i| format!(", g{i} AS (length(x) + {i}) VIRTUAL"))
                .collect();
            let dump = format!(
                "CREATE TABLE t(id INTEGER PRIMARY KEY, x TEXT{kept}, \
                 z AS (json_extract(x,'$.a')) VIRTUAL);"
            );
            let mut gate = Gate::memory().unwrap();
            gate.db().execute_batch("BEGIN").unwrap();
            assert!(matches!(gate.run(&dump), Outcome::Ran));
            let sql = "INSERT INTO t VALUES(1,'nope');";
            let Outcome::Failed(e) = gate.run(sql) else {
                panic!("{sql} ran")
            };
            let counted = std::sync::Arc::new(std::sync::atomic::AtomicU64::new(0));
            let count = std::sync::Arc::clone(&counted);
            gate.db_mut()
                .progress_handler(
                    1,
                    Some(move || {
                        count.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                        false
                    }),
                )
                .unwrap();
            let found = in_row(&gate, sql, &e);
            assert_eq!(
                found.map(|f| f.column.said()).as_deref(),
                Some("t.z (malformed JSON)")
            );
            counted.load(std::sync::atomic::Ordering::Relaxed)
        };
        let (few, many) = (steps(11), steps(47));
        assert!(
            many < few * 8,
            "{few} steps with 12 columns, {many} with 48"
        );
    }
}
