//! Small checks and spellings on names and bytes that the trust boundary
//! relies on: plain file names, SHA-256 digests, hex.

use std::path::Path;

/// A file name with no directory in it: not empty, no `/` or `\\`, not `.`
/// or `..`, no NUL or other [`unprintable`] character (a line break, an
/// escape code, a bidi override), and not hidden.
pub fn is_plain_file_name(name: &str) -> bool {
    !name.is_empty()
        && !name.starts_with('.')
        && !name.contains(['/', '\\'])
        && is_printable(name)
        && Path::new(name).file_name() == Some(std::ffi::OsStr::new(name))
}

/// A name from the configuration (an environment's short name, a database
/// name): ASCII letters, digits, `_` and `-` only (D1's own rule for
/// database names), at most 64, not starting with `-`. Such names become
/// file names and R2 keys, and none can look like another (no `prоd` with
/// a Cyrillic `о`).
pub fn is_config_name(name: &str) -> bool {
    !name.is_empty() && name.len() <= 64 && !name.starts_with('-') && { name.chars() }
        .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-')
}

/// An environment's name as this tool records it in a manifest, a
/// backup's name or an R2 prefix: its short name (`prod`), or the short
/// name and a database of it (`prod.qbtime_db_prod`), each a
/// [`is_config_name`].
pub fn is_environment_name(name: &str) -> bool {
    match name.split_once('.') {
        Some((short, database)) => is_config_name(short) && is_config_name(database),
        None => is_config_name(name),
    }
}

/// Whether `recorded`, an environment's name as a manifest, a backup's
/// name or an offsite index entry records it ([`is_environment_name`]),
/// may be of database `database`: a short name (`prod`, recorded while its
/// environment had one database), or one qualified by `database` itself
/// (`prod.qbtime_db_prod`), never by another. The short part is not
/// judged here: `vars.APP_ENV` may have changed since.
pub fn may_name_database(recorded: &str, database: &str) -> bool {
    is_environment_name(recorded)
        && recorded
            .split_once('.')
            .is_none_or(|(_, named)| named == database)
}

/// The name among `names` that SQLite takes `name` for: itself, else the
/// one equal to it with ASCII letters in any case (`post` is `Post`).
pub fn as_sqlite_finds<'a>(
    names: impl Iterator<Item = &'a str> + Clone,
    name: &str,
) -> Option<&'a str> {
    { names.clone() }
        .find(|n| *n == name)
        .or_else(|| { names }.find(|n| n.eq_ignore_ascii_case(name)))
}

/// Whether `text` has a D1 bookmark's shape: `00000085-0000024c-00004c6d-`
/// and 32 hex digits. A bookmark is printed in commands to paste, and read
/// back from wrangler's output (a hostile API could answer anything).
pub fn is_bookmark(text: &str) -> bool {
    let parts: Vec<&str> = text.split('-').collect();
    parts.len() == 4
        && parts[..3].iter().all(|p| p.len() == 8)
        && parts[3].len() == 32
        && parts
            .iter()
            .all(|p| p.bytes().all(|c| c.is_ascii_hexdigit()))
}

/// Whether `text` can be printed as it is: it holds no [`unprintable`]
/// character. A line break or an escape code in a field read from a file
/// would print as something else (a row of its own, a whole environment
/// reading "ok").
pub fn is_printable(text: &str) -> bool {
    !text.chars().any(unprintable)
}

/// A character that breaks a line, or hides or reorders the text around it:
/// a control character, a bidi mark, override or isolate, a line or
/// paragraph separator. Free text (a `--reason`) is held to this only: it
/// keeps what [`unprintable`] refuses in a name but text needs, the joiners
/// of an emoji (👩‍💻) and of a Persian word, variation selectors (❤️).
pub fn breaks_text(c: char) -> bool {
    c.is_control()
        || matches!(
            c,
            '\u{061c}'
                | '\u{200e}'
                | '\u{200f}'
                | '\u{2028}'
                | '\u{2029}'
                | '\u{202a}'..='\u{202e}'
                | '\u{2066}'..='\u{2069}'
        )
}

/// Free text from elsewhere (an app's reply, a `--reason`) on one line:
/// each character that [`breaks_text`] becomes a space, so the text
/// cannot print a line of its own.
pub fn on_one_line(text: &str) -> String {
    text.replace(breaks_text, " ")
}

/// Whether free text holds no character that [`breaks_text`].
pub fn is_printable_text(text: &str) -> bool {
    !text.chars().any(breaks_text)
}

/// `text` with each [`unprintable`] character written as its escape
/// (`\u{a}` for a line break): how a name read from a dump or a database
/// (a table, a column, a trigger), or a line or an error that holds one,
/// is shown in a message, so that a table named `x<line break>Result: GOOD`
/// cannot print a line of its own. An empty name is shown `""`, as SQL
/// spells it. For one name alone, whose ends must be seen, see
/// [`shown_name`].
pub fn shown(text: &str) -> std::borrow::Cow<'_, str> {
    if text.is_empty() {
        // SQLite takes `""` as a name (`CREATE TABLE ""(x)`); printed as
        // nothing, "table  has 3 rows" would hide it.
        return std::borrow::Cow::Borrowed("\"\"");
    }
    if is_printable(text) {
        return std::borrow::Cow::Borrowed(text);
    }
    let mut out = String::with_capacity(text.len() + 8);
    for c in text.chars() {
        if unprintable(c) {
            out.push_str(&c.escape_unicode().to_string());
        } else {
            out.push(c);
        }
    }
    std::borrow::Cow::Owned(out)
}

/// A schema object's name (a table, a column, an index, a trigger, a
/// view) as every message prints it: [`shown`], and quoted as SQL spells
/// it (`"my table"`, its quotes doubled) unless it is a plain identifier
/// ([`is_plain_identifier`]) and no keyword of SQLite's ([`SQL_KEYWORDS`],
/// in any case), so a plain name prints as it is. Printed as they are,
/// `my child references parent ` read as a table `my` and hid the space
/// (OB), `drops table trail ` named another table (rvBS), and a fix to
/// copy, `CREATE UNIQUE INDEX … ON order(group)`, failed in SQLite (`near
/// "order": syntax error`; rvCB). Not for a line or a list that holds
/// names, which [`shown`] writes as they are (a diff's row line starts
/// with spaces).
pub fn shown_name(name: &str) -> std::borrow::Cow<'_, str> {
    let keyword = SQL_KEYWORDS.iter().any(|k| k.eq_ignore_ascii_case(name));
    match is_plain_identifier(name) && !keyword {
        true => std::borrow::Cow::Borrowed(name),
        false => std::borrow::Cow::Owned(quoted(name)),
    }
}

/// SQLite's keywords (its "SQL Keywords" page, the 147 of SQLite 3.50),
/// in order: many also serve as a name where SQLite can tell (`CREATE
/// TABLE key(…)`), others never do (`order`), so [`shown_name`] quotes
/// them all. A test holds it to the bundled SQLite's own list.
pub const SQL_KEYWORDS: [&str; 147] = [
    "ABORT",
    "ACTION",
    "ADD",
    "AFTER",
    "ALL",
    "ALTER",
    "ALWAYS",
    "ANALYZE",
    "AND",
    "AS",
    "ASC",
    "ATTACH",
    "AUTOINCREMENT",
    "BEFORE",
    "BEGIN",
    "BETWEEN",
    "BY",
    "CASCADE",
    "CASE",
    "CAST",
    "CHECK",
    "COLLATE",
    "COLUMN",
    "COMMIT",
    "CONFLICT",
    "CONSTRAINT",
    "CREATE",
    "CROSS",
    "CURRENT",
    "CURRENT_DATE",
    "CURRENT_TIME",
    "CURRENT_TIMESTAMP",
    "DATABASE",
    "DEFAULT",
    "DEFERRABLE",
    "DEFERRED",
    "DELETE",
    "DESC",
    "DETACH",
    "DISTINCT",
    "DO",
    "DROP",
    "EACH",
    "ELSE",
    "END",
    "ESCAPE",
    "EXCEPT",
    "EXCLUDE",
    "EXCLUSIVE",
    "EXISTS",
    "EXPLAIN",
    "FAIL",
    "FILTER",
    "FIRST",
    "FOLLOWING",
    "FOR",
    "FOREIGN",
    "FROM",
    "FULL",
    "GENERATED",
    "GLOB",
    "GROUP",
    "GROUPS",
    "HAVING",
    "IF",
    "IGNORE",
    "IMMEDIATE",
    "IN",
    "INDEX",
    "INDEXED",
    "INITIALLY",
    "INNER",
    "INSERT",
    "INSTEAD",
    "INTERSECT",
    "INTO",
    "IS",
    "ISNULL",
    "JOIN",
    "KEY",
    "LAST",
    "LEFT",
    "LIKE",
    "LIMIT",
    "MATCH",
    "MATERIALIZED",
    "NATURAL",
    "NO",
    "NOT",
    "NOTHING",
    "NOTNULL",
    "NULL",
    "NULLS",
    "OF",
    "OFFSET",
    "ON",
    "OR",
    "ORDER",
    "OTHERS",
    "OUTER",
    "OVER",
    "PARTITION",
    "PLAN",
    "PRAGMA",
    "PRECEDING",
    "PRIMARY",
    "QUERY",
    "RAISE",
    "RANGE",
    "RECURSIVE",
    "REFERENCES",
    "REGEXP",
    "REINDEX",
    "RELEASE",
    "RENAME",
    "REPLACE",
    "RESTRICT",
    "RETURNING",
    "RIGHT",
    "ROLLBACK",
    "ROW",
    "ROWS",
    "SAVEPOINT",
    "SELECT",
    "SET",
    "TABLE",
    "TEMP",
    "TEMPORARY",
    "THEN",
    "TIES",
    "TO",
    "TRANSACTION",
    "TRIGGER",
    "UNBOUNDED",
    "UNION",
    "UNIQUE",
    "UPDATE",
    "USING",
    "VACUUM",
    "VALUES",
    "VIEW",
    "VIRTUAL",
    "WHEN",
    "WHERE",
    "WINDOW",
    "WITH",
    "WITHOUT",
];

/// Whether SQLite reads `name` as one identifier without quotes: a
/// letter or `_` first, then letters, digits, `_` or `$`, where a letter
/// is an ASCII one or any printable character past ASCII (SQLite's own
/// tokenizer takes those as identifier characters: `顧客`).
pub fn is_plain_identifier(name: &str) -> bool {
    let word =
        |c: char| c.is_ascii_alphanumeric() || c == '_' || (!c.is_ascii() && !unprintable(c));
    let mut chars = name.chars();
    chars
        .next()
        .is_some_and(|first| word(first) && !first.is_ascii_digit())
        && chars.all(|c| word(c) || c == '$')
}

/// `name`, [`shown`], in double quotes, its quotes doubled, as SQL
/// spells a name (`""` when empty).
fn quoted(name: &str) -> String {
    match name.is_empty() {
        true => "\"\"".to_owned(),
        false => format!("\"{}\"", shown(name).replace('"', "\"\"")),
    }
}

/// A character that does not print as itself: a control character (a line
/// break, an escape code); a space other than U+0020 (a no-break space after
/// `prod` reads as `prod`), a line or paragraph separator; or one that
/// Unicode marks as printing as nothing at all (Default_Ignorable_Code_Point:
/// the bidi overrides and isolates such as U+202E, which would show
/// `backup-prod-…` as something else; zero-width spaces and joiners, the
/// soft hyphen, the Mongolian vowel separator, the combining grapheme
/// joiner, Hangul fillers, variation selectors and tag characters, which
/// make two names look alike).
pub fn unprintable(c: char) -> bool {
    c.is_control()
        || matches!(
            c,
            '\u{00a0}'
                | '\u{00ad}'
                | '\u{034f}'
                | '\u{061c}'
                | '\u{115f}'..='\u{1160}'
                | '\u{1680}'
                | '\u{17b4}'..='\u{17b5}'
                | '\u{180b}'..='\u{180f}'
                | '\u{2000}'..='\u{200f}'
                | '\u{2028}'..='\u{202f}'
                | '\u{205f}'..='\u{206f}'
                | '\u{3000}'
                | '\u{3164}'
                | '\u{fe00}'..='\u{fe0f}'
                | '\u{feff}'
                | '\u{ffa0}'
                | '\u{fff0}'..='\u{fff8}'
                | '\u{1bca0}'..='\u{1bca3}'
                | '\u{1d173}'..='\u{1d17a}'
                | '\u{e0000}'..='\u{e0fff}'
        )
}

/// Whether `text` is a SHA-256 as the backup directory writes it: 64 lowercase hex digits.
pub fn is_sha256_hex(text: &str) -> bool {
    text.len() == 64 && text.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'))
}

/// Lowercase hex. Called for every audit-log row that verify checks, so it
/// avoids `format!` per byte.
pub fn hex(bytes: &[u8]) -> String {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    let mut out = Vec::with_capacity(bytes.len() * 2);
    for b in bytes {
        out.push(DIGITS[usize::from(b >> 4)]);
        out.push(DIGITS[usize::from(b & 0xf)]);
    }
    String::from_utf8(out).expect("hex digits are ASCII")
}

/// A path, [`shown`]: how a path read from a directory (a name anyone
/// who may write there chose: `backups/x<line break>error: …`) is
/// printed, so that it cannot print a line of its own.
pub fn shown_path(path: &Path) -> String {
    shown(&path.display().to_string()).into_owned()
}

/// `text`, cut after `most` characters with `…` (a name of 10,000
/// characters on a plan's line); as it is when no longer.
pub fn cut(text: &str, most: usize) -> std::borrow::Cow<'_, str> {
    match text.char_indices().nth(most) {
        None => std::borrow::Cow::Borrowed(text),
        Some((at, _)) => std::borrow::Cow::Owned(format!("{}…", &text[..at])),
    }
}

/// The most characters of a name a list or a plan's line shows ([`cut`]):
/// a line's length.
pub const NAME_CHARS: usize = 120;

/// An item of a list ([`crate::wording::listed`]), [`shown`] and [`cut`]
/// at [`NAME_CHARS`]: a name its caller showed ([`shown_name`]) is as it
/// was, and so is any other item (a migration's file name, `table x`), but
/// one whose ends cannot be seen (empty, or starting or ending in a space)
/// is quoted, whoever called.
pub fn shown_cut(text: &str) -> String {
    let ends_unseen = text.is_empty() || text.starts_with(' ') || text.ends_with(' ');
    match ends_unseen {
        true => cut(&quoted(text), NAME_CHARS).into_owned(),
        false => cut(&shown(text), NAME_CHARS).into_owned(),
    }
}

/// The last component of a path, as text.
pub fn file_name(path: &Path) -> String {
    path.file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A recorded name may be a database's when short or qualified by it,
    /// never by another, and only in ASCII.
    #[test]
    fn a_recorded_name_is_short_or_qualified_by_its_database() {
        assert!(may_name_database("prod", "db"));
        assert!(may_name_database("live.db", "db"));
        assert!(!may_name_database("prod.other", "db"));
        assert!(!may_name_database("pr\u{43e}d", "db"));
        assert!(!may_name_database("prod.", "db"));
        assert!(!may_name_database("prod.db.db", "db"));
    }

    /// A name in a list or a plan's line is escaped and cut at a line's
    /// length, by characters; a path read from a directory is escaped.
    #[test]
    fn a_long_name_is_cut_and_a_path_escaped() {
        let long = "é".repeat(NAME_CHARS + 5);
        let cut_name = shown_cut(&long);
        assert_eq!(cut_name.chars().count(), NAME_CHARS + 1);
        assert!(cut_name.ends_with('…'));
        assert_eq!(shown_cut("accounts"), "accounts");
        assert_eq!(cut("abc", 3), "abc");
        assert_eq!(
            shown_path(Path::new("backups/x\nerror: forged.manifest.json")),
            "backups/x\\u{a}error: forged.manifest.json"
        );
    }

    /// A name whose ends a reader cannot see (empty, or starting or ending
    /// in a space) is quoted as SQL spells it, its quotes doubled; shown
    /// again, it is as it was (a list shows the names its callers showed).
    #[test]
    fn a_name_empty_or_with_a_space_at_an_end_is_quoted_as_sql_spells_it() {
        assert_eq!(shown_name(""), "\"\"");
        assert_eq!(shown_name("trail "), "\"trail \"");
        assert_eq!(shown_name(" lead"), "\" lead\"");
        assert_eq!(shown_name("say \"hi\" "), "\"say \"\"hi\"\" \"");
        assert_eq!(shown_name("x\n "), "\"x\\u{a} \"");
        // OB: any name that is not a plain identifier is quoted, a space
        // or a quote inside it too; a plain one is as it is.
        assert_eq!(shown_name("in between"), "\"in between\"");
        assert_eq!(shown_name("say\"hi"), "\"say\"\"hi\"");
        assert_eq!(shown_name("my-table"), "\"my-table\"");
        assert_eq!(shown_name("1st"), "\"1st\"");
        for plain in ["accounts", "_cf_KV", "t1", "Kunden", "顧客", "a$b"] {
            assert_eq!(shown_name(plain), plain);
        }
        // A list shows the names its callers showed as they are.
        assert_eq!(shown_cut(&shown_name("in between")), "\"in between\"");
        assert_eq!(shown_cut(&shown_name("trail ")), "\"trail \"");
        assert_eq!(shown_cut("trail "), "\"trail \"");
        // A line holding names is shown as it is, its indent kept.
        assert_eq!(shown("    removed  kind: 'b'"), "    removed  kind: 'b'");
    }

    /// rvCB 2: a name that is an SQL keyword, in any case, is quoted: a
    /// fix to copy, `CREATE UNIQUE INDEX … ON order(group)`, failed in
    /// SQLite; quoted, it runs. A name merely holding one is as it is.
    #[test]
    fn a_name_that_is_an_sql_keyword_is_quoted() {
        assert_eq!(shown_name("order"), "\"order\"");
        assert_eq!(shown_name("Group"), "\"Group\"");
        assert_eq!(shown_name("KEY"), "\"KEY\"");
        for plain in ["orders", "group_id", "keys", "ordered"] {
            assert_eq!(shown_name(plain), plain);
        }
        let db = rusqlite::Connection::open_in_memory().unwrap();
        let sql = |(table, column): (&str, &str)| {
            format!(
                "CREATE TABLE {}({}); CREATE UNIQUE INDEX i ON {}({});",
                shown_name(table),
                shown_name(column),
                shown_name(table),
                shown_name(column)
            )
        };
        db.execute_batch(&sql(("order", "group"))).unwrap();
        assert!(db.execute_batch("CREATE TABLE order(x)").is_err());
    }

    /// [`SQL_KEYWORDS`] is the bundled SQLite's own list of keywords.
    #[test]
    fn the_sql_keywords_are_sqlites() {
        use rusqlite::ffi;
        // SAFETY: SQLite hands out pointers to its static keyword table,
        // each `len` bytes long, for every index below its count.
        let sqlites: Vec<String> = (0..unsafe { ffi::sqlite3_keyword_count() })
            .map(|i| unsafe {
                let (mut name, mut len) = (std::ptr::null(), 0);
                assert_eq!(ffi::sqlite3_keyword_name(i, &mut name, &mut len), 0);
                let bytes = std::slice::from_raw_parts(name.cast::<u8>(), len as usize);
                String::from_utf8(bytes.to_vec()).unwrap()
            })
            .collect();
        let mut sqlites: Vec<&str> = sqlites.iter().map(String::as_str).collect();
        sqlites.sort();
        assert_eq!(sqlites, SQL_KEYWORDS);
    }

    #[test]
    fn foreign_text_is_put_on_one_line() {
        assert_eq!(
            on_one_line("denied\n  [pass] app\u{202e}ok"),
            "denied   [pass] app ok"
        );
        assert_eq!(on_one_line("👩‍💻 ❤️"), "👩‍💻 ❤️");
    }

    #[test]
    fn a_name_is_found_as_sqlite_finds_it_its_own_spelling_first() {
        let names = ["Post", "post_tags", "Ünïcode"];
        let find = |name| as_sqlite_finds(names.iter().copied(), name);
        assert_eq!(find("post"), Some("Post"));
        assert_eq!(find("POST_TAGS"), Some("post_tags"));
        assert_eq!(find("Post"), Some("Post"));
        // SQLite folds ASCII letters only.
        assert_eq!(find("üNÏCODE"), None);
        assert_eq!(find("Posts"), None);
        let both = ["a", "A"];
        assert_eq!(as_sqlite_finds(both.iter().copied(), "A"), Some("A"));
    }

    #[test]
    fn unprintable_characters_are_shown_as_escapes_and_the_rest_as_it_is() {
        assert_eq!(shown("x\nResult: GOOD"), "x\\u{a}Result: GOOD");
        assert_eq!(shown("a\u{1b}[2Jb"), "a\\u{1b}[2Jb");
        assert_eq!(shown("qbtime_db_\u{202e}dorp"), "qbtime_db_\\u{202e}dorp");
        assert_eq!(shown("zero\u{200b}width"), "zero\\u{200b}width");
        assert_eq!(shown(""), "\"\"");
        // atkAE: characters that print as nothing, or as a plain space, after
        // `prod` make a name that reads as `prod`.
        for invisible in [
            '\u{a0}',
            '\u{ad}',
            '\u{34f}',
            '\u{180e}',
            '\u{3164}',
            '\u{fe0f}',
            '\u{e0020}',
            '\u{e0100}',
        ] {
            assert!(unprintable(invisible), "U+{:04X}", u32::from(invisible));
            assert!(!is_printable(&format!("prod{invisible}")));
        }
        for plain in [
            "customers",
            "Kunden übertragen",
            "顧客",
            "a b\"c",
            "🚀 ship",
        ] {
            assert!(
                matches!(shown(plain), std::borrow::Cow::Borrowed(_)),
                "{plain}"
            );
        }
    }
}
