//! Reducers (a window of points to one value) and comparisons.
//!
//! Nulls are skipped by every reducer but `nulls` and `count`, which count them; a window with
//! no non-null point has no value (the engine's no-data case). `all` and `any` are not numeric
//! reductions: they judge each point against the threshold (Cabot's "one bad point fails the
//! series" is `any`), and report the point that decided.

use std::fmt;

/// How a window of points becomes one value.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Reducer {
    /// The newest non-null point.
    Last,
    /// The mean of the non-null points.
    Avg,
    /// The smallest non-null point.
    Min,
    /// The largest non-null point.
    Max,
    /// The sum of the non-null points.
    Sum,
    /// The median (the mean of the two middle points for an even count).
    Median,
    /// The nearest-rank percentile (`p95`, `p99.9`), 0 < p <= 100.
    Percentile(f64),
    /// The number of non-null points (0 is a value, not no data).
    Count,
    /// The number of null points.
    Nulls,
    /// Every non-null point satisfies the comparison.
    All,
    /// At least one non-null point satisfies the comparison.
    Any,
}

impl Reducer {
    /// Parses a reducer name (`last`, `avg`/`mean`, `min`, `max`, `sum`, `median`, `pNN`,
    /// `count`, `nulls`, `all`, `any`).
    pub fn parse(s: &str) -> Option<Reducer> {
        Some(match s {
            "last" => Reducer::Last,
            "avg" | "mean" | "average" => Reducer::Avg,
            "min" => Reducer::Min,
            "max" => Reducer::Max,
            "sum" => Reducer::Sum,
            "median" => Reducer::Median,
            "count" => Reducer::Count,
            "nulls" => Reducer::Nulls,
            "all" => Reducer::All,
            "any" => Reducer::Any,
            _ => {
                let p: f64 = s.strip_prefix('p')?.parse().ok()?;
                if !(p > 0.0 && p <= 100.0) {
                    return None;
                }
                Reducer::Percentile(p)
            }
        })
    }

    /// True for `count` and `nulls`: an all-null window still has a value.
    pub fn counts_nulls(self) -> bool {
        matches!(self, Reducer::Count | Reducer::Nulls)
    }

    /// The reduced value of `points`, `None` when there is nothing to reduce. For `all` and
    /// `any` this is the point that decides against `op` (the least failing point for `all`,
    /// the most failing for `any`).
    pub fn value(self, points: &[Option<f64>], op: Op) -> Option<f64> {
        let it = points.iter().flatten().copied().filter(|v| !v.is_nan());
        match self {
            Reducer::Last => points.iter().rev().flatten().copied().find(|v| !v.is_nan()),
            Reducer::Avg => {
                let (mut sum, mut n) = (0.0, 0usize);
                for v in it {
                    sum += v;
                    n += 1;
                }
                (n > 0).then(|| sum / n as f64)
            }
            Reducer::Min => it.reduce(f64::min),
            Reducer::Max => it.reduce(f64::max),
            Reducer::Sum => it.reduce(|a, b| a + b),
            Reducer::Count => Some(points.iter().flatten().count() as f64),
            Reducer::Nulls => Some(points.iter().filter(|v| v.is_none()).count() as f64),
            Reducer::Median => {
                let mut v: Vec<f64> = it.collect();
                if v.is_empty() {
                    return None;
                }
                v.sort_by(f64::total_cmp);
                let mid = v.len() / 2;
                if v.len() % 2 == 1 {
                    v.get(mid).copied()
                } else {
                    Some((v.get(mid - 1)? + v.get(mid)?) / 2.0)
                }
            }
            Reducer::Percentile(p) => {
                let mut v: Vec<f64> = it.collect();
                if v.is_empty() {
                    return None;
                }
                v.sort_by(f64::total_cmp);
                let rank = ((p / 100.0) * v.len() as f64).ceil() as usize;
                v.get(rank.clamp(1, v.len()) - 1).copied()
            }
            Reducer::All | Reducer::Any => {
                let lowest_decides = matches!(op, Op::Gt | Op::Ge) == (self == Reducer::All);
                match op {
                    Op::Eq | Op::Ne => points.iter().rev().flatten().copied().find(|v| !v.is_nan()),
                    _ if lowest_decides => it.reduce(f64::min),
                    _ => it.reduce(f64::max),
                }
            }
        }
    }

    /// Whether the window satisfies `value op threshold` (`None`: nothing to judge). `value` is
    /// what [`Reducer::value`] returned, passed in so it is computed once per window.
    pub fn holds(
        self,
        points: &[Option<f64>],
        value: Option<f64>,
        op: Op,
        threshold: f64,
    ) -> Option<bool> {
        match self {
            Reducer::All | Reducer::Any => {
                let mut seen = false;
                for v in points.iter().flatten().copied().filter(|v| !v.is_nan()) {
                    seen = true;
                    let ok = op.apply(v, threshold);
                    if self == Reducer::All && !ok {
                        return Some(false);
                    }
                    if self == Reducer::Any && ok {
                        return Some(true);
                    }
                }
                seen.then_some(self == Reducer::All)
            }
            _ => value.map(|v| op.apply(v, threshold)),
        }
    }
}

impl fmt::Display for Reducer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Reducer::Last => f.write_str("last"),
            Reducer::Avg => f.write_str("avg"),
            Reducer::Min => f.write_str("min"),
            Reducer::Max => f.write_str("max"),
            Reducer::Sum => f.write_str("sum"),
            Reducer::Median => f.write_str("median"),
            Reducer::Percentile(p) => write!(f, "p{p}"),
            Reducer::Count => f.write_str("count"),
            Reducer::Nulls => f.write_str("nulls"),
            Reducer::All => f.write_str("all"),
            Reducer::Any => f.write_str("any"),
        }
    }
}

/// A comparison between the reduced value and a threshold.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Op {
    /// `>`
    Gt,
    /// `>=`
    Ge,
    /// `<`
    Lt,
    /// `<=`
    Le,
    /// `==`
    Eq,
    /// `!=`
    Ne,
}

impl Op {
    /// Parses `>`, `>=`, `<`, `<=`, `==`, `!=`.
    pub fn parse(s: &str) -> Option<Op> {
        Some(match s {
            ">" => Op::Gt,
            ">=" => Op::Ge,
            "<" => Op::Lt,
            "<=" => Op::Le,
            "==" => Op::Eq,
            "!=" => Op::Ne,
            _ => return None,
        })
    }

    /// `value op threshold`.
    pub fn apply(self, value: f64, threshold: f64) -> bool {
        match self {
            Op::Gt => value > threshold,
            Op::Ge => value >= threshold,
            Op::Lt => value < threshold,
            Op::Le => value <= threshold,
            Op::Eq => value == threshold,
            Op::Ne => value != threshold,
        }
    }

    /// True for `>` and `>=`: high values are bad (so crit >= warn and clear <= warn).
    pub fn high_is_bad(self) -> bool {
        matches!(self, Op::Gt | Op::Ge)
    }

    /// True for `<` and `<=`.
    pub fn low_is_bad(self) -> bool {
        matches!(self, Op::Lt | Op::Le)
    }
}

impl fmt::Display for Op {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Op::Gt => ">",
            Op::Ge => ">=",
            Op::Lt => "<",
            Op::Le => "<=",
            Op::Eq => "==",
            Op::Ne => "!=",
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const W: [Option<f64>; 6] = [Some(3.0), None, Some(1.0), Some(4.0), None, Some(2.0)];

    #[test]
    fn numeric_reducers_skip_nulls() {
        let v = |r| Reducer::value(r, &W, Op::Gt);
        assert_eq!(v(Reducer::Last), Some(2.0));
        assert_eq!(v(Reducer::Avg), Some(2.5));
        assert_eq!(v(Reducer::Min), Some(1.0));
        assert_eq!(v(Reducer::Max), Some(4.0));
        assert_eq!(v(Reducer::Sum), Some(10.0));
        assert_eq!(v(Reducer::Median), Some(2.5));
        assert_eq!(v(Reducer::Percentile(50.0)), Some(2.0));
        assert_eq!(v(Reducer::Percentile(100.0)), Some(4.0));
        assert_eq!(v(Reducer::Count), Some(4.0));
        assert_eq!(v(Reducer::Nulls), Some(2.0));
    }

    #[test]
    fn empty_windows_have_no_value_except_counts() {
        let empty = [None, None];
        assert_eq!(Reducer::Last.value(&empty, Op::Gt), None);
        assert_eq!(Reducer::Avg.value(&empty, Op::Gt), None);
        assert_eq!(Reducer::Count.value(&empty, Op::Gt), Some(0.0));
        assert_eq!(Reducer::Nulls.value(&empty, Op::Gt), Some(2.0));
        assert_eq!(Reducer::All.holds(&empty, None, Op::Gt, 1.0), None);
    }

    #[test]
    fn all_and_any_judge_each_point() {
        assert_eq!(Reducer::All.holds(&W, None, Op::Gt, 0.5), Some(true));
        assert_eq!(Reducer::All.holds(&W, None, Op::Gt, 1.5), Some(false));
        assert_eq!(Reducer::Any.holds(&W, None, Op::Gt, 3.5), Some(true));
        assert_eq!(Reducer::Any.holds(&W, None, Op::Gt, 4.5), Some(false));
        assert_eq!(Reducer::Any.holds(&W, None, Op::Eq, 4.0), Some(true));
        assert_eq!(Reducer::All.value(&W, Op::Gt), Some(1.0));
        assert_eq!(Reducer::Any.value(&W, Op::Gt), Some(4.0));
        assert_eq!(Reducer::Any.value(&W, Op::Lt), Some(1.0));
    }

    #[test]
    fn parses_names() {
        assert_eq!(Reducer::parse("p99.9"), Some(Reducer::Percentile(99.9)));
        assert_eq!(Reducer::parse("p0"), None);
        assert_eq!(Reducer::parse("p101"), None);
        assert_eq!(Reducer::parse("average"), Some(Reducer::Avg));
        assert_eq!(Reducer::parse("mode"), None);
        assert_eq!(Op::parse("=>"), None);
        assert!(Op::parse("<=").is_some_and(Op::low_is_bad));
    }
}
