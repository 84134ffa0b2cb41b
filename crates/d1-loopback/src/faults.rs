//! Failures a test can script, so that it can show what the client does when
//! Cloudflare misbehaves. They stay in force until replaced.

/// The faults in force; the default is none.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Faults {
    /// Every `POST .../export` is answered with this API error (HTTP 500,
    /// Cloudflare code 7500), as D1 does when it cannot start an export.
    pub export_api_error: Option<String>,
    /// Every signed-URL download is answered with this HTTP status and an
    /// S3-style error body, like a failing R2.
    pub download_status: Option<u16>,
    /// Every signed-URL download sends only this many bytes of the dump,
    /// with a matching `Content-Length`: a download that "stops short"
    /// without the client being able to tell from the HTTP exchange.
    pub download_truncate_to: Option<usize>,
    /// Every import upload (the `PUT` to the signed URL that `/import`'s
    /// `init` action hands out) is answered with this HTTP status and an
    /// S3-style error body, and the upload is thrown away.
    pub upload_status: Option<u16>,
    /// Every import upload is held, its body read but not answered, while
    /// this fault is in force: wrangler is uploading (it printed
    /// `Uploading <file>`, not `Uploading complete.`), and D1 was handed
    /// nothing to import. The server answers nothing else meanwhile, so a
    /// test replaces the faults ([`crate::Server::set_faults`]) before it
    /// asks anything more; the upload is then answered as without it.
    pub upload_held: bool,
    /// Every import started from now on fails with an injected error once
    /// this many statements of the file have run (or at the end of the file,
    /// if it has fewer), which ends, as D1's errors of a statement do, in
    /// SQLite's result code (`…: SQLITE_ERROR`). The import is rolled back
    /// like any failed import, so the database is left exactly as it was.
    pub ingest_fail_after: Option<usize>,
    /// Every import poll (`{"action": "poll"}`) waits for its import to
    /// end, which applies it (or fails it) as D1 does, then is answered
    /// with this HTTP status and a Cloudflare API error (code 7500):
    /// wrangler, which never retries a poll, fails, while D1 went on with
    /// the import.
    pub import_poll_status_after_apply: Option<u16>,
    /// Every import started from now on is held, not run, and every import
    /// poll is answered at once with this HTTP status and a Cloudflare API
    /// error (code 7500): wrangler, which never retries a poll, fails while
    /// the import has not yet applied. D1 goes on with an import it was
    /// handed; here a held import runs when the test says so
    /// ([`crate::Server::release_held_imports`]), or never.
    pub import_poll_status_before_apply: Option<u16>,
    /// Every import started from now on is held, not run, and its polls
    /// answer `"active"` (each after waiting as for a running import):
    /// an import D1 was handed and has not ended, which wrangler goes on
    /// polling. A held import runs when the test says so
    /// ([`crate::Server::release_held_imports`]), or never.
    pub import_held: bool,
    /// Every import started from now on fails at its first statement whose
    /// text holds this, as D1 fails a statement: named by its number and
    /// quoted from its start ("Statement N failed: INSERT …"), the row's
    /// values with it, its error ending in SQLite's result code. Rolled
    /// back like any failed import.
    pub ingest_fail_at_statement_with: Option<String>,
    /// Every import started from now on fails with this error of D1's
    /// own, which is no statement's and ends in no SQLite code (workers-sdk
    /// #7554: "Durable Object's isolate exceeded its memory limit and was
    /// reset."), and is rolled back: nothing of it applies. Its poll
    /// answers `status: "error"`, D1's final word on the import.
    pub import_fails_with: Option<String>,
    /// Every `init` of a file D1 already has (its MD5 known, so `init`
    /// alone starts the import) starts that import, then is answered with
    /// this HTTP status and a Cloudflare API error (code 7500): an `init`
    /// answer lost (a 5xx, a 524) after D1 began the import.
    pub init_status_after_start: Option<u16>,
    /// Every `/import` `init` is answered with HTTP status `.0` and the
    /// Cloudflare API error `.1` with message `.2`, and starts nothing and
    /// hands out no upload URL: a token Cloudflare refuses for the import
    /// (403, code 10000, "Authentication error") while the reads before it
    /// went through.
    pub import_init_refused_with: Option<(u16, u32, String)>,
    /// Every `/query` request whose SQL holds this text (what `wrangler d1
    /// migrations apply` and `d1 execute --command` send) fails as D1 fails
    /// a statement, answered 400 with code 7500, and changes nothing.
    pub query_fail_with: Option<String>,
    /// Every `/query` request whose SQL holds `.0` is answered with HTTP
    /// status `.1` and the Cloudflare API error `.2` with message `.3`, and
    /// changes nothing: a failure that is not the SQL's, such as a token
    /// Cloudflare refuses (403, code 10000, "Authentication error") while
    /// the reads before it went through.
    pub query_api_error_with: Option<(String, u16, u32, String)>,
    /// Every `POST .../time_travel/restore` is answered with this HTTP
    /// status and a Cloudflare API error ([`code_for`]: 7400 and up for a
    /// refusal, 7500 otherwise), and restores nothing: the database and its
    /// bookmark stay as they were.
    pub time_travel_restore_status: Option<u16>,
    /// Every `POST .../time_travel/restore` restores the database as asked
    /// (and is recorded as a restore), then is answered with this HTTP
    /// status and a Cloudflare API error (code 7500): a restore D1 made
    /// whose answer was lost (a 524 from Cloudflare's edge, a 5xx).
    pub time_travel_restore_applied_status: Option<u16>,
    /// Every R2 object upload (`PUT .../r2/buckets/{bucket}/objects/{key}`,
    /// `wrangler r2 object put --remote`) is answered with this HTTP status
    /// and a Cloudflare API error (code 10001, R2's internal error), and
    /// stores nothing: an object already at the key stays as it was.
    pub r2_put_status: Option<u16>,
    /// Every R2 object upload is answered as a success, but only the first
    /// this many bytes of the body are stored: a silent short write, which
    /// only a client that checks the stored object's size or contents
    /// catches. The answer's `size` and `etag` describe what was stored.
    pub r2_put_truncate_to: Option<usize>,
    /// Every R2 object download (`GET .../objects/{key}`, `wrangler r2
    /// object get --remote`) is answered with this HTTP status and a
    /// Cloudflare API error (code 10001). wrangler reports a 404 as "The
    /// specified key does not exist." and any other failure with the
    /// status and the error body.
    pub r2_get_status: Option<u16>,
    /// Every `PUT .../r2/buckets/{bucket}/lock` (what `wrangler r2 bucket
    /// lock add|remove|set` sends) is answered with this HTTP status and a
    /// Cloudflare API error (code 10001), and changes no rule.
    pub r2_lock_put_status: Option<u16>,
    /// Every `GET .../r2/buckets/{bucket}/lifecycle` (what `wrangler r2
    /// bucket lifecycle list` sends) is answered with this HTTP status and
    /// a Cloudflare API error (code 10001): a token allowed objects only.
    pub r2_lifecycle_get_status: Option<u16>,
    /// Every import that succeeds then deletes every row of this table
    /// before it reports success: an import that silently loses a table's
    /// rows, which only a check of what was restored catches.
    pub ingest_loses_table: Option<String>,
    /// Every export poll is answered `"active"`, forever: an export that
    /// never completes. wrangler polls without a limit of its own.
    pub export_never_completes: bool,
    /// Every answer is held back this many milliseconds before it is sent:
    /// a slow API (one request at a time, as the server serves them).
    pub response_delay_ms: Option<u64>,
    /// With `response_delay_ms`, the answers held back are only those from
    /// the first request (since these faults were set) whose `METHOD URL`
    /// contains this on, that one included; those before it are answered
    /// at once. A test that stops a client at a known request is then
    /// slow only from there, not through every request before it.
    pub response_delay_from: Option<String>,
    /// Every request, whatever it asks, is answered with HTTP status `.0`
    /// and a Cloudflare API error ([`code_for`]) whose message is `.1`:
    /// an API whose error text is not the tool's to trust (one that echoes
    /// the request's token, holds a line break or an escape code).
    pub every_request_error: Option<(u16, String)>,
    /// Every signed-URL download is sent at this many bytes a second, as
    /// over a network rather than over 127.0.0.1 (the benchmark's remote
    /// row at a download rate).
    pub download_bytes_per_sec: Option<u64>,
}

/// The Cloudflare API error code an injected failure of HTTP `status`
/// carries: D1's 74xx for a refusal (as HTTP's 4xx: 7400 for a 400, 7429
/// for a 429), its internal error 7500 for anything else.
pub(crate) fn code_for(status: u16) -> u32 {
    match status {
        400..=499 => 7000 + u32::from(status),
        _ => 7500,
    }
}
