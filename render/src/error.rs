//! The crate's error type.
//!
//! Each variant maps to the HTTP status graphite-web answers with, so the HTTP layer never has
//! to guess: [`Error::status`].

/// A `Result` with this crate's [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Everything that can go wrong while answering a request.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The target text does not parse. `position` is a byte offset into the target.
    #[error("parse error at position {position}: expected {expected}, found {found}")]
    Parse {
        /// Byte offset of the offending input.
        position: usize,
        /// What the grammar wanted there.
        expected: String,
        /// What was there instead (a short excerpt, or "end of input").
        found: String,
    },
    /// A time specification (`from`, `until`, `now`, an interval argument) is invalid.
    #[error("{0}")]
    Time(String),
    /// A function name nobody registered.
    #[error("Received request for unknown function: {0}")]
    UnknownFunction(String),
    /// A function's arguments are wrong (missing, wrong type, unknown keyword, bad value).
    #[error("{0}")]
    InvalidArgument(String),
    /// A request parameter is wrong (`Invalid empty time range`, a missing `query`, ...).
    #[error("{0}")]
    InvalidParameter(String),
    /// A limit of this server was hit (series matched, points returned, request time).
    #[error("{0}")]
    Limit(String),
    /// The request ran out of time.
    #[error("request timed out after {0} ms")]
    Timeout(u64),
    /// The storage failed.
    #[error(transparent)]
    Store(#[from] store::Error),
    /// A function failed on valid input (graphite-web answers 500 for these).
    #[error("{0}")]
    Evaluation(String),
    /// A function had no series to combine (graphite-web's `NormalizeEmptyResultError`): the
    /// evaluator turns it into an empty result, never a response.
    #[error("no series to normalize")]
    NormalizeEmpty,
}

impl Error {
    /// The HTTP status graphite-web (or, for limits, a well-behaved server) answers with.
    pub fn status(&self) -> u16 {
        match self {
            Error::Parse { .. }
            | Error::Time(_)
            | Error::UnknownFunction(_)
            | Error::InvalidArgument(_)
            | Error::InvalidParameter(_) => 400,
            Error::Limit(_) => 422,
            Error::Timeout(_) => 503,
            Error::Store(_) | Error::Evaluation(_) | Error::NormalizeEmpty => 500,
        }
    }

    /// Shorthand for [`Error::InvalidArgument`].
    pub fn arg(msg: impl Into<String>) -> Error {
        Error::InvalidArgument(msg.into())
    }
}
