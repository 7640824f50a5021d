//! Numbers printed the way Python prints them.
//!
//! Series names (`scale(x,2)`, `movingAverage(x,5)`), the JSON, CSV and raw outputs and the
//! `/functions` signatures all carry Python's formatting, and dashboards key on those strings,
//! so the exact text matters.

/// Python's `repr(float)`: the shortest text that reads back to `x`, always with a `.0` or an
/// exponent, scientific when the decimal exponent is below -4 or at least 16 (`1e-05`, `1e+16`).
pub fn float_repr(x: f64) -> String {
    let mut out = Vec::with_capacity(24);
    push_float_repr(&mut out, x);
    String::from_utf8(out).unwrap_or_default()
}

/// Appends [`float_repr`]'s text to `out` without allocating: the JSON and CSV writers call
/// this once per value, so integral values (most metrics) take a short path, and the others
/// get their shortest digits from `ryu` (the same digits Python's repr picks), laid out with
/// Python's thresholds and exponent style.
pub fn push_float_repr(out: &mut Vec<u8>, x: f64) {
    if !x.is_finite() {
        out.extend_from_slice(if x.is_nan() {
            b"nan"
        } else if x > 0.0 {
            b"inf"
        } else {
            b"-inf"
        });
        return;
    }
    let i = x as i64;
    if i as f64 == x && x.abs() < 1e16 && !(x == 0.0 && x.is_sign_negative()) {
        push_small(out, itoa::Buffer::new().format(i).as_bytes());
        push_small(out, b".0");
        return;
    }
    let mut buf = ryu::Buffer::new();
    let text = buf.format_finite(x).as_bytes();
    // ryu lays out plain decimals exactly as Python does, except that it keeps 0.0000ddd
    // (decimal exponent -5) plain where Python switches to `d.dde-05`; exponents need
    // Python's sign and two digits.
    let unsigned = text.strip_prefix(b"-").unwrap_or(text);
    if !text.contains(&b'e') && !unsigned.starts_with(b"0.0000") {
        push_small(out, text);
        return;
    }
    let (negative, text) = match text.split_first() {
        Some((b'-', rest)) => (true, rest),
        _ => (false, text),
    };
    let (mantissa, exp) = match text.iter().position(|&b| b == b'e') {
        Some(at) => {
            let exp = std::str::from_utf8(&text[at + 1..]).ok().and_then(|e| e.parse().ok());
            (&text[..at], exp.unwrap_or(0i32))
        }
        None => (text, 0),
    };
    let int_len = mantissa.iter().position(|&b| b == b'.').unwrap_or(mantissa.len());
    let mut stack = [0u8; 32];
    let mut n = 0;
    for &d in mantissa.iter().filter(|d| d.is_ascii_digit()) {
        if let Some(slot) = stack.get_mut(n) {
            *slot = d;
            n += 1;
        }
    }
    let leading = stack[..n].iter().take_while(|&&d| d == b'0').count();
    let mut digits = &stack[leading..n];
    while let [rest @ .., b'0'] = digits {
        digits = rest;
    }
    if digits.is_empty() {
        out.extend_from_slice(if negative { b"-0.0" } else { b"0.0" });
        return;
    }
    // x = 0.D * 10^(int_len - leading + exp) = D[0].D[1..] * 10^e
    let e = i32::try_from(int_len).unwrap_or(0) - i32::try_from(leading).unwrap_or(0) + exp - 1;
    if negative {
        out.push(b'-');
    }
    if (-4..16).contains(&e) {
        if e >= 0 {
            let int_digits = usize::try_from(e).unwrap_or(0) + 1;
            for k in 0..int_digits {
                out.push(digits.get(k).copied().unwrap_or(b'0'));
            }
            out.push(b'.');
            match digits.get(int_digits..) {
                Some(frac) if !frac.is_empty() => out.extend_from_slice(frac),
                _ => out.push(b'0'),
            }
        } else {
            out.extend_from_slice(b"0.");
            for _ in 0..(-e - 1) {
                out.push(b'0');
            }
            out.extend_from_slice(digits);
        }
    } else {
        out.push(digits[0]);
        if digits.len() > 1 {
            out.push(b'.');
            out.extend_from_slice(&digits[1..]);
        }
        out.push(b'e');
        out.push(if e < 0 { b'-' } else { b'+' });
        let abs = e.unsigned_abs();
        if abs < 10 {
            out.push(b'0');
        }
        out.extend_from_slice(itoa::Buffer::new().format(abs).as_bytes());
    }
}

/// Appends a few bytes (a number's text) byte by byte: for copies this short a call to
/// `memmove` costs more than the copy, and a JSON body is thousands of them.
#[inline]
pub fn push_small(out: &mut Vec<u8>, bytes: &[u8]) {
    out.reserve(bytes.len());
    for &b in bytes {
        out.push(b);
    }
}

/// Python's `"%g" % x`: six significant digits, trailing zeros removed, scientific when the
/// exponent is below -4 or at least 6.
pub fn format_g(x: f64) -> String {
    if x.is_nan() {
        return "nan".into();
    }
    if x.is_infinite() {
        return if x > 0.0 { "inf".into() } else { "-inf".into() };
    }
    if x == 0.0 {
        return if x.is_sign_negative() { "-0".into() } else { "0".into() };
    }
    let sci = format!("{x:.5e}");
    let (mantissa, exp) = split_exponent(&sci);
    if (-4..6).contains(&exp) {
        let decimals = usize::try_from(5 - exp).unwrap_or(0);
        strip_zeros(&format!("{x:.decimals$}")).to_string()
    } else {
        format!(
            "{}e{}{:02}",
            strip_zeros(mantissa),
            if exp < 0 { '-' } else { '+' },
            exp.unsigned_abs()
        )
    }
}

/// A value as Python's `str()`/`repr()` of a number that may be an int: integral values that
/// came from integer arithmetic print without `.0` only when `is_int` says so.
pub fn number_repr(x: f64, is_int: bool) -> String {
    if is_int && x.is_finite() && x.fract() == 0.0 && x.abs() < 9.007_199_254_740_992e15 {
        format!("{}", x as i64)
    } else {
        float_repr(x)
    }
}

fn split_exponent(sci: &str) -> (&str, i32) {
    match sci.split_once('e') {
        Some((m, e)) => (m, e.parse().unwrap_or(0)),
        None => (sci, 0),
    }
}

fn strip_zeros(s: &str) -> &str {
    if s.contains('.') { s.trim_end_matches('0').trim_end_matches('.') } else { s }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn repr_matches_python() {
        for (x, want) in [
            (21.0, "21.0"),
            (0.1, "0.1"),
            (1e-5, "1e-05"),
            (0.0001, "0.0001"),
            (1e16, "1e+16"),
            (1234567890123456.0, "1234567890123456.0"),
            (-2.5, "-2.5"),
            (1.0 / 3.0, "0.3333333333333333"),
            (f64::INFINITY, "inf"),
            (-0.0, "-0.0"),
            (1.5e300, "1.5e+300"),
        ] {
            assert_eq!(float_repr(x), want, "{x}");
        }
    }

    /// The reference layout: Rust's shortest digits (`{:e}`, `{}`) with Python's rules.
    fn slow_repr(x: f64) -> String {
        if x == 0.0 {
            return if x.is_sign_negative() { "-0.0".into() } else { "0.0".into() };
        }
        let sci = format!("{x:e}");
        let (mantissa, exp) = split_exponent(&sci);
        if (-4..16).contains(&exp) {
            let plain = format!("{x}");
            if plain.contains('.') { plain } else { plain + ".0" }
        } else {
            format!("{mantissa}e{}{:02}", if exp < 0 { '-' } else { '+' }, exp.unsigned_abs())
        }
    }

    proptest::proptest! {
        /// Against Rust's own shortest text: the same length, and it reads back to `x`.
        /// (The digits themselves may differ on an exact tie: Python, like ryu, rounds it to
        /// even; Rust's formatter rounds it up. See `ties_round_to_even_as_python_does`.)
        #[test]
        fn fast_repr_matches_the_reference(bits in proptest::prelude::any::<u64>()) {
            let x = f64::from_bits(bits);
            if x.is_finite() {
                let ours = float_repr(x);
                proptest::prop_assert_eq!(ours.len(), slow_repr(x).len(), "{}", ours);
                proptest::prop_assert_eq!(ours.parse::<f64>().ok(), Some(x), "{}", ours);
            }
        }

        #[test]
        fn fast_repr_matches_on_decimals(m in -1_000_000i64..1_000_000, e in -30i32..30) {
            let x = m as f64 * 10f64.powi(e);
            proptest::prop_assert_eq!(float_repr(x), slow_repr(x));
        }
    }

    #[test]
    fn ties_round_to_even_as_python_does() {
        // repr(2004146345623014.25) in Python 3.11 (the double's exact value ends in .25).
        assert_eq!(float_repr(f64::from_bits(4_835_875_385_923_663_769)), "2004146345623014.2");
    }

    #[test]
    fn percent_g_matches_python() {
        for (x, want) in [
            (2.0, "2"),
            (0.5, "0.5"),
            (1.0 / 3.0, "0.333333"),
            (1234567.0, "1.23457e+06"),
            (123456.0, "123456"),
            (0.0001, "0.0001"),
            (0.00001, "1e-05"),
            (-3.25, "-3.25"),
            (100.0, "100"),
            (999999.5, "1e+06"),
        ] {
            assert_eq!(format_g(x), want, "{x}");
        }
    }
}
