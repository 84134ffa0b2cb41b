//! Whether the process was asked to stop (SIGINT, SIGTERM or SIGHUP), as
//! a value the core's long loops can check.
//!
//! The xtask's signal handler (`xtask/src/edge/signals.rs`) only calls
//! [`record`]; the loops here (the gate's progress handler, a load) ask
//! [`received`] and stop with [`Interrupted`]. Nothing here installs a
//! handler.

use std::sync::atomic::{AtomicI32, Ordering};

static RECEIVED: AtomicI32 = AtomicI32::new(0);

/// The command stopped because of a signal.
#[derive(Debug)]
pub struct Interrupted(pub i32);

impl std::fmt::Display for Interrupted {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "interrupted by {}: stopped, and removed what was unfinished",
            name(self.0)
        )
    }
}

impl std::error::Error for Interrupted {}

/// The signal's name (`SIGINT`), as the interruption's message gives it.
pub fn name(signal: i32) -> &'static str {
    match signal {
        libc::SIGINT => "SIGINT",
        libc::SIGTERM => "SIGTERM",
        libc::SIGHUP => "SIGHUP",
        _ => "a signal",
    }
}

/// Records `signal`; returns the signal recorded before it, if any (the
/// handler exits at once on a second one). Only an atomic swap, so a
/// signal handler may call it.
pub fn record(signal: i32) -> Option<i32> {
    match RECEIVED.swap(signal, Ordering::SeqCst) {
        0 => None,
        s => Some(s),
    }
}

/// The signal received, if any.
pub fn received() -> Option<i32> {
    match RECEIVED.load(Ordering::SeqCst) {
        0 => None,
        s => Some(s),
    }
}

/// Fails with [`Interrupted`] once a signal has come: called before each
/// step that would start something new.
pub fn check() -> anyhow::Result<()> {
    match received() {
        Some(s) => Err(Interrupted(s).into()),
        None => Ok(()),
    }
}

/// The exit code for a signal: 130 for SIGINT, 143 for SIGTERM, 129 for
/// SIGHUP.
pub fn exit_code(signal: i32) -> u8 {
    u8::try_from(128 + signal).unwrap_or(1)
}

/// Takes back the signal [`record`] kept, if any: [`received`] then says
/// none came, and the next signal is taken as the first. For a read after
/// an interrupt, which [`record`] puts back once it ends.
pub fn take() -> Option<i32> {
    match RECEIVED.swap(0, Ordering::SeqCst) {
        0 => None,
        s => Some(s),
    }
}
