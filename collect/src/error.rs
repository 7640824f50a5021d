//! The crate's error type.

use std::path::PathBuf;

/// A `Result` with this crate's [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Everything that can go wrong while configuring or running collectors and senders.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// A setting has a value that cannot be used.
    #[error("option `{key}` = {value:?}: {reason}")]
    BadOption {
        /// The option's name.
        key: String,
        /// The value as written.
        value: String,
        /// Why it cannot be used.
        reason: &'static str,
    },
    /// A file could not be read or written.
    #[error("{}: {source}", path.display())]
    Io {
        /// The file or directory.
        path: PathBuf,
        /// What the operating system said.
        #[source]
        source: std::io::Error,
    },
    /// The agent's configuration cannot be used (file, line and key named).
    #[error(transparent)]
    Agent(#[from] crate::agent::AgentError),
    /// A file's contents did not have the expected shape.
    #[error("{}: {what}", path.display())]
    Malformed {
        /// The file.
        path: PathBuf,
        /// What was wrong (e.g. "line 3: expected 11 fields").
        what: String,
    },
    /// The sender could not start or stop.
    #[error(transparent)]
    Sender(#[from] crate::sender::SenderError),
    /// An application collector (nginx, Redis, HTTP JSON, scripts) failed; the error names
    /// the address or script.
    #[error(transparent)]
    App(#[from] crate::apps::AppError),
    /// The statsd server could not be configured or started.
    #[error(transparent)]
    Statsd(#[from] crate::statsd::Error),
}

impl Error {
    /// An I/O error on `path`.
    pub fn io(path: impl Into<PathBuf>, source: std::io::Error) -> Error {
        Error::Io { path: path.into(), source }
    }
}
