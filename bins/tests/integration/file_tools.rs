//! whisper-resize, whisper-merge, whisper-fill and whisper-diff against the Python scripts.

use std::path::Path;

use whisper::AggregationMethod;

use crate::fixtures::{self, AWKWARD, Fixture};
use crate::harness::{Bench, NOW, args, run_ours};

fn source(dir: &Path) {
    Fixture::new("a.wsp", &[(60, 30), (300, 30), (3600, 10)])
        .method(AggregationMethod::Max)
        .xff(0.2)
        .points(0, 60, 25, &AWKWARD)
        .points(2000, 300, 25, &[1.0, -2.0, 3.5])
        .points(10_000, 3600, 5, &[9.0])
        .write(dir);
}

#[test]
fn resize_matches_python() {
    let Some(b) = Bench::new() else { return };
    let p = b.path("a.wsp");
    let new = b.path("b.wsp");
    for a in [
        args(&[&p, "60:60", "600:100"]),
        args(&[&p, "30:10"]),
        args(&[&p, "1m:1h", "--nobackup"]),
        args(&[&p, "60:30", "300:30", "3600:10", "--xFilesFactor", "0.9"]),
        args(&[&p, "120:100", "--aggregationMethod", "sum", "--force"]),
        args(&[&p, "300:10", "--newfile", &new]),
        args(&[&p, "--newfile", &new, "--nob", "10:1000"]),
    ] {
        b.same(&source, "whisper-resize", &a);
    }
    // A leftover temporary file is removed first.
    let leftover = |d: &Path| {
        source(d);
        std::fs::write(d.join("a.wsp.tmp"), b"junk").unwrap();
    };
    b.same(&leftover, "whisper-resize", &args(&[&p, "60:100"]));
    // Every fixture, into a new layout.
    let all = fixtures::all();
    for f in &all {
        let fp = b.path(&f.name);
        b.same(
            &fixtures::setup(std::slice::from_ref(f)),
            "whisper-resize",
            &args(&[&fp, "30:100", "600:50"]),
        );
    }
    b.help_exit("whisper-resize", &args(&[&p]));
    // A missing file: the script's message, then its help.
    let missing = b.path("missing.wsp");
    let (py, ours) = b.both(&|_| {}, "whisper-resize", &args(&[&missing, "60:10"]));
    assert_eq!(ours.out.stderr, py.out.stderr);
    assert_eq!((ours.out.code, py.out.code), (1, 1));
}

#[test]
fn resize_errors_are_clear() {
    let Some(b) = Bench::new() else { return };
    let p = b.path("a.wsp");
    // whisper.create raises InvalidConfiguration after the first two lines are printed.
    let (_, ours) = b.crash_vs_error(
        &source,
        "whisper-resize",
        &args(&[&p, "60:10", "90:20"]),
        &["Higher precision archives' precision must evenly divide"],
    );
    assert!(ours.files.contains_key("a.wsp") && !ours.files.contains_key("a.wsp.tmp"));
    b.crash_vs_error(&source, "whisper-resize", &args(&[&p, "60:1mo"]), &["Invalid unit 'mo'"]);
    let new = b.path("b.wsp");
    let exists = |d: &Path| {
        source(d);
        std::fs::write(d.join("b.wsp"), b"x").unwrap();
    };
    b.crash_vs_error(
        &exists,
        "whisper-resize",
        &args(&[&p, "60:10", "--newfile", &new]),
        &["already exists"],
    );
}

#[test]
fn resize_aggregate_prints_upstream_progress() {
    // Debian's script crashes on Python 3 here; upstream whisper prints these lines.
    let dir = tempfile::tempdir().unwrap();
    Fixture::new("a.wsp", &[(60, 5)]).points(0, 60, 4, &[1.0, 2.0, 3.0, 4.0]).write(dir.path());
    let p = dir.path().join("a.wsp").to_string_lossy().into_owned();
    let out = run_ours(
        "whisper-resize",
        &args(&[&p, "120:10", "1:600", "--aggregate"]),
        &NOW.to_string(),
        "UTC",
    );
    assert_eq!(out.stderr, "");
    assert_eq!(out.code, 0);
    let expected = format!(
        "Retrieving all data from the archives\n\
         Creating new whisper database: {p}.tmp\n\
         Created: {p}.tmp (7360 bytes)\n\
         Migrating data with aggregation...\n\
         oldtimestamps: [1699999800, 1699999860, 1699999920, 1699999980]\n\
         (1699999400,1700000001,1)\n\
         timepoints_to_update: range(1699999400, 1700000001)\n\
         (1699998880,1700000200,120)\n\
         timepoints_to_update: range(1699998880, 1700000200, 120)\n\
         Renaming old database to: {p}.bak\n\
         Renaming new database to: {p}\n"
    );
    assert_eq!(out.stdout, expected);
    let series = whisper::fetch(&p, NOW - 600, None, NOW).unwrap().unwrap();
    assert_eq!(series.step, 1);
    let known: Vec<f64> = series.values.iter().flatten().copied().collect();
    // The old points, plus (as upstream does) the 2-minute aggregates, which update_many
    // stores in the finest archive that covers their age.
    assert_eq!(known, [4.0, 4.0, 2.5, 3.0, 2.0, 1.0, 1.0]);
}

fn pair(dir: &Path) {
    let layout = [(60, 30), (300, 30)];
    Fixture::new("a.wsp", &layout).xff(0.0).points(0, 60, 25, &AWKWARD).write(dir);
    Fixture::new("b.wsp", &layout)
        .xff(0.0)
        .points(120, 60, 20, &[1.5, f64::NAN, 0.0, 7.0])
        .points(2400, 300, 20, &[4.0, 5.0])
        .write(dir);
}

#[test]
fn merge_matches_python() {
    let Some(b) = Bench::new() else { return };
    let (a, bb) = (b.path("a.wsp"), b.path("b.wsp"));
    let t = |d: i64| (NOW + d).to_string();
    for extra in [
        vec![],
        vec!["--from".to_string(), t(-900)],
        vec!["--from".into(), t(-6000), "--until".into(), t(-1000)],
        vec!["--until".into(), t(-100_000)],
    ] {
        let mut x = vec![a.clone(), bb.clone()];
        x.extend(extra.clone());
        b.same(&pair, "whisper-merge", &x);
        let mut y = vec![bb.clone(), a.clone()];
        y.extend(extra);
        b.same(&pair, "whisper-merge", &y);
    }
    let missing = b.path("missing.wsp");
    b.same(&pair, "whisper-merge", &args(&[&a, &missing]));
    b.same(&pair, "whisper-merge", &args(&[&missing, &a]));
    b.help_exit("whisper-merge", &args(&[&a]));
    // Different archives: NotImplementedError in whisper.py.
    let unalike = |d: &Path| {
        pair(d);
        Fixture::new("c.wsp", &[(60, 10)]).write(d);
    };
    let c = b.path("c.wsp");
    b.crash_vs_error(&unalike, "whisper-merge", &args(&[&a, &c]), &["unalike", &a, &c]);
    b.crash_vs_error(
        &pair,
        "whisper-merge",
        &args(&[&a, &bb, "--from", &t(-10), "--until", &t(-100)]),
        &["time_to must be >= time_from"],
    );
}

#[test]
fn fill_matches_python() {
    let Some(mut b) = Bench::new() else { return };
    let (a, bb) = (b.path("a.wsp"), b.path("b.wsp"));
    for now in ["1700000000", "1700000000.75", "1700000031.5"] {
        b.at(now);
        b.same(&pair, "whisper-fill", &args(&[&a, &bb]));
        b.same(&pair, "whisper-fill", &args(&[&bb, &a]));
        b.same(&pair, "whisper-fill", &args(&["--lock", &bb, &a]));
    }
    b.help_exit("whisper-fill", &args(&[&a]));
    // whisper.info(dst) is None for a missing file and the script crashes.
    let missing = b.path("missing.wsp");
    b.crash_vs_error(&pair, "whisper-fill", &args(&[&a, &missing]), &["No such file", &missing]);
}

#[test]
fn diff_matches_python() {
    let Some(b) = Bench::new() else { return };
    let (a, bb) = (b.path("a.wsp"), b.path("b.wsp"));
    b.prepare(&pair);
    let until = (NOW - 1000).to_string();
    for extra in [
        &[][..],
        &["--summary"],
        &["--ignore-empty"],
        &["--columns"],
        &["--no-headers"],
        &["--columns", "--no-headers"],
        &["--summary", "--columns"],
        &["--summary", "--no-headers", "--ignore-empty"],
        &["--until", &until],
        &["--until", "0"],
        &["--json"],
        &["--json", "--summary"],
        &["--json", "--ignore-empty", "--until", &until],
    ] {
        let mut x = vec![a.clone(), bb.clone()];
        x.extend(extra.iter().map(|s| s.to_string()));
        b.same_read_only("whisper-diff", &x);
        b.same_read_only("whisper-diff", &[a.clone(), a.clone()]);
    }
    b.help_exit("whisper-diff", &args(&[&a]));
    let missing = b.path("missing.wsp");
    b.crash_vs_error(&pair, "whisper-diff", &args(&[&a, &missing]), &["No such file", &missing]);
    let unalike = |d: &Path| {
        pair(d);
        Fixture::new("c.wsp", &[(60, 10)]).write(d);
    };
    let c = b.path("c.wsp");
    b.crash_vs_error(&unalike, "whisper-diff", &args(&[&a, &c]), &["unalike"]);
}

#[test]
fn diff_of_every_fixture_pair_matches_python() {
    let Some(b) = Bench::new() else { return };
    // The same layout with different methods: values differ after propagation.
    let all: Vec<Fixture> =
        fixtures::all().into_iter().filter(|f| f.name.starts_with("m-")).collect();
    b.prepare(&fixtures::setup(&all));
    for pair in all.windows(2) {
        let (x, y) = (b.path(&pair[0].name), b.path(&pair[1].name));
        b.same_read_only("whisper-diff", &[x.clone(), y.clone()]);
        b.same_read_only("whisper-diff", &args(&[&x, &y, "--json"]));
    }
}
