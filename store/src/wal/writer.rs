//! The state appenders and the writer thread share, and the writer thread: it takes the encoded
//! batch, writes it to the segment files (creating and closing them at segment boundaries),
//! fsyncs as the policy says, and wakes whoever waits for space or durability.
//!
//! Byte counts since open order everything: `appended` (encoded by appenders), `written` (handed
//! to `write(2)`), `durable` (covered by an fsync). An `Always` appender waits until `durable`
//! passes the end of its bytes; a `sync` caller until it passes what was appended when it
//! called. Segments are fsynced when they are closed, so one fsync of the open segment covers
//! everything written before it.

use std::collections::BTreeSet;
use std::fs::{self, File};
use std::io::{self, Write};
use std::mem;
use std::path::{Path, PathBuf};
use std::sync::{Condvar, Mutex, MutexGuard, PoisonError};
use std::time::{Duration, Instant};

use super::codec::Encoder;
use super::error::{WalError, WalOp, copy_io_error};
use super::segment::{self, SegmentId};

/// How long the writer waits before retrying a failed write.
pub(crate) const RETRY_DELAY: Duration = Duration::from_millis(200);

/// In `Never` mode, how often buffered records are written anyway (never fsynced).
pub(crate) const NEVER_WRITE_INTERVAL: Duration = Duration::from_secs(1);

/// The writer writes as soon as this much is buffered (or half the buffer cap, if smaller),
/// whatever the fsync interval, so the buffer rarely fills and writes stay large.
pub(crate) const WRITE_BYTES: usize = 1 << 20;

/// The fsync policy as the writer uses it.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Policy {
    /// Appenders wait for durability; the writer commits whatever is buffered at once.
    pub(crate) always: bool,
    /// Whether the writer ever fsyncs.
    pub(crate) fsync: bool,
    /// How often buffered or unsynced data is written (and fsynced when `fsync`); `None` for
    /// `Always`, where the writer never waits with data buffered.
    pub(crate) every: Option<Duration>,
}

/// What appenders, `sync` callers and the writer thread share.
pub(crate) struct Shared {
    /// Everything mutable; held briefly (encoding one batch at most).
    state: Mutex<State>,
    /// The writer waits here for work.
    pub(crate) work: Condvar,
    /// Appenders and `sync` callers wait here for buffer space or durability.
    pub(crate) done: Condvar,
    /// The log's directory.
    pub(crate) dir: PathBuf,
    /// When to write and fsync.
    pub(crate) policy: Policy,
    /// Segment size past which the next append starts a new segment.
    pub(crate) segment_bytes: u64,
    /// Buffered bytes past which appenders wait.
    pub(crate) buffer_bytes: usize,
    /// Buffered bytes past which the writer writes without waiting for its interval.
    pub(crate) write_bytes: usize,
}

/// Records encoded but not written, with the segment each run of them belongs to.
#[derive(Debug, Default)]
pub(crate) struct Batch {
    /// The records.
    pub(crate) bytes: Vec<u8>,
    /// `(offset in bytes, segment)` where each run of records of one segment starts; the
    /// first run starts at 0.
    pub(crate) runs: Vec<(usize, SegmentId)>,
}

impl Batch {
    fn clear(&mut self) {
        self.bytes.clear();
        self.runs.clear();
    }

    /// The segment of the byte at `at` and the end of its run.
    fn run_at(&self, at: usize) -> Option<(SegmentId, usize)> {
        let i = self.runs.partition_point(|&(start, _)| start <= at).checked_sub(1)?;
        let (_, id) = *self.runs.get(i)?;
        let end = self.runs.get(i + 1).map_or(self.bytes.len(), |&(start, _)| start);
        Some((id, end))
    }
}

/// An I/O error kept for every waiter to see.
#[derive(Debug)]
pub(crate) struct StoredError {
    op: WalOp,
    path: PathBuf,
    source: io::Error,
}

impl StoredError {
    fn new(op: WalOp, path: &Path, source: io::Error) -> Self {
        StoredError { op, path: path.to_owned(), source }
    }

    fn from_wal(e: WalError) -> Self {
        match e {
            WalError::Io { op, path, source } => StoredError { op, path, source },
            other => StoredError {
                op: WalOp::Write,
                path: PathBuf::new(),
                source: io::Error::other(other.to_string()),
            },
        }
    }

    pub(crate) fn to_error(&self) -> WalError {
        WalError::io(self.op, self.path.clone(), copy_io_error(&self.source))
    }
}

/// Counters for [`WalStats`](super::WalStats).
#[derive(Debug, Default, Clone, Copy)]
pub(crate) struct Counters {
    pub(crate) points_appended: u64,
    pub(crate) records_appended: u64,
    pub(crate) bytes_written: u64,
    pub(crate) fsyncs: u64,
    pub(crate) segments_created: u64,
    pub(crate) segments_released: u64,
    pub(crate) backpressure_waits: u64,
    pub(crate) write_errors: u64,
}

/// The shared mutable state.
pub(crate) struct State {
    // ---- appenders ----
    /// The name dictionary of the segment appends go to.
    pub(crate) encoder: Encoder,
    /// The segment appends go to.
    pub(crate) segment: SegmentId,
    /// Bytes of `segment` so far, header and buffered records included.
    pub(crate) segment_len: u64,
    /// Records encoded and not yet taken by the writer.
    pub(crate) batch: Batch,
    /// Bytes encoded since open.
    pub(crate) appended: u64,

    // ---- writer progress ----
    /// Bytes written since open.
    pub(crate) written: u64,
    /// Bytes known to be on stable storage (or, in `Never` mode, written when asked to sync).
    pub(crate) durable: u64,
    /// The highest `appended` a `sync` caller waits for.
    pub(crate) sync_target: u64,
    /// The last write failure, until a retry succeeds: appends and syncs fail meanwhile.
    pub(crate) error: Option<StoredError>,
    /// Counts write failures, so a waiter can tell a new one from one it already saw.
    pub(crate) error_epoch: u64,
    /// An fsync failure: after one the kernel may have dropped the dirty pages, so the log
    /// cannot say what is on disk and stops for good (a restart replays what is there).
    pub(crate) fatal: Option<StoredError>,
    /// The writer thread has ended.
    pub(crate) exited: bool,
    /// Shutdown asked: the writer writes everything, fsyncs and ends.
    pub(crate) stop: bool,
    /// The writer is waiting on `work` (appenders notify only then).
    pub(crate) writer_waiting: bool,
    /// ... with no deadline: nothing buffered or unsynced.
    pub(crate) writer_idle: bool,
    /// [`Wal::rotate`](super::Wal::rotate) moved appends to a new segment: the writer closes
    /// the old one as soon as everything of it is written, even if no new append comes.
    pub(crate) close_requested: bool,

    // ---- segments on disk ----
    /// Segment files the writer is done with (all replayed ones included).
    pub(crate) closed: BTreeSet<SegmentId>,
    /// The segment file the writer has open.
    pub(crate) open: Option<SegmentId>,
    /// Segments below this one were released: the writer removes them when it closes them.
    pub(crate) release_below: SegmentId,

    /// Self-metrics.
    pub(crate) counters: Counters,
}

impl State {
    pub(crate) fn new(segment: SegmentId, segment_len: u64, closed: BTreeSet<SegmentId>) -> Self {
        State {
            encoder: Encoder::default(),
            segment,
            segment_len,
            batch: Batch::default(),
            appended: 0,
            written: 0,
            durable: 0,
            sync_target: 0,
            error: None,
            error_epoch: 0,
            fatal: None,
            exited: false,
            stop: false,
            writer_waiting: false,
            writer_idle: false,
            close_requested: false,
            closed,
            open: Some(segment),
            release_below: SegmentId::new(0),
            counters: Counters::default(),
        }
    }

    /// The error every new append or sync gets now, if any.
    pub(crate) fn check(&self) -> Result<(), WalError> {
        if let Some(e) = self.fatal.as_ref().or(self.error.as_ref()) {
            return Err(e.to_error());
        }
        if self.exited {
            return Err(WalError::Closed);
        }
        Ok(())
    }

    /// Waits for `durable` to reach `target`; fails on a write failure newer than `epoch`, a
    /// fatal error or the writer's end.
    pub(crate) fn wait_durable<'a>(
        mut st: MutexGuard<'a, State>,
        shared: &'a Shared,
        target: u64,
        epoch: u64,
    ) -> Result<(), WalError> {
        loop {
            if st.durable >= target {
                return Ok(());
            }
            if let Some(e) = &st.fatal {
                return Err(e.to_error());
            }
            if st.error_epoch != epoch
                && let Some(e) = &st.error
            {
                return Err(e.to_error());
            }
            if st.exited {
                return Err(WalError::Closed);
            }
            st = shared.done.wait(st).unwrap_or_else(PoisonError::into_inner);
        }
    }
}

impl Shared {
    pub(crate) fn new(
        state: State,
        dir: PathBuf,
        policy: Policy,
        segment_bytes: u64,
        buffer_bytes: usize,
    ) -> Self {
        Shared {
            state: Mutex::new(state),
            work: Condvar::new(),
            done: Condvar::new(),
            dir,
            policy,
            segment_bytes,
            buffer_bytes,
            write_bytes: WRITE_BYTES.min(buffer_bytes / 2).max(1),
        }
    }

    /// The state, also after a panic elsewhere (every update is complete before any call that
    /// could panic, so the state stays consistent).
    pub(crate) fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Wakes the writer if it waits.
    pub(crate) fn wake_writer(&self, st: &mut State) {
        if st.writer_waiting {
            st.writer_waiting = false;
            self.work.notify_one();
        }
    }
}

/// The segment file the writer appends to.
pub(crate) struct OpenSegment {
    pub(crate) id: SegmentId,
    pub(crate) file: File,
    /// Written to since its last fsync.
    pub(crate) dirty: bool,
}

/// A batch the writer took, and how far it got.
struct Pending {
    batch: Batch,
    /// Bytes of it written.
    done: usize,
    /// `written` when it was taken.
    start: u64,
}

/// How a round of writing failed.
enum Failure {
    /// A write or a segment creation failed: retried after [`RETRY_DELAY`].
    Transient(StoredError),
    /// An fsync failed: the log stops.
    Fatal(StoredError),
}

/// Sets `exited` and wakes every waiter when the writer ends, however it ends.
struct ExitGuard<'a>(&'a Shared);

impl Drop for ExitGuard<'_> {
    fn drop(&mut self) {
        let mut st = self.0.lock();
        st.exited = true;
        st.open = None;
        self.0.done.notify_all();
    }
}

/// The writer thread's body.
pub(crate) fn run(shared: &Shared, file: OpenSegment) -> Result<(), WalError> {
    let _guard = ExitGuard(shared);
    let policy = shared.policy;
    let mut file = Some(file);
    let mut spare = Batch::default();
    let mut pending: Option<Pending> = None;
    let mut last_sync = Instant::now();
    let mut retry_at: Option<Instant> = None;
    let mut st = shared.lock();
    loop {
        // ---- wait for something to do ----
        let now = Instant::now();
        let stopping = st.stop;
        let has_new = !st.batch.bytes.is_empty();
        let dirty = has_new || pending.is_some() || st.written > st.durable;
        // When the oldest unsynced data must be on disk (never, past `Instant`'s range).
        let deadline = policy.every.and_then(|every| last_sync.checked_add(every));
        let due = dirty && (policy.every.is_none() || deadline.is_some_and(|d| now >= d));
        let retry_wait = retry_at.filter(|&t| now < t);
        let go = stopping
            || st.close_requested
            || match retry_wait {
                Some(_) => false,
                None => {
                    retry_at.is_some()
                        || st.sync_target > st.durable
                        || (policy.always && has_new)
                        || due
                        || st.batch.bytes.len() >= shared.write_bytes
                }
            };
        if !go {
            let wake_at = retry_wait.or(if dirty { deadline } else { None });
            st.writer_waiting = true;
            st.writer_idle = wake_at.is_none();
            st = match wake_at {
                Some(t) => {
                    let wait = t.saturating_duration_since(now);
                    shared.work.wait_timeout(st, wait).unwrap_or_else(PoisonError::into_inner).0
                }
                None => shared.work.wait(st).unwrap_or_else(PoisonError::into_inner),
            };
            st.writer_waiting = false;
            st.writer_idle = false;
            continue;
        }
        let want_sync = stopping || policy.always || st.sync_target > st.durable || due;
        if pending.is_none() && has_new {
            let batch = mem::replace(&mut st.batch, mem::take(&mut spare));
            pending = Some(Pending { batch, done: 0, start: st.written });
            // Space freed: appenders waiting for it may go on.
            shared.done.notify_all();
        }
        drop(st);

        // ---- write and fsync, without the lock ----
        let written_before = pending.as_ref().map_or(0, |p| p.done);
        let mut outcome = match &mut pending {
            Some(p) => write_pending(shared, &mut file, p),
            None => Ok(()),
        };
        let mut synced = false;
        if outcome.is_ok() && want_sync {
            match &mut file {
                Some(f) if policy.fsync && f.dirty => match f.file.sync_data() {
                    Ok(()) => {
                        f.dirty = false;
                        synced = true;
                    }
                    Err(e) => {
                        let path = shared.dir.join(f.id.file_name());
                        outcome = Err(Failure::Fatal(StoredError::new(WalOp::Sync, &path, e)));
                    }
                },
                _ => synced = true, // nothing to fsync, or `Never`
            }
        }

        // ---- publish ----
        st = shared.lock();
        if let Some(p) = &pending {
            st.written = p.start + p.done as u64;
            st.counters.bytes_written += (p.done - written_before) as u64;
        }
        if synced {
            st.durable = st.written;
            // From the round's start, not its end: what was appended during a slow fsync
            // still goes out one interval after the previous round began.
            last_sync = now;
            if policy.fsync {
                st.counters.fsyncs += 1;
            }
        }
        match outcome {
            Ok(()) => {
                if let Some(mut p) = pending.take() {
                    p.batch.clear();
                    spare = p.batch;
                }
                retry_at = None;
                if let Some(e) = st.error.take() {
                    tracing::info!(path = %e.path.display(), "write-ahead log writes work again");
                }
            }
            Err(Failure::Transient(e)) => {
                tracing::warn!(error = %e.to_error(), "write-ahead log write failed, retrying");
                st.counters.write_errors += 1;
                st.error_epoch += 1;
                if stopping {
                    return Err(e.to_error());
                }
                st.error = Some(e);
                retry_at = Some(Instant::now() + RETRY_DELAY);
            }
            Err(Failure::Fatal(e)) => {
                tracing::error!(error = %e.to_error(), "write-ahead log fsync failed, the log stops");
                let err = e.to_error();
                st.fatal = Some(e);
                return Err(err);
            }
        }
        if st.close_requested && pending.is_none() && st.batch.bytes.is_empty() {
            st.close_requested = false;
            let segment = st.segment;
            if let Some(old) = file.take_if(|f| f.id < segment) {
                drop(st);
                let closed = close(shared, old);
                st = shared.lock();
                if let Err(Failure::Fatal(e) | Failure::Transient(e)) = closed {
                    tracing::error!(error = %e.to_error(), "write-ahead log fsync failed, the log stops");
                    let err = e.to_error();
                    st.fatal = Some(e);
                    return Err(err);
                }
            }
        }
        shared.done.notify_all();
        if stopping && pending.is_none() && st.batch.bytes.is_empty() {
            return Ok(());
        }
    }
}

/// Writes what is left of `p`, opening and closing segments at run boundaries.
fn write_pending(
    shared: &Shared,
    file: &mut Option<OpenSegment>,
    p: &mut Pending,
) -> Result<(), Failure> {
    while let Some((id, end)) = p.batch.run_at(p.done) {
        if file.as_ref().map(|f| f.id) != Some(id) {
            if let Some(old) = file.take() {
                close(shared, old)?;
            }
            let created = segment::create(&shared.dir, id, shared.policy.fsync)
                .map_err(|e| Failure::Transient(StoredError::from_wal(e)))?;
            *file = Some(OpenSegment { id, file: created, dirty: false });
            let mut st = shared.lock();
            st.open = Some(id);
            st.counters.segments_created += 1;
        }
        let Some(f) = file.as_mut() else { break };
        let chunk = p.batch.bytes.get(p.done..end).unwrap_or_default();
        if chunk.is_empty() {
            break;
        }
        match f.file.write(chunk) {
            Ok(0) => {
                let path = shared.dir.join(id.file_name());
                let e = io::Error::from(io::ErrorKind::WriteZero);
                return Err(Failure::Transient(StoredError::new(WalOp::Write, &path, e)));
            }
            Ok(n) => {
                p.done += n;
                f.dirty = true;
            }
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => {
                let path = shared.dir.join(id.file_name());
                return Err(Failure::Transient(StoredError::new(WalOp::Write, &path, e)));
            }
        }
    }
    Ok(())
}

/// Closes a full segment: fsyncs it (so later fsyncs of newer segments cover everything
/// before them), then keeps it for replay, or removes it if it was released meanwhile.
fn close(shared: &Shared, old: OpenSegment) -> Result<(), Failure> {
    let path = shared.dir.join(old.id.file_name());
    if shared.policy.fsync && old.dirty {
        old.file
            .sync_data()
            .map_err(|e| Failure::Fatal(StoredError::new(WalOp::Sync, &path, e)))?;
        shared.lock().counters.fsyncs += 1;
    }
    drop(old.file);
    let released = {
        let mut st = shared.lock();
        st.open = None;
        let released = old.id < st.release_below;
        if released {
            st.counters.segments_released += 1;
        } else {
            st.closed.insert(old.id);
        }
        released
    };
    if released {
        let removed = fs::remove_file(&path);
        if let Err(e) = removed.map(|()| shared.policy.fsync).and_then(|sync| {
            if sync {
                File::open(&shared.dir)?.sync_all()?;
            }
            Ok(())
        }) {
            // A leftover segment is only replayed again (its points are in Whisper already);
            // the next release removes it.
            tracing::warn!(path = %path.display(), error = %e, "cannot remove a released write-ahead log segment");
            shared.lock().closed.insert(old.id);
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn runs_map_offsets_to_segments() {
        let batch = Batch {
            bytes: vec![0; 30],
            runs: vec![(0, SegmentId::new(3)), (10, SegmentId::new(4)), (25, SegmentId::new(5))],
        };
        assert_eq!(batch.run_at(0), Some((SegmentId::new(3), 10)));
        assert_eq!(batch.run_at(9), Some((SegmentId::new(3), 10)));
        assert_eq!(batch.run_at(10), Some((SegmentId::new(4), 25)));
        assert_eq!(batch.run_at(29), Some((SegmentId::new(5), 30)));
        assert_eq!(batch.run_at(30), Some((SegmentId::new(5), 30)));
        assert_eq!(Batch::default().run_at(0), None);
    }
}
