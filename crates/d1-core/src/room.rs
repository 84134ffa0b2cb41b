//! What the machine has room for: the questions of the operating system
//! that the core asks, answered for the edges too. The gate tells its own
//! bound on a load's growth from a full disk by the first, and bounds the
//! memory of an FTS5 command (and of a schema statement) by a
//! [`MemoryCeiling`].

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

/// The bytes `free` on a file system, if they are fewer than the `bytes`
/// to be written there: `None` when they fit, or the free space cannot be
/// told (the write itself then says what fails).
pub fn short_of(bytes: u64, free: Option<u64>) -> Option<u64> {
    free.filter(|free| *free < bytes)
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

/// The most memory this process has held since its own program started:
/// `VmHWM` of `/proc/self/status` on Linux, elsewhere
/// [`peak_resident_bytes`]. Unlike that figure, never what the process held
/// before `exec`: Linux seeds `ru_maxrss` at `exec` with the high-water
/// mark of the program it replaced, which for `cargo xtask` is cargo's (cargo
/// runs a binary by replacing itself with it) and under a test harness the
/// harness's.
pub fn own_peak_resident_bytes() -> Option<u64> {
    if !cfg!(target_os = "linux") {
        return peak_resident_bytes();
    }
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    kib_field(&status, "VmHWM:")
}

/// The bytes of a `NAME: N kB` line of a `/proc` file.
fn kib_field(text: &str, name: &str) -> Option<u64> {
    let kib: u64 = { text.lines() }
        .find_map(|line| line.strip_prefix(name))?
        .trim()
        .trim_end_matches("kB")
        .trim()
        .parse()
        .ok()?;
    Some(kib << 10)
}

/// The memory the machine can still give without swapping:
/// `MemAvailable` of `/proc/meminfo`. `None` when it cannot be told (not
/// Linux). A cgroup's limit (a container's) is not read: what it holds
/// counts the page cache, which the kernel gives back.
pub fn available_memory() -> Option<u64> {
    let info = std::fs::read_to_string("/proc/meminfo").ok()?;
    kib_field(&info, "MemAvailable:")
}

/// How much memory this process may come to hold: `more` than its own peak
/// so far. Checked often, so by the one system call of
/// [`peak_resident_bytes`] whenever that figure tells the process's own
/// peak past the ceiling, which it does unless the program this process
/// replaced held more than the ceiling; then by the slower
/// [`own_peak_resident_bytes`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MemoryCeiling {
    bytes: u64,
    /// `ru_maxrss` (the larger of the inherited and the own peak) is below
    /// the ceiling, so it passes the ceiling exactly when the own peak does.
    by_rusage: bool,
}

impl MemoryCeiling {
    /// `more` bytes above this process's own peak so far; `None` when the
    /// peak cannot be told.
    pub fn above_own_peak(more: u64) -> Option<Self> {
        let bytes = own_peak_resident_bytes()?.saturating_add(more);
        let counted = peak_resident_bytes()?;
        Some(Self {
            bytes,
            by_rusage: counted <= bytes,
        })
    }

    /// Whether the process has held more than the ceiling (or its memory
    /// can no longer be told).
    pub fn passed(&self) -> bool {
        let peak = if self.by_rusage {
            peak_resident_bytes()
        } else {
            own_peak_resident_bytes()
        };
        peak.is_none_or(|peak| peak > self.bytes)
    }
}
