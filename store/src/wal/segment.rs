//! Segment files: their names, creating one durably, listing a directory, and reading one back
//! (replay), with damage found, skipped and reported.

use std::fmt;
use std::fs::{self, File, OpenOptions};
use std::io::{self, Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};

use super::codec::{
    self, Decoder, Frame, HEADER_BYTES, HeaderError, RECORD_HEADER_BYTES, decode_frame,
    decode_header, find_marker,
};
use super::error::{WalError, WalOp};

/// The number of a segment. Segments are numbered from 1 in the order they are written; every
/// [`Wal::open`](super::Wal::open) starts a new one after the highest on disk.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct SegmentId(u64);

impl SegmentId {
    /// The segment numbered `n`.
    pub const fn new(n: u64) -> Self {
        SegmentId(n)
    }

    /// The segment's number.
    pub const fn get(self) -> u64 {
        self.0
    }

    /// The segment after this one.
    pub const fn next(self) -> Self {
        SegmentId(self.0.saturating_add(1))
    }

    /// The segment's file name: its number in 20 decimal digits (all of `u64`), so names sort
    /// as numbers do, and `.wal`.
    pub fn file_name(self) -> String {
        format!("{:020}.wal", self.0)
    }

    /// The segment whose file is called `name`, if it is a segment name.
    pub fn from_file_name(name: &str) -> Option<Self> {
        let digits = name.strip_suffix(".wal")?;
        if digits.len() != 20 || !digits.bytes().all(|b| b.is_ascii_digit()) {
            return None;
        }
        digits.parse().ok().map(SegmentId)
    }
}

impl fmt::Display for SegmentId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.fmt(f)
    }
}

/// A temporary segment being created: renamed to its real name once its header is on disk.
const TEMP_SUFFIX: &str = ".tmp";

/// Flushes the directory entry changes (create, rename, remove) of `dir`.
pub(crate) fn sync_dir(dir: &Path) -> Result<(), WalError> {
    File::open(dir).and_then(|d| d.sync_all()).map_err(|e| WalError::io(WalOp::SyncDir, dir, e))
}

/// Creates segment `id` in `dir` with its header, under a temporary name renamed when the
/// header is written, so a segment file always has a whole header. With `durable`, the header
/// and the directory are fsynced before returning.
pub(crate) fn create(dir: &Path, id: SegmentId, durable: bool) -> Result<File, WalError> {
    let path = dir.join(id.file_name());
    let temp = dir.join(format!("{}{TEMP_SUFFIX}", id.file_name()));
    let result = (|| {
        let mut file = OpenOptions::new().write(true).create_new(true).open(&temp)?;
        file.write_all(&codec::encode_header(id.get()))?;
        if durable {
            file.sync_data()?;
        }
        fs::rename(&temp, &path)?;
        Ok(file)
    })();
    match result {
        Ok(file) => {
            if durable {
                sync_dir(dir)?;
            }
            Ok(file)
        }
        Err(e) => {
            let _ = fs::remove_file(&temp);
            Err(WalError::io(WalOp::Create, path, e))
        }
    }
}

/// The segments in `dir`, in order, with their paths. Leftover temporary files of a creation
/// cut short are removed when `clean` is set.
pub(crate) fn list(dir: &Path, clean: bool) -> Result<Vec<(SegmentId, PathBuf)>, WalError> {
    let list_err = |e| WalError::io(WalOp::List, dir, e);
    let mut segments = Vec::new();
    for entry in fs::read_dir(dir).map_err(list_err)? {
        let entry = entry.map_err(list_err)?;
        let name = entry.file_name();
        let Some(name) = name.to_str() else { continue };
        if let Some(id) = SegmentId::from_file_name(name) {
            segments.push((id, entry.path()));
        } else if clean
            && name
                .strip_suffix(TEMP_SUFFIX)
                .is_some_and(|s| SegmentId::from_file_name(s).is_some())
        {
            fs::remove_file(entry.path())
                .map_err(|e| WalError::io(WalOp::Remove, entry.path(), e))?;
        }
    }
    segments.sort_unstable_by_key(|&(id, _)| id);
    Ok(segments)
}

// ---- replay ---------------------------------------------------------------------------------

/// What replay found: counts, and the damage it skipped.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct ReplayStats {
    /// Segment files read.
    pub segments: u64,
    /// Records replayed.
    pub records: u64,
    /// Points passed to the replay callback.
    pub points: u64,
    /// Bytes of the records replayed, frames included (headers and damage not counted).
    pub record_bytes: u64,
    /// Bytes cut from the end of the last segment: a record a crash left half written, or
    /// damage with no whole record after it. The file is truncated to its last whole record.
    pub torn_bytes: u64,
    /// Bytes skipped as damaged in the middle of segments (the torn tail not included).
    pub corrupt_bytes: u64,
    /// Damaged regions found (only the first [`MAX_REPORTED_CORRUPTIONS`] are in
    /// [`corruptions`](Self::corruptions)).
    pub corrupt_regions: u64,
    /// Points of whole records that were not replayed because their metric name was written in
    /// a damaged record (a name is written once per segment).
    pub points_without_name: u64,
    /// Segments that held no record (left by a run that appended nothing), removed by
    /// [`Wal::open`](super::Wal::open).
    pub empty_segments_removed: u64,
    /// The first damaged regions, in the order found.
    pub corruptions: Vec<Corruption>,
}

/// The most damaged regions listed in [`ReplayStats::corruptions`].
pub const MAX_REPORTED_CORRUPTIONS: usize = 32;

impl ReplayStats {
    fn corrupt(&mut self, c: Corruption) {
        tracing::warn!(path = %c.path.display(), offset = c.offset, len = c.len, kind = ?c.kind, "write-ahead log damage skipped");
        self.corrupt_regions += 1;
        self.corrupt_bytes += c.len;
        if self.corruptions.len() < MAX_REPORTED_CORRUPTIONS {
            self.corruptions.push(c);
        }
    }
}

/// A damaged region of a segment that replay skipped.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Corruption {
    /// The segment file.
    pub path: PathBuf,
    /// Where the damage starts, in bytes from the start of the file.
    pub offset: u64,
    /// Bytes skipped.
    pub len: u64,
    /// What was wrong.
    pub kind: CorruptionKind,
}

impl fmt::Display for Corruption {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{}: {} at byte {}, {} bytes skipped",
            self.path.display(),
            self.kind,
            self.offset,
            self.len
        )
    }
}

/// What a [`Corruption`] was.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum CorruptionKind {
    /// The segment header is cut short, fails its checksum, or names another segment: the
    /// whole segment was skipped.
    Header,
    /// Bytes that are not a record (bad marker, length or checksum), up to the next whole
    /// record, or a record whose checksum holds but that does not decode.
    Record,
    /// Bytes with no whole record after them, up to the end of a segment that is not the last
    /// (the last one's is a torn tail, [`ReplayStats::torn_bytes`]).
    Tail,
}

impl fmt::Display for CorruptionKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            CorruptionKind::Header => "damaged segment header",
            CorruptionKind::Record => "damaged record",
            CorruptionKind::Tail => "damaged end of segment",
        })
    }
}

/// How one segment ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct SegmentEnd {
    /// The end of the last whole record (or of the header): where a torn tail starts.
    pub(crate) valid_len: u64,
    /// The file's length.
    pub(crate) file_len: u64,
    /// Whether it held at least one record.
    pub(crate) has_records: bool,
    /// Whether damage was found in it (other than a torn tail).
    pub(crate) damaged: bool,
    /// Whether the header was cut short (only possible through outside damage, since segments
    /// are created under a temporary name).
    pub(crate) short_header: bool,
}

/// Bytes read at a time.
const READ_BYTES: usize = 1 << 20;

/// A forward-only window over a file: bytes from an offset on, read as needed, with bytes
/// before the last requested offset dropped, so memory stays at about one record plus one
/// read.
struct Window<'p> {
    file: File,
    path: &'p Path,
    /// Bytes read and not dropped.
    buf: Vec<u8>,
    /// File offset of `buf[0]`.
    base: u64,
    /// Whether the file's end was reached.
    eof: bool,
    /// The file's length when opened: reads stop there (a log being written may grow), and
    /// are no larger than what is left.
    len: u64,
}

impl<'p> Window<'p> {
    fn new(file: File, path: &'p Path, len: u64) -> Self {
        Window { file, path, buf: Vec::new(), base: 0, eof: false, len }
    }

    /// The bytes from `off` on: at least `want` of them unless the file ends first. `off` is
    /// never before an offset asked for earlier.
    fn at(&mut self, off: u64, want: usize) -> Result<&[u8], WalError> {
        let buffered_end = self.base + self.buf.len() as u64;
        if off >= buffered_end {
            self.buf.clear();
            if off > buffered_end {
                self.file
                    .seek(SeekFrom::Start(off))
                    .map_err(|e| WalError::io(WalOp::Read, self.path, e))?;
                self.eof = false;
            }
            self.base = off;
        }
        let skip = usize::try_from(off.saturating_sub(self.base)).unwrap_or(usize::MAX);
        // Dropping is a copy of what is left: do it only once it is worth it.
        if skip >= READ_BYTES {
            self.buf.drain(..skip.min(self.buf.len()));
            self.base = off;
        }
        let start = usize::try_from(off.saturating_sub(self.base))
            .unwrap_or(usize::MAX)
            .min(self.buf.len());
        while self.buf.len() - start < want && !self.eof {
            let have = self.buf.len();
            let left = self.len.saturating_sub(self.base + have as u64);
            let more = usize::try_from(left)
                .unwrap_or(usize::MAX)
                .min(READ_BYTES.max(want - (have - start)));
            if more == 0 {
                self.eof = true;
                break;
            }
            self.buf.resize(have + more, 0);
            let read = loop {
                match self.file.read(self.buf.get_mut(have..).unwrap_or_default()) {
                    Ok(n) => break n,
                    Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                    Err(e) => {
                        self.buf.truncate(have);
                        return Err(WalError::io(WalOp::Read, self.path, e));
                    }
                }
            };
            self.buf.truncate(have + read);
            self.eof = read == 0;
        }
        Ok(self.buf.get(start..).unwrap_or_default())
    }
}

/// Reads segment `id` at `path`, calling `emit` for every point of every whole record, and
/// adds what it found to `stats`. Damage is skipped and reported; a bad tail of the `last`
/// segment is counted as torn (the caller truncates it), of any other as a
/// [`CorruptionKind::Tail`]. Fails only when the file cannot be read, is not a segment, or is
/// of another format version.
pub(crate) fn replay(
    path: &Path,
    id: SegmentId,
    last: bool,
    emit: &mut dyn FnMut(SegmentId, &str, u32, f64),
    stats: &mut ReplayStats,
) -> Result<SegmentEnd, WalError> {
    let file = File::open(path).map_err(|e| WalError::io(WalOp::Open, path, e))?;
    let file_len = file.metadata().map_err(|e| WalError::io(WalOp::Open, path, e))?.len();
    let mut win = Window::new(file, path, file_len);
    stats.segments += 1;
    let mut end = SegmentEnd {
        valid_len: 0,
        file_len,
        has_records: false,
        damaged: false,
        short_header: false,
    };

    let header = win.at(0, HEADER_BYTES)?;
    match decode_header(header) {
        Ok(n) if n == id.get() => {}
        Err(HeaderError::BadMagic) => return Err(WalError::BadMagic { path: path.into() }),
        Err(HeaderError::Version(found)) => {
            return Err(WalError::UnsupportedVersion {
                path: path.into(),
                found,
                supported: codec::FORMAT_VERSION,
            });
        }
        Err(HeaderError::Short) if last => {
            end.short_header = true;
            stats.torn_bytes += file_len;
            return Ok(end);
        }
        Ok(_) | Err(HeaderError::Short | HeaderError::Checksum) => {
            end.damaged = true;
            end.valid_len = file_len; // nothing to cut: the file is kept as it is
            stats.corrupt(Corruption {
                path: path.into(),
                offset: 0,
                len: file_len,
                kind: CorruptionKind::Header,
            });
            return Ok(end);
        }
    }

    let mut decoder = Decoder::default();
    let mut pos = HEADER_BYTES as u64;
    loop {
        end.valid_len = pos;
        let bytes = win.at(pos, RECORD_HEADER_BYTES)?;
        if bytes.is_empty() {
            break;
        }
        let mut frame = decode_frame(bytes);
        if let Frame::Incomplete { len } = frame {
            frame = decode_frame(win.at(pos, len)?);
        }
        let bad_len = match frame {
            Frame::Record { payload, len } => {
                match decoder.apply(payload, |name, ts, value| emit(id, name, ts, value)) {
                    Ok(applied) => {
                        stats.records += 1;
                        stats.points += applied.points;
                        stats.points_without_name += applied.lost;
                        stats.record_bytes += len as u64;
                        end.has_records = true;
                        pos += len as u64;
                        continue;
                    }
                    // Checksum holds but it does not decode: skip exactly this record.
                    Err(_) => Some(len as u64),
                }
            }
            Frame::Incomplete { .. } | Frame::Invalid => None,
        };
        // Damage at `pos`: find the next whole record.
        let next = match bad_len {
            Some(len) => Some(pos + len),
            None => resync(&mut win, pos + 1)?,
        };
        match next {
            Some(next) => {
                end.damaged = true;
                decoder.skipped(next - pos);
                stats.corrupt(Corruption {
                    path: path.into(),
                    offset: pos,
                    len: next - pos,
                    kind: CorruptionKind::Record,
                });
                pos = next;
            }
            None if last => {
                stats.torn_bytes += file_len - pos;
                break;
            }
            None => {
                end.damaged = true;
                stats.corrupt(Corruption {
                    path: path.into(),
                    offset: pos,
                    len: file_len - pos,
                    kind: CorruptionKind::Tail,
                });
                break;
            }
        }
    }
    Ok(end)
}

/// The offset of the first whole record at or after `from`, if any.
fn resync(win: &mut Window<'_>, from: u64) -> Result<Option<u64>, WalError> {
    let mut q = from;
    loop {
        let bytes = win.at(q, READ_BYTES)?;
        let Some(i) = find_marker(bytes) else {
            if bytes.len() < codec::RECORD_MARKER.len() {
                return Ok(None); // the window reaches the end of the file
            }
            // A marker may straddle the window's end: keep its first bytes.
            q += (bytes.len() + 1 - codec::RECORD_MARKER.len()) as u64;
            continue;
        };
        q += i as u64;
        let mut frame = decode_frame(win.at(q, RECORD_HEADER_BYTES)?);
        if let Frame::Incomplete { len } = frame {
            frame = decode_frame(win.at(q, len)?);
        }
        if let Frame::Record { .. } = frame {
            return Ok(Some(q));
        }
        q += 1;
    }
}

/// Reads every segment in `dir`, in order, as [`Wal::open`](super::Wal::open) does, calling
/// `replay` for each point, without changing anything: no truncation, no new segment, no lock.
/// For tools and tests; a log being written may show a torn tail that is only in flight.
///
/// # Errors
///
/// When the directory or a segment cannot be read, a segment has a bad magic, or is of another
/// format version.
pub fn replay_dir(
    dir: &Path,
    mut replay: impl FnMut(SegmentId, &str, u32, f64),
) -> Result<ReplayStats, WalError> {
    let mut stats = ReplayStats::default();
    let segments = list(dir, false)?;
    for (i, (id, path)) in segments.iter().enumerate() {
        self::replay(path, *id, i + 1 == segments.len(), &mut replay, &mut stats)?;
    }
    Ok(stats)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn file_names_sort_as_numbers_and_parse_back() {
        let ids = [1, 9, 10, 99, 100, u64::MAX].map(SegmentId::new);
        let mut names: Vec<String> = ids.iter().map(|id| id.file_name()).collect();
        names.sort();
        let back: Vec<SegmentId> =
            names.iter().map(|n| SegmentId::from_file_name(n).unwrap()).collect();
        assert_eq!(back, ids);
        assert_eq!(SegmentId::new(7).file_name(), "00000000000000000007.wal");
        for bad in [
            "7.wal",
            "0000000000000000000a.wal",
            "00000000000000000007.wal.tmp",
            "99999999999999999999.wal",
            "LOCK",
        ] {
            assert_eq!(SegmentId::from_file_name(bad), None, "{bad}");
        }
    }

    #[test]
    fn the_window_hands_out_what_was_asked() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("f");
        let data: Vec<u8> = (0..3 * READ_BYTES + 17).map(|i| (i % 251) as u8).collect();
        fs::write(&path, &data).unwrap();
        let mut win = Window::new(File::open(&path).unwrap(), &path, data.len() as u64);
        for off in
            [0, 1, 5, READ_BYTES - 1, READ_BYTES + 3, 2 * READ_BYTES, data.len() - 2, data.len()]
        {
            let got = win.at(off as u64, 10).unwrap();
            let want = &data[off..(off + 10).min(data.len())];
            assert_eq!(&got[..want.len()], want, "{off}");
        }
    }
}
