//! The write-ahead log.

/// A write-ahead log operation that failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum WalError {}
