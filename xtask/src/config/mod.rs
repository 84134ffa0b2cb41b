//! The configuration: wrangler's (`wrangler.toml`, `.jsonc`, `.json`), the
//! tool's own (`backups.toml`), and the checkout they are found in. Every
//! name read here is checked before it reaches a path, an R2 key or a plan.

pub mod environment;
pub mod project;
pub mod settings;

/// A parser's error about a configuration file, without what the file
/// holds: TOML's error quotes the line it is on, and serde's quote a value
/// of the wrong type (`invalid type: string "…"`), and the line or value
/// may be a credential (a secret kept in `[vars]` with its quotes
/// forgotten). The position and the kind of error stay, so the fix can be
/// found; names in backticks stay, and so does the key of a value of the
/// wrong type (`env.production.d1_databases.binding`), escaped.
pub fn parse_error(what: &str, text: &str, e: &toml::de::Error) -> anyhow::Error {
    key_error(what, text, e, ".", what)
}

/// [`parse_error`], for an error about the key at `path` (its whole path,
/// `.` for none) of `file`: a value of the wrong type is told by
/// [`wrong_type`], after `file` and the value's line.
pub fn key_error(
    what: &str,
    text: &str,
    e: &toml::de::Error,
    path: &str,
    file: &str,
) -> anyhow::Error {
    let at = e.span().map(|span| {
        let before = &text[..span.start.min(text.len())];
        let line = before.matches('\n').count() + 1;
        let column = before.len() - before.rfind('\n').map_or(0, |i| i + 1) + 1;
        format!(" at line {line}, column {column}")
    });
    let at = at.unwrap_or_default();
    let key = match path.trim_start_matches('.') {
        "" => key_of(e),
        path => Some(path.to_owned()),
    };
    if let Some(told) = { key.as_deref() }.and_then(|key| wrong_type(key, e.message().trim(), file))
    {
        return anyhow::anyhow!("{file}{at}: {told}");
    }
    let key = key.map(|key| format!(", in `{}`", d1_core::names::shown(&key)));
    anyhow::anyhow!(
        "{what}{at}{}: {}",
        key.unwrap_or_default(),
        without_quoted_values(e.message().trim())
    )
}

/// A value of the wrong type in a configuration file, told as its key's
/// whole path from the file's top (`env.production.d1_databases[0].
/// database_name`, escaped), the type it must have and the one it has,
/// never the value: a secret kept in the wrong key would be printed.
/// `None` when `message`, a parser's, is about something else (a missing
/// or unknown key, the tool's own message on a value).
pub fn wrong_type(path: &str, message: &str, file: &str) -> Option<String> {
    // serde reads a struct from a list too, by position: a list where a
    // table belongs is told as of the wrong type, not of the wrong length.
    let (invalid_type, rest) = match message.strip_prefix("invalid type: ") {
        Some(rest) => (true, rest),
        None if message.starts_with("invalid length ") => (true, "sequence, expected a map"),
        None => (false, message.strip_prefix("invalid value: ")?),
    };
    let (found, expected) = rest.rsplit_once(", expected ")?;
    let found = match found.split([' ', '`', '"']).next().unwrap_or_default() {
        "string" | "character" => "a string",
        "integer" => "an integer",
        "floating" => "a float",
        "boolean" => "a boolean",
        "map" => "a table",
        "sequence" => "a list",
        "unit" | "null" => "null",
        _ => "of another type",
    };
    let expected = match expected.trim() {
        "a sequence" => "a list",
        "a map" => "a table",
        "a borrowed string" => "a string",
        "u8" | "u16" | "u32" | "u64" | "usize" => "a whole number (0 or more)",
        "i8" | "i16" | "i32" | "i64" | "isize" => "a whole number",
        other if other.starts_with("struct ") => "a table",
        other => other,
    };
    let has = match invalid_type {
        true => format!("not {found}"),
        false => format!("not {found} out of its range"),
    };
    let key = match path.trim_start_matches('.') {
        "" => "its top level".to_owned(),
        key => format!("`{}`", d1_core::names::shown(key)),
    };
    Some(format!(
        "{key} must be {expected}, {has}; write it as {expected} in {file}. Nothing was run."
    ))
}

/// Reads a `T` from a configuration file's parsed text `de`; an error is
/// `told`'s, given the parser's error and the whole path of the key it is
/// about (`env.production.d1_databases[0].database_name`; `.`: none).
pub fn read_typed<'de, T, D>(
    de: D,
    told: impl FnOnce(D::Error, &str) -> anyhow::Error,
) -> anyhow::Result<T>
where
    T: serde::Deserialize<'de>,
    D: serde::Deserializer<'de>,
{
    serde_path_to_error::deserialize(de).map_err(|e| {
        let path = e.path().to_string();
        told(e.into_inner(), &path)
    })
}

/// The dotted key a TOML error is about, if it names one. The error keeps
/// its keys private and prints them (`in `a.b``, after its message) only
/// when it has no text to quote the line from, so the text is taken away.
fn key_of(e: &toml::de::Error) -> Option<String> {
    let mut bare = e.clone();
    bare.set_input(None);
    let shown = bare.to_string();
    let rest = shown.strip_prefix(e.message())?.trim();
    let key = rest.strip_prefix("in `")?.strip_suffix('`')?;
    (!key.is_empty()).then(|| key.to_owned())
}

/// `text` with every part in double quotes written `"…"`, and its lines
/// joined: a parser's message keeps its kind and the names it puts in
/// backticks.
pub fn without_quoted_values(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for (i, part) in text.split('"').enumerate() {
        out.push_str(if i % 2 == 1 { "…" } else { part });
        out.push('"');
    }
    out.pop();
    out.split_whitespace().collect::<Vec<_>>().join(" ")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_parse_error_says_where_and_what_but_never_the_line_or_a_value() {
        let text = "[vars]\nAPP_ENV = \"local\"\nSTRIPE_SECRET_KEY = sk_live_51Hsecret\n";
        let e = toml::from_str::<toml::Table>(text).unwrap_err();
        let shown = parse_error("wrangler.toml", text, &e).to_string();
        assert!(
            shown.starts_with("wrangler.toml at line 3, column 21: "),
            "{shown}"
        );
        assert!(!shown.contains("sk_live"), "{shown}");
        #[derive(serde::Deserialize, Debug)]
        #[allow(dead_code)]
        struct S {
            compress: bool,
        }
        let text = "compress = \"sk_live_51Hsecret\"\n";
        let e = toml::from_str::<S>(text).unwrap_err();
        let shown = parse_error("backups.toml", text, &e).to_string();
        assert!(!shown.contains("sk_live"), "{shown}");
        assert!(shown.contains("`compress` must be a boolean"), "{shown}");
    }

    /// A seeded mutation fuzz of the configuration readers (see
    /// crates/d1-core/tests/fuzz_hostile.rs): `wrangler.toml`, `.jsonc` and
    /// `backups.toml`, mutated, give an error or a success, never a panic,
    /// in well under a second, and no error quotes a secret kept in
    /// `[vars]`. `FUZZ_ITERATIONS` runs it longer by hand.
    #[test]
    fn hostile_configurations_neither_panic_nor_hang_nor_quote_a_secret() {
        use super::environment::{Environments, Format};
        use super::settings::Settings;
        const WRANGLER_TOML: &str = include_str!("../../../wrangler.toml");
        const BACKUPS_TOML: &str = include_str!("../../../backups.toml");
        const SECRET: &str = "\n[vars]\nSTRIPE_SECRET_KEY = \"sk_live_51Hsecret\"\n";
        const JSONC: &str = r#"// c
            { "name": "qbtime", /* c */ "vars": { "APP_ENV": "local", "K": "sk_live_51Hsecret" },
              "d1_databases": [{ "binding": "DB", "database_name": "qbtime_db_local",
                "database_id": "00000000-0000-4000-8000-000000000000", "migrations_dir": "migrations" }],
              "env": { "production": { "vars": { "APP_ENV": "prod" },
                "d1_databases": [{ "binding": "DB", "database_name": "qbtime_db_prod",
                  "database_id": "9c8b7a6d-5e4f-4a3b-8c2d-1e0f9a8b7c6d", "migrations_dir": "migrations", }] } },
            }"#;
        const PIECES: &[&str] = &[
            "\"",
            "'",
            "[",
            "]",
            "{",
            "}",
            "=",
            ",",
            "\n",
            "\r\n",
            "#",
            "//",
            "/*",
            "*/",
            "\\",
            "\u{feff}",
            "\0",
            "é",
            "\u{202e}",
            "[[d1_databases]]",
            "[env.x]",
            "99999999999999999999",
            "\"\"\"",
            "'''",
            "\"mode\": 1, \"mode\": 2,",
            "APP_ENV = \"prod\"\n",
        ];
        let seeds: Vec<String> = vec![
            format!("{WRANGLER_TOML}{SECRET}"),
            BACKUPS_TOML.to_owned(),
            JSONC.to_owned(),
        ];
        let mut state: u64 = std::env::var("FUZZ_SEED")
            .ok()
            .and_then(|n| n.parse().ok())
            .unwrap_or(0x5eed_c0f1);
        let mut next = move |n: usize| {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            (state % n.max(1) as u64) as usize
        };
        let iterations: usize = std::env::var("FUZZ_ITERATIONS")
            .ok()
            .and_then(|n| n.parse().ok())
            .unwrap_or(600);
        for case in 0..iterations {
            let mut text: Vec<char> = seeds[next(seeds.len())].chars().collect();
            for _ in 0..1 + next(5) {
                let at = next(text.len() + 1);
                match next(6) {
                    0 => text.truncate(at),
                    1 => {
                        let end = (at + next(40)).min(text.len());
                        text.drain(at..end);
                    }
                    2 => {
                        let depth = 1 + next(12_000);
                        let (open, close) = if next(2) == 0 { ('[', ']') } else { ('{', '}') };
                        let nested: String = std::iter::repeat_n(open, depth)
                            .chain(std::iter::once('1'))
                            .chain(std::iter::repeat_n(close, depth))
                            .collect();
                        text.splice(at..at, nested.chars());
                    }
                    _ => {
                        let piece = PIECES[next(PIECES.len())];
                        text.splice(at..at, piece.chars());
                    }
                }
            }
            let text: String = text.into_iter().collect();
            let started = std::time::Instant::now();
            let outcome = std::panic::catch_unwind(|| {
                let mut errors = Vec::new();
                for format in [Format::Toml, Format::Jsonc] {
                    if let Err(e) = Environments::parse_as(&text, format) {
                        errors.push(format!("{e:#}"));
                    }
                }
                match Settings::parse(&text) {
                    Ok(settings) => {
                        let envs = Environments::parse_as(WRANGLER_TOML, Format::Toml).unwrap();
                        if let Err(e) = settings.resolved(&envs) {
                            errors.push(format!("{e:#}"));
                        }
                    }
                    Err(e) => errors.push(format!("{e:#}")),
                }
                errors
            });
            let took = started.elapsed();
            let errors = outcome.unwrap_or_else(|_| panic!("case {case} panicked on {text:?}"));
            assert!(
                took < std::time::Duration::from_secs(1),
                "case {case} took {took:?} on {} bytes",
                text.len()
            );
            for e in errors {
                assert!(
                    !e.contains("sk_live"),
                    "case {case}: an error quotes a secret: {e}"
                );
            }
        }
    }
}
