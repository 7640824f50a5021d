//! The dispatcher: takes the engine's [`AlertEvent`]s, keeps the groups, silences and
//! acknowledgements, and hands notifications to delivery threads.
//!
//! Each receiver has its own thread and its own bounded queue, so a dead SMTP server or a
//! hanging webhook only ever delays that receiver: the engine's round calls
//! [`Dispatcher::ingest`] and [`Dispatcher::tick`], which take one short lock and never
//! wait on the network. A delivery that fails is retried on its thread with exponential
//! backoff (`retry_initial`, doubled per attempt, capped at `retry_max`, at most
//! `max_attempts` attempts); past that it is given up, counted, and its group is marked
//! untold so the next flush sends it again. A full queue drops the notification (counted
//! as `dropped`) and marks the group the same way. Counters per receiver are in
//! [`Dispatcher::receivers`] (the API's `/api/receivers`).
//!
//! [`Dispatcher::snapshot`] and [`Dispatcher::restore`] carry the groups with their
//! notification log, the silences, the acknowledgements and the active alerts (the sources
//! of inhibitions) through a restart as one JSON value (the engine's state file holds it),
//! so a restart neither re-sends nor forgets.
//!
//! [`Dispatcher::reload`] swaps the configuration in place: receivers whose section did not
//! change keep their thread and queue; new or changed ones get a new thread (a changed
//! one's queued deliveries are dropped, counted); removed ones stop, and their groups go.
//! Everything else — the notification log, silences, acks — carries on.
//! Deliveries still queued at shutdown are lost with the process; their groups were
//! recorded as told (a crash loses at most those messages, never repeats them).

use std::collections::{BTreeMap, VecDeque};
use std::sync::atomic::{AtomicBool, AtomicI64, AtomicU64, Ordering};
use std::sync::mpsc::{self, Receiver, RecvTimeoutError, Sender, SyncSender};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError, RwLock};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};

use crate::ack::{Ack, AckTarget, Acks};
use crate::error::{Error, Result};
use crate::inhibit::Inhibitor;
use crate::model::{AlertEvent, Labels};
use crate::notify::{
    DeliveryError, GroupStatus, HumanDuration, Notification, NotifyConfig, ReceiverConfig,
    ReceiverKind, Transport,
};
use crate::route::RouteState;
use crate::silence::{NewSilence, Silence, Silences};

/// The longest a delivery thread sleeps before it looks at its queue and the stop flag.
const WORKER_POLL: Duration = Duration::from_millis(100);

/// Notifications remembered for the status page.
const RECENT_NOTIFICATIONS: usize = 100;

/// The snapshot format's version.
const SNAPSHOT_VERSION: u64 = 1;

/// Delivery counters of one receiver, shared with its thread.
#[derive(Debug, Default)]
struct Counters {
    sent: AtomicU64,
    failed_attempts: AtomicU64,
    retries: AtomicU64,
    given_up: AtomicU64,
    dropped: AtomicU64,
    queued: AtomicU64,
    last_success_at: AtomicI64,
    last_error: Mutex<Option<(i64, String)>>,
}

/// What the API shows of one receiver.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ReceiverStatus {
    /// Its name.
    pub name: String,
    /// Its kind.
    pub kind: ReceiverKind,
    /// Notifications delivered.
    pub sent: u64,
    /// Attempts that failed (each retry that fails counts).
    pub failed_attempts: u64,
    /// Attempts scheduled again after a failure.
    pub retries: u64,
    /// Notifications given up after `max_attempts` (or a permanent error).
    pub given_up: u64,
    /// Notifications dropped because the queue was full.
    pub dropped: u64,
    /// Notifications waiting or in retry now.
    pub queued: u64,
    /// The last delivery (Unix seconds), if any.
    pub last_success_at: Option<i64>,
    /// The last error and when (Unix seconds).
    pub last_error: Option<String>,
    /// When the last error happened.
    pub last_error_at: Option<i64>,
}

/// A notification handed to a receiver, for the status page.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct SentRecord {
    /// When it was queued (Unix seconds).
    pub at: i64,
    /// The receiver.
    pub receiver: String,
    /// The group.
    pub group_key: String,
    /// Firing or resolved.
    pub status: GroupStatus,
    /// How many alerts it listed.
    pub alerts: usize,
    /// Whether it was an escalation.
    pub escalation: bool,
    /// Whether the queue took it (false: dropped, queue full).
    pub queued: bool,
}

/// An acknowledgement request.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct AckRequest {
    /// What to acknowledge.
    pub target: AckTarget,
    /// Who.
    pub by: String,
    /// Why.
    pub comment: String,
    /// For how long (default: the route's `ack_expiry`).
    pub expires_in: Option<HumanDuration>,
}

/// How the status page marks one alert instance.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Marks {
    /// The silences in force for it.
    pub silenced_by: Vec<String>,
    /// The fingerprints of the active alerts inhibiting it (`[[inhibit]]` rules).
    #[serde(default)]
    pub inhibited_by: Vec<String>,
    /// Why the route holds its notifications now, when it routes to some receiver: the
    /// `mute_time_intervals` in force by name, or `outside NAME` for each
    /// `active_time_intervals` entry when none is in force.
    #[serde(default)]
    pub muted_by: Vec<String>,
    /// Its acknowledgement, if any (its own or its group's).
    pub ack: Option<Ack>,
    /// The notification groups it is in.
    pub groups: Vec<String>,
}

/// An active alert as a possible source of inhibitions.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
struct ActiveAlert {
    /// Its labels, severity included.
    labels: Labels,
    /// When the engine last reported it.
    updated_at: i64,
}

/// State that changes together, under one lock.
#[derive(Debug, Default, Serialize, Deserialize)]
struct Core {
    route: RouteState,
    silences: Silences,
    acks: Acks,
    /// Every active alert of the last rounds by fingerprint, routed or not: the sources of
    /// inhibitions (an alert no receiver hears of can still inhibit others).
    #[serde(default)]
    active: BTreeMap<String, ActiveAlert>,
    /// The inhibit rules over `active`, rebuilt whenever either changes.
    #[serde(skip)]
    inhibitor: Inhibitor,
    /// Set by a reload: the next round's events re-route the groups' alerts.
    #[serde(skip)]
    reroute: bool,
    #[serde(skip)]
    recent: VecDeque<SentRecord>,
}

impl Core {
    fn rebuild_inhibitor(&mut self, config: &NotifyConfig) {
        self.inhibitor = Inhibitor::new(
            &config.inhibit_rules,
            self.active.iter().map(|(fp, a)| (fp.as_str(), &a.labels)),
        );
    }
}

/// One receiver's delivery thread.
struct Worker {
    /// The receiver's name.
    name: String,
    /// Its section, to tell on a reload whether it changed.
    config: ReceiverConfig,
    /// The retry policy and queue capacity it was started with.
    policy: (RetryPolicy, usize),
    /// The queue into the thread (`None` once shut down).
    tx: Mutex<Option<SyncSender<Notification>>>,
    /// Its counters (kept by a reload that restarts the thread).
    counters: Arc<Counters>,
    /// The thread.
    handle: Mutex<Option<JoinHandle<()>>>,
    /// Tells the thread to stop.
    stop: Arc<AtomicBool>,
}

impl Worker {
    /// Starts the delivery thread of receiver `r`.
    fn start(
        r: &ReceiverConfig,
        policy: (RetryPolicy, usize),
        counters: Arc<Counters>,
        failures: Sender<(String, String)>,
    ) -> Result<Worker> {
        let transport = Transport::new(r)?;
        let (tx, rx) = mpsc::sync_channel(policy.1);
        let stop = Arc::new(AtomicBool::new(false));
        let handle = {
            let (name, counters, stop) = (r.name.clone(), Arc::clone(&counters), Arc::clone(&stop));
            let (retry, capacity) = policy;
            std::thread::Builder::new()
                .name(format!("alert-notify-{}", r.name))
                .spawn(move || {
                    deliver_loop(
                        &name, &transport, &rx, &counters, retry, capacity, &failures, &stop,
                    )
                })
                .map_err(|e| Error::receiver(&r.name, format!("cannot start its thread: {e}")))?
        };
        Ok(Worker {
            name: r.name.clone(),
            config: r.clone(),
            policy,
            tx: Mutex::new(Some(tx)),
            counters,
            handle: Mutex::new(Some(handle)),
            stop,
        })
    }

    /// Tells the thread to stop without waiting for it: it finishes the attempt under way,
    /// counts what it still held as dropped, and exits.
    fn retire(&self) {
        self.stop.store(true, Ordering::SeqCst);
        lock(&self.tx).take();
        // Detached: the thread exits on its own within WORKER_POLL (or once the attempt
        // under way ends).
        lock(&self.handle).take();
    }
}

/// A reload whose new receiver threads are started but not yet in use: the configuration
/// is valid and every transport could be built. [`Dispatcher::commit_reload`] puts it in
/// force; dropping it instead stops the threads it started. It holds the dispatcher's
/// reload lock, so reloads never interleave.
pub(crate) struct PreparedReload<'a> {
    /// The dispatcher's reload lock, held until the reload is committed or dropped.
    _serial: MutexGuard<'a, ()>,
    /// The configuration to put in force.
    config: NotifyConfig,
    /// The workers in force after the reload, in configuration order.
    workers: Vec<Arc<Worker>>,
    /// The ones started for it.
    started: Vec<Arc<Worker>>,
}

impl Drop for PreparedReload<'_> {
    fn drop(&mut self) {
        for w in self.started.drain(..) {
            w.retire();
        }
    }
}

/// Routes alerts to receivers and delivers on background threads; see the module docs.
pub struct Dispatcher {
    /// The validated configuration (replaced by a reload).
    config: RwLock<Arc<NotifyConfig>>,
    /// Groups, silences, acks and the recent notifications.
    core: Mutex<Core>,
    /// One per receiver, in configuration order (replaced by a reload).
    workers: RwLock<Vec<Arc<Worker>>>,
    /// Given-up deliveries reported by the threads: (receiver, group key).
    failures: Mutex<Receiver<(String, String)>>,
    /// The threads' end of `failures`, for threads started by a reload.
    failures_tx: Mutex<Sender<(String, String)>>,
    /// Held from the start of a reload to its end.
    reloading: Mutex<()>,
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    // A panic while holding the lock leaves plain data that is still consistent enough to
    // serve (every update is a whole assignment); keep going rather than cascade.
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

fn read<T: Clone>(m: &RwLock<T>) -> T {
    m.read().unwrap_or_else(PoisonError::into_inner).clone()
}

fn write<T>(m: &RwLock<T>, value: T) {
    *m.write().unwrap_or_else(PoisonError::into_inner) = value;
}

/// How a delivery thread retries.
#[derive(Clone, Copy, Debug, PartialEq)]
struct RetryPolicy {
    max_attempts: u32,
    initial: Duration,
    max: Duration,
}

impl RetryPolicy {
    /// The delay before attempt `done + 1`, after `done` failed attempts.
    fn delay(&self, done: u32) -> Duration {
        let factor = 1u32.checked_shl(done.saturating_sub(1)).unwrap_or(u32::MAX);
        self.initial.saturating_mul(factor).min(self.max)
    }
}

fn unix_now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_secs()).unwrap_or(i64::MAX))
}

impl Dispatcher {
    /// Validates `config` and starts one delivery thread per receiver.
    ///
    /// # Errors
    ///
    /// The configuration is invalid ([`NotifyConfig::validate`]), or a receiver's transport
    /// cannot be built (an unset `password_env`, say).
    pub fn new(config: NotifyConfig) -> Result<Dispatcher> {
        config.validate()?;
        let (failures_tx, failures_rx) = mpsc::channel();
        let policy = policy_of(&config);
        let mut workers = Vec::new();
        for r in &config.receivers {
            // On an error the workers started so far see their queue close and exit.
            let w = Worker::start(r, policy, Arc::default(), failures_tx.clone())?;
            workers.push(Arc::new(w));
        }
        Ok(Dispatcher {
            config: RwLock::new(Arc::new(config)),
            core: Mutex::new(Core::default()),
            workers: RwLock::new(workers),
            failures: Mutex::new(failures_rx),
            failures_tx: Mutex::new(failures_tx),
            reloading: Mutex::new(()),
        })
    }

    /// The configuration in force.
    pub fn config(&self) -> Arc<NotifyConfig> {
        read(&self.config)
    }

    /// Replaces the configuration (a rules-file reload): see the module docs. The
    /// `resolutions` (of alerts whose rules the same reload removed) are filed with it, so
    /// the groups that told them firing tell them resolved. The next call of
    /// [`Dispatcher::ingest`] re-routes the groups' alerts under the new configuration.
    ///
    /// # Errors
    ///
    /// As [`Dispatcher::new`]; nothing changed then.
    pub fn reload(&self, config: NotifyConfig, resolutions: &[AlertEvent], now: i64) -> Result<()> {
        let prepared = self.prepare_reload(config)?;
        self.commit_reload(prepared, resolutions, now);
        Ok(())
    }

    /// The first half of [`Dispatcher::reload`]: validates `config` and starts the threads
    /// of new and changed receivers; nothing is in force yet.
    pub(crate) fn prepare_reload(&self, config: NotifyConfig) -> Result<PreparedReload<'_>> {
        let serial = lock(&self.reloading);
        config.validate()?;
        let policy = policy_of(&config);
        let old = read(&self.workers);
        let failures = lock(&self.failures_tx).clone();
        let mut prepared =
            PreparedReload { _serial: serial, config, workers: Vec::new(), started: Vec::new() };
        for r in &prepared.config.receivers {
            if let Some(w) = old.iter().find(|w| w.config == *r && w.policy == policy) {
                prepared.workers.push(Arc::clone(w));
                continue;
            }
            let counters = old.iter().find(|w| w.name == r.name).map(|w| Arc::clone(&w.counters));
            // On an error, dropping `prepared` stops what it started.
            let w =
                Arc::new(Worker::start(r, policy, counters.unwrap_or_default(), failures.clone())?);
            prepared.started.push(Arc::clone(&w));
            prepared.workers.push(w);
        }
        Ok(prepared)
    }

    /// The second half of [`Dispatcher::reload`]: puts `prepared` in force, stops the
    /// threads of removed and changed receivers, drops the groups of removed ones, files
    /// `resolutions`.
    pub(crate) fn commit_reload(
        &self,
        mut prepared: PreparedReload<'_>,
        resolutions: &[AlertEvent],
        now: i64,
    ) {
        let config = Arc::new(std::mem::take(&mut prepared.config));
        let workers = std::mem::take(&mut prepared.workers);
        // In force now: dropping `prepared` must not stop them.
        prepared.started.clear();
        let retired: Vec<Arc<Worker>> = read(&self.workers)
            .into_iter()
            .filter(|w| !workers.iter().any(|n| Arc::ptr_eq(n, w)))
            .collect();
        {
            let mut guard = lock(&self.core);
            let core = &mut *guard;
            write(&self.config, Arc::clone(&config));
            write(&self.workers, workers);
            for key in core.route.drop_unknown_receivers(&config) {
                core.acks.remove(&AckTarget::GroupKey(key));
            }
            core.route.ingest(&config, resolutions, now);
            for e in resolutions.iter().filter(|e| !e.is_active()) {
                core.acks.remove(&AckTarget::Fingerprint(e.fingerprint()));
            }
            file_active(core, &config, resolutions, now);
            core.reroute = true;
        }
        for w in retired {
            w.retire();
        }
    }

    /// Files one evaluation round's events at `now` (Unix seconds).
    pub fn ingest(&self, events: &[AlertEvent], now: i64) {
        let config = self.config();
        let mut guard = lock(&self.core);
        let core = &mut *guard;
        core.route.ingest(&config, events, now);
        if std::mem::take(&mut core.reroute) {
            for key in core.route.reroute(&config, events) {
                core.acks.remove(&AckTarget::GroupKey(key));
            }
        }
        for e in events.iter().filter(|e| !e.is_active()) {
            core.acks.remove(&AckTarget::Fingerprint(e.fingerprint()));
        }
        file_active(core, &config, events, now);
    }

    /// Flushes due groups, escalates, expires old silences and acks, and queues the
    /// notifications; returns how many were queued. Never waits on a delivery.
    pub fn tick(&self, now: i64) -> usize {
        let config = self.config();
        let workers = read(&self.workers);
        let notifications = {
            let mut guard = lock(&self.core);
            let core = &mut *guard;
            for (receiver, key) in lock(&self.failures).try_iter() {
                core.route.delivery_failed(&receiver, &key);
            }
            core.silences.gc(now, config.route.silence_retention.as_secs_ceil());
            core.acks.gc(now);
            let out = core.route.tick(&config, &core.silences, &core.acks, &core.inhibitor, now);
            for key in &out.ended_groups {
                core.acks.remove(&AckTarget::GroupKey(key.clone()));
            }
            out.notifications
        };
        let mut queued = 0;
        let mut records = Vec::with_capacity(notifications.len());
        let mut untold = Vec::new();
        for n in notifications {
            let mut record = SentRecord {
                at: now,
                receiver: n.receiver.clone(),
                group_key: n.group_key.clone(),
                status: n.status,
                alerts: n.alerts.len(),
                escalation: n.escalation,
                queued: false,
            };
            let Some(worker) = workers.iter().find(|w| w.name == n.receiver) else { continue };
            let tx = lock(&worker.tx).clone();
            let (receiver, key) = (n.receiver.clone(), n.group_key.clone());
            // A full or closed queue gives the notification back; it is dropped here.
            let taken = tx.is_some_and(|tx| tx.try_send(n).is_ok());
            if taken {
                worker.counters.queued.fetch_add(1, Ordering::Relaxed);
                record.queued = true;
                queued += 1;
            } else {
                worker.counters.dropped.fetch_add(1, Ordering::Relaxed);
                tracing::warn!(receiver, group = key, "notification queue full: dropped");
                untold.push((receiver, key));
            }
            records.push(record);
        }
        let mut core = lock(&self.core);
        for (receiver, key) in untold {
            core.route.delivery_failed(&receiver, &key);
        }
        for r in records {
            if core.recent.len() >= RECENT_NOTIFICATIONS {
                core.recent.pop_front();
            }
            core.recent.push_back(r);
        }
        queued
    }

    /// Adds a silence.
    ///
    /// # Errors
    ///
    /// As [`Silences::add`].
    pub fn add_silence(&self, silence: NewSilence, now: i64) -> Result<Silence> {
        lock(&self.core).silences.add(silence, now)
    }

    /// Expires silence `id` now; `None` if there is none.
    pub fn expire_silence(&self, id: &str, now: i64) -> Option<Silence> {
        lock(&self.core).silences.expire(id, now)
    }

    /// Every silence, newest first (expired ones until their retention ends).
    pub fn silences(&self) -> Vec<Silence> {
        lock(&self.core).silences.list()
    }

    /// Every acknowledgement in force.
    pub fn acks(&self) -> Vec<Ack> {
        lock(&self.core).acks.list().to_vec()
    }

    /// Acknowledges an alert instance or a group at `now`.
    ///
    /// # Errors
    ///
    /// No notification group holds that alert or has that key (an alert that goes to no
    /// receiver has nothing to acknowledge), or the table of acks is full.
    pub fn ack(&self, request: AckRequest, now: i64) -> Result<Ack> {
        let mut core = lock(&self.core);
        let severity = match &request.target {
            AckTarget::Fingerprint(fp) => {
                core.route.alert(fp).filter(|a| a.is_active()).map(|a| a.severity).ok_or_else(
                    || Error::request("ack", format!("no active alert has fingerprint {fp:?}")),
                )?
            }
            AckTarget::GroupKey(key) => core
                .route
                .group_severity(key)
                .ok_or_else(|| Error::request("ack", format!("no group has key {key:?}")))?,
        };
        let expiry = request.expires_in.unwrap_or(self.config().route.ack_expiry);
        let ack = Ack {
            target: request.target,
            by: request.by,
            comment: request.comment,
            at: now,
            expires_at: now.saturating_add(expiry.as_secs_ceil()),
            severity,
        };
        if !core.acks.add(ack.clone()) {
            return Err(Error::request("ack", "too many acknowledgements"));
        }
        Ok(ack)
    }

    /// How the status page marks an instance with `labels` (and severity `severity`).
    pub fn marks(
        &self,
        labels: &Labels,
        severity: Option<crate::model::Severity>,
        now: i64,
    ) -> Marks {
        let fp = crate::model::fingerprint(labels);
        let config = self.config();
        let core = lock(&self.core);
        let mut with_severity = labels.clone();
        if let Some(s) = severity {
            let text = if s == crate::model::Severity::Critical { "critical" } else { "warning" };
            with_severity.entry("severity".into()).or_insert_with(|| text.into());
        }
        let groups = core.route.groups_of(&fp);
        let ack = core.acks.of_instance(&fp, now).cloned().or_else(|| {
            groups.iter().find_map(|k| core.acks.covering(&fp, Some(k), severity, now).cloned())
        });
        Marks {
            silenced_by: core.silences.silencing(&with_severity, now),
            inhibited_by: core.inhibitor.inhibited_by(&fp, &with_severity),
            muted_by: if groups.is_empty() { Vec::new() } else { config.muted_by(now) },
            ack,
            groups,
        }
    }

    /// Delivery counters per receiver.
    pub fn receivers(&self) -> Vec<ReceiverStatus> {
        read(&self.workers)
            .iter()
            .map(|w| {
                let c = &w.counters;
                let last_error = lock(&c.last_error).clone();
                let success = c.last_success_at.load(Ordering::Relaxed);
                ReceiverStatus {
                    name: w.name.clone(),
                    kind: w.config.kind,
                    sent: c.sent.load(Ordering::Relaxed),
                    failed_attempts: c.failed_attempts.load(Ordering::Relaxed),
                    retries: c.retries.load(Ordering::Relaxed),
                    given_up: c.given_up.load(Ordering::Relaxed),
                    dropped: c.dropped.load(Ordering::Relaxed),
                    queued: c.queued.load(Ordering::Relaxed),
                    last_success_at: (success != 0).then_some(success),
                    last_error_at: last_error.as_ref().map(|(t, _)| *t),
                    last_error: last_error.map(|(_, e)| e),
                }
            })
            .collect()
    }

    /// The last notifications queued (or dropped), oldest first.
    pub fn recent(&self) -> Vec<SentRecord> {
        lock(&self.core).recent.iter().cloned().collect()
    }

    /// Alerts not grouped because the group table was full.
    pub fn dropped_alerts(&self) -> u64 {
        lock(&self.core).route.dropped
    }

    /// The groups, notification log, silences and acks as one JSON value.
    pub fn snapshot(&self) -> serde_json::Value {
        let core = lock(&self.core);
        let mut v = serde_json::to_value(&*core).unwrap_or(serde_json::Value::Null);
        if let Some(map) = v.as_object_mut() {
            map.insert("version".into(), SNAPSHOT_VERSION.into());
        }
        v
    }

    /// Replaces the state with a [`Dispatcher::snapshot`]; `null` (no saved state) is an
    /// empty state.
    ///
    /// # Errors
    ///
    /// The value is not a snapshot of this version; the state is then left as it was.
    pub fn restore(&self, value: &serde_json::Value) -> Result<()> {
        if value.is_null() {
            return Ok(());
        }
        let version = value.get("version").and_then(serde_json::Value::as_u64);
        if version != Some(SNAPSHOT_VERSION) {
            return Err(Error::request(
                "notifier state",
                format!("version {version:?}, this build reads {SNAPSHOT_VERSION}"),
            ));
        }
        let restored: Core = serde_json::from_value(value.clone())
            .map_err(|source| Error::NotifyState { source })?;
        let config = self.config();
        let mut core = lock(&self.core);
        let recent = std::mem::take(&mut core.recent);
        *core = restored;
        core.recent = recent;
        core.rebuild_inhibitor(&config);
        Ok(())
    }

    /// Stops the delivery threads: each finishes the attempt under way, then exits; waits
    /// for them at most `timeout`. Queued deliveries are dropped.
    pub fn shutdown(&self, timeout: Duration) {
        let workers = read(&self.workers);
        for w in &workers {
            w.stop.store(true, Ordering::SeqCst);
            lock(&w.tx).take();
        }
        let deadline = Instant::now() + timeout;
        for w in &workers {
            let mut handle = lock(&w.handle);
            while handle.as_ref().is_some_and(|h| !h.is_finished()) && Instant::now() < deadline {
                std::thread::sleep(Duration::from_millis(5));
            }
            if let Some(h) = handle.take_if(|h| h.is_finished()) {
                let _ = h.join();
            }
        }
    }

    /// The current Unix time, for callers without a clock of their own.
    pub fn now() -> i64 {
        unix_now()
    }
}

impl Drop for Dispatcher {
    fn drop(&mut self) {
        // The threads see the flag within WORKER_POLL and exit on their own.
        for w in read(&self.workers) {
            w.stop.store(true, Ordering::SeqCst);
        }
    }
}

/// The retry policy and queue capacity of `config`'s delivery threads.
fn policy_of(config: &NotifyConfig) -> (RetryPolicy, usize) {
    let retry = RetryPolicy {
        max_attempts: config.route.max_attempts,
        initial: config.route.retry_initial.0,
        max: config.route.retry_max.0,
    };
    (retry, config.route.queue_capacity)
}

/// Keeps `core.active` (the possible sources of inhibitions) up to date with `events` and
/// rebuilds the inhibitor. An alert the engine stopped reporting is dropped after the
/// route's `resolve_timeout`, as its groups resolve it.
fn file_active(core: &mut Core, config: &NotifyConfig, events: &[AlertEvent], now: i64) {
    for e in events {
        let fp = e.fingerprint();
        if e.is_active() {
            let labels = crate::notify::labels_of(e);
            core.active.insert(fp, ActiveAlert { labels, updated_at: now });
        } else {
            core.active.remove(&fp);
        }
    }
    let timeout = config.route.resolve_timeout.as_secs_ceil();
    core.active.retain(|_, a| now.saturating_sub(a.updated_at) < timeout);
    core.rebuild_inhibitor(config);
}

/// One pending delivery on a thread.
struct Pending {
    n: Notification,
    attempts: u32,
    due: Instant,
}

/// A receiver's delivery thread: takes notifications from `rx`, tries each, and retries
/// failures with backoff while taking new work; holds at most `capacity` at once.
#[allow(clippy::too_many_arguments)]
fn deliver_loop(
    name: &str,
    transport: &Transport,
    rx: &Receiver<Notification>,
    counters: &Counters,
    policy: RetryPolicy,
    capacity: usize,
    failures: &Sender<(String, String)>,
    stop: &AtomicBool,
) {
    let mut pending: VecDeque<Pending> = VecDeque::new();
    let mut open = true;
    'run: while !stop.load(Ordering::SeqCst) {
        let now = Instant::now();
        let wait = pending
            .iter()
            .map(|p| p.due.saturating_duration_since(now))
            .min()
            .unwrap_or(WORKER_POLL)
            .min(WORKER_POLL);
        if open && pending.len() < capacity {
            match rx.recv_timeout(wait) {
                Ok(n) => pending.push_back(Pending { n, attempts: 0, due: Instant::now() }),
                Err(RecvTimeoutError::Timeout) => {}
                Err(RecvTimeoutError::Disconnected) => open = false,
            }
        } else if !wait.is_zero() {
            std::thread::sleep(wait);
        }
        if !open && pending.is_empty() {
            break;
        }
        let now = Instant::now();
        let due: Vec<Pending> = {
            let (due, later): (Vec<Pending>, Vec<Pending>) =
                pending.drain(..).partition(|p| p.due <= now);
            pending.extend(later);
            due
        };
        let mut due = due.into_iter();
        while let Some(mut p) = due.next() {
            if stop.load(Ordering::SeqCst) {
                pending.push_back(p);
                pending.extend(due);
                break 'run;
            }
            p.attempts += 1;
            match transport.deliver(&p.n) {
                Ok(()) => {
                    counters.sent.fetch_add(1, Ordering::Relaxed);
                    counters.queued.fetch_sub(1, Ordering::Relaxed);
                    counters.last_success_at.store(unix_now(), Ordering::Relaxed);
                    tracing::info!(
                        receiver = name,
                        group = p.n.group_key,
                        status = p.n.status.as_str(),
                        alerts = p.n.alerts.len(),
                        attempts = p.attempts,
                        "notified"
                    );
                }
                Err(DeliveryError { message, retryable }) => {
                    counters.failed_attempts.fetch_add(1, Ordering::Relaxed);
                    *lock(&counters.last_error) = Some((unix_now(), message.clone()));
                    if retryable && p.attempts < policy.max_attempts {
                        counters.retries.fetch_add(1, Ordering::Relaxed);
                        let delay = policy.delay(p.attempts);
                        tracing::warn!(
                            receiver = name,
                            attempt = p.attempts,
                            ?delay,
                            "{message}; will retry"
                        );
                        p.due = Instant::now() + delay;
                        pending.push_back(p);
                    } else {
                        counters.given_up.fetch_add(1, Ordering::Relaxed);
                        counters.queued.fetch_sub(1, Ordering::Relaxed);
                        tracing::error!(
                            receiver = name,
                            attempts = p.attempts,
                            "{message}; given up"
                        );
                        let _ = failures.send((p.n.receiver.clone(), p.n.group_key.clone()));
                    }
                }
            }
        }
    }
    // Stopped (shutdown, or a reload removed or changed the receiver): what is left is
    // dropped, and counted so.
    let left = pending.len() as u64 + rx.try_iter().count() as u64;
    if left > 0 {
        counters.queued.fetch_sub(left, Ordering::Relaxed);
        counters.dropped.fetch_add(left, Ordering::Relaxed);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_doubles_and_caps() {
        let p = RetryPolicy {
            max_attempts: 10,
            initial: Duration::from_secs(1),
            max: Duration::from_secs(10),
        };
        let delays: Vec<u64> = (1..=6).map(|n| p.delay(n).as_secs()).collect();
        assert_eq!(delays, vec![1, 2, 4, 8, 10, 10]);
        assert_eq!(p.delay(200), Duration::from_secs(10));
    }

    #[test]
    fn starts_and_stops_repeatedly_without_leaking_threads() {
        let config: NotifyConfig = toml::from_str(
            "[[receiver]]\nname = 'a'\ntype = 'command'\ncommand = ['true']\n\
             [[receiver]]\nname = 'b'\ntype = 'webhook'\nurl = 'http://127.0.0.1:9/'\n",
        )
        .unwrap();
        for _ in 0..5 {
            let d = Dispatcher::new(config.clone()).unwrap();
            d.shutdown(Duration::from_secs(5));
            for w in read(&d.workers) {
                assert!(lock(&w.handle).is_none(), "thread {} joined", w.name);
                assert!(lock(&w.tx).is_none());
            }
            // After shutdown nothing is queued: the notification is dropped and counted.
            d.ingest(&[], 0);
            assert_eq!(d.tick(0), 0);
        }
    }

    #[test]
    fn reload_keeps_unchanged_receivers_and_refuses_a_bad_config_whole() {
        let config = |b_url: &str, extra: &str| -> NotifyConfig {
            toml::from_str(&format!(
                "[[receiver]]\nname = 'a'\ntype = 'command'\ncommand = ['true']\n\
                 [[receiver]]\nname = 'b'\ntype = 'webhook'\nurl = '{b_url}'\n{extra}"
            ))
            .unwrap()
        };
        let d = Dispatcher::new(config("http://127.0.0.1:9/", "")).unwrap();
        let before = read(&d.workers);
        before[1].counters.sent.fetch_add(1, Ordering::Relaxed);
        let c = "[[receiver]]\nname = 'c'\ntype = 'command'\ncommand = ['true']\n";
        d.reload(config("http://127.0.0.1:9/other", c), &[], 0).unwrap();
        let after = read(&d.workers);
        let names: Vec<&str> = after.iter().map(|w| w.name.as_str()).collect();
        assert_eq!(names, vec!["a", "b", "c"]);
        assert!(Arc::ptr_eq(&after[0], &before[0]), "a is unchanged: same thread");
        assert!(!Arc::ptr_eq(&after[1], &before[1]), "b changed: a new thread");
        assert!(Arc::ptr_eq(&after[1].counters, &before[1].counters), "b keeps its counters");
        assert!(lock(&before[1].tx).is_none(), "the old thread of b was told to stop");
        assert_eq!(d.receivers()[1].sent, 1);

        // A receiver whose transport cannot be built: nothing changes.
        let bad = "[[receiver]]\nname = 'm'\ntype = 'email'\nsmtp_host = 'h'\nfrom = 'a@b.c'\n\
                   to = ['d@e.f']\nusername = 'u'\npassword_env = 'GRAPHITE_RS_TEST_UNSET_VARIABLE'\n";
        assert!(d.reload(config("http://127.0.0.1:9/", bad), &[], 0).is_err());
        let still = read(&d.workers);
        assert_eq!(still.len(), 3);
        assert!(still.iter().zip(&after).all(|(x, y)| Arc::ptr_eq(x, y)));
        assert_eq!(d.config().receivers.len(), 3);
        d.shutdown(Duration::from_secs(5));
    }

    #[test]
    fn restore_rejects_other_versions_and_accepts_null() {
        let d = Dispatcher::new(NotifyConfig::default()).unwrap();
        assert!(d.restore(&serde_json::Value::Null).is_ok());
        assert!(d.restore(&serde_json::json!({"version": 99})).is_err());
        assert!(d.restore(&serde_json::json!({"version": 1, "route": 5})).is_err());
        let snap = d.snapshot();
        d.restore(&snap).unwrap();
        assert_eq!(d.snapshot(), snap);
    }
}
