//! Python's `repr(float)`, which whisper.py's messages and tools use to print floats.
//!
//! Python prints the shortest digit string that reads back to the same double (as Rust does),
//! but lays it out differently: `2.0` not `2`, `1e-05` not `0.00001`, `1e+16` not
//! `10000000000000000`, `nan` not `NaN`. The switch to exponent notation happens when the decimal
//! exponent is below -4 or above 15 (CPython `float_repr_style = 'short'`).

use std::fmt;

/// Displays an `f64` exactly as Python 3's `repr()` (and `str()`) does.
#[derive(Clone, Copy, Debug)]
pub struct FloatRepr(pub f64);

impl fmt::Display for FloatRepr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let x = self.0;
        if x.is_nan() {
            return f.write_str("nan");
        }
        if x.is_infinite() {
            return f.write_str(if x > 0.0 { "inf" } else { "-inf" });
        }
        // Rust's `{:e}` gives the shortest round-trip digits: "-1.2345e-7".
        let sci = format!("{x:e}");
        let (mantissa, exp) = sci.split_once('e').unwrap_or((&sci, "0"));
        let exp: i32 = exp.parse().unwrap_or(0);
        let (negative, mantissa) = match mantissa.strip_prefix('-') {
            Some(m) => (true, m),
            None => (false, mantissa),
        };
        let digits: String = mantissa.chars().filter(|c| *c != '.').collect();
        // Python's `decpt`: the value is 0.DIGITS * 10^decpt.
        let decpt = exp + 1;
        let mut out = String::with_capacity(digits.len() + 8);
        if negative {
            out.push('-');
        }
        if (-4 < decpt) && (decpt <= 16) {
            if decpt <= 0 {
                out.push_str("0.");
                out.extend(std::iter::repeat_n('0', decpt.unsigned_abs() as usize));
                out.push_str(&digits);
            } else {
                let point = decpt as usize;
                if digits.len() <= point {
                    out.push_str(&digits);
                    out.extend(std::iter::repeat_n('0', point - digits.len()));
                    out.push_str(".0");
                } else {
                    out.push_str(&digits[..point]);
                    out.push('.');
                    out.push_str(&digits[point..]);
                }
            }
        } else {
            out.push_str(&digits[..1]);
            if digits.len() > 1 {
                out.push('.');
                out.push_str(&digits[1..]);
            }
            let e = decpt - 1;
            out.push('e');
            out.push(if e < 0 { '-' } else { '+' });
            let a = e.unsigned_abs();
            if a < 10 {
                out.push('0');
            }
            out.push_str(&a.to_string());
        }
        f.pad(&out)
    }
}

#[cfg(test)]
mod tests {
    use super::FloatRepr;

    fn r(x: f64) -> String {
        FloatRepr(x).to_string()
    }

    #[test]
    fn matches_python_repr() {
        // Each expectation is what CPython 3.11 prints for repr(x).
        let cases: &[(f64, &str)] = &[
            (0.0, "0.0"),
            (-0.0, "-0.0"),
            (1.0, "1.0"),
            (0.5, "0.5"),
            (2.0, "2.0"),
            (0.1, "0.1"),
            (f64::from(0.7f32), "0.699999988079071"),
            (1e-4, "0.0001"),
            (1e-5, "1e-05"),
            (1.5e-5, "1.5e-05"),
            (123456.789, "123456.789"),
            (1e15, "1000000000000000.0"),
            (1e16, "1e+16"),
            (1.2345e16, "1.2345e+16"),
            (1e100, "1e+100"),
            (-2.5e-300, "-2.5e-300"),
            (f64::NAN, "nan"),
            (f64::INFINITY, "inf"),
            (f64::NEG_INFINITY, "-inf"),
            (f64::MAX, "1.7976931348623157e+308"),
            (5e-324, "5e-324"),
        ];
        for (x, want) in cases {
            assert_eq!(r(*x), *want, "repr({x:e})");
        }
    }
}
