//! carbon's retention syntax (`carbon.util.parseRetentionDef` and `carbon.storage.Archive`),
//! which is stricter than whisper's: units are exactly one of `s m h d w y`, the definition is
//! split on every `:`, and a duration on the points side is divided with Python's true division
//! and then truncated by `int()`.

use whisper::Retention;

use super::error::RetentionProblem;
use super::text::py_strip;

/// One retention definition of a `retentions` line: `Ok(Some(archive))`, `Ok(None)` when a
/// number does not fit whisper's 32-bit fields (carbon would accept it and fail when creating
/// the file), or carbon's objection.
pub(crate) fn parse_retention(definition: &str) -> Result<Option<Retention>, RetentionProblem> {
    let parts: Vec<&str> = py_strip(definition).split(':').collect();
    let [precision, points] = parts[..] else {
        return Err(RetentionProblem::Parts);
    };
    let precision_seconds = if is_digits(precision) {
        big(precision)
    } else if let Some((count, unit)) = number_and_unit(precision) {
        times(big(count), multiplier(unit)?)
    } else {
        return Err(RetentionProblem::Precision(precision.to_string()));
    };
    let point_count = if is_digits(points) {
        big(points)
    } else if let Some((count, unit)) = number_and_unit(points) {
        let seconds = times(big(count), multiplier(unit)?);
        match (seconds, precision_seconds) {
            (_, Some(0)) => return Err(RetentionProblem::ZeroPrecision),
            (Some(a), Some(b)) => Some(true_div_trunc(a, b)),
            _ => None,
        }
    } else {
        return Err(RetentionProblem::Points(points.to_string()));
    };
    let fit = |n: Option<u128>| n.and_then(|n| u32::try_from(n).ok());
    Ok(fit(precision_seconds).zip(fit(point_count)).map(|(s, p)| Retention::new(s, p)))
}

/// Python's `s.isdigit()` for ASCII digits.
fn is_digits(s: &str) -> bool {
    !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit())
}

/// `re.match(r'^(\d+)([a-z]+)$', s)`; Python's `$` also matches before a final `\n`.
fn number_and_unit(s: &str) -> Option<(&str, &str)> {
    let s = s.strip_suffix('\n').unwrap_or(s);
    let split = s.find(|c: char| !c.is_ascii_digit())?;
    let (count, unit) = s.split_at(split);
    (!count.is_empty() && !unit.is_empty() && unit.bytes().all(|b| b.is_ascii_lowercase()))
        .then_some((count, unit))
}

/// carbon's `UnitMultipliers`, exactly one letter.
fn multiplier(unit: &str) -> Result<u128, RetentionProblem> {
    Ok(match unit {
        "s" => 1,
        "m" => 60,
        "h" => 3600,
        "d" => 86_400,
        "w" => 604_800,
        "y" => 31_536_000,
        _ => return Err(RetentionProblem::Unit(unit.to_string())),
    })
}

/// A decimal number, `None` past `u128`.
fn big(digits: &str) -> Option<u128> {
    digits.bytes().try_fold(0u128, |n, b| n.checked_mul(10)?.checked_add(u128::from(b - b'0')))
}

fn times(n: Option<u128>, m: u128) -> Option<u128> {
    n?.checked_mul(m)
}

/// `int(a / b)` in Python: the quotient rounded to the nearest double (ties to even), then
/// truncated. Equal to `a / b` in integers except when the double rounds up to the next
/// integer, or when the quotient is past 2^53 and loses its low bits.
pub(crate) fn true_div_trunc(a: u128, b: u128) -> u128 {
    const TWO_53: u128 = 1 << 53;
    if b == 0 {
        return 0;
    }
    if a < TWO_53 && b < TWO_53 {
        // Both convert exactly and IEEE division rounds correctly.
        #[allow(
            clippy::cast_precision_loss,
            clippy::cast_possible_truncation,
            clippy::cast_sign_loss
        )]
        return ((a as f64) / (b as f64)) as u128;
    }
    let (q, r) = (a / b, a % b);
    if q >= TWO_53 {
        // Past 2^53 doubles are integers 2^k apart: round q + r/b to a multiple of 2^k.
        let k = (128 - q.leading_zeros()) - 53;
        let low = q & ((1u128 << k) - 1);
        let half = 1u128 << (k - 1);
        let mantissa = q >> k;
        let up = low > half || (low == half && (r > 0 || mantissa & 1 == 1));
        return (mantissa + u128::from(up)) << k;
    }
    if r == 0 {
        return q;
    }
    // q + r/b lies strictly between q and q + 1; doubles just below q + 1 are u = 2^(e-52)
    // apart, e = floor(log2(q)) (e = -1 when q = 0). It rounds up to q + 1 when
    // (b - r) / b < u / 2, i.e. (b - r) * 2^(53 - e) < b, or on a tie when q + 1 is the even
    // neighbour (always, unless e = 52 and q + 1 is odd).
    let e: i32 = if q == 0 { -1 } else { 127 - q.leading_zeros() as i32 };
    let shift = u32::try_from(53 - e).unwrap_or(54);
    let gap = b - r;
    let up = match gap.checked_shl(shift).filter(|&g| g >> shift == gap) {
        None => false,
        Some(scaled) if scaled < b => true,
        Some(scaled) if scaled == b => e < 52 || (q + 1) % 2 == 0,
        Some(_) => false,
    };
    q + u128::from(up)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ok(def: &str) -> (u32, u32) {
        let r = parse_retention(def).unwrap().unwrap();
        (r.seconds_per_point(), r.points())
    }

    #[test]
    fn carbon_examples() {
        assert_eq!(ok("60:1440"), (60, 1440));
        assert_eq!(ok("1m:1d"), (60, 1440));
        assert_eq!(ok("10s:6h"), (10, 2160));
        assert_eq!(ok("1h:7d"), (3600, 168));
        assert_eq!(ok("15m:8"), (900, 8));
        assert_eq!(ok("12h:2y"), (43200, 1460));
        assert_eq!(ok(" 60:90d "), (60, 129_600));
        // True division then truncation: 86400 / 7 = 12342.857...
        assert_eq!(ok("7s:1d"), (7, 12342));
        // Python's `$` matches before a final newline (a continuation line in the value).
        assert_eq!(ok("1m\n:1d"), (60, 1440));
        assert_eq!(ok("0:60"), (0, 60));
    }

    #[test]
    fn carbon_refusals() {
        use RetentionProblem::*;
        let err = |d: &str| parse_retention(d).unwrap_err();
        assert_eq!(err("1min:1d"), Unit("min".into()));
        assert_eq!(err("1M:1d"), Precision("1M".into()));
        assert_eq!(err("1m:1mo"), Unit("mo".into()));
        assert_eq!(err("60"), Parts);
        assert_eq!(err("60:1:2"), Parts);
        assert_eq!(err(""), Parts);
        assert_eq!(err("1 m:1d"), Precision("1 m".into()));
        assert_eq!(err("m:1d"), Precision("m".into()));
        assert_eq!(err("1m:"), Points("".into()));
        assert_eq!(err("60\n:1d"), Precision("60\n".into()));
        assert_eq!(err("0s:1d"), ZeroPrecision);
        assert_eq!(err("0:1d"), ZeroPrecision);
    }

    #[test]
    fn numbers_past_whisper_are_none() {
        assert_eq!(parse_retention("4294967296:10").unwrap(), None);
        assert_eq!(parse_retention("1s:4294967296").unwrap(), None);
        assert_eq!(parse_retention("1y:999999999999999999999999999999999999999y").unwrap(), None);
        assert_eq!(ok("1s:4294967295"), (1, u32::MAX));
    }

    #[test]
    fn true_division_rounds_like_python() {
        assert_eq!(true_div_trunc(86400, 7), 12342);
        assert_eq!(true_div_trunc(6, 3), 2);
        // (2^60 - 1) / 2^7 = 2^53 - 2^-7: rounds up to 2^53 as a double.
        assert_eq!(true_div_trunc((1 << 60) - 1, 1 << 7), 1 << 53);
        // 2^54 + 1 is not a double: rounds to even, 2^54.
        assert_eq!(true_div_trunc((1 << 54) + 1, 1), 1 << 54);
        assert_eq!(true_div_trunc((1 << 54) + 3, 1), (1 << 54) + 4);
        assert_eq!(true_div_trunc((1 << 54) + 2, 1), 1 << 54);
        assert_eq!(true_div_trunc((1 << 54) + 6, 1), (1 << 54) + 8);
        // Just below 1 with a huge divisor: 1 - 2^-60 rounds to 1.0.
        assert_eq!(true_div_trunc((1 << 60) - 1, 1 << 60), 1);
        assert_eq!(true_div_trunc((1 << 52) - 1, 1 << 53), 0);
    }
}
