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
        if GUARDING.load(std::sync::atomic::Ordering::SeqCst) {
            // A command of ours is running: it must not be left running
            // unwatched. The waiting loop stops it, and reports.
            AGAIN.store(signal, std::sync::atomic::Ordering::SeqCst);
            return;
        }
        // SAFETY: _exit(2) is async-signal-safe.
        unsafe { libc::_exit(128 + signal) };
    }
}

/// Set while `with-backup` waits for its command: a second signal is then
/// recorded in [`AGAIN`] instead of exiting at once.
static GUARDING: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(false);
static AGAIN: std::sync::atomic::AtomicI32 = std::sync::atomic::AtomicI32::new(0);

/// While the value lives, a second SIGINT or SIGTERM does not exit at
/// once: it is [`received_again`], for the loop that waits for a command
/// of ours to stop that command and report.
pub struct GuardingChild(());

impl GuardingChild {
    pub fn new() -> GuardingChild {
        GUARDING.store(true, std::sync::atomic::Ordering::SeqCst);
        GuardingChild(())
    }
}

impl Drop for GuardingChild {
    fn drop(&mut self) {
        GUARDING.store(false, std::sync::atomic::Ordering::SeqCst);
    }
}

/// A second signal received while a [`GuardingChild`] lived.
pub fn received_again() -> Option<i32> {
    let signal = AGAIN.load(std::sync::atomic::Ordering::SeqCst);
    (signal != 0).then_some(signal)
}

/// What a command has changed for good so far (a restore's load
/// committed), if anything: an interrupt after it must not say "the next
/// run starts clean". Set from the main thread as each such step ends.
static CHANGED: std::sync::Mutex<Option<String>> = std::sync::Mutex::new(None);

/// Records what now stays changed, whatever happens next.
pub fn changed(what: String) {
    *CHANGED.lock().unwrap_or_else(|e| e.into_inner()) = Some(what);
}

/// What [`changed`] last recorded.
pub fn what_changed() -> Option<String> {
    CHANGED.lock().unwrap_or_else(|e| e.into_inner()).clone()
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
