//! atkBN: a regression sweep of the trust boundary. Inputs someone else may
//! have written, read by a command other than the one their tests use.

use crate::common::app::App;
use crate::common::remote::Remote;
use crate::common::*;

/// The operator ran `cargo xtask drill --yes` with QBTIME_APP_URL and
/// QBTIME_DEVOPS_TOKEN set, and the app (whose replies are not this
/// tool's: a compromised or buggy app, or anything answering at that URL)
/// answered its audit check with a 500 whose JSON `error` holds line
/// breaks, a terminal escape and a line worded as the drill's own
/// `  [pass] app …` result. The drill printed that text as it was, so its
/// output showed `[pass]` lines for checks that failed and the escape
/// reached the terminal. It should print the app's message on its own
/// line only, with control characters written as spaces (as `--reason` is
/// held: `names::breaks_text`), so no line of the drill's output is the
/// app's. Cause: `xtask/src/commands/drill.rs`, `judge` (its `said`
/// quotes the decoded `error`/`message` as is) and `Drill::app`, which
/// prints it with `say!`, whose later lines are not indented.
#[test]
fn an_apps_reply_never_prints_a_line_of_the_drills_own() {
    let remote = Remote::new("");
    let home = tempfile::tempdir().unwrap();
    remote.backup_prod(home.path());
    let app = App::start();
    let forged = "GET /api/v1/auth/session answered 200";
    for path in [
        "/api/v1/platform/verify-audit",
        "/api/v1/auth/session",
        "/api/v1/reports/smoke",
    ] {
        app.answer(
            path,
            500,
            &format!(
                r#"{{"ok":false,"error":"down\n  [pass] app sign-in: {forged}\u001b[2K\r  [pass] app report: ok"}}"#
            ),
        );
    }
    let out = remote
        .xtask_command(home.path(), &["drill", "--yes"])
        .env("QBTIME_APP_URL", app.url())
        .env("QBTIME_DEVOPS_TOKEN", "devops-canary-token-77aa")
        .env_remove("QBTIME_DRILL_SIGNIN_PATH")
        .env_remove("QBTIME_DRILL_REPORT_PATH")
        .output()
        .unwrap();
    let run = Run::from_output(out);
    assert!(!run.ok, "failing app checks fail the drill:\n{}", run.all());
    assert!(
        !run.all()
            .lines()
            .any(|l| l.trim_start().starts_with("[pass] app")),
        "the app's reply printed a line of the drill's own:\n{}",
        run.all()
    );
    assert!(
        !run.all().contains('\u{1b}') && !run.all().contains('\r'),
        "a terminal escape from the app's reply was printed:\n{}",
        run.all().escape_debug()
    );
    assert!(!run.all().contains("devops-canary-token-77aa"));
}

/// The operator ran `cargo xtask rehearse --from <backup>` on a backup
/// whose file was changed after its manifest was written (a row added to
/// the `.sql`). verify and restore refuse such a file (it no longer
/// matches its manifest's sha256); rehearse loaded it into its prod and
/// reported the rehearsal of that backup as passed, rows planted after
/// the fact included. It should refuse it before anything starts, naming
/// the file and that it no longer matches its manifest (exit 3, as restore).
/// Cause: `xtask/src/commands/rehearse.rs`, the `From::Backup` load (it
/// reads `Source::open`, not `open_checked` against the manifest, and
/// never compares the file with its manifest).
#[test]
fn a_rehearsal_never_loads_a_backup_that_no_longer_matches_its_manifest() {
    let sb = Sandbox::new();
    sb.apply_migrations();
    sb.execute_sql(SEED_SQL);
    sb.xtask(&["backup", "local"]).assert_ok();
    let name = only_backup(&sb);
    let source = sb.backups().join(&name);
    let mut text = std::fs::read_to_string(&source).unwrap();
    text.push_str(
        "INSERT INTO accounts (email, display_name, password_hash) VALUES ('planted@example.com', 'Planted', 'x');\n",
    );
    std::fs::write(&source, text).unwrap();
    let run = sb.xtask(&["rehearse", "--from", source.to_str().unwrap()]);
    // Refused by a guard (exit 3), as restore and upload refuse it.
    assert_eq!(
        run.code,
        Some(3),
        "a rehearsal of a file that no longer matches its manifest ran:\n{}",
        run.all()
    );
    assert!(
        run.all().contains("manifest"),
        "the refusal names the manifest:\n{}",
        run.all()
    );
}

/// A stand-in app on 127.0.0.1 that answers every request with a 500 whose
/// body runs on for `cap` bytes (then closes). Returns its URL and the
/// bytes each connection got written to it before its reader went away.
fn an_app_that_answers_without_end(
    cap: u64,
) -> (String, std::sync::Arc<std::sync::Mutex<Vec<u64>>>) {
    use std::io::{Read, Write};
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    let sent = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
    let record = std::sync::Arc::clone(&sent);
    std::thread::spawn(move || {
        for stream in listener.incoming() {
            let Ok(mut stream) = stream else { continue };
            let record = std::sync::Arc::clone(&record);
            std::thread::spawn(move || {
                let mut head = Vec::new();
                let mut byte = [0u8; 1];
                while !head.ends_with(b"\r\n\r\n") && stream.read(&mut byte).unwrap_or(0) == 1 {
                    head.push(byte[0]);
                }
                let chunk = vec![b'a'; 1 << 20];
                let mut total = 0u64;
                if stream
                    .write_all(
                        b"HTTP/1.1 500 Internal Server Error\r\nContent-Type: application/json\r\n\
                          Connection: close\r\n\r\n",
                    )
                    .is_ok()
                {
                    while total < cap && stream.write_all(&chunk).is_ok() {
                        total += chunk.len() as u64;
                    }
                }
                record.lock().unwrap().push(total);
            });
        }
    });
    (url, sent)
}

/// atkBO: the operator ran `cargo xtask drill --yes` with QBTIME_APP_URL
/// pointing at an app (whose replies are not this tool's) that answered
/// its checks with a body that does not end. `scripts/app-check.mjs` says
/// it cuts the body at 1 MiB, but it cuts it only after `response.text()`
/// has read all of it into memory: live, against a body without end, its
/// node grew to 4.8 GB of resident memory in 25 seconds (the call's own
/// timeout is 60), so a drill could take the machine's memory before it
/// said "no answer". It should stop reading at 1 MiB and judge the status
/// it got. Here the body ends after 256 MiB, each of which the drill read.
/// Cause: `scripts/app-check.mjs` (reads the whole body, then slices it).
#[test]
fn an_apps_reply_without_end_is_read_no_further_than_the_mib_it_keeps() {
    let remote = Remote::new("");
    let home = tempfile::tempdir().unwrap();
    remote.backup_prod(home.path());
    let (url, sent) = an_app_that_answers_without_end(256 << 20);
    let out = remote
        .xtask_command(home.path(), &["drill", "--yes"])
        .env("QBTIME_APP_URL", &url)
        .env("QBTIME_DEVOPS_TOKEN", "devops-canary-token-31bo")
        .env_remove("QBTIME_DRILL_SIGNIN_PATH")
        .env_remove("QBTIME_DRILL_REPORT_PATH")
        .output()
        .unwrap();
    let run = Run::from_output(out);
    assert!(!run.ok, "a 500 fails the drill:\n{}", run.all());
    assert!(
        run.all().contains("answered 500"),
        "the app's status is what the drill judges:\n{}",
        run.all()
    );
    assert!(!run.all().contains("devops-canary-token-31bo"));
    let sent = sent.lock().unwrap().clone();
    assert!(!sent.is_empty(), "the app was never called:\n{}", run.all());
    assert!(
        sent.iter().all(|&b| b <= 32 << 20),
        "the drill read {:?} MiB of the app's replies to keep 1 MiB of each:\n{}",
        sent.iter().map(|b| b >> 20).collect::<Vec<_>>(),
        run.all()
    );
}

/// atkBO: a manifest in backups/ that is a hard link, or a symbolic link,
/// to a file outside it (here a copy of the manifest itself, so that it
/// checks out). `verify` records its verdict and `upload` its offsite copy
/// in the manifest (`Manifest::update`), and `prune` reads it: none of them
/// changes the file outside, and none prints a canary secret. The symbolic
/// link was read where it led and the backup verified GOOD, although the
/// README says a link there stops the command: now `verify` and `upload`
/// refuse it (exit 2), and `list` and `prune` pass its backup over.
#[test]
fn a_manifest_linked_to_a_file_outside_the_backups_is_never_written_through() {
    let remote = Remote::new("");
    remote.server.add_bucket("qbtime-d1-backups");
    let home = tempfile::tempdir().unwrap();
    let name = remote.backup_prod(home.path());
    let sb = &remote.sb;
    let manifest = sb.backups().join(name.replace(".sql", ".manifest.json"));
    let outside = tempfile::tempdir().unwrap();
    let decoy = outside.path().join("decoy.manifest.json");
    std::fs::copy(&manifest, &decoy).unwrap();
    let before = sha256_hex(&std::fs::read(&decoy).unwrap());
    let canary = crate::common::remote::TOKEN;
    let file = sb.backups().join(&name);
    for link in ["hard", "symbolic"] {
        std::fs::remove_file(&manifest).unwrap();
        if link == "hard" {
            std::fs::hard_link(&decoy, &manifest).unwrap();
        } else {
            std::os::unix::fs::symlink(&decoy, &manifest).unwrap();
        }
        for args in [
            vec!["verify", file.to_str().unwrap()],
            vec!["upload", name.as_str(), "--env", "prod"],
            vec!["prune", "--env", "prod", "--yes"],
        ] {
            let out = remote.xtask_command(home.path(), &args).output().unwrap();
            let run = Run::from_output(out);
            assert!(!run.all().contains(canary), "{args:?}:\n{}", run.all());
            // A manifest that is a symbolic link is not read where it leads
            // (the README's "a symbolic link there stops the command").
            if link == "symbolic" && args[0] != "prune" {
                assert_eq!(run.code, Some(2), "{args:?}:\n{}", run.all());
                assert!(
                    run.stderr.contains("is a symbolic link"),
                    "{args:?}:\n{}",
                    run.all()
                );
            }
            assert_eq!(
                sha256_hex(&std::fs::read(&decoy).unwrap()),
                before,
                "{link} link: `{}` changed the file outside backups/:\n{}",
                args.join(" "),
                run.all()
            );
        }
    }
}

/// atkBO (held): an offsite index someone else rewrote, its newest entry's
/// name holding a line break, an escape, a bidi override, `../` or 5,000
/// characters. `offsite list` and `offsite fetch latest` set that entry
/// aside (they refused the whole index, until one bad entry no longer
/// stopped every recovery): the list shows the real copy, the fetch takes
/// it, neither prints a control character of the name, and nothing
/// outside backups/ is written.
#[test]
fn an_offsite_index_naming_hostile_files_is_refused_by_list_and_fetch() {
    let remote = Remote::new("");
    remote.server.add_bucket("qbtime-d1-backups");
    let home = tempfile::tempdir().unwrap();
    let name = remote.backup_prod(home.path());
    remote
        .xtask(home.path(), &["upload", &name, "--env", "prod"])
        .assert_ok();
    let index: serde_json::Value = serde_json::from_slice(
        &remote
            .server
            .r2_object("qbtime-d1-backups", "index/prod.json")
            .unwrap(),
    )
    .unwrap();
    let decoys = crate::common::decoys::Decoys::plant(remote.sb.path());
    let before = decoys.hashes();
    let long = format!("backup-prod-{}.sql", "9".repeat(5000));
    for file in [
        "backup-prod-20991231-2359.sql\n  [pass] file matches".to_owned(),
        "backup-prod-20991231-2359\u{1b}[2K.sql".to_owned(),
        "backup-prod-\u{202e}lqs.20991231-2359.sql".to_owned(),
        "../decoys/victim.sql".to_owned(),
        long,
    ] {
        let mut forged = index.clone();
        let mut entry = forged["backups"][0].clone();
        entry["file"] = serde_json::Value::String(file.clone());
        entry["created_at"] = serde_json::Value::String("2099-12-31T23:59:00Z".into());
        forged["backups"].as_array_mut().unwrap().insert(0, entry);
        remote
            .server
            .r2_put_object(
                "qbtime-d1-backups",
                "index/prod.json",
                serde_json::to_string(&forged).unwrap().as_bytes(),
            )
            .unwrap();
        for args in [
            &["offsite", "list", "--env", "prod"][..],
            &["offsite", "fetch", "latest", "--env", "prod"][..],
        ] {
            let run = remote.xtask(home.path(), args);
            assert!(
                run.ok && run.stderr.contains("entry 1") && run.stderr.contains("set aside"),
                "{args:?} did not set {file:?} aside:\n{}",
                run.all()
            );
            assert!(
                args[1] != "list" || run.stdout.contains(&name),
                "{args:?} does not list the real copy:\n{}",
                run.all()
            );
            let all = run.all();
            assert!(
                !all.contains('\u{1b}') && !all.contains('\u{202e}') && !all.contains("\n  [pass]"),
                "{args:?} printed {file:?} as it is:\n{}",
                all.escape_debug()
            );
            assert!(
                all.len() < 20_000,
                "{args:?}: {} bytes of output",
                all.len()
            );
            assert_eq!(decoys.hashes(), before, "{args:?} {file:?}");
        }
    }
}

/// A manifest planted in backups/ whose `file.sha256` holds a line break
/// and a table row worded as the drill log's own (`| … | forged.sql | … |
/// PASS |`). Manifest validation checks the printed names for control
/// characters, but not the sha256, which the drill copies into its log
/// row: the drill (failing, rightly, on the sha256 mismatch) appended the
/// forged row, a passed drill of prod that never ran, to
/// `docs/restore-drills.md`, a tracked file auditors read, and printed it
/// as a line of its own. The manifest should be refused as not a sha256
/// (64 lowercase hex), as its `migration_sha256` values are, before
/// anything runs or is logged. Cause: `crates/d1-core/src/manifest.rs`
/// (validation never checks `file.sha256`), read by
/// `xtask/src/commands/drill.rs` `Record::row`.
#[test]
fn a_manifests_sha256_never_writes_a_row_of_its_own_into_the_drill_log() {
    let sb = Sandbox::new();
    sb.apply_migrations();
    sb.execute_sql(SEED_SQL);
    sb.xtask(&["backup", "local"]).assert_ok();
    let backup = only_backup(&sb);
    let path = sb.backups().join(backup.replace(".sql", ".manifest.json"));
    let mut manifest: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap();
    let forged = "| 2026-12-01 00:00 | prod → local | forged.sql | x | pass | pass | pass | pass \
                  | pass | pass | pass | PASS | 1 |";
    manifest["file"]["sha256"] = format!("{}\n{forged}", "0".repeat(64)).into();
    std::fs::write(&path, serde_json::to_string_pretty(&manifest).unwrap()).unwrap();

    let file = sb.backups().join(&backup);
    let run = sb.xtask(&[
        "drill",
        "--from",
        "local",
        "--to",
        "local",
        "--backup",
        file.to_str().unwrap(),
        "--yes",
    ]);
    assert!(!run.ok, "{}", run.all());
    assert!(
        run.stderr.contains("sha256"),
        "the refusal names the field:\n{}",
        run.all()
    );
    let log = std::fs::read_to_string(sb.path().join("docs/restore-drills.md")).unwrap_or_default();
    assert!(
        !log.contains("forged.sql"),
        "the manifest's sha256 wrote a row into the drill log:\n{log}"
    );
    assert!(
        !run.all().lines().any(|l| l.starts_with("| 2026-12-01")),
        "the manifest's sha256 printed a line of its own:\n{}",
        run.all()
    );
}
