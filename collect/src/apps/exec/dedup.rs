//! tcollector's de-duplication of repeated values.
//!
//! Per series (metric and tags), a value equal to the last one sent is held back until
//! `interval` has passed since that value was sent; then it is sent again (so a flat series
//! still has a point at least every `interval`). When the value changes, the last held-back
//! point is sent first, so the graph's line stays flat up to the change instead of sloping
//! from the old point. A point whose timestamp is not newer than the series' last one is
//! refused. Series not seen for `evict` are forgotten.
//!
//! One difference from tcollector: the out-of-order check compares with the last point seen
//! (held or sent); tcollector compared with the time the value last changed, so it let through
//! a late point that fell between two held-back ones.

use std::collections::HashMap;

/// What [`Dedup::offer`] decided for a point.
#[derive(Clone, Debug, PartialEq)]
pub enum Verdict<P> {
    /// Send these points, in order (a held-back point, then this one; or just this one).
    Send(Vec<P>),
    /// Held back (a repeat within the interval).
    Held,
    /// Refused: its timestamp is not newer than the series' last one.
    OutOfOrder,
}

/// One series' memory.
#[derive(Debug)]
struct Entry<P> {
    /// The value last sent.
    value: f64,
    /// When `value` was last sent (ms).
    sent_ms: i64,
    /// The timestamp of the last point seen, held or sent (ms).
    last_ms: i64,
    /// The last point held back since `value` was sent.
    held: Option<P>,
}

/// The de-duplication state of one script (see the module docs).
#[derive(Debug)]
pub struct Dedup<P> {
    interval_ms: i64,
    only_zero: bool,
    series: HashMap<String, Entry<P>>,
}

impl<P: Clone> Dedup<P> {
    /// `interval_ms` 0 turns de-duplication off (every point is sent; order is still
    /// checked); `only_zero` holds back only repeated zeros (tcollector's `--dedup-only-zero`).
    pub fn new(interval_ms: i64, only_zero: bool) -> Dedup<P> {
        Dedup { interval_ms, only_zero, series: HashMap::new() }
    }

    /// Decides what to do with `point` of series `key` with `value` at `ts_ms`.
    pub fn offer(&mut self, key: &str, value: f64, ts_ms: i64, point: P) -> Verdict<P> {
        let Some(e) = self.series.get_mut(key) else {
            self.series.insert(
                key.to_owned(),
                Entry { value, sent_ms: ts_ms, last_ms: ts_ms, held: None },
            );
            return Verdict::Send(vec![point]);
        };
        if ts_ms <= e.last_ms {
            return Verdict::OutOfOrder;
        }
        e.last_ms = ts_ms;
        let same = e.value == value;
        if same
            && self.interval_ms > 0
            && (!self.only_zero || value == 0.0)
            && ts_ms.saturating_sub(e.sent_ms) < self.interval_ms
        {
            e.held = Some(point);
            return Verdict::Held;
        }
        let mut out = Vec::with_capacity(2);
        if let Some(h) = e.held.take() {
            if !same {
                out.push(h);
            }
        }
        out.push(point);
        e.value = value;
        e.sent_ms = ts_ms;
        Verdict::Send(out)
    }

    /// Forgets series whose last point is older than `cutoff_ms`; returns how many.
    pub fn evict_before(&mut self, cutoff_ms: i64) -> usize {
        let before = self.series.len();
        self.series.retain(|_, e| e.last_ms >= cutoff_ms);
        before - self.series.len()
    }

    /// How many series are remembered.
    pub fn len(&self) -> usize {
        self.series.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    const S: i64 = 1000;

    /// Feeds (ts seconds, value) points of one series; returns the timestamps sent.
    fn run(d: &mut Dedup<i64>, points: &[(i64, f64)]) -> Vec<i64> {
        let mut sent = Vec::new();
        for &(ts, v) in points {
            if let Verdict::Send(p) = d.offer("m", v, ts * S, ts) {
                sent.extend(p);
            }
        }
        sent
    }

    #[test]
    fn repeats_are_held_until_the_interval() {
        let mut d = Dedup::new(300 * S, false);
        let pts: Vec<(i64, f64)> = (0..=40).map(|i| (i * 15, 5.0)).collect();
        // Sent at 0, then the first repeat 300 s or more later (300), then 600.
        assert_eq!(run(&mut d, &pts), [0, 300, 600]);
    }

    #[test]
    fn a_change_sends_the_last_held_point_first() {
        let mut d = Dedup::new(300 * S, false);
        let sent = run(&mut d, &[(0, 1.0), (15, 1.0), (30, 1.0), (45, 2.0), (60, 2.0), (75, 3.0)]);
        assert_eq!(sent, [0, 30, 45, 60, 75]);
    }

    #[test]
    fn a_change_right_after_a_send_has_nothing_to_replay() {
        let mut d = Dedup::new(300 * S, false);
        assert_eq!(run(&mut d, &[(0, 1.0), (15, 2.0), (30, 3.0)]), [0, 15, 30]);
    }

    #[test]
    fn old_and_equal_timestamps_are_refused() {
        let mut d = Dedup::new(300 * S, false);
        assert_eq!(d.offer("m", 1.0, 100 * S, 0), Verdict::Send(vec![0]));
        assert_eq!(d.offer("m", 2.0, 100 * S, 1), Verdict::OutOfOrder);
        assert_eq!(d.offer("m", 2.0, 99 * S, 2), Verdict::OutOfOrder);
        assert_eq!(d.offer("m", 1.0, 110 * S, 3), Verdict::Held);
        // Between the sent point and the held one: tcollector would accept it, we do not.
        assert_eq!(d.offer("m", 1.0, 105 * S, 4), Verdict::OutOfOrder);
    }

    #[test]
    fn only_zero_holds_back_zeros_only() {
        let mut d = Dedup::new(300 * S, true);
        assert_eq!(
            run(&mut d, &[(0, 1.0), (15, 1.0), (30, 0.0), (45, 0.0), (60, 0.0)]),
            [0, 15, 30]
        );
    }

    #[test]
    fn interval_zero_sends_everything() {
        let mut d = Dedup::new(0, false);
        assert_eq!(run(&mut d, &[(0, 1.0), (15, 1.0), (30, 1.0)]), [0, 15, 30]);
    }

    #[test]
    fn idle_series_are_evicted() {
        let mut d = Dedup::new(300 * S, false);
        d.offer("a", 1.0, 100 * S, 0);
        d.offer("b", 1.0, 7000 * S, 0);
        assert_eq!(d.evict_before(1000 * S), 1);
        assert_eq!(d.len(), 1);
        // A forgotten series starts over: its next point is sent.
        assert_eq!(d.offer("a", 1.0, 7001 * S, 9), Verdict::Send(vec![9]));
    }

    proptest! {
        /// Against the plain facts the scheme promises, for any run of increasing timestamps:
        /// the first point and every change are sent, the point before a change is sent, the
        /// output is a subsequence of the input, and no input point is more than the interval
        /// after the last point sent before or at it.
        #[test]
        fn dedup_keeps_the_shape_of_the_series(
            steps in proptest::collection::vec((1i64..200, 0u8..3), 1..80)
        ) {
            let interval = 300;
            let mut ts = 0;
            let points: Vec<(i64, f64)> = steps.iter().map(|&(dt, v)| { ts += dt; (ts, f64::from(v)) }).collect();
            let mut d = Dedup::new(interval * S, false);
            let sent = run(&mut d, &points);
            prop_assert!(sent.windows(2).all(|w| w[0] < w[1]));
            prop_assert!(sent.iter().all(|t| points.iter().any(|p| p.0 == *t)));
            prop_assert_eq!(sent.first().copied(), Some(points[0].0));
            for w in points.windows(2) {
                if w[0].1 != w[1].1 {
                    prop_assert!(sent.contains(&w[1].0), "change at {} not sent", w[1].0);
                    prop_assert!(sent.contains(&w[0].0), "point {} before a change not sent", w[0].0);
                }
            }
            for p in &points {
                let last = sent.iter().filter(|&&t| t <= p.0).max().copied();
                prop_assert!(last.is_some_and(|l| p.0 - l < interval), "gap before {}", p.0);
            }
        }
    }
}
