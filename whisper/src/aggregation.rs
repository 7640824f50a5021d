//! The eight aggregation methods and how they combine values.
//!
//! Results are bit-for-bit those of whisper.py's `aggregate` under CPython 3.11: sums are added
//! left to right starting from `0.0` (CPython 3.12 switched `sum()` to compensated summation,
//! which can differ in the last bit), and `max`/`min` keep the first of equal values and treat
//! NaN as Python's comparisons do (a NaN in first place wins, a later one is skipped).

use std::fmt;
use std::str::FromStr;

use crate::error::Error;

/// How values are combined when a point propagates to a coarser archive.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
#[cfg_attr(feature = "serde", serde(rename_all = "snake_case"))]
pub enum AggregationMethod {
    /// Mean of the known values (code 1, the default).
    Average,
    /// Sum of the known values (code 2).
    Sum,
    /// The last known value in time order (code 3).
    Last,
    /// The largest known value (code 4).
    Max,
    /// The smallest known value (code 5).
    Min,
    /// Sum of all slots, unknown ones counting as 0, divided by the number of slots (code 6).
    AvgZero,
    /// The known value with the largest absolute value, sign kept (code 7).
    AbsMax,
    /// The known value with the smallest absolute value, sign kept (code 8).
    AbsMin,
}

impl AggregationMethod {
    /// All methods, in code order.
    pub const ALL: [AggregationMethod; 8] = [
        AggregationMethod::Average,
        AggregationMethod::Sum,
        AggregationMethod::Last,
        AggregationMethod::Max,
        AggregationMethod::Min,
        AggregationMethod::AvgZero,
        AggregationMethod::AbsMax,
        AggregationMethod::AbsMin,
    ];

    /// The code stored in the header (1 to 8).
    pub const fn code(self) -> u32 {
        match self {
            AggregationMethod::Average => 1,
            AggregationMethod::Sum => 2,
            AggregationMethod::Last => 3,
            AggregationMethod::Max => 4,
            AggregationMethod::Min => 5,
            AggregationMethod::AvgZero => 6,
            AggregationMethod::AbsMax => 7,
            AggregationMethod::AbsMin => 8,
        }
    }

    /// The method for a header code, if it is one of whisper's.
    pub const fn from_code(code: u32) -> Option<AggregationMethod> {
        Some(match code {
            1 => AggregationMethod::Average,
            2 => AggregationMethod::Sum,
            3 => AggregationMethod::Last,
            4 => AggregationMethod::Max,
            5 => AggregationMethod::Min,
            6 => AggregationMethod::AvgZero,
            7 => AggregationMethod::AbsMax,
            8 => AggregationMethod::AbsMin,
            _ => return None,
        })
    }

    /// whisper's name for the method: `average`, `sum`, `last`, `max`, `min`, `avg_zero`,
    /// `absmax`, `absmin`.
    pub const fn name(self) -> &'static str {
        match self {
            AggregationMethod::Average => "average",
            AggregationMethod::Sum => "sum",
            AggregationMethod::Last => "last",
            AggregationMethod::Max => "max",
            AggregationMethod::Min => "min",
            AggregationMethod::AvgZero => "avg_zero",
            AggregationMethod::AbsMax => "absmax",
            AggregationMethod::AbsMin => "absmin",
        }
    }

    /// Combines the values of the slots of one coarser interval, `None` for unknown slots.
    ///
    /// Returns `None` when no value is known (whisper does not propagate then).
    ///
    /// ```
    /// use whisper::AggregationMethod;
    /// let slots = [Some(1.0), None, Some(-4.0), None];
    /// assert_eq!(AggregationMethod::Average.aggregate(&slots), Some(-1.5));
    /// assert_eq!(AggregationMethod::AvgZero.aggregate(&slots), Some(-0.75));
    /// assert_eq!(AggregationMethod::AbsMax.aggregate(&slots), Some(-4.0));
    /// assert_eq!(AggregationMethod::Sum.aggregate(&[None, None]), None);
    /// ```
    pub fn aggregate(self, slots: &[Option<f64>]) -> Option<f64> {
        self.aggregate_iter(slots.iter().copied())
    }

    /// [`aggregate`](Self::aggregate) over any sequence of slots, without collecting them.
    pub(crate) fn aggregate_iter<I>(self, slots: I) -> Option<f64>
    where
        I: Iterator<Item = Option<f64>> + Clone,
    {
        let mut known = slots.clone().flatten();
        let first = known.next()?;
        Some(match self {
            AggregationMethod::Average => {
                let (sum, n) = known.fold((0.0 + first, 1usize), |(s, n), v| (s + v, n + 1));
                sum / n as f64
            }
            AggregationMethod::Sum => known.fold(0.0 + first, |s, v| s + v),
            AggregationMethod::Last => known.last().unwrap_or(first),
            AggregationMethod::Max => known.fold(first, |best, v| if v > best { v } else { best }),
            AggregationMethod::Min => known.fold(first, |best, v| if v < best { v } else { best }),
            AggregationMethod::AbsMax => {
                known.fold(first, |best, v| if v.abs() > best.abs() { v } else { best })
            }
            AggregationMethod::AbsMin => {
                known.fold(first, |best, v| if v.abs() < best.abs() { v } else { best })
            }
            AggregationMethod::AvgZero => {
                // whisper.py maps every falsy slot (None, 0.0, -0.0) to the integer 0.
                let (sum, n) = slots.fold((0.0, 0usize), |(s, n), v| (s + v.unwrap_or(0.0), n + 1));
                sum / n as f64
            }
        })
    }
}

impl fmt::Display for AggregationMethod {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.pad(self.name())
    }
}

impl FromStr for AggregationMethod {
    type Err = Error;

    /// Parses whisper's method names, exactly (case matters, as in whisper.py).
    fn from_str(s: &str) -> Result<AggregationMethod, Error> {
        AggregationMethod::ALL
            .into_iter()
            .find(|m| m.name() == s)
            .ok_or_else(|| Error::InvalidAggregationMethod { name: s.to_string() })
    }
}

#[cfg(test)]
mod tests {
    use super::AggregationMethod::{self, *};

    #[test]
    fn codes_and_names_round_trip() {
        for m in AggregationMethod::ALL {
            assert_eq!(AggregationMethod::from_code(m.code()), Some(m));
            assert_eq!(m.name().parse::<AggregationMethod>().unwrap(), m);
        }
        assert_eq!(AggregationMethod::from_code(0), None);
        assert_eq!(AggregationMethod::from_code(9), None);
        assert!("Average".parse::<AggregationMethod>().is_err());
    }

    #[test]
    fn every_method_on_one_interval() {
        let s = [Some(3.0), None, Some(-7.0), Some(5.0), None];
        assert_eq!(Average.aggregate(&s), Some(1.0 / 3.0));
        assert_eq!(Sum.aggregate(&s), Some(1.0));
        assert_eq!(Last.aggregate(&s), Some(5.0));
        assert_eq!(Max.aggregate(&s), Some(5.0));
        assert_eq!(Min.aggregate(&s), Some(-7.0));
        assert_eq!(AvgZero.aggregate(&s), Some(0.2));
        assert_eq!(AbsMax.aggregate(&s), Some(-7.0));
        assert_eq!(AbsMin.aggregate(&s), Some(3.0));
    }

    #[test]
    fn ties_and_nan_follow_python() {
        // max() keeps the first of equal keys: abs(-2) == abs(2).
        assert_eq!(AbsMax.aggregate(&[Some(-2.0), Some(2.0)]), Some(-2.0));
        assert_eq!(AbsMin.aggregate(&[Some(2.0), Some(-2.0)]), Some(2.0));
        // A NaN first stays (nothing compares greater); a later NaN is skipped.
        assert!(Max.aggregate(&[Some(f64::NAN), Some(1.0)]).unwrap().is_nan());
        assert_eq!(Max.aggregate(&[Some(1.0), Some(f64::NAN)]), Some(1.0));
        // sum starts at integer 0, so -0.0 sums to 0.0.
        assert_eq!(Sum.aggregate(&[Some(-0.0)]).unwrap().to_bits(), 0.0f64.to_bits());
        assert_eq!(Last.aggregate(&[Some(-0.0)]).unwrap().to_bits(), (-0.0f64).to_bits());
    }
}
