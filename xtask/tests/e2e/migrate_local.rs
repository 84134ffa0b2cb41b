//! `migrate` and `with-backup` against local D1, with the real wrangler.

use crate::common;

use common::*;

/// A sandbox whose local D1 has the first three migrations applied and
/// seed rows, with the fourth migration pending.
fn one_pending() -> Sandbox {
    let sb = Sandbox::new();
    let fourth = sb.path().join("migrations/0004_audit_log.sql");
    let text = std::fs::read_to_string(&fourth).unwrap();
    std::fs::remove_file(&fourth).unwrap();
    sb.apply_migrations();
    sb.execute_sql("INSERT INTO companies (name) VALUES ('Acme');");
    std::fs::write(&fourth, text).unwrap();
    sb
}

/// With nothing pending a migrate still needs its confirmation, as a
/// deploy does: a command line that passes on a day with nothing to apply
/// must not be one refused the day a migration is pending. Refused before
/// the backup lock and the plan, with no terminal to ask.
#[test]
fn a_migrate_without_its_confirmation_is_refused_before_anything_with_nothing_pending() {
    let sb = Sandbox::new();
    sb.apply_migrations();
    let run = sb.xtask(&["migrate", "local"]);
    run.assert_refused("--yes");
    assert!(!sb.backups().exists(), "refused before the backup lock");
    assert!(!run.stdout.contains("Migration plan"), "{}", run.all());
    sb.xtask(&["migrate", "local", "--yes"]).assert_ok();
    sb.xtask(&["migrate", "local", "--dry-run"]).assert_ok();
}

#[test]
fn migrate_takes_a_backup_then_applies_the_pending_migrations() {
    let sb = one_pending();
    let run = sb.xtask(&["migrate", "local"]);
    run.assert_refused("--yes");
    assert!(!sb.backups().exists(), "refused before the backup lock");
    assert!(!run.stdout.contains("Migration plan"), "{}", run.all());

    let run = sb.xtask(&["migrate", "local", "--yes"]);
    run.assert_ok();
    assert!(
        run.stdout.contains("pending      0004_audit_log.sql"),
        "{}",
        run.stdout
    );
    let backup = only_backup(&sb);
    let m = manifest_for(&sb, &backup);
    assert_eq!(m["reason"], "pre-migration: 0004_audit_log.sql");
    assert_eq!(m["rows"]["companies"], 1);
    assert!(
        m["rows"].get("audit_log").is_none(),
        "taken before the migration"
    );
    let applied = sb.query("SELECT name FROM d1_migrations ORDER BY id");
    assert_eq!(applied[0].len(), 4);
    assert!(run.stdout.contains(&format!(
        "The pre-migration backup is {}",
        sb.backups().join(&backup).display()
    )));
}

/// FF: migrate read its plan before it took the backup lock, and with
/// nothing pending took no lock at all. While another terminal's restore
/// held it, `migrate local --yes` printed a plan read from the database
/// that run was changing, then stopped at the lock; once that run's
/// migration had landed it printed "up to date" with nothing locked. It
/// takes the lock before it reads the plan: refused (exit 4), it prints no
/// plan, takes no backup and applies nothing. A dry run takes no lock.
#[test]
fn a_migrate_while_another_run_holds_the_backup_lock_prints_no_plan_and_applies_nothing() {
    let sb = one_pending();
    let lock = hold_backup_lock(&sb, "restore into local");
    let applied = |sb: &Sandbox| sb.query("SELECT name FROM d1_migrations")[0].len();
    let refused = |run: &Run, before: usize| {
        assert_eq!(run.code, Some(4), "{}", run.all());
        assert!(
            run.stderr.contains("another backup or restore is running")
                && run.stderr.contains("`restore into local`"),
            "{}",
            run.all()
        );
        for plan in ["Migration plan", "pending "] {
            assert!(
                !run.stdout.contains(plan),
                "{plan:?} printed:\n{}",
                run.all()
            );
        }
        assert_eq!(sb.backup_files(), [".lock"]);
        assert_eq!(applied(&sb), before);
    };
    // 0004 is pending when the other run started.
    refused(&sb.xtask(&["migrate", "local", "--yes"]), 3);
    let dry = sb.xtask(&["migrate", "local", "--dry-run"]);
    dry.assert_ok();
    assert!(
        dry.stdout.contains("pending      0004_audit_log.sql"),
        "{}",
        dry.all()
    );
    // The other run's migration lands while it still holds the lock.
    sb.apply_migrations();
    refused(&sb.xtask(&["migrate", "local", "--yes"]), 4);
    // Released, migrate reads the database as that run left it.
    drop(lock);
    let run = sb.xtask(&["migrate", "local", "--yes"]);
    run.assert_ok();
    assert!(run.stdout.contains("pending      none"), "{}", run.all());
    assert_eq!(sb.backup_files(), [".lock"]);
}

/// `.wrangler` as a link to a directory out of the checkout (which git
/// would commit): wrangler applied the pending migration to the local D1
/// there, another checkout's. It is refused before anything is applied.
#[test]
fn migrate_local_refuses_a_wrangler_directory_linked_out_of_the_checkout() {
    let sb = one_pending();
    let elsewhere = tempfile::tempdir().unwrap();
    let state = elsewhere.path().join(".wrangler");
    std::fs::rename(sb.path().join(".wrangler"), &state).unwrap();
    std::os::unix::fs::symlink(&state, sb.path().join(".wrangler")).unwrap();
    let files = sb.backup_files();
    let run = sb.xtask(&["migrate", "local", "--yes"]);
    assert_eq!(run.code, Some(3), "{}", run.all());
    assert!(run.stderr.contains("the local D1 state"), "{}", run.stderr);
    // rvG3: refused before the backup lock, which would make backups/.lock.
    assert_eq!(sb.backup_files(), files, "{}", run.all());
    // rvG4: `--check` reads no applied migration through the link.
    let check = sb.xtask(&["migrate", "--check", "local"]);
    assert!(
        check.all().contains("is a symbolic link"),
        "{}",
        check.all()
    );
    let applied = sb.query("SELECT count(*) FROM d1_migrations");
    assert_eq!(
        applied[0][0]["count(*)"], 3,
        "a migration was applied there"
    );
}

/// rvF2: the local D1 file itself a link (`git add -f` of the path, which
/// the database id names): wrangler applied the migration wherever it led.
#[test]
fn migrate_local_refuses_a_local_d1_file_linked_elsewhere() {
    let sb = one_pending();
    let file = sb.local_d1_file();
    let elsewhere = tempfile::tempdir().unwrap();
    let moved = elsewhere.path().join("other.sqlite");
    std::fs::rename(&file, &moved).unwrap();
    for end in ["-wal", "-shm"] {
        let beside = |f: &std::path::Path| format!("{}{end}", f.display());
        let _ = std::fs::rename(beside(&file), beside(&moved));
    }
    std::os::unix::fs::symlink(&moved, &file).unwrap();
    let run = sb.xtask(&["migrate", "local", "--yes"]);
    assert_eq!(run.code, Some(3), "{}", run.all());
    assert!(run.stderr.contains("the local D1 state"), "{}", run.stderr);
    let applied = sb.query("SELECT count(*) FROM d1_migrations");
    assert_eq!(
        applied[0][0]["count(*)"], 3,
        "a migration was applied there"
    );
}

#[test]
fn no_backup_needs_a_reason_and_prints_it() {
    let sb = one_pending();
    let run = sb.xtask(&["migrate", "local", "--yes", "--no-backup"]);
    assert!(!run.ok);
    assert!(run.stderr.contains("--reason"), "{}", run.stderr);
    assert_eq!(
        sb.query("SELECT count(*) AS n FROM d1_migrations")[0][0]["n"],
        3
    );

    let run = sb.xtask(&[
        "migrate",
        "local",
        "--yes",
        "--no-backup",
        "--reason",
        "throwaway dev database",
    ]);
    run.assert_ok();
    assert!(
        run.all().contains("throwaway dev database"),
        "{}",
        run.all()
    );
    // Only the backup lock, held while the migration ran, and migrate's
    // journal of what it applied.
    assert_eq!(
        sb.backup_files(),
        [".lock", "migrations-applied.jsonl"],
        "no backup was taken"
    );
    assert_eq!(
        sb.query("SELECT count(*) AS n FROM d1_migrations")[0][0]["n"],
        4
    );
}

#[test]
fn with_backup_runs_the_command_only_after_a_good_backup() {
    let sb = Sandbox::new();
    sb.apply_migrations();
    let marker = sb.path().join("ran");
    let touch = format!("touch {}", marker.display());

    let run = sb.xtask(&[
        "with-backup",
        "local",
        "--reason",
        "mass company import",
        "--",
        "sh",
        "-c",
        &touch,
    ]);
    run.assert_ok();
    assert!(marker.exists());
    let m = manifest_for(&sb, &only_backup(&sb));
    assert_eq!(m["reason"], "before: mass company import");

    // A failing command's exit code comes back, with the backup named.
    let run = sb.xtask(&["with-backup", "local", "--", "sh", "-c", "exit 7"]);
    assert_eq!(run.code, Some(7), "{}", run.all());
    assert!(
        run.stderr.contains("the backup taken before it is"),
        "{}",
        run.stderr
    );
    // With the way back: the restore's plan it names, pasted, runs.
    let restore = run
        .stderr
        .split('`')
        .find(|c| c.starts_with("cargo xtask restore "))
        .unwrap_or_else(|| panic!("no restore to paste:\n{}", run.stderr));
    assert!(
        restore.ends_with("--to local --replace --dry-run"),
        "{restore}"
    );
    assert!(
        run.stderr.contains("live:local` shows what it changed"),
        "{}",
        run.stderr
    );
    let words: Vec<&str> = restore.split_whitespace().skip(2).collect();
    let plan = sb.xtask(&words);
    plan.assert_ok();
    assert!(
        plan.stdout.contains("Dry run: nothing was changed."),
        "{}",
        plan.all()
    );

    // When the backup cannot be taken, the command does not run.
    std::fs::remove_file(&marker).unwrap();
    std::fs::write(sb.path().join(".gitignore"), "").unwrap();
    let run = sb.xtask(&["with-backup", "local", "--", "sh", "-c", &touch]);
    run.assert_refused("was not run");
    assert!(!marker.exists(), "the command ran without a backup");
}

/// Interrupted while its command runs, with-backup does not say "the next
/// run starts clean": the command may have changed the database, and the
/// backup taken before it is named (atkM).
#[test]
fn an_interrupted_with_backup_names_its_backup_not_a_clean_start() {
    let sb = Sandbox::new();
    sb.apply_migrations();
    let run = with_backup_interrupted_in_its_command(&sb);
    let stderr = &run.stderr;
    assert_eq!(run.code, Some(130), "{}", run.all());
    assert!(
        stderr.contains(
            "was started and may have changed qbtime_db_local; the backup taken before it is"
        ),
        "{stderr}"
    );
    assert!(!stderr.contains("starts clean"), "{stderr}");
}

/// NT 2: Ctrl-C at a terminal reaches with-backup and its command, which
/// traps it and exits 130: with-backup said first that the command failed
/// (with a diff and a restore), then that it was interrupted. It says one
/// thing, the interruption, with the backup taken before the command.
#[test]
fn a_with_backup_whose_command_exits_130_on_ctrl_c_says_only_that_it_was_interrupted() {
    let sb = Sandbox::new();
    sb.apply_migrations();
    let script = "trap 'exit 130' INT; echo st''arted; sleep 20 & wait";
    let cmd = sb.xtask_command(&["with-backup", "local", "--", "sh", "-c", script]);
    let run = interrupt_job_once_printed(cmd, "started");
    assert_eq!(run.code, Some(130), "{}", run.all());
    let errors: Vec<&str> = { run.stderr.lines() }
        .filter(|l| l.starts_with("error:"))
        .collect();
    assert_eq!(errors.len(), 1, "{}", run.stderr);
    assert!(
        errors[0].contains("interrupted by SIGINT"),
        "{}",
        run.stderr
    );
    assert!(
        run.stderr.contains("the backup taken before it is"),
        "{}",
        run.stderr
    );
}

/// Appends a line to an applied migration, as an edit would.
fn edit_migration(sb: &Sandbox, name: &str) -> String {
    let path = sb.path().join("migrations").join(name);
    let original = std::fs::read_to_string(&path).unwrap();
    std::fs::write(
        &path,
        format!("{original}\n-- edited after it was applied\n"),
    )
    .unwrap();
    original
}

#[test]
fn a_backup_of_chosen_tables_does_not_launder_an_edited_migration() {
    // A --table or --schema-only backup holds no d1_migrations rows, so its
    // migration record is empty. It must not count as the newest record:
    // then the edit passed the check and the next full backup recorded the
    // edited file as what was applied.
    let sb = Sandbox::new();
    sb.apply_migrations();
    sb.xtask(&["backup", "local"]).assert_ok();
    let name = "0002_encryption_keys_and_qbt_tokens.sql";
    let original = edit_migration(&sb, name);
    sb.xtask(&["backup", "local", "--table", "companies"])
        .assert_ok();
    sb.xtask(&["backup", "local", "--schema-only"]).assert_ok();

    let run = sb.xtask(&["migrate", "local", "--check"]);
    assert_eq!(run.code, Some(1), "{}", run.all());
    assert!(run.stderr.contains(name), "{}", run.stderr);

    // The next full backup still records what was applied.
    let before = sb.backup_files();
    sb.xtask(&["backup", "local"]).assert_ok();
    let newest = sb
        .backup_files()
        .into_iter()
        .find(|f| f.ends_with(".sql") && !before.contains(f))
        .unwrap();
    let m = manifest_for(&sb, &newest);
    assert_eq!(
        m["migration_sha256"][name],
        sha256_hex(original.as_bytes()).as_str()
    );
    let run = sb.xtask(&["migrate", "local", "--check"]);
    assert_eq!(run.code, Some(1), "{}", run.all());
}

/// A team on Windows and Linux: git's `core.autocrlf` checks the same
/// migrations out with CRLF on one machine and LF on the other, so a record
/// taken on one (a backup fetched from R2, the offsite record a CI runner
/// reads) compared with the files on the other called every migration
/// edited: `migrate` and `deploy` were refused and `status` warned. Line
/// endings are not an edit; an edit made on either machine still is.
#[test]
fn migrations_checked_out_with_other_line_endings_are_not_edited() {
    let sb = Sandbox::new();
    sb.apply_migrations();
    let dir = sb.path().join("migrations");
    let set_endings = |crlf: bool| {
        for entry in std::fs::read_dir(&dir).unwrap() {
            let path = entry.unwrap().path();
            let text = std::fs::read_to_string(&path)
                .unwrap()
                .replace("\r\n", "\n");
            let text = if crlf {
                text.replace('\n', "\r\n")
            } else {
                text
            };
            std::fs::write(&path, text).unwrap();
        }
    };
    let name = "0002_encryption_keys_and_qbt_tokens.sql";
    // Recorded on the Windows checkout.
    set_endings(true);
    sb.xtask(&["backup", "local"]).assert_ok();
    let recorded = manifest_for(&sb, &only_backup(&sb))["migration_sha256"][name].clone();
    assert_eq!(
        recorded,
        sha256_hex(&std::fs::read(dir.join(name)).unwrap()).as_str()
    );

    // Checked on the Linux one.
    set_endings(false);
    let check = sb.xtask(&["migrate", "local", "--check"]);
    check.assert_ok();
    assert!(check.stdout.contains("unchanged"), "{}", check.stdout);
    let status = sb.xtask(&["status", "--env", "local", "-q"]);
    status.assert_ok();
    assert_eq!(status.stderr, "", "a quiet status stays quiet");
    let backup = sb.xtask(&["backup", "local"]);
    backup.assert_ok();
    assert!(
        !backup.stderr.contains("as they were applied"),
        "{}",
        backup.stderr
    );
    let newest = sb
        .backup_files()
        .into_iter()
        .rfind(|f| f.ends_with(".sql"))
        .unwrap();
    assert_eq!(
        manifest_for(&sb, &newest)["migration_sha256"][name],
        recorded,
        "the record keeps what was applied"
    );

    // An edit is still an edit, with either line endings.
    for crlf in [false, true] {
        set_endings(crlf);
        let path = dir.join(name);
        let text = std::fs::read_to_string(&path).unwrap();
        std::fs::write(&path, format!("{text}-- edited after it was applied\n")).unwrap();
        let check = sb.xtask(&["migrate", "local", "--check"]);
        assert_eq!(check.code, Some(1), "crlf {crlf}: {}", check.all());
        assert!(check.stderr.contains(name), "{}", check.stderr);
        std::fs::write(&path, text).unwrap();
    }
}

/// atkO: a bulk task is often a call with a credential on its command line
/// (`curl -H "Authorization: Bearer …"`, a signed URL, the API token passed
/// on). with-backup printed that command in clear ("Running: …", and the
/// error when it failed) and recorded it as the backup's reason in the
/// manifest, which `list --json` prints and `upload` copies to R2 in clear
/// beside an encrypted backup. What the redactor knows must not show, in
/// the output or in the manifest.
#[test]
fn with_backup_never_shows_or_records_a_secret_from_its_command() {
    let sb = Sandbox::new();
    sb.apply_migrations();
    let token = "cf-api-token-from-the-env-0123456789";
    let bearer = "bearer-secret-abcdefghijklmnop";
    let signature = "sig0123456789abcdef0123456789abcdef";
    let auth = format!("Authorization: Bearer {bearer}");
    let url = format!("https://r2.example.com/obj?X-Amz-Signature={signature}");
    let run = |code: &str| {
        Run::from_output(
            sb.xtask_command(&[
                "with-backup",
                "local",
                "--",
                "sh",
                "-c",
                code,
                "import",
                &auth,
                &url,
                token,
            ])
            .env("CLOUDFLARE_API_TOKEN", token)
            .output()
            .unwrap(),
        )
    };
    let secrets = [token, bearer, signature];
    let ok = run("exit 0");
    ok.assert_ok();
    let failed = run("exit 3");
    assert_eq!(failed.code, Some(3), "{}", failed.all());
    for out in [&ok, &failed] {
        for secret in secrets {
            assert!(
                !out.all().contains(secret),
                "{secret} printed:\n{}",
                out.all()
            );
        }
    }
    let listed = sb.xtask(&["list", "--json"]);
    listed.assert_ok();
    for name in sb.backup_files() {
        let text = std::fs::read_to_string(sb.backups().join(&name)).unwrap_or_default();
        for secret in secrets {
            assert!(!text.contains(secret), "{secret} recorded in {name}");
        }
    }
    for secret in secrets {
        assert!(!listed.stdout.contains(secret), "{secret} in list --json");
    }
}

/// with-backup's command, shown ("Running: …") and recorded as the backup's
/// reason, and everything a secret could reach after it: the output and
/// every file in backups/ (the manifest that `list --json` prints and an
/// upload copies in clear).
fn with_backup_leaks(sb: &Sandbox, command: &[&str], secrets: &[&str]) -> Vec<String> {
    with_backup_leaks_under(sb, &[], command, secrets)
}

/// As [`with_backup_leaks`], with the variables `vars` set for the xtask.
fn with_backup_leaks_under(
    sb: &Sandbox,
    vars: &[(&str, &str)],
    command: &[&str],
    secrets: &[&str],
) -> Vec<String> {
    let mut args = vec!["with-backup", "local", "--"];
    args.extend_from_slice(command);
    let run = Run::from_output(
        sb.xtask_command(&args)
            .envs(vars.iter().copied())
            .output()
            .unwrap(),
    );
    run.assert_ok();
    let listed = sb.xtask(&["list", "--json"]);
    let mut leaks = Vec::new();
    for secret in secrets {
        if run.all().contains(secret) {
            leaks.push(format!("{secret} printed by with-backup"));
        }
        if listed.stdout.contains(secret) {
            leaks.push(format!("{secret} printed by list --json"));
        }
        for name in sb.backup_files() {
            let text = std::fs::read_to_string(sb.backups().join(&name)).unwrap_or_default();
            if text.contains(secret) {
                leaks.push(format!("{secret} recorded in {name}"));
            }
        }
    }
    leaks
}

/// rv7: the redactor knows the names of the secret variables
/// (`CLOUDFLARE_API_TOKEN`, `AWS_SECRET_ACCESS_KEY`, `R2_SECRET_ACCESS_KEY`,
/// …) but only their values in the xtask's own environment. The usual way
/// to hand a bulk task its credentials, `env NAME=value cmd`, is shown in
/// clear and recorded in the manifest, and so is Cloudflare's Global API
/// Key header (`X-Auth-Key`) of a `curl` to the API.
#[test]
fn with_backup_never_shows_or_records_a_credential_assigned_on_its_command_line() {
    let sb = Sandbox::new();
    sb.apply_migrations();
    let token = "cf-api-token-on-the-command-line-0123456789";
    let r2_secret = "r2SecretAccessKey0123456789abcdefABCDEF0123";
    let global_key = "0123456789abcdef0123456789abcdef01234";
    let token_arg = format!("CLOUDFLARE_API_TOKEN={token}");
    let r2_arg = format!("R2_SECRET_ACCESS_KEY={r2_secret}");
    let header = format!("X-Auth-Key: {global_key}");
    let leaks = with_backup_leaks(
        &sb,
        &[
            "env", &token_arg, &r2_arg, "sh", "-c", "exit 0", "import", &header,
        ],
        &[token, r2_secret, global_key],
    );
    assert!(leaks.is_empty(), "{leaks:#?}");
}

/// rv7: age 1.3's post-quantum identities (`AGE-SECRET-KEY-PQ-1…`) work
/// here (scripts/age.mjs passes any `AGE-SECRET-KEY-` line to the pinned
/// age-encryption, which reads them; `check_recipient` takes `age1pq1…`),
/// but the redactor's shape rule stops at the `-` after `PQ`: it prints
/// `[REDACTED]-1<the whole key>`, and records it so in the manifest.
#[test]
fn a_post_quantum_age_identity_is_redacted_whole() {
    let sb = Sandbox::new();
    sb.apply_migrations();
    let body = "QPZRY9X8GF2TVDW0S3JN54KHCE6MUA7LQPZRY9X8GF2TVDW0S3JN54KHCE";
    let identity = format!("AGE-SECRET-KEY-PQ-1{body}");
    let leaks = with_backup_leaks(&sb, &["sh", "-c", "exit 0", "import", &identity], &[body]);
    assert!(leaks.is_empty(), "{leaks:#?}");
}

/// atkQ: the redactor takes a credential's value only when it is joined to
/// its name (`--password=…`, `NAME=value`). The same flags given the usual
/// way, as two arguments (`--password VALUE`, `--api-token VALUE`, a
/// `curl -u user:password`), are shown in `Running: …` and in the error
/// of a failed backup, and recorded in clear as the backup's reason, which
/// `list --json` prints and an upload copies to R2 beside an encrypted file.
#[test]
fn with_backup_never_shows_or_records_a_credential_given_as_its_own_argument() {
    let sb = Sandbox::new();
    sb.apply_migrations();
    let password = "db-password-as-its-own-argument-0123456789";
    let token = "api-token-as-its-own-argument-0123456789";
    let basic = "basic-auth-password-0123456789";
    let user_password = format!("admin:{basic}");
    let leaks = with_backup_leaks(
        &sb,
        &[
            "sh",
            "-c",
            "exit 0",
            "import",
            "--password",
            password,
            "--api-token",
            token,
            "-u",
            &user_password,
        ],
        &[password, token, basic],
    );
    assert!(leaks.is_empty(), "{leaks:#?}");
}

/// Right after a successful `migrate local`, `status` tells the operator
/// to run it again: the newest verified backup is the pre-migration one,
/// so its line reads "1 pending as of that backup: 0005_note.sql (`cargo
/// xtask migrate local` applies it)", while `migrate local` then says
/// "Nothing to do". The pre-migration backup's manifest names the
/// migrations it was taken before; status should not advise re-running it.
#[test]
fn status_after_a_migration_does_not_ask_for_it_again() {
    let (sb, _) = sandbox_with_a_backup();
    migrate_local_with(
        &sb,
        "0005_note.sql",
        "ALTER TABLE customers ADD COLUMN note TEXT;\n",
    );
    let again = sb.xtask(&["migrate", "local", "--dry-run"]);
    again.assert_ok();
    assert!(again.stdout.contains("Nothing to do"), "{}", again.all());

    let run = sb.xtask(&["status", "--env", "local"]);
    run.assert_ok();
    assert!(
        !run.stdout.contains("migrate local` applies it"),
        "status asks for a migration that was just applied:\n{}",
        run.all()
    );
}

/// MH: after `migrate local` applied 0005 (its pre-migration backup the
/// newest), a new 0006 made `status` say "2 pending as of that backup:
/// 0005_note.sql, 0006_more.sql (`cargo xtask migrate local --yes`
/// applies them)": the hedge for the migration `migrate` applied just
/// after that backup was dropped as soon as one pending name was not one
/// it was taken before, and 0005, applied, was given as pending.
#[test]
fn status_tells_a_new_migration_from_one_migrate_applied_after_its_backup() {
    let (sb, _) = sandbox_with_a_backup();
    migrate_local_with(
        &sb,
        "0005_note.sql",
        "ALTER TABLE customers ADD COLUMN note TEXT;\n",
    );
    std::fs::write(
        sb.path().join("migrations/0006_more.sql"),
        "ALTER TABLE customers ADD COLUMN more TEXT;\n",
    )
    .unwrap();
    let run = sb.xtask(&["status", "--env", "local"]);
    run.assert_ok();
    assert!(!run.stdout.contains("2 pending"), "{}", run.all());
    assert!(
        run.stdout
            .contains("1 pending: 0006_more.sql (`cargo xtask migrate local --yes` applies it)"),
        "{}",
        run.all()
    );
    assert!(
        run.stdout.contains(
            "0005_note.sql, pending as of that backup, which `migrate` took before applying it"
        ),
        "{}",
        run.all()
    );
}

/// MH: a SIGINT while `migrate local` applied a migration ended with
/// "migrations may be partly applied to qbtime_db_local; to go back,
/// restore the pre-migration backup", where nothing was applied (each
/// file applies as one batch, and the local one was stopped before it
/// committed). After the interrupt d1_migrations is read again, as after
/// a failure: the message says what is applied and what not, and points
/// at `migrate local --check`. OA 2: having applied nothing, it still
/// ended "should you need the way back, restore the pre-migration backup"
/// with its `--replace` command, and `--json` gave that restore as
/// `result.way_back`: it says there is nothing to restore, names the
/// backup as kept, and `--json` gives no way back.
#[test]
fn an_interrupted_migrate_says_what_it_applied_not_that_it_may_be_partly_applied() {
    let (sb, _) = sandbox_with_a_backup();
    std::fs::write(
        sb.path().join("migrations/0005_slow.sql"),
        // Slow on the database's rows, quick on the plan's empty tables: every
        // pending migration is tried in memory first (NS), and one as slow
        // there is refused before it starts.
        "CREATE TABLE slow AS WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x + 1 \
         FROM c WHERE x < 200000000 * (SELECT count(*) > 0 FROM accounts)) \
         SELECT count(*) AS n FROM c;\n",
    )
    .unwrap();
    let run = interrupt_once_on_stderr(
        sb.xtask_command(&["migrate", "local", "--yes", "--json"]),
        "wrangler: apply migrations",
    );
    assert_eq!(run.code, Some(130), "{}", run.all());
    assert!(!run.stderr.contains("partly applied"), "{}", run.all());
    assert!(
        run.stderr
            .contains("none of 0005_slow.sql was applied to qbtime_db_local")
            && run.stderr.contains("there is nothing to restore")
            && run.stderr.contains("pre-migration backup"),
        "{}",
        run.all()
    );
    assert!(
        run.stderr.contains("`cargo xtask migrate local --check`"),
        "{}",
        run.all()
    );
    no_way_back(&run);
    let plan = sb.xtask(&["migrate", "local", "--dry-run"]);
    assert!(plan.stdout.contains("0005_slow.sql"), "{}", plan.all());
}

/// atkR: the redactor's name rule misses common ways a bulk task is handed
/// a credential, each shown in `Running: …` and recorded in clear as the
/// backup's reason (which `list --json` prints and an upload copies):
/// - a double-quoted assignment inside `sh -c` (`export
///   CLOUDFLARE_API_TOKEN="…"`): the value starts with `"`, which ends it
///   at once, so nothing is replaced;
/// - `PGPASSWORD=…` (libpq's variable: `pgpassword` does not end in
///   `_password`) and `MYSQL_PWD=…`;
/// - the app's own `DATA_ENCRYPTION_KEY=…` (a re-encryption task): `_key`
///   names are not in the list, although this key decrypts every token;
/// - a JSON body, `curl -d '{"password":"…"}'`, and `{"api_token": "…"}`;
/// - a `Cookie:` header (a session cookie for an admin endpoint).
#[test]
fn with_backup_never_shows_or_records_a_credential_in_other_common_forms() {
    let sb = Sandbox::new();
    sb.apply_migrations();
    let quoted = "quoted-cf-token-0123456789abcdef";
    let pg = "pg-password-0123456789abcdef";
    let mysql = "mysql-pwd-0123456789abcdef";
    let dek = "ZGF0YS1lbmNyeXB0aW9uLWtleS0wMTIzNDU2Nzg5";
    let json_password = "json-password-0123456789abcdef";
    let json_token = "json-api-token-0123456789abcdef";
    let cookie = "session-cookie-0123456789abcdef";
    let script = format!("export CLOUDFLARE_API_TOKEN=\"{quoted}\"; exit 0");
    let pg_arg = format!("PGPASSWORD={pg}");
    let mysql_arg = format!("MYSQL_PWD={mysql}");
    let dek_arg = format!("DATA_ENCRYPTION_KEY={dek}");
    let body = format!("{{\"password\":\"{json_password}\"}}");
    let body2 = format!("{{\"api_token\": \"{json_token}\"}}");
    let header = format!("Cookie: session={cookie}");
    let leaks = with_backup_leaks(
        &sb,
        &[
            "env", &pg_arg, &mysql_arg, &dek_arg, "sh", "-c", &script, "import", "-d", &body, "-d",
            &body2, "-H", &header,
        ],
        &[quoted, pg, mysql, dek, json_password, json_token, cookie],
    );
    assert!(leaks.is_empty(), "{leaks:#?}");
}

/// atkR: every printed text is redacted whole, and a JSON document is one
/// text. A quoted `-u 'user:pa$$word'` (any password with a character the
/// shell must quote) is recorded as `-u 'admin:[REDACTED]` (its closing
/// quote redacted with it); `list --json` then prints that reason, the
/// `-u` rule reads the value as a quoted word running to the next `'`
/// anywhere after it, or to the end of the document, and replaces all of
/// it: stdout is no longer JSON (the rest of the document is gone), and
/// the command exits 0. A script reading `list --json` expects one valid
/// document.
#[test]
fn list_json_stays_one_document_after_a_with_backup_given_a_quoted_password() {
    let sb = Sandbox::new();
    sb.apply_migrations();
    sb.xtask(&[
        "with-backup",
        "local",
        "--",
        "sh",
        "-c",
        "exit 0",
        "import",
        "-u",
        "admin:hunter2!",
    ])
    .assert_ok();
    let listed = sb.xtask(&["list", "--json"]);
    listed.assert_ok();
    let parsed = serde_json::from_str::<serde_json::Value>(&listed.stdout);
    assert!(
        parsed.is_ok(),
        "list --json is not JSON ({:?}):\n{}",
        parsed.err(),
        listed.stdout
    );
    assert!(!listed.stdout.contains("hunter2"), "{}", listed.stdout);
}

/// atkS: with-backup quotes its command for display (`shell_words`), and
/// the redactor then reads the quoted word: `env 'PGPASSWORD=correct horse
/// battery staple' psql` is shown and recorded as `'PGPASSWORD=[REDACTED]
/// horse battery staple'` (the value ends at the first blank, though the
/// quote opened before the name), and a password with an apostrophe,
/// `'MYSQL_PWD=it'\''s-mine'`, keeps `s-mine`. Names outside the list are
/// shown whole: `gpg --passphrase …` and `--passphrase=…`, and MySQL's
/// attached `-p…` (its documented short form; MYSQL_PWD is already
/// redacted).
#[test]
fn with_backup_never_shows_or_records_a_quoted_password_or_a_passphrase() {
    let sb = Sandbox::new();
    sb.apply_migrations();
    let spaced = "correct horse battery staple";
    let apostrophe = "it's-mine-0123456789";
    let passphrase = "passphrase-0123456789abcdef";
    let passphrase2 = "passphrase2-0123456789abcdef";
    let mysql = "mysqlShortP-0123456789abcdef";
    let pg_arg = format!("PGPASSWORD={spaced}");
    let mysql_arg = format!("MYSQL_PWD={apostrophe}");
    let flag_eq = format!("--passphrase={passphrase}");
    let p_arg = format!("-p{mysql}");
    let leaks = with_backup_leaks(
        &sb,
        &[
            "env",
            &pg_arg,
            &mysql_arg,
            "sh",
            "-c",
            "exit 0",
            "import",
            &flag_eq,
            "--passphrase",
            passphrase2,
            &p_arg,
        ],
        &[
            "horse battery staple",
            "s-mine-0123456789",
            passphrase,
            passphrase2,
            mysql,
        ],
    );
    assert!(leaks.is_empty(), "{leaks:#?}");
}

/// KH: a credential's value ran only to the first `,` `;` `)` `}` `&`
/// or quote, so with-backup showed, and recorded as the backup's reason,
/// the rest of a password or key that holds one: `--password=head,tail`
/// and `env AWS_SECRET_ACCESS_KEY=head,tail` (a `,` needs no quoting, so
/// the shell shows the word bare), `-u admin:head,tail`, and a quoted
/// `-H 'Authorization: Basic head,tail'` all kept `,tail`.
#[test]
fn with_backup_never_shows_or_records_the_tail_of_a_credential_after_punctuation() {
    let sb = Sandbox::new();
    sb.apply_migrations();
    let tails = [
        "aws-tail-01234",
        "pw-tail-01234",
        "user-tail-01234",
        "auth-tail-01234",
    ];
    let heads = [
        "AWS_SECRET_ACCESS_KEY=aws-head,",
        "--password=pw-head,",
        "admin:user-head,",
        "Authorization: Basic auth-head,",
    ];
    let [aws, password, user, header]: [String; 4] =
        std::array::from_fn(|i| format!("{}{}", heads[i], tails[i]));
    let command = [
        "env", &aws, "sh", "-c", "exit 0", "import", &password, "-u", &user, "-H", &header,
    ];
    let leaks = with_backup_leaks(&sb, &command, &tails);
    assert!(leaks.is_empty(), "{leaks:#?}");
}

/// rvAO: with-backup shows its command quoted for the shell, a `'` in a
/// word as `'\''`: a known secret holding one (`CLOUDFLARE_API_TOKEN`
/// passed on as `"X-Thing: $CLOUDFLARE_API_TOKEN"`) and a secret-named
/// variable's value with a blank and a `'` (`"$MY_DB_PASSWORD"`) were
/// shown and recorded in that spelling, unmatched; and a JSON field's value
/// on the line after its name (`--data $'{"password":\n  "…"}'`) was
/// shown on the terminal, which redacts line by line.
#[test]
fn with_backup_never_shows_or_records_a_secret_quoted_for_the_shell_or_after_a_line_break() {
    let sb = Sandbox::new();
    sb.apply_migrations();
    let (token, password) = ("Zk9'Qm2Lp8Wx", "hunter2 it's secret");
    let (header, json) = (
        format!("X-Thing: {token}"),
        "{\"password\":\n  \"Jq4Vn8Rt2Ys\"}",
    );
    let leaks = with_backup_leaks_under(
        &sb,
        &[
            ("CLOUDFLARE_API_TOKEN", token),
            ("MY_DB_PASSWORD", password),
        ],
        &[
            "sh", "-c", "exit 0", "import", token, "-H", &header, password, "--data", json,
        ],
        &["Qm2Lp8Wx", "hunter2", "Jq4Vn8Rt2Ys"],
    );
    assert!(leaks.is_empty(), "{leaks:#?}");
}

#[test]
fn status_json_does_not_call_the_migrations_applied_after_a_time_travel_restore() {
    // A Time Travel restore after the newest verified backup (as
    // `time-travel restore` journals it): the text now says `unknown`, but
    // `--json`, which the README says gives the same, still reports
    // `"pending_migrations": []`, i.e. nothing pending, for a database that
    // may have been taken back before any of them (status.rs: only
    // `render` asks `time_travel_since_the_backup`).
    let (sb, _) = sandbox_with_a_backup();
    let now = chrono::Utc::now().to_rfc3339();
    std::fs::write(
        sb.backups().join("time-travel.jsonl"),
        format!(
            "{}\n",
            serde_json::json!({
                "at": now,
                "started_at": now,
                "environment": "local",
                "status": "done",
            })
        ),
    )
    .unwrap();
    let text = sb.xtask(&["status", "--env", "local"]);
    text.assert_ok();
    assert!(
        text.stdout.contains("migrations                unknown"),
        "{}",
        text.all()
    );
    let run = sb.xtask(&["status", "--env", "local", "--json"]);
    run.assert_ok();
    let report: serde_json::Value = serde_json::from_str(&run.stdout).unwrap();
    let local = &report["environments"][0];
    assert_ne!(
        local["pending_migrations"],
        serde_json::json!([]),
        "--json says no migration is pending where the text says unknown:\n{report:#}"
    );
}

/// wrangler orders migrations by `parseInt` of the part before the first
/// `_`, which skips leading spaces and reads a sign: `+5_nickname.sql` is
/// number 5 and is applied before `6_t6.sql` (`wrangler d1 migrations list
/// --local` lists it so). migrate's plan reads only leading digits, calls
/// it unnumbered and lists it last, after the migration wrangler applies
/// after it (rvW).
#[test]
fn migrate_plans_a_signed_migration_number_where_wrangler_applies_it() {
    let sb = Sandbox::new();
    let dir = sb.path().join("migrations");
    std::fs::write(
        dir.join("+5_nickname.sql"),
        "ALTER TABLE accounts ADD COLUMN nickname TEXT;\n",
    )
    .unwrap();
    std::fs::write(dir.join("6_t6.sql"), "CREATE TABLE t6 (x TEXT);\n").unwrap();
    let listed = sb.wrangler(&["d1", "migrations", "list", "qbtime_db_local", "--local"]);
    listed.assert_ok();
    assert!(
        listed.stdout.find("+5_nickname.sql") < listed.stdout.find("6_t6.sql"),
        "wrangler's own order:\n{}",
        listed.stdout
    );
    let run = sb.xtask(&["migrate", "local", "--dry-run"]);
    run.assert_ok();
    let at = |name: &str| {
        run.stdout
            .find(name)
            .unwrap_or_else(|| panic!("{name} not in the plan:\n{}", run.stdout))
    };
    assert!(
        at("+5_nickname.sql") < at("6_t6.sql"),
        "the plan lists 6_t6.sql before +5_nickname.sql, which wrangler applies first:\n{}",
        run.stdout
    );
}

/// A sandbox with `notes` (two rows) made by an applied migration, and
/// `next` (file name, text) pending.
fn notes_then(next: (&str, &str)) -> Sandbox {
    let sb = Sandbox::new();
    std::fs::write(
        sb.path().join("migrations/0005_notes.sql"),
        "CREATE TABLE notes (id INTEGER PRIMARY KEY, body TEXT NOT NULL);\n",
    )
    .unwrap();
    sb.apply_migrations();
    sb.execute_sql("INSERT INTO notes (body) VALUES ('first'), ('second');");
    std::fs::write(sb.path().join("migrations").join(next.0), next.1).unwrap();
    sb
}

#[test]
fn migrate_does_not_warn_that_a_renamed_table_was_taken() {
    // rvAF: `rows_lost` matches the backup's tables by name, so a table a
    // migration renames is "gone": migrate warns that the migrations
    // "emptied or took" it and tells the operator to restore the
    // pre-migration backup with --replace, which would undo the migration
    // although every row is still there, under its new name.
    let sb = notes_then((
        "0006_rename_notes.sql",
        "ALTER TABLE notes RENAME TO memos;\n",
    ));
    let run = sb.xtask(&["migrate", "local", "--yes"]);
    run.assert_ok();
    let kept = sb.query("SELECT count(*) AS n FROM memos");
    assert_eq!(kept[0][0]["n"], 2, "every row kept, renamed");
    assert!(
        !run.stderr.contains("emptied or took"),
        "a rename is not a loss:\n{}",
        run.all()
    );
}

#[test]
fn migrate_does_not_warn_of_a_table_redefined_under_its_name_in_other_case() {
    // rvAF: a table redefined as Prisma does (new table, copy, drop, rename)
    // that comes back as `Notes` is the same table to SQLite and D1 (names
    // are case-blind), and it holds every row; `rows_lost` compares the
    // backup's `notes` with sqlite_master's `Notes` case-sensitively and
    // warns "notes (2 rows) is gone".
    let sb = notes_then((
        "0006_redefine_notes.sql",
        "PRAGMA defer_foreign_keys=ON;\n\
         CREATE TABLE \"new_Notes\" (id INTEGER PRIMARY KEY, body TEXT NOT NULL, pinned BOOLEAN NOT NULL DEFAULT false);\n\
         INSERT INTO \"new_Notes\" (id, body) SELECT id, body FROM notes;\n\
         DROP TABLE notes;\n\
         ALTER TABLE \"new_Notes\" RENAME TO \"Notes\";\n\
         PRAGMA defer_foreign_keys=OFF;\n",
    ));
    let run = sb.xtask(&["migrate", "local", "--yes"]);
    run.assert_ok();
    let kept = sb.query("SELECT count(*) AS n FROM notes");
    assert_eq!(kept[0][0]["n"], 2, "every row kept");
    assert!(
        !run.stderr.contains("is gone") && !run.stderr.contains("emptied or took"),
        "the table is there with its rows:\n{}",
        run.all()
    );
}

fn mkfifo(path: &std::path::Path) {
    let ok = std::process::Command::new("mkfifo")
        .arg(path)
        .status()
        .unwrap()
        .success();
    assert!(ok, "mkfifo {}", path.display());
}

#[test]
fn a_pipe_in_place_of_an_applied_migration_is_refused_by_name_before_anything_runs() {
    let sb = Sandbox::new();
    sb.apply_migrations();
    let dir = sb.path().join("migrations");
    let second = dir.join("0002_encryption_keys_and_qbt_tokens.sql");
    std::fs::remove_file(&second).unwrap();
    mkfifo(&second);
    std::fs::write(dir.join("0005_t5.sql"), "CREATE TABLE t5 (x TEXT);\n").unwrap();
    let run = sb.xtask(&["migrate", "local", "--yes"]);
    run.assert_refused("0002_encryption_keys_and_qbt_tokens.sql");
    assert!(run.stderr.contains("not a regular file"), "{}", run.all());
    assert!(!run.all().contains("applied      5 of 4"), "{}", run.all());
    assert_eq!(sb.backup_files(), [".lock"], "refused before the backup");
    let applied = sb.query("SELECT name FROM d1_migrations ORDER BY id");
    assert_eq!(applied[0].len(), 4, "nothing applied");
}

#[test]
fn the_plan_never_counts_more_applied_migrations_than_there_are_files() {
    let sb = Sandbox::new();
    sb.apply_migrations();
    let dir = sb.path().join("migrations");
    std::fs::remove_file(dir.join("0002_encryption_keys_and_qbt_tokens.sql")).unwrap();
    let run = sb.xtask(&["migrate", "local", "--dry-run"]);
    assert!(!run.all().contains("applied      4 of 3"), "{}", run.all());
    assert!(
        run.all()
            .contains("0002_encryption_keys_and_qbt_tokens.sql"),
        "the applied migration no longer in migrations/ is named:\n{}",
        run.all()
    );
}

/// A stray pipe in migrations/ (wrangler skips it) is refused by `migrate`,
/// but a backup's verify and a restore read the migrations to tell which
/// triggers they make: they took the refusal for "no migrations" and said
/// every trigger the migrations make was foreign, and that restore refuses
/// the backup.
#[test]
fn a_pipe_in_migrations_never_makes_the_migrations_triggers_foreign() {
    let sb = Sandbox::new();
    sb.apply_migrations();
    mkfifo(&sb.path().join("migrations/0009_stray.sql"));
    let run = sb.xtask(&["backup", "local"]);
    run.assert_ok();
    assert!(
        !run.all().contains("audit_log_no_delete"),
        "a trigger migration 0004 makes is called foreign:\n{}",
        run.all()
    );
    let file = sb.backups().join(only_backup(&sb));
    let run = sb.xtask(&[
        "restore",
        file.to_str().unwrap(),
        "--to",
        "local",
        "--replace",
        "--dry-run",
    ]);
    assert!(
        !run.all().contains("do not create"),
        "a trigger migration 0004 makes is called foreign:\n{}",
        run.all()
    );
}

/// The plan names the applied migrations no longer in migrations/ (a
/// squash moves a year of them away) in one line, as every list of names
/// is told: the first ten and how many more, not a screenful.
#[test]
fn the_plan_names_a_year_of_applied_migrations_gone_in_one_bounded_line() {
    let sb = Sandbox::new();
    sb.apply_migrations();
    let gone: Vec<String> = (1..=30)
        .map(|i| format!("('0{:03}_squashed_away.sql')", 100 + i))
        .collect();
    sb.execute_sql(&format!(
        "INSERT INTO d1_migrations (name) VALUES {};",
        gone.join(", ")
    ));
    let run = sb.xtask(&["migrate", "local", "--dry-run"]);
    assert!(
        run.all().contains("0101_squashed_away.sql"),
        "{}",
        run.all()
    );
    assert!(
        !run.all().contains("0130_squashed_away.sql"),
        "every one of 30 names is listed:\n{}",
        run.all()
    );
    assert!(run.all().contains("and 20 more"), "{}", run.all());
}

/// A row a team inserted by hand into d1_migrations, with no file ever:
/// the refusal explained it only as another branch's or a deleted file's.
/// It gives the way for a row with no file too: add a file of that name,
/// or delete the row after checking, in words that quote no row value but
/// the name.
#[test]
fn a_migration_recorded_by_hand_with_no_file_ever_is_given_a_way_forward() {
    let sb = Sandbox::new();
    sb.apply_migrations();
    sb.execute_sql("INSERT INTO d1_migrations (name) VALUES ('0900_hand_fix.sql');");
    for args in [
        &["migrate", "local", "--yes"][..],
        &["migrate", "local", "--check"][..],
    ] {
        let run = sb.xtask(args);
        assert_ne!(run.code, Some(0), "{args:?}:\n{}", run.all());
        let all = run.all();
        assert!(
            all.contains("0900_hand_fix.sql")
                && all.contains("by hand")
                && all.contains("add a file of that name")
                && all.contains("delete its row from d1_migrations"),
            "{args:?}: no way for a migration recorded by hand with no file:\n{all}"
        );
    }
}

/// Issue 13's grammar ("1 backup", "1 migration"): a table a migration
/// dropped with its one row was told as "notes (1 rows) is gone".
#[test]
fn a_dropped_table_of_one_row_is_told_as_one_row() {
    let sb = Sandbox::new();
    std::fs::write(
        sb.path().join("migrations/0005_notes.sql"),
        "CREATE TABLE notes (id INTEGER PRIMARY KEY, body TEXT NOT NULL);\n",
    )
    .unwrap();
    sb.apply_migrations();
    sb.execute_sql("INSERT INTO notes (body) VALUES ('only');");
    std::fs::write(
        sb.path().join("migrations/0006_drop_notes.sql"),
        "DROP TABLE notes;\n",
    )
    .unwrap();
    let run = sb.xtask(&["migrate", "local", "--yes"]);
    run.assert_ok();
    assert!(
        run.all().contains("notes (1 row) is gone"),
        "the dropped table, in the singular:\n{}",
        run.all()
    );
    assert!(!run.all().contains("1 rows"), "{}", run.all());
}

/// `restore --clean` of a data-only backup after an applied migration was
/// edited is refused, and its way forward must be one that restores it: it
/// advised `--replace`, which a data-only backup (it creates no table) is
/// refused with, telling the operator to use `--clean`, a loop.
#[test]
fn the_edited_migration_refusal_of_a_data_only_clean_restore_gives_no_way_that_is_refused() {
    let sb = Sandbox::new();
    sb.apply_migrations();
    sb.execute_sql("INSERT INTO companies (name) VALUES ('Acme');");
    sb.xtask(&["backup", "local", "--data-only"]).assert_ok();
    let name = only_backup(&sb);
    let edited = "0002_encryption_keys_and_qbt_tokens.sql";
    edit_migration(&sb, edited);

    let run = sb.xtask(&["restore", &name, "--to", "local", "--clean", "--dry-run"]);
    assert_eq!(run.code, Some(3), "{}", run.all());
    assert!(run.stderr.contains(edited), "{}", run.stderr);
    assert!(
        run.stderr
            .contains("Add a new migration, don't edit an applied one"),
        "{}",
        run.stderr
    );
    // The advice it gives must not be refused in turn.
    let replace = sb.xtask(&["restore", &name, "--to", "local", "--replace", "--dry-run"]);
    assert_eq!(replace.code, Some(3), "{}", replace.all());
    assert!(
        !run.stderr.contains("restore it with --replace"),
        "a data-only backup cannot restore --replace (it is refused: {}), yet the refusal \
         advises it: {}",
        replace.stderr,
        run.stderr
    );
    assert!(run.stderr.contains("full backup"), "{}", run.stderr);
}

/// A rebase onto a branch that took the migration's number: the developer
/// renumbers it (`git mv 0004_… 0005_…`), the applied file is gone and its
/// copy would run again. The refusal names the git command that shows the
/// commit; git's log reports a rename as a rename, not a deletion, so
/// `--diff-filter=D` printed nothing at all.
#[test]
fn the_git_log_a_missing_migrations_refusal_prints_shows_a_migration_renumbered_in_a_rebase() {
    let sb = Sandbox::new();
    sb.apply_migrations();
    sb.xtask(&["backup", "local"]).assert_ok();
    sb.git(&["add", "-A"]).assert_ok();
    sb.git(&["commit", "-qm", "the app"]).assert_ok();
    sb.git(&[
        "mv",
        "migrations/0004_audit_log.sql",
        "migrations/0005_audit_log.sql",
    ])
    .assert_ok();
    sb.git(&["commit", "-qm", "renumber after the rebase"])
        .assert_ok();

    let run = sb.xtask(&["migrate", "local", "--check"]);
    assert_eq!(run.code, Some(1), "{}", run.all());
    assert!(run.stderr.contains("0004_audit_log.sql"), "{}", run.stderr);
    let command = run
        .stderr
        .split('`')
        .find(|part| part.starts_with("git log --diff-filter"))
        .unwrap_or_else(|| panic!("no git log command printed:\n{}", run.all()))
        .to_owned();
    let pasted = std::process::Command::new("sh")
        .args(["-c", &command])
        .current_dir(sb.path())
        .output()
        .unwrap();
    assert!(pasted.status.success(), "{command}: {pasted:?}");
    let shown = String::from_utf8_lossy(&pasted.stdout);
    assert!(
        shown.contains("renumber after the rebase") && shown.contains("0004_audit_log.sql"),
        "`{command}`, pasted as the refusal says, shows no commit that took 0004_audit_log.sql \
         out: {shown:?}"
    );
}

/// A migration fails in D1 (it drops `notes`, then inserts a row twice:
/// a UNIQUE constraint only rows break, so the plan's trial on the schema
/// alone passes it), with another pending after it. D1 applies each migration file as one batch, so the
/// failed one left nothing, and `d1_migrations` lists neither: nothing was
/// applied by this run. migrate said only "to go back, restore the
/// pre-migration backup", as if the database were half-migrated. It says
/// nothing was applied by this run, and still names the backup, without
/// telling them to restore it first.
#[test]
fn a_migration_that_fails_whole_says_nothing_was_applied_and_still_names_the_backup() {
    let sb = notes_then((
        "0006_drop_notes.sql",
        "CREATE TABLE extra (id INTEGER PRIMARY KEY);\nDROP TABLE notes;\n\
         INSERT INTO extra (id) VALUES (1), (1);\n",
    ));
    std::fs::write(
        sb.path().join("migrations/0007_after.sql"),
        "CREATE TABLE after_it (id INTEGER PRIMARY KEY);\n",
    )
    .unwrap();
    let run = sb.xtask(&["migrate", "local", "--yes"]);
    assert!(!run.ok, "{}", run.all());
    let applied = sb.query("SELECT name FROM d1_migrations ORDER BY id");
    assert_eq!(
        applied[0].len(),
        5,
        "the failed migration left nothing recorded"
    );
    let kept = sb.query("SELECT count(*) AS n FROM notes");
    assert_eq!(
        kept[0][0]["n"], 2,
        "the failed migration left nothing applied"
    );
    let error = run
        .stderr
        .lines()
        .find(|l| l.starts_with("error:"))
        .unwrap_or("");
    assert!(
        error.contains("nothing was applied by this run"),
        "the error does not say nothing was applied:\n{}",
        run.all()
    );
    assert!(
        run.stderr.contains(&only_backup(&sb)),
        "the pre-migration backup is not named:\n{}",
        run.all()
    );
    assert!(
        !error.contains("failed; to go back"),
        "restoring is not the first thing to do:\n{}",
        run.all()
    );
}

/// rvY 2: with the local D1's file locked by another program (`BEGIN
/// EXCLUSIVE` held on it), wrangler failed a plain `CREATE TABLE`
/// migration with `database is locked: SQLITE_BUSY`, and migrate said
/// "fix it and migrate again" of a migration that needs no fix. A lock is
/// not the SQL's fault: it says the error is not an SQL error from D1,
/// that nothing was applied, to fix what it names and migrate again; and
/// it does not both say the migration needs no change and suggest D1's
/// time limit, which would need one. Once the lock is let go, the same
/// migration applies. (A migrate now refuses while another process has
/// the file open, rvAA: the lock is taken once its pre-migration backup's
/// manifest is written, after that check, while wrangler starts.)
#[test]
fn a_migration_failing_on_a_locked_database_is_not_blamed() {
    let sb = one_pending();
    let child = sb
        .xtask_command(&["migrate", "local", "--yes"])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let started = std::time::Instant::now();
    let manifest_written = || {
        std::fs::read_dir(sb.backups()).is_ok_and(|mut entries| {
            entries.any(|e| {
                e.is_ok_and(|e| e.file_name().to_string_lossy().ends_with(".manifest.json"))
            })
        })
    };
    while !manifest_written() {
        assert!(started.elapsed().as_secs() < 120, "no backup was written");
        std::thread::sleep(std::time::Duration::from_millis(10));
    }
    let locker = rusqlite::Connection::open(sb.local_d1_file()).unwrap();
    locker.execute_batch("BEGIN EXCLUSIVE;").unwrap();
    let run = Run::from_output(child.wait_with_output().unwrap());
    assert!(!run.ok, "{}", run.all());
    let error = { run.stderr.lines() }
        .find(|l| l.starts_with("error:"))
        .unwrap_or("");
    assert!(
        !error.contains("fix it and migrate again") && error.contains("not an SQL error from D1"),
        "a lock was blamed on the migration:\n{}",
        run.all()
    );
    assert!(
        error.contains("nothing was applied by this run"),
        "{}",
        run.all()
    );
    let both = error.contains("needs no change") && error.contains("30 s");
    assert!(
        !both,
        "says both no change and a time limit:\n{}",
        run.all()
    );
    // rvZ: a database left full (SQLITE_FULL) or out of memory by the
    // migration's own size is the migration's too, not only a timeout.
    assert!(
        !error.contains("Only a timeout") && error.contains("its own size"),
        "{}",
        run.all()
    );
    locker.execute_batch("ROLLBACK;").unwrap();
    drop(locker);
    sb.xtask(&["migrate", "local", "--yes"]).assert_ok();
    let applied = sb.query("SELECT name FROM d1_migrations ORDER BY id");
    assert_eq!(applied[0].len(), 4, "{applied:?}");
}

/// rvAA: a `migrate local` while another process has the local D1 open (a
/// `wrangler dev`, or a killed run's wrangler still applying) is refused
/// with exit 3 naming it, as a local restore is, before its backup: that
/// process could commit beside the migration, or after this run said what
/// it applied. Nothing is applied and no backup is written.
#[test]
fn a_local_migrate_while_another_process_has_the_database_open_is_refused() {
    let sb = one_pending();
    let db = sb.local_d1_file();
    let mut holder = std::process::Command::new("sh")
        .arg("-c")
        .arg("exec 3<\"$0\"; sleep 30")
        .arg(&db)
        .spawn()
        .unwrap();
    std::thread::sleep(std::time::Duration::from_millis(300));
    let run = sb.xtask(&["migrate", "local", "--yes"]);
    let _ = holder.kill();
    let _ = holder.wait();
    assert_eq!(run.code, Some(3), "{}", run.all());
    run.assert_refused("another process has the local D1 database open");
    assert!(
        run.stderr.contains(&format!("pid {}", holder.id())),
        "{}",
        run.stderr
    );
    let backups: Vec<String> = { sb.backup_files().into_iter() }
        .filter(|name| name.starts_with("backup-"))
        .collect();
    assert!(backups.is_empty(), "{backups:?}");
    let applied = sb.query("SELECT name FROM d1_migrations WHERE name = '0004_audit_log.sql'");
    assert!(applied[0].is_empty(), "{applied:?}");
}

/// JE: migrate applied whatever was in migrations/ when wrangler ran, not
/// the plan it printed and was confirmed: a migration written (or a
/// pending one edited) after the plan was shown, here while the name is
/// asked, was applied too, never shown nor analysed, and the run said
/// "Applied 1 migration". `edit` changes migrations/ at the question; the
/// run is refused (exit 3) naming `named`, with nothing applied.
fn changed_after_the_plan_is_refused(edit: impl FnOnce(&std::path::Path), named: &str) {
    let sb = one_pending();
    let mut migrate = InATerminal::start(&sb, &["migrate", "local"]);
    assert!(
        migrate.prints("Type the database name"),
        "it did not ask:\n{}",
        migrate.seen()
    );
    assert!(
        migrate.seen().contains("pending      0004_audit_log.sql"),
        "{}",
        migrate.seen()
    );
    edit(&sb.path().join("migrations"));
    migrate.answer("qbtime_db_local");
    let (code, out) = migrate.end();
    assert_eq!(code, Some(3), "{out}");
    assert!(out.contains(named), "the file is not named:\n{out}");
    assert!(out.contains("migrate again"), "the fix is not said:\n{out}");
    assert!(!out.contains("Applied "), "{out}");
    let applied = sb.query("SELECT name FROM d1_migrations ORDER BY id");
    assert_eq!(applied[0].len(), 3, "{applied:?}\n{out}");
    let surprise = sb.query("SELECT name FROM sqlite_master WHERE name = 'surprise'");
    assert!(surprise[0].is_empty(), "{surprise:?}\n{out}");
}

#[test]
fn a_migration_added_after_the_plan_was_shown_is_refused_and_nothing_applied() {
    changed_after_the_plan_is_refused(
        |dir| {
            std::fs::write(
                dir.join("0005_surprise.sql"),
                "CREATE TABLE surprise (x);\n",
            )
            .unwrap()
        },
        "0005_surprise.sql",
    );
}

#[test]
fn a_pending_migration_edited_after_the_plan_was_shown_is_refused_and_nothing_applied() {
    changed_after_the_plan_is_refused(
        |dir| {
            let file = dir.join("0004_audit_log.sql");
            let text = std::fs::read_to_string(&file).unwrap();
            std::fs::write(&file, format!("{text}\nCREATE TABLE surprise (x);\n")).unwrap();
        },
        "0004_audit_log.sql",
    );
}

/// JT: the re-reading of migrations/ just before wrangler runs and
/// wrangler's own reading of it are two reads: a file written between
/// them (here by a preload in the real wrangler's Node, as it starts) was
/// applied, never shown, analysed nor confirmed, and so was an edit of a
/// pending one. wrangler must apply the plan's files alone, as the plan
/// read them, to the project's own local D1: its rows from before are
/// there after, and wrangler run without the tool sees the migration.
fn changed_as_wrangler_starts_is_not_applied(name: &str, text: &str) -> Sandbox {
    let sb = one_pending();
    let file = sb.path().join("migrations").join(name);
    let mut cmd = sb.xtask_command(&["migrate", "local", "--yes"]);
    let _hook = writing_as_migrations_apply_starts(&mut cmd, &file, text);
    let run = Run::from_output(cmd.output().unwrap());
    run.assert_ok();
    assert_eq!(
        std::fs::read_to_string(&file).unwrap(),
        text,
        "the preload did not run:\n{}",
        run.all()
    );
    let applied = sb.query_with_wrangler("SELECT name FROM d1_migrations ORDER BY id");
    let names: Vec<&str> = { applied[0].iter() }
        .filter_map(|r| r["name"].as_str())
        .collect();
    assert_eq!(names.len(), 4, "{names:?}\n{}", run.all());
    assert_eq!(names[3], "0004_audit_log.sql", "{names:?}");
    let surprise = sb.query_with_wrangler("SELECT name FROM sqlite_master WHERE name = 'surprise'");
    assert!(surprise[0].is_empty(), "{surprise:?}\n{}", run.all());
    let audit = sb.query_with_wrangler("SELECT name FROM sqlite_master WHERE name = 'audit_log'");
    assert_eq!(audit[0].len(), 1, "{audit:?}\n{}", run.all());
    let kept = sb.query_with_wrangler("SELECT name FROM companies");
    assert_eq!(kept[0].len(), 1, "the rows from before: {kept:?}");
    assert!(
        run.stdout.contains("Applied 1 migration to"),
        "{}",
        run.all()
    );
    assert!(!run.stderr.contains("gained"), "{}", run.all());
    sb
}

#[test]
fn a_migration_added_as_wrangler_starts_is_not_applied() {
    let sb = changed_as_wrangler_starts_is_not_applied(
        "0005_surprise.sql",
        "CREATE TABLE surprise (x);\n",
    );
    // Still there, and pending: the next plan shows it.
    let run = sb.xtask(&["migrate", "local", "--dry-run"]);
    run.assert_ok();
    assert!(
        run.stdout.contains("pending      0005_surprise.sql"),
        "{}",
        run.all()
    );
}

#[test]
fn a_pending_migration_edited_as_wrangler_starts_is_applied_as_planned() {
    let planned =
        std::fs::read_to_string(repo_root().join("migrations/0004_audit_log.sql")).unwrap();
    changed_as_wrangler_starts_is_not_applied(
        "0004_audit_log.sql",
        &format!("{planned}\nCREATE TABLE surprise (x);\n"),
    );
}

/// JL: a run that applied migrations and then failed on one with an error
/// that is not its SQL's (here the disk full for it: under a file-size
/// limit, as `ulimit -f`, the third migration's write fails and the local
/// D1 runtime dies) said only "applying migrations failed; to go back, …".
/// It must name the files of this run that were applied and stay applied
/// (d1_migrations read again), the one that failed and was rolled back,
/// that the cause may be the machine or D1 or the migration's own size,
/// and what to do next: migrate again once that is fixed, or restore the
/// pre-migration backup, named.
#[test]
fn a_non_sql_failure_after_migrations_applied_names_what_stays_applied() {
    let sb = one_pending();
    let dir = sb.path().join("migrations");
    let notes = "CREATE TABLE notes (id INTEGER PRIMARY KEY, body TEXT);\n";
    std::fs::write(dir.join("0005_notes.sql"), notes).unwrap();
    let fill = "CREATE TABLE filler (x BLOB);\nINSERT INTO filler VALUES (zeroblob(4000000));\n";
    std::fs::write(dir.join("0006_fill.sql"), fill).unwrap();
    let mut limited = std::process::Command::new("sh");
    limited.args([
        "-c",
        "trap '' XFSZ; ulimit -f 2048; exec \"$0\" \"$@\"",
        env!("CARGO_BIN_EXE_xtask"),
    ]);
    let args = ["migrate", "local", "--yes"];
    let run = Run::from_output(sb.sandboxed(limited, &args).output().unwrap());
    assert!(!run.ok, "{}", run.all());
    let applied = sb.query("SELECT name FROM d1_migrations ORDER BY id");
    let names: Vec<&str> = { applied[0].iter() }
        .filter_map(|r| r["name"].as_str())
        .collect();
    assert!(
        names.contains(&"0005_notes.sql") && !names.contains(&"0006_fill.sql"),
        "{names:?}"
    );
    let error = { run.stderr.lines() }
        .skip_while(|l| !l.starts_with("error:"))
        .collect::<Vec<_>>()
        .join("\n");
    for said in [
        "0004_audit_log.sql and 0005_notes.sql were applied by this run and stay applied",
        "then 0006_fill.sql was not applied",
        "none of it was committed",
        "not an SQL error from D1",
        "its own size",
        "migrate again",
    ] {
        assert!(error.contains(said), "{said:?} not in:\n{}", run.all());
    }
    let backup = { sb.backup_files().into_iter() }
        .find(|name| name.starts_with("backup-") && name.ends_with(".sql"))
        .expect("a pre-migration backup");
    assert!(
        error.contains(&backup),
        "{backup} not named:\n{}",
        run.all()
    );
}

/// KJ: a TMPDIR migrate refuses (one whose path holds a backslash, which
/// wrangler reads as `/` in the configuration naming the private copy of
/// the migrations; one others can write to without the sticky bit) was
/// refused only after the pre-migration backup had been taken under the
/// backup lock: the backup directory gained a backup of a migration that
/// never ran. Every check of the environment a migrate refuses on runs
/// before anything is written: refused (exit 2) naming TMPDIR, no backup
/// directory, nothing applied; the dry run says it as the run would.
#[test]
fn a_tmpdir_migrate_refuses_is_refused_before_the_backup_lock_and_the_backup() {
    use std::os::unix::fs::PermissionsExt as _;
    let sb = one_pending();
    let backslash = sb.path().join("tmp\\dir");
    std::fs::create_dir(&backslash).unwrap();
    let shared = sb.path().join("shared-tmp");
    std::fs::create_dir(&shared).unwrap();
    std::fs::set_permissions(&shared, std::fs::Permissions::from_mode(0o777)).unwrap();
    for tmp in [&backslash, &shared] {
        for args in [
            &["migrate", "local", "--yes"][..],
            &["migrate", "local", "--dry-run"],
        ] {
            let out = sb.xtask_command(args).env("TMPDIR", tmp).output().unwrap();
            let run = Run::from_output(out);
            assert_eq!(run.code, Some(2), "{args:?} {tmp:?}:\n{}", run.all());
            assert!(run.stderr.contains("TMPDIR"), "{}", run.all());
            assert!(
                !sb.backups().exists(),
                "written before the refusal: {}",
                run.all()
            );
            assert_eq!(sb.query("SELECT name FROM d1_migrations")[0].len(), 3);
        }
    }
    sb.xtask(&["migrate", "local", "--yes"]).assert_ok();
}

/// A sandbox whose migration `0005_notes.sql` was applied by `migrate`
/// (holding `APPLIED_NOTES`), then edited before any backup after it.
fn notes_edited_after_migrate() -> (Sandbox, std::path::PathBuf) {
    let sb = Sandbox::new();
    sb.apply_migrations();
    let path = sb.path().join("migrations/0005_notes.sql");
    std::fs::write(&path, APPLIED_NOTES).unwrap();
    sb.xtask(&["migrate", "local", "--yes"]).assert_ok();
    std::fs::write(
        &path,
        format!("{APPLIED_NOTES}CREATE INDEX idx_companies_name ON companies (name);\n"),
    )
    .unwrap();
    (sb, path)
}

const APPLIED_NOTES: &str = "CREATE TABLE notes (id INTEGER PRIMARY KEY, body TEXT);\n";

/// Takes a backup of local, which records `migration` as applied holding
/// `text`, and warns that it was edited since when `warned`: the new
/// backup's name.
#[track_caller]
fn backup_recording(sb: &Sandbox, (migration, text): (&str, &str), warned: bool) -> String {
    let before = sql_backups(sb);
    let run = sb.xtask(&["backup", "local", "-q"]);
    run.assert_ok();
    assert_eq!(
        run.stderr.contains(migration) && run.stderr.contains("as they were applied"),
        warned,
        "{}",
        run.all()
    );
    let newest = { sql_backups(sb).into_iter() }
        .find(|f| !before.contains(f))
        .unwrap();
    assert_eq!(
        manifest_for(sb, &newest)["migration_sha256"][migration],
        sha256_hex(text.as_bytes()).as_str()
    );
    newest
}

/// MG 1: a migration edited after `migrate` applied it, before the next
/// backup, was recorded by that backup as the version applied (the file's
/// sha256 at backup time): `migrate --check` then passed the edit, and
/// failed once the file was put back as applied, and restores of that
/// backup were refused. The backup records what migrate applied, and
/// warns; the check, verify and restore agree.
#[test]
fn a_migration_edited_after_migrate_applied_it_is_recorded_as_applied_by_the_next_backup() {
    let (sb, path) = notes_edited_after_migrate();
    let newest = backup_recording(&sb, ("0005_notes.sql", APPLIED_NOTES), true);
    let check = sb.xtask(&["migrate", "local", "--check"]);
    assert_eq!(check.code, Some(1), "{}", check.all());
    assert!(check.stdout.contains("0005_notes.sql"), "{}", check.all());

    // Put back as applied: every command agrees it is unchanged.
    std::fs::write(&path, APPLIED_NOTES).unwrap();
    sb.xtask(&["migrate", "local", "--check"]).assert_ok();
    let file = sb.backups().join(&newest);
    sb.xtask(&["verify", file.to_str().unwrap()]).assert_ok();
    sb.xtask(&[
        "restore",
        file.to_str().unwrap(),
        "--to",
        "local",
        "--replace",
        "--yes",
    ])
    .assert_ok();
}

/// MG 2: the edited-migration refusal named only `git log -p`, which
/// prints nothing for a file never committed; and the check's count of
/// migrations without a record read "1 … were".
#[test]
fn the_edited_migration_advice_works_for_a_file_git_never_had() {
    let sb = Sandbox::new();
    sb.apply_migrations();
    sb.xtask(&["backup", "local", "-q"]).assert_ok();
    let path = sb.path().join("migrations/0005_notes.sql");
    std::fs::write(&path, APPLIED_NOTES).unwrap();
    sb.apply_migrations();
    let check = sb.xtask(&["migrate", "local", "--check"]);
    check.assert_ok();
    assert!(
        check
            .stdout
            .contains("1 without a recorded sha256 was checked by name only"),
        "{}",
        check.all()
    );
    sb.xtask(&["backup", "local", "-q"]).assert_ok();
    std::fs::write(&path, format!("{APPLIED_NOTES}-- edited\n")).unwrap();
    let check = sb.xtask(&["migrate", "local", "--check"]);
    assert_eq!(check.code, Some(1), "{}", check.all());
    assert!(
        check.stdout.contains("git status --") && check.stdout.contains("sha256sum"),
        "{}",
        check.all()
    );
}

/// MG2 1: `migrate` journals the staged sha256 of each pending migration
/// before wrangler runs. One that then failed (a UNIQUE index the real
/// rows break; the plan's in-memory check passes it) left its line as the
/// record: fixed and applied otherwise (by hand here), the next backup
/// warned and recorded the text that never ran, and `migrate --check`
/// failed for good. The run's end says what it applied; a backup takes
/// the journal's sha256 of a migration only when that run applied it.
#[test]
fn a_migration_that_failed_under_migrate_and_was_applied_otherwise_is_recorded_as_applied() {
    let unique = "CREATE UNIQUE INDEX u ON companies (name);\n";
    let sb = sandbox_with_a_pending_migration("0005_u.sql", unique);
    sb.execute_sql("INSERT INTO companies (name) VALUES ('Dup'), ('Dup');");
    let path = sb.path().join("migrations/0005_u.sql");
    let run = sb.xtask(&["migrate", "local", "--yes"]);
    assert_eq!(
        run.code,
        Some(1),
        "the index fails on the rows:\n{}",
        run.all()
    );
    let plain = "CREATE INDEX u ON companies (name);\n";
    std::fs::write(&path, plain).unwrap();
    sb.wrangler(&["d1", "migrations", "apply", "qbtime_db_local", "--local"])
        .assert_ok();
    backup_recording(&sb, ("0005_u.sql", plain), false);
    sb.xtask(&["migrate", "local", "--check"]).assert_ok();
}

/// MG2 2: `restore --clean` applies the migrations as `migrate` does, and
/// journals them as it does: one applied by the restore and edited before
/// the next backup is recorded as the restore applied it, and warned of.
/// It was recorded as edited (the restore journaled nothing), though the
/// README said it journaled.
#[test]
fn a_migration_a_clean_restore_applied_is_recorded_as_applied_by_the_next_backup() {
    let sb = Sandbox::new();
    sb.apply_migrations();
    sb.xtask(&[
        "backup",
        "local",
        "--data-only",
        "--table",
        "companies",
        "-q",
    ])
    .assert_ok();
    let backup = only_backup(&sb);
    let path = sb.path().join("migrations/0005_notes.sql");
    std::fs::write(&path, APPLIED_NOTES).unwrap();
    sb.empty_local_d1();
    restore_clean_partial(&sb, &sb.backups().join(&backup)).assert_ok();
    std::fs::write(&path, format!("{APPLIED_NOTES}-- edited\n")).unwrap();
    backup_recording(&sb, ("0005_notes.sql", APPLIED_NOTES), true);
}

/// The local D1's bytes and backups/'s files, to compare before and after
/// a refusal: nothing of either may change.
fn database_and_backups(sb: &Sandbox) -> (String, std::collections::BTreeMap<String, String>) {
    let db = std::fs::read(sb.local_d1_file()).unwrap();
    (sha256_hex(&db), sb.backups_held())
}

/// A dry run, a run with the pre-migration backup, and one without: a
/// refusal before anything is the same in each.
const EVERY_MIGRATE: [&[&str]; 3] = [
    &["migrate", "local", "--dry-run"],
    &["migrate", "local", "--yes"],
    &["migrate", "local", "--yes", "--no-backup", "--reason", "s"],
];

/// rvBR 1: a pending migration that wrote d1_migrations (`INSERT INTO
/// d1_migrations(name) VALUES('0006_y.sql')`) applied with exit 0, and
/// wrangler then never applied the real 0006_y.sql: "6 of 6 up to date".
/// One that writes, alters, drops or puts a trigger on the migrations
/// table, or creates a trigger whose body writes it (rvBT 3), is refused
/// (exit 3), the dry run too, before any backup or statement runs, naming
/// the file and the statement's position, never its values.
#[test]
fn a_pending_migration_that_writes_the_migrations_table_is_refused_before_anything() {
    let sb = Sandbox::new();
    sb.apply_migrations();
    let migration = sb.path().join("migrations/0005_x.sql");
    for (does, sql) in [
        (
            "writes",
            "INSERT INTO d1_migrations(name) VALUES('0006_y.sql');",
        ),
        (
            "writes",
            "UPDATE D1_Migrations SET applied_at = '2001-01-01';",
        ),
        (
            "writes",
            "DELETE FROM \"d1_migrations\" WHERE name > '0006_y';",
        ),
        ("alters", "ALTER TABLE d1_migrations ADD COLUMN note TEXT;"),
        ("drops", "DROP TABLE d1_migrations;"),
        (
            "puts a trigger on",
            "CREATE TRIGGER back AFTER INSERT ON d1_migrations BEGIN \
             UPDATE d1_migrations SET applied_at = '2001-01-01'; END;",
        ),
        // rvBT 3: a trigger whose body writes it passed, and once applied
        // one app insert into accounts made a migration pending again.
        (
            "creates a trigger that writes",
            "CREATE TRIGGER t_acc AFTER INSERT ON accounts BEGIN \
             DELETE FROM d1_migrations WHERE name = '0006_y.sql'; END;",
        ),
        (
            "creates a trigger that writes",
            "CREATE TRIGGER t_up AFTER UPDATE OF name ON companies BEGIN \
             INSERT INTO \"D1_MIGRATIONS\"(name) VALUES ('0006_y.sql'); END;",
        ),
        (
            "creates a trigger that writes",
            "CREATE TRIGGER t_del BEFORE DELETE ON customers WHEN 0 BEGIN \
             UPDATE [D1_Migrations] SET applied_at = '2001-01-01'; END;",
        ),
    ] {
        std::fs::write(&migration, format!("CREATE TABLE t5(a INTEGER);\n{sql}\n")).unwrap();
        let before = database_and_backups(&sb);
        for args in EVERY_MIGRATE {
            let run = sb.xtask(args);
            assert_eq!(run.code, Some(3), "{args:?} {sql}:\n{}", run.all());
            assert!(
                run.stderr.contains("0005_x.sql: its statement 2")
                    && run.stderr.contains(&format!("{does} d1_migrations"))
                    && run.stderr.contains("no backup was taken"),
                "{args:?} {sql}:\n{}",
                run.all()
            );
            for value in ["0006_y", "2001-01-01"] {
                assert!(!run.all().contains(value), "{value} quoted:\n{}", run.all());
            }
            assert_eq!(database_and_backups(&sb), before, "{args:?} {sql}");
        }
    }
    std::fs::remove_file(&migration).unwrap();
    sb.xtask(&["migrate", "local", "--yes"]).assert_ok();
}

/// rvBU: a trigger whose body first names a table or column a later
/// statement or migration makes (`INSERT INTO later5 …; DELETE FROM
/// d1_migrations`, then `CREATE TABLE later5`) passed the plan, and once
/// applied one insert into accounts emptied d1_migrations. Each trigger a
/// pending migration makes is judged once the migrations after it have run:
/// one that writes d1_migrations is refused (exit 3), the dry run too,
/// before any backup or statement runs, naming the file, its statement and
/// the trigger; one whose body names what no migration makes cannot be
/// judged and is refused with the fix.
#[test]
fn a_pending_trigger_whose_body_names_what_comes_later_is_refused_before_anything() {
    let sb = Sandbox::new();
    sb.apply_migrations();
    let later5 = "CREATE TRIGGER t5 AFTER INSERT ON accounts BEGIN \
                  INSERT INTO later5(x) VALUES (1); DELETE FROM d1_migrations; END;";
    let writes = "0005_attack.sql: its statement 1 creates trigger t5, whose body writes \
                  d1_migrations";
    for (files, said) in [
        (
            vec![format!("{later5}\nCREATE TABLE later5 (x INTEGER);")],
            writes,
        ),
        (
            vec![
                later5.to_owned(),
                "CREATE TABLE later5 (x INTEGER);".to_owned(),
            ],
            writes,
        ),
        (
            vec![
                "CREATE TRIGGER t5 AFTER INSERT ON accounts BEGIN \
                 UPDATE accounts SET later_col = 1 WHERE id = NEW.id; \
                 UPDATE d1_migrations SET applied_at = '2001-01-01'; END;\n\
                 ALTER TABLE accounts ADD COLUMN later_col INTEGER;"
                    .to_owned(),
            ],
            writes,
        ),
        (
            vec![
                "CREATE TRIGGER t5 AFTER DELETE ON customers BEGIN \
                 INSERT INTO later5(x) VALUES (1); \
                 INSERT OR REPLACE INTO d1_migrations(name) VALUES ('0006_y.sql'); END;"
                    .to_owned(),
                "CREATE TABLE later5 (x INTEGER);".to_owned(),
            ],
            writes,
        ),
        (
            vec![
                "CREATE TRIGGER t5 AFTER INSERT ON accounts BEGIN \
                 INSERT INTO never5(x) VALUES (1); DELETE FROM d1_migrations; END;"
                    .to_owned(),
            ],
            "0005_attack.sql: its statement 1 creates trigger t5 on accounts, whose body does \
             not prepare here once every pending migration has run (no such table: \
             main.never5), so whether it writes d1_migrations cannot be known",
        ),
    ] {
        let paths: Vec<_> = { files.iter().enumerate() }
            .map(|(n, sql)| {
                let name = ["0005_attack.sql", "0006_later.sql"][n];
                let path = sb.path().join("migrations").join(name);
                std::fs::write(&path, sql).unwrap();
                path
            })
            .collect();
        let before = database_and_backups(&sb);
        for args in EVERY_MIGRATE {
            let run = sb.xtask(args);
            assert_eq!(run.code, Some(3), "{args:?} {files:?}:\n{}", run.all());
            assert!(
                run.stderr.contains(said) && run.stderr.contains("no backup was taken"),
                "{args:?} {files:?}:\n{}",
                run.all()
            );
            for value in ["0006_y", "2001-01-01"] {
                assert!(!run.all().contains(value), "{value} quoted:\n{}", run.all());
            }
            assert_eq!(database_and_backups(&sb), before, "{args:?} {files:?}");
        }
        paths.iter().for_each(|p| std::fs::remove_file(p).unwrap());
    }
    // An honest trigger that writes a table a later statement makes passes.
    std::fs::write(
        sb.path().join("migrations/0005_honest.sql"),
        "CREATE TRIGGER t5 AFTER INSERT ON accounts BEGIN \
         INSERT INTO later5(x) VALUES (NEW.id); END;\nCREATE TABLE later5 (x INTEGER);",
    )
    .unwrap();
    sb.xtask(&["migrate", "local", "--yes", "--no-backup", "--reason", "s"])
        .assert_ok();
    assert_eq!(
        sb.query("SELECT count(*) AS n FROM d1_migrations")[0][0]["n"],
        5
    );
}

/// rvBX: a trigger the database already had whose body names a table since
/// dropped (restore warns it "cannot run") failed every firing statement
/// of its table, so a harmless trigger a pending migration put on that
/// table was refused as unjudged (exit 3, blaming the new trigger), though
/// wrangler applies it. Each pending trigger is judged on its own: the
/// dry run passes and `--yes` applies it.
#[test]
fn a_broken_trigger_already_there_does_not_refuse_a_harmless_pending_one() {
    let sb = Sandbox::new();
    sb.apply_migrations();
    sb.execute_sql(
        "CREATE TABLE old_log(x); CREATE TABLE widgets(id INTEGER PRIMARY KEY, name TEXT);\n\
         CREATE TRIGGER widgets_ad AFTER DELETE ON widgets BEGIN \
         INSERT INTO old_log VALUES (OLD.id); END;\nDROP TABLE old_log;",
    );
    std::fs::write(
        sb.path().join("migrations/0005_widget_trig.sql"),
        "CREATE TABLE widget_audit(widget_id INTEGER, at INTEGER);\n\
         CREATE TRIGGER widgets_ai AFTER INSERT ON widgets BEGIN \
         INSERT INTO widget_audit VALUES (NEW.id, unixepoch()); END;",
    )
    .unwrap();
    let dry = sb.xtask(&["migrate", "local", "--dry-run"]);
    dry.assert_ok();
    assert!(!dry.all().contains("does not prepare"), "{}", dry.all());
    sb.xtask(&["migrate", "local", "--yes"]).assert_ok();
    assert_eq!(
        sb.query("SELECT count(*) AS n FROM sqlite_schema WHERE name = 'widgets_ai'")[0][0]["n"],
        1
    );
    assert_eq!(
        sb.query("SELECT count(*) AS n FROM d1_migrations")[0][0]["n"],
        5
    );
}

/// rvBR 2: the plan's trial run of the pending migrations in memory had a
/// bound on each statement (10 s) but none on the whole, so a migration of
/// N statements that never end held the plan (and the backup lock) for
/// 10 s × N before it printed a word. The trial has one budget in all:
/// past it the plan stops, refused (exit 3) naming the migration and the
/// statement it had reached, with nothing done.
#[test]
fn the_plans_trial_run_stops_at_its_budget_naming_the_migration() {
    let sb = one_pending();
    std::fs::remove_file(sb.path().join("migrations/0004_audit_log.sql")).unwrap();
    let endless = |table: &str| {
        format!(
            "CREATE TABLE {table} AS WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x + 1 \
             FROM c) SELECT x FROM c;\n"
        )
    };
    std::fs::write(
        sb.path().join("migrations/0004_slow.sql"),
        format!(
            "DELETE FROM companies WHERE 0;\n{}{}{}",
            endless("big1"),
            endless("big2"),
            endless("big3")
        ),
    )
    .unwrap();
    let before = database_and_backups(&sb);
    let run = sb.xtask(&["migrate", "local", "--dry-run"]);
    assert_eq!(run.code, Some(3), "{}", run.all());
    assert!(
        run.stderr.contains("0004_slow.sql: its statement 2")
            // Its budget is time and memory: which runs out first depends
            // on the machine's speed and load.
            && (run.stderr.contains("15 seconds") || run.stderr.contains("more memory than it may"))
            && run.stderr.contains("bound it"),
        "{}",
        run.all()
    );
    assert_eq!(database_and_backups(&sb), before);
}

/// rvBR 3: backups/migrations-applied.jsonl as a symbolic link was refused
/// only after the pre-migration backup was taken, and the refusal opened
/// with "free space there or fix its permissions". The journal is checked
/// first: refused (exit 2) saying it is a link and to remove it, before
/// the backup, the link's target untouched.
#[test]
fn a_migrations_journal_that_is_a_link_is_refused_before_the_backup() {
    let sb = one_pending();
    std::fs::create_dir_all(sb.backups()).unwrap();
    let elsewhere = sb.path().join("elsewhere.jsonl");
    std::fs::write(&elsewhere, "").unwrap();
    std::os::unix::fs::symlink(&elsewhere, sb.backups().join("migrations-applied.jsonl")).unwrap();
    let before = database_and_backups(&sb);
    for args in EVERY_MIGRATE {
        let run = sb.xtask(args);
        assert_eq!(run.code, Some(2), "{args:?}:\n{}", run.all());
        assert!(
            run.stderr.contains("is a symbolic link")
                && run.stderr.contains("Remove the link")
                && !run.stderr.contains("free space"),
            "{args:?}:\n{}",
            run.all()
        );
        assert_eq!(database_and_backups(&sb), before, "{args:?}");
        assert_eq!(std::fs::read_to_string(&elsewhere).unwrap(), "");
    }
}

/// A migration whose second statement never ends on empty tables (rvBT).
const ENDLESS: &str = "DELETE FROM companies WHERE 0;\n\
    CREATE TABLE big1 AS WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM c) \
    SELECT count(*) AS n FROM c;\n";

/// Whether `run` names the endless statement of [`ENDLESS`] in
/// `0005_slow.sql` with what it means in D1.
fn says_endless(run: &Run) -> bool {
    run.all().contains("0005_slow.sql: its statement 2")
        && run.all().contains("D1 stops a query after 30 seconds")
        && run.all().contains("bound it")
}

/// The budget the tests of an endless statement give the runs of the
/// migrations in memory (`QBTIME_TRIAL_SECONDS`), in seconds: each run
/// burns a core until it ends, and the default's 15 s are tested by
/// [`the_plans_trial_run_stops_at_its_budget_naming_the_migration`].
const SHORT_TRIAL: &str = "2";

/// `args` run in `sb` with the runs of the migrations in memory held to
/// [`SHORT_TRIAL`] seconds.
fn with_short_trial(sb: &Sandbox, args: &[&str]) -> Run {
    let mut cmd = sb.xtask_command(args);
    cmd.env("QBTIME_TRIAL_SECONDS", SHORT_TRIAL);
    Run::from_output(cmd.output().unwrap())
}

/// Whether `run` says its run of the migrations in memory stopped at the
/// [`SHORT_TRIAL`] seconds `QBTIME_TRIAL_SECONDS` gave it.
fn past_the_short_trial(run: &Run) -> bool {
    run.all()
        .contains(&format!("ran past its {SHORT_TRIAL} seconds"))
}

/// rvBT 1: a pending migration with a statement that never ends made
/// `backup`, `verify` and `migrate` hang without limit (the first two
/// holding the backup lock): verify ran every migration in memory, the
/// pending ones too, with no bound, to learn the triggers they make. Each
/// run of the migrations in memory has the plan's trial's budget: past
/// it, the backup is taken and kept and its triggers check says it cannot
/// be made, naming the migration and the statement; verify says the same;
/// migrate refuses in its plan, before any backup.
#[test]
fn a_pending_migration_with_an_endless_statement_holds_no_command_for_ever() {
    let sb = Sandbox::new();
    sb.apply_migrations();
    sb.xtask(&["backup", "local", "-q"]).assert_ok();
    let older = sb.backups().join(only_backup(&sb));
    std::fs::write(sb.path().join("migrations/0005_slow.sql"), ENDLESS).unwrap();
    let backup = with_short_trial(&sb, &["backup", "local"]);
    assert_eq!(backup.code, Some(0), "{}", backup.all());
    assert!(
        says_endless(&backup) && backup.all().contains("triggers"),
        "{}",
        backup.all()
    );
    assert!(past_the_short_trial(&backup), "{}", backup.all());
    let taken: Vec<String> = { sb.backup_files().into_iter() }
        .filter(|n| n.ends_with(".sql"))
        .collect();
    assert_eq!(taken.len(), 2, "the backup is kept: {taken:?}");
    let verify = with_short_trial(&sb, &["verify", older.to_str().unwrap(), "--no-record"]);
    assert_eq!(verify.code, Some(0), "{}", verify.all());
    assert!(says_endless(&verify), "{}", verify.all());
    assert!(past_the_short_trial(&verify), "{}", verify.all());
    let before = database_and_backups(&sb);
    let migrate = with_short_trial(&sb, &["migrate", "local", "--yes"]);
    assert_eq!(migrate.code, Some(3), "{}", migrate.all());
    assert!(
        says_endless(&migrate) && migrate.stderr.contains("no backup was taken"),
        "{}",
        migrate.all()
    );
    assert!(past_the_short_trial(&migrate), "{}", migrate.all());
    assert_eq!(database_and_backups(&sb), before);
}

/// `migration` written as `0005_slow.sql`: every migrate form, with the
/// short trial, refuses it as endless, exit 3, past that trial, before any
/// backup, the database and `backups/` unchanged.
fn refused_as_endless_by_every_migrate(sb: &Sandbox, migration: &str) {
    std::fs::write(sb.path().join("migrations/0005_slow.sql"), migration).unwrap();
    let before = database_and_backups(sb);
    for args in EVERY_MIGRATE {
        let run = with_short_trial(sb, args);
        assert_eq!(run.code, Some(3), "{args:?}:\n{}", run.all());
        assert!(
            says_endless(&run) && run.stderr.contains("no backup was taken"),
            "{args:?}:\n{}",
            run.all()
        );
        assert!(past_the_short_trial(&run), "{args:?}:\n{}", run.all());
        assert_eq!(database_and_backups(sb), before, "{args:?}");
    }
}

/// rvBT 2: one endless statement was told as one that "does not run here
/// (interrupted)" and the dry run passed (exit 0; a real migrate went on
/// to take its backup), where two were refused. A statement stopped by
/// the time limit is refused, one or many, with the same words.
#[test]
fn one_endless_statement_is_refused_as_many_are() {
    let sb = Sandbox::new();
    sb.apply_migrations();
    refused_as_endless_by_every_migrate(&sb, ENDLESS);
}

/// PV 2 (rvCN 2): the plan's trial ran only the statements that change the
/// schema, so an endless `INSERT … SELECT` of a recursive query passed the
/// dry run (exit 0), and `migrate --yes` took its backup, applied the
/// migrations before it and hung on it. Every statement that writes rows
/// or reads them runs in the trial too (its rows then undone): an endless
/// one is refused as `CREATE TABLE … AS` is, exit 3, before any backup or
/// migration.
#[test]
fn an_endless_statement_that_writes_rows_is_refused_before_anything() {
    let recursive = "WITH RECURSIVE r(n) AS (SELECT 1 UNION ALL SELECT n + 1 FROM r)";
    let insert = format!(
        "CREATE TABLE nums(n INTEGER);\n\
         INSERT INTO nums {recursive} SELECT n FROM r WHERE n < 0;\n"
    );
    let sb = Sandbox::new();
    sb.apply_migrations();
    let before = database_and_backups(&sb);
    refused_as_endless_by_every_migrate(&sb, &insert);
    // Each runs its recursive query before any row of companies (none).
    let none = "SELECT n FROM r WHERE n < 0";
    for second in [
        format!("UPDATE companies SET name = name WHERE id IN ({recursive} {none});\n"),
        format!("{recursive} DELETE FROM companies WHERE id IN ({none});\n"),
        format!("SELECT count(*) FROM ({recursive} SELECT n FROM r);\n"),
    ] {
        let sql = format!("DELETE FROM companies WHERE 0;\n{second}");
        std::fs::write(sb.path().join("migrations/0005_slow.sql"), &sql).unwrap();
        let run = with_short_trial(&sb, &["migrate", "local", "--dry-run"]);
        assert_eq!(run.code, Some(3), "{second}:\n{}", run.all());
        assert!(says_endless(&run), "{second}:\n{}", run.all());
        assert_eq!(database_and_backups(&sb), before, "{second}");
    }
}

/// `QBTIME_TRIAL_SECONDS` that is not a whole number of seconds from 1 to
/// 3600 (an hour) is bad input, exit 2, before anything runs: the refusal
/// names the variable and says the range and the default.
#[test]
fn a_malformed_trial_budget_is_bad_input_exit_2() {
    let sb = Sandbox::new();
    for value in ["2h", "abc", " ", "0", "3601", "99999999999999999999"] {
        let mut cmd = sb.xtask_command(&["migrate", "local", "--dry-run"]);
        cmd.env("QBTIME_TRIAL_SECONDS", value);
        let run = Run::from_output(cmd.output().unwrap());
        assert_eq!(run.code, Some(2), "{value:?}:\n{}", run.all());
        assert!(
            run.stderr.contains("QBTIME_TRIAL_SECONDS")
                && run.stderr.contains("from 1 to 3600")
                && run.stderr.contains("default of 15 seconds"),
            "{value:?}:\n{}",
            run.all()
        );
        assert!(sb.local_d1_files().is_empty(), "{value:?}: D1 written");
    }
}

/// `QBTIME_TRIAL_SECONDS` set but empty counts as unset, as every other
/// variable of the tool does: a migrate runs with the default budget.
/// Only a command that runs the migrations in memory reads it, so `list`
/// and `status` run whatever it holds; a value that is not UTF-8 is bad
/// input (exit 2), named, not passed over (rvCN).
#[test]
fn an_empty_trial_budget_is_unset_and_only_a_trial_reads_it() {
    use std::os::unix::ffi::OsStringExt;
    let sb = Sandbox::new();
    let run_with = |args: &[&str], value: std::ffi::OsString| {
        let mut cmd = sb.xtask_command(args);
        cmd.env("QBTIME_TRIAL_SECONDS", value);
        Run::from_output(cmd.output().unwrap())
    };
    let not_utf8 = std::ffi::OsString::from_vec(b"6\xff0".to_vec());
    let run = run_with(&["migrate", "local", "--dry-run"], not_utf8);
    assert_eq!(run.code, Some(2), "{}", run.all());
    assert!(
        run.stderr.contains("QBTIME_TRIAL_SECONDS") && run.stderr.contains("not UTF-8"),
        "{}",
        run.all()
    );
    assert!(sb.local_d1_files().is_empty(), "D1 written");
    let run = run_with(&["migrate", "local", "--dry-run"], "".into());
    assert!(run.ok, "{}", run.all());
    for args in [&["list"][..], &["status"]] {
        for value in ["", "abc"] {
            let run = run_with(args, value.into());
            assert_ne!(run.code, Some(2), "{args:?} {value:?}:\n{}", run.all());
            assert!(
                !run.stderr.contains("QBTIME_TRIAL_SECONDS"),
                "{}",
                run.all()
            );
        }
    }
}

/// A migration whose second statement creates a trigger that writes
/// d1_migrations, which fires on no row yet: applied outside the tool, its
/// backup is verified and restored as any other.
const WRITES_MIGRATIONS_TABLE: &str = "CREATE TABLE t5(a INTEGER);\n\
    CREATE TRIGGER t5_log AFTER INSERT ON t5 BEGIN DELETE FROM d1_migrations WHERE 0; END;\n";

/// NL 2: only migrate and deploy held a pending migration to the
/// d1_migrations guard; `restore --clean` (which applies every migration
/// to the emptied target) and a fresh clone's first backup (which gives
/// an empty local D1 its schema from migrations/) applied one that writes
/// the table. Each refuses it (exit 3), a dry run too, before anything
/// runs: no local D1 made, no backup file written. OI 1: in its own words
/// (nothing backed up or restored), not migrate's "refusing to migrate …
/// `cargo xtask migrate local --dry-run`", which the user did not run.
#[test]
fn every_command_that_applies_migrations_refuses_one_that_writes_the_migrations_table() {
    let sb = Sandbox::new();
    std::fs::write(
        sb.path().join("migrations/0005_x.sql"),
        WRITES_MIGRATIONS_TABLE,
    )
    .unwrap();
    // Applied by wrangler itself, as before this tool refused it.
    sb.apply_migrations();
    sb.xtask(&["backup", "local", "--data-only", "-q"])
        .assert_ok();
    let backup = sb.backups().join(only_backup(&sb));
    sb.empty_local_d1();
    let held = sb.backups_held();
    let file = backup.to_str().unwrap();
    let backup_words = ["refusing to back up", "is new", "nothing was backed up"];
    let restore_words = ["refusing to restore", "--clean", "nothing was restored"];
    for (args, said) in [
        (
            &["restore", file, "--to", "local", "--clean", "--dry-run"][..],
            &restore_words,
        ),
        (
            &["restore", file, "--to", "local", "--clean", "--yes"],
            &restore_words,
        ),
        (&["backup", "local", "--dry-run"], &backup_words),
        (&["backup", "local"], &backup_words),
    ] {
        let run = sb.xtask(args);
        assert_eq!(run.code, Some(3), "{args:?}:\n{}", run.all());
        assert!(
            run.stderr.contains("0005_x.sql: its statement 2")
                && run.stderr.contains("writes d1_migrations")
                && run.stderr.contains("Nothing was done")
                && in_own_words(&run, said),
            "{args:?}:\n{}",
            run.all()
        );
        assert!(sb.local_d1_files().is_empty(), "{args:?}: D1 written");
        assert_eq!(sb.backups_held(), held, "{args:?}");
    }
}

/// Whether `run`'s refusal says the command's own words (`said`), never
/// migrate's, whose command the user did not run.
fn in_own_words(run: &Run, said: &[&str]) -> bool {
    said.iter().all(|s| run.stderr.contains(s))
        && !run.stderr.contains("refusing to migrate")
        && !run.stderr.contains("cargo xtask migrate")
        && !run.stderr.contains("no backup was taken")
}

/// A migration that drops an index made by hand: it applied to the
/// database it was written for, and fails on an empty one (`no such
/// index`), as every migration is applied to a fresh clone's local D1 or
/// a `--clean` restore's target.
const DROPS_A_HAND_MADE_INDEX: &str = "DROP INDEX hand_idx;\n";

/// Migrates `sb`'s local D1 past 0005_drop_hand.sql, which drops an index
/// made by hand ([`DROPS_A_HAND_MADE_INDEX`]), without a backup.
fn migrated_past_a_hand_made_index(sb: &Sandbox) {
    sb.apply_migrations();
    sb.execute_sql("CREATE INDEX hand_idx ON companies(timezone);");
    std::fs::write(
        sb.path().join("migrations/0005_drop_hand.sql"),
        DROPS_A_HAND_MADE_INDEX,
    )
    .unwrap();
    let no_backup = ["--no-backup", "--reason", "the index made by hand"];
    sb.xtask(&[&["migrate", "local", "--yes", "-q"][..], &no_backup].concat())
        .assert_ok();
}

/// Whether `run`'s refusal of 0005_drop_hand.sql on an empty database
/// names the file, its statement and the fix, and says `command`'s own
/// words (`said`), not migrate's.
fn refused_from_nothing(run: &Run, said: &[&str]) -> bool {
    let stderr = &run.stderr;
    stderr.contains("0005_drop_hand.sql: its statement 1")
        && stderr.contains("cannot make it from nothing")
        && stderr.contains("IF EXISTS")
        && said.iter().all(|s| stderr.contains(s))
        && !stderr.contains("refusing to migrate")
        && !stderr.contains("cargo xtask migrate")
}

/// rvCA: a migration that assumes what a change made by hand left (it
/// drops an index no migration makes) applied to the local D1 (exit 0);
/// a fresh clone's first backup, which makes its empty local D1 from
/// migrations/ first, was refused (rightly: wrangler fails there too)
/// in migrate's words, "It is not applied yet ... `cargo xtask migrate
/// local --dry-run`", to a user who ran a backup. A fresh clone's backup
/// and `restore --clean` each refuse it (exit 3), a dry run too, in
/// their own words: the database is new, the migrations cannot make it
/// from nothing (file and statement), the fix, nothing backed up or
/// restored; no backup file, no local D1 made.
#[test]
fn a_migration_that_cannot_apply_to_an_empty_database_is_refused_in_each_commands_words() {
    let sb = Sandbox::new();
    migrated_past_a_hand_made_index(&sb);
    // The runbook's hand export: a backup's verify applies 0005 to an
    // empty database too, and cannot run.
    let export = sb.export_data_only("data.sql");
    sb.empty_local_d1();
    let held = sb.backups_held();
    let file = export.to_str().unwrap();
    let backup_words = ["refusing to back up", "is new", "nothing was backed up"];
    let restore_words = ["refusing to restore", "--clean", "nothing was restored"];
    let restore = ["restore", file, "--to", "local", "--clean", "--no-manifest"];
    let restore_dry_run = [&restore[..], &["--dry-run"]].concat();
    let restore_yes = [&restore[..], &["--yes"]].concat();
    for (args, said) in [
        (&["backup", "local", "--dry-run"][..], &backup_words),
        (&["backup", "local"], &backup_words),
        (&restore_dry_run, &restore_words),
        (&restore_yes, &restore_words),
    ] {
        let run = sb.xtask(args);
        assert_eq!(run.code, Some(3), "{args:?}:\n{}", run.all());
        assert!(refused_from_nothing(&run, said), "{args:?}:\n{}", run.all());
        assert!(sb.local_d1_files().is_empty(), "{args:?}: D1 written");
        assert_eq!(sb.backups_held(), held, "{args:?}");
    }
}

/// A migration whose second statement makes rows without end, each of
/// them large: it passes the trial's memory long before its time.
const MEMORY_HUNGRY: &str = "DELETE FROM companies WHERE 0;\n\
    CREATE TABLE big1 AS WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM c) \
    SELECT x, printf('%.*c', 100000, 'x') AS pad FROM c;\n";

/// OI 1: a fresh clone's first backup, which applies every migration to
/// its new local D1, refused the other migrations migrate's guards refuse
/// in migrate's words ("refusing to migrate … `cargo xtask migrate local
/// --dry-run` … no backup was taken"): one whose trial did not finish,
/// one whose trigger cannot be judged. Each is refused (exit 3), a dry run
/// too, in backup's words:
/// the local D1 is new, the file and statement, the fix, nothing backed
/// up; no local D1 made, no backup file written. The trigger that cannot
/// be judged, which D1 applies, is a warning there since OU 1
/// ([`a_migration_d1_applies_with_an_unjudged_trigger_does_not_block_what_applies_every_migration`]).
#[test]
fn a_fresh_clones_first_backup_refuses_each_migration_migrate_refuses_in_its_own_words() {
    let sb = Sandbox::new();
    let backup_words = ["refusing to back up", "is new", "nothing was backed up"];
    let held = sb.backups_held();
    let said = "took more memory than it may (at most 256 MB) at 0005_x.sql: its statement 2";
    std::fs::write(sb.path().join("migrations/0005_x.sql"), MEMORY_HUNGRY).unwrap();
    for args in [&["backup", "local", "--dry-run"][..], &["backup", "local"]] {
        let run = sb.xtask(args);
        assert_eq!(run.code, Some(3), "{args:?}:\n{}", run.all());
        assert!(
            run.stderr.contains(said) && in_own_words(&run, &backup_words),
            "{args:?}:\n{}",
            run.all()
        );
        assert!(sb.local_d1_files().is_empty(), "{args:?}: D1 written");
        assert_eq!(sb.backups_held(), held, "{args:?}");
    }
}

/// NL 3: a statement the plan's trial stopped at its memory bound was
/// told "does not run here (interrupted)" and the plan went on (exit 0,
/// a real migrate to its backup), where an endless one is refused. A
/// statement that cannot complete in the trial, for time or memory, is
/// refused alike, named by file and statement; backup and verify warn of
/// it as of an endless one, and keep the backup.
#[test]
fn a_statement_past_the_trials_memory_is_refused_as_an_endless_one_is() {
    let sb = Sandbox::new();
    sb.apply_migrations();
    sb.xtask(&["backup", "local", "-q"]).assert_ok();
    let older = sb.backups().join(only_backup(&sb));
    std::fs::write(sb.path().join("migrations/0005_big.sql"), MEMORY_HUNGRY).unwrap();
    let named = |run: &Run| {
        run.all().contains("0005_big.sql: its statement 2")
            && run.all().contains("256 MB")
            && run.all().contains("bound it")
    };
    let before = database_and_backups(&sb);
    for args in EVERY_MIGRATE {
        let run = sb.xtask(args);
        assert_eq!(run.code, Some(3), "{args:?}:\n{}", run.all());
        assert!(
            named(&run) && run.stderr.contains("no backup was taken"),
            "{args:?}:\n{}",
            run.all()
        );
        assert_eq!(database_and_backups(&sb), before, "{args:?}");
    }
    let verify = sb.xtask(&["verify", older.to_str().unwrap(), "--no-record"]);
    assert_eq!(verify.code, Some(0), "{}", verify.all());
    assert!(named(&verify), "{}", verify.all());
    let backup = sb.xtask(&["backup", "local"]);
    assert_eq!(backup.code, Some(0), "{}", backup.all());
    assert!(
        named(&backup) && backup.all().contains("triggers"),
        "{}",
        backup.all()
    );
}

/// Writes `sql` as the pending migration 0005_idx.sql and runs each of
/// [`EVERY_MIGRATE`]: each is refused (exit 3) naming the file and the
/// statement numbered `at`, with no backup taken, never quoting
/// `sk_live_Secret`, the local D1 and backups/ unchanged.
fn refused_before_anything(sb: &Sandbox, sql: &str, at: usize) {
    std::fs::write(
        sb.path().join("migrations/0005_idx.sql"),
        format!("{sql}\n"),
    )
    .unwrap();
    let before = database_and_backups(sb);
    for args in EVERY_MIGRATE {
        let run = sb.xtask(args);
        assert_eq!(run.code, Some(3), "{args:?} {sql}:\n{}", run.all());
        let statement = format!("0005_idx.sql: its statement {at}");
        assert!(
            run.stderr.contains(&statement) && run.stderr.contains("no backup was taken"),
            "{args:?} {sql}:\n{}",
            run.all()
        );
        assert!(!run.all().contains("sk_live_Secret"), "{}", run.all());
        assert_eq!(database_and_backups(sb), before, "{args:?} {sql}");
    }
}

/// rvBW 1: the plan's trial ran only migrations with a statement that may
/// run a foreign key action, so a migration of schema statements alone
/// that names a column or table not there (a typo) passed the dry run
/// (exit 0), and `migrate --yes` took a full backup, then failed in
/// wrangler, every retry another backup. Every pending migration is tried:
/// refused (exit 3), the dry run too, naming the file and the statement,
/// with no backup taken and the database unchanged.
#[test]
fn a_schema_only_migration_naming_what_is_not_there_is_refused_before_the_backup() {
    let sb = Sandbox::new();
    sb.apply_migrations();
    for sql in [
        "CREATE INDEX accounts_email_x ON accounts(emial);",
        "ALTER TABLE acounts ADD COLUMN phone TEXT;",
    ] {
        refused_before_anything(&sb, sql, 1);
    }
    let fixed = "CREATE INDEX accounts_email_x ON accounts(email);\n";
    std::fs::write(sb.path().join("migrations/0005_idx.sql"), fixed).unwrap();
    sb.xtask(&["migrate", "local", "--yes"]).assert_ok();
}

/// OA 1: a statement that makes what the target already has (a table, an
/// index, a column) or drops an index, trigger or view it lacks, every
/// statement before it having run on the target's own full schema, was
/// only a warning: `migrate --yes` took a full backup, then failed in
/// wrangler, every retry another backup. Refused like a name not there
/// (exit 3), the dry run too, naming the file and the statement, never its
/// values, with no backup taken; `d1_migrations` is judged as wrangler
/// makes it before it applies one. The `IF NOT EXISTS` and `IF EXISTS`
/// forms, and a migration that drops what it then makes again, apply.
#[test]
fn a_migration_making_what_is_there_or_dropping_what_is_not_is_refused_before_the_backup() {
    let sb = Sandbox::new();
    sb.apply_migrations();
    for (sql, at) in [
        (
            "CREATE TABLE companies (id INTEGER DEFAULT 'sk_live_Secret');",
            1,
        ),
        (
            "CREATE INDEX customers_by_company_name ON customers (name);",
            1,
        ),
        (
            "ALTER TABLE accounts ADD COLUMN created_at TEXT DEFAULT 'sk_live_Secret';",
            1,
        ),
        ("DROP INDEX accounts_by_nothing;", 1),
        ("DROP TRIGGER accounts_touch_nothing;", 1),
        ("DROP VIEW accounts_view_nothing;", 1),
        ("CREATE TABLE d1_migrations (id INTEGER PRIMARY KEY);", 1),
        (
            "CREATE TABLE notes (id INTEGER PRIMARY KEY);
CREATE TABLE notes (id INTEGER);",
            2,
        ),
        (
            "ALTER TABLE companies ADD COLUMN note TEXT;
ALTER TABLE companies ADD COLUMN note TEXT;",
            2,
        ),
    ] {
        refused_before_anything(&sb, sql, at);
    }
    let fine = "CREATE TABLE IF NOT EXISTS companies (id INTEGER PRIMARY KEY);
\
                CREATE INDEX IF NOT EXISTS customers_by_company_name ON customers (name);
\
                DROP INDEX IF EXISTS accounts_by_nothing;
\
                DROP TRIGGER IF EXISTS accounts_touch_nothing;
\
                DROP VIEW IF EXISTS accounts_view_nothing;
\
                DROP INDEX customers_by_company_name;
\
                CREATE INDEX customers_by_company_name ON customers (company_id, name);
\
                CREATE VIEW company_names AS SELECT name FROM companies;
\
                DROP VIEW company_names;
\
                CREATE VIEW company_names AS SELECT id, name FROM companies;
";
    std::fs::write(sb.path().join("migrations/0005_idx.sql"), fine).unwrap();
    let run = sb.xtask(&["migrate", "local", "--dry-run"]);
    assert_eq!(run.code, Some(0), "{}", run.all());
    assert!(!run.all().contains("taken all the same"), "{}", run.all());
    sb.xtask(&["migrate", "local", "--yes"]).assert_ok();
}

/// rvBW 2: a statement SQLite cannot parse (`CRATE INDEX`, a stray
/// token) was taken as a guess about D1: the dry run passed and each
/// `migrate --yes` took another full backup before wrangler failed. A
/// parse error does not depend on the schema nor on the statements before
/// it, and D1's SQLite parses no more than this one: refused (exit 3), the
/// dry run too, naming the file and the statement, never its values, with
/// no backup taken and the database unchanged, even after a statement
/// that does not run here.
#[test]
fn a_migration_that_does_not_parse_is_refused_before_the_backup_never_quoting_it() {
    let sb = Sandbox::new();
    sb.apply_migrations();
    for (sql, at) in [
        ("CRATE INDEX accounts_email_x ON accounts(email);", 1),
        (
            "INSERT INTO companies (name) VALUES ('sk_live_Secret' 'Acme');",
            1,
        ),
        (
            "CREATE VIRTUAL TABLE v USING no_such_module(x);\n\
             UPDATE companies SET name = 'sk_live_Secret' WHERE id = = 1;",
            2,
        ),
    ] {
        refused_before_anything(&sb, sql, at);
    }
    // D1 parses a DELETE with LIMIT, which SQLite here does not: a guess.
    let limited = "DELETE FROM companies WHERE id = 0 LIMIT 1;\n";
    std::fs::write(sb.path().join("migrations/0005_idx.sql"), limited).unwrap();
    sb.xtask(&["migrate", "local", "--yes"]).assert_ok();
}

/// rvBW 2: a migration that fails whole (a UNIQUE index the rows break,
/// which no trial on empty tables can see) left the database as it was,
/// and the error said "nothing was applied by this run" yet advised
/// restoring the pre-migration backup with `--replace`. It names the
/// backup as kept, and advises no restore.
#[test]
fn a_migrate_that_applied_nothing_does_not_advise_restoring_its_backup() {
    let sb = Sandbox::new();
    sb.apply_migrations();
    sb.execute_sql("INSERT INTO companies (name) VALUES ('Acme'), ('Acme');");
    let unique = "CREATE UNIQUE INDEX companies_name_u ON companies(name);\n";
    std::fs::write(sb.path().join("migrations/0005_unique.sql"), unique).unwrap();
    let run = sb.xtask(&["migrate", "local", "--yes"]);
    assert_eq!(run.code, Some(1), "{}", run.all());
    let error = &run.stderr[run.stderr.find("error:").unwrap_or(0)..];
    assert!(
        error.contains("nothing was applied by this run") && error.contains(&only_backup(&sb)),
        "{}",
        run.all()
    );
    no_restore_advised(&run);
    // OA 2: `--json` gave the way back all the same.
    let run = sb.xtask(&["migrate", "local", "--yes", "--json"]);
    assert_eq!(run.code, Some(1), "{}", run.all());
    no_way_back(&run);
}

/// Asserts that the error of a `migrate` that applied nothing advises no
/// restore.
fn no_restore_advised(run: &Run) {
    let error = &run.stderr[run.stderr.find("error:").unwrap_or(0)..];
    assert!(
        !error.contains("--replace") && !error.contains("way back"),
        "a restore is advised of a run that applied nothing:\n{}",
        run.all()
    );
}

/// Asserts that a `migrate --json` that applied nothing names no restore:
/// not in its error, and not as `result.way_back`, its backup named all
/// the same.
fn no_way_back(run: &Run) {
    no_restore_advised(run);
    let document: serde_json::Value = serde_json::from_str(&run.stdout).unwrap();
    let result = &document["result"];
    assert_eq!(result["applied"], serde_json::json!([]), "{document}");
    assert!(result["pre_migration_backup"].is_string(), "{document}");
    assert!(
        result["way_back"].is_null() && result["way_back_placeholders"].is_null(),
        "a restore is given of a run that applied nothing: {document}"
    );
}

/// OC 1: a pending statement that breaks a trigger or view the database
/// already has was not judged. `ALTER TABLE accounts DROP COLUMN
/// disabled_at` while a trigger's body names that column fails in D1
/// ("error in trigger … after drop column") after the pre-migration
/// backup, each retry another backup; `DROP TABLE gone` while a trigger's
/// body and a view name it applies, and every insert into the trigger's
/// table fails from then on, as does any later ALTER TABLE that renames.
/// Both are refused (exit 3), the dry run too, before any backup or
/// statement runs, naming the migration, the statement, the trigger and
/// the fix; dropped or re-created in the same migration, they apply, and
/// a RENAME COLUMN (which SQLite carries into the trigger) applies as is.
#[test]
fn a_pending_statement_that_breaks_a_trigger_already_there_is_refused_before_anything() {
    let sb = Sandbox::new();
    sb.apply_migrations();
    sb.execute_sql(
        "CREATE TABLE note_log(x);\n\
         CREATE TRIGGER accounts_note AFTER UPDATE ON accounts BEGIN \
         INSERT INTO note_log VALUES (NEW.disabled_at); END;\n\
         CREATE TABLE gone(x); CREATE TABLE other(id INTEGER PRIMARY KEY);\n\
         CREATE TRIGGER other_ai AFTER INSERT ON other BEGIN INSERT INTO gone VALUES (1); END;\n\
         CREATE VIEW gone_v AS SELECT x FROM gone;",
    );
    let migration = sb.path().join("migrations/0005_x.sql");
    for (sql, said) in [
        (
            "ALTER TABLE accounts DROP COLUMN disabled_at;",
            ["0005_x.sql: its statement 1", "trigger accounts_note"],
        ),
        (
            "CREATE TABLE kept(x);\nDROP TABLE gone;",
            ["0005_x.sql: its statement 2", "trigger other_ai"],
        ),
    ] {
        std::fs::write(&migration, sql).unwrap();
        let before = database_and_backups(&sb);
        for args in EVERY_MIGRATE {
            let run = sb.xtask(args);
            assert_eq!(run.code, Some(3), "{args:?} {sql}:\n{}", run.all());
            for words in said
                .iter()
                .chain(&["same migration", "no backup was taken"])
            {
                assert!(
                    run.stderr.contains(words),
                    "{args:?} {sql}: {words}:\n{}",
                    run.all()
                );
            }
            assert_eq!(database_and_backups(&sb), before, "{args:?} {sql}");
        }
    }
    for (n, sql) in [
        "ALTER TABLE accounts RENAME COLUMN disabled_at TO off_at;",
        "DROP TRIGGER accounts_note;\nALTER TABLE accounts DROP COLUMN off_at;",
        "DROP TABLE gone;\nDROP TRIGGER other_ai;\nDROP VIEW gone_v;",
    ]
    .into_iter()
    .enumerate()
    {
        std::fs::remove_file(&migration).ok();
        let name = format!("000{}_fixed.sql", n + 5);
        std::fs::write(sb.path().join("migrations").join(&name), sql).unwrap();
        sb.xtask(&["migrate", "local", "--yes", "--no-backup", "--reason", "s"])
            .assert_ok();
    }
    assert_eq!(
        sb.query("SELECT count(*) AS n FROM d1_migrations")[0][0]["n"],
        7
    );
}

/// The set-up of rvCA's findings: a view and a trigger on tables of
/// quoted names, and a child table with a trigger of its own.
const RVCA_SETUP: &str = "CREATE TABLE tags(id INTEGER PRIMARY KEY, name TEXT);\n\
     CREATE VIEW tag_names AS SELECT name FROM tags;\n\
     CREATE TABLE \"my tags\"(id INTEGER PRIMARY KEY, x TEXT);\n\
     CREATE TABLE \"tag log\"(x TEXT);\n\
     CREATE TRIGGER \"log tag\" AFTER INSERT ON \"tag log\" BEGIN \
     INSERT INTO \"my tags\"(x) VALUES (NEW.x); END;\n\
     CREATE TABLE legacy_parent(id INTEGER PRIMARY KEY);\n\
     CREATE TABLE legacy_child(id INTEGER PRIMARY KEY, \
     parent_id INTEGER REFERENCES legacy_parent(id), note TEXT);\n\
     CREATE TRIGGER legacy_child_stamp AFTER INSERT ON legacy_child BEGIN \
     UPDATE legacy_child SET note = 1 WHERE id = NEW.id; END;";

/// Writes `migrations` (name, text) into the sandbox's migrations/, then
/// asserts that every migrate refuses them (exit 3) before anything,
/// saying each of `said` and none of `not_said`; they are taken out after.
fn refused_as_broken(sb: &Sandbox, migrations: &[(&str, &str)], said: &[&str], not_said: &[&str]) {
    for (name, sql) in migrations {
        std::fs::write(sb.path().join("migrations").join(name), sql).unwrap();
    }
    let before = database_and_backups(sb);
    for args in EVERY_MIGRATE {
        let run = sb.xtask(args);
        assert_eq!(run.code, Some(3), "{args:?} {migrations:?}:\n{}", run.all());
        for words in said.iter().chain(&["no backup was taken"]) {
            assert!(
                run.stderr.contains(words),
                "{args:?}: {words}:\n{}",
                run.all()
            );
        }
        for words in not_said {
            assert!(
                !run.stderr.contains(words),
                "{args:?}: {words}:\n{}",
                run.all()
            );
        }
        assert_eq!(database_and_backups(sb), before, "{args:?} {migrations:?}");
    }
    for (name, _) in migrations {
        std::fs::remove_file(sb.path().join("migrations").join(name)).unwrap();
    }
}

/// rvCB 2: the refusal of a foreign key to a parent key that is not
/// UNIQUE advised `CREATE UNIQUE INDEX … ON order(group)`, which fails in
/// SQLite (`near "order": syntax error`): a name that is an SQL keyword is
/// quoted there and in the key it names.
#[test]
fn a_refusal_quotes_a_table_and_a_column_named_as_sql_keywords() {
    let sb = Sandbox::new();
    sb.apply_migrations();
    refused_as_broken(
        &sb,
        &[(
            "0006_x.sql",
            "CREATE TABLE \"order\"(id INTEGER PRIMARY KEY, \"group\" TEXT);\n\
             CREATE TABLE refs(id INTEGER PRIMARY KEY, g TEXT REFERENCES \"order\"(\"group\"));",
        )],
        &[
            "refs(g) REFERENCES \"order\"(\"group\") with a parent key",
            "`CREATE UNIQUE INDEX … ON \"order\"(\"group\")`",
        ],
        &[" order(group)"],
    );
}

/// rvCA 1, 3: a view one pending migration broke and the next repaired
/// was refused ("leaves view tag_names unable to run"), though wrangler
/// applies every pending migration in one run and the view works after
/// (Drizzle writes a migration per generate). A break is judged once
/// every pending migration has run, naming the statement that first broke
/// it; and the names it gives are quoted as SQL takes them.
#[test]
fn a_break_the_next_pending_migration_repairs_applies_and_names_are_quoted() {
    let sb = Sandbox::new();
    sb.apply_migrations();
    sb.execute_sql(RVCA_SETUP);
    let drop = ("0006_drop.sql", "DROP TABLE tags;");
    refused_as_broken(
        &sb,
        &[drop, ("0007_other.sql", "CREATE TABLE other(x);")],
        &[
            "0006_drop.sql: its statement 1",
            "view tag_names unable to run",
        ],
        &[],
    );
    std::fs::write(sb.path().join("migrations").join(drop.0), drop.1).unwrap();
    std::fs::write(
        sb.path().join("migrations/0007_make.sql"),
        "CREATE TABLE tags(id INTEGER PRIMARY KEY, name TEXT, color TEXT);",
    )
    .unwrap();
    sb.xtask(&["migrate", "local", "--dry-run"]).assert_ok();
    sb.xtask(&["migrate", "local", "--yes"]).assert_ok();
    sb.execute_sql("INSERT INTO tags(name, color) VALUES ('a', 'red');");
    assert_eq!(
        sb.query_with_wrangler("SELECT name FROM tag_names")[0][0]["name"],
        "a"
    );
    refused_as_broken(
        &sb,
        &[("0008_drop.sql", "DROP TABLE \"my tags\";")],
        &["trigger \"log tag\" on \"tag log\" unable to run"],
        &[],
    );
}

/// rvCA 2: a foreign key a pending statement leaves unable to run was
/// blamed on a trigger on its table ("drop trigger legacy_child_stamp"),
/// whose fix then failed again, and passed silently with no trigger
/// there, leaving the child table unwritable in D1 (no parent table) or
/// the next backup BAD ("foreign key mismatch"). It is refused as what it
/// is, naming the child, its key and the parent, with or without a
/// trigger, before anything.
#[test]
fn a_foreign_key_left_without_its_parent_or_a_unique_parent_key_is_refused_as_such() {
    let sb = Sandbox::new();
    sb.apply_migrations();
    sb.execute_sql(RVCA_SETUP);
    let no_parent = [
        "its statement 1",
        "foreign key legacy_child(parent_id) REFERENCES legacy_parent(id) without its parent \
         table legacy_parent",
    ];
    let mismatch = [
        "foreign key report_refs(report_name) REFERENCES report_configs(name) with a parent \
         key that is neither its PRIMARY KEY nor UNIQUE",
        "CREATE UNIQUE INDEX",
    ];
    for drop_trigger in [false, true] {
        if drop_trigger {
            sb.execute_sql("DROP TRIGGER legacy_child_stamp;");
        }
        refused_as_broken(
            &sb,
            &[("0006_x.sql", "DROP TABLE legacy_parent;")],
            &no_parent,
            &["legacy_child_stamp", "ALTER TABLE that renames"],
        );
    }
    // One parent key with a trigger on its table, one without.
    for (sql, said, not_said) in [
        (
            "CREATE TABLE report_refs(id INTEGER PRIMARY KEY, \
             report_name TEXT REFERENCES report_configs(name));",
            &mismatch[..],
            "report_configs_touch",
        ),
        (
            "CREATE TABLE key_refs(id INTEGER PRIMARY KEY, \
             algorithm TEXT REFERENCES encryption_keys(algorithm));",
            &["foreign key key_refs(algorithm) REFERENCES encryption_keys(algorithm)"],
            "trigger",
        ),
    ] {
        refused_as_broken(&sb, &[("0006_x.sql", sql)], said, &[not_said]);
    }
}

/// OJ 1: pending migrations that left two foreign keys D1 cannot code,
/// in two tables (one without its parent table, one whose parent key is
/// not UNIQUE), were refused telling the first only: the user fixed it,
/// ran again and only then learnt of the second. One refusal tells each,
/// naming its child, key and parent as SQL takes them, and its fix.
#[test]
fn every_foreign_key_the_pending_migrations_leave_unable_to_run_is_told_in_one_refusal() {
    let sb = Sandbox::new();
    sb.apply_migrations();
    sb.execute_sql(RVCA_SETUP);
    refused_as_broken(
        &sb,
        &[
            ("0006_x.sql", "DROP TABLE legacy_parent;"),
            (
                "0007_y.sql",
                "CREATE TABLE \"tag refs\"(id INTEGER PRIMARY KEY, \
                 t TEXT REFERENCES \"my tags\"(x));",
            ),
        ],
        &[
            "0006_x.sql: its statement 1 leaves the foreign key legacy_child(parent_id) \
             REFERENCES legacy_parent(id) without its parent table legacy_parent",
            "make legacy_parent again",
            "0007_y.sql: its statement 1 leaves the foreign key \"tag refs\"(t) REFERENCES \
             \"my tags\"(x) with a parent key that is neither its PRIMARY KEY nor UNIQUE",
            "give \"my tags\" a UNIQUE index on it",
        ],
        &["legacy_child_stamp"],
    );
}

/// rvCN: a migration as Drizzle writes `.unique()`: the parent key made
/// UNIQUE by a `CREATE UNIQUE INDEX` of its own, which wrangler's export
/// writes after the rows.
pub const TAGS_MIGRATION: &str = "CREATE TABLE tag(id INTEGER PRIMARY KEY, slug TEXT NOT NULL);\n\
    CREATE UNIQUE INDEX tag_slug_unique ON tag(slug);\n\
    CREATE TABLE post_tag(post INTEGER, tag_slug TEXT REFERENCES tag(slug));\n";
pub const TAGS_ROWS: &str =
    "INSERT INTO tag VALUES (1, 'rust');\nINSERT INTO post_tag VALUES (7, 'rust');\n";

/// The rows of tag and post_tag in `sb`'s local D1.
fn tag_rows(sb: &Sandbox) -> Vec<Vec<serde_json::Value>> {
    sb.query("SELECT t.id, t.slug, p.post FROM tag t JOIN post_tag p ON p.tag_slug = t.slug")
}

/// rvCN (High): a sound foreign key to a column made UNIQUE by a separate
/// `CREATE UNIQUE INDEX` made every backup BAD ("foreign key mismatch …
/// fix that key"), and so blocked every later migrate, because the load
/// created the index after the rows. The backup is GOOD, verifies GOOD,
/// a later migrate runs, and it restores exactly with `--replace` and
/// `--clean`, as does a raw `wrangler d1 export` with `--no-manifest`.
#[test]
fn a_foreign_key_to_a_column_made_unique_by_its_own_index_backs_up_good_and_restores() {
    let sb = Sandbox::new();
    sb.apply_migrations();
    sb.execute_sql(SEED_SQL);
    migrate_local_with(&sb, "0005_tags.sql", TAGS_MIGRATION);
    sb.execute_sql(TAGS_ROWS);
    let expected = tag_rows(&sb);
    assert_eq!(expected[0].len(), 1, "{expected:?}");
    let backup = sb.xtask(&["backup", "local"]);
    assert_eq!(backup.code, Some(0), "{}", backup.all());
    assert!(backup.stdout.contains("GOOD"), "{}", backup.all());
    let written = backup.stdout_line_with("Backup written: ");
    let latest = written.split("Backup written: ").nth(1).unwrap().trim();
    let verify = sb.xtask(&["verify", latest]);
    assert_eq!(verify.code, Some(0), "{}", verify.all());
    for mode in ["--replace", "--clean"] {
        match mode {
            "--clean" => sb.empty_local_d1(),
            _ => sb.execute_sql_with_wrangler("DELETE FROM post_tag; DELETE FROM tag;"),
        }
        let run = sb.xtask(&["restore", latest, "--to", "local", mode, "--yes"]);
        assert_eq!(run.code, Some(0), "{mode}: {}", run.all());
        assert_eq!(tag_rows(&sb), expected, "{mode}");
    }
    let raw = sb.path().join("raw.sql");
    let args = ["d1", "export", "qbtime_db_local", "--local", "--output"];
    sb.wrangler(&[&args[..], &[raw.to_str().unwrap()]].concat())
        .assert_ok();
    let raw = raw.to_str().unwrap();
    let verify = sb.xtask(&["verify", raw, "--no-manifest"]);
    assert_eq!(verify.code, Some(0), "{}", verify.all());
    sb.execute_sql_with_wrangler("DELETE FROM post_tag; DELETE FROM tag;");
    let flags = ["--no-manifest", "--replace", "--yes"];
    let run = sb.xtask(&[&["restore", raw, "--to", "local"][..], &flags].concat());
    assert_eq!(run.code, Some(0), "{}", run.all());
    assert_eq!(tag_rows(&sb), expected);
    // A later migrate's own backup is GOOD, so it runs.
    migrate_local_with(
        &sb,
        "0006_more.sql",
        "CREATE TABLE more(id INTEGER PRIMARY KEY);",
    );
}

/// The same key with its UNIQUE index partial: SQLite takes no partial
/// index as a parent key, so the key is faulty, and the migration that
/// makes it stays refused as such, before anything.
#[test]
fn a_foreign_key_to_a_column_under_a_partial_unique_index_stays_refused() {
    let sb = Sandbox::new();
    sb.apply_migrations();
    let partial = TAGS_MIGRATION.replace("ON tag(slug);", "ON tag(slug) WHERE id > 0;");
    refused_as_broken(
        &sb,
        &[("0005_tags.sql", &partial)],
        &[
            "foreign key post_tag(tag_slug) REFERENCES tag(slug) with a parent key that is \
           neither its PRIMARY KEY nor UNIQUE",
        ],
        &[],
    );
}

/// OI 2: a data-only backup of a local D1 whose applied migration cannot
/// apply to an empty database (it drops an index made by hand) ended
/// "verifying it could not run … the migration 0005_drop_hand.sql does
/// not run in SQLite here", and advised a verify that fails the same way.
/// Its rows are checked in the schema the migrations make from nothing,
/// as a `--clean` restore of it would make it, so it cannot be verified
/// (exit 1): the backup is kept, unverified, and the error names the
/// migration, its statement, that it cannot apply to an empty database,
/// and the fix (`IF EXISTS`).
#[test]
fn a_data_only_backup_whose_migrations_cannot_make_its_schema_names_the_migration_and_fix() {
    let sb = Sandbox::new();
    migrated_past_a_hand_made_index(&sb);
    let run = sb.xtask(&["backup", "local", "--data-only"]);
    assert_eq!(run.code, Some(1), "{}", run.all());
    assert!(
        run.stderr.contains("0005_drop_hand.sql")
            && run.stderr.contains("its statement 1")
            && run.stderr.contains("on an empty database")
            && run.stderr.contains("IF EXISTS")
            && run.stderr.contains("unverified")
            && !run.stderr.contains("does not run in SQLite here"),
        "{}",
        run.all()
    );
    let kept = sb.backups_held();
    assert!(kept.keys().any(|k| k.ends_with(".sql")), "{kept:?}");
}

/// rvCB's history: a migration that D1 applies although it leaves the
/// foreign key c(b) REFERENCES p(code) with a parent key that is not
/// UNIQUE, applied (as production did) before the plan judged keys.
pub(crate) const MISMATCHED_PC: (&str, &str) = (
    "0005_pc.sql",
    "CREATE TABLE p (id INTEGER PRIMARY KEY, code TEXT);\n\
     CREATE TABLE c (id INTEGER PRIMARY KEY, b TEXT REFERENCES p(code));\n",
);

/// A sandbox whose local D1 applied every migration, [`MISMATCHED_PC`]
/// too, with plain wrangler.
fn applied_mismatched_pc() -> Sandbox {
    let sb = with_migration(MISMATCHED_PC);
    sb.apply_migrations();
    sb
}

/// A sandbox with the migration (name, SQL) in its migrations/ too.
fn with_migration((name, sql): (&str, &str)) -> Sandbox {
    let sb = Sandbox::new();
    std::fs::write(sb.path().join("migrations").join(name), sql).unwrap();
    sb
}

/// rvCB 1: a database that applied 0005_pc (its key c(b) → p(code) is
/// faulty) was refused a pending key to p's INTEGER PRIMARY KEY, blamed
/// on that sound key, and a pending rename of column b alone (the old
/// fault read as a new key): every key from c to p was flagged once one
/// was bad. A fault the database had before the pending migrations is
/// not theirs (exit 0, renamed or not); one they make is still refused,
/// naming only it.
#[test]
fn a_foreign_key_fault_the_database_already_had_is_not_the_pending_migrations() {
    let sb = applied_mismatched_pc();
    for sql in [
        "ALTER TABLE c ADD COLUMN owner_id INTEGER REFERENCES p(id);",
        "ALTER TABLE c RENAME COLUMN b TO product_code;",
        "ALTER TABLE p RENAME TO products;\nALTER TABLE c RENAME TO c2;",
    ] {
        let pending = sb.path().join("migrations/0006_x.sql");
        std::fs::write(&pending, sql).unwrap();
        let run = sb.xtask(&["migrate", "local", "--dry-run"]);
        assert_eq!(run.code, Some(0), "{sql}:\n{}", run.all());
        assert!(!run.stderr.contains("refusing"), "{sql}:\n{}", run.all());
        std::fs::remove_file(pending).unwrap();
    }
    refused_as_broken(
        &sb,
        &[(
            "0006_x.sql",
            "ALTER TABLE c RENAME COLUMN b TO product_code;\n\
             ALTER TABLE c ADD COLUMN owner_id INTEGER REFERENCES p(id);\n\
             ALTER TABLE c ADD COLUMN sku TEXT REFERENCES p(code);",
        )],
        &[
            "0006_x.sql: its statement 3",
            "foreign key c(sku) REFERENCES p(code)",
        ],
        &["product_code", "owner_id"],
    );
}

/// rvCB 3: a new table with two keys to one parent, one of them to a
/// column that is not UNIQUE, was refused naming the sound one, c(a) →
/// p(id). The refusal names exactly the faulty key.
#[test]
fn of_two_foreign_keys_to_one_parent_only_the_faulty_one_is_named() {
    let sb = Sandbox::new();
    sb.apply_migrations();
    refused_as_broken(
        &sb,
        &[(
            "0005_pc.sql",
            "CREATE TABLE p (id INTEGER PRIMARY KEY, code TEXT);\n\
             CREATE TABLE c (id INTEGER PRIMARY KEY, b TEXT REFERENCES p(code), \
             a INTEGER REFERENCES p(id));",
        )],
        &[
            "0005_pc.sql: its statement 2",
            "foreign key c(b) REFERENCES p(code)",
        ],
        &["c(a)"],
    );
}

/// rvCB 2: with 0005_pc in migrations/ (production applied it, and the
/// tool forbids editing an applied migration), a fresh clone's first
/// backup and a `--clean` restore's dry runs, into local and into
/// `new:NAME`, were refused "fix that migration", naming `cargo xtask
/// migrate new:scratch1 --dry-run`, which cannot run. On an empty
/// database only what D1 refuses is refused: a fault D1 applies is a
/// warning naming the migration, and the backup is taken (its check of
/// foreign keys passes c, which holds no rows). `restore_new` shows
/// `--to new:NAME`.
#[test]
fn a_migration_d1_applies_with_a_faulty_foreign_key_does_not_block_a_first_backup_or_a_clean_restore()
 {
    let sb = applied_mismatched_pc();
    // The runbook's hand export: a data-only backup of this history
    // fails its own check (its repair deletes from p, which SQLite cannot
    // code while c's key to it is faulty).
    each_from_nothing_goes_ahead(&sb, &[], warned_of_pcs_faulty_key);
}

/// A fresh clone's first backup of `sb`'s migrations (every one applied
/// to its local D1, whose runbook hand export is taken), then its dry
/// run, the dry run of a `--clean` restore of that export into local and
/// `more`, each on the local D1 emptied: each goes ahead (exit 0),
/// `warned`, the backups and the restore never naming migrate, and the
/// backup is taken.
fn each_from_nothing_goes_ahead(sb: &Sandbox, more: &[&[&str]], warned: fn(&Run) -> bool) {
    let export = sb.export_data_only("data.sql");
    let file = export.to_str().unwrap();
    let hand = ["--clean", "--no-manifest", "--source-env", "local"];
    let hand = [&hand[..], &["--dry-run"]].concat();
    let restore = [&["restore", file, "--to", "local"][..], &hand].concat();
    let backup = ["backup", "local"];
    let dry_run = ["backup", "local", "--dry-run"];
    let mut held = 0;
    for args in [&backup[..], &dry_run, &restore]
        .into_iter()
        .chain(more.iter().copied())
    {
        sb.empty_local_d1();
        let run = sb.xtask(args);
        assert_eq!(run.code, Some(0), "{args:?}:\n{}", run.all());
        assert!(warned(&run), "{args:?}:\n{}", run.all());
        let names_migrate = run.all().contains("cargo xtask migrate");
        assert!(
            args[0] == "migrate" || !names_migrate,
            "{args:?}:\n{}",
            run.all()
        );
        if args == backup {
            held = { sb.backups_held().into_keys() }
                .filter(|n| n.ends_with(".sql"))
                .count();
        }
    }
    assert_eq!(held, 1, "the first backup is taken");
}

/// rvCC 1: after a first backup of [`MISMATCHED_PC`]'s history (GOOD: c
/// and p empty), one row put into p made every later backup BAD in
/// words that blamed this tool's export and advised --via-wrangler,
/// while the check of foreign keys passed c as holding no rows: a dump
/// defers foreign keys, under which every insert into p fails too. The
/// check of foreign keys fails naming the key, and nothing blames the
/// export. The first backup's warning says p's rows cannot load either,
/// and the rows check says why p's row is missing (OT 3).
#[test]
fn a_row_in_the_parent_of_a_faulty_foreign_key_fails_its_check_not_the_export() {
    let sb = applied_mismatched_pc();
    sb.empty_local_d1();
    let first = sb.xtask(&["backup", "local"]);
    assert_eq!(first.code, Some(0), "{}", first.all());
    assert!(
        first.stderr.contains("warning") && first.stderr.contains("none of p's rows"),
        "{}",
        first.all()
    );
    sb.execute_sql_with_wrangler("INSERT INTO p VALUES (1, 'a');");
    let run = sb.xtask(&["backup", "local"]);
    assert_eq!(run.code, Some(1), "{}", run.all());
    let all = run.all();
    let check = |name: &str| {
        let name = format!("] {name} ");
        { all.lines() }
            .find(|l| l.contains(&name))
            .unwrap_or_default()
    };
    let foreign_keys = check("foreign keys");
    assert!(
        foreign_keys.contains("FAIL") && foreign_keys.contains("c references p"),
        "{all}"
    );
    for blame in ["a fault of this tool", "--via-wrangler", "holds no rows"] {
        assert!(!all.contains(blame), "{blame:?}:\n{all}");
    }
    // OT 3: the rows check said only "p: expected 1, found 0", as if the
    // export had lost the row: it names the key, as SQL does, not the row.
    let rows = check("rows");
    assert!(
        rows.contains("p: expected 1, found 0")
            && rows.contains("c(b) REFERENCES p(code), which SQLite cannot check, stops them"),
        "{all}"
    );
    assert!(!all.contains("'a'"), "{all}");
}

/// rvCC 2: on a fresh local D1, `migrate --no-backup` of the history of
/// [`MISMATCHED_PC`] was refused "fix each migration named here", while
/// a first backup applies it with a warning. On a database with no
/// tables yet, migrate warns in the same words and applies every
/// migration (production may have applied that one).
#[test]
fn migrate_onto_a_database_without_tables_warns_of_a_faulty_foreign_key_d1_applies() {
    let sb = with_migration(MISMATCHED_PC);
    sb.empty_local_d1();
    let run = sb.xtask(&["migrate", "local", "--no-backup", "--reason", "t", "--yes"]);
    assert_eq!(run.code, Some(0), "{}", run.all());
    assert!(warned_of_pcs_faulty_key(&run), "{}", run.all());
    let tables = sb.query("SELECT name FROM sqlite_master WHERE name IN ('p', 'c') ORDER BY 1");
    assert_eq!(tables[0].len(), 2, "{}", run.all());
}

/// rvBU's trigger, whose body names a table no migration makes: D1
/// applies its migration (SQLite checks a trigger's body only when a
/// statement that fires it is prepared), so production may have applied
/// it, and the tool forbids editing an applied migration.
pub(crate) const UNJUDGED_T5: (&str, &str) = (
    "0005_t.sql",
    "CREATE TRIGGER t5 AFTER INSERT ON accounts BEGIN \
     INSERT INTO never5(x) VALUES (1); END;\n",
);

/// OU 1: with [`UNJUDGED_T5`] in migrations/, a fresh clone's first
/// backup, the dry run of a `--clean` restore into local and `migrate`
/// onto a database without tables were refused "make what its body names
/// in that migration or one before it, or take the trigger out": an edit
/// of a migration production may have applied. None of the migrations
/// they apply can fire it (its body does not prepare once they all have
/// run), so it cannot write d1_migrations there: each goes ahead, warning
/// of it in the words a faulty foreign key D1 applies is warned of. The
/// first backup is taken. `restore_new` shows `--to new:NAME`.
#[test]
fn a_migration_d1_applies_with_an_unjudged_trigger_does_not_block_what_applies_every_migration() {
    let sb = with_migration(UNJUDGED_T5);
    sb.apply_migrations();
    let migrate = ["migrate", "local", "--no-backup", "--reason", "t", "--yes"];
    each_from_nothing_goes_ahead(&sb, &[&migrate], warned_of_unjudged_t5);
    let made = sb.query("SELECT name FROM sqlite_master WHERE name = 't5'");
    assert_eq!(made[0].len(), 1, "migrate applied 0005_t.sql");
}

/// Whether `run` went ahead warning of [`UNJUDGED_T5`]'s trigger, which
/// D1 applies, naming the migration's statement and the fix in a new
/// migration, and refused nothing.
pub(crate) fn warned_of_unjudged_t5(run: &Run) -> bool {
    let warning = { run.stderr.lines() }
        .find(|l| l.contains("warning") && l.contains("0005_t.sql: its statement 1"));
    warning.is_some_and(|w| {
        w.contains("creates trigger t5 on accounts")
            && w.contains("no such table: main.never5")
            && w.contains("new migration")
    }) && !run.stderr.contains("refusing")
}

/// Whether `run` went ahead warning of the key [`MISMATCHED_PC`] leaves
/// (its parent key not UNIQUE), which D1 applies, naming the migration's
/// statement, and refused nothing.
pub(crate) fn warned_of_pcs_faulty_key(run: &Run) -> bool {
    run.stderr.contains("warning")
        && run.stderr.contains("0005_pc.sql: its statement 2")
        && run.stderr.contains("c(b) REFERENCES p(code)")
        && !run.stderr.contains("refusing")
}

/// OU: a trigger whose body names a table no migration makes and writes
/// d1_migrations, applied (a first backup warns of it and applies it, as
/// wrangler does), passed `migrate` once a pending migration made that
/// table, though from then on every insert into accounts deletes
/// wrangler's record of the migrations. The plan refuses it (exit 3),
/// naming the migration and the trigger, before any backup.
#[test]
fn a_pending_migration_that_makes_what_an_applied_triggers_body_names_is_judged() {
    let sb = with_migration((
        "0005_t.sql",
        "CREATE TRIGGER t5 AFTER INSERT ON accounts BEGIN \
         INSERT INTO never5(x) VALUES (1); DELETE FROM d1_migrations; END;\n",
    ));
    sb.apply_migrations();
    let pending = sb.path().join("migrations/0006_make.sql");
    std::fs::write(pending, "CREATE TABLE never5(x INTEGER);\n").unwrap();
    let before = database_and_backups(&sb);
    let run = sb.xtask(&["migrate", "local", "--dry-run"]);
    assert_eq!(run.code, Some(3), "{}", run.all());
    let said = "0006_make.sql makes what the body of trigger t5 on accounts, which the database \
                has, names: from then on that body writes d1_migrations";
    assert!(run.stderr.contains(said), "{}", run.all());
    assert_eq!(database_and_backups(&sb), before);
}

/// [`MISMATCHED_PC`]'s history, its first backup GOOD (p and c empty),
/// then a row put into p, as the app would: every backup of it is BAD
/// from then on, the parent's rows unable to load while the key is faulty.
fn mismatched_pc_with_a_parent_row() -> Sandbox {
    let sb = applied_mismatched_pc();
    sb.empty_local_d1();
    sb.xtask(&["backup", "local"]).assert_ok();
    sb.execute_sql_with_wrangler("INSERT INTO p VALUES (1, 'a');");
    sb
}

/// The migration that repairs [`MISMATCHED_PC`]'s key, as its warning
/// asks: c made again with a key to p's INTEGER PRIMARY KEY.
fn add_the_repair(sb: &Sandbox) {
    std::fs::write(sb.path().join("migrations/0006_fix_c.sql"), REPAIR_OF_C).unwrap();
}

/// c made again with a key to p's INTEGER PRIMARY KEY.
const REPAIR_OF_C: &str = "CREATE TABLE c_new (id INTEGER PRIMARY KEY, p_id INTEGER REFERENCES p(id));\n\
     DROP TABLE c;\nALTER TABLE c_new RENAME TO c;\n";

/// Whether `run` was refused by a backup BAD for the faulty key of the
/// database itself, saying so in the words that apply (a plain parent,
/// rows that could not load) and naming `migrate --no-backup` as the
/// way that works.
#[track_caller]
fn refused_for_the_databases_own_key(run: &Run, mended: bool) {
    assert_eq!(run.code, Some(1), "{}", run.all());
    let all = run.all();
    for said in [
        "a foreign key of qbtime_db_local itself",
        "cargo xtask migrate local --no-backup --reason \"",
        "--confirm qbtime_db_local",
        "columns of p that are neither its PRIMARY KEY nor UNIQUE",
        "p: the load could not insert",
    ] {
        assert!(run.stderr.contains(said), "{said:?}:\n{all}");
    }
    let pending = "The pending migrations (0006_fix_c.sql) make it sound";
    assert_eq!(run.stderr.contains(pending), mended, "{all}");
    assert_eq!(
        run.stderr.contains("No pending migration makes it sound"),
        !mended,
        "{all}"
    );
    for wrong in ["virtual table (FTS5)", "rows differ from the database's"] {
        assert!(!all.contains(wrong), "{wrong:?}:\n{all}");
    }
}

/// rvCE: the migration that repairs a faulty foreign key (the one a
/// first backup's warning asked for) was refused by its pre-migration
/// backup, BAD for that very key once its parent held a row, and no way
/// out was named: the only advice ("make that FOREIGN KEY refer to …
/// and export again") needed the migration refused, and the check's
/// words spoke of a virtual table and of rows that differ. The refusal
/// says the key is the database's own, whether a pending migration makes
/// it sound, and the way that works (`migrate --no-backup --reason`,
/// with the database's confirmation), which applies it, after which a
/// backup is GOOD. `with-backup` is refused alike, running nothing.
#[test]
fn a_migrate_refused_by_its_pre_migration_backup_over_a_faulty_foreign_key_gives_a_way_that_works()
{
    let sb = mismatched_pc_with_a_parent_row();
    let marker = sb.path().join("ran");
    let touch = format!("touch {}", marker.display());
    let run = sb.xtask(&["with-backup", "local", "--", "sh", "-c", &touch]);
    refused_for_the_databases_own_key(&run, false);
    assert!(!marker.exists(), "the command ran: {}", run.all());
    add_the_repair(&sb);
    let run = sb.xtask(&["migrate", "local", "--yes"]);
    refused_for_the_databases_own_key(&run, true);
    let applied = |sb: &Sandbox| sb.query("SELECT name FROM d1_migrations")[0].len();
    assert_eq!(applied(&sb), 5, "{}", run.all());
    let way = ["--no-backup", "--reason", "repair c's key"];
    let confirm = ["--confirm", "qbtime_db_local"];
    sb.xtask(&[&["migrate", "local"][..], &way, &confirm].concat())
        .assert_ok();
    assert_eq!(applied(&sb), 6);
    sb.xtask(&["backup", "local"]).assert_ok();
}

/// rvCE: a restore of the GOOD backup taken before p held a row was
/// refused by its safety backup, BAD for the database's own faulty key,
/// and restore has no way to skip it. The refusal names the way that
/// works and keeps a way back: apply the pending repair without a backup,
/// then restore again, whose safety backup is then GOOD.
#[test]
fn a_restore_refused_by_its_safety_backup_over_a_faulty_foreign_key_gives_a_way_that_works() {
    let sb = mismatched_pc_with_a_parent_row();
    add_the_repair(&sb);
    let restore = ["restore", "latest", "--to", "local", "--replace", "--yes"];
    let run = sb.xtask(&restore);
    refused_for_the_databases_own_key(&run, true);
    assert!(run.stderr.contains("then restore again"), "{}", run.all());
    assert_eq!(sb.query("SELECT count(*) AS n FROM p")[0][0]["n"], 1);
    let way = ["--no-backup", "--reason", "repair c's key"];
    let confirm = ["--confirm", "qbtime_db_local"];
    sb.xtask(&[&["migrate", "local"][..], &way, &confirm].concat())
        .assert_ok();
    let run = sb.xtask(&restore);
    run.assert_ok();
    assert_eq!(
        sb.query("SELECT count(*) AS n FROM p")[0][0]["n"],
        0,
        "{}",
        run.all()
    );
}

/// rvCE, of prod: the way out of a migrate refused by its pre-migration
/// backup, BAD for prod's own faulty key, notes Time Travel's bookmark
/// first (the way back, as no backup can be taken), then names
/// `migrate --no-backup` with prod's confirmation; that way applies the
/// repair, after which `backup prod` is GOOD.
#[test]
fn a_remote_migrate_refused_over_the_databases_own_faulty_key_notes_the_bookmark_first() {
    // p's row is put in before c is made: local D1 refuses it after.
    let remote = common::remote::Remote::new(
        "CREATE TABLE p (id INTEGER PRIMARY KEY, code TEXT);\n\
         INSERT INTO p VALUES (1, 'a');\n\
         CREATE TABLE c (id INTEGER PRIMARY KEY, b TEXT REFERENCES p(code));",
    );
    let home = tempfile::tempdir().unwrap();
    let repair = remote.sb.path().join("migrations/0005_fix_c.sql");
    std::fs::write(repair, REPAIR_OF_C).unwrap();
    let confirm = ["--confirm", "qbtime_db_prod"];
    let run = remote.xtask(home.path(), &[&["migrate", "prod"][..], &confirm].concat());
    assert_eq!(run.code, Some(1), "{}", run.all());
    let unsaid: Vec<&str> = [
        "a foreign key of qbtime_db_prod itself",
        "The pending migrations (0005_fix_c.sql) make it sound",
        "note the bookmark `cargo xtask time-travel info prod` prints",
        "cargo xtask migrate prod --no-backup --reason \"",
        "--confirm qbtime_db_prod",
    ]
    .into_iter()
    .filter(|said| !run.stderr.contains(said))
    .collect();
    assert!(unsaid.is_empty(), "{unsaid:?}:\n{}", run.all());
    remote
        .xtask(home.path(), &["time-travel", "info", "prod"])
        .assert_ok();
    let way = [
        "migrate",
        "prod",
        "--no-backup",
        "--reason",
        "repair c's key",
    ];
    remote
        .xtask(home.path(), &[&way[..], &confirm].concat())
        .assert_ok();
    remote.xtask(home.path(), &["backup", "prod"]).assert_ok();
}

/// The app's notes and their external-content FTS5 index, as an app that
/// searches its notes makes them.
const NOTES_AND_THEIR_INDEX: &str = "CREATE TABLE notes (id INTEGER PRIMARY KEY, body TEXT);\n\
     CREATE VIRTUAL TABLE notes_fts USING fts5(body, content='notes', content_rowid='id');\n";

/// A rename of the column notes_fts reads, and nothing else.
const RENAME_BODY: &str = "ALTER TABLE notes RENAME COLUMN body TO text;\n";

/// notes_fts made again reading notes' column `text`, its index rebuilt.
const NOTES_FTS_AGAIN: &str = "DROP TABLE notes_fts;\n\
     CREATE VIRTUAL TABLE notes_fts USING fts5(text, content='notes', content_rowid='id');\n\
     INSERT INTO notes_fts(notes_fts) VALUES('rebuild');\n";

/// [`NOTES_AND_THEIR_INDEX`] applied, a note put in and indexed, as the app
/// does.
fn notes_indexed_with_a_row() -> Sandbox {
    let sb = with_migration(("0005_notes.sql", NOTES_AND_THEIR_INDEX));
    sb.apply_migrations();
    sb.execute_sql_with_wrangler(
        "INSERT INTO notes VALUES (1, 'hello');\n\
         INSERT INTO notes_fts(notes_fts) VALUES('rebuild');",
    );
    sb
}

/// How many notes D1's search of notes_fts for 'hello' finds.
fn found_by_search(sb: &Sandbox) -> usize {
    sb.query_with_wrangler("SELECT rowid FROM notes_fts WHERE notes_fts MATCH 'hello'")[0].len()
}

/// rvCJ 1: a migration that renamed the column an external-content FTS5
/// table reads passed the dry run and applied, and from then on D1 failed
/// every search of it (`no such column: T.body`) and every backup was BAD.
/// The plan refuses it (exit 3), a dry run and a real run alike, before
/// any backup, naming the FTS5 table, what it reads and the fix. The fix
/// (the FTS5 table made again in the same migration, reading the new
/// name, its index rebuilt) applies: the search finds the note, and a
/// backup is GOOD.
#[test]
fn a_migration_that_leaves_an_fts5_table_without_what_it_reads_is_refused_and_its_fix_applies() {
    let sb = notes_indexed_with_a_row();
    let pending = sb.path().join("migrations/0006_rename.sql");
    std::fs::write(&pending, RENAME_BODY).unwrap();
    let before = database_and_backups(&sb);
    for args in EVERY_MIGRATE {
        let run = sb.xtask(args);
        assert_eq!(run.code, Some(3), "{args:?}: {}", run.all());
        for said in [
            "0006_rename.sql: its statement 1 leaves FTS5 table notes_fts unable to read its \
             content (no such column: T.body)",
            "column body of notes",
            "INSERT INTO notes_fts(notes_fts) VALUES('rebuild')",
        ] {
            assert!(
                run.stderr.contains(said),
                "{args:?}: {said:?}:\n{}",
                run.all()
            );
        }
        assert_eq!(database_and_backups(&sb), before, "{args:?}");
    }
    std::fs::write(&pending, format!("{RENAME_BODY}{NOTES_FTS_AGAIN}")).unwrap();
    sb.xtask(&["migrate", "local", "--yes"]).assert_ok();
    assert_eq!(found_by_search(&sb), 1);
    sb.xtask(&["backup", "local"]).assert_ok();
}

/// rvCJ 1: a database whose FTS5 table reads a column its content table
/// lacks (a rename wrangler applied) had every backup BAD "corrupt or does
/// not match its manifest", blamed on the repair's statement, and the
/// migration that repairs it was refused by its pre-migration backup with
/// no way out named. The backup says the FTS5 table of the database itself
/// is at fault; the refused migrate says the pending migration repairs it
/// and names `migrate --no-backup`, which applies it, after which the
/// search finds the note and a backup is GOOD.
#[test]
fn a_backup_bad_for_the_databases_own_fts5_table_says_so_and_migrate_gives_a_way_that_works() {
    let sb = notes_indexed_with_a_row();
    std::fs::write(sb.path().join("migrations/0006_rename.sql"), RENAME_BODY).unwrap();
    sb.apply_migrations();
    let run = sb.xtask(&["backup", "local"]);
    assert_eq!(run.code, Some(1), "{}", run.all());
    let verdict = "Result: BAD: an FTS5 table of the database itself reads what its content \
                   table lacks (see statements), not a fault of the file";
    assert!(run.stdout.contains(verdict), "{}", run.all());
    assert!(
        run.all()
            .contains("notes_fts reads column body of notes, which notes lacks"),
        "{}",
        run.all()
    );
    assert!(
        !run.all().contains("corrupt or does not match"),
        "{}",
        run.all()
    );
    std::fs::write(sb.path().join("migrations/0007_fix.sql"), NOTES_FTS_AGAIN).unwrap();
    let run = sb.xtask(&["migrate", "local", "--yes"]);
    assert_eq!(run.code, Some(1), "{}", run.all());
    for said in [
        "It is BAD for an FTS5 table of qbtime_db_local itself",
        "The pending migrations (0007_fix.sql) repair it",
        "cargo xtask migrate local --no-backup --reason \"",
        "--confirm qbtime_db_local",
    ] {
        assert!(run.stderr.contains(said), "{said:?}:\n{}", run.all());
    }
    let way = ["--no-backup", "--reason", "repair notes_fts"];
    let confirm = ["--confirm", "qbtime_db_local"];
    sb.xtask(&[&["migrate", "local"][..], &way, &confirm].concat())
        .assert_ok();
    assert_eq!(found_by_search(&sb), 1);
    sb.xtask(&["backup", "local"]).assert_ok();
}

/// rvCI 2: a migration calling a function D1 refuses (`if()`) passed
/// `migrate local --dry-run` silently, and wrangler then failed it with
/// `not authorized to use function: if`. The plan's run of the migrations
/// now refuses it, naming the migration, the function, and that D1 does
/// not allow it.
#[test]
fn a_migration_calling_a_function_d1_refuses_is_refused_by_its_plan() {
    let sb = Sandbox::new();
    sb.apply_migrations();
    std::fs::write(
        sb.path().join("migrations/0005_if.sql"),
        "UPDATE companies SET timezone = if(timezone = '', 'UTC', timezone);\n",
    )
    .unwrap();
    let run = sb.xtask(&["migrate", "local", "--dry-run"]);
    assert!(!run.ok, "the plan passed\n{}", run.all());
    for needle in ["0005_if.sql", "if()", "D1 does not allow"] {
        assert!(run.stderr.contains(needle), "{needle:?}\n{}", run.all());
    }
    let run = sb.wrangler(&["d1", "migrations", "apply", "qbtime_db_local", "--local"]);
    assert!(
        run.all().contains("not authorized to use function: if"),
        "local D1 applied it\n{}",
        run.all()
    );
}

/// Drizzle's rebuild of c, adding a column: foreign keys "off", a new
/// table whose b references `parent`, c's rows copied into it, c dropped
/// and the new one renamed c (`drizzle-kit generate` for SQLite).
fn drizzle_rebuild_of_c(parent: &str) -> String {
    format!(
        "PRAGMA foreign_keys=OFF;--> statement-breakpoint\n\
         CREATE TABLE `__new_c` (`id` integer PRIMARY KEY, `b` REFERENCES {parent}, \
         `note` text);--> statement-breakpoint\n\
         INSERT INTO `__new_c`(\"id\", \"b\") SELECT \"id\", \"b\" FROM `c`;--> \
         statement-breakpoint\n\
         DROP TABLE `c`;--> statement-breakpoint\n\
         ALTER TABLE `__new_c` RENAME TO `c`;--> statement-breakpoint\n\
         PRAGMA foreign_keys=ON;\n"
    )
}

/// Prisma's redefinition of c, as `prisma migrate diff` writes it for
/// SQLite: foreign keys deferred and "off", `new_c`, rows copied, c
/// dropped, `new_c` renamed.
fn prisma_rebuild_of_c(parent: &str) -> String {
    format!(
        "-- RedefineTables\nPRAGMA defer_foreign_keys=ON;\nPRAGMA foreign_keys=OFF;\n\
         CREATE TABLE \"new_c\" (\"id\" INTEGER NOT NULL PRIMARY KEY, \"b\", \
         \"extra\" TEXT, CONSTRAINT \"c_b_fkey\" FOREIGN KEY (\"b\") REFERENCES {parent});\n\
         INSERT INTO \"new_c\" (\"b\", \"id\") SELECT \"b\", \"id\" FROM \"c\";\n\
         DROP TABLE \"c\";\nALTER TABLE \"new_c\" RENAME TO \"c\";\n\
         PRAGMA foreign_keys=ON;\nPRAGMA defer_foreign_keys=OFF;\n"
    )
}

/// rvCE 4: a Drizzle rebuild of c, in a database whose key c(b) →
/// p(code) is faulty ([`MISMATCHED_PC`]), kept that key: the dry run
/// said it would apply (exit 0), and `migrate --yes` took a full backup,
/// then wrangler failed (`foreign key mismatch - "__new_c" referencing
/// "p"`): D1 enforces foreign keys whatever the migration's `PRAGMA
/// foreign_keys=OFF` says, and SQLite cannot code an insert into a table
/// whose key is faulty, whatever its rows. Drizzle's and Prisma's rebuilds
/// are refused by the plan (exit 3), the dry run too, before any backup,
/// naming the migration, the statement, the table, the key and the fix.
/// The same rebuild with the key to p's primary key applies, as does a
/// column added with a sound key, the dry run saying so first.
#[test]
fn a_rebuild_that_keeps_a_faulty_foreign_key_is_refused_by_the_plan_and_its_fix_applies() {
    let sb = applied_mismatched_pc();
    let fix = "CREATE UNIQUE INDEX … ON p(code)";
    for (sql, said) in [
        (
            drizzle_rebuild_of_c("p(code)"),
            [
                "0006_rebuild.sql: its statement 3",
                "foreign key __new_c(b) REFERENCES p(code)",
            ],
        ),
        (
            prisma_rebuild_of_c("\"p\" (\"code\")"),
            [
                "0006_rebuild.sql: its statement 4",
                "foreign key new_c(b) REFERENCES p(code)",
            ],
        ),
    ] {
        let said = [&said[..], &[fix, "PRAGMA foreign_keys=OFF"]].concat();
        refused_as_broken(&sb, &[("0006_rebuild.sql", &sql)], &said, &[]);
    }
    pending(
        &sb,
        [
            ("0006_rebuild.sql", drizzle_rebuild_of_c("p(id)")),
            (
                "0007_owner.sql",
                "ALTER TABLE c ADD COLUMN owner_id INTEGER REFERENCES p(id);\n".to_owned(),
            ),
        ],
    );
    sb.xtask(&["migrate", "local", "--dry-run"]).assert_ok();
    sb.xtask(&["migrate", "local", "--yes"]).assert_ok();
    let keys = &sb.query("SELECT \"to\" FROM pragma_foreign_key_list('c')")[0];
    assert_eq!(keys.len(), 2, "{keys:?}");
    assert!(keys.iter().all(|k| k["to"] == "id"), "{keys:?}");
}

/// Writes each (name, text) into the sandbox's migrations/.
fn pending<const N: usize>(sb: &Sandbox, migrations: [(&str, String); N]) {
    for (name, sql) in migrations {
        std::fs::write(sb.path().join("migrations").join(name), sql).unwrap();
    }
}

/// A database whose key c(b) → p(id) is sound, with a row in each.
const SOUND_PC: (&str, &str) = (
    "0005_pc.sql",
    "CREATE TABLE p (id INTEGER PRIMARY KEY, code TEXT);\n\
     CREATE TABLE c (id INTEGER PRIMARY KEY, b INTEGER REFERENCES p(id));\n",
);

/// rvCE 4's other side: Drizzle's rebuild of a table, then Prisma's, in
/// a database whose keys are sound, are planned (exit 0, nothing refused)
/// and applied, c's row kept and the new columns there.
#[test]
fn a_drizzle_and_a_prisma_rebuild_over_sound_foreign_keys_apply() {
    let sb = with_migration(SOUND_PC);
    sb.apply_migrations();
    sb.execute_sql("INSERT INTO p VALUES (1, 'a');\nINSERT INTO c VALUES (1, 1);");
    let prisma = prisma_rebuild_of_c("\"p\" (\"id\")");
    pending(
        &sb,
        [
            ("0006_drizzle.sql", drizzle_rebuild_of_c("p(id)")),
            (
                "0007_prisma.sql",
                prisma.replace("\"extra\" TEXT", "\"extra\" TEXT, \"note\" TEXT"),
            ),
        ],
    );
    let run = sb.xtask(&["migrate", "local", "--dry-run"]);
    run.assert_ok();
    assert!(!run.all().contains("refusing"), "{}", run.all());
    sb.xtask(&["migrate", "local", "--yes"]).assert_ok();
    let rows = &sb.query("SELECT id, b, note, extra FROM c")[0];
    assert_eq!(rows.len(), 1, "{rows:?}");
    assert_eq!(
        (&rows[0]["id"], &rows[0]["b"]),
        (&1.into(), &1.into()),
        "{rows:?}"
    );
}
/// rvCE 4, rows rather than the schema: c's row names p's row 7, which is
/// not there (written while foreign keys were off, as an old import
/// might), and D1 refuses a rebuild that copies it (`FOREIGN KEY
/// constraint failed`). The plan reads the migrations and the schema,
/// never rows, so it cannot know; the pre-migration backup's check of
/// foreign keys finds that row before any migration runs: the migrate is
/// refused (exit 1), naming c and p, nothing applied, c's row still there.
/// The refusal used to end there: it says the rows are the database's
/// own, that D1 refuses a rebuild that copies them, and the fix.
#[test]
fn a_rebuild_over_rows_naming_no_parent_is_refused_by_its_backup_before_anything_applies() {
    let sb = with_migration(SOUND_PC);
    sb.apply_migrations();
    let db = rusqlite::Connection::open(sb.local_d1_file()).unwrap();
    db.execute_batch("PRAGMA foreign_keys=OFF; INSERT INTO c VALUES (1, 7);")
        .unwrap();
    drop(db);
    pending(&sb, [("0006_rebuild.sql", drizzle_rebuild_of_c("p(id)"))]);
    let run = sb.xtask(&["migrate", "local", "--yes"]);
    assert_eq!(run.code, Some(1), "{}", run.all());
    for said in [
        "c rowid 1 references a missing row of p",
        "so no migration was applied",
        "Those rows are qbtime_db_local's own",
        "D1 refuses a migration that copies them",
        "`PRAGMA foreign_key_check` lists each",
    ] {
        assert!(run.stderr.contains(said), "{said:?}:\n{}", run.all());
    }
    let applied = sb.query("SELECT count(*) AS n FROM d1_migrations; SELECT b FROM c");
    assert_eq!(applied[0][0]["n"], 5, "{}", run.all());
    assert_eq!(applied[1][0]["b"], 7, "{}", run.all());
}
