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
/// found; names in backticks stay.
pub fn parse_error(what: &str, text: &str, e: &toml::de::Error) -> anyhow::Error {
    let at = e.span().map(|span| {
        let before = &text[..span.start.min(text.len())];
        let line = before.matches('\n').count() + 1;
        let column = before.len() - before.rfind('\n').map_or(0, |i| i + 1) + 1;
        format!(" at line {line}, column {column}")
    });
    anyhow::anyhow!(
        "{what}{}: {}",
        at.unwrap_or_default(),
        without_quoted_values(e.message().trim())
    )
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
        assert!(shown.contains("expected a boolean"), "{shown}");
    }
}
