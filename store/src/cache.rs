//! The write-behind cache: points received and not yet in their Whisper file.
//!
//! Sharded by metric name, each shard a `Mutex<HashMap>` held only for a few hundred
//! nanoseconds, so listeners on several threads and the persisters rarely wait for each other.
//! A batch of points takes each shard's lock once; a name is hashed once per operation
//! (foldhash, randomly seeded).
//!
//! A metric's points move through two states: *pending* (received, waiting) and *in flight*
//! (taken by a persister, being written). Both are visible to reads, so a point is never
//! missing from a fetch while it moves from the cache to the file (carbon has that gap: its
//! writer pops points before writing them). Only one persister writes a metric at a time:
//! a metric whose points are in flight is not taken again until that write completes, which
//! keeps a metric's writes in order.
//!
//! A metric's entry stays after its points are written, with its name and its two vectors'
//! memory, so the next point of a steady metric costs no allocation; [`Cache::sweep`] drops
//! entries that stayed empty between two sweeps.
//!
//! Memory: a point costs 12 bytes (timestamp and value, 4-byte aligned), plus the vector's
//! growth slack (vectors grow by half); a metric costs its name (`Arc<str>`) and a 48-byte
//! entry. Each entry also
//! records the oldest write-ahead-log segment holding one of its pending points, which is
//! what lets the log be trimmed once points are on disk.

use std::collections::HashMap;
use std::hash::BuildHasher;
use std::sync::atomic::{AtomicU32, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Instant;

use foldhash::fast::RandomState;

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

/// A metric's points: `points[..inflight]` are being written by a persister, the rest are
/// pending. One vector for both keeps the entry at 48 bytes.
#[derive(Debug, Default)]
struct Entry {
    /// In-flight points first, then pending ones, each part in the order received.
    points: Vec<CachedPoint>,
    /// How many of `points` a persister is writing (0 when none is).
    inflight: u32,
    /// Empty at the last sweep: the next sweep removes it if it still is.
    idle: bool,
    /// A metric new to the store (probably without a file yet): its first write is due at
    /// once, so file creation overlaps ingest instead of waiting for a burst to end.
    fresh: bool,
    /// When the oldest pending point arrived, in [`Cache::now_ms`] time.
    first_ms: u32,
    /// When the newest pending point arrived.
    last_ms: u32,
    /// The log segment of the oldest pending point: the segment must stay until they are
    /// written.
    segment: SegmentId,
}

impl Entry {
    fn pending(&self) -> &[CachedPoint] {
        self.points.get(self.inflight as usize..).unwrap_or_default()
    }

    fn has_pending(&self) -> bool {
        self.points.len() > self.inflight as usize
    }

    /// Appends a point, growing by half (not double) when full: a metric's few points
    /// waste less.
    fn push(&mut self, point: CachedPoint) {
        if self.points.len() == self.points.capacity() {
            let grow = (self.points.len() / 2).max(4);
            self.points.reserve_exact(grow);
        }
        self.points.push(point);
    }
}

/// A metric that can be written now, as [`Cache::snapshot`] sees it.
#[derive(Clone, Debug)]
pub(crate) struct Candidate {
    /// The metric.
    pub(crate) name: Arc<str>,
    /// Its pending points.
    pub(crate) points: usize,
    /// The newest timestamp among them.
    pub(crate) newest: u32,
    /// When the oldest of them arrived ([`Cache::now_ms`] time).
    pub(crate) first_ms: u32,
    /// When the newest of them arrived.
    pub(crate) last_ms: u32,
    /// New to the store and not yet written.
    pub(crate) fresh: bool,
}

/// A vector capacity past which a written-out buffer is freed rather than kept.
const KEEP_CAPACITY: usize = 64;

type Shard = HashMap<Arc<str>, Entry, RandomState>;

/// The cache.
pub(crate) struct Cache {
    shards: Box<[Mutex<Shard>]>,
    hasher: RandomState,
    /// The origin of [`Cache::now_ms`].
    epoch: Instant,
    /// When the last batch arrived ([`Cache::now_ms`] time).
    last_insert_ms: AtomicU32,
    /// Points pending or in flight.
    size: AtomicUsize,
    /// Metrics with pending points.
    metrics: AtomicUsize,
}

/// What [`Cache::take`] hands a persister besides the points.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Taken {
    /// The log segment the points hold.
    pub(crate) segment: SegmentId,
    /// The metric is new to the store: its file probably does not exist yet.
    pub(crate) fresh: bool,
}

/// What [`Cache::insert_batch`] changed.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub(crate) struct Inserted {
    /// Entries whose pending points were empty before: each now holds the batch's segment.
    pub(crate) new_pending: usize,
}

impl Cache {
    /// A cache with `shards` shards (rounded up to a power of two).
    pub(crate) fn new(shards: usize) -> Cache {
        let n = shards.max(1).next_power_of_two();
        let hasher = RandomState::default();
        Cache {
            shards: (0..n).map(|_| Mutex::new(HashMap::with_hasher(hasher.clone()))).collect(),
            hasher,
            epoch: Instant::now(),
            last_insert_ms: AtomicU32::new(0),
            size: AtomicUsize::new(0),
            metrics: AtomicUsize::new(0),
        }
    }

    /// Milliseconds since the cache was made, wrapping after 49 days (compare with
    /// `wrapping_sub`: ages up to 24 days are right).
    pub(crate) fn now_ms(&self) -> u32 {
        self.epoch.elapsed().as_millis() as u32
    }

    /// When the last batch of points arrived ([`Cache::now_ms`] time).
    pub(crate) fn last_insert_ms(&self) -> u32 {
        self.last_insert_ms.load(Ordering::Relaxed)
    }

    fn shard_of(&self, name: &str) -> usize {
        (self.hasher.hash_one(name) as usize) & (self.shards.len() - 1)
    }

    fn lock(&self, shard: usize) -> MutexGuard<'_, Shard> {
        // A poisoned shard only means a thread panicked while holding it; the maps inside
        // are still consistent (every update is a single insert or remove), so go on.
        self.shards[shard].lock().unwrap_or_else(|e| e.into_inner())
    }

    fn shard(&self, name: &str) -> MutexGuard<'_, Shard> {
        self.lock(self.shard_of(name))
    }

    /// Adds points that went to log segment `segment`, in order (the order of a metric's
    /// points is kept). `new_name` hears each name the cache had no entry for (it may not be
    /// in the index yet) and says whether the metric is new to the store altogether.
    pub(crate) fn insert_batch(
        &self,
        points: &[(&str, CachedPoint)],
        segment: SegmentId,
        mut new_name: impl FnMut(&str) -> bool,
    ) -> Inserted {
        let mut inserted = Inserted::default();
        if points.is_empty() {
            return inserted;
        }
        // A counting sort by shard (stable: a metric's points keep their order), then each
        // shard's lock once.
        let n = self.shards.len();
        let shard_of: Vec<u32> =
            points.iter().map(|(name, _)| self.shard_of(name) as u32).collect();
        let mut starts = vec![0usize; n + 1];
        for &s in &shard_of {
            starts[s as usize + 1] += 1;
        }
        for i in 0..n {
            starts[i + 1] += starts[i];
        }
        let now = self.now_ms();
        let mut order = vec![0u32; points.len()];
        let mut next = starts.clone();
        for (i, &s) in shard_of.iter().enumerate() {
            order[next[s as usize]] = i as u32;
            next[s as usize] += 1;
        }
        for s in 0..n {
            let range = &order[starts[s]..starts[s + 1]];
            if range.is_empty() {
                continue;
            }
            let mut shard = self.lock(s);
            for &i in range {
                let (name, point) = points[i as usize];
                let entry = match shard.get_mut(name) {
                    Some(e) => e,
                    None => {
                        let fresh = new_name(name);
                        let entry = shard.entry(Arc::from(name)).or_default();
                        entry.fresh = fresh;
                        entry
                    }
                };
                entry.idle = false;
                entry.last_ms = now;
                if !entry.has_pending() {
                    entry.segment = segment;
                    entry.first_ms = now;
                    inserted.new_pending += 1;
                }
                entry.push(point);
            }
        }
        self.metrics.fetch_add(inserted.new_pending, Ordering::Relaxed);
        self.last_insert_ms.store(now, Ordering::Relaxed);
        self.size.fetch_add(points.len(), Ordering::Relaxed);
        inserted
    }

    /// Takes the pending points of `name` for writing into `out` (cleared first) and returns
    /// the log segment they hold and whether the metric is new to the store; `None` if it has no pending points or a persister already
    /// holds some of its points (a metric is written by one persister at a time).
    pub(crate) fn take(&self, name: &str, out: &mut Vec<CachedPoint>) -> Option<Taken> {
        let mut shard = self.shard(name);
        let entry = shard.get_mut(name)?;
        if entry.inflight > 0 || !entry.has_pending() {
            return None;
        }
        out.clear();
        out.extend_from_slice(&entry.points);
        entry.inflight = u32::try_from(entry.points.len()).unwrap_or(u32::MAX);
        self.metrics.fetch_sub(1, Ordering::Relaxed);
        Some(Taken { segment: entry.segment, fresh: entry.fresh })
    }

    /// The write of `name` is done: its in-flight points leave the cache.
    pub(crate) fn complete(&self, name: &str) {
        let mut shard = self.shard(name);
        if let Some(entry) = shard.get_mut(name) {
            entry.fresh = false;
            let done = entry.inflight as usize;
            entry.inflight = 0;
            self.size.fetch_sub(done, Ordering::Relaxed);
            entry.points.drain(..done);
            if entry.points.is_empty() && entry.points.capacity() > KEEP_CAPACITY {
                entry.points = Vec::new();
            }
        }
    }

    /// The write of `name` did not happen (no create token yet, a disk error): its in-flight
    /// points become pending again, in front of any that arrived meanwhile. The entry then
    /// holds the older of `segment` (the one [`Cache::take`] returned) and its own; returns
    /// the other one, whose reference the caller must release (`None` when no point had
    /// arrived meanwhile: the entry holds `segment`).
    pub(crate) fn requeue(&self, name: &str, segment: SegmentId) -> Option<SegmentId> {
        let mut shard = self.shard(name);
        let entry = shard.get_mut(name)?;
        let had_pending = entry.has_pending();
        entry.inflight = 0;
        if had_pending {
            let released = entry.segment.max(segment);
            entry.segment = entry.segment.min(segment);
            Some(released)
        } else {
            entry.segment = segment;
            // Arrived long ago as far as the write policy is concerned: due at once.
            let due = self.now_ms().wrapping_sub(u32::MAX / 4);
            (entry.first_ms, entry.last_ms) = (due, due);
            self.metrics.fetch_add(1, Ordering::Relaxed);
            None
        }
    }

    /// Every cached point of `name` (in flight first, then pending), in the order received.
    pub(crate) fn points(&self, name: &str) -> Vec<CachedPoint> {
        let shard = self.shard(name);
        let mut out = Vec::new();
        if let Some(entry) = shard.get(name) {
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

    /// Every metric that can be taken now (with pending points and none in flight), for the
    /// write strategies.
    pub(crate) fn snapshot(&self) -> Vec<Candidate> {
        let mut out = Vec::with_capacity(self.metrics());
        for i in 0..self.shards.len() {
            let shard = self.lock(i);
            for (name, entry) in shard.iter() {
                if entry.inflight > 0 || !entry.has_pending() {
                    continue;
                }
                out.push(Candidate {
                    name: Arc::clone(name),
                    points: entry.pending().len(),
                    newest: entry.pending().iter().map(CachedPoint::timestamp).max().unwrap_or(0),
                    first_ms: entry.first_ms,
                    last_ms: entry.last_ms,
                    fresh: entry.fresh,
                });
            }
        }
        out
    }

    /// Drops the entries that were empty at the previous sweep and still are, and marks the
    /// empty ones; returns how many went. Call it every few seconds to a minute: a metric
    /// that stops sending frees its memory after two calls.
    pub(crate) fn sweep(&self) -> usize {
        let mut removed = 0;
        for i in 0..self.shards.len() {
            let mut shard = self.lock(i);
            let before = shard.len();
            shard.retain(|_, e| {
                let empty = e.points.is_empty();
                let keep = !(empty && e.idle);
                e.idle = empty;
                keep
            });
            removed += before - shard.len();
            if shard.capacity() > 64 && shard.len() < shard.capacity() / 4 {
                shard.shrink_to_fit();
            }
        }
        removed
    }

    /// Bytes the cache's points, entries and names use (for the self-metrics and the memory
    /// test): capacities, not lengths, so it counts growth slack too.
    pub(crate) fn allocated_bytes(&self) -> usize {
        let point = std::mem::size_of::<CachedPoint>();
        let slot = std::mem::size_of::<(Arc<str>, Entry)>() + 1;
        // An `Arc<str>` allocation: two counts, then the bytes, rounded up to 8.
        let name = |n: &Arc<str>| (2 * std::mem::size_of::<usize>() + n.len()).next_multiple_of(8);
        let mut bytes = 0;
        for i in 0..self.shards.len() {
            let shard = self.lock(i);
            bytes += shard.capacity() * slot;
            for (n, e) in shard.iter() {
                bytes += name(n) + e.points.capacity() * point;
            }
        }
        bytes
    }
}

/// Reduces points to one per timestamp, the last received winning, in the order each
/// timestamp first appeared: what carbon's cache (a dict per metric) holds.
pub(crate) fn dedup_last_wins(points: &[CachedPoint]) -> Vec<CachedPoint> {
    let mut out = Vec::with_capacity(points.len());
    dedup_last_wins_into(points, &mut out);
    out
}

/// [`dedup_last_wins`] into `out` (cleared first). Strictly increasing timestamps, the usual
/// case, are copied as they are.
pub(crate) fn dedup_last_wins_into(points: &[CachedPoint], out: &mut Vec<CachedPoint>) {
    out.clear();
    if points.windows(2).all(|w| w[0].timestamp < w[1].timestamp) {
        out.extend_from_slice(points);
        return;
    }
    let mut index: HashMap<u32, usize, RandomState> =
        HashMap::with_capacity_and_hasher(points.len(), RandomState::default());
    for p in points {
        match index.get(&p.timestamp) {
            Some(&i) => out[i] = *p,
            None => {
                index.insert(p.timestamp, out.len());
                out.push(*p);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p(t: u32, v: f64) -> CachedPoint {
        CachedPoint::new(t, v)
    }

    fn insert(c: &Cache, name: &str, points: &[CachedPoint], segment: SegmentId) -> Inserted {
        let batch: Vec<(&str, CachedPoint)> = points.iter().map(|p| (name, *p)).collect();
        c.insert_batch(&batch, segment, |_| false)
    }

    #[test]
    fn point_is_twelve_bytes_and_round_trips() {
        assert_eq!(std::mem::size_of::<CachedPoint>(), 12);
        for v in [0.0, -0.0, 1.5, f64::INFINITY, f64::MIN_POSITIVE, -1e300] {
            assert_eq!(p(7, v).value().to_bits(), v.to_bits());
        }
    }

    #[test]
    fn entry_is_small() {
        assert!(std::mem::size_of::<(Arc<str>, Entry)>() <= 64);
    }

    #[test]
    fn points_stay_visible_while_in_flight() {
        let c = Cache::new(4);
        assert_eq!(insert(&c, "a", &[p(1, 1.0), p(2, 2.0)], 3).new_pending, 1);
        let mut buf = Vec::new();
        assert_eq!(c.take("a", &mut buf).map(|t| t.segment), Some(3));
        assert_eq!(buf.len(), 2);
        assert_eq!(c.points("a").len(), 2, "in flight points are still readable");
        // New points arrive during the write; the metric cannot be taken twice.
        assert_eq!(insert(&c, "a", &[p(3, 3.0)], 4).new_pending, 1);
        assert!(c.take("a", &mut buf).is_none());
        assert_eq!(c.points("a").iter().map(|x| x.timestamp()).collect::<Vec<_>>(), [1, 2, 3]);
        c.complete("a");
        assert_eq!(c.size(), 1);
        assert_eq!(c.take("a", &mut buf).map(|t| t.segment), Some(4));
        assert_eq!(buf, [p(3, 3.0)]);
    }

    #[test]
    fn requeued_points_go_before_newer_ones_and_keep_the_older_segment() {
        let c = Cache::new(1);
        insert(&c, "a", &[p(1, 1.0)], 1);
        let mut buf = Vec::new();
        let seg = c.take("a", &mut buf).unwrap().segment;
        insert(&c, "a", &[p(2, 2.0)], 2);
        let released = c.requeue("a", seg);
        assert_eq!(released, Some(2), "the entry holds segment 1 now; 2 is free");
        assert_eq!(c.take("a", &mut buf).map(|t| t.segment), Some(1));
        assert_eq!(buf.iter().map(|x| x.timestamp()).collect::<Vec<_>>(), [1, 2]);
        assert_eq!(c.metrics(), 0);
        assert_eq!(c.requeue("a", 1), None);
        assert_eq!(c.metrics(), 1);
    }

    #[test]
    fn a_batch_keeps_each_metrics_order_and_reports_new_names() {
        let c = Cache::new(8);
        let names: Vec<String> = (0..50).map(|i| format!("m{i}")).collect();
        let mut batch = Vec::new();
        for t in 0..4u32 {
            for n in &names {
                batch.push((n.as_str(), p(t, f64::from(t))));
            }
        }
        let mut new = Vec::new();
        let r = c.insert_batch(&batch, 9, |n| {
            new.push(n.to_string());
            true
        });
        assert_eq!(r.new_pending, 50);
        new.sort();
        let mut sorted = names.clone();
        sorted.sort();
        assert_eq!(new, sorted, "each new name once");
        for n in &names {
            assert_eq!(c.points(n).iter().map(|x| x.timestamp()).collect::<Vec<_>>(), [0, 1, 2, 3]);
        }
        assert_eq!((c.size(), c.metrics()), (200, 50));
        let r = c.insert_batch(&batch[..1], 10, |_| panic!("known name"));
        assert_eq!(r.new_pending, 0, "m0 already has pending points");
    }

    #[test]
    fn written_entries_are_kept_until_two_sweeps_find_them_empty() {
        let c = Cache::new(2);
        insert(&c, "a", &[p(1, 1.0)], 1);
        let mut buf = Vec::new();
        c.take("a", &mut buf).unwrap();
        c.complete("a");
        assert_eq!(c.size(), 0);
        let r = c.insert_batch(&[("a", p(2, 2.0))], 2, |_| panic!("the entry was kept"));
        assert_eq!(r.new_pending, 1);
        c.take("a", &mut buf).unwrap();
        c.complete("a");
        assert_eq!(c.sweep(), 0, "marked");
        assert_eq!(c.sweep(), 1, "removed");
        let mut new = 0;
        c.insert_batch(&[("a", p(3, 3.0))], 3, |_| {
            new += 1;
            false
        });
        assert_eq!(new, 1);
    }

    #[test]
    fn dedup_keeps_the_last_value_in_first_seen_order() {
        let d = dedup_last_wins(&[p(5, 1.0), p(3, 2.0), p(5, 9.0)]);
        assert_eq!(d, [p(5, 9.0), p(3, 2.0)]);
        assert_eq!(dedup_last_wins(&[p(1, 1.0), p(2, 2.0)]), [p(1, 1.0), p(2, 2.0)]);
    }
}
