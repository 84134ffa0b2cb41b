//! What the machine has room for: the two questions of the operating
//! system that the core asks, answered for the edges too. The gate tells
//! its own bound on a load's growth from a full disk by the first, and
//! bounds the memory of an FTS5 command by the second.

use std::path::Path;

/// The bytes an unprivileged process may still write on the filesystem
/// that holds `path`, or `None` when it cannot be told.
pub fn available_bytes(path: &Path) -> Option<u64> {
    use std::os::unix::ffi::OsStrExt as _;
    let c_path = std::ffi::CString::new(path.as_os_str().as_bytes()).ok()?;
    let mut stat = std::mem::MaybeUninit::<libc::statvfs>::uninit();
    // SAFETY: `c_path` is a NUL-terminated string and `stat` is written by
    // statvfs before it is read, only when it returns 0.
    let stat = unsafe {
        if libc::statvfs(c_path.as_ptr(), stat.as_mut_ptr()) != 0 {
            return None;
        }
        stat.assume_init()
    };
    // Both are u64 on 64-bit Linux, narrower on some other targets.
    #[allow(clippy::useless_conversion)]
    Some(u64::from(stat.f_bavail).saturating_mul(u64::from(stat.f_frsize)))
}

/// The most memory this process has held (its peak resident set), or
/// `None` when it cannot be told. SQLite's own count of its heap is off in
/// this build (`SQLITE_DEFAULT_MEMSTATUS=0`, `.cargo/config.toml`), so
/// this is the measure of what a statement allocates. One system call,
/// cheap enough to ask every hundred steps of a statement; reading the
/// current set from `/proc/self/statm` (three calls and a parse) was
/// suspected of slowing a legal 200,000-row FTS5 rebuild by half.
pub fn peak_resident_bytes() -> Option<u64> {
    let mut usage = std::mem::MaybeUninit::<libc::rusage>::uninit();
    // SAFETY: `usage` is written by getrusage before it is read, only when
    // it returns 0.
    let usage = unsafe {
        if libc::getrusage(libc::RUSAGE_SELF, usage.as_mut_ptr()) != 0 {
            return None;
        }
        usage.assume_init()
    };
    let max = u64::try_from(usage.ru_maxrss).ok()?;
    // Bytes on macOS, kibibytes elsewhere.
    Some(if cfg!(target_os = "macos") {
        max
    } else {
        max << 10
    })
}
