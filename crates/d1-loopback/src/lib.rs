//! A loopback HTTP server that speaks the parts of the Cloudflare D1 and R2
//! REST APIs that the real `wrangler` CLI uses, so that tests can run
//! wrangler's genuine `--remote` code paths against `127.0.0.1`.
//!
//! Point wrangler at it with `CLOUDFLARE_API_BASE_URL` set to
//! [`Server::api_base_url`], `CLOUDFLARE_API_TOKEN` and
//! `CLOUDFLARE_ACCOUNT_ID` set to the [`Config`]'s values, and a
//! `wrangler.toml` whose `[[d1_databases]]` carry the served databases'
//! names and uuids. Each D1 database is backed by a plain SQLite file.
//!
//! Served today, for D1, all under
//! `/client/v4/accounts/{account}/d1/database`:
//!
//! - `GET` (the database list) and `GET /{uuid}` (one database's details;
//!   the name works in place of the uuid here, as wrangler 4.164's lookup of
//!   a database outside the configuration relies on);
//! - `POST` with `{"name", "primary_location_hint"?}` (`wrangler d1
//!   create`), which serves a new, empty database from a SQLite file in the
//!   server's temporary directory (a name in use is refused with D1's code
//!   7502), and `DELETE /{uuid}` (`wrangler d1 delete`, which finds the
//!   uuid by name in the list first);
//! - `POST /{uuid}/query`, which runs SQL as D1 does (`wrangler d1 execute
//!   --command` and all of `wrangler d1 migrations list` and `apply` go
//!   through it);
//! - `GET /{uuid}/time_travel/bookmark[?timestamp=RFC3339]`;
//! - `POST /{uuid}/time_travel/restore?bookmark=<bookmark>` (or
//!   `?timestamp=RFC3339`), D1's Time Travel restore (`wrangler d1
//!   time-travel restore`): every state a database has been in since the
//!   server started is kept as a snapshot, and restoring copies one back
//!   over the database's SQLite file, which keeps its path. The restore is
//!   itself a new state, and the state before it stays restorable, so it
//!   can be undone. Restores are recorded ([`Server::time_travel_restores`]);
//! - `POST /{uuid}/export`, D1's polling export, whose finished dump is
//!   served from a presigned-URL-style path, `GET /__signed/{token}/{file}`;
//! - `POST /{uuid}/import`, D1's import (`wrangler d1 execute --remote
//!   --file`): `init` hands out a presigned-URL-style upload path,
//!   `PUT /__signed/{token}/{file}`, answered with the file's MD5 as its
//!   `ETag`; `ingest` starts the import and `poll` follows it. The file runs
//!   all or nothing, as on D1 (see `import` and `script`).
//!
//! And R2, under `/client/v4/accounts/{account}/r2/buckets` (see `r2` for
//! exactly what wrangler 4.86 sends):
//!
//! - `GET` (the bucket list, `wrangler r2 bucket list`), `POST` (`wrangler
//!   r2 bucket create`) and `GET /{bucket}` (`wrangler r2 bucket info`);
//! - `GET` and `PUT /{bucket}/lifecycle`, the bucket's lifecycle rules
//!   (`wrangler r2 bucket lifecycle list|add|remove|set`), kept as given;
//! - `GET` and `PUT /{bucket}/lock`, the bucket's lock rules (`wrangler r2
//!   bucket lock list|add|remove|set`), enforced: a delete or overwrite of
//!   an object a rule holds is refused with R2's 403, code 10069;
//! - `PUT`, `GET` and `DELETE /{bucket}/objects/{key}` (`wrangler r2 object
//!   put|get|delete --remote`), where the key is the rest of the path,
//!   slashes and all. An upload is one `PUT` of the whole file (wrangler
//!   sends up to 300 MiB that way and no multipart), spooled to a file in
//!   the server's temporary directory; a download streams that file back
//!   with its `Content-Length` and `ETag` (the MD5);
//! - `GET /{bucket}/objects[?prefix=&delimiter=&cursor=&per_page=]`, one
//!   page of the bucket's objects in key order (up to 1000, the default),
//!   with keys that have the delimiter after the prefix rolled up into
//!   `result_info.delimited`, and `result_info.cursor` to pass back for the
//!   next page while `is_truncated` is true. wrangler 4.86 has no command
//!   that lists objects; this is for other clients of the API.
//!
//! Buckets exist when a test makes them ([`Server::add_bucket`], or `r2
//! bucket create`); a request for any other bucket gets R2's 404, code
//! 10006, "The specified bucket does not exist.". Tests can seed and read
//! objects and rules directly ([`Server::r2_put_object`],
//! [`Server::r2_object`], [`Server::r2_keys`], [`Server::r2_lifecycle`]).
//!
//! It also answers `POST /client/v4/graphql` for the analytics queries of
//! `wrangler d1 info` (with zeros) and `wrangler r2 bucket info` (with the
//! bucket's object count and size), and `GET /user/tokens/verify`,
//! `GET /user` and `GET /accounts`, which wrangler calls by itself after an
//! authentication error.
//!
//! Dumps come from the `d1-dump` crate, a faithful port of the dumper D1 and miniflare
//! share, so a remote export through this server is byte-identical to what
//! wrangler's local export writes for the same data.
//!
//! The server listens on `127.0.0.1` only, on an ephemeral port, and answers
//! requests one at a time on a background thread; imports run on threads of
//! their own, so that polls are answered while they run. Uploaded import
//! files and R2 objects are spooled to a temporary directory that goes away
//! with the server. It records every request ([`Server::requests`]) and
//! every request no route matched ([`Server::unhandled`]), so tests can
//! check that wrangler asked for nothing this server does not know.
//!
//! The code is laid out to grow: routes are rows in one table
//! (`api::ROUTES`), and each database's mutable state, with its bookmark
//! history and kept snapshots, sits behind its own `Mutex`
//! (`database::DbState`); its uploads and imports sit behind a second one,
//! which polls can take while an import holds the first. The R2 buckets sit
//! behind one more (`r2::Store`). Failures a test wants to provoke are
//! [`Faults`].

mod api;
mod database;
mod export;
mod faults;
mod graphql;
mod http;
mod import;
mod pinned;
mod query;
mod r2;
mod script;
mod user;
mod util;

use std::panic::{AssertUnwindSafe, catch_unwind};
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::thread::JoinHandle;

use anyhow::{Context as _, anyhow};

pub use crate::faults::Faults;
pub use crate::pinned::{pinned_wrangler, pinned_wrangler_command};

use crate::database::Database;
use crate::export::SignedObjects;
use crate::http::{Body, Reply, Request};

/// What the server serves and whom it lets in.
#[derive(Clone, Debug)]
pub struct Config {
    /// The only account id the API answers for.
    pub account_id: String,
    /// The token every API request must carry as `Authorization: Bearer`.
    pub api_token: String,
    /// The D1 databases to serve.
    pub databases: Vec<DatabaseSpec>,
    /// Where the server makes its private directory (0700, removed when it
    /// stops), which holds every file it writes but the databases' own:
    /// Time Travel snapshots, spooled uploads and R2 objects. The system's
    /// temporary directory if `None`; a rehearsal gives its own directory,
    /// so that what a killed server leaves is removed with it.
    pub work_dir: Option<PathBuf>,
}

/// One D1 database to serve.
#[derive(Clone, Debug)]
pub struct DatabaseSpec {
    /// The database's id, which wrangler puts in API paths.
    pub uuid: String,
    /// The database's name.
    pub name: String,
    /// The SQLite file that holds the database's data; it is created if
    /// missing (mode 0600, its missing parents 0700).
    pub path: PathBuf,
}

/// One successful Time Travel restore, as [`Server::time_travel_restores`]
/// reports it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TimeTravelRestore {
    /// The uuid of the database restored.
    pub database_uuid: String,
    /// The bookmark restored to.
    pub bookmark: String,
    /// The bookmark of the state just before the restore; restoring to it
    /// undoes the restore.
    pub previous_bookmark: String,
}

/// The request log.
#[derive(Debug, Default)]
struct RequestLog {
    requests: Vec<String>,
    unhandled: Vec<String>,
    restores: Vec<TimeTravelRestore>,
}

/// State shared by the serving thread and the [`Server`] handle.
pub(crate) struct Shared {
    pub account_id: String,
    pub api_token: String,
    /// `http://127.0.0.1:PORT`.
    pub origin: String,
    /// The databases served: those configured, and those created since
    /// (`wrangler d1 create`), less those deleted (`wrangler d1 delete`).
    pub databases: Mutex<Vec<Arc<Database>>>,
    signed: Mutex<SignedObjects>,
    log: Mutex<RequestLog>,
    faults: Mutex<Faults>,
    /// Whether `Faults::response_delay_from`'s request has come since the
    /// faults were set: answers are held back from it on.
    delay_started: AtomicBool,
    /// The R2 buckets and their objects.
    r2: Mutex<r2::Store>,
    /// The server's private directory (0700): spooled request bodies
    /// (import uploads, R2 objects), the databases' snapshots, and the
    /// files of databases created with `wrangler d1 create`.
    spool_dir: tempfile::TempDir,
    /// The bytes of files (R2 objects) read to be sent so far: what a
    /// client that stops reading early was sent, give or take the
    /// socket's buffers.
    file_bytes_sent: Arc<AtomicU64>,
    /// Import threads, joined when the server stops.
    threads: Mutex<Vec<JoinHandle<()>>>,
}

impl Shared {
    /// Finds a served database by uuid.
    pub fn database(&self, uuid: &str) -> Option<Arc<Database>> {
        self.databases().iter().find(|db| db.uuid == uuid).cloned()
    }

    /// Finds a served database by name.
    pub fn database_named(&self, name: &str) -> Option<Arc<Database>> {
        self.databases().iter().find(|db| db.name == name).cloned()
    }

    /// Locks the list of databases; a poisoned lock is used as it is.
    pub(crate) fn databases(&self) -> MutexGuard<'_, Vec<Arc<Database>>> {
        self.databases
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
    }

    fn log(&self) -> MutexGuard<'_, RequestLog> {
        self.log.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// The faults in force now.
    pub fn faults(&self) -> Faults {
        self.faults
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }

    /// Locks the R2 buckets; a poisoned lock is used as it is.
    pub(crate) fn r2(&self) -> MutexGuard<'_, r2::Store> {
        self.r2.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Records a successful Time Travel restore.
    pub fn record_restore(&self, restore: TimeTravelRestore) {
        self.log().restores.push(restore);
    }

    /// Keeps a thread's handle, to join it when the server stops. Threads
    /// that have finished are let go.
    pub fn track_thread(&self, handle: JoinHandle<()>) {
        let mut threads = self.threads.lock().unwrap_or_else(PoisonError::into_inner);
        threads.retain(|t| !t.is_finished());
        threads.push(handle);
    }
}

/// A running loopback D1 API server. Dropping it stops the server.
pub struct Server {
    shared: Arc<Shared>,
    http: Arc<tiny_http::Server>,
    thread: Option<JoinHandle<()>>,
}

impl Server {
    /// Opens the databases, binds `127.0.0.1` on an ephemeral port and
    /// serves on a background thread.
    pub fn start(config: Config) -> anyhow::Result<Server> {
        let spool_dir = util::private_dir(config.work_dir.as_deref(), "d1-loopback-")
            .context("creating the server's private directory")?;
        let mut databases: Vec<Arc<Database>> = Vec::with_capacity(config.databases.len());
        for spec in &config.databases {
            anyhow::ensure!(
                databases.iter().all(|db| db.uuid != spec.uuid),
                "D1 database uuid {} is configured twice",
                spec.uuid
            );
            databases.push(Arc::new(Database::open(spec, spool_dir.path())?));
        }
        let http = tiny_http::Server::http("127.0.0.1:0")
            .map_err(|e| anyhow!("binding 127.0.0.1: {e}"))?;
        let addr = http
            .server_addr()
            .to_ip()
            .context("the server is not listening on an IP address")?;
        let shared = Arc::new(Shared {
            account_id: config.account_id,
            api_token: config.api_token,
            origin: format!("http://{addr}"),
            databases: Mutex::new(databases),
            signed: Mutex::default(),
            log: Mutex::default(),
            faults: Mutex::default(),
            delay_started: AtomicBool::new(false),
            r2: Mutex::default(),
            spool_dir,
            file_bytes_sent: Arc::default(),
            threads: Mutex::default(),
        });
        let http = Arc::new(http);
        let thread = std::thread::Builder::new()
            .name("d1-loopback".into())
            .spawn({
                let shared = Arc::clone(&shared);
                let http = Arc::clone(&http);
                move || serve(&shared, &http)
            })
            .context("spawning the server thread")?;
        Ok(Server {
            shared,
            http,
            thread: Some(thread),
        })
    }

    /// The value for `CLOUDFLARE_API_BASE_URL`, such as
    /// `http://127.0.0.1:PORT/client/v4`.
    pub fn api_base_url(&self) -> String {
        format!("{}/client/v4", self.shared.origin)
    }

    /// Every export signed URL handed out so far, exactly as sent.
    pub fn signed_urls(&self) -> Vec<String> {
        self.shared.signed().urls()
    }

    /// Every import upload URL handed out so far (by `/import`'s `init`
    /// action), exactly as sent.
    pub fn upload_urls(&self) -> Vec<String> {
        self.shared.signed().upload_urls()
    }

    /// Every request received so far, as `METHOD /path?query`, in order.
    pub fn requests(&self) -> Vec<String> {
        self.shared.log().requests.clone()
    }

    /// The bytes of R2 objects sent so far, counted as they are read to be
    /// sent: a client that stops reading an object early is not counted
    /// the rest of it (give or take the socket's buffers).
    pub fn r2_bytes_sent(&self) -> u64 {
        self.shared.file_bytes_sent.load(Ordering::SeqCst)
    }

    /// Puts `faults` in force for every request from now on.
    pub fn set_faults(&self, faults: Faults) {
        *self
            .shared
            .faults
            .lock()
            .unwrap_or_else(PoisonError::into_inner) = faults;
        self.shared.delay_started.store(false, Ordering::SeqCst);
    }

    /// The faults in force now.
    pub fn faults(&self) -> Faults {
        self.shared.faults()
    }

    /// Runs the imports that `Faults::import_poll_status_before_apply`
    /// held, each on a thread of its own, as D1 goes on with an import
    /// whose client lost track of it; returns how many. They run under the
    /// faults they were started with.
    pub fn release_held_imports(&self) -> usize {
        let databases: Vec<Arc<Database>> = self.shared.databases().clone();
        let runs: Vec<_> = { databases.iter() }
            .flat_map(|db| db.lock_imports().release_held())
            .collect();
        let count = runs.len();
        for run in runs {
            if let Err(e) = import::spawn_import(&self.shared, run) {
                panic!("d1-loopback could not start a held import: {e}");
            }
        }
        count
    }

    /// The requests that matched no route and were answered 404.
    pub fn unhandled(&self) -> Vec<String> {
        self.shared.log().unhandled.clone()
    }

    /// Makes an empty R2 bucket called `name`, in the default jurisdiction,
    /// unless one exists (which is then left as it is). Any name is taken;
    /// wrangler itself refuses to send a name that breaks R2's naming rules
    /// (3 to 63 lowercase letters, digits and hyphens) for object commands.
    pub fn add_bucket(&self, name: &str) {
        self.shared.r2().add_bucket(name);
    }

    /// The names of the R2 buckets, in order.
    pub fn r2_buckets(&self) -> Vec<String> {
        self.shared.r2().bucket_names()
    }

    /// The bytes of an R2 object, or `None` if the bucket or the key does not
    /// exist.
    pub fn r2_object(&self, bucket: &str, key: &str) -> Option<Vec<u8>> {
        self.shared.r2().object(bucket, key)
    }

    /// The keys of a bucket's objects, in R2's order (by UTF-8 bytes); empty
    /// if the bucket does not exist.
    pub fn r2_keys(&self, bucket: &str) -> Vec<String> {
        self.shared.r2().keys(bucket)
    }

    /// Stores an R2 object, replacing any at that key, as an upload without
    /// headers would; for seeding. Fails if the bucket does not exist (see
    /// [`Server::add_bucket`]). Faults do not apply.
    pub fn r2_put_object(&self, bucket: &str, key: &str, bytes: &[u8]) -> anyhow::Result<()> {
        self.shared
            .r2()
            .put_bytes(self.shared.spool_dir.path(), bucket, key, bytes)
    }

    /// A bucket's lifecycle rules, as the JSON array last put (`[]` until
    /// then): what `GET .../lifecycle` returns as `result.rules`. `Null` if
    /// the bucket does not exist.
    pub fn r2_lifecycle(&self, bucket: &str) -> serde_json::Value {
        self.shared.r2().lifecycle(bucket)
    }

    /// The names of the D1 databases served now, those created through the
    /// API included and those deleted through it not.
    pub fn database_names(&self) -> Vec<String> {
        self.shared
            .databases()
            .iter()
            .map(|db| db.name.clone())
            .collect()
    }

    /// The SQLite file behind the served D1 database called `name` (one
    /// created through the API too), to read what a test put there.
    pub fn database_path(&self, name: &str) -> Option<PathBuf> {
        self.shared
            .databases()
            .iter()
            .find(|db| db.name == name)
            .map(|db| db.path.clone())
    }

    /// A bucket's lock rules, as the JSON array last put (`[]` until then):
    /// what `GET .../lock` returns as `result.rules`. `Null` if the bucket
    /// does not exist.
    pub fn r2_lock(&self, bucket: &str) -> serde_json::Value {
        self.shared.r2().lock(bucket)
    }

    /// Every successful Time Travel restore so far, in order. Restores that
    /// were refused (an unknown bookmark, an injected fault) are not here,
    /// though their requests are in [`Server::requests`].
    pub fn time_travel_restores(&self) -> Vec<TimeTravelRestore> {
        self.shared.log().restores.clone()
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        self.http.unblock();
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
        // Imports still running finish before their files go away.
        let threads = std::mem::take(
            &mut *self
                .shared
                .threads
                .lock()
                .unwrap_or_else(PoisonError::into_inner),
        );
        for thread in threads {
            let _ = thread.join();
        }
    }
}

/// Answers requests until [`tiny_http::Server::unblock`] is called.
fn serve(shared: &Shared, http: &tiny_http::Server) {
    for mut incoming in http.incoming_requests() {
        let method = incoming.method().as_str().to_owned();
        let url = incoming.url().to_owned();
        let line = format!("{method} {url}");
        let from = shared.faults().response_delay_from;
        if from.is_some_and(|from| line.contains(&from)) {
            shared.delay_started.store(true, Ordering::SeqCst);
        }
        shared.log().requests.push(line.clone());

        let read = read_request(shared, &mut incoming, &method, &url);
        let faults = shared.faults();
        let reply = match &faults.every_request_error {
            Some((status, message)) => {
                Reply::cf_error(*status, faults::code_for(*status), message.clone())
            }
            None => answer(shared, read, line),
        };
        if let Some(ms) = faults.response_delay_ms
            && (faults.response_delay_from.is_none() || shared.delay_started.load(Ordering::SeqCst))
        {
            std::thread::sleep(std::time::Duration::from_millis(ms));
        }
        respond(incoming, reply, &shared.file_bytes_sent);
    }
}

/// The request with its headers and its body, in memory or spooled to a
/// file as its route wants it.
fn read_request(
    shared: &Shared,
    incoming: &mut tiny_http::Request,
    method: &str,
    url: &str,
) -> std::io::Result<Request> {
    let headers = incoming
        .headers()
        .iter()
        .map(|h| {
            (
                h.field.as_str().as_str().to_owned(),
                h.value.as_str().to_owned(),
            )
        })
        .collect();
    let path = url.split_once('?').map_or(url, |(path, _)| path);
    match api::body_mode(method, path) {
        Body::Buffered => {
            let mut body = Vec::new();
            incoming
                .as_reader()
                .read_to_end(&mut body)
                .map(|_| Request::new(method, url, headers, body))
        }
        Body::Spooled => http::spool_body(incoming.as_reader(), shared.spool_dir.path())
            .map(|spooled| Request::new(method, url, headers, Vec::new()).with_spooled(spooled)),
    }
}

/// The handler's reply; a request that no handler recognised is recorded.
fn answer(shared: &Shared, read: std::io::Result<Request>, line: String) -> Reply {
    match read {
        Err(e) => Reply::cf_error(400, 7400, format!("could not read the request body: {e}")),
        Ok(req) => {
            // A bug in one handler must not stop the server.
            match catch_unwind(AssertUnwindSafe(|| api::dispatch(shared, &req))) {
                Ok(dispatched) => {
                    if !dispatched.handled {
                        shared.log().unhandled.push(line);
                    }
                    dispatched.reply
                }
                Err(_) => Reply::cf_error(500, 10001, "d1-loopback: internal error"),
            }
        }
    }
}

/// Sends the reply with its headers.
fn respond(incoming: tiny_http::Request, reply: Reply, file_bytes_sent: &Arc<AtomicU64>) {
    let mut headers = Vec::with_capacity(reply.headers.len() + 1);
    if !reply
        .headers
        .iter()
        .any(|(name, _)| name.eq_ignore_ascii_case("content-type"))
    {
        headers.push(
            tiny_http::Header::from_bytes("Content-Type", reply.content_type)
                .expect("content types are valid header values"),
        );
    }
    for (name, value) in reply.headers {
        if let Ok(header) = tiny_http::Header::from_bytes(name, value) {
            headers.push(header);
        }
    }
    let status = tiny_http::StatusCode(reply.status);
    // The client may have gone away; there is nobody to tell.
    let _ = match reply.file {
        // A file is sent with its length, not chunked, as R2 sends
        // objects.
        Some((file, len)) => incoming.respond(
            tiny_http::Response::new(
                status,
                headers,
                Counted(file, Arc::clone(file_bytes_sent)),
                usize::try_from(len).ok(),
                None,
            )
            .with_chunked_threshold(usize::MAX),
        ),
        None => {
            let len = reply.body.len();
            let body: Box<dyn std::io::Read + Send> = match reply.paced {
                Some(rate) => Box::new(http::Paced::new(std::io::Cursor::new(reply.body), rate)),
                None => Box::new(std::io::Cursor::new(reply.body)),
            };
            incoming.respond(tiny_http::Response::new(
                status,
                headers,
                body,
                Some(len),
                None,
            ))
        }
    };
}

/// A reader that adds what it reads to a count.
struct Counted<R>(R, Arc<AtomicU64>);

impl<R: std::io::Read> std::io::Read for Counted<R> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let n = self.0.read(buf)?;
        self.1.fetch_add(n as u64, Ordering::SeqCst);
        Ok(n)
    }
}
