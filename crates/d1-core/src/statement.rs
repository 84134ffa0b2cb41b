//! One SQL statement's text: its first keyword, the object it creates, the
//! table an `INSERT` targets, and the kinds of statement a dump never holds.
//! The lowest layer of the core: everything else that reads SQL text asks
//! here, so that one reading of it is shared by the survey, the gate and the
//! summary.

pub use d1_sql::statements::{Statement, Statements};

/// Calls `each` with every statement of a dump in order (its line, its
/// text and whether it ended in CRLF), as iterating [`Statements`] would,
/// but reads and splits them on a thread of its own ([`pipe`]): splitting
/// is about half the time of a pass that only looks at each statement. The
/// text is lent from the batch it crossed in, not copied again. The result
/// is `each`'s first error, else the reader's.
pub fn each_piped(
    reader: impl std::io::BufRead + Send,
    mut each: impl FnMut(usize, &str, bool) -> anyhow::Result<()>,
) -> anyhow::Result<()> {
    pipe(
        |end| {
            let mut packed = Packed::default();
            for statement in Statements::new(reader) {
                let statement = match statement {
                    Ok(statement) => statement,
                    Err(e) => {
                        // What came before it still goes, in order.
                        end.send_packed(packed)?;
                        return Err(e);
                    }
                };
                packed.push_owned(statement.sql, statement.line, statement.crlf);
                if packed.is_full() {
                    end.send_packed(std::mem::take(&mut packed))?;
                }
            }
            end.send_packed(packed)
        },
        |packed: Packed| packed.each(&mut each),
    )
}

/// Statements packed into one buffer, to cross a [`pipe`] as one
/// allocation: thousands of small strings made on one thread and freed on
/// another would take the allocator's lock for every one.
#[derive(Default)]
pub struct Packed {
    text: String,
    /// Where each statement ends in `text`, its line and whether it ended
    /// in CRLF.
    items: Vec<(usize, usize, bool)>,
}

impl Packed {
    pub fn push(&mut self, sql: &str, line: usize, crlf: bool) {
        // Room for a whole batch at once: grown statement by statement, a
        // batch would be copied a dozen times over on its way to full.
        if self.text.capacity() - self.text.len() < sql.len() {
            self.text
                .reserve((PIPE_BATCH_BYTES + sql.len()).saturating_sub(self.text.len()));
        }
        self.text.push_str(sql);
        self.items.push((self.text.len(), line, crlf));
    }

    /// [`Packed::push`], without copying a statement that starts a batch,
    /// which matters for one over the batch's size.
    pub fn push_owned(&mut self, sql: String, line: usize, crlf: bool) {
        if self.text.is_empty() {
            self.text = sql;
            self.items.push((self.text.len(), line, crlf));
        } else {
            self.push(&sql, line, crlf);
        }
    }

    /// [`Packed::each`] with each statement's own text, moved rather than
    /// copied when it is the batch's only one.
    pub fn into_each(
        self,
        mut f: impl FnMut(usize, String, bool) -> anyhow::Result<()>,
    ) -> anyhow::Result<()> {
        if let [(_, line, crlf)] = self.items[..] {
            return f(line, self.text, crlf);
        }
        self.each(|line, sql, crlf| f(line, sql.to_owned(), crlf))
    }

    /// Whether it is as large as a pipe's batch.
    pub fn is_full(&self) -> bool {
        self.text.len() >= PIPE_BATCH_BYTES
    }

    /// Calls `f` with each statement's line, text and CRLF flag, in order,
    /// until it fails.
    pub fn each(
        &self,
        mut f: impl FnMut(usize, &str, bool) -> anyhow::Result<()>,
    ) -> anyhow::Result<()> {
        let mut start = 0;
        for &(end, line, crlf) in &self.items {
            f(line, &self.text[start..end], crlf)?;
            start = end;
        }
        Ok(())
    }
}

impl PipeEnd<'_, Packed> {
    /// Sends a packed batch, unless it is empty.
    pub fn send_packed(&mut self, packed: Packed) -> anyhow::Result<()> {
        if packed.items.is_empty() {
            return Ok(());
        }
        let bytes = packed.text.len().max(1);
        self.send(packed, bytes)
    }
}

/// Runs `produce` on a thread of its own while `consume`, on this one, takes
/// what it sends, in order: on a machine with a core to spare, a pass over a
/// dump then costs the longer of the two, not their sum. Items cross in
/// batches of about [`PIPE_BATCH_BYTES`], and at most [`PIPE_FLIGHT_BYTES`]
/// are sent and not yet consumed (or one batch, when a single statement is
/// larger), so a pipe holds about a megabyte, or two of a dump's largest
/// statements, whatever the dump's size. What `produce` sent before it
/// failed still reaches `consume`. The result is `consume`'s first error
/// (after which `produce` is stopped at its next batch), else `produce`'s.
pub fn pipe<T: Send, R: Send>(
    produce: impl FnOnce(&mut PipeEnd<'_, T>) -> anyhow::Result<R> + Send,
    mut consume: impl FnMut(T) -> anyhow::Result<()>,
) -> anyhow::Result<R> {
    let (tx, rx) = std::sync::mpsc::channel::<(Vec<T>, usize)>();
    let flight = Flight::default();
    std::thread::scope(|scope| {
        let producing = scope.spawn(|| {
            let mut end = PipeEnd {
                tx,
                flight: &flight,
                batch: Vec::new(),
                bytes: 0,
            };
            let produced = produce(&mut end);
            let flushed = end.flush();
            produced.and_then(|r| flushed.map(|()| r))
        });
        let consumed = {
            // Closes the flight however this ends, a panic included, so
            // that a producer waiting for room stops.
            let _landing = Landing(&flight);
            let mut consumed = Ok(());
            'batches: for (batch, bytes) in &rx {
                for item in batch {
                    if let Err(e) = consume(item) {
                        consumed = Err(e);
                        break 'batches;
                    }
                }
                flight.landed(bytes);
            }
            consumed
        };
        drop(rx);
        let produced = producing
            .join()
            .unwrap_or_else(|_| Err(anyhow::anyhow!("reading the dump panicked")));
        consumed?;
        produced
    })
}

/// How many bytes of items a [`pipe`] hands over at a time.
pub const PIPE_BATCH_BYTES: usize = 256 * 1024;
/// How many bytes a [`pipe`] may have sent and not yet consumed.
pub const PIPE_FLIGHT_BYTES: usize = 4 * PIPE_BATCH_BYTES;

/// The bytes a [`pipe`] has sent and not yet consumed, and whether the
/// consumer has stopped.
#[derive(Default)]
struct Flight {
    state: std::sync::Mutex<(usize, bool)>,
    room: std::sync::Condvar,
}

impl Flight {
    fn lock(&self) -> std::sync::MutexGuard<'_, (usize, bool)> {
        self.state
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Waits until `bytes` more fit (or nothing is in flight); `false` once
    /// the consumer has stopped.
    fn take_off(&self, bytes: usize) -> bool {
        let mut state = self.lock();
        while state.0 > 0 && state.0 + bytes > PIPE_FLIGHT_BYTES && !state.1 {
            state = self
                .room
                .wait(state)
                .unwrap_or_else(std::sync::PoisonError::into_inner);
        }
        state.0 += bytes;
        !state.1
    }

    fn landed(&self, bytes: usize) {
        self.lock().0 -= bytes;
        self.room.notify_one();
    }
}

/// Closes a [`Flight`] when the consumer stops.
struct Landing<'f>(&'f Flight);

impl Drop for Landing<'_> {
    fn drop(&mut self) {
        self.0.lock().1 = true;
        self.0.room.notify_one();
    }
}

/// The producing end of a [`pipe`].
pub struct PipeEnd<'f, T> {
    tx: std::sync::mpsc::Sender<(Vec<T>, usize)>,
    flight: &'f Flight,
    batch: Vec<T>,
    bytes: usize,
}

impl<T> PipeEnd<'_, T> {
    /// Sends `item`, of about `bytes` bytes; fails once the consumer has
    /// stopped.
    pub fn send(&mut self, item: T, bytes: usize) -> anyhow::Result<()> {
        self.batch.push(item);
        self.bytes += bytes;
        if self.bytes >= PIPE_BATCH_BYTES {
            self.flush()?;
        }
        Ok(())
    }

    fn flush(&mut self) -> anyhow::Result<()> {
        if self.batch.is_empty() {
            return Ok(());
        }
        let bytes = std::mem::take(&mut self.bytes);
        let stopped = || anyhow::anyhow!("the pipe's consumer stopped");
        if !self.flight.take_off(bytes) {
            return Err(stopped());
        }
        self.tx
            .send((std::mem::take(&mut self.batch), bytes))
            .map_err(|_| stopped())
    }
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

/// Whether `sql` is rows as values and nothing else: an `INSERT` (or
/// `REPLACE`) whose source is a `VALUES` list, or a bare `VALUES` list,
/// with no `SELECT`, `WITH` or `FROM` anywhere outside its strings, quoted
/// names and comments. Such a statement reads no table in a query and
/// makes no rows but its own; what SQLite reads to run it (a
/// self-referencing foreign key, a list of many rows) is its own doing.
pub fn is_rows_as_values(sql: &str) -> bool {
    if !matches!(first_keyword(sql).as_str(), "INSERT" | "REPLACE" | "VALUES") {
        return false;
    }
    let bytes = sql.as_bytes();
    let mut i = 0;
    let mut values = false;
    while i < bytes.len() {
        let b = bytes[i];
        let close = match b {
            b'\'' => Some(b'\''),
            b'"' => Some(b'"'),
            b'`' => Some(b'`'),
            b'[' => Some(b']'),
            _ => None,
        };
        if let Some(close) = close {
            // A doubled quote inside is the quote itself: skipping to each
            // closing quote in turn steps over it.
            i += 1;
            while i < bytes.len() && bytes[i] != close {
                i += 1;
            }
            if i == bytes.len() {
                return false;
            }
            i += 1;
        } else if bytes[i..].starts_with(b"--") {
            while i < bytes.len() && bytes[i] != b'\n' {
                i += 1;
            }
        } else if bytes[i..].starts_with(b"/*") {
            i = sql[i + 2..]
                .find("*/")
                .map_or(bytes.len(), |end| i + 2 + end + 2);
        } else if b.is_ascii_alphabetic() || b == b'_' {
            let start = i;
            while i < bytes.len() && (bytes[i].is_ascii_alphanumeric() || bytes[i] == b'_') {
                i += 1;
            }
            let word = &sql[start..i];
            if ["SELECT", "WITH", "FROM"]
                .iter()
                .any(|k| k.eq_ignore_ascii_case(word))
            {
                return false;
            }
            values |= word.eq_ignore_ascii_case("VALUES");
        } else {
            i += 1;
        }
    }
    values
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

/// Whether `word` is one SQLite starts a statement with (any case). A
/// statement that starts with any other word is no statement a dump
/// writes: most often one that starts inside a row's value, because a
/// quote before it was lost, so its words are customer data.
pub fn starts_a_statement(word: &str) -> bool {
    d1_sql::statements::starts_a_statement(word)
}

/// Why a sqlite3 shell dot-command ([`d1_sql::statements::dot_command`])
/// that ends in `;` is refused.
pub const DOT_COMMAND: &str = "a sqlite3 shell dot-command, a line for the sqlite3 shell, not \
                               SQL, which D1 cannot run: remove it from the file";

/// What names a statement that does not start with an SQL keyword
/// ([`starts_a_statement`]), in place of its words.
pub const NOT_A_STATEMENT: &str = "a statement that does not start with a keyword";

/// Names a statement for an error message without its values, which are
/// customer data: `an INSERT into customers`, or its first three words
/// when it starts with an SQL keyword ([`NOT_A_STATEMENT`] otherwise).
pub fn describe(sql: &str) -> String {
    if let Some(command) = d1_sql::statements::dot_command(skip_trivia(sql)) {
        return format!("a sqlite3 shell dot-command ({command})");
    }
    // The table as SQL spells it (`"my table"`), escaped as it is shown.
    if let Some(t) = insert_target(sql) {
        return format!("an INSERT into {}", crate::names::shown_name(&t));
    }
    if !starts_a_statement(leading_word(sql)) {
        return NOT_A_STATEMENT.to_owned();
    }
    // It names the dump's tables, which may hold any character.
    crate::names::shown(&keyword_words(sql)).into_owned()
}

/// The words that say what kind of statement `sql` is (`DELETE FROM`,
/// `CREATE UNIQUE INDEX`, `UPDATE`): its leading keywords, then, after
/// `CREATE`/`DROP`/`ALTER` and the kind of object, the object's name. A
/// statement that starts inside a row value can start with a keyword
/// (`update your password now`), so no other word is named: the words after
/// a DML keyword may be customer data.
fn keyword_words(sql: &str) -> String {
    const SHAPE: [&str; 20] = [
        "OR",
        "REPLACE",
        "IGNORE",
        "ABORT",
        "FAIL",
        "ROLLBACK",
        "INTO",
        "FROM",
        "UNIQUE",
        "TEMP",
        "TEMPORARY",
        "VIRTUAL",
        "TABLE",
        "INDEX",
        "VIEW",
        "TRIGGER",
        "IF",
        "NOT",
        "EXISTS",
        "DISTINCT",
    ];
    const NAMED_AFTER: [&str; 5] = ["TABLE", "INDEX", "VIEW", "TRIGGER", "EXISTS"];
    let first = leading_word(sql);
    let ddl = ["CREATE", "DROP", "ALTER"]
        .iter()
        .any(|k| first.eq_ignore_ascii_case(k));
    let mut kept = vec![first.to_owned()];
    let mut rest = &skip_trivia(sql)[first.len()..];
    loop {
        let word = leading_word(rest);
        if !word.is_empty() && SHAPE.iter().any(|k| word.eq_ignore_ascii_case(k)) {
            kept.push(word.to_owned());
            rest = &skip_trivia(rest)[word.len()..];
            continue;
        }
        let last = kept.last().map_or("", String::as_str);
        if ddl && NAMED_AFTER.iter().any(|k| last.eq_ignore_ascii_case(k)) {
            let named = skip_trivia(rest);
            if let Some((schema, name, _)) = qualified_name(named)
                .filter(|_| !named.starts_with('\''))
                .filter(|(_, _, after)| goes_on_as_ddl(after))
            {
                kept.push(schema.map_or(name.clone(), |s| format!("{s}.{name}")));
            }
        }
        return kept.join(" ");
    }
}

/// Whether `after`, the text after an object's name in `CREATE`/`DROP`/
/// `ALTER` + its kind + the name, goes on as such a statement does: it ends,
/// or opens a column list, or goes on with a keyword of that statement. A
/// row value that reads `Drop table reservation for Ann` does not, and its
/// word after `table` is customer data.
fn goes_on_as_ddl(after: &str) -> bool {
    const NEXT: [&str; 12] = [
        "ON", "AS", "BEFORE", "AFTER", "INSTEAD", "INSERT", "UPDATE", "DELETE", "RENAME", "ADD",
        "DROP", "USING",
    ];
    let rest = skip_trivia(after);
    if rest.is_empty() || rest.starts_with(';') || rest.starts_with('(') {
        return true;
    }
    let word = leading_word(rest);
    NEXT.iter().any(|k| word.eq_ignore_ascii_case(k))
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
    let (_, table, after) = qualified_name(rest)?;
    Some((table, after))
}

/// The text after the table's name of an `INSERT` that names no columns,
/// whose values SQLite binds by place (`INSERT INTO "t" VALUES(…)`, as
/// wrangler before 4.94 writes every row: workers-sdk #7507); `None` for
/// one that names them, `DEFAULT VALUES` (which binds none), or any other
/// statement.
fn unnamed_insert_rest(sql: &str) -> Option<&str> {
    let (_, rest) = split_insert(sql)?;
    let source = skip_trivia(rest);
    let named = source.starts_with('(') || strip_keyword(source, "DEFAULT").is_some();
    (!named).then_some(rest)
}

/// Whether `sql` is an `INSERT` that names no columns, so that its values
/// go into its table's columns by place, whatever their names.
pub fn binds_by_place(sql: &str) -> bool {
    unnamed_insert_rest(sql).is_some()
}

/// `sql`, an `INSERT` that names no columns, with `columns` named, as
/// wrangler 4.94 and later write a row (`INSERT INTO "t" ("a","b")
/// VALUES(…)`): its values then go into the columns so named wherever the
/// table it loads into has them. `None` when it names them already, binds
/// none, or its source is not `VALUES` or a query.
pub fn with_columns_named(sql: &str, columns: &[String]) -> Option<String> {
    let rest = unnamed_insert_rest(sql)?;
    let source = skip_trivia(rest);
    ["VALUES", "SELECT", "WITH"]
        .iter()
        .any(|k| strip_keyword(source, k).is_some())
        .then_some(())?;
    let head = &sql[..sql.len() - rest.len()];
    let named: Vec<String> = columns.iter().map(|c| quote_ident(c)).collect();
    Some(format!("{head} ({}){rest}", named.join(",")))
}

/// Reads `[schema.]name`, each part unquoted, and what follows it. Here
/// and in the other readers of a statement's words, a comment is read as
/// SQLite reads it, as a space: `INSERT /* c */ INTO t`, which D1 runs.
pub fn qualified_name(text: &str) -> Option<(Option<String>, String, &str)> {
    let (name, after) = read_identifier(text)?;
    if let Some(after_dot) = skip_trivia(after).strip_prefix('.') {
        let (table, after) = read_identifier(after_dot)?;
        return Some((Some(name), table, after));
    }
    Some((None, name, after))
}

/// Reads a parenthesised list of column names, `("a", "b (c)", [d])`,
/// unquoted, and what follows it; `None` if it is not one.
pub fn column_list(text: &str) -> Option<(Vec<String>, &str)> {
    let mut rest = skip_trivia(text).strip_prefix('(')?;
    let mut names = Vec::new();
    loop {
        let (name, after) = read_identifier(rest)?;
        names.push(name);
        let after = skip_trivia(after);
        if let Some(after) = after.strip_prefix(',') {
            rest = after;
        } else {
            return Some((names, after.strip_prefix(')')?));
        }
    }
}

/// An `INSERT ... VALUES` read as its rows: the text before its first row
/// (`INSERT OR REPLACE INTO t (a, b) VALUES`), each row's parenthesised
/// values as written, and what follows the last (the `;`, an upsert).
pub struct InsertRows<'a> {
    pub head: &'a str,
    pub rows: Vec<&'a str>,
    pub tail: &'a str,
}

/// The conflict clause an `INSERT` names (`INSERT OR REPLACE`, or a bare
/// `REPLACE`), upper-cased, or `None`: one of SQLite's five only.
pub fn insert_or(sql: &str) -> Option<&'static str> {
    let s = skip_trivia(sql);
    let word = match strip_keyword(s, "INSERT") {
        Some(rest) => read_identifier(strip_keyword(rest, "OR")?)?.0,
        None => strip_keyword(s, "REPLACE").map(|_| "REPLACE".to_owned())?,
    };
    { ["ROLLBACK", "ABORT", "REPLACE", "FAIL", "IGNORE"].into_iter() }
        .find(|k| k.eq_ignore_ascii_case(&word))
}

/// [`InsertRows`] of `sql`, or `None` for any other statement and for one
/// whose rows cannot be read to their closing parentheses.
pub fn insert_rows(sql: &str) -> Option<InsertRows<'_>> {
    let (_, rest) = split_insert(sql)?;
    let rest = column_list(rest).map_or(rest, |(_, after)| after);
    let values = strip_keyword(rest, "VALUES")?;
    let b = sql.as_bytes();
    let at = |rest: &str| sql.len() - skip_trivia(rest).len();
    let head = &sql[..sql.len() - values.len()];
    let (mut rows, mut start) = (Vec::new(), at(values));
    loop {
        let end = past_group(b, start)?;
        rows.push(&sql[start..end]);
        let next = at(&sql[end..]);
        if b.get(next) != Some(&b',') {
            return Some(InsertRows {
                head,
                rows,
                tail: &sql[end..],
            });
        }
        start = at(&sql[next + 1..]);
    }
}

/// Whether the `INSERT ... VALUES` `sql` has a clause after its rows (an
/// upsert's `ON CONFLICT`, a `RETURNING`), which [`insert_rows`] reads as
/// its tail.
pub fn has_clause_after_rows(sql: &str) -> bool {
    insert_rows(sql)
        .is_some_and(|i| !skip_trivia(skip_trivia(i.tail).trim_start_matches(';')).is_empty())
}

/// Whether `sql` is an `INSERT ... VALUES` with an upsert clause (`ON
/// CONFLICT ...` after its rows).
pub fn is_upsert(sql: &str) -> bool {
    insert_rows(sql).is_some_and(|i| strip_keyword(i.tail, "ON").is_some())
}

/// The rows an `INSERT` writes when it runs without conflict: those of its
/// `VALUES` list ([`insert_rows`]), or 1 for a statement of another shape.
pub fn rows_inserted(sql: &str) -> u64 {
    insert_rows(sql).map_or(1, |insert| insert.rows.len() as u64)
}

/// Past the parenthesised group that opens at `b[i]` (its strings, quoted
/// names and comments read as SQLite's tokenizer reads them); `None` if
/// no `(` is there or it is not closed.
fn past_group(b: &[u8], i: usize) -> Option<usize> {
    if b.get(i) != Some(&b'(') {
        return None;
    }
    let (mut i, mut depth) = (i, 0usize);
    while i < b.len() {
        i = match (b[i], b.get(i + 1)) {
            (b'(', _) => {
                depth += 1;
                i + 1
            }
            (b')', _) => {
                depth -= 1;
                if depth == 0 {
                    return Some(i + 1);
                }
                i + 1
            }
            (b'\'' | b'"' | b'`', _) => past_quoted(b, i),
            (b'[', _) => past(b, i + 1, b"]"),
            (b'-', Some(b'-')) => past(b, i + 2, b"\n"),
            (b'/', Some(b'*')) => past(b, i + 2, b"*/"),
            _ => i + 1,
        };
    }
    None
}

/// What a `CREATE` statement creates: its kind (`table`, `index`, `trigger`
/// or `view`, as `sqlite_master` says) and its name, unquoted. Virtual
/// tables are not matched.
pub fn created_object(sql: &str) -> Option<(&'static str, String)> {
    created_object_and_rest(sql).map(|(kind, name, _)| (kind, name))
}

/// What a `CREATE` statement writes after the name it creates (`None`: not
/// such a statement): two texts the same after it create the same object,
/// whatever the name's spelling or quoting.
pub fn after_created_name(sql: &str) -> Option<&str> {
    created_object_and_rest(sql).map(|(_, _, rest)| rest)
}

/// `sql` with every name that `is_table` takes for a table's (SQLite's
/// fold: ASCII case aside, quoted or bare) written one way, lower case and
/// bare: an index, trigger or view naming its table `"user"`, `[USER]` or
/// `User` names the one table, and their texts are then the same. Strings,
/// blobs and comments are kept as they are.
pub fn with_table_names_folded(sql: &str, is_table: impl Fn(&str) -> bool) -> String {
    let b = sql.as_bytes();
    let mut out = String::with_capacity(sql.len());
    let (mut i, mut kept) = (0, 0);
    while i < b.len() {
        let end = match b[i] {
            b'\'' => past_quoted(b, i),
            b'-' if b.get(i + 1) == Some(&b'-') => past(b, i, b"\n"),
            b'/' if b.get(i + 1) == Some(&b'*') => past(b, i + 2, b"*/"),
            b'"' | b'`' | b'[' => {
                let end = match b[i] {
                    b'[' => past(b, i, b"]"),
                    _ => past_quoted(b, i),
                };
                fold_name(sql, (i, end), &is_table, (&mut out, &mut kept));
                end
            }
            c if is_word_byte(c) => {
                let end =
                    { b[i..].iter().position(|&c| !is_word_byte(c)) }.map_or(b.len(), |k| i + k);
                fold_name(sql, (i, end), &is_table, (&mut out, &mut kept));
                end
            }
            _ => i + 1,
        };
        i = end.max(i + 1);
    }
    out.push_str(&sql[kept..]);
    out
}

/// Writes the name token `sql[start..end]` folded when it is a table's,
/// after the text since `kept`.
fn fold_name(
    sql: &str,
    (start, end): (usize, usize),
    is_table: &impl Fn(&str) -> bool,
    (out, kept): (&mut String, &mut usize),
) {
    let Some((name, _)) = read_identifier(&sql[start..end]) else {
        return;
    };
    if is_table(&name) {
        out.push_str(&sql[*kept..start]);
        out.push_str(&name.to_ascii_lowercase());
        *kept = end;
    }
}

/// Why a statement of a dump failed, when it is a table, index or view
/// whose text ends in a `--` comment holding the `;` written after it, so
/// that the next statement ran into it
/// ([`d1_sql::statements::runs_into_the_next`]): the object and the way
/// out ([`ends_in_a_line_comment`]), never a value.
pub fn ran_into_a_commented_object(sql: &str) -> Option<String> {
    let object = d1_sql::statements::runs_into_the_next(sql)?;
    let (kind, name) = created_object(object)?;
    Some(ends_in_a_line_comment(kind, &name))
}

/// Says that the `kind` object `name` ends in a `--` comment, so that an
/// export of it (D1's, `wrangler d1 export`'s) runs the next statement
/// into it, though the file is whole, and how to recreate it.
pub fn ends_in_a_line_comment(kind: &str, name: &str) -> String {
    format!(
        "{kind} {} ends in a `--` comment, which holds the `;` the export writes after it, so \
         the next statement runs into it, and the file is whole: recreate it without the \
         comment at its end (in a migration), then back up again; `cargo xtask backup local` \
         writes it so that it loads",
        crate::names::shown_name(name)
    )
}

/// Whether a `CREATE TABLE` fills its table from a query (`AS SELECT`).
pub fn creates_from_select(sql: &str) -> bool {
    created_object_and_rest(sql)
        .is_some_and(|(kind, _, rest)| kind == "table" && strip_keyword(rest, "AS").is_some())
}

/// The start of the name of every table the repair makes for itself while
/// it loads: a split value's side table and a virtual table's staging
/// table. It holds a number drawn once per process, so that no table of a
/// dump or of the target bears it and no dump can name one in advance: the
/// gate lets a dump change or drop these tables only (and
/// `sqlite_sequence`), and a user's own `_restore_log` is not among them.
pub fn own_prefix() -> &'static str {
    use std::hash::{BuildHasher, Hasher};
    static PREFIX: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    PREFIX.get_or_init(|| {
        // std's hasher keys are drawn from the operating system's random
        // source: the hash of nothing under them is a random number.
        let hasher = std::collections::hash_map::RandomState::new().build_hasher();
        format!("_restore_{:016x}_", hasher.finish())
    })
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

/// The length of the statement SQLite runs to store a `CREATE TABLE`,
/// `VIEW`, `INDEX` or `TRIGGER` in sqlite_schema, which D1 holds to its
/// statement limit too (`None`: not one, or a `CREATE TABLE ... AS`, whose
/// stored text SQLite writes itself). From sqlite3.c's sqlite3NestedParse
/// calls in sqlite3EndTable, sqlite3CreateIndex and sqlite3FinishTrigger:
/// `CREATE <KIND> ` and the text from the name it creates, quoted with
/// each `'` doubled, beside its name and its table's, quoted.
pub fn stored_create_bytes(sql: &str) -> Option<usize> {
    let rest = strip_keyword(skip_trivia(sql), "CREATE")?;
    let (head, rest) = match strip_keyword(rest, "UNIQUE") {
        Some(r) => ("CREATE UNIQUE INDEX ", strip_keyword(r, "INDEX")?),
        None => [
            ("CREATE TABLE ", "TABLE"),
            ("CREATE INDEX ", "INDEX"),
            ("CREATE TRIGGER ", "TRIGGER"),
            ("CREATE VIEW ", "VIEW"),
        ]
        .into_iter()
        .find_map(|(head, kind)| Some((head, strip_keyword(rest, kind)?)))?,
    };
    if head == "CREATE TABLE " && creates_from_select(sql) {
        return None;
    }
    let rest = match strip_keyword(rest, "IF") {
        Some(r) => strip_keyword(strip_keyword(r, "NOT")?, "EXISTS")?,
        None => rest,
    };
    let (_, after_first) = read_identifier(rest)?;
    let from_name = match after_first.trim_start().strip_prefix('.') {
        Some(after_dot) => after_dot.trim_start(),
        None => rest.trim_start(),
    };
    let (name, after) = read_identifier(from_name)?;
    let text = from_name.trim_end();
    let text = text.strip_suffix(';').unwrap_or(text);
    // An index keeps what precedes its `;`; the others end at their last word.
    let text = match head.ends_with("INDEX ") {
        true => text,
        false => text.trim_end(),
    };
    let quoted = |s: &str| s.len() + s.matches('\'').count() + 2;
    let stored = quoted(head) - 2 + quoted(text);
    let named = quoted(&name);
    Some(match head {
        "CREATE TABLE " | "CREATE VIEW " => {
            let kind = head[7..].trim_end().to_ascii_lowercase();
            "UPDATE 'main'.sqlite_master SET type='', name=, tbl_name=, rootpage=#2, sql= WHERE \
             rowid=#1"
                .len()
                + kind.len()
                + 2 * named
                + stored
        }
        "CREATE TRIGGER " => {
            let table = trigger_table(after).unwrap_or(name);
            "INSERT INTO 'main'.sqlite_master VALUES('trigger',,,0,)".len()
                + named
                + quoted(&table)
                + stored
        }
        _ => {
            let (_, table, _) = qualified_name(strip_keyword(after, "ON")?)?;
            "INSERT INTO 'main'.sqlite_master VALUES('index',,,#1,);".len()
                + named
                + quoted(&table)
                + stored
        }
    })
}

/// The table a `CREATE TRIGGER` is on, read from what follows its name.
fn trigger_table(after_name: &str) -> Option<String> {
    let mut rest = after_name;
    for word in ["BEFORE", "AFTER"] {
        rest = strip_keyword(rest, word).unwrap_or(rest);
    }
    if let Some(r) = strip_keyword(rest, "INSTEAD").and_then(|r| strip_keyword(r, "OF")) {
        rest = r;
    }
    rest = ["DELETE", "INSERT", "UPDATE"]
        .into_iter()
        .find_map(|word| strip_keyword(rest, word))?;
    if let Some(mut columns) = strip_keyword(rest, "OF") {
        loop {
            let (_, after) = read_identifier(columns)?;
            match after.trim_start().strip_prefix(',') {
                Some(next) => columns = next,
                None => break rest = after,
            }
        }
    }
    qualified_name(strip_keyword(rest, "ON")?).map(|(_, table, _)| table)
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

/// What a `CREATE` statement makes, virtual tables included (as `virtual
/// table`): [`created_object`], or [`created_virtual_table`].
pub fn created_any(sql: &str) -> Option<(&'static str, String)> {
    created_object(sql).or_else(|| created_virtual_table(sql).map(|t| ("virtual table", t)))
}

/// The name a `CREATE VIRTUAL TABLE` statement gives its table (`None`:
/// not such a statement), which [`created_object`] leaves out.
pub fn created_virtual_table(sql: &str) -> Option<String> {
    let rest = ["CREATE", "VIRTUAL", "TABLE"]
        .into_iter()
        .try_fold(skip_trivia(sql), strip_keyword)?;
    let rest = match strip_keyword(rest, "IF") {
        Some(r) => strip_keyword(strip_keyword(r, "NOT")?, "EXISTS")?,
        None => rest,
    };
    let (name, after) = read_identifier(rest)?;
    match after.trim_start().strip_prefix('.') {
        Some(after_dot) => read_identifier(after_dot).map(|(t, _)| t),
        None => Some(name),
    }
}

/// `text` after `keyword` (any case), which begins it past spaces and
/// comments, and is not the start of a longer word; `None` if it is not.
pub fn strip_keyword<'a>(text: &'a str, keyword: &str) -> Option<&'a str> {
    let text = skip_trivia(text);
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
    let text = skip_trivia(text);
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

/// wrangler's migration bookkeeping table.
pub const MIGRATIONS_TABLE: &str = "d1_migrations";

/// Whether `table`, a name as a dump or a database spells it, is
/// [`MIGRATIONS_TABLE`]: SQLite reads table names without regard to ASCII
/// case, so rows into `"D1_Migrations"` are rows of `d1_migrations`.
pub fn is_migrations_table(table: &str) -> bool {
    table.eq_ignore_ascii_case(MIGRATIONS_TABLE)
}

/// The bytes of the largest BLOB literal (`X'…'`) in `sql`, read as
/// SQLite's tokenizer reads it: not inside a string, a quoted name or a
/// comment, and not the end of a longer word.
pub fn largest_blob_literal(sql: &str) -> usize {
    largest_literals(sql).0
}

/// The bytes of the largest value literal in `sql`, a BLOB's
/// ([`largest_blob_literal`]) or a string's. A string is measured short,
/// never long: a quote doubled in it is one byte, and so is each `\n` and
/// `\r`, which a D1 export's `replace('…','\n',char(10))` makes one.
pub fn largest_value_literal(sql: &str) -> usize {
    let (blob, text, _) = largest_literals(sql);
    blob.max(text)
}

/// The bytes of the value literals of `sql`'s largest row, each measured
/// as [`largest_value_literal`] measures it, summed over one parenthesised
/// group at the top level (one row of `VALUES (…), (…)`): the least its
/// record holds, so a row of values that each fit D1's limit but not
/// together is told from a statement a split makes fit.
pub fn largest_row_literals(sql: &str) -> usize {
    largest_literals(sql).2
}

/// The bytes of a string literal's text, `b` all after its opening quote
/// (its closing one too, if any), as [`largest_value_literal`] counts them.
fn string_literal_bytes(b: &[u8]) -> usize {
    let (mut j, mut n) = (0, 0);
    while j < b.len() {
        j += match (b[j], b.get(j + 1)) {
            (b'\'', Some(b'\'')) | (b'\\', Some(b'n' | b'r')) => 2,
            (b'\'', _) => break,
            _ => 1,
        };
        n += 1;
    }
    n
}

/// The largest BLOB and string literals of `sql`, and the largest sum of
/// them in one top-level parenthesised group, in bytes.
fn largest_literals(sql: &str) -> (usize, usize, usize) {
    let b = sql.as_bytes();
    let (mut i, mut largest, mut text) = (0, 0, 0);
    let mut row = Row::default();
    while i < b.len() {
        i = match (b[i], b.get(i + 1)) {
            (b'x' | b'X', Some(b'\'')) if i == 0 || !is_word_byte(b[i - 1]) => {
                let end = past_quoted(b, i + 1);
                let bytes = end.saturating_sub(i + 3) / 2;
                largest = largest.max(bytes);
                row.value(bytes);
                end
            }
            (b'\'', _) => {
                let end = past_quoted(b, i);
                let bytes = string_literal_bytes(&b[i + 1..end]);
                text = text.max(bytes);
                row.value(bytes);
                end
            }
            (b'(', _) => row.open(i),
            (b')', _) => row.close(i),
            (b'"' | b'`', _) => past_quoted(b, i),
            (b'[', _) => past(b, i + 1, b"]"),
            (b'-', Some(b'-')) => past(b, i + 2, b"\n"),
            (b'/', Some(b'*')) => past(b, i + 2, b"*/"),
            _ => i + 1,
        };
    }
    (largest, text, row.largest)
}

/// [`largest_literals`]'s count of the values in each top-level group.
#[derive(Default)]
struct Row {
    depth: usize,
    bytes: usize,
    largest: usize,
}

impl Row {
    fn value(&mut self, bytes: usize) {
        if self.depth > 0 {
            self.bytes += bytes;
            self.largest = self.largest.max(self.bytes);
        }
    }

    /// Past the `(` at `i`.
    fn open(&mut self, i: usize) -> usize {
        self.depth += 1;
        i + 1
    }

    /// Past the `)` at `i`: a group at the top level ends its row.
    fn close(&mut self, i: usize) -> usize {
        self.depth = self.depth.saturating_sub(1);
        if self.depth == 0 {
            self.bytes = 0;
        }
        i + 1
    }
}

/// Where the token quoted by `b[i]` ends (past its closing quote; a quote
/// doubled inside is one of its characters), or the end of `b`.
pub fn past_quoted(b: &[u8], i: usize) -> usize {
    let quote = b[i];
    let mut at = i + 1;
    loop {
        match b[at..].iter().position(|&c| c == quote) {
            None => return b.len(),
            Some(k) if b.get(at + k + 1) == Some(&quote) => at += k + 2,
            Some(k) => return at + k + 1,
        }
    }
}

/// Past the first `close` at or after `from`, or the end of `b`.
fn past(b: &[u8], from: usize, close: &[u8]) -> usize {
    let from = from.min(b.len());
    { b[from..].windows(close.len()) }
        .position(|w| w == close)
        .map_or(b.len(), |k| from + k + close.len())
}

/// A byte that continues a word (a name, a keyword, a number) to SQLite.
fn is_word_byte(c: u8) -> bool {
    c.is_ascii_alphanumeric() || c == b'_' || c == b'$' || c >= 0x80
}

/// `sql` with its layout taken out: outside its strings and quoted
/// names, each run of whitespace and comments is one space, and none
/// beside `(`, `)`, `,` or `;`, where no space can join or part two
/// tokens. Two texts with the same result are the same tokens in the same
/// order, so a definition laid out by another hand (a `d1_migrations` made
/// by another version of wrangler, or another tool, indented otherwise)
/// compares as the same definition; a quoted text keeps every byte.
pub fn without_layout(sql: &str) -> String {
    let b = sql.as_bytes();
    let mut out: Vec<u8> = Vec::with_capacity(b.len());
    let (mut i, mut gap) = (0, false);
    let tight = |c: u8| matches!(c, b'(' | b')' | b',' | b';');
    while i < b.len() {
        let c = b[i];
        let trivia_end = match c {
            _ if c.is_ascii_whitespace() => Some(i + 1),
            b'-' if b.get(i + 1) == Some(&b'-') => Some(past(b, i + 2, b"\n")),
            b'/' if b.get(i + 1) == Some(&b'*') => Some(past(b, i + 2, b"*/")),
            _ => None,
        };
        if let Some(end) = trivia_end {
            (gap, i) = (true, end);
            continue;
        }
        if gap && out.last().is_some_and(|&l| !tight(l)) && !tight(c) {
            out.push(b' ');
        }
        gap = false;
        let end = match c {
            b'\'' | b'"' | b'`' => past_quoted(b, i),
            b'[' => past(b, i + 1, b"]"),
            _ => i + 1,
        };
        out.extend_from_slice(&b[i..end]);
        i = end;
    }
    // Cut only at token bounds, so the bytes are whole characters.
    String::from_utf8(out).unwrap_or_else(|e| String::from_utf8_lossy(e.as_bytes()).into_owned())
}

/// The tables a `CREATE TABLE`'s FOREIGN KEYs refer to (`REFERENCES
/// name`, read as SQLite's tokenizer reads words: not in a string, a
/// quoted name or a comment), unquoted; `None` when one `REFERENCES` is
/// followed by no name this can read, which a caller takes as the worst.
pub fn referenced_tables(sql: &str) -> Option<Vec<String>> {
    let text = without_layout(sql);
    let b = text.as_bytes();
    let (mut tables, mut i) = (Vec::new(), 0);
    while i < b.len() {
        match b[i] {
            b'\'' | b'"' | b'`' => i = past_quoted(b, i),
            b'[' => i = past(b, i + 1, b"]"),
            c if is_word_byte(c) => {
                let end = { b[i..].iter() }
                    .position(|&c| !is_word_byte(c))
                    .map_or(b.len(), |k| i + k);
                if text[i..end].eq_ignore_ascii_case("REFERENCES") {
                    let (_, table, _) = qualified_name(&text[end..])?;
                    tables.push(table);
                }
                i = end;
            }
            _ => i += 1,
        }
    }
    Some(tables)
}

/// An SQL identifier, double-quoted with inner quotes doubled.
pub fn quote_ident(name: &str) -> String {
    format!("\"{}\"", name.replace('"', "\"\""))
}

/// An SQL string literal, single-quoted with inner quotes doubled.
pub fn quote_literal(text: &str) -> String {
    format!("'{}'", text.replace('\'', "''"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_insert_that_names_no_columns_is_given_them_as_wrangler_4_94_writes_them() {
        let columns = ["id".to_owned(), "time zone".to_owned()];
        assert_eq!(
            with_columns_named("INSERT INTO \"t\" VALUES(1,'UTC');", &columns).as_deref(),
            Some("INSERT INTO \"t\" (\"id\",\"time zone\") VALUES(1,'UTC');")
        );
        assert_eq!(
            with_columns_named(
                "insert or replace into t values (1, 'a'), (2, 'b')",
                &columns
            )
            .as_deref(),
            Some("insert or replace into t (\"id\",\"time zone\") values (1, 'a'), (2, 'b')")
        );
        for named in [
            "INSERT INTO \"t\" (\"id\",\"tz\") VALUES(1,'UTC');",
            "INSERT INTO t(id) VALUES(1);",
            "INSERT INTO t DEFAULT VALUES;",
            "DELETE FROM t;",
        ] {
            assert!(!binds_by_place(named), "{named}");
            assert_eq!(with_columns_named(named, &columns), None, "{named}");
        }
        // Bound by place, but not in a form the names can be put into.
        assert!(binds_by_place("INSERT INTO t AS x VALUES(1);"));
        assert_eq!(
            with_columns_named("INSERT INTO t AS x VALUES(1);", &columns),
            None
        );
    }

    /// `head` and `tail` around an `IN` list padded to `bytes` in all.
    fn padded(head: &str, tail: &str, bytes: usize) -> String {
        let mut sql = format!("{head}0");
        while sql.len() + 8 + tail.len() < bytes {
            sql.push_str(",100000");
        }
        let pad = bytes - sql.len() - tail.len();
        if pad > 0 {
            sql.push(',');
            sql.push_str(&"1".repeat(pad - 1));
        }
        sql + tail
    }

    /// The longest of each kind the pinned wrangler's local D1 ran (one
    /// byte more was refused `string or blob too big`) is stored with a
    /// statement of exactly 100,000 bytes.
    /// Layout is whitespace and comments outside quotes; the tokens and
    /// every quoted byte stay, and so does a space that parts two words.
    #[test]
    fn a_definitions_layout_is_taken_out_and_nothing_else() {
        let wranglers = "\"d1_migrations\"(\n\t\tid         INTEGER PRIMARY KEY AUTOINCREMENT,\n\t\t\
                         name       TEXT UNIQUE,\n\t\tapplied_at TIMESTAMP DEFAULT \
                         CURRENT_TIMESTAMP NOT NULL\n)";
        let flat = "d1_migrations( id INTEGER PRIMARY KEY AUTOINCREMENT , name TEXT UNIQUE, \
                    /* when */ applied_at TIMESTAMP DEFAULT CURRENT_TIMESTAMP NOT NULL -- end\n)";
        let after = |s: &'static str| without_layout(s.split_once('(').unwrap().1);
        assert_eq!(after(wranglers), after(flat));
        assert_eq!(
            without_layout("t (a TEXT DEFAULT 'x  y', b TEXT)"),
            "t(a TEXT DEFAULT 'x  y',b TEXT)"
        );
        for (one, other) in [
            ("t (a TEXT DEFAULT 'x  y')", "t (a TEXT DEFAULT 'x y')"),
            ("t (\"a  b\" TEXT)", "t (\"a b\" TEXT)"),
            ("t (a TEXT, [b  c] INT)", "t (a TEXT, [b c] INT)"),
            (
                "t (a INTEGER CHECK (a - -1 > 0))",
                "t (a INTEGER CHECK (a --1 > 0)\n)",
            ),
            ("t (a INT, b INT)", "t (aINT, b INT)"),
            ("t (a TEXT UNIQUE)", "t (a TEXT /* UNIQUE */)"),
        ] {
            assert_ne!(
                without_layout(one),
                without_layout(other),
                "{one} | {other}"
            );
        }
    }

    /// A FOREIGN KEY's table is read however it is quoted, in a column's
    /// constraint or the table's; the word in a string, a quoted name or
    /// a comment is not one, and one with no readable name is `None`.
    #[test]
    fn the_tables_a_foreign_key_refers_to_are_read_as_sqlite_reads_them() {
        let read = |sql: &str| referenced_tables(sql);
        assert_eq!(
            read(
                "CREATE TABLE h (a INTEGER REFERENCES \"Accounts\" (id), b, \
                  FOREIGN KEY (b) references/* x */main.[companies](id))"
            ),
            Some(vec!["Accounts".to_owned(), "companies".to_owned()])
        );
        assert_eq!(
            read(
                "CREATE TABLE h (a TEXT DEFAULT 'REFERENCES accounts', \"references\" INT) \
                  -- REFERENCES accounts"
            ),
            Some(vec![])
        );
        assert_eq!(read("CREATE TABLE h (a REFERENCES (id))"), None);
    }

    #[test]
    fn a_create_is_stored_with_the_statement_sqlite3_c_writes() {
        for (head, tail, longest) in [
            (
                "CREATE VIEW big AS SELECT id FROM t WHERE id IN (",
                ");",
                99_894,
            ),
            (
                "CREATE VIEW abcdefgh AS SELECT id FROM t WHERE id IN (",
                ");",
                99_884,
            ),
            ("CREATE INDEX ix ON t(id) WHERE id IN (", ");", 99_937),
            (
                "CREATE TRIGGER tg AFTER INSERT ON t BEGIN SELECT ",
                "; END;",
                99_937,
            ),
        ] {
            let sql = padded(head, tail, longest);
            assert_eq!(sql.len(), longest);
            assert_eq!(stored_create_bytes(&sql), Some(100_000), "{head}");
        }
        let quoted = padded(
            "CREATE VIEW big AS SELECT 'it''s', id FROM t WHERE id IN (",
            ");",
            1000,
        );
        let plain = padded(
            "CREATE VIEW big AS SELECT 'it-xs', id FROM t WHERE id IN (",
            ");",
            1000,
        );
        assert_eq!(
            stored_create_bytes(&quoted),
            stored_create_bytes(&plain).map(|b| b + 2)
        );
        assert_eq!(stored_create_bytes("CREATE TABLE t2 AS SELECT 1;"), None);
        assert_eq!(stored_create_bytes("INSERT INTO t VALUES(1);"), None);
    }

    #[test]
    fn a_tables_name_is_folded_however_spelt_and_nothing_else() {
        let is_table = |n: &str| n.eq_ignore_ascii_case("User");
        let fold = |sql: &str| with_table_names_folded(sql, is_table);
        let want = "ON user (name) WHERE name <> 'User' -- User\n";
        for name in ["User", "\"user\"", "[USER]", "`uSeR`"] {
            let sql = format!("ON {name} (name) WHERE name <> 'User' -- User\n");
            assert_eq!(fold(&sql), want, "{sql}");
        }
        assert_eq!(fold("ON Users (Name)"), "ON Users (Name)");
    }

    #[test]
    fn the_largest_blob_literal_is_read_as_sqlites_tokenizer_reads_it() {
        for (sql, bytes) in [
            ("VALUES(1,X'00ff',x'aabbcc')", 3),
            ("VALUES(X'')", 0),
            // Inside a string, a name or a comment, or the end of a word,
            // it is none.
            ("VALUES('it''s X''aabbcc''', 1)", 0),
            ("VALUES(\"X'aabb\", [X'aabb], `X'aabb`) -- X'aabb\n", 0),
            ("VALUES(/* X'aabb' */ maX'aabb')", 0),
            ("VALUES('a''', X'aabb', 'X''')", 2),
            // One left open runs to the end, as SQLite reads it.
            ("VALUES(X'aabbcc", 2),
        ] {
            assert_eq!(super::largest_blob_literal(sql), bytes, "{sql}");
        }
    }

    /// A row's literals are summed within its own parentheses (a function
    /// call's inside them counts to its row), never across rows, nor a
    /// name's or a comment's parentheses.
    #[test]
    fn the_largest_row_sums_the_literals_of_one_row() {
        for (sql, bytes) in [
            ("INSERT INTO t VALUES(1,'abc',X'00ff')", 5),
            (
                "INSERT INTO t(\"(a\",b) VALUES('ab',replace('cd','\\n',char(10)))",
                5,
            ),
            ("INSERT INTO t VALUES('abcd',X'00'),('ab','c')", 5),
            ("INSERT INTO t VALUES('a)b') -- ('abcdef')\n", 3),
        ] {
            assert_eq!(super::largest_row_literals(sql), bytes, "{sql}");
        }
    }

    /// A WITHOUT ROWID table the next INSERT ran into is named, with the
    /// way out, and the INSERT's values are not; a failed statement of any
    /// other kind is given no such cause.
    #[test]
    fn an_object_the_next_statement_ran_into_is_named_without_its_values() {
        let told = ran_into_a_commented_object(
            "CREATE TABLE \"notes\"(id PRIMARY KEY) WITHOUT ROWID -- by id;\n\
             INSERT INTO \"notes\" VALUES('secret');",
        )
        .unwrap();
        assert!(
            told.starts_with("table notes ends in a `--` comment"),
            "{told}"
        );
        assert!(told.contains("recreate it without the comment"), "{told}");
        assert!(!told.contains("secret"), "{told}");
        assert_eq!(
            ran_into_a_commented_object("INSERT INTO t VALUES(1 -- x;\n);"),
            None
        );
    }

    #[test]
    fn a_quoted_literal_reads_back_as_its_text() {
        let db = rusqlite::Connection::open_in_memory().unwrap();
        for text in [
            "",
            "plain",
            "it's",
            "''",
            "a'); DROP TABLE t; --",
            "\"x\"",
            "é\n",
        ] {
            let back: String = db
                .query_row(&format!("SELECT {}", quote_literal(text)), [], |r| r.get(0))
                .unwrap();
            assert_eq!(back, text);
        }
    }

    #[test]
    fn rows_as_values_are_told_from_queries_whatever_the_strings_say() {
        for sql in [
            "INSERT INTO t VALUES(1,'a'),(2,'b');",
            "INSERT INTO \"select\" (\"from\") VALUES('with; SELECT 1 FROM x');",
            "REPLACE INTO t VALUES(1) -- from here\n;",
            "/* select */ INSERT INTO [with] VALUES(replace('a','b',char(10)));",
            "VALUES(1, X'00')",
        ] {
            assert!(is_rows_as_values(sql), "{sql}");
        }
        for sql in [
            "INSERT INTO t SELECT 1;",
            "INSERT INTO t VALUES((SELECT 1));",
            "INSERT INTO t WITH c AS (VALUES(1)) SELECT * FROM c;",
            "WITH c AS (VALUES(1)) INSERT INTO t SELECT * FROM c;",
            "INSERT INTO t DEFAULT VALUES RETURNING (SELECT 1);",
            "CREATE TABLE t AS VALUES(1);",
            "INSERT INTO t VALUES('unterminated",
        ] {
            assert!(!is_rows_as_values(sql), "{sql}");
        }
    }

    /// A statement is named without its values, and a name from the dump
    /// is shown escaped.
    #[test]
    fn a_column_list_is_read_by_its_quotes_not_by_its_commas_and_parentheses() {
        let (names, rest) = column_list(
            r#"("amount (USD)", "a,b", "x""", "[note]", [a b], `q``t`, plain) VALUES(1)"#,
        )
        .unwrap();
        assert_eq!(
            names,
            [
                "amount (USD)",
                "a,b",
                "x\"",
                "[note]",
                "a b",
                "q`t",
                "plain"
            ]
        );
        assert_eq!(rest, " VALUES(1)");
        assert_eq!(column_list("( a ,b )VALUES").unwrap().0, ["a", "b"]);
        for bad in ["(a", "(a b)", "(,a)", "a)", "(\"a)"] {
            assert!(column_list(bad).is_none(), "{bad}");
        }
    }

    #[test]
    fn a_row_value_that_reads_like_ddl_does_not_name_its_next_word() {
        // A row value a lost quote turned into a statement can start with
        // CREATE/DROP/ALTER and a kind of object: the word after it is
        // customer data, not an object's name.
        for fragment in [
            "Drop table reservation for Ann Smith', 4);",
            "alter table Hunter2 seating please');",
            "Create index cards for Hunter2');",
            "create view Hunter2 from the hill', 1);",
            "create trigger Hunter2 warnings');",
            "create table if not exists Hunter2 is my password');",
        ] {
            let said = describe(fragment);
            for word in ["reservation", "Hunter2", "cards"] {
                assert!(!said.contains(word), "{fragment}: {said}");
            }
        }
        // A real statement still names its object.
        assert_eq!(describe("DROP TABLE bookings;"), "DROP TABLE bookings");
        // rvAT: a sqlite3 shell dot-command given its `;` is named as one.
        assert_eq!(
            describe(".shell touch x;"),
            "a sqlite3 shell dot-command (.shell)"
        );
        assert_eq!(
            describe("ALTER TABLE bookings ADD COLUMN x;"),
            "ALTER TABLE bookings"
        );
        assert_eq!(
            describe("CREATE INDEX by_day ON bookings(day);"),
            "CREATE INDEX by_day"
        );
        assert_eq!(
            describe("CREATE TRIGGER t AFTER INSERT ON b BEGIN SELECT 1; END;"),
            "CREATE TRIGGER t"
        );
        assert_eq!(
            describe("CREATE VIEW \"v w\" AS SELECT 1;"),
            "CREATE VIEW v w"
        );
        assert_eq!(
            describe("CREATE TABLE IF NOT EXISTS t (id);"),
            "CREATE TABLE IF NOT EXISTS t"
        );
    }

    #[test]
    fn a_statement_is_described_without_values_or_raw_names() {
        assert_eq!(
            describe("INSERT INTO \"customers\" VALUES(1,'secret');"),
            "an INSERT into customers"
        );
        assert_eq!(describe("SELECT 'secret', 2 FROM t;"), "SELECT");
        assert_eq!(describe("DELETE FROM accounts;"), "DELETE FROM");
        assert_eq!(
            describe("CREATE UNIQUE INDEX IF NOT EXISTS \"by email\"(email);"),
            "CREATE UNIQUE INDEX IF NOT EXISTS by email"
        );
        assert_eq!(describe("create table notes(id)"), "create table notes");
        assert_eq!(describe("DROP VIEW v;"), "DROP VIEW v");
        // A row value a lost quote turned into a statement can start with
        // a keyword: the words after it are not named.
        for fragment in [
            "update your password now');",
            "delete from my list', 2);",
            "with love, Ann');",
            "select Hunter2 please",
        ] {
            let said = describe(fragment);
            for word in ["your", "my", "love", "Hunter2", "Ann"] {
                assert!(!said.contains(word), "{fragment}: {said}");
            }
        }
        // A statement that starts inside a row value (a quote lost before
        // it) is not named by its words, which are customer data.
        let fragment = describe("Correcthorsebattery staple');");
        assert!(
            !fragment.to_ascii_lowercase().contains("correcthorse"),
            "{fragment}"
        );
        assert!(!fragment.contains("staple"), "{fragment}");
        assert_eq!(
            describe("INSERT INTO \"x\nResult: GOOD\" VALUES(1);"),
            "an INSERT into \"x\\u{a}Result: GOOD\""
        );
        assert_eq!(
            describe("INSERT INTO \"my table\" VALUES(1);"),
            "an INSERT into \"my table\""
        );
    }

    /// Several pipe batches of statements, one over many lines.
    fn many_statements() -> String {
        let mut dump = String::from("CREATE TABLE a (id INTEGER PRIMARY KEY,\n v TEXT);\n");
        for i in 0..5_000 {
            dump.push_str(&format!(
                "INSERT INTO \"a\" VALUES({i},'{}');\n",
                "x;".repeat(100)
            ));
            if i == 2_000 {
                // Larger than a batch: it crosses alone.
                let big = "y".repeat(3 * PIPE_BATCH_BYTES);
                dump.push_str(&format!("INSERT INTO \"a\" VALUES(-1,'{big}');\n"));
            }
        }
        dump
    }

    fn piped(reader: impl std::io::BufRead + Send) -> (Vec<(usize, String)>, anyhow::Result<()>) {
        let mut seen = Vec::new();
        let result = each_piped(reader, |line, sql, _| {
            seen.push((line, sql.to_owned()));
            Ok(())
        });
        (seen, result)
    }

    #[test]
    fn a_packed_batch_gives_back_its_statements_whether_alone_or_many() {
        let unpack = |packed: Packed| {
            let mut out = Vec::new();
            packed
                .into_each(|line, sql, crlf| {
                    out.push((line, sql, crlf));
                    Ok(())
                })
                .unwrap();
            out
        };
        let mut alone = Packed::default();
        alone.push_owned("INSERT INTO \"a\" VALUES(1);".to_owned(), 7, true);
        assert_eq!(
            unpack(alone),
            [(7, "INSERT INTO \"a\" VALUES(1);".to_owned(), true)]
        );
        let mut many = Packed::default();
        many.push_owned(String::new(), 1, false);
        many.push_owned("CREATE TABLE a(x);".to_owned(), 2, false);
        many.push("INSERT INTO \"a\" VALUES(1);", 3, true);
        assert_eq!(
            unpack(many),
            [
                (1, String::new(), false),
                (2, "CREATE TABLE a(x);".to_owned(), false),
                (3, "INSERT INTO \"a\" VALUES(1);".to_owned(), true)
            ]
        );
    }

    #[test]
    fn piped_statements_are_the_statements_in_order() {
        let dump = many_statements();
        let plain: Vec<(usize, String)> = Statements::new(dump.as_bytes())
            .map(|s| s.map(|s| (s.line, s.sql)).unwrap())
            .collect();
        assert!(dump.len() > 3 * PIPE_BATCH_BYTES);
        let (seen, result) = piped(dump.as_bytes());
        result.unwrap();
        assert_eq!(seen, plain);
    }

    #[test]
    fn a_read_error_comes_after_every_statement_before_it() {
        struct BreaksAfter<'a>(&'a [u8]);
        impl std::io::Read for BreaksAfter<'_> {
            fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
                if self.0.is_empty() {
                    return Err(std::io::Error::other("the disk went away"));
                }
                let n = buf.len().min(self.0.len());
                buf[..n].copy_from_slice(&self.0[..n]);
                self.0 = &self.0[n..];
                Ok(n)
            }
        }
        let dump = many_statements();
        let half = &dump.as_bytes()[..dump.len() / 2];
        let plain: Vec<(usize, String)> =
            Statements::new(std::io::BufReader::new(BreaksAfter(half)))
                .map_while(Result::ok)
                .map(|s| (s.line, s.sql))
                .collect();
        let (seen, result) = piped(std::io::BufReader::new(BreaksAfter(half)));
        assert!(format!("{:#}", result.unwrap_err()).contains("the disk went away"));
        assert!(seen.len() > 1_000, "only {}", seen.len());
        assert_eq!(seen, plain);
    }

    #[test]
    fn a_pipe_holds_about_a_megabyte_or_two_of_the_largest_statements() {
        use std::sync::atomic::{AtomicUsize, Ordering};
        for size in [100 * 1024, 5 * 1024 * 1024] {
            let produced = AtomicUsize::new(0);
            let mut consumed = 0;
            let mut ahead = 0;
            pipe(
                |end| {
                    for _ in 0..40 {
                        produced.fetch_add(size, Ordering::SeqCst);
                        end.send(size, size)?;
                    }
                    Ok(())
                },
                |bytes| {
                    // A slow consumer: the producer is as far ahead as the
                    // pipe lets it be.
                    std::thread::sleep(std::time::Duration::from_millis(2));
                    ahead = ahead.max(produced.load(Ordering::SeqCst) - consumed);
                    consumed += bytes;
                    Ok(())
                },
            )
            .unwrap();
            assert_eq!(consumed, 40 * size);
            // In flight (the batch being consumed included), plus the batch
            // the producer holds while it waits for room.
            let most = PIPE_FLIGHT_BYTES.max(size) + PIPE_BATCH_BYTES.max(size);
            assert!(ahead <= most, "{ahead} bytes ahead, with {size}-byte items");
        }
    }

    #[test]
    fn the_callers_error_stops_the_reading_and_is_the_one_given() {
        let dump = many_statements();
        let mut calls = 0;
        let result = each_piped(dump.as_bytes(), |_, _, _| {
            calls += 1;
            if calls == 1_500 {
                anyhow::bail!("statement 1500 is wrong");
            }
            Ok(())
        });
        assert_eq!(result.unwrap_err().to_string(), "statement 1500 is wrong");
        assert_eq!(calls, 1_500);
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
        assert_eq!(
            created_virtual_table("CREATE VIRTUAL TABLE IF NOT EXISTS main.\"f g\" USING fts5(x)"),
            Some("f g".to_owned())
        );
        assert_eq!(created_virtual_table("CREATE TABLE f (x)"), None);
    }

    /// rvCD 1: a multi-row INSERT is read as its rows, a `)` or `,` in a
    /// string, a quoted name or a comment read as SQLite reads it, and its
    /// head and tail kept for each row's own INSERT.
    #[test]
    fn an_insert_is_read_as_its_rows_past_strings_names_and_comments() {
        let sql = "INSERT OR REPLACE INTO \"t\" (\"a)\", b) VALUES (1, 'x), (y'), /* ), ( */\n\
                   ([c],(2)) -- ),\n, (3, \")\") ON CONFLICT DO NOTHING;";
        let rows = insert_rows(sql).unwrap();
        assert_eq!(rows.head, "INSERT OR REPLACE INTO \"t\" (\"a)\", b) VALUES");
        assert_eq!(rows.rows, ["(1, 'x), (y')", "([c],(2))", "(3, \")\")"]);
        assert_eq!(rows.tail, " ON CONFLICT DO NOTHING;");
        assert_eq!(rows_inserted(sql), 3);
        assert_eq!(insert_or(sql), Some("REPLACE"));
        assert_eq!(insert_or("replace into t VALUES(1);"), Some("REPLACE"));
        assert_eq!(insert_or("INSERT OR \"x\" INTO t VALUES(1);"), None);
        assert_eq!(rows_inserted("INSERT INTO t SELECT * FROM u;"), 1);
        assert!(insert_rows("INSERT INTO t VALUES(1, 'a';").is_none());
    }
}
