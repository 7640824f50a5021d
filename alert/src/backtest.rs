//! Backtest: replay one rule over stored history and report when it would have fired.
//!
//! The history is fetched once (the target evaluated over `[from - window - lag, until]`),
//! then the window slides over it locally and the engine's own state machine runs at each
//! step, so what the report shows is exactly what the live engine would have done with that
//! data — including `for`, `keep_firing_for`, hysteresis and the no-data policies.
//!
//! Caveats, printed with the report:
//! - Whisper keeps old data rolled up: points older than the finest archive's retention are
//!   averages (or whatever the aggregation method is) over coarser steps, so a spike that
//!   would have fired live may be smoothed away, and a `last` over a 5-minute window may see
//!   one point where live it saw five. Backtests over rolled-up history are approximate.
//! - The target is evaluated once over the whole range: functions whose result depends on
//!   where the window starts (`integral`, `summarize` with alignment, `movingAverage` warm-up)
//!   can differ slightly from live evaluation.
//! - Repeats are the notifier's business (its `repeat_interval`); the report lists the
//!   notifications that state changes cause (fire, escalate, change, resolve).

use std::collections::BTreeMap;
use std::fmt;
use std::sync::Arc;

use crate::engine::{Engine, EngineConfig};
use crate::error::{Error, Result};
use crate::model::{AlertEvent, Labels, Severity, Status};
use crate::rules::{RuleKind, RulesFile, format_duration};
use crate::source::{SeriesData, Source, SourceError, Sources};
use crate::state::Transition;

/// Most evaluation steps one backtest runs (a year at one-minute steps is about 525,600).
pub const MAX_BACKTEST_STEPS: i64 = 2_000_000;

/// A notification the state changes would have caused.
#[derive(Clone, Debug, PartialEq)]
pub struct Notification {
    /// When.
    pub at: i64,
    /// `firing`, `escalated`, `changed` (to no data / error / back), `resolved`.
    pub kind: &'static str,
    /// The instance.
    pub labels: Labels,
    /// The status it reports.
    pub status: Status,
    /// The severity it reports.
    pub severity: Option<Severity>,
    /// The value.
    pub value: Option<f64>,
}

/// What a backtest found.
#[derive(Clone, Debug, PartialEq)]
pub struct Report {
    /// The rule.
    pub rule: String,
    /// Range start.
    pub from: i64,
    /// Range end.
    pub until: i64,
    /// Seconds between evaluations.
    pub step: i64,
    /// Evaluations run.
    pub evaluations: usize,
    /// Every state change, oldest first.
    pub transitions: Vec<Transition>,
    /// What would have been sent.
    pub notifications: Vec<Notification>,
    /// Seconds each instance spent active (firing, recovering, no data, error).
    pub firing_seconds: BTreeMap<Labels, i64>,
    /// Times an instance became active.
    pub firings: usize,
    /// `firings` per day of the range.
    pub flaps_per_day: f64,
}

/// History fetched once, cut to each evaluation's window.
struct HistorySource {
    series: Vec<SeriesData>,
}

impl Source for HistorySource {
    fn query(
        &self,
        _target: &str,
        from: i64,
        until: i64,
        _now: i64,
    ) -> std::result::Result<Vec<SeriesData>, SourceError> {
        Ok(self
            .series
            .iter()
            .map(|s| {
                let values = s.window(from, until).to_vec();
                let step = s.step.max(1);
                let first = (from - s.start).div_euclid(step) + 1;
                SeriesData {
                    name: s.name.clone(),
                    tags: s.tags.clone(),
                    start: s.start + first.max(0) * step,
                    step,
                    values,
                }
            })
            .collect())
    }
}

/// Replays rule `name` of `rules` over `[from, until]` every `step` seconds (`step <= 0`
/// means the rule's own `every`), reading history from the rule's source in `sources`.
///
/// # Errors
///
/// [`Error::UnknownRule`], [`Error::NotReplayable`] for HTTP/TCP checks, [`Error::History`]
/// when the history query fails, [`Error::InvalidRange`] for an empty or oversized range.
pub fn run(
    rules: &RulesFile,
    sources: &Sources,
    name: &str,
    from: i64,
    until: i64,
    step: i64,
) -> Result<Report> {
    let rule = rules.rule(name).ok_or_else(|| Error::UnknownRule(name.to_owned()))?;
    let (target, lookback) = match &rule.kind {
        RuleKind::Graphite { target } => (target.clone(), rule.window + rule.lag),
        RuleKind::Freshness { target, max_age } => (target.clone(), rule.window + max_age),
        other => {
            return Err(Error::NotReplayable { rule: name.to_owned(), kind: other.name() });
        }
    };
    let step = if step <= 0 { rule.every } else { step };
    if until < from || (until - from) / step > MAX_BACKTEST_STEPS {
        return Err(Error::InvalidRange { from, until, step });
    }
    let wall_now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(until, |d| d.as_secs() as i64)
        .max(until);
    let source = sources
        .get(&rule.source, rule.timeout)
        .map_err(|source| Error::History { rule: name.to_owned(), source })?;
    let series = source
        .query(&target, from - lookback, until, wall_now)
        .map_err(|source| Error::History { rule: name.to_owned(), source })?;

    let one = rules.only(name).ok_or_else(|| Error::UnknownRule(name.to_owned()))?;
    let history = Arc::new(HistorySource { series });
    let config = EngineConfig { history_limit: usize::MAX, workers: 1, ..EngineConfig::default() };
    let mut engine = Engine::with_config(one, Sources::fixed(history), None, config)?;

    let mut report = Report {
        rule: name.to_owned(),
        from,
        until,
        step,
        evaluations: 0,
        transitions: Vec::new(),
        notifications: Vec::new(),
        firing_seconds: BTreeMap::new(),
        firings: 0,
        flaps_per_day: 0.0,
    };
    let mut last: BTreeMap<Labels, (Status, Option<Severity>)> = BTreeMap::new();
    let mut t = from;
    // Bounded by the range check above: at most MAX_BACKTEST_STEPS + 1 iterations.
    while t <= until {
        let events = engine.evaluate_round(t);
        report.evaluations += 1;
        let mut seen: BTreeMap<Labels, (Status, Option<Severity>)> = BTreeMap::new();
        for ev in events {
            notification(&mut report, &last, &ev, t);
            if ev.is_active() {
                *report.firing_seconds.entry(ev.labels.clone()).or_insert(0) += step;
                seen.insert(ev.labels, (ev.status, ev.severity));
            }
        }
        last = seen;
        t += step;
    }
    report.transitions = engine.history(usize::MAX).into_iter().rev().collect();
    let days = ((until - from) as f64 / 86_400.0).max(1.0 / 24.0);
    report.flaps_per_day = report.firings as f64 / days;
    Ok(report)
}

fn notification(
    report: &mut Report,
    last: &BTreeMap<Labels, (Status, Option<Severity>)>,
    ev: &AlertEvent,
    at: i64,
) {
    let prev = last.get(&ev.labels);
    let kind = match (prev, ev.is_active()) {
        (None, true) => {
            report.firings += 1;
            "firing"
        }
        (Some(_), false) => "resolved",
        (Some((_, sev)), true) if ev.severity > *sev && ev.status == Status::Firing => "escalated",
        (Some((st, _)), true)
            if *st != ev.status
                && !matches!(
                    (st, ev.status),
                    (Status::Firing, Status::Recovering) | (Status::Recovering, Status::Firing)
                ) =>
        {
            "changed"
        }
        _ => return,
    };
    report.notifications.push(Notification {
        at,
        kind,
        labels: ev.labels.clone(),
        status: ev.status,
        severity: ev.severity,
        value: ev.value,
    });
}

fn time(ts: i64) -> String {
    render::time::format_csv_time(ts, &render::time::TimeZone::utc())
}

fn labels_text(labels: &Labels) -> String {
    let inner: Vec<String> = labels
        .iter()
        .filter(|(k, _)| k.as_str() != "alertname")
        .map(|(k, v)| format!("{k}=\"{v}\""))
        .collect();
    format!("{{{}}}", inner.join(", "))
}

fn value_text(v: Option<f64>) -> String {
    v.map_or_else(|| "-".to_owned(), crate::template::format_value)
}

impl fmt::Display for Report {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(
            f,
            "backtest of rule `{}` from {} to {} UTC, every {} ({} evaluations)",
            self.rule,
            time(self.from),
            time(self.until),
            format_duration(self.step),
            self.evaluations
        )?;
        writeln!(f, "\ntransitions ({}):", self.transitions.len())?;
        for t in &self.transitions {
            writeln!(
                f,
                "  {}  {}  {} -> {}{}  value={}",
                time(t.at),
                labels_text(&t.labels),
                crate::engine::status_name(t.from),
                crate::engine::status_name(t.to),
                t.severity.map_or(String::new(), |s| format!(" ({s:?})").to_lowercase()),
                value_text(t.value)
            )?;
        }
        writeln!(f, "\nnotifications that would have been sent ({}):", self.notifications.len())?;
        for n in &self.notifications {
            writeln!(
                f,
                "  {}  {:<9} {}  {}{}  value={}",
                time(n.at),
                n.kind,
                labels_text(&n.labels),
                crate::engine::status_name(n.status),
                n.severity.map_or(String::new(), |s| format!(" ({s:?})").to_lowercase()),
                value_text(n.value)
            )?;
        }
        writeln!(f, "\ntime active per instance:")?;
        let mut total = 0;
        for (labels, secs) in &self.firing_seconds {
            total += secs;
            writeln!(f, "  {}  {}", labels_text(labels), format_duration(*secs))?;
        }
        writeln!(
            f,
            "\nsummary: {} firings, {} active in total, {:.2} flaps/day",
            self.firings,
            format_duration(total),
            self.flaps_per_day
        )?;
        writeln!(
            f,
            "note: history older than the finest Whisper archive is rolled up (coarser steps, \
             aggregated values), so a backtest over it is approximate"
        )
    }
}
