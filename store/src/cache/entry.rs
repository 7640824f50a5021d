//! A metric's cache entry: one heap allocation holding its bookkeeping, its name and its
//! points, owned through a single pointer.
//!
//! ```text
//! | Header, 32 bytes                                                    | name | pad to 4 | points   |
//! | segment u64 | first_ms | last_ms | len | cap | inflight | name_len* |      |          | cap x 12 |
//! ```
//! (* the name's length in 30 bits, and the entry's two flags)
//!
//! The cache's hash table then holds an 8-byte pointer a metric instead of a 64-byte slot: a
//! name (`Arc<str>`, a second allocation with its own malloc header) and a 48-byte entry with a
//! `Vec` inside (a third allocation). For 100,000 metrics of 10 points with 21-byte names that
//! is 208 bytes of heap and 12 of table a metric instead of 160 + 48 and 85 (see
//! `store/README.md`, "Speed and memory").
//!
//! The points grow by half (at least [`MIN_GROW`] at a time), not double: a metric's few points
//! waste less, and for 10 to 120 points per metric the cache's bytes a point (slack and the
//! heap's reuse of the room given back included) come out lowest this way. (Rounding each
//! capacity up to fill the allocator's chunk was measured too: it gains at most one point's
//! room and pushes every later capacity up, which costs more from 20 points on.)
//!
//! This module holds all of the cache's `unsafe`. [`Entry`] is a `Box` of a dynamically sized
//! value in effect: it owns the allocation, frees it on drop, and hands out borrows tied to
//! `&self`/`&mut self`; every layout comes from [`layout`], so allocation, growth and release
//! agree on the size. The model tests (here against a `Vec`, in `cache.rs` against a
//! `BTreeMap`) drive it with random operations; Miri checks the pointer work in them:
//! `MIRIFLAGS=-Zmiri-disable-isolation PROPTEST_CASES=8 cargo +nightly miri test -p store --lib
//! cache::` (about four minutes).

use std::alloc::{self, Layout};
use std::mem::{align_of, size_of};
use std::num::NonZeroUsize;
use std::ptr::{self, NonNull};

use super::{CachedPoint, SegmentId};

/// The bookkeeping a cache user reads and writes freely: nothing here bears on memory safety.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
#[repr(C)]
pub(crate) struct Meta {
    /// The log segment of the oldest pending point: the segment must stay until they are
    /// written.
    pub(crate) segment: SegmentId,
    /// When the oldest pending point arrived, in `Cache::now_ms` time.
    pub(crate) first_ms: u32,
    /// When the newest pending point arrived.
    pub(crate) last_ms: u32,
}

/// The start of an entry's allocation. `len`, `cap` and `name` describe the allocation and
/// are only changed here.
#[repr(C)]
struct Header {
    meta: Meta,
    /// Points stored (in flight first, then pending).
    len: u32,
    /// Points the allocation has room for.
    cap: u32,
    /// How many of the points a persister is writing (at most `len`).
    inflight: u32,
    /// The name's length in bytes (the low 30 bits), and the [`FRESH`] and [`IDLE`] flags.
    name: u32,
}

const HEADER_BYTES: usize = size_of::<Header>();
const POINT_BYTES: usize = size_of::<CachedPoint>();
const NAME_LEN_MASK: u32 = (1 << 30) - 1;
/// A metric new to the store (probably without a file yet).
const FRESH: u32 = 1 << 30;
/// Empty at the last sweep.
const IDLE: u32 = 1 << 31;

/// The longest name an entry holds (1 GiB less a byte: the top two bits of the length are
/// flags). The store refuses longer names at ingest.
pub(crate) const MAX_NAME_BYTES: usize = NAME_LEN_MASK as usize;

/// Growth is by half the points held, and at least this many; also the first capacity.
pub(crate) const MIN_GROW: u32 = 4;

/// Where the points start: after the header and the name, aligned for a point.
fn points_offset(name_len: usize) -> usize {
    HEADER_BYTES + name_len.next_multiple_of(align_of::<CachedPoint>())
}

/// The allocation of an entry with a `name_len`-byte name and room for `cap` points.
///
/// # Panics
///
/// When the size overflows `isize` (more points than the address space holds), as `Vec` does.
fn layout(name_len: usize, cap: u32) -> Layout {
    (cap as usize)
        .checked_mul(POINT_BYTES)
        .and_then(|bytes| bytes.checked_add(points_offset(name_len)))
        .and_then(|size| Layout::from_size_align(size, align_of::<Header>()).ok())
        .unwrap_or_else(|| panic!("cache entry capacity overflow ({cap} points)"))
}

/// The capacity after `cap` when full: half as much again, and at least [`MIN_GROW`] more.
fn grown(cap: u32) -> Option<u32> {
    cap.checked_add((cap / 2).max(MIN_GROW)).or_else(|| cap.checked_add(1))
}

/// The low bit of [`Entry`]'s pointer: set when the entry has pending points and none in
/// flight (a persister can take it). The allocation is 8-byte aligned, so the bit is free, and
/// in the table's slot it answers [`Entry::takeable`] without reading the allocation: a
/// snapshot of a large, mostly written-out cache skips most entries without a cache miss each.
const TAKEABLE: usize = 1;

/// A metric's entry: its [`Meta`], flags, name and points in one allocation.
pub(crate) struct Entry {
    /// The allocation's address, with [`TAKEABLE`] in the low bit. The allocation is of
    /// `layout(name_len, cap)` as its header says: the header (initialised), the name's bytes
    /// (valid UTF-8), then `len` initialised points.
    ptr: NonNull<Header>,
}

// SAFETY: an `Entry` owns its allocation as a `Box` would: no other pointer to it exists, and
// it holds plain data only, so moving it to another thread is sound.
unsafe impl Send for Entry {}

impl Entry {
    /// An empty entry for `name`, with room for [`MIN_GROW`] points.
    ///
    /// # Panics
    ///
    /// If the name is longer than [`MAX_NAME_BYTES`].
    pub(crate) fn new(name: &str, fresh: bool) -> Entry {
        assert!(name.len() <= MAX_NAME_BYTES, "metric name of {} bytes", name.len());
        let cap = MIN_GROW;
        let layout = layout(name.len(), cap);
        // SAFETY: the layout's size is at least HEADER_BYTES, not zero.
        let raw = unsafe { alloc::alloc(layout) };
        let Some(ptr) = NonNull::new(raw.cast::<Header>()) else {
            alloc::handle_alloc_error(layout)
        };
        let name_bits = name.len() as u32 | if fresh { FRESH } else { 0 };
        // SAFETY: `raw` is a fresh allocation of `layout`: aligned for `Header` (the layout's
        // alignment is its) and at least HEADER_BYTES + name.len() bytes long; the name's bytes
        // go after the header, so the two writes do not overlap, and `name` is not in it.
        unsafe {
            ptr.write(Header { meta: Meta::default(), len: 0, cap, inflight: 0, name: name_bits });
            ptr::copy_nonoverlapping(name.as_ptr(), raw.add(HEADER_BYTES), name.len());
        }
        Entry { ptr }
    }

    /// The allocation's address (the pointer without its tag).
    fn base(&self) -> NonNull<Header> {
        // An allocation's address is a nonzero multiple of 8: without bit 0 it stays nonzero.
        self.ptr.map_addr(|a| NonZeroUsize::new(a.get() & !TAKEABLE).unwrap_or(a))
    }

    /// Sets [`TAKEABLE`] from the header: after every change of `len` or `inflight`, and of
    /// the address.
    fn retag(&mut self) {
        let h = self.header();
        let bit = usize::from(h.inflight == 0 && h.len > 0);
        self.ptr = self.base().map_addr(|a| a | bit);
    }

    fn header(&self) -> &Header {
        // SAFETY: `base` points to an initialised header for as long as `self` lives, and the
        // borrow of `self` keeps any `&mut` to it away.
        unsafe { self.base().as_ref() }
    }

    fn header_mut(&mut self) -> &mut Header {
        // SAFETY: as in `header`, and `&mut self` makes this the only borrow.
        unsafe { self.base().as_mut() }
    }

    fn name_len(&self) -> usize {
        (self.header().name & NAME_LEN_MASK) as usize
    }

    fn layout(&self) -> Layout {
        layout(self.name_len(), self.header().cap)
    }

    fn points_ptr(&self) -> *mut CachedPoint {
        // SAFETY: the allocation is `points_offset(name_len)` bytes plus the points long, so
        // the offset stays inside it.
        unsafe { self.base().as_ptr().cast::<u8>().add(points_offset(self.name_len())).cast() }
    }

    /// The metric's name.
    pub(crate) fn name(&self) -> &str {
        // SAFETY: `name_len` bytes after the header were copied from a `&str` in `new` and
        // are never written again; they live as long as the allocation, which `&self` keeps.
        unsafe {
            let bytes = std::slice::from_raw_parts(
                self.base().as_ptr().cast::<u8>().add(HEADER_BYTES),
                self.name_len(),
            );
            std::str::from_utf8_unchecked(bytes)
        }
    }

    /// Every point, in flight first, then pending, each part in the order received.
    pub(crate) fn points(&self) -> &[CachedPoint] {
        // SAFETY: the first `len` points are initialised (pushes write before they count),
        // aligned (`points_offset` is a multiple of their alignment and the allocation's is
        // larger), inside the allocation (`len <= cap`), and `&self` keeps them unchanged.
        unsafe { std::slice::from_raw_parts(self.points_ptr(), self.header().len as usize) }
    }

    /// The points not in flight.
    pub(crate) fn pending(&self) -> &[CachedPoint] {
        self.points().get(self.inflight()..).unwrap_or_default()
    }

    pub(crate) fn has_pending(&self) -> bool {
        self.header().len > self.header().inflight
    }

    /// Has pending points and none in flight: a persister can take it. Reads only the
    /// pointer, not the allocation.
    pub(crate) fn takeable(&self) -> bool {
        self.ptr.addr().get() & TAKEABLE != 0
    }

    /// Points held (in flight and pending).
    pub(crate) fn len(&self) -> usize {
        self.header().len as usize
    }

    /// Points the entry has room for without growing.
    pub(crate) fn capacity(&self) -> usize {
        self.header().cap as usize
    }

    /// The entry's allocation in bytes.
    pub(crate) fn allocated_bytes(&self) -> usize {
        self.layout().size()
    }

    /// How many of the points (the first ones) are in flight.
    pub(crate) fn inflight(&self) -> usize {
        self.header().inflight as usize
    }

    /// Marks every point held as in flight.
    pub(crate) fn mark_all_inflight(&mut self) {
        let h = self.header_mut();
        h.inflight = h.len;
        self.retag();
    }

    /// The in-flight points become pending again (in front of the others).
    pub(crate) fn clear_inflight(&mut self) {
        self.header_mut().inflight = 0;
        self.retag();
    }

    pub(crate) fn meta(&self) -> &Meta {
        &self.header().meta
    }

    pub(crate) fn meta_mut(&mut self) -> &mut Meta {
        &mut self.header_mut().meta
    }

    pub(crate) fn fresh(&self) -> bool {
        self.header().name & FRESH != 0
    }

    pub(crate) fn set_fresh(&mut self, yes: bool) {
        self.set_flag(FRESH, yes);
    }

    pub(crate) fn idle(&self) -> bool {
        self.header().name & IDLE != 0
    }

    pub(crate) fn set_idle(&mut self, yes: bool) {
        self.set_flag(IDLE, yes);
    }

    fn set_flag(&mut self, flag: u32, yes: bool) {
        let h = self.header_mut();
        if yes {
            h.name |= flag;
        } else {
            h.name &= !flag;
        }
    }

    /// Appends a point (pending), growing the allocation by half when full.
    ///
    /// # Panics
    ///
    /// When the entry already holds `u32::MAX` points.
    pub(crate) fn push(&mut self, point: CachedPoint) {
        let len = self.header().len;
        if len == self.header().cap {
            let cap = grown(len)
                .unwrap_or_else(|| panic!("more than {len} points cached for one metric"));
            self.resize(cap);
        }
        // SAFETY: `len < cap` now, so slot `len` is inside the allocation and aligned (see
        // `points`); it is not initialised yet, and `&mut self` excludes other borrows.
        unsafe { self.points_ptr().add(len as usize).write(point) };
        self.header_mut().len = len + 1;
        self.retag();
    }

    /// Removes the in-flight points (a persister wrote them); the pending ones move to the
    /// front.
    pub(crate) fn remove_inflight(&mut self) -> usize {
        let h = self.header();
        let (done, len) = (h.inflight.min(h.len), h.len);
        if done > 0 {
            let rest = (len - done) as usize;
            // SAFETY: points `done..len` are initialised and inside the allocation; `copy`
            // allows the overlap; `CachedPoint` is `Copy`, so the points overwritten need no
            // drop.
            unsafe {
                let base = self.points_ptr();
                ptr::copy(base.add(done as usize), base, rest);
            }
        }
        let h = self.header_mut();
        h.len = len - done;
        h.inflight = 0;
        self.retag();
        done as usize
    }

    /// Gives back the room of an empty entry holding more than `keep` points' room: it goes
    /// down to the first capacity. Returns whether it did.
    pub(crate) fn shrink_if_empty(&mut self, keep: usize) -> bool {
        if self.header().len != 0 || self.capacity() <= keep {
            return false;
        }
        self.resize(MIN_GROW);
        true
    }

    /// Reallocates with room for `cap` points (at least `len`).
    fn resize(&mut self, cap: u32) {
        debug_assert!(cap >= self.header().len);
        let old = self.layout();
        let new = layout(self.name_len(), cap);
        // SAFETY: `ptr` was allocated by the global allocator with `old` (every layout comes
        // from `layout` with the header's `name_len` and `cap`, which match the allocation);
        // the new size is non-zero and was checked against `isize::MAX` by `layout`.
        let raw = unsafe { alloc::realloc(self.base().as_ptr().cast(), old, new.size()) };
        let Some(ptr) = NonNull::new(raw.cast::<Header>()) else {
            // The old allocation is still valid and still ours.
            alloc::handle_alloc_error(new)
        };
        self.ptr = ptr;
        // The header, the name and the `len <= cap` points were moved along.
        self.header_mut().cap = cap;
        self.retag();
    }
}

impl Drop for Entry {
    fn drop(&mut self) {
        let layout = self.layout();
        // SAFETY: the allocation was made with this layout (see `resize`) and is dropped once;
        // the points are `Copy` and need no drop.
        unsafe { alloc::dealloc(self.base().as_ptr().cast(), layout) };
    }
}

impl std::fmt::Debug for Entry {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Entry")
            .field("name", &self.name())
            .field("meta", self.meta())
            .field("inflight", &self.inflight())
            .field("fresh", &self.fresh())
            .field("idle", &self.idle())
            .field("points", &self.points())
            .finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn header_is_32_bytes() {
        assert_eq!(HEADER_BYTES, 32);
        assert_eq!(size_of::<Entry>(), 8);
    }

    #[test]
    fn capacity_grows_by_half_and_the_layout_follows() {
        let mut caps = vec![MIN_GROW];
        while caps.len() < 9 {
            caps.push(grown(*caps.last().unwrap()).unwrap());
        }
        assert_eq!(caps, [4, 8, 12, 18, 27, 40, 60, 90, 135]);
        assert_eq!(grown(u32::MAX - 1), Some(u32::MAX));
        assert_eq!(grown(u32::MAX), None);
        // A 21-byte name: the points start at 32 + 24 = 56.
        assert_eq!(layout(21, 12).size(), 56 + 144);
        assert_eq!(layout(0, 1).size(), 32 + 12);
        assert_eq!(layout(4, 0).align(), 8);
    }

    #[test]
    fn name_flags_and_points_round_trip() {
        let mut e = Entry::new("a.b.c", true);
        assert_eq!(e.name(), "a.b.c");
        assert!(e.fresh() && !e.idle());
        e.set_idle(true);
        e.set_fresh(false);
        assert!(!e.fresh() && e.idle());
        assert_eq!(e.name(), "a.b.c", "the flags leave the length alone");
        for t in 0..100 {
            e.push(CachedPoint::new(t, f64::from(t)));
        }
        assert_eq!(e.points().len(), 100);
        assert!(e.points().iter().enumerate().all(|(i, p)| p.timestamp() == i as u32));
        assert_eq!(e.name(), "a.b.c", "growth moved the name along");
        e.mark_all_inflight();
        e.push(CachedPoint::new(100, 1.0));
        assert_eq!((e.inflight(), e.pending().len()), (100, 1));
        assert_eq!(e.remove_inflight(), 100);
        assert_eq!(e.points(), [CachedPoint::new(100, 1.0)]);
        assert!(!e.shrink_if_empty(0), "not empty");
        e.mark_all_inflight();
        e.remove_inflight();
        assert!(e.shrink_if_empty(64));
        assert_eq!(e.capacity(), MIN_GROW as usize);
        assert_eq!(e.name(), "a.b.c");
    }

    #[test]
    fn empty_and_long_names() {
        let e = Entry::new("", false);
        assert_eq!(e.name(), "");
        let long = "x".repeat(5000) + "é";
        let mut e = Entry::new(&long, false);
        e.push(CachedPoint::new(1, 2.0));
        assert_eq!(e.name(), long);
        assert_eq!(e.points(), [CachedPoint::new(1, 2.0)]);
    }

    #[derive(Debug, Clone)]
    enum Op {
        Push(u32, f64),
        MarkInflight,
        ClearInflight,
        RemoveInflight,
        Shrink(u8),
        Flags(bool, bool),
        Meta(u64, u32, u32),
    }

    fn op() -> impl Strategy<Value = Op> {
        prop_oneof![
            6 => (any::<u32>(), any::<f64>()).prop_map(|(t, v)| Op::Push(t, v)),
            1 => Just(Op::MarkInflight),
            1 => Just(Op::ClearInflight),
            1 => Just(Op::RemoveInflight),
            1 => any::<u8>().prop_map(Op::Shrink),
            1 => (any::<bool>(), any::<bool>()).prop_map(|(a, b)| Op::Flags(a, b)),
            1 => (any::<u64>(), any::<u32>(), any::<u32>()).prop_map(|(s, a, b)| Op::Meta(s, a, b)),
        ]
    }

    proptest! {
        /// Random operations on an entry agree with a `Vec` and a few plain fields.
        #[test]
        fn entry_matches_a_vec_model(
            name in "[a-z.é]{0,40}",
            fresh in any::<bool>(),
            ops in proptest::collection::vec(op(), 0..200),
        ) {
            let mut e = Entry::new(&name, fresh);
            let mut points: Vec<CachedPoint> = Vec::new();
            let mut inflight = 0usize;
            let (mut fresh, mut idle) = (fresh, false);
            let mut meta = Meta::default();
            for op in ops {
                match op {
                    Op::Push(t, v) => {
                        e.push(CachedPoint::new(t, v));
                        points.push(CachedPoint::new(t, v));
                    }
                    Op::MarkInflight => {
                        e.mark_all_inflight();
                        inflight = points.len();
                    }
                    Op::ClearInflight => {
                        e.clear_inflight();
                        inflight = 0;
                    }
                    Op::RemoveInflight => {
                        prop_assert_eq!(e.remove_inflight(), inflight);
                        points.drain(..inflight);
                        inflight = 0;
                    }
                    Op::Shrink(keep) => {
                        let cap = e.capacity();
                        let did = e.shrink_if_empty(usize::from(keep));
                        prop_assert_eq!(did, points.is_empty() && cap > usize::from(keep));
                    }
                    Op::Flags(f, i) => {
                        e.set_fresh(f);
                        e.set_idle(i);
                        (fresh, idle) = (f, i);
                    }
                    Op::Meta(s, a, b) => {
                        meta = Meta { segment: s, first_ms: a, last_ms: b };
                        *e.meta_mut() = meta;
                    }
                }
                prop_assert_eq!(e.name(), name.as_str());
                let bits = |p: &[CachedPoint]| {
                    p.iter().map(|p| (p.timestamp(), p.value().to_bits())).collect::<Vec<_>>()
                };
                prop_assert_eq!(bits(e.points()), bits(&points));
                prop_assert_eq!(bits(e.pending()), bits(&points[inflight..]));
                prop_assert_eq!(e.has_pending(), points.len() > inflight);
                prop_assert_eq!(e.takeable(), inflight == 0 && !points.is_empty());
                prop_assert_eq!((e.fresh(), e.idle()), (fresh, idle));
                prop_assert_eq!(*e.meta(), meta);
                prop_assert!(e.len() <= e.capacity());
                prop_assert_eq!(e.allocated_bytes(), layout(name.len(), e.capacity() as u32).size());
            }
        }
    }
}
