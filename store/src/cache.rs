//! The write-behind cache: points received and not yet in their Whisper file.
//!
//! Sharded by metric name, each shard a `Mutex<HashMap>` held only for a few hundred
//! nanoseconds, so listeners on several threads and the persisters rarely wait for each other.
//!
//! A metric's points move through two states: *pending* (received, waiting) and *in flight*
//! (taken by a persister, being written). Both are visible to reads, so a point is never
//! missing from a fetch while it moves from the cache to the file (carbon has that gap: its
//! writer pops points before writing them). Only one persister writes a metric at a time:
//! a metric whose points are in flight is not taken again until that write completes, which
//! keeps a metric's writes in order.
//!
//! Memory: a point costs 12 bytes (timestamp and value, 4-byte aligned), plus the vector's
//! growth slack; a metric costs its name (shared `Arc<str>`) and a 32-byte entry. Each entry
//! also records the oldest write-ahead-log segment holding one of its pending points, which
//! is what lets the log be trimmed once points are on disk.

use std::collections::HashMap;
use std::collections::hash_map::RandomState;
use std::hash::BuildHasher;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};

/// A write-ahead-log segment number (the store maps the log's own ids onto these).
pub(crate) type SegmentId = u64;

/// A cached point: timestamp and value in 12 bytes, 4-byte aligned.
#[derive(Clone, Copy, Debug, PartialEq)]
#[repr(C)]
pub(crate) struct CachedPoint {
    timestamp: u32,
    value: [u32; 2],
}

impl CachedPoint {
    pub(crate) fn new(timestamp: u32, value: f64) -> CachedPoint {
        let bits = value.to_bits();
        CachedPoint { timestamp, value: [(bits >> 32) as u32, bits as u32] }
    }

    pub(crate) fn timestamp(&self) -> u32 {
        self.timestamp
    }

    pub(crate) fn value(&self) -> f64 {
        f64::from_bits((u64::from(self.value[0]) << 32) | u64::from(self.value[1]))
    }
}

/// A metric's pending points.
#[derive(Debug)]
struct Entry {
    points: Vec<CachedPoint>,
    /// The log segment of the oldest pending point: the segment must stay until they are
    /// written.
    segment: SegmentId,
}

/// Points a persister took for writing.
#[derive(Debug)]
pub(crate) struct Taken {
    /// The metric.
    pub(crate) name: Arc<str>,
    /// Its points, in the order received.
    pub(crate) points: Vec<CachedPoint>,
    /// The oldest log segment holding one of them.
    pub(crate) segment: SegmentId,
}

#[derive(Default)]
struct Shard {
    pending: HashMap<Arc<str>, Entry>,
    /// Points being written, by metric (a small map: only the metrics persisters hold now).
    inflight: HashMap<Arc<str>, Vec<CachedPoint>>,
}

/// What an insert changed.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub(crate) struct Inserted {
    /// The metric had no pending points before: its entry now holds `segment`.
    pub(crate) new_entry: bool,
}

/// The cache.
pub(crate) struct Cache {
    shards: Box<[Mutex<Shard>]>,
    hasher: RandomState,
    /// Points pending or in flight.
    size: AtomicUsize,
    /// Metrics with pending points.
    metrics: AtomicUsize,
}

impl Cache {
    /// A cache with `shards` shards (rounded up to a power of two).
    pub(crate) fn new(shards: usize) -> Cache {
        let n = shards.max(1).next_power_of_two();
        Cache {
            shards: (0..n).map(|_| Mutex::new(Shard::default())).collect(),
            hasher: RandomState::new(),
            size: AtomicUsize::new(0),
            metrics: AtomicUsize::new(0),
        }
    }

    fn shard(&self, name: &str) -> MutexGuard<'_, Shard> {
        let i = (self.hasher.hash_one(name) as usize) & (self.shards.len() - 1);
        // A poisoned shard only means a thread panicked while holding it; the maps inside
        // are still consistent (every update is a single insert or remove), so go on.
        self.shards[i].lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Adds points of `name` that went to log segment `segment`. Allocates the name only
    /// when the metric has no pending points yet.
    pub(crate) fn insert(
        &self,
        name: &str,
        points: &[CachedPoint],
        segment: SegmentId,
    ) -> Inserted {
        if points.is_empty() {
            return Inserted::default();
        }
        let mut shard = self.shard(name);
        let inserted = match shard.pending.get_mut(name) {
            Some(entry) => {
                entry.points.extend_from_slice(points);
                Inserted { new_entry: false }
            }
            None => {
                let name: Arc<str> = match shard.inflight.get_key_value(name) {
                    Some((k, _)) => Arc::clone(k),
                    None => Arc::from(name),
                };
                shard.pending.insert(name, Entry { points: points.to_vec(), segment });
                self.metrics.fetch_add(1, Ordering::Relaxed);
                Inserted { new_entry: true }
            }
        };
        self.size.fetch_add(points.len(), Ordering::Relaxed);
        inserted
    }

    /// Takes the pending points of `name` for writing, unless a persister already holds some
    /// of its points (then `None`: a metric is written by one persister at a time).
    pub(crate) fn take(&self, name: &str) -> Option<Taken> {
        let mut shard = self.shard(name);
        if shard.inflight.contains_key(name) {
            return None;
        }
        let (name, entry) = shard.pending.remove_entry(name)?;
        self.metrics.fetch_sub(1, Ordering::Relaxed);
        shard.inflight.insert(Arc::clone(&name), entry.points.clone());
        Some(Taken { name, points: entry.points, segment: entry.segment })
    }

    /// The write of `name` is done: its in-flight points leave the cache.
    pub(crate) fn complete(&self, name: &str) {
        let mut shard = self.shard(name);
        if let Some(points) = shard.inflight.remove(name) {
            self.size.fetch_sub(points.len(), Ordering::Relaxed);
        }
    }

    /// The write of `name` did not happen (no create token yet, a disk error): its points go
    /// back in front of any that arrived meanwhile. The metric's entry then holds the older of
    /// the two log segments; returns the other one, whose reference the caller must release
    /// (`None` when no entry had arrived meanwhile: the entry holds `taken.segment`).
    pub(crate) fn requeue(&self, taken: Taken) -> Option<SegmentId> {
        let mut shard = self.shard(&taken.name);
        shard.inflight.remove(&*taken.name);
        match shard.pending.get_mut(&*taken.name) {
            Some(entry) => {
                let newer = std::mem::replace(&mut entry.points, taken.points);
                entry.points.extend_from_slice(&newer);
                let released = entry.segment.max(taken.segment);
                entry.segment = entry.segment.min(taken.segment);
                Some(released)
            }
            None => {
                shard
                    .pending
                    .insert(taken.name, Entry { points: taken.points, segment: taken.segment });
                self.metrics.fetch_add(1, Ordering::Relaxed);
                None
            }
        }
    }

    /// Every cached point of `name` (in flight first, then pending), in the order received.
    pub(crate) fn points(&self, name: &str) -> Vec<CachedPoint> {
        let shard = self.shard(name);
        let mut out = Vec::new();
        if let Some(inflight) = shard.inflight.get(name) {
            out.extend_from_slice(inflight);
        }
        if let Some(entry) = shard.pending.get(name) {
            out.extend_from_slice(&entry.points);
        }
        out
    }

    /// Points cached (pending and in flight).
    pub(crate) fn size(&self) -> usize {
        self.size.load(Ordering::Relaxed)
    }

    /// Metrics with pending points.
    pub(crate) fn metrics(&self) -> usize {
        self.metrics.load(Ordering::Relaxed)
    }

    /// `(name, pending points, oldest timestamp)` of every metric that can be taken now (with
    /// pending points and none in flight), for the write strategies.
    pub(crate) fn snapshot(&self) -> Vec<(Arc<str>, usize, u32)> {
        let mut out = Vec::with_capacity(self.metrics());
        for shard in self.shards.iter() {
            let shard = shard.lock().unwrap_or_else(|e| e.into_inner());
            for (name, entry) in &shard.pending {
                if shard.inflight.contains_key(name) {
                    continue;
                }
                let newest = entry.points.iter().map(CachedPoint::timestamp).max().unwrap_or(0);
                out.push((Arc::clone(name), entry.points.len(), newest));
            }
        }
        out
    }

    /// Bytes the cache's points and entries use (for the self-metrics and the memory test):
    /// capacities, not lengths, so it counts growth slack too. Names are shared with the
    /// index and not counted here.
    pub(crate) fn allocated_bytes(&self) -> usize {
        let point = std::mem::size_of::<CachedPoint>();
        let slot = std::mem::size_of::<(Arc<str>, Entry)>() + 1;
        let inflight_slot = std::mem::size_of::<(Arc<str>, Vec<CachedPoint>)>() + 1;
        // An `Arc<str>` allocation: two counts, then the bytes, rounded up to 8.
        let name = |n: &Arc<str>| (2 * std::mem::size_of::<usize>() + n.len()).next_multiple_of(8);
        let mut bytes = 0;
        for shard in self.shards.iter() {
            let shard = shard.lock().unwrap_or_else(|e| e.into_inner());
            bytes += shard.pending.capacity() * slot + shard.inflight.capacity() * inflight_slot;
            for (n, e) in &shard.pending {
                bytes += name(n) + e.points.capacity() * point;
            }
            for (n, p) in &shard.inflight {
                bytes += name(n) + p.capacity() * point;
            }
        }
        bytes
    }
}

/// Reduces points to one per timestamp, the last received winning, in the order each
/// timestamp first appeared: what carbon's cache (a dict per metric) holds.
pub(crate) fn dedup_last_wins(points: &[CachedPoint]) -> Vec<CachedPoint> {
    let mut index: HashMap<u32, usize> = HashMap::with_capacity(points.len());
    let mut out: Vec<CachedPoint> = Vec::with_capacity(points.len());
    for p in points {
        match index.get(&p.timestamp) {
            Some(&i) => out[i] = *p,
            None => {
                index.insert(p.timestamp, out.len());
                out.push(*p);
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p(t: u32, v: f64) -> CachedPoint {
        CachedPoint::new(t, v)
    }

    #[test]
    fn point_is_twelve_bytes_and_round_trips() {
        assert_eq!(std::mem::size_of::<CachedPoint>(), 12);
        for v in [0.0, -0.0, 1.5, f64::INFINITY, f64::MIN_POSITIVE, -1e300] {
            assert_eq!(p(7, v).value().to_bits(), v.to_bits());
        }
    }

    #[test]
    fn points_stay_visible_while_in_flight() {
        let c = Cache::new(4);
        assert!(c.insert("a", &[p(1, 1.0), p(2, 2.0)], 3).new_entry);
        let taken = c.take("a").unwrap();
        assert_eq!(taken.points.len(), 2);
        assert_eq!(c.points("a").len(), 2, "in flight points are still readable");
        // New points arrive during the write; the metric cannot be taken twice.
        assert!(c.insert("a", &[p(3, 3.0)], 4).new_entry);
        assert!(c.take("a").is_none());
        assert_eq!(c.points("a").iter().map(|x| x.timestamp()).collect::<Vec<_>>(), [1, 2, 3]);
        c.complete("a");
        assert_eq!(c.size(), 1);
        let again = c.take("a").unwrap();
        assert_eq!(again.segment, 4);
    }

    #[test]
    fn requeued_points_go_before_newer_ones_and_keep_the_older_segment() {
        let c = Cache::new(1);
        c.insert("a", &[p(1, 1.0)], 1);
        let taken = c.take("a").unwrap();
        c.insert("a", &[p(2, 2.0)], 2);
        let released = c.requeue(taken);
        assert_eq!(released, Some(2), "the entry holds segment 1 now; 2 is free");
        let t = c.take("a").unwrap();
        assert_eq!(t.segment, 1);
        assert_eq!(t.points.iter().map(|x| x.timestamp()).collect::<Vec<_>>(), [1, 2]);
    }

    #[test]
    fn dedup_keeps_the_last_value_in_first_seen_order() {
        let d = dedup_last_wins(&[p(5, 1.0), p(3, 2.0), p(5, 9.0)]);
        assert_eq!(d, [p(5, 9.0), p(3, 2.0)]);
    }
}
