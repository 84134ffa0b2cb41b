//! `cargo xtask drill`, end to end: the newest good prod backup, taken from
//! the loopback D1 API through the real wrangler, restored into staging (or
//! local D1), checked, optionally smoke-tested through a stand-in app, and
//! logged in docs/restore-drills.md.

use crate::common;

use std::collections::BTreeMap;

use common::app::App;
use common::remote::*;
use common::*;

const SEED_EMAILS: [&str; 5] = [
    "owner@example.com",
    "ops@example.com",
    "member@example.com",
    "h@example.com",
    "k@example.com",
];

const TOKEN_SECRET: &str = "secret-token";

fn log_text(sb: &Sandbox) -> String {
    std::fs::read_to_string(sb.path().join("docs/restore-drills.md")).unwrap_or_default()
}

/// The drill log's table rows (not the header or its rule).
fn log_rows(sb: &Sandbox) -> Vec<String> {
    log_text(sb)
        .lines()
        .filter(|l| l.starts_with("| 2"))
        .map(str::to_owned)
        .collect()
}

/// A row's cells by the header's column names.
fn cells(sb: &Sandbox, row: &str) -> BTreeMap<String, String> {
    let text = log_text(sb);
    let header = text
        .lines()
        .find(|l| l.starts_with("| date"))
        .expect("the log has a table header");
    let split = |l: &str| -> Vec<String> {
        l.trim()
            .trim_matches('|')
            .split('|')
            .map(|c| c.trim().to_owned())
            .collect()
    };
    let names = split(header);
    let values = split(row);
    assert_eq!(names.len(), values.len(), "{header}\n{row}");
    names.into_iter().zip(values).collect()
}

/// The drill, with the app stand-in's address and token.
fn drill_with_app(remote: &Remote, home: &std::path::Path, app: &App, args: &[&str]) -> Run {
    drill_at(remote, home, &app.url(), TOKEN_SECRET, args)
}

/// The drill, with `url` as QBTIME_APP_URL and `token` as the DevOps token.
fn drill_at(remote: &Remote, home: &std::path::Path, url: &str, token: &str, args: &[&str]) -> Run {
    let out = remote
        .xtask_command(home, args)
        .env("QBTIME_APP_URL", url)
        .env("QBTIME_DEVOPS_TOKEN", token)
        .env_remove("QBTIME_DRILL_SIGNIN_PATH")
        .env_remove("QBTIME_DRILL_REPORT_PATH")
        .output()
        .unwrap();
    Run::from_output(out)
}

/// A backup of prod taken through the loopback D1 API, and the app
/// stand-in: the remote, wrangler's home, the app.
fn prod_backed_up_and_an_app() -> (Remote, tempfile::TempDir, App) {
    let remote = Remote::new("");
    let home = tempfile::tempdir().unwrap();
    remote.backup_prod(home.path());
    (remote, home, App::start())
}

#[test]
fn a_drill_restores_the_newest_good_prod_backup_into_staging_and_logs_it() {
    let remote = Remote::new("");
    let home = tempfile::tempdir().unwrap();
    let backup = remote.backup_prod(home.path());
    let sha256 = manifest_for(&remote.sb, &backup)["file"]["sha256"]
        .as_str()
        .unwrap()
        .to_owned();
    assert!(counts(&remote.staging).is_empty(), "staging starts empty");

    let run = remote.xtask(home.path(), &["drill", "--yes"]);
    run.assert_ok();
    assert_eq!(
        counts(&remote.staging),
        counts(&remote.db),
        "staging holds what prod holds"
    );
    assert!(
        remote.server.unhandled().is_empty(),
        "{:?}",
        remote.server.unhandled()
    );

    let rows = log_rows(&remote.sb);
    assert_eq!(rows.len(), 1, "{}", log_text(&remote.sb));
    let row = &rows[0];
    let c = cells(&remote.sb, row);
    assert_eq!(c["backup"], backup, "{row}");
    assert_eq!(c["sha256"], sha256, "{row}");
    assert_eq!(c["from → to"], "prod → staging", "{row}");
    assert_eq!(c["verify"], "pass", "{row}");
    assert_eq!(c["restore"], "pass", "{row}");
    assert_eq!(c["rows"], "pass", "{row}");
    // No app configured: its checks are skipped, not passed.
    assert_eq!(c["audit chain"], "skip", "{row}");
    assert_eq!(c["result"], "PASS", "{row}");

    // The tracked log records no customer data.
    let text = log_text(&remote.sb);
    for email in SEED_EMAILS {
        assert!(
            !text.contains(email),
            "the drill log holds {email}:\n{text}"
        );
    }
    assert!(!text.contains('@'), "{text}");
    assert!(!text.contains("127.0.0.1"), "the log holds a URL:\n{text}");
}

#[test]
fn the_app_checks_call_each_endpoint_with_the_token_and_a_broken_chain_fails_the_drill() {
    let remote = Remote::new("");
    let home = tempfile::tempdir().unwrap();
    remote.backup_prod(home.path());
    let app = App::start();

    let run = drill_with_app(&remote, home.path(), &app, &["drill", "--yes"]);
    run.assert_ok();
    let rows = log_rows(&remote.sb);
    assert_eq!(rows.len(), 1, "{}", log_text(&remote.sb));
    let c = cells(&remote.sb, &rows[0]);
    for check in ["audit chain", "sign-in", "report"] {
        assert_eq!(c[check], "pass", "{check}: {}", rows[0]);
    }
    assert_eq!(c["result"], "PASS", "{}", rows[0]);

    let seen: Vec<(String, String)> = app
        .requests()
        .into_iter()
        .map(|r| (r.method, r.path))
        .collect();
    let want = [
        ("GET", "/api/v1/platform/verify-audit"),
        ("GET", "/api/v1/auth/session"),
        ("POST", "/api/v1/reports/smoke"),
    ];
    for (method, path) in want {
        assert!(
            seen.iter().any(|(m, p)| m == method && p == path),
            "the app never saw {method} {path}: {seen:?}"
        );
    }
    for r in app.requests() {
        assert_eq!(
            r.authorization.as_deref(),
            Some("Bearer secret-token"),
            "{r:?}"
        );
    }
    assert!(
        !run.all().contains(TOKEN_SECRET),
        "the token was printed:\n{}",
        run.all()
    );
    assert!(!log_text(&remote.sb).contains(TOKEN_SECRET));

    // The app reports a broken audit chain: the drill fails, and says why.
    app.answer(
        "/api/v1/platform/verify-audit",
        200,
        r#"{"ok":false,"error":"chain broken at id 7"}"#,
    );
    let run = drill_with_app(&remote, home.path(), &app, &["drill", "--yes"]);
    assert!(
        !run.ok,
        "a broken audit chain passed the drill:\n{}",
        run.all()
    );
    assert!(
        run.stderr.contains("chain broken at id 7"),
        "{}",
        run.stderr
    );
    assert!(!run.all().contains(TOKEN_SECRET), "{}", run.all());
    let rows = log_rows(&remote.sb);
    assert_eq!(rows.len(), 2, "{}", log_text(&remote.sb));
    let c = cells(&remote.sb, &rows[1]);
    assert_eq!(c["audit chain"], "FAIL", "{}", rows[1]);
    assert_eq!(c["result"], "FAIL", "{}", rows[1]);
    assert!(
        !log_text(&remote.sb).contains(TOKEN_SECRET),
        "the token is in the log"
    );
}

#[test]
fn drill_guards_refuse_production_missing_confirmation_and_missing_backups() {
    let remote = Remote::new("");
    let home = tempfile::tempdir().unwrap();

    // Never into production.
    remote
        .xtask(
            home.path(),
            &["drill", "--to", "prod", "--confirm", "qbtime_db_prod"],
        )
        .assert_refused("never into production");
    // Nothing to rehearse yet: the way to get something is named.
    remote
        .xtask(home.path(), &["drill", "--yes"])
        .assert_refused("cargo xtask backup prod");
    assert!(
        remote.server.requests().is_empty(),
        "{:?}",
        remote.server.requests()
    );

    remote.backup_prod(home.path());
    let staging = dump_of(&remote.staging);

    // A dry run changes nothing and logs nothing.
    let run = remote.xtask(home.path(), &["drill", "--dry-run"]);
    run.assert_ok();
    assert!(run.stdout.contains("Restore drill plan"), "{}", run.stdout);
    assert_eq!(
        dump_of(&remote.staging),
        staging,
        "a dry run changed staging"
    );
    assert!(log_rows(&remote.sb).is_empty(), "{}", log_text(&remote.sb));
    assert_no_import(&remote);

    // Without --yes, and without a terminal, nothing is restored, and a
    // drill that never ran is not logged as a failed one.
    let run = remote.xtask(home.path(), &["drill"]);
    run.assert_refused("--yes");
    assert!(log_rows(&remote.sb).is_empty(), "{}", log_text(&remote.sb));
    assert_eq!(dump_of(&remote.staging), staging, "staging changed");
    assert!(counts(&remote.staging).is_empty());
    assert_no_import(&remote);
}

#[test]
fn a_local_drill_restores_the_prod_backup_into_local_d1() {
    let remote = Remote::new("");
    let home = tempfile::tempdir().unwrap();
    remote.backup_prod(home.path());

    let run = remote.xtask(home.path(), &["drill", "--to", "local", "--yes"]);
    run.assert_ok();
    assert_eq!(remote.sb.live_row_counts(), counts(&remote.db));
    let rows = log_rows(&remote.sb);
    assert_eq!(rows.len(), 1, "{}", log_text(&remote.sb));
    let c = cells(&remote.sb, &rows[0]);
    assert_eq!(c["from → to"], "prod → local", "{}", rows[0]);
    assert_eq!(c["result"], "PASS", "{}", rows[0]);
    assert!(counts(&remote.staging).is_empty(), "staging was left alone");
}

/// README `cargo xtask drill`: a drill that passed with checks skipped
/// "says so at every verbosity, naming them". A drill into a local D1 that
/// records no data-encryption key yet (a fresh clone's) skips the key
/// check although backups.toml declares the key rule: the warning named
/// `key` among the skipped checks and gave only the app checks' reason
/// (QBTIME_APP_URL and QBTIME_DEVOPS_TOKEN), so the operator could not tell
/// why the key was not checked, nor that setting the variables would not
/// make it run. The warning says why each skipped check did not run.
#[test]
fn a_drill_that_skips_the_key_check_says_why() {
    let remote = Remote::new("");
    let home = tempfile::tempdir().unwrap();
    remote.backup_prod(home.path());

    let run = remote.xtask(home.path(), &["drill", "--to", "local", "--yes", "-q"]);
    run.assert_ok();
    let warning = run
        .stderr
        .lines()
        .find(|l| l.contains("checks did not run"))
        .unwrap_or_else(|| panic!("no warning of the skipped checks:\n{}", run.all()));
    assert!(warning.contains("(key, audit chain"), "{warning}");
    assert!(
        warning.contains(
            "the key check had nothing to compare: local records no data-encryption key in force"
        ),
        "the warning does not say why the key check did not run:\n{}",
        run.all()
    );
}

#[test]
fn a_drill_of_an_encrypted_backup_needs_and_uses_the_identity() {
    let remote = Remote::new("");
    let home = tempfile::tempdir().unwrap();
    let key = home.path().join("key.txt");
    let recipient =
        keygen_recipient(&remote.xtask(home.path(), &["keygen", "--out", key.to_str().unwrap()]));
    // prod's backups are encrypted to it by the settings file, as in production.
    encrypt_backups_of(&remote.sb, "prod", &recipient);
    remote.xtask(home.path(), &["backup", "prod"]).assert_ok();
    assert!(
        remote
            .sb
            .backup_files()
            .iter()
            .any(|f| f.ends_with(".sql.zst.age")),
        "{:?}",
        remote.sb.backup_files()
    );

    remote
        .xtask(home.path(), &["drill", "--to", "local", "--yes"])
        .assert_refused("--identity FILE");
    assert!(
        log_rows(&remote.sb).is_empty(),
        "a drill that could not start is not logged"
    );

    let run = remote.xtask(
        home.path(),
        &[
            "drill",
            "--to",
            "local",
            "--yes",
            "--identity",
            key.to_str().unwrap(),
        ],
    );
    run.assert_ok();
    assert_eq!(remote.sb.live_row_counts(), counts(&remote.db));
    let rows = log_rows(&remote.sb);
    assert_eq!(rows.len(), 1, "{}", log_text(&remote.sb));
    assert_eq!(cells(&remote.sb, &rows[0])["result"], "PASS", "{}", rows[0]);
}

/// Nothing was loaded into a remote database: no import request reached the loopback.
#[track_caller]
fn assert_no_import(remote: &Remote) {
    let requests = remote.server.requests();
    assert!(
        !requests.iter().any(|r| r.contains("/import")),
        "{requests:?}"
    );
}

/// A backup of prod, and a local D1 with the schema and a
/// data-encryption key of its own (as staging has).
fn prod_backed_up_and_local_with_a_key_of_its_own() -> (Remote, tempfile::TempDir) {
    let remote = Remote::new("");
    let home = tempfile::tempdir().unwrap();
    remote.backup_prod(home.path());
    remote.sb.apply_migrations();
    remote.sb.execute_sql(
        "INSERT INTO encryption_keys (key_id, fingerprint, activated_at, retired_at) VALUES \
         ('dek-local', 'sha256:3333333333333333333333333333333333333333333333333333333333333333', \
         '2026-06-01T00:00:00.000Z', NULL);",
    );
    (remote, home)
}

/// atkAT: the README (`cargo xtask drill`, step 3) says "a different key
/// fails the drill unless `--accept-key-change`". A target that holds
/// another data-encryption key (staging's own, as staging usually has) is
/// restored with the flag, every row comes back, and the drill still
/// records `key FAIL` and exits non-zero: the runbook's drill into such a
/// target can never pass, whatever the operator accepts
/// (xtask/src/commands/drill.rs, `KeyCheck::AcceptedChange` => Fail in
/// `Rehearsal::restore`).
#[test]
fn a_drill_that_accepts_a_key_change_is_not_failed_for_it() {
    let (remote, home) = prod_backed_up_and_local_with_a_key_of_its_own();

    let run = remote.xtask(
        home.path(),
        &["drill", "--to", "local", "--yes", "--accept-key-change"],
    );
    assert_eq!(
        remote.sb.live_row_counts(),
        counts(&remote.db),
        "the restore ran: {}",
        run.all()
    );
    let rows = log_rows(&remote.sb);
    assert_eq!(rows.len(), 1, "{}", log_text(&remote.sb));
    let c = cells(&remote.sb, &rows[0]);
    assert_eq!(c["restore"], "pass", "{}", rows[0]);
    assert_ne!(
        c["key"], "FAIL",
        "the key change was accepted, yet the drill failed on it: {}",
        rows[0]
    );
    assert_eq!(c["result"], "PASS", "{}", rows[0]);
    run.assert_ok();
}

/// atkAT: a drill refused because local D1 holds another data-encryption
/// key (the restore's key guard, without `--accept-key-change`) is logged
/// as `restore FAIL` with `key skip`: the one check that failed is recorded
/// as one that did not run (xtask/src/commands/drill.rs `Rehearsal::restore`:
/// on `Err` only `checks[1]` is set).
#[test]
fn a_drill_refused_for_another_key_logs_the_key_as_failed() {
    let (remote, home) = prod_backed_up_and_local_with_a_key_of_its_own();
    let run = remote.xtask(home.path(), &["drill", "--to", "local", "--yes"]);
    assert!(!run.ok, "{}", run.all());
    assert!(run.stderr.contains("data-encryption key"), "{}", run.stderr);
    let rows = log_rows(&remote.sb);
    assert_eq!(rows.len(), 1, "{}", log_text(&remote.sb));
    let c = cells(&remote.sb, &rows[0]);
    assert_eq!(c["result"], "FAIL", "{}", rows[0]);
    assert_eq!(
        c["key"], "FAIL",
        "the drill failed on the key and logged it as skipped: {}",
        rows[0]
    );
}

/// atkAT: `drill --to local --dry-run` on a clone without a local D1 yet
/// creates one (the SQLite file, its WAL, miniflare's metadata), through
/// the restore's dry-run plan reading the target with wrangler; and the
/// drill's plan says "after a safety backup of it" while the restore's own
/// plan below it says "safety none: the target is an empty local database"
/// (xtask/src/commands/drill.rs `print_plan`, step 2, is fixed text).
#[test]
fn a_local_drill_dry_run_creates_nothing_and_names_the_safety_backup_as_the_restore_does() {
    let remote = Remote::new("");
    let home = tempfile::tempdir().unwrap();
    remote.backup_prod(home.path());
    let state = remote.sb.path().join(".wrangler");
    assert!(!state.exists(), "no local D1 yet");
    let run = remote.xtask(home.path(), &["drill", "--to", "local", "--dry-run"]);
    run.assert_ok();
    assert!(
        !state.exists(),
        "the dry run created local D1 state under .wrangler/"
    );
    assert!(
        !(run.stdout.contains("after a safety backup of it")
            && run.stdout.contains("safety       none")),
        "the drill's plan and the restore's disagree on the safety backup:\n{}",
        run.stdout
    );
}

/// atkAT: a drill given an identity that matches none of the backup's
/// recipients (`--identity` of another key) cannot read the backup at all:
/// `verify` with it stops with exit 2, "the verification could not run",
/// and records nothing. The drill instead appends a row to the tracked
/// drill log that says the prod backup FAILED verification (`verify FAIL`,
/// `result FAIL`, next to its sha256), about a backup that is good, while a
/// drill with no identity at all is refused and not logged
/// (xtask/src/commands/drill.rs `Rehearsal::verify`: an `Err` from verify
/// is recorded as `Outcome::Fail`; `Source::for_file` in `Drill::prepare`
/// checks that an identity is given, not that it opens the file).
#[test]
fn a_drill_with_an_identity_that_opens_nothing_does_not_log_the_backup_as_failing_verify() {
    let remote = Remote::new("");
    let home = tempfile::tempdir().unwrap();
    let key = home.path().join("key.txt");
    let other = home.path().join("other.txt");
    let recipient =
        keygen_recipient(&remote.xtask(home.path(), &["keygen", "--out", key.to_str().unwrap()]));
    remote
        .xtask(home.path(), &["keygen", "--out", other.to_str().unwrap()])
        .assert_ok();
    encrypt_backups_of(&remote.sb, "prod", &recipient);
    remote.xtask(home.path(), &["backup", "prod"]).assert_ok();

    // What verify says with that identity: it could not run.
    let verify = remote.xtask(
        home.path(),
        &[
            "verify",
            "latest:prod",
            "--identity",
            other.to_str().unwrap(),
        ],
    );
    assert_eq!(verify.code, Some(2), "{}", verify.all());

    let run = remote.xtask(
        home.path(),
        &[
            "drill",
            "--to",
            "local",
            "--yes",
            "--identity",
            other.to_str().unwrap(),
        ],
    );
    assert!(!run.ok, "{}", run.all());
    assert!(run.stderr.contains("no identity matched"), "{}", run.stderr);
    assert!(
        log_rows(&remote.sb).is_empty(),
        "a drill that could not read the backup logged it as failing verification:\n{}",
        log_text(&remote.sb)
    );
}

/// A drill interrupted while its app checks wait for the app: each check
/// ran on to its own 60-second timeout, unaware of the signal, and the
/// drill then logged them FAILed, a failed drill in docs/restore-drills.md
/// where none had finished. It stops at once and logs nothing, as a drill
/// interrupted during its restore does.
#[test]
fn a_drill_interrupted_during_its_app_checks_stops_and_logs_no_failure() {
    let remote = Remote::new("");
    let home = tempfile::tempdir().unwrap();
    remote.backup_prod(home.path());
    // An app that takes the connection and never answers.
    let app = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    app.set_nonblocking(true).unwrap();
    let url = format!("http://{}", app.local_addr().unwrap());
    let mut child = remote
        .xtask_command(home.path(), &["drill", "--yes"])
        .env("QBTIME_APP_URL", &url)
        .env("QBTIME_DEVOPS_TOKEN", TOKEN_SECRET)
        .env_remove("QBTIME_DRILL_SIGNIN_PATH")
        .env_remove("QBTIME_DRILL_REPORT_PATH")
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(120);
    let _held = loop {
        match app.accept() {
            Ok((conn, _)) => break conn,
            Err(_) if std::time::Instant::now() < deadline => {
                assert!(child.try_wait().unwrap().is_none(), "the drill ended first");
                std::thread::sleep(std::time::Duration::from_millis(50));
            }
            Err(e) => panic!("the app checks never called: {e}"),
        }
    };
    // SAFETY: kill(2) on our own child, which has not been waited for.
    unsafe { libc::kill(child.id() as libc::pid_t, libc::SIGINT) };
    let stopped_by = std::time::Instant::now() + std::time::Duration::from_secs(20);
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break status;
        }
        if std::time::Instant::now() > stopped_by {
            let _ = child.kill();
            let _ = child.wait();
            panic!("the drill ran on 20 s after one SIGINT");
        }
        std::thread::sleep(std::time::Duration::from_millis(100));
    };
    let mut stderr = String::new();
    use std::io::Read;
    let _ = child.stderr.take().unwrap().read_to_string(&mut stderr);
    assert_eq!(status.code(), Some(130), "{stderr}");
    assert!(
        log_rows(&remote.sb).is_empty(),
        "an interrupted drill was logged:\n{}",
        log_text(&remote.sb)
    );
}

/// atkCF: prod's short name changed (`vars.APP_ENV` prod -> live), the
/// database the same (same name, same id). Its backups stay live's, but
/// the drill of one of them, logged from `prod` the day before, is gone
/// from `status --env live`: "last drill none recorded", as if the
/// backups of that database had never been rehearsed.
#[test]
fn a_drill_of_prods_backup_is_still_told_after_prods_short_name_changed() {
    let remote = Remote::new("");
    let home = tempfile::tempdir().unwrap();
    let backup = remote.backup_prod(home.path());
    remote
        .xtask(home.path(), &["drill", "--to", "local", "--yes"])
        .assert_ok();

    remote.sb.rename_prod_to_live();

    let status = remote.xtask(home.path(), &["status", "--env", "live"]);
    let line = status
        .stdout
        .lines()
        .find(|l| l.contains("last drill"))
        .unwrap_or_else(|| panic!("{}", status.all()));
    assert!(
        line.contains(&backup),
        "the drill of {backup}, logged from `prod`, is forgotten once prod is called live:\n{}",
        status.all()
    );
}

#[test]
fn a_drill_with_no_from_after_prods_short_name_changed_names_the_production_environment() {
    let sb = Sandbox::new();
    sb.rename_prod_to_live();

    for args in [
        &["drill", "--to", "local", "--yes"][..],
        &["drill", "--to", "local", "--dry-run"][..],
    ] {
        let run = sb.xtask(args);
        assert_eq!(run.code, Some(2), "{args:?}:\n{}", run.all());
        assert!(
            run.stderr.contains("no `prod` environment") && run.stderr.contains("--from live"),
            "a drill with no --from, prod being called live, should say prod is gone and name \
             --from live, not an unknown `prod` the user never typed ({args:?}):\n{}",
            run.all()
        );
        assert!(
            !run.stdout.contains("restore"),
            "nothing runs: {}",
            run.all()
        );
    }
    assert!(log_rows(&sb).is_empty(), "{}", log_text(&sb));
}

/// The drill log as `drill` writes it, with one row per `(date, result)`.
fn write_drill_log(sb: &Sandbox, rows: &[(String, &str)]) {
    let mut text = String::from(
        "# Restore drills\n\n\
         | date (UTC) | from → to | backup | sha256 | verify | restore | rows | key | audit chain | sign-in | report | result | seconds |\n\
         |---|---|---|---|---|---|---|---|---|---|---|---|---|\n",
    );
    for (date, result) in rows {
        let check = if *result == "PASS" { "pass" } else { "FAIL" };
        text.push_str(&format!(
            "| {date} | prod → staging | backup-prod-20260101-0000.sql | ab | pass | {check} | pass | pass | skip | skip | skip | {result} | verify 1.0 |\n"
        ));
    }
    std::fs::create_dir_all(sb.path().join("docs")).unwrap();
    std::fs::write(sb.path().join("docs/restore-drills.md"), text).unwrap();
}

fn drill_warnings(run: &Run) -> Vec<String> {
    { run.stderr.lines() }
        .filter(|l| l.contains("warning") && l.contains("drill"))
        .map(str::to_owned)
        .collect()
}

/// The runbook asks for a drill each quarter and its result recorded:
/// `status` reads the record, and says so when the last drill is more
/// than a quarter old or failed, with the command to run; a recent pass
/// is no warning.
#[test]
fn status_warns_when_the_last_drill_is_overdue_or_failed() {
    let sb = Sandbox::new();
    let days_ago = |d: i64| {
        (chrono::Utc::now() - chrono::Duration::days(d))
            .format("%Y-%m-%d %H:%M")
            .to_string()
    };

    write_drill_log(&sb, &[(days_ago(200), "PASS")]);
    let run = sb.xtask(&["status", "--env", "prod"]);
    let warned = drill_warnings(&run);
    assert!(
        warned.len() == 1
            && warned[0].contains("prod")
            && warned[0].contains("200 days")
            && warned[0].contains("cargo xtask drill"),
        "{}",
        run.all()
    );

    write_drill_log(&sb, &[(days_ago(200), "PASS"), (days_ago(3), "FAIL")]);
    let run = sb.xtask(&["status", "--env", "prod"]);
    let warned = drill_warnings(&run);
    assert!(
        warned.len() == 1 && warned[0].contains("FAIL") && warned[0].contains("cargo xtask drill"),
        "{}",
        run.all()
    );

    write_drill_log(&sb, &[(days_ago(3), "PASS")]);
    let run = sb.xtask(&["status", "--env", "prod"]);
    assert!(drill_warnings(&run).is_empty(), "{}", run.all());
}

/// A copy of the local backup `backup`, recorded as prod's taken `days`
/// ago; its file name.
fn as_prods_backup_of(sb: &Sandbox, backup: &str, days: i64) -> String {
    let at = chrono::Utc::now() - chrono::Duration::days(days);
    copy_taken_at(sb, backup, "prod", at, |m| {
        m["environment"] = "prod".into();
        m["database"]["name"] = "qbtime_db_prod".into();
    })
}

/// Production's backups kept a quarter with no drill ever recorded are
/// the runbook's "guess": `status` says so, with the command; a project
/// younger than that, or an environment other than production, is not
/// nagged.
#[test]
fn status_warns_when_production_kept_backups_a_quarter_and_was_never_drilled() {
    let sb = Sandbox::new();
    sb.apply_migrations();
    sb.xtask(&["backup", "local"]).assert_ok();
    let local = only_backup(&sb);
    let young = as_prods_backup_of(&sb, &local, 10);
    let run = sb.xtask(&["status"]);
    assert!(drill_warnings(&run).is_empty(), "{}", run.all());

    as_prods_backup_of(&sb, &local, 100);
    let run = sb.xtask(&["status"]);
    let warned = drill_warnings(&run);
    assert!(
        warned.len() == 1
            && warned[0].contains("prod: no restore drill of its backups is recorded")
            && warned[0].contains("100 days old")
            && warned[0].contains("`cargo xtask drill --from prod --dry-run`"),
        "{}",
        run.all()
    );
    // A drill recorded since, passed, ends it.
    write_drill_log(
        &sb,
        &[(
            chrono::Utc::now().format("%Y-%m-%d %H:%M").to_string(),
            "PASS",
        )],
    );
    let run = sb.xtask(&["status"]);
    assert!(drill_warnings(&run).is_empty(), "{young}: {}", run.all());
}

/// A drill record's date is text in a committed file: one written by a
/// machine whose clock ran a year ahead, or garbled in a merge, is no
/// proof of a recent drill. `status` warned of the quarter-old pass
/// before it, and fell silent once such a row was logged after it (a
/// future date is never more than a quarter old; a date that does not
/// parse was taken as no drill to judge): it says the record's date
/// cannot be right, with the command to drill again.
#[test]
fn status_is_not_silenced_by_a_drill_record_dated_in_the_future_or_not_a_date() {
    let sb = Sandbox::new();
    let at = |d: i64| {
        (chrono::Utc::now() - chrono::Duration::days(d))
            .format("%Y-%m-%d %H:%M")
            .to_string()
    };
    for bad in [at(-365), "2026-13-45 99:99".to_owned(), "soon".to_owned()] {
        write_drill_log(&sb, &[(at(200), "PASS"), (bad.clone(), "PASS")]);
        let run = sb.xtask(&["status", "--env", "prod"]);
        let warned = drill_warnings(&run);
        assert!(
            warned.len() == 1
                && warned[0].contains(&bad)
                && warned[0].contains("cargo xtask drill --from prod"),
            "a PASS dated {bad:?} silenced the overdue drill:\n{}",
            run.all()
        );
    }
}

/// atkDQ: the drill log is a committed file, edited by hand and merged.
/// One whose last row has lost its line break (an editor set not to end
/// files with one, a merge, a disk that filled during the last append)
/// got the next drill's row glued onto that line: `status` reads a row
/// only when it has the table's 15 cells, so it passed over the glued
/// line and still reported the row before as the last drill. A drill that
/// failed was then told as a recent pass, and `status` kept quiet. The
/// drill's row must start on a line of its own, whatever the log's last
/// line.
#[test]
fn a_failed_drill_logged_after_a_row_without_its_line_break_is_told_by_status() {
    let sb = Sandbox::new();
    sb.apply_migrations();
    sb.execute_sql(SEED_SQL);
    sb.xtask(&["backup", "local"]).assert_ok();
    let name = only_backup(&sb);
    // The backup's bytes changed since it was verified (same size): the
    // drill's verify calls it BAD, and the drill fails.
    let path = sb.backups().join(&name);
    let mut bytes = std::fs::read(&path).unwrap();
    let at = bytes.len() / 2;
    bytes[at] = if bytes[at] == b'x' { b'y' } else { b'x' };
    std::fs::write(&path, &bytes).unwrap();
    // A recent pass, its row without the final line break.
    let recent = (chrono::Utc::now() - chrono::Duration::days(3))
        .format("%Y-%m-%d %H:%M")
        .to_string();
    std::fs::create_dir_all(sb.path().join("docs")).unwrap();
    std::fs::write(
        sb.path().join("docs/restore-drills.md"),
        format!(
            "# Restore drills\n\n\
             | date (UTC) | from → to | backup | sha256 | verify | restore | rows | key | audit chain | sign-in | report | result | seconds |\n\
             |---|---|---|---|---|---|---|---|---|---|---|---|---|\n\
             | {recent} | local → local | {name} | ab | pass | pass | pass | skip | skip | skip | skip | PASS | verify 1.0 |"
        ),
    )
    .unwrap();

    let run = sb.xtask(&[
        "drill", "--from", "local", "--to", "local", "--backup", &name, "--yes",
    ]);
    assert_eq!(run.code, Some(1), "the drill should fail:\n{}", run.all());
    let log = log_text(&sb);
    let run = sb.xtask(&["status", "--env", "local"]);
    let warned = drill_warnings(&run);
    assert!(
        warned.len() == 1 && warned[0].contains("FAIL"),
        "status does not tell the failed drill:\n{}\n{log}",
        run.all()
    );
    assert!(
        log.lines()
            .any(|l| l.starts_with("| ") && l.contains("| FAIL |") && !l.contains(&recent)),
        "the failed drill's row is not on a line of its own:\n{log}"
    );
}

/// fxDU: a drill row cut inside a character (a drill killed mid-append, a
/// disk that filled) left the log non-UTF-8, and `status` then read no
/// drill at all: the failed drill before it went untold. Only the cut line
/// is passed over, and status says one was.
#[test]
fn status_still_reads_the_drill_log_when_one_line_was_cut_inside_a_character() {
    let sb = Sandbox::new();
    let days_ago = |d: i64| {
        (chrono::Utc::now() - chrono::Duration::days(d))
            .format("%Y-%m-%d %H:%M")
            .to_string()
    };
    write_drill_log(&sb, &[(days_ago(3), "FAIL")]);
    let path = sb.path().join("docs/restore-drills.md");
    let mut bytes = std::fs::read(&path).unwrap();
    // "→" is E2 86 92: cut after its first two bytes, then the line break
    // the next append puts first.
    bytes.extend_from_slice(format!("| {} | prod ", days_ago(1)).as_bytes());
    bytes.extend_from_slice(&[0xE2, 0x86]);
    bytes.push(b'\n');
    std::fs::write(&path, bytes).unwrap();
    let run = sb.xtask(&["status", "--env", "prod"]);
    let warned = drill_warnings(&run);
    assert!(
        warned
            .iter()
            .any(|w| w.contains("FAIL") && w.contains("cargo xtask drill")),
        "the failed drill before the cut line is not told:\n{}",
        run.all()
    );
    assert!(
        run.stderr.contains("docs/restore-drills.md")
            && run.stderr.contains("line 6")
            && run.stderr.contains("not UTF-8"),
        "status does not say that line 6 of the drill log was passed over:\n{}",
        run.all()
    );
}

/// fxDU: a drill log past the 64 MiB `status` reads took a drill's row
/// where no reader would read it, after the drill had replaced its
/// target. The drill is refused before anything runs, naming the log and
/// the fix, and the log is left as it was.
#[test]
fn a_drill_its_log_has_no_room_to_record_is_not_run() {
    let remote = Remote::new("");
    let home = tempfile::tempdir().unwrap();
    remote.backup_prod(home.path());
    let path = remote.sb.path().join("docs/restore-drills.md");
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    let file = std::fs::File::create(&path).unwrap();
    file.set_len((64 << 20) + 1).unwrap();
    let state = remote.sb.path().join(".wrangler");
    assert!(!state.exists(), "no local D1 yet");
    let run = remote.xtask(home.path(), &["drill", "--to", "local", "--yes"]);
    assert!(!run.ok, "{}", run.all());
    assert!(
        run.stderr.contains("docs/restore-drills.md")
            && run.stderr.contains("nothing was done")
            && run.stderr.contains("Move it aside"),
        "{}",
        run.all()
    );
    assert!(
        !state.exists(),
        "the drill restored into local D1:\n{}",
        run.all()
    );
    assert_eq!(std::fs::metadata(&path).unwrap().len(), (64 << 20) + 1);
}

/// rvDX: a drill log that is a symbolic link (planted, or committed as one)
/// passed the room check, so the drill ran and restored into its target,
/// and only then was its row refused ("a symbolic link; this tool never
/// follows one"): a drill that ran and is recorded nowhere. It is refused
/// before anything runs, naming the link and the fix, and the file the
/// link leads to is left as it was.
#[test]
fn a_drill_whose_log_is_a_symbolic_link_is_not_run() {
    let remote = Remote::new("");
    let home = tempfile::tempdir().unwrap();
    remote.backup_prod(home.path());
    let decoy = home.path().join("decoy.md");
    std::fs::write(&decoy, "not the drill log\n").unwrap();
    let path = remote.sb.path().join("docs/restore-drills.md");
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    std::os::unix::fs::symlink(&decoy, &path).unwrap();
    let state = remote.sb.path().join(".wrangler");
    assert!(!state.exists(), "no local D1 yet");
    let run = remote.xtask(home.path(), &["drill", "--to", "local", "--yes"]);
    assert!(!run.ok, "{}", run.all());
    assert!(
        run.stderr.contains("docs/restore-drills.md") && run.stderr.contains("symbolic link"),
        "{}",
        run.all()
    );
    assert!(
        !state.exists(),
        "the drill restored into local D1 though its log is a link it will not write:\n{}",
        run.all()
    );
    assert_eq!(
        std::fs::read_to_string(&decoy).unwrap(),
        "not the drill log\n"
    );
    assert!(
        std::fs::symlink_metadata(&path)
            .unwrap()
            .file_type()
            .is_symlink()
    );
}

/// `cmd`'s output, once it ends; one still running after two minutes (a
/// drill waiting for ever) is killed and fails the test. `started` is
/// called while it runs.
fn ended(cmd: &mut std::process::Command, started: impl FnOnce(&mut std::process::Child)) -> Run {
    use std::io::Read;
    let mut child = cmd
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let read = |mut pipe: Box<dyn Read + Send>| {
        std::thread::spawn(move || {
            let mut bytes = Vec::new();
            let _ = pipe.read_to_end(&mut bytes);
            bytes
        })
    };
    let stdout = read(Box::new(child.stdout.take().unwrap()));
    let stderr = read(Box::new(child.stderr.take().unwrap()));
    started(&mut child);
    let status = ended_within(&mut child, std::time::Duration::from_secs(120));
    let stderr = stderr.join().unwrap();
    let Some(status) = status else {
        panic!(
            "still waiting two minutes on:\n{}",
            String::from_utf8_lossy(&stderr)
        );
    };
    Run::from_output(std::process::Output {
        status,
        stdout: stdout.join().unwrap(),
        stderr,
    })
}

/// The drill log, written with one earlier record: its path and bytes.
fn drill_log_with_a_record(sb: &Sandbox) -> (std::path::PathBuf, Vec<u8>) {
    let path = sb.path().join("docs/restore-drills.md");
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    let text = b"# Restore drills\n\nan earlier record\n".to_vec();
    std::fs::write(&path, &text).unwrap();
    (path, text)
}

/// A hold on `path`'s append lock (`flock`), as another process appending
/// to it, or one stuck, keeps it, until it is dropped.
fn held(path: &std::path::Path) -> std::fs::File {
    let held = std::fs::File::open(path).unwrap();
    held.lock().unwrap();
    held
}

/// That `run`, a drill into local D1, was refused before anything ran,
/// saying each of `says`.
fn assert_not_run(remote: &Remote, run: &Run, says: &[&str]) {
    assert!(!run.ok, "{}", run.all());
    for said in says {
        assert!(run.stderr.contains(said), "{said}:\n{}", run.all());
    }
    assert!(
        !remote.sb.path().join(".wrangler").exists(),
        "the drill restored into local D1 though its log could not take its row:\n{}",
        run.all()
    );
}

/// fxDZ: the append to the drill log waited for its lock without a bound:
/// a drill log another process held locked (another account's drill, a
/// process stuck) made the drill run, restore into its target, and then
/// wait for ever. It is refused before anything runs, naming the log, that
/// another process holds it, and the fix; the log is left as it was.
#[test]
fn a_drill_whose_log_another_process_holds_locked_is_not_run() {
    let remote = Remote::new("");
    let home = tempfile::tempdir().unwrap();
    remote.backup_prod(home.path());
    let (path, text) = drill_log_with_a_record(&remote.sb);
    let _held = held(&path);
    let run = ended(
        &mut remote.xtask_command(home.path(), &["drill", "--to", "local", "--yes"]),
        |_| {},
    );
    assert_not_run(
        &remote,
        &run,
        &["docs/restore-drills.md", "another process", "lsof"],
    );
    assert_eq!(std::fs::read(&path).unwrap(), text);
}

/// fxDZ: a drill log locked by another process after the drill's room
/// check (while it runs): the drill has run, its record cannot be written.
/// It waits for the lock a bounded time, then says the drill ran, how it
/// went, that its record could not be written and why, and gives its row
/// to append; it exits 1. The log is left as it was.
#[test]
fn a_drill_whose_log_is_locked_while_it_runs_says_it_ran_and_was_not_recorded() {
    let remote = Remote::new("");
    let home = tempfile::tempdir().unwrap();
    let backup = remote.backup_prod(home.path());
    let (path, text) = drill_log_with_a_record(&remote.sb);
    let mut hold = None;
    let run = ended(
        &mut remote.xtask_command(home.path(), &["drill", "--yes"]),
        |child| {
            // The restore into staging has started: the room check is
            // behind it.
            let deadline = std::time::Instant::now() + std::time::Duration::from_secs(120);
            while !remote
                .server
                .requests()
                .iter()
                .any(|r| r.contains(STAGING_UUID))
            {
                assert!(child.try_wait().unwrap().is_none(), "the drill ended first");
                assert!(
                    std::time::Instant::now() < deadline,
                    "no request for staging"
                );
                std::thread::sleep(std::time::Duration::from_millis(5));
            }
            hold = Some(held(&path));
        },
    );
    assert_eq!(run.code, Some(1), "{}", run.all());
    assert_eq!(
        counts(&remote.staging),
        counts(&remote.db),
        "the premise: the drill ran"
    );
    for said in [
        "ran",
        "PASSED",
        "could not be recorded",
        "docs/restore-drills.md",
        "another process",
    ] {
        assert!(run.stderr.contains(said), "{said}:\n{}", run.all());
    }
    assert!(
        run.stderr
            .lines()
            .any(|l| l.trim_start().starts_with("| 2") && l.contains(&backup)),
        "the row to append is not given:\n{}",
        run.all()
    );
    assert_eq!(std::fs::read(&path).unwrap(), text);
}

/// A drill into local D1 run where docs/, the drill log's directory, is
/// `mounted` over ([`xtask_with_mounted`]); None where that cannot be done.
fn drill_with_its_log_on(remote: &Remote, home: &std::path::Path, mounted: Mounted) -> Option<Run> {
    let cmd = xtask_with_mounted(&remote.sb.path().join("docs"), mounted)?;
    let mut cmd = remote
        .sb
        .sandboxed(cmd, &["drill", "--to", "local", "--yes"]);
    remote.with_api(&mut cmd, home);
    Some(Run::from_output(cmd.output().unwrap()))
}

/// fxDZ: a drill log on a read-only file system passed the room check: the
/// drill ran, restored into its target, and then could not write its row.
/// It is refused before anything runs, naming the log and the fix, and
/// the log is left as it was.
#[test]
fn a_drill_whose_log_is_on_a_read_only_file_system_is_not_run() {
    let remote = Remote::new("");
    let home = tempfile::tempdir().unwrap();
    remote.backup_prod(home.path());
    let (path, text) = drill_log_with_a_record(&remote.sb);
    let Some(run) = drill_with_its_log_on(&remote, home.path(), Mounted::ReadOnly) else {
        return;
    };
    assert_not_run(
        &remote,
        &run,
        &["docs/restore-drills.md", "read-only", "nothing was done"],
    );
    assert_eq!(std::fs::read(&path).unwrap(), text);
}

/// fxDZ: a drill log on a full disk: the drill ran, restored into its
/// target, and then its row could not be written. It is refused before
/// anything runs, naming the log, the space left and the fix.
#[test]
fn a_drill_whose_log_has_no_free_space_left_is_not_run() {
    let remote = Remote::new("");
    let home = tempfile::tempdir().unwrap();
    remote.backup_prod(home.path());
    std::fs::create_dir_all(remote.sb.path().join("docs")).unwrap();
    let Some(run) = drill_with_its_log_on(&remote, home.path(), Mounted::Full) else {
        return;
    };
    assert_not_run(
        &remote,
        &run,
        &["docs/restore-drills.md", "free", "nothing was done"],
    );
}

/// `docs` committed as a link to a directory out of the checkout (git
/// stores links): the drill ran, restored into its target, and wrote its
/// row into `restore-drills.md` wherever the link led (created there, or
/// appended to another project's log). It is refused before anything runs,
/// naming the log; nothing is written where the link leads.
#[test]
fn a_drill_whose_log_directory_is_a_link_out_of_the_checkout_is_not_run() {
    let remote = Remote::new("");
    let home = tempfile::tempdir().unwrap();
    remote.backup_prod(home.path());
    let elsewhere = tempfile::tempdir().unwrap();
    std::os::unix::fs::symlink(elsewhere.path(), remote.sb.path().join("docs")).unwrap();
    let run = remote.xtask(home.path(), &["drill", "--to", "local", "--yes"]);
    assert_not_run(
        &remote,
        &run,
        &["docs", "symbolic link", "nothing was done"],
    );
    assert!(
        std::fs::read_dir(elsewhere.path())
            .unwrap()
            .next()
            .is_none(),
        "the drill wrote where the link leads"
    );
}

/// rvAG: an app check passed on any 2xx whose body did not hold JSON
/// `"ok": false` or `"valid": false`: an HTML page (Cloudflare Pages'
/// fallback for a route the app lacks), `"ok": "false"` (a string), a
/// reply over the 1 MiB kept whose `"valid": false` came after the cut,
/// and a 204 with no body all passed the drill. A check passes only on
/// complete JSON that says `true`; each of these fails the drill, logged
/// FAIL, naming the check and why, never quoting the body.
#[test]
fn an_app_check_passes_only_on_a_complete_json_body_that_says_true() {
    let remote = Remote::new("");
    let home = tempfile::tempdir().unwrap();
    remote.backup_prod(home.path());
    let app = App::start();
    let past_the_cut = format!(
        r#"{{"ok":true,"pad":"{}","valid":false}}"#,
        "p".repeat((1 << 20) + 10)
    );
    let replies: [(&str, u16, &str, &str); 4] = [
        (
            "an HTML page",
            200,
            "<!doctype html><html><body>qbtime-spa</body></html>",
            "JSON",
        ),
        ("ok as a string", 200, r#"{"ok":"false"}"#, "true"),
        ("a body cut at 1 MiB", 200, &past_the_cut, "1 MiB"),
        ("a 204 with no body", 204, "", "JSON"),
    ];
    for (n, (what, status, body, reason)) in replies.into_iter().enumerate() {
        app.answer("/api/v1/platform/verify-audit", status, body);
        let run = drill_with_app(&remote, home.path(), &app, &["drill", "--yes"]);
        assert!(!run.ok, "{what} passed the drill:\n{}", run.all());
        let rows = log_rows(&remote.sb);
        assert_eq!(rows.len(), n + 1, "{what}: {}", log_text(&remote.sb));
        let c = cells(&remote.sb, &rows[n]);
        assert_eq!(c["audit chain"], "FAIL", "{what}: {}", rows[n]);
        assert_eq!(c["result"], "FAIL", "{what}: {}", rows[n]);
        assert_eq!(c["sign-in"], "pass", "{what}: {}", rows[n]);
        let line = { run.stderr.lines() }
            .find(|l| l.contains("/api/v1/platform/verify-audit"))
            .unwrap_or_else(|| panic!("{what}: no line names the check:\n{}", run.all()));
        assert!(line.contains(reason), "{what}: {line}");
        for quoted in ["qbtime-spa", "ppppp", "\"false\""] {
            assert!(
                !run.all().contains(quoted),
                "{what}: the body is quoted:\n{}",
                run.all()
            );
        }
    }
}

/// rvAG: `QBTIME_APP_URL=http://…` was taken for any host, and the DevOps
/// token sent to it in the clear, though the message says http:// is "for
/// a local app". http:// is for a loopback host only (127.0.0.0/8, ::1,
/// localhost); any other is refused before anything runs, a dry run's too,
/// naming QBTIME_APP_URL and https://.
#[test]
fn a_drill_refuses_plain_http_to_a_host_not_on_this_machine() {
    let remote = Remote::new("");
    let home = tempfile::tempdir().unwrap();
    remote.backup_prod(home.path());
    let before = remote.server.requests().len();
    let staging = counts(&remote.staging);
    for args in [&["drill", "--dry-run"][..], &["drill", "--yes"]] {
        let out = remote
            .xtask_command(home.path(), args)
            .env("QBTIME_APP_URL", "http://example.invalid")
            .env("QBTIME_DEVOPS_TOKEN", TOKEN_SECRET)
            .output()
            .unwrap();
        let run = Run::from_output(out);
        assert!(!run.ok, "{args:?}: {}", run.all());
        assert!(
            run.stderr.contains("QBTIME_APP_URL"),
            "{args:?}: {}",
            run.stderr
        );
        assert!(run.stderr.contains("https://"), "{args:?}: {}", run.stderr);
        assert!(!run.all().contains(TOKEN_SECRET), "{}", run.all());
    }
    assert_eq!(
        remote.server.requests().len(),
        before,
        "{:?}",
        remote.server.requests()
    );
    assert_eq!(counts(&remote.staging), staging);
    assert!(log_rows(&remote.sb).is_empty(), "{}", log_text(&remote.sb));
    // A local app over http:// is still called: localhost's name too.
    let app = App::start();
    let url = app.url().replace("127.0.0.1", "localhost");
    let run = Run::from_output(
        remote
            .xtask_command(home.path(), &["drill", "--dry-run"])
            .env("QBTIME_APP_URL", &url)
            .env("QBTIME_DEVOPS_TOKEN", TOKEN_SECRET)
            .output()
            .unwrap(),
    );
    run.assert_ok();
}

/// rvAO 2: a `QBTIME_APP_URL` holding a user and password
/// (`http://ops:…@127.0.0.1:…`) was taken: the restore ran, the password
/// stood on node's command line (`ps` shows it to every user), every app
/// check failed (Node's fetch takes no URL with credentials) and a FAIL
/// was logged; a dry run took it too. It is refused before anything runs,
/// a dry run's too (exit 2), naming QBTIME_APP_URL and never the password.
#[test]
fn a_drill_refuses_an_app_url_holding_a_password_before_anything_runs() {
    let (remote, home, app) = prod_backed_up_and_an_app();
    let url = app.url().replace("http://", "http://ops:S3cretPw9x@");
    let before = remote.server.requests().len();
    let staging = counts(&remote.staging);
    for args in [&["drill", "--dry-run"][..], &["drill", "--yes"]] {
        let run = drill_at(&remote, home.path(), &url, TOKEN_SECRET, args);
        let told = ["QBTIME_APP_URL", "password"].map(|t| run.stderr.contains(t));
        assert_eq!(
            (run.code, told),
            (Some(2), [true; 2]),
            "{args:?}: {}",
            run.all()
        );
        assert!(!run.all().contains("S3cretPw9x"), "{}", run.all());
    }
    assert_eq!(remote.server.requests().len(), before);
    assert_eq!(counts(&remote.staging), staging);
    assert!(app.requests().is_empty(), "{:?}", app.requests());
    assert!(log_rows(&remote.sb).is_empty(), "{}", log_text(&remote.sb));
}

/// rvAO 2, 3: the app's address was handed to node on its command line
/// (which `ps` shows every user), and the DevOps token was redacted only
/// as itself: an app that echoed it percent-encoded, upper-cased, or
/// broken by a line break had it printed by the drill. Node is given the
/// address by its environment, as the token, and each changed form of the
/// token is redacted.
#[test]
fn a_drill_never_prints_the_token_an_app_echoes_changed_nor_puts_its_address_on_a_command_line() {
    let (remote, home, app) = prod_backed_up_and_an_app();
    let token = "dvtok_Abc123Def456/Ghi789+Jkl012";
    let upper = token.to_uppercase();
    for (path, echoed) in [
        (
            "/api/v1/platform/verify-audit",
            "dvtok_Abc123Def456%2FGhi789%2BJkl012",
        ),
        ("/api/v1/auth/session", upper.as_str()),
        (
            "/api/v1/reports/smoke",
            "dvtok_Abc123Def\\n456/Ghi789+Jkl012",
        ),
    ] {
        app.answer(path, 401, &format!(r#"{{"error":"bad token {echoed}"}}"#));
    }
    let run = drill_at(&remote, home.path(), &app.url(), token, &["drill", "--yes"]);
    assert!(!run.ok, "{}", run.all());
    assert_eq!(app.requests().len(), 3, "{:?}", app.requests());
    let printed = format!("{}{}", run.all(), log_text(&remote.sb)).to_lowercase();
    for part in ["abc123def", "ghi789", "jkl012"] {
        assert!(!printed.contains(part), "{part}:\n{}", run.all());
    }
    for check in ["audit chain", "sign-in", "report"] {
        let said = format!("[fail] app {check}: ");
        let line = printed.lines().find(|l| l.trim_start().starts_with(&said));
        assert!(
            line.is_some_and(|l| l.ends_with("bad token [redacted]")),
            "{check}:\n{}",
            run.all()
        );
    }
    for request in app.requests() {
        assert!(!request.address_on_a_command_line, "{request:?}");
    }
}

/// rvAR: a drill with the app's checks printed the restore's checklist
/// with "[ ] audit chain", "[ ] sign-in" and "[ ] reports" unchecked, then
/// "[pass] app audit chain …" for the same checks a few lines later. The
/// checklist reflects the checks the drill runs: none of the three is left
/// unchecked when the drill checks it.
#[test]
fn a_drills_checklist_leaves_unchecked_none_of_the_checks_it_runs() {
    let (remote, home, app) = prod_backed_up_and_an_app();
    let run = drill_with_app(&remote, home.path(), &app, &["drill", "--yes"]);
    run.assert_ok();
    assert!(
        run.stdout.contains("[pass] app audit chain"),
        "{}",
        run.all()
    );
    let unchecked: Vec<&str> = { run.stdout.lines() }
        .filter(|l| {
            ["[ ] audit chain", "[ ] sign-in", "[ ] reports"]
                .iter()
                .any(|c| l.contains(c))
        })
        .collect();
    assert!(
        unchecked.is_empty(),
        "the drill's checklist leaves unchecked what it checks: {unchecked:?}\n{}",
        run.all()
    );
}

/// MR 4: a migration pending before the drill began (in the migrations
/// directory, applied to neither prod nor the backup) was told as "1
/// migration pending, which the backup predates", as if the drill had
/// undone it. It is told as pending already, not applied by the drill,
/// with what applies it.
#[test]
fn a_drill_tells_a_migration_pending_before_it_as_pending_already() {
    let remote = Remote::new("");
    let home = tempfile::tempdir().unwrap();
    remote.backup_prod(home.path());
    std::fs::write(
        remote.sb.path().join("migrations/0005_later.sql"),
        "CREATE TABLE later (id INTEGER PRIMARY KEY);",
    )
    .unwrap();
    let run = remote.xtask(home.path(), &["drill", "--to", "local", "--yes"]);
    run.assert_ok();
    let all = run.all();
    let told: Vec<&str> = { all.lines() }
        .filter(|l| l.contains("0005_later.sql"))
        .collect();
    assert!(
        !told.is_empty(),
        "the pending migration is not told:\n{}",
        run.all()
    );
    for line in told {
        assert!(
            !line.contains("which the backup predates") && !line.contains("now has"),
            "told as if the drill left it pending:\n{}",
            run.all()
        );
    }
    assert!(
        run.stderr.contains(
            "warning: qbtime_db_local has 1 migration pending already before this restore: \
             0005_later.sql; the backup does not record it applied either, and a restore applies \
             no migration (`cargo xtask migrate local --yes` applies it)"
        ),
        "not told as pending already, with what applies it:\n{}",
        run.all()
    );
}

/// MR 1: prod holding a table no migration makes whose FOREIGN KEY refers
/// to `accounts`: a drill refused for it said the schema's paragraph
/// twice (verify's warning, the failure), and one given
/// `--allow-schema-change` three times. Each says it once.
#[test]
fn a_drill_of_a_hand_made_table_referring_to_accounts_says_it_once() {
    let remote = Remote::new("");
    let home = tempfile::tempdir().unwrap();
    execute_file(
        &remote.db,
        "CREATE TABLE account_holds (account_id INTEGER REFERENCES accounts (id));",
    );
    remote.backup_prod(home.path());
    let flag = "--allow-schema-change account_holds";
    let refused = remote.xtask(home.path(), &["drill", "--to", "local", "--yes"]);
    assert_ne!(refused.code, Some(0), "{}", refused.all());
    let allowed = remote.xtask(
        home.path(),
        &[
            "drill",
            "--to",
            "local",
            "--yes",
            "--allow-schema-change",
            "account_holds",
        ],
    );
    allowed.assert_ok();
    assert!(refused.stderr.contains(flag), "{}", refused.all());
    for (run, said) in [
        (&refused, "account_holds, which no migration makes"),
        (&allowed, "account_holds"),
    ] {
        assert_eq!(
            run.all().matches(said).count(),
            1,
            "said other than once:\n{}",
            run.all()
        );
    }
}

/// rvBQ 3: a drill leaves the schema's difference to its restore, which
/// says it as it refuses or restores it; a drill whose verify fails has no
/// restore after it, so its verify says it: a backup lacking an index its
/// migrations make, whose manifest was then edited (a row count), failed
/// the drill with `[warn] schema (the warning below)` and no warning below.
#[test]
fn a_drill_whose_verify_fails_still_says_the_schemas_difference() {
    let sb = Sandbox::new();
    sb.apply_migrations();
    sb.execute_sql("DROP INDEX customers_by_company_name;");
    sb.xtask(&["backup", "local"]).assert_ok();
    let name = only_backup(&sb);
    edit_manifest(&sb, &name, |m| m["rows"]["encryption_keys"] = 7.into());
    let file = sb.backups().join(&name);
    let run = sb.xtask(&[
        "drill",
        "--to",
        "local",
        "--from",
        "local",
        "--backup",
        file.to_str().unwrap(),
        "--yes",
    ]);
    assert_eq!(run.code, Some(1), "{}", run.all());
    assert!(
        run.stdout.contains("schema") && run.stderr.contains("customers_by_company_name"),
        "the schema's difference was not said:\n{}",
        run.all()
    );
}

/// rvBS 1: after a restore, the newest backup of the target is the safety
/// backup that restore took; a local drill of local's backups rehearsed
/// it, putting back what the restore replaced, and said nothing (its
/// plan's `reason` line only hinted, and `-q` hid it). It warns as
/// `restore latest` does, with `-q` too and in its dry run, naming the
/// backup to pass instead.
#[test]
fn a_drill_of_a_safety_backup_warns_as_restore_latest_does_even_with_q() {
    let (_source, target, _restore, safety) = restored_over_a_row();
    let drill = ["drill", "--to", "local", "--from", "local", "-q"];
    let warned = format!("latest:local is {safety}, the safety backup taken at");
    let back = "puts back what qbtime_db_local held before that restore";
    let dry = target.xtask(&[&drill[..], &["--dry-run"]].concat());
    dry.assert_ok();
    assert!(
        dry.stderr.contains(&warned) && dry.stderr.contains(back),
        "{}",
        dry.all()
    );
    let run = target.xtask(&[&drill[..], &["--yes"]].concat());
    run.assert_ok();
    assert!(
        run.stderr.contains(&warned) && run.stderr.contains(back),
        "{}",
        run.all()
    );
    assert!(run.stderr.contains("--backup"), "{}", run.all());
}
