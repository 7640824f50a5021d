//! graphite-web's aggregation functions (`aggFuncs`, graphite-reference §4.2): the `func`
//! argument of `aggregate`, `groupByNode`, `summarize`, `highest`, `applyByNode`... and the
//! reductions behind `sumSeries` and friends.
//!
//! Each reduces one row of values (nulls included) to one value or null. Python's float
//! arithmetic is reproduced operation for operation (left-to-right sums, `/ len`), so results
//! agree with graphite-web to the last bit.

use crate::series::{py_max, py_min};

/// One of graphite-web's aggregation functions.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum AggFunc {
    /// Mean of the non-null values.
    Average,
    /// Mean with nulls counted as 0 (0 for an empty row of nulls... see [`AggFunc::apply`]).
    AvgZero,
    /// Median of the non-null values (mean of the middle two for an even count).
    Median,
    /// Sum of the non-null values.
    Sum,
    /// Smallest non-null value.
    Min,
    /// Largest non-null value.
    Max,
    /// The first non-null value minus the others.
    Diff,
    /// Population standard deviation of the non-null values.
    Stddev,
    /// Number of non-null values (0 when all are null).
    Count,
    /// Largest minus smallest.
    Range,
    /// Product; null if any value is null.
    Multiply,
    /// Last non-null value.
    Last,
}

/// Every name `getAggFunc` accepts, in the order `/functions` lists them as options.
pub const AGG_FUNC_NAMES: &[&str] = &[
    "average", "avg_zero", "median", "sum", "min", "max", "diff", "stddev", "count", "range",
    "multiply", "last", "rangeOf", "avg", "total", "current",
];

impl AggFunc {
    /// Looks a name up as graphite-web's `getAggFunc` does, aliases included (`avg`, `total`,
    /// `current`, `rangeOf`). `<name>Series` is accepted too when `allow_series_suffix`
    /// (the `aggregate` / `groupBy*` callers strip it with a deprecation warning).
    pub fn parse(name: &str) -> Option<AggFunc> {
        Some(match name {
            "average" | "avg" => AggFunc::Average,
            "avg_zero" => AggFunc::AvgZero,
            "median" => AggFunc::Median,
            "sum" | "total" => AggFunc::Sum,
            "min" => AggFunc::Min,
            "max" => AggFunc::Max,
            "diff" => AggFunc::Diff,
            "stddev" => AggFunc::Stddev,
            "count" => AggFunc::Count,
            "range" | "rangeOf" => AggFunc::Range,
            "multiply" => AggFunc::Multiply,
            "last" | "current" => AggFunc::Last,
            _ => return None,
        })
    }

    /// Like [`AggFunc::parse`], also accepting the deprecated `sumSeries`-style names that
    /// `aggregate` and the `groupBy` family take.
    pub fn parse_series_name(name: &str) -> Option<AggFunc> {
        AggFunc::parse(name).or_else(|| name.strip_suffix("Series").and_then(AggFunc::parse))
    }

    /// Reduces one row.
    pub fn apply(self, row: &[Option<f64>]) -> Option<f64> {
        let mut non_null = row.iter().flatten().copied();
        match self {
            AggFunc::Average => {
                let (sum, n) = sum_count(row);
                (n > 0).then(|| sum / n as f64)
            }
            AggFunc::AvgZero => {
                if row.is_empty() {
                    return None;
                }
                let sum = row.iter().fold(0.0, |acc, v| acc + v.unwrap_or(0.0));
                Some(sum / row.len() as f64)
            }
            AggFunc::Median => {
                let mut vals: Vec<f64> = non_null.collect();
                if vals.is_empty() {
                    return None;
                }
                vals.sort_by(f64::total_cmp);
                let mid = vals.len() / 2;
                Some(if vals.len().is_multiple_of(2) {
                    (vals[mid - 1] + vals[mid]) / 2.0
                } else {
                    vals[mid]
                })
            }
            AggFunc::Sum => {
                let (sum, n) = sum_count(row);
                (n > 0).then_some(sum)
            }
            AggFunc::Min => non_null.reduce(py_min),
            AggFunc::Max => non_null.reduce(py_max),
            AggFunc::Diff => {
                let first = non_null.next()?;
                // Python sums [first, -x2, -x3, ...] starting from 0.
                Some(non_null.fold(0.0 + first, |acc, x| acc + -x))
            }
            AggFunc::Stddev => {
                let (sum, n) = sum_count(row);
                if n == 0 {
                    return None;
                }
                let avg = sum / n as f64;
                let sq = non_null.fold(0.0, |acc, v| acc + (v - avg) * (v - avg));
                Some((sq / n as f64).sqrt())
            }
            AggFunc::Count => Some(non_null.count() as f64),
            AggFunc::Range => {
                let max = row.iter().flatten().copied().reduce(py_max)?;
                let min = row.iter().flatten().copied().reduce(py_min)?;
                Some(max - min)
            }
            AggFunc::Multiply => {
                if row.is_empty() || row.iter().any(Option::is_none) {
                    return None;
                }
                non_null.reduce(|a, b| a * b)
            }
            AggFunc::Last => row.iter().rev().flatten().next().copied(),
        }
    }

    /// The canonical name (`average`, `sum`, ...), as graphite-web writes it into tags such as
    /// `aggregatedBy`.
    pub fn name(self) -> &'static str {
        match self {
            AggFunc::Average => "average",
            AggFunc::AvgZero => "avg_zero",
            AggFunc::Median => "median",
            AggFunc::Sum => "sum",
            AggFunc::Min => "min",
            AggFunc::Max => "max",
            AggFunc::Diff => "diff",
            AggFunc::Stddev => "stddev",
            AggFunc::Count => "count",
            AggFunc::Range => "range",
            AggFunc::Multiply => "multiply",
            AggFunc::Last => "last",
        }
    }
}

/// Sum (Python's left-to-right `sum`, starting from integer 0) and count of the non-null
/// values.
fn sum_count(row: &[Option<f64>]) -> (f64, usize) {
    row.iter().flatten().fold((0.0, 0), |(s, n), v| (s + v, n + 1))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rows_reduce_like_safe_py() {
        let row = [Some(4.0), None, Some(1.0), Some(3.0)];
        assert_eq!(AggFunc::Average.apply(&row), Some(8.0 / 3.0));
        assert_eq!(AggFunc::AvgZero.apply(&row), Some(2.0));
        assert_eq!(AggFunc::Median.apply(&row), Some(3.0));
        assert_eq!(AggFunc::Diff.apply(&row), Some(0.0));
        assert_eq!(AggFunc::Range.apply(&row), Some(3.0));
        assert_eq!(AggFunc::Multiply.apply(&row), None);
        assert_eq!(AggFunc::Count.apply(&[None, None]), Some(0.0));
        assert_eq!(AggFunc::Sum.apply(&[None, None]), None);
        assert_eq!(AggFunc::AvgZero.apply(&[None, None]), Some(0.0));
        assert_eq!(AggFunc::Last.apply(&row), Some(3.0));
        assert_eq!(AggFunc::parse_series_name("sumSeries"), Some(AggFunc::Sum));
        for name in AGG_FUNC_NAMES {
            assert!(AggFunc::parse(name).is_some(), "{name}");
        }
    }
}
