//! Plaintext decode throughput: `carbon_proto/plaintext/*`.
//!
//! The target is 5 million realistic lines per second per core. Lines look like what
//! Diamond, collectd and statsd send: dotted names of 4-6 components, integer and decimal values,
//! integer timestamps, generated from a seed.

use bytes::BytesMut;
use carbon_proto::plaintext::{LineDecoder, decode_datagram};
use criterion::{Criterion, Throughput, criterion_group, criterion_main};

/// `n` realistic lines, newline-terminated.
fn realistic_lines(n: usize) -> Vec<u8> {
    let metrics = [
        "cpu.total.user",
        "cpu.total.system",
        "memory.MemFree",
        "loadavg.01",
        "network.eth0.rx_bytes",
        "diskspace.root.byte_avail",
    ];
    let mut out = Vec::with_capacity(n * 48);
    let mut seed: u64 = 0x9e37_79b9_7f4a_7c15;
    for i in 0..n {
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        let host = seed % 500;
        let metric = metrics[i % metrics.len()];
        let ts = 1_700_000_000 + (i / 1000) as u64 * 10;
        if i % 3 == 0 {
            out.extend_from_slice(
                format!("servers.web{host:03}.{metric} {} {ts}\n", seed % 100_000).as_bytes(),
            );
        } else {
            out.extend_from_slice(
                format!("servers.web{host:03}.{metric} {}.{:02} {ts}\n", seed % 1000, seed % 97)
                    .as_bytes(),
            );
        }
    }
    out
}

fn plaintext(c: &mut Criterion) {
    let lines = 100_000;
    let data = realistic_lines(lines);
    let mut group = c.benchmark_group("carbon_proto/plaintext");
    group.throughput(Throughput::Elements(lines as u64));
    group.sample_size(20);

    group.bench_function("decode_stream/borrowed", |b| {
        b.iter(|| {
            let mut buf = BytesMut::from(&data[..]);
            let mut decoder = LineDecoder::new();
            let mut sum = 0.0;
            decoder.decode(&mut buf, |r| {
                if let Ok(line) = r {
                    sum += line.value;
                }
            });
            sum
        });
    });

    group.bench_function("decode_stream/owned_points", |b| {
        b.iter(|| {
            let mut buf = BytesMut::from(&data[..]);
            let mut decoder = LineDecoder::new();
            let mut points = Vec::with_capacity(lines);
            decoder.decode(&mut buf, |r| {
                if let Ok(line) = r {
                    points.push(line.to_point());
                }
            });
            points.len()
        });
    });

    // Reads of 64 KiB, as a socket delivers them.
    group.bench_function("decode_stream/64k_reads", |b| {
        b.iter(|| {
            let mut buf = BytesMut::with_capacity(128 * 1024);
            let mut decoder = LineDecoder::new();
            let mut n = 0usize;
            for chunk in data.chunks(64 * 1024) {
                buf.extend_from_slice(chunk);
                decoder.decode(&mut buf, |r| n += usize::from(r.is_ok()));
            }
            n
        });
    });

    group.bench_function("datagrams_1400", |b| {
        // Datagrams of whole lines up to 1400 bytes, as loadgen and statsd-style senders pack them.
        let mut datagrams = Vec::new();
        let mut current = Vec::new();
        for line in data.split_inclusive(|&b| b == b'\n') {
            if current.len() + line.len() > 1400 {
                datagrams.push(std::mem::take(&mut current));
            }
            current.extend_from_slice(line);
        }
        datagrams.push(current);
        b.iter(|| {
            let mut n = 0usize;
            for d in &datagrams {
                decode_datagram(d, |r| n += usize::from(r.is_ok()));
            }
            n
        });
    });
    group.finish();
}

criterion_group!(benches, plaintext);
criterion_main!(benches);
