//! whisper-create, whisper-update, whisper-set-aggregation-method and
//! whisper-set-xfilesfactor against the Python scripts, comparing output and file bytes.

use std::path::Path;

use crate::fixtures::{self, Fixture};
use crate::harness::{Bench, NOW, args};

fn two(dir: &Path) {
    Fixture::new("a.wsp", &[(60, 10), (300, 10)]).xff(0.7).points(0, 60, 5, &[1.0, 2.0]).write(dir);
}

#[test]
fn create_matches_python() {
    let Some(b) = Bench::new() else { return };
    let p = b.path("new.wsp");
    let none = |_: &Path| {};
    let mut cases = vec![
        args(&[&p, "60:1440"]),
        args(&[&p, "1m:1d", "5m:30d", "1h:1y"]),
        args(&[&p, "300:100", "60:1000"]),
        args(&[&p, "7s:1d", "--xFilesFactor", "0.7"]),
        args(&[&p, "60:10", "--xFilesFactor=0", "--sparse"]),
        args(&[&p, "60:10", "--xFilesFactor", "1", "--fallocate"]),
        args(&[&p, "60:10", "--sparse", "--fallocate"]),
        args(&[&p, "--x", "0.25", "--agg", "last", "10s:6h", "1m:7d"]),
        args(&[&p, "60:10", "--overwrite"]),
    ];
    for m in ["average", "sum", "last", "max", "min", "avg_zero", "absmax", "absmin"] {
        cases.push(args(&[&p, "60:10", "300:10", "--aggregationMethod", m]));
    }
    for a in &cases {
        b.same(&none, "whisper-create", a);
    }
    // Overwriting an existing file.
    let old = |d: &Path| std::fs::write(d.join("new.wsp"), b"old contents").unwrap();
    b.same(&old, "whisper-create", &args(&[&p, "60:10", "--overwrite"]));
    // Refusals whisper.py reports as WhisperException.
    b.same(&old, "whisper-create", &args(&[&p, "60:10"]));
    for bad in [
        args(&[&p, "60:10", "60:20"]),
        args(&[&p, "60:10", "90:20"]),
        args(&[&p, "60:10", "120:5"]),
        args(&[&p, "60:4", "300:10"]),
    ] {
        b.same(&none, "whisper-create", &bad);
    }
    b.help_exit("whisper-create", &args(&[&p]));
    b.help_exit("whisper-create", &[]);
}

#[test]
fn create_refusals_leave_no_file_behind() {
    let Some(b) = Bench::new() else { return };
    let p = b.path("new.wsp");
    // The script creates the file, then fails on the method or the xFilesFactor and leaves an
    // empty file; we check first and leave nothing. The message is the same.
    for bad in [
        args(&[&p, "60:10", "--aggregationMethod", "median"]),
        args(&[&p, "60:10", "--xFilesFactor", "1.5"]),
        args(&[&p, "60:10", "--xFilesFactor", "-0.5"]),
    ] {
        let (py, ours) = b.same_output(&|_| {}, "whisper-create", &bad);
        assert_eq!(py.files.get("new.wsp").map(Vec::len), Some(0));
        assert!(ours.files.is_empty());
    }
    // With --overwrite the script deletes the old file before it finds the archives invalid;
    // we keep it.
    let old = |d: &Path| std::fs::write(d.join("new.wsp"), b"old contents").unwrap();
    let (py, ours) = b.both(&old, "whisper-create", &args(&[&p, "60:10", "60:20", "--overwrite"]));
    assert_eq!(py.out.stdout, format!("Overwriting existing file: {p}\n"));
    assert!(py.files.is_empty());
    assert_eq!(ours.out.stdout, "");
    assert_eq!((&ours.out.stderr, ours.out.code), (&py.out.stderr, 1));
    assert_eq!(ours.files["new.wsp"], b"old contents");
    // A bad retention crashes the script with a ValueError.
    b.crash_vs_error(&|_| {}, "whisper-create", &args(&[&p, "60:1mo"]), &["Invalid unit 'mo'"]);
    b.crash_vs_error(&|_| {}, "whisper-create", &args(&[&p, "60"]), &["'60'"]);
}

#[test]
fn create_estimate_matches_python() {
    let Some(b) = Bench::new() else { return };
    for a in [
        args(&["--estimate", "60:1440"]),
        args(&["--estimate", "60:1440,300:2016"]),
        args(&["--estimate", "1s:1d", "1m:30d", "1h:5y"]),
        args(&["--estimate", "10s:6h", "1m:7d", "10m:5y", "--aggregationMethod", "sum"]),
        args(&["--estimate", "60:1"]),
        args(&["--estimate", "1s:100y"]),
        // Not validated, as in the script.
        args(&["--estimate", "60:10", "60:20"]),
        args(&["--est", "0:10"]),
    ] {
        b.same(&|_| {}, "whisper-create", &a);
    }
    let (py, ours) = b.both(&|_| {}, "whisper-create", &args(&["--estimate"]));
    assert_eq!((py.out.code, ours.out.code), (1, 1));
    // Lines before a bad definition are printed, then the script crashes.
    b.crash_vs_error(&|_| {}, "whisper-create", &args(&["--estimate", "60:10", "bad"]), &["'bad'"]);
}

#[test]
fn update_matches_python() {
    let Some(b) = Bench::new() else { return };
    let p = b.path("a.wsp");
    let t = |d: i64| (NOW + d).to_string();
    for points in [
        vec![format!("{}:5", t(0))],
        vec![format!("{}:1.25", t(-61))],
        vec!["N:42".to_string()],
        vec!["N:nan".to_string()],
        vec!["N:-nan".to_string()],
        vec!["N:-inf".to_string()],
        vec!["N:1_000.5".to_string()],
        vec!["N: 7 ".to_string()],
        vec![format!("{}:1e300", t(-2000))],
        vec![format!("{}:1", t(-1)), format!("{}:2", t(-61)), format!("{}:3", t(-121))],
        vec![format!("{}:1", t(-100)), format!("{}:9", t(-100))],
        vec![format!("{}:4", t(-400)), "N:5".to_string(), format!("{}:6", t(-2900))],
        // update_many drops what is too old and writes future points.
        vec![format!("{}:1", t(-9999)), format!("{}:2", t(300))],
        // Timestamps go through int(): signs, spaces and underscores.
        vec![format!("+{}:3", t(-60)), format!(" {} :4", t(-120))],
        vec!["1_700_000_000:8".to_string()],
    ] {
        let mut a = vec![p.clone()];
        a.extend(points);
        b.same(&two, "whisper-update", &a);
    }
    // update() refuses times outside the file.
    b.same(&two, "whisper-update", &args(&[&p, &format!("{}:1", t(-3000))]));
    b.same(&two, "whisper-update", &args(&[&p, &format!("{}:1", t(60))]));
    b.help_exit("whisper-update", &args(&[&p]));
}

#[test]
fn update_errors_are_clear() {
    let Some(b) = Bench::new() else { return };
    let p = b.path("a.wsp");
    let t = NOW.to_string();
    for (point, expect) in [
        (format!("{t}:abc"), "'abc'"),
        (format!("{t}.5:1"), "'1700000000.5'"),
        ("12".to_string(), "'12'"),
        (format!("{t}:1:2"), "'1700000000:1:2'"),
    ] {
        let (_, ours) = b.crash_vs_error(&two, "whisper-update", &args(&[&p, &point]), &[expect]);
        assert!(ours.files.contains_key("a.wsp"));
    }
    let missing = b.path("missing.wsp");
    b.crash_vs_error(
        &|_| {},
        "whisper-update",
        &args(&[&missing, "N:1"]),
        &["No such file", &missing],
    );
    // A future timestamp that does not fit 32 bits: struct.error in whisper.py.
    b.crash_vs_error(
        &two,
        "whisper-update",
        &args(&[&p, "N:1", "99999999999:2"]),
        &["99999999999", "cannot be stored"],
    );
}

#[test]
fn set_aggregation_method_matches_python() {
    let Some(b) = Bench::new() else { return };
    let p = b.path("a.wsp");
    for a in [
        args(&[&p, "max"]),
        args(&[&p, "avg_zero", "0.25"]),
        args(&[&p, "absmin", "1"]),
        args(&[&p, "sum", "0.7", "ignored-fourth"]),
        args(&[&p, "median"]),
        args(&[&p, "last", "abc"]),
        args(&[&p, "last", "1.5"]),
    ] {
        b.same(&two, "whisper-set-aggregation-method", &a);
    }
    for m in whisper::AggregationMethod::ALL {
        b.same(&two, "whisper-set-aggregation-method", &args(&[&p, m.name()]));
    }
    b.help_exit("whisper-set-aggregation-method", &args(&[&p]));
    // A missing file: same message on stderr, then the help.
    let missing = b.path("missing.wsp");
    let (py, ours) = b.both(&|_| {}, "whisper-set-aggregation-method", &args(&[&missing, "max"]));
    assert_eq!(ours.out.stderr, py.out.stderr);
    assert_eq!((ours.out.code, py.out.code), (1, 1));
}

#[test]
fn set_xfilesfactor_matches_python() {
    let Some(b) = Bench::new() else { return };
    let p = b.path("a.wsp");
    for a in [
        args(&[&p, "0.7"]),
        args(&[&p, "0"]),
        args(&[&p, "1"]),
        args(&[&p, "1e-3"]),
        args(&[&p, "1.5"]),
        args(&[&p, "-0.5"]),
        args(&[&p, "inf"]),
    ] {
        b.same(&two, "whisper-set-xfilesfactor", &a);
    }
    let missing = b.path("missing.wsp");
    let (py, ours) = b.both(&|_| {}, "whisper-set-xfilesfactor", &args(&[&missing, "0.5"]));
    assert_eq!(ours.out.stderr, py.out.stderr);
    assert_eq!((ours.out.code, py.out.code), (1, 1));
    // NaN passes whisper.py's range check and makes the file unreadable; we refuse it.
    let (py, ours) = b.both(&two, "whisper-set-xfilesfactor", &args(&[&p, "nan"]));
    assert_eq!(py.out.code, 0);
    assert_eq!(ours.out.code, 1);
    assert_eq!(ours.out.stderr, "[ERROR] Invalid xFilesFactor nan, not between 0 and 1\n");
}

#[test]
fn tools_work_on_every_fixture() {
    let Some(b) = Bench::new() else { return };
    let all = fixtures::all();
    let setup = fixtures::setup(&all);
    let t = |d: i64| (NOW + d).to_string();
    for f in &all {
        let p = b.path(&f.name);
        b.same(&setup, "whisper-update", &args(&[&p, &format!("{}:0.5", t(-30)), "N:-2"]));
        b.same(&setup, "whisper-set-xfilesfactor", &args(&[&p, "0.3"]));
    }
}
