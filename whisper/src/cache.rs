//! [`HeaderCache`]: what opening a file reads first (its header, and the timestamp in slot 0 of
//! each archive), shared between opens of the same files.
//!
//! A writer such as carbon's opens a file, writes a few points and closes it, for every metric
//! in turn. Each open reads the header, and each write reads the slot-0 timestamp ("base") of
//! every archive it touches to place its points. Both rarely change, so the cache keeps them
//! across opens, keyed by the file's identity, and a handle opened with it skips those reads.
//!
//! # Why a cached header and cached bases are safe to use
//!
//! - **Identity.** Entries are keyed by `(st_dev, st_ino, birth time)` from one `fstat` of the
//!   open descriptor, and used only when the file's size is still the one cached. A file
//!   replaced by a rename (whisper-resize, rsync) is another inode. An inode number freed and
//!   reused by a new file (a deleted metric, then a created one, often of the same size) has a
//!   new birth time, which is why the birth time is part of the key; on a filesystem that does
//!   not report one (`statx` without `STATX_BTIME`) files are not cached at all.
//! - **The header** of a whisper file changes in place only through
//!   `setAggregationMethod`/`setXFilesFactor`, which rewrite the aggregation method and
//!   xFilesFactor and never the archive list. A handle uses a header for at most the cache's
//!   TTL after it was last read from disk (or written by a handle of this cache), so such a
//!   change made by another process is picked up within the TTL. One made through a handle
//!   of the cache stores the new header, then moves the cache's *generation* on; a handle
//!   trusts its header only while the generation is the one it saw before obtaining it, so
//!   every handle of the cache, kept-open ones included, reads the header again at its next
//!   operation, and a handle that read the old header never stores it over the new one.
//! - **The bases.** A base of 0 means the archive was never written; it is never cached, and a
//!   handle reads it again at every operation, since another writer may write the archive
//!   first. Once non-zero, whisper only ever writes slot 0 of that archive with an interval
//!   `I` whose slot is 0, that is with `(I - base) div step ≡ 0 (mod points)`, so the new base
//!   differs from the old by a whole number of laps (`step * points` seconds, up to the old
//!   base's offset within its step when it is not aligned). The slot of any interval `J`
//!   (aligned, like every interval whisper computes) is `((J - base) div step) mod points`
//!   (`slot_of` in `handle.rs`, whisper.py's `(J - base) // step * 12 % size`), and adding
//!   laps to the base does not change it: `J - base' = (J - base) - k * step * points`. So an
//!   old non-zero base places points exactly where the current one does. The same argument
//!   already lets a kept-open [`Whisper`](crate::Whisper) keep its bases between operations.
//!
//!   The one exception is `I = 0`: a point within one step of 1970-01-01 written into slot 0
//!   makes the base 0, and whisper then takes the archive for empty. A handle of the cache
//!   that does so clears the cached base and moves the generation on (every handle of the
//!   cache drops its bases); another process doing it is not seen, as by a kept-open handle
//!   without a cache. Writing such a point needs a `now` within the file's retention of 1970.
//!
//! What the cache cannot see: a file whose *content* is replaced in place by another program
//! (`cp` over it, a restore with `rsync --inplace`) while keeping its size. Within the TTL a
//! handle may then place points with the old file's bases. Replace live whisper files by
//! renaming a new file over them (as whisper-resize does), or [`clear`](HeaderCache::clear)
//! the cache.
//!
//! # Layout
//!
//! The cache is set-associative with two choices: an entry's hash picks a shard (its own mutex)
//! and two sets of [`WAYS`] slots within it; a lookup compares the 4-byte fingerprints of both
//! sets (a cache line each), then the key. A new entry goes to the emptier set; when both are
//! full, it replaces an expired entry if there is one, else a pseudo-random one (random
//! replacement does not thrash when a set is cycled through by one more file than it holds, as
//! FIFO would). With two choices, full sets are rare below ~90% occupancy: simulated, 0.02% of
//! 20,000 files found both sets full at a capacity of 1.1x the files, none at 1.25x (one choice
//! of 8 slots: 0.8% at 2x). The slots are allocated when a shard is first written, so memory
//! is bounded by the capacity.

use std::fs::Metadata;
use std::os::unix::fs::MetadataExt;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Mutex, MutexGuard};
use std::time::{Duration, Instant, UNIX_EPOCH};

use crate::aggregation::AggregationMethod;
use crate::format::{ArchiveInfo, Header};

/// How long a header is used after it was last read, unless set otherwise.
pub const DEFAULT_HEADER_TTL: Duration = Duration::from_secs(60);

/// Slots per set.
const WAYS: usize = 16;

/// Most shards (each a mutex over its sets).
const MAX_SHARDS: usize = 64;

/// A file's identity: device, inode and birth time.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub(crate) struct FileId {
    dev: u64,
    ino: u64,
    /// Birth time: seconds since the epoch in the high 34 bits, nanoseconds in the low 30.
    birth: u64,
}

impl FileId {
    /// The identity of the file `meta` describes; `None` when the filesystem does not report a
    /// birth time (or one before 1970 or after 2514), so inode reuse could not be told apart.
    pub(crate) fn of(meta: &Metadata) -> Option<FileId> {
        let birth = meta.created().ok()?.duration_since(UNIX_EPOCH).ok()?;
        let secs = birth.as_secs();
        if secs >= 1 << 34 {
            return None;
        }
        let birth = (secs << 30) | u64::from(birth.subsec_nanos());
        Some(FileId { dev: meta.dev(), ino: meta.ino(), birth })
    }

    #[cfg(test)]
    pub(crate) fn from_parts(dev: u64, ino: u64, birth: u64) -> FileId {
        FileId { dev, ino, birth }
    }

    /// A 64-bit hash of the three fields.
    fn hash(&self) -> u64 {
        mix(self.ino ^ self.dev.rotate_left(32) ^ self.birth.wrapping_mul(0x9E37_79B9_7F4A_7C15))
    }
}

/// splitmix64's finaliser: every input bit moves about half the output bits.
fn mix(mut h: u64) -> u64 {
    h = (h ^ (h >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    h = (h ^ (h >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    h ^ (h >> 31)
}

/// What the cache knows of one file.
#[derive(Debug)]
struct Entry {
    /// Per archive, in header order: offset, seconds per point, points, and the slot-0
    /// timestamp (0 when not known).
    archives: Box<[[u32; 4]]>,
    /// The file's size when the header was read.
    size: u64,
    /// When the header was known to be the one on disk (the cache's clock, in milliseconds).
    stamp: u64,
    max_retention: u32,
    x_files_factor: f32,
    method: AggregationMethod,
}

impl Entry {
    fn new(header: &Header, bases: &[(u32, u32)], size: u64, stamp: u64) -> Entry {
        let archives = header
            .archives()
            .iter()
            .map(|a| [a.offset(), a.seconds_per_point(), a.points(), base_at(bases, a.offset())])
            .collect();
        Entry {
            archives,
            size,
            stamp,
            max_retention: header.max_retention(),
            x_files_factor: header.x_files_factor(),
            method: header.aggregation_method(),
        }
    }

    fn header(&self) -> Header {
        let archives =
            self.archives.iter().map(|&[o, s, p, _]| ArchiveInfo::new(o, s, p)).collect();
        Header::from_parts(self.method, self.max_retention, self.x_files_factor, archives)
    }

    /// Whether `header` lists the same archives.
    fn same_layout(&self, header: &Header) -> bool {
        self.archives.len() == header.archives().len()
            && self.archives.iter().zip(header.archives()).all(|(&[o, s, p, _], a)| {
                o == a.offset() && s == a.seconds_per_point() && p == a.points()
            })
    }

    /// Records `bases` (`(archive offset, base)`, as last read or written): a 0 there (an
    /// archive found empty, or whose slot 0 was just written with interval 0) makes the base
    /// unknown again; archives not listed keep theirs.
    fn learn(&mut self, bases: &[(u32, u32)]) {
        for a in self.archives.iter_mut() {
            if let Some(&(_, base)) = bases.iter().find(|&&(o, _)| o == a[0]) {
                a[3] = base;
            }
        }
    }
}

/// The base recorded for the archive at `offset`, or 0.
fn base_at(bases: &[(u32, u32)], offset: u32) -> u32 {
    bases.iter().find(|&&(o, _)| o == offset).map_or(0, |&(_, b)| b)
}

/// One slot: a key and, when occupied, its entry.
#[derive(Debug, Default)]
struct Slot {
    id: FileId,
    entry: Option<Entry>,
}

/// A shard: its sets, one after the other, and its counters.
#[derive(Debug, Default)]
struct Shard {
    /// Per slot: a fingerprint of the key (never 0), or 0 when the slot is empty. Empty until
    /// the shard is first written.
    fingerprints: Vec<u32>,
    /// Per slot: key and entry, in step with `fingerprints`.
    slots: Vec<Slot>,
    /// State of the generator that picks a victim in a full set (xorshift).
    random: u64,
    stats: HeaderCacheStats,
}

impl Shard {
    /// The slot holding `id` in either of its sets (given by their first slots), if any.
    fn find(&self, sets: [usize; 2], fingerprint: u32, id: &FileId) -> Option<usize> {
        sets.into_iter().find_map(|set| {
            let fps = self.fingerprints.get(set..set + WAYS)?;
            fps.iter().enumerate().find_map(|(way, &fp)| {
                let i = set + way;
                (fp == fingerprint && self.slots.get(i).is_some_and(|s| s.id == *id)).then_some(i)
            })
        })
    }

    /// The slot to fill with a new key whose sets start at `sets`: an empty one in the
    /// emptier set, else an expired one, else one of the two sets' at random (then counted as
    /// an eviction).
    fn victim(&mut self, sets: [usize; 2], now: u64, ttl: u64) -> usize {
        let empty =
            |set: usize| self.fingerprints[set..set + WAYS].iter().filter(|&&fp| fp == 0).count();
        let set = if empty(sets[1]) > empty(sets[0]) { sets[1] } else { sets[0] };
        if let Some(way) = self.fingerprints[set..set + WAYS].iter().position(|&fp| fp == 0) {
            return set + way;
        }
        for set in sets {
            let expired = self.slots[set..set + WAYS]
                .iter()
                .position(|s| s.entry.as_ref().is_none_or(|e| now.saturating_sub(e.stamp) >= ttl));
            if let Some(way) = expired {
                return set + way;
            }
        }
        self.stats.evictions += 1;
        let mut x = self.random | 1;
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        self.random = x;
        sets[(x & 1) as usize] + ((x >> 1) % WAYS as u64) as usize
    }
}

/// A shard on its own cache line, so that threads working on different shards do not slow
/// each other down.
#[derive(Debug, Default)]
#[repr(align(64))]
struct PaddedShard(Mutex<Shard>);

/// A shared cache of whisper headers and archive bases, so that opening the same files again
/// and again (a writer flushing metric after metric) skips reading them.
///
/// Give it to [`OpenOptions::header_cache`](crate::OpenOptions::header_cache) and
/// [`CreateOptions::header_cache`](crate::CreateOptions::header_cache). One cache is meant to
/// be shared (in an `Arc`) by every thread that writes the same files; it is `Send + Sync`, and
/// its lock is sharded.
///
/// A handle opened with the cache does one `fstat` of the open file. If the cache holds the
/// file's header, cached less than the TTL ago and for the same size, the handle uses it
/// without reading it, and uses the cached slot-0 timestamps of the archives instead of
/// reading them; what the handle reads or writes later is recorded for the next open. The
/// files' bytes are the same as without the cache. The module documentation of `cache.rs`
/// gives the argument; in short:
///
/// - entries are keyed by device, inode and birth time, and checked against the file's size,
///   so a replaced file (renamed over, or a new file reusing an inode number) is never taken
///   for the old one; on filesystems that report no birth time, nothing is cached;
/// - a header is used for at most the TTL (default 60 s, [`DEFAULT_HEADER_TTL`]) after it was
///   last read: a change made in place by another process (`whisper-set-aggregation-method`,
///   `whisper-set-xfilesfactor`) is picked up within the TTL; one made through any handle that
///   uses this cache, by every handle of the cache at its next operation;
/// - only the bases of archives already written are cached: those only ever move by whole
///   laps of the ring, which places every point in the same slot;
/// - a file whose content another program replaces in place (`cp` over it) is not noticed
///   within the TTL: replace files by renaming instead, or call [`clear`](Self::clear).
///
/// # Memory
///
/// 76 bytes per slot of capacity (a 72-byte slot and a 4-byte fingerprint), allocated a shard
/// at a time when the shard is first written, plus 16 bytes per archive for every entry held
/// (a 2-archive entry 32 bytes, 48 with the allocator's overhead; 3 archives 48, 64). So a
/// held `60s:1d,5m:7d` entry takes 124 bytes, a 3-archive one 140. The capacity is rounded up
/// to whole sets of 16.
///
/// Size it to about 1.25 times the number of files written (about 143 bytes per 2-archive
/// file, 159 per 3-archive one): each file may go to one of two sets, and when both are full
/// it displaces another, which then misses (and is read as without the cache). At 1.1 times
/// about 2 files in 10,000 miss that way, at 1.25 times practically none.
///
/// # Performance
///
/// For a writer that opens each file for one `update_many` (the store's persister), the cache
/// takes the system calls of an update of a `60s:1d,5m:7d` file from 9 to 6: the open reads
/// no header, and the update reads no base, leaving one read (the finer values to aggregate)
/// and the writes. Measured with `WHISPER_BENCH_INTERLEAVED=1 cargo bench -p benches --bench
/// whisper` (2,000 files opened by path in turn, ext4 with `relatime`, 2 shared cores; see
/// `benches/whisper.rs`), per update of 1 / 3 / 10 points:
///
/// | | 1 point | 3 points | 10 points |
/// |---|---|---|---|
/// | without | 2.20 us | 2.77 us | 3.54 us |
/// | [`noatime`](crate::OpenOptions::noatime) | 1.00-1.09x | 1.01-1.08x | 1.06-1.19x |
/// | cache | 1.11-1.17x | 1.13-1.21x | 1.10-1.21x |
/// | cache and `noatime` | 1.19-1.24x (1.83 us) | 1.22-1.28x (2.23 us) | 1.16-1.28x (2.77 us) |
///
/// (Speed-ups over 6 runs in which the variants alternated; the machine was shared, and the
/// absolute times of a run moved with its load.)
///
/// What is left is mostly the kernel's: the path walk of the open and the two writes.
///
/// # Examples
///
/// ```
/// use std::sync::Arc;
/// use whisper::{HeaderCache, OpenOptions, Retention};
/// # let dir = tempfile::tempdir()?;
/// # let path = dir.path().join("cpu.wsp");
/// # whisper::create(&path, &[Retention::new(60, 1440)])?;
/// let cache = Arc::new(HeaderCache::new(100_000));
/// let now = 1_700_000_000;
/// for minute in 0..3 {
///     let mut file = OpenOptions::new()
///         .write(true)
///         .noatime(true)
///         .header_cache(Some(&cache))
///         .open(&path)?;
///     file.update_many(&[(now - 600 + minute * 60, 1.0)], now)?;
/// }
/// assert_eq!(cache.stats().hits, 2, "the header was read once");
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub struct HeaderCache {
    /// The shards; their number is a power of two.
    shards: Box<[PaddedShard]>,
    /// Sets per shard.
    sets: usize,
    /// How long a header is trusted after it was read, in milliseconds.
    ttl_ms: u64,
    /// The origin of the cache's clock (monotonic).
    epoch: Instant,
    /// Counts header writes through handles of this cache (and [`clear`](Self::clear)s). A
    /// handle trusts its header only while this is what it was when the header was obtained,
    /// so such a change is seen by every handle of the cache at its next operation.
    generation: AtomicU64,
}

impl std::fmt::Debug for HeaderCache {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("HeaderCache")
            .field("capacity", &self.capacity())
            .field("ttl", &self.ttl())
            .finish_non_exhaustive()
    }
}

/// Counters of a [`HeaderCache`], summed over its shards.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct HeaderCacheStats {
    /// Opens that used a cached header.
    pub hits: u64,
    /// Opens that found no usable entry (none, expired, or for another size) and read the file.
    pub misses: u64,
    /// Live entries dropped to make room for another file.
    pub evictions: u64,
    /// Entries held now (some may have expired).
    pub entries: u64,
}

/// Builds a [`HeaderCache`].
#[derive(Clone, Debug)]
pub struct HeaderCacheBuilder {
    capacity: usize,
    ttl: Duration,
}

impl Default for HeaderCacheBuilder {
    fn default() -> HeaderCacheBuilder {
        HeaderCacheBuilder { capacity: 100_000, ttl: DEFAULT_HEADER_TTL }
    }
}

impl HeaderCacheBuilder {
    /// A builder with the defaults below.
    pub fn new() -> HeaderCacheBuilder {
        HeaderCacheBuilder::default()
    }

    /// Most files held (rounded up to whole sets; at least one set). Default: 100,000.
    pub fn capacity(&mut self, files: usize) -> &mut HeaderCacheBuilder {
        self.capacity = files;
        self
    }

    /// How long a header is used after it was last read from the file: the longest a change
    /// made to the header in place by another process goes unseen. Zero turns the cache into
    /// a no-op. Default: [`DEFAULT_HEADER_TTL`] (60 s).
    pub fn ttl(&mut self, ttl: Duration) -> &mut HeaderCacheBuilder {
        self.ttl = ttl;
        self
    }

    /// The cache. Nothing is allocated for entries until they are stored.
    pub fn build(&self) -> HeaderCache {
        let sets_total = self.capacity.div_ceil(WAYS).max(1);
        // About 64 sets (1,024 files) or more per shard, at most 64 shards.
        let shards = (sets_total / 64).clamp(1, MAX_SHARDS);
        let shards = if shards.is_power_of_two() { shards } else { shards.next_power_of_two() / 2 };
        let sets = sets_total.div_ceil(shards).min(u32::MAX as usize);
        HeaderCache {
            shards: (0..shards).map(|_| PaddedShard::default()).collect(),
            sets,
            ttl_ms: u64::try_from(self.ttl.as_millis()).unwrap_or(u64::MAX),
            epoch: Instant::now(),
            generation: AtomicU64::new(0),
        }
    }
}

impl HeaderCache {
    /// A cache for `capacity` files with the default TTL (see [`HeaderCacheBuilder`]).
    pub fn new(capacity: usize) -> HeaderCache {
        HeaderCacheBuilder::new().capacity(capacity).build()
    }

    /// A builder, to set the TTL too.
    pub fn builder() -> HeaderCacheBuilder {
        HeaderCacheBuilder::new()
    }

    /// How many files it holds at most.
    pub fn capacity(&self) -> usize {
        self.shards.len() * self.sets * WAYS
    }

    /// How long a header is used after it was read.
    pub fn ttl(&self) -> Duration {
        Duration::from_millis(self.ttl_ms)
    }

    /// Counters, summed over the shards.
    pub fn stats(&self) -> HeaderCacheStats {
        let mut total = HeaderCacheStats::default();
        for shard in self.shards.iter() {
            let s = lock(&shard.0).stats;
            total.hits += s.hits;
            total.misses += s.misses;
            total.evictions += s.evictions;
            total.entries += s.entries;
        }
        total
    }

    /// Forgets every entry (counters are kept): the next open of each file reads it again,
    /// and handles already open read their header and bases again at their next operation.
    pub fn clear(&self) {
        for shard in self.shards.iter() {
            let mut s = lock(&shard.0);
            s.fingerprints.iter_mut().for_each(|fp| *fp = 0);
            s.slots.iter_mut().for_each(|slot| slot.entry = None);
            s.stats.entries = 0;
        }
        self.bump_generation();
    }

    /// See the `generation` field. Read before the header is loaded or read.
    pub(crate) fn generation(&self) -> u64 {
        self.generation.load(Ordering::Acquire)
    }

    /// A header was written through a handle of the cache (after its new entry was stored),
    /// or the cache was cleared: every handle must read its header again. Returns the new
    /// generation.
    pub(crate) fn bump_generation(&self) -> u64 {
        self.generation.fetch_add(1, Ordering::AcqRel) + 1
    }

    /// The cache's clock: milliseconds since it was built.
    pub(crate) fn now_ms(&self) -> u64 {
        u64::try_from(self.epoch.elapsed().as_millis()).unwrap_or(u64::MAX)
    }

    pub(crate) fn ttl_ms(&self) -> u64 {
        self.ttl_ms
    }

    /// The shard, the first slots of the two sets an entry may be in, and the fingerprint
    /// of `id`.
    fn locate(&self, id: &FileId) -> (&Mutex<Shard>, [usize; 2], u32) {
        let h = id.hash();
        let g = mix(h);
        let shard = (g >> 58) as usize & (self.shards.len() - 1);
        // Multiply-shift maps 32 bits onto `0..sets` without a division.
        let set = |bits: u64| (((bits & 0xFFFF_FFFF) * self.sets as u64) >> 32) as usize * WAYS;
        let fingerprint = ((h >> 32) as u32) | 1;
        (&self.shards[shard].0, [set(h), set(g)], fingerprint)
    }

    /// The header of `id` if cached less than the TTL before `now` for a file of `size` bytes,
    /// with the time it was cached; its known bases are appended to `bases` as
    /// `(archive offset, base)`.
    pub(crate) fn load(
        &self,
        id: FileId,
        size: u64,
        now: u64,
        bases: &mut Vec<(u32, u32)>,
    ) -> Option<(Header, u64)> {
        let (shard, sets, fingerprint) = self.locate(&id);
        let mut shard = lock(shard);
        let found = shard.find(sets, fingerprint, &id).and_then(|i| {
            let entry = shard.slots[i].entry.as_ref()?;
            let fresh = entry.size == size && now.saturating_sub(entry.stamp) < self.ttl_ms;
            fresh.then(|| {
                bases.extend(entry.archives.iter().filter(|a| a[3] != 0).map(|a| (a[0], a[3])));
                (entry.header(), entry.stamp)
            })
        });
        if found.is_some() {
            shard.stats.hits += 1;
        } else {
            shard.stats.misses += 1;
        }
        found
    }

    /// Records `header` as the header of `id` (a file of `size` bytes) on disk at time
    /// `stamp`, with the non-zero bases among `bases`. An entry stored with a later stamp is
    /// kept (only its bases learn from these, see `Entry::learn`).
    pub(crate) fn store(
        &self,
        id: FileId,
        size: u64,
        header: &Header,
        bases: &[(u32, u32)],
        stamp: u64,
    ) {
        let (shard, sets, fingerprint) = self.locate(&id);
        let mut shard = lock(shard);
        if shard.slots.is_empty() {
            let n = self.sets * WAYS;
            shard.fingerprints = vec![0; n];
            shard.slots.resize_with(n, Slot::default);
            shard.random = id.hash() | 1;
        }
        if let Some(i) = shard.find(sets, fingerprint, &id)
            && let Some(entry) = shard.slots[i].entry.as_mut()
        {
            if entry.stamp > stamp {
                if entry.size == size && entry.same_layout(header) {
                    entry.learn(bases);
                }
            } else {
                *entry = Entry::new(header, bases, size, stamp);
            }
            return;
        }
        let i = self.pick_slot(&mut shard, sets);
        if shard.slots[i].entry.is_none() {
            shard.stats.entries += 1;
        }
        shard.fingerprints[i] = fingerprint;
        shard.slots[i] = Slot { id, entry: Some(Entry::new(header, bases, size, stamp)) };
    }

    fn pick_slot(&self, shard: &mut Shard, sets: [usize; 2]) -> usize {
        shard.victim(sets, self.now_ms(), self.ttl_ms)
    }

    /// Records `bases` in the entry of `id` (see `Entry::learn`), if it is for a file of
    /// `size` bytes with the archives of `header`.
    pub(crate) fn learn_bases(&self, id: FileId, size: u64, header: &Header, bases: &[(u32, u32)]) {
        let (shard, sets, fingerprint) = self.locate(&id);
        let mut shard = lock(shard);
        if let Some(i) = shard.find(sets, fingerprint, &id)
            && let Some(entry) = shard.slots[i].entry.as_mut()
            && entry.size == size
            && entry.same_layout(header)
        {
            entry.learn(bases);
        }
    }

    /// Forgets `id`.
    pub(crate) fn remove(&self, id: FileId) {
        let (shard, sets, fingerprint) = self.locate(&id);
        let mut shard = lock(shard);
        if let Some(i) = shard.find(sets, fingerprint, &id) {
            shard.fingerprints[i] = 0;
            if shard.slots[i].entry.take().is_some() {
                shard.stats.entries -= 1;
            }
        }
    }
}

/// Locks a shard. A thread that panicked while holding it cannot have left an entry half
/// written (every update replaces or edits fields of plain data), so a poisoned lock is used.
fn lock(m: &Mutex<Shard>) -> MutexGuard<'_, Shard> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;

    use proptest::prelude::*;

    use super::*;
    use crate::retention::Retention;

    fn header(method: AggregationMethod, points: u32) -> Header {
        Header::new(&[Retention::new(60, points), Retention::new(300, 100)], 0.5, method)
            .expect("valid")
    }

    fn cache(capacity: usize, ttl_ms: u64) -> HeaderCache {
        HeaderCache::builder().capacity(capacity).ttl(Duration::from_millis(ttl_ms)).build()
    }

    #[test]
    fn slot_sizes_are_as_documented() {
        assert_eq!(std::mem::size_of::<Slot>(), 72);
        assert_eq!(std::mem::size_of::<Slot>() + std::mem::size_of::<u32>(), 76);
    }

    #[test]
    fn capacity_is_rounded_to_whole_sets() {
        assert_eq!(HeaderCache::new(0).capacity(), 16);
        assert_eq!(HeaderCache::new(16).capacity(), 16);
        assert_eq!(HeaderCache::new(17).capacity(), 32);
        let big = HeaderCache::new(1_000_000);
        assert_eq!(big.shards.len(), 64);
        assert!(big.capacity() >= 1_000_000 && big.capacity() < 1_000_000 + 64 * 16);
        assert_eq!(HeaderCache::new(5000).shards.len(), 4);
        assert_eq!(HeaderCache::new(8000).shards.len(), 4);
        assert_eq!(HeaderCache::new(200_000).shards.len(), 64);
    }

    #[test]
    fn load_returns_what_was_stored_for_that_file_and_size_only() {
        let c = cache(64, 1000);
        let id = FileId::from_parts(1, 2, 3);
        let h = header(AggregationMethod::Max, 10);
        c.store(id, 500, &h, &[(h.archives()[0].offset(), 77), (h.archives()[1].offset(), 0)], 5);
        let mut bases = Vec::new();
        assert_eq!(c.load(id, 500, 10, &mut bases), Some((h.clone(), 5)));
        assert_eq!(bases, [(h.archives()[0].offset(), 77)], "zero bases are not cached");
        for other in
            [FileId::from_parts(9, 2, 3), FileId::from_parts(1, 9, 3), FileId::from_parts(1, 2, 9)]
        {
            assert_eq!(c.load(other, 500, 10, &mut Vec::new()), None);
        }
        assert_eq!(c.load(id, 501, 10, &mut Vec::new()), None, "another size");
        assert_eq!(c.load(id, 500, 1004, &mut Vec::new()), Some((h.clone(), 5)));
        assert_eq!(c.load(id, 500, 1005, &mut Vec::new()), None, "expired");
        c.remove(id);
        assert_eq!(c.load(id, 500, 10, &mut Vec::new()), None);
        let s = c.stats();
        assert_eq!((s.hits, s.misses, s.entries), (2, 6, 0));
    }

    #[test]
    fn a_later_stamp_wins_and_bases_are_learned_either_way() {
        let c = cache(64, 1000);
        let id = FileId::from_parts(1, 2, 3);
        let old = header(AggregationMethod::Max, 10);
        let new = header(AggregationMethod::Sum, 10);
        let off = old.archives()[1].offset();
        c.store(id, 500, &new, &[], 20);
        c.store(id, 500, &old, &[(off, 42)], 10);
        let mut bases = Vec::new();
        assert_eq!(c.load(id, 500, 30, &mut bases), Some((new.clone(), 20)));
        assert_eq!(bases, [(off, 42)]);
        // Bases for another layout are not learned.
        c.learn_bases(id, 500, &header(AggregationMethod::Sum, 11), &[(off, 43)]);
        c.learn_bases(id, 499, &new, &[(off, 44)]);
        let mut bases = Vec::new();
        c.load(id, 500, 30, &mut bases);
        assert_eq!(bases, [(off, 42)]);
        c.store(id, 500, &old, &[], 25);
        assert_eq!(c.load(id, 500, 30, &mut Vec::new()), Some((old, 25)));
    }

    #[test]
    fn zero_ttl_never_hits_and_clear_forgets() {
        let c = cache(64, 0);
        let id = FileId::from_parts(1, 2, 3);
        let h = header(AggregationMethod::Max, 10);
        c.store(id, 500, &h, &[], 5);
        assert_eq!(c.load(id, 500, 5, &mut Vec::new()), None);
        let c = cache(64, 100);
        c.store(id, 500, &h, &[], 5);
        c.clear();
        assert_eq!(c.load(id, 500, 5, &mut Vec::new()), None);
        assert_eq!(c.stats().entries, 0);
    }

    #[test]
    fn a_full_set_evicts_one_entry_and_keeps_the_others() {
        let c = cache(16, 1000);
        let h = header(AggregationMethod::Max, 10);
        for ino in 0..17 {
            c.store(FileId::from_parts(1, ino, 1), 500, &h, &[], 5);
        }
        let held = (0..17)
            .filter(|&ino| c.load(FileId::from_parts(1, ino, 1), 500, 6, &mut Vec::new()).is_some())
            .count();
        assert_eq!(held, 16);
        assert_eq!(c.stats().evictions, 1);
        assert_eq!(c.stats().entries, 16);
    }

    #[derive(Clone, Debug)]
    enum Op {
        Store { id: usize, size: u64, method: usize, points: u32, base: u32 },
        Learn { id: usize, size: u64, points: u32, base: u32 },
        Remove { id: usize },
        Load { id: usize, size: u64 },
    }

    fn ids() -> Vec<FileId> {
        let mut ids = Vec::new();
        for dev in 1..3 {
            for ino in 1..9 {
                for birth in 1..3 {
                    ids.push(FileId::from_parts(dev, ino, birth));
                }
            }
        }
        ids
    }

    fn op() -> impl Strategy<Value = Op> {
        let id = 0usize..32;
        let size = prop::sample::select(vec![100u64, 200]);
        prop_oneof![
            4 => (id.clone(), size.clone(), 0usize..8, 10u32..12, 0u32..3)
                .prop_map(|(id, size, method, points, base)| {
                    Op::Store { id, size, method, points, base }
                }),
            2 => (id.clone(), size.clone(), 10u32..12, 0u32..3)
                .prop_map(|(id, size, points, base)| Op::Learn { id, size, points, base }),
            1 => id.clone().prop_map(|id| Op::Remove { id }),
            6 => (id, size).prop_map(|(id, size)| Op::Load { id, size }),
        ]
    }

    /// What the cache may know of a file: size, header and bases.
    type Known = (u64, Header, Vec<(u32, u32)>);

    proptest! {
        /// Whatever the sequence of stores, removals and evictions (32 files, 16 or 32 slots),
        /// a load returns the header last stored for exactly that file and size, and only
        /// bases given for that file with that layout.
        #[test]
        fn never_answers_for_another_file_or_size(
            capacity in prop::sample::select(vec![16usize, 32]),
            ops in prop::collection::vec(op(), 1..200),
        ) {
            let c = cache(capacity, u64::MAX);
            let ids = ids();
            // id -> (size, header, bases the cache may know)
            let mut model: HashMap<usize, Known> = HashMap::new();
            for (stamp, op) in ops.into_iter().enumerate() {
                let stamp = stamp as u64;
                match op {
                    Op::Store { id, size, method, points, base } => {
                        let h = header(AggregationMethod::ALL[method], points);
                        let bases = [(h.archives()[1].offset(), base)];
                        c.store(ids[id], size, &h, &bases, stamp);
                        let known = bases.iter().copied().filter(|b| b.1 != 0).collect();
                        model.insert(id, (size, h, known));
                    }
                    Op::Learn { id, size, points, base } => {
                        let h = header(AggregationMethod::Max, points);
                        let b = (h.archives()[1].offset(), base);
                        c.learn_bases(ids[id], size, &h, &[b]);
                        if let Some((s, mh, known)) = model.get_mut(&id)
                            && *s == size && mh.archives() == h.archives() {
                            known.retain(|k| k.0 != b.0);
                            if base != 0 {
                                known.push(b);
                            }
                        }
                    }
                    Op::Remove { id } => {
                        c.remove(ids[id]);
                        model.remove(&id);
                    }
                    Op::Load { id, size } => {
                        let mut bases = Vec::new();
                        if let Some((h, _)) = c.load(ids[id], size, stamp, &mut bases) {
                            let (s, mh, known) =
                                model.get(&id).expect("only stored files are answered");
                            prop_assert_eq!(*s, size);
                            prop_assert_eq!(&h, mh);
                            prop_assert_eq!(&bases, known);
                        }
                    }
                }
            }
            prop_assert!(c.stats().entries as usize <= c.capacity());
        }
    }
}
