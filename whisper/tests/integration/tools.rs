//! The cross-file tools against whisper.py: `merge`, `diff`, the `whisper-fill` script's logic
//! and the `whisper-resize` script, on random files. Results and the bytes of every file
//! afterwards must be identical.
//!
//! Debian's `whisper-resize --aggregate` crashes on Python 3, so the aggregating resize is
//! checked on its own: every interval of the new archive with enough known old points holds
//! their aggregate, and nothing else is written.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use proptest::prelude::*;
use serde_json::{Value, json};
use whisper::{AggregationMethod, CreateOptions, OpenOptions, ResizeOptions, Retention};

use crate::differential::{archives, compare_files, method, value, worker, xff};
use crate::reference::{PyWorker, f2h};

/// How a random input file is made: its settings and batches of `update_many`.
#[derive(Clone, Debug)]
struct FileSpec {
    xff: f64,
    method: AggregationMethod,
    /// `(seconds to advance the clock first, points as (age, value))`.
    batches: Vec<(i64, Vec<(i64, f64)>)>,
}

fn max_retention(archives: &[Retention]) -> i64 {
    archives.iter().map(Retention::retention).max().unwrap_or(1) as i64
}

fn file_spec(archives: &[Retention]) -> impl Strategy<Value = FileSpec> + use<> {
    let max_retention = max_retention(archives);
    let batch =
        (0..max_retention / 2 + 1, prop::collection::vec((0..max_retention + 5, value()), 0..40));
    (xff(), method(), prop::collection::vec(batch, 0..5))
        .prop_map(|(xff, method, batches)| FileSpec { xff, method, batches })
}

/// Creates the file with this crate (which the differential tests hold to whisper.py's bytes)
/// and returns the clock after the last batch.
fn build(path: &Path, archives: &[Retention], spec: &FileSpec, start: i64) -> i64 {
    let mut w = CreateOptions::new()
        .x_files_factor(spec.xff)
        .aggregation_method(spec.method)
        .create(path, archives)
        .expect("create");
    let mut now = start;
    for (advance, points) in &spec.batches {
        now += advance;
        let points: Vec<(i64, f64)> = points.iter().map(|&(age, v)| (now - age, v)).collect();
        w.update_many(&points, now).expect("update_many");
    }
    now
}

/// Copies `ours` to a sibling path for whisper.py and returns it.
fn twin(ours: &Path) -> PathBuf {
    let theirs = ours.with_extension("py.wsp");
    std::fs::copy(ours, &theirs).expect("copy");
    theirs
}

fn agree(
    what: &str,
    ours: Result<Value, String>,
    theirs: Result<Value, String>,
) -> Result<(), String> {
    match (&ours, &theirs) {
        (Ok(a), Ok(b)) if a == b => Ok(()),
        (Err(_), Err(_)) => Ok(()),
        _ => Err(format!("{what}: ours {ours:?}, whisper.py {theirs:?}")),
    }
}

fn take_worker() -> Option<std::sync::MutexGuard<'static, Option<PyWorker>>> {
    worker()
}

// ---- merge ------------------------------------------------------------------------------

#[derive(Clone, Debug)]
struct MergeCase {
    archives: Vec<Retention>,
    src: FileSpec,
    dst: FileSpec,
    start: i64,
    /// Added to the later of the two files' clocks.
    extra: i64,
    /// As ages from `now`; `time_to` may be a little in the future.
    time_from: Option<i64>,
    time_to: Option<i64>,
}

fn merge_case() -> impl Strategy<Value = MergeCase> {
    archives().prop_flat_map(|archives| {
        let max = max_retention(&archives);
        (
            file_spec(&archives),
            file_spec(&archives),
            prop_oneof![Just(1_700_000_000i64), 2 * max..3 * max],
            0..max,
            prop::option::of(-10..2 * max),
            prop::option::of(-10..2 * max),
        )
            .prop_map(move |(src, dst, start, extra, time_from, time_to)| MergeCase {
                archives: archives.clone(),
                src,
                dst,
                start,
                extra,
                time_from,
                time_to,
            })
    })
}

fn run_merge(py: &mut PyWorker, dir: &Path, c: &MergeCase) -> Result<(), String> {
    let src = dir.join("src.wsp");
    let dst = dir.join("dst.wsp");
    let now =
        build(&src, &c.archives, &c.src, c.start).max(build(&dst, &c.archives, &c.dst, c.start))
            + c.extra;
    let (src_py, dst_py) = (twin(&src), twin(&dst));
    let time_from = c.time_from.map(|age| now - age);
    let time_to = c.time_to.map(|age| now - age);
    let ours = whisper::merge(&src, &dst, time_from, time_to, now)
        .map(|()| Value::Null)
        .map_err(|e| e.to_string());
    let theirs = py.call(json!({
        "op": "merge", "from": src_py, "to": dst_py,
        "time_from": time_from, "time_to": time_to, "now": now,
    }));
    agree(&format!("merge at now={now}"), ours, theirs)?;
    compare_files(&dst, &dst_py, "after merge")?;
    compare_files(&src, &src_py, "after merge (source)")
}

// ---- diff -------------------------------------------------------------------------------

#[derive(Clone, Debug)]
struct DiffCase {
    archives: Vec<Retention>,
    a: FileSpec,
    b: FileSpec,
    /// `b` starts as a copy of `a` (so most points agree) before its own batches.
    b_from_a: bool,
    start: i64,
    extra: i64,
    ignore_empty: bool,
    /// `None`: no `until`; `Some(None)`: 0 (which means now); `Some(Some(age))`.
    until: Option<Option<i64>>,
}

fn diff_case() -> impl Strategy<Value = DiffCase> {
    archives().prop_flat_map(|archives| {
        let max = max_retention(&archives);
        (
            file_spec(&archives),
            file_spec(&archives),
            any::<bool>(),
            0..max,
            any::<bool>(),
            // whisper.py raises IndexError for an `until` in the future; see `whisper::diff`.
            prop::option::of(prop::option::of(0..max + 20)),
        )
            .prop_map(move |(a, b, b_from_a, extra, ignore_empty, until)| DiffCase {
                archives: archives.clone(),
                a,
                b,
                b_from_a,
                start: 1_700_000_000,
                extra,
                ignore_empty,
                until,
            })
    })
}

fn diff_json(diffs: Vec<whisper::ArchiveDiff>) -> Value {
    let opt = |v: Option<f64>| v.map(f2h);
    diffs
        .into_iter()
        .map(|d| {
            let points: Vec<Value> =
                d.points.iter().map(|&(t, a, b)| json!([t, opt(a), opt(b)])).collect();
            json!([d.archive, points, d.total])
        })
        .collect()
}

fn run_diff(py: &mut PyWorker, dir: &Path, c: &DiffCase) -> Result<(), String> {
    let a = dir.join("a.wsp");
    let b = dir.join("b.wsp");
    let now_a = build(&a, &c.archives, &c.a, c.start);
    let now_b = if c.b_from_a {
        std::fs::copy(&a, &b).expect("copy");
        let mut w = OpenOptions::new().write(true).open(&b).expect("open");
        let mut now = now_a;
        for (advance, points) in &c.b.batches {
            now += advance / 4;
            let points: Vec<(i64, f64)> = points.iter().map(|&(age, v)| (now - age, v)).collect();
            w.update_many(&points, now).expect("update_many");
        }
        now
    } else {
        build(&b, &c.archives, &c.b, c.start)
    };
    let now = now_a.max(now_b) + c.extra;
    let (until, until_py) = match c.until {
        None => (None, Value::Null),
        Some(None) => (Some(0), json!(0)),
        Some(Some(age)) => (Some(now - age), json!(now - age)),
    };
    let ours =
        whisper::diff(&a, &b, c.ignore_empty, until, now).map(diff_json).map_err(|e| e.to_string());
    let theirs = py.call(json!({
        "op": "diff", "a": a, "b": b, "ignore_empty": c.ignore_empty, "until": until_py,
        "now": now,
    }));
    agree(&format!("diff at now={now}"), ours, theirs)
}

// ---- fill -------------------------------------------------------------------------------

#[derive(Clone, Debug)]
struct FillCase {
    src_archives: Vec<Retention>,
    dst_archives: Vec<Retention>,
    src: FileSpec,
    dst: FileSpec,
    start: i64,
    extra: i64,
    /// The fraction of the script's float `time.time()`.
    fraction: f64,
}

fn fill_case() -> impl Strategy<Value = FillCase> {
    (archives(), archives(), any::<bool>()).prop_flat_map(|(a, b, same)| {
        // Often the same layout (replicas), sometimes different ones.
        let dst_archives = if same { a.clone() } else { b };
        let max = max_retention(&a).max(max_retention(&dst_archives));
        (
            file_spec(&a),
            file_spec(&dst_archives),
            0..max,
            prop::sample::select(vec![0.0, 0.25, 0.5, 0.999]),
        )
            .prop_map(move |(src, dst, extra, fraction)| FillCase {
                src_archives: a.clone(),
                dst_archives: dst_archives.clone(),
                src,
                dst,
                start: 1_700_000_000,
                extra,
                fraction,
            })
    })
}

fn run_fill(py: &mut PyWorker, dir: &Path, c: &FillCase) -> Result<(), String> {
    let src = dir.join("src.wsp");
    let dst = dir.join("dst.wsp");
    let now = build(&src, &c.src_archives, &c.src, c.start).max(build(
        &dst,
        &c.dst_archives,
        &c.dst,
        c.start,
    )) + c.extra;
    let now = now as f64 + c.fraction;
    let (src_py, dst_py) = (twin(&src), twin(&dst));
    let ours =
        whisper::fill(&src, &dst, now, false).map(|()| Value::Null).map_err(|e| e.to_string());
    let theirs = py.call(json!({"op": "fill", "src": src_py, "dst": dst_py, "now": now}));
    agree(&format!("fill at now={now}"), ours, theirs)?;
    compare_files(&dst, &dst_py, "after fill")?;
    compare_files(&src, &src_py, "after fill (source)")
}

// ---- resize -----------------------------------------------------------------------------

#[derive(Clone, Debug)]
struct ResizeCase {
    old_archives: Vec<Retention>,
    new_archives: Vec<Retention>,
    old: FileSpec,
    start: i64,
    extra: i64,
    xff: Option<f64>,
    method: Option<AggregationMethod>,
    keep_backup: bool,
    new_file: bool,
}

fn resize_case() -> impl Strategy<Value = ResizeCase> {
    (archives(), archives()).prop_flat_map(|(old_archives, new_archives)| {
        let max = max_retention(&old_archives);
        (
            file_spec(&old_archives),
            0..max,
            prop::option::of(xff()),
            prop::option::of(method()),
            any::<bool>(),
            prop::sample::select(vec![false, false, false, true]),
        )
            .prop_map(move |(old, extra, xff, method, keep_backup, new_file)| ResizeCase {
                old_archives: old_archives.clone(),
                new_archives: new_archives.clone(),
                old,
                start: 1_700_000_000,
                extra,
                xff,
                method,
                keep_backup,
                new_file,
            })
    })
}

fn read_if_exists(path: &Path) -> Option<Vec<u8>> {
    std::fs::read(path).ok()
}

fn run_resize(py: &mut PyWorker, dir: &Path, c: &ResizeCase) -> Result<(), String> {
    let ours_dir = dir.join("ours");
    let theirs_dir = dir.join("theirs");
    std::fs::create_dir_all(&ours_dir).expect("mkdir");
    std::fs::create_dir_all(&theirs_dir).expect("mkdir");
    let ours = ours_dir.join("m.wsp");
    let theirs = theirs_dir.join("m.wsp");
    let now = build(&ours, &c.old_archives, &c.old, c.start) + c.extra;
    std::fs::copy(&ours, &theirs).expect("copy");

    let mut options = ResizeOptions::new();
    options.x_files_factor(c.xff).aggregation_method(c.method).keep_backup(c.keep_backup);
    let mut argv: Vec<String> = vec![theirs.to_string_lossy().into_owned()];
    argv.extend(c.new_archives.iter().map(|a| format!("{}:{}", a.seconds_per_point(), a.points())));
    if let Some(x) = c.xff {
        argv.push(format!("--xFilesFactor={x}"));
    }
    if let Some(m) = c.method {
        argv.push(format!("--aggregationMethod={m}"));
    }
    if !c.keep_backup {
        argv.push("--nobackup".into());
    }
    if c.new_file {
        options.new_file(Some(ours_dir.join("new.wsp")));
        argv.push(format!("--newfile={}", theirs_dir.join("new.wsp").display()));
    }
    let mine = whisper::resize(&ours, &c.new_archives, &options, now, &mut |_| {});
    let out = py
        .call(json!({"op": "cli", "tool": "whisper-resize", "argv": argv, "now": now}))
        .map_err(|e| format!("worker: {e}"))?;
    let code = out["code"].as_i64().unwrap_or(-1);
    if mine.is_ok() != (code == 0) {
        return Err(format!(
            "resize at now={now}: ours {mine:?}, whisper-resize exit {code}: {}",
            out["stderr"].as_str().unwrap_or_default()
        ));
    }
    for name in ["m.wsp", "m.wsp.bak", "m.wsp.tmp", "new.wsp"] {
        let (a, b) = (read_if_exists(&ours_dir.join(name)), read_if_exists(&theirs_dir.join(name)));
        if a != b {
            return Err(format!(
                "resize at now={now}: {name} differs (ours {:?} bytes, whisper-resize {:?} bytes)",
                a.map(|v| v.len()),
                b.map(|v| v.len())
            ));
        }
    }
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 100, ..ProptestConfig::default() })]

    #[test]
    fn merge_matches_whisper_py(c in merge_case()) {
        let Some(mut guard) = take_worker() else { return Ok(()) };
        let py = guard.as_mut().expect("checked");
        let dir = tempfile::tempdir().unwrap();
        if let Err(e) = run_merge(py, dir.path(), &c) {
            prop_assert!(false, "{}", e);
        }
    }

    #[test]
    fn diff_matches_whisper_py(c in diff_case()) {
        let Some(mut guard) = take_worker() else { return Ok(()) };
        let py = guard.as_mut().expect("checked");
        let dir = tempfile::tempdir().unwrap();
        if let Err(e) = run_diff(py, dir.path(), &c) {
            prop_assert!(false, "{}", e);
        }
    }

    #[test]
    fn fill_matches_whisper_fill(c in fill_case()) {
        let Some(mut guard) = take_worker() else { return Ok(()) };
        let py = guard.as_mut().expect("checked");
        let dir = tempfile::tempdir().unwrap();
        if let Err(e) = run_fill(py, dir.path(), &c) {
            prop_assert!(false, "{}", e);
        }
    }

    #[test]
    fn resize_matches_whisper_resize(c in resize_case()) {
        let Some(mut guard) = take_worker() else { return Ok(()) };
        let py = guard.as_mut().expect("checked");
        let dir = tempfile::tempdir().unwrap();
        if let Err(e) = run_resize(py, dir.path(), &c) {
            prop_assert!(false, "{}", e);
        }
    }
}

#[test]
fn merge_and_diff_refuse_unalike_archives_as_whisper_py_does() {
    let dir = tempfile::tempdir().unwrap();
    let a = dir.path().join("a.wsp");
    let b = dir.path().join("b.wsp");
    whisper::create(&a, &[Retention::new(60, 10)]).unwrap();
    whisper::create(&b, &[Retention::new(60, 11)]).unwrap();
    let before = std::fs::read(&b).unwrap();
    let e = whisper::merge(&a, &b, None, None, 1_700_000_000).unwrap_err();
    assert_eq!(
        e.to_string(),
        format!(
            "{} and {} archive configurations are unalike. Resize the input before merging",
            a.display(),
            b.display()
        )
    );
    assert_eq!(std::fs::read(&b).unwrap(), before);
    let e = whisper::diff(&a, &b, false, None, 1_700_000_000).unwrap_err();
    assert!(e.to_string().ends_with("Resize the input before diffing"), "{e}");

    let Some(mut guard) = take_worker() else { return };
    let py = guard.as_mut().expect("checked");
    let theirs = py.call(json!({"op": "merge", "from": a, "to": b, "now": 1_700_000_000}));
    assert_eq!(
        theirs.unwrap_err(),
        format!(
            "NotImplementedError: {} and {} archive configurations are unalike. Resize the \
             input before merging",
            a.display(),
            b.display()
        )
    );
}

// ---- resize --aggregate, on its own ---------------------------------------------------------

#[derive(Clone, Debug)]
struct AggregateCase {
    old_archives: Vec<Retention>,
    new_archives: Vec<Retention>,
    old: FileSpec,
    xff: f64,
    method: AggregationMethod,
}

fn aggregate_case() -> impl Strategy<Value = AggregateCase> {
    (archives(), archives(), xff(), method()).prop_flat_map(
        |(old_archives, new_archives, xff, method)| {
            dense_file_spec(&old_archives).prop_map(move |old| AggregateCase {
                old_archives: old_archives.clone(),
                new_archives: new_archives.clone(),
                old,
                xff,
                method,
            })
        },
    )
}

/// Many points spread over the whole file, so most intervals have some.
fn dense_file_spec(archives: &[Retention]) -> impl Strategy<Value = FileSpec> + use<> {
    let max_retention = max_retention(archives);
    let points = prop::collection::vec((0..max_retention, value()), 20..150);
    (xff(), method(), points).prop_map(|(xff, method, points)| FileSpec {
        xff,
        method,
        batches: vec![(0, points)],
    })
}

fn gcd(a: i64, b: i64) -> i64 {
    if b == 0 { a } else { gcd(b, a % b) }
}

/// The old file's points as the resize reads them: each archive from `now - retention + step`
/// to `now`, finest first, each coarser one adding only what is older than everything so far.
fn old_timeline(path: &Path, now: i64) -> BTreeMap<i64, Option<f64>> {
    let mut w = OpenOptions::new().open(path).expect("open");
    let mut archives = w.header().archives().to_vec();
    archives.sort_by_key(|a| a.seconds_per_point());
    let mut timeline = BTreeMap::new();
    for a in archives {
        let from = now - a.retention() as i64 + i64::from(a.seconds_per_point());
        let series = w.fetch(from, Some(now), now).expect("fetch").unwrap_or_default();
        let oldest = timeline.keys().next().copied();
        for (t, v) in series.points() {
            if oldest.is_none_or(|o| t < o) {
                timeline.insert(t, v);
            }
        }
    }
    timeline
}

fn check_aggregate(dir: &Path, c: &AggregateCase) -> Result<(), TestCaseError> {
    let path = dir.join("agg.wsp");
    let spps: Vec<i64> = c
        .old_archives
        .iter()
        .chain(&c.new_archives)
        .map(|a| i64::from(a.seconds_per_point()))
        .collect();
    let lcm = spps.iter().fold(1, |l, &s| l / gcd(l, s) * s);
    // A `now` aligned to every step: the script's windows start at `now - retention + now %
    // step`, which is an interval boundary only then.
    let start = 1_700_000_000 - 1_700_000_000 % lcm;
    let built = build(&path, &c.old_archives, &c.old, start);
    let now = built + (lcm - built % lcm) % lcm;
    let timeline = old_timeline(&path, now);

    let mut options = ResizeOptions::new();
    options
        .aggregate(true)
        .x_files_factor(Some(c.xff))
        .aggregation_method(Some(c.method))
        .keep_backup(false);
    whisper::resize(&path, &c.new_archives, &options, now, &mut |_| {})
        .map_err(|e| TestCaseError::fail(e.to_string()))?;

    let mut new = OpenOptions::new().open(&path).expect("open resized");
    let archives = new.header().archives().to_vec();
    let last = archives.len() - 1;
    let step = i64::from(archives[last].seconds_per_point());
    let retention = archives[last].retention() as i64;
    // Checked: the intervals of the coarsest archive older than every finer archive, where
    // only the aggregate of old points is written. (Finer archives also receive the coarser
    // passes' points, which whisper's update_many routes by age.)
    let checked_until = match last {
        0 => now,
        _ => {
            let t = now - archives[last - 1].retention() as i64;
            t - t.rem_euclid(step)
        }
    };
    let mut expected = BTreeMap::new();
    let mut left = now - retention;
    while left < checked_until {
        let window: Vec<Option<f64>> = timeline.range(left..left + step).map(|(_, v)| *v).collect();
        let known = window.iter().flatten().count();
        if known > 0 && known as f64 / window.len() as f64 >= c.xff {
            let v = c.method.aggregate(&window).expect("known values");
            expected.insert(left, v.to_bits());
        }
        left += step;
    }
    let stored: BTreeMap<i64, u64> = new
        .archive_slots(last)
        .expect("slots")
        .into_iter()
        .map(|(t, v)| (i64::from(t), v.to_bits()))
        .filter(|&(t, _)| t >= now - retention && t < checked_until)
        .collect();
    prop_assert_eq!(stored, expected, "coarsest archive at now={}", now);
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 150, ..ProptestConfig::default() })]

    #[test]
    fn resize_aggregate_writes_the_aggregate_of_each_interval_with_enough_points(
        c in aggregate_case()
    ) {
        let dir = tempfile::tempdir().unwrap();
        check_aggregate(dir.path(), &c)?;
    }
}

#[test]
fn resize_aggregate_averages_minutes_into_five_minutes() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("m.wsp");
    let now = 1_700_000_100; // a multiple of 300
    let mut w = whisper::create(&path, &[Retention::new(60, 30)]).unwrap();
    // 10 minutes: all five of the first 5-minute interval, two of the second.
    let points: Vec<(i64, f64)> =
        [(900, 1.0), (840, 2.0), (780, 3.0), (720, 4.0), (660, 5.0), (600, 6.0), (540, 8.0)]
            .iter()
            .map(|&(age, v)| (now - age, v))
            .collect();
    w.update_many(&points, now).unwrap();
    drop(w);
    let mut options = ResizeOptions::new();
    options.aggregate(true).x_files_factor(Some(0.4)).keep_backup(false);
    whisper::resize(&path, &[Retention::new(300, 10)], &options, now, &mut |_| {}).unwrap();
    let s = whisper::fetch(&path, now - 1200, None, now).unwrap().unwrap();
    assert_eq!(s.step, 300);
    let values: Vec<(i64, f64)> = s.points().filter_map(|(t, v)| v.map(|v| (t, v))).collect();
    // 3.0 = mean of 1..5; 7.0 = mean of 6 and 8, with 2 of 5 known (0.4 >= xff 0.4).
    assert_eq!(values, [(now - 900, 3.0), (now - 600, 7.0)]);
    assert!(!path.with_extension("wsp.bak").exists(), "no backup with keep_backup(false)");
}

/// Upstream's script re-adds a whole coarser archive when it holds no point older than the
/// finer ones, which leaves its timeline unsorted and puts values into the wrong intervals.
/// Here the 6:4 archive is read from `now - 18`, which picks the 2:10 archive (it covers 18 s)
/// and returns exactly the points already read from it.
#[test]
fn resize_aggregate_ignores_a_coarser_archive_with_nothing_older() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("m.wsp");
    let now = 1_700_000_004; // a multiple of 6
    let mut w = CreateOptions::new()
        .x_files_factor(0.0)
        .create(&path, &[Retention::new(2, 10), Retention::new(6, 4)])
        .unwrap();
    let points: Vec<(i64, f64)> = (0..=10).map(|k| (now - 2 * k, 100.0 - 2.0 * k as f64)).collect();
    w.update_many(&points, now).unwrap();
    drop(w);
    let mut options = ResizeOptions::new();
    options.aggregate(true).aggregation_method(Some(AggregationMethod::Sum)).keep_backup(false);
    whisper::resize(&path, &[Retention::new(6, 10)], &options, now, &mut |_| {}).unwrap();
    let slots: BTreeMap<i64, f64> = OpenOptions::new()
        .open(&path)
        .unwrap()
        .archive_slots(0)
        .unwrap()
        .into_iter()
        .filter(|&(t, _)| t != 0)
        .map(|(t, v)| (i64::from(t), v))
        .collect();
    // The old points are those of ages 16, 14, ..., 0 (value 100 - age).
    let expected: BTreeMap<i64, f64> =
        [(now - 18, 84.0 + 86.0), (now - 12, 88.0 + 90.0 + 92.0), (now - 6, 94.0 + 96.0 + 98.0)]
            .into();
    assert_eq!(slots, expected);
}
