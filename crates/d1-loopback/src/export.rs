//! D1's polling export (`POST .../export`) and the signed URLs it hands out.
//!
//! wrangler's `exportRemotely` and `pollExport` drive this: the first call
//! carries no `current_bookmark` and is answered `"active"` with the
//! bookmark the export is pinned to; wrangler then calls again with that
//! bookmark until the answer is `"complete"` (with a signed URL to download
//! the dump from) or `"error"`.
//!
//! The dump is taken when the first call arrives, so it holds exactly the
//! state named by `at_bookmark`, as D1's export does, even if the database
//! changes before wrangler polls again. The dump is then parked in the
//! database's state until the poll that collects it.

use std::collections::HashMap;
use std::sync::{Arc, MutexGuard, PoisonError};

use serde::Serialize;

use crate::api::Ctx;
use crate::database::DbState;
use crate::http::Reply;
use crate::util;
use d1_dump::{self as dump, DumpOptions};

/// How long a signed URL stays valid; D1's say one hour.
const SIGNED_URL_LIFETIME_MS: i64 = 3_600_000;

/// An export whose dump was taken but not yet handed out.
#[derive(Debug)]
pub(crate) struct PendingExport {
    bookmark: String,
    options: DumpOptions,
    filename: String,
    /// The dump's bytes, or the message of the error that stopped it.
    outcome: Result<Arc<Vec<u8>>, String>,
}

/// An object that can be fetched through a signed URL.
#[derive(Debug)]
struct SignedObject {
    filename: String,
    signature: String,
    expires_at_ms: i64,
    body: Arc<Vec<u8>>,
}

/// A place an import file can be uploaded to through a signed URL.
#[derive(Debug)]
pub(crate) struct SignedUpload {
    pub filename: String,
    signature: String,
    expires_at_ms: i64,
    /// The uuid of the database the upload is for.
    pub database: String,
}

/// Everything signed URLs serve or accept, by token, and every URL handed
/// out.
#[derive(Debug, Default)]
pub(crate) struct SignedObjects {
    objects: HashMap<String, SignedObject>,
    urls: Vec<String>,
    uploads: HashMap<String, SignedUpload>,
    upload_urls: Vec<String>,
}

/// A presigned-S3-style URL on this server: `/__signed/{token}/{file}` with
/// the query string of an AWS SigV4 presigned request. Returns the URL,
/// its token and signature, and when it expires.
fn presign(origin: &str, filename: &str, x_id: &str) -> (String, String, String, i64) {
    let token = util::random_hex(32);
    let signature = util::random_hex(64);
    let now = util::now_ms();
    let date = util::amz_date(now);
    let url = format!(
        "{origin}/__signed/{token}/{file}?X-Amz-Algorithm=AWS4-HMAC-SHA256\
         &X-Amz-Content-Sha256=UNSIGNED-PAYLOAD\
         &X-Amz-Credential=d1loopback%2F{day}%2Fauto%2Fs3%2Faws4_request\
         &X-Amz-Date={date}&X-Amz-Expires={expires}&X-Amz-Signature={signature}\
         &X-Amz-SignedHeaders=host&x-id={x_id}",
        file = util::percent_encode(filename),
        day = &date[..8],
        expires = SIGNED_URL_LIFETIME_MS / 1000,
    );
    (url, token, signature, now + SIGNED_URL_LIFETIME_MS)
}

impl SignedObjects {
    /// Every export signed URL handed out so far, in order.
    pub fn urls(&self) -> Vec<String> {
        self.urls.clone()
    }

    /// Every import upload URL handed out so far, in order.
    pub fn upload_urls(&self) -> Vec<String> {
        self.upload_urls.clone()
    }

    /// Stores `body` and returns a presigned-S3-style URL that serves it.
    fn sign(&mut self, origin: &str, filename: &str, body: Arc<Vec<u8>>) -> String {
        let (url, token, signature, expires_at_ms) = presign(origin, filename, "GetObject");
        self.objects.insert(
            token,
            SignedObject {
                filename: filename.to_owned(),
                signature,
                expires_at_ms,
                body,
            },
        );
        self.urls.push(url.clone());
        url
    }

    /// Returns a presigned-S3-style URL that accepts a `PUT` of an import
    /// file named `filename` for the database `database`.
    pub fn sign_upload(&mut self, origin: &str, database: &str, filename: &str) -> String {
        let (url, token, signature, expires_at_ms) = presign(origin, filename, "PutObject");
        self.uploads.insert(
            token,
            SignedUpload {
                filename: filename.to_owned(),
                signature,
                expires_at_ms,
                database: database.to_owned(),
            },
        );
        self.upload_urls.push(url.clone());
        url
    }

    /// The upload a `PUT` to a signed URL is for, or the S3-style refusal
    /// R2 would send if the URL is unknown, altered or expired.
    pub fn check_upload(&self, ctx: &Ctx<'_>) -> Result<&SignedUpload, Reply> {
        let token = ctx.params.get("token").unwrap_or_default();
        let upload = self
            .uploads
            .get(token)
            .ok_or_else(|| s3_error("AccessDenied", "Access Denied"))?;
        check_presigned(
            ctx,
            &upload.filename,
            &upload.signature,
            upload.expires_at_ms,
        )?;
        Ok(upload)
    }
}

/// Checks the filename, signature and expiry of a request to a signed URL,
/// answering as R2 does when one is wrong.
fn check_presigned(
    ctx: &Ctx<'_>,
    filename: &str,
    signature: &str,
    expires_at_ms: i64,
) -> Result<(), Reply> {
    if ctx.params.get("filename") != Some(filename) {
        return Err(s3_error("AccessDenied", "Access Denied"));
    }
    if ctx.req.query_param("X-Amz-Signature") != Some(signature) {
        return Err(s3_error(
            "SignatureDoesNotMatch",
            "The request signature we calculated does not match the signature you provided.",
        ));
    }
    if util::now_ms() > expires_at_ms {
        return Err(s3_error("AccessDenied", "Request has expired"));
    }
    Ok(())
}

/// The `result` of one `/export` call, as `pollExport` reads it.
#[derive(Debug, Serialize)]
struct ExportPoll {
    success: bool,
    #[serde(rename = "type")]
    kind: &'static str,
    at_bookmark: String,
    status: &'static str,
    messages: Vec<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    error: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    result: Option<ExportResult>,
}

#[derive(Debug, Serialize)]
struct ExportResult {
    filename: String,
    signed_url: String,
}

/// Reads the request body of `/export`.
fn parse_request(body: &[u8]) -> Result<(DumpOptions, Option<String>), String> {
    let body: serde_json::Value =
        serde_json::from_slice(body).map_err(|e| format!("Malformed JSON in request body: {e}"))?;
    match body.get("output_format").and_then(|f| f.as_str()) {
        Some("polling") => {}
        other => {
            return Err(format!(
                "Unsupported output_format {other:?}: only \"polling\" is supported"
            ));
        }
    }
    let options = body.get("dump_options");
    let flag = |name: &str| {
        options
            .and_then(|o| o.get(name))
            .and_then(|v| v.as_bool())
            .unwrap_or(false)
    };
    // wrangler 4.159+ sends `compatibility` for `--compatibility
    // sqlite3_cli_only`, a remote-only format this server does not make.
    // Refusing it keeps a test from passing on a dump D1 would not write.
    match options.and_then(|o| o.get("compatibility")) {
        None | Some(serde_json::Value::Null) => {}
        Some(other) => {
            return Err(format!(
                "dump_options.compatibility {other} is not served by the loopback: it writes \
                 only D1's default export format"
            ));
        }
    }
    let tables = match options.and_then(|o| o.get("tables")) {
        None | Some(serde_json::Value::Null) => Vec::new(),
        Some(serde_json::Value::Array(items)) => items
            .iter()
            .map(|t| t.as_str().map(str::to_owned))
            .collect::<Option<_>>()
            .ok_or("dump_options.tables must be an array of strings")?,
        Some(_) => return Err("dump_options.tables must be an array of strings".into()),
    };
    let current_bookmark = match body.get("current_bookmark") {
        None | Some(serde_json::Value::Null) => None,
        Some(serde_json::Value::String(b)) => Some(b.clone()),
        Some(_) => return Err("current_bookmark must be a string or null".into()),
    };
    Ok((
        DumpOptions {
            no_schema: flag("no_schema"),
            no_data: flag("no_data"),
            tables,
            // D1's own bytes, losses and all.
            lossless: false,
        },
        current_bookmark,
    ))
}

/// Dumps the database as it is now.
fn take_dump(db: &mut DbState, name: &str, options: DumpOptions) -> PendingExport {
    let bookmark = db.current_bookmark();
    PendingExport {
        filename: format!("{name}-{bookmark}.sql"),
        outcome: dump::dump_sql(db.conn(), &options)
            .map(|sql| Arc::new(sql.into_bytes()))
            .map_err(|e| e.to_string()),
        bookmark,
        options,
    }
}

/// `POST /accounts/{account}/d1/database/{database}/export`.
pub(crate) fn start_or_poll(ctx: &Ctx<'_>) -> Reply {
    if let Some(message) = ctx.shared.faults().export_api_error {
        return Reply::cf_error(500, 7500, message);
    }
    let (options, current_bookmark) = match parse_request(&ctx.req.body) {
        Ok(parsed) => parsed,
        Err(message) => return Reply::cf_error(400, 7400, message),
    };
    let database = ctx.database();
    let mut db = database.lock();

    if ctx.shared.faults().export_never_completes {
        return never_completes(&mut db, current_bookmark);
    }
    let Some(bookmark) = current_bookmark else {
        return start(&mut db, &database.name, options);
    };
    let Some(export) = take_export(&mut db, &database.name, &bookmark, options) else {
        return moved_on(bookmark);
    };
    drop(db);
    finish(ctx, export)
}

/// The fault `export_never_completes`: every call answers "active".
fn never_completes(db: &mut DbState, current_bookmark: Option<String>) -> Reply {
    let bookmark = current_bookmark.unwrap_or_else(|| db.current_bookmark());
    Reply::cf_ok(ExportPoll {
        success: true,
        kind: "export",
        at_bookmark: bookmark,
        status: "active",
        messages: vec!["Generating (this export never completes)".to_owned()],
        error: None,
        result: None,
    })
}

/// A first call: the dump is taken now and kept for the polls, which
/// name its bookmark.
fn start(db: &mut DbState, name: &str, options: DumpOptions) -> Reply {
    let export = take_dump(db, name, options);
    let reply = ExportPoll {
        success: true,
        kind: "export",
        at_bookmark: export.bookmark.clone(),
        status: "active",
        messages: vec![format!("Generating {}", export.filename)],
        error: None,
        result: None,
    };
    db.pending_exports
        .retain(|p| !(p.bookmark == export.bookmark && p.options == export.options));
    db.pending_exports.push(export);
    Reply::cf_ok(reply)
}

/// The export a poll asks for: the one its first call started, or a dump
/// taken now when the database is still at that bookmark.
fn take_export(
    db: &mut DbState,
    name: &str,
    bookmark: &str,
    options: DumpOptions,
) -> Option<PendingExport> {
    let pending = db
        .pending_exports
        .iter()
        .position(|p| p.bookmark == bookmark && p.options == options)
        .map(|i| db.pending_exports.remove(i));
    match pending {
        Some(export) => Some(export),
        // A poll for the current state that no first call started (another
        // client, say) can still be served by dumping now.
        None if db.current_bookmark() == bookmark => Some(take_dump(db, name, options)),
        None => None,
    }
}

/// A poll for a state the database has left, with no export of it.
fn moved_on(bookmark: String) -> Reply {
    Reply::cf_ok(ExportPoll {
        success: true,
        kind: "export",
        at_bookmark: bookmark.clone(),
        status: "error",
        messages: Vec::new(),
        error: Some(format!(
            "No export is in progress at bookmark {bookmark}, and the database has \
             moved on since (d1-loopback exports only the current state)"
        )),
        result: None,
    })
}

/// The finished export: its signed URL, or the error the dump ran into.
fn finish(ctx: &Ctx<'_>, export: PendingExport) -> Reply {
    match export.outcome {
        Ok(body) => {
            let signed_url = ctx
                .shared
                .signed()
                .sign(&ctx.shared.origin, &export.filename, body);
            Reply::cf_ok(ExportPoll {
                success: true,
                kind: "export",
                at_bookmark: export.bookmark,
                status: "complete",
                messages: vec!["Uploaded part 1".to_owned()],
                error: None,
                result: Some(ExportResult {
                    filename: export.filename,
                    signed_url,
                }),
            })
        }
        Err(message) => Reply::cf_ok(ExportPoll {
            success: true,
            kind: "export",
            at_bookmark: export.bookmark,
            status: "error",
            messages: Vec::new(),
            error: Some(message),
            result: None,
        }),
    }
}

/// An S3-style XML error, as R2 sends for a bad presigned URL.
fn s3_error(code: &str, message: &str) -> Reply {
    s3_error_status(403, code, message)
}

/// An S3-style XML error with the given status.
pub(crate) fn s3_error_status(status: u16, code: &str, message: &str) -> Reply {
    Reply::bytes(
        status,
        "application/xml",
        format!(
            "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n\
             <Error><Code>{code}</Code><Message>{message}</Message></Error>"
        )
        .into_bytes(),
    )
}

/// `GET /__signed/{token}/{filename}`: serves an export's dump.
pub(crate) fn download(ctx: &Ctx<'_>) -> Reply {
    let signed = ctx.shared.signed();
    let token = ctx.params.get("token").unwrap_or_default();
    let Some(object) = signed.objects.get(token) else {
        return s3_error("AccessDenied", "Access Denied");
    };
    if let Err(refusal) = check_presigned(
        ctx,
        &object.filename,
        &object.signature,
        object.expires_at_ms,
    ) {
        return refusal;
    }
    let faults = ctx.shared.faults();
    if let Some(status) = faults.download_status {
        return internal_s3_error(status);
    }
    let mut body = object.body.to_vec();
    if let Some(bytes) = faults.download_truncate_to {
        body.truncate(bytes);
    }
    Reply {
        paced: faults.download_bytes_per_sec,
        ..Reply::bytes(200, "application/octet-stream", body)
    }
}

/// The S3-style error a failing R2 answers with, under the given status.
pub(crate) fn internal_s3_error(status: u16) -> Reply {
    s3_error_status(
        status,
        "InternalError",
        "We encountered an internal error. Please try again.",
    )
}

impl crate::Shared {
    /// Locks the signed objects; a poisoned lock is used as it is.
    pub(crate) fn signed(&self) -> MutexGuard<'_, SignedObjects> {
        self.signed.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_request_wrangler_sends_is_read_and_a_compatibility_mode_is_refused() {
        let (options, bookmark) = parse_request(
            br#"{"output_format":"polling","dump_options":{"no_schema":true,"tables":["a"]}}"#,
        )
        .unwrap();
        assert!(options.no_schema && !options.no_data);
        assert_eq!(options.tables, ["a"]);
        assert_eq!(bookmark, None);
        let err = parse_request(
            br#"{"output_format":"polling","dump_options":{"compatibility":"sqlite3_cli_only"}}"#,
        )
        .unwrap_err();
        assert!(err.contains("compatibility"), "{err}");
    }
}
