//! D1's import (`POST .../import`), which `wrangler d1 execute --remote
//! --file` drives, and the signed URL the file is uploaded to.
//!
//! wrangler's `executeRemotely`, `uploadAndBeginIngestion` and
//! `pollUntilComplete` speak this protocol:
//!
//! 1. `{"action": "init", "etag": <MD5 of the file, hex>}`. If no file with
//!    that MD5 was uploaded for the database, the answer is `{"upload_url",
//!    "filename"}`. If one was, D1 starts importing it at once and answers
//!    as a poll would; wrangler then says "File already uploaded.
//!    Processing." and skips steps 2 and 3.
//! 2. A `PUT` of the file to `upload_url`, without the API token, as to a
//!    presigned R2 URL. wrangler wants status 200 and an `ETag` header
//!    equal (quotes stripped) to the MD5 it computed.
//! 3. `{"action": "ingest", "etag", "filename"}` starts the import.
//! 4. `{"action": "poll", "current_bookmark": <at_bookmark>}` until the
//!    status is `"complete"` or `"error"`. wrangler polls again at once; this
//!    server holds a poll back for up to [`POLL_WAIT`] while the import
//!    runs, so that clients do not spin.
//!
//! Every answer after step 1's upload URL has `success`, `type: "import"`,
//! `at_bookmark` (the bookmark before the import, which identifies it),
//! `status` and `messages` (log lines since the last poll, which wrangler
//! prints). A finished import's answer has `result: {num_queries,
//! final_bookmark, meta: {duration, rows_read, rows_written, size_after,
//! ...}}`; a failed one's has the SQLite error in `error` (as Cloudflare's
//! API schema has it) and in `errors` (which is what wrangler reads and
//! prints as the error's headline). A request that names no upload or no
//! import gets `success: false` and an `error`, which wrangler prints
//! alone; D1's own "Not currently importing anything." is one of these.
//!
//! D1 answers `ingest` with the final status when the import is over within
//! about a second. This server always answers `"active"` first, so that a
//! client's polling is exercised on every import; the poll that follows
//! brings the outcome.
//!
//! The import itself runs on a thread of its own, holding the database's
//! lock, and runs the file all or nothing: see [`crate::script`]. Uploaded
//! files live in the server's temporary directory until the server stops;
//! the latest [`KEPT_UPLOADS`] per database are kept, so that a retry of the
//! same file finds it.

use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::{Arc, Condvar, Mutex, MutexGuard, PoisonError};
use std::time::Duration;

use serde::Serialize;

use crate::api::Ctx;
use crate::database::{Database, DbState, ImportDone};
use crate::export;
use crate::http::Reply;
use crate::script::{ScriptError, ScriptText};

/// How long a poll waits for a running import to finish before it answers
/// `"active"`.
pub(crate) const POLL_WAIT: Duration = Duration::from_millis(1500);

/// How many uploaded files are kept per database.
pub(crate) const KEPT_UPLOADS: usize = 2;

/// How many finished imports are remembered per database, for polls that
/// come late.
const KEPT_JOBS: usize = 8;

/// What D1 puts in `meta.served_by`; ours names this server.
const SERVED_BY: &str = "d1-loopback";

/// An uploaded import file.
#[derive(Debug)]
struct Upload {
    filename: String,
    /// The MD5 of what was uploaded, which may differ from the etag the
    /// upload URL was asked for.
    md5_hex: String,
    len: u64,
    path: Arc<tempfile::TempPath>,
}

/// One database's uploads and imports.
#[derive(Debug, Default)]
pub(crate) struct Imports {
    /// Oldest first.
    uploads: Vec<Upload>,
    /// Oldest first.
    jobs: Vec<Arc<ImportJob>>,
    /// Imports started under `Faults::import_poll_status_before_apply` or
    /// `Faults::import_held`, not yet run.
    held: Vec<HeldImport>,
}

/// An import that was started but not run: its run, for
/// [`Imports::release_held`].
pub(crate) struct HeldImport(Box<dyn FnOnce() + Send>);

impl std::fmt::Debug for HeldImport {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("HeldImport")
    }
}

impl Imports {
    /// The latest upload with this MD5.
    fn upload_by_md5(&self, md5_hex: &str) -> Option<usize> {
        self.uploads.iter().rposition(|u| u.md5_hex == md5_hex)
    }

    fn add_upload(&mut self, upload: Upload) {
        self.uploads.retain(|u| u.filename != upload.filename);
        self.uploads.push(upload);
        let excess = self.uploads.len().saturating_sub(KEPT_UPLOADS);
        self.uploads.drain(..excess);
    }

    fn active_job(&self) -> Option<&Arc<ImportJob>> {
        self.jobs.iter().find(|j| j.lock().outcome.is_none())
    }

    fn job_at(&self, bookmark: &str) -> Option<&Arc<ImportJob>> {
        self.jobs.iter().rev().find(|j| j.at_bookmark == bookmark)
    }

    /// The runs of the imports held so far, which the caller starts.
    pub(crate) fn release_held(&mut self) -> Vec<Box<dyn FnOnce() + Send>> {
        std::mem::take(&mut self.held)
            .into_iter()
            .map(|h| h.0)
            .collect()
    }
}

/// How an import ended.
type Outcome = Result<ImportDone, ScriptError>;

/// What polls can see of an import.
#[derive(Debug, Default)]
struct Progress {
    statements_run: u64,
    /// The statement count last told to a poll.
    reported: u64,
    /// Log lines not yet handed to a poll.
    messages: Vec<String>,
    outcome: Option<Outcome>,
}

/// One import, running or finished.
#[derive(Debug)]
pub(crate) struct ImportJob {
    /// The bookmark before the import, which polls name it by.
    at_bookmark: String,
    /// The MD5 of the file being imported.
    md5_hex: String,
    progress: Mutex<Progress>,
    finished: Condvar,
}

impl ImportJob {
    fn lock(&self) -> MutexGuard<'_, Progress> {
        self.progress.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn progressed(&self, statements_run: u64) {
        self.lock().statements_run = statements_run;
    }

    fn finish(&self, outcome: Outcome) {
        let mut progress = self.lock();
        match &outcome {
            Ok(done) => {
                progress.statements_run = done.stats.statements;
                progress
                    .messages
                    .push(format!("Processed {} queries.", done.stats.statements));
            }
            Err(e) => {
                progress.statements_run = e.statements_run;
                progress
                    .messages
                    .push(format!("Processed {} queries.", e.statements_run));
                progress.messages.push(match &e.statement {
                    Some((number, text)) => format!("Statement {number} failed: {text}"),
                    None => "The import failed after its last statement.".to_owned(),
                });
                progress.messages.push(format!(
                    "The import was rolled back: the database is as it was at bookmark {}.",
                    self.at_bookmark
                ));
            }
        }
        progress.reported = progress.statements_run;
        progress.outcome = Some(outcome);
        self.finished.notify_all();
    }
}

/// The `result` of a `/import` call after the upload, as
/// `pollUntilComplete` reads it.
#[derive(Debug, Serialize)]
struct ImportPoll {
    success: bool,
    #[serde(rename = "type")]
    kind: &'static str,
    at_bookmark: String,
    status: &'static str,
    messages: Vec<String>,
    errors: Vec<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    error: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    result: Option<ImportResult>,
}

#[derive(Debug, Serialize)]
struct ImportResult {
    success: bool,
    num_queries: u64,
    final_bookmark: String,
    meta: ImportMeta,
}

/// The `meta` of a finished import; wrangler prints `duration`,
/// `rows_read`, `rows_written` and `size_after`.
#[derive(Debug, Serialize)]
struct ImportMeta {
    served_by: &'static str,
    duration: f64,
    changes: u64,
    last_row_id: i64,
    changed_db: bool,
    size_after: u64,
    rows_read: u64,
    rows_written: u64,
}

/// The answer to `init` when the file must be uploaded.
#[derive(Debug, Serialize)]
struct InitUpload {
    success: bool,
    #[serde(rename = "type")]
    kind: &'static str,
    upload_url: String,
    filename: String,
}

/// A refusal that wrangler prints as it is.
#[derive(Debug, Serialize)]
struct Failure {
    success: bool,
    #[serde(rename = "type")]
    kind: &'static str,
    error: String,
}

fn failure(message: impl Into<String>) -> Reply {
    Reply::cf_ok(Failure {
        success: false,
        kind: "import",
        error: message.into(),
    })
}

/// The answer a poll gets about `job`, after waiting up to `wait` for it to
/// finish. Hands out the log lines gathered since the last answer.
fn poll_answer(job: &ImportJob, wait: Duration) -> Reply {
    let progress = job.lock();
    let (mut progress, _) = job
        .finished
        .wait_timeout_while(progress, wait, |p| p.outcome.is_none())
        .unwrap_or_else(PoisonError::into_inner);
    if progress.outcome.is_none() && progress.statements_run > progress.reported {
        let line = format!("Processed {} queries.", progress.statements_run);
        progress.messages.push(line);
        progress.reported = progress.statements_run;
    }
    let messages = std::mem::take(&mut progress.messages);
    let mut answer = ImportPoll {
        success: true,
        kind: "import",
        at_bookmark: job.at_bookmark.clone(),
        status: "active",
        messages,
        errors: Vec::new(),
        error: None,
        result: None,
    };
    match &progress.outcome {
        None => {}
        Some(Ok(done)) => {
            answer.status = "complete";
            answer.result = Some(ImportResult {
                success: true,
                num_queries: done.stats.statements,
                final_bookmark: done.final_bookmark.clone(),
                meta: ImportMeta {
                    served_by: SERVED_BY,
                    duration: done.stats.duration_ms,
                    changes: done.stats.changes,
                    last_row_id: done.stats.last_row_id,
                    changed_db: done.changed_db,
                    size_after: done.size_after,
                    rows_read: done.stats.rows_read,
                    rows_written: done.stats.changes,
                },
            });
        }
        Some(Err(e)) => {
            answer.status = "error";
            answer.error = Some(e.message.clone());
            answer.errors = vec![e.message.clone()];
        }
    }
    Reply::cf_ok(answer)
}

/// Runs one import to its end.
fn run_job(
    state: &Mutex<DbState>,
    job: &ImportJob,
    file: &tempfile::TempPath,
    (fault, loses, fails_with): (crate::script::IngestFault, Option<String>, Option<String>),
) {
    let outcome = catch_unwind(AssertUnwindSafe(|| {
        let whole = |message: String| ScriptError {
            message,
            statement: None,
            statements_run: 0,
        };
        if let Some(message) = fails_with {
            // D1 rolls the import back: none of it applies.
            return Err(whole(message));
        }
        let bytes = std::fs::read(file)
            .map_err(|e| whole(format!("d1-loopback could not read the upload: {e}")))?;
        let text = ScriptText::new(bytes).map_err(whole)?;
        let mut db = state.lock().unwrap_or_else(PoisonError::into_inner);
        let done = db.import(&text, &fault, &mut |n| job.progressed(n))?;
        if let Some(table) = &loses {
            db.lose_rows(table);
        }
        Ok(done)
    }))
    .unwrap_or_else(|_| {
        Err(ScriptError {
            message: "d1-loopback: internal error while importing".into(),
            statement: None,
            statements_run: 0,
        })
    });
    job.finish(outcome);
}

/// Starts importing `upload` into `db` on a thread of its own.
fn start_job(ctx: &Ctx<'_>, db: &Database, imports: &mut Imports, upload_at: usize) -> Reply {
    if imports.active_job().is_some() {
        return failure("An import is already in progress for this database.");
    }
    let upload = &imports.uploads[upload_at];
    let at_bookmark = db.lock().current_bookmark();
    let job = Arc::new(ImportJob {
        at_bookmark,
        md5_hex: upload.md5_hex.clone(),
        progress: Mutex::new(Progress {
            messages: vec![format!(
                "Starting import of {} ({} bytes).",
                upload.filename, upload.len
            )],
            ..Progress::default()
        }),
        finished: Condvar::new(),
    });
    let file = Arc::clone(&upload.path);
    let faults = ctx.shared.faults();
    let injected = (
        crate::script::IngestFault {
            after: faults.ingest_fail_after,
            at_statement_with: faults.ingest_fail_at_statement_with,
        },
        faults.ingest_loses_table,
        faults.import_fails_with,
    );
    let state = db.state_handle();
    let run = {
        let job = Arc::clone(&job);
        move || run_job(&state, &job, &file, injected)
    };
    if faults.import_poll_status_before_apply.is_some() || faults.import_held {
        imports.held.push(HeldImport(Box::new(run)));
    } else if let Err(e) = spawn_import(ctx.shared, run) {
        return Reply::cf_error(500, 7500, format!("could not start the import: {e}"));
    }
    imports.jobs.push(Arc::clone(&job));
    let excess = imports.jobs.len().saturating_sub(KEPT_JOBS);
    imports.jobs.drain(..excess);
    poll_answer(&job, Duration::ZERO)
}

/// Runs an import's `run` on a thread of its own, joined when the server
/// stops.
pub(crate) fn spawn_import(
    shared: &crate::Shared,
    run: impl FnOnce() + Send + 'static,
) -> std::io::Result<()> {
    let handle = std::thread::Builder::new()
        .name("d1-loopback-import".into())
        .spawn(run)?;
    shared.track_thread(handle);
    Ok(())
}

/// The body of a `/import` call.
enum Action {
    Init { etag: String },
    Ingest { etag: String, filename: String },
    Poll { bookmark: String },
}

fn parse_action(body: &[u8]) -> Result<Action, String> {
    let body: serde_json::Value =
        serde_json::from_slice(body).map_err(|e| format!("Malformed JSON in request body: {e}"))?;
    let field = |name: &str| {
        body.get(name)
            .and_then(|v| v.as_str())
            .map(str::to_owned)
            .ok_or_else(|| format!("The request body must have a string \"{name}\""))
    };
    let etag = || {
        let etag = field("etag")?.to_ascii_lowercase();
        if etag.len() == 32 && etag.bytes().all(|b| b.is_ascii_hexdigit()) {
            Ok(etag)
        } else {
            Err(format!(
                "\"etag\" must be the MD5 of the file as 32 hex digits, not {etag:?}"
            ))
        }
    };
    match field("action")?.as_str() {
        "init" => Ok(Action::Init { etag: etag()? }),
        "ingest" => Ok(Action::Ingest {
            etag: etag()?,
            filename: field("filename")?,
        }),
        "poll" => Ok(Action::Poll {
            bookmark: field("current_bookmark")?,
        }),
        other => Err(format!(
            "Unknown action {other:?}: expected \"init\", \"ingest\" or \"poll\""
        )),
    }
}

/// `POST /accounts/{account}/d1/database/{database}/import`.
pub(crate) fn import(ctx: &Ctx<'_>) -> Reply {
    let action = match parse_action(&ctx.req.body) {
        Ok(action) => action,
        Err(message) => return Reply::cf_error(400, 7400, message),
    };
    let db = ctx.database();
    let mut imports = db.lock_imports();
    match action {
        Action::Init { etag } => {
            if let Some((status, code, message)) = ctx.shared.faults().import_init_refused_with {
                return Reply::cf_error(status, code, message);
            }
            // A client that lost track of a running import of this file
            // gets that import's status rather than a second import.
            if let Some(job) = imports.active_job().filter(|j| j.md5_hex == etag) {
                return poll_answer(job, Duration::ZERO);
            }
            if let Some(upload_at) = imports.upload_by_md5(&etag) {
                let answer = start_job(ctx, db, &mut imports, upload_at);
                if let Some(status) = ctx.shared.faults().init_status_after_start {
                    return Reply::cf_error(
                        status,
                        7500,
                        "Internal error: a fault injected by d1-loopback after the import began",
                    );
                }
                return answer;
            }
            let filename = format!("{}-{etag}.sql", db.uuid);
            let upload_url =
                ctx.shared
                    .signed()
                    .sign_upload(&ctx.shared.origin, &db.uuid, &filename);
            Reply::cf_ok(InitUpload {
                success: true,
                kind: "import",
                upload_url,
                filename,
            })
        }
        Action::Ingest { etag, filename } => {
            let Some(upload_at) = imports.uploads.iter().rposition(|u| u.filename == filename)
            else {
                return failure(format!(
                    "No file named {filename} has been uploaded; ask for an upload URL with \
                     action \"init\" first."
                ));
            };
            let md5_hex = &imports.uploads[upload_at].md5_hex;
            if *md5_hex != etag {
                return failure(format!(
                    "The uploaded file's MD5 is {md5_hex}, not the etag {etag}; upload it again."
                ));
            }
            start_job(ctx, db, &mut imports, upload_at)
        }
        Action::Poll { bookmark } => {
            let Some(job) = imports.job_at(&bookmark).cloned() else {
                return failure("Not currently importing anything.");
            };
            // The wait must not block uploads and other imports' polls.
            drop(imports);
            if let Some(status) = ctx.shared.faults().import_poll_status_after_apply {
                return applied_then_failed(&job, status);
            }
            if let Some(status) = ctx.shared.faults().import_poll_status_before_apply {
                return Reply::cf_error(
                    status,
                    7500,
                    "Internal error: a fault injected by d1-loopback before the import ran",
                );
            }
            poll_answer(&job, POLL_WAIT)
        }
    }
}

/// The fault `import_poll_status_after_apply`: waits for `job` to end,
/// then answers `status` and an API error, as a poll whose answer was lost.
fn applied_then_failed(job: &ImportJob, status: u16) -> Reply {
    let progress = job.lock();
    drop(
        job.finished
            .wait_while(progress, |p| p.outcome.is_none())
            .unwrap_or_else(PoisonError::into_inner),
    );
    Reply::cf_error(
        status,
        7500,
        "Internal error: a fault injected by d1-loopback after the import ended",
    )
}

/// `PUT /__signed/{token}/{filename}`: receives an import file, as a
/// presigned R2 URL does, and answers with its MD5 as the `ETag`.
pub(crate) fn upload(ctx: &Ctx<'_>) -> Reply {
    let spooled = ctx.req.spooled.borrow_mut().take();
    let (database, filename) = {
        let signed = ctx.shared.signed();
        match signed.check_upload(ctx) {
            Ok(upload) => (upload.database.clone(), upload.filename.clone()),
            Err(refusal) => return refusal,
        }
    };
    while ctx.shared.faults().upload_held {
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    if let Some(status) = ctx.shared.faults().upload_status {
        return export::internal_s3_error(status);
    }
    let (Some(spooled), Some(db)) = (spooled, ctx.shared.database(&database)) else {
        return export::internal_s3_error(500);
    };
    let etag = format!("\"{}\"", spooled.md5_hex);
    db.lock_imports().add_upload(Upload {
        filename,
        md5_hex: spooled.md5_hex,
        len: spooled.len,
        path: Arc::new(spooled.path),
    });
    Reply::bytes(200, "text/plain", Vec::new()).with_header("ETag", etag)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn actions_parse_and_are_checked() {
        let etag = "0123456789ABCDEF0123456789abcdef";
        match parse_action(format!(r#"{{"action":"init","etag":"{etag}"}}"#).as_bytes()) {
            Ok(Action::Init { etag }) => assert_eq!(etag, etag.to_ascii_lowercase()),
            _ => panic!("init did not parse"),
        }
        assert!(matches!(
            parse_action(br#"{"action":"poll","current_bookmark":"b"}"#),
            Ok(Action::Poll { bookmark }) if bookmark == "b"
        ));
        assert!(parse_action(br#"{"action":"init","etag":"xyz"}"#).is_err());
        assert!(
            parse_action(br#"{"action":"ingest","etag":"0123456789abcdef0123456789abcdef"}"#)
                .is_err()
        );
        assert!(parse_action(br#"{"action":"restore"}"#).is_err());
        assert!(parse_action(b"not json").is_err());
    }

    #[test]
    fn only_the_latest_uploads_are_kept() {
        let dir = tempfile::tempdir().unwrap();
        let mut imports = Imports::default();
        let mut paths = Vec::new();
        for i in 0..KEPT_UPLOADS + 1 {
            let path = tempfile::NamedTempFile::new_in(dir.path())
                .unwrap()
                .into_temp_path();
            paths.push(path.to_path_buf());
            imports.add_upload(Upload {
                filename: format!("f{i}"),
                md5_hex: format!("{i:032x}"),
                len: 0,
                path: Arc::new(path),
            });
        }
        assert!(imports.upload_by_md5(&format!("{:032x}", 0)).is_none());
        assert!(!paths[0].exists(), "an evicted upload's file is deleted");
        assert!(
            imports
                .upload_by_md5(&format!("{KEPT_UPLOADS:032x}"))
                .is_some()
        );
    }
}
