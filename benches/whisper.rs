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
use std::time::{Duration, Instant};

use benches::{ALLOCATIONS, POINTS_PER_DAY, align_minute, archives, create_options, day_of_points};
use criterion::{Criterion, SamplingMode, Throughput, criterion_group, criterion_main};
use whisper::{Allocation, OpenOptions, Series, Whisper};

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

criterion_group!(benches, update_many, fetch, create);
criterion_main!(benches);
