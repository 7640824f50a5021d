//! The text arguments of protocol 0's opcodes, read as CPython 3.11's C unpickler (`_pickle.c`)
//! reads them: `INT` (`strtol`, then `int(s, 0)`), `LONG` (`int(s, 0)` after dropping a
//! trailing `L`), `FLOAT` (`PyOS_string_to_double`), `PUT`/`GET` (`int(s, 10)`), `STRING` (a
//! quoted Python 2 `repr` with backslash escapes) and `UNICODE` (`raw-unicode-escape`).
//!
//! Each function takes the line without its `\n`. Where CPython treats the line as a C string,
//! a NUL ends it here too.
#![warn(clippy::indexing_slicing)]

use super::value::{BigInt, int_from_magnitude};

/// Python's limit on decimal digits in `int(str)` (`sys.int_info.default_max_str_digits`).
pub(crate) const MAX_DECIMAL_DIGITS: usize = 4300;

/// An int argument.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum IntArg {
    /// `I00` and `I01`: protocol 0's `False` and `True`.
    Bool(bool),
    Int(i64),
    Big(BigInt),
}

impl From<Result<i64, BigInt>> for IntArg {
    fn from(r: Result<i64, BigInt>) -> IntArg {
        match r {
            Ok(i) => IntArg::Int(i),
            Err(b) => IntArg::Big(b),
        }
    }
}

/// The line up to its first NUL, as C string functions see it.
fn c_str(line: &[u8]) -> &[u8] {
    match memchr::memchr(0, line) {
        Some(i) => line.get(..i).unwrap_or_default(),
        None => line,
    }
}

/// C's `isspace` in the C locale (and CPython's `Py_ISSPACE`).
fn is_c_space(b: u8) -> bool {
    matches!(b, b' ' | b'\t' | b'\n' | 0x0b | 0x0c | b'\r')
}

/// The value of an ASCII digit or letter (`0-9`, `a-z`, `A-Z` as 0 to 35), 99 otherwise.
fn digit_value(b: u8) -> u32 {
    match b {
        b'0'..=b'9' => u32::from(b - b'0'),
        b'a'..=b'z' => u32::from(b - b'a') + 10,
        b'A'..=b'Z' => u32::from(b - b'A') + 10,
        _ => 99,
    }
}

/// glibc's `strtol(s, &end, 0)`: the value (`None` on overflow) and where it stopped (0 if it
/// read no digits).
fn strtol(s: &[u8]) -> (Option<i64>, usize) {
    let mut i = 0;
    while s.get(i).is_some_and(|&b| is_c_space(b)) {
        i += 1;
    }
    let negative = match s.get(i) {
        Some(b'-') => {
            i += 1;
            true
        }
        Some(b'+') => {
            i += 1;
            false
        }
        _ => false,
    };
    let mut base = 10;
    if s.get(i) == Some(&b'0') {
        if matches!(s.get(i + 1), Some(b'x' | b'X'))
            && s.get(i + 2).is_some_and(|&b| digit_value(b) < 16)
        {
            base = 16;
            i += 2;
        } else {
            base = 8;
        }
    }
    let start = i;
    // Accumulate the magnitude in u64 (|i64::MIN| fits), then apply the sign.
    let mut magnitude: Option<u64> = Some(0);
    while let Some(&b) = s.get(i) {
        let d = digit_value(b);
        if d >= base {
            break;
        }
        magnitude = magnitude
            .and_then(|m| m.checked_mul(u64::from(base)))
            .and_then(|m| m.checked_add(u64::from(d)));
        i += 1;
    }
    if i == start {
        return (Some(0), 0);
    }
    let value = magnitude
        .and_then(|m| if negative { 0i64.checked_sub_unsigned(m) } else { i64::try_from(m).ok() });
    (value, i)
}

/// CPython's `PyLong_FromString(s, NULL, base)` for `base` 0 or 10: surrounding whitespace, a
/// sign, `0x`/`0o`/`0b` prefixes (base 0), single underscores between digits, no leading zero
/// on a non-zero decimal (base 0), at most 4300 decimal digits.
fn py_long(s: &[u8], base: u32) -> Result<IntArg, &'static str> {
    const NOT_AN_INT: &str = "not an integer";
    let mut i = 0;
    while s.get(i).is_some_and(|&b| is_c_space(b)) {
        i += 1;
    }
    let negative = match s.get(i) {
        Some(b'-') => {
            i += 1;
            true
        }
        Some(b'+') => {
            i += 1;
            false
        }
        _ => false,
    };
    let mut base = base;
    let mut error_if_nonzero = false;
    let prefix = s.get(i + 1).map(u8::to_ascii_lowercase);
    if base == 0 {
        base = match (s.get(i), prefix) {
            (Some(b'0'), Some(b'x')) => 16,
            (Some(b'0'), Some(b'o')) => 8,
            (Some(b'0'), Some(b'b')) => 2,
            (Some(b'0'), _) => {
                error_if_nonzero = true;
                10
            }
            _ => 10,
        };
        if base != 10 {
            i += 2;
            if s.get(i) == Some(&b'_') {
                i += 1;
            }
        }
    }
    if s.get(i) == Some(&b'_') {
        return Err(NOT_AN_INT);
    }
    let mut digits: Vec<u8> = Vec::new();
    let mut prev_underscore = false;
    while let Some(&b) = s.get(i) {
        if b == b'_' {
            if prev_underscore {
                return Err(NOT_AN_INT);
            }
            prev_underscore = true;
        } else {
            let d = digit_value(b);
            if d >= base {
                break;
            }
            // d < base <= 16
            digits.push(d as u8);
            prev_underscore = false;
        }
        i += 1;
    }
    if prev_underscore || digits.is_empty() {
        return Err(NOT_AN_INT);
    }
    while s.get(i).is_some_and(|&b| is_c_space(b)) {
        i += 1;
    }
    if i != s.len() {
        return Err(NOT_AN_INT);
    }
    if base == 10 && digits.len() > MAX_DECIMAL_DIGITS {
        return Err("integer has more than 4300 decimal digits");
    }
    let limbs = match base {
        10 => decimal_limbs(&digits),
        8 => binary_limbs(&digits, 3),
        16 => binary_limbs(&digits, 4),
        _ => binary_limbs(&digits, 1),
    };
    if error_if_nonzero && limbs.iter().any(|&l| l != 0) {
        return Err("leading zeros in a decimal integer");
    }
    Ok(int_from_magnitude(negative, &limbs).into())
}

/// Little-endian base-2^32 limbs of a decimal number (digits most significant first).
fn decimal_limbs(digits: &[u8]) -> Vec<u32> {
    let mut limbs: Vec<u32> = vec![0];
    for chunk in digits.chunks(9) {
        let mut mul: u64 = 1;
        let mut add: u64 = 0;
        for &d in chunk {
            mul *= 10;
            add = add * 10 + u64::from(d);
        }
        let mut carry = add;
        for limb in &mut limbs {
            let v = u64::from(*limb) * mul + carry;
            *limb = v as u32; // the low 32 bits; the rest carries
            carry = v >> 32;
        }
        if carry > 0 {
            limbs.push(carry as u32); // carry < 2^32: mul and add are below 10^9
        }
    }
    limbs
}

/// Little-endian base-2^32 limbs of a number in base 2^`bits` (digits most significant first).
fn binary_limbs(digits: &[u8], bits: u32) -> Vec<u32> {
    let total = digits.len() * bits as usize;
    let mut limbs = vec![0u32; total / 32 + 1];
    for (n, &d) in digits.iter().rev().enumerate() {
        for b in 0..bits {
            if (d >> b) & 1 == 1 {
                let pos = n * bits as usize + b as usize;
                if let Some(limb) = limbs.get_mut(pos / 32) {
                    *limb |= 1 << (pos % 32);
                }
            }
        }
    }
    limbs
}

/// `INT`: `I00`/`I01` are `False`/`True`; otherwise `strtol(s, 0)`, falling back to
/// `int(s, 0)` when that overflows or stops early.
pub(crate) fn int_arg(line: &[u8]) -> Result<IntArg, &'static str> {
    if line.is_empty() {
        return Err("empty argument");
    }
    let s = c_str(line);
    match strtol(s) {
        (Some(x), end) if end == s.len() => {
            if line.len() == 2 && (x == 0 || x == 1) {
                Ok(IntArg::Bool(x == 1))
            } else {
                Ok(IntArg::Int(x))
            }
        }
        _ => py_long(s, 0),
    }
}

/// `LONG`: `int(s, 0)` after dropping one trailing `L` (Python 2 writes `L123L`).
pub(crate) fn long_arg(line: &[u8]) -> Result<IntArg, &'static str> {
    let line = match line.split_last() {
        None => return Err("empty argument"),
        Some((b'L', rest)) => rest,
        Some(_) => line,
    };
    py_long(c_str(line), 0)
}

/// `PUT` and `GET`: `int(s, 10)`, which must fit an `i64`.
pub(crate) fn memo_key_arg(line: &[u8]) -> Result<i64, &'static str> {
    if line.is_empty() {
        return Err("empty argument");
    }
    match py_long(c_str(line), 10)? {
        IntArg::Int(i) => Ok(i),
        _ => Err("memo key out of range"),
    }
}

/// `FLOAT`: the whole C string is a float (`1.5`, `-0.0`, `1e300`, `inf`, `nan`), with no
/// whitespace; one too large for a float is an error (Python's `OverflowError`).
pub(crate) fn float_arg(line: &[u8]) -> Result<f64, &'static str> {
    if line.is_empty() {
        return Err("empty argument");
    }
    let text = std::str::from_utf8(c_str(line)).map_err(|_| "not a float")?;
    // Rust's grammar is Python's here: optional sign, digits with an optional point and
    // exponent, or inf/infinity/nan in any case; no whitespace, no underscores.
    let v: f64 = text.parse().map_err(|_| "not a float")?;
    if v.is_infinite() && !text.bytes().any(|b| b.eq_ignore_ascii_case(&b'i')) {
        return Err("float out of range");
    }
    Ok(v)
}

/// `STRING`: a quoted Python 2 `str` repr. Appends the unescaped bytes to `out`.
pub(crate) fn string_arg(line: &[u8], out: &mut Vec<u8>) -> Result<(), &'static str> {
    let inner = match line {
        [q @ (b'\'' | b'"'), inner @ .., last] if last == q => inner,
        _ => return Err("the STRING argument must be quoted"),
    };
    let mut i = 0;
    while let Some(&c) = inner.get(i) {
        i += 1;
        if c != b'\\' {
            out.push(c);
            continue;
        }
        let Some(&e) = inner.get(i) else {
            return Err("trailing backslash in STRING");
        };
        i += 1;
        match e {
            b'\n' => {}
            b'\\' | b'\'' | b'"' => out.push(e),
            b'b' => out.push(0x08),
            b'f' => out.push(0x0c),
            b't' => out.push(b'\t'),
            b'n' => out.push(b'\n'),
            b'r' => out.push(b'\r'),
            b'v' => out.push(0x0b),
            b'a' => out.push(0x07),
            b'0'..=b'7' => {
                let mut v = u32::from(e - b'0');
                for _ in 0..2 {
                    match inner.get(i) {
                        Some(&d @ b'0'..=b'7') => {
                            v = (v << 3) + u32::from(d - b'0');
                            i += 1;
                        }
                        _ => break,
                    }
                }
                // CPython keeps the low byte of `\400` to `\777`.
                out.push((v & 0xff) as u8);
            }
            b'x' => {
                let hi = inner.get(i).map_or(99, |&b| digit_value(b));
                let lo = inner.get(i + 1).map_or(99, |&b| digit_value(b));
                if hi >= 16 || lo >= 16 {
                    return Err("invalid \\x escape in STRING");
                }
                out.push((hi * 16 + lo) as u8); // both below 16
                i += 2;
            }
            _ => {
                // An unknown escape stays as it is, backslash included.
                out.push(b'\\');
                i -= 1;
            }
        }
    }
    Ok(())
}

/// `UNICODE`: Python's `raw-unicode-escape` codec. Bytes are Latin-1 characters, except that
/// a run of backslashes of odd length followed by `u` or `U` ends in a `\uXXXX` or
/// `\UXXXXXXXX` escape. Appends UTF-8 to `out`. A lone surrogate (which Python keeps) is an
/// error: it cannot be a Rust string.
pub(crate) fn unicode_arg(line: &[u8], out: &mut Vec<u8>) -> Result<(), &'static str> {
    let mut i = 0;
    let mut utf8 = [0u8; 4];
    while let Some(&c) = line.get(i) {
        if c != b'\\' {
            out.extend_from_slice(char::from(c).encode_utf8(&mut utf8).as_bytes());
            i += 1;
            continue;
        }
        let run_start = i;
        while line.get(i) == Some(&b'\\') {
            i += 1;
        }
        let run = i - run_start;
        let count = match line.get(i) {
            Some(b'u') if run % 2 == 1 => 4,
            Some(b'U') if run % 2 == 1 => 8,
            _ => {
                out.extend(std::iter::repeat_n(b'\\', run));
                continue;
            }
        };
        out.extend(std::iter::repeat_n(b'\\', run - 1));
        i += 1;
        let mut code: u32 = 0;
        for _ in 0..count {
            let d = line.get(i).map_or(99, |&b| digit_value(b));
            if d >= 16 {
                return Err("truncated \\u escape in UNICODE");
            }
            code = (code << 4) | d;
            i += 1;
        }
        let ch = match char::from_u32(code) {
            Some(ch) => ch,
            None if code <= 0x10ffff => return Err("lone surrogate in UNICODE"),
            None => return Err("\\U escape out of range in UNICODE"),
        };
        out.extend_from_slice(ch.encode_utf8(&mut utf8).as_bytes());
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn int(s: &str) -> Result<IntArg, &'static str> {
        int_arg(s.as_bytes())
    }

    #[test]
    fn int_arguments_read_like_cpython() {
        // Each expectation is what CPython 3.11's pickle.loads gives for b"I<s>\n.".
        assert_eq!(int("01"), Ok(IntArg::Bool(true)));
        assert_eq!(int("00"), Ok(IntArg::Bool(false)));
        assert_eq!(int("+1"), Ok(IntArg::Bool(true)));
        assert_eq!(int(" 1"), Ok(IntArg::Bool(true)));
        assert_eq!(int("1"), Ok(IntArg::Int(1)));
        assert_eq!(int("010"), Ok(IntArg::Int(8)));
        assert_eq!(int("0x1f"), Ok(IntArg::Int(31)));
        assert_eq!(int("1_0"), Ok(IntArg::Int(10)));
        assert_eq!(int("-1700000000"), Ok(IntArg::Int(-1_700_000_000)));
        assert_eq!(int("12\0zz"), Ok(IntArg::Int(12)));
        assert_eq!(int("0b101"), Ok(IntArg::Int(5)));
        assert_eq!(int("-9223372036854775808"), Ok(IntArg::Int(i64::MIN)));
        let big = int("99999999999999999999").unwrap();
        let IntArg::Big(b) = big else { panic!("{big:?}") };
        assert_eq!(b.to_f64(), Some(1e20));
        assert!(int("").is_err());
        assert!(int(" ").is_err());
        assert!(int("1x").is_err());
        assert!(int("1__0").is_err());
        assert!(int("09").is_err());
        assert!(int(&"9".repeat(4301)).is_err());
    }

    #[test]
    fn long_arguments_read_like_cpython() {
        assert_eq!(long_arg(b"5L"), Ok(IntArg::Int(5)));
        assert_eq!(long_arg(b"5"), Ok(IntArg::Int(5)));
        assert_eq!(long_arg(b" 5 "), Ok(IntArg::Int(5)));
        assert_eq!(long_arg(b"0x10L"), Ok(IntArg::Int(16)));
        assert_eq!(long_arg(b"00"), Ok(IntArg::Int(0)));
        assert!(long_arg(b"010").is_err());
        assert!(long_arg(b"L").is_err());
        let IntArg::Big(b) = long_arg(b"-1180591620717411303424L").unwrap() else { panic!() };
        assert_eq!(b.to_f64(), Some(-(2f64.powi(70))));
        let IntArg::Big(b) = long_arg(format!("0x1{}", "0".repeat(300)).as_bytes()).unwrap() else {
            panic!()
        };
        assert_eq!(b.to_f64(), None);
    }

    #[test]
    fn float_arguments_read_like_cpython() {
        assert_eq!(float_arg(b"1.5"), Ok(1.5));
        assert_eq!(float_arg(b"1.5\0z"), Ok(1.5));
        assert_eq!(float_arg(b"InF"), Ok(f64::INFINITY));
        assert_eq!(float_arg(b"-infinity"), Ok(f64::NEG_INFINITY));
        assert!(float_arg(b"-nan").unwrap().is_nan());
        assert_eq!(float_arg(b"1e-400"), Ok(0.0));
        assert!(float_arg(b"1e400").is_err());
        assert!(float_arg(b" 1").is_err());
        assert!(float_arg(b"1_0").is_err());
    }

    #[test]
    fn memo_keys() {
        assert_eq!(memo_key_arg(b" 007 "), Ok(7));
        assert_eq!(memo_key_arg(b"-1"), Ok(-1));
        assert!(memo_key_arg(b"0x1").is_err());
        assert!(memo_key_arg(b"99999999999999999999").is_err());
    }

    fn string(s: &[u8]) -> Result<Vec<u8>, &'static str> {
        let mut out = Vec::new();
        string_arg(s, &mut out).map(|()| out)
    }

    #[test]
    fn string_arguments_unescape_like_python2_repr() {
        assert_eq!(string(b"'abc'"), Ok(b"abc".to_vec()));
        assert_eq!(string(b"\"it's\""), Ok(b"it's".to_vec()));
        assert_eq!(string(br"'caf\xc3\xa9'"), Ok("café".as_bytes().to_vec()));
        assert_eq!(string(br#"'q\"\\ \n\t\x00'"#), Ok(b"q\"\\ \n\t\x00".to_vec()));
        assert_eq!(string(br"'\777\1\q'"), Ok(b"\xff\x01\\q".to_vec()));
        assert_eq!(string(b"''"), Ok(vec![]));
        assert!(string(b"'").is_err());
        assert!(string(b"'a\"").is_err());
        assert!(string(br"'a\'").is_err());
        assert!(string(br"'\x4'").is_err());
    }

    fn unicode(s: &[u8]) -> Result<String, &'static str> {
        let mut out = Vec::new();
        unicode_arg(s, &mut out).map(|()| String::from_utf8(out).unwrap())
    }

    #[test]
    fn unicode_arguments_decode_raw_unicode_escape() {
        assert_eq!(unicode(b"caf\xe9"), Ok("café".into()));
        assert_eq!(unicode(br"\u0041"), Ok("A".into()));
        assert_eq!(unicode(br"\\u0041"), Ok(r"\\u0041".into()));
        assert_eq!(unicode(br"\\\u0041"), Ok(r"\\A".into()));
        assert_eq!(unicode(br"\x41\"), Ok(r"\x41\".into()));
        assert_eq!(unicode(br"\U0001f600"), Ok("\u{1f600}".into()));
        assert!(unicode(br"\u00").is_err());
        assert!(unicode(br"\U00110000").is_err());
        assert!(unicode(br"\ud800").is_err());
    }
}
