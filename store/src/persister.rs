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
use std::sync::atomic::Ordering;
use std::sync::{Arc, PoisonError};
use std::time::{Duration, Instant};

use whisper::{Allocation, CreateOptions, OpenOptions, Whisper};

use crate::cache::{Taken, dedup_last_wins};
use crate::config::CacheWriteStrategy;
use crate::selfmetrics::Counters;
use crate::store::{Inner, unix_now};

/// How long an idle persister sleeps before looking again (it is woken when points arrive).
const IDLE_WAIT: Duration = Duration::from_millis(100);
/// How many of the biggest metrics `max` queues per look at the cache.
const MAX_STRATEGY_BATCH: usize = 64;
/// How long a write that failed for an I/O reason waits before its retry.
const RETRY_AFTER: Duration = Duration::from_secs(1);

/// The metrics waiting to be written, in the strategy's order, shared by the persisters.
#[derive(Debug, Default)]
pub(crate) struct Queue {
    order: VecDeque<Arc<str>>,
    /// Metrics not to take before an instant: no create token yet, or a failed write.
    later: HashMap<Arc<str>, Instant>,
}

/// A persister thread's loop.
pub(crate) fn run(inner: &Arc<Inner>) {
    while !inner.stopped.load(Ordering::Relaxed) {
        match next_metric(inner) {
            Some(name) => {
                if let Some(taken) = inner.cache.take(&name) {
                    write(inner, taken);
                }
            }
            None => idle(inner),
        }
    }
}

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

/// The next metric to write, refilling the queue from the cache when it is empty.
fn next_metric(inner: &Inner) -> Option<Arc<str>> {
    let mut queue = inner.queue.lock().unwrap_or_else(PoisonError::into_inner);
    if let Some(name) = queue.order.pop_front() {
        return Some(name);
    }
    let now = Instant::now();
    let draining = inner.draining.load(Ordering::Relaxed);
    let lag = inner.min_timestamp_lag;
    let newest_allowed = (unix_now() as u32).saturating_sub(lag);
    let mut snapshot: Vec<(Arc<str>, usize, u32)> = inner
        .cache
        .snapshot()
        .into_iter()
        .filter(|(name, _, _)| draining || queue.later.get(name).is_none_or(|&t| t <= now))
        .collect();
    queue.later.retain(|_, t| *t > now);
    if snapshot.is_empty() {
        return None;
    }
    match inner.strategy {
        CacheWriteStrategy::Sorted => snapshot.sort_by_key(|b| std::cmp::Reverse(b.1)),
        CacheWriteStrategy::Max => {
            snapshot.sort_by_key(|b| std::cmp::Reverse(b.1));
            snapshot.truncate(MAX_STRATEGY_BATCH);
        }
        CacheWriteStrategy::TimeSorted => {
            if lag > 0 && !draining {
                snapshot.retain(|(_, _, newest)| *newest <= newest_allowed);
            }
            snapshot.sort_by_key(|&(_, _, newest)| newest);
        }
        _ => {}
    }
    queue.order.extend(snapshot.into_iter().map(|(name, _, _)| name));
    queue.order.pop_front()
}

/// Puts a metric's points back and has it retried no sooner than `after`.
fn retry_later(inner: &Inner, taken: Taken, after: Duration) {
    let name = Arc::clone(&taken.name);
    if let Some(released) = inner.cache.requeue(taken) {
        inner.release_segment(released);
    }
    let mut queue = inner.queue.lock().unwrap_or_else(PoisonError::into_inner);
    queue.later.insert(name, Instant::now() + after);
}

/// Writes one metric's taken points.
fn write(inner: &Inner, taken: Taken) {
    let name = Arc::clone(&taken.name);
    let points: Vec<(i64, f64)> = dedup_last_wins(&taken.points)
        .iter()
        .map(|p| (i64::from(p.timestamp()), p.value()))
        .collect();
    let path = match inner.path_of(&name) {
        Ok(p) => p,
        Err(e) => {
            // Names are checked at ingest; this is a name the store cannot map at all.
            drop_points(inner, taken, &e.to_string());
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
            retry_later(inner, taken, Duration::ZERO);
            return;
        }
        draining = inner.draining.load(Ordering::Relaxed);
    }
    let mut file = match OpenOptions::new()
        .write(true)
        .lock(inner.whisper.lock)
        .autoflush(inner.whisper.autoflush)
        .fadvise_random(inner.whisper.fadvise_random)
        .open(&path)
    {
        Ok(f) => f,
        Err(whisper::Error::Io { source, .. }) if source.kind() == std::io::ErrorKind::NotFound => {
            if inner.creates_disabled {
                Counters::add(&inner.counters.dropped_creates, 1);
                drop_points(inner, taken, "no file, and MAX_CREATES_PER_MINUTE is 0");
                return;
            }
            if !draining && let Err(wait) = inner.creates.try_take() {
                Counters::add(&inner.counters.deferred_creates, 1);
                retry_later(inner, taken, wait);
                return;
            }
            match create(inner, &name, &path) {
                Ok(f) => f,
                Err(e) => {
                    handle_error(inner, taken, e, &path);
                    return;
                }
            }
        }
        Err(e) => {
            handle_error(inner, taken, e, &path);
            return;
        }
    };
    let started = Instant::now();
    match file.update_many(&points, unix_now() as i64) {
        Ok(()) => {
            let c = &inner.counters;
            Counters::add(&c.update_operations, 1);
            Counters::add(&c.committed_points, points.len() as u64);
            Counters::add(&c.update_micros, started.elapsed().as_micros() as u64);
            inner.cache.complete(&name);
            inner.release_segment(taken.segment);
        }
        Err(e) => handle_error(inner, taken, e, &path),
    }
}

/// Creates the file of `name` from the schema and aggregation rules.
fn create(inner: &Inner, name: &str, path: &std::path::Path) -> Result<Whisper, whisper::Error> {
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir)
            .map_err(|source| whisper::Error::Io { path: dir.to_path_buf(), source })?;
    }
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
    let created = CreateOptions::new()
        .x_files_factor(f64::from(header.x_files_factor()))
        .aggregation_method(header.aggregation_method())
        .allocation(allocation)
        .lock(inner.whisper.lock)
        .autoflush(inner.whisper.autoflush)
        .fadvise_random(inner.whisper.fadvise_random)
        .create(path, &retentions);
    match created {
        Ok(f) => {
            Counters::add(&inner.counters.creates, 1);
            tracing::debug!(metric = name, path = %path.display(), "created");
            Ok(f)
        }
        // Created by someone else meanwhile (another tool): write into it.
        Err(whisper::Error::AlreadyExists { .. }) => OpenOptions::new().write(true).open(path),
        Err(e) => Err(e),
    }
}

fn handle_error(inner: &Inner, taken: Taken, error: whisper::Error, path: &std::path::Path) {
    Counters::add(&inner.counters.errors, 1);
    match error {
        whisper::Error::Io { .. } => {
            tracing::warn!(path = %path.display(), %error, "write failed; retrying in {RETRY_AFTER:?}");
            retry_later(inner, taken, RETRY_AFTER);
        }
        other => drop_points(inner, taken, &other.to_string()),
    }
}

/// Drops a metric's points for good (its file is not usable), saying so.
fn drop_points(inner: &Inner, taken: Taken, why: &str) {
    tracing::error!(metric = %taken.name, points = taken.points.len(), "dropping points: {why}");
    Counters::add(&inner.counters.dropped_points, taken.points.len() as u64);
    inner.cache.complete(&taken.name);
    inner.release_segment(taken.segment);
}
