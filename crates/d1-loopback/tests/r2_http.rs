//! Exercises the R2 endpoints over plain HTTP, for what wrangler does not
//! show on its own: status codes, headers, error codes and the corners.

mod common;

use common::{ACCOUNT, Project, TOKEN, http, http_with_headers};
use d1_loopback::Faults;
use serde_json::json;

const BUCKET: &str = "qbtime-backups";

fn project() -> Project {
    let project = Project::new(&[]);
    project.server.add_bucket(BUCKET);
    project
}

fn r2_url(project: &Project, rest: &str) -> String {
    format!(
        "{}/accounts/{ACCOUNT}/r2/buckets{rest}",
        project.server.api_base_url()
    )
}

fn object_url(project: &Project, bucket: &str, encoded_key: &str) -> String {
    r2_url(project, &format!("/{bucket}/objects/{encoded_key}"))
}

fn md5_hex(bytes: &[u8]) -> String {
    use md5::Digest as _;
    md5::Md5::digest(bytes)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// Bytes that are not text, so nothing along the way can mistake them for
/// it.
fn binary(len: usize) -> Vec<u8> {
    (0..len).map(|i| (i * 7 + i / 251) as u8).collect()
}

#[test]
fn objects_round_trip_with_slashes_in_their_keys() {
    let project = project();
    let body = binary(100_000);
    // As wrangler's URL parser sends `prod/2026/11/a b+ü.sql`.
    let url = object_url(&project, BUCKET, "prod/2026/11/a%20b+%C3%BC.sql");
    let key = "prod/2026/11/a b+ü.sql";
    let put = http("PUT", &url, Some(TOKEN), &body);
    assert_eq!(put.status, 200, "{}", put.text());
    let result = &put.json()["result"];
    assert_eq!(result["key"], key);
    assert_eq!(result["size"], body.len());
    assert_eq!(result["etag"], md5_hex(&body));
    assert_eq!(result["storage_class"], "Standard");
    assert_eq!(project.server.r2_keys(BUCKET), [key]);
    assert_eq!(project.server.r2_object(BUCKET, key), Some(body.clone()));

    let get = http("GET", &url, Some(TOKEN), b"");
    assert_eq!(get.status, 200);
    assert_eq!(get.body, body);
    assert_eq!(
        get.header("Content-Length"),
        Some(body.len().to_string().as_str())
    );
    assert_eq!(get.header("Content-Type"), Some("application/octet-stream"));
    let etag = format!("\"{}\"", md5_hex(&body));
    assert_eq!(get.header("ETag"), Some(etag.as_str()));
    assert!(get.header("Last-Modified").unwrap().ends_with(" GMT"));

    let delete = http("DELETE", &url, Some(TOKEN), b"");
    assert_eq!(delete.status, 200, "{}", delete.text());
    assert_eq!(delete.json()["success"], true);
    assert!(project.server.r2_keys(BUCKET).is_empty());
    assert_eq!(project.server.r2_object(BUCKET, key), None);
    assert_eq!(project.server.unhandled(), Vec::<String>::new());
}

#[test]
fn uploads_keep_their_headers_and_replace_what_was_there() {
    let project = project();
    let url = object_url(&project, BUCKET, "dump.sql");
    project
        .server
        .r2_put_object(BUCKET, "dump.sql", b"old")
        .unwrap();
    let put = http_with_headers(
        "PUT",
        &url,
        Some(TOKEN),
        &[
            ("Content-Type", "application/sql"),
            ("Cache-Control", "no-store"),
            ("cf-r2-data-catalog-check", "true"),
        ],
        b"new",
    );
    assert_eq!(put.status, 200, "{}", put.text());
    assert_eq!(
        put.json()["result"]["http_metadata"],
        json!({"content-type": "application/sql", "cache-control": "no-store"})
    );
    let get = http("GET", &url, Some(TOKEN), b"");
    assert_eq!(get.body, b"new");
    assert_eq!(get.header("Content-Type"), Some("application/sql"));
    assert_eq!(get.header("Cache-Control"), Some("no-store"));

    // An empty object is an object.
    let put = http("PUT", &url, Some(TOKEN), b"");
    assert_eq!(put.status, 200);
    assert_eq!(project.server.r2_object(BUCKET, "dump.sql"), Some(vec![]));
    let get = http("GET", &url, Some(TOKEN), b"");
    assert_eq!(get.status, 200);
    assert_eq!(get.header("Content-Length"), Some("0"));
}

#[test]
fn missing_keys_and_buckets_get_r2s_errors() {
    let project = project();
    let missing_key = http(
        "GET",
        &object_url(&project, BUCKET, "nope"),
        Some(TOKEN),
        b"",
    );
    assert_eq!(missing_key.status, 404);
    assert_eq!(missing_key.json()["errors"][0]["code"], 10007);
    assert_eq!(
        missing_key.json()["errors"][0]["message"],
        "The specified key does not exist."
    );
    // Deleting a key that is not there succeeds, as on R2.
    let delete = http(
        "DELETE",
        &object_url(&project, BUCKET, "nope"),
        Some(TOKEN),
        b"",
    );
    assert_eq!(delete.status, 200);

    let no_bucket = |method: &str, url: String, body: &[u8]| {
        let response = http(method, &url, Some(TOKEN), body);
        assert_eq!(response.status, 404, "{method} {url}");
        assert_eq!(
            response.json()["errors"],
            json!([{"code": 10006, "message": "The specified bucket does not exist."}]),
            "{method} {url}"
        );
    };
    no_bucket("PUT", object_url(&project, "other", "k"), b"x");
    no_bucket("GET", object_url(&project, "other", "k"), b"");
    no_bucket("DELETE", object_url(&project, "other", "k"), b"");
    no_bucket("GET", r2_url(&project, "/other"), b"");
    no_bucket("GET", r2_url(&project, "/other/lifecycle"), b"");
    no_bucket(
        "PUT",
        r2_url(&project, "/other/lifecycle"),
        br#"{"rules":[]}"#,
    );
    assert!(project.server.r2_keys("other").is_empty());

    // A bucket in another jurisdiction is another bucket.
    let response = http_with_headers(
        "GET",
        &r2_url(&project, &format!("/{BUCKET}")),
        Some(TOKEN),
        &[("cf-r2-jurisdiction", "eu")],
        b"",
    );
    assert_eq!(response.status, 404);
    assert_eq!(response.json()["errors"][0]["code"], 10006);

    // The token comes first.
    let response = http("GET", &object_url(&project, BUCKET, "nope"), None, b"");
    assert_eq!(response.status, 403);
    assert_eq!(project.server.unhandled(), Vec::<String>::new());
}

#[test]
fn lifecycle_rules_are_kept_as_given() {
    let project = project();
    let url = r2_url(&project, &format!("/{BUCKET}/lifecycle"));
    let get = http("GET", &url, Some(TOKEN), b"");
    assert_eq!(get.status, 200);
    assert_eq!(get.json()["result"], json!({"rules": []}));
    assert_eq!(project.server.r2_lifecycle(BUCKET), json!([]));

    let rules = json!([
        {
            "id": "expire-prod",
            "enabled": true,
            "conditions": {"prefix": "prod/"},
            "deleteObjectsTransition": {"condition": {"type": "Age", "maxAge": 2_592_000}},
            "somethingNew": [1, 2, 3],
        },
        {"id": "disabled", "enabled": false, "conditions": {}},
    ]);
    let put = http(
        "PUT",
        &url,
        Some(TOKEN),
        json!({ "rules": rules }).to_string().as_bytes(),
    );
    assert_eq!(put.status, 200, "{}", put.text());
    assert_eq!(project.server.r2_lifecycle(BUCKET), rules);
    let get = http("GET", &url, Some(TOKEN), b"");
    assert_eq!(get.json()["result"]["rules"], rules);

    for bad in [
        &b"not json"[..],
        br#"{"rules": {}}"#,
        br#"{"rules": [1]}"#,
        b"{}",
    ] {
        let put = http("PUT", &url, Some(TOKEN), bad);
        assert_eq!(put.status, 400, "{}", String::from_utf8_lossy(bad));
        assert_eq!(put.json()["success"], false);
    }
    assert_eq!(project.server.r2_lifecycle(BUCKET), rules);
    assert_eq!(
        project.server.r2_lifecycle("other"),
        serde_json::Value::Null
    );
}

#[test]
fn buckets_are_created_listed_and_described() {
    let project = project();
    let list = http("GET", &r2_url(&project, ""), Some(TOKEN), b"");
    assert_eq!(list.status, 200);
    let buckets = &list.json()["result"]["buckets"];
    assert_eq!(buckets.as_array().unwrap().len(), 1);
    assert_eq!(buckets[0]["name"], BUCKET);
    assert!(buckets[0]["creation_date"].as_str().unwrap().ends_with('Z'));

    let create = http(
        "POST",
        &r2_url(&project, ""),
        Some(TOKEN),
        br#"{"name":"new-bucket","locationHint":"weur"}"#,
    );
    assert_eq!(create.status, 200, "{}", create.text());
    assert_eq!(create.json()["result"]["name"], "new-bucket");
    assert_eq!(create.json()["result"]["location"], "WEUR");
    assert_eq!(project.server.r2_buckets(), ["new-bucket", BUCKET]);

    let again = http(
        "POST",
        &r2_url(&project, ""),
        Some(TOKEN),
        br#"{"name":"new-bucket"}"#,
    );
    assert_eq!(again.status, 409);
    assert_eq!(again.json()["errors"][0]["code"], 10004);
    let bad = http(
        "POST",
        &r2_url(&project, ""),
        Some(TOKEN),
        br#"{"name":"Bad_Name"}"#,
    );
    assert_eq!(bad.status, 400);
    assert_eq!(bad.json()["errors"][0]["code"], 10005);

    let info = http("GET", &r2_url(&project, "/new-bucket"), Some(TOKEN), b"");
    assert_eq!(info.status, 200);
    let info = info.json();
    assert_eq!(info["result"]["name"], "new-bucket");
    assert_eq!(info["result"]["storage_class"], "Standard");

    // `wrangler r2 bucket info`'s metrics query sees the bucket's contents.
    project
        .server
        .r2_put_object("new-bucket", "a", b"12345")
        .unwrap();
    project
        .server
        .r2_put_object("new-bucket", "b/c", b"67")
        .unwrap();
    let query = json!({
        "query": "query getR2StorageMetrics { viewer { accounts { r2StorageAdaptiveGroups { max { objectCount } } } } }",
        "operationName": "getR2StorageMetrics",
        "variables": {"accountTag": ACCOUNT, "filter": {"bucketName": "new-bucket"}},
    });
    let graphql = format!("{}/graphql", project.server.api_base_url());
    let metrics = http("POST", &graphql, Some(TOKEN), query.to_string().as_bytes());
    assert_eq!(
        metrics.json()["data"]["viewer"]["accounts"][0]["r2StorageAdaptiveGroups"][0]["max"],
        json!({"objectCount": 2, "payloadSize": 7, "metadataSize": 0})
    );
    assert_eq!(project.server.unhandled(), Vec::<String>::new());
}

#[test]
fn put_faults_fail_or_cut_short_and_get_faults_fail() {
    let project = project();
    let url = object_url(&project, BUCKET, "k");
    project
        .server
        .r2_put_object(BUCKET, "k", b"before")
        .unwrap();

    project.server.set_faults(Faults {
        r2_put_status: Some(503),
        ..Faults::default()
    });
    let put = http("PUT", &url, Some(TOKEN), b"after");
    assert_eq!(put.status, 503);
    assert_eq!(put.json()["errors"][0]["code"], 10001);
    assert_eq!(
        project.server.r2_object(BUCKET, "k").as_deref(),
        Some(&b"before"[..]),
        "a failed upload stores nothing"
    );

    project.server.set_faults(Faults {
        r2_put_truncate_to: Some(3),
        ..Faults::default()
    });
    let put = http("PUT", &url, Some(TOKEN), b"after");
    assert_eq!(put.status, 200, "a short write is answered as a success");
    assert_eq!(put.json()["result"]["size"], 3);
    assert_eq!(put.json()["result"]["etag"], md5_hex(b"aft"));
    assert_eq!(
        project.server.r2_object(BUCKET, "k").as_deref(),
        Some(&b"aft"[..])
    );
    // Bodies shorter than the cut are stored whole.
    http("PUT", &url, Some(TOKEN), b"ab");
    assert_eq!(
        project.server.r2_object(BUCKET, "k").as_deref(),
        Some(&b"ab"[..])
    );

    project.server.set_faults(Faults {
        r2_get_status: Some(500),
        ..Faults::default()
    });
    let get = http("GET", &url, Some(TOKEN), b"");
    assert_eq!(get.status, 500);
    assert_eq!(get.json()["errors"][0]["code"], 10001);

    project.server.set_faults(Faults::default());
    assert_eq!(http("GET", &url, Some(TOKEN), b"").body, b"ab");
}
