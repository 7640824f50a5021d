//! The on-disk spool of one destination: what could not be sent yet, oldest first.
//!
//! The spool is a directory of segment files named by a sequence number
//! (`00000001099511627776.seg`), each written in the format of [`super::record`]. New
//! records are appended to the newest segment (the head); replay reads the oldest segment a
//! record at a time and deletes it once every record in it has been written to the
//! destination. Segments survive a restart: [`Spool::open`] scans them, cuts a damaged tail
//! off (keeping the good records before it) and reports each damage with its path.
//!
//! Limits: the files together never exceed `max_bytes`. To make room the oldest segment is
//! deleted and its points counted as dropped, so what survives a long outage is the newest
//! data, without a gap in the middle. A segment is sealed once it passes an eighth of
//! `max_bytes` (at most 8 MiB), so the cap drops about an eighth of the spool at a time.
//!
//! Durability: appends are plain `write`s (they survive a crash of the agent, not of the
//! machine); the head is fsynced at most once a second by [`Spool::sync_if_due`], when it is
//! sealed, and at shutdown. A machine crash can lose the last second of spooled points; the
//! torn record it may leave is found and cut off at the next start.
//!
//! One process at a time may use a spool directory (it is not locked).

use std::collections::VecDeque;
use std::fs::{self, File, OpenOptions};
use std::io::{self, BufReader, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use carbon_proto::Point;

use super::record::{self, ReadError, SEGMENT_MAGIC, SegmentReader};

/// Largest segment size; smaller caps use an eighth of the cap.
const MAX_SEGMENT_BYTES: u64 = 8 << 20;

/// How long spooled points may sit in the page cache before an fsync.
const SYNC_INTERVAL: Duration = Duration::from_secs(1);

/// Sequence number of the first segment of a new spool: high enough that a failed batch can
/// be put in front of the oldest segment ([`Spool::push_front`]) about a trillion times.
const FIRST_SEQ: u64 = 1 << 40;

/// A damaged segment found while opening or replaying the spool.
#[derive(Debug)]
pub(crate) struct Damage {
    /// The segment file.
    pub(crate) path: PathBuf,
    /// Where the damage starts.
    pub(crate) offset: u64,
    /// Good records kept before it.
    pub(crate) kept_records: usize,
    /// What is wrong.
    pub(crate) error: ReadError,
}

/// One segment file.
#[derive(Debug)]
struct Segment {
    /// Its sequence number (the file name).
    seq: u64,
    /// Its size in bytes.
    bytes: u64,
    /// Points in it, acknowledged or not.
    points: u64,
    /// Points already written to the destination (records before the replay cursor).
    acked: u64,
}

/// The newest segment, open for appending.
#[derive(Debug)]
struct Head {
    /// The open file.
    file: File,
    /// Its sequence number (the last of `segments`).
    seq: u64,
    /// Whether writes since the last fsync are pending, and since when.
    dirty_since: Option<Instant>,
    /// Whether the directory entry has been fsynced.
    dir_synced: bool,
}

/// The replay cursor in the oldest segment.
#[derive(Debug)]
struct Cursor {
    /// The segment (the first of `segments`).
    seq: u64,
    /// The file, positioned after the last record read.
    reader: SegmentReader<BufReader<File>>,
    /// Offset of the first record not yet acknowledged; the reader is re-opened here if a
    /// record was read and not acknowledged.
    acked_offset: u64,
}

/// A record handed out by [`Spool::next_record`], to acknowledge once written.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Token {
    seq: u64,
    offset: u64,
    next_offset: u64,
    points: u64,
}

/// The spool of one destination. Not thread-safe by itself: the destination's state mutex
/// guards it.
#[derive(Debug)]
pub(crate) struct Spool {
    /// `spool_dir/<destination>`.
    dir: PathBuf,
    /// Cap on the files' total size.
    max_bytes: u64,
    /// Size at which the head is sealed.
    segment_bytes: u64,
    /// Points per record when appending.
    batch_size: usize,
    /// The segments, oldest first.
    segments: VecDeque<Segment>,
    /// The open newest segment, if any.
    head: Option<Head>,
    /// Replay position, if a replay has started on the oldest segment.
    cursor: Option<Cursor>,
    /// Next sequence number for a new head.
    next_seq: u64,
    /// Total size of the segments.
    total_bytes: u64,
    /// Points on disk not yet acknowledged.
    pending_points: u64,
    /// Points dropped by the cap (or lost to damage) since start.
    dropped: u64,
    /// Damaged segments found since start.
    damaged: u64,
    /// Encoding buffer.
    buf: Vec<u8>,
}

impl Spool {
    /// Opens (creating it if needed) the spool in `dir` and scans what a previous run left.
    ///
    /// Damaged segments are truncated to their good records and returned for the caller to
    /// log; a segment with no good record is deleted.
    pub(crate) fn open(
        dir: &Path,
        max_bytes: u64,
        batch_size: usize,
    ) -> io::Result<(Spool, Vec<Damage>)> {
        fs::create_dir_all(dir)?;
        let mut seqs = Vec::new();
        for entry in fs::read_dir(dir)? {
            let entry = entry?;
            let name = entry.file_name();
            let Some(name) = name.to_str() else { continue };
            if let Some(seq) = name.strip_suffix(".seg").and_then(|s| s.parse::<u64>().ok()) {
                seqs.push(seq);
            }
        }
        seqs.sort_unstable();
        let mut spool = Spool {
            dir: dir.to_path_buf(),
            max_bytes: max_bytes.max(1),
            segment_bytes: (max_bytes / 8).clamp(1, MAX_SEGMENT_BYTES),
            batch_size: batch_size.max(1),
            segments: VecDeque::new(),
            head: None,
            cursor: None,
            next_seq: seqs.last().map_or(FIRST_SEQ, |s| s.saturating_add(1)),
            total_bytes: 0,
            pending_points: 0,
            dropped: 0,
            damaged: 0,
            buf: Vec::new(),
        };
        let mut damages = Vec::new();
        for seq in seqs {
            let path = spool.path(seq);
            let scan = record::scan_segment(BufReader::new(File::open(&path)?));
            let points: u64 = scan.records.iter().map(|(_, p)| p.len() as u64).sum();
            if let Some((offset, error)) = scan.error {
                spool.damaged += 1;
                damages.push(Damage {
                    path: path.clone(),
                    offset,
                    kept_records: scan.records.len(),
                    error,
                });
                if !scan.records.is_empty() {
                    OpenOptions::new().write(true).open(&path)?.set_len(scan.good_len)?;
                }
            }
            if points == 0 {
                fs::remove_file(&path)?;
                continue;
            }
            spool.total_bytes += scan.good_len;
            spool.pending_points += points;
            spool.segments.push_back(Segment { seq, bytes: scan.good_len, points, acked: 0 });
        }
        // A smaller cap than last time applies at once.
        while spool.total_bytes > spool.max_bytes && !spool.segments.is_empty() {
            spool.drop_oldest();
        }
        if !spool.segments.is_empty() {
            tracing::info!(
                dir = %dir.display(), segments = spool.segments.len(), points = spool.pending_points,
                "spool holds points from a previous run; they are sent first"
            );
        }
        Ok((spool, damages))
    }

    fn path(&self, seq: u64) -> PathBuf {
        self.dir.join(format!("{seq:020}.seg"))
    }

    /// Points on disk not yet written to the destination.
    pub(crate) fn pending_points(&self) -> u64 {
        self.pending_points
    }

    /// Points dropped by the size cap or lost to damage since start.
    pub(crate) fn dropped(&self) -> u64 {
        self.dropped
    }

    /// Damaged segments found since start.
    pub(crate) fn damaged(&self) -> u64 {
        self.damaged
    }

    /// Appends `points` (after everything already spooled), a record per `batch_size`
    /// points, dropping the oldest segments if the cap requires it.
    ///
    /// # Errors
    ///
    /// The I/O error of the first record that could not be written; the records before it
    /// are in the spool, the rest are not (the caller decides what to do with them: it gets
    /// how many points were written).
    pub(crate) fn append(&mut self, points: &[Point]) -> Result<(), (usize, io::Error)> {
        let mut written = 0;
        for chunk in points.chunks(self.batch_size) {
            match self.append_record(chunk) {
                Ok(()) => written += chunk.len(),
                Err(e) => return Err((written, e)),
            }
        }
        Ok(())
    }

    fn append_record(&mut self, points: &[Point]) -> io::Result<()> {
        self.buf.clear();
        let encoded = record::encode_record(&mut self.buf, points) as u64;
        self.dropped += points.len() as u64 - encoded;
        let len = self.buf.len() as u64;
        let magic = SEGMENT_MAGIC.len() as u64;
        if len + magic > self.max_bytes {
            self.dropped += encoded;
            tracing::warn!(
                dir = %self.dir.display(), points = encoded, record_bytes = len,
                "a batch is larger than spool_max_bytes: dropped"
            );
            return Ok(());
        }
        let needs_head = self.head.is_none();
        let extra = if needs_head { magic } else { 0 };
        while self.total_bytes + len + extra > self.max_bytes && !self.segments.is_empty() {
            self.drop_oldest();
        }
        if self.head.is_none() {
            self.open_head()?;
        }
        let Some(head) = self.head.as_mut() else { return Ok(()) };
        let Some(segment) = self.segments.back_mut() else { return Ok(()) };
        if let Err(e) = head.file.write_all(&self.buf) {
            // Leave no torn record behind: cut the file back to its last good record.
            if head.file.set_len(segment.bytes).is_err() {
                self.seal_head();
            }
            return Err(e);
        }
        head.dirty_since.get_or_insert_with(Instant::now);
        segment.bytes += len;
        segment.points += encoded;
        self.total_bytes += len;
        self.pending_points += encoded;
        if segment.bytes >= self.segment_bytes {
            self.seal_head();
        }
        Ok(())
    }

    fn open_head(&mut self) -> io::Result<()> {
        let seq = self.next_seq;
        let path = self.path(seq);
        let mut file = OpenOptions::new().create_new(true).append(true).open(&path)?;
        if let Err(e) = file.write_all(SEGMENT_MAGIC) {
            let _ = fs::remove_file(&path);
            return Err(e);
        }
        self.next_seq = seq.saturating_add(1);
        let bytes = SEGMENT_MAGIC.len() as u64;
        self.total_bytes += bytes;
        self.segments.push_back(Segment { seq, bytes, points: 0, acked: 0 });
        self.head = Some(Head { file, seq, dirty_since: Some(Instant::now()), dir_synced: false });
        Ok(())
    }

    /// Puts a batch in front of everything spooled: a batch that was taken from memory and
    /// failed to send is older than anything the spool holds (the sender only takes from
    /// memory when the spool is empty). If the cap has no room for it, the batch itself is
    /// the oldest data and is dropped.
    pub(crate) fn push_front(&mut self, points: &[Point]) -> io::Result<()> {
        if self.segments.is_empty() {
            return self.append(points).map_err(|(_, e)| e);
        }
        // The cursor is on a record of the oldest segment only if a replay is under way,
        // in which case no batch from memory is in flight.
        let front = self.segments.front().map_or(FIRST_SEQ, |s| s.seq);
        let Some(seq) = front.checked_sub(1) else {
            return Err(io::Error::other("no sequence number left before the oldest segment"));
        };
        let mut buf = SEGMENT_MAGIC.to_vec();
        let mut encoded = 0;
        for chunk in points.chunks(self.batch_size) {
            encoded += record::encode_record(&mut buf, chunk) as u64;
        }
        self.dropped += points.len() as u64 - encoded;
        let len = buf.len() as u64;
        if self.total_bytes + len > self.max_bytes {
            self.dropped += encoded;
            tracing::warn!(
                dir = %self.dir.display(), points = encoded,
                "spool full: the oldest batch (which failed to send) is dropped"
            );
            return Ok(());
        }
        let path = self.path(seq);
        let mut file = OpenOptions::new().create_new(true).write(true).open(&path)?;
        if let Err(e) = file.write_all(&buf).and_then(|()| file.sync_data()) {
            let _ = fs::remove_file(&path);
            return Err(e);
        }
        self.sync_dir();
        self.total_bytes += len;
        self.pending_points += encoded;
        self.segments.push_front(Segment { seq, bytes: len, points: encoded, acked: 0 });
        Ok(())
    }

    /// The next record to replay, oldest first, with a token to [`ack`](Self::ack) once it
    /// has been written. A record handed out and not acknowledged (its write failed) is
    /// handed out again. Seals the head if the replay has reached it. A damaged or
    /// unreadable segment is logged, counted and deleted, and the replay goes on with the
    /// next one.
    pub(crate) fn next_record(&mut self) -> Option<(Token, Vec<Point>)> {
        loop {
            let seq = self.segments.front()?.seq;
            if self.head.as_ref().is_some_and(|h| h.seq == seq) {
                self.seal_head();
            }
            let reopen_at = match &self.cursor {
                Some(c) if c.seq == seq && c.reader.offset() == c.acked_offset => None,
                Some(c) if c.seq == seq => Some(c.acked_offset),
                _ => Some(0),
            };
            if let Some(at) = reopen_at {
                match self.open_cursor(seq, at) {
                    Ok(c) => self.cursor = Some(c),
                    Err(error) => {
                        self.damaged_front(at, ReadError::Io(error));
                        continue;
                    }
                }
            }
            let Some(cursor) = self.cursor.as_mut() else { continue };
            let offset = cursor.reader.offset();
            match cursor.reader.next_record() {
                Ok(Some(points)) => {
                    let token = Token {
                        seq,
                        offset,
                        next_offset: cursor.reader.offset(),
                        points: points.len() as u64,
                    };
                    return Some((token, points));
                }
                // Every record acknowledged (or none at all): the segment is done.
                Ok(None) => self.remove_front(),
                Err(error) => {
                    let at = cursor.reader.offset();
                    self.damaged_front(at, error);
                }
            }
        }
    }

    fn open_cursor(&self, seq: u64, at: u64) -> io::Result<Cursor> {
        let mut file = File::open(self.path(seq))?;
        let reader = if at == 0 {
            SegmentReader::new(BufReader::new(file))
        } else {
            file.seek(SeekFrom::Start(at))?;
            SegmentReader::resume(BufReader::new(file), at)
        };
        Ok(Cursor { seq, reader, acked_offset: at })
    }

    /// Records that the record behind `token` has been written to the destination; deletes
    /// its segment once every record in it has been. A token whose segment was dropped in
    /// the meantime (by the cap) is ignored.
    pub(crate) fn ack(&mut self, token: Token) {
        let Some(cursor) = self.cursor.as_mut() else { return };
        if cursor.seq != token.seq || cursor.acked_offset != token.offset {
            return;
        }
        let Some(front) = self.segments.front_mut() else { return };
        if front.seq != token.seq {
            return;
        }
        cursor.acked_offset = token.next_offset;
        front.acked += token.points;
        self.pending_points = self.pending_points.saturating_sub(token.points);
        if token.next_offset >= front.bytes {
            self.remove_front();
        }
    }

    /// Deletes the oldest segment once it has been replayed.
    fn remove_front(&mut self) {
        let Some(front) = self.segments.pop_front() else { return };
        if self.head.as_ref().is_some_and(|h| h.seq == front.seq) {
            self.head = None;
        }
        if self.cursor.as_ref().is_some_and(|c| c.seq == front.seq) {
            self.cursor = None;
        }
        let path = self.path(front.seq);
        if let Err(error) = fs::remove_file(&path) {
            tracing::warn!(path = %path.display(), %error, "cannot delete a replayed spool segment");
        }
        self.total_bytes = self.total_bytes.saturating_sub(front.bytes);
        // Normally 0: every point was acknowledged.
        let left = front.points.saturating_sub(front.acked);
        self.pending_points = self.pending_points.saturating_sub(left);
        self.dropped += left;
    }

    /// Deletes the oldest segment to make room; its unsent points are counted as dropped.
    fn drop_oldest(&mut self) {
        let Some(front) = self.segments.front() else { return };
        let lost = front.points.saturating_sub(front.acked);
        tracing::warn!(
            dir = %self.dir.display(), segment = front.seq, points = lost, max_bytes = self.max_bytes,
            "spool full: dropping its oldest segment"
        );
        self.remove_front();
    }

    /// The oldest segment cannot be read past `offset`: log, count, delete it.
    fn damaged_front(&mut self, offset: u64, error: ReadError) {
        let Some(front) = self.segments.front() else { return };
        let lost = front.points.saturating_sub(front.acked);
        tracing::warn!(
            path = %self.path(front.seq).display(), offset, points_lost = lost, %error,
            "damaged spool segment: the records before the damage were sent, the rest is dropped"
        );
        self.damaged += 1;
        self.remove_front();
    }

    fn seal_head(&mut self) {
        if let Some(head) = self.head.take() {
            if head.dirty_since.is_some() {
                let _ = head.file.sync_data();
            }
            if !head.dir_synced {
                self.sync_dir();
            }
        }
    }

    /// Fsyncs the head if it has had unsynced writes for a second or more.
    pub(crate) fn sync_if_due(&mut self) {
        let due = self
            .head
            .as_ref()
            .and_then(|h| h.dirty_since)
            .is_some_and(|t| t.elapsed() >= SYNC_INTERVAL);
        if due {
            self.sync();
        }
    }

    /// Fsyncs the head now (at shutdown).
    pub(crate) fn sync(&mut self) {
        let mut sync_dir = false;
        if let Some(head) = self.head.as_mut() {
            if head.dirty_since.take().is_some()
                && let Err(error) = head.file.sync_data()
            {
                tracing::warn!(dir = %self.dir.display(), %error, "cannot fsync the spool");
            }
            sync_dir = !head.dir_synced;
            head.dir_synced = true;
        }
        if sync_dir {
            self.sync_dir();
        }
    }

    fn sync_dir(&self) {
        if let Ok(d) = File::open(&self.dir) {
            let _ = d.sync_all();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use carbon_proto::MetricName;

    fn pts(range: std::ops::Range<u32>) -> Vec<Point> {
        range.map(|i| Point::new(MetricName::new("a.b").unwrap(), f64::from(i), 1.0)).collect()
    }

    fn ts(points: &[Point]) -> Vec<u32> {
        points.iter().map(|p| p.datapoint.timestamp as u32).collect()
    }

    /// Replays everything, acknowledging each record.
    fn drain(spool: &mut Spool) -> Vec<u32> {
        let mut out = Vec::new();
        // Bounded: each round acknowledges a record.
        for _ in 0..10_000 {
            let Some((token, points)) = spool.next_record() else { break };
            out.extend(ts(&points));
            spool.ack(token);
        }
        out
    }

    fn files(dir: &Path) -> Vec<PathBuf> {
        let mut v: Vec<PathBuf> = fs::read_dir(dir).unwrap().map(|e| e.unwrap().path()).collect();
        v.sort();
        v
    }

    #[test]
    fn replays_in_order_and_deletes_acknowledged_segments() {
        let dir = tempfile::tempdir().unwrap();
        let (mut spool, damage) = Spool::open(dir.path(), 1 << 20, 10).unwrap();
        assert!(damage.is_empty());
        spool.append(&pts(0..25)).unwrap();
        spool.append(&pts(25..40)).unwrap();
        assert_eq!(spool.pending_points(), 40);
        assert_eq!(drain(&mut spool), (0..40).collect::<Vec<_>>());
        assert_eq!(spool.pending_points(), 0);
        assert!(files(dir.path()).is_empty());
    }

    #[test]
    fn a_record_not_acknowledged_is_handed_out_again() {
        let dir = tempfile::tempdir().unwrap();
        let (mut spool, _) = Spool::open(dir.path(), 1 << 20, 5).unwrap();
        spool.append(&pts(0..10)).unwrap();
        let (t1, first) = spool.next_record().unwrap();
        let (_, again) = spool.next_record().unwrap();
        assert_eq!(ts(&first), ts(&again));
        spool.ack(t1);
        assert_eq!(drain(&mut spool), (5..10).collect::<Vec<_>>());
    }

    #[test]
    fn survives_a_restart() {
        let dir = tempfile::tempdir().unwrap();
        {
            let (mut spool, _) = Spool::open(dir.path(), 1 << 20, 7).unwrap();
            spool.append(&pts(0..30)).unwrap();
            // Half replayed, then the agent stops before acknowledging the rest.
            let (t, _) = spool.next_record().unwrap();
            spool.ack(t);
            spool.sync();
        }
        let (mut spool, damage) = Spool::open(dir.path(), 1 << 20, 7).unwrap();
        assert!(damage.is_empty());
        let got = drain(&mut spool);
        // The acknowledged record is sent again: its segment had not been finished.
        assert_eq!(got, (0..30).collect::<Vec<_>>());
    }

    #[test]
    fn push_front_goes_before_everything() {
        let dir = tempfile::tempdir().unwrap();
        let (mut spool, _) = Spool::open(dir.path(), 1 << 20, 100).unwrap();
        spool.append(&pts(10..20)).unwrap();
        spool.push_front(&pts(0..10)).unwrap();
        spool.append(&pts(20..25)).unwrap();
        assert_eq!(drain(&mut spool), (0..25).collect::<Vec<_>>());
    }

    #[test]
    fn the_cap_drops_the_oldest_segments_and_counts_them() {
        let dir = tempfile::tempdir().unwrap();
        let max = 8192;
        let (mut spool, _) = Spool::open(dir.path(), max, 10).unwrap();
        for i in 0..100 {
            spool.append(&pts(i * 10..i * 10 + 10)).unwrap();
            let on_disk: u64 =
                files(dir.path()).iter().map(|f| fs::metadata(f).unwrap().len()).sum();
            assert!(on_disk <= max, "{on_disk} bytes on disk");
        }
        let dropped = spool.dropped();
        assert!(dropped > 0);
        assert_eq!(spool.pending_points() + dropped, 1000);
        let got = drain(&mut spool);
        // What is left is the newest points, without a gap.
        assert_eq!(got, (1000 - got.len() as u32..1000).collect::<Vec<_>>());
    }

    #[test]
    fn a_torn_tail_is_cut_and_reported_with_its_path() {
        let dir = tempfile::tempdir().unwrap();
        {
            let (mut spool, _) = Spool::open(dir.path(), 1 << 20, 10).unwrap();
            spool.append(&pts(0..30)).unwrap();
        }
        let seg = files(dir.path()).pop().unwrap();
        let len = fs::metadata(&seg).unwrap().len();
        OpenOptions::new().write(true).open(&seg).unwrap().set_len(len - 5).unwrap();
        let (mut spool, damage) = Spool::open(dir.path(), 1 << 20, 10).unwrap();
        assert_eq!(damage.len(), 1);
        assert_eq!(damage[0].path, seg);
        assert_eq!(damage[0].kept_records, 2);
        assert!(matches!(damage[0].error, ReadError::Record(record::RecordError::Torn { .. })));
        assert_eq!(spool.damaged(), 1);
        assert_eq!(drain(&mut spool), (0..20).collect::<Vec<_>>());
    }

    #[test]
    fn a_corrupt_record_keeps_the_records_before_it() {
        let dir = tempfile::tempdir().unwrap();
        {
            let (mut spool, _) = Spool::open(dir.path(), 1 << 20, 10).unwrap();
            spool.append(&pts(0..30)).unwrap();
        }
        let seg = files(dir.path()).pop().unwrap();
        let mut bytes = fs::read(&seg).unwrap();
        let mid = bytes.len() / 2;
        bytes[mid] ^= 0xff;
        fs::write(&seg, &bytes).unwrap();
        let (mut spool, damage) = Spool::open(dir.path(), 1 << 20, 10).unwrap();
        assert_eq!(damage.len(), 1);
        assert!(matches!(damage[0].error, ReadError::Record(record::RecordError::Checksum { .. })));
        assert_eq!(drain(&mut spool), (0..10).collect::<Vec<_>>());
    }

    #[test]
    fn a_segment_with_no_good_record_is_deleted() {
        let dir = tempfile::tempdir().unwrap();
        let seg = dir.path().join(format!("{:020}.seg", 5));
        fs::write(&seg, b"GRSPOOL1\x01\x02").unwrap();
        let (spool, damage) = Spool::open(dir.path(), 1 << 20, 10).unwrap();
        assert_eq!(damage.len(), 1);
        assert_eq!(spool.pending_points(), 0);
        assert!(!seg.exists());
    }
}
