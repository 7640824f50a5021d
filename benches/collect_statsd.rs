//! The statsd server's packet path, decode and aggregate, without sockets:
//! `collect/statsd/ingest/*`. One iteration feeds a fixed set of packets to an
//! [`Aggregator`]; throughput is in packets.
//!
//! - `single_line`: one metric per datagram, as most statsd clients send;
//! - `batched_1400b`: ~20 lines per datagram, as batching clients fill a 1400-byte packet;
//! - `flush/10k_keys`: one flush of 10,000 keys (counters, timers, gauges, sets).
//!
//! Packets come from `benches::statsd_packets` (seeded); 1,000 distinct keys, so after the
//! first iteration every key exists and no allocation happens per packet.

use std::time::{Duration, UNIX_EPOCH};

use benches::statsd_packets::packets;
use collect::statsd::{Aggregator, StatsdConfig};
use criterion::{BatchSize, Criterion, Throughput, criterion_group, criterion_main};

fn ingest(c: &mut Criterion) {
    let config = StatsdConfig::default();
    let mut group = c.benchmark_group("collect/statsd/ingest");
    group.sample_size(20).measurement_time(Duration::from_secs(3));
    for (label, lines) in [("single_line", 1), ("batched_1400b", 20)] {
        let input = packets(10_000, lines, 1000);
        group.throughput(Throughput::Elements(input.len() as u64));
        let mut a = Aggregator::new(&config).unwrap();
        group.bench_function(label, |b| {
            b.iter(|| {
                for p in &input {
                    a.ingest(p);
                }
            })
        });
    }
    group.finish();

    let mut group = c.benchmark_group("collect/statsd/flush");
    group.sample_size(10);
    let input = packets(50_000, 1, 10_000);
    group.bench_function("10k_keys", |b| {
        b.iter_batched(
            || {
                let mut a = Aggregator::new(&config).unwrap();
                for p in &input {
                    a.ingest(p);
                }
                a
            },
            |mut a| a.flush(UNIX_EPOCH + Duration::from_secs(1_700_000_000)).len(),
            BatchSize::LargeInput,
        )
    });
    group.finish();
}

criterion_group!(benches, ingest);
criterion_main!(benches);
