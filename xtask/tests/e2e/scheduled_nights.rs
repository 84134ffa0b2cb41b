//! `scripts/scheduled-backup.sh` on bad nights, against the loopback: what
//! the log that nobody reads until the next morning says, and what `status`
//! says then.

use std::path::Path;

use crate::common;

use common::remote::*;
use common::*;
use d1_loopback::Faults;
use serde_json::Value;

const BUCKET: &str = "qbtime-d1-backups";

/// The scheduled job, as cron runs it, with `faults` in force at the
/// loopback (and `token` for CLOUDFLARE_API_TOKEN when given).
fn night(remote: &Remote, home: &Path, args: &[&str], faults: Faults, token: Option<&str>) -> Run {
    remote.server.set_faults(faults);
    let mut script =
        std::process::Command::new(remote.sb.path().join("scripts/scheduled-backup.sh"));
    script
        .args(args)
        .env("QBTIME_XTASK", env!("CARGO_BIN_EXE_xtask"))
        .env(
            "QBTIME_WRANGLER_CONFIG",
            remote.sb.path().join("wrangler.toml"),
        )
        .env_remove("QBTIME_BACKUP_DIR");
    remote.with_api(&mut script, home);
    if let Some(token) = token {
        script.env("CLOUDFLARE_API_TOKEN", token);
    }
    let run = Run::from_output(script.output().unwrap());
    remote.server.set_faults(Faults::default());
    run
}

/// A good first night (`-q prod`) on a fresh remote with the bucket, for a
/// test of the night after it: two tests start so, and the first test
/// process's real night is kept and copied into the other's remote
/// ([`Remote::made_once`]: its backups/ and the bucket's objects), with the
/// same log.
fn first_good_night(remote: &Remote, home: &Path) -> Run {
    remote.server.add_bucket(BUCKET);
    let step = ["scripts/scheduled-backup.sh", "-q", "prod"];
    let kept = remote.made_once(&step, |dir| {
        let run = night(remote, home, &["-q", "prod"], Faults::default(), None);
        let said = (run.ok, run.code, &run.stdout, &run.stderr);
        std::fs::write(dir.join("run.json"), serde_json::to_vec(&said).unwrap()).unwrap();
    });
    let said = std::fs::read(kept.path().join("run.json")).unwrap();
    let (ok, code, stdout, stderr) = serde_json::from_slice(&said).unwrap();
    Run {
        ok,
        code,
        stdout,
        stderr,
    }
}

/// The lines of the log that are the job's own, not wrangler's words that
/// it quotes (indented).
fn own_lines(run: &Run) -> Vec<String> {
    run.stderr
        .lines()
        .filter(|l| !l.starts_with(char::is_whitespace))
        .map(str::to_owned)
        .collect()
}

fn tail(run: &Run, n: usize) -> String {
    let lines: Vec<&str> = run.stderr.lines().collect();
    lines[lines.len().saturating_sub(n)..].join("\n")
}

fn manifests(remote: &Remote) -> Vec<Value> {
    remote
        .sb
        .backup_files()
        .into_iter()
        .filter(|f| f.ends_with(".manifest.json"))
        .map(|f| {
            serde_json::from_str(&std::fs::read_to_string(remote.sb.backups().join(f)).unwrap())
                .unwrap()
        })
        .collect()
}

/// R2 answers 500 to the upload: the job fails (it does), keeps the local
/// backup unmarked (it does), but its last lines never say how to finish
/// the night's offsite copy: the generic "the backup, its verification or
/// its upload failed" is the last line, and no line names `cargo xtask
/// upload`.
#[test]
fn a_night_whose_upload_fails_ends_its_log_with_the_upload_to_run_again() {
    let remote = Remote::new("");
    remote.server.add_bucket(BUCKET);
    let home = tempfile::tempdir().unwrap();
    let run = night(
        &remote,
        home.path(),
        &["-q", "prod"],
        Faults {
            r2_put_status: Some(500),
            ..Faults::default()
        },
        None,
    );
    assert!(!run.ok, "{}", run.all());
    let m = manifests(&remote);
    assert_eq!(m.len(), 1, "{:?}", remote.sb.backup_files());
    assert!(m[0]["offsite"].is_null(), "{m:?}");
    let last = tail(&run, 4);
    assert!(
        last.contains("cargo xtask upload"),
        "the last lines of the failed night's log do not say how to finish its offsite copy:\n{last}"
    );
}

/// R2 answers 500 to the upload's first read (the check that no other
/// backup holds the key): the log says only that wrangler failed to
/// download a manifest, not that the night's offsite copy failed nor that
/// the local backup is kept (xtask/src/steps/offsite.rs, `upload_with`:
/// `refuse_another_backup` is not given the `failed` context).
#[test]
fn a_night_whose_offsite_check_cannot_read_r2_says_the_local_backup_is_kept() {
    let remote = Remote::new("");
    remote.server.add_bucket(BUCKET);
    let home = tempfile::tempdir().unwrap();
    let run = night(
        &remote,
        home.path(),
        &["prod"],
        Faults {
            r2_get_status: Some(500),
            ..Faults::default()
        },
        None,
    );
    assert!(!run.ok, "{}", run.all());
    assert_eq!(
        manifests(&remote).len(),
        1,
        "{:?}",
        remote.sb.backup_files()
    );
    assert!(
        run.stderr
            .contains("the local backup is kept and is not marked offsite"),
        "the log does not say the offsite copy failed and the local backup is kept:\n{}",
        run.stderr
    );
}

/// The bucket of `[prod.offsite]` does not exist (never created, or
/// deleted): the log quotes wrangler's "The specified bucket does not
/// exist." and nothing says what to do, while backups.toml itself gives
/// the command (`npx wrangler r2 bucket create qbtime-d1-backups`).
#[test]
fn a_night_whose_bucket_is_missing_says_to_create_it() {
    let remote = Remote::new("");
    let home = tempfile::tempdir().unwrap();
    let run = night(
        &remote,
        home.path(),
        &["-q", "prod"],
        Faults::default(),
        None,
    );
    assert!(!run.ok, "{}", run.all());
    assert!(
        run.stderr.contains(&format!("r2 bucket create {BUCKET}")),
        "the log does not say to create the missing bucket:\n{}",
        run.stderr
    );
}

/// D1 answers "Currently processing a long-running export" (an export
/// still running, or one a failed FTS5 export left behind): the job's own
/// lines say only that wrangler failed, not that the database is busy
/// with another export nor to run the job again later; and its last line
/// said `cargo xtask upload latest:prod` copies the backup once R2
/// answers, when no backup was taken.
#[test]
fn a_night_when_d1_is_busy_exporting_says_to_run_the_job_again_later() {
    let remote = Remote::new("");
    remote.server.add_bucket(BUCKET);
    let home = tempfile::tempdir().unwrap();
    let run = night(
        &remote,
        home.path(),
        &["-q", "prod"],
        Faults {
            export_api_error: Some("Currently processing a long-running export".into()),
            ..Faults::default()
        },
        None,
    );
    assert!(!run.ok, "{}", run.all());
    let own = own_lines(&run).join("\n").to_lowercase();
    assert!(
        own.contains("later") || own.contains("again"),
        "the job's own lines do not say the database is busy exporting and to run it again:\n{}",
        run.stderr
    );
    // No backup was taken: `upload latest` would copy yesterday's. The
    // last line names the step that failed and says to run the job again.
    let last = tail(&run, 1);
    assert!(
        !last.contains("upload latest") && last.contains("run the job again"),
        "{last}"
    );
}

/// A wrong or revoked CLOUDFLARE_API_TOKEN: the log says "Authentication
/// error [code: 10000]" and never names the token to check.
#[test]
fn a_night_with_a_wrong_token_names_the_token_to_check() {
    let remote = Remote::new("");
    remote.server.add_bucket(BUCKET);
    let home = tempfile::tempdir().unwrap();
    let run = night(
        &remote,
        home.path(),
        &["-q", "prod"],
        Faults::default(),
        Some("revoked-token-0000000000"),
    );
    assert!(!run.ok, "{}", run.all());
    assert!(
        !run.all().contains("revoked-token-0000000000"),
        "{}",
        run.all()
    );
    assert!(
        own_lines(&run).join("\n").contains("CLOUDFLARE_API_TOKEN"),
        "the log does not say the API token was refused:\n{}",
        run.stderr
    );
}

/// The morning after a night whose upload failed, `status -q` (what an
/// uptime monitor runs) says nothing and exits 0: the newest verified
/// backup has no offsite copy although `[prod.offsite]` names a bucket,
/// and only the plain report's `offsite  no` line shows it.
#[test]
fn status_the_morning_after_a_failed_upload_says_the_newest_backup_is_not_offsite() {
    let remote = Remote::new("");
    remote.server.add_bucket(BUCKET);
    let home = tempfile::tempdir().unwrap();
    let run = night(
        &remote,
        home.path(),
        &["-q", "prod"],
        Faults {
            r2_put_status: Some(500),
            ..Faults::default()
        },
        None,
    );
    assert!(!run.ok, "{}", run.all());
    let name = only_backup(&remote.sb);
    let status = remote.xtask(home.path(), &["status", "-q", "--env", "prod"]);
    let said = status.all();
    assert!(
        said.contains(&name) && said.contains("offsite"),
        "status -q (exit {:?}) is silent about the newest backup {name} having no offsite copy:\n{said}",
        status.code
    );
}

/// `scripts/scheduled-backup.sh -v prod`: the script knows only `-q`, so
/// it takes `-v` for the environment. The backup (of prod, `-v` reaching
/// the backup as its flag) and its upload succeed, then `prune --env -v`
/// is refused, and a good night fails as "SCHEDULED BACKUP OF -v FAILED
/// …: pruning old backups failed".
#[test]
fn the_scheduled_job_with_v_first_does_not_fail_a_good_night() {
    let remote = Remote::new("");
    remote.server.add_bucket(BUCKET);
    let home = tempfile::tempdir().unwrap();
    let run = night(
        &remote,
        home.path(),
        &["-v", "prod"],
        Faults::default(),
        None,
    );
    let taken = !manifests(&remote).is_empty();
    assert!(
        run.ok || !taken,
        "a good night's backup was taken and uploaded, and the job failed:\n{}",
        tail(&run, 4)
    );
    assert!(!run.stderr.contains("OF -v"), "{}", tail(&run, 4));
}

/// prod's customers are deleted between two nights:
/// the second night's backup of the emptied tables verifies GOOD, and
/// nothing but the nightly warnings reached the log, so cron mailed
/// nothing new while retention would in time prune the last backups that
/// still hold the rows. The night must end well (the backup is a faithful
/// copy) and warn, even under -q, naming the tables, their counts and the
/// backup before it.
#[test]
fn a_night_after_the_customers_are_deleted_warns_that_their_rows_are_gone() {
    let remote = Remote::new("");
    let home = tempfile::tempdir().unwrap();
    let first = first_good_night(&remote, home.path());
    assert!(first.ok, "{}", first.all());
    let before = only_backup(&remote.sb);
    let customers = remote.live_counts()["customers"];
    assert!(customers > 0);
    let conn = rusqlite::Connection::open(&remote.db).unwrap();
    conn.execute_batch("DELETE FROM customers;").unwrap();
    drop(conn);
    let second = night(
        &remote,
        home.path(),
        &["-q", "prod"],
        Faults::default(),
        None,
    );
    assert!(second.ok, "{}", second.all());
    assert!(second.stdout.is_empty(), "{}", second.stdout);
    let warning: Vec<&str> = { second.stderr.lines() }
        .filter(|l| l.contains("customers"))
        .collect();
    let warning = warning.join("\n");
    assert!(
        warning.contains(&before) && warning.contains(&format!("{customers} rows")),
        "the night after prod's customers were deleted does not warn that their {customers} rows \
         are gone since {before}:\n{}",
        second.stderr
    );
}

/// Two nights with nothing changed between them: no warning of rows gone.
#[test]
fn a_night_with_the_same_rows_as_the_last_warns_of_no_rows_gone() {
    let remote = Remote::new("");
    let home = tempfile::tempdir().unwrap();
    let first = first_good_night(&remote, home.path());
    assert!(first.ok, "{}", first.all());
    let second = night(
        &remote,
        home.path(),
        &["-q", "prod"],
        Faults::default(),
        None,
    );
    assert!(second.ok, "{}", second.all());
    assert_eq!(
        first.stderr.lines().count(),
        second.stderr.lines().count(),
        "{}",
        second.stderr
    );
    assert!(!second.stderr.contains("rows"), "{}", second.stderr);
}

/// cron runs the job with PATH=/usr/bin:/bin, where rustup's cargo is
/// not: the log said only `cargo: command not found`. It must name PATH
/// and QBTIME_XTASK, the two ways to give the job its xtask.
#[test]
fn a_night_under_crons_path_without_cargo_names_path_and_qbtime_xtask() {
    if ["/usr/bin/cargo", "/bin/cargo"]
        .iter()
        .any(|c| Path::new(c).exists())
    {
        return; // cron's PATH finds a cargo on this machine.
    }
    let sb = Sandbox::new();
    let home = tempfile::tempdir().unwrap();
    let out = std::process::Command::new(sb.path().join("scripts/scheduled-backup.sh"))
        .args(["-q", "prod"])
        .env_clear()
        .env("PATH", "/usr/bin:/bin")
        .env("HOME", home.path())
        .output()
        .unwrap();
    let run = Run::from_output(out);
    assert!(!run.ok, "{}", run.all());
    assert!(
        run.stderr.contains("PATH") && run.stderr.contains("QBTIME_XTASK"),
        "{}",
        run.stderr
    );
    assert!(sb.backup_files().is_empty(), "{:?}", sb.backup_files());
}

/// rvAP: under a bucket lock, the night's upload stores a copy cut short
/// (wrangler said "Upload complete"): no upload of that backup can replace
/// it until the lock's retention ends, and the tool says to take a new
/// backup. Its error also says the backup "is not marked offsite", so the
/// job's last line said `cargo xtask upload latest:prod` copies it "once
/// R2 answers", which no wait makes true. Cause: scripts/scheduled-backup.sh
/// tells the offsite case before the lock's.
#[test]
fn a_night_whose_upload_a_bucket_lock_keeps_out_says_to_take_a_new_backup() {
    let remote = Remote::new("");
    let home = tempfile::tempdir().unwrap();
    remote.backup_prod_under_a_bucket_lock(home.path());
    let run = night(
        &remote,
        home.path(),
        &["-q", "prod"],
        Faults {
            r2_put_truncate_to: Some(100),
            ..Faults::default()
        },
        None,
    );
    assert!(!run.ok, "{}", run.all());
    assert!(
        run.stderr.contains("the bucket's lock rule"),
        "the premise: the lock is told\n{}",
        run.all()
    );
    let last = tail(&run, 1);
    assert!(
        !last.contains("once R2 answers") && !last.contains("upload latest"),
        "the job's last line says a re-run of the upload copies it:\n{last}"
    );
    assert!(last.contains("cargo xtask backup prod"), "{last}");
}
