//! The metric index and the tag index.
//!
//! - [`MetricIndex`]: every metric name, in a sharded trie of interned components, answering
//!   graphite-web's `/metrics/find` globs ([`MetricIndex::find`]) exactly as its
//!   `StandardFinder` does on a Whisper directory. [`MetricIndex::build_from_dir`] loads it
//!   from a data directory with parallel directory walkers.
//! - [`TagIndex`]: the tag database of tagged series (`name;tag=value;...`), answering
//!   `seriesByTag` / `/tags/findSeries` ([`TagIndex::find_series`]) and the other `/tags/*`
//!   endpoints with graphite-web's `LocalDatabaseTagDB` semantics.
//! - [`TagRegistry`]: carbon stores tagged series under the SHA-256 of their name
//!   (`_tagged/e77/640/<sha256>.wsp`), so the names cannot be read back from the directory;
//!   the registry is an append-only file of them, `<data_dir>/_tagged/.registry` (hidden,
//!   so graphite-web's finder skips it), loaded at start.
//! - [`open_data_dir`] does all three for a data directory.
//!
//! ```
//! use store::index::{MetricIndex, TagIndex};
//! # fn main() -> Result<(), store::index::IndexError> {
//! let metrics = MetricIndex::new();
//! metrics.insert("servers.web01.cpu.user");
//! metrics.insert("servers.web02.cpu.user");
//! let found = metrics.find("servers.web0[12].cpu.*")?;
//! assert_eq!(found.len(), 2);
//!
//! let tags = TagIndex::new();
//! tags.insert("disk.used;datacenter=dc1;server=web01")?;
//! tags.insert("disk.used;datacenter=dc2;server=web02")?;
//! assert_eq!(tags.find_series(&["datacenter=dc1"])?, ["disk.used;datacenter=dc1;server=web01"]);
//! # Ok(())
//! # }
//! ```

mod glob;
mod metric;
mod registry;
mod scan;
mod table;
mod tags;
mod trie;

use std::path::PathBuf;

pub use metric::{MetricIndex, Node};
pub use registry::{RegistryLoad, TagRegistry};
pub use scan::{BuildStats, OpenReport, open_data_dir};
pub use tags::{TagIndex, TagInfo, TagValue, TagValues};

/// An index operation that failed.
///
/// The tag-expression errors keep graphite-web's own messages (`/tags/findSeries` answers
/// them to clients as `{"error": "..."}`).
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum IndexError {
    /// A tag expression that is not `tag=spec`, `tag!=spec`, `tag=~regex` or `tag!=~regex`.
    #[error("Invalid tagspec {expr}")]
    InvalidTagExpression {
        /// The expression.
        expr: String,
    },
    /// Every expression of a query also matches series without the tag, which would select
    /// every series.
    #[error("At least one tagspec must not match the empty string")]
    AllExpressionsMatchEmpty,
    /// A regular expression (of a tag expression or a filter) that does not compile, or
    /// uses what the `regex` crate does not support (look-around, back-references).
    #[error("invalid regular expression {pattern:?}: {source}")]
    InvalidRegex {
        /// The expression, as compiled (anchored as graphite-web anchors it).
        pattern: String,
        /// Why it does not compile.
        #[source]
        source: Box<regex::Error>,
    },
    /// A series name that is not a valid tagged (or plain) name.
    #[error("{source}")]
    InvalidSeries {
        /// The name.
        name: String,
        /// carbon's reason.
        #[source]
        source: carbon_proto::tags::TagError,
    },
    /// A find pattern whose brace expansion is too large.
    #[error("pattern {pattern:?} expands to more than {limit} variants in one component")]
    PatternTooComplex {
        /// The pattern.
        pattern: String,
        /// The most variants one component may expand to.
        limit: usize,
    },
    /// A name the tag registry cannot store (it would break its one-name-a-line format).
    #[error("tagged series {name:?} cannot be registered: it contains a line break")]
    UnregistrableName {
        /// The name.
        name: String,
    },
    /// The tag registry was written by an incompatible version.
    #[error("{}: tag registry format {found:?}, this build reads {supported:?}", path.display())]
    RegistryVersion {
        /// The registry file.
        path: PathBuf,
        /// Its header line.
        found: String,
        /// The header this build writes.
        supported: &'static str,
    },
    /// A file or directory operation failed.
    #[error("{}: {source}", path.display())]
    Io {
        /// The file or directory.
        path: PathBuf,
        /// What the operating system said.
        #[source]
        source: std::io::Error,
    },
}

impl IndexError {
    fn io(path: impl Into<PathBuf>, source: std::io::Error) -> IndexError {
        IndexError::Io { path: path.into(), source }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn error_stays_small() {
        assert!(std::mem::size_of::<IndexError>() <= 128);
    }
}
