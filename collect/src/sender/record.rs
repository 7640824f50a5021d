//! The spool's on-disk format, sans I/O: segment header, framed records with checksums.
//!
//! A segment file is an 8-byte magic (`GRSPOOL1`, the last byte the format version) followed
//! by records. A record is one batch of points:
//!
//! ```text
//! u32 LE  payload length in bytes (at most MAX_RECORD_BYTES)
//! u32 LE  CRC-32 (IEEE) of the payload
//! payload:
//!   u32 LE  number of points
//!   per point:
//!     u16 LE  name length, then the name (UTF-8, a valid MetricName)
//!     u64 LE  timestamp (f64 bits)
//!     u64 LE  value (f64 bits)
//! ```
//!
//! Records are only ever appended, so after a crash the damage is at the tail: a record cut
//! short (torn write) or one whose checksum does not match. [`scan_segment`] reads the good
//! records up to the first bad one and says where and why it stopped; it never panics on any
//! input (see the property tests below).
#![warn(clippy::indexing_slicing)]

use carbon_proto::{MetricName, Point};

/// The first bytes of every segment file; the last byte is the format version.
pub const SEGMENT_MAGIC: &[u8; 8] = b"GRSPOOL1";

/// Bytes before a record's payload: its length and its checksum.
pub const RECORD_HEADER_BYTES: usize = 8;

/// Longest payload accepted. The sender writes one batch per record (a few hundred KiB at
/// most), so a longer length can only be corruption; the cap also bounds what a reader
/// allocates for one record.
pub const MAX_RECORD_BYTES: usize = 64 << 20;

/// Why reading stopped before the end of a segment.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum RecordError {
    /// The file does not start with [`SEGMENT_MAGIC`].
    #[error("not a spool segment (bad magic)")]
    BadMagic,
    /// The data ends inside a record: a write that was cut short (a crash, a full disk).
    #[error("torn record: {have} of {need} bytes present")]
    Torn {
        /// Bytes the record needs, header included.
        need: usize,
        /// Bytes present.
        have: usize,
    },
    /// A length over [`MAX_RECORD_BYTES`].
    #[error("record length {length} is over the limit of {MAX_RECORD_BYTES}")]
    TooLong {
        /// The length read.
        length: u64,
    },
    /// The payload does not match its checksum.
    #[error("checksum mismatch (stored {stored:#010x}, computed {computed:#010x})")]
    Checksum {
        /// The checksum in the record header.
        stored: u32,
        /// The checksum of the bytes read.
        computed: u32,
    },
    /// The checksum matches but the payload does not decode (a bug or a collision).
    #[error("bad payload: {0}")]
    BadPayload(&'static str),
}

/// Appends one record holding `points` to `out`; returns how many points it holds.
///
/// A point whose name is longer than 65,535 bytes cannot be framed and is left out (carbon
/// refuses lines over 16,384 bytes anyway); the caller counts the difference as dropped.
pub fn encode_record(out: &mut Vec<u8>, points: &[Point]) -> usize {
    let start = out.len();
    out.extend_from_slice(&[0; RECORD_HEADER_BYTES]);
    let payload_start = out.len();
    out.extend_from_slice(&[0; 4]);
    let mut count: u32 = 0;
    for p in points {
        let name = p.name.as_str().as_bytes();
        let Ok(len) = u16::try_from(name.len()) else { continue };
        if count == u32::MAX {
            break;
        }
        out.extend_from_slice(&len.to_le_bytes());
        out.extend_from_slice(name);
        out.extend_from_slice(&p.datapoint.timestamp.to_bits().to_le_bytes());
        out.extend_from_slice(&p.datapoint.value.to_bits().to_le_bytes());
        count += 1;
    }
    let payload_len = out.len() - payload_start;
    if payload_len > MAX_RECORD_BYTES {
        // Only a caller that ignores the batch size gets here: split and retry.
        out.truncate(start);
        let (a, b) = points.split_at(points.len() / 2);
        return encode_record(out, a) + encode_record(out, b);
    }
    if let Some(c) = out.get_mut(payload_start..payload_start + 4) {
        c.copy_from_slice(&count.to_le_bytes());
    }
    let crc = crc32fast::hash(out.get(payload_start..).unwrap_or_default());
    // `payload_len` <= MAX_RECORD_BYTES, which fits a u32.
    let len = payload_len as u32;
    let mut header = [0u8; RECORD_HEADER_BYTES];
    header[..4].copy_from_slice(&len.to_le_bytes());
    header[4..].copy_from_slice(&crc.to_le_bytes());
    if let Some(h) = out.get_mut(start..payload_start) {
        h.copy_from_slice(&header);
    }
    count as usize
}

/// A record header: the payload's length and checksum.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RecordHeader {
    /// Payload bytes after the header.
    pub length: usize,
    /// CRC-32 of the payload.
    pub crc: u32,
}

/// Reads a record header from the first [`RECORD_HEADER_BYTES`] of `buf`.
///
/// # Errors
///
/// [`RecordError::TooLong`] for a length over the limit; `Torn` if `buf` is too short.
pub fn decode_header(buf: &[u8]) -> Result<RecordHeader, RecordError> {
    let (Some(len), Some(crc)) = (buf.get(..4), buf.get(4..8)) else {
        return Err(RecordError::Torn { need: RECORD_HEADER_BYTES, have: buf.len() });
    };
    let length = u32::from_le_bytes(len.try_into().unwrap_or_default());
    let crc = u32::from_le_bytes(crc.try_into().unwrap_or_default());
    if length as usize > MAX_RECORD_BYTES {
        return Err(RecordError::TooLong { length: u64::from(length) });
    }
    Ok(RecordHeader { length: length as usize, crc })
}

/// Checks `payload` against `header` and decodes its points.
///
/// # Errors
///
/// [`RecordError::Checksum`] or [`RecordError::BadPayload`].
pub fn decode_payload(header: RecordHeader, payload: &[u8]) -> Result<Vec<Point>, RecordError> {
    let computed = crc32fast::hash(payload);
    if computed != header.crc {
        return Err(RecordError::Checksum { stored: header.crc, computed });
    }
    let mut rest = payload;
    let count = take(&mut rest, 4).ok_or(RecordError::BadPayload("no point count"))?;
    let count = u32::from_le_bytes(count.try_into().unwrap_or_default()) as usize;
    // Each point takes at least 2 + 1 + 16 bytes: a count the payload cannot hold is
    // corruption, and must not size an allocation.
    if count > rest.len() / 19 {
        return Err(RecordError::BadPayload("point count larger than the payload"));
    }
    let mut points = Vec::with_capacity(count);
    for _ in 0..count {
        let len = take(&mut rest, 2).ok_or(RecordError::BadPayload("truncated point"))?;
        let len = u16::from_le_bytes(len.try_into().unwrap_or_default()) as usize;
        let name = take(&mut rest, len).ok_or(RecordError::BadPayload("truncated name"))?;
        let name =
            std::str::from_utf8(name).map_err(|_| RecordError::BadPayload("name not UTF-8"))?;
        let name = MetricName::new(name).map_err(|_| RecordError::BadPayload("bad metric name"))?;
        let ts = take(&mut rest, 8).ok_or(RecordError::BadPayload("truncated timestamp"))?;
        let value = take(&mut rest, 8).ok_or(RecordError::BadPayload("truncated value"))?;
        let ts = f64::from_bits(u64::from_le_bytes(ts.try_into().unwrap_or_default()));
        let value = f64::from_bits(u64::from_le_bytes(value.try_into().unwrap_or_default()));
        points.push(Point::new(name, ts, value));
    }
    if !rest.is_empty() {
        return Err(RecordError::BadPayload("bytes after the last point"));
    }
    Ok(points)
}

fn take<'a>(buf: &mut &'a [u8], n: usize) -> Option<&'a [u8]> {
    let (head, tail) = (buf.get(..n)?, buf.get(n..)?);
    *buf = tail;
    Some(head)
}

/// Why a [`SegmentReader`] stopped.
#[derive(Debug, thiserror::Error)]
pub enum ReadError {
    /// The data is damaged at this point.
    #[error(transparent)]
    Record(#[from] RecordError),
    /// The file could not be read.
    #[error(transparent)]
    Io(#[from] std::io::Error),
}

/// Reads a segment's records one at a time from any reader (a file while replaying, a slice
/// in [`scan_segment`] and the tests), so the replay holds one record in memory, not a
/// segment.
#[derive(Debug)]
pub struct SegmentReader<R> {
    /// The segment, positioned at `offset`.
    inner: R,
    /// Bytes consumed from the start of the segment.
    offset: u64,
    /// Whether the magic has been read (or skipped by [`SegmentReader::resume`]).
    started: bool,
    /// The current record's bytes.
    buf: Vec<u8>,
}

impl<R: std::io::Read> SegmentReader<R> {
    /// A reader at the start of a segment (it checks the magic first).
    pub fn new(inner: R) -> SegmentReader<R> {
        SegmentReader { inner, offset: 0, started: false, buf: Vec::new() }
    }

    /// A reader already positioned at `offset`, the start of a record (after the magic).
    pub fn resume(inner: R, offset: u64) -> SegmentReader<R> {
        SegmentReader { inner, offset, started: true, buf: Vec::new() }
    }

    /// Bytes from the start of the segment to the end of the last record read.
    pub fn offset(&self) -> u64 {
        self.offset
    }

    /// The next record's points; `Ok(None)` at a clean end of the segment.
    ///
    /// # Errors
    ///
    /// A [`RecordError`] where the data is damaged (the offset has not moved past the good
    /// records), or the I/O error of the underlying reader.
    pub fn next_record(&mut self) -> Result<Option<Vec<Point>>, ReadError> {
        if !self.started {
            let mut magic = [0u8; SEGMENT_MAGIC.len()];
            let n = read_full(&mut self.inner, &mut magic)?;
            if n < magic.len() || &magic != SEGMENT_MAGIC {
                return Err(RecordError::BadMagic.into());
            }
            self.started = true;
            self.offset = magic.len() as u64;
        }
        let mut header = [0u8; RECORD_HEADER_BYTES];
        let have = read_full(&mut self.inner, &mut header)?;
        if have == 0 {
            return Ok(None);
        }
        if have < RECORD_HEADER_BYTES {
            return Err(RecordError::Torn { need: RECORD_HEADER_BYTES, have }.into());
        }
        let header = decode_header(&header)?;
        self.buf.clear();
        self.buf.resize(header.length, 0);
        let got = read_full(&mut self.inner, &mut self.buf)?;
        if got < header.length {
            let need = RECORD_HEADER_BYTES + header.length;
            return Err(RecordError::Torn { need, have: RECORD_HEADER_BYTES + got }.into());
        }
        let points = decode_payload(header, &self.buf)?;
        self.offset += (RECORD_HEADER_BYTES + header.length) as u64;
        Ok(Some(points))
    }
}

/// Reads until `buf` is full or the end of the data; returns the bytes read.
fn read_full(r: &mut impl std::io::Read, buf: &mut [u8]) -> std::io::Result<usize> {
    let mut n = 0;
    while let Some(rest) = buf.get_mut(n..).filter(|r| !r.is_empty()) {
        match r.read(rest) {
            Ok(0) => break,
            Ok(k) => n += k,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(n)
}

/// What [`scan_segment`] found.
#[derive(Debug, Default)]
pub struct Scan {
    /// The good records in order, each with its offset in the segment.
    pub records: Vec<(u64, Vec<Point>)>,
    /// Bytes from the start of the segment up to the end of the last good record (the length
    /// to truncate a damaged segment to; 0 if even the magic is bad).
    pub good_len: u64,
    /// Where and why reading stopped early; `None` if the whole segment is good.
    pub error: Option<(u64, ReadError)>,
}

/// Reads a whole segment: the good records up to the first damaged one.
pub fn scan_segment(data: impl std::io::Read) -> Scan {
    let mut scan = Scan::default();
    let mut reader = SegmentReader::new(data);
    loop {
        let before = reader.offset();
        match reader.next_record() {
            Ok(Some(points)) => {
                // The first record starts after the magic, which the first call reads.
                let at = before.max(SEGMENT_MAGIC.len() as u64);
                scan.records.push((at, points));
                scan.good_len = reader.offset();
            }
            Ok(None) => {
                scan.good_len = reader.offset();
                break;
            }
            Err(e) => {
                // The offset stops at the start of the damaged record (0 for a bad magic).
                scan.good_len = reader.offset();
                scan.error = Some((reader.offset(), e));
                break;
            }
        }
    }
    scan
}

#[cfg(test)]
mod tests {
    #![allow(clippy::indexing_slicing)]
    use super::*;
    use proptest::prelude::*;

    fn point(name: &str, ts: f64, value: f64) -> Point {
        Point::new(MetricName::new(name).unwrap(), ts, value)
    }

    fn segment(records: &[Vec<Point>]) -> Vec<u8> {
        let mut out = SEGMENT_MAGIC.to_vec();
        for r in records {
            assert_eq!(encode_record(&mut out, r), r.len());
        }
        out
    }

    fn same(a: &[Point], b: &[Point]) -> bool {
        a.len() == b.len()
            && a.iter().zip(b).all(|(x, y)| {
                x.name == y.name
                    && x.datapoint.timestamp.to_bits() == y.datapoint.timestamp.to_bits()
                    && x.datapoint.value.to_bits() == y.datapoint.value.to_bits()
            })
    }

    #[test]
    fn record_round_trips_exact_values() {
        let points =
            vec![point("a.b", 1.7e9, 0.1), point("c", -1.0, f64::NAN), point("d.e", 1.5, -0.0)];
        let data = segment(&[points.clone(), vec![]]);
        let scan = scan_segment(&data[..]);
        assert!(scan.error.is_none());
        assert_eq!(scan.good_len, data.len() as u64);
        assert_eq!(scan.records.len(), 2);
        assert!(same(&scan.records[0].1, &points));
        assert!(scan.records[1].1.is_empty());
    }

    #[test]
    fn torn_tail_keeps_the_records_before_it() {
        let data = segment(&[vec![point("a", 1.0, 1.0)], vec![point("b", 2.0, 2.0)]]);
        let cut = &data[..data.len() - 3];
        let scan = scan_segment(cut);
        assert_eq!(scan.records.len(), 1);
        let (offset, err) = scan.error.unwrap();
        assert_eq!(offset, scan.good_len);
        assert!(matches!(err, ReadError::Record(RecordError::Torn { .. })), "{err}");
    }

    #[test]
    fn flipped_byte_is_a_checksum_error() {
        let mut data = segment(&[vec![point("a", 1.0, 1.0)], vec![point("b", 2.0, 2.0)]]);
        let last = data.len() - 1;
        data[last] ^= 0x40;
        let scan = scan_segment(&data[..]);
        assert_eq!(scan.records.len(), 1);
        assert!(matches!(scan.error, Some((_, ReadError::Record(RecordError::Checksum { .. })))));
    }

    #[test]
    fn huge_length_is_refused_without_allocating() {
        let mut data = SEGMENT_MAGIC.to_vec();
        data.extend_from_slice(&u32::MAX.to_le_bytes());
        data.extend_from_slice(&[0; 4]);
        let scan = scan_segment(&data[..]);
        assert!(matches!(scan.error, Some((8, ReadError::Record(RecordError::TooLong { .. })))));
    }

    #[test]
    fn bad_magic_yields_nothing() {
        let scan = scan_segment(&b"GRSPOOL9"[..]);
        assert!(scan.records.is_empty());
        assert!(matches!(scan.error, Some((0, ReadError::Record(RecordError::BadMagic)))));
        assert_eq!(scan.good_len, 0);
    }

    #[test]
    fn count_larger_than_payload_is_refused() {
        let mut payload = 1000u32.to_le_bytes().to_vec();
        payload.extend_from_slice(&[0; 19]);
        let header = RecordHeader { length: payload.len(), crc: crc32fast::hash(&payload) };
        assert!(matches!(decode_payload(header, &payload), Err(RecordError::BadPayload(_))));
    }

    fn arb_point() -> impl Strategy<Value = Point> {
        ("[a-z]{1,6}(\\.[a-z0-9_]{1,6}){0,3}", any::<f64>(), any::<f64>())
            .prop_map(|(n, t, v)| point(&n, t, v))
    }

    proptest! {
        #[test]
        fn damaged_segment_yields_a_prefix(
            records in proptest::collection::vec(proptest::collection::vec(arb_point(), 0..6), 0..6),
            cut in any::<prop::sample::Index>(),
            flip in any::<prop::sample::Index>(),
            flip_bits in 1u8..=255,
            mode in 0u8..3,
        ) {
            let mut data = segment(&records);
            match mode {
                0 => { let at = cut.index(data.len() + 1); data.truncate(at); }
                1 => { let at = flip.index(data.len()); data[at] ^= flip_bits; }
                _ => {}
            }
            let scan = scan_segment(&data[..]);
            prop_assert!(scan.records.len() <= records.len());
            for ((_, got), want) in scan.records.iter().zip(&records) {
                prop_assert!(same(got, want));
            }
            prop_assert!(scan.good_len <= data.len() as u64);
            if mode == 2 {
                prop_assert!(scan.error.is_none());
                prop_assert_eq!(scan.records.len(), records.len());
            }
            if scan.error.is_none() {
                prop_assert_eq!(scan.good_len, data.len() as u64);
            }
            // Truncating to `good_len` leaves a clean segment with the same records.
            if scan.good_len > 0 {
                let again = scan_segment(&data[..scan.good_len as usize]);
                prop_assert!(again.error.is_none());
                prop_assert_eq!(again.records.len(), scan.records.len());
            }
        }

        #[test]
        fn arbitrary_bytes_never_panic(tail in proptest::collection::vec(any::<u8>(), 0..256)) {
            let mut data = SEGMENT_MAGIC.to_vec();
            data.extend_from_slice(&tail);
            let scan = scan_segment(&data[..]);
            prop_assert!(scan.good_len <= data.len() as u64);
            let _ = scan_segment(&tail[..]);
        }
    }
}
