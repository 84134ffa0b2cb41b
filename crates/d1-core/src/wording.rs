//! How counts and commands are written for people: "1 backup", "2 backups",
//! and a command line shell-quoted so that it can be pasted back.

/// `1 backup`, `2 backups`, `0 tables`.
pub fn count<N: std::fmt::Display + PartialEq + From<u8>>(n: N, noun: &str) -> String {
    if n == N::from(1) {
        return format!("1 {noun}");
    }
    match noun.strip_suffix('y') {
        Some(stem) if !stem.ends_with(['a', 'e', 'i', 'o', 'u']) => format!("{n} {stem}ies"),
        _ => format!("{n} {noun}s"),
    }
}

/// The pronoun for `n` things: "it" for one, "them" otherwise.
pub fn them(n: usize) -> &'static str {
    if n == 1 { "it" } else { "them" }
}

/// The subject and its verb "to be" for `n` things: "it is", "they are".
pub fn they_are(n: usize) -> (&'static str, &'static str) {
    if n == 1 {
        ("it", "is")
    } else {
        ("they", "are")
    }
}

/// The first `n` of `items` joined with `; `, and how many more there are:
/// a plan line that names 220 tables stays one a person can read.
pub fn first_of(items: &[String], n: usize) -> String {
    let shown = items[..items.len().min(n)].join("; ");
    match items.len().saturating_sub(n) {
        0 => shown,
        more => format!("{shown}; and {more} more"),
    }
}

/// How many names a message lists before it says how many more there
/// are: a database of 150 tables or a year of 200 migrations is told in a
/// line an operator reads, not a screenful.
pub const NAMES_SHOWN: usize = 10;

/// `names` joined with commas, the first [`NAMES_SHOWN`] of them and then
/// how many more: `a, b, c and 147 more`. Each is shown escaped
/// ([`crate::names::shown`]): a list's names are a database's or a dump's,
/// and a name with a line break would print a line of its own.
pub fn listed<S: AsRef<str>>(names: &[S], noun: &str) -> String {
    let shown: Vec<String> = { names.iter() }
        .take(NAMES_SHOWN)
        .map(|n| crate::names::shown_cut(n.as_ref()))
        .collect();
    joined(&shown, names.len(), noun)
}

/// [`listed`] of items each already shown and cut by its caller, where
/// an item is more than one name: `NAME on TABLE (MIGRATION)` cuts each
/// name read from a dump, and keeps the migration that is what to fix,
/// which a cut of the whole item at [`crate::names::NAME_CHARS`] lost.
pub fn listed_as_shown(items: &[String], noun: &str) -> String {
    joined(&items[..items.len().min(NAMES_SHOWN)], items.len(), noun)
}

/// `shown`, the first of `all` items, joined with commas, and how many
/// more `noun`s there are.
fn joined(shown: &[String], all: usize, noun: &str) -> String {
    match all.saturating_sub(shown.len()) {
        0 => shown.join(", "),
        more => format!(
            "{} and {}",
            shown.join(", "),
            count(more, &format!("more {noun}"))
        ),
    }
}

/// The words of a command, each quoted as a POSIX shell needs it.
pub fn shell_words<S: AsRef<str>>(words: &[S]) -> String {
    words
        .iter()
        .map(|w| shell_word(w.as_ref()))
        .collect::<Vec<_>>()
        .join(" ")
}

/// `--table NAME` as it is typed: NAME a [`shell_word`], and joined by
/// `=` where it starts with `-` (`--table=-x`), which clap, as wrangler's
/// parser, would read apart as an option of its own (`--table -x` is
/// refused).
pub fn table_option(name: &str) -> String {
    match name.starts_with('-') {
        true => format!("--table={}", shell_word(name)),
        false => format!("--table {}", shell_word(name)),
    }
}

/// One word as a POSIX shell reads it back: as it is when it holds only
/// plain characters, else in single quotes, or in bash's `$'…'` when it
/// holds a character that does not print as itself ([`ansi_c_quoted`]). Every command printed to paste
/// is quoted here (wrangler's invocations, and the tool's own advice).
pub fn shell_word(word: &str) -> String {
    let plain = !word.is_empty()
        && word
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "@%+=:,./_-".contains(c));
    if plain {
        word.to_owned()
    } else if crate::names::is_printable(word) {
        format!("'{}'", word.replace('\'', r"'\''"))
    } else {
        ansi_c_quoted(word)
    }
}

/// A word holding a character that does not print as itself (a line
/// break, an escape code) in the `$'…'` quoting of bash and zsh, each such
/// character written as its escape: the printed command stays on one line,
/// no escape code reaches the terminal, and pasted it gives the shell the
/// word's exact characters. In single quotes the terminal would be sent the
/// characters themselves; the output strips escape codes, so the pasted
/// word would differ from the name it must match (`--allow-trigger`).
fn ansi_c_quoted(word: &str) -> String {
    let mut out = String::from("$'");
    for c in word.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            '\'' => out.push_str("\\'"),
            c if crate::names::unprintable(c) => match u32::from(c) {
                n if n < 0x80 => out.push_str(&format!("\\x{n:02x}")),
                n if n <= 0xffff => out.push_str(&format!("\\u{n:04x}")),
                n => out.push_str(&format!("\\U{n:08x}")),
            },
            c => out.push(c),
        }
    }
    out.push('\'');
    out
}

/// `3m`, `5h`, `12d`.
pub fn age(seconds: i64) -> String {
    match seconds {
        s if s < 60 => format!("{s}s"),
        s if s < 3600 => format!("{}m", s / 60),
        s if s < 86_400 => format!("{}h", s / 3600),
        s => format!("{}d", s / 86_400),
    }
}

/// As [`age`], but a day or more is given with its hours too (`1d 3h`),
/// so that it can be compared with a span in hours: a backup 27 hours old
/// against a `max_age` of 26h is `1d 3h`, never `1d`.
pub fn age_to_the_hour(seconds: i64) -> String {
    match (seconds / 86_400, seconds % 86_400 / 3600) {
        (0, _) => age(seconds),
        (days, 0) => format!("{days}d"),
        (days, hours) => format!("{days}d {hours}h"),
    }
}

/// `812 B`, `4.2 KB`, `155.0 MB`.
/// Why a backup dated `created_at` is not taken for newer than the others
/// at `now`, if it is dated after it: the clock that took it ran fast, or
/// this one is behind, and a backup taken since the clock was set right,
/// dated earlier, holds more.
pub fn dated_ahead(
    created_at: chrono::DateTime<chrono::Utc>,
    now: chrono::DateTime<chrono::Utc>,
) -> Option<String> {
    (created_at > now).then(|| {
        format!(
            "dated {}, after this machine's clock ({}; the clock that took it ran fast, or \
             this one is behind)",
            created_at.format("%Y-%m-%d %H:%M:%S UTC"),
            now.format("%Y-%m-%d %H:%M:%S UTC")
        )
    })
}

pub fn size(bytes: u64) -> String {
    const UNITS: [&str; 4] = ["KB", "MB", "GB", "TB"];
    if bytes < 1000 {
        return format!("{bytes} B");
    }
    let mut value = bytes as f64 / 1000.0;
    let mut unit = 0;
    while value >= 1000.0 && unit + 1 < UNITS.len() {
        value /= 1000.0;
        unit += 1;
    }
    format!("{value:.1} {}", UNITS[unit])
}

/// A table for people: each column as wide as its widest cell, left
/// aligned except the columns `right` names, two spaces apart, and no
/// trailing blanks. Widths count characters, so that a cell never pushes
/// the rest of its row out of line, whatever the names in it.
pub fn table<const N: usize>(
    header: [&str; N],
    rows: &[[String; N]],
    right: [bool; N],
) -> Vec<String> {
    let mut widths = header.map(|h| h.chars().count());
    for row in rows {
        for (w, cell) in widths.iter_mut().zip(row) {
            *w = (*w).max(cell.chars().count());
        }
    }
    let line = |cells: [&str; N]| {
        let mut out = String::new();
        for (i, cell) in cells.iter().enumerate() {
            let pad = " ".repeat(widths[i] - cell.chars().count());
            if i > 0 {
                out.push_str("  ");
            }
            if right[i] {
                out.push_str(&pad);
                out.push_str(cell);
            } else {
                out.push_str(cell);
                out.push_str(&pad);
            }
        }
        out.trim_end().to_owned()
    };
    std::iter::once(line(header))
        .chain(
            rows.iter()
                .map(|r| line(std::array::from_fn(|i| r[i].as_str()))),
        )
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// rvCB 3: a table whose name starts with `-` is typed joined to
    /// `--table` by `=`: apart, the parser reads it as an option.
    #[test]
    fn a_table_name_starting_with_a_dash_is_typed_joined_to_its_option() {
        assert_eq!(table_option("notes"), "--table notes");
        assert_eq!(table_option("my notes"), "--table 'my notes'");
        assert_eq!(table_option("-x"), "--table=-x");
        assert_eq!(table_option("- x"), "--table='- x'");
    }

    /// NY noticed "0 copys" in reindex's plan: a noun ending in a consonant
    /// and `y` takes `ies`, one ending in a vowel and `y` only `s`.
    #[test]
    fn a_count_spells_the_plural_of_its_noun() {
        assert_eq!(count(0usize, "copy"), "0 copies");
        assert_eq!(count(1usize, "copy"), "1 copy");
        assert_eq!(count(3usize, "day"), "3 days");
        assert_eq!(count(2usize, "table"), "2 tables");
    }

    /// A word with a line break, an escape code, a quote or a backslash,
    /// printed for a command to paste, reads back in bash as the word
    /// itself, and prints on one line with no control character.
    #[test]
    fn a_word_that_does_not_print_as_itself_pastes_back_into_bash_exactly() {
        for word in [
            "t$(touch pwn)'\n\u{1b}[31m",
            "a\\b\r'c\u{202e}d",
            "tab\there\u{7f}\u{e0020}",
            "plain words",
        ] {
            let quoted = shell_word(word);
            assert!(!quoted.contains(char::is_control), "{quoted:?}");
            let out = std::process::Command::new("bash")
                .args(["-c", &format!("printf %s {quoted}")])
                .env("LC_ALL", "C.UTF-8")
                .output()
                .unwrap();
            assert_eq!(String::from_utf8(out.stdout).unwrap(), word, "{quoted}");
        }
    }

    /// A list of names shows each escaped, as a name is shown alone.
    #[test]
    fn a_listed_name_with_a_line_break_is_shown_escaped() {
        assert_eq!(listed(&["a", "b\nforged"], "table"), "a, b\\u{a}forged");
    }

    #[test]
    fn a_long_list_of_names_is_cut_with_how_many_more() {
        let names: Vec<String> = (1..=12).map(|i| format!("t{i}")).collect();
        assert_eq!(listed(&names[..3], "table"), "t1, t2, t3");
        assert_eq!(listed(&names[..10], "table"), names[..10].join(", "));
        assert_eq!(
            listed(&names[..11], "table"),
            "t1, t2, t3, t4, t5, t6, t7, t8, t9, t10 and 1 more table"
        );
        assert!(listed(&names, "migration").ends_with("t10 and 2 more migrations"));
    }

    #[test]
    fn a_long_list_names_its_first_few_and_counts_the_rest() {
        let items: Vec<String> = (1..=7).map(|i| format!("t{i}")).collect();
        assert_eq!(first_of(&items, 5), "t1; t2; t3; t4; t5; and 2 more");
        assert_eq!(first_of(&items[..2], 5), "t1; t2");
        assert_eq!(first_of(&[], 5), "");
    }

    #[test]
    fn one_is_singular_and_everything_else_plural() {
        assert_eq!(count(1u32, "backup"), "1 backup");
        assert_eq!(count(0u32, "backup"), "0 backups");
        assert_eq!(count(2usize, "migration"), "2 migrations");
    }

    #[test]
    fn commands_are_quoted_so_that_a_shell_reads_them_back() {
        assert_eq!(shell_words(&["sh", "-c", "exit 7"]), "sh -c 'exit 7'");
        assert_eq!(shell_words(&["echo", "it's", ""]), r"echo 'it'\''s' ''");
        assert_eq!(
            shell_words(&["./import.sh", "--to=prod"]),
            "./import.sh --to=prod"
        );
    }

    #[test]
    fn a_tables_columns_line_up_whatever_their_cells_hold() {
        let rows = [
            [
                "a".to_owned(),
                "full (encryption_keys)".to_owned(),
                "7.0 KB".to_owned(),
            ],
            ["bbbb".to_owned(), "é".to_owned(), "155.0 MB".to_owned()],
        ];
        let lines = table(["name", "mode", "size"], &rows, [false, false, true]);
        assert_eq!(
            lines,
            [
                "name  mode                        size",
                "a     full (encryption_keys)    7.0 KB",
                "bbbb  é                       155.0 MB",
            ]
        );
    }

    #[test]
    fn sizes_and_ages_read_naturally() {
        assert_eq!(size(812), "812 B");
        assert_eq!(size(4_200), "4.2 KB");
        assert_eq!(size(155_000_000), "155.0 MB");
        assert_eq!(age(59), "59s");
        assert_eq!(age(3 * 86_400 + 5), "3d");
    }

    #[test]
    fn an_age_against_a_span_in_hours_keeps_its_hours() {
        assert_eq!(age_to_the_hour(5 * 3600), "5h");
        assert_eq!(age_to_the_hour(27 * 3600 + 600), "1d 3h");
        assert_eq!(age_to_the_hour(2 * 86_400 + 59), "2d");
    }
}
