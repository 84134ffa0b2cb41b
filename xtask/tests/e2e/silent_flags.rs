//! atkBH: options that are accepted and then silently do nothing, or
//! contradict each other, and environment variables set but empty or to
//! whitespace. Each test is what a tired operator who combines flags sees:
//! a refusal (exit 2) before anything runs, or exactly what `--help` and
//! the README say.

use crate::common;

use common::*;

/// A sandbox with the migrations applied, the seed rows, and one more
/// migration, `0099_extra.sql`, pending.
fn a_pending_migration() -> Sandbox {
    sandbox_with_a_pending_migration(
        "0099_extra.sql",
        "CREATE TABLE extra (id INTEGER PRIMARY KEY);\n",
    )
}

fn has_table(sb: &Sandbox, name: &str) -> bool {
    !sb.query(&format!(
        "SELECT name FROM sqlite_master WHERE type = 'table' AND name = '{name}'"
    ))[0]
        .is_empty()
}

/// atkBH: the README says "A `--database` that an environment does not
/// have is refused, never ignored", and `backup`, `status`, `restore` and
/// `prune --env local` do refuse `--database nosuch` (exit 2). `prune` and
/// `list` without `--env` ignore it: `cargo xtask prune --database
/// ANALYTICS --keep-within 0d --keep-daily 0 --yes`, meant for one
/// database's backups, deletes every environment's and every database's
/// backups that the rules let go, and exits 0. Cause: `prune::run` and
/// `list::run` (xtask/src/main.rs `resolve_env`, called only with `--env`)
/// never look at `project.database`.
#[test]
fn prune_and_list_refuse_a_database_flag_they_would_otherwise_ignore() {
    let sb = Sandbox::new();
    sb.apply_migrations();
    sb.execute_sql(SEED_SQL);
    sb.xtask(&["backup", "local"]).assert_ok();
    sb.xtask(&["backup", "local"]).assert_ok();
    let before = sql_backups(&sb);
    assert_eq!(before.len(), 2, "{before:?}");

    let run = sb.xtask(&[
        "prune",
        "--database",
        "nosuch",
        "--keep-within",
        "0d",
        "--keep-daily",
        "0",
        "--yes",
    ]);
    assert_eq!(
        sql_backups(&sb),
        before,
        "prune --database nosuch deleted backups of a database it was not asked about:\n{}",
        run.all()
    );
    assert_eq!(run.code, Some(2), "{}", run.all());
    assert!(run.stderr.contains("nosuch"), "{}", run.all());

    let list = sb.xtask(&["list", "--database", "nosuch"]);
    assert_eq!(
        list.code,
        Some(2),
        "list --database nosuch listed every backup as if the flag were not there:\n{}",
        list.all()
    );
}

/// atkBH: `backup local --table encryption_keys --dry-run` prints a plan
/// whose mode line says `full` and that never names the table (the JSON
/// plan neither: `mode: "full"`, no table anywhere); the real run then
/// writes a one-table backup ("full (encryption_keys)", manifest `tables:
/// ["encryption_keys"]`). The remote plan names it only because wrangler's
/// command carries `--table`: a local backup reads the SQLite file and
/// runs no wrangler command, so the chosen tables vanish from the plan.
/// Cause: the plan in xtask/src/steps/backup.rs prints `mode` alone.
#[test]
fn a_dry_run_of_a_local_backup_of_one_table_names_that_table() {
    let sb = Sandbox::new();
    sb.apply_migrations();
    sb.execute_sql(SEED_SQL);
    let dry = sb.xtask(&["backup", "local", "--table", "encryption_keys", "--dry-run"]);
    dry.assert_ok();
    assert!(sb.backup_files().is_empty(), "{:?}", sb.backup_files());
    assert!(
        dry.stdout.contains("encryption_keys"),
        "the dry run's plan never says that only encryption_keys is backed up:\n{}",
        dry.stdout
    );
    let json = sb.xtask(&[
        "backup",
        "local",
        "--table",
        "encryption_keys",
        "--dry-run",
        "--json",
    ]);
    json.assert_ok();
    let plan: serde_json::Value = serde_json::from_str(&json.stdout).unwrap();
    assert!(
        plan["plan"].to_string().contains("encryption_keys"),
        "the JSON plan says nothing of --table: {plan:#}"
    );

    sb.xtask(&["backup", "local", "--table", "encryption_keys"])
        .assert_ok();
    let name = only_backup(&sb);
    assert_eq!(
        manifest_for(&sb, &name)["tables"],
        serde_json::json!(["encryption_keys"])
    );
}

/// atkBH: `--no-backup` is "only together with --reason": the reason is
/// what an operator must give to skip the backup. `--reason ""` (or
/// `"   "`) satisfies it: `migrate local --no-backup --reason "" --yes`
/// applies the pending migration with no backup, printing `backup SKIPPED
/// (--no-backup), reason: ` and `warning: … reason given: ` with nothing
/// after the colon, and exits 0. Cause: xtask/src/commands/migrate.rs:44
/// (`requires = "reason"`) checks only that the flag is there.
#[test]
fn skipping_the_pre_migration_backup_needs_a_reason_that_says_something() {
    for reason in ["", "   "] {
        let sb = a_pending_migration();
        let run = sb.xtask(&[
            "migrate",
            "local",
            "--no-backup",
            "--reason",
            reason,
            "--yes",
        ]);
        assert!(
            !has_table(&sb, "extra"),
            "--no-backup --reason {reason:?} migrated without a backup and without a reason:\n{}",
            run.all()
        );
        assert_eq!(run.code, Some(2), "{}", run.all());
        assert!(run.stderr.contains("--reason"), "{}", run.all());
    }
}

/// atkBH: `migrate local --check --yes`, with a migration pending, exits
/// 0 printing "local: 4 migrations applied, unchanged …": `--yes` is
/// accepted and means nothing under `--check`, which changes nothing, and
/// nothing says that `0099_extra.sql` is pending and was not applied. The
/// operator who added `--yes` to "check and go" believes it migrated.
/// (`--check` conflicts with `--dry-run` and `--no-backup`, not with
/// `--yes` or `--confirm`: xtask/src/commands/migrate.rs:41.)
#[test]
fn migrate_check_refuses_the_flags_of_a_run_that_applies() {
    let sb = a_pending_migration();
    let run = sb.xtask(&["migrate", "local", "--check", "--yes"]);
    assert!(!has_table(&sb, "extra"), "--check changed the database");
    assert!(
        run.code == Some(2) && run.stderr.contains("--yes"),
        "--check --yes exits {:?} and never says 0099_extra.sql is pending, not applied:\n{}",
        run.code,
        run.all()
    );
    for flags in [&["--confirm", "qbtime_db_local"][..], &["--reason", "why"]] {
        let run = sb.xtask(&[&["migrate", "local", "--check"][..], flags].concat());
        assert_eq!(run.code, Some(2), "{flags:?}: {}", run.all());
    }
}

/// atkBH: a recipient that is not an age key is bad input, refused before
/// anything runs: from backups.toml it is exit 2
/// (`key_rotation::an_identity_pasted_as_a_recipient_is_called_a_secret_key_not_a_bad_recipient`),
/// but the same value given as `backup local --encrypt-to age1zzz` exits
/// 1, "the command ran and something failed", though "Nothing was run".
/// A scheduled job that tells bad input from a failed backup by the
/// README's table misreads it. Cause: xtask/src/steps/backup.rs:424
/// (`stored::check_recipient(recipient)?`, not marked `CouldNotRun`).
#[test]
fn an_encrypt_to_that_is_no_age_recipient_is_bad_input_exit_2() {
    let sb = Sandbox::new();
    let run = sb.xtask(&["backup", "local", "--encrypt-to", "age1zzz"]);
    assert!(sb.backup_files().is_empty(), "{:?}", sb.backup_files());
    run.assert_refused("is not an age recipient");
    assert_eq!(run.code, Some(2), "{}", run.all());
}

/// atkBH: `QBTIME_BACKUP_DIR` set to the right directory with a trailing
/// space (`QBTIME_BACKUP_DIR="backups "`, as a `.env` line or a CI
/// variable pasted with one) is taken as a directory `backups ` that does
/// not exist: `list` exits 0 saying "No backups in …/backups .", and
/// `status` says "newest verified backup none", while backups/ holds a
/// verified backup. Cause: xtask/src/config/project.rs:103
/// (`cwd.join(p)`, the value as given).
#[test]
fn a_backup_dir_variable_with_a_trailing_space_is_not_an_empty_backup_directory() {
    let (sb, _) = sandbox_with_a_backup();
    let out = sb
        .xtask_command(&["list"])
        .env("QBTIME_BACKUP_DIR", "backups ")
        .output()
        .unwrap();
    let run = Run::from_output(out);
    assert!(
        run.code == Some(2) && run.stderr.contains("white space"),
        "QBTIME_BACKUP_DIR=\"backups \" makes list say there are no backups (exit {:?}):\n{}",
        run.code,
        run.all()
    );
    // rvAX: the configuration's path with a space at its end was said not
    // to exist, the space unseen.
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_xtask"))
        .arg("status")
        .current_dir(sb.path())
        .env("QBTIME_WRANGLER_CONFIG", "wrangler.toml ")
        .env_remove("QBTIME_BACKUP_DIR")
        .output()
        .unwrap();
    let run = Run::from_output(out);
    assert_eq!(run.code, Some(2), "{}", run.all());
    assert!(run.stderr.contains("white space"), "{}", run.all());
}

/// atkBH: a QBTIME_* variable set but empty (`export QBTIME_BACKUP_DIR=`,
/// or a CI variable from a secret that is not set) stops every command
/// with clap's "a value is required for '--backup-dir <DIR>' but none was
/// supplied": a flag the operator never typed; the variable is not named.
/// `QBTIME_AGE_IDENTITY=` does the same to `verify` of a plain backup,
/// which needs no identity at all ("a value is required for '--identity
/// <FILE>'"). Cause: clap's `env = …` on ProjectArgs
/// (xtask/src/config/project.rs:29) and `--identity` take an empty
/// variable as an empty value.
#[test]
fn an_empty_variable_is_taken_as_unset() {
    let (sb, name) = sandbox_with_a_backup();
    let out = sb
        .xtask_command(&["list"])
        .env("QBTIME_BACKUP_DIR", "")
        .output()
        .unwrap();
    let list = Run::from_output(out);
    assert!(
        list.ok && list.stdout.contains(&name),
        "an empty QBTIME_BACKUP_DIR is blamed on --backup-dir, a flag never given:\n{}",
        list.all()
    );
    let out = sb
        .xtask_command(&["verify", &name, "--no-record"])
        .env("QBTIME_AGE_IDENTITY", "")
        .output()
        .unwrap();
    let verify = Run::from_output(out);
    assert!(
        verify.ok,
        "an empty QBTIME_AGE_IDENTITY stops the verify of a plain backup, blamed on --identity:\n{}",
        verify.all()
    );
}

/// atkBH: a dry run with a `--confirm` that names another database (here
/// prod's, aimed at local) prints the plan and exits 0; the same command
/// without `--dry-run` is refused, exit 3, "--confirm qbtime_db_prod does
/// not name the target database qbtime_db_local". The dry run, run to
/// check the command line before the real one, passes a command line the
/// real run refuses. Cause: the restore's dry run stops before
/// `edge::confirm::decide` (xtask/src/edge/confirm.rs:40).
#[test]
fn a_dry_run_refuses_a_confirm_that_names_another_database() {
    let (sb, name) = sandbox_with_a_backup();
    let args = [
        "restore",
        name.as_str(),
        "--to",
        "local",
        "--replace",
        "--confirm",
        "qbtime_db_prod",
    ];
    let real = sb.xtask(&args);
    assert_eq!(real.code, Some(3), "{}", real.all());
    let mut dry_args = args.to_vec();
    dry_args.push("--dry-run");
    let dry = sb.xtask(&dry_args);
    assert!(
        dry.code == Some(3) || dry.all().contains("does not name"),
        "the dry run passes (exit {:?}) a --confirm the real run refuses:\n{}",
        dry.code,
        dry.all()
    );
}

/// atkBH: `backup prod --upload --dry-run` prints the backup's plan with
/// its two wrangler commands (Time Travel info, export) and "Dry run:
/// nothing was changed", and never names the upload: no bucket, no key,
/// no `wrangler r2 object put`, not the warning that the copy is not
/// encrypted. The same command without `--dry-run` then runs three `npx
/// wrangler r2 object put` (the backup, its manifest, the index) into
/// r2://qbtime-d1-backups. The README's backup step 3: the plan names
/// "every wrangler command line", and `--dry-run` stops there.
#[test]
fn a_dry_run_of_backup_upload_names_the_upload_the_real_run_makes() {
    use common::remote::*;
    let remote = Remote::new("");
    remote.server.add_bucket("qbtime-d1-backups");
    let home = tempfile::tempdir().unwrap();
    let dry = remote.xtask(home.path(), &["backup", "prod", "--upload", "--dry-run"]);
    dry.assert_ok();
    assert!(
        remote.sb.backup_files().is_empty(),
        "{:?}",
        remote.sb.backup_files()
    );
    let real = remote.xtask(home.path(), &["backup", "prod", "--upload"]);
    real.assert_ok();
    assert!(real.all().contains("r2 object put"), "{}", real.all());
    assert!(
        dry.stdout.contains("r2 object put") || dry.stdout.contains("r2://qbtime-d1-backups"),
        "the dry run's plan never says the backup is then uploaded to R2:\n{}",
        dry.all()
    );
}

/// rvAX: `list` and `prune` without `--env` now refuse a `--database` that
/// no environment has (exit 2); `status` without `--env` still ignores it:
/// `status --database nosuch` prints every environment's status, as if the
/// flag were not there, and exits 1 for prod's missing backup. The README:
/// "A `--database` that an environment does not have is refused, never
/// ignored". Cause: xtask/src/commands/status.rs takes every environment
/// without `--env`, never `Environments::picked`.
#[test]
fn status_refuses_a_database_flag_no_environment_has() {
    let (sb, _) = sandbox_with_a_backup();
    let run = sb.xtask(&["status", "--database", "nosuch"]);
    assert!(
        run.code == Some(2) && run.stderr.contains("nosuch"),
        "status --database nosuch shows every database as if the flag were not there (exit {:?}):\n{}",
        run.code,
        run.all()
    );
}

/// rvAX: a dry run in the minute of an earlier backup plans the file and
/// the upload of the name already taken: `backup local --upload --dry-run`
/// right after `backup local` prints `file …/backup-local-…-HHMM.sql` and
/// `upload then r2://BUCKET/local/YYYY/MM/backup-local-…-HHMM.sql`, the
/// key of the backup already there (uploaded already, for all the plan
/// says: an overwrite); the real run writes and uploads `…-HHMM-2.sql`.
/// Cause: xtask/src/steps/backup.rs `BackupNames::offsite` and the plan's
/// `file` take `candidate(1)`, never the first free candidate.
#[test]
fn a_dry_run_in_the_minute_of_a_backup_plans_the_name_the_real_run_takes() {
    // The dry run reads the bucket's index, as its upload would.
    let remote = common::remote::Remote::new("");
    remote.server.add_bucket("qbtime-d1-backups");
    let home = tempfile::tempdir().unwrap();
    let sb = &remote.sb;
    sb.apply_migrations();
    sb.execute_sql(SEED_SQL);
    std::fs::write(
        sb.path().join("backups.toml"),
        "[local.offsite]\nbucket = \"qbtime-d1-backups\"\n",
    )
    .unwrap();
    // The minute may turn between the two runs: then try again.
    for _ in 0..3 {
        let before = sb.backup_files();
        sb.xtask(&["backup", "local"]).assert_ok();
        let taken = sb
            .backup_files()
            .into_iter()
            .find(|f| f.ends_with(".sql") && !before.contains(f))
            .unwrap();
        let dry = remote.xtask(
            home.path(),
            &["backup", "local", "--upload", "--dry-run", "--json"],
        );
        dry.assert_ok();
        let plan: serde_json::Value = serde_json::from_str(&dry.stdout).unwrap();
        let file = plan["plan"]["file"].as_str().unwrap().to_owned();
        let name = std::path::Path::new(&file)
            .file_name()
            .unwrap()
            .to_string_lossy()
            .into_owned();
        let minute = |n: &str| n.trim_end_matches(".sql").get(..26).map(str::to_owned);
        if minute(&name) != minute(&taken) {
            continue;
        }
        let upload = plan["plan"]["upload"].as_str().unwrap_or_default();
        assert!(
            name != taken
                && !sb.backup_files().contains(&name)
                && upload.ends_with(&format!("/{name}")),
            "the dry run plans {name} and the upload {upload}, with {taken} already taken; the \
             real run writes and uploads a later name:\n{plan:#}"
        );
        return;
    }
    panic!("no two runs in one minute");
}

/// rvAX: a backup directory ending with a tab is refused (good), but the
/// message shows it escaped twice and calls it a space: `the backup
/// directory "backups\\t" … begins or ends with a space`. Cause:
/// xtask/src/config/project.rs `{:?}` of `text.escape_debug()`.
#[test]
fn a_backup_dir_ending_with_a_tab_is_shown_as_given() {
    let sb = Sandbox::new();
    let run = sb.xtask(&["list", "--backup-dir", "backups\t"]);
    assert_eq!(run.code, Some(2), "{}", run.all());
    assert!(
        !run.stderr.contains("\\\\t"),
        "the tab is shown escaped twice:\n{}",
        run.stderr
    );
}

/// `--database` is global, so every command took it; doctor, keygen,
/// `hooks install`, and verify or diff given only files, then did nothing
/// with it: `verify FILE --database ANALYTICS` verified FILE whatever
/// database it was of, and `keygen --database X` wrote a key. They refuse
/// it (exit 2) before doing anything, and verify takes it with
/// `latest:ENV`, where it picks the backup.
#[test]
fn commands_that_act_on_no_one_database_refuse_the_database_flag() {
    let sb = Sandbox::new();
    sb.apply_migrations();
    sb.xtask(&["backup", "local"]).assert_ok();
    let file = sql_backups(&sb).pop().unwrap();
    let file = sb.backups().join(file);
    let file = file.to_str().unwrap();
    // Outside every work tree, where keygen writes without --database.
    let keys = tempfile::tempdir().unwrap();
    let key = keys.path().join("key.txt");
    let key = key.to_str().unwrap();
    let hooks = || sb.git(&["config", "--get-all", "core.hooksPath"]).stdout;
    let hooks_before = hooks();

    for args in [
        &["doctor", "--database", "DB"][..],
        &["keygen", "--out", key, "--database", "DB"],
        &["hooks", "install", "--database", "DB"],
        &["verify", file, "--database", "DB"],
        &["diff", file, file, "--database", "DB"],
    ] {
        let run = sb.xtask(args);
        assert_eq!(
            run.code,
            Some(2),
            "{args:?} took --database:\n{}",
            run.all()
        );
        assert!(
            run.stderr.contains("--database DB would do nothing here"),
            "{args:?}:\n{}",
            run.all()
        );
        assert!(!run.stdout.contains("GOOD"), "{args:?}:\n{}", run.all());
    }
    assert!(
        !std::path::Path::new(key).exists(),
        "keygen --database wrote a key"
    );
    assert_eq!(
        hooks(),
        hooks_before,
        "hooks install --database changed the hooks"
    );

    sb.xtask(&["verify", "latest:local", "--database", "DB"])
        .assert_ok();
    sb.xtask(&["keygen", "--out", key]).assert_ok();
    sb.xtask(&["hooks", "install"]).assert_ok();
    assert_ne!(hooks(), hooks_before, "hooks install changed nothing");
}

/// atkBK: `verify FILE --identity /no/such/key` of a plain backup said
/// GOOD and never looked at the identity: the typo in the path that the
/// next encrypted backup needs went unnoticed until the day it is needed.
/// An identity given to a command whose backup does not need one is still
/// checked: missing or no identity is bad input (exit 2), and a real one
/// changes nothing.
#[test]
fn an_identity_given_for_a_plain_backup_is_checked_not_passed_over() {
    let sb = Sandbox::new();
    sb.apply_migrations();
    sb.xtask(&["backup", "local"]).assert_ok();
    let keys = tempfile::tempdir().unwrap();
    let missing = keys.path().join("typo.agekey");
    let missing = missing.to_str().unwrap();
    for args in [
        &["verify", "latest:local", "--identity", missing][..],
        &[
            "restore",
            "latest:local",
            "--to",
            "local",
            "--replace",
            "--yes",
            "--identity",
            missing,
        ],
    ] {
        let before = sb.backup_files();
        let run = sb.xtask(args);
        assert_eq!(run.code, Some(2), "{args:?}:\n{}", run.all());
        assert!(
            run.stderr.contains("typo.agekey"),
            "{args:?}:\n{}",
            run.all()
        );
        assert_eq!(sb.backup_files(), before, "{args:?} wrote a backup");
    }
    let key = keys.path().join("team.agekey");
    keygen_recipient(&sb.xtask(&["keygen", "--out", key.to_str().unwrap()]));
    sb.xtask(&[
        "verify",
        "latest:local",
        "--identity",
        key.to_str().unwrap(),
    ])
    .assert_ok();
}

/// atkBK: `keygen --out K --backup-dir D` and `hooks install --backup-dir
/// D` ran as without it. Typed, it is refused (exit 2) and nothing is
/// written; `QBTIME_BACKUP_DIR`, a setting for every command, is passed
/// over.
#[test]
fn commands_that_touch_no_backup_refuse_a_typed_backup_dir() {
    let sb = Sandbox::new();
    let keys = tempfile::tempdir().unwrap();
    let key = keys.path().join("key.txt");
    let key = key.to_str().unwrap();
    let run = sb.xtask(&["keygen", "--out", key, "--backup-dir", "elsewhere"]);
    assert_eq!(run.code, Some(2), "{}", run.all());
    assert!(
        run.stderr
            .contains("--backup-dir elsewhere would do nothing"),
        "{}",
        run.all()
    );
    assert!(!std::path::Path::new(key).exists(), "keygen wrote a key");
    let run = sb.xtask(&["hooks", "install", "--backup-dir", "elsewhere"]);
    assert_eq!(run.code, Some(2), "{}", run.all());
    assert!(
        sb.git(&["config", "--get", "core.hooksPath"])
            .stdout
            .is_empty(),
        "hooks install --backup-dir installed the hooks"
    );

    let mut keygen = sb.xtask_command(&["keygen", "--out", key]);
    keygen.env("QBTIME_BACKUP_DIR", "elsewhere");
    let run = Run::from_output(keygen.output().unwrap());
    run.assert_ok();
    assert!(std::path::Path::new(key).is_file());
}

/// rvAX: `completions` prints its script before any configuration is
/// read, so `--config` given to it did nothing, and was taken silently, as
/// `--backup-dir` and `--database` no longer are. Typed, it is refused
/// (exit 2) and no script is printed; `QBTIME_WRANGLER_CONFIG`, a setting
/// for every command, is passed over.
#[test]
fn completions_refuse_a_typed_config() {
    let sb = Sandbox::new();
    let run = sb.xtask(&["completions", "bash", "--config", "wrangler.toml"]);
    assert_eq!(run.code, Some(2), "{}", run.all());
    assert!(
        run.stderr.contains("--config") && run.stderr.contains("would do nothing"),
        "{}",
        run.all()
    );
    assert!(
        run.stdout.is_empty(),
        "a script was printed:\n{}",
        run.all()
    );
    let run = sb.xtask(&["completions", "bash"]);
    run.assert_ok();
    assert!(run.stdout.contains("xtask"), "{}", run.all());
}

/// The long options the completion script `script` (fish's) offers after
/// `command` (`hooks install`: `hooks` then `install`), and `-q`'s
/// `quiet`, as fish is told them: a `complete` line each.
fn offered_by_fish(script: &str, command: &[&str]) -> Vec<String> {
    let using = format!("__fish_xtask_using_subcommand {}", command[0]);
    let ours = |condition: &str| match command {
        [_] => condition == using || condition.starts_with(&format!("{using}; and not ")),
        [_, sub] => condition == format!("{using}; and __fish_seen_subcommand_from {sub}"),
        _ => unreachable!(),
    };
    { script.lines() }
        .filter(|l| {
            { l.split_once(" -n \"") }
                .is_some_and(|(_, c)| ours(c.split('"').next().unwrap_or_default()))
        })
        .filter_map(|l| l.split_once(" -l ")?.1.split_whitespace().next())
        .map(str::to_owned)
        .collect()
}

/// The options bash is told to offer after `command` (its case, such as
/// `xtask__subcmd__keygen)`).
fn offered_by_bash(script: &str, command: &[&str]) -> Vec<String> {
    let case = format!("xtask__subcmd__{})", command.join("__subcmd__"));
    let at = script
        .find(&case)
        .unwrap_or_else(|| panic!("no {case} in the bash script"));
    let opts = script[at..]
        .lines()
        .find(|l| l.trim_start().starts_with("opts=\""))
        .unwrap();
    { opts.split('"').nth(1).unwrap().split_whitespace() }
        .filter_map(|o| o.strip_prefix("--"))
        .map(str::to_owned)
        .collect()
}

/// MF: the shell completions offered `--backup-dir` and `--database` after
/// `keygen`, `hooks` and `completions` (and `--config` after
/// `completions`, `--database` after `doctor`), each of which the command
/// refuses (exit 2) as doing nothing there; their help had stopped listing
/// them (rvAX). A completion offers no option the command refuses, and
/// still every global one it takes, in fish's script and bash's.
#[test]
fn completions_offer_no_option_the_command_refuses_and_each_it_takes() {
    let sb = Sandbox::new();
    let scripts = ["fish", "bash"].map(|shell| {
        let run = sb.xtask(&["completions", shell]);
        run.assert_ok();
        run.stdout
    });
    let cases: [(&[&str], &[&str], &[&str]); 6] = [
        (
            &["keygen"],
            &["database", "backup-dir"],
            &["config", "quiet", "out"],
        ),
        (
            &["hooks"],
            &["database", "backup-dir"],
            &["config", "quiet"],
        ),
        (
            &["hooks", "install"],
            &["database", "backup-dir"],
            &["config", "quiet"],
        ),
        (
            &["completions"],
            &["database", "backup-dir", "config"],
            &["quiet", "verbose"],
        ),
        (
            &["doctor"],
            &["database"],
            &["config", "backup-dir", "quiet"],
        ),
        (
            &["backup"],
            &[],
            &["database", "backup-dir", "config", "quiet"],
        ),
    ];
    for (shell, script) in ["fish", "bash"].iter().zip(&scripts) {
        for (command, refused, taken) in cases {
            let offered = match *shell {
                "fish" => offered_by_fish(script, command),
                _ => offered_by_bash(script, command),
            };
            for long in refused {
                assert!(
                    !offered.iter().any(|o| o == long),
                    "{shell} offers --{long} after {command:?}, which refuses it: {offered:?}"
                );
            }
            for long in taken {
                assert!(
                    offered.iter().any(|o| o == long),
                    "{shell} does not offer --{long} after {command:?}: {offered:?}"
                );
            }
        }
    }
    // Each offered one is taken: refused ones are refused, exit 2.
    let run = sb.xtask(&["keygen", "--out", "k.txt", "--database", "DB"]);
    assert_eq!(run.code, Some(2), "{}", run.all());
}

/// MQ: `--json` written before the command's name (`cargo xtask --json
/// list`) was refused, "unexpected argument '--json'", while `-q` and `-v`
/// there were taken: it is taken as after the name, the same document.
/// A command that prints no JSON document refuses it there as after its
/// name, its usage line naming it, and runs nothing (no key written).
#[test]
fn json_before_the_commands_name_is_taken_as_after_it() {
    let sb = Sandbox::new();
    sb.xtask(&["backup", "local"]).assert_ok();
    for command in [
        &["list"][..],
        &["-q", "list"],
        &["status", "--env", "local"],
    ] {
        let after = sb.xtask(&[command, &["--json"]].concat());
        let before = sb.xtask(&[&["--json"], command].concat());
        assert_eq!(before.code, after.code, "{command:?}:\n{}", before.all());
        let doc = |run: &Run| -> serde_json::Value {
            serde_json::from_str(&run.stdout)
                .unwrap_or_else(|e| panic!("{command:?}: not one document ({e}):\n{}", run.all()))
        };
        let (before, after) = (doc(&before), doc(&after));
        assert_eq!(
            before.as_object().map(|o| o.keys().collect::<Vec<_>>()),
            after.as_object().map(|o| o.keys().collect())
        );
        if command[..] != ["status", "--env", "local"] {
            assert_eq!(before, after, "{command:?}");
        }
    }
    let after = sb.xtask(&["keygen", "--json", "--out", "k.txt"]);
    let before = sb.xtask(&["--json", "keygen", "--out", "k.txt"]);
    let at_the_end = sb.xtask(&["keygen", "--out", "k.txt", "--json"]);
    for run in [&after, &before, &at_the_end] {
        assert_eq!(run.code, Some(2), "{}", run.all());
        assert!(
            run.stderr.contains("'--json'") && run.stderr.contains("cargo xtask keygen"),
            "the refusal names neither --json nor keygen:\n{}",
            run.all()
        );
    }
    assert_eq!(before.stderr, after.stderr);
    assert!(!sb.path().join("k.txt").exists(), "a key was written");
}
