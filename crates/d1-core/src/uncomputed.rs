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
    /// The rowid the row would have had, in a table whose rowid is no
    /// column's value (it has no INTEGER PRIMARY KEY).
    Rowid(i64),
    /// The primary key columns of a WITHOUT ROWID table, or a table's
    /// INTEGER PRIMARY KEY (its rowid is that column's value): the values
    /// are the row's own, so only the columns are named.
    Columns(Vec<String>),
    /// One of the rows of a statement of several, which one not told.
    OfStatement,
}

/// A VIRTUAL generated column SQLite could not compute for one row.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UncomputedRow {
    pub column: Uncomputed,
    pub key: RowKey,
    /// The share of the table's row set of the rows the statement does not
    /// load (its row, or all of a statement of several), as they would be
    /// stored without the column; `None` when it could not be read.
    pub share: Option<Share>,
}

impl UncomputedRow {
    /// `vj.g (malformed JSON): a VIRTUAL generated column SQLite cannot
    /// compute for the row of rowid 7, …`, names escaped, never a value.
    pub fn said(&self) -> String {
        format!(
            "{}: a VIRTUAL generated column SQLite cannot compute for {}, so {}, here or into \
             D1; fix the column's expression or that row",
            self.column.said(),
            self.row(),
            match self.key {
                RowKey::OfStatement => "none of this statement's rows loads",
                _ => "that row does not load",
            }
        )
    }

    /// `the row of rowid 7`, or of the key columns of a WITHOUT ROWID
    /// table or an INTEGER PRIMARY KEY, or `a row this statement writes`.
    pub fn row(&self) -> String {
        match &self.key {
            RowKey::Rowid(rowid) => format!("the row of rowid {rowid}"),
            RowKey::Columns(columns) => format!(
                "the row of key ({}) this statement writes",
                columns
                    .iter()
                    .map(|c| crate::names::shown_name(c).into_owned())
                    .collect::<Vec<_>>()
                    .join(", ")
            ),
            RowKey::OfStatement => "a row this statement writes".to_owned(),
        }
    }
}

/// Whether [`in_row`] would search `sql`'s failure `e` on `db`: an INSERT
/// that SQLite failed with its plain error or "too big" (as a VIRTUAL
/// generated column it cannot compute fails a row) into a table that has
/// such a column. Any other is no row of an uncomputable column, and the
/// load's bound on searches ([`in_row`] tries the row some log2(columns)
/// times) counts only these.
pub fn searchable(db: &Connection, sql: &str, e: &rusqlite::Error) -> bool {
    computing_failed(e)
        && crate::statement::insert_target(sql).is_some_and(|name| {
            db.query_row(
                "SELECT count(*) > 0 FROM pragma_table_xinfo(?1) WHERE hidden = 2",
                [&name],
                |row| row.get(0),
            )
            .unwrap_or(false)
        })
}

/// For an INSERT `sql` (a statement from a file) that failed on `gate`
/// with `e`: the VIRTUAL generated column of its table SQLite could not
/// compute for its row, and the row's key; `None` when `e` is no failure
/// to compute a value, the table has no such column, or the row fails
/// without them too. Each try runs the INSERT again through the gate
/// inside a savepoint, with the table's indexes made by `CREATE INDEX`
/// (which may name a column) and its last VIRTUAL columns dropped, and is
/// rolled back; the database is left as it was.
///
/// A row that fails with the table's first `k` VIRTUAL columns fails with
/// more, so the column is found by halving: the first whose computing
/// fails, with those before it kept (a column may use them). The table is
/// read once, and each column is dropped about twice at most, in about
/// log2(columns) tries: each `ALTER TABLE … DROP COLUMN` writes and reads
/// the schema again, and dropping all columns but one for each column's
/// try made a wide table's failing row quadratic.
///
/// An error when the transaction the caller holds ended in a try (SQLite
/// rolls a whole transaction back on some errors: a database at its bound
/// or a full disk, memory run out, an interrupt), with what ended it:
/// everything loaded before is gone, and a statement run now would run
/// outside any transaction, so the caller stops.
pub fn in_row(
    gate: &Gate,
    sql: &str,
    e: &rusqlite::Error,
) -> rusqlite::Result<Option<UncomputedRow>> {
    if !computing_failed(e) {
        return Ok(None);
    }
    let Some(name) = crate::statement::insert_target(sql) else {
        return Ok(None);
    };
    let db = gate.db();
    let table = match Table::read(db, &name) {
        Ok(table) if !table.columns.is_empty() => table,
        _ => return Ok(None),
    };
    let probe = Probe {
        gate,
        sql,
        table: &table,
        // Read once for every try; a share that cannot be read is none.
        kinds: crate::catalog::Kinds::read(db).unwrap_or_default(),
        held: !db.is_autocommit(),
    };
    if !probe.own("SAVEPOINT uncomputed_probe")? {
        return Ok(None);
    }
    let found = probe.found();
    let undone = db.execute_batch("ROLLBACK TO uncomputed_probe; RELEASE uncomputed_probe");
    db.flush_prepared_statement_cache();
    let found = found?;
    undone?;
    Ok(found)
}

/// What the tries need of the table, read once.
struct Table {
    name: String,
    /// Its VIRTUAL generated columns, in order.
    columns: Vec<String>,
    /// Its indexes made by `CREATE INDEX`.
    indexes: Vec<String>,
    without_rowid: bool,
    /// The columns that name a row: a WITHOUT ROWID table's primary key,
    /// or an INTEGER PRIMARY KEY; `None` when the rowid does.
    key: Option<Vec<String>>,
}

impl Table {
    fn read(db: &Connection, name: &str) -> rusqlite::Result<Table> {
        let names = |sql: &str| -> rusqlite::Result<Vec<String>> {
            db.prepare(sql)?
                .query_map([name], |row| row.get(0))?
                .collect()
        };
        let without_rowid = db.query_row(
            "SELECT count(*) > 0 FROM pragma_table_list WHERE schema = 'main' AND name = ?1 \
             AND wr = 1",
            [name],
            |row| row.get(0),
        )?;
        let key: Vec<(String, String)> = db
            .prepare("SELECT name, type FROM pragma_table_info(?1) WHERE pk > 0 ORDER BY pk")?
            .query_map([name], |row| Ok((row.get(0)?, row.get(1)?)))?
            .collect::<rusqlite::Result<_>>()?;
        let integer_key = matches!(&key[..], [(_, kind)] if kind.eq_ignore_ascii_case("INTEGER"));
        Ok(Table {
            name: name.to_owned(),
            columns: names(
                "SELECT name FROM pragma_table_xinfo(?1) WHERE hidden = 2 ORDER BY cid",
            )?,
            indexes: names("SELECT name FROM pragma_index_list(?1) WHERE origin = 'c'")?,
            without_rowid,
            key: (without_rowid || integer_key).then(|| key.into_iter().map(|(c, _)| c).collect()),
        })
    }
}

/// What one try of the INSERT gave.
enum Tried {
    /// It ran: how many rows it wrote, and, when asked for, its row's key
    /// and the share of the rows it wrote.
    Loaded(u64, Option<(RowKey, Option<Share>)>),
    /// SQLite failed it.
    Failed(rusqlite::Error),
    /// The gate refused it, or the try could not be made.
    Not,
}

/// The tries of one INSERT.
struct Probe<'a> {
    gate: &'a Gate,
    sql: &'a str,
    table: &'a Table,
    /// The kinds of the schema's objects, for the shares of the rows
    /// (a try drops columns, never a table).
    kinds: crate::catalog::Kinds,
    /// The caller holds a transaction, which a try must not end.
    held: bool,
}

impl Probe<'_> {
    /// The column and the row, inside the savepoint `in_row` holds.
    fn found(&self) -> rusqlite::Result<Option<UncomputedRow>> {
        for index in &self.table.indexes {
            if !self.own(&format!("DROP INDEX {}", quote_ident(index)))? {
                return Ok(None);
            }
        }
        let columns = &self.table.columns;
        // Without the indexes, with every column: the row may then load.
        let mut why = match self.tried(None)? {
            Tried::Failed(e) if computing_failed(&e) => e,
            _ => return Ok(None),
        };
        // The row fails with the first `fails` columns (kept from here on
        // at the last savepoint), and loads with the first `loads`, once
        // tried (with how many rows it wrote).
        let (mut loads, mut fails) = (None::<(usize, u64)>, columns.len());
        if !self.own("SAVEPOINT uncomputed_kept")? {
            return Ok(None);
        }
        while loads.is_none_or(|(k, _)| fails - k > 1) {
            if loads.is_none() && fails == 0 {
                return Ok(None);
            }
            let mid = (loads.map_or(0, |(k, _)| k) + fails) / 2;
            if !self.drop_columns(mid..fails)? {
                return Ok(None);
            }
            match self.tried(None)? {
                Tried::Loaded(rows, _) => {
                    loads = Some((mid, rows));
                    if !self.own("ROLLBACK TO uncomputed_kept")? {
                        return Ok(None);
                    }
                }
                Tried::Failed(e) if computing_failed(&e) => {
                    (fails, why) = (mid, e);
                    if !self.own("SAVEPOINT uncomputed_kept")? {
                        return Ok(None);
                    }
                }
                _ => return Ok(None),
            }
        }
        let Some((blamed, rows)) = loads else {
            return Ok(None);
        };
        // The row read as the table stores it, the blamed column dropped.
        if !self.drop_columns(blamed..fails)? {
            return Ok(None);
        }
        let whole = rows != 1 || self.table.without_rowid;
        let Tried::Loaded(_, Some((key, share))) = self.tried(Some(whole))? else {
            return Ok(None);
        };
        Ok(Some(UncomputedRow {
            column: Uncomputed {
                table: self.table.name.clone(),
                column: columns[blamed].clone(),
                why: crate::gate::without_values(&why),
            },
            key,
            share,
        }))
    }

    /// Drops the VIRTUAL columns `which` (by their places), the last
    /// first; `false` when one cannot be (a view or another column names
    /// it).
    fn drop_columns(&self, which: std::ops::Range<usize>) -> rusqlite::Result<bool> {
        for column in self.table.columns[which].iter().rev() {
            let drop = format!(
                "ALTER TABLE {} DROP COLUMN {}",
                quote_ident(&self.table.name),
                quote_ident(column)
            );
            if !self.own(&drop)? {
                return Ok(false);
            }
        }
        Ok(true)
    }

    /// Runs the INSERT through the gate inside a savepoint, rolled back;
    /// with `read`, reads the row's key and the share of the rows it
    /// wrote: by the rowid of its one row, or, when `read` says `whole`
    /// (a WITHOUT ROWID table, a statement of several rows), as the
    /// table's rows less those before it.
    fn tried(&self, read: Option<bool>) -> rusqlite::Result<Tried> {
        let db = self.gate.db();
        if !self.own("SAVEPOINT uncomputed_try")? {
            return Ok(Tried::Not);
        }
        let table = &self.table.name;
        let before = match read {
            Some(true) => crate::digest::share(db, &self.kinds, table, None)
                .ok()
                .flatten(),
            _ => None,
        };
        // The schema changed: the row is judged again against it.
        db.flush_prepared_statement_cache();
        let tried = match self.gate.run(self.sql) {
            Outcome::Ran => {
                let rows = db.changes();
                let key = read.map(|_| match (&self.table.key, rows) {
                    (Some(columns), 1) => RowKey::Columns(columns.clone()),
                    (None, 1) => RowKey::Rowid(db.last_insert_rowid()),
                    _ => RowKey::OfStatement,
                });
                let share = match read {
                    None => None,
                    Some(false) => {
                        crate::digest::share(db, &self.kinds, table, Some(db.last_insert_rowid()))
                            .ok()
                            .flatten()
                    }
                    Some(true) => before.and_then(|before| {
                        Some(
                            crate::digest::share(db, &self.kinds, table, None)
                                .ok()??
                                .less(before),
                        )
                    }),
                };
                Tried::Loaded(rows, key.map(|key| (key, share)))
            }
            Outcome::Failed(e) if self.ended() => return Err(e),
            Outcome::Refused(why) if self.ended() => return Err(ended_by(&why.0)),
            Outcome::Failed(e) => Tried::Failed(e),
            Outcome::Refused(_) => Tried::Not,
        };
        if !self.own("ROLLBACK TO uncomputed_try; RELEASE uncomputed_try")? {
            return Ok(Tried::Not);
        }
        Ok(tried)
    }

    /// Runs one of the tool's own statements: `false` when it fails, an
    /// error when it ended the caller's transaction.
    fn own(&self, sql: &str) -> rusqlite::Result<bool> {
        match self.gate.db().execute_batch(sql) {
            Ok(()) => Ok(true),
            Err(e) if self.ended() => Err(e),
            Err(_) => Ok(false),
        }
    }

    /// Whether the transaction the caller holds has ended.
    fn ended(&self) -> bool {
        self.held && self.gate.db().is_autocommit()
    }
}

/// The error a try the gate refused (`why`) ended the transaction with.
fn ended_by(why: &str) -> rusqlite::Error {
    rusqlite::Error::SqliteFailure(
        rusqlite::ffi::Error::new(rusqlite::ffi::SQLITE_ABORT_ROLLBACK),
        Some(format!("the gate stopped it: {why}")),
    )
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
        let found = in_row(&gate, sql, &e).unwrap();
        assert_eq!(state(&gate), before, "{sql}");
        assert!(!gate.db().is_autocommit(), "{sql}");
        found
    }

    const VJ: &str = "CREATE TABLE t(id INTEGER PRIMARY KEY, x TEXT, \
                      g TEXT AS (json_extract(x,'$.a')) VIRTUAL, h AS (length(x)) VIRTUAL, \
                      i AS (json_extract(x,'$.b') + 1) VIRTUAL);\n\
                      CREATE INDEX t_g ON t(g);\n\
                      INSERT INTO \"t\" VALUES(1,'{\"a\":1}');";

    /// The column that fails is named with SQLite's reason and the row by
    /// its INTEGER PRIMARY KEY's column (given or not), the other columns
    /// not, and the schema and rows are as they were.
    #[test]
    fn the_column_that_fails_is_named_with_its_row_and_nothing_is_left_changed() {
        for sql in [
            "INSERT INTO \"t\" VALUES(7,'not json');",
            "INSERT INTO t(x) VALUES('not json');",
        ] {
            let found = failing(VJ, sql).expect(sql);
            assert_eq!(found.key, RowKey::Columns(vec!["id".into()]), "{sql}");
            assert_eq!(found.column.said(), "t.g (malformed JSON)", "{sql}");
            assert!(found.said().contains("key (id)"), "{}", found.said());
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
            let want =
                crate::digest::share(&db, &crate::catalog::Kinds::read(&db).unwrap(), "t", None)
                    .unwrap();
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
        assert_eq!(
            found.share,
            crate::digest::share(&db, &crate::catalog::Kinds::read(&db).unwrap(), "t", None)
                .unwrap()
        );
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
            let found = in_row(&gate, sql, &e).unwrap();
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
