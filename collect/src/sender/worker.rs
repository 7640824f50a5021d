//! One destination's queue, spool and worker thread.
//!
//! The points of a destination form one FIFO: the batch in flight (or held after a failed
//! write), then the spool on disk, then the memory queue. Every path that moves points
//! keeps that order:
//! - `enqueue` appends to the memory queue; when it is full, the whole queue and the new
//!   points are appended to the spool (so the spool only ever holds points older than the
//!   memory queue), or, without a spool, the oldest points in memory are dropped.
//! - The worker replays the spool before it takes from memory, and takes from memory only
//!   when the spool is empty; a batch from memory that fails is put back in front of the
//!   spool ([`Spool::push_front`]) or held and retried first.
//! - While the destination is down, the worker moves the memory queue to the spool.

use std::collections::VecDeque;
use std::hash::{BuildHasher, Hasher};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Condvar, Mutex, MutexGuard, PoisonError};
use std::time::{Duration, Instant};

use carbon_proto::Point;

use super::spool::{Spool, Token};
use super::transport::{Connection, Transport};

/// Longest the worker sleeps without looking at its state (spool fsync, stop requests).
const IDLE_WAKE: Duration = Duration::from_secs(1);

/// Interval between two log lines about dropped points.
const DROP_LOG_INTERVAL: Duration = Duration::from_secs(60);

/// Counters read by `Sender::stats` without taking the state lock.
#[derive(Debug, Default)]
pub(crate) struct Counters {
    /// Points written to the destination.
    pub(crate) sent: AtomicU64,
    /// Points dropped outside the spool (memory overflow without a spool, UDP failures,
    /// points sent after shutdown).
    pub(crate) dropped: AtomicU64,
    /// Failed writes and connects.
    pub(crate) send_errors: AtomicU64,
    /// Successful connects after the first.
    pub(crate) reconnects: AtomicU64,
    /// Whether a connection is open.
    pub(crate) connected: AtomicBool,
}

/// What the caller of `send` and the worker share, under one lock.
#[derive(Debug)]
pub(crate) struct State {
    /// Points waiting in memory, oldest first.
    pub(crate) queue: VecDeque<Point>,
    /// When the oldest point in `queue` arrived (for `batch_delay`).
    first_queued: Option<Instant>,
    /// The spool, if the destination has one.
    pub(crate) spool: Option<Spool>,
    /// Points taken by the worker and neither written nor put back yet.
    pub(crate) in_flight: usize,
    /// Set by shutdown: the worker flushes until then, then spools the rest and exits.
    stop_at: Option<Instant>,
    /// Set by the worker when it has exited: later points are dropped.
    closed: bool,
    /// Whether the last spool write failed (to log once per change).
    spool_failing: bool,
    /// Rate limit for the log line about dropped points.
    drop_log: DropLog,
}

/// One destination, shared between `Sender` and its worker.
#[derive(Debug)]
pub(crate) struct Shared {
    /// The destination's name.
    pub(crate) name: String,
    /// Queue, spool and flags.
    state: Mutex<State>,
    /// Wakes the worker (new points, shutdown).
    wake: Condvar,
    /// Statistics.
    pub(crate) counters: Counters,
    /// Points per write.
    batch_size: usize,
    /// Memory queue capacity.
    queue_points: usize,
}

/// The worker's timing settings.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Timing {
    pub(crate) batch_delay: Duration,
    pub(crate) reconnect_min: Duration,
    pub(crate) reconnect_max: Duration,
    pub(crate) timeout: Duration,
}

impl Shared {
    pub(crate) fn new(
        name: String,
        spool: Option<Spool>,
        batch_size: usize,
        queue_points: usize,
    ) -> Shared {
        let state = State {
            queue: VecDeque::new(),
            first_queued: None,
            spool,
            in_flight: 0,
            stop_at: None,
            closed: false,
            spool_failing: false,
            drop_log: DropLog::default(),
        };
        Shared {
            name,
            state: Mutex::new(state),
            wake: Condvar::new(),
            counters: Counters::default(),
            batch_size,
            queue_points,
        }
    }

    /// The state. A panic while holding the lock cannot leave it inconsistent in a way that
    /// matters more than losing the points, so a poisoned lock is used as is.
    pub(crate) fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Queues points; never waits for the destination (at most for one spool write).
    pub(crate) fn enqueue(&self, points: Vec<Point>) {
        if points.is_empty() {
            return;
        }
        let mut st = self.lock();
        if st.closed {
            self.drop_points(&mut st, points.len() as u64, "sender is shut down");
            return;
        }
        let was_empty = st.queue.is_empty();
        if st.queue.len() + points.len() <= self.queue_points {
            st.queue.extend(points);
            if was_empty {
                st.first_queued = Some(Instant::now());
            }
            if was_empty || st.queue.len() >= self.batch_size {
                self.wake.notify_one();
            }
            return;
        }
        // Full: everything in memory and the new points go to the spool, in that order.
        let mut all: Vec<Point> = st.queue.drain(..).collect();
        all.extend(points);
        st.first_queued = None;
        let rest = self.spool_points(&mut st, all);
        self.keep_in_memory(&mut st, rest);
        self.wake.notify_one();
    }

    /// Appends `points` to the spool; returns those that could not be written (all of them
    /// without a spool).
    fn spool_points(&self, st: &mut State, points: Vec<Point>) -> Vec<Point> {
        let Some(spool) = st.spool.as_mut() else { return points };
        match spool.append(&points) {
            Ok(()) => {
                if st.spool_failing {
                    tracing::info!(destination = %self.name, "spool writes work again");
                    st.spool_failing = false;
                }
                Vec::new()
            }
            Err((written, error)) => {
                if !st.spool_failing {
                    tracing::warn!(
                        destination = %self.name, %error,
                        "cannot write to the spool: keeping points in memory (oldest dropped when full)"
                    );
                    st.spool_failing = true;
                }
                let mut points = points;
                points.drain(..written.min(points.len()));
                points
            }
        }
    }

    /// Puts `points` back in memory (they are the newest), dropping the oldest beyond the
    /// capacity.
    fn keep_in_memory(&self, st: &mut State, points: Vec<Point>) {
        if points.is_empty() {
            return;
        }
        if st.queue.is_empty() {
            st.first_queued = Some(Instant::now());
        }
        st.queue.extend(points);
        let excess = st.queue.len().saturating_sub(self.queue_points);
        if excess > 0 {
            st.queue.drain(..excess);
            self.drop_points(
                st,
                excess as u64,
                "memory queue full and no spool to take the overflow",
            );
        }
    }

    fn drop_points(&self, st: &mut State, n: u64, why: &'static str) {
        self.counters.dropped.fetch_add(n, Ordering::Relaxed);
        if let Some(total) = st.drop_log.add(n) {
            tracing::warn!(destination = %self.name, points = total, why, "dropped points");
        }
    }

    /// Moves the memory queue to the spool (the destination is down, or shutting down).
    fn spool_memory(&self, st: &mut State) {
        if st.spool.is_none() || st.queue.is_empty() {
            return;
        }
        let all: Vec<Point> = st.queue.drain(..).collect();
        st.first_queued = None;
        let rest = self.spool_points(st, all);
        self.keep_in_memory(st, rest);
    }

    /// Asks the worker to finish by `deadline`.
    pub(crate) fn stop(&self, deadline: Instant) {
        let mut st = self.lock();
        st.stop_at = Some(st.stop_at.map_or(deadline, |d| d.min(deadline)));
        drop(st);
        self.wake.notify_all();
    }
}

/// Where the batch being written came from.
enum Source {
    /// A spool record, acknowledged after the write.
    Spool(Token),
    /// The memory queue (or a held batch).
    Memory,
}

/// The worker thread's body.
pub(crate) fn run(shared: &Shared, transport: &Transport, timing: Timing) {
    let mut worker = Worker {
        shared,
        transport,
        timing,
        conn: None,
        backoff: Backoff::new(timing.reconnect_min, timing.reconnect_max),
        next_attempt: Instant::now(),
        down_since: None,
        ever_connected: false,
        held: None,
    };
    worker.run();
    worker.finish();
}

struct Worker<'a> {
    shared: &'a Shared,
    transport: &'a Transport,
    timing: Timing,
    /// The open connection.
    conn: Option<Box<dyn Connection>>,
    /// Reconnect delays.
    backoff: Backoff,
    /// No connect before this.
    next_attempt: Instant,
    /// Set when the destination went down (for logging once per outage).
    down_since: Option<Instant>,
    /// Whether a connect has ever succeeded (the first is not a reconnect).
    ever_connected: bool,
    /// A batch from memory whose write failed and that could not be spooled: sent first.
    held: Option<Vec<Point>>,
}

impl Worker<'_> {
    fn run(&mut self) {
        loop {
            if self.conn.is_none() && !self.connect_or_wait() {
                return;
            }
            let Some((batch, source)) = self.next_batch() else { return };
            self.write(batch, source);
        }
    }

    /// Connects if it is time; otherwise (down) spools memory and waits. Returns false when
    /// the worker should stop.
    fn connect_or_wait(&mut self) -> bool {
        let now = Instant::now();
        let stop_at = self.shared.lock().stop_at;
        if stop_at.is_some_and(|d| now >= d) {
            return false;
        }
        if now >= self.next_attempt {
            let timeout = limit(self.timing.timeout, stop_at);
            match self.transport.connect(timeout) {
                Ok(conn) => {
                    self.conn = Some(conn);
                    self.shared.counters.connected.store(true, Ordering::Relaxed);
                    if self.ever_connected {
                        self.shared.counters.reconnects.fetch_add(1, Ordering::Relaxed);
                    }
                    self.ever_connected = true;
                    match self.down_since.take() {
                        Some(since) => tracing::info!(
                            destination = %self.shared.name, down_for = ?since.elapsed(),
                            "destination is back: replaying the spool"
                        ),
                        None => tracing::debug!(destination = %self.shared.name, "connected"),
                    }
                    return true;
                }
                Err(error) => {
                    self.shared.counters.send_errors.fetch_add(1, Ordering::Relaxed);
                    self.went_down(&error, "cannot connect");
                }
            }
        }
        // Down: keep memory small and on disk, then sleep until the next attempt.
        let mut st = self.shared.lock();
        self.shared.spool_memory(&mut st);
        if let Some(spool) = st.spool.as_mut() {
            spool.sync_if_due();
        }
        if st.stop_at.is_some() && st.spool.is_some() && self.held.is_none() && st.queue.is_empty()
        {
            // Shutting down with everything safe on disk: no need to wait for the
            // destination.
            return false;
        }
        let until = st.stop_at.map_or(self.next_attempt, |d| d.min(self.next_attempt));
        let wait = until.saturating_duration_since(Instant::now()).min(IDLE_WAKE);
        if !wait.is_zero() {
            drop(self.shared.wake.wait_timeout(st, wait).unwrap_or_else(PoisonError::into_inner));
        }
        true
    }

    /// Logs once per outage and schedules the next connect.
    fn went_down(&mut self, error: &std::io::Error, what: &'static str) {
        self.conn = None;
        self.shared.counters.connected.store(false, Ordering::Relaxed);
        let now = Instant::now();
        if self.down_since.is_none() {
            tracing::warn!(
                destination = %self.shared.name, %error, what,
                "destination down: points go to the spool, reconnecting with backoff"
            );
            self.down_since = Some(now);
        } else {
            tracing::debug!(destination = %self.shared.name, %error, what, "still down");
        }
        self.next_attempt = now + self.backoff.next_delay();
    }

    /// The next batch to write, oldest first: a held batch, the spool, then memory once a
    /// batch is full or `batch_delay` has passed. `None` when the worker should stop.
    fn next_batch(&mut self) -> Option<(Vec<Point>, Source)> {
        if let Some(batch) = self.held.take() {
            return Some((batch, Source::Memory));
        }
        let shared = self.shared;
        let mut st = shared.lock();
        loop {
            let now = Instant::now();
            if st.stop_at.is_some_and(|d| now >= d) {
                return None;
            }
            if let Some(spool) = st.spool.as_mut() {
                spool.sync_if_due();
                if let Some((token, points)) = spool.next_record() {
                    return Some((points, Source::Spool(token)));
                }
            }
            let stopping = st.stop_at.is_some();
            let due = st
                .first_queued
                .map(|t| t + self.timing.batch_delay)
                .filter(|_| !st.queue.is_empty());
            let ready =
                st.queue.len() >= shared.batch_size || due.is_some_and(|d| stopping || now >= d);
            if ready {
                let n = shared.batch_size.min(st.queue.len());
                let batch: Vec<Point> = st.queue.drain(..n).collect();
                if st.queue.is_empty() {
                    st.first_queued = None;
                }
                st.in_flight = batch.len();
                return Some((batch, Source::Memory));
            }
            if stopping && st.queue.is_empty() {
                return None;
            }
            let until = [due, st.stop_at].into_iter().flatten().min();
            let wait = until.map_or(IDLE_WAKE, |u| u.saturating_duration_since(now)).min(IDLE_WAKE);
            st = shared.wake.wait_timeout(st, wait).unwrap_or_else(PoisonError::into_inner).0;
        }
    }

    fn write(&mut self, batch: Vec<Point>, source: Source) {
        let Some(conn) = self.conn.as_mut() else {
            self.put_back(batch, source);
            return;
        };
        let stop_at = self.shared.lock().stop_at;
        let n = batch.len() as u64;
        let counters = &self.shared.counters;
        match conn.write_batch(&batch, limit(self.timing.timeout, stop_at)) {
            Ok(()) => {
                counters.sent.fetch_add(n, Ordering::Relaxed);
                self.backoff.reset();
                let mut st = self.shared.lock();
                st.in_flight = 0;
                if let (Source::Spool(token), Some(spool)) = (source, st.spool.as_mut()) {
                    spool.ack(token);
                }
            }
            Err(failure) if self.transport.fire_and_forget() => {
                counters.send_errors.fetch_add(1, Ordering::Relaxed);
                let unsent = (failure.unsent as u64).min(n);
                counters.sent.fetch_add(n - unsent, Ordering::Relaxed);
                let mut st = self.shared.lock();
                st.in_flight = 0;
                self.shared.drop_points(&mut st, unsent, "UDP send failed");
            }
            Err(failure) => {
                counters.send_errors.fetch_add(1, Ordering::Relaxed);
                self.went_down(&failure.error, "write failed");
                self.put_back(batch, source);
            }
        }
    }

    /// A batch that was not written goes back to the front of the line.
    fn put_back(&mut self, batch: Vec<Point>, source: Source) {
        // A spool record stays in the spool until acknowledged.
        if matches!(source, Source::Spool(_)) {
            return;
        }
        let mut st = self.shared.lock();
        if let Some(spool) = st.spool.as_mut() {
            match spool.push_front(&batch) {
                Ok(()) => {
                    st.in_flight = 0;
                    return;
                }
                Err(error) => tracing::warn!(
                    destination = %self.shared.name, %error,
                    "cannot spool a failed batch: keeping it in memory"
                ),
            }
        }
        self.held = Some(batch);
    }

    /// At exit: the held batch and the memory queue go to the spool (or are counted as
    /// dropped), the spool is fsynced, later points are refused.
    fn finish(&mut self) {
        self.conn = None;
        self.shared.counters.connected.store(false, Ordering::Relaxed);
        let shared = self.shared;
        let mut st = shared.lock();
        if let Some(batch) = self.held.take() {
            let n = batch.len() as u64;
            let spooled = st.spool.as_mut().is_some_and(|s| s.push_front(&batch).is_ok());
            if !spooled {
                shared.drop_points(&mut st, n, "unsent at shutdown and no spool");
            }
        }
        st.in_flight = 0;
        shared.spool_memory(&mut st);
        let left = st.queue.len() as u64;
        if left > 0 {
            st.queue.clear();
            st.first_queued = None;
            shared.drop_points(&mut st, left, "unsent at shutdown and no spool");
        }
        if let Some(spool) = st.spool.as_mut() {
            spool.sync();
        }
        st.closed = true;
    }
}

/// `timeout`, shortened to what is left before `stop_at`.
fn limit(timeout: Duration, stop_at: Option<Instant>) -> Duration {
    match stop_at {
        Some(d) => {
            timeout.min(d.saturating_duration_since(Instant::now())).max(Duration::from_millis(1))
        }
        None => timeout,
    }
}

/// Exponential backoff with jitter: the n-th delay is drawn in `[max(d/2, min), d]` where
/// `d = min(min * 2^n, max)`, so agents that lost the same carbon do not come back in step.
#[derive(Debug)]
pub(crate) struct Backoff {
    min: Duration,
    max: Duration,
    attempt: u32,
    rng: u64,
}

impl Backoff {
    pub(crate) fn new(min: Duration, max: Duration) -> Backoff {
        // std's randomly keyed hasher gives a per-process, per-instance seed.
        let seed = std::collections::hash_map::RandomState::new().build_hasher().finish();
        Backoff { min, max: max.max(min), attempt: 0, rng: seed | 1 }
    }

    pub(crate) fn reset(&mut self) {
        self.attempt = 0;
    }

    pub(crate) fn next_delay(&mut self) -> Duration {
        let d = self.min.saturating_mul(1 << self.attempt.min(20)).min(self.max);
        self.attempt = self.attempt.saturating_add(1);
        let lo = (d / 2).max(self.min).min(d);
        // xorshift64*: plenty for jitter.
        self.rng ^= self.rng >> 12;
        self.rng ^= self.rng << 25;
        self.rng ^= self.rng >> 27;
        let r = self.rng.wrapping_mul(0x2545_f491_4f6c_dd1d);
        let frac = (r >> 11) as f64 / (1u64 << 53) as f64;
        lo + (d - lo).mul_f64(frac)
    }
}

/// Rate limit for the "dropped points" log line: the first drop is logged at once, later
/// ones at most once per [`DROP_LOG_INTERVAL`] with the count since the last line.
#[derive(Debug, Default)]
struct DropLog {
    last: Option<Instant>,
    pending: u64,
}

impl DropLog {
    fn add(&mut self, n: u64) -> Option<u64> {
        self.pending += n;
        let now = Instant::now();
        if self.last.is_some_and(|t| now.duration_since(t) < DROP_LOG_INTERVAL) {
            return None;
        }
        self.last = Some(now);
        Some(std::mem::take(&mut self.pending))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_doubles_with_jitter_within_bounds() {
        let (min, max) = (Duration::from_millis(100), Duration::from_secs(2));
        let mut b = Backoff::new(min, max);
        let mut ceiling = min;
        for _ in 0..12 {
            let d = b.next_delay();
            assert!(d >= min && d <= ceiling, "{d:?} not in [{min:?}, {ceiling:?}]");
            assert!(d >= (ceiling / 2).max(min));
            ceiling = (ceiling * 2).min(max);
        }
        b.reset();
        assert!(b.next_delay() <= min);
    }

    #[test]
    fn drop_log_reports_the_first_drop_then_summarises() {
        let mut log = DropLog::default();
        assert_eq!(log.add(3), Some(3));
        assert_eq!(log.add(4), None);
        assert_eq!(log.pending, 4);
    }
}
