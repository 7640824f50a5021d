//! The crate's one error type.
//!
//! Where whisper.py raises an exception with a message that scripts and users already know
//! (`InvalidConfiguration`, `TimestampNotCovered`, the retention parser's `ValueError`s, ...),
//! the variant's `Display` reproduces that message word for word, so the command-line tools
//! print what `whisper-*` prints. Errors whisper.py does not have (it crashes, or writes a file it
//! cannot read back) use our own lowercase wording and always carry the path of the file.

use std::fmt;
use std::io;
use std::path::PathBuf;

use crate::pyrepr::FloatRepr;

/// A `Result` with this crate's [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Everything that can go wrong in this crate.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// An operating-system call on a file failed.
    #[error("{}: {source}", path.display())]
    Io {
        /// The file that was being read, written or created.
        path: PathBuf,
        /// What the operating system said.
        #[source]
        source: io::Error,
    },

    /// The file is not a valid whisper file (whisper.py's `CorruptWhisperFile`).
    #[error("corrupt whisper file {}: {problem}", path.display())]
    Corrupt {
        /// The file.
        path: PathBuf,
        /// What is wrong with it.
        problem: Corruption,
    },

    /// The file is in a format derived from whisper that this crate does not read.
    #[error("{}: {format} is not supported", path.display())]
    Unsupported {
        /// The file.
        path: PathBuf,
        /// Which format it is.
        format: ForeignFormat,
    },

    /// An archive list breaks one of whisper's rules (whisper.py's `InvalidConfiguration`).
    #[error(transparent)]
    InvalidArchiveList(#[from] ArchiveListError),

    /// A retention definition such as `60s:1d` could not be parsed.
    #[error(transparent)]
    InvalidRetention(#[from] RetentionError),

    /// An aggregation method name that whisper does not know.
    #[error("Unrecognized aggregation method: {name}")]
    InvalidAggregationMethod {
        /// The name that was given.
        name: String,
    },

    /// An xFilesFactor outside `[0, 1]`, or not a number.
    #[error("Invalid xFilesFactor {}, not between 0 and 1", FloatRepr(*value))]
    InvalidXFilesFactor {
        /// The value that was given.
        value: f64,
    },

    /// `create` was asked to write over an existing file.
    #[error("File {} already exists!", path.display())]
    AlreadyExists {
        /// The existing file.
        path: PathBuf,
    },

    /// `update` got a timestamp in the future or older than the file's retention.
    #[error("Timestamp not covered by any archives in this database.")]
    TimestampNotCovered {
        /// The timestamp that was given.
        timestamp: i64,
    },

    /// A point would have to be stored with a timestamp outside whisper's unsigned 32-bit range.
    ///
    /// whisper.py fails on these half-way through a write (`struct.error`); we refuse the whole
    /// call before writing anything.
    #[error("timestamp {timestamp} cannot be stored: whisper timestamps are unsigned 32-bit")]
    TimestampOutOfRange {
        /// The aligned timestamp that does not fit.
        timestamp: i64,
    },

    /// `fetch` was given a `from` later than its `until`.
    #[error("Invalid time interval: from time '{from}' is after until time '{until}'")]
    InvalidTimeInterval {
        /// Start of the requested range.
        from: i64,
        /// End of the requested range.
        until: i64,
    },

    /// `fetch` was asked for an archive precision the file does not have.
    #[error("Invalid granularity: {seconds_per_point}")]
    InvalidGranularity {
        /// The requested seconds per point.
        seconds_per_point: u32,
    },

    /// A forced-archive fetch of a never-written archive would return more values than we
    /// allocate for one fetch (whisper.py would try, and run out of memory on hostile files).
    #[error("fetch of {values} values refused: more than {limit} in one call")]
    RangeTooLong {
        /// How many values the range covers.
        values: u64,
        /// The most one fetch returns.
        limit: u64,
    },

    /// `merge` or `diff` was given two files whose archive lists differ.
    #[error(
        "{} and {} archive configurations are unalike. Resize the input before {operation}",
        from.display(),
        to.display()
    )]
    ArchivesUnalike {
        /// The first file.
        from: PathBuf,
        /// The second file.
        to: PathBuf,
        /// `merging` or `diffing`, as in whisper.py's message.
        operation: &'static str,
    },

    /// `merge` was given an end before its start.
    #[error("time_to must be >= time_from")]
    InvalidMergeRange {
        /// Start of the range.
        from: i64,
        /// End of the range.
        to: i64,
    },
}

impl Error {
    /// Wraps an I/O error with the path it happened on.
    ///
    /// A read that ran past the end of the file means the file is shorter than its header
    /// says (it was truncated while we had it open), so that becomes [`Error::Corrupt`].
    pub(crate) fn io(path: impl Into<PathBuf>, source: io::Error) -> Error {
        let path = path.into();
        if source.kind() == io::ErrorKind::UnexpectedEof {
            return Error::Corrupt { path, problem: Corruption::Truncated };
        }
        Error::Io { path, source }
    }

    /// The path of the file the error is about, when there is one.
    pub fn path(&self) -> Option<&std::path::Path> {
        match self {
            Error::Io { path, .. }
            | Error::Corrupt { path, .. }
            | Error::Unsupported { path, .. }
            | Error::AlreadyExists { path } => Some(path),
            Error::ArchivesUnalike { from, .. } => Some(from),
            _ => None,
        }
    }
}

/// What is wrong with a corrupt whisper file.
#[derive(Clone, Debug, PartialEq)]
#[non_exhaustive]
pub enum Corruption {
    /// The file is shorter than the 16-byte metadata block.
    ShortHeader {
        /// The file's length in bytes.
        len: u64,
    },
    /// The aggregation type code is not one of whisper's 1 to 8.
    UnknownAggregation {
        /// The code found at byte 0.
        code: u32,
    },
    /// The xFilesFactor is outside `[0, 1]` or NaN.
    XFilesFactorOutOfRange {
        /// The value found at byte 8.
        value: f32,
    },
    /// The header says the file has no archives.
    NoArchives,
    /// The archive list runs past the end of the file.
    ArchiveListTruncated {
        /// How many archives the header claims.
        count: u32,
        /// The file's length in bytes.
        len: u64,
    },
    /// An archive has zero seconds per point or zero points.
    EmptyArchive {
        /// The archive's index in the header.
        index: usize,
        /// Which field is zero.
        field: &'static str,
    },
    /// An archive's data starts inside the header.
    ArchiveInsideHeader {
        /// The archive's index in the header.
        index: usize,
        /// Its offset.
        offset: u32,
        /// Where the header ends.
        header_len: u64,
    },
    /// An archive's data runs past the end of the file.
    ArchivePastEnd {
        /// The archive's index in the header.
        index: usize,
        /// Its first byte.
        offset: u32,
        /// One past its last byte.
        end: u64,
        /// The file's length in bytes.
        len: u64,
    },
    /// The header's `maxRetention` is longer than any archive's retention.
    MaxRetentionTooLong {
        /// The `maxRetention` field.
        max_retention: u32,
        /// The longest retention of any archive.
        longest: u64,
    },
    /// Two archives share bytes.
    ArchivesOverlap {
        /// The earlier archive's index in the header.
        first: usize,
        /// The later archive's index in the header.
        second: usize,
    },
    /// The file became shorter than its header says while it was being read.
    Truncated,
}

impl fmt::Display for Corruption {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Corruption::ShortHeader { len } => {
                write!(f, "unable to read header: the file is {len} bytes, the header needs 16")
            }
            Corruption::UnknownAggregation { code } => {
                write!(f, "unable to read header: unknown aggregation type {code}")
            }
            Corruption::XFilesFactorOutOfRange { value } => write!(
                f,
                "unable to read header: xFilesFactor {} is not between 0 and 1",
                FloatRepr(f64::from(*value))
            ),
            Corruption::NoArchives => write!(f, "unable to read header: it lists no archives"),
            Corruption::ArchiveListTruncated { count, len } => write!(
                f,
                "unable to read archive metadata: {count} archives do not fit in a {len}-byte file"
            ),
            Corruption::EmptyArchive { index, field } => {
                write!(f, "archive {index} has 0 {field}")
            }
            Corruption::ArchiveInsideHeader { index, offset, header_len } => write!(
                f,
                "archive {index} starts at byte {offset}, inside the {header_len}-byte header"
            ),
            Corruption::ArchivePastEnd { index, offset, end, len } => write!(
                f,
                "archive {index} (bytes {offset}..{end}) runs past the end of the file ({len} bytes)"
            ),
            Corruption::MaxRetentionTooLong { max_retention, longest } => write!(
                f,
                "maxRetention {max_retention} is longer than the longest archive ({longest} seconds)"
            ),
            Corruption::ArchivesOverlap { first, second } => {
                write!(f, "archives {first} and {second} overlap")
            }
            Corruption::Truncated => write!(f, "the file is shorter than its header says"),
        }
    }
}

/// Formats derived from whisper that are recognised but not read.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum ForeignFormat {
    /// go-whisper's compressed format ("cwhisper"), which starts with `whisper_compressed`.
    ///
    /// Its aggregation codes 6, 7 and 8 mean `first`, `mix` and `percentile`, not whisper.py's
    /// `avg_zero`, `absmax` and `absmin`, so reading it as a whisper file would misread it.
    GoWhisperCompressed {
        /// The format version byte that follows the magic string.
        version: u8,
        /// The aggregation code in its header, as go-whisper names it.
        aggregation: &'static str,
    },
}

impl fmt::Display for ForeignFormat {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ForeignFormat::GoWhisperCompressed { version, aggregation } => write!(
                f,
                "go-whisper's compressed format (version {version}, aggregation {aggregation})"
            ),
        }
    }
}

/// A retention definition that whisper's parser rejects, with whisper.py's message.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum RetentionError {
    /// No `:` in the definition.
    #[error("Invalid retention definition '{0}'")]
    Definition(String),
    /// The part before the `:` is neither digits nor digits and a unit.
    #[error("Invalid precision specification '{0}'")]
    Precision(String),
    /// The part after the `:` is neither digits nor digits and a unit.
    #[error("Invalid retention specification '{0}'")]
    Points(String),
    /// A unit that is not a prefix of seconds, minutes, hours, days, weeks or years.
    #[error("Invalid unit '{0}'")]
    Unit(String),
    /// A precision of zero, which whisper.py divides by (and crashes on).
    #[error("Invalid precision specification '{0}': seconds per point must be at least 1")]
    ZeroPrecision(String),
    /// A number too large for whisper's 32-bit header fields.
    #[error("retention definition '{0}' does not fit whisper's 32-bit header fields")]
    TooLarge(String),
}

/// An archive list that breaks whisper's rules, with whisper.py's `InvalidConfiguration` text.
///
/// Archives print as whisper.py prints them: a retention as the tuple `(60, 1440)`.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ArchiveListError {
    /// The list is empty.
    #[error("You must specify at least one archive configuration!")]
    Empty,
    /// Two archives have the same seconds per point.
    #[error(
        "A Whisper database may not be configured having two archives with the same precision \
         (archive{index}: ({}, {}), archive{}: ({}, {}))",
        first.0, first.1, index + 1, second.0, second.1
    )]
    DuplicatePrecision {
        /// Index (after sorting) of the first of the two.
        index: usize,
        /// `(seconds per point, points)` of the first.
        first: (u32, u32),
        /// `(seconds per point, points)` of the second.
        second: (u32, u32),
    },
    /// A coarser precision is not a multiple of the finer one.
    #[error(
        "Higher precision archives' precision must evenly divide all lower precision archives' \
         precision (archive{index}: {higher}, archive{}: {lower})",
        index + 1
    )]
    UnevenPrecision {
        /// Index (after sorting) of the finer archive.
        index: usize,
        /// Seconds per point of the finer archive.
        higher: u32,
        /// Seconds per point of the coarser archive.
        lower: u32,
    },
    /// A coarser archive does not reach further back than the finer one.
    #[error(
        "Lower precision archives must cover larger time intervals than higher precision \
         archives (archive{index}: {higher} seconds, archive{}: {lower} seconds)",
        index + 1
    )]
    ShorterRetention {
        /// Index (after sorting) of the finer archive.
        index: usize,
        /// Retention in seconds of the finer archive.
        higher: u64,
        /// Retention in seconds of the coarser archive.
        lower: u64,
    },
    /// An archive has fewer points than one point of the next archive consolidates.
    #[error(
        "Each archive must have at least enough points to consolidate to the next archive \
         (archive{} consolidates {per_point} of archive{index}'s points but it has only \
         {points} total points)",
        index + 1
    )]
    TooFewPoints {
        /// Index (after sorting) of the finer archive.
        index: usize,
        /// How many of its points one point of the next archive covers.
        per_point: u32,
        /// How many points it has.
        points: u32,
    },
    /// An archive with zero seconds per point or zero points (whisper.py divides by zero).
    #[error("archive{index}: ({}, {}) must have at least 1 second per point and 1 point", archive.0, archive.1)]
    ZeroField {
        /// Index (after sorting) of the archive.
        index: usize,
        /// `(seconds per point, points)`.
        archive: (u32, u32),
    },
    /// The file would not fit whisper's 32-bit offsets and retention fields.
    #[error("the archives need {bytes} bytes, more than whisper's 32-bit offsets can address")]
    TooLarge {
        /// The size the file would have.
        bytes: u64,
    },
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn error_stays_small() {
        assert!(std::mem::size_of::<Error>() <= 128, "{}", std::mem::size_of::<Error>());
    }

    #[test]
    fn archive_list_messages_match_whisper_py() {
        let e =
            ArchiveListError::DuplicatePrecision { index: 0, first: (60, 10), second: (60, 20) };
        assert_eq!(
            e.to_string(),
            "A Whisper database may not be configured having two archives with the same \
             precision (archive0: (60, 10), archive1: (60, 20))"
        );
        let e = ArchiveListError::TooFewPoints { index: 0, per_point: 5, points: 4 };
        assert_eq!(
            e.to_string(),
            "Each archive must have at least enough points to consolidate to the next archive \
             (archive1 consolidates 5 of archive0's points but it has only 4 total points)"
        );
    }

    #[test]
    fn xff_message_uses_python_float_repr() {
        let e = Error::InvalidXFilesFactor { value: 2.0 };
        assert_eq!(e.to_string(), "Invalid xFilesFactor 2.0, not between 0 and 1");
    }
}
