//! Exercises the server over plain HTTP, for behaviour wrangler does not
//! reach on its own: refusals, unknown routes and the export protocol's
//! corners.

use crate::common;

use common::{ACCOUNT, Db, Project, TOKEN, http};
use d1_dump::{DumpOptions, dump_sql};

const UUID: &str = "11111111-2222-4333-8444-555555555555";

fn project() -> Project {
    Project::new(&[Db {
        name: "app",
        uuid: UUID,
        seed: "CREATE TABLE t (id INTEGER PRIMARY KEY, v TEXT); INSERT INTO t VALUES (1, 'one');",
    }])
}

fn db_url(project: &Project, rest: &str) -> String {
    format!(
        "{}/accounts/{ACCOUNT}/d1/database/{UUID}{rest}",
        project.server.api_base_url()
    )
}

#[test]
fn api_requests_need_the_token() {
    let project = project();
    let url = db_url(&project, "");
    for token in [None, Some("wrong")] {
        let response = http("GET", &url, token, b"");
        assert_eq!(response.status, 403);
        assert_eq!(
            response.text(),
            r#"{"success":false,"errors":[{"code":10000,"message":"Authentication error"}],"messages":[],"result":null}"#
        );
    }
    let response = http("GET", &url, Some(TOKEN), b"");
    assert_eq!(response.status, 200);
    let info = response.json();
    assert_eq!(info["success"], true);
    assert_eq!(info["result"]["uuid"], UUID);
    assert_eq!(info["result"]["name"], "app");
    assert_eq!(info["result"]["version"], "production");
    assert_eq!(info["result"]["num_tables"], 1);
    assert_eq!(info["result"]["running_in_region"], "WNAM");
    assert!(info["result"]["file_size"].as_u64().unwrap() > 0);
    assert_eq!(project.server.unhandled(), Vec::<String>::new());
}

#[test]
fn unknown_routes_are_answered_404_and_recorded() {
    let project = project();
    let base = project.server.api_base_url();
    let response = http("GET", &format!("{base}/zones?x=1"), Some(TOKEN), b"");
    assert_eq!(response.status, 404);
    assert_eq!(response.json()["errors"][1]["code"], 7000);
    // The right path with the wrong method is not a route either.
    // (DELETE is `wrangler d1 delete`'s route now; PUT is no route.)
    let response = http("PUT", &db_url(&project, ""), Some(TOKEN), b"");
    assert_eq!(response.status, 404);
    assert_eq!(
        project.server.unhandled(),
        vec![
            "GET /client/v4/zones?x=1".to_owned(),
            format!("PUT /client/v4/accounts/{ACCOUNT}/d1/database/{UUID}"),
        ]
    );
    assert_eq!(project.server.requests().len(), 2);
}

#[test]
fn unknown_databases_and_accounts_are_404() {
    let project = project();
    let base = project.server.api_base_url();
    let other = "99999999-2222-4333-8444-555555555555";
    let response = http(
        "GET",
        &format!("{base}/accounts/{ACCOUNT}/d1/database/{other}"),
        Some(TOKEN),
        b"",
    );
    assert_eq!(response.status, 404);
    let json = response.json();
    assert_eq!(json["success"], false);
    assert_eq!(json["errors"][0]["code"], 7404);
    assert_eq!(
        json["errors"][0]["message"],
        format!("The database {other} could not be found")
    );
    let response = http(
        "GET",
        &format!("{base}/accounts/someone-else/d1/database"),
        Some(TOKEN),
        b"",
    );
    assert_eq!(response.status, 404);
    assert_eq!(response.json()["success"], false);
    assert_eq!(project.server.unhandled(), Vec::<String>::new());
}

#[test]
fn query_answers_one_result_per_statement_and_400_on_errors() {
    let project = project();
    let url = db_url(&project, "/query");
    let body = serde_json::json!({
        "sql": "INSERT INTO t (v) VALUES (?); SELECT id, v FROM t ORDER BY id",
        "params": ["two"],
    });
    let response = http("POST", &url, Some(TOKEN), body.to_string().as_bytes());
    assert_eq!(response.status, 200);
    assert_eq!(response.header("content-type"), Some("application/json"));
    let json = response.json();
    let results = json["result"].as_array().unwrap();
    assert_eq!(results.len(), 2);
    assert_eq!(results[0]["meta"]["changes"], 1);
    assert_eq!(results[0]["meta"]["last_row_id"], 2);
    assert_eq!(results[0]["meta"]["changed_db"], true);
    assert_eq!(
        results[1]["results"],
        serde_json::json!([{"id": 1, "v": "one"}, {"id": 2, "v": "two"}])
    );
    // The columns keep the query's order, not an alphabetical one.
    assert!(response.text().contains(r#"{"id":2,"v":"two"}"#));

    let body = serde_json::json!({"sql": "SELECT nope FROM t"});
    let response = http("POST", &url, Some(TOKEN), body.to_string().as_bytes());
    assert_eq!(response.status, 400);
    assert_eq!(
        response.text(),
        r#"{"success":false,"errors":[{"code":7500,"message":"no such column: nope: SQLITE_ERROR"}],"messages":[],"result":null}"#
    );

    let long = serde_json::json!({"sql": format!("SELECT '{}'", "x".repeat(100_000))});
    let response = http("POST", &url, Some(TOKEN), long.to_string().as_bytes());
    assert_eq!(response.status, 400);
    assert_eq!(
        response.json()["errors"][0]["message"],
        "statement too long: SQLITE_TOOBIG"
    );

    let response = http("POST", &url, Some(TOKEN), b"not json");
    assert_eq!(response.status, 400);
    assert_eq!(project.server.unhandled(), Vec::<String>::new());
}

/// Posts to `/export` and returns the envelope's `result`.
fn export(project: &Project, current_bookmark: Option<&str>) -> serde_json::Value {
    let body = serde_json::json!({
        "output_format": "polling",
        "dump_options": {"no_schema": false, "no_data": false, "tables": []},
        "current_bookmark": current_bookmark,
    });
    let response = http(
        "POST",
        &db_url(project, "/export"),
        Some(TOKEN),
        body.to_string().as_bytes(),
    );
    assert_eq!(response.status, 200, "{}", response.text());
    let json = response.json();
    assert_eq!(json["success"], true);
    json["result"].clone()
}

#[test]
fn export_is_pinned_to_the_bookmark_of_its_first_call() {
    let project = project();
    let before = dump_sql(&project.open("app"), &DumpOptions::default()).unwrap();

    let first = export(&project, None);
    assert_eq!(first["success"], true);
    assert_eq!(first["status"], "active");
    let bookmark = first["at_bookmark"].as_str().unwrap().to_owned();
    assert!(
        first["messages"][0]
            .as_str()
            .unwrap()
            .starts_with("Generating ")
    );

    // A write between the polls does not leak into the export.
    project
        .open("app")
        .execute("INSERT INTO t VALUES (9, 'late')", [])
        .unwrap();

    let done = export(&project, Some(&bookmark));
    assert_eq!(done["status"], "complete");
    assert_eq!(done["at_bookmark"], bookmark.as_str());
    let url = done["result"]["signed_url"].as_str().unwrap().to_owned();
    let filename = done["result"]["filename"].as_str().unwrap();
    assert!(filename.ends_with(".sql"), "{filename}");
    assert!(url.starts_with("http://127.0.0.1:"), "{url}");
    assert!(url.contains("X-Amz-Algorithm=AWS4-HMAC-SHA256"), "{url}");
    assert_eq!(project.server.signed_urls(), vec![url.clone()]);

    // The signed URL needs no token, and serves the dump as it was.
    let download = http("GET", &url, None, b"");
    assert_eq!(download.status, 200);
    assert_eq!(
        download.header("content-type"),
        Some("application/octet-stream")
    );
    assert_eq!(download.text(), before);

    // A tampered signature or an unknown token is refused, S3-style.
    let tampered = url.replace("X-Amz-Signature=", "X-Amz-Signature=0");
    let refused = http("GET", &tampered, None, b"");
    assert_eq!(refused.status, 403);
    assert!(
        refused
            .text()
            .contains("<Code>SignatureDoesNotMatch</Code>")
    );
    let origin = url.split("/__signed/").next().unwrap();
    let refused = http("GET", &format!("{origin}/__signed/nope/x.sql"), None, b"");
    assert_eq!(refused.status, 403);
    assert!(refused.text().contains("<Code>AccessDenied</Code>"));

    // The export was collected: polling its bookmark again, now that the
    // database has moved on, is an export error.
    let again = export(&project, Some(&bookmark));
    assert_eq!(again["status"], "error");
    assert!(again["error"].as_str().unwrap().contains(&bookmark));
    assert_eq!(project.server.unhandled(), Vec::<String>::new());
}

#[test]
fn bookmarks_answer_for_now_and_for_a_timestamp() {
    let project = project();
    let url = db_url(&project, "/time_travel/bookmark");
    let now = http("GET", &format!("{url}?"), Some(TOKEN), b"").json();
    let bookmark = now["result"]["bookmark"].as_str().unwrap();
    let then = http(
        "GET",
        &format!("{url}?timestamp=2020-01-01T00%3A00%3A00.000Z"),
        Some(TOKEN),
        b"",
    )
    .json();
    assert_eq!(then["result"]["bookmark"], bookmark);
    let bad = http(
        "GET",
        &format!("{url}?timestamp=yesterday"),
        Some(TOKEN),
        b"",
    );
    assert_eq!(bad.status, 400);
    assert_eq!(project.server.unhandled(), Vec::<String>::new());
}

#[test]
fn dropping_the_server_stops_it() {
    let project = project();
    let base = project.server.api_base_url();
    let addr = base
        .trim_start_matches("http://")
        .split('/')
        .next()
        .unwrap()
        .to_owned();
    drop(project);
    // tiny_http closes its listening socket on its own thread, soon after.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(5);
    while std::net::TcpStream::connect(&addr).is_ok() {
        assert!(
            std::time::Instant::now() < deadline,
            "the server still accepts connections"
        );
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
}

/// Posts one `/import` action and returns the envelope's `result`.
fn import_action(project: &Project, body: serde_json::Value) -> serde_json::Value {
    let response = http(
        "POST",
        &db_url(project, "/import"),
        Some(TOKEN),
        body.to_string().as_bytes(),
    );
    assert_eq!(response.status, 200, "{}", response.text());
    response.json()["result"].clone()
}

fn md5_hex(bytes: &[u8]) -> String {
    use md5::Digest as _;
    md5::Md5::digest(bytes)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

#[test]
fn import_protocol_corners() {
    let project = project();
    let sql = b"INSERT INTO t (v) VALUES ('two');\nINSERT INTO t (v) VALUES ('three');\n";
    let etag = md5_hex(sql);

    // A poll for no import is refused with D1's words.
    let answer = import_action(
        &project,
        serde_json::json!({"action": "poll", "current_bookmark": "nope"}),
    );
    assert_eq!(answer["success"], false);
    assert_eq!(answer["error"], "Not currently importing anything.");

    // init hands out an upload URL and a filename.
    let init = import_action(
        &project,
        serde_json::json!({"action": "init", "etag": etag}),
    );
    let upload_url = init["upload_url"].as_str().unwrap().to_owned();
    let filename = init["filename"].as_str().unwrap().to_owned();
    assert!(upload_url.contains("/__signed/"), "{upload_url}");
    assert_eq!(project.server.upload_urls(), vec![upload_url.clone()]);

    // Ingesting before uploading is refused.
    let ingest = serde_json::json!({"action": "ingest", "etag": etag, "filename": filename});
    let answer = import_action(&project, ingest.clone());
    assert_eq!(answer["success"], false);
    assert!(
        answer["error"]
            .as_str()
            .unwrap()
            .contains("has been uploaded")
    );

    // A tampered URL is refused as R2 refuses it, without the API token.
    let tampered = upload_url.replace("X-Amz-Signature=", "X-Amz-Signature=0");
    let response = http("PUT", &tampered, None, sql);
    assert_eq!(response.status, 403);
    assert!(response.text().contains("SignatureDoesNotMatch"));

    // R2 takes whatever is uploaded and answers with its MD5; ingesting a
    // file whose MD5 is not the etag is refused.
    let response = http("PUT", &upload_url, None, b"SELECT 'other';");
    assert_eq!(response.status, 200);
    let other = format!("\"{}\"", md5_hex(b"SELECT 'other';"));
    assert_eq!(response.header("ETag"), Some(other.as_str()));
    let answer = import_action(&project, ingest.clone());
    assert_eq!(answer["success"], false);
    assert!(answer["error"].as_str().unwrap().contains("not the etag"));

    // The right file: its MD5 comes back quoted, as the ETag.
    let response = http("PUT", &upload_url, None, sql);
    assert_eq!(response.status, 200);
    assert_eq!(
        response.header("ETag"),
        Some(format!("\"{etag}\"").as_str())
    );

    // ingest answers "active" with the bookmark the import started from;
    // the poll brings the outcome.
    let before = bookmark(&project);
    let answer = import_action(&project, ingest);
    assert_eq!(answer["success"], true);
    assert_eq!(answer["type"], "import");
    assert_eq!(answer["status"], "active");
    assert_eq!(answer["at_bookmark"], before);
    let poll = serde_json::json!({"action": "poll", "current_bookmark": before});
    let answer = import_action(&project, poll.clone());
    assert_eq!(answer["status"], "complete", "{answer:#}");
    assert_eq!(answer["result"]["num_queries"], 2);
    assert_eq!(answer["result"]["meta"]["rows_written"], 2);
    assert_eq!(answer["result"]["final_bookmark"], bookmark(&project));
    assert_ne!(bookmark(&project), before);
    // A late poll gets the same outcome, without the log lines it had.
    let again = import_action(&project, poll);
    assert_eq!(again["status"], "complete");
    assert_eq!(again["messages"], serde_json::json!([]));

    // init for a file already uploaded starts importing it at once.
    let answer = import_action(
        &project,
        serde_json::json!({"action": "init", "etag": etag}),
    );
    assert_eq!(answer["status"], "active", "{answer:#}");
    assert!(answer.get("upload_url").is_none());
    let poll = serde_json::json!({"action": "poll", "current_bookmark": answer["at_bookmark"]});
    assert_eq!(import_action(&project, poll)["status"], "complete");
    let rows: i64 = project
        .open("app")
        .query_row("SELECT count(*) FROM t", [], |r| r.get(0))
        .unwrap();
    assert_eq!(rows, 5);

    // Malformed actions are API errors.
    let response = http(
        "POST",
        &db_url(&project, "/import"),
        Some(TOKEN),
        br#"{"action": "restore"}"#,
    );
    assert_eq!(response.status, 400);
    assert_eq!(project.server.unhandled(), Vec::<String>::new());

    // A GraphQL query this server does not know is answered with a GraphQL
    // error and recorded as unhandled.
    let graphql = format!("{}/graphql", project.server.api_base_url());
    let response = http(
        "POST",
        &graphql,
        Some(TOKEN),
        br#"{"query": "{ viewer { zones { name } } }"}"#,
    );
    assert_eq!(response.status, 200);
    assert!(response.json()["errors"][0]["message"].is_string());
    assert_eq!(
        project.server.unhandled(),
        vec!["POST /client/v4/graphql".to_owned()]
    );
}

/// The values of `t`, in order, read from the SQLite file directly.
fn values(project: &Project) -> Vec<String> {
    let conn = project.open("app");
    let mut stmt = conn.prepare("SELECT v FROM t ORDER BY id").unwrap();
    stmt.query_map([], |r| r.get(0))
        .unwrap()
        .collect::<Result<_, _>>()
        .unwrap()
}

/// Runs SQL through `/query`.
fn query(project: &Project, sql: &str) {
    let body = serde_json::json!({ "sql": sql }).to_string();
    let response = http(
        "POST",
        &db_url(project, "/query"),
        Some(TOKEN),
        body.as_bytes(),
    );
    assert_eq!(response.status, 200, "{}", response.text());
}

fn restore(project: &Project, query: &str) -> common::Response {
    http(
        "POST",
        &db_url(project, &format!("/time_travel/restore?{query}")),
        Some(TOKEN),
        b"",
    )
}

#[test]
fn time_travel_restore_brings_back_a_state_and_can_be_undone() {
    let project = project();
    let early = bookmark(&project);
    query(&project, "INSERT INTO t VALUES (2, 'two')");
    query(&project, "UPDATE t SET v = 'uno' WHERE id = 1");
    let late = bookmark(&project);
    assert_eq!(values(&project), ["uno", "two"]);

    let response = restore(&project, &format!("bookmark={early}"));
    assert_eq!(response.status, 200, "{}", response.text());
    let json = response.json();
    assert_eq!(json["success"], true);
    assert_eq!(json["errors"], serde_json::json!([]));
    assert_eq!(json["result"]["bookmark"], early.as_str());
    assert_eq!(json["result"]["previous_bookmark"], late.as_str());
    assert!(json["result"]["message"].is_string());
    assert_eq!(values(&project), ["one"]);
    let after_restore = bookmark(&project);
    assert!(after_restore > late, "a restore is a new state");

    // Undo it.
    let response = restore(&project, &format!("bookmark={late}"));
    assert_eq!(response.status, 200, "{}", response.text());
    assert_eq!(
        response.json()["result"]["previous_bookmark"],
        after_restore.as_str()
    );
    assert_eq!(values(&project), ["uno", "two"]);

    // The API also takes a timestamp; one from before the server started
    // names its first state.
    let response = restore(&project, "timestamp=2020-01-01T00%3A00%3A00Z");
    assert_eq!(response.status, 200, "{}", response.text());
    assert_eq!(response.json()["result"]["bookmark"], early.as_str());
    assert_eq!(values(&project), ["one"]);

    let restores = project.server.time_travel_restores();
    assert_eq!(restores.len(), 3);
    assert_eq!(
        restores[0],
        d1_loopback::TimeTravelRestore {
            database_uuid: UUID.to_owned(),
            bookmark: early.clone(),
            previous_bookmark: late.clone(),
        }
    );
    assert_eq!(restores[1].bookmark, late);
    assert_eq!(restores[1].previous_bookmark, after_restore);
    assert_eq!(restores[2].bookmark, early);
    assert_eq!(project.server.unhandled(), Vec::<String>::new());
}

#[test]
fn time_travel_restore_refuses_bad_bookmarks_and_changes_nothing() {
    let project = project();
    query(&project, "INSERT INTO t VALUES (2, 'two')");
    let before = bookmark(&project);
    let unknown = "00000099-00000000-00000000-0123456789abcdef0123456789abcdef";
    for (query, named) in [
        (format!("bookmark={unknown}"), unknown),
        ("bookmark=not-a-bookmark".to_owned(), "not-a-bookmark"),
    ] {
        let response = restore(&project, &query);
        assert_eq!(response.status, 400, "{}", response.text());
        let json = response.json();
        assert_eq!(json["success"], false);
        assert!(json["errors"][0]["code"].is_u64(), "{json}");
        let message = json["errors"][0]["message"].as_str().unwrap();
        assert!(message.contains(named), "{message}");
    }
    // Neither or both of bookmark and timestamp are refused too.
    assert_eq!(restore(&project, "").status, 400);
    let both = format!("bookmark={before}&timestamp=2020-01-01T00%3A00%3A00Z");
    assert_eq!(restore(&project, &both).status, 400);

    assert_eq!(bookmark(&project), before);
    assert_eq!(values(&project), ["one", "two"]);
    assert!(project.server.time_travel_restores().is_empty());
    assert_eq!(project.server.unhandled(), Vec::<String>::new());
}

#[test]
fn time_travel_restore_fault_answers_the_status_and_changes_nothing() {
    let project = project();
    let early = bookmark(&project);
    query(&project, "INSERT INTO t VALUES (2, 'two')");
    let before = bookmark(&project);
    project.server.set_faults(d1_loopback::Faults {
        time_travel_restore_status: Some(503),
        ..Default::default()
    });
    let response = restore(&project, &format!("bookmark={early}"));
    assert_eq!(response.status, 503);
    let json = response.json();
    assert_eq!(json["success"], false);
    assert!(json["errors"][0]["message"].is_string(), "{json}");
    assert_eq!(bookmark(&project), before);
    assert_eq!(values(&project), ["one", "two"]);
    assert!(project.server.time_travel_restores().is_empty());

    // Once the fault is lifted the same restore works.
    project.server.set_faults(d1_loopback::Faults::default());
    let response = restore(&project, &format!("bookmark={early}"));
    assert_eq!(response.status, 200, "{}", response.text());
    assert_eq!(values(&project), ["one"]);
    assert_eq!(project.server.time_travel_restores().len(), 1);
}

/// The database's current bookmark.
fn bookmark(project: &Project) -> String {
    let url = db_url(project, "/time_travel/bookmark");
    http("GET", &url, Some(TOKEN), b"").json()["result"]["bookmark"]
        .as_str()
        .unwrap()
        .to_owned()
}

#[test]
fn an_export_that_never_completes_stays_active_until_the_fault_is_lifted() {
    let project = project();
    let before = dump_sql(&project.open("app"), &DumpOptions::default()).unwrap();
    let never = d1_loopback::Faults {
        export_never_completes: true,
        ..Default::default()
    };

    // Started under the fault: every poll is "active", pinned to the
    // bookmark of the first call, and no signed URL is handed out.
    project.server.set_faults(never.clone());
    let first = export(&project, None);
    assert_eq!(first["success"], true);
    assert_eq!(first["type"], "export");
    assert_eq!(first["status"], "active");
    let bookmark = first["at_bookmark"].as_str().unwrap().to_owned();
    for _ in 0..5 {
        let poll = export(&project, Some(&bookmark));
        assert_eq!(poll["status"], "active", "{poll:#}");
        assert_eq!(poll["at_bookmark"], bookmark.as_str());
        assert!(poll.get("result").is_none(), "{poll:#}");
        assert!(poll.get("error").is_none(), "{poll:#}");
    }
    assert!(project.server.signed_urls().is_empty());

    // Lifted: the next poll completes, with the dump at that bookmark.
    project.server.set_faults(d1_loopback::Faults::default());
    let done = export(&project, Some(&bookmark));
    assert_eq!(done["status"], "complete", "{done:#}");
    assert_eq!(done["at_bookmark"], bookmark.as_str());
    let url = done["result"]["signed_url"].as_str().unwrap();
    assert_eq!(project.server.signed_urls(), [url]);
    assert_eq!(http("GET", url, None, b"").text(), before);

    // Started before the fault, with a write after the first call: the
    // polls under the fault stay "active", and once it is lifted the
    // export completes with the dump its first call pinned.
    let first = export(&project, None);
    assert_eq!(first["status"], "active");
    let bookmark = first["at_bookmark"].as_str().unwrap().to_owned();
    query(&project, "INSERT INTO t VALUES (2, 'after the first call')");
    project.server.set_faults(never);
    for _ in 0..5 {
        let poll = export(&project, Some(&bookmark));
        assert_eq!(poll["status"], "active", "{poll:#}");
        assert_eq!(poll["at_bookmark"], bookmark.as_str());
    }
    project.server.set_faults(d1_loopback::Faults::default());
    let done = export(&project, Some(&bookmark));
    assert_eq!(done["status"], "complete", "{done:#}");
    let url = done["result"]["signed_url"].as_str().unwrap();
    assert_eq!(http("GET", url, None, b"").text(), before);
    assert_eq!(project.server.signed_urls().len(), 2);
    assert_eq!(project.server.unhandled(), Vec::<String>::new());
}

#[test]
fn a_response_delay_holds_every_answer_back_without_changing_it() {
    use std::time::{Duration, Instant};

    let project = project();
    let base = project.server.api_base_url();
    // Answers of every kind: successes, an API error, an authentication
    // error and a request no route matches. (Not a successful query: its
    // `meta.duration` differs from one run to the next.)
    let requests: Vec<(&str, String, Option<&str>, &[u8])> = vec![
        ("GET", db_url(&project, ""), Some(TOKEN), b""),
        (
            "GET",
            db_url(&project, "/time_travel/bookmark"),
            Some(TOKEN),
            b"",
        ),
        (
            "POST",
            db_url(&project, "/query"),
            Some(TOKEN),
            br#"{"sql": "SELECT nope"}"#,
        ),
        ("GET", db_url(&project, ""), Some("wrong"), b""),
        ("GET", format!("{base}/zones"), Some(TOKEN), b""),
    ];
    let prompt: Vec<common::Response> = requests
        .iter()
        .map(|(method, url, token, body)| http(method, url, *token, body))
        .collect();

    let delay = Duration::from_millis(300);
    project.server.set_faults(d1_loopback::Faults {
        response_delay_ms: Some(delay.as_millis() as u64),
        ..Default::default()
    });
    for ((method, url, token, body), prompt) in requests.iter().zip(&prompt) {
        let sent = Instant::now();
        let slow = http(method, url, *token, body);
        let took = sent.elapsed();
        assert!(took >= delay, "{method} {url} was answered after {took:?}");
        assert_eq!(slow.status, prompt.status, "{method} {url}");
        assert_eq!(slow.text(), prompt.text(), "{method} {url}");
        assert_eq!(
            slow.header("Content-Type"),
            prompt.header("Content-Type"),
            "{method} {url}"
        );
    }

    // Lifted, the answers are the same again.
    project.server.set_faults(d1_loopback::Faults::default());
    let again = http("GET", &db_url(&project, ""), Some(TOKEN), b"");
    assert_eq!(again.text(), prompt[0].text());
    assert_eq!(project.server.unhandled().len(), 2, "the /zones requests");
}

#[test]
fn a_response_delay_from_a_request_holds_back_only_that_answer_and_those_after_it() {
    use std::time::{Duration, Instant};

    let project = project();
    // Long enough that an answer sent at once comes well before it, on
    // a loaded machine too.
    let delay = Duration::from_secs(2);
    let took = |rest: &str| {
        let sent = Instant::now();
        let answer = http("GET", &db_url(&project, rest), Some(TOKEN), b"");
        assert_eq!(answer.status, 200, "{rest}: {}", answer.text());
        sent.elapsed()
    };
    let from_the_bookmark = d1_loopback::Faults {
        response_delay_ms: Some(delay.as_millis() as u64),
        response_delay_from: Some("/time_travel/bookmark".into()),
        ..Default::default()
    };
    project.server.set_faults(from_the_bookmark.clone());
    assert!(took("") < delay, "an answer before the named request");
    assert!(took("/time_travel/bookmark") >= delay);
    assert!(took("") >= delay, "an answer after the named request");
    // The faults set again start over: at once until it comes again.
    project.server.set_faults(from_the_bookmark);
    assert!(
        took("") < delay,
        "an answer before the named request, again"
    );
}
