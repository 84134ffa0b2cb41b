//! Reading SQL dumps: splitting them into statements and summarising them.
//!
//! Statements are split by [`d1_sql::statements`], with SQLite's own
//! completeness check, never with a home-made tokenizer: a `;` inside a
//! string, a comment or a trigger body does not end a statement, and SQLite is
//! the authority on that. Everything here is pure over a reader, so it is
//! tested on inline fixtures.

use std::collections::{BTreeMap, BTreeSet};
use std::io::BufRead;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result, bail};

use crate::app::KeyRecord;
use crate::statement::{
    MIGRATIONS_TABLE, Statements, column_list, created_object, insert_target, is_migrations_table,
    is_never_restored, is_rows_as_values, leading_word, rows_inserted, skip_trivia, split_insert,
    strip_keyword,
};
use d1_sql::statements::Wide;
/// What a dump contains, counted from the dump itself.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct DumpSummary {
    /// Rows per table: the rows of the dump's `INSERT` statements, by
    /// target table as SQLite resolves it (ASCII case aside, `main.` or
    /// not), named as its `CREATE TABLE` (or else its first `INSERT`) is.
    pub rows: BTreeMap<String, u64>,
    /// Every schema object the dump creates, as (kind, name).
    pub created: BTreeSet<(String, String)>,
    pub statements: u64,
    /// Names in the dump's `d1_migrations` rows, in id order.
    pub migrations: Vec<String>,
    /// The data-encryption key in force according to the dump, if it has one.
    pub encryption_key: Option<KeyFingerprint>,
    /// The tables with an `INSERT` that holds U+FFFD: D1's export writes
    /// each byte of text that is not UTF-8 so, and so only these can hold
    /// text its export replaced (a genuine U+FFFD, or one in the table's
    /// name, makes a table one too).
    pub holding_fffd: BTreeSet<String>,
    /// The tables with an `INSERT` that holds `replace(` with `'\n',char(10))`
    /// or `'\r',char(13))`: D1's export writes text with a line break so,
    /// and so only these can hold text whose `\n` (or `\r`) it turns into a
    /// line break too (text that holds those words makes a table one too).
    pub holding_line_breaks: BTreeSet<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct KeyFingerprint {
    pub key_id: String,
    pub fingerprint: String,
}

impl KeyFingerprint {
    /// A key as its row holds it, with any unprintable character (a line
    /// break, an escape code, a bidi override) written as U+FFFD
    /// ([`crate::names::unprintable`]): the manifest prints it,
    /// and holds none (`Manifest::validate`). The backup's and the
    /// target's keys are both read through here, so they compare alike.
    pub fn new(key_id: &str, fingerprint: &str) -> KeyFingerprint {
        let printable = |s: &str| s.replace(crate::names::unprintable, "\u{fffd}");
        KeyFingerprint {
            key_id: printable(key_id),
            fingerprint: printable(fingerprint),
        }
    }
}

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

/// `name` as `spelled` first had it, ASCII case aside, which SQLite reads
/// as the one table's; recorded so if it is the first.
fn spelled_once(spelled: &mut BTreeMap<String, String>, name: String) -> String {
    { spelled.entry(name.to_ascii_lowercase()) }
        .or_insert(name)
        .clone()
}

/// [`summarize`], a statement at a time, for a pass over the dump that
/// does something else as well.
pub struct Summarizer {
    summary: DumpSummary,
    bookkeeping: Bookkeeping,
    /// Each table's name as counted, by its name in lower case.
    spelled: BTreeMap<String, String>,
}

impl Summarizer {
    pub fn new(key: Option<&KeyRecord>) -> Summarizer {
        Summarizer {
            summary: DumpSummary::default(),
            bookkeeping: Bookkeeping {
                key: key.cloned(),
                ..Bookkeeping::default()
            },
            spelled: BTreeMap::new(),
        }
    }

    pub fn statement(&mut self, sql: &str) {
        let (summary, bookkeeping) = (&mut self.summary, &mut self.bookkeeping);
        summary.statements += 1;
        if let Some(table) = insert_target(sql) {
            let table = match summary.rows.contains_key(&table) {
                true => table,
                false => spelled_once(&mut self.spelled, table),
            };
            if sql.contains('\u{fffd}') && !summary.holding_fffd.contains(&table) {
                summary.holding_fffd.insert(table.clone());
            }
            // Read only until the table is known to hold one, and for the
            // escapes only when the statement has a `replace(` at all (a
            // dump's rows mostly have none: one search of each, not two).
            if !summary.holding_line_breaks.contains(&table)
                && sql.contains("replace(")
                && (sql.contains(",'\\n',char(10))") || sql.contains(",'\\r',char(13))"))
            {
                summary.holding_line_breaks.insert(table.clone());
            }
            if is_never_restored(&table) {
                return;
            }
            if bookkeeping.wants(&table) {
                bookkeeping.inserts.push(sql.to_owned());
            }
            *summary.rows.entry(table).or_default() += rows_inserted(sql);
        } else if let Some((kind, name)) = created_object(sql) {
            if kind == "table" && !is_never_restored(&name) {
                if bookkeeping.wants(&name) {
                    bookkeeping.creates.insert(canonical(&name), sql.to_owned());
                }
                let counted = spelled_once(&mut self.spelled, name.clone());
                summary.rows.entry(counted).or_default();
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

/// `table` as the bookkeeping keys it: wrangler's own table by its one
/// name, however the dump spells it (SQLite reads `"D1_Migrations"` as
/// `d1_migrations`).
fn canonical(table: &str) -> String {
    if is_migrations_table(table) {
        MIGRATIONS_TABLE.to_owned()
    } else {
        table.to_owned()
    }
}

impl Bookkeeping {
    fn wants(&self, table: &str) -> bool {
        is_migrations_table(table) || self.key.as_ref().is_some_and(|k| k.table == table)
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
                gate.run_checked(create).with_context(|| {
                    format!(
                        "replaying the dump's CREATE TABLE {}",
                        crate::names::shown_name(table)
                    )
                })?;
                known.insert(table);
            }
        }
        for (n, insert) in self.inserts.iter().enumerate() {
            let table = insert_target(insert).unwrap_or_default();
            if !known.contains(canonical(&table).as_str()) {
                // Rows of a table whose shape nothing tells: not reported.
                continue;
            }
            gate.run_checked(insert).with_context(|| {
                format!(
                    "replaying the dump's row {} of {} (its values are not shown)",
                    n + 1,
                    crate::names::shown_name(&table)
                )
            })?;
        }
        (summary.migrations, summary.encryption_key) = migrations_and_key(db, self.key.as_ref())?;
        Ok(())
    }
}

/// What a summary reports by content, read from a database holding the
/// dump's rows: the names in its `d1_migrations` rows, in id order, and
/// the data-encryption key in force under `key`. The dump's replay here and
/// verify's loaded database (`checks::row_check`) read them alike.
pub fn migrations_and_key(
    db: &rusqlite::Connection,
    key: Option<&KeyRecord>,
) -> Result<(Vec<String>, Option<KeyFingerprint>)> {
    let mut migrations = Vec::new();
    let kinds = crate::catalog::Kinds::read(db)?;
    // A `d1_migrations` of another shape than wrangler's (no `name` or `id`
    // column: another tool's) records no migration, as a key table of
    // another shape records no key; it is data like any other table. A row
    // whose name is not text (NULL) names no migration (rvAW).
    if kinds.stores_rows(MIGRATIONS_TABLE)
        && let Ok(mut stmt) = db.prepare("SELECT name FROM d1_migrations ORDER BY id")
    {
        migrations = { stmt.query_map([], |row| row.get::<_, rusqlite::types::Value>(0))? }
            .filter_map(|name| match name {
                Ok(rusqlite::types::Value::Text(name)) => Some(Ok(name)),
                Ok(_) => None,
                Err(e) => Some(Err(e)),
            })
            .collect::<rusqlite::Result<_>>()?;
    }
    let mut encryption_key = None;
    if let Some(key) = key
        && kinds.stores_rows(&key.table)
    {
        // A table of another shape than declared records no key.
        encryption_key = db
            .query_row(&key.select(), [], |row| {
                Ok(KeyFingerprint::new(
                    &row.get::<_, String>(0)?,
                    &row.get::<_, String>(1)?,
                ))
            })
            .ok();
    }
    Ok((migrations, encryption_key))
}

/// `d1_migrations` as wrangler creates it.
const D1_MIGRATIONS_DDL: &str = "CREATE TABLE d1_migrations(id INTEGER PRIMARY KEY \
     AUTOINCREMENT, name TEXT UNIQUE, applied_at TIMESTAMP DEFAULT CURRENT_TIMESTAMP NOT NULL);";

/// The first line a `wrangler d1 export` writes.
pub const D1_EXPORT_HEADER: &str = "PRAGMA defer_foreign_keys=TRUE;";

/// Refuses input that is plainly not a SQL dump, before anything reads it as one.
pub fn check_looks_like_sql(head: &[u8]) -> Result<()> {
    looks_like_sql(head, None)
}

/// [`check_looks_like_sql`] of the file at `file`: the command that
/// unpacks a compressed one names it and the .sql to write, so that it
/// works when pasted.
pub fn check_file_looks_like_sql(head: &[u8], file: &Path) -> Result<()> {
    looks_like_sql(head, Some(file))
}

/// Where a compressed `file` is best unpacked to: its name without the
/// compression's suffix and `.sql`, then `.sql` (`B.sql.gz` to `B.sql`,
/// the backup a manifest beside it describes), unless that is the file
/// itself or is there already (a gzip under a `.sql` name); then
/// `-unpacked.sql` after the stem, never over a file that is there.
fn unpacked_path(file: &Path) -> PathBuf {
    let name = crate::names::file_name(file);
    let stem = [".gz", ".bz2", ".xz", ".zip"]
        .iter()
        .find_map(|suffix| name.strip_suffix(suffix))
        .unwrap_or(&name);
    let stem = stem.strip_suffix(".sql").unwrap_or(stem);
    let first = file.with_file_name(format!("{stem}.sql"));
    if first != file && std::fs::symlink_metadata(&first).is_err() {
        return first;
    }
    (1..)
        .map(|n| match n {
            1 => file.with_file_name(format!("{stem}-unpacked.sql")),
            n => file.with_file_name(format!("{stem}-unpacked-{n}.sql")),
        })
        .find(|p| std::fs::symlink_metadata(p).is_err())
        .unwrap_or_default()
}

fn looks_like_sql(head: &[u8], file: Option<&Path>) -> Result<()> {
    if head.starts_with(b"SQLite format 3\0") {
        bail!(
            "this is a SQLite database file, not a SQL dump; \
             turn it into SQL with `sqlite3 FILE .dump` first"
        );
    }
    // A compressed or encrypted file under a name that says plain SQL: its
    // bytes would be read as text and fail on the first one. The command
    // writes to a name of its own (`gunzip -k` refuses one not ending in
    // .gz), and never over the file.
    let unpack = |kind: &str, tool: &str| {
        let (from, to) = match file {
            Some(file) => {
                let shown = |p: &Path| crate::wording::shell_word(&p.display().to_string());
                (shown(file), shown(&unpacked_path(file)))
            }
            None => ("FILE".to_owned(), "NEW.sql".to_owned()),
        };
        anyhow::anyhow!(
            "this file is {kind}, not a SQL dump; unpack it with `{tool} -c {from} > {to}`, \
             and give {to}"
        )
    };
    if head.starts_with(&[0x1f, 0x8b]) {
        return Err(unpack("gzip-compressed", "gunzip"));
    }
    if head.starts_with(b"BZh") && head.get(3).is_some_and(u8::is_ascii_digit) {
        return Err(unpack("bzip2-compressed", "bunzip2"));
    }
    if head.starts_with(&[0xfd, b'7', b'z', b'X', b'Z', 0]) {
        return Err(unpack("xz-compressed", "unxz"));
    }
    if head.starts_with(b"PK\x03\x04") {
        return Err(unpack("a zip archive", "unpack it with `unzip FILE`"));
    }
    if head.starts_with(&[0x28, 0xb5, 0x2f, 0xfd]) {
        bail!(
            "this file is zstd-compressed, but its name does not end in .sql.zst; rename it so \
             that it does (this tool reads .sql.zst as it is)"
        );
    }
    if head.starts_with(b"age-encryption.org/")
        || head.starts_with(b"-----BEGIN AGE ENCRYPTED FILE")
    {
        bail!(
            "this file is encrypted with age, but its name does not end in .sql.zst.age; rename \
             it so that it does, and pass --identity FILE"
        );
    }
    Ok(())
}

/// What a file holds, told by its first bytes whatever its name, when it
/// is a database, a backup or a secret (see [`held_by`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Held {
    /// A SQLite database file, such as the local D1's.
    Database,
    /// A SQLite write-ahead log (`-wal`): a database's latest pages.
    WriteAheadLog,
    /// A SQLite rollback journal (`-journal`): a database's pages as they
    /// were before a write.
    Journal,
    /// An age-encrypted file, as an encrypted backup is (and an identity
    /// encrypted with a passphrase).
    Encrypted,
    /// A zstd-compressed file (its first frame a skippable one too, as
    /// pzstd writes) or a gzip one: what it holds is in its plaintext's
    /// head.
    Compressed,
    /// A compressed file that cannot be checked: it holds compressed
    /// frames nested too deep, or stops unpacking before its end.
    Unchecked,
    /// A compressed file a layer of whose stream unpacks past the bound on
    /// what is read of one layer: too large to check, whatever it holds.
    TooLarge,
    /// A compressed file whose layers, over every pass of its check,
    /// unpack past the bound on the work of checking one file, no layer
    /// past its own bound: too large to check, whatever it holds.
    TooMuchWork,
    /// An archive, or a file compressed in a form not unpacked here: zip,
    /// tar (`ustar` at byte 257), 7z, xz or bzip2, told by its magic
    /// bytes. What it holds is not looked into. (Brotli has no magic
    /// bytes: a brotli file is not told.)
    Archive,
    /// A SQL dump: its first statement is the one `wrangler d1 export`
    /// (and `backup local`) writes, it starts as `sqlite3 .dump` does, or
    /// it is statements of SQL that insert rows.
    Dump,
    /// An age identity: a secret key (`AGE-SECRET-KEY-…`, as `keygen`
    /// writes it, or in lower case) or a plugin's (`AGE-PLUGIN-…`), which
    /// opens backups.
    Identity,
    /// A PEM private key (`-----BEGIN … PRIVATE KEY-----` and its body): a
    /// TLS, SSH or signing key.
    PrivateKey,
}

/// What a file whose first bytes are `head` holds, when it is a database,
/// a backup or a secret whatever its name: SQLite's header, a write-ahead
/// log's or a rollback journal's, age's, zstd's (a skippable frame's
/// too) or gzip's, an archive's ([`is_an_archive`]); else, read as text
/// (UTF-8, and UTF-16 or UTF-32 too when [`Wide`] tells it), a secret
/// ([`secret_in`]) or a dump ([`is_a_dump`]). `cut`:
/// the file is longer than `head`, so a statement `head` ends inside was
/// cut off by it. A few KiB are enough; what lies past them is not told.
pub fn held_by(head: &[u8], cut: bool) -> Option<Held> {
    const WAL: [[u8; 4]; 2] = [[0x37, 0x7f, 0x06, 0x82], [0x37, 0x7f, 0x06, 0x83]];
    const JOURNAL: [u8; 8] = [0xd9, 0xd5, 0x05, 0xf9, 0x20, 0xa1, 0x63, 0xd7];
    if head.starts_with(b"SQLite format 3\0") {
        return Some(Held::Database);
    }
    if WAL.iter().any(|magic| head.starts_with(magic)) {
        return Some(Held::WriteAheadLog);
    }
    if head.starts_with(&JOURNAL) {
        return Some(Held::Journal);
    }
    if head.starts_with(b"age-encryption.org/")
        || head.starts_with(b"-----BEGIN AGE ENCRYPTED FILE")
    {
        return Some(Held::Encrypted);
    }
    let skippable = head.len() >= 4 && head[0] & 0xf0 == 0x50 && head[1..4] == [0x2a, 0x4d, 0x18];
    if head.starts_with(&[0x28, 0xb5, 0x2f, 0xfd]) || skippable || head.starts_with(&[0x1f, 0x8b]) {
        return Some(Held::Compressed);
    }
    if is_an_archive(head) {
        return Some(Held::Archive);
    }
    // Read as wide text too when its first units tell it, never only so:
    // a few units of ASCII with NUL bytes (`\t\0\0\0…`) would hide what
    // the UTF-8 text after them holds.
    let wide = Wide::of(head).map(|wide| wide.decode(head));
    // A secret is looked for in the whole head, whatever bytes come
    // before it (a Latin-1 notes file, a key appended to an image); in a
    // head cut off from its file, not in its last bytes, where what looks
    // like a key may be the start of a longer word that is none: the file
    // read whole tells it.
    let tail = if cut { CUT_TAIL } else { 0 };
    let secret = [Some(head), wide.as_deref().map(str::as_bytes)]
        .into_iter()
        .flatten()
        .find_map(|text| secret_in(text, text.len().saturating_sub(tail)));
    if secret.is_some() {
        return secret;
    }
    // A dump, up to the first byte that is not UTF-8: a head cut inside a
    // character, or text followed by binary data.
    let utf8 = match std::str::from_utf8(head) {
        Ok(text) => text,
        Err(e) => std::str::from_utf8(&head[..e.valid_up_to()]).unwrap_or_default(),
    };
    let dump = [Some(utf8), wide.as_deref()].into_iter().flatten();
    { dump }
        .any(|text| is_a_dump(text, cut))
        .then_some(Held::Dump)
}

/// Whether a file whose first bytes are `head` is an archive or a file
/// compressed in a form [`held_by`] does not unpack, by its magic bytes:
/// zip (a local file header, an empty archive's end of central directory,
/// a spanned archive's marker), 7z, xz, bzip2 (`BZh` and a digit), or a tar (POSIX `ustar\0`
/// or GNU `ustar  \0` at byte 257).
fn is_an_archive(head: &[u8]) -> bool {
    const MAGIC: [&[u8]; 5] = [
        b"PK\x03\x04",
        b"PK\x05\x06",
        b"PK\x07\x08",
        &[0x37, 0x7a, 0xbc, 0xaf, 0x27, 0x1c],
        &[0xfd, 0x37, 0x7a, 0x58, 0x5a, 0x00],
    ];
    let bzip2 = head.starts_with(b"BZh") && head.get(3).is_some_and(u8::is_ascii_digit);
    let tar = head
        .get(257..)
        .is_some_and(|at| at.starts_with(b"ustar\0") || at.starts_with(b"ustar  \0"));
    tar || bzip2 || MAGIC.iter().any(|magic| head.starts_with(magic))
}

/// How many of a cut head's last bytes [`held_by`] looks for no secret's
/// start in: more than an age identity is long (77 characters for a
/// post-quantum one).
const CUT_TAIL: usize = 128;

/// The secret `text` holds, read as ASCII (any other byte parts words),
/// when it starts before its byte `before`: an age identity
/// ([`identity_at`]) or a PEM private key ([`private_key_at`]). What
/// follows `before` is read only as the end of a secret that starts
/// before it: a file read in pieces hands each piece with the start of
/// the next, and looks in the next for what starts after `before`.
pub fn secret_in(text: &[u8], before: usize) -> Option<Held> {
    let before = before.min(text.len());
    (0..before).find_map(|at| match text[at] {
        b'A' | b'a' if identity_at(&text[at..]) => Some(Held::Identity),
        b'-' if private_key_at(&text[at..]) => Some(Held::PrivateKey),
        _ => None,
    })
}

/// `text` of a wide encoding read as ASCII, a byte a unit: its ASCII
/// character, or NUL for any other, so that a unit's offset is the
/// byte's (what [`secret_in`] reads of wide text).
pub fn wide_as_ascii(wide: Wide, text: &[u8]) -> Vec<u8> {
    let (width, at) = wide.unit();
    let ascii = |unit: &[u8]| {
        let others = unit.iter().enumerate().filter(|(i, _)| *i != at);
        let c = unit[at];
        match c.is_ascii() && others.into_iter().all(|(_, b)| *b == 0) {
            true => c,
            false => 0,
        }
    };
    text.chunks_exact(width).map(ascii).collect()
}

/// Whether `text`, from where it is looked at, starts with an age
/// identity: `AGE-SECRET-KEY-` (X25519's, or another kind's such as
/// `AGE-SECRET-KEY-PQ-`) or `AGE-PLUGIN-<NAME>-`, then `1` and a key in
/// upper-case Bech32 whose checksum verifies (BIP 173, as `age`, rage and
/// the age package encode every identity, a plugin's too; BIP 350's
/// Bech32m is taken as well), 58 characters at least for a secret key
/// (an X25519 or a post-quantum one is 58), 7 for a plugin's; or a secret
/// key all in lower case (`age-secret-key-1…`), which rage reads as the
/// same key (Bech32 is case-insensitive as a whole). The key is the start
/// of the run of Bech32 after the `1` whose checksum verifies, so what
/// follows it does not matter (`Your key: AGE-SECRET-KEY-1….`, `…EXb`),
/// while what only shows the shape (`AGE-SECRET-KEY-1...`, 58 `X`s) or a
/// key with a character changed is none. A run a line break wraps (LF,
/// CRLF, or `\n`, `\r\n` escaped in a JSON or JS string) goes on after
/// it when it is shorter than a key (a secret key's 58; a plugin's has no
/// one length) and Bech32 follows. Only its first 2048 bytes are read, the
/// checksum kept as each character is: a file of `AGE-PLUGIN-` over and
/// over is read in linear time.
pub fn identity_at(text: &[u8]) -> bool {
    const LONGEST: usize = 2048;
    const HRP_LONGEST: usize = 128;
    let lower = text.starts_with(b"age-secret-key-");
    let (least, wraps) = match text {
        _ if lower || text.starts_with(b"AGE-SECRET-KEY-") => (58, 58),
        _ if text.starts_with(b"AGE-PLUGIN-") => (7, LONGEST),
        _ => return false,
    };
    let text = &text[..text.len().min(LONGEST)];
    let word = |b: &u8| b.is_ascii_alphanumeric() || b"-._+".contains(b);
    let hrp_end = { text.iter().take(HRP_LONGEST) }
        .position(|b| !word(b))
        .unwrap_or(text.len().min(HRP_LONGEST));
    // The `1` ends a part that ends with `-`, in the word's first bytes
    // (a plugin's name is short): one that a key follows is the
    // identity's.
    let key_after = |one: usize| {
        let (hrp, data) = (&text[..one], &text[one + 1..]);
        let one_case = !lower || !hrp.iter().any(u8::is_ascii_uppercase);
        one_case && bech32_key(hrp, data, lower, least, wraps)
    };
    (1..hrp_end)
        .filter(|&i| text[i] == b'1' && text[i - 1] == b'-')
        .any(key_after)
}

/// Whether `data` starts with a key of `hrp`, as [`identity_at`] reads
/// it: at least `least` Bech32 characters ([`bech32_run`]) whose checksum
/// with `hrp` verifies. A run shorter than `least` is told from the
/// characters alone, before the checksum of `hrp` is reckoned.
fn bech32_key(hrp: &[u8], data: &[u8], lower: bool, least: usize, wraps: usize) -> bool {
    const BECH32M: u32 = 0x2bc8_30a3;
    if bech32_run(data, lower, wraps).nth(least - 1).is_none() {
        return false;
    }
    let hrp = hrp.iter().map(u8::to_ascii_lowercase);
    let expanded = { hrp.clone().map(|c| c >> 5) }
        .chain([0])
        .chain(hrp.map(|c| c & 31));
    let mut checksum = expanded.map(usize::from).fold(1, bech32_step);
    bech32_run(data, lower, wraps).enumerate().any(|(n, v)| {
        checksum = bech32_step(checksum, v);
        n + 1 >= least && (checksum == 1 || checksum == BECH32M)
    })
}

/// The values of the run of Bech32 characters `data` starts with, all
/// `lower` case or all upper, read on after a line break (LF, CRLF, or
/// `\n`, `\r\n` escaped in a string) that Bech32 follows while fewer
/// than `wraps` are read.
fn bech32_run(data: &[u8], lower: bool, wraps: usize) -> impl Iterator<Item = usize> + '_ {
    const BECH32: &[u8] = b"qpzry9x8gf2tvdw0s3jn54khce6mua7l";
    let value = move |b: u8| match b.is_ascii_uppercase() == lower && b.is_ascii_alphabetic() {
        true => None,
        false => BECH32.iter().position(|c| *c == b.to_ascii_lowercase()),
    };
    let (mut at, mut read) = (0, 0);
    std::iter::from_fn(move || {
        let rest = &data[at.min(data.len())..];
        let eol = [&b"\r\n"[..], b"\n", b"\\r\\n", b"\\n"]
            .into_iter()
            .find(|eol| read < wraps && rest.starts_with(eol))
            .map_or(0, <[u8]>::len);
        let v = rest.get(eol).and_then(|b| value(*b))?;
        (at, read) = (at + eol + 1, read + 1);
        Some(v)
    })
}

/// One step of Bech32's checksum (BIP 173's polymod): `checksum` after
/// the 5-bit `value`.
fn bech32_step(checksum: u32, value: usize) -> u32 {
    const GENERATOR: [u32; 5] = [
        0x3b6a_57b2,
        0x2650_8e6d,
        0x1ea1_19fa,
        0x3d42_33dd,
        0x2a14_62b3,
    ];
    let top = checksum >> 25;
    let next = ((checksum & 0x1ff_ffff) << 5) ^ value as u32;
    (0..5)
        .filter(|i| top >> i & 1 == 1)
        .fold(next, |c, i| c ^ GENERATOR[i])
}

/// Whether `text` starts with a PEM private key: `-----BEGIN `, a label
/// that names one (`PRIVATE KEY`, `RSA PRIVATE KEY`, `EC PRIVATE KEY`,
/// `OPENSSH PRIVATE KEY`, `ENCRYPTED PRIVATE KEY`, `PGP PRIVATE KEY
/// BLOCK`…), `-----`, then after line breaks (or `\n` escaped in a
/// string, as a JSON service account holds one) a header line (the legacy
/// `Proc-Type: 4,ENCRYPTED`) or at least 20 characters of base64: a page
/// that shows only the markers (`...`, `<your key here>`) holds none. A
/// public key or a certificate is no secret.
pub fn private_key_at(text: &[u8]) -> bool {
    let Some(rest) = text.strip_prefix(b"-----BEGIN ") else {
        return false;
    };
    let label_len = rest.iter().take(40).position(|b| *b == b'-');
    let Some((label, rest)) = label_len.map(|n| rest.split_at(n)) else {
        return false;
    };
    let named = label.windows(11).any(|w| w == b"PRIVATE KEY")
        && label
            .iter()
            .all(|b| b.is_ascii_uppercase() || b" 0123456789".contains(b));
    let Some(mut body) = rest.strip_prefix(b"-----").filter(|_| named) else {
        return false;
    };
    loop {
        body = match body {
            [b' ' | b'\t' | b'\r' | b'\n', rest @ ..] => rest,
            [b'\\', rest @ ..] if rest.starts_with(b"\\") => rest,
            [b'\\', b'n' | b'r', rest @ ..] => rest,
            _ => break,
        };
    }
    let header = body
        .iter()
        .position(|b| !(b.is_ascii_alphanumeric() || *b == b'-'));
    if header.is_some_and(|n| n > 0 && body[n..].starts_with(b": ")) {
        return true;
    }
    let base64 = |b: &u8| b.is_ascii_alphanumeric() || b"+/".contains(b);
    body.iter().take(20).filter(|b| base64(b)).count() == 20
}

/// Whether `text` starts as a dump, by its statements as this tool's
/// reader splits them (after a byte order mark, blank lines and comments):
/// the first is the one `wrangler d1 export` writes, or the first two are
/// `sqlite3 .dump`'s; or each starts as a dump's statements do
/// ([`starts_as_a_dump_statement`]) up to one that inserts rows as
/// values, or, when `cut` (`text` is the head of a longer file, which
/// cut off a long row), up to the end of `text` inside one that has
/// reached its values ([`starts_rows_as_values`]). A whole file that ends
/// inside such a statement (a query template, `VALUES (?, ?)`) is not a
/// dump, nor is a schema of `CREATE` statements alone, nor a site's
/// HTML, JavaScript, CSS, JSON or prose.
pub fn is_a_dump(text: &str, cut: bool) -> bool {
    let mut reader = Statements::new(text.as_bytes());
    let mut first = String::new();
    for (n, statement) in reader.by_ref().map_while(Result::ok).enumerate() {
        let sql = skip_trivia(&statement.sql);
        let is = |sql: &str, wanted: &str| sql.eq_ignore_ascii_case(wanted);
        match n {
            0 if is(sql, D1_EXPORT_HEADER) => return true,
            0 => first = sql.to_owned(),
            1 if is(&first, "PRAGMA foreign_keys=OFF;") && is(sql, "BEGIN TRANSACTION;") => {
                return true;
            }
            _ => {}
        }
        if !starts_as_a_dump_statement(sql) {
            return false;
        }
        if is_rows_as_values(sql) {
            return true;
        }
    }
    cut && reader.cut_off().is_some_and(starts_rows_as_values)
}

/// Whether `sql`, a statement that the text ends inside, has reached its
/// rows: `INSERT` (`OR …`) or `REPLACE`, `INTO name`, its columns if it
/// names them, then `VALUES (`.
fn starts_rows_as_values(sql: &str) -> bool {
    let Some((_, rest)) = split_insert(skip_trivia(sql)) else {
        return false;
    };
    let rest = column_list(rest).map_or(rest, |(_, after)| after);
    strip_keyword(rest, "VALUES").is_some_and(|rest| skip_trivia(rest).starts_with('('))
}

/// Whether `sql` starts as a dump's statements do, by its first two words:
/// `PRAGMA x`, `BEGIN` (`TRANSACTION`…), `CREATE TABLE` (`INDEX`, `VIEW`,
/// `TRIGGER`…), `DROP TABLE`…, `DELETE FROM`, `INSERT INTO` (`OR`),
/// `REPLACE INTO`; prose that starts with one of those verbs does not.
fn starts_as_a_dump_statement(sql: &str) -> bool {
    let first = leading_word(sql);
    let rest = skip_trivia(&skip_trivia(sql)[first.len()..]);
    let second = leading_word(rest).to_ascii_uppercase();
    let then = |words: &[&str]| words.contains(&second.as_str());
    match first.to_ascii_uppercase().as_str() {
        "PRAGMA" => !second.is_empty(),
        "BEGIN" => {
            rest.starts_with(';') || then(&["TRANSACTION", "DEFERRED", "IMMEDIATE", "EXCLUSIVE"])
        }
        "CREATE" => then(&[
            "TABLE",
            "INDEX",
            "UNIQUE",
            "VIEW",
            "TRIGGER",
            "TEMP",
            "TEMPORARY",
            "VIRTUAL",
        ]),
        "DROP" => then(&["TABLE", "INDEX", "VIEW", "TRIGGER"]),
        "DELETE" => then(&["FROM"]),
        "INSERT" => then(&["INTO", "OR"]),
        "REPLACE" => then(&["INTO"]),
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A key id read from the database prints as one plain token: a line
    /// break, an escape code or a bidi override becomes U+FFFD, and plain
    /// text is kept as it is.
    #[test]
    fn a_key_id_prints_as_itself_or_with_replacement_characters() {
        let k = KeyFingerprint::new("dek-\u{202e}10-6202\n", "ab\u{200b}cd");
        assert_eq!(k.key_id, "dek-\u{fffd}10-6202\u{fffd}");
        assert_eq!(k.fingerprint, "ab\u{fffd}cd");
        assert_eq!(
            KeyFingerprint::new("dek-2026-01", "ab").key_id,
            "dek-2026-01"
        );
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

    /// The tables whose rows hold U+FFFD (where D1's export wrote text
    /// that is not UTF-8), not those whose schema or other text does.
    #[test]
    fn the_summary_names_the_tables_whose_rows_hold_u_fffd() {
        let dump = "PRAGMA defer_foreign_keys=TRUE;\n\
            CREATE TABLE notes (id INTEGER PRIMARY KEY, body TEXT DEFAULT '\u{fffd}');\n\
            INSERT INTO \"notes\" VALUES(1,'caf\u{e9}');\n\
            CREATE TABLE names (id INTEGER PRIMARY KEY, name TEXT);\n\
            INSERT INTO \"names\" VALUES(1,'plain');\n\
            INSERT INTO \"names\" VALUES(2,'a\u{fffd}b');\n\
            INSERT INTO \"names\" VALUES(3,'\u{fffd}');\n\
            CREATE TABLE \"t\u{fffd}\" (x);\n\
            INSERT INTO \"t\u{fffd}\" VALUES(1);\n";
        let summary = summarize(dump.as_bytes(), &BTreeMap::new(), None).unwrap();
        let names: Vec<&str> = summary.holding_fffd.iter().map(String::as_str).collect();
        assert_eq!(names, ["names", "t\u{fffd}"]);
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
    fn a_compressed_or_encrypted_file_named_as_sql_is_named_for_what_it_is() {
        let said = |head: &[u8]| check_looks_like_sql(head).unwrap_err().to_string();
        assert!(said(&[0x1f, 0x8b, 8, 0]).contains("gzip-compressed"));
        assert!(said(&[0x1f, 0x8b, 8, 0]).contains("`gunzip -c FILE > NEW.sql`"));
        assert!(said(b"BZh91AY&SY").contains("bzip2"));
        assert!(said(&[0xfd, b'7', b'z', b'X', b'Z', 0, 0]).contains("xz"));
        assert!(said(b"PK\x03\x04\x14\0").contains("zip archive"));
        assert!(said(&[0x28, 0xb5, 0x2f, 0xfd, 0]).contains("end in .sql.zst"));
        assert!(said(b"age-encryption.org/v1\n-> X25519").contains("--identity FILE"));
        // SQL, whatever it starts with, passes.
        for sql in [
            &b"PRAGMA defer_foreign_keys=TRUE;\n"[..],
            b"BEGIN;",
            b"-- PK",
            b"",
        ] {
            check_looks_like_sql(sql).unwrap();
        }
    }

    #[test]
    fn sqlite_database_files_are_not_dumps() {
        let err = check_looks_like_sql(b"SQLite format 3\0rest").unwrap_err();
        assert!(err.to_string().contains("sqlite3 FILE .dump"));
        check_looks_like_sql(D1_EXPORT_HEADER.as_bytes()).unwrap();
    }

    /// A database, its log or journal, an encrypted or compressed file and
    /// a dump are told by their first bytes; a site's files are not.
    /// An archive, or a file compressed in a form not unpacked, is told by
    /// its magic bytes; a tar by `ustar` at byte 257 (POSIX and GNU). Text
    /// that says `ustar` there, or `BZh` without a digit, is not one.
    #[test]
    fn an_archive_is_told_by_its_magic_bytes() {
        let tar = |magic: &[u8]| [&[b'a'; 257][..], magic, &[0; 8]].concat();
        for head in [
            &b"PK\x03\x04\x14\0"[..],
            b"PK\x05\x06\0\0",
            b"PK\x07\x08PK\x03\x04",
            &[0x37, 0x7a, 0xbc, 0xaf, 0x27, 0x1c, 0, 4],
            &[0xfd, b'7', b'z', b'X', b'Z', 0, 0],
            b"BZh91AY&SY",
            &tar(b"ustar\x0000"),
            &tar(b"ustar  \0"),
        ] {
            assert_eq!(held_by(head, false), Some(Held::Archive), "{head:?}");
        }
        for text in [
            &tar(b"ustar is a tar format")[..],
            b"BZh is bzip2's magic",
            b"PK",
        ] {
            assert_eq!(held_by(text, false), None, "{text:?}");
        }
    }

    #[test]
    fn what_a_file_holds_is_told_by_its_first_bytes() {
        let cases: [(&[u8], Option<Held>); 13] = [
            (b"SQLite format 3\0\x10\0", Some(Held::Database)),
            (
                &[0x37, 0x7f, 0x06, 0x82, 0, 0x2d],
                Some(Held::WriteAheadLog),
            ),
            (
                &[0x37, 0x7f, 0x06, 0x83, 0, 0x2d],
                Some(Held::WriteAheadLog),
            ),
            (
                &[0xd9, 0xd5, 0x05, 0xf9, 0x20, 0xa1, 0x63, 0xd7, 0],
                Some(Held::Journal),
            ),
            (
                b"age-encryption.org/v1\n-> X25519 x\n",
                Some(Held::Encrypted),
            ),
            (
                b"-----BEGIN AGE ENCRYPTED FILE-----\n",
                Some(Held::Encrypted),
            ),
            // An identity under a passphrase, as `age -p` writes it.
            (
                b"age-encryption.org/v1\n-> scrypt c2FsdA 18\n",
                Some(Held::Encrypted),
            ),
            (&[0x28, 0xb5, 0x2f, 0xfd, 0x24], Some(Held::Compressed)),
            (
                b"PRAGMA defer_foreign_keys=TRUE;\nCREATE TABLE t(x);\n",
                Some(Held::Dump),
            ),
            (
                b"\xef\xbb\xbf\r\n\n  pragma DEFER_FOREIGN_KEYS=true;\n",
                Some(Held::Dump),
            ),
            (
                b"PRAGMA foreign_keys=OFF;\nBEGIN TRANSACTION;\nCOMMIT;\n",
                Some(Held::Dump),
            ),
            (b"PRAGMA foreign_keys=OFF;\nSELECT 1;\n", None),
            (b"PRAGMA defer_foreign_keys=TRUE", None),
        ];
        for (head, held) in cases {
            assert_eq!(
                held_by(head, false),
                held,
                "{:?}",
                String::from_utf8_lossy(head)
            );
        }
        for site in [
            &b"<!doctype html><h1>qbtime</h1>\n"[..],
            b"const rows = []; // PRAGMA defer_foreign_keys=TRUE;\n",
            b"\x89PNG\r\n\x1a\n\0\0\0\rIHDR",
            b"\xff\xd8\xff\xe0\0\x10JFIF",
            b"",
        ] {
            assert_eq!(
                held_by(site, false),
                None,
                "{:?}",
                String::from_utf8_lossy(site)
            );
        }
    }

    /// Built from halves, as every identity in this repository's sources
    /// is: the pre-commit hook warns of one git tracks whole
    /// (`commands::hooks::tests::no_tracked_file_holds_an_identity_whole`).
    const KEY: &str = concat!(
        "AGE-SECRET-KEY-1",
        "GFPYYSJZGFPYYSJZGFPYYSJZGFPYYSJZGFPYYSJZGFPYYSJZGFPQ4EGAEX"
    );

    /// A post-quantum key and a plugin's identity, their checksums right.
    const PQ: &str = concat!(
        "AGE-SECRET-KEY-PQ-1",
        "GFPYYSJZGFPYYSJZGFPYYSJZGFPYYSJZGFPYYSJZGFPYYSJZGFPQ0HGUHW"
    );
    const PLUGIN: &str = concat!("AGE-PLUGIN-", "YUBIKEY-1QYQ3Z6W5QXSQZ8AWMCVY82PC7");

    fn utf16(text: &str, big_endian: bool) -> Vec<u8> {
        let units = std::iter::once(0xfeff).chain(text.encode_utf16());
        let bytes = |u: u16| match big_endian {
            true => u.to_be_bytes(),
            false => u.to_le_bytes(),
        };
        units.flat_map(bytes).collect()
    }

    /// An age identity is told wherever it is in the text, as a key: what
    /// only shows its shape is not one.
    #[test]
    fn an_age_identity_is_told_by_its_key_not_by_its_shape() {
        let keygen = format!("# created: 2026-12-04T21:00:00Z\n# public key: age1x\n{KEY}\n");
        let plugin = format!("{PLUGIN}\n");
        let pq = format!("{PQ}\n");
        for text in [
            keygen.clone(),
            format!("{KEY}\n"),
            format!("\u{feff}{}", keygen.replace('\n', "\r\n")),
            format!("const k = \"{KEY}\";"),
            plugin,
            pq.clone(),
            KEY.to_ascii_lowercase(),
            format!("k = '{}'", pq.to_ascii_lowercase()),
        ] {
            assert_eq!(
                held_by(text.as_bytes(), false),
                Some(Held::Identity),
                "{text}"
            );
        }
        for wide in [utf16(&keygen, false), utf16(&keygen, true)] {
            assert_eq!(held_by(&wide, false), Some(Held::Identity));
        }
        for shape in [
            "<p>AGE-SECRET-KEY-1... after # public key: age1...</p>",
            &KEY[..40],
            "AGE-PLUGIN-YUBIKEY-1QYQ",
            concat!(
                "AGE-SECRET-KEY-1",
                "GFPYYSJZGFPYYSJZGFPYYSJZGFPYYSJZGFPYYSJZGFPYYSJZGFPQ4EGAEB"
            ),
            "<p>age-secret-key-1... after # public key: age1...</p>",
            &KEY.to_ascii_lowercase()[..40],
            concat!(
                "AGE-SECRET-KEY-1",
                "gfpyysjzgfpyysjzgfpyysjzgfpyysjzgfpyysjzgfpyysjzgfpq4egaex"
            ),
            concat!("age-plugin-", "yubikey-1qyq3z6w5qxsqz8awmcv0na"),
            concat!("AGE-PLUGIN-", "YUBIKEY-1QYQ3Z6W5QXSQZ8AWMCV0NA"),
            &format!("AGE-SECRET-KEY-1{}", "X".repeat(58)),
            &format!("AGE-SECRET-KEY-PQ-1{}", &KEY[16..]),
            &KEY.replace("4EGAEX", "4EGAEQ"),
            &KEY.replace("SJZGFPQ", "SJZGFPP"),
        ] {
            assert_eq!(held_by(shape.as_bytes(), false), None, "{shape}");
        }
    }

    /// An age identity that punctuation ends (a full stop, a comma, `_`,
    /// `+`, `-`) is told, in either case, as the pre-commit hook's grep
    /// tells it; so is one a letter or a digit follows, Bech32 or not
    /// (`B`, `I`, `O`, `1`): the key is the run's start its checksum
    /// verifies.
    #[test]
    fn an_age_identity_that_punctuation_or_a_letter_ends_is_told() {
        let lower = KEY.to_ascii_lowercase();
        for key in [KEY, &lower, PQ, PLUGIN] {
            for end in [".", "_", "+", "-", ",", ".\n", "._x", "-more1word"] {
                let text = format!("Your key: {key}{end}");
                assert_eq!(
                    held_by(text.as_bytes(), false),
                    Some(Held::Identity),
                    "{text}"
                );
            }
            for end in ["B", "b", "1", "I.", "O", "Q", "q", "QQQQQQ7"] {
                let text = format!("Your key: {key}{end}\n");
                let held = held_by(text.as_bytes(), false);
                assert_eq!(held, Some(Held::Identity), "{text}");
            }
        }
        let short = format!("{}.\n", &KEY[..60]);
        assert_eq!(held_by(short.as_bytes(), false), None);
        let long = format!("{KEY}.{}\n", "x".repeat(4096));
        assert_eq!(held_by(long.as_bytes(), false), Some(Held::Identity));
    }

    /// An age identity a line break wraps (LF, CRLF, `\n` or `\r\n`
    /// escaped in a JSON or JS string), once or more, is told when the
    /// run before each break is shorter than a key: the checksum tells it.
    /// A placeholder or a key with a character changed, wrapped or not, is
    /// none, nor are lines that only start as a key.
    #[test]
    fn an_age_identity_a_line_break_wraps_is_told() {
        let lower = KEY.to_ascii_lowercase();
        for key in [KEY, &lower, PQ, PLUGIN] {
            for eol in ["\n", "\r\n", "\\n", "\\r\\n"] {
                let one = key.find("-1").unwrap() + 2;
                for at in [one, 30, 40, key.len() - 1] {
                    let text = format!("k = \"{}{eol}{}\";\n", &key[..at], &key[at..]);
                    let held = held_by(text.as_bytes(), false);
                    assert_eq!(held, Some(Held::Identity), "{text}");
                }
                let twice = format!("{}{eol}{}{eol}{}", &key[..25], &key[25..45], &key[45..]);
                let held = held_by(twice.as_bytes(), false);
                assert_eq!(held, Some(Held::Identity), "{twice}");
            }
        }
        let typo = KEY.replace("SJZGFPQ", "SJZGFPP");
        let placeholder = format!("AGE-SECRET-KEY-1{}", "X".repeat(58));
        let shape = "AGE-SECRET-KEY-1... is the line age-keygen writes";
        for key in [&typo, &placeholder, shape] {
            for text in [
                format!("{key}\n"),
                format!("{}\n{}\n", &key[..30], &key[30..]),
                format!("{}\\n{}\n", &key[..17], &key[17..]),
            ] {
                assert_eq!(held_by(text.as_bytes(), false), None, "{text}");
            }
        }
        let lines = format!("{}\nQQQQ\nqqqq\n{}\n", &KEY[..40], &KEY[40..]);
        assert_eq!(held_by(lines.as_bytes(), false), None, "{lines}");
    }

    /// A PEM private key of each kind is told, with LF or CRLF, escaped in
    /// a JSON string, encrypted, in UTF-16; a public key, a certificate
    /// and what shows only the markers are not.
    #[test]
    fn a_pem_private_key_is_told_by_its_body_not_by_its_markers() {
        let body = "MIIEvQIBADANBgkqhkiG9w0BAQEFAASCBKcwggSjAgEAAoIBAQDHe3v9q8Xb2pLr";
        let pem = |label: &str, eol: &str| {
            format!("-----BEGIN {label}-----{eol}{body}{eol}-----END {label}-----{eol}")
        };
        for label in [
            "PRIVATE KEY",
            "RSA PRIVATE KEY",
            "EC PRIVATE KEY",
            "DSA PRIVATE KEY",
            "OPENSSH PRIVATE KEY",
            "ENCRYPTED PRIVATE KEY",
        ] {
            for text in [
                pem(label, "\n"),
                pem(label, "\r\n"),
                format!("{{\"private_key\": \"{}\"}}", pem(label, "\\n")),
                format!("k = '{}'", pem(label, "\\\\n")),
            ] {
                let head = text.as_bytes();
                assert_eq!(held_by(head, false), Some(Held::PrivateKey), "{text}");
            }
            assert_eq!(
                held_by(&utf16(&pem(label, "\n"), true), false),
                Some(Held::PrivateKey)
            );
        }
        let legacy = concat!(
            "-----BEGIN RSA PRIVATE ",
            "KEY-----\nProc-Type: 4,ENCRYPTED\nDEK-Info: x\n"
        );
        let pgp = concat!(
            "-----BEGIN PGP PRIVATE ",
            "KEY BLOCK-----\nVersion: GnuPG v2\n\nlQOYBF"
        );
        for text in [legacy, pgp] {
            assert_eq!(held_by(text.as_bytes(), false), Some(Held::PrivateKey));
        }
        for text in [
            pem("PUBLIC KEY", "\n"),
            pem("RSA PUBLIC KEY", "\n"),
            pem("CERTIFICATE", "\n"),
            pem("CERTIFICATE REQUEST", "\n"),
            "-----BEGIN PRIVATE KEY-----\n...\n-----END PRIVATE KEY-----\n".to_owned(),
            "-----BEGIN PRIVATE KEY----- <your key here>".to_owned(),
            "-----BEGIN PRIVATE KEY-----\nMIIEvQ...\n".to_owned(),
            "<p>Paste your -----BEGIN RSA PRIVATE KEY----- block here</p>".to_owned(),
            format!("-----BEGIN private key-----\n{body}\n"),
        ] {
            assert_eq!(held_by(text.as_bytes(), false), None, "{text}");
        }
    }

    /// A file of prefixes over and over, or of one word, holds no key. Its
    /// 8 MiB are read in linear time: a reading quadratic in them would not
    /// end within the suite's run, and no clock is asserted here (a loaded
    /// machine made a 2 s limit fail; speed belongs in the benchmark).
    #[test]
    fn a_file_of_key_prefixes_is_no_key_and_read_at_once() {
        for prefix in [
            "AGE-PLUGIN-",
            "AGE-SECRET-KEY-1",
            concat!("AGE-SECRET-KEY-1", "QQ\n"),
            "AGE-PLUGIN-X-1Q\\n",
            "-----BEGIN PRIVATE KEY-----",
        ] {
            let text = prefix.repeat((8 << 20) / prefix.len());
            assert_eq!(secret_in(text.as_bytes(), text.len()), None, "{prefix}");
        }
    }

    /// A secret that starts at or past `before` is left to the next
    /// piece, one before it is told whole from what follows.
    #[test]
    fn a_secret_is_told_when_it_starts_before_the_bound() {
        let text = format!("{}{KEY}\n", " ".repeat(100));
        assert_eq!(secret_in(text.as_bytes(), 101), Some(Held::Identity));
        assert_eq!(secret_in(text.as_bytes(), 100), None);
        assert_eq!(secret_in(text.as_bytes(), 1 << 20), Some(Held::Identity));
        let wide = utf16(&text, false);
        let ascii = wide_as_ascii(Wide::Utf16Le, &wide);
        assert_eq!(ascii.len(), text.len() + 1);
        assert_eq!(secret_in(&ascii, 102), Some(Held::Identity));
        assert_eq!(secret_in(&ascii, 101), None);
    }

    /// An identity is told anywhere in the head, after bytes that are not
    /// UTF-8 too: a Latin-1 notes file, a key appended to a binary file,
    /// text then a byte of binary. A dump is still told by the text before
    /// such a byte.
    #[test]
    fn an_age_identity_after_a_byte_that_is_not_utf8_is_told() {
        let latin1 = [&b"# cl\xe9 de sauvegarde\n"[..], KEY.as_bytes(), b"\n"].concat();
        let png = [&b"\x89PNG\r\n\x1a\n\0\0\0\rIHDR"[..], KEY.as_bytes()].concat();
        let after_binary = [&b"notes\n\xff\xfe\x00\x01"[..], b"\n", KEY.as_bytes()].concat();
        for head in [latin1, png, after_binary] {
            let text = String::from_utf8_lossy(&head).into_owned();
            assert_eq!(held_by(&head, false), Some(Held::Identity), "{text:?}");
        }
        let dump = [
            &b"PRAGMA defer_foreign_keys=TRUE;\nINSERT INTO t VALUES('caf"[..],
            b"\xc3",
        ]
        .concat();
        assert_eq!(held_by(&dump, true), Some(Held::Dump));
        let not = [&b"# cl\xe9\n"[..], &KEY.as_bytes()[..40]].concat();
        assert_eq!(held_by(&not, true), None);
    }

    /// A dump without a header whose first row is longer than the head
    /// is told by that row's start, once it has reached `VALUES(`: the
    /// head cuts it off. A cut-off statement that has not, or that is not
    /// rows as values, is not a dump.
    #[test]
    fn a_dump_whose_head_cuts_off_its_first_row_is_told() {
        let long = "a".repeat(5000);
        let cut = |text: String| text.as_bytes()[..4096].to_vec();
        for dump in [
            cut(format!(
                "CREATE TABLE notes(id INTEGER PRIMARY KEY, body TEXT);\n\
                 INSERT INTO notes VALUES(1,'{long}');\nINSERT INTO notes VALUES(2,'x');\n"
            )),
            cut(format!(
                "INSERT INTO \"notes\" (\"id\",\"body\") VALUES(1,'{long}');\n"
            )),
            cut(format!(
                "-- rows\nBEGIN;\nreplace into [notes] values (1, '{long}');\n"
            )),
            b"CREATE TABLE t(x);\nINSERT OR IGNORE INTO main.t(x)\nVALUES\n(".to_vec(),
        ] {
            let text = String::from_utf8_lossy(&dump[..dump.len().min(120)]).into_owned();
            assert_eq!(held_by(&dump, true), Some(Held::Dump), "{text:?}");
        }
        for not in [
            format!("CREATE TABLE t(x);\nINSERT INTO t SELECT '{long}'"),
            "CREATE TABLE t(x);\nINSERT INTO t VALUES".to_owned(),
            "CREATE TABLE t(x);\nINSERT INTO t (x".to_owned(),
            format!("SELECT 1;\nINSERT INTO t VALUES(1,'{long}'"),
            format!("Insert into the form values (your name, '{long}'"),
            "PRAGMA defer_foreign_keys=TRUE".to_owned(),
        ] {
            assert_eq!(
                held_by(not.as_bytes(), true),
                None,
                "{:?}",
                &not[..not.len().min(120)]
            );
        }
    }

    /// An identity is told in the head read as UTF-8 too when the head
    /// also reads as wide text: units of ASCII with NUL bytes before it
    /// (tabs then a letter, as UTF-32; letters as UTF-16) do not hide the
    /// key after them.
    #[test]
    fn an_age_identity_after_text_that_reads_as_wide_is_told() {
        let tabs = b"\t\0\0\0\t\0\0\0\t\0\0\0A\0\0\0\n";
        let lines = b"\n\0\0\0\n\0\0\0\n\0\0\0;\0\0\0\n";
        for before in [&tabs[..], lines, b"A\0B\0C\0D\0\n"] {
            let head = [before, KEY.as_bytes(), b"\n"].concat();
            assert!(Wide::of(&head).is_some(), "{before:?}");
            assert_eq!(held_by(&head, false), Some(Held::Identity), "{before:?}");
        }
    }

    /// A file that is whole in the head is not told a dump by a statement
    /// it ends inside: a site's query template (`VALUES (?, ?)` with no
    /// `;`) is not one. Only a head cut from a longer file is.
    #[test]
    fn a_whole_file_that_ends_inside_an_insert_is_not_a_dump() {
        for template in [
            "INSERT INTO users (name, email) VALUES (?, ?)",
            "-- queries\nINSERT INTO users (name, email) VALUES (:name, :email)\n",
            "CREATE TABLE t(x);\nINSERT INTO t VALUES ($1",
        ] {
            assert_eq!(held_by(template.as_bytes(), false), None, "{template:?}");
            let cut = held_by(template.as_bytes(), true);
            assert_eq!(cut, Some(Held::Dump), "{template:?}");
        }
    }

    /// UTF-16 or UTF-32 without a byte order mark is told by the NUL
    /// bytes between its ASCII characters when it starts with a line
    /// break too; binary data that starts with one is not text.
    #[test]
    fn wide_text_without_a_mark_is_told_when_it_starts_with_a_line_break() {
        let wide = |text: &str, width: usize, big: bool| -> Vec<u8> {
            text.chars()
                .flat_map(|c| {
                    let c = c as u32;
                    let bytes = match big {
                        true => c.to_be_bytes().to_vec(),
                        false => c.to_le_bytes().to_vec(),
                    };
                    match big {
                        true => bytes[4 - width..].to_vec(),
                        false => bytes[..width].to_vec(),
                    }
                })
                .collect()
        };
        let keyfile = format!("\r\n{KEY}\r\n");
        let dump =
            "\nPRAGMA defer_foreign_keys=TRUE;\nCREATE TABLE t(x);\nINSERT INTO t VALUES(1);\n";
        for (width, big) in [(2, false), (2, true), (4, false), (4, true)] {
            assert_eq!(
                held_by(&wide(&keyfile, width, big), false),
                Some(Held::Identity)
            );
            assert_eq!(held_by(&wide(dump, width, big), false), Some(Held::Dump));
            assert_eq!(
                held_by(&wide(&format!("\t {dump}"), width, big), false),
                Some(Held::Dump)
            );
        }
        for binary in [
            &b"\n\0\x01\0\x02\0\x03\0"[..],
            b"\n\0\0\0\x9a\0\0\0",
            b"\r\0\n\0",
            b"\n\0",
        ] {
            assert_eq!(Wide::of(binary), None, "{binary:?}");
        }
    }

    /// A dump is told after comments and blank lines, in UTF-16 or UTF-32,
    /// and without an export's header when its statements insert rows; a
    /// schema, a site's files and prose are not dumps.
    #[test]
    fn a_dump_is_told_by_its_statements_whatever_comes_first() {
        let export =
            "PRAGMA defer_foreign_keys=TRUE;\nCREATE TABLE t(x);\nINSERT INTO \"t\" VALUES(1);\n";
        let headless = &export[export.find('\n').unwrap() + 1..];
        let wide32: Vec<u8> = { "\u{feff}".chars().chain(export.chars()) }
            .flat_map(|c| (c as u32).to_le_bytes())
            .collect();
        for dump in [
            format!("/* prod */\n{export}").into_bytes(),
            format!("-- a\n\n/* b\n c */ -- d\r\n{export}").into_bytes(),
            utf16(export, false),
            utf16(export, true),
            wide32,
            headless.as_bytes().to_vec(),
            b"BEGIN;\nINSERT INTO t (a) VALUES(1);\n".to_vec(),
            b"insert or replace into t values ('x');".to_vec(),
            b"DROP TABLE IF EXISTS t;\nCREATE TABLE t(x);\nREPLACE INTO t VALUES(1);".to_vec(),
        ] {
            let text = String::from_utf8_lossy(&dump).into_owned();
            assert_eq!(held_by(&dump, false), Some(Held::Dump), "{text:?}");
        }
        for not in [
            "-- The schema.\nCREATE TABLE t(x);\nCREATE INDEX i ON t(x);\n",
            "CREATE TABLE t(x);\nINSERT INTO t SELECT 1;\n",
            "Create a table; then INSERT INTO t VALUES(1);\n",
            "Begin here; INSERT INTO t VALUES(1);\n",
            "body { margin: 0; }\n/* INSERT INTO t VALUES(1); */\n",
            "{\"sql\": \"INSERT INTO t VALUES(1);\"}\n",
            "SELECT 1; INSERT INTO t VALUES(1);\n",
        ] {
            assert_eq!(held_by(not.as_bytes(), false), None, "{not:?}");
        }
    }
}
