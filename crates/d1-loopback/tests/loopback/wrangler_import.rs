//! Runs the real, pinned wrangler's `d1 execute --remote --file`, which
//! uploads the file and has D1 import it, against the loopback server: the
//! import runs all or nothing, and its failures reach wrangler's output.

use crate::common;

use common::{ACCOUNT, Db, Project, Run, TOKEN, http};
use d1_dump::{DumpOptions, dump_sql};
use d1_loopback::Faults;

const UUID: &str = "7a1c1f5e-2d3b-4c4a-9e8f-0a1b2c3d4e5f";

/// A parent and a child table, foreign keys between them, and the
/// migrations table wrangler keeps, with one row each.
const SEED: &str = "
    CREATE TABLE parents (id INTEGER PRIMARY KEY, name TEXT NOT NULL);
    CREATE TABLE children (id INTEGER PRIMARY KEY, parent_id INTEGER NOT NULL REFERENCES parents(id));
    CREATE TABLE d1_migrations (id INTEGER PRIMARY KEY AUTOINCREMENT, name TEXT UNIQUE,
        applied_at TIMESTAMP DEFAULT CURRENT_TIMESTAMP NOT NULL);
    INSERT INTO parents VALUES (1, 'first');
    INSERT INTO children VALUES (1, 1);
    INSERT INTO d1_migrations (id, name, applied_at) VALUES (1, '0001_init.sql', '2026-01-01 00:00:00');
";

fn project() -> Project {
    Project::new(&[Db {
        name: "app",
        uuid: UUID,
        seed: SEED,
    }])
}

/// Writes `sql` to a file in the project and imports it with wrangler.
fn import(project: &Project, sql: &str) -> Run {
    let file = project.dir.path().join("import.sql");
    std::fs::write(&file, sql).unwrap();
    project.wrangler(&[
        "d1",
        "execute",
        "app",
        "--remote",
        "--file",
        file.to_str().unwrap(),
    ])
}

/// The whole database, as D1's dumper writes it.
fn dump(project: &Project) -> String {
    dump_sql(&project.open("app"), &DumpOptions::default()).unwrap()
}

/// The database's SQLite file, byte for byte.
fn file_bytes(project: &Project) -> Vec<u8> {
    std::fs::read(&project.databases[0].path).unwrap()
}

/// The database's current bookmark, asked over HTTP.
fn bookmark(project: &Project) -> String {
    let url = format!(
        "{}/accounts/{ACCOUNT}/d1/database/{UUID}/time_travel/bookmark",
        project.server.api_base_url()
    );
    http("GET", &url, Some(TOKEN), b"").json()["result"]["bookmark"]
        .as_str()
        .unwrap()
        .to_owned()
}

fn count(project: &Project, sql: &str) -> i64 {
    project
        .open("app")
        .query_row(sql, [], |r| r.get(0))
        .unwrap()
}

/// Runs an import that must fail, and checks that it changed nothing: not
/// the dump, not the SQLite file, not the bookmark. Returns wrangler's run.
fn import_fails_without_trace(project: &Project, sql: &str) -> Run {
    let (dump_before, file_before, bookmark_before) =
        (dump(project), file_bytes(project), bookmark(project));
    let run = import(project, sql);
    run.assert_failed();
    assert!(
        dump(project) == dump_before,
        "the failed import changed the data"
    );
    assert!(
        file_bytes(project) == file_before,
        "the failed import changed the SQLite file"
    );
    assert_eq!(bookmark(project), bookmark_before);
    run
}

fn assert_contains(haystack: &str, needle: &str) {
    assert!(
        haystack.contains(needle),
        "{needle:?} is not in:\n{haystack}"
    );
}

#[test]
fn remote_file_import_runs_every_statement() {
    let project = project();
    let before = bookmark(&project);
    // SQLite's own parser splits the file: semicolons in strings, comments
    // and triggers do not end statements. Two statements of 60,000 bytes
    // each fit D1's limit, which applies to one statement at a time.
    let big = "b".repeat(60_000);
    let sql = format!(
        "-- A dump-style file; with a semicolon in this comment.\n\
         PRAGMA defer_foreign_keys=TRUE;\n\
         INSERT INTO children VALUES (2, 2);\n\
         INSERT INTO parents VALUES (2, 'second; with a semicolon');\n\
         /* a block comment; */ CREATE TABLE notes (id INTEGER PRIMARY KEY, body TEXT);\n\
         CREATE TRIGGER notes_ai AFTER INSERT ON notes BEGIN SELECT 1; END;\n\
         INSERT INTO notes (body) VALUES ('{big}');\n\
         INSERT INTO notes (body) VALUES ('{big}');\n\
         INSERT INTO d1_migrations (id, name) VALUES (2, '0002_notes.sql')"
    );
    let run = import(&project, &sql);
    run.assert_ok();

    assert_eq!(count(&project, "SELECT count(*) FROM parents"), 2);
    assert_eq!(count(&project, "SELECT count(*) FROM children"), 2);
    assert_eq!(
        count(&project, "SELECT sum(length(body)) FROM notes"),
        120_000
    );
    assert_eq!(count(&project, "SELECT max(id) FROM d1_migrations"), 2);

    let stdout = run.stdout();
    assert_contains(&stdout, "Executed 8 queries in ");
    assert_contains(&stdout, "(0 rows read, 5 rows written)");
    let after = bookmark(&project);
    assert_ne!(after, before, "a successful import moves the bookmark");
    assert_contains(
        &stdout,
        &format!("Database is currently at bookmark {after}."),
    );

    // init, the upload, ingest, then one poll.
    let import_path = format!("/client/v4/accounts/{ACCOUNT}/d1/database/{UUID}/import");
    let requests: Vec<String> = project
        .server
        .requests()
        .into_iter()
        .filter(|r| !r.contains("/time_travel/"))
        .collect();
    assert_eq!(requests.len(), 4, "{requests:#?}");
    assert_eq!(requests[0], format!("POST {import_path}"));
    assert!(requests[1].starts_with("PUT /__signed/"), "{requests:#?}");
    assert_eq!(requests[2], format!("POST {import_path}"));
    assert_eq!(requests[3], format!("POST {import_path}"));
    let urls = project.server.upload_urls();
    assert_eq!(urls.len(), 1);
    assert!(urls[0].ends_with("&x-id=PutObject"), "{}", urls[0]);
    assert_eq!(project.server.unhandled(), Vec::<String>::new());
}

#[test]
fn the_same_file_again_is_not_uploaded_twice() {
    let project = project();
    let sql = "INSERT INTO parents (name) VALUES ('again');";
    import(&project, sql).assert_ok();
    let run = import(&project, sql);
    run.assert_ok();
    // D1 knows the file by its MD5 and imports it again without an upload.
    assert_contains(&run.stdout(), "File already uploaded. Processing.");
    assert_eq!(count(&project, "SELECT count(*) FROM parents"), 3);
    let puts = project
        .server
        .requests()
        .iter()
        .filter(|r| r.starts_with("PUT "))
        .count();
    assert_eq!(puts, 1);
    assert_eq!(project.server.upload_urls().len(), 1);
    assert_eq!(project.server.unhandled(), Vec::<String>::new());
}

#[test]
fn a_failing_third_statement_fails_the_import_and_leaves_no_trace() {
    let project = project();
    // The third statement names a parent table that does not exist.
    let run = import_fails_without_trace(
        &project,
        "INSERT INTO parents VALUES (2, 'second');\n\
         CREATE TABLE orphans (id INTEGER PRIMARY KEY, b_id INTEGER REFERENCES B(id));\n\
         INSERT INTO orphans VALUES (1, 1);\n\
         INSERT INTO parents VALUES (3, 'third');\n",
    );
    // wrangler prints the SQLite error as the error's headline and D1's log
    // lines as notes under it.
    let stderr = run.stderr();
    let headline = stderr
        .lines()
        .find(|line| line.contains("ERROR"))
        .expect("an error headline");
    assert_contains(headline, "no such table: main.B: SQLITE_ERROR");
    assert_contains(
        &stderr,
        "Statement 3 failed: INSERT INTO orphans VALUES (1, 1);",
    );

    // A foreign key violation with foreign keys on, and a clash with the
    // migrations already recorded, fail the same way.
    let run = import_fails_without_trace(
        &project,
        "INSERT INTO parents VALUES (2, 'second');\n\
         INSERT INTO children VALUES (2, 2);\n\
         INSERT INTO children VALUES (3, 99);\n",
    );
    assert_contains(
        &run.stderr(),
        "FOREIGN KEY constraint failed: SQLITE_CONSTRAINT",
    );
    let run = import_fails_without_trace(
        &project,
        "INSERT INTO parents VALUES (2, 'second');\n\
         INSERT INTO children VALUES (2, 2);\n\
         INSERT INTO d1_migrations (id, name) VALUES (1, '0001_init.sql');\n",
    );
    assert_contains(
        &run.stderr(),
        "UNIQUE constraint failed: d1_migrations.id: SQLITE_CONSTRAINT",
    );

    // With --json the error is JSON on stdout, the SQLite text its `text`.
    let file = project.dir.path().join("import.sql");
    let run = project.wrangler(&[
        "d1",
        "execute",
        "app",
        "--remote",
        "--file",
        file.to_str().unwrap(),
        "--json",
    ]);
    run.assert_failed();
    // Even with --json, wrangler's upload spinner writes to stdout first.
    let stdout = run.stdout();
    let json_start = stdout.find("\n{").expect("JSON after the spinner") + 1;
    let json: serde_json::Value = serde_json::from_str(&stdout[json_start..]).unwrap();
    assert_eq!(
        json["error"]["text"],
        "UNIQUE constraint failed: d1_migrations.id: SQLITE_CONSTRAINT"
    );
    assert_eq!(count(&project, "SELECT count(*) FROM parents"), 1);
    assert_eq!(project.server.unhandled(), Vec::<String>::new());
}

#[test]
fn transaction_statements_are_refused() {
    let project = project();
    let run = import_fails_without_trace(
        &project,
        "BEGIN TRANSACTION;\n\
         INSERT INTO parents VALUES (2, 'second');\n\
         COMMIT;\n",
    );
    let stderr = run.stderr();
    assert_contains(
        &stderr,
        "instead of the SQL BEGIN TRANSACTION or SAVEPOINT statements.",
    );
    assert_contains(&stderr, "Refused statement 1: BEGIN (BEGIN TRANSACTION;)");
    // A COMMIT alone is refused too.
    let run = import_fails_without_trace(
        &project,
        "INSERT INTO parents VALUES (2, 'second');\nCOMMIT;\n",
    );
    assert_contains(&run.stderr(), "Refused statement 2: COMMIT (COMMIT;)");
    assert_eq!(project.server.unhandled(), Vec::<String>::new());
}

#[test]
fn a_statement_over_100000_bytes_is_refused() {
    let project = project();
    let run = import_fails_without_trace(
        &project,
        &format!(
            "INSERT INTO parents VALUES (2, 'second');\n\
             INSERT INTO parents VALUES (3, '{}');\n",
            "x".repeat(100_000)
        ),
    );
    assert_contains(&run.stderr(), "statement too long: SQLITE_TOOBIG");
    assert_contains(
        &run.stderr(),
        "Statement 2 failed: INSERT INTO parents VALUES (3, 'xxx",
    );
    assert_eq!(project.server.unhandled(), Vec::<String>::new());
}

#[test]
fn a_failed_upload_fails_the_import() {
    let project = project();
    project.server.set_faults(Faults {
        upload_status: Some(500),
        ..Faults::default()
    });
    let run = import_fails_without_trace(&project, "INSERT INTO parents VALUES (2, 'second');");
    assert_contains(&run.stderr(), "File could not be uploaded. Please retry.");
    assert_contains(&run.stderr(), "<Code>InternalError</Code>");
    // wrangler stops after the failed upload: no ingest, no poll.
    let requests: Vec<String> = project
        .server
        .requests()
        .into_iter()
        .filter(|r| !r.contains("/time_travel/"))
        .collect();
    assert_eq!(requests.len(), 2, "{requests:#?}");
    assert!(requests[1].starts_with("PUT /__signed/"), "{requests:#?}");

    // Once R2 recovers, the retry uploads again and succeeds.
    project.server.set_faults(Faults::default());
    import(&project, "INSERT INTO parents VALUES (2, 'second');").assert_ok();
    assert_eq!(count(&project, "SELECT count(*) FROM parents"), 2);
    assert_eq!(project.server.unhandled(), Vec::<String>::new());
}

#[test]
fn a_failed_ingest_leaves_no_trace() {
    let project = project();
    project.server.set_faults(Faults {
        ingest_fail_after: Some(1),
        ..Faults::default()
    });
    let run = import_fails_without_trace(
        &project,
        "INSERT INTO parents VALUES (2, 'second');\nINSERT INTO parents VALUES (3, 'third');\n",
    );
    assert_contains(
        &run.stderr(),
        "d1-loopback injected failure: the import was stopped after 1 statements",
    );
    assert_eq!(project.server.unhandled(), Vec::<String>::new());
}
