//! The plaintext protocol: `metric value timestamp\n`, over TCP (carbon's port 2003) and UDP.
//!
//! A line is what carbon's `MetricLineReceiver` accepts: UTF-8, stripped, split on whitespace
//! (Python's definition, which includes `\x1c`-`\x1f` and the Unicode spaces) into exactly three
//! fields; value and timestamp go through Python's `float()`, so `1.5e3`, `inf`, `nan` and
//! `1_000` are numbers. `\r\n` endings and runs of spaces are fine.
//!
//! Where carbon drops the connection, we count the bad line and go on:
//!
//! | input | carbon 1.1.7 | [`LineDecoder`] |
//! |---|---|---|
//! | a malformed line | logged, skipped | [`LineError`], skipped |
//! | a line over 16,384 bytes | connection dropped | [`LineError::TooLong`], the line skipped up to its `\n` |
//! | a line that is not UTF-8 | connection dropped (`UnicodeDecodeError`) | [`LineError::NotUtf8`], skipped |
//! | a name that is unsafe on disk (`a..b`, `/`, NUL) | stored under an odd path | [`LineError::Name`], skipped |
//! | a last line without `\n` when the peer closes | lost | decoded by [`LineDecoder::decode_eof`] |
//!
//! NaN values and the `-1` timestamp are not errors here: carbon's receivers drop the first and
//! replace the second after parsing, which [`Datapoint::received`](crate::Datapoint::received)
//! reproduces.
#![warn(clippy::indexing_slicing)]

use std::fmt::Write as _;

use bytes::BytesMut;

use crate::framing::{Framed, LineFramer};

use crate::metric::{MetricName, NameError, Point, check_name};
use crate::pyfloat::parse_py_float;

/// Longest line accepted, as carbon's (Twisted `LineOnlyReceiver.MAX_LENGTH`).
pub const MAX_LINE_BYTES: usize = 16384;

/// Why a line was skipped.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum LineError {
    /// The line is longer than the limit; it is skipped up to its end.
    #[error("line longer than {max} bytes")]
    TooLong {
        /// The limit.
        max: usize,
    },
    /// The line is not valid UTF-8.
    #[error("line is not UTF-8 (invalid byte at {at})")]
    NotUtf8 {
        /// Offset of the first invalid byte.
        at: usize,
    },
    /// Not exactly three whitespace-separated fields.
    #[error("expected 3 fields (metric value timestamp), found {found}")]
    FieldCount {
        /// How many fields there were.
        found: usize,
    },
    /// The timestamp is not a number.
    #[error("timestamp {0:?} is not a number")]
    BadTimestamp(String),
    /// The value is not a number.
    #[error("value {0:?} is not a number")]
    BadValue(String),
    /// The name is not safe to store.
    #[error("bad metric name: {0}")]
    Name(#[from] NameError),
}

/// A good line: the name borrowed from the input, value and timestamp as carbon parses them.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Line<'a> {
    /// The metric name (already checked as [`MetricName::new`] checks it).
    pub name: &'a str,
    /// The value.
    pub value: f64,
    /// The timestamp.
    pub timestamp: f64,
}

impl Line<'_> {
    /// An owned [`Point`] (allocates the name).
    pub fn to_point(&self) -> Point {
        // The name was checked when the line was parsed.
        let name = MetricName::new(self.name).unwrap_or_else(|_| unreachable_name());
        Point::new(name, self.timestamp, self.value)
    }
}

#[cold]
fn unreachable_name() -> MetricName {
    // `parse_line` only returns names that passed `check_name`.
    unreachable!("a parsed line always has a valid name")
}

/// A skipped line: its bytes (for the log) and why.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct BadLine<'a> {
    /// The line as received, without its `\n`. For [`LineError::TooLong`], only the first
    /// bytes of it.
    pub line: &'a [u8],
    /// Why it was skipped.
    pub error: &'a LineError,
}

/// Parses one line (without its `\n`) as carbon does.
///
/// ```
/// use carbon_proto::plaintext::{parse_line, LineError};
/// let line = parse_line(b"servers.web01.load 0.5 1700000000\r").unwrap();
/// assert_eq!((line.name, line.value, line.timestamp), ("servers.web01.load", 0.5, 1.7e9));
/// assert_eq!(parse_line(b"a 1"), Err(LineError::FieldCount { found: 2 }));
/// ```
///
/// # Errors
///
/// The [`LineError`] that applies; the timestamp is checked before the value, as carbon does.
pub fn parse_line(line: &[u8]) -> Result<Line<'_>, LineError> {
    let text = match std::str::from_utf8(line) {
        Ok(t) => t,
        Err(e) => return Err(LineError::NotUtf8 { at: e.valid_up_to() }),
    };
    let mut fields: [&str; 3] = [""; 3];
    let found = if text.is_ascii() {
        split_ascii(text, &mut fields)
    } else {
        split_unicode(text, &mut fields)
    };
    if found != 3 {
        return Err(LineError::FieldCount { found });
    }
    let [name, value, timestamp] = fields;
    let timestamp =
        parse_py_float(timestamp).ok_or_else(|| LineError::BadTimestamp(timestamp.to_string()))?;
    let value = parse_py_float(value).ok_or_else(|| LineError::BadValue(value.to_string()))?;
    check_name(name)?;
    Ok(Line { name, value, timestamp })
}

/// Python's whitespace among ASCII bytes: `\t \n \v \f \r`, `\x1c`-`\x1f` and space.
const fn is_py_ascii_space(b: u8) -> bool {
    matches!(b, b'\t'..=b'\r' | 0x1c..=0x1f | b' ')
}

/// Python's `str.isspace` for any character.
fn is_py_space(c: char) -> bool {
    c.is_whitespace() || ('\u{1c}'..='\u{1f}').contains(&c)
}

/// Splits on whitespace into `fields`; returns how many fields there are (counting past 3).
fn split_ascii<'a>(text: &'a str, fields: &mut [&'a str; 3]) -> usize {
    let b = text.as_bytes();
    let mut found = 0;
    let mut i = 0;
    while i < b.len() {
        while b.get(i).is_some_and(|&c| is_py_ascii_space(c)) {
            i += 1;
        }
        if i >= b.len() {
            break;
        }
        let start = i;
        while b.get(i).is_some_and(|&c| !is_py_ascii_space(c)) {
            i += 1;
        }
        if let (Some(slot), Some(field)) = (fields.get_mut(found), text.get(start..i)) {
            *slot = field;
        }
        found += 1;
    }
    found
}

fn split_unicode<'a>(text: &'a str, fields: &mut [&'a str; 3]) -> usize {
    let mut found = 0;
    for field in text.split(is_py_space).filter(|f| !f.is_empty()) {
        if let Some(slot) = fields.get_mut(found) {
            *slot = field;
        }
        found += 1;
    }
    found
}

/// Frames lines out of a TCP stream and parses them.
///
/// Feed it the connection's buffer after every read; it takes the complete lines off the front
/// and leaves a partial last line for the next read. Memory is bounded: a line longer than the
/// limit is reported once and its bytes are dropped as they arrive, up to its `\n`.
///
/// ```
/// use bytes::BytesMut;
/// use carbon_proto::plaintext::LineDecoder;
///
/// let mut decoder = LineDecoder::new();
/// let mut buf = BytesMut::from(&b"a.b 1 1700000000\nbad line\nc.d 2 17000"[..]);
/// let (mut good, mut bad) = (Vec::new(), 0);
/// decoder.decode(&mut buf, |line| match line {
///     Ok(line) => good.push(line.to_point()),
///     Err(_) => bad += 1,
/// });
/// assert_eq!((good.len(), bad), (1, 1));
/// assert_eq!(&buf[..], b"c.d 2 17000"); // waits for the rest of the line
/// ```
#[derive(Debug, Clone)]
pub struct LineDecoder {
    framer: LineFramer,
    /// The error handed out for overlong lines (kept so `BadLine` can borrow it).
    too_long: LineError,
}

impl Default for LineDecoder {
    fn default() -> LineDecoder {
        LineDecoder::new()
    }
}

impl LineDecoder {
    /// A decoder with carbon's limit of [`MAX_LINE_BYTES`].
    pub fn new() -> LineDecoder {
        LineDecoder::with_max_line(MAX_LINE_BYTES)
    }

    /// A decoder with a line limit of `max_line` bytes (at least 1).
    pub fn with_max_line(max_line: usize) -> LineDecoder {
        let max_line = max_line.max(1);
        LineDecoder {
            framer: LineFramer::new(max_line),
            too_long: LineError::TooLong { max: max_line },
        }
    }

    /// Takes every complete line off the front of `buf` and hands each, parsed, to `sink`.
    /// A partial last line stays in `buf`.
    pub fn decode<F>(&mut self, buf: &mut BytesMut, mut sink: F)
    where
        F: FnMut(Result<Line<'_>, BadLine<'_>>),
    {
        let too_long = &self.too_long;
        self.framer.frame(buf, |framed| deliver_framed(framed, too_long, &mut sink));
    }

    /// Decodes the complete lines at the front of `data` without touching it: good lines are
    /// pushed to `good` (borrowing `data`), bad ones handed to `bad`. Returns how many bytes
    /// to drop from the front of the buffer once `good` has been used.
    ///
    /// This is the form a server wants: one batch of borrowed points per read, handed to the
    /// store in one call.
    ///
    /// ```
    /// use bytes::{Buf, BytesMut};
    /// use carbon_proto::plaintext::LineDecoder;
    ///
    /// let mut buf = BytesMut::from(&b"a 1 10\nb 2 20\nc 3"[..]);
    /// let mut decoder = LineDecoder::new();
    /// let mut batch = Vec::new();
    /// let used = decoder.decode_batch(&buf, &mut batch, |_| {});
    /// assert_eq!(batch.iter().map(|l| l.name).collect::<Vec<_>>(), ["a", "b"]);
    /// batch.clear();
    /// buf.advance(used);
    /// assert_eq!(&buf[..], b"c 3");
    /// ```
    pub fn decode_batch<'b, F>(
        &mut self,
        data: &'b [u8],
        good: &mut Vec<Line<'b>>,
        mut bad: F,
    ) -> usize
    where
        F: FnMut(BadLine<'_>),
    {
        let too_long = &self.too_long;
        self.framer.frame_slice(data, |framed| match framed {
            Framed::Line(line) => match parse_line(line) {
                Ok(l) => good.push(l),
                Err(error) => bad(BadLine { line, error: &error }),
            },
            Framed::TooLong(head) => bad(BadLine { line: head, error: too_long }),
        })
    }

    /// At end of stream: decodes what is left in `buf` as a last line, even without its `\n`
    /// (carbon drops such a line), and empties `buf`.
    pub fn decode_eof<F>(&mut self, buf: &mut BytesMut, mut sink: F)
    where
        F: FnMut(Result<Line<'_>, BadLine<'_>>),
    {
        let too_long = &self.too_long;
        self.framer.frame_eof(buf, |framed| deliver_framed(framed, too_long, &mut sink));
    }

    /// Decodes everything in `buf` (complete lines; see [`decode`](Self::decode)) into owned
    /// points and errors. Convenient where speed does not matter.
    pub fn decode_to_vec(&mut self, buf: &mut BytesMut) -> Vec<Result<Point, LineError>> {
        let mut out = Vec::new();
        self.decode(buf, |r| {
            out.push(r.map(|l| l.to_point()).map_err(|b| b.error.clone()));
        });
        out
    }
}

fn deliver_framed<F>(framed: Framed<'_>, too_long: &LineError, sink: &mut F)
where
    F: FnMut(Result<Line<'_>, BadLine<'_>>),
{
    match framed {
        Framed::Line(line) => deliver(line, sink),
        Framed::TooLong(head) => sink(Err(BadLine { line: head, error: too_long })),
    }
}

/// Parses one line and hands the result to `sink`. An empty line is a bad line
/// ([`LineError::FieldCount`] of 0), as carbon logs it.
fn deliver<F>(line: &[u8], sink: &mut F)
where
    F: FnMut(Result<Line<'_>, BadLine<'_>>),
{
    match parse_line(line) {
        Ok(l) => sink(Ok(l)),
        Err(error) => sink(Err(BadLine { line, error: &error })),
    }
}

/// Parses a UDP datagram: one or more lines, split as Python's `str.splitlines` does (on `\n`,
/// `\r`, `\r\n`, `\v`, `\f`, `\x1c`-`\x1e`, and the Unicode line separators), as carbon's
/// `MetricDatagramReceiver` does. Each line is parsed on its own, so one bad line costs only
/// itself (carbon drops the whole datagram when any of it is not UTF-8).
pub fn decode_datagram<F>(datagram: &[u8], mut sink: F)
where
    F: FnMut(Result<Line<'_>, BadLine<'_>>),
{
    for_each_datagram_line(datagram, |line| deliver(line, &mut sink));
}

/// As [`decode_datagram`], collecting good lines (borrowing the datagram) into `good` so a
/// server can hand them to the store in one call; bad ones go to `bad`.
pub fn decode_datagram_batch<'a, F>(datagram: &'a [u8], good: &mut Vec<Line<'a>>, mut bad: F)
where
    F: FnMut(BadLine<'_>),
{
    for_each_datagram_line(datagram, |line| match parse_line(line) {
        Ok(l) => good.push(l),
        Err(error) => bad(BadLine { line, error: &error }),
    });
}

/// Calls `f` with every line of a datagram, split as Python's `str.splitlines`.
fn for_each_datagram_line<'a>(datagram: &'a [u8], mut f: impl FnMut(&'a [u8])) {
    let b = datagram;
    let mut start = 0;
    let mut i = 0;
    while i < b.len() {
        // Skip quickly over bytes that cannot start a line boundary.
        match b.get(i..).and_then(|rest| rest.iter().position(|&c| may_break(c))) {
            Some(skip) => i += skip,
            None => break,
        }
        let (brk, len) = line_break_at(b, i);
        if brk {
            f(b.get(start..i).unwrap_or_default());
            i += len;
            start = i;
        } else {
            i += 1;
        }
    }
    if start < b.len() {
        f(b.get(start..).unwrap_or_default());
    }
}

/// Whether `c` may start a `str.splitlines` boundary.
#[allow(clippy::indexing_slicing)] // A u8 always indexes a 256-entry table.
fn may_break(c: u8) -> bool {
    MAY_BREAK[usize::from(c)]
}

/// Bytes that may start a `str.splitlines` boundary (the first byte of each).
#[allow(clippy::indexing_slicing)] // Constant indexes below 256, checked at compile time.
const MAY_BREAK: [bool; 256] = {
    let mut t = [false; 256];
    let starts: [u8; 9] = [b'\n', b'\r', 0x0b, 0x0c, 0x1c, 0x1d, 0x1e, 0xc2, 0xe2];
    let mut k = 0;
    while k < starts.len() {
        t[starts[k] as usize] = true;
        k += 1;
    }
    t
};

/// Whether a `str.splitlines` boundary starts at byte `i`, and its length in bytes.
fn line_break_at(b: &[u8], i: usize) -> (bool, usize) {
    match b.get(i..).unwrap_or_default() {
        [b'\r', b'\n', ..] => (true, 2),
        [b'\n' | b'\r' | 0x0b | 0x0c | 0x1c..=0x1e, ..] => (true, 1),
        [0xc2, 0x85, ..] => (true, 2),              // U+0085
        [0xe2, 0x80, 0xa8 | 0xa9, ..] => (true, 3), // U+2028, U+2029
        _ => (false, 1),
    }
}

/// Appends a line as carbon's relay sends it (`CarbonLineClientProtocol`): the value with
/// `%.10f` and trailing zeros and dot removed, the timestamp as an integer (truncated).
///
/// ```
/// use carbon_proto::plaintext::encode_line;
/// let mut out = Vec::new();
/// encode_line(&mut out, "a.b", 1.5, 1700000000.9);
/// encode_line(&mut out, "c", 100.0, 1700000000.0);
/// assert_eq!(out, b"a.b 1.5 1700000000\nc 100 1700000000\n");
/// ```
pub fn encode_line(out: &mut Vec<u8>, name: &str, value: f64, timestamp: f64) {
    out.extend_from_slice(name.as_bytes());
    out.push(b' ');
    push_value(out, value);
    out.push(b' ');
    let mut s = String::new();
    // `%d` of a float truncates toward zero; saturating for absurd timestamps.
    let _ = write!(s, "{}", timestamp.trunc() as i64);
    out.extend_from_slice(s.as_bytes());
    out.push(b'\n');
}

fn push_value(out: &mut Vec<u8>, value: f64) {
    if value.is_nan() {
        out.extend_from_slice(b"nan");
        return;
    }
    let mut s = String::with_capacity(24);
    let _ = write!(s, "{value:.10}");
    if s.contains('.') {
        let trimmed = s.trim_end_matches('0').trim_end_matches('.');
        out.extend_from_slice(trimmed.as_bytes());
    } else {
        out.extend_from_slice(s.as_bytes());
    }
}

/// Appends `name value timestamp\n` with the shortest exact value (Python's `repr`), for
/// senders that want values to round-trip bit for bit.
pub fn encode_line_exact(out: &mut Vec<u8>, name: &str, value: f64, timestamp: i64) {
    out.extend_from_slice(name.as_bytes());
    let _ = writeln_into(out, format_args!(" {} {timestamp}", ExactValue(value)));
}

fn writeln_into(out: &mut Vec<u8>, args: std::fmt::Arguments<'_>) -> std::fmt::Result {
    let mut s = String::new();
    s.write_fmt(args)?;
    out.extend_from_slice(s.as_bytes());
    out.push(b'\n');
    Ok(())
}

/// Shortest round-trip text of a float that Python's `float()` reads back: Rust's `{:?}`-style
/// digits, with `inf`/`-inf`/`nan`.
struct ExactValue(f64);

impl std::fmt::Display for ExactValue {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let v = self.0;
        if v.is_nan() {
            f.write_str("nan")
        } else if v.is_infinite() {
            f.write_str(if v > 0.0 { "inf" } else { "-inf" })
        } else {
            write!(f, "{v:?}")
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::indexing_slicing)]
    use super::*;

    fn parse(s: &str) -> Result<(String, f64, f64), LineError> {
        parse_line(s.as_bytes()).map(|l| (l.name.to_string(), l.value, l.timestamp))
    }

    #[test]
    fn accepts_what_carbon_accepts() {
        assert_eq!(parse("a.b 1 2").unwrap(), ("a.b".into(), 1.0, 2.0));
        assert_eq!(
            parse("  a.b\t1.5e3   1700000000.5 \r").unwrap(),
            ("a.b".into(), 1500.0, 1_700_000_000.5)
        );
        assert_eq!(parse("a inf 2").unwrap().1, f64::INFINITY);
        assert!(parse("a nan 2").unwrap().1.is_nan());
        assert_eq!(parse("a 1_000 -1").unwrap(), ("a".into(), 1000.0, -1.0));
        // \x1c is whitespace to Python: two fields here would be three.
        assert_eq!(parse("a\x1c1 2").unwrap(), ("a".into(), 1.0, 2.0));
        // Non-ASCII names and Unicode spaces.
        assert_eq!(parse("héllo\u{3000}1 2").unwrap(), ("héllo".into(), 1.0, 2.0));
        assert_eq!(parse("cpu;host=a 1 2").unwrap().0, "cpu;host=a");
    }

    #[test]
    fn refuses_what_carbon_refuses_and_more() {
        assert_eq!(parse(""), Err(LineError::FieldCount { found: 0 }));
        assert_eq!(parse("a 1 2 3"), Err(LineError::FieldCount { found: 4 }));
        assert_eq!(parse("a x 2"), Err(LineError::BadValue("x".into())));
        assert_eq!(parse("a x y"), Err(LineError::BadTimestamp("y".into())));
        assert_eq!(parse_line(b"a\xff 1 2"), Err(LineError::NotUtf8 { at: 1 }));
        assert_eq!(parse("a..b 1 2"), Err(LineError::Name(NameError::EmptyComponent { index: 1 })));
        assert_eq!(parse("../../etc/x 1 2"), Err(LineError::Name(NameError::Slash { at: 2 })));
        assert_eq!(parse("a/b 1 2"), Err(LineError::Name(NameError::Slash { at: 1 })));
    }

    fn run(decoder: &mut LineDecoder, buf: &mut BytesMut) -> (Vec<String>, Vec<LineError>) {
        let (mut good, mut bad) = (Vec::new(), Vec::new());
        decoder.decode(buf, |r| match r {
            Ok(l) => good.push(l.name.to_string()),
            Err(b) => bad.push(b.error.clone()),
        });
        (good, bad)
    }

    #[test]
    fn bad_lines_do_not_cost_their_neighbours() {
        let mut d = LineDecoder::new();
        let mut buf = BytesMut::from(&b"a 1 2\n\xff\xfe\nb 1\nc 3 4\r\n"[..]);
        let (good, bad) = run(&mut d, &mut buf);
        assert_eq!(good, ["a", "c"]);
        assert_eq!(bad.len(), 2);
        assert!(buf.is_empty());
    }

    #[test]
    fn overlong_lines_are_skipped_to_their_end_without_buffering_them() {
        let mut d = LineDecoder::with_max_line(8);
        let mut buf = BytesMut::from(&b"a 1 2\nxxxxxxxxxxxx"[..]);
        let (good, bad) = run(&mut d, &mut buf);
        assert_eq!((good.len(), bad.len()), (1, 1));
        assert!(buf.is_empty(), "the overlong line's bytes are dropped");
        buf.extend_from_slice(b"yyyyyyyyyyyyyyyyy");
        let (good, bad) = run(&mut d, &mut buf);
        assert_eq!((good.len(), bad.len()), (0, 0));
        buf.extend_from_slice(b"zz\nb 1 2\n");
        let (good, bad) = run(&mut d, &mut buf);
        assert_eq!((good, bad.len()), (vec!["b".to_string()], 0));
    }

    #[test]
    fn partial_lines_wait_and_eof_takes_the_last_one() {
        let mut d = LineDecoder::new();
        let mut buf = BytesMut::from(&b"a 1"[..]);
        assert_eq!(run(&mut d, &mut buf).0.len(), 0);
        buf.extend_from_slice(b" 2\nb 5 6");
        assert_eq!(run(&mut d, &mut buf).0, ["a"]);
        let mut names = Vec::new();
        d.decode_eof(&mut buf, |r| names.push(r.unwrap().name.to_string()));
        assert_eq!(names, ["b"]);
        assert!(buf.is_empty());
    }

    #[test]
    fn datagrams_split_like_python_splitlines() {
        let mut names = Vec::new();
        decode_datagram(b"a 1 2\rb 1 2\r\nc 1 2\x0bd 1 2\n\ne x\n", |r| {
            names.push(r.map(|l| l.name.to_string()).map_err(|b| b.error.clone()))
        });
        assert_eq!(names.len(), 6);
        assert_eq!(names[..4].iter().flatten().count(), 4);
    }

    #[test]
    fn encodes_like_carbon_relay() {
        let mut out = Vec::new();
        encode_line(&mut out, "a", 0.1, 5.0);
        encode_line(&mut out, "a", -0.0, 5.0);
        encode_line(&mut out, "a", 1e-11, 5.0);
        encode_line(&mut out, "a", f64::INFINITY, 5.0);
        encode_line(&mut out, "a", 123_456_789.123_456_79, -1.5);
        // What CPython prints for ("%.10f" % v).rstrip('0').rstrip('.') and "%d" % ts.
        assert_eq!(
            String::from_utf8(out).unwrap(),
            "a 0.1 5\na -0 5\na 0 5\na inf 5\na 123456789.123456791 -1\n"
        );
        let mut out = Vec::new();
        encode_line_exact(&mut out, "a", 0.1 + 0.2, 7);
        assert_eq!(out, b"a 0.30000000000000004 7\n");
    }
}
