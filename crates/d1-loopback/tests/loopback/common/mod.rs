//! Helpers shared by the integration tests: a served set of databases in a
//! temporary directory, a runner for the real wrangler pointed at it, and a
//! minimal HTTP client.

#![allow(dead_code)] // Each test file uses a different part of this module.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

use d1_loopback::{Config, DatabaseSpec, Server};
use rusqlite::Connection;
use tempfile::TempDir;

/// Cloudflare account ids are 32 hex digits.
pub const ACCOUNT: &str = "0123456789abcdef0123456789abcdef";
pub const TOKEN: &str = "d1-loopback-test-token";

/// The longest a single wrangler run may take before the test fails.
const WRANGLER_TIMEOUT: Duration = Duration::from_secs(180);

/// The workspace root, found from this crate's manifest directory.
pub fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../..")
        .canonicalize()
        .expect("the workspace root exists")
}

/// The pinned wrangler. Its absence fails the test: the tests exist to run
/// the real thing.
pub fn wrangler_bin() -> PathBuf {
    d1_loopback::pinned_wrangler(&repo_root())
}

/// A database for [`Project::new`]: a name, a uuid and SQL to seed it with.
pub struct Db<'a> {
    pub name: &'a str,
    pub uuid: &'a str,
    pub seed: &'a str,
}

/// Served databases in a temporary wrangler project.
pub struct Project {
    pub dir: TempDir,
    pub server: Server,
    pub databases: Vec<DatabaseSpec>,
}

impl Project {
    /// Seeds each database's SQLite file, writes a `wrangler.toml` naming
    /// them all, and starts a server for them.
    pub fn new(dbs: &[Db<'_>]) -> Project {
        let dir = tempfile::tempdir().unwrap();
        let mut toml =
            String::from("name = \"d1-loopback-test\"\ncompatibility_date = \"2026-04-01\"\n");
        let mut databases = Vec::new();
        for (i, db) in dbs.iter().enumerate() {
            let path = dir.path().join("data").join(format!("{}.sqlite", db.name));
            std::fs::create_dir_all(path.parent().unwrap()).unwrap();
            let conn = Connection::open(&path).unwrap();
            conn.execute_batch(db.seed).unwrap();
            drop(conn);
            toml.push_str(&format!(
                "\n[[d1_databases]]\nbinding = \"DB{i}\"\ndatabase_name = \"{}\"\ndatabase_id = \"{}\"\n",
                db.name, db.uuid
            ));
            databases.push(DatabaseSpec {
                uuid: db.uuid.to_owned(),
                name: db.name.to_owned(),
                path,
            });
        }
        std::fs::write(dir.path().join("wrangler.toml"), toml).unwrap();
        let server = Server::start(Config {
            account_id: ACCOUNT.to_owned(),
            api_token: TOKEN.to_owned(),
            databases: databases.clone(),
            work_dir: None,
        })
        .unwrap();
        Project {
            dir,
            server,
            databases,
        }
    }

    /// Opens a database's SQLite file directly.
    pub fn open(&self, name: &str) -> Connection {
        let spec = self.databases.iter().find(|d| d.name == name).unwrap();
        Connection::open(&spec.path).unwrap()
    }

    /// Runs wrangler in the project with the right token.
    pub fn wrangler(&self, args: &[&str]) -> Run {
        self.wrangler_with_token(TOKEN, args)
    }

    /// Runs wrangler in the project, pointed at the server.
    pub fn wrangler_with_token(&self, token: &str, args: &[&str]) -> Run {
        let mut cmd = wrangler_command(self.dir.path());
        cmd.args(args)
            .env("CLOUDFLARE_API_BASE_URL", self.server.api_base_url())
            .env("CLOUDFLARE_API_TOKEN", token)
            .env("CLOUDFLARE_ACCOUNT_ID", ACCOUNT);
        run(cmd)
    }
}

/// A wrangler command in `dir` with an environment that cannot reach or
/// read anything of the developer's: no inherited Cloudflare or wrangler
/// settings, no metrics, no update check (it hides with the banner), logs
/// and config kept inside `dir`.
pub fn wrangler_command(dir: &Path) -> Command {
    let mut cmd = d1_loopback::pinned_wrangler_command(&repo_root());
    for (name, _) in std::env::vars_os() {
        let name = name.to_string_lossy();
        if name.starts_with("CLOUDFLARE_")
            || name.starts_with("CF_")
            || name.starts_with("WRANGLER_")
        {
            cmd.env_remove(name.as_ref());
        }
    }
    cmd.current_dir(dir)
        .env("WRANGLER_SEND_METRICS", "false")
        .env("WRANGLER_HIDE_BANNER", "true")
        .env("WRANGLER_LOG_PATH", dir.join("wrangler-logs"))
        .env("XDG_CONFIG_HOME", dir.join("xdg-config"))
        .env("FORCE_COLOR", "0")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    cmd
}

/// What a wrangler run printed and how it ended.
pub struct Run {
    pub output: Output,
}

impl Run {
    pub fn stdout(&self) -> String {
        String::from_utf8_lossy(&self.output.stdout).into_owned()
    }

    pub fn stderr(&self) -> String {
        String::from_utf8_lossy(&self.output.stderr).into_owned()
    }

    /// Fails the test, showing wrangler's output, unless wrangler succeeded.
    pub fn assert_ok(&self) -> &Run {
        assert!(
            self.output.status.success(),
            "wrangler failed with {}\n--- stdout ---\n{}\n--- stderr ---\n{}",
            self.output.status,
            self.stdout(),
            self.stderr()
        );
        self
    }

    /// Fails the test unless wrangler failed.
    pub fn assert_failed(&self) -> &Run {
        assert!(
            !self.output.status.success(),
            "wrangler unexpectedly succeeded\n--- stdout ---\n{}\n--- stderr ---\n{}",
            self.stdout(),
            self.stderr()
        );
        self
    }

    /// Parses stdout as JSON.
    pub fn json(&self) -> serde_json::Value {
        serde_json::from_str(&self.stdout()).unwrap_or_else(|e| {
            panic!(
                "wrangler's stdout is not JSON ({e})\n--- stdout ---\n{}\n--- stderr ---\n{}",
                self.stdout(),
                self.stderr()
            )
        })
    }
}

/// Runs a command to its end, failing the test if it takes too long.
pub fn run(mut cmd: Command) -> Run {
    let mut child = cmd.spawn().expect("starting wrangler");
    // Both pipes are drained while waiting so wrangler never blocks on them.
    let mut stdout = child.stdout.take().unwrap();
    let mut stderr = child.stderr.take().unwrap();
    let out = std::thread::spawn(move || {
        let mut buf = Vec::new();
        let _ = stdout.read_to_end(&mut buf);
        buf
    });
    let err = std::thread::spawn(move || {
        let mut buf = Vec::new();
        let _ = stderr.read_to_end(&mut buf);
        buf
    });
    let deadline = Instant::now() + WRANGLER_TIMEOUT;
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break status;
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            panic!("wrangler did not finish within {WRANGLER_TIMEOUT:?}");
        }
        std::thread::sleep(Duration::from_millis(25));
    };
    Run {
        output: Output {
            status,
            stdout: out.join().unwrap(),
            stderr: err.join().unwrap(),
        },
    }
}

/// An HTTP response as the tests see it.
pub struct Response {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

impl Response {
    pub fn json(&self) -> serde_json::Value {
        serde_json::from_slice(&self.body).expect("the body is JSON")
    }

    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }

    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }
}

/// Sends one HTTP/1.0 request (so the reply is never chunked) to an
/// `http://127.0.0.1:PORT/...` URL.
pub fn http(method: &str, url: &str, token: Option<&str>, body: &[u8]) -> Response {
    http_with_headers(method, url, token, &[], body)
}

/// [`http`] with extra request headers.
pub fn http_with_headers(
    method: &str,
    url: &str,
    token: Option<&str>,
    headers: &[(&str, &str)],
    body: &[u8],
) -> Response {
    let rest = url.strip_prefix("http://").expect("an http:// URL");
    let (authority, target) = rest.split_at(rest.find('/').unwrap_or(rest.len()));
    assert!(
        authority.starts_with("127.0.0.1:"),
        "tests only talk to loopback"
    );
    let mut stream = TcpStream::connect(authority).unwrap();
    stream
        .set_read_timeout(Some(Duration::from_secs(30)))
        .unwrap();
    let mut request = format!(
        "{method} {target} HTTP/1.0\r\nHost: {authority}\r\nContent-Length: {}\r\n",
        body.len()
    );
    if let Some(token) = token {
        request.push_str(&format!("Authorization: Bearer {token}\r\n"));
    }
    for (name, value) in headers {
        request.push_str(&format!("{name}: {value}\r\n"));
    }
    request.push_str("\r\n");
    stream.write_all(request.as_bytes()).unwrap();
    stream.write_all(body).unwrap();
    let mut raw = Vec::new();
    stream.read_to_end(&mut raw).unwrap();
    let split = raw
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .expect("a complete response head");
    let head = String::from_utf8_lossy(&raw[..split]).into_owned();
    let mut lines = head.split("\r\n");
    let status = lines
        .next()
        .and_then(|l| l.split(' ').nth(1))
        .and_then(|s| s.parse().ok())
        .expect("a status line");
    let headers = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(k, v)| (k.trim().to_owned(), v.trim().to_owned()))
        .collect();
    Response {
        status,
        headers,
        body: raw[split + 4..].to_vec(),
    }
}
