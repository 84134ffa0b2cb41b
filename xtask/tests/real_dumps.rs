//! Real inputs that nobody here wrote, restored through the real wrangler
//! into local D1: the runbook's clean restore exactly as written.

mod common;

use common::*;

#[test]
fn the_runbooks_clean_restore_of_a_hand_made_data_only_export_works() {
    // The runbook: `wrangler d1 export --no-schema` by hand...
    let source = Sandbox::new();
    source.apply_migrations();
    source.execute_sql(SEED_SQL);
    let data = source.path().join("data.sql");
    source
        .wrangler(&[
            "d1",
            "export",
            "qbtime_db_local",
            "--local",
            "--no-schema",
            "--output",
            data.to_str().unwrap(),
        ])
        .assert_ok();
    let text = std::fs::read_to_string(&data).unwrap();
    assert!(!text.contains("CREATE TABLE"), "not a data-only export");
    assert!(text.contains("d1_migrations"), "{text}");

    // ...then `migrations apply` and the rows, into a brand-new database.
    let target = Sandbox::new();
    let plan = target.xtask(&[
        "restore",
        data.to_str().unwrap(),
        "--to",
        "local",
        "--clean",
        "--no-manifest",
        "--dry-run",
    ]);
    plan.assert_ok();
    assert!(
        !plan.all().contains("owner@example.com"),
        "a value was quoted"
    );
    target
        .xtask(&[
            "restore",
            data.to_str().unwrap(),
            "--to",
            "local",
            "--clean",
            "--no-manifest",
            "--yes",
        ])
        .assert_ok();
    assert_eq!(target.live_row_counts(), source.live_row_counts());
    let emails = |sb: &Sandbox| sb.query("SELECT email FROM accounts ORDER BY id")[0].clone();
    assert_eq!(emails(&target), emails(&source));
}

#[test]
fn a_new_sqlite3_dump_with_unistr_restores_with_the_same_strings() {
    // sqlite3 3.50 and later write strings with control characters so.
    let dump = "PRAGMA foreign_keys=OFF;\nBEGIN TRANSACTION;\n\
        CREATE TABLE notes(id INTEGER PRIMARY KEY, body TEXT);\n\
        INSERT INTO notes VALUES(1,unistr('line one\\u000aline two\\u0009tabbed; it''s \\\\ ok'));\n\
        INSERT INTO notes VALUES(2,'plain');\n\
        COMMIT;\n";
    let sb = Sandbox::new();
    let file = sb.path().join("new-sqlite3.sql");
    std::fs::write(&file, dump).unwrap();
    let run = sb.xtask(&[
        "restore",
        file.to_str().unwrap(),
        "--to",
        "local",
        "--no-manifest",
        "--via-wrangler",
        "--yes",
    ]);
    run.assert_ok();
    assert!(
        run.stdout.contains("unistr"),
        "the plan names the repair\n{}",
        run.all()
    );
    let rows = sb.query("SELECT body FROM notes ORDER BY id");
    assert_eq!(rows[0][0]["body"], "line one\nline two\ttabbed; it's \\ ok");
    assert_eq!(rows[0][1]["body"], "plain");
}
