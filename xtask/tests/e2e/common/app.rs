//! A stand-in for the qbtime app on 127.0.0.1, for the drill's smoke checks:
//! it answers every request with a JSON body chosen per path (200
//! `{"ok":true}` unless told otherwise) and records each request's method,
//! path and `Authorization` header.

use std::collections::HashMap;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::Duration;

/// One request the stand-in received.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AppRequest {
    pub method: String,
    /// The path, with any query string.
    pub path: String,
    pub authorization: Option<String>,
    /// Whether, while the request was served, any process's command line
    /// (what `ps` shows every user) held the app's address: a URL, which
    /// may hold a secret, handed to a program on its command line.
    pub address_on_a_command_line: bool,
}

#[derive(Default)]
struct State {
    requests: Vec<AppRequest>,
    /// Path (without query) → (status, body).
    answers: HashMap<String, (u16, String)>,
}

/// The running stand-in. Dropping it stops it.
pub struct App {
    addr: SocketAddr,
    state: Arc<Mutex<State>>,
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
}

impl App {
    pub fn start() -> App {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        let state = Arc::new(Mutex::new(State::default()));
        let stop = Arc::new(AtomicBool::new(false));
        let thread = std::thread::spawn({
            let state = Arc::clone(&state);
            let stop = Arc::clone(&stop);
            move || {
                for stream in listener.incoming() {
                    if stop.load(Ordering::SeqCst) {
                        break;
                    }
                    if let Ok(stream) = stream {
                        // A client that misbehaves must not stop the stand-in.
                        let _ = serve(stream, &state);
                    }
                }
            }
        });
        App {
            addr,
            state,
            stop,
            thread: Some(thread),
        }
    }

    /// The value for `QBTIME_APP_URL`.
    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// Answers requests for `path` with `status` and `body` from now on.
    pub fn answer(&self, path: &str, status: u16, body: &str) {
        self.state
            .lock()
            .unwrap()
            .answers
            .insert(path.to_owned(), (status, body.to_owned()));
    }

    /// Every request received so far, in order.
    pub fn requests(&self) -> Vec<AppRequest> {
        self.state.lock().unwrap().requests.clone()
    }
}

impl Drop for App {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        // Wake the accept loop so that it sees the flag.
        let _ = TcpStream::connect(self.addr);
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

/// Reads one request from the connection and answers it, then closes it.
fn serve(stream: TcpStream, state: &Mutex<State>) -> std::io::Result<()> {
    stream.set_read_timeout(Some(Duration::from_secs(10)))?;
    let mut reader = BufReader::new(stream.try_clone()?);
    let mut line = String::new();
    if reader.read_line(&mut line)? == 0 {
        return Ok(());
    }
    let mut parts = line.split_whitespace();
    let method = parts.next().unwrap_or_default().to_owned();
    let path = parts.next().unwrap_or_default().to_owned();
    let mut authorization = None;
    let mut length = 0usize;
    loop {
        let mut header = String::new();
        if reader.read_line(&mut header)? == 0 {
            break;
        }
        let header = header.trim_end();
        if header.is_empty() {
            break;
        }
        if let Some((name, value)) = header.split_once(':') {
            let value = value.trim();
            if name.eq_ignore_ascii_case("authorization") {
                authorization = Some(value.to_owned());
            } else if name.eq_ignore_ascii_case("content-length") {
                length = value.parse().unwrap_or(0);
            }
        }
    }
    let mut body = vec![0; length];
    reader.read_exact(&mut body)?;

    let bare = path.split('?').next().unwrap_or_default().to_owned();
    let address_on_a_command_line = on_a_command_line(&stream.local_addr()?.to_string());
    let (status, body) = {
        let mut state = state.lock().unwrap();
        state.requests.push(AppRequest {
            method,
            path,
            authorization,
            address_on_a_command_line,
        });
        state
            .answers
            .get(&bare)
            .cloned()
            .unwrap_or((200, r#"{"ok":true}"#.to_owned()))
    };
    let mut stream = stream;
    write!(
        stream,
        "HTTP/1.1 {status} {}\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\
         Connection: close\r\n\r\n{body}",
        if (200..300).contains(&status) {
            "OK"
        } else {
            "Error"
        },
        body.len()
    )?;
    stream.flush()
}

/// Whether any process's command line (Linux's /proc/<pid>/cmdline) holds
/// `needle`.
fn on_a_command_line(needle: &str) -> bool {
    let Ok(entries) = std::fs::read_dir("/proc") else {
        return false;
    };
    entries.flatten().any(|entry| {
        std::fs::read(entry.path().join("cmdline"))
            .is_ok_and(|line| String::from_utf8_lossy(&line).contains(needle))
    })
}
