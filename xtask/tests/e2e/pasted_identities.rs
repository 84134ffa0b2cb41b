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

/// A sandbox with its migrations applied, the directory of a key made
/// there, and that key's secret line.
fn migrated_with_a_key() -> (Sandbox, tempfile::TempDir, String) {
    let sb = Sandbox::new();
    sb.apply_migrations();
    let keys = tempfile::tempdir().unwrap();
    let secret = secret_key(&sb, keys.path());
    (sb, keys, secret)
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

/// Fails unless `run` was refused (exit 2) naming `flag` and `fix`, and
/// showing no piece of the key.
fn assert_refused_unshown(secret: &str, run: &Run, flag: &str, fix: &str) {
    assert_eq!(run.code, Some(2), "{}", run.all());
    assert_no_piece(secret, &run.all(), flag);
    assert!(
        run.stderr.contains(flag) && run.stderr.contains(fix),
        "the refusal names neither {flag} nor its fix ({fix}):\n{}",
        run.all()
    );
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
        assert_refused_unshown(&secret, &run, "--encrypt-to", "age1");
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
    let (sb, _keys, secret) = migrated_with_a_key();
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

/// rvBT: a piece of a key's material whose checksum cannot be checked
/// (the first 57 or 52 characters after `AGE-SECRET-KEY-1`: 52 already
/// carry all of its 32 bytes), or the whole of it with two characters
/// swapped, was recorded as a backup's reason, shown by `list -v` and sent
/// offsite with the manifest. It is refused (exit 2) before anything is
/// written, naming the flag and never quoting the reason.
#[test]
fn a_piece_of_a_secret_key_as_a_reason_is_refused_before_anything_is_written() {
    let (sb, _keys, secret) = migrated_with_a_key();
    let material = &secret["AGE-SECRET-KEY-1".len()..];
    let mut swapped: Vec<char> = material.chars().collect();
    let at = (0..swapped.len() - 1).find(|&i| swapped[i] != swapped[i + 1]);
    swapped.swap(at.unwrap(), at.unwrap() + 1);
    let pieces = [
        material[..57].to_owned(),
        material[..52].to_owned(),
        swapped.into_iter().collect(),
        format!("before the move, KEY-1{}", material[..52].to_lowercase()),
    ];
    let held = sb.backups_held();
    for piece in &pieces {
        let run = sb.xtask(&["backup", "local", "--reason", piece]);
        assert_refused_unshown(&secret, &run, "--reason", "in words");
        assert_eq!(sb.backups_held(), held, "a file in backups/ was written");
    }
    let list = sb.xtask(&["list", "-v"]);
    assert_no_piece(&secret, &list.all(), "list -v");
}

/// What a reason may carry all the same: a sha256 digest in hex (this
/// one, of `34`, has 42 characters in a row of Bech32's alphabet, but only
/// hex digits), a database id and a backup's file name are kept as typed.
#[test]
fn a_reason_with_a_digest_an_id_and_a_file_name_is_kept_as_typed() {
    let sb = Sandbox::new();
    sb.apply_migrations();
    let reason = "restore test of backup-local-20261124-0900.sql, sha256 \
                  86e50149658661312a9e0b35558d84f6c6d3da797f552a9657fe0558ca40cdef, \
                  into a4f2c6d8-0e3b-4c7a-9f15-2d6e8b0c3a71";
    sb.xtask(&["backup", "local", "--reason", reason])
        .assert_ok();
    let name = only_backup(&sb);
    assert_eq!(manifest_for(&sb, &name)["reason"], reason);
    let list = sb.xtask(&["list", "-v"]);
    assert!(
        list.stdout
            .contains("86e50149658661312a9e0b35558d84f6c6d3da797f552a9657fe0558ca40cdef"),
        "list -v does not show the reason's digest:\n{}",
        list.all()
    );
}

/// rvBU: a reason holding a name or an id in mixed case (a camelCase
/// function, a Stripe id, a Google Docs link) or a ULID was refused as a
/// piece of a key, without saying which part. A piece of a key is all of
/// one case (Bech32 is never mixed); these are kept as typed.
#[test]
fn a_reason_with_names_and_ids_in_mixed_case_is_kept_as_typed() {
    let sb = Sandbox::new();
    sb.apply_migrations();
    for reason in [
        "before running cleanupStaleAccessGrants",
        "before INC 01JEK5Z8W2QG7NVXH3M9C4DRTY cleanup",
        "refund pi_3QHn5kLz8GvW2cRtE4yXmD7u",
        "per https://docs.google.com/document/d/1hK7xQzT9vRwNpLcYhEgF2sUaJtWq5XyZ8nGkRm4PeDs/edit",
    ] {
        let held = sb.backups_held();
        sb.xtask(&["backup", "local", "--reason", reason])
            .assert_ok();
        assert_eq!(
            manifest_for(&sb, &taken_since(&sb, &held))["reason"],
            reason
        );
    }
}

/// rvBU: a piece of a key in the command `with-backup` runs (`sh -c "…
/// PIECE …"`) was kept in its backup's reason (`before: sh -c '…'`),
/// printed in `Running: …`, and shown by `list -v`. It is replaced by
/// `[not shown]` where the command is recorded and printed; the command
/// itself runs with its argument as given.
#[test]
fn a_piece_of_a_key_in_with_backups_command_is_kept_nowhere_and_the_command_gets_it() {
    let (sb, keys, secret) = migrated_with_a_key();
    let material = &secret["AGE-SECRET-KEY-1".len()..];
    let out = keys.path().join("argument");
    for piece in [material[..52].to_owned(), material[6..].to_lowercase()] {
        let script = format!("printf %s {piece} > '{}'", out.display());
        let held = sb.backups_held();
        let run = sb.xtask(&["with-backup", "local", "--", "sh", "-c", &script]);
        run.assert_ok();
        assert_no_piece(&secret, &run.all(), "with-backup");
        assert!(
            run.stdout
                .contains("Running: sh -c 'printf %s [not shown] >"),
            "the command is not shown with its piece of a key marked:\n{}",
            run.all()
        );
        assert_eq!(std::fs::read_to_string(&out).unwrap(), piece);
        let reason = manifest_for(&sb, &taken_since(&sb, &held))["reason"].to_string();
        assert!(
            reason.starts_with("\"before: sh -c 'printf %s [not shown] >"),
            "{reason}"
        );
        let list = sb.xtask(&["list", "-v"]);
        assert_no_piece(&secret, &list.all(), "list -v");
    }
    for name in sb.backup_files() {
        let text = std::fs::read_to_string(sb.backups().join(&name)).unwrap_or_default();
        assert_no_piece(&secret, &text, &name);
    }
}

/// The backup taken since `held` ([`Sandbox::backups_held`]) was read.
fn taken_since(sb: &Sandbox, held: &std::collections::BTreeMap<String, String>) -> String {
    { sb.backups_held().into_keys() }
        .find(|name| !held.contains_key(name) && name.ends_with(".sql"))
        .expect("no backup was taken")
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
