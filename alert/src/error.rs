//! The crate's error type.

use std::path::PathBuf;

/// A `Result` with this crate's [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Everything that can go wrong in the alert engine and notifier.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// A file could not be read or written.
    #[error("{}: {source}", path.display())]
    Io {
        /// The file.
        path: PathBuf,
        /// What the operating system said.
        #[source]
        source: std::io::Error,
    },
    /// A `[[receiver]]` section is wrong (the notifier's validation).
    #[error("receiver {receiver:?}: {problem}")]
    Receiver {
        /// The receiver's name.
        receiver: String,
        /// What is wrong with it.
        problem: String,
    },
    /// The `[route]` section is wrong.
    #[error("[route]: {problem}")]
    Route {
        /// What is wrong with it.
        problem: String,
    },
    /// A silence or acknowledgement request is wrong (a bad matcher, an end before its start).
    #[error("{what}: {problem}")]
    Request {
        /// What was being made (`silence`, `matcher "x=~("`, `ack`).
        what: String,
        /// What is wrong with it.
        problem: String,
    },
    /// The notifier's saved state could not be read back.
    #[error("notifier state: {source}")]
    NotifyState {
        /// What serde said.
        #[source]
        source: serde_json::Error,
    },
}

impl Error {
    /// A receiver's configuration error.
    pub(crate) fn receiver(receiver: &str, problem: impl Into<String>) -> Error {
        Error::Receiver { receiver: receiver.to_owned(), problem: problem.into() }
    }

    /// A route configuration error.
    pub(crate) fn route(problem: String) -> Error {
        Error::Route { problem }
    }

    /// A bad API request.
    pub(crate) fn request(what: impl Into<String>, problem: impl Into<String>) -> Error {
        Error::Request { what: what.into(), problem: problem.into() }
    }
}
