//! Real inputs that nobody here wrote, restored through the real wrangler
//! into local D1: the runbook's clean restore exactly as written.

use crate::common;

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

#[test]
fn another_apps_audit_log_is_not_qbtimes_chain_and_blocks_nothing() {
    // Another app: an audit_log of its own shape, and no [app] rules.
    let sb = Sandbox::new();
    std::fs::write(
        sb.path().join("migrations/0004_audit_log.sql"),
        "CREATE TABLE audit_log (id INTEGER PRIMARY KEY, at TEXT, actor TEXT, action TEXT);\n",
    )
    .unwrap();
    let settings = std::fs::read_to_string(sb.path().join("backups.toml")).unwrap();
    let without_app = settings.split("\n[app.").next().unwrap().to_owned();
    std::fs::write(sb.path().join("backups.toml"), without_app).unwrap();
    sb.apply_migrations();
    sb.execute_sql("INSERT INTO audit_log VALUES (1, '2026-11-30', 'me', 'sign-in');");

    sb.xtask(&["backup", "local"]).assert_ok();
    let run = sb.xtask(&["verify", "latest:local", "--json"]);
    run.assert_ok();
    let report: serde_json::Value = serde_json::from_str(&run.stdout).unwrap();
    let chain = report["checks"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["name"] == "audit chain")
        .unwrap()
        .clone();
    assert_eq!(chain["status"], "skipped", "{chain}");
    assert!(
        chain["detail"]
            .as_str()
            .unwrap()
            .contains("declares no hash chain"),
        "{chain}"
    );
    restore_replacing(&sb, "latest:local").assert_ok();
    assert_eq!(
        sb.query("SELECT count(*) AS n FROM audit_log")[0][0]["n"],
        1
    );
}

#[test]
fn the_content_digest_catches_one_changed_value_that_row_counts_miss() {
    let sb = Sandbox::new();
    sb.apply_migrations();
    sb.execute_sql(SEED_SQL);
    sb.xtask(&["backup", "local"]).assert_ok();
    let name = only_backup(&sb);
    let file = sb.backups().join(&name);
    let manifest_path = sb.backups().join(name.replace(".sql", ".manifest.json"));
    let mut manifest: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&manifest_path).unwrap()).unwrap();
    assert!(
        manifest["content"]["companies"].is_string(),
        "the backup records its content digests: {manifest:#}"
    );

    // One value changed, same length, and the manifest's checksum made to
    // match: only the content digest can tell.
    let text = std::fs::read_to_string(&file).unwrap();
    let edited = text.replacen("Acme Plumbing; Ltd.", "Acme Plumbing; Ltc.", 1);
    assert_ne!(edited, text);
    std::fs::write(&file, &edited).unwrap();
    manifest["file"]["sha256"] = sha256_hex(edited.as_bytes()).into();
    std::fs::write(&manifest_path, manifest.to_string()).unwrap();

    let run = sb.xtask(&["verify", file.to_str().unwrap(), "--no-record", "--json"]);
    assert_eq!(run.code, Some(1), "{}", run.all());
    let report: serde_json::Value = serde_json::from_str(&run.stdout).unwrap();
    let failed: Vec<&str> = report["checks"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|c| c["status"] == "fail")
        .map(|c| c["name"].as_str().unwrap())
        .collect();
    assert_eq!(failed, ["content"], "{report:#}");

    let run = restore_replacing(&sb, file.to_str().unwrap());
    assert!(!run.ok, "{}", run.all());
    assert!(
        run.stderr.contains("companies: its rows differ"),
        "{}",
        run.all()
    );
    assert!(run.stderr.contains("safety backup"), "{}", run.all());
    assert!(!run.all().contains("Ltc."), "a value was quoted");
}
