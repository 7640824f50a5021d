//! Graphite's Whisper file format, byte-for-byte compatible with whisper.py.
//!
//! Whisper is the fixed-size, round-robin time-series format that carbon writes and
//! graphite-web reads: a small header, then one ring of `(timestamp, value)` slots per archive,
//! finest first. This crate reads and writes it exactly as whisper.py 1.1 does (the same bytes
//! for the same operations, the same fetch results, the same error messages), so it can work
//! on files other Graphite tools write and read.
//!
//! # Main types
//!
//! - [`Whisper`]: an open file. Keeps the file open for many `update_many`/`fetch` calls.
//! - [`OpenOptions`] and [`CreateOptions`]: how to open or create one (locking, fsync, memory
//!   map, sparse or preallocated files, `O_NOATIME`).
//! - [`HeaderCache`]: headers and archive bases shared between opens of the same files, for
//!   writers that open each file for one write.
//! - [`Retention`], [`parse_retention_def`], [`validate_archive_list`]: archive shapes such as
//!   `60s:1d`, with whisper's rules.
//! - [`Header`], [`ArchiveInfo`], [`AggregationMethod`]: what the header says.
//! - [`Series`]: what a fetch returns.
//! - Free functions named after whisper.py's ([`create`], [`info`], [`update`], [`update_many`],
//!   [`fetch`], [`merge`], [`diff`], [`fill`], [`resize`], ...) open the file for one call.
//!
//! # Example
//!
//! ```
//! use whisper::{parse_retention_def, CreateOptions, AggregationMethod};
//! # let dir = tempfile::tempdir()?;
//! # let path = dir.path().join("cpu.wsp");
//! let archives = ["60s:1d", "5m:7d"].map(parse_retention_def).map(Result::unwrap);
//! let mut db = CreateOptions::new()
//!     .aggregation_method(AggregationMethod::Max)
//!     .create(&path, &archives)?;
//!
//! let now = 1_700_000_000;
//! let points: Vec<(i64, f64)> = (0..10).map(|i| (now - 600 + i * 60, i as f64)).collect();
//! db.update_many(&points, now)?;
//!
//! let series = db.fetch(now - 3600, None, now)?.expect("range is inside the file");
//! assert_eq!(series.step, 60);
//! assert_eq!(series.values.iter().flatten().count(), 10);
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
//!
//! # Time
//!
//! Everything that depends on the current time takes a `now` argument, in seconds since the
//! epoch, where whisper.py reads the clock; [`now()`] reads it the way whisper.py does.
#![deny(missing_docs)]

mod aggregation;
mod cache;
mod create;
mod error;
mod format;
mod handle;
mod mmap;
mod pyrepr;
mod pyset;
mod retention;
mod storage;
mod tools;

use std::path::Path;

pub use aggregation::AggregationMethod;
pub use cache::{DEFAULT_HEADER_TTL, HeaderCache, HeaderCacheBuilder, HeaderCacheStats};
pub use create::{Allocation, CreateOptions, create};
pub use error::{ArchiveListError, Corruption, Error, ForeignFormat, Result, RetentionError};
pub use format::{ARCHIVE_INFO_SIZE, ArchiveInfo, Header, METADATA_SIZE, POINT_SIZE};
pub use handle::{OpenOptions, Series, Whisper};
pub use pyrepr::FloatRepr;
pub use retention::{
    Retention, file_size, parse_precision, parse_retention_def, unit_string, validate_archive_list,
};
pub use storage::{FileStorage, MemStorage, Storage};
pub use tools::{
    ArchiveDiff, ResizeEvent, ResizeOptions, diff, diff_files, fill, fill_from, merge, merge_into,
    resize,
};

/// The iteration order of CPython's `set(keys)`, which decides whisper.py's write order.
/// Exported only for the differential tests; not part of the API.
#[doc(hidden)]
pub fn __python_set_order(keys: &[u32]) -> Vec<u32> {
    pyset::PySet::from_keys(keys.iter().copied()).iter().collect()
}

/// The current time as whisper.py takes it: `int(time.time())`.
pub fn now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs() as i64)
}

/// Reads the header of the file at `path` (whisper.py's `info`).
///
/// # Errors
///
/// Open errors, [`Error::Corrupt`], [`Error::Unsupported`].
pub fn info(path: impl AsRef<Path>) -> Result<Header> {
    Ok(OpenOptions::new().open(path)?.header().clone())
}

/// Writes one point into the file at `path` (whisper.py's `update`). See [`Whisper::update`].
///
/// # Errors
///
/// As [`Whisper::update`], plus open errors.
pub fn update(path: impl AsRef<Path>, value: f64, timestamp: Option<i64>, now: i64) -> Result<()> {
    open_once(path, true)?.update(value, timestamp, now)
}

/// Opens a file for a single operation, which then reuses what the open read.
fn open_once(path: impl AsRef<Path>, write: bool) -> Result<Whisper> {
    let mut w = OpenOptions::new().write(write).open(path)?;
    w.first_use_follows_open();
    Ok(w)
}

/// Writes many points into the file at `path` (whisper.py's `update_many`). See
/// [`Whisper::update_many`]. An empty list does nothing, not even open the file.
///
/// # Errors
///
/// As [`Whisper::update_many`], plus open errors.
pub fn update_many(path: impl AsRef<Path>, points: &[(i64, f64)], now: i64) -> Result<()> {
    if points.is_empty() {
        return Ok(());
    }
    open_once(path, true)?.update_many(points, now)
}

/// Reads a range from the file at `path` (whisper.py's `fetch`). See [`Whisper::fetch`].
///
/// # Errors
///
/// As [`Whisper::fetch`], plus open errors.
pub fn fetch(
    path: impl AsRef<Path>,
    from: i64,
    until: Option<i64>,
    now: i64,
) -> Result<Option<Series>> {
    open_once(path, false)?.fetch(from, until, now)
}

/// Changes the aggregation method (and, if given, the xFilesFactor) of the file at `path`;
/// returns the old method (whisper.py's `setAggregationMethod`).
///
/// # Errors
///
/// [`Error::InvalidXFilesFactor`], open and I/O errors.
pub fn set_aggregation_method(
    path: impl AsRef<Path>,
    method: AggregationMethod,
    x_files_factor: Option<f64>,
) -> Result<AggregationMethod> {
    Ok(open_once(path, true)?.set_aggregation(Some(method), x_files_factor)?.0)
}

/// Changes the xFilesFactor of the file at `path`; returns the old one as stored (an `f32`)
/// (whisper.py's `setXFilesFactor`).
///
/// # Errors
///
/// [`Error::InvalidXFilesFactor`], open and I/O errors.
pub fn set_x_files_factor(path: impl AsRef<Path>, x_files_factor: f64) -> Result<f32> {
    Ok(open_once(path, true)?.set_aggregation(None, Some(x_files_factor))?.1)
}
