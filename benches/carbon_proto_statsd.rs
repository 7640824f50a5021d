//! statsd and OpenTSDB decode throughput: `carbon_proto/statsd/*` and
//! `carbon_proto/opentsdb/*`.
//!
//! Packets look like what statsd clients send: dotted keys, counters with sample rates,
//! timers, gauges, sets, some DogStatsD tags, several lines per 1400-byte datagram. Telnet
//! lines look like tcollector's. Everything is generated from a seed.

use benches::Rng;
use bytes::BytesMut;
use carbon_proto::opentsdb::LineDecoder;
use carbon_proto::statsd::decode_packet;
use criterion::{Criterion, Throughput, criterion_group, criterion_main};

/// `n` statsd lines, grouped into datagrams of at most 1400 bytes.
fn statsd_packets(n: usize, tagged: bool) -> Vec<Vec<u8>> {
    let keys = ["api.requests", "api.latency", "db.pool.active", "users.unique", "cache.hits"];
    let mut rng = Rng(0x9e37_79b9_7f4a_7c15);
    let mut packets = Vec::new();
    let mut packet = Vec::with_capacity(1400);
    for i in 0..n {
        let r = rng.next_u64();
        let key = keys[i % keys.len()];
        let host = r % 200;
        let mut line = match i % 5 {
            0 => format!("web{host:03}.{key}:1|c|@0.1"),
            1 => format!("web{host:03}.{key}:{}.{}|ms", r % 900, r % 10),
            2 => format!("web{host:03}.{key}:{}|g", r % 50),
            3 => format!("web{host:03}.{key}:user{}|s", r % 10_000),
            _ => format!("web{host:03}.{key}:{}|c", r % 7 + 1),
        };
        if tagged {
            line.push_str(&format!("|#env:prod,region:eu{}", r % 3));
        }
        if packet.len() + line.len() + 1 > 1400 {
            packets.push(std::mem::take(&mut packet));
        }
        if !packet.is_empty() {
            packet.push(b'\n');
        }
        packet.extend_from_slice(line.as_bytes());
    }
    if !packet.is_empty() {
        packets.push(packet);
    }
    packets
}

/// `n` newline-terminated `put` lines.
fn telnet_lines(n: usize) -> Vec<u8> {
    let metrics = [
        "proc.stat.cpu",
        "proc.loadavg.1min",
        "net.sockstat.num_sockets",
        "iostat.disk.read_requests",
    ];
    let mut rng = Rng(0x2545_f491_4f6c_dd1d);
    let mut out = Vec::with_capacity(n * 64);
    for i in 0..n {
        let r = rng.next_u64();
        let ts = 1_700_000_000 + (i / 100) as u64 * 15;
        let metric = metrics[i % metrics.len()];
        let value = if i % 2 == 0 {
            format!("{}", r % 1_000_000)
        } else {
            format!("{}.{:02}", r % 100, r % 97)
        };
        out.extend_from_slice(
            format!("put {metric} {ts} {value} host=web{:03} type=user\n", r % 300).as_bytes(),
        );
    }
    out
}

fn statsd(c: &mut Criterion) {
    let lines = 50_000;
    let mut group = c.benchmark_group("carbon_proto/statsd");
    group.throughput(Throughput::Elements(lines as u64));
    group.sample_size(20);
    for (label, tagged) in
        [("decode_packets/plain", false), ("decode_packets/dogstatsd_tags", true)]
    {
        let packets = statsd_packets(lines, tagged);
        group.bench_function(label, |b| {
            b.iter(|| {
                let mut good = 0usize;
                for p in &packets {
                    good += decode_packet(p, |_| {}).metrics;
                }
                good
            });
        });
    }
    group.finish();
}

fn opentsdb(c: &mut Criterion) {
    let lines = 50_000;
    let data = telnet_lines(lines);
    let mut group = c.benchmark_group("carbon_proto/opentsdb");
    group.throughput(Throughput::Elements(lines as u64));
    group.sample_size(20);
    group.bench_function("decode_stream/points", |b| {
        b.iter(|| {
            let mut buf = BytesMut::from(&data[..]);
            let mut sum = 0.0;
            LineDecoder::new().decode(&mut buf, |r| {
                if let Ok(carbon_proto::opentsdb::Request::Put(p)) = r {
                    sum += p.to_point().datapoint.value;
                }
            });
            sum
        });
    });
    group.finish();
}

criterion_group!(benches, statsd, opentsdb);
criterion_main!(benches);
