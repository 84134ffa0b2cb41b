//! A tired operator's advice and refusals (KS): every command the tool
//! advises is run here as it was printed, from the tool's own output, and
//! works; a refusal names what to fix and the next step.

use crate::common;

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
    let setting = line
        .find("CLOUDFLARE_API_TOKEN")
        .unwrap_or_else(|| panic!("no setting named:\n{line}"));
    assert!(setting < advice, "{line}");
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
