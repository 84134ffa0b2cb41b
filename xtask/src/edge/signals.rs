//! SIGINT and SIGTERM: stop, clean up, and exit 130 or 143.
//!
//! The handler only records the signal (an atomic store is all a handler
//! may safely do). The wrangler watchdog notices it within a fraction of a
//! second and stops wrangler with every process it started; the running
//! command then fails with [`Interrupted`], so the usual `Drop` guards
//! remove the unfinished file and the export pipe and release the lock on
//! the way out, and `main` exits with 128 + the signal. A second signal
//! exits at once.

pub use d1_core::interrupt::{Interrupted, check, exit_code, received};

extern "C" fn record(signal: libc::c_int) {
    if d1_core::interrupt::record(signal).is_some() {
        // SAFETY: _exit(2) is async-signal-safe.
        unsafe { libc::_exit(128 + signal) };
    }
}

/// Context on an error raised after a command changed something for good
/// (a restore's load committed, its check not yet done): when the error
/// is an interrupt, `main` says this instead of "the next run starts
/// clean", which would be untrue.
#[derive(Debug)]
pub struct AlreadyChanged(pub String);

impl std::fmt::Display for AlreadyChanged {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

/// Installs the handler for SIGINT and SIGTERM.
pub fn install() {
    for signal in [libc::SIGINT, libc::SIGTERM] {
        // SAFETY: a zeroed sigaction is valid; the handler only stores to
        // an atomic (or calls _exit); SA_RESTART keeps blocking reads going.
        unsafe {
            let mut action: libc::sigaction = std::mem::zeroed();
            action.sa_sigaction = record as extern "C" fn(libc::c_int) as libc::sighandler_t;
            action.sa_flags = libc::SA_RESTART;
            libc::sigemptyset(&mut action.sa_mask);
            libc::sigaction(signal, &action, std::ptr::null_mut());
        }
    }
}
