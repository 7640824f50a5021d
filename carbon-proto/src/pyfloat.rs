//! Python's `float(str)`, which carbon applies to every value and timestamp it receives.
//!
//! Rust's `f64::from_str` accepts the same numbers as Python (`1`, `-2.5`, `.5`, `1e3`,
//! `inf`, `Infinity`, `nan` in any case, with a sign) and rounds them the same way (correctly),
//! with one difference: Python also accepts underscores between digits (`1_000.5`, PEP 515).
//! Python's surrounding-whitespace stripping is not needed here: every caller passes a field
//! already split on whitespace. Non-ASCII decimal digits (`float('١٢')`), which Python also
//! accepts, are refused.

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
            "in", "nana", "1 2", "١٢",
        ] {
            assert_eq!(p(s), None, "{s}");
        }
    }
}
