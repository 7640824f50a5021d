//! statsd lines, as the statsd reference server (statsd/statsd 0.9, `stats.js` and
//! `lib/helpers.js`) reads them, with DogStatsD's `|#tag:value` extension.
//!
//! A packet (one UDP datagram, or a chunk of complete lines from TCP) holds lines separated by
//! `\n`; a line is `key:value|type[|@rate][|#tag:v,...]`, and may carry several
//! `value|type[|@rate]` parts separated by `:` (`a:1|c:2|ms`). Every part yields one item:
//! a [`Metric`] or a [`BadLine`] (the reference's `bad_lines_seen` counts parts too), so
//! a bad part costs only itself.
//!
//! What the reference accepts, and what [`decode_packet`] returns for it:
//!
//! | part | reference | here |
//! |---|---|---|
//! | no `:` or no `\|type` (`gorets`, `gorets:1`) | bad line | [`StatsdError::NoType`] |
//! | `c` counter | adds `value / rate` | [`Value::Counter`] and the rate |
//! | `ms` timer | value must be `>= 0`; the hidden count grows by `1 / rate` | [`Value::Timer`]; [`StatsdError::NegativeTimer`] |
//! | `g` gauge | `+`/`-` first: added to an existing gauge (set when none exists); else set | [`Value::Gauge`] or [`Value::GaugeDelta`] |
//! | `s` set | any member string (an empty one is stored as `"0"`) | [`Value::Set`] (`""` becomes `"0"`) |
//! | `h`, `d` or any other type | **counted as a counter** | [`Value::Histogram`], [`Value::Distribution`], [`Value::Other`]: the aggregator chooses ([`Value::reference_kind`] says what the reference does) |
//! | a value `Number()` calls `NaN` (`''`, `abc`, `1_0`, `NaN`) | bad line | [`StatsdError::BadValue`] |
//! | a value with spaces, hex, `Infinity` (`' 5'`, `0x10`, `1e3`) | JavaScript's `Number()`: 5, 16, 1000, ∞ | the same |
//! | `@rate` that is not `@` + a non-negative number | bad line | [`StatsdError::BadSampleRate`] |
//! | a third field and more (`1\|c\|@0.5\|x`) | ignored | ignored |
//!
//! Keys are cleaned as `keyNameSanitize` (on by default) does: each run of white space
//! becomes `_`, `/` becomes `-`, anything outside `[A-Za-z0-9_\-.;=]` is removed. DogStatsD
//! tags are appended as Graphite tags first, as the reference does (`#env:prod` becomes
//! `;env=prod`: the first `;` of a tag becomes `_`, its first `:` becomes `=`), and the result
//! is normalised as carbon normalises tagged names ([`tags::normalize`](crate::tags::normalize)).
//!
//! Where we depart from the reference, on purpose:
//!
//! - **Unusable names**: the reference stores any key, even an empty one or `a..b`; here a
//!   name that [`MetricName`] refuses (empty, an empty dot-separated component) is a
//!   [`StatsdError::Name`], since no Graphite series could hold it.
//! - **Tags without a value** (`#env`), with an empty name or value, or named `name`: the
//!   reference writes `key;env`, which carbon cannot parse as a tagged name. Here such a tag
//!   is dropped (and counted in [`PacketStats::dropped_tags`]) and the metric kept, as
//!   Prometheus' statsd_exporter does with value-less DogStatsD tags. A `name` tag would
//!   otherwise be swallowed by carbon's normalisation, where `name` is the metric itself.
//! - **DogStatsD fields after the tags**: the reference folds everything after `|#` into the
//!   tags (so `|#env:prod|@0.5` gives the tag value `prod05`). Here the tags end at the next
//!   `|`; a later `@rate` field applies to parts that have no rate of their own (DogStatsD
//!   accepts its fields in any order), and the other DogStatsD fields (`|c:` container ID,
//!   `|T` timestamp, `|e:` ...) are ignored.
//! - **Sample rates**: the reference checks `@<number>` with `Number()` but then reads the rate
//!   with `/^@([\d.]+)/`, so `@2e-1` counts as rate 2, `@0x10` as rate 0, and `@+1`, `@ 1` or
//!   `@Infinity` throw a `TypeError` inside its UDP handler. Here the rate is the whole number
//!   (`@2e-1` is 0.2), and a rate that does not start with a digit or `.` is a
//!   [`StatsdError::BadSampleRate`].
//! - **Types are trimmed before they are checked**: the reference validates the raw type and
//!   aggregates the trimmed one, so `5|ms\r` or `-1| ms` bypass the timer check and `x| s`
//!   is refused as a non-numeric counter. Here one trailing `\r` is removed from every line
//!   (CRLF senders), and the trimmed type is used for both.
//! - **Empty lines** (after removing the `\r`) are skipped; the reference skips only truly
//!   empty ones.
//! - Bytes that are not UTF-8 are replaced by U+FFFD, as node's `Buffer.toString()` does
//!   (so they vanish from keys and make values `NaN`); statsd's TCP server decodes
//!   `'ascii'` instead.
#![warn(clippy::indexing_slicing)]

mod js;
pub(crate) mod tagged;

use std::borrow::Cow;
use std::fmt::Write as _;

use crate::metric::{MetricName, NameError, check_name};
use js::{is_js_space, js_number, js_trim};
use tagged::tagged_name;

/// A bad `value|type` part of a statsd line, with where it is: `line` counts the packet's
/// lines from 1 (empty ones included), `part` the line's `value|type` parts from 1.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum StatsdError {
    /// The part has no `|type` (or the line has no `:value` at all).
    #[error("line {line}, part {part}: no metric type (expected key:value|type)")]
    NoType {
        /// Line number in the packet, from 1.
        line: usize,
        /// Part number in the line, from 1.
        part: usize,
    },
    /// The value is not a number (JavaScript's `Number()` gives `NaN`).
    #[error("line {line}, part {part}: value {value:?} is not a number")]
    BadValue {
        /// Line number in the packet, from 1.
        line: usize,
        /// Part number in the line, from 1.
        part: usize,
        /// The value as received.
        value: String,
    },
    /// A timer value below zero.
    #[error("line {line}, part {part}: timer value {value:?} is negative")]
    NegativeTimer {
        /// Line number in the packet, from 1.
        line: usize,
        /// Part number in the line, from 1.
        part: usize,
        /// The value as received.
        value: String,
    },
    /// The third field is not `@` followed by a non-negative number.
    #[error("line {line}, part {part}: sample rate {rate:?} is not @ and a non-negative number")]
    BadSampleRate {
        /// Line number in the packet, from 1.
        line: usize,
        /// Part number in the line, from 1.
        part: usize,
        /// The field as received.
        rate: String,
    },
    /// The cleaned key cannot be a Graphite metric name.
    #[error("line {line}, part {part}: metric name {name:?}: {error}")]
    Name {
        /// Line number in the packet, from 1.
        line: usize,
        /// Part number in the line, from 1.
        part: usize,
        /// The cleaned (and tagged) name.
        name: String,
        /// Why it cannot be stored.
        error: NameError,
    },
}

/// How the statsd reference aggregates a metric type (see [`Value::reference_kind`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Kind {
    /// Summed (divided by the sample rate); flushed as a rate and a count.
    Counter,
    /// Collected; flushed as count, mean, percentiles...
    Timer,
    /// Last value kept (or adjusted by signed deltas).
    Gauge,
    /// Distinct members counted.
    Set,
}

/// A metric's type and value, with the type as received so an aggregator can treat `h`
/// and `d` as timers (DogStatsD) or as counters (the statsd reference).
#[derive(Clone, Debug, PartialEq)]
#[non_exhaustive]
pub enum Value<'a> {
    /// `c`: a count to add.
    Counter(f64),
    /// `ms`: a duration in milliseconds, never negative.
    Timer(f64),
    /// `h`: a DogStatsD histogram sample (a counter to the statsd reference).
    Histogram(f64),
    /// `d`: a DogStatsD distribution sample (a counter to the statsd reference).
    Distribution(f64),
    /// `g` without a sign: the gauge's new value.
    Gauge(f64),
    /// `g` with a leading `+` or `-`: added to the gauge; with no gauge yet, its value.
    GaugeDelta(f64),
    /// `s`: a member of the set (an empty member is `"0"`, as the reference stores it).
    Set(Cow<'a, str>),
    /// Any other type (trimmed), which the statsd reference counts as a counter.
    Other {
        /// The type as received, trimmed.
        kind: Cow<'a, str>,
        /// The value.
        value: f64,
    },
}

impl Value<'_> {
    /// The type as written on the wire (`c`, `ms`, `h`, `d`, `g`, `s`, or the other type).
    pub fn type_str(&self) -> &str {
        match self {
            Value::Counter(_) => "c",
            Value::Timer(_) => "ms",
            Value::Histogram(_) => "h",
            Value::Distribution(_) => "d",
            Value::Gauge(_) | Value::GaugeDelta(_) => "g",
            Value::Set(_) => "s",
            Value::Other { kind, .. } => kind,
        }
    }

    /// How the statsd reference aggregates this type: `ms` as a timer, `g` as a gauge, `s` as
    /// a set, and everything else (`h` and `d` included) as a counter.
    pub fn reference_kind(&self) -> Kind {
        match self {
            Value::Timer(_) => Kind::Timer,
            Value::Gauge(_) | Value::GaugeDelta(_) => Kind::Gauge,
            Value::Set(_) => Kind::Set,
            Value::Counter(_)
            | Value::Histogram(_)
            | Value::Distribution(_)
            | Value::Other { .. } => Kind::Counter,
        }
    }

    /// The number, for every type but a set.
    pub fn as_f64(&self) -> Option<f64> {
        match *self {
            Value::Counter(v)
            | Value::Timer(v)
            | Value::Histogram(v)
            | Value::Distribution(v)
            | Value::Gauge(v)
            | Value::GaugeDelta(v)
            | Value::Other { value: v, .. } => Some(v),
            Value::Set(_) => None,
        }
    }

    /// An owned copy.
    pub fn into_owned(self) -> Value<'static> {
        match self {
            Value::Counter(v) => Value::Counter(v),
            Value::Timer(v) => Value::Timer(v),
            Value::Histogram(v) => Value::Histogram(v),
            Value::Distribution(v) => Value::Distribution(v),
            Value::Gauge(v) => Value::Gauge(v),
            Value::GaugeDelta(v) => Value::GaugeDelta(v),
            Value::Set(m) => Value::Set(Cow::Owned(m.into_owned())),
            Value::Other { kind, value } => {
                Value::Other { kind: Cow::Owned(kind.into_owned()), value }
            }
        }
    }
}

/// One good `value|type` part: the cleaned name (borrowed from the packet when cleaning
/// changed nothing), the value and the sample rate.
#[derive(Clone, Debug, PartialEq)]
pub struct Metric<'a> {
    name: Cow<'a, str>,
    value: Value<'a>,
    sample_rate: f64,
}

impl<'a> Metric<'a> {
    /// The cleaned name: a valid [`MetricName`], tagged (`key;tag=value`, normalised) when
    /// the line had tags.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The type and value.
    pub fn value(&self) -> &Value<'a> {
        &self.value
    }

    /// The sample rate (1 when none was given). Never negative; it may be 0, which makes the
    /// reference's counter infinite.
    pub fn sample_rate(&self) -> f64 {
        self.sample_rate
    }

    /// The name as a [`MetricName`] (allocates).
    pub fn to_metric_name(&self) -> MetricName {
        // Decoding only returns names that passed `check_name`.
        MetricName::new(&self.name).unwrap_or_else(|_| unreachable_name())
    }

    /// An owned copy, free of the packet's lifetime.
    pub fn into_owned(self) -> Metric<'static> {
        Metric {
            name: Cow::Owned(self.name.into_owned()),
            value: self.value.into_owned(),
            sample_rate: self.sample_rate,
        }
    }

    /// Appends this metric as a statsd line (see [`encode`]).
    pub fn encode(&self, out: &mut Vec<u8>) {
        encode(out, &self.name, &self.value, self.sample_rate);
    }
}

#[cold]
fn unreachable_name() -> MetricName {
    unreachable!("a decoded statsd metric always has a valid name")
}

/// A bad part, with the line it came from (for the log).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct BadLine<'a> {
    /// The whole line, without its `\n` (and `\r`).
    pub line: &'a [u8],
    /// What was wrong, and where.
    pub error: StatsdError,
}

/// What a packet held, for the server's self-metrics.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct PacketStats {
    /// Non-empty lines (the reference's `metrics_received`).
    pub lines: usize,
    /// Good parts handed out as [`Metric`]s.
    pub metrics: usize,
    /// Bad parts handed out as [`BadLine`]s (the reference's `bad_lines_seen`).
    pub bad_lines: usize,
    /// Tags dropped because Graphite cannot represent them (no value, empty name, `name`).
    pub dropped_tags: usize,
}

/// Decodes a packet: every line, every part, each handed to `sink` as a [`Metric`] or a
/// [`BadLine`]. Returns the counts.
///
/// ```
/// use carbon_proto::statsd::{decode_packet, Value};
///
/// let mut good = Vec::new();
/// let stats = decode_packet(b"gorets:1|c|@0.1\nglork:320|ms\nbad\nusers.online:1|c|#country:china", |r| {
///     if let Ok(m) = r {
///         good.push((m.name().to_string(), m.value().clone(), m.sample_rate()));
///     }
/// });
/// assert_eq!(good[0], ("gorets".to_string(), Value::Counter(1.0), 0.1));
/// assert_eq!(good[1].1, Value::Timer(320.0));
/// assert_eq!(good[2].0, "users.online;country=china");
/// assert_eq!((stats.lines, stats.metrics, stats.bad_lines), (4, 3, 1));
/// ```
pub fn decode_packet<'a, F>(packet: &'a [u8], mut sink: F) -> PacketStats
where
    F: FnMut(Result<Metric<'a>, BadLine<'a>>),
{
    let mut stats = PacketStats::default();
    for (index, raw) in packet.split(|&b| b == b'\n').enumerate() {
        let line = raw.strip_suffix(b"\r").unwrap_or(raw);
        if line.is_empty() {
            continue;
        }
        stats.lines += 1;
        decode_line(line, index + 1, &mut stats, &mut sink);
    }
    stats
}

/// Decodes a packet into owned results (see [`decode_packet`]). Convenient where speed does
/// not matter.
pub fn decode_packet_to_vec(packet: &[u8]) -> Vec<Result<Metric<'_>, StatsdError>> {
    let mut out = Vec::new();
    decode_packet(packet, |r| out.push(r.map_err(|b| b.error)));
    out
}

fn decode_line<'a, F>(line: &'a [u8], line_no: usize, stats: &mut PacketStats, sink: &mut F)
where
    F: FnMut(Result<Metric<'a>, BadLine<'a>>),
{
    let (body, tags, trailer_rate) = split_dogstatsd(line);
    let Some(colon) = memchr::memchr(b':', body) else {
        stats.bad_lines += 1;
        sink(Err(BadLine { line, error: StatsdError::NoType { line: line_no, part: 1 } }));
        return;
    };
    let key = body.get(..colon).unwrap_or_default();
    let parts = body.get(colon + 1..).unwrap_or_default();
    let name = build_name(key, tags, &mut stats.dropped_tags);
    for (index, part) in parts.split(|&b| b == b':').enumerate() {
        let at = Position { line: line_no, part: index + 1 };
        let parsed = parse_part(part, trailer_rate, at).and_then(|(value, sample_rate)| {
            name.clone()
                .map(|name| Metric { name, value, sample_rate })
                .map_err(|problem| problem.into_error(at))
        });
        match parsed {
            Ok(metric) => {
                stats.metrics += 1;
                sink(Ok(metric));
            }
            Err(error) => {
                stats.bad_lines += 1;
                sink(Err(BadLine { line, error }));
            }
        }
    }
}

#[derive(Clone, Copy)]
struct Position {
    line: usize,
    part: usize,
}

/// Splits off DogStatsD's `|#tags` section: the line before it, the tags (up to the next
/// `|`), and the first `@rate` field after them.
fn split_dogstatsd(line: &[u8]) -> (&[u8], Option<&[u8]>, Option<&[u8]>) {
    let Some(at) = memchr::memmem::find(line, b"|#") else {
        return (line, None, None);
    };
    let body = line.get(..at).unwrap_or_default();
    let rest = line.get(at + 2..).unwrap_or_default();
    let (tags, trailer) = match memchr::memchr(b'|', rest) {
        Some(end) => (rest.get(..end).unwrap_or_default(), rest.get(end + 1..)),
        None => (rest, None),
    };
    let rate = trailer.and_then(|t| t.split(|&b| b == b'|').find(|f| f.first() == Some(&b'@')));
    (body, (!tags.is_empty()).then_some(tags), rate)
}

/// Parses one `value|type[|@rate...]` part.
fn parse_part<'a>(
    part: &'a [u8],
    trailer_rate: Option<&'a [u8]>,
    at: Position,
) -> Result<(Value<'a>, f64), StatsdError> {
    let mut fields = part.split(|&b| b == b'|');
    let raw_value = fields.next().unwrap_or_default();
    let Some(raw_type) = fields.next() else {
        return Err(StatsdError::NoType { line: at.line, part: at.part });
    };
    let sample_rate = match fields.next().or(trailer_rate) {
        Some(field) => parse_rate(field).ok_or_else(|| StatsdError::BadSampleRate {
            line: at.line,
            part: at.part,
            rate: String::from_utf8_lossy(field).into_owned(),
        })?,
        None => 1.0,
    };
    let kind = lossy(raw_type);
    let value_text = lossy(raw_value);
    let bad_value =
        || StatsdError::BadValue { line: at.line, part: at.part, value: value_text.to_string() };
    // `isNumber`: a non-empty string that `Number()` does not call NaN.
    let number = || {
        if raw_value.is_empty() { None } else { js_number(&value_text) }
    };
    let value = match js_trim(&kind) {
        "s" => Value::Set(if raw_value.is_empty() { Cow::Borrowed("0") } else { lossy(raw_value) }),
        "g" => {
            let v = number().ok_or_else(bad_value)?;
            if matches!(raw_value.first(), Some(b'+' | b'-')) {
                Value::GaugeDelta(v)
            } else {
                Value::Gauge(v)
            }
        }
        "ms" => {
            let v = number().ok_or_else(bad_value)?;
            if v < 0.0 {
                return Err(StatsdError::NegativeTimer {
                    line: at.line,
                    part: at.part,
                    value: value_text.to_string(),
                });
            }
            Value::Timer(v)
        }
        "c" => Value::Counter(number().ok_or_else(bad_value)?),
        "h" => Value::Histogram(number().ok_or_else(bad_value)?),
        "d" => Value::Distribution(number().ok_or_else(bad_value)?),
        other => {
            let value = number().ok_or_else(bad_value)?;
            let kind = match &kind {
                Cow::Borrowed(k) => Cow::Borrowed(js_trim(k)),
                Cow::Owned(_) => Cow::Owned(other.to_string()),
            };
            Value::Other { kind, value }
        }
    };
    Ok((value, sample_rate))
}

/// `@` and a non-negative number that starts with a digit or `.`; its value.
fn parse_rate(field: &[u8]) -> Option<f64> {
    let number = field.strip_prefix(b"@")?;
    if !matches!(number.first(), Some(b'0'..=b'9' | b'.')) {
        return None;
    }
    let text = std::str::from_utf8(number).ok()?;
    js_number(text)
}

fn lossy(bytes: &[u8]) -> Cow<'_, str> {
    String::from_utf8_lossy(bytes)
}

/// Why a line's name is unusable (turned into a [`StatsdError`] per part).
#[derive(Clone, Debug)]
struct NameProblem(String, NameError);

impl NameProblem {
    fn into_error(self, at: Position) -> StatsdError {
        StatsdError::Name { line: at.line, part: at.part, name: self.0, error: self.1 }
    }
}

/// Characters `keyNameSanitize` keeps.
const fn is_key_byte(b: u8) -> bool {
    matches!(b, b'a'..=b'z' | b'A'..=b'Z' | b'0'..=b'9' | b'_' | b'-' | b'.' | b';' | b'=')
}

/// The cleaned, tagged, normalised name of a line.
fn build_name<'a>(
    key: &'a [u8],
    tags: Option<&[u8]>,
    dropped: &mut usize,
) -> Result<Cow<'a, str>, NameProblem> {
    // Fast path: a plain key that cleaning leaves alone.
    if tags.is_none() && key.iter().all(|&b| is_key_byte(b) && b != b';') {
        let name = std::str::from_utf8(key).unwrap_or_default();
        return match check_name(name) {
            Ok(()) => Ok(Cow::Borrowed(name)),
            Err(e) => Err(NameProblem(name.to_string(), e)),
        };
    }
    let mut raw = String::with_capacity(key.len() + tags.map_or(0, <[u8]>::len) + 8);
    sanitize_into(&mut raw, key, false);
    for tag in tags.into_iter().flat_map(|t| t.split(|&b| b == b',')) {
        raw.push(';');
        sanitize_into(&mut raw, tag, true);
    }
    let mut segments = raw.split(';');
    let metric = segments.next().unwrap_or_default();
    if metric.is_empty() {
        return Err(NameProblem(raw.clone(), NameError::Empty));
    }
    let mut tags = Vec::new();
    for segment in segments {
        match segment.split_once('=') {
            Some((k, v)) if !k.is_empty() && !v.is_empty() && k != "name" => tags.push((k, v)),
            _ => *dropped += 1,
        }
    }
    // What is left is a name carbon can parse: `keyNameSanitize` removed `~ ! ^`, and the
    // segments were split on `;` and checked just above.
    let name = if tags.is_empty() { metric.to_string() } else { tagged_name(metric, &mut tags) };
    match check_name(&name) {
        Ok(()) => Ok(Cow::Owned(name)),
        Err(e) => Err(NameProblem(name, e)),
    }
}

/// Appends `bytes` cleaned as `keyNameSanitize` does: white-space runs become `_`, `/`
/// becomes `-`, other characters outside `[A-Za-z0-9_\-.;=]` go (bytes that are not UTF-8
/// stand for U+FFFD, which goes too).
///
/// For a DogStatsD `tag`, the reference first replaces its first `;` by `_` and its first `:`
/// by `=` (JavaScript's `replace` with a string pattern replaces the first match only).
fn sanitize_into(out: &mut String, bytes: &[u8], tag: bool) {
    let (mut semicolon_done, mut colon_done) = (!tag, !tag);
    let mut in_space = false;
    for chunk in bytes.utf8_chunks() {
        for mut c in chunk.valid().chars() {
            if c == ';' && !semicolon_done {
                semicolon_done = true;
                c = '_';
            } else if c == ':' && !colon_done {
                colon_done = true;
                c = '=';
            }
            if is_js_space(c) {
                if !in_space {
                    out.push('_');
                }
                in_space = true;
                continue;
            }
            in_space = false;
            if c == '/' {
                out.push('-');
            } else if c.is_ascii() && is_key_byte(c as u8) {
                out.push(c);
            }
        }
        if !chunk.invalid().is_empty() {
            in_space = false;
        }
    }
}

/// Appends one statsd line `name:value|type[|@rate]\n` for `value`, which the statsd
/// reference and [`decode_packet`] read back as the same metric. A tagged `name`
/// (`cpu;host=a`) is written as it is: the reference keeps `;` and `=` in keys.
///
/// Numbers are written as JavaScript's `Number()` reads them back exactly (`Infinity`, and
/// no exponent). The rate is written when it is not 1. A gauge set to a negative value is
/// written as two lines, `name:0|g` then `name:-5|g`, because a leading `-` means "subtract"
/// (the statsd documentation's advice); a signed delta always carries its sign.
///
/// Nothing is escaped: a name or set member containing `:`, `|`, `#` or `\n` does not
/// round-trip, and a `NaN` value is written as `NaN`, which receivers refuse.
///
/// ```
/// use carbon_proto::statsd::{encode, Value};
/// let mut out = Vec::new();
/// encode(&mut out, "gorets", &Value::Counter(1.0), 0.1);
/// encode(&mut out, "gaugor", &Value::GaugeDelta(4.0), 1.0);
/// encode(&mut out, "gaugor", &Value::Gauge(-10.0), 1.0);
/// assert_eq!(out, b"gorets:1|c|@0.1\ngaugor:+4|g\ngaugor:0|g\ngaugor:-10|g\n");
/// ```
pub fn encode(out: &mut Vec<u8>, name: &str, value: &Value<'_>, sample_rate: f64) {
    encode_with(out, name, value, sample_rate, &[]);
}

/// Appends a DogStatsD line `metric:value|type[|@rate]|#tag:v,...\n` (see [`encode`]); with
/// no tags it is a plain statsd line. Tags whose name or value contain `,`, `|`, `:` or `;`
/// do not round-trip.
///
/// ```
/// use carbon_proto::statsd::{encode_dogstatsd, Value};
/// let mut out = Vec::new();
/// encode_dogstatsd(&mut out, "users.online", &Value::Counter(1.0), 0.5, &[("country", "china")]);
/// assert_eq!(out, b"users.online:1|c|@0.5|#country:china\n");
/// ```
pub fn encode_dogstatsd(
    out: &mut Vec<u8>,
    metric: &str,
    value: &Value<'_>,
    sample_rate: f64,
    tags: &[(&str, &str)],
) {
    encode_with(out, metric, value, sample_rate, tags);
}

fn encode_with(
    out: &mut Vec<u8>,
    name: &str,
    value: &Value<'_>,
    sample_rate: f64,
    tags: &[(&str, &str)],
) {
    if let Value::Gauge(v) = *value
        && v < 0.0
    {
        write_line(out, name, "0", "g", sample_rate, tags);
        write_line(out, name, &js_string(v), "g", sample_rate, tags);
        return;
    }
    let text = match value {
        Value::Set(member) => member.to_string(),
        // -0 would read back as a delta.
        Value::Gauge(v) if *v == 0.0 => "0".to_string(),
        Value::GaugeDelta(v) if !v.is_sign_negative() => format!("+{}", js_string(*v)),
        other => js_string(other.as_f64().unwrap_or(f64::NAN)),
    };
    write_line(out, name, &text, value.type_str(), sample_rate, tags);
}

fn write_line(
    out: &mut Vec<u8>,
    name: &str,
    value: &str,
    kind: &str,
    sample_rate: f64,
    tags: &[(&str, &str)],
) {
    let mut s = String::with_capacity(name.len() + value.len() + 16);
    s.push_str(name);
    s.push(':');
    s.push_str(value);
    s.push('|');
    s.push_str(kind);
    if sample_rate != 1.0 {
        let _ = write!(s, "|@{}", js_string(sample_rate));
    }
    for (i, (tag, v)) in tags.iter().enumerate() {
        s.push_str(if i == 0 { "|#" } else { "," });
        s.push_str(tag);
        s.push(':');
        s.push_str(v);
    }
    s.push('\n');
    out.extend_from_slice(s.as_bytes());
}

/// A number as JavaScript's `Number()` reads it back exactly: Rust's shortest round-trip
/// digits (never an exponent), `Infinity`, `NaN`.
fn js_string(v: f64) -> String {
    if v.is_nan() {
        "NaN".to_string()
    } else if v.is_infinite() {
        if v > 0.0 { "Infinity" } else { "-Infinity" }.to_string()
    } else {
        format!("{v}")
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::indexing_slicing)]
    use super::*;

    fn one(line: &str) -> Result<Metric<'_>, StatsdError> {
        let mut v = decode_packet_to_vec(line.as_bytes());
        assert_eq!(v.len(), 1, "{line:?} gave {v:?}");
        v.remove(0)
    }

    fn value(line: &str) -> Value<'_> {
        one(line).unwrap().value
    }

    #[test]
    fn types_as_received() {
        assert_eq!(value("a:1|c"), Value::Counter(1.0));
        assert_eq!(value("a:320|ms"), Value::Timer(320.0));
        assert_eq!(value("a:2|h"), Value::Histogram(2.0));
        assert_eq!(value("a:2|d"), Value::Distribution(2.0));
        assert_eq!(value("a:333|g"), Value::Gauge(333.0));
        assert_eq!(value("a:-10|g"), Value::GaugeDelta(-10.0));
        assert_eq!(value("a:+4|g"), Value::GaugeDelta(4.0));
        assert_eq!(value("a: -4|g"), Value::Gauge(-4.0), "the sign must come first");
        assert_eq!(value("a:765|s"), Value::Set("765".into()));
        assert_eq!(value("a:foo|s"), Value::Set("foo".into()));
        assert_eq!(value("a:|s"), Value::Set("0".into()));
        assert_eq!(value("a:3|kv"), Value::Other { kind: "kv".into(), value: 3.0 });
        assert_eq!(value("a:3|"), Value::Other { kind: "".into(), value: 3.0 });
        assert_eq!(value("a:3| ms "), Value::Timer(3.0));
        assert_eq!(value("a:3|C").reference_kind(), Kind::Counter);
        assert_eq!(value("a:3|h").reference_kind(), Kind::Counter);
    }

    #[test]
    fn values_are_javascript_numbers() {
        assert_eq!(value("a:1e3|c"), Value::Counter(1000.0));
        assert_eq!(value("a:0x10|c"), Value::Counter(16.0));
        assert_eq!(value("a: 5|c"), Value::Counter(5.0));
        assert_eq!(value("a: |c"), Value::Counter(0.0));
        assert_eq!(value("a:Infinity|g"), Value::Gauge(f64::INFINITY));
        assert_eq!(value("a:-0|ms"), Value::Timer(-0.0));
        for bad in ["a:|c", "a:NaN|c", "a:1_0|g", "a:abc|ms", "a:inf|c", "a:\u{ff}|c"] {
            assert!(matches!(one(bad), Err(StatsdError::BadValue { .. })), "{bad}");
        }
        assert!(matches!(one("a:-1|ms"), Err(StatsdError::NegativeTimer { .. })));
        assert!(matches!(one("a:-0.5|ms"), Err(StatsdError::NegativeTimer { .. })));
    }

    #[test]
    fn sample_rates() {
        let rate = |l: &str| one(l).map(|m| m.sample_rate());
        assert_eq!(rate("a:1|c|@0.1"), Ok(0.1));
        assert_eq!(rate("a:1|c|@.5"), Ok(0.5));
        assert_eq!(rate("a:1|c|@2e-1"), Ok(0.2));
        assert_eq!(rate("a:1|c|@0"), Ok(0.0));
        assert_eq!(rate("a:1|c|@1|junk"), Ok(1.0));
        assert_eq!(rate("a:1|g|@0.5"), Ok(0.5));
        for bad in
            ["a:1|c|", "a:1|c|@", "a:1|c|@-1", "a:1|c|0.5", "a:1|c|@x", "a:1|c|@+1", "a:1|c|@ 1"]
        {
            assert!(matches!(one(bad), Err(StatsdError::BadSampleRate { .. })), "{bad}");
        }
        // A bad rate is reported even when the value is bad too (the reference checks it first).
        assert!(matches!(one("a:x|c|@y"), Err(StatsdError::BadSampleRate { .. })));
    }

    #[test]
    fn missing_types() {
        assert_eq!(one("gorets"), Err(StatsdError::NoType { line: 1, part: 1 }));
        assert_eq!(one("gorets:1"), Err(StatsdError::NoType { line: 1, part: 1 }));
        assert_eq!(one("gorets:"), Err(StatsdError::NoType { line: 1, part: 1 }));
    }

    #[test]
    fn several_parts_per_line() {
        let v = decode_packet_to_vec(b"a:1|c:2|ms:x:5|g");
        assert_eq!(v.len(), 4);
        assert_eq!(v[0].as_ref().unwrap().value, Value::Counter(1.0));
        assert_eq!(v[1].as_ref().unwrap().value, Value::Timer(2.0));
        assert_eq!(v[2], Err(StatsdError::NoType { line: 1, part: 3 }));
        assert_eq!(v[3].as_ref().unwrap().value, Value::Gauge(5.0));
    }

    #[test]
    fn keys_are_sanitised() {
        let name = |l: &'static str| one(l).unwrap().name.into_owned();
        assert_eq!(name("a b\t\tc:1|c"), "a_b_c");
        assert_eq!(name("a/b:1|c"), "a-b");
        assert_eq!(name("a#b$c(d):1|c"), "abcd");
        assert_eq!(name("héllo\u{3000}wörld:1|c"), "hllo_wrld");
        assert_eq!(name("a \u{e9} b:1|c"), "a__b");
        let raw = decode_packet_to_vec(b"a\xffb:1|c");
        assert_eq!(raw[0].as_ref().unwrap().name(), "ab");
        assert!(matches!(one("gorets:1|c").unwrap().name, Cow::Borrowed(_)));
    }

    #[test]
    fn unusable_names_are_refused() {
        assert!(matches!(one(":1|c"), Err(StatsdError::Name { error: NameError::Empty, .. })));
        assert!(matches!(
            one("a..b:1|c"),
            Err(StatsdError::Name { error: NameError::EmptyComponent { index: 1 }, .. })
        ));
        assert!(matches!(one("$$:1|c"), Err(StatsdError::Name { .. })));
        assert!(matches!(one(";a=b:1|c"), Err(StatsdError::Name { .. })));
    }

    #[test]
    fn dogstatsd_tags_become_graphite_tags() {
        let name = |l: &'static str| one(l).unwrap().name.into_owned();
        assert_eq!(name("a:1|c|#env:prod,host:web01"), "a;env=prod;host=web01");
        assert_eq!(name("a:1|c|#z:1,a:2"), "a;a=2;z=1");
        assert_eq!(name("a:1|c|@0.5|#host:web/01"), "a;host=web-01");
        assert_eq!(name("a:1|c|#k:v:w"), "a;k=vw");
        assert_eq!(name("a:1|c|#k=v"), "a;k=v");
        assert_eq!(name("a;x=1:1|c|#y:2"), "a;x=1;y=2");
        assert_eq!(name("a:1|c|#"), "a");
        let m = one("a:1|c|#env:prod|@0.5|c:abc123|T1656581400").unwrap();
        assert_eq!((m.name(), m.sample_rate()), ("a;env=prod", 0.5));
        let m = one("a:1|c|@0.25|#env:prod|@0.5").unwrap();
        assert_eq!(m.sample_rate(), 0.25, "the part's own rate wins");
    }

    #[test]
    fn tags_graphite_cannot_hold_are_dropped_and_counted() {
        let mut names = Vec::new();
        let stats = decode_packet(b"a:1|c|#env,:x,k:,name:foo,ok:1", |r| {
            names.push(r.unwrap().name().to_string())
        });
        assert_eq!(names, ["a;ok=1"]);
        assert_eq!(stats.dropped_tags, 4);
    }

    #[test]
    fn packets() {
        let mut lines = Vec::new();
        let stats = decode_packet(b"a:1|c\r\n\nb:2|c\r\n\r\nbad\nc:3|c", |r| match r {
            Ok(m) => lines.push(m.name().to_string()),
            Err(b) => lines.push(format!("{} {:?}", b.error, String::from_utf8_lossy(b.line))),
        });
        assert_eq!(
            lines,
            ["a", "b", "line 5, part 1: no metric type (expected key:value|type) \"bad\"", "c"]
        );
        assert_eq!(stats, PacketStats { lines: 4, metrics: 3, bad_lines: 1, dropped_tags: 0 });
    }

    #[test]
    fn encodes() {
        let mut out = Vec::new();
        encode(&mut out, "a", &Value::Timer(0.5), 1.0);
        encode(&mut out, "a", &Value::Set("x".into()), 1.0);
        encode(&mut out, "a", &Value::Gauge(-0.0), 1.0);
        encode(&mut out, "a", &Value::GaugeDelta(-0.0), 1.0);
        encode(&mut out, "a", &Value::Counter(f64::INFINITY), 1.0);
        encode(&mut out, "a", &Value::Other { kind: "kv".into(), value: 1e21 }, 1.0);
        assert_eq!(
            String::from_utf8(out).unwrap(),
            "a:0.5|ms\na:x|s\na:0|g\na:-0|g\na:Infinity|c\na:1000000000000000000000|kv\n"
        );
    }
}
