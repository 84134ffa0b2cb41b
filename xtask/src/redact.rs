//! Redaction of secrets from everything the xtask prints: the one place
//! that knows what a secret looks like.
//!
//! wrangler prints the signed download URL of a remote export in clear text,
//! an API error can echo a request, an app can echo the Authorization header
//! it was sent, and a library can quote an age identity it could not parse.
//! Every line of wrangler output passes through [`Redactor::line`] before it
//! reaches the terminal or any log, the drill's app replies are redacted
//! before they are judged, and `main` redacts every error it prints.
//!
//! Redacted: the values of [`SECRET_VARIABLES`], every value registered with
//! [`hold`] (the drill's DevOps token, the lines of an age identity file),
//! `AGE-SECRET-KEY-1…` and `AGE-SECRET-KEY-PQ-1…` in any case, the token
//! after `Bearer `, the credential of any `Authorization` header, the path
//! and query of any URL with a query string (signed URLs), and the value of
//! any credential a name introduces ([`redact_assignments`]:
//! `CLOUDFLARE_API_TOKEN=…`, `--password …`, `"api_token": "…"`,
//! `X-Auth-Key: …`, `db_password: …`, `Cookie: …`, `-u user:password`,
//! `--auth …`), a
//! program's password flag ([`PASSWORD_FLAGS`]: `sshpass -p …`), tokens by
//! their issuer's prefix ([`TOKEN_PREFIXES`]: `ghp_…`, `xoxb-…`), and the
//! value of a variable whose name says secret where it stands apart from a
//! longer word ([`secret_named_values`]). The account id is not
//! a credential (it is in every dashboard URL) and is left visible; a value
//! of `CLOUDFLARE_ACCOUNT_ID` or `CF_ACCOUNT_ID` that is not one (an API
//! token pasted there) is redacted.
//!
//! No redacted value leaves a piece of its secret: a value by name runs to
//! the end of its word as a shell reads it ([`word_end`]), whatever
//! punctuation it holds (`--password a,b`), an escaped quote does not end
//! a quoted one, a URL's password runs to its last `@`, and a known value
//! is also found percent-encoded, JSON-escaped, quoted for a shell (a
//! `'` as `'\''`) and cut by a line wrap ([`spellings`],
//! [`redact_pieces`]); a field's value may start on the line after its
//! name ([`skip_to_value`]). Over-redacting a harmless tail is
//! the price; leaking one is not.

use std::borrow::Cow;
use std::collections::BTreeSet;
use std::sync::Mutex;

pub const REDACTED: &str = "[REDACTED]";

/// Knows the secret values of this run and the shapes of secrets in general.
#[derive(Debug, Clone, Default)]
pub struct Redactor {
    secrets: Vec<String>,
    /// Values redacted only where one stands apart from a longer word:
    /// those of variables whose name says secret ([`secret_named_values`]).
    words: Vec<String>,
}

/// Environment variables whose values are secrets wherever they appear.
pub const SECRET_VARIABLES: &[&str] = &[
    "CLOUDFLARE_API_TOKEN",
    "CLOUDFLARE_API_KEY",
    "CF_API_TOKEN",
    "CF_API_KEY",
    "QBTIME_DEVOPS_TOKEN",
    "AWS_SECRET_ACCESS_KEY",
    "R2_SECRET_ACCESS_KEY",
];

/// Secret values this process has read, other than from variables: a set,
/// so that holding each of N values costs no scan of those held before.
static HELD: Mutex<BTreeSet<String>> = Mutex::new(BTreeSet::new());

/// Registers a secret value the tool holds, so that no later output shows it.
pub fn hold(secret: &str) {
    let secret = secret.trim();
    if secret.len() >= 8 {
        let mut held = HELD.lock().unwrap_or_else(|e| e.into_inner());
        if !held.contains(secret) {
            held.insert(secret.to_owned());
        }
    }
}

/// Redacts text with everything this process knows to be secret.
pub fn text(text: &str) -> String {
    Redactor::from_process_env().line(text).into_owned()
}

/// Redacts a command's requested output (a `--json` document, a listing,
/// a diff's report): the secrets themselves (known values, tokens, signed
/// URLs, identities), but not by name. There a name is the tool's own
/// field or a table's or column's (`device_token`, `"api_token": …` in a
/// diff the operator asked to see), and what follows is data, never a
/// credential handed on a command line.
pub fn values(text: &str) -> String {
    Redactor::from_process_env().values(text).into_owned()
}

impl Redactor {
    /// A redactor that knows the values of [`SECRET_VARIABLES`] in this
    /// process and every value registered with [`hold`].
    pub fn from_process_env() -> Redactor {
        let held = HELD.lock().unwrap_or_else(|e| e.into_inner()).clone();
        let vars = { std::env::vars_os() }
            .filter_map(|(k, v)| Some((k.into_string().ok()?, v.into_string().ok()?)));
        // Read under the lock, not copied: a redactor is made for each
        // line printed, and a configuration may name thousands.
        let known = KNOWN_NAMES.lock().unwrap_or_else(|e| e.into_inner());
        Redactor {
            words: spellings(secret_named_values(vars, &known)),
            ..Redactor::from_variables(|name| std::env::var(name).ok(), held)
        }
    }

    /// A redactor that knows the values `var` gives [`SECRET_VARIABLES`],
    /// a value of `CLOUDFLARE_ACCOUNT_ID` or `CF_ACCOUNT_ID` that is not an
    /// account id, and the `held` values.
    ///
    /// A value ending in a line break (a token read from a CRLF `.env`
    /// ends in `\r`) is known without it, as it is printed, so that its
    /// tail after a wrap and its JSON spelling are found (KR); and as it
    /// is, should it be printed so.
    pub fn from_variables(
        var: impl Fn(&str) -> Option<String>,
        held: impl IntoIterator<Item = String>,
    ) -> Redactor {
        let var = |name: &str| var(name).map(|v| (v.trim_end_matches(['\r', '\n']).to_owned(), v));
        let with_raw = |(printed, raw): (String, String)| {
            let differs = printed != raw;
            std::iter::once(printed).chain(differs.then_some(raw))
        };
        let mut secrets: Vec<String> = SECRET_VARIABLES
            .iter()
            .filter_map(|name| var(name))
            .flat_map(with_raw)
            .collect();
        // An account id is no secret, but what is not one (an API token
        // pasted as CLOUDFLARE_ACCOUNT_ID) may be: wrangler sends it, and
        // prints it in the URL of its error.
        secrets.extend(
            ["CLOUDFLARE_ACCOUNT_ID", "CF_ACCOUNT_ID"]
                .iter()
                .filter_map(|name| var(name))
                .filter(|(v, _)| !crate::config::environment::is_account_id(v))
                .flat_map(with_raw),
        );
        secrets.extend(held);
        Redactor::with_secrets(secrets)
    }

    pub fn with_secrets(secrets: Vec<String>) -> Redactor {
        // Very short values would redact ordinary words; real tokens are long.
        Redactor {
            secrets: spellings(secrets.into_iter().filter(|s| s.len() >= 8)),
            words: Vec::new(),
        }
    }

    /// Redacts one line: known secret values, bearer tokens, and the path and
    /// query of any URL that carries a query string (a signed URL's signature
    /// lives there; plain documentation links are left alone).
    pub fn line<'a>(&self, line: &'a str) -> Cow<'a, str> {
        let mut out = self.values(line);
        if let Some(redacted) = redact_authorization(&out) {
            out = Cow::Owned(redacted);
        }
        if let Some(redacted) = redact_assignments(&out) {
            out = Cow::Owned(redacted);
        }
        if let Some(redacted) = redact_program_passwords(&out) {
            out = Cow::Owned(redacted);
        }
        out
    }

    /// [`Redactor::line`] but for the rules that go by a name (the
    /// `Authorization` header, `name=value`): see [`values`].
    pub fn values<'a>(&self, line: &'a str) -> Cow<'a, str> {
        let mut out = Cow::Borrowed(line);
        // Whole first, however an app echoed it (percent-encoded, in
        // another case, broken by a line break or blanks), longest first;
        // then the pieces a wrap left on lines redacted one by one. A
        // secret inside a longer one waits for that one's pieces, which it
        // would otherwise cut, leaving their tail.
        // Each secret's case folded once, and whether it is inside another
        // judged once a line, not twice for each secret.
        let lower: Vec<String> = self
            .secrets
            .iter()
            .map(|s| s.to_ascii_lowercase())
            .collect();
        let inside: Vec<bool> = { lower.iter() }
            .map(|secret| {
                { lower.iter() }.any(|other| other.len() > secret.len() && other.contains(secret))
            })
            .collect();
        for (secret, _) in self.secrets.iter().zip(&inside).filter(|(_, i)| !**i) {
            if let Some(redacted) = redact_loosely(&out, secret) {
                out = Cow::Owned(redacted);
            }
        }
        for (secret, inside) in self.secrets.iter().zip(&inside) {
            if let Some(redacted) = redact_pieces(&out, secret) {
                out = Cow::Owned(redacted);
            }
            if *inside && let Some(redacted) = redact_loosely(&out, secret) {
                out = Cow::Owned(redacted);
            }
        }
        for secret in &self.secrets {
            if out.contains(secret.as_str()) {
                out = Cow::Owned(out.replace(secret.as_str(), REDACTED));
            }
        }
        for word in &self.words {
            if let Some(redacted) = redact_word(&out, word) {
                out = Cow::Owned(redacted);
            }
        }
        if let Some(redacted) = redact_token_shapes(&out) {
            out = Cow::Owned(redacted);
        }
        if out.contains("://") {
            // find_url_start matches the scheme in any case.
            // The userinfo first: a password holding a raw `/` or `?`
            // would otherwise be cut where the signed URL's path starts.
            out = Cow::Owned(redact_signed_urls(&redact_userinfo(&out)));
        }
        if let Some(redacted) = redact_bearer(&out) {
            out = Cow::Owned(redacted);
        }
        if let Some(redacted) = redact_age_identities(&out) {
            out = Cow::Owned(redacted);
        }
        if let Some(redacted) = redact_key_material(&out) {
            out = Cow::Owned(redacted);
        }
        out
    }
}

/// Every secret as output may spell it (as it is, percent-encoded in a
/// URL or a form with upper- or lower-case digits, escaped in a JSON
/// string, quoted for a shell), longest first: a secret that holds a shorter one is replaced
/// whole before the shorter one could cut it and leave its tail.
fn spellings(secrets: impl IntoIterator<Item = String>) -> Vec<String> {
    let mut all: Vec<String> = Vec::new();
    for secret in secrets {
        let encoded = |upper: bool| -> String {
            { secret.bytes() }
                .map(
                    |b| match (b.is_ascii_alphanumeric() || b"-._~".contains(&b), upper) {
                        (true, _) => (b as char).to_string(),
                        (false, true) => format!("%{b:02X}"),
                        (false, false) => format!("%{b:02x}"),
                    },
                )
                .collect()
        };
        // As a shell quotes it (`d1_core::wording::shell_word`, how the
        // tool prints a command): a `'` in a quoted word is `'\''`. And
        // both at once (KR): a JSON document quoted for the shell (a
        // `--data` argument in with-backup's command), or a quoted command
        // escaped in a JSON string (a reason in `list --json`).
        let quote = |s: &str| s.replace('\'', r"'\''");
        let escape = |s: &str| {
            let json = serde_json::to_string(s).unwrap_or_default();
            { json.get(1..json.len().saturating_sub(1)) }
                .unwrap_or("")
                .to_owned()
        };
        let (quoted, json) = (quote(&secret), escape(&secret));
        let both = [quote(&json), escape(&quoted)];
        for form in [encoded(true), encoded(false), json, quoted, secret]
            .into_iter()
            .chain(both)
        {
            if !all.contains(&form) {
                all.push(form);
            }
        }
    }
    all.sort_by_key(|s| std::cmp::Reverse(s.len()));
    all
}

/// The pieces of `secret` a line wrap leaves: its head at the end of a
/// line, its tail at the start of one (past the indent), 4 characters or
/// more standing apart from a longer word, and a line that is a piece of
/// its middle, 8 or more. Each line is told apart, so that wrangler's
/// lines, redacted one by one, lose them as a whole text does; in any
/// case, as [`redact_loosely`] finds the whole (KR: an app that echoes a
/// token upper-cased and wrapped showed both pieces line by line).
/// ASCII lower-casing keeps every byte where it was.
fn redact_pieces(text: &str, secret: &str) -> Option<String> {
    const LEAST: usize = 4;
    let secret = &secret.to_ascii_lowercase();
    let runs_on = |c: Option<char>| c.is_some_and(|c| c.is_ascii_alphanumeric());
    // A piece of letters alone, shorter than 12, is a word a token may
    // begin with (`rehearsal` of `rehearsal-token-…`), not told apart
    // from text; a piece holding anything else is.
    let telling =
        |piece: &str| piece.len() >= 12 || !piece.bytes().all(|b| b.is_ascii_alphabetic());
    // The longest tail of `secret` a line starts with, and head it ends with.
    let starts = |body: &str| {
        (LEAST..secret.len()).rev().find(|&k| {
            let from = secret.len() - k;
            secret.is_char_boundary(from)
                && body.starts_with(&secret[from..])
                && telling(&secret[from..])
                && !runs_on(body[k..].chars().next())
        })
    };
    let ends = |body: &str| {
        (LEAST..secret.len()).rev().find(|&k| {
            secret.is_char_boundary(k)
                && body.ends_with(&secret[..k])
                && telling(&secret[..k])
                && !runs_on(body[..body.len() - k].chars().next_back())
        })
    };
    let mut out = String::with_capacity(text.len());
    let mut changed = false;
    for (n, line) in text.split('\n').enumerate() {
        if n > 0 {
            out.push('\n');
        }
        let trimmed = line.trim_end();
        let shown = trimmed.trim_start();
        // Most lines hold no piece: a cheap look at their two ends first.
        let edge = |piece: Option<&str>| {
            piece.is_some_and(|p| secret.contains(p.to_ascii_lowercase().as_str()))
        };
        if !edge(shown.get(..LEAST)) && !edge(shown.get(shown.len().saturating_sub(LEAST)..)) {
            out.push_str(line);
            continue;
        }
        let body = &shown.to_ascii_lowercase();
        let (start, end) = match body.len() >= 2 * LEAST && telling(body) && secret.contains(body) {
            true => (body.len(), 0),
            false => (starts(body).unwrap_or(0), ends(body).unwrap_or(0)),
        };
        if start == 0 && end == 0 {
            out.push_str(line);
            continue;
        }
        changed = true;
        out.push_str(&trimmed[..trimmed.len() - body.len()]);
        if start + end >= body.len() {
            out.push_str(REDACTED);
        } else {
            if start > 0 {
                out.push_str(REDACTED);
            }
            out.push_str(&shown[start..shown.len() - end]);
            if end > 0 {
                out.push_str(REDACTED);
            }
        }
        out.push_str(&line[trimmed.len()..]);
    }
    changed.then_some(out)
}

/// Each byte of `text` as a loose match reads it: its ASCII letters in
/// lower case, a `%XX` escape as the byte it stands for, and blanks, line
/// breaks and what prints as nothing ([`unseen_len`]) skipped; with the
/// span of `text` it was read from.
fn read_loosely(text: &str) -> Vec<(u8, usize, usize)> {
    let bytes = text.as_bytes();
    let hex = |b: u8| (b as char).to_digit(16).map(|d| d as u8);
    let mut read = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let unseen = match bytes[i] {
            b' '..=b'~' => 0,
            _ if text.is_char_boundary(i) => unseen_len(&text[i..]),
            _ => 0,
        };
        if unseen > 0 {
            i += unseen;
            continue;
        }
        let escaped = { bytes.get(i + 1..i + 3) }
            .filter(|_| bytes[i] == b'%')
            .and_then(|h| Some(hex(h[0])? << 4 | hex(h[1])?));
        let (byte, width) = escaped.map_or((bytes[i], 1), |b| (b, 3));
        if !byte.is_ascii_whitespace() {
            read.push((byte.to_ascii_lowercase(), i, i + width));
        }
        i += width;
    }
    read
}

/// How many bytes at the start of `text` print as nothing, or as the
/// printer's U+FFFD ([`crate::out::clean`]): an escape sequence, whole
/// ([`d1_core::unseen::escape_len`]: colour, a window title, a charset,
/// a DCS or APC string with its body), a character that prints as
/// nothing or only changes its neighbour ([`d1_core::unseen::shows_nothing`]:
/// a control, format or combining character, a braille blank), or U+FFFD
/// itself. 0 for none, and for a blank or a line break, which each caller
/// reads as its own. A secret echoed back cut by one (an API's error, an
/// app's answer) reads whole past it, and is redacted whole, before and
/// after the printer cleans it (rvCL 1, rvCN).
pub fn unseen_len(text: &str) -> usize {
    let Some(c) = text.chars().next() else {
        return 0;
    };
    match d1_core::unseen::escape_len(text) {
        0 if c.is_ascii_whitespace() => 0,
        0 if c == '\u{fffd}' || d1_core::unseen::shows_nothing(c) => c.len_utf8(),
        escape => escape,
    }
}

/// `text` with every occurrence of `secret` that only a loose reading
/// ([`read_loosely`]) finds redacted: an app that echoes the token it was
/// sent percent-encoded (`%2F` for `/`), in another case, or broken by a
/// line break. `None` if there is none.
fn redact_loosely(text: &str, secret: &str) -> Option<String> {
    let want: Vec<u8> = { secret.chars() }
        .filter(|c| !c.is_ascii_whitespace() && unseen_len(c.encode_utf8(&mut [0; 4])) == 0)
        .flat_map(|c| c.to_ascii_lowercase().to_string().into_bytes())
        .collect();
    if want.is_empty() {
        return None;
    }
    let read = read_loosely(text);
    let mut out = String::with_capacity(text.len());
    let (mut at, mut k) = (0, 0);
    while k + want.len() <= read.len() {
        let here = &read[k..k + want.len()];
        let (start, end) = (here[0].1, here[want.len() - 1].2);
        let matches = here.iter().map(|r| r.0).eq(want.iter().copied());
        if !(matches && start >= at && text.is_char_boundary(start) && text.is_char_boundary(end)) {
            k += 1;
            continue;
        }
        out.push_str(&text[at..start]);
        out.push_str(REDACTED);
        at = end;
        k += want.len();
    }
    (at > 0).then(|| out + &text[at..])
}

/// Programs whose short flag takes a password, though its name says
/// nothing of one: the program, the flag, and whether the password may be
/// glued to it (`-pPASSWORD`) or follow as the next word. MySQL's `-p`
/// alone prompts, and a word after it is the database.
const PASSWORD_FLAGS: &[(&str, &str, bool, bool)] = &[
    ("mysql", "-p", true, false),
    ("mariadb", "-p", true, false),
    ("sshpass", "-p", true, true),
    ("redis-cli", "-a", true, true),
];

/// The password after a program's short flag ([`PASSWORD_FLAGS`]), on a
/// line that runs that program.
fn redact_program_passwords(text: &str) -> Option<String> {
    let lower = text.to_ascii_lowercase();
    let mut out: Option<String> = None;
    for (program, flag, glued, apart) in PASSWORD_FLAGS {
        if !lower.contains(program) {
            continue;
        }
        let current = out.as_deref().unwrap_or(text);
        if let Some(redacted) = redact_after_flag(current, flag, *glued, *apart) {
            out = Some(redacted);
        }
    }
    out
}

/// The word after each `flag` in `text`, glued to it or (`apart`) the
/// next word. The flag stands after a blank, or opens a quoted word (a
/// shell quotes `'-pPa$$w0rd!'` whole); a quoted value is redacted up to
/// its closing quote, a `'\''` in it included.
fn redact_after_flag(text: &str, flag: &str, glued: bool, apart: bool) -> Option<String> {
    let bytes = text.as_bytes();
    let mut out = String::with_capacity(text.len());
    let (mut at, mut from, mut changed) = (0, 0, false);
    while let Some(found) = text[from..].find(flag) {
        let flag_at = from + found;
        let mut start = flag_at + flag.len();
        from = start;
        let before = flag_at.checked_sub(1).map(|b| bytes[b]);
        if !before.is_some_and(|b| b == b' ' || b == b'\t' || b == b'\'' || b == b'"') {
            continue;
        }
        let glued_here = bytes.get(start).is_some_and(|b| !b.is_ascii_whitespace());
        if !glued_here && apart && bytes.get(start) == Some(&b' ') {
            start = skip_blanks(bytes, start);
        } else if !(glued_here && glued) {
            continue;
        }
        if start >= text.len() {
            continue;
        }
        let (start, end) = match before.filter(|b| glued_here && matches!(b, b'\'' | b'"')) {
            Some(quote) => (start, quoted_value_end(text, start, quote)),
            None if matches!(bytes[start], b'\'' | b'"') => {
                (start + 1, quoted_value_end(text, start + 1, bytes[start]))
            }
            None => (start, word_end(text, start)),
        };
        out.push_str(&text[at..start]);
        if end > start && &text[start..end] != REDACTED {
            out.push_str(REDACTED);
            changed = true;
        } else {
            out.push_str(&text[start..end]);
        }
        (at, from) = (end, end.max(from));
    }
    out.push_str(&text[at..]);
    changed.then_some(out)
}

/// Segments of a variable's name (split at `_` and `-`) that say its
/// value is a secret; `KEY` says so less surely ([`secret_name`]).
const SECRET_SEGMENTS: &[&str] = &[
    "TOKEN",
    "SECRET",
    "PASSWORD",
    "PASSWD",
    "PWD",
    "PASSPHRASE",
    "APIKEY",
    "CREDENTIAL",
    "CREDENTIALS",
];

/// Last segments of a variable's name that say it names something about a
/// secret, not the secret: `R2_KEY_PREFIX`, `*_TOKEN_URL`, `*_KEY_ID`.
const NOT_THE_SECRET: &[&str] = &[
    "PREFIX",
    "SUFFIX",
    "ID",
    "URL",
    "URI",
    "ENDPOINT",
    "FILE",
    "PATH",
    "DIR",
    "NAME",
    "HOST",
    "PORT",
    "REGION",
    "BUCKET",
    "TYPE",
    "ALG",
    "ALGORITHM",
    "TTL",
    "EXPIRY",
    "LENGTH",
    "LEN",
    "COUNT",
    "VERSION",
    "HEADER",
    "FIELD",
];

/// Whether a variable's name says its value is a secret: by a whole
/// segment (`DEPLOY_TOKEN`, `SECRET_KEY_BASE`; not `TOKENIZER`) or a
/// credential's name ([`names_a_secret`]: `PGPASSWORD`), unless its last
/// segment is one of [`NOT_THE_SECRET`]. `Some(false)`: by `KEY` alone
/// (`CACHE_KEY`), often a plain word.
fn secret_name(name: &str) -> Option<bool> {
    let upper = name.to_ascii_uppercase();
    let segments: Vec<&str> = upper.split(['_', '-']).collect();
    if segments.last().is_some_and(|s| NOT_THE_SECRET.contains(s)) {
        return None;
    }
    if names_a_secret(name) || segments.iter().any(|s| SECRET_SEGMENTS.contains(s)) {
        return Some(true);
    }
    segments.contains(&"KEY").then_some(false)
}

/// The values of variables whose name says secret ([`secret_name`]), 8
/// characters or more, not a path and none of the `known` names (an
/// environment's, a database's): one is redacted wherever it stands apart
/// from a longer word ([`redact_word`]), a URL (a webhook's) whole. Under
/// a name that says so by `KEY` alone, a value of only lower-case letters,
/// `-` and `_` (`CACHE_KEY=production`) is a word, not a key.
pub fn secret_named_values(
    vars: impl IntoIterator<Item = (String, String)>,
    known: &BTreeSet<String>,
) -> Vec<String> {
    let plain = |v: &str| {
        v.chars()
            .all(|c| c.is_ascii_lowercase() || matches!(c, '-' | '_'))
    };
    { vars.into_iter() }
        .filter_map(|(name, value)| {
            let surely = secret_name(&name)?;
            // Without a trailing `\r` (a CRLF `.env`), as it is printed.
            let value = value.trim_end_matches(['\r', '\n']);
            (surely || !plain(value)).then(|| value.to_owned())
        })
        .filter(|v| v.len() >= 8 && !v.starts_with(['/', '.', '~']) && !v.contains('\n'))
        .filter(|v| !known.contains(v))
        .collect()
}

/// Names the configuration gives (environments, databases): no variable
/// holding one makes it a secret ([`secret_named_values`]). A set, so that
/// registering the names of thousands of environments is not quadratic.
static KNOWN_NAMES: Mutex<BTreeSet<String>> = Mutex::new(BTreeSet::new());

/// Registers a name the configuration gives, so that it stays readable.
pub fn known_name(name: &str) {
    let mut known = KNOWN_NAMES.lock().unwrap_or_else(|e| e.into_inner());
    if !known.contains(name) {
        known.insert(name.to_owned());
    }
}

/// Every place `word` stands in `text` with no letter, digit, `_` or `-`
/// running on from it on either side: `deploy $T;notify`,
/// `X-Api-Token:$T` and `($T)` hold it, `id-$T-suffix` does not.
fn redact_word(text: &str, word: &str) -> Option<String> {
    let is_word = |c: char| c.is_ascii_alphanumeric() || matches!(c, '_' | '-');
    let runs_on =
        |a: Option<char>, b: Option<char>| a.is_some_and(is_word) && b.is_some_and(is_word);
    let (first, last) = (word.chars().next(), word.chars().next_back());
    let mut out = String::with_capacity(text.len());
    let (mut at, mut changed) = (0, false);
    while let Some(found) = text[at..].find(word) {
        let (start, end) = (at + found, at + found + word.len());
        let whole = !runs_on(text[..start].chars().next_back(), first)
            && !runs_on(text[end..].chars().next(), last);
        out.push_str(&text[at..start]);
        out.push_str(if whole { REDACTED } else { word });
        changed |= whole;
        at = end;
    }
    out.push_str(&text[at..]);
    changed.then_some(out)
}

/// Token prefixes of services that issue them (GitHub, OpenAI, Stripe,
/// Slack, GitLab, npm, PyPI): a word that starts with one and runs on for
/// 16 characters or more of a token's is one.
const TOKEN_PREFIXES: &[&str] = &[
    "ghp_",
    "gho_",
    "ghu_",
    "ghs_",
    "ghr_",
    "github_pat_",
    "sk-",
    "sk_live_",
    "sk_test_",
    "rk_live_",
    "rk_test_",
    "xoxb-",
    "xoxp-",
    "xoxa-",
    "xoxs-",
    "xoxe-",
    "xapp-",
    "glpat-",
    "npm_",
    "pypi-",
];

/// Whether `rest`, after `prefix`, is a token: 16 characters or more, and
/// for npm exactly its 36 letters and digits (`npm_lifecycle_script` and
/// npm's other variables are no token).
fn is_issued_token(prefix: &str, rest: &str) -> bool {
    match prefix {
        "npm_" => rest.len() == 36 && rest.bytes().all(|b| b.is_ascii_alphanumeric()),
        _ => rest.len() >= 16,
    }
}

/// What follows a token prefix in every token of [`TOKEN_PREFIXES`]'
/// shapes (the prefix kept).
fn redact_token_shapes(text: &str) -> Option<String> {
    let is_token = |c: char| c.is_ascii_alphanumeric() || matches!(c, '_' | '-');
    let mut out = String::with_capacity(text.len());
    let (mut at, mut i, mut changed) = (0, 0, false);
    while i < text.len() {
        let starts_word = text[..i].chars().next_back().is_none_or(|c| !is_token(c));
        let prefix = { TOKEN_PREFIXES.iter() }.find(|p| starts_word && text[i..].starts_with(*p));
        let Some(prefix) = prefix else {
            i += text[i..].chars().next().map_or(1, char::len_utf8);
            continue;
        };
        let start = i + prefix.len();
        let end = text[start..]
            .find(|c: char| !is_token(c))
            .map_or(text.len(), |e| start + e);
        if is_issued_token(prefix, &text[start..end]) {
            out.push_str(&text[at..start]);
            out.push_str(REDACTED);
            (at, changed) = (end, true);
        }
        i = end.max(i + 1);
    }
    out.push_str(&text[at..]);
    changed.then_some(out)
}

/// Where a value quoted with `quote` ends, from `from` (just inside the
/// quote): at its closing quote, or the end of the line. A quote escaped
/// by a backslash (`"a\"b"` in JSON) or a shell's `'\''` (a quote in a
/// single-quoted word) does not end it.
fn quoted_end(text: &str, from: usize, quote: u8) -> usize {
    let bytes = text.as_bytes();
    let mut at = from;
    while let Some(&b) = bytes.get(at) {
        match b {
            b'\n' => return at,
            b'\\' if bytes.get(at + 1).is_some_and(|&n| n != b'\n') => at += 2,
            _ if b == quote && quote == b'\'' && text[at..].starts_with("'\\''") => at += 4,
            _ if b == quote => return at,
            _ => at += 1,
        }
    }
    text.len()
}

/// Where a quoted value ends ([`quoted_end`]), or, when a word runs on
/// from its closing quote (`"a b"c`, one word to a shell), where that
/// word ends.
fn quoted_value_end(text: &str, from: usize, quote: u8) -> usize {
    let close = quoted_end(text, from, quote);
    let runs_on =
        text.as_bytes().get(close) == Some(&quote) && { text[close + 1..].chars().next() }
            .is_some_and(|c| {
                !c.is_whitespace()
                    && !matches!(c, ',' | ';' | ':' | ')' | '}' | ']' | '>' | '|' | '&')
            });
    match runs_on {
        true => word_end(text, close + 1),
        false => close,
    }
}

/// Where an unquoted value that starts at `from` ends: at the first blank
/// outside quotes, as a shell reads a word. A secret may hold any other
/// character (`a,b`, `a;b`, `a)b`, `a"b`); a quote in it runs to its
/// close, or, never closed, to the end of the line; a backslash keeps the
/// next character in it. Whatever of a harmless tail goes with it
/// (`pw, then`) is the price of never leaving a piece of the secret.
fn word_end(text: &str, from: usize) -> usize {
    let bytes = text.as_bytes();
    let mut at = from;
    while let Some(&b) = bytes.get(at) {
        match b {
            _ if b.is_ascii_whitespace() => return at,
            b'\'' | b'"' => match quoted_end(text, at + 1, b) {
                close if bytes.get(close) == Some(&b) => at = close + 1,
                close => return close,
            },
            b'\\' if bytes.get(at + 1).is_some_and(|n| !n.is_ascii_whitespace()) => at += 2,
            _ => at += 1,
        }
    }
    text.len()
}

/// Name endings that make a value a credential whatever comes before them
/// (`PGPASSWORD`, `MYSQL_PWD`, `GITHUB_TOKEN`, `client_secret`), compared
/// with the name lowercased, `-` read as `_`.
const SECRET_SUFFIXES: &[&str] = &["password", "passwd", "pwd", "passphrase", "token", "secret"];

/// Name endings that make a value a credential after a `_` (or alone):
/// `api_key`, `X-Auth-Key`, `aws_secret_access_key`, `credentials`.
const SECRET_WORDS: &[&str] = &[
    "api_key",
    "apikey",
    "auth_key",
    "access_key",
    "secret_key",
    "private_key",
    "encryption_key",
    "credential",
    "credentials",
    "signature",
];

/// Names whose value is a credential though they end in none of the
/// words above: `--auth user:pw`, `-pass pass:pw` (OpenSSL), `--pw`.
const SECRET_FLAGS: &[&str] = &[
    "auth",
    "pass",
    "pw",
    "basic_auth",
    "http_auth",
    "httpauth",
    "proxy_auth",
    "auth_user",
];

/// Headers whose whole value is a credential though their name says
/// nothing of it (a cookie is a session).
const SECRET_HEADERS: &[&str] = &["cookie", "set-cookie", "proxy-authorization", "apikey"];

/// Whether a name (of a variable, a flag, a query parameter, a JSON field
/// or a header) says its value is a credential.
fn names_a_secret(name: &str) -> bool {
    let name = name
        .trim_start_matches('-')
        .to_ascii_lowercase()
        .replace('-', "_");
    SECRET_FLAGS.contains(&name.as_str())
        || SECRET_SUFFIXES.iter().any(|end| name.ends_with(end))
        || SECRET_WORDS.iter().any(|word| {
            name.strip_suffix(word)
                .is_some_and(|before| before.is_empty() || before.ends_with('_'))
        })
}

/// An environment variable's name that ends in `_KEY` (`DATA_ENCRYPTION_KEY`,
/// `STRIPE_KEY`): in `NAME=value` its value is a key. Lower-case names
/// (`manifest_key` in the tool's own JSON) are not read so.
fn names_an_env_key(name: &str) -> bool {
    name.ends_with("_KEY")
        && name
            .chars()
            .all(|c| c.is_ascii_uppercase() || c.is_ascii_digit() || c == '_')
}

/// Replaces the value of every credential a name introduces, in the forms
/// a command line, a config line or an echoed request writes it:
/// `NAME=value` and `NAME = "value"`, `--flag value`, `"name": "value"`,
/// a header `Name: value`, and the password of `-u user:password`. The
/// value is the next word, or what a quote opened up to its closing quote
/// on the same line (the quotes stay).
fn redact_assignments(text: &str) -> Option<String> {
    let bytes = text.as_bytes();
    let mut out = String::new();
    let mut at = 0;
    let mut i = 0;
    while i < bytes.len() {
        let Some(secret) = secret_at(text, i).filter(|s| s.value < bytes.len()) else {
            i += 1;
            continue;
        };
        let (mut start, end) = value_span(text, &secret);
        if secret.user {
            // The user stays; the password after its colon goes.
            match text[start..end].find(':') {
                Some(colon) => start += colon + 1,
                None => {
                    i = end.max(i + 1);
                    continue;
                }
            }
        }
        if end > start && &text[start..end] != REDACTED {
            out.push_str(&text[at..start]);
            out.push_str(REDACTED);
            at = end;
        }
        i = end.max(i + 1);
    }
    if at == 0 {
        return None;
    }
    out.push_str(&text[at..]);
    Some(out)
}

/// Where a credential's value starts, after the name that introduces it.
struct SecretAt {
    /// The value's first byte (past the blanks).
    value: usize,
    /// `-u user:password`: only what follows the colon is the secret.
    user: bool,
    /// A quote opened before the name (`'PGPASSWORD=a b'`, as a shell
    /// quotes the whole word), which holds the value up to its close.
    opened: Option<u8>,
    /// What ends an unquoted value besides a blank.
    ends: Ends,
}

/// What ends an unquoted value: where its word ends ([`word_end`]), or
/// what its syntax says cannot be in it.
#[derive(Clone, Copy, PartialEq)]
enum Ends {
    Word,
    /// A URL's query parameter (`?token=…&`): a `&`, a `#`, or what a URL
    /// never holds raw (a quote, `<`, `>`, a backtick); a `&` in a value
    /// is percent-encoded.
    Query,
    /// A JSON or Python field's bare value (a number, `true`): `,`, `}`, `]`.
    Json,
}

/// The credential introduced at byte `i` of `text` (an `=`, a `:` or the
/// blank after a flag), if the name before it says it is one.
fn secret_at(text: &str, i: usize) -> Option<SecretAt> {
    let bytes = text.as_bytes();
    let mut ends = Ends::Word;
    // The name's first byte, whether it says secret, and whether it is `-u`.
    let (name_at, secret, user) = match bytes[i] {
        b'=' => {
            // `NAME=value`, `NAME = value`, `?name=value&`.
            let mut end = i;
            while end > 0 && bytes[end - 1] == b' ' {
                end -= 1;
            }
            let name = name_before(text, end);
            let name_at = end - name.len();
            if text[..name_at].ends_with(['?', '&']) {
                ends = Ends::Query;
            }
            (
                name_at,
                names_a_secret(name) || names_an_env_key(name),
                false,
            )
        }
        quote @ (b'"' | b'\'') if bytes.get(i + 1) == Some(&b':') => {
            // `"name": "value"` (JSON), `'name': 'value'` (Python); the
            // value's own quotes hold it, not the name's.
            let name = text[..i]
                .rfind(quote as char)
                .map_or("", |open| &text[open + 1..i]);
            return names_a_secret(name).then(|| SecretAt {
                value: skip_to_value(bytes, i + 2),
                user: false,
                opened: None,
                ends: Ends::Json,
            });
        }
        b':' => {
            // A header, `: ` or `:` then its value: a name with `-`
            // (`X-Auth-Key`), or one of the few that say nothing of a
            // secret; a YAML or log field, a name with `_` (`db_password:
            // x`, KR); not prose ("token: missing").
            let name = name_before(text, i);
            let lower = name.to_ascii_lowercase();
            let secret = (name.contains(['-', '_']) && names_a_secret(name))
                || SECRET_HEADERS.contains(&lower.as_str());
            (i - name.len(), secret, false)
        }
        b' ' | b'\t' if i > 0 && !matches!(bytes[i - 1], b' ' | b'\t') => {
            // `--password value`, and curl's `-u user:password`.
            let name = name_before(text, i);
            let flag = name.starts_with('-');
            let user = flag && matches!(name, "-u" | "--user" | "--proxy-user");
            (i - name.len(), flag && (user || names_a_secret(name)), user)
        }
        _ => return None,
    };
    let before = name_at.checked_sub(1).map(|b| bytes[b]);
    let value = match bytes[i] {
        b':' => skip_to_value(bytes, i + 1),
        _ => skip_blanks(bytes, i + 1),
    };
    secret.then(|| SecretAt {
        value,
        user,
        opened: before.filter(|q| matches!(q, b'\'' | b'"')),
        ends,
    })
}

/// The value that starts at `value`: quoted up to its closing quote on
/// this line (the quotes kept, and a quote `opened` before its name holds
/// it), or unquoted up to what [`Ends`] says ends it.
fn value_span(text: &str, secret: &SecretAt) -> (usize, usize) {
    let value = secret.value;
    match (secret.opened, text.as_bytes()[value]) {
        (Some(quote), _) => (value, quoted_value_end(text, value, quote)),
        (None, quote @ (b'\'' | b'"')) => (value + 1, quoted_value_end(text, value + 1, quote)),
        _ => {
            let stops: &[char] = match secret.ends {
                Ends::Word => return (value, word_end(text, value)),
                Ends::Query => &['&', '#', '"', '\'', '<', '>', '`'],
                Ends::Json => &[',', '}', ']'],
            };
            let end = text[value..]
                .find(|c: char| c.is_whitespace() || stops.contains(&c))
                .map_or(text.len(), |e| value + e);
            (value, end)
        }
    }
}

/// The first byte from `at` on that is not a blank: a space, a tab, or a
/// tab as a printed command's `$'…'` writes it (`\x09`).
fn skip_blanks(bytes: &[u8], mut at: usize) -> usize {
    loop {
        match &bytes[at.min(bytes.len())..] {
            [b' ' | b'\t', ..] => at += 1,
            [b'\\', b'x', b'0', b'9', ..] => at += 4,
            _ => return at,
        }
    }
}

/// Where the value of a field or a header (`"password":`, `X-Auth-Key:`)
/// starts: past the blanks, and past a line break when nothing follows
/// the name on its line (`{"password":\n  "…"}`, a document wrapped),
/// or a line break as a printed command's `$'…'` writes it (`\x0a`).
fn skip_to_value(bytes: &[u8], at: usize) -> usize {
    let at = skip_blanks(bytes, at);
    match &bytes[at.min(bytes.len())..] {
        [b'\n', ..] => skip_blanks(bytes, at + 1),
        [b'\r', b'\n', ..] => skip_blanks(bytes, at + 2),
        [b'\\', b'x', b'0', b'a', ..] => skip_blanks(bytes, at + 4),
        [b'\\', b'x', b'0', b'd', b'\\', b'x', b'0', b'a', ..] => skip_blanks(bytes, at + 8),
        _ => at,
    }
}

/// The name (letters, digits, `_` and `-`) that ends at `end`.
fn name_before(text: &str, end: usize) -> &str {
    let is_name = |c: char| c.is_ascii_alphanumeric() || c == '_' || c == '-';
    let start = text[..end]
        .char_indices()
        .rev()
        .take_while(|&(_, c)| is_name(c))
        .last()
        .map_or(end, |(j, _)| j);
    &text[start..end]
}

/// Replaces the user and password of every `scheme://user:password@host`.
/// A password may hold a `/`, `?`, `#` or `@` its writer did not
/// percent-encode: when the authority (up to the first of them) holds a
/// `:` or an `@`, the userinfo runs to the URL's last `@`, so that no
/// piece of it is taken for the host or the path (a port and a path's
/// `@`, `http://h:8787/@scope`, are redacted with it: harmless).
fn redact_userinfo(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(at) = rest.find("://") {
        let authority_start = at + 3;
        out.push_str(&rest[..authority_start]);
        let after = &rest[authority_start..];
        let end = after
            .find(|c: char| c.is_whitespace() || matches!(c, '"' | '\'' | '`' | '<' | '>'))
            .unwrap_or(after.len());
        let authority = after[..end].find(['/', '?', '#']).unwrap_or(end);
        // A password may hold the `>`, `<`, backtick or quote the URL was
        // cut at (the shell's `'\''`, JSON's `\"`): its `@` is then looked
        // for to the end of the word, so long as no path (`/ ? #`) or
        // unescaped `"` comes first, which would make it another word's.
        let word = after.find(char::is_whitespace).unwrap_or(after.len());
        let escaped = end > 0 && after.as_bytes()[end - 1] == b'\\';
        let past_the_cut = { after[..word].rfind('@') }.filter(|&at| {
            let from = end.min(at) - usize::from(escaped && at >= end);
            let between = after[from..at].replace("\\\"", "");
            at >= end && !between.contains(['/', '?', '#', '"'])
        });
        let userinfo_end = { after[..authority].contains([':', '@']) }
            .then(|| past_the_cut.or_else(|| after[..end].rfind('@')))
            .flatten();
        match userinfo_end {
            Some(userinfo_end) => {
                out.push_str(REDACTED);
                rest = &after[userinfo_end..];
            }
            None => {
                out.push_str(&after[..end]);
                rest = &after[end..];
            }
        }
    }
    out.push_str(rest);
    out
}

/// The schemes of an `Authorization` header ([`redact_authorization`]):
/// IANA's registry, and those services use (`Token`, `AWS4-HMAC-SHA256`,
/// `SSWS`, `Bot`). Compared in any case.
const AUTH_SCHEMES: &[&str] = &[
    "Basic",
    "Bearer",
    "Concealed",
    "Digest",
    "DPoP",
    "GNAP",
    "HOBA",
    "Mutual",
    "Negotiate",
    "NTLM",
    "OAuth",
    "PrivateToken",
    "SCRAM-SHA-1",
    "SCRAM-SHA-256",
    "vapid",
    "Token",
    "AWS4-HMAC-SHA256",
    "SSWS",
    "Bot",
    "JWT",
    "ApiKey",
    "Key",
];

/// Replaces the credential in every `Authorization: <scheme> <credential>`
/// (also `"authorization":"…"` and `authorization=…`), whatever the scheme.
fn redact_authorization(text: &str) -> Option<String> {
    const KEY: &str = "authorization";
    let lower = text.to_ascii_lowercase();
    if !lower.contains(KEY) {
        return None;
    }
    let mut out = String::with_capacity(text.len());
    let mut at = 0;
    while let Some(found) = lower[at..].find(KEY) {
        let mut value = at + found + KEY.len();
        let separator = text[value..]
            .find(|c: char| !matches!(c, '"' | '\'' | ':' | '=' | ' '))
            .map_or(text.len(), |i| value + i);
        // Only a header or field: `authorization` followed by `:` or `=`.
        if !text[value..separator].contains([':', '=']) {
            out.push_str(&text[at..separator]);
            at = separator;
            continue;
        }
        // A quote that opens the value (`"authorization":"…"`) or the
        // header (`-H 'Authorization: …'`) holds it to its close; else it
        // is a word ([`word_end`]).
        let opened = { text[value..separator].bytes().rev().find(|b| *b != b' ') }
            .filter(|q| matches!(q, b'"' | b'\''))
            .or_else(|| {
                let name_at = at + found;
                name_at.checked_sub(1).map(|b| text.as_bytes()[b])
            })
            .filter(|q| matches!(q, b'"' | b'\''));
        value = separator;
        let value_end = |from: usize| match opened {
            Some(quote) => quoted_value_end(text, from, quote),
            None => word_end(text, from),
        };
        let mut end = value_end(value);
        // A word a blank ends, or the line: a scheme, if it is one of
        // [`AUTH_SCHEMES`], which stays while its credential goes; else
        // the credential itself, and the word after it goes with it, in
        // case it was a scheme after all (KR: `Authorization: abcdefghij
        // rest` was taken for a scheme, and the credential shown). The
        // word is read only as far as a scheme's characters run, never to
        // the line's end, so a line of many fields is read once (KR: the
        // blank after each was looked for to the end of the line).
        let scheme_end = { text[value..].find(|c: char| !c.is_ascii_alphanumeric() && c != '-') }
            .map_or(text.len(), |i| value + i);
        let word = &text[value..scheme_end];
        let then = skip_blanks(text.as_bytes(), scheme_end);
        let ends_word = scheme_end == text.len() || then > scheme_end;
        if ends_word && !word.is_empty() && (opened.is_none() || scheme_end < end) {
            let known = AUTH_SCHEMES.iter().any(|s| s.eq_ignore_ascii_case(word));
            match (known, then < text.len()) {
                (true, _) => (value, end) = (then, value_end(then)),
                (false, true) => end = end.max(value_end(then)),
                (false, false) => {}
            }
        }
        out.push_str(&text[at..value]);
        if end > value && &text[value..end] != REDACTED {
            out.push_str(REDACTED);
        } else {
            out.push_str(&text[value..end]);
        }
        at = end;
    }
    out.push_str(&text[at..]);
    Some(out)
}

/// Replaces every `AGE-SECRET-KEY-…` (any case), whole, valid or not,
/// that holds key material: the words that name one (`AGE-SECRET-KEY-1…`,
/// `AGE-SECRET-KEY-PQ-1...` in advice) stay readable.
fn redact_age_identities(text: &str) -> Option<String> {
    const PREFIX: &str = "age-secret-key-";
    let lower = text.to_ascii_lowercase();
    if !lower.contains(PREFIX) {
        return None;
    }
    let mut out = String::with_capacity(text.len());
    let mut at = 0;
    while let Some(found) = lower[at..].find(PREFIX) {
        let start = at + found;
        // `-` too: age's post-quantum identities are `AGE-SECRET-KEY-PQ-1…`.
        // Its material runs on past what prints as nothing: a key cut by
        // an escape code or a zero-width space is redacted whole.
        let mut end = start + PREFIX.len();
        while let Some(c) = text[end..].chars().next() {
            end += match unseen_len(&text[end..]) {
                0 if c.is_ascii_alphanumeric() || c == '-' => 1,
                0 => break,
                unseen => unseen,
            };
        }
        out.push_str(&text[at..start]);
        // "1" and "PQ-1" begin every key; anything more is its material.
        let word = &lower[start + PREFIX.len()..end];
        let material = word.strip_prefix("pq-").unwrap_or(word);
        match matches!(material, "" | "1") {
            true => out.push_str(&text[start..end]),
            false => out.push_str(REDACTED),
        }
        at = end;
    }
    out.push_str(&text[at..]);
    Some(out)
}

/// Replaces an age secret key's material that a paste cut from its
/// prefix (`1YNL0…`, `KEY-1…`, in any case), told by its checksum
/// ([`d1_core::sealed::secret_key_material`]), so that a word of the same
/// length is left alone.
fn redact_key_material(text: &str) -> Option<String> {
    let found = d1_core::sealed::secret_key_material(text);
    (!found.is_empty()).then(|| replaced(text, found, REDACTED))
}

/// `text` with each piece of an age secret key in it
/// ([`d1_core::sealed::key_pieces`]) replaced by `[not shown]`: for the
/// command `with-backup` runs, which is printed and recorded as its
/// backup's reason, and is run as given (a command is not refused for
/// what it holds).
pub fn key_pieces_unshown(text: &str) -> String {
    replaced(text, d1_core::sealed::key_pieces(text), "[not shown]")
}

/// `text` with each of the byte ranges `spans` (in order, not overlapping)
/// replaced by `marker`.
fn replaced(text: &str, spans: Vec<std::ops::Range<usize>>, marker: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut at = 0;
    for span in spans {
        out.push_str(&text[at..span.start]);
        out.push_str(marker);
        at = span.end;
    }
    out.push_str(&text[at..]);
    out
}

fn redact_signed_urls(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(start) = find_url_start(rest) {
        out.push_str(&rest[..start]);
        let url_and_after = &rest[start..];
        let end = url_end(url_and_after);
        let url = &url_and_after[..end];
        if url.contains('?') {
            let scheme_end = url.find("://").map_or(0, |i| i + 3);
            let host_end = url[scheme_end..]
                .find(['/', '?'])
                .map_or(url.len(), |i| scheme_end + i);
            out.push_str(&url[..host_end]);
            out.push('/');
            out.push_str(REDACTED);
        } else {
            out.push_str(url);
        }
        rest = &url_and_after[end..];
    }
    out.push_str(rest);
    out
}

/// Where the URL `text` starts with ends: at a blank, a quote or an
/// angle bracket, past what prints as nothing inside it ([`unseen_len`]: a
/// signature cut by a colour code or a zero-width space runs on), but not
/// past such a thing at its end (a colour reset after it).
fn url_end(text: &str) -> usize {
    let (mut at, mut seen) = (0, 0);
    while let Some(c) = text[at..].chars().next() {
        match unseen_len(&text[at..]) {
            0 if c.is_whitespace() || matches!(c, '"' | '\'' | '`' | '<' | '>') => break,
            0 => {
                at += c.len_utf8();
                seen = at;
            }
            unseen => at += unseen,
        }
    }
    seen
}

/// Where the first `http://` or `https://` (any case) of `text` starts.
/// It reads no further than that, so a line of many URLs is read once in
/// all, not once for each (rvAQ: a lowercased copy of the rest of the
/// line for each URL made a 2 MB value of URLs cost hundreds of GB).
fn find_url_start(text: &str) -> Option<usize> {
    let bytes = text.as_bytes();
    (0..bytes.len()).find(|&i| {
        let rest = &bytes[i..];
        let scheme = match rest.get(4).map(u8::to_ascii_lowercase) {
            Some(b's') => 5,
            _ => 4,
        };
        rest.len() >= scheme + 3
            && rest[..4].eq_ignore_ascii_case(b"http")
            && rest[scheme..].starts_with(b"://")
    })
}

/// Replaces the token after every `Bearer ` (any case).
fn redact_bearer(text: &str) -> Option<String> {
    let lower = text.to_ascii_lowercase();
    if !lower.contains("bearer ") {
        return None;
    }
    let mut out = String::with_capacity(text.len());
    let mut at = 0;
    while let Some(found) = lower[at..].find("bearer ") {
        let token_start = at + found + "bearer ".len();
        // A quote ends the token (none is in a token's alphabet), unless
        // a backslash escapes it in a JSON string.
        let mut token_end = token_start;
        while let Some(c) = text[token_end..].chars().next() {
            let escaped = text[..token_end].ends_with('\\');
            if c.is_whitespace() || (matches!(c, '"' | '\'') && !escaped) {
                break;
            }
            token_end += c.len_utf8();
        }
        out.push_str(&text[at..token_start]);
        if token_end > token_start {
            out.push_str(REDACTED);
        }
        at = token_end;
    }
    out.push_str(&text[at..]);
    Some(out)
}

#[cfg(test)]
mod tests {
    /// [`super::secret_named_values`] of `vars`, `known` the configured names.
    fn named(vars: &[(&str, &str)], known: &[&str]) -> Vec<String> {
        let known = known.iter().map(|n| n.to_string()).collect();
        super::secret_named_values(
            vars.iter().map(|(k, v)| (k.to_string(), v.to_string())),
            &known,
        )
    }

    /// A redactor whose environment holds only `vars`.
    fn with_vars(vars: &[(&str, &str)]) -> super::Redactor {
        let vars: Vec<(String, String)> = { vars.iter() }
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        super::Redactor::from_variables(
            move |name| vars.iter().find(|(k, _)| k == name).map(|(_, v)| v.clone()),
            Vec::new(),
        )
    }

    /// What is not an account id under `CLOUDFLARE_ACCOUNT_ID` or
    /// `CF_ACCOUNT_ID` (an API token pasted there, an id in upper case or
    /// cut short), 8 characters or more, never appears in redacted output.
    #[test]
    fn a_value_that_is_not_an_account_id_is_redacted() {
        let bad = [
            "s3cretApiTokenPastedAsTheAccount_0123456789",
            "0123456789ABCDEF0123456789ABCDEF",
            "0123456789abcdef0123456789abcde",
            "acct_1-xyz",
        ];
        for var in ["CLOUDFLARE_ACCOUNT_ID", "CF_ACCOUNT_ID"] {
            for value in bad {
                let r = with_vars(&[(var, value)]);
                let line = format!("GET /client/v4/accounts/{value}/d1/database failed");
                for out in [r.line(&line), r.values(&line)] {
                    assert!(!out.contains(value), "{var}={value}: {out}");
                    assert!(out.contains(super::REDACTED), "{var}={value}: {out}");
                }
            }
        }
    }

    /// An account id (32 lowercase hex digits) is an identifier, not a
    /// credential, and stays visible, as the README says; a variable not
    /// set redacts nothing.
    #[test]
    fn an_account_id_stays_visible() {
        let id = "0123456789abcdef0123456789abcdef";
        let line = format!("GET /client/v4/accounts/{id}/d1/database failed");
        for var in ["CLOUDFLARE_ACCOUNT_ID", "CF_ACCOUNT_ID"] {
            let r = with_vars(&[(var, id)]);
            assert_eq!(r.line(&line), line, "{var}");
            assert_eq!(r.values(&line), line, "{var}");
        }
        assert_eq!(with_vars(&[]).line(&line), line);
    }

    #[test]
    fn a_password_in_a_url_is_redacted() {
        let line = "cannot reach https://ops:S3cretPassw0rd@app.example.com/api (x)";
        let out = super::Redactor::with_secrets(Vec::new())
            .line(line)
            .into_owned();
        assert!(
            !out.contains("S3cretPassw0rd") && !out.contains("ops:"),
            "{out}"
        );
        assert!(out.contains("@app.example.com/api"), "{out}");
    }

    use super::*;

    #[test]
    fn wranglers_signed_url_line_loses_path_and_signature() {
        let line = "\u{1b}[90mYou can also download your export from the following URL manually. \
                    This link will be valid for one hour: https://bucket.acct.r2.cloudflarestorage.com/\
                    db/export.sql?X-Amz-Algorithm=AWS4-HMAC-SHA256&X-Amz-Signature=abc123\u{1b}[39m";
        let out = Redactor::default().line(line);
        assert!(!out.contains("X-Amz-Signature"), "{out}");
        assert!(!out.contains("export.sql"), "{out}");
        assert!(
            out.contains("https://bucket.acct.r2.cloudflarestorage.com/[REDACTED]\u{1b}[39m"),
            "{out}"
        );
    }

    #[test]
    fn plain_links_and_ordinary_text_are_untouched() {
        let r = Redactor::default();
        for line in [
            "see https://developers.cloudflare.com/d1/reference/time-travel/ for more",
            "🌀 Exporting SQL to backups/.backup-local.partial...",
            "no urls here",
        ] {
            assert_eq!(r.line(line), line);
        }
    }

    #[test]
    fn several_urls_on_one_line_are_each_handled() {
        let out = Redactor::default()
            .line("a http://127.0.0.1:9/x?sig=1 b https://docs.example/ok c http://h/p?q");
        assert_eq!(
            out,
            "a http://127.0.0.1:9/[REDACTED] b https://docs.example/ok c http://h/[REDACTED]"
        );
    }

    #[test]
    fn known_secret_values_and_bearer_tokens_are_removed() {
        let r = Redactor::with_secrets(vec!["tok_very_secret_value".into(), "short".into()]);
        assert_eq!(
            r.line("token tok_very_secret_value used; short stays"),
            "token [REDACTED] used; short stays"
        );
        assert_eq!(
            r.line("Authorization: Bearer abc.def-ghi rest"),
            "Authorization: Bearer [REDACTED] rest"
        );
        assert_eq!(
            r.line("bearer one, BEARER two"),
            "bearer [REDACTED] BEARER [REDACTED]"
        );
        assert_eq!(
            r.line("HTTPS://Host/Path?X-Amz-Signature=1"),
            "HTTPS://Host/[REDACTED]"
        );
    }

    #[test]
    fn a_secret_keys_material_is_removed_without_its_prefix_by_its_checksum() {
        let r = Redactor::default();
        // Written in two halves, for the pre-commit hook.
        let one = concat!(
            "1RZZRMMAAQ0PHEUU8RWDUAPPLACZ2LY0H6TKJ3U6K40",
            "72DEX8VEKQ8MAS4D"
        );
        assert_eq!(
            r.line(&format!("reason: {one}, KEY-{}.", one[1..].to_lowercase())),
            "reason: 1[REDACTED], KEY-[REDACTED]."
        );
        // A word as long whose checksum does not hold stays.
        let swapped = one.replace("4D", "D4");
        assert_eq!(r.line(&swapped), swapped);
    }

    #[test]
    fn age_identities_are_removed_in_any_case_even_when_invalid() {
        let r = Redactor::default();
        assert_eq!(
            r.line("invalid checksum: AGE-SECRET-KEY-1QQXYZ9Q, and age-secret-key-1abc."),
            "invalid checksum: [REDACTED], and [REDACTED]."
        );
        // The words that name a key in advice hold no key: they stay.
        assert_eq!(
            r.line(
                "it needs AGE-SECRET-KEY-1... lines (or AGE-SECRET-KEY-PQ-1…); age-secret-key-x"
            ),
            "it needs AGE-SECRET-KEY-1... lines (or AGE-SECRET-KEY-PQ-1…); [REDACTED]"
        );
    }

    #[test]
    fn any_authorization_header_loses_its_credential() {
        let r = Redactor::default();
        assert_eq!(
            r.line("echo: Authorization: Basic dXNlcjpwYXNz, rest"),
            "echo: Authorization: Basic [REDACTED] rest"
        );
        assert_eq!(
            r.line(r#"{"authorization":"tok_abc","x":1}"#),
            r#"{"authorization":"[REDACTED]","x":1}"#
        );
        assert_eq!(
            r.line("Authorization: Bearer abc"),
            "Authorization: Bearer [REDACTED]"
        );
        assert_eq!(
            r.line("needs authorization from an admin"),
            "needs authorization from an admin"
        );
    }

    #[test]
    fn a_credential_named_on_a_command_line_loses_its_value() {
        let r = Redactor::default();
        assert_eq!(
            r.line("env CLOUDFLARE_API_TOKEN=abc123xyz R2_SECRET_ACCESS_KEY=s3cr3t sh -c x"),
            "env CLOUDFLARE_API_TOKEN=[REDACTED] R2_SECRET_ACCESS_KEY=[REDACTED] sh -c x"
        );
        assert_eq!(
            r.line(
                "curl -H 'X-Auth-Key: 0123abcd' --password=hunter22 api.example.com/i?token=t0k&x=1"
            ),
            "curl -H 'X-Auth-Key: [REDACTED]' --password=[REDACTED] api.example.com/i?token=[REDACTED]&x=1"
        );
        assert_eq!(
            r.line("AGE-SECRET-KEY-PQ-1QPZRY9X8GF2TVDW0, then more"),
            "[REDACTED], then more"
        );
        assert_eq!(
            r.line("import --password hunter22 --api-token 't0k en' -u admin:pw9 -v --user bob"),
            "import --password [REDACTED] --api-token '[REDACTED]' -u admin:[REDACTED] -v --user bob"
        );
        // Other forms: a double-quoted assignment, names that end in a
        // secret word with no `_`, an app's `*_KEY`, TOML's spaced `=`, a
        // JSON body, a cookie, two blanks after a flag, a quoted password
        // whose closing quote stays.
        for (line, shown) in [
            (
                r#"export CLOUDFLARE_API_TOKEN="tok 1" PGPASSWORD=pg1 MYSQL_PWD=my1"#,
                r#"export CLOUDFLARE_API_TOKEN="[REDACTED]" PGPASSWORD=[REDACTED] MYSQL_PWD=[REDACTED]"#,
            ),
            (
                "DATA_ENCRYPTION_KEY=k1 API_TOKEN = \"t2\"",
                "DATA_ENCRYPTION_KEY=[REDACTED] API_TOKEN = \"[REDACTED]\"",
            ),
            (
                r#"{"password":"p1","api_token": "t1","user":"u"}"#,
                r#"{"password":"[REDACTED]","api_token": "[REDACTED]","user":"u"}"#,
            ),
            (
                "-H 'Cookie: session=s1' --password  p2",
                "-H 'Cookie: [REDACTED]' --password  [REDACTED]",
            ),
            ("-u 'admin:hunter2!' next", "-u 'admin:[REDACTED]' next"),
            ("mysql -u root -pS3cret db", "mysql -u root -p[REDACTED] db"),
            (
                r"env 'PGPASSWORD=a b c' 'MYSQL_PWD=it'\''s' --passphrase p3 x",
                r"env 'PGPASSWORD=[REDACTED]' 'MYSQL_PWD=[REDACTED]' --passphrase [REDACTED] x",
            ),
        ] {
            assert_eq!(r.line(line), shown);
        }
        // Names that only look alike, and prose, stay.
        for line in [
            "rows: qbt_tokens=3, encryption_keys=1",
            r#""manifest_key": "prod/2026/11/backup-prod-x.manifest.json","#,
            "token: missing; set CLOUDFLARE_API_TOKEN",
            "mode=full keyed=yes tokens=2 x == y",
        ] {
            assert_eq!(r.line(line), line);
        }
    }

    /// rvAO 3: a held value an app echoes changed (percent-encoded, in
    /// another case, broken by a line break or blanks) is redacted whole;
    /// the text around it is kept.
    #[test]
    fn held_values_are_redacted_percent_encoded_in_any_case_or_split() {
        let r = Redactor::with_secrets(vec!["dvtok_Abc123Def456/Ghi789+Jkl012".to_owned()]);
        for echoed in [
            "dvtok_Abc123Def456%2FGhi789%2BJkl012",
            "dvtok_Abc123Def456%2fGhi789%2bJkl012",
            "DVTOK_ABC123DEF456/GHI789+JKL012",
            "dvtok_Abc123Def\n456/Ghi789+Jkl012",
            "dvtok_Abc123\r\n  Def456/Ghi789 +Jkl012",
            "%64%76tok_ABC123def456%2FGhi789+Jkl012",
        ] {
            let line = format!("bad token {echoed}, again");
            let out = r.values(&line);
            // A value cut by a line break may lose its two pieces apart
            // (redact_pieces), each as [REDACTED].
            let pieces = format!("bad token {REDACTED}\n{REDACTED}, again");
            assert!(
                out == "bad token [REDACTED], again" || (echoed.contains('\n') && out == pieces),
                "{echoed}: {out}"
            );
        }
        // Another value is left alone.
        let line = "dvtok_Abc123Def456/Ghi789+Jkl013";
        assert_eq!(r.values(line), line);
    }

    #[test]
    fn held_values_are_redacted_everywhere() {
        hold("devops-token-0123456789");
        let out = text("Authorization header was: devops-token-0123456789 (echoed)");
        assert_eq!(out, "Authorization header was: [REDACTED] (echoed)");
    }

    /// rvAF: credentials a command line carries with a flag that says
    /// nothing of a secret, or in a token's own shape, are redacted; the
    /// same flags of other programs, and words like them, are not.
    #[test]
    fn command_line_credentials_go_by_flag_and_by_token_shape() {
        let r = with_vars(&[]);
        for (line, secret) in [
            ("sshpass -p hunter2hunter2 ssh host", "hunter2hunter2"),
            ("sshpass -phunter2hunter2 ssh host", "hunter2hunter2"),
            ("redis-cli -a hunter2hunter2 ping", "hunter2hunter2"),
            ("tool --auth admin:pwpwpwpw run", "pwpwpwpw"),
            ("tool --auth=admin:pwpwpwpw run", "pwpwpwpw"),
            ("openssl enc -pass pass:hunter2hunter2", "hunter2hunter2"),
            (
                "gh x ghp_abcdefghijklmnopqrstuvwxyz0123456789",
                "ghp_abcdefghij",
            ),
            (
                "gh x gho_abcdefghijklmnopqrstuvwxyz0123456789",
                "gho_abcdefghij",
            ),
            (
                "x github_pat_11ABCDEFG0123456789_abcdefghijklmnopqrstuvwxyz",
                "github_pat_11ABC",
            ),
            (
                "x 'sk-proj-abcdefghijklmnopqrstuvwxyz012345'",
                "sk-proj-abcdef",
            ),
            ("x sk-abcdefghijklmnopqrstuvwxyz012345", "sk-abcdefghij"),
            ("x sk_live_abcdefghijklmnopqrstuvwx", "sk_live_abcdef"),
            ("x xoxb-1234567890-abcdefghijklmnop", "xoxb-1234567890"),
            ("x xoxp-1234567890-abcdefghijklmnop", "xoxp-1234567890"),
            ("x glpat-abcdefghijklmnopqrst", "glpat-abcdefghij"),
        ] {
            let out = r.line(line);
            assert!(!out.contains(secret), "{line} -> {out}");
            assert!(out.contains(super::REDACTED), "{line} -> {out}");
        }
        for line in [
            "mkdir -p backups/old",
            "ssh -p 2222 host",
            "git commit -a -m fix",
            "pip install sk-learn scikit-learn",
            "the ghp_ prefix marks a GitHub token",
        ] {
            assert_eq!(r.line(line), line);
        }
    }

    /// A variable whose name says secret has its value redacted where it is
    /// a whole word (an argument), not inside another word; a path, a URL
    /// or a short value is not taken for one.
    #[test]
    fn a_secret_named_variables_value_is_redacted_as_a_whole_word() {
        let vars = [
            ("QBTIME_DEPLOY_TOKEN", "zq8Lr2Vt9bWmK4"),
            ("my_service_password", "hunter2hunter2"),
            ("AGE_KEY_FILE", "./keys/age.txt"),
            ("SHORT_KEY", "abc"),
            ("HOME", "qbtimeprod"),
        ];
        let words = named(&vars, &[]);
        assert_eq!(words, ["zq8Lr2Vt9bWmK4", "hunter2hunter2"]);
        let r = super::Redactor {
            words,
            ..super::Redactor::default()
        };
        assert_eq!(
            r.line("Running: deploy zq8Lr2Vt9bWmK4 --x='hunter2hunter2'"),
            "Running: deploy [REDACTED] --x='[REDACTED]'"
        );
        let inside = "id-zq8Lr2Vt9bWmK4-suffix";
        assert_eq!(r.line(inside), inside);
    }

    /// rvAJ: with-backup shows its command quoted for the shell, so a
    /// password holding `$`, `!` or a blank stands in single quotes, apart
    /// from its flag or glued to it inside them (`'-pPa$$w0rd!'`), and a
    /// quote in it as `'\''`: each flag rule redacts it all the same.
    #[test]
    fn a_password_quoted_for_the_shell_is_redacted_after_every_flag() {
        let r = super::Redactor::default();
        for password in ["Pa$$w0rd!", "it's a w0rd", "w0rd#&*?"] {
            for words in [
                &["sshpass", "-p", password, "ssh", "host"][..],
                &["sshpass", &format!("-p{password}"), "ssh", "host"],
                &["redis-cli", "-a", password, "ping"],
                &["redis-cli", &format!("-a{password}"), "ping"],
                &["mysql", "-u", "root", &format!("-p{password}"), "db"],
                &["tool", "--auth", &format!("admin:{password}"), "run"],
                &["tool", &format!("--auth=admin:{password}"), "run"],
                &["openssl", "enc", "-pass", &format!("pass:{password}")],
                &["openssl", "enc", &format!("-pass=pass:{password}")],
                &["tool", "--pass", password, "run"],
                &["tool", &format!("--pass={password}"), "run"],
                &["tool", "--pw", password, "run"],
                &["tool", &format!("--pw={password}"), "run"],
                &["curl", "--basic-auth", &format!("u:{password}"), "x"],
                &["curl", &format!("--proxy-auth=u:{password}"), "x"],
                &["curl", "-u", &format!("admin:{password}"), "x"],
            ] {
                let line = d1_core::wording::shell_words(words);
                let out = r.line(&line);
                assert!(!out.contains("w0rd"), "{line} -> {out}");
                assert!(out.contains(super::REDACTED), "{line} -> {out}");
            }
        }
    }

    /// rvAJ: a secret-named variable's value is redacted wherever no
    /// letter, digit, `_` or `-` runs on from it (`deploy $T;notify`,
    /// `-H X-Api-Token:$T`, `($T)`), and a URL held by one (a Slack
    /// webhook) is redacted whole, in output and in what is recorded.
    #[test]
    fn a_secret_named_variables_value_is_redacted_next_to_any_punctuation() {
        let hook = "https://hooks.slack.com/services/T0001/B0002/Xq9sLr2Vt9bWmK4zz";
        let vars = [
            ("QBTIME_DEPLOY_TOKEN", "zq8Lr2Vt9bWmK4"),
            ("SLACK_WEBHOOK_SECRET", hook),
        ];
        let words = named(&vars, &[]);
        let r = super::Redactor {
            words,
            ..super::Redactor::default()
        };
        for line in [
            "bash -c 'deploy zq8Lr2Vt9bWmK4;notify'",
            "curl -H X-Api-Token:zq8Lr2Vt9bWmK4 https://example.com/x",
            "echo (zq8Lr2Vt9bWmK4), {zq8Lr2Vt9bWmK4} and zq8Lr2Vt9bWmK4.",
            "notify https://hooks.slack.com/services/T0001/B0002/Xq9sLr2Vt9bWmK4zz done",
            "notify 'https://hooks.slack.com/services/T0001/B0002/Xq9sLr2Vt9bWmK4zz'",
        ] {
            for out in [r.line(line), r.values(line)] {
                assert!(!out.contains("zq8Lr2Vt9bWmK4"), "{line} -> {out}");
                assert!(!out.contains("Xq9sLr2Vt9bWmK4zz"), "{line} -> {out}");
                assert!(!out.contains("T0001"), "{line} -> {out}");
                assert!(out.contains(super::REDACTED), "{line} -> {out}");
            }
        }
        assert_eq!(
            r.line(&format!("notify {hook};done")),
            "notify [REDACTED];done"
        );
        for inside in [
            "id-zq8Lr2Vt9bWmK4-suffix",
            "Azq8Lr2Vt9bWmK4",
            "zq8Lr2Vt9bWmK4_x",
        ] {
            assert_eq!(r.line(inside), inside);
        }
    }

    /// rvAJ: a variable is secret-named by a whole segment of its name
    /// (not `MONKEY`, `TOKENIZER`), and not when its last segment says it
    /// names something else (`R2_KEY_PREFIX`, `*_TOKEN_URL`, `*_KEY_ID`);
    /// under a name that says secret only by `KEY` (`CACHE_KEY`) a plain
    /// word is no secret; a name the configuration gives (an environment,
    /// a database) never is; npm's own variables are not its tokens.
    #[test]
    fn only_a_value_that_can_be_a_secret_is_redacted_by_its_variables_name() {
        let vars = [
            ("R2_KEY_PREFIX", "QbtimeProd2026"),
            ("R2_KEY_PREFIX", "qbtime-prod"),
            ("CACHE_KEY", "production"),
            ("CACHE_KEY", "qbtime_prod"),
            ("WRANGLER_TOKEN_URL", "http://127.0.0.1:8787/token"),
            ("AWS_ACCESS_KEY_ID", "AKIAABCDEFGHIJKLMNOP"),
            ("MONKEYS_SEEN", "Abc12345678"),
            ("TOKENIZER_MODEL", "Gpt2Tokenizer"),
            ("DEPLOY_KEY", "qbtime-prod-2"),
            ("QBTIME_DEPLOY_TOKEN", "zq8Lr2Vt9bWmK4"),
            ("SECRET_KEY_BASE", "f00dfeedc0ffee42"),
            ("GITHUB_TOKEN_2", "aB3dE5fG7hJ9"),
            ("STRIPE_KEY", "x9Y8z7W6v5U4"),
            ("PGPASSWORD", "correcthorsebattery"),
        ];
        let words = named(&vars, &["prod", "qbtime-prod-2"]);
        assert_eq!(
            words,
            [
                "zq8Lr2Vt9bWmK4",
                "f00dfeedc0ffee42",
                "aB3dE5fG7hJ9",
                "x9Y8z7W6v5U4",
                "correcthorsebattery"
            ]
        );
        let r = super::Redactor::default();
        for line in [
            "npm_lifecycle_script=cargo xtask backup prod",
            "npm_config_user_agent=npm/10.8.2 node/v22.11.0",
            "npm_package_json=/app/package.json",
        ] {
            assert_eq!(r.line(line), line);
        }
        let npm = "npm_aBcDeFgHiJkLmNoPqRsTuVwXyZ0123456789";
        assert_eq!(r.line(&format!("x {npm} y")), "x npm_[REDACTED] y");
    }
}

#[cfg(test)]
mod tails {
    //! KH: a redacted value never leaves a piece of the secret behind,
    //! whatever character the secret holds and however it is written
    //! (quoted, escaped, percent-encoded, split by a line wrap).

    use super::{REDACTED, Redactor};

    /// Every line, redacted by `r`, holds neither `H3ADh3ad` nor
    /// `T4ILt4il` (the head and the tail of each secret), and says so.
    fn no_piece_left(r: &Redactor, lines: &[&str]) {
        let mut leaks = Vec::new();
        for line in lines {
            let out = r.line(line);
            if out.contains("H3ADh3ad") || out.contains("T4ILt4il") || !out.contains(REDACTED) {
                leaks.push(format!("{line}  ->  {out}"));
            }
        }
        assert!(leaks.is_empty(), "{leaks:#?}");
    }

    /// A value by a name (`--password`, `NAME=`, a JSON field, a header,
    /// a program's password flag) runs on past `,` `;` `)` `}` `&` `` ` ``
    /// and quotes: it ends only where the word it is in ends.
    #[test]
    fn a_value_by_name_is_redacted_whole_whatever_punctuation_it_holds() {
        no_piece_left(
            &Redactor::default(),
            &[
                "tool --password H3ADh3ad,T4ILt4il next",
                "tool --password=H3ADh3ad;T4ILt4il next",
                "tool --token H3ADh3ad)T4ILt4il",
                "tool --secret H3ADh3ad}T4ILt4il",
                "tool --api-token H3ADh3ad&T4ILt4il",
                "tool --password H3ADh3ad`T4ILt4il",
                "tool --password H3ADh3ad'T4ILt4il",
                "tool --password H3ADh3ad\"T4ILt4il",
                "tool --password=H3ADh3ad\"x T4ILt4il\" next",
                "tool --password\tH3ADh3ad,T4ILt4il",
                "env CLOUDFLARE_API_TOKEN=H3ADh3ad;T4ILt4il wrangler d1 list",
                "env AWS_SECRET_ACCESS_KEY=H3ADh3ad,T4ILt4il aws s3 ls",
                "DATA_ENCRYPTION_KEY=H3ADh3ad)T4ILt4il",
                "curl -u admin:H3ADh3ad,T4ILt4il https://api.example.com",
                "X-Auth-Key: H3ADh3ad,T4ILt4il",
                "curl -H X-Auth-Key:H3ADh3ad,T4ILt4il https://api.example.com",
                r#"{"token":"H3ADh3ad\"T4ILt4il","x":1}"#,
                r#"{"password": "H3ADh3ad\\\"T4ILt4il"}"#,
                "{'password': 'H3ADh3ad,T4ILt4il'}",
                "sshpass -p H3ADh3ad'T4ILt4il ssh host",
                "mysql -u root -pH3ADh3ad\"T4ILt4il db",
                "redis-cli -a H3ADh3ad`T4ILt4il ping",
            ],
        );
    }

    /// An `Authorization` header's credential and a bearer token run on
    /// past punctuation and an escaped quote too.
    #[test]
    fn an_authorization_credential_is_redacted_whole() {
        no_piece_left(
            &Redactor::default(),
            &[
                "Authorization: Basic H3ADh3ad,T4ILt4il",
                "Authorization: Token H3ADh3ad)T4ILt4il",
                "authorization=H3ADh3ad}T4ILt4il",
                "curl -H 'Authorization: Basic H3ADh3ad,T4ILt4il' https://x",
                r#"{"authorization":"Bearer H3ADh3ad\"T4ILt4il"}"#,
                r#"{"authorization":"H3ADh3ad\"T4ILt4il"}"#,
                r#"{"headers":{"Authorization":"Token H3ADh3ad\"T4ILt4il"}}"#,
            ],
        );
    }

    /// The password of a URL's userinfo holding a character a URL should
    /// have percent-encoded (`/`, `?`, `#`) is redacted whole, with or
    /// without a query string after it.
    #[test]
    fn a_urls_password_with_a_raw_delimiter_is_redacted_whole() {
        no_piece_left(
            &Redactor::default(),
            &[
                "cannot reach https://ops:H3ADh3ad/T4ILt4il@app.example.com/api",
                "cannot reach https://ops:H3ADh3ad#T4ILt4il@app.example.com/api",
                "cannot reach https://ops:H3ADh3ad?T4ILt4il@app.example.com/api",
                "GET https://ops:H3ADh3ad/T4ILt4il@app.example.com/x?X-Amz-Signature=1",
                "GET app.example.com/x?token=H3ADh3ad,T4ILt4il&page=2",
            ],
        );
    }

    /// rvAO: with-backup shows its command quoted for the shell
    /// ([`d1_core::wording::shell_words`]), a `'` as `'\''`: a known secret
    /// and a secret-named variable's value holding one are found in that
    /// spelling too, alone or inside a longer word, under any name or none.
    #[test]
    fn a_secret_holding_a_quote_is_redacted_as_the_shell_quotes_it() {
        use d1_core::wording::shell_words;
        let token = "H3ADh3ad'T4ILt4il";
        let password = "H3ADh3ad it's T4ILt4il";
        let known = Redactor::with_secrets(vec![token.into()]);
        let vars = [("MY_DB_PASSWORD".to_owned(), password.to_owned())];
        let named = Redactor {
            words: super::spellings(super::secret_named_values(vars, &Default::default())),
            ..Redactor::default()
        };
        for (r, secret) in [(&known, token), (&named, password)] {
            no_piece_left(
                r,
                &[
                    &shell_words(&["echo", secret, "next"]),
                    &shell_words(&["curl", "-H", &format!("X-Thing: {secret}"), "x"]),
                ],
            );
        }
    }

    /// A JSON field's value that starts on the line after its name (a
    /// `--data` document as a shell quotes it, its line break kept).
    #[test]
    fn a_fields_value_on_the_line_after_its_name_is_redacted() {
        let data = "{\"password\":\n  \"H3ADh3adT4ILt4il\"}";
        let python = "{'api_token':\n 'H3ADh3adT4ILt4il'}";
        no_piece_left(
            &Redactor::default(),
            &[
                &d1_core::wording::shell_words(&["curl", "--data", data, "x"]),
                python,
                "X-Auth-Key:\n  H3ADh3adT4ILt4il",
            ],
        );
    }

    /// A secret the tool knows is redacted however it is written: one that
    /// holds another known secret whole, percent-encoded in a URL or a
    /// form, escaped in a JSON string, or cut by a line wrap.
    #[test]
    fn a_known_secret_is_redacted_in_every_spelling_and_across_a_wrap() {
        let r = Redactor::with_secrets(vec![
            "H3ADh3ad".into(),
            "H3ADh3ad-T4ILt4il".into(),
            "H3ADh3ad+/\"T4ILt4il=".into(),
            "H3ADh3ad0123456789T4ILt4il".into(),
        ]);
        no_piece_left(
            &r,
            &[
                "key H3ADh3ad-T4ILt4il used",
                "GET /x?k=H3ADh3ad%2B%2F%22T4ILt4il%3D",
                "GET /x?k=H3ADh3ad%2b%2f%22T4ILt4il%3d",
                r#"{"k":"H3ADh3ad+/\"T4ILt4il="}"#,
            ],
        );
        wrap_is_redacted(
            &r,
            "error: token H3ADh3ad01234\n  56789T4ILt4il was refused",
        );
    }

    /// `wrapped`, a secret `H3ADh3ad01234…T4ILt4il` cut by a line wrap
    /// (in any case), redacted whole and line by line, shows no piece of
    /// it, and the text after it stays.
    fn wrap_is_redacted(r: &Redactor, wrapped: &str) {
        for out in [r.line(wrapped).into_owned(), line_by_line(r, wrapped)] {
            let lower = out.to_ascii_lowercase();
            assert!(
                !lower.contains("h3adh3ad")
                    && !lower.contains("t4ilt4il")
                    && !out.contains("01234"),
                "{out}"
            );
            assert!(out.contains("was refused"), "{out}");
        }
    }

    /// rvAQ: a URL's password holding `>`, `<`, a backtick or a quote (the
    /// shell's `'\''`, JSON's `\"`) was cut there, and the `@` looked for
    /// only before the cut: the password was shown whole, or in pieces.
    #[test]
    fn a_url_password_holding_a_quote_or_an_angle_bracket_is_redacted() {
        let r = Redactor::with_secrets(Vec::new());
        let lines = [
            "psql 'postgres://admin:H3ADh3ad>T4ILt4il@db/app'",
            "psql postgres://admin:H3ADh3ad<T4ILt4il@db/app",
            "psql 'postgres://admin:H3ADh3ad'\\''T4ILt4il@db/app'",
            "psql postgres://admin:H3ADh3ad`T4ILt4il@db/app",
            r#"{"url":"postgres://admin:H3ADh3ad\"T4ILt4il@db/app"}"#,
        ];
        no_piece_left(&r, &lines);
        for line in lines {
            assert!(r.line(line).contains("@db/app"), "{}", r.line(line));
        }
        // A URL of a host and port beside an address is not a password.
        let line = r#"{"url":"http://127.0.0.1:8787/a","who":"x@y"}"#;
        assert_eq!(r.line(line), line);
    }

    /// rvAQ: the pieces a line wrap leaves are looked for of the secrets the
    /// tool holds, never of the values of variables named like secrets,
    /// whose head or tail may be an ordinary word: `DB_PASSWORD=prod1234`
    /// made every line ending in `prod` end in [REDACTED].
    #[test]
    fn a_secret_named_values_pieces_never_take_ordinary_words() {
        let r = Redactor {
            secrets: Vec::new(),
            words: super::spellings(["prod1234".to_owned(), "changeme-in-production".to_owned()]),
        };
        for line in [
            "restore latest:prod --to prod",
            "production is the database",
            "  prod",
        ] {
            assert_eq!(r.line(line), line);
        }
        assert!(!r.line("DB_PASSWORD=prod1234 x").contains("prod1234"));
    }

    /// The suite: a rehearsal's token is `rehearsal-token-<hex>`, and its
    /// backup's reason, `rehearsal`, a head of it standing alone, was
    /// recorded as [REDACTED], so the rehearsal found no first backup.
    /// A piece of letters alone, shorter than 12, is a word, not a piece.
    #[test]
    fn a_word_that_is_a_secrets_readable_head_is_not_a_piece_of_it() {
        let r = Redactor::with_secrets(vec!["rehearsal-token-0123abcd4567ef89".to_owned()]);
        for line in ["rehearsal", "reason: rehearsal", "token here"] {
            assert_eq!(r.line(line), line);
        }
        let wrapped = "error: rehearsal-token-0123\n  abcd4567ef89 refused";
        let out = r.line(wrapped);
        assert!(!out.contains("0123") && !out.contains("ef89"), "{out}");
    }

    /// Each line of `text` redacted by `r` on its own, as wrangler's are.
    fn line_by_line(r: &Redactor, text: &str) -> String {
        let lines: Vec<String> = text.lines().map(|l| r.line(l).into_owned()).collect();
        lines.join("\n")
    }

    /// KR 1: a known secret an app echoes in another case and cut by a
    /// line wrap: the pieces were matched in the secret's own case, and
    /// a line-by-line redaction never saw the whole.
    #[test]
    fn a_recased_secret_cut_by_a_wrap_is_redacted_line_by_line() {
        let r = Redactor::with_secrets(vec!["H3ADh3ad0123456789T4ILt4il".into()]);
        wrap_is_redacted(
            &r,
            "error: token h3adh3ad01234\n  56789t4ilt4il was refused",
        );
        wrap_is_redacted(
            &r,
            "error: token H3ADH3AD01234\n  56789T4ILT4IL was refused",
        );
    }

    /// KR 2: a token read from a CRLF `.env` ends in `\r`, which nothing
    /// prints: the value without it is what is looked for (its tail at
    /// the start of a wrapped line, its JSON spelling).
    #[test]
    fn a_variables_value_with_a_trailing_cr_is_redacted_as_printed() {
        let r = Redactor::from_variables(
            |name| {
                (name == "CLOUDFLARE_API_TOKEN").then(|| "H3ADh3ad0123\"456789T4ILt4il\r".into())
            },
            Vec::new(),
        );
        let wrapped = "error: token H3ADh3ad0123\"4\n  56789T4ILt4il was refused";
        let out = line_by_line(&r, wrapped);
        assert!(
            !out.contains("H3ADh3ad") && !out.contains("T4ILt4il"),
            "{out}"
        );
        no_piece_left(&r, &[r#"{"echo":"H3ADh3ad0123\"456789T4ILt4il"}"#]);
        let vars = [("DEPLOY_TOKEN".to_owned(), "H3ADh3adT4ILt4il\r".to_owned())];
        let named = Redactor {
            words: super::spellings(super::secret_named_values(vars, &Default::default())),
            ..Redactor::default()
        };
        no_piece_left(&named, &["deploy H3ADh3adT4ILt4il;notify"]);
    }

    /// KR 3: a YAML (or log) field `db_password: value`, a name that says
    /// secret, then `: `: redacted as `db_password=value` and JSON's
    /// `"db_password": "value"` are; prose (`token: missing`) stays.
    #[test]
    fn a_yaml_style_secret_named_field_loses_its_value() {
        no_piece_left(
            &Redactor::default(),
            &[
                "db_password: H3ADh3ad,T4ILt4il",
                "  api_token: H3ADh3adT4ILt4il",
                "DB_PASSWORD: 'H3ADh3ad T4ILt4il'",
                "- client_secret: H3ADh3adT4ILt4il",
                "aws_secret_access_key:  H3ADh3adT4ILt4il",
            ],
        );
        let prose = "token: missing; password: not set";
        assert_eq!(Redactor::default().line(prose), prose);
    }

    /// KR 4: a known secret holding both quotes, JSON-escaped and then
    /// quoted for the shell (a `--data` document in with-backup's
    /// command), or quoted for the shell and then JSON-escaped (that
    /// command in a JSON document).
    #[test]
    fn a_secret_json_escaped_and_shell_quoted_at_once_is_redacted() {
        use d1_core::wording::shell_words;
        let token = "H3ADh3ad\"x'T4ILt4il";
        let r = Redactor::with_secrets(vec![token.into()]);
        let json = |s: &str| serde_json::to_string(s).unwrap();
        let data = format!("{{\"t\":{}}}", json(token));
        let command = shell_words(&["echo", token, "next"]);
        no_piece_left(
            &r,
            &[
                &shell_words(&["curl", "--data", &data, "x"]),
                &format!("{{\"reason\":{}}}", json(&command)),
            ],
        );
    }

    /// KR 5: an `Authorization` credential of letters alone followed by a
    /// blank was taken for a scheme, and the word after it redacted
    /// instead; a known scheme stays readable.
    #[test]
    fn an_unknown_word_in_authorization_is_not_taken_for_a_scheme() {
        let r = Redactor::default();
        let shown: Vec<String> = [
            "Authorization: SecretLettersOnly rest",
            "curl -H 'Authorization: SecretLettersOnly rest' x",
            r#"{"authorization":"SecretLettersOnly rest"}"#,
        ]
        .iter()
        .map(|line| r.line(line).into_owned())
        .filter(|out| out.contains("SecretLettersOnly"))
        .collect();
        assert!(shown.is_empty(), "{shown:#?}");
        for (line, want) in [
            (
                "Authorization: Bearer abc rest",
                "Authorization: Bearer [REDACTED] rest",
            ),
            (
                "authorization: basic abc rest",
                "authorization: basic [REDACTED] rest",
            ),
            (
                "Authorization: Digest abc rest",
                "Authorization: Digest [REDACTED] rest",
            ),
            (
                "Authorization: Token abc rest",
                "Authorization: Token [REDACTED] rest",
            ),
            (
                "Authorization: AWS4-HMAC-SHA256 abc, x",
                "Authorization: AWS4-HMAC-SHA256 [REDACTED] x",
            ),
        ] {
            assert_eq!(r.line(line), want);
        }
    }
}
