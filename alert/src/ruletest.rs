//! Rule unit tests, like `promtool test rules`: synthetic series in a compact notation, the
//! rules of a real rules file, and the alerts expected at given times.
//!
//! ```toml
//! rule_files = ["rules.toml"]        # relative to the test file
//!
//! [[test]]
//! name = "disk fills up on web01"
//! interval = "1m"                    # spacing of the input points; the first is at time 0
//!
//! [[test.series]]
//! name = "servers.web01.diskspace.root.byte_percentfree"
//! values = "50 40 30 10x20"          # 50, 40, 30, then 10 twenty-one times
//!
//! [[test.alert]]
//! at = "10m"                         # evaluation time, from time 0
//! rule = "disk_almost_full"
//! alerts = [ { labels = { host = "web01" }, status = "firing", severity = "critical" } ]
//! ```
//!
//! Values: `a` one value; `_` one null; `axN` the value N+1 times; `_xN` N nulls;
//! `a+bxN` / `a-bxN` the N+1 values a, a±b, ... a±N·b (promtool's notation). The engine
//! evaluates the rules every `interval` from time 0 (each rule when its `every` says it is
//! due, with its own `lag` and `window`), so the test sees what production would. At each
//! `at`, the instances of `rule` that are not Normal must match `alerts` one to one: an
//! expected alert's labels are a subset of the instance's (`alertname` and Graphite's `name`
//! need not be written), `status` defaults to `firing`, `severity` is checked when given.
//! HTTP and TCP checks cannot be unit-tested (they have no series).

use std::collections::BTreeMap;
use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use serde::Deserialize;
use toml::Spanned;

use crate::engine::{Engine, EngineConfig, InstanceView, status_name};
use crate::error::{Error, Result};
use crate::model::{Labels, Severity, Status};
use crate::rules::{RuleKind, RulesFile, parse_duration};
use crate::source::{LocalSource, Sources};

/// Most points one series notation may expand to.
pub const MAX_SERIES_POINTS: usize = 1_000_000;
/// Most evaluation rounds one test may run.
pub const MAX_TEST_ROUNDS: i64 = 1_000_000;

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawFile {
    rule_files: Vec<String>,
    #[serde(default)]
    test: Vec<Spanned<RawTest>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawTest {
    name: String,
    #[serde(default)]
    interval: Option<toml::Value>,
    #[serde(default)]
    series: Vec<RawSeries>,
    #[serde(default)]
    alert: Vec<RawAssert>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawSeries {
    name: String,
    values: String,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawAssert {
    at: toml::Value,
    rule: String,
    #[serde(default)]
    alerts: Vec<Expected>,
}

/// One expected alert.
#[derive(Clone, Debug, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct Expected {
    /// Labels the instance must have (a subset).
    #[serde(default)]
    pub labels: Labels,
    /// `pending`, `firing` (default), `recovering`, `nodata`, `error`.
    #[serde(default)]
    pub status: Option<String>,
    /// `warning` or `critical`, checked when given.
    #[serde(default)]
    pub severity: Option<String>,
}

/// One failed assertion.
#[derive(Clone, Debug, PartialEq)]
pub struct Failure {
    /// The test's name.
    pub test: String,
    /// The rule asserted on.
    pub rule: String,
    /// The evaluation time (seconds from 0).
    pub at: i64,
    /// Expected alerts that no instance matched.
    pub missing: Vec<String>,
    /// Instances no expected alert matched.
    pub unexpected: Vec<String>,
}

/// The outcome of a test file.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Report {
    /// The test file.
    pub path: PathBuf,
    /// Tests run.
    pub tests: usize,
    /// Assertions (`[[test.alert]]` entries) checked.
    pub assertions: usize,
    /// Failed assertions.
    pub failures: Vec<Failure>,
}

impl Report {
    /// True when every assertion held.
    pub fn passed(&self) -> bool {
        self.failures.is_empty()
    }
}

impl fmt::Display for Report {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for fail in &self.failures {
            writeln!(
                f,
                "FAIL {}: test \"{}\", rule `{}` at {}:",
                self.path.display(),
                fail.test,
                fail.rule,
                crate::rules::format_duration(fail.at)
            )?;
            for m in &fail.missing {
                writeln!(f, "  - expected {m}")?;
            }
            for u in &fail.unexpected {
                writeln!(f, "  + got      {u}")?;
            }
        }
        let failed_tests: std::collections::BTreeSet<&str> =
            self.failures.iter().map(|f| f.test.as_str()).collect();
        write!(
            f,
            "{}: {} tests, {} assertions; tests passed: {}, tests failed: {}",
            self.path.display(),
            self.tests,
            self.assertions,
            self.tests - failed_tests.len(),
            failed_tests.len()
        )
    }
}

/// Parses the compact series notation (see the module docs).
///
/// # Errors
///
/// A token that is not a number, `_`, or one of the `x` forms; or more than
/// [`MAX_SERIES_POINTS`] points.
pub fn parse_values(text: &str) -> std::result::Result<Vec<Option<f64>>, String> {
    let mut out = Vec::new();
    for token in text.split_whitespace() {
        let (head, count) = match token.rsplit_once('x') {
            Some((h, n)) => {
                let n: usize = n.parse().map_err(|_| {
                    format!("`{token}`: the count after `x` must be a whole number")
                })?;
                (h, Some(n))
            }
            None => (token, None),
        };
        if out.len() + count.unwrap_or(0) + 1 > MAX_SERIES_POINTS {
            return Err(format!("more than {MAX_SERIES_POINTS} points"));
        }
        if head == "_" {
            let n = count.unwrap_or(1);
            out.extend(std::iter::repeat_n(None, n));
            continue;
        }
        // `a+b` / `a-b`: the sign that is neither leading nor after an exponent `e`.
        let split = head
            .char_indices()
            .skip(1)
            .find(|&(i, c)| {
                (c == '+' || c == '-')
                    && !matches!(head.as_bytes().get(i - 1), Some(b'e') | Some(b'E'))
            })
            .map(|(i, _)| i);
        let number = |s: &str| -> std::result::Result<f64, String> {
            s.parse::<f64>()
                .ok()
                .filter(|v| v.is_finite())
                .ok_or_else(|| format!("`{token}`: `{s}` is not a number"))
        };
        match (split, count) {
            (Some(i), Some(n)) => {
                let a = number(head.get(..i).unwrap_or(""))?;
                let b = number(head.get(i..).unwrap_or(""))?;
                out.extend((0..=n).map(|k| Some(a + b * k as f64)));
            }
            (Some(_), None) => return Err(format!("`{token}`: `a+b` needs a count (`a+bxN`)")),
            (None, Some(n)) => {
                let a = number(head)?;
                out.extend(std::iter::repeat_n(Some(a), n + 1));
            }
            (None, None) => out.push(Some(number(head)?)),
        }
    }
    Ok(out)
}

fn status_of(s: &str) -> Option<Status> {
    Some(match s {
        "normal" => Status::Normal,
        "pending" => Status::Pending,
        "firing" => Status::Firing,
        "recovering" => Status::Recovering,
        "nodata" | "no_data" => Status::NoData,
        "error" => Status::Error,
        _ => return None,
    })
}

fn severity_of(s: &str) -> Option<Severity> {
    match s {
        "warning" | "warn" => Some(Severity::Warning),
        "critical" | "crit" => Some(Severity::Critical),
        _ => None,
    }
}

fn describe_expected(e: &Expected) -> String {
    format!(
        "{} {}{}",
        labels_text(&e.labels),
        e.status.as_deref().unwrap_or("firing"),
        e.severity.as_deref().map(|s| format!(" {s}")).unwrap_or_default()
    )
}

fn describe_actual(i: &InstanceView) -> String {
    let sev = match i.severity {
        Some(Severity::Warning) => " warning",
        Some(Severity::Critical) => " critical",
        None => "",
    };
    format!(
        "{} {}{} (value {})",
        labels_text(&i.labels),
        status_name(i.status),
        sev,
        i.value.map_or("-".into(), crate::template::format_value)
    )
}

fn labels_text(labels: &Labels) -> String {
    let inner: Vec<String> = labels.iter().map(|(k, v)| format!("{k}=\"{v}\"")).collect();
    format!("{{{}}}", inner.join(", "))
}

fn matches(e: &Expected, i: &InstanceView) -> bool {
    let status = e.status.as_deref().and_then(status_of).unwrap_or(Status::Firing);
    let sev_ok = e.severity.as_deref().is_none_or(|s| severity_of(s) == i.severity);
    status == i.status && sev_ok && e.labels.iter().all(|(k, v)| i.labels.get(k) == Some(v))
}

/// Runs the tests in the file at `path`.
///
/// # Errors
///
/// The test file or a rules file it names cannot be read or is invalid ([`Error::Rules`] with
/// file, line and test name); a failing assertion is not an error but a [`Failure`] in the
/// report.
pub fn run(path: impl AsRef<Path>) -> Result<Report> {
    let path = path.as_ref();
    let text = std::fs::read_to_string(path)
        .map_err(|source| Error::Io { path: path.to_path_buf(), source })?;
    let line = |offset: usize| text.get(..offset).map_or(0, |t| t.matches('\n').count()) + 1;
    let raw: RawFile = toml::from_str(&text).map_err(|e| {
        Error::rules(path, e.span().map(|s| line(s.start)), None, e.message().trim().to_owned())
    })?;
    let base = path.parent().unwrap_or(Path::new("."));
    let mut all = RulesFile {
        path: path.to_path_buf(),
        defaults: crate::rules::parse("", path)?.defaults,
        rules: Vec::new(),
        receivers: Vec::new(),
        route: None,
        inhibit: Vec::new(),
        self_metrics: crate::metrics::SelfMetricsConfig::default(),
        time_intervals: Vec::new(),
        raw_defaults: Default::default(),
    };
    for f in &raw.rule_files {
        let loaded = crate::rules::load(base.join(f))?;
        all.defaults = loaded.defaults.clone();
        all.rules.extend(loaded.rules);
        all.receivers.extend(loaded.receivers);
    }

    let mut report = Report { path: path.to_path_buf(), ..Report::default() };
    for test in raw.test {
        let at_line = line(test.span().start);
        let test = test.into_inner();
        let err = |m: String| Error::rules(path, Some(at_line), Some(&test.name), m);
        let interval = match &test.interval {
            None => 60,
            Some(toml::Value::Integer(i)) if *i > 0 => *i,
            Some(toml::Value::String(s)) => parse_duration(s)
                .filter(|d| *d > 0)
                .ok_or_else(|| err(format!("`interval`: `{s}` is not a duration")))?,
            Some(v) => return Err(err(format!("`interval`: `{v}` is not a duration"))),
        };
        let mut data = render::MemorySource::new();
        for s in &test.series {
            let values =
                parse_values(&s.values).map_err(|m| err(format!("series `{}`: {m}", s.name)))?;
            data.insert(&s.name, 0, interval, values);
        }
        let mut asserts = Vec::new();
        let mut names = Vec::new();
        for a in test.alert {
            let at = match &a.at {
                toml::Value::Integer(i) if *i >= 0 => *i,
                toml::Value::String(s) => parse_duration(s)
                    .ok_or_else(|| err(format!("`at`: `{s}` is not a duration")))?,
                v => return Err(err(format!("`at`: `{v}` is not a duration"))),
            };
            let rule = all
                .rule(&a.rule)
                .ok_or_else(|| err(format!("no rule named `{}` in the rule files", a.rule)))?;
            if matches!(rule.kind, RuleKind::Http(_) | RuleKind::Tcp(_)) {
                return Err(err(format!(
                    "rule `{}` is a {} check: it has no series to test",
                    a.rule,
                    rule.kind.name()
                )));
            }
            for e in &a.alerts {
                if e.status.as_deref().is_some_and(|s| status_of(s).is_none()) {
                    return Err(err(format!(
                        "unknown status `{}`",
                        e.status.as_deref().unwrap_or("")
                    )));
                }
                if e.severity.as_deref().is_some_and(|s| severity_of(s).is_none()) {
                    return Err(err(format!(
                        "unknown severity `{}`",
                        e.severity.as_deref().unwrap_or("")
                    )));
                }
            }
            if !names.contains(&a.rule) {
                names.push(a.rule.clone());
            }
            asserts.push((at, a.rule, a.alerts));
        }
        asserts.sort_by_key(|a| a.0);
        let mut rules = all.clone();
        rules.rules.retain(|r| names.contains(&r.name));
        let last = asserts.last().map_or(0, |a| a.0);
        if last / interval > MAX_TEST_ROUNDS {
            return Err(err(format!("more than {MAX_TEST_ROUNDS} evaluation rounds")));
        }
        let config = EngineConfig { workers: 1, ..EngineConfig::default() };
        let mut engine = Engine::with_config(
            rules,
            Sources::fixed(Arc::new(LocalSource::new(Arc::new(data)))),
            None,
            config,
        )?;

        // Evaluation times: every interval from 0, plus every `at`.
        let mut times: Vec<i64> = (0..=last / interval).map(|k| k * interval).collect();
        times.extend(asserts.iter().map(|a| a.0));
        times.sort_unstable();
        times.dedup();
        let mut pending = asserts.into_iter().peekable();
        for t in times {
            engine.evaluate_round(t);
            while let Some((at, rule, expected)) = pending.next_if(|a| a.0 == t) {
                report.assertions += 1;
                let actual: Vec<InstanceView> = engine
                    .instances()
                    .into_iter()
                    .filter(|i| i.rule == rule && i.status != Status::Normal)
                    .collect();
                let mut used = vec![false; actual.len()];
                let mut missing = Vec::new();
                for e in &expected {
                    let hit = actual
                        .iter()
                        .enumerate()
                        .find(|(k, i)| !used.get(*k).copied().unwrap_or(true) && matches(e, i));
                    match hit {
                        Some((k, _)) => {
                            if let Some(u) = used.get_mut(k) {
                                *u = true;
                            }
                        }
                        None => missing.push(describe_expected(e)),
                    }
                }
                let unexpected: Vec<String> = actual
                    .iter()
                    .zip(&used)
                    .filter(|(_, u)| !**u)
                    .map(|(i, _)| describe_actual(i))
                    .collect();
                if !missing.is_empty() || !unexpected.is_empty() {
                    report.failures.push(Failure {
                        test: test.name.clone(),
                        rule,
                        at,
                        missing,
                        unexpected,
                    });
                }
            }
        }
        report.tests += 1;
    }
    Ok(report)
}

/// Labels of the form tests print, for callers that build their own messages.
pub fn format_labels(labels: &BTreeMap<String, String>) -> String {
    labels_text(labels)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn expands_the_notation() {
        assert_eq!(
            parse_values("1+1x3").unwrap(),
            vec![Some(1.0), Some(2.0), Some(3.0), Some(4.0)]
        );
        assert_eq!(
            parse_values("5x2 _ 7").unwrap(),
            vec![Some(5.0), Some(5.0), Some(5.0), None, Some(7.0)]
        );
        assert_eq!(parse_values("_x2").unwrap(), vec![None, None]);
        assert_eq!(parse_values("10-2x2").unwrap(), vec![Some(10.0), Some(8.0), Some(6.0)]);
        assert_eq!(parse_values("-1+1x1").unwrap(), vec![Some(-1.0), Some(0.0)]);
        assert_eq!(parse_values("1e3").unwrap(), vec![Some(1000.0)]);
        assert_eq!(parse_values("1e-3x0").unwrap(), vec![Some(0.001)]);
        assert!(parse_values("abc").is_err());
        assert!(parse_values("1+1").is_err());
        assert!(parse_values("1x-1").is_err());
        assert!(parse_values("1x99999999999").is_err());
        assert!(parse_values("nan").is_err());
    }

    proptest::proptest! {
        #[test]
        fn notation_never_panics(s in "[0-9_x+\\-. e]{0,30}") {
            let _ = parse_values(&s);
        }

        #[test]
        fn ramps_have_n_plus_one_points(a in -100i32..100, b in -10i32..10, n in 0usize..50) {
            let v = parse_values(&format!("{a}{b:+}x{n}")).unwrap();
            proptest::prop_assert_eq!(v.len(), n + 1);
            proptest::prop_assert_eq!(v.last().copied().flatten(), Some(f64::from(a) + f64::from(b) * n as f64));
        }
    }
}
