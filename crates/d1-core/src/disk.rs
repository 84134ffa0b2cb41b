//! What the machine has room for: the one question of the file system that
//! the core asks (the gate tells its own bound on a load's growth from a
//! full disk by it), answered for the edges too.

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
