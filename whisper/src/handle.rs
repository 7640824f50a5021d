//! [`Whisper`]: an open whisper file, and the read and write algorithms of whisper.py.
//!
//! Every algorithm follows whisper.py 1.1.4 step by step (`file_update`, `file_update_many`,
//! `__archive_update_many`, `__propagate`, `file_fetch`, `__archive_fetch`), including the order
//! of its writes, because that order decides the bytes on disk: the first point written into an
//! empty archive becomes its slot 0. Where whisper.py has a bug that corrupts a file or crashes,
//! we do the safe thing instead and say so in the doc comment.
//!
//! The handle re-reads the header (one small `pread`) at the start of every operation, as
//! whisper.py does, so a change made by another process (`whisper-set-aggregation-method` on a
//! live file) is seen at once. A handle opened with a [`HeaderCache`] instead trusts its header
//! for the cache's TTL (see `cache.rs` for why that and the cached bases are safe).

use std::fs;
use std::io;
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicU32, Ordering};

use crate::aggregation::AggregationMethod;
use crate::cache::{FileId, HeaderCache};
use crate::error::{Error, Result};
use crate::format::{self, ArchiveInfo, DecodeError, Header, POINT_SIZE};
use crate::pyset::PySet;
use crate::storage::{self, FileStorage, Storage};

/// Largest magnitude accepted for a time given by the caller (about 8.9 million years).
///
/// Times are clamped to it so that the interval arithmetic below can never overflow; whisper
/// timestamps are 32-bit, so nothing real is near it.
const TIME_LIMIT: i64 = 1 << 48;

/// Scratch buffers larger than this are freed when a write ends, so that thousands of
/// kept-open handles do not each hold on to the buffers of their largest write.
const KEEP_WRITE_BUFFER_BYTES: usize = 4096;

/// The same for reads, which are larger: a 24-hour fetch of a minutely archive (17 KB) keeps
/// its buffer for the next fetch, a whole 3-year archive (1.3 MB) does not.
const KEEP_READ_BUFFER_BYTES: usize = 64 * 1024;

/// Frees `v` if its allocation is larger than `limit` bytes.
fn release_if_large<T>(v: &mut Vec<T>, limit: usize) {
    if v.capacity() * std::mem::size_of::<T>() > limit {
        *v = Vec::new();
    }
}

/// Most `None`s a fetch of a never-written archive returns (see [`Whisper::fetch_archive`]).
const MAX_UNWRITTEN_VALUES: u64 = 1 << 22;

pub(crate) fn clamp_time(t: i64) -> i64 {
    t.clamp(-TIME_LIMIT, TIME_LIMIT)
}

/// The result of a fetch: values at `from, from + step, ...`, `None` where nothing is stored.
///
/// As in whisper.py, `from` and `until` are the aligned bounds `(from, until]` of the window
/// (`until` exclusive), and `values.len()` is normally `(until - from) / step`.
#[derive(Clone, Debug, Default, PartialEq)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
pub struct Series {
    /// Timestamp of the first value.
    pub from: i64,
    /// End of the window (exclusive).
    pub until: i64,
    /// Seconds between values.
    pub step: u32,
    /// One value per step; `None` where the slot holds no point for that time.
    pub values: Vec<Option<f64>>,
}

impl Series {
    /// `(timestamp, value)` pairs.
    pub fn points(&self) -> impl Iterator<Item = (i64, Option<f64>)> + '_ {
        let step = i64::from(self.step);
        self.values.iter().enumerate().map(move |(i, v)| (self.from + i as i64 * step, *v))
    }
}

/// How a file is opened: see [`OpenOptions::open`].
#[derive(Clone, Debug, Default)]
pub struct OpenOptions {
    write: bool,
    lock: bool,
    autoflush: bool,
    mmap: bool,
    fadvise_random: bool,
    noatime: bool,
    header_cache: Option<Arc<HeaderCache>>,
}

impl OpenOptions {
    /// Read-only, no lock, no fsync, no map (whisper.py's defaults).
    pub fn new() -> OpenOptions {
        OpenOptions::default()
    }

    /// Open for writing too. Default: `false`.
    pub fn write(&mut self, yes: bool) -> &mut OpenOptions {
        self.write = yes;
        self
    }

    /// Take an exclusive `flock` around every write, as whisper.py does with `LOCK = True`
    /// (carbon's `WHISPER_LOCK_WRITES`). Default: `false`.
    pub fn lock(&mut self, yes: bool) -> &mut OpenOptions {
        self.lock = yes;
        self
    }

    /// `fsync` after every write, as whisper.py's `AUTOFLUSH` (carbon's `WHISPER_AUTOFLUSH`).
    /// Default: `false`.
    pub fn autoflush(&mut self, yes: bool) -> &mut OpenOptions {
        self.autoflush = yes;
        self
    }

    /// Read through a shared read-only memory map instead of `pread`. Pays off for handles
    /// kept open for many reads, or for reading whole archives; for one short fetch the map
    /// costs more than it saves. Only for files nobody truncates in place. Default: `false`.
    pub fn mmap(&mut self, yes: bool) -> &mut OpenOptions {
        self.mmap = yes;
        self
    }

    /// Advise the kernel that access is random (`posix_fadvise(RANDOM)`), as whisper.py's
    /// `FADVISE_RANDOM` (carbon's `WHISPER_FADVISE_RANDOM`). Default: `false`.
    pub fn fadvise_random(&mut self, yes: bool) -> &mut OpenOptions {
        self.fadvise_random = yes;
        self
    }

    /// Open with `O_NOATIME`, so that reading the file does not update its access time.
    /// Default: `false` (whisper.py's behaviour).
    ///
    /// Under `relatime` (Linux's default) a read updates the access time whenever it is older
    /// than the last modification, which after every write of a writer that reads before it
    /// writes (every whisper update does) means an inode update and a journal entry per write.
    /// Nothing in Graphite uses whisper files' access times.
    ///
    /// Only the file's owner (or a process with `CAP_FOWNER`) may use the flag; when the open
    /// fails with `EPERM`, it is retried once without it, and then the flag is not asked for
    /// in the next 1,024 opens of the process (so a writer that owns none of its files pays
    /// for a second `open` once every 1,024 opens, not every time).
    pub fn noatime(&mut self, yes: bool) -> &mut OpenOptions {
        self.noatime = yes;
        self
    }

    /// Share headers and archive bases with other opens through `cache` (see [`HeaderCache`]
    /// for what is cached and why it is safe). Default: `None`.
    ///
    /// The open then does one `fstat` and, when the cache knows the file, reads nothing; the
    /// handle uses its header, read or cached, for up to the cache's TTL after it was last
    /// read, instead of reading it again at every operation as whisper.py does. A change to
    /// the aggregation method or xFilesFactor made by another process is seen within the TTL;
    /// one made through any handle of the same cache, at the next operation. Meant for
    /// handles opened for one write, as carbon's writer does; the bytes written are the same.
    pub fn header_cache(&mut self, cache: Option<&Arc<HeaderCache>>) -> &mut OpenOptions {
        self.header_cache = cache.cloned();
        self
    }

    /// Opens `path` and reads its header (or takes it from the header cache).
    ///
    /// # Errors
    ///
    /// [`Error::Io`] if the file cannot be opened, [`Error::Corrupt`] or [`Error::Unsupported`]
    /// if it is not a whisper file this crate reads.
    pub fn open(&self, path: impl AsRef<Path>) -> Result<Whisper<FileStorage>> {
        let path = path.as_ref();
        let file = open_file(path, self.write, self.noatime).map_err(|e| Error::io(path, e))?;
        if self.fadvise_random {
            crate::create::fadvise_random(&file);
        }
        let storage = FileStorage::new(file, self.mmap).map_err(|e| Error::io(path, e))?;
        let mut w = match &self.header_cache {
            Some(cache) => Whisper::open_cached(storage, path, cache)?,
            None => Whisper::from_storage(storage, path)?,
        };
        w.lock = self.lock;
        w.autoflush = self.autoflush;
        Ok(w)
    }
}

/// Opens left in which `O_NOATIME` is not asked for, after an open refused it.
static NOATIME_REFUSED: AtomicU32 = AtomicU32::new(0);

/// Opens that go without `O_NOATIME` after it was refused once.
const NOATIME_BACKOFF_OPENS: u32 = 1024;

/// Opens `path` for reading (and writing), with `O_NOATIME` when asked and allowed.
fn open_file(path: &Path, write: bool, noatime: bool) -> io::Result<fs::File> {
    open_maybe_noatime(noatime, &NOATIME_REFUSED, |noatime| {
        let mut options = fs::OpenOptions::new();
        options.read(true).write(write);
        if noatime {
            options.custom_flags(libc::O_NOATIME);
        }
        options.open(path)
    })
}

/// Calls `open(true)` (open with `O_NOATIME`) when `noatime` is asked for and `refused` does
/// not say to skip it; on `EPERM` (not the file's owner), calls `open(false)` and, if that
/// works, skips the flag for the next [`NOATIME_BACKOFF_OPENS`] calls.
///
/// The counter is read and written without synchronisation beyond its own atomicity: two
/// threads racing on it only change when the flag is next tried.
fn open_maybe_noatime<T>(
    noatime: bool,
    refused: &AtomicU32,
    mut open: impl FnMut(bool) -> io::Result<T>,
) -> io::Result<T> {
    if !noatime {
        return open(false);
    }
    let skip = refused.load(Ordering::Relaxed);
    if skip > 0 {
        refused.store(skip - 1, Ordering::Relaxed);
        return open(false);
    }
    match open(true) {
        Err(e) if e.raw_os_error() == Some(libc::EPERM) => {
            let opened = open(false)?;
            refused.store(NOATIME_BACKOFF_OPENS, Ordering::Relaxed);
            Ok(opened)
        }
        other => other,
    }
}

/// A handle's tie to the [`HeaderCache`] it was opened with.
#[derive(Debug)]
pub(crate) struct CacheLink {
    cache: Arc<HeaderCache>,
    /// The open file's identity.
    id: FileId,
    /// The file's size when the header was last read or found in the cache.
    size: u64,
    /// Until when (the cache's clock) the header may be used without reading it again.
    trusted_until: u64,
    /// The cache's generation when the header was obtained: the header is trusted only while
    /// it is unchanged (no header written through another handle of the cache since).
    generation: u64,
    /// When the header was read from disk (or written by us), if the cache has not been told.
    unstored: Option<u64>,
    /// This handle wrote the header: the cache must store it and tell the other handles.
    wrote_header: bool,
    /// A base became known (or 0 again) that the cache may not have.
    new_bases: bool,
    /// This handle wrote interval 0 into slot 0 of an archive whose base was not 0, making
    /// it look empty again: handles holding the old base must drop it.
    zeroed_base: bool,
}

impl CacheLink {
    /// A link for a header known to be the one on disk at time `stamp`, obtained when the
    /// cache's generation was `generation`.
    fn new(
        cache: &Arc<HeaderCache>,
        id: FileId,
        size: u64,
        stamp: u64,
        generation: u64,
    ) -> CacheLink {
        CacheLink {
            cache: Arc::clone(cache),
            id,
            size,
            trusted_until: stamp.saturating_add(cache.ttl_ms()),
            generation,
            unstored: None,
            wrote_header: false,
            new_bases: false,
            zeroed_base: false,
        }
    }

    /// The header was read from disk, or written by us, at `stamp`, the cache's generation
    /// being `generation` before that.
    fn header_known_at(&mut self, stamp: u64, generation: u64) {
        self.trusted_until = stamp.saturating_add(self.cache.ttl_ms());
        self.generation = generation;
        self.unstored = Some(stamp);
    }

    /// Whether the header may be used without reading it, at `now`.
    fn trusts_header(&self, now: u64) -> bool {
        now < self.trusted_until && self.cache.generation() == self.generation
    }
}

/// One consecutive run of points to write into an archive (whisper.py's "packed string").
#[derive(Clone, Copy, Debug)]
struct Run {
    /// The interval the run is placed at.
    start: i64,
    /// Index of its first point in `Whisper::packed` (in points, not bytes).
    first: usize,
    /// Number of points.
    len: usize,
}

/// Values read from one archive: either all unknown (the archive was never written), or decoded.
enum ArchiveValues {
    /// The archive's slot 0 is empty, so whisper.py returns this many `None`s.
    Unwritten(u64),
    /// Values decoded from the slots that were read.
    Read,
}

/// An open whisper file.
///
/// Keeps the file open (and its scratch buffers allocated) across many operations. Every method
/// that depends on the current time takes `now` (seconds since the epoch) so callers and tests
/// control it; [`crate::now`] gives the current time as whisper.py computes it.
///
/// ```
/// use whisper::{CreateOptions, Retention};
/// # let dir = tempfile::tempdir()?;
/// # let path = dir.path().join("load.wsp");
/// let mut db = CreateOptions::new().create(&path, &[Retention::new(60, 1440)])?;
/// let now = 1_700_000_100;
/// db.update_many(&[(now - 120, 1.5), (now - 60, 2.5)], now)?;
/// let series = db.fetch(now - 300, None, now)?.expect("in range");
/// assert_eq!(series.step, 60);
/// assert_eq!(series.values, [None, None, Some(1.5), Some(2.5), None]);
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Debug)]
pub struct Whisper<S: Storage = FileStorage> {
    storage: S,
    /// Used in errors; for in-memory storage, a name the caller chose.
    path: PathBuf,
    header: Header,
    /// The header's bytes as last read, to notice changes made by other processes cheaply.
    header_bytes: Vec<u8>,
    lock: bool,
    autoflush: bool,
    /// Read buffer for `pread`s, reused so the hot paths do not allocate.
    scratch: storage::ReadBuf,
    /// Encoded points waiting to be written.
    packed: Vec<u8>,
    /// Points of the current `update_many`, newest first.
    points: Vec<(i64, f64)>,
    /// Runs of `packed` of the current archive write.
    runs: Vec<Run>,
    /// Values decoded by the last archive read.
    values: Vec<Option<f64>>,
    /// The header was read just now by the open: the first operation need not read it again.
    /// Only set for one-shot use (the path functions), never for a handle that may sit idle
    /// while other processes change the file.
    header_fresh: bool,
    /// Slot-0 timestamps (`(archive offset, timestamp)`) read or written, so each archive's
    /// base is read once, not on every operation.
    ///
    /// Whisper only ever overwrites slot 0 of a written archive with a timestamp a whole number
    /// of laps (`seconds_per_point * points`) away, and the slot of every interval depends only
    /// on the base modulo a lap, so a non-zero base stays right even when another process
    /// writes (unless it writes interval 0, possible only with a `now` near 1970: see
    /// `cache.rs`). A zero base ("never written") is forgotten when an operation starts, and
    /// all of them when the header changes.
    bases: Vec<(u32, u32)>,
    /// Raw bytes of the finer archive's slots read for one propagation level.
    window: Vec<u8>,
    /// The slot-0 timestamp read along with the header at open: `(archive offset, timestamp)`.
    opening_base: Option<(u32, u32)>,
    /// Coarser intervals to propagate at one level.
    intervals: Vec<u32>,
    /// The header cache the handle was opened with, if any.
    cache: Option<CacheLink>,
    /// Per interval of `intervals`: the aggregate to write, or `None`.
    results: Vec<(u32, Option<f64>)>,
    /// Copy of the header's archive list for the current operation.
    archive_buf: Vec<ArchiveInfo>,
    /// `(archive index, start, end)` groups of the current `update_many`.
    groups: Vec<(usize, usize, usize)>,
}

impl Whisper<FileStorage> {
    /// The open of a handle with a header cache: one `fstat`, then the cached header and
    /// bases when the cache has them for this file and size, else the header read from disk.
    ///
    /// Either way the header is trusted until the TTL since it was read has passed, so the
    /// first operation does not read it again (without a cache it would, see `header_fresh`).
    fn open_cached(storage: FileStorage, path: &Path, cache: &Arc<HeaderCache>) -> Result<Whisper> {
        let meta = storage.file().metadata().map_err(|e| Error::io(path, e))?;
        let size = meta.len();
        let Some(id) = FileId::of(&meta) else {
            // No birth time: an inode number reused by another file could not be told apart.
            let read = read_header_sized(&storage, path, size)?;
            let mut w = Whisper::with_header(storage, path.to_path_buf(), read.header, read.bytes);
            w.opening_base = read.base;
            return Ok(w);
        };
        let now = cache.now_ms();
        let generation = cache.generation();
        let mut bases = Vec::new();
        if let Some((header, stamp)) = cache.load(id, size, now, &mut bases) {
            // The header's bytes are encoded from it if an operation needs them.
            let mut w = Whisper::with_header(storage, path.to_path_buf(), header, Vec::new());
            w.bases = bases;
            w.cache = Some(CacheLink::new(cache, id, size, stamp, generation));
            return Ok(w);
        }
        let read = read_header_sized(&storage, path, size)?;
        let mut w = Whisper::with_header(storage, path.to_path_buf(), read.header, read.bytes);
        let mut link = CacheLink::new(cache, id, size, now, generation);
        link.header_known_at(now, generation);
        w.cache = Some(link);
        // Only a written archive's base stays right until the first operation (an empty one
        // may be written by another process meanwhile; it is read again when needed).
        if let Some((offset, base)) = read.base
            && base != 0
        {
            w.remember_base(offset, base);
        }
        Ok(w)
    }

    /// Ties a file this handle just created to `cache`, recording its header.
    pub(crate) fn link_new_file(&mut self, cache: &Arc<HeaderCache>) {
        // Without its identity the file is simply not cached; the create itself succeeded.
        let Ok(meta) = self.storage.file().metadata() else { return };
        let Some(id) = FileId::of(&meta) else { return };
        let now = cache.now_ms();
        let generation = cache.generation();
        let mut link = CacheLink::new(cache, id, meta.len(), now, generation);
        link.header_known_at(now, generation);
        self.cache = Some(link);
        self.publish_to_cache();
    }
}

impl<S: Storage> Whisper<S> {
    /// Reads the header from `storage`; `path` names the file in errors.
    ///
    /// # Errors
    ///
    /// [`Error::Corrupt`] or [`Error::Unsupported`] when the header is not valid whisper.
    pub fn from_storage(storage: S, path: impl Into<PathBuf>) -> Result<Whisper<S>> {
        let path = path.into();
        let read = read_header(&storage, &path)?;
        let mut w = Whisper::with_header(storage, path, read.header, read.bytes);
        w.opening_base = read.base;
        Ok(w)
    }

    pub(crate) fn with_header(
        storage: S,
        path: PathBuf,
        header: Header,
        header_bytes: Vec<u8>,
    ) -> Whisper<S> {
        Whisper {
            storage,
            path,
            header,
            header_bytes,
            lock: false,
            autoflush: false,
            scratch: storage::ReadBuf::new(),
            packed: Vec::new(),
            points: Vec::new(),
            runs: Vec::new(),
            values: Vec::new(),
            header_fresh: false,
            opening_base: None,
            bases: Vec::new(),
            window: Vec::new(),
            intervals: Vec::new(),
            cache: None,
            results: Vec::new(),
            archive_buf: Vec::new(),
            groups: Vec::new(),
        }
    }

    /// Marks the header as just written by this handle, for the header cache.
    fn header_written(&mut self) {
        if let Some(link) = &mut self.cache {
            let now = link.cache.now_ms();
            let generation = link.cache.generation();
            link.header_known_at(now, generation);
            link.wrote_header = true;
        }
    }

    /// Tells the header cache what this handle learned: its header if it read or wrote it
    /// since, else the bases it found. Called when an operation succeeds.
    ///
    /// A header this handle read is stored only if no header was written through the cache
    /// since (it could be older than that write). A header it wrote is stored, and then the
    /// generation moves on, so that handles holding the old header read it again, and those
    /// that load the entry after that get the new one. The same goes for a base this handle
    /// set back to 0.
    fn publish_to_cache(&mut self) {
        let Some(link) = &mut self.cache else { return };
        let wrote_header = std::mem::take(&mut link.wrote_header);
        let zeroed_base = std::mem::take(&mut link.zeroed_base);
        let new_bases = std::mem::take(&mut link.new_bases);
        match link.unstored.take() {
            Some(stamp) if wrote_header || link.cache.generation() == link.generation => {
                link.cache.store(link.id, link.size, &self.header, &self.bases, stamp);
            }
            Some(_) => link.cache.learn_bases(link.id, link.size, &self.header, &self.bases),
            None if new_bases => {
                link.cache.learn_bases(link.id, link.size, &self.header, &self.bases);
            }
            None => {}
        }
        if wrote_header || zeroed_base {
            // Our header stays trusted only if nobody else moved the generation meanwhile
            // (another handle may have written the header after us).
            let generation = link.cache.bump_generation();
            if generation == link.generation.wrapping_add(1) {
                link.generation = generation;
            }
        }
    }

    /// After an operation: records what it learned in the header cache, or, when it failed
    /// reading or writing the file, drops the cached entry and reads the header next time.
    pub(crate) fn finish_cached<T>(&mut self, result: &Result<T>) {
        if self.cache.is_none() {
            return;
        }
        match result {
            Err(Error::Io { .. } | Error::Corrupt { .. } | Error::Unsupported { .. }) => {
                if let Some(link) = &mut self.cache {
                    link.trusted_until = 0;
                    link.unstored = None;
                    link.wrote_header = false;
                    link.new_bases = false;
                    link.zeroed_base = false;
                    link.cache.remove(link.id);
                }
            }
            _ => self.publish_to_cache(),
        }
    }

    /// Lets the first operation use the header (and base) read by the open, for a handle
    /// that is opened, used once and closed at once.
    pub(crate) fn first_use_follows_open(&mut self) {
        self.header_fresh = true;
    }

    /// The header as last read.
    pub fn header(&self) -> &Header {
        &self.header
    }

    /// Re-reads the header and returns it.
    ///
    /// # Errors
    ///
    /// As [`OpenOptions::open`].
    pub fn info(&mut self) -> Result<&Header> {
        let result = self.refresh_header();
        self.finish_cached(&result);
        result?;
        Ok(&self.header)
    }

    /// The file's path (or the name given for in-memory storage).
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The storage behind the handle.
    pub fn storage(&self) -> &S {
        &self.storage
    }

    /// Gives the storage back.
    pub fn into_storage(self) -> S {
        self.storage
    }

    /// Sets whether writes take an exclusive `flock` (see [`OpenOptions::lock`]).
    pub fn set_lock(&mut self, yes: bool) {
        self.lock = yes;
    }

    /// Sets whether writes are followed by `fsync` (see [`OpenOptions::autoflush`]).
    pub fn set_autoflush(&mut self, yes: bool) {
        self.autoflush = yes;
    }

    fn io_err(&self, e: std::io::Error) -> Error {
        Error::io(&self.path, e)
    }

    /// Re-reads the header; only decodes it again when its bytes changed.
    ///
    /// In files whisper writes, the first archive starts right after the header; the same
    /// read then also fetches that archive's slot-0 timestamp, saving a read later.
    ///
    /// With a header cache, the header is not read while the cache's TTL since it was last
    /// read has not passed.
    fn refresh_header(&mut self) -> Result<()> {
        // An archive seen empty may have been written by another process since.
        self.bases.retain(|&(_, base)| base != 0);
        if std::mem::take(&mut self.header_fresh) {
            if let Some((offset, base)) = self.opening_base.take() {
                self.remember_base(offset, base);
            }
            return Ok(());
        }
        let mut known = None;
        if let Some(link) = &self.cache {
            let now = link.cache.now_ms();
            if link.trusts_header(now) {
                return Ok(());
            }
            let generation = link.cache.generation();
            if generation != link.generation {
                // A header was written through the cache, or it was cleared: start afresh.
                self.bases.clear();
            }
            known = Some((now, generation));
        }
        self.read_header_again()?;
        if let (Some(link), Some((now, generation))) = (&mut self.cache, known) {
            link.header_known_at(now, generation);
        }
        Ok(())
    }

    /// The header's bytes, encoded from the header when it came from the cache. Decoding
    /// keeps every field's bits (the method's code, the xFilesFactor's `f32` bits, the archive
    /// count), so this gives back the bytes read.
    fn header_bytes(&mut self) -> &mut Vec<u8> {
        if self.header_bytes.is_empty() {
            self.header_bytes = self.header.encode();
        }
        &mut self.header_bytes
    }

    /// The uncached part of [`refresh_header`](Self::refresh_header).
    fn read_header_again(&mut self) -> Result<()> {
        let len = self.header_bytes().len();
        let first = first_archive_after_header(&self.header);
        let want = len + if first.is_some() { 4 } else { 0 };
        let bytes = storage::read_at(&self.storage, 0, want, &mut self.scratch)
            .map_err(|e| Error::io(&self.path, e))?;
        if bytes.get(..len) == Some(self.header_bytes.as_slice()) {
            if let (Some(offset), Some(base)) = (first, bytes.get(len..len + 4)) {
                let base = be_u32(base);
                self.remember_base(offset, base);
            }
            return Ok(());
        }
        self.bases.clear();
        let read = read_header(&self.storage, &self.path)?;
        self.header = read.header;
        self.header_bytes = read.bytes;
        if let Some(link) = &mut self.cache {
            link.size = read.len;
        }
        Ok(())
    }

    /// Runs a write operation the way whisper.py does: lock (if asked), re-read the header,
    /// write, fsync (if asked). The lock is released when the operation ends, so other
    /// processes can write between our operations.
    fn write_op<T>(&mut self, op: impl FnOnce(&mut Self) -> Result<T>) -> Result<T> {
        if self.lock {
            self.storage.lock().map_err(|e| Error::io(&self.path, e))?;
        }
        let mut result = self.refresh_header().and_then(|()| op(self));
        if result.is_ok()
            && self.autoflush
            && let Err(e) = self.storage.sync()
        {
            result = Err(self.io_err(e));
        }
        self.finish_cached(&result);
        if self.lock {
            let unlocked = self.storage.unlock().map_err(|e| Error::io(&self.path, e));
            if result.is_ok() {
                unlocked?;
            }
        }
        self.release_large_buffers();
        result
    }

    /// Frees the scratch buffers a large write grew (see [`KEEP_WRITE_BUFFER_BYTES`]).
    fn release_large_buffers(&mut self) {
        let limit = KEEP_WRITE_BUFFER_BYTES;
        release_if_large(&mut self.scratch, limit);
        release_if_large(&mut self.packed, limit);
        release_if_large(&mut self.points, limit);
        release_if_large(&mut self.runs, limit);
        release_if_large(&mut self.values, limit);
        release_if_large(&mut self.window, limit);
        release_if_large(&mut self.intervals, limit);
        release_if_large(&mut self.results, limit);
    }

    // ---- small I/O helpers ----------------------------------------------------------------

    /// The timestamp stored in slot 0 of `a`: 0 means the archive was never written.
    ///
    /// Read once; later calls use what was read or written since (see `bases`).
    fn base_of(&mut self, a: &ArchiveInfo) -> Result<u32> {
        if let Some(&(_, base)) = self.bases.iter().find(|(off, _)| *off == a.offset()) {
            return Ok(base);
        }
        let bytes = storage::read_at(&self.storage, u64::from(a.offset()), 4, &mut self.scratch)
            .map_err(|e| Error::io(&self.path, e))?;
        let base = be_u32(bytes);
        self.bases.push((a.offset(), base));
        if base != 0
            && let Some(link) = &mut self.cache
        {
            link.new_bases = true;
        }
        Ok(base)
    }

    /// Records that slot 0 of `a` now holds timestamp `ts`.
    fn note_base(&mut self, a: &ArchiveInfo, ts: u32) {
        self.remember_base(a.offset(), ts);
    }

    fn remember_base(&mut self, offset: u32, ts: u32) {
        let before = match self.bases.iter_mut().find(|(off, _)| *off == offset) {
            Some(entry) => std::mem::replace(&mut entry.1, ts),
            None => {
                self.bases.push((offset, ts));
                0
            }
        };
        // The cache needs to hear of a base becoming known, and of one becoming 0 again (slot
        // 0 written with interval 0: whisper then takes the archive for empty); a move by whole
        // laps changes no slot.
        if (before == 0) != (ts == 0)
            && let Some(link) = &mut self.cache
        {
            link.new_bases = true;
            link.zeroed_base |= ts == 0;
        }
    }

    fn write_point(&mut self, a: &ArchiveInfo, slot: u64, ts: i64, value: f64) -> Result<()> {
        let mut buf = [0u8; POINT_SIZE];
        encode_point(&mut buf, ts, value);
        self.storage.write_all_at(&buf, a.slot_offset(slot)).map_err(|e| self.io_err(e))?;
        if slot == 0 {
            self.note_base(a, ts as u32);
        }
        Ok(())
    }

    /// Reads `count` slots of `a` starting at slot `first`, wrapping past the end, and appends
    /// to `out` the value of each slot whose timestamp is `expected_start + i * step` (`None`
    /// for the others).
    fn read_slots(
        &mut self,
        a: &ArchiveInfo,
        first: u64,
        count: u64,
        expected_start: i64,
        step: i64,
        out: &mut Vec<Option<f64>>,
    ) -> Result<()> {
        let points = u64::from(a.points());
        let head = count.min(points - first);
        let tail = count - head;
        out.reserve(count as usize);
        let path = &self.path;
        let err = |e| Error::io(path, e);
        let bytes = storage::read_at(
            &self.storage,
            a.slot_offset(first),
            (head as usize) * POINT_SIZE,
            &mut self.scratch,
        )
        .map_err(err)?;
        decode_values(bytes, expected_start, step, out);
        if tail > 0 {
            let bytes = storage::read_at(
                &self.storage,
                a.slot_offset(0),
                (tail as usize) * POINT_SIZE,
                &mut self.scratch,
            )
            .map_err(err)?;
            decode_values(bytes, expected_start + head as i64 * step, step, out);
        }
        Ok(())
    }

    // ---- update ---------------------------------------------------------------------------

    /// Writes one point, as whisper.py's `update(path, value, timestamp, now)`.
    ///
    /// `timestamp` defaults to `now`. The point goes to the finest archive that covers it and
    /// propagates to the coarser ones while each has enough known values.
    ///
    /// # Errors
    ///
    /// [`Error::TimestampNotCovered`] for a future timestamp or one as old as the file's
    /// retention; I/O errors.
    pub fn update(&mut self, value: f64, timestamp: Option<i64>, now: i64) -> Result<()> {
        let now = clamp_time(now);
        let timestamp = clamp_time(timestamp.unwrap_or(now));
        self.write_op(|w| w.update_locked(value, timestamp, now))
    }

    fn update_locked(&mut self, value: f64, timestamp: i64, now: i64) -> Result<()> {
        let diff = now - timestamp;
        if !(diff < i64::from(self.header.max_retention()) && diff >= 0) {
            return Err(Error::TimestampNotCovered { timestamp });
        }
        let archives = self.header.archives().to_vec();
        let index = archives
            .iter()
            .position(|a| retention_i64(a) >= diff)
            .ok_or(Error::TimestampNotCovered { timestamp })?;
        let archive = archives[index];
        let interval = timestamp - timestamp.rem_euclid(i64::from(archive.seconds_per_point()));
        check_timestamp(interval)?;
        let base = self.base_of(&archive)?;
        let slot = if base == 0 { 0 } else { slot_of(&archive, i64::from(base), interval) };
        self.write_point(&archive, slot, interval, value)?;

        let mut higher = archive;
        for lower in &archives[index + 1..] {
            let lower_step = i64::from(lower.seconds_per_point());
            // Checked above: the interval fits a u32, so its coarser interval does too.
            let key = (interval - interval.rem_euclid(lower_step)) as u32;
            self.intervals.clear();
            self.intervals.push(key);
            if !self.propagate_level(&higher, lower)? {
                break;
            }
            higher = *lower;
        }
        Ok(())
    }

    /// Writes many points, as whisper.py's `update_many(path, points, now)` (carbon's only
    /// write path).
    ///
    /// Points are sorted newest first; each goes to the finest archive whose retention covers
    /// its age, and points older than the last archive are dropped. Future points go to the
    /// finest archive (whisper.py does not reject them). Within one interval the point with
    /// the latest timestamp wins, and of two points with the same timestamp the first given
    /// wins. Each archive written then propagates to the coarser ones.
    ///
    /// Differences from whisper.py, both where it would fail: timestamps that do not fit an
    /// unsigned 32-bit field are refused before anything is written (whisper.py raises half-way),
    /// and a run of consecutive future points longer than the archive wraps around the ring
    /// instead of spilling into the next archive.
    ///
    /// # Errors
    ///
    /// [`Error::TimestampOutOfRange`]; I/O errors.
    pub fn update_many(&mut self, points: &[(i64, f64)], now: i64) -> Result<()> {
        if points.is_empty() {
            return Ok(());
        }
        let now = clamp_time(now);
        let mut sorted = std::mem::take(&mut self.points);
        sorted.clear();
        if points.windows(2).all(|w| w[0].0 < w[1].0) {
            // Strictly increasing (the usual case): newest first is just the reverse.
            sorted.extend(points.iter().rev().map(|&(t, v)| (clamp_time(t), v)));
        } else {
            sorted.extend(points.iter().map(|&(t, v)| (clamp_time(t), v)));
            // Newest first; a stable sort keeps equal timestamps in input order, as Python's
            // `sort(reverse=True)` does.
            sorted.sort_by_key(|p| std::cmp::Reverse(p.0));
        }
        let result = self.write_op(|w| w.update_many_locked(&sorted, now));
        self.points = sorted;
        result
    }

    fn update_many_locked(&mut self, sorted: &[(i64, f64)], now: i64) -> Result<()> {
        let mut archives = std::mem::take(&mut self.archive_buf);
        archives.clear();
        archives.extend_from_slice(self.header.archives());
        let mut groups = std::mem::take(&mut self.groups);
        groups.clear();
        let result = self.write_groups(sorted, now, &archives, &mut groups);
        self.archive_buf = archives;
        self.groups = groups;
        result
    }

    fn write_groups(
        &mut self,
        sorted: &[(i64, f64)],
        now: i64,
        archives: &[ArchiveInfo],
        groups: &mut Vec<(usize, usize, usize)>,
    ) -> Result<()> {
        // Split the points (newest first) into one group per archive, as whisper.py's walk
        // does: a point goes to the current archive while its age fits the retention.
        let mut index = 0;
        let mut start = 0;
        let mut kept = sorted.len();
        'points: for (k, &(t, _)) in sorted.iter().enumerate() {
            let age = now - t;
            while retention_i64(&archives[index]) < age {
                if start < k {
                    groups.push((index, start, k));
                }
                start = k;
                index += 1;
                if index == archives.len() {
                    kept = k;
                    break 'points;
                }
            }
        }
        if index < archives.len() && start < kept {
            groups.push((index, start, kept));
        }
        // Refuse timestamps that cannot be stored before writing anything.
        if let Some(&(t, _)) = sorted[..kept].iter().find(|(t, _)| !timestamp_fits(*t)) {
            return Err(Error::TimestampOutOfRange { timestamp: t });
        }
        for &(index, start, end) in groups.iter() {
            // Chronological order; equal timestamps end up in reverse input order.
            let group = sorted[start..end].iter().rev().copied();
            self.archive_update_many(archives, index, group)?;
        }
        Ok(())
    }

    /// whisper.py's `__archive_update_many`: writes chronologically ordered points into
    /// archive `index` and propagates them.
    pub(crate) fn archive_update_many<I>(
        &mut self,
        archives: &[ArchiveInfo],
        index: usize,
        points: I,
    ) -> Result<()>
    where
        I: Iterator<Item = (i64, f64)> + Clone,
    {
        let archive = archives[index];
        let step = i64::from(archive.seconds_per_point());
        // The caller checked every timestamp fits a u32.
        let mut aligner = Aligner::new(archive.seconds_per_point());

        // Build runs of consecutive intervals; of equal intervals in a row the last one wins.
        self.packed.clear();
        self.runs.clear();
        let mut previous: Option<i64> = None;
        let mut run_first = 0usize;
        let mut count = 0usize;
        let mut iter = points.clone().map(|(t, v)| (aligner.align(t), v)).peekable();
        while let Some((interval, value)) = iter.next() {
            if iter.peek().is_some_and(|&(next, _)| next == interval) {
                continue;
            }
            // whisper.py tests `not previousInterval`, so after interval 0 every point joins
            // the run; we reproduce that.
            let contiguous = match previous {
                None | Some(0) => true,
                Some(p) => interval == p + step,
            };
            if !contiguous {
                let p = previous.unwrap_or(0);
                let len = count - run_first;
                self.runs.push(Run { start: p - step * (len as i64 - 1), first: run_first, len });
                run_first = count;
            }
            self.packed.extend_from_slice(&point_bytes(interval, value));
            count += 1;
            previous = Some(interval);
        }
        if count > run_first {
            let p = previous.unwrap_or(0);
            let len = count - run_first;
            self.runs.push(Run { start: p - step * (len as i64 - 1), first: run_first, len });
        }
        let Some(first_run) = self.runs.first().copied() else {
            return Ok(());
        };

        let mut base = i64::from(self.base_of(&archive)?);
        if base == 0 {
            base = first_run.start;
        }
        let runs = std::mem::take(&mut self.runs);
        for run in &runs {
            let slot = slot_of(&archive, base, run.start);
            self.write_wrapped(&archive, slot, run.first, run.len)?;
        }
        self.runs = runs;

        // Propagate every coarser archive in turn, while any interval propagates.
        let mut higher = archive;
        for lower in archives.iter().filter(|a| a.seconds_per_point() > archive.seconds_per_point())
        {
            // The coarser intervals in order of first appearance (duplicates next to each
            // other dropped; the points are normally chronological, so this is sorted).
            self.intervals.clear();
            let mut fine = Aligner::new(archive.seconds_per_point());
            let mut coarse = Aligner::new(lower.seconds_per_point());
            for (t, _) in points.clone() {
                // As whisper.py: the coarse interval of the fine-aligned timestamp. Checked by
                // the caller: every timestamp, so every aligned one, fits a u32.
                let key = coarse.align(fine.align(t)) as u32;
                if self.intervals.last() != Some(&key) {
                    self.intervals.push(key);
                }
            }
            if !self.propagate_level(&higher, lower)? {
                break;
            }
            higher = *lower;
        }
        Ok(())
    }

    /// Propagates every interval of `self.intervals` from `higher` into `lower`, as whisper.py
    /// does in `set(lowerIntervals)` order; returns whether any of them was written.
    ///
    /// The common case takes a fast path with the same result: one read of the finer slots
    /// for all intervals, and the coarser points written in as few writes as possible. Write
    /// order only matters on disk when the coarser archive is empty (the first interval
    /// written becomes slot 0: we pick the one whisper.py would, from CPython's set order) or
    /// when two intervals share a slot (a range longer than the archive): then, and for any
    /// file whose layout is not what whisper itself writes, each interval is propagated on its
    /// own in set order, exactly as whisper.py does.
    fn propagate_level(&mut self, higher: &ArchiveInfo, lower: &ArchiveInfo) -> Result<bool> {
        if let Some(written) = self.propagate_level_fast(higher, lower)? {
            return Ok(written);
        }
        let order = PySet::from_keys(self.intervals.iter().copied());
        let mut any = false;
        for interval in order.iter() {
            if self.propagate(i64::from(interval), higher, lower)? {
                any = true;
            }
        }
        Ok(any)
    }

    /// The fast path of [`propagate_level`](Self::propagate_level); `None` when it does not
    /// apply and the exact path must run.
    fn propagate_level_fast(
        &mut self,
        higher: &ArchiveInfo,
        lower: &ArchiveInfo,
    ) -> Result<Option<bool>> {
        let (Some(&first), Some(&last)) = (self.intervals.first(), self.intervals.last()) else {
            return Ok(Some(false));
        };
        let hs = i64::from(higher.seconds_per_point());
        let ls = i64::from(lower.seconds_per_point());
        let hp = i64::from(higher.points());
        let (first, last) = (i64::from(first), i64::from(last));
        let sorted = self.intervals.windows(2).all(|w| w[0] < w[1]);
        // Layouts whisper writes: the finer step divides the coarser one and the finer archive
        // holds at least one coarser interval. Interval 0 is whisper.py's "empty" marker.
        if !sorted
            || ls % hs != 0
            || ls / hs > hp
            || first == 0
            || last - first >= retention_i64(lower)
        {
            return Ok(None);
        }
        let higher_base = self.base_of(higher)?;
        if higher_base == 0 {
            return Ok(None);
        }
        let wanted = ls / hs;
        // Read every finer slot the intervals need, once: from `first` to the end of `last`,
        // at most one whole ring.
        let span = ((last - first) / hs + wanted).min(hp);
        let start = slot_of(higher, i64::from(higher_base), first);
        let head = (span as u64).min(u64::from(higher.points()) - start);
        self.window.clear();
        {
            let path = &self.path;
            let bytes = storage::read_at(
                &self.storage,
                higher.slot_offset(start),
                head as usize * POINT_SIZE,
                &mut self.scratch,
            )
            .map_err(|e| Error::io(path, e))?;
            self.window.extend_from_slice(bytes);
            if (head as i64) < span {
                let bytes = storage::read_at(
                    &self.storage,
                    higher.slot_offset(0),
                    (span as usize - head as usize) * POINT_SIZE,
                    &mut self.scratch,
                )
                .map_err(|e| Error::io(path, e))?;
                self.window.extend_from_slice(bytes);
            }
        }

        let xff = f64::from(self.header.x_files_factor());
        let method = self.header.aggregation_method();
        let window = &self.window;
        let slots = &mut self.values;
        let whole_ring = span == hp;
        self.results.clear();
        let mut any = false;
        for &interval in &self.intervals {
            let l = i64::from(interval);
            let k = (l - first) / hs;
            slots.clear();
            let mut known = 0usize;
            for j in 0..wanted {
                let i = if whole_ring { (k + j) % hp } else { k + j } as usize;
                let (ts, value) = decode_point(&window[i * POINT_SIZE..(i + 1) * POINT_SIZE]);
                let value = (i64::from(ts) == l + j * hs).then_some(value);
                known += usize::from(value.is_some());
                slots.push(value);
            }
            let value = if known == 0 || (known as f64 / wanted as f64) < xff {
                None
            } else {
                method.aggregate(slots)
            };
            any |= value.is_some();
            self.results.push((interval, value));
        }
        if !any {
            return Ok(Some(false));
        }

        let mut lower_base = i64::from(self.base_of(lower)?);
        if lower_base == 0 {
            // whisper.py writes the intervals in set order; the first one written lands in
            // slot 0 and places all the others.
            let written = |key: u32| self.results.iter().any(|&(i, v)| i == key && v.is_some());
            let order = PySet::from_keys(self.intervals.iter().copied());
            lower_base = order.iter().find(|&key| written(key)).map_or(0, i64::from);
        }
        // No two intervals share a slot, so the writes commute: write runs of consecutive
        // slots with one call each.
        let lp = u64::from(lower.points());
        self.packed.clear();
        let mut run_slot = 0u64;
        let mut next_slot = None;
        let results = std::mem::take(&mut self.results);
        for &(interval, value) in &results {
            let Some(value) = value else {
                self.flush_packed(lower, run_slot)?;
                next_slot = None;
                continue;
            };
            let slot = slot_of(lower, lower_base, i64::from(interval));
            if next_slot != Some(slot) {
                self.flush_packed(lower, run_slot)?;
                run_slot = slot;
            }
            self.packed.extend_from_slice(&point_bytes(i64::from(interval), value));
            next_slot = Some(slot + 1).filter(|&s| s < lp);
        }
        self.flush_packed(lower, run_slot)?;
        self.results = results;
        Ok(Some(true))
    }

    /// Writes `self.packed` (consecutive points) into `a` from `slot`, then empties it.
    fn flush_packed(&mut self, a: &ArchiveInfo, slot: u64) -> Result<()> {
        if self.packed.is_empty() {
            return Ok(());
        }
        self.storage
            .write_all_at(&self.packed, a.slot_offset(slot))
            .map_err(|e| Error::io(&self.path, e))?;
        if slot == 0 {
            let ts = be_u32(&self.packed);
            self.note_base(a, ts);
        }
        self.packed.clear();
        Ok(())
    }

    /// Writes `len` packed points starting at `self.packed[first]` into `a` from `slot`,
    /// wrapping to slot 0 at the end of the archive.
    fn write_wrapped(
        &mut self,
        a: &ArchiveInfo,
        slot: u64,
        first: usize,
        len: usize,
    ) -> Result<()> {
        let points = u64::from(a.points());
        let mut slot = slot;
        let mut done = 0usize;
        while done < len {
            let room = (points - slot) as usize;
            let n = room.min(len - done);
            let from = (first + done) * POINT_SIZE;
            let bytes = &self.packed[from..from + n * POINT_SIZE];
            self.storage
                .write_all_at(bytes, a.slot_offset(slot))
                .map_err(|e| Error::io(&self.path, e))?;
            if slot == 0 {
                let ts = be_u32(bytes);
                self.note_base(a, ts);
            }
            done += n;
            slot = 0;
        }
        Ok(())
    }

    /// whisper.py's `__propagate`: aggregates the slots of `higher` that make up the `lower`
    /// interval containing `timestamp`, and writes the result into `lower` if enough of them are
    /// known. Returns whether it wrote.
    fn propagate(
        &mut self,
        timestamp: i64,
        higher: &ArchiveInfo,
        lower: &ArchiveInfo,
    ) -> Result<bool> {
        let lower_step = i64::from(lower.seconds_per_point());
        let higher_step = i64::from(higher.seconds_per_point());
        let lower_start = timestamp - timestamp.rem_euclid(lower_step);

        let higher_base = self.base_of(higher)?;
        let first =
            if higher_base == 0 { 0 } else { slot_of(higher, i64::from(higher_base), lower_start) };
        let points = u64::from(higher.points());
        let wanted = u64::from(lower.seconds_per_point() / higher.seconds_per_point());
        let last = (first + wanted) % points;
        let count = if first < last { last - first } else { points - first + last };
        let mut slots = std::mem::take(&mut self.values);
        slots.clear();
        let read = self.read_slots(higher, first, count, lower_start, higher_step, &mut slots);
        let known = slots.iter().filter(|v| v.is_some()).count();
        let fraction = known as f64 / slots.len() as f64;
        let value = self.header.aggregation_method().aggregate(&slots);
        self.values = slots;
        read?;
        if known == 0 || fraction < f64::from(self.header.x_files_factor()) {
            return Ok(false);
        }
        let Some(value) = value else {
            return Ok(false);
        };
        let lower_base = self.base_of(lower)?;
        let slot =
            if lower_base == 0 { 0 } else { slot_of(lower, i64::from(lower_base), lower_start) };
        self.write_point(lower, slot, lower_start, value)?;
        Ok(true)
    }

    // ---- fetch ----------------------------------------------------------------------------

    /// Reads the values between `from` and `until` (default `now`), as whisper.py's
    /// `fetch(path, fromTime, untilTime, now)`.
    ///
    /// The archive is the finest one whose retention reaches back to `from` (counted from
    /// `now`, whatever the length of the range). The window is the aligned
    /// `(from, until]`, clamped to what the file can hold. Returns `None` when the whole range
    /// is in the future or older than the file's retention.
    ///
    /// # Errors
    ///
    /// [`Error::InvalidTimeInterval`] when `from > until`; I/O errors.
    pub fn fetch(&mut self, from: i64, until: Option<i64>, now: i64) -> Result<Option<Series>> {
        let mut series = Series::default();
        Ok(self.fetch_into(from, until, now, None, &mut series)?.then_some(series))
    }

    /// As [`fetch`](Self::fetch), but from the archive with exactly `seconds_per_point`
    /// (whisper.py's `archiveToSelect`; 0 means "choose as usual").
    ///
    /// For an archive never written, whisper.py returns a `None` per step of the range, however
    /// long; past 2^22 values (a forced 1-second archive over 48 days) this is
    /// [`Error::RangeTooLong`] instead, so a hostile header cannot make us allocate gigabytes.
    ///
    /// # Errors
    ///
    /// [`Error::InvalidGranularity`] when no archive has that precision; as `fetch`.
    pub fn fetch_archive(
        &mut self,
        from: i64,
        until: Option<i64>,
        now: i64,
        seconds_per_point: u32,
    ) -> Result<Option<Series>> {
        let mut series = Series::default();
        let found = self.fetch_into(from, until, now, Some(seconds_per_point), &mut series)?;
        Ok(found.then_some(series))
    }

    /// As [`fetch`](Self::fetch), into a `Series` whose buffer is reused; returns whether the
    /// range had data (`false` where `fetch` returns `None`).
    ///
    /// # Errors
    ///
    /// As [`fetch_archive`](Self::fetch_archive).
    pub fn fetch_into(
        &mut self,
        from: i64,
        until: Option<i64>,
        now: i64,
        seconds_per_point: Option<u32>,
        series: &mut Series,
    ) -> Result<bool> {
        let result = self.fetch_into_inner(from, until, now, seconds_per_point, series);
        self.finish_cached(&result);
        result
    }

    fn fetch_into_inner(
        &mut self,
        from: i64,
        until: Option<i64>,
        now: i64,
        seconds_per_point: Option<u32>,
        series: &mut Series,
    ) -> Result<bool> {
        self.refresh_header()?;
        let Some((archive, from, until)) =
            select_archive(&self.header, from, until, now, seconds_per_point)?
        else {
            return Ok(false);
        };
        series.values.clear();
        let (from_interval, until_interval, values) =
            self.archive_fetch(&archive, from, until, &mut series.values)?;
        series.from = from_interval;
        series.until = until_interval;
        series.step = archive.seconds_per_point();
        match values {
            // whisper.py returns `(until - from) / step` Nones here. For a forced archive and a
            // long range that is bounded only by the header (a 76-byte file can ask for 68 GB),
            // so past a limit no real request reaches, it is an error instead.
            ArchiveValues::Unwritten(n) if n > MAX_UNWRITTEN_VALUES => {
                return Err(Error::RangeTooLong { values: n, limit: MAX_UNWRITTEN_VALUES });
            }
            ArchiveValues::Unwritten(n) => series.values.resize(n as usize, None),
            ArchiveValues::Read => {}
        }
        release_if_large(&mut self.scratch, KEEP_READ_BUFFER_BYTES);
        Ok(true)
    }

    /// whisper.py's `__archive_fetch`: the aligned window `(from, until]` of one archive,
    /// without any clamping. Decoded values are appended to `out`.
    fn archive_fetch(
        &mut self,
        archive: &ArchiveInfo,
        from: i64,
        until: i64,
        out: &mut Vec<Option<f64>>,
    ) -> Result<(i64, i64, ArchiveValues)> {
        let step = i64::from(archive.seconds_per_point());
        let (from_interval, until_interval) = archive_window(archive, from, until);
        let base = self.base_of(archive)?;
        if base == 0 {
            let n = (until_interval - from_interval).div_euclid(step).max(0) as u64;
            return Ok((from_interval, until_interval, ArchiveValues::Unwritten(n)));
        }
        let base = i64::from(base);
        let first = slot_of(archive, base, from_interval);
        let last = slot_of(archive, base, until_interval);
        let points = u64::from(archive.points());
        // Like whisper.py: equal slots read the whole archive once around.
        let count = if first < last { last - first } else { points - first + last };
        self.read_slots(archive, first, count, from_interval, step, out)?;
        Ok((from_interval, until_interval, ArchiveValues::Read))
    }

    /// Reads archive `index` for `(from, until]` without clamping (as merge and diff do).
    /// Returns the window and the values; `None` values for an archive never written.
    pub(crate) fn read_archive_window(
        &mut self,
        index: usize,
        from: i64,
        until: i64,
        max_unwritten: usize,
    ) -> Result<(i64, i64, u32, Vec<Option<f64>>)> {
        let archive = self.header.archives()[index];
        let mut values = Vec::new();
        let (f, u, read) =
            self.archive_fetch(&archive, clamp_time(from), clamp_time(until), &mut values)?;
        if let ArchiveValues::Unwritten(n) = read {
            // Bounded by the caller, who only needs as many as the other side can have.
            values.resize((n as usize).min(max_unwritten), None);
        }
        Ok((f, u, archive.seconds_per_point(), values))
    }

    /// Every slot of archive `index` as stored: `(timestamp, value)`, empty slots included
    /// (what `whisper-dump` prints).
    ///
    /// # Errors
    ///
    /// I/O errors; `index` out of range is [`Error::InvalidGranularity`].
    pub fn archive_slots(&mut self, index: usize) -> Result<Vec<(u32, f64)>> {
        let archive = *self
            .header
            .archives()
            .get(index)
            .ok_or(Error::InvalidGranularity { seconds_per_point: 0 })?;
        let bytes = storage::read_at(
            &self.storage,
            u64::from(archive.offset()),
            archive.size() as usize,
            &mut self.scratch,
        )
        .map_err(|e| Error::io(&self.path, e))?;
        Ok(bytes.chunks_exact(POINT_SIZE).map(decode_point).collect())
    }

    // ---- metadata -------------------------------------------------------------------------

    /// Rewrites the aggregation method and/or xFilesFactor (`None` keeps the current one), as
    /// whisper.py's `setAggregationMethod` and `setXFilesFactor`. Returns the old values.
    ///
    /// # Errors
    ///
    /// [`Error::InvalidXFilesFactor`] outside `[0, 1]` or NaN (whisper.py writes NaN and then
    /// cannot read the file); I/O errors.
    pub fn set_aggregation(
        &mut self,
        method: Option<AggregationMethod>,
        x_files_factor: Option<f64>,
    ) -> Result<(AggregationMethod, f32)> {
        if let Some(x) = x_files_factor {
            check_x_files_factor(x)?;
        }
        self.write_op(|w| {
            let old = (w.header.aggregation_method(), w.header.x_files_factor());
            let method = method.unwrap_or(old.0);
            let xff = x_files_factor.map_or(old.1, |x| x as f32);
            w.header.set_metadata(method, xff);
            let meta = w.header.encode_metadata();
            w.storage.write_all_at(&meta, 0).map_err(|e| Error::io(&w.path, e))?;
            w.header_bytes()[..meta.len()].copy_from_slice(&meta);
            w.header_written();
            Ok(old)
        })
    }
}

/// whisper.py's `file_fetch` before it reads: checks the range, clamps it to what the file
/// holds and picks the archive. `None` when the range is wholly in the future or too old.
pub(crate) fn select_archive(
    header: &Header,
    from: i64,
    until: Option<i64>,
    now: i64,
    seconds_per_point: Option<u32>,
) -> Result<Option<(ArchiveInfo, i64, i64)>> {
    let now = clamp_time(now);
    let mut from = clamp_time(from);
    let mut until = clamp_time(until.unwrap_or(now));
    if from > until {
        return Err(Error::InvalidTimeInterval { from, until });
    }
    let oldest = now - i64::from(header.max_retention());
    if from > now || until < oldest {
        return Ok(None);
    }
    from = from.max(oldest);
    until = until.min(now);
    let diff = now - from;
    let archives = header.archives();
    let archive = match seconds_per_point.filter(|&s| s != 0) {
        Some(spp) => *archives
            .iter()
            .find(|a| a.seconds_per_point() == spp)
            .ok_or(Error::InvalidGranularity { seconds_per_point: spp })?,
        // whisper.py's loop leaves the last archive selected when none covers `diff`.
        None => *archives
            .iter()
            .find(|a| retention_i64(a) >= diff)
            .or(archives.last())
            .ok_or(Error::TimestampNotCovered { timestamp: from })?,
    };
    Ok(Some((archive, from, until)))
}

/// The aligned window `(from, until]` whisper.py's `__archive_fetch` uses for `archive`.
pub(crate) fn archive_window(archive: &ArchiveInfo, from: i64, until: i64) -> (i64, i64) {
    let step = i64::from(archive.seconds_per_point());
    let from_interval = from - from.rem_euclid(step) + step;
    let mut until_interval = until - until.rem_euclid(step) + step;
    if from_interval == until_interval {
        // A zero-length range always includes the next point.
        until_interval += step;
    }
    (from_interval, until_interval)
}

/// A header as read from storage.
pub(crate) struct HeaderRead {
    /// The storage's length when it was read.
    pub(crate) len: u64,
    pub(crate) header: Header,
    /// The header's bytes.
    pub(crate) bytes: Vec<u8>,
    /// `(offset, slot-0 timestamp)` of the archive right after the header, when the read
    /// covered it.
    pub(crate) base: Option<(u32, u32)>,
}

/// Reads and decodes the header of `storage`.
///
/// Also returns the slot-0 timestamp of the archive that starts right after the header, when
/// the read covered it.
pub(crate) fn read_header<S: Storage + ?Sized>(storage: &S, path: &Path) -> Result<HeaderRead> {
    let len = storage.size().map_err(|e| Error::io(path, e))?;
    read_header_sized(storage, path, len)
}

/// [`read_header`] of a storage known to be `len` bytes long.
fn read_header_sized<S: Storage + ?Sized>(
    storage: &S,
    path: &Path,
    file_len: u64,
) -> Result<HeaderRead> {
    let len = file_len;
    // Most headers (up to 32 archives) fit in the first read.
    let mut want = len.min(format::METADATA_SIZE as u64 + 32 * format::ARCHIVE_INFO_SIZE as u64);
    loop {
        let mut buf = vec![0u8; want as usize];
        storage.read_exact_at(&mut buf, 0).map_err(|e| Error::io(path, e))?;
        match format::decode_header(&buf, len) {
            Ok(header) => {
                let len = header.len() as usize;
                let base = first_archive_after_header(&header)
                    .and_then(|offset| buf.get(len..len + 4).map(|b| (offset, be_u32(b))));
                buf.truncate(len);
                return Ok(HeaderRead { len: file_len, header, bytes: buf, base });
            }
            Err(DecodeError::NeedBytes(n)) if n > want => want = n,
            Err(DecodeError::NeedBytes(_)) => {
                return Err(Error::Corrupt {
                    path: path.to_path_buf(),
                    problem: crate::Corruption::Truncated,
                });
            }
            Err(DecodeError::Corrupt(problem)) => {
                return Err(Error::Corrupt { path: path.to_path_buf(), problem });
            }
            Err(DecodeError::Foreign(format)) => {
                return Err(Error::Unsupported { path: path.to_path_buf(), format });
            }
        }
    }
}

/// The offset of the archive that starts right where the header ends, if any.
fn first_archive_after_header(header: &Header) -> Option<u32> {
    let len = header.len();
    header.archives().iter().map(ArchiveInfo::offset).find(|&o| u64::from(o) == len)
}

pub(crate) fn check_x_files_factor(x: f64) -> Result<()> {
    if (0.0..=1.0).contains(&x) { Ok(()) } else { Err(Error::InvalidXFilesFactor { value: x }) }
}

fn check_timestamp(t: i64) -> Result<()> {
    if timestamp_fits(t) { Ok(()) } else { Err(Error::TimestampOutOfRange { timestamp: t }) }
}

fn timestamp_fits(t: i64) -> bool {
    (0..=i64::from(u32::MAX)).contains(&t)
}

pub(crate) fn retention_i64(a: &ArchiveInfo) -> i64 {
    i64::try_from(a.retention()).unwrap_or(i64::MAX)
}

/// The slot of `interval` in `a`, given the timestamp `base` in slot 0 (whisper.py's
/// `((interval - base) // step * 12) % size`).
fn slot_of(a: &ArchiveInfo, base: i64, interval: i64) -> u64 {
    let distance = (interval - base).div_euclid(i64::from(a.seconds_per_point()));
    distance.rem_euclid(i64::from(a.points())) as u64
}

fn be_u32(b: &[u8]) -> u32 {
    let mut a = [0u8; 4];
    if let Some(src) = b.get(..4) {
        a.copy_from_slice(src);
    }
    u32::from_be_bytes(a)
}

/// Encodes a point into the first 12 bytes of `out`. `ts` must fit a u32 (checked by callers).
fn encode_point(out: &mut [u8], ts: i64, value: f64) {
    out[..POINT_SIZE].copy_from_slice(&point_bytes(ts, value));
}

/// A point's 12 bytes. `ts` must fit a u32 (checked by callers).
fn point_bytes(ts: i64, value: f64) -> [u8; POINT_SIZE] {
    let mut b = [0u8; POINT_SIZE];
    b[..4].copy_from_slice(&(ts as u32).to_be_bytes());
    b[4..].copy_from_slice(&value.to_bits().to_be_bytes());
    b
}

/// Aligns non-negative timestamps down to a step, remembering the last interval.
///
/// Points arrive in time order, so most fall in the same interval as the one before or in the
/// next, and a 64-bit division costs tens of cycles; this answers those without dividing.
#[derive(Clone, Copy, Debug)]
struct Aligner {
    step: u64,
    /// The last interval, `[start, end)`; empty (`end == 0`) before the first call.
    start: u64,
    end: u64,
}

impl Aligner {
    fn new(step: u32) -> Aligner {
        Aligner { step: u64::from(step), start: 0, end: 0 }
    }

    /// `t - t % step`, for `0 <= t < 2^32`.
    fn align(&mut self, t: i64) -> i64 {
        let t = t as u64;
        if !(self.start <= t && t < self.end) {
            if self.end <= t && t < self.end + self.step {
                self.start = self.end;
            } else {
                self.start = t - t % self.step;
            }
            self.end = self.start + self.step;
        }
        self.start as i64
    }
}

fn decode_point(b: &[u8]) -> (u32, f64) {
    let mut v = [0u8; 8];
    v.copy_from_slice(&b[4..12]);
    (be_u32(b), f64::from_bits(u64::from_be_bytes(v)))
}

/// Decodes points, keeping a value only where the timestamp is the expected one.
fn decode_values(bytes: &[u8], expected_start: i64, step: i64, out: &mut Vec<Option<f64>>) {
    let (points, _) = bytes.as_chunks::<POINT_SIZE>();
    let mut expected = expected_start.wrapping_sub(step);
    // `extend` over an exact-size iterator writes without a capacity check per element.
    out.extend(points.iter().map(|p| {
        expected = expected.wrapping_add(step);
        let ts = u32::from_be_bytes([p[0], p[1], p[2], p[3]]);
        let bits = u64::from_be_bytes([p[4], p[5], p[6], p[7], p[8], p[9], p[10], p[11]]);
        (i64::from(ts) == expected).then_some(f64::from_bits(bits))
    }));
}

#[cfg(test)]
mod tests {
    use std::io;
    use std::sync::atomic::{AtomicU32, Ordering};

    use super::{Aligner, NOATIME_BACKOFF_OPENS, open_maybe_noatime};

    /// Runs `open_maybe_noatime` with an opener that answers `with` when asked for
    /// `O_NOATIME` and `without` otherwise; returns the result and the flags asked for.
    fn try_open(
        noatime: bool,
        refused: &AtomicU32,
        with: Option<i32>,
        without: Option<i32>,
    ) -> (Result<&'static str, Option<i32>>, Vec<bool>) {
        let mut asked = Vec::new();
        let result = open_maybe_noatime(noatime, refused, |flag| {
            asked.push(flag);
            match if flag { with } else { without } {
                None => Ok(if flag { "noatime" } else { "plain" }),
                Some(errno) => Err(io::Error::from_raw_os_error(errno)),
            }
        });
        (result.map_err(|e| e.raw_os_error()), asked)
    }

    #[test]
    fn noatime_refused_is_retried_without_it_then_skipped_for_a_while() {
        let eperm = Some(libc::EPERM);
        let refused = AtomicU32::new(0);
        // Not asked for: one plain open.
        assert_eq!(try_open(false, &refused, eperm, None), (Ok("plain"), vec![false]));
        // Allowed: one open with the flag.
        assert_eq!(try_open(true, &refused, None, None), (Ok("noatime"), vec![true]));
        // Not the owner: refused, retried without, and the next opens do not ask.
        assert_eq!(try_open(true, &refused, eperm, None), (Ok("plain"), vec![true, false]));
        assert_eq!(refused.load(Ordering::Relaxed), NOATIME_BACKOFF_OPENS);
        assert_eq!(try_open(true, &refused, eperm, None), (Ok("plain"), vec![false]));
        assert_eq!(refused.load(Ordering::Relaxed), NOATIME_BACKOFF_OPENS - 1);
        // After the back-off, the flag is tried again.
        refused.store(1, Ordering::Relaxed);
        assert_eq!(try_open(true, &refused, None, None), (Ok("plain"), vec![false]));
        assert_eq!(try_open(true, &refused, None, None), (Ok("noatime"), vec![true]));
        // Other errors are not retried; EPERM for another reason (an immutable file) is
        // returned from the retry and does not start a back-off.
        assert_eq!(
            try_open(true, &refused, Some(libc::ENOENT), None),
            (Err(Some(libc::ENOENT)), vec![true])
        );
        assert_eq!(try_open(true, &refused, eperm, eperm), (Err(eperm), vec![true, false]));
        assert_eq!(refused.load(Ordering::Relaxed), 0);
    }

    #[test]
    fn aligner_matches_division_in_any_order() {
        for step in [1u32, 7, 60, 300, 86400] {
            let mut a = Aligner::new(step);
            let mut t: i64 = 0;
            for i in 0..5000i64 {
                // Mostly forward by less than two steps, sometimes jumping back or far ahead.
                t = match i % 11 {
                    0 => (t - 3 * i64::from(step)).max(0),
                    1 => t + 1000 * i64::from(step) + 3,
                    _ => t + (i * 7919) % (2 * i64::from(step)),
                }
                .min(i64::from(u32::MAX));
                assert_eq!(a.align(t), t - t % i64::from(step), "step {step}, t {t}");
            }
        }
    }
}
