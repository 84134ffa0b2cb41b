//! Runs the real, pinned wrangler's `d1 migrations list`, `d1 migrations
//! apply` and `d1 info` against the loopback server.
//!
//! Migrations go through `/query` alone: `list` and `apply` both create the
//! migrations table first (`CREATE TABLE IF NOT EXISTS d1_migrations`), then
//! read it, and `apply` sends each migration file as one request: the
//! file's text with `INSERT INTO d1_migrations (name) values ('<file>')`
//! appended, so that the migration and its record stand or fall together.

use crate::common;

use common::{ACCOUNT, Db, Project};

const UUID: &str = "5b2d0e4f-6a7b-4c8d-9e0f-1a2b3c4d5e6f";

fn project() -> Project {
    Project::new(&[Db {
        name: "app",
        uuid: UUID,
        seed: "",
    }])
}

fn write_migration(project: &Project, name: &str, sql: &str) {
    let dir = project.dir.path().join("migrations");
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(dir.join(name), sql).unwrap();
}

fn applied(project: &Project) -> Vec<(i64, String)> {
    let conn = project.open("app");
    let mut stmt = conn
        .prepare("SELECT id, name FROM d1_migrations ORDER BY id")
        .unwrap();
    stmt.query_map([], |r| Ok((r.get(0)?, r.get(1)?)))
        .unwrap()
        .collect::<Result<_, _>>()
        .unwrap()
}

fn assert_contains(haystack: &str, needle: &str) {
    assert!(
        haystack.contains(needle),
        "{needle:?} is not in:\n{haystack}"
    );
}

/// Every request went to `/query` of the served database.
fn assert_only_queries(project: &Project) {
    let query = format!("POST /client/v4/accounts/{ACCOUNT}/d1/database/{UUID}/query");
    let requests = project.server.requests();
    assert!(!requests.is_empty());
    assert!(requests.iter().all(|r| *r == query), "{requests:#?}");
}

#[test]
fn migrations_apply_then_list_reports_none_pending() {
    let project = project();
    write_migration(
        &project,
        "0001_users.sql",
        "CREATE TABLE users (id INTEGER PRIMARY KEY, name TEXT NOT NULL);\n\
         INSERT INTO users (name) VALUES ('ann');\n",
    );
    write_migration(
        &project,
        "0002_posts.sql",
        "-- Posts belong to users.\n\
         CREATE TABLE posts (id INTEGER PRIMARY KEY,\n\
             user_id INTEGER NOT NULL REFERENCES users(id), body TEXT);\n\
         CREATE INDEX posts_user ON posts(user_id);\n",
    );

    let run = project.wrangler(&["d1", "migrations", "list", "app", "--remote"]);
    run.assert_ok();
    assert_contains(&run.stdout(), "0001_users.sql");
    assert_contains(&run.stdout(), "0002_posts.sql");
    // Listing created the migrations table, empty.
    assert!(applied(&project).is_empty());

    let run = project.wrangler(&["d1", "migrations", "apply", "app", "--remote"]);
    run.assert_ok();
    // Each migration is one request: its statements and its record.
    assert_contains(&run.stdout(), "Executed 3 commands in ");

    let run = project.wrangler(&["d1", "migrations", "list", "app", "--remote"]);
    run.assert_ok();
    assert_contains(&run.stdout(), "No migrations to apply!");
    assert!(!run.stdout().contains("0001_users.sql"), "{}", run.stdout());

    let rows = applied(&project);
    assert_eq!(
        rows,
        vec![
            (1, "0001_users.sql".to_owned()),
            (2, "0002_posts.sql".to_owned())
        ]
    );
    let users: i64 = project
        .open("app")
        .query_row("SELECT count(*) FROM users", [], |r| r.get(0))
        .unwrap();
    assert_eq!(users, 1);
    assert_only_queries(&project);
    assert_eq!(project.server.unhandled(), Vec::<String>::new());
}

#[test]
fn a_failing_migration_is_not_recorded() {
    let project = project();
    write_migration(
        &project,
        "0001_a.sql",
        "CREATE TABLE a (id INTEGER PRIMARY KEY);",
    );
    write_migration(
        &project,
        "0002_b.sql",
        "CREATE TABLE b (id INTEGER PRIMARY KEY);\nINSERT INTO missing VALUES (1);\n",
    );
    let run = project.wrangler(&["d1", "migrations", "apply", "app", "--remote"]);
    run.assert_failed();
    // wrangler 4.86 named the migration ("Migration 0002_b.sql failed with
    // the following errors:"); 4.164 passes D1's error on as it came, from
    // the query that failed.
    assert_contains(&run.stderr(), "A request to the Cloudflare API");
    assert_contains(&run.stderr(), "/query) failed");
    assert_contains(
        &run.stderr(),
        "no such table: missing: SQLITE_ERROR [code: 7500]",
    );
    // The first migration stands; the second left neither its table nor
    // its record.
    assert_eq!(applied(&project), vec![(1, "0001_a.sql".to_owned())]);
    let tables: i64 = project
        .open("app")
        .query_row(
            "SELECT count(*) FROM sqlite_schema WHERE name = 'b'",
            [],
            |r| r.get(0),
        )
        .unwrap();
    assert_eq!(tables, 0);
    assert_only_queries(&project);
    assert_eq!(project.server.unhandled(), Vec::<String>::new());
}

#[test]
fn info_json_reports_the_database_and_zero_analytics() {
    let project = Project::new(&[Db {
        name: "app",
        uuid: UUID,
        seed: "CREATE TABLE t (x); CREATE TABLE u (y);",
    }]);
    let run = project.wrangler(&["d1", "info", "app", "--json"]);
    run.assert_ok();
    let info = run.json();
    assert_eq!(info["uuid"], UUID);
    assert_eq!(info["name"], "app");
    assert_eq!(info["num_tables"], 2);
    assert!(info["database_size"].as_u64().unwrap() > 0, "{info:#}");
    for field in [
        "read_queries_24h",
        "write_queries_24h",
        "rows_read_24h",
        "rows_written_24h",
    ] {
        assert_eq!(info[field], 0, "{field} in {info:#}");
    }
    // The database's details, then the analytics query.
    assert_eq!(
        project.server.requests(),
        vec![
            format!("GET /client/v4/accounts/{ACCOUNT}/d1/database/{UUID}"),
            "POST /client/v4/graphql".to_owned(),
        ]
    );
    assert_eq!(project.server.unhandled(), Vec::<String>::new());
}
