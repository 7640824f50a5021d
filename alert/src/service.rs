//! The running alerter: the engine and the dispatcher wired together, as both the
//! standalone `graphite-alert run` and `graphite-rs --alert-rules` use it.
//!
//! Three threads: the evaluation thread runs an engine round whenever a rule's `every` slot
//! starts (checked each second) and files the events with the dispatcher; the notify thread
//! ticks the dispatcher each second (group waits and intervals, escalations, retries
//! reported back); the metrics thread sends the self-metrics to carbon each interval when
//! `[self_metrics]` names an address. None waits for another, and none waits on a delivery.
//! The page and API read a copy of the engine's view made after each round, so a slow round
//! never holds up a request.
//!
//! State: before each round the dispatcher's snapshot (groups and notification log,
//! silences, acks) is handed to the engine, which writes it with its own in the one state
//! file; at start the engine's restored copy is given back to the dispatcher. A crash
//! loses at most what changed since the last round.
//!
//! Reload ([`AlertService::reload`], [`AlertService::reload_from_file`]; SIGHUP and
//! `POST /-/reload` in the binaries): the new file is read and validated whole — rules,
//! receivers (their transports are built), route, inhibit rules — before anything changes;
//! an invalid file changes nothing. A valid one is swapped in between two rounds (the
//! engine's lock is held across the swap): see [`Engine::reload`] for what the rules keep
//! and [`Dispatcher::reload`] for the receivers.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicI64, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use crate::api::{
    AlertRow, ApiState, Evaluate, Reload, RoundRow, RuleRow, StatusSource, TransitionRow,
};
use crate::dispatcher::Dispatcher;
use crate::engine::{Engine, EngineConfig, EvalContext, EvalReport, ReloadReport};
use crate::error::{Error, Result};
use crate::metrics::{
    CarbonSender, EngineMetrics, MetricsSnapshot, SelfMetricsConfig, carbon_lines,
};
use crate::notify::NotifyConfig;
use crate::rules::RulesFile;
use crate::source::Sources;

/// Reads a rules file for a reload (the standalone binary's also points `local` rules at
/// `--source`).
pub type Loader = Box<dyn Fn(&Path) -> Result<RulesFile> + Send + Sync>;

/// How often the threads look at the clock.
const TICK: Duration = Duration::from_secs(1);

/// Transitions kept in the page's copy.
const VIEW_HISTORY: usize = 1000;

/// A round that has not finished after this long makes `/healthz` answer 503.
const STUCK_AFTER_SECONDS: i64 = 600;

/// The engine's view, copied after each round.
#[derive(Default)]
struct View {
    alerts: Vec<AlertRow>,
    rules: Vec<RuleRow>,
    history: Vec<TransitionRow>,
    last_round: Option<RoundRow>,
    metrics: EngineMetrics,
    /// The sources and defaults `POST /api/eval` runs with.
    eval: Option<EvalContext>,
}

/// What the page reads: the copy, and when the evaluation thread last went round.
struct Published {
    view: Mutex<View>,
    /// Unix seconds of the evaluation thread's last loop (0: not yet).
    heartbeat: AtomicI64,
}

impl Evaluate for Published {
    fn evaluate(&self, rule: toml::Table, now: i64) -> Result<EvalReport> {
        let ctx = self.view.lock().unwrap_or_else(PoisonError::into_inner).eval.clone();
        let ctx = ctx.ok_or_else(|| Error::request("eval", "the engine has not started"))?;
        let rule = crate::rules::parse_rule(&ctx.defaults, rule, "POST /api/eval")?;
        Ok(crate::engine::evaluate_once(&ctx, rule, now))
    }
}

impl StatusSource for Published {
    fn alerts(&self) -> Vec<AlertRow> {
        self.view.lock().unwrap_or_else(PoisonError::into_inner).alerts.clone()
    }
    fn rules(&self) -> Vec<RuleRow> {
        self.view.lock().unwrap_or_else(PoisonError::into_inner).rules.clone()
    }
    fn history(&self, limit: usize) -> Vec<TransitionRow> {
        let view = self.view.lock().unwrap_or_else(PoisonError::into_inner);
        view.history.iter().take(limit).cloned().collect()
    }
    fn last_round(&self) -> Option<RoundRow> {
        self.view.lock().unwrap_or_else(PoisonError::into_inner).last_round
    }
    fn metrics(&self) -> EngineMetrics {
        self.view.lock().unwrap_or_else(PoisonError::into_inner).metrics.clone()
    }
    fn health(&self) -> std::result::Result<(), String> {
        let beat = self.heartbeat.load(Ordering::Relaxed);
        let now = Dispatcher::now();
        if beat != 0 && now - beat > STUCK_AFTER_SECONDS {
            return Err(format!("no evaluation round finished for {}s", now - beat));
        }
        Ok(())
    }
}

/// How the last reload went, for the self-metrics.
#[derive(Default)]
struct ReloadStatus {
    /// Reloads refused.
    failures: u64,
    /// When the last one was tried.
    at: Option<i64>,
    /// Why the last one was refused.
    error: Option<String>,
}

/// The carbon side of the self-metrics.
#[derive(Default)]
struct CarbonState {
    /// The connection (made again when the address changes).
    sender: Option<CarbonSender>,
    /// What was last sent, for the counters' deltas.
    previous: Option<MetricsSnapshot>,
    /// When the last report was due (Unix seconds).
    last: Option<i64>,
}

/// The engine, the dispatcher and the page's copy of the engine's view.
pub struct AlertService {
    /// The engine (the evaluation thread holds it during a round, a reload during the swap).
    engine: Mutex<Engine>,
    /// The notifier.
    dispatcher: Arc<Dispatcher>,
    /// What the page reads.
    published: Arc<Published>,
    /// Tells the threads to stop.
    stop: Arc<AtomicBool>,
    /// The threads, joined by [`AlertService::stop`].
    threads: Mutex<Vec<JoinHandle<()>>>,
    /// The `every`s of the rules, to know when a round is due (replaced by a reload).
    everies: Mutex<Vec<i64>>,
    /// The time of the last round (Unix seconds; `i64::MIN`: none yet).
    last_round: AtomicI64,
    /// The rules file [`AlertService::reload_from_file`] reads.
    rules_path: PathBuf,
    /// How it reads it.
    loader: Loader,
    /// The `externalURL` of notifications when the route sets none.
    external_url: String,
    /// The rules file's `[self_metrics]` (replaced by a reload).
    self_metrics: Mutex<SelfMetricsConfig>,
    /// An address that overrides `[self_metrics] carbon` (the command line's).
    carbon_override: Option<String>,
    /// The carbon sender and what it last sent.
    carbon: Mutex<CarbonState>,
    /// Reloads that took effect are counted by the engine; this counts the refused ones.
    reload_status: Mutex<ReloadStatus>,
    /// Reload attempts, to tell the log lines apart.
    reload_attempts: AtomicU64,
}

fn unpoison<T>(r: std::result::Result<T, PoisonError<T>>) -> T {
    r.unwrap_or_else(PoisonError::into_inner)
}

/// A transport error of a receiver (an unset `password_env`) as a rules-file error naming
/// the receiver's section line.
fn locate(rules: &RulesFile, e: Error) -> Error {
    match e {
        Error::Receiver { ref receiver, .. } => {
            let line = rules
                .receivers
                .iter()
                .find(|s| s.value.get("name").and_then(|v| v.as_str()) == Some(receiver.as_str()))
                .map(|s| s.line);
            Error::rules(&rules.path, line, None, e.to_string())
        }
        other => other,
    }
}

impl AlertService {
    /// Builds the engine (restoring its state file) and the dispatcher (restoring its part),
    /// and publishes the first view. Nothing runs until [`AlertService::start`].
    ///
    /// # Errors
    ///
    /// The `[[receiver]]`/`[route]` sections are invalid (naming the file and line), or the
    /// engine cannot start (a corrupt state file, unless `config` says start fresh).
    pub fn new(
        rules: RulesFile,
        sources: Sources,
        state_path: Option<std::path::PathBuf>,
        config: EngineConfig,
    ) -> Result<AlertService> {
        let external_url = config.external_url.clone();
        let notify = notify_config(&rules, &external_url)?;
        let everies = everies(&rules);
        let rules_path = rules.path.clone();
        let self_metrics = rules.self_metrics.clone();
        let dispatcher = Arc::new(Dispatcher::new(notify).map_err(|e| locate(&rules, e))?);
        let engine = Engine::with_config(rules, sources, state_path, config)?;
        if let Err(e) = dispatcher.restore(engine.notify_state()) {
            tracing::error!(error = %e, "notifier state not restored: starting with none");
        }
        let service = AlertService {
            engine: Mutex::new(engine),
            dispatcher,
            published: Arc::new(Published {
                view: Mutex::new(View::default()),
                heartbeat: AtomicI64::new(0),
            }),
            stop: Arc::new(AtomicBool::new(false)),
            threads: Mutex::new(Vec::new()),
            everies: Mutex::new(everies),
            last_round: AtomicI64::new(i64::MIN),
            rules_path,
            loader: Box::new(|path| crate::rules::load(path)),
            external_url,
            self_metrics: Mutex::new(self_metrics),
            carbon_override: None,
            carbon: Mutex::new(CarbonState::default()),
            reload_status: Mutex::new(ReloadStatus::default()),
            reload_attempts: AtomicU64::new(0),
        };
        service.publish();
        Ok(service)
    }

    /// Reads the rules file with `loader` on a reload instead of [`crate::rules::load`].
    pub fn with_loader(mut self, loader: Loader) -> AlertService {
        self.loader = loader;
        self
    }

    /// Sends the self-metrics to carbon at `address` (`host:port`), whatever the rules
    /// file's `[self_metrics] carbon` says (reloads included). Default: the file's.
    pub fn with_self_metrics_carbon(mut self, address: Option<String>) -> AlertService {
        self.carbon_override = address;
        self
    }

    /// The dispatcher.
    pub fn dispatcher(&self) -> &Arc<Dispatcher> {
        &self.dispatcher
    }

    /// What the status page and API need (`POST /-/reload` re-reads the rules file).
    pub fn api_state(self: &Arc<Self>) -> ApiState {
        ApiState {
            source: self.published.clone(),
            dispatcher: Arc::clone(&self.dispatcher),
            clock: Arc::new(Dispatcher::now),
            reload: Some(Arc::clone(self) as Arc<dyn Reload>),
            eval: Some(self.published.clone() as Arc<dyn Evaluate>),
        }
    }

    /// Whether some rule's `every` slot started since the last round.
    pub fn is_due(&self, now: i64) -> bool {
        let last = self.last_round.load(Ordering::Relaxed);
        last == i64::MIN
            || unpoison(self.everies.lock())
                .iter()
                .any(|e| now.div_euclid(*e) > last.div_euclid(*e))
    }

    /// One evaluation round at `now`: the dispatcher's state goes into the engine's state
    /// file, the engine evaluates the due rules, the dispatcher files the events, the page's
    /// copy is refreshed. Returns the number of events.
    pub fn round(&self, now: i64) -> usize {
        let events = {
            let mut engine = unpoison(self.engine.lock());
            engine.set_notify_state(self.dispatcher.snapshot());
            engine.evaluate_round(now)
        };
        self.last_round.store(now, Ordering::Relaxed);
        self.dispatcher.ingest(&events, now);
        self.publish();
        events.len()
    }

    /// Puts `rules` in force at `now`, between two rounds: the receivers, route and
    /// inhibit rules first (their threads started), then the rules themselves; the
    /// resolutions of removed rules' active instances go to the dispatcher. The reload is
    /// logged and counted in the self-metrics.
    ///
    /// # Errors
    ///
    /// The notifier's part is invalid or a receiver cannot be built (naming the file and
    /// line); nothing changed then.
    pub fn reload(&self, rules: RulesFile, now: i64) -> Result<ReloadReport> {
        let result = self.swap(rules, now);
        self.note_reload(now, result.as_ref().err());
        result
    }

    /// Reads the rules file again (the path it was first read from) and puts it in force
    /// at `now`, as [`AlertService::reload`].
    ///
    /// # Errors
    ///
    /// The file cannot be read or is invalid (naming the file, line and rule); the old
    /// rules stay in force.
    pub fn reload_from_file(&self, now: i64) -> Result<ReloadReport> {
        match (self.loader)(&self.rules_path) {
            Ok(rules) => self.reload(rules, now),
            Err(e) => {
                self.note_reload(now, Some(&e));
                Err(e)
            }
        }
    }

    fn swap(&self, rules: RulesFile, now: i64) -> Result<ReloadReport> {
        let notify = notify_config(&rules, &self.external_url)?;
        let prepared = self.dispatcher.prepare_reload(notify).map_err(|e| locate(&rules, e))?;
        let everies = everies(&rules);
        let self_metrics = rules.self_metrics.clone();
        let report = {
            // Held across both halves: no round runs between the rules and the receivers.
            let mut engine = unpoison(self.engine.lock());
            let report = engine.reload(rules, now);
            self.dispatcher.commit_reload(prepared, &report.resolved, now);
            report
        };
        *unpoison(self.everies.lock()) = everies;
        *unpoison(self.self_metrics.lock()) = self_metrics;
        Ok(report)
    }

    fn note_reload(&self, now: i64, error: Option<&Error>) {
        let attempt = self.reload_attempts.fetch_add(1, Ordering::Relaxed) + 1;
        {
            let mut status = unpoison(self.reload_status.lock());
            status.at = Some(now);
            status.error = error.map(ToString::to_string);
            status.failures += u64::from(error.is_some());
        }
        match error {
            Some(e) => tracing::error!(
                attempt,
                file = %self.rules_path.display(),
                error = %e,
                "rules not reloaded: the old rules stay in force"
            ),
            None => tracing::info!(attempt, file = %self.rules_path.display(), "rules reloaded"),
        }
        self.publish();
    }

    /// Copies the engine's view for the page.
    fn publish(&self) {
        let mut view = {
            let engine = unpoison(self.engine.lock());
            let stats = engine.last_round();
            View {
                alerts: engine.instances().into_iter().map(alert_row).collect(),
                rules: engine.rules_view().into_iter().map(rule_row).collect(),
                history: engine.history(VIEW_HISTORY).into_iter().collect(),
                last_round: (stats.at != 0).then_some(stats),
                metrics: engine.metrics(),
                eval: Some(engine.eval_context()),
            }
        };
        {
            let status = unpoison(self.reload_status.lock());
            view.metrics.reload_failures = status.failures;
            view.metrics.last_reload_at = status.at;
            view.metrics.last_reload_error.clone_from(&status.error);
        }
        *unpoison(self.published.view.lock()) = view;
    }

    /// The self-metrics at `now`: the engine's as of its last round, the receivers' now.
    pub fn metrics(&self, now: i64) -> MetricsSnapshot {
        MetricsSnapshot::new(now, self.published.metrics(), &self.dispatcher.receivers())
    }

    /// A source of the self-metrics as one interval's points each call (see
    /// [`crate::metrics`]), for a caller that stores them itself (graphite-rs writes them
    /// into its store with its own).
    pub fn metrics_reporter(&self) -> MetricsReporter {
        MetricsReporter {
            published: Arc::clone(&self.published),
            dispatcher: Arc::clone(&self.dispatcher),
            previous: None,
        }
    }

    /// The `[self_metrics]` in force, with the command line's carbon address.
    pub fn self_metrics_config(&self) -> SelfMetricsConfig {
        let mut config = unpoison(self.self_metrics.lock()).clone();
        if self.carbon_override.is_some() {
            config.carbon.clone_from(&self.carbon_override);
        }
        config
    }

    /// Sends one interval's self-metrics to carbon now, stamped `now`; returns how many
    /// points went (0 when no carbon address is configured). A failed send is retried at
    /// the next interval, with the counts of both.
    ///
    /// # Errors
    ///
    /// Carbon cannot be reached or the write failed.
    pub fn send_self_metrics(&self, now: i64) -> std::io::Result<usize> {
        let config = self.self_metrics_config();
        let Some(address) = config.carbon.as_deref() else { return Ok(0) };
        let snapshot = self.metrics(now);
        let mut carbon = unpoison(self.carbon.lock());
        if carbon.sender.as_ref().is_none_or(|s| s.address() != address) {
            carbon.sender = Some(CarbonSender::new(address));
        }
        let points = snapshot.points(carbon.previous.as_ref());
        let text = carbon_lines(&config.resolved_prefix(), &points, now);
        if let Some(sender) = carbon.sender.as_mut() {
            sender.send(&text)?;
        }
        carbon.previous = Some(snapshot);
        Ok(points.len())
    }

    /// Sends the self-metrics if an interval boundary passed since the last report (the
    /// first report is at the first boundary after the first call).
    fn self_metrics_tick(&self, now: i64) {
        let config = self.self_metrics_config();
        if config.carbon.is_none() {
            return;
        }
        let interval = config.interval.max(1);
        let due = {
            let mut carbon = unpoison(self.carbon.lock());
            let last = *carbon.last.get_or_insert(now);
            let due = now.div_euclid(interval) > last.div_euclid(interval);
            if due {
                carbon.last = Some(now);
            }
            due
        };
        if due && let Err(e) = self.send_self_metrics(now) {
            tracing::warn!(
                carbon = config.carbon.as_deref().unwrap_or(""),
                error = %e,
                "self-metrics not sent; trying again at the next interval"
            );
        }
    }

    /// Starts the evaluation and notify threads (wall clock).
    ///
    /// # Errors
    ///
    /// A thread cannot be started.
    pub fn start(self: &Arc<Self>) -> std::io::Result<()> {
        let eval = {
            let me = Arc::clone(self);
            std::thread::Builder::new().name("alert-eval".into()).spawn(move || {
                while !me.stop.load(Ordering::SeqCst) {
                    let now = Dispatcher::now();
                    me.published.heartbeat.store(now, Ordering::Relaxed);
                    if me.is_due(now) {
                        me.round(now);
                    }
                    sleep_until_next_second(&me.stop);
                }
            })?
        };
        let notify = {
            let me = Arc::clone(self);
            std::thread::Builder::new().name("alert-notify".into()).spawn(move || {
                while !me.stop.load(Ordering::SeqCst) {
                    me.dispatcher.tick(Dispatcher::now());
                    sleep_until_next_second(&me.stop);
                }
            })?
        };
        let metrics = {
            let me = Arc::clone(self);
            std::thread::Builder::new().name("alert-metrics".into()).spawn(move || {
                while !me.stop.load(Ordering::SeqCst) {
                    me.self_metrics_tick(Dispatcher::now());
                    sleep_until_next_second(&me.stop);
                }
            })?
        };
        unpoison(self.threads.lock()).extend([eval, notify, metrics]);
        Ok(())
    }

    /// Stops the threads (a round under way finishes first), writes the state file with the
    /// dispatcher's latest state, and stops the delivery threads (waiting at most `timeout`).
    ///
    /// # Errors
    ///
    /// The state file could not be written.
    pub fn stop(&self, timeout: Duration) -> Result<()> {
        self.stop.store(true, Ordering::SeqCst);
        for t in unpoison(self.threads.lock()).drain(..) {
            let _ = t.join();
        }
        let saved = {
            let mut engine = unpoison(self.engine.lock());
            engine.set_notify_state(self.dispatcher.snapshot());
            engine.save_state(Dispatcher::now())
        };
        self.dispatcher.shutdown(timeout);
        saved
    }
}

impl Reload for AlertService {
    fn reload(&self) -> Result<ReloadReport> {
        self.reload_from_file(Dispatcher::now())
    }
}

/// The self-metrics as one interval's points per call; see
/// [`AlertService::metrics_reporter`].
pub struct MetricsReporter {
    /// The engine's view.
    published: Arc<Published>,
    /// The receivers' counters.
    dispatcher: Arc<Dispatcher>,
    /// The last call's snapshot.
    previous: Option<MetricsSnapshot>,
}

impl MetricsReporter {
    /// The points since the last call (counters) and now (levels), named relative to the
    /// caller's prefix.
    pub fn points(&mut self, now: i64) -> Vec<(String, f64)> {
        let snapshot =
            MetricsSnapshot::new(now, self.published.metrics(), &self.dispatcher.receivers());
        let points = snapshot.points(self.previous.as_ref());
        self.previous = Some(snapshot);
        points
    }
}

/// The notifier's configuration of `rules`, with `external_url` when the route sets none.
fn notify_config(rules: &RulesFile, external_url: &str) -> Result<NotifyConfig> {
    let mut notify = NotifyConfig::from_rules(rules)?;
    if notify.route.external_url.is_empty() {
        notify.route.external_url = external_url.to_owned();
    }
    Ok(notify)
}

fn everies(rules: &RulesFile) -> Vec<i64> {
    rules.rules.iter().map(|r| r.every.max(1)).collect()
}

/// Sleeps to the start of the next wall-clock second (at most [`TICK`]), so rounds start on
/// the second their slot begins.
fn sleep_until_next_second(stop: &AtomicBool) {
    let into = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(Duration::ZERO, |d| Duration::from_nanos(u64::from(d.subsec_nanos())));
    let wait = TICK.saturating_sub(into).max(Duration::from_millis(10));
    let until = Instant::now() + wait;
    // In slices, so a stop is seen within 100 ms.
    while !stop.load(Ordering::SeqCst) {
        let left = until.saturating_duration_since(Instant::now());
        if left.is_zero() {
            break;
        }
        std::thread::sleep(left.min(Duration::from_millis(100)));
    }
}

fn alert_row(v: crate::engine::InstanceView) -> AlertRow {
    AlertRow {
        rule: v.rule,
        fingerprint: v.fingerprint,
        labels: v.labels,
        annotations: v.annotations,
        status: v.status,
        severity: v.severity,
        value: v.value,
        since: v.since,
        starts_at: v.starts_at,
        last_eval: v.last_eval,
        detail: v.detail,
    }
}

fn rule_row(v: crate::engine::RuleView) -> RuleRow {
    RuleRow {
        name: v.name,
        kind: v.kind.to_owned(),
        subject: v.subject,
        every: v.every,
        for_seconds: v.for_seconds,
        condition: v.condition,
        last_eval: v.last_eval,
        last_duration_ms: v.last_duration_ms,
        last_error: v.last_error,
        counts: v.counts,
        generator_url: v.generator_url,
        notify: v.notify,
    }
}
