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

/// The longest text [`write_float_repr`] writes: `-2.2250738585072014e-308` is 24 bytes.
pub const FLOAT_REPR_MAX_BYTES: usize = 24;

/// Appends [`float_repr`]'s text to `out` without allocating (see [`write_float_repr`]).
pub fn push_float_repr(out: &mut Vec<u8>, x: f64) {
    let mut buf = [0u8; 32];
    let n = write_float_repr(&mut buf, x);
    push_small(out, buf.get(..n).unwrap_or(&[]));
}

/// Powers of ten up to 1e19, all exact as doubles (every one up to 1e22 is).
const POW10: [f64; 20] = [
    1.0, 1e1, 1e2, 1e3, 1e4, 1e5, 1e6, 1e7, 1e8, 1e9, 1e10, 1e11, 1e12, 1e13, 1e14, 1e15, 1e16,
    1e17, 1e18, 1e19,
];

/// The same powers as integers.
const POW10_U64: [u64; 20] = [
    1,
    10,
    100,
    1_000,
    10_000,
    100_000,
    1_000_000,
    10_000_000,
    100_000_000,
    1_000_000_000,
    10_000_000_000,
    100_000_000_000,
    1_000_000_000_000,
    10_000_000_000_000,
    100_000_000_000_000,
    1_000_000_000_000_000,
    10_000_000_000_000_000,
    100_000_000_000_000_000,
    1_000_000_000_000_000_000,
    10_000_000_000_000_000_000,
];

/// Writes Python's `repr(x)` at the start of `buf` and returns its length (at most
/// [`FLOAT_REPR_MAX_BYTES`]; the rest of `buf` may be overwritten too). The JSON and CSV
/// writers call this once per value, so the common values take short paths:
///
/// - integral values below 1e16 are `<int>.0`;
/// - values from 1e-4 to 1e15 with at most 15 significant digits (what metrics mostly hold:
///   `47.123`, `0.25`): `m = round(|x| * 10^k)`, with `k` putting `m` just under 1e15, is
///   the decimal `m e-k` nearest to `x`; when `m / 10^k` (`m` and `10^k` are exact doubles,
///   and IEEE division rounds correctly, so this is the double the text `m e-k` reads as) is
///   `x` again, that text reads back to `x`, and without its trailing zeros it is the
///   shortest such text, because no two decimals of at most 15 digits round to the same
///   double (15 is `DBL_DIG`: `10^15 < 2^52`), so a shorter one would be another decimal
///   reading back to `x`;
/// - everything else gets its shortest digits from `ryu` (the digits Python's repr picks,
///   ties to even included), laid out with Python's thresholds and exponent style.
pub fn write_float_repr(buf: &mut [u8; 32], x: f64) -> usize {
    if !x.is_finite() {
        let text: &[u8] = if x.is_nan() {
            b"nan"
        } else if x > 0.0 {
            b"inf"
        } else {
            b"-inf"
        };
        return put(buf, 0, text);
    }
    let negative = x.is_sign_negative();
    let ax = x.abs();
    if ax == 0.0 {
        return put(buf, 0, if negative { b"-0.0" } else { b"0.0" });
    }
    let at = usize::from(negative);
    buf[0] = b'-';
    // Signed conversions (one instruction each; the unsigned ones take several): every value
    // here is below 2^63.
    if ax < 1e16 && ax as i64 as f64 == ax {
        let m = ax as u64;
        let end = at + decimal_digits(m);
        write_digits(buf, end, m);
        return put(buf, end, b".0");
    }
    if (1e-4..1e15).contains(&ax)
        && let Some((m, k)) = short_decimal(ax)
    {
        return at + write_scaled(&mut buf[at..], m, k);
    }
    write_ryu_repr(buf, x)
}

/// `(m, k)` with `x = m / 10^k` read back exactly, `m` of at most 15 digits without
/// trailing zeros, `k >= 1`, when there is one (see [`write_float_repr`]); `x` is in
/// `[1e-4, 1e15)` and not an integer.
#[inline]
fn short_decimal(x: f64) -> Option<(u64, usize)> {
    // floor(log10(x)) from the binary exponent (log10(2) ~ 1233 / 4096), within one.
    let e2 = ((x.to_bits() >> 52) & 0x7ff) as i64 - 1023;
    let e10 = (e2 * 1233) >> 12;
    // x * 10^k < 1e15 with k = 14 - e10, or 13 - e10 when the estimate was one short.
    let mut k = usize::try_from(14 - e10).ok()?;
    let mut y = x * *POW10.get(k)?;
    if y >= 1e15 {
        k = k.checked_sub(1)?;
        y = x * POW10[k];
    }
    let m = (y + 0.5) as i64;
    if m as f64 / POW10[k] != x {
        return None;
    }
    let m = u64::try_from(m).ok()?;
    // Strip the trailing zeros, by 10^8, 10^4, 10^2, 10: fewer than k of them (x is no
    // integer), so each step that applies leaves k >= 1.
    let (mut m, mut k) = (m, k);
    for p in [8usize, 4, 2, 1] {
        if k > p && m % POW10_U64[p] == 0 {
            m /= POW10_U64[p];
            k -= p;
        }
    }
    Some((m, k))
}

/// Writes `m / 10^k` (`1 <= k <= 19`, `m` of at most 15 digits, no trailing zero, at least
/// 1e-4) as a plain decimal: `1.25`, `0.0001`.
fn write_scaled(buf: &mut [u8], m: u64, k: usize) -> usize {
    let len = decimal_digits(m);
    if len > k {
        // iii.fff: the fraction's digits, the point, the integer's digits.
        let end = len + 1;
        let int = m / POW10_U64[k];
        write_digits(buf, end, m % POW10_U64[k] + POW10_U64[k]);
        buf[len - k] = b'.';
        write_digits(buf, len - k, int);
        end
    } else {
        // 0.000fff
        // At least 1e-4: at most three zeros after the point.
        let end = k + 2;
        put(buf, 0, b"0.000");
        write_digits(buf, end, m);
        end
    }
}

/// How many decimal digits `m` has (1 for 0).
#[inline]
fn decimal_digits(m: u64) -> usize {
    // An estimate from the bit length (log10(2) ~ 1233 / 4096), corrected by one compare.
    let bits = 64 - (m | 1).leading_zeros() as usize;
    let guess = (bits * 1233) >> 12;
    (guess + usize::from(POW10_U64.get(guess).is_some_and(|&p| m >= p))).max(1)
}

/// `"00"`, `"01"`, ... `"99"`.
const DIGIT_PAIRS: &[u8; 200] = b"\
    0001020304050607080910111213141516171819\
    2021222324252627282930313233343536373839\
    4041424344454647484950515253545556575859\
    6061626364656667686970717273747576777879\
    8081828384858687888990919293949596979899";

/// Writes `m`'s decimal digits so that they end just before `buf[end]` (right to left, two
/// at a time); the caller knows how many there are. Digits that do not fit are dropped.
#[inline]
fn write_digits(buf: &mut [u8], end: usize, mut m: u64) {
    let mut at = end;
    while m >= 100 {
        let pair = (m % 100) as usize * 2;
        m /= 100;
        at -= 2;
        if let Some(dst) = buf.get_mut(at..at + 2) {
            dst.copy_from_slice(&DIGIT_PAIRS[pair..pair + 2]);
        }
    }
    if m >= 10 {
        let pair = m as usize * 2;
        if let Some(dst) = at.checked_sub(2).and_then(|a| buf.get_mut(a..a + 2)) {
            dst.copy_from_slice(&DIGIT_PAIRS[pair..pair + 2]);
        }
    } else if let Some(slot) = at.checked_sub(1).and_then(|a| buf.get_mut(a)) {
        *slot = b'0' + m as u8;
    }
}

/// Copies `bytes` into `buf` at `at`; returns the end. The callers size `buf` for the
/// longest text (32 bytes for a repr), so nothing is ever cut.
#[inline]
fn put(buf: &mut [u8], at: usize, bytes: &[u8]) -> usize {
    let end = at + bytes.len();
    if let Some(dst) = buf.get_mut(at..end) {
        dst.copy_from_slice(bytes);
    }
    end
}

/// The general path of [`write_float_repr`] for a finite `x`: ryu's shortest digits, laid
/// out as Python lays them out.
#[inline(never)] // Kept out of `write_float_repr`, so its short paths stay small and cheap to enter.
fn write_ryu_repr(buf: &mut [u8; 32], x: f64) -> usize {
    let mut ryu_buf = ryu::Buffer::new();
    let text = ryu_buf.format_finite(x).as_bytes();
    // ryu lays out plain decimals exactly as Python does, except that it keeps 0.0000ddd
    // (decimal exponent -5) plain where Python switches to `d.dde-05`; exponents need
    // Python's sign and two digits.
    let unsigned = text.strip_prefix(b"-").unwrap_or(text);
    if !text.contains(&b'e') && !unsigned.starts_with(b"0.0000") {
        return put(buf, 0, text);
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
        return put(buf, 0, if negative { b"-0.0" } else { b"0.0" });
    }
    // x = 0.D * 10^(int_len - leading + exp) = D[0].D[1..] * 10^e
    let e = i32::try_from(int_len).unwrap_or(0) - i32::try_from(leading).unwrap_or(0) + exp - 1;
    let mut at = 0;
    if negative {
        at = put(buf, at, b"-");
    }
    if (-4..16).contains(&e) {
        if e >= 0 {
            let int_digits = usize::try_from(e).unwrap_or(0) + 1;
            for k in 0..int_digits {
                at = put(buf, at, &[digits.get(k).copied().unwrap_or(b'0')]);
            }
            at = put(buf, at, b".");
            match digits.get(int_digits..) {
                Some(frac) if !frac.is_empty() => put(buf, at, frac),
                _ => put(buf, at, b"0"),
            }
        } else {
            at = put(buf, at, b"0.");
            for _ in 0..(-e - 1) {
                at = put(buf, at, b"0");
            }
            put(buf, at, digits)
        }
    } else {
        at = put(buf, at, &digits[..1]);
        if digits.len() > 1 {
            at = put(buf, at, b".");
            at = put(buf, at, &digits[1..]);
        }
        at = put(buf, at, if e < 0 { b"e-" } else { b"e+" });
        let abs = e.unsigned_abs();
        if abs < 10 {
            at = put(buf, at, b"0");
        }
        put(buf, at, itoa::Buffer::new().format(abs).as_bytes())
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

    /// The general path alone (ryu's digits in Python's layout): the reference for the
    /// short paths of [`write_float_repr`].
    fn ryu_repr(x: f64) -> String {
        let mut buf = [0u8; 32];
        let n = write_ryu_repr(&mut buf, x);
        String::from_utf8(buf[..n].to_vec()).unwrap()
    }

    /// `m / 10^k`, and the doubles either side of it (where the short paths must give up).
    fn decimal_and_neighbours(m: i64, k: u32) -> [f64; 3] {
        let x = m as f64 / 10f64.powi(k as i32);
        [x, f64::from_bits(x.to_bits() + 1), f64::from_bits(x.to_bits().saturating_sub(1))]
    }

    proptest::proptest! {
        #![proptest_config(proptest::prelude::ProptestConfig::with_cases(20_000))]

        /// Any double: the short paths agree with the general one.
        #[test]
        fn short_paths_match_ryu_on_any_double(bits in proptest::prelude::any::<u64>()) {
            let x = f64::from_bits(bits);
            if x.is_finite() {
                proptest::prop_assert_eq!(float_repr(x), ryu_repr(x));
            }
        }

        /// Short decimals (the values metrics hold) and their neighbours.
        #[test]
        fn short_paths_match_ryu_on_short_decimals(
            m in -10_000_000_000_000_000i64..10_000_000_000_000_000,
            digits in 0u32..19,
            k in 0u32..20,
        ) {
            let m = m % 10i64.pow(digits);
            for x in decimal_and_neighbours(m, k) {
                proptest::prop_assert_eq!(float_repr(x), ryu_repr(x), "{} e-{}", m, k);
            }
        }
    }

    /// Against Python's own `repr` over random doubles, short decimals and their neighbours
    /// (skipped without `/usr/bin/python3`).
    #[test]
    fn repr_matches_python_on_random_values() {
        use std::io::Write as _;
        use std::process::{Command, Stdio};
        if !std::path::Path::new("/usr/bin/python3").exists() {
            eprintln!("skipped: no /usr/bin/python3");
            return;
        }
        // A small xorshift generator: a fixed seed, so a failure reproduces.
        let mut state = 0x9e37_79b9_7f4a_7c15u64;
        let mut next = move || {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            state
        };
        let mut values = Vec::new();
        for _ in 0..20_000 {
            values.push(f64::from_bits(next()));
            let digits = (next() % 17) as u32;
            let m = (next() % 10u64.pow(digits)) as i64 * if next() % 2 == 0 { 1 } else { -1 };
            values.extend(decimal_and_neighbours(m, (next() % 20) as u32));
        }
        values.retain(|x| x.is_finite());
        let mut child = Command::new("/usr/bin/python3")
            .args([
                "-c",
                "import sys, struct\n\
                 for line in sys.stdin:\n\
                 \x20   print(repr(struct.unpack('<d', struct.pack('<Q', int(line)))[0]))",
            ])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .spawn()
            .unwrap();
        let input: String = values.iter().map(|x| format!("{}\n", x.to_bits())).collect();
        let mut stdin = child.stdin.take().unwrap();
        let writer = std::thread::spawn(move || stdin.write_all(input.as_bytes()));
        let out = child.wait_with_output().unwrap();
        writer.join().unwrap().unwrap();
        let text = String::from_utf8(out.stdout).unwrap();
        let python: Vec<&str> = text.lines().collect();
        assert_eq!(python.len(), values.len());
        for (x, want) in values.iter().zip(python) {
            assert_eq!(float_repr(*x), want, "bits {}", x.to_bits());
        }
    }

    #[test]
    fn short_decimals_take_the_short_path() {
        for (x, want) in [
            (47.123, Some((47_123, 3))),
            (0.1, Some((1, 1))),
            (0.0001, Some((1, 4))),
            (0.00012, Some((12, 5))),
            (123_456_789_012.345, Some((123_456_789_012_345, 3))),
            (2.5e-3, Some((25, 4))),
            (0.1 + 0.2, None),
            (1.0 / 3.0, None),
            (47.123_333_333_333_33, None),
        ] {
            assert_eq!(short_decimal(x), want, "{x}");
        }
        for (x, want) in [(0.00012, "0.00012"), (-1.05, "-1.05"), (100.25, "100.25")] {
            assert_eq!(float_repr(x), want);
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
