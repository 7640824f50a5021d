//! Python's `float(str)`, which carbon applies to every value and timestamp it receives.
//!
//! Rust's `f64::from_str` accepts the same numbers as Python (`1`, `-2.5`, `.5`, `1e3`,
//! `inf`, `Infinity`, `nan` in any case, with a sign) and rounds them the same way (correctly),
//! with one difference: Python also accepts underscores between digits (`1_000.5`, PEP 515).
//! Python's surrounding-whitespace stripping is not needed here: every caller passes a field
//! already split on whitespace. Like Python, any Unicode decimal digit counts as its ASCII
//! digit (`float('١٢') == 12.0`).

/// Parses `s` as Python's `float(s)` does (see the module docs); `None` where Python raises
/// `ValueError`.
///
/// ```
/// use carbon_proto::parse_py_float;
/// assert_eq!(parse_py_float("1_000.5"), Some(1000.5));
/// assert_eq!(parse_py_float("-Infinity"), Some(f64::NEG_INFINITY));
/// assert!(parse_py_float("nan").unwrap().is_nan());
/// assert_eq!(parse_py_float("1__0"), None);
/// assert_eq!(parse_py_float("0x10"), None);
/// ```
pub fn parse_py_float(s: &str) -> Option<f64> {
    if !s.is_ascii() {
        // Python turns every Unicode decimal digit into its ASCII digit first; any other
        // non-ASCII character is an error.
        let ascii: Option<String> = s.chars().map(ascii_digit_of).collect();
        return parse_py_float(&ascii?);
    }
    if let Some(v) = parse_integer(s.as_bytes()) {
        return Some(v);
    }
    if let Ok(v) = s.parse::<f64>() {
        return Some(v);
    }
    if !s.contains('_') {
        return None;
    }
    // Underscores are allowed only between two digits.
    let b = s.as_bytes();
    for (i, &c) in b.iter().enumerate() {
        if c == b'_' {
            let before = i.checked_sub(1).and_then(|j| b.get(j));
            let after = b.get(i + 1);
            if !before.is_some_and(u8::is_ascii_digit) || !after.is_some_and(u8::is_ascii_digit) {
                return None;
            }
        }
    }
    s.replace('_', "").parse::<f64>().ok()
}

/// Whether `b` is an unsigned decimal literal: `digits [. digits] [(e|E) [+|-] digits]` or
/// `. digits [exponent]`, with at least one digit before the exponent. Java's and JavaScript's
/// number grammars (OpenTSDB, statsd) both check this before parsing.
pub(crate) fn is_decimal_literal(b: &[u8]) -> bool {
    let int_len = b.iter().take_while(|c| c.is_ascii_digit()).count();
    let rest = b.get(int_len..).unwrap_or_default();
    let (frac_len, rest) = match rest.split_first() {
        Some((b'.', after)) => {
            let n = after.iter().take_while(|c| c.is_ascii_digit()).count();
            (n, after.get(n..).unwrap_or_default())
        }
        _ => (0, rest),
    };
    if int_len == 0 && frac_len == 0 {
        return false;
    }
    match rest.split_first() {
        None => true,
        Some((b'e' | b'E', exp)) => {
            let exp = match exp.split_first() {
                Some((b'+' | b'-', digits)) => digits,
                _ => exp,
            };
            !exp.is_empty() && exp.iter().all(u8::is_ascii_digit)
        }
        Some(_) => false,
    }
}

/// The first code point (digit zero) of every run of ten Unicode decimal digits (category Nd)
/// outside ASCII, as of Unicode 14.0 (CPython 3.11).
const DIGIT_ZEROS: [u32; 65] = [
    0x660, 0x6F0, 0x7C0, 0x966, 0x9E6, 0xA66, 0xAE6, 0xB66, 0xBE6, 0xC66, 0xCE6, 0xD66, 0xDE6,
    0xE50, 0xED0, 0xF20, 0x1040, 0x1090, 0x17E0, 0x1810, 0x1946, 0x19D0, 0x1A80, 0x1A90, 0x1B50,
    0x1BB0, 0x1C40, 0x1C50, 0xA620, 0xA8D0, 0xA900, 0xA9D0, 0xA9F0, 0xAA50, 0xABF0, 0xFF10,
    0x104A0, 0x10D30, 0x11066, 0x110F0, 0x11136, 0x111D0, 0x112F0, 0x11450, 0x114D0, 0x11650,
    0x116C0, 0x11730, 0x118E0, 0x11950, 0x11C50, 0x11D50, 0x11DA0, 0x16A60, 0x16AC0, 0x16B50,
    0x1D7CE, 0x1D7D8, 0x1D7E2, 0x1D7EC, 0x1D7F6, 0x1E140, 0x1E2F0, 0x1E950, 0x1FBF0,
];

/// `c` itself if ASCII, its ASCII digit if it is a Unicode decimal digit, else `None`.
fn ascii_digit_of(c: char) -> Option<char> {
    if c.is_ascii() {
        return Some(c);
    }
    let code = u32::from(c);
    let zero = DIGIT_ZEROS.partition_point(|&z| z <= code).checked_sub(1)?;
    let offset = code - DIGIT_ZEROS.get(zero)?;
    (offset < 10).then(|| char::from(b'0' + offset as u8))
}

/// Fast path for the common case of a timestamp or counter: up to 15 ASCII digits with an
/// optional sign, which an `f64` holds exactly.
fn parse_integer(b: &[u8]) -> Option<f64> {
    let (negative, digits) = match b.first()? {
        b'-' => (true, &b[1..]),
        b'+' => (false, &b[1..]),
        _ => (false, b),
    };
    if digits.is_empty() || digits.len() > 15 {
        return None;
    }
    let mut n: u64 = 0;
    for &d in digits {
        if !d.is_ascii_digit() {
            return None;
        }
        n = n * 10 + u64::from(d - b'0');
    }
    let v = n as f64;
    Some(if negative { -v } else { v })
}

#[cfg(test)]
mod tests {
    use super::parse_py_float as p;

    #[test]
    fn accepts_what_python_accepts() {
        // Each of these is accepted by CPython 3.11's float().
        for (s, v) in [
            ("0", 0.0),
            ("-0", -0.0),
            ("+7", 7.0),
            ("42", 42.0),
            ("1.5", 1.5),
            (".5", 0.5),
            ("5.", 5.0),
            ("1e3", 1000.0),
            ("1E-3", 0.001),
            ("-2.5e+2", -250.0),
            ("1_000", 1000.0),
            ("1_0.2_5", 10.25),
            ("1e1_0", 1e10),
            ("inf", f64::INFINITY),
            ("-INF", f64::NEG_INFINITY),
            ("Infinity", f64::INFINITY),
            ("+infinity", f64::INFINITY),
            ("١٢", 12.0),
            ("１.５", 1.5),
            ("1700000000", 1_700_000_000.0),
            ("12345678901234567890", 12345678901234567890.0),
        ] {
            assert_eq!(p(s).map(f64::to_bits), Some(v.to_bits()), "{s}");
        }
        assert!(p("nan").unwrap().is_nan());
        assert!(p("-NaN").unwrap().is_nan());
    }

    #[test]
    fn refuses_what_python_refuses() {
        for s in [
            "", "-", "+", ".", "e3", "1e", "1.2.3", "0x10", "1_", "_1", "1__0", "1_.5", "1._5",
            "in", "nana", "1 2", "½",
        ] {
            assert_eq!(p(s), None, "{s}");
        }
    }
}
