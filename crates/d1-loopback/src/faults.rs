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
}
