//! Pickle throughput: `carbon_proto/pickle/*`.
//!
//! A relay's message holds up to 500 points (carbon's `MAX_DATAPOINTS_PER_MESSAGE`); names are
//! dotted paths of 4-6 components, timestamps and values floats, generated from a seed. The
//! protocol-0 payload is the same data as a Python 2 client's `pickle.dumps(data, 0)` writes it.

use carbon_proto::cache_query::{Timestamps, encode_datapoints_response};
use carbon_proto::pickle::{Unpickler, encode_datapoints};
use carbon_proto::{Datapoint, MetricName, Point};
use criterion::{Criterion, Throughput, criterion_group, criterion_main};

/// `n` realistic points.
fn points(n: usize) -> Vec<Point> {
    let metrics = ["cpu.total.user", "memory.MemFree", "loadavg.01", "network.eth0.rx_bytes"];
    let mut seed: u64 = 0x9e37_79b9_7f4a_7c15;
    (0..n)
        .map(|i| {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            let name = format!("servers.web{:03}.{}", seed % 500, metrics[i % metrics.len()]);
            let value = (seed % 100_000) as f64 / 100.0;
            Point::new(MetricName::new(&name).unwrap(), 1_700_000_000.0 + (i / 100) as f64, value)
        })
        .collect()
}

/// The points as Python 2's `pickle.dumps(data, 0)` writes them (text opcodes, memo `p`).
fn protocol_0(points: &[Point]) -> Vec<u8> {
    let mut out = b"(lp0\n".to_vec();
    let mut memo = 1;
    for p in points {
        out.extend_from_slice(
            format!(
                "(S'{}'\np{}\n(F{:?}\nF{:?}\ntp{}\ntp{}\na",
                p.name,
                memo,
                p.datapoint.timestamp,
                p.datapoint.value,
                memo + 1,
                memo + 2
            )
            .as_bytes(),
        );
        memo += 3;
    }
    out.push(b'.');
    out
}

fn pickle(c: &mut Criterion) {
    let n = 500;
    let points = points(n);
    let protocol_2 = encode_datapoints(&points);
    let protocol_0 = protocol_0(&points);
    let mut group = c.benchmark_group("carbon_proto/pickle");
    group.throughput(Throughput::Elements(n as u64));
    group.sample_size(30);

    let mut unpickler = Unpickler::new();
    assert_eq!(unpickler.decode_datapoints(&protocol_0).unwrap().points.len(), n);
    group.bench_function("decode_datapoints/protocol2/500", |b| {
        b.iter(|| unpickler.decode_datapoints(&protocol_2).unwrap().points.len());
    });
    group.bench_function("decode_datapoints/protocol0/500", |b| {
        b.iter(|| unpickler.decode_datapoints(&protocol_0).unwrap().points.len());
    });
    group.bench_function("loads_value/protocol2/500", |b| {
        b.iter(|| unpickler.loads(&protocol_2).unwrap());
    });
    group.bench_function("encode_datapoints/500", |b| {
        b.iter(|| encode_datapoints(&points).len());
    });
    let cached: Vec<Datapoint> = points.iter().map(|p| p.datapoint).collect();
    group.bench_function("cache_query_response/500", |b| {
        let mut out = Vec::new();
        b.iter(|| {
            out.clear();
            encode_datapoints_response(&mut out, &cached, Timestamps::Float);
            out.len()
        });
    });
    group.finish();
}

criterion_group!(benches, pickle);
criterion_main!(benches);
