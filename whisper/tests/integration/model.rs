//! Model-based tests: `update`, `update_many` and `fetch` against a simple in-memory model of
//! whisper's rules, written from the specification rather than from whisper.py's code.
//!
//! The model keeps, per archive, a map from aligned timestamp to value. It knows nothing of
//! slots, bases, byte offsets or write order; the ring appears only as its capacity: storing a
//! timestamp evicts any other timestamp a whole number of retentions away (the one that held
//! the same slot). It then applies whisper's rules directly: which archive a point goes to, the
//! latest raw timestamp winning within an interval, propagation with the xFilesFactor and the
//! eight methods. After every operation the file's results must equal the model's, and at the
//! end every slot of the file must hold exactly what the model holds.
//!
//! The model is exact under three restrictions that keep whisper's write order invisible (the
//! differential tests cover what they leave out):
//!
//! - times are far from 0 (whisper treats a slot-0 timestamp of 0 as "never written");
//! - future points stay within the current finest interval (further ones can make one write's
//!   points share a slot);
//! - each archive's retention is at least the previous one's plus its own step. Otherwise one
//!   `update_many` can propagate into two coarse intervals a whole retention apart, which share
//!   a slot, and the one written last (in CPython's set order) stays.

use std::collections::BTreeMap;

use proptest::prelude::*;
use whisper::{AggregationMethod, CreateOptions, MemStorage, Retention, Series, Whisper};

use crate::differential::{archives, method, xff};

/// whisper's rules over plain maps.
#[derive(Debug)]
struct Model {
    archives: Vec<Retention>,
    method: AggregationMethod,
    /// As stored in the header: a float32.
    xff: f32,
    /// Per archive: aligned timestamp -> value, at most one timestamp per ring slot.
    data: Vec<BTreeMap<i64, f64>>,
}

fn align(t: i64, step: i64) -> i64 {
    t - t.rem_euclid(step)
}

/// The eight methods, straight from their definitions. Ties keep the first value in time order.
fn aggregate(method: AggregationMethod, slots: &[Option<f64>]) -> f64 {
    let known: Vec<f64> = slots.iter().flatten().copied().collect();
    let sum = |xs: &[f64]| xs.iter().fold(0.0, |s, x| s + x);
    let pick = |better: &dyn Fn(f64, f64) -> bool| {
        known
            .iter()
            .copied()
            .reduce(|best, x| if better(x, best) { x } else { best })
            .expect("known")
    };
    match method {
        AggregationMethod::Average => sum(&known) / known.len() as f64,
        AggregationMethod::Sum => sum(&known),
        AggregationMethod::Last => *known.last().expect("known"),
        AggregationMethod::Max => pick(&|x, best| x > best),
        AggregationMethod::Min => pick(&|x, best| x < best),
        AggregationMethod::AbsMax => pick(&|x, best| x.abs() > best.abs()),
        AggregationMethod::AbsMin => pick(&|x, best| x.abs() < best.abs()),
        AggregationMethod::AvgZero => {
            let all: Vec<f64> = slots.iter().map(|v| v.unwrap_or(0.0)).collect();
            sum(&all) / all.len() as f64
        }
    }
}

impl Model {
    fn new(archives: &[Retention], method: AggregationMethod, xff: f64) -> Model {
        let mut archives = archives.to_vec();
        archives.sort();
        Model { data: vec![BTreeMap::new(); archives.len()], archives, method, xff: xff as f32 }
    }

    fn step(&self, i: usize) -> i64 {
        i64::from(self.archives[i].seconds_per_point())
    }

    fn retention(&self, i: usize) -> i64 {
        self.archives[i].retention() as i64
    }

    fn max_retention(&self) -> i64 {
        self.retention(self.archives.len() - 1)
    }

    /// Stores a point; the ring keeps one lap, so a timestamp a multiple of the retention away
    /// (the same slot) goes.
    fn store(&mut self, i: usize, t: i64, v: f64) {
        let ret = self.retention(i);
        self.data[i].retain(|&k, _| (k - t).rem_euclid(ret) != 0);
        self.data[i].insert(t, v);
    }

    /// Propagates the `lower` interval containing `t` from `higher`; returns whether it wrote.
    fn propagate(&mut self, t: i64, higher: usize, lower: usize) -> bool {
        let (hs, ls) = (self.step(higher), self.step(lower));
        let start = align(t, ls);
        let slots: Vec<Option<f64>> =
            (0..ls / hs).map(|k| self.data[higher].get(&(start + k * hs)).copied()).collect();
        let known = slots.iter().flatten().count();
        if known == 0 || (known as f64 / slots.len() as f64) < f64::from(self.xff) {
            return false;
        }
        let v = aggregate(self.method, &slots);
        self.store(lower, start, v);
        true
    }

    /// `update`: refused unless `0 <= now - t < maxRetention`; the finest archive covering the
    /// age gets the point, then each coarser one in turn while propagation happens.
    fn update(&mut self, value: f64, t: i64, now: i64) -> Result<(), ()> {
        let age = now - t;
        if age < 0 || age >= self.max_retention() {
            return Err(());
        }
        let first = (0..self.archives.len()).find(|&i| self.retention(i) >= age).ok_or(())?;
        let interval = align(t, self.step(first));
        self.store(first, interval, value);
        for lower in first + 1..self.archives.len() {
            if !self.propagate(interval, lower - 1, lower) {
                break;
            }
        }
        Ok(())
    }

    /// `update_many`: each point goes to the finest archive whose retention covers its age
    /// (older than the file: dropped). Within an interval the latest raw timestamp wins, and of
    /// equal timestamps the first given. Then every coarser archive, in turn, gets each
    /// interval the written points touch, while any of them propagates.
    fn update_many(&mut self, points: &[(i64, f64)], now: i64) {
        let mut by_archive: Vec<Vec<(usize, i64, f64)>> = vec![Vec::new(); self.archives.len()];
        for (n, &(t, v)) in points.iter().enumerate() {
            if let Some(i) = (0..self.archives.len()).find(|&i| self.retention(i) >= now - t) {
                by_archive[i].push((n, t, v));
            }
        }
        for (i, group) in by_archive.iter().enumerate() {
            if group.is_empty() {
                continue;
            }
            let step = self.step(i);
            // interval -> (raw timestamp, input position, value) of the winner.
            let mut winners: BTreeMap<i64, (i64, usize, f64)> = BTreeMap::new();
            for &(n, t, v) in group {
                let w = winners.entry(align(t, step)).or_insert((t, n, v));
                if t > w.0 || (t == w.0 && n < w.1) {
                    *w = (t, n, v);
                }
            }
            for (&interval, &(_, _, v)) in &winners {
                self.store(i, interval, v);
            }
            let mut higher = i;
            for lower in i + 1..self.archives.len() {
                let ls = self.step(lower);
                let intervals: std::collections::BTreeSet<i64> =
                    winners.keys().map(|&t| align(t, ls)).collect();
                let mut any = false;
                for t in intervals {
                    any |= self.propagate(t, higher, lower);
                }
                if !any {
                    break;
                }
                higher = lower;
            }
        }
    }

    /// `fetch`: clamp to what the file covers, choose the archive by how far back `from` is,
    /// and return the aligned window `(from, until]`.
    fn fetch(&self, from: i64, until: Option<i64>, now: i64) -> Result<Option<Series>, ()> {
        let until = until.unwrap_or(now);
        if from > until {
            return Err(());
        }
        let oldest = now - self.max_retention();
        if from > now || until < oldest {
            return Ok(None);
        }
        let (from, until) = (from.max(oldest), until.min(now));
        let i = (0..self.archives.len())
            .find(|&i| self.retention(i) >= now - from)
            .unwrap_or(self.archives.len() - 1);
        let step = self.step(i);
        let first = align(from, step) + step;
        let mut end = align(until, step) + step;
        if end == first {
            end += step;
        }
        let values =
            (first..end).step_by(step as usize).map(|t| self.data[i].get(&t).copied()).collect();
        Ok(Some(Series { from: first, until: end, step: step as u32, values }))
    }
}

#[derive(Clone, Debug)]
enum Op {
    Update { age: i64, value: f64 },
    UpdateMany { points: Vec<(i64, f64)> },
    Fetch { from_age: i64, until_age: Option<i64> },
    Advance { seconds: i64 },
}

/// Values whose sums and averages are exact in any order, so the model's arithmetic is the
/// file's.
fn model_value() -> impl Strategy<Value = f64> {
    (-40i32..40).prop_map(|v| f64::from(v) / 4.0)
}

fn ops(archives: &[Retention]) -> impl Strategy<Value = Vec<Op>> + use<> {
    let max_retention = archives.iter().map(Retention::retention).max().unwrap_or(1) as i64;
    let step0 = i64::from(archives.iter().map(Retention::seconds_per_point).min().unwrap_or(1));
    // A little into the future; `run` keeps only what is inside the current finest interval.
    let age = -(step0 - 1)..max_retention + 2 * step0;
    let op = prop_oneof![
        3 => (-2..max_retention + 2, model_value()).prop_map(|(age, value)| Op::Update { age, value }),
        6 => prop::collection::vec((age, model_value()), 1..50)
            .prop_map(|points| Op::UpdateMany { points }),
        3 => (0..max_retention + 10, prop::option::of(-5..max_retention + 5))
            .prop_map(|(from_age, until_age)| Op::Fetch { from_age, until_age }),
        2 => (1..max_retention + 1).prop_map(|seconds| Op::Advance { seconds }),
    ];
    prop::collection::vec(op, 1..30)
}

#[derive(Clone, Debug)]
struct Scenario {
    archives: Vec<Retention>,
    method: AggregationMethod,
    xff: f64,
    now: i64,
    ops: Vec<Op>,
}

fn scenario(layouts: BoxedStrategy<Vec<Retention>>) -> impl Strategy<Value = Scenario> {
    (layouts, method(), xff(), 1_600_000_000i64..1_800_000_000).prop_flat_map(
        |(archives, method, xff, now)| {
            ops(&archives).prop_map(move |ops| Scenario {
                archives: archives.clone(),
                method,
                xff,
                now,
                ops,
            })
        },
    )
}

fn single_archive() -> BoxedStrategy<Vec<Retention>> {
    (prop::sample::select(vec![1u32, 2, 5, 10, 60, 3600]), 1u32..50)
        .prop_map(|(spp, points)| vec![Retention::new(spp, points)])
        .boxed()
}

/// 1 to 4 archives where propagation never writes two intervals into one slot (see the module
/// comment).
fn multi_archive() -> BoxedStrategy<Vec<Retention>> {
    archives()
        .prop_filter("a coarse ring shorter than a finer one plus a step", |list| {
            list.windows(2)
                .all(|w| w[1].retention() >= w[0].retention() + u64::from(w[1].seconds_per_point()))
        })
        .boxed()
}

/// Every slot of the file, as `(timestamp, value bits)` of the written ones, per archive.
fn file_contents(w: &mut Whisper<MemStorage>) -> Vec<BTreeMap<i64, u64>> {
    (0..w.header().archives().len())
        .map(|i| {
            w.archive_slots(i)
                .expect("archive slots")
                .into_iter()
                .filter(|&(t, _)| t != 0)
                .map(|(t, v)| (i64::from(t), v.to_bits()))
                .collect()
        })
        .collect()
}

fn model_contents(m: &Model) -> Vec<BTreeMap<i64, u64>> {
    m.data.iter().map(|d| d.iter().map(|(&t, v)| (t, v.to_bits())).collect()).collect()
}

fn run(s: &Scenario) -> Result<(), TestCaseError> {
    let mut w = CreateOptions::new()
        .x_files_factor(s.xff)
        .aggregation_method(s.method)
        .create_in_memory(&s.archives)
        .expect("valid archives");
    let mut m = Model::new(&s.archives, s.method, s.xff);
    let mut now = s.now;
    for (i, op) in s.ops.iter().enumerate() {
        match op {
            Op::Update { age, value } => {
                let ours = w.update(*value, Some(now - age), now).map_err(|_| ());
                let model = m.update(*value, now - age, now);
                prop_assert_eq!(ours, model, "op {} {:?}", i, op);
            }
            Op::UpdateMany { points } => {
                // Future points only inside the current finest interval (see the module comment).
                let step0 = i64::from(
                    s.archives.iter().map(|a| a.seconds_per_point()).min().expect("archives"),
                );
                let limit = now - now.rem_euclid(step0) + step0;
                let points: Vec<(i64, f64)> =
                    points.iter().map(|&(a, v)| (now - a, v)).filter(|&(t, _)| t < limit).collect();
                w.update_many(&points, now).expect("update_many");
                m.update_many(&points, now);
            }
            Op::Fetch { from_age, until_age } => {
                let until = until_age.map(|u| now - u);
                let ours = w.fetch(now - from_age, until, now).map_err(|_| ());
                let model = m.fetch(now - from_age, until, now);
                prop_assert_eq!(ours, model, "op {} {:?} at now={}", i, op, now);
            }
            Op::Advance { seconds } => now += seconds,
        }
        prop_assert_eq!(
            file_contents(&mut w),
            model_contents(&m),
            "slots after op {} {:?} (now={})",
            i,
            op,
            now
        );
    }
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 200, ..ProptestConfig::default() })]

    #[test]
    fn single_archive_matches_the_model(s in scenario(single_archive())) {
        run(&s)?;
    }

    #[test]
    fn multi_archive_matches_the_model(s in scenario(multi_archive())) {
        run(&s)?;
    }
}

/// One scenario with the model, for the named cases below.
fn check(archives: &[Retention], method: AggregationMethod, xff: f64, ops: Vec<Op>) {
    let s = Scenario { archives: archives.to_vec(), method, xff, now: 1_700_000_000, ops };
    if let Err(e) = run(&s) {
        panic!("{e}");
    }
}

#[test]
fn latest_raw_timestamp_wins_within_an_interval_and_first_of_equal_ones() {
    let points = vec![(30, 1.0), (1, 2.0), (5, 3.0), (1, 4.0), (61, 5.0)];
    check(
        &[Retention::new(60, 10)],
        AggregationMethod::Average,
        0.5,
        vec![
            Op::UpdateMany { points },
            Op::Fetch { from_age: 300, until_age: None },
            Op::Advance { seconds: 60 },
            Op::Fetch { from_age: 300, until_age: None },
        ],
    );
    // And the model agrees with the rule as stated: 2.0 (age 1, given first) wins its interval.
    let mut m = Model::new(&[Retention::new(60, 10)], AggregationMethod::Average, 0.5);
    let now = 1_700_000_040;
    m.update_many(&[(now - 30, 1.0), (now - 1, 2.0), (now - 1, 4.0)], now);
    assert_eq!(m.data[0].values().copied().collect::<Vec<_>>(), vec![2.0]);
}

#[test]
fn a_ring_keeps_one_lap() {
    let archives = [Retention::new(10, 5)];
    let points: Vec<(i64, f64)> = (0..12).map(|k| (k * 10, k as f64)).collect();
    check(&archives, AggregationMethod::Last, 0.0, vec![Op::UpdateMany { points }]);
    let mut m = Model::new(&archives, AggregationMethod::Last, 0.0);
    let now = 1_700_000_000;
    for k in 0..12 {
        m.update_many(&[(now - 120 + k * 10, k as f64)], now);
    }
    assert_eq!(m.data[0].len(), 5, "five slots");
}

#[test]
fn propagation_needs_the_x_files_factor() {
    let archives = [Retention::new(60, 10), Retention::new(300, 10)];
    for xff in [0.0, 0.5, 0.7, 1.0] {
        for method in AggregationMethod::ALL {
            // 1, 2, 3, then 5 of the 5 minutes of one 5-minute interval, written one by one.
            let ops = (0..5)
                .map(|k| Op::Update { age: 600 - k * 60, value: k as f64 - 2.5 })
                .chain([Op::Fetch { from_age: 3000, until_age: None }])
                .collect();
            check(&archives, method, xff, ops);
        }
    }
}
