//! Numbers printed the way Python prints them.
//!
//! Series names (`scale(x,2)`, `movingAverage(x,5)`), the JSON, CSV and raw outputs and the
//! `/functions` signatures all carry Python's formatting, and dashboards key on those strings,
//! so the exact text matters.

/// Python's `repr(float)`: the shortest text that reads back to `x`, always with a `.0` or an
/// exponent, scientific when the decimal exponent is below -4 or at least 16 (`1e-05`, `1e+16`).
pub fn float_repr(x: f64) -> String {
    if x.is_nan() {
        return "nan".into();
    }
    if x.is_infinite() {
        return if x > 0.0 { "inf".into() } else { "-inf".into() };
    }
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
