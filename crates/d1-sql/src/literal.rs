//! The rows of a D1 dump read in Rust, so that loading one does not compile
//! every `INSERT`.
//!
//! wrangler writes one row per statement, in two shapes:
//! `INSERT INTO "t" VALUES(...);` and (4.94 and later)
//! `INSERT INTO "t" ("a","b") VALUES(...);`, whose values are `NULL`,
//! numbers (`-` in front when negative, `1e+21` beyond JavaScript's
//! integers), `'strings'` with `''` for a quote, `X'hex'` blobs, and for a
//! string with line breaks `replace('a\nb','\n',char(10))` (and
//! `replace(replace('a\rb','\r',char(13)),'\n',char(10))` with carriage
//! returns too). [`parse`] reads exactly those shapes and returns `None` for
//! anything else, which is then run as SQL as before: it never guesses.
//!
//! A parsed row is bound to one prepared statement per table and column
//! list (see [`Row::template`]), which the SQL gate judges as it would the
//! statement itself. A unit test checks, on random rows, that what SQLite
//! stores from the bound values is what it stores from the text.

use std::borrow::Cow;

use rusqlite::types::{ToSqlOutput, ValueRef};

/// One value of a row, as SQLite would have computed it from the literal.
#[derive(Debug, Clone, PartialEq)]
pub enum Value<'a> {
    Null,
    Integer(i64),
    Real(f64),
    Text(Cow<'a, str>),
    Blob(Vec<u8>),
}

impl rusqlite::ToSql for Value<'_> {
    fn to_sql(&self) -> rusqlite::Result<ToSqlOutput<'_>> {
        Ok(ToSqlOutput::Borrowed(match self {
            Value::Null => ValueRef::Null,
            Value::Integer(i) => ValueRef::Integer(*i),
            Value::Real(r) => ValueRef::Real(*r),
            Value::Text(t) => ValueRef::Text(t.as_bytes()),
            Value::Blob(b) => ValueRef::Blob(b),
        }))
    }
}

/// One `INSERT` of a D1 dump, read.
#[derive(Debug, PartialEq)]
pub struct Row<'a> {
    /// The statement's text before `VALUES`, as written: `INSERT INTO "t" `
    /// or `INSERT INTO "t" ("a","b") `.
    pub head: &'a str,
    pub values: Vec<Value<'a>>,
}

impl Row<'_> {
    /// The table the row goes into, unquoted.
    pub fn table(&self) -> Cow<'_, str> {
        let name = self
            .head
            .strip_prefix("INSERT INTO ")
            .and_then(|rest| quoted(rest, b'"'));
        // `parse` made the head of exactly these.
        name.map(|(name, _)| name).unwrap_or_default()
    }

    /// The statement the row is bound to: its head, then one `?` a value.
    /// Rows of one table and column list share it.
    pub fn template(&self) -> String {
        let mut sql = String::with_capacity(self.head.len() + 8 + 2 * self.values.len());
        sql.push_str(self.head);
        sql.push_str("VALUES(");
        for i in 0..self.values.len() {
            sql.push_str(if i == 0 { "?" } else { ",?" });
        }
        sql.push_str(");");
        sql
    }
}

/// The table of a statement in the shape D1's exports write,
/// `INSERT INTO "t" ...`, and the text after its name; `None` for a name
/// with a `"` in it, a `"schema"."t"`, or any other shape (which the caller
/// reads the long way). Every statement of a dump is asked this, several
/// times per restore, so it lives here, optimised.
pub fn dump_insert_table(sql: &str) -> Option<(&str, &str)> {
    let quoted = sql.strip_prefix("INSERT INTO \"")?;
    let end = quoted.bytes().position(|b| b == b'"')?;
    let rest = &quoted[end + 1..];
    if rest.starts_with(['"', '.']) {
        return None;
    }
    Some((&quoted[..end], rest))
}

/// Reads a statement of one of the dump's two `INSERT` shapes (a final `;`
/// optional), or `None` for any other statement, and for one with a NUL
/// byte (which the SQL gate refuses).
pub fn parse(sql: &str) -> Option<Row<'_>> {
    let rest = sql.strip_prefix("INSERT INTO ")?;
    if sql.as_bytes().contains(&0) {
        return None;
    }
    let mut rest = quoted(rest, b'"')?.1;
    if let Some(list) = rest.strip_prefix(" (") {
        rest = list;
        loop {
            rest = quoted(rest, b'"')?.1;
            match rest.as_bytes().first()? {
                b',' => rest = &rest[1..],
                b')' => break rest = &rest[1..],
                _ => return None,
            }
        }
    }
    let rest = rest.strip_prefix(' ').unwrap_or(rest);
    let head = &sql[..sql.len() - rest.len()];
    let mut rest = rest.strip_prefix("VALUES(")?;
    let mut values = Vec::new();
    loop {
        let (value, after) = value(rest)?;
        values.push(value);
        match after.as_bytes().first()? {
            b',' => rest = &after[1..],
            b')' => {
                rest = &after[1..];
                break;
            }
            _ => return None,
        }
    }
    matches!(rest, "" | ";").then_some(Row { head, values })
}

/// A quoted string or name at the start of `text` (`quote` doubled inside
/// it): its contents, unescaped, and the text after it.
fn quoted(text: &str, quote: u8) -> Option<(Cow<'_, str>, &str)> {
    let bytes = text.as_bytes();
    if bytes.first() != Some(&quote) {
        return None;
    }
    let mut i = 1;
    let mut doubled = false;
    loop {
        let at = bytes[i..].iter().position(|&b| b == quote)? + i;
        if bytes.get(at + 1) == Some(&quote) {
            doubled = true;
            i = at + 2;
            continue;
        }
        let inner = &text[1..at];
        let q = char::from(quote);
        let contents = if doubled {
            Cow::Owned(inner.replace(&format!("{q}{q}"), &q.to_string()))
        } else {
            Cow::Borrowed(inner)
        };
        return Some((contents, &text[at + 1..]));
    }
}

/// One literal at the start of `text`, and the text after it.
fn value(text: &str) -> Option<(Value<'_>, &str)> {
    let bytes = text.as_bytes();
    match *bytes.first()? {
        b'\'' => {
            let (s, rest) = quoted(text, b'\'')?;
            Some((Value::Text(s), rest))
        }
        b'N' => Some((Value::Null, text.strip_prefix("NULL")?)),
        b'X' | b'x' if bytes.get(1) == Some(&b'\'') => {
            let end = bytes[2..].iter().position(|&b| b == b'\'')? + 2;
            Some((Value::Blob(hex(&bytes[2..end])?), &text[end + 1..]))
        }
        b'r' => {
            let (s, rest) = replace_call(text)?;
            Some((Value::Text(Cow::Owned(s)), rest))
        }
        b'-' | b'0'..=b'9' => number(text),
        _ => None,
    }
}

/// `replace(X,'P',char(N))`, with X a string literal or another such call:
/// X with every `P` replaced by the character N, as SQLite computes it.
fn replace_call(text: &str) -> Option<(String, &str)> {
    let rest = text.strip_prefix("replace(")?;
    let (subject, rest) = if rest.starts_with('r') {
        replace_call(rest)?
    } else {
        let (s, rest) = quoted(rest, b'\'')?;
        (s.into_owned(), rest)
    };
    let (pattern, rest) = quoted(rest.strip_prefix(',')?, b'\'')?;
    let rest = rest.strip_prefix(",char(")?;
    let digits = rest.bytes().take_while(u8::is_ascii_digit).count();
    // SQLite's char() of a code point that is not a character (a
    // surrogate, or beyond U+10FFFF) writes something else: leave it to
    // SQLite.
    let code: u32 = rest[..digits].parse().ok()?;
    let with = char::from_u32(code)?;
    let rest = rest[digits..].strip_prefix("))")?;
    let replaced = if pattern.is_empty() {
        subject
    } else {
        subject.replace(pattern.as_ref(), with.encode_utf8(&mut [0; 4]))
    };
    Some((replaced, rest))
}

/// `X'...'`'s digits as bytes; `None` for an odd count or a non-hex digit
/// (SQLite refuses both).
fn hex(digits: &[u8]) -> Option<Vec<u8>> {
    if !digits.len().is_multiple_of(2) {
        return None;
    }
    let nibble = |b: u8| (b as char).to_digit(16).map(|d| d as u8);
    digits
        .chunks_exact(2)
        .map(|pair| Some(nibble(pair[0])? << 4 | nibble(pair[1])?))
        .collect()
}

/// The most significant digits a real may have here. SQLite reads only the
/// first 19 or so of a longer number, so its double can differ from the
/// nearest one; wrangler writes at most 17 (JavaScript's shortest form).
pub const REAL_DIGITS: usize = 17;

/// A decimal number, `-` in front when negative: an integer when it has
/// neither `.` nor an exponent and fits in 64 bits, as in SQLite, and
/// otherwise a real, the nearest double, as SQLite rounds it when it has
/// at most [`REAL_DIGITS`] significant digits (`None` when it has more).
fn number(text: &str) -> Option<(Value<'_>, &str)> {
    let bytes = text.as_bytes();
    let mut i = usize::from(bytes[0] == b'-');
    let digits = |from: usize| {
        bytes[from..]
            .iter()
            .take_while(|b| b.is_ascii_digit())
            .count()
    };
    let whole = digits(i);
    if whole == 0 {
        return None;
    }
    i += whole;
    let mut integer = true;
    if bytes.get(i) == Some(&b'.') {
        integer = false;
        i += 1 + digits(i + 1);
    }
    if matches!(bytes.get(i), Some(b'e' | b'E')) {
        integer = false;
        i += 1;
        if matches!(bytes.get(i), Some(b'+' | b'-')) {
            i += 1;
        }
        let exponent = digits(i);
        if exponent == 0 {
            return None;
        }
        i += exponent;
    }
    // A number run into a name (`1abc`) is not a literal SQLite reads.
    if bytes
        .get(i)
        .is_some_and(|b| b.is_ascii_alphanumeric() || *b == b'_' || *b == b'.')
    {
        return None;
    }
    let literal = &text[..i];
    let value = match integer.then(|| literal.parse::<i64>().ok()).flatten() {
        Some(n) => Value::Integer(n),
        None if significant_digits(literal) <= REAL_DIGITS => Value::Real(literal.parse().ok()?),
        None => return None,
    };
    Some((value, &text[i..]))
}

/// 2^63 as a double: what JavaScript prints (`9223372036854776000`) for
/// an integer within 512 of SQLite's largest, and with its sign for the
/// smallest.
const ROUNDED_PAST_I64: f64 = 9_223_372_036_854_775_808.0;

/// Whether a statement holds an integer literal (digits alone, `-` in
/// front or not) outside SQLite's 64 bits whose value is ±2^63, which
/// SQLite reads as a REAL: wrangler's export writing an integer near
/// SQLite's bounds through JavaScript (`9223372036854776000`), so it may
/// be a rounding. Any other literal outside 64 bits is a whole REAL
/// printed in full (`1e20` as `100000000000000000000`), which loads back
/// as the same REAL. Strings, quoted names, words, comments, fractions,
/// exponents and hex are skipped, so that only a number SQLite would read
/// as one counts.
pub fn integer_beyond_64_bits(sql: &str) -> bool {
    let bytes = sql.as_bytes();
    let word = |b: u8| b.is_ascii_alphanumeric() || b == b'_' || b == b'$' || b >= 0x80;
    let mut i = 0;
    while i < bytes.len() {
        let rest = &bytes[i..];
        let skip_to = |close: &[u8]| {
            let from = i + 1;
            { bytes[from..].windows(close.len()) }
                .position(|w| w == close)
                .map_or(bytes.len(), |at| from + at + close.len())
        };
        i = match rest[0] {
            q @ (b'\'' | b'"' | b'`') => skip_to(&[q]),
            b'[' => skip_to(b"]"),
            b'-' if rest.get(1) == Some(&b'-') => skip_to(b"\n"),
            b'/' if rest.get(1) == Some(&b'*') => skip_to(b"*/"),
            b'0'..=b'9' => {
                let end = i + rest.iter().take_while(|b| b.is_ascii_digit()).count();
                let before = i.checked_sub(1).map(|at| bytes[at]);
                let exponent = matches!(before, Some(b'+' | b'-'))
                    && i >= 2
                    && matches!(bytes[i - 2], b'e' | b'E');
                let whole = before != Some(b'.')
                    && !exponent
                    && !bytes.get(end).is_some_and(|&b| word(b) || b == b'.');
                let digits = sql[i..end].trim_start_matches('0');
                let limit = match before {
                    Some(b'-') => "9223372036854775808",
                    _ => "9223372036854775807",
                };
                let beyond = digits.len() > 19 || (digits.len() == 19 && digits > limit);
                if whole && beyond && digits.parse::<f64>() == Ok(ROUNDED_PAST_I64) {
                    return true;
                }
                end.max(i + 1)
            }
            b if word(b) => i + rest.iter().take_while(|&&b| word(b)).count(),
            _ => i + 1,
        };
    }
    false
}

/// Whether `n` is at or beyond ±2^53 and is what JavaScript prints for
/// some double: what wrangler's export writes for an integer it rounded
/// (`1700000000123456789` as `1700000000123456800`). Such an integer may
/// be a rounding; one with more digits than a double keeps
/// (`1700000000123456789` itself) cannot be JavaScript's.
pub fn may_be_rounded_by_javascript(n: i64) -> bool {
    n.unsigned_abs() >= 1 << 53 && (n as f64).to_string() == n.to_string()
}

/// Whether `sql` holds a run of 16 digits or more: no integer under 2^53
/// needs as many, so a statement without one holds none
/// [`may_be_rounded_by_javascript`] would count.
pub fn has_a_long_number(sql: &str) -> bool {
    let mut run = 0;
    sql.bytes().any(|b| {
        run = if b.is_ascii_digit() { run + 1 } else { 0 };
        run >= 16
    })
}

/// The digits of a number's mantissa from its first non-zero digit to its
/// last non-zero one.
fn significant_digits(number: &str) -> usize {
    let mantissa = number.split(['e', 'E']).next().unwrap_or_default();
    let digits: Vec<u8> = mantissa.bytes().filter(u8::is_ascii_digit).collect();
    let first = digits.iter().position(|&d| d != b'0');
    let last = digits.iter().rposition(|&d| d != b'0');
    match (first, last) {
        (Some(first), Some(last)) => last - first + 1,
        _ => 0,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rusqlite::types::Value as Stored;

    fn values(sql: &str) -> Vec<Value<'_>> {
        parse(sql)
            .unwrap_or_else(|| panic!("not parsed: {sql}"))
            .values
    }

    #[test]
    fn the_dump_shapes_table_is_read_and_every_other_shape_left_alone() {
        assert_eq!(
            dump_insert_table("INSERT INTO \"t\" VALUES(1);"),
            Some(("t", " VALUES(1);"))
        );
        assert_eq!(
            dump_insert_table("INSERT INTO \"t\"(\"a\") VALUES(1);"),
            Some(("t", "(\"a\") VALUES(1);"))
        );
        for other in [
            "INSERT INTO \"we\"\"ird\" VALUES(1);",
            "INSERT INTO \"main\".\"t\" VALUES(1);",
            "INSERT INTO t VALUES(1);",
            "insert into \"t\" VALUES(1);",
            "INSERT INTO \"unterminated",
        ] {
            assert_eq!(dump_insert_table(other), None, "{other}");
        }
    }

    #[test]
    fn both_shapes_wrangler_writes_are_read() {
        let row = parse("INSERT INTO \"a\" VALUES(1,'x',NULL);").unwrap();
        assert_eq!(row.head, "INSERT INTO \"a\" ");
        assert_eq!(row.template(), "INSERT INTO \"a\" VALUES(?,?,?);");
        let row =
            parse("INSERT INTO \"we\"\"ird\" (\"a\",\"b\"\"c\") VALUES(X'00ff',-2.5)").unwrap();
        assert_eq!(row.head, "INSERT INTO \"we\"\"ird\" (\"a\",\"b\"\"c\") ");
        assert_eq!(
            row.values,
            vec![Value::Blob(vec![0, 255]), Value::Real(-2.5)]
        );
        assert_eq!(
            values(
                "INSERT INTO \"t\" VALUES(replace(replace('a\\r\\nb''','\\r',char(13)),'\\n',char(10)));"
            ),
            vec![Value::Text(Cow::Owned("a\r\nb'".to_owned()))]
        );
        assert_eq!(
            values("INSERT INTO \"t\" VALUES(X'',-0,9223372036854775807,-9223372036854775808);"),
            vec![
                Value::Blob(vec![]),
                Value::Integer(0),
                Value::Integer(i64::MAX),
                Value::Integer(i64::MIN)
            ]
        );
        assert_eq!(
            values("INSERT INTO \"t\" VALUES(9223372036854776000,1e+21,1e308);"),
            vec![
                Value::Real(9.223372036854776e18),
                Value::Real(1e21),
                Value::Real(1e308)
            ]
        );
    }

    #[test]
    fn every_other_shape_is_left_to_sqlite() {
        for sql in [
            "INSERT INTO t VALUES(1);",
            "INSERT INTO \"t\" VALUES(1),(2);",
            "INSERT INTO \"t\" VALUES(1); INSERT INTO \"t\" VALUES(2);",
            "INSERT INTO \"t\" VALUES(1) -- x",
            "INSERT INTO \"t\" VALUES(abs(-1));",
            "INSERT INTO \"t\" VALUES(zeroblob(10));",
            "INSERT INTO \"t\" SELECT 1;",
            "INSERT INTO \"t\" VALUES( 1);",
            "INSERT INTO \"t\" VALUES(1 );",
            "INSERT INTO \"t\" VALUES(--1);",
            "INSERT INTO \"t\" VALUES(0x10);",
            "INSERT INTO \"t\" VALUES(1e);",
            "INSERT INTO \"t\" VALUES(.5);",
            "INSERT INTO \"t\" VALUES(1abc);",
            "INSERT INTO \"t\" VALUES(Infinity);",
            "INSERT INTO \"t\" VALUES(NaN);",
            "INSERT INTO \"t\" VALUES(null);",
            "INSERT INTO \"t\" VALUES(X'0');",
            "INSERT INTO \"t\" VALUES(X'zz');",
            "INSERT INTO \"t\" VALUES('unterminated);",
            "INSERT INTO \"t\" VALUES(replace('a','b',char(55296)));",
            "INSERT INTO \"t\" VALUES(replace('a','b',char(10),1));",
            "INSERT INTO \"t\" VALUES(replace('a','b','c'));",
            "INSERT INTO \"t\" VALUES(unistr('a\\000a'));",
            "INSERT INTO \"t\"(\"a\") VALUES(1);",
            "INSERT INTO \"t\" (a) VALUES(1);",
            "INSERT INTO \"main\".\"t\" VALUES(1);",
            "INSERT OR REPLACE INTO \"t\" VALUES(1);",
            "INSERT INTO \"t\" VALUES();",
            "INSERT INTO \"t\" VALUES(1);;",
            "insert into \"t\" values(1);",
            "INSERT INTO \"t\" VALUES('a\0b');",
        ] {
            assert_eq!(parse(sql), None, "{sql}");
        }
    }

    /// A small seeded generator (xorshift), so the fuzz needs no dependency
    /// and every failure can be replayed.
    struct Random(u64);

    impl Random {
        fn next(&mut self) -> u64 {
            self.0 ^= self.0 << 13;
            self.0 ^= self.0 >> 7;
            self.0 ^= self.0 << 17;
            self.0
        }
        fn below(&mut self, n: u64) -> u64 {
            self.next() % n
        }
        fn pick<'a, T>(&mut self, items: &'a [T]) -> &'a T {
            &items[self.below(items.len() as u64) as usize]
        }
    }

    /// A random string with what makes dumps hard: quotes, line breaks
    /// (written as wrangler writes them), the text `\n` itself, NUL-free
    /// control characters and characters outside the BMP.
    fn string_literal(r: &mut Random) -> String {
        let pieces = [
            "a", "Z", "'", "''", "\n", "\r", "\r\n", "\\n", "\\r", "\t", "\u{1}", " ", ";", ")",
            ",", "é", "日本", "🦀", "\u{2028}", "NULL", "char(10)", "\"",
        ];
        let text: String = (0..r.below(8))
            .map(|_| *r.pick(&pieces))
            .collect::<Vec<_>>()
            .concat();
        d1_dump::output_quoted_escaped_string(&text)
    }

    fn number_literal(r: &mut Random) -> String {
        let sign = if r.below(3) == 0 { "-" } else { "" };
        let body = match r.below(10) {
            0 => r.below(10).to_string(),
            1 => (r.next() >> 1).to_string(),
            2 => (r.next() >> r.below(64)).to_string(),
            3 => format!("{}", (1u64 << 53) + r.below(1000)),
            4 => r
                .pick(&[
                    "9223372036854775807",
                    "9223372036854776000",
                    "18446744073709552000",
                    "0",
                    "00",
                    "1e308",
                    "1e309",
                    "1.7976931348623157e308",
                    "5e-324",
                    "2.2250738585072014e-308",
                    "1e+21",
                    "0.0",
                    "4.35",
                    "0.1",
                    "1E5",
                ])
                .to_string(),
            5 | 6 => {
                // A double as JavaScript prints it, as wrangler writes reals.
                let x = f64::from_bits(r.next());
                if x.is_finite() {
                    d1_dump::js_number_to_string(x.abs())
                } else {
                    "1.5".to_owned()
                }
            }
            7 => format!("{}.{}", r.below(100_000), r.below(1_000_000_000_000)),
            8 => format!(
                "{}e{}{}",
                r.below(1000),
                r.pick(&["", "+", "-"]),
                r.below(400)
            ),
            _ if r.below(8) == 0 => {
                // Longer than wrangler writes: an integer past 64 bits, or a
                // real with 20 digits, which SQLite reads only in part.
                format!("{}{}", r.next(), r.pick(&["", ".5", "9"]))
            }
            _ => format!("{}.{:0>5}e-{}", r.below(10), r.below(100_000), r.below(30)),
        };
        format!("{sign}{body}")
    }

    fn literal(r: &mut Random) -> String {
        match r.below(5) {
            0 => "NULL".to_owned(),
            1 => {
                let n = r.below(6) as usize;
                let bytes: String = (0..n).map(|_| format!("{:02x}", r.below(256))).collect();
                format!("{}'{bytes}'", r.pick(&["X", "x"]))
            }
            2 | 3 => number_literal(r),
            _ => string_literal(r),
        }
    }

    #[test]
    fn rows_bound_from_the_parser_are_stored_as_sqlite_stores_their_text() {
        let db = rusqlite::Connection::open_in_memory().unwrap();
        // Columns of every affinity: the stored row depends on it.
        db.execute_batch("CREATE TABLE \"t x\"(a, b INTEGER, c REAL, d TEXT, e NUMERIC, f BLOB);")
            .unwrap();
        let heads = [
            "INSERT INTO \"t x\" ",
            "INSERT INTO \"t x\" (\"a\",\"b\",\"c\",\"d\",\"e\",\"f\") ",
        ];
        let stored = |rowid: i64| -> Vec<Stored> {
            db.query_row(
                "SELECT a, b, c, d, e, f, typeof(a), typeof(b), typeof(c), typeof(d), typeof(e), typeof(f) FROM \"t x\" WHERE rowid = ?",
                [rowid],
                |row| (0..12).map(|i| row.get::<_, Stored>(i)).collect(),
            )
            .unwrap()
        };
        let mut r = Random(0x9e37_79b9_7f4a_7c15);
        let mut long_reals = 0;
        let cases = 10_000;
        for case in 0..cases {
            let literals: Vec<String> = (0..6).map(|_| literal(&mut r)).collect();
            let sql = format!("{}VALUES({});", r.pick(&heads), literals.join(","));
            let Some(row) = parse(&sql) else {
                // Only a real longer than wrangler ever writes is left to SQLite.
                assert!(
                    literals.iter().any(|l| l
                        .starts_with(['-', '0', '1', '2', '3', '4', '5', '6', '7', '8', '9'])
                        && l.parse::<i64>().is_err()
                        && significant_digits(l) > REAL_DIGITS),
                    "case {case}: not parsed: {sql}"
                );
                long_reals += 1;
                continue;
            };
            db.execute(&sql, []).unwrap();
            let from_text = stored(db.last_insert_rowid());
            let mut stmt = db.prepare_cached(&row.template()).unwrap();
            for (i, v) in row.values.iter().enumerate() {
                stmt.raw_bind_parameter(i + 1, v).unwrap();
            }
            stmt.raw_execute().unwrap();
            let from_values = stored(db.last_insert_rowid());
            // Bit for bit: a real that differs in its last place, or -0.0
            // against 0.0, is a different value.
            let bits = |v: &[Stored]| -> Vec<String> {
                v.iter()
                    .map(|s| match s {
                        Stored::Real(f) => format!("real {:x}", f.to_bits()),
                        other => format!("{other:?}"),
                    })
                    .collect()
            };
            assert_eq!(bits(&from_values), bits(&from_text), "case {case}: {sql}");
        }
        // The generator mostly writes what the fast path reads.
        assert!(
            long_reals < cases / 4,
            "{long_reals} of {cases} rows not parsed"
        );
    }

    #[test]
    fn significant_digits_ignore_zeros_at_either_end_and_the_exponent() {
        assert_eq!(significant_digits("-000120.0300e+45"), 5);
        assert_eq!(significant_digits("9223372036854776000"), 16);
        assert_eq!(significant_digits("0.0"), 0);
        assert_eq!(
            parse("INSERT INTO \"t\" VALUES(28493.2624855831945780079);"),
            None
        );
        assert_eq!(
            parse("INSERT INTO \"t\" VALUES(9223372036854775808);"),
            None
        );
        assert!(parse("INSERT INTO \"t\" VALUES(28493.262485583194);").is_some());
    }

    /// An integer literal outside SQLite's 64 bits, which SQLite reads as
    /// a REAL: what wrangler's export writes for ±2^63 (JavaScript's
    /// `9223372036854776000`). Never a number in a string, a name, a
    /// comment, a fraction or an exponent.
    #[test]
    fn an_integer_beyond_64_bits_is_told_from_every_other_number() {
        for rounded in [
            "INSERT INTO \"t\" VALUES(1,9223372036854776000);",
            "INSERT INTO \"t\" VALUES(-9223372036854776000,'a');",
            "INSERT INTO t VALUES(9223372036854775808)",
            "INSERT INTO t VALUES(00000009223372036854775808)",
        ] {
            assert!(integer_beyond_64_bits(rounded), "{rounded}");
        }
        for fits in [
            "INSERT INTO \"t\" VALUES(9223372036854775807,-9223372036854775808);",
            "INSERT INTO \"t\" VALUES(9007199254740992);",
            "INSERT INTO \"t\" VALUES('9223372036854776000');",
            "INSERT INTO \"t9223372036854776000\" VALUES(1);",
            "INSERT INTO x9223372036854776000 VALUES(1);",
            "INSERT INTO \"t\" VALUES(9223372036854776000.0,1.9223372036854776000);",
            "INSERT INTO \"t\" VALUES(1e9223372036854776000,1e+9223372036854776000);",
            "INSERT INTO \"t\" VALUES(0x7fffffffffffffffff,X'92233720368547760009');",
            "INSERT INTO \"t\" VALUES(1); -- 9223372036854776000",
            "INSERT INTO \"t\" VALUES(/* 9223372036854776000 */ 1);",
            "INSERT INTO [t 9223372036854776000] VALUES(`9223372036854776000`);",
            // Whole REALs printed in full load back as themselves.
            "INSERT INTO \"t\" (\"a\") VALUES(18446744073709552000);",
            "INSERT INTO \"t\" VALUES(100000000000000000000,9300000000000000000);",
        ] {
            assert!(!integer_beyond_64_bits(fits), "{fits}");
        }
    }

    /// An integer JavaScript could have printed for a rounded one, told
    /// from one it could not have, and from those under 2^53.
    #[test]
    fn an_integer_javascript_may_have_rounded_is_told_by_its_digits() {
        for rounded in [
            1_700_000_000_123_456_800,
            1 << 53,
            -1_700_000_000_123_456_800,
            1 << 54,
        ] {
            assert!(may_be_rounded_by_javascript(rounded), "{rounded}");
        }
        for exact in [
            1_700_000_000_123_456_789,
            (1 << 53) + 1,
            (1 << 60),
            0,
            i64::MAX,
        ] {
            assert!(!may_be_rounded_by_javascript(exact), "{exact}");
        }
        assert!(has_a_long_number("VALUES(1,1700000000123456800)"));
        assert!(!has_a_long_number("VALUES(123456789012345,'x')"));
    }
}
