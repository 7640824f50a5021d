//! carbon's cache-query protocol (carbon-cache's port 7002), which graphite-web's CarbonLink
//! uses to read points that are cached but not yet written.
//!
//! Requests and responses are frames ([`FrameDecoder`](crate::pickle::FrameDecoder),
//! [`framed`](crate::pickle::framed)) holding a pickled dict. graphite-web 1.1.8 pickles its
//! requests with `protocol=-1` (5 on Python 3.8 and later, with `FRAME` and `MEMOIZE`; 2 on
//! Python 2); [`Request::decode`] reads any protocol. carbon answers with `pickle.dumps(result,
//! protocol=2)`, and the `encode_*_response` functions write the same bytes:
//!
//! | request | [`Request`] | response | encoder |
//! |---|---|---|---|
//! | `{'type': 'cache-query', 'metric': M}` | [`Request::CacheQuery`] | `{'datapoints': [(ts, value), ...]}` | [`encode_datapoints_response`] |
//! | `{'type': 'cache-query-bulk', 'metrics': [M, ...]}` | [`Request::CacheQueryBulk`] | `{'datapointsByMetric': {M: [(ts, value), ...], ...}}` | [`encode_bulk_response`] |
//! | `{'type': 'get-metadata', 'metric': M, 'key': K}` | [`Request::GetMetadata`] | `{'value': V}` | [`encode_metadata_response`] |
//! | `{'type': 'set-metadata', 'metric': M, 'key': K, 'value': V}` | [`Request::SetMetadata`] | `{'old_value': O, 'new_value': V}` | [`encode_set_metadata_response`] |
//! | any other type | [`Request::Unknown`] | `{'error': 'Invalid request type "x"'}` | [`encode_error_response`], [`invalid_request_type_message`] |
//!
//! carbon's cache holds float timestamps unless `MIN_TIMESTAMP_RESOLUTION` is set, in which
//! case they are ints; the pickle tells the two apart, so the encoders take a [`Timestamps`].
//! Points are listed in the order the cache received them, as carbon lists them.
//!
//! The client side (our render asking real carbon-caches) uses [`Request::encode`] and
//! [`Response::decode`].
//!
//! ```
//! use carbon_proto::Datapoint;
//! use carbon_proto::cache_query::{encode_datapoints_response, Request, Timestamps};
//!
//! // What graphite-web 1.1.8 sends on Python 3: pickle.dumps(request, protocol=-1).
//! let payload = b"\x80\x05\x95)\x00\x00\x00\x00\x00\x00\x00}\x94(\x8c\x04type\x94\x8c\x0bcache-query\x94\x8c\x06metric\x94\x8c\x03a.b\x94u.";
//! let Request::CacheQuery { metric } = Request::decode(payload)? else { unreachable!() };
//! assert_eq!(metric, "a.b");
//!
//! let mut response = Vec::new();
//! encode_datapoints_response(&mut response, &[Datapoint::new(60.0, 1.5)], Timestamps::Float);
//! assert_eq!(response, b"\x80\x02}q\x00X\n\x00\x00\x00datapointsq\x01]q\x02G@N\x00\x00\x00\x00\x00\x00G?\xf8\x00\x00\x00\x00\x00\x00\x86q\x03as.");
//! # Ok::<(), carbon_proto::cache_query::CacheQueryError>(())
//! ```
//!
//! # Where this differs from carbon 1.1.7
//!
//! - A request that is not a dict, lacks a key, or has a key of the wrong type is a
//!   [`CacheQueryError`]; in carbon the exception kills the connection, and graphite-web then
//!   avoids that carbon for `CARBONLINK_RETRY_DELAY` (15 s). A server does better to answer
//!   with [`encode_error_response`]: graphite-web logs the error and goes on.
//! - A metric name sent as `bytes` is read as UTF-8 (carbon would look it up as bytes and find
//!   nothing).
//! - carbon accepts requests of up to 1 GiB; [`MAX_REQUEST_BYTES`] is smaller (see there).
#![warn(clippy::indexing_slicing)]

use std::collections::HashSet;
use std::fmt::Write as _;

use crate::metric::Datapoint;
use crate::pickle::{BigInt, PickleError, Pickler, Unpickler, UnpicklerBuilder, Value, ValueRef};

/// carbon's limit on a request (`CacheManagementHandler.MAX_LENGTH`, 1 GiB).
pub const CARBON_MAX_REQUEST_BYTES: usize = 1 << 30;

/// Our default limit on a request frame: 16 MiB, a bulk query for about 200,000 metrics.
/// carbon's 1 GiB would let each connection hold a gigabyte; graphite-web's requests are a few
/// hundred kilobytes at most.
pub const MAX_REQUEST_BYTES: usize = 16 << 20;

/// Our default limit on a response frame read from a carbon-cache: 256 MiB (graphite-web has
/// none).
pub const MAX_RESPONSE_BYTES: usize = 256 << 20;

/// A bad cache-query request or response.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum CacheQueryError {
    /// The payload does not unpickle.
    #[error(transparent)]
    Pickle(#[from] PickleError),
    /// The payload is not a dict.
    #[error("expected a dict, found a {found}")]
    NotADict {
        /// Python's name of what it found.
        found: &'static str,
    },
    /// A key the request needs is missing (carbon's `KeyError`).
    #[error("request has no {key:?} key")]
    MissingKey {
        /// The key.
        key: &'static str,
    },
    /// A key holds the wrong type.
    #[error("{key:?} is a {found}, expected {expected}")]
    WrongType {
        /// The key.
        key: &'static str,
        /// What it should hold.
        expected: &'static str,
        /// Python's name of what it holds.
        found: &'static str,
    },
    /// A name sent as `bytes` that is not UTF-8.
    #[error("{key:?} is bytes that are not UTF-8 (invalid byte at {at})")]
    NotUtf8 {
        /// The key.
        key: &'static str,
        /// Offset of the first invalid byte.
        at: usize,
    },
    /// A response with none of the keys carbon answers with.
    #[error("response has none of the expected keys (it has {keys:?})")]
    UnknownResponse {
        /// Its `str` keys (the first 8).
        keys: Vec<String>,
    },
    /// A response datapoint that is not a `(timestamp, value)` pair of numbers.
    #[error("datapoint {index}{} is not a (timestamp, value) pair of numbers", metric_note(.metric))]
    BadDatapoint {
        /// The metric, in a bulk response.
        metric: Option<String>,
        /// Its position in the metric's list.
        index: usize,
    },
}

fn metric_note(metric: &Option<String>) -> String {
    metric.as_ref().map(|m| format!(" of {m:?}")).unwrap_or_default()
}

/// A request, as carbon's `CacheManagementHandler` reads it.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub enum Request {
    /// `cache-query`: the cached points of one metric.
    CacheQuery {
        /// The metric.
        metric: String,
    },
    /// `cache-query-bulk`: the cached points of several metrics.
    CacheQueryBulk {
        /// The metrics, in request order (repeats included).
        metrics: Vec<String>,
    },
    /// `get-metadata`: carbon answers `{'value': ...}` for the key `aggregationMethod`, and an
    /// error for any other key.
    GetMetadata {
        /// The metric.
        metric: String,
        /// The metadata key.
        key: String,
    },
    /// `set-metadata`.
    SetMetadata {
        /// The metric.
        metric: String,
        /// The metadata key.
        key: String,
        /// The new value (carbon's database checks it).
        value: Value,
    },
    /// Any other `type`: carbon answers `{'error': 'Invalid request type "<type>"'}` (see
    /// [`invalid_request_type_message`]).
    Unknown {
        /// The `type` value.
        request_type: Value,
    },
}

/// A `str` value (or `bytes`, read as UTF-8).
fn text_of(v: ValueRef<'_>, key: &'static str) -> Result<String, CacheQueryError> {
    if let Some(s) = v.as_str() {
        return Ok(s.to_owned());
    }
    if let Some(b) = v.as_bytes() {
        return std::str::from_utf8(b)
            .map(str::to_owned)
            .map_err(|e| CacheQueryError::NotUtf8 { key, at: e.valid_up_to() });
    }
    Err(CacheQueryError::WrongType { key, expected: "a str", found: v.type_name() })
}

fn required<'a>(dict: ValueRef<'a>, key: &'static str) -> Result<ValueRef<'a>, CacheQueryError> {
    dict.get(key).ok_or(CacheQueryError::MissingKey { key })
}

fn dict_of(top: ValueRef<'_>) -> Result<ValueRef<'_>, CacheQueryError> {
    if top.entries().is_none() {
        return Err(CacheQueryError::NotADict { found: top.type_name() });
    }
    Ok(top)
}

impl Request {
    /// Reads a request payload (any pickle protocol) with a fresh [`Unpickler`].
    ///
    /// # Errors
    ///
    /// A [`CacheQueryError`] (see [`decode_with`](Self::decode_with)).
    pub fn decode(payload: &[u8]) -> Result<Request, CacheQueryError> {
        Request::decode_with(&mut Unpickler::new(), payload)
    }

    /// Reads a request payload, reusing `unpickler`'s buffers and limits.
    ///
    /// # Errors
    ///
    /// [`CacheQueryError::Pickle`] if it does not unpickle, [`CacheQueryError::NotADict`],
    /// [`CacheQueryError::MissingKey`] or [`CacheQueryError::WrongType`] if its keys are not
    /// what its type needs.
    pub fn decode_with(
        unpickler: &mut Unpickler,
        payload: &[u8],
    ) -> Result<Request, CacheQueryError> {
        let dict = dict_of(unpickler.loads_ref(payload)?)?;
        let request_type = required(dict, "type")?;
        let metric = || text_of(required(dict, "metric")?, "metric");
        let key = || text_of(required(dict, "key")?, "key");
        Ok(match request_type.as_str() {
            Some("cache-query") => Request::CacheQuery { metric: metric()? },
            Some("cache-query-bulk") => {
                let list = required(dict, "metrics")?;
                let Some(items) = list.seq() else {
                    return Err(CacheQueryError::WrongType {
                        key: "metrics",
                        expected: "a list of str",
                        found: list.type_name(),
                    });
                };
                let metrics =
                    items.map(|m| text_of(m, "metrics")).collect::<Result<Vec<_>, _>>()?;
                Request::CacheQueryBulk { metrics }
            }
            Some("get-metadata") => Request::GetMetadata { metric: metric()?, key: key()? },
            Some("set-metadata") => Request::SetMetadata {
                metric: metric()?,
                key: key()?,
                value: required(dict, "value")?.to_value()?,
            },
            _ => Request::Unknown { request_type: request_type.to_value()? },
        })
    }

    /// Appends the request's pickle (protocol 2, which every carbon reads) to `out`, with
    /// graphite-web's key order.
    pub fn encode(&self, out: &mut Vec<u8>) {
        let mut p = Pickler::new(out);
        p.empty_dict();
        let mut entries: Vec<(&str, Entry<'_>)> = Vec::with_capacity(4);
        match self {
            Request::CacheQuery { metric } => {
                entries.push(("type", Entry::Str("cache-query")));
                entries.push(("metric", Entry::Str(metric)));
            }
            Request::CacheQueryBulk { metrics } => {
                entries.push(("type", Entry::Str("cache-query-bulk")));
                entries.push(("metrics", Entry::Strs(metrics)));
            }
            Request::GetMetadata { metric, key } => {
                entries.push(("type", Entry::Str("get-metadata")));
                entries.push(("metric", Entry::Str(metric)));
                entries.push(("key", Entry::Str(key)));
            }
            Request::SetMetadata { metric, key, value } => {
                entries.push(("type", Entry::Str("set-metadata")));
                entries.push(("metric", Entry::Str(metric)));
                entries.push(("key", Entry::Str(key)));
                entries.push(("value", Entry::Value(value)));
            }
            Request::Unknown { request_type } => entries.push(("type", Entry::Value(request_type))),
        }
        p.dict_items(entries, |p, (k, v)| {
            p.str(k);
            match v {
                Entry::Str(s) => p.str(s),
                Entry::Strs(list) => {
                    p.empty_list();
                    p.list_items(list, |p, s| p.str(s));
                }
                Entry::Value(v) => p.value(v),
            }
        });
        p.finish();
    }
}

/// A request dict's value, for [`Request::encode`].
enum Entry<'a> {
    Str(&'a str),
    Strs(&'a [String]),
    Value(&'a Value),
}

/// How the cache holds timestamps, which decides how they are pickled.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub enum Timestamps {
    /// Floats: carbon's code default (`MIN_TIMESTAMP_RESOLUTION = 0`).
    #[default]
    Float,
    /// Ints (`int(ts)`, truncated): carbon with `MIN_TIMESTAMP_RESOLUTION` set (the shipped
    /// carbon.conf sets 1). A timestamp that is not finite, or beyond the range of an `i64`,
    /// stays a float.
    Int,
}

fn timestamp(p: &mut Pickler<'_>, ts: f64, kind: Timestamps) {
    match kind {
        Timestamps::Int if ts.is_finite() && ts.abs() < 9.2e18 => p.int(ts.trunc() as i64),
        _ => p.float(ts),
    }
}

/// Writes `[(ts, value), ...]`.
fn points_list(p: &mut Pickler<'_>, points: &[Datapoint], kind: Timestamps) {
    p.empty_list();
    p.list_items(points, |p, d| {
        timestamp(p, d.timestamp, kind);
        p.float(d.value);
        p.tuple_of(2);
    });
}

/// Appends carbon's answer to `cache-query`, `{'datapoints': [(ts, value), ...]}`, for the
/// cached `points` of the metric (in the order the cache received them; none is `[]`).
pub fn encode_datapoints_response(out: &mut Vec<u8>, points: &[Datapoint], kind: Timestamps) {
    let mut p = Pickler::new(out);
    p.empty_dict();
    p.dict_items([()], |p, ()| {
        p.str("datapoints");
        points_list(p, points, kind);
    });
    p.finish();
}

/// Appends carbon's answer to `cache-query-bulk`, `{'datapointsByMetric': {M: [(ts, value),
/// ...], ...}}`, one entry per requested metric in request order (a metric not in the cache
/// with no points). A metric requested twice appears once, at its first position, as in
/// carbon's dict.
pub fn encode_bulk_response<'a, I>(out: &mut Vec<u8>, metrics: I, kind: Timestamps)
where
    I: IntoIterator<Item = (&'a str, &'a [Datapoint])>,
{
    let mut seen = HashSet::new();
    let unique: Vec<(&str, &[Datapoint])> =
        metrics.into_iter().filter(|(m, _)| seen.insert(*m)).collect();
    let mut p = Pickler::new(out);
    p.empty_dict();
    p.dict_items([()], |p, ()| {
        p.str("datapointsByMetric");
        p.empty_dict();
        p.dict_items(&unique, |p, &(metric, points)| {
            p.str(metric);
            points_list(p, points, kind);
        });
    });
    p.finish();
}

/// Appends carbon's answer to `get-metadata`, `{'value': value}` (for `aggregationMethod`, the
/// method's name as a `str`).
pub fn encode_metadata_response(out: &mut Vec<u8>, value: &Value) {
    let mut p = Pickler::new(out);
    p.empty_dict();
    p.dict_items([()], |p, ()| {
        p.str("value");
        p.value(value);
    });
    p.finish();
}

/// Appends carbon's answer to `set-metadata`, `{'old_value': old_value, 'new_value':
/// new_value}`.
pub fn encode_set_metadata_response(out: &mut Vec<u8>, old_value: &Value, new_value: &Value) {
    let mut p = Pickler::new(out);
    p.empty_dict();
    p.dict_items([("old_value", old_value), ("new_value", new_value)], |p, (k, v)| {
        p.str(k);
        p.value(v);
    });
    p.finish();
}

/// Appends carbon's error answer, `{'error': message}`. carbon's message is a Python
/// traceback for a failed metadata call, and [`invalid_request_type_message`] for an unknown
/// request type.
pub fn encode_error_response(out: &mut Vec<u8>, message: &str) {
    let mut p = Pickler::new(out);
    p.empty_dict();
    p.dict_items([()], |p, ()| {
        p.str("error");
        p.str(message);
    });
    p.finish();
}

/// carbon's message for an unknown request type: `Invalid request type "<str(type)>"`.
/// Python's `str()` is reproduced exactly for `str`, `None`, bools, ints and floats, and
/// closely for containers and `bytes`.
///
/// ```
/// use carbon_proto::cache_query::invalid_request_type_message;
/// use carbon_proto::pickle::Value;
/// assert_eq!(invalid_request_type_message(&Value::str("x")), r#"Invalid request type "x""#);
/// assert_eq!(invalid_request_type_message(&Value::Float(1e16)), r#"Invalid request type "1e+16""#);
/// ```
pub fn invalid_request_type_message(request_type: &Value) -> String {
    let mut s = String::from("Invalid request type \"");
    match request_type {
        Value::Str(t) => s.push_str(t),
        other => py_repr(&mut s, other),
    }
    s.push('"');
    s
}

/// Python's `repr()` (which is `str()` for every type here but `str`).
fn py_repr(out: &mut String, v: &Value) {
    match v {
        Value::None => out.push_str("None"),
        Value::Bool(true) => out.push_str("True"),
        Value::Bool(false) => out.push_str("False"),
        Value::Int(i) => {
            let _ = write!(out, "{i}");
        }
        Value::BigInt(b) => out.push_str(&big_decimal(b)),
        Value::Float(f) => out.push_str(&py_float_repr(*f)),
        Value::Str(s) => str_repr(out, s),
        Value::Bytes(b) => bytes_repr(out, b),
        Value::List(items) => {
            out.push('[');
            seq_repr(out, items);
            out.push(']');
        }
        Value::Tuple(items) => {
            out.push('(');
            seq_repr(out, items);
            if items.len() == 1 {
                out.push(',');
            }
            out.push(')');
        }
        Value::Dict(entries) => {
            out.push('{');
            for (i, (k, v)) in entries.iter().enumerate() {
                if i > 0 {
                    out.push_str(", ");
                }
                py_repr(out, k);
                out.push_str(": ");
                py_repr(out, v);
            }
            out.push('}');
        }
    }
}

fn seq_repr(out: &mut String, items: &[Value]) {
    for (i, v) in items.iter().enumerate() {
        if i > 0 {
            out.push_str(", ");
        }
        py_repr(out, v);
    }
}

fn str_repr(out: &mut String, s: &str) {
    let quote = if s.contains('\'') && !s.contains('"') { '"' } else { '\'' };
    out.push(quote);
    for c in s.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            c if c == quote => {
                out.push('\\');
                out.push(c);
            }
            c if (c as u32) < 0x20 || (0x7f..0xa1).contains(&(c as u32)) => {
                let _ = write!(out, "\\x{:02x}", c as u32);
            }
            c => out.push(c),
        }
    }
    out.push(quote);
}

fn bytes_repr(out: &mut String, b: &[u8]) {
    let quote = if b.contains(&b'\'') && !b.contains(&b'"') { b'"' } else { b'\'' };
    out.push('b');
    out.push(char::from(quote));
    for &c in b {
        match c {
            b'\\' => out.push_str("\\\\"),
            b'\n' => out.push_str("\\n"),
            b'\r' => out.push_str("\\r"),
            b'\t' => out.push_str("\\t"),
            c if c == quote => {
                out.push('\\');
                out.push(char::from(c));
            }
            0x20..=0x7e => out.push(char::from(c)),
            c => {
                let _ = write!(out, "\\x{c:02x}");
            }
        }
    }
    out.push(char::from(quote));
}

/// Python's `repr(float)`: the shortest digits that round-trip, in fixed notation for
/// exponents from -4 to 15 and scientific notation (`1e+16`, `1.5e-05`) otherwise.
fn py_float_repr(f: f64) -> String {
    if f.is_nan() {
        return "nan".into();
    }
    if f.is_infinite() {
        return if f > 0.0 { "inf".into() } else { "-inf".into() };
    }
    // `{:e}` gives the shortest round-trip digits: "-1.2345e-7".
    let sci = format!("{f:e}");
    let (mantissa, exp) = sci.split_once('e').unwrap_or((&sci, "0"));
    let exp: i32 = exp.parse().unwrap_or(0);
    let (sign, mantissa) = match mantissa.strip_prefix('-') {
        Some(m) => ("-", m),
        None => ("", mantissa),
    };
    let digits: String = mantissa.chars().filter(char::is_ascii_digit).collect();
    let mut out = String::from(sign);
    if (-4..16).contains(&exp) {
        let point = exp + 1; // digits before the point
        if point <= 0 {
            out.push_str("0.");
            out.extend(std::iter::repeat_n('0', point.unsigned_abs() as usize));
            out.push_str(&digits);
        } else {
            let point = point as usize;
            if digits.len() <= point {
                out.push_str(&digits);
                out.extend(std::iter::repeat_n('0', point - digits.len()));
                out.push_str(".0");
            } else {
                let (int, frac) = digits.split_at(point);
                out.push_str(int);
                out.push('.');
                out.push_str(frac);
            }
        }
    } else {
        let (first, rest) = digits.split_at(1.min(digits.len()));
        out.push_str(first);
        if !rest.is_empty() {
            out.push('.');
            out.push_str(rest);
        }
        let _ = write!(out, "e{}{:02}", if exp < 0 { '-' } else { '+' }, exp.unsigned_abs());
    }
    out
}

/// A big int in decimal (Python refuses over 4300 digits; so do we, with a placeholder).
fn big_decimal(b: &BigInt) -> String {
    let negative = b.is_negative();
    let mut mag: Vec<u8> = b.as_signed_bytes_le().to_vec();
    if negative {
        let mut carry = true;
        for x in &mut mag {
            let (v, c) = (!*x).overflowing_add(u8::from(carry));
            *x = v;
            carry = c;
        }
    }
    if mag.len() > 1785 {
        return "<int of more than 4300 digits>".into();
    }
    // Repeated division by 10^9, most significant byte first.
    let mut be: Vec<u32> = mag.iter().rev().map(|&x| u32::from(x)).collect();
    let mut chunks: Vec<u32> = Vec::new();
    while be.iter().any(|&x| x != 0) {
        let mut rem: u64 = 0;
        for x in &mut be {
            let cur = (rem << 8) | u64::from(*x);
            *x = (cur / 1_000_000_000) as u32; // < 256
            rem = cur % 1_000_000_000;
        }
        chunks.push(rem as u32);
    }
    let mut s = String::from(if negative { "-" } else { "" });
    match chunks.split_last() {
        None => s.push('0'),
        Some((top, rest)) => {
            let _ = write!(s, "{top}");
            for c in rest.iter().rev() {
                let _ = write!(s, "{c:09}");
            }
        }
    }
    s
}

/// A response, as graphite-web's CarbonLink reads it.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub enum Response {
    /// `{'datapoints': [...]}`.
    Datapoints(Vec<Datapoint>),
    /// `{'datapointsByMetric': {...}}`, in the response's order.
    DatapointsByMetric(Vec<(String, Vec<Datapoint>)>),
    /// `{'value': ...}`.
    Metadata {
        /// The value.
        value: Value,
    },
    /// `{'old_value': ..., 'new_value': ...}`.
    MetadataChanged {
        /// The value before.
        old_value: Value,
        /// The value after.
        new_value: Value,
    },
    /// `{'error': ...}`: graphite-web raises `CarbonLinkRequestError` with it.
    Error {
        /// The message (Python's `str()` of the value, if it is not a `str`).
        message: String,
    },
}

fn number(v: ValueRef<'_>) -> Option<f64> {
    match (v.as_f64(), v.as_i64(), v.as_bool(), v.as_big_int()) {
        (Some(f), ..) => Some(f),
        (_, Some(i), ..) => Some(i as f64),
        (_, _, Some(b), _) => Some(f64::from(u8::from(b))),
        (_, _, _, Some(b)) => b.to_f64(),
        _ => None,
    }
}

fn points_of(v: ValueRef<'_>, metric: Option<&str>) -> Result<Vec<Datapoint>, CacheQueryError> {
    let bad = |index| CacheQueryError::BadDatapoint { metric: metric.map(str::to_owned), index };
    let Some(items) = v.seq() else {
        return Err(CacheQueryError::WrongType {
            key: if metric.is_some() { "datapointsByMetric" } else { "datapoints" },
            expected: "a list of (timestamp, value)",
            found: v.type_name(),
        });
    };
    let mut out = Vec::with_capacity(items.len());
    for (index, item) in items.enumerate() {
        let mut pair = item.seq().filter(|s| s.len() == 2).ok_or_else(|| bad(index))?;
        let (Some(ts), Some(value)) = (pair.next(), pair.next()) else {
            return Err(bad(index));
        };
        let (Some(ts), Some(value)) = (number(ts), number(value)) else {
            return Err(bad(index));
        };
        out.push(Datapoint::new(ts, value));
    }
    Ok(out)
}

impl Response {
    /// Reads a response payload with a fresh [`Unpickler`] whose value and memo budgets are
    /// at least the payload's length (a bulk response has about three values and one memo
    /// entry per point; a pickle cannot push more values or store more entries than it has
    /// bytes), so only the frame limit ([`MAX_RESPONSE_BYTES`]) bounds it.
    ///
    /// # Errors
    ///
    /// A [`CacheQueryError`] (see [`decode_with`](Self::decode_with)).
    pub fn decode(payload: &[u8]) -> Result<Response, CacheQueryError> {
        let mut unpickler = UnpicklerBuilder::new()
            .max_values(payload.len().max(crate::pickle::DEFAULT_MAX_VALUES))
            .max_memo(payload.len().max(crate::pickle::DEFAULT_MAX_MEMO))
            .build();
        Response::decode_with(&mut unpickler, payload)
    }

    /// Reads a response payload as graphite-web does: `error` first, then `datapoints`,
    /// `datapointsByMetric`, `value`, and `old_value` with `new_value`.
    ///
    /// # Errors
    ///
    /// [`CacheQueryError::Pickle`] if it does not unpickle, [`CacheQueryError::NotADict`],
    /// [`CacheQueryError::UnknownResponse`], [`CacheQueryError::WrongType`] or
    /// [`CacheQueryError::BadDatapoint`] if it is not what carbon sends.
    pub fn decode_with(
        unpickler: &mut Unpickler,
        payload: &[u8],
    ) -> Result<Response, CacheQueryError> {
        let dict = dict_of(unpickler.loads_ref(payload)?)?;
        if let Some(e) = dict.get("error") {
            let message = match e.as_str() {
                Some(s) => s.to_owned(),
                None => {
                    let mut s = String::new();
                    py_repr(&mut s, &e.to_value()?);
                    s
                }
            };
            return Ok(Response::Error { message });
        }
        if let Some(points) = dict.get("datapoints") {
            return Ok(Response::Datapoints(points_of(points, None)?));
        }
        if let Some(by_metric) = dict.get("datapointsByMetric") {
            let Some(entries) = by_metric.entries() else {
                return Err(CacheQueryError::WrongType {
                    key: "datapointsByMetric",
                    expected: "a dict",
                    found: by_metric.type_name(),
                });
            };
            let mut out = Vec::with_capacity(entries.len());
            for (metric, points) in entries {
                let metric = text_of(metric, "datapointsByMetric")?;
                let points = points_of(points, Some(&metric))?;
                out.push((metric, points));
            }
            return Ok(Response::DatapointsByMetric(out));
        }
        if let Some(value) = dict.get("value") {
            return Ok(Response::Metadata { value: value.to_value()? });
        }
        if let (Some(old), Some(new)) = (dict.get("old_value"), dict.get("new_value")) {
            return Ok(Response::MetadataChanged {
                old_value: old.to_value()?,
                new_value: new.to_value()?,
            });
        }
        let keys = dict
            .entries()
            .into_iter()
            .flatten()
            .filter_map(|(k, _)| k.as_str().map(str::to_owned))
            .take(8)
            .collect();
        Err(CacheQueryError::UnknownResponse { keys })
    }

    /// Appends the response as carbon writes it (see the `encode_*_response` functions).
    pub fn encode(&self, out: &mut Vec<u8>, kind: Timestamps) {
        match self {
            Response::Datapoints(points) => encode_datapoints_response(out, points, kind),
            Response::DatapointsByMetric(by_metric) => encode_bulk_response(
                out,
                by_metric.iter().map(|(m, p)| (m.as_str(), p.as_slice())),
                kind,
            ),
            Response::Metadata { value } => encode_metadata_response(out, value),
            Response::MetadataChanged { old_value, new_value } => {
                encode_set_metadata_response(out, old_value, new_value);
            }
            Response::Error { message } => encode_error_response(out, message),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn floats_repr_like_python() {
        for (f, s) in [
            (1.5, "1.5"),
            (0.0, "0.0"),
            (-0.0, "-0.0"),
            (1e16, "1e+16"),
            (1e15, "1000000000000000.0"),
            (123456789.0, "123456789.0"),
            (0.0001, "0.0001"),
            (0.00001, "1e-05"),
            (1.5e-7, "1.5e-07"),
            (1.7976931348623157e308, "1.7976931348623157e+308"),
            (0.1 + 0.2, "0.30000000000000004"),
            (f64::INFINITY, "inf"),
            (5e-324, "5e-324"),
        ] {
            assert_eq!(py_float_repr(f), s);
        }
    }

    #[test]
    fn big_ints_print_in_decimal() {
        let b = BigInt::from_signed_bytes_le(&[0, 0, 0, 0, 0, 0, 0, 0, 0x40]);
        assert_eq!(big_decimal(&b), "1180591620717411303424");
        let b = BigInt::from_signed_bytes_le(&[0, 0, 0, 0, 0, 0, 0, 0, 0xc0]);
        assert_eq!(big_decimal(&b), "-1180591620717411303424");
    }

    #[test]
    fn unknown_types_are_named_like_carbon() {
        let m = |v: Value| invalid_request_type_message(&v);
        assert_eq!(m(Value::Int(5)), r#"Invalid request type "5""#);
        assert_eq!(m(Value::None), r#"Invalid request type "None""#);
        assert_eq!(
            m(Value::List(vec![
                Value::str("a'b"),
                Value::Bytes(bytes::Bytes::from_static(b"\x00"))
            ])),
            r#"Invalid request type "["a'b", b'\x00']""#
        );
        assert_eq!(m(Value::Tuple(vec![Value::Bool(true)])), r#"Invalid request type "(True,)""#);
    }
}
