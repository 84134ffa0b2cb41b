//! Runs the real, pinned wrangler's `--remote` code paths against the
//! loopback server.
//!
//! The pinned wrangler is installed with `npm ci` on first use.

use crate::common;

use common::{ACCOUNT, Db, Project};
use d1_dump::{DumpOptions, dump_sql};

const FIXTURE_SOURCE: &str = include_str!("../fixtures/dump_source.sql");
const FIXTURE_EXPECTED: &str = include_str!("../fixtures/dump_expected.sql");
const UUID: &str = "6f1c1f5e-2d3b-4c4a-9e8f-0a1b2c3d4e5f";

fn fixture_project() -> Project {
    Project::new(&[Db {
        name: "fixture-db",
        uuid: UUID,
        seed: FIXTURE_SOURCE,
    }])
}

#[test]
fn remote_export_is_byte_identical_to_the_rust_dump_and_the_fixture() {
    let project = fixture_project();
    let out = project.dir.path().join("export.sql");
    let run = project.wrangler(&[
        "d1",
        "export",
        "fixture-db",
        "--remote",
        "--output",
        out.to_str().unwrap(),
        "-y",
    ]);
    run.assert_ok();

    let exported = std::fs::read_to_string(&out).unwrap();
    let rust_dump = dump_sql(&project.open("fixture-db"), &DumpOptions::default()).unwrap();
    assert!(
        exported == rust_dump,
        "the remote export differs from the Rust dump"
    );
    assert!(
        exported == FIXTURE_EXPECTED,
        "the remote export differs from wrangler's local export fixture"
    );

    // wrangler polls twice (start, then collect) and downloads once, and it
    // shows the signed URL it was given.
    let urls = project.server.signed_urls();
    assert_eq!(urls.len(), 1);
    assert!(run.stdout().contains(&urls[0]), "{}", run.stdout());
    let export_path = format!("/client/v4/accounts/{ACCOUNT}/d1/database/{UUID}/export");
    let requests = project.server.requests();
    assert_eq!(requests.len(), 3, "{requests:#?}");
    assert_eq!(requests[0], format!("POST {export_path}"));
    assert_eq!(requests[1], format!("POST {export_path}"));
    assert!(requests[2].starts_with("GET /__signed/"), "{requests:#?}");
    assert_eq!(project.server.unhandled(), Vec::<String>::new());
}

#[test]
fn remote_export_honours_table_filters_and_no_data() {
    let project = fixture_project();
    let out = project.dir.path().join("export.sql");
    project
        .wrangler(&[
            "d1",
            "export",
            "fixture-db",
            "--remote",
            "--output",
            out.to_str().unwrap(),
            "--table",
            "customers",
            "--table",
            "idx_customers_name",
            "--no-data",
            "-y",
        ])
        .assert_ok();
    let exported = std::fs::read_to_string(&out).unwrap();
    let options = DumpOptions {
        no_schema: false,
        no_data: true,
        tables: vec!["customers".into(), "idx_customers_name".into()],
        lossless: false,
    };
    assert_eq!(
        exported,
        dump_sql(&project.open("fixture-db"), &options).unwrap()
    );
    assert_eq!(
        exported,
        "PRAGMA defer_foreign_keys=TRUE;\n\
         CREATE TABLE customers (id INTEGER PRIMARY KEY, name TEXT NOT NULL, \"order\" TEXT, avatar BLOB, score REAL);\n\
         CREATE UNIQUE INDEX idx_customers_name ON customers(name);"
    );
    assert_eq!(project.server.unhandled(), Vec::<String>::new());
}

#[test]
fn remote_export_of_a_virtual_table_fails_with_d1s_message() {
    let project = Project::new(&[Db {
        name: "search",
        uuid: UUID,
        seed: "CREATE TABLE plain (x); CREATE VIRTUAL TABLE docs USING fts5(body);",
    }]);
    let out = project.dir.path().join("export.sql");
    let run = project.wrangler(&[
        "d1",
        "export",
        "search",
        "--remote",
        "--output",
        out.to_str().unwrap(),
        "-y",
    ]);
    run.assert_failed();
    assert!(
        run.stderr()
            .contains("D1 Export error: cannot export databases with Virtual Tables (fts5)"),
        "{}",
        run.stderr()
    );
    assert!(!out.exists());
    assert!(project.server.signed_urls().is_empty());
    assert_eq!(project.server.unhandled(), Vec::<String>::new());
}

#[test]
fn remote_execute_json_prints_one_result_set_per_statement() {
    let project = Project::new(&[Db {
        name: "app",
        uuid: UUID,
        seed: "CREATE TABLE t (id INTEGER PRIMARY KEY, name TEXT, data BLOB, missing);\
               INSERT INTO t VALUES (1, 'a;b', X'00FF', NULL);",
    }]);
    let run = project.wrangler(&[
        "d1",
        "execute",
        "app",
        "--remote",
        "--command",
        "SELECT id, name, data, missing FROM t; PRAGMA table_list;",
        "--json",
    ]);
    run.assert_ok();
    let json = run.json();
    let sets = json.as_array().expect("an array of result sets");
    assert_eq!(sets.len(), 2, "{json:#}");
    assert_eq!(
        sets[0]["results"],
        serde_json::json!([{"id": 1, "name": "a;b", "data": [0, 255], "missing": null}])
    );
    assert_eq!(sets[0]["success"], true);
    assert_eq!(sets[0]["meta"]["changed_db"], false);
    let tables: Vec<&str> = sets[1]["results"]
        .as_array()
        .unwrap()
        .iter()
        .map(|row| row["name"].as_str().unwrap())
        .collect();
    assert!(tables.contains(&"t"), "{tables:?}");
    // wrangler sends the command whole; the server splits it.
    assert_eq!(
        project.server.requests(),
        vec![format!(
            "POST /client/v4/accounts/{ACCOUNT}/d1/database/{UUID}/query"
        )]
    );
    assert_eq!(project.server.unhandled(), Vec::<String>::new());
}

#[test]
fn remote_execute_errors_reach_the_user_and_leave_no_trace() {
    let project = Project::new(&[Db {
        name: "app",
        uuid: UUID,
        seed: "CREATE TABLE t (x);",
    }]);
    let run = project.wrangler(&[
        "d1",
        "execute",
        "app",
        "--remote",
        "--command",
        "INSERT INTO t VALUES (1); SELECT * FROM nope;",
    ]);
    run.assert_failed();
    assert!(
        run.stderr()
            .contains("no such table: nope: SQLITE_ERROR [code: 7500]"),
        "{}",
        run.stderr()
    );
    let count: i64 = project
        .open("app")
        .query_row("SELECT count(*) FROM t", [], |r| r.get(0))
        .unwrap();
    assert_eq!(count, 0, "the failed request's INSERT must be rolled back");

    // With --json the error comes out as JSON on stdout.
    let run = project.wrangler(&[
        "d1",
        "execute",
        "app",
        "--remote",
        "--command",
        "SELECT * FROM nope",
        "--json",
    ]);
    run.assert_failed();
    let json = run.json();
    assert_eq!(
        json["error"]["notes"][0]["text"],
        "no such table: nope: SQLITE_ERROR [code: 7500]"
    );
    assert_eq!(project.server.unhandled(), Vec::<String>::new());
}

#[test]
fn time_travel_info_reports_bookmarks_that_move_with_writes() {
    let project = Project::new(&[Db {
        name: "app",
        uuid: UUID,
        seed: "CREATE TABLE t (x);",
    }]);
    let info = |extra: &[&str]| {
        let mut args = vec!["d1", "time-travel", "info", "app", "--json"];
        args.extend_from_slice(extra);
        let run = project.wrangler(&args);
        run.assert_ok();
        run.json()["bookmark"]
            .as_str()
            .expect("a bookmark string")
            .to_owned()
    };
    let before = info(&[]);
    assert_eq!(before.len(), 59, "{before}");
    project
        .wrangler(&[
            "d1",
            "execute",
            "app",
            "--remote",
            "--command",
            "INSERT INTO t VALUES (1)",
        ])
        .assert_ok();
    let after = info(&[]);
    assert!(after > before, "{after} should sort after {before}");

    // A timestamp from before the server started maps to its first state.
    let a_minute_ago = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs()
        - 60;
    assert_eq!(info(&["--timestamp", &a_minute_ago.to_string()]), before);

    // `time-travel info` checks the database is not an alpha one first.
    let requests = project.server.requests();
    assert_eq!(
        requests[0],
        format!("GET /client/v4/accounts/{ACCOUNT}/d1/database/{UUID}")
    );
    assert_eq!(
        requests[1],
        format!("GET /client/v4/accounts/{ACCOUNT}/d1/database/{UUID}/time_travel/bookmark?")
    );
    assert!(
        requests
            .last()
            .unwrap()
            .contains("/time_travel/bookmark?timestamp="),
        "{requests:#?}"
    );
    assert_eq!(project.server.unhandled(), Vec::<String>::new());
}

#[test]
fn time_travel_restore_brings_back_a_bookmark_and_can_be_undone() {
    let project = Project::new(&[Db {
        name: "app",
        uuid: UUID,
        seed: "CREATE TABLE t (x); INSERT INTO t VALUES (1);",
    }]);
    let bookmark_url = format!(
        "{}/accounts/{ACCOUNT}/d1/database/{UUID}/time_travel/bookmark",
        project.server.api_base_url()
    );
    let current_bookmark = || {
        common::http("GET", &bookmark_url, Some(common::TOKEN), b"").json()["result"]["bookmark"]
            .as_str()
            .unwrap()
            .to_owned()
    };
    let rows = || -> Vec<i64> {
        let conn = project.open("app");
        let mut stmt = conn.prepare("SELECT x FROM t ORDER BY x").unwrap();
        stmt.query_map([], |r| r.get(0))
            .unwrap()
            .collect::<Result<_, _>>()
            .unwrap()
    };
    let early = current_bookmark();
    project
        .wrangler(&[
            "d1",
            "execute",
            "app",
            "--remote",
            "--command",
            "INSERT INTO t VALUES (2); DELETE FROM t WHERE x = 1;",
        ])
        .assert_ok();
    let late = current_bookmark();
    assert_eq!(rows(), [2]);

    let restore = |bookmark: &str| {
        let run = project.wrangler(&[
            "d1",
            "time-travel",
            "restore",
            "app",
            "--bookmark",
            bookmark,
            "--json",
        ]);
        run.assert_ok();
        run.json()
    };
    let restored = restore(&early);
    assert_eq!(restored["bookmark"], early.as_str(), "{restored:#}");
    assert_eq!(restored["previous_bookmark"], late.as_str(), "{restored:#}");
    assert_eq!(rows(), [1]);

    // The previous bookmark undoes the restore.
    let undone = restore(&late);
    assert_eq!(undone["bookmark"], late.as_str(), "{undone:#}");
    assert_ne!(undone["previous_bookmark"], late.as_str());
    assert_eq!(rows(), [2]);

    // With --timestamp wrangler asks for the bookmark first; a minute ago
    // is before the server started, so it names the first state.
    let a_minute_ago = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs()
        - 60;
    let run = project.wrangler(&[
        "d1",
        "time-travel",
        "restore",
        "app",
        "--timestamp",
        &a_minute_ago.to_string(),
        "--json",
    ]);
    run.assert_ok();
    assert_eq!(run.json()["bookmark"], early.as_str());
    assert_eq!(rows(), [1]);

    let restores = project.server.time_travel_restores();
    assert_eq!(restores.len(), 3);
    assert_eq!(restores[0].database_uuid, UUID);
    assert_eq!(restores[0].bookmark, early);
    assert_eq!(restores[0].previous_bookmark, late);
    assert_eq!(restores[1].bookmark, late);
    assert_eq!(restores[2].bookmark, early);
    let restore_request =
        format!("POST /client/v4/accounts/{ACCOUNT}/d1/database/{UUID}/time_travel/restore");
    assert!(
        project
            .server
            .requests()
            .contains(&format!("{restore_request}?bookmark={early}")),
        "{:#?}",
        project.server.requests()
    );
    assert_eq!(project.server.unhandled(), Vec::<String>::new());
}

#[test]
fn time_travel_restore_of_an_unknown_bookmark_fails_and_changes_nothing() {
    let project = Project::new(&[Db {
        name: "app",
        uuid: UUID,
        seed: "CREATE TABLE t (x); INSERT INTO t VALUES (1);",
    }]);
    let unknown = "00000099-00000000-00000000-0123456789abcdef0123456789abcdef";
    let run = project.wrangler(&[
        "d1",
        "time-travel",
        "restore",
        "app",
        "--bookmark",
        unknown,
        "--json",
    ]);
    run.assert_failed();
    let output = format!("{}{}", run.stdout(), run.stderr());
    assert!(output.contains(unknown), "{output}");
    let count: i64 = project
        .open("app")
        .query_row("SELECT count(*) FROM t", [], |r| r.get(0))
        .unwrap();
    assert_eq!(count, 1);
    assert!(project.server.time_travel_restores().is_empty());
    assert_eq!(project.server.unhandled(), Vec::<String>::new());
}

#[test]
fn wrong_token_is_refused() {
    let project = fixture_project();
    let out = project.dir.path().join("export.sql");
    let run = project.wrangler_with_token(
        "not-the-token",
        &[
            "d1",
            "export",
            "fixture-db",
            "--remote",
            "--output",
            out.to_str().unwrap(),
            "-y",
        ],
    );
    run.assert_failed();
    assert!(
        run.stderr().contains("Authentication error [code: 10000]"),
        "{}",
        run.stderr()
    );
    assert!(!out.exists());
    assert!(project.server.signed_urls().is_empty());
    // wrangler follows an authentication error with its `whoami` report;
    // the server answers that too.
    assert_eq!(project.server.unhandled(), Vec::<String>::new());
}

#[test]
fn list_pages_until_a_short_page() {
    let names: Vec<String> = (0..12).map(|i| format!("db-{i:02}")).collect();
    let uuids: Vec<String> = (0..12)
        .map(|i| format!("00000000-0000-4000-8000-{i:012}"))
        .collect();
    let dbs: Vec<Db<'_>> = names
        .iter()
        .zip(&uuids)
        .map(|(name, uuid)| Db {
            name,
            uuid,
            seed: "",
        })
        .collect();
    let project = Project::new(&dbs);
    let run = project.wrangler(&["d1", "list", "--json"]);
    run.assert_ok();
    let listed: Vec<String> = run
        .json()
        .as_array()
        .unwrap()
        .iter()
        .map(|db| db["name"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(listed, names);
    let list = format!("GET /client/v4/accounts/{ACCOUNT}/d1/database");
    assert_eq!(
        project.server.requests(),
        vec![
            format!("{list}?per_page=10&page=1"),
            format!("{list}?per_page=10&page=2"),
        ]
    );
    assert_eq!(project.server.unhandled(), Vec::<String>::new());
}

/// Redoes the fixture with the real local wrangler, whose miniflare runs the
/// original TypeScript `dumpSql`. Set `D1_LOOPBACK_BLESS=1` to rewrite
/// `fixtures/dump_expected.sql` from it instead of comparing.
#[test]
fn local_wrangler_export_matches_fixture() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("wrangler.toml"),
        "name = \"fixture\"\ncompatibility_date = \"2026-04-01\"\n\n\
         [[d1_databases]]\nbinding = \"DB\"\ndatabase_name = \"x\"\n\
         database_id = \"00000000-0000-4000-8000-000000000000\"\n",
    )
    .unwrap();
    let fixtures = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures");
    let mut execute = common::wrangler_command(dir.path());
    execute.args(["d1", "execute", "x", "--local", "--file"]);
    execute.arg(fixtures.join("dump_source.sql"));
    common::run(execute).assert_ok();
    let out = dir.path().join("out.sql");
    let mut export = common::wrangler_command(dir.path());
    export.args(["d1", "export", "x", "--local", "--output"]);
    export.arg(&out);
    export.arg("-y");
    common::run(export).assert_ok();
    let local = std::fs::read_to_string(&out).unwrap();
    if std::env::var_os("D1_LOOPBACK_BLESS").is_some() {
        std::fs::write(fixtures.join("dump_expected.sql"), &local).unwrap();
        return;
    }
    assert!(
        local == FIXTURE_EXPECTED,
        "wrangler's local export no longer matches fixtures/dump_expected.sql; \
         rerun with D1_LOOPBACK_BLESS=1 if that is expected\n--- local ---\n{local}"
    );
}

#[test]
fn d1_create_serves_a_new_database_refuses_a_used_name_and_d1_delete_removes_it() {
    let project = fixture_project();
    let before = std::fs::read_to_string(project.dir.path().join("wrangler.toml")).unwrap();
    let run = project.wrangler(&["d1", "create", "brand-new", "--location", "weur"]);
    run.assert_ok();
    // wrangler prints the snippet with the new id, and leaves the config alone.
    let listed = project.wrangler(&["d1", "list", "--json"]).json();
    let new = listed
        .as_array()
        .unwrap()
        .iter()
        .find(|db| db["name"] == "brand-new")
        .unwrap_or_else(|| panic!("{listed}"))
        .clone();
    let uuid = new["uuid"].as_str().unwrap();
    assert!(run.stdout().contains(uuid), "{}", run.stdout());
    assert_eq!(
        std::fs::read_to_string(project.dir.path().join("wrangler.toml")).unwrap(),
        before
    );
    assert_eq!(project.server.database_names(), ["fixture-db", "brand-new"]);

    // The new database answers queries by its id, and starts empty.
    let info = project
        .wrangler(&["d1", "info", "brand-new", "--json"])
        .json();
    assert_eq!(info["uuid"], uuid, "{info}");
    assert_eq!(info["num_tables"], 0, "{info}");

    // A name in use is refused with D1's code, which wrangler words itself.
    let again = project.wrangler(&["d1", "create", "brand-new"]);
    again.assert_failed();
    assert!(
        again.stderr().contains("already exists") || again.stdout().contains("already exists"),
        "{}",
        again.stderr()
    );
    assert_eq!(project.server.database_names(), ["fixture-db", "brand-new"]);

    project
        .wrangler(&["d1", "delete", "brand-new", "--skip-confirmation"])
        .assert_ok();
    assert_eq!(project.server.database_names(), ["fixture-db"]);
    assert_eq!(project.server.unhandled(), Vec::<String>::new());
}
