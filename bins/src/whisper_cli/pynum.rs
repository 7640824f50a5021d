//! Numbers as the Python tools read them from the command line: `int()`, `float()`, and
//! optparse's `type='int'` (which reads `0x1f` as hex, `0b101` as binary and `017` as octal).

/// Python's `int(text, radix)` for radix 2, 8, 10 or 16: surrounding whitespace, a sign, the
/// radix's `0x`/`0o`/`0b` prefix, and single underscores between digits are accepted. Values
/// beyond `i64` saturate: whisper clamps times far outside its 32-bit range anyway.
pub(crate) fn parse_int(text: &str, radix: u32) -> Option<i64> {
    let s = text.trim();
    let (negative, s) = match s.as_bytes().first() {
        Some(b'-') => (true, &s[1..]),
        Some(b'+') => (false, &s[1..]),
        _ => (false, s),
    };
    let prefix = match radix {
        16 => Some(["0x", "0X"]),
        8 => Some(["0o", "0O"]),
        2 => Some(["0b", "0B"]),
        _ => None,
    };
    // After a prefix, Python allows one underscore before the first digit (`0x_1f`).
    let (s, underscore_ok) = match prefix.and_then(|p| p.iter().find_map(|p| s.strip_prefix(p))) {
        Some(rest) => (rest, true),
        None => (s, false),
    };
    let mut value: i128 = 0;
    let mut digits = 0usize;
    let mut previous_underscore = false;
    for (i, c) in s.chars().enumerate() {
        if c == '_' {
            if previous_underscore || (i == 0 && !underscore_ok) {
                return None;
            }
            previous_underscore = true;
            continue;
        }
        let d = c.to_digit(radix)?;
        previous_underscore = false;
        digits += 1;
        value = (value * i128::from(radix) + i128::from(d)).min(i128::from(i64::MAX) + 1);
    }
    if digits == 0 || previous_underscore {
        return None;
    }
    let value = if negative { -value } else { value };
    Some(value.clamp(i128::from(i64::MIN), i128::from(i64::MAX)) as i64)
}

/// Python's `float(text)`: surrounding whitespace, a sign, `inf`, `infinity` and `nan` in any
/// case, exponents, and single underscores between digits.
pub(crate) fn parse_float(text: &str) -> Option<f64> {
    let s = text.trim();
    if s.contains('_') {
        let bytes = s.as_bytes();
        for (i, b) in bytes.iter().enumerate() {
            if *b == b'_' {
                let before = i.checked_sub(1).and_then(|j| bytes.get(j));
                let after = bytes.get(i + 1);
                if !before.is_some_and(u8::is_ascii_digit) || !after.is_some_and(u8::is_ascii_digit)
                {
                    return None;
                }
            }
        }
        return s.replace('_', "").parse().ok();
    }
    s.parse().ok()
}

/// optparse's `type='int'`, for clap: the radix comes from the prefix (`0x`, `0b`, a leading
/// `0` for octal), with optparse's error message.
pub(crate) fn optparse_int(text: &str) -> Result<i64, String> {
    let lower = text.get(..2).map(str::to_ascii_lowercase);
    let parsed = match lower.as_deref() {
        Some("0x") => parse_int(text, 16),
        Some("0b") => {
            let rest = &text[2..];
            parse_int(if rest.is_empty() { "0" } else { rest }, 2)
        }
        _ if text.starts_with('0') => parse_int(text, 8),
        _ => parse_int(text, 10),
    };
    parsed.ok_or_else(|| format!("invalid integer value: {}", crate::pyfmt::str_repr(text)))
}

/// optparse's `type='float'`, for clap.
pub(crate) fn optparse_float(text: &str) -> Result<f64, String> {
    parse_float(text)
        .ok_or_else(|| format!("invalid floating-point value: {}", crate::pyfmt::str_repr(text)))
}

/// argparse's `type=float`, for clap.
pub(crate) fn argparse_float(text: &str) -> Result<f64, String> {
    parse_float(text)
        .ok_or_else(|| format!("invalid float value: {}", crate::pyfmt::str_repr(text)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn int_follows_python() {
        assert_eq!(parse_int(" 42 ", 10), Some(42));
        assert_eq!(parse_int("+7", 10), Some(7));
        assert_eq!(parse_int("-1_000", 10), Some(-1000));
        assert_eq!(parse_int("1__0", 10), None);
        assert_eq!(parse_int("_1", 10), None);
        assert_eq!(parse_int("1_", 10), None);
        assert_eq!(parse_int("1.5", 10), None);
        assert_eq!(parse_int("", 10), None);
        assert_eq!(parse_int("0x_1f", 16), Some(31));
        assert_eq!(parse_int("99999999999999999999999", 10), Some(i64::MAX));
        assert_eq!(parse_int("-99999999999999999999999", 10), Some(i64::MIN));
    }

    #[test]
    fn optparse_int_reads_prefixes() {
        assert_eq!(optparse_int("0x10"), Ok(16));
        assert_eq!(optparse_int("0b101"), Ok(5));
        assert_eq!(optparse_int("0b"), Ok(0));
        assert_eq!(optparse_int("017"), Ok(15));
        assert_eq!(optparse_int("0"), Ok(0));
        assert_eq!(optparse_int("-5"), Ok(-5));
        assert_eq!(optparse_int("1700000000"), Ok(1700000000));
        assert_eq!(optparse_int("09"), Err("invalid integer value: '09'".to_string()));
        assert_eq!(optparse_int("abc"), Err("invalid integer value: 'abc'".to_string()));
    }

    #[test]
    fn float_follows_python() {
        assert_eq!(parse_float(" 1.5 "), Some(1.5));
        assert_eq!(parse_float("1_000.5"), Some(1000.5));
        assert_eq!(parse_float("1_"), None);
        assert_eq!(parse_float("Infinity"), Some(f64::INFINITY));
        assert_eq!(parse_float("-inf"), Some(f64::NEG_INFINITY));
        assert!(parse_float("nan").is_some_and(f64::is_nan));
        assert_eq!(parse_float("-nan").map(f64::to_bits), Some(0xfff8_0000_0000_0000));
        assert_eq!(parse_float(".5"), Some(0.5));
        assert_eq!(parse_float("abc"), None);
        assert_eq!(parse_float("0x10"), None);
    }
}
