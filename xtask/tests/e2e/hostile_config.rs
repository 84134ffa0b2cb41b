//! Hostile configurations, checkouts, disks and signals (issue 11, classes 3,
//! 4 and 6), end to end with the real wrangler, local D1 and the loopback
//! D1 API. Each case asserts what an operator would notice: the exit code, a
//! message naming the problem, the target unchanged (by dump), and decoy
//! files outside the backup directory unchanged.

use crate::common;

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use common::app::App;
use common::decoys::Decoys;
use common::remote::*;
use common::*;

fn config(sb: &Sandbox) -> PathBuf {
    sb.path().join("wrangler.toml")
}

/// Rewrites the sandbox's wrangler.toml.
fn edit_config(sb: &Sandbox, edit: impl FnOnce(String) -> String) {
    let text = std::fs::read_to_string(config(sb)).unwrap();
    let edited = edit(text.clone());
    assert_ne!(text, edited, "the edit changed nothing");
    std::fs::write(config(sb), edited).unwrap();
}

fn import_requests(remote: &Remote) -> usize {
    remote
        .server
        .requests()
        .iter()
        .filter(|r| r.contains("/import"))
        .count()
}

/// A verified prod backup taken with the sandbox's original configuration.
fn prod_backup(remote: &Remote, home: &Path) -> String {
    let file = remote.sb.backups().join(remote.backup_prod(home));
    file.to_str().unwrap().to_owned()
}

#[test]
fn staging_and_prod_sharing_a_database_name_is_refused_naming_both() {
    let remote = Remote::new("");
    let home = tempfile::tempdir().unwrap();
    let file = prod_backup(&remote, home.path());
    edit_config(&remote.sb, |t| {
        t.replace(
            "database_name = \"qbtime_db_staging\"",
            "database_name = \"qbtime_db_prod\"",
        )
    });
    let decoys = Decoys::plant(remote.sb.path());
    let before = (
        dump_of(&remote.db),
        decoys.hashes(),
        remote.sb.backup_files(),
    );
    let requests = remote.server.requests().len();

    let run = remote.xtask(
        home.path(),
        &["restore", &file, "--to", "staging", "--replace", "--yes"],
    );
    run.assert_refused("both use database_name qbtime_db_prod");
    // A configuration that cannot be used is "could not run", as the
    // README's exit-code table says.
    assert_eq!(run.code, Some(2));
    assert!(
        run.stderr.contains("`staging` ([env.preview])"),
        "{}",
        run.stderr
    );
    assert!(
        run.stderr.contains("`prod` ([env.production])"),
        "{}",
        run.stderr
    );
    assert_eq!(
        remote.server.requests().len(),
        requests,
        "nothing reached D1"
    );
    let after = (
        dump_of(&remote.db),
        decoys.hashes(),
        remote.sb.backup_files(),
    );
    assert_eq!(before, after);

    // Every command reads the configuration first: a backup is refused too.
    remote
        .xtask(home.path(), &["backup", "staging"])
        .assert_refused("both use database_name");
    assert_eq!(remote.server.requests().len(), requests);
}

#[test]
fn staging_and_prod_sharing_a_database_id_is_refused_naming_both() {
    let remote = Remote::new("");
    let home = tempfile::tempdir().unwrap();
    let file = prod_backup(&remote, home.path());
    edit_config(&remote.sb, |t| t.replace(STAGING_UUID, PROD_UUID));
    let decoys = Decoys::plant(remote.sb.path());
    let before = (dump_of(&remote.db), decoys.hashes());
    let requests = remote.server.requests().len();

    let run = remote.xtask(
        home.path(),
        &["restore", &file, "--to", "staging", "--replace", "--yes"],
    );
    run.assert_refused(&format!("both use database_id {PROD_UUID}"));
    assert!(
        run.stderr.contains("[env.preview]") && run.stderr.contains("[env.production]"),
        "{}",
        run.stderr
    );
    assert_eq!(
        remote.server.requests().len(),
        requests,
        "nothing reached D1"
    );
    assert_eq!(before, (dump_of(&remote.db), decoys.hashes()));
}

#[test]
fn ids_swapped_between_staging_and_prod_are_refused_before_anything_is_written() {
    let remote = Remote::new("");
    let home = tempfile::tempdir().unwrap();
    let file = prod_backup(&remote, home.path());
    // No id is shared, so the configuration reads as valid; Cloudflare
    // says which database each id is.
    edit_config(&remote.sb, |t| {
        t.replace(STAGING_UUID, "swap")
            .replace(PROD_UUID, STAGING_UUID)
            .replace("swap", PROD_UUID)
    });
    let decoys = Decoys::plant(remote.sb.path());
    let before = (
        dump_of(&remote.db),
        dump_of(&remote.staging),
        decoys.hashes(),
        remote.sb.backup_files(),
    );
    let bookmark = "00000085-0000024c-00004c6d-8e61117bf38d7adb71b934ebbf891683";
    for args in [
        &["restore", &file, "--to", "staging", "--replace", "--yes"][..],
        &[
            "restore",
            &file,
            "--to",
            "staging",
            "--replace",
            "--dry-run",
        ],
        &["migrate", "staging", "--yes"],
        &[
            "time-travel",
            "restore",
            "staging",
            "--bookmark",
            bookmark,
            "--yes",
        ],
    ] {
        let run = remote.xtask(home.path(), args);
        run.assert_refused(&format!(
            "the configuration gives qbtime_db_staging (staging) the database_id {PROD_UUID}, \
             which in its Cloudflare account is the D1 database qbtime_db_prod"
        ));
        assert_eq!(run.code, Some(3), "{args:?}: {}", run.all());
    }
    assert_eq!(import_requests(&remote), 0);
    assert!(remote.server.time_travel_restores().is_empty());
    let after = (
        dump_of(&remote.db),
        dump_of(&remote.staging),
        decoys.hashes(),
        remote.sb.backup_files(),
    );
    assert_eq!(before, after);
}

#[test]
fn a_prod_environment_not_named_production_still_needs_its_typed_name() {
    let remote = Remote::new("");
    let home = tempfile::tempdir().unwrap();
    let file = prod_backup(&remote, home.path());
    // The same database, under `[env.prod]` instead of `[env.production]`.
    edit_config(&remote.sb, |t| t.replace("env.production", "env.prod"));
    let decoys = Decoys::plant(remote.sb.path());
    let before = (dump_of(&remote.db), decoys.hashes());

    let run = remote.xtask(
        home.path(),
        &["restore", &file, "--to", "prod", "--replace", "--yes"],
    );
    run.assert_refused("--confirm qbtime_db_prod");
    assert!(run.stderr.contains("--yes is not enough"), "{}", run.stderr);
    assert_eq!(import_requests(&remote), 0, "nothing was loaded");

    let info = remote.xtask(home.path(), &["time-travel", "info", "prod", "--json"]);
    info.assert_ok();
    let json: serde_json::Value = serde_json::from_str(&info.stdout).unwrap();
    let bookmark = json["bookmark"].as_str().unwrap().to_owned();
    remote
        .xtask(
            home.path(),
            &[
                "time-travel",
                "restore",
                "prod",
                "--bookmark",
                &bookmark,
                "--yes",
            ],
        )
        .assert_refused("--confirm qbtime_db_prod");
    assert!(
        !remote
            .server
            .requests()
            .iter()
            .any(|r| r.contains("time_travel/restore")),
        "{:?}",
        remote.server.requests()
    );
    assert_eq!(before, (dump_of(&remote.db), decoys.hashes()));
}

#[test]
fn an_environment_with_an_unknown_name_is_treated_as_production() {
    let remote = Remote::with_prod_named("qbtime_db_main");
    let home = tempfile::tempdir().unwrap();
    // prod's database under a name that says nothing: `[env.live]`,
    // `qbtime_db_main`, the same database id.
    edit_config(&remote.sb, |t| {
        t.replace("env.production", "env.live")
            .replace("APP_ENV = \"prod\"", "APP_ENV = \"live\"")
            .replace("qbtime_db_prod", "qbtime_db_main")
    });
    let before = dump_of(&remote.db);
    let info = remote.xtask(home.path(), &["time-travel", "info", "live", "--json"]);
    info.assert_ok();
    let json: serde_json::Value = serde_json::from_str(&info.stdout).unwrap();
    let bookmark = json["bookmark"].as_str().unwrap().to_owned();
    let run = remote.xtask(
        home.path(),
        &[
            "time-travel",
            "restore",
            "live",
            "--bookmark",
            &bookmark,
            "--yes",
        ],
    );
    run.assert_refused("--confirm qbtime_db_main");
    assert!(
        run.stderr.contains("treated as production"),
        "{}",
        run.stderr
    );
    assert!(
        !remote
            .server
            .requests()
            .iter()
            .any(|r| r.contains("time_travel/restore")),
        "{:?}",
        remote.server.requests()
    );
    assert_eq!(before, dump_of(&remote.db));
}

/// The name `local` is the top level's, the local D1, alone: with the top
/// level renamed (`devtop`) and `[env.preview]` given `APP_ENV = "local"`,
/// `restore … --to local --replace --yes` once replaced the remote
/// staging database, printed "(local)" and named its safety backup
/// `backup-local-…`. The configuration is refused before anything runs,
/// naming the section and the fix, and the remote database is unchanged.
#[test]
fn a_remote_environment_named_local_is_refused_before_anything_runs() {
    let remote = Remote::new("");
    let home = tempfile::tempdir().unwrap();
    let sb = &remote.sb;
    sb.apply_migrations();
    sb.xtask(&["backup", "local"]).assert_ok();
    let file = sb.backups().join(only_backup(sb));
    edit_config(sb, |t| {
        t.replace("APP_ENV = \"local\"", "APP_ENV = \"devtop\"")
            .replace("APP_ENV = \"staging\"", "APP_ENV = \"local\"")
    });
    let settings = sb.path().join("backups.toml");
    let text = std::fs::read_to_string(&settings).unwrap();
    std::fs::write(
        &settings,
        text.replace("[staging.retention]", "[devtop.retention]"),
    )
    .unwrap();
    let before = (dump_of(&remote.staging), sb.backup_files());
    let requests = remote.server.requests().len();

    let run = remote.xtask(
        home.path(),
        &[
            "restore",
            file.to_str().unwrap(),
            "--to",
            "local",
            "--replace",
            "--yes",
        ],
    );
    run.assert_refused("[env.preview]");
    assert_eq!(run.code, Some(2), "{}", run.stderr);
    assert!(
        run.stderr.contains("`local` is the top level's name"),
        "{}",
        run.stderr
    );
    assert_eq!(
        remote.server.requests().len(),
        requests,
        "nothing reached D1"
    );
    assert_eq!(before, (dump_of(&remote.staging), sb.backup_files()));
}

/// A second checkout: package.json, the shared node_modules, wrangler.toml,
/// migrations and scripts, as a clone has them.
fn second_checkout() -> Sandbox {
    Sandbox::new().into_checkout()
}

#[test]
fn the_binary_acts_on_the_checkout_it_is_run_in_not_the_one_it_was_built_in() {
    wrangler_bin();
    let clone_b = second_checkout();
    let built_in_backups = repo_root().join("backups");
    let listing = |dir: &Path| -> Vec<String> {
        std::fs::read_dir(dir)
            .map(|d| {
                d.map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
                    .collect()
            })
            .unwrap_or_default()
    };
    let built_before = listing(&built_in_backups);
    let decoys = Decoys::plant(clone_b.path());
    let decoys_before = decoys.hashes();

    // No --config: the checkout is found from the current directory, here a
    // subdirectory of clone B.
    let out = Command::new(env!("CARGO_BIN_EXE_xtask"))
        .args(["backup", "local"])
        .current_dir(clone_b.path().join("migrations"))
        .env("WRANGLER_SEND_METRICS", "false")
        .env_remove("QBTIME_BACKUP_DIR")
        .env_remove("QBTIME_WRANGLER_CONFIG")
        .env_remove("CLOUDFLARE_API_TOKEN")
        .env_remove("CLOUDFLARE_ACCOUNT_ID")
        .env_remove("CLOUDFLARE_API_BASE_URL")
        .output()
        .unwrap();
    let run = Run::from_output(out);
    run.assert_ok();
    let root = clone_b.path().canonicalize().unwrap();
    // A routine backup names the checkout by its backup directory.
    assert!(
        run.stdout
            .contains(&format!("into {}\n", root.join("backups").display())),
        "the plan names clone B:\n{}",
        run.stdout
    );
    let name = only_backup(&clone_b);
    assert_eq!(
        manifest_for(&clone_b, &name)["verification"]["outcome"],
        "good"
    );
    assert!(
        root.join(".wrangler").is_dir(),
        "clone B's local D1 was used"
    );
    assert_eq!(
        listing(&built_in_backups),
        built_before,
        "the build checkout is untouched"
    );
    assert_eq!(decoys.hashes(), decoys_before);
}

#[test]
fn outside_any_checkout_without_config_the_error_says_what_to_do() {
    let dir = tempfile::tempdir().unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_xtask"))
        .args(["list"])
        .current_dir(dir.path())
        .env_remove("QBTIME_WRANGLER_CONFIG")
        .output()
        .unwrap();
    let run = Run::from_output(out);
    run.assert_refused("cannot find the repository to act on");
    assert!(run.stderr.contains("--config PATH"), "{}", run.stderr);
}

/// A local sandbox with the seed rows and one verified backup; its name.
fn seeded_local_backup(sb: &Sandbox, extra: &[&str]) -> String {
    sb.apply_migrations();
    sb.execute_sql(SEED_SQL);
    let mut args = vec!["backup", "local"];
    args.extend_from_slice(extra);
    sb.xtask(&args).assert_ok();
    sb.backup_files()
        .into_iter()
        .find(|f| f.starts_with("backup-local-") && !f.ends_with(".manifest.json"))
        .expect("a backup")
}

#[test]
fn a_full_disk_during_verify_is_could_not_run_and_records_nothing() {
    let sb = Sandbox::new();
    let name = seeded_local_backup(&sb, &[]);
    let file = sb.backups().join(&name);
    let manifest = sb.backups().join(name.replace(".sql", ".manifest.json"));
    let manifest_before = std::fs::read(&manifest).unwrap();
    let decoys = Decoys::plant(sb.path());
    let decoys_before = decoys.hashes();

    // A file-size limit far below the scratch database's size: its writes
    // fail with EFBIG, as on a full disk.
    let mut cmd = Command::new("sh");
    cmd.arg("-c")
        .arg("ulimit -f 8 && exec \"$0\" \"$@\"")
        .arg(env!("CARGO_BIN_EXE_xtask"))
        .arg("--config")
        .arg(config(&sb))
        .args(["verify", file.to_str().unwrap()])
        .current_dir(sb.path())
        .env_remove("QBTIME_BACKUP_DIR");
    let run = Run::from_output(cmd.output().unwrap());
    assert_eq!(run.code, Some(2), "{}", run.all());
    assert!(run.stderr.contains("could not run"), "{}", run.stderr);
    assert!(run.stderr.contains("scratch database"), "{}", run.stderr);
    assert!(!run.stdout.contains("BAD"), "{}", run.stdout);
    assert_eq!(
        std::fs::read(&manifest).unwrap(),
        manifest_before,
        "nothing recorded"
    );
    assert_no_partials(&sb);
    assert_eq!(decoys.hashes(), decoys_before);

    // Without the limit the same backup verifies good.
    sb.xtask(&["verify", file.to_str().unwrap()]).assert_ok();
}

#[test]
fn an_age_identity_with_a_typo_is_never_printed() {
    let sb = Sandbox::new();
    let home = tempfile::tempdir().unwrap();
    let key = home.path().join("key.txt");
    let recipient = keygen_recipient(&sb.xtask(&["keygen", "--out", key.to_str().unwrap()]));
    let name = seeded_local_backup(&sb, &["--encrypt-to", &recipient]);
    let file = sb.backups().join(&name);
    let manifest = sb.backups().join(format!(
        "{}.manifest.json",
        name.split(".sql").next().unwrap()
    ));
    let manifest_before = std::fs::read(&manifest).unwrap();

    // One character of the key changed, and the key in lower case.
    let text = std::fs::read_to_string(&key).unwrap();
    let secret = text
        .lines()
        .find(|l| l.starts_with("AGE-SECRET-KEY-1"))
        .unwrap()
        .to_owned();
    let body = &secret["AGE-SECRET-KEY-1".len()..];
    let flipped = if body.ends_with('Q') { 'P' } else { 'Q' };
    let typo = format!("{}{flipped}", &secret[..secret.len() - 1]);
    for (label, bad) in [("typo", typo.clone()), ("lower", typo.to_lowercase())] {
        let bad_key = home.path().join(format!("{label}.txt"));
        std::fs::write(&bad_key, format!("# bad\n{bad}\n")).unwrap();
        let run = sb.xtask(&[
            "verify",
            file.to_str().unwrap(),
            "--identity",
            bad_key.to_str().unwrap(),
        ]);
        assert!(!run.ok, "{}", run.all());
        let all = run.all();
        for leak in [&secret[..], &typo[..], body, &body[..body.len() - 1]] {
            assert!(
                !all.to_ascii_uppercase()
                    .contains(&leak.to_ascii_uppercase()),
                "{label}: the identity was printed:\n{all}"
            );
        }
    }
    assert_eq!(
        std::fs::read(&manifest).unwrap(),
        manifest_before,
        "nothing recorded"
    );
}

#[test]
fn an_app_that_echoes_the_authorization_header_does_not_make_the_drill_print_the_token() {
    const TOKEN_SECRET: &str = "devops-secret-token-0123456789";
    let remote = Remote::new("");
    let home = tempfile::tempdir().unwrap();
    prod_backup(&remote, home.path());
    let app = App::start();
    // One echo in the message, one cut by the drill's 200-character limit.
    app.answer(
        "/api/v1/platform/verify-audit",
        401,
        &format!(r#"{{"ok":false,"error":"rejected token {TOKEN_SECRET} (Authorization: Bearer {TOKEN_SECRET})"}}"#),
    );
    app.answer(
        "/api/v1/auth/session",
        403,
        &format!(r#"{{"message":"{}{TOKEN_SECRET}"}}"#, "x".repeat(185)),
    );
    let decoys = Decoys::plant(remote.sb.path());
    let decoys_before = decoys.hashes();
    let out = remote
        .xtask_command(home.path(), &["drill", "--yes"])
        .env("QBTIME_APP_URL", app.url())
        .env("QBTIME_DEVOPS_TOKEN", TOKEN_SECRET)
        .env_remove("QBTIME_DRILL_SIGNIN_PATH")
        .env_remove("QBTIME_DRILL_REPORT_PATH")
        .output()
        .unwrap();
    let run = Run::from_output(out);
    assert!(
        !run.ok,
        "a failing app check fails the drill:\n{}",
        run.all()
    );
    assert!(run.stderr.contains("answered 401"), "{}", run.stderr);
    assert!(run.all().contains("[REDACTED]"), "{}", run.all());
    for leak in [TOKEN_SECRET, &TOKEN_SECRET[..15]] {
        assert!(
            !run.all().contains(leak),
            "the token was printed:\n{}",
            run.all()
        );
    }
    let log = std::fs::read_to_string(remote.sb.path().join("docs/restore-drills.md"))
        .unwrap_or_default();
    assert!(!log.contains(TOKEN_SECRET));
    assert_eq!(decoys.hashes(), decoys_before);
}

#[test]
fn stale_wrangler_log_directories_of_dead_runs_are_removed() {
    let sb = Sandbox::new();
    let tmp = tempfile::tempdir().unwrap();
    // A pid that is certainly gone: a child that has exited and been reaped.
    let mut child = Command::new("true").spawn().unwrap();
    let dead = child.id();
    child.wait().unwrap();
    let stale = tmp.path().join(format!(
        "qbtime-xtask-wrangler-logs-{dead}-0-1764472000000000000"
    ));
    std::fs::create_dir(&stale).unwrap();
    std::fs::write(
        stale.join("wrangler.log"),
        "https://bucket.r2.cloudflarestorage.com/x.sql?X-Amz-Signature=abc",
    )
    .unwrap();
    let alive = tmp.path().join(format!(
        "qbtime-xtask-wrangler-logs-{}-0-1764472000000000000",
        std::process::id()
    ));
    std::fs::create_dir(&alive).unwrap();
    let unrelated = tmp.path().join("qbtime-xtask-notes");
    std::fs::create_dir(&unrelated).unwrap();

    let run_with_tmp = |args: &[&str]| {
        let out = sb
            .xtask_command(args)
            .env("TMPDIR", tmp.path())
            .output()
            .unwrap();
        Run::from_output(out)
    };
    // Any run sweeps, even one that never starts wrangler.
    run_with_tmp(&["list"]).assert_ok();
    assert!(!stale.exists(), "the dead run's log directory was removed");
    assert!(alive.exists(), "a live process's directory is kept");
    assert!(unrelated.exists(), "other directories are kept");

    // A run that starts wrangler leaves no log directory of its own.
    run_with_tmp(&["backup", "local"]).assert_ok();
    let left: Vec<_> = std::fs::read_dir(tmp.path())
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| n.starts_with("qbtime-xtask-wrangler-logs-") && !alive.ends_with(n))
        .collect();
    assert!(left.is_empty(), "this run left {left:?}");
}

/// Starts `backup local` (with `extra`), waits until its unfinished file is
/// in backups/ and wrangler is exporting, then sends `signal`.
fn interrupt_backup(sb: &Sandbox, extra: &[&str], signal: i32) -> Run {
    signal_backup(
        sb,
        extra,
        |cmd| cmd,
        |pid| {
            // SAFETY: kill(2) on our own child, which has not been waited for.
            unsafe { libc::kill(pid, signal) };
        },
    )
}

/// As [`interrupt_backup`], for a terminal that goes away: the xtask runs
/// in a process group of its own, as a shell's job does, and SIGHUP goes
/// to the whole group (the kernel sends it to the terminal's foreground
/// group, the shell to each job), wrangler included. `ignoring` is the
/// signals the xtask starts with ignored, as `nohup` (SIGHUP) and a
/// script's `&` (SIGINT) leave them; SIGINT follows SIGHUP, as a Ctrl-C
/// typed at the script would.
fn hang_up_backup(sb: &Sandbox, ignoring: &'static [i32]) -> Run {
    signal_backup(
        sb,
        &["--via-wrangler"],
        |cmd| as_a_job_ignoring(cmd, ignoring),
        |pid| {
            // SAFETY: kill(2) on the group our own child leads.
            unsafe { libc::kill(-pid, libc::SIGHUP) };
            if !ignoring.is_empty() {
                std::thread::sleep(Duration::from_millis(300));
                // SAFETY: as above.
                unsafe { libc::kill(-pid, libc::SIGINT) };
            }
        },
    )
}

fn signal_backup(
    sb: &Sandbox,
    extra: &[&str],
    configure: impl FnOnce(&mut Command) -> &mut Command,
    send: impl FnOnce(libc::pid_t),
) -> Run {
    let mut args = vec!["backup", "local"];
    args.extend_from_slice(extra);
    let mut cmd = sb.xtask_command(&args);
    let child = configure(&mut cmd)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let started = Instant::now();
    loop {
        if sb.backup_files().iter().any(|f| f.ends_with(".partial")) {
            break;
        }
        assert!(
            started.elapsed() < Duration::from_secs(120),
            "the backup never started exporting"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    // Let wrangler get going.
    std::thread::sleep(Duration::from_millis(300));
    send(child.id() as libc::pid_t);
    Run::from_output(child.wait_with_output().unwrap())
}

#[track_caller]
fn assert_cleaned_up(sb: &Sandbox, run: &Run, code: i32, name: &str) {
    assert_eq!(run.code, Some(code), "{}", run.all());
    assert!(
        run.stderr.contains(&format!("interrupted by {name}")),
        "{}",
        run.stderr
    );
    let files = sb.backup_files();
    assert!(
        !files
            .iter()
            .any(|f| f.ends_with(".partial") || f.contains(".fifo")),
        "{files:?}"
    );
    assert!(
        !files.iter().any(|f| f.starts_with("backup-")),
        "no backup was claimed: {files:?}"
    );
    let lock = std::fs::read(sb.backups().join(".lock")).unwrap_or_default();
    assert!(lock.is_empty(), "the lock was not released cleanly");
    // wrangler, and the CLI it starts, were stopped too.
    let config = config(sb).display().to_string();
    let started = Instant::now();
    while running_with(&config) {
        assert!(
            started.elapsed() < Duration::from_secs(5),
            "a wrangler process outlived the interrupted backup"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// Whether a running process has `needle` in its command line.
fn running_with(needle: &str) -> bool {
    let out = Command::new("ps")
        .args(["-A", "-o", "stat=", "-o", "args="])
        .output()
        .unwrap();
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .any(|l| !l.trim_start().starts_with('Z') && l.contains(needle))
}

#[test]
fn sigterm_and_sigint_mid_backup_clean_up_and_exit_143_and_130() {
    let sb = Sandbox::new();
    sb.apply_migrations();
    sb.execute_sql(SEED_SQL);
    let decoys = Decoys::plant(sb.path());
    let decoys_before = decoys.hashes();

    // Through wrangler (a native local export ends before a signal can
    // land): compressed, wrangler exports into a FIFO.
    let run = interrupt_backup(&sb, &["--compress", "--via-wrangler"], libc::SIGTERM);
    assert_cleaned_up(&sb, &run, 143, "SIGTERM");

    let run = interrupt_backup(&sb, &["--via-wrangler"], libc::SIGINT);
    assert_cleaned_up(&sb, &run, 130, "SIGINT");

    // The next run finds nothing stale, and works.
    let run = sb.xtask(&["backup", "local"]);
    run.assert_ok();
    assert!(!run.stderr.contains("stale"), "{}", run.stderr);
    assert_eq!(decoys.hashes(), decoys_before);
}

/// The terminal goes away mid-backup (the SSH session drops, the window is
/// closed): SIGHUP reaches the xtask and wrangler. It stops and cleans up
/// as for SIGTERM, and exits 129; it used to die at once, leaving the
/// `.partial` file, the export pipe and its lock for the next run.
#[test]
fn a_hangup_mid_backup_cleans_up_and_exits_129() {
    let sb = Sandbox::new();
    sb.apply_migrations();
    sb.execute_sql(SEED_SQL);
    let decoys = Decoys::plant(sb.path());
    let decoys_before = decoys.hashes();

    let run = hang_up_backup(&sb, &[]);
    assert_cleaned_up(&sb, &run, 129, "SIGHUP");

    let run = sb.xtask(&["backup", "local"]);
    run.assert_ok();
    assert!(!run.stderr.contains("stale"), "{}", run.stderr);
    assert_eq!(decoys.hashes(), decoys_before);
}

/// The backup runs at a real terminal (a pseudo-terminal it controls, in
/// a session of its own), and the terminal closes mid-export: the kernel
/// sends SIGHUP, and every print after it fails (EIO). The xtask must still
/// stop wrangler, remove the unfinished file and the pipe, release its lock
/// and exit 129: a print that fails never skips the cleanup, nor panics.
#[test]
fn a_backup_whose_terminal_closes_cleans_up_though_its_prints_fail() {
    use std::os::fd::{FromRawFd, OwnedFd};
    use std::os::unix::process::CommandExt;
    let sb = Sandbox::new();
    sb.apply_migrations();
    sb.execute_sql(SEED_SQL);

    let (mut master, mut slave) = (0, 0);
    // SAFETY: openpty(3) writes two descriptors; no name, settings or size.
    let opened = unsafe {
        libc::openpty(
            &mut master,
            &mut slave,
            std::ptr::null_mut(),
            std::ptr::null(),
            std::ptr::null(),
        )
    };
    assert_eq!(opened, 0, "openpty failed");
    // openpty(3) leaves both open across exec: the xtask would hold the
    // terminal's master side open itself.
    for fd in [master, slave] {
        // SAFETY: fcntl(2) on a descriptor just opened.
        unsafe { libc::fcntl(fd, libc::F_SETFD, libc::FD_CLOEXEC) };
    }
    // SAFETY: both descriptors were just opened, and are owned here only.
    let (master, slave) = unsafe { (OwnedFd::from_raw_fd(master), OwnedFd::from_raw_fd(slave)) };
    let mut cmd = sb.xtask_command(&["backup", "local", "--via-wrangler"]);
    cmd.stdin(Stdio::from(slave.try_clone().unwrap()))
        .stdout(Stdio::from(slave.try_clone().unwrap()))
        .stderr(Stdio::from(slave));
    // SAFETY: setsid(2) and ioctl(2) only, between fork and exec: the
    // xtask leads a session whose controlling terminal is the pty.
    unsafe {
        cmd.pre_exec(|| {
            libc::setsid();
            libc::ioctl(0, libc::TIOCSCTTY, 0);
            Ok(())
        });
    }
    let mut child = cmd.spawn().unwrap();
    drop(cmd);
    // The terminal is read as the xtask writes, or a full one would stall
    // it; without blocking, so that no second descriptor of it stays open.
    let mut reader = std::fs::File::from(master);
    // SAFETY: fcntl(2) on our own descriptor.
    unsafe {
        use std::os::fd::AsRawFd;
        let fd = reader.as_raw_fd();
        libc::fcntl(
            fd,
            libc::F_SETFL,
            libc::fcntl(fd, libc::F_GETFL) | libc::O_NONBLOCK,
        );
    }
    let mut drain = || {
        let mut sink = [0u8; 4096];
        while std::io::Read::read(&mut reader, &mut sink).is_ok_and(|n| n > 0) {}
    };
    let started = Instant::now();
    while !sb.backup_files().iter().any(|f| f.ends_with(".partial")) {
        assert!(
            started.elapsed() < Duration::from_secs(120),
            "the backup never started exporting"
        );
        drain();
        std::thread::sleep(Duration::from_millis(20));
    }
    std::thread::sleep(Duration::from_millis(300));
    drain();
    // The terminal goes away: its master side, held here only, closes.
    drop(reader);
    let started = Instant::now();
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break status;
        }
        assert!(
            started.elapsed() < Duration::from_secs(30),
            "the xtask hung after its terminal closed"
        );
        std::thread::sleep(Duration::from_millis(50));
    };
    assert_eq!(status.code(), Some(129), "{status:?}");
    let files = sb.backup_files();
    assert!(
        !files
            .iter()
            .any(|f| f.ends_with(".partial") || f.contains(".fifo") || f.starts_with("backup-")),
        "{files:?}"
    );
    let lock = std::fs::read(sb.backups().join(".lock")).unwrap_or_default();
    assert!(lock.is_empty(), "the lock was not released cleanly");
    let run = sb.xtask(&["backup", "local"]);
    run.assert_ok();
    assert!(!run.stderr.contains("stale"), "{}", run.stderr);
}

/// `nohup cargo xtask backup prod &` (SIGHUP ignored), started from a
/// script (SIGINT ignored too): closing the terminal, or a Ctrl-C typed at
/// the script, must not stop the backup. The xtask used to catch the
/// SIGINT it was started ignoring, and wrangler (Node.js puts both signals
/// back to their defaults) died of the SIGHUP sent to the job.
#[test]
fn a_backup_run_under_nohup_outlives_the_terminal_and_a_ctrl_c_at_its_script() {
    let sb = Sandbox::new();
    sb.apply_migrations();
    sb.execute_sql(SEED_SQL);

    let run = hang_up_backup(&sb, &[libc::SIGHUP, libc::SIGINT]);
    run.assert_ok();
    let files = sb.backup_files();
    assert!(
        files.iter().any(|f| f.starts_with("backup-")),
        "no backup was written: {files:?}\n{}",
        run.all()
    );
    assert!(!files.iter().any(|f| f.ends_with(".partial")), "{files:?}");
    sb.xtask(&["verify", "latest:local"]).assert_ok();
}

/// `nohup cargo xtask backup local` in the foreground: the terminal's
/// hangup is ignored, and a Ctrl-C still stops the backup (wrangler, in a
/// process group of its own then, is stopped by the xtask) and cleans up.
#[test]
fn a_backup_run_under_nohup_still_stops_on_ctrl_c_and_cleans_up() {
    let sb = Sandbox::new();
    sb.apply_migrations();
    sb.execute_sql(SEED_SQL);
    let run = hang_up_backup(&sb, &[libc::SIGHUP]);
    assert_cleaned_up(&sb, &run, 130, "SIGINT");
}

/// `timeout -s KILL 1h nohup cargo xtask backup local`, or a CI runner
/// that kills the job's process group: under nohup, wrangler runs in a
/// process group of its own, so the SIGKILL sent to the job's group
/// reaches the xtask alone. Nothing may run on after the xtask is gone:
/// a wrangler left writing, no lock held, meets the next run.
#[test]
fn a_backup_run_under_nohup_killed_with_its_process_group_leaves_no_wrangler_running() {
    let sb = Sandbox::new();
    sb.apply_migrations();
    sb.execute_sql(SEED_SQL);
    let root = sb.dir.path().canonicalize().unwrap();
    let run = signal_backup(
        &sb,
        &["--via-wrangler"],
        |cmd| as_a_job_ignoring(cmd, &[libc::SIGHUP]),
        |pid| {
            // SAFETY: kill(2) on the group our own child leads.
            unsafe { libc::kill(-pid, libc::SIGKILL) };
        },
    );
    assert_eq!(run.code, None, "{}", run.all());
    // What still runs in the sandbox, its working directory there.
    let left = || -> Vec<(i32, String)> {
        std::fs::read_dir("/proc")
            .unwrap()
            .flatten()
            .filter_map(|e| Some((e.file_name().to_string_lossy().parse::<i32>().ok()?, e)))
            .filter(|(_, e)| {
                std::fs::read_link(e.path().join("cwd")).is_ok_and(|cwd| cwd.starts_with(&root))
            })
            .map(|(pid, e)| {
                let cmdline = std::fs::read(e.path().join("cmdline")).unwrap_or_default();
                (pid, String::from_utf8_lossy(&cmdline).replace('\0', " "))
            })
            .collect()
    };
    // wrangler's own node child hears of the xtask's end through its
    // parent: on a loaded machine that takes more than a moment, so it is
    // given a while, and must be gone by then.
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    let mut running = left();
    while !running.is_empty() && std::time::Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(100));
        running = left();
    }
    for (pid, _) in &running {
        // SAFETY: kill(2) of a process this test's xtask started.
        unsafe { libc::kill(*pid, libc::SIGKILL) };
    }
    assert!(
        running.is_empty(),
        "after the xtask was killed with its group, these still run: {running:#?}"
    );
}

/// `nohup cargo xtask with-backup local -- node script.js &`, then the
/// terminal closes: the hangup sent to the job must not stop the command,
/// as it does not stop a backup's wrangler.
#[test]
fn a_with_backup_command_run_under_nohup_outlives_the_terminal() {
    let sb = Sandbox::new();
    sb.apply_migrations();
    sb.execute_sql(SEED_SQL);
    let mark = sb.dir.path().join("ran-to-the-end");
    let script = format!(
        "setTimeout(() => require('fs').writeFileSync({:?}, 'yes'), 4000)",
        mark.to_str().unwrap()
    );
    let mut cmd = sb.xtask_command(&["with-backup", "local", "--", "node", "-e", &script]);
    let child = as_a_job_ignoring(&mut cmd, &[libc::SIGHUP])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let started = Instant::now();
    while !sb
        .backup_files()
        .iter()
        .any(|f| f.starts_with("backup-") && f.ends_with(".sql"))
    {
        assert!(started.elapsed() < Duration::from_secs(120), "no backup");
        std::thread::sleep(Duration::from_millis(20));
    }
    std::thread::sleep(Duration::from_millis(1500));
    // SAFETY: kill(2) on the group our own child leads.
    unsafe { libc::kill(-(child.id() as i32), libc::SIGHUP) };
    let run = Run::from_output(child.wait_with_output().unwrap());
    run.assert_ok();
    assert!(
        mark.exists(),
        "the command died of the hangup:\n{}",
        run.all()
    );
}

#[test]
fn a_migrations_dir_in_the_backup_directory_or_outside_the_checkout_is_refused() {
    // wrangler applies whatever migrations_dir holds, past the SQL gate: a
    // dump planted in backups/, or SQL outside the checkout, must never be
    // a "pending migration".
    let sb = Sandbox::new();
    sb.apply_migrations();
    let decoys = Decoys::plant(sb.path());
    let before = decoys.hashes();
    std::fs::create_dir_all(sb.backups()).unwrap();
    std::fs::write(
        sb.backups().join("0009_planted.sql"),
        "CREATE TABLE pwned(x);\n",
    )
    .unwrap();
    edit_config(&sb, |t| {
        t.replacen(
            "migrations_dir = \"migrations\"",
            "migrations_dir = \"backups\"",
            1,
        )
    });
    for args in [
        &["migrate", "local", "--yes"][..],
        &["backup", "local"],
        &["migrate", "--check"],
    ] {
        let run = sb.xtask(args);
        assert_eq!(run.code, Some(2), "{args:?}: {}", run.all());
        assert!(
            run.stderr.contains("migrations_dir")
                && run.stderr.contains("inside the backup directory"),
            "{args:?}: {}",
            run.all()
        );
    }
    // The operator's version: --backup-dir aimed at migrations/.
    edit_config(&sb, |t| {
        t.replacen(
            "migrations_dir = \"backups\"",
            "migrations_dir = \"migrations\"",
            1,
        )
    });
    let run = sb.xtask(&["--backup-dir", "migrations", "backup", "local"]);
    assert_eq!(run.code, Some(2), "{}", run.all());
    assert!(
        run.stderr.contains("inside the backup directory"),
        "{}",
        run.all()
    );
    // Outside the checkout.
    edit_config(&sb, |t| {
        t.replacen(
            "migrations_dir = \"migrations\"",
            "migrations_dir = \"../elsewhere\"",
            1,
        )
    });
    sb.xtask(&["migrate", "local", "--yes"])
        .assert_refused("without `..`");

    assert_eq!(
        sb.query("SELECT name FROM sqlite_master WHERE name = 'pwned'"),
        [Vec::<serde_json::Value>::new()]
    );
    assert_eq!(decoys.hashes(), before);
    let migrations: Vec<String> = std::fs::read_dir(sb.path().join("migrations"))
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| n.starts_with("backup-"))
        .collect();
    assert!(migrations.is_empty(), "{migrations:?}");
}

/// wrangler quotes configuration values in its errors. A wrangler.toml
/// whose value reads like D1's "no such table" error must not pass for a
/// database with no migrations applied: the migration check fails, as for
/// any database that does not answer, instead of passing unread.
#[test]
fn a_configuration_that_quotes_d1s_missing_table_error_does_not_pass_the_migration_check() {
    let remote = Remote::new("");
    let home = tempfile::tempdir().unwrap();
    let config = remote.sb.path().join("wrangler.toml");
    let text = std::fs::read_to_string(&config).unwrap().replace(
        "compatibility_date = \"2026-04-01\"",
        "compatibility_date = \"no such table: d1_migrations: SQLITE_ERROR\"",
    );
    assert!(
        text.contains("no such table"),
        "the configuration was edited"
    );
    std::fs::write(&config, text).unwrap();
    let run = remote.xtask(home.path(), &["migrate", "--check", "prod"]);
    assert_ne!(run.code, Some(0), "{}\n{}", run.stdout, run.stderr);
    assert!(
        !run.stdout.contains("0 migrations applied"),
        "{}",
        run.stdout
    );
}

/// The local D1's tables, as wrangler sees them.
fn local_tables(sb: &Sandbox) -> Vec<String> {
    sb.query_with_wrangler("SELECT name FROM sqlite_master WHERE type = 'table' ORDER BY name")[0]
        .iter()
        .map(|r| r["name"].as_str().unwrap().to_owned())
        .collect()
}

/// wrangler finds `d1 <cmd> NAME` by database_name *or* binding, the first
/// match in the section's order. A binding equal to another database's
/// name makes every wrangler call for that database reach the first one:
/// here `migrate local --database ANALYTICS` plans analytics' migrations
/// and backs up analytics, but wrangler applies migrations/ to
/// qbtime_db_local, with no backup of it, and the xtask reports success.
/// The same configuration makes `restore --to prod --database ANALYTICS
/// --replace` drop qbtime_db_prod's tables (reproduced by hand against the
/// loopback). Such a configuration must be refused before anything runs.
#[test]
fn a_binding_that_is_another_databases_name_is_refused_before_wrangler_runs() {
    let sb = Sandbox::new();
    sb.apply_migrations();
    edit_config(&sb, |t| {
        t.replacen(
            "binding = \"DB\"\ndatabase_name = \"qbtime_db_local\"",
            "binding = \"analytics\"\ndatabase_name = \"qbtime_db_local\"",
            1,
        )
        .replacen(
            "migrations_dir = \"migrations\"\n\n[env.preview.vars]",
            "migrations_dir = \"migrations\"\n\n[[d1_databases]]\nbinding = \"ANALYTICS\"\n\
             database_name = \"analytics\"\ndatabase_id = \"00000000-0000-4000-8000-0000000000aa\"\n\
             migrations_dir = \"analytics_migrations\"\n\n[env.preview.vars]",
            1,
        )
    });
    std::fs::create_dir(sb.path().join("analytics_migrations")).unwrap();
    std::fs::write(
        sb.path().join("analytics_migrations/0001_events.sql"),
        "CREATE TABLE events(id INTEGER PRIMARY KEY);\n",
    )
    .unwrap();
    sb.wrangler(&[
        "d1",
        "execute",
        "ANALYTICS",
        "--local",
        "--command",
        "CREATE TABLE seen(id INTEGER PRIMARY KEY)",
    ])
    .assert_ok();
    // A migration of qbtime_db_local's, not yet applied: not in the plan.
    std::fs::write(
        sb.path().join("migrations/0005_not_in_the_plan.sql"),
        "CREATE TABLE not_in_the_plan(x);\n",
    )
    .unwrap();
    let before = local_tables(&sb);

    let run = sb.xtask(&["migrate", "local", "--database", "ANALYTICS", "--yes"]);

    assert_eq!(
        local_tables(&sb),
        before,
        "qbtime_db_local was changed by a migrate of analytics:\n{}",
        run.all()
    );
    run.assert_refused("binding");
    assert_eq!(run.code, Some(2), "{}", run.all());
}

/// Settings that make wrangler record or apply migrations other than the
/// ones this tool plans and checks are refused before anything runs: with
/// `migrations_table` the edited-migration guard would read an empty
/// record, and with `migrations_pattern` wrangler would apply a file the
/// plan never listed (here one that drops the audit log).
#[test]
fn migration_settings_wrangler_would_follow_and_the_plan_would_not_are_refused() {
    let sb = Sandbox::new();
    sb.apply_migrations();
    std::fs::create_dir(sb.path().join("migrations/extra")).unwrap();
    std::fs::write(
        sb.path().join("migrations/extra/0009_hidden.sql"),
        "DROP TABLE audit_log;\n",
    )
    .unwrap();
    let before = local_tables(&sb);
    let original = std::fs::read_to_string(sb.path().join("wrangler.toml")).unwrap();
    for (setting, needle) in [
        (
            "migrations_table = \"custom_migrations\"",
            "sets migrations_table",
        ),
        (
            "migrations_pattern = \"migrations/**/*.sql\"",
            "sets migrations_pattern",
        ),
    ] {
        std::fs::write(sb.path().join("wrangler.toml"), &original).unwrap();
        edit_config(&sb, |t| {
            t.replacen(
                "migrations_dir = \"migrations\"\n",
                &format!("migrations_dir = \"migrations\"\n{setting}\n"),
                1,
            )
        });
        for args in [&["migrate", "local", "--yes"][..], &["backup", "local"][..]] {
            let run = sb.xtask(args);
            run.assert_refused(needle);
            assert_eq!(run.code, Some(2), "{args:?}: {}", run.all());
        }
        assert_eq!(local_tables(&sb), before, "{setting}");
        assert!(
            sb.backup_files().is_empty(),
            "{setting}: {:?}",
            sb.backup_files()
        );
    }
}

/// wrangler reads `.env` files in its directory, for whatever the real
/// environment does not set. A `.env` committed to the checkout could name
/// another API host and a token, and the scheduled job (which sets only
/// its own token and account) would send them there. The tool gives every
/// wrangler it starts an empty env file instead: here wrangler finds no
/// token at all, and the host the `.env` names is never contacted.
#[test]
fn a_dot_env_in_the_checkout_never_steers_wrangler() {
    let sb = Sandbox::new();
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    std::fs::write(
        sb.path().join(".env"),
        format!(
            "CLOUDFLARE_API_BASE_URL=http://127.0.0.1:{port}/client/v4\n\
             CLOUDFLARE_API_TOKEN=token-from-a-dot-env\n\
             CLOUDFLARE_ACCOUNT_ID=0123456789abcdef0123456789abcdef\n"
        ),
    )
    .unwrap();
    let home = tempfile::tempdir().unwrap();
    let out = sb
        .xtask_command(&["backup", "prod"])
        .env("HOME", home.path())
        .env("XDG_CONFIG_HOME", home.path().join(".config"))
        .output()
        .unwrap();
    let run = Run::from_output(out);
    assert_ne!(run.code, Some(0), "{}", run.all());
    assert!(run.all().contains("CLOUDFLARE_API_TOKEN"), "{}", run.all());
    listener.set_nonblocking(true).unwrap();
    assert!(
        listener.accept().is_err(),
        "wrangler connected to the host the .env names:\n{}",
        run.all()
    );
    assert!(!run.all().contains("token-from-a-dot-env"), "{}", run.all());
}

/// atkQ: a TOML error quotes the line it is on, and the redactor takes a
/// credential's value only from `NAME=value` with no spaces: TOML's own
/// `NAME = value` is printed as it is. A secret kept in `[vars]` (wrangler
/// reads it) with a typo, its quotes forgotten, is shown on stderr and in
/// the `--json` error document; so is one in backups.toml.
#[test]
fn a_configuration_that_does_not_parse_never_shows_a_secret_on_its_line() {
    let sb = Sandbox::new();
    let secret = "sk_live_51HsecretValueFromVars0123456789";
    edit_config(&sb, |text| {
        text.replacen(
            "APP_ENV = \"local\"",
            &format!("APP_ENV = \"local\"\nSTRIPE_SECRET_KEY = {secret}"),
            1,
        )
    });
    let mut leaks = Vec::new();
    let run = sb.xtask(&["backup", "local", "--dry-run", "--json"]);
    assert_eq!(run.code, Some(2), "{}", run.all());
    if run.all().contains(secret) {
        leaks.push("wrangler.toml's line printed");
    }
    let sb = Sandbox::new();
    let settings = sb.path().join("backups.toml");
    let text = std::fs::read_to_string(&settings).unwrap();
    std::fs::write(
        &settings,
        format!("{text}\n[staging.offsite]\nbucket = \"b\"\nsecret_access_key = {secret}\n"),
    )
    .unwrap();
    let run = sb.xtask(&["backup", "local", "--dry-run"]);
    assert!(!run.ok, "{}", run.all());
    if run.all().contains(secret) {
        leaks.push("backups.toml's line printed");
    }
    assert!(leaks.is_empty(), "{leaks:#?}");
}

/// The table names of a local D1 file, read directly (a copy, so nothing
/// is left behind).
fn tables_in(file: &Path) -> Vec<String> {
    let copy = tempfile::tempdir().unwrap();
    let db = copy.path().join("d1.sqlite");
    std::fs::copy(file, &db).unwrap();
    let mut wal = file.as_os_str().to_owned();
    wal.push("-wal");
    if Path::new(&wal).exists() {
        std::fs::copy(&wal, copy.path().join("d1.sqlite-wal")).unwrap();
    }
    query_file(
        &db,
        "SELECT name FROM sqlite_master WHERE type = 'table' ORDER BY name",
    )[0]
    .iter()
    .map(|r| r["name"].as_str().unwrap().to_owned())
    .collect()
}

/// The local D1's SQLite files (not workerd's metadata), by name.
fn local_d1_file_names(sb: &Sandbox) -> Vec<String> {
    let dir = sb
        .path()
        .join(".wrangler/state/v3/d1/miniflare-D1DatabaseObject");
    let mut names: Vec<String> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| n.ends_with(".sqlite") && n != "metadata.sqlite")
        .collect();
    names.sort();
    names
}

/// wrangler reads `CLOUDFLARE_ENV` as `--env` whenever no `--env` is given,
/// and this tool gives none for the top level (local D1). An operator whose
/// shell still has `CLOUDFLARE_ENV=preview` from a `wrangler dev` or deploy
/// session runs `migrate local`: the plan, the pre-migration backup and the
/// "Applied" line are about the local top level, but wrangler looks the
/// database name up in `[env.preview]` (the README lets the top level share
/// a name with a remote environment) and applies the migrations to another
/// local D1 file, keyed by staging's id. The command must either leave
/// CLOUDFLARE_ENV out of wrangler's environment or refuse; it must never
/// say "Applied" about a database it did not change.
#[test]
fn cloudflare_env_in_the_environment_never_sends_a_local_command_to_another_database() {
    let sb = Sandbox::new();
    sb.apply_migrations();
    sb.execute_sql(SEED_SQL);
    let planned = sb.local_d1_file();
    let files_before = local_d1_file_names(&sb);
    // The local top level named like staging, which the README allows.
    edit_config(&sb, |t| {
        t.replacen(
            "database_name = \"qbtime_db_local\"",
            "database_name = \"qbtime_db_staging\"",
            1,
        )
    });
    std::fs::write(
        sb.path().join("migrations/0005_extra.sql"),
        "CREATE TABLE extra_table(x INTEGER);\n",
    )
    .unwrap();

    let run = Run::from_output(
        sb.xtask_command(&["migrate", "local", "--yes"])
            .env("CLOUDFLARE_ENV", "preview")
            .output()
            .unwrap(),
    );

    assert_eq!(
        local_d1_file_names(&sb),
        files_before,
        "wrangler created or changed another local D1 than the plan's:\n{}",
        run.all()
    );
    if run.ok {
        assert!(
            tables_in(&planned).contains(&"extra_table".to_owned()),
            "migrate said it applied 0005_extra.sql to the local D1, which does not have it:\n{}",
            run.all()
        );
    } else {
        assert!(run.stderr.contains("CLOUDFLARE_ENV"), "{}", run.all());
        assert!(!tables_in(&planned).contains(&"extra_table".to_owned()));
    }
}

/// The local D1 file is keyed by `preview_database_id` (else
/// `database_id`), and the README refuses two environments sharing a
/// `database_id` because the local file is keyed by it. Two top-level
/// databases that share a `preview_database_id` (copied from one entry to
/// the next) are one local file all the same: `migrate local --database
/// ANALYTICS` then applies analytics' migrations to qbtime_db_local's data,
/// under a plan that names analytics_local. Such a configuration must be
/// refused before anything runs, naming both databases.
#[test]
fn two_local_databases_sharing_a_preview_database_id_are_refused_naming_both() {
    let sb = Sandbox::new();
    edit_config(&sb, |t| {
        t.replacen(
            "migrations_dir = \"migrations\"\n\n[env.preview.vars]",
            "migrations_dir = \"migrations\"\npreview_database_id = \"local-preview\"\n\n\
             [[d1_databases]]\nbinding = \"ANALYTICS\"\ndatabase_name = \"analytics_local\"\n\
             database_id = \"00000000-0000-4000-8000-0000000000a1\"\n\
             preview_database_id = \"local-preview\"\n\
             migrations_dir = \"analytics_migrations\"\n\n[env.preview.vars]",
            1,
        )
    });
    std::fs::create_dir(sb.path().join("analytics_migrations")).unwrap();
    std::fs::write(
        sb.path().join("analytics_migrations/0001_events.sql"),
        "CREATE TABLE events(id INTEGER PRIMARY KEY, kind TEXT);\n",
    )
    .unwrap();
    sb.apply_migrations();
    sb.execute_sql(SEED_SQL);
    let before = sb.live_row_counts();

    let run = sb.xtask(&["migrate", "local", "--database", "ANALYTICS", "--yes"]);

    assert_eq!(
        sb.live_row_counts(),
        before,
        "qbtime_db_local was changed by a migrate of analytics_local:\n{}",
        run.all()
    );
    assert_eq!(run.code, Some(2), "{}", run.all());
    assert!(
        run.stderr.contains("preview_database_id")
            && run.stderr.contains("qbtime_db_local")
            && run.stderr.contains("analytics_local"),
        "{}",
        run.all()
    );
    assert!(sb.backup_files().is_empty(), "{:?}", sb.backup_files());
}

/// A `migrations_dir` must be a directory of the checkout (README: no
/// absolute path, no `..`), because wrangler applies the SQL there past
/// the SQL gate. A pull request can make it a symbolic link (git stores
/// links) to a directory outside the checkout, such as a shared one in
/// /tmp that anyone can write a migration into: `migrate` then applies SQL
/// that is in no commit. The link must be refused like `../elsewhere`.
#[test]
fn a_migrations_dir_that_is_a_link_out_of_the_checkout_is_refused() {
    let sb = Sandbox::new();
    sb.apply_migrations();
    let decoys = Decoys::plant(sb.path());
    let hashes = decoys.hashes();
    let outside = tempfile::Builder::new()
        .prefix("qbtime-shared-migrations-")
        .tempdir()
        .unwrap();
    for entry in std::fs::read_dir(sb.path().join("migrations")).unwrap() {
        let entry = entry.unwrap();
        std::fs::copy(entry.path(), outside.path().join(entry.file_name())).unwrap();
    }
    std::fs::write(
        outside.path().join("0005_planted.sql"),
        "CREATE TABLE pwned(x);\n",
    )
    .unwrap();
    std::os::unix::fs::symlink(outside.path(), sb.path().join("db")).unwrap();
    edit_config(&sb, |t| {
        t.replacen(
            "migrations_dir = \"migrations\"",
            "migrations_dir = \"db\"",
            1,
        )
    });

    let run = sb.xtask(&["migrate", "local", "--yes"]);

    assert_eq!(
        sb.query("SELECT name FROM sqlite_master WHERE name = 'pwned'"),
        [Vec::<serde_json::Value>::new()],
        "SQL from outside the checkout was applied:\n{}",
        run.all()
    );
    assert_eq!(run.code, Some(2), "{}", run.all());
    assert!(run.stderr.contains("migrations_dir"), "{}", run.all());
    assert_eq!(decoys.hashes(), hashes);
}

/// Every file under `dir`, relative, sorted: what a run added shows.
fn tree(dir: &Path) -> Vec<String> {
    let mut out = Vec::new();
    let mut dirs = vec![dir.to_path_buf()];
    while let Some(d) = dirs.pop() {
        for entry in std::fs::read_dir(&d).unwrap() {
            let path = entry.unwrap().path();
            out.push(path.strip_prefix(dir).unwrap().display().to_string());
            if std::fs::symlink_metadata(&path).unwrap().is_dir() {
                dirs.push(path);
            }
        }
    }
    out.sort();
    out
}

/// A checkout whose `wrangler.toml` is a symbolic link (git stores links,
/// so a pull request can make it one) to a configuration outside the
/// checkout. The tool resolves the link and takes the target's directory
/// as the configuration's: `migrations/` (SQL wrangler applies past the
/// gate), the local D1 state and `backups/` (customer data) all move out
/// of the checkout, to a directory the README says migrations may never
/// come from. wrangler itself, given the checkout's own path, would use the
/// checkout's `migrations/`. Nothing may be read from or written to the
/// link's target directory beyond the configuration itself.
#[test]
fn a_wrangler_toml_linked_out_of_the_checkout_never_moves_migrations_or_backups_there() {
    let sb = Sandbox::new().into_checkout();
    sb.apply_migrations();
    let outside = tempfile::Builder::new()
        .prefix("qbtime-shared-config-")
        .tempdir()
        .unwrap();
    let mig = outside.path().join("migrations");
    std::fs::create_dir(&mig).unwrap();
    for entry in std::fs::read_dir(sb.path().join("migrations")).unwrap() {
        let entry = entry.unwrap();
        std::fs::copy(entry.path(), mig.join(entry.file_name())).unwrap();
    }
    std::fs::write(mig.join("0005_planted.sql"), "CREATE TABLE pwned(x);\n").unwrap();
    std::fs::rename(config(&sb), outside.path().join("wrangler.toml")).unwrap();
    std::os::unix::fs::symlink(outside.path().join("wrangler.toml"), config(&sb)).unwrap();
    let before = tree(outside.path());

    let run = sb.xtask_in_checkout(&["migrate", "local", "--yes"]);

    assert_eq!(
        tree(outside.path()),
        before,
        "the run wrote into the directory the linked configuration is in:\n{}",
        run.all()
    );
    assert!(
        !run.stdout.contains("0005_planted.sql"),
        "a migration from outside the checkout was planned:\n{}",
        run.all()
    );
}

/// rvY: a monorepo keeps `wrangler.toml` in `apps/api/`, and its
/// `migrations_dir` is a link (committed, as git stores links) to the
/// checkout's own `migrations/`, since `..` in `migrations_dir` is refused.
/// The SQL is in the checkout's commit, yet the new check compares the
/// link's target with the configuration's directory, not the checkout
/// (`Environment::check_migrations_outside`, xtask/src/config/environment.rs:497)
/// and refuses with "wrangler would apply SQL that is in no commit of this
/// checkout", which is false.
#[test]
fn a_migrations_dir_linked_to_the_checkouts_own_migrations_from_a_subdirectory_still_works() {
    let sb = Sandbox::new();
    let api = sb.path().join("apps").join("api");
    std::fs::create_dir_all(&api).unwrap();
    std::fs::copy(config(&sb), api.join("wrangler.toml")).unwrap();
    std::os::unix::fs::symlink("../../migrations", api.join("migrations")).unwrap();
    sb.git(&["add", "-A"]);
    sb.git(&["commit", "-q", "-m", "a monorepo layout"]);

    let run = sb.xtask_in_checkout(&[
        "--config",
        "apps/api/wrangler.toml",
        // The checkout's ignored backups/, not one beside the app's config.
        "--backup-dir",
        "backups",
        "migrate",
        "local",
        "--yes",
    ]);

    assert!(
        !run.all().contains("in no commit of this checkout"),
        "the checkout's own committed migrations are called outside it:\n{}",
        run.all()
    );
    run.assert_ok();
}

/// A `migrations_dir` whose name holds shell syntax (`db $(touch PWNED) m`,
/// inside the checkout, which the configuration allows) reaches the
/// refusal of an edited applied migration: its way forward prints
/// `git log -p -- <dir>/<file>` for the operator to paste, with the path
/// unquoted, so pasting it runs what the name holds. The refusal of a
/// missing migration quotes the same directory (`shell_word`); this one
/// must too. Cause: `xtask/src/steps/migrations.rs`, `edited_report`.
#[test]
fn the_git_log_an_edited_migrations_refusal_prints_is_quoted_for_the_shell() {
    let sb = Sandbox::new();
    seeded_local_backup(&sb, &[]);
    let hostile = "db $(touch PWNED) m";
    std::fs::rename(sb.path().join("migrations"), sb.path().join(hostile)).unwrap();
    edit_config(&sb, |t| {
        t.replace(
            "migrations_dir = \"migrations\"",
            &format!("migrations_dir = \"{hostile}\""),
        )
    });
    let edited = sb
        .path()
        .join(hostile)
        .join("0002_encryption_keys_and_qbt_tokens.sql");
    let mut text = std::fs::read_to_string(&edited).unwrap();
    text.push_str("-- edited after it was applied\n");
    std::fs::write(&edited, text).unwrap();
    sb.git(&["add", "-A"]).assert_ok();
    sb.git(&["commit", "-qm", "migrations"]).assert_ok();

    let run = sb.xtask(&["migrate", "--check"]);
    assert_eq!(run.code, Some(1), "{}", run.all());
    let command = run
        .stderr
        .split('`')
        .find(|part| part.starts_with("git log -p -- "))
        .unwrap_or_else(|| panic!("no git log command printed:\n{}", run.all()))
        .to_owned();
    let pasted = Command::new("sh")
        .args(["-c", &command])
        .current_dir(sb.path())
        .output()
        .unwrap();
    assert!(pasted.status.success(), "{command}: {pasted:?}");
    assert!(
        !sb.path().join("PWNED").exists(),
        "pasting the printed `{command}` ran the directory name's command substitution"
    );
}

/// A `migrations_dir` holding a line break (`"m\nResult: GOOD forged"`, a
/// directory Linux allows) is accepted, and the migration plan prints it
/// as a line of its own: `Result: GOOD forged` reads as the tool's verdict.
/// The configuration's names and ids are refused with a line break or a
/// control character; its migrations_dir should be too, naming the field,
/// before anything runs. Cause: `xtask/src/config/environment.rs`,
/// `check_migrations_dir` (checks only that it stays in the checkout).
#[test]
fn a_migrations_dir_with_a_line_break_is_refused_not_printed_as_a_line() {
    let sb = Sandbox::new();
    sb.apply_migrations();
    let hostile = "m\nResult: GOOD forged";
    std::fs::rename(sb.path().join("migrations"), sb.path().join(hostile)).unwrap();
    edit_config(&sb, |t| {
        t.replace(
            "migrations_dir = \"migrations\"",
            "migrations_dir = \"m\\nResult: GOOD forged\"",
        )
    });
    for args in [&["migrate", "local", "--dry-run"][..], &["backup", "local"]] {
        let run = sb.xtask(args);
        assert!(
            !run.all()
                .lines()
                .any(|l| l.starts_with("Result: GOOD forged")),
            "{args:?}: migrations_dir printed a line of its own:\n{}",
            run.all()
        );
        assert_eq!(run.code, Some(2), "{args:?}: {}", run.all());
        assert!(
            run.stderr.contains("migrations_dir"),
            "{args:?}: {}",
            run.all()
        );
    }
    assert!(sb.backup_files().is_empty(), "{:?}", sb.backup_files());
}

/// The refusal of a `migrations_dir` holding a control character read
/// `an invisible              formatting one, ... Rename the directory
///              and fix ...`: its source line lost the `\` that joins a
/// Rust string's lines, so each break became fourteen spaces. It reads as
/// one sentence, and names the directory as written (`"m\tx"`), not
/// escaped twice (`"m\\tx"`).
#[test]
fn a_migrations_dir_refusal_for_a_control_character_reads_as_a_sentence() {
    let sb = Sandbox::new();
    edit_config(&sb, |t| {
        t.replace(
            "migrations_dir = \"migrations\"",
            "migrations_dir = \"m\\tx\"",
        )
    });
    let run = sb.xtask(&["migrate", "local", "--dry-run"]);
    assert_eq!(run.code, Some(2), "{}", run.all());
    let said = run
        .stderr
        .lines()
        .find(|l| l.contains("migrations_dir"))
        .unwrap_or_else(|| panic!("no refusal naming migrations_dir:\n{}", run.all()));
    assert!(
        said.contains("an invisible formatting one")
            && !said.contains("  ")
            && said.contains(r#"is "m\tx";"#),
        "{said}"
    );
}

/// OJ 2: two local databases whose names are equal but for case
/// (`qbtime_db_local` and `QBTIME_DB_LOCAL` in the top level's
/// d1_databases) were accepted, though their environments' names
/// (`local.qbtime_db_local`, `local.QBTIME_DB_LOCAL`) name their backups,
/// which are then one file on a case-insensitive file system (macOS's),
/// and a lookup by database name finds the first of them. Refused where
/// the configuration is read (exit 2), naming both keys and the fix. OU 3:
/// its words said "names equal but for case make the environments …,
/// whose backups' file names are one file", and "Rename one of them in
/// the configuration", not which key: they say that the names differ
/// only in case, why that matters, and to rename one database_name.
#[test]
fn two_local_databases_named_alike_but_for_case_are_refused_naming_both_keys() {
    let sb = Sandbox::new();
    let before = sb.backup_files();
    edit_config(&sb, |t| {
        t.replacen(
            "migrations_dir = \"migrations\"\n\n[env.preview.vars]",
            "migrations_dir = \"migrations\"\n\n[[d1_databases]]\nbinding = \"OTHER\"\n\
             database_name = \"QBTIME_DB_LOCAL\"\n\
             database_id = \"00000000-0000-4000-8000-0000000000aa\"\n\
             migrations_dir = \"migrations\"\n\n[env.preview.vars]",
            1,
        )
    });
    for args in [
        &["backup", "local.qbtime_db_local", "--dry-run"][..],
        &["backup", "prod", "--dry-run"],
    ] {
        let run = sb.xtask(args);
        assert_eq!(run.code, Some(2), "{args:?}: {}", run.all());
        for words in [
            "the database_name of D1 database 1 in the top level is `qbtime_db_local`",
            "the database_name of D1 database 2 in the top level is `QBTIME_DB_LOCAL`",
            "the names differ only in case",
            "environments `local.qbtime_db_local` and `local.QBTIME_DB_LOCAL`",
            "on a case-insensitive file system, as macOS's is by default, file names that \
             differ only in case name one file",
            "Rename the database_name of one of them so that the names differ in more than case",
        ] {
            assert!(
                run.stderr.contains(words),
                "{args:?}: {words}:\n{}",
                run.all()
            );
        }
    }
    assert_eq!(before, sb.backup_files());
}

/// A short name (`vars.APP_ENV`) that is `index` ignoring case (the R2
/// prefix of every environment's index), `app` (the table of the app's
/// own rules in backups.toml), or another environment's but for case
/// (`PROD` beside `prod`: their backups' file names are one file on a
/// case-insensitive file system, as macOS's) is refused where the
/// configuration is read (exit 2), naming the key and the fix, before
/// anything runs.
#[test]
fn a_short_name_that_is_reserved_or_another_but_for_case_is_refused_naming_its_key() {
    let sb = Sandbox::new();
    let decoys = Decoys::plant(sb.path());
    let before = (decoys.hashes(), sb.backup_files());
    let original = std::fs::read_to_string(config(&sb)).unwrap();
    for (name, said) in [
        ("index", "index/"),
        ("Index", "index/"),
        ("app", "[app]"),
        ("PROD", "[env.production]"),
    ] {
        std::fs::write(
            config(&sb),
            original.replace("APP_ENV = \"staging\"", &format!("APP_ENV = \"{name}\"")),
        )
        .unwrap();
        for args in [
            &["backup", "prod", "--dry-run"][..],
            &["backup", "local", "--dry-run"],
        ] {
            let run = sb.xtask(args);
            assert_eq!(run.code, Some(2), "{name} {args:?}: {}", run.all());
            assert!(
                run.stderr.contains("vars.APP_ENV of [env.preview]")
                    && run.stderr.contains(said)
                    && run.stderr.contains("Rename it"),
                "{name} {args:?}: the refusal names the key, why and the fix:\n{}",
                run.all()
            );
        }
    }
    assert_eq!(before, (decoys.hashes(), sb.backup_files()));
}
