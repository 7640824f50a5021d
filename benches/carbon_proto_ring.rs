//! Hash ring lookups: `carbon_proto/ring/*`.
//!
//! A relay looks up every datapoint it forwards, so a lookup must cost little next to the
//! hash itself. Rings of 10 nodes (5 servers with 2 instances each, as a carbon-relay in front
//! of two caches per host is configured), 10,000 realistic names from a seed; each iteration
//! looks all of them up, so time / 10,000 is the cost of one lookup. The `position` cases time
//! the hash alone.

use std::hint::black_box;

use carbon_proto::ring::{
    CRelayHash, CRelayRingBuilder, ConsistentHashRingBuilder, Destination, HashType,
};
use criterion::{Criterion, Throughput, criterion_group, criterion_main};

/// `n` names like collectors send: 4 to 6 dotted components.
fn realistic_names(n: usize) -> Vec<String> {
    let metrics = [
        "cpu.total.user",
        "cpu.total.system",
        "memory.MemFree",
        "loadavg.01",
        "network.eth0.rx_bytes",
        "diskspace.root.byte_avail",
    ];
    let mut seed: u64 = 0x9e37_79b9_7f4a_7c15;
    (0..n)
        .map(|i| {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            format!("servers.web{:03}.{}", seed % 500, metrics[i % metrics.len()])
        })
        .collect()
}

/// 5 hosts with instances `a` and `b`.
fn ten_nodes() -> Vec<Destination> {
    (0..10)
        .map(|i| {
            Destination::new(
                format!("10.0.0.{}", i / 2 + 1),
                2004 + i,
                Some(["a", "b"][usize::from(i % 2)].to_owned()),
            )
        })
        .collect()
}

fn ring(c: &mut Criterion) {
    let names = realistic_names(10_000);
    let mut group = c.benchmark_group("carbon_proto/ring");
    group.throughput(Throughput::Elements(names.len() as u64));
    group.sample_size(30);

    for (label, hash_type) in [("carbon_ch", HashType::CarbonCh), ("fnv1a_ch", HashType::Fnv1aCh)] {
        let one = ConsistentHashRingBuilder::new().hash_type(hash_type).build(ten_nodes()).unwrap();
        let three = ConsistentHashRingBuilder::new()
            .hash_type(hash_type)
            .replication_factor(3)
            .build(ten_nodes())
            .unwrap();
        group.bench_function(format!("{label}/position/10"), |b| {
            b.iter(|| names.iter().map(|n| one.position(n)).fold(0i64, i64::wrapping_add))
        });
        group.bench_function(format!("{label}/get_node/10"), |b| {
            b.iter(|| names.iter().map(|n| one.get_node(n).port()).fold(0u16, u16::wrapping_add))
        });
        group.bench_function(format!("{label}/destinations/10x3"), |b| {
            b.iter(|| {
                names
                    .iter()
                    .flat_map(|n| three.destinations(n).indices())
                    .fold(0usize, usize::wrapping_add)
            })
        });
        group.bench_function(format!("{label}/get_nodes/10"), |b| {
            b.iter(|| {
                names
                    .iter()
                    .flat_map(|n| one.get_nodes(n).map(Destination::port))
                    .fold(0u16, u16::wrapping_add)
            })
        });
    }

    for hash in [CRelayHash::CarbonCh, CRelayHash::Fnv1aCh, CRelayHash::JumpFnv1aCh] {
        for replication in [1, 2] {
            let ring =
                CRelayRingBuilder::new(hash).replication(replication).build(ten_nodes()).unwrap();
            group.bench_function(format!("c_relay_{hash}/route/10x{replication}"), |b| {
                b.iter(|| {
                    names
                        .iter()
                        .flat_map(|n| ring.route(n).indices())
                        .fold(0usize, usize::wrapping_add)
                })
            });
        }
    }
    group.finish();

    let mut build = c.benchmark_group("carbon_proto/ring/build");
    build.sample_size(20);
    build.bench_function("carbon_ch/10x3", |b| {
        b.iter(|| {
            ConsistentHashRingBuilder::new()
                .replication_factor(3)
                .build(black_box(ten_nodes()))
                .unwrap()
        })
    });
    build.bench_function("c_relay_fnv1a_ch/10x2", |b| {
        b.iter(|| {
            CRelayRingBuilder::new(CRelayHash::Fnv1aCh)
                .replication(2)
                .build(black_box(ten_nodes()))
                .unwrap()
        })
    });
    build.finish();
}

criterion_group!(benches, ring);
criterion_main!(benches);
