//! The running alerter: the engine and the dispatcher wired together, as both the
//! standalone `graphite-alert run` and `graphite-rs --alert-rules` use it.
//!
//! Two threads: the evaluation thread runs an engine round whenever a rule's `every` slot
//! starts (checked each second) and files the events with the dispatcher; the notify thread
//! ticks the dispatcher each second (group waits and intervals, escalations, retries
//! reported back). Neither waits for the other, and neither waits on a delivery. The page
//! and API read a copy of the engine's view made after each round, so a slow round never
//! holds up a request.
//!
//! State: before each round the dispatcher's snapshot (groups and notification log,
//! silences, acks) is handed to the engine, which writes it with its own in the one state
//! file; at start the engine's restored copy is given back to the dispatcher. A crash
//! loses at most what changed since the last round.

use std::sync::atomic::{AtomicBool, AtomicI64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use crate::api::{AlertRow, ApiState, RoundRow, RuleRow, StatusSource, TransitionRow};
use crate::dispatcher::Dispatcher;
use crate::engine::{Engine, EngineConfig};
use crate::error::Result;
use crate::notify::NotifyConfig;
use crate::rules::RulesFile;
use crate::source::Sources;

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
}

/// What the page reads: the copy, and when the evaluation thread last went round.
struct Published {
    view: Mutex<View>,
    /// Unix seconds of the evaluation thread's last loop (0: not yet).
    heartbeat: AtomicI64,
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
    fn health(&self) -> std::result::Result<(), String> {
        let beat = self.heartbeat.load(Ordering::Relaxed);
        let now = Dispatcher::now();
        if beat != 0 && now - beat > STUCK_AFTER_SECONDS {
            return Err(format!("no evaluation round finished for {}s", now - beat));
        }
        Ok(())
    }
}

/// The engine, the dispatcher and the page's copy of the engine's view.
pub struct AlertService {
    /// The engine (the evaluation thread holds it during a round).
    engine: Mutex<Engine>,
    /// The notifier.
    dispatcher: Arc<Dispatcher>,
    /// What the page reads.
    published: Arc<Published>,
    /// Tells the threads to stop.
    stop: Arc<AtomicBool>,
    /// The threads, joined by [`AlertService::stop`].
    threads: Mutex<Vec<JoinHandle<()>>>,
    /// The `every`s of the rules, to know when a round is due.
    everies: Vec<i64>,
    /// The time of the last round (Unix seconds; `i64::MIN`: none yet).
    last_round: AtomicI64,
}

fn unpoison<T>(r: std::result::Result<T, PoisonError<T>>) -> T {
    r.unwrap_or_else(PoisonError::into_inner)
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
        let mut notify = NotifyConfig::from_rules(&rules)?;
        if notify.route.external_url.is_empty() {
            notify.route.external_url.clone_from(&config.external_url);
        }
        let everies = rules.rules.iter().map(|r| r.every.max(1)).collect();
        let engine = Engine::with_config(rules, sources, state_path, config)?;
        let dispatcher = Arc::new(Dispatcher::new(notify)?);
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
            everies,
            last_round: AtomicI64::new(i64::MIN),
        };
        service.publish();
        Ok(service)
    }

    /// The dispatcher.
    pub fn dispatcher(&self) -> &Arc<Dispatcher> {
        &self.dispatcher
    }

    /// What the status page and API need.
    pub fn api_state(&self) -> ApiState {
        ApiState {
            source: self.published.clone(),
            dispatcher: Arc::clone(&self.dispatcher),
            clock: Arc::new(Dispatcher::now),
        }
    }

    /// Whether some rule's `every` slot started since the last round.
    pub fn is_due(&self, now: i64) -> bool {
        let last = self.last_round.load(Ordering::Relaxed);
        last == i64::MIN || self.everies.iter().any(|e| now.div_euclid(*e) > last.div_euclid(*e))
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

    /// Copies the engine's view for the page.
    fn publish(&self) {
        let view = {
            let engine = unpoison(self.engine.lock());
            let stats = engine.last_round();
            View {
                alerts: engine.instances().into_iter().map(alert_row).collect(),
                rules: engine.rules_view().into_iter().map(rule_row).collect(),
                history: engine.history(VIEW_HISTORY).into_iter().collect(),
                last_round: (stats.at != 0).then_some(stats),
            }
        };
        *unpoison(self.published.view.lock()) = view;
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
        unpoison(self.threads.lock()).extend([eval, notify]);
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
