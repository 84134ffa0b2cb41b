//! How a backup is sealed: plain SQL (`.sql`), zstd-compressed
//! (`.sql.zst`), or compressed and then encrypted with age
//! (`.sql.zst.age`); which form a file is, and which recipients an
//! encrypted one may name. The compressing and encrypting themselves are the
//! xtask's (`edge::stored`): age runs in Node.

use std::path::Path;

use anyhow::{Result, bail};

/// A backup file's stored form, named by its suffix.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    Sql,
    Zstd,
    ZstdAge,
}

impl Format {
    pub fn of(path: &Path) -> Format {
        let name = crate::names::file_name(path);
        if name.ends_with(".sql.zst.age") {
            Format::ZstdAge
        } else if name.ends_with(".sql.zst") {
            Format::Zstd
        } else {
            Format::Sql
        }
    }

    /// `sql`, `sql.zst` or `sql.zst.age`.
    pub fn extension(self) -> &'static str {
        match self {
            Format::Sql => "sql",
            Format::Zstd => "sql.zst",
            Format::ZstdAge => "sql.zst.age",
        }
    }

    /// What the manifest and `list` call it.
    pub fn label(self) -> &'static str {
        match self {
            Format::Sql => "sql",
            Format::Zstd => "zstd",
            Format::ZstdAge => "zstd+age",
        }
    }

    /// The format a backup is written in.
    pub fn choose(compress: bool, recipients: &[String]) -> Format {
        match (compress, recipients.is_empty()) {
            (_, false) => Format::ZstdAge,
            (true, true) => Format::Zstd,
            (false, true) => Format::Sql,
        }
    }
}

/// Refuses anything that is not an age recipient (`age1...`), before any
/// database is touched. SSH keys and plugins are not supported.
pub fn check_recipient(recipient: &str) -> Result<()> {
    if holds_a_secret_key(recipient) {
        bail!(
            "a recipient is an age identity, the secret key (AGE-SECRET-KEY-1…, or a part of \
             it), not its public key: take it out of where it was written now, before any commit \
             (backups.toml is tracked; if it was committed, pushed or shared, make a new key with \
             `cargo xtask keygen` and seal to that), and name the public key (`# public key: \
             age1…` in the key file) instead. Nothing was run."
        );
    }
    if recipient.trim() != recipient && bech32_parts(recipient.trim()).is_some() {
        bail!(
            "{recipient:?} is an age recipient with a space or line break around it: remove \
             the blank characters before or after it. Nothing was run."
        );
    }
    let ok = match bech32_parts(recipient) {
        // X25519: 32 bytes, 52 characters, and the 6 of the checksum.
        Some(("age", data)) => data.len() == 58,
        // The post-quantum hybrid recipients of age 1.3 are longer.
        Some(("age1pq", _)) => true,
        _ => false,
    };
    if !ok {
        bail!(
            "a value is not an age recipient: a recipient is a public key that starts with \
             `age1`, copied whole (its last characters are a checksum), from `cargo xtask \
             keygen` or `age-keygen`. The value is not shown: if it was a secret key \
             (AGE-SECRET-KEY-1…) or a part of one, keep it secret, and make a new key if it was \
             committed or shared. Nothing was run."
        );
    }
    Ok(())
}

/// Whether `text` holds an age identity: `AGE-SECRET-KEY-` anywhere in it,
/// whatever its case and its dashes (a key pasted through a word processor
/// comes back with U+2010 and its kin), quotes or invisible characters.
pub fn holds_a_secret_key(text: &str) -> bool {
    let squashed: String = { text.chars() }
        .filter_map(|c| match c {
            '-' | '\u{2010}'..='\u{2015}' | '\u{2212}' | '\u{fe58}' | '\u{fe63}' | '\u{ff0d}' => {
                Some('-')
            }
            c if c.is_alphanumeric() => Some(c.to_ascii_lowercase()),
            _ => None,
        })
        .collect();
    squashed.contains("age-secret-key-") || !secret_key_material(text).is_empty()
}

/// The human-readable parts of an age secret key's Bech32: X25519's and
/// the post-quantum one's (age 1.3).
const SECRET_KEY_HRPS: [&str; 2] = ["age-secret-key-", "age-secret-key-pq-"];

/// How many Bech32 characters follow a secret key's `1`: 32 bytes and
/// the 6 characters of the checksum, for both kinds.
const SECRET_KEY_CHARACTERS: usize = 58;

/// Where `text` holds an age secret key's material, whatever part of its
/// `AGE-SECRET-KEY-1` a paste left out (a double-click in a terminal
/// selects only what follows the last `-`): each span runs from the first
/// of 58 Bech32 characters, in any case, whose checksum holds with a
/// secret key's prefix, to the end of the word. Such a run is looked for
/// where a word starts and after a `1` (no Bech32 character), so the scan
/// is linear; an ordinary word of 58 letters passes the checksum about
/// once in a billion.
pub fn secret_key_material(text: &str) -> Vec<std::ops::Range<usize>> {
    let bytes = text.as_bytes();
    let mut found = Vec::new();
    let mut at = 0;
    while at + SECRET_KEY_CHARACTERS <= bytes.len() {
        let starts = at == 0 || !bytes[at - 1].is_ascii_alphanumeric() || bytes[at - 1] == b'1';
        if starts && is_secret_key_material(&bytes[at..at + SECRET_KEY_CHARACTERS]) {
            let end = { bytes[at..].iter() }
                .position(|b| !b.is_ascii_alphanumeric())
                .map_or(bytes.len(), |i| at + i);
            found.push(at..end);
            at = end;
        } else {
            at += 1;
        }
    }
    found
}

/// Whether `data`, in any case, is the Bech32 data of a secret key. Read
/// into an array, not a `Vec`: it is asked at the start of every word of
/// everything printed.
fn is_secret_key_material(data: &[u8]) -> bool {
    let mut values = [0u8; SECRET_KEY_CHARACTERS];
    for (value, b) in values.iter_mut().zip(data) {
        match bech32_value(b.to_ascii_lowercase()) {
            Some(v) => *value = v,
            None => return false,
        }
    }
    SECRET_KEY_HRPS
        .iter()
        .any(|hrp| bech32_checksum(hrp, values.iter().copied()) == 1)
}

/// Whether `line` is one whole age secret key, as an identity file holds
/// it: `AGE-SECRET-KEY-1` (or `AGE-SECRET-KEY-PQ-1`) and 58 Bech32
/// characters whose checksum holds, all in one case. A key with a typo
/// (two characters swapped, one missing or extra) is none.
pub fn is_secret_key(line: &str) -> bool {
    let lower = line.to_ascii_lowercase();
    let one_case = line == lower || line == line.to_ascii_uppercase();
    one_case
        && matches!(bech32_parts(&lower), Some((hrp, data))
            if SECRET_KEY_HRPS.contains(&hrp) && data.len() == SECRET_KEY_CHARACTERS)
}

/// How many characters of a key's material in a row are taken for a piece
/// of a key: 28 carry 140 of its 256 bits. A piece that leaves 80 or more
/// bits unknown is no key in practice, so a shorter run (a ULID's 26) is
/// left alone, and any piece that gives most of a key away is not.
pub const KEY_PIECE_CHARACTERS: usize = 28;

/// Whether `text` holds an age secret key, whole ([`holds_a_secret_key`])
/// or a piece of one ([`holds_a_piece_of_a_key`]): what an identity path,
/// a `--reason` and clap's quoted value are refused or hidden for.
pub fn holds_key_material(text: &str) -> bool {
    holds_a_secret_key(text) || holds_a_piece_of_a_key(text)
}

/// Whether `text` holds a piece of an age secret key's material long
/// enough to give most of the key away ([`key_pieces`]).
pub fn holds_a_piece_of_a_key(text: &str) -> bool {
    !key_pieces(text).is_empty()
}

/// Where `text` holds a piece of an age secret key's material, whatever
/// its checksum: 28 ([`KEY_PIECE_CHARACTERS`]) or more characters in a row
/// of Bech32's alphabet, all of one case (Bech32 is never mixed: a
/// camelCase name, a Stripe or a Google Docs id is no piece), not all hex
/// digits. Any part of the `AGE-SECRET-KEY-1` prefix before it is no
/// matter (`-` and `1` are not of the alphabet). The checksum
/// ([`secret_key_material`]) tells a whole key; a piece of one (52
/// characters already carry all of its 32 bytes) or one with a typo has
/// none to check. Words cannot be such a run: the alphabet has no `b`,
/// `i`, `o` or `1`, and a space, `-`, `.` or `/` breaks it, so a sentence,
/// a file name (`backup-local-….sql`) or a database id (a UUID, 12 at most
/// between dashes; a ULID, 26) never is. A hex digest may be (a sha256 has
/// 28 without `b` or `1` now and then), so a run of hex digits alone is
/// none; a key's 28 are all hex digits about once in 10 billion. A public
/// key (`age1…`, its checksum holding) is none. Byte ranges, in order, not
/// overlapping.
pub fn key_pieces(text: &str) -> Vec<std::ops::Range<usize>> {
    let of_a_key =
        |c: u8| c.is_ascii() && BECH32_CHARSET.as_bytes().contains(&c.to_ascii_lowercase());
    let bytes = text.as_bytes();
    let mut found: Vec<std::ops::Range<usize>> = Vec::new();
    let mut at = 0;
    while at < bytes.len() {
        // A word starts at an ASCII letter or digit, never inside a UTF-8
        // character.
        if !bytes[at].is_ascii_alphanumeric() {
            at += 1;
            continue;
        }
        let end = at + { bytes[at..].iter() }
            .position(|b| !b.is_ascii_alphanumeric())
            .unwrap_or(bytes.len() - at);
        if !is_a_recipient(&text[at..end]) {
            // A run of one case: digits and the letters of that case.
            for other_case in [u8::is_ascii_uppercase, u8::is_ascii_lowercase] {
                let mut start = at;
                for i in at..=end {
                    if i < end && of_a_key(bytes[i]) && !other_case(&bytes[i]) {
                        continue;
                    }
                    let run = &bytes[start..i];
                    if run.len() >= KEY_PIECE_CHARACTERS && !run.iter().all(u8::is_ascii_hexdigit) {
                        found.push(start..i);
                    }
                    start = i + 1;
                }
            }
        }
        at = end;
    }
    found.sort_by_key(|r| r.start);
    let mut merged: Vec<std::ops::Range<usize>> = Vec::new();
    for range in found {
        match merged.last_mut() {
            Some(last) if range.start <= last.end => last.end = last.end.max(range.end),
            _ => merged.push(range),
        }
    }
    merged
}

/// Whether `word` is an age public key whose checksum holds, in either
/// case.
fn is_a_recipient(word: &str) -> bool {
    let lower = word.to_ascii_lowercase();
    matches!(bech32_parts(&lower), Some(("age" | "age1pq", _)))
}

/// The 32 characters of Bech32's data part (BIP 173), the encoding of age
/// keys.
pub const BECH32_CHARSET: &str = "qpzry9x8gf2tvdw0s3jn54khce6mua7l";

/// The human-readable part and the data of a lowercase Bech32 string whose
/// checksum holds (BIP 173, the encoding of age keys).
fn bech32_parts(text: &str) -> Option<(&str, &str)> {
    let (hrp, data) = text.rsplit_once('1')?;
    if hrp.is_empty() || data.len() < 6 || !hrp.bytes().all(|b| (33..=126).contains(&b)) {
        return None;
    }
    let values = data
        .bytes()
        .map(bech32_value)
        .collect::<Option<Vec<u8>>>()?;
    (bech32_checksum(hrp, values) == 1).then_some((hrp, data))
}

/// The value of a lowercase Bech32 character.
fn bech32_value(c: u8) -> Option<u8> {
    BECH32_CHARSET.bytes().position(|x| x == c).map(|v| v as u8)
}

/// BIP 173's checksum (its polymod) of `hrp` and the data's `values`: 1
/// when it holds.
fn bech32_checksum(hrp: &str, values: impl IntoIterator<Item = u8>) -> u32 {
    const GENERATORS: [u32; 5] = [0x3b6a57b2, 0x26508e6d, 0x1ea119fa, 0x3d4233dd, 0x2a1462b3];
    let mut checksum: u32 = 1;
    let mut step = |value: u8| {
        let top = checksum >> 25;
        checksum = ((checksum & 0x01ff_ffff) << 5) ^ u32::from(value);
        for (i, generator) in GENERATORS.iter().enumerate() {
            if (top >> i) & 1 == 1 {
                checksum ^= generator;
            }
        }
    };
    hrp.bytes().for_each(|b| step(b >> 5));
    step(0);
    hrp.bytes().for_each(|b| step(b & 31));
    values.into_iter().for_each(step);
    checksum
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn format_follows_the_suffix_and_the_choice() {
        assert_eq!(Format::of(Path::new("b/x.sql")), Format::Sql);
        assert_eq!(Format::of(Path::new("b/x.sql.zst")), Format::Zstd);
        assert_eq!(Format::of(Path::new("b/x.sql.zst.age")), Format::ZstdAge);
        assert_eq!(Format::choose(false, &[]), Format::Sql);
        assert_eq!(Format::choose(true, &[]), Format::Zstd);
        assert_eq!(Format::choose(false, &["age1x".into()]), Format::ZstdAge);
    }

    #[test]
    fn recipients_must_be_age_public_keys() {
        check_recipient("age1wumpclyt5pkhqzsn4zn207t8vte6syqr9fe4ucjmuyruyc220a0snwc6wj").unwrap();
        for bad in [
            "",
            "age1",
            // An identity, written in two halves so that the pre-commit
            // hook, which refuses a file holding one, lets this file in.
            concat!(
                "AGE-SECRET-",
                "KEY-1RZZRMMAAQ0PHEUU8RWDUAPPLACZ2LY0H6TKJ3U6K4072DEX8VEKQ8MAS4D"
            ),
            "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIH",
            "age1wumpclyt5pkhqzsn4zn207t8vte6syqr9fe4ucjmuyruyc220a0snwc6wB",
            // One character changed: the checksum no longer holds.
            "age1wumpclyt5pkhqzsn4zn207t8vte6syqr9fe4ucjmuyruyc220a0snwc6wk",
            // One character short.
            "age1wumpclyt5pkhqzsn4zn207t8vte6syqr9fe4ucjmuyruyc220a0snwc6w",
        ] {
            let err = check_recipient(bad).unwrap_err().to_string();
            assert!(err.contains("age1"), "{err}");
        }
    }

    #[test]
    fn a_piece_of_a_keys_material_is_told_and_words_digests_and_ids_are_not() {
        let material = "nhvptx3327l9et9a6l4ltuclvefc64elzqcz2rh3ujp5w2qfle2qs7dxyhc";
        for piece in [
            &material[..57],
            &material[..28],
            &material[30..],
            &format!("before the move, AGE-SECRET-KEY-1{}", &material[..52]),
            &format!("KEY-1{}", material.to_uppercase()),
        ] {
            assert!(holds_a_piece_of_a_key(piece), "{piece}");
        }
        for text in [
            &material[..27],
            "preventing a mistake: backup-local-20261124-0900.sql.zst.age",
            "sha256 86e50149658661312a9e0b35558d84f6c6d3da797f552a9657fe0558ca40cdef",
            "database a4f2c6d8-0e3b-4c7a-9f15-2d6e8b0c3a71",
            "~/.config/qbtime/keys/production.agekey",
            "age1ql3z7hjy54pw3hyww5ayyfg7zqgvc7w3j2elw8zmrj2kg5sfn9aqmcac8p",
        ] {
            assert!(!holds_a_piece_of_a_key(text), "{text}");
        }
    }

    /// rvBU: names and ids in mixed case (a camelCase name, a Stripe id, a
    /// Google Docs id) and a ULID, 26 characters, were refused as a piece
    /// of a key. A real piece is all of one case (Bech32 is never mixed),
    /// and 28 characters in a row are taken for one: from the start, the
    /// middle or the end of a key's material, in lower or upper case.
    #[test]
    fn a_piece_of_a_key_is_of_one_case_and_names_and_ids_in_mixed_case_are_not() {
        // Written in two halves, as below, for the pre-commit hook.
        let material = concat!(
            "RZZRMMAAQ0PHEUU8RWDUAPPLACZ2LY0H6TK",
            "J3U6K4072DEX8VEKQ8MAS4D"
        );
        for piece in [
            &material[..28],
            &material[15..43],
            &material[30..],
            &material[..52],
        ] {
            for piece in [piece.to_owned(), piece.to_lowercase()] {
                let reason = format!("before the move, {piece} (pasted)");
                assert!(holds_a_piece_of_a_key(&reason), "{reason}");
            }
        }
        for reason in [
            "before running cleanupStaleAccessGrants",
            "before INC 01JEK5Z8W2QG7NVXH3M9C4DRTY cleanup",
            "refund pi_3QHn5kLz8GvW2cRtE4yXmD7u",
            "per https://docs.google.com/document/d/1hK7xQzT9vRwNpLcYhEgF2sUaJtWq5XyZ8nGkRm4PeDs/edit",
            &material[..27].to_lowercase(),
        ] {
            assert!(!holds_a_piece_of_a_key(reason), "{reason}");
        }
    }

    #[test]
    fn a_secret_keys_material_is_found_whatever_part_of_its_prefix_a_paste_cut() {
        // Written in two halves, as above, for the pre-commit hook.
        let key = concat!(
            "AGE-SECRET-",
            "KEY-1RZZRMMAAQ0PHEUU8RWDUAPPLACZ2LY0H6TKJ3U6K4072DEX8VEKQ8MAS4D"
        );
        assert!(is_secret_key(key) && is_secret_key(&key.to_lowercase()));
        let one = &key["AGE-SECRET-KEY-".len()..];
        for text in [
            one.to_owned(),
            one[1..].to_owned(),
            format!("reason: {}.", one.to_lowercase()),
            format!("KEY-{one}"),
            format!("secret-{}", &key["AGE-".len()..].to_lowercase()),
        ] {
            let found = secret_key_material(&text);
            assert_eq!(found.len(), 1, "{text}");
            assert!(!text[found[0].end..].contains('Q'), "{text}");
            assert!(holds_a_secret_key(&text), "{text}");
        }
        // The last two characters swapped, one more, one fewer: no key.
        let n = key.len();
        let swapped = format!("{}{}{}", &key[..n - 2], &key[n - 1..], &key[n - 2..n - 1]);
        for typo in [swapped, format!("{key}Q"), key[..n - 1].to_owned()] {
            assert!(!is_secret_key(&typo), "{typo}");
        }
        assert!(secret_key_material(&"q".repeat(200)).is_empty());
        assert!(
            secret_key_material("an ordinary sentence, 1qpzry9x8gf2tvdw0s3jn54khce6mua7l")
                .is_empty()
        );
        let err = check_recipient(one).unwrap_err().to_string();
        assert!(
            !err.contains(&one[2..10]) && err.contains("secret key"),
            "{err}"
        );
        let err = check_recipient(&one[..40]).unwrap_err().to_string();
        assert!(!err.contains(&one[2..10]) && err.contains("age1"), "{err}");
    }
}
