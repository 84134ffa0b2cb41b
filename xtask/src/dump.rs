//! Reading SQL dumps: splitting them into statements and summarising them.
//!
//! Statements are split with SQLite's own completeness check
//! (`sqlite3_complete`), never with a home-made tokenizer: a `;` inside a
//! string, a comment or a trigger body does not end a statement, and SQLite is
//! the authority on that. Everything here is pure over a reader, so it is
//! tested on inline fixtures.

use std::collections::{BTreeMap, BTreeSet};
use std::io::BufRead;

use anyhow::{Context, Result, bail};

/// One complete SQL statement and the line it starts on (1-based).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Statement {
    pub line: usize,
    pub sql: String,
    /// Whether the statement's last line ended in CRLF.
    pub crlf: bool,
}

/// Iterates over the complete statements of a dump.
pub struct Statements<R> {
    reader: R,
    line: usize,
    buf: String,
    /// The rest of a line after a statement that ended inside it.
    carry: String,
    /// Reused for the NUL-terminated copy SQLite needs, one per `;`.
    c_text: Vec<u8>,
    done: bool,
}

impl<R: BufRead> Statements<R> {
    pub fn new(reader: R) -> Statements<R> {
        Statements {
            reader,
            line: 0,
            buf: String::new(),
            carry: String::new(),
            c_text: Vec::new(),
            done: false,
        }
    }
}

impl<R: BufRead> Iterator for Statements<R> {
    type Item = Result<Statement>;

    fn next(&mut self) -> Option<Result<Statement>> {
        if self.done {
            return None;
        }
        let mut sql = String::new();
        let mut start = 0;
        loop {
            if self.carry.is_empty() {
                self.buf.clear();
                match self.reader.read_line(&mut self.buf) {
                    Ok(0) => {
                        self.done = true;
                        if sql.trim().is_empty() || only_comments(&sql) {
                            return None;
                        }
                        return Some(Err(anyhow::anyhow!(
                            "the dump ends inside an unterminated statement starting on line {start}; \
                             the file is probably truncated"
                        )));
                    }
                    Ok(_) => {}
                    Err(e) => {
                        self.done = true;
                        return Some(Err(e).context("reading the dump"));
                    }
                }
                self.line += 1;
            } else {
                self.buf = std::mem::take(&mut self.carry);
            }
            if sql.is_empty() {
                // Blank lines and whole-line comments between statements
                // belong to no statement.
                let trimmed = self.buf.trim();
                if trimmed.is_empty() || trimmed.starts_with("--") {
                    continue;
                }
                start = self.line;
            }
            let before = sql.len();
            sql.push_str(&self.buf);
            // A statement can only end at a `;` of this line: ask SQLite at
            // each one, so two statements on one line are two statements.
            let mut search = before;
            while let Some(offset) = sql[search..].find(';') {
                let end = search + offset + 1;
                search = end;
                if !could_follow_a_statement(&sql[end..])
                    || !is_complete_in(&mut self.c_text, &sql[..end])
                {
                    continue;
                }
                let rest = sql.split_off(end);
                let rest_trimmed = rest.trim();
                if !rest_trimmed.is_empty() && !rest_trimmed.starts_with("--") {
                    self.carry = rest;
                }
                if only_comments(&sql) {
                    sql.clear();
                    break;
                }
                let crlf = self.buf.ends_with("\r\n");
                let trimmed_len = sql.trim_end().len();
                sql.truncate(trimmed_len);
                let trimmed_start = sql.len() - sql.trim_start().len();
                sql.drain(..trimmed_start);
                return Some(Ok(Statement {
                    line: start,
                    sql,
                    crlf,
                }));
            }
        }
    }
}

/// Whether `rest`, the text after a `;`, could follow the end of a
/// statement: nothing, a comment, or the keyword a statement starts with.
/// Any other `;` is inside a string or a trigger body, and asking SQLite
/// about it would only cost time (quadratic time, on a long line full of
/// semicolons in a string).
fn could_follow_a_statement(rest: &str) -> bool {
    const STARTS: &[&str] = &[
        "ALTER",
        "ANALYZE",
        "ATTACH",
        "BEGIN",
        "COMMIT",
        "CREATE",
        "DELETE",
        "DETACH",
        "DROP",
        "END",
        "EXPLAIN",
        "INSERT",
        "PRAGMA",
        "REINDEX",
        "RELEASE",
        "REPLACE",
        "ROLLBACK",
        "SAVEPOINT",
        "SELECT",
        "UPDATE",
        "VACUUM",
        "VALUES",
        "WITH",
    ];
    let rest = rest.trim_start();
    if rest.is_empty() || rest.starts_with("--") || rest.starts_with("/*") || rest.starts_with(';')
    {
        return true;
    }
    let len = rest.bytes().take_while(u8::is_ascii_alphabetic).count();
    let word = &rest[..len];
    STARTS.iter().any(|k| k.eq_ignore_ascii_case(word))
}

/// SQLite's verdict: does `sql` end with a complete statement? `sql` is
/// copied into `buf` to NUL-terminate it.
fn is_complete_in(buf: &mut Vec<u8>, sql: &str) -> bool {
    if sql.as_bytes().contains(&0) {
        // A NUL byte inside SQL text cannot be handed to SQLite; the statement
        // is reported complete so that executing it surfaces the error.
        return true;
    }
    buf.clear();
    buf.extend_from_slice(sql.as_bytes());
    buf.push(0);
    // SAFETY: `buf` is NUL-terminated, has no other NUL, and outlives the call.
    unsafe { rusqlite::ffi::sqlite3_complete(buf.as_ptr().cast()) != 0 }
}

/// True when a chunk holds nothing but comments and whitespace.
fn only_comments(sql: &str) -> bool {
    let mut rest = sql.trim_start();
    loop {
        if rest.is_empty() {
            return true;
        }
        if let Some(after) = rest.strip_prefix("--") {
            rest = after.split_once('\n').map_or("", |(_, r)| r).trim_start();
        } else if let Some(after) = rest.strip_prefix("/*") {
            rest = after.split_once("*/").map_or("", |(_, r)| r).trim_start();
        } else {
            return false;
        }
    }
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
    if let Some(quoted) = sql.strip_prefix("INSERT INTO \"")
        && let Some(end) = quoted.find('"')
        && !quoted[end + 1..].starts_with(['"', '.'])
    {
        return Some((quoted[..end].to_owned(), &quoted[end + 1..]));
    }
    let rest = strip_keyword(sql.trim_start(), "INSERT")?;
    let rest = match strip_keyword(rest, "OR") {
        Some(after_or) => {
            let (_, after) = read_identifier(after_or)?; // REPLACE, IGNORE, ...
            after
        }
        None => rest,
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
    let rest = strip_keyword(sql.trim_start(), "CREATE")?;
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
        return read_identifier(after_dot).map(|(t, _)| (kind, t));
    }
    Some((kind, name))
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

/// The table in which the app records the fingerprint of its data-encryption
/// key (see migrations/0002).
pub const KEY_TABLE: &str = "encryption_keys";
/// wrangler's migration bookkeeping table.
pub const MIGRATIONS_TABLE: &str = "d1_migrations";

/// Reads a whole dump and counts what is in it.
///
/// `schema` gives `CREATE TABLE` statements to use for the bookkeeping tables
/// when the dump has none of its own (a data-only dump).
pub fn summarize(reader: impl BufRead, schema: &BTreeMap<String, String>) -> Result<DumpSummary> {
    let mut summary = DumpSummary::default();
    let mut bookkeeping = Bookkeeping::default();
    for statement in Statements::new(reader) {
        let statement = statement?;
        summary.statements += 1;
        if let Some(table) = insert_target(&statement.sql) {
            if Bookkeeping::wants(&table) {
                bookkeeping.inserts.push(statement.sql);
            }
            *summary.rows.entry(table).or_default() += 1;
        } else if let Some((kind, name)) = created_object(&statement.sql) {
            if kind == "table" {
                if Bookkeeping::wants(&name) {
                    bookkeeping.creates.insert(name.clone(), statement.sql);
                }
                summary.rows.entry(name.clone()).or_default();
            }
            summary.created.insert((kind.to_owned(), name));
        }
    }
    bookkeeping.read_into(&mut summary, schema)?;
    Ok(summary)
}

/// The few rows the manifest reports by content, replayed into an in-memory
/// SQLite so that SQLite, not this crate, parses their values.
#[derive(Default)]
struct Bookkeeping {
    creates: BTreeMap<String, String>,
    inserts: Vec<String>,
}

impl Bookkeeping {
    fn wants(table: &str) -> bool {
        table == MIGRATIONS_TABLE || table == KEY_TABLE
    }

    fn read_into(self, summary: &mut DumpSummary, schema: &BTreeMap<String, String>) -> Result<()> {
        if self.inserts.is_empty() {
            return Ok(());
        }
        let db = rusqlite::Connection::open_in_memory()?;
        for table in [MIGRATIONS_TABLE, KEY_TABLE] {
            let create = self.creates.get(table).or_else(|| schema.get(table));
            if let Some(create) = create {
                db.execute_batch(create)
                    .with_context(|| format!("replaying the dump's CREATE TABLE {table}"))?;
            }
        }
        for insert in &self.inserts {
            db.execute_batch(insert)
                .with_context(|| format!("replaying a dump row: {}", shorten(insert)))?;
        }
        if table_exists(&db, MIGRATIONS_TABLE)? {
            let mut stmt = db.prepare("SELECT name FROM d1_migrations ORDER BY id")?;
            summary.migrations = stmt
                .query_map([], |row| row.get::<_, String>(0))?
                .collect::<rusqlite::Result<_>>()?;
        }
        if table_exists(&db, KEY_TABLE)? {
            let mut stmt = db.prepare(
                "SELECT key_id, fingerprint FROM encryption_keys \
                 WHERE retired_at IS NULL ORDER BY activated_at DESC LIMIT 1",
            )?;
            summary.encryption_key = stmt
                .query_map([], |row| {
                    Ok(KeyFingerprint {
                        key_id: row.get(0)?,
                        fingerprint: row.get(1)?,
                    })
                })?
                .next()
                .transpose()?;
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

fn shorten(sql: &str) -> String {
    let mut s: String = sql.chars().take(80).collect();
    if s.len() < sql.len() {
        s.push('…');
    }
    s
}

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

    fn split(text: &str) -> Vec<Statement> {
        Statements::new(text.as_bytes())
            .collect::<Result<Vec<_>>>()
            .unwrap()
    }

    #[test]
    fn semicolons_inside_strings_comments_and_triggers_do_not_split() {
        let dump = "PRAGMA defer_foreign_keys=TRUE;\n\
            INSERT INTO \"t\" VALUES(1,'a;b');\n\
            -- a comment; with a semicolon\n\
            INSERT INTO \"t\" VALUES(2,replace('x\\ny;','\\n',char(10)));\n\
            CREATE TRIGGER tr AFTER INSERT ON t\nBEGIN\n  SELECT 1;\n  SELECT 2;\nEND;\n\
            INSERT INTO t VALUES(3,'multi\nline;\nstring');\n";
        let stmts = split(dump);
        assert_eq!(stmts.len(), 5, "{stmts:#?}");
        assert_eq!(stmts[0].sql, "PRAGMA defer_foreign_keys=TRUE;");
        assert_eq!(stmts[1].sql, "INSERT INTO \"t\" VALUES(1,'a;b');");
        assert_eq!(stmts[2].line, 4);
        assert!(stmts[3].sql.starts_with("CREATE TRIGGER"));
        assert!(stmts[3].sql.ends_with("END;"));
        assert_eq!(stmts[3].line, 5);
        assert_eq!(
            stmts[4].sql,
            "INSERT INTO t VALUES(3,'multi\nline;\nstring');"
        );
        assert_eq!(stmts[4].line, 10);
    }

    #[test]
    fn two_statements_on_one_line_are_two_statements() {
        let stmts = split("COMMIT; INSERT INTO t VALUES(1,'a;b'); -- done\nSELECT 2;\n");
        let sql: Vec<&str> = stmts.iter().map(|s| s.sql.as_str()).collect();
        assert_eq!(
            sql,
            ["COMMIT;", "INSERT INTO t VALUES(1,'a;b');", "SELECT 2;"]
        );
        assert_eq!(stmts[1].line, 1);
        assert_eq!(stmts[2].line, 2);
    }

    #[test]
    fn a_file_without_trailing_newline_still_yields_its_last_statement() {
        let stmts = split("CREATE TABLE a(x);\nCREATE INDEX i ON a(x);");
        assert_eq!(stmts.len(), 2);
        assert_eq!(stmts[1].sql, "CREATE INDEX i ON a(x);");
    }

    #[test]
    fn a_truncated_dump_is_an_error_naming_the_line() {
        let err = Statements::new("INSERT INTO t VALUES(1);\nINSERT INTO t VALUES('cut".as_bytes())
            .collect::<Result<Vec<_>>>()
            .unwrap_err()
            .to_string();
        assert!(err.contains("line 2"), "{err}");
        assert!(err.contains("truncated"), "{err}");
    }

    #[test]
    fn trailing_comments_are_not_a_statement() {
        let stmts = split("SELECT 1;\n-- end of dump\n/* really */\n");
        assert_eq!(stmts.len(), 1);
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
        let summary = summarize(dump.as_bytes(), &BTreeMap::new()).unwrap();
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
        let summary = summarize(dump.as_bytes(), &schema).unwrap();
        assert_eq!(summary.migrations, ["0001_a.sql"]);
    }

    #[test]
    fn sqlite_database_files_are_not_dumps() {
        let err = check_looks_like_sql(b"SQLite format 3\0rest").unwrap_err();
        assert!(err.to_string().contains("sqlite3 FILE .dump"));
        check_looks_like_sql(D1_EXPORT_HEADER.as_bytes()).unwrap();
    }
}
