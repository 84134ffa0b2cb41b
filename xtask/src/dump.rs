//! Reading SQL dumps: splitting them into statements and summarising them.
//!
//! Statements are split by [`d1_sql::statements`], with SQLite's own
//! completeness check, never with a home-made tokenizer: a `;` inside a
//! string, a comment or a trigger body does not end a statement, and SQLite is
//! the authority on that. Everything here is pure over a reader, so it is
//! tested on inline fixtures.

use std::collections::{BTreeMap, BTreeSet};
use std::io::BufRead;

use anyhow::{Context, Result, bail};

use crate::app::KeyRecord;
pub use d1_sql::statements::{Statement, Statements};

/// Whether `haystack` contains `needle`, by the C library's `memmem`: this
/// runs on every statement, and the crate is built without optimisation.
pub fn contains_bytes(haystack: &[u8], needle: &[u8]) -> bool {
    // SAFETY: both pointers are valid for the lengths given.
    unsafe {
        !libc::memmem(
            haystack.as_ptr().cast(),
            haystack.len(),
            needle.as_ptr().cast(),
            needle.len(),
        )
        .is_null()
    }
}

/// A statement's text after its leading whitespace and comments: where its
/// real first keyword is. `/* x */ ATTACH` is an ATTACH.
pub fn skip_trivia(sql: &str) -> &str {
    let mut rest = sql;
    loop {
        rest = rest.trim_start();
        if let Some(after) = rest.strip_prefix("--") {
            rest = after.split_once('\n').map_or("", |(_, r)| r);
        } else if let Some(after) = rest.strip_prefix("/*") {
            rest = after.split_once("*/").map_or("", |(_, r)| r);
        } else {
            return rest;
        }
    }
}

/// A statement's first word after any comments, as written.
pub fn leading_word(sql: &str) -> &str {
    let s = skip_trivia(sql);
    let len = s
        .as_bytes()
        .iter()
        .position(|b| !b.is_ascii_alphabetic())
        .unwrap_or(s.len());
    &s[..len]
}

/// A statement's first keyword, upper-cased, after any comments.
pub fn first_keyword(sql: &str) -> String {
    leading_word(sql).to_ascii_uppercase()
}

/// Statements no dump may run, by their real kind, with the reason; `None`
/// for every other statement. The SQL gate enforces the rest.
pub fn refused_kind(sql: &str) -> Option<&'static str> {
    if sql.as_bytes().contains(&0) {
        return Some("a NUL byte inside the statement would cut it short");
    }
    // Every row of a dump comes through here.
    if sql.starts_with("INSERT INTO ") {
        return None;
    }
    let word = leading_word(sql);
    let is = |k: &str| word.eq_ignore_ascii_case(k);
    // Every row of a dump comes through here: the common word goes first.
    if is("INSERT") || is("CREATE") {
        return None;
    }
    Some(if is("ATTACH") {
        "ATTACH reaches outside the database (D1 refuses it)"
    } else if is("DETACH") {
        "DETACH is not part of a dump (D1 refuses it)"
    } else if is("VACUUM") {
        "VACUUM can write outside the database (D1 refuses it)"
    } else if ["BEGIN", "COMMIT", "END", "ROLLBACK", "SAVEPOINT", "RELEASE"]
        .iter()
        .any(|k| is(k))
    {
        "transaction control would break the all-or-nothing load (D1 refuses it)"
    } else {
        return None;
    })
}

/// The table an `INSERT` statement writes to, unquoted, or `None` when the
/// statement is not an `INSERT INTO`.
pub fn insert_target(sql: &str) -> Option<String> {
    split_insert(sql).map(|(table, _)| table)
}

/// Names a statement for an error message without its values, which are
/// customer data: `an INSERT into customers`, or its first three words.
pub fn describe(sql: &str) -> String {
    insert_target(sql)
        .map(|t| format!("an INSERT into {t}"))
        .unwrap_or_else(|| sql.split_whitespace().take(3).collect::<Vec<_>>().join(" "))
}

/// Splits `INSERT [OR x] INTO [schema.]table rest` into the table, unquoted,
/// and `rest` (the column list and `VALUES ...`).
pub fn split_insert(sql: &str) -> Option<(String, &str)> {
    // D1's exports write `INSERT INTO "table" ...`: read that form directly,
    // since every row of a dump comes through here.
    if let Some((table, rest)) = d1_sql::literal::dump_insert_table(sql) {
        return Some((table.to_owned(), rest));
    }
    let s = skip_trivia(sql);
    let rest = match strip_keyword(s, "INSERT") {
        Some(rest) => match strip_keyword(rest, "OR") {
            Some(after_or) => {
                let (_, after) = read_identifier(after_or)?; // REPLACE, IGNORE, ...
                after
            }
            None => rest,
        },
        None => strip_keyword(s, "REPLACE")?,
    };
    let rest = strip_keyword(rest, "INTO")?;
    let (name, after) = read_identifier(rest)?;
    if let Some(after_dot) = after.trim_start().strip_prefix('.') {
        // schema.table: the table is the second part.
        return read_identifier(after_dot);
    }
    Some((name, after))
}

/// What a `CREATE` statement creates: its kind (`table`, `index`, `trigger`
/// or `view`, as `sqlite_master` says) and its name, unquoted. Virtual
/// tables are not matched.
pub fn created_object(sql: &str) -> Option<(&'static str, String)> {
    created_object_and_rest(sql).map(|(kind, name, _)| (kind, name))
}

/// Whether a `CREATE TABLE` fills its table from a query (`AS SELECT`).
pub fn creates_from_select(sql: &str) -> bool {
    created_object_and_rest(sql)
        .is_some_and(|(kind, _, rest)| kind == "table" && strip_keyword(rest, "AS").is_some())
}

/// Tables a restore never loads: those D1 and workerd reserve (`_cf_*`)
/// and SQLite's statistics (`sqlite_stat1`, ...).
pub fn is_never_restored(table: &str) -> bool {
    let starts = |p: &str| {
        table
            .get(..p.len())
            .is_some_and(|h| h.eq_ignore_ascii_case(p))
    };
    starts("_cf_") || starts("sqlite_stat")
}

/// Tables whose rows a restore checks: not `sqlite_sequence`, which is
/// SQLite's bookkeeping, and not the tables never restored.
pub fn rows_are_checked(table: &str) -> bool {
    !is_never_restored(table) && !table.eq_ignore_ascii_case("sqlite_sequence")
}

fn created_object_and_rest(sql: &str) -> Option<(&'static str, String, &str)> {
    let rest = strip_keyword(skip_trivia(sql), "CREATE")?;
    let rest = strip_keyword(rest, "TEMP")
        .or_else(|| strip_keyword(rest, "TEMPORARY"))
        .or_else(|| strip_keyword(rest, "UNIQUE"))
        .unwrap_or(rest);
    let (kind, rest) = ["table", "index", "trigger", "view"]
        .into_iter()
        .find_map(|kind| Some((kind, strip_keyword(rest, kind)?)))?;
    let rest = match strip_keyword(rest, "IF") {
        Some(r) => strip_keyword(strip_keyword(r, "NOT")?, "EXISTS")?,
        None => rest,
    };
    let (name, after) = read_identifier(rest)?;
    if let Some(after_dot) = after.trim_start().strip_prefix('.') {
        return read_identifier(after_dot).map(|(t, rest)| (kind, t, rest));
    }
    Some((kind, name, after))
}

pub fn strip_keyword<'a>(text: &'a str, keyword: &str) -> Option<&'a str> {
    let text = text.trim_start();
    let head = text.get(..keyword.len())?;
    if !head.eq_ignore_ascii_case(keyword) {
        return None;
    }
    let rest = &text[keyword.len()..];
    match rest.chars().next() {
        Some(c) if c.is_alphanumeric() || c == '_' => None,
        _ => Some(rest),
    }
}

/// Reads one SQL identifier: `"quoted ""x"""`, `'quoted'`, `` `quoted` ``,
/// `[quoted]` or bare. Returns it unquoted with the remaining text.
fn read_identifier(text: &str) -> Option<(String, &str)> {
    let text = text.trim_start();
    let mut chars = text.char_indices();
    let (_, first) = chars.next()?;
    let close = match first {
        '"' => '"',
        '\'' => '\'',
        '`' => '`',
        '[' => ']',
        c if c.is_alphanumeric() || c == '_' || !c.is_ascii() => {
            let end = text
                .find(|c: char| !(c.is_alphanumeric() || c == '_' || c == '$' || !c.is_ascii()))
                .unwrap_or(text.len());
            return Some((text[..end].to_owned(), &text[end..]));
        }
        _ => return None,
    };
    let mut name = String::new();
    let body = &text[first.len_utf8()..];
    let mut iter = body.char_indices().peekable();
    while let Some((i, c)) = iter.next() {
        if c == close {
            if close != ']' && iter.peek().map(|&(_, n)| n) == Some(close) {
                name.push(c);
                iter.next();
                continue;
            }
            return Some((name, &body[i + c.len_utf8()..]));
        }
        name.push(c);
    }
    None
}

/// What a dump contains, counted from the dump itself.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct DumpSummary {
    /// Rows per table: the `INSERT` statements in the dump, by target table.
    pub rows: BTreeMap<String, u64>,
    /// Every schema object the dump creates, as (kind, name).
    pub created: BTreeSet<(String, String)>,
    pub statements: u64,
    /// Names in the dump's `d1_migrations` rows, in id order.
    pub migrations: Vec<String>,
    /// The data-encryption key in force according to the dump, if it has one.
    pub encryption_key: Option<KeyFingerprint>,
}

#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct KeyFingerprint {
    pub key_id: String,
    pub fingerprint: String,
}

/// wrangler's migration bookkeeping table.
pub const MIGRATIONS_TABLE: &str = "d1_migrations";

/// Reads a whole dump and counts what is in it.
///
/// `schema` gives `CREATE TABLE` statements to use for the bookkeeping tables
/// when the dump has none of its own (a data-only dump).
/// `key`: where the app records its encryption key, if it declares that.
pub fn summarize(
    reader: impl BufRead,
    schema: &BTreeMap<String, String>,
    key: Option<&KeyRecord>,
) -> Result<DumpSummary> {
    let mut summary = Summarizer::new(key);
    for statement in Statements::new(reader) {
        summary.statement(&statement?.sql);
    }
    summary.finish(schema)
}

/// [`summarize`], a statement at a time, for a pass over the dump that
/// does something else as well.
pub struct Summarizer {
    summary: DumpSummary,
    bookkeeping: Bookkeeping,
}

impl Summarizer {
    pub fn new(key: Option<&KeyRecord>) -> Summarizer {
        Summarizer {
            summary: DumpSummary::default(),
            bookkeeping: Bookkeeping {
                key: key.cloned(),
                ..Bookkeeping::default()
            },
        }
    }

    pub fn statement(&mut self, sql: &str) {
        let (summary, bookkeeping) = (&mut self.summary, &mut self.bookkeeping);
        summary.statements += 1;
        if let Some(table) = insert_target(sql) {
            if is_never_restored(&table) {
                return;
            }
            if bookkeeping.wants(&table) {
                bookkeeping.inserts.push(sql.to_owned());
            }
            *summary.rows.entry(table).or_default() += 1;
        } else if let Some((kind, name)) = created_object(sql) {
            if kind == "table" && !is_never_restored(&name) {
                if bookkeeping.wants(&name) {
                    bookkeeping.creates.insert(name.clone(), sql.to_owned());
                }
                summary.rows.entry(name.clone()).or_default();
            }
            summary.created.insert((kind.to_owned(), name));
        }
    }

    /// `schema`: as for [`summarize`].
    pub fn finish(self, schema: &BTreeMap<String, String>) -> Result<DumpSummary> {
        let mut summary = self.summary;
        self.bookkeeping.read_into(&mut summary, schema)?;
        Ok(summary)
    }
}

/// The few rows the manifest reports by content, replayed into an in-memory
/// SQLite so that SQLite, not this crate, parses their values.
#[derive(Default)]
struct Bookkeeping {
    creates: BTreeMap<String, String>,
    inserts: Vec<String>,
    key: Option<KeyRecord>,
}

impl Bookkeeping {
    fn wants(&self, table: &str) -> bool {
        table == MIGRATIONS_TABLE || self.key.as_ref().is_some_and(|k| k.table == table)
    }

    fn read_into(self, summary: &mut DumpSummary, schema: &BTreeMap<String, String>) -> Result<()> {
        if self.inserts.is_empty() {
            return Ok(());
        }
        // The rows come from the dump: they run under the SQL gate.
        let gate = crate::gate::Gate::memory()?;
        let db = gate.db();
        let mut known = BTreeSet::new();
        let key_table = self.key.as_ref().map(|k| k.table.as_str());
        for table in std::iter::once(MIGRATIONS_TABLE).chain(key_table) {
            let create = self
                .creates
                .get(table)
                .or_else(|| schema.get(table))
                .map(String::as_str)
                // A data-only export has no CREATE TABLE for wrangler's own
                // table, whose shape wrangler fixes.
                .or((table == MIGRATIONS_TABLE).then_some(D1_MIGRATIONS_DDL));
            if let Some(create) = create {
                gate.run_checked(create)
                    .with_context(|| format!("replaying the dump's CREATE TABLE {table}"))?;
                known.insert(table);
            }
        }
        for (n, insert) in self.inserts.iter().enumerate() {
            let table = insert_target(insert).unwrap_or_default();
            if !known.contains(table.as_str()) {
                // Rows of a table whose shape nothing tells: not reported.
                continue;
            }
            gate.run_checked(insert).with_context(|| {
                format!(
                    "replaying the dump's row {} of {table} (its values are not shown)",
                    n + 1
                )
            })?;
        }
        if table_exists(db, MIGRATIONS_TABLE)? {
            let mut stmt = db.prepare("SELECT name FROM d1_migrations ORDER BY id")?;
            summary.migrations = stmt
                .query_map([], |row| row.get::<_, String>(0))?
                .collect::<rusqlite::Result<_>>()?;
        }
        if let Some(key) = &self.key
            && table_exists(db, &key.table)?
        {
            // A table of another shape than declared records no key.
            summary.encryption_key = db
                .query_row(&key.select(), [], |row| {
                    Ok(KeyFingerprint {
                        key_id: row.get(0)?,
                        fingerprint: row.get(1)?,
                    })
                })
                .ok();
        }
        Ok(())
    }
}

fn table_exists(db: &rusqlite::Connection, table: &str) -> Result<bool> {
    let n: i64 = db.query_row(
        "SELECT count(*) FROM sqlite_master WHERE type = 'table' AND name = ?1",
        [table],
        |r| r.get(0),
    )?;
    Ok(n > 0)
}

/// `d1_migrations` as wrangler creates it.
const D1_MIGRATIONS_DDL: &str = "CREATE TABLE d1_migrations(id INTEGER PRIMARY KEY \
     AUTOINCREMENT, name TEXT UNIQUE, applied_at TIMESTAMP DEFAULT CURRENT_TIMESTAMP NOT NULL);";

/// The first line a `wrangler d1 export` writes.
pub const D1_EXPORT_HEADER: &str = "PRAGMA defer_foreign_keys=TRUE;";

/// Refuses input that is plainly not a SQL dump, before anything reads it as one.
pub fn check_looks_like_sql(head: &[u8]) -> Result<()> {
    if head.starts_with(b"SQLite format 3\0") {
        bail!(
            "this is a SQLite database file, not a SQL dump; \
             turn it into SQL with `sqlite3 FILE .dump` first"
        );
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_real_kind_is_read_past_comments() {
        assert_eq!(first_keyword("/* x */ ATTACH 'o.db' AS o"), "ATTACH");
        assert_eq!(first_keyword("-- c\n  /**/vacuum into 'x'"), "VACUUM");
        assert!(refused_kind("/* x */ COMMIT").is_some());
        assert!(refused_kind("INSERT INTO t VALUES(1)\0,(2)").is_some());
        assert!(refused_kind("INSERT INTO t VALUES(1)").is_none());
        assert_eq!(
            split_insert("/* x */ REPLACE INTO \"_cf_METADATA\" VALUES(1)").map(|(t, _)| t),
            Some("_cf_METADATA".to_owned())
        );
        assert_eq!(
            split_insert("INSERT OR REPLACE INTO main.t VALUES(1)").map(|(t, _)| t),
            Some("t".to_owned())
        );
    }

    #[test]
    fn insert_targets_in_every_quoting_style() {
        assert_eq!(
            insert_target("INSERT INTO \"t\" VALUES(1);").as_deref(),
            Some("t")
        );
        assert_eq!(
            insert_target("INSERT INTO \"we\"\"ird\" (\"a\") VALUES(1);").as_deref(),
            Some("we\"ird")
        );
        assert_eq!(
            insert_target("insert into plain VALUES(1);").as_deref(),
            Some("plain")
        );
        assert_eq!(
            insert_target("INSERT INTO [br] VALUES(1);").as_deref(),
            Some("br")
        );
        assert_eq!(
            insert_target("INSERT INTO `bt` VALUES(1);").as_deref(),
            Some("bt")
        );
        assert_eq!(
            insert_target("INSERT OR REPLACE INTO main.\"x\" VALUES(1);").as_deref(),
            Some("x")
        );
        assert_eq!(insert_target("INSERTINTO t VALUES(1);"), None);
        assert_eq!(insert_target("CREATE TABLE t(a);"), None);
        assert_eq!(insert_target("DELETE FROM sqlite_sequence;"), None);
    }

    #[test]
    fn created_objects_and_their_kinds() {
        assert_eq!(
            created_object("CREATE TABLE a(x)"),
            Some(("table", "a".to_owned()))
        );
        assert_eq!(
            created_object("CREATE TABLE IF NOT EXISTS 'notes_fts_content'(id)"),
            Some(("table", "notes_fts_content".to_owned()))
        );
        assert_eq!(
            created_object("CREATE UNIQUE INDEX IF NOT EXISTS \"u i\" ON a(x)"),
            Some(("index", "u i".to_owned()))
        );
        assert_eq!(
            created_object("create trigger t1 after insert on a begin select 1; end"),
            Some(("trigger", "t1".to_owned()))
        );
        assert_eq!(
            created_object("CREATE VIEW v AS SELECT 1"),
            Some(("view", "v".to_owned()))
        );
        assert_eq!(created_object("CREATE VIRTUAL TABLE f USING fts5(x)"), None);
    }

    #[test]
    fn summary_counts_rows_and_reads_migrations_and_key() {
        let dump = "PRAGMA defer_foreign_keys=TRUE;\n\
            CREATE TABLE d1_migrations(\n id INTEGER PRIMARY KEY AUTOINCREMENT,\n name TEXT UNIQUE,\n applied_at TIMESTAMP DEFAULT CURRENT_TIMESTAMP NOT NULL\n);\n\
            INSERT INTO \"d1_migrations\" VALUES(2,'0002_b.sql','2026-11-23 22:37:19');\n\
            INSERT INTO \"d1_migrations\" VALUES(1,'0001_a.sql','2026-11-23 22:37:19');\n\
            CREATE TABLE empty(x);\n\
            CREATE TABLE encryption_keys (key_id TEXT PRIMARY KEY, fingerprint TEXT, algorithm TEXT, activated_at TEXT, retired_at TEXT);\n\
            INSERT INTO \"encryption_keys\" VALUES('k1','sha256:old','AES-256-GCM','2026-01-01','2026-06-01');\n\
            INSERT INTO \"encryption_keys\" VALUES('k2','sha256:new','AES-256-GCM','2026-06-01',NULL);\n\
            DELETE FROM sqlite_sequence;\n\
            INSERT INTO \"sqlite_sequence\" VALUES('d1_migrations',2);\n";
        let summary = summarize(
            dump.as_bytes(),
            &BTreeMap::new(),
            crate::app::qbtime().encryption_key.as_ref(),
        )
        .unwrap();
        assert_eq!(summary.rows["d1_migrations"], 2);
        assert_eq!(summary.rows["empty"], 0);
        assert_eq!(summary.rows["encryption_keys"], 2);
        assert_eq!(summary.rows["sqlite_sequence"], 1);
        assert_eq!(summary.migrations, ["0001_a.sql", "0002_b.sql"]);
        assert_eq!(
            summary.encryption_key,
            Some(KeyFingerprint {
                key_id: "k2".into(),
                fingerprint: "sha256:new".into()
            })
        );
        assert_eq!(summary.statements, 10);
    }

    #[test]
    fn data_only_dumps_borrow_the_live_schema_for_bookkeeping() {
        let dump = "PRAGMA defer_foreign_keys=TRUE;\n\
            INSERT INTO \"d1_migrations\" (\"id\",\"name\",\"applied_at\") VALUES(1,'0001_a.sql','x');\n";
        let schema = BTreeMap::from([(
            "d1_migrations".to_owned(),
            "CREATE TABLE d1_migrations(id INTEGER PRIMARY KEY, name TEXT, applied_at TEXT)"
                .to_owned(),
        )]);
        let summary = summarize(
            dump.as_bytes(),
            &schema,
            crate::app::qbtime().encryption_key.as_ref(),
        )
        .unwrap();
        assert_eq!(summary.migrations, ["0001_a.sql"]);
    }

    #[test]
    fn sqlite_database_files_are_not_dumps() {
        let err = check_looks_like_sql(b"SQLite format 3\0rest").unwrap_err();
        assert!(err.to_string().contains("sqlite3 FILE .dump"));
        check_looks_like_sql(D1_EXPORT_HEADER.as_bytes()).unwrap();
    }
}
