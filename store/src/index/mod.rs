//! The metric index and the tag index.

/// An index operation that failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum IndexError {}
