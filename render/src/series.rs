//! graphite-web's `TimeSeries`: values on a fixed step plus the metadata functions and output
//! formats rely on (graphite-reference §4.1, §4.3).

use std::borrow::Cow;
use std::collections::BTreeMap;

use crate::error::{Error, Result};

/// How a series reads when several raw values fall into one output point
/// (`valuesPerPoint > 1`): set by `consolidateBy`, used by `maxDataPoints` and by
/// [`normalize`] before series of different steps are combined.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Consolidation {
    /// Mean of the non-null values (graphite-web's default).
    Average,
    /// Mean with nulls counted as 0.
    AvgZero,
    /// Sum of the non-null values.
    Sum,
    /// Smallest non-null value.
    Min,
    /// Largest non-null value.
    Max,
    /// First non-null value.
    First,
    /// Last non-null value.
    Last,
}

impl Consolidation {
    /// The name `consolidateBy` accepts (`average`/`avg`, `avg_zero`, `sum`, `min`, `max`,
    /// `first`, `last`).
    pub fn parse(name: &str) -> Option<Consolidation> {
        Some(match name {
            "average" | "avg" => Consolidation::Average,
            "avg_zero" => Consolidation::AvgZero,
            "sum" => Consolidation::Sum,
            "min" => Consolidation::Min,
            "max" => Consolidation::Max,
            "first" => Consolidation::First,
            "last" => Consolidation::Last,
            _ => return None,
        })
    }

    /// The name graphite-web stores in `consolidationFunc`.
    pub fn name(self) -> &'static str {
        match self {
            Consolidation::Average => "average",
            Consolidation::AvgZero => "avg_zero",
            Consolidation::Sum => "sum",
            Consolidation::Min => "min",
            Consolidation::Max => "max",
            Consolidation::First => "first",
            Consolidation::Last => "last",
        }
    }

    /// Applies the function to a non-empty bucket (nulls already removed, or replaced by 0
    /// for `avg_zero`).
    fn apply(self, bucket: &[f64]) -> f64 {
        match self {
            Consolidation::Average | Consolidation::AvgZero => {
                bucket.iter().sum::<f64>() / bucket.len() as f64
            }
            Consolidation::Sum => bucket.iter().sum(),
            Consolidation::Min => bucket.iter().copied().fold(f64::INFINITY, py_min),
            Consolidation::Max => bucket.iter().copied().fold(f64::NEG_INFINITY, py_max),
            Consolidation::First => bucket[0],
            Consolidation::Last => bucket[bucket.len() - 1],
        }
    }
}

/// Python's `min(a, b)` over floats as the builtin folds it (keeps `a` unless `b < a`).
pub fn py_min(a: f64, b: f64) -> f64 {
    if b < a { b } else { a }
}

/// Python's `max(a, b)` over floats as the builtin folds it (keeps `a` unless `b > a`).
pub fn py_max(a: f64, b: f64) -> f64 {
    if b > a { b } else { a }
}

/// A time series as graphite-web's functions see it.
///
/// `values[i]` is the value at `start + i * step`; `end` is exclusive. When
/// `values_per_point > 1` the series *reads* consolidated ([`Series::consolidated`]) with
/// one output value per `values_per_point` raw values, as graphite-web's iterator does; the
/// raw values stay in `values`.
#[derive(Clone, Debug, PartialEq)]
pub struct Series {
    /// The display name (`target` in JSON). Functions rename their results.
    pub name: String,
    /// The expression that produced the series; combining functions name results after it.
    pub path_expression: String,
    /// Timestamp of the first value.
    pub start: i64,
    /// End of the window (exclusive).
    pub end: i64,
    /// Seconds between raw values (> 0).
    pub step: i64,
    /// The raw values; `None` is null.
    pub values: Vec<Option<f64>>,
    /// How the series consolidates when read with `values_per_point > 1`.
    pub consolidation: Consolidation,
    /// Raw values per output point (1 = no consolidation).
    pub values_per_point: usize,
    /// The fraction of non-null raw values a consolidated point needs to be non-null.
    pub x_files_factor: f64,
    /// Tags; values are strings as graphite-web keeps them. A plain metric has `name`.
    pub tags: BTreeMap<String, String>,
    /// Graph hints set by functions (`stacked`, `secondYAxis`, `color`, `dashed`, ...) for the
    /// image formats.
    pub options: BTreeMap<String, String>,
}

impl Series {
    /// A series with graphite-web's defaults (average, one value per point, xFilesFactor 0)
    /// and tags parsed from `name`.
    pub fn new(
        name: impl Into<String>,
        start: i64,
        end: i64,
        step: i64,
        values: Vec<Option<f64>>,
    ) -> Series {
        let name = name.into();
        let tags = tags_from_name(&name);
        Series {
            path_expression: name.clone(),
            name,
            start,
            end,
            step: step.max(1),
            values,
            consolidation: Consolidation::Average,
            values_per_point: 1,
            x_files_factor: 0.0,
            tags,
            options: BTreeMap::new(),
        }
    }

    /// A copy carrying everything but values, under a new name: what most functions start
    /// from (graphite-web's `series.copy(name=...)`). Tags are kept; the path expression
    /// becomes the new name, as graphite-web's transform functions do.
    pub fn renamed(&self, name: impl Into<String>) -> Series {
        let name = name.into();
        Series {
            path_expression: name.clone(),
            name,
            start: self.start,
            end: self.end,
            step: self.step,
            values: self.values.clone(),
            consolidation: self.consolidation,
            values_per_point: self.values_per_point,
            x_files_factor: self.x_files_factor,
            tags: self.tags.clone(),
            options: self.options.clone(),
        }
    }

    /// Renames in place, setting the path expression too (graphite-web's transform idiom).
    pub fn set_name(&mut self, name: impl Into<String>) {
        let name = name.into();
        self.path_expression.clone_from(&name);
        self.name = name;
    }

    /// Sets `values_per_point` (graphite-web's `series.consolidate(n)`).
    pub fn consolidate(&mut self, values_per_point: usize) {
        self.values_per_point = values_per_point.max(1);
    }

    /// The number of values the series reads as (after consolidation).
    pub fn len(&self) -> usize {
        self.values.len().div_ceil(self.values_per_point.max(1))
    }

    /// Whether the series has no values.
    pub fn is_empty(&self) -> bool {
        self.values.is_empty()
    }

    /// The values as graphite-web iterates the series: raw when `values_per_point` is 1,
    /// otherwise one consolidated value per bucket (a trailing partial bucket included), null
    /// unless the bucket has non-null values and `nonNull / valuesPerPoint >= xFilesFactor`.
    pub fn consolidated(&self) -> Vec<Option<f64>> {
        let vpp = self.values_per_point.max(1);
        if vpp == 1 {
            return self.values.clone();
        }
        let mut out = Vec::with_capacity(self.values.len().div_ceil(vpp));
        let mut bucket = Vec::with_capacity(vpp.min(self.values.len()));
        for chunk in self.values.chunks(vpp) {
            bucket.clear();
            let mut non_null = 0usize;
            for v in chunk {
                match v {
                    Some(x) => {
                        bucket.push(*x);
                        non_null += 1;
                    }
                    None if self.consolidation == Consolidation::AvgZero => bucket.push(0.0),
                    None => {}
                }
            }
            let enough = non_null > 0 && non_null as f64 / vpp as f64 >= self.x_files_factor;
            out.push(enough.then(|| self.consolidation.apply(&bucket)));
        }
        out
    }

    /// `(value, timestamp)` pairs as graphite-web's `datapoints()`: timestamps advance by
    /// `step * values_per_point` from `start` and stop at `end` inclusive.
    pub fn datapoints(&self) -> Vec<(Option<f64>, i64)> {
        let values = self.consolidated_cow();
        datapoints_of(&values, self.start, self.read_step(), self.end).collect()
    }

    /// [`Series::consolidated`] without copying when nothing consolidates (the common case on
    /// the output path).
    pub fn consolidated_cow(&self) -> Cow<'_, [Option<f64>]> {
        if self.values_per_point <= 1 {
            Cow::Borrowed(self.values.as_slice())
        } else {
            Cow::Owned(self.consolidated())
        }
    }

    /// The effective step as read (`step * values_per_point`).
    pub fn read_step(&self) -> i64 {
        self.step * self.values_per_point.max(1) as i64
    }
}

/// `(value, timestamp)` pairs of already consolidated `values`: timestamps advance by
/// `stride` from `start` and stop at `end` inclusive (graphite-web's `datapoints()`).
pub fn datapoints_of(
    values: &[Option<f64>],
    start: i64,
    stride: i64,
    end: i64,
) -> impl Iterator<Item = (Option<f64>, i64)> + '_ {
    values
        .iter()
        .enumerate()
        .map(move |(i, v)| (*v, start + i as i64 * stride))
        .take_while(move |(_, t)| *t <= end)
}

/// The tags graphite-web gives a series named `name`: `name;k=v` and `name{k="v"}` forms are
/// parsed, a function-wrapped name (`f(...)`) or anything unparsable gets just `{name: name}`.
pub fn tags_from_name(name: &str) -> BTreeMap<String, String> {
    let looks_like_call = {
        let head = name.bytes().take_while(u8::is_ascii_alphabetic).count();
        head > 0 && name[head..].starts_with('(') && name.ends_with(')') && name.len() > head + 2
    };
    if !looks_like_call
        && name.contains(';')
        && let Ok(tagged) = carbon_proto::tags::TaggedSeries::parse(name)
    {
        let mut tags = tagged.tags().clone();
        tags.insert("name".into(), tagged.metric().to_string());
        return tags;
    }
    BTreeMap::from([("name".to_string(), name.to_string())])
}

/// Least common multiple (graphite-web's `lcm`).
pub fn lcm(a: i64, b: i64) -> i64 {
    if a == 0 || b == 0 {
        return a.max(b);
    }
    let g = gcd(a, b);
    (a / g) * b
}

fn gcd(mut a: i64, mut b: i64) -> i64 {
    while b != 0 {
        (a, b) = (b, a % b);
    }
    a.abs()
}

/// The result of [`normalize`]: every series consolidated to a common step, and the shared
/// window.
#[derive(Debug)]
pub struct Normalized {
    /// The series, each with `values_per_point = step / own step`.
    pub series: Vec<Series>,
    /// Earliest start.
    pub start: i64,
    /// Latest end, trimmed to a whole number of steps after `start`.
    pub end: i64,
    /// The LCM of all steps.
    pub step: i64,
}

/// graphite-web's `normalize(seriesLists)`: flatten, take the LCM of the steps, consolidate
/// every series to it, and span the union of the windows. Values are then combined **by
/// index**, not by timestamp (a graphite-web quirk reproduced on purpose).
///
/// # Errors
///
/// No series at all (graphite-web's `NormalizeEmptyResultError`, which makes the calling
/// function return an empty list: [`Error::NormalizeEmpty`], which the evaluator turns into
/// an empty result).
pub fn normalize(lists: Vec<Vec<Series>>) -> Result<Normalized> {
    let mut series: Vec<Series> = lists.into_iter().flatten().collect();
    if series.is_empty() {
        return Err(Error::NormalizeEmpty);
    }
    let step = series.iter().map(|s| s.step).fold(1, lcm);
    for s in &mut series {
        s.consolidate(usize::try_from(step / s.step).unwrap_or(1));
    }
    let start = series.iter().map(|s| s.start).min().unwrap_or(0);
    let mut end = series.iter().map(|s| s.end).max().unwrap_or(0);
    end -= (end - start).rem_euclid(step);
    Ok(Normalized { series, start, end, step })
}

/// The consolidated values of several series as rows by index, padded with null to the
/// longest (Python's `zip_longest(*series)`): `rows[i][j]` is series `j` at index `i`.
pub fn rows(series: &[Series]) -> Vec<Vec<Option<f64>>> {
    map_rows(series, <[Option<f64>]>::to_vec)
}

/// Applies `f` to every row of [`rows`] without building them: `f(row)` for `i` in
/// `0..longest`, in order. Combining a thousand day-long series (`sumSeries(x.*)`) reads
/// 1.4M values; gathering them a block of rows at a time keeps the reads sequential per
/// series and the block in cache, and a series read unconsolidated is not copied.
pub fn map_rows<T>(series: &[Series], mut f: impl FnMut(&[Option<f64>]) -> T) -> Vec<T> {
    const BLOCK: usize = 64;
    let columns: Vec<Cow<'_, [Option<f64>]>> =
        series.iter().map(Series::consolidated_cow).collect();
    let width = columns.len();
    let len = columns.iter().map(|c| c.len()).max().unwrap_or(0);
    let mut out = Vec::with_capacity(len);
    let mut block = vec![None; BLOCK * width];
    let mut start = 0;
    while start < len {
        let rows_here = BLOCK.min(len - start);
        for (j, column) in columns.iter().enumerate() {
            for r in 0..rows_here {
                block[r * width + j] = column.get(start + r).copied().flatten();
            }
        }
        for r in 0..rows_here {
            out.push(f(&block[r * width..(r + 1) * width]));
        }
        start += rows_here;
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn s(values: &[Option<f64>]) -> Series {
        Series::new("a.b", 0, 60 * values.len() as i64, 60, values.to_vec())
    }

    #[test]
    fn consolidation_buckets_like_graphite_web() {
        let mut x = s(&[Some(1.0), None, Some(3.0), Some(4.0), None]);
        x.consolidate(2);
        assert_eq!(x.consolidated(), vec![Some(1.0), Some(3.5), None]);
        x.consolidation = Consolidation::AvgZero;
        assert_eq!(x.consolidated(), vec![Some(0.5), Some(3.5), None]);
        x.consolidation = Consolidation::Sum;
        x.x_files_factor = 0.6;
        // The final partial bucket divides by values_per_point, not by its own length.
        assert_eq!(x.consolidated(), vec![None, Some(7.0), None]);
    }

    #[test]
    fn datapoints_stop_at_end_inclusive() {
        let x = s(&[Some(1.0), Some(2.0)]);
        assert_eq!(x.datapoints(), vec![(Some(1.0), 0), (Some(2.0), 60)]);
    }

    #[test]
    fn normalize_takes_lcm_and_trims_end() {
        let a = Series::new("a", 0, 600, 60, vec![Some(1.0); 10]);
        let b = Series::new("b", 0, 600, 120, vec![Some(1.0); 5]);
        let n = normalize(vec![vec![a, b]]).unwrap();
        assert_eq!((n.step, n.start, n.end), (120, 0, 600));
        assert_eq!(n.series[0].values_per_point, 2);
        assert_eq!(n.series[1].values_per_point, 1);
    }

    #[test]
    fn tags_parse_only_plain_names() {
        assert_eq!(tags_from_name("a.b")["name"], "a.b");
        let t = tags_from_name("disk.used;dc=dc1");
        assert_eq!((t["name"].as_str(), t["dc"].as_str()), ("disk.used", "dc1"));
        assert_eq!(tags_from_name("sumSeries(a;b=c)").len(), 1);
    }
}
