//! The persister threads: they take metrics out of the cache, in the order
//! `CACHE_WRITE_STRATEGY` says, and write them into their Whisper files with `update_many`,
//! creating files from the schema and aggregation rules.
//!
//! Rate limits queue work instead of dropping it: with no create token, a new metric's points
//! go back to the cache and the metric is retried when a token is due (carbon drops them,
//! carbon#262); `MAX_UPDATES_PER_SECOND` makes a writer wait, as in carbon. A write that fails
//! for an I/O reason (a full disk) is retried a second later; a file that is not valid Whisper
//! gets its points dropped and logged, since no retry can succeed.

use std::collections::{HashMap, VecDeque};
use std::ops::Range;
use std::sync::atomic::Ordering;
use std::sync::{Arc, PoisonError};
use std::time::{Duration, Instant};

use whisper::{Allocation, CreateOptions, OpenOptions, Whisper};

use crate::cache::{CachedPoint, Candidate, SegmentId, dedup_last_wins_into};
use crate::config::CacheWriteStrategy;
use crate::selfmetrics::Counters;
use crate::store::{Inner, unix_now};

/// How long an idle persister sleeps before looking again (it is woken when points arrive).
const IDLE_WAIT: Duration = Duration::from_millis(100);
/// How many of the biggest metrics `max` queues per look at the cache.
const MAX_STRATEGY_BATCH: usize = 64;
/// When no point at all arrived for this long, every cached metric is due.
const ALL_QUIET_MS: u32 = 20;
/// A metric with this many pending points is written without waiting for its points to stop.
const WRITE_BATCH_POINTS: usize = 256;
/// How long a write that failed for an I/O reason waits before its retry.
const RETRY_AFTER: Duration = Duration::from_secs(1);

/// The metrics waiting to be written, in the strategy's order, shared by the persisters.
#[derive(Debug, Default)]
pub(crate) struct Queue {
    /// The names of the cache snapshot `order` came from (the queue is refilled only once
    /// empty, so from one snapshot at a time).
    names: String,
    /// Where the names of the metrics to write next are in `names`.
    order: VecDeque<Range<usize>>,
    /// Metrics not to take before an instant: no create token yet, or a failed write.
    later: HashMap<Box<str>, Instant>,
}

impl Queue {
    /// Copies the next metric's name into `name`; false when the queue is empty.
    fn pop_into(&mut self, name: &mut String) -> bool {
        let Some(range) = self.order.pop_front() else { return false };
        name.clear();
        name.push_str(self.names.get(range).unwrap_or_default());
        if self.order.is_empty() {
            // The next refill brings its own names.
            self.names = String::new();
        }
        true
    }
}

/// A persister's reusable buffers: a steady write costs no allocation.
#[derive(Default)]
struct Buffers {
    taken: Vec<CachedPoint>,
    deduped: Vec<CachedPoint>,
    update: Vec<(i64, f64)>,
}

/// A metric's points taken for one write.
struct Job<'a> {
    name: &'a str,
    segment: SegmentId,
    /// New to the store: try creating its file first.
    fresh: bool,
    points: usize,
}

/// A persister thread's loop.
pub(crate) fn run(inner: &Arc<Inner>) {
    lower_priority();
    let mut buffers = Buffers::default();
    let mut name = String::new();
    while !inner.stopped.load(Ordering::Relaxed) {
        match next_metric(inner, &mut name) {
            Next::Metric => {
                if let Some(taken) = inner.cache.take(&name, &mut buffers.taken) {
                    let job = Job {
                        name: &name,
                        segment: taken.segment,
                        fresh: taken.fresh,
                        points: buffers.taken.len(),
                    };
                    write(inner, &job, &mut buffers);
                }
            }
            Next::WaitUntil(at) => wait_until(inner, at),
            Next::Nothing => idle(inner),
        }
    }
}

/// Persisters run at a lower priority (nice 10) than the listeners and the log writer: when
/// the cores are busy, receiving points and answering reads go first, and writes, which only
/// drain the cache, take what is left. (On Linux the nice value of a thread id is per thread.)
fn lower_priority() {
    // SAFETY: gettid and setpriority take no pointers; setpriority changes only this thread.
    let result = unsafe {
        let tid = libc::syscall(libc::SYS_gettid) as libc::id_t;
        libc::setpriority(libc::PRIO_PROCESS, tid, PERSISTER_NICE)
    };
    if result != 0 {
        tracing::debug!(error = %std::io::Error::last_os_error(), "cannot lower the persister's priority");
    }
}

/// The nice value of persister threads.
const PERSISTER_NICE: libc::c_int = 10;

/// What a persister does next.
enum Next {
    /// The metric whose name [`next_metric`] wrote into its argument.
    Metric,
    /// Metrics are cached but none is due yet (see [`due_in`]).
    WaitUntil(Instant),
    Nothing,
}

/// Waits for points to arrive.
fn idle(inner: &Inner) {
    let (lock, cvar) = &inner.work;
    let generation = lock.lock().unwrap_or_else(PoisonError::into_inner);
    let seen = *generation;
    let _ = cvar
        .wait_timeout_while(generation, IDLE_WAIT, |g| {
            *g == seen && !inner.stopped.load(Ordering::Relaxed)
        })
        .unwrap_or_else(PoisonError::into_inner);
}

/// Waits until `at`, or until the writes are urgent (stop, shutdown's drain, a cache past half
/// its limit) or no point arrived for [`ALL_QUIET_MS`], whatever else arrives meanwhile.
fn wait_until(inner: &Inner, at: Instant) {
    let (lock, cvar) = &inner.work;
    let mut guard = lock.lock().unwrap_or_else(PoisonError::into_inner);
    loop {
        let now = Instant::now();
        let all_quiet =
            inner.cache.now_ms().wrapping_sub(inner.cache.last_insert_ms()) >= ALL_QUIET_MS;
        if now >= at || all_quiet || inner.stopped.load(Ordering::Relaxed) || urgent(inner) {
            return;
        }
        // Woken by every batch (to check urgency); otherwise look again at the deadline or
        // after the all-quiet interval, whichever comes first.
        let slice = (at - now).min(Duration::from_millis(u64::from(ALL_QUIET_MS)));
        guard = cvar.wait_timeout(guard, slice).unwrap_or_else(PoisonError::into_inner).0;
    }
}

/// Writes are urgent: every cached metric is due at once.
fn urgent(inner: &Inner) -> bool {
    inner.draining.load(Ordering::Relaxed)
        || inner.flushing.load(Ordering::Relaxed) > 0
        || inner.cache.size() >= inner.max_cache_points / 2
}

/// How long until a metric's write is due (`None`: due now), in milliseconds.
///
/// A metric is written once its points have stopped coming for a while: for twice the
/// interval they came at (at least `quiet` for a single point), or once its oldest point
/// waited `max_delay`, or once it has `WRITE_BATCH_POINTS` points. A metric new to the store
/// is written at once: its file is probably to be created, the costly part, which then
/// overlaps the rest of the burst. A burst of points for the
/// same metrics (a backfill, a sender catching up, a benchmark) then costs one write per
/// metric instead of one per point, while a steady metric's point is written `quiet` after
/// it came. Reads see cached points, so the delay is invisible to them; the write-ahead log
/// keeps them through a crash.
fn due_in(c: &Candidate, now_ms: u32, quiet: u32, max_delay: u32) -> Option<u32> {
    if c.fresh || c.points >= WRITE_BATCH_POINTS {
        return None;
    }
    let age = now_ms.wrapping_sub(c.first_ms);
    let silent = now_ms.wrapping_sub(c.last_ms);
    let spacing = match c.points {
        0 | 1 => 0,
        n => c.last_ms.wrapping_sub(c.first_ms) / (n as u32 - 1),
    };
    let wait = spacing.saturating_mul(2).clamp(quiet, max_delay.max(quiet));
    if silent >= wait || age >= max_delay {
        return None;
    }
    Some((wait - silent).min(max_delay - age))
}

/// The next metric to write (its name goes into `name`), refilling the queue from the cache
/// when it is empty.
fn next_metric(inner: &Inner, name: &mut String) -> Next {
    let mut queue = inner.queue.lock().unwrap_or_else(PoisonError::into_inner);
    if queue.pop_into(name) {
        return Next::Metric;
    }
    let now = Instant::now();
    let draining = inner.draining.load(Ordering::Relaxed);
    let lag = inner.min_timestamp_lag;
    let newest_allowed = (unix_now() as u32).saturating_sub(lag);
    let taken = inner.cache.snapshot();
    let names = taken.names;
    let mut snapshot: Vec<Candidate> = taken.candidates;
    if !draining && !queue.later.is_empty() {
        snapshot.retain(|c| {
            let name = names.get(c.name.clone()).unwrap_or_default();
            queue.later.get(name).is_none_or(|&t| t <= now)
        });
    }
    queue.later.retain(|_, t| *t > now);
    if snapshot.is_empty() {
        return Next::Nothing;
    }
    let now_ms = inner.cache.now_ms();
    // No point arrived for a moment: whatever burst there was is over, so nothing is gained
    // by waiting for each metric's own quiet period.
    let since_last = now_ms.wrapping_sub(inner.cache.last_insert_ms());
    if !urgent(inner) && since_last < ALL_QUIET_MS {
        let mut soonest: Option<u32> = None;
        snapshot.retain(|c| {
            match due_in(c, now_ms, inner.write_quiet_ms, inner.write_max_delay_ms) {
                None => true,
                Some(ms) => {
                    soonest = Some(soonest.map_or(ms, |s| s.min(ms)));
                    false
                }
            }
        });
        if snapshot.is_empty() {
            let wait = Duration::from_millis(u64::from(soonest.unwrap_or(1).max(1)));
            return Next::WaitUntil(now + wait);
        }
    }
    match inner.strategy {
        CacheWriteStrategy::Sorted => snapshot.sort_by_key(|c| std::cmp::Reverse(c.points)),
        CacheWriteStrategy::Max => {
            snapshot.sort_by_key(|c| std::cmp::Reverse(c.points));
            snapshot.truncate(MAX_STRATEGY_BATCH);
        }
        CacheWriteStrategy::TimeSorted => {
            if lag > 0 && !draining {
                snapshot.retain(|c| c.newest <= newest_allowed);
            }
            snapshot.sort_by_key(|c| c.newest);
        }
        _ => {}
    }
    queue.order.extend(snapshot.into_iter().map(|c| c.name));
    queue.names = names;
    if queue.pop_into(name) { Next::Metric } else { Next::Nothing }
}

/// Puts a metric's points back and has it retried no sooner than `after`.
fn retry_later(inner: &Inner, job: &Job<'_>, after: Duration) {
    if let Some(released) = inner.cache.requeue(job.name, job.segment) {
        inner.release_segment(released);
    }
    let mut queue = inner.queue.lock().unwrap_or_else(PoisonError::into_inner);
    queue.later.insert(job.name.into(), Instant::now() + after);
}

/// Writes one metric's taken points (in `buffers.taken`).
fn write(inner: &Inner, job: &Job<'_>, buffers: &mut Buffers) {
    let name = job.name;
    dedup_last_wins_into(&buffers.taken, &mut buffers.deduped);
    buffers.update.clear();
    buffers.update.extend(buffers.deduped.iter().map(|p| (i64::from(p.timestamp()), p.value())));
    let path = match inner.path_of(name) {
        Ok(p) => p,
        Err(e) => {
            // Names are checked at ingest; this is a name the store cannot map at all.
            drop_points(inner, job, &e.to_string());
            return;
        }
    };
    // An update token first (carbon's writer waits here too), so that a held-back writer
    // creates no file it cannot fill yet. A wait ends early when shutdown's drain begins,
    // which has its own rate.
    let mut draining = inner.draining.load(Ordering::Relaxed);
    loop {
        let bucket =
            if draining { inner.updates_on_shutdown.as_ref() } else { Some(&inner.updates) };
        let Some(bucket) = bucket else { break };
        let was_draining = draining;
        let give_up = || {
            inner.stopped.load(Ordering::Relaxed)
                || inner.draining.load(Ordering::Relaxed) != was_draining
        };
        if bucket.take_blocking(give_up) {
            break;
        }
        if inner.stopped.load(Ordering::Relaxed) {
            // Stopping now: the points stay in the log for the next start.
            retry_later(inner, job, Duration::ZERO);
            return;
        }
        draining = inner.draining.load(Ordering::Relaxed);
    }
    // A metric new to the store gets its file created straight away (no failed open and no
    // mkdir first: creates are what a first burst of metrics costs); others are opened, and
    // created if missing.
    let fresh_create =
        job.fresh && !inner.creates_disabled && (draining || inner.creates.try_take().is_ok());
    let opened = if fresh_create {
        create(inner, name, &path)
    } else {
        match open_existing(inner, &path) {
            Err(whisper::Error::Io { source, .. })
                if source.kind() == std::io::ErrorKind::NotFound =>
            {
                if inner.creates_disabled {
                    Counters::add(&inner.counters.dropped_creates, 1);
                    drop_points(inner, job, "no file, and MAX_CREATES_PER_MINUTE is 0");
                    return;
                }
                if !draining && let Err(wait) = inner.creates.try_take() {
                    Counters::add(&inner.counters.deferred_creates, 1);
                    retry_later(inner, job, wait);
                    return;
                }
                create(inner, name, &path)
            }
            other => other,
        }
    };
    let mut file = match opened {
        Ok(f) => f,
        Err(e) => {
            handle_error(inner, job, e, &path);
            return;
        }
    };
    let started = Instant::now();
    match file.update_many(&buffers.update, unix_now() as i64) {
        Ok(()) => {
            let c = &inner.counters;
            Counters::add(&c.update_operations, 1);
            Counters::add(&c.committed_points, buffers.update.len() as u64);
            Counters::add(&c.update_micros, started.elapsed().as_micros() as u64);
            inner.cache.complete(name);
            inner.release_segment(job.segment);
            let total =
                inner.total_committed.fetch_add(buffers.update.len() as u64, Ordering::Relaxed)
                    + buffers.update.len() as u64;
            if inner.cache.size() == 0 {
                // For benchmarks: when everything received so far is on disk.
                tracing::debug!(
                    committed_total = total,
                    unix_ms = (unix_now() * 1000.0) as u64,
                    "cache empty"
                );
            }
        }
        Err(e) => handle_error(inner, job, e, &path),
    }
}

/// Opens an existing file for writing.
fn open_existing(inner: &Inner, path: &std::path::Path) -> Result<Whisper, whisper::Error> {
    OpenOptions::new()
        .write(true)
        .noatime(true)
        .header_cache(Some(&inner.headers))
        .lock(inner.whisper.lock)
        .autoflush(inner.whisper.autoflush)
        .fadvise_random(inner.whisper.fadvise_random)
        .open(path)
}

/// Creates the file of `name` from the schema and aggregation rules (and its directory if
/// missing); a file someone else created meanwhile is opened instead.
fn create(inner: &Inner, name: &str, path: &std::path::Path) -> Result<Whisper, whisper::Error> {
    let header = inner.header_for(name).map_err(|e| whisper::Error::Io {
        path: path.to_path_buf(),
        source: std::io::Error::other(e.to_string()),
    })?;
    let retentions: Vec<whisper::Retention> =
        header.archives().iter().map(whisper::ArchiveInfo::retention_def).collect();
    let allocation = if inner.whisper.fallocate {
        Allocation::Fallocate
    } else if inner.whisper.sparse {
        Allocation::Sparse
    } else {
        Allocation::Zeroed
    };
    let mut options = CreateOptions::new();
    options
        .noatime(true)
        .header_cache(Some(&inner.headers))
        .x_files_factor(f64::from(header.x_files_factor()))
        .aggregation_method(header.aggregation_method())
        .allocation(allocation)
        .lock(inner.whisper.lock)
        .autoflush(inner.whisper.autoflush)
        .fadvise_random(inner.whisper.fadvise_random);
    let mut created = options.create(path, &retentions);
    if let Err(whisper::Error::Io { source, .. }) = &created
        && source.kind() == std::io::ErrorKind::NotFound
        && let Some(dir) = path.parent()
    {
        // The directory is missing: make it and try again.
        std::fs::create_dir_all(dir)
            .map_err(|source| whisper::Error::Io { path: dir.to_path_buf(), source })?;
        created = options.create(path, &retentions);
    }
    match created {
        Ok(f) => {
            Counters::add(&inner.counters.creates, 1);
            tracing::debug!(metric = name, path = %path.display(), "created");
            Ok(f)
        }
        // Created by someone else meanwhile, or it existed: write into it.
        Err(whisper::Error::AlreadyExists { .. }) => open_existing(inner, path),
        Err(e) => Err(e),
    }
}

fn handle_error(inner: &Inner, job: &Job<'_>, error: whisper::Error, path: &std::path::Path) {
    Counters::add(&inner.counters.errors, 1);
    match error {
        whisper::Error::Io { .. } => {
            tracing::warn!(path = %path.display(), %error, "write failed; retrying in {RETRY_AFTER:?}");
            retry_later(inner, job, RETRY_AFTER);
        }
        other => drop_points(inner, job, &other.to_string()),
    }
}

/// Drops a metric's points for good (its file is not usable), saying so.
fn drop_points(inner: &Inner, job: &Job<'_>, why: &str) {
    tracing::error!(metric = %job.name, points = job.points, "dropping points: {why}");
    Counters::add(&inner.counters.dropped_points, job.points as u64);
    inner.cache.complete(job.name);
    inner.release_segment(job.segment);
}
