//! The values this crate reads from and writes to pickles: Python's `None`, `bool`, `int`,
//! `float`, `str`, `bytes`, `list`, `tuple` and `dict`, and nothing that needs a class.
#![warn(clippy::indexing_slicing)]

use std::fmt;
use std::sync::Arc;

use bytes::Bytes;

/// A Python value built from a pickle (see [`loads`](super::loads)), or to be pickled (see
/// [`dumps`](super::dumps)).
///
/// Ints that fit an `i64` are [`Value::Int`]; larger ones are [`Value::BigInt`]. A `dict` keeps
/// its entries in insertion order, as Python does; unlike Python it keeps a repeated key as a
/// second entry (a pickle written by Python never repeats one), and [`Value::get`] returns the
/// last one, which is the value Python would keep.
#[derive(Clone, Debug, PartialEq)]
#[non_exhaustive]
pub enum Value {
    /// `None`.
    None,
    /// `True` or `False`.
    Bool(bool),
    /// An `int` that fits in an `i64`.
    Int(i64),
    /// An `int` that does not fit in an `i64`.
    BigInt(BigInt),
    /// A `float`.
    Float(f64),
    /// A `str` (Python 2 `str` and `unicode` alike, decoded as UTF-8 as carbon decodes them).
    Str(Arc<str>),
    /// A `bytes` (Python 3 only).
    Bytes(Bytes),
    /// A `list`.
    List(Vec<Value>),
    /// A `tuple`.
    Tuple(Vec<Value>),
    /// A `dict`, in insertion order.
    Dict(Vec<(Value, Value)>),
}

impl Value {
    /// A `str`.
    pub fn str(s: &str) -> Value {
        Value::Str(Arc::from(s))
    }

    /// Python's name of the value's type (`"NoneType"`, `"int"`, `"str"`, ...).
    pub fn type_name(&self) -> &'static str {
        match self {
            Value::None => "NoneType",
            Value::Bool(_) => "bool",
            Value::Int(_) | Value::BigInt(_) => "int",
            Value::Float(_) => "float",
            Value::Str(_) => "str",
            Value::Bytes(_) => "bytes",
            Value::List(_) => "list",
            Value::Tuple(_) => "tuple",
            Value::Dict(_) => "dict",
        }
    }

    /// The text of a `str`.
    pub fn as_str(&self) -> Option<&str> {
        match self {
            Value::Str(s) => Some(s),
            _ => None,
        }
    }

    /// The items of a `list` or a `tuple`.
    pub fn as_seq(&self) -> Option<&[Value]> {
        match self {
            Value::List(v) | Value::Tuple(v) => Some(v),
            _ => None,
        }
    }

    /// The value of a `dict` under the `str` key `key` (the last one if the key repeats).
    pub fn get(&self, key: &str) -> Option<&Value> {
        match self {
            Value::Dict(entries) => {
                entries.iter().rev().find(|(k, _)| k.as_str() == Some(key)).map(|(_, v)| v)
            }
            _ => None,
        }
    }

    /// Python's `float(value)` for the types this model has: numbers and bools convert, `str`
    /// and `bytes` are parsed (see [`parse_py_float`](crate::parse_py_float)), everything else
    /// is a `TypeError`.
    ///
    /// ```
    /// use carbon_proto::pickle::Value;
    /// assert_eq!(Value::str(" 1.5e3 ").py_float(), Ok(1500.0));
    /// assert_eq!(Value::Int(7).py_float(), Ok(7.0));
    /// assert!(Value::None.py_float().is_err());
    /// ```
    ///
    /// # Errors
    ///
    /// A [`NumberError`] where Python raises.
    pub fn py_float(&self) -> Result<f64, NumberError> {
        match self {
            Value::Bool(b) => Ok(f64::from(u8::from(*b))),
            Value::Int(i) => Ok(*i as f64),
            Value::BigInt(b) => b.to_f64().ok_or(NumberError::TooLarge),
            Value::Float(f) => Ok(*f),
            Value::Str(s) => float_from_str(s),
            Value::Bytes(b) => float_from_bytes(b),
            other => Err(NumberError::Type { found: other.type_name() }),
        }
    }
}

impl From<&str> for Value {
    fn from(s: &str) -> Value {
        Value::str(s)
    }
}

impl From<i64> for Value {
    fn from(i: i64) -> Value {
        Value::Int(i)
    }
}

impl From<f64> for Value {
    fn from(f: f64) -> Value {
        Value::Float(f)
    }
}

impl From<bool> for Value {
    fn from(b: bool) -> Value {
        Value::Bool(b)
    }
}

/// Why Python's `float()` refuses a value.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum NumberError {
    /// The value is not a number, a bool, a `str` or a `bytes` (Python's `TypeError`).
    #[error("a {found} is not a number")]
    Type {
        /// Python's name of its type.
        found: &'static str,
    },
    /// A `str` or `bytes` that is not a number (Python's `ValueError`).
    #[error("text {text:?} is not a number")]
    Text {
        /// The text (its first 64 characters).
        text: String,
    },
    /// An int too large for a float (Python's `OverflowError`).
    #[error("int too large to convert to float")]
    TooLarge,
}

/// The first 64 characters of `s`, for error messages.
fn excerpt(s: &str) -> String {
    s.chars().take(64).collect()
}

/// Python's `str.isspace`, which `float()` strips: Unicode whitespace and `\x1c`-`\x1f`.
fn is_py_space(c: char) -> bool {
    c.is_whitespace() || ('\u{1c}'..='\u{1f}').contains(&c)
}

pub(crate) fn float_from_str(s: &str) -> Result<f64, NumberError> {
    crate::pyfloat::parse_py_float(s.trim_matches(is_py_space))
        .ok_or_else(|| NumberError::Text { text: excerpt(s) })
}

pub(crate) fn float_from_bytes(b: &[u8]) -> Result<f64, NumberError> {
    // `float(b"...")` reads ASCII and strips ASCII whitespace only.
    let text = if b.is_ascii() { std::str::from_utf8(b).ok() } else { None };
    let is_space = |c: char| matches!(c, '\t' | '\n' | '\x0b' | '\x0c' | '\r' | ' ');
    text.and_then(|t| crate::pyfloat::parse_py_float(t.trim_matches(is_space)))
        .ok_or_else(|| NumberError::Text { text: excerpt(&String::from_utf8_lossy(b)) })
}

/// A number for the encoders: carbon sends floats, but a cache with
/// `MIN_TIMESTAMP_RESOLUTION` set holds int timestamps, and pickles tell them apart.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Number {
    /// A Python `int`.
    Int(i64),
    /// A Python `float`.
    Float(f64),
}

impl From<f64> for Number {
    fn from(f: f64) -> Number {
        Number::Float(f)
    }
}

impl From<i64> for Number {
    fn from(i: i64) -> Number {
        Number::Int(i)
    }
}

/// An `int` too large for an `i64`, kept exactly as the pickle's LONG opcodes write it: the
/// shortest two's-complement little-endian bytes.
#[derive(Clone, PartialEq, Eq, Hash)]
pub struct BigInt {
    /// Minimal two's-complement, little-endian; never empty (zero is `[0]`).
    le: Box<[u8]>,
}

impl BigInt {
    /// The int whose two's-complement little-endian bytes are `bytes` (any length; empty is
    /// zero, as in `LONG1`).
    pub fn from_signed_bytes_le(bytes: &[u8]) -> BigInt {
        let negative = bytes.last().is_some_and(|&b| b & 0x80 != 0);
        let fill = if negative { 0xff } else { 0x00 };
        // Drop redundant sign bytes: a top byte equal to `fill` whose next byte has the same
        // sign bit.
        let mut len = bytes.len();
        while len > 1 {
            let (Some(&top), Some(&next)) = (bytes.get(len - 1), bytes.get(len - 2)) else {
                break;
            };
            if top == fill && (next & 0x80 != 0) == negative {
                len -= 1;
            } else {
                break;
            }
        }
        let le: Box<[u8]> = match bytes.get(..len) {
            Some(b) if !b.is_empty() => b.into(),
            _ => Box::new([0]),
        };
        BigInt { le }
    }

    /// The int with sign `negative` and magnitude `limbs` (little-endian base 2^32).
    pub(crate) fn from_magnitude(negative: bool, limbs: &[u32]) -> BigInt {
        let mut bytes: Vec<u8> = limbs.iter().flat_map(|l| l.to_le_bytes()).collect();
        bytes.push(0); // room for the sign bit
        if negative {
            // Two's complement: invert and add one.
            let mut carry = true;
            for b in &mut bytes {
                let (v, c) = (!*b).overflowing_add(u8::from(carry));
                *b = v;
                carry = c;
            }
        }
        BigInt::from_signed_bytes_le(&bytes)
    }

    /// The shortest two's-complement little-endian bytes (what `LONG1` and `LONG4` carry).
    pub fn as_signed_bytes_le(&self) -> &[u8] {
        &self.le
    }

    /// Whether the int is negative.
    pub fn is_negative(&self) -> bool {
        self.le.last().is_some_and(|&b| b & 0x80 != 0)
    }

    /// The int, if it fits an `i64`.
    pub fn to_i64(&self) -> Option<i64> {
        if self.le.len() > 8 {
            return None;
        }
        let fill = if self.is_negative() { 0xff } else { 0 };
        let mut buf = [fill; 8];
        for (d, s) in buf.iter_mut().zip(self.le.iter()) {
            *d = *s;
        }
        Some(i64::from_le_bytes(buf))
    }

    /// Python's `float(int)`: the nearest float, ties to even; `None` where Python raises
    /// `OverflowError` (the int rounds to 2^1024 or beyond).
    pub fn to_f64(&self) -> Option<f64> {
        let negative = self.is_negative();
        let mut mag = self.le.to_vec();
        if negative {
            let mut carry = true;
            for b in &mut mag {
                let (v, c) = (!*b).overflowing_add(u8::from(carry));
                *b = v;
                carry = c;
            }
        }
        while mag.len() > 1 && mag.last() == Some(&0) {
            mag.pop();
        }
        let top = mag.last().copied().unwrap_or(0);
        let bits = (mag.len() as u64 - 1) * 8 + u64::from(8 - top.leading_zeros());
        let bit = |i: u64| -> u64 {
            let byte = usize::try_from(i / 8).ok().and_then(|j| mag.get(j)).copied().unwrap_or(0);
            u64::from((byte >> (i % 8)) & 1)
        };
        let magnitude = if bits <= 64 {
            let mut m = 0u64;
            for i in 0..bits {
                m |= bit(i) << i;
            }
            m as f64
        } else {
            let shift = bits - 64;
            let mut m = 0u64;
            for i in 0..64 {
                m |= bit(shift + i) << i;
            }
            // A sticky bit: anything below the 64 kept bits makes a tie round up, as it must.
            let sticky = (0..shift).any(|i| bit(i) == 1);
            if sticky {
                m |= 1;
            }
            if shift > 1023 {
                return None;
            }
            // shift <= 1023: 2^shift is a normal float.
            let scale = f64::from_bits((1023 + shift) << 52);
            m as f64 * scale
        };
        if magnitude.is_infinite() {
            return None;
        }
        Some(if negative { -magnitude } else { magnitude })
    }
}

impl Default for BigInt {
    /// Zero.
    fn default() -> BigInt {
        BigInt::from(0)
    }
}

impl From<i64> for BigInt {
    fn from(i: i64) -> BigInt {
        BigInt::from_signed_bytes_le(&i.to_le_bytes())
    }
}

impl fmt::Debug for BigInt {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("BigInt(0x")?;
        for b in self.le.iter().rev() {
            write!(f, "{b:02x}")?;
        }
        f.write_str(" signed)")
    }
}

/// Builds an int from a sign and magnitude limbs: an `i64` when it fits.
pub(crate) fn int_from_magnitude(negative: bool, limbs: &[u32]) -> Result<i64, BigInt> {
    let big = BigInt::from_magnitude(negative, limbs);
    big.to_i64().ok_or(big)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn big(bytes: &[u8]) -> BigInt {
        BigInt::from_signed_bytes_le(bytes)
    }

    #[test]
    fn big_ints_are_kept_minimal() {
        assert_eq!(big(&[]).as_signed_bytes_le(), [0]);
        assert_eq!(big(&[1, 0, 0, 0]).as_signed_bytes_le(), [1]);
        assert_eq!(big(&[0xff, 0xff]).as_signed_bytes_le(), [0xff]);
        assert_eq!(big(&[0x80, 0xff]).as_signed_bytes_le(), [0x80]);
        assert_eq!(big(&[0x80, 0x00]).as_signed_bytes_le(), [0x80, 0x00]);
        assert_eq!(big(&[0x7f, 0xff]).as_signed_bytes_le(), [0x7f, 0xff]);
        assert_eq!(BigInt::from(i64::MIN).to_i64(), Some(i64::MIN));
        assert_eq!(BigInt::from(-1).to_i64(), Some(-1));
        assert_eq!(BigInt::from_magnitude(true, &[0, 0, 1]).as_signed_bytes_le().len(), 9);
    }

    #[test]
    fn big_ints_round_to_floats_like_python() {
        // 2**64 + 1 rounds to 2**64; 2**53 + 1 to 2**53 (tie to even); 2**53 + 3 up.
        assert_eq!(BigInt::from_magnitude(false, &[1, 0, 1]).to_f64(), Some(2f64.powi(64)));
        assert_eq!(BigInt::from(9007199254740993).to_f64(), Some(9007199254740992.0));
        assert_eq!(BigInt::from(9007199254740995).to_f64(), Some(9007199254740996.0));
        // 2**100 + 2**47 + 1: just above a tie, rounds up.
        let mut limbs = [0u32; 4];
        limbs[0] = 1;
        limbs[1] = 1 << 15;
        limbs[3] = 1 << 4;
        let expected = 2f64.powi(100) + 2f64.powi(48);
        assert_eq!(BigInt::from_magnitude(false, &limbs).to_f64(), Some(expected));
        assert_eq!(BigInt::from_magnitude(true, &limbs).to_f64(), Some(-expected));
        // 2**1024 overflows, 2**1023 does not.
        let mut limbs = [0u32; 33];
        limbs[32] = 1;
        assert_eq!(BigInt::from_magnitude(false, &limbs).to_f64(), None);
        let mut limbs = [0u32; 32];
        limbs[31] = 1 << 31;
        assert_eq!(BigInt::from_magnitude(false, &limbs).to_f64(), Some(2f64.powi(1023)));
        // (2**53 - 1) * 2**971 is f64::MAX; one more ulp's worth overflows.
        assert_eq!(
            BigInt::from_magnitude(true, &[u32::MAX; 32]).to_f64(),
            None,
            "2**1024 - 1 rounds to 2**1024"
        );
    }

    #[test]
    fn python_float_of_values() {
        assert_eq!(Value::Bool(true).py_float(), Ok(1.0));
        assert_eq!(Value::str("\u{3000}12\n").py_float(), Ok(12.0));
        assert_eq!(Value::Bytes(Bytes::from_static(b" 1_0 ")).py_float(), Ok(10.0));
        assert!(matches!(Value::str("x").py_float(), Err(NumberError::Text { .. })));
        assert_eq!(Value::List(vec![]).py_float(), Err(NumberError::Type { found: "list" }));
    }
}
