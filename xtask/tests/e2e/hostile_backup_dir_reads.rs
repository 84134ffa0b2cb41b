//! What someone who can write files in the backup directory, or a tired
//! operator, could make the tool's readers do: hang on a FIFO, report a
//! lock of another bucket, print a forged row. Each runs the real xtask.

use crate::common;

use std::path::Path;
use std::time::{Duration, Instant};

use common::decoys::Decoys;
use common::*;

/// Runs the xtask; a run still going after `limit` is killed (SIGKILL: the
/// xtask's SIGTERM handler does not stop a blocked read) and reported as
/// `None`. The limit is a generous stop for a hang, not a speed check.
fn run_or_kill(sb: &Sandbox, args: &[&str], limit: Duration) -> Option<Run> {
    command_or_kill(sb.xtask_command(args), limit)
}

/// [`run_or_kill`] for any command.
fn command_or_kill(mut cmd: std::process::Command, limit: Duration) -> Option<Run> {
    let mut child = cmd
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let start = Instant::now();
    while start.elapsed() < limit {
        if child.try_wait().unwrap().is_some() {
            return Some(Run::from_output(child.wait_with_output().unwrap()));
        }
        std::thread::sleep(Duration::from_millis(200));
    }
    child.kill().unwrap();
    child.wait().unwrap();
    None
}

fn mkfifo(path: &Path) {
    let ok = std::process::Command::new("mkfifo")
        .arg(path)
        .status()
        .unwrap()
        .success();
    assert!(ok, "mkfifo {}", path.display());
}

#[test]
fn a_manifest_that_is_a_fifo_never_hangs_status_or_list() {
    // `backups/x.manifest.json` planted as a FIFO: every command that scans
    // the directory (list, status, prune, backup, restore latest, migrate)
    // used to block for ever on it, ignoring SIGTERM (SA_RESTART). It is
    // skipped with a warning naming it, as any manifest that cannot be
    // trusted.
    let (sb, name) = sandbox_with_a_backup();
    let fifo = sb
        .backups()
        .join("backup-local-20261130-0000.manifest.json");
    mkfifo(&fifo);
    for args in [&["status", "--env", "local"][..], &["list"][..]] {
        let run = run_or_kill(&sb, args, Duration::from_secs(60)).unwrap_or_else(|| {
            panic!(
                "`xtask {}` was still blocked on the FIFO {} after 60 s",
                args.join(" "),
                fifo.display()
            )
        });
        run.assert_ok();
        assert!(run.stdout.contains(&name), "{}", run.all());
        assert!(
            run.stderr
                .contains("backup-local-20261130-0000.manifest.json"),
            "the FIFO should be named in a warning:\n{}",
            run.all()
        );
    }
}

/// IE 4: a manifest whose backup file is a FIFO was ignored with a
/// warning calling it "not a regular file (a symbolic link?)": the warning
/// names what it is, a pipe.
#[test]
fn a_manifest_whose_file_is_a_fifo_is_ignored_saying_it_is_a_pipe() {
    let (sb, name) = sandbox_with_a_backup();
    let file = sb.backups().join(&name);
    std::fs::remove_file(&file).unwrap();
    mkfifo(&file);
    let run = run_or_kill(&sb, &["list"], Duration::from_secs(60)).expect("list blocked");
    run.assert_ok();
    assert!(
        run.stderr.contains(&name) && run.stderr.contains("not a regular file (a pipe)"),
        "{}",
        run.all()
    );
    assert!(!run.stderr.contains("symbolic link"), "{}", run.all());
}

#[test]
fn status_never_reports_a_lock_recorded_for_another_bucket() {
    // The operator moved prod to a new bucket in backups.toml; the lock
    // journal still holds the old bucket's lock, which says nothing of the
    // new bucket.
    let sb = Sandbox::new();
    std::fs::create_dir(sb.backups()).unwrap();
    std::fs::write(
        sb.backups().join("offsite-locks.jsonl"),
        r#"{"at":"2026-06-01T00:00:00Z","environment":"prod","bucket":"qbtime-d1-backups-old","rule":"qbtime-prod-lock-372d","prefix":"prod/","days":372}
"#,
    )
    .unwrap();
    let run = sb.xtask(&["status", "--env", "prod"]);
    assert!(
        run.stdout.contains("offsite lock              not locked"),
        "a lock of r2://qbtime-d1-backups-old was reported for r2://qbtime-d1-backups:\n{}",
        run.all()
    );
}

#[test]
fn list_prints_one_line_per_backup_whatever_its_manifest_holds() {
    // A manifest's database name with a newline in it would make `list`
    // print a row for a prod backup, verified and offsite, that does not
    // exist: the manifest is refused, naming the field.
    let (sb, name) = sandbox_with_a_backup();
    let manifest = sb.backups().join(format!(
        "{}.manifest.json",
        name.split(".sql").next().unwrap()
    ));
    let mut m: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&manifest).unwrap()).unwrap();
    m["database"]["name"] = "qbtime_db_local\nbackup-prod-20261130-0317.sql  prod  qbtime_db_prod  full  1h  7.0 KB good  r2://qbtime-d1-backups/prod/2026/11/backup-prod-20261130-0317.sql".into();
    std::fs::write(&manifest, serde_json::to_string_pretty(&m).unwrap()).unwrap();
    let run = sb.xtask(&["list"]);
    run.assert_ok();
    assert!(
        !run.stdout.lines().any(|l| l.starts_with("backup-prod-")),
        "list shows a prod backup that is not there:\n{}",
        run.stdout
    );
    assert!(
        run.stderr
            .contains("database.name holds a control or invisible formatting character"),
        "{}",
        run.all()
    );
}

#[test]
fn a_newer_manifest_cannot_whitewash_an_edited_migration() {
    // Two verified backups record each applied migration's sha256. An
    // applied migration is then edited, and the newest manifest's record
    // of it removed, then set to the edited file's sha256: the older record
    // stands, and migrate still refuses.
    let (sb, first) = sandbox_with_a_backup();
    std::thread::sleep(Duration::from_millis(1100));
    sb.xtask(&["backup", "local"]).assert_ok();
    let newest: String = sb
        .backup_files()
        .into_iter()
        .find(|n| n.ends_with(".sql") && *n != first)
        .unwrap();
    let name = "0001_accounts_companies_customers.sql";
    let migration = sb.path().join("migrations").join(name);
    let mut text = std::fs::read_to_string(&migration).unwrap();
    text.push_str("\n-- edited after it was applied\n");
    std::fs::write(&migration, &text).unwrap();
    let edited = sha256_hex(text.as_bytes());
    let manifest = sb.backups().join(newest.replace(".sql", ".manifest.json"));
    for record in [None, Some(edited)] {
        let mut m: serde_json::Value =
            serde_json::from_str(&std::fs::read_to_string(&manifest).unwrap()).unwrap();
        let map = m["migration_sha256"].as_object_mut().unwrap();
        match &record {
            None => map.remove(name),
            Some(sha) => map.insert(name.to_owned(), sha.clone().into()),
        };
        std::fs::write(&manifest, serde_json::to_string_pretty(&m).unwrap()).unwrap();
        let run = sb.xtask(&["migrate", "local", "--dry-run"]);
        assert_eq!(run.code, Some(3), "{record:?}: {}", run.all());
        assert!(run.all().contains(name), "{}", run.all());
    }
}

#[test]
fn status_is_not_fresh_when_the_newest_backup_file_was_emptied() {
    // A tired operator's `> backups/backup-local-….sql`, a full disk's
    // truncation or bit rot: the manifest still says good, but no backup
    // on the disk can be restored. status must not call local fresh (exit
    // 0), and list must not show the manifest's size for an empty file.
    let (sb, name) = sandbox_with_a_backup();
    keep_local_within_26h(&sb);
    sb.xtask(&["status", "--env", "local"]).assert_ok();
    std::fs::write(sb.backups().join(&name), b"").unwrap();

    let run = sb.xtask(&["status", "--env", "local"]);
    assert_ne!(
        run.code,
        Some(0),
        "status passed with its only backup emptied: {}",
        run.all()
    );
    assert!(!run.stdout.contains("(max 26h): ok"), "{}", run.all());
    assert!(
        run.stdout.contains(&format!("{name}: BAD")),
        "{}",
        run.all()
    );
    // list says what it is, and latest passes it over, saying so.
    let list = sb.xtask(&["list", "--env", "local"]);
    list.assert_ok();
    assert!(list.stdout.contains("damaged"), "{}", list.stdout);
    let run = sb.xtask(&["restore", "latest:local", "--to", "local", "--dry-run"]);
    assert_ne!(run.code, Some(0), "{}", run.all());
    assert!(run.stderr.contains("is damaged"), "{}", run.all());
}

/// A manifest edited after its backup to list other migrations, or
/// another key in force, than the dump's own rows hold: verify finds the
/// backup BAD, naming the field and no value, and restore refuses it
/// before anything is written.
#[test]
fn a_manifest_that_misdescribes_its_dumps_migrations_or_key_is_bad() {
    let (sb, name) = sandbox_with_a_backup();
    let manifest_path = sb.backups().join(name.replace(".sql", ".manifest.json"));
    let honest = std::fs::read_to_string(&manifest_path).unwrap();
    type Forge = fn(&mut serde_json::Value);
    let forgeries: [(&str, Forge); 2] = [
        ("d1_migrations rows", |m| {
            let last = m["migrations"].as_array_mut().unwrap().pop().unwrap();
            m["migration_sha256"]
                .as_object_mut()
                .unwrap()
                .remove(last.as_str().unwrap());
        }),
        ("data-encryption key", |m| {
            m["encryption_key"] =
                serde_json::json!({"key_id": "dek-forged", "fingerprint": "sha256:forged"});
        }),
    ];
    for (field, forge) in forgeries {
        let mut m: serde_json::Value = serde_json::from_str(&honest).unwrap();
        forge(&mut m);
        std::fs::write(&manifest_path, m.to_string()).unwrap();
        let run = sb.xtask(&["verify", &name, "--no-record"]);
        assert_eq!(run.code, Some(1), "{field}: {}", run.all());
        assert!(run.all().contains(field), "{field}: {}", run.all());
        assert!(!run.all().contains("forged"), "{}", run.all());
        let before = sb.live_row_counts();
        sb.xtask(&["restore", &name, "--to", "local", "--replace", "--yes"])
            .assert_refused("its manifest does not describe it");
        assert_eq!(sb.live_row_counts(), before, "{field}");
    }
    std::fs::write(&manifest_path, &honest).unwrap();
    sb.xtask(&["verify", &name, "--no-record"]).assert_ok();
}

/// A newest backup replaced by a file of the same size: its size says
/// nothing, so status and `latest` hash the newest verified file. status
/// fails, and `latest` passes it over, saying why (atkN).
#[test]
fn a_newest_backup_replaced_by_one_of_the_same_size_is_not_counted() {
    let (sb, name) = sandbox_with_a_backup();
    keep_local_within_26h(&sb);
    let file = sb.backups().join(&name);
    let size = std::fs::metadata(&file).unwrap().len() as usize;
    std::fs::write(&file, "-".repeat(size)).unwrap();

    let run = sb.xtask(&["status", "--env", "local"]);
    assert_ne!(run.code, Some(0), "status passed: {}", run.all());
    assert!(
        run.stdout.contains(&format!("{name}: BAD")),
        "{}",
        run.all()
    );
    let run = sb.xtask(&["restore", "latest:local", "--to", "local", "--dry-run"]);
    assert_ne!(run.code, Some(0), "{}", run.all());
    assert!(
        run.stderr
            .contains("recorded as verified, but its file's sha256 is not the one recorded"),
        "{}",
        run.all()
    );
}

/// backups.toml giving local a max_age, so that status judges freshness.
fn keep_local_within_26h(sb: &Sandbox) {
    std::fs::write(
        sb.path().join("backups.toml"),
        "[local]\nmax_age = \"26h\"\n",
    )
    .unwrap();
}

/// Lets a reader still blocked on `fifo` (an orphaned child of a killed
/// run) see its end, so no process outlives the test.
fn release_fifo(fifo: &Path) {
    use std::os::unix::fs::OpenOptionsExt;
    let _ = std::fs::OpenOptions::new()
        .write(true)
        .custom_flags(libc::O_NONBLOCK)
        .open(fifo);
}

#[test]
fn an_identity_file_that_is_a_fifo_never_hangs_verify() {
    // The README: every file the tool reads, an identity included, must be
    // a regular file, "a FIFO or a device put in its place is refused,
    // naming it, instead of hanging the command". `--identity` (or
    // QBTIME_AGE_IDENTITY) naming a FIFO, say a path left over from a
    // secret manager's process substitution: the identity's own check
    // ignores that it cannot read it as a file, and age then blocks on it
    // for ever, the verify with it.
    let sb = Sandbox::new();
    sb.apply_migrations();
    sb.execute_sql(SEED_SQL);
    let keys = tempfile::tempdir().unwrap();
    let key = keys.path().join("backup-key.txt");
    let recipient = keygen_recipient(&sb.xtask(&["keygen", "--out", key.to_str().unwrap()]));
    sb.xtask(&["backup", "local", "--encrypt-to", &recipient])
        .assert_ok();
    let name = sb
        .backup_files()
        .into_iter()
        .find(|n| n.ends_with(".sql.zst.age"))
        .expect("an encrypted backup");
    let fifo = keys.path().join("identity.fifo");
    mkfifo(&fifo);
    let path = sb.backups().join(&name);
    let run = run_or_kill(
        &sb,
        &[
            "verify",
            path.to_str().unwrap(),
            "--identity",
            fifo.to_str().unwrap(),
        ],
        Duration::from_secs(60),
    );
    release_fifo(&fifo);
    let run = run.unwrap_or_else(|| {
        panic!(
            "`xtask verify --identity {}` was still blocked on the FIFO after 60 s",
            fifo.display()
        )
    });
    assert_eq!(run.code, Some(2), "{}", run.all());
    assert!(
        run.stderr.contains("identity.fifo"),
        "the FIFO should be named:\n{}",
        run.all()
    );
    // Nothing was recorded of a verify that could not run.
    let m = manifest_for(&sb, &name);
    assert_eq!(m["verification"]["outcome"], "good", "{m:#}");
}

#[test]
fn list_never_shows_a_backup_whose_environment_only_looks_like_prod() {
    // The README: no printed field of a manifest holds "an invisible
    // formatting one (... a zero-width space, which makes two names look
    // alike)". `names::unprintable` knows U+200B..U+200F, U+2060..U+2069
    // and U+FEFF, but not the other characters that print as nothing: the
    // Mongolian vowel separator U+180E, the combining grapheme joiner
    // U+034F, the tag characters U+E0000..U+E007F. A local backup relabelled
    // `prod` plus one of them (its name and its manifest's environment
    // agree, as the checks require) is listed as a row that reads, on the
    // screen, exactly as a prod backup of qbtime_db_local.
    for invisible in ['\u{180e}', '\u{34f}', '\u{e0020}'] {
        let (sb, name) = sandbox_with_a_backup();
        let stem = name.strip_suffix(".sql").unwrap();
        let stamp = stem.strip_prefix("backup-local-").unwrap();
        let env = format!("prod{invisible}");
        let new_stem = format!("backup-{env}-{stamp}");
        let mut m = manifest_for(&sb, &name);
        m["environment"] = env.clone().into();
        m["file"]["name"] = format!("{new_stem}.sql").into();
        std::fs::rename(
            sb.backups().join(&name),
            sb.backups().join(format!("{new_stem}.sql")),
        )
        .unwrap();
        std::fs::remove_file(sb.backups().join(format!("{stem}.manifest.json"))).unwrap();
        std::fs::write(
            sb.backups().join(format!("{new_stem}.manifest.json")),
            serde_json::to_string_pretty(&m).unwrap(),
        )
        .unwrap();
        let run = sb.xtask(&["list"]);
        assert!(
            !run.stdout.lines().any(|l| l.contains(&new_stem)),
            "list shows a backup whose environment prints as `prod` (U+{:04X} after it):\n{}",
            u32::from(invisible),
            run.all()
        );
        assert!(
            run.stderr.contains("invisible formatting character"),
            "{}",
            run.all()
        );
    }
}

/// The journals in the backup directory are the tool's own records, which
/// it writes in place and never through a link: one that is a symbolic
/// link to a file elsewhere is not read as the record. status says so,
/// and reports neither the Time Travel restore nor the offsite lock that
/// the linked files hold.
#[test]
fn status_never_reads_a_journal_that_is_a_link_to_a_file_elsewhere() {
    let sb = Sandbox::new();
    let decoys = Decoys::plant(sb.path());
    std::fs::create_dir(sb.backups()).unwrap();
    for (name, line) in [
        (
            "time-travel.jsonl",
            r#"{"at":"2026-06-01T00:00:00Z","environment":"prod","database":"qbtime_db_prod","status":"done","restore_to":"00000085-0000024c-00004c6d-8e61117bf38d7adb71b934ebbf891683","bookmark_before":"00000085-0000024c-00004c6d-8e61117bf38d7adb71b934ebbf891683"}"#,
        ),
        (
            "offsite-locks.jsonl",
            r#"{"at":"2026-06-01T00:00:00Z","environment":"prod","bucket":"qbtime-d1-backups","rule":"qbtime-prod-lock-372d","prefix":"prod/","days":372}"#,
        ),
    ] {
        let elsewhere = decoys.path(name);
        std::fs::write(&elsewhere, format!("{line}\n")).unwrap();
        std::os::unix::fs::symlink(&elsewhere, sb.backups().join(name)).unwrap();
    }
    let before = decoys.hashes();

    let run = sb.xtask(&["status", "--env", "prod"]);
    assert!(
        run.stdout.contains("last Time Travel restore  none")
            && run.stdout.contains("offsite lock              not locked"),
        "a linked journal was read as the tool's record:\n{}",
        run.all()
    );
    for name in ["time-travel.jsonl", "offsite-locks.jsonl"] {
        assert!(
            run.stderr.contains(name) && run.stderr.contains("symbolic link"),
            "the linked {name} was not named:\n{}",
            run.all()
        );
    }
    assert_eq!(decoys.hashes(), before);
}

#[test]
fn a_manifest_that_is_a_fifo_is_named_as_one_by_verify_and_restore_never_taken_for_a_missing_one() {
    // The README: a FIFO put in a manifest's place "is refused, naming it".
    // verify and restore said the backup "has no manifest beside it" and
    // told the operator to pass --no-manifest, which skips every check the
    // manifest binds: the manifest is there, and is not a file.
    let (sb, name) = sandbox_with_a_backup();
    let stem = name.strip_suffix(".sql").unwrap();
    let manifest = sb.backups().join(format!("{stem}.manifest.json"));
    std::fs::remove_file(&manifest).unwrap();
    mkfifo(&manifest);
    let path = sb.backups().join(&name);
    let path = path.to_str().unwrap();
    for args in [
        &["verify", path][..],
        &["restore", path, "--to", "local", "--replace", "--dry-run"][..],
    ] {
        let run = run_or_kill(&sb, args, Duration::from_secs(60))
            .unwrap_or_else(|| panic!("`xtask {}` was still blocked on the FIFO", args.join(" ")));
        assert_eq!(run.code, Some(2), "{}", run.all());
        assert!(
            run.stderr.contains("is not a regular file")
                && run.stderr.contains(&format!("{stem}.manifest.json")),
            "`xtask {}` should name the FIFO as no regular file:\n{}",
            args.join(" "),
            run.all()
        );
        assert!(
            !run.stderr.contains("no manifest beside it") && !run.stderr.contains("--no-manifest"),
            "`xtask {}` took the FIFO for a missing manifest:\n{}",
            args.join(" "),
            run.all()
        );
    }
}

#[test]
fn a_wrangler_configuration_that_is_a_fifo_is_named_as_one_never_as_missing() {
    // The README: a FIFO put in `wrangler.toml`'s place "is refused,
    // naming it". `--config` naming one said it "does not exist", and one
    // in the checkout said there was no checkout at all.
    let sb = Sandbox::new().into_checkout();
    let fifo = sb.path().join("wrangler.jsonc");
    mkfifo(&fifo);
    let mut status = std::process::Command::new(env!("CARGO_BIN_EXE_xtask"));
    status
        .args(["--config", fifo.to_str().unwrap(), "status"])
        .current_dir(sb.path());
    let run = command_or_kill(status, Duration::from_secs(60))
        .expect("status was still blocked on the FIFO");
    assert_eq!(run.code, Some(2), "{}", run.all());
    assert!(
        run.stderr.contains("wrangler.jsonc") && run.stderr.contains("not a regular file"),
        "--config naming a FIFO should be named as no regular file:\n{}",
        run.all()
    );
    std::fs::remove_file(&fifo).unwrap();
    let config = sb.path().join("wrangler.toml");
    std::fs::remove_file(&config).unwrap();
    mkfifo(&config);
    let run = sb.xtask_in_checkout(&["status"]);
    assert_eq!(run.code, Some(2), "{}", run.all());
    assert!(
        run.stderr.contains("wrangler.toml") && run.stderr.contains("not a regular file"),
        "a FIFO as the checkout's wrangler.toml should be named as no regular file:\n{}",
        run.all()
    );
}

/// A manifest that is not UTF-8 is ignored with the fix said once: the
/// reader's error already says to move it aside.
#[test]
fn a_manifest_ignored_for_its_bytes_is_told_to_be_moved_aside_once() {
    let sb = Sandbox::new();
    std::fs::create_dir(sb.backups()).unwrap();
    std::fs::write(
        sb.backups()
            .join("backup-local-20261130-0317.manifest.json"),
        b"{\xff\xfe}",
    )
    .unwrap();
    let run = sb.xtask(&["list"]);
    let said = run.stderr.to_ascii_lowercase();
    assert!(
        said.contains("backup-local-20261130-0317.manifest.json"),
        "{}",
        run.all()
    );
    assert_eq!(said.matches("move it aside").count(), 1, "{}", run.all());
}

/// atkDQ: the Time Travel journal records the `database_id` each restore
/// went to. After prod's database was made again under the same name (a
/// new id in `wrangler.toml`), a restore of the old database that was
/// killed before it finished was still told as prod's: "the database may
/// or may not be back", with `time-travel restore prod --bookmark <the old
/// database's bookmark>` to paste as the way back, which would take the
/// new database to a bookmark of another. A journal line whose id is not
/// the configuration's is another database's restore.
#[test]
fn status_never_offers_another_databases_bookmark_as_prods_way_back() {
    let sb = Sandbox::new();
    let bookmark = "00000085-0000024c-00004c6d-8e61117bf38d7adb71b934ebbf891683";
    std::fs::create_dir_all(sb.backups()).unwrap();
    let line = serde_json::json!({
        "at": (chrono::Utc::now() - chrono::Duration::days(2)).to_rfc3339(),
        "started_at": (chrono::Utc::now() - chrono::Duration::days(2)).to_rfc3339(),
        "environment": "prod",
        "database": "qbtime_db_prod",
        "database_id": "11111111-2222-4333-8444-555555555555",
        "status": "started",
        "restore_to": bookmark,
        "bookmark_before": bookmark,
    });
    std::fs::write(sb.backups().join("time-travel.jsonl"), format!("{line}\n")).unwrap();
    for args in [
        &["status", "--env", "prod"][..],
        &["status", "--env", "prod", "--json"],
    ] {
        let run = sb.xtask(args);
        assert!(
            !run.all().contains(bookmark),
            "status offers the old database's bookmark as prod's way back:\n{}",
            run.all()
        );
    }
}

/// LG: `list` redacted a manifest's whole `reason`, however long: 5.8 s
/// for 4 MB, 23 s for 20 MB, Ctrl-C ignored meanwhile. A manifest is a
/// small file this tool writes: one over its limit (2 MiB) is refused as
/// not one of the tool's, naming it and the fix, before anything reads
/// it, by `list` and every other command (they read it in one place).
#[test]
fn a_manifest_over_the_size_limit_is_refused_before_it_is_read() {
    let (sb, name) = sandbox_with_a_backup();
    edit_manifest(&sb, &name, |m| {
        m["reason"] = "a long reason ".repeat(600_000).into();
    });
    let manifest = name.replace(".sql", ".manifest.json");
    let run = run_or_kill(&sb, &["list", "--json"], Duration::from_secs(120))
        .expect("list ran past two minutes on an 8 MB manifest");
    run.assert_ok();
    assert!(!run.stdout.contains(&name), "{}", run.stdout);
    assert!(
        run.stderr.contains(&manifest)
            && run.stderr.contains("larger than 2 MiB")
            && run.stderr.contains("move it aside"),
        "{}",
        run.all()
    );
    sb.xtask(&["verify", &name])
        .assert_refused("larger than 2 MiB");
}

/// LG, rvBC 1: a manifest's `reason` over 4 KiB (a manifest under the
/// 2 MiB cap held a 2 MB one, which `list` took seconds over and printed
/// across the screen) is printed cut to 4096 bytes, ending in `…`; the
/// manifest is read as any other, since older versions wrote reasons as
/// long (a `with-backup` of a long command), and refusing it made prune
/// refuse the whole directory. `backup --reason` refuses one as long up
/// front, and nothing is written.
#[test]
fn a_reason_over_4_kib_is_printed_cut_and_refused_by_backup_up_front() {
    fn reasons_in(v: &serde_json::Value) -> Vec<&str> {
        match v {
            serde_json::Value::Object(o) => { o.iter() }
                .flat_map(|(k, v)| match (k.as_str(), v.as_str()) {
                    ("reason", Some(r)) => vec![r],
                    _ => reasons_in(v),
                })
                .collect(),
            serde_json::Value::Array(a) => a.iter().flat_map(reasons_in).collect(),
            _ => Vec::new(),
        }
    }
    let (sb, name) = sandbox_with_a_backup();
    let long = "why ".repeat(1100);
    edit_manifest(&sb, &name, |m| m["reason"] = long.as_str().into());
    let run = sb.xtask(&["list", "--env", "local", "-v"]);
    run.assert_ok();
    assert!(!run.stderr.contains("ignored"), "{}", run.all());
    assert!(
        run.stdout.contains(&name),
        "the backup is not listed:\n{}",
        run.all()
    );
    assert!(!run.all().contains(&long), "the reason was printed whole");
    assert!(
        run.stdout.contains("why why"),
        "the reason is not shown:\n{}",
        run.all()
    );
    let json = sb.xtask(&["list", "--env", "local", "--json"]);
    json.assert_ok();
    let doc: serde_json::Value = serde_json::from_str(&json.stdout).unwrap();
    let reasons = reasons_in(&doc);
    assert!(
        reasons.len() == 1 && reasons[0].len() <= 4096 && reasons[0].ends_with('…'),
        "--json does not give the reason cut to 4096 bytes: {:?}",
        reasons.iter().map(|r| r.len()).collect::<Vec<_>>()
    );
    let prune = sb.xtask(&["prune", "--env", "local", "--dry-run"]);
    prune.assert_ok();
    let before = sb.backup_files();
    let refused = sb.xtask(&["backup", "local", "--reason", &long]);
    assert_eq!(refused.code, Some(2), "{}", refused.all());
    assert!(
        refused.stderr.contains("--reason") && refused.stderr.contains("4096"),
        "{}",
        refused.all()
    );
    assert_eq!(sb.backup_files(), before, "a backup was written");
}

/// LV: the restore journal (`backups/restores.jsonl`) is a file anyone
/// who can write the backup directory may have written. A forged or
/// broken line never makes `status` give the newest backup's migrations
/// for a database a restore may have changed since: a line cut short, a
/// line dated before the backup written after one dated after it, each
/// leaves the migrations `unknown`; and a backup name holding an escape
/// code is never printed raw.
#[test]
fn a_forged_or_broken_restore_journal_never_makes_status_give_the_backups_migrations() {
    let (sb, backup) = sandbox_with_a_backup();
    let journal = sb.backups().join("restores.jsonl");
    let now = chrono::Utc::now().to_rfc3339();
    let line = |at: &str, backup: &str| {
        serde_json::json!({
            "at": at, "started_at": at, "environment": "local",
            "database": "qbtime_db_local", "backup": backup, "status": "done",
        })
        .to_string()
    };
    let cases = [
        ("an escape in its name", line(&now, "evil\u{1b}[31m.sql")),
        (
            "a line cut short",
            format!("{{\"at\": \"{now}\", \"environment\": \"lo"),
        ),
        (
            "a line dated long ago after one dated now",
            format!(
                "{}\n{}",
                line(&now, &backup),
                line("2001-01-01T00:00:00Z", &backup)
            ),
        ),
    ];
    for (what, text) in cases {
        std::fs::write(&journal, format!("{text}\n")).unwrap();
        let run = sb.xtask(&["status", "--env", "local"]);
        run.assert_ok();
        let migrations = run.stdout_line_with("migrations ");
        assert!(
            migrations.contains("unknown") && !run.stdout.contains("all applied"),
            "{what}: {}",
            run.all()
        );
        assert!(!run.all().contains('\u{1b}'), "{what}: {}", run.all());
    }
}

/// rvBX 1: a journal line dated in the future hid the last restore: after
/// a real `done`, a forged `done` dated 2099 and then a real `interrupted`
/// dated now (its outcome unknown), `status` took the 2099 line as the
/// last restore, `"ok": true`, exit 0. The last restore is the journal's
/// last line, not the latest date a line claims; a line dated after now
/// is never taken as the last, and is said so; where the two disagree the
/// worse outcome wins.
#[test]
fn a_restore_journal_line_dated_in_the_future_never_hides_the_last_restore() {
    let (sb, backup) = sandbox_with_a_backup();
    let journal = sb.backups().join("restores.jsonl");
    let line = |at: &str, status: &str| {
        serde_json::json!({
            "at": at, "started_at": at, "environment": "local",
            "database": "qbtime_db_local", "backup": backup, "mode": "replace",
            "location": "local", "status": status,
        })
        .to_string()
    };
    let now = chrono::Utc::now().to_rfc3339();
    let lines = [
        line(&now, "started"),
        line(&now, "done"),
        line("2099-01-01T00:00:00Z", "done"),
        line(&chrono::Utc::now().to_rfc3339(), "interrupted"),
    ];
    std::fs::write(&journal, lines.join("\n") + "\n").unwrap();
    let json = sb.xtask(&["status", "--env", "local", "--json"]);
    assert_eq!(json.code, Some(1), "{}", json.all());
    let doc: serde_json::Value = serde_json::from_str(&json.stdout).unwrap();
    assert_eq!(doc["ok"], false, "{doc:#}");
    let last = &doc["environments"][0]["last_restore"];
    assert_eq!(last["outcome"], "unknown", "{doc:#}");
    assert!(!last["at"].as_str().unwrap().starts_with("2099"), "{doc:#}");
    let text = sb.xtask(&["status", "--env", "local"]);
    assert_eq!(text.code, Some(1), "{}", text.all());
    let last = text.stdout_line_with("last restore ");
    assert!(
        !last.contains("2099") && last.contains("interrupted"),
        "{}",
        text.all()
    );
    for said in [
        "line 3 of ",
        "is dated 2099-01-01 00:00 UTC, after now",
        "never taken as the last restore",
    ] {
        assert!(text.stderr.contains(said), "{said:?}: {}", text.all());
    }
}

/// OB 2: the restore journal records each restore under the name of the
/// environment it went into; the configuration refuses two environments on
/// one database, but a database's name changes (`APP_ENV` renamed, or the
/// configuration moved onto a database another name restored into). A
/// restore of local's database recorded as `dev` was told by `status
/// --env local` as local's own, nothing saying so. It is still the
/// database's last restore (its data changed, whatever the name), and says
/// the name it was recorded as: `recorded as dev`, `last_restore.recorded_as`;
/// one recorded under the environment's own name says nothing more.
#[test]
fn status_says_the_name_a_restore_of_its_database_was_recorded_as() {
    let (sb, backup) = sandbox_with_a_backup();
    let journal = sb.backups().join("restores.jsonl");
    let line = |env: &str| {
        let at = chrono::Utc::now().to_rfc3339();
        serde_json::json!({
            "at": at, "started_at": at, "environment": env,
            "database": "qbtime_db_local",
            "database_id": "00000000-0000-4000-8000-000000000000",
            "backup": backup, "mode": "replace", "location": "local", "status": "done",
        })
        .to_string()
    };
    std::fs::write(&journal, line("dev") + "\n").unwrap();
    let text = sb.xtask(&["status", "--env", "local"]);
    text.assert_ok();
    let last = text.stdout_line_with("last restore ");
    assert!(last.contains(": done (recorded as dev)"), "{}", text.all());
    let json = sb.xtask(&["status", "--env", "local", "--json"]);
    let doc: serde_json::Value = serde_json::from_str(&json.stdout).unwrap();
    assert_eq!(
        doc["environments"][0]["last_restore"]["recorded_as"], "dev",
        "{doc:#}"
    );
    std::fs::write(&journal, line("local") + "\n").unwrap();
    let own = sb.xtask(&["status", "--env", "local", "--json"]);
    let doc: serde_json::Value = serde_json::from_str(&own.stdout).unwrap();
    let last = &doc["environments"][0]["last_restore"];
    assert_eq!(last["outcome"], "restored", "{doc:#}");
    assert!(last.get("recorded_as").is_none(), "{doc:#}");
    let text = sb.xtask(&["status", "--env", "local"]);
    assert!(!text.stdout.contains("recorded as"), "{}", text.all());
}

/// rvBV 2: `doctor` said "everything a backup needs is in place" (exit 0)
/// while a file in backups/ stopped every backup (the lock a symbolic link
/// or a FIFO), every restore (its journal one), every migrate (its
/// journal), or every prune (a directory at a manifest's name). It fails
/// now (exit 1), each file named in the words the command it stops uses,
/// with their fix; the file a link leads to is left as it was.
#[test]
fn doctor_fails_on_each_file_in_backups_that_a_command_refuses() {
    let sb = Sandbox::new();
    std::fs::create_dir(sb.backups()).unwrap();
    std::fs::set_permissions(
        sb.backups(),
        std::os::unix::fs::PermissionsExt::from_mode(0o700),
    )
    .unwrap();
    let baseline = sb.xtask(&["doctor"]);
    assert_eq!(baseline.code, Some(0), "{}", baseline.all());
    let outside = tempfile::tempdir().unwrap();
    let decoy = outside.path().join("decoy");
    std::fs::write(&decoy, "not the tool's\n").unwrap();
    let link = |name: &str| std::os::unix::fs::symlink(&decoy, sb.backups().join(name)).unwrap();
    let fifo = |name: &str| mkfifo(&sb.backups().join(name));
    let manifest_dir = |name: &str| std::fs::create_dir(sb.backups().join(name)).unwrap();
    type Plant<'a> = &'a dyn Fn(&str);
    let cases: &[(&str, Plant, &str)] = &[
        (
            ".lock",
            &link,
            "is a symbolic link; this tool never follows one there. Remove the link",
        ),
        (
            ".lock",
            &fifo,
            "is not a regular file (a pipe); this tool reads and writes only regular files there. Move it aside",
        ),
        (
            "restores.jsonl",
            &link,
            "is a symbolic link; this tool never follows one there. Remove the link",
        ),
        ("restores.jsonl", &fifo, "is not a regular file (a pipe)"),
        (
            "migrations-applied.jsonl",
            &link,
            "is a symbolic link; this tool never follows one there. Remove the link",
        ),
        (
            "migrations-applied.jsonl",
            &fifo,
            "is not a regular file (a pipe)",
        ),
        ("time-travel.jsonl", &fifo, "is not a regular file (a pipe)"),
        ("offsite-locks.jsonl", &link, "is a symbolic link"),
        (
            "backup-local-20250101-0000.manifest.json",
            &manifest_dir,
            "cannot be read as a manifest and is ignored",
        ),
    ];
    for (name, plant, words) in cases {
        plant(name);
        let run = run_or_kill(&sb, &["doctor"], Duration::from_secs(120)).expect("doctor blocked");
        assert_eq!(run.code, Some(1), "{name}: {}", run.all());
        let failed = run.stdout_line_with("[FAIL]");
        assert!(
            failed.contains(&format!("backups/{name}")) && failed.contains(words),
            "{name}: {}",
            run.all()
        );
        assert!(
            !run.stdout.contains("everything a backup needs"),
            "{}",
            run.all()
        );
        assert_eq!(
            std::fs::read_to_string(&decoy).unwrap(),
            "not the tool's\n",
            "{name}"
        );
        let path = sb.backups().join(name);
        match std::fs::symlink_metadata(&path).unwrap().is_dir() {
            true => std::fs::remove_dir(&path).unwrap(),
            false => std::fs::remove_file(&path).unwrap(),
        }
    }
}

/// rvBV 3: a FIFO at the migrations journal made `migrate local --dry-run`
/// exit 2 with a bare "No such device or address (os error 6)"; it is
/// refused (exit 2, nothing applied) in the words every other journal
/// uses: what it is, and to move it aside.
#[test]
fn a_fifo_at_the_migrations_journal_is_named_a_pipe_by_a_dry_run_migrate() {
    let sb = Sandbox::new();
    std::fs::create_dir(sb.backups()).unwrap();
    mkfifo(&sb.backups().join("migrations-applied.jsonl"));
    let run = run_or_kill(
        &sb,
        &["migrate", "local", "--dry-run"],
        Duration::from_secs(120),
    )
    .expect("migrate blocked");
    assert_eq!(run.code, Some(2), "{}", run.all());
    assert!(
        run.stderr.contains("migrations-applied.jsonl")
            && run.stderr.contains("is not a regular file (a pipe)")
            && run.stderr.contains("Move it aside")
            && !run.stderr.contains("os error"),
        "{}",
        run.all()
    );
}
