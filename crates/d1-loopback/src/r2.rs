//! R2, as far as `wrangler r2 ... --remote` reaches it through the
//! Cloudflare REST API: buckets, their lifecycle rules and their objects.
//!
//! wrangler 4.86 sends, all under `/client/v4/accounts/{account}/r2/buckets`
//! and with the API token:
//!
//! - `r2 object put {bucket}/{key} --file F` (or `--pipe`): one
//!   `PUT /{bucket}/objects/{key}` whose body is the whole file, with a
//!   `Content-Length` (never chunked, never multipart: wrangler refuses
//!   files over 300 MiB before sending anything), `cf-r2-data-catalog-check:
//!   true` unless `--force`, and `Content-Type`, `Content-Disposition`,
//!   `Content-Encoding`, `Content-Language`, `Cache-Control` and `Expires`
//!   only when given on the command line (`cf-r2-storage-class` with
//!   `--storage-class`). It wants a 2xx with a body; a 404 becomes "The
//!   specified bucket does not exist.", anything else an error that shows
//!   the status and the body.
//! - `r2 object get {bucket}/{key} --file F` (or `--pipe`): one
//!   `GET /{bucket}/objects/{key}`; the reply's body is the object, written
//!   out as it arrives. A 404, for a missing key or a missing bucket, becomes
//!   "The specified key does not exist.".
//! - `r2 object delete {bucket}/{key}`: one `DELETE /{bucket}/objects/{key}`
//!   (with `cf-r2-data-catalog-check: true` unless `--force`). wrangler
//!   ignores a 404, so deleting from a missing bucket "succeeds"; deleting a
//!   missing key succeeds on R2 too.
//! - `r2 bucket lifecycle list`: `GET /{bucket}/lifecycle`, whose result is
//!   `{"rules": [...]}`. `add` and `remove` get the rules, change them and
//!   `PUT /{bucket}/lifecycle` them all back as `{"rules": [...]}` (with
//!   `Content-Type: application/json`; `add` also sends
//!   `cf-r2-data-catalog-check: true` unless `--force`, `remove` never
//!   does); `set --file F` puts the file's `rules` without getting first.
//! - `r2 bucket lock list`: `GET /{bucket}/lock`, whose result is
//!   `{"rules": [...]}`, each `{"id", "enabled", "prefix"?, "condition":
//!   {"type": "Age", "maxAgeSeconds"} | {"type": "Date", "date"} |
//!   {"type": "Indefinite"}}`. `add` and `remove` get the rules, change them
//!   and `PUT /{bucket}/lock` them all back as `{"rules": [...]}`; `set
//!   --file F` puts the file's `rules`. The rules are enforced as R2
//!   enforces them: while an enabled rule whose prefix the key starts with
//!   holds an object (its age is under `maxAgeSeconds`, the date is not yet
//!   reached, or for ever), a `DELETE` of it, or a `PUT` over it, is
//!   answered 403 with R2's code 10069, "Object is protected by a bucket
//!   lock rule and cannot be modified or deleted.".
//! - `r2 bucket create NAME`: `POST` with `{"name", "locationHint"?,
//!   "storageClass"?}` (as `text/plain`); `r2 bucket list`: `GET`, whose
//!   result is `{"buckets": [...]}`; `r2 bucket info NAME`: `GET /{bucket}`,
//!   then a GraphQL `r2StorageAdaptiveGroups` query for the object count and
//!   size, which [`storage_metrics`] answers from the bucket's contents.
//!
//! The API also lists a bucket's objects, which wrangler 4.86 never asks
//! for (it has no `r2 object list`), but other clients of the REST API do:
//! `GET /{bucket}/objects?prefix=&delimiter=&cursor=&per_page=`. The result
//! is the objects (`key`, `size`, `etag`, `last_modified`, `http_metadata`,
//! `custom_metadata`, `storage_class`) in key order, at most `per_page` of
//! them (1000 by default, and at most), and `result_info` is `{"cursor",
//! "is_truncated", "delimited", "per_page"}`. With a `delimiter`, keys that
//! have it after the `prefix` are rolled up into their common prefix (up to
//! and including the delimiter), listed once in `delimited`; prefixes and
//! objects together fill the page. While `is_truncated` is true, `cursor`
//! is an opaque string to pass back for the next page (with the same
//! `prefix` and `delimiter`); on the last page it is empty, which is how
//! wrangler's own list helpers tell that there is no more.
//!
//! wrangler puts the key into the URL as it is: the URL parser
//! percent-encodes spaces, quotes, `<>`, `` ` ``, `{}` and non-ASCII
//! characters (as UTF-8) and leaves `/`, `+` and `%` alone, so the server
//! takes the rest of the path after `/objects/` as the key, slashes and all,
//! and percent-decodes it as a path (a `+` stays a `+`). A key with `?` or
//! `#`, or with `.` or `..` segments, does not survive wrangler's URL
//! handling; nor does a key containing a literal `%XX`, which R2 would
//! decode the same way.
//!
//! A request whose `{bucket}` does not exist, or that names a jurisdiction
//! other than the default one in `cf-r2-jurisdiction`, is answered 404 with
//! R2's code 10006, "The specified bucket does not exist.". The
//! `cf-r2-data-catalog-check` header is accepted and ignored: no bucket here
//! has a data catalog.
//!
//! Objects are files in the server's temporary directory, spooled there as
//! the upload arrives and streamed back from there, so objects of hundreds
//! of megabytes never sit in memory. New buckets start with no lifecycle
//! rules (real R2 gives buckets made in the dashboard a default rule that
//! aborts multipart uploads after 7 days); rules are stored and returned as
//! given.

use std::collections::BTreeMap;
use std::fs::File;
use std::io::{BufReader, Read, Write};
use std::ops::Bound;
use std::path::Path;

use md5::{Digest as _, Md5};
use serde::Serialize;
use serde_json::json;

use crate::Shared;
use crate::api::Ctx;
use crate::http::{Reply, Request};
use crate::util;

/// R2's error code for a bucket that does not exist.
pub(crate) const NO_SUCH_BUCKET: u32 = 10006;
/// R2's error code for a key that does not exist.
pub(crate) const NO_SUCH_KEY: u32 = 10007;
/// R2's error code for an internal error.
pub(crate) const INTERNAL_ERROR: u32 = 10001;
/// R2's error code for a bucket name that breaks the naming rules.
pub(crate) const INVALID_BUCKET_NAME: u32 = 10005;
/// R2's error code for creating a bucket that exists.
pub(crate) const BUCKET_EXISTS: u32 = 10004;
/// R2's error code for a delete or overwrite that a bucket lock forbids
/// (S3's `ObjectLockedByBucketPolicy`, HTTP 403).
pub(crate) const OBJECT_LOCKED: u32 = 10069;
/// The error code this server uses for a malformed request body.
pub(crate) const MALFORMED: u32 = 10040;

/// The object headers an upload may set and a download gives back, as
/// wrangler's `putHeaderKeys` has them (less `content-length`).
const HTTP_METADATA: [&str; 6] = [
    "content-type",
    "content-disposition",
    "content-encoding",
    "content-language",
    "cache-control",
    "expires",
];

/// The most objects and prefixes one page of a listing holds, and the
/// page size when the request names none.
const MAX_PER_PAGE: usize = 1000;

/// The location hints R2 accepts, as `wrangler r2 bucket create
/// --location` offers them.
const LOCATIONS: [&str; 6] = ["weur", "eeur", "apac", "wnam", "enam", "oc"];

/// Every bucket, by name.
#[derive(Debug, Default)]
pub(crate) struct Store {
    buckets: BTreeMap<String, Bucket>,
}

/// One bucket.
#[derive(Debug)]
struct Bucket {
    creation_date: String,
    /// An upper-case location such as `WNAM`.
    location: String,
    /// The default storage class of new objects.
    storage_class: String,
    /// The lifecycle rules, exactly as last put.
    lifecycle_rules: Vec<serde_json::Value>,
    /// The bucket lock rules, exactly as last put.
    lock_rules: Vec<serde_json::Value>,
    /// Objects by key; the map's order (by UTF-8 bytes) is R2's listing
    /// order.
    objects: BTreeMap<String, Object>,
}

impl Bucket {
    fn new(location: &str, storage_class: &str) -> Bucket {
        Bucket {
            creation_date: util::iso8601(util::now_ms()),
            location: location.to_ascii_uppercase(),
            storage_class: storage_class.to_owned(),
            lifecycle_rules: Vec::new(),
            lock_rules: Vec::new(),
            objects: BTreeMap::new(),
        }
    }

    /// Whether a lock rule forbids deleting or overwriting the object at
    /// `key` at `now_ms`: an enabled rule whose prefix the key starts with,
    /// and whose condition still holds the object.
    fn is_locked(&self, key: &str, now_ms: i64) -> bool {
        let Some(object) = self.objects.get(key) else {
            return false;
        };
        self.lock_rules
            .iter()
            .any(|rule| lock_holds(rule, key, object.uploaded_ms, now_ms))
    }

    fn info(&self, name: &str) -> BucketInfo {
        BucketInfo {
            name: name.to_owned(),
            creation_date: self.creation_date.clone(),
            location: self.location.clone(),
            storage_class: self.storage_class.clone(),
            jurisdiction: "default",
        }
    }
}

/// One stored object.
#[derive(Debug)]
struct Object {
    /// The file that holds the object's bytes; it goes away with the object.
    path: tempfile::TempPath,
    size: u64,
    md5_hex: String,
    uploaded_ms: i64,
    /// The headers from [`HTTP_METADATA`] that the upload carried.
    http_metadata: Vec<(&'static str, String)>,
    storage_class: String,
}

/// A bucket as the bucket endpoints describe it; wrangler reads `name`,
/// `creation_date`, `location` and `storage_class`.
#[derive(Debug, Serialize)]
struct BucketInfo {
    name: String,
    creation_date: String,
    location: String,
    storage_class: String,
    jurisdiction: &'static str,
}

/// The result of an upload.
#[derive(Debug, Serialize)]
struct PutResult {
    key: String,
    version: String,
    size: u64,
    etag: String,
    http_metadata: serde_json::Map<String, serde_json::Value>,
    custom_metadata: serde_json::Map<String, serde_json::Value>,
    uploaded: String,
    storage_class: String,
}

/// One object in a listing.
#[derive(Debug, Serialize)]
struct ListedObject {
    key: String,
    size: u64,
    etag: String,
    last_modified: String,
    http_metadata: serde_json::Map<String, serde_json::Value>,
    custom_metadata: serde_json::Map<String, serde_json::Value>,
    storage_class: String,
}

/// The `result_info` of a listing.
#[derive(Debug, Serialize)]
struct ListInfo {
    /// What to pass as `cursor` for the next page; empty on the last page.
    cursor: String,
    is_truncated: bool,
    /// The common prefixes on this page, when a delimiter was given.
    delimited: Vec<String>,
    per_page: usize,
}

/// One page of a bucket's listing.
#[derive(Debug)]
struct Page<'a> {
    objects: Vec<(&'a str, &'a Object)>,
    /// Common prefixes, in order.
    delimited: Vec<String>,
    /// The last entry (key or common prefix) on the page, when more follow.
    next_after: Option<String>,
}

impl Bucket {
    /// Lists up to `limit` entries whose keys start with `prefix` and whose
    /// entry (the key, or its common prefix under `delimiter`) sorts after
    /// `after`. Entries sort as their keys do: a key's common prefix is a
    /// prefix of it, and every later key outside the group sorts after the
    /// whole group, so a page can resume from the last entry alone.
    fn list<'a>(
        &'a self,
        prefix: &str,
        delimiter: Option<&str>,
        after: Option<&str>,
        limit: usize,
    ) -> Page<'a> {
        let start = match after {
            Some(after) if after >= prefix => Bound::Excluded(after),
            _ => Bound::Included(prefix),
        };
        let mut page = Page {
            objects: Vec::new(),
            delimited: Vec::new(),
            next_after: None,
        };
        let mut count = 0;
        let mut last: Option<&str> = None;
        for (key, object) in self.objects.range::<str, _>((start, Bound::Unbounded)) {
            // The keys with the prefix are one run, starting at the prefix.
            let Some(rest) = key.strip_prefix(prefix) else {
                break;
            };
            let group =
                delimiter.and_then(|d| rest.find(d).map(|i| &key[..prefix.len() + i + d.len()]));
            let entry = group.unwrap_or(key);
            // Keys rolled up into a prefix an earlier page (or this one)
            // already listed.
            if after.is_some_and(|after| entry <= after) || (group.is_some() && last == Some(entry))
            {
                continue;
            }
            if count == limit {
                page.next_after = last.map(str::to_owned);
                break;
            }
            count += 1;
            last = Some(entry);
            match group {
                Some(group) => page.delimited.push(group.to_owned()),
                None => page.objects.push((key, object)),
            }
        }
        page
    }
}

/// The opaque cursor for a listing that resumes after `entry`: its UTF-8
/// bytes in hex, which needs no escaping in a query string.
fn encode_cursor(entry: &str) -> String {
    util::hex(entry.as_bytes())
}

/// The entry a cursor resumes after; `None` for a cursor this server did
/// not hand out.
fn decode_cursor(cursor: &str) -> Option<String> {
    if !cursor.len().is_multiple_of(2) || !cursor.is_ascii() {
        return None;
    }
    let bytes = (0..cursor.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&cursor[i..i + 2], 16).ok())
        .collect::<Option<Vec<u8>>>()?;
    String::from_utf8(bytes).ok()
}

impl Store {
    /// Adds an empty bucket in the default location, unless one of that
    /// name exists.
    pub fn add_bucket(&mut self, name: &str) {
        self.buckets
            .entry(name.to_owned())
            .or_insert_with(|| Bucket::new("wnam", "Standard"));
    }

    pub fn bucket_names(&self) -> Vec<String> {
        self.buckets.keys().cloned().collect()
    }

    pub fn has_bucket(&self, name: &str) -> bool {
        self.buckets.contains_key(name)
    }

    pub fn keys(&self, bucket: &str) -> Vec<String> {
        self.buckets
            .get(bucket)
            .map(|b| b.objects.keys().cloned().collect())
            .unwrap_or_default()
    }

    /// The bytes of an object.
    pub fn object(&self, bucket: &str, key: &str) -> Option<Vec<u8>> {
        let object = self.buckets.get(bucket)?.objects.get(key)?;
        std::fs::read(&object.path).ok()
    }

    /// The lifecycle rules of a bucket, as a JSON array; `Null` for a bucket
    /// that does not exist.
    pub fn lifecycle(&self, bucket: &str) -> serde_json::Value {
        self.buckets
            .get(bucket)
            .map_or(serde_json::Value::Null, |b| {
                serde_json::Value::Array(b.lifecycle_rules.clone())
            })
    }

    /// The lock rules of a bucket, as a JSON array; `Null` for a bucket
    /// that does not exist.
    pub fn lock(&self, bucket: &str) -> serde_json::Value {
        self.buckets
            .get(bucket)
            .map_or(serde_json::Value::Null, |b| {
                serde_json::Value::Array(b.lock_rules.clone())
            })
    }

    /// Stores `bytes` under `key` in an existing bucket, as an upload
    /// without headers would. The file goes in `dir`.
    pub fn put_bytes(
        &mut self,
        dir: &Path,
        bucket: &str,
        key: &str,
        bytes: &[u8],
    ) -> anyhow::Result<()> {
        let Some(bucket_state) = self.buckets.get_mut(bucket) else {
            anyhow::bail!("the R2 bucket {bucket:?} does not exist");
        };
        let mut file = tempfile::Builder::new().prefix("r2-").tempfile_in(dir)?;
        file.write_all(bytes)?;
        file.flush()?;
        let object = Object {
            path: file.into_temp_path(),
            size: bytes.len() as u64,
            md5_hex: util::hex(&Md5::digest(bytes)),
            uploaded_ms: util::now_ms(),
            http_metadata: Vec::new(),
            storage_class: bucket_state.storage_class.clone(),
        };
        bucket_state.objects.insert(key.to_owned(), object);
        Ok(())
    }
}

/// Whether wrangler would accept `name` as a bucket name (its
/// `isValidR2BucketName`: 3 to 63 lowercase letters, digits and hyphens,
/// starting and ending with a letter or digit).
pub(crate) fn is_valid_bucket_name(name: &str) -> bool {
    let bytes = name.as_bytes();
    let inner = |b: &u8| b.is_ascii_lowercase() || b.is_ascii_digit();
    (3..=63).contains(&bytes.len())
        && inner(&bytes[0])
        && inner(&bytes[bytes.len() - 1])
        && bytes.iter().all(|b| inner(b) || *b == b'-')
}

/// Whether a request names the default jurisdiction, the only one served.
fn default_jurisdiction(req: &Request) -> bool {
    req.header("cf-r2-jurisdiction")
        .is_none_or(|j| j.eq_ignore_ascii_case("default"))
}

/// Dispatch's check of a route's `{bucket}`: `None` when the bucket
/// exists, else the refusal.
pub(crate) fn check_bucket(shared: &Shared, req: &Request, bucket: &str) -> Option<Reply> {
    if default_jurisdiction(req) && shared.r2().has_bucket(bucket) {
        None
    } else {
        Some(no_such_bucket())
    }
}

fn no_such_bucket() -> Reply {
    Reply::cf_error(404, NO_SUCH_BUCKET, "The specified bucket does not exist.")
}

/// R2's internal error, under the given status, for injected faults.
fn internal_error(status: u16) -> Reply {
    Reply::cf_error(
        status,
        INTERNAL_ERROR,
        "We encountered an internal error. Please try again. (a fault injected by d1-loopback)",
    )
}

fn bucket_param<'a>(ctx: &'a Ctx<'_>) -> &'a str {
    ctx.params
        .get("bucket")
        .expect("only routes with a {bucket} segment get here")
}

fn key_param<'a>(ctx: &'a Ctx<'_>) -> &'a str {
    ctx.params
        .get("key")
        .expect("only routes with a {*key} segment get here")
}

/// `GET /accounts/{account}/r2/buckets`.
pub(crate) fn list_buckets(ctx: &Ctx<'_>) -> Reply {
    let store = ctx.shared.r2();
    let buckets: Vec<BucketInfo> = if default_jurisdiction(ctx.req) {
        store
            .buckets
            .iter()
            .map(|(name, bucket)| bucket.info(name))
            .collect()
    } else {
        Vec::new()
    };
    Reply::cf_ok(json!({ "buckets": buckets }))
}

/// `POST /accounts/{account}/r2/buckets` with `{"name", "locationHint"?,
/// "storageClass"?}`.
pub(crate) fn create_bucket(ctx: &Ctx<'_>) -> Reply {
    let Ok(body) = serde_json::from_slice::<serde_json::Value>(&ctx.req.body) else {
        return Reply::cf_error(400, MALFORMED, "The JSON you provided was not well formed.");
    };
    let Some(name) = body.get("name").and_then(|n| n.as_str()) else {
        return Reply::cf_error(
            400,
            MALFORMED,
            "The request body must have a string \"name\"",
        );
    };
    if !is_valid_bucket_name(name) {
        return Reply::cf_error(
            400,
            INVALID_BUCKET_NAME,
            "The specified bucket name is not valid.",
        );
    }
    if !default_jurisdiction(ctx.req) {
        return Reply::cf_error(
            400,
            MALFORMED,
            "d1-loopback serves only the default jurisdiction",
        );
    }
    let location = match body.get("locationHint") {
        None | Some(serde_json::Value::Null) => "wnam".to_owned(),
        Some(hint) => match hint.as_str().map(str::to_ascii_lowercase) {
            Some(hint) if LOCATIONS.contains(&hint.as_str()) => hint,
            _ => {
                return Reply::cf_error(
                    400,
                    MALFORMED,
                    format!("The location hint {hint} is not valid."),
                );
            }
        },
    };
    let storage_class = match body.get("storageClass").and_then(|s| s.as_str()) {
        None => "Standard",
        Some(class @ ("Standard" | "InfrequentAccess")) => class,
        Some(other) => {
            return Reply::cf_error(
                400,
                MALFORMED,
                format!("The storage class {other} is not valid."),
            );
        }
    };
    let mut store = ctx.shared.r2();
    if store.has_bucket(name) {
        return Reply::cf_error(
            409,
            BUCKET_EXISTS,
            "The bucket you tried to create already exists, and you own it.",
        );
    }
    let bucket = Bucket::new(&location, storage_class);
    let info = bucket.info(name);
    store.buckets.insert(name.to_owned(), bucket);
    Reply::cf_ok(info)
}

/// `GET /accounts/{account}/r2/buckets/{bucket}`.
pub(crate) fn get_bucket(ctx: &Ctx<'_>) -> Reply {
    let name = bucket_param(ctx);
    match ctx.shared.r2().buckets.get(name) {
        Some(bucket) => Reply::cf_ok(bucket.info(name)),
        None => no_such_bucket(),
    }
}

/// `GET /accounts/{account}/r2/buckets/{bucket}/lifecycle`.
pub(crate) fn get_lifecycle(ctx: &Ctx<'_>) -> Reply {
    if let Some(status) = ctx.shared.faults().r2_lifecycle_get_status {
        return internal_error(status);
    }
    match ctx.shared.r2().buckets.get(bucket_param(ctx)) {
        Some(bucket) => Reply::cf_ok(json!({ "rules": bucket.lifecycle_rules })),
        None => no_such_bucket(),
    }
}

/// The `rules` array of a `{"rules": [...]}` body, or the refusal.
fn rules_body(ctx: &Ctx<'_>) -> Result<Vec<serde_json::Value>, Reply> {
    let Ok(body) = serde_json::from_slice::<serde_json::Value>(&ctx.req.body) else {
        return Err(Reply::cf_error(
            400,
            MALFORMED,
            "The JSON you provided was not well formed.",
        ));
    };
    match body.get("rules").and_then(|r| r.as_array()) {
        Some(rules) => Ok(rules.clone()),
        None => Err(Reply::cf_error(
            400,
            MALFORMED,
            "The request body must have a \"rules\" array",
        )),
    }
}

/// `PUT /accounts/{account}/r2/buckets/{bucket}/lifecycle` with
/// `{"rules": [...]}`, which replaces every rule.
pub(crate) fn put_lifecycle(ctx: &Ctx<'_>) -> Reply {
    let rules = match rules_body(ctx) {
        Ok(rules) => rules,
        Err(refusal) => return refusal,
    };
    if !rules.iter().all(serde_json::Value::is_object) {
        return Reply::cf_error(400, MALFORMED, "Every lifecycle rule must be an object");
    }
    match ctx.shared.r2().buckets.get_mut(bucket_param(ctx)) {
        Some(bucket) => {
            bucket.lifecycle_rules = rules;
            Reply::cf_ok(json!({}))
        }
        None => no_such_bucket(),
    }
}

/// The MD5 of a file, as lowercase hex.
fn md5_file(path: &Path) -> std::io::Result<String> {
    let mut reader = BufReader::with_capacity(1 << 20, File::open(path)?);
    let mut hasher = Md5::new();
    let mut buf = vec![0u8; 1 << 16];
    loop {
        match reader.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => hasher.update(&buf[..n]),
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(util::hex(&hasher.finalize()))
}

/// `GET /accounts/{account}/r2/buckets/{bucket}/objects?prefix=&delimiter=
/// &cursor=&per_page=`: one page of the bucket's objects, in key order.
pub(crate) fn list_objects(ctx: &Ctx<'_>) -> Reply {
    let req = ctx.req;
    let prefix = req.query_param("prefix").unwrap_or_default();
    let delimiter = req.query_param("delimiter").filter(|d| !d.is_empty());
    let per_page = match req.query_param("per_page") {
        None => MAX_PER_PAGE,
        Some(n) => match n.parse::<usize>() {
            Ok(n) if n > 0 => n.min(MAX_PER_PAGE),
            _ => {
                return Reply::cf_error(
                    400,
                    MALFORMED,
                    format!("per_page must be a positive integer, not {n:?}"),
                );
            }
        },
    };
    let after = match req.query_param("cursor").filter(|c| !c.is_empty()) {
        None => None,
        Some(cursor) => match decode_cursor(cursor) {
            Some(after) => Some(after),
            None => {
                return Reply::cf_error(
                    400,
                    MALFORMED,
                    format!("The cursor {cursor} is not valid."),
                );
            }
        },
    };
    let store = ctx.shared.r2();
    let Some(bucket) = store.buckets.get(bucket_param(ctx)) else {
        return no_such_bucket();
    };
    let page = bucket.list(prefix, delimiter, after.as_deref(), per_page);
    let objects: Vec<ListedObject> = page
        .objects
        .iter()
        .map(|(key, object)| ListedObject {
            key: (*key).to_owned(),
            size: object.size,
            etag: object.md5_hex.clone(),
            last_modified: util::iso8601(object.uploaded_ms),
            http_metadata: object
                .http_metadata
                .iter()
                .map(|(k, v)| ((*k).to_owned(), json!(v)))
                .collect(),
            custom_metadata: serde_json::Map::new(),
            storage_class: object.storage_class.clone(),
        })
        .collect();
    let info = ListInfo {
        cursor: page
            .next_after
            .as_deref()
            .map(encode_cursor)
            .unwrap_or_default(),
        is_truncated: page.next_after.is_some(),
        delimited: page.delimited,
        per_page,
    };
    Reply::cf_ok_paged(objects, Some(info))
}

/// `PUT /accounts/{account}/r2/buckets/{bucket}/objects/{key}`, whose body
/// (spooled to a file) is the whole object.
pub(crate) fn put_object(ctx: &Ctx<'_>) -> Reply {
    let spooled = ctx.req.spooled.borrow_mut().take();
    let faults = ctx.shared.faults();
    if let Some(status) = faults.r2_put_status {
        return internal_error(status);
    }
    let Some(spooled) = spooled else {
        return internal_error(500);
    };
    let (mut size, mut md5_hex) = (spooled.len, spooled.md5_hex);
    if let Some(keep) = faults.r2_put_truncate_to.map(|n| n as u64)
        && keep < size
    {
        let truncated = std::fs::OpenOptions::new()
            .write(true)
            .open(&spooled.path)
            .and_then(|file| file.set_len(keep))
            .and_then(|()| md5_file(&spooled.path));
        match truncated {
            Ok(md5) => (size, md5_hex) = (keep, md5),
            Err(e) => {
                return Reply::cf_error(500, INTERNAL_ERROR, format!("truncating: {e}"));
            }
        }
    }
    let http_metadata: Vec<(&'static str, String)> = HTTP_METADATA
        .iter()
        .filter_map(|name| ctx.req.header(name).map(|v| (*name, v.to_owned())))
        .collect();
    let key = key_param(ctx).to_owned();
    let mut store = ctx.shared.r2();
    let Some(bucket) = store.buckets.get_mut(bucket_param(ctx)) else {
        return no_such_bucket();
    };
    if bucket.is_locked(&key, util::now_ms()) {
        return object_locked();
    }
    let storage_class = ctx
        .req
        .header("cf-r2-storage-class")
        .map_or_else(|| bucket.storage_class.clone(), str::to_owned);
    let uploaded_ms = util::now_ms();
    let result = PutResult {
        key: key.clone(),
        version: util::random_hex(32),
        size,
        etag: md5_hex.clone(),
        http_metadata: http_metadata
            .iter()
            .map(|(k, v)| ((*k).to_owned(), json!(v)))
            .collect(),
        custom_metadata: serde_json::Map::new(),
        uploaded: util::iso8601(uploaded_ms),
        storage_class: storage_class.clone(),
    };
    // Replacing an object drops the old one, whose file goes with it.
    bucket.objects.insert(
        key,
        Object {
            path: spooled.path,
            size,
            md5_hex,
            uploaded_ms,
            http_metadata,
            storage_class,
        },
    );
    Reply::cf_ok(result)
}

/// `GET /accounts/{account}/r2/buckets/{bucket}/objects/{key}`: the object's
/// bytes, with its `ETag`, `Last-Modified` and stored headers.
pub(crate) fn get_object(ctx: &Ctx<'_>) -> Reply {
    if let Some(status) = ctx.shared.faults().r2_get_status {
        return internal_error(status);
    }
    let store = ctx.shared.r2();
    let Some(bucket) = store.buckets.get(bucket_param(ctx)) else {
        return no_such_bucket();
    };
    let Some(object) = bucket.objects.get(key_param(ctx)) else {
        return Reply::cf_error(404, NO_SUCH_KEY, "The specified key does not exist.");
    };
    let file = match File::open(&object.path) {
        Ok(file) => file,
        Err(e) => return Reply::cf_error(500, INTERNAL_ERROR, format!("reading: {e}")),
    };
    let mut reply = Reply::file(200, "application/octet-stream", file, object.size)
        .with_header("ETag", format!("\"{}\"", object.md5_hex))
        .with_header("Last-Modified", util::http_date(object.uploaded_ms))
        .with_header("cf-r2-storage-class", object.storage_class.clone());
    for (name, value) in &object.http_metadata {
        reply = reply.with_header(name, value.clone());
    }
    reply
}

/// `DELETE /accounts/{account}/r2/buckets/{bucket}/objects/{key}`. Deleting
/// a key that is not there succeeds, as on R2; deleting one a lock rule
/// holds is refused.
pub(crate) fn delete_object(ctx: &Ctx<'_>) -> Reply {
    let key = key_param(ctx);
    match ctx.shared.r2().buckets.get_mut(bucket_param(ctx)) {
        Some(bucket) if bucket.is_locked(key, util::now_ms()) => object_locked(),
        Some(bucket) => {
            bucket.objects.remove(key);
            Reply::cf_ok(json!({}))
        }
        None => no_such_bucket(),
    }
}

/// Whether one lock rule holds an object uploaded at `uploaded_ms`, at
/// `now_ms`. A rule this server cannot read holds it: a lock fails closed.
fn lock_holds(rule: &serde_json::Value, key: &str, uploaded_ms: i64, now_ms: i64) -> bool {
    if rule.get("enabled").and_then(|e| e.as_bool()) == Some(false) {
        return false;
    }
    let prefix = rule.get("prefix").and_then(|p| p.as_str()).unwrap_or("");
    if !key.starts_with(prefix) {
        return false;
    }
    let condition = rule.get("condition");
    match condition
        .and_then(|c| c.get("type"))
        .and_then(|t| t.as_str())
    {
        Some("Age") => match condition
            .and_then(|c| c.get("maxAgeSeconds"))
            .and_then(|s| s.as_i64())
        {
            Some(seconds) => now_ms - uploaded_ms < seconds.saturating_mul(1000),
            None => true,
        },
        Some("Date") => match condition
            .and_then(|c| c.get("date"))
            .and_then(|d| d.as_str())
            .and_then(util::parse_iso8601)
        {
            Some(until_ms) => now_ms < until_ms,
            None => true,
        },
        _ => true,
    }
}

fn object_locked() -> Reply {
    Reply::cf_error(
        403,
        OBJECT_LOCKED,
        "Object is protected by a bucket lock rule and cannot be modified or deleted.",
    )
}

/// `GET /accounts/{account}/r2/buckets/{bucket}/lock`.
pub(crate) fn get_lock(ctx: &Ctx<'_>) -> Reply {
    match ctx.shared.r2().buckets.get(bucket_param(ctx)) {
        Some(bucket) => Reply::cf_ok(json!({ "rules": bucket.lock_rules })),
        None => no_such_bucket(),
    }
}

/// `PUT /accounts/{account}/r2/buckets/{bucket}/lock` with `{"rules":
/// [...]}`, which replaces every rule. Each rule needs an `id` and a
/// `condition` with a `type`, and no two rules share an id.
pub(crate) fn put_lock(ctx: &Ctx<'_>) -> Reply {
    if let Some(status) = ctx.shared.faults().r2_lock_put_status {
        return internal_error(status);
    }
    let rules = match rules_body(ctx) {
        Ok(rules) => rules,
        Err(refusal) => return refusal,
    };
    let mut ids = std::collections::BTreeSet::new();
    for rule in &rules {
        let id = rule.get("id").and_then(|i| i.as_str());
        let kind = rule
            .get("condition")
            .and_then(|c| c.get("type"))
            .and_then(|t| t.as_str());
        if !matches!(kind, Some("Age" | "Date" | "Indefinite")) || id.is_none() {
            return Reply::cf_error(
                400,
                MALFORMED,
                "Every lock rule needs an id and a condition of type Age, Date or Indefinite",
            );
        }
        if !ids.insert(id) {
            return Reply::cf_error(
                400,
                MALFORMED,
                format!("Two lock rules have the id {}", id.unwrap_or_default()),
            );
        }
    }
    match ctx.shared.r2().buckets.get_mut(bucket_param(ctx)) {
        Some(bucket) => {
            bucket.lock_rules = rules;
            Reply::cf_ok(json!({}))
        }
        None => no_such_bucket(),
    }
}

/// The object count and total size of a bucket, for the GraphQL
/// `r2StorageAdaptiveGroups` query of `wrangler r2 bucket info`. wrangler
/// names a bucket in another jurisdiction `{jurisdiction}_{name}`, which
/// matches no bucket here.
pub(crate) fn storage_metrics(shared: &Shared, bucket: &str) -> Option<(u64, u64)> {
    let store = shared.r2();
    let bucket = store.buckets.get(bucket)?;
    let count = bucket.objects.len() as u64;
    let size = bucket.objects.values().map(|o| o.size).sum();
    Some((count, size))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bucket_names_follow_wranglers_rule() {
        for good in ["abc", "backups-prod", "a1-2b", &"a".repeat(63)] {
            assert!(is_valid_bucket_name(good), "{good}");
        }
        for bad in [
            "ab",
            "-abc",
            "abc-",
            "ABC",
            "a_b",
            "a.b",
            "",
            &"a".repeat(64),
        ] {
            assert!(!is_valid_bucket_name(bad), "{bad}");
        }
    }

    #[test]
    fn the_store_keeps_bytes_and_lists_keys_in_order() {
        let dir = tempfile::tempdir().unwrap();
        let mut store = Store::default();
        assert!(store.put_bytes(dir.path(), "nope", "k", b"x").is_err());
        store.add_bucket("b1");
        store.put_bytes(dir.path(), "b1", "z", b"last").unwrap();
        store
            .put_bytes(dir.path(), "b1", "a/b/c", b"first")
            .unwrap();
        store.put_bytes(dir.path(), "b1", "z", b"replaced").unwrap();
        assert_eq!(store.keys("b1"), ["a/b/c", "z"]);
        assert_eq!(store.object("b1", "z").as_deref(), Some(&b"replaced"[..]));
        assert_eq!(store.object("b1", "y"), None);
        // The replaced object's file is gone.
        assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 2);
        // Adding an existing bucket keeps it as it is.
        store.add_bucket("b1");
        assert_eq!(store.keys("b1").len(), 2);
        assert_eq!(store.lifecycle("b1"), json!([]));
        assert_eq!(store.lifecycle("b2"), serde_json::Value::Null);
        assert_eq!(store.bucket_names(), ["b1"]);
    }

    /// Every entry of a listing, page by page, as `key` or `prefix/`
    /// strings, each page's entries in order.
    fn pages(
        bucket: &Bucket,
        prefix: &str,
        delimiter: Option<&str>,
        limit: usize,
    ) -> Vec<Vec<String>> {
        let mut out = Vec::new();
        let mut after: Option<String> = None;
        loop {
            let page = bucket.list(prefix, delimiter, after.as_deref(), limit);
            let mut entries: Vec<String> =
                page.objects.iter().map(|(k, _)| (*k).to_owned()).collect();
            entries.extend(page.delimited);
            entries.sort();
            out.push(entries);
            match page.next_after {
                Some(next) => after = Some(decode_cursor(&encode_cursor(&next)).unwrap()),
                None => return out,
            }
        }
    }

    #[test]
    fn listings_filter_roll_up_and_resume() {
        let dir = tempfile::tempdir().unwrap();
        let mut store = Store::default();
        store.add_bucket("b");
        for key in ["a", "a/1", "a/2", "a/x/1", "ab", "b/1", "b/2", "c", "ü/1"] {
            store
                .put_bytes(dir.path(), "b", key, key.as_bytes())
                .unwrap();
        }
        let bucket = &store.buckets["b"];
        let flat = |v: Vec<Vec<String>>| v.concat();
        let all = ["a", "a/1", "a/2", "a/x/1", "ab", "b/1", "b/2", "c", "ü/1"];
        assert_eq!(flat(pages(bucket, "", None, 1000)), all);
        for limit in 1..=9 {
            let pages = pages(bucket, "", None, limit);
            assert!(pages.iter().all(|p| p.len() <= limit && !p.is_empty()));
            assert_eq!(flat(pages), all, "{limit}");
        }
        assert_eq!(flat(pages(bucket, "a/", None, 2)), ["a/1", "a/2", "a/x/1"]);
        assert_eq!(
            flat(pages(bucket, "", Some("/"), 1000)),
            ["a", "a/", "ab", "b/", "c", "ü/"]
        );
        // A rolled-up prefix is one entry, on one page only.
        for limit in 1..=6 {
            assert_eq!(
                flat(pages(bucket, "", Some("/"), limit)),
                ["a", "a/", "ab", "b/", "c", "ü/"],
                "{limit}"
            );
        }
        assert_eq!(
            flat(pages(bucket, "a/", Some("/"), 1)),
            ["a/1", "a/2", "a/x/"]
        );
        assert_eq!(flat(pages(bucket, "zzz", None, 10)), Vec::<String>::new());
        // A full last page says no more follow only when none do.
        assert_eq!(pages(bucket, "b/", None, 2), [["b/1", "b/2"]]);
    }

    #[test]
    fn cursors_round_trip_and_reject_garbage() {
        for entry in ["", "a/b c", "ü/\u{1F600}"] {
            assert_eq!(decode_cursor(&encode_cursor(entry)).as_deref(), Some(entry));
        }
        for bad in ["abc", "zz", "ff", "é", "aéb"] {
            assert_eq!(decode_cursor(bad), None, "{bad}");
        }
    }

    #[test]
    fn a_lock_holds_objects_under_its_prefix_until_its_age_or_date() {
        let day = 86_400_000;
        let age = json!({"id": "a", "enabled": true, "prefix": "prod/",
                         "condition": {"type": "Age", "maxAgeSeconds": 86_400}});
        assert!(lock_holds(&age, "prod/x", 0, day - 1));
        assert!(!lock_holds(&age, "prod/x", 0, day));
        assert!(!lock_holds(&age, "index/prod.json", 0, 0));
        let off = json!({"id": "a", "enabled": false, "condition": {"type": "Indefinite"}});
        assert!(!lock_holds(&off, "k", 0, 0));
        let forever = json!({"id": "a", "enabled": true, "condition": {"type": "Indefinite"}});
        assert!(lock_holds(&forever, "any/key", 0, i64::MAX / 2));
        let date = json!({"id": "d", "enabled": true,
                          "condition": {"type": "Date", "date": "1970-01-02T00:00:00.000Z"}});
        assert!(lock_holds(&date, "k", 0, day - 1));
        assert!(!lock_holds(&date, "k", 0, day));
        // A condition this server cannot read holds the object: fail closed.
        let odd = json!({"id": "o", "condition": {"type": "Age"}});
        assert!(lock_holds(&odd, "k", 0, i64::MAX / 2));
    }

    #[test]
    fn md5_of_a_file() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("f");
        std::fs::write(&path, b"").unwrap();
        assert_eq!(md5_file(&path).unwrap(), "d41d8cd98f00b204e9800998ecf8427e");
    }
}
