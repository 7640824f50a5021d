//! Python-compatible formatting: what the whisper-* scripts print, byte for byte.
//!
//! The Python tools format with `%`-formatting (`'%f'`, `'%g'`, `'%10.35g'`), `str()` and `repr()`
//! of floats, lists and dicts, `json.dumps` with various separators, `time.ctime` and
//! `time.strftime`. Scripts parse that output, so our tools reproduce it exactly; this module is
//! the one place that knows how.
//!
//! The hot formatters ([`format_g`], [`format_f`]) append to a caller's `String` without
//! allocating, so `whisper-dump` can format a million lines with one buffer.

use std::fmt::{self, Write as _};
use std::io;
use std::path::Path;

pub use whisper::FloatRepr;

/// Appends C/Python `'%{width}.{precision}g' % x` to `out`.
///
/// Python formats `%g` as C does: `precision` significant digits (0 counts as 1), fixed notation
/// when the decimal exponent `X` satisfies `-4 <= X < precision`, else `d.ddde+XX`; trailing
/// zeros removed; right-aligned in `width`. NaN prints as `nan` whatever its sign (Python never
/// prints `-nan`), infinities as `inf` and `-inf`.
pub fn format_g(out: &mut String, x: f64, width: usize, precision: usize) {
    let start = out.len();
    if x.is_nan() {
        out.push_str("nan");
    } else if x.is_infinite() {
        out.push_str(if x > 0.0 { "inf" } else { "-inf" });
    } else if x == 0.0 {
        // The common case in whisper-dump (empty slots): skip the digit generation.
        out.push_str(if x.is_sign_negative() { "-0" } else { "0" });
    } else {
        let precision = precision.max(1);
        let mut sci = StackStr::new();
        // Rust's `{:.*e}` rounds exactly (half to even on exact ties), as C and Python do. It
        // is fast up to 17 digits; beyond, it falls back to bignums, so most values take the
        // 128-bit route of `exact_scientific` (same digits, about ten times faster).
        if (precision > 17 && exact_scientific(&mut sci, x, precision))
            || write!(sci, "{:.*e}", precision - 1, x).is_ok()
        {
            g_from_scientific(out, sci.as_str(), precision);
        } else {
            // More digits than the stack buffer holds: only for precisions far beyond what
            // the tools use. Allocate instead.
            let sci = format!("{:.*e}", precision - 1, x);
            g_from_scientific(out, &sci, precision);
        }
    }
    pad_left(out, start, width);
}

/// Writes `x` as Rust's `{:.*e}` with `precision` significant digits would (`-d.ddde-7`),
/// computing the exact decimal expansion in 128-bit arithmetic. Returns `false`, having written
/// nothing, for values outside its range: those below 2^-71 or above 2^53 (rare in metrics)
/// and precisions above 40 (whose digits would not fit the buffer).
///
/// `x = m * 2^-k` with a 53-bit `m`: the integer part is `m >> k`, and each further digit is
/// the integer part of ten times the remaining fraction (`k <= 124` keeps `10 * 2^k` within
/// 128 bits). What is left after the last digit decides the rounding, half to even.
fn exact_scientific(out: &mut StackStr, x: f64, precision: usize) -> bool {
    const MAX_DIGITS: usize = 40;
    if !x.is_finite() || x == 0.0 || precision > MAX_DIGITS {
        return false;
    }
    let bits = x.to_bits();
    let biased = ((bits >> 52) & 0x7ff) as i32;
    if biased == 0 {
        return false; // subnormal
    }
    let m = u128::from((bits & ((1 << 52) - 1)) | (1 << 52));
    let k = 1075 - biased; // x = m * 2^-k
    if !(0..=124).contains(&k) {
        return false;
    }
    let k = k as u32;
    let integer = (m >> k) as u64; // < 2^53, at most 16 digits
    let mask = (1u128 << k) - 1;
    let mut fraction = m & mask;

    let mut digits = [0u8; MAX_DIGITS];
    let mut n = 0usize;
    // Decimal exponent of the first significant digit.
    let mut exp10: i32;
    if integer > 0 {
        let mut buf = [0u8; 20];
        let mut i = buf.len();
        let mut v = integer;
        while v > 0 {
            i -= 1;
            buf[i] = (v % 10) as u8;
            v /= 10;
        }
        let len = buf.len() - i;
        if len > precision {
            return false; // rounding inside the integer part: leave it to Rust
        }
        digits[..len].copy_from_slice(&buf[i..]);
        n = len;
        exp10 = len as i32 - 1;
    } else {
        exp10 = 0;
    }
    while n < precision {
        fraction *= 10;
        let d = (fraction >> k) as u8;
        fraction &= mask;
        if n == 0 && d == 0 {
            exp10 -= 1; // a leading zero is not significant
            continue;
        }
        if n == 0 {
            exp10 -= 1;
        }
        digits[n] = d;
        n += 1;
    }
    // Round half to even on what is left: `fraction / 2^k` of one unit in the last digit.
    if k > 0 {
        let half = 1u128 << (k - 1);
        if fraction > half || (fraction == half && digits[n - 1] % 2 == 1) {
            let mut i = n;
            loop {
                if i == 0 {
                    // All nines: 99.9 becomes 100.0, one more decimal place.
                    digits[0] = 1;
                    exp10 += 1;
                    break;
                }
                i -= 1;
                if digits[i] == 9 {
                    digits[i] = 0;
                } else {
                    digits[i] += 1;
                    break;
                }
            }
        }
    }
    let mut text = [0u8; MAX_DIGITS + 1];
    text[0] = b'0' + digits[0];
    let mut len = 1;
    if n > 1 {
        text[1] = b'.';
        len = 2;
        for d in &digits[1..n] {
            text[len] = b'0' + d;
            len += 1;
        }
    }
    if x < 0.0 {
        let _ = out.write_str("-");
    }
    // ASCII digits and a point: valid UTF-8.
    let _ = out.write_str(std::str::from_utf8(&text[..len]).unwrap_or("0"));
    let _ = write!(out, "e{exp10}");
    true
}

/// Lays out `'%g'` from Rust's scientific form `-d.ddddde-7`.
fn g_from_scientific(out: &mut String, sci: &str, precision: usize) {
    let (mantissa, exp) = sci.split_once('e').unwrap_or((sci, "0"));
    let exp: i64 = exp.parse().unwrap_or(0);
    let (negative, mantissa) = match mantissa.strip_prefix('-') {
        Some(m) => (true, m),
        None => (false, mantissa),
    };
    if negative {
        out.push('-');
    }
    // The significant digits without the point, trailing zeros dropped ('%g' drops them).
    let (int_digit, frac) = mantissa.split_once('.').unwrap_or((mantissa, ""));
    let frac = frac.trim_end_matches('0');
    if exp >= -4 && exp < precision as i64 {
        if exp >= 0 {
            // Digits before the point: the first one plus `exp` more (padded with zeros).
            let exp = exp as usize;
            out.push_str(int_digit);
            let (before, after) = frac.split_at(exp.min(frac.len()));
            out.push_str(before);
            out.extend(std::iter::repeat_n('0', exp - before.len()));
            if !after.is_empty() {
                out.push('.');
                out.push_str(after);
            }
        } else {
            out.push_str("0.");
            out.extend(std::iter::repeat_n('0', (-exp - 1) as usize));
            out.push_str(int_digit);
            out.push_str(frac);
        }
    } else {
        out.push_str(int_digit);
        if !frac.is_empty() {
            out.push('.');
            out.push_str(frac);
        }
        out.push('e');
        out.push(if exp < 0 { '-' } else { '+' });
        let a = exp.unsigned_abs();
        if a < 10 {
            out.push('0');
        }
        let _ = write!(out, "{a}");
    }
}

/// Appends C/Python `'%.{precision}f' % x` to `out` (`'%f'` is precision 6).
///
/// Rust prints the exact decimal expansion rounded half to even, as C does; only NaN and the
/// infinities are spelled differently.
pub fn format_f(out: &mut String, x: f64, precision: usize) {
    if x.is_nan() {
        out.push_str("nan");
    } else if x.is_infinite() {
        out.push_str(if x > 0.0 { "inf" } else { "-inf" });
    } else {
        let _ = write!(out, "{x:.precision$}");
    }
}

/// Right-aligns what was appended to `out` since `start` in a field of `width` characters.
fn pad_left(out: &mut String, start: usize, width: usize) {
    const SPACES: &str = "                                ";
    let len = out.len() - start;
    let mut missing = width.saturating_sub(len);
    while missing > 0 {
        let n = missing.min(SPACES.len());
        out.insert_str(start, &SPACES[..n]);
        missing -= n;
    }
}

/// A small fixed buffer for `write!`, so formatting a float needs no heap allocation.
struct StackStr {
    buf: [u8; 96],
    len: usize,
}

impl StackStr {
    fn new() -> StackStr {
        StackStr { buf: [0; 96], len: 0 }
    }

    fn as_str(&self) -> &str {
        // Only whole `&str`s are ever copied in (see `write_str`), so this cannot fail.
        std::str::from_utf8(&self.buf[..self.len]).unwrap_or("")
    }
}

impl fmt::Write for StackStr {
    fn write_str(&mut self, s: &str) -> fmt::Result {
        let end = self.len + s.len();
        let dst = self.buf.get_mut(self.len..end).ok_or(fmt::Error)?;
        dst.copy_from_slice(s.as_bytes());
        self.len = end;
        Ok(())
    }
}

/// A Python value, for `repr()`, `str()` and `json.dumps()` of the dicts and lists the scripts
/// print.
#[derive(Clone, Debug, PartialEq)]
pub enum PyValue {
    /// `None` (JSON `null`).
    None,
    /// An `int`.
    Int(i128),
    /// A `float`.
    Float(f64),
    /// A `str`.
    Str(String),
    /// A `list`.
    List(Vec<PyValue>),
    /// A `dict`, in insertion order.
    Dict(Vec<(String, PyValue)>),
}

impl PyValue {
    /// A float or `None`.
    pub fn opt_float(x: Option<f64>) -> PyValue {
        x.map_or(PyValue::None, PyValue::Float)
    }

    /// Python's `repr(value)`.
    pub fn repr(&self) -> String {
        let mut s = String::new();
        self.write_repr(&mut s);
        s
    }

    /// Python's `str(value)`: as `repr`, except that a string is printed as it is.
    pub fn to_py_str(&self) -> String {
        match self {
            PyValue::Str(s) => s.clone(),
            other => other.repr(),
        }
    }

    fn write_repr(&self, out: &mut String) {
        match self {
            PyValue::None => out.push_str("None"),
            PyValue::Int(i) => {
                let _ = write!(out, "{i}");
            }
            PyValue::Float(x) => {
                let _ = write!(out, "{}", FloatRepr(*x));
            }
            PyValue::Str(s) => write_str_repr(out, s),
            PyValue::List(items) => {
                out.push('[');
                for (i, item) in items.iter().enumerate() {
                    if i > 0 {
                        out.push_str(", ");
                    }
                    item.write_repr(out);
                }
                out.push(']');
            }
            PyValue::Dict(items) => {
                out.push('{');
                for (i, (key, value)) in items.iter().enumerate() {
                    if i > 0 {
                        out.push_str(", ");
                    }
                    write_str_repr(out, key);
                    out.push_str(": ");
                    value.write_repr(out);
                }
                out.push('}');
            }
        }
    }
}

/// Python's `str(list)` of floats and `None`s, such as `[1.0, None, nan]`.
pub fn float_list_repr(values: &[Option<f64>]) -> String {
    let mut out = String::with_capacity(values.len() * 8 + 2);
    out.push('[');
    for (i, v) in values.iter().enumerate() {
        if i > 0 {
            out.push_str(", ");
        }
        match v {
            Some(x) => {
                let _ = write!(out, "{}", FloatRepr(*x));
            }
            None => out.push_str("None"),
        }
    }
    out.push(']');
    out
}

/// Python's `str(list)` of ints, such as `[60, 120]`.
pub fn int_list_repr(values: &[i64]) -> String {
    let mut out = String::with_capacity(values.len() * 12 + 2);
    out.push('[');
    for (i, v) in values.iter().enumerate() {
        if i > 0 {
            out.push_str(", ");
        }
        let _ = write!(out, "{v}");
    }
    out.push(']');
    out
}

/// Python 3's `repr(range(start, stop, step))`: the step is left out when it is 1.
pub fn range_repr(start: i64, stop: i64, step: i64) -> String {
    if step == 1 {
        format!("range({start}, {stop})")
    } else {
        format!("range({start}, {stop}, {step})")
    }
}

/// Python's `repr(str)`: single quotes unless the text has a `'` and no `"`, with escapes for
/// backslashes, the quote, and characters that are not printable.
///
/// Printability follows `str.isprintable` for ASCII and Latin-1 exactly; above that, only the
/// line and paragraph separators and the byte-order mark are escaped (a close approximation).
pub fn str_repr(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    write_str_repr(&mut out, s);
    out
}

fn write_str_repr(out: &mut String, s: &str) {
    let quote = if s.contains('\'') && !s.contains('"') { '"' } else { '\'' };
    out.push(quote);
    for c in s.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            '\t' => out.push_str("\\t"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            c if c == quote => {
                out.push('\\');
                out.push(c);
            }
            c if (c as u32) < 0x20 || (0x7f..=0xa0).contains(&(c as u32)) || c == '\u{ad}' => {
                let _ = write!(out, "\\x{:02x}", c as u32);
            }
            '\u{2028}' | '\u{2029}' | '\u{feff}' => {
                let _ = write!(out, "\\u{:04x}", c as u32);
            }
            c => out.push(c),
        }
    }
    out.push(quote);
}

/// `str()` of the `OSError` Python raises for `path`: `[Errno 2] No such file or directory:
/// 'x.wsp'`. Errors without an OS error number print as Rust prints them.
pub fn os_error(e: &io::Error, path: &Path) -> String {
    match e.raw_os_error() {
        Some(code) => {
            // Rust's text is strerror(3), as Python's, followed by " (os error N)".
            let text = io::Error::from_raw_os_error(code).to_string();
            let text = text.split(" (os error").next().unwrap_or(&text).to_string();
            format!("[Errno {code}] {text}: {}", str_repr(&path.to_string_lossy()))
        }
        None => format!("{e}: {}", str_repr(&path.to_string_lossy())),
    }
}

/// The options of one `json.dumps` call.
#[derive(Clone, Copy, Debug)]
pub struct JsonStyle {
    /// `indent=`: spaces per level; `None` prints everything on one line.
    pub indent: Option<usize>,
    /// The first of `separators=`: between items (`","`).
    pub item_separator: &'static str,
    /// The second of `separators=`: between a key and its value (`": "`).
    pub key_separator: &'static str,
    /// `sort_keys=`.
    pub sort_keys: bool,
}

/// Python's `json.dumps(value, ...)` with `ensure_ascii=True` and `allow_nan=True` (its
/// defaults): non-ASCII as `\uXXXX`, NaN and infinities as `NaN`, `Infinity`, `-Infinity`,
/// floats as `repr()`.
pub fn json_dumps(value: &PyValue, style: &JsonStyle) -> String {
    let mut out = String::new();
    write_json(&mut out, value, style, 0);
    out
}

fn json_newline(out: &mut String, style: &JsonStyle, level: usize) {
    if let Some(indent) = style.indent {
        out.push('\n');
        out.extend(std::iter::repeat_n(' ', indent * level));
    }
}

fn write_json(out: &mut String, value: &PyValue, style: &JsonStyle, level: usize) {
    match value {
        PyValue::None => out.push_str("null"),
        PyValue::Int(i) => {
            let _ = write!(out, "{i}");
        }
        PyValue::Float(x) => {
            if x.is_nan() {
                out.push_str("NaN");
            } else if x.is_infinite() {
                out.push_str(if *x > 0.0 { "Infinity" } else { "-Infinity" });
            } else {
                let _ = write!(out, "{}", FloatRepr(*x));
            }
        }
        PyValue::Str(s) => write_json_str(out, s),
        PyValue::List(items) => {
            if items.is_empty() {
                out.push_str("[]");
                return;
            }
            out.push('[');
            for (i, item) in items.iter().enumerate() {
                if i > 0 {
                    out.push_str(style.item_separator);
                }
                json_newline(out, style, level + 1);
                write_json(out, item, style, level + 1);
            }
            json_newline(out, style, level);
            out.push(']');
        }
        PyValue::Dict(items) => {
            if items.is_empty() {
                out.push_str("{}");
                return;
            }
            let mut entries: Vec<&(String, PyValue)> = items.iter().collect();
            if style.sort_keys {
                entries.sort_by(|a, b| a.0.cmp(&b.0));
            }
            out.push('{');
            for (i, (key, item)) in entries.into_iter().enumerate() {
                if i > 0 {
                    out.push_str(style.item_separator);
                }
                json_newline(out, style, level + 1);
                write_json_str(out, key);
                out.push_str(style.key_separator);
                write_json(out, item, style, level + 1);
            }
            json_newline(out, style, level);
            out.push('}');
        }
    }
}

/// A JSON string as Python's `ensure_ascii` encoder writes it: everything outside `' '..='~'`
/// escaped, astral characters as surrogate pairs.
fn write_json_str(out: &mut String, s: &str) {
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            '\u{8}' => out.push_str("\\b"),
            '\u{c}' => out.push_str("\\f"),
            ' '..='~' => out.push(c),
            c => {
                let mut units = [0u16; 2];
                for unit in c.encode_utf16(&mut units) {
                    let _ = write!(out, "\\u{unit:04x}");
                }
            }
        }
    }
    out.push('"');
}

unsafe extern "C" {
    /// POSIX `tzset(3)`, which the `libc` crate does not declare.
    fn tzset();
}

/// The local broken-down time of `t` (`time.localtime(t)`), or `None` where the C library
/// cannot represent it.
fn localtime(t: i64) -> Option<libc::tm> {
    let t = libc::time_t::try_from(t).ok()?;
    // SAFETY: `tm` is plain old data, so all zeros is a valid value to be overwritten.
    let mut tm: libc::tm = unsafe { std::mem::zeroed() };
    // Read TZ once, as Python's time module does at import (glibc's localtime_r alone may not
    // read it at all; calling tzset for every line would stat /etc/localtime every time).
    static TZSET: std::sync::Once = std::sync::Once::new();
    // SAFETY: tzset(3) takes no arguments and only updates the C library's time zone state.
    TZSET.call_once(|| unsafe { tzset() });
    // SAFETY: both pointers are to live, properly aligned values owned by this frame;
    // localtime_r is the reentrant variant and keeps no reference to them.
    let r = unsafe { libc::localtime_r(&t, &mut tm) };
    if r.is_null() { None } else { Some(tm) }
}

/// Appends Python's `time.ctime(t)` to `out`: `Tue Nov 14 22:13:20 2023` in local time, with
/// English names and the day of the month padded with a space. A time the C library cannot
/// represent is appended as the plain number.
pub fn format_ctime(out: &mut String, t: i64) {
    const DAYS: [&str; 7] = ["Sun", "Mon", "Tue", "Wed", "Thu", "Fri", "Sat"];
    const MONTHS: [&str; 12] =
        ["Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"];
    let Some(tm) = localtime(t) else {
        let _ = write!(out, "{t}");
        return;
    };
    let day = usize::try_from(tm.tm_wday).ok().and_then(|d| DAYS.get(d)).unwrap_or(&"???");
    let month = usize::try_from(tm.tm_mon).ok().and_then(|m| MONTHS.get(m)).unwrap_or(&"???");
    let _ = write!(
        out,
        "{day} {month} {:2} {:02}:{:02}:{:02} {}",
        tm.tm_mday,
        tm.tm_hour,
        tm.tm_min,
        tm.tm_sec,
        i64::from(tm.tm_year) + 1900
    );
}

/// Python's `time.ctime(t)`. See [`format_ctime`].
pub fn ctime(t: i64) -> String {
    let mut s = String::new();
    format_ctime(&mut s, t);
    s
}

/// A `time.strftime` format, prepared once to format many times (see [`Strftime::append`]).
#[derive(Clone, Debug)]
pub struct Strftime {
    /// The format for the C library; `None` when it holds a NUL byte (Python raises).
    format: Option<std::ffi::CString>,
    /// Python gives up on an empty result once the buffer reaches 256 bytes per format byte.
    limit: usize,
}

impl Strftime {
    /// Prepares `format`.
    pub fn new(format: &str) -> Strftime {
        Strftime { format: std::ffi::CString::new(format).ok(), limit: 256 * format.len() }
    }

    /// Appends Python's `time.strftime(format, time.localtime(t))` to `out`, through the C
    /// library's `strftime` as Python does (so `%c` and friends follow the C locale, which
    /// Python leaves in place for `LC_TIME`).
    ///
    /// Like Python, the buffer doubles from 1024 bytes until the result fits or reaches 256
    /// bytes per format byte; a result that never fits is empty. A format with a NUL byte, or
    /// a time the C library cannot represent, appends nothing.
    pub fn append(&self, out: &mut String, t: i64) {
        let (Some(tm), Some(format)) = (localtime(t), &self.format) else {
            return;
        };
        let mut stack = [0u8; 1024];
        let n = c_strftime(&mut stack, format, &tm);
        if n > 0 || stack.len() >= self.limit {
            out.push_str(&String::from_utf8_lossy(stack.get(..n).unwrap_or_default()));
            return;
        }
        let mut size = 2 * stack.len();
        loop {
            let mut buf = vec![0u8; size];
            let n = c_strftime(&mut buf, format, &tm);
            if n > 0 || size >= self.limit {
                out.push_str(&String::from_utf8_lossy(buf.get(..n).unwrap_or_default()));
                return;
            }
            size *= 2;
        }
    }
}

/// `strftime(3)` into `buf`; returns the length written, 0 when it did not fit.
fn c_strftime(buf: &mut [u8], format: &std::ffi::CStr, tm: &libc::tm) -> usize {
    // SAFETY: `buf` has `buf.len()` writable bytes; `format` is NUL-terminated and `tm` is a
    // valid broken-down time; strftime writes at most `buf.len()` bytes and keeps no pointers.
    unsafe {
        libc::strftime(buf.as_mut_ptr().cast::<libc::c_char>(), buf.len(), format.as_ptr(), tm)
    }
}

/// Appends Python's `time.strftime(format, time.localtime(t))` to `out`. See
/// [`Strftime::append`]; prepare a [`Strftime`] to format many times.
pub fn format_strftime(out: &mut String, format: &str, t: i64) {
    Strftime::new(format).append(out, t);
}

/// Python's `time.strftime(format, time.localtime(t))`. See [`format_strftime`].
pub fn strftime(format: &str, t: i64) -> String {
    let mut s = String::new();
    format_strftime(&mut s, format, t);
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    fn g(x: f64, width: usize, precision: usize) -> String {
        let mut s = String::new();
        format_g(&mut s, x, width, precision);
        s
    }

    fn f(x: f64, precision: usize) -> String {
        let mut s = String::new();
        format_f(&mut s, x, precision);
        s
    }

    #[test]
    fn percent_g_matches_python() {
        // Expected strings are CPython 3.11's '%10.35g' % x.
        let cases: &[(f64, &str)] = &[
            (0.0, "         0"),
            (-0.0, "        -0"),
            (5.0, "         5"),
            (-5.5, "      -5.5"),
            (0.1, "0.1000000000000000055511151231257827"),
            (f64::NAN, "       nan"),
            (-f64::NAN, "       nan"),
            (f64::INFINITY, "       inf"),
            (f64::NEG_INFINITY, "      -inf"),
            (1e300, "1.0000000000000000525047602552044202e+300"),
            (1e-300, "1.0000000000000000250590918352087597e-300"),
            (1e16, "10000000000000000"),
            (123.0, "       123"),
            (0.0001, "0.0001000000000000000047921736023859296"),
            (1e-5, "1.0000000000000000818030539140313095e-05"),
            (5e-324, "4.9406564584124654417656879286822137e-324"),
            (f64::MAX, "1.7976931348623157081452742373170436e+308"),
            (1e35, "99999999999999996863366107917975552"),
            (1e34, "9999999999999999455752309870428160"),
        ];
        for (x, want) in cases {
            assert_eq!(g(*x, 10, 35), *want, "%10.35g of {x:e}");
        }
    }

    #[test]
    fn exact_scientific_agrees_with_rust_formatting() {
        // Rust's `{:.*e}` is exact (Dragon4 beyond 17 digits): the 128-bit route must give
        // the same text for every value it takes.
        let mut state: u64 = 0x9e37_79b9_7f4a_7c15;
        let mut next = move || {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            state
        };
        let mut values: Vec<f64> = vec![
            1.0,
            5.0,
            0.1,
            0.5,
            0.3,
            9.5,
            99.99999999999999,
            1e15,
            9007199254740991.0,
            4503599627370495.5,
            2f64.powi(-71),
            2f64.powi(-72),
            123456.789,
            1e-5,
            0.125,
        ];
        for _ in 0..3000 {
            values.push(f64::from_bits(next()));
            let scale = 10f64.powi((next() % 40) as i32 - 20);
            values.push((next() >> 11) as f64 / (1u64 << 53) as f64 * scale);
        }
        let mut taken = 0;
        for x in values.into_iter().filter(|x| x.is_finite()) {
            for precision in [18, 20, 35, 40] {
                let mut fast = StackStr::new();
                if exact_scientific(&mut fast, x, precision) {
                    taken += 1;
                    let slow = format!("{:.*e}", precision - 1, x);
                    assert_eq!(fast.as_str(), slow, "{x:e} at {precision} digits");
                }
            }
        }
        assert!(taken > 10_000, "{taken}");
    }

    #[test]
    fn exact_scientific_rounds_half_to_even() {
        // 0.5^30 has 30 significant digits ending in 5.
        let x = 0.5f64.powi(30);
        for precision in [18, 19, 20, 21, 22] {
            let mut fast = StackStr::new();
            assert!(exact_scientific(&mut fast, x, precision));
            assert_eq!(fast.as_str(), format!("{:.*e}", precision - 1, x));
        }
    }

    #[test]
    fn short_percent_g_matches_python() {
        // '%g' % x in CPython 3.11.
        let cases: &[(f64, &str)] = &[
            (0.5, "0.5"),
            (f64::from(0.7f32), "0.7"),
            (1e-5, "1e-05"),
            (0.0001, "0.0001"),
            (123456789.0, "1.23457e+08"),
            (123456.0, "123456"),
            (1234567.0, "1.23457e+06"),
            (1.0, "1"),
            (0.0, "0"),
            (99999.95, "99999.9"),
            (999999.5, "1e+06"),
        ];
        for (x, want) in cases {
            assert_eq!(g(*x, 0, 6), *want, "%g of {x:e}");
        }
    }

    #[test]
    fn percent_f_matches_python() {
        assert_eq!(f(1.5, 6), "1.500000");
        assert_eq!(f(-0.0, 6), "-0.000000");
        assert_eq!(f(0.0078125, 6), "0.007812");
        assert_eq!(f(1e22, 6), "10000000000000000000000.000000");
        assert_eq!(f(f64::NAN, 6), "nan");
        assert_eq!(f(f64::NEG_INFINITY, 6), "-inf");
        assert_eq!(f(118.1640625, 3), "118.164");
        assert_eq!(f(2.5, 0), "2");
    }

    #[test]
    fn reprs_match_python() {
        assert_eq!(
            float_list_repr(&[Some(1.0), None, Some(f64::NAN), Some(-0.0), Some(1e16)]),
            "[1.0, None, nan, -0.0, 1e+16]"
        );
        assert_eq!(float_list_repr(&[]), "[]");
        assert_eq!(int_list_repr(&[1, -2]), "[1, -2]");
        assert_eq!(range_repr(1, 10, 1), "range(1, 10)");
        assert_eq!(range_repr(1, 10, 3), "range(1, 10, 3)");
        assert_eq!(str_repr("a'b"), "\"a'b\"");
        assert_eq!(str_repr("a\"b"), "'a\"b'");
        assert_eq!(str_repr("a'\"b"), "'a\\'\"b'");
        assert_eq!(str_repr("\u{a0}\u{ad}\u{85}é\n\\"), "'\\xa0\\xad\\x85é\\n\\\\'");
        let archive = PyValue::Dict(vec![
            ("offset".into(), PyValue::Int(28)),
            ("xff".into(), PyValue::Float(0.5)),
            ("name".into(), PyValue::Str("avg".into())),
            ("none".into(), PyValue::None),
        ]);
        assert_eq!(
            PyValue::List(vec![archive]).repr(),
            "[{'offset': 28, 'xff': 0.5, 'name': 'avg', 'none': None}]"
        );
        assert_eq!(PyValue::Str("x".into()).to_py_str(), "x");
        assert_eq!(PyValue::Float(f64::from(0.7f32)).to_py_str(), "0.699999988079071");
    }

    #[test]
    fn json_dumps_matches_python() {
        // json.dumps({'a': [...], 'b': [], 'c': {}}, indent=2, separators=(',', ': '))
        let v = PyValue::Dict(vec![
            (
                "a".into(),
                PyValue::List(vec![
                    PyValue::Float(1.5),
                    PyValue::Float(f64::NAN),
                    PyValue::Float(f64::INFINITY),
                    PyValue::Float(f64::NEG_INFINITY),
                    PyValue::None,
                    PyValue::Str("é\"\n\u{7f}\u{1F600}".into()),
                ]),
            ),
            ("b".into(), PyValue::List(vec![])),
            ("c".into(), PyValue::Dict(vec![])),
        ]);
        let style = JsonStyle {
            indent: Some(2),
            item_separator: ",",
            key_separator: ": ",
            sort_keys: false,
        };
        assert_eq!(
            json_dumps(&v, &style),
            "{\n  \"a\": [\n    1.5,\n    NaN,\n    Infinity,\n    -Infinity,\n    null,\n    \
             \"\\u00e9\\\"\\n\\u007f\\ud83d\\ude00\"\n  ],\n  \"b\": [],\n  \"c\": {}\n}"
        );
        let sorted =
            PyValue::Dict(vec![("b".into(), PyValue::Int(1)), ("a".into(), PyValue::Int(2))]);
        let style = JsonStyle {
            indent: Some(2),
            item_separator: ",",
            key_separator: " : ",
            sort_keys: true,
        };
        assert_eq!(json_dumps(&sorted, &style), "{\n  \"a\" : 2,\n  \"b\" : 1\n}");
    }

    #[test]
    fn os_error_matches_python() {
        let e = io::Error::from_raw_os_error(2);
        assert_eq!(
            os_error(&e, Path::new("/nonexistent/x")),
            "[Errno 2] No such file or directory: '/nonexistent/x'"
        );
    }

    #[test]
    fn time_formats_match_python_in_utc() {
        // SAFETY: tests in this module are the only code reading TZ in this test binary, and
        // every one of them sets the same value.
        unsafe { std::env::set_var("TZ", "UTC") };
        assert_eq!(ctime(0), "Thu Jan  1 00:00:00 1970");
        assert_eq!(ctime(1700000000), "Tue Nov 14 22:13:20 2023");
        assert_eq!(strftime("%Y-%m-%d %H:%M:%S %Z", 1700000000), "2023-11-14 22:13:20 UTC");
        assert_eq!(strftime("%c", 0), "Thu Jan  1 00:00:00 1970");
        assert_eq!(strftime("%p", 0), "AM");
    }
}
