//! A tired operator's advice and refusals (KS): every command the tool
//! advises is run here as it was printed, from the tool's own output, and
//! works; a refusal names what to fix and the next step.

use crate::common;

use crate::hostile_backups::db_state;
use common::*;

/// The `cargo xtask …` commands between backticks in `text`, as their
/// words, `cargo xtask` left off: what an operator pastes. Only the
/// commands holding `holding`.
fn advised(text: &str, holding: &str) -> Vec<Vec<String>> {
    text.split('`')
        .skip(1)
        .step_by(2)
        .filter(|c| c.starts_with("cargo xtask ") && c.contains(holding))
        .map(|c| {
            c.split_whitespace()
                .skip(2)
                .map(|w| w.trim_matches('\'').to_owned())
                .collect()
        })
        .collect()
}

/// Runs each advised command in `sb` as printed; returns the runs.
fn run_each(sb: &Sandbox, commands: &[Vec<String>]) -> Vec<Run> {
    commands
        .iter()
        .map(|words| sb.xtask(&words.iter().map(String::as_str).collect::<Vec<_>>()))
        .collect()
}

/// `status` in `sb` with no Cloudflare credentials (no token, a home with
/// no `wrangler login`), which it says it found none of.
#[track_caller]
fn status_without_credentials(sb: &Sandbox) -> Run {
    let run = Run::from_output(
        sb.xtask_command(&["status"])
            .env("HOME", sb.path())
            .env("XDG_CONFIG_HOME", sb.path().join(".config"))
            .output()
            .unwrap(),
    );
    assert!(
        run.stderr.contains("no Cloudflare credentials were found"),
        "{}",
        run.all()
    );
    run
}
/// A pending migration whose second statement names a table that is not
/// there: the plan prepares it on the local D1's schema and knows it
/// cannot apply. `migrate local --yes` refuses it before the
/// pre-migration backup, naming the migration, the statement and the fix,
/// so retrying it does not fill backups/ with the same backup; fixed, it
/// applies.
#[test]
fn a_migration_the_plan_knows_cannot_apply_is_refused_before_its_backup() {
    let sb = Sandbox::new();
    sb.apply_migrations();
    sb.execute_sql("INSERT INTO companies (name) VALUES ('Acme');");
    let file = sb.path().join("migrations/0005_shape.sql");
    std::fs::write(
        &file,
        "CREATE TABLE shapes (id INTEGER PRIMARY KEY);\nINSERT INTO nowhere VALUES (1);\n",
    )
    .unwrap();
    for _ in 0..2 {
        let run = sb.xtask(&["migrate", "local", "--yes"]);
        assert_eq!(run.code, Some(3), "{}", run.all());
        for said in ["0005_shape.sql", "statement 2", "no such table: nowhere"] {
            assert!(run.stderr.contains(said), "{said:?}:\n{}", run.all());
        }
        assert!(run.stderr.contains("no backup was taken"), "{}", run.all());
        let backups: Vec<String> = { sb.backup_files().into_iter() }
            .filter(|f| f.contains(".sql"))
            .collect();
        assert!(backups.is_empty(), "{backups:?}");
    }
    assert_eq!(sb.query("SELECT name FROM d1_migrations")[0].len(), 4);
    // The dry run advised says the same, and changes nothing.
    let dry = sb.xtask(&["migrate", "local", "--dry-run"]);
    assert_eq!(dry.code, Some(3), "{}", dry.all());
    std::fs::write(
        &file,
        "CREATE TABLE shapes (id INTEGER PRIMARY KEY);\nINSERT INTO shapes VALUES (1);\n",
    )
    .unwrap();
    sb.xtask(&["migrate", "local", "--yes"]).assert_ok();
    assert_eq!(sb.query("SELECT name FROM d1_migrations")[0].len(), 5);
}

/// status's offsite lock line, with no Cloudflare credentials here: the
/// `offsite lock --dry-run` it advises fails without them, so the line
/// names the missing setting before the command.
#[test]
fn status_names_the_missing_credentials_before_advising_offsite_lock() {
    let sb = Sandbox::new();
    let run = Run::from_output(
        sb.xtask_command(&["status", "--env", "prod"])
            .env("HOME", sb.path())
            .env("XDG_CONFIG_HOME", sb.path().join(".config"))
            .output()
            .unwrap(),
    );
    let line = run.stdout_line_with("offsite lock ");
    let advice = line
        .find("offsite lock --env prod --dry-run")
        .unwrap_or_else(|| panic!("{line}"));
    // prod, with no backup, fails: its error says how to set them, and
    // the line points to it (MR 3: it said so twice).
    let setting = line
        .find("Cloudflare credentials the error below names")
        .unwrap_or_else(|| panic!("no setting named:\n{line}"));
    assert!(setting < advice, "{line}");
    assert!(run.stderr.contains("CLOUDFLARE_API_TOKEN"), "{}", run.all());
    // As printed, without credentials, it fails for want of them.
    let runs = run_each(&sb, &advised(line, "offsite lock"));
    assert_eq!(runs.len(), 1, "{line}");
    assert!(
        runs[0].stderr.contains("CLOUDFLARE_API_TOKEN"),
        "{}",
        runs[0].all()
    );
}

/// A restore's plan that leaves a migration pending advises the migrate
/// that applies it: run as printed, with no terminal, it applies it.
#[test]
fn the_migrate_a_restore_plan_advises_runs_as_printed() {
    let (sb, name) = sandbox_with_a_backup();
    let later = migration_applied_after(&sb, "");
    let plan = replace_plan(&sb, &name);
    let line = plan.stdout_line_with("which the backup predates");
    let advice = advised(line, "migrate");
    assert_eq!(advice.len(), 1, "{line}");
    sb.xtask(&["restore", &name, "--to", "local", "--replace", "--yes"])
        .assert_ok();
    let runs = run_each(&sb, &advice);
    runs[0].assert_ok();
    assert!(
        sb.query("SELECT name FROM d1_migrations")[0]
            .iter()
            .any(|r| r["name"] == later)
    );
}

/// verify of a backup whose manifest lists other migrations than its
/// dump's d1_migrations rows names the migration that differs.
#[test]
fn verify_names_the_migration_a_manifest_and_its_dump_differ_on() {
    let (sb, name) = sandbox_with_a_backup();
    edit_manifest(&sb, &name, |m| {
        let last = m["migrations"].as_array_mut().unwrap().pop().unwrap();
        m["migration_sha256"]
            .as_object_mut()
            .unwrap()
            .remove(last.as_str().unwrap());
    });
    let run = sb.xtask(&["verify", &name, "--no-record"]);
    assert_eq!(run.code, Some(1), "{}", run.all());
    let line = run.stdout_line_with("d1_migrations rows");
    assert!(line.contains("0004_audit_log.sql"), "{}", run.all());
}

/// A backup file that no longer matches its manifest is refused with a
/// next step: each command the refusal advises runs as printed, and
/// verify tells what differs.
#[test]
fn a_restore_refused_for_a_file_unlike_its_manifest_advises_what_runs() {
    let (sb, name) = sandbox_with_a_backup();
    let file = sb.backups().join(&name);
    let mut text = std::fs::read(&file).unwrap();
    text.extend_from_slice(b"-- appended\n");
    std::fs::write(&file, text).unwrap();
    let run = sb.xtask(&["restore", &name, "--to", "local", "--replace", "--yes"]);
    assert_eq!(run.code, Some(3), "{}", run.all());
    assert!(
        run.stderr.contains("does not match its manifest"),
        "{}",
        run.all()
    );
    let advice = advised(&run.stderr, "");
    assert!(
        advice.iter().any(|c| c[0] == "verify") && advice.iter().any(|c| c[0] == "list"),
        "{}",
        run.all()
    );
    for (words, ran) in advice.iter().zip(run_each(&sb, &advice)) {
        match words[0].as_str() {
            // verify's verdict on it: BAD, saying what differs.
            "verify" => {
                assert_eq!(ran.code, Some(1), "{words:?}: {}", ran.all());
                assert!(ran.stdout.contains("BAD"), "{}", ran.all());
            }
            _ => {
                ran.assert_ok();
            }
        }
    }
}

/// A trigger made by hand on the app's accounts, which no migration
/// creates: a restore installs it only where `--allow-trigger hand_made`
/// names it.
const HAND_MADE: &str = "CREATE TRIGGER hand_made AFTER INSERT ON accounts BEGIN SELECT 1; END;";

/// The accounts' emails, and whether the hand-made trigger is there: what
/// a way back must bring back.
fn accounts_and_trigger(sb: &Sandbox) -> (Vec<String>, bool) {
    let emails = sb.query("SELECT email FROM accounts ORDER BY email")[0]
        .iter()
        .map(|r| r["email"].as_str().unwrap_or_default().to_owned())
        .collect();
    let trigger = sb.query("SELECT name FROM sqlite_master WHERE name = 'hand_made'");
    (emails, !trigger[0].is_empty())
}

/// The line of `text` holding the `cargo xtask restore …` a way back
/// prints: it must be a line of its own, the command alone on it (LR: a
/// warning's, a note's or a sealed backup's way back put it mid-sentence,
/// or followed by `(KEYFILE: …)`, which pasted whole is a syntax error).
#[track_caller]
fn printed_restore(text: &str) -> String {
    let line = text
        .lines()
        .find(|l| l.contains("cargo xtask restore "))
        .unwrap_or_else(|| panic!("no way back printed:\n{text}"));
    assert!(
        line.trim_start().starts_with("cargo xtask restore ") && !line.contains('`'),
        "the way back is not a line of its own, the command alone on it:\n{line}\nin:\n{text}"
    );
    line.to_owned()
}

/// `line` pasted whole into a POSIX shell in the sandbox, as an operator
/// does, with `cargo xtask` this build's xtask.
fn pasted(sb: &Sandbox, line: &str) -> Run {
    let script = format!("cargo() {{ shift; \"$XTASK\" \"$@\"; }}\n{line}");
    wrangler_bin();
    Run::from_output(
        sb.sandboxed(std::process::Command::new("sh"), &["-c", &script])
            .env("XTASK", env!("CARGO_BIN_EXE_xtask"))
            .output()
            .unwrap(),
    )
}

/// Takes a backup of local; returns its file name.
fn new_backup(sb: &Sandbox) -> String {
    let before = sb.backup_files();
    sb.xtask(&["backup", "local"]).assert_ok();
    { sb.backup_files().into_iter() }
        .find(|n| n.ends_with(".sql") && !before.contains(n))
        .unwrap()
}

/// Runs `migrate local --yes` (and `more`) of two migrations, after their
/// pre-migration backup: the first applies (it deletes an account), the
/// second fails as it runs (a key taken twice). D1 applies each file as one
/// batch, so a run whose only migration fails changed nothing and advises
/// no way back (NS); this one changed the database and prints it.
fn migrate_failing_partway(sb: &Sandbox, more: &[&str]) -> Run {
    std::fs::write(
        sb.path().join("migrations/0006_partway.sql"),
        "DELETE FROM accounts WHERE email = 'ops@example.com';\n",
    )
    .unwrap();
    std::fs::write(
        sb.path().join("migrations/0006_twice.sql"),
        "INSERT INTO encryption_keys (key_id, fingerprint, activated_at) \
         VALUES ('dek-2026-01', 'sha256:x', '2026-01-01T00:00:00.000Z');\n",
    )
    .unwrap();
    sb.xtask(&[&["migrate", "local", "--yes"][..], more].concat())
}

/// Runs the way back `text` prints as printed, and asserts it is accepted
/// and brings back `before`: the accounts and the hand-made trigger.
fn assert_way_back_restores(sb: &Sandbox, text: &str, before: &(Vec<String>, bool)) {
    let line = printed_restore(text);
    let ran = pasted(sb, &line);
    assert_eq!(
        ran.code,
        Some(0),
        "the way back as printed, {line}, was not accepted:\n{}",
        ran.all()
    );
    assert_eq!(&accounts_and_trigger(sb), before, "{line}:\n{}", ran.all());
}

/// A backup lock left by a run of `command` gone an hour ago, killed as
/// it was `doing` (its record): the next run tells it, with its way back.
fn plant_dead_lock(sb: &Sandbox, command: &str, doing: serde_json::Value) {
    let lock = serde_json::json!({
        "pid": 999_999,
        "started_at": (chrono::Utc::now() - chrono::Duration::hours(1))
            .to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
        "command": command,
        "doing": doing,
    });
    std::fs::write(sb.backups().join(".lock"), lock.to_string()).unwrap();
}

/// The next run (`backup local`) after [`plant_dead_lock`]: it tells the
/// run gone.
fn next_run(sb: &Sandbox) -> Run {
    let run = sb.xtask(&["backup", "local"]);
    run.assert_ok();
    let told = run.stderr.contains("gone without releasing it");
    assert!(told, "{}", run.all());
    run
}

/// The next run's way back after a restore killed mid-load (the lock's
/// record of the load, its safety backup named) restores that safety
/// backup, which holds a trigger the target held that no migration
/// creates: run as printed, it is accepted (it was refused, exit 3, for
/// want of `--allow-trigger hand_made`) and brings back the rows and the
/// trigger.
#[test]
fn the_way_back_after_a_killed_restore_restores_a_hand_made_trigger_as_printed() {
    let (sb, _) = sandbox_with_a_backup();
    sb.execute_sql(HAND_MADE);
    let before = accounts_and_trigger(&sb);
    assert!(before.1);
    // The safety backup the killed restore took of local.
    let safety = new_backup(&sb);
    // What the killed load left: another row, the trigger gone.
    sb.execute_sql(
        "DROP TRIGGER hand_made; INSERT INTO accounts (email, display_name, password_hash, role) \
         VALUES ('loaded@example.com', 'L', 'h', 'member');",
    );
    plant_dead_lock(
        &sb,
        "restore into local",
        serde_json::json!({
            "kind": "loading",
            "env": "local",
            "backup": "backup-staging-20261201-0300.sql",
            "safety": safety,
        }),
    );
    let run = next_run(&sb);
    assert_way_back_restores(&sb, &run.stderr, &before);
}

/// migrate's way back when a migration fails as it runs (a key taken
/// twice) restores the pre-migration backup, which holds a trigger the
/// database held that no migration creates: run as printed, it is
/// accepted and brings back the rows and the trigger.
#[test]
fn migrates_way_back_restores_a_hand_made_trigger_as_printed() {
    let (sb, _) = sandbox_with_a_backup();
    sb.execute_sql(HAND_MADE);
    let before = accounts_and_trigger(&sb);
    let run = migrate_failing_partway(&sb, &[]);
    assert_ne!(run.code, Some(0), "{}", run.all());
    assert_way_back_restores(&sb, &run.all(), &before);
}

/// A restore of rows an earlier restore of them put there warns that this
/// run's safety backup brings back nothing older, and its way back, on
/// stdout, is the safety backup that earlier restore took (rvCG: it was
/// this run's there, and the warning's was a second): run as printed, it
/// is accepted though that backup holds a trigger the target held that no
/// migration creates, and brings back the rows and the trigger.
#[test]
fn the_already_held_warnings_way_back_restores_a_hand_made_trigger_as_printed() {
    let (sb, name) = sandbox_with_a_backup();
    sb.execute_sql(HAND_MADE);
    sb.execute_sql(
        "INSERT INTO accounts (email, display_name, password_hash, role) \
         VALUES ('later@example.com', 'L', 'h', 'member');",
    );
    let before = accounts_and_trigger(&sb);
    let restore = || sb.xtask(&["restore", &name, "--to", "local", "--replace", "--yes"]);
    restore().assert_ok();
    let again = restore();
    again.assert_ok();
    assert!(
        again.stderr.contains("already held every row"),
        "{}",
        again.all()
    );
    assert_way_back_restores(&sb, &again.stdout, &before);
}

/// `--allow-trigger NAME` where the backup creates no trigger NAME (a
/// typo) is refused (exit 2) before anything is done, a dry run too,
/// naming the triggers it does create that no migration creates; in the
/// same refusal (exit 3) as that of a trigger no migration creates, when
/// the backup has one (MT).
#[test]
fn allow_trigger_naming_a_trigger_the_backup_lacks_is_refused() {
    let (sb, _) = sandbox_with_a_backup();
    let without = only_backup(&sb);
    sb.execute_sql(HAND_MADE);
    let with = new_backup(&sb);
    for (backup, said, code) in [(&with, "hand_made", 3), (&without, "none", 2)] {
        for dry in [true, false] {
            let mut args = vec!["restore", backup, "--to", "local", "--replace", "--yes"];
            args.extend(["--allow-trigger", "hand_mad"]);
            if dry {
                args.push("--dry-run");
            }
            let before = (accounts_and_trigger(&sb), sb.backup_files());
            let run = sb.xtask(&args);
            assert_eq!(run.code, Some(code), "{args:?}:\n{}", run.all());
            assert!(
                run.stderr
                    .contains("the backup creates no trigger hand_mad")
                    && run.stderr.contains(&format!(
                        "the triggers it creates that no migration creates: {said}"
                    )),
                "{args:?}:\n{}",
                run.all()
            );
            assert_eq!((accounts_and_trigger(&sb), sb.backup_files()), before);
        }
    }
}

/// LE: `drill` with no backup of prod and no Cloudflare credentials says
/// so in one message (not "take one with `cargo xtask backup prod`",
/// which cannot run here), and the local drill it advises runs as
/// printed, with no terminal.
#[test]
fn the_local_drill_advised_without_credentials_runs_as_printed() {
    let sb = Sandbox::new();
    sb.apply_migrations();
    sb.execute_sql(SEED_SQL);
    sb.xtask(&["backup", "local"]).assert_ok();
    let run = sb.xtask(&["drill"]);
    assert_ne!(run.code, Some(0), "{}", run.all());
    assert!(
        run.stderr.contains("no Cloudflare credentials"),
        "{}",
        run.all()
    );
    assert!(
        !run.stderr.contains("`cargo xtask backup prod`"),
        "{}",
        run.all()
    );
    let advice = advised(&run.stderr, "drill");
    assert_eq!(advice.len(), 1, "{}", run.all());
    let runs = run_each(&sb, &advice);
    runs[0].assert_ok();
}

/// LD: status's migrations line advised `cargo xtask migrate local` for a
/// migration pending as of the newest backup, which, as printed and with
/// no terminal, is refused for want of a confirmation. It carries the flag
/// that confirms it, and applies the migration.
#[test]
fn the_migrate_status_advises_for_a_pending_migration_runs_as_printed() {
    let (sb, _) = sandbox_with_a_backup();
    let later = sb.path().join("migrations/0005_later.sql");
    std::fs::write(&later, "CREATE TABLE later (id INTEGER PRIMARY KEY);").unwrap();
    let run = sb.xtask(&["status", "--env", "local"]);
    let line = run.stdout_line_with("pending as of that backup");
    let advice = advised(line, "migrate");
    assert_eq!(advice.len(), 1, "{line}");
    run_each(&sb, &advice)[0].assert_ok();
    assert!(
        sb.query("SELECT name FROM d1_migrations")[0]
            .iter()
            .any(|r| r["name"] == "0005_later.sql")
    );
}

/// LD: status's advice, with no Cloudflare credentials here, to check the
/// local database alone named `local` in a project whose local
/// environment is `dev`: as printed it fails, naming no environment the
/// project has. It names `dev`, and runs.
#[test]
fn status_without_credentials_advises_the_local_environment_by_its_name() {
    let sb = Sandbox::new();
    local_named_dev(sb.path());
    sb.apply_migrations();
    sb.xtask(&["backup", "dev"]).assert_ok();
    let run = status_without_credentials(&sb);
    let advice = advised(&run.stderr, "status --env");
    assert!(!advice.is_empty(), "{}", run.all());
    for words in &advice {
        assert_eq!(words, &["status", "--env", "dev"], "{}", run.all());
    }
    run_each(&sb, &advice[..1])[0].assert_ok();
}

/// A restore into a target that had lost one of its migrations' triggers
/// (dropped by hand) prints a way back to its safety backup, which lacks
/// the trigger too: restore refuses such a backup unless
/// `--allow-missing-trigger` names the trigger, so the way back carries it
/// and, run as printed, is accepted and puts the target back as it was
/// (it was printed without, and refused, exit 3).
#[test]
fn the_way_back_from_a_target_that_lost_a_migrations_trigger_runs_as_printed() {
    let (sb, name) = sandbox_with_a_backup();
    sb.execute_sql("DROP TRIGGER audit_log_no_delete;");
    let run = sb.xtask(&["restore", &name, "--to", "local", "--replace", "--yes"]);
    run.assert_ok();
    runs_back_without_audit_log_no_delete(&sb, &printed_restore(&run.all()));
}

/// Runs the way back `words` as printed: it is accepted, and puts back
/// the target as it was, without `audit_log_no_delete`.
#[track_caller]
fn runs_back_without_audit_log_no_delete(sb: &Sandbox, line: &str) {
    let ran = pasted(sb, line);
    assert_eq!(
        ran.code,
        Some(0),
        "the way back as printed, {line}, was not accepted:\n{}",
        ran.all()
    );
    let trigger = sb.query("SELECT name FROM sqlite_master WHERE name = 'audit_log_no_delete'");
    assert!(
        trigger[0].is_empty(),
        "the way back did not put back the target as it was:\n{}",
        ran.all()
    );
}

/// LM 1: a backup of a database that had lost one of its migrations'
/// triggers (its dump lacks `audit_log_no_delete`) is one restore refuses
/// unless `--allow-missing-trigger` names the trigger. A drill of it, which
/// restores through the same guards, failed naming the trigger and
/// advising restore's flag, which drill did not take: there was no way to
/// rehearse that restore on purpose. The drill takes the flag, with
/// restore's meaning; its failure prints the drill that rehearses the
/// restore without the trigger, which, run as printed, passes and says the
/// trigger was missing.
#[test]
fn a_drill_of_a_backup_that_lost_a_migrations_trigger_advises_a_drill_that_runs_as_printed() {
    let sb = Sandbox::new();
    sb.apply_migrations();
    sb.execute_sql(SEED_SQL);
    sb.execute_sql("DROP TRIGGER audit_log_no_delete;");
    sb.xtask(&["backup", "local"]).assert_ok();
    let run = sb.xtask(&["drill", "--to", "local", "--from", "local", "--yes"]);
    assert!(!run.ok, "{}", run.all());
    assert!(run.stderr.contains("audit_log_no_delete"), "{}", run.all());
    let advice = advised(&run.stderr, "drill ");
    assert_eq!(
        advice.len(),
        1,
        "the failure does not print the drill to run:\n{}",
        run.all()
    );
    assert!(
        advice[0]
            .windows(2)
            .any(|w| w == ["--allow-missing-trigger", "audit_log_no_delete"]),
        "{:?}\n{}",
        advice[0],
        run.all()
    );
    let ran = run_each(&sb, &advice).remove(0);
    assert_eq!(
        ran.code,
        Some(0),
        "the drill as printed, {:?}, did not pass:\n{}",
        advice[0],
        ran.all()
    );
    let said = { ran.stderr.lines() }
        .find(|l| l.contains("the restore drill passed") && l.contains("audit_log_no_delete"));
    assert!(
        said.is_some_and(|l| l.contains("--allow-missing-trigger")),
        "the drill does not say it rehearsed a restore without the trigger:\n{}",
        ran.all()
    );
    let log = std::fs::read_to_string(sb.path().join("docs/restore-drills.md")).unwrap();
    let rows: Vec<&str> = log.lines().filter(|l| l.starts_with("| 2")).collect();
    assert_eq!(rows.len(), 2, "{log}");
    assert!(rows[1].contains("| PASS |"), "{log}");
}

/// Makes local hold a trigger no migration creates (`hand_made`) and lack
/// one its migrations create (`audit_log_no_delete`, dropped by hand):
/// a restore of a backup of it needs `--allow-trigger hand_made
/// --allow-missing-trigger audit_log_no_delete`. Returns what a way back
/// must bring back.
fn hand_made_and_dropped(sb: &Sandbox) -> (Vec<String>, bool) {
    sb.execute_sql(HAND_MADE);
    sb.execute_sql("DROP TRIGGER audit_log_no_delete;");
    accounts_and_trigger(sb)
}

/// Whether a way back (its words joined) carries both names
/// [`hand_made_and_dropped`] makes a restore need.
#[track_caller]
fn assert_names_both(joined: &str, text: &str) {
    assert!(
        joined.contains("--allow-trigger hand_made")
            && joined.contains("--allow-missing-trigger audit_log_no_delete"),
        "{joined}:\n{text}"
    );
}

/// LJ: with-backup's way back after its command failed names the
/// backup it just took and verified, with the trigger names a restore of
/// it needs (taken from that verification, not by reading the dump a
/// second time): its dry run, as printed, is accepted, and run for real it
/// brings back the rows and both triggers as they were.
#[test]
fn with_backups_way_back_carries_the_trigger_names_and_restores_as_printed() {
    let (sb, _) = sandbox_with_a_backup();
    let before = hand_made_and_dropped(&sb);
    let run = sb.xtask(&["with-backup", "local", "--", "sh", "-c", "exit 1"]);
    assert_eq!(run.code, Some(1), "{}", run.all());
    let advice = advised(&run.stderr, "restore");
    assert_eq!(advice.len(), 1, "{}", run.all());
    assert_names_both(&advice[0].join(" "), &run.all());
    run_each(&sb, &advice)[0].assert_ok();
    // What the failed command left: another row, the hand-made trigger gone.
    sb.execute_sql(
        "DROP TRIGGER hand_made; INSERT INTO accounts (email, display_name, password_hash, role) \
         VALUES ('partway@example.com', 'P', 'h', 'member');",
    );
    let mut words: Vec<String> = { advice[0].iter() }
        .filter(|w| *w != "--dry-run")
        .cloned()
        .collect();
    words.push("--yes".to_owned());
    let ran = run_each(&sb, std::slice::from_ref(&words)).remove(0);
    ran.assert_ok();
    assert_eq!(accounts_and_trigger(&sb), before, "{}", ran.all());
    let dropped = sb.query("SELECT name FROM sqlite_master WHERE name = 'audit_log_no_delete'");
    assert!(dropped[0].is_empty(), "{}", ran.all());
}

/// MA: with-backup's way back after a SIGINT is the one a failure
/// prints: the interrupt does not stop the in-memory run of the
/// migrations that tells which triggers a restore needs, so it adds no
/// `--allow-*` flag the backup does not need (it named every trigger), and
/// its dry run, as printed, is accepted.
#[test]
fn with_backups_way_back_after_an_interrupt_adds_no_allow_flag_and_runs_as_printed() {
    let sb = Sandbox::new();
    sb.apply_migrations();
    let run = with_backup_interrupted_in_its_command(&sb);
    assert_eq!(run.code, Some(130), "{}", run.all());
    let advice = advised(&run.stderr, "restore");
    assert_eq!(advice.len(), 1, "{}", run.all());
    assert!(
        !advice[0].iter().any(|w| w.starts_with("--allow")),
        "{:?}\n{}",
        advice[0],
        run.all()
    );
    run_each(&sb, &advice)[0].assert_ok();
}

/// LJ: migrate's way back names the pre-migration backup it just took
/// and verified, with the trigger names a restore of it needs (taken from
/// that verification, not by reading the dump a second time): run as
/// printed, it is accepted and brings back the rows and both triggers.
#[test]
fn migrates_way_back_carries_both_trigger_names_and_restores_as_printed() {
    let (sb, _) = sandbox_with_a_backup();
    let before = hand_made_and_dropped(&sb);
    let run = migrate_failing_partway(&sb, &[]);
    assert_ne!(run.code, Some(0), "{}", run.all());
    assert_names_both(&printed_restore(&run.all()), &run.all());
    assert_way_back_restores(&sb, &run.all(), &before);
}

/// LJ: the rows-fell warning's restore names the earlier backup with the
/// trigger names a restore of it needs, read from that backup once: run
/// as printed, it is accepted and brings back the rows and both triggers.
#[test]
fn the_rows_fell_warnings_restore_carries_both_trigger_names_and_restores_as_printed() {
    let (sb, _) = sandbox_with_a_backup();
    let before = hand_made_and_dropped(&sb);
    new_backup(&sb);
    let warning = rows_fell_warning(&sb);
    let warning = warning.as_str();
    let advice = advised(warning, "restore");
    assert_eq!(advice.len(), 1, "{warning}");
    assert_names_both(&advice[0].join(" "), warning);
    let ran = run_each(&sb, &advice).remove(0);
    ran.assert_ok();
    assert_eq!(accounts_and_trigger(&sb), before, "{}", ran.all());
}

/// Two data-only backups (`flags`) of the local D1, the companies' rows
/// deleted between them: the second's rows-fell warning, and the
/// companies as they were.
fn data_only_rows_fell(flags: &[&str]) -> (Sandbox, String, Vec<Vec<serde_json::Value>>) {
    rows_fell(&[&["--data-only"][..], flags].concat())
}

/// Backs up the local D1 with `flags` with three companies, then again
/// after they are deleted; returns the sandbox, the rows-fell warning of
/// the second backup, and the companies' rows as they were.
fn rows_fell(flags: &[&str]) -> (Sandbox, String, Vec<Vec<serde_json::Value>>) {
    let sb = Sandbox::new();
    sb.apply_migrations();
    sb.execute_sql("INSERT INTO companies (name) VALUES ('Acme'), ('Bob''s'), ('Cyd');");
    let companies = sb.query("SELECT * FROM companies ORDER BY id");
    let backup = [&["-q", "backup", "local"][..], flags].concat();
    sb.xtask(&backup).assert_ok();
    sb.execute_sql("DELETE FROM companies;");
    let run = sb.xtask(&backup);
    run.assert_ok();
    let warning = { run.stderr.split("warning: ") }
        .find(|w| w.contains("companies had 3 rows and has none"))
        .unwrap_or_else(|| panic!("no rows-fell warning:\n{}", run.all()))
        .to_owned();
    (sb, warning, companies)
}

/// rvAY 6: the rows-fell warning of a whole data-only backup of the local
/// D1 advises a way back that runs as printed, each command in its order,
/// and brings the rows back. It advised `restore … --clean` alone, which a
/// local D1 with tables refuses (exit 3): a data-only backup creates no
/// table and restores only into a database with none.
#[test]
fn the_rows_fell_warning_of_a_data_only_backup_advises_a_way_back_that_runs_as_printed() {
    let (sb, warning, companies) = data_only_rows_fell(&[]);
    let printed: Vec<&str> = { warning.split('`').skip(1).step_by(2) }
        .filter(|c| c.starts_with("cargo xtask ") || c.starts_with("rm "))
        .collect();
    assert!(!printed.is_empty(), "no command printed:\n{warning}");
    for command in &printed {
        let ran = match command.strip_prefix("cargo xtask ") {
            Some(_) => run_each(&sb, &advised(&format!("`{command}`"), "")).remove(0),
            None => Run::from_output(
                std::process::Command::new("sh")
                    .args(["-c", command])
                    .current_dir(sb.path())
                    .output()
                    .unwrap(),
            ),
        };
        assert_eq!(
            ran.code,
            Some(0),
            "`{command}`, as printed in\n{warning}\nfailed:\n{}",
            ran.all()
        );
    }
    assert_eq!(
        sb.query("SELECT * FROM companies ORDER BY id"),
        companies,
        "the advice did not bring the rows back:\n{warning}"
    );
}

/// rvAY 6: the rows-fell warning of a data-only backup of chosen tables
/// (`--table companies`) advises no restore into the local D1 that
/// restore refuses: a data-only backup restores only into a database with
/// no tables, and one of chosen tables also takes --partial. It advised
/// `restore … --to local --clean`, refused (exit 3, "Pass --partial"),
/// and with --partial refused again (the local D1 is not empty). What it
/// advises instead is a new database's restore, --clean --partial.
#[test]
fn the_rows_fell_warning_of_a_data_only_backup_of_chosen_tables_advises_no_refused_restore() {
    let (sb, warning, _) = data_only_rows_fell(&["--table", "companies"]);
    for words in advised(&warning, "restore") {
        if words.iter().any(|w| w.starts_with("new:")) {
            for flag in ["--clean", "--partial"] {
                assert!(words.iter().any(|w| w == flag), "no {flag}: {words:?}");
            }
            continue;
        }
        let mut dry = words.clone();
        dry.push("--dry-run".to_owned());
        let ran = run_each(&sb, &[dry]).remove(0);
        assert_eq!(
            ran.code,
            Some(0),
            "{words:?}, as printed in\n{warning}\nis refused:\n{}",
            ran.all()
        );
    }
    assert!(warning.contains("new:"), "no way named:\n{warning}");
}

/// A target whose records name a migration that does not run here
/// (`0005_broken.sql`, recorded as applied) and that has lost one of the
/// triggers of the migrations before it: its safety backup lacks the
/// trigger, and restore's guard requires it (the broken migration no
/// longer excuses the triggers of those that ran), so the printed way
/// back carries `--allow-missing-trigger` for it (it was printed with none
/// when a migration could not be run) and, run as printed, is accepted.
#[test]
fn the_way_back_past_a_broken_migration_carries_the_missing_trigger() {
    let (sb, name) = sandbox_with_a_backup();
    let broken = add_broken_migration(&sb);
    sb.execute_sql(&format!(
        "INSERT INTO d1_migrations (name) VALUES ('{broken}'); DROP TRIGGER audit_log_no_delete;"
    ));
    let run = sb.xtask(&["restore", &name, "--to", "local", "--replace", "--yes"]);
    run.assert_ok();
    let line = printed_restore(&run.all());
    assert!(
        line.contains("--allow-missing-trigger audit_log_no_delete"),
        "the way back, {line}, does not name the trigger its backup lacks:\n{}",
        run.all()
    );
    runs_back_without_audit_log_no_delete(&sb, &line);
}

/// `migrate --json`'s `result` (in `doc`, its success or failure
/// document) holds a way back to a sealed backup with `--identity
/// KEYFILE`, a placeholder no script can run as it is: it names it, and
/// what fills it, in `way_back_placeholders`.
#[track_caller]
fn assert_keyfile_named(doc: &serde_json::Value) {
    let result = &doc["result"];
    let way_back = result["way_back"].as_str().unwrap_or_default();
    assert!(way_back.contains("--identity KEYFILE"), "{doc:#}");
    let told = result["way_back_placeholders"]["KEYFILE"].as_str();
    assert!(
        told.is_some_and(|t| t.contains("identity file")),
        "the document does not say KEYFILE must be filled, and with what:\n{doc:#}"
    );
}

/// LR: a way back to a sealed (age-encrypted) backup this run was given no
/// identity for says `--identity KEYFILE`. It printed `(KEYFILE: the
/// identity file …)` after the command on its line, which pasted whole is
/// a syntax error at `(`: the command is a line of its own, KEYFILE told
/// on another, and the line, KEYFILE filled in, runs as printed: migrate's
/// when a migration fails, and the next run's after a migrate killed
/// (whose way back was mid-sentence, as every warning's of a run gone).
/// `migrate --json`'s success and failure documents say KEYFILE must be
/// filled, and with what.
#[test]
fn a_sealed_backups_ways_back_are_lines_of_their_own_that_run_with_keyfile_filled() {
    let (sb, _) = sandbox_with_a_backup();
    let keys = tempfile::tempdir().unwrap();
    let key = keys.path().join("ops.agekey");
    sealed_local_backup(&sb, &key);
    let fill = |line: &str| line.replace("KEYFILE", key.to_str().unwrap());
    let later = sb.path().join("migrations/0005_later.sql");
    std::fs::write(&later, "CREATE TABLE later (id INTEGER PRIMARY KEY);").unwrap();
    let run = sb.xtask(&["migrate", "local", "--yes", "--json"]);
    run.assert_ok();
    assert_keyfile_named(&serde_json::from_str(&run.stdout).unwrap());
    let before = accounts_and_trigger(&sb);
    let run = migrate_failing_partway(&sb, &["--json"]);
    assert_ne!(run.code, Some(0), "{}", run.all());
    let doc: serde_json::Value = serde_json::from_str(&run.stdout).unwrap();
    assert_keyfile_named(&doc);
    let line = printed_restore(&run.stderr);
    assert!(line.contains("--identity KEYFILE"), "{}", run.all());
    assert!(
        run.stderr
            .lines()
            .any(|l| l.contains("KEYFILE") && l != line),
        "KEYFILE is not told on a line of its own:\n{}",
        run.all()
    );
    assert_way_back_restores(&sb, &fill(&run.stderr), &before);
    // A migrate killed as it applied: the next run's way back.
    let backup = doc["result"]["pre_migration_backup"].as_str().unwrap();
    let backup = std::path::Path::new(backup).file_name().unwrap();
    plant_dead_lock(
        &sb,
        "migrate local",
        serde_json::json!({ "kind": "migrating", "env": "local", "backup": backup.to_str() }),
    );
    sb.execute_sql(
        "INSERT INTO accounts (email, display_name, password_hash, role) \
         VALUES ('partway@example.com', 'P', 'h', 'member');",
    );
    let run = next_run(&sb);
    assert!(
        printed_restore(&run.stderr).contains("--identity KEYFILE"),
        "{}",
        run.all()
    );
    assert_way_back_restores(&sb, &fill(&run.stderr), &before);
}

/// The local D1's triggers, by name.
fn trigger_names_of(sb: &Sandbox) -> Vec<String> {
    let rows = sb.query("SELECT name FROM sqlite_master WHERE type = 'trigger' ORDER BY name");
    { rows[0].iter() }
        .map(|r| r["name"].as_str().unwrap_or_default().to_owned())
        .collect()
}

/// `backup`'s dump edited as a reviewer would: the statement that creates
/// the migrations' `audit_log_no_delete` cut out, and [`HAND_MADE`] (no
/// migration's) put in its place; its manifest made to match the file
/// (size and SHA-256). A restore of it needs `--allow-missing-trigger
/// audit_log_no_delete` and `--allow-trigger hand_made`, two independent
/// flags known from the same dump.
fn cut_one_trigger_and_add_another(sb: &Sandbox, backup: &str) {
    in_place_of_audit_log_no_delete(sb, backup, HAND_MADE);
}

/// `backup`'s dump with `instead` in place of the statement that creates
/// the migrations' `audit_log_no_delete`, its manifest made to match.
fn in_place_of_audit_log_no_delete(sb: &Sandbox, backup: &str, instead: &str) {
    let path = sb.backups().join(backup);
    let dump = std::fs::read_to_string(&path).unwrap();
    let start = dump
        .find("CREATE TRIGGER audit_log_no_delete ")
        .expect("the backup creates audit_log_no_delete");
    let end = start + dump[start..].find("END;").unwrap() + "END;".len();
    let dump = format!("{}{instead}{}", &dump[..start], &dump[end..]);
    std::fs::write(&path, &dump).unwrap();
    edit_manifest(sb, backup, |m| {
        m["file"]["bytes"] = dump.len().into();
        m["file"]["sha256"] = sha256_hex(dump.as_bytes()).into();
    });
}

/// That `run` was refused (exit `code`) in one round for both of the
/// triggers [`cut_one_trigger_and_add_another`] makes a restore need, naming each,
/// with nothing run (the local D1's triggers and backups/ as `before`);
/// returns the one command it prints that holds `command` (`restore`,
/// `drill `), which carries both flags.
#[track_caller]
fn refused_once_for_both(
    sb: &Sandbox,
    run: &Run,
    before: &(Vec<String>, Vec<String>),
    (command, code): (&str, i32),
) -> Vec<String> {
    assert_eq!(run.code, Some(code), "{}", run.all());
    // The error itself, not a warning before it (verify's, in a drill).
    let error = run.stderr.split_once("error:").map_or("", |(_, e)| e);
    for name in ["audit_log_no_delete", "hand_made"] {
        assert!(
            error.contains(name),
            "the refusal does not name {name}: a second round would:\n{}",
            run.all()
        );
    }
    assert_eq!(
        &(trigger_names_of(sb), sb.backup_files()),
        before,
        "{}",
        run.all()
    );
    let advice = advised(&run.stderr, command);
    assert_eq!(
        advice.len(),
        1,
        "not one {command:?} command printed:\n{}",
        run.all()
    );
    assert_names_both(&advice[0].join(" "), &run.all());
    advice.into_iter().next().unwrap()
}

/// Takes a backup of the sandbox's local D1 cut and added to as
/// [`cut_one_trigger_and_add_another`] makes it, runs `args` (the words of
/// a restore or a drill of it) refused for its triggers (exit `code`: the
/// [`refused_once_for_both`] checks), then the one command the refusal
/// prints, as printed: it succeeds, and the local D1 holds the backup's
/// triggers, the hand-made one and not the one cut.
fn refused_once_then_runs_as_printed(args: &str, (command, code): (&str, i32)) {
    let (sb, name) = sandbox_with_a_backup();
    cut_one_trigger_and_add_another(&sb, &name);
    let before = (trigger_names_of(&sb), sb.backup_files());
    let run = sb.xtask(&args.split(' ').collect::<Vec<_>>());
    let words = refused_once_for_both(&sb, &run, &before, (command, code));
    let ran = run_each(&sb, std::slice::from_ref(&words)).remove(0);
    assert_eq!(
        ran.code,
        Some(0),
        "the command as printed, {words:?}, did not succeed:\n{}",
        ran.all()
    );
    let triggers = trigger_names_of(&sb);
    assert!(
        triggers.contains(&"hand_made".to_owned())
            && !triggers.contains(&"audit_log_no_delete".to_owned()),
        "{triggers:?}:\n{}",
        ran.all()
    );
}

/// LS: a backup that lacks one of its migrations' triggers and creates
/// one no migration does was refused for the missing one alone, advising
/// `--allow-missing-trigger`; restored with it, it was refused again for
/// the other (`--allow-trigger`): two rounds. One refusal (exit 3, nothing
/// run) names both and prints one restore carrying both flags, which, run
/// as printed, restores the backup: the hand-made trigger in, the cut one
/// out.
#[test]
fn a_restore_refused_for_a_missing_and_a_foreign_trigger_prints_one_restore_that_runs() {
    let restore = "restore latest:local --to local --replace --yes";
    refused_once_then_runs_as_printed(restore, ("restore", 3));
}

/// LS: drill's failure for such a backup printed a drill carrying
/// `--allow-missing-trigger` alone, which failed again for the trigger no
/// migration makes. It prints one drill carrying both flags, which, run as
/// printed, passes, leaving the drill's target with the backup's
/// triggers.
#[test]
fn a_drill_refused_for_a_missing_and_a_foreign_trigger_prints_one_drill_that_passes() {
    let drill = "drill --to local --from local --yes";
    refused_once_then_runs_as_printed(drill, ("drill ", 1));
}

/// LX2: a database that lost one of its migrations' indexes (dropped by
/// hand) has backups restore refuses unless `--allow-schema-change` names
/// the index. A drill of one failed advising restore's flag, which drill
/// did not take; a restore with the flag printed a way back to its safety
/// backup (which lacks the index too) without it, refused as printed; and
/// the flag naming nothing the backup changes (a typo) was ignored. The
/// drill takes the flag and its failure prints the drill that passes as
/// printed; the way back carries it and is accepted as printed; a typo is
/// refused (exit 2) with nothing run.
#[test]
fn a_backup_without_a_migrations_index_is_drilled_and_restored_as_printed() {
    let sb = Sandbox::new();
    sb.apply_migrations();
    sb.execute_sql(SEED_SQL);
    sb.execute_sql("DROP INDEX company_members_by_account;");
    sb.xtask(&["backup", "local"]).assert_ok();
    let flag = ["--allow-schema-change", "company_members_by_account"];

    let before = sb.backups_held();
    let typo = sb.xtask(&[
        "restore",
        "latest:local",
        "--to",
        "local",
        "--replace",
        "--yes",
        "--allow-schema-change",
        "company_members_by_acount",
    ]);
    // Refused (3) with the backup's own refusal in one run (MT): the typo
    // alone would be bad input (2).
    assert_eq!(
        typo.code,
        Some(3),
        "a typo'd name was not refused:\n{}",
        typo.all()
    );
    assert!(
        typo.stderr.contains("company_members_by_acount")
            && typo.stderr.contains("company_members_by_account"),
        "the refusal names neither the typo nor the name to give:\n{}",
        typo.all()
    );
    assert_eq!(sb.backups_held(), before, "{}", typo.all());

    let run = sb.xtask(&["drill", "--to", "local", "--from", "local", "--yes"]);
    assert!(!run.ok, "{}", run.all());
    let advice = advised(&run.stderr, "drill ");
    assert_eq!(
        advice.len(),
        1,
        "the failure does not print the drill to run:\n{}",
        run.all()
    );
    assert!(
        advice[0].windows(2).any(|w| w == flag),
        "{:?}\n{}",
        advice[0],
        run.all()
    );
    let ran = run_each(&sb, &advice).remove(0);
    assert_eq!(
        ran.code,
        Some(0),
        "the drill as printed, {:?}, did not pass:\n{}",
        advice[0],
        ran.all()
    );

    let run = sb.xtask(&[
        "restore",
        "latest:local",
        "--to",
        "local",
        "--replace",
        "--yes",
        flag[0],
        flag[1],
    ]);
    run.assert_ok();
    let line = printed_restore(&run.all());
    assert!(line.contains(&flag.join(" ")), "{line}\n{}", run.all());
    let ran = pasted(&sb, &format!("{} --dry-run", line.trim()));
    assert_eq!(
        ran.code,
        Some(0),
        "the way back as printed, {line}, was not accepted:\n{}",
        ran.all()
    );
}

/// ME: a database that lost one of its migrations' indexes (dropped by
/// hand) has backups restore refuses unless `--allow-schema-change` names
/// the index. The way back migrate prints when a migration fails, and the
/// one with-backup prints when its command fails, each to the backup just
/// taken, must carry the flag and be accepted as printed (its dry run):
/// only restore's safety backup's way back was tested carrying it.
#[test]
fn migrates_and_with_backups_way_back_carry_allow_schema_change_and_run_as_printed() {
    let sb = Sandbox::new();
    sb.apply_migrations();
    sb.execute_sql(SEED_SQL);
    sb.execute_sql("DROP INDEX company_members_by_account;");
    let flag = "--allow-schema-change company_members_by_account";

    let run = migrate_failing_partway(&sb, &[]);
    assert_ne!(run.code, Some(0), "{}", run.all());
    let line = printed_restore(&run.all());
    assert!(line.contains(flag), "{line}\n{}", run.all());
    let ran = pasted(&sb, &format!("{} --dry-run", line.trim()));
    assert_eq!(
        ran.code,
        Some(0),
        "migrate's way back as printed, {line}, was not accepted:\n{}",
        ran.all()
    );
    std::fs::remove_file(sb.path().join("migrations/0006_twice.sql")).unwrap();

    let run = sb.xtask(&["with-backup", "local", "--", "sh", "-c", "exit 1"]);
    assert_eq!(run.code, Some(1), "{}", run.all());
    let advice = advised(&run.stderr, "restore");
    assert_eq!(advice.len(), 1, "{}", run.all());
    assert!(
        advice[0].join(" ").contains(flag),
        "{:?}\n{}",
        advice[0],
        run.all()
    );
    let ran = run_each(&sb, &advice).remove(0);
    assert_eq!(
        ran.code,
        Some(0),
        "with-backup's way back as printed, {:?}, was not accepted:\n{}",
        advice[0],
        ran.all()
    );
}

/// MF: the next run after a migrate killed prints the way back to its
/// sealed pre-migration backup, whose triggers it cannot read (it was
/// given no identity, and did not take that backup): no flag is made up
/// from what was not read, and the way back says so, and that the restore
/// names any trigger it needs allowed. Pasted with KEYFILE filled, the
/// restore does: refused (exit 3) for the hand-made trigger, naming
/// `--allow-trigger hand_made`.
#[test]
fn a_sealed_way_back_whose_triggers_were_not_read_says_the_restore_names_them() {
    let (sb, _) = sandbox_with_a_backup();
    sb.execute_sql(HAND_MADE);
    let keys = tempfile::tempdir().unwrap();
    let key = keys.path().join("ops.agekey");
    let (_, name) = sealed_local_backup(&sb, &key);
    plant_dead_lock(
        &sb,
        "migrate local",
        serde_json::json!({ "kind": "migrating", "env": "local", "backup": name }),
    );
    let run = next_run(&sb);
    let line = printed_restore(&run.stderr);
    assert!(
        line.contains("--identity KEYFILE") && !line.contains("--allow"),
        "{}",
        run.all()
    );
    assert!(
        run.stderr.contains("its triggers could not be read here")
            && run
                .stderr
                .contains("the restore names any trigger to allow"),
        "the way back does not say its triggers are unknown, and who names them:\n{}",
        run.all()
    );
    let ran = pasted(&sb, &line.replace("KEYFILE", key.to_str().unwrap()));
    assert_eq!(ran.code, Some(3), "{}", ran.all());
    assert!(
        ran.stderr.contains("--allow-trigger hand_made"),
        "{}",
        ran.all()
    );
}

/// The target's data-encryption key changed since the backups were
/// taken: `dek-other` in force, `dek-2026-01` retired.
const ANOTHER_KEY_IN_FORCE: &str = "UPDATE encryption_keys SET retired_at = '2026-11-01T00:00:00.000Z' WHERE retired_at IS NULL;\n\
     INSERT INTO encryption_keys (key_id, fingerprint) VALUES ('dek-other', 'sha256:9999');";

/// MF: a backup taken under another data-encryption key than the target
/// has in force, and needing trigger flags, was refused for the key
/// alone; restored with `--accept-key-change`, it was refused again for
/// its triggers: two rounds. One refusal (exit 3, nothing run) names the
/// key change and both triggers, and prints one restore carrying
/// `--accept-key-change` and both trigger flags, which, run as printed,
/// restores the backup.
#[test]
fn a_restore_refused_for_a_key_change_and_triggers_prints_one_restore_that_runs() {
    let (sb, name) = sandbox_with_a_backup();
    cut_one_trigger_and_add_another(&sb, &name);
    sb.execute_sql(ANOTHER_KEY_IN_FORCE);
    let before = (trigger_names_of(&sb), sb.backup_files());
    let restore = "restore latest:local --to local --replace --yes";
    let run = sb.xtask(&restore.split(' ').collect::<Vec<_>>());
    let words = refused_once_for_both(&sb, &run, &before, ("restore", 3));
    assert!(
        run.stderr.contains("dek-other") && words.iter().any(|w| w == "--accept-key-change"),
        "the one refusal does not name the key change and its flag:\n{}",
        run.all()
    );
    let ran = run_each(&sb, std::slice::from_ref(&words)).remove(0);
    assert_eq!(
        ran.code,
        Some(0),
        "the command as printed, {words:?}, did not succeed:\n{}",
        ran.all()
    );
    assert!(
        trigger_names_of(&sb).contains(&"hand_made".to_owned()),
        "{}",
        ran.all()
    );
}

/// MR 3: `status` with no Cloudflare credentials here, prod configured
/// remotely with an offsite bucket and no backup of it: the credentials
/// advice was said twice, in prod's `offsite lock` line and in its error.
/// It is said once, in the error; the line points to it.
#[test]
fn status_without_credentials_says_the_credentials_advice_once() {
    let sb = Sandbox::new();
    sb.apply_migrations();
    sb.xtask(&["backup", "local"]).assert_ok();
    let run = status_without_credentials(&sb);
    assert!(
        run.stdout.contains("offsite lock"),
        "no offsite lock line:\n{}",
        run.all()
    );
    assert_eq!(
        run.all().matches("CLOUDFLARE_API_TOKEN").count(),
        1,
        "the credentials advice said other than once:\n{}",
        run.all()
    );
}

/// MT: `restore latest:local --to local` and `extra`, refused (exit 3) in
/// one run for the key change ([`ANOTHER_KEY_IN_FORCE`]) and for each of
/// `named` (in the error itself), with the local D1 and backups/ as they
/// were; returns the one restore it prints.
#[track_caller]
fn refused_once_with_the_key(sb: &Sandbox, extra: &[&str], named: &[&str]) -> Vec<String> {
    refused_once_with_the_key_of(sb, "latest:local", extra, named)
}

/// [`refused_once_with_the_key`] of the backup `source` (a name or a path).
#[track_caller]
fn refused_once_with_the_key_of(
    sb: &Sandbox,
    source: &str,
    extra: &[&str],
    named: &[&str],
) -> Vec<String> {
    let before = (db_state(sb), sb.backup_files());
    let run = sb.xtask(&[&["restore", source, "--to", "local", "--yes"][..], extra].concat());
    assert_eq!(run.code, Some(3), "{}", run.all());
    let error = run.stderr.split_once("error:").map_or("", |(_, e)| e);
    for name in [&["dek-other"][..], named].concat() {
        assert!(
            error.contains(name),
            "the refusal does not name {name:?}: a second round would:\n{}",
            run.all()
        );
    }
    assert_eq!((db_state(sb), sb.backup_files()), before, "{}", run.all());
    let advice = advised(&run.stderr, "restore");
    assert_eq!(advice.len(), 1, "not one restore printed:\n{}", run.all());
    assert!(
        advice[0].iter().any(|w| w == "--accept-key-change"),
        "{:?}\n{}",
        advice[0],
        run.all()
    );
    advice.into_iter().next().unwrap()
}

/// MT: a backup whose dump has another body under the name of a
/// migration's trigger (no flag installs it), taken under another
/// data-encryption key than the target has in force, was refused for the
/// trigger alone; its dump fixed, it was refused again for the key. One
/// run names both, offers no command to restore it as it is, and the
/// restore it prints for once the dump is fixed carries
/// `--accept-key-change`: run as printed after the fix, it restores.
#[test]
fn a_key_change_and_another_body_under_a_migrations_trigger_are_refused_in_one_run() {
    let (sb, name) = sandbox_with_a_backup();
    let stem = name.split(".sql").next().unwrap();
    let files = [
        sb.backups().join(&name),
        sb.backups().join(format!("{stem}.manifest.json")),
    ];
    let as_taken = files.each_ref().map(|f| std::fs::read(f).unwrap());
    in_place_of_audit_log_no_delete(
        &sb,
        &name,
        "CREATE TRIGGER audit_log_no_delete BEFORE DELETE ON audit_log BEGIN SELECT 1; END;",
    );
    sb.execute_sql(ANOTHER_KEY_IN_FORCE);
    let words = refused_once_with_the_key(
        &sb,
        &["--replace"],
        &["audit_log_no_delete", "a migration gives another trigger"],
    );
    for (file, bytes) in files.iter().zip(as_taken) {
        std::fs::write(file, bytes).unwrap();
    }
    let ran = run_each(&sb, std::slice::from_ref(&words)).remove(0);
    assert_eq!(
        ran.code,
        Some(0),
        "the command as printed, {words:?}, did not restore the fixed dump:\n{}",
        ran.all()
    );
}

/// MT: `--allow-trigger` naming a trigger the backup does not create (a
/// typo of `hand_made`) was refused alone (exit 2), before the key change
/// and the triggers the backup does need flags for. One run names each,
/// and prints one restore without the typo, with `--accept-key-change`
/// and both trigger flags, which, run as printed, restores.
#[test]
fn a_key_change_and_an_allow_trigger_naming_nothing_are_refused_in_one_run() {
    let (sb, name) = sandbox_with_a_backup();
    cut_one_trigger_and_add_another(&sb, &name);
    sb.execute_sql(ANOTHER_KEY_IN_FORCE);
    let words = refused_once_with_the_key(
        &sb,
        &["--replace", "--allow-trigger", "hand_mad"],
        &["no trigger hand_mad;", "hand_made", "audit_log_no_delete"],
    );
    assert!(!words.iter().any(|w| w == "hand_mad"), "{words:?}");
    assert_names_both(&words.join(" "), "");
    let ran = run_each(&sb, std::slice::from_ref(&words)).remove(0);
    assert_eq!(ran.code, Some(0), "{words:?}:\n{}", ran.all());
    assert!(trigger_names_of(&sb).contains(&"hand_made".to_owned()));
}

/// MT: `--allow-schema-change` naming nothing the backup changes (a typo)
/// was refused alone (exit 2), before the key change. One run names both;
/// the restore it prints, without the typo, restores as printed.
#[test]
fn a_key_change_and_an_allow_schema_change_naming_nothing_are_refused_in_one_run() {
    let (sb, _) = sandbox_with_a_backup();
    sb.execute_sql(ANOTHER_KEY_IN_FORCE);
    let words = refused_once_with_the_key(
        &sb,
        &["--replace", "--allow-schema-change", "acounts"],
        &["acounts"],
    );
    assert!(!words.iter().any(|w| w == "acounts"), "{words:?}");
    let ran = run_each(&sb, std::slice::from_ref(&words)).remove(0);
    assert_eq!(ran.code, Some(0), "{words:?}:\n{}", ran.all());
}

/// MT: a target that is not empty, restored into without `--replace`,
/// was refused for that alone; with `--replace`, again for the key
/// change. One run names both, and prints one restore with `--replace`
/// (not `--into-empty`, which it was given) and `--accept-key-change`,
/// which, run as printed, restores once confirmed. The `--yes` given for
/// a restore into an empty database is not carried over (rvBQ 1: the
/// printed `--replace --yes`, pasted, dropped every table without a
/// question): run as printed with no terminal, it asks for a confirmation
/// and changes nothing; with `--yes` added, it restores.
#[test]
fn a_target_not_empty_and_a_key_change_are_refused_in_one_run() {
    let (sb, _) = sandbox_with_a_backup();
    sb.execute_sql(ANOTHER_KEY_IN_FORCE);
    let words = refused_once_with_the_key(&sb, &["--into-empty"], &["is not empty"]);
    assert!(
        words.iter().any(|w| w == "--replace") && !words.iter().any(|w| w == "--into-empty"),
        "{words:?}"
    );
    assert!(
        !words
            .iter()
            .any(|w| w == "--yes" || w.starts_with("--confirm")),
        "a confirmation given for a restore into an empty database is carried into a \
         --replace: {words:?}"
    );
    let before = db_state(&sb);
    let ran = run_each(&sb, std::slice::from_ref(&words)).remove(0);
    assert_ne!(ran.code, Some(0), "{words:?}:\n{}", ran.all());
    assert_eq!(db_state(&sb), before, "{}", ran.all());
    let confirmed = [&words[..], &["--yes".to_owned()]].concat();
    let ran = run_each(&sb, std::slice::from_ref(&confirmed)).remove(0);
    assert_eq!(ran.code, Some(0), "{confirmed:?}:\n{}", ran.all());
}

/// `--replace` printed by a gathered refusal: a confirmation given for
/// another restore is not carried into it, so run as printed with no
/// terminal it asks, and changes nothing; with `--yes` added, it restores.
#[track_caller]
fn asks_as_printed_then_restores(sb: &Sandbox, words: &[String]) {
    assert!(
        !words
            .iter()
            .any(|w| w == "--yes" || w.starts_with("--confirm")),
        "a confirmation given for another restore is carried into the one printed: {words:?}"
    );
    let before = (db_state(sb), sb.backup_files());
    let ran = run_each(sb, &[words.to_vec()]).remove(0);
    assert_ne!(ran.code, Some(0), "{words:?}:\n{}", ran.all());
    assert_eq!((db_state(sb), sb.backup_files()), before, "{}", ran.all());
    let confirmed = [words, &["--yes".to_owned()]].concat();
    let ran = run_each(sb, std::slice::from_ref(&confirmed)).remove(0);
    assert_eq!(ran.code, Some(0), "{confirmed:?}:\n{}", ran.all());
}

/// ND 1: a backup of chosen tables (the keys' table among them, whose
/// key the check compares) restored without `--partial` was
/// refused for that alone, before the key change; with `--partial`, again
/// for the key. One run names both; the restore it prints carries
/// `--partial` and `--accept-key-change` and no `--yes` (the confirmation
/// was not given for leaving the target without the rest of its data).
#[test]
fn a_partial_backup_without_partial_and_a_key_change_are_refused_in_one_run() {
    let (sb, _) = sandbox_with_a_backup();
    let whole = sb.backup_files();
    sb.xtask(&[
        "backup",
        "local",
        "--table",
        "companies",
        "--table",
        "encryption_keys",
    ])
    .assert_ok();
    let partial = { sb.backup_files().into_iter() }
        .find(|f| f.ends_with(".sql") && !whole.contains(f))
        .expect("the backup of chosen tables");
    sb.execute_sql(ANOTHER_KEY_IN_FORCE);
    let words = refused_once_with_the_key_of(&sb, &partial, &["--replace"], &["Pass --partial"]);
    assert!(words.iter().any(|w| w == "--partial"), "{words:?}");
    asks_as_printed_then_restores(&sb, &words);
}

/// ND 1: `--partial` with a whole backup was refused for that alone
/// (exit 2), before the key change. One run names both; the restore it
/// prints drops `--partial` and carries `--accept-key-change`, and no
/// `--yes`: it replaces every table, which was not what was confirmed.
#[test]
fn partial_with_a_whole_backup_and_a_key_change_are_refused_in_one_run() {
    let (sb, _) = sandbox_with_a_backup();
    sb.execute_sql(ANOTHER_KEY_IN_FORCE);
    let words = refused_once_with_the_key(&sb, &["--replace", "--partial"], &["not a partial one"]);
    assert!(!words.iter().any(|w| w == "--partial"), "{words:?}");
    asks_as_printed_then_restores(&sb, &words);
}

/// ND 1: `--previous-database-id` where it does nothing (a target that is
/// not production) was refused alone (exit 2), before the key change. One
/// run names both; the restore it prints, without the flag, restores as
/// printed: it is the restore confirmed, less a flag that did nothing.
#[test]
fn a_previous_database_id_doing_nothing_and_a_key_change_are_refused_in_one_run() {
    let (sb, _) = sandbox_with_a_backup();
    sb.execute_sql(ANOTHER_KEY_IN_FORCE);
    let words = refused_once_with_the_key(
        &sb,
        &["--replace", "--previous-database-id", "abc123"],
        &["--previous-database-id abc123 would do nothing"],
    );
    assert!(
        !words.iter().any(|w| w == "--previous-database-id"),
        "{words:?}"
    );
    let ran = run_each(&sb, std::slice::from_ref(&words)).remove(0);
    assert_eq!(ran.code, Some(0), "{words:?}:\n{}", ran.all());
}

/// ND 2: a local target not empty, restored `--via-wrangler` into an empty
/// database, one of its tables named with the text `BEGIN TRANSACTION`:
/// the one refusal printed a `--replace --via-wrangler`, which, pasted,
/// was refused in turn (wrangler's local execute would cut that text out
/// of the drops). The restore printed leaves `--via-wrangler` out, and
/// restores once confirmed.
#[test]
fn a_replace_printed_for_via_wrangler_is_not_refused_for_its_drops() {
    let (sb, _) = sandbox_with_a_backup();
    sb.execute_sql("CREATE TABLE \"x BEGIN TRANSACTION y\" (a);");
    sb.execute_sql(ANOTHER_KEY_IN_FORCE);
    let words =
        refused_once_with_the_key(&sb, &["--into-empty", "--via-wrangler"], &["is not empty"]);
    assert!(
        words.iter().any(|w| w == "--replace") && !words.iter().any(|w| w == "--via-wrangler"),
        "{words:?}"
    );
    asks_as_printed_then_restores(&sb, &words);
}

/// rvBS 2: `diff` of a hand export (no manifest) that does not load as
/// verify loads it (a NUL byte in a row, as `wrangler d1 export` writes
/// it) ended "`cargo xtask verify` on it shows the whole report", and
/// verify refused the file for want of `--no-manifest` (exit 2). The
/// verify it prints names the file and carries the flag, and runs as
/// printed: the whole report, BAD.
#[test]
fn a_diff_of_a_hand_export_that_does_not_load_advises_a_verify_that_runs_as_printed() {
    let sb = Sandbox::new();
    sb.apply_migrations();
    let backup = sb.backups().join(new_backup(&sb));
    let hand = sb.path().join("hand.sql");
    std::fs::write(
        &hand,
        "PRAGMA defer_foreign_keys=TRUE;\nCREATE TABLE notes (body TEXT);\n\
         INSERT INTO \"notes\" (\"body\") VALUES('a\0b');\n",
    )
    .unwrap();
    let run = sb.xtask(&["diff", backup.to_str().unwrap(), hand.to_str().unwrap()]);
    assert_eq!(run.code, Some(2), "{}", run.all());
    let advice = advised(&run.stderr, "verify");
    assert_eq!(advice.len(), 1, "{}", run.all());
    let verify = &run_each(&sb, &advice)[0];
    assert!(
        !verify.stderr.contains("has no manifest"),
        "{}",
        verify.all()
    );
    assert!(verify.stdout.contains("NUL byte"), "{}", verify.all());
    assert!(verify.stdout.contains("Result: BAD"), "{}", verify.all());
}

/// rvBT 1: a restore whose one refusal gathers parts that are each bad
/// input alone (`--partial` with a whole backup, `--previous-database-id`
/// where it does nothing) into an empty local D1 was exit 3, "refused by
/// a guard", though each alone is exit 2. Every part bad input: exit 2;
/// one part a guard's (the target not empty without `--replace`): exit 3.
/// Neither changes the local D1 or `backups/`.
#[test]
fn a_refusal_of_bad_input_only_is_exit_2_and_of_a_guard_too_is_exit_3() {
    let (sb, name) = sandbox_with_a_backup();
    let kept = sb.path().join("kept-wrangler");
    std::fs::rename(sb.path().join(".wrangler"), &kept).unwrap();
    let backup = format!("backups/{name}");
    let restore = |extra: &[&str]| {
        let flags = ["--partial", "--previous-database-id", "1234", "--dry-run"];
        let args = [&["restore", &backup, "--to", "local"][..], &flags, extra].concat();
        let before = (db_state(&sb), backups_bytes(&sb));
        let run = sb.xtask(&args);
        assert_eq!((db_state(&sb), backups_bytes(&sb)), before, "{}", run.all());
        for named in [
            "not a partial one",
            "--previous-database-id 1234 would do nothing",
        ] {
            assert!(run.stderr.contains(named), "{named:?}:\n{}", run.all());
        }
        run
    };
    let run = restore(&[]);
    assert_eq!(run.code, Some(2), "every part is bad input:\n{}", run.all());
    std::fs::remove_dir_all(sb.path().join(".wrangler")).unwrap();
    std::fs::rename(&kept, sb.path().join(".wrangler")).unwrap();
    let run = restore(&[]);
    assert!(run.stderr.contains("is not empty"), "{}", run.all());
    assert_eq!(run.code, Some(3), "one part is a guard's:\n{}", run.all());
}

/// Every file in `sb`'s `backups/`, by name, with its bytes.
fn backups_bytes(sb: &Sandbox) -> Vec<(String, Vec<u8>)> {
    { sb.backup_files().into_iter() }
        .filter(|n| sb.backups().join(n).is_file())
        .map(|n| (n.clone(), std::fs::read(sb.backups().join(&n)).unwrap()))
        .collect()
}

/// PD 3: the rows-fell warning of a backup of chosen tables (`backup local
/// --table companies`) advised `restore … --to local --replace --partial`,
/// whose plan drops every other table of the database and its rows
/// ("LOSES table accounts, …"). It advises a new database beside it,
/// which keeps them, and says what a `--replace --partial` would drop.
#[test]
fn the_rows_fell_warning_of_a_backup_of_chosen_tables_advises_no_restore_that_drops_the_others() {
    let (sb, warning, _) = rows_fell(&["--table", "companies"]);
    let restores = advised(&warning, "restore");
    assert!(!restores.is_empty(), "no restore advised:\n{warning}");
    for words in restores {
        if words.iter().any(|w| w.starts_with("new:")) {
            assert!(words.iter().any(|w| w == "--partial"), "{words:?}");
            continue;
        }
        let mut dry = words.clone();
        dry.push("--dry-run".to_owned());
        let plan = run_each(&sb, &[dry]).remove(0);
        assert!(
            !plan.stdout.contains("LOSES"),
            "{words:?}, advised in\n{warning}\ndrops the other tables:\n{}",
            plan.all()
        );
    }
    assert!(
        warning.contains("new:") && warning.contains("would drop"),
        "{warning}"
    );
}

/// PD 3: a `--clean` restore of a backup of chosen tables, refused for
/// recording no migrations, advised "--replace --partial" of a target
/// with tables without saying that it drops the others. It names the new
/// database that keeps them, and says what `--replace --partial` drops.
#[test]
fn a_clean_restore_of_chosen_tables_refused_says_what_replace_partial_drops() {
    let sb = Sandbox::new();
    sb.apply_migrations();
    sb.xtask(&["-q", "backup", "local", "--table", "companies"])
        .assert_ok();
    let file = only_backup(&sb);
    let run = sb.xtask(&["restore", &file, "--to", "local", "--clean", "--dry-run"]);
    assert_eq!(run.code, Some(3), "{}", run.all());
    let said = run.all();
    assert!(said.contains("records no migrations"), "{said}");
    assert!(
        said.contains("--to new:NAME --partial")
            && said.contains("--replace --partial would drop every other table"),
        "{said}"
    );
}

/// The backup files (`.sql`) in `sb`'s backups/ not among `except`.
fn backups_but(sb: &Sandbox, except: &[String]) -> Vec<String> {
    { sb.backup_files().into_iter() }
        .filter(|n| n.ends_with(".sql") && !except.contains(n))
        .collect()
}

/// A local D1, migrated, with a table `docs`, a view `docs_v` of it and
/// an FTS5 table `v_fts` whose `content=` is that view; then `sql`.
fn with_a_view_indexed(sql: &str) -> Sandbox {
    let sb = Sandbox::new();
    sb.xtask(&["migrate", "local", "--yes"]).assert_ok();
    sb.execute_sql(&format!(
        "CREATE TABLE docs(id INTEGER PRIMARY KEY, body TEXT);\n\
         CREATE VIEW docs_v AS SELECT id, body FROM docs;\n\
         CREATE VIRTUAL TABLE v_fts USING fts5(body, content='docs_v', content_rowid='id');\n{sql}"
    ));
    sb
}

/// PL 1: an FTS5 table whose `content=` is a view reads its rows from the
/// tables the view reads. `diff latest:local live:local --table v_fts`
/// was refused with advice to add `--table docs_v`, which diff and backup
/// then refuse (a view is no table). It compares the tables the view
/// reads, with a note; `backup --table v_fts` alone is refused with advice
/// that names them, which run as printed takes a backup holding the view,
/// and that backup compares with the live database and with another
/// backup. No output names `--table docs_v`.
#[test]
fn an_fts5_table_whose_content_is_a_view_is_diffed_and_backed_up_as_advised() {
    let sb = with_a_view_indexed(
        "INSERT INTO docs VALUES (1, 'alpha');\n\
         INSERT INTO v_fts(rowid, body) VALUES (1, 'alpha');\n",
    );
    // `migrate local --yes` took a backup first.
    let mut taken_before = backups_but(&sb, &[]);
    sb.xtask(&["backup", "local"]).assert_ok();
    let whole = backups_but(&sb, &taken_before);
    assert_eq!(whole.len(), 1, "{whole:?}");
    taken_before.extend(whole.iter().cloned());
    let diff = |a: &str, b: &str| sb.xtask(&["diff", a, b, "--table", "v_fts"]);
    let run = diff("latest:local", "live:local");
    assert_eq!(run.code, Some(0), "{}", run.all());
    assert!(
        run.stderr
            .contains("docs, whose rows it indexes through its content view docs_v"),
        "{}",
        run.all()
    );
    sb.execute_sql(
        "INSERT INTO docs VALUES (2, 'beta');\n\
         INSERT INTO v_fts(rowid, body) VALUES (2, 'beta');\n",
    );
    let run = diff("latest:local", "live:local");
    assert_eq!(run.code, Some(1), "{}", run.all());
    assert!(run.stdout.contains("  docs: 1 -> 2 rows"), "{}", run.all());
    assert!(!run.all().contains("--table docs_v"), "{}", run.all());

    let refused = sb.xtask(&["backup", "local", "--table", "v_fts"]);
    assert_eq!(refused.code, Some(2), "{}", refused.all());
    assert!(
        !refused.all().contains("--table docs_v"),
        "{}",
        refused.all()
    );
    // The `--table`s advised, as printed, to the same backup command.
    let flags: Vec<&str> = { refused.stderr.split('`').skip(1).step_by(2) }
        .filter(|c| c.starts_with("--table "))
        .collect();
    assert_eq!(flags.len(), 1, "{}", refused.all());
    let mut words = vec!["backup", "local"];
    words.extend(flags[0].split_whitespace());
    let taken = &sb.xtask(&words);
    taken.assert_ok();
    assert!(!taken.all().contains("--table docs_v"), "{}", taken.all());
    let chosen = backups_but(&sb, &taken_before);
    assert_eq!(chosen.len(), 1, "{chosen:?}");
    // It holds the view, so its index is rebuilt: alike the live database.
    let run = diff(&chosen[0], "live:local");
    assert_eq!(run.code, Some(0), "{}", run.all());
    let run = diff(&whole[0], &chosen[0]);
    assert_eq!(run.code, Some(1), "{}", run.all());
    assert!(run.stdout.contains("  docs: 1 -> 2 rows"), "{}", run.all());
}

/// PL: a `diff --table` that names no table lists the tables to give
/// instead; with FTS5 tables it listed their index tables (`cl_data`,
/// `v_fts_config`, …), which a live side's export refuses by name (an
/// internal table). Each `--table` listed, run as printed against the
/// live database, is compared (or said not compared), never refused.
#[test]
fn each_table_a_diff_refusal_lists_is_taken_as_printed() {
    let sb = with_a_view_indexed(
        "CREATE VIRTUAL TABLE notes USING fts5(note);\n\
         CREATE VIRTUAL TABLE cl USING fts5(x, content='');\n",
    );
    sb.xtask(&["-q", "backup", "local"]).assert_ok();
    let run = sb.xtask(&["diff", "latest:local", "live:local", "--table", "nope"]);
    assert_eq!(run.code, Some(2), "{}", run.all());
    let list = { run.stderr.split("the tables are: ").nth(1) }
        .and_then(|l| l.split(';').next())
        .unwrap_or_else(|| panic!("{}", run.all()));
    let listed: Vec<&str> = { list.split(", ") }
        .map(|t| t.trim().trim_start_matches("--table "))
        .collect();
    assert!(
        listed.contains(&"docs") && listed.contains(&"cl"),
        "{listed:?}"
    );
    for index in ["cl_data", "v_fts_config", "notes_idx", "notes_docsize"] {
        assert!(!listed.contains(&index), "{index}: {}", run.all());
    }
    for table in listed {
        let ran = sb.xtask(&["diff", "latest:local", "live:local", "--table", table]);
        assert!(!ran.stderr.contains("error:"), "{table}: {}", ran.all());
        assert!(ran.stdout.contains("Result: "), "{table}: {}", ran.all());
    }
}

/// PL: an external-content FTS5 table whose content table the database
/// does not have (`content='no_such_table'`, or renamed away): `diff
/// --table ghost_fts` against the live database was refused with a
/// backup's advice to add `--table no_such_table`, which then is refused
/// as no such table. The diff says it is not compared (no backup holds
/// its index, PV 1); `backup --table ghost_fts` is refused naming no table
/// to add.
#[test]
fn an_fts5_table_whose_content_table_is_gone_is_diffed_and_advised_no_table() {
    let sb = with_a_view_indexed(
        "CREATE VIRTUAL TABLE ghost_fts USING fts5(body, content='no_such_table');\n",
    );
    sb.xtask(&["-q", "backup", "local"]).assert_ok();
    let run = sb.xtask(&["diff", "latest:local", "live:local", "--table", "ghost_fts"]);
    // No backup holds its index: not compared, never the same (PV 1).
    assert_eq!(run.code, Some(2), "{}", run.all());
    assert!(
        run.stdout.contains("ghost_fts not compared"),
        "{}",
        run.all()
    );
    let refused = sb.xtask(&["backup", "local", "--table", "ghost_fts"]);
    assert_eq!(refused.code, Some(2), "{}", refused.all());
    assert!(
        refused.stderr.contains("does not have"),
        "{}",
        refused.all()
    );
    assert!(
        !refused.all().contains("--table no_such_table"),
        "{}",
        refused.all()
    );
}

/// `deploy ENV` in `remote`, the Pages deploy replaced by a line appended
/// to `deployed.log` (a real one needs Cloudflare).
fn deploy_on(remote: &common::remote::Remote, home: &std::path::Path, args: &[&str]) -> Run {
    let all = [&["deploy"][..], args].concat();
    let mut cmd = remote.xtask_command(home, &all);
    cmd.env("QBTIME_PAGES_DEPLOY", "echo deployed >> deployed.log");
    Run::from_output(cmd.output().unwrap())
}

/// The settings a refusal asks for in backups.toml, as printed: each
/// backticked `[table]` and the backticked `key = value` after it, with
/// the placeholders (`age1...`, `"..."`) given by `fill`.
fn settings_advised(text: &str, fill: impl Fn(&str) -> String) -> String {
    let quoted: Vec<&str> = text.split('`').skip(1).step_by(2).collect();
    let mut toml = String::new();
    for pair in quoted.windows(2) {
        if pair[0].starts_with('[') && pair[0].ends_with(']') && pair[1].contains(" = ") {
            toml.push_str(&format!("{}\n{}\n\n", pair[0], fill(pair[1])));
        }
    }
    toml
}

/// rvCM 1: `deploy staging --dry-run` (a preview branch, a migration
/// pending, staging with neither recipients nor a bucket) advised "give
/// --encrypt-to age1…" of `--require-encryption`, neither of them a flag
/// of deploy (exit 2, "unexpected argument"); given recipients, it failed
/// again for the bucket, exit 2 then. One dry run names both settings, as
/// backups.toml takes them and with no flag deploy lacks, exit 3; set as
/// printed (a key from the `keygen` it names), the dry run passes and the
/// deploy runs.
#[test]
fn a_deploy_dry_run_names_every_setting_its_backup_lacks_as_backups_toml_takes_it() {
    use common::remote::Remote;
    let remote = Remote::new("");
    let home = tempfile::tempdir().unwrap();
    remote.server.add_bucket("qbtime-staging-backups");
    let sb = &remote.sb;
    sb.git(&["checkout", "-q", "-b", "preview/x"]).assert_ok();
    let dry = ["staging", "--branch", "preview/x", "--dry-run"];
    let run = deploy_on(&remote, home.path(), &dry);
    assert_eq!(run.code, Some(3), "{}", run.all());
    let said = run.stderr.clone();
    for flag in ["--encrypt-to", "--require-encryption", "--upload"] {
        assert!(!said.contains(flag), "{flag} is no flag of deploy:\n{said}");
    }
    for setting in ["[staging.encryption]", "[staging.offsite]", "backups.toml"] {
        assert!(said.contains(setting), "{setting}:\n{said}");
    }
    // The key it names how to make, made as printed.
    let keygen = advised(&said, "keygen");
    assert_eq!(keygen.len(), 1, "{said}");
    let key = home.path().join("staging-key.txt");
    let words: Vec<String> = { keygen[0].iter() }
        .map(|w| match w.as_str() {
            "FILE" => key.display().to_string(),
            _ => w.clone(),
        })
        .collect();
    let words: Vec<&str> = words.iter().map(String::as_str).collect();
    let recipient = keygen_recipient(&remote.xtask(home.path(), &words));
    let toml = settings_advised(&said, |line| {
        line.replace("age1...", &recipient)
            .replace("\"...\"", "\"qbtime-staging-backups\"")
    });
    assert!(
        toml.contains("recipients") && toml.contains("bucket"),
        "{said}"
    );
    let settings = sb.path().join("backups.toml");
    let text = std::fs::read_to_string(&settings).unwrap();
    std::fs::write(&settings, format!("{toml}{text}")).unwrap();
    let run = deploy_on(&remote, home.path(), &dry);
    run.assert_ok();
    assert!(!sb.path().join("deployed.log").exists());
    let run = deploy_on(
        &remote,
        home.path(),
        &["staging", "--branch", "preview/x", "--yes"],
    );
    run.assert_ok();
    assert!(sb.path().join("deployed.log").exists(), "{}", run.all());
    let taken: Vec<String> = { sb.backup_files().into_iter() }
        .filter(|f| f.ends_with(".sql.zst.age"))
        .collect();
    assert_eq!(taken.len(), 1, "{:?}", sb.backup_files());
}
