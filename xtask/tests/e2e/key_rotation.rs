//! age keys over a year, end to end with local D1: a key rotation
//! (recipients [old] -> [old, new] -> [new]), a leaver whose recipient is
//! removed, a lost identity, and recipients in backups.toml that are not
//! what they should be (atkBD).

use crate::common;

use std::path::Path;

use common::*;
use serde_json::Value;

/// Writes `[local.encryption] recipients = [...]` at the top of the
/// sandbox's backups.toml, in place of any written before.
fn seal_local_to(sb: &Sandbox, recipients: &[&str]) {
    let settings = sb.path().join("backups.toml");
    let text = std::fs::read_to_string(&settings).unwrap();
    let rest = match text.split_once("\n# end of atkBD encryption\n") {
        Some((_, rest)) => rest.to_owned(),
        None => text,
    };
    let list = recipients
        .iter()
        .map(|r| format!("{r:?}"))
        .collect::<Vec<_>>()
        .join(", ");
    std::fs::write(
        &settings,
        format!("[local.encryption]\nrecipients = [{list}]\n# end of atkBD encryption\n{rest}"),
    )
    .unwrap();
}

fn keygen(sb: &Sandbox, file: &Path) -> String {
    keygen_recipient(&sb.xtask(&["keygen", "--out", file.to_str().unwrap()]))
}

/// The newest backup file of the sandbox (by its manifest's created_at).
fn newest_backup(sb: &Sandbox) -> String {
    let run = sb.xtask(&["list", "--json"]);
    run.assert_ok();
    let rows: Value = serde_json::from_str(&run.stdout).unwrap();
    rows[0]["file"].as_str().unwrap().to_owned()
}

/// A year of one key rotation: a backup sealed to the old key alone, one
/// to both while the new key is rolled out, one to the new key alone.
/// Returns the sandbox, the key directory, the old recipient, and the
/// three backups, oldest first.
struct Rotated {
    sb: Sandbox,
    keys: tempfile::TempDir,
    old: String,
    new: String,
    backups: [String; 3],
}

fn rotated() -> Rotated {
    let sb = Sandbox::new();
    sb.apply_migrations();
    sb.execute_sql(SEED_SQL);
    let keys = tempfile::tempdir().unwrap();
    let old = keygen(&sb, &keys.path().join("old.agekey"));
    let new = keygen(&sb, &keys.path().join("new.agekey"));
    seal_local_to(&sb, &[&old]);
    sb.xtask(&["backup", "local"]).assert_ok();
    let a = newest_backup(&sb);
    seal_local_to(&sb, &[&old, &new]);
    sb.xtask(&["backup", "local"]).assert_ok();
    let b = newest_backup(&sb);
    seal_local_to(&sb, &[&new]);
    sb.xtask(&["backup", "local"]).assert_ok();
    let c = newest_backup(&sb);
    assert!(a != b && b != c, "{a} {b} {c}");
    Rotated {
        sb,
        keys,
        old,
        new,
        backups: [a, b, c],
    }
}

/// atkBD: after a rotation to [new], the backup taken under [old] alone is
/// still kept (prune keeps it, local keep_within 7d) and only the old
/// identity opens it. While it was the newest, status warned "Keep that
/// identity until a backup sealed to today's recipients is verified"; once
/// one is, status says nothing at all, exit 0, so the operator, following
/// that advice, throws away the only key to every older kept backup.
/// Cause: `steps/status.rs` `restore_warnings` looks at the newest
/// verified backup only.
#[test]
fn status_warns_while_a_kept_backup_is_sealed_only_to_a_retired_recipient() {
    let r = rotated();
    let [only_old, _, _] = &r.backups;
    let plan = r.sb.xtask(&["prune", "--env", "local", "--dry-run"]);
    plan.assert_ok();
    assert!(
        plan.stdout
            .lines()
            .any(|l| l.contains(only_old.as_str()) && l.contains("keep")),
        "prune keeps {only_old}:\n{}",
        plan.all()
    );
    let status = r.sb.xtask(&["status", "--env", "local"]);
    assert!(
        status.all().contains(only_old.as_str()) && status.all().contains(&r.old),
        "{only_old} is kept and sealed only to {}, which backups.toml no longer names, yet \
         status says nothing of it, so nothing stops the old identity being thrown away:\n{}",
        r.old,
        status.all()
    );
    // A rotation under way is no fault: a scheduled `status -q` stays
    // quiet about it (its cron mail means something is wrong).
    let quiet = r.sb.xtask(&["-q", "status", "--env", "local"]);
    quiet.assert_ok();
    assert!(!quiet.all().contains(only_old.as_str()), "{}", quiet.all());
}

/// atkBD: doctor with `QBTIME_AGE_IDENTITY` set to the new identity says
/// `[ok] identity ... opens local's newest encrypted backup` and nothing
/// else, though that identity opens none of the kept backup sealed to the
/// old key alone (verify of it stops at "no identity matched"). An
/// operator who checks the key in force with doctor is told all is well
/// while a kept backup needs another one. Cause: `steps/doctor.rs`
/// `identity_checks` tries each environment's newest backup only.
#[test]
fn doctor_names_a_kept_backup_the_identity_in_force_cannot_open() {
    let r = rotated();
    let [only_old, _, _] = &r.backups;
    let new = r.keys.path().join("new.agekey");
    let verify = r.sb.xtask(&[
        "verify",
        only_old,
        "--no-record",
        "--identity",
        new.to_str().unwrap(),
    ]);
    assert!(!verify.ok, "{}", verify.all());
    let run = Run::from_output(
        r.sb.xtask_command(&["doctor", "--json"])
            .env("QBTIME_AGE_IDENTITY", &new)
            .output()
            .unwrap(),
    );
    let report: Value = serde_json::from_str(&run.stdout).unwrap();
    let told = report["checks"].as_array().unwrap().iter().any(|c| {
        c["status"] != "ok"
            && serde_json::to_string(c)
                .unwrap()
                .contains(only_old.as_str())
    });
    assert!(
        told,
        "doctor calls QBTIME_AGE_IDENTITY fine, though it does not open the kept backup \
         {only_old}:\n{}",
        run.stdout
    );
}

/// atkBD: a leaver. Alice's recipient is removed from backups.toml; the
/// two backups sealed to [alice, bob] are kept, and alice's identity still
/// opens them. Nothing tells the operator which backups a departed key can
/// still read (what deciding to re-encrypt or delete them needs): `list`
/// and `list --json` give no recipients, and status is silent (bob is
/// still named). Only reading each manifest's `sealed.recipients` by hand
/// tells. Cause: `commands/list.rs` rows carry no `sealed_to`.
#[test]
fn list_names_the_recipients_a_backup_is_sealed_to_so_a_leavers_backups_can_be_found() {
    let sb = Sandbox::new();
    sb.apply_migrations();
    sb.execute_sql(SEED_SQL);
    let keys = tempfile::tempdir().unwrap();
    let alice = keygen(&sb, &keys.path().join("alice.agekey"));
    let bob = keygen(&sb, &keys.path().join("bob.agekey"));
    seal_local_to(&sb, &[&alice, &bob]);
    sb.xtask(&["backup", "local"]).assert_ok();
    let first = newest_backup(&sb);
    sb.xtask(&["backup", "local"]).assert_ok();
    let second = newest_backup(&sb);
    // Alice leaves.
    seal_local_to(&sb, &[&bob]);
    sb.xtask(&["backup", "local"]).assert_ok();
    let after = newest_backup(&sb);

    let run = sb.xtask(&["list", "--json"]);
    run.assert_ok();
    let rows: Value = serde_json::from_str(&run.stdout).unwrap();
    let row = |name: &str| {
        let row = rows
            .as_array()
            .unwrap()
            .iter()
            .find(|r| r["file"] == name)
            .unwrap_or_else(|| panic!("{name} listed:\n{}", run.stdout));
        serde_json::to_string(row).unwrap()
    };
    for name in [&first, &second] {
        assert!(
            row(name).contains(&alice),
            "{name} is still readable by the departed recipient {alice}, but list --json does \
             not say whom it is sealed to:\n{}",
            run.stdout
        );
    }
    assert!(
        !row(&after).contains(&alice),
        "{after} is sealed to bob alone:\n{}",
        run.stdout
    );
}

/// atkBD: an identity (`AGE-SECRET-KEY-1…`) pasted into backups.toml as a
/// recipient. backups.toml is tracked: the key to every backup is one
/// commit from the repository. The refusal (exit 2) redacts it but says
/// only `"[REDACTED]" is not an age recipient: it must be a public key
/// that starts with age1…`: not that what was pasted is the secret key,
/// that it must come out of the file before any commit, and that a key
/// already committed is to be replaced. Cause: `d1_core::sealed::
/// check_recipient` (crates/d1-core/src/sealed.rs:61) treats it as any
/// malformed recipient.
#[test]
fn an_identity_pasted_as_a_recipient_is_called_a_secret_key_not_a_bad_recipient() {
    let sb = Sandbox::new();
    let keys = tempfile::tempdir().unwrap();
    let file = keys.path().join("k.agekey");
    keygen(&sb, &file);
    let secret = std::fs::read_to_string(&file)
        .unwrap()
        .lines()
        .find(|l| l.starts_with("AGE-SECRET-KEY-"))
        .unwrap()
        .to_owned();
    seal_local_to(&sb, &[&secret]);
    let run = sb.xtask(&["backup", "local"]);
    assert_eq!(run.code, Some(2), "{}", run.all());
    assert!(
        !run.all().contains(&secret) && !run.all().contains(&secret[20..]),
        "the secret key is printed"
    );
    let said = run.stderr.to_lowercase();
    assert!(
        said.contains("secret key") || said.contains("identity"),
        "a secret key in backups.toml, a tracked file, is called only a malformed recipient:\n{}",
        run.all()
    );
}

/// atkBD: a recipient copied with a trailing space (`"age1… "`) is refused
/// as "is not an age recipient: it must be a public key … copied whole
/// (its last characters are a checksum)": the key is whole and right, and
/// the message never says the space is the trouble; the operator compares
/// it with keygen's output, sees the same characters, and is lost.
#[test]
fn a_recipient_with_a_trailing_space_is_told_by_its_space() {
    let sb = Sandbox::new();
    let keys = tempfile::tempdir().unwrap();
    let recipient = keygen(&sb, &keys.path().join("k.agekey"));
    seal_local_to(&sb, &[&format!("{recipient} ")]);
    let run = sb.xtask(&["backup", "local"]);
    assert!(
        run.ok || run.stderr.to_lowercase().contains("space"),
        "a right recipient with a trailing space is refused without naming the space:\n{}",
        run.all()
    );
}

/// rvAU: doctor's identity checks (88e7b97) mark each recipient set of an
/// environment as tried when they first meet it, even on a backup they do
/// not try (a `--schema-only` or `--table` one). A partial backup newer than
/// the newest full one, sealed to the same recipients, hides that full one:
/// with `QBTIME_AGE_IDENTITY` set to a key it does not open, doctor says
/// nothing at all of the identity, where before 88e7b97 it warned "does not
/// open local's newest encrypted backup" (the one `restore latest` takes).
/// Cause: `steps/doctor.rs` `identity_checks`, the `sets.push` before the
/// `!entry.is_whole()` test (xtask/src/steps/doctor.rs:413-418).
#[test]
fn doctor_tries_the_identity_on_the_newest_full_backup_behind_a_newer_partial_one() {
    let sb = Sandbox::new();
    sb.apply_migrations();
    sb.execute_sql(SEED_SQL);
    let keys = tempfile::tempdir().unwrap();
    let old = keygen(&sb, &keys.path().join("old.agekey"));
    keygen(&sb, &keys.path().join("other.agekey"));
    seal_local_to(&sb, &[&old]);
    sb.xtask(&["backup", "local"]).assert_ok();
    let full = newest_backup(&sb);
    sb.xtask(&["backup", "local", "--schema-only"]).assert_ok();
    assert_ne!(newest_backup(&sb), full);
    let other = keys.path().join("other.agekey");
    let run = Run::from_output(
        sb.xtask_command(&["doctor", "--json"])
            .env("QBTIME_AGE_IDENTITY", &other)
            .output()
            .unwrap(),
    );
    let report: Value = serde_json::from_str(&run.stdout).unwrap();
    let told =
        report["checks"].as_array().unwrap().iter().any(|c| {
            c["status"] != "ok" && serde_json::to_string(c).unwrap().contains(full.as_str())
        });
    assert!(
        told,
        "QBTIME_AGE_IDENTITY opens no backup of local, yet doctor says nothing of {full}, the \
         newest full backup, once a newer --schema-only backup sealed to the same key exists:\n{}",
        run.stdout
    );
}

/// rvAU: a secret key pasted into backups.toml as a recipient with the
/// hyphens a word processor or chat turns `-` into (`AGE‐SECRET‐KEY‐1…`,
/// U+2010) is neither named a secret key nor redacted: `check_recipient`
/// looks for the ASCII `age-secret-key-` only (unlike `looks_like_a_key`
/// for QBTIME_AGE_IDENTITY, which folds look-alike dashes), so the generic
/// `"…" is not an age recipient` message prints the key whole, and the
/// redactor, looking for ASCII hyphens too, lets it through. Cause:
/// crates/d1-core/src/sealed.rs:62 and :85.
#[test]
fn a_secret_key_with_look_alike_hyphens_pasted_as_a_recipient_is_never_printed() {
    let sb = Sandbox::new();
    let keys = tempfile::tempdir().unwrap();
    let file = keys.path().join("k.agekey");
    keygen(&sb, &file);
    let secret = std::fs::read_to_string(&file)
        .unwrap()
        .lines()
        .find(|l| l.starts_with("AGE-SECRET-KEY-"))
        .unwrap()
        .to_owned();
    let pasted = secret.replace('-', "\u{2010}");
    seal_local_to(&sb, &[&pasted]);
    let run = sb.xtask(&["backup", "local"]);
    assert_eq!(run.code, Some(2), "{}", run.all());
    let material = &secret["AGE-SECRET-KEY-1".len()..];
    assert!(
        !run.all().contains(material),
        "the secret key in backups.toml is printed:\n{}",
        run.all().replace(material, "<the key>")
    );
}

/// rvAU: status's "retired keys" line (88e7b97) prints each recipient a
/// kept backup's manifest names, as it is: `retired_only` never asks
/// whether it is a recipient at all (manifests only refuse control
/// characters there). A manifest planted in backups/ (or edited) with
/// `sealed.recipients = ["nothing to keep: all backups open with today's
/// key"]` puts that sentence in the operator's status report, in the very
/// line that tells which identity must be kept. Cause:
/// xtask/src/steps/status.rs `retired_only` (:709-714) and `retired_keys`.
#[test]
fn status_never_prints_a_planted_recipient_that_is_no_recipient() {
    let sb = Sandbox::new();
    sb.apply_migrations();
    sb.execute_sql(SEED_SQL);
    let keys = tempfile::tempdir().unwrap();
    let old = keygen(&sb, &keys.path().join("old.agekey"));
    let new = keygen(&sb, &keys.path().join("new.agekey"));
    seal_local_to(&sb, &[&old]);
    sb.xtask(&["backup", "local"]).assert_ok();
    let planted_in = newest_backup(&sb);
    seal_local_to(&sb, &[&new]);
    sb.xtask(&["backup", "local"]).assert_ok();
    let planted = "nothing to keep: every backup opens with today's key";
    let stem = planted_in.split(".sql").next().unwrap();
    let path = sb.backups().join(format!("{stem}.manifest.json"));
    let mut manifest = manifest_for(&sb, &planted_in);
    manifest["sealed"]["recipients"] = serde_json::json!([planted]);
    std::fs::write(&path, serde_json::to_string_pretty(&manifest).unwrap()).unwrap();
    let run = sb.xtask(&["status", "--env", "local"]);
    assert!(
        !run.all().contains(planted),
        "a recipient planted in a manifest is printed in status as is:\n{}",
        run.all()
    );
}

/// rvAU: the "retired keys" line is only given while backups.toml still
/// names some recipient (`retired_keys` returns at once when `named` is
/// empty). An operator who turns encryption off for an environment (takes
/// `[local.encryption]` out) keeps the backups sealed before, which only
/// that identity opens; status says nothing of them, exit 0, so nothing
/// stops that identity being thrown away with the encryption. Cause:
/// xtask/src/steps/status.rs `retired_keys`, `if named.is_empty()`.
#[test]
fn status_names_kept_sealed_backups_once_encryption_is_turned_off() {
    let sb = Sandbox::new();
    sb.apply_migrations();
    sb.execute_sql(SEED_SQL);
    let keys = tempfile::tempdir().unwrap();
    let old = keygen(&sb, &keys.path().join("old.agekey"));
    seal_local_to(&sb, &[&old]);
    sb.xtask(&["backup", "local"]).assert_ok();
    let sealed = newest_backup(&sb);
    seal_local_to(&sb, &[]);
    // An empty list means no encryption: take the section out whole.
    let settings = sb.path().join("backups.toml");
    let text = std::fs::read_to_string(&settings).unwrap();
    let rest = text
        .split_once("\n# end of atkBD encryption\n")
        .map_or(text.clone(), |(_, rest)| rest.to_owned());
    std::fs::write(&settings, rest).unwrap();
    sb.xtask(&["backup", "local"]).assert_ok();
    assert_ne!(newest_backup(&sb), sealed);
    let status = sb.xtask(&["status", "--env", "local"]);
    assert!(
        status.all().contains(sealed.as_str()) && status.all().contains(&old),
        "{sealed} is kept and only {old} opens it, but with encryption turned off status says \
         nothing of it:\n{}",
        status.all()
    );
}

/// atkCF: after a rotation to [new], the backup sealed to the retired key
/// alone is restored with the old identity (`--identity old.agekey`), as
/// the recovery of an older state needs. The safety backup taken first is
/// sealed to today's recipients, [new], which the old identity does not
/// open; yet the way back printed names the old identity: run as printed,
/// it fails, in the middle of a recovery. It must name an identity that
/// opens the safety backup, or say which one is needed.
#[test]
fn the_way_back_after_restoring_a_retired_keys_backup_names_an_identity_that_opens_it() {
    let r = rotated();
    let old_key = r.keys.path().join("old.agekey");
    let old_key = old_key.to_str().unwrap();
    let run = r.sb.xtask(&[
        "restore",
        &r.backups[0],
        "--to",
        "local",
        "--replace",
        "--yes",
        "--identity",
        old_key,
    ]);
    run.assert_ok();
    // The way back, its command on the line after it (LR).
    let lines: Vec<&str> = run.stdout.lines().collect();
    let at = { lines.iter() }
        .position(|l| l.contains("to go back, restore it"))
        .unwrap_or_else(|| panic!("no way back printed:\n{}", run.all()));
    let line = lines[at];
    let command = { lines.get(at + 1) }
        .and_then(|l| l.strip_prefix("  cargo xtask "))
        .unwrap_or_else(|| {
            panic!(
                "the way back's command is no line of its own:\n{}",
                run.all()
            )
        });
    assert!(
        !command.contains(old_key),
        "the way back names the retired identity, which does not open the safety backup \
         (sealed to today's recipients):\n{}",
        run.all()
    );
    assert!(
        command.contains("--identity KEYFILE") && line.contains(&r.new),
        "the way back does not say which identity opens the safety backup:\n{}",
        run.all()
    );
}
