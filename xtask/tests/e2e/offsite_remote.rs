//! Offsite copies through the real wrangler's `r2` commands, pointed at the
//! loopback API: `backup --upload`, `upload`, `offsite list|fetch|lifecycle`,
//! a short upload caught by the read-back, and the scheduled job.

use crate::common;

use common::remote::*;
use common::*;
use d1_loopback::Faults;
use serde_json::Value;

const BUCKET: &str = "qbtime-d1-backups";

/// A loopback prod with the repository's backups.toml (prod's bucket is
/// `qbtime-d1-backups`) and that bucket created.
fn remote() -> (Remote, tempfile::TempDir) {
    let remote = Remote::new("");
    remote.server.add_bucket(BUCKET);
    (remote, tempfile::tempdir().unwrap())
}

fn list_json(remote: &Remote, home: &std::path::Path) -> Vec<Value> {
    let run = remote.xtask(home, &["list", "--env", "prod", "--json"]);
    run.assert_ok();
    serde_json::from_str(&run.stdout).unwrap()
}

#[test]
fn an_encrypted_backup_goes_offsite_is_listed_and_comes_back_whole() {
    let (remote, home) = remote();
    let key = home.path().join("key.txt");
    let recipient =
        keygen_recipient(&remote.xtask(home.path(), &["keygen", "--out", key.to_str().unwrap()]));

    let run = remote.xtask(
        home.path(),
        &[
            "-v",
            "backup",
            "prod",
            "--encrypt-to",
            &recipient,
            "--upload",
        ],
    );
    run.assert_ok();
    assert!(
        remote.server.unhandled().is_empty(),
        "{:?}",
        remote.server.unhandled()
    );
    assert!(run.stdout.contains("reads back as"), "{}", run.stdout);
    // The first upload finds no offsite index: the normal first state, not
    // an error (with -v too, where wrangler's lines are shown), and no path
    // to a log that is deleted when wrangler ends.
    for needle in ["[ERROR]", "does not exist", "Logs were written"] {
        assert!(!run.all().contains(needle), "{needle}:\n{}", run.all());
    }

    let sb = &remote.sb;
    let names: Vec<String> = sb
        .backup_files()
        .into_iter()
        .filter(|f| f.ends_with(".sql.zst.age"))
        .collect();
    assert_eq!(names.len(), 1, "{:?}", sb.backup_files());
    let name = &names[0];
    let local = std::fs::read(sb.backups().join(name)).unwrap();
    let stem = name.trim_end_matches(".sql.zst.age");
    let month = chrono::Utc::now().format("%Y/%m").to_string();
    let key_of = |file: &str| format!("prod/{month}/{file}");
    let mut keys = remote.server.r2_keys(BUCKET);
    keys.sort();
    let mut want = vec![
        "index/prod.json".to_owned(),
        key_of(&format!("{stem}.manifest.json")),
        key_of(name),
    ];
    want.sort();
    assert_eq!(keys, want);
    assert_eq!(
        remote.server.r2_object(BUCKET, &key_of(name)).unwrap(),
        local
    );
    // The offsite manifest says where it is; so does the local one.
    let offsite_manifest: Value = serde_json::from_slice(
        &remote
            .server
            .r2_object(BUCKET, &key_of(&format!("{stem}.manifest.json")))
            .unwrap(),
    )
    .unwrap();
    assert_eq!(offsite_manifest["offsite"]["key"], key_of(name).as_str());
    assert_eq!(
        manifest_for(sb, name)["offsite"],
        offsite_manifest["offsite"]
    );
    let rows = list_json(&remote, home.path());
    assert_eq!(
        rows[0]["offsite"],
        format!("r2://{BUCKET}/{}", key_of(name)).as_str()
    );

    let listed = remote.xtask(home.path(), &["offsite", "list", "--env", "prod"]);
    listed.assert_ok();
    assert!(listed.stdout.contains(name.as_str()), "{}", listed.stdout);
    assert!(listed.stdout.contains("zstd+age"), "{}", listed.stdout);

    // A new machine: nothing local. fetch brings back the file and its
    // manifest, checked, and the backup verifies with the identity.
    std::fs::remove_dir_all(sb.backups()).unwrap();
    let fetched = remote.xtask(
        home.path(),
        &["offsite", "fetch", "latest", "--env", "prod"],
    );
    fetched.assert_ok();
    assert_eq!(std::fs::read(sb.backups().join(name)).unwrap(), local);
    // The bucket's record of its verification is not taken on trust: the
    // copy is unverified here until it is verified here.
    assert!(
        fetched.stdout.contains("unverified here"),
        "{}",
        fetched.stdout
    );
    let verified_as = |sb: &Sandbox| manifest_for(sb, name)["verification"]["outcome"].clone();
    assert_eq!(verified_as(sb), Value::Null);
    let verified = remote.xtask(
        home.path(),
        &[
            "verify",
            sb.backups().join(name).to_str().unwrap(),
            "--identity",
            key.to_str().unwrap(),
        ],
    );
    verified.assert_ok();
    assert_eq!(verified_as(sb), "good");
    // Fetching again finds it already here and changes nothing.
    let again = remote.xtask(home.path(), &["offsite", "fetch", name, "--env", "prod"]);
    again.assert_ok();
    assert!(again.stdout.contains("already here"), "{}", again.stdout);
}

#[test]
fn a_short_upload_is_caught_and_the_local_backup_stays_not_offsite() {
    let (remote, home) = remote();
    remote.server.set_faults(Faults {
        r2_put_truncate_to: Some(100),
        ..Faults::default()
    });
    let run = remote.xtask(home.path(), &["backup", "prod", "--compress", "--upload"]);
    run.assert_refused("did not arrive whole");
    assert!(
        run.stderr
            .contains("the local backup is kept and is not marked offsite"),
        "{}",
        run.stderr
    );
    let rows = list_json(&remote, home.path());
    assert_eq!(rows.len(), 1);
    assert_eq!(rows[0]["verified"], "good");
    assert_eq!(rows[0]["offsite"], "no");
    assert!(
        !remote
            .server
            .r2_keys(BUCKET)
            .contains(&"index/prod.json".to_owned()),
        "nothing was listed offsite"
    );
    assert_no_partials(&remote.sb);

    // Once R2 behaves, `upload latest:prod` copies that same backup.
    remote.server.set_faults(Faults::default());
    let upload = remote.xtask(home.path(), &["upload", "latest:prod"]);
    upload.assert_ok();
    // An unencrypted copy of prod going offsite is said, with the fix.
    assert!(
        upload
            .stderr
            .contains("is not encrypted, and holds qbtime_db_prod")
            && upload.stderr.contains("[prod.encryption]"),
        "{}",
        upload.all()
    );
    let rows = list_json(&remote, home.path());
    assert!(
        rows[0]["offsite"].as_str().unwrap().starts_with("r2://"),
        "{rows:?}"
    );
    let listed = remote.xtask(home.path(), &["offsite", "list", "--env", "prod", "--json"]);
    listed.assert_ok();
    let index: Value = serde_json::from_str(&listed.stdout).unwrap();
    assert_eq!(index["backups"][0]["file"], rows[0]["file"]);
    assert_eq!(index["backups"][0]["verified"], "good");
}

#[test]
fn uploads_are_refused_without_a_bucket_or_for_another_environment() {
    let (remote, home) = remote();
    let name = remote.backup_prod(home.path());
    let path = remote.sb.backups().join(&name);
    let before = remote.server.requests().len();
    // staging has no [staging.offsite] table.
    remote
        .xtask(
            home.path(),
            &["upload", path.to_str().unwrap(), "--env", "staging"],
        )
        .assert_refused("add `[staging.offsite]`");
    remote
        .xtask(home.path(), &["backup", "staging", "--upload"])
        .assert_refused("add `[staging.offsite]`");
    // `--upload=auto` (the scheduled job's) uploads only where there is a bucket.
    remote
        .xtask(home.path(), &["backup", "staging", "--upload=auto"])
        .assert_ok();
    // A prod backup named under staging's settings would land under the wrong prefix.
    let settings = remote.sb.path().join("backups.toml");
    let mut text = std::fs::read_to_string(&settings).unwrap();
    text.push_str("\n[staging.offsite]\nbucket = \"qbtime-d1-backups\"\n");
    std::fs::write(&settings, text).unwrap();
    remote
        .xtask(
            home.path(),
            &["upload", path.to_str().unwrap(), "--env", "staging"],
        )
        .assert_refused("is a backup of prod, not staging");
    let r2_requests = remote.server.requests()[before..]
        .iter()
        .filter(|r| r.contains("/r2/"))
        .count();
    assert_eq!(r2_requests, 0, "{:?}", remote.server.requests());
    assert!(remote.server.r2_keys(BUCKET).is_empty());
}

#[test]
fn the_lifecycle_rule_follows_the_retention_policy_and_needs_confirmation() {
    let (remote, home) = remote();
    let dry = remote.xtask(
        home.path(),
        &["offsite", "lifecycle", "--env", "prod", "--dry-run"],
    );
    dry.assert_ok();
    assert!(dry.stdout.contains("372 days"), "{}", dry.stdout);
    // OJ 3: what the rule leaves, in words an operator can check against
    // the bucket: the index is named, what reads it, and why the rule
    // cannot reach it ("the index is outside the prefix" told neither).
    assert!(
        dry.stdout.contains(
            "  kept         index/prod.json, the index `offsite list` and `offsite fetch` \
             read: the rule deletes only objects whose key starts with prod/, and every \
             index lies under index/ (no environment may be named `index`)"
        ) && !dry.stdout.contains("outside the prefix"),
        "{}",
        dry.stdout
    );
    assert_eq!(remote.server.r2_lifecycle(BUCKET), serde_json::json!([]));

    remote
        .xtask(
            home.path(),
            &["offsite", "lifecycle", "--env", "prod", "--yes"],
        )
        .assert_refused("--confirm qbtime_db_prod");
    assert_eq!(remote.server.r2_lifecycle(BUCKET), serde_json::json!([]));

    for _ in 0..2 {
        remote
            .xtask(
                home.path(),
                &[
                    "offsite",
                    "lifecycle",
                    "--env",
                    "prod",
                    "--confirm",
                    "qbtime_db_prod",
                ],
            )
            .assert_ok();
        let rules = remote.server.r2_lifecycle(BUCKET);
        let rules = rules.as_array().unwrap();
        assert_eq!(rules.len(), 1, "set twice, still one rule: {rules:?}");
        assert_eq!(rules[0]["id"], "qbtime-prod-expire");
        assert_eq!(rules[0]["conditions"]["prefix"], "prod/");
        assert_eq!(
            rules[0]["deleteObjectsTransition"]["condition"]["maxAge"],
            372 * 86_400
        );
    }
}

#[cfg(unix)]
#[test]
fn the_scheduled_job_backs_up_encrypted_uploads_and_prunes_and_fails_loudly() {
    let (remote, home) = remote();
    let job_with = |faults: Faults, first: &[&str]| {
        remote.server.set_faults(faults);
        let mut script =
            std::process::Command::new(remote.sb.path().join("scripts/scheduled-backup.sh"));
        script
            .args(first)
            .args(["prod", "--require-encryption"])
            .env("QBTIME_XTASK", env!("CARGO_BIN_EXE_xtask"))
            .env(
                "QBTIME_WRANGLER_CONFIG",
                remote.sb.path().join("wrangler.toml"),
            )
            .env_remove("QBTIME_BACKUP_DIR");
        let out = remote.with_api(&mut script, home.path()).output().unwrap();
        Run::from_output(out)
    };
    let job = |faults: Faults| job_with(faults, &[]);
    // As the repository ships: no recipients yet, so the job refuses to
    // put an unencrypted prod dump on a runner or in R2.
    let run = job(Faults::default());
    assert!(!run.ok);
    assert!(
        run.stderr.contains("SCHEDULED BACKUP OF prod FAILED"),
        "{}",
        run.all()
    );
    assert!(run.stderr.contains("unencrypted"), "{}", run.all());
    assert!(
        remote.sb.backup_files().iter().all(|f| f == ".lock"),
        "{:?}",
        remote.sb.backup_files()
    );

    let key = home.path().join("key.txt");
    let recipient =
        keygen_recipient(&remote.xtask(home.path(), &["keygen", "--out", key.to_str().unwrap()]));
    encrypt_backups_of(&remote.sb, "prod", &recipient);
    let run = job(Faults::default());
    run.assert_ok();
    assert!(
        run.stdout.contains("scheduled backup of prod: done"),
        "{}",
        run.all()
    );
    assert!(
        run.stdout.contains("prod: keep_within 30d"),
        "prune ran: {}",
        run.stdout
    );
    assert!(
        run.stdout.contains("(max 26h): ok"),
        "status ran last: {}",
        run.stdout
    );
    let rows = list_json(&remote, home.path());
    assert_eq!(rows.len(), 1);
    assert!(
        rows[0]["file"].as_str().unwrap().ends_with(".sql.zst.age"),
        "{rows:?}"
    );
    assert!(
        rows[0]["offsite"].as_str().unwrap().starts_with("r2://"),
        "{rows:?}"
    );
    // -q, as cron runs it: a good day mails nothing.
    let quiet = job_with(Faults::default(), &["-q"]);
    quiet.assert_ok();
    assert_eq!(quiet.stdout, "", "{}", quiet.all());
    assert_eq!(list_json(&remote, home.path()).len(), 2);

    let run = job(Faults {
        r2_put_status: Some(500),
        ..Faults::default()
    });
    assert!(!run.ok);
    assert!(
        run.stderr.contains("SCHEDULED BACKUP OF prod FAILED"),
        "{}",
        run.all()
    );
    assert!(!run.stdout.contains("done"), "{}", run.stdout);
}

#[test]
fn the_workflow_runs_the_scheduled_job_daily_with_the_two_secrets() {
    let text = std::fs::read_to_string(repo_root().join(".github/workflows/scheduled-backup.yml"))
        .unwrap();
    assert!(
        text.contains("schedule:") && text.contains("cron:"),
        "{text}"
    );
    assert!(
        text.contains("run: scripts/scheduled-backup.sh prod"),
        "{text}"
    );
    for secret in ["CLOUDFLARE_API_TOKEN", "CLOUDFLARE_ACCOUNT_ID"] {
        assert!(
            text.contains(&format!("{secret}: ${{{{ secrets.{secret} }}}}")),
            "{secret}: {text}"
        );
    }
    assert!(
        !text.contains("upload-artifact"),
        "backups never become artifacts"
    );
}

/// The real wrangler's `r2 object delete` of `key` in the bucket.
fn wrangler_delete(remote: &Remote, home: &std::path::Path, key: &str) -> Run {
    remote.wrangler_delete(home, BUCKET, key)
}

fn lock_rules_of(remote: &Remote) -> Vec<Value> {
    remote.server.r2_lock(BUCKET).as_array().unwrap().clone()
}

#[test]
fn a_lock_keeps_offsite_copies_from_deletion_and_needs_its_confirmation() {
    let (remote, home) = remote();
    remote.backup_and_upload_prod(home.path());
    let month = chrono::Utc::now().format("%Y/%m").to_string();
    let key = remote
        .server
        .r2_keys(BUCKET)
        .into_iter()
        .find(|k| k.starts_with(&format!("prod/{month}/")) && k.ends_with(".sql"))
        .unwrap();

    // The plan, and a dry run that changes nothing.
    let dry = remote.xtask(
        home.path(),
        &["offsite", "lock", "--env", "prod", "--dry-run"],
    );
    dry.assert_ok();
    assert!(
        dry.stdout.contains("qbtime-prod-lock-372d"),
        "{}",
        dry.stdout
    );
    assert!(dry.stdout.contains("372 days"), "{}", dry.stdout);
    assert!(dry.stdout.contains("free that space"), "{}", dry.stdout);
    assert!(lock_rules_of(&remote).is_empty());
    let status = remote.xtask(home.path(), &["status", "--env", "prod"]);
    assert!(
        status
            .stdout
            .contains("offsite lock              not locked"),
        "{}",
        status.stdout
    );
    // doctor's fix for the missing lock is a command that runs as given
    // (prod's lock needs its confirmation, so the plan comes first) and a
    // README section that exists, which says what the lock costs.
    let doctor = remote.xtask(home.path(), &["doctor"]);
    let section = "Locks: copies a leaked token cannot delete";
    assert!(
        doctor
            .stdout
            .contains("fix: `cargo xtask offsite lock --env prod --dry-run`")
            && doctor.stdout.contains(section),
        "{}",
        doctor.stdout
    );
    let readme = std::fs::read_to_string(repo_root().join("README.md")).unwrap();
    assert!(readme.contains(&format!("### {section}\n")));

    // The guard: --yes is not enough for prod.
    remote
        .xtask(home.path(), &["offsite", "lock", "--env", "prod", "--yes"])
        .assert_refused("--confirm qbtime_db_prod");
    assert!(lock_rules_of(&remote).is_empty());
    // Without the lock, the object can be deleted (and is put back).
    let bytes = remote.server.r2_object(BUCKET, &key).unwrap();
    wrangler_delete(&remote, home.path(), &key).assert_ok();
    assert!(remote.server.r2_object(BUCKET, &key).is_none());
    remote.server.r2_put_object(BUCKET, &key, &bytes).unwrap();

    let lock = LOCK_PROD;
    for _ in 0..2 {
        remote.xtask(home.path(), &lock).assert_ok();
        let rules = lock_rules_of(&remote);
        assert_eq!(rules.len(), 1, "set twice, still one rule: {rules:?}");
        assert_eq!(rules[0]["id"], "qbtime-prod-lock-372d");
        assert_eq!(rules[0]["prefix"], "prod/");
        assert_eq!(rules[0]["condition"]["maxAgeSeconds"], 372 * 86_400);
    }
    assert!(
        remote.server.unhandled().is_empty(),
        "{:?}",
        remote.server.unhandled()
    );

    // The real wrangler's delete is refused as R2 refuses it, and the copy stays.
    let refused = wrangler_delete(&remote, home.path(), &key);
    assert!(!refused.ok, "{}", refused.all());
    assert!(refused.all().contains("10069"), "{}", refused.all());
    assert_eq!(remote.server.r2_object(BUCKET, &key).unwrap(), bytes);
    // The index, outside the prefix, is not locked: uploads keep rewriting it.
    remote
        .xtask(home.path(), &["backup", "prod", "--upload"])
        .assert_ok();

    let status = remote.xtask(home.path(), &["status", "--env", "prod"]);
    assert!(
        status
            .stdout
            .contains("offsite lock              locked: 372 days after upload"),
        "{}",
        status.stdout
    );
    let doctor = remote.xtask(home.path(), &["doctor"]);
    assert!(
        doctor
            .stdout
            .contains("r2://qbtime-d1-backups/prod/ is locked qbtime-prod-lock-372d"),
        "{}",
        doctor.stdout
    );

    // A lifecycle rule that would delete copies the lock still holds is refused.
    let settings = remote.sb.path().join("backups.toml");
    let text = std::fs::read_to_string(&settings).unwrap();
    let short = text.replace(
        "bucket = \"qbtime-d1-backups\"",
        "bucket = \"qbtime-d1-backups\"\nexpire_after = \"30d\"",
    );
    std::fs::write(&settings, &short).unwrap();
    let lifecycle = remote.xtask(
        home.path(),
        &[
            "offsite",
            "lifecycle",
            "--env",
            "prod",
            "--confirm",
            "qbtime_db_prod",
        ],
    );
    lifecycle.assert_refused("before the lock allows");
    assert_eq!(remote.server.r2_lifecycle(BUCKET), serde_json::json!([]));
    // ... and so is a lock longer than the configured expiry, before any request.
    let before = remote.server.requests().len();
    let run = remote.xtask(home.path(), &lock);
    assert_eq!(run.code, Some(2), "{}", run.all());
    assert!(run.stderr.contains("expire_after"), "{}", run.stderr);
    assert_eq!(remote.server.requests().len(), before);

    // Shortening the lock adds the new rule before removing the old one: a
    // failure part-way leaves the old lock in force, as the plan says.
    std::fs::write(
        &settings,
        text.replace(
            "bucket = \"qbtime-d1-backups\"",
            "bucket = \"qbtime-d1-backups\"\nlock_for = \"90d\"",
        ),
    )
    .unwrap();
    let plan = remote.xtask(
        home.path(),
        &["offsite", "lock", "--env", "prod", "--dry-run"],
    );
    let add = plan.stdout.find("lock add").unwrap();
    let remove = plan.stdout.find("lock remove").unwrap();
    assert!(add < remove, "{}", plan.stdout);
    remote.server.set_faults(Faults {
        r2_lock_put_status: Some(500),
        ..Faults::default()
    });
    let failed = remote.xtask(home.path(), &lock);
    assert!(!failed.ok, "{}", failed.all());
    let rules = lock_rules_of(&remote);
    assert_eq!(rules.len(), 1, "{rules:?}");
    assert_eq!(rules[0]["id"], "qbtime-prod-lock-372d");
    assert!(refused_again(&remote, home.path(), &key));
    remote.server.set_faults(Faults::default());
    remote.xtask(home.path(), &lock).assert_ok();
    let rules = lock_rules_of(&remote);
    assert_eq!(rules.len(), 1, "{rules:?}");
    assert_eq!(rules[0]["id"], "qbtime-prod-lock-90d");
}

/// fxDZ: `offsite lock` sets a rule R2 keeps until the objects have aged
/// (it cannot be taken back), and then records it in its journal. A
/// journal the record could not be appended to, a symbolic link (to a
/// decoy) or one on a read-only file system, refuses the lock before
/// anything is asked of R2: no rule is set, and the decoy is left as it
/// was. The read-only one was not seen: the lock was set, then not
/// recorded.
#[test]
fn an_offsite_lock_whose_journal_cannot_take_its_record_locks_nothing() {
    let (remote, home) = remote();
    let backups = remote.sb.backups();
    std::fs::create_dir_all(&backups).unwrap();
    let journal = backups.join("offsite-locks.jsonl");
    let decoy = home.path().join("decoy.jsonl");
    std::fs::write(&decoy, "not the lock journal\n").unwrap();
    std::os::unix::fs::symlink(&decoy, &journal).unwrap();
    let lock = LOCK_PROD;
    let locked = || {
        remote
            .server
            .requests()
            .iter()
            .any(|r| r.starts_with("PUT") && r.ends_with("/lock"))
            || !lock_rules_of(&remote).is_empty()
    };
    let run = remote.xtask(home.path(), &lock);
    assert!(!run.ok, "{}", run.all());
    assert!(
        run.stderr.contains("offsite-locks.jsonl") && run.stderr.contains("symbolic link"),
        "{}",
        run.all()
    );
    assert!(!locked(), "{:?}", remote.server.requests());
    assert_eq!(
        std::fs::read_to_string(&decoy).unwrap(),
        "not the lock journal\n"
    );

    std::fs::remove_file(&journal).unwrap();
    let Some(cmd) = xtask_with_mounted(&backups, Mounted::ReadOnly) else {
        return;
    };
    let mut cmd = remote.sb.sandboxed(cmd, &lock);
    remote.with_api(&mut cmd, home.path());
    let run = Run::from_output(cmd.output().unwrap());
    assert!(!run.ok, "{}", run.all());
    assert!(
        run.stderr.contains("offsite-locks.jsonl")
            && run.stderr.contains("read-only")
            && run.stderr.contains("nothing was done"),
        "{}",
        run.all()
    );
    assert!(!locked(), "{:?}", remote.server.requests());
    assert!(!journal.exists());
}

fn refused_again(remote: &Remote, home: &std::path::Path, key: &str) -> bool {
    !wrangler_delete(remote, home, key).ok && remote.server.r2_object(BUCKET, key).is_some()
}

/// `offsite fetch` hands wrangler a name in backups/ to write the object
/// to (`.<file>.<pid>.download.partial`), then chmods that name: whatever
/// the name points at by then is written and made 0600. The README says
/// wrangler never reads or writes a name in the backup directory, as it
/// does for exports, which go to a private temporary directory. A link
/// swapped in while wrangler starts sends the download outside backups/
/// (atkU).
#[test]
fn offsite_fetch_never_writes_or_chmods_through_a_link_swapped_in_for_its_download() {
    use std::os::unix::fs::PermissionsExt as _;
    use std::sync::atomic::{AtomicBool, Ordering};
    let (remote, home) = remote();
    remote.backup_and_upload_prod(home.path());
    let sb = &remote.sb;
    for name in sb.backup_files() {
        std::fs::remove_file(sb.backups().join(name)).unwrap();
    }
    let decoys = common::decoys::Decoys::plant(sb.path());
    let victim = decoys.outside("victim.txt");
    std::fs::set_permissions(&victim, std::fs::Permissions::from_mode(0o644)).unwrap();
    let before = decoys.hashes();

    let done = std::sync::Arc::new(AtomicBool::new(false));
    let swapped = std::thread::spawn({
        let done = done.clone();
        let backups = sb.backups();
        let victim = victim.clone();
        move || {
            while !done.load(Ordering::SeqCst) {
                for entry in std::fs::read_dir(&backups).into_iter().flatten().flatten() {
                    let path = entry.path();
                    let name = entry.file_name().to_string_lossy().into_owned();
                    if name.ends_with(".download.partial")
                        && std::fs::remove_file(&path).is_ok()
                        && std::os::unix::fs::symlink(&victim, &path).is_ok()
                    {
                        return Some(name);
                    }
                }
                std::thread::sleep(std::time::Duration::from_millis(1));
            }
            None
        }
    });
    let run = Run::from_output(
        remote
            .xtask_command(
                home.path(),
                &["offsite", "fetch", "latest", "--env", "prod"],
            )
            .output()
            .unwrap(),
    );
    done.store(true, Ordering::SeqCst);
    // `None` when no download went through a name in backups/ at all.
    let swapped = swapped.join().unwrap();
    assert_eq!(
        std::fs::metadata(&victim).unwrap().permissions().mode() & 0o777,
        0o644,
        "the file outside backups/ was chmodded through {swapped:?}\n{}",
        run.all()
    );
    assert_eq!(
        decoys.hashes(),
        before,
        "the download was written outside backups/ through {swapped:?}\n{}",
        run.all()
    );
}

/// A copy of the verified prod backup `name` and its manifest, as a backup
/// taken `days` ago; returns the copy's file name.
fn prod_copy_aged(remote: &Remote, name: &str, days: i64) -> String {
    let sb = &remote.sb;
    let created = chrono::Utc::now() - chrono::Duration::days(days);
    let copy = format!("backup-prod-{}.sql", created.format("%Y%m%d-%H%M"));
    std::fs::copy(sb.backups().join(name), sb.backups().join(&copy)).unwrap();
    let mut m = manifest_for(sb, name);
    m["created_at"] = created.to_rfc3339().into();
    m["file"]["name"] = copy.clone().into();
    as_recorded_before_manifest_hashes(&mut m);
    std::fs::write(
        sb.backups().join(copy.replace(".sql", ".manifest.json")),
        serde_json::to_string_pretty(&m).unwrap(),
    )
    .unwrap();
    copy
}

#[test]
fn the_lifecycle_plan_names_the_copies_prune_keeps_that_the_age_rule_deletes() {
    // atkAK: prod's policy keeps the newest backup of each of the last 12
    // months *that have one*; after months without a backup (a job that was
    // broken for a while) that reaches further back than the rule's 12 × 31
    // days, and R2 would delete a copy prune keeps, without a word. An age
    // rule cannot follow prune: the plan names such copies, and the
    // `expire_after` that would keep them.
    let (remote, home) = remote();
    let name = remote.backup_prod(home.path());
    let old = prod_copy_aged(&remote, &name, 400);
    let prune = remote.xtask(home.path(), &["prune", "--env", "prod", "--dry-run"]);
    prune.assert_ok();
    assert!(
        prune.stdout.contains(&format!("keep    {old}")),
        "{}",
        prune.all()
    );
    remote
        .xtask(home.path(), &["upload", &old, "--env", "prod"])
        .assert_ok();
    // As if it had been uploaded when it was taken, 400 days ago.
    let key = "index/prod.json";
    let mut index: serde_json::Value =
        serde_json::from_slice(&remote.server.r2_object(BUCKET, key).unwrap()).unwrap();
    for entry in index["backups"].as_array_mut().unwrap() {
        if entry["file"] == old.as_str() {
            entry["uploaded_at"] = entry["created_at"].clone();
        }
    }
    remote
        .server
        .r2_put_object(BUCKET, key, &serde_json::to_vec(&index).unwrap())
        .unwrap();

    let dry = remote.xtask(
        home.path(),
        &["offsite", "lifecycle", "--env", "prod", "--dry-run"],
    );
    dry.assert_ok();
    assert!(
        dry.stderr.contains("warning")
            && dry.stderr.contains(&old)
            && dry.stderr.contains("monthly 20")
            && dry.stderr.contains("expire_after"),
        "the rule deletes {old}, which prune keeps, and the plan does not say so:\n{}",
        dry.all()
    );
    assert!(
        !dry.all().contains(&name),
        "the newest copy outlives the rule:\n{}",
        dry.all()
    );
}

#[test]
fn an_upload_never_puts_plain_sql_offsite_for_an_environment_set_to_encrypt() {
    // prod's backups.toml now names a recipient: "an environment with
    // recipients in backups.toml is always encrypted". The newest verified
    // backup is an older plain one (taken before the recipient was added).
    // `upload latest:prod` must not put every row of prod, readable, in
    // the bucket.
    let (remote, home) = remote();
    let name = remote.backup_prod(home.path());
    assert!(name.ends_with(".sql"), "{name}");
    let key = home.path().join("key.txt");
    let recipient =
        keygen_recipient(&remote.xtask(home.path(), &["keygen", "--out", key.to_str().unwrap()]));
    encrypt_backups_of(&remote.sb, "prod", &recipient);

    let run = remote.xtask(home.path(), &["upload", "latest:prod"]);
    let plain: Vec<String> = remote
        .server
        .r2_keys(BUCKET)
        .into_iter()
        .filter(|k| k.starts_with("prod/") && k.ends_with(".sql"))
        .collect();
    assert!(
        plain.is_empty(),
        "plain SQL of prod went offsite although [prod.encryption] names a recipient \
         (exit {:?}): {plain:?}\n{}",
        run.code,
        run.all()
    );
    assert_eq!(run.code, Some(3), "{}", run.all());
}

/// `upload NAME`, a name `list` prints, needed `--env ENV` though the
/// backup's manifest says whose it is: the copy goes to the bucket of the
/// environment whose database the manifest records. A manifest naming no
/// database of the configuration is refused, and nothing is uploaded.
#[test]
fn an_upload_of_a_named_backup_goes_to_the_bucket_of_the_environment_it_was_taken_from() {
    let (remote, home) = remote();
    let name = remote.backup_prod(home.path());
    let manifest = remote
        .sb
        .backups()
        .join(name.replace(".sql", ".manifest.json"));
    let kept = std::fs::read(&manifest).unwrap();
    let mut m: Value = serde_json::from_slice(&kept).unwrap();
    m["database"]["name"] = "qbtime_db_elsewhere".into();
    std::fs::write(&manifest, serde_json::to_vec_pretty(&m).unwrap()).unwrap();
    let run = remote.xtask(home.path(), &["upload", &name]);
    run.assert_refused("no environment of the configuration names");
    assert!(run.stderr.contains("--env ENV"), "{}", run.all());
    assert!(remote.server.r2_keys(BUCKET).is_empty());

    std::fs::write(&manifest, kept).unwrap();
    remote.xtask(home.path(), &["upload", &name]).assert_ok();
    let keys = remote.server.r2_keys(BUCKET);
    assert!(
        keys.iter()
            .any(|k| k.starts_with("prod/") && k.ends_with(&name)),
        "{keys:?}"
    );
}

#[test]
fn a_fetch_over_a_backup_whose_manifest_is_gone_never_says_it_is_here() {
    use std::os::unix::fs::PermissionsExt;
    let (remote, home) = remote();
    let name = remote.backup_prod(home.path());
    remote
        .xtask(home.path(), &["upload", "latest:prod"])
        .assert_ok();
    let sb = &remote.sb;
    let manifest = sb.backups().join(name.replace(".sql", ".manifest.json"));
    let mode = |p: &std::path::Path| std::fs::metadata(p).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode(&manifest), 0o600);
    // A fresh machine: fetched files are private.
    std::fs::remove_dir_all(sb.backups()).unwrap();
    remote
        .xtask(
            home.path(),
            &["offsite", "fetch", "latest", "--env", "prod"],
        )
        .assert_ok();
    assert_eq!(mode(&sb.backups().join(&name)), 0o600);
    assert_eq!(mode(&manifest), 0o600);
    // The manifest lost (only the .sql files were copied back): fetch says
    // it is here, but nothing can see it without its manifest.
    std::fs::remove_file(&manifest).unwrap();
    let again = remote.xtask(home.path(), &["offsite", "fetch", &name, "--env", "prod"]);
    let listed = list_json(&remote, home.path());
    assert!(
        manifest.exists() || !again.ok,
        "fetch said the backup is here (exit {:?}), but its manifest is gone and list shows \
         {} backups:\n{}",
        again.code,
        listed.len(),
        again.all()
    );
}

/// rvAJ: a fetch over a backup whose manifest is gone fetches the
/// manifest from the bucket, but never downloads the file, so nothing
/// checks that manifest against the file here. A bucket that records
/// another sha256 and size for it gets a manifest written beside the
/// intact file that calls it something else, and fetch says it "matches
/// its manifest". A fresh fetch refuses the same manifest ("the offsite
/// copy is damaged; nothing was kept").
#[test]
fn a_manifest_fetched_beside_a_file_already_here_must_describe_that_file() {
    let (remote, home) = remote();
    let name = remote.backup_prod(home.path());
    remote
        .xtask(home.path(), &["upload", "latest:prod"])
        .assert_ok();
    let sb = &remote.sb;
    let file = sb.backups().join(&name);
    let manifest = sb.backups().join(name.replace(".sql", ".manifest.json"));
    let sha_here = sha256_hex(&std::fs::read(&file).unwrap());
    std::fs::remove_file(&manifest).unwrap();
    // The bucket's manifest now records another sha256 and size.
    let key = remote
        .server
        .r2_keys(BUCKET)
        .into_iter()
        .find(|k| k.ends_with(&name.replace(".sql", ".manifest.json")))
        .expect("the manifest was uploaded");
    let mut offsite: Value =
        serde_json::from_slice(&remote.server.r2_object(BUCKET, &key).unwrap()).unwrap();
    offsite["file"]["sha256"] = Value::String("ab".repeat(32));
    offsite["file"]["bytes"] = Value::from(offsite["file"]["bytes"].as_u64().unwrap() + 7);
    remote
        .server
        .r2_put_object(
            BUCKET,
            &key,
            serde_json::to_string_pretty(&offsite).unwrap().as_bytes(),
        )
        .unwrap();

    let run = remote.xtask(home.path(), &["offsite", "fetch", &name, "--env", "prod"]);
    let written: Option<Value> = std::fs::read(&manifest)
        .ok()
        .map(|b| serde_json::from_slice(&b).unwrap());
    let recorded = written
        .as_ref()
        .and_then(|m| m["file"]["sha256"].as_str().map(str::to_owned));
    assert!(
        recorded.is_none() || recorded.as_deref() == Some(sha_here.as_str()),
        "fetch wrote a manifest for {name} recording sha256 {recorded:?}, but the file here is \
         {sha_here} (exit {:?}):\n{}",
        run.code,
        run.all()
    );
    assert!(
        !(run.ok && run.stdout.contains("matches its manifest")),
        "fetch says the file matches a manifest that records another sha256:\n{}",
        run.all()
    );
}

/// A `prune` killed between deleting a backup and its manifest leaves the
/// manifest alone. Fetching that backup back from the bucket must bring
/// the file back beside it, not refuse "move it aside first"; a manifest
/// there that records another file is still refused, and left as it was.
#[test]
fn a_fetch_brings_back_the_file_a_killed_prune_left_only_the_manifest_of() {
    let (remote, home) = remote();
    let name = remote.backup_prod(home.path());
    remote
        .xtask(home.path(), &["upload", "latest:prod"])
        .assert_ok();
    let sb = &remote.sb;
    let file = sb.backups().join(&name);
    let manifest = sb.backups().join(name.replace(".sql", ".manifest.json"));
    let original = std::fs::read(&file).unwrap();
    std::fs::remove_file(&file).unwrap();
    let kept = std::fs::read(&manifest).unwrap();

    let fetched = remote.xtask(home.path(), &["offsite", "fetch", &name, "--env", "prod"]);
    fetched.assert_ok();
    assert_eq!(
        std::fs::read(&file).ok().as_deref(),
        Some(original.as_slice()),
        "the file is not back:\n{}",
        fetched.all()
    );
    assert_eq!(
        std::fs::read(&manifest).unwrap(),
        kept,
        "the manifest here, this backup's own, was replaced"
    );
    let listed = list_json(&remote, home.path());
    assert!(
        listed
            .iter()
            .any(|b| b["file"].as_str().is_some_and(|f| f.ends_with(&name))),
        "list does not show the fetched backup: {listed:?}"
    );

    // A manifest there of another file (another sha256): refused, kept.
    std::fs::remove_file(&file).unwrap();
    let mut other: Value = serde_json::from_slice(&kept).unwrap();
    other["file"]["sha256"] = Value::String("ab".repeat(32));
    let other = serde_json::to_vec_pretty(&other).unwrap();
    std::fs::write(&manifest, &other).unwrap();
    let refused = remote.xtask(home.path(), &["offsite", "fetch", &name, "--env", "prod"]);
    assert!(
        !refused.ok,
        "fetched beside another file's manifest:\n{}",
        refused.all()
    );
    assert!(
        refused.stderr.contains("move it aside"),
        "the refusal does not say what to do:\n{}",
        refused.all()
    );
    assert!(
        !file.exists(),
        "a file was written beside another file's manifest"
    );
    assert_eq!(
        std::fs::read(&manifest).unwrap(),
        other,
        "the manifest there was changed"
    );
}

/// rvAN: `upload` reads the keys it is about to put, to refuse another
/// machine's backup of the same name (atkAV). Run again on a backup whose
/// manifest a `verify` has changed since its upload, the manifest under
/// its key is this backup's (it is put after the backup's bytes, so the
/// bytes under the backup's key were put, and read back, by that upload),
/// yet the upload still downloads the whole backup object first, then puts
/// it and downloads it again to compare: a 5 GB backup costs 10 GB of
/// downloads. The upload must go through, leave nothing in backups/, and
/// read the backup object back once.
#[test]
fn an_upload_run_again_after_a_verify_reads_the_backup_object_back_once() {
    let (remote, home) = remote();
    let name = remote.backup_and_upload_prod(home.path());
    let file = remote.sb.backups().join(&name);
    remote
        .xtask(home.path(), &["verify", file.to_str().unwrap()])
        .assert_ok();
    let from = remote.server.requests().len();
    let again = remote.xtask(home.path(), &["upload", &name, "--env", "prod"]);
    again.assert_ok();
    let leftovers: Vec<String> = remote
        .sb
        .backup_files()
        .into_iter()
        .filter(|f| f.starts_with('.') && f != ".lock")
        .collect();
    assert!(leftovers.is_empty(), "{leftovers:?}\n{}", again.all());
    let reads: Vec<String> = remote.server.requests()[from..]
        .iter()
        .filter(|r| r.starts_with("GET") && r.contains("/objects/") && r.contains(&name))
        .cloned()
        .collect();
    assert!(
        reads.len() <= 1,
        "the second upload of {name} downloaded its object {} times: {reads:#?}\n{}",
        reads.len(),
        again.all()
    );
}

/// prod's copies uploaded while it had one database are listed under
/// `prod/` (`index/prod.json`); once a second database is added, prod's
/// first database is `prod.qbtime_db_prod`, whose uploads go under a prefix
/// of that name. After losing the machine, `offsite list` and `offsite
/// fetch latest` of that database still find the copies from before the
/// split, and a fetch for the new database never takes the other one's.
#[test]
fn copies_uploaded_before_a_second_database_was_added_are_still_found_and_fetched() {
    let (remote, home) = remote();
    let name = split_after_an_upload(&remote, home.path());
    let sb = &remote.sb;
    // The machine is lost: nothing is left in backups/.
    for f in sb.backup_files() {
        std::fs::remove_file(sb.backups().join(f)).unwrap();
    }

    let list = remote.xtask(
        home.path(),
        &["offsite", "list", "--env", "prod.qbtime_db_prod"],
    );
    list.assert_ok();
    assert!(list.stdout.contains(&name), "{}", list.all());

    let fetch = remote.xtask(
        home.path(),
        &["offsite", "fetch", "latest", "--env", "prod.analytics_prod"],
    );
    assert_eq!(fetch.code, Some(2), "{}", fetch.all());
    assert!(
        fetch.stderr.contains("prod.analytics_prod") && !fetch.stderr.contains(&name),
        "{}",
        fetch.all()
    );
    assert!(
        sb.backup_files().iter().all(|f| f.starts_with('.')),
        "{:?}",
        sb.backup_files()
    );

    let fetch = remote.xtask(
        home.path(),
        &["offsite", "fetch", "latest", "--env", "prod.qbtime_db_prod"],
    );
    fetch.assert_ok();
    assert!(sb.backups().join(&name).is_file(), "{}", fetch.all());
    let verify = remote.xtask(home.path(), &["verify", "latest:prod.qbtime_db_prod"]);
    assert!(verify.ok, "{}", verify.all());
}

/// A prod whose one database has a copy offsite (under `prod/`), then a
/// second database (`analytics_prod`) added to it: returns the copy's name.
fn split_after_an_upload(remote: &Remote, home: &std::path::Path) -> String {
    let name = remote.backup_and_upload_prod(home);
    add_analytics_to_prod(remote);
    name
}

/// Adds a second database (`analytics_prod`) to prod's section of
/// wrangler.toml: prod's first database is `<short>.qbtime_db_prod` then.
fn add_analytics_to_prod(remote: &Remote) {
    let config = remote.sb.path().join("wrangler.toml");
    let mut text = std::fs::read_to_string(&config).unwrap();
    text.push_str(ANALYTICS_PROD);
    std::fs::write(&config, text).unwrap();
}

const ANALYTICS_PROD: &str = "\n[[env.production.d1_databases]]\nbinding = \"ANALYTICS\"\n\
     database_name = \"analytics_prod\"\n\
     database_id = \"9c8b7a6d-5e4f-4a3b-8c2d-1e0f9a8b7ca1\"\n\
     migrations_dir = \"migrations\"\n";

/// rvAR: `offsite list` of a database added to prod after an upload
/// (f80e374, `Target::read_indexes`) merges in `index/prod.json`, which
/// lists the first database's copies, and prints them as analytics_prod's
/// own, "verified good"; `--json` says `"environment":
/// "prod.analytics_prod"` over them. analytics_prod has no copy offsite at
/// all: an operator reading the list believes it is protected.
#[test]
fn a_database_added_after_an_upload_is_not_listed_with_the_other_databases_copies() {
    let (remote, home) = remote();
    let name = split_after_an_upload(&remote, home.path());

    let list = remote.xtask(
        home.path(),
        &["offsite", "list", "--env", "prod.analytics_prod"],
    );
    list.assert_ok();
    assert!(
        !list.stdout.contains(&name),
        "qbtime_db_prod's copy {name} is listed as prod.analytics_prod's:\n{}",
        list.all()
    );
    let json = remote.xtask(
        home.path(),
        &["offsite", "list", "--env", "prod.analytics_prod", "--json"],
    );
    json.assert_ok();
    let index: Value = serde_json::from_str(&json.stdout).unwrap();
    assert!(
        index["backups"]
            .as_array()
            .unwrap()
            .iter()
            .all(|e| e["file"] != name.as_str()),
        "the JSON of prod.analytics_prod lists qbtime_db_prod's copy {name}:\n{}",
        json.stdout
    );
}

/// rvAR: `offsite fetch latest --env prod.analytics_prod` takes the newest
/// verified copy of the merged indexes, which is qbtime_db_prod's; when that
/// backup is already in backups/ (with its manifest), `fetch` stops at
/// "already here, identical to the offsite copy" and exits 0 before the
/// manifest's database is ever checked (xtask/src/commands/offsite.rs,
/// `fetch`, the `here && dest_manifest.exists()` return). A fetch for
/// analytics_prod reports success with the other database's backup.
#[test]
fn a_fetch_for_a_database_added_after_an_upload_does_not_succeed_with_the_other_ones_backup() {
    let (remote, home) = remote();
    let name = split_after_an_upload(&remote, home.path());
    assert!(remote.sb.backups().join(&name).is_file());

    let fetch = remote.xtask(
        home.path(),
        &["offsite", "fetch", "latest", "--env", "prod.analytics_prod"],
    );
    assert!(
        !fetch.ok,
        "fetch latest of prod.analytics_prod succeeded with qbtime_db_prod's {name}:\n{}",
        fetch.all()
    );
    assert!(
        !fetch.all().contains("identical to the offsite copy"),
        "{}",
        fetch.all()
    );
}

/// rvAR: `Target::find_entry` reads the environment's own index, and when
/// the name is not there reads it again inside `read_indexes`: a fetch of a
/// name not in prod's single-database index downloads `index/prod.json`
/// twice (two wrangler starts), and a third object for the other name.
#[test]
fn a_fetch_of_a_name_not_offsite_reads_the_index_once() {
    let (remote, home) = remote();
    remote.backup_and_upload_prod(home.path());
    let from = remote.server.requests().len();
    let fetch = remote.xtask(
        home.path(),
        &[
            "offsite",
            "fetch",
            "backup-prod-20260101-0000.sql",
            "--env",
            "prod",
        ],
    );
    assert!(!fetch.ok, "{}", fetch.all());
    assert!(
        fetch.stderr.contains("is not among the offsite copies"),
        "{}",
        fetch.all()
    );
    let reads: Vec<String> = remote.server.requests()[from..]
        .iter()
        .filter(|r| r.starts_with("GET") && r.ends_with("/objects/index/prod.json"))
        .cloned()
        .collect();
    assert_eq!(
        reads.len(),
        1,
        "index/prod.json was downloaded {} times: {reads:#?}",
        reads.len()
    );
}

/// atkBF: the offsite index is written by anyone who can write to the
/// bucket, and `Index::check` judges each entry's names but not its
/// `uploaded_at`. chrono reads a year past 9999 (`+262142-12-31…`, its
/// last day), and the lifecycle plan adds the rule's days to it
/// (`kept_but_expiring`): in the dev profile the xtask runs in, that
/// overflows and panics (exit 101, a backtrace hint) instead of naming the
/// index and its fix. The entry is set aside (one bad entry no longer
/// refuses the whole index): the plan goes on without it (exit 0) and
/// warns, naming the index.
#[test]
fn an_index_entry_uploaded_at_the_end_of_time_is_refused_not_a_panic() {
    let (remote, home) = remote();
    remote.backup_and_upload_prod(home.path());
    let key = "index/prod.json";
    let mut index: Value =
        serde_json::from_slice(&remote.server.r2_object(BUCKET, key).unwrap()).unwrap();
    index["backups"][0]["uploaded_at"] = Value::from("+262142-12-31T00:00:00Z");
    remote
        .server
        .r2_put_object(BUCKET, key, &serde_json::to_vec(&index).unwrap())
        .unwrap();

    let dry = remote.xtask(
        home.path(),
        &["offsite", "lifecycle", "--env", "prod", "--dry-run"],
    );
    assert!(
        !dry.all().contains("panicked") && dry.code != Some(101),
        "a date in the bucket's index panics the lifecycle plan:\n{}",
        dry.all()
    );
    assert_eq!(dry.code, Some(0), "{}", dry.all());
    assert!(
        dry.stderr.contains(key) && dry.stderr.contains("entry 1") && dry.stderr.contains("9999"),
        "{}",
        dry.all()
    );
}

/// atkBF: backups.toml's `keep_daily`, `keep_weekly` and `keep_monthly`
/// are read as any u32; the lifecycle's days are the longest span they
/// keep (`policy_days`: 31 × 4294967295 for `keep_monthly`), and the plan
/// hands them to `Duration::days`, which panics past about 10^8 days. A
/// typo of a few digits makes `offsite lifecycle` panic (exit 101) instead
/// of naming the setting in backups.toml.
#[test]
fn a_retention_count_too_large_for_a_date_is_refused_naming_backups_toml_not_a_panic() {
    let (remote, home) = remote();
    remote.backup_and_upload_prod(home.path());
    let settings = remote.sb.path().join("backups.toml");
    let text = std::fs::read_to_string(&settings).unwrap();
    assert!(text.contains("keep_monthly = 12\n"), "{text}");
    std::fs::write(
        &settings,
        text.replace("keep_monthly = 12\n", "keep_monthly = 4294967295\n"),
    )
    .unwrap();

    let dry = remote.xtask(
        home.path(),
        &["offsite", "lifecycle", "--env", "prod", "--dry-run"],
    );
    assert!(
        !dry.all().contains("panicked") && dry.code != Some(101),
        "a retention count in backups.toml panics the lifecycle plan:\n{}",
        dry.all()
    );
    assert_eq!(dry.code, Some(2), "{}", dry.all());
    assert!(
        dry.stderr.contains("backups.toml") && dry.stderr.contains("keep_monthly"),
        "{}",
        dry.all()
    );
}

/// An upload interrupted after its backup's PUT reached the bucket (its
/// read-back checked) said "the next run starts clean", while the bucket
/// kept that object with no manifest and no index entry. It says what is
/// there and that the next upload replaces it.
#[test]
fn an_upload_interrupted_after_its_put_says_what_the_bucket_keeps() {
    each_upload_stopped_after_its_put(interrupt_once_printed, |_, run, args| {
        assert_eq!(run.code, Some(130), "{args:?}\n{}", run.all());
    });
}

/// ML: `backup prod --upload` interrupted once its backup was written and
/// verified GOOD, before its upload had put anything (the bucket's answers
/// held back from the first), said only "the next run starts clean": the
/// backup is kept, not uploaded, and nothing said so. It says so, naming
/// the backup and the upload that copies it, which pasted goes through.
/// Before that, `status` (last night's copy within max_age) warns that
/// the newest verified backup, taken to be uploaded, has no offsite copy,
/// with the same command.
#[test]
fn a_backup_interrupted_before_its_upload_says_it_is_kept_and_how_to_upload_it() {
    let (remote, home) = remote();
    remote.backup_and_upload_prod(home.path());
    remote.server.set_faults(Faults {
        response_delay_ms: Some(10_000),
        response_delay_from: Some("/r2/buckets/".into()),
        ..Faults::default()
    });
    let run = interrupt_once_printed(
        remote.xtask_command(home.path(), &["backup", "prod", "--upload"]),
        "Upload plan",
    );
    remote.server.set_faults(Faults::default());
    assert_eq!(run.code, Some(130), "{}", run.all());
    let kept: Vec<String> = { remote.sb.backup_files().into_iter() }
        .filter(|f| f.ends_with(".sql") && manifest_for(&remote.sb, f)["offsite"].is_null())
        .collect();
    assert_eq!(
        kept.len(),
        1,
        "{:?}\n{}",
        remote.sb.backup_files(),
        run.all()
    );
    let name = &kept[0];
    let upload = format!("`cargo xtask upload {name} --env prod`");
    let last = run.stderr.lines().last().unwrap_or_default();
    assert!(!last.contains("the next run starts clean"), "{}", run.all());
    assert!(
        last.contains(name.as_str())
            && last.contains("verified GOOD")
            && last.contains("not uploaded")
            && last.contains(&upload),
        "the interrupt does not say the backup is kept, verified and not uploaded, with {upload}:\n{}",
        run.all()
    );
    let status = remote.xtask(home.path(), &["status"]);
    assert!(
        status
            .stderr
            .lines()
            .any(|l| l.starts_with("warning:") && l.contains(name.as_str()) && l.contains(&upload)),
        "status does not warn that {name} was not uploaded:\n{}",
        status.all()
    );
    remote
        .xtask(home.path(), &["upload", name.as_str(), "--env", "prod"])
        .assert_ok();
    assert!(manifest_for(&remote.sb, name)["offsite"].is_object());
}

/// `upload` and `backup --upload` of prod, each stopped by `stop` once its
/// backup's PUT is read back: what each leaves and says
/// ([`assert_left_unlisted`]), and then `check`.
fn each_upload_stopped_after_its_put(
    stop: fn(std::process::Command, &str) -> Run,
    check: impl Fn(&Remote, &Run, &[&str]),
) -> (Remote, tempfile::TempDir) {
    let (remote, home) = remote();
    remote.backup_prod(home.path());
    for args in [
        vec!["upload", "latest:prod"],
        vec!["backup", "prod", "--upload"],
    ] {
        let before = remote.server.r2_keys(BUCKET);
        let run = stop(remote.xtask_command(home.path(), &args), "checked: r2://");
        check(&remote, &run, &args);
        assert_left_unlisted(&remote, &before, &run, &args);
    }
    (remote, home)
}

/// What an upload interrupted after its PUT leaves, and says: one new
/// object, no index, and a message naming the object and what replaces
/// it, never that the next run starts clean.
#[track_caller]
fn assert_left_unlisted(remote: &Remote, before: &[String], run: &Run, args: &[&str]) {
    let keys = remote.server.r2_keys(BUCKET);
    let data: Vec<&String> = keys
        .iter()
        .filter(|k| k.ends_with(".sql") && !before.contains(k))
        .collect();
    assert_eq!(data.len(), 1, "{before:?} then {keys:?}");
    assert!(
        !keys.iter().any(|k| k.starts_with("index/")),
        "the index was written: {keys:?}"
    );
    assert!(
        !run.stderr.contains("the next run starts clean"),
        "{args:?}: the bucket keeps {keys:?}, yet:\n{}",
        run.stderr
    );
    let key = data[0];
    assert!(
        run.stderr.contains(key.as_str()) && run.stderr.contains("replaces it"),
        "{args:?}: the message does not name r2://{BUCKET}/{key} and what replaces it:\n{}",
        run.stderr
    );
}

/// The terminal of an upload closes (SIGHUP to its job) after its
/// backup's PUT reached the bucket: it stops as for SIGTERM (exit 129),
/// leaves no staged file in `backups/`, releases its lock, records no
/// offsite copy (the index and the manifest do not list it), and says
/// what the bucket keeps.
#[test]
fn an_upload_whose_terminal_closes_after_its_put_stops_as_for_sigterm() {
    let (remote, home) =
        each_upload_stopped_after_its_put(hang_up_once_printed, |remote, run, args| {
            assert_eq!(run.code, Some(129), "{args:?}\n{}", run.all());
            assert!(
                run.stderr.contains("interrupted by SIGHUP"),
                "{}",
                run.stderr
            );
            let files = remote.sb.backup_files();
            assert!(
                files.iter().all(|f| f == ".lock"
                    || (f.starts_with("backup-prod-")
                        && (f.ends_with(".sql") || f.ends_with(".manifest.json")))),
                "{args:?}: a staged file is left: {files:?}"
            );
            for f in files.iter().filter(|f| f.ends_with(".manifest.json")) {
                let text = std::fs::read_to_string(remote.sb.backups().join(f)).unwrap();
                let manifest: Value = serde_json::from_str(&text).unwrap();
                assert!(manifest["offsite"].is_null(), "{f} records a copy: {text}");
            }
            let lock = std::fs::read(remote.sb.backups().join(".lock")).unwrap_or_default();
            assert!(
                lock.is_empty(),
                "{args:?}: the lock was not released cleanly"
            );
        });
    // The next upload goes through, replacing the object left.
    remote
        .xtask(home.path(), &["upload", "latest:prod"])
        .assert_ok();
}

/// prod's bucket renamed in backups.toml (`qbtime-d1-backups` ->
/// `qbtime-d1-backups-2`) after copies went to the old one. `offsite fetch`
/// said "nothing has been uploaded", false (the copies are in the old
/// bucket, which the backups here record), and there was no way to name
/// the old bucket. It must say which bucket it looked in and which bucket
/// the backups here record, and `--bucket OLD` fetches (and lists) from it.
#[test]
fn copies_in_the_bucket_used_before_a_rename_are_named_and_fetched_with_bucket() {
    let (remote, home) = remote();
    let name = remote.backup_and_upload_prod(home.path());
    let sb = &remote.sb;
    let settings = sb.path().join("backups.toml");
    let text = std::fs::read_to_string(&settings).unwrap();
    assert!(text.contains("bucket = \"qbtime-d1-backups\""), "{text}");
    std::fs::write(
        &settings,
        text.replace(
            "bucket = \"qbtime-d1-backups\"",
            "bucket = \"qbtime-d1-backups-2\"",
        ),
    )
    .unwrap();
    remote.server.add_bucket("qbtime-d1-backups-2");

    // This machine still has the backup, whose manifest records the old bucket.
    let fetch = remote.xtask(
        home.path(),
        &["offsite", "fetch", "latest", "--env", "prod"],
    );
    assert_eq!(fetch.code, Some(2), "{}", fetch.all());
    assert!(
        !fetch.stderr.contains("nothing has been uploaded"),
        "false: the copy is in the old bucket:\n{}",
        fetch.all()
    );
    assert!(
        fetch.stderr.contains("r2://qbtime-d1-backups-2")
            && fetch.stderr.contains("--bucket qbtime-d1-backups"),
        "the bucket looked in and the way to the one the backups record:\n{}",
        fetch.all()
    );

    // A new machine: --bucket names the old bucket; list and fetch read it.
    for f in sb.backup_files() {
        std::fs::remove_file(sb.backups().join(f)).unwrap();
    }
    let list = remote.xtask(
        home.path(),
        &[
            "offsite",
            "list",
            "--env",
            "prod",
            "--bucket",
            "qbtime-d1-backups",
        ],
    );
    list.assert_ok();
    assert!(list.stdout.contains(&name), "{}", list.all());
    let fetch = remote.xtask(
        home.path(),
        &[
            "offsite",
            "fetch",
            "latest",
            "--env",
            "prod",
            "--bucket",
            "qbtime-d1-backups",
        ],
    );
    fetch.assert_ok();
    assert!(
        fetch.stdout.contains("r2://qbtime-d1-backups/"),
        "{}",
        fetch.all()
    );
    assert!(sb.backups().join(&name).is_file(), "{}", fetch.all());
    remote
        .xtask(
            home.path(),
            &["verify", sb.backups().join(&name).to_str().unwrap()],
        )
        .assert_ok();
    // A bucket name R2 would refuse is refused before any request.
    let from = remote.server.requests().len();
    let bad = remote.xtask(
        home.path(),
        &[
            "offsite",
            "fetch",
            "latest",
            "--env",
            "prod",
            "--bucket",
            "Old_Bucket",
        ],
    );
    assert_eq!(bad.code, Some(2), "{}", bad.all());
    assert!(bad.stderr.contains("--bucket"), "{}", bad.all());
    assert_eq!(remote.server.requests().len(), from);
}

/// prod's short name changed (`vars.APP_ENV` prod -> live, backups.toml's
/// tables with it), same database. Its copies stay under `prod/`
/// (`index/prod.json`). `status --env live` shows the offsite copy
/// (r2://.../prod/...), yet `offsite list --env live` says there are none
/// and `offsite fetch latest --env live` says nothing of live was uploaded
/// and points at `--bucket`, though the bucket is the same: a refusal with
/// no way forward, contradicting status.
#[test]
fn copies_uploaded_before_the_short_name_changed_are_listed_and_fetched() {
    let (remote, home) = remote();
    let name = remote.backup_and_upload_prod(home.path());
    remote.sb.rename_prod_to_live();

    let status = remote.xtask(home.path(), &["status", "--env", "live"]);
    assert!(
        status.stdout.contains(&format!("r2://{BUCKET}/prod/")),
        "{}",
        status.all()
    );
    let list = remote.xtask(home.path(), &["offsite", "list", "--env", "live"]);
    list.assert_ok();
    assert!(
        list.stdout.contains(&name),
        "status shows the copy offsite, offsite list does not:\n{}",
        list.all()
    );
    let fetch = remote.xtask(home.path(), &["offsite", "fetch", &name, "--env", "live"]);
    fetch.assert_ok();
    assert!(
        !fetch.all().contains("--bucket"),
        "the bucket did not change:\n{}",
        fetch.all()
    );
}

/// After `vars.APP_ENV` prod -> live (same database), `upload latest:live`
/// of a backup already offsite under `prod/` says where its copy is and
/// uploads nothing (it was refused as "a backup of prod, not live"), and
/// `offsite lifecycle --env live` names the copies under `prod/`, which
/// its rule for `live/` does not reach, and leaves them alone.
#[test]
fn after_the_short_name_changed_upload_says_the_copy_is_offsite_and_lifecycle_names_the_old_prefix()
{
    let (remote, home) = remote();
    remote.backup_and_upload_prod(home.path());
    remote.sb.rename_prod_to_live();
    let keys = remote.server.r2_keys(BUCKET);

    for dry in [true, false] {
        let mut args = vec!["upload", "latest:live"];
        if dry {
            args.push("--dry-run");
        }
        let up = remote.xtask(home.path(), &args);
        up.assert_ok();
        assert!(
            up.stdout.contains(&format!("r2://{BUCKET}/prod/"))
                && up.stdout.contains("already offsite"),
            "{}",
            up.all()
        );
        assert_eq!(remote.server.r2_keys(BUCKET), keys, "nothing is uploaded");
    }

    let plan = remote.xtask(
        home.path(),
        &["offsite", "lifecycle", "--env", "live", "--dry-run"],
    );
    plan.assert_ok();
    assert!(
        plan.stdout.contains("under prod/") && plan.stdout.contains("kept until deleted by hand"),
        "the plan says nothing of the copies under prod/:\n{}",
        plan.all()
    );
}

/// After `vars.APP_ENV` prod -> live, `offsite lock --env live` locks
/// `live/` only; its plan said nothing of the copies still under `prod/`,
/// which its rule does not reach. It names them as lifecycle's plan does,
/// with whether a lock rule of the bucket reaches them, and writes nothing
/// there.
#[test]
fn after_the_short_name_changed_lock_names_the_copies_under_the_old_prefix() {
    let (remote, home) = remote();
    remote.backup_and_upload_prod(home.path());
    remote.sb.rename_prod_to_live();

    let plan = remote.xtask(
        home.path(),
        &["offsite", "lock", "--env", "live", "--dry-run"],
    );
    plan.assert_ok();
    let line = plan
        .stdout
        .lines()
        .find(|l| l.contains("under prod/"))
        .unwrap_or_else(|| {
            panic!(
                "the plan says nothing of the copies under prod/:\n{}",
                plan.all()
            )
        });
    assert!(
        line.contains("not locked"),
        "the plan does not say the copies under prod/ are not locked:\n{}",
        plan.all()
    );
    assert!(
        !plan
            .stdout
            .lines()
            .any(|l| l.contains("npx wrangler") && l.contains(" prod/")),
        "the plan writes a rule for prod/:\n{}",
        plan.all()
    );
}

/// A new machine (no local backup records the old prefix) after
/// `vars.APP_ENV` prod -> live: `offsite fetch latest --env live` names
/// `--from-env`, and `--from-env prod` lists and fetches the copies under
/// `prod/`. A name no key could be under is refused before any request.
#[test]
fn a_new_machine_reads_the_copies_under_the_old_short_name_with_from_env() {
    let (remote, home) = remote();
    let sb = &remote.sb;
    let name = remote.backup_and_upload_prod(home.path());
    sb.rename_prod_to_live();
    for f in sb.backup_files() {
        std::fs::remove_file(sb.backups().join(f)).unwrap();
    }

    let lost = remote.xtask(
        home.path(),
        &["offsite", "fetch", "latest", "--env", "live"],
    );
    assert_eq!(lost.code, Some(2), "{}", lost.all());
    assert!(lost.stderr.contains("--from-env"), "{}", lost.all());

    let list = remote.xtask(
        home.path(),
        &["offsite", "list", "--env", "live", "--from-env", "prod"],
    );
    list.assert_ok();
    assert!(list.stdout.contains(&name), "{}", list.all());
    let fetch = remote.xtask(
        home.path(),
        &[
            "offsite",
            "fetch",
            "latest",
            "--env",
            "live",
            "--from-env",
            "prod",
        ],
    );
    fetch.assert_ok();
    assert!(sb.backups().join(&name).is_file(), "{}", fetch.all());

    let from = remote.server.requests().len();
    let bad = remote.xtask(
        home.path(),
        &["offsite", "list", "--env", "live", "--from-env", "../prod"],
    );
    assert_eq!(bad.code, Some(2), "{}", bad.all());
    assert!(bad.stderr.contains("--from-env"), "{}", bad.all());
    assert_eq!(remote.server.requests().len(), from);
}

/// `offsite fetch --env staging --from-env prod`, staging sharing prod's
/// bucket: the index under `prod/` is prod's database's. The fetch said
/// nothing of staging had been uploaded and suggested `--from-env
/// OLD_NAME`, the very flag given. It says the copies under that prefix
/// are another database's, naming it, and fetches nothing.
#[test]
fn a_list_or_fetch_from_env_whose_copies_are_another_databases_says_so_by_database_name() {
    let (remote, home) = remote();
    let sb = &remote.sb;
    remote.backup_and_upload_prod(home.path());
    let settings = sb.path().join("backups.toml");
    let mut text = std::fs::read_to_string(&settings).unwrap();
    text.push_str("\n[staging.offsite]\nbucket = \"qbtime-d1-backups\"\n");
    std::fs::write(&settings, text).unwrap();
    let before = sb.backup_files();

    let fetch = remote.xtask(
        home.path(),
        &[
            "offsite",
            "fetch",
            "latest",
            "--env",
            "staging",
            "--from-env",
            "prod",
        ],
    );
    assert_eq!(fetch.code, Some(2), "{}", fetch.all());
    assert!(
        fetch.stderr.contains("qbtime_db_prod")
            && fetch.stderr.contains("another database")
            && fetch.stderr.contains(&format!("r2://{BUCKET}/prod/")),
        "the fetch does not say the copies under prod/ are another database's:\n{}",
        fetch.all()
    );
    assert!(
        !fetch.stderr.contains("--from-env OLD_NAME") && !fetch.stderr.contains("been uploaded"),
        "the fetch suggests the flag it was given, or says nothing was uploaded:\n{}",
        fetch.all()
    );
    assert_eq!(sb.backup_files(), before, "nothing is fetched");

    // Listing that prefix as staging's is refused the same way, not told
    // as "no offsite copies of staging yet".
    let list = remote.xtask(
        home.path(),
        &["offsite", "list", "--env", "staging", "--from-env", "prod"],
    );
    assert_eq!(list.code, Some(2), "{}", list.all());
    assert!(
        list.stderr.contains("qbtime_db_prod")
            && list.stderr.contains("another database")
            && list.stderr.contains("Nothing was listed"),
        "the list does not say the copies under prod/ are another database's:\n{}",
        list.all()
    );
}

/// prod's backup, taken and uploaded to its bucket.
fn uploaded_prod() -> (Remote, tempfile::TempDir) {
    let (remote, home) = remote();
    remote.backup_prod(home.path());
    remote
        .xtask(home.path(), &["upload", "latest:prod"])
        .assert_ok();
    (remote, home)
}

/// `run` of `args`, a read of a bucket it could not read, failed and never
/// said that nothing was uploaded.
#[track_caller]
fn failed_saying_something_was_uploaded(args: &[&str], run: &Run) {
    assert_ne!(run.code, Some(0), "{args:?}:\n{}", run.all());
    assert!(
        !run.all().contains("No offsite copies") && !run.all().contains("nothing was uploaded"),
        "{args:?} says nothing was uploaded, in an account or bucket it cannot read:\n{}",
        run.all()
    );
}

/// atkCF: the project moved to another Cloudflare account (`account_id` in
/// wrangler.toml names it) while prod's offsite copies stay in the bucket
/// of the account they were uploaded to. wrangler turns every 404 of an
/// R2 object read into "The specified key does not exist", so `offsite
/// list` and `offsite fetch`, asked of the new account, which does not
/// hold the bucket, say nothing was ever uploaded (exit 0 for list): in
/// a disaster, the operator is told there are no offsite copies. They
/// must fail, naming the bucket and the account they looked in.
#[test]
fn offsite_reads_in_another_account_never_say_nothing_was_uploaded() {
    let (remote, _home) = uploaded_prod();
    let other = "fedcba9876543210fedcba9876543210";
    let config = remote.sb.path().join("wrangler.toml");
    let text = std::fs::read_to_string(&config).unwrap().replace(
        "compatibility_date = \"2026-04-01\"",
        &format!("compatibility_date = \"2026-04-01\"\naccount_id = \"{other}\""),
    );
    std::fs::write(&config, text).unwrap();

    let fresh = tempfile::tempdir().unwrap();
    for args in [
        &["offsite", "list", "--env", "prod"][..],
        &["offsite", "fetch", "latest", "--env", "prod"][..],
    ] {
        let run = remote.xtask(fresh.path(), args);
        failed_saying_something_was_uploaded(args, &run);
        assert!(
            run.all().contains(BUCKET) && run.all().contains(other),
            "{args:?} does not name the bucket and the account it looked in:\n{}",
            run.all()
        );
    }
}

/// After `vars.APP_ENV` prod -> live (same database), the copy under
/// `prod/` that the local manifest records is gone from the bucket (the
/// bucket's rule for `prod/` expired it, or someone deleted it). `upload
/// latest:live` must not say it is "already offsite" and upload nothing
/// on the local record alone: that leaves the backup with no offsite copy
/// while the tool says it has one. It uploads it under `live/`.
#[test]
fn after_the_short_name_changed_a_copy_gone_from_the_old_prefix_is_uploaded_again() {
    let (remote, home) = remote();
    let name = remote.backup_and_upload_prod(home.path());
    remote.sb.rename_prod_to_live();
    for key in remote.server.r2_keys(BUCKET) {
        if key.starts_with("prod/") {
            wrangler_delete(&remote, home.path(), &key).assert_ok();
        }
    }
    assert!(
        !remote
            .server
            .r2_keys(BUCKET)
            .iter()
            .any(|k| k.starts_with("prod/"))
    );

    let up = remote.xtask(home.path(), &["upload", "latest:live"]);
    up.assert_ok();
    assert!(
        !up.stdout.contains("already offsite"),
        "the copy under prod/ is gone, yet upload says it is offsite:\n{}",
        up.all()
    );
    assert!(
        remote
            .server
            .r2_keys(BUCKET)
            .iter()
            .any(|k| k.starts_with("live/") && k.ends_with(&name)),
        "nothing was uploaded under live/:\n{}",
        up.all()
    );
}

/// After `vars.APP_ENV` prod -> live (same database), `index/prod.json`
/// gets a newer entry that is not this database's (a new environment
/// named prod uploads there now, or someone wrote it). The copies of live
/// under `prod/` that the backups here record are still live's: `offsite
/// list --env live` lists them and `offsite fetch` finds them; the whole
/// index was dropped for its newest entry.
#[test]
fn copies_under_the_old_prefix_that_the_backups_here_record_survive_a_newer_entry_of_another_database()
 {
    let (remote, home) = remote();
    let name = remote.backup_and_upload_prod(home.path());
    remote.sb.rename_prod_to_live();
    let raw = remote.server.r2_object(BUCKET, "index/prod.json").unwrap();
    let mut index: Value = serde_json::from_slice(&raw).unwrap();
    let mut planted = index["backups"][0].clone();
    // Named and dated a minute after ours, as an upload of it would be.
    let ours: chrono::DateTime<chrono::Utc> =
        planted["created_at"].as_str().unwrap().parse().unwrap();
    let at = ours + chrono::Duration::minutes(1);
    let place = |t: chrono::DateTime<chrono::Utc>| t.format("%Y/%m/backup-prod-%Y%m%d-%H%M");
    let other = format!("backup-prod-{}", at.format("%Y%m%d-%H%M"));
    for field in ["key", "manifest_key"] {
        let v = planted[field]
            .as_str()
            .unwrap()
            .replace(&place(ours).to_string(), &place(at).to_string());
        planted[field] = Value::String(v);
    }
    planted["file"] = Value::String(format!("{other}.sql"));
    planted["created_at"] = Value::String(at.to_rfc3339());
    index["backups"].as_array_mut().unwrap().insert(0, planted);
    remote
        .server
        .r2_put_object(
            BUCKET,
            "index/prod.json",
            serde_json::to_string(&index).unwrap().as_bytes(),
        )
        .unwrap();

    let list = remote.xtask(home.path(), &["offsite", "list", "--env", "live"]);
    list.assert_ok();
    assert!(
        list.stdout.contains(&name) && !list.stdout.contains(&other),
        "{}",
        list.all()
    );
    // Found, and (here already, identical) nothing to fetch.
    let fetch = remote.xtask(home.path(), &["offsite", "fetch", &name, "--env", "live"]);
    fetch.assert_ok();
}

/// The `cargo xtask …` commands between backticks in `text`, as the words
/// an operator pastes: `cargo xtask` left off, the shell's quotes taken
/// off the words that carry them.
fn pasted_commands(text: &str) -> Vec<Vec<String>> {
    { text.split('`').skip(1).step_by(2) }
        .filter_map(|c| c.strip_prefix("cargo xtask "))
        .map(|c| {
            { c.split_whitespace() }
                .map(|w| w.trim_matches('\'').to_owned())
                .collect()
        })
        .collect()
}

/// `words` (a printed command) run in the remote sandbox, each `KEYFILE`
/// filled with `key`, and QBTIME_AGE_IDENTITY set to `key` when
/// `identity_set`.
fn run_filled(
    remote: &Remote,
    home: &std::path::Path,
    words: &[String],
    key: &std::path::Path,
    identity_set: bool,
) -> Run {
    let key = key.to_str().unwrap();
    let filled: Vec<&str> = { words.iter() }
        .map(|w| if w == "KEYFILE" { key } else { w.as_str() })
        .collect();
    let mut command = remote.xtask_command(home, &filled);
    if identity_set {
        command.env("QBTIME_AGE_IDENTITY", key);
    }
    Run::from_output(command.output().unwrap())
}

/// MN: the commands `offsite fetch` prints for an encrypted copy ran only
/// once edited: `restore … --to ENV --identity FILE`, placeholders a paste
/// took as an environment `ENV` and a file `FILE`. They name the fetched
/// file and its environment (prod, as its manifest records), and the
/// identity as KEYFILE, told before them as every printed way back tells
/// it; with QBTIME_AGE_IDENTITY set, no `--identity` at all, since the
/// commands read it from there (its path is never printed). Pasted
/// (KEYFILE filled), the verify passes and the restore, a dry run of
/// `--replace`, shows its plan.
#[test]
fn a_fetched_encrypted_copy_is_told_with_commands_that_run_as_printed() {
    let (remote, home) = remote();
    let key = home.path().join("key.txt");
    let recipient =
        keygen_recipient(&remote.xtask(home.path(), &["keygen", "--out", key.to_str().unwrap()]));
    remote
        .xtask(
            home.path(),
            &["backup", "prod", "--encrypt-to", &recipient, "--upload"],
        )
        .assert_ok();
    let sb = &remote.sb;
    for identity_set in [false, true] {
        std::fs::remove_dir_all(sb.backups()).unwrap();
        let mut fetch = remote.xtask_command(
            home.path(),
            &["offsite", "fetch", "latest", "--env", "prod"],
        );
        if identity_set {
            fetch.env("QBTIME_AGE_IDENTITY", &key);
        }
        let fetched = Run::from_output(fetch.output().unwrap());
        fetched.assert_ok();
        let told = &fetched.stdout;
        assert!(!told.contains(key.to_str().unwrap()), "{told}");
        let commands = pasted_commands(told);
        assert_eq!(commands.len(), 2, "{told}");
        let (verify, restore) = (&commands[0], &commands[1]);
        assert_eq!(verify[0], "verify", "{told}");
        assert_eq!(restore[0], "restore", "{told}");
        assert!(
            std::path::Path::new(&verify[1]).is_file() && restore[1] == verify[1],
            "the commands do not name the fetched file:\n{told}"
        );
        assert!(
            restore.windows(2).any(|w| w[0] == "--to" && w[1] == "prod"),
            "the restore does not name prod:\n{told}"
        );
        for words in &commands {
            assert!(
                !words
                    .iter()
                    .any(|w| w == "ENV" || w == "FILE" || w.starts_with('<')),
                "a placeholder other than KEYFILE in {words:?}:\n{told}"
            );
            let keyfile = words
                .windows(2)
                .any(|w| w[0] == "--identity" && w[1] == "KEYFILE");
            match identity_set {
                true => assert!(!words.contains(&"--identity".to_owned()), "{told}"),
                false => assert!(keyfile, "{words:?} lacks --identity KEYFILE:\n{told}"),
            }
        }
        if !identity_set {
            let explained = told
                .find("KEYFILE below")
                .unwrap_or_else(|| panic!("{told}"));
            assert!(explained < told.find("`cargo xtask").unwrap(), "{told}");
        }
        run_filled(&remote, home.path(), verify, &key, identity_set).assert_ok();
        let plan = run_filled(&remote, home.path(), restore, &key, identity_set);
        plan.assert_ok();
        let said = plan.all();
        assert!(said.contains("Dry run: nothing was changed"), "{said}");
    }
}

/// MN: a compressed backup damaged here (cut short, its manifest made to
/// agree) is refused by restore, whose advice ended "or its offsite copy
/// with `cargo xtask offsite fetch`": a usage error as pasted (no backup,
/// no --env). Each offsite command it prints is accepted as printed, and
/// the fetch, run as printed once the file and its manifest are moved
/// aside as the advice says, brings back the whole copy, which verifies.
#[test]
fn the_offsite_fetch_a_damaged_backup_advises_runs_as_printed() {
    let (remote, home) = remote();
    let sb = &remote.sb;
    { remote.xtask(home.path(), &["backup", "prod", "--compress", "--upload"]) }.assert_ok();
    let name = { sb.backup_files().into_iter() }
        .find(|n| n.ends_with(".sql.zst"))
        .expect("a compressed backup");
    let path = sb.backups().join(&name);
    let mut bytes = std::fs::read(&path).unwrap();
    bytes.truncate(bytes.len() - 40);
    std::fs::write(&path, &bytes).unwrap();
    edit_manifest(sb, &name, |m| {
        m["file"]["bytes"] = bytes.len().into();
        m["file"]["sha256"] = sha256_hex(&bytes).into();
    });
    let restore = ["restore", &name, "--to", "local", "--replace", "--yes"];
    let refused = remote.xtask(home.path(), &restore);
    assert_eq!(refused.code, Some(3), "{}", refused.all());
    let offsite: Vec<Vec<String>> = { pasted_commands(&refused.stderr).into_iter() }
        .filter(|words| words[0] == "offsite")
        .collect();
    assert!(
        offsite.iter().any(|words| words[1] == "fetch"),
        "no offsite fetch advised:\n{}",
        refused.all()
    );
    for words in &offsite {
        let words: Vec<&str> = words.iter().map(String::as_str).collect();
        let run = remote.xtask(home.path(), &words);
        assert!(
            run.code != Some(2) && !run.stderr.contains("Usage:"),
            "{words:?} as printed is refused:\n{}",
            run.all()
        );
    }
    let aside = tempfile::tempdir().unwrap();
    let manifest = name.split(".sql").next().unwrap().to_owned() + ".manifest.json";
    for moved in [&name, &manifest] {
        std::fs::rename(sb.backups().join(moved), aside.path().join(moved)).unwrap();
    }
    let fetch = { offsite.iter() }
        .find(|words| words[1] == "fetch")
        .unwrap();
    let fetch: Vec<&str> = fetch.iter().map(String::as_str).collect();
    remote.xtask(home.path(), &fetch).assert_ok();
    remote.xtask(home.path(), &["verify", &name]).assert_ok();
}

/// Edits, in the bucket, the manifest of prod's newest offsite copy.
fn edit_bucket_manifest(remote: &Remote, edit: impl FnOnce(&mut Value)) {
    let index: Value =
        serde_json::from_slice(&remote.server.r2_object(BUCKET, "index/prod.json").unwrap())
            .unwrap();
    let manifest_key = index["backups"][0]["manifest_key"].as_str().unwrap();
    let mut manifest: Value =
        serde_json::from_slice(&remote.server.r2_object(BUCKET, manifest_key).unwrap()).unwrap();
    edit(&mut manifest);
    remote
        .server
        .r2_put_object(
            BUCKET,
            manifest_key,
            &serde_json::to_vec(&manifest).unwrap(),
        )
        .unwrap();
}

/// MN: a fetch refused because the bucket's manifest records another
/// database's backup (its sha256 and size right) named no next step. It
/// names where this database's other copies are listed, and that command
/// runs as printed.
#[test]
fn a_fetch_of_another_databases_backup_names_a_next_step_that_runs() {
    let (remote, home) = remote();
    let name = uploaded_and_gone_here(&remote, home.path());
    edit_bucket_manifest(&remote, |m| {
        m["database"]["name"] = Value::from("qbtime_db_staging");
    });

    let fetch = remote.xtask(home.path(), &["offsite", "fetch", &name, "--env", "prod"]);
    fetch.assert_refused("qbtime_db_staging");
    // MV 2: a guard's refusal, as `restore FILE --to prod` of staging's
    // backup is (the README's exit codes); it was 1, a failure.
    assert_eq!(fetch.code, Some(3), "{}", fetch.all());
    assert!(!remote.sb.backups().join(&name).exists(), "{}", fetch.all());
    let next = pasted_commands(&fetch.stderr);
    assert_eq!(next.len(), 1, "no next step named:\n{}", fetch.all());
    let words: Vec<&str> = next[0].iter().map(String::as_str).collect();
    assert_eq!(words[..2], ["offsite", "list"], "{}", fetch.all());
    remote.xtask(home.path(), &words).assert_ok();
}

/// After `vars.APP_ENV` prod -> live, `prod/` may hold a newer copy of
/// another database (the short name is another environment's now, or
/// someone wrote there). The copies the backups here of live's database
/// record under `prod/` are still live's: `offsite list --env live` shows
/// them, and so did `--from-env prod`, until it was refused outright
/// ("none of them is listed as live's") whenever the newest copy under
/// the prefix was another database's. It lists live's recorded copies, as
/// the list without `--from-env` does.
#[test]
fn a_list_from_env_whose_newest_copy_is_another_databases_still_lists_the_copies_recorded_here() {
    let (remote, home) = remote();
    let name = remote.backup_and_upload_prod(home.path());
    remote.sb.rename_prod_to_live();
    // A newer copy of another database, listed first under prod/.
    let key = "index/prod.json";
    let mut index: Value =
        serde_json::from_slice(&remote.server.r2_object(BUCKET, key).unwrap()).unwrap();
    let ours = index["backups"][0].clone();
    let manifest_key = ours["manifest_key"].as_str().unwrap().to_owned();
    let mut manifest: Value =
        serde_json::from_slice(&remote.server.r2_object(BUCKET, &manifest_key).unwrap()).unwrap();
    // The same minute's second backup (`-2`), up to a second later (its
    // name's minute is its date's).
    let second = |text: &str| {
        text.replacen(".sql", "-2.sql", 1)
            .replacen(".manifest.json", "-2.manifest.json", 1)
    };
    let later = |text: &str| {
        use chrono::Timelike;
        let at = chrono::DateTime::parse_from_rfc3339(text).unwrap().to_utc();
        let minute_end = at.with_second(59).unwrap().with_nanosecond(999_999_999);
        (at + chrono::Duration::seconds(1))
            .min(minute_end.unwrap())
            .to_rfc3339_opts(chrono::SecondsFormat::Nanos, true)
    };
    let mut other = ours.clone();
    for field in ["file", "key", "manifest_key"] {
        other[field] = Value::from(second(ours[field].as_str().unwrap()));
    }
    for field in ["created_at", "uploaded_at"] {
        other[field] = Value::from(later(ours[field].as_str().unwrap()));
    }
    manifest["database"]["name"] = Value::from("qbtime_db_other");
    manifest["file"]["name"] = other["file"].clone();
    manifest["created_at"] = other["created_at"].clone();
    remote
        .server
        .r2_put_object(
            BUCKET,
            other["manifest_key"].as_str().unwrap(),
            &serde_json::to_vec(&manifest).unwrap(),
        )
        .unwrap();
    index["backups"]
        .as_array_mut()
        .unwrap()
        .insert(0, other.clone());
    remote
        .server
        .r2_put_object(BUCKET, key, &serde_json::to_vec(&index).unwrap())
        .unwrap();

    let plain = remote.xtask(home.path(), &["offsite", "list", "--env", "live"]);
    plain.assert_ok();
    assert!(plain.stdout.contains(&name), "{}", plain.all());
    let list = remote.xtask(
        home.path(),
        &["offsite", "list", "--env", "live", "--from-env", "prod"],
    );
    list.assert_ok();
    assert!(
        list.stdout.contains(&name),
        "live's copy recorded here under prod/ is not listed:\n{}",
        list.all()
    );
    let theirs = other["file"].as_str().unwrap();
    assert!(!list.stdout.contains(theirs), "{}", list.all());
}

/// `offsite fetch` of a backup whose file is here but whose manifest the
/// bucket holds damaged is refused with `cargo xtask verify PATH
/// --no-manifest` to paste; the path was printed as it is, so a backup
/// directory with a `'` or a space in its path (`--backup-dir`) made the
/// pasted command a syntax error or a verify of another file. It is quoted
/// for the shell, as every printed command is.
#[test]
fn a_fetch_refused_for_a_damaged_offsite_manifest_prints_a_verify_that_works_when_pasted() {
    use std::os::unix::fs::PermissionsExt;
    let (remote, home) = remote();
    let name = remote.backup_and_upload_prod(home.path());
    // The file alone, in a backup directory whose path needs quoting.
    let outside = tempfile::tempdir().unwrap();
    let dir = outside.path().join("it's backups");
    std::fs::create_dir(&dir).unwrap();
    std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o700)).unwrap();
    std::fs::copy(remote.sb.backups().join(&name), dir.join(&name)).unwrap();
    // The bucket's manifest records another sha256.
    edit_bucket_manifest(&remote, |m| {
        m["file"]["sha256"] = Value::from("0".repeat(64));
    });

    let fetch = remote.xtask(
        home.path(),
        &[
            "--backup-dir",
            dir.to_str().unwrap(),
            "offsite",
            "fetch",
            &name,
            "--env",
            "prod",
        ],
    );
    assert_eq!(fetch.code, Some(3), "{}", fetch.all());
    let command = fetch
        .stderr
        .split('`')
        .find(|part| part.starts_with("cargo xtask ") && part.contains(" verify "))
        .unwrap_or_else(|| panic!("no verify printed:\n{}", fetch.all()))
        .to_owned();
    // What the shell reads as the path: the word after `verify` (the
    // typed --backup-dir DIR before it).
    let words = std::process::Command::new("sh")
        .arg("-c")
        .arg(format!("set -- {command}\nprintf %s \"$6\""))
        .output()
        .unwrap();
    assert_eq!(
        String::from_utf8_lossy(&words.stdout),
        dir.join(&name).display().to_string(),
        "pasted, `{command}` does not verify the file (stderr: {})",
        String::from_utf8_lossy(&words.stderr)
    );
}

/// A backup of prod taken, uploaded, and then gone from `backups/` with
/// its manifest: its name.
fn uploaded_and_gone_here(remote: &Remote, home: &std::path::Path) -> String {
    let name = remote.backup_prod(home);
    remote.xtask(home, &["upload", "latest:prod"]).assert_ok();
    let backups = remote.sb.backups();
    std::fs::remove_file(backups.join(&name)).unwrap();
    std::fs::remove_file(backups.join(name.replace(".sql", ".manifest.json"))).unwrap();
    name
}

/// The bucket's key of the uploaded backup `name`.
fn uploaded_key(remote: &Remote, name: &str) -> String {
    { remote.server.r2_keys(BUCKET).into_iter() }
        .find(|k| k.ends_with(name))
        .expect("the backup was uploaded")
}

/// A copy damaged in the bucket is refused whole, and the refusal says
/// where the other copies are listed, the way on for an operator whose
/// local backups are gone.
#[test]
fn a_damaged_offsite_copy_is_refused_naming_where_the_other_copies_are_listed() {
    let (remote, home) = remote();
    let name = uploaded_and_gone_here(&remote, home.path());
    let sb = &remote.sb;
    let key = uploaded_key(&remote, &name);
    remote
        .server
        .r2_put_object(BUCKET, &key, b"PRAGMA defer_foreign_keys=TRUE;\n")
        .unwrap();

    let run = remote.xtask(home.path(), &["offsite", "fetch", &name, "--env", "prod"]);
    run.assert_refused(
        "the offsite copy is damaged; nothing was kept. `cargo xtask offsite list --env prod` \
         names the other copies to fetch",
    );
    assert!(!sb.backups().join(&name).exists(), "{}", run.all());
}

/// An object far larger than anything this tool puts there (160 MB).
const HUGE: usize = 160 << 20;

/// Of a huge object, what the tool may let wrangler read before it stops:
/// the 64 MiB a text it reads may hold, with room for the socket's buffers.
const READ_AT_MOST: u64 = 96 << 20;

/// The offsite index is anyone's to write who holds the bucket's token
/// (the scheduled job's `Object Read & Write`): a huge one was downloaded
/// whole, into the temporary directory (often memory), by every `offsite
/// list`, `fetch` and nightly `upload`, and only then refused as over the
/// 64 MiB an index may be. wrangler is stopped once it has written more.
#[test]
fn a_huge_offsite_index_is_not_downloaded_past_what_an_index_may_hold() {
    let (remote, home) = remote();
    remote
        .server
        .r2_put_object(BUCKET, "index/prod.json", &vec![b' '; HUGE])
        .unwrap();
    let before = remote.server.r2_bytes_sent();

    let run = remote.xtask(home.path(), &["offsite", "list", "--env", "prod"]);
    assert!(!run.ok, "{}", run.all());
    assert!(run.stderr.contains("index/prod.json"), "{}", run.all());
    // Sizes read as sizes (the README's rule), not 67108864 bytes.
    assert!(run.stderr.contains("67.1 MB"), "{}", run.all());
    assert!(!run.all().contains(TOKEN), "{}", run.all());
    let sent = remote.server.r2_bytes_sent() - before;
    assert!(
        sent < READ_AT_MOST,
        "{sent} bytes of the index were read:\n{}",
        run.all()
    );
}

/// A backup object larger than its manifest records (someone replaced it)
/// was downloaded whole into `backups/` before its size was compared: a
/// huge one fills the disk the backups are on. The download stops past
/// the size the manifest records, nothing is kept, and the refusal says
/// the copy is larger than its manifest records.
#[test]
fn a_fetched_copy_larger_than_its_manifest_is_not_downloaded_whole() {
    let (remote, home) = remote();
    let name = uploaded_and_gone_here(&remote, home.path());
    let key = uploaded_key(&remote, &name);
    remote
        .server
        .r2_put_object(BUCKET, &key, &vec![b'-'; HUGE])
        .unwrap();
    let before = remote.server.r2_bytes_sent();

    let run = remote.xtask(home.path(), &["offsite", "fetch", &name, "--env", "prod"]);
    run.assert_refused("is larger than its manifest records");
    run.assert_refused("nothing was kept");
    let sent = remote.server.r2_bytes_sent() - before;
    assert!(
        sent < READ_AT_MOST,
        "{sent} bytes of the copy were read:\n{}",
        run.all()
    );
    nothing_kept_of(&remote.sb, &name, &run);
}

/// Nothing of `name` (and no partial download) is left in `backups/`,
/// and `run` never showed the token.
fn nothing_kept_of(sb: &Sandbox, name: &str, run: &Run) {
    let left: Vec<String> = { sb.backup_files().into_iter() }
        .filter(|f| f.contains(name) || f.contains("partial"))
        .collect();
    assert!(left.is_empty(), "{left:?}\n{}", run.all());
    assert!(!run.all().contains(TOKEN), "{}", run.all());
}

/// A manifest in the bucket is anyone's to write who holds its token, and
/// its `file.bytes` was the whole bound on the backup's download: one that
/// records more than this tool can ever have uploaded (wrangler puts at
/// most 300 MiB in one object) let a copy of any size be downloaded into
/// `backups/` before it was compared. It is refused before the backup is
/// read at all, naming the object, the sizes and what to do.
#[test]
fn a_fetch_whose_manifest_records_more_than_any_upload_puts_reads_nothing_of_the_copy() {
    let (remote, home) = remote();
    let name = uploaded_and_gone_here(&remote, home.path());
    let keys = remote.server.r2_keys(BUCKET);
    let key = { keys.iter() }.find(|k| k.ends_with(&name)).unwrap();
    let manifest_key = { keys.iter() }
        .find(|k| k.ends_with(&name.replace(".sql", ".manifest.json")))
        .unwrap();
    let copy = vec![b'-'; HUGE];
    remote.server.r2_put_object(BUCKET, key, &copy).unwrap();
    let mut offsite: Value =
        serde_json::from_slice(&remote.server.r2_object(BUCKET, manifest_key).unwrap()).unwrap();
    offsite["file"]["bytes"] = Value::from(400u64 << 20);
    offsite["file"]["sha256"] = Value::String(sha256_hex(&copy));
    let forged = serde_json::to_string_pretty(&offsite).unwrap();
    remote
        .server
        .r2_put_object(BUCKET, manifest_key, forged.as_bytes())
        .unwrap();
    let before = remote.server.r2_bytes_sent();

    let run = remote.xtask(home.path(), &["offsite", "fetch", &name, "--env", "prod"]);
    run.assert_refused(&format!(
        "r2://{BUCKET}/{manifest_key} records a copy of 419.4 MB"
    ));
    run.assert_refused("314.6 MB");
    run.assert_refused("nothing was fetched");
    let sent = remote.server.r2_bytes_sent() - before;
    assert!(
        sent < (1 << 20),
        "{sent} bytes were read for a copy no upload can have put:\n{}",
        run.all()
    );
    nothing_kept_of(&remote.sb, &name, &run);
}

/// rvDP: an upload interrupted after it put the manifest (which records
/// the copy, so it is longer than the local one, which does not yet) was
/// refused when run again: the manifest in the bucket was bounded by the
/// local manifest's size, so "a manifest of the same backup" read as
/// larger than ours, "another backup of that name".
#[test]
fn an_upload_interrupted_after_its_manifest_put_goes_through_when_run_again() {
    let (remote, home) = remote();
    let name = remote.backup_prod(home.path());
    let run = interrupt_once_printed(
        remote.xtask_command(home.path(), &["upload", &name, "--env", "prod"]),
        "manifest.json reads back",
    );
    assert_eq!(run.code, Some(130), "{}", run.all());
    let local = std::fs::read_to_string(
        remote
            .sb
            .backups()
            .join(name.replace(".sql", ".manifest.json")),
    )
    .unwrap();
    assert!(!local.contains("\"offsite\""), "{local}");

    let again = remote.xtask(home.path(), &["upload", &name, "--env", "prod"]);
    again.assert_ok();
    assert!(again.stdout.contains("Offsite: "), "{}", again.all());
}

/// FE: the index forgets a copy by backups.toml's rule, not by the bucket's.
/// prod's lifecycle rule was set at 372 days; then the operator trims the
/// local retention (keep_weekly and keep_monthly taken out: 30 days). The
/// next scheduled upload dropped every copy older than 30 days from the
/// index, though R2 keeps each for a year: `offsite list` no longer shows
/// it and `offsite fetch` of it says it is not among the offsite copies,
/// and nothing lists a bucket but the index.
#[test]
fn a_shortened_retention_never_makes_the_index_forget_copies_the_bucket_still_keeps() {
    let (remote, home) = remote();
    let name = remote.backup_prod(home.path());
    let month_old = prod_copy_aged(&remote, &name, 40);
    let weeks_old = prod_copy_aged(&remote, &name, 20);
    let lifecycle = "offsite lifecycle --env prod --confirm qbtime_db_prod";
    remote
        .xtask(home.path(), &lifecycle.split(' ').collect::<Vec<_>>())
        .assert_ok();
    for copy in [&month_old, &weeks_old] {
        remote
            .xtask(home.path(), &["upload", copy, "--env", "prod"])
            .assert_ok();
    }
    // As if each had been uploaded when it was taken.
    let key = "index/prod.json";
    let mut index: Value =
        serde_json::from_slice(&remote.server.r2_object(BUCKET, key).unwrap()).unwrap();
    for entry in index["backups"].as_array_mut().unwrap() {
        entry["uploaded_at"] = entry["created_at"].clone();
    }
    remote
        .server
        .r2_put_object(BUCKET, key, &serde_json::to_vec(&index).unwrap())
        .unwrap();
    let settings = remote.sb.path().join("backups.toml");
    let trimmed: String = std::fs::read_to_string(&settings)
        .unwrap()
        .lines()
        .filter(|l| !l.starts_with("keep_weekly = 12") && !l.starts_with("keep_monthly = 12"))
        .map(|l| format!("{l}\n"))
        .collect();
    std::fs::write(&settings, trimmed).unwrap();

    let upload = remote.xtask(home.path(), &["upload", &name, "--env", "prod"]);
    upload.assert_ok();
    std::fs::remove_file(remote.sb.backups().join(&month_old)).unwrap();
    std::fs::remove_file(
        remote
            .sb
            .backups()
            .join(month_old.replace(".sql", ".manifest.json")),
    )
    .unwrap();
    let fetch = remote.xtask(
        home.path(),
        &["offsite", "fetch", &month_old, "--env", "prod"],
    );
    assert!(
        fetch.ok && remote.sb.backups().join(&month_old).is_file(),
        "R2 keeps {month_old} for the 372 days of its lifecycle rule, but the upload dropped it \
         from the index by the 30 days backups.toml says now, and it cannot be fetched:\n{}\n{}",
        upload.all(),
        fetch.all()
    );
    // rvG6: rules the token may not read (one allowed objects only) drop
    // nothing, and the upload says why the index keeps every copy.
    remote.server.set_faults(Faults {
        r2_lifecycle_get_status: Some(403),
        ..Faults::default()
    });
    let blind = remote.xtask(home.path(), &["upload", &name, "--env", "prod"]);
    remote.server.set_faults(Faults::default());
    blind.assert_ok();
    let index: Value =
        serde_json::from_slice(&remote.server.r2_object(BUCKET, key).unwrap()).unwrap();
    assert!(
        index.to_string().contains(&month_old)
            && blind.stderr.contains("lifecycle rules")
            && blind.stderr.contains("keeps every copy"),
        "{}",
        blind.all()
    );
}

/// `vars.APP_ENV` prod -> live and a second database added: the database
/// is `live.qbtime_db_prod`. A backup taken as `prod` before (never
/// uploaded, same database name and id) is its own, and `upload` puts it
/// under `live.qbtime_db_prod/` with its name `backup-prod-…`; the index
/// the upload wrote was then refused as "not an offsite index this tool
/// wrote" (exit 2), by every `offsite list`, `offsite fetch latest` and
/// upload of the database, a fresh machine's recovery too.
#[test]
fn a_backup_from_before_the_short_name_changed_and_a_database_was_added_is_uploaded_listed_and_fetched()
 {
    let (remote, home) = remote();
    let name = remote.backup_prod(home.path());
    remote.sb.rename_prod_to_live();
    add_analytics_to_prod(&remote);
    uploaded_listed_and_fetched(&remote, home.path(), &name, "live.qbtime_db_prod");
}

/// The reverse: a backup taken as `prod.qbtime_db_prod` while prod had two
/// databases, then `vars.APP_ENV` prod -> live and the second database
/// taken out: it is `live`'s, uploaded under `live/`, and listed and
/// fetched from there.
#[test]
fn a_backup_from_before_the_short_name_changed_and_a_database_was_taken_out_is_uploaded_listed_and_fetched()
 {
    let (remote, home) = remote();
    let config = remote.sb.path().join("wrangler.toml");
    let before = std::fs::read_to_string(&config).unwrap();
    add_analytics_to_prod(&remote);
    { remote.xtask(home.path(), &["backup", "prod.qbtime_db_prod"]) }.assert_ok();
    let name = only_backup(&remote.sb);
    assert!(name.starts_with("backup-prod.qbtime_db_prod-"), "{name}");
    std::fs::write(&config, before).unwrap();
    remote.sb.rename_prod_to_live();
    uploaded_listed_and_fetched(&remote, home.path(), &name, "live");
}

/// `upload latest:<env>` of `name` puts it under `<env>/`; on a machine
/// with no backups left, `offsite list` lists it and `offsite fetch
/// latest` fetches it, and it verifies.
fn uploaded_listed_and_fetched(remote: &Remote, home: &std::path::Path, name: &str, env: &str) {
    let up = remote.xtask(home, &["upload", &format!("latest:{env}")]);
    up.assert_ok();
    let keys = remote.server.r2_keys(BUCKET);
    assert!(
        keys.iter()
            .any(|k| k.starts_with(&format!("{env}/")) && k.ends_with(name)),
        "{}",
        up.all()
    );
    let sb = &remote.sb;
    for f in sb.backup_files() {
        std::fs::remove_file(sb.backups().join(f)).unwrap();
    }
    let list = remote.xtask(home, &["offsite", "list", "--env", env]);
    list.assert_ok();
    assert!(list.stdout.contains(name), "{}", list.all());
    let fetch = remote.xtask(home, &["offsite", "fetch", "latest", "--env", env]);
    fetch.assert_ok();
    assert!(sb.backups().join(name).is_file(), "{}", fetch.all());
    remote
        .xtask(home, &["verify", &format!("latest:{env}")])
        .assert_ok();
}

/// The account wrangler reads from the environment under the older name
/// `CF_ACCOUNT_ID` (no `account_id` in wrangler.toml, `CLOUDFLARE_ACCOUNT_ID`
/// unset) is one that does not hold the bucket; and, in the right account,
/// `--bucket` names a bucket that is not there. `offsite list` and `offsite
/// fetch` fail, never saying nothing was uploaded, naming the bucket, the
/// account they looked in and the variable it came from.
#[test]
fn offsite_reads_in_the_account_of_cf_account_id_or_of_an_unknown_bucket_name_both() {
    let (remote, _home) = uploaded_prod();
    let other = "fedcba9876543210fedcba9876543210";
    let fresh = tempfile::tempdir().unwrap();
    let kept = remote.sb.backup_files();
    // Who reads: another account under CF_ACCOUNT_ID, or the right one
    // (the harness's CLOUDFLARE_ACCOUNT_ID) asked for a bucket not there.
    let readers = [
        (Some(other), BUCKET, "CF_ACCOUNT_ID"),
        (None, "no-such-bucket", "CLOUDFLARE_ACCOUNT_ID"),
    ];
    let reads: [&[&str]; 2] = [&["offsite", "list"], &["offsite", "fetch", "latest"]];
    let cases = readers
        .into_iter()
        .flat_map(|reader| reads.map(|read| (read, reader)));
    for (read, (account, bucket, variable)) in cases {
        let args = [read, &["--env", "prod", "--bucket", bucket]].concat();
        let args = args.as_slice();
        let mut cmd = remote.xtask_command(fresh.path(), args);
        if let Some(account) = account {
            cmd.env_remove("CLOUDFLARE_ACCOUNT_ID")
                .env("CF_ACCOUNT_ID", account);
        }
        let run = Run::from_output(cmd.output().unwrap());
        failed_saying_something_was_uploaded(args, &run);
        let id = account.unwrap_or(ACCOUNT);
        for said in [
            format!("r2://{bucket}"),
            format!("cannot be read in account {id} ({variable})"),
        ] {
            assert!(
                run.all().contains(&said),
                "{args:?}: {said:?} unsaid:\n{}",
                run.all()
            );
        }
        assert_eq!(remote.sb.backup_files(), kept, "{args:?} changed backups/");
    }
}

/// A mistyped name for `offsite fetch` is answered with the near names in
/// the offsite index, as a mistyped local backup's name is.
#[test]
fn a_fetch_of_a_mistyped_name_suggests_the_near_offsite_copies() {
    let (remote, home) = remote();
    let name = remote.backup_and_upload_prod(home.path());
    // One character dropped from its time of day.
    let at = name.find(".sql").unwrap() - 1;
    let typo = format!("{}{}", &name[..at], &name[at + 1..]);
    std::fs::remove_file(remote.sb.backups().join(&name)).unwrap();
    let fetch = remote.xtask(home.path(), &["offsite", "fetch", &typo, "--env", "prod"]);
    assert!(!fetch.ok, "{}", fetch.all());
    assert!(
        fetch.stderr.contains(&format!("did you mean {name}?")),
        "no near name suggested for {typo}:\n{}",
        fetch.all()
    );
    assert!(!remote.sb.backups().join(&name).exists());
}

/// The row `offsite list --env prod` prints for `name`.
fn offsite_list_row(remote: &Remote, home: &std::path::Path, name: &str) -> String {
    let run = remote.xtask(home, &["offsite", "list", "--env", "prod"]);
    run.assert_ok();
    run.stdout
        .lines()
        .find(|l| l.starts_with(name))
        .unwrap_or_else(|| panic!("{name} is not listed:\n{}", run.all()))
        .to_owned()
}

/// rvAT: `offsite list`'s `here` column said `yes` of any file of the
/// copy's name in backups/, though another file of that name (another
/// machine's backup, a file edited since) is not the offsite copy, and
/// fetching it is refused ("exists and differs"). `yes` only of a copy
/// here that matches the offsite one; else `differs`.
#[test]
fn offsite_list_says_here_only_of_a_local_file_that_matches_the_offsite_copy() {
    let (remote, home) = remote();
    let name = remote.backup_and_upload_prod(home.path());
    let row = offsite_list_row(&remote, home.path(), &name);
    assert!(
        row.contains(" yes "),
        "the copy here is not told here: {row}"
    );
    std::fs::write(
        remote.sb.backups().join(&name),
        "-- another file of the same name\n",
    )
    .unwrap();
    let row = offsite_list_row(&remote, home.path(), &name);
    assert!(
        !row.contains(" yes ") && row.contains(" differs "),
        "another file of the copy's name is told to be the copy here: {row}"
    );
}

/// rvAT: an offsite copy dated after this machine's clock was listed 0s
/// old by `offsite list`, where the local `list` says `ahead`.
#[test]
fn offsite_list_says_ahead_of_a_copy_dated_after_the_clock_as_list_does() {
    let (remote, home) = remote();
    remote.backup_and_upload_prod(home.path());
    let key = "index/prod.json";
    let mut index: Value =
        serde_json::from_slice(&remote.server.r2_object(BUCKET, key).unwrap()).unwrap();
    // The entry of a copy taken by a clock three days fast, as an upload
    // from that machine writes it.
    let ahead = chrono::Utc::now() + chrono::Duration::days(3);
    let name = format!("backup-prod-{}.sql", ahead.format("%Y%m%d-%H%M"));
    let dir = format!("prod/{}/", ahead.format("%Y/%m"));
    let entry = &mut index["backups"][0];
    entry["created_at"] = Value::from(ahead.to_rfc3339());
    entry["file"] = Value::from(name.clone());
    entry["key"] = Value::from(format!("{dir}{name}"));
    entry["manifest_key"] = Value::from(format!("{dir}{}", name.replace(".sql", ".manifest.json")));
    remote
        .server
        .r2_put_object(BUCKET, key, &serde_json::to_vec(&index).unwrap())
        .unwrap();
    let row = offsite_list_row(&remote, home.path(), &name);
    assert!(
        row.contains(" ahead ") && !row.contains(" 0s "),
        "a copy dated after the clock: {row}"
    );
}

/// rvAT: `offsite fetch NAME` where backups/NAME is a symbolic link (to
/// an identical file outside backups/) said it "was here, identical" and
/// fetched the manifest beside the link, a backup `list` then refuses
/// ("not a regular file (a symbolic link) ... move both aside"); a
/// dangling link got the whole download and then a raw "File exists (os
/// error 17)". Both are refused up front, naming the link and the fix, and
/// nothing is written beside it or through it.
#[test]
fn offsite_fetch_refuses_a_symbolic_link_at_the_name_up_front() {
    let (remote, home) = remote();
    let name = remote.backup_and_upload_prod(home.path());
    let backups = remote.sb.backups();
    let file = backups.join(&name);
    let manifest = backups.join(name.replace(".sql", ".manifest.json"));
    let outside = tempfile::tempdir().unwrap();
    let elsewhere = outside.path().join(&name);
    std::fs::rename(&file, &elsewhere).unwrap();
    std::fs::remove_file(&manifest).unwrap();
    std::os::unix::fs::symlink(&elsewhere, &file).unwrap();
    let run = remote.xtask(home.path(), &["offsite", "fetch", &name, "--env", "prod"]);
    run.assert_refused("a symbolic link");
    assert!(run.stderr.contains("move it aside"), "{}", run.all());
    assert!(!manifest.exists(), "a manifest was fetched beside the link");

    let dangling = outside.path().join("gone.sql");
    std::fs::remove_file(&file).unwrap();
    std::os::unix::fs::symlink(&dangling, &file).unwrap();
    let run = remote.xtask(home.path(), &["offsite", "fetch", &name, "--env", "prod"]);
    run.assert_refused("a symbolic link");
    assert!(!run.all().contains("os error"), "{}", run.all());
    assert!(
        !run.all().contains("Fetching"),
        "downloaded first:\n{}",
        run.all()
    );
    assert!(!dangling.exists() && !manifest.exists(), "{}", run.all());
}

/// rvAT: a copy whose manifest is in the bucket but whose file is gone was
/// refused "is gone (expired by the lifecycle rule?)" with no way on; the
/// other refusals of a fetch name `offsite list`, which shows the copies
/// there are to fetch.
#[test]
fn a_fetch_of_a_copy_gone_from_the_bucket_names_where_the_other_copies_are_listed() {
    let (remote, home) = remote();
    let name = uploaded_and_gone_here(&remote, home.path());
    let key = uploaded_key(&remote, &name);
    wrangler_delete(&remote, home.path(), &key).assert_ok();
    let run = remote.xtask(home.path(), &["offsite", "fetch", &name, "--env", "prod"]);
    run.assert_refused("is gone");
    assert!(
        run.stderr
            .contains("`cargo xtask offsite list --env prod` names the other copies to fetch"),
        "{}",
        run.all()
    );
}

/// `timeout 60 cargo xtask offsite fetch …` while the download hangs:
/// timeout(1) sends SIGTERM to the xtask, then to its whole process group
/// (wrangler included), the same signal twice within microseconds. That
/// is one stop, not an operator's second Ctrl-C: the fetch stops as for
/// SIGTERM (exit 143), says so, removes its partial downloads and releases
/// its lock. It exited at once (the second signal), saying nothing, and
/// left both partial downloads and the dead run's lock record.
#[test]
fn a_fetch_stopped_by_timeout_removes_its_partial_downloads_and_says_so() {
    let (remote, home) = remote();
    let name = uploaded_and_gone_here(&remote, home.path());
    // A slow bucket: each answer is held back 4 s.
    remote.server.set_faults(Faults {
        response_delay_ms: Some(4_000),
        ..Faults::default()
    });
    let mut cmd = remote.xtask_command(home.path(), &["offsite", "fetch", &name, "--env", "prod"]);
    as_a_job_ignoring(&mut cmd, &[]);
    let mut child = cmd
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
    // A download's directory is made before wrangler starts.
    let downloading = |f: &String| f.ends_with(".download.partial");
    while !remote.sb.backup_files().iter().any(downloading) {
        assert!(
            std::time::Instant::now() < deadline,
            "the download never started: {:?}",
            remote.sb.backup_files(),
        );
        assert!(child.try_wait().unwrap().is_none(), "it ended");
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    std::thread::sleep(std::time::Duration::from_secs(2));
    let pid = child.id() as libc::pid_t;
    // SAFETY: kill(2) on our own child, then on the group it leads, as
    // timeout(1) does.
    unsafe {
        libc::kill(pid, libc::SIGTERM);
        libc::kill(-pid, libc::SIGTERM);
    }
    let status = ended_within(&mut child, std::time::Duration::from_secs(60))
        .expect("still running a minute after timeout's signal");
    let run = Run::from_output(std::process::Output {
        status,
        stdout: std::io::read_to_string(child.stdout.take().unwrap())
            .unwrap()
            .into_bytes(),
        stderr: std::io::read_to_string(child.stderr.take().unwrap())
            .unwrap()
            .into_bytes(),
    });
    assert_eq!(run.code, Some(143), "{}", run.all());
    assert!(
        run.stderr.contains("interrupted by SIGTERM"),
        "{}",
        run.all()
    );
    let files = remote.sb.backup_files();
    assert!(
        !files.iter().any(|f| f.contains("partial")),
        "partial downloads left: {files:?}"
    );
    let lock = std::fs::read(remote.sb.backups().join(".lock")).unwrap_or_default();
    assert!(lock.is_empty(), "the lock was not released: {files:?}");
}

/// MV 1: a fetch that finds the backup's manifest here without its file
/// (a prune killed between the two) brings the file back, and offered
/// only `verify`. It says the fetched file is the one that manifest
/// records, and prints the verify and restore a fresh fetch prints, which
/// run as printed.
#[test]
fn a_fetch_beside_a_manifest_here_prints_the_verify_and_restore_a_fresh_fetch_prints() {
    let (remote, home) = remote();
    let name = remote.backup_prod(home.path());
    remote
        .xtask(home.path(), &["upload", "latest:prod"])
        .assert_ok();
    std::fs::remove_file(remote.sb.backups().join(&name)).unwrap();
    let fetched = remote.xtask(home.path(), &["offsite", "fetch", &name, "--env", "prod"]);
    fetched.assert_ok();
    let told = &fetched.stdout;
    assert!(
        told.contains("the same file its manifest here records"),
        "{told}"
    );
    let commands = pasted_commands(told);
    let firsts: Vec<&str> = commands.iter().map(|c| c[0].as_str()).collect();
    assert_eq!(firsts, ["verify", "restore"], "{told}");
    let (verify, restore) = (&commands[0], &commands[1]);
    assert!(
        restore.windows(2).any(|w| w[0] == "--to" && w[1] == "prod") && restore[1] == verify[1],
        "{told}"
    );
    let run = |words: &[String]| {
        let words: Vec<&str> = words.iter().map(String::as_str).collect();
        remote.xtask(home.path(), &words)
    };
    run(verify).assert_ok();
    let plan = run(restore);
    plan.assert_ok();
    assert!(
        plan.all().contains("Dry run: nothing was changed"),
        "{}",
        plan.all()
    );
}

/// MV 3: `upload NAME --env prod` of a misfiled backup (recorded under
/// prod's name, its manifest naming staging's database) uploaded
/// staging's data under prod's offsite name. It is refused (exit 3),
/// nothing put in the bucket, naming whose database it is and the upload
/// that puts it under staging's name.
#[test]
fn an_upload_of_a_misfiled_backup_under_prods_name_is_refused() {
    let (remote, home) = remote();
    let ours = remote.backup_prod(home.path());
    let at = chrono::Utc::now() - chrono::Duration::minutes(30);
    let misfiled = copy_taken_at(&remote.sb, &ours, "prod", at, |m| {
        m["database"]["name"] = "qbtime_db_staging".into();
        m["database"]["uuid"] = STAGING_UUID.into();
    });
    let keys = remote.server.r2_keys(BUCKET);
    let upload = remote.xtask(home.path(), &["upload", &misfiled, "--env", "prod"]);
    assert_eq!(upload.code, Some(3), "{}", upload.all());
    assert!(
        upload.stderr.contains("which is staging's")
            && upload
                .stderr
                .contains(&format!("upload {misfiled} --env staging`")),
        "{}",
        upload.all()
    );
    assert_eq!(remote.server.r2_keys(BUCKET), keys, "{}", upload.all());
}
