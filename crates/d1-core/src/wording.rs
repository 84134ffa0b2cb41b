//! How counts and commands are written for people: "1 backup", "2 backups",
//! and a command line shell-quoted so that it can be pasted back.

/// `1 backup`, `2 backups`, `0 tables`.
pub fn count<N: std::fmt::Display + PartialEq + From<u8>>(n: N, noun: &str) -> String {
    if n == N::from(1) {
        format!("1 {noun}")
    } else {
        format!("{n} {noun}s")
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

fn shell_word(word: &str) -> String {
    let plain = !word.is_empty()
        && word
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "@%+=:,./_-".contains(c));
    if plain {
        word.to_owned()
    } else {
        format!("'{}'", word.replace('\'', r"'\''"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

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
}
