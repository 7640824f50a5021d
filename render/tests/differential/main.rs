//! Differential test: our render crate against Debian's graphite-web 1.1.8 on the same Whisper
//! files, target by target (`targets.txt`), compared on graphite-web's `format=json` answer.
//!
//! One test function does everything, so graphite-web starts once per run: it writes the
//! fixture ([`fixture`]), starts graphite-web on a free loopback port ([`reference`]) and
//! registers the tagged series with it, opens a [`store::Store`] on the same directory, and
//! then for every case asks graphite-web over HTTP and evaluates the target in-process with
//! the same `from`, `until` and `now`. Every difference is collected; the test fails at the
//! end with one summary of all of them (also written to
//! `target/tmp/differential-report.txt`), except the deliberate ones listed with their reason
//! in `known-differences.txt`.
//!
//! Without graphite-web (`/usr/bin/python3` cannot import it) the test prints why and passes,
//! unless `GRAPHITE_REQUIRE_REFERENCE=1`, when it fails.
//!
//! Knobs: `DIFF_FILTER=text` runs only the cases whose line contains `text`;
//! `DIFF_VERBOSE=1` prints every case; `DIFF_KEEP=1` keeps the data directory and prints
//! where it is.

mod cases;
mod compare;
mod fixture;
mod reference;

use std::collections::{BTreeMap, BTreeSet};
use std::fmt::Write as _;
use std::panic::AssertUnwindSafe;
use std::path::Path;
use std::time::{Duration, Instant};

use cases::Case;
use compare::Answer;
use fixture::NOW;
use render::{Context, Limits, UsageCell};
use store::{Store, StoreOptions};

/// How one case came out.
enum Outcome {
    Same,
    /// A difference listed in `known-differences.txt`.
    Known,
    /// A listed difference that is gone.
    StaleKnown,
    /// An unexpected difference.
    Differs(String),
}

/// Our answer for `case`, evaluated in-process over the store.
fn ours(store: &Store, case: &Case) -> Answer {
    let run = || {
        let expr = match render::parse::parse(&case.target) {
            Ok(e) => e.apply_templates(&case.templates),
            Err(e) => return Answer::Error { status: e.status(), message: e.to_string() },
        };
        let limits = Limits {
            deadline: Some(Instant::now() + Duration::from_secs(20)),
            ..Limits::default()
        };
        let usage = UsageCell::default();
        let mut ctx = Context::new(store, &limits, &usage, case.from, case.until, NOW);
        if let Some(x) = case.x_files_factor {
            ctx.x_files_factor = x;
        }
        match ctx.eval_series(&expr) {
            Ok(series) => compare::from_series(series, case.max_data_points, case.no_null_points),
            Err(e) => Answer::Error { status: e.status(), message: e.to_string() },
        }
    };
    match std::panic::catch_unwind(AssertUnwindSafe(run)) {
        Ok(a) => a,
        Err(p) => {
            let msg = p
                .downcast_ref::<String>()
                .cloned()
                .or_else(|| p.downcast_ref::<&str>().map(|s| s.to_string()))
                .unwrap_or_default();
            Answer::Error { status: 999, message: format!("PANIC: {msg}") }
        }
    }
}

/// graphite-web's answer for `case`.
fn theirs(port: u16, case: &Case) -> Answer {
    match reference::request(port, &format!("/render?{}", case.query()), None) {
        Ok(r) => compare::from_json(r.status, &r.body),
        Err(e) => panic!("graphite-web did not answer `{}`: {e}", case.target),
    }
}

/// A short description of an answer (verbose output).
fn describe(answer: &Answer) -> String {
    match answer {
        Answer::Series(s) => {
            let points: usize = s.iter().map(|s| s.points.len()).sum();
            let nulls: usize =
                s.iter().map(|s| s.points.iter().filter(|p| p.0.is_none()).count()).sum();
            format!("{} series, {points} points, {nulls} null", s.len())
        }
        Answer::Error { status, message } => format!("error {status}: {message}"),
    }
}

/// The function our side does not know, from an `UnknownFunction` error.
fn unknown_function(answer: &Answer) -> Option<String> {
    match answer {
        Answer::Error { message, .. } => {
            message.strip_prefix("Received request for unknown function: ").map(str::to_string)
        }
        Answer::Series(_) => None,
    }
}

#[test]
fn render_matches_graphite_web() {
    if let Some(why) = reference::unavailable() {
        if std::env::var(reference::REQUIRE_ENV).as_deref() == Ok("1") {
            panic!(
                "graphite-web is required ({}=1) but unavailable: {why}",
                reference::REQUIRE_ENV
            );
        }
        println!("SKIP render_matches_graphite_web: {why}");
        return;
    }
    let here = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/differential");
    let filter = std::env::var("DIFF_FILTER").ok();
    let verbose = std::env::var("DIFF_VERBOSE").is_ok_and(|v| v == "1");
    let cases: Vec<Case> = cases::load_targets(&here.join("targets.txt"))
        .into_iter()
        .filter(|c| filter.as_deref().is_none_or(|f| c.text.contains(f)))
        .collect();
    let known = cases::load_known(&here.join("known-differences.txt"));

    let tmp = tempfile::tempdir().expect("temp dir");
    let whisper_dir = tmp.path().join("whisper");
    std::fs::create_dir_all(&whisper_dir).expect("mkdir whisper");
    fixture::write(&whisper_dir);

    let started = Instant::now();
    let web = reference::GraphiteWeb::start(&whisper_dir, &tmp.path().join("graphite-web"));
    let tagged: Vec<String> = fixture::names().into_iter().filter(|n| n.contains(';')).collect();
    let form: Vec<String> =
        tagged.iter().map(|n| format!("path={}", reference::encode(n))).collect();
    let r = reference::request(web.port(), "/tags/tagMultiSeries", Some(&form.join("&")))
        .expect("tag the series in graphite-web");
    assert_eq!(r.status, 200, "tagMultiSeries: {}\n{}", r.body, web.log_tail());
    println!("graphite-web up on port {} in {:?}", web.port(), started.elapsed());

    let mut options = StoreOptions::new(&whisper_dir).expect("store options");
    options.wal = None;
    options.self_metrics = None;
    let (store, report) = Store::open(options).expect("open the store");
    assert_eq!(report.metrics, fixture::names().len(), "the store sees every fixture metric");

    let mut outcomes = Vec::with_capacity(cases.len());
    let mut unknown: BTreeMap<String, usize> = BTreeMap::new();
    for case in &cases {
        let reference = theirs(web.port(), case);
        let mine = ours(&store, case);
        let diff = compare::difference(&mine, &reference);
        if let Some(f) = unknown_function(&mine) {
            *unknown.entry(f).or_default() += 1;
        }
        let outcome = match (diff, known.get(&case.text)) {
            (None, None) => Outcome::Same,
            (None, Some(_)) => Outcome::StaleKnown,
            (Some(_), Some(_)) => Outcome::Known,
            (Some(d), None) => Outcome::Differs(d),
        };
        if verbose {
            let what = match &outcome {
                Outcome::Same => "same".to_string(),
                Outcome::Known => "known difference".to_string(),
                Outcome::StaleKnown => "STALE known difference".to_string(),
                Outcome::Differs(d) => format!("DIFFERS: {d}"),
            };
            println!(
                "{}: {} -> {what} [graphite-web: {}]",
                case.line,
                case.text,
                describe(&reference)
            );
        }
        outcomes.push(outcome);
    }
    let elapsed = started.elapsed();
    drop(web);
    drop(store);

    let mut report = String::new();
    let count = |f: fn(&Outcome) -> bool| outcomes.iter().filter(|o| f(o)).count();
    let same = count(|o| matches!(o, Outcome::Same));
    let known_n = count(|o| matches!(o, Outcome::Known));
    let failed: Vec<(&Case, String)> = cases
        .iter()
        .zip(&outcomes)
        .filter_map(|(c, o)| match o {
            Outcome::Differs(d) => Some((c, d.clone())),
            Outcome::StaleKnown => Some((
                c,
                "listed in known-differences.txt but now the same: remove it from the list".into(),
            )),
            _ => None,
        })
        .collect();
    let _ = writeln!(
        report,
        "differential test: {} cases in {elapsed:.1?}: {same} same, {known_n} known differences, {} failing",
        cases.len(),
        failed.len()
    );
    if !unknown.is_empty() {
        let list: Vec<String> = unknown.iter().map(|(f, n)| format!("{f} ({n})")).collect();
        let _ = writeln!(report, "functions we do not have yet (cases): {}", list.join(", "));
    }
    let failing_functions: BTreeSet<&str> = failed
        .iter()
        .filter_map(|(c, _)| {
            c.target.split('(').next().filter(|f| c.target.contains('(') && !f.contains('.'))
        })
        .collect();
    if !failing_functions.is_empty() {
        let list: Vec<&str> = failing_functions.into_iter().collect();
        let _ = writeln!(report, "outermost functions of failing cases: {}", list.join(", "));
    }
    for (case, diff) in &failed {
        let _ = writeln!(report, "  targets.txt:{}: {}\n      {diff}", case.line, case.text);
    }
    let path = Path::new(env!("CARGO_TARGET_TMPDIR")).join("differential-report.txt");
    let _ = std::fs::write(&path, &report);
    println!("{report}(report also in {})", path.display());
    if std::env::var("DIFF_KEEP").is_ok_and(|v| v == "1") {
        println!("data kept in {}", tmp.keep().display());
    }
    assert!(
        failed.is_empty(),
        "{} of {} cases differ from graphite-web (summary above)",
        failed.len(),
        cases.len()
    );
}
