//! What an exit code means, the same on every command (the table is in
//! README.md). An error says which kind it is by carrying an [`Exit`]
//! ([`Exit::error`]); `main` maps it, and an error that carries none is a
//! failure.

use std::fmt;

/// Why a command stopped without succeeding.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Exit {
    /// It ran and failed (for verify: the backup is bad).
    Failure,
    /// It could not run: bad input, a missing file, an unreadable configuration.
    CouldNotRun,
    /// A guard refused: a confirmation missing, the wrong environment, a
    /// target that is not empty.
    Refused,
    /// Another run holds the backup lock.
    LockHeld,
    /// Stopped by Ctrl-C (SIGINT). A run that dies of the signal gets 130
    /// from the shell; a handler that cleans up first returns this.
    #[allow(dead_code)]
    Interrupted,
}

impl Exit {
    pub fn code(self) -> u8 {
        match self {
            Exit::Failure => 1,
            Exit::CouldNotRun => 2,
            Exit::Refused => 3,
            Exit::LockHeld => 4,
            Exit::Interrupted => 130,
        }
    }

    /// `error`, marked as this kind of stop.
    pub fn error(self, error: impl Into<anyhow::Error>) -> anyhow::Error {
        anyhow::Error::new(Coded {
            exit: self,
            error: error.into(),
        })
    }

    /// `message` as an I/O error marked as this kind of stop: what a
    /// reader (a `Read` of a stored backup) fails with when the stop is the
    /// file's, however the caller passes it on with `?`.
    pub fn io_error(self, message: String) -> std::io::Error {
        std::io::Error::other(Coded {
            exit: self,
            error: anyhow::Error::msg(message),
        })
    }

    /// The kind an error was marked with, anywhere in its chain of context
    /// (an I/O error made by [`Exit::io_error`] too, whose chain does not
    /// show what it holds).
    pub fn of(error: &anyhow::Error) -> Option<Exit> {
        error.chain().find_map(coded).map(|c| c.exit)
    }
}

/// The error of type `T` anywhere in `error`'s chain, an [`Exit`]'s
/// wrapped error included (whose chain `chain()` does not see).
pub fn find<T>(error: &anyhow::Error) -> Option<&T>
where
    T: std::error::Error + Send + Sync + 'static,
{
    error.chain().find_map(|e| {
        e.downcast_ref::<T>()
            .or_else(|| e.downcast_ref::<Coded>().and_then(|c| find(&c.error)))
    })
}

/// The error an [`Exit`] marks, the first in `error`'s chain: its own
/// chain, which `chain()` does not see, is there.
pub fn inner(error: &anyhow::Error) -> Option<&anyhow::Error> {
    error.chain().find_map(coded).map(|c| &c.error)
}

/// The [`Coded`] `e` is, or the one an I/O error `e` holds.
fn coded<'a>(e: &'a (dyn std::error::Error + 'static)) -> Option<&'a Coded> {
    e.downcast_ref::<Coded>().or_else(|| {
        e.downcast_ref::<std::io::Error>()?
            .get_ref()?
            .downcast_ref::<Coded>()
    })
}

/// An error and its [`Exit`]; shown exactly as the error it wraps.
#[derive(Debug)]
struct Coded {
    exit: Exit,
    error: anyhow::Error,
}

impl fmt::Display for Coded {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:#}", self.error)
    }
}

impl std::error::Error for Coded {}

/// `error` as bad input (exit 2), unless it already says which kind it is.
pub fn could_not_run(error: anyhow::Error) -> anyhow::Error {
    match Exit::of(&error) {
        Some(_) => error,
        None => Exit::CouldNotRun.error(error),
    }
}

/// `bail!` with an [`Exit`]: `stop!(Exit::Refused, "refusing to ...")`.
#[macro_export]
macro_rules! stop {
    ($exit:expr, $($arg:tt)*) => {
        return Err($exit.error(anyhow::anyhow!($($arg)*)))
    };
}

#[cfg(test)]
mod tests {
    use super::*;
    use anyhow::Context;

    #[test]
    fn the_kind_survives_context_and_the_message_is_unchanged() {
        let err: anyhow::Error = Exit::Refused.error(anyhow::anyhow!("refusing to load"));
        let err = Err::<(), _>(err).context("restoring").unwrap_err();
        assert_eq!(Exit::of(&err), Some(Exit::Refused));
        assert_eq!(format!("{err:#}"), "restoring: refusing to load");
        assert_eq!(Exit::of(&anyhow::anyhow!("plain")), None);
        assert_eq!(Exit::LockHeld.code(), 4);
    }

    #[test]
    fn an_error_of_a_type_is_found_inside_a_kind_and_its_context() {
        let inner = anyhow::Error::new(std::fmt::Error).context("formatting");
        let err = Err::<(), _>(Exit::Refused.error(inner))
            .context("restoring")
            .unwrap_err();
        assert!(find::<std::fmt::Error>(&err).is_some());
        assert!(find::<std::io::Error>(&err).is_none());
        assert!(find::<std::fmt::Error>(&anyhow::anyhow!("plain")).is_none());
    }
}
