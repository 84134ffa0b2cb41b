//! The rows a migration changes in tables it never names, through a foreign
//! key's `ON DELETE` or `ON UPDATE` action.
//!
//! D1 enforces foreign keys during a migration, whatever the migration's
//! own `PRAGMA foreign_keys=OFF` says, so a `DROP TABLE` deletes the table's
//! rows first and every action of the keys that reference it runs: Prisma's
//! redefinition of a table (`CREATE TABLE "new_User" …; DROP TABLE "User";
//! ALTER TABLE "new_User" RENAME TO "User"`) sets `Post.authorId` to NULL in
//! every post (`ON DELETE SET NULL`), or deletes them (`CASCADE`). A row
//! count after the migration sees the second, never the first.
//!
//! SQLite codes those actions when it prepares the statement, and tells
//! each write to its authorizer. The pending migrations run in memory, on
//! the schema the applied ones make and with foreign keys on, one statement
//! at a time, and the writes each statement was coded to make to another
//! table, outside any trigger, are its actions' ([`side_writes`]).

use std::collections::BTreeMap;

use anyhow::{Context, Result};
use rusqlite::fallible_iterator::FallibleIterator as _;

use crate::gate::{Gate, Write, WriteKind};

/// A statement of a migration whose foreign key actions change another
/// table's rows.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SideWrite {
    pub migration: String,
    /// What the statement is: `DROP TABLE`, `DELETE`, `UPDATE` or
    /// `INSERT` (one that replaces a row).
    pub statement: &'static str,
    /// The table the statement names.
    pub target: String,
    /// The table an action changes.
    pub table: String,
    /// The action deletes rows of `table`.
    pub deletes: bool,
    /// The columns of `table` an action sets (`SET NULL`, `SET DEFAULT`,
    /// `ON UPDATE CASCADE`).
    pub sets: Vec<String>,
}

impl SideWrite {
    /// What the plan says of it, with names only (never a value).
    pub fn describe(&self) -> String {
        let table = crate::names::shown(&self.table);
        let mut does = Vec::new();
        if self.deletes {
            does.push(format!("deletes rows of {table}"));
        }
        if !self.sets.is_empty() {
            let columns: Vec<String> = self
                .sets
                .iter()
                .map(|c| format!("{table}.{}", crate::names::shown(c)))
                .collect();
            does.push(format!("sets {}", columns.join(", ")));
        }
        format!(
            "{}: {} {} also {} through a foreign key's action",
            crate::names::shown(&self.migration),
            self.statement,
            crate::names::shown(&self.target),
            does.join(" and ")
        )
    }
}

/// The [`SideWrite`]s of `pending` (name, text), run in order on `gate`,
/// which holds the schema the applied migrations make. Each migration runs
/// in a transaction of its own, with foreign keys on and deferred as D1
/// runs it. `Err` names the migration that does not run here.
pub fn side_writes(gate: &Gate, pending: &[(String, String)]) -> Result<Vec<SideWrite>> {
    let db = gate.db();
    db.execute_batch("PRAGMA foreign_keys = ON")?;
    gate.watch_writes();
    let mut found = Vec::new();
    for (name, sql) in pending {
        db.execute_batch("BEGIN; PRAGMA defer_foreign_keys = ON")?;
        let ran = run_watched(gate, sql, |writes| {
            found.extend(side_writes_of(name, &writes));
        });
        match ran {
            Ok(()) => db.execute_batch("COMMIT")?,
            Err(e) => {
                let _ = db.execute_batch("ROLLBACK");
                return Err(e.context(format!("the migration {name} does not run in SQLite here")));
            }
        }
    }
    Ok(found)
}

/// Runs `sql` statement by statement, giving `seen` the writes each was
/// coded to make.
fn run_watched(gate: &Gate, sql: &str, mut seen: impl FnMut(Vec<Write>)) -> Result<()> {
    let mut batch = rusqlite::Batch::new(gate.db(), sql);
    loop {
        gate.take_writes();
        let Some(mut stmt) = batch.next().context("a statement fails")? else {
            return Ok(());
        };
        seen(gate.take_writes());
        let mut rows = stmt.raw_query();
        while rows.next().context("a statement fails")?.is_some() {}
    }
}

/// Of the writes one statement was coded to make, those of its foreign
/// keys' actions: the first write outside a trigger is the statement's own
/// (its table is the target); a later one outside a trigger, to another
/// table, is an action's. SQLite's own tables are left out.
pub fn side_writes_of(migration: &str, writes: &[Write]) -> Vec<SideWrite> {
    let mut outside = writes
        .iter()
        .filter(|w| w.inner.is_none() && !w.table.to_ascii_lowercase().starts_with("sqlite_"));
    let Some(own) = outside.next() else {
        return Vec::new();
    };
    let statement = match own.kind {
        WriteKind::DropTable => "DROP TABLE",
        WriteKind::Delete => "DELETE from",
        WriteKind::Update => "UPDATE of",
        WriteKind::Insert => "INSERT into",
    };
    let mut by_table: BTreeMap<String, SideWrite> = BTreeMap::new();
    for write in outside.filter(|w| !w.table.eq_ignore_ascii_case(&own.table)) {
        let side = by_table
            .entry(write.table.clone())
            .or_insert_with(|| SideWrite {
                migration: migration.to_owned(),
                statement,
                target: own.table.clone(),
                table: write.table.clone(),
                deletes: false,
                sets: Vec::new(),
            });
        match (write.kind, &write.column) {
            (WriteKind::Delete, _) => side.deletes = true,
            (WriteKind::Update, Some(column)) if !side.sets.contains(column) => {
                side.sets.push(column.clone())
            }
            _ => {}
        }
    }
    by_table
        .into_values()
        .filter(|s| s.deletes || !s.sets.is_empty())
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    const SCHEMA: &str = r#"
        CREATE TABLE "User" (id INTEGER PRIMARY KEY, name TEXT);
        CREATE TABLE "Post" (id INTEGER PRIMARY KEY,
            authorId INTEGER REFERENCES "User"(id) ON DELETE SET NULL ON UPDATE CASCADE);
        CREATE TABLE "Comment" (id INTEGER PRIMARY KEY,
            postId INTEGER NOT NULL REFERENCES "Post"(id) ON DELETE CASCADE);
        CREATE TABLE "Tag" (id INTEGER PRIMARY KEY, userId INTEGER REFERENCES "User"(id));
        CREATE TABLE "Log" (id INTEGER PRIMARY KEY, what TEXT);
        CREATE TRIGGER post_gone AFTER DELETE ON "Post" BEGIN
            INSERT INTO "Log"(what) VALUES ('post gone'); END;
    "#;

    fn gate() -> Gate {
        let gate = Gate::memory().unwrap();
        gate.db().execute_batch(SCHEMA).unwrap();
        gate
    }

    fn migration(sql: &str) -> Vec<(String, String)> {
        vec![("0002_change.sql".to_owned(), sql.to_owned())]
    }

    /// Prisma's `RedefineTables`, as `prisma migrate diff` writes it.
    const PRISMA_REDEFINES_USER: &str = r#"
        PRAGMA defer_foreign_keys=ON;
        PRAGMA foreign_keys=OFF;
        CREATE TABLE "new_User" (id INTEGER PRIMARY KEY, name TEXT NOT NULL DEFAULT '');
        INSERT INTO "new_User" (id, name) SELECT id, name FROM "User";
        DROP TABLE "User";
        ALTER TABLE "new_User" RENAME TO "User";
        PRAGMA foreign_keys=ON;
        PRAGMA defer_foreign_keys=OFF;
    "#;

    #[test]
    fn a_prisma_redefinition_of_a_parent_table_sets_its_childrens_keys() {
        let found = side_writes(&gate(), &migration(PRISMA_REDEFINES_USER)).unwrap();
        assert_eq!(found.len(), 1, "{found:?}");
        assert_eq!(
            found[0].describe(),
            "0002_change.sql: DROP TABLE User also sets Post.authorId through a foreign key's \
             action"
        );
    }

    #[test]
    fn dropping_a_table_others_reference_with_cascade_deletes_their_rows() {
        let found = side_writes(&gate(), &migration(r#"DROP TABLE "Post";"#)).unwrap();
        assert_eq!(found.len(), 1, "{found:?}");
        assert_eq!(found[0].table, "Comment");
        assert!(found[0].deletes && found[0].sets.is_empty());
    }

    #[test]
    fn a_key_without_an_action_a_trigger_and_a_table_of_its_own_are_no_side_write() {
        // Tag's key has no action; Post's trigger writes Log as the app
        // means it to; a table referenced by none has nothing to change.
        let sql = r#"
            DROP TABLE "Tag"; DROP TABLE "Log"; CREATE TABLE "Log"(id INTEGER PRIMARY KEY);
            DELETE FROM "Comment"; UPDATE "User" SET name = 'x';
            INSERT INTO "User"(id, name) VALUES (1, 'a');
        "#;
        assert_eq!(side_writes(&gate(), &migration(sql)).unwrap(), vec![]);
    }

    #[test]
    fn a_delete_an_update_of_a_key_and_a_replace_are_told_as_well() {
        let sql = r#"
            DELETE FROM "User" WHERE id > 10;
            UPDATE "User" SET id = id + 1000;
            INSERT OR REPLACE INTO "Post"(id) VALUES (1);
        "#;
        let found = side_writes(&gate(), &migration(sql)).unwrap();
        let said: Vec<(&str, &str, &str)> = found
            .iter()
            .map(|s| (s.statement, s.target.as_str(), s.table.as_str()))
            .collect();
        assert_eq!(
            said,
            [
                ("DELETE from", "User", "Post"),
                ("UPDATE of", "User", "Post"),
                ("INSERT into", "Post", "Comment"),
            ]
        );
    }

    #[test]
    fn migrations_run_in_order_on_the_schema_the_ones_before_made() {
        let pending = vec![
            (
                "0002_a.sql".to_owned(),
                r#"CREATE TABLE "Like" (id INTEGER PRIMARY KEY,
                    postId INTEGER REFERENCES "Post"(id) ON DELETE CASCADE);"#
                    .to_owned(),
            ),
            ("0003_b.sql".to_owned(), r#"DELETE FROM "Post";"#.to_owned()),
        ];
        let found = side_writes(&gate(), &pending).unwrap();
        let tables: Vec<(&str, &str)> = found
            .iter()
            .map(|s| (s.migration.as_str(), s.table.as_str()))
            .collect();
        assert_eq!(tables, [("0003_b.sql", "Comment"), ("0003_b.sql", "Like")]);
    }

    #[test]
    fn a_migration_that_does_not_run_is_named() {
        let e = side_writes(&gate(), &migration("DROP TABLE nowhere;")).unwrap_err();
        assert!(
            format!("{e:#}").contains("the migration 0002_change.sql does not run"),
            "{e:#}"
        );
    }

    /// rvAH: a seed that refers to a row the app made (not a migration)
    /// runs in D1 but fails here when the deferred keys are checked at the
    /// end of the migration. The plan says `CHANGES  not known:
    /// FOREIGN KEY constraint failed`, naming no migration, where the
    /// function's doc and the README promise the one that does not run.
    #[test]
    fn a_migration_whose_deferred_keys_fail_here_is_named() {
        let sql = r#"INSERT INTO "Post"(id, authorId) VALUES (1, 42);"#;
        let e = side_writes(&gate(), &migration(sql)).unwrap_err();
        assert!(
            format!("{e:#}").contains("0002_change.sql"),
            "the plan does not say which migration: {e:#}"
        );
    }

    /// rvAH: a statement that does not compile is told with rusqlite's
    /// `… in <the rest of the migration> at offset N`: the plan prints the
    /// migration's values (a seeded key), line breaks and all, where the
    /// README promises "never a value" ([`crate::gate::without_values`]
    /// is what every other road uses).
    #[test]
    fn a_migration_that_does_not_compile_is_told_without_its_values() {
        let sql = "INSERT INTO \"User\" VALUES (1, 'sk_live_51Hrv4HSecret')\n\
                   INSERT INTO \"User\" VALUES (2, 'second');\n";
        let e = format!("{:#}", side_writes(&gate(), &migration(sql)).unwrap_err());
        assert!(e.contains("0002_change.sql"), "{e}");
        assert!(
            !e.contains("sk_live_51Hrv4HSecret") && !e.contains("second") && !e.contains('\n'),
            "the plan quotes the migration's values: {e:?}"
        );
    }

    /// rvAH: the pending migrations run in memory with no bound on time: a
    /// recursive query that never ends (D1 stops it after 30 seconds, and
    /// the migration fails there) holds `migrate --dry-run` and `deploy`
    /// for ever, before any plan is printed. A dump's statement on the same
    /// gate is stopped after [`crate::gate::STATEMENT_SECONDS`].
    #[test]
    fn a_migration_that_runs_for_ever_is_stopped() {
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            let sql = "WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM c) \
                       SELECT count(*) FROM c;";
            let ran = side_writes(&gate(), &migration(sql)).map_err(|e| format!("{e:#}"));
            let _ = tx.send(ran);
        });
        let limit = std::time::Duration::from_secs(crate::gate::STATEMENT_SECONDS + 30);
        match rx.recv_timeout(limit) {
            Ok(ran) => {
                let e = ran.unwrap_err();
                assert!(e.contains("0002_change.sql"), "{e}");
            }
            Err(_) => panic!(
                "side_writes still runs a recursive query after {} seconds",
                limit.as_secs()
            ),
        }
    }
}
