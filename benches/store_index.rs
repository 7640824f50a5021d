//! The metric and tag indexes: `store/index/*` and `store/tags/*`.
//!
//! Inputs are `servers.hostNNNNN.<group>.<item>.<stat>` names, 95 a host (4 to 6 components
//! with shared prefixes, as collectd or Diamond send them), generated, never committed.
//!
//! Before the criterion benches run, this prints the index's memory for a million names,
//! measured two ways: the bytes a counting global allocator sees the index hold (after
//! `shrink_to_fit`, with the input names allocated beforehand and not counted), and
//! `MetricIndex::heap_bytes` (the sum of its capacities). With `STORE_INDEX_MILLION=1` it
//! also creates a million empty `.wsp` files in a temp dir (about 7 s, 250,000 directories,
//! no data) and times `MetricIndex::build_from_dir` on them three times.
//!
//! | bench | one iteration |
//! |---|---|
//! | `store/index/insert_known/1M` | 10,000 inserts of names already in a 1M index (the per-point path) |
//! | `store/index/insert_new/100k` | 100,000 inserts into an empty index |
//! | `store/index/find/<pattern>` | one find on the 1M index |
//! | `store/index/build_from_dir/100k` | the scan of 100,000 empty files in 25,000 directories |
//! | `store/tags/find_series/<query>` | one query on 100,000 tagged series |

use std::alloc::{GlobalAlloc, Layout, System};
use std::hint::black_box;
use std::path::Path;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Instant;

use criterion::{BatchSize, Criterion, Throughput};
use store::index::{MetricIndex, TagIndex};

/// The system allocator, counting the bytes it holds.
struct Counting;

/// Bytes currently allocated through [`Counting`].
static ALLOCATED: AtomicUsize = AtomicUsize::new(0);

// SAFETY: every method forwards to `System` with the caller's arguments unchanged, so the
// caller's guarantees carry over; the counter is only bookkeeping.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        // SAFETY: forwarded as is (see the impl).
        let p = unsafe { System.alloc(layout) };
        if !p.is_null() {
            ALLOCATED.fetch_add(layout.size(), Ordering::Relaxed);
        }
        p
    }

    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        // SAFETY: forwarded as is (see the impl).
        let p = unsafe { System.alloc_zeroed(layout) };
        if !p.is_null() {
            ALLOCATED.fetch_add(layout.size(), Ordering::Relaxed);
        }
        p
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: forwarded as is (see the impl).
        unsafe { System.dealloc(ptr, layout) };
        ALLOCATED.fetch_sub(layout.size(), Ordering::Relaxed);
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        // SAFETY: forwarded as is (see the impl).
        let p = unsafe { System.realloc(ptr, layout, new_size) };
        if !p.is_null() {
            ALLOCATED.fetch_add(new_size, Ordering::Relaxed);
            ALLOCATED.fetch_sub(layout.size(), Ordering::Relaxed);
        }
        p
    }
}

#[global_allocator]
static GLOBAL: Counting = Counting;

/// `count` names, 95 a host.
fn typical_names(count: usize) -> Vec<String> {
    let mut per_host = Vec::new();
    for cpu in 0..4 {
        for s in ["user", "system", "idle", "iowait", "irq", "softirq", "steal", "nice"] {
            per_host.push(format!("cpu.cpu{cpu}.{s}"));
        }
    }
    for s in ["used", "free", "cached", "buffers", "swap_used", "swap_free"] {
        per_host.push(format!("memory.{s}"));
    }
    for d in ["sda", "sdb"] {
        for s in ["reads", "writes", "read_bytes", "write_bytes", "io_time", "weighted_io_time"] {
            per_host.push(format!("disk.{d}.{s}"));
        }
    }
    for i in ["eth0", "eth1"] {
        for s in ["rx_bytes", "tx_bytes", "rx_packets", "tx_packets", "rx_errors", "tx_errors"] {
            per_host.push(format!("net.{i}.{s}"));
        }
    }
    for s in ["load1", "load5", "load15"] {
        per_host.push(format!("load.{s}"));
    }
    for fs in ["root", "var", "home"] {
        for s in ["used", "free", "reserved"] {
            per_host.push(format!("df.{fs}.{s}"));
        }
    }
    for m in ["get", "post", "put", "delete"] {
        for s in ["count", "p50", "p95", "p99", "max"] {
            per_host.push(format!("app.requests.{m}.{s}"));
        }
    }
    per_host.push("uptime".to_string());
    (0..count)
        .map(|i| format!("servers.host{:05}.{}", i / per_host.len(), per_host[i % per_host.len()]))
        .collect()
}

fn index_of(names: &[String]) -> MetricIndex {
    let index = MetricIndex::new();
    for n in names {
        index.insert(n);
    }
    index.shrink_to_fit();
    index
}

/// Creates an empty `.wsp` file for each name under `root`.
fn make_files(root: &Path, names: &[String]) {
    let mut last_dir = std::path::PathBuf::new();
    for name in names {
        let file = root.join(format!("{}.wsp", name.replace('.', "/")));
        let dir = file.parent().expect("parent");
        if dir != last_dir {
            std::fs::create_dir_all(dir).expect("mkdir");
            last_dir = dir.to_path_buf();
        }
        std::fs::File::create(&file).expect("create");
    }
}

/// Prints bytes a metric for a million names, and the million-file scan when asked.
fn report(names: &[String]) {
    let before = ALLOCATED.load(Ordering::Relaxed);
    let index = index_of(names);
    let held = ALLOCATED.load(Ordering::Relaxed) - before;
    eprintln!(
        "store/index memory, {} names: {:.1} bytes a metric (counting allocator), {:.1} \
         (heap_bytes)",
        names.len(),
        held as f64 / names.len() as f64,
        index.heap_bytes() as f64 / names.len() as f64,
    );
    drop(index);
    if std::env::var_os("STORE_INDEX_MILLION").is_none() {
        return;
    }
    let dir = tempfile::tempdir().expect("tempdir");
    let start = Instant::now();
    make_files(dir.path(), names);
    eprintln!("created {} files in {:?}", names.len(), start.elapsed());
    for run in 0..3 {
        let before = ALLOCATED.load(Ordering::Relaxed);
        let (index, stats) = MetricIndex::build_from_dir(dir.path()).expect("build");
        let held = ALLOCATED.load(Ordering::Relaxed) - before;
        eprintln!(
            "run {run}: build_from_dir: {} metrics, {} directories in {:?} on {} threads, \
             {:.1} bytes a metric (counting allocator)",
            stats.metrics,
            stats.directories,
            stats.elapsed,
            stats.threads,
            held as f64 / index.len() as f64
        );
    }
}

fn metric_index(c: &mut Criterion, names: &[String]) {
    let index = index_of(names);
    let mut group = c.benchmark_group("store/index");
    group.sample_size(20);

    let known: Vec<&String> = names.iter().step_by(names.len() / 10_000).take(10_000).collect();
    group.throughput(Throughput::Elements(known.len() as u64));
    group.bench_function("insert_known/1M", |b| {
        b.iter(|| {
            for n in &known {
                black_box(index.insert(n));
            }
        })
    });

    let fresh = &names[..100_000];
    group.throughput(Throughput::Elements(fresh.len() as u64));
    group.bench_function("insert_new/100k", |b| {
        b.iter_batched(
            MetricIndex::new,
            |index| {
                for n in fresh {
                    index.insert(n);
                }
                index
            },
            BatchSize::PerIteration,
        )
    });

    group.throughput(Throughput::Elements(1));
    for pattern in [
        "servers.host04242.cpu.cpu3.idle",
        "servers.host04242.*",
        "servers.host0424*.cpu.*.{user,system}",
        "servers.*.load.load1",
        "servers.host0000[0-9].**",
        "servers.*.app.requests.*.p9?",
    ] {
        group.bench_function(format!("find/{pattern}"), |b| {
            b.iter(|| black_box(index.find(pattern).expect("find")))
        });
    }
    group.finish();
}

fn scan(c: &mut Criterion, names: &[String]) {
    // The files are made only if the bench is selected.
    let dir = std::cell::OnceCell::new();
    let files = &names[..100_000];
    let mut group = c.benchmark_group("store/index");
    group.sample_size(10);
    group.throughput(Throughput::Elements(files.len() as u64));
    group.bench_function("build_from_dir/100k", |b| {
        let dir = dir.get_or_init(|| {
            let dir = tempfile::tempdir().expect("tempdir");
            make_files(dir.path(), files);
            dir
        });
        b.iter(|| black_box(MetricIndex::build_from_dir(dir.path()).expect("build")))
    });
    group.finish();
}

fn tag_index(c: &mut Criterion) {
    let tags = TagIndex::new();
    for i in 0..100_000 {
        let name = format!(
            "disk.used;dc=dc{};host=web{:05};path=/mnt/{};rack=r{}",
            i % 4,
            i / 10,
            i % 10,
            i % 40
        );
        tags.insert(&name).expect("insert");
    }
    let mut group = c.benchmark_group("store/tags");
    group.sample_size(20);
    for exprs in [
        &["host=web04242"][..],
        &["dc=dc1", "rack=r13", "path=/mnt/3"][..],
        &["name=disk.used", "host=~web0424[0-9]"][..],
        &["dc=~dc[12]", "rack!=r1"][..],
    ] {
        group.bench_function(format!("find_series/{}", exprs.join("&")), |b| {
            b.iter(|| black_box(tags.find_series(exprs).expect("find")))
        });
    }
    group.finish();
}

fn main() {
    let names = typical_names(1_000_000);
    report(&names);
    let mut c = Criterion::default().configure_from_args();
    metric_index(&mut c, &names);
    scan(&mut c, &names);
    tag_index(&mut c);
    c.final_summary();
}
