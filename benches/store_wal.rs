//! Criterion benches of the store's write-ahead log (`store::wal`) with realistic names:
//! 100,000 distinct `servers.hostNNNNN.cpu.cpuN.user` metrics (12,500 hosts of 8 CPUs), sent
//! in order as a collector would, one shared timestamp a batch, CPU percentages with two
//! decimals as values (not integers, so 8 bytes each: the costly case).
//!
//! - `store/wal/append/{interval,never}/batch{100,1000}`: one iteration appends every metric
//!   once (100,000 points) from one thread, in batches of 100 or 1,000, with the writer
//!   thread writing (and in `interval`, fsyncing every second) behind. Measures what an
//!   appender pays: encoding under the lock, plus any wait for buffer space if the disk
//!   falls behind. `never` does not fsync, so it shows the encoding cost alone.
//! - `store/wal/append/always/batch{100,1000}/threads{1,4}`: appends that each wait for their
//!   fsync, from 1 or 4 threads (group commit: concurrent appenders share fsyncs); one
//!   iteration is one batch per thread.
//! - `store/wal/replay`: opening a log of 1,000,000 points (10 passes over the names) and
//!   replaying it.
//!
//! Bytes per point are printed once per configuration (first pass, where each name is
//! written, and steady state).
//!
//! Run with `cargo bench -p benches --bench store_wal` (add a filter such as `never` to run a
//! part, ~2 min in all). Segments are released as the benches go, so the disk use stays at a
//! few segments.
//!
//! Figures (2026-11-21, Debian 12 VM, 2 vCPU Xeon 2.1 GHz shared with other jobs, load ~2;
//! medians with criterion's interval; noisy, compare within one run):
//!
//! | bench | throughput |
//! |---|---|
//! | `append/interval/batch100` | 12.8 M points/s (11.6-14.8) |
//! | `append/interval/batch1000` | 10.4 M points/s (7.1-13.4) |
//! | `append/never/batch100` | 11.8 M points/s (10.3-15.6) |
//! | `append/never/batch1000` | 13.0 M points/s (9.6-18.4) |
//! | `append/always/batch100/threads1` | 1.23 M points/s (12.3 k fsyncs/s) |
//! | `append/always/batch100/threads4` | 3.41 M points/s (2.0 appends an fsync) |
//! | `append/always/batch1000/threads1` | 10.8 M points/s |
//! | `append/always/batch1000/threads4` | 18.1 M points/s (1.8 appends an fsync) |
//! | `replay` | 80 M points/s (1 M points in 12.4 ms) |
//!
//! Bytes per point: 42.1 (batches of 100) and 42.0 (1000) on the first pass over the 100 k
//! names, where each name is written once for the segment; 12.0 and 11.9 after. An
//! uncontended append costs 50-100 ns a point, so 2 M points/s take 10-20 % of one core; a
//! profile splits it between `Encoder::encode` (SipHash of the name, varints) and the `memcmp`
//! of the dictionary lookup (a cache miss on the stored name). This VM's fsync takes ~80 µs
//! (the host caches writes); on a real disk `always` is bound by the device's flush latency.

use std::hint::black_box;
use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use store::wal::{FsyncPolicy, Wal, WalConfig};

/// Distinct metrics.
const METRICS: usize = 100_000;

/// The shared timestamp of every batch (only deltas within a batch are encoded).
const TS: u32 = 1_700_000_000;

fn names() -> Vec<String> {
    (0..METRICS).map(|i| format!("servers.host{:05}.cpu.cpu{}.user", i / 8, i % 8)).collect()
}

/// One pass over every metric, in batches of `size`; values `(7 * i + 13 * k) % 10000 / 100`
/// for metric `i` and pass `k` (the load generator's scheme, as a percentage).
fn batches(names: &[String], size: usize, pass: usize) -> Vec<Vec<(&str, u32, f64)>> {
    names
        .chunks(size)
        .enumerate()
        .map(|(c, chunk)| {
            chunk
                .iter()
                .enumerate()
                .map(|(j, n)| {
                    let i = c * size + j;
                    (n.as_str(), TS, ((7 * i + 13 * pass) % 10_000) as f64 / 100.0)
                })
                .collect()
        })
        .collect()
}

fn config(dir: &Path, fsync: FsyncPolicy) -> WalConfig {
    let mut c = WalConfig::new(dir);
    c.fsync = fsync;
    c
}

/// Prints the bytes a point costs on the first pass over the names and on the next ones.
fn print_bytes_per_point(label: &str, names: &[String], size: usize) {
    let dir = tempfile::tempdir().expect("temp dir");
    let wal = Wal::open(config(dir.path(), FsyncPolicy::Never), |_, _, _, _| {}).expect("open");
    let mut passes = Vec::new();
    for pass in 0..3 {
        let before = wal.stats().bytes_appended;
        for b in batches(names, size, pass) {
            wal.append(&b).expect("append");
        }
        passes.push((wal.stats().bytes_appended - before) as f64 / METRICS as f64);
    }
    eprintln!(
        "{label}: {:.2} bytes/point on the first pass (names written), {:.2} after",
        passes[0], passes[2]
    );
    wal.shutdown().expect("shutdown");
}

fn append(c: &mut Criterion) {
    let names = names();
    let mut group = c.benchmark_group("store/wal/append");
    group.sample_size(10).warm_up_time(Duration::from_millis(500));
    group.measurement_time(Duration::from_secs(3));
    for (mode, fsync) in
        [("interval", FsyncPolicy::Interval(Duration::from_secs(1))), ("never", FsyncPolicy::Never)]
    {
        for size in [100, 1000] {
            if mode == "interval" {
                print_bytes_per_point(&format!("batch{size}"), &names, size);
            }
            let dir = tempfile::tempdir().expect("temp dir");
            let wal = Wal::open(config(dir.path(), fsync), |_, _, _, _| {}).expect("open");
            let input = batches(&names, size, 0);
            group.throughput(Throughput::Elements(METRICS as u64));
            group.bench_function(format!("{mode}/batch{size}"), |b| {
                b.iter_custom(|iters| {
                    let mut timed = Duration::ZERO;
                    for _ in 0..iters {
                        let start = Instant::now();
                        for batch in &input {
                            wal.append(black_box(batch)).expect("append");
                        }
                        timed += start.elapsed();
                        // Untimed: keep the disk use bounded.
                        wal.release_before(wal.current_segment()).expect("release");
                    }
                    timed
                })
            });
            let stats = wal.stats();
            eprintln!(
                "{mode}/batch{size}: {} points, {} fsyncs, {} backpressure waits",
                stats.points_appended, stats.fsyncs, stats.backpressure_waits
            );
            wal.shutdown().expect("shutdown");
        }
    }
    group.finish();
}

fn append_always(c: &mut Criterion) {
    let names = names();
    let mut group = c.benchmark_group("store/wal/append/always");
    group.sample_size(10).warm_up_time(Duration::from_millis(300));
    group.measurement_time(Duration::from_secs(2));
    for size in [100, 1000] {
        for threads in [1usize, 4] {
            let dir = tempfile::tempdir().expect("temp dir");
            let wal = Arc::new(
                Wal::open(config(dir.path(), FsyncPolicy::Always), |_, _, _, _| {}).expect("open"),
            );
            let input = Arc::new(
                batches(&names, size, 0)
                    .into_iter()
                    .map(|b| b.into_iter().map(|(n, t, v)| (n.to_owned(), t, v)).collect())
                    .collect::<Vec<Vec<(String, u32, f64)>>>(),
            );
            group.throughput(Throughput::Elements((size * threads) as u64));
            let fsyncs_before = wal.stats().fsyncs;
            let mut appends = 0u64;
            group.bench_function(format!("batch{size}/threads{threads}"), |b| {
                b.iter_custom(|iters| {
                    appends += iters * threads as u64;
                    let start = Instant::now();
                    std::thread::scope(|s| {
                        for t in 0..threads {
                            let wal = &wal;
                            let input = &input;
                            s.spawn(move || {
                                for i in 0..iters as usize {
                                    let batch = &input[(i * threads + t) % input.len()];
                                    let refs: Vec<(&str, u32, f64)> = batch
                                        .iter()
                                        .map(|(n, ts, v)| (n.as_str(), *ts, *v))
                                        .collect();
                                    wal.append(black_box(&refs)).expect("append");
                                }
                            });
                        }
                    });
                    let elapsed = start.elapsed();
                    wal.release_before(wal.current_segment()).expect("release");
                    elapsed
                })
            });
            let fsyncs = wal.stats().fsyncs - fsyncs_before;
            eprintln!(
                "always/batch{size}/threads{threads}: {appends} appends, {fsyncs} fsyncs ({:.2} appends an fsync)",
                appends as f64 / fsyncs.max(1) as f64
            );
        }
    }
    group.finish();
}

fn replay(c: &mut Criterion) {
    let names = names();
    let dir = tempfile::tempdir().expect("temp dir");
    let passes = 10;
    {
        let wal = Wal::open(config(dir.path(), FsyncPolicy::Never), |_, _, _, _| {}).expect("open");
        for pass in 0..passes {
            for b in batches(&names, 1000, pass) {
                wal.append(&b).expect("append");
            }
        }
        wal.shutdown().expect("shutdown");
    }
    let mut group = c.benchmark_group("store/wal");
    group.sample_size(10).warm_up_time(Duration::from_millis(500));
    group.measurement_time(Duration::from_secs(3));
    group.throughput(Throughput::Elements((METRICS * passes) as u64));
    group.bench_function("replay", |b| {
        b.iter(|| {
            let mut n = 0u64;
            let mut sum = 0.0;
            let stats = store::wal::replay_dir(dir.path(), |_, name, _, v| {
                n += name.len() as u64;
                sum += v;
            })
            .expect("replay");
            assert_eq!(stats.points, (METRICS * passes) as u64);
            black_box((n, sum))
        })
    });
    group.finish();
}

criterion_group!(benches, append, append_always, replay);
criterion_main!(benches);
