//! Splitting a dump into statements, by SQLite's own rule for where a
//! statement ends.
//!
//! Statements are split with SQLite's own completeness check
//! (`sqlite3_complete`), never with a home-made tokenizer: a `;` inside a
//! string, a comment or a trigger body does not end a statement, and SQLite is
//! the authority on that. A row of a D1 dump (a statement that starts a line
//! with `INSERT INTO `) is read by `Completeness`, complete.c's state
//! machine in Rust, which a test holds to `sqlite3_complete`'s answers.

use std::io::BufRead;
use std::ops::ControlFlow;

use anyhow::{Context, Result};

/// The advice an unterminated last statement that lacks only its `;` ends
/// with: a caller that knows the file is not whole (a manifest's size or
/// sha256 differs) takes it off, since editing a damaged file is no fix.
pub const IF_WHOLE: &str = "; if it is whole, add `;` at its end and run this again";

/// One complete SQL statement and the line it starts on (1-based).
#[derive(Debug, Clone, PartialEq, Eq)]

pub struct Statement {
    pub line: usize,
    pub sql: String,
    /// Whether the statement's last line ended in CRLF.
    pub crlf: bool,
}

/// Iterates over the complete statements of a dump.
pub struct Statements<'a> {
    /// Behind a pointer, so that the loop below is compiled here, optimised,
    /// and not again, unoptimised, for each caller's reader type.
    reader: Box<dyn BufRead + 'a>,
    line: usize,
    /// The line being read, and how much of it is consumed.
    buf: String,
    pos: usize,
    /// Reused for the NUL-terminated copy SQLite needs.
    c_text: Vec<u8>,
    /// Whether the last line read that had a line break ended in CRLF.
    crlf_before: bool,
    /// How the line that ended the last statement ended, once one has.
    ended_crlf: Option<bool>,
    /// The statement the text ended inside, once that is told.
    cut_off: Option<String>,
    /// Whether a line read so far holds a character beyond ASCII: UTF-8
    /// text, so a byte that is not UTF-8 later is a bad value in it, not
    /// a file in another encoding.
    read_utf8: bool,
    done: bool,
}

impl<'a> Statements<'a> {
    pub fn new(reader: impl BufRead + 'a) -> Statements<'a> {
        Statements {
            reader: Box::new(reader),
            line: 0,
            buf: String::new(),
            pos: 0,
            c_text: Vec::new(),
            crlf_before: false,
            ended_crlf: None,
            cut_off: None,
            read_utf8: false,
            done: false,
        }
    }

    /// The statement the text ended inside, without its `;`, once the
    /// last item has said so ("the dump ends inside an unterminated
    /// statement"): in a file's head cut off at a length, the statement
    /// the cut fell in.
    pub fn cut_off(&self) -> Option<&str> {
        self.cut_off.as_deref()
    }
}

impl Iterator for Statements<'_> {
    type Item = Result<Statement>;

    fn next(&mut self) -> Option<Result<Statement>> {
        if self.done {
            return None;
        }
        let mut sql = String::new();
        let mut start = 0;
        let mut finder = EndFinder::Ask { asks: 0 };
        loop {
            if self.pos >= self.buf.len()
                && let ControlFlow::Break(ended) = self.read_line(&sql, start)
            {
                return ended;
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
                if chunk.starts_with("INSERT INTO ") {
                    // A row: the scanner reads it once, mostly by memchr
                    // through its strings, where asking SQLite would copy it
                    // and read it again in C.
                    finder = EndFinder::Scan(Completeness::default());
                }
            }
            if sql.len() + chunk.len() > MAX_STATEMENT as usize {
                self.done = true;
                return Some(Err(anyhow::anyhow!(
                    "the statement starting on line {start} is longer than {} MiB, which no \
                     statement of a D1 dump is (D1 holds a row to 2 MB); the file is not a dump \
                     this tool can read",
                    MAX_STATEMENT >> 20
                )));
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
            // An empty statement (`;;`, a `;` alone on a line) is nothing,
            // as to SQLite and wrangler.
            if only_comments(&sql) || sql.trim_end().strip_suffix(';').is_some_and(only_comments) {
                sql.clear();
                finder = EndFinder::Ask { asks: 0 };
                continue;
            }
            return Some(Ok(self.ended(sql, start)));
        }
    }
}

impl Statements<'_> {
    /// Reads the next line into `buf`; `Break` with what `next` returns
    /// when there is none (the dump's end, with `sql` from line `start`
    /// still open or not) or it cannot be read.
    fn read_line(&mut self, sql: &str, start: usize) -> ControlFlow<Option<Result<Statement>>> {
        self.buf.clear();
        self.pos = 0;
        let read = read_line_at_most(
            &mut *self.reader,
            &mut self.buf,
            (MAX_STATEMENT, self.read_utf8),
        );
        match read {
            Ok(0) => {
                self.done = true;
                if sql.trim().is_empty() || only_comments(sql) {
                    return ControlFlow::Break(None);
                }
                self.cut_off = Some(sql.to_owned());
                return ControlFlow::Break(Some(Err(self.unterminated(sql, start))));
            }
            Ok(_) => {}
            Err(e) => {
                self.done = true;
                let line = self.line + 1;
                return ControlFlow::Break(Some(
                    Err(e).with_context(|| format!("reading line {line} of the dump")),
                ));
            }
        }
        self.line += 1;
        // Once seen, never looked for again: most dumps are ASCII.
        self.read_utf8 = self.read_utf8 || !self.buf.is_ascii();
        if self.line == 1
            && let Some(wide) = wide_text(self.buf.as_bytes())
        {
            self.done = true;
            return ControlFlow::Break(Some(Err(anyhow::anyhow!(
                "reading line 1 of the dump: {wide}"
            ))));
        }
        if self.buf.ends_with('\n') {
            self.crlf_before = self.buf.ends_with("\r\n");
        }
        // A byte order mark an editor put before the first line
        // (Notepad's UTF-8) is not SQL: SQLite and D1 would refuse
        // the first statement for it.
        if self.line == 1 && self.buf.starts_with('\u{feff}') {
            self.pos = '\u{feff}'.len_utf8();
        }
        ControlFlow::Continue(())
    }

    /// The dump ended inside the statement `sql`, from line `start`.
    fn unterminated(&mut self, sql: &str, start: usize) -> anyhow::Error {
        // Lines for the sqlite3 shell (`.import`, `.shell`) after the last
        // statement: no `;` makes them SQL.
        if let Some((line, command)) = self.dot_command_first(sql, start) {
            return anyhow::anyhow!(
                "the dump ends in a sqlite3 shell dot-command ({command}) on line {line}: a line \
                 for the sqlite3 shell, not SQL, which D1 cannot run (nor any line starting with \
                 `.`); remove it and the lines like it after it, then run this again"
            );
        }
        // `;`: say so, and how to go on, but load nothing, since a file cut
        // short looks alike.
        let commented = self.semicolon_in_a_line_comment(sql, start);
        if let Some((line, true)) = commented {
            return anyhow::anyhow!(
                "the dump ends inside an unterminated statement starting on line {start}: line \
                 {line} ends in a `--` comment that holds the `;` meant to end it, so the \
                 statement runs on to the dump's end; the file is whole. D1's export (and \
                 `wrangler d1 export`) writes a CREATE TABLE, INDEX or VIEW whose text ends in \
                 such a comment so: recreate it without the comment at its end (in a \
                 migration), then back up again; `cargo xtask backup local` writes it so that \
                 it loads"
            );
        }
        if let Some((line, false)) = commented {
            return anyhow::anyhow!(
                "the dump ends inside an unterminated statement starting on line {start}: line \
                 {line} ends in a `--` comment that holds a `;`, so the statement runs on past \
                 it. If that `;` was meant to end it (D1's export, and `wrangler d1 export`, \
                 writes a CREATE TABLE, INDEX or VIEW whose text ends in such a comment so), \
                 recreate the object without the comment at its end (in a migration), then back \
                 up again; otherwise the file is probably truncated"
            );
        }
        if is_complete_in(&mut self.c_text, sql.trim_end(), ";") {
            return anyhow::anyhow!(
                "the dump ends inside an unterminated statement starting on line {start}: it \
                 lacks the `;` that ends a statement, so the file may be truncated{IF_WHOLE}"
            );
        }
        anyhow::anyhow!(
            "the dump ends inside an unterminated statement starting on line {start}; the file \
             is probably truncated"
        )
    }

    /// The sqlite3 shell dot-command `sql` (from line `start`) starts with,
    /// and its line: at the start of its first line that is not blank, or
    /// after a whole statement that line ends (`END;.import …`), never
    /// after a `;` inside a string.
    fn dot_command_first(&mut self, sql: &str, start: usize) -> Option<(usize, String)> {
        let trimmed = sql.trim_start();
        let line = start + sql[..sql.len() - trimmed.len()].matches('\n').count();
        let first = trimmed.lines().next()?;
        let rest = match first.rfind(';') {
            Some(i) if is_complete_in(&mut self.c_text, &first[..=i], "") => &first[i + 1..],
            Some(_) => return None,
            None => first,
        };
        dot_command(rest).map(|command| (line, command.to_owned()))
    }

    /// The line of `sql` (which starts on line `start`) whose `;`, the
    /// first at a line's end, lies inside a `--` comment: the one that
    /// would have ended the statement on a line of its own; and whether the
    /// file is whole, as far as can be told: whether `sql`'s last line ends
    /// so too, as D1's export of such an object last in it does (a file cut
    /// short inside a later statement ends otherwise). Only those two
    /// lines are asked, once each, so a long dump is read in linear time.
    fn semicolon_in_a_line_comment(&mut self, sql: &str, start: usize) -> Option<(usize, bool)> {
        let (i, before, _) = lines_ending_in_a_semicolon(sql).next()?;
        if !is_complete_in(&mut self.c_text, before, "\n;") {
            return None;
        }
        let last = sql.trim_end();
        let whole = { last.strip_suffix(';') }
            .is_some_and(|before| is_complete_in(&mut self.c_text, before, "\n;"));
        Some((start + i, whole))
    }

    /// The statement `sql`, from line `start`, which the current line ended.
    fn ended(&mut self, mut sql: String, start: usize) -> Statement {
        // A last line with no line break at all (as Notepad saves it)
        // counts as ending the way the statements before it did: not
        // as the lines inside it, which are a trigger's own text when
        // a migration saved in CRLF made it (atkAF).
        let crlf = match self.buf.ends_with('\n') {
            true => self.crlf_before,
            false => self.ended_crlf.unwrap_or(self.crlf_before),
        };
        self.ended_crlf = Some(crlf);
        let trimmed_len = sql.trim_end().len();
        sql.truncate(trimmed_len);
        let trimmed_start = sql.len() - sql.trim_start().len();
        sql.drain(..trimmed_start);
        Statement {
            line: start,
            sql,
            crlf,
        }
    }
}

/// The longest statement, and line, read: far more than any statement of a
/// D1 dump (D1 runs statements of at most 100 KB and holds a row to 2 MB,
/// 4 MB as hex), and a bound on what a hostile file (a small zstd frame
/// that unpacks to gigabytes of one string) can make a reader hold.
pub const MAX_STATEMENT: u64 = 16 << 20;

/// [`BufRead::read_line`] into an empty `buf`, refusing a line longer than
/// `max` bytes after reading at most one byte more of it, and then one that
/// is not UTF-8. The length is judged first, on the bytes: a line cut
/// inside a character at the bound is too long, not badly encoded.
/// `utf8_before`: whether an earlier line held UTF-8 beyond ASCII, which
/// decides what a line that is not UTF-8 is said to be ([`not_utf8`]).
fn read_line_at_most(
    reader: &mut dyn BufRead,
    buf: &mut String,
    (max, utf8_before): (u64, bool),
) -> std::io::Result<usize> {
    use std::io::Read as _;
    let invalid = |message: String| std::io::Error::new(std::io::ErrorKind::InvalidData, message);
    let mut bytes = std::mem::take(buf).into_bytes();
    bytes.clear();
    let n = reader.take(max + 1).read_until(b'\n', &mut bytes)?;
    if n as u64 > max {
        return Err(invalid(format!(
            "a line longer than {} MiB, which no D1 dump holds (it writes a statement a line, \
             and D1 holds a row to 2 MB); the file is not a dump this tool can read",
            max >> 20
        )));
    }
    *buf = String::from_utf8(bytes).map_err(|e| {
        // A byte order mark of UTF-16 or UTF-32: a Windows-1252 conversion
        // of such text would be garbage.
        if let Some(wide) = wide_text(e.as_bytes()) {
            return invalid(wide);
        }
        invalid(not_utf8(e.as_bytes(), utf8_before).to_owned())
    })?;
    Ok(n)
}

/// What a `line` that is not UTF-8 is, and its fix. A file that holds
/// UTF-8 beyond ASCII (on an earlier line, when `utf8_before`, or on this
/// one) is UTF-8 with a few bad bytes: a value stored as text that is not
/// UTF-8, which `sqlite3 .dump` writes as it is. Converting such a file
/// from Windows-1252 would turn every other non-ASCII character into two
/// or three (`é` into `Ã©`), and the restore would then succeed, so it is
/// advised only for a file with no UTF-8 in it at all (rvAN).
fn not_utf8(line: &[u8], utf8_before: bool) -> &'static str {
    let utf8 = utf8_before || line.utf8_chunks().any(|c| !c.valid().is_ascii());
    match utf8 {
        true => {
            "it is UTF-8 text with bytes that are not UTF-8 in it (a value stored as text \
             that is not UTF-8, which `sqlite3 .dump` writes as it is); converting the file from \
             another encoding would change every other non-ASCII character in it. Take the \
             backup with `cargo xtask backup local` instead, which keeps such values exactly, \
             or fix the values (store them as valid UTF-8, or as BLOBs) and dump again"
        }
        false => {
            "it is not UTF-8 text, as every D1 dump is (a file saved as Latin-1 or \
             Windows-1252?); convert it, e.g. `iconv -f WINDOWS-1252 -t UTF-8 FILE > NEW.sql`"
        }
    }
}

/// What is wrong with a dump's first line when it is UTF-16 or UTF-32
/// text (Windows PowerShell's `>` writes UTF-16, with a byte order mark),
/// told with the conversion that undoes it; `None` for any other text.
fn wide_text(line: &[u8]) -> Option<String> {
    let encoding = Wide::of(line)?.name();
    Some(format!(
        "it is {encoding} text, not the UTF-8 every D1 dump is (saved by Windows PowerShell's \
         `>`, or an editor set to {encoding}?); convert it, e.g. `iconv -f {encoding} -t UTF-8 \
         FILE > NEW.sql`"
    ))
}

/// Text in UTF-16 or UTF-32, in either byte order, which no D1 dump is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Wide {
    Utf16Le,
    Utf16Be,
    Utf32Le,
    Utf32Be,
}

impl Wide {
    /// The encoding of text whose first bytes are `head`, when it is wide:
    /// told by its byte order mark, or without one by the NUL bytes
    /// between its first ASCII characters (valid UTF-8, which no D1 dump
    /// starts with): after a first printable one, or, when it starts with
    /// a space or a line break, over its first units ([`Wide::bare`]).
    pub fn of(head: &[u8]) -> Option<Wide> {
        Some(match head {
            [0xff, 0xfe, 0, 0, ..] => Wide::Utf32Le,
            [0, 0, 0xfe, 0xff, ..] => Wide::Utf32Be,
            [0xff, 0xfe, ..] => Wide::Utf16Le,
            [0xfe, 0xff, ..] => Wide::Utf16Be,
            [a, 0, 0, 0, ..] if a.is_ascii_graphic() => Wide::Utf32Le,
            [0, 0, 0, a, ..] if a.is_ascii_graphic() => Wide::Utf32Be,
            [a, 0, b, 0, ..] if a.is_ascii_graphic() && b.is_ascii() => Wide::Utf16Le,
            [0, a, 0, b, ..] if a.is_ascii_graphic() && b.is_ascii() => Wide::Utf16Be,
            _ => return Wide::bare(head),
        })
    }

    /// Text without a byte order mark told by its first units (up to
    /// 16), as many as are ASCII text (a printable character, a space, a
    /// tab or a line break, the unit's other bytes NUL): at least 4 of
    /// them, one of them printable. Binary data with a NUL after its first
    /// byte is not text so told.
    fn bare(head: &[u8]) -> Option<Wide> {
        let told = |wide: &Wide| {
            let (width, at) = wide.unit();
            let ascii = |unit: &&[u8]| {
                let c = unit[at];
                (c.is_ascii_graphic() || b" \t\r\n".contains(&c)) && { unit.iter().enumerate() }
                    .all(|(i, b)| i == at || *b == 0)
            };
            let units: Vec<&[u8]> = { head.chunks_exact(width).take(16) }
                .take_while(ascii)
                .collect();
            units.len() >= 4 && units.iter().any(|u| u[at].is_ascii_graphic())
        };
        { [Wide::Utf32Le, Wide::Utf32Be, Wide::Utf16Le, Wide::Utf16Be] }
            .into_iter()
            .find(told)
    }

    /// How many bytes a unit has, and which of them holds an ASCII
    /// character (its other bytes NUL).
    pub fn unit(self) -> (usize, usize) {
        match self {
            Wide::Utf16Le => (2, 0),
            Wide::Utf16Be => (2, 1),
            Wide::Utf32Le => (4, 0),
            Wide::Utf32Be => (4, 3),
        }
    }

    /// Its name, as `iconv` takes it.
    pub fn name(self) -> &'static str {
        match self {
            Wide::Utf16Le | Wide::Utf16Be => "UTF-16",
            Wide::Utf32Le | Wide::Utf32Be => "UTF-32",
        }
    }

    /// `bytes` decoded, without its byte order mark, up to the first unit
    /// that is not a character (a head cut inside one ends there).
    pub fn decode(self, bytes: &[u8]) -> String {
        let text: String = match self {
            Wide::Utf16Le | Wide::Utf16Be => {
                let units = bytes.chunks_exact(2).map(|u| match self {
                    Wide::Utf16Le => u16::from_le_bytes([u[0], u[1]]),
                    _ => u16::from_be_bytes([u[0], u[1]]),
                });
                char::decode_utf16(units).map_while(Result::ok).collect()
            }
            Wide::Utf32Le | Wide::Utf32Be => { bytes.chunks_exact(4) }
                .map(|u| match self {
                    Wide::Utf32Le => u32::from_le_bytes([u[0], u[1], u[2], u[3]]),
                    _ => u32::from_be_bytes([u[0], u[1], u[2], u[3]]),
                })
                .map_while(char::from_u32)
                .collect(),
        };
        match text.strip_prefix('\u{feff}') {
            Some(rest) => rest.to_owned(),
            None => text,
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
    let rest = rest.trim_start();
    if rest.is_empty() || rest.starts_with("--") || rest.starts_with("/*") || rest.starts_with(';')
    {
        return true;
    }
    let len = rest.bytes().take_while(u8::is_ascii_alphabetic).count();
    starts_a_statement(&rest[..len])
}

/// The sqlite3 shell's dot-command `sql` starts with (`.import`,
/// `.shell`), if it starts with one: a line for the shell itself, which
/// neither SQLite nor D1 runs. Only its word, of at most 20 letters, is
/// given: what follows it may name files or hold anything.
pub fn dot_command(sql: &str) -> Option<&str> {
    let s = sql.trim_start();
    let rest = s.strip_prefix('.')?;
    if !rest.starts_with(|c: char| c.is_ascii_alphabetic()) {
        return None;
    }
    let len = { rest.bytes() }
        .position(|b| !b.is_ascii_alphanumeric() && b != b'_')
        .unwrap_or(rest.len())
        .min(20);
    Some(&s[..1 + len])
}

/// Whether `word` is one SQLite starts a statement with (any case).
pub fn starts_a_statement(word: &str) -> bool {
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
    STARTS.iter().any(|k| k.eq_ignore_ascii_case(word))
}

/// Whether a schema object's text `sql` ends inside a `--` comment, as D1
/// keeps one written with its `;` on the next line: D1's export then writes
/// `sql;`, whose `;` the comment holds, so that the statement runs into the
/// next one.
pub fn ends_in_a_line_comment(sql: &str) -> bool {
    let mut buf = Vec::new();
    !is_complete_in(&mut buf, sql, ";") && is_complete_in(&mut buf, sql, "\n;")
}

/// A schema object's text that ended in a `--` comment, rewritten by
/// [`close_line_comment`] so that a `;` written after it ends it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ClosedComment {
    /// The comment written as a `/* */` one: `-- note` as `/* note */`.
    Block(String),
    /// The text without the comment, which held `*/` (the end of a
    /// `/* */` comment) or nothing.
    Dropped(String),
}

impl ClosedComment {
    /// The object's text, rewritten.
    pub fn text(&self) -> &str {
        match self {
            ClosedComment::Block(text) | ClosedComment::Dropped(text) => text,
        }
    }
}

/// `sql`, a schema object's text (without its `;`) that ends in a `--`
/// comment ([`ends_in_a_line_comment`]), with that comment written as a
/// `/* */` one, or dropped when it holds `*/` or nothing, so that D1 keeps
/// a text its export can end with `;`. The comment starts at the first
/// `--` of the last line that SQLite reads outside any string, name or
/// comment: where a `;` would end the statement. `None` for a text that
/// does not end in a `--` comment, or (never seen) one the rewrite would
/// not leave whole.
pub fn close_line_comment(sql: &str) -> Option<ClosedComment> {
    if !ends_in_a_line_comment(sql) {
        return None;
    }
    let mut buf = Vec::new();
    let line = sql.rfind('\n').map_or(0, |i| i + 1);
    let start = { sql[line..].match_indices("--") }
        .map(|(i, _)| line + i)
        .find(|&i| is_complete_in(&mut buf, &sql[..i], ";"))?;
    let note = sql[start + 2..].trim();
    let closed = if note.is_empty() || note.contains("*/") {
        // A `--` comment on the line before is closed in turn.
        let before = without_trailing_blanks(&sql[..start]);
        let text =
            close_line_comment(before).map_or_else(|| before.to_owned(), |c| c.text().to_owned());
        ClosedComment::Dropped(text)
    } else {
        let before = sql[..start].trim_end_matches([' ', '\t']);
        let space = if before.ends_with('\n') { "" } else { " " };
        ClosedComment::Block(format!("{before}{space}/* {note} */"))
    };
    let text = closed.text();
    (is_complete_in(&mut buf, text, ";") && !ends_in_a_line_comment(text)).then_some(closed)
}

/// The tokens of `sql` as SQLite's tokenizer reads them, comments and
/// blanks left out: a word, a string or quoted name (quotes and all, as
/// written), or any other byte. Two texts with the same tokens are the same
/// SQL however their comments and blanks stand: D1 keeps an object's text
/// as written, and wrangler before 4.94 migrated it with its `--` comments
/// stripped (rvCF 3).
pub fn tokens(sql: &str) -> Vec<&str> {
    let bytes = sql.as_bytes();
    let mut tokens = Vec::new();
    let mut i = 0;
    while i < bytes.len() {
        let start = i;
        let b = bytes[i];
        i += 1;
        let end = match b {
            b' ' | b'\r' | b'\t' | b'\n' | 0x0c => continue,
            b'-' if bytes.get(i) == Some(&b'-') => {
                i = sql[i..].find('\n').map_or(bytes.len(), |n| i + n + 1);
                continue;
            }
            b'/' if bytes.get(i) == Some(&b'*') => {
                i = sql[i + 1..]
                    .find("*/")
                    .map_or(bytes.len(), |n| i + 1 + n + 2);
                continue;
            }
            b'[' | b'`' | b'"' | b'\'' => {
                let close = if b == b'[' { ']' } else { b as char };
                sql[i..].find(close).map_or(bytes.len(), |n| i + n + 1)
            }
            b if is_id_byte(b) => i + bytes[i..].iter().take_while(|&&c| is_id_byte(c)).count(),
            // One character, whole: bytes over 0x7f are a word's.
            _ => i,
        };
        tokens.push(&sql[start..end]);
        i = end;
    }
    tokens
}

/// `sql` without the blanks SQLite's tokenizer skips (space, tab, line
/// feed, form feed, carriage return) at its end. Not Rust's `trim_end`,
/// which takes Unicode spaces too: SQLite reads every byte over 0x7f as
/// part of a name, so `flag\u{a0}` is another name than `flag`.
pub fn without_trailing_blanks(sql: &str) -> &str {
    sql.trim_end_matches([' ', '\t', '\n', '\x0c', '\r'])
}

/// The text of the schema object that `sql`, a statement as [`Statements`]
/// read it, starts with, when that text ends in a `--` comment
/// ([`ends_in_a_line_comment`]) holding the `;` written after it, so that
/// the next statement, on a later line, ran into it: `CREATE INDEX i ON
/// t(x) -- by x;` and a `CREATE TABLE` on the next line read as one.
pub fn runs_into_the_next(sql: &str) -> Option<&str> {
    lines_ending_in_a_semicolon(sql)
        .find(|(_, object, next)| {
            !next.trim().is_empty()
                && could_follow_a_statement(next)
                && ends_in_a_line_comment(object)
        })
        .map(|(_, object, _)| object)
}

/// Each line of `sql` that ends in a `;` (before trailing blanks): its
/// index, the text of `sql` before that `;`, and the text after the line.
fn lines_ending_in_a_semicolon(sql: &str) -> impl Iterator<Item = (usize, &str, &str)> {
    let mut end = 0;
    sql.split_inclusive('\n')
        .enumerate()
        .filter_map(move |(i, line)| {
            end += line.len();
            let text = line.trim_end();
            let before = &sql[..end - line.len() + text.len()];
            Some((i, before.strip_suffix(';')?, &sql[end..]))
        })
}

/// SQLite's `sqlite3_complete`: whether `sql` ends with a `;` that ends a
/// statement (not one inside a string, a comment or a trigger's body). A
/// text holding a NUL byte, which cannot be handed to SQLite (and which
/// SQLite's schema never holds), is reported complete.
pub fn is_complete(sql: &str) -> bool {
    is_complete_in(&mut Vec::new(), sql, "")
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

#[cfg(test)]
mod tests {
    use super::*;

    fn endings(text: &str) -> Vec<bool> {
        Statements::new(text.as_bytes())
            .map(|s| s.unwrap().crlf)
            .collect()
    }

    #[test]
    fn tokens_leave_out_comments_and_blanks_but_keep_strings_and_names_whole() {
        let kept = "CREATE TABLE t (a TEXT DEFAULT 'x -- y', -- note\n \"b /* c */\" INT /* d */)";
        let stripped = "CREATE TABLE t(a TEXT DEFAULT 'x -- y',\n\"b /* c */\" INT)";
        assert_eq!(tokens(kept), tokens(stripped));
        assert_eq!(
            tokens("a 'x -- y' [b c]"),
            ["a", "'x -- y'", "[b c]"],
            "a string and a quoted name are one token each"
        );
        assert_ne!(tokens("a 'x  y'"), tokens("a 'x y'"));
        assert_ne!(tokens("ab"), tokens("a b"));
    }

    #[test]
    fn a_last_line_without_a_line_break_ends_as_the_statements_before_it() {
        // Notepad's CRLF file, its last line unended: CRLF throughout.
        assert_eq!(
            endings("CREATE TABLE t(x);\r\nINSERT INTO t VALUES(1);"),
            [true; 2]
        );
        // An LF export whose last object is a trigger a CRLF migration made:
        // the CRLF inside it is its text's, not how the dump's lines end.
        let trigger = "CREATE TRIGGER t_ai AFTER INSERT ON t\r\nBEGIN\r\n  SELECT 1;\r\nEND;";
        assert_eq!(
            endings(&format!("CREATE TABLE t(x);\n{trigger}")),
            [false; 2]
        );
        assert_eq!(
            endings(&format!("CREATE TABLE t(x);\n{trigger}\n")),
            [false; 2]
        );
        // Alone, it has only its own lines to go by.
        assert_eq!(endings(trigger), [true]);
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
                .find(|&end| is_complete(&text[..end]));
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
    fn a_byte_order_mark_before_the_first_line_is_not_part_of_a_statement() {
        let plain = "PRAGMA defer_foreign_keys=TRUE;\nINSERT INTO \"t\" VALUES(1,'\u{feff}');\n";
        assert_eq!(split(&format!("\u{feff}{plain}")), split(plain));
        assert_eq!(split(&format!("\u{feff}\n{plain}"))[0].line, 2);
        // Only the file's first character: anywhere else it is a value's.
        assert_eq!(
            split(plain)[1].sql,
            "INSERT INTO \"t\" VALUES(1,'\u{feff}');"
        );
        let later = split("SELECT 1;\n\u{feff}SELECT 2;\n");
        assert_eq!(later[1].sql, "\u{feff}SELECT 2;");
    }

    #[test]
    fn a_statement_a_line_or_text_no_d1_dump_holds_is_refused_naming_its_line() {
        let long = "a".repeat(MAX_STATEMENT as usize);
        // Over many lines, the statement is refused once it is too long.
        let half = &long[..long.len() / 2 + 10];
        let text = format!("SELECT 1;\nINSERT INTO t VALUES('{half}\n{half}');\n");
        let err = Statements::new(text.as_bytes())
            .collect::<Result<Vec<_>>>()
            .unwrap_err();
        assert!(
            format!("{err:#}").contains("starting on line 2 is longer than 16 MiB"),
            "{err:#}"
        );
        // On one line, the line is refused, and not read whole.
        let text = format!("SELECT 1;\nINSERT INTO t VALUES('{long}');\n");
        let err = Statements::new(text.as_bytes())
            .collect::<Result<Vec<_>>>()
            .unwrap_err();
        assert!(
            format!("{err:#}").contains("reading line 2 of the dump: a line longer than 16 MiB"),
            "{err:#}"
        );
        // Text that is not UTF-8 is named as such, with its line.
        let err = Statements::new(&b"SELECT 1;\nINSERT INTO t VALUES('caf\xe9');\n"[..])
            .collect::<Result<Vec<_>>>()
            .unwrap_err();
        assert!(
            format!("{err:#}").contains("reading line 2 of the dump: it is not UTF-8 text"),
            "{err:#}"
        );
        // UTF-16 (Windows PowerShell's `>`), either byte order, is named
        // as UTF-16 with the conversion that undoes it, not as Windows-1252.
        let plain = "PRAGMA defer_foreign_keys=TRUE;\nSELECT 1;\n";
        let le: Vec<u8> = [0xff, 0xfe]
            .into_iter()
            .chain(plain.encode_utf16().flat_map(u16::to_le_bytes))
            .collect();
        let be: Vec<u8> = [0xfe, 0xff]
            .into_iter()
            .chain(plain.encode_utf16().flat_map(u16::to_be_bytes))
            .collect();
        let le_bare: Vec<u8> = { plain.encode_utf16() }
            .flat_map(u16::to_le_bytes)
            .collect();
        let be_bare: Vec<u8> = { plain.encode_utf16() }
            .flat_map(u16::to_be_bytes)
            .collect();
        for bytes in [le, be, le_bare, be_bare] {
            let err = Statements::new(&bytes[..])
                .collect::<Result<Vec<_>>>()
                .unwrap_err();
            let said = format!("{err:#}");
            assert!(
                said.contains("line 1 of the dump: it is UTF-16 text"),
                "{said}"
            );
            assert!(said.contains("iconv -f UTF-16 -t UTF-8"), "{said}");
            assert!(!said.contains("WINDOWS-1252"), "{said}");
        }
        // UTF-32, with its mark or without, is named as UTF-32.
        let utf32 = |le: bool, mark: bool| -> Vec<u8> {
            let mark = mark.then_some('\u{feff}');
            { mark.into_iter().chain(plain.chars()) }
                .flat_map(|c| match le {
                    true => (c as u32).to_le_bytes(),
                    false => (c as u32).to_be_bytes(),
                })
                .collect()
        };
        for bytes in [utf32(true, true), utf32(false, true), utf32(true, false)] {
            let err = Statements::new(&bytes[..])
                .collect::<Result<Vec<_>>>()
                .unwrap_err();
            let said = format!("{err:#}");
            assert!(said.contains("it is UTF-32 text"), "{said}");
            assert!(said.contains("iconv -f UTF-32 -t UTF-8"), "{said}");
        }
        // Just under the bound is read.
        let text = format!("INSERT INTO t VALUES('{}');\n", &long[..long.len() - 40]);
        assert_eq!(split(&text).len(), 1);
    }

    fn split(text: &str) -> Vec<Statement> {
        Statements::new(text.as_bytes())
            .collect::<Result<Vec<_>>>()
            .unwrap()
    }

    /// `sqlite3 .dump` of a table holding 'Zé', '日本' and one value stored
    /// as text that is not UTF-8 (`CAST(X'61FF62' AS TEXT)`): UTF-8 with
    /// one bad byte. Converting it from Windows-1252, as the message said,
    /// made every other non-ASCII value mojibake (`ZÃ©`), and the restore
    /// then succeeded (rvAN). Only a line with no UTF-8 before its bad byte
    /// is guessed to be Latin-1.
    #[test]
    fn utf8_text_with_a_bad_byte_is_not_called_latin_1() {
        let message = |text: &[u8]| {
            let err = Statements::new(text)
                .collect::<Result<Vec<_>>>()
                .unwrap_err();
            format!("{err:#}")
        };
        let dump = "CREATE TABLE t(id INTEGER PRIMARY KEY, v TEXT);\n\
                    INSERT INTO t VALUES(1,'Z\u{e9}');\n\
                    INSERT INTO t VALUES(2,'\u{65e5}\u{672c}');\n";
        let mut bytes = dump.as_bytes().to_vec();
        bytes.extend_from_slice(b"INSERT INTO t VALUES(3,'a\xffb');\n");
        let earlier = message(&bytes);
        // The same line with UTF-8 before its bad byte, and nothing before it.
        let same_line = message(&b"SELECT 1;\nINSERT INTO t VALUES('\xc3\xa9','a\xffb');\n"[..]);
        for said in [earlier, same_line] {
            assert!(
                said.contains("it is UTF-8 text with bytes that are not UTF-8"),
                "{said}"
            );
            assert!(said.contains("cargo xtask backup local"), "{said}");
            assert!(!said.contains("iconv"), "{said}");
            assert!(!said.contains("a\u{fffd}b"), "a value is quoted: {said}");
        }
        // No UTF-8 read: a Latin-1 file, as before.
        let latin = message(&b"INSERT INTO t VALUES(1,'caf\xe9');\n"[..]);
        assert!(latin.contains("iconv -f WINDOWS-1252"), "{latin}");
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

    /// The error of reading `dump`, which must fail.
    fn unterminated(dump: &str) -> String {
        Statements::new(dump.as_bytes())
            .collect::<Result<Vec<_>>>()
            .unwrap_err()
            .to_string()
    }

    /// rvAT: a dump ending in sqlite3 shell dot-commands (`.import`,
    /// `.shell`, after the last `;`, on its line or the next) was told it
    /// "may be truncated" and to add `;` at its end, which only brought
    /// another refusal. They are named for what they are: lines for the
    /// sqlite3 shell, which D1 cannot run, to be removed.
    #[test]
    fn a_dump_ending_in_sqlite3_dot_commands_is_told_to_remove_them_not_to_add_a_semicolon() {
        for dump in [
            "CREATE TABLE t(x);\nEND;.import /etc/passwd accounts\n.shell touch x\n",
            "CREATE TABLE t(x);\n\n.shell touch x",
        ] {
            let err = unterminated(dump);
            assert!(err.contains("sqlite3 shell dot-command"), "{err}");
            assert!(err.contains("remove"), "{err}");
            assert!(!err.contains("add `;`"), "{err}");
        }
    }

    /// D1's export of an index (then of a view) whose text ends in a `--`
    /// comment: its `;` is in the comment, and the dump never ends. The
    /// error names the comment's line, not a truncation; a `;` at a line's
    /// end inside a string still reads as a file cut short.
    #[test]
    fn a_semicolon_inside_a_line_comment_is_named_not_taken_for_a_truncation() {
        let err = unterminated(
            "PRAGMA defer_foreign_keys=TRUE;\nCREATE TABLE t(x);\n\
             CREATE INDEX i ON t(x) -- by x;\nCREATE VIEW v AS\n  SELECT x FROM t -- all;",
        );
        assert!(
            err.contains("starting on line 3: line 3 ends in a `--` comment"),
            "{err}"
        );
        assert!(!err.contains("truncated"), "{err}");
        let err = unterminated("SELECT 1;\nCREATE VIEW v AS\n  SELECT 'a -- b;\n  x");
        assert!(err.contains("truncated"), "{err}");
    }

    /// A dump cut short inside the statement after a line whose `;` lies
    /// in a `--` comment is not told that it is whole, only that the line
    /// may be the cause and that it may be cut short; one that ends on such
    /// a line, as D1's export of an object last in it does, is.
    #[test]
    fn a_dump_cut_short_after_a_semicolon_in_a_comment_is_not_called_whole() {
        for cut in [
            "SELECT 1;\nCREATE INDEX i ON t(x) -- by x;\nINSERT INTO t VALUES(1,\n",
            "SELECT 1;\nCREATE INDEX i ON t(x) -- by x;\nINSERT INTO t VALUES('a;\n",
        ] {
            let err = unterminated(cut);
            assert!(err.contains("line 2 ends in a `--` comment"), "{err}");
            assert!(!err.contains("whole"), "{err}");
            assert!(err.contains("truncated"), "{err}");
        }
        for whole in [
            "SELECT 1;\nCREATE INDEX i ON t(x) -- by x;\n",
            "SELECT 1;\nCREATE INDEX i ON t(x) -- by x;\nCREATE VIEW v AS\n  SELECT x FROM t -- x;",
        ] {
            let err = unterminated(whole);
            assert!(err.contains("line 2 ends in a `--` comment"), "{err}");
            assert!(err.contains("the file is whole"), "{err}");
        }
    }

    #[test]
    fn a_text_ending_in_a_line_comment_is_told_from_one_ending_otherwise() {
        assert!(ends_in_a_line_comment("CREATE INDEX i ON t(x) -- by x"));
        assert!(ends_in_a_line_comment(
            "CREATE VIEW v AS\n  SELECT 1 -- one; two"
        ));
        for whole in [
            "CREATE INDEX i ON t(x)",
            "CREATE INDEX i ON t(x) -- by x\n",
            "CREATE VIEW v AS SELECT '--' /* -- */",
            "CREATE TRIGGER tr AFTER INSERT ON t BEGIN SELECT 1; -- x\nEND",
            "CREATE VIEW v AS SELECT 'open -- ",
        ] {
            assert!(!ends_in_a_line_comment(whole), "{whole}");
        }
    }

    #[test]
    fn a_trailing_line_comment_is_closed_or_dropped() {
        let block = |sql: &str| match close_line_comment(sql) {
            Some(ClosedComment::Block(text)) => text,
            other => panic!("{sql:?}: {other:?}"),
        };
        assert_eq!(
            block("CREATE INDEX i ON t(x) -- by x"),
            "CREATE INDEX i ON t(x) /* by x */"
        );
        // The first `--` outside a string or a name starts it; the rest
        // of the line is its text.
        assert_eq!(
            block("CREATE VIEW v AS\n  SELECT '--', \"a--b\" FROM t --note -- more"),
            "CREATE VIEW v AS\n  SELECT '--', \"a--b\" FROM t /* note -- more */"
        );
        assert_eq!(
            block("CREATE TABLE t (a) WITHOUT ROWID -- one\n-- two"),
            "CREATE TABLE t (a) WITHOUT ROWID -- one\n/* two */"
        );
        assert_eq!(
            block("CREATE VIEW v AS SELECT 1 /* -- */ -- ü; ok"),
            "CREATE VIEW v AS SELECT 1 /* -- */ /* ü; ok */"
        );
        for (sql, left) in [
            (
                "CREATE VIEW v AS SELECT 1 -- hides */ rows",
                "CREATE VIEW v AS SELECT 1",
            ),
            ("CREATE INDEX i ON t(x) --", "CREATE INDEX i ON t(x)"),
            ("CREATE INDEX i ON t(x)\n--  \r", "CREATE INDEX i ON t(x)"),
            (
                "CREATE INDEX i ON t(x) -- by x\n-- not */ this",
                "CREATE INDEX i ON t(x) /* by x */",
            ),
        ] {
            assert_eq!(
                close_line_comment(sql),
                Some(ClosedComment::Dropped(left.to_owned())),
                "{sql:?}"
            );
        }
        // Only SQLite's blanks end a name: a no-break or ideographic space
        // is part of one (`flag\u{a0}` is not `flag`), and is kept.
        for sql in [
            "CREATE VIEW v AS SELECT k FROM t WHERE flag = flag\u{a0} -- */",
            "CREATE UNIQUE INDEX u ON t(k) WHERE flag\u{3000} --",
            "CREATE VIEW v AS SELECT 1 AS a\u{2028}\n--",
        ] {
            let kept = &sql[..sql.rfind("--").unwrap()];
            let kept = kept.trim_end_matches([' ', '\n']);
            assert_eq!(
                close_line_comment(sql),
                Some(ClosedComment::Dropped(kept.to_owned())),
                "{sql:?}"
            );
        }
        for whole in [
            "CREATE INDEX i ON t(x)",
            "CREATE INDEX i ON t(x) -- by x\n",
            "CREATE VIEW v AS SELECT '--' /* -- */",
            "CREATE VIEW v AS SELECT 'open -- ",
        ] {
            assert_eq!(close_line_comment(whole), None, "{whole}");
        }
    }

    /// An index, then a table, whose text ends in a `--` comment, as
    /// D1's export writes them, read as one statement with the next: the
    /// object is told; a `;` in a comment inside a table's columns, or in a
    /// trigger's body, is not taken for one.
    #[test]
    fn an_object_the_next_statement_ran_into_is_told() {
        let index = "CREATE INDEX i ON t(x) -- by x";
        let table = "CREATE TABLE u(a, b) WITHOUT ROWID -- keyed; by a";
        for (object, next) in [
            (index, "CREATE TABLE v(y);"),
            (table, "INSERT INTO u VALUES(1,2);"),
        ] {
            let read = split(&format!("{object};\n{next}\n"));
            assert_eq!(read.len(), 1, "{read:?}");
            assert_eq!(runs_into_the_next(&read[0].sql), Some(object));
        }
        for whole in [
            "CREATE TABLE t(\n  a INT, -- first;\n  b INT\n);",
            "CREATE TABLE t(\n  a INT -- first;\n);",
            "CREATE TRIGGER tr AFTER INSERT ON t BEGIN\n  SELECT 1; -- x;\n  SELECT 2;\nEND;",
            "INSERT INTO t VALUES('a -- b;\nCREATE TABLE c(d);');",
            "CREATE INDEX i ON t(x);",
        ] {
            assert_eq!(runs_into_the_next(whole), None, "{whole}");
        }
    }

    #[test]
    fn trailing_comments_are_not_a_statement() {
        let stmts = split("SELECT 1;\n-- end of dump\n/* really */\n");
        assert_eq!(stmts.len(), 1);
    }

    /// rvBD: empty statements skipped never drop nor merge a real one: each
    /// statement read is one statement to SQLite, and running them one by
    /// one leaves what SQLite makes of the whole text.
    #[test]
    fn empty_statements_skipped_never_drop_or_merge_real_ones() {
        let schema = "CREATE TABLE t(id INTEGER PRIMARY KEY, v TEXT, \"a;b\" TEXT);\n\
            CREATE TABLE log(n);\n";
        let bodies = [
            "INSERT INTO t VALUES(1,';',';');;INSERT INTO t VALUES(2,';;','x');",
            ";\nINSERT INTO t VALUES(1,'a',NULL);\n;\n;;\nINSERT INTO t VALUES(2,'b',NULL);",
            "-- c ;\n;\nINSERT INTO t(\"a;b\", id) VALUES(';', 3); -- ;\n",
            "/* ; */;\nINSERT INTO t VALUES(4,'/* ; */','-- ;');/* ; */;INSERT INTO t VALUES(5,'x',NULL);",
            "INSERT INTO t VALUES(6,'x',NULL); /* ;\n ; */ ; INSERT INTO t VALUES(7,';',NULL);",
            "CREATE TRIGGER tr AFTER INSERT ON t BEGIN\n  INSERT INTO log VALUES(';');\n  INSERT INTO log VALUES(new.id);\nEND;\n;\nINSERT INTO t VALUES(8,'x',NULL);",
            "INSERT INTO t VALUES(9,'a\r\n;\r\n',NULL);\r\n;\r\n\r\nINSERT INTO t VALUES(10,'b',NULL);\r\n;;\r\n",
            "INSERT INTO t VALUES(11,'x',NULL)\n;\n;\nINSERT INTO `t` VALUES(12,\"v\",NULL);",
            "INSERT INTO [t] VALUES(13,'[;]',NULL);;;-- x\n-- ;\n/**/;INSERT INTO t VALUES(14,'y',NULL);",
        ];
        let table = |db: &rusqlite::Connection, t: &str| -> Vec<String> {
            let mut stmt = db
                .prepare(&format!("SELECT * FROM {t} ORDER BY rowid"))
                .unwrap();
            let n = stmt.column_count();
            stmt.query_map([], |r| {
                (0..n)
                    .map(|i| {
                        r.get::<_, rusqlite::types::Value>(i)
                            .map(|v| format!("{v:?}"))
                    })
                    .collect::<rusqlite::Result<Vec<_>>>()
                    .map(|v| v.join("|"))
            })
            .unwrap()
            .collect::<rusqlite::Result<_>>()
            .unwrap()
        };
        for body in bodies {
            let text = format!("{schema}{body}\n");
            let whole = rusqlite::Connection::open_in_memory().unwrap();
            whole.execute_batch(&text).unwrap();
            let each = rusqlite::Connection::open_in_memory().unwrap();
            for s in Statements::new(text.as_bytes()) {
                let s = s.unwrap_or_else(|e| panic!("{e}: {body}"));
                // One statement: SQLite leaves nothing after it.
                let stmt = each
                    .prepare(&s.sql)
                    .unwrap_or_else(|e| panic!("{e}: {:?}", s.sql));
                drop(stmt);
                each.execute_batch(&s.sql).unwrap();
            }
            for t in ["t", "log"] {
                assert_eq!(table(&each, t), table(&whole, t), "{body}");
            }
        }
    }
}
