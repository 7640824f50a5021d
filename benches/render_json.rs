//! Criterion benches of `/render`'s JSON answer (`render::format::write_json`), the part of a
//! render that grows with its points: Python's `repr` of every value and the timestamps.
//!
//! - `render/write_json/<values>/10x1440`: 10 series of a day at 60 s, the values
//!   - `short`: decimals of at most 3 places (`47.123`: what metrics mostly hold, and the
//!     differential fixture's values),
//!   - `full`: full-precision doubles (`47.12333333333333`: averages, ratios),
//!   - `int`: whole numbers (counters, `countSeries`);
//! - `render/write_json/nulls/1x86400`: one series of a day at 1 s, nearly all null (what
//!   `events('*')` answers);
//! - `render/float_repr/<values>`: `pyfmt::push_float_repr` alone over the same 14,400 values.
//!
//! Run: `cargo bench -p benches --bench render_json`. Figures on this 2-core machine: see
//! render/README.md's "Speed".

use std::time::Duration;

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use render::Series;

const SERIES: usize = 10;
const POINTS: usize = 1_440;
const T0: i64 = 1_700_000_000 - 1_700_000_000 % 86_400;

/// Values from a fixed seed (xorshift): uniform in [0, 1).
fn uniform(seed: u64) -> impl FnMut() -> f64 {
    let mut state = seed;
    move || {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        (state >> 11) as f64 / (1u64 << 53) as f64
    }
}

/// `SERIES` series of `POINTS` values at 60 s, each made from a uniform draw by `shape`,
/// every 97th null.
fn series(shape: fn(f64) -> f64) -> Vec<Series> {
    let mut next = uniform(0x9e37_79b9_7f4a_7c15);
    (0..SERIES)
        .map(|k| {
            let values = (0..POINTS).map(|i| (i % 97 != 0).then(|| shape(next()))).collect();
            Series::new(
                format!("servers.web{k:02}.cpu.user"),
                T0,
                T0 + 60 * POINTS as i64,
                60,
                values,
            )
        })
        .collect()
}

fn short(u: f64) -> f64 {
    (u * 100_000.0).round() / 1000.0
}

fn full(u: f64) -> f64 {
    u * 100.0
}

fn int(u: f64) -> f64 {
    (u * 10_000.0).floor()
}

fn bench(c: &mut Criterion) {
    let mut group = c.benchmark_group("render");
    group.measurement_time(Duration::from_secs(3));
    let mut body = Vec::new();
    for (name, shape) in [("short", short as fn(f64) -> f64), ("full", full), ("int", int)] {
        let s = series(shape);
        group.throughput(Throughput::Elements((SERIES * POINTS) as u64));
        group.bench_function(format!("write_json/{name}/{SERIES}x{POINTS}"), |b| {
            b.iter(|| {
                body.clear();
                render::format::write_json(&mut body, &s, false, false);
                body.len()
            })
        });
        let values: Vec<f64> = s.iter().flat_map(|s| s.values.iter().flatten()).copied().collect();
        group.throughput(Throughput::Elements(values.len() as u64));
        group.bench_function(format!("float_repr/{name}"), |b| {
            b.iter(|| {
                body.clear();
                for &x in &values {
                    render::pyfmt::push_float_repr(&mut body, x);
                }
                body.len()
            })
        });
    }
    // One event in a day at one-second steps.
    let mut values = vec![None; 86_400];
    values[43_200] = Some(1.0);
    let events = vec![Series::new("events(\"*\")", T0, T0 + 86_400, 1, values)];
    group.throughput(Throughput::Elements(86_400));
    group.bench_function("write_json/nulls/1x86400", |b| {
        b.iter(|| {
            body.clear();
            render::format::write_json(&mut body, &events, false, false);
            body.len()
        })
    });
    group.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
