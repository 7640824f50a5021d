//! Criterion benches of graph pictures (`render::image`): the target is a 1,000-point
//! PNG with 10 series under 50 ms.
//!
//! - `render/image/png/10x1000/{330x250,800x400}`: 10 series of 1,000 one-minute points each
//!   (a seeded random walk with a few gaps), drawn as a line graph with a title and a legend
//!   at graphite-web's default size and at a dashboard size, encoded as PNG. Everything a
//!   request costs after evaluation: layout, SVG document, parsing it (usvg), painting
//!   (tiny-skia, text included) and PNG encoding.
//! - `render/image/svg/10x1000/330x250`: the same graph as SVG (layout and document only).
//! - `render/image/png/10x1000/stacked`: stacked areas (clipping per area).
//!
//! On this 2-core machine (shared, load average ~5): 10.0 ms (330x250), 18.2 ms (800x400),
//! 12.8 ms (stacked), 3.4 ms (SVG). Run: `cargo bench -p benches --bench render_image`.

use std::time::Duration;

use criterion::{Criterion, criterion_group, criterion_main};
use render::Series;
use render::format::ImageFormat;
use render::image::{GraphOptions, render_line};
use render::time::TimeZone;

const SERIES: usize = 10;
const POINTS: usize = 1_000;
const T0: i64 = 1_700_000_000 - 1_700_000_000 % 3600;

/// Ten random walks from a fixed seed (xorshift), every 97th point null.
fn series() -> Vec<Series> {
    let mut state: u64 = 0x9e37_79b9_7f4a_7c15;
    let mut next = move || {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        (state >> 11) as f64 / (1u64 << 53) as f64
    };
    (0..SERIES)
        .map(|k| {
            let mut level = 100.0 * (k + 1) as f64;
            let values = (0..POINTS)
                .map(|i| {
                    level += next() * 10.0 - 5.0;
                    (i % 97 != 0).then_some(level)
                })
                .collect();
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

fn draw(c: &mut Criterion) {
    let data = series();
    let tz = TimeZone::utc();
    let mut group = c.benchmark_group("render/image");
    group.sample_size(30).warm_up_time(Duration::from_millis(500));
    group.measurement_time(Duration::from_secs(3));
    let cases = [
        ("png/10x1000/330x250", "title=CPU", ImageFormat::Png),
        ("png/10x1000/800x400", "title=CPU&width=800&height=400", ImageFormat::Png),
        ("png/10x1000/stacked", "title=CPU&areaMode=stacked", ImageFormat::Png),
        ("svg/10x1000/330x250", "title=CPU", ImageFormat::Svg),
    ];
    for (name, query, format) in cases {
        let options = GraphOptions::from_query(query);
        group.bench_function(name, |b| {
            b.iter(|| render_line(data.clone(), &options, &tz, format).map(|bytes| bytes.len()))
        });
    }
    group.finish();
}

criterion_group!(benches, draw);
criterion_main!(benches);
