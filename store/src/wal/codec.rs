//! The segment and record codec, without I/O: the segment header, record framing (marker,
//! length, CRC-32), and the point encoding with its per-segment name dictionary. The layout is
//! described in the [module docs](super).
//!
//! Decoding never panics and never trusts a length or an id it read: every step is
//! bounds-checked, and a record is validated completely before any of its points is emitted.
#![warn(clippy::indexing_slicing)]

use std::collections::HashMap;

/// The first 8 bytes of every segment.
pub(crate) const SEGMENT_MAGIC: [u8; 8] = *b"GRAPHWAL";

/// The format version this build reads and writes.
pub(crate) const FORMAT_VERSION: u32 = 1;

/// Bytes of the segment header: magic, version, segment id, CRC-32.
pub(crate) const HEADER_BYTES: usize = 24;

/// The first 4 bytes of every record: lets replay find the next record after damage.
pub(crate) const RECORD_MARKER: [u8; 4] = [0xF7, b'W', b'R', 0x1E];

/// Bytes of a record's frame before its payload: marker, payload length, CRC-32.
pub(crate) const RECORD_HEADER_BYTES: usize = 12;

/// The smallest payload: a one-byte first-name id and the 4-byte base timestamp.
const MIN_PAYLOAD_BYTES: usize = 5;

/// The largest payload a decoder accepts (the encoder stays far below: see
/// [`RECORD_SPLIT_BYTES`]), so a damaged length cannot make replay read or allocate more.
pub(crate) const MAX_PAYLOAD_BYTES: usize = 16 << 20;

/// The encoder starts a new record once a payload reaches this size, so records stay small
/// (damage costs one record) whatever the batch size.
pub(crate) const RECORD_SPLIT_BYTES: usize = 256 << 10;

/// The longest metric name the log stores, in bytes.
pub const MAX_NAME_BYTES: usize = 64 << 10;

// ---- varints --------------------------------------------------------------------------------

/// Appends `v` as an unsigned LEB128 varint (7 bits a byte, low bits first).
pub(crate) fn put_varint(out: &mut Vec<u8>, mut v: u64) {
    while v >= 0x80 {
        out.push((v as u8) | 0x80);
        v >>= 7;
    }
    out.push(v as u8);
}

/// Reads a varint at `*pos`, advancing it; `None` if it is cut short or longer than 64 bits.
pub(crate) fn get_varint(buf: &[u8], pos: &mut usize) -> Option<u64> {
    let mut v = 0u64;
    for shift in (0..64).step_by(7) {
        let byte = *buf.get(*pos)?;
        *pos += 1;
        let bits = u64::from(byte & 0x7F);
        if shift == 63 && bits > 1 {
            return None; // more than 64 bits
        }
        v |= bits << shift;
        if byte & 0x80 == 0 {
            return Some(v);
        }
    }
    None
}

fn zigzag(v: i64) -> u64 {
    ((v << 1) ^ (v >> 63)) as u64
}

fn unzigzag(v: u64) -> i64 {
    ((v >> 1) as i64) ^ -((v & 1) as i64)
}

fn get_array<const N: usize>(buf: &[u8], pos: &mut usize) -> Option<[u8; N]> {
    let end = pos.checked_add(N)?;
    let bytes: [u8; N] = buf.get(*pos..end)?.try_into().ok()?;
    *pos = end;
    Some(bytes)
}

// ---- segment header -------------------------------------------------------------------------

/// The header of segment `id`.
pub(crate) fn encode_header(id: u64) -> [u8; HEADER_BYTES] {
    let mut h = [0u8; HEADER_BYTES];
    let mut v = Vec::with_capacity(HEADER_BYTES);
    v.extend_from_slice(&SEGMENT_MAGIC);
    v.extend_from_slice(&FORMAT_VERSION.to_le_bytes());
    v.extend_from_slice(&id.to_le_bytes());
    let crc = crc32fast::hash(&v);
    v.extend_from_slice(&crc.to_le_bytes());
    h.copy_from_slice(&v);
    h
}

/// Why a segment header could not be read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum HeaderError {
    /// Fewer than [`HEADER_BYTES`] bytes, all of them matching the magic so far.
    Short,
    /// Not our magic.
    BadMagic,
    /// Our magic, another format version.
    Version(u32),
    /// Our magic and version, but the checksum fails.
    Checksum,
}

/// Reads a segment header, giving the segment id in it.
pub(crate) fn decode_header(buf: &[u8]) -> Result<u64, HeaderError> {
    let magic_len = buf.len().min(SEGMENT_MAGIC.len());
    if buf.get(..magic_len) != SEGMENT_MAGIC.get(..magic_len) {
        return Err(HeaderError::BadMagic);
    }
    let mut pos = SEGMENT_MAGIC.len();
    // The version sits right after the magic in every version, so it is checked before the
    // rest of the header, whose layout may change with it.
    let Some(version) = get_array::<4>(buf, &mut pos) else {
        return Err(HeaderError::Short);
    };
    let version = u32::from_le_bytes(version);
    if version != FORMAT_VERSION {
        return Err(HeaderError::Version(version));
    }
    let (Some(id), Some(crc)) = (get_array::<8>(buf, &mut pos), get_array::<4>(buf, &mut pos))
    else {
        return Err(HeaderError::Short);
    };
    let covered = buf.get(..HEADER_BYTES - 4).ok_or(HeaderError::Short)?;
    if crc32fast::hash(covered) != u32::from_le_bytes(crc) {
        return Err(HeaderError::Checksum);
    }
    Ok(u64::from_le_bytes(id))
}

// ---- record framing -------------------------------------------------------------------------

/// What the bytes at a position are.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Frame<'a> {
    /// A record whose checksum holds: its payload, and its length with the frame.
    Record {
        /// The payload.
        payload: &'a [u8],
        /// Frame and payload bytes.
        len: usize,
    },
    /// A plausible record start that needs `len` bytes in all to be checked.
    Incomplete {
        /// The bytes needed from the record's start.
        len: usize,
    },
    /// Not a record.
    Invalid,
}

fn record_crc(len: [u8; 4], payload: &[u8]) -> u32 {
    let mut h = crc32fast::Hasher::new();
    h.update(&len);
    h.update(payload);
    h.finalize()
}

/// Frames the record at the start of `buf`.
pub(crate) fn decode_frame(buf: &[u8]) -> Frame<'_> {
    let marker_len = buf.len().min(RECORD_MARKER.len());
    if buf.get(..marker_len) != RECORD_MARKER.get(..marker_len) {
        return Frame::Invalid;
    }
    let mut pos = RECORD_MARKER.len();
    let (Some(len_bytes), Some(crc)) =
        (get_array::<4>(buf, &mut pos), get_array::<4>(buf, &mut pos))
    else {
        return Frame::Incomplete { len: RECORD_HEADER_BYTES };
    };
    let payload_len = u32::from_le_bytes(len_bytes) as usize;
    if !(MIN_PAYLOAD_BYTES..=MAX_PAYLOAD_BYTES).contains(&payload_len) {
        return Frame::Invalid;
    }
    let len = RECORD_HEADER_BYTES + payload_len;
    let Some(payload) = buf.get(RECORD_HEADER_BYTES..len) else {
        return Frame::Incomplete { len };
    };
    if record_crc(len_bytes, payload) != u32::from_le_bytes(crc) {
        return Frame::Invalid;
    }
    Frame::Record { payload, len }
}

/// Where the next record marker starts in `buf`, if a whole one is there.
pub(crate) fn find_marker(buf: &[u8]) -> Option<usize> {
    buf.windows(RECORD_MARKER.len()).position(|w| w == RECORD_MARKER)
}

// ---- encoding -------------------------------------------------------------------------------

/// The value as an integer when that is exact and shorter than the 8 raw bytes (at most 7
/// varint bytes); `-0.0`, NaN and fractions stay raw.
fn as_small_int(value: f64) -> Option<u64> {
    let i = value as i64;
    let z = zigzag(i);
    ((i as f64).to_bits() == value.to_bits() && z < 1 << 49).then_some(z)
}

/// Encodes points into records, keeping the name dictionary of the segment being written.
#[derive(Debug, Default)]
pub(crate) struct Encoder {
    /// Every name written to the current segment, with its id (ids are given in order).
    names: HashMap<Box<str>, u32, foldhash::fast::RandomState>,
    /// Bytes of names in `names`, for the memory bound.
    name_bytes: usize,
}

impl Encoder {
    /// Forgets the dictionary: the next record starts a new segment.
    pub(crate) fn reset(&mut self) {
        self.names.clear();
        self.name_bytes = 0;
    }

    /// Names in the dictionary.
    pub(crate) fn names(&self) -> usize {
        self.names.len()
    }

    /// Bytes of the names in the dictionary.
    pub(crate) fn name_bytes(&self) -> usize {
        self.name_bytes
    }

    /// Appends the points to `out` as one record, or more when the payload would pass
    /// [`RECORD_SPLIT_BYTES`]; nothing for no points. Returns the records written.
    ///
    /// Every name must be at most [`MAX_NAME_BYTES`] long (the caller checks, before anything is
    /// encoded, so a refused batch leaves no trace); a longer one is still encoded correctly,
    /// but decoders refuse records over [`MAX_PAYLOAD_BYTES`].
    pub(crate) fn encode(&mut self, points: &[(&str, u32, f64)], out: &mut Vec<u8>) -> usize {
        let mut records = 0;
        let mut rest = points;
        while let Some(&(_, base_ts, _)) = rest.first() {
            let start = out.len();
            out.extend_from_slice(&RECORD_MARKER);
            out.extend_from_slice(&[0; 8]); // length and CRC, filled in below
            let payload_start = out.len();
            put_varint(out, self.names.len() as u64);
            out.extend_from_slice(&base_ts.to_le_bytes());
            let mut prev_ts = base_ts;
            let mut taken = 0;
            for &(name, ts, value) in rest {
                if out.len() - payload_start >= RECORD_SPLIT_BYTES {
                    break;
                }
                self.encode_point(name, ts, value, prev_ts, out);
                prev_ts = ts;
                taken += 1;
            }
            rest = rest.get(taken..).unwrap_or_default();
            let payload_len = (out.len() - payload_start) as u32;
            let len = payload_len.to_le_bytes();
            let crc = record_crc(len, out.get(payload_start..).unwrap_or_default());
            // `start + 4 .. start + 12` was pushed above, so both ranges exist.
            if let Some(slot) = out.get_mut(start + 4..start + 8) {
                slot.copy_from_slice(&len);
            }
            if let Some(slot) = out.get_mut(start + 8..payload_start) {
                slot.copy_from_slice(&crc.to_le_bytes());
            }
            records += 1;
        }
        records
    }

    fn encode_point(&mut self, name: &str, ts: u32, value: f64, prev_ts: u32, out: &mut Vec<u8>) {
        let int = as_small_int(value);
        let flag = u64::from(int.is_some());
        match self.names.get(name) {
            Some(&id) => put_varint(out, ((u64::from(id) + 1) << 1) | flag),
            None => {
                let id = self.names.len() as u32;
                self.names.insert(name.into(), id);
                self.name_bytes += name.len();
                put_varint(out, flag);
                put_varint(out, name.len() as u64);
                out.extend_from_slice(name.as_bytes());
            }
        }
        put_varint(out, zigzag(i64::from(ts) - i64::from(prev_ts)));
        match int {
            Some(z) => put_varint(out, z),
            None => out.extend_from_slice(&value.to_bits().to_le_bytes()),
        }
    }
}

// ---- decoding -------------------------------------------------------------------------------

/// Why a record whose checksum holds does not decode (only a forged record or a checksum
/// collision gets here).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum InvalidRecord {
    /// A field runs past the payload's end, or a varint is too long.
    Truncated,
    /// A name is not UTF-8.
    NotUtf8,
    /// A point refers to a name id not defined yet.
    UnknownName,
    /// A timestamp outside `u32`.
    TimestampRange,
    /// The record's first new name id disagrees with the dictionary, beyond what skipped
    /// damage can explain.
    Dictionary,
}

/// One step of a payload walk.
enum Item<'a> {
    /// A new name, with the next id.
    Name(&'a str),
    /// A point of the name with this id.
    Point(u64, u32, f64),
}

/// Walks a payload, checking every field; `visit` sees the items in order. Returns the first
/// new name id of the record.
fn walk<'a>(payload: &'a [u8], mut visit: impl FnMut(Item<'a>)) -> Result<u64, InvalidRecord> {
    use InvalidRecord::*;
    let mut pos = 0;
    let first_id = get_varint(payload, &mut pos).ok_or(Truncated)?;
    let mut next_id = first_id;
    let mut ts = i64::from(u32::from_le_bytes(get_array::<4>(payload, &mut pos).ok_or(Truncated)?));
    while pos < payload.len() {
        let tag = get_varint(payload, &mut pos).ok_or(Truncated)?;
        let id = match tag >> 1 {
            0 => {
                let len = get_varint(payload, &mut pos).ok_or(Truncated)?;
                let end =
                    usize::try_from(len).ok().and_then(|l| pos.checked_add(l)).ok_or(Truncated)?;
                let bytes = payload.get(pos..end).ok_or(Truncated)?;
                pos = end;
                let name = std::str::from_utf8(bytes).map_err(|_| NotUtf8)?;
                visit(Item::Name(name));
                next_id += 1;
                next_id - 1
            }
            r if r - 1 < next_id => r - 1,
            _ => return Err(UnknownName),
        };
        let delta = unzigzag(get_varint(payload, &mut pos).ok_or(Truncated)?);
        ts = ts.checked_add(delta).ok_or(TimestampRange)?;
        let point_ts = u32::try_from(ts).map_err(|_| TimestampRange)?;
        let value = if tag & 1 == 1 {
            unzigzag(get_varint(payload, &mut pos).ok_or(Truncated)?) as f64
        } else {
            f64::from_bits(u64::from_le_bytes(get_array::<8>(payload, &mut pos).ok_or(Truncated)?))
        };
        visit(Item::Point(id, point_ts, value));
    }
    Ok(first_id)
}

/// What [`Decoder::apply`] did with a record.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Applied {
    /// Points emitted.
    pub(crate) points: u64,
    /// Points not emitted because their name was defined in skipped damage.
    pub(crate) lost: u64,
}

/// Decodes the records of one segment in order, keeping its name dictionary.
#[derive(Debug, Default)]
pub(crate) struct Decoder {
    /// Names by id; `None` for ids defined in damage that was skipped.
    names: Vec<Option<Box<str>>>,
    /// Bytes of damage skipped so far in this segment: each lost name cost at least
    /// [`MIN_NAME_COST`] of them, which bounds the ids a record may skip.
    skipped: u64,
}

/// The fewest bytes a new name costs on disk: its tag, length, timestamp and value.
const MIN_NAME_COST: u64 = 4;

impl Decoder {
    /// Notes `bytes` of damage skipped before the next record.
    pub(crate) fn skipped(&mut self, bytes: u64) {
        self.skipped = self.skipped.saturating_add(bytes);
    }

    /// Decodes a payload (one whose frame checked) and calls `emit` for each point, in order,
    /// after checking the whole record: a record that does not decode emits nothing.
    pub(crate) fn apply(
        &mut self,
        payload: &[u8],
        mut emit: impl FnMut(&str, u32, f64),
    ) -> Result<Applied, InvalidRecord> {
        let first_id = walk(payload, |_| {})?;
        let known = self.names.len() as u64;
        if first_id < known || first_id - known > self.skipped / MIN_NAME_COST {
            return Err(InvalidRecord::Dictionary);
        }
        // Ids between the last known one and this record's first were defined in damage.
        self.names.resize(usize::try_from(first_id).map_err(|_| InvalidRecord::Dictionary)?, None);
        let mut applied = Applied::default();
        let names = &mut self.names;
        walk(payload, |item| match item {
            Item::Name(name) => names.push(Some(name.into())),
            Item::Point(id, ts, value) => {
                match usize::try_from(id).ok().and_then(|i| names.get(i)) {
                    Some(Some(name)) => {
                        emit(name, ts, value);
                        applied.points += 1;
                    }
                    _ => applied.lost += 1,
                }
            }
        })?;
        Ok(applied)
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::indexing_slicing)]

    use proptest::prelude::*;

    use super::*;

    type Point = (String, u32, f64);

    fn encode_all(batches: &[Vec<Point>]) -> Vec<u8> {
        let mut enc = Encoder::default();
        let mut out = Vec::new();
        for batch in batches {
            let refs: Vec<(&str, u32, f64)> =
                batch.iter().map(|(n, t, v)| (n.as_str(), *t, *v)).collect();
            enc.encode(&refs, &mut out);
        }
        out
    }

    /// Decodes a run of records; stops at the first frame that is not a record.
    fn decode_all(mut buf: &[u8]) -> (Vec<Point>, usize) {
        let mut dec = Decoder::default();
        let mut points = Vec::new();
        let mut records = 0;
        while let Frame::Record { payload, len } = decode_frame(buf) {
            dec.apply(payload, |n, t, v| points.push((n.to_owned(), t, v))).unwrap();
            buf = &buf[len..];
            records += 1;
        }
        assert!(buf.is_empty(), "left over: {} bytes", buf.len());
        (points, records)
    }

    fn same(a: &[Point], b: &[Point]) -> bool {
        a.len() == b.len()
            && a.iter()
                .zip(b)
                .all(|(x, y)| x.0 == y.0 && x.1 == y.1 && x.2.to_bits() == y.2.to_bits())
    }

    #[test]
    fn varints_round_trip_at_the_edges() {
        for v in [0, 1, 127, 128, 16_383, 16_384, u64::from(u32::MAX), u64::MAX - 1, u64::MAX] {
            let mut out = Vec::new();
            put_varint(&mut out, v);
            let mut pos = 0;
            assert_eq!(get_varint(&out, &mut pos), Some(v));
            assert_eq!(pos, out.len());
        }
    }

    #[test]
    fn overlong_varints_are_refused() {
        let mut pos = 0;
        assert_eq!(get_varint(&[0xFF; 11], &mut pos), None);
        let mut pos = 0;
        // 10th byte carrying more than the 64th bit.
        let mut bytes = vec![0xFF; 9];
        bytes.push(0x02);
        assert_eq!(get_varint(&bytes, &mut pos), None);
        let mut pos = 0;
        assert_eq!(get_varint(&[0x80], &mut pos), None);
    }

    #[test]
    fn zigzag_round_trips() {
        for v in [0, 1, -1, 63, -64, i64::MAX, i64::MIN] {
            assert_eq!(unzigzag(zigzag(v)), v);
        }
    }

    #[test]
    fn small_integers_are_short_and_others_raw() {
        assert_eq!(as_small_int(0.0), Some(0));
        assert_eq!(as_small_int(-1.0), Some(1));
        assert_eq!(as_small_int(-0.0), None);
        assert_eq!(as_small_int(0.5), None);
        assert_eq!(as_small_int(f64::NAN), None);
        assert_eq!(as_small_int(f64::INFINITY), None);
        assert_eq!(as_small_int(1e300), None);
        assert_eq!(as_small_int(2f64.powi(60)), None);
    }

    #[test]
    fn header_round_trips_and_names_its_problems() {
        let h = encode_header(42);
        assert_eq!(decode_header(&h), Ok(42));
        assert_eq!(decode_header(&h[..10]), Err(HeaderError::Short));
        assert_eq!(decode_header(&h[..3]), Err(HeaderError::Short));
        assert_eq!(decode_header(b"GRAPHITE"), Err(HeaderError::BadMagic));
        assert_eq!(decode_header(b"x"), Err(HeaderError::BadMagic));
        let mut v2 = h;
        v2[8] = 2;
        assert_eq!(decode_header(&v2), Err(HeaderError::Version(2)));
        let mut bad = h;
        bad[20] ^= 1;
        assert_eq!(decode_header(&bad), Err(HeaderError::Checksum));
    }

    #[test]
    fn names_are_written_once_per_segment() {
        let mut enc = Encoder::default();
        let mut out = Vec::new();
        enc.encode(&[("servers.host001.cpu.cpu0.user", 1_700_000_000, 12.5)], &mut out);
        let first = out.len();
        out.clear();
        enc.encode(&[("servers.host001.cpu.cpu0.user", 1_700_000_060, 13.5)], &mut out);
        // frame 12 + first id 1 + base ts 4 + tag 1 + delta 1 + value 8
        assert_eq!(out.len(), 27);
        assert_eq!(first, 27 + 1 + 29);
        enc.reset();
        out.clear();
        enc.encode(&[("servers.host001.cpu.cpu0.user", 1_700_000_060, 13.0)], &mut out);
        // a new segment writes the name again; 13.0 takes one byte
        assert_eq!(out.len(), 12 + 1 + 4 + 1 + 1 + 29 + 1 + 1);
    }

    #[test]
    fn big_batches_are_split_into_records() {
        let batch: Vec<Point> =
            (0..40_000).map(|i| (format!("a.metric.with.a.long.name.{i}"), i, 0.1)).collect();
        let bytes = encode_all(std::slice::from_ref(&batch));
        let (points, records) = decode_all(&bytes);
        assert!(records > 1, "{records}");
        assert!(same(&points, &batch));
    }

    #[test]
    fn damaged_frames_are_not_records() {
        let bytes = encode_all(&[vec![("a.b".to_owned(), 5, 1.5)]]);
        for i in 0..bytes.len() {
            let mut bad = bytes.clone();
            bad[i] ^= 0x10;
            assert!(!matches!(decode_frame(&bad), Frame::Record { .. }), "byte {i}");
        }
        for cut in 0..bytes.len() {
            assert!(matches!(decode_frame(&bytes[..cut]), Frame::Incomplete { .. }), "cut {cut}");
        }
    }

    #[test]
    fn records_after_a_lost_one_keep_their_own_names_and_lose_the_others() {
        let batches = vec![
            vec![("a".to_owned(), 1, 1.0)],
            vec![("b".to_owned(), 2, 2.0), ("a".to_owned(), 3, 3.0)],
            vec![("c".to_owned(), 4, 4.0), ("b".to_owned(), 5, 5.0), ("a".to_owned(), 6, 6.0)],
        ];
        let mut enc = Encoder::default();
        let mut records = Vec::new();
        for b in &batches {
            let refs: Vec<(&str, u32, f64)> =
                b.iter().map(|(n, t, v)| (n.as_str(), *t, *v)).collect();
            let mut out = Vec::new();
            enc.encode(&refs, &mut out);
            records.push(out);
        }
        let mut dec = Decoder::default();
        let mut got = Vec::new();
        let Frame::Record { payload, .. } = decode_frame(&records[0]) else { panic!() };
        dec.apply(payload, |n, t, _| got.push((n.to_owned(), t))).unwrap();
        // Record 1 (which defines "b") is lost to damage of its length.
        let Frame::Record { payload, .. } = decode_frame(&records[2]) else { panic!() };
        // Without skipped damage, a gap in the ids is refused.
        assert_eq!(dec.apply(payload, |_, _, _| {}), Err(InvalidRecord::Dictionary));
        dec.skipped(records[1].len() as u64);
        let applied = dec.apply(payload, |n, t, _| got.push((n.to_owned(), t))).unwrap();
        assert_eq!(applied, Applied { points: 2, lost: 1 });
        assert_eq!(got, [("a".to_owned(), 1), ("c".to_owned(), 4), ("a".to_owned(), 6)]);
    }

    #[test]
    fn a_record_that_refers_to_an_undefined_name_emits_nothing() {
        // first id 0, base ts 0, then a point of name id 0 that was never defined.
        let mut payload = vec![0, 0, 0, 0, 0];
        put_varint(&mut payload, 1 << 1);
        payload.extend_from_slice(&[0]);
        payload.extend_from_slice(&1f64.to_bits().to_le_bytes());
        let mut dec = Decoder::default();
        let mut n = 0;
        assert_eq!(dec.apply(&payload, |_, _, _| n += 1), Err(InvalidRecord::UnknownName));
        assert_eq!(n, 0);
    }

    fn name() -> impl Strategy<Value = String> {
        prop_oneof![
            "[a-z]{1,3}(\\.[a-z0-9]{1,4}){0,3}",
            ".{0,40}",
            (0..20u32).prop_map(|i| format!("servers.host{i:03}.cpu.user")),
        ]
    }

    fn value() -> impl Strategy<Value = f64> {
        prop_oneof![
            any::<f64>(),
            any::<u64>().prop_map(f64::from_bits),
            (-1000i64..1000).prop_map(|i| i as f64),
            Just(-0.0),
            any::<i64>().prop_map(|i| i as f64),
        ]
    }

    fn point() -> impl Strategy<Value = Point> {
        let ts = prop_oneof![any::<u32>(), 1_700_000_000u32..1_700_000_600];
        (name(), ts, value())
    }

    proptest! {
        #[test]
        fn records_round_trip(batches in prop::collection::vec(prop::collection::vec(point(), 0..40), 0..8)) {
            let bytes = encode_all(&batches);
            let (points, _) = decode_all(&bytes);
            let all: Vec<Point> = batches.concat();
            prop_assert!(same(&points, &all));
        }

        #[test]
        fn arbitrary_bytes_never_panic(bytes in prop::collection::vec(any::<u8>(), 0..300)) {
            let _ = decode_header(&bytes);
            let _ = decode_frame(&bytes);
            let _ = find_marker(&bytes);
            let mut dec = Decoder::default();
            dec.skipped(bytes.len() as u64);
            let _ = dec.apply(&bytes, |_, _, _| {});
            // The same bytes framed as a valid record (as a forged record would be).
            let mut framed = RECORD_MARKER.to_vec();
            let len = (bytes.len() as u32).to_le_bytes();
            framed.extend_from_slice(&len);
            framed.extend_from_slice(&record_crc(len, &bytes).to_le_bytes());
            framed.extend_from_slice(&bytes);
            if let Frame::Record { payload, .. } = decode_frame(&framed) {
                let _ = dec.apply(payload, |_, _, _| {});
            }
        }

        #[test]
        fn damaged_records_never_emit_a_point_that_was_not_written(
            batches in prop::collection::vec(prop::collection::vec(point(), 1..10), 1..5),
            flips in prop::collection::vec((any::<prop::sample::Index>(), 1..=255u8), 1..4),
        ) {
            let mut bytes = encode_all(&batches);
            for (at, mask) in flips {
                let i = at.index(bytes.len());
                bytes[i] ^= mask;
            }
            let all: Vec<Point> = batches.concat();
            let mut dec = Decoder::default();
            dec.skipped(bytes.len() as u64);
            let mut pos = 0;
            while pos < bytes.len() {
                match decode_frame(&bytes[pos..]) {
                    Frame::Record { payload, len } => {
                        let _ = dec.apply(payload, |n, t, v| {
                            assert!(all.iter().any(|p| p.0 == n && p.1 == t && p.2.to_bits() == v.to_bits()));
                        });
                        pos += len;
                    }
                    _ => pos += 1,
                }
            }
        }
    }
}
