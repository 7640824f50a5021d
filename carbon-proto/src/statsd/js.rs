//! The JavaScript semantics statsd's line parser leans on: `Number(str)` (which statsd's
//! `isNumber` and every value conversion use), `String.prototype.trim` and the `\s` class of
//! its key-sanitising regular expressions.
//!
//! Checked against node 20 (`Number('0x10') === 16`, `Number(' ') === 0`, `Number('1_0')` is
//! `NaN`, ...); the cases are the unit tests below.
#![warn(clippy::indexing_slicing)]

/// JavaScript's white space and line terminators: what `\s` matches and what `trim()` and
/// `Number()` strip (ECMA-262 `WhiteSpace` and `LineTerminator`; U+180E and U+0085 are not).
pub(crate) fn is_js_space(c: char) -> bool {
    matches!(c, '\t'..='\r' | ' ' | '\u{a0}' | '\u{1680}' | '\u{2000}'..='\u{200a}')
        || matches!(c, '\u{2028}' | '\u{2029}' | '\u{202f}' | '\u{205f}' | '\u{3000}' | '\u{feff}')
}

/// `s.trim()`.
pub(crate) fn js_trim(s: &str) -> &str {
    s.trim_matches(is_js_space)
}

/// `Number(s)`, with `None` for `NaN`.
///
/// The grammar is ECMA-262's `StringNumericLiteral`: surrounding white space is ignored and an
/// empty (or all-space) string is 0; then either a decimal literal with an optional sign
/// (`1`, `-.5`, `5.`, `1e3`, `+Infinity`; case matters, no `_`) or an unsigned `0x`, `0o` or
/// `0b` integer. Values are rounded correctly, as JavaScript does.
pub(crate) fn js_number(s: &str) -> Option<f64> {
    let t = js_trim(s);
    if t.is_empty() {
        return Some(0.0);
    }
    let b = t.as_bytes();
    if let [b'0', prefix, digits @ ..] = b {
        let bits = match prefix {
            b'x' | b'X' => 4,
            b'o' | b'O' => 3,
            b'b' | b'B' => 1,
            _ => 0,
        };
        if bits != 0 {
            return radix_integer(digits, bits);
        }
    }
    let (negative, unsigned) = match t.strip_prefix('-') {
        Some(rest) => (true, rest),
        None => (false, t.strip_prefix('+').unwrap_or(t)),
    };
    if unsigned == "Infinity" {
        return Some(if negative { f64::NEG_INFINITY } else { f64::INFINITY });
    }
    if !crate::pyfloat::is_decimal_literal(unsigned.as_bytes()) {
        return None;
    }
    // Rust's parser accepts this grammar (and more) and rounds correctly.
    let v: f64 = unsigned.parse().ok()?;
    Some(if negative { -v } else { v })
}

/// The value of a `0x`/`0o`/`0b` literal's digits (`bits` per digit), correctly rounded; `None`
/// if there is no digit or a digit is out of range.
fn radix_integer(digits: &[u8], bits: u32) -> Option<f64> {
    if digits.is_empty() {
        return None;
    }
    let radix = 1u32 << bits;
    // Up to 128 bits are kept exactly; later digits only matter as a sticky bit below the
    // 53-bit mantissa's rounding position, and as a power-of-two scale.
    let max_digits = 128 / bits;
    let mut acc: u128 = 0;
    let mut kept = 0u32;
    let mut scale: u64 = 0;
    let mut sticky = false;
    for &d in digits {
        let v = char::from(d).to_digit(radix)?;
        if acc == 0 && v == 0 {
            continue; // leading zeros
        }
        if kept < max_digits {
            acc = (acc << bits) | u128::from(v);
            kept += 1;
        } else {
            sticky |= v != 0;
            scale += u64::from(bits);
        }
    }
    if sticky {
        acc |= 1;
    }
    // `as` rounds to nearest, ties to even; scaling by a power of two is exact until it
    // overflows to infinity, as the true value then does too.
    let mut v = acc as f64;
    if scale > 0 {
        let exp = i32::try_from(scale).unwrap_or(i32::MAX);
        v *= 2f64.powi(exp.min(2000));
    }
    Some(v)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn number_matches_node() {
        // Each pair printed by node 20: `Number(s)`.
        for (s, v) in [
            ("1e3", 1000.0),
            ("0x10", 16.0),
            ("0X10", 16.0),
            (" 5", 5.0),
            ("5 ", 5.0),
            ("", 0.0),
            (" \t\n ", 0.0),
            ("Infinity", f64::INFINITY),
            ("-Infinity", f64::NEG_INFINITY),
            ("+Infinity", f64::INFINITY),
            ("0b101", 5.0),
            ("0o17", 15.0),
            (".5", 0.5),
            ("5.", 5.0),
            ("5.e3", 5000.0),
            ("+.5", 0.5),
            ("-.5e-3", -0.0005),
            ("\u{a0}5", 5.0),
            ("\u{feff}5", 5.0),
            ("\u{2028}5", 5.0),
            ("00012", 12.0),
            ("1E1000", f64::INFINITY),
            ("0xffffffffffffffffffffffff", 7.922816251426434e28),
            ("0x1fffffffffffff1", 144115188075855860.0),
            ("-0", -0.0),
        ] {
            assert_eq!(js_number(s).map(f64::to_bits), Some(v.to_bits()), "{s:?}");
        }
        let b60 = format!("0b{}", "1".repeat(60));
        assert_eq!(js_number(&b60), Some(1152921504606847000.0));
    }

    #[test]
    fn nan_where_node_says_nan() {
        for s in [
            "NaN",
            "infinity",
            "inf",
            "-0x10",
            "1_000",
            ".e3",
            ".",
            "\u{180e}5",
            "\u{85}5",
            "\u{200b}5",
            "1e",
            "e1",
            "+",
            "-",
            "0x",
            "1.2.3",
            "+-1",
            "0x1g",
            "0b2",
            "1 2",
        ] {
            assert_eq!(js_number(s), None, "{s:?}");
        }
    }

    #[test]
    fn long_hex_literals_round_correctly() {
        // 2^53 + 1 rounds to even (2^53); with a non-zero digit far below, it rounds up.
        assert_eq!(js_number("0x20000000000001"), Some(9007199254740992.0));
        let sticky = format!("0x20000000000001{}1", "0".repeat(40));
        let expected = 9007199254740994.0 * 2f64.powi(4 * 41);
        assert_eq!(js_number(&sticky), Some(expected));
        assert_eq!(js_number(&format!("0x1{}", "0".repeat(300))), Some(f64::INFINITY));
    }

    #[test]
    fn trim_and_space() {
        assert_eq!(js_trim("\u{3000} ms\r"), "ms");
        assert!(is_js_space('\u{2000}'));
        assert!(!is_js_space('\u{85}'));
    }
}
