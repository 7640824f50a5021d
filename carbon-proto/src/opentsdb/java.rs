//! The Java number parsing OpenTSDB's `put` relies on: its own `Tags.parseLong` (timestamps and
//! integer values) and `Double.parseDouble` (values with `.`, `e` or `E`).
#![warn(clippy::indexing_slicing)]

use super::NumberError;

/// Java's `String.length()`: UTF-16 code units.
fn java_len(s: &str) -> usize {
    if s.is_ascii() { s.len() } else { s.encode_utf16().count() }
}

/// OpenTSDB's `Tags.parseLong`: an optional sign and decimal digits, at most 19 digits (20
/// characters with a sign), no overflow. The checks come in its order: empty, sign alone,
/// length, then each character.
pub(crate) fn parse_long(s: &str) -> Result<i64, NumberError> {
    let n = java_len(s);
    let (negative, digits) = match s.as_bytes().first() {
        None => return Err(NumberError::Empty),
        Some(b'-') => (true, s.get(1..).unwrap_or_default()),
        Some(b'+') => (false, s.get(1..).unwrap_or_default()),
        Some(_) => (false, s),
    };
    let signed = digits.len() != s.len();
    if signed && n == 1 {
        return Err(NumberError::JustSign);
    }
    if (signed && n > 20) || (!signed && n > 19) {
        return Err(NumberError::TooLong);
    }
    // Accumulate negatively, as OpenTSDB does, so that i64::MIN parses.
    let mut v: i64 = 0;
    for c in digits.chars() {
        let Some(d) = c.to_digit(10).filter(|_| c.is_ascii_digit()) else {
            return Err(NumberError::InvalidCharacter(c));
        };
        v = v
            .checked_mul(10)
            .and_then(|v| v.checked_sub(i64::from(d)))
            .ok_or(NumberError::Overflow)?;
    }
    if negative { Ok(v) } else { v.checked_neg().ok_or(NumberError::Overflow) }
}

/// Java's `Double.parseDouble`: surrounding characters up to U+0020 are ignored; then an
/// optional sign and `NaN`, `Infinity`, a decimal number (`1`, `1.`, `.5`, `1e-3`) or a
/// hexadecimal one (`0x1.8p1`), the last two with an optional `f`, `F`, `d` or `D` suffix.
pub(crate) fn parse_double(s: &str) -> Result<f64, NumberError> {
    let t = s.trim_matches(|c: char| c <= ' ');
    if t.is_empty() {
        return Err(NumberError::Empty);
    }
    let (negative, unsigned) = match t.strip_prefix('-') {
        Some(rest) => (true, rest),
        None => (false, t.strip_prefix('+').unwrap_or(t)),
    };
    let magnitude = match unsigned {
        "NaN" => f64::NAN,
        "Infinity" => f64::INFINITY,
        _ => {
            let body = unsigned.strip_suffix(['f', 'F', 'd', 'D']).unwrap_or(unsigned);
            let hex = body.strip_prefix("0x").or_else(|| body.strip_prefix("0X"));
            match hex {
                Some(hex) => parse_hex_float(hex.as_bytes()).ok_or(NumberError::NotANumber)?,
                None if crate::pyfloat::is_decimal_literal(body.as_bytes()) => {
                    body.parse::<f64>().map_err(|_| NumberError::NotANumber)?
                }
                None => return Err(NumberError::NotANumber),
            }
        }
    };
    Ok(if negative { -magnitude } else { magnitude })
}

/// The part of a Java hexadecimal float after `0x`: `hex [. hex] p [+-] digits`, at least one
/// hex digit, the binary exponent required. Rounded to nearest (a result in the subnormal
/// range may be off by one unit, as it is rounded twice).
fn parse_hex_float(b: &[u8]) -> Option<f64> {
    let p = b.iter().position(|&c| c == b'p' || c == b'P')?;
    let mantissa = b.get(..p)?;
    let exponent = b.get(p + 1..)?;
    let (exp_negative, exp_digits) = match exponent.split_first() {
        Some((b'-', d)) => (true, d),
        Some((b'+', d)) => (false, d),
        _ => (false, exponent),
    };
    if exp_digits.is_empty() || !exp_digits.iter().all(u8::is_ascii_digit) {
        return None;
    }
    // Saturate: anything past ±100000 is 0 or infinity anyway.
    let mut exp: i64 = 0;
    for &d in exp_digits {
        exp = (exp * 10 + i64::from(d - b'0')).min(100_000);
    }
    if exp_negative {
        exp = -exp;
    }
    let (int_part, frac_part) = match mantissa.iter().position(|&c| c == b'.') {
        Some(dot) => (mantissa.get(..dot)?, mantissa.get(dot + 1..)?),
        None => (mantissa, &[][..]),
    };
    if int_part.len() + frac_part.len() == 0 {
        return None;
    }
    let mut acc: u128 = 0;
    let mut kept = 0;
    let mut sticky = false;
    for (i, &c) in int_part.iter().chain(frac_part).enumerate() {
        let d = char::from(c).to_digit(16)?;
        let in_fraction = i >= int_part.len();
        if acc == 0 && d == 0 {
            if in_fraction {
                exp -= 4;
            }
            continue;
        }
        if kept < 32 {
            acc = (acc << 4) | u128::from(d);
            kept += 1;
            if in_fraction {
                exp -= 4;
            }
        } else {
            sticky |= d != 0;
            if !in_fraction {
                exp += 4;
            }
        }
    }
    if sticky {
        acc |= 1;
    }
    let scale = i32::try_from(exp.clamp(-3000, 3000)).unwrap_or(0);
    // Two steps so that 2^scale itself neither overflows nor underflows early.
    let half = scale / 2;
    Some(acc as f64 * 2f64.powi(half) * 2f64.powi(scale - half))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parse_long_like_opentsdb() {
        assert_eq!(parse_long("1356998400"), Ok(1_356_998_400));
        assert_eq!(parse_long("+5"), Ok(5));
        assert_eq!(parse_long("-9223372036854775808"), Ok(i64::MIN));
        assert_eq!(parse_long("9223372036854775807"), Ok(i64::MAX));
        assert_eq!(parse_long("9223372036854775808"), Err(NumberError::Overflow));
        assert_eq!(parse_long("9999999999999999999"), Err(NumberError::Overflow));
        assert_eq!(parse_long("99999999999999999999"), Err(NumberError::TooLong));
        assert_eq!(parse_long(""), Err(NumberError::Empty));
        assert_eq!(parse_long("-"), Err(NumberError::JustSign));
        assert_eq!(parse_long("12x"), Err(NumberError::InvalidCharacter('x')));
        assert_eq!(parse_long("1.5"), Err(NumberError::InvalidCharacter('.')));
        assert_eq!(parse_long("NaN"), Err(NumberError::InvalidCharacter('N')));
        assert_eq!(parse_long("٣"), Err(NumberError::InvalidCharacter('٣')));
        assert_eq!(parse_long("--1"), Err(NumberError::InvalidCharacter('-')));
    }

    #[test]
    fn parse_double_like_java() {
        for (s, v) in [
            ("42.5", 42.5),
            ("1.", 1.0),
            (".5", 0.5),
            ("-1e3", -1000.0),
            ("1.5f", 1.5),
            ("2.5D", 2.5),
            (" \t1.5\n", 1.5),
            ("+Infinity", f64::INFINITY),
            ("1e400", f64::INFINITY),
            ("0x1.8p1", 3.0),
            ("0X10P0", 16.0),
            ("0x.8p0", 0.5),
            ("-0x1p-2", -0.25),
            ("0x1.fffffffffffff8p0", 2.0),
            ("0x1p-1074", 5e-324),
        ] {
            assert_eq!(parse_double(s).map(f64::to_bits), Ok(v.to_bits()), "{s:?}");
        }
        assert!(parse_double("NaN").unwrap().is_nan());
        for s in [
            "",
            "  ",
            ".",
            "1e",
            "1e+",
            "e5",
            "1.2.3",
            "inf",
            "nan",
            "0x1.8",
            "0xp1",
            "1_0",
            "1ff",
            "--1",
            "Infinityf",
        ] {
            assert!(parse_double(s).is_err(), "{s:?}");
        }
        assert_eq!(parse_double(" "), Err(NumberError::Empty));
    }
}
