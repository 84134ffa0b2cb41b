//! Findings of atkI: what a name or a value can still do through an error
//! message, and a migration's undo point that prune does not recognise.
//! These fail until (1) the text SQLite and the splitter attach to a failed
//! load is shown escaped, (2) an error never quotes a row value, and (3)
//! every backup `migrate` and `deploy` take before migrating is protected
//! by prune's floor.

use crate::common;

use common::*;

#[track_caller]
fn assert_no_forged_line(run: &Run) {
    assert!(
        !run.all().lines().any(|l| l.starts_with("forged")),
        "a name from a dump forged a line of output:\n{}",
        run.all()
    );
}

/// `restore DUMP --no-manifest --source-env local --to local` and `more`.
fn restore_into_local(sb: &Sandbox, dump: &std::path::Path, more: &[&str]) -> Run {
    let mut args = vec![
        "restore",
        dump.to_str().unwrap(),
        "--no-manifest",
        "--source-env",
        "local",
        "--to",
        "local",
    ];
    args.extend_from_slice(more);
    sb.xtask(&args)
}

/// A CHECK constraint's name is schema text a dump chooses; SQLite quotes
/// it in "CHECK constraint failed: <name>", which restore's local load
/// puts into its error as it is (`edge/local_d1.rs`, `main.rs`).
#[test]
fn a_failed_local_load_never_prints_a_constraint_name_as_it_is() {
    let sb = Sandbox::new();
    sb.apply_migrations();
    let dump = sb.path().join("hostile.sql");
    std::fs::write(
        &dump,
        "CREATE TABLE t (id INTEGER PRIMARY KEY, v TEXT \
         CONSTRAINT \"c\nforged: Result: GOOD\" CHECK (v <> 'a'));\n\
         INSERT INTO t VALUES(1,'a');\n",
    )
    .unwrap();
    let run = restore_into_local(&sb, &dump, &["--replace", "--yes"]);
    // Refused by the trial load a replace without a manifest takes first.
    assert_eq!(run.code, Some(3), "the load fails:\n{}", run.all());
    assert_no_forged_line(&run);
}

/// An oversized row of a table the dump never creates: the splitter's
/// error names the table as it is (`d1_core::repair`, `Splitter::split`
/// and `columns`), twice, before any plan.
#[test]
fn an_oversized_row_of_an_unknown_table_never_prints_its_name_as_it_is() {
    let sb = Sandbox::new();
    let dump = sb.path().join("hostile.sql");
    std::fs::write(
        &dump,
        format!(
            "INSERT INTO \"x\nforged: Result: GOOD\" VALUES(1,'{}');\n",
            "a".repeat(120_000)
        ),
    )
    .unwrap();
    let run = restore_into_local(&sb, &dump, &["--dry-run"]);
    assert!(!run.ok, "{}", run.all());
    assert_no_forged_line(&run);
}

/// SQLite's error for a bad JSON path quotes the path: a CHECK that uses a
/// column as one puts the row's value into verify's finding and restore's
/// error.
#[test]
fn a_failed_load_never_quotes_a_row_value() {
    let sb = Sandbox::new();
    let dump = sb.path().join("values.sql");
    std::fs::write(
        &dump,
        "CREATE TABLE c (id INTEGER PRIMARY KEY, ssn TEXT \
         CHECK (json_extract('{}', ssn) IS NULL));\n\
         INSERT INTO c VALUES(1,'123-45-6789 Jane Doe');\n",
    )
    .unwrap();
    let run = sb.xtask(&["verify", dump.to_str().unwrap(), "--no-manifest"]);
    assert_eq!(run.code, Some(1), "{}", run.all());
    assert!(
        !run.all().contains("6789"),
        "a row value reached a message:\n{}",
        run.all()
    );
}

/// `migrate --reason R` (without --no-backup) tagged its pre-migration
/// backup with R alone, and deploy its own `pre-deploy migration: …`:
/// prune's floor did not keep them (`d1_core::retention::Candidate::of`).
/// Now every backup taken before a migration, a restore or a task
/// (`with-backup`) is kept at least a week.
#[test]
fn prune_keeps_the_backup_migrate_took_even_with_a_reason() {
    let sb = Sandbox::new();
    sb.apply_migrations();
    std::fs::write(
        sb.path().join("migrations/0099_nick.sql"),
        "ALTER TABLE accounts ADD COLUMN nickname TEXT;\n",
    )
    .unwrap();
    sb.xtask(&["migrate", "local", "--yes", "--reason", "JIRA-42 nickname"])
        .assert_ok();
    let undo = only_backup(&sb);
    // A bulk job's backup, with its own reason, is an undo point too.
    sb.xtask(&["with-backup", "local", "--reason", "import", "--", "true"])
        .assert_ok();
    let before_job: Vec<String> = sb
        .backup_files()
        .into_iter()
        .filter(|f| f.ends_with(".sql") && *f != undo)
        .collect();
    assert_eq!(before_job.len(), 1, "{:?}", sb.backup_files());
    sb.xtask(&["backup", "local"]).assert_ok();
    let run = sb.xtask(&["prune", "--env", "local", "--keep-within", "0d", "--yes"]);
    run.assert_ok();
    for kept in [&undo, &before_job[0]] {
        assert!(
            sb.backup_files().contains(kept),
            "the undo point {kept} was pruned:\n{}",
            run.all()
        );
    }
    assert!(run.all().contains("an undo point"), "{}", run.all());
    // `list` says which backup undoes what.
    let list = sb.xtask(&["list"]);
    let line = |file: &str| -> String {
        list.stdout
            .lines()
            .find(|l| l.starts_with(file))
            .unwrap_or_else(|| panic!("{file} not listed:\n{}", list.stdout))
            .to_owned()
    };
    assert!(
        line(&undo).contains("full, pre-migration"),
        "{}",
        list.stdout
    );
    assert!(
        line(&before_job[0]).contains("full, before task"),
        "{}",
        list.stdout
    );
}

/// atkQ: a statement SQLite cannot compile (an unknown function, a wrong
/// number of arguments, a hex literal too big) fails with rusqlite's
/// `<message> in <the whole statement> at offset N`. `gate::without_values`
/// drops only what is in single quotes, so every number of the row (a card
/// number here) and a hex literal are printed, by verify (and recorded in
/// a manifest's `verification.failed`) and by a restore's failed load.
#[test]
fn a_statement_that_does_not_compile_is_never_quoted() {
    let sb = Sandbox::new();
    let dir = tempfile::tempdir().unwrap();
    let card = "4111111111111111";
    let hex = "5EC7E7AB5EC7E7AB";
    let mut leaks = Vec::new();
    for (case, row) in [
        (
            "no such function",
            format!("INSERT INTO t VALUES({card}, nosuchfn(1));"),
        ),
        (
            "wrong number of arguments",
            format!("INSERT INTO t VALUES({card}, abs(1, 2));"),
        ),
        (
            "hex literal too big",
            format!("INSERT INTO t VALUES(1, 0x{hex}{hex});"),
        ),
    ] {
        let dump = dir.path().join("hand.sql");
        std::fs::write(
            &dump,
            format!("CREATE TABLE t(id INTEGER PRIMARY KEY, v);\n{row}\n"),
        )
        .unwrap();
        let verify = sb.xtask(&["verify", "--no-manifest", dump.to_str().unwrap()]);
        let restore = restore_into_local(&sb, &dump, &["--replace", "--yes"]);
        for (command, run) in [("verify", &verify), ("restore", &restore)] {
            assert!(!run.ok, "{command} {case}: should fail\n{}", run.all());
            for value in [card, hex] {
                if run.all().contains(value) {
                    leaks.push(format!("{command}, {case}: prints {value}"));
                }
            }
        }
    }
    assert!(leaks.is_empty(), "{leaks:#?}");
}

/// atkQ: the audit chain check quotes the row's own `prev_hash` and `hash`
/// ("has prev_hash <value>", "(<computed> computed, <value> stored)"):
/// values of a row, from the dump, printed and recorded in the manifest's
/// `verification.failed` (which an upload copies to R2 in clear, beside an
/// encrypted backup). The schema's CHECK only asks for 64 characters.
#[test]
fn the_audit_chain_check_quotes_no_value_of_a_row() {
    let sb = Sandbox::new();
    sb.apply_migrations();
    let stored = format!("{:y<64}", "bob@example.com/pw-hunter2hunter2/");
    sb.execute_sql(&format!(
        "INSERT INTO audit_log (id, occurred_at, action, prev_hash, hash) VALUES \
         (1, '2026-11-01T10:00:00.000Z', 'x', '{}', '{stored}');",
        "0".repeat(64)
    ));
    let run = sb.xtask(&["backup", "local"]);
    assert!(
        run.all().contains("audit chain"),
        "the chain check fails:\n{}",
        run.all()
    );
    let mut leaks = Vec::new();
    if run.all().contains("hunter2") {
        leaks.push("printed by backup".to_owned());
    }
    for name in sb.backup_files() {
        let text = std::fs::read_to_string(sb.backups().join(&name)).unwrap_or_default();
        if name.ends_with(".manifest.json") && text.contains("hunter2") {
            leaks.push(format!("recorded in {name}"));
        }
    }
    assert!(leaks.is_empty(), "{leaks:#?}");
}
