//! Evaluation rounds and the per-instance state machine.
//!
//! ```text
//!            bad               bad for `for`             good
//!  Normal ───────▶ Pending ───────────────▶ Firing ───────────▶ Recovering ──(keep_firing_for)──▶ Normal
//!    ▲               │ good                  │ ▲  (warning ⇄ critical at once)   │ bad
//!    └───────────────┘                       │ └───────────────────────────────────┘
//!                                            └── NoData / Error replace Firing while the query says so
//! ```
//!
//! "Bad" is the condition holding, or no data / an error under the `alert`, `nodata` and
//! `error` policies; `ok` makes them good and `keep_last` changes nothing. NoData and Error go
//! through the pending period like Firing does, so one timed-out query does not page anyone.
//! While an instance is active (Firing or Recovering) the condition is judged against `clear`
//! when set (hysteresis), so a value hovering at the threshold does not flap.
//!
//! A round ([`Engine::evaluate_round`]) queries every due rule (in parallel, on a few scoped
//! threads: remote queries and checks wait on the network), then applies the results in rule
//! order, then writes the state file. It returns one [`AlertEvent`] for every active instance
//! (Firing, Recovering, NoData, Error) — so the notifier can time repeats without its own clock
//! per alert — and one resolution event (status Normal, `ends_at` set) for each instance that
//! stopped being active in this round.

use std::collections::{BTreeMap, BTreeSet, VecDeque};
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Instant;

use serde::{Deserialize, Serialize};

use crate::checks::{self, CheckOutcome};
use crate::error::{Error, Result};
use crate::metrics::EngineMetrics;
use crate::model::{AlertEvent, Labels, Severity, Status, fingerprint};
use crate::rules::{
    ErrorPolicy, MissingPolicy, NoDataPolicy, Rule, RuleKind, RulesFile, SourceSpec,
};
use crate::source::{SeriesData, SourceError, Sources};
use crate::state::{self, EngineState, SavedInstance, SavedRule, StateFile, Transition};
use crate::template::Vars;

/// Default number of transitions kept in the history ring.
pub const DEFAULT_HISTORY_LIMIT: usize = 1000;

/// Engine settings that are not rules.
#[derive(Clone, Debug)]
pub struct EngineConfig {
    /// Base URL for generator links of local rules (the server's own URL); empty gives
    /// relative links (`/render?...`). Default: empty.
    pub external_url: String,
    /// Transitions kept in memory and in the state file. Default: 1000.
    pub history_limit: usize,
    /// Start with empty state when the state file is corrupt or of another version (the
    /// error is logged); otherwise [`Engine::new`] fails. Default: false.
    pub start_fresh_on_bad_state: bool,
    /// Threads that run queries and checks in a round. Default: 4.
    pub workers: usize,
}

impl Default for EngineConfig {
    fn default() -> EngineConfig {
        EngineConfig {
            external_url: String::new(),
            history_limit: DEFAULT_HISTORY_LIMIT,
            start_fresh_on_bad_state: false,
            workers: 4,
        }
    }
}

/// One instance as the status page and API show it.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct InstanceView {
    /// The rule.
    pub rule: String,
    /// The labels' fingerprint.
    pub fingerprint: String,
    /// Identity.
    pub labels: Labels,
    /// Where it is.
    pub status: Status,
    /// Severity (firing), or the prospective one (pending).
    pub severity: Option<Severity>,
    /// The last judged value.
    pub value: Option<f64>,
    /// When it entered its status.
    pub since: i64,
    /// When it fired (active instances).
    pub starts_at: Option<i64>,
    /// When its pending timer started.
    pub pending_since: Option<i64>,
    /// When it was last judged.
    pub last_eval: i64,
    /// Rendered annotations.
    pub annotations: Labels,
    /// The error or check detail behind the status.
    pub detail: Option<String>,
}

/// One rule as the status page and API show it.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct RuleView {
    /// Name.
    pub name: String,
    /// `graphite`, `freshness`, `http`, `tcp`.
    pub kind: &'static str,
    /// The target, URL or address.
    pub subject: String,
    /// `local` or the remote URL.
    pub source: String,
    /// Line in the rules file.
    pub line: usize,
    /// Seconds between evaluations.
    pub every: i64,
    /// Pending period (seconds).
    pub for_seconds: i64,
    /// The condition in words (`last < 15 (warn), < 5 (crit), clear at 20`).
    pub condition: String,
    /// Last evaluation time.
    pub last_eval: Option<i64>,
    /// How long its last query/check took.
    pub last_duration_ms: f64,
    /// The last query error, if the last evaluation failed.
    pub last_error: Option<String>,
    /// Instances by status name.
    pub counts: BTreeMap<String, usize>,
    /// A render link to the target.
    pub generator_url: String,
    /// Receivers.
    pub notify: Vec<String>,
}

/// What a reload did ([`Engine::reload`]).
#[derive(Clone, Debug, Default, PartialEq, Serialize)]
pub struct ReloadReport {
    /// Rules in force after it.
    pub rules: usize,
    /// Rules that kept their state.
    pub kept: usize,
    /// New rules.
    pub added: Vec<String>,
    /// Rules whose name stayed but whose identity (kind, target, labels, aggregation)
    /// changed: their old instances resolved, they start fresh.
    pub changed: Vec<String>,
    /// Rules that are gone.
    pub removed: Vec<String>,
    /// One resolution event per active instance of the changed and removed rules
    /// (serialised as their number).
    #[serde(serialize_with = "count")]
    pub resolved: Vec<AlertEvent>,
}

fn count<S: serde::Serializer>(v: &[AlertEvent], s: S) -> std::result::Result<S::Ok, S::Error> {
    s.serialize_u64(v.len() as u64)
}

/// Timing of the last round.
#[derive(Clone, Copy, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct RoundStats {
    /// The round's `now`.
    pub at: i64,
    /// Rules evaluated (due).
    pub rules: usize,
    /// Wall time of the whole round, state file included.
    pub duration_ms: f64,
    /// Rules whose query failed.
    pub errors: usize,
}

/// What a rule's query or check produced this round.
enum Outcome {
    Series(std::result::Result<Vec<SeriesData>, SourceError>),
    Check(CheckOutcome),
}

/// One judgement of one instance in one round.
#[derive(Clone, Debug, PartialEq)]
enum Obs {
    Good(Option<f64>),
    Bad(Severity, Option<f64>),
    NoData,
    Error(String),
    Keep,
}

impl Obs {
    /// Worse observations win when two series map to one instance.
    fn rank(&self) -> u8 {
        match self {
            Obs::Keep => 0,
            Obs::Good(_) => 1,
            Obs::NoData => 2,
            Obs::Error(_) => 3,
            Obs::Bad(Severity::Warning, _) => 4,
            Obs::Bad(Severity::Critical, _) => 5,
        }
    }
}

struct RuleSlot {
    rule: Rule,
    /// `alertname` plus the rule's labels that need no series: the rule-level instance.
    rule_labels: Labels,
    instances: BTreeMap<Labels, SavedInstance>,
    last_eval: Option<i64>,
    last_duration_ms: f64,
    last_error: Option<String>,
    generator_url: String,
}

/// The alert engine: rules, their instances, the history, the state file.
pub struct Engine {
    rules_file: RulesFile,
    slots: Vec<RuleSlot>,
    sources: Arc<Sources>,
    state_path: Option<PathBuf>,
    history: VecDeque<Transition>,
    notify: serde_json::Value,
    config: EngineConfig,
    last_round: RoundStats,
    last_save_error: Option<String>,
    /// Self-metrics: rounds run.
    rounds: u64,
    /// Self-metrics: rules evaluated.
    rule_evaluations: u64,
    /// Self-metrics: evaluations whose query failed.
    evaluation_errors: u64,
    /// Self-metrics: wall time of all rounds (milliseconds).
    round_ms_total: f64,
    /// Self-metrics: reloads that took effect.
    reloads: u64,
}

impl Engine {
    /// An engine over `rules` reading through `sources`, restoring from and saving to
    /// `state_path` when given.
    ///
    /// # Errors
    ///
    /// The state file is unreadable, corrupt or of another version (unless
    /// [`EngineConfig::start_fresh_on_bad_state`]).
    pub fn new(rules: RulesFile, sources: Sources, state_path: Option<PathBuf>) -> Result<Engine> {
        Engine::with_config(rules, sources, state_path, EngineConfig::default())
    }

    /// [`Engine::new`] with settings.
    ///
    /// # Errors
    ///
    /// As [`Engine::new`].
    pub fn with_config(
        rules: RulesFile,
        sources: Sources,
        state_path: Option<PathBuf>,
        config: EngineConfig,
    ) -> Result<Engine> {
        let saved = match &state_path {
            Some(p) => match state::load(p) {
                Ok(s) => s,
                Err(e @ (Error::StateCorrupt { .. } | Error::StateVersion { .. }))
                    if config.start_fresh_on_bad_state =>
                {
                    tracing::warn!(error = %e, "starting with empty alert state");
                    None
                }
                Err(e) => return Err(e),
            },
            None => None,
        };
        let mut engine = Engine {
            slots: Vec::new(),
            rules_file: rules.clone(),
            sources: Arc::new(sources),
            state_path,
            history: VecDeque::new(),
            notify: serde_json::Value::Null,
            config,
            last_round: RoundStats::default(),
            last_save_error: None,
            rounds: 0,
            rule_evaluations: 0,
            evaluation_errors: 0,
            round_ms_total: 0.0,
            reloads: 0,
        };
        engine.install(rules);
        if let Some(saved) = saved {
            engine.restore(saved);
        }
        Ok(engine)
    }

    /// Puts `rules` in force. A rule whose name and identity ([`same_identity`]) are
    /// unchanged keeps its slot's instances and last evaluation; the slots of removed and
    /// changed rules are returned.
    fn install(&mut self, rules: RulesFile) -> Vec<RuleSlot> {
        let mut old: BTreeMap<String, RuleSlot> =
            std::mem::take(&mut self.slots).into_iter().map(|s| (s.rule.name.clone(), s)).collect();
        let mut retired = Vec::new();
        let ext = self.config.external_url.trim_end_matches('/').to_owned();
        self.slots = rules
            .rules
            .iter()
            .map(|rule| {
                let mut slot = RuleSlot {
                    rule_labels: rule_labels(rule),
                    generator_url: generator_url(rule, &ext),
                    rule: rule.clone(),
                    instances: BTreeMap::new(),
                    last_eval: None,
                    last_duration_ms: 0.0,
                    last_error: None,
                };
                match old.remove(&rule.name) {
                    Some(prev) if same_identity(&prev.rule, rule) => {
                        slot.instances = prev.instances;
                        slot.last_eval = prev.last_eval;
                        slot.last_duration_ms = prev.last_duration_ms;
                        slot.last_error = prev.last_error;
                    }
                    Some(prev) => retired.push(prev),
                    None => {}
                }
                slot
            })
            .collect();
        retired.extend(old.into_values());
        self.rules_file = rules;
        retired
    }

    fn restore(&mut self, saved: StateFile) {
        self.notify = saved.notify;
        let limit = self.config.history_limit;
        let skip = saved.engine.history.len().saturating_sub(limit);
        self.history = saved.engine.history.into_iter().skip(skip).collect();
        let mut rules = saved.engine.rules;
        for slot in &mut self.slots {
            if let Some(r) = rules.remove(&slot.rule.name) {
                slot.last_eval = r.last_eval;
                for inst in r.instances {
                    slot.instances.insert(inst.labels.clone(), inst);
                }
            }
        }
    }

    /// Replaces the rules (a hot reload) at `now`, between rounds. A rule whose name,
    /// kind, target (or URL, address), labels and aggregation are unchanged keeps its
    /// instances with their timers (pending since, firing since) and its last evaluation, so
    /// it is not evaluated again in the same slot; its other settings (thresholds, `for`,
    /// annotations, receivers...) apply from its next evaluation. Removed rules — and rules
    /// whose identity changed, which start again as new — resolve their active instances:
    /// the report carries one resolution event per instance that was active (for the
    /// notifier, routed to the old rule's receivers), and the history records each
    /// instance that was not normal going to normal. New rules start fresh.
    pub fn reload(&mut self, rules: RulesFile, now: i64) -> ReloadReport {
        let before: BTreeSet<String> = self.slots.iter().map(|s| s.rule.name.clone()).collect();
        let retired = self.install(rules);
        let mut report = ReloadReport { rules: self.slots.len(), ..ReloadReport::default() };
        for slot in &retired {
            let name = &slot.rule.name;
            if self.slots.iter().any(|s| &s.rule.name == name) {
                report.changed.push(name.clone());
            } else {
                report.removed.push(name.clone());
            }
            for inst in slot.instances.values() {
                if inst.status == Status::Normal {
                    continue;
                }
                let mut gone = inst.clone();
                gone.status = Status::Normal;
                if is_active(inst.status) {
                    report.resolved.push(event(slot, &gone, Some(now)));
                }
                push_history(
                    &mut self.history,
                    self.config.history_limit,
                    Transition {
                        at: now,
                        rule: name.clone(),
                        labels: inst.labels.clone(),
                        from: inst.status,
                        to: Status::Normal,
                        severity: inst.severity,
                        value: inst.value,
                    },
                );
            }
        }
        for slot in &self.slots {
            if !before.contains(&slot.rule.name) {
                report.added.push(slot.rule.name.clone());
            } else if !report.changed.contains(&slot.rule.name) {
                report.kept += 1;
            }
        }
        self.reloads += 1;
        report
    }

    /// The rules in force.
    pub fn rules(&self) -> &RulesFile {
        &self.rules_file
    }

    /// The notifier's opaque part of the state file.
    pub fn notify_state(&self) -> &serde_json::Value {
        &self.notify
    }

    /// Sets the notifier's part; it is written with the next save.
    pub fn set_notify_state(&mut self, value: serde_json::Value) {
        self.notify = value;
    }

    /// Timing of the last round.
    pub fn last_round(&self) -> RoundStats {
        self.last_round
    }

    /// Why the last state-file write failed, if it did (it is retried each round).
    pub fn last_save_error(&self) -> Option<&str> {
        self.last_save_error.as_deref()
    }

    /// Evaluates every due rule at `now` (Unix seconds) and returns the events: one per active
    /// instance, one per resolution. A rule is due when a new `every`-aligned slot has started
    /// since its last evaluation, so a caller ticking a little early or late never skips or
    /// doubles a rule. The state file is written at the end; a failed write is logged and kept
    /// in [`Engine::last_save_error`], and does not stop evaluation.
    pub fn evaluate_round(&mut self, now: i64) -> Vec<AlertEvent> {
        let started = Instant::now();
        let due: Vec<usize> = self
            .slots
            .iter()
            .enumerate()
            .filter(|(_, s)| {
                s.last_eval
                    .is_none_or(|t| now.div_euclid(s.rule.every) > t.div_euclid(s.rule.every))
            })
            .map(|(i, _)| i)
            .collect();
        let outcomes = self.run_queries(&due, now);
        let mut resolved = Vec::new();
        let mut errors = 0;
        for (i, outcome, ms) in outcomes {
            let Some(slot) = self.slots.get_mut(i) else { continue };
            slot.last_eval = Some(now);
            slot.last_duration_ms = ms;
            slot.last_error = match &outcome {
                Outcome::Series(Err(e)) => {
                    errors += 1;
                    Some(e.to_string())
                }
                _ => None,
            };
            let observations = observe(slot, outcome, now);
            apply(
                slot,
                observations,
                now,
                &mut self.history,
                self.config.history_limit,
                &mut resolved,
            );
        }
        let mut events = resolved;
        for slot in &self.slots {
            for inst in slot.instances.values() {
                if is_active(inst.status) {
                    events.push(event(slot, inst, None));
                }
            }
        }
        if self.state_path.is_some() {
            self.save(now);
        }
        self.last_round = RoundStats {
            at: now,
            rules: due.len(),
            duration_ms: started.elapsed().as_secs_f64() * 1000.0,
            errors,
        };
        self.rounds += 1;
        self.rule_evaluations += due.len() as u64;
        self.evaluation_errors += errors as u64;
        self.round_ms_total += self.last_round.duration_ms;
        events
    }

    /// The engine's self-metrics: totals since it was made, and its instances now.
    pub fn metrics(&self) -> EngineMetrics {
        let mut instances: BTreeMap<String, u64> = [
            Status::Normal,
            Status::Pending,
            Status::Firing,
            Status::Recovering,
            Status::NoData,
            Status::Error,
        ]
        .into_iter()
        .map(|s| (status_name(s).to_owned(), 0))
        .collect();
        for slot in &self.slots {
            for inst in slot.instances.values() {
                *instances.entry(status_name(inst.status).to_owned()).or_insert(0) += 1;
            }
        }
        EngineMetrics {
            rounds: self.rounds,
            rule_evaluations: self.rule_evaluations,
            evaluation_errors: self.evaluation_errors,
            round_duration_ms_total: self.round_ms_total,
            last_round_duration_ms: self.last_round.duration_ms,
            rules: self.slots.len() as u64,
            instances,
            reloads: self.reloads,
            ..EngineMetrics::default()
        }
    }

    /// Runs the due rules' queries and checks, in parallel when there are several.
    fn run_queries(&self, due: &[usize], now: i64) -> Vec<(usize, Outcome, f64)> {
        let run = |i: usize| -> Option<(usize, Outcome, f64)> {
            let slot = self.slots.get(i)?;
            let t = Instant::now();
            let outcome = query(&self.sources, &slot.rule, now);
            Some((i, outcome, t.elapsed().as_secs_f64() * 1000.0))
        };
        let workers = self.config.workers.clamp(1, 64).min(due.len());
        let mut out: Vec<(usize, Outcome, f64)> = if workers <= 1 {
            due.iter().filter_map(|&i| run(i)).collect()
        } else {
            let next = AtomicUsize::new(0);
            std::thread::scope(|scope| {
                let handles: Vec<_> = (0..workers)
                    .map(|_| {
                        scope.spawn(|| {
                            let mut mine = Vec::new();
                            // Bounded: each iteration claims a distinct index below due.len().
                            loop {
                                let k = next.fetch_add(1, Ordering::Relaxed);
                                let Some(&i) = due.get(k) else { break };
                                mine.extend(run(i));
                            }
                            mine
                        })
                    })
                    .collect();
                // A worker that panicked (a bug, not input) loses its rules for this round;
                // they are evaluated again next round.
                handles.into_iter().filter_map(|h| h.join().ok()).flatten().collect()
            })
        };
        out.sort_by_key(|(i, _, _)| *i);
        out
    }

    /// Writes the state file now (also done after every round).
    ///
    /// # Errors
    ///
    /// The write failed ([`Error::Io`] naming the file); no state path configured is not an
    /// error.
    pub fn save_state(&mut self, now: i64) -> Result<()> {
        let Some(path) = &self.state_path else { return Ok(()) };
        state::save(path, &self.snapshot(now))
    }

    fn save(&mut self, now: i64) {
        match self.save_state(now) {
            Ok(()) => self.last_save_error = None,
            Err(e) => {
                tracing::warn!(error = %e, "alert state not saved");
                self.last_save_error = Some(e.to_string());
            }
        }
    }

    /// The state as it would be saved.
    pub fn snapshot(&self, now: i64) -> StateFile {
        let rules = self
            .slots
            .iter()
            .map(|s| {
                // Normal instances are saved too: they are what "missing" and "no data for
                // every known series" are judged against after a restart.
                let instances = s.instances.values().cloned().collect();
                (s.rule.name.clone(), SavedRule { last_eval: s.last_eval, instances })
            })
            .collect();
        StateFile {
            version: state::STATE_VERSION,
            saved_at: now,
            engine: EngineState { rules, history: self.history.iter().cloned().collect() },
            notify: self.notify.clone(),
        }
    }

    /// Every tracked instance (Normal ones included), in rule order.
    pub fn instances(&self) -> Vec<InstanceView> {
        self.slots
            .iter()
            .flat_map(|s| {
                s.instances.values().map(|i| InstanceView {
                    rule: s.rule.name.clone(),
                    fingerprint: fingerprint(&i.labels),
                    labels: i.labels.clone(),
                    status: i.status,
                    severity: i.severity,
                    value: i.value,
                    since: i.since,
                    starts_at: i.starts_at,
                    pending_since: i.pending_since,
                    last_eval: i.last_eval,
                    annotations: i.annotations.clone(),
                    detail: i.detail.clone(),
                })
            })
            .collect()
    }

    /// The rules with their last evaluation.
    pub fn rules_view(&self) -> Vec<RuleView> {
        self.slots
            .iter()
            .map(|s| {
                let mut counts = BTreeMap::new();
                for i in s.instances.values() {
                    *counts.entry(status_name(i.status).to_owned()).or_insert(0) += 1;
                }
                RuleView {
                    name: s.rule.name.clone(),
                    kind: s.rule.kind.name(),
                    subject: s.rule.subject().to_owned(),
                    source: s.rule.source.to_string(),
                    line: s.rule.line,
                    every: s.rule.every,
                    for_seconds: s.rule.for_,
                    condition: condition_text(&s.rule),
                    last_eval: s.last_eval,
                    last_duration_ms: s.last_duration_ms,
                    last_error: s.last_error.clone(),
                    counts,
                    generator_url: s.generator_url.clone(),
                    notify: s.rule.notify.clone(),
                }
            })
            .collect()
    }

    /// The newest `limit` transitions, newest first.
    pub fn history(&self, limit: usize) -> Vec<Transition> {
        self.history.iter().rev().take(limit).cloned().collect()
    }

    /// What [`evaluate_once`] needs from this engine, taken under its lock and used after
    /// it is released (so a one-off evaluation never waits for, or holds up, a round): the
    /// sources and the rules file's defaults.
    pub fn eval_context(&self) -> EvalContext {
        EvalContext {
            sources: Arc::clone(&self.sources),
            defaults: self.rules_file.clone_defaults(),
            external_url: self.config.external_url.trim_end_matches('/').to_owned(),
        }
    }
}

/// The sources and defaults a one-off evaluation runs with ([`Engine::eval_context`]).
#[derive(Clone)]
pub struct EvalContext {
    /// Where the rule's data comes from.
    pub sources: Arc<Sources>,
    /// A rules file with the engine's `[defaults]` and no rules, to resolve the rule against
    /// ([`crate::rules::parse_rule`]).
    pub defaults: RulesFile,
    /// For the instances' render links.
    pub external_url: String,
}

/// What one evaluation of a rule outside the rounds produced ([`evaluate_once`]).
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct EvalReport {
    /// The rule's name (`eval` when the request named none).
    pub rule: String,
    /// When it was evaluated (Unix seconds).
    pub at: i64,
    /// The condition in words.
    pub condition: String,
    /// The query's error, if it failed.
    pub error: Option<String>,
    /// A render link to the target (empty for checks).
    pub generator_url: String,
    /// The instances the evaluation produced from a fresh state: with a `for` period a
    /// failing instance is `pending`, without one `firing`.
    pub instances: Vec<InstanceView>,
}

/// Evaluates `rule` once at `now` through the same path as a round (query, reducer,
/// judgement, the state machine from a fresh state) without storing anything or notifying.
pub fn evaluate_once(ctx: &EvalContext, rule: Rule, now: i64) -> EvalReport {
    let mut slot = RuleSlot {
        rule_labels: rule_labels(&rule),
        generator_url: generator_url(&rule, &ctx.external_url),
        rule,
        instances: BTreeMap::new(),
        last_eval: None,
        last_duration_ms: 0.0,
        last_error: None,
    };
    let outcome = query(&ctx.sources, &slot.rule, now);
    let error = match &outcome {
        Outcome::Series(Err(e)) => Some(e.to_string()),
        _ => None,
    };
    let observations = observe(&mut slot, outcome, now);
    let (mut history, mut resolved) = (VecDeque::new(), Vec::new());
    apply(&mut slot, observations, now, &mut history, 0, &mut resolved);
    let instances = slot
        .instances
        .values()
        .map(|i| InstanceView {
            rule: slot.rule.name.clone(),
            fingerprint: fingerprint(&i.labels),
            labels: i.labels.clone(),
            status: i.status,
            severity: i.severity,
            value: i.value,
            since: i.since,
            starts_at: i.starts_at,
            pending_since: i.pending_since,
            last_eval: i.last_eval,
            annotations: i.annotations.clone(),
            detail: i.detail.clone(),
        })
        .collect();
    EvalReport {
        rule: slot.rule.name.clone(),
        at: now,
        condition: condition_text(&slot.rule),
        error,
        generator_url: slot.generator_url.clone(),
        instances,
    }
}

/// The status name used in views and counts.
pub fn status_name(s: Status) -> &'static str {
    match s {
        Status::Normal => "normal",
        Status::Pending => "pending",
        Status::Firing => "firing",
        Status::Recovering => "recovering",
        Status::NoData => "no_data",
        Status::Error => "error",
    }
}

fn severity_name(s: Option<Severity>) -> &'static str {
    match s {
        Some(Severity::Warning) => "warning",
        Some(Severity::Critical) => "critical",
        None => "",
    }
}

/// True for the statuses that notify.
pub fn is_active(s: Status) -> bool {
    matches!(s, Status::Firing | Status::Recovering | Status::NoData | Status::Error)
}

fn condition_text(rule: &Rule) -> String {
    match &rule.kind {
        RuleKind::Freshness { max_age, .. } => {
            format!("newest point older than {}", crate::rules::format_duration(*max_age))
        }
        kind => {
            let mut parts = Vec::new();
            if matches!(kind, RuleKind::Http(_) | RuleKind::Tcp(_)) {
                parts.push("check fails".to_owned());
            }
            let what = match kind {
                RuleKind::Graphite { .. } => rule.reduce.to_string(),
                _ => "latency_ms".to_owned(),
            };
            if let Some(w) = rule.warn {
                parts.push(format!("{what} {} {w} (warn)", rule.op));
            }
            if let Some(c) = rule.crit {
                parts.push(format!("{what} {} {c} (crit)", rule.op));
            }
            let mut s = parts.join(", ");
            if let Some(c) = rule.clear {
                s.push_str(&format!(", clear at {c}"));
            }
            s
        }
    }
}

fn rule_labels(rule: &Rule) -> Labels {
    let mut labels = Labels::new();
    for (k, t) in &rule.labels {
        if !t.uses_series() {
            labels.insert(k.clone(), t.render(&Vars::default()));
        }
    }
    match &rule.kind {
        RuleKind::Http(h) => {
            labels.entry("instance".into()).or_insert_with(|| h.url.clone());
        }
        RuleKind::Tcp(t) => {
            labels.entry("instance".into()).or_insert_with(|| t.address.clone());
        }
        _ => {}
    }
    labels.insert("alertname".into(), rule.name.clone());
    labels
}

fn generator_url(rule: &Rule, external: &str) -> String {
    let base = match &rule.source {
        SourceSpec::Local => external.to_owned(),
        SourceSpec::Remote(u) => u.clone(),
    };
    match &rule.kind {
        RuleKind::Http(h) => h.url.clone(),
        RuleKind::Tcp(t) => format!("tcp://{}", t.address),
        kind => {
            let target = kind.target().unwrap_or("");
            let span = (3 * (rule.window + rule.lag)).max(3600);
            let q = form_urlencoded::Serializer::new(String::new())
                .append_pair("target", target)
                .append_pair("from", &format!("-{span}s"))
                .finish();
            format!("{base}/render?{q}")
        }
    }
}

/// The query or check for one rule at `now`.
fn query(sources: &Sources, rule: &Rule, now: i64) -> Outcome {
    match &rule.kind {
        RuleKind::Http(h) => Outcome::Check(checks::http(h)),
        RuleKind::Tcp(t) => Outcome::Check(checks::tcp(t)),
        kind => {
            let target = kind.target().unwrap_or("");
            let (from, until) = match kind {
                RuleKind::Freshness { max_age, .. } => (now - max_age - rule.window, now),
                _ => (now - rule.lag - rule.window, now - rule.lag),
            };
            Outcome::Series(
                sources
                    .get(&rule.source, rule.timeout)
                    .and_then(|s| s.query(target, from, until, now)),
            )
        }
    }
}

/// An instance's labels for a series: the Graphite tags, then the rule's labels rendered
/// against the series, then `alertname`.
fn series_labels(rule: &Rule, s: &SeriesData) -> Labels {
    let mut labels = s.tags.clone();
    for (k, t) in &rule.labels {
        let v = t.render(&Vars { series: &s.name, labels: Some(&s.tags), ..Vars::default() });
        labels.insert(k.clone(), v);
    }
    labels.insert("alertname".into(), rule.name.clone());
    labels
}

fn no_data_obs(rule: &Rule) -> Obs {
    match rule.no_data {
        NoDataPolicy::Ok => Obs::Good(None),
        NoDataPolicy::Alert => Obs::Bad(rule.severity, None),
        NoDataPolicy::NoData => Obs::NoData,
        NoDataPolicy::KeepLast => Obs::Keep,
    }
}

fn error_obs(rule: &Rule, e: &SourceError) -> Obs {
    match rule.on_error {
        ErrorPolicy::Ok => Obs::Good(None),
        ErrorPolicy::Alert => Obs::Bad(rule.severity, None),
        ErrorPolicy::Error => Obs::Error(e.to_string()),
        ErrorPolicy::KeepLast => Obs::Keep,
    }
}

/// Judges one window. `None`: nothing to judge (no data).
fn judge(rule: &Rule, points: &[Option<f64>], active: bool, was: Option<Severity>) -> Option<Obs> {
    let value = rule.reduce.value(points, rule.op);
    if value.is_none() && !rule.reduce.counts_nulls() {
        return None;
    }
    let holds =
        |t: Option<f64>| t.and_then(|t| rule.reduce.holds(points, value, rule.op, t)) == Some(true);
    Some(if holds(rule.crit) {
        Obs::Bad(Severity::Critical, value)
    } else if holds(rule.warn) {
        Obs::Bad(Severity::Warning, value)
    } else if active && holds(rule.clear) {
        // Between the threshold and the recovery threshold: still firing, at the lowest
        // severity the rule defines (or the one it had).
        let _ = was;
        let lowest = if rule.warn.is_some() { Severity::Warning } else { Severity::Critical };
        Obs::Bad(lowest, value)
    } else {
        Obs::Good(value)
    })
}

fn firing_like(i: Option<&SavedInstance>) -> (bool, Option<Severity>) {
    match i {
        Some(i) if matches!(i.status, Status::Firing | Status::Recovering) => (true, i.severity),
        _ => (false, None),
    }
}

/// A round's observations for one rule: instance labels to (series name, observation, detail).
type Observations = BTreeMap<Labels, (String, Obs, Option<String>)>;

fn put(out: &mut Observations, labels: Labels, series: String, obs: Obs, detail: Option<String>) {
    match out.get(&labels) {
        Some((_, old, _)) if old.rank() >= obs.rank() => {}
        _ => {
            out.insert(labels, (series, obs, detail));
        }
    }
}

/// Turns a rule's outcome into one observation per instance (the missing-series bookkeeping
/// happens here too).
fn observe(slot: &mut RuleSlot, outcome: Outcome, now: i64) -> Observations {
    let rule = &slot.rule;
    let mut out = Observations::new();
    let series = match outcome {
        Outcome::Check(c) => {
            let (active, was) = firing_like(slot.instances.get(&slot.rule_labels));
            let obs = if c.ok {
                let latency = [Some(c.latency_ms)];
                judge(rule, &latency, active, was).unwrap_or(Obs::Good(Some(c.latency_ms)))
            } else {
                Obs::Bad(rule.severity, Some(c.latency_ms))
            };
            put(&mut out, slot.rule_labels.clone(), String::new(), obs, Some(c.detail));
            return out;
        }
        Outcome::Series(Err(e)) => {
            let obs = error_obs(rule, &e);
            let detail = Some(e.to_string());
            if slot.instances.is_empty() {
                put(&mut out, slot.rule_labels.clone(), String::new(), obs, detail);
            } else {
                for (labels, inst) in &slot.instances {
                    put(&mut out, labels.clone(), inst.series.clone(), obs.clone(), detail.clone());
                }
            }
            return out;
        }
        Outcome::Series(Ok(series)) => series,
    };

    let freshness = match rule.kind {
        RuleKind::Freshness { max_age, .. } => Some(max_age),
        _ => None,
    };
    let aggregate_labels = slot.rule_labels.clone();
    let (agg_active, agg_was) = firing_like(slot.instances.get(&aggregate_labels));
    let mut with_data = 0usize;
    let mut failing = 0usize;
    let mut failing_crit = 0usize;
    for s in &series {
        let obs = match freshness {
            Some(max_age) => {
                let age = s.newest().map(|t| now - t);
                with_data += usize::from(age.is_some());
                match age {
                    Some(a) if a <= max_age => Obs::Good(Some(a as f64)),
                    _ => Obs::Bad(rule.severity, age.map(|a| a as f64)),
                }
            }
            None => {
                let labels_for_state =
                    if rule.is_aggregate() { None } else { Some(series_labels(rule, s)) };
                let (active, was) = match &labels_for_state {
                    Some(l) => firing_like(slot.instances.get(l)),
                    None => (agg_active, agg_was),
                };
                match judge(rule, &s.values, active, was) {
                    Some(o) => {
                        with_data += 1;
                        o
                    }
                    None => no_data_obs(rule),
                }
            }
        };
        if let Obs::Bad(sev, _) = obs {
            failing += 1;
            failing_crit += usize::from(sev == Severity::Critical);
        }
        if !rule.is_aggregate() {
            let labels = series_labels(rule, s);
            if let Some(inst) = slot.instances.get_mut(&labels) {
                inst.missing_rounds = 0;
            }
            put(&mut out, labels, s.name.clone(), obs, None);
        }
    }

    // The rule-level instance: aggregate rules, min_series, and "nothing came back".
    let min_failed = rule.min_series.is_some_and(|m| with_data < m);
    let agg_obs = if min_failed {
        Some((
            Obs::Bad(rule.severity, Some(with_data as f64)),
            format!("{with_data} series with data, {} expected", rule.min_series.unwrap_or(0)),
        ))
    } else if let Some(max) = rule.max_failing {
        Some(if with_data == 0 && freshness.is_none() {
            (no_data_obs(rule), "no series with data".to_owned())
        } else if failing > max {
            let sev = if failing_crit > max { Severity::Critical } else { Severity::Warning };
            (
                Obs::Bad(sev, Some(failing as f64)),
                format!("{failing} series failing, {max} allowed"),
            )
        } else {
            (Obs::Good(Some(failing as f64)), format!("{failing} series failing, {max} allowed"))
        })
    } else if series.is_empty() {
        let obs =
            if freshness.is_some() { Obs::Bad(rule.severity, None) } else { no_data_obs(rule) };
        Some((obs, "the target returned no series".to_owned()))
    } else if rule.min_series.is_some() || slot.instances.contains_key(&aggregate_labels) {
        Some((Obs::Good(None), String::new()))
    } else {
        None
    };

    if series.is_empty() && !rule.is_aggregate() {
        // Nothing came back: every instance we know gets the no-data judgement (freshness:
        // stale), and the rule-level instance carries it when there are none.
        let (obs, detail) = agg_obs.clone().unwrap_or((Obs::Keep, String::new()));
        let others: Vec<(Labels, String)> = slot
            .instances
            .iter()
            .filter(|(l, _)| **l != aggregate_labels)
            .map(|(l, i)| (l.clone(), i.series.clone()))
            .collect();
        if others.is_empty() || rule.min_series.is_some() {
            put(
                &mut out,
                aggregate_labels.clone(),
                String::new(),
                obs.clone(),
                Some(detail.clone()),
            );
        }
        for (l, series_name) in others {
            let o =
                if freshness.is_some() { Obs::Bad(rule.severity, None) } else { no_data_obs(rule) };
            put(&mut out, l, series_name, o, None);
        }
        return out;
    }
    if let Some((obs, detail)) = agg_obs {
        let detail = (!detail.is_empty()).then_some(detail);
        put(&mut out, aggregate_labels.clone(), String::new(), obs, detail);
    }

    // Instances whose series did not come back while others did.
    if !rule.is_aggregate() {
        for (labels, inst) in &mut slot.instances {
            if *labels == aggregate_labels || out.contains_key(labels) {
                continue;
            }
            inst.missing_rounds = inst.missing_rounds.saturating_add(1);
            let obs = if inst.missing_rounds < rule.missing_after {
                Obs::Keep
            } else {
                match rule.missing {
                    MissingPolicy::Resolve => continue,
                    MissingPolicy::NoData => Obs::NoData,
                }
            };
            out.insert(labels.clone(), (inst.series.clone(), obs, Some("series missing".into())));
        }
    }
    out
}

/// Appends to the history ring, dropping the oldest past `limit`.
fn push_history(history: &mut VecDeque<Transition>, limit: usize, t: Transition) {
    if history.len() >= limit.max(1) {
        history.pop_front();
    }
    history.push_back(t);
}

/// Whether `new` is the same rule as `old` for its instances: same name, kind, target (URL,
/// address), label templates and aggregation — what decides the instances' identities. A
/// reload keeps the state of such a rule.
fn same_identity(old: &Rule, new: &Rule) -> bool {
    old.name == new.name
        && old.kind.name() == new.kind.name()
        && old.subject() == new.subject()
        && old.labels == new.labels
        && old.is_aggregate() == new.is_aggregate()
}

fn set_status(inst: &mut SavedInstance, to: Status, now: i64) {
    if inst.status != to {
        inst.status = to;
        inst.since = now;
    }
}

/// Applies a round's observations to a rule's instances: the state machine.
fn apply(
    slot: &mut RuleSlot,
    observations: Observations,
    now: i64,
    history: &mut VecDeque<Transition>,
    history_limit: usize,
    resolved: &mut Vec<AlertEvent>,
) {
    let rule = slot.rule.clone();
    let mut record = |inst: &SavedInstance, from: Status| {
        if from != inst.status {
            push_history(
                history,
                history_limit,
                Transition {
                    at: now,
                    rule: rule.name.clone(),
                    labels: inst.labels.clone(),
                    from,
                    to: inst.status,
                    severity: inst.severity,
                    value: inst.value,
                },
            );
        }
    };

    // Instances whose series went missing for good under `missing = "resolve"`: they are in
    // neither the observations nor kept.
    let gone: Vec<Labels> = slot
        .instances
        .keys()
        .filter(|l| {
            !observations.contains_key(*l) && **l != slot.rule_labels && !rule.is_aggregate()
        })
        .filter(|l| slot.instances.get(*l).is_some_and(|i| i.missing_rounds >= rule.missing_after))
        .cloned()
        .collect();
    for labels in gone {
        if let Some(mut inst) = slot.instances.remove(&labels) {
            let from = inst.status;
            if is_active(from) {
                inst.status = Status::Normal;
                resolved.push(event(slot, &inst, Some(now)));
            }
            inst.status = Status::Normal;
            inst.last_eval = now;
            record(&inst, from);
        }
    }

    for (labels, (series, obs, detail)) in observations {
        let inst = slot.instances.entry(labels.clone()).or_insert_with(|| SavedInstance {
            labels,
            series: series.clone(),
            status: Status::Normal,
            severity: None,
            value: None,
            since: now,
            pending_since: None,
            starts_at: None,
            recovering_since: None,
            last_eval: now,
            missing_rounds: 0,
            annotations: Labels::new(),
            detail: None,
        });
        let from = inst.status;
        let was_active = is_active(from);
        let resolved_now = step(inst, obs, detail, now, &rule);
        if is_active(inst.status) || resolved_now || inst.status == Status::Pending {
            render_annotations(&rule, inst);
        }
        record(inst, from);
        if resolved_now && was_active {
            resolved.push(event(&slot_view(&rule, &slot.generator_url), inst, Some(now)));
            inst.starts_at = None;
            inst.severity = None;
        }
    }

    // Forget rule-level instances that are plainly normal and carry nothing (they are
    // recreated when needed); keep them for aggregate and min_series rules, whose instance
    // is the rule's standing status.
    let keep_rule_level = rule.is_aggregate() || rule.min_series.is_some();
    let rl = slot.rule_labels.clone();
    if !keep_rule_level
        && !matches!(rule.kind, RuleKind::Http(_) | RuleKind::Tcp(_))
        && slot.instances.get(&rl).is_some_and(|i| i.status == Status::Normal)
    {
        slot.instances.remove(&rl);
    }
}

/// A borrowed view to build events from while the slot's map is mutably borrowed.
struct SlotView<'a> {
    rule: &'a Rule,
    generator_url: &'a str,
}

fn slot_view<'a>(rule: &'a Rule, generator_url: &'a str) -> SlotView<'a> {
    SlotView { rule, generator_url }
}

trait EventSource {
    fn parts(&self) -> (&Rule, &str);
}

impl EventSource for RuleSlot {
    fn parts(&self) -> (&Rule, &str) {
        (&self.rule, &self.generator_url)
    }
}

impl EventSource for SlotView<'_> {
    fn parts(&self) -> (&Rule, &str) {
        (self.rule, self.generator_url)
    }
}

fn event(slot: &dyn EventSource, inst: &SavedInstance, ends_at: Option<i64>) -> AlertEvent {
    let (rule, url) = slot.parts();
    AlertEvent {
        labels: inst.labels.clone(),
        annotations: inst.annotations.clone(),
        status: if ends_at.is_some() { Status::Normal } else { inst.status },
        severity: inst.severity,
        value: inst.value,
        starts_at: inst.starts_at.unwrap_or(inst.since),
        ends_at,
        generator_url: url.to_owned(),
        receivers: rule.notify.clone(),
    }
}

fn render_annotations(rule: &Rule, inst: &mut SavedInstance) {
    let vars = Vars {
        value: inst.value,
        series: &inst.series,
        labels: Some(&inst.labels),
        severity: severity_name(inst.severity),
        status: status_name(inst.status),
    };
    let mut out: Labels =
        rule.annotations.iter().map(|(k, t)| (k.clone(), t.render(&vars))).collect();
    if let Some(d) = &inst.detail {
        out.entry("detail".into()).or_insert_with(|| d.clone());
    }
    inst.annotations = out;
}

/// One step of the state machine. Returns true when the instance resolved (left the active
/// statuses for Normal) in this step.
fn step(inst: &mut SavedInstance, obs: Obs, detail: Option<String>, now: i64, rule: &Rule) -> bool {
    let target = match obs {
        Obs::Keep => {
            inst.last_eval = now;
            return false;
        }
        Obs::Good(v) => {
            inst.last_eval = now;
            inst.value = v;
            inst.detail = detail;
            return match inst.status {
                Status::Normal => false,
                Status::Pending => {
                    inst.pending_since = None;
                    inst.severity = None;
                    set_status(inst, Status::Normal, now);
                    false
                }
                Status::Firing | Status::NoData | Status::Error if rule.keep_firing_for > 0 => {
                    inst.recovering_since = Some(now);
                    set_status(inst, Status::Recovering, now);
                    false
                }
                Status::Recovering
                    if now - inst.recovering_since.unwrap_or(now) < rule.keep_firing_for =>
                {
                    false
                }
                Status::Firing | Status::NoData | Status::Error | Status::Recovering => {
                    inst.recovering_since = None;
                    inst.pending_since = None;
                    set_status(inst, Status::Normal, now);
                    true
                }
            };
        }
        Obs::Bad(sev, v) => {
            inst.value = v;
            (Status::Firing, Some(sev))
        }
        Obs::NoData => {
            inst.value = None;
            (Status::NoData, None)
        }
        Obs::Error(_) => {
            inst.value = None;
            (Status::Error, None)
        }
    };
    inst.last_eval = now;
    inst.detail = detail;
    let (status, severity) = target;
    match inst.status {
        Status::Normal => {
            inst.pending_since = Some(now);
            inst.severity = severity;
            if rule.for_ == 0 {
                activate(inst, status, severity, now);
            } else {
                set_status(inst, Status::Pending, now);
            }
        }
        Status::Pending => {
            inst.severity = severity;
            if now - inst.pending_since.unwrap_or(now) >= rule.for_ {
                activate(inst, status, severity, now);
            }
        }
        Status::Firing | Status::NoData | Status::Error | Status::Recovering => {
            inst.recovering_since = None;
            inst.severity = severity;
            set_status(inst, status, now);
        }
    }
    false
}

fn activate(inst: &mut SavedInstance, status: Status, severity: Option<Severity>, now: i64) {
    inst.starts_at = Some(now);
    inst.severity = severity;
    set_status(inst, status, now);
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rules::parse;
    use std::path::Path;
    use std::sync::Arc;

    fn engine(rules: &str, data: render::MemorySource) -> Engine {
        let rules = parse(rules, Path::new("t.toml")).unwrap();
        Engine::new(rules, Sources::local(Arc::new(data)), None).unwrap()
    }

    #[test]
    fn one_instance_per_series_with_node_labels() {
        let mut m = render::MemorySource::new();
        m.insert("servers.web01.cpu", 0, 60, vec![Some(95.0); 20]);
        m.insert("servers.web02.cpu", 0, 60, vec![Some(5.0); 20]);
        let mut e = engine(
            "[[rule]]\nname = \"cpu\"\ntarget = \"servers.*.cpu\"\nop = \">\"\nwarn = 80\nlag = 0\n\
             labels = { host = \"{node:1}\" }\nannotations = { summary = \"{host} at {value}%\" }\n",
            m,
        );
        let ev = e.evaluate_round(600);
        assert_eq!(ev.len(), 1);
        assert_eq!(ev[0].labels.get("host").map(String::as_str), Some("web01"));
        assert_eq!(ev[0].annotations.get("summary").map(String::as_str), Some("web01 at 95%"));
        assert_eq!(ev[0].status, Status::Firing);
        assert_eq!(e.instances().len(), 2);
    }
}
