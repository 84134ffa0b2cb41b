//! age identities as a person pastes them (rvBR): a secret key whose
//! `AGE-SECRET-KEY-` prefix a double-click left behind (`1YNL0…`, or with
//! only a part of the prefix, or in lower case) given where a recipient,
//! an identity file or a reason goes, and an identity file holding a key
//! with a typo.

use crate::common;

use std::path::Path;

use common::*;

/// [`sealed_backup`], with the key's secret line in place of its file.
fn sealed() -> (Sandbox, tempfile::TempDir, String, String) {
    let (sb, keys, key, _, backup) = sealed_backup();
    (sb, keys, secret_key_line(&key), backup)
}

/// A key made by `keygen` in `dir`: its secret key line.
fn secret_key(sb: &Sandbox, dir: &Path) -> String {
    let key = dir.join("k.agekey");
    keygen_recipient(&sb.xtask(&["keygen", "--out", key.to_str().unwrap()]));
    secret_key_line(&key)
}

/// `cmd` run with `QBTIME_AGE_IDENTITY` set to `identity`.
fn with_identity_variable(sb: &Sandbox, cmd: &[&str], identity: &str) -> Run {
    let mut cmd = sb.xtask_command(cmd);
    Run::from_output(cmd.env("QBTIME_AGE_IDENTITY", identity).output().unwrap())
}

/// The key as a hurried paste gives it: the part after the last `-` (what
/// a double-click selects), with a part of the prefix, in lower case, or
/// without even the `1`.
fn pastes(secret: &str) -> Vec<String> {
    let payload = &secret["AGE-SECRET-KEY-".len()..];
    vec![
        payload.to_owned(),
        payload.to_lowercase(),
        format!("SECRET-KEY-{payload}"),
        format!("KEY-{payload}"),
        format!("key-{}", payload.to_lowercase()),
        payload[1..].to_owned(),
    ]
}

/// Fails when `text` holds any 8 characters in a row of the key's
/// material (what follows `AGE-SECRET-KEY-1`), in any case.
fn assert_no_piece(secret: &str, text: &str, what: &str) {
    let material = secret["AGE-SECRET-KEY-1".len()..].to_lowercase();
    let lower = text.to_lowercase();
    for at in 0..=material.len() - 8 {
        let piece = &material[at..at + 8];
        assert!(
            !lower.contains(piece),
            "{what} shows a piece of the secret key ({piece}):\n{}",
            lower.replace(&material, "<the key>")
        );
    }
}

/// rvBR: a key pasted as a recipient, on the command line or in
/// backups.toml, was quoted back: `"1YNL0…" is not an age recipient`, by
/// backup, status and doctor alike.
#[test]
fn a_secret_key_pasted_without_its_prefix_as_a_recipient_is_never_printed() {
    let sb = Sandbox::new();
    let keys = tempfile::tempdir().unwrap();
    let secret = secret_key(&sb, keys.path());
    let settings = sb.path().join("backups.toml");
    let original = std::fs::read_to_string(&settings).unwrap();
    for pasted in pastes(&secret) {
        let run = sb.xtask(&["backup", "local", "--encrypt-to", &pasted]);
        assert_eq!(run.code, Some(2), "{}", run.all());
        assert_no_piece(&secret, &run.all(), "backup --encrypt-to");
        assert!(
            run.stderr.contains("--encrypt-to") && run.stderr.contains("age1"),
            "the refusal names neither the flag nor what a recipient looks like:\n{}",
            run.all()
        );
        encrypt_backups_of(&sb, "local", &pasted);
        for args in [
            &["-q", "backup", "local"][..],
            &["-q", "status"],
            &["doctor"],
        ] {
            let run = sb.xtask(args);
            assert_ne!(run.code, Some(0), "{args:?}: {}", run.all());
            assert_no_piece(&secret, &run.all(), &format!("{args:?}"));
            assert!(
                run.all().contains("[local.encryption] recipients"),
                "{args:?} does not say where the bad recipient is:\n{}",
                run.all()
            );
        }
        std::fs::write(&settings, &original).unwrap();
    }
}

/// rvBR: a key pasted where the identity file's path goes
/// (`QBTIME_AGE_IDENTITY`, `--identity`) was quoted back as a file that
/// cannot be read.
#[test]
fn a_secret_key_pasted_without_its_prefix_as_the_identity_is_never_printed() {
    let (sb, _keys, secret, backup) = sealed();
    for pasted in pastes(&secret) {
        let run = with_identity_variable(&sb, &["doctor"], &pasted);
        assert_no_piece(&secret, &run.all(), "doctor with QBTIME_AGE_IDENTITY");
        let run = sb.xtask(&["verify", &backup, "--identity", &pasted]);
        assert_eq!(run.code, Some(2), "{}", run.all());
        assert_no_piece(&secret, &run.all(), "verify --identity");
    }
}

/// rvBR: a key pasted as a backup's reason was kept in its manifest and
/// shown by `list -v`.
#[test]
fn a_secret_key_pasted_without_its_prefix_as_a_reason_is_kept_nowhere() {
    let sb = Sandbox::new();
    sb.apply_migrations();
    let keys = tempfile::tempdir().unwrap();
    let secret = secret_key(&sb, keys.path());
    for pasted in pastes(&secret) {
        let run = sb.xtask(&["backup", "local", "--reason", &pasted]);
        assert_no_piece(&secret, &run.all(), "backup --reason");
        let list = sb.xtask(&["list", "-v"]);
        assert_no_piece(&secret, &list.all(), "list -v");
    }
    for name in sb.backup_files() {
        let text = std::fs::read_to_string(sb.backups().join(&name)).unwrap_or_default();
        assert_no_piece(&secret, &text, &name);
    }
}

/// A secret key line with a typo: the last two characters swapped, one
/// character more, one fewer.
fn typos(secret: &str) -> Vec<String> {
    let n = secret.len();
    let (head, tail) = secret.split_at(n - 2);
    let swapped: String = tail.chars().rev().collect();
    vec![
        format!("{head}{swapped}"),
        format!("{secret}Q"),
        secret[..n - 1].to_owned(),
    ]
}

/// rvBR: an identity file holding a mistyped key made verify, restore and
/// doctor call a good encrypted backup damaged (exit 3, "move it aside,
/// then offsite fetch"). The file is read first: the bad line is named by
/// its number, never shown, and the run stops there (exit 2).
#[test]
fn a_mistyped_identity_is_named_by_its_line_and_the_backup_is_not_called_damaged() {
    let (sb, keys, secret, backup) = sealed();
    let held = sb.backups_held();
    let mut files = Vec::new();
    for typo in typos(&secret) {
        files.push((format!("# created: today\n{typo}\n"), 2));
    }
    // A mistyped old key, then the right one.
    files.push((format!("{}\n{secret}\n", typos(&secret)[0]), 1));
    for (n, (text, line)) in files.into_iter().enumerate() {
        let file = keys.path().join(format!("typo{n}.agekey"));
        std::fs::write(&file, text).unwrap();
        std::fs::set_permissions(&file, std::os::unix::fs::PermissionsExt::from_mode(0o600))
            .unwrap();
        let file = file.to_str().unwrap();
        let verify = sb.xtask(&["verify", &backup, "--identity", file]);
        let to_local = ["--to", "local", "--replace", "--yes", "--identity", file];
        let restore = sb.xtask(&[&["restore", backup.as_str()][..], &to_local].concat());
        for (what, run) in [("verify", &verify), ("restore", &restore)] {
            assert_eq!(run.code, Some(2), "{what}: {}", run.all());
            let said = run.all().to_lowercase();
            assert!(
                !said.contains("damaged") && !said.contains("bad") && !said.contains("offsite"),
                "{what} calls a good backup damaged for a typo in the identity:\n{}",
                run.all()
            );
            assert!(
                run.stderr.contains(&format!("line {line}")) && run.stderr.contains(file),
                "{what} does not name the identity file's bad line ({line}):\n{}",
                run.all()
            );
            assert_no_piece(&secret, &run.all(), what);
        }
        let doctor = with_identity_variable(&sb, &["doctor"], file);
        let said = doctor.all().to_lowercase();
        assert!(
            !said.contains("damaged") && said.contains(&format!("line {line}")),
            "doctor does not name the identity's bad line ({line}), or calls the backup damaged:\n{}",
            doctor.all()
        );
        assert_no_piece(&secret, &doctor.all(), "doctor");
        assert_eq!(sb.backups_held(), held, "backups/ changed");
    }
}
