//! atkBK: the README read as a contract. Each test is a claim of the README
//! that the binary did not keep, as an operator meets it.

use crate::common;

use common::*;

/// README "Flags that would do nothing are refused": "a `--confirm` that
/// names another database than the target is refused (exit 3) by the dry
/// run too, as the real run refuses it, before anything else (`restore`,
/// `migrate`, …)". The operator ran `migrate local --confirm
/// qbtime_db_prod` (a command line pasted from prod's runbook, or a deploy
/// script with the wrong name) on a day with nothing pending: it printed
/// "Nothing to do" and exited 0, dry run and real run alike, and `--json`
/// too. The same line is refused (exit 3) on the day a migration is
/// pending, so the check that a scheduled or scripted migrate's command
/// line is right passes until the day it matters. It should be refused,
/// exit 3, whatever is pending. Cause: `commands::migrate::run`
/// (xtask/src/commands/migrate.rs) returns for an empty plan before it
/// calls `confirm::check_named`.
#[test]
fn migrate_refuses_a_confirm_naming_another_database_even_with_nothing_pending() {
    let sb = Sandbox::new();
    sb.apply_migrations();
    for extra in [&[][..], &["--dry-run"], &["--json"]] {
        let mut args = vec!["migrate", "local", "--confirm", "qbtime_db_prod"];
        args.extend_from_slice(extra);
        let run = sb.xtask(&args);
        assert_eq!(
            run.code,
            Some(3),
            "`{}` with nothing pending passes a --confirm that names another database \
             (a migration pending is refused for it):\n{}",
            args.join(" "),
            run.all()
        );
        assert!(
            run.stderr.contains("does not name the target database"),
            "{}",
            run.all()
        );
    }
}

/// README "Flags that would do nothing are refused": a wrong `--confirm` is
/// refused (exit 3) "before anything else" by `migrate`, `time-travel
/// restore` and `offsite lifecycle`/`lock`, a dry run included. The
/// operator checks a command line with `--dry-run` on a machine without
/// Cloudflare credentials (a laptop, a CI job's first step): each of them
/// first starts wrangler (the database id check, the bucket's lock rules)
/// and stops with "wrangler has no Cloudflare credentials", exit 2, and
/// never says that the `--confirm` names another database; with
/// credentials it is told only after those reads. It should refuse the
/// `--confirm` first, exit 3, as `restore` does. Cause: `commands::migrate::run`,
/// `commands::time_travel::restore` and `commands::offsite::confirm_and_run`
/// call `confirm::check_named` only after their wrangler reads.
#[test]
fn a_confirm_naming_another_database_is_refused_before_wrangler_is_started() {
    let sb = Sandbox::new();
    let bookmark = "00000085-0000024c-00004c6d-8e61117bf38d7adb71b934ebbf891683";
    let cases: [&[&str]; 5] = [
        &[
            "migrate",
            "staging",
            "--confirm",
            "qbtime_db_prod",
            "--dry-run",
        ],
        &[
            "time-travel",
            "restore",
            "staging",
            "--bookmark",
            bookmark,
            "--confirm",
            "qbtime_db_prod",
            "--dry-run",
        ],
        &[
            "offsite",
            "lock",
            "--env",
            "prod",
            "--confirm",
            "qbtime_db_staging",
            "--dry-run",
        ],
        &[
            "offsite",
            "lifecycle",
            "--env",
            "prod",
            "--confirm",
            "qbtime_db_staging",
            "--dry-run",
        ],
        &[
            "offsite",
            "lifecycle",
            "--env",
            "prod",
            "--confirm",
            "qbtime_db_staging",
        ],
    ];
    let mut wrong = Vec::new();
    for args in cases {
        let run = sb.xtask(args);
        if run.code != Some(3) || !run.stderr.contains("does not name the target database") {
            wrong.push(format!(
                "`{}`: exit {:?}\n{}",
                args.join(" "),
                run.code,
                run.stderr.trim()
            ));
        }
    }
    assert!(
        wrong.is_empty(),
        "a --confirm naming another database is not refused before anything else:\n{}",
        wrong.join("\n")
    );
}

/// README "Local target, fast": a restore into local D1 "refuses while any
/// other process has that file open", and "Exit codes" gives a refusal by a
/// guard, before anything changes, exit 3 (1 is "the command ran and
/// something failed"). The operator ran `restore … --to local --replace
/// --yes` with `wrangler dev` still running: it said "another process has
/// the local D1 database open …; Nothing was changed" and exited 1, the
/// code of a restore that failed half way, so a script that tells a
/// refusal (fix and run again) from a failure (look at the damage) reads
/// it as the latter. It should exit 3. Cause: `edge::local_d1::ensure_unheld`
/// (xtask/src/edge/local_d1.rs) bails with an unmarked error, which `main`
/// maps to 1.
#[test]
fn a_local_restore_refused_while_another_process_holds_the_database_exits_3() {
    let (sb, name) = sandbox_with_a_backup();
    let db = sb.local_d1_file();
    let mut holder = std::process::Command::new("sh")
        .arg("-c")
        .arg("exec 3<\"$0\"; sleep 30")
        .arg(&db)
        .spawn()
        .unwrap();
    std::thread::sleep(std::time::Duration::from_millis(300));
    let run = sb.xtask(&["restore", &name, "--to", "local", "--replace", "--yes"]);
    let _ = holder.kill();
    let _ = holder.wait();
    run.assert_refused("another process has the local D1 database open");
    assert_eq!(
        run.code,
        Some(3),
        "a restore refused before anything changed exits {:?}, not the guards' 3:\n{}",
        run.code,
        run.all()
    );
}

/// README "Environments": "`QBTIME_WRANGLER_TIMEOUT=<seconds>` changes the
/// limit", and "Exit codes": bad input (a malformed span, time or
/// bookmark, a usage error) is 2, and 1 is "the command ran and something
/// failed". The operator set `QBTIME_WRANGLER_TIMEOUT=2h` (the spans'
/// grammar, used everywhere else) or `abc`: the command was refused,
/// rightly, "is not a number of seconds", but with exit 1, as if a backup
/// or restore had run and failed; a scheduled job's alert then reads as a
/// failed backup rather than a mistyped setting. It should exit 2. Cause:
/// `edge::wrangler::timeout_from` (xtask/src/edge/wrangler.rs) returns an
/// unmarked error, which `main` maps to 1.
#[test]
fn a_malformed_wrangler_timeout_is_bad_input_exit_2() {
    let sb = Sandbox::new();
    sb.apply_migrations();
    for value in ["2h", "abc"] {
        let run = Run::from_output(
            sb.xtask_command(&["backup", "local", "--via-wrangler"])
                .env("QBTIME_WRANGLER_TIMEOUT", value)
                .output()
                .unwrap(),
        );
        run.assert_refused("is not a number of seconds");
        assert_eq!(
            run.code,
            Some(2),
            "QBTIME_WRANGLER_TIMEOUT={value} is bad input, but exits {:?}:\n{}",
            run.code,
            run.all()
        );
        assert!(
            sb.backup_files().iter().all(|f| !f.ends_with(".sql")),
            "a backup was written: {:?}",
            sb.backup_files()
        );
    }
}

/// MO: README "Environments": a wrangler run past its limit "is stopped,
/// with every process it started, and the command fails saying so". It
/// said "did not finish within 1 s … and was stopped", which reads as
/// stopped by Cloudflare, and, for the local D1, told to check
/// Cloudflare's status. It says this tool stopped it at its limit, and
/// the variable that gives it longer.
#[test]
fn a_wrangler_run_past_its_time_limit_is_told_as_stopped_by_this_tool_with_the_variable() {
    let sb = Sandbox::new();
    sb.apply_migrations();
    // One second: less than wrangler takes to start.
    let run = Run::from_output(
        sb.xtask_command(&["backup", "local", "--via-wrangler"])
            .env("QBTIME_WRANGLER_TIMEOUT", "1")
            .output()
            .unwrap(),
    );
    assert_eq!(run.code, Some(1), "{}", run.all());
    for said in [
        "did not finish within 1 s",
        "this tool stopped it at its limit",
        "QBTIME_WRANGLER_TIMEOUT=SECONDS",
    ] {
        assert!(
            run.stderr.contains(said),
            "{said:?} not said:\n{}",
            run.all()
        );
    }
    assert!(!run.stderr.contains("Cloudflare's status"), "{}", run.all());
}

/// README "Exit codes": 2 is "could not run: … bad input …, a missing file
/// or manifest"; `verify` of an encrypted backup without `--identity` (nor
/// `QBTIME_AGE_IDENTITY`) exits 2, "the verification could not run: … is
/// encrypted with age: pass --identity FILE". The operator restores the
/// same backup, forgetting `--identity` (the README's own undo command for
/// an encrypted safety backup had that slip once): the restore stops with
/// the same message before anything changes, but exits 1, "the command ran
/// and something failed", and a drill the same. It should exit 2, as
/// verify does. Cause: `edge::stored::Source::for_file`
/// (xtask/src/edge/stored.rs) bails with an unmarked error, which `main`
/// maps to 1 for every command but verify and diff.
#[test]
fn a_restore_of_an_encrypted_backup_without_an_identity_is_bad_input_as_verify_says() {
    let sb = Sandbox::new();
    sb.apply_migrations();
    sb.execute_sql(SEED_SQL);
    let keys = tempfile::tempdir().unwrap();
    let (recipient, _) = sealed_local_backup(&sb, &keys.path().join("local.agekey"));
    let verify = sb.xtask(&["verify", "latest:local"]);
    assert_eq!(verify.code, Some(2), "{}", verify.all());
    let before = sb.backup_files();
    let restore = sb.xtask(&[
        "restore",
        "latest:local",
        "--to",
        "local",
        "--replace",
        "--yes",
    ]);
    restore.assert_refused("is encrypted with age: pass --identity FILE");
    assert_eq!(
        restore.code,
        Some(2),
        "verify calls a missing identity bad input (2), restore exits {:?}:\n{}",
        restore.code,
        restore.all()
    );
    assert_eq!(sb.backup_files(), before, "the restore wrote a backup");

    // Another key, none of the recipients': verify says the input is
    // wrong (2), and so does restore, which changes nothing.
    let other = keys.path().join("other.agekey");
    keygen_recipient(&sb.xtask(&["keygen", "--out", other.to_str().unwrap()]));
    let other = other.to_str().unwrap();
    let verify = sb.xtask(&["verify", "latest:local", "--identity", other]);
    assert_eq!(verify.code, Some(2), "{}", verify.all());
    let state = sb.live_row_counts();
    let restore = sb.xtask(&[
        "restore",
        "latest:local",
        "--to",
        "local",
        "--replace",
        "--yes",
        "--identity",
        other,
    ]);
    assert_eq!(
        restore.code,
        Some(2),
        "verify calls an identity of none of the recipients bad input (2), restore exits \
         {:?}:\n{}",
        restore.code,
        restore.all()
    );
    assert!(restore.stderr.contains(&recipient), "{}", restore.all());
    assert_eq!(
        sb.live_row_counts(),
        state,
        "the restore changed the local D1"
    );
}
