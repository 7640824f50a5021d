//! The rules file: `[defaults]`, `[[rule]]`, the notifier's `[[receiver]]` / `[route]` /
//! `[[inhibit]]`, and `[self_metrics]`.
//!
//! The file is reviewed like code, so mistakes must be loud: every table denies unknown keys
//! (a typo'd `tresh = 5` is an error, not a silently ignored line), and every error names the
//! file, the line and the rule. The raw TOML is read twice: once as spanned tables, so each
//! rule's position is known, then each table into its typed form; a key-level error is placed
//! on the line of the key by looking the key up inside the rule's span.
//!
//! Durations are strings (`"90s"`, `"5m"`, `"1h30m"`, `"2d"`, `"1w"`) or integer seconds.

use std::collections::{BTreeMap, HashSet};
use std::ops::Range;
use std::path::{Path, PathBuf};

use serde::Deserialize;
use toml::Spanned;

use crate::error::{Error, Result};
use crate::inhibit::InhibitRule;
use crate::metrics::SelfMetricsConfig;
use crate::model::Severity;
use crate::reduce::{Op, Reducer};
use crate::template::Template;
use crate::timeinterval::TimeInterval;

/// Default evaluation interval.
pub const DEFAULT_EVERY_SECONDS: i64 = 60;
/// Default window the reducer looks at.
pub const DEFAULT_WINDOW_SECONDS: i64 = 300;
/// Default lag: `until = -lag`, so the bucket carbon is still filling is never judged.
pub const DEFAULT_LAG_SECONDS: i64 = 60;
/// Default timeout of a remote query or a check.
pub const DEFAULT_TIMEOUT_SECONDS: i64 = 30;
/// Default number of rounds a series may be missing before the `missing` policy applies.
pub const DEFAULT_MISSING_AFTER: u32 = 3;

/// A loaded, validated rules file.
#[derive(Clone, Debug)]
pub struct RulesFile {
    /// Where it was read from (errors found later, for example by the notifier, name it).
    pub path: PathBuf,
    /// The `[defaults]` table, resolved.
    pub defaults: Defaults,
    /// The rules, in file order.
    pub rules: Vec<Rule>,
    /// The `[[receiver]]` tables, for the notifier to deserialise into its own types.
    pub receivers: Vec<Section>,
    /// The `[route]` table, for the notifier.
    pub route: Option<Section>,
    /// The `[[inhibit]]` rules, validated, in file order.
    pub inhibit: Vec<InhibitRule>,
    /// The `[self_metrics]` table (defaults when absent).
    pub self_metrics: SelfMetricsConfig,
    /// The `[[time_interval]]` sections, validated, in file order (for the route's
    /// `mute_time_intervals` / `active_time_intervals`).
    pub time_intervals: Vec<TimeInterval>,
    /// The `[defaults]` table as written, so a rule given later (`POST /api/eval`) resolves
    /// exactly as one of the file's.
    pub(crate) raw_defaults: RawDefaults,
}

/// A table the engine does not interpret (the notifier's), with its line for error messages.
#[derive(Clone, Debug, PartialEq)]
pub struct Section {
    /// The 1-based line the table starts on.
    pub line: usize,
    /// The table.
    pub value: toml::Value,
}

impl RulesFile {
    /// The rule called `name`.
    pub fn rule(&self, name: &str) -> Option<&Rule> {
        self.rules.iter().find(|r| r.name == name)
    }

    /// A copy with the defaults and nothing else (no rules, receivers, route, inhibit rules
    /// or time intervals): what a rule given later is resolved against ([`parse_rule`]).
    pub fn clone_defaults(&self) -> RulesFile {
        RulesFile {
            path: self.path.clone(),
            defaults: self.defaults.clone(),
            rules: Vec::new(),
            receivers: Vec::new(),
            route: None,
            inhibit: Vec::new(),
            self_metrics: self.self_metrics.clone(),
            time_intervals: Vec::new(),
            raw_defaults: self.raw_defaults.clone(),
        }
    }

    /// A copy holding only the rule `name` (backtests and tests run one rule).
    pub fn only(&self, name: &str) -> Option<RulesFile> {
        let rule = self.rule(name)?.clone();
        Some(RulesFile { rules: vec![rule], ..self.clone() })
    }
}

/// The resolved `[defaults]` (what a rule gets for a key it does not set).
#[derive(Clone, Debug, PartialEq)]
pub struct Defaults {
    /// Where data comes from.
    pub source: SourceSpec,
    /// Seconds between evaluations.
    pub every: i64,
    /// Seconds of data the reducer looks at.
    pub window: i64,
    /// Seconds the window ends before now.
    pub lag: i64,
    /// The notifier's repeat interval (seconds), when set; the engine only carries it.
    pub repeat: Option<i64>,
    /// Timeout of remote queries and checks (seconds).
    pub timeout: i64,
}

/// Where a rule's data comes from.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum SourceSpec {
    /// In-process, through the render crate over the server's store.
    Local,
    /// A graphite-web (or our API) base URL; queries go to `<url>/render`.
    Remote(String),
}

impl std::fmt::Display for SourceSpec {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            SourceSpec::Local => f.write_str("local"),
            SourceSpec::Remote(u) => f.write_str(u),
        }
    }
}

/// What a rule evaluates.
#[derive(Clone, Debug)]
pub enum RuleKind {
    /// A render target, reduced and compared: one instance per returned series.
    Graphite {
        /// The target.
        target: String,
    },
    /// Fires when a series' newest non-null point is older than `max_age`, or there is none.
    Freshness {
        /// The target.
        target: String,
        /// Seconds.
        max_age: i64,
    },
    /// An HTTP request; the value is the latency in milliseconds.
    Http(HttpCheck),
    /// A TCP connect; the value is the latency in milliseconds.
    Tcp(TcpCheck),
}

impl RuleKind {
    /// `graphite`, `freshness`, `http` or `tcp`.
    pub fn name(&self) -> &'static str {
        match self {
            RuleKind::Graphite { .. } => "graphite",
            RuleKind::Freshness { .. } => "freshness",
            RuleKind::Http(_) => "http",
            RuleKind::Tcp(_) => "tcp",
        }
    }

    /// The render target, for target rules.
    pub fn target(&self) -> Option<&str> {
        match self {
            RuleKind::Graphite { target } | RuleKind::Freshness { target, .. } => Some(target),
            _ => None,
        }
    }
}

/// An HTTP check (Cabot's HttpStatusCheck).
#[derive(Clone, Debug)]
pub struct HttpCheck {
    /// The URL to GET.
    pub url: String,
    /// The accepted status codes; empty means any 2xx.
    pub status: Vec<u16>,
    /// A regex the body must match.
    pub body: Option<regex::Regex>,
    /// Seconds.
    pub timeout: i64,
    /// Verify the server's TLS certificate (on by default).
    pub tls_verify: bool,
    /// Basic auth user.
    pub username: Option<String>,
    /// Basic auth password.
    pub password: Option<String>,
}

/// A TCP connect check.
#[derive(Clone, Debug)]
pub struct TcpCheck {
    /// `host:port`.
    pub address: String,
    /// Seconds.
    pub timeout: i64,
}

/// What no data (an empty result, or only nulls) does to an instance.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum NoDataPolicy {
    /// Treat as the condition not holding.
    Ok,
    /// Treat as the condition holding (the rule's `severity`).
    Alert,
    /// Go to the NoData state (through the pending period).
    NoData,
    /// Change nothing.
    KeepLast,
}

/// What a failed query does to an instance.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ErrorPolicy {
    /// Treat as the condition not holding.
    Ok,
    /// Treat as the condition holding.
    Alert,
    /// Go to the Error state (through the pending period).
    Error,
    /// Change nothing.
    KeepLast,
}

/// What happens to an instance whose series is no longer returned (while others are).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum MissingPolicy {
    /// After `missing_after` rounds the instance resolves and is forgotten.
    Resolve,
    /// After `missing_after` rounds the instance is judged as no data (NoData state).
    NoData,
}

/// One validated rule.
#[derive(Clone, Debug)]
pub struct Rule {
    /// Unique name; the `alertname` label.
    pub name: String,
    /// The line of its `[[rule]]` header.
    pub line: usize,
    /// What it evaluates.
    pub kind: RuleKind,
    /// Where data comes from.
    pub source: SourceSpec,
    /// Seconds between evaluations.
    pub every: i64,
    /// Seconds of data judged.
    pub window: i64,
    /// Seconds the window ends before now.
    pub lag: i64,
    /// Timeout of a remote query or check (seconds).
    pub timeout: i64,
    /// The reducer.
    pub reduce: Reducer,
    /// The comparison.
    pub op: Op,
    /// Warning threshold.
    pub warn: Option<f64>,
    /// Critical threshold.
    pub crit: Option<f64>,
    /// Recovery threshold (hysteresis): a firing instance stays firing while the condition
    /// holds against `clear`.
    pub clear: Option<f64>,
    /// Pending period (seconds).
    pub for_: i64,
    /// Seconds a recovered instance keeps firing.
    pub keep_firing_for: i64,
    /// No-data policy.
    pub no_data: NoDataPolicy,
    /// Error policy.
    pub on_error: ErrorPolicy,
    /// Missing-series policy.
    pub missing: MissingPolicy,
    /// Rounds before the missing policy applies.
    pub missing_after: u32,
    /// Fewer series with data fires the rule-level instance (Cabot's expected_num_hosts).
    pub min_series: Option<usize>,
    /// When set, the rule is an aggregate: one instance that fires when more than this many
    /// series fail (Cabot's allowed_num_failures).
    pub max_failing: Option<usize>,
    /// Label templates (static text, `{node:N}`, tags).
    pub labels: BTreeMap<String, Template>,
    /// Annotation templates.
    pub annotations: BTreeMap<String, Template>,
    /// Receivers to notify.
    pub notify: Vec<String>,
    /// The severity of failures that have no threshold (checks, no data under `alert`,
    /// min_series and errors under `alert`).
    pub severity: Severity,
}

impl Rule {
    /// The target text or the checked URL/address, for views and links.
    pub fn subject(&self) -> &str {
        match &self.kind {
            RuleKind::Graphite { target } | RuleKind::Freshness { target, .. } => target,
            RuleKind::Http(h) => &h.url,
            RuleKind::Tcp(t) => &t.address,
        }
    }

    /// True when the rule folds its series into one instance.
    pub fn is_aggregate(&self) -> bool {
        self.max_failing.is_some()
    }
}

/// Reads and validates the rules file at `path`.
///
/// # Errors
///
/// The file cannot be read, or is invalid: [`Error::Rules`] names the file, line and rule.
pub fn load(path: impl AsRef<Path>) -> Result<RulesFile> {
    let path = path.as_ref();
    let text = std::fs::read_to_string(path)
        .map_err(|source| Error::Io { path: path.to_path_buf(), source })?;
    parse(&text, path)
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawFile {
    #[serde(default)]
    defaults: Option<Spanned<toml::Table>>,
    #[serde(default)]
    rule: Vec<Spanned<toml::Table>>,
    #[serde(default)]
    receiver: Vec<Spanned<toml::Value>>,
    #[serde(default)]
    route: Option<Spanned<toml::Value>>,
    #[serde(default)]
    inhibit: Vec<Spanned<toml::Table>>,
    #[serde(default)]
    self_metrics: Option<Spanned<toml::Table>>,
    #[serde(default)]
    time_interval: Vec<Spanned<toml::Table>>,
}

/// The `[self_metrics]` table as written.
#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct RawSelfMetrics {
    carbon: Option<String>,
    prefix: Option<String>,
    interval: Option<toml::Value>,
}

/// Keys both `[defaults]` and `[[rule]]` accept.
#[derive(Deserialize, Default, Clone, Debug)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawDefaults {
    source: Option<String>,
    every: Option<toml::Value>,
    window: Option<toml::Value>,
    lag: Option<toml::Value>,
    repeat: Option<toml::Value>,
    timeout: Option<toml::Value>,
    reduce: Option<String>,
    op: Option<String>,
    #[serde(rename = "for")]
    for_: Option<toml::Value>,
    keep_firing_for: Option<toml::Value>,
    no_data: Option<String>,
    on_error: Option<String>,
    missing: Option<String>,
    missing_after: Option<u32>,
    labels: Option<BTreeMap<String, String>>,
    annotations: Option<BTreeMap<String, String>>,
    notify: Option<Vec<String>>,
    severity: Option<String>,
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct RawRule {
    name: Option<String>,
    kind: Option<String>,
    target: Option<String>,
    source: Option<String>,
    every: Option<toml::Value>,
    window: Option<toml::Value>,
    lag: Option<toml::Value>,
    timeout: Option<toml::Value>,
    reduce: Option<String>,
    op: Option<String>,
    warn: Option<f64>,
    crit: Option<f64>,
    clear: Option<f64>,
    #[serde(rename = "for")]
    for_: Option<toml::Value>,
    keep_firing_for: Option<toml::Value>,
    no_data: Option<String>,
    on_error: Option<String>,
    missing: Option<String>,
    missing_after: Option<u32>,
    min_series: Option<usize>,
    max_failing: Option<usize>,
    labels: Option<BTreeMap<String, String>>,
    annotations: Option<BTreeMap<String, String>>,
    notify: Option<Vec<String>>,
    severity: Option<String>,
    // Checks.
    url: Option<String>,
    status: Option<Vec<u16>>,
    body: Option<String>,
    tls_verify: Option<bool>,
    username: Option<String>,
    password: Option<String>,
    address: Option<String>,
    max_age: Option<toml::Value>,
}

/// Parses and validates rules text; `path` is only for messages.
///
/// # Errors
///
/// [`Error::Rules`] naming the file, line and rule.
pub fn parse(text: &str, path: &Path) -> Result<RulesFile> {
    let cx = Cx { text, path };
    let raw: RawFile = toml::from_str(text).map_err(|e| cx.toml_error(&e, None))?;
    let (defaults_raw, defaults_span) = match raw.defaults {
        Some(d) => {
            let span = cx.body(d.span(), "defaults");
            (cx.typed::<RawDefaults>(d.into_inner(), span.clone(), None)?, span)
        }
        None => (RawDefaults::default(), 0..0),
    };
    let defaults = cx.resolve_defaults(&defaults_raw, defaults_span)?;

    let receivers: Vec<Section> = raw
        .receiver
        .into_iter()
        .map(|r| Section { line: cx.line(r.span().start), value: r.into_inner() })
        .collect();
    let receiver_names: HashSet<String> = receivers
        .iter()
        .filter_map(|r| r.value.get("name").and_then(toml::Value::as_str).map(str::to_owned))
        .collect();
    let route = raw.route.map(|r| Section { line: cx.line(r.span().start), value: r.into_inner() });

    let mut rules = Vec::with_capacity(raw.rule.len());
    let mut seen: HashSet<String> = HashSet::new();
    for table in raw.rule {
        let span = cx.body(table.span(), "rule");
        let table = table.into_inner();
        let name = table.get("name").and_then(toml::Value::as_str).map(str::to_owned);
        let r: RawRule = cx.typed(table, span.clone(), name.as_deref())?;
        let rule = cx.resolve_rule(r, &defaults_raw, &defaults, span.clone())?;
        if !seen.insert(rule.name.clone()) {
            return Err(cx.err(
                span.start,
                Some(&rule.name),
                "a rule with this name already exists",
            ));
        }
        for receiver in &rule.notify {
            if !receiver_names.contains(receiver) {
                let at = cx.key_offset(&span, "notify");
                return Err(cx.err(
                    at,
                    Some(&rule.name),
                    format!("`notify` names `{receiver}`, but no [[receiver]] has that name"),
                ));
            }
        }
        rules.push(rule);
    }
    let mut inhibit = Vec::with_capacity(raw.inhibit.len());
    for table in raw.inhibit {
        let span = cx.body(table.span(), "inhibit");
        let rule: InhibitRule = cx.typed(table.into_inner(), span, None).map_err(|e| match e {
            Error::Rules(mut e) => {
                e.message = format!("[[inhibit]]: {}", e.message);
                Error::Rules(e)
            }
            other => other,
        })?;
        inhibit.push(rule);
    }
    let self_metrics = match raw.self_metrics {
        Some(t) => {
            let span = cx.body(t.span(), "self_metrics");
            let r: RawSelfMetrics = cx.typed(t.into_inner(), span.clone(), None)?;
            cx.self_metrics(r, &span)?
        }
        None => SelfMetricsConfig::default(),
    };
    let mut time_intervals: Vec<TimeInterval> = Vec::with_capacity(raw.time_interval.len());
    for table in raw.time_interval {
        let span = cx.body(table.span(), "time_interval");
        let prefix = |e: Error| match e {
            Error::Rules(mut e) => {
                e.message = format!("[[time_interval]]: {}", e.message);
                Error::Rules(e)
            }
            other => other,
        };
        let t: TimeInterval = cx.typed(table.into_inner(), span.clone(), None).map_err(prefix)?;
        if time_intervals.iter().any(|o| o.name() == t.name()) {
            return Err(prefix(cx.err(
                cx.key_offset(&span, "name"),
                None,
                format!("`name`: {:?} is defined twice", t.name()),
            )));
        }
        time_intervals.push(t);
    }
    Ok(RulesFile {
        path: path.to_path_buf(),
        defaults,
        rules,
        receivers,
        route,
        inhibit,
        self_metrics,
        time_intervals,
        raw_defaults: defaults_raw,
    })
}

/// One rule given outside the file (`POST /api/eval`), as a `[[rule]]` table, resolved
/// against `file`'s `[defaults]` exactly as the file's own rules are. Without a `name` it is
/// called `eval`; the receivers it names are not checked (it notifies nobody).
///
/// # Errors
///
/// [`Error::Rules`] as for a rule of the file, without a line, the path being `what`.
pub fn parse_rule(file: &RulesFile, mut table: toml::Table, what: &str) -> Result<Rule> {
    let path = Path::new(what);
    let cx = Cx { text: "", path };
    if !table.contains_key("name") {
        table.insert("name".into(), toml::Value::String("eval".into()));
    }
    let name = table.get("name").and_then(toml::Value::as_str).map(str::to_owned);
    let no_line = |e: Error| match e {
        Error::Rules(mut e) => {
            e.line = None;
            Error::Rules(e)
        }
        other => other,
    };
    let r: RawRule = cx.typed(table, 0..0, name.as_deref()).map_err(no_line)?;
    cx.resolve_rule(r, &file.raw_defaults, &file.defaults, 0..0).map_err(no_line)
}

/// The file being parsed, for error positions.
struct Cx<'a> {
    text: &'a str,
    path: &'a Path,
}

impl Cx<'_> {
    fn line(&self, offset: usize) -> usize {
        let end = offset.min(self.text.len());
        self.text.as_bytes().get(..end).map_or(0, |b| b.iter().filter(|&&c| c == b'\n').count()) + 1
    }

    fn err(&self, offset: usize, rule: Option<&str>, message: impl Into<String>) -> Error {
        Error::rules(self.path, Some(self.line(offset)), rule, message)
    }

    fn toml_error(&self, e: &toml::de::Error, rule: Option<&str>) -> Error {
        let line = e.span().map(|s| self.line(s.start));
        let found = match (rule, e.span()) {
            (None, Some(s)) => self.rule_around(s.start),
            _ => None,
        };
        Error::rules(self.path, line, rule.or(found.as_deref()), e.message().trim().to_owned())
    }

    /// The name of the `[[rule]]` whose body holds `offset`, read from the text (used for
    /// syntax errors, which come before any typed rule exists).
    fn rule_around(&self, offset: usize) -> Option<String> {
        let before = self.text.get(..offset)?;
        let header = before.rfind("[[rule]]")?;
        // Only when no other table header sits between the rule's header and the error.
        let between = before.get(header + 8..)?;
        if between.lines().any(|l| l.trim_start().starts_with('[')) {
            return None;
        }
        let body = self.body(header..header + 8, "rule");
        let text = self.text.get(body)?;
        text.lines().find_map(|l| {
            let rest = l.trim_start().strip_prefix("name")?.trim_start().strip_prefix('=')?;
            let v = rest.trim().strip_prefix('"')?;
            Some(v.get(..v.find('"')?)?.to_owned())
        })
    }

    /// The whole table whose header is at `header` (toml's span covers only `[[rule]]`): up
    /// to the next header that is not one of its own sub-tables (`[rule.labels]`).
    fn body(&self, header: Range<usize>, name: &str) -> Range<usize> {
        let start = header.start.min(self.text.len());
        let mut offset = header.end.min(self.text.len());
        let rest = self.text.get(offset..).unwrap_or("");
        let own = format!("{name}.");
        for line in rest.split_inclusive('\n') {
            let t = line.trim_start();
            if offset > header.end
                && t.starts_with('[')
                && !t.trim_start_matches('[').trim_start().starts_with(&own)
            {
                return start..offset;
            }
            offset += line.len();
        }
        start..self.text.len()
    }

    /// The offset of `key = ...` inside `span` (the start of the span when not found): puts a
    /// key-level error on the key's own line.
    fn key_offset(&self, span: &Range<usize>, key: &str) -> usize {
        let body = self.text.get(span.clone()).unwrap_or("");
        let mut offset = span.start;
        for line in body.split_inclusive('\n') {
            let t = line.trim_start();
            if let Some(rest) = t.strip_prefix(key).or_else(|| {
                t.strip_prefix('"')
                    .and_then(|r| r.strip_prefix(key))
                    .and_then(|r| r.strip_prefix('"'))
            }) && rest.trim_start().starts_with('=')
            {
                return offset + (line.len() - t.len());
            }
            offset += line.len();
        }
        span.start
    }

    /// Deserialises one table, placing an error on the offending key's line.
    fn typed<T: for<'de> Deserialize<'de>>(
        &self,
        table: toml::Table,
        span: Range<usize>,
        rule: Option<&str>,
    ) -> Result<T> {
        toml::Value::Table(table).try_into::<T>().map_err(|e| {
            let message = e.message().trim().to_owned();
            // serde names the key in backticks: `unknown field `tresh``, `invalid type ... for
            // key `warn``.
            let key = message.split('`').nth(1).unwrap_or("");
            let at = if key.is_empty() { span.start } else { self.key_offset(&span, key) };
            self.err(at, rule, message)
        })
    }

    fn duration(
        &self,
        v: Option<&toml::Value>,
        key: &str,
        span: &Range<usize>,
        rule: Option<&str>,
    ) -> Result<Option<i64>> {
        let Some(v) = v else { return Ok(None) };
        let parsed = match v {
            toml::Value::Integer(i) if *i >= 0 => Some(*i),
            toml::Value::String(s) => parse_duration(s),
            _ => None,
        };
        match parsed {
            Some(d) => Ok(Some(d)),
            None => Err(self.err(
                self.key_offset(span, key),
                rule,
                format!("`{key}`: `{v}` is not a duration (like \"90s\", \"5m\", \"1h30m\")"),
            )),
        }
    }

    fn self_metrics(&self, r: RawSelfMetrics, span: &Range<usize>) -> Result<SelfMetricsConfig> {
        let fail = |key: &str, msg: String| {
            Err(self.err(self.key_offset(span, key), None, format!("[self_metrics]: {msg}")))
        };
        let mut out = SelfMetricsConfig::default();
        if let Some(carbon) = r.carbon {
            if !carbon
                .rsplit_once(':')
                .is_some_and(|(h, p)| !h.is_empty() && p.parse::<u16>().is_ok_and(|p| p != 0))
            {
                return fail("carbon", format!("`carbon`: `{carbon}` is not host:port"));
            }
            out.carbon = Some(carbon);
        }
        if let Some(prefix) = r.prefix {
            let valid = !prefix.is_empty()
                && !prefix.starts_with('.')
                && !prefix.ends_with('.')
                && !prefix.contains("..")
                && prefix.chars().all(|c| !c.is_whitespace() && !c.is_control());
            if !valid {
                return fail(
                    "prefix",
                    format!("`prefix`: `{prefix}` is not a metric path (like \"alert.{{host}}\")"),
                );
            }
            out.prefix = prefix;
        }
        if let Some(interval) = self.duration(r.interval.as_ref(), "interval", span, None)? {
            if interval <= 0 {
                return fail("interval", "`interval` must be longer than 0s".into());
            }
            out.interval = interval;
        }
        Ok(out)
    }

    fn resolve_defaults(&self, d: &RawDefaults, span: Range<usize>) -> Result<Defaults> {
        let source = match &d.source {
            Some(s) => parse_source(s)
                .ok_or_else(|| self.err(self.key_offset(&span, "source"), None, source_msg(s)))?,
            None => SourceSpec::Local,
        };
        let every = self.duration(d.every.as_ref(), "every", &span, None)?;
        let window = self.duration(d.window.as_ref(), "window", &span, None)?;
        let lag = self.duration(d.lag.as_ref(), "lag", &span, None)?;
        let repeat = self.duration(d.repeat.as_ref(), "repeat", &span, None)?;
        let timeout = self.duration(d.timeout.as_ref(), "timeout", &span, None)?;
        // Check the defaults' own values once, so a bad default is reported at its line and
        // not once per rule.
        for (key, v) in [("reduce", &d.reduce), ("op", &d.op)] {
            if let Some(v) = v {
                let ok = if key == "reduce" {
                    Reducer::parse(v).is_some()
                } else {
                    Op::parse(v).is_some()
                };
                if !ok {
                    return Err(self.err(
                        self.key_offset(&span, key),
                        None,
                        format!("`{key}`: unknown value `{v}`"),
                    ));
                }
            }
        }
        self.duration(d.for_.as_ref(), "for", &span, None)?;
        self.duration(d.keep_firing_for.as_ref(), "keep_firing_for", &span, None)?;
        Ok(Defaults {
            source,
            every: every.unwrap_or(DEFAULT_EVERY_SECONDS),
            window: window.unwrap_or(DEFAULT_WINDOW_SECONDS),
            lag: lag.unwrap_or(DEFAULT_LAG_SECONDS),
            repeat,
            timeout: timeout.unwrap_or(DEFAULT_TIMEOUT_SECONDS),
        })
    }

    fn resolve_rule(
        &self,
        r: RawRule,
        d: &RawDefaults,
        defaults: &Defaults,
        span: Range<usize>,
    ) -> Result<Rule> {
        let name = match r.name.as_deref().map(str::trim) {
            Some(n) if !n.is_empty() => n.to_owned(),
            _ => return Err(self.err(span.start, None, "a rule needs a non-empty `name`")),
        };
        let rn = Some(name.as_str());
        let at = |key: &str| self.key_offset(&span, key);
        let fail = |key: &str, msg: String| Err(self.err(at(key), rn, msg));

        let source = match r.source.as_ref() {
            Some(s) => match parse_source(s) {
                Some(s) => s,
                None => return fail("source", source_msg(s)),
            },
            None => defaults.source.clone(),
        };
        let dur = |key: &str, own: &Option<toml::Value>, def: &Option<toml::Value>| {
            self.duration(own.as_ref().or(def.as_ref()), key, &span, rn)
        };
        let every = dur("every", &r.every, &None)?.unwrap_or(defaults.every);
        let window = dur("window", &r.window, &None)?.unwrap_or(defaults.window);
        let lag = dur("lag", &r.lag, &None)?.unwrap_or(defaults.lag);
        let timeout = dur("timeout", &r.timeout, &None)?.unwrap_or(defaults.timeout);
        let for_ = dur("for", &r.for_, &d.for_)?.unwrap_or(0);
        let keep_firing_for =
            dur("keep_firing_for", &r.keep_firing_for, &d.keep_firing_for)?.unwrap_or(0);
        if every <= 0 {
            return fail("every", "`every` must be longer than 0s".into());
        }
        if window <= 0 {
            return fail("window", "`window` must be longer than 0s".into());
        }
        if timeout <= 0 {
            return fail("timeout", "`timeout` must be longer than 0s".into());
        }

        let reduce_text = r.reduce.as_deref().or(d.reduce.as_deref()).unwrap_or("last");
        let Some(reduce) = Reducer::parse(reduce_text) else {
            return fail(
                "reduce",
                format!(
                    "`reduce`: unknown reducer `{reduce_text}` (last, avg, min, max, sum, \
                     median, pNN, count, nulls, all, any)"
                ),
            );
        };
        let kind_text = r.kind.as_deref().unwrap_or("graphite");
        let op_default = if matches!(kind_text, "http" | "tcp") { ">" } else { "" };
        let op_text = r.op.as_deref().or(d.op.as_deref()).unwrap_or(op_default);
        let op = match Op::parse(op_text) {
            Some(op) => op,
            None if op_text.is_empty() && r.warn.is_none() && r.crit.is_none() => Op::Gt,
            None if op_text.is_empty() => {
                return fail("op", "a rule with thresholds needs `op` (> >= < <= == !=)".into());
            }
            None => return fail("op", format!("`op`: unknown comparison `{op_text}`")),
        };
        let severity = match r.severity.as_deref().or(d.severity.as_deref()) {
            None | Some("critical") | Some("crit") => Severity::Critical,
            Some("warning") | Some("warn") => Severity::Warning,
            Some(s) => {
                return fail("severity", format!("`severity`: `{s}` is not warning or critical"));
            }
        };
        let no_data = match r.no_data.as_deref().or(d.no_data.as_deref()).unwrap_or("nodata") {
            "ok" => NoDataPolicy::Ok,
            "alert" | "alerting" => NoDataPolicy::Alert,
            "nodata" | "no_data" => NoDataPolicy::NoData,
            "keep_last" => NoDataPolicy::KeepLast,
            s => {
                return fail(
                    "no_data",
                    format!("`no_data`: `{s}` is not one of ok, alert, nodata, keep_last"),
                );
            }
        };
        let on_error = match r.on_error.as_deref().or(d.on_error.as_deref()).unwrap_or("error") {
            "ok" => ErrorPolicy::Ok,
            "alert" | "alerting" => ErrorPolicy::Alert,
            "error" => ErrorPolicy::Error,
            "keep_last" => ErrorPolicy::KeepLast,
            s => {
                return fail(
                    "on_error",
                    format!("`on_error`: `{s}` is not one of ok, alert, error, keep_last"),
                );
            }
        };
        let missing = match r.missing.as_deref().or(d.missing.as_deref()).unwrap_or("resolve") {
            "resolve" => MissingPolicy::Resolve,
            "nodata" | "no_data" => MissingPolicy::NoData,
            s => return fail("missing", format!("`missing`: `{s}` is not resolve or nodata")),
        };
        let missing_after = r.missing_after.or(d.missing_after).unwrap_or(DEFAULT_MISSING_AFTER);
        if missing_after == 0 {
            return fail("missing_after", "`missing_after` must be at least 1 round".into());
        }

        // Kind-specific keys: a key that means nothing for this kind is an error too.
        let present = |key: &str| -> bool {
            match key {
                "target" => r.target.is_some(),
                "url" => r.url.is_some(),
                "status" => r.status.is_some(),
                "body" => r.body.is_some(),
                "tls_verify" => r.tls_verify.is_some(),
                "username" => r.username.is_some(),
                "password" => r.password.is_some(),
                "address" => r.address.is_some(),
                "max_age" => r.max_age.is_some(),
                "min_series" => r.min_series.is_some(),
                "max_failing" => r.max_failing.is_some(),
                "reduce" => r.reduce.is_some(),
                "clear" => r.clear.is_some(),
                "warn" => r.warn.is_some(),
                "crit" => r.crit.is_some(),
                _ => false,
            }
        };
        let allowed: &[&str] = match kind_text {
            "graphite" => {
                &["target", "min_series", "max_failing", "reduce", "clear", "warn", "crit"]
            }
            "freshness" => &["target", "max_age"],
            "http" => {
                &["url", "status", "body", "tls_verify", "username", "password", "warn", "crit"]
            }
            "tcp" => &["address", "warn", "crit"],
            other => {
                return fail(
                    "kind",
                    format!("`kind`: `{other}` is not one of graphite, freshness, http, tcp"),
                );
            }
        };
        for key in [
            "target",
            "url",
            "status",
            "body",
            "tls_verify",
            "username",
            "password",
            "address",
            "max_age",
            "min_series",
            "max_failing",
            "reduce",
            "clear",
            "warn",
            "crit",
        ] {
            if present(key) && !allowed.contains(&key) {
                return fail(
                    key,
                    format!("`{key}` does not apply to a rule of kind `{kind_text}`"),
                );
            }
        }
        let need = |key: &str, v: Option<String>| -> Result<String> {
            match v {
                Some(v) if !v.trim().is_empty() => Ok(v),
                _ => Err(self.err(
                    span.start,
                    rn,
                    format!("a rule of kind `{kind_text}` needs `{key}`"),
                )),
            }
        };
        let check_target = |target: &str| -> Result<()> {
            render::parse::parse(target)
                .map(|_| ())
                .map_err(|e| self.err(at("target"), rn, format!("`target` does not parse: {e}")))
        };
        let kind = match kind_text {
            "graphite" => {
                let target = need("target", r.target)?;
                check_target(&target)?;
                if r.warn.is_none() && r.crit.is_none() {
                    return Err(self.err(span.start, rn, "a graphite rule needs `warn` or `crit`"));
                }
                RuleKind::Graphite { target }
            }
            "freshness" => {
                let target = need("target", r.target)?;
                check_target(&target)?;
                let Some(max_age) = dur("max_age", &r.max_age, &None)? else {
                    return Err(self.err(span.start, rn, "a freshness rule needs `max_age`"));
                };
                if max_age <= 0 {
                    return fail("max_age", "`max_age` must be longer than 0s".into());
                }
                RuleKind::Freshness { target, max_age }
            }
            "http" => {
                let url = need("url", r.url)?;
                if !(url.starts_with("http://") || url.starts_with("https://")) {
                    return fail(
                        "url",
                        format!("`url`: `{url}` is not an http:// or https:// URL"),
                    );
                }
                let body = match r.body {
                    Some(b) => Some(regex::Regex::new(&b).map_err(|e| {
                        self.err(at("body"), rn, format!("`body` is not a valid regex: {e}"))
                    })?),
                    None => None,
                };
                let status = r.status.unwrap_or_default();
                if let Some(bad) = status.iter().find(|s| !(100..=599).contains(*s)) {
                    return fail("status", format!("`status`: {bad} is not an HTTP status code"));
                }
                if r.password.is_some() && r.username.is_none() {
                    return fail("password", "`password` without `username`".into());
                }
                RuleKind::Http(HttpCheck {
                    url,
                    status,
                    body,
                    timeout,
                    tls_verify: r.tls_verify.unwrap_or(true),
                    username: r.username,
                    password: r.password,
                })
            }
            _ => {
                let address = need("address", r.address)?;
                if !address
                    .rsplit_once(':')
                    .is_some_and(|(h, p)| !h.is_empty() && p.parse::<u16>().is_ok())
                {
                    return fail("address", format!("`address`: `{address}` is not host:port"));
                }
                RuleKind::Tcp(TcpCheck { address, timeout })
            }
        };

        // Thresholds must point the same way as the comparison.
        if let (Some(w), Some(c)) = (r.warn, r.crit)
            && ((op.high_is_bad() && c < w) || (op.low_is_bad() && c > w))
        {
            return fail(
                "crit",
                format!("`crit` ({c}) is less severe than `warn` ({w}) for `op = \"{op}\"`"),
            );
        }
        if let Some(clear) = r.clear {
            let first = r.warn.or(r.crit).unwrap_or(clear);
            if matches!(op, Op::Eq | Op::Ne) {
                return fail("clear", format!("`clear` has no meaning with `op = \"{op}\"`"));
            }
            if (op.high_is_bad() && clear > first) || (op.low_is_bad() && clear < first) {
                return fail(
                    "clear",
                    format!(
                        "`clear` ({clear}) must be on the healthy side of the threshold ({first}) \
                         for `op = \"{op}\"`"
                    ),
                );
            }
        }
        for (key, v) in [("warn", r.warn), ("crit", r.crit), ("clear", r.clear)] {
            if v.is_some_and(|v| !v.is_finite()) {
                return fail(key, format!("`{key}` must be a finite number"));
            }
        }

        let mut labels = BTreeMap::new();
        let merged_labels = merge(d.labels.as_ref(), r.labels.as_ref());
        for (k, v) in merged_labels {
            if k.is_empty() || k == "alertname" {
                return fail("labels", format!("`labels`: `{k}` cannot be set by a rule"));
            }
            let t = Template::parse(&v).map_err(|m| self.err(at("labels"), rn, m))?;
            if t.uses_value() {
                return fail(
                    "labels",
                    format!(
                        "`labels.{k}`: a label cannot use {{value}}, {{severity}} or {{status}} (labels identify the instance)"
                    ),
                );
            }
            labels.insert(k, t);
        }
        let mut annotations = BTreeMap::new();
        for (k, v) in merge(d.annotations.as_ref(), r.annotations.as_ref()) {
            let t = Template::parse(&v).map_err(|m| self.err(at("annotations"), rn, m))?;
            annotations.insert(k, t);
        }
        let notify = r.notify.or_else(|| d.notify.clone()).unwrap_or_default();

        Ok(Rule {
            name,
            line: self.line(span.start),
            kind,
            source,
            every,
            window,
            lag,
            timeout,
            reduce,
            op,
            warn: r.warn,
            crit: r.crit,
            clear: r.clear,
            for_,
            keep_firing_for,
            no_data,
            on_error,
            missing,
            missing_after,
            min_series: r.min_series,
            max_failing: r.max_failing,
            labels,
            annotations,
            notify,
            severity,
        })
    }
}

fn merge(
    a: Option<&BTreeMap<String, String>>,
    b: Option<&BTreeMap<String, String>>,
) -> BTreeMap<String, String> {
    let mut out = a.cloned().unwrap_or_default();
    if let Some(b) = b {
        out.extend(b.iter().map(|(k, v)| (k.clone(), v.clone())));
    }
    out
}

fn parse_source(s: &str) -> Option<SourceSpec> {
    if s == "local" {
        Some(SourceSpec::Local)
    } else if s.starts_with("http://") || s.starts_with("https://") {
        Some(SourceSpec::Remote(s.trim_end_matches('/').to_owned()))
    } else {
        None
    }
}

fn source_msg(s: &str) -> String {
    format!("`source`: `{s}` is neither \"local\" nor an http:// or https:// URL")
}

/// Parses `"90s"`, `"5m"`, `"1h30m"`, `"2d"`, `"1w"`, `"0"` into seconds; `None` when
/// malformed or absurdly large (over ten years).
pub fn parse_duration(s: &str) -> Option<i64> {
    let s = s.trim();
    if s.is_empty() {
        return None;
    }
    if let Ok(n) = s.parse::<i64>() {
        return (0..=315_360_000).contains(&n).then_some(n);
    }
    let mut total: i64 = 0;
    let mut num = String::new();
    let mut chars = s.chars().peekable();
    while let Some(c) = chars.next() {
        if c.is_ascii_digit() {
            num.push(c);
            continue;
        }
        let mut unit = String::from(c);
        while let Some(&n) = chars.peek() {
            if n.is_ascii_alphabetic() {
                unit.push(n);
                chars.next();
            } else {
                break;
            }
        }
        let mult = match unit.as_str() {
            "s" | "sec" | "secs" | "second" | "seconds" => 1,
            "m" | "min" | "mins" | "minute" | "minutes" => 60,
            "h" | "hour" | "hours" => 3600,
            "d" | "day" | "days" => 86_400,
            "w" | "week" | "weeks" => 604_800,
            _ => return None,
        };
        let n: i64 = num.parse().ok()?;
        num.clear();
        total = total.checked_add(n.checked_mul(mult)?)?;
    }
    if !num.is_empty() || total > 315_360_000 {
        return None;
    }
    Some(total)
}

/// Seconds as the shortest `1h30m` form.
pub fn format_duration(secs: i64) -> String {
    if secs == 0 {
        return "0s".into();
    }
    let mut out = String::new();
    let mut rest = secs.abs();
    if secs < 0 {
        out.push('-');
    }
    for (unit, size) in [("d", 86_400), ("h", 3600), ("m", 60), ("s", 1)] {
        if rest >= size {
            out.push_str(&format!("{}{unit}", rest / size));
            rest %= size;
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p(text: &str) -> Result<RulesFile> {
        parse(text, Path::new("rules.toml"))
    }

    fn err(text: &str) -> crate::error::RulesError {
        match p(text) {
            Err(Error::Rules(e)) => *e,
            other => panic!("expected a rules error, got {other:?}"),
        }
    }

    const SKETCH: &str = r#"
[defaults]
source = "local"
every = "60s"
window = "5m"
lag = "1m"
repeat = "4h"

[[rule]]
name = "disk_almost_full"
target = "servers.*.diskspace.root.byte_percentfree"
reduce = "last"
op = "<"
warn = 15
crit = 5
clear = 20
for = "5m"
keep_firing_for = "2m"
no_data = "alert"
on_error = "keep_last"
min_series = 12
labels = { team = "ops", host = "{node:1}" }
annotations = { summary = "{host}: {value}% free on /", runbook = "https://runbooks/disk" }
notify = ["ops-hook"]

[[receiver]]
name = "ops-hook"
kind = "webhook"
url = "http://127.0.0.1:9/hook"

[route]
receiver = "ops-hook"
"#;

    #[test]
    fn parses_the_sketch() {
        let f = p(SKETCH).unwrap();
        assert_eq!(f.defaults.repeat, Some(4 * 3600));
        let r = &f.rules[0];
        assert_eq!(r.name, "disk_almost_full");
        assert_eq!(r.line, 9);
        assert_eq!((r.every, r.window, r.lag, r.for_, r.keep_firing_for), (60, 300, 60, 300, 120));
        assert_eq!((r.warn, r.crit, r.clear), (Some(15.0), Some(5.0), Some(20.0)));
        assert_eq!(r.op, Op::Lt);
        assert_eq!(r.no_data, NoDataPolicy::Alert);
        assert_eq!(r.on_error, ErrorPolicy::KeepLast);
        assert_eq!(r.min_series, Some(12));
        assert_eq!(f.receivers.len(), 1);
        assert_eq!(f.receivers[0].line, 26);
        assert!(f.route.is_some());
    }

    #[test]
    fn typo_key_names_file_line_and_rule() {
        let e = err("[[rule]]\nname = \"x\"\ntarget = \"a.b\"\ntresh = 5\nwarn = 1\nop = \">\"\n");
        assert_eq!(e.line, Some(4));
        assert_eq!(e.rule.as_deref(), Some("x"));
        assert!(e.message.contains("tresh"), "{}", e.message);
        assert!(e.to_string().starts_with("rules.toml:4: rule `x`:"), "{e}");
    }

    #[test]
    fn typo_in_defaults_and_top_level() {
        let e = err("[defaults]\nevry = \"1m\"\n");
        assert_eq!(e.line, Some(2));
        let e = err("[[rules]]\nname = \"x\"\n");
        assert!(e.message.contains("rules"), "{}", e.message);
        assert_eq!(e.line, Some(1));
    }

    #[test]
    fn syntax_errors_have_lines_and_rules() {
        let e = err("[[rule]]\nname = \"x\"\nwarn = = 3\n");
        assert_eq!(e.line, Some(3));
        assert_eq!(e.rule.as_deref(), Some("x"));
        let e = err("[[rule]]\nname = \"x\"\nwarn = 3\nwarn = 4\n");
        assert_eq!((e.line, e.rule.as_deref()), (Some(4), Some("x")));
        assert!(e.message.contains("duplicate"), "{}", e.message);
    }

    #[test]
    fn semantic_errors_name_the_key_line() {
        let base = "[[rule]]\nname = \"r\"\ntarget = \"a.b\"\nop = \">\"\nwarn = 10\n";
        let cases = [
            ("crit = 5\n", "crit", 6),
            ("clear = 12\n", "clear", 6),
            ("reduce = \"mode\"\n", "reduce", 6),
            ("every = \"5 minutes please\"\n", "every", 6),
            ("no_data = \"maybe\"\n", "no_data", 6),
            ("url = \"http://x\"\n", "url", 6),
            ("labels = { v = \"{value}\" }\n", "labels", 6),
            ("notify = [\"nobody\"]\n", "nobody", 6),
            ("source = \"ftp://x\"\n", "source", 6),
        ];
        for (extra, needle, line) in cases {
            let e = err(&format!("{base}{extra}"));
            assert_eq!(e.line, Some(line), "{extra}: {e}");
            assert!(e.message.contains(needle), "{extra}: {e}");
            assert_eq!(e.rule.as_deref(), Some("r"));
        }
    }

    #[test]
    fn missing_and_duplicate_things() {
        assert!(err("[[rule]]\ntarget = \"a\"\n").message.contains("name"));
        assert!(err("[[rule]]\nname = \"a\"\ntarget = \"a\"\n").message.contains("warn"));
        assert!(err("[[rule]]\nname = \"a\"\nwarn = 1\nop = \">\"\n").message.contains("target"));
        let e = err("[[rule]]\nname = \"a\"\ntarget = \"sum(a\"\nop = \">\"\nwarn = 1\n");
        assert!(e.message.contains("does not parse"), "{e}");
        assert_eq!(e.line, Some(3));
        let two = "[[rule]]\nname = \"a\"\ntarget = \"a\"\nop = \">\"\nwarn = 1\n";
        let e = err(&format!("{two}{two}"));
        assert_eq!(e.line, Some(6));
        assert!(e.message.contains("already exists"));
    }

    #[test]
    fn checks_parse() {
        let f = p(r#"
[[rule]]
name = "web"
kind = "http"
url = "https://example.invalid/health"
status = [200, 204]
body = "ok|healthy"
tls_verify = false
username = "u"
password = "p"
crit = 2000

[[rule]]
name = "db"
kind = "tcp"
address = "127.0.0.1:5432"
timeout = "3s"

[[rule]]
name = "fresh"
kind = "freshness"
target = "servers.*.cpu"
max_age = "10m"
"#)
        .unwrap();
        assert!(
            matches!(&f.rules[0].kind, RuleKind::Http(h) if !h.tls_verify && h.status == [200, 204])
        );
        assert!(matches!(&f.rules[1].kind, RuleKind::Tcp(t) if t.timeout == 3));
        assert!(matches!(f.rules[2].kind, RuleKind::Freshness { max_age: 600, .. }));
        let e = err("[[rule]]\nname = \"t\"\nkind = \"tcp\"\naddress = \"nohost\"\n");
        assert!(e.message.contains("host:port"));
        let e =
            err("[[rule]]\nname = \"t\"\nkind = \"tcp\"\naddress = \"h:1\"\nreduce = \"avg\"\n");
        assert!(e.message.contains("does not apply"), "{e}");
    }

    #[test]
    fn time_intervals_parse_and_their_errors_name_the_line() {
        let text = r#"
[[receiver]]
name = "hook"
type = "webhook"
url = "http://127.0.0.1:1/"

[route]
receiver = "hook"
mute_time_intervals = ["night"]
active_time_intervals = ["office"]

[[time_interval]]
name = "night"
times = [{ start_time = "00:00", end_time = "06:00" }]

[[time_interval]]
name = "office"
weekdays = ["monday:friday"]
days_of_month = ["1:5", "-3:-1"]
months = ["january:march"]
years = ["2026:2027"]
location = "Europe/Berlin"
"#;
        let f = p(text).unwrap();
        assert_eq!(f.time_intervals.len(), 2);
        assert_eq!(f.time_intervals[1].name(), "office");
        let config = crate::notify::NotifyConfig::from_rules(&f).unwrap();
        assert_eq!(config.route.mute_time_intervals, vec!["night".to_owned()]);
        // An unknown key, a bad value and a duplicate name: each on its own line.
        let e = err("[[time_interval]]\nname = \"a\"\nweekday = [\"monday\"]\n");
        assert_eq!(e.line, Some(3), "{e}");
        assert!(e.message.starts_with("[[time_interval]]: unknown field `weekday`"), "{e}");
        let e = err("[[time_interval]]\nname = \"a\"\n\nmonths = [\"march:january\"]\n");
        assert_eq!(e.line, Some(4), "{e}");
        assert!(e.message.contains("`months`: \"march:january\""), "{e}");
        let e = err("[[time_interval]]\nname = \"a\"\nlocation = \"Nowhere/Town\"\n");
        assert_eq!(e.line, Some(3), "{e}");
        let e = err("[[time_interval]]\nname = \"a\"\n[[time_interval]]\nname = \"a\"\n");
        assert_eq!(e.line, Some(4), "{e}");
        assert!(e.message.contains("defined twice"), "{e}");
        // The route naming an interval the file lacks is the route's error, on its line.
        let f = p(&text.replace("[\"office\"]", "[\"offices\"]")).unwrap();
        let e = crate::notify::NotifyConfig::from_rules(&f).unwrap_err().to_string();
        assert!(e.contains(":7:"), "{e}");
        assert!(e.contains("active_time_intervals: \"offices\" is not defined"), "{e}");
    }

    #[test]
    fn inhibit_rules_parse_and_their_errors_name_the_line() {
        let f = p(r#"
[[inhibit]]
source_match = { severity = "critical" }
target_match = { severity = "warning" }
equal = ["host"]

[[inhibit]]
source_match_re = { alertname = "dc_.*" }

[inhibit.target_match]
team = "ops"
"#)
        .unwrap();
        assert_eq!(f.inhibit.len(), 2);
        let e = err("[[rule]]\nname = \"x\"\ntarget = \"a\"\nop = \">\"\nwarn = 1\n\n\
                     [[inhibit]]\nsource_match = { a = \"b\" }\ntarget_mtch = { a = \"c\" }\n");
        assert_eq!(e.line, Some(9), "{e}");
        assert_eq!(e.rule, None);
        assert!(e.message.starts_with("[[inhibit]]: unknown field `target_mtch`"), "{e}");
        let e =
            err("[[inhibit]]\nsource_match = { a = \"b\" }\n\ntarget_match_re = { a = \"(\" }\n");
        assert_eq!(e.line, Some(4), "{e}");
        assert!(e.message.contains("target_match_re"), "{e}");
        let e = err("[[inhibit]]\nsource_match = { a = \"b\" }\n");
        assert!(e.message.contains("needs target_match"), "{e}");
        assert_eq!(e.line, Some(1));
    }

    #[test]
    fn self_metrics_parse_with_defaults_and_checks() {
        let f = p("").unwrap();
        assert_eq!(f.self_metrics, SelfMetricsConfig::default());
        let f = p("[self_metrics]\ncarbon = \"127.0.0.1:2003\"\nprefix = \"alert.{host}.x\"\ninterval = \"10s\"\n")
            .unwrap();
        assert_eq!(f.self_metrics.carbon.as_deref(), Some("127.0.0.1:2003"));
        assert_eq!(f.self_metrics.interval, 10);
        assert!(!f.self_metrics.resolved_prefix().contains('{'));
        for (text, line, needle) in [
            ("[self_metrics]\ncarbon = \"nohost\"\n", 2, "host:port"),
            ("[self_metrics]\n\nprefix = \"a..b\"\n", 3, "prefix"),
            ("[self_metrics]\ninterval = \"0s\"\n", 2, "interval"),
            ("[self_metrics]\ncarbn = \"h:1\"\n", 2, "carbn"),
        ] {
            let e = err(text);
            assert_eq!(e.line, Some(line), "{text}: {e}");
            assert!(e.message.contains(needle), "{text}: {e}");
        }
    }

    #[test]
    fn durations() {
        assert_eq!(parse_duration("90s"), Some(90));
        assert_eq!(parse_duration("1h30m"), Some(5400));
        assert_eq!(parse_duration("2d"), Some(172_800));
        assert_eq!(parse_duration("0"), Some(0));
        assert_eq!(parse_duration("5 m"), None);
        assert_eq!(parse_duration("m"), None);
        assert_eq!(parse_duration("5"), Some(5));
        assert_eq!(parse_duration("99999999999999999999d"), None);
        assert_eq!(format_duration(5400), "1h30m");
        assert_eq!(format_duration(0), "0s");
    }

    proptest::proptest! {
        #[test]
        fn arbitrary_text_never_panics(s in "\\PC{0,200}") {
            let _ = p(&s);
        }

        #[test]
        fn rule_shaped_text_never_panics(
            keys in proptest::collection::vec(
                ("(name|target|op|warn|crit|clear|every|for|reduce|labels|kind|url|address|max_age)",
                 "(\"[a-z{}:.*0-9 ]{0,8}\"|[0-9]{1,3}|\\{ a = \"\\{node:[0-9-]{1,2}\\}\" \\})"),
                0..8)
        ) {
            let mut text = String::from("[[rule]]\n");
            for (k, v) in keys {
                text.push_str(&format!("{k} = {v}\n"));
            }
            let _ = p(&text);
        }

        #[test]
        fn durations_round_trip(secs in 0i64..10_000_000) {
            proptest::prop_assert_eq!(parse_duration(&format_duration(secs)), Some(secs));
        }
    }
}
