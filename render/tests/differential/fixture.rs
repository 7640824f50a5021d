//! The data both implementations read: a directory of Whisper files written with our
//! `whisper` crate, laid out as carbon lays them out (tagged series under
//! `_tagged/xxx/yyy/<sha256>.wsp`), with values from formulas so every run is identical.
//!
//! Every value is a function of the metric and of its timestamp relative to [`NOW`], the fixed
//! "now" of every request, so the files written at any wall-clock time read the same.

use std::path::Path;

use store::index::TagIndex;
use whisper::{AggregationMethod, CreateOptions, parse_retention_def};

/// The `now` of the fixture and of every request: 2023-11-14 22:13:20 UTC, deliberately not
/// a multiple of any step, so alignment at the end of a window is exercised.
pub(crate) const NOW: i64 = 1_700_000_000;

/// How a metric's values are made.
#[derive(Clone, Copy, Debug)]
enum Shape {
    /// `base + amp * sin(2πk/period + phase)`, rounded to 3 decimals; null at every
    /// `null_every`-th point (0: none).
    Wave { base: f64, amp: f64, period: f64, phase: f64, null_every: i64 },
    /// A counter going up by `rate` per point (plus a ripple) that wraps at `wrap`, as a
    /// 32-bit interface counter does; null at every `null_every`-th point.
    Counter { rate: f64, wrap: f64, null_every: i64 },
    /// Small integers `k mod m` (series of whole numbers, and zeros for division by zero).
    Int { modulo: i64 },
    /// One value every `every` points, nulls in between.
    Sparse { every: i64 },
    /// Only the oldest half of the window has values (the newest points are null): tests
    /// the "current" value of a series and keepLastValue's limit.
    Stale { last_minutes: i64 },
    /// No value at all (the file exists, every point is null).
    Empty,
}

/// One metric of the fixture.
struct Metric {
    name: &'static str,
    retentions: &'static [&'static str],
    aggregation: AggregationMethod,
    /// How many seconds of history before [`NOW`] get values.
    history: i64,
    shape: Shape,
}

const DAY: i64 = 86_400;

const fn wave(base: f64, amp: f64, period: f64, phase: f64, null_every: i64) -> Shape {
    Shape::Wave { base, amp, period, phase, null_every }
}

const fn m(name: &'static str, shape: Shape) -> Metric {
    Metric {
        name,
        retentions: &["60s:1d"],
        aggregation: AggregationMethod::Average,
        history: DAY,
        shape,
    }
}

/// The metrics. Plain ones follow the names the function helpers' candidate targets use
/// (`test.web01.cpu`, `test.slow.cpu`, ...); deeper trees for node functions; tagged series in
/// two naming styles (`disk.used;datacenter=dc1;...` and `tagged.disk.used;dc=dc1;...`).
fn metrics() -> Vec<Metric> {
    vec![
        m("test.web01.cpu", wave(50.0, 30.0, 97.0, 0.0, 17)),
        m("test.web02.cpu", wave(40.0, 25.0, 61.0, 1.0, 23)),
        m("test.web03.cpu", wave(70.0, 10.0, 131.0, 2.0, 0)),
        m("test.db01.cpu", wave(-10.0, 20.0, 43.0, 0.5, 11)),
        m("test.db02.cpu", Shape::Int { modulo: 3 }),
        m("test.web01.mem", wave(4.0e9, 1.0e9, 300.0, 0.0, 0)),
        m("test.web02.mem", wave(6.0e9, 5.0e8, 200.0, 3.0, 29)),
        Metric { retentions: &["300s:1d"], ..m("test.slow.cpu", wave(30.0, 20.0, 37.0, 0.3, 7)) },
        Metric { retentions: &["10s:1d"], ..m("test.fast.cpu", wave(20.0, 5.0, 173.0, 0.7, 13)) },
        m("test.empty.cpu", Shape::Empty),
        m("test.sparse.cpu", Shape::Sparse { every: 10 }),
        m("test.stale.cpu", Shape::Stale { last_minutes: 90 }),
        m("test.int.count", Shape::Int { modulo: 7 }),
        Metric {
            aggregation: AggregationMethod::Max,
            ..m("test.counter.in", Shape::Counter { rate: 137.0, wrap: 10_000.0, null_every: 31 })
        },
        m("test.counter.pkts", Shape::Counter { rate: 137.0, wrap: 10_000.0, null_every: 0 }),
        Metric {
            aggregation: AggregationMethod::Last,
            ..m(
                "test.counter.out",
                Shape::Counter { rate: 4.0e7, wrap: 4_294_967_296.0, null_every: 0 },
            )
        },
        Metric {
            retentions: &["60s:1d", "5m:7d", "1h:30d"],
            history: 7 * DAY,
            ..m("test.long.cpu", wave(100.0, 50.0, 1440.0, 0.0, 19))
        },
        m("servers.dc1.web01.cpu.user", wave(30.0, 10.0, 71.0, 0.1, 0)),
        m("servers.dc1.web01.cpu.system", wave(10.0, 4.0, 53.0, 0.2, 41)),
        m("servers.dc1.web02.cpu.user", wave(35.0, 12.0, 67.0, 0.3, 13)),
        m("servers.dc1.web02.cpu.system", wave(12.0, 5.0, 59.0, 0.4, 0)),
        m("servers.dc2.db01.cpu.user", wave(60.0, 20.0, 89.0, 0.5, 0)),
        m("servers.dc2.db01.cpu.system", wave(20.0, 8.0, 47.0, 0.6, 37)),
        m("servers.dc1.web01.mem.free", wave(2.0e9, 3.0e8, 113.0, 0.7, 0)),
        m("disk.used;datacenter=dc1;server=web01", wave(500.0, 50.0, 211.0, 0.0, 0)),
        m("disk.used;datacenter=dc1;server=web02", wave(700.0, 80.0, 157.0, 1.0, 19)),
        m("disk.used;datacenter=dc2;server=db01", wave(900.0, 30.0, 83.0, 2.0, 0)),
        m("cpu.load;datacenter=dc1;env=prod;server=web01", wave(1.5, 1.0, 29.0, 0.0, 9)),
        m("tagged.disk.used;dc=dc1;server=web01", wave(55.0, 5.0, 101.0, 0.2, 0)),
        m("tagged.disk.used;dc=dc1;server=web02", wave(65.0, 15.0, 79.0, 1.2, 21)),
        m("tagged.disk.used;dc=dc2;server=db01", wave(85.0, 10.0, 127.0, 2.2, 0)),
        m("tagged.cpu.load;dc=dc1;env=prod;server=web01", wave(2.5, 2.0, 31.0, 0.4, 0)),
    ]
}

/// The names in the fixture (normalised as carbon stores them).
pub(crate) fn names() -> Vec<String> {
    metrics().iter().map(|m| carbon_proto::tags::normalize(m.name).expect("valid name")).collect()
}

/// The value of `shape` at point `k` (the number of steps back from the newest point is
/// `back`), or `None`.
fn value(shape: Shape, k: i64, back: i64, step: i64) -> Option<f64> {
    let round3 = |x: f64| (x * 1000.0).round() / 1000.0;
    match shape {
        Shape::Wave { base, amp, period, phase, null_every } => {
            if null_every > 0 && k % null_every == 3 {
                return None;
            }
            let angle = 2.0 * std::f64::consts::PI * k as f64 / period + phase;
            Some(round3(base + amp * angle.sin()))
        }
        Shape::Counter { rate, wrap, null_every } => {
            if null_every > 0 && k % null_every == 5 {
                return None;
            }
            let ripple = (k % 5) as f64 * rate / 10.0;
            Some((k as f64 * rate + ripple).rem_euclid(wrap).floor())
        }
        Shape::Int { modulo } => Some((k % modulo) as f64),
        Shape::Sparse { every } => (k % every == 0).then(|| round3(10.0 + (k as f64 / 7.0).sin())),
        Shape::Stale { last_minutes } => {
            (back * step >= last_minutes * 60).then(|| round3(42.0 + (k as f64 / 11.0).cos()))
        }
        Shape::Empty => None,
    }
}

/// Writes the fixture into `dir` (the Whisper directory) and registers the tagged series in
/// our store's tag registry (the store cannot recover a tagged name from a hashed file name;
/// graphite-web is told about them through `/tags/tagMultiSeries`).
///
/// # Panics
///
/// On any I/O error: the test cannot go on without its data.
pub(crate) fn write(dir: &Path) {
    let tags = TagIndex::open(dir).map(|(t, _)| t).expect("open the tag registry");
    for metric in metrics() {
        let name = carbon_proto::tags::normalize(metric.name).expect("valid name");
        let relative = carbon_proto::tags::disk_path(&name, true).expect("storable name");
        let path = dir.join(relative);
        std::fs::create_dir_all(path.parent().expect("a file has a parent")).expect("mkdir");
        let archives: Vec<_> = metric
            .retentions
            .iter()
            .map(|r| parse_retention_def(r).expect("valid retention"))
            .collect();
        let mut file = CreateOptions::new()
            .aggregation_method(metric.aggregation)
            .create(&path, &archives)
            .expect("create whisper file");
        let step = i64::from(archives[0].seconds_per_point());
        let newest = NOW - NOW.rem_euclid(step);
        let count = metric.history / step;
        // k counts from the oldest point; the newest point is k = count - 1.
        let points: Vec<(i64, f64)> = (0..count)
            .filter_map(|k| {
                let back = count - 1 - k;
                let ts = newest - back * step;
                value(metric.shape, k, back, step).map(|v| (ts, v))
            })
            .collect();
        // update_many with many points: whisper writes them archive by archive, oldest
        // archive first when they are older than the finest archive's retention.
        for chunk in points.chunks(4096) {
            file.update_many(chunk, NOW).expect("write points");
        }
        if name.contains(';') {
            tags.insert(&name).expect("register tagged series");
        }
    }
    tags.sync().expect("sync the tag registry");
}
