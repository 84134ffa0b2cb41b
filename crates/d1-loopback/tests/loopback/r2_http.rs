//! Exercises the R2 endpoints over plain HTTP, for what wrangler does not
//! show on its own: status codes, headers, error codes and the corners.

use crate::common;

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

/// The URL that lists `bucket`'s objects, with a query string as given
/// (already encoded).
fn list_url(project: &Project, bucket: &str, query: &str) -> String {
    let url = r2_url(project, &format!("/{bucket}/objects"));
    if query.is_empty() {
        url
    } else {
        format!("{url}?{query}")
    }
}

/// Lists and returns the whole envelope, failing unless it is a success.
fn list(project: &Project, query: &str) -> serde_json::Value {
    let response = http("GET", &list_url(project, BUCKET, query), Some(TOKEN), b"");
    assert_eq!(response.status, 200, "{query}: {}", response.text());
    assert_eq!(response.header("Content-Type"), Some("application/json"));
    let json = response.json();
    assert_eq!(json["success"], true, "{json}");
    assert_eq!(json["errors"], json!([]));
    assert_eq!(json["messages"], json!([]));
    json
}

/// The keys of a listing's objects, in the order listed.
fn listed_keys(json: &serde_json::Value) -> Vec<String> {
    json["result"]
        .as_array()
        .expect("result is an array")
        .iter()
        .map(|o| o["key"].as_str().unwrap().to_owned())
        .collect()
}

/// Percent-encodes a query-string value.
fn encode(value: &str) -> String {
    value
        .bytes()
        .map(|b| {
            if b.is_ascii_alphanumeric() || b"-_.~".contains(&b) {
                (b as char).to_string()
            } else {
                format!("%{b:02X}")
            }
        })
        .collect()
}

fn seed(project: &Project, keys: &[&str]) {
    for key in keys {
        project
            .server
            .r2_put_object(BUCKET, key, key.as_bytes())
            .unwrap();
    }
}

#[test]
fn listing_filters_by_prefix_in_key_order() {
    let project = project();
    // Seeded out of order; listed by UTF-8 bytes.
    seed(
        &project,
        &[
            "prod/2026/b.sql",
            "staging/x.sql",
            "prod/2026/a b.sql",
            "prod/2025/z.sql",
            "prod",
            "prodx",
            "prod/ü.sql",
        ],
    );
    // An object uploaded with headers lists them.
    let put = http_with_headers(
        "PUT",
        &object_url(&project, BUCKET, "prod/2026/c.sql"),
        Some(TOKEN),
        &[("Content-Type", "application/sql")],
        b"12345",
    );
    assert_eq!(put.status, 200, "{}", put.text());

    let all = list(&project, "");
    assert_eq!(
        listed_keys(&all),
        [
            "prod",
            "prod/2025/z.sql",
            "prod/2026/a b.sql",
            "prod/2026/b.sql",
            "prod/2026/c.sql",
            "prod/ü.sql",
            "prodx",
            "staging/x.sql",
        ]
    );
    assert_eq!(
        all["result_info"],
        json!({"cursor": "", "is_truncated": false, "delimited": [], "per_page": 1000})
    );
    let object = all["result"]
        .as_array()
        .unwrap()
        .iter()
        .find(|o| o["key"] == "prod/2026/c.sql")
        .unwrap();
    assert_eq!(object["size"], 5);
    assert_eq!(object["etag"], md5_hex(b"12345"));
    assert_eq!(object["storage_class"], "Standard");
    assert_eq!(
        object["http_metadata"],
        json!({"content-type": "application/sql"})
    );
    assert_eq!(object["custom_metadata"], json!({}));
    let modified = object["last_modified"].as_str().unwrap();
    assert!(
        modified.len() == 24 && modified.as_bytes()[10] == b'T' && modified.ends_with('Z'),
        "{modified}"
    );
    let seeded = &all["result"][0];
    assert_eq!(seeded["key"], "prod");
    assert_eq!(seeded["size"], 4);
    assert_eq!(seeded["etag"], md5_hex(b"prod"));
    assert_eq!(seeded["http_metadata"], json!({}));

    let prod = list(&project, &format!("prefix={}", encode("prod/2026/")));
    assert_eq!(
        listed_keys(&prod),
        ["prod/2026/a b.sql", "prod/2026/b.sql", "prod/2026/c.sql"]
    );
    // A prefix is a prefix of the key, not a path: `prod` takes `prodx`.
    let prod = list(&project, "prefix=prod");
    assert_eq!(listed_keys(&prod).len(), 7);
    let encoded = list(&project, &format!("prefix={}", encode("prod/ü")));
    assert_eq!(listed_keys(&encoded), ["prod/ü.sql"]);
    let none = list(&project, "prefix=nothing-here");
    assert_eq!(none["result"], json!([]));
    assert_eq!(none["result_info"]["is_truncated"], false);
    assert_eq!(project.server.unhandled(), Vec::<String>::new());
}

#[test]
fn listing_with_a_delimiter_rolls_keys_up_into_prefixes() {
    let project = project();
    seed(
        &project,
        &[
            "top.sql",
            "prod/2025/a.sql",
            "prod/2025/b.sql",
            "prod/2026/a.sql",
            "prod/readme",
            "prod/",
            "staging/x/y/z.sql",
        ],
    );
    let top = list(&project, "delimiter=%2F");
    assert_eq!(listed_keys(&top), ["top.sql"]);
    assert_eq!(
        top["result_info"]["delimited"],
        json!(["prod/", "staging/"])
    );
    assert_eq!(top["result_info"]["is_truncated"], false);

    let prod = list(&project, "prefix=prod%2F&delimiter=%2F");
    // `prod/` itself has nothing after the prefix, so it is an object.
    assert_eq!(listed_keys(&prod), ["prod/", "prod/readme"]);
    assert_eq!(
        prod["result_info"]["delimited"],
        json!(["prod/2025/", "prod/2026/"])
    );

    let year = list(&project, "prefix=prod%2F2025%2F&delimiter=%2F");
    assert_eq!(listed_keys(&year), ["prod/2025/a.sql", "prod/2025/b.sql"]);
    assert_eq!(year["result_info"]["delimited"], json!([]));

    // Without a delimiter nothing is rolled up.
    let flat = list(&project, "prefix=staging%2F");
    assert_eq!(listed_keys(&flat), ["staging/x/y/z.sql"]);
    assert_eq!(flat["result_info"]["delimited"], json!([]));
    // A prefix that does not end at a delimiter rolls up what follows.
    let partial = list(&project, "prefix=prod%2F20&delimiter=%2F");
    assert_eq!(listed_keys(&partial), Vec::<String>::new());
    assert_eq!(
        partial["result_info"]["delimited"],
        json!(["prod/2025/", "prod/2026/"])
    );
    assert_eq!(project.server.unhandled(), Vec::<String>::new());
}

/// Follows the cursor from the first page to the last, checking each
/// page's size, and returns every page's keys and prefixes.
fn all_pages(project: &Project, query: &str, per_page: usize) -> Vec<(Vec<String>, Vec<String>)> {
    let mut pages = Vec::new();
    let mut cursor = String::new();
    loop {
        let mut q = format!("{query}&per_page={per_page}");
        if !cursor.is_empty() {
            q.push_str(&format!("&cursor={}", encode(&cursor)));
        }
        let page = list(project, &q);
        let info = &page["result_info"];
        assert_eq!(info["per_page"], per_page);
        let keys = listed_keys(&page);
        let prefixes: Vec<String> = info["delimited"]
            .as_array()
            .unwrap()
            .iter()
            .map(|p| p.as_str().unwrap().to_owned())
            .collect();
        assert!(keys.len() + prefixes.len() <= per_page, "{page}");
        let truncated = info["is_truncated"].as_bool().unwrap();
        cursor = info["cursor"].as_str().unwrap().to_owned();
        pages.push((keys, prefixes));
        if !truncated {
            assert_eq!(cursor, "", "the last page has no cursor");
            return pages;
        }
        assert!(!cursor.is_empty(), "a truncated page has a cursor");
        assert_eq!(
            pages.last().unwrap().0.len() + pages.last().unwrap().1.len(),
            per_page,
            "only the last page is short"
        );
        assert!(pages.len() < 100, "the cursor does not advance");
    }
}

#[test]
fn listing_pages_through_every_key_exactly_once() {
    let project = project();
    let mut keys: Vec<String> = (0..23)
        .map(|i| format!("backups/{:02}/{}.sql", i % 7, i))
        .collect();
    keys.push("backups/ü +&=?.sql".to_owned());
    keys.push("other".to_owned());
    for key in &keys {
        project
            .server
            .r2_put_object(BUCKET, key, key.as_bytes())
            .unwrap();
    }
    keys.sort();

    for per_page in [1, 4, 5, 25, 1000] {
        let pages = all_pages(&project, "", per_page);
        let listed: Vec<String> = pages.iter().flat_map(|(k, _)| k.clone()).collect();
        assert_eq!(listed, keys, "per_page={per_page}");
        assert_eq!(
            pages.len(),
            keys.len().div_ceil(per_page),
            "per_page={per_page}"
        );
    }

    // With a prefix, only its keys, still each once.
    let pages = all_pages(&project, &format!("prefix={}", encode("backups/0")), 3);
    let listed: Vec<String> = pages.iter().flat_map(|(k, _)| k.clone()).collect();
    let expected: Vec<String> = keys
        .iter()
        .filter(|k| k.starts_with("backups/0"))
        .cloned()
        .collect();
    assert_eq!(listed, expected);

    // With a delimiter, each common prefix comes once, however many keys
    // it rolls up and wherever the pages break.
    for per_page in [1, 2, 3, 1000] {
        let pages = all_pages(&project, "prefix=backups%2F&delimiter=%2F", per_page);
        let listed: Vec<String> = pages.iter().flat_map(|(k, _)| k.clone()).collect();
        let prefixes: Vec<String> = pages.iter().flat_map(|(_, p)| p.clone()).collect();
        assert_eq!(listed, ["backups/ü +&=?.sql"], "per_page={per_page}");
        assert_eq!(
            prefixes,
            (0..7)
                .map(|i| format!("backups/{i:02}/"))
                .collect::<Vec<_>>(),
            "per_page={per_page}"
        );
    }

    // per_page is capped at 1000; nonsense is refused.
    let big = list(&project, "per_page=5000");
    assert_eq!(big["result_info"]["per_page"], 1000);
    for bad in [
        "per_page=0",
        "per_page=-1",
        "per_page=many",
        "cursor=not-a-cursor",
    ] {
        let response = http("GET", &list_url(&project, BUCKET, bad), Some(TOKEN), b"");
        assert_eq!(response.status, 400, "{bad}: {}", response.text());
        assert_eq!(response.json()["success"], false, "{bad}");
    }
    assert_eq!(project.server.unhandled(), Vec::<String>::new());
}

#[test]
fn listing_an_empty_bucket() {
    let project = project();
    let empty = list(&project, "");
    assert_eq!(empty["result"], json!([]));
    assert_eq!(
        empty["result_info"],
        json!({"cursor": "", "is_truncated": false, "delimited": [], "per_page": 1000})
    );
    let empty = list(&project, "prefix=a&delimiter=%2F&per_page=10");
    assert_eq!(empty["result"], json!([]));
    assert_eq!(empty["result_info"]["delimited"], json!([]));
    assert_eq!(empty["result_info"]["per_page"], 10);

    // Once emptied, a bucket lists nothing again.
    seed(&project, &["k"]);
    assert_eq!(listed_keys(&list(&project, "")), ["k"]);
    let delete = http(
        "DELETE",
        &object_url(&project, BUCKET, "k"),
        Some(TOKEN),
        b"",
    );
    assert_eq!(delete.status, 200);
    assert_eq!(list(&project, "")["result"], json!([]));
    assert_eq!(project.server.unhandled(), Vec::<String>::new());
}

#[test]
fn listing_needs_the_token_and_a_bucket() {
    let project = project();
    seed(&project, &["secret"]);
    let url = list_url(&project, BUCKET, "prefix=s");
    for token in [None, Some("wrong")] {
        let response = http("GET", &url, token, b"");
        assert_eq!(response.status, 403);
        assert_eq!(
            response.text(),
            r#"{"success":false,"errors":[{"code":10000,"message":"Authentication error"}],"messages":[],"result":null}"#
        );
    }
    // The token is checked before the bucket.
    let response = http("GET", &list_url(&project, "other", ""), None, b"");
    assert_eq!(response.status, 403);

    let response = http(
        "GET",
        &list_url(&project, "other", "prefix=s"),
        Some(TOKEN),
        b"",
    );
    assert_eq!(response.status, 404);
    assert_eq!(
        response.json()["errors"],
        json!([{"code": 10006, "message": "The specified bucket does not exist."}])
    );
    // A bucket in another jurisdiction is another bucket.
    let response = http_with_headers(
        "GET",
        &url,
        Some(TOKEN),
        &[("cf-r2-jurisdiction", "eu")],
        b"",
    );
    assert_eq!(response.status, 404);
    assert_eq!(response.json()["errors"][0]["code"], 10006);
    // Another account is refused like on the other routes.
    let other = url.replace(ACCOUNT, "fedcba9876543210fedcba9876543210");
    assert_eq!(http("GET", &other, Some(TOKEN), b"").status, 404);

    // Listing is GET only; `objects` with no key is no object route.
    for method in ["PUT", "DELETE"] {
        let response = http(method, &list_url(&project, BUCKET, ""), Some(TOKEN), b"");
        assert_eq!(response.status, 404, "{method}");
        assert_eq!(response.json()["errors"][1]["code"], 7000, "{method}");
    }
    assert_eq!(
        project.server.r2_object(BUCKET, "secret").as_deref(),
        Some(&b"secret"[..])
    );
    assert_eq!(project.server.unhandled().len(), 2);
}
