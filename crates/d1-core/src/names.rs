//! Small checks and spellings on names and bytes that the trust boundary
//! relies on: plain file names, SHA-256 digests, hex.

use std::path::Path;

/// A file name with no directory in it: not empty, no `/` or `\\`, not `.`
/// or `..`, no NUL or other control character (a line break, an escape
/// code), and not hidden.
pub fn is_plain_file_name(name: &str) -> bool {
    !name.is_empty()
        && !name.starts_with('.')
        && !name.contains(['/', '\\'])
        && is_printable(name)
        && Path::new(name).file_name() == Some(std::ffi::OsStr::new(name))
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

/// Whether `text` can be printed as it is: it holds no control character.
/// A line break or an escape code in a field read from a file would print
/// as something else (a row of its own, a whole environment reading "ok").
pub fn is_printable(text: &str) -> bool {
    !text.chars().any(char::is_control)
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

/// The last component of a path, as text.
pub fn file_name(path: &Path) -> String {
    path.file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default()
}
