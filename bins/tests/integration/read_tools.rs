//! whisper-info, whisper-dump and whisper-fetch against the Python scripts.

use std::io::Read;
use std::process::{Command, Stdio};

use crate::fixtures::{self, Fixture};
use crate::harness::{Bench, NOW, args, assert_clear_error, bin, run_ours};

#[test]
fn info_matches_python_on_every_fixture_and_field() {
    let Some(b) = Bench::new() else { return };
    let all = fixtures::all();
    b.prepare(&fixtures::setup(&all));
    for f in &all {
        let p = b.path(&f.name);
        for extra in [
            &[][..],
            &["--json"],
            &["--js"],
            &["aggregationMethod"],
            &["maxRetention"],
            &["xFilesFactor"],
            &["archives"],
            &["fileSize"],
            &["nosuchfield"],
            &[""],
            &["--json", "fileSize"],
        ] {
            let mut a = vec![p.clone()];
            a.extend(extra.iter().map(|s| s.to_string()));
            b.same_read_only("whisper-info", &a);
        }
    }
    // Options after the path, extra arguments ignored, as optparse does.
    let p = b.path("two.wsp");
    b.same_read_only("whisper-info", &args(&[&p, "archives", "ignored", "--json"]));
    b.help_exit("whisper-info", &[]);
}

#[test]
fn info_on_a_missing_file_is_a_clear_error() {
    let Some(b) = Bench::new() else { return };
    let p = b.path("missing.wsp");
    // whisper.info returns None and the script crashes with a TypeError.
    b.crash_vs_error(
        &|_| {},
        "whisper-info",
        std::slice::from_ref(&p),
        &["No such file or directory", &p],
    );
}

#[test]
fn corrupt_headers_print_whisper_py_messages() {
    let Some(b) = Bench::new() else { return };
    let p = b.path("bad.wsp");
    let short = |d: &std::path::Path| std::fs::write(d.join("bad.wsp"), b"short").unwrap();
    let (_, ours) = b.same_output(&short, "whisper-info", std::slice::from_ref(&p));
    assert_eq!(ours.out.stderr, format!("[ERROR] Unable to read header ({p})\n"));
    b.same_output(&short, "whisper-fetch", std::slice::from_ref(&p));
    // A header that promises 3 archives and holds 1.
    let truncated = |d: &std::path::Path| {
        let mut h = vec![0, 0, 0, 1, 0, 0, 0, 60, 0x3f, 0, 0, 0, 0, 0, 0, 3];
        h.extend_from_slice(&[0, 0, 0, 40, 0, 0, 0, 60, 0, 0, 0, 1]);
        std::fs::write(d.join("bad.wsp"), h).unwrap();
    };
    let (_, ours) = b.same_output(&truncated, "whisper-info", std::slice::from_ref(&p));
    assert_eq!(ours.out.stderr, format!("[ERROR] Unable to read archive1 metadata ({p})\n"));
    // whisper-dump reads the header itself and crashes where our library refuses the file.
    b.crash_vs_error(&short, "whisper-dump", std::slice::from_ref(&p), &[&p]);
}

#[test]
fn dump_matches_python_on_every_fixture() {
    let Some(b) = Bench::new() else { return };
    let all = fixtures::all();
    b.prepare(&fixtures::setup(&all));
    for f in &all {
        let p = b.path(&f.name);
        b.same_read_only("whisper-dump", std::slice::from_ref(&p));
    }
    let p = b.path("two.wsp");
    for extra in [
        &["--pretty"][..],
        &["--pretty", "-t", "%Y-%m-%d %H:%M:%S %Z %a %b %j"],
        &["--pretty", "-t%s|%c"],
        &["--pretty", "--time-format=%d/%m/%y"],
        &["--pretty", "--time", "%H"],
        &["--pretty", "-t", ""],
        &["-t", "%Y"],
        &["--pr"],
    ] {
        let mut a = vec![p.clone()];
        a.extend(extra.iter().map(|s| s.to_string()));
        b.same_read_only("whisper-dump", &a);
    }
}

#[test]
fn pretty_times_follow_the_time_zone() {
    let Some(mut b) = Bench::new() else { return };
    // Points on both sides of the 2023-11-05 change from daylight saving time.
    let dst = Fixture::new("dst.wsp", &[(3600, 24 * 30)]).points(0, 3600, 24 * 12, &[1.0, 2.0]);
    b.tz("America/New_York").prepare(&fixtures::setup(std::slice::from_ref(&dst)));
    let p = b.path("dst.wsp");
    b.same_read_only("whisper-dump", &args(&[&p, "--pretty"]));
    b.same_read_only("whisper-dump", &args(&[&p, "--pretty", "-t", "%c %Z %z"]));
    b.same_read_only("whisper-fetch", &args(&[&p, "--pretty", "--from", "1699000000"]));
    b.same_read_only(
        "whisper-fetch",
        &args(&[&p, "--pretty", "-t", "%F %T %Z", "--from=1699000000"]),
    );
}

#[test]
fn dump_of_a_missing_file_matches_python() {
    let Some(b) = Bench::new() else { return };
    let p = b.path("missing.wsp");
    b.same(&|_| {}, "whisper-dump", &[p]);
}

#[test]
fn fetch_matches_python_on_every_fixture_and_option() {
    let Some(b) = Bench::new() else { return };
    let all = fixtures::all();
    b.prepare(&fixtures::setup(&all));
    let t = |d: i64| (NOW + d).to_string();
    for f in &all {
        let p = b.path(&f.name);
        let cases: Vec<Vec<String>> = vec![
            vec![],
            vec!["--from".into(), t(-600)],
            vec!["--from".into(), t(-3000), "--until".into(), t(-100)],
            vec![format!("--from={}", t(-90_000))],
            vec!["--json".into(), "--from".into(), t(-1200)],
            vec!["--drop".into(), "nulls".into(), "--from".into(), t(-1200)],
            vec!["--drop=zeroes".into(), "--from".into(), t(-1200)],
            vec!["--drop".into(), "empty".into(), "--json".into(), "--from".into(), t(-1200)],
            vec!["--pretty".into(), "--from".into(), t(-900)],
        ];
        for extra in cases {
            let mut a = vec![p.clone()];
            a.extend(extra);
            b.same_read_only("whisper-fetch", &a);
        }
    }
}

#[test]
fn fetch_edge_cases_match_python() {
    let Some(b) = Bench::new() else { return };
    let all = fixtures::all();
    b.prepare(&fixtures::setup(&all));
    let p = b.path("two.wsp");
    let t = |d: i64| (NOW + d).to_string();
    for extra in [
        // Range in the future, beyond the retention, reversed, empty, partly in the future.
        vec!["--from".to_string(), t(100)],
        vec!["--from".into(), t(-9_000_000), "--until".into(), t(-8_000_000)],
        vec!["--from".into(), t(-100), "--until".into(), t(-200)],
        vec!["--from".into(), t(-120), "--until".into(), t(-120)],
        vec!["--from".into(), t(-600), "--until".into(), t(10_000)],
        // optparse reads a leading 0 as octal, 0x as hex.
        vec!["--from".into(), "0".into()],
        vec!["--from".into(), "0x6553f000".into()],
        vec!["--from".into(), "014524767000".into()],
        vec!["--fr".into(), t(-300), "--un".into(), t(-60)],
        vec!["--from".into(), "-5".into(), "--until".into(), t(-60)],
        vec!["-t".into(), "%H:%M".into(), "--pretty".into(), "--from".into(), t(-600)],
    ] {
        let mut a = vec![p.clone()];
        a.extend(extra);
        b.same_read_only("whisper-fetch", &a);
    }
    // A missing file is an IOError the script reports.
    let missing = b.path("missing.wsp");
    b.same_read_only("whisper-fetch", &[missing]);
    b.help_exit("whisper-fetch", &[]);
    b.help_exit("whisper-fetch", &args(&[&p, &p]));
}

#[test]
fn bad_option_values_are_usage_errors() {
    let Some(b) = Bench::new() else { return };
    let p = b.path("x.wsp");
    for (tool, a) in [
        ("whisper-fetch", args(&[&p, "--from", "yesterday"])),
        ("whisper-fetch", args(&[&p, "--drop", "everything"])),
        ("whisper-fetch", args(&[&p, "--from", "09"])),
        ("whisper-create", args(&[&p, "60:10", "--xFilesFactor", "half"])),
        ("whisper-diff", args(&[&p, &p, "--until", "soon"])),
        ("whisper-info", args(&[&p, "--bogus"])),
        ("whisper-set-xfilesfactor", args(&[&p, "abc"])),
        ("whisper-set-xfilesfactor", args(&[&p])),
        ("whisper-dump", args(&[])),
        // optparse reads -0.5 as an option; argparse (set-xfilesfactor) as a number.
        ("whisper-set-aggregation-method", args(&[&p, "last", "-0.5"])),
    ] {
        let (py, ours) = b.both(&|_| {}, tool, &a);
        assert_eq!(py.out.code, 2, "{tool} {a:?}: {:?}", py.out);
        assert_eq!(ours.out.code, 2, "{tool} {a:?}: {:?}", ours.out);
        assert!(!ours.out.stderr.is_empty(), "{tool} {a:?}");
    }
    let out = run_ours("whisper-fetch", &args(&[&p, "--from", "yesterday"]), "0", "UTC");
    assert!(out.stderr.contains("invalid integer value: 'yesterday'"), "{}", out.stderr);
}

#[test]
fn a_closed_pipe_ends_quietly() {
    let dir = tempfile::tempdir().unwrap();
    Fixture::new("big.wsp", &[(60, 100_000), (900, 10_000)]).write(dir.path());
    let mut child = Command::new(bin("whisper-dump"))
        .arg(dir.path().join("big.wsp"))
        .env("WHISPER_NOW", NOW.to_string())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut head = [0u8; 100];
    child.stdout.take().unwrap().read_exact(&mut head).unwrap();
    // The read end is dropped here: the next write fails with EPIPE.
    let output = child.wait_with_output().unwrap();
    assert_eq!(output.status.code(), Some(0));
    assert!(output.stderr.is_empty(), "{}", String::from_utf8_lossy(&output.stderr));
}

#[test]
fn dump_of_a_large_file_is_complete() {
    // 1.3 MB, 110,000 slots: every slot is printed.
    let dir = tempfile::tempdir().unwrap();
    Fixture::new("big.wsp", &[(60, 100_000), (900, 10_000)])
        .points(0, 60, 2000, &[1.5, 0.1, -3.0])
        .write(dir.path());
    let p = dir.path().join("big.wsp").to_string_lossy().into_owned();
    let out = run_ours("whisper-dump", &[p], &NOW.to_string(), "UTC");
    assert_eq!(out.code, 0);
    assert_eq!(out.stdout.lines().count(), 21 + 110_000);
    assert!(out.stdout.contains("\n1999: 1699999980,        1.5\n"));
}

#[test]
fn invalid_whisper_now_is_refused() {
    let out = run_ours("whisper-fetch", &args(&["x.wsp"]), "soon", "UTC");
    assert_eq!(out.code, 2);
    assert!(out.stderr.contains("WHISPER_NOW"), "{}", out.stderr);
    assert_clear_error(
        &run_ours("whisper-info", &args(&["/nonexistent/x.wsp"]), "0", "UTC"),
        "whisper-info",
        &[],
        &["/nonexistent/x.wsp"],
    );
}
