//! What an external-content FTS5 table reads of its content table, and
//! whether that is there.
//!
//! An FTS5 table made with `content='notes', content_rowid='id'` keeps
//! only its index: every search reads the rows it finds from `notes`, and
//! its `'rebuild'` reads all of them, with SQL FTS5 writes itself
//! (`SELECT T.id, T.body FROM 'main'.'notes' T`): the `content_rowid`
//! column and every column it declares, UNINDEXED or not. Nothing checks
//! that SQL when `notes` changes. `ALTER TABLE notes RENAME COLUMN body TO
//! text` (or a `DROP COLUMN`, or a rename or drop of `notes` itself)
//! applies in D1, and from then on every search fails (`no such column:
//! T.body`), and so does the rebuild of the index in every backup's
//! verification and restore (rvCJ 1). [`unreadable`] finds such tables in
//! a database's schema, as SQLite prepares what FTS5 would read.

use crate::catalog::{VirtualContent, VirtualTable};
use crate::names::shown_name;

/// An external-content FTS5 table that cannot read its content table.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Unreadable {
    /// The FTS5 table.
    pub table: String,
    /// The table (or view) its `content=` names.
    pub content: String,
    /// The columns it reads that `content` lacks (its `content_rowid`
    /// first); empty when `content` itself is not there.
    pub missing: Vec<String>,
    /// SQLite's reason, without values, as D1 gives it to a search
    /// (`no such column: T.body`, `no such table: main.notes`).
    pub why: String,
}

impl Unreadable {
    /// What it reads that is not there: `column body of notes`, or
    /// `notes, which is not there`.
    pub fn reads(&self) -> String {
        let content = shown_name(&self.content);
        if self.missing.is_empty() {
            return format!("{content}, which is not there (renamed or dropped)");
        }
        let columns: Vec<String> = { self.missing.iter() }
            .map(|c| shown_name(c).into_owned())
            .collect();
        let kind = match columns.len() {
            1 => "column",
            _ => "columns",
        };
        format!("{kind} {} of {content}", columns.join(", "))
    }

    /// The fault, said as a sentence's start: `notes_fts reads column body
    /// of notes, which notes lacks`.
    pub fn said(&self) -> String {
        let table = shown_name(&self.table);
        match self.missing.is_empty() {
            true => format!("{table} reads {}", self.reads()),
            false => format!(
                "{table} reads {}, which {} lacks",
                self.reads(),
                shown_name(&self.content)
            ),
        }
    }

    /// How a migration repairs it: the FTS5 table made again, reading
    /// what its content table has, and its index rebuilt.
    pub fn fix(&self) -> String {
        let table = shown_name(&self.table);
        format!(
            "drop {table} and create it again, reading what its content table has then \
             (`content=`, `content_rowid=` and its columns as that table names them), then \
             rebuild its index: `INSERT INTO {table}({table}) VALUES('rebuild')`"
        )
    }
}

/// Every external-content FTS5 table of `db`'s main schema that cannot
/// read its content table. What cannot be read here is no fault.
pub fn unreadable(db: &rusqlite::Connection) -> Vec<Unreadable> {
    let Ok(mut tables) = db.prepare(
        "SELECT name, sql FROM main.sqlite_schema WHERE type = 'table' AND sql IS NOT NULL",
    ) else {
        return Vec::new();
    };
    let Ok(rows) = tables.query_map([], |r| Ok((r.get::<_, String>(0)?, r.get::<_, String>(1)?)))
    else {
        return Vec::new();
    };
    { rows.flatten() }
        .filter_map(|(name, sql)| judged(db, &name, &sql))
        .collect()
}

/// The FTS5 table `name` of `db` (in any case), if it is one that cannot
/// read its content table, named as the schema spells it.
pub fn unreadable_table(db: &rusqlite::Connection, name: &str) -> Option<Unreadable> {
    let (name, sql): (String, String) = db
        .query_row(
            "SELECT name, sql FROM main.sqlite_schema WHERE type = 'table' AND name = ?1 \
             COLLATE NOCASE",
            [name],
            |r| Ok((r.get(0)?, r.get(1)?)),
        )
        .ok()?;
    judged(db, &name, &sql)
}

/// Whether the FTS5 table `name`, made with `sql`, reads what `db` has:
/// the columns FTS5 reads are prepared as FTS5 reads them.
fn judged(db: &rusqlite::Connection, name: &str, sql: &str) -> Option<Unreadable> {
    let vt = VirtualTable::from_sql(name, sql)?;
    if !vt.module.eq_ignore_ascii_case("fts5") {
        return None;
    }
    let VirtualContent::External { table: content } = &vt.content else {
        return None;
    };
    let args = crate::catalog::module_arguments(&vt.sql);
    let rowid = crate::catalog::fts_option(&args, "content_rowid").unwrap_or("rowid".to_owned());
    let columns: Vec<String> = std::iter::once(rowid)
        .chain(
            args.iter()
                .filter_map(|a| crate::repair::fts5_column_name(a)),
        )
        .collect();
    let from = format!("FROM main.{} AS T", crate::statement::quote_ident(content));
    let read = |columns: &[String]| {
        let list: Vec<String> = { columns.iter() }
            .map(|c| format!("T.{}", crate::statement::quote_ident(c)))
            .collect();
        db.prepare(&format!("SELECT {} {from}", list.join(", ")))
            .err()
    };
    let failed = read(&columns)?;
    let there = db.prepare(&format!("SELECT 1 {from}")).is_ok();
    let missing: Vec<String> = { columns.iter() }
        .filter(|c| there && read(std::slice::from_ref(*c)).is_some())
        .cloned()
        .collect();
    // SQLite's words, with the names (never values) it gives.
    let why = match missing.first() {
        _ if !there => format!("no such table: main.{}", shown_name(content)),
        Some(column) => format!("no such column: T.{}", shown_name(column)),
        None => crate::gate::without_values(&failed),
    };
    Some(Unreadable {
        table: name.to_owned(),
        content: content.clone(),
        missing,
        why,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn db(schema: &str) -> rusqlite::Connection {
        let db = rusqlite::Connection::open_in_memory().unwrap();
        db.execute_batch(schema).unwrap();
        db
    }

    /// What each external-content FTS5 table reads is judged as FTS5 reads
    /// it: the rowid column and every column, UNINDEXED ones too; an FTS5
    /// table of its own content, a contentless one, or one whose content
    /// table has all it reads is sound.
    #[test]
    fn an_fts5_table_is_unreadable_when_its_content_lacks_what_it_reads() {
        let db = db(
            "CREATE TABLE notes (id INTEGER PRIMARY KEY, text TEXT, tag TEXT);\n\
             CREATE VIRTUAL TABLE notes_fts USING fts5(body, tag UNINDEXED, content='notes', \
             content_rowid='id');\n\
             CREATE VIRTUAL TABLE tags_fts USING fts5(tag, content='notes', content_rowid='id');\n\
             CREATE VIRTUAL TABLE gone_fts USING fts5(x, content='gone');\n\
             CREATE VIRTUAL TABLE own USING fts5(x);\n\
             CREATE VIRTUAL TABLE bare USING fts5(x, content='');",
        );
        let found = unreadable(&db);
        assert_eq!(found.len(), 2, "{found:?}");
        assert_eq!(
            found[0].said(),
            "notes_fts reads column body of notes, which notes lacks"
        );
        assert_eq!(found[0].why, "no such column: T.body");
        assert_eq!(
            found[1].said(),
            "gone_fts reads gone, which is not there (renamed or dropped)"
        );
        assert_eq!(found[1].why, "no such table: main.gone");
        assert_eq!(unreadable_table(&db, "NOTES_FTS"), Some(found[0].clone()));
        assert_eq!(unreadable_table(&db, "tags_fts"), None);
        assert!(
            found[0]
                .fix()
                .ends_with("`INSERT INTO notes_fts(notes_fts) VALUES('rebuild')`")
        );
    }
}
