//! The engine end to end: points in through `Store::ingest`, out through Whisper files and
//! `Store::fetch`; the write-ahead log across restarts; names that must never become files;
//! the read path's cache merge against graphite-web's own `merge_with_cache`.

use std::fs;
use std::path::{Path, PathBuf};
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use serde_json::{Value, json};
use store::config::{RateLimit, Reloadable};
use store::{Store, StoreOptions};
use whisper::AggregationMethod;

use super::index::{have_graphite_web, reference};

/// A timestamp in the recent past, on a minute boundary, so every archive covers it.
fn base_time() -> i64 {
    let now = whisper::now();
    now - now % 60 - 3600
}

/// A store in `root/whisper` with its log in `root/wal`, no self-metrics, and the config
/// files of `root/conf` when they exist.
fn options(root: &Path) -> StoreOptions {
    let mut o = StoreOptions::new(root.join("whisper")).unwrap();
    o.self_metrics = None;
    let conf = root.join("conf");
    o.schemas = Reloadable::open(conf.join("storage-schemas.conf")).unwrap();
    o.aggregation = Reloadable::open(conf.join("storage-aggregation.conf")).unwrap();
    o
}

/// Options whose persisters never get to write: points stay in the cache and the log.
fn frozen(root: &Path) -> StoreOptions {
    let mut o = options(root);
    o.max_updates_per_second = RateLimit::Limited(0.001);
    o
}

fn write_conf(root: &Path, schemas: &str, aggregation: &str) {
    let conf = root.join("conf");
    fs::create_dir_all(&conf).unwrap();
    fs::write(conf.join("storage-schemas.conf"), schemas).unwrap();
    fs::write(conf.join("storage-aggregation.conf"), aggregation).unwrap();
}

fn wsp(root: &Path, name: &str) -> PathBuf {
    root.join("whisper").join(format!("{}.wsp", name.replace('.', "/")))
}

/// Every file under `dir`.
fn files_under(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        let Ok(entries) = fs::read_dir(&d) else { continue };
        for e in entries.flatten() {
            let p = e.path();
            if p.is_dir() {
                stack.push(p);
            } else {
                out.push(p);
            }
        }
    }
    out.sort();
    out
}

/// The non-null values of a whisper file between `from` and `from + span`, with timestamps.
fn read_file(path: &Path, from: i64, span: i64) -> Vec<(i64, f64)> {
    let series = whisper::fetch(path, from - 1, Some(from + span), whisper::now())
        .unwrap()
        .expect("a range inside the file");
    series.points().filter_map(|(t, v)| v.map(|v| (t, v))).collect()
}

#[test]
fn points_reach_files_made_from_the_schema_and_aggregation_rules() {
    let root = tempfile::tempdir().unwrap();
    write_conf(
        root.path(),
        "[carbon]\npattern = ^carbon\\.\nretentions = 60:90d\n\n\
         [test]\npattern = ^test\\.\nretentions = 10s:6h,1m:7d\n",
        "[sums]\npattern = \\.count$\nxFilesFactor = 0\naggregationMethod = sum\n",
    );
    let (store, report) = Store::open(options(root.path())).unwrap();
    assert_eq!(report.metrics, 0);
    let t0 = base_time();
    let points: Vec<(String, f64, f64)> = (0..30)
        .flat_map(|i| {
            [
                ("test.app.requests.count".to_string(), (t0 + 10 * i) as f64, i as f64),
                ("test.app.latency".to_string(), (t0 + 10 * i) as f64, 0.5 * i as f64),
                ("other.thing".to_string(), (t0 + 60 * i) as f64, 1.0),
            ]
        })
        .collect();
    let accepted = store.ingest(points.iter().map(|(n, t, v)| (n.as_str(), *t, *v))).unwrap();
    assert_eq!(accepted, 90);
    store.flush();

    let count = wsp(root.path(), "test.app.requests.count");
    let header = whisper::info(&count).unwrap();
    let retentions: Vec<(u32, u32)> =
        header.archives().iter().map(|a| (a.seconds_per_point(), a.points())).collect();
    assert_eq!(retentions, [(10, 2160), (60, 10080)]);
    assert_eq!(header.aggregation_method(), AggregationMethod::Sum);
    assert_eq!(header.x_files_factor(), 0.0);
    let values = read_file(&count, t0, 300);
    assert_eq!(values, (0..30).map(|i| (t0 + 10 * i, i as f64)).collect::<Vec<_>>());

    let latency = whisper::info(wsp(root.path(), "test.app.latency")).unwrap();
    assert_eq!(latency.aggregation_method(), AggregationMethod::Average);
    assert_eq!(latency.x_files_factor(), 0.5);
    // No schema matches: carbon's built-in default (one minute for a week).
    let other = whisper::info(wsp(root.path(), "other.thing")).unwrap();
    assert_eq!(other.archives()[0].seconds_per_point(), 60);
    assert_eq!(other.archives()[0].points(), 10080);
    // The coarser archive was propagated with the sum: 6 ten-second points per minute.
    let fetched =
        store.fetch("test.app.requests.count", t0 - 1, Some(t0 + 300), whisper::now()).unwrap();
    assert_eq!(fetched.unwrap().values.iter().flatten().count(), 30);

    let counters = store.counters();
    assert_eq!(counters.creates.load(Ordering::Relaxed), 3);
    assert_eq!(counters.committed_points.load(Ordering::Relaxed), 90);
    store.shutdown(Duration::from_secs(10)).unwrap();
}

#[test]
fn a_new_metric_is_findable_and_readable_before_its_file_exists() {
    let root = tempfile::tempdir().unwrap();
    let (store, _) = Store::open(frozen(root.path())).unwrap();
    let t0 = base_time();
    store.ingest([("fresh.metric.a", t0 as f64, 1.0), ("fresh.metric.b", t0 as f64, 2.0)]).unwrap();
    store.ingest([("fresh.metric.a", (t0 + 60) as f64, 3.0)]).unwrap();

    let found: Vec<String> =
        store.find("fresh.metric.*").unwrap().iter().map(|n| n.path.clone()).collect();
    assert_eq!(found, ["fresh.metric.a", "fresh.metric.b"]);
    assert!(!wsp(root.path(), "fresh.metric.a").exists(), "the persisters are held back");

    let series =
        store.fetch("fresh.metric.a", t0 - 60, Some(t0 + 120), whisper::now()).unwrap().unwrap();
    assert_eq!(series.step, 60);
    let points: Vec<(i64, f64)> = series.points().filter_map(|(t, v)| v.map(|v| (t, v))).collect();
    assert_eq!(points, [(t0, 1.0), (t0 + 60, 3.0)]);
    assert_eq!(store.cache_points("fresh.metric.a"), [(t0 as u32, 1.0), ((t0 + 60) as u32, 3.0)]);
    assert_eq!(store.fetch("never.seen", t0, None, whisper::now()).unwrap(), None);
    drop(store);
}

#[test]
fn the_log_gives_back_what_was_not_written_and_is_trimmed_once_it_is() {
    let root = tempfile::tempdir().unwrap();
    let t0 = base_time();
    let names: Vec<String> = (0..200).map(|i| format!("wal.host{:03}.load", i)).collect();
    {
        let (store, _) = Store::open(frozen(root.path())).unwrap();
        for k in 0..5 {
            let batch = names.iter().map(|n| (n.as_str(), (t0 + 60 * k) as f64, k as f64));
            assert_eq!(store.ingest(batch).unwrap(), 200);
        }
        // Dropped without shutdown: the threads stop, nothing is written.
    }
    assert!(files_under(&root.path().join("whisper")).is_empty());

    let (store, report) = Store::open(options(root.path())).unwrap();
    assert_eq!(report.replayed_points, 1000);
    assert_eq!(report.metrics, 200, "replayed names are indexed");
    store.flush();
    for name in [&names[0], &names[199]] {
        let values = read_file(&wsp(root.path(), name), t0, 300);
        assert_eq!(values, (0..5).map(|k| (t0 + 60 * k, k as f64)).collect::<Vec<_>>(), "{name}");
    }
    store.shutdown(Duration::from_secs(10)).unwrap();

    let (store, report) = Store::open(options(root.path())).unwrap();
    assert_eq!(report.replayed_points, 0, "the log was trimmed after the writes");
    assert_eq!(report.metrics, 200, "found as files now");
    store.shutdown(Duration::from_secs(10)).unwrap();
}

#[test]
fn shutdown_writes_the_whole_cache_before_returning() {
    let root = tempfile::tempdir().unwrap();
    let mut o = options(root.path());
    // Slow enough that the cache is still full when shutdown starts; shutdown itself is
    // unlimited (no MAX_UPDATES_PER_SECOND_ON_SHUTDOWN).
    o.max_updates_per_second = RateLimit::Limited(20.0);
    let (store, _) = Store::open(o).unwrap();
    let t0 = base_time();
    let names: Vec<String> = (0..2000).map(|i| format!("drain.m{i}")).collect();
    store.ingest(names.iter().map(|n| (n.as_str(), t0 as f64, 7.0))).unwrap();
    assert!(store.cache_size() > 1000);
    store.shutdown(Duration::from_secs(60)).unwrap();
    assert_eq!(files_under(&root.path().join("whisper")).len(), 2000);
    for name in [&names[0], &names[1999]] {
        assert_eq!(read_file(&wsp(root.path(), name), t0, 60), [(t0, 7.0)]);
    }
    let (store, report) = Store::open(options(root.path())).unwrap();
    assert_eq!(report.replayed_points, 0);
    drop(store);
}

#[test]
fn a_full_cache_says_so_until_it_is_below_the_low_watermark() {
    let root = tempfile::tempdir().unwrap();
    let mut o = frozen(root.path());
    o.max_cache_points = 100;
    let (store, _) = Store::open(o).unwrap();
    let t0 = base_time();
    let names: Vec<String> = (0..120).map(|i| format!("full.m{i}")).collect();
    store.ingest(names[..99].iter().map(|n| (n.as_str(), t0 as f64, 1.0))).unwrap();
    assert!(!store.is_full());
    store.ingest([(names[99].as_str(), t0 as f64, 1.0)]).unwrap();
    assert!(store.is_full());
    // Ingest never drops: what a listener already read is still taken while full.
    assert_eq!(
        store.ingest(names[100..].iter().map(|n| (n.as_str(), t0 as f64, 1.0))).unwrap(),
        20
    );
    assert_eq!(store.cache_size(), 120);
    assert!(store.is_full());
    assert_eq!(store.counters().cache_full_events.load(Ordering::Relaxed), 1);
    drop(store);

    // Reopened with writers that drain it slowly (10 at once, then 10 a second): full
    // until below 95 points, not at 99.
    let mut o = options(root.path());
    o.max_cache_points = 100;
    o.max_updates_per_second = RateLimit::Limited(10.0);
    let (store, report) = Store::open(o).unwrap();
    assert_eq!(report.replayed_points, 120);
    assert!(store.is_full());
    let mut sizes_while_full = Vec::new();
    let deadline = Instant::now() + Duration::from_secs(30);
    while store.is_full() {
        sizes_while_full.push(store.cache_size());
        assert!(Instant::now() < deadline, "the cache never drained");
        std::thread::sleep(Duration::from_millis(5));
    }
    assert!(store.cache_size() < 95, "resumed at {} points", store.cache_size());
    assert!(
        sizes_while_full.iter().any(|&n| (95..100).contains(&n)),
        "still full between the watermarks: {sizes_while_full:?}"
    );
    store.shutdown(Duration::from_secs(30)).unwrap();
    assert_eq!(files_under(&root.path().join("whisper")).len(), 120, "nothing lost");
}

#[test]
fn hostile_names_never_become_files() {
    let root = tempfile::tempdir().unwrap();
    let outside = root.path().join("outside");
    let long_component = "x".repeat(300);
    let long_path = vec!["abcdefgh"; 600].join(".");
    let hostile = [
        "../../outside/escaped",
        "a/../../outside",
        "/etc/passwd",
        "a..b",
        ".leading",
        "trailing.",
        "",
        "nul\0byte",
        "new\nline",
        "tab\tname",
        long_component.as_str(),
        long_path.as_str(),
        "..",
        ".",
    ];
    let (store, _) = Store::open(options(root.path())).unwrap();
    let t0 = base_time() as f64;
    let accepted = store.ingest(hostile.iter().map(|n| (*n, t0, 1.0))).unwrap();
    assert_eq!(accepted, 0);
    assert_eq!(store.counters().bad_names.load(Ordering::Relaxed), hostile.len() as u64);
    // Good names next to them still go through, tagged ones included.
    let good = ["ok.metric", "ok.tagged;host=a/b;dc=../x", "ok.unicode.é"];
    assert_eq!(store.ingest(good.iter().map(|n| (*n, t0, 1.0))).unwrap(), 3);
    store.flush();
    assert!(!outside.exists());
    let files: Vec<PathBuf> = files_under(&root.path().join("whisper"))
        .into_iter()
        .filter(|f| f.extension().is_some_and(|e| e == "wsp"))
        .collect();
    assert_eq!(files.len(), 3, "{files:?}");
    for f in &files {
        assert!(f.starts_with(root.path().join("whisper")), "{f:?}");
    }
    assert!(files_under(root.path()).iter().all(|f| !f.starts_with(&outside)));
    store.shutdown(Duration::from_secs(10)).unwrap();
}

#[test]
fn nan_values_and_impossible_timestamps_are_counted_not_stored() {
    let root = tempfile::tempdir().unwrap();
    let (store, _) = Store::open(frozen(root.path())).unwrap();
    let t0 = base_time() as f64;
    let n = store
        .ingest([
            ("v.nan", t0, f64::NAN),
            ("v.neg", -5.0, 1.0),
            ("v.huge", 1e12, 1.0),
            ("v.inf", f64::INFINITY, 1.0),
            ("v.ok", t0, f64::INFINITY),
        ])
        .unwrap();
    assert_eq!(n, 1, "an infinite value is a value, as in carbon");
    let c = store.counters();
    assert_eq!(c.nan_values.load(Ordering::Relaxed), 1);
    assert_eq!(c.bad_timestamps.load(Ordering::Relaxed), 3);
    assert_eq!(c.metrics_received.load(Ordering::Relaxed), 5);
    drop(store);
}

#[test]
fn a_file_that_is_not_whisper_loses_its_points_with_its_path_logged_and_counted() {
    let root = tempfile::tempdir().unwrap();
    let bad = wsp(root.path(), "broken.file");
    fs::create_dir_all(bad.parent().unwrap()).unwrap();
    fs::write(&bad, b"this is not whisper").unwrap();
    let (store, _) = Store::open(options(root.path())).unwrap();
    let t0 = base_time() as f64;
    store.ingest([("broken.file", t0, 1.0), ("fine.file", t0, 2.0)]).unwrap();
    store.flush();
    assert_eq!(fs::read(&bad).unwrap(), b"this is not whisper", "left as it was");
    assert_eq!(read_file(&wsp(root.path(), "fine.file"), t0 as i64, 60), [(t0 as i64, 2.0)]);
    assert_eq!(store.counters().dropped_points.load(Ordering::Relaxed), 1);
    assert!(store.fetch("broken.file", t0 as i64, None, whisper::now()).is_err());
    store.shutdown(Duration::from_secs(10)).unwrap();
}

#[test]
fn rate_limited_creates_wait_instead_of_dropping_points() {
    let names: Vec<String> = (0..8).map(|i| format!("slow.create.m{i}")).collect();
    let t0 = base_time() as f64;
    let root = tempfile::tempdir().unwrap();
    let mut o = options(root.path());
    o.max_creates_per_minute = RateLimit::Limited(1.0);
    let (store, _) = Store::open(o).unwrap();
    store.ingest(names.iter().map(|n| (n.as_str(), t0, 3.0))).unwrap();
    // One create token a minute: the first metric gets a file, the others are put off.
    let deadline = Instant::now() + Duration::from_secs(10);
    while (store.cache_size() > 7 || store.counters().deferred_creates.load(Ordering::Relaxed) == 0)
        && Instant::now() < deadline
    {
        std::thread::sleep(Duration::from_millis(10));
    }
    assert_eq!(files_under(&root.path().join("whisper")).len(), 1, "one create a minute");
    assert!(store.counters().deferred_creates.load(Ordering::Relaxed) > 0);
    assert_eq!(store.cache_size(), 7, "the others wait in the cache");
    // Shutdown writes them all, without the create limit.
    store.shutdown(Duration::from_secs(30)).unwrap();
    assert_eq!(files_under(&root.path().join("whisper")).len(), 8);
}

#[test]
fn memory_per_cached_point_stays_under_40_bytes() {
    let root = tempfile::tempdir().unwrap();
    let (store, _) = Store::open(frozen(root.path())).unwrap();
    let t0 = base_time();
    let names: Vec<String> = (0..10_000).map(|i| format!("mem.host{:04}.cpu", i)).collect();
    for k in 0..10 {
        store.ingest(names.iter().map(|n| (n.as_str(), (t0 + 60 * k) as f64, k as f64))).unwrap();
    }
    assert_eq!(store.cache_size(), 100_000);
    let per_point = store.cache_bytes() as f64 / 100_000.0;
    eprintln!("cache: {per_point:.1} bytes per point ({} bytes)", store.cache_bytes());
    assert!(per_point <= 40.0, "{per_point} bytes per cached point");
    drop(store);
}

/// graphite-web's read path on the same file and the same cache: `whisper.fetch`, then
/// `merge_with_cache` with what carbon's cache-query would answer.
const MERGE_SCRIPT: &str = r#"
import whisper
from graphite.readers.utils import merge_with_cache
cases = json.load(sys.stdin)
out = []
for c in cases:
    (start, end, step), values = whisper.fetch(c['path'], c['from'], c['until'], now=c['now'])
    info = whisper.info(c['path'])
    cached = [tuple(p) for p in c['cached']]
    values = merge_with_cache(cached, start, step, values, info['aggregationMethod'],
                              info['archives'][0]['secondsPerPoint'])
    out.append([start, end, step, values])
json.dump(out, sys.stdout)
"#;

#[test]
fn fetch_merges_the_cache_as_graphite_web_does() {
    if !have_graphite_web() {
        return;
    }
    let root = tempfile::tempdir().unwrap();
    write_conf(
        root.path(),
        "[merge]\npattern = ^merge\\.\nretentions = 10s:1h,60s:1d,300s:7d\n",
        "[max]\npattern = max$\nxFilesFactor = 0\naggregationMethod = max\n\
         [sum]\npattern = sum$\nxFilesFactor = 0.2\naggregationMethod = sum\n\
         [last]\npattern = last$\naggregationMethod = last\n",
    );
    let now = whisper::now();
    let t0 = now - now % 300 - 1800;
    let names = ["merge.avg", "merge.max", "merge.sum", "merge.last"];
    // Files with older data, written by one store run.
    {
        let (store, _) = Store::open(options(root.path())).unwrap();
        for n in names {
            let pts: Vec<(&str, f64, f64)> =
                (0..60).map(|i| (n, (t0 + 10 * i) as f64, (i % 7) as f64)).collect();
            store.ingest(pts).unwrap();
        }
        store.shutdown(Duration::from_secs(10)).unwrap();
    }
    // Cached points that overlap the files, repeat timestamps, fall between steps and
    // before the range; held in the cache by a frozen store.
    let (store, _) = Store::open(frozen(root.path())).unwrap();
    let mut cached: Vec<(i64, f64)> = Vec::new();
    let mut x = 17u64;
    for i in 0..80 {
        x = x.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
        let t = t0 + 300 + (x >> 33) as i64 % 900 + if i % 9 == 0 { 3 } else { 0 };
        cached.push((t, ((x >> 20) % 1000) as f64 / 8.0));
    }
    for n in names {
        store.ingest(cached.iter().map(|&(t, v)| (n, t as f64, v))).unwrap();
    }
    let mut cases = Vec::new();
    let mut ours = Vec::new();
    for n in names {
        for (from, until) in
            [(t0 - 10, now), (t0 + 400, t0 + 900), (now - 7200, now), (now - 86400 * 3, now)]
        {
            let series = store.fetch(n, from, Some(until), now).unwrap().unwrap();
            ours.push(json!([series.from, series.until, series.step, series.values]));
            let answered: Vec<(u32, f64)> = store.cache_points(n);
            cases.push(json!({
                "path": wsp(root.path(), n), "from": from, "until": until, "now": now,
                "cached": answered,
            }));
        }
    }
    let theirs = reference(MERGE_SCRIPT, &Value::Array(cases.clone()));
    let theirs = theirs.as_array().unwrap();
    assert_eq!(theirs.len(), ours.len());
    for ((o, t), case) in ours.iter().zip(theirs).zip(&cases) {
        assert_eq!(o, t, "case {case}");
    }
    drop(store);
}

#[test]
fn without_flow_control_a_full_cache_drops_and_counts() {
    let root = tempfile::tempdir().unwrap();
    let mut o = frozen(root.path());
    o.max_cache_points = 10;
    o.drop_when_full = true;
    let (store, _) = Store::open(o).unwrap();
    let t0 = base_time() as f64;
    let names: Vec<String> = (0..15).map(|i| format!("overflow.m{i}")).collect();
    assert_eq!(store.ingest(names[..10].iter().map(|n| (n.as_str(), t0, 1.0))).unwrap(), 10);
    assert!(!store.is_full(), "listeners never wait without flow control");
    assert_eq!(store.ingest(names[10..].iter().map(|n| (n.as_str(), t0, 1.0))).unwrap(), 0);
    assert_eq!(store.counters().overflow.load(Ordering::Relaxed), 5);
    assert_eq!(store.cache_size(), 10);
    drop(store);
}

#[test]
fn added_self_metrics_are_written_with_the_stores_own() {
    let dir = tempfile::tempdir().unwrap();
    let mut o = options(dir.path());
    o.self_metrics = Some(("carbon".into(), Duration::from_millis(300), "a".into()));
    let (store, _) = Store::open(o).unwrap();
    let mut calls = 0;
    store.add_self_metrics(Box::new(move || {
        calls += 1;
        vec![("alert.rounds".into(), f64::from(calls))]
    }));
    let deadline = Instant::now() + Duration::from_secs(20);
    let found = loop {
        let found = store.find("carbon.agents.*.alert.rounds").unwrap();
        if !found.is_empty() || Instant::now() > deadline {
            break found;
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    assert_eq!(found.len(), 1, "written under the agent's prefix");
    let path = &found[0].path;
    let own = format!("{}.updateOperations", path.trim_end_matches(".alert.rounds"));
    assert_eq!(store.find(&own).unwrap().len(), 1, "beside the store's own");
    assert!(store.cache_points(path).iter().all(|(_, v)| *v >= 1.0));
    store.shutdown(Duration::from_secs(10)).unwrap();
}
