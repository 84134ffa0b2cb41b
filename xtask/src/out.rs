//! How the xtask prints: one place for output levels, progress and colour.
//!
//! Commands never call `println!` or `eprintln!` for what they tell the
//! operator; they use these, so that `-q`, `-v`, `--json` and `NO_COLOR`
//! hold on every command:
//!
//! | call | where | shown |
//! |---|---|---|
//! | [`say!`](crate::say) | stdout; stderr when the command prints `--json` | unless `-q` (a `--dry-run`'s plan: always), or [`tuck`]ed without `-v` |
//! | [`note!`](crate::note) | stderr, prefixed `note: ` | unless `-q` |
//! | [`warn!`](crate::warn) | stderr, prefixed `warning: ` | always |
//! | [`detail!`](crate::detail) | stderr | only with `-v` |
//! | [`data!`](crate::data), [`data`], [`json`] | stdout | always: the output a command was asked for (`--json`, `list`, `status`) |
//! | [`error`] | stderr, prefixed `error: ` | always (main prints a command's error with it) |
//!
//! Every line is redacted ([`crate::redact::text`]: the values of the secret
//! variables, held secrets, bearer tokens, signed URLs, age identities, and
//! what a credential's name introduces; the output a command was asked
//! for, [`data`], by [`crate::redact::values`], without the rules by name) and
//! goes through [`clean`], which strips ANSI escape codes unless the stream
//! is a terminal and `NO_COLOR` is unset. Redacting here, the one place
//! that prints, holds for text no caller thought could carry a secret (an
//! operator's own command line in `with-backup`, a value in a file).
//!
//! A step that may take more than a moment holds an [`Activity`]: at a
//! terminal it draws a spinner (or a progress line, when it knows how much is
//! done) with the elapsed time on stderr; without one it prints a plain line
//! every [`PLAIN_EVERY`] (a wrangler call measuring nothing: from
//! [`PLAIN_WRANGLER_AFTER`] on), and nothing at all for a step that ends
//! sooner.

use d1_core::wording::size;
use std::borrow::Cow;
use std::fmt;
use std::io::{IsTerminal, Write};
use std::sync::atomic::{AtomicBool, AtomicU8, Ordering};
use std::sync::{Mutex, OnceLock, mpsc};
use std::time::{Duration, Instant};

/// How much the operator asked to see.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Level {
    /// `-q`: errors, warnings and requested data only.
    Quiet = 0,
    Normal = 1,
    /// `-v`: also wrangler's own output, live.
    Verbose = 2,
}

static LEVEL: AtomicU8 = AtomicU8::new(Level::Normal as u8);
static JSON: AtomicBool = AtomicBool::new(false);
/// Whether anything has reached stdout: under `--json`, the document.
static STDOUT_USED: AtomicBool = AtomicBool::new(false);

/// Whether [`data`] has written anything to stdout.
static DATA_WRITTEN: AtomicBool = AtomicBool::new(false);

/// Why the output a command was asked for ([`data`]) could not all be
/// written to stdout, when it could not: a full disk, an I/O error. A
/// closed pipe (`| head -1`) is not kept: its reader has all it wanted.
static STDOUT_LOST: Mutex<Option<String>> = Mutex::new(None);

/// Keeps `result`, the writing of the output asked for, when it failed for
/// a reason other than a closed pipe.
pub fn note_stdout_write(result: std::io::Result<()>) {
    if let Err(e) = result
        && e.kind() != std::io::ErrorKind::BrokenPipe
    {
        let mut lost = STDOUT_LOST.lock().unwrap_or_else(|e| e.into_inner());
        lost.get_or_insert_with(|| e.to_string());
    }
}

/// Bytes written to stdout as they are, neither redacted nor marked: a
/// shell's completion script. A closed pipe (`| head`) is not an error
/// worth a panic; a full disk leaves a script that is not whole: not a
/// success ([`stdout_lost`]).
pub fn raw(bytes: &[u8]) {
    let mut stdout = std::io::stdout();
    note_stdout_write(stdout.write_all(bytes).and_then(|()| stdout.flush()));
}

/// Why the output asked for could not be written, if it could not: `main`
/// ends the command with an error then, never with 0.
pub fn stdout_lost() -> Option<String> {
    let flushed = std::io::stdout().flush();
    if DATA_WRITTEN.load(Ordering::Relaxed) {
        note_stdout_write(flushed);
    }
    STDOUT_LOST
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .clone()
}

/// Whether the command was asked for its plan (`--dry-run`): its [`say!`](crate::say!)
/// lines are that plan, printed with `-q` too.
static PLAN_ASKED: AtomicBool = AtomicBool::new(false);

pub fn set_plan_asked(asked: bool) {
    PLAN_ASKED.store(asked, Ordering::Relaxed);
}

/// Whether a plan was asked for (`--dry-run`).
pub fn plan_asked() -> bool {
    PLAN_ASKED.load(Ordering::Relaxed)
}

/// The words typed on this command line, and the values of the variables
/// that stand for a flag, that hold a character [`d1_core::names::shown`]
/// escapes: a message that echoes one (`no such file: WORD`, `unknown
/// environment`, a path under `--backup-dir`) shows it escaped, so that a
/// pasted line break, escape code or bidi override neither forges a line
/// nor reaches the terminal. A single character alone is left to
/// [`clean`]: it could be any line break or tab of a message; so is a
/// word of whitespace alone.
static TYPED_WORDS: OnceLock<Vec<String>> = OnceLock::new();

/// Records the typed words ([`TYPED_WORDS`]); main calls this first.
pub fn set_typed_words(words: impl IntoIterator<Item = String>) {
    // A word's value is echoed alone too: `--database=NAME`'s NAME,
    // `latest:ENV`'s ENV.
    let mut words: Vec<String> = { words.into_iter() }
        .flat_map(|w| {
            let value = w.split_once(['=', ':']).map(|(_, v)| v.to_owned());
            std::iter::once(w).chain(value)
        })
        .filter(|w| w.chars().nth(1).is_some() && !d1_core::names::is_printable(w))
        // Whitespace alone (`$'\n\n'`) is any message's blank line or
        // indent: shown escaped, it rewrote fixed text (rvY 4). What it
        // holds that could forge a line, [`clean`] strips.
        .filter(|w| !w.chars().all(char::is_whitespace))
        .collect();
    // The longest first: one that holds another is shown whole.
    words.sort_by_key(|w| std::cmp::Reverse(w.len()));
    let _ = TYPED_WORDS.set(words);
}

/// `text` with each typed word ([`TYPED_WORDS`]) it echoes shown escaped.
pub fn typed_shown(text: &str) -> Cow<'_, str> {
    let words = TYPED_WORDS.get().map_or(&[][..], Vec::as_slice);
    let mut text = Cow::Borrowed(text);
    for word in words {
        if text.contains(word.as_str()) {
            text = Cow::Owned(text.replace(word.as_str(), &d1_core::names::shown(word)));
        }
    }
    text
}

/// Sets the level and whether stdout carries a JSON document; main calls
/// this once, from the global flags.
pub fn init(level: Level, json: bool) {
    LEVEL.store(level as u8, Ordering::Relaxed);
    JSON.store(json, Ordering::Relaxed);
}

/// The global options typed on this command line (`--backup-dir DIR`,
/// `--config PATH`, `--database NAME`), and the tool's command names: a
/// `cargo xtask COMMAND` printed for the user to paste carries them, so
/// that pasted it reaches the same backups, configuration and database as
/// the run that printed it. From the environment (`QBTIME_BACKUP_DIR`)
/// they need not, the shell that pastes has them too; but a relative one
/// is carried, as the path it resolved to ([`crate::config::project::Project::globals_to_paste`]).
static TYPED: OnceLock<Typed> = OnceLock::new();

struct Typed {
    globals: Vec<(&'static str, String)>,
    commands: Vec<String>,
}

pub fn set_typed_globals(globals: Vec<(&'static str, String)>, commands: Vec<String>) {
    let _ = TYPED.set(Typed { globals, commands });
}

/// `text` with the typed global options after each `cargo xtask` that
/// names one of the tool's commands, but for those that refuse one
/// ([`takes_global`]). With `quoted_only`, only a command between
/// backticks is one to paste: elsewhere `cargo xtask backup prod` may be
/// data (a table's name in a diff, a quoted lock record), never changed.
fn with_typed_globals<'t>(
    text: &'t str,
    globals: &[(&'static str, String)],
    commands: &[String],
    quoted_only: bool,
) -> Cow<'t, str> {
    const PREFIX: &str = "cargo xtask ";
    if globals.is_empty() || !text.contains(PREFIX) {
        return Cow::Borrowed(text);
    }
    let mut out = String::with_capacity(text.len() + 64);
    let mut rest = text;
    while let Some(at) = rest.find(PREFIX) {
        let after = &rest[at + PREFIX.len()..];
        let quoted = rest[..at].ends_with('`');
        out.push_str(&rest[..at + PREFIX.len()]);
        let word = after
            .split(|c: char| !(c.is_ascii_alphanumeric() || c == '-'))
            .next()
            .unwrap_or_default();
        if (quoted || !quoted_only) && commands.iter().any(|c| c == word) {
            let command = after.split(['`', '\n']).next().unwrap_or_default();
            for (flag, value) in globals
                .iter()
                .filter(|(f, _)| takes_global(f, word, command))
            {
                out.push_str(flag);
                out.push(' ');
                out.push_str(&d1_core::wording::shell_word(value));
                out.push(' ');
            }
        }
        rest = after;
    }
    out.push_str(rest);
    Cow::Owned(out)
}

/// Whether `command` (its words, from its name `word`) takes the global
/// option `flag`: those that would do nothing there are refused
/// (`main::backup_dir_flag_used`, `main::database_flag_used`).
fn takes_global(flag: &str, word: &str, command: &str) -> bool {
    let names_env = || command.contains("latest:") || command.contains("live:");
    match flag {
        "--backup-dir" => !matches!(word, "keygen" | "hooks" | "completions"),
        "--database" => match word {
            "doctor" | "keygen" | "hooks" | "completions" => false,
            "verify" | "diff" => names_env(),
            _ => true,
        },
        _ => true,
    }
}

/// `text` as the user pastes it here (see [`TYPED`]): its commands
/// between backticks carry the typed global options.
fn pasteable(text: &str) -> Cow<'_, str> {
    match TYPED.get() {
        Some(t) => with_typed_globals(text, &t.globals, &t.commands, true),
        None => Cow::Borrowed(text),
    }
}

/// `text`, a command or lines of commands printed to paste without
/// backticks around them (a way back on a line of its own), carrying the
/// typed global options as a quoted one does (see [`TYPED`]).
pub fn to_paste(text: String) -> String {
    match TYPED.get() {
        Some(t) => with_typed_globals(&text, &t.globals, &t.commands, false).into_owned(),
        None => text,
    }
}

/// `text`, advice ending in a command to paste (`… backup: cargo xtask
/// restore …`), with that command on a line of its own, and that line
/// ended: in an error, what the error goes on with (`: wrangler failed …`)
/// starts the next line ([`crate::edge::fsutil::with_fix`]), so the line
/// copied to its end pastes as it is (LP). Text with no such command is
/// returned as it is.
pub fn command_apart(text: &str) -> String {
    match text.split_once(": cargo xtask ") {
        Some((intro, command)) => format!("{intro}:\n  cargo xtask {command}\n"),
        None => text.to_owned(),
    }
}

/// The fields a command's failure document carries besides `command`,
/// `error` and `exit_code` ([`failure`]): what it did before it failed,
/// which a script needs to go on (`migrate`'s `plan` and `result`).
static FAILURE_FIELDS: std::sync::Mutex<Option<serde_json::Map<String, serde_json::Value>>> =
    std::sync::Mutex::new(None);

/// Sets the fields of `document` (an object) that a failure document
/// under `--json` carries with its error ([`FAILURE_FIELDS`]).
pub fn on_failure(document: serde_json::Value) {
    if let (serde_json::Value::Object(fields), Ok(mut set)) = (document, FAILURE_FIELDS.lock()) {
        *set = Some(fields);
    }
}

pub fn level() -> Level {
    match LEVEL.load(Ordering::Relaxed) {
        0 => Level::Quiet,
        1 => Level::Normal,
        _ => Level::Verbose,
    }
}

pub fn verbose() -> bool {
    level() == Level::Verbose
}

fn quiet() -> bool {
    level() == Level::Quiet
}

/// Where a child's own chatter goes (npm's "added 45 packages in 32s",
/// which it prints on stdout at every log level): never stdout, which is
/// the command's (one `--json` document, nothing under `-q`); stderr beside
/// the tool's notes, and nowhere under `-q`, where only errors and warnings
/// print. The child's stderr, where its errors go, is left to it.
pub fn for_a_childs_chatter() -> std::process::Stdio {
    match quiet() {
        true => std::process::Stdio::null(),
        false => std::io::stderr().into(),
    }
}

/// Whether stdout is reserved for a JSON document (`--json`).
pub fn json_mode() -> bool {
    JSON.load(Ordering::Relaxed)
}

/// Whether colour may reach a stream: a terminal, and `NO_COLOR` unset (or empty).
pub fn colour_allowed(is_terminal: bool, no_color: Option<&std::ffi::OsStr>) -> bool {
    is_terminal && no_color.is_none_or(|v| v.is_empty())
}

fn colour_on(stream_is_terminal: bool) -> bool {
    colour_allowed(stream_is_terminal, std::env::var_os("NO_COLOR").as_deref())
}

/// Removes ANSI escape sequences, each whole
/// ([`d1_core::unseen::escape_len`]): CSI (`ESC [ … final`), the strings
/// (OSC, DCS, SOS, PM, APC, to BEL or ST, 8-bit forms too) and the other
/// escapes (`ESC ( B`).
pub fn strip_ansi(text: &str) -> Cow<'_, str> {
    strip_escapes(text, false)
}

/// [`strip_ansi`], but keeping colour (SGR: `ESC [` digits and `;`, then
/// `m`) when `keep_colour`: whatever else a line holds (a cursor move, a
/// screen clear, a window title, a link, a clipboard write, all of which a
/// name in a dump or wrangler's output could carry) never reaches the
/// terminal. A string (DCS, APC, …) goes with its body, which a terminal
/// never shows either: taking out its introducer alone spliced its body
/// into the line (rvCN). Carriage returns go too (one would let a name
/// overwrite the line it is printed on), and any other control character
/// but a line break or a tab is shown as U+FFFD.
fn strip_escapes(text: &str, keep_colour: bool) -> Cow<'_, str> {
    // A variation selector is kept: in a line (wrangler's `⛅️`) it picks an
    // emoji's form; names, where it would make two look alike, are checked
    // before they are printed (`names::shown`).
    let plain = |c: char| {
        !d1_core::names::unprintable(c) || matches!(c, '\n' | '\t' | '\u{fe00}'..='\u{fe0f}')
    };
    if text.chars().all(plain) {
        return Cow::Borrowed(text);
    }
    let mut out = String::with_capacity(text.len());
    let mut at = 0;
    while let Some(c) = text[at..].chars().next() {
        let escape = &text[at..at + d1_core::unseen::escape_len(&text[at..])];
        at += escape.len().max(c.len_utf8());
        match c {
            _ if !escape.is_empty() => {
                if keep_colour && is_colour(escape) {
                    out.push_str(escape);
                }
            }
            '\r' => {}
            // A control character, or one that reorders or hides text.
            c if !plain(c) => out.push('\u{fffd}'),
            c => out.push(c),
        }
    }
    Cow::Owned(out)
}

/// Whether `escape` sets colours: `ESC [`, digits and `;`, then `m`.
fn is_colour(escape: &str) -> bool {
    { escape.strip_prefix("\u{1b}[") }
        .and_then(|rest| rest.strip_suffix('m'))
        .is_some_and(|params| params.chars().all(|p| p.is_ascii_digit() || p == ';'))
}

/// `text` as it may be written to stderr (`to_stderr`) or stdout.
pub fn clean(text: &str, to_stderr: bool) -> Cow<'_, str> {
    let terminal = if to_stderr {
        std::io::stderr().is_terminal()
    } else {
        std::io::stdout().is_terminal()
    };
    strip_escapes(text, colour_on(terminal))
}

/// Writes a line (one trailing newline in `text` is dropped); a closed pipe
/// or terminal is not worth failing a backup.
fn write_line(to_stderr: bool, text: &str) {
    let text = pasteable(text);
    write_redacted(to_stderr, &typed_shown(&text), crate::redact::text, false);
}

/// Writes a line redacted by `redact`, line by line: no rule's reach
/// crosses a line (a JSON document is many). The output a command was
/// asked for (`asked`) that could not be written is kept for `main`.
fn write_redacted(to_stderr: bool, text: &str, redact: fn(&str) -> String, asked: bool) {
    let terminal = match to_stderr {
        true => std::io::stderr().is_terminal(),
        false => std::io::stdout().is_terminal(),
    };
    let text = as_written(text, redact, colour_on(terminal));
    let _guard = DRAWING.lock().unwrap_or_else(|e| e.into_inner());
    if to_stderr {
        clear_spinner_line();
        let _ = writeln!(std::io::stderr(), "{text}");
    } else {
        if std::io::stderr().is_terminal() {
            clear_spinner_line();
        }
        STDOUT_USED.store(true, Ordering::Relaxed);
        let written = writeln!(std::io::stdout(), "{text}");
        if asked {
            DATA_WRITTEN.store(true, Ordering::Relaxed);
            note_stdout_write(written);
        }
    }
}

/// `text` as [`write_redacted`] writes it, colour kept when `keep_colour`
/// (one trailing newline dropped): cleaned first ([`strip_escapes`]), then
/// redacted line by line. Cleaning after redacting joined a secret an
/// escape code had cut in two, and showed the halves of one cut by a
/// control or invisible character around a U+FFFD: redacted after, a
/// secret is read whole past what the cleaning left ([`crate::redact::unseen_len`])
/// (rvCL 1).
fn as_written(text: &str, redact: fn(&str) -> String, keep_colour: bool) -> String {
    let text = strip_escapes(text.strip_suffix('\n').unwrap_or(text), keep_colour);
    { text.split('\n') }
        .map(redact)
        .collect::<Vec<_>>()
        .join("\n")
}

/// Whether the lines a step says are tucked under `-v` ([`tuck`]).
static TUCKED: AtomicBool = AtomicBool::new(false);

/// While held, [`say!`](crate::say) prints only with `-v`: a backup another
/// task takes first (a restore's safety backup, a migration's) is told by
/// that task in a line of its own, its block (the export, the file, the
/// verification) left to `-v`. Warnings, notes and errors print as ever.
pub struct Tucked(bool);

/// Tucks what [`say!`](crate::say) prints under `-v` until the guard is
/// dropped ([`Tucked`]).
pub fn tuck() -> Tucked {
    Tucked(TUCKED.swap(true, Ordering::Relaxed))
}

/// Runs `print` with nothing tucked: a verification that failed is shown
/// whole, whoever took the backup.
pub fn untucked(print: impl FnOnce()) {
    let was = TUCKED.swap(false, Ordering::Relaxed);
    print();
    TUCKED.store(was, Ordering::Relaxed);
}

impl Drop for Tucked {
    fn drop(&mut self) {
        TUCKED.store(self.0, Ordering::Relaxed);
    }
}

#[doc(hidden)]
pub fn say_args(args: fmt::Arguments<'_>) {
    if TUCKED.load(Ordering::Relaxed) && !verbose() {
        return;
    }
    if !quiet() || PLAN_ASKED.load(Ordering::Relaxed) {
        write_line(json_mode(), &args.to_string());
    }
}

/// Lines of a plan that the question after it is about (what a restore
/// drops and loses), on stderr under `-q`, which hides the plan: a
/// database name is never typed with what it destroys unseen. Without
/// `-q`, or with `--dry-run`, the plan printed them already.
pub fn before_asking(text: &str) {
    if plan_hidden() {
        write_line(true, text);
    }
}

/// Whether `-q` hid the plan just printed (no `--dry-run` asked for it):
/// what it loses is then said as warnings.
pub fn plan_hidden() -> bool {
    quiet() && !PLAN_ASKED.load(Ordering::Relaxed)
}

/// As `say!`, for a line whose commands are run otherwise than this one
/// (a rehearsal's steps, and what it tells to run against its loopback,
/// all with its own backup directory): printed as they run, without this
/// run's typed global options ([`TYPED`]), which would send them to the
/// real backups.
pub fn say_as_run(text: &str) {
    if !quiet() || PLAN_ASKED.load(Ordering::Relaxed) {
        write_redacted(json_mode(), text, crate::redact::text, false);
    }
}

/// A `note:` on stderr, under `-q` too when a plan was asked for: what a
/// dry run does all the same, said with the plan.
pub fn plan_note(text: &str) {
    if !quiet() || plan_asked() {
        write_line(true, &format!("note: {text}"));
    }
}

#[doc(hidden)]
pub fn note_args(args: fmt::Arguments<'_>) {
    if !quiet() {
        write_line(true, &format!("note: {args}"));
    }
}

#[doc(hidden)]
pub fn warn_args(args: fmt::Arguments<'_>) {
    write_line(true, &indented(&typed_shown(&format!("warning: {args}"))));
}

/// A warning's or an error's text, every line after its first indented:
/// a message may quote what a file or wrangler said, and a line break in
/// that must not print a line of its own (`Result: GOOD`, `error: …`).
fn indented(text: &str) -> Cow<'_, str> {
    if !text.contains('\n') {
        return Cow::Borrowed(text);
    }
    let mut lines = text.split('\n');
    let mut out = lines.next().unwrap_or_default().to_owned();
    for line in lines {
        out.push('\n');
        if !line.is_empty() && !line.starts_with(char::is_whitespace) {
            out.push_str("  ");
        }
        out.push_str(line);
    }
    Cow::Owned(out)
}

#[doc(hidden)]
pub fn detail_args(args: fmt::Arguments<'_>) {
    if verbose() {
        write_line(true, &args.to_string());
    }
}

/// A line another process printed (a rehearsal's step), passed on after
/// `prefix`, on the stream it was printed on: marked, so that a command it
/// prints is not taken for one to paste here.
pub fn relayed(to_stderr: bool, prefix: &str, line: &str) {
    // Its commands are the other process's, not to paste with this one's
    // global options.
    write_redacted(
        to_stderr,
        &typed_shown(&format!("{prefix}{line}")),
        crate::redact::text,
        false,
    );
}

/// A command's requested output (a listing, a JSON document): always
/// printed, on stdout, whatever the level.
pub fn data(text: &str) {
    // Secrets go, but not by name: a name there is a field's, a table's or
    // a column's (see `redact::values`).
    let text = pasteable(text);
    write_redacted(false, &typed_shown(&text), crate::redact::values, true);
}

/// As [`json`], for a document whose commands are run otherwise than this
/// one (see [`say_as_run`]).
pub fn json_as_run(value: &serde_json::Value) {
    let text = json_text(value);
    write_redacted(false, &text, crate::redact::values, true);
}

/// A JSON document on stdout, pretty-printed.
pub fn json(value: &serde_json::Value) {
    let value = match TYPED.get() {
        Some(t) if !t.globals.is_empty() => {
            let mut value = value.clone();
            pasteable_strings(&mut value, &|text| {
                with_typed_globals(text, &t.globals, &t.commands, true)
            });
            Cow::Owned(value)
        }
        _ => Cow::Borrowed(value),
    };
    let text = json_text(&value);
    write_redacted(false, &text, crate::redact::values, true);
}

/// `value` as the pretty JSON text stdout carries, each character that does
/// not print as itself ([`d1_core::names::unprintable`]) and that
/// serde_json leaves raw (a bidi override such as U+202E, a zero-width
/// space, DEL, a C1 control) written as its JSON escape (`\u202e`): the
/// document reads back as it was, and none reaches the terminal, which
/// [`clean`] would otherwise see to by making it U+FFFD, a name mangled.
/// Outside its strings the text holds only ASCII punctuation, spaces and
/// line breaks, so any such character is in a string.
fn json_text(value: &serde_json::Value) -> String {
    let text = serde_json::to_string_pretty(value).expect("a JSON value serializes");
    let raw = |c: char| c != '\n' && d1_core::names::unprintable(c);
    if !text.contains(raw) {
        return text;
    }
    let mut out = String::with_capacity(text.len() + 16);
    for c in text.chars() {
        if !raw(c) {
            out.push(c);
            continue;
        }
        for unit in c.encode_utf16(&mut [0; 2]) {
            out.push_str(&format!("\\u{unit:04x}"));
        }
    }
    out
}

/// Every string in `value` made pasteable by `paste`, before it is
/// serialized: a quote the shell needs is no JSON escape.
fn pasteable_strings(value: &mut serde_json::Value, paste: &dyn Fn(&str) -> Cow<'_, str>) {
    match value {
        serde_json::Value::String(text) => {
            if let Cow::Owned(changed) = paste(text) {
                *text = changed;
            }
        }
        serde_json::Value::Array(items) => {
            items.iter_mut().for_each(|v| pasteable_strings(v, paste));
        }
        serde_json::Value::Object(fields) => {
            fields
                .values_mut()
                .for_each(|v| pasteable_strings(v, paste));
        }
        _ => {}
    }
}

/// A question asked at the terminal, on stderr, without a line end: the
/// answer is typed after it. A write that fails (the terminal gone) is no
/// panic: the read of the answer that follows finds none.
pub fn prompt(text: &str) {
    use std::io::Write;
    let mut stderr = std::io::stderr().lock();
    let text = clean(&typed_shown(text), true).into_owned();
    let _ = { stderr.write_all(text.as_bytes()) }.and_then(|()| stderr.flush());
}

/// What clap printed (a refusal of the command line, or its help), as it
/// was, but each typed word it echoes shown escaped ([`typed_shown`]),
/// and then [`clean`]: clap echoes fragments of a word (`-q<U+202E>abc`'s
/// flags after `q`) and one-character words, which are no typed word, so
/// no control or bidi character of them reaches the terminal (rvY 3).
pub fn clap_said(text: &str, to_stderr: bool) {
    let shown = typed_shown(text);
    let text = clean(&shown, to_stderr);
    if to_stderr {
        let _ = write!(std::io::stderr(), "{text}");
    } else {
        let mut stdout = std::io::stdout();
        note_stdout_write(write!(stdout, "{text}").and_then(|()| stdout.flush()));
    }
}

/// An error line on stderr, shown at every level.
pub fn error(text: &str) {
    write_line(true, &indented(&typed_shown(&format!("error: {text}"))));
}

/// How a command that stopped with an error ends: the error line on
/// stderr and, under `--json` when no document has been printed yet, one
/// on stdout that says so, so that a script reading stdout never gets
/// nothing: `{"command", "error", "exit_code"}`. `text` is already
/// redacted.
pub fn failure(command: &str, text: &str, exit_code: u8) {
    error(text);
    if json_mode() && !STDOUT_USED.load(Ordering::Relaxed) {
        json(&failure_document(command, &pasteable(text), exit_code));
    }
}

fn failure_document(command: &str, text: &str, exit_code: u8) -> serde_json::Value {
    let mut document = { FAILURE_FIELDS.lock().ok() }
        .and_then(|mut f| f.take())
        .unwrap_or_default();
    document.insert("command".into(), command.into());
    document.insert("error".into(), strip_ansi(&typed_shown(text)).into());
    document.insert("exit_code".into(), exit_code.into());
    serde_json::Value::Object(document)
}

/// A line for the operator (results, plans); stdout, or stderr when the
/// command prints `--json`; nothing with `-q`.
#[macro_export]
macro_rules! say {
    () => { $crate::out::say_args(format_args!("")) };
    ($($arg:tt)*) => { $crate::out::say_args(format_args!($($arg)*)) };
}

/// A line of a command's requested output on stdout, at every level.
#[macro_export]
macro_rules! data {
    ($($arg:tt)*) => { $crate::out::data(&format!($($arg)*)) };
}

/// `note: …` on stderr; nothing with `-q`.
#[macro_export]
macro_rules! note {
    ($($arg:tt)*) => { $crate::out::note_args(format_args!($($arg)*)) };
}

/// `warning: …` on stderr, at every level.
#[macro_export]
macro_rules! warn {
    ($($arg:tt)*) => { $crate::out::warn_args(format_args!($($arg)*)) };
}

/// A line on stderr shown only with `-v`.
#[macro_export]
macro_rules! detail {
    ($($arg:tt)*) => { $crate::out::detail_args(format_args!($($arg)*)) };
}

/// How often a step without a terminal reports that it is still running.
pub const PLAIN_EVERY: Duration = Duration::from_secs(5);
/// When a step without a terminal that runs wrangler and measures nothing
/// (a read, a migration) first says it is still running: every call's own
/// start (Node, wrangler) takes one to five seconds, so a line at
/// [`PLAIN_EVERY`] came for nearly every call, a read's before the
/// command's header, a migration's then said again by its finish line
/// (rvCG 2). A line past this says something: the call is slow, or stuck.
pub const PLAIN_WRANGLER_AFTER: Duration = Duration::from_secs(15);
/// How often a spinner is redrawn at a terminal, and when it first appears.
const SPIN_EVERY: Duration = Duration::from_millis(100);
const SPIN_AFTER: Duration = Duration::from_millis(300);

/// Decides which ticks of a running step print: the first at `first`, then
/// one per `every`; ticks that come late never make a burst of lines.
#[derive(Debug, Clone)]
pub struct Throttle {
    next: Duration,
    every: Duration,
}

impl Throttle {
    pub fn new(first: Duration, every: Duration) -> Throttle {
        Throttle { next: first, every }
    }

    /// A plain line every [`PLAIN_EVERY`], none before `first` has passed.
    pub fn plain_after(first: Duration) -> Throttle {
        Throttle::new(first, PLAIN_EVERY)
    }

    /// Whether a tick at `elapsed` since the step began prints.
    pub fn due(&mut self, elapsed: Duration) -> bool {
        if elapsed < self.next {
            return false;
        }
        while self.next <= elapsed {
            self.next += self.every;
        }
        true
    }
}

/// What an activity knows of its progress.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Unit {
    Bytes,
    Statements,
}

/// The text of a progress line: what is done, the rate, and an ETA when the
/// total is known.
pub fn progress_text(
    label: &str,
    elapsed: Duration,
    done: Option<u64>,
    total: Option<u64>,
    unit: Unit,
) -> String {
    let secs = elapsed.as_secs_f64();
    let mut text = format!("{label} ({})", seconds(elapsed));
    let Some(done) = done.filter(|d| *d > 0) else {
        return text;
    };
    let amount = |n: u64| match unit {
        Unit::Bytes => size(n),
        Unit::Statements => d1_core::wording::count(n, "statement"),
    };
    text.push_str(": ");
    text.push_str(&match (total.filter(|t| *t >= done), unit) {
        (None, _) => amount(done),
        (Some(total), Unit::Bytes) => format!("{} of {}", size(done), size(total)),
        (Some(total), Unit::Statements) => format!("{done} of {}", amount(total)),
    });
    if secs >= 1.0 {
        let rate = done as f64 / secs;
        text.push_str(&match unit {
            Unit::Bytes => format!(", {}/s", size(rate as u64)),
            Unit::Statements => format!(", {rate:.0}/s"),
        });
        if let Some(total) = total.filter(|t| *t > done) {
            // Under a second left is said as "almost done" near the end
            // (95% done), never "0 s"; before it, "under 1 s left" (a
            // fast rate's estimate at 59% is not the end).
            let eta = Duration::from_secs_f64((total - done) as f64 / rate);
            let near_end = done.saturating_mul(20) >= total.saturating_mul(19);
            text.push_str(&match (eta < Duration::from_secs(1), near_end) {
                (true, true) => ", almost done".to_owned(),
                (true, false) => ", under 1 s left".to_owned(),
                (false, _) => format!(", about {} left", seconds(eta)),
            });
        }
    }
    text
}

fn seconds(d: Duration) -> String {
    let s = d.as_secs();
    if s >= 60 {
        format!("{}m{:02}s", s / 60, s % 60)
    } else {
        format!("{:.0} s", d.as_secs_f64().floor())
    }
}

/// Serialises drawing, so that a spinner and a line never interleave.
static DRAWING: Mutex<()> = Mutex::new(());
/// Whether a spinner line is on the terminal now.
static SPINNER_SHOWN: AtomicBool = AtomicBool::new(false);

fn clear_spinner_line() {
    if SPINNER_SHOWN.swap(false, Ordering::Relaxed) {
        let _ = write!(std::io::stderr(), "\r\u{1b}[2K");
    }
}

/// A meter an activity reads on each tick.
type Meter = Box<dyn Fn() -> Option<u64> + Send>;

/// The work done by the current [`Activity::counting`]: statements loaded.
static COUNTED: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);

/// What the current activity is doing now when that is no longer what its
/// measure counts ([`stage`]): its progress line names it instead of a count,
/// a rate and an ETA.
static STAGE: Mutex<Option<String>> = Mutex::new(None);

/// Says that the current activity has moved on to `what` (a verification's
/// checks once its load is done): its progress lines say so, with no count
/// and no ETA, until the activity ends.
pub fn stage(what: &str) {
    *STAGE.lock().unwrap_or_else(|e| e.into_inner()) = Some(what.to_owned());
}

fn current_stage() -> Option<String> {
    STAGE.lock().unwrap_or_else(|e| e.into_inner()).clone()
}

/// Counts one statement of the current counting activity (the loaders call
/// it per statement; one relaxed atomic add).
pub fn count_one() {
    COUNTED.fetch_add(1, Ordering::Relaxed);
}

/// A step in progress, shown until it is dropped (see the module's doc).
pub struct Activity {
    stop: Option<mpsc::Sender<()>>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl Activity {
    /// A step with no measure of progress: a spinner and the elapsed time.
    pub fn start(label: impl Into<String>) -> Activity {
        Activity::spawn(label.into(), (None, Unit::Statements, None), PLAIN_EVERY)
    }

    /// [`Activity::start`] of a wrangler call: without a terminal, its first
    /// line comes at [`PLAIN_WRANGLER_AFTER`].
    pub fn wrangler(label: impl Into<String>) -> Activity {
        Activity::spawn(
            label.into(),
            (None, Unit::Statements, None),
            PLAIN_WRANGLER_AFTER,
        )
    }

    /// A step that counts statements with [`count_one`], out of `total`
    /// when it is known: done, rate and ETA.
    pub fn counting(label: impl Into<String>, total: Option<u64>) -> Activity {
        COUNTED.store(0, Ordering::Relaxed);
        let meter: Meter = Box::new(|| Some(COUNTED.load(Ordering::Relaxed)));
        Activity::spawn(
            label.into(),
            (total, Unit::Statements, Some(meter)),
            PLAIN_EVERY,
        )
    }

    /// A step whose progress is the size of a file being written.
    pub fn watching_file(label: impl Into<String>, path: std::path::PathBuf) -> Activity {
        let meter: Meter = Box::new(move || std::fs::metadata(&path).ok().map(|m| m.len()));
        Activity::spawn(label.into(), (None, Unit::Bytes, Some(meter)), PLAIN_EVERY)
    }

    /// `plain_after`: when its first line comes without a terminal.
    fn spawn(
        label: String,
        (total, unit, meter): (Option<u64>, Unit, Option<Meter>),
        plain_after: Duration,
    ) -> Activity {
        let started = Instant::now();
        *STAGE.lock().unwrap_or_else(|e| e.into_inner()) = None;
        // -q shows no progress.
        if quiet() {
            return Activity {
                stop: None,
                thread: None,
            };
        }
        let terminal = std::io::stderr().is_terminal();
        let (stop, stopped) = mpsc::channel::<()>();
        let thread = std::thread::spawn(move || {
            let mut throttle = if terminal {
                Throttle::new(SPIN_AFTER, SPIN_EVERY)
            } else {
                Throttle::plain_after(plain_after)
            };
            let tick = if terminal {
                SPIN_EVERY
            } else {
                Duration::from_millis(250)
            };
            let frames = ['|', '/', '-', '\\'];
            let mut frame = 0;
            while let Err(mpsc::RecvTimeoutError::Timeout) = stopped.recv_timeout(tick) {
                let elapsed = started.elapsed();
                if !throttle.due(elapsed) {
                    continue;
                }
                let text = match current_stage() {
                    Some(stage) => format!("{label} ({}): {stage}", seconds(elapsed)),
                    None => {
                        let measured = meter.as_ref().and_then(|m| m());
                        progress_text(&label, elapsed, measured, total, unit)
                    }
                };
                let _guard = DRAWING.lock().unwrap_or_else(|e| e.into_inner());
                let mut err = std::io::stderr();
                if terminal {
                    frame = (frame + 1) % frames.len();
                    let _ = write!(err, "\r\u{1b}[2K{} {text}", frames[frame]);
                    SPINNER_SHOWN.store(true, Ordering::Relaxed);
                } else {
                    let _ = writeln!(err, "  … {text}");
                }
                let _ = err.flush();
            }
            let _guard = DRAWING.lock().unwrap_or_else(|e| e.into_inner());
            clear_spinner_line();
        });
        Activity {
            stop: Some(stop),
            thread: Some(thread),
        }
    }

    fn stop_thread(&mut self) {
        drop(self.stop.take());
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

impl Drop for Activity {
    fn drop(&mut self) {
        self.stop_thread();
        *STAGE.lock().unwrap_or_else(|e| e.into_inner()) = None;
    }
}

/// A list of names as a plan or a warning prints it: the first ten and how
/// many more; `-v` names them all. Each is shown escaped
/// (`d1_core::names::shown`): the names are a database's or a dump's.
pub fn listed<S: AsRef<str>>(names: &[S], noun: &str) -> String {
    match verbose() {
        true => { names.iter() }
            .map(|n| d1_core::names::shown_cut(n.as_ref()))
            .collect::<Vec<_>>()
            .join(", "),
        false => d1_core::wording::listed(names, noun),
    }
}

/// [`listed`] of items each already shown and cut by its caller
/// ([`d1_core::wording::listed_as_shown`]): an item of more than one name
/// keeps what follows them. `-v` lists them all.
pub fn listed_as_shown(items: &[String], noun: &str) -> String {
    match verbose() {
        true => items.join(", "),
        false => d1_core::wording::listed_as_shown(items, noun),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// What cuts a secret in two in text from outside (an API's error, an
    /// app's answer) and the printer removes or shows as U+FFFD, or that
    /// shows as nothing: an escape code, colour, a window title, a
    /// carriage return, a zero-width space, NUL, a soft hyphen, DEL, a
    /// backspace, a word joiner, an interlinear annotation mark (Unicode
    /// format characters), a line separator; a charset designation, the
    /// escape strings (DCS, APC, PM, SOS, OSC ended by ST), each in its
    /// 8-bit C1 form too, a paragraph separator, a braille blank, a
    /// combining accent and enclosing mark, a variation selector, the
    /// Hangul fillers (rvCN).
    const CUTS: [&str; 31] = [
        "\u{1b}[0m",
        "\u{1b}[31m",
        "\u{1b}]0;title\u{7}",
        "\r",
        "\u{200b}",
        "\u{0}",
        "\u{ad}",
        "\u{7f}",
        "\u{8}",
        "\u{2060}",
        "\u{fff9}",
        "\u{2028}",
        "\u{1b}(B",
        "\u{1b}P1$r0m\u{1b}\\",
        "\u{1b}_apc body\u{1b}\\",
        "\u{1b}^pm body\u{1b}\\",
        "\u{1b}Xsos body\u{7}",
        "\u{1b}]0;title\u{1b}\\",
        "\u{90}dcs body\u{9c}",
        "\u{9b}31m",
        "\u{9d}0;title\u{7}",
        "\u{9e}pm body\u{9c}",
        "\u{9f}apc body\u{9c}",
        "\u{2029}",
        "\u{2800}",
        "\u{301}",
        "\u{20dd}",
        "\u{fe0f}",
        "\u{3164}",
        "\u{115f}",
        "\u{ffa0}",
    ];

    /// Each secret the tool knows (the API token, a held one such as the
    /// DevOps token, an age identity, a signed URL's signature) is never
    /// written in two halves, whatever cuts it, to a log or a colour
    /// terminal, nor redacted before the cut is cleaned (rvCL 1, rvCN).
    #[test]
    fn a_secret_cut_by_a_control_or_invisible_character_is_redacted_whole() {
        let token = "zzTOKENzz-held-0123456789";
        crate::redact::hold(token);
        let identity = concat!(
            "AGE-SECRET-KEY-1",
            "QYQSZQGPQYQSZQGPQYQSZQGPQYQSZQGPQYQSZQGPQYQSZQGPQYQSHQ0MSR"
        );
        let url = "https://bucket.r2.example/key?X-Amz-Signature=0123456789abcdef0123456789";
        for secret in [token, identity, url] {
            let (head, tail) = secret.split_at(secret.len() - 12);
            for cut in CUTS {
                for keep_colour in [false, true] {
                    let line = format!("error: bad {head}{cut}{tail} [code: 7400]");
                    let written = as_written(&line, crate::redact::text, keep_colour);
                    let seen: String = written.chars().filter(char::is_ascii_graphic).collect();
                    assert!(
                        !written.contains(tail) && !seen.contains(tail),
                        "{cut:?} (colour {keep_colour}): {written:?}"
                    );
                    assert!(written.contains(crate::redact::REDACTED), "{written:?}");
                    // An escape string is taken out whole, never its body.
                    assert!(!written.contains("body"), "{cut:?}: {written:?}");
                }
                // Redacted before it is cleaned, as an error is that is
                // then printed with its escapes spelled out (a carriage
                // return is a blank there, which ends a key or a URL).
                let raw = crate::redact::text(&format!("error: bad {head}{cut}{tail}"));
                assert!(cut == "\r" || !raw.contains(tail), "{cut:?}: {raw:?}");
            }
        }
    }

    fn typed(text: &str, globals: &[(&'static str, &str)]) -> String {
        let globals: Vec<(&'static str, String)> =
            globals.iter().map(|(f, v)| (*f, (*v).to_owned())).collect();
        let commands: Vec<String> = ["backup", "verify", "keygen", "time-travel"]
            .map(str::to_owned)
            .to_vec();
        with_typed_globals(text, &globals, &commands, true).into_owned()
    }

    #[test]
    fn a_printed_command_carries_the_typed_global_options_quoted() {
        assert_eq!(
            typed(
                "take one with `cargo xtask backup prod`; then `cargo xtask verify latest:prod`",
                &[("--backup-dir", "my backups"), ("--database", "DB")]
            ),
            "take one with `cargo xtask --backup-dir 'my backups' --database DB backup prod`; \
             then `cargo xtask --backup-dir 'my backups' --database DB verify latest:prod`"
        );
        // A way back printed without backticks is marked to paste.
        let globals = vec![("--config", "../w.toml".to_owned())];
        let commands = vec!["time-travel".to_owned()];
        let way_back = "to go back: cargo xtask time-travel restore prod";
        assert_eq!(
            with_typed_globals(way_back, &globals, &commands, false),
            "to go back: cargo xtask --config ../w.toml time-travel restore prod"
        );
        // Unquoted and unmarked, it may be data: a table's name.
        assert_eq!(
            with_typed_globals(way_back, &globals, &commands, true),
            way_back
        );
    }

    #[test]
    fn only_the_tools_commands_get_them_and_keygen_never_gets_a_backup_dir() {
        let globals = [("--config", "c.toml"), ("--backup-dir", "b")];
        assert_eq!(
            typed("`cargo xtask keygen --out F`", &globals),
            "`cargo xtask --config c.toml keygen --out F`"
        );
        for untouched in [
            "Run cargo xtask inside a qbtime checkout",
            "cargo xtask backupx",
            "`cargo xtask --backup-dir b verify F`",
        ] {
            assert_eq!(typed(untouched, &globals), untouched);
        }
        assert_eq!(
            typed("`cargo xtask verify F`", &[]),
            "`cargo xtask verify F`"
        );
    }

    #[test]
    fn a_database_is_never_carried_where_it_would_be_refused() {
        let globals = [("--database", "DB")];
        assert_eq!(
            typed(
                "`cargo xtask verify F`, or `cargo xtask verify latest:prod`",
                &globals
            ),
            "`cargo xtask verify F`, or `cargo xtask --database DB verify latest:prod`"
        );
        assert_eq!(
            typed("`cargo xtask keygen --out F`", &globals),
            "`cargo xtask keygen --out F`"
        );
    }

    #[test]
    fn a_json_documents_strings_carry_them_without_breaking_its_escapes() {
        let mut doc = serde_json::json!({
            "error": "take one with `cargo xtask backup prod`",
            "steps": [{"fix": "run `cargo xtask verify F`"}],
            "rows": 3,
        });
        pasteable_strings(&mut doc, &|t| {
            with_typed_globals(
                t,
                &[("--backup-dir", "it's".to_owned())],
                &["backup".to_owned(), "verify".to_owned()],
                true,
            )
        });
        let text = serde_json::to_string(&doc).unwrap();
        let back: serde_json::Value = serde_json::from_str(&text).unwrap();
        assert_eq!(
            back["steps"][0]["fix"],
            r"run `cargo xtask --backup-dir 'it'\''s' verify F`"
        );
        assert_eq!(back["rows"], 3);
    }

    fn s(secs: f64) -> Duration {
        Duration::from_secs_f64(secs)
    }

    #[test]
    fn plain_progress_prints_every_five_seconds_and_never_for_a_short_step() {
        let mut short = Throttle::plain_after(PLAIN_EVERY);
        assert!(
            [0.25, 1.0, 2.5, 4.99].iter().all(|t| !short.due(s(*t))),
            "a step under 5 s prints nothing"
        );
        let mut long = Throttle::plain_after(PLAIN_EVERY);
        let ticks = [0.25, 4.9, 5.0, 5.25, 9.9, 10.2, 10.4, 23.0, 24.0, 25.0];
        let printed: Vec<f64> = ticks.into_iter().filter(|t| long.due(s(*t))).collect();
        // A tick that comes late (23 s) prints once, not once per missed 5 s.
        assert_eq!(printed, [5.0, 10.2, 23.0, 25.0]);
    }

    /// rvCG 2: a wrangler call's start alone takes up to 5 s; in a log,
    /// one measuring nothing is said to be still running from 15 s on.
    #[test]
    fn a_wrangler_calls_plain_progress_starts_at_15_seconds() {
        let mut call = Throttle::plain_after(PLAIN_WRANGLER_AFTER);
        let ticks = [5.0, 10.0, 14.9, 15.0, 19.9, 20.0];
        let printed: Vec<f64> = ticks.into_iter().filter(|t| call.due(s(*t))).collect();
        assert_eq!(printed, [15.0, 20.0]);
    }

    #[test]
    fn a_spinner_waits_a_moment_then_redraws_at_its_pace() {
        let mut spin = Throttle::new(SPIN_AFTER, SPIN_EVERY);
        let printed: Vec<f64> = [0.1, 0.2, 0.3, 0.35, 0.4, 0.41, 0.9]
            .into_iter()
            .filter(|t| spin.due(s(*t)))
            .collect();
        assert_eq!(printed, [0.3, 0.4, 0.9]);
    }

    #[test]
    fn progress_says_what_is_known() {
        assert_eq!(
            progress_text("export", s(3.4), None, None, Unit::Bytes),
            "export (3 s)"
        );
        assert_eq!(
            progress_text("export", s(4.0), Some(8_000_000), None, Unit::Bytes),
            "export (4 s): 8.0 MB, 2.0 MB/s"
        );
        assert_eq!(
            progress_text("load", s(10.0), Some(1000), Some(3000), Unit::Statements),
            "load (10 s): 1000 of 3000 statements, 100/s, about 20 s left"
        );
        assert_eq!(
            progress_text("load", s(75.0), Some(1), None, Unit::Statements),
            "load (1m15s): 1 statement, 0/s"
        );
        // rvO: 1500028 of 1500030 at 74379/s was "about 0 s left" for 19 s.
        assert_eq!(
            progress_text(
                "verifying",
                s(20.0),
                Some(1_500_028),
                Some(1_500_030),
                Unit::Statements
            ),
            "verifying (20 s): 1500028 of 1500030 statements, 75001/s, almost done"
        );
        // rvCM 3: 235724 of 400038 at that rate is under a second from
        // the end by the estimate, but not "almost done" at 59%.
        let early = progress_text(
            "load",
            s(1.0),
            Some(235_724),
            Some(400_038),
            Unit::Statements,
        );
        assert!(!early.contains("almost done"), "{early}");
        assert!(!early.contains("about 0 s"), "{early}");
    }

    #[test]
    fn ansi_codes_are_stripped_and_text_kept() {
        let red = "\u{1b}[31m✘ \u{1b}[41;31m[\u{1b}[41;97mERROR\u{1b}[41;31m]\u{1b}[0m bad";
        assert_eq!(strip_ansi(red), "✘ [ERROR] bad");
        assert_eq!(
            strip_ansi("\u{1b}]8;;http://x\u{7}link\u{1b}]8;;\u{1b}\\"),
            "link"
        );
        assert_eq!(strip_ansi("plain │ ✅"), "plain │ ✅");
        assert!(matches!(strip_ansi("plain"), Cow::Borrowed(_)));
    }

    /// An error's or a warning's later lines are indented, so that what it
    /// quotes cannot print a line that looks like the tool's own.
    #[test]
    fn later_lines_of_errors_and_warnings_are_indented() {
        assert_eq!(
            indented("error: x\nResult: GOOD\n  already\n\nlast"),
            "error: x\n  Result: GOOD\n  already\n\n  last"
        );
        assert!(matches!(indented("error: one line"), Cow::Borrowed(_)));
    }

    /// At a colour terminal only colours pass: a screen clear, a cursor
    /// move, a window title or a clipboard write (OSC 52) carried by a name
    /// never does, nor a carriage return that would overwrite the line.
    #[test]
    fn a_terminal_gets_colours_and_nothing_else() {
        let red = "\u{1b}[31mBAD\u{1b}[0m";
        assert_eq!(strip_escapes(red, true), red);
        for hostile in [
            "x\u{1b}[2Jy",
            "x\u{1b}[1;1Hy",
            "x\u{1b}]0;title\u{7}y",
            "x\u{1b}]52;c;aGVsbG8=\u{7}y",
            "x\u{9b}2Jy",
            "x\ry",
        ] {
            assert_eq!(strip_escapes(hostile, true), "xy", "{hostile:?}");
            assert_eq!(strip_escapes(hostile, false), "xy", "{hostile:?}");
        }
        assert_eq!(strip_escapes("a\u{7}b\u{0}c", true), "a\u{fffd}b\u{fffd}c");
        assert_eq!(strip_escapes("db_\u{202e}dorp", false), "db_\u{fffd}dorp");
        assert_eq!(
            strip_escapes("two\nlines\tand a tab", true),
            "two\nlines\tand a tab"
        );
    }

    #[test]
    fn colour_needs_a_terminal_and_no_no_color() {
        use std::ffi::OsStr;
        assert!(colour_allowed(true, None));
        assert!(colour_allowed(true, Some(OsStr::new(""))));
        assert!(!colour_allowed(true, Some(OsStr::new("1"))));
        assert!(!colour_allowed(false, None));
    }
}
