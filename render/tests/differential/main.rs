//! Differential test: our render crate against Debian's graphite-web 1.1.8 on the same Whisper
//! files, target by target (`targets.txt`), compared on graphite-web's `format=json` answer.
//!
//! One test function does everything, so graphite-web starts once per run: it writes the
//! fixture ([`fixture`]), starts graphite-web on a free loopback port ([`reference`]) and
//! registers the tagged series with it, opens a [`store::Store`] on the same directory and
//! serves it with render's own HTTP API on another free port. Then, for every case, it asks
//! graphite-web over HTTP and compares its answer with ours obtained two ways:
//!
//! - **in-process**: parse, apply templates, evaluate over the store with the same `from`,
//!   `until`, `now` and `xFilesFactor`, then render's `maxDataPoints` consolidation and JSON
//!   writer (a panic is caught and reported as such);
//! - **over HTTP**: the same `/render` query string sent to our server (parameter handling
//!   included).
//!
//! Endpoint cases (`/metrics/find?...`, `/tags/...`) go over HTTP only. Every difference is
//! collected; the test fails at the end with one summary of all of them (also written to
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
use std::sync::Arc;
use std::time::{Duration, Instant};

use cases::Case;
use compare::Answer;
use fixture::NOW;
use render::events::EventStore;
use render::http::{HttpConfig, StoreBackend};
use render::{Context, Limits, UsageCell};
use store::{Store, StoreOptions};
use tokio_util::sync::CancellationToken;

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

/// Our answer for `case`, evaluated in-process over the store and written by render's JSON
/// writer.
fn ours_in_process(store: &Store, case: &Case) -> Answer {
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
            Ok(mut series) => {
                if let Some(n) = case.max_data_points
                    && !series.is_empty()
                {
                    render::format::apply_max_data_points(&mut series, n);
                }
                let mut body = Vec::new();
                render::format::write_json(&mut body, &series, false, case.no_null_points);
                compare::from_json(200, &String::from_utf8_lossy(&body))
            }
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

/// The `/render` answer of the server on `port` for `case`.
/// Also returns how long the request took (sending it and reading the whole answer, not
/// decoding it).
fn over_http(port: u16, case: &Case, who: &str) -> (Answer, Duration) {
    let query = format!("/render?{}", case.query());
    match reference::request_timed(port, &query, None) {
        Ok((r, took)) => (compare::from_json(r.status, &r.body), took),
        Err(e) => panic!("{who} did not answer `{}`: {e}", case.target),
    }
}

/// The difference between our answer to an endpoint case and graphite-web's.
fn endpoint_difference(ours_port: u16, theirs_port: u16, case: &Case) -> Option<String> {
    let get = |port, who| match reference::request(port, &case.target, None) {
        Ok(r) => r,
        Err(e) => panic!("{who} did not answer `{}`: {e}", case.target),
    };
    let (ours, theirs) = (get(ours_port, "our server"), get(theirs_port, "graphite-web"));
    if ours.status != 200 || theirs.status != 200 {
        return (ours.status != theirs.status).then(|| {
            format!("status {}, graphite-web {} ({:.200})", ours.status, theirs.status, theirs.body)
        });
    }
    // The `id` of a tag or tag value is a row id of graphite-web's SQL tag database; ours is
    // a number stable while the process runs (store::index::TagInfo), on purpose: both are
    // dropped before comparing.
    let strip_ids = case.target.starts_with("/tags");
    let parse = |body: &str| {
        serde_json::from_str::<serde_json::Value>(body).map(|mut v| {
            if strip_ids {
                drop_ids(&mut v);
            }
            v
        })
    };
    match (parse(&ours.body), parse(&theirs.body)) {
        (Ok(a), Ok(b)) => compare::json_difference(&a, &b, ""),
        (a, b) => (ours.body != theirs.body).then(|| {
            format!(
                "bodies differ (JSON: ours {}, graphite-web {}): {:.200} vs {:.200}",
                a.is_ok(),
                b.is_ok(),
                ours.body,
                theirs.body
            )
        }),
    }
}

/// Removes every `id` key from the objects in `v`.
fn drop_ids(v: &mut serde_json::Value) {
    match v {
        serde_json::Value::Object(map) => {
            map.remove("id");
            map.values_mut().for_each(drop_ids);
        }
        serde_json::Value::Array(items) => items.iter_mut().for_each(drop_ids),
        _ => {}
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

/// Our HTTP server, on a runtime of its own, stopped when dropped.
struct OurServer {
    port: u16,
    shutdown: CancellationToken,
    runtime: Option<tokio::runtime::Runtime>,
}

impl OurServer {
    fn start(store: &Store, data_dir: &Path) -> OurServer {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .expect("tokio runtime");
        let listener = runtime
            .block_on(tokio::net::TcpListener::bind("127.0.0.1:0"))
            .expect("bind our HTTP port");
        let port = listener.local_addr().expect("local address").port();
        let shutdown = CancellationToken::new();
        let backend = Arc::new(StoreBackend::new(store.clone(), data_dir));
        let events = Arc::new(EventStore::in_memory());
        let token = shutdown.clone();
        runtime.spawn(async move {
            let _ =
                render::http::run(listener, backend, events, HttpConfig::default(), token).await;
        });
        OurServer { port, shutdown, runtime: Some(runtime) }
    }
}

impl Drop for OurServer {
    fn drop(&mut self) {
        self.shutdown.cancel();
        if let Some(rt) = self.runtime.take() {
            rt.shutdown_timeout(Duration::from_secs(5));
        }
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
    let server = OurServer::start(&store, &whisper_dir);

    let mut outcomes = Vec::with_capacity(cases.len());
    let mut unknown: BTreeMap<String, usize> = BTreeMap::new();
    let mut tag_types = 0usize;
    // Time each side spends answering the /render cases over HTTP (issue 6's "the whole
    // suite 20x faster" figure; read it from a release run: benches/side-by-side/suite.sh).
    let (mut theirs_time, mut ours_time) = (Duration::ZERO, Duration::ZERO);
    let mut ours_slowest: Vec<(Duration, Duration, usize)> = Vec::new();
    for case in &cases {
        let (diff, what) = if case.endpoint {
            (endpoint_difference(server.port, web.port(), case), "endpoint".to_string())
        } else {
            let (reference, theirs_this) = over_http(web.port(), case, "graphite-web");
            theirs_time += theirs_this;
            let in_process = ours_in_process(&store, case);
            let (http, ours_this) = over_http(server.port, case, "our server");
            ours_time += ours_this;
            ours_slowest.push((ours_this, theirs_this, case.line));
            if let Some(f) = unknown_function(&in_process) {
                *unknown.entry(f).or_default() += 1;
            }
            if compare::tag_types_differ(&http, &reference) {
                tag_types += 1;
            }
            let d1 = compare::difference(&in_process, &reference);
            let d2 = compare::difference(&http, &reference);
            let diff = match (d1, d2) {
                (None, None) => None,
                // Both ways differ (their error messages may word it differently): the
                // in-process one says why.
                (Some(a), Some(_)) => Some(a),
                (Some(a), None) => Some(format!("in-process only: {a}")),
                (None, Some(b)) => Some(format!("over HTTP only: {b}")),
            };
            (diff, describe(&reference))
        };
        let outcome = match (diff, known.get(&case.text)) {
            (None, None) => Outcome::Same,
            (None, Some(_)) => Outcome::StaleKnown,
            (Some(_), Some(_)) => Outcome::Known,
            (Some(d), None) => Outcome::Differs(d),
        };
        if verbose {
            let result = match &outcome {
                Outcome::Same => "same".to_string(),
                Outcome::Known => "known difference".to_string(),
                Outcome::StaleKnown => "STALE known difference".to_string(),
                Outcome::Differs(d) => format!("DIFFERS: {d}"),
            };
            println!("{}: {} -> {result} [graphite-web: {what}]", case.line, case.text);
        }
        outcomes.push(outcome);
    }
    let elapsed = started.elapsed();
    drop(server);
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
    let render_cases = cases.iter().filter(|c| !c.endpoint).count();
    let _ = writeln!(
        report,
        "SUITE_TIMING render_cases={render_cases} graphite_web_s={:.3} ours_s={:.3} ratio={:.1} \
         (over HTTP, one request at a time; {} build)",
        theirs_time.as_secs_f64(),
        ours_time.as_secs_f64(),
        theirs_time.as_secs_f64() / ours_time.as_secs_f64().max(1e-9),
        if cfg!(debug_assertions) { "debug" } else { "release" }
    );
    ours_slowest.sort_by_key(|s| std::cmp::Reverse(s.0));
    if let Some((median, _, _)) = ours_slowest.get(ours_slowest.len() / 2) {
        let top: Duration = ours_slowest.iter().take(ours_slowest.len() / 20).map(|s| s.0).sum();
        let _ = writeln!(
            report,
            "  ours per case: median {:.2} ms; the slowest 5% take {:.3} s in all",
            median.as_secs_f64() * 1e3,
            top.as_secs_f64()
        );
    }
    for (ours, theirs, line) in ours_slowest.iter().take(5) {
        let _ = writeln!(
            report,
            "  slowest here: targets.txt:{line}: ours {:.1} ms, graphite-web {:.1} ms",
            ours.as_secs_f64() * 1e3,
            theirs.as_secs_f64() * 1e3
        );
    }
    if !unknown.is_empty() {
        let list: Vec<String> = unknown.iter().map(|(f, n)| format!("{f} ({n})")).collect();
        let _ = writeln!(report, "functions we do not have yet (cases): {}", list.join(", "));
    }
    if tag_types > 0 {
        let _ = writeln!(
            report,
            "note: in {tag_types} cases graphite-web writes a tag value as a JSON number where we \
             write a string (compared as text, not failed)"
        );
    }
    let failing_functions: BTreeSet<&str> = failed
        .iter()
        .filter(|(c, _)| !c.endpoint && c.target.contains('('))
        .filter_map(|(c, _)| c.target.split('(').next())
        .filter(|f| !f.contains('.'))
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
