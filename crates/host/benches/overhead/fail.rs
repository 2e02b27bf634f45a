//! The harness's error: one line saying what failed and why, printed once by
//! `main`, which then exits non-zero. A missed goal is not an error.

use std::fmt::{self, Display};

/// What failed, with its context (`cannot build the runner: ...`).
#[derive(Debug)]
pub(crate) struct Error(String);

pub(crate) type Result<T, E = Error> = std::result::Result<T, E>;

impl Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// Any error of a library (io, JSON, the host's) converts with `?`.
impl<E: std::error::Error> From<E> for Error {
    fn from(e: E) -> Error {
        Error(e.to_string())
    }
}

/// An error with the message `what`.
pub(crate) fn fail(what: impl Into<String>) -> Error {
    Error(what.into())
}

/// Says what was being done when a `Result` or `Option` failed.
pub(crate) trait Context<T> {
    /// `what: the cause` on failure.
    fn context(self, what: impl Display) -> Result<T>;
    /// The same with a message built only on failure.
    fn with_context<D: Display>(self, what: impl FnOnce() -> D) -> Result<T>;
}

impl<T, E: Display> Context<T> for Result<T, E> {
    fn context(self, what: impl Display) -> Result<T> {
        self.map_err(|e| Error(format!("{what}: {e}")))
    }

    fn with_context<D: Display>(self, what: impl FnOnce() -> D) -> Result<T> {
        self.map_err(|e| Error(format!("{}: {e}", what())))
    }
}

impl<T> Context<T> for Option<T> {
    fn context(self, what: impl Display) -> Result<T> {
        self.ok_or_else(|| Error(what.to_string()))
    }

    fn with_context<D: Display>(self, what: impl FnOnce() -> D) -> Result<T> {
        self.ok_or_else(|| Error(what().to_string()))
    }
}
