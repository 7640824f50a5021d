//! Criterion benches of the whisper crate on carbon's `60s:1d,5m:7d,15m:3y` files.
//!
//! Each operation is measured twice: through the path functions (`whisper::update_many(path,
//! ..)`, `whisper::fetch(path, ..)`), which open the file for every call as whisper.py does, and
//! through a kept-open [`whisper::Whisper`] handle (and, for fetch, a memory-mapped one).
//!
//! - `whisper/update_many/batch{1440,10}/{path,handle}`: one iteration writes one day of 60 s
//!   points (1,440) into an already written file, in 1 call of 1,440 or 144 calls of 10, with a
//!   fixed `now` (the steady state of carbon rewriting a metric).
//! - `whisper/fetch/24h/{path,handle,mmap}`: the last 24 h (1,440 values) of a full file.
//! - `whisper/store_pattern/{1,3,10}pt/{plain,noatime,cache,noatime+cache}`: the store's
//!   persister loop. `STORE_FILES` (2,000) existing `60s:1d,5m:7d` files in a carbon-like tree,
//!   written in turn: each iteration opens the next file by path, writes 1, 3 or 10 points of
//!   the last minutes with `update_many` and closes it. With and without
//!   [`OpenOptions::noatime`] and a shared [`HeaderCache`] (sized 1.25x the files, as its docs
//!   advise). With `WHISPER_BENCH_INTERLEAVED=1` in the environment, the bench instead runs
//!   the four variants side by side (each round writes every file once per variant) and prints
//!   the median of 30 rounds each, which is what the figures below are: on this shared
//!   2-core machine (other benchmarks running, load average 4 to 10) criterion's
//!   one-after-the-other runs of the same cases moved by up to ±25% from run to run, while
//!   the ratios of interleaved runs stayed within the ranges given (6 runs; ext4, `relatime`).
//!   One run:
//!
//!   | points per update | plain | noatime | cache | noatime+cache |
//!   |---|---|---|---|---|
//!   | 1 | 2.20 us | 2.03 us (1.00-1.09x) | 1.94 us (1.11-1.17x) | 1.83 us (1.19-1.24x) |
//!   | 3 | 2.77 us | 2.57 us (1.01-1.08x) | 2.36 us (1.13-1.21x) | 2.23 us (1.22-1.28x) |
//!   | 10 | 3.54 us | 2.97 us (1.06-1.19x) | 2.92 us (1.10-1.21x) | 2.77 us (1.16-1.28x) |
//!
//!   The criterion run closest in time gave 2.26 / 2.80 / 2.88 us plain and 1.83 / 2.09 /
//!   2.33 us with noatime and the cache (1.24x, 1.34x, 1.24x).
//!
//!   System calls per update (`strace -c`, 3 points): plain 9 (`openat`, `statx`, 4 `pread`:
//!   the header at open, again at the operation with the first archive's base, the 5-minute
//!   archive's base, the minutes to aggregate; 2 `pwrite`; `close`); with the cache 6 (one
//!   `pread`: the minutes to aggregate). `noatime` removes the access-time update
//!   (`touch_atime`, `ext4_dirty_inode`) that the first read after each write makes under
//!   `relatime`. What remains is mostly the path walk of `openat` and the two writes.
//! - `whisper/create/{zeroed,writezeros,fallocate,sparse}`: one new 1.3 MB file. Outside the
//!   timed part the files are truncated to zero, `CREATE_BATCH` at a time, so the disk use is
//!   bounded; they are removed only when the bench ends. Removing them as we go would measure
//!   the kernel instead: ext4 without a journal (this machine's) skips inodes deleted in the
//!   last 60-360 s when it allocates one, scanning up to a whole inode group (~150 us) per
//!   create. For the same reason, create figures of a run that follows a large deletion within
//!   a few minutes (a previous run of these benches included) are slower.
//!
//! Run with `cargo bench -p benches --bench whisper` (add a filter such as `fetch` to run a
//! part). Measurements are kept short: the machine has 2 shared cores.

use std::fs;
use std::hint::black_box;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use benches::{ALLOCATIONS, POINTS_PER_DAY, align_minute, archives, create_options, day_of_points};
use criterion::{Criterion, SamplingMode, Throughput, criterion_group};
use whisper::{Allocation, HeaderCache, OpenOptions, Retention, Series, Whisper};

/// Files created before their untimed truncation in the create benches.
const CREATE_BATCH: usize = 50;

/// Seed of the benchmark inputs (the metric index of the load generator's value scheme).
const SEED: usize = 42;

/// A fresh file with one day of points written, and the `now` they were written at.
fn written_file(dir: &Path, name: &str, now: i64) -> PathBuf {
    let path = dir.join(name);
    let mut db = create_options(Allocation::Zeroed).create(&path, &archives()).expect("create");
    db.update_many(&day_of_points(SEED, align_minute(now)), now).expect("update_many");
    path
}

fn update_many(c: &mut Criterion) {
    let dir = tempfile::tempdir().expect("temp dir");
    let now = whisper::now();
    let points = day_of_points(SEED, align_minute(now));
    let mut group = c.benchmark_group("whisper/update_many");
    group.throughput(Throughput::Elements(POINTS_PER_DAY as u64));
    group.sample_size(20).warm_up_time(Duration::from_millis(500));
    group.measurement_time(Duration::from_secs(2));
    for batch in [1440, 10] {
        let path = written_file(dir.path(), &format!("update-{batch}.wsp"), now);
        group.bench_function(format!("batch{batch}/path"), |b| {
            b.iter(|| {
                for chunk in points.chunks(batch) {
                    whisper::update_many(&path, black_box(chunk), now).expect("update_many");
                }
            })
        });
        let mut db = OpenOptions::new().write(true).open(&path).expect("open");
        group.bench_function(format!("batch{batch}/handle"), |b| {
            b.iter(|| {
                for chunk in points.chunks(batch) {
                    db.update_many(black_box(chunk), now).expect("update_many");
                }
            })
        });
    }
    group.finish();
}

/// Files written in turn by the store-pattern bench.
const STORE_FILES: usize = 2000;

/// `STORE_FILES` files of `60s:1d,5m:7d` in a tree like carbon's
/// (`collectd/host-NN/cpu-N/value-N.wsp`), each holding its last hour.
fn store_files(dir: &Path, now: i64) -> Vec<PathBuf> {
    let archives = [Retention::new(60, 1440), Retention::new(300, 2016)];
    let options = create_options(Allocation::Zeroed);
    (0..STORE_FILES)
        .map(|i| {
            let sub = dir.join(format!("collectd/host-{:02}/cpu-{}", i / 40, i % 4));
            fs::create_dir_all(&sub).expect("metric dir");
            let path = sub.join(format!("value-{i}.wsp"));
            let mut db = options.create(&path, &archives).expect("create");
            let hour: Vec<(i64, f64)> =
                (0..60).map(|k| (now - 3600 + k * 60, benches::value(i, k as usize))).collect();
            db.update_many(&hour, now).expect("update_many");
            path
        })
        .collect()
}

/// The four ways of opening a file compared by the store-pattern benches.
const STORE_VARIANTS: [(&str, bool, bool); 4] = [
    // (name, noatime, header cache)
    ("plain", false, false),
    ("noatime", true, false),
    ("cache", false, true),
    ("noatime+cache", true, true),
];

/// The options of a store-pattern variant, and its cache (sized as `HeaderCache` advises).
fn store_options(noatime: bool, cached: bool) -> (OpenOptions, Option<Arc<HeaderCache>>) {
    let cache = cached.then(|| Arc::new(HeaderCache::new(STORE_FILES * 5 / 4)));
    let mut options = OpenOptions::new();
    options.write(true).noatime(noatime).header_cache(cache.as_ref());
    (options, cache)
}

/// What the persister does for one metric: open by path, write `points` points (the last
/// minutes before `now`, values changing with `round`), close.
fn store_update(options: &OpenOptions, path: &Path, i: usize, round: usize, points: i64, now: i64) {
    let mut batch = [(0i64, 0f64); 10];
    let batch = &mut batch[..points as usize];
    for (k, p) in batch.iter_mut().enumerate() {
        *p = (now - (points - k as i64) * 60, benches::value(i, round + k));
    }
    let mut file = options.open(path).expect("open");
    file.update_many(black_box(batch), now).expect("update_many");
}

fn store_pattern(c: &mut Criterion) {
    let dir = tempfile::tempdir().expect("temp dir");
    let now = align_minute(whisper::now());
    let paths = store_files(dir.path(), now);
    let mut group = c.benchmark_group("whisper/store_pattern");
    group.throughput(Throughput::Elements(1));
    group.sample_size(50).warm_up_time(Duration::from_millis(500));
    group.measurement_time(Duration::from_secs(2));
    let mut round = 0usize;
    for points in [1i64, 3, 10] {
        for (name, noatime, cached) in STORE_VARIANTS {
            let (options, cache) = store_options(noatime, cached);
            let mut next = 0usize;
            group.bench_function(format!("{points}pt/{name}"), |b| {
                b.iter(|| {
                    store_update(&options, &paths[next], next, round, points, now);
                    next += 1;
                    if next == paths.len() {
                        next = 0;
                        round += 1;
                    }
                })
            });
            if let Some(cache) = &cache {
                let s = cache.stats();
                assert!(s.hits > 10 * s.misses, "{name}: the cache mostly hits: {s:?}");
            }
        }
    }
    group.finish();
}

/// Rounds of the interleaved comparison (the first one, which fills the caches, is not counted).
const INTERLEAVED_ROUNDS: usize = 31;

/// The store pattern's variants measured side by side rather than one after the other: each
/// round writes every file once with each variant in turn, and the figure of a variant is the
/// median of its rounds. Slow changes of the machine's load then hit every variant alike, which
/// criterion's sequential runs cannot promise on a shared machine. Prints one line per case.
fn store_pattern_interleaved() {
    let dir = tempfile::tempdir().expect("temp dir");
    let now = align_minute(whisper::now());
    let paths = store_files(dir.path(), now);
    let variants =
        STORE_VARIANTS.map(|(name, noatime, cached)| (name, store_options(noatime, cached)));
    for points in [1i64, 3, 10] {
        let mut rounds: Vec<Vec<f64>> = vec![Vec::new(); variants.len()];
        for round in 0..INTERLEAVED_ROUNDS {
            for (v, (_, (options, _))) in variants.iter().enumerate() {
                let start = Instant::now();
                for (i, path) in paths.iter().enumerate() {
                    store_update(options, path, i, round * variants.len() + v, points, now);
                }
                if round > 0 {
                    rounds[v].push(start.elapsed().as_secs_f64() * 1e6 / paths.len() as f64);
                }
            }
        }
        let medians: Vec<f64> = rounds
            .iter_mut()
            .map(|r| {
                r.sort_by(f64::total_cmp);
                r[r.len() / 2]
            })
            .collect();
        for ((name, (_, cache)), median) in variants.iter().zip(&medians) {
            let stats = cache.as_ref().map(|c| format!("  {:?}", c.stats())).unwrap_or_default();
            println!(
                "whisper/store_pattern/{points}pt/{name}: {median:.3} us per update, {:.2}x{stats}",
                medians[0] / median
            );
        }
    }
}

fn fetch(c: &mut Criterion) {
    let dir = tempfile::tempdir().expect("temp dir");
    let now = whisper::now();
    let path = written_file(dir.path(), "fetch.wsp", now);
    // A `now` a few seconds past the last point, as a reader a little later would use; the
    // window then comes from the 60 s archive (see shared/peers/README.md, gotchas).
    let fetch_now = now + 7;
    let from = fetch_now - 86_400;
    let mut group = c.benchmark_group("whisper/fetch");
    group.throughput(Throughput::Elements(POINTS_PER_DAY as u64));
    group.sample_size(30).warm_up_time(Duration::from_millis(500));
    group.measurement_time(Duration::from_secs(2));
    group.bench_function("24h/path", |b| {
        b.iter(|| {
            whisper::fetch(&path, black_box(from), Some(fetch_now), fetch_now).expect("fetch")
        })
    });
    let handles: [(&str, Whisper); 2] = [
        ("24h/handle", OpenOptions::new().open(&path).expect("open")),
        ("24h/mmap", OpenOptions::new().mmap(true).open(&path).expect("open mmap")),
    ];
    for (name, mut db) in handles {
        let mut series = Series::default();
        let found = db.fetch_into(from, Some(fetch_now), fetch_now, None, &mut series);
        assert!(found.expect("fetch") && series.step == 60, "the 60 s archive answers");
        group.bench_function(name, |b| {
            b.iter(|| {
                db.fetch_into(black_box(from), Some(fetch_now), fetch_now, None, &mut series)
                    .expect("fetch");
                series.values.len()
            })
        });
    }
    group.finish();
}

fn create(c: &mut Criterion) {
    let dir = tempfile::tempdir().expect("temp dir");
    let archives = archives();
    let mut group = c.benchmark_group("whisper/create");
    group.throughput(Throughput::Elements(1));
    // Flat sampling and a short measurement bound the number of files made (tens of thousands
    // at most); see the module doc for why they are truncated rather than removed.
    group.sample_size(10).sampling_mode(SamplingMode::Flat);
    group.warm_up_time(Duration::from_millis(200)).measurement_time(Duration::from_millis(500));
    let mut sample = 0u64;
    for (name, allocation) in ALLOCATIONS {
        let options = create_options(allocation);
        group.bench_function(name, |b| {
            b.iter_custom(|iters| {
                sample += 1;
                let sub = dir.path().join(format!("s{sample}"));
                fs::create_dir(&sub).expect("sample dir");
                let mut timed = Duration::ZERO;
                let mut made = Vec::with_capacity(CREATE_BATCH);
                for i in 0..iters {
                    let path = sub.join(format!("c{i}.wsp"));
                    let start = Instant::now();
                    // Create and close, as whisper.py's `create` does.
                    drop(options.create(&path, &archives).expect("create"));
                    timed += start.elapsed();
                    made.push(path);
                    if made.len() == CREATE_BATCH {
                        made.drain(..).for_each(truncate);
                    }
                }
                made.drain(..).for_each(truncate);
                timed
            })
        });
    }
    group.finish();
}

/// Frees a created file's blocks but keeps its inode, untimed.
fn truncate(path: PathBuf) {
    fs::OpenOptions::new().write(true).truncate(true).open(path).expect("truncate");
}

criterion_group!(benches, update_many, store_pattern, fetch, create);

/// criterion's main, plus the interleaved store-pattern comparison when
/// `WHISPER_BENCH_INTERLEAVED` is set (then nothing else runs).
fn main() {
    if std::env::var_os("WHISPER_BENCH_INTERLEAVED").is_some() {
        store_pattern_interleaved();
        return;
    }
    benches();
    Criterion::default().configure_from_args().final_summary();
}
