//! [`Wal`], its configuration and its statistics.

use std::collections::BTreeSet;
use std::fs::{self, OpenOptions, TryLockError};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::Duration;

use super::codec::{HEADER_BYTES, MAX_NAME_BYTES};
use super::error::{WalError, WalOp};
use super::segment::{self, ReplayStats, SegmentId};
use super::writer::{self, NEVER_WRITE_INTERVAL, OpenSegment, Policy, Shared, State};

/// The default segment size: 64 MiB.
pub const DEFAULT_SEGMENT_BYTES: u64 = 64 << 20;

/// The default cap on buffered records: 16 MiB.
pub const DEFAULT_BUFFER_BYTES: usize = 16 << 20;

/// The default fsync interval: 1 s.
pub const DEFAULT_FSYNC_INTERVAL: Duration = Duration::from_secs(1);

/// The name of the lock file that keeps two logs out of one directory.
pub const LOCK_FILE: &str = "LOCK";

/// When appended points reach stable storage.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum FsyncPolicy {
    /// The writer thread writes and fsyncs what was appended at most this long after it was
    /// appended (sooner when a megabyte is buffered, though the fsync still waits for the
    /// interval). Appends return at once: a crash of the process or of the machine loses at
    /// most the last interval of acknowledged points.
    Interval(Duration),
    /// Appends return once their points are fsynced. Appenders that arrive while an fsync runs
    /// share the next one (group commit).
    Always,
    /// Nothing is ever fsynced, [`Wal::sync`] and shutdown included; records are written at
    /// least every second. For tests and benchmarks.
    Never,
}

impl Default for FsyncPolicy {
    /// `Interval(1 s)`.
    fn default() -> Self {
        FsyncPolicy::Interval(DEFAULT_FSYNC_INTERVAL)
    }
}

impl FsyncPolicy {
    fn policy(self) -> Policy {
        match self {
            FsyncPolicy::Interval(every) => {
                Policy { always: false, fsync: true, every: Some(every) }
            }
            FsyncPolicy::Always => Policy { always: true, fsync: true, every: None },
            FsyncPolicy::Never => {
                Policy { always: false, fsync: false, every: Some(NEVER_WRITE_INTERVAL) }
            }
        }
    }
}

/// Where the log lives and how it writes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WalConfig {
    /// The directory of the segment files (created if missing). Default: `wal`.
    pub dir: PathBuf,
    /// Segment size: the first append after a segment passes it starts a new one (so a segment
    /// exceeds it by at most one batch). Default: [`DEFAULT_SEGMENT_BYTES`] (64 MiB). Released
    /// disk space comes in segments, and each segment repeats the names it uses once.
    pub segment_bytes: u64,
    /// When appended points reach stable storage. Default: `Interval(1 s)`.
    pub fsync: FsyncPolicy,
    /// Records buffered before appenders wait for the writer (backpressure). Memory holds at
    /// most about twice this (the buffer being filled and the one being written). Default:
    /// [`DEFAULT_BUFFER_BYTES`] (16 MiB).
    pub buffer_bytes: usize,
}

impl Default for WalConfig {
    fn default() -> Self {
        WalConfig {
            dir: PathBuf::from("wal"),
            segment_bytes: DEFAULT_SEGMENT_BYTES,
            fsync: FsyncPolicy::default(),
            buffer_bytes: DEFAULT_BUFFER_BYTES,
        }
    }
}

impl WalConfig {
    /// The defaults, in `dir`.
    pub fn new(dir: impl Into<PathBuf>) -> Self {
        WalConfig { dir: dir.into(), ..WalConfig::default() }
    }
}

/// Counters of a running log, for self-metrics. Byte counts are of records (segment headers
/// not included).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct WalStats {
    /// Points appended since open.
    pub points_appended: u64,
    /// Records appended since open (a batch is one record, or more past 256 KiB).
    pub records_appended: u64,
    /// Bytes of records appended since open.
    pub bytes_appended: u64,
    /// Bytes of records written to segment files since open.
    pub bytes_written: u64,
    /// Bytes appended and not yet written.
    pub bytes_buffered: u64,
    /// Fsyncs of segment files since open.
    pub fsyncs: u64,
    /// Segment files on disk: the one being written and those kept for replay.
    pub segments_live: u64,
    /// Segments created since open (the first one included).
    pub segments_created: u64,
    /// Segments removed by [`Wal::release_before`] since open.
    pub segments_released: u64,
    /// Names in the current segment's dictionary.
    pub dictionary_names: u64,
    /// Bytes of those names (the dictionary's memory is about this plus 50 bytes a name).
    pub dictionary_bytes: u64,
    /// Times an appender waited because the buffer was full.
    pub backpressure_waits: u64,
    /// Writes (or segment creations) that failed; each is retried.
    pub write_errors: u64,
}

/// The write-ahead log: appends go to an in-memory buffer, a writer thread writes them to
/// segment files and fsyncs as the [`FsyncPolicy`] says; [`Wal::open`] replays what is on
/// disk. See the [module docs](super) for the format and the guarantees.
///
/// `Wal` is `Send + Sync`: share it (in an `Arc`) between the threads that append.
#[derive(Debug)]
pub struct Wal {
    /// What appenders and the writer share.
    shared: Arc<Shared>,
    /// The writer thread, until shutdown.
    writer: Option<JoinHandle<Result<(), WalError>>>,
    /// What replay found at open.
    replay: ReplayStats,
    /// The directory's lock file, locked for the life of the log.
    _lock: fs::File,
}

impl std::fmt::Debug for Shared {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Shared").field("dir", &self.dir).field("policy", &self.policy).finish()
    }
}

impl Wal {
    /// Opens the log in `config.dir` (creating the directory if needed), replays every segment
    /// in order, calling `replay` with the segment, name, timestamp and value of every point,
    /// and starts a new segment for appends.
    ///
    /// Damage does not fail the open: a torn tail of the last segment (a record cut short or
    /// failing its checksum, with no whole record after it) is cut off the file; damage inside
    /// a segment is skipped up to the next whole record. Both are counted in
    /// [`replay_stats`](Self::replay_stats). Segments that hold no record are removed.
    ///
    /// # Errors
    ///
    /// When the directory cannot be created, listed or locked ([`WalError::Locked`] if another
    /// log has it open), a segment cannot be read, is not a segment ([`WalError::BadMagic`]) or
    /// of a newer format ([`WalError::UnsupportedVersion`]), or the new segment cannot be
    /// created.
    pub fn open(
        config: WalConfig,
        mut replay: impl FnMut(SegmentId, &str, u32, f64),
    ) -> Result<Wal, WalError> {
        let WalConfig { dir, segment_bytes, fsync, buffer_bytes } = config;
        let policy = fsync.policy();
        fs::create_dir_all(&dir).map_err(|e| WalError::io(WalOp::CreateDir, &dir, e))?;
        let lock_path = dir.join(LOCK_FILE);
        let lock = OpenOptions::new()
            .create(true)
            .write(true)
            .truncate(false)
            .open(&lock_path)
            .map_err(|e| WalError::io(WalOp::Lock, &lock_path, e))?;
        match lock.try_lock() {
            Ok(()) => {}
            Err(TryLockError::WouldBlock) => return Err(WalError::Locked { path: lock_path }),
            Err(TryLockError::Error(e)) => return Err(WalError::io(WalOp::Lock, &lock_path, e)),
        }

        let segments = segment::list(&dir, true)?;
        let mut stats = ReplayStats::default();
        let mut closed = BTreeSet::new();
        let mut removed = false;
        for (i, (id, path)) in segments.iter().enumerate() {
            let last = i + 1 == segments.len();
            let end = segment::replay(path, *id, last, &mut replay, &mut stats)?;
            if last && !end.short_header && end.valid_len < end.file_len {
                cut_tail(path, end.valid_len, policy.fsync)?;
            }
            if !end.has_records && !end.damaged {
                fs::remove_file(path).map_err(|e| WalError::io(WalOp::Remove, path, e))?;
                stats.empty_segments_removed += 1;
                removed = true;
            } else {
                closed.insert(*id);
            }
        }
        if removed && policy.fsync {
            segment::sync_dir(&dir)?;
        }
        if stats.torn_bytes > 0 || stats.corrupt_regions > 0 {
            tracing::warn!(dir = %dir.display(), torn_bytes = stats.torn_bytes, corrupt_bytes = stats.corrupt_bytes, corrupt_regions = stats.corrupt_regions, "write-ahead log replayed with damage");
        }
        tracing::info!(dir = %dir.display(), segments = stats.segments, points = stats.points, "write-ahead log replayed");

        let first = segments.last().map_or(SegmentId::new(1), |(id, _)| id.next());
        let file = segment::create(&dir, first, policy.fsync)?;
        let mut state = State::new(first, HEADER_BYTES as u64, closed);
        state.counters.segments_created = 1;
        let shared = Arc::new(Shared::new(state, dir.clone(), policy, segment_bytes, buffer_bytes));
        let open = OpenSegment { id: first, file, dirty: false };
        let thread_shared = Arc::clone(&shared);
        let writer = std::thread::Builder::new()
            .name("wal-writer".into())
            .spawn(move || writer::run(&thread_shared, open))
            .map_err(|e| WalError::io(WalOp::Spawn, &dir, e))?;
        Ok(Wal { shared, writer: Some(writer), replay: stats, _lock: lock })
    }

    /// Appends a batch of `(name, timestamp, value)` points, returning the segment they went
    /// to (a batch never spans segments). Thread-safe: many threads may append at once.
    ///
    /// The batch is encoded into the in-memory buffer under a short lock. With
    /// [`FsyncPolicy::Always`] the call then waits until its points are fsynced (sharing the
    /// fsync with concurrent appenders); otherwise it returns at once and the writer thread
    /// writes and fsyncs later. When the buffer is full, the call waits for the writer
    /// (backpressure). An empty batch appends nothing and returns the current segment.
    ///
    /// # Errors
    ///
    /// [`WalError::NameTooLong`] (nothing of the batch is appended); the I/O error of the
    /// writer while its writes fail (a full disk: nothing of the batch is appended, the writer
    /// retries every 200 ms and appends work again once a write succeeds) or after an fsync
    /// failed (the log stops); [`WalError::Closed`] if the writer thread died. In `Always`
    /// mode an error while waiting means the points may or may not reach the log, as for any
    /// failed commit: replaying them twice is harmless, Whisper updates being idempotent.
    pub fn append(&self, points: &[(&str, u32, f64)]) -> Result<SegmentId, WalError> {
        if let Some(&(name, ..)) = points.iter().find(|p| p.0.len() > MAX_NAME_BYTES) {
            return Err(WalError::NameTooLong { len: name.len(), max: MAX_NAME_BYTES });
        }
        let sh = &*self.shared;
        let mut st = sh.lock();
        if points.is_empty() {
            return Ok(st.segment);
        }
        loop {
            st.check()?;
            if st.batch.bytes.len() < sh.buffer_bytes || st.batch.bytes.is_empty() {
                break;
            }
            st.counters.backpressure_waits += 1;
            sh.wake_writer(&mut st);
            st = sh.done.wait(st).unwrap_or_else(std::sync::PoisonError::into_inner);
        }
        if st.segment_len >= sh.segment_bytes {
            st.segment = st.segment.next();
            st.segment_len = HEADER_BYTES as u64;
            st.encoder.reset();
        }
        let segment = st.segment;
        let st_mut = &mut *st;
        let batch = &mut st_mut.batch;
        let was_empty = batch.bytes.is_empty();
        if batch.runs.last().map(|&(_, id)| id) != Some(segment) {
            batch.runs.push((batch.bytes.len(), segment));
        }
        let before = batch.bytes.len();
        let records = st_mut.encoder.encode(points, &mut batch.bytes);
        let len = (batch.bytes.len() - before) as u64;
        let buffered = batch.bytes.len();
        st.segment_len += len;
        st.appended += len;
        st.counters.points_appended += points.len() as u64;
        st.counters.records_appended += records as u64;
        let end = st.appended;
        if sh.policy.always || (was_empty && st.writer_idle) || buffered >= sh.write_bytes {
            sh.wake_writer(&mut st);
        }
        if sh.policy.always {
            let epoch = st.error_epoch;
            State::wait_durable(st, sh, end, epoch)?;
        }
        Ok(segment)
    }

    /// Writes and fsyncs everything appended so far, returning once it is durable (in
    /// [`FsyncPolicy::Never`] mode: once it is written).
    ///
    /// # Errors
    ///
    /// The I/O error of a failed write or fsync; [`WalError::Closed`] if the writer died.
    pub fn sync(&self) -> Result<(), WalError> {
        let sh = &*self.shared;
        let mut st = sh.lock();
        if let Some(e) = &st.fatal {
            return Err(e.to_error());
        }
        let target = st.appended;
        if st.durable >= target {
            return Ok(());
        }
        st.sync_target = st.sync_target.max(target);
        let epoch = st.error_epoch;
        sh.wake_writer(&mut st);
        State::wait_durable(st, sh, target, epoch)
    }

    /// Starts a new segment for the appends that follow, unless the current one has no
    /// records yet, and returns the segment appends go to now. The writer closes the old
    /// segment once its records are written, so `release_before(rotate())` can remove every
    /// segment once the caller knows all their points are in Whisper (a clean shutdown, after
    /// which a restart has nothing to replay).
    ///
    /// # Errors
    ///
    /// The error that stopped the log, if any.
    pub fn rotate(&self) -> Result<SegmentId, WalError> {
        let sh = &*self.shared;
        let mut st = sh.lock();
        if let Some(e) = &st.fatal {
            return Err(e.to_error());
        }
        if st.segment_len > HEADER_BYTES as u64 {
            st.segment = st.segment.next();
            st.segment_len = HEADER_BYTES as u64;
            st.encoder.reset();
            st.close_requested = true;
            sh.wake_writer(&mut st);
        }
        Ok(st.segment)
    }

    /// The segment appends go to now.
    pub fn current_segment(&self) -> SegmentId {
        self.shared.lock().segment
    }

    /// Removes every segment older than `segment`: the caller says all their points are in
    /// Whisper. The current segment is never removed (`segment` is capped at it), nor any
    /// later one; a segment the writer is still finishing is removed when it is closed.
    /// Segments go oldest first, each removal fsynced, so a crash leaves a contiguous run of
    /// segments. Returns how many files were removed now.
    ///
    /// # Errors
    ///
    /// When a file cannot be removed (it and the younger ones are kept for a later call) or the
    /// directory cannot be fsynced.
    pub fn release_before(&self, segment: SegmentId) -> Result<u64, WalError> {
        let sh = &*self.shared;
        let victims: Vec<SegmentId> = {
            let mut st = sh.lock();
            let limit = segment.min(st.segment);
            st.release_below = st.release_below.max(limit);
            let victims: Vec<SegmentId> = st.closed.range(..limit).copied().collect();
            for id in &victims {
                st.closed.remove(id);
            }
            victims
        };
        let mut removed = 0;
        for (i, id) in victims.iter().enumerate() {
            let path = sh.dir.join(id.file_name());
            let result = match fs::remove_file(&path) {
                Ok(()) => Ok(()),
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
                Err(e) => Err(WalError::io(WalOp::Remove, &path, e)),
            }
            .and_then(|()| if sh.policy.fsync { segment::sync_dir(&sh.dir) } else { Ok(()) });
            let mut st = sh.lock();
            match result {
                Ok(()) => {
                    st.counters.segments_released += 1;
                    removed += 1;
                }
                Err(e) => {
                    st.closed.extend(victims.get(i + 1..).unwrap_or_default());
                    if path.exists() {
                        st.closed.insert(*id);
                    }
                    return Err(e);
                }
            }
        }
        Ok(removed)
    }

    /// The log's counters now.
    pub fn stats(&self) -> WalStats {
        let st = self.shared.lock();
        let c = st.counters;
        WalStats {
            points_appended: c.points_appended,
            records_appended: c.records_appended,
            bytes_appended: st.appended,
            bytes_written: c.bytes_written,
            bytes_buffered: st.appended - st.written,
            fsyncs: c.fsyncs,
            segments_live: st.closed.len() as u64 + u64::from(st.open.is_some()),
            segments_created: c.segments_created,
            segments_released: c.segments_released,
            dictionary_names: st.encoder.names() as u64,
            dictionary_bytes: st.encoder.name_bytes() as u64,
            backpressure_waits: c.backpressure_waits,
            write_errors: c.write_errors,
        }
    }

    /// What replay found when the log was opened.
    pub fn replay_stats(&self) -> &ReplayStats {
        &self.replay
    }

    /// The log's directory.
    pub fn dir(&self) -> &Path {
        &self.shared.dir
    }

    /// Writes and fsyncs everything appended (not fsynced in [`FsyncPolicy::Never`] mode),
    /// stops the writer thread and unlocks the directory. Dropping a `Wal` does the same and
    /// logs an error it cannot return.
    ///
    /// # Errors
    ///
    /// The I/O error of the last write or fsync, or the fatal error the log stopped on earlier;
    /// [`WalError::Closed`] if the writer thread panicked.
    pub fn shutdown(mut self) -> Result<(), WalError> {
        self.stop()
    }

    fn stop(&mut self) -> Result<(), WalError> {
        let Some(writer) = self.writer.take() else { return Ok(()) };
        {
            let mut st = self.shared.lock();
            st.stop = true;
            self.shared.work.notify_one();
        }
        writer.join().unwrap_or(Err(WalError::Closed))
    }
}

impl Drop for Wal {
    fn drop(&mut self) {
        if let Err(e) = self.stop() {
            tracing::error!(dir = %self.shared.dir.display(), error = %e, "write-ahead log shutdown failed");
        }
    }
}

/// Cuts a torn tail off the last segment, so the next replay does not find it in the middle.
fn cut_tail(path: &Path, len: u64, durable: bool) -> Result<(), WalError> {
    let file = OpenOptions::new()
        .write(true)
        .open(path)
        .map_err(|e| WalError::io(WalOp::Truncate, path, e))?;
    file.set_len(len).map_err(|e| WalError::io(WalOp::Truncate, path, e))?;
    if durable {
        file.sync_data().map_err(|e| WalError::io(WalOp::Sync, path, e))?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wal_is_shared_between_threads() {
        fn check<T: Send + Sync>() {}
        check::<Wal>();
    }
}
