//! Each foreign key of a schema, and whether SQLite can code and check it.
//!
//! D1 enforces foreign keys in every statement, so a key SQLite cannot code
//! stops every write to its table (and, its parent key not UNIQUE, every
//! delete from the parent), and a check of the whole database. The plan of
//! a migration ([`crate::fk_actions`]) asks which keys its statements leave
//! so; verify ([`crate::checks`]) and restore ask which tables of a backup
//! hold one. Both ask here, once, and the answer is SQLite's own: the check
//! of each child (`PRAGMA foreign_key_check`) prepares or names the parent
//! it could not code, and a key of a child whose check does not prepare is
//! judged alone ([`codes_alone`]). SQLite's rule for a parent key (the
//! parent's PRIMARY KEY, or a UNIQUE index of those columns with their
//! collations, not partial) is never copied here: a copy drifts.

use crate::statement::quote_ident;

/// What SQLite makes of a foreign key.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    /// SQLite codes it: its parent is a table with that key.
    Sound,
    /// No table or view is named as its parent: SQLite skips it in a check,
    /// and every insert into its table fails (`no such table`).
    ParentMissing,
    /// Its parent is a virtual table (FTS5), which has no key to refer to.
    ParentVirtual,
    /// Its parent key is neither the parent's PRIMARY KEY nor under a
    /// UNIQUE index of it (`foreign key mismatch`).
    ParentKeyNotUnique,
}

/// One foreign key of a table, as `PRAGMA foreign_key_list` gives it, and
/// SQLite's [`Verdict`] of it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ForeignKey {
    /// The table that has the key, as the schema names it.
    pub child: String,
    /// The key's id among its table's (SQLite checks them in that order).
    pub id: i64,
    /// The child's columns, in order.
    pub from: Vec<String>,
    /// The parent table, as the key writes it.
    pub parent: String,
    /// The parent's columns, `None` where the key names none (its primary
    /// key).
    pub to: Vec<Option<String>>,
    pub verdict: Verdict,
}

impl ForeignKey {
    /// How SQLite words the failure this key causes, in a statement that
    /// writes its table (a trigger's or a view's that does not prepare);
    /// `None` for a sound key.
    pub fn failure_said(&self) -> Option<String> {
        let escaped = |name: &str| name.replace('"', "\"\"");
        match self.verdict {
            Verdict::Sound => None,
            Verdict::ParentMissing => Some(format!("no such table: main.{}", self.parent)),
            Verdict::ParentVirtual | Verdict::ParentKeyNotUnique => Some(format!(
                "foreign key mismatch - \"{}\" referencing \"{}\"",
                escaped(&self.child),
                escaped(&self.parent)
            )),
        }
    }

    /// Whether SQLite's reason `why` (a statement's that does not prepare)
    /// is this key's failure ([`ForeignKey::failure_said`]), in any case.
    pub fn fails(&self, why: &str) -> bool {
        self.failure_said()
            .is_some_and(|said| why.to_lowercase().contains(&said.to_lowercase()))
    }
}

/// Every foreign key of a database, judged, and what SQLite said of each
/// child whose check did not prepare or run.
#[derive(Debug)]
pub struct Judgement {
    /// By child name, then id.
    pub keys: Vec<ForeignKey>,
    /// The children whose check failed, by name, with SQLite's error.
    failed: Vec<(String, rusqlite::Error)>,
}

/// Every foreign key of `db`'s tables, each judged by SQLite ([`Verdict`]).
/// Only a schema that cannot be read is an error; a child whose check
/// fails otherwise than by a key is [`Judgement::mismatched`]'s to tell.
pub fn judged(db: &rusqlite::Connection) -> rusqlite::Result<Judgement> {
    let mut keys = listed(db)?;
    let mut failed: Vec<(String, rusqlite::Error)> = Vec::new();
    let mut at = 0;
    while at < keys.len() {
        let ends = at + { keys[at..].iter() }
            .take_while(|k| k.child == keys[at].child)
            .count();
        if let Err(e) = checked(db, &keys[at].child) {
            if mismatch(&e) {
                for key in &mut keys[at..ends] {
                    if key.verdict == Verdict::Sound && !codes_alone(db, key) {
                        key.verdict = Verdict::ParentKeyNotUnique;
                    }
                }
            }
            failed.push((keys[at].child.clone(), e));
        }
        at = ends;
    }
    Ok(Judgement { keys, failed })
}

impl Judgement {
    /// The keys SQLite cannot code (every [`Verdict`] but sound).
    pub fn faulty(self) -> impl Iterator<Item = ForeignKey> {
        self.keys
            .into_iter()
            .filter(|k| k.verdict != Verdict::Sound)
    }

    /// The tables with a key naming a virtual table, as (table, parent as
    /// written), once each, in order.
    pub fn virtual_parents(&self) -> Vec<(String, String)> {
        let mut found: Vec<(String, String)> = { self.keys.iter() }
            .filter(|k| k.verdict == Verdict::ParentVirtual)
            .map(|k| (k.child.clone(), k.parent.clone()))
            .collect();
        found.sort();
        found.dedup();
        found
    }

    /// The tables whose check SQLite stops with "foreign key mismatch", as
    /// (table, the parent SQLite named, else the first of the table's), in
    /// order: a key naming a virtual table, or a parent key neither PRIMARY
    /// KEY nor UNIQUE. SQLite stops every write to such a table, and the
    /// check of the whole database; a check that fails otherwise is the
    /// error, as nothing can be said of that table's rows.
    pub fn mismatched(self) -> rusqlite::Result<Vec<(String, String)>> {
        let mut found = Vec::new();
        for (child, e) in self.failed {
            if !mismatch(&e) {
                return Err(e);
            }
            let mut parents: Vec<&String> = { self.keys.iter() }
                .filter(|k| k.child == child)
                .map(|k| &k.parent)
                .collect();
            parents.sort();
            parents.dedup();
            // SQLite names the parent: `... referencing "parent"`.
            let said = e.to_string();
            let named = |p: &&&String| {
                said.ends_with(&format!("referencing \"{}\"", p.replace('"', "\"\"")))
            };
            if let Some(parent) = parents.iter().find(named).or(parents.first()) {
                found.push((child.clone(), (*parent).clone()));
            }
        }
        Ok(found)
    }
}

/// Of `indexes`, the `CREATE INDEX` statements a dump writes after its
/// rows, those a foreign key of `tables` (their `CREATE TABLE`s) needs as
/// its parent key, by place: each UNIQUE index without which SQLite codes
/// fewer keys (rvCN: Drizzle's `.unique()` is such an index, and SQLite,
/// D1 too, refuses a child's row while its parent key has none). SQLite
/// judges, in an empty database in memory; a statement it refuses is no
/// parent key, and a partial index is none, as SQLite takes none.
pub fn parent_key_indexes<'a>(
    tables: impl IntoIterator<Item = &'a str>,
    indexes: &[&str],
) -> Vec<usize> {
    let unique = |sql: &str| sql.to_ascii_uppercase().contains("UNIQUE");
    if !indexes.iter().any(|sql| unique(sql)) {
        return Vec::new();
    }
    let Ok(db) = rusqlite::Connection::open_in_memory() else {
        return Vec::new();
    };
    for sql in tables {
        // A table SQLite refuses here is judged by the load itself.
        let _ = db.execute_batch(sql);
    }
    let uncoded = |db: &rusqlite::Connection| {
        judged(db).map_or(0, |j| {
            { j.keys.iter() }
                .filter(|k| k.verdict == Verdict::ParentKeyNotUnique)
                .count()
        })
    };
    let mut left = uncoded(&db);
    let mut needed = Vec::new();
    for (i, sql) in indexes.iter().enumerate() {
        if left == 0 {
            break;
        }
        if !unique(sql) || db.execute_batch("SAVEPOINT parent_key;").is_err() {
            continue;
        }
        let now = match db.execute_batch(sql) {
            Ok(()) => uncoded(&db),
            Err(_) => left,
        };
        let end = match now < left {
            true => "RELEASE parent_key;",
            false => "ROLLBACK TO parent_key; RELEASE parent_key;",
        };
        if db.execute_batch(end).is_err() {
            break;
        }
        if now < left {
            needed.push(i);
            left = now;
        }
    }
    needed
}

/// Whether SQLite's error `e` is a key it cannot code.
fn mismatch(e: &rusqlite::Error) -> bool {
    e.to_string().contains("foreign key mismatch")
}

/// Every foreign key of `db`'s tables, by child and id, each parent looked
/// up by name as SQLite does (in any case): missing where no table or view
/// has it, virtual where a virtual table does, else sound until its child's
/// check says otherwise.
fn listed(db: &rusqlite::Connection) -> rusqlite::Result<Vec<ForeignKey>> {
    let columns = db
        .prepare(
            "SELECT m.name, f.id, f.\"table\", f.\"from\", f.\"to\", \
             NOT EXISTS (SELECT 1 FROM main.sqlite_schema AS p WHERE p.type IN ('table', 'view') \
             AND lower(p.name) = lower(f.\"table\")), \
             EXISTS (SELECT 1 FROM main.sqlite_schema AS p WHERE p.type = 'table' \
             AND p.name = f.\"table\" COLLATE NOCASE AND p.sql LIKE 'CREATE VIRTUAL TABLE%') \
             FROM main.sqlite_schema AS m JOIN pragma_foreign_key_list(m.name) AS f \
             WHERE m.type = 'table' ORDER BY m.name, f.id, f.seq",
        )?
        .query_map([], |r| {
            let verdict = match (r.get::<_, bool>(5)?, r.get::<_, bool>(6)?) {
                (true, _) => Verdict::ParentMissing,
                (false, true) => Verdict::ParentVirtual,
                (false, false) => Verdict::Sound,
            };
            Ok(ForeignKey {
                child: r.get(0)?,
                id: r.get(1)?,
                parent: r.get(2)?,
                from: vec![r.get(3)?],
                to: vec![r.get(4)?],
                verdict,
            })
        })?
        .collect::<rusqlite::Result<Vec<_>>>()?;
    let mut keys: Vec<ForeignKey> = Vec::new();
    for column in columns {
        match keys.last_mut() {
            Some(key) if key.child == column.child && key.id == column.id => {
                key.from.extend(column.from);
                key.to.extend(column.to);
            }
            _ => keys.push(column),
        }
    }
    Ok(keys)
}

/// SQLite's check of `child`'s foreign keys, prepared and its first row
/// read: a key it cannot code stops the prepare, naming that key's parent
/// (`foreign key mismatch - "child" referencing "parent"`, the first such
/// key only).
fn checked(db: &rusqlite::Connection, child: &str) -> rusqlite::Result<()> {
    db.prepare(&format!(
        "PRAGMA main.foreign_key_check({})",
        quote_ident(child)
    ))
    .and_then(|mut stmt| stmt.query([])?.next().map(|_| ()))
}

/// The table [`codes_alone`] makes, a name no schema is expected to hold
/// (one that does leaves every key sound).
const PROBE: &str = "d1 backup key probe";

/// Whether SQLite codes `key` alone: the check of a table made with that
/// key only (its columns as many, its parent and parent key the same)
/// prepares, in a savepoint rolled back after. The check of a child names
/// one parent, and every key from the child to it was blamed, the sound
/// ones too (rvCB 1, 3). A probe that cannot be made judges nothing.
fn codes_alone(db: &rusqlite::Connection, key: &ForeignKey) -> bool {
    let columns: Vec<String> = (0..key.from.len())
        .map(|i| quote_ident(&format!("c{i}")))
        .collect();
    let columns = columns.join(", ");
    let parent_key = match key.to.iter().cloned().collect::<Option<Vec<String>>>() {
        Some(to) => format!(
            "({})",
            to.iter()
                .map(|c| quote_ident(c))
                .collect::<Vec<_>>()
                .join(", ")
        ),
        None => String::new(),
    };
    let probe = quote_ident(PROBE);
    let made = format!(
        "CREATE TABLE main.{probe} ({columns}, FOREIGN KEY ({columns}) REFERENCES {}{parent_key})",
        quote_ident(&key.parent)
    );
    if db.execute_batch("SAVEPOINT probed").is_err() {
        return true;
    }
    let codes = db.execute_batch(&made).is_err()
        || !{
            db.prepare(&format!("PRAGMA main.foreign_key_check({probe})"))
                .err()
        }
        .is_some_and(|e| mismatch(&e));
    let _ = db.execute_batch("ROLLBACK TO probed; RELEASE probed");
    codes
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A database in memory made by `schema`.
    fn made(schema: &str) -> rusqlite::Connection {
        let db = rusqlite::Connection::open_in_memory().unwrap();
        db.execute_batch(schema).unwrap();
        db
    }

    /// Asserts the verdict of each key of `schema`'s database, one key a
    /// table: (child, parent, verdict).
    fn assert_judged(schema: &str, expected: &[(&str, &str, Verdict)]) {
        let judgement = judged(&made(schema)).unwrap();
        let found: Vec<(&str, &str, Verdict)> = { judgement.keys.iter() }
            .map(|k| (k.child.as_str(), k.parent.as_str(), k.verdict))
            .collect();
        assert_eq!(found, expected);
    }

    /// Each verdict, one key each: a parent's PRIMARY KEY, a parent not
    /// there, an FTS5 table, a column neither PRIMARY KEY nor UNIQUE.
    #[test]
    fn each_verdict_is_sqlites() {
        assert_judged(
            "CREATE TABLE p (id INTEGER PRIMARY KEY, n TEXT); \
             CREATE VIRTUAL TABLE docs USING fts5(body); \
             CREATE TABLE a (p_id REFERENCES p(id)); \
             CREATE TABLE b (g REFERENCES gone(id)); \
             CREATE TABLE c (d REFERENCES docs(body)); \
             CREATE TABLE d (n REFERENCES p(n));",
            &[
                ("a", "p", Verdict::Sound),
                ("b", "gone", Verdict::ParentMissing),
                ("c", "docs", Verdict::ParentVirtual),
                ("d", "p", Verdict::ParentKeyNotUnique),
            ],
        );
    }

    /// A composite key: sound to a composite PRIMARY KEY, not UNIQUE where
    /// only one of its columns is; its columns are read in order.
    #[test]
    fn composite_keys_are_judged_whole() {
        let db = made(
            "CREATE TABLE p (a, b, c UNIQUE, PRIMARY KEY (a, b)); \
             CREATE TABLE whole (x, y, FOREIGN KEY (x, y) REFERENCES p(a, b)); \
             CREATE TABLE part (x, y, FOREIGN KEY (x, y) REFERENCES p(a, c));",
        );
        let keys = judged(&db).unwrap().keys;
        assert_eq!(keys.len(), 2);
        assert_eq!(
            (keys[0].child.as_str(), keys[0].verdict),
            ("part", Verdict::ParentKeyNotUnique)
        );
        assert_eq!(keys[0].from, ["x", "y"]);
        assert_eq!(keys[0].to, [Some("a".to_owned()), Some("c".to_owned())]);
        assert_eq!(
            (keys[1].child.as_str(), keys[1].verdict),
            ("whole", Verdict::Sound)
        );
    }

    /// A UNIQUE index codes a key only with the parent column's own
    /// collation: SQLite's rule, asked of SQLite, never copied.
    #[test]
    fn a_unique_index_of_another_collation_is_no_parent_key() {
        assert_judged(
            "CREATE TABLE p (x TEXT, y TEXT COLLATE NOCASE); \
             CREATE UNIQUE INDEX px ON p (x COLLATE NOCASE); \
             CREATE UNIQUE INDEX py ON p (y COLLATE NOCASE); \
             CREATE TABLE a (x REFERENCES p(x)); \
             CREATE TABLE b (y REFERENCES p(y));",
            &[
                ("a", "p", Verdict::ParentKeyNotUnique),
                ("b", "p", Verdict::Sound),
            ],
        );
    }

    /// A key naming no columns refers to its parent's PRIMARY KEY: sound
    /// where there is one, not where the parent has none.
    #[test]
    fn a_key_naming_no_columns_is_the_parents_primary_key() {
        let db = made(
            "CREATE TABLE p (id INTEGER PRIMARY KEY); CREATE TABLE q (n); \
             CREATE TABLE a (p_id REFERENCES p); CREATE TABLE b (q_n REFERENCES q);",
        );
        let keys = judged(&db).unwrap().keys;
        assert_eq!(keys[0].to, [None]);
        let found: Vec<Verdict> = keys.iter().map(|k| k.verdict).collect();
        assert_eq!(found, [Verdict::Sound, Verdict::ParentKeyNotUnique]);
    }

    /// Names are SQLite's in any case, quotes and all: a parent written in
    /// another case is there, and the failure said is the one a statement
    /// writing the child fails with, so a trigger failing by the key is
    /// told as the key's.
    #[test]
    fn names_with_quotes_and_another_case_are_sqlites() {
        let db = made(
            "CREATE TABLE \"Pa\"\"rent\" (id INTEGER PRIMARY KEY, n); \
             CREATE TABLE \"Ch\"\"ild\" (a REFERENCES \"PA\"\"RENT\"(id), \
             b REFERENCES \"pa\"\"rent\"(n)); \
             CREATE TABLE \"Lo\"\"st\" (c REFERENCES \"No\"\"ne\"(id));",
        );
        let keys = judged(&db).unwrap().keys;
        let found: Vec<(&str, i64, &str, Verdict)> = { keys.iter() }
            .map(|k| (k.child.as_str(), k.id, k.parent.as_str(), k.verdict))
            .collect();
        assert_eq!(
            found,
            [
                ("Ch\"ild", 0, "pa\"rent", Verdict::ParentKeyNotUnique),
                ("Ch\"ild", 1, "PA\"RENT", Verdict::Sound),
                ("Lo\"st", 0, "No\"ne", Verdict::ParentMissing),
            ]
        );
        assert_eq!(keys[1].failure_said(), None);
        db.execute_batch("PRAGMA foreign_keys = ON").unwrap();
        let refused = |sql: &str| db.prepare(sql).unwrap_err().to_string();
        let child = refused("INSERT INTO \"ch\"\"ILD\" VALUES (1, 1)");
        let lost = refused("INSERT INTO \"Lo\"\"st\" VALUES (1)");
        assert_eq!(
            keys[0].failure_said().unwrap(),
            "foreign key mismatch - \"Ch\"\"ild\" referencing \"pa\"\"rent\""
        );
        assert!(keys[0].fails(&child), "{child}");
        assert_eq!(
            keys[2].failure_said().unwrap(),
            "no such table: main.No\"ne"
        );
        assert!(keys[2].fails(&lost), "{lost}");
        assert!(!keys[2].fails(&child) && !keys[0].fails(&lost));
    }

    /// The check of a child names the first parent it could not code; each
    /// key of it is judged alone, so a sound key to that parent is not
    /// blamed with the other (rvCB 1, 3), and the table is said once, with
    /// the parent SQLite named.
    #[test]
    fn a_mismatched_child_blames_only_its_faulty_keys() {
        let db = made(
            "CREATE TABLE p (id INTEGER PRIMARY KEY, n); \
             CREATE TABLE c (a REFERENCES p(id), b REFERENCES p(n));",
        );
        let judgement = judged(&db).unwrap();
        let found: Vec<Verdict> = judgement.keys.iter().map(|k| k.verdict).collect();
        assert_eq!(found, [Verdict::ParentKeyNotUnique, Verdict::Sound]);
        let mismatched = judgement.mismatched().unwrap();
        assert_eq!(mismatched, [("c".to_owned(), "p".to_owned())]);
        let tables: i64 =
            { db.query_row("SELECT count(*) FROM sqlite_schema", [], |r| r.get(0)) }.unwrap();
        assert_eq!(tables, 2, "the probe is rolled back");
    }

    /// A table whose key names an FTS5 table is said as SQLite's check
    /// stops, and as a virtual parent, once each.
    #[test]
    fn a_virtual_parent_is_said_once() {
        let db = made(
            "CREATE VIRTUAL TABLE docs USING fts5(body); \
             CREATE TABLE c (a REFERENCES docs(body), b REFERENCES docs(body));",
        );
        let judgement = judged(&db).unwrap();
        let one = vec![("c".to_owned(), "docs".to_owned())];
        assert_eq!(judgement.virtual_parents(), one);
        assert_eq!(judgement.mismatched().unwrap(), one);
    }
}
