//! The storage engine behind the server and the render API.
//!
//! Points arrive through [`Store::ingest`]: they are checked, appended to the write-ahead log,
//! added to the in-memory cache and to the metric index, and from then on are visible to
//! [`Store::fetch`] and [`Store::find`]. Persister threads drain the cache into Whisper files
//! (creating them from `storage-schemas.conf` and `storage-aggregation.conf`), at the rates
//! carbon's settings allow, and the log is trimmed once points are on disk.
//!
//! | module | owns |
//! |---|---|
//! | [`config`] | carbon's own config files: `carbon.conf`, `storage-schemas.conf`, `storage-aggregation.conf`, white/blacklists, rewrite rules |
//! | [`aggregator`] | carbon-aggregator: `aggregation-rules.conf` and the aggregation buffers |
//! | [`wal`] | the write-ahead log: segments, group commit, replay, trimming |
//! | [`index`] | the metric index (glob `find` as graphite-web does) and the tag index |
//! | [`audit`] | files whose archives, method or xFilesFactor differ from the config; their migration |
//! | `cache`, `persister` | the sharded write-behind cache and the threads that write it to Whisper |
#![warn(missing_docs)]

mod cache;
mod error;
mod merge;
mod persister;
mod ratelimit;
mod selfmetrics;
mod store;

pub mod aggregator;
pub mod audit;
pub mod config;
pub mod index;
pub mod wal;

pub use error::{Error, Result};
pub use selfmetrics::Counters;
pub use store::{
    DEFAULT_MAX_CACHE_POINTS, DEFAULT_WRITE_MAX_DELAY, DEFAULT_WRITE_QUIET, OpenReport,
    SelfMetricsSource, Store, StoreOptions, WhisperOptions,
};
