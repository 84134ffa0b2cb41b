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

/// Waits for `child`, a command of ours: SIGINT or SIGTERM sent to this
/// process (by `kill`, systemd, a CI timeout: not only a terminal's Ctrl-C,
/// which reaches the whole group) is passed on to it, and a second one,
/// under a [`GuardingChild`], kills it (SIGKILL); either way it is waited
/// for, so that it never runs on after the xtask has said it stopped.
pub fn wait_passing_signals(
    child: &mut std::process::Child,
) -> std::io::Result<std::process::ExitStatus> {
    let pid = libc::pid_t::try_from(child.id()).unwrap_or(0);
    let (mut passed, mut killed) = (false, false);
    loop {
        if let Some(status) = child.try_wait()? {
            return Ok(status);
        }
        if let Some(signal) = received().filter(|_| !passed) {
            // SAFETY: kill(2) with the pid of our own, not yet reaped child.
            unsafe { libc::kill(pid, signal) };
            passed = true;
        }
        if received_again().is_some() && !killed {
            kill_tree(pid);
            killed = true;
        }
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
}

/// Kills (SIGKILL) our child `pid` and every process descended from it (a
/// shell's pipeline, a script's background job): each is stopped first,
/// and the tree read again, so that none forks a process that outlives it.
fn kill_tree(pid: libc::pid_t) {
    let mut stopped: Vec<libc::pid_t> = Vec::new();
    for _ in 0..3 {
        let tree = process_tree(pid);
        let new: Vec<libc::pid_t> = tree.into_iter().filter(|p| !stopped.contains(p)).collect();
        if new.is_empty() {
            break;
        }
        for &p in &new {
            // SAFETY: kill(2) of our own child, not yet reaped, or of a
            // process whose parent chain leads to it.
            unsafe { libc::kill(p, libc::SIGSTOP) };
        }
        stopped.extend(new);
    }
    for &p in &stopped {
        // SAFETY: as above.
        unsafe { libc::kill(p, libc::SIGKILL) };
    }
}

/// `pid` and the processes descended from it, by the parent of each in
/// `/proc` (Linux); elsewhere `pid` alone.
fn process_tree(pid: libc::pid_t) -> Vec<libc::pid_t> {
    let mut tree = vec![pid];
    if cfg!(target_os = "linux") {
        let parents: Vec<(libc::pid_t, libc::pid_t)> = std::fs::read_dir("/proc")
            .into_iter()
            .flatten()
            .flatten()
            .filter_map(|e| e.file_name().to_str()?.parse().ok())
            .filter_map(|p| Some((p, parent_of(p)?)))
            .collect();
        let mut i = 0;
        while let Some(&parent) = tree.get(i) {
            tree.extend(
                parents
                    .iter()
                    .filter(|(_, pp)| *pp == parent)
                    .map(|(p, _)| *p),
            );
            i += 1;
        }
    }
    tree
}

/// A process's parent, from `/proc/<pid>/stat`: the field after its state,
/// after the command name in parentheses (which may hold either).
fn parent_of(pid: libc::pid_t) -> Option<libc::pid_t> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    stat.rsplit_once(')')?
        .1
        .split_whitespace()
        .nth(1)?
        .parse()
        .ok()
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

#[cfg(test)]
mod tests {
    use super::*;

    #[cfg(target_os = "linux")]
    #[test]
    fn a_childs_whole_tree_is_read_and_killed() {
        let mut child = std::process::Command::new("sh")
            .args(["-c", "sleep 30 & sleep 30 & wait"])
            .spawn()
            .unwrap();
        let pid = libc::pid_t::try_from(child.id()).unwrap();
        let started = std::time::Instant::now();
        let mut tree = process_tree(pid);
        while tree.len() < 3 && started.elapsed().as_secs() < 10 {
            std::thread::sleep(std::time::Duration::from_millis(20));
            tree = process_tree(pid);
        }
        assert_eq!(tree.len(), 3, "the shell and its two sleeps: {tree:?}");
        assert!(tree[1..].iter().all(|&p| parent_of(p) == Some(pid)));
        kill_tree(pid);
        child.wait().unwrap();
        // Each sleep is gone (reaped by whoever adopted it), or a zombie
        // until then; a pid taken again by then runs something else.
        let started = std::time::Instant::now();
        let sleeping = |p: libc::pid_t| {
            let cmdline = std::fs::read(format!("/proc/{p}/cmdline")).unwrap_or_default();
            cmdline == b"sleep\x0030\x00"
        };
        while tree[1..].iter().any(|&p| sleeping(p)) && started.elapsed().as_secs() < 5 {
            std::thread::sleep(std::time::Duration::from_millis(20));
        }
        assert!(!tree[1..].iter().any(|&p| sleeping(p)), "{tree:?}");
    }
}
