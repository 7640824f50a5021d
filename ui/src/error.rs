//! The crate's one error type.

use std::path::PathBuf;

/// What can go wrong storing or reading dashboards.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// A dashboard name is empty, too long, or has a character outside `[A-Za-z0-9._ -]`
    /// (names become file names, so they are kept to a portable, traversal-free set).
    #[error("invalid dashboard name {name:?}: use 1-{max} of A-Z a-z 0-9 . _ - and space, not starting with . or space", max = crate::store::MAX_NAME_BYTES)]
    InvalidName {
        /// The name as given.
        name: String,
    },
    /// A dashboard's JSON does not parse or breaks a limit.
    #[error("invalid dashboard: {reason}")]
    InvalidDashboard {
        /// What is wrong, for the client.
        reason: Box<str>,
    },
    /// A rename's target name is taken.
    #[error("dashboard {name:?} already exists")]
    Exists {
        /// The name that is taken.
        name: String,
    },
    /// The named dashboard does not exist.
    #[error("no dashboard {name:?}")]
    NotFound {
        /// The missing name.
        name: String,
    },
    /// A file in the dashboards directory could not be read or written.
    #[error("{path}: {source}")]
    Io {
        /// The file or directory.
        path: PathBuf,
        /// The underlying error.
        source: std::io::Error,
    },
    /// A stored dashboard file is not valid JSON (it was edited by hand or damaged).
    #[error("{path}: not a dashboard: {source}")]
    Corrupt {
        /// The file.
        path: PathBuf,
        /// Where parsing failed.
        source: serde_json::Error,
    },
}

impl Error {
    pub(crate) fn io(path: impl Into<PathBuf>, source: std::io::Error) -> Error {
        Error::Io { path: path.into(), source }
    }

    pub(crate) fn invalid(reason: impl Into<Box<str>>) -> Error {
        Error::InvalidDashboard { reason: reason.into() }
    }
}

/// The crate's result.
pub type Result<T> = std::result::Result<T, Error>;
