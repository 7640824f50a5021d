//! The crate's error type.

use std::path::PathBuf;

use crate::config::ConfigError;
use crate::index::IndexError;
use crate::wal::WalError;

/// A `Result` with this crate's [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Everything that can go wrong in the store.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// A config file is wrong (the error names the file and line).
    #[error(transparent)]
    Config(#[from] ConfigError),
    /// The write-ahead log failed.
    #[error(transparent)]
    Wal(#[from] WalError),
    /// The index failed.
    #[error(transparent)]
    Index(#[from] IndexError),
    /// A Whisper file operation failed.
    #[error(transparent)]
    Whisper(#[from] whisper::Error),
    /// An operating-system call failed.
    #[error("{}: {source}", path.display())]
    Io {
        /// The file or directory.
        path: PathBuf,
        /// What the operating system said.
        #[source]
        source: std::io::Error,
    },
}
