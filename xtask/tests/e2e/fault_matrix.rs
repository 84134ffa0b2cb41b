//! The fault matrix: every fault the loopback can inject during a backup,
//! and the ways a backup process can die or collide, each a test that checks
//! what a user would find afterwards. Restore and migrate faults, and bad
//! inputs, are rows of their own files (`restore_remote.rs`,
//! `migrate_local.rs`, `verify_local.rs`, `refusals.rs`); this file adds the
//! backup rows and the process rows.

use crate::common;

use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use common::remote::*;
use common::*;
use d1_loopback::Faults;

/// A 60 KB row, so that exports are big enough to be cut short.
const BIG_ROW: &str = "INSERT INTO notifications (account_id, company_id, kind, title, body) \
                       VALUES (1, 1, 'big', 'bulk', hex(randomblob(30000)));";

fn remote() -> (Remote, tempfile::TempDir) {
    (Remote::new(BIG_ROW), tempfile::tempdir().unwrap())
}

/// What a failed backup must leave: no file that looks like a backup, no
/// manifest, no temporary file, and the lock released cleanly (empty), so
/// that the next backup neither waits nor reports a stale lock.
#[track_caller]
fn assert_nothing_kept(sb: &Sandbox) {
    let names = sb.backup_files();
    for name in &names {
        assert!(
            name == ".lock",
            "a failed backup left {name} in backups/: {names:?}"
        );
    }
    let lock = sb.backups().join(".lock");
    if lock.exists() {
        assert_eq!(
            std::fs::read_to_string(&lock).unwrap(),
            "",
            "the lock was not released cleanly"
        );
    }
}

/// The next backup, with the fault gone, just works: no stale lock, no wait.
#[track_caller]
fn assert_next_backup_works(remote: &Remote, home: &Path) {
    remote.server.set_faults(Faults::default());
    let run = remote.xtask(home, &["backup", "prod"]);
    run.assert_ok();
    assert!(
        !run.stderr.contains("gone without releasing"),
        "{}",
        run.stderr
    );
    only_backup(&remote.sb);
}

/// One row: a backup of prod under `faults` fails with `message`, keeps
/// nothing, and the next one works. Each wrangler run may take `timeout`
/// seconds. Returns the requests the loopback saw from the failed backup.
fn backup_fault_row(faults: Faults, message: &str, extra: &[&str], timeout: u32) -> Vec<String> {
    let (remote, home) = remote();
    remote.server.set_faults(faults);
    let mut args = vec!["backup", "prod"];
    args.extend_from_slice(extra);
    let run = remote
        .xtask_command(home.path(), &args)
        .env("QBTIME_WRANGLER_TIMEOUT", timeout.to_string())
        .output()
        .unwrap();
    let run = Run::from_output(run);
    run.assert_refused(message);
    let requests = remote.server.requests();
    assert_nothing_kept(&remote.sb);
    assert_next_backup_works(&remote, home.path());
    requests
}

/// Long enough for a wrangler start on a loaded 2-core machine (each call
/// starts Node 22 and wrangler 4.164).
const TIMEOUT: u32 = 30;

#[test]
fn backup_row_export_api_error() {
    backup_fault_row(
        Faults {
            export_api_error: Some("D1 could not start the export".into()),
            ..Faults::default()
        },
        "D1 could not start the export",
        &[],
        TIMEOUT,
    );
}

#[test]
fn backup_row_export_that_never_completes_times_out() {
    let requests = backup_fault_row(
        Faults {
            export_never_completes: true,
            ..Faults::default()
        },
        "wrangler did not finish within 15 s",
        &[],
        // Shorter: this row waits it out. The loopback saw the export
        // started and then polled, so the limit stopped a running export.
        15,
    );
    let exports = requests.iter().filter(|r| r.ends_with("/export")).count();
    assert!(
        exports >= 2,
        "the export was started and polled: {requests:?}"
    );
}

#[test]
fn backup_row_download_500() {
    backup_fault_row(
        Faults {
            download_status: Some(500),
            ..Faults::default()
        },
        "wrangler failed",
        &[],
        TIMEOUT,
    );
}

#[test]
fn backup_row_download_stops_short() {
    backup_fault_row(
        Faults {
            download_truncate_to: Some(20_000),
            ..Faults::default()
        },
        "the file is probably truncated",
        &[],
        TIMEOUT,
    );
}

#[test]
fn backup_row_download_stops_short_while_encrypting() {
    let key = tempfile::tempdir().unwrap();
    let sb = Sandbox::new();
    let recipient =
        keygen_recipient(&sb.xtask(&["keygen", "--out", key.path().join("k").to_str().unwrap()]));
    backup_fault_row(
        Faults {
            download_truncate_to: Some(20_000),
            ..Faults::default()
        },
        "the file is probably truncated",
        &["--encrypt-to", &recipient],
        TIMEOUT,
    );
}

#[test]
fn backup_row_slow_responses_still_succeed() {
    let (remote, home) = remote();
    remote.server.set_faults(Faults {
        response_delay_ms: Some(300),
        ..Faults::default()
    });
    let started = Instant::now();
    remote.xtask(home.path(), &["backup", "prod"]).assert_ok();
    let name = only_backup(&remote.sb);
    assert_eq!(
        manifest_for(&remote.sb, &name)["verification"]["outcome"],
        "good"
    );
    // Every request waited: the backup is whole, just slower.
    let requests = remote.server.requests().len() as u32;
    assert!(started.elapsed() >= Duration::from_millis(300) * requests);
}

#[cfg(unix)]
#[test]
fn backup_row_full_disk() {
    let (remote, home) = remote();
    // 24 KB: the export (about 70 KB) cannot be written whole.
    let xtask = env!("CARGO_BIN_EXE_xtask");
    let config = remote.sb.path().join("wrangler.toml");
    let mut bash = Command::new("bash");
    bash.arg("-c")
        .arg(format!(
            "ulimit -f 24 && exec '{xtask}' --config '{}' backup prod",
            config.display()
        ))
        .current_dir(remote.sb.path());
    let out = remote.with_api(&mut bash, home.path()).output().unwrap();
    let run = Run::from_output(out);
    assert!(!run.ok, "{}", run.all());
    assert_eq!(run.code, Some(1), "an error, not a signal: {}", run.all());
    assert!(run.stderr.contains("error:"), "{}", run.all());
    assert_nothing_kept(&remote.sb);
    assert_next_backup_works(&remote, home.path());
}

/// Starts `backup prod` in its own process group, slowed down by the
/// loopback, and returns once its lock and temporary file exist.
#[cfg(unix)]
fn slow_backup_started(remote: &Remote, home: &Path) -> std::process::Child {
    use std::os::unix::process::CommandExt;
    remote.server.set_faults(Faults {
        response_delay_ms: Some(700),
        ..Faults::default()
    });
    let child = remote
        .xtask_command(home, &["backup", "prod"])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .process_group(0)
        .spawn()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(60);
    while !remote
        .sb
        .backup_files()
        .iter()
        .any(|n| n.ends_with(".partial"))
    {
        assert!(
            Instant::now() < deadline,
            "the backup never started writing"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    child
}

#[cfg(unix)]
#[test]
fn backup_row_sigkill_mid_backup_is_reported_and_cleaned_by_the_next_run() {
    let (remote, home) = remote();
    let mut child = slow_backup_started(&remote, home.path());
    // SIGKILL to the whole group: the xtask and the wrangler it started.
    let group = -(child.id() as i32);
    assert!(
        Command::new("kill")
            .args(["-KILL", "--", &group.to_string()])
            .status()
            .unwrap()
            .success()
    );
    child.wait().unwrap();
    let left = remote.sb.backup_files();
    assert!(left.iter().any(|n| n.ends_with(".partial")), "{left:?}");
    assert!(
        !left.iter().any(|n| n.ends_with(".manifest.json")),
        "{left:?}"
    );

    remote.server.set_faults(Faults::default());
    let run = remote.xtask(home.path(), &["backup", "prod"]);
    run.assert_ok();
    assert!(
        run.stderr
            .contains("held the backup lock and is gone without releasing it"),
        "{}",
        run.stderr
    );
    assert!(
        run.stderr.contains("removing its unfinished file"),
        "{}",
        run.stderr
    );
    let now = remote.sb.backup_files();
    assert!(!now.iter().any(|n| n.ends_with(".partial")), "{now:?}");
    only_backup(&remote.sb);
}

#[cfg(unix)]
#[test]
fn backup_row_two_at_once_one_refuses_and_they_never_share_a_file() {
    let (remote, home) = remote();
    let first = slow_backup_started(&remote, home.path());
    let second = remote.xtask(home.path(), &["backup", "prod"]);
    second.assert_refused("another backup or restore is running");
    assert!(
        second.stderr.contains("backup prod"),
        "names the holder: {}",
        second.stderr
    );
    let out = first.wait_with_output().unwrap();
    assert!(out.status.success());
    let name = only_backup(&remote.sb);
    assert_eq!(
        manifest_for(&remote.sb, &name)["verification"]["outcome"],
        "good"
    );
}

/// `restore latest:prod --to prod --replace`, confirmed.
pub fn restore_latest_into_prod(remote: &Remote, home: &Path) -> Run {
    remote.xtask(
        home,
        &[
            "restore",
            "latest:prod",
            "--to",
            "prod",
            "--replace",
            "--confirm",
            "qbtime_db_prod",
        ],
    )
}

/// One restore row: `restore latest:prod --to prod --replace` under
/// `faults` fails, prod is exactly as it was, and the safety backup taken
/// first is named, whole (its sha256 matches its manifest) and verified.
fn restore_fault_row(faults: Faults) {
    let (remote, home) = remote();
    remote.backup_prod(home.path());
    // prod moves on after the backup, so a restore would change it.
    rusqlite::Connection::open(&remote.db)
        .unwrap()
        .execute_batch("INSERT INTO companies (name) VALUES ('after the backup');")
        .unwrap();
    let before = dump_of(&remote.db);
    remote.server.set_faults(faults);
    let run = restore_latest_into_prod(&remote, home.path());
    run.assert_refused("the safety backup taken before it is");
    assert_eq!(
        dump_of(&remote.db),
        before,
        "prod changed after a failed restore"
    );
    assert_safety_backup_named(&remote, &run);
    assert_no_partials(&remote.sb);
}

#[test]
fn restore_row_import_upload_fails() {
    restore_fault_row(Faults {
        upload_status: Some(500),
        ..Faults::default()
    });
}

#[test]
fn restore_row_ingest_fails_part_way() {
    restore_fault_row(Faults {
        ingest_fail_after: Some(5),
        ..Faults::default()
    });
}

#[test]
fn restore_row_an_import_that_silently_loses_a_table_is_caught_by_the_checks() {
    let (remote, home) = remote();
    remote.backup_prod(home.path());
    let customers = counts(&remote.db)["customers"];
    assert!(customers > 0, "the seed has customers");
    // D1 answers that the import succeeded, but customers came out empty.
    remote.server.set_faults(Faults {
        ingest_loses_table: Some("customers".into()),
        ..Faults::default()
    });
    let run = restore_latest_into_prod(&remote, home.path());
    run.assert_refused(&format!(
        "the restored rows do not match the backup's manifest: customers: expected {customers}, \
         found 0"
    ));
    assert_safety_backup_named(&remote, &run);
    assert_no_partials(&remote.sb);
}
