//! The log's error type: every variant names the file or directory and what was being done.

use std::fmt;
use std::io;
use std::path::PathBuf;

/// A write-ahead log operation that failed.
///
/// Damage found while replaying (a torn tail, a corrupt record) is not an error: it is
/// reported in [`ReplayStats`](super::ReplayStats). Errors are what stops the log from working:
/// a file it cannot read or write, a file that is not a segment of ours, a newer format.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum WalError {
    /// An operating-system call failed. A full disk surfaces here, from
    /// [`Wal::append`](super::Wal::append) or [`Wal::sync`](super::Wal::sync), with the
    /// `StorageFull` kind (`ENOSPC`), or `FileTooLarge` (`EFBIG`) under a file size limit.
    #[error("cannot {op} {}: {source}", path.display())]
    Io {
        /// What was being done.
        op: WalOp,
        /// The segment file, or the log's directory.
        path: PathBuf,
        /// What the operating system said.
        #[source]
        source: io::Error,
    },

    /// A file named like a segment does not start with the segment magic.
    #[error("{} is not a write-ahead log segment (bad magic)", path.display())]
    BadMagic {
        /// The file.
        path: PathBuf,
    },

    /// A segment was written in a format version this build does not read.
    #[error(
        "{} is a write-ahead log segment of format version {found}, this build reads version {supported}",
        path.display()
    )]
    UnsupportedVersion {
        /// The file.
        path: PathBuf,
        /// The version in its header.
        found: u32,
        /// The version this build reads and writes.
        supported: u32,
    },

    /// Another [`Wal`](super::Wal), in this process or another, has the directory open.
    #[error("write-ahead log directory {} is in use (its LOCK file is locked)", path.display())]
    Locked {
        /// The lock file.
        path: PathBuf,
    },

    /// A metric name longer than [`MAX_NAME_BYTES`](super::MAX_NAME_BYTES); nothing of the
    /// batch was appended.
    #[error("metric name of {len} bytes is longer than the write-ahead log's limit of {max}")]
    NameTooLong {
        /// The name's length in bytes.
        len: usize,
        /// The limit.
        max: usize,
    },

    /// The log's thread has stopped (it panicked), so nothing more can be written.
    #[error("the write-ahead log's writer thread has stopped")]
    Closed,
}

impl WalError {
    pub(crate) fn io(op: WalOp, path: impl Into<PathBuf>, source: io::Error) -> Self {
        WalError::Io { op, path: path.into(), source }
    }

    /// The I/O error kind, if this is an I/O error (`StorageFull` for a full disk).
    pub fn io_kind(&self) -> Option<io::ErrorKind> {
        match self {
            WalError::Io { source, .. } => Some(source.kind()),
            _ => None,
        }
    }
}

/// What the log was doing when an operating-system call failed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum WalOp {
    /// Creating the log's directory.
    CreateDir,
    /// Locking the directory's `LOCK` file.
    Lock,
    /// Listing the directory.
    List,
    /// Opening a segment.
    Open,
    /// Reading a segment.
    Read,
    /// Creating a segment (its header included).
    Create,
    /// Writing records.
    Write,
    /// Flushing a segment to stable storage (`fdatasync`).
    Sync,
    /// Flushing the directory (after creating, renaming or removing a segment).
    SyncDir,
    /// Cutting the torn tail off the last segment.
    Truncate,
    /// Removing a released segment or a leftover temporary file.
    Remove,
    /// Starting the writer thread.
    Spawn,
}

impl fmt::Display for WalOp {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            WalOp::CreateDir => "create directory",
            WalOp::Lock => "lock",
            WalOp::List => "list",
            WalOp::Open => "open",
            WalOp::Read => "read",
            WalOp::Create => "create",
            WalOp::Write => "write",
            WalOp::Sync => "fsync",
            WalOp::SyncDir => "fsync directory",
            WalOp::Truncate => "truncate",
            WalOp::Remove => "remove",
            WalOp::Spawn => "start the writer thread for",
        })
    }
}

/// A copy of an I/O error for a second receiver: the errno when there is one (so `kind()` and
/// the message are the operating system's), else the kind and the message.
pub(crate) fn copy_io_error(e: &io::Error) -> io::Error {
    match e.raw_os_error() {
        Some(code) => io::Error::from_raw_os_error(code),
        None => io::Error::new(e.kind(), e.to_string()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn error_is_small() {
        assert!(std::mem::size_of::<WalError>() <= 128);
    }

    #[test]
    fn io_error_names_the_operation_and_the_path() {
        let e = WalError::io(
            WalOp::Write,
            "/wal/00000000000000000001.wal",
            io::Error::from_raw_os_error(28),
        );
        let text = e.to_string();
        assert!(text.starts_with("cannot write /wal/00000000000000000001.wal: "), "{text}");
        assert_eq!(e.io_kind(), Some(io::ErrorKind::StorageFull));
    }

    #[test]
    fn copies_keep_the_errno() {
        let e = io::Error::from_raw_os_error(28);
        let c = copy_io_error(&e);
        assert_eq!(c.raw_os_error(), Some(28));
        let e = io::Error::new(io::ErrorKind::WriteZero, "short");
        let c = copy_io_error(&e);
        assert_eq!(c.kind(), io::ErrorKind::WriteZero);
        assert_eq!(c.to_string(), "short");
    }
}
