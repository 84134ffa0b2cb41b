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

use crate::app::KeyRecord;

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
    /// The line being read, and how much of it is consumed.
    buf: String,
    pos: usize,
    /// Reused for the NUL-terminated copy SQLite needs.
    c_text: Vec<u8>,
    done: bool,
}

impl<R: BufRead> Statements<R> {
    pub fn new(reader: R) -> Statements<R> {
        Statements {
            reader,
            line: 0,
            buf: String::new(),
            pos: 0,
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
        let mut finder = EndFinder::Ask { asks: 0 };
        loop {
            if self.pos >= self.buf.len() {
                self.buf.clear();
                self.pos = 0;
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
            }
            let chunk = &self.buf[self.pos..];
            if sql.is_empty() {
                // Blank lines and whole-line comments between statements
                // belong to no statement.
                let trimmed = chunk.trim();
                if trimmed.is_empty() || trimmed.starts_with("--") {
                    self.pos = self.buf.len();
                    continue;
                }
                start = self.line;
            }
            let Some(end) = finder.find(&mut self.c_text, &sql, chunk) else {
                sql.push_str(chunk);
                self.pos = self.buf.len();
                continue;
            };
            sql.push_str(&chunk[..end]);
            self.pos += end;
            let rest = self.buf[self.pos..].trim();
            if rest.is_empty() || rest.starts_with("--") {
                self.pos = self.buf.len();
            }
            if only_comments(&sql) {
                sql.clear();
                finder = EndFinder::Ask { asks: 0 };
                continue;
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

/// How many `;` of one statement are checked with `sqlite3_complete` (in C,
/// fast, but over the whole statement each time) before the incremental
/// scanner takes over: a statement's end is found in time linear in its
/// length, however many `;` its strings hold.
const ASKS_PER_STATEMENT: u32 = 8;

/// Finds where the current statement ends.
enum EndFinder {
    /// Asks SQLite at each `;` that could end a statement.
    Ask { asks: u32 },
    /// SQLite's state machine, run over each byte once.
    Scan(Completeness),
}

impl EndFinder {
    /// The offset just past the `;` in `chunk` that completes the statement
    /// whose earlier text is `before`.
    fn find(&mut self, c_text: &mut Vec<u8>, before: &str, chunk: &str) -> Option<usize> {
        if let EndFinder::Ask { asks } = self {
            let mut search = 0;
            loop {
                let offset = chunk[search..].find(';')?;
                let end = search + offset + 1;
                search = end;
                if !could_follow_a_statement(&chunk[end..]) {
                    continue;
                }
                if *asks < ASKS_PER_STATEMENT {
                    *asks += 1;
                    if is_complete_in(c_text, before, &chunk[..end]) {
                        return Some(end);
                    }
                    continue;
                }
                let mut scan = Completeness::default();
                let mut rest = before;
                while let Some(end) = scan.feed(rest) {
                    rest = &rest[end..];
                }
                *self = EndFinder::Scan(scan);
                break;
            }
        }
        match self {
            EndFinder::Scan(scan) => scan.feed(chunk),
            EndFinder::Ask { .. } => None,
        }
    }
}

/// Whether `rest`, the text after a `;`, could follow the end of a
/// statement: nothing, a comment, or the keyword a statement starts with.
/// Any other `;` is inside a string or a trigger body, and asking SQLite
/// about it would only cost time.
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

/// SQLite's verdict: does `before` + `part` end with a complete statement?
/// The text is copied into `buf` to NUL-terminate it.
fn is_complete_in(buf: &mut Vec<u8>, before: &str, part: &str) -> bool {
    if before.as_bytes().contains(&0) || part.as_bytes().contains(&0) {
        // A NUL byte cannot be handed to SQLite; the statement is reported
        // complete, and the SQL gate refuses it.
        return true;
    }
    buf.clear();
    buf.extend_from_slice(before.as_bytes());
    buf.extend_from_slice(part.as_bytes());
    buf.push(0);
    // SAFETY: `buf` is NUL-terminated, has no other NUL, and outlives the call.
    unsafe { rusqlite::ffi::sqlite3_complete(buf.as_ptr().cast()) != 0 }
}

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

/// SQLite's `sqlite3_complete`, run incrementally: fed a statement's text
/// piece by piece, it finds the `;` that completes the statement, in time
/// linear in the text (calling `sqlite3_complete` on every candidate prefix
/// is quadratic on a long line). `tests::agrees_with_sqlite3_complete`
/// holds it to SQLite's own answer.
#[derive(Debug, Default)]
struct Completeness {
    /// The state of complete.c's transition table.
    state: u8,
    within: Within,
}

#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
enum Within {
    #[default]
    Code,
    /// Inside a string or quoted identifier, until this byte.
    Quote(char),
    /// Inside `/* */`; whether the last byte seen was `*`.
    Block { star: bool },
    /// Inside `--`, until the end of the line.
    Line,
}

#[derive(Clone, Copy)]
enum Token {
    Semi = 0,
    Ws,
    Other,
    Explain,
    Create,
    Temp,
    Trigger,
    End,
}

/// complete.c's transition table: `TRANS[state][token]`.
const TRANS: [[u8; 8]; 8] = [
    [1, 0, 2, 3, 4, 2, 2, 2],
    [1, 1, 2, 3, 4, 2, 2, 2],
    [1, 2, 2, 2, 2, 2, 2, 2],
    [1, 3, 3, 2, 4, 2, 2, 2],
    [1, 4, 2, 2, 2, 4, 5, 2],
    [6, 5, 5, 5, 5, 5, 5, 5],
    [6, 6, 5, 5, 5, 5, 5, 7],
    [1, 7, 5, 5, 5, 5, 5, 5],
];

fn is_id_byte(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b == b'_' || b == b'$' || b >= 0x80
}

impl Completeness {
    fn step(&mut self, token: Token) {
        self.state = TRANS[self.state as usize][token as usize];
    }

    /// Reads `text`; returns the offset just past the `;` that completes the
    /// statement, if `text` holds it.
    fn feed(&mut self, text: &str) -> Option<usize> {
        let bytes = text.as_bytes();
        let mut i = 0;
        while i < bytes.len() {
            match self.within {
                Within::Quote(q) => {
                    // `find` is memchr: string bodies are most of a dump.
                    let offset = text[i..].find(q)?;
                    i += offset + 1;
                    self.within = Within::Code;
                    self.step(Token::Other);
                }
                Within::Line => {
                    let offset = text[i..].find('\n')?;
                    i += offset + 1;
                    self.within = Within::Code;
                    self.step(Token::Ws);
                }
                Within::Block { star } => {
                    if star && bytes[i] == b'/' {
                        i += 1;
                    } else if let Some(offset) = text[i..].find("*/") {
                        i += offset + 2;
                    } else {
                        self.within = Within::Block {
                            star: bytes.last() == Some(&b'*'),
                        };
                        return None;
                    }
                    self.within = Within::Code;
                    self.step(Token::Ws);
                }
                Within::Code => {
                    let b = bytes[i];
                    i += 1;
                    match b {
                        b';' => {
                            let complete = !matches!(self.state, 5 | 6);
                            self.step(Token::Semi);
                            if complete {
                                return Some(i);
                            }
                        }
                        b' ' | b'\r' | b'\t' | b'\n' | 0x0c => self.step(Token::Ws),
                        b'/' if bytes.get(i) == Some(&b'*') => {
                            i += 1;
                            self.within = Within::Block { star: false };
                        }
                        b'-' if bytes.get(i) == Some(&b'-') => {
                            i += 1;
                            self.within = Within::Line;
                        }
                        b'[' => self.within = Within::Quote(']'),
                        b'`' | b'"' | b'\'' => self.within = Within::Quote(b as char),
                        b if is_id_byte(b) => {
                            let len = 1 + bytes[i..].iter().take_while(|&&c| is_id_byte(c)).count();
                            let word = &bytes[i - 1..i - 1 + len];
                            i += len - 1;
                            self.step(keyword_token(word));
                        }
                        _ => self.step(Token::Other),
                    }
                }
            }
        }
        None
    }
}

fn keyword_token(word: &[u8]) -> Token {
    let is = |k: &str| word.eq_ignore_ascii_case(k.as_bytes());
    if is("create") {
        Token::Create
    } else if is("trigger") {
        Token::Trigger
    } else if is("temp") || is("temporary") {
        Token::Temp
    } else if is("end") {
        Token::End
    } else if is("explain") {
        Token::Explain
    } else {
        Token::Other
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
    let mut summary = DumpSummary::default();
    let mut bookkeeping = Bookkeeping {
        key: key.cloned(),
        ..Bookkeeping::default()
    };
    for statement in Statements::new(reader) {
        let statement = statement?;
        summary.statements += 1;
        if let Some(table) = insert_target(&statement.sql) {
            if is_never_restored(&table) {
                continue;
            }
            if bookkeeping.wants(&table) {
                bookkeeping.inserts.push(statement.sql);
            }
            *summary.rows.entry(table).or_default() += 1;
        } else if let Some((kind, name)) = created_object(&statement.sql) {
            if kind == "table" && !is_never_restored(&name) {
                if bookkeeping.wants(&name) {
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

    /// SQLite's own answer, for comparison.
    fn sqlite3_complete(sql: &str) -> bool {
        let c = std::ffi::CString::new(sql).unwrap();
        // SAFETY: `c` is NUL-terminated and outlives the call.
        unsafe { rusqlite::ffi::sqlite3_complete(c.as_ptr()) != 0 }
    }

    #[test]
    fn agrees_with_sqlite3_complete() {
        const PIECES: &[&str] = &[
            ";",
            " ",
            "\n",
            "'",
            "\"",
            "`",
            "[",
            "]",
            "/*",
            "*/",
            "*",
            "/",
            "--",
            "-",
            "x",
            "CREATE",
            "create",
            "TEMP",
            "TRIGGER",
            "trigger",
            "BEGIN",
            "END",
            "end",
            "EXPLAIN",
            "SELECT 1",
            "INSERT INTO t VALUES(1)",
            "'a;b'",
            "\"q;\"",
            "é",
            "_end",
            "ends",
        ];
        // A small deterministic generator: the same cases on every run.
        let mut seed: u64 = 0x9e37_79b9_7f4a_7c15;
        let mut next = || {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            seed
        };
        for _ in 0..20_000 {
            let n = (next() % 12) as usize;
            let text: String = (0..n)
                .map(|_| PIECES[(next() % PIECES.len() as u64) as usize])
                .collect::<Vec<_>>()
                .concat()
                + ";";
            // Fed in two pieces after a newline, as lines arrive.
            let cut = (next() as usize) % (text.len() + 1);
            let cut = (0..=cut)
                .rev()
                .find(|&c| c == 0 || text.as_bytes()[c - 1] == b'\n')
                .unwrap();
            let mut scan = Completeness::default();
            let ours = match scan.feed(&text[..cut]) {
                Some(end) => Some(end),
                None => scan.feed(&text[cut..]).map(|e| e + cut),
            };
            // SQLite's first complete prefix ending in `;`.
            let theirs = text
                .char_indices()
                .filter(|&(_, c)| c == ';')
                .map(|(i, _)| i + 1)
                .find(|&end| sqlite3_complete(&text[..end]));
            assert_eq!(ours, theirs, "{text:?} cut at {cut}");
        }
    }

    #[test]
    fn a_long_line_of_statements_splits_in_linear_time() {
        // 20,000 statements on one line: the old splitter copied the rest
        // of the line once per statement.
        let line: String = (0..20_000)
            .map(|i| format!("INSERT INTO \"t\" VALUES({i},'a;b;c');"))
            .collect();
        let statements = split(&line);
        assert_eq!(statements.len(), 20_000);
        assert_eq!(
            statements[19_999].sql,
            "INSERT INTO \"t\" VALUES(19999,'a;b;c');"
        );
    }

    #[test]
    fn a_string_full_of_statement_ends_is_one_statement_and_splits_in_linear_time() {
        // Every `; INSERT` inside the string looks like an end; after a few
        // questions to SQLite the scanner takes over.
        let inner = "; INSERT INTO x VALUES(1)".repeat(50_000);
        let text =
            format!("INSERT INTO \"t\" VALUES(1,'{inner}');\nINSERT INTO \"t\" VALUES(2,'b');\n");
        let statements = split(&text);
        assert_eq!(statements.len(), 2);
        assert!(statements[0].sql.ends_with("(1)');"));
        assert_eq!(statements[1].sql, "INSERT INTO \"t\" VALUES(2,'b');");
    }

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
