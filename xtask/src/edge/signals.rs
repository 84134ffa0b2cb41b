//! SIGINT, SIGTERM and SIGHUP: stop, clean up, and exit 130, 143 or 129.
//!
//! SIGHUP is the terminal going away (an SSH session dropped, a window
//! closed): handled as SIGTERM. A signal the xtask was started ignoring
//! (`nohup` ignores SIGHUP; a script's `cmd &`, SIGINT) stays ignored, and
//! the processes it starts run in a process group of their own then
//! ([`shield`]): Node.js, wrangler's runtime, puts both signals back to
//! their defaults, and would die of what was sent to the job.
//!
//! The handler only records the signal (an atomic store is all a handler
//! may safely do). The wrangler watchdog notices it within a fraction of a
//! second and stops wrangler with every process it started; the running
//! command then fails with [`Interrupted`], so the usual `Drop` guards
//! remove the unfinished file and the export pipe and release the lock on
//! the way out, and `main` exits with 128 + the signal. A second signal
//! exits at once, but for the same one again within 300 ms: `timeout(1)`
//! sends its SIGTERM to the command and then to its process group.

use std::sync::atomic::Ordering::SeqCst;
use std::sync::atomic::{AtomicBool, AtomicI32};

pub use d1_core::interrupt::{Interrupted, check, exit_code, received};

extern "C" fn record(signal: libc::c_int) {
    let now = monotonic_ms();
    if received() == Some(signal) && now.saturating_sub(FIRST_AT.load(SeqCst)) < ECHO_MS {
        // The same signal again at once: `timeout(1)` sends its signal to
        // the command, then to the command's process group, microseconds
        // apart. One stop, not an operator's second Ctrl-C, which takes
        // longer than this.
        return;
    }
    if d1_core::interrupt::record(signal).is_none() {
        FIRST_AT.store(now, SeqCst);
    } else {
        if GUARDING.load(SeqCst) {
            // A command of ours is running: it must not be left running
            // unwatched. The waiting loop stops it, and reports.
            AGAIN.store(signal, SeqCst);
            return;
        }
        // SAFETY: _exit(2) is async-signal-safe.
        unsafe { libc::_exit(128 + signal) };
    }
}

/// How soon after the first signal the same one again counts as the same
/// stop ([`record`]).
const ECHO_MS: i64 = 300;

/// When the first signal came, in [`monotonic_ms`].
static FIRST_AT: std::sync::atomic::AtomicI64 = std::sync::atomic::AtomicI64::new(0);

/// Milliseconds on the monotonic clock; clock_gettime(2) may be called in
/// a signal handler.
fn monotonic_ms() -> i64 {
    // SAFETY: a zeroed timespec is valid for clock_gettime to fill.
    let mut now: libc::timespec = unsafe { std::mem::zeroed() };
    // SAFETY: a valid, owned timespec.
    unsafe { libc::clock_gettime(libc::CLOCK_MONOTONIC, &mut now) };
    now.tv_sec * 1000 + now.tv_nsec / 1_000_000
}

/// Set while `with-backup` waits for its command: a second signal is then
/// recorded in [`AGAIN`] instead of exiting at once.
static GUARDING: AtomicBool = AtomicBool::new(false);
static AGAIN: AtomicI32 = AtomicI32::new(0);

/// While the value lives, a second SIGINT or SIGTERM does not exit at
/// once: it is [`received_again`], for the loop that waits for a command
/// of ours to stop that command and report.
pub struct GuardingChild(());

impl GuardingChild {
    pub fn new() -> GuardingChild {
        crate::edge::processes::adopt_orphans();
        GUARDING.store(true, SeqCst);
        GuardingChild(())
    }
}

impl Drop for GuardingChild {
    fn drop(&mut self) {
        GUARDING.store(false, SeqCst);
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
    let pid = libc::pid_t::try_from(child.id()).expect("a child's pid is a pid_t");
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
            // The command and everything below this process: what the
            // command started, and what it detached, which this process
            // adopted (`processes::adopt_orphans`).
            crate::edge::processes::kill_tree(child.id(), true);
            crate::edge::processes::kill_tree(std::process::id(), false);
            killed = true;
        }
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
}

/// Runs `read`, a read-only look at what a command stopped by a signal
/// left (the migrations an interrupted `migrate` applied), as if no signal
/// had come, then puts the signal back. A second signal while it runs
/// stops it as the first stops any command (the wrangler it runs is
/// stopped, and it fails with [`Interrupted`]); a third exits at once.
pub fn despite_interrupt<T>(read: impl FnOnce() -> T) -> T {
    let first = d1_core::interrupt::take();
    let result = read();
    if let Some(signal) = first {
        d1_core::interrupt::record(signal);
    }
    result
}

/// A second signal received while a [`GuardingChild`] lived.
pub fn received_again() -> Option<i32> {
    let signal = AGAIN.load(SeqCst);
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

/// Puts back what [`what_changed`] returned before a step that recorded
/// something only while it ran (a new backup's verification).
pub fn changed_back_to(what: Option<String>) {
    *CHANGED.lock().unwrap_or_else(|e| e.into_inner()) = what;
}

/// Set when the lock keeps its record of what a run stopped by SIGHUP was
/// doing, for the next run to tell (`edge::lock`).
static LEFT_TOLD: AtomicBool = AtomicBool::new(false);

/// Records that the lock keeps what this run was doing for the next run.
pub fn left_told() {
    LEFT_TOLD.store(true, SeqCst);
}

/// Whether [`left_told`] was called.
pub fn was_left_told() -> bool {
    LEFT_TOLD.load(SeqCst)
}

/// What [`changed`] last recorded.
pub fn what_changed() -> Option<String> {
    CHANGED.lock().unwrap_or_else(|e| e.into_inner()).clone()
}

/// Whether the xtask was started with SIGHUP or SIGINT ignored.
static SHIELDED: AtomicBool = AtomicBool::new(false);

/// Whether the xtask was started with SIGHUP ignored (`nohup`).
static HANGUP_IGNORED: AtomicBool = AtomicBool::new(false);

/// Installs the handler for SIGINT, SIGTERM and SIGHUP, except for a
/// signal the xtask was started ignoring, which stays ignored, then
/// unblocks those it handles. A signal that arrives before the handler is
/// there (while the loader maps the program) takes the default action:
/// no code of ours runs yet. A parent that must not lose one starts the
/// xtask with it blocked: it waits, pending, and is taken here.
pub fn install() {
    // SAFETY: a zeroed sigset_t is valid for sigemptyset to fill.
    let mut handled: libc::sigset_t = unsafe { std::mem::zeroed() };
    // SAFETY: a valid, owned sigset_t.
    unsafe { libc::sigemptyset(&mut handled) };
    for signal in [libc::SIGINT, libc::SIGTERM, libc::SIGHUP] {
        // SAFETY: a zeroed sigaction is valid; the handler only stores to
        // an atomic (or calls _exit); SA_RESTART keeps blocking reads going.
        unsafe {
            let mut old: libc::sigaction = std::mem::zeroed();
            libc::sigaction(signal, std::ptr::null(), &mut old);
            if old.sa_sigaction == libc::SIG_IGN {
                if signal != libc::SIGTERM {
                    SHIELDED.store(true, SeqCst);
                }
                if signal == libc::SIGHUP {
                    HANGUP_IGNORED.store(true, SeqCst);
                }
                continue;
            }
            let mut action: libc::sigaction = std::mem::zeroed();
            action.sa_sigaction = record as extern "C" fn(libc::c_int) as libc::sighandler_t;
            action.sa_flags = libc::SA_RESTART;
            libc::sigemptyset(&mut action.sa_mask);
            libc::sigaction(signal, &action, std::ptr::null_mut());
            libc::sigaddset(&mut handled, signal);
        }
    }
    // SAFETY: called on the main thread, before any other starts.
    unsafe { libc::pthread_sigmask(libc::SIG_UNBLOCK, &handled, std::ptr::null_mut()) };
}

/// Runs `cmd` (wrangler, Node.js) in a process group of its own when the
/// xtask was started ignoring SIGHUP or SIGINT (`nohup`, a script's `&`):
/// what the terminal or the shell sends the job then reaches the xtask
/// alone, which ignores it, and not a child that would die of it. An
/// interrupt the xtask does take still stops the child: the watchdog
/// stops it by its process id. Whatever the mode, the child dies with the
/// xtask ([`dies_with_the_xtask`]): a SIGKILL of the xtask alone (`kill -9
/// PID`, the OOM killer, or one sent to a job's group the child is not
/// in) must not leave wrangler, and the workerd it runs, writing to a
/// database with nothing watching it while the next run takes the lock.
pub fn shield(cmd: &mut std::process::Command) -> &mut std::process::Command {
    if SHIELDED.load(SeqCst) {
        own_group(cmd);
    } else {
        dies_with_the_xtask(cmd);
    }
    cmd
}

/// [`shield`] for the operator's own command (`with-backup`), which may
/// use the terminal: only under `nohup`, which has taken the terminal
/// from its standard input and output, so that in a process group of its
/// own it is never stopped for reading or writing one. Otherwise it is
/// left to run on when with-backup is killed, as it always was: the lock
/// counts as held while it runs (`BackupLock::running`).
pub fn shield_from_hangup(cmd: &mut std::process::Command) -> &mut std::process::Command {
    if HANGUP_IGNORED.load(SeqCst) {
        own_group(cmd);
    }
    cmd
}

/// Puts `cmd` in a process group of its own, stopped when the xtask dies.
fn own_group(cmd: &mut std::process::Command) {
    use std::os::unix::process::CommandExt;
    cmd.process_group(0);
    dies_with_the_xtask(cmd);
}

/// On Linux, `cmd` is sent SIGTERM when the xtask dies (wrangler's
/// launcher passes that on to wrangler, which stops its workerd). The
/// kernel sends it when the *thread* that started the child ends, not the
/// process: each child here is started by the code that then waits for
/// it, or kills it, on that same thread (`Wrangler::spawn_as`, a
/// background wrangler on the thread it runs on), so that thread outlives
/// the child but for the xtask's own death.
fn dies_with_the_xtask(cmd: &mut std::process::Command) {
    #[cfg(target_os = "linux")]
    {
        use std::os::unix::process::CommandExt;
        let parent = libc::pid_t::try_from(std::process::id()).unwrap_or(0);
        // SAFETY: prctl(2) and getppid(2) only, between fork and exec.
        unsafe {
            cmd.pre_exec(move || {
                if libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGTERM) != 0 {
                    return Err(std::io::Error::last_os_error());
                }
                // The xtask died before the line above: nothing waits.
                if libc::getppid() != parent {
                    return Err(std::io::Error::other("the xtask is gone"));
                }
                Ok(())
            })
        };
    }
    #[cfg(not(target_os = "linux"))]
    let _ = cmd;
}
