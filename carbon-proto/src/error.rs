//! The crate's error type: one variant per format, each carrying that format's own error.

use crate::cache_query::CacheQueryError;
use crate::metric::NameError;
use crate::opentsdb::OpenTsdbError;
use crate::pickle::PickleError;
use crate::plaintext::LineError;
use crate::ring::RingError;
use crate::statsd::StatsdError;
use crate::tags::TagError;

/// A `Result` with this crate's [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Everything that can go wrong in this crate, by format.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// A metric name that cannot be stored (see [`MetricName`](crate::MetricName)).
    #[error(transparent)]
    Name(#[from] NameError),
    /// A bad plaintext line.
    #[error(transparent)]
    Line(#[from] LineError),
    /// A bad tagged name.
    #[error(transparent)]
    Tag(#[from] TagError),
    /// A bad pickle frame or payload.
    #[error(transparent)]
    Pickle(#[from] PickleError),
    /// A bad cache-query request or response.
    #[error(transparent)]
    CacheQuery(#[from] CacheQueryError),
    /// A bad statsd line.
    #[error(transparent)]
    Statsd(#[from] StatsdError),
    /// A bad OpenTSDB line.
    #[error(transparent)]
    OpenTsdb(#[from] OpenTsdbError),
    /// A hash ring that cannot answer.
    #[error(transparent)]
    Ring(#[from] RingError),
}
