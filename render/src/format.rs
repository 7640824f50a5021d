//! The output formats of `/render` (graphite-reference §3.3), byte for byte as graphite-web
//! 1.1.8 writes them, and the Python-compatible JSON writer every endpoint shares.
//!
//! Each writer appends to one `Vec<u8>` (no intermediate strings per point), so a response is
//! built in a single buffer that the HTTP layer hands over as is.
//!
//! - [`write_json`]: `[{"target", "tags", "datapoints": [[v, t], ...]}]` with graphite-web's
//!   textual `NaN,` -> `null,` and `Infinity,` -> `1e9999,` replacement;
//! - [`write_csv`], [`write_raw`], [`write_pickle`], [`write_msgpack`], [`write_dygraph`],
//!   [`write_rickshaw`];
//! - [`apply_max_data_points`]: the JSON format's `maxDataPoints` consolidation, nudge quirk
//!   included.
//!
//! Values are printed with Python's `repr` of a float ([`crate::pyfmt::float_repr`]): the
//! series model keeps every value as an `f64`, so an integer a graphite-web function would
//! return as a Python `int` (`countSeries`) prints as `3.0` here.

use std::borrow::Cow;

use crate::pyfmt::float_repr;
use crate::series::Series;

/// A `/render` output format (`format=`, or `rawData`/`pickle` present).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Format {
    /// `json`
    Json,
    /// `csv`
    Csv,
    /// `raw` (or `rawData` present)
    Raw,
    /// `pickle` (or `pickle` present)
    Pickle,
    /// `msgpack`
    Msgpack,
    /// `dygraph`
    Dygraph,
    /// `rickshaw`
    Rickshaw,
    /// An image: `png`, `svg`, `pdf`, or any other value (graphite-web draws a PNG then).
    Image(ImageFormat),
}

/// The image formats, drawn by [`crate::image`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ImageFormat {
    /// `png`, and the default for an absent or unknown `format`.
    Png,
    /// `svg`
    Svg,
    /// `pdf`
    Pdf,
}

impl ImageFormat {
    /// The format's name.
    pub fn name(self) -> &'static str {
        match self {
            ImageFormat::Png => "png",
            ImageFormat::Svg => "svg",
            ImageFormat::Pdf => "pdf",
        }
    }
}

impl Format {
    /// graphite-web's choice: a known data format by name, else an image (`svg`, `pdf`, and
    /// PNG for anything else, absent included).
    pub fn parse(name: Option<&str>) -> Format {
        match name {
            Some("json") => Format::Json,
            Some("csv") => Format::Csv,
            Some("raw") => Format::Raw,
            Some("pickle") => Format::Pickle,
            Some("msgpack") => Format::Msgpack,
            Some("dygraph") => Format::Dygraph,
            Some("rickshaw") => Format::Rickshaw,
            Some("svg") => Format::Image(ImageFormat::Svg),
            Some("pdf") => Format::Image(ImageFormat::Pdf),
            _ => Format::Image(ImageFormat::Png),
        }
    }

    /// The `Content-Type` graphite-web sends (JSONP aside).
    pub fn content_type(self) -> &'static str {
        match self {
            Format::Json | Format::Dygraph | Format::Rickshaw => "application/json",
            Format::Csv => "text/csv",
            Format::Raw => "text/plain",
            Format::Pickle => "application/pickle",
            Format::Msgpack => "application/x-msgpack",
            Format::Image(ImageFormat::Png) => "image/png",
            Format::Image(ImageFormat::Svg) => "image/svg+xml",
            Format::Image(ImageFormat::Pdf) => "application/x-pdf",
        }
    }
}

// ---------------------------------------------------------------------------------------------
// JSON as Python's `json.dumps` writes it.

/// A streaming JSON writer with Python's `json.dumps` layout: `", "` and `": "` separators
/// when compact, `indent` spaces per level and `","` at line ends when pretty; empty
/// containers stay `[]`/`{}`. With `ensure_ascii` (Python's default) every non-ASCII
/// character is a lowercase `\uXXXX` escape (surrogate pairs beyond the BMP).
#[derive(Debug)]
pub struct JsonWriter<'a> {
    out: &'a mut Vec<u8>,
    indent: Option<usize>,
    ensure_ascii: bool,
    /// Items written so far in each open container.
    counts: Vec<usize>,
    /// A key was just written: the next value follows it directly.
    after_key: bool,
}

impl<'a> JsonWriter<'a> {
    /// A writer appending to `out`; `indent` is `json.dumps`'s `indent` (`None` = compact).
    pub fn new(out: &'a mut Vec<u8>, indent: Option<usize>, ensure_ascii: bool) -> JsonWriter<'a> {
        JsonWriter { out, indent, ensure_ascii, counts: Vec::new(), after_key: false }
    }

    fn newline(&mut self, depth: usize) {
        if let Some(n) = self.indent {
            self.out.push(b'\n');
            self.out.resize(self.out.len() + n * depth, b' ');
        }
    }

    fn before_value(&mut self) {
        if self.after_key {
            self.after_key = false;
            return;
        }
        let depth = self.counts.len();
        if let Some(count) = self.counts.last_mut() {
            if *count > 0 {
                self.out.push(b',');
                if self.indent.is_none() {
                    self.out.push(b' ');
                }
            }
            *count += 1;
            self.newline(depth);
        }
    }

    /// Opens a list.
    pub fn begin_array(&mut self) {
        self.before_value();
        self.out.push(b'[');
        self.counts.push(0);
    }

    /// Closes the innermost list.
    pub fn end_array(&mut self) {
        self.close(b']');
    }

    /// Opens an object.
    pub fn begin_object(&mut self) {
        self.before_value();
        self.out.push(b'{');
        self.counts.push(0);
    }

    /// Closes the innermost object.
    pub fn end_object(&mut self) {
        self.close(b'}');
    }

    fn close(&mut self, bracket: u8) {
        let count = self.counts.pop().unwrap_or(0);
        if count > 0 {
            let depth = self.counts.len();
            self.newline(depth);
        }
        self.out.push(bracket);
    }

    /// Writes an object key; the next value is its value.
    pub fn key(&mut self, key: &str) {
        self.before_value();
        write_json_string(self.out, key, self.ensure_ascii);
        crate::pyfmt::push_small(self.out, b": ");
        self.after_key = true;
    }

    /// `null`
    pub fn null(&mut self) {
        self.raw("null");
    }

    /// `true` / `false`
    pub fn bool(&mut self, b: bool) {
        self.raw(if b { "true" } else { "false" });
    }

    /// An integer.
    pub fn int(&mut self, i: i64) {
        self.before_value();
        push_int(self.out, i);
    }

    /// A float as Python writes it: `repr`, and `NaN`, `Infinity`, `-Infinity`.
    pub fn float(&mut self, x: f64) {
        self.before_value();
        push_py_json_float(self.out, x);
    }

    /// An optional float (`None` is `null`).
    pub fn opt_float(&mut self, x: Option<f64>) {
        match x {
            Some(x) => self.float(x),
            None => self.null(),
        }
    }

    /// A string.
    pub fn str(&mut self, s: &str) {
        self.before_value();
        write_json_string(self.out, s, self.ensure_ascii);
    }

    /// A value written by `write` straight into the output (no indentation inside it).
    pub fn raw_with(&mut self, write: impl FnOnce(&mut Vec<u8>)) {
        self.before_value();
        write(self.out);
    }

    /// Text written as is, in value position.
    pub fn raw(&mut self, text: &str) {
        self.before_value();
        crate::pyfmt::push_small(self.out, text.as_bytes());
    }

    /// A whole [`Json`] value; `sort_keys` sorts object keys (`json.dumps(sort_keys=True)`).
    pub fn value(&mut self, v: &Json<'_>, sort_keys: bool) {
        match v {
            Json::Null => self.null(),
            Json::Bool(b) => self.bool(*b),
            Json::Int(i) => self.int(*i),
            Json::Float(f) => self.float(*f),
            Json::Str(s) => self.str(s),
            Json::Raw(text) => self.raw(text),
            Json::Arr(items) => {
                self.begin_array();
                for item in items {
                    self.value(item, sort_keys);
                }
                self.end_array();
            }
            Json::Obj(entries) => {
                self.begin_object();
                if sort_keys {
                    let mut sorted: Vec<&(Cow<'_, str>, Json<'_>)> = entries.iter().collect();
                    sorted.sort_by(|a, b| a.0.cmp(&b.0));
                    for (k, v) in sorted {
                        self.key(k);
                        self.value(v, sort_keys);
                    }
                } else {
                    for (k, v) in entries {
                        self.key(k);
                        self.value(v, sort_keys);
                    }
                }
                self.end_object();
            }
        }
    }
}

/// The decimal text of a run of timestamps, each followed by `]` (the end of a datapoint):
/// timestamps of one answer share their leading digits, so while a timestamp's millions are
/// the previous one's, only its last six digits are rewritten (three digit pairs) instead of
/// a fresh conversion (a day at 60 s is 1,440 timestamps a series, at 1 s 86,400).
struct DecimalClock {
    /// The digits, then `]`, then slack: copied as a whole ([`DecimalClock::TEXT_BYTES`]),
    /// so the copy has a fixed size.
    text: [u8; DecimalClock::TEXT_BYTES],
    /// Digits in `text`.
    len: usize,
    /// The millions of the held timestamp, when it is at least a million (then its last six
    /// digits are `text[len - 6..len]`).
    millions: Option<i64>,
}

impl Default for DecimalClock {
    fn default() -> DecimalClock {
        DecimalClock { text: [0; DecimalClock::TEXT_BYTES], len: 0, millions: None }
    }
}

/// `"00"`, `"01"`, ... `"99"`.
const DIGIT_PAIRS: &[u8; 200] = b"\
    0001020304050607080910111213141516171819\
    2021222324252627282930313233343536373839\
    4041424344454647484950515253545556575859\
    6061626364656667686970717273747576777879\
    8081828384858687888990919293949596979899";

impl DecimalClock {
    /// The text's size: the longest `i64` (20 bytes) and the `]`, rounded up.
    const TEXT_BYTES: usize = 24;

    /// Sets the held timestamp to `t`; returns `t]` followed by slack (write all of it,
    /// keep [`DecimalClock::len`]` + 1` bytes).
    fn set(&mut self, t: i64) -> &[u8; DecimalClock::TEXT_BYTES] {
        let millions = (t >= 1_000_000).then_some(t / 1_000_000);
        if millions.is_some() && millions == self.millions {
            let low = (t % 1_000_000) as usize;
            let (hi, mid, lo) = (low / 10_000, low / 100 % 100, low % 100);
            if let Some(dst) = self.text.get_mut(self.len - 6..self.len) {
                dst[0..2].copy_from_slice(&DIGIT_PAIRS[2 * hi..2 * hi + 2]);
                dst[2..4].copy_from_slice(&DIGIT_PAIRS[2 * mid..2 * mid + 2]);
                dst[4..6].copy_from_slice(&DIGIT_PAIRS[2 * lo..2 * lo + 2]);
            }
        } else {
            let mut buf = itoa::Buffer::new();
            let digits = buf.format(t).as_bytes();
            // At most 20 bytes (i64::MIN), so the `]` fits too.
            self.len = digits.len();
            self.text[..self.len].copy_from_slice(digits);
            self.text[self.len] = b']';
            self.millions = millions;
        }
        &self.text
    }

    /// Bytes of [`DecimalClock::set`]'s text that count: the digits and the `]`.
    fn written(&self) -> usize {
        self.len + 1
    }
}

/// The most bytes one datapoint of the hot loop writes, separator included: `, [`, a repr
/// (at most 24 bytes, written into a 32-byte window), `, `, the timestamp and `]` (at most
/// 21 bytes, written as a 24-byte window): 3 + 24 + 2 + 24 < 64.
const MAX_POINT_BYTES: usize = 64;

/// Datapoints written per slab: the output grows by `POINTS_PER_SLAB * MAX_POINT_BYTES`, the
/// points are written into it with fixed-size copies, and it is cut back to what they took.
const POINTS_PER_SLAB: usize = 256;

/// Writes datapoints `[v, t]` separated by `, ` (compact JSON, without the enclosing
/// brackets), the hot loop of every render: the value of `values[i]` at `start + i * stride`,
/// stopping at the first timestamp past `end`. `first` says that no point precedes them (no
/// separator before the first one) and is cleared once one is written. `no_null_points`
/// leaves out null and NaN values.
///
/// NaN and the infinities are written as graphite-web's textual clean-up
/// ([`replace_nan_infinity`]) leaves them, `null`, `1e9999` and `-1e9999`: a value here is
/// always followed by a comma, so the clean-up would replace every one of them.
fn write_points(
    out: &mut Vec<u8>,
    values: &[Option<f64>],
    start: i64,
    stride: i64,
    end: i64,
    no_null_points: bool,
    first: &mut bool,
) {
    let mut clock = DecimalClock::default();
    let mut index = 0usize;
    'slabs: for chunk in values.chunks(POINTS_PER_SLAB) {
        let base = out.len();
        out.resize(base + chunk.len() * MAX_POINT_BYTES, 0);
        let mut at = base;
        for v in chunk {
            let t = start + index as i64 * stride;
            index += 1;
            if t > end {
                out.truncate(at);
                break 'slabs;
            }
            if no_null_points && v.is_none_or(f64::is_nan) {
                continue;
            }
            let Some(dst) = out.get_mut(at..at + MAX_POINT_BYTES) else { break 'slabs };
            let mut n = 0;
            if !*first {
                dst[0..2].copy_from_slice(b", ");
                n = 2;
            }
            *first = false;
            dst[n] = b'[';
            n += 1;
            match v {
                Some(x) if x.is_finite() => {
                    let window: &mut [u8; 32] = (&mut dst[n..n + 32]).try_into().unwrap_or_else(
                        // A 32-byte slice always converts; `n + 32 <= 35 < MAX_POINT_BYTES`.
                        |_| unreachable!(),
                    );
                    n += crate::pyfmt::write_float_repr(window, *x);
                }
                Some(x) => {
                    let text: &[u8] = if x.is_nan() {
                        b"null"
                    } else if *x > 0.0 {
                        b"1e9999"
                    } else {
                        b"-1e9999"
                    };
                    dst[n..n + text.len()].copy_from_slice(text);
                    n += text.len();
                }
                None => {
                    dst[n..n + 4].copy_from_slice(b"null");
                    n += 4;
                }
            }
            dst[n..n + 2].copy_from_slice(b", ");
            n += 2;
            dst[n..n + DecimalClock::TEXT_BYTES].copy_from_slice(clock.set(t));
            n += clock.written();
            at += n;
        }
        out.truncate(at);
    }
}

/// Appends an integer's decimal text.
pub(crate) fn push_int(out: &mut Vec<u8>, i: i64) {
    crate::pyfmt::push_small(out, itoa::Buffer::new().format(i).as_bytes());
}

/// Python's JSON text of a float: `repr`, or `NaN` / `Infinity` / `-Infinity`.
fn push_py_json_float(out: &mut Vec<u8>, x: f64) {
    if x.is_nan() {
        out.extend_from_slice(b"NaN");
    } else if x == f64::INFINITY {
        out.extend_from_slice(b"Infinity");
    } else if x == f64::NEG_INFINITY {
        out.extend_from_slice(b"-Infinity");
    } else {
        push_float_repr(out, x);
    }
}

/// Appends Python's `repr(x)` ([`crate::pyfmt::push_float_repr`]).
pub(crate) fn push_float_repr(out: &mut Vec<u8>, x: f64) {
    crate::pyfmt::push_float_repr(out, x);
}

/// Appends `s` as a JSON string literal, escaped as Python's `json` module escapes it.
pub fn write_json_string(out: &mut Vec<u8>, s: &str, ensure_ascii: bool) {
    const HEX: &[u8; 16] = b"0123456789abcdef";
    out.push(b'"');
    let bytes = s.as_bytes();
    let mut plain_from = 0;
    for (i, &b) in bytes.iter().enumerate() {
        let escape: Option<&[u8]> = match b {
            b'"' => Some(b"\\\""),
            b'\\' => Some(b"\\\\"),
            b'\n' => Some(b"\\n"),
            b'\r' => Some(b"\\r"),
            b'\t' => Some(b"\\t"),
            0x08 => Some(b"\\b"),
            0x0c => Some(b"\\f"),
            _ => None,
        };
        let needs = escape.is_some() || b < 0x20 || (ensure_ascii && b >= 0x80);
        if !needs {
            continue;
        }
        out.extend_from_slice(bytes.get(plain_from..i).unwrap_or(&[]));
        plain_from = i + 1;
        if let Some(e) = escape {
            out.extend_from_slice(e);
        } else if b < 0x20 {
            out.extend_from_slice(&[
                b'\\',
                b'u',
                b'0',
                b'0',
                HEX[(b >> 4) as usize],
                HEX[(b & 15) as usize],
            ]);
        } else if b >= 0xc0 {
            // The first byte of a non-ASCII character: escape the whole character.
            let ch = s.get(i..).and_then(|rest| rest.chars().next()).unwrap_or('\u{fffd}');
            let mut units = [0u16; 2];
            for unit in ch.encode_utf16(&mut units) {
                out.extend_from_slice(b"\\u");
                for shift in [12, 8, 4, 0] {
                    out.push(HEX[((*unit >> shift) & 15) as usize]);
                }
            }
        }
        // Continuation bytes (0x80..0xc0) were covered by their first byte.
    }
    out.extend_from_slice(bytes.get(plain_from..).unwrap_or(&[]));
    out.push(b'"');
}

/// A JSON value for the small answers (find, tags, functions, events): built as a tree, then
/// written with [`JsonWriter::value`] in insertion order (or sorted, for `pretty`).
#[derive(Clone, Debug, PartialEq)]
pub enum Json<'a> {
    /// `null`
    Null,
    /// `true` / `false`
    Bool(bool),
    /// An integer.
    Int(i64),
    /// A float.
    Float(f64),
    /// A string.
    Str(Cow<'a, str>),
    /// A list.
    Arr(Vec<Json<'a>>),
    /// An object, in insertion order.
    Obj(Vec<(Cow<'a, str>, Json<'a>)>),
    /// Text written as is (`1e9999` for an infinite default in `/functions`).
    Raw(Cow<'a, str>),
}

impl<'a> Json<'a> {
    /// A string value.
    pub fn str(s: impl Into<Cow<'a, str>>) -> Json<'a> {
        Json::Str(s.into())
    }

    /// An object from `(key, value)` pairs.
    pub fn obj<I, K>(entries: I) -> Json<'a>
    where
        I: IntoIterator<Item = (K, Json<'a>)>,
        K: Into<Cow<'a, str>>,
    {
        Json::Obj(entries.into_iter().map(|(k, v)| (k.into(), v)).collect())
    }

    /// `json.dumps(self, indent=..., sort_keys=...)` into `out`.
    pub fn write(
        &self,
        out: &mut Vec<u8>,
        indent: Option<usize>,
        sort_keys: bool,
        ensure_ascii: bool,
    ) {
        JsonWriter::new(out, indent, ensure_ascii).value(self, sort_keys);
    }

    /// `json.dumps` as a fresh buffer.
    pub fn to_bytes(&self, indent: Option<usize>, sort_keys: bool) -> Vec<u8> {
        let mut out = Vec::new();
        self.write(&mut out, indent, sort_keys, true);
        out
    }
}

/// graphite-web's textual clean-up of its JSON: `NaN,` becomes `null,` and `Infinity,`
/// becomes `1e9999,` (so `-Infinity,` becomes `-1e9999,`). Like graphite-web it works on the
/// text, so only values followed by a comma change, and the same text inside a string (a
/// series renamed to `NaN, x`) changes too. Returns the buffer untouched when there is
/// nothing to replace.
pub fn replace_nan_infinity(buf: Vec<u8>) -> Vec<u8> {
    let nan = memchr::memmem::find(&buf, b"NaN,").is_some();
    let inf = memchr::memmem::find(&buf, b"Infinity,").is_some();
    if !nan && !inf {
        return buf;
    }
    let mut out = buf;
    if nan {
        out = replace_all(&out, b"NaN,", b"null,");
    }
    if inf {
        out = replace_all(&out, b"Infinity,", b"1e9999,");
    }
    out
}

fn replace_all(haystack: &[u8], needle: &[u8], with: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(haystack.len() + 16);
    let mut last = 0;
    for at in memchr::memmem::find_iter(haystack, needle) {
        out.extend_from_slice(haystack.get(last..at).unwrap_or(&[]));
        out.extend_from_slice(with);
        last = at + needle.len();
    }
    out.extend_from_slice(haystack.get(last..).unwrap_or(&[]));
    out
}

// ---------------------------------------------------------------------------------------------
// maxDataPoints.

/// The JSON format's `maxDataPoints` consolidation, as graphite-web's `renderViewJson`:
///
/// - `time_range = max(end) - min(start)` over all series;
/// - `max_data_points == 1`: each series consolidates to a single point;
/// - else, when `max_data_points < time_range / step`: `vpp = ceil((time_range/step) /
///   max_data_points)`, `seconds_per_point = vpp * step`, `nudge = seconds_per_point +
///   start % step - start % seconds_per_point`, `start += nudge`, and **`nudge/step - 1`**
///   values are dropped from the front (graphite-web's loop starts at 1: one value fewer
///   than the nudge covers, a quirk reproduced on purpose), then the series reads
///   consolidated by `vpp` with its own consolidation function and xFilesFactor.
pub fn apply_max_data_points(series: &mut [Series], max_data_points: u64) {
    let Some(start) = series.iter().map(|s| s.start).min() else { return };
    let Some(end) = series.iter().map(|s| s.end).max() else { return };
    let time_range = end.saturating_sub(start);
    for s in series.iter_mut() {
        if max_data_points == 1 {
            s.consolidate(s.values.len());
            continue;
        }
        let step = s.step.max(1);
        let points = time_range as f64 / step as f64;
        if (max_data_points as f64) < points {
            let vpp = (points / max_data_points as f64).ceil();
            let seconds_per_point = (vpp * step as f64) as i64;
            if seconds_per_point <= 0 {
                continue;
            }
            let nudge = seconds_per_point + s.start.rem_euclid(step)
                - s.start.rem_euclid(seconds_per_point);
            s.start += nudge;
            let to_lose = (nudge as f64 / step as f64) as i64;
            let drop = usize::try_from(to_lose - 1).unwrap_or(0).min(s.values.len());
            s.values.drain(..drop);
            s.consolidate(vpp as usize);
        }
    }
}

// ---------------------------------------------------------------------------------------------
// The formats.

/// The order graphite-web's `dict(series.tags)` has: a tagged name's tags (in the name's
/// order) then `name`; for a plain name, `name` first, then what functions added.
fn tags_in_python_order(s: &Series) -> Vec<(&str, &str)> {
    let tagged = s.name.contains(';') && !s.name.ends_with(')');
    let mut out: Vec<(&str, &str)> = Vec::with_capacity(s.tags.len());
    let name = s.tags.get("name").map(String::as_str);
    if !tagged && let Some(n) = name {
        out.push(("name", n));
    }
    out.extend(s.tags.iter().filter(|(k, _)| *k != "name").map(|(k, v)| (k.as_str(), v.as_str())));
    if tagged && let Some(n) = name {
        out.push(("name", n));
    }
    out
}

/// `format=json`: `[{"target": name, "tags": {...}, "datapoints": [[v, t], ...]}]`.
/// `no_null_points` drops null (and NaN) points and omits series left empty. The caller
/// applies [`apply_max_data_points`] first. When no series has any value at all the answer
/// is `[]`, as graphite-web's `if any(data)` (a series is falsy when it has no values).
///
/// The compact answer (not `pretty`) is written by `write_points`, which writes NaN and
/// the infinities as graphite-web's clean-up leaves them, so only the series' names and tags
/// are searched for the clean-up's patterns. (Writing a large answer in two halves on two
/// threads was tried: on this 2-core machine shared with builds, waiting for the second
/// thread to be scheduled cost more than it saved.)
pub fn write_json(out: &mut Vec<u8>, series: &[Series], pretty: bool, no_null_points: bool) {
    let any_values = series.iter().any(|s| !s.values.is_empty());
    let mut parts = Vec::with_capacity(series.len());
    for s in series.iter().filter(|_| any_values) {
        // Borrowed, not copied, when the series reads unconsolidated.
        let values = s.consolidated_cow();
        let points = || crate::series::datapoints_of(&values, s.start, s.read_step(), s.end);
        if no_null_points && points().all(|(v, _)| v.is_none_or(f64::is_nan)) {
            continue;
        }
        parts.push(JsonPart { series: s, values });
    }
    let mut body = std::mem::take(out);
    if pretty {
        write_json_pretty(&mut body, &parts, no_null_points);
        *out = replace_nan_infinity(body);
        return;
    }
    body.push(b'[');
    let scan = write_parts(&mut body, &parts, no_null_points);
    body.push(b']');
    *out = if scan { replace_nan_infinity(body) } else { body };
}

/// One series of a JSON answer and its values as read (consolidated when it is).
struct JsonPart<'a> {
    series: &'a Series,
    values: Cow<'a, [Option<f64>]>,
}

/// `pretty` JSON, by the generic writer (an indented answer is for people, not the hot
/// path).
fn write_json_pretty(body: &mut Vec<u8>, parts: &[JsonPart<'_>], no_null_points: bool) {
    let mut w = JsonWriter::new(body, Some(2), true);
    w.begin_array();
    for part in parts {
        let s = part.series;
        write_series_head(&mut w, s);
        w.begin_array();
        for (v, t) in crate::series::datapoints_of(&part.values, s.start, s.read_step(), s.end) {
            if no_null_points && v.is_none_or(f64::is_nan) {
                continue;
            }
            w.begin_array();
            w.opt_float(v);
            w.int(t);
            w.end_array();
        }
        w.end_array();
        w.end_object();
    }
    w.end_array();
}

/// `{"target": ..., "tags": {...}, "datapoints": ` (the object stays open).
fn write_series_head(w: &mut JsonWriter<'_>, s: &Series) {
    w.begin_object();
    w.key("target");
    w.str(&s.name);
    w.key("tags");
    w.begin_object();
    for (k, v) in tags_in_python_order(s) {
        w.key(k);
        w.str(v);
    }
    w.end_object();
    w.key("datapoints");
}

/// Writes the compact head of a series (`{"target": ..., "datapoints": `), and says whether
/// it holds text graphite-web's clean-up replaces (`NaN,` or `Infinity,` in a name or tag).
fn write_compact_head(out: &mut Vec<u8>, s: &Series) -> bool {
    let from = out.len();
    write_series_head(&mut JsonWriter::new(out, None, true), s);
    let head = out.get(from..).unwrap_or(&[]);
    memchr::memmem::find(head, b"NaN,").is_some()
        || memchr::memmem::find(head, b"Infinity,").is_some()
}

/// Writes the series objects, `, `-separated; says whether a head needs graphite-web's
/// clean-up.
fn write_parts(out: &mut Vec<u8>, parts: &[JsonPart<'_>], no_null_points: bool) -> bool {
    let mut scan = false;
    for (i, part) in parts.iter().enumerate() {
        if i > 0 {
            out.extend_from_slice(b", ");
        }
        let s = part.series;
        scan |= write_compact_head(out, s);
        out.push(b'[');
        write_points(out, &part.values, s.start, s.read_step(), s.end, no_null_points, &mut true);
        out.extend_from_slice(b"]}");
    }
    scan
}

/// `format=csv`: `name,YYYY-MM-DD HH:MM:SS,value\r\n` per point (excel dialect), the time in
/// the request's zone: `utc_offset(ts)` is the zone's offset in seconds at `ts`. The time of
/// value `i` is `start + i * step` (the raw step, even when the series reads consolidated,
/// as graphite-web computes it).
pub fn write_csv(out: &mut Vec<u8>, series: &[Series], utc_offset: &dyn Fn(i64) -> i64) {
    for s in series {
        let name = csv_field(&s.name);
        for (i, v) in s.consolidated().into_iter().enumerate() {
            let ts = s.start + i as i64 * s.step;
            out.extend_from_slice(name.as_bytes());
            out.push(b',');
            push_datetime(out, ts + utc_offset(ts));
            out.push(b',');
            if let Some(v) = v {
                push_py_str_float(out, v);
            }
            out.extend_from_slice(b"\r\n");
        }
    }
}

/// Python's `str(float)`: `repr`, with `nan`/`inf`/`-inf`.
fn push_py_str_float(out: &mut Vec<u8>, x: f64) {
    if x.is_finite() {
        push_float_repr(out, x);
    } else {
        out.extend_from_slice(float_repr(x).as_bytes());
    }
}

/// A CSV field as Python's `csv` module writes it with the excel dialect (minimal quoting).
fn csv_field(s: &str) -> Cow<'_, str> {
    if s.contains([',', '"', '\r', '\n']) {
        Cow::Owned(format!("\"{}\"", s.replace('"', "\"\"")))
    } else {
        Cow::Borrowed(s)
    }
}

/// `YYYY-MM-DD HH:MM:SS` of a (local) epoch.
pub(crate) fn push_datetime(out: &mut Vec<u8>, local: i64) {
    let (y, mo, d, h, mi, s) = civil(local);
    let text = format!("{y:04}-{mo:02}-{d:02} {h:02}:{mi:02}:{s:02}");
    out.extend_from_slice(text.as_bytes());
}

/// Year, month, day, hour, minute, second of an epoch (proleptic Gregorian, no zone).
pub(crate) fn civil(ts: i64) -> (i64, u32, u32, u32, u32, u32) {
    let days = ts.div_euclid(86_400);
    let secs = ts.rem_euclid(86_400);
    // Howard Hinnant's days-to-civil.
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    let y = yoe + era * 400 + i64::from(m <= 2);
    (y, m, d, (secs / 3600) as u32, (secs % 3600 / 60) as u32, (secs % 60) as u32)
}

/// `format=raw`: `name,start,end,step|v1,v2,...\n` per series, values as Python's `repr`
/// (`None` for null).
pub fn write_raw(out: &mut Vec<u8>, series: &[Series]) {
    for s in series {
        out.extend_from_slice(s.name.as_bytes());
        for n in [s.start, s.end, s.step] {
            out.push(b',');
            push_int(out, n);
        }
        out.push(b'|');
        for (i, v) in s.consolidated().into_iter().enumerate() {
            if i > 0 {
                out.push(b',');
            }
            match v {
                Some(v) => push_py_str_float(out, v),
                None => out.extend_from_slice(b"None"),
            }
        }
        out.push(b'\n');
    }
}

/// `format=pickle`: graphite-web's `[series.getInfo(), ...]`, a list of dicts with `name`,
/// `start`, `end`, `step`, `values`, `pathExpression`, `valuesPerPoint`,
/// `consolidationFunc` and `xFilesFactor`, pickled with protocol 2 (graphite-web uses the
/// highest protocol; every unpickler that reads that reads 2).
pub fn write_pickle(out: &mut Vec<u8>, series: &[Series]) {
    use carbon_proto::pickle::{Value, dumps};
    let infos = series
        .iter()
        .map(|s| {
            let values =
                s.consolidated().into_iter().map(|v| v.map_or(Value::None, Value::Float)).collect();
            Value::Dict(vec![
                (Value::str("name"), Value::str(&s.name)),
                (Value::str("start"), Value::Int(s.start)),
                (Value::str("end"), Value::Int(s.end)),
                (Value::str("step"), Value::Int(s.step)),
                (Value::str("values"), Value::List(values)),
                (Value::str("pathExpression"), Value::str(&s.path_expression)),
                (Value::str("valuesPerPoint"), Value::Int(s.values_per_point as i64)),
                (Value::str("consolidationFunc"), Value::str(s.consolidation.name())),
                (Value::str("xFilesFactor"), Value::Float(s.x_files_factor)),
            ])
        })
        .collect();
    out.extend_from_slice(&dumps(&Value::List(infos)));
}

/// A minimal MessagePack encoder with msgpack-python's choices (`use_bin_type=True`): the
/// smallest int encoding (unsigned for non-negative values), float64 for floats, str8/16/32.
pub(crate) mod msgpack {
    /// Appends nil.
    pub(crate) fn nil(out: &mut Vec<u8>) {
        out.push(0xc0);
    }

    /// Appends a bool.
    pub(crate) fn bool(out: &mut Vec<u8>, b: bool) {
        out.push(if b { 0xc3 } else { 0xc2 });
    }

    /// Appends a float64.
    pub(crate) fn float(out: &mut Vec<u8>, x: f64) {
        out.push(0xcb);
        out.extend_from_slice(&x.to_be_bytes());
    }

    /// Appends an integer in its smallest form.
    pub(crate) fn int(out: &mut Vec<u8>, i: i64) {
        if (-32..128).contains(&i) {
            // Positive and negative fixints are the value's own byte.
            out.push(i as u8);
        } else if i >= 0 {
            if i <= 0xff {
                out.extend_from_slice(&[0xcc, i as u8]);
            } else if i <= 0xffff {
                out.push(0xcd);
                out.extend_from_slice(&(i as u16).to_be_bytes());
            } else if i <= 0xffff_ffff {
                out.push(0xce);
                out.extend_from_slice(&(i as u32).to_be_bytes());
            } else {
                out.push(0xcf);
                out.extend_from_slice(&(i as u64).to_be_bytes());
            }
        } else if i >= -128 {
            out.extend_from_slice(&[0xd0, i as u8]);
        } else if i >= -32768 {
            out.push(0xd1);
            out.extend_from_slice(&(i as i16).to_be_bytes());
        } else if i >= -(1 << 31) {
            out.push(0xd2);
            out.extend_from_slice(&(i as i32).to_be_bytes());
        } else {
            out.push(0xd3);
            out.extend_from_slice(&i.to_be_bytes());
        }
    }

    /// Appends a string.
    pub(crate) fn str(out: &mut Vec<u8>, s: &str) {
        let n = s.len();
        if n < 32 {
            out.push(0xa0 | n as u8);
        } else if n <= 0xff {
            out.extend_from_slice(&[0xd9, n as u8]);
        } else if n <= 0xffff {
            out.push(0xda);
            out.extend_from_slice(&(n as u16).to_be_bytes());
        } else {
            out.push(0xdb);
            out.extend_from_slice(&(n as u32).to_be_bytes());
        }
        out.extend_from_slice(s.as_bytes());
    }

    /// Appends an array header for `n` items.
    pub(crate) fn array(out: &mut Vec<u8>, n: usize) {
        if n < 16 {
            out.push(0x90 | n as u8);
        } else if n <= 0xffff {
            out.push(0xdc);
            out.extend_from_slice(&(n as u16).to_be_bytes());
        } else {
            out.push(0xdd);
            out.extend_from_slice(&(n as u32).to_be_bytes());
        }
    }

    /// Appends a map header for `n` entries.
    pub(crate) fn map(out: &mut Vec<u8>, n: usize) {
        if n < 16 {
            out.push(0x80 | n as u8);
        } else if n <= 0xffff {
            out.push(0xde);
            out.extend_from_slice(&(n as u16).to_be_bytes());
        } else {
            out.push(0xdf);
            out.extend_from_slice(&(n as u32).to_be_bytes());
        }
    }
}

/// `format=msgpack`: the same list of dicts as [`write_pickle`], in MessagePack.
pub fn write_msgpack(out: &mut Vec<u8>, series: &[Series]) {
    msgpack::array(out, series.len());
    for s in series {
        msgpack::map(out, 9);
        msgpack::str(out, "name");
        msgpack::str(out, &s.name);
        for (k, v) in [("start", s.start), ("end", s.end), ("step", s.step)] {
            msgpack::str(out, k);
            msgpack::int(out, v);
        }
        msgpack::str(out, "values");
        let values = s.consolidated();
        msgpack::array(out, values.len());
        for v in values {
            match v {
                Some(x) => msgpack::float(out, x),
                None => msgpack::nil(out),
            }
        }
        msgpack::str(out, "pathExpression");
        msgpack::str(out, &s.path_expression);
        msgpack::str(out, "valuesPerPoint");
        msgpack::int(out, s.values_per_point as i64);
        msgpack::str(out, "consolidationFunc");
        msgpack::str(out, s.consolidation.name());
        msgpack::str(out, "xFilesFactor");
        msgpack::float(out, s.x_files_factor);
    }
}

/// `format=dygraph`: `{"labels" : ["Time", names...], "data" : [[ts000, v1, v2...], ...]}`.
/// Rows are the first series' timestamps; each series' values are appended to the rows by
/// index; nulls and NaN are `null`, infinities `Infinity`/`-Infinity`. No series gives `{}`.
///
/// # Errors
///
/// A series with more values than the first one has timestamps: graphite-web fails the
/// request (an `IndexError`, HTTP 500); the message says which series.
pub fn write_dygraph(out: &mut Vec<u8>, series: &[Series]) -> Result<(), String> {
    let Some(first) = series.first() else {
        out.extend_from_slice(b"{}");
        return Ok(());
    };
    let step = usize::try_from(first.step).unwrap_or(1).max(1);
    let mut rows: Vec<Vec<u8>> = (first.start..first.end)
        .step_by(step)
        .map(|ts| {
            let mut row = Vec::with_capacity(16 + 12 * series.len());
            row.push(b'[');
            push_int(&mut row, ts);
            row.extend_from_slice(b"000");
            row
        })
        .collect();
    for s in series {
        let values = s.consolidated();
        if values.len() > rows.len() {
            return Err(format!(
                "dygraph: series {:?} has {} values for {} timestamps",
                s.name,
                values.len(),
                rows.len()
            ));
        }
        for (row, v) in rows.iter_mut().zip(values) {
            row.extend_from_slice(b", ");
            match v {
                None => row.extend_from_slice(b"null"),
                Some(x) if x.is_nan() => row.extend_from_slice(b"null"),
                Some(x) if x == f64::INFINITY => row.extend_from_slice(b"Infinity"),
                Some(x) if x == f64::NEG_INFINITY => row.extend_from_slice(b"-Infinity"),
                Some(x) => push_float_repr(row, x),
            }
        }
    }
    out.extend_from_slice(b"{\"labels\" : ");
    let labels: Vec<Json<'_>> = std::iter::once(Json::str("Time"))
        .chain(series.iter().map(|s| Json::str(s.name.as_str())))
        .collect();
    Json::Arr(labels).write(out, None, false, true);
    out.extend_from_slice(b", \"data\" : [");
    for (i, mut row) in rows.into_iter().enumerate() {
        if i > 0 {
            out.extend_from_slice(b", ");
        }
        row.push(b']');
        out.extend_from_slice(&row);
    }
    out.extend_from_slice(b"]}");
    Ok(())
}

/// `format=rickshaw`: `[{"target": name, "datapoints": [{"x": ts, "y": value}, ...]}]`,
/// timestamps `range(start, end, step)` paired with the values (the shorter one wins). No
/// NaN/Infinity replacement here, as in graphite-web.
pub fn write_rickshaw(out: &mut Vec<u8>, series: &[Series], pretty: bool) {
    let mut w = JsonWriter::new(out, pretty.then_some(2), true);
    w.begin_array();
    for s in series {
        w.begin_object();
        w.key("target");
        w.str(&s.name);
        w.key("datapoints");
        w.begin_array();
        let step = usize::try_from(s.step).unwrap_or(1).max(1);
        for (ts, v) in (s.start..s.end).step_by(step).zip(s.consolidated()) {
            w.begin_object();
            w.key("x");
            w.int(ts);
            w.key("y");
            w.opt_float(v);
            w.end_object();
        }
        w.end_array();
        w.end_object();
    }
    w.end_array();
}

/// `callback(body)`: graphite-web's JSONP wrapping.
pub fn jsonp_wrap(callback: &str, body: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(body.len() + callback.len() + 2);
    out.extend_from_slice(callback.as_bytes());
    out.push(b'(');
    out.extend_from_slice(body);
    out.push(b')');
    out
}

#[cfg(test)]
mod clock_tests {
    use super::DecimalClock;

    fn push(clock: &mut DecimalClock, out: &mut Vec<u8>, t: i64) {
        let text = *clock.set(t);
        out.extend_from_slice(&text[..clock.written()]);
        assert_eq!(out.pop(), Some(b']'));
    }

    #[test]
    fn the_clock_writes_what_itoa_writes() {
        let mut clock = DecimalClock::default();
        let mut out = Vec::new();
        let mut want = Vec::new();
        let times = [
            0i64,
            1,
            9,
            10,
            99,
            100,
            999_999_999,
            1_000_000_000,
            1_699_999_980,
            1_700_000_040,
            1_700_000_041,
            5,
            -60,
            -1,
            0,
            9_999_999_999,
            10_000_000_060,
            i64::MAX - 10,
            i64::MAX,
            42,
        ];
        for t in times {
            push(&mut clock, &mut out, t);
            out.push(b' ');
            want.extend_from_slice(t.to_string().as_bytes());
            want.push(b' ');
        }
        for k in 0..10_000i64 {
            let t = 1_699_999_000 + k * 37;
            push(&mut clock, &mut out, t);
            out.push(b' ');
            want.extend_from_slice(t.to_string().as_bytes());
            want.push(b' ');
        }
        assert_eq!(String::from_utf8(out).unwrap(), String::from_utf8(want).unwrap());
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// graphite-web's outputs for the same series (`tests/data/format_golden.py`).
    const GOLDEN: &str = include_str!("../tests/data/format_golden.txt");

    fn golden(case: &str) -> (String, Vec<u8>) {
        let line = GOLDEN
            .lines()
            .find(|l| l.split(' ').next() == Some(case))
            .unwrap_or_else(|| panic!("no golden {case}"));
        let mut parts = line.splitn(3, ' ');
        let _ = parts.next();
        let ct = parts.next().unwrap().to_string();
        let hex = parts.next().unwrap_or("");
        let bytes = (0..hex.len())
            .step_by(2)
            .map(|i| u8::from_str_radix(&hex[i..i + 2], 16).unwrap())
            .collect();
        (ct, bytes)
    }

    fn series() -> Vec<Series> {
        let t0 = 1_795_288_200;
        let a = Series::new(
            "servers.web01.cpu.user",
            t0,
            t0 + 300,
            60,
            vec![Some(21.0), Some(16.0), Some(11.0), Some(6.0), None],
        );
        let mut b = Series::new(
            "disk.used;datacenter=dc1;rack=a1",
            t0,
            t0 + 300,
            60,
            vec![
                Some(1.5),
                Some(f64::NAN),
                Some(f64::INFINITY),
                Some(f64::NEG_INFINITY),
                Some(0.1),
            ],
        );
        b.path_expression = "seriesByTag('name=disk.used')".into();
        let c = Series::new(
            "x,\"q\"",
            t0,
            t0 + 300,
            60,
            vec![Some(1e-5), Some(1e16), Some(-0.0), Some(123_456_789.125), None],
        );
        vec![a, b, c]
    }

    fn check(case: &str, got: &[u8]) {
        let (_, want) = golden(case);
        assert_eq!(
            String::from_utf8_lossy(got),
            String::from_utf8_lossy(&want),
            "{case} differs from graphite-web"
        );
        assert_eq!(got, &want[..], "{case} bytes");
    }

    #[test]
    fn json_matches_graphite_web() {
        let mut out = Vec::new();
        write_json(&mut out, &series(), false, false);
        check("json", &out);
        out.clear();
        write_json(&mut out, &series(), true, false);
        check("json_pretty", &out);
        out.clear();
        write_json(&mut out, &series(), false, true);
        check("json_nonull", &out);
        out.clear();
        write_json(&mut out, &[], false, false);
        check("empty_json", &out);
        out.clear();
        write_json(&mut out, &series()[..1], false, false);
        check("json_jsonp", &jsonp_wrap("cb", &out));
    }

    #[test]
    fn max_data_points_matches_graphite_web() {
        // The worked example of graphite-reference §3.3: vpp 3, nudge 120, one value dropped.
        let mut s = series()[..1].to_vec();
        apply_max_data_points(&mut s, 2);
        assert_eq!(s[0].datapoints(), vec![(Some(11.0), 1_795_288_320), (None, 1_795_288_500)]);
        let mut out = Vec::new();
        write_json(&mut out, &s, false, false);
        check("json_mdp2", &out);
        let mut all = series();
        apply_max_data_points(&mut all, 1);
        out.clear();
        write_json(&mut out, &all, false, false);
        check("json_mdp1", &out);
    }

    #[test]
    fn csv_raw_dygraph_rickshaw_msgpack_match_graphite_web() {
        let mut out = Vec::new();
        write_csv(&mut out, &series(), &|_| 0);
        check("csv", &out);
        out.clear();
        // Europe/Paris in November: UTC+1.
        write_csv(&mut out, &series()[..1], &|_| 3600);
        check("csv_tz", &out);
        out.clear();
        write_raw(&mut out, &series());
        check("raw", &out);
        out.clear();
        write_dygraph(&mut out, &series()).unwrap();
        check("dygraph", &out);
        out.clear();
        write_dygraph(&mut out, &[]).unwrap();
        check("empty_dygraph", &out);
        out.clear();
        write_rickshaw(&mut out, &series(), false);
        check("rickshaw", &out);
        out.clear();
        write_rickshaw(&mut out, &series()[..1], true);
        check("rickshaw_pretty", &out);
        out.clear();
        write_msgpack(&mut out, &series());
        check("msgpack", &out);
        let mut s = series();
        s[0].consolidate(2);
        s[0].consolidation = crate::series::Consolidation::Sum;
        s[0].x_files_factor = 0.5;
        out.clear();
        write_raw(&mut out, &s[..1]);
        check("raw_vpp", &out);
    }

    #[test]
    fn pickle_holds_graphite_webs_series_info() {
        use carbon_proto::pickle::{Value, loads};
        let mut s = series();
        s[0].consolidate(2);
        s[0].consolidation = crate::series::Consolidation::Sum;
        s[0].x_files_factor = 0.5;
        let mut out = Vec::new();
        write_pickle(&mut out, &s);
        let v = loads(&out).unwrap();
        let list = v.as_seq().unwrap();
        assert_eq!(list.len(), 3);
        let first = &list[0];
        assert_eq!(first.get("name").and_then(Value::as_str), Some("servers.web01.cpu.user"));
        assert_eq!(first.get("start"), Some(&Value::Int(1_795_288_200)));
        assert_eq!(
            first.get("values"),
            Some(&Value::List(vec![Value::Float(37.0), Value::Float(17.0), Value::None]))
        );
        assert_eq!(first.get("valuesPerPoint"), Some(&Value::Int(2)));
        assert_eq!(first.get("consolidationFunc").and_then(Value::as_str), Some("sum"));
        assert_eq!(first.get("xFilesFactor"), Some(&Value::Float(0.5)));
        assert_eq!(
            list[1].get("pathExpression").and_then(Value::as_str),
            Some("seriesByTag('name=disk.used')")
        );
    }

    #[test]
    fn json_writer_escapes_like_python() {
        let mut out = Vec::new();
        write_json_string(&mut out, "a\"b\\c\n\u{1}é😀\u{7f}", true);
        assert_eq!(
            String::from_utf8(out.clone()).unwrap(),
            "\"a\\\"b\\\\c\\n\\u0001\\u00e9\\ud83d\\ude00\u{7f}\""
        );
        out.clear();
        write_json_string(&mut out, "é", false);
        assert_eq!(out, "\"é\"".as_bytes());
        let j = Json::obj([("b", Json::Arr(vec![])), ("a", Json::obj([("x", Json::Int(1))]))]);
        assert_eq!(
            String::from_utf8(j.to_bytes(None, false)).unwrap(),
            r#"{"b": [], "a": {"x": 1}}"#
        );
        assert_eq!(
            String::from_utf8(j.to_bytes(Some(2), true)).unwrap(),
            "{\n  \"a\": {\n    \"x\": 1\n  },\n  \"b\": []\n}"
        );
    }

    #[test]
    fn nan_and_infinity_are_replaced_only_before_a_comma() {
        assert_eq!(
            replace_nan_infinity(b"[NaN, -Infinity, Infinity]".to_vec()),
            b"[null, -1e9999, Infinity]"
        );
    }
}

#[cfg(test)]
mod compact_json_tests {
    use super::*;

    /// The compact answer as the generic writer lays it out, then graphite-web's clean-up
    /// over the whole text: what [`write_json`] wrote before its hot loop had its own path.
    fn reference(series: &[Series], no_null_points: bool) -> Vec<u8> {
        let mut body = Vec::new();
        let mut w = JsonWriter::new(&mut body, None, true);
        w.begin_array();
        let any_values = series.iter().any(|s| !s.values.is_empty());
        for s in series.iter().filter(|_| any_values) {
            let values = s.consolidated();
            let points: Vec<(Option<f64>, i64)> =
                crate::series::datapoints_of(&values, s.start, s.read_step(), s.end).collect();
            if no_null_points && points.iter().all(|(v, _)| v.is_none_or(f64::is_nan)) {
                continue;
            }
            write_series_head(&mut w, s);
            w.begin_array();
            for (v, t) in points {
                if no_null_points && v.is_none_or(f64::is_nan) {
                    continue;
                }
                w.begin_array();
                w.opt_float(v);
                w.int(t);
                w.end_array();
            }
            w.end_array();
            w.end_object();
        }
        w.end_array();
        replace_nan_infinity(body)
    }

    /// `n` values from a seed: decimals, full-precision doubles, integers, nulls, NaN and
    /// infinities.
    fn values(n: usize, seed: u64) -> Vec<Option<f64>> {
        let mut state = seed | 1;
        (0..n)
            .map(|_| {
                state ^= state << 13;
                state ^= state >> 7;
                state ^= state << 17;
                let u = (state >> 11) as f64 / (1u64 << 53) as f64;
                match state % 10 {
                    0 | 1 => None,
                    2 => Some(f64::NAN),
                    3 => Some(if state % 20 == 3 { f64::INFINITY } else { f64::NEG_INFINITY }),
                    4 => Some((u * 1e6).floor()),
                    5 | 6 => Some((u * 1e5).round() / 1e3 - 50.0),
                    _ => Some(u * 1e3 - 500.0),
                }
            })
            .collect()
    }

    #[test]
    fn compact_json_matches_the_generic_writer() {
        let t0 = 1_700_000_000;
        // Around a slab's size; one series or several; names that need the clean-up; a window that ends before the values do; a consolidated series; a
        // series that is nothing but nulls.
        for n in [0, 1, 10, 255, 256, 257, 20_001] {
            let mut one = Series::new("events(\"*\")", t0, t0 + n as i64, 1, values(n, 7));
            one.end = t0 + (n as i64 * 2 / 3);
            let several: Vec<Series> = (0..4)
                .map(|k| {
                    let name = if k == 2 { "alias(x,'NaN, Infinity, y')" } else { "a.b.c" };
                    let len = n / (k + 1);
                    Series::new(name, t0, t0 + 60 * len as i64, 60, values(len, k as u64 + 1))
                })
                .collect();
            let mut consolidated = several.clone();
            consolidated[1].consolidate(5);
            consolidated.push(Series::new("nulls", t0, t0 + 600, 60, vec![None; 10]));
            for series in [vec![one.clone()], several, consolidated] {
                for no_null_points in [false, true] {
                    let mut ours = Vec::new();
                    write_json(&mut ours, &series, false, no_null_points);
                    let want = reference(&series, no_null_points);
                    assert!(
                        ours == want,
                        "n={n} series={} no_null_points={no_null_points}:\n{}\n{}",
                        series.len(),
                        String::from_utf8_lossy(&ours[..ours.len().min(300)]),
                        String::from_utf8_lossy(&want[..want.len().min(300)]),
                    );
                }
            }
        }
    }
}
