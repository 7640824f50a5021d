//! Merging cached points into a Whisper fetch, as graphite-web's `merge_with_cache` does with
//! what carbon-cache returns over CarbonLink.
//!
//! 1. The cached points are taken as carbon's cache holds them: one value per timestamp, the
//!    last received winning, in the order timestamps first arrived.
//! 2. If the file's finest step is above one second, they are reduced to one per finest
//!    interval, the last one winning (what Whisper will store).
//! 3. If the fetched archive is coarser than the finest, they are aggregated per fetched step
//!    with the file's aggregation method.
//! 4. Each resulting point overwrites its slot of the fetched values when it falls inside the
//!    range; points before the range are ignored.
//!
//! One difference: graphite-web raises "Invalid consolidation function" for `absmax` and
//! `absmin` files in step 3 (the whole render fails); we aggregate as Whisper does.

use std::collections::HashMap;

use whisper::{AggregationMethod, Series};

use crate::cache::{CachedPoint, dedup_last_wins};

/// Merges `cached` (as received) into `series`, fetched from a file whose finest step is
/// `raw_step` and whose aggregation method is `method`.
pub(crate) fn merge_with_cache(
    series: &mut Series,
    cached: &[CachedPoint],
    raw_step: u32,
    method: AggregationMethod,
) {
    if cached.is_empty() {
        return;
    }
    let mut points: Vec<(i64, f64)> =
        dedup_last_wins(cached).iter().map(|p| (i64::from(p.timestamp()), p.value())).collect();
    if raw_step > 1 {
        points = group_by_interval(&points, i64::from(raw_step))
            .into_iter()
            .filter_map(|(interval, values)| values.last().map(|v| (interval, *v)))
            .collect();
    }
    if series.step != raw_step {
        points = group_by_interval(&points, i64::from(series.step))
            .into_iter()
            .filter_map(|(interval, values)| {
                let slots: Vec<Option<f64>> = values.into_iter().map(Some).collect();
                method.aggregate(&slots).map(|v| (interval, v))
            })
            .collect();
    }
    let step = i64::from(series.step);
    for (interval, value) in points {
        let i = (interval - series.from).div_euclid(step);
        if let Some(slot) = usize::try_from(i).ok().and_then(|i| series.values.get_mut(i)) {
            *slot = Some(value);
        }
    }
}

/// Groups points by `t - t % step`, keeping the order in which intervals first appear and,
/// within an interval, the order of the points (a Python dict of lists).
fn group_by_interval(points: &[(i64, f64)], step: i64) -> Vec<(i64, Vec<f64>)> {
    let mut index: HashMap<i64, usize> = HashMap::with_capacity(points.len());
    let mut groups: Vec<(i64, Vec<f64>)> = Vec::new();
    for &(t, v) in points {
        let interval = t - t.rem_euclid(step);
        match index.get(&interval) {
            Some(&i) => groups[i].1.push(v),
            None => {
                index.insert(interval, groups.len());
                groups.push((interval, vec![v]));
            }
        }
    }
    groups
}

#[cfg(test)]
mod tests {
    use super::*;

    fn series(from: i64, step: u32, n: usize) -> Series {
        Series { from, until: from + i64::from(step) * n as i64, step, values: vec![None; n] }
    }

    fn p(t: u32, v: f64) -> CachedPoint {
        CachedPoint::new(t, v)
    }

    #[test]
    fn finest_archive_takes_the_last_point_per_interval() {
        let mut s = series(600, 60, 5);
        let cached = [p(610, 1.0), p(650, 2.0), p(780, 3.0), p(10, 9.0), p(2000, 9.0)];
        merge_with_cache(&mut s, &cached, 60, AggregationMethod::Average);
        assert_eq!(s.values, [Some(2.0), None, None, Some(3.0), None]);
    }

    #[test]
    fn coarser_archive_aggregates_with_the_file_method() {
        let mut s = series(600, 300, 2);
        let cached = [p(600, 1.0), p(660, 3.0), p(900, 10.0), p(960, 20.0), p(960, 30.0)];
        merge_with_cache(&mut s, &cached, 60, AggregationMethod::Sum);
        assert_eq!(s.values, [Some(4.0), Some(40.0)]);
    }
}
