//! Request and reply types, the route table's shape and route matching.
//!
//! A route is a method, a path pattern whose `{name}` segments capture a
//! value, whether it needs the API token, how its request body is read, and
//! a plain function. The table itself is [`crate::api::ROUTES`]; adding an
//! endpoint is adding a row.
//!
//! Most request bodies are small JSON and are read into memory. Import
//! uploads can be hundreds of megabytes, so their routes ask for the body to
//! be spooled: [`spool_body`] streams it to a temporary file, hashing it on
//! the way, and the handler gets the file instead of the bytes. Replies can
//! likewise come from a file ([`Reply::file`]), which is streamed with a
//! `Content-Length`, as R2 serves object downloads.

use std::cell::RefCell;
use std::fs::File;
use std::io::{BufWriter, Read, Write};
use std::path::Path;

use md5::{Digest as _, Md5};
use serde::Serialize;

use crate::util;

/// An HTTP request, read whole.
#[derive(Debug)]
pub(crate) struct Request {
    pub method: String,
    /// The path, still percent-encoded.
    pub path: String,
    /// The decoded query parameters, in order.
    pub query: Vec<(String, String)>,
    /// Header names are lowercased.
    pub headers: Vec<(String, String)>,
    /// The body, for routes that read it into memory; empty for routes that
    /// spool it.
    pub body: Vec<u8>,
    /// The body, for routes that spool it to a file. A handler that keeps
    /// the file takes it out; otherwise it is deleted with the request.
    pub spooled: RefCell<Option<Spooled>>,
}

impl Request {
    /// Builds a request from its method and request target (`/path?query`).
    pub fn new(method: &str, url: &str, headers: Vec<(String, String)>, body: Vec<u8>) -> Request {
        let (path, query) = url.split_once('?').unwrap_or((url, ""));
        Request {
            method: method.to_owned(),
            path: path.to_owned(),
            query: util::parse_query(query),
            headers: headers
                .into_iter()
                .map(|(k, v)| (k.to_ascii_lowercase(), v))
                .collect(),
            body,
            spooled: RefCell::new(None),
        }
    }

    /// Attaches a spooled body.
    pub fn with_spooled(self, spooled: Spooled) -> Request {
        *self.spooled.borrow_mut() = Some(spooled);
        self
    }

    /// The first value of a header, by case-insensitive name.
    pub fn header(&self, name: &str) -> Option<&str> {
        let name = name.to_ascii_lowercase();
        self.headers
            .iter()
            .find(|(k, _)| *k == name)
            .map(|(_, v)| v.as_str())
    }

    /// The first value of a query parameter.
    pub fn query_param(&self, name: &str) -> Option<&str> {
        self.query
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }
}

/// A request body that was streamed to a temporary file.
#[derive(Debug)]
pub(crate) struct Spooled {
    /// The file; it is deleted when this is dropped.
    pub path: tempfile::TempPath,
    /// The body's length in bytes.
    pub len: u64,
    /// The MD5 of the body, as 32 lowercase hex digits: what S3 and R2 send
    /// as the `ETag` of an object uploaded in one part.
    pub md5_hex: String,
}

/// Streams a request body into a new temporary file in `dir`, computing its
/// MD5 on the way, so that a large upload is never held in memory.
pub(crate) fn spool_body(body: &mut dyn Read, dir: &Path) -> std::io::Result<Spooled> {
    let file = tempfile::Builder::new()
        .prefix("upload-")
        .suffix(".sql")
        .tempfile_in(dir)?;
    let (file, path) = file.into_parts();
    let mut out = BufWriter::with_capacity(1 << 20, file);
    let mut hasher = Md5::new();
    let mut buf = vec![0u8; 1 << 16];
    let mut len = 0u64;
    loop {
        let n = match body.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => n,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(e),
        };
        hasher.update(&buf[..n]);
        out.write_all(&buf[..n])?;
        len += n as u64;
    }
    out.flush()?;
    Ok(Spooled {
        path,
        len,
        md5_hex: util::hex(&hasher.finalize()),
    })
}

/// An HTTP reply.
#[derive(Debug)]
pub(crate) struct Reply {
    pub status: u16,
    pub content_type: &'static str,
    /// Extra headers. A `Content-Type` here replaces [`Reply::content_type`].
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
    /// A body to stream from a file instead of [`Reply::body`], with its
    /// length.
    pub file: Option<(File, u64)>,
    /// [`Reply::body`] is sent at this many bytes a second.
    pub paced: Option<u64>,
    /// Set by a handler whose route matched but that did not recognise what
    /// was asked (an unknown GraphQL query, say), so that the request is
    /// recorded as unhandled like one that matched no route.
    pub unhandled: bool,
}

/// One entry of the Cloudflare envelope's `errors` array.
#[derive(Debug, Serialize)]
pub(crate) struct CfError {
    pub code: u32,
    pub message: String,
}

/// The `result_info` of list endpoints.
#[derive(Debug, Serialize)]
pub(crate) struct ResultInfo {
    pub page: usize,
    pub per_page: usize,
    pub count: usize,
    pub total_count: usize,
}

/// The Cloudflare API v4 response envelope. `result_info` is usually the
/// paged [`ResultInfo`]; R2's object listing has a cursor-based one.
#[derive(Debug, Serialize)]
struct Envelope<T, I = ResultInfo> {
    success: bool,
    errors: Vec<CfError>,
    messages: Vec<serde_json::Value>,
    result: T,
    #[serde(skip_serializing_if = "Option::is_none")]
    result_info: Option<I>,
}

impl Reply {
    /// A reply with a body of the given type.
    pub fn bytes(status: u16, content_type: &'static str, body: Vec<u8>) -> Reply {
        Reply {
            status,
            content_type,
            headers: Vec::new(),
            body,
            file: None,
            paced: None,
            unhandled: false,
        }
    }

    /// A reply whose body is the first `len` bytes of `file`, sent with a
    /// `Content-Length` rather than chunked.
    pub fn file(status: u16, content_type: &'static str, file: File, len: u64) -> Reply {
        Reply {
            file: Some((file, len)),
            ..Reply::bytes(status, content_type, Vec::new())
        }
    }

    /// Adds a header.
    pub fn with_header(mut self, name: &str, value: impl Into<String>) -> Reply {
        self.headers.push((name.to_owned(), value.into()));
        self
    }

    /// Marks the reply as answering a request the server did not recognise.
    pub fn mark_unhandled(mut self) -> Reply {
        self.unhandled = true;
        self
    }

    /// A JSON reply.
    pub fn json<T: Serialize>(status: u16, value: &T) -> Reply {
        let body = serde_json::to_vec(value).expect("replies always serialize");
        Reply::bytes(status, "application/json", body)
    }

    /// A successful Cloudflare envelope around `result`.
    pub fn cf_ok<T: Serialize>(result: T) -> Reply {
        Reply::cf_ok_paged(result, None::<ResultInfo>)
    }

    /// A successful Cloudflare envelope with a `result_info`: the page
    /// numbers of a D1 listing, or the cursor of R2's object listing.
    pub fn cf_ok_paged<T: Serialize, I: Serialize>(result: T, result_info: Option<I>) -> Reply {
        Reply::json(
            200,
            &Envelope {
                success: true,
                errors: Vec::new(),
                messages: Vec::new(),
                result,
                result_info,
            },
        )
    }

    /// A failed Cloudflare envelope with one error.
    pub fn cf_error(status: u16, code: u32, message: impl Into<String>) -> Reply {
        Reply::cf_errors(
            status,
            vec![CfError {
                code,
                message: message.into(),
            }],
        )
    }

    /// A failed Cloudflare envelope with several errors.
    pub fn cf_errors(status: u16, errors: Vec<CfError>) -> Reply {
        Reply::json(
            status,
            &Envelope::<Option<()>> {
                success: false,
                errors,
                messages: Vec::new(),
                result: None,
                result_info: None,
            },
        )
    }

    /// The reply to a request without the right API token.
    pub fn auth_error() -> Reply {
        Reply::cf_error(403, 10000, "Authentication error")
    }

    /// The reply to a request that matched no route, like Cloudflare's.
    pub fn no_route(path: &str) -> Reply {
        Reply::cf_errors(
            404,
            vec![
                CfError {
                    code: 7003,
                    message: format!(
                        "Could not route to {path}, perhaps your object identifier is invalid?"
                    ),
                },
                CfError {
                    code: 7000,
                    message: "No route for that URI".into(),
                },
            ],
        )
    }
}

/// Who may call a route.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Access {
    /// Needs `Authorization: Bearer <api token>`.
    ApiToken,
    /// Checks authorization itself, as signed URLs and the token check do.
    Open,
}

/// Values captured by a route pattern's `{name}` segments, decoded.
#[derive(Debug, Default)]
pub(crate) struct Params(Vec<(&'static str, String)>);

impl Params {
    pub fn get(&self, name: &str) -> Option<&str> {
        self.0
            .iter()
            .find(|(k, _)| *k == name)
            .map(|(_, v)| v.as_str())
    }
}

/// How a route's request body is read.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Body {
    /// Into memory, as [`Request::body`].
    Buffered,
    /// Into a temporary file, as [`Request::spooled`].
    Spooled,
}

/// One row of the route table.
pub(crate) struct Route<H: 'static> {
    pub method: &'static str,
    /// A path such as `/client/v4/accounts/{account}/d1/database`. A last
    /// segment `{*name}` captures the rest of the path, slashes and all (an
    /// R2 object key).
    pub pattern: &'static str,
    pub access: Access,
    pub body: Body,
    pub handler: H,
}

/// Finds the first route whose method and pattern match. Captured values
/// are percent-decoded as path segments are: a `+` stays a `+`.
pub(crate) fn match_route<'r, H>(
    routes: &'r [Route<H>],
    method: &str,
    path: &str,
) -> Option<(&'r Route<H>, Params)> {
    routes.iter().find_map(|route| {
        if route.method != method {
            return None;
        }
        let mut params = Vec::new();
        let mut want = route.pattern.split('/');
        let mut have = path.split('/');
        loop {
            match (want.next(), have.next()) {
                (None, None) => return Some((route, Params(params))),
                (Some(w), Some(h)) => {
                    if let Some(name) = w.strip_prefix("{*").and_then(|w| w.strip_suffix('}')) {
                        let rest = std::iter::once(h).chain(have).collect::<Vec<_>>().join("/");
                        if rest.is_empty() {
                            return None;
                        }
                        params.push((name, util::percent_decode_path(&rest)));
                        return Some((route, Params(params)));
                    }
                    if let Some(name) = w.strip_prefix('{').and_then(|w| w.strip_suffix('}')) {
                        if h.is_empty() {
                            return None;
                        }
                        params.push((name, util::percent_decode_path(h)));
                    } else if w != h {
                        return None;
                    }
                }
                _ => return None,
            }
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A paced body is the same bytes, sent a tenth of a second's worth
    /// at a time at most.
    #[test]
    fn a_paced_body_sends_the_same_bytes_in_small_pieces() {
        let body: Vec<u8> = (0..=255u8).cycle().take(10_000).collect();
        let mut paced = Paced::new(std::io::Cursor::new(body.clone()), 1_000_000);
        let (mut out, mut buf, mut largest) = (Vec::new(), vec![0u8; 1 << 20], 0);
        loop {
            let n = paced.read(&mut buf).unwrap();
            if n == 0 {
                break;
            }
            largest = largest.max(n);
            out.extend_from_slice(&buf[..n]);
        }
        assert_eq!(out, body);
        assert!(largest <= 100_000, "{largest}");
        let mut slow = Paced::new(std::io::Cursor::new(body.clone()), 1_000);
        assert_eq!(slow.read(&mut buf).unwrap(), 100);
    }

    #[test]
    fn routes_match_segment_by_segment() {
        let routes = [
            Route {
                method: "GET",
                pattern: "/a/{x}/b",
                access: Access::Open,
                body: Body::Buffered,
                handler: 1,
            },
            Route {
                method: "POST",
                pattern: "/a/{x}/b/{y}",
                access: Access::Open,
                body: Body::Buffered,
                handler: 2,
            },
        ];
        let (r, p) = match_route(&routes, "GET", "/a/h%20i/b").unwrap();
        assert_eq!(r.handler, 1);
        assert_eq!(p.get("x"), Some("h i"));
        let (r, p) = match_route(&routes, "POST", "/a/1/b/2").unwrap();
        assert_eq!(r.handler, 2);
        assert_eq!(p.get("y"), Some("2"));
        assert!(match_route(&routes, "GET", "/a/1/b/").is_none());
        assert!(match_route(&routes, "GET", "/a//b").is_none());
        assert!(match_route(&routes, "POST", "/a/1/b").is_none());
        // Path segments keep a `+`, unlike query strings.
        let (_, p) = match_route(&routes, "GET", "/a/x+y/b").unwrap();
        assert_eq!(p.get("x"), Some("x+y"));
    }

    #[test]
    fn a_rest_segment_captures_slashes() {
        let routes = [Route {
            method: "PUT",
            pattern: "/o/{bucket}/objects/{*key}",
            access: Access::Open,
            body: Body::Buffered,
            handler: 1,
        }];
        let (_, p) = match_route(&routes, "PUT", "/o/b/objects/prod/2026/x%20y.sql").unwrap();
        assert_eq!(p.get("bucket"), Some("b"));
        assert_eq!(p.get("key"), Some("prod/2026/x y.sql"));
        let (_, p) = match_route(&routes, "PUT", "/o/b/objects//a//b/").unwrap();
        assert_eq!(p.get("key"), Some("/a//b/"));
        let (_, p) = match_route(&routes, "PUT", "/o/b/objects/k").unwrap();
        assert_eq!(p.get("key"), Some("k"));
        assert!(match_route(&routes, "PUT", "/o/b/objects/").is_none());
        assert!(match_route(&routes, "PUT", "/o/b/objects").is_none());
    }

    #[test]
    fn envelopes_look_like_cloudflares() {
        let ok = Reply::cf_ok(serde_json::json!({"a": 1}));
        assert_eq!(
            String::from_utf8(ok.body).unwrap(),
            r#"{"success":true,"errors":[],"messages":[],"result":{"a":1}}"#
        );
        assert!(!ok.unhandled);
        let err = Reply::auth_error();
        assert_eq!(err.status, 403);
        assert_eq!(
            String::from_utf8(err.body).unwrap(),
            r#"{"success":false,"errors":[{"code":10000,"message":"Authentication error"}],"messages":[],"result":null}"#
        );
    }
}

#[cfg(test)]
mod spool_tests {
    use super::*;

    #[test]
    fn spooling_hashes_and_keeps_the_body() {
        let dir = tempfile::tempdir().unwrap();
        let body = b"The quick brown fox jumps over the lazy dog".repeat(5000);
        let spooled = spool_body(&mut &body[..], dir.path()).unwrap();
        assert_eq!(spooled.len, body.len() as u64);
        assert_eq!(std::fs::read(&spooled.path).unwrap(), body);
        let empty = spool_body(&mut &b""[..], dir.path()).unwrap();
        // The MD5 of nothing, as every S3 client knows it.
        assert_eq!(empty.md5_hex, "d41d8cd98f00b204e9800998ecf8427e");
        let path = empty.path.to_path_buf();
        drop(empty);
        assert!(!path.exists(), "a dropped spool deletes its file");
    }
}

/// A body read at a set rate: each read waits until the bytes sent so far
/// are due.
pub(crate) struct Paced<R> {
    inner: R,
    bytes_per_sec: u64,
    started: std::time::Instant,
    sent: u64,
}

impl<R> Paced<R> {
    pub fn new(inner: R, bytes_per_sec: u64) -> Paced<R> {
        Paced {
            inner,
            bytes_per_sec: bytes_per_sec.max(1),
            started: std::time::Instant::now(),
            sent: 0,
        }
    }
}

impl<R: Read> Read for Paced<R> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let due = std::time::Duration::from_secs_f64(self.sent as f64 / self.bytes_per_sec as f64);
        if let Some(wait) = due.checked_sub(self.started.elapsed()) {
            std::thread::sleep(wait);
        }
        // At most a tenth of a second's worth at a time.
        let most = usize::try_from(self.bytes_per_sec / 10)
            .unwrap_or(usize::MAX)
            .max(1);
        let n = buf.len().min(most);
        let n = self.inner.read(&mut buf[..n])?;
        self.sent += n as u64;
        Ok(n)
    }
}
