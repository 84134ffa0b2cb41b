//! Runs the real, pinned wrangler's `r2 ... --remote` commands against the
//! loopback server.

use crate::common;

use common::{ACCOUNT, Project, Run};
use d1_loopback::Faults;
use serde_json::json;

const BUCKET: &str = "qbtime-backups";
const KEY: &str = "prod/2026/11/backup-prod-20261124-0900.sql";

fn project() -> Project {
    let project = Project::new(&[]);
    project.server.add_bucket(BUCKET);
    project
}

fn objects_path(bucket: &str, key: &str) -> String {
    format!("/client/v4/accounts/{ACCOUNT}/r2/buckets/{bucket}/objects/{key}")
}

fn lifecycle_path() -> String {
    format!("/client/v4/accounts/{ACCOUNT}/r2/buckets/{BUCKET}/lifecycle")
}

/// Deterministic bytes that look like nothing in particular (xorshift).
fn noise(len: usize) -> Vec<u8> {
    let mut x: u64 = 0x9E37_79B9_7F4A_7C15;
    let mut out = Vec::with_capacity(len + 8);
    while out.len() < len {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        out.extend_from_slice(&x.to_le_bytes());
    }
    out.truncate(len);
    out
}

fn assert_contains(haystack: &str, needle: &str) {
    assert!(
        haystack.contains(needle),
        "expected {needle:?} in:\n{haystack}"
    );
}

fn put(project: &Project, target: &str, file: &std::path::Path) -> Run {
    project.wrangler(&[
        "r2",
        "object",
        "put",
        target,
        "--file",
        file.to_str().unwrap(),
        "--remote",
    ])
}

fn get_file(project: &Project, target: &str, file: &std::path::Path) -> Run {
    project.wrangler(&[
        "r2",
        "object",
        "get",
        target,
        "--file",
        file.to_str().unwrap(),
        "--remote",
    ])
}

#[test]
fn put_get_and_delete_round_trip_byte_for_byte() {
    let project = project();
    let bytes = noise(3_000_001);
    let src = project.dir.path().join("backup.sql");
    std::fs::write(&src, &bytes).unwrap();
    let target = format!("{BUCKET}/{KEY}");

    let run = put(&project, &target, &src);
    run.assert_ok();
    assert_contains(&run.stdout(), "Upload complete.");
    assert_eq!(project.server.r2_keys(BUCKET), [KEY]);
    assert!(project.server.r2_object(BUCKET, KEY) == Some(bytes.clone()));

    let out = project.dir.path().join("restored/backup.sql");
    get_file(&project, &target, &out).assert_ok();
    assert!(std::fs::read(&out).unwrap() == bytes, "--file differs");

    let run = project.wrangler(&["r2", "object", "get", &target, "--pipe", "--remote"]);
    run.assert_ok();
    assert!(run.output.stdout == bytes, "--pipe differs");

    let run = project.wrangler(&["r2", "object", "delete", &target, "--remote"]);
    run.assert_ok();
    assert_contains(&run.stdout(), "Delete complete.");
    assert!(project.server.r2_keys(BUCKET).is_empty());

    // A deleted key is gone for wrangler too.
    let run = get_file(&project, &target, &out);
    run.assert_failed();
    assert_contains(&run.stderr(), "The specified key does not exist.");

    // One request per command: no multipart, no listing, no HEAD.
    let path = objects_path(BUCKET, KEY);
    assert_eq!(
        project.server.requests(),
        [
            format!("PUT {path}"),
            format!("GET {path}"),
            format!("GET {path}"),
            format!("DELETE {path}"),
            format!("GET {path}"),
        ]
    );
    assert_eq!(project.server.unhandled(), Vec::<String>::new());
}

#[test]
fn keys_with_spaces_and_unicode_survive_wranglers_url_encoding() {
    let project = project();
    let src = project.dir.path().join("f.bin");
    std::fs::write(&src, b"data").unwrap();
    let key = "staging/2026 11/plus+sign ü.sql";
    put(&project, &format!("{BUCKET}/{key}"), &src).assert_ok();
    assert_eq!(project.server.r2_keys(BUCKET), [key]);
    assert_eq!(
        project.server.requests(),
        [format!(
            "PUT {}",
            objects_path(BUCKET, "staging/2026%2011/plus+sign%20%C3%BC.sql")
        )]
    );
    let run = project.wrangler(&[
        "r2",
        "object",
        "get",
        &format!("{BUCKET}/{key}"),
        "--pipe",
        "--remote",
    ]);
    run.assert_ok();
    assert_eq!(run.output.stdout, b"data");
}

#[test]
fn a_200_mb_file_goes_up_in_one_put_and_comes_back_whole() {
    let project = project();
    let bytes = noise(200 * 1024 * 1024 + 13);
    let src = project.dir.path().join("big.sql");
    std::fs::write(&src, &bytes).unwrap();
    let target = format!("{BUCKET}/{KEY}");
    put(&project, &target, &src).assert_ok();
    let out = project.dir.path().join("big-restored.sql");
    get_file(&project, &target, &out).assert_ok();
    assert!(
        std::fs::read(&out).unwrap() == bytes,
        "the download differs"
    );
    assert!(project.server.r2_object(BUCKET, KEY) == Some(bytes));
    let path = objects_path(BUCKET, KEY);
    assert_eq!(
        project.server.requests(),
        [format!("PUT {path}"), format!("GET {path}")]
    );
}

#[test]
fn lifecycle_rules_are_set_listed_added_and_removed() {
    let project = project();
    let lifecycle = |args: &[&str]| {
        let mut all = vec!["r2", "bucket", "lifecycle"];
        all.extend_from_slice(args);
        let run = project.wrangler(&all);
        run.assert_ok();
        run.stdout()
    };
    assert_contains(
        &lifecycle(&["list", BUCKET]),
        "There are no lifecycle rules for bucket 'qbtime-backups'.",
    );

    let rules = json!([{
        "id": "expire-prod",
        "enabled": true,
        "conditions": {"prefix": "prod/"},
        "deleteObjectsTransition": {"condition": {"type": "Age", "maxAge": 2_592_000}},
    }]);
    let file = project.dir.path().join("lifecycle.json");
    std::fs::write(&file, json!({ "rules": rules }).to_string()).unwrap();
    lifecycle(&["set", BUCKET, "--file", file.to_str().unwrap(), "--force"]);
    assert_eq!(project.server.r2_lifecycle(BUCKET), rules);
    let listed = lifecycle(&["list", BUCKET]);
    assert_contains(&listed, "expire-prod");
    assert_contains(&listed, "prod/");
    assert_contains(&listed, "Expire objects after 30 days");

    lifecycle(&[
        "add",
        BUCKET,
        "expire-staging",
        "staging/",
        "--expire-days",
        "7",
    ]);
    let added = json!({
        "id": "expire-staging",
        "enabled": true,
        "conditions": {"prefix": "staging/"},
        "deleteObjectsTransition": {"condition": {"maxAge": 604_800, "type": "Age"}},
    });
    assert_eq!(
        project.server.r2_lifecycle(BUCKET),
        json!([rules[0], added])
    );

    lifecycle(&["remove", BUCKET, "--name", "expire-prod"]);
    assert_eq!(project.server.r2_lifecycle(BUCKET), json!([added]));
    let listed = lifecycle(&["list", BUCKET]);
    assert_contains(&listed, "expire-staging");
    assert!(!listed.contains("expire-prod"), "{listed}");

    let path = lifecycle_path();
    assert_eq!(
        project.server.requests(),
        [
            format!("GET {path}"),
            format!("PUT {path}"),
            format!("GET {path}"),
            // add: get, then put everything back
            format!("GET {path}"),
            format!("PUT {path}"),
            // remove: the same
            format!("GET {path}"),
            format!("PUT {path}"),
            format!("GET {path}"),
        ]
    );
    assert_eq!(project.server.unhandled(), Vec::<String>::new());
}

#[test]
fn an_unknown_bucket_is_reported_as_wrangler_reports_it() {
    let project = project();
    let src = project.dir.path().join("f.sql");
    std::fs::write(&src, b"x").unwrap();

    let run = put(&project, "no-such-bucket/k.sql", &src);
    run.assert_failed();
    assert_contains(&run.stderr(), "The specified bucket does not exist.");

    // wrangler turns every 404 of a download into a missing key.
    let run = get_file(
        &project,
        "no-such-bucket/k.sql",
        &project.dir.path().join("out"),
    );
    run.assert_failed();
    assert_contains(&run.stderr(), "The specified key does not exist.");

    for args in [
        &["r2", "bucket", "lifecycle", "list", "no-such-bucket"][..],
        &["r2", "bucket", "info", "no-such-bucket"],
    ] {
        let run = project.wrangler(args);
        run.assert_failed();
        assert_contains(
            &run.stderr(),
            "The specified bucket does not exist. [code: 10006]",
        );
    }
    assert_eq!(project.server.r2_buckets(), [BUCKET]);
    assert_eq!(project.server.unhandled(), Vec::<String>::new());
}

#[test]
fn a_failed_put_stores_nothing() {
    let project = project();
    project
        .server
        .r2_put_object(BUCKET, KEY, b"the previous backup")
        .unwrap();
    project.server.set_faults(Faults {
        r2_put_status: Some(500),
        ..Faults::default()
    });
    let src = project.dir.path().join("f.sql");
    std::fs::write(&src, b"the new backup").unwrap();
    let run = put(&project, &format!("{BUCKET}/{KEY}"), &src);
    run.assert_failed();
    assert_contains(&run.stderr(), "500: Internal Server Error");
    assert_contains(&run.stderr(), "\"code\":10001");
    assert_eq!(
        project.server.r2_object(BUCKET, KEY).as_deref(),
        Some(&b"the previous backup"[..])
    );
    assert_eq!(project.server.unhandled(), Vec::<String>::new());
}

#[test]
fn a_short_write_looks_like_success_to_wrangler() {
    let project = project();
    project.server.set_faults(Faults {
        r2_put_truncate_to: Some(1000),
        ..Faults::default()
    });
    let bytes = noise(5000);
    let src = project.dir.path().join("f.sql");
    std::fs::write(&src, &bytes).unwrap();
    let target = format!("{BUCKET}/{KEY}");
    let run = put(&project, &target, &src);
    run.assert_ok();
    assert_contains(&run.stdout(), "Upload complete.");
    assert_eq!(
        project.server.r2_object(BUCKET, KEY).as_deref(),
        Some(&bytes[..1000])
    );
    // Only reading it back (or its size) shows the loss.
    project.server.set_faults(Faults::default());
    let out = project.dir.path().join("out.sql");
    get_file(&project, &target, &out).assert_ok();
    assert_eq!(std::fs::read(&out).unwrap(), &bytes[..1000]);
    let run = project.wrangler(&["r2", "bucket", "info", BUCKET, "--json"]);
    run.assert_ok();
    assert_eq!(run.json()["object_count"], "1");
    assert_eq!(run.json()["bucket_size"], "1 kB");
}

#[test]
fn a_failed_get_fails_the_command() {
    let project = project();
    project
        .server
        .r2_put_object(BUCKET, KEY, b"backup")
        .unwrap();
    let target = format!("{BUCKET}/{KEY}");
    let out = project.dir.path().join("out.sql");

    project.server.set_faults(Faults {
        r2_get_status: Some(503),
        ..Faults::default()
    });
    let run = get_file(&project, &target, &out);
    run.assert_failed();
    assert_contains(&run.stderr(), "503: Service Unavailable");
    // wrangler opens the output file before it asks for the object, so a
    // failed download leaves an empty file behind.
    assert_eq!(std::fs::read(&out).unwrap(), b"");
    let run = project.wrangler(&["r2", "object", "get", &target, "--pipe", "--remote"]);
    run.assert_failed();
    // wrangler prints a blank line to stdout before its error, even with
    // --pipe: only the exit status tells a failed download from an object
    // that is one newline.
    assert_eq!(run.stdout(), "\n", "{}", run.stderr());

    project.server.set_faults(Faults {
        r2_get_status: Some(404),
        ..Faults::default()
    });
    let run = get_file(&project, &target, &out);
    run.assert_failed();
    assert_contains(&run.stderr(), "The specified key does not exist.");

    project.server.set_faults(Faults::default());
    get_file(&project, &target, &out).assert_ok();
    assert_eq!(std::fs::read(&out).unwrap(), b"backup");
    assert_eq!(project.server.unhandled(), Vec::<String>::new());
}

#[test]
fn buckets_are_created_listed_and_described() {
    let project = project();
    let run = project.wrangler(&["r2", "bucket", "create", "qbtime-scratch"]);
    run.assert_ok();
    assert_contains(&run.stdout(), "Created bucket 'qbtime-scratch'");
    assert_eq!(project.server.r2_buckets(), [BUCKET, "qbtime-scratch"]);

    let run = project.wrangler(&["r2", "bucket", "create", "qbtime-scratch"]);
    run.assert_failed();
    assert_contains(&run.stderr(), "[code: 10004]");

    let run = project.wrangler(&["r2", "bucket", "list"]);
    run.assert_ok();
    assert_contains(&run.stdout(), BUCKET);
    assert_contains(&run.stdout(), "qbtime-scratch");

    project
        .server
        .r2_put_object("qbtime-scratch", "a/b", b"12345")
        .unwrap();
    project
        .server
        .r2_put_object("qbtime-scratch", "c", b"67")
        .unwrap();
    let run = project.wrangler(&["r2", "bucket", "info", "qbtime-scratch", "--json"]);
    run.assert_ok();
    let info = run.json();
    assert_eq!(info["name"], "qbtime-scratch");
    assert_eq!(info["location"], "WNAM");
    assert_eq!(info["default_storage_class"], "Standard");
    assert_eq!(info["object_count"], "2");
    assert_eq!(info["bucket_size"], "7 B");
    assert_eq!(project.server.unhandled(), Vec::<String>::new());
}
