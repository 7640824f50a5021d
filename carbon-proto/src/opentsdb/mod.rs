//! OpenTSDB's telnet-style protocol (port 4242): `put <metric> <timestamp> <value>
//! <tagk=tagv> [...]` lines, mapped to Graphite tagged series, and the other commands a client
//! may send.
//!
//! A line is read as OpenTSDB 2.4 reads it (`PutDataPointRpc.importDataPoint`,
//! `TSDB.addPoint`, `IncomingDataPoints.checkMetricAndTags`, `Tags`): split on single spaces
//! (two spaces make an empty word; empty tag words are skipped), at least four words after
//! `put`, then, in OpenTSDB's order:
//!
//! | check | OpenTSDB | error |
//! |---|---|---|
//! | the timestamp | its own `parseLong` after removing every `.` (so `1364410924.250` is 1364410924250 ms); it must be > 0 | [`OpenTsdbError::InvalidTimestamp`], [`OpenTsdbError::NonPositiveTimestamp`] |
//! | tags | `k=v`, both non-empty, one `=`; the same tag twice with another value is refused, with the same value ignored | [`OpenTsdbError::InvalidTag`], [`OpenTsdbError::DuplicateTag`] |
//! | the value | without `.`, `e` or `E`: an `i64` (`parseLong`); else Java's `Double.parseDouble` (`1.5`, `1e3`, `2.5f`, `0x1.8p1`); NaN and infinities are refused | [`OpenTsdbError::InvalidValue`], [`OpenTsdbError::NonFiniteValue`] |
//! | seconds or milliseconds | a timestamp that needs more than 32 bits (> 4294967295) is in milliseconds, and may not exceed 9999999999999 | [`OpenTsdbError::BadTimestamp`] |
//! | tags again | at least one, at most 8 (`tsd.storage.max_tags`) | [`OpenTsdbError::NoTags`], [`OpenTsdbError::TooManyTags`] |
//! | characters | metric, tag names and values: `a-z A-Z 0-9 - _ . /` and Unicode letters | [`OpenTsdbError::IllegalCharacter`] |
//!
//! A good line becomes a [`Put`] whose Graphite name is `metric;tagk=tagv;...` normalised as
//! carbon does (tags sorted). Then two Graphite rules apply, which OpenTSDB does not have:
//!
//! - **`/` in the metric** (allowed by OpenTSDB) would make directories on disk: such a line
//!   is refused with [`OpenTsdbError::Name`], as are metrics with an empty dot-separated
//!   component (`a..b`). Mapping `/` to another character would silently merge series
//!   (`a/b` and `a-b`), so we refuse instead. `/` in tag names and values is fine: tagged
//!   series are stored under a hash.
//! - **A tag named `name`** is refused ([`OpenTsdbError::ReservedTag`]): in Graphite `name`
//!   is the metric itself, and carbon's normalisation would drop the tag and merge series.
//!
//! Timestamps in milliseconds become fractional seconds (`1364410924250` is `1364410924.25`),
//! which carbon keeps and Whisper truncates.
//!
//! Other decisions:
//!
//! - **Lines without `put`**: tcollector's collectors print `metric timestamp value tags` and
//!   tcollector adds `put ` before sending, so OpenTSDB answers `unknown command` to a line
//!   without it, and so does [`parse_line`]. [`parse_put`] reads such a collector line on
//!   its own (the words after `put`).
//! - **Other commands** (`version`, `stats`, `help`, `exit`, `diediedie`...) come back as a
//!   [`Command`] for the server to answer or ignore; an unknown word is
//!   [`OpenTsdbError::UnknownCommand`]. As in OpenTSDB, commands are case-sensitive.
//! - **Text**: OpenTSDB decodes telnet lines as ISO-8859-1, so UTF-8 letters arrive as two
//!   characters and are mostly refused, while its HTTP API accepts Unicode letters. We decode
//!   UTF-8 (a line that is not is [`OpenTsdbError::NotUtf8`]) and accept letters as Rust's
//!   `char::is_alphabetic` sees them (Java's `Character.isLetter`, plus letter numbers such as
//!   `Ⅻ` and a few combining marks).
//! - Lines longer than [`MAX_LINE_BYTES`] are refused ([`OpenTsdbError::TooLong`]), as
//!   OpenTSDB's frame decoder refuses them.
#![warn(clippy::indexing_slicing)]

mod java;

use std::fmt::Write as _;

use bytes::BytesMut;

use crate::framing::{Framed, LineFramer};
use crate::metric::{MetricName, NameError, Point};
use crate::statsd::tagged::tagged_name;

/// Longest line OpenTSDB's telnet frame decoder accepts, without its `\n`.
pub const MAX_LINE_BYTES: usize = 1024;

/// OpenTSDB's default limit on tags per data point (`tsd.storage.max_tags`).
pub const DEFAULT_MAX_TAGS: usize = 8;

/// Largest millisecond timestamp OpenTSDB accepts.
const MAX_MILLIS: i64 = 9_999_999_999_999;

/// Why a number did not parse (Java's `NumberFormatException`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum NumberError {
    /// Nothing to parse.
    Empty,
    /// A sign and nothing else.
    JustSign,
    /// More than 19 digits.
    TooLong,
    /// A character that is not a digit.
    InvalidCharacter(char),
    /// Outside the range of an `i64`.
    Overflow,
    /// Not a floating-point number Java can read.
    NotANumber,
}

impl std::fmt::Display for NumberError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            NumberError::Empty => f.write_str("empty string"),
            NumberError::JustSign => f.write_str("just a sign, no value"),
            NumberError::TooLong => f.write_str("too long"),
            NumberError::InvalidCharacter(c) => write!(f, "invalid character {c:?}"),
            NumberError::Overflow => f.write_str("overflow"),
            NumberError::NotANumber => f.write_str("not a number"),
        }
    }
}

impl NumberError {
    /// The `NumberFormatException` message OpenTSDB would report for `text`.
    fn java_message(self, text: &str, floating: bool) -> String {
        match self {
            NumberError::Empty if floating => "empty String".to_string(),
            NumberError::Empty => "Empty string".to_string(),
            NumberError::JustSign => format!("Just a sign, no value: {text}"),
            NumberError::TooLong => format!("Value too long: {text}"),
            NumberError::InvalidCharacter(c) => format!("Invalid character '{c}' in {text}"),
            NumberError::Overflow => format!("Overflow in {text}"),
            NumberError::NotANumber => format!("For input string: \"{}\"", text.trim()),
        }
    }
}

/// What a name check was about (OpenTSDB's `validateString` subject).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NameKind {
    /// The metric.
    MetricName,
    /// A tag's name.
    TagName,
    /// A tag's value.
    TagValue,
}

impl std::fmt::Display for NameKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            NameKind::MetricName => "metric name",
            NameKind::TagName => "tag name",
            NameKind::TagValue => "tag value",
        })
    }
}

/// A line OpenTSDB (or Graphite) refuses, with what was wrong.
/// [`telnet_reply`](OpenTsdbError::telnet_reply) gives OpenTSDB's own answer.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum OpenTsdbError {
    /// The line is not UTF-8.
    #[error("line is not utf-8 (invalid byte at {at})")]
    NotUtf8 {
        /// Offset of the first invalid byte.
        at: usize,
    },
    /// The line is longer than the limit.
    #[error("line longer than {max} bytes")]
    TooLong {
        /// The limit.
        max: usize,
    },
    /// The first word is not a command.
    #[error("unknown command: {command:?}")]
    UnknownCommand {
        /// The first word.
        command: String,
    },
    /// Fewer than four words after `put`.
    #[error("not enough arguments (need at least 4, got {got})")]
    NotEnoughArguments {
        /// How many words there were.
        got: usize,
    },
    /// The metric word is empty (two spaces after `put`).
    #[error("empty metric name")]
    EmptyMetric,
    /// The timestamp is not an integer.
    #[error("invalid timestamp {text:?}: {reason}")]
    InvalidTimestamp {
        /// The timestamp as sent.
        text: String,
        /// Why it did not parse.
        reason: NumberError,
    },
    /// The timestamp is zero or negative.
    #[error("invalid timestamp: {timestamp}")]
    NonPositiveTimestamp {
        /// The timestamp.
        timestamp: i64,
    },
    /// A millisecond timestamp past 9999999999999.
    #[error("bad timestamp: {timestamp} (over 13 digits of milliseconds)")]
    BadTimestamp {
        /// The timestamp.
        timestamp: i64,
    },
    /// The value word is empty.
    #[error("empty value")]
    EmptyValue,
    /// A tag that is not `name=value` with both parts non-empty and a single `=`.
    #[error("invalid tag: {tag}")]
    InvalidTag {
        /// The tag as sent.
        tag: String,
    },
    /// The same tag twice with different values.
    #[error("duplicate tag: {tag} (already {previous:?})")]
    DuplicateTag {
        /// The second tag as sent.
        tag: String,
        /// The value it had already.
        previous: String,
    },
    /// The value is not a number.
    #[error("invalid value {text:?}: {reason}")]
    InvalidValue {
        /// The value as sent.
        text: String,
        /// Why it did not parse.
        reason: NumberError,
    },
    /// The value is NaN or infinite.
    #[error("value is nan or infinite: {value}")]
    NonFiniteValue {
        /// The value as sent.
        value: String,
        /// The metric.
        metric: String,
        /// The timestamp.
        timestamp: i64,
    },
    /// No tag at all.
    #[error("need at least one tag (metric={metric})")]
    NoTags {
        /// The metric.
        metric: String,
    },
    /// More tags than the limit.
    #[error("too many tags: {count} maximum allowed: {max}")]
    TooManyTags {
        /// How many tags there were.
        count: usize,
        /// The limit.
        max: usize,
    },
    /// A character OpenTSDB does not allow in a metric, tag name or tag value.
    #[error("invalid {what} ({text:?}): illegal character: {character}")]
    IllegalCharacter {
        /// Which kind of name.
        what: NameKind,
        /// The name.
        text: String,
        /// The first illegal character.
        character: char,
    },
    /// A tag named `name`, which Graphite reserves for the metric.
    #[error("tag {tag:?} is reserved: graphite uses it for the metric name")]
    ReservedTag {
        /// The tag as sent.
        tag: String,
    },
    /// A metric Graphite cannot store (`/` in it, an empty dot-separated component).
    #[error("metric {name:?} cannot be stored: {error}")]
    Name {
        /// The tagged name.
        name: String,
        /// Why.
        error: NameError,
    },
}

impl OpenTsdbError {
    /// What OpenTSDB 2.4 writes back on the telnet connection for this error, with its
    /// newline (`put: illegal argument: ...`, `put: invalid value: ...`, `unknown command:
    /// ... Try `help'.`). OpenTSDB appends its tag map to `duplicate tag`, `bad timestamp` and
    /// `Too many tags`; that part is left out. The errors OpenTSDB does not have are answered
    /// as illegal arguments with our message.
    pub fn telnet_reply(&self) -> String {
        let illegal = |msg: &dyn std::fmt::Display| format!("put: illegal argument: {msg}\n");
        match self {
            OpenTsdbError::UnknownCommand { command } => {
                format!("unknown command: {command}.  Try `help'.\n")
            }
            OpenTsdbError::NotEnoughArguments { got } => {
                illegal(&format_args!("not enough arguments (need least 4, got {got})"))
            }
            OpenTsdbError::InvalidTimestamp { text, reason } => {
                let digits = text.replace('.', "");
                format!("put: invalid value: {}\n", reason.java_message(&digits, false))
            }
            OpenTsdbError::NonPositiveTimestamp { timestamp } => {
                illegal(&format_args!("invalid timestamp: {timestamp}"))
            }
            OpenTsdbError::BadTimestamp { timestamp } => {
                illegal(&format_args!("bad timestamp={timestamp}"))
            }
            OpenTsdbError::DuplicateTag { tag, .. } => {
                illegal(&format_args!("duplicate tag: {tag}"))
            }
            OpenTsdbError::InvalidValue { text, reason } => {
                let floating = !looks_like_integer(text);
                format!("put: invalid value: {}\n", reason.java_message(text, floating))
            }
            OpenTsdbError::NonFiniteValue { value, metric, timestamp } => {
                let java = match java::parse_double(value) {
                    Ok(v) if v.is_nan() => "NaN",
                    Ok(v) if v < 0.0 => "-Infinity",
                    _ => "Infinity",
                };
                illegal(&format_args!(
                    "value is NaN or Infinite: {java} for metric={metric} timestamp={timestamp}"
                ))
            }
            OpenTsdbError::NoTags { metric } => {
                illegal(&format_args!("Need at least one tag (metric={metric}, tags={{}})"))
            }
            OpenTsdbError::TooManyTags { count, max } => {
                illegal(&format_args!("Too many tags: {count} maximum allowed: {max}"))
            }
            OpenTsdbError::IllegalCharacter { what, text, character } => illegal(&format_args!(
                "Invalid {what} (\"{text}\"): illegal character: {character}"
            )),
            OpenTsdbError::NotUtf8 { .. } | OpenTsdbError::TooLong { .. } => format!("{self}\n"),
            other => illegal(other),
        }
    }

    /// The OpenTSDB counter this error increments (`rpc.errors type=...`), or `None` for
    /// errors OpenTSDB does not have a counter for (an unknown command, an unreadable line).
    pub fn counter(&self) -> Option<&'static str> {
        match self {
            OpenTsdbError::InvalidTimestamp { .. } | OpenTsdbError::InvalidValue { .. } => {
                Some("invalid_values")
            }
            OpenTsdbError::UnknownCommand { .. }
            | OpenTsdbError::NotUtf8 { .. }
            | OpenTsdbError::TooLong { .. } => None,
            _ => Some("illegal_arguments"),
        }
    }
}

/// A telnet command other than `put`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Command {
    /// `rollup`: a pre-aggregated data point (OpenTSDB 2.4); not decoded here.
    Rollup,
    /// `histogram`: a histogram data point (OpenTSDB 2.4); not decoded here.
    Histogram,
    /// `stats`: the server's own statistics.
    Stats,
    /// `dropcaches`: drop the UID caches.
    DropCaches,
    /// `version`: the build information.
    Version,
    /// `status`: `startup`, `ok`, `partial`, `error` or `shutting-down`.
    Status,
    /// `exit`: close this connection.
    Exit,
    /// `help`: list the commands.
    Help,
    /// `diediedie`: shut the server down (unless `tsd.no_diediedie`).
    DieDieDie,
}

impl Command {
    /// Every command, in OpenTSDB's registration order (for `help`).
    pub const ALL: [Command; 9] = [
        Command::Stats,
        Command::DropCaches,
        Command::Version,
        Command::Status,
        Command::Exit,
        Command::Help,
        Command::Rollup,
        Command::Histogram,
        Command::DieDieDie,
    ];

    /// The command word.
    pub fn name(self) -> &'static str {
        match self {
            Command::Rollup => "rollup",
            Command::Histogram => "histogram",
            Command::Stats => "stats",
            Command::DropCaches => "dropcaches",
            Command::Version => "version",
            Command::Status => "status",
            Command::Exit => "exit",
            Command::Help => "help",
            Command::DieDieDie => "diediedie",
        }
    }

    fn from_word(word: &str) -> Option<Command> {
        Command::ALL.into_iter().find(|c| c.name() == word)
    }
}

/// One decoded line.
#[derive(Debug, Clone, PartialEq)]
pub enum Request<'a> {
    /// A `put` line.
    Put(Put<'a>),
    /// Another command.
    Command(Command),
}

/// A data point's timestamp as OpenTSDB accepts it: seconds up to 4294967295, milliseconds
/// above (up to 9999999999999).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Timestamp(i64);

impl Timestamp {
    /// Checks `raw` as OpenTSDB does.
    ///
    /// ```
    /// use carbon_proto::opentsdb::Timestamp;
    /// assert_eq!(Timestamp::new(1356998400).unwrap().as_secs_f64(), 1356998400.0);
    /// assert_eq!(Timestamp::new(1364410924250).unwrap().as_secs_f64(), 1364410924.25);
    /// assert!(Timestamp::new(0).is_err());
    /// assert!(Timestamp::new(99999999999999).is_err());
    /// ```
    ///
    /// # Errors
    ///
    /// [`OpenTsdbError::NonPositiveTimestamp`] or [`OpenTsdbError::BadTimestamp`].
    pub fn new(raw: i64) -> Result<Timestamp, OpenTsdbError> {
        if raw <= 0 {
            return Err(OpenTsdbError::NonPositiveTimestamp { timestamp: raw });
        }
        if raw > MAX_MILLIS {
            return Err(OpenTsdbError::BadTimestamp { timestamp: raw });
        }
        Ok(Timestamp(raw))
    }

    /// The number as sent.
    pub fn raw(self) -> i64 {
        self.0
    }

    /// Whether OpenTSDB reads it as milliseconds (it does not fit in 32 bits).
    pub fn is_milliseconds(self) -> bool {
        self.0 > i64::from(u32::MAX)
    }

    /// Seconds since the epoch, fractional for milliseconds.
    pub fn as_secs_f64(self) -> f64 {
        if self.is_milliseconds() {
            // Both are exact in an f64; the division rounds once.
            self.0 as f64 / 1000.0
        } else {
            self.0 as f64
        }
    }
}

/// A data point's value: OpenTSDB stores integers and floating-point values apart.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Value {
    /// Sent without `.`, `e` or `E`.
    Integer(i64),
    /// Sent with `.`, `e` or `E`; always finite.
    Float(f64),
}

impl Value {
    /// The value as a float (integers past 2^53 are rounded).
    pub fn as_f64(self) -> f64 {
        match self {
            Value::Integer(i) => i as f64,
            Value::Float(f) => f,
        }
    }
}

/// A good `put` line: its parts (borrowed from the line) and its Graphite name.
#[derive(Debug, Clone, PartialEq)]
pub struct Put<'a> {
    metric: &'a str,
    tags: Vec<(&'a str, &'a str)>,
    timestamp: Timestamp,
    value: Value,
    name: MetricName,
}

impl<'a> Put<'a> {
    /// Builds a data point to send, with the checks [`parse_line`] applies (at most
    /// [`DEFAULT_MAX_TAGS`] tags). A tag given twice with the same value counts once.
    ///
    /// ```
    /// use carbon_proto::opentsdb::{Put, Timestamp, Value};
    /// let put = Put::new("sys.cpu.user", Timestamp::new(1356998400)?, Value::Float(42.5),
    ///                    &[("host", "webserver01"), ("cpu", "0")])?;
    /// assert_eq!(put.name().as_str(), "sys.cpu.user;cpu=0;host=webserver01");
    /// let mut line = Vec::new();
    /// put.encode(&mut line);
    /// assert_eq!(line, b"put sys.cpu.user 1356998400 42.5 host=webserver01 cpu=0\n");
    /// # Ok::<(), carbon_proto::opentsdb::OpenTsdbError>(())
    /// ```
    ///
    /// # Errors
    ///
    /// The first [`OpenTsdbError`] that applies.
    pub fn new(
        metric: &'a str,
        timestamp: Timestamp,
        value: Value,
        tags: &[(&'a str, &'a str)],
    ) -> Result<Put<'a>, OpenTsdbError> {
        if metric.is_empty() {
            return Err(OpenTsdbError::EmptyMetric);
        }
        let mut kept: Vec<(&'a str, &'a str)> = Vec::with_capacity(tags.len());
        for &(k, v) in tags {
            if k.is_empty() || v.is_empty() || v.contains('=') || k.contains('=') {
                return Err(OpenTsdbError::InvalidTag { tag: format!("{k}={v}") });
            }
            add_tag(&mut kept, k, v)?;
        }
        if let Value::Float(f) = value
            && !f.is_finite()
        {
            return Err(OpenTsdbError::NonFiniteValue {
                value: format!("{f}"),
                metric: metric.to_string(),
                timestamp: timestamp.raw(),
            });
        }
        finish(metric, timestamp, value, kept, DEFAULT_MAX_TAGS)
    }

    /// The metric as sent.
    pub fn metric(&self) -> &'a str {
        self.metric
    }

    /// The tags as sent, in order, without repeats.
    pub fn tags(&self) -> &[(&'a str, &'a str)] {
        &self.tags
    }

    /// The timestamp.
    pub fn timestamp(&self) -> Timestamp {
        self.timestamp
    }

    /// The value.
    pub fn value(&self) -> Value {
        self.value
    }

    /// The Graphite name: `metric;tag=value;...`, normalised.
    pub fn name(&self) -> &MetricName {
        &self.name
    }

    /// The Graphite point (the name is shared, not copied).
    pub fn to_point(&self) -> Point {
        Point::new(self.name.clone(), self.timestamp.as_secs_f64(), self.value.as_f64())
    }

    /// Appends the `put` line that [`parse_line`] reads back as this data point: the
    /// timestamp as given, an integer value as digits, a float with a `.` or an exponent.
    pub fn encode(&self, out: &mut Vec<u8>) {
        let mut s = String::with_capacity(64);
        let _ = write!(s, "put {} {} ", self.metric, self.timestamp.raw());
        match self.value {
            Value::Integer(i) => {
                let _ = write!(s, "{i}");
            }
            // Rust's `{:?}` always writes `.0` or an exponent, so OpenTSDB reads a float back.
            Value::Float(f) => {
                let _ = write!(s, "{f:?}");
            }
        }
        for (k, v) in &self.tags {
            let _ = write!(s, " {k}={v}");
        }
        s.push('\n');
        out.extend_from_slice(s.as_bytes());
    }
}

/// Parses one telnet line (without its `\n`; a trailing `\r` is ignored) with OpenTSDB's
/// default limit of [`DEFAULT_MAX_TAGS`] tags.
///
/// ```
/// use carbon_proto::opentsdb::{parse_line, Command, Request};
/// let Request::Put(put) = parse_line(b"put sys.cpu.user 1356998400 42.5 host=webserver01 cpu=0")? else {
///     unreachable!()
/// };
/// let point = put.to_point();
/// assert_eq!(point.name.as_str(), "sys.cpu.user;cpu=0;host=webserver01");
/// assert_eq!((point.datapoint.timestamp, point.datapoint.value), (1356998400.0, 42.5));
/// assert_eq!(parse_line(b"version")?, Request::Command(Command::Version));
/// let err = parse_line(b"put sys.cpu.user 1356998400 42").unwrap_err();
/// assert_eq!(err.telnet_reply(), "put: illegal argument: not enough arguments (need least 4, got 3)\n");
/// # Ok::<(), carbon_proto::opentsdb::OpenTsdbError>(())
/// ```
///
/// # Errors
///
/// The first [`OpenTsdbError`] that applies, in OpenTSDB's order of checks.
pub fn parse_line(line: &[u8]) -> Result<Request<'_>, OpenTsdbError> {
    parse_line_with_max_tags(line, DEFAULT_MAX_TAGS)
}

/// [`parse_line`] with another limit on the number of tags (OpenTSDB's
/// `tsd.storage.max_tags`).
///
/// # Errors
///
/// As [`parse_line`].
pub fn parse_line_with_max_tags(
    line: &[u8],
    max_tags: usize,
) -> Result<Request<'_>, OpenTsdbError> {
    let line = line.strip_suffix(b"\r").unwrap_or(line);
    if line.len() > MAX_LINE_BYTES {
        return Err(OpenTsdbError::TooLong { max: MAX_LINE_BYTES });
    }
    let text =
        std::str::from_utf8(line).map_err(|e| OpenTsdbError::NotUtf8 { at: e.valid_up_to() })?;
    let (command, args) = match text.split_once(' ') {
        Some((c, a)) => (c, Some(a)),
        None => (text, None),
    };
    if command == "put" {
        return put_words(args, max_tags).map(Request::Put);
    }
    Command::from_word(command)
        .map(Request::Command)
        .ok_or_else(|| OpenTsdbError::UnknownCommand { command: command.to_string() })
}

/// Parses the words after `put` (`metric timestamp value tag=v ...`): a tcollector
/// collector's output line, before tcollector adds `put `.
///
/// ```
/// use carbon_proto::opentsdb::parse_put;
/// let put = parse_put(b"proc.loadavg.1min 1700000000 0.36 host=web01")?;
/// assert_eq!(put.name().as_str(), "proc.loadavg.1min;host=web01");
/// # Ok::<(), carbon_proto::opentsdb::OpenTsdbError>(())
/// ```
///
/// # Errors
///
/// As [`parse_line`].
pub fn parse_put(args: &[u8]) -> Result<Put<'_>, OpenTsdbError> {
    let args = args.strip_suffix(b"\r").unwrap_or(args);
    if args.len() > MAX_LINE_BYTES {
        return Err(OpenTsdbError::TooLong { max: MAX_LINE_BYTES });
    }
    let text =
        std::str::from_utf8(args).map_err(|e| OpenTsdbError::NotUtf8 { at: e.valid_up_to() })?;
    put_words(Some(text), DEFAULT_MAX_TAGS)
}

/// OpenTSDB's `importDataPoint`, on the words after `put` (`None`: there were none).
fn put_words(args: Option<&str>, max_tags: usize) -> Result<Put<'_>, OpenTsdbError> {
    let got = args.map_or(0, |a| memchr::memchr_iter(b' ', a.as_bytes()).count() + 1);
    if got < 4 {
        return Err(OpenTsdbError::NotEnoughArguments { got });
    }
    let mut words = args.unwrap_or_default().split(' ');
    let metric = words.next().unwrap_or_default();
    let ts_text = words.next().unwrap_or_default();
    let value_text = words.next().unwrap_or_default();
    if metric.is_empty() {
        return Err(OpenTsdbError::EmptyMetric);
    }
    let raw_ts = if ts_text.contains('.') {
        java::parse_long(&ts_text.replace('.', ""))
    } else {
        java::parse_long(ts_text)
    }
    .map_err(|reason| OpenTsdbError::InvalidTimestamp { text: ts_text.to_string(), reason })?;
    if raw_ts <= 0 {
        return Err(OpenTsdbError::NonPositiveTimestamp { timestamp: raw_ts });
    }
    if value_text.is_empty() {
        return Err(OpenTsdbError::EmptyValue);
    }
    let mut tags: Vec<(&str, &str)> = Vec::with_capacity(4);
    for word in words.filter(|w| !w.is_empty()) {
        let mut kv = word.split('=');
        let (Some(k), Some(v), None) = (kv.next(), kv.next(), kv.next()) else {
            return Err(OpenTsdbError::InvalidTag { tag: word.to_string() });
        };
        if k.is_empty() || v.is_empty() {
            return Err(OpenTsdbError::InvalidTag { tag: word.to_string() });
        }
        add_tag(&mut tags, k, v)?;
    }
    let invalid = |reason| OpenTsdbError::InvalidValue { text: value_text.to_string(), reason };
    let value = if looks_like_integer(value_text) {
        Value::Integer(java::parse_long(value_text).map_err(invalid)?)
    } else {
        let f = java::parse_double(value_text).map_err(invalid)?;
        if !f.is_finite() {
            return Err(OpenTsdbError::NonFiniteValue {
                value: value_text.to_string(),
                metric: metric.to_string(),
                timestamp: raw_ts,
            });
        }
        Value::Float(f)
    };
    finish(metric, Timestamp::new(raw_ts)?, value, tags, max_tags)
}

/// OpenTSDB's `Tags.looksLikeInteger`.
fn looks_like_integer(value: &str) -> bool {
    !value.bytes().any(|b| matches!(b, b'.' | b'e' | b'E'))
}

/// OpenTSDB's `Tags.parse` duplicate rule: the same value again is ignored, another value is
/// an error.
fn add_tag<'a>(
    tags: &mut Vec<(&'a str, &'a str)>,
    k: &'a str,
    v: &'a str,
) -> Result<(), OpenTsdbError> {
    match tags.iter().find(|(key, _)| *key == k) {
        Some((_, prev)) if *prev == v => Ok(()),
        Some((_, prev)) => {
            Err(OpenTsdbError::DuplicateTag { tag: format!("{k}={v}"), previous: prev.to_string() })
        }
        None => {
            tags.push((k, v));
            Ok(())
        }
    }
}

/// The checks after parsing (`checkMetricAndTags`, then Graphite's), and the name.
fn finish<'a>(
    metric: &'a str,
    timestamp: Timestamp,
    value: Value,
    tags: Vec<(&'a str, &'a str)>,
    max_tags: usize,
) -> Result<Put<'a>, OpenTsdbError> {
    if tags.is_empty() {
        return Err(OpenTsdbError::NoTags { metric: metric.to_string() });
    }
    if tags.len() > max_tags {
        return Err(OpenTsdbError::TooManyTags { count: tags.len(), max: max_tags });
    }
    validate_chars(NameKind::MetricName, metric)?;
    for &(k, v) in &tags {
        validate_chars(NameKind::TagName, k)?;
        validate_chars(NameKind::TagValue, v)?;
    }
    if let Some(&(k, v)) = tags.iter().find(|(k, _)| *k == "name") {
        return Err(OpenTsdbError::ReservedTag { tag: format!("{k}={v}") });
    }
    // OpenTSDB's characters leave nothing carbon's tag parser would refuse (no `; ! ^ = ~`,
    // nothing empty), `name` was refused above and duplicates have equal values.
    let name = tagged_name(metric, &mut tags.clone());
    match MetricName::new(&name) {
        Ok(name) => Ok(Put { metric, tags, timestamp, value, name }),
        Err(error) => Err(OpenTsdbError::Name { name, error }),
    }
}

/// OpenTSDB's `Tags.validateString` (without `tsd.core.tag.allow_specialchars`).
fn validate_chars(what: NameKind, s: &str) -> Result<(), OpenTsdbError> {
    let bad = s.chars().find(|&c| {
        !(c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.' | '/') || c.is_alphabetic())
    });
    match bad {
        Some(character) => {
            Err(OpenTsdbError::IllegalCharacter { what, text: s.to_string(), character })
        }
        None => Ok(()),
    }
}

/// A line that was refused: its bytes (for the log) and why.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct BadLine<'a> {
    /// The line as received, without its `\n`; for [`OpenTsdbError::TooLong`], only its
    /// first bytes.
    pub line: &'a [u8],
    /// Why it was refused.
    pub error: OpenTsdbError,
}

/// Frames telnet lines out of a TCP stream and parses them.
///
/// Feed it the connection's buffer after every read; it takes the complete lines off the
/// front and leaves a partial last line for the next read. A line longer than
/// [`MAX_LINE_BYTES`] is reported once and its bytes are dropped as they arrive, up to its
/// `\n`, so memory stays bounded.
///
/// ```
/// use bytes::BytesMut;
/// use carbon_proto::opentsdb::{LineDecoder, Request};
///
/// let mut decoder = LineDecoder::new();
/// let mut buf = BytesMut::from(&b"put a.b 1700000000 1 host=x\r\nbogus\nput a.b 17"[..]);
/// let (mut puts, mut bad) = (0, 0);
/// decoder.decode(&mut buf, |r| match r {
///     Ok(Request::Put(_)) => puts += 1,
///     Ok(Request::Command(_)) => {}
///     Err(_) => bad += 1,
/// });
/// assert_eq!((puts, bad), (1, 1));
/// assert_eq!(&buf[..], b"put a.b 17");
/// ```
#[derive(Debug, Clone)]
pub struct LineDecoder {
    /// Tags allowed per data point.
    max_tags: usize,
    /// Frames the lines; its limit leaves room for a `\r` (`parse_line` checks the exact one).
    framer: LineFramer,
}

impl Default for LineDecoder {
    fn default() -> LineDecoder {
        LineDecoder::new()
    }
}

impl LineDecoder {
    /// A decoder with OpenTSDB's limits.
    pub fn new() -> LineDecoder {
        LineDecoder { max_tags: DEFAULT_MAX_TAGS, framer: LineFramer::new(MAX_LINE_BYTES + 1) }
    }

    /// Sets the number of tags allowed per data point (default [`DEFAULT_MAX_TAGS`]).
    pub fn max_tags(&mut self, max_tags: usize) -> &mut LineDecoder {
        self.max_tags = max_tags;
        self
    }

    /// Takes every complete line off the front of `buf` and hands each, parsed, to `sink`.
    pub fn decode<F>(&mut self, buf: &mut BytesMut, mut sink: F)
    where
        F: FnMut(Result<Request<'_>, BadLine<'_>>),
    {
        let max_tags = self.max_tags;
        self.framer.frame(buf, |framed| deliver_framed(framed, max_tags, &mut sink));
    }

    /// At end of stream: decodes what is left in `buf` as a last line, even without its
    /// `\n`, and empties `buf`.
    pub fn decode_eof<F>(&mut self, buf: &mut BytesMut, mut sink: F)
    where
        F: FnMut(Result<Request<'_>, BadLine<'_>>),
    {
        let max_tags = self.max_tags;
        self.framer.frame_eof(buf, |framed| deliver_framed(framed, max_tags, &mut sink));
    }
}

fn deliver_framed<F>(framed: Framed<'_>, max_tags: usize, sink: &mut F)
where
    F: FnMut(Result<Request<'_>, BadLine<'_>>),
{
    let line = match framed {
        Framed::Line(line) => line,
        Framed::TooLong(head) => {
            let line = head.get(..MAX_LINE_BYTES).unwrap_or(head);
            sink(Err(BadLine { line, error: OpenTsdbError::TooLong { max: MAX_LINE_BYTES } }));
            return;
        }
    };
    match parse_line_with_max_tags(line, max_tags) {
        Ok(request) => sink(Ok(request)),
        Err(error) => {
            let line = line.get(..MAX_LINE_BYTES).unwrap_or(line);
            sink(Err(BadLine { line, error }));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn put(line: &str) -> Result<Put<'_>, OpenTsdbError> {
        match parse_line(line.as_bytes())? {
            Request::Put(p) => Ok(p),
            Request::Command(c) => panic!("{line:?} is the command {c:?}"),
        }
    }

    fn err(line: &str) -> OpenTsdbError {
        parse_line(line.as_bytes()).unwrap_err()
    }

    #[test]
    fn accepts_the_documented_example() {
        let p = put("put sys.cpu.user 1356998400 42.5 host=webserver01 cpu=0").unwrap();
        assert_eq!(p.metric(), "sys.cpu.user");
        assert_eq!(p.tags(), &[("host", "webserver01"), ("cpu", "0")]);
        assert_eq!(p.timestamp().raw(), 1_356_998_400);
        assert_eq!(p.value(), Value::Float(42.5));
        assert_eq!(p.name().as_str(), "sys.cpu.user;cpu=0;host=webserver01");
    }

    #[test]
    fn words_are_split_on_single_spaces() {
        assert_eq!(put("put a 1 1 host=x  dc=y ").unwrap().tags().len(), 2);
        assert_eq!(err("put  a 1 1 host=x"), OpenTsdbError::EmptyMetric);
        assert_eq!(
            err("put a  1 1 host=x"),
            OpenTsdbError::InvalidTimestamp { text: String::new(), reason: NumberError::Empty }
        );
        assert_eq!(err("put a 1  1 host=x"), OpenTsdbError::EmptyValue);
        assert_eq!(err("put a 1 1"), OpenTsdbError::NotEnoughArguments { got: 3 });
        assert_eq!(err("put"), OpenTsdbError::NotEnoughArguments { got: 0 });
        assert_eq!(err("put a 1 1 "), OpenTsdbError::NoTags { metric: "a".into() });
        assert!(matches!(
            err("put a\t1 1 1 h=x"),
            OpenTsdbError::IllegalCharacter { what: NameKind::MetricName, character: '\t', .. }
        ));
        assert_eq!(put("put a 1 1 host=x\r").unwrap().tags(), &[("host", "x")]);
    }

    #[test]
    fn timestamps() {
        let ts = |l: &str| put(l).map(|p| p.timestamp());
        assert_eq!(ts("put a 4294967295 1 h=x").unwrap().as_secs_f64(), 4294967295.0);
        assert!(ts("put a 4294967296 1 h=x").unwrap().is_milliseconds());
        assert_eq!(ts("put a 1364410924250 1 h=x").unwrap().as_secs_f64(), 1364410924.25);
        assert_eq!(ts("put a 1364410924.250 1 h=x").unwrap().raw(), 1364410924250);
        // OpenTSDB removes every dot, whatever the number of decimals.
        assert_eq!(ts("put a 1364410924.5 1 h=x").unwrap().raw(), 13644109245);
        assert_eq!(ts("put a 9999999999999 1 h=x").unwrap().raw(), 9999999999999);
        assert_eq!(
            ts("put a 10000000000000 1 h=x"),
            Err(OpenTsdbError::BadTimestamp { timestamp: 10000000000000 })
        );
        assert_eq!(ts("put a 0 1 h=x"), Err(OpenTsdbError::NonPositiveTimestamp { timestamp: 0 }));
        assert_eq!(
            ts("put a -5 1 h=x"),
            Err(OpenTsdbError::NonPositiveTimestamp { timestamp: -5 })
        );
        assert_eq!(
            ts("put a 1e9 1 h=x"),
            Err(OpenTsdbError::InvalidTimestamp {
                text: "1e9".into(),
                reason: NumberError::InvalidCharacter('e')
            })
        );
    }

    #[test]
    fn values() {
        let v = |l: &str| put(l).map(|p| p.value());
        assert_eq!(v("put a 1 42 h=x"), Ok(Value::Integer(42)));
        assert_eq!(v("put a 1 -9223372036854775808 h=x"), Ok(Value::Integer(i64::MIN)));
        assert_eq!(v("put a 1 1e3 h=x"), Ok(Value::Float(1000.0)));
        assert_eq!(v("put a 1 .5 h=x"), Ok(Value::Float(0.5)));
        assert_eq!(v("put a 1 2.5f h=x"), Ok(Value::Float(2.5)));
        assert!(matches!(v("put a 1 NaN h=x"), Err(OpenTsdbError::InvalidValue { .. })));
        assert!(matches!(v("put a 1 Infinity h=x"), Err(OpenTsdbError::InvalidValue { .. })));
        assert!(matches!(v("put a 1 true h=x"), Err(OpenTsdbError::InvalidValue { .. })));
        assert!(matches!(v("put a 1 1.2.3 h=x"), Err(OpenTsdbError::InvalidValue { .. })));
        assert!(matches!(v("put a 1 1e999 h=x"), Err(OpenTsdbError::NonFiniteValue { .. })));
        assert!(matches!(v("put a 1 -1.0e999 h=x"), Err(OpenTsdbError::NonFiniteValue { .. })));
    }

    #[test]
    fn tags() {
        assert_eq!(err("put a 1 1 host"), OpenTsdbError::InvalidTag { tag: "host".into() });
        assert_eq!(err("put a 1 1 host="), OpenTsdbError::InvalidTag { tag: "host=".into() });
        assert_eq!(err("put a 1 1 =x"), OpenTsdbError::InvalidTag { tag: "=x".into() });
        assert_eq!(err("put a 1 1 a=b=c"), OpenTsdbError::InvalidTag { tag: "a=b=c".into() });
        assert_eq!(put("put a 1 1 h=x h=x").unwrap().tags(), &[("h", "x")]);
        assert_eq!(
            err("put a 1 1 h=x h=y"),
            OpenTsdbError::DuplicateTag { tag: "h=y".into(), previous: "x".into() }
        );
        let nine = "put a 1 1 a=1 b=1 c=1 d=1 e=1 f=1 g=1 h=1 i=1";
        assert_eq!(err(nine), OpenTsdbError::TooManyTags { count: 9, max: 8 });
        assert!(parse_line_with_max_tags(nine.as_bytes(), 9).is_ok());
        assert_eq!(
            err("put a 1 1 host=web:01"),
            OpenTsdbError::IllegalCharacter {
                what: NameKind::TagValue,
                text: "web:01".into(),
                character: ':'
            }
        );
        assert_eq!(put("put a 1 1 path=/var/log").unwrap().name().as_str(), "a;path=/var/log");
        assert_eq!(put("put a 1 1 ville=Zürich").unwrap().name().as_str(), "a;ville=Zürich");
    }

    #[test]
    fn graphite_rules() {
        assert!(matches!(
            err("put a/b 1 1 h=x"),
            OpenTsdbError::Name { error: NameError::Slash { at: 1 }, .. }
        ));
        assert!(matches!(err("put a..b 1 1 h=x"), OpenTsdbError::Name { .. }));
        assert!(matches!(err("put .a 1 1 h=x"), OpenTsdbError::Name { .. }));
        assert_eq!(
            err("put a 1 1 name=eth0"),
            OpenTsdbError::ReservedTag { tag: "name=eth0".into() }
        );
        assert!(put("put a 1 1 name_=x").is_ok());
    }

    #[test]
    fn commands() {
        for c in Command::ALL {
            assert_eq!(parse_line(c.name().as_bytes()), Ok(Request::Command(c)));
        }
        assert_eq!(parse_line(b"version please"), Ok(Request::Command(Command::Version)));
        assert_eq!(err("PUT a 1 1 h=x"), OpenTsdbError::UnknownCommand { command: "PUT".into() });
        assert_eq!(err(""), OpenTsdbError::UnknownCommand { command: String::new() });
        assert_eq!(
            err("sys.cpu.user 1356998400 42 host=a"),
            OpenTsdbError::UnknownCommand { command: "sys.cpu.user".into() }
        );
    }

    #[test]
    fn replies_like_opentsdb() {
        let reply = |l: &str| err(l).telnet_reply();
        assert_eq!(reply("foo"), "unknown command: foo.  Try `help'.\n");
        assert_eq!(reply("put a 1 1 h=x h=y"), "put: illegal argument: duplicate tag: h=y\n");
        assert_eq!(reply("put a 1x 1 h=x"), "put: invalid value: Invalid character 'x' in 1x\n");
        assert_eq!(reply("put a 1.x 1 h=x"), "put: invalid value: Invalid character 'x' in 1x\n");
        assert_eq!(reply("put a 1 1.2.3 h=x"), "put: invalid value: For input string: \"1.2.3\"\n");
        assert_eq!(reply("put a 1 abc h=x"), "put: invalid value: Invalid character 'a' in abc\n");
        assert_eq!(
            reply("put a 1 1e999 h=x"),
            "put: illegal argument: value is NaN or Infinite: Infinity for metric=a timestamp=1\n"
        );
        assert_eq!(
            reply("put a 1 1 "),
            "put: illegal argument: Need at least one tag (metric=a, tags={})\n"
        );
        assert_eq!(
            reply("put a 1 1 h=x:y"),
            "put: illegal argument: Invalid tag value (\"x:y\"): illegal character: :\n"
        );
        assert_eq!(err("put a 1 1x h=x").counter(), Some("invalid_values"));
        assert_eq!(err("put a 1 1 h").counter(), Some("illegal_arguments"));
        assert_eq!(err("nope").counter(), None);
    }

    #[test]
    fn rejects_bad_text() {
        assert_eq!(parse_line(b"put a\xff 1 1 h=x"), Err(OpenTsdbError::NotUtf8 { at: 5 }));
        let long = format!("put a 1 1 h={}", "x".repeat(MAX_LINE_BYTES));
        assert_eq!(err(&long), OpenTsdbError::TooLong { max: MAX_LINE_BYTES });
    }

    #[test]
    fn constructor_checks_like_the_parser() {
        let ts = Timestamp::new(1).unwrap();
        assert!(Put::new("a", ts, Value::Float(f64::NAN), &[("h", "x")]).is_err());
        assert!(Put::new("a", ts, Value::Integer(1), &[]).is_err());
        assert!(Put::new("a", ts, Value::Integer(1), &[("h", "x=y")]).is_err());
        assert!(Put::new("", ts, Value::Integer(1), &[("h", "x")]).is_err());
        let p = Put::new("a", ts, Value::Float(1e16), &[("h", "x"), ("h", "x")]).unwrap();
        let mut out = Vec::new();
        p.encode(&mut out);
        assert_eq!(out, b"put a 1 1e16 h=x\n");
        assert_eq!(put(std::str::from_utf8(&out).unwrap().trim_end()).unwrap(), p);
    }

    #[test]
    fn decoder_frames_and_bounds_lines() {
        let mut d = LineDecoder::new();
        let mut buf = BytesMut::new();
        let mut seen = Vec::new();
        let run = |d: &mut LineDecoder, buf: &mut BytesMut, seen: &mut Vec<String>| {
            d.decode(buf, |r| {
                seen.push(match r {
                    Ok(Request::Put(p)) => p.name().to_string(),
                    Ok(Request::Command(c)) => c.name().to_string(),
                    Err(b) => format!("error: {}", b.error),
                })
            })
        };
        buf.extend_from_slice(b"put a 1 1 h=x\nversion\n");
        buf.extend_from_slice(&vec![b'x'; MAX_LINE_BYTES + 10]);
        run(&mut d, &mut buf, &mut seen);
        assert!(buf.is_empty());
        buf.extend_from_slice(b"yyyy\nhelp\nput b 1 1 h=x");
        run(&mut d, &mut buf, &mut seen);
        assert_eq!(seen, ["a;h=x", "version", "error: line longer than 1024 bytes", "help"]);
        d.decode_eof(&mut buf, |r| seen.push(format!("{:?}", r.is_ok())));
        assert_eq!(seen.last().map(String::as_str), Some("true"));
        assert!(buf.is_empty());
    }
}
