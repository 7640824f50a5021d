//! The on-disk layout: header decoding and encoding, sans I/O.
//!
//! ```text
//! File        = Metadata, ArchiveInfo * archiveCount, Archive * archiveCount
//! Metadata    = aggregationType:u32, maxRetention:u32, xFilesFactor:f32, archiveCount:u32
//! ArchiveInfo = offset:u32, secondsPerPoint:u32, points:u32
//! Archive     = Point * points
//! Point       = timestamp:u32, value:f64
//! ```
//!
//! Everything is big-endian with no padding. Decoding checks every offset and length against the
//! file's size, so later reads can trust the header: a header that points outside the file is
//! reported here, with what is wrong, instead of failing later in the middle of a read.
#![warn(clippy::indexing_slicing)]

use crate::aggregation::AggregationMethod;
use crate::error::{Corruption, ForeignFormat};
use crate::retention::Retention;

/// Bytes of the metadata block at the start of every file.
pub const METADATA_SIZE: usize = 16;
/// Bytes of one archive's entry in the header.
pub const ARCHIVE_INFO_SIZE: usize = 12;
/// Bytes of one point: a u32 timestamp and an f64 value.
pub const POINT_SIZE: usize = 12;

/// go-whisper's compressed files start with this instead of a whisper header.
const GO_WHISPER_COMPRESSED_MAGIC: &[u8] = b"whisper_compressed";

/// One archive as the header describes it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
pub struct ArchiveInfo {
    offset: u32,
    seconds_per_point: u32,
    points: u32,
}

impl ArchiveInfo {
    /// An archive entry as read from a header (unchecked: the caller knows it is valid).
    pub(crate) const fn new(offset: u32, seconds_per_point: u32, points: u32) -> ArchiveInfo {
        ArchiveInfo { offset, seconds_per_point, points }
    }

    /// Byte offset of the archive's first point in the file.
    pub const fn offset(&self) -> u32 {
        self.offset
    }

    /// Seconds covered by one point.
    pub const fn seconds_per_point(&self) -> u32 {
        self.seconds_per_point
    }

    /// Number of points (slots).
    pub const fn points(&self) -> u32 {
        self.points
    }

    /// Seconds of history: `seconds_per_point * points`.
    pub const fn retention(&self) -> u64 {
        self.seconds_per_point as u64 * self.points as u64
    }

    /// Bytes of data: `points * 12`.
    pub const fn size(&self) -> u64 {
        self.points as u64 * POINT_SIZE as u64
    }

    /// One past the archive's last byte.
    pub const fn end(&self) -> u64 {
        self.offset as u64 + self.size()
    }

    /// The archive's shape without its position.
    pub const fn retention_def(&self) -> Retention {
        Retention::new(self.seconds_per_point, self.points)
    }

    /// Byte offset of slot `slot` (which must be below `points`).
    pub(crate) const fn slot_offset(&self, slot: u64) -> u64 {
        self.offset as u64 + slot * POINT_SIZE as u64
    }
}

/// A whisper file's header: aggregation method, max retention, xFilesFactor and archives.
#[derive(Clone, Debug, PartialEq)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
pub struct Header {
    aggregation_method: AggregationMethod,
    max_retention: u32,
    x_files_factor: f32,
    archives: Vec<ArchiveInfo>,
}

impl Header {
    /// A header from its fields, as decoded before (the header cache keeps them apart).
    pub(crate) fn from_parts(
        aggregation_method: AggregationMethod,
        max_retention: u32,
        x_files_factor: f32,
        archives: Vec<ArchiveInfo>,
    ) -> Header {
        Header { aggregation_method, max_retention, x_files_factor, archives }
    }

    /// The header of a new file with these archives, which must already be validated and sorted.
    pub(crate) fn for_new_file(
        archives: &[Retention],
        x_files_factor: f32,
        aggregation_method: AggregationMethod,
    ) -> Header {
        let mut offset = header_len(archives.len()) as u32;
        let mut infos = Vec::with_capacity(archives.len());
        for a in archives {
            infos.push(ArchiveInfo {
                offset,
                seconds_per_point: a.seconds_per_point(),
                points: a.points(),
            });
            offset = offset.wrapping_add(a.size() as u32);
        }
        let max_retention = archives.iter().map(Retention::retention).max().unwrap_or(0) as u32;
        Header { aggregation_method, max_retention, x_files_factor, archives: infos }
    }

    /// The header a new file with these archives would have (after whisper's validation and
    /// sorting), without creating anything: what
    /// [`CreateOptions::create`](crate::CreateOptions::create) would write.
    ///
    /// # Errors
    ///
    /// [`Error::InvalidArchiveList`](crate::Error::InvalidArchiveList),
    /// [`Error::InvalidXFilesFactor`](crate::Error::InvalidXFilesFactor).
    pub fn new(
        archives: &[Retention],
        x_files_factor: f64,
        aggregation_method: AggregationMethod,
    ) -> crate::Result<Header> {
        let mut archives = archives.to_vec();
        crate::retention::validate_archive_list(&mut archives)?;
        crate::handle::check_x_files_factor(x_files_factor)?;
        Ok(Header::for_new_file(&archives, x_files_factor as f32, aggregation_method))
    }

    /// What a fetch of `(from, until]` (default `until = now`) would return on a file with
    /// this header that holds no data: the window and step whisper.py would pick, with every
    /// value `None`. `None` where fetch returns `None`. Readers use it for a metric whose file
    /// does not exist yet.
    ///
    /// # Errors
    ///
    /// As [`Whisper::fetch`](crate::Whisper::fetch).
    pub fn empty_fetch(
        &self,
        from: i64,
        until: Option<i64>,
        now: i64,
    ) -> crate::Result<Option<crate::Series>> {
        let Some((archive, from, until)) =
            crate::handle::select_archive(self, from, until, now, None)?
        else {
            return Ok(None);
        };
        let (from, until) = crate::handle::archive_window(&archive, from, until);
        let step = archive.seconds_per_point();
        let n = (until - from).div_euclid(i64::from(step)).max(0) as usize;
        Ok(Some(crate::Series { from, until, step, values: vec![None; n] }))
    }

    /// How values are combined when they propagate to a coarser archive.
    pub fn aggregation_method(&self) -> AggregationMethod {
        self.aggregation_method
    }

    /// The `maxRetention` field: seconds of history the file keeps. whisper uses this stored
    /// value (not one recomputed from the archives) to decide what is too old.
    pub fn max_retention(&self) -> u32 {
        self.max_retention
    }

    /// The fraction of known points needed to propagate a value, as stored (an `f32`).
    pub fn x_files_factor(&self) -> f32 {
        self.x_files_factor
    }

    /// The archives, in file order (finest first in any file whisper wrote).
    pub fn archives(&self) -> &[ArchiveInfo] {
        &self.archives
    }

    /// Bytes taken by the metadata and archive entries.
    pub fn len(&self) -> u64 {
        header_len(self.archives.len())
    }

    /// Whether the header lists no archives (never true for a decoded header).
    pub fn is_empty(&self) -> bool {
        self.archives.is_empty()
    }

    /// The size a file with this header should have: the end of its last archive.
    pub fn file_size(&self) -> u64 {
        self.archives.iter().map(ArchiveInfo::end).max().unwrap_or(self.len())
    }

    pub(crate) fn set_metadata(&mut self, method: AggregationMethod, x_files_factor: f32) {
        self.aggregation_method = method;
        self.x_files_factor = x_files_factor;
    }

    /// Encodes the 16-byte metadata block.
    pub(crate) fn encode_metadata(&self) -> [u8; METADATA_SIZE] {
        let mut out = [0u8; METADATA_SIZE];
        out[0..4].copy_from_slice(&self.aggregation_method.code().to_be_bytes());
        out[4..8].copy_from_slice(&self.max_retention.to_be_bytes());
        out[8..12].copy_from_slice(&self.x_files_factor.to_bits().to_be_bytes());
        out[12..16].copy_from_slice(&(self.archives.len() as u32).to_be_bytes());
        out
    }

    /// Encodes the whole header: metadata then one entry per archive.
    pub(crate) fn encode(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(self.len() as usize);
        out.extend_from_slice(&self.encode_metadata());
        for a in &self.archives {
            out.extend_from_slice(&a.offset.to_be_bytes());
            out.extend_from_slice(&a.seconds_per_point.to_be_bytes());
            out.extend_from_slice(&a.points.to_be_bytes());
        }
        out
    }
}

/// Bytes of a header with `archive_count` archives.
pub(crate) const fn header_len(archive_count: usize) -> u64 {
    METADATA_SIZE as u64 + ARCHIVE_INFO_SIZE as u64 * archive_count as u64
}

/// Why a header could not be decoded.
#[derive(Debug)]
pub(crate) enum DecodeError {
    /// Not a valid whisper header.
    Corrupt(Corruption),
    /// A recognised foreign format.
    Foreign(ForeignFormat),
    /// `buf` holds only the first bytes; the header needs this many.
    NeedBytes(u64),
}

fn be_u32(buf: &[u8], at: usize) -> u32 {
    let mut b = [0u8; 4];
    if let Some(src) = buf.get(at..at + 4) {
        b.copy_from_slice(src);
    }
    u32::from_be_bytes(b)
}

/// Decodes the metadata block (the first 16 bytes), checking the aggregation code and xFilesFactor.
///
/// Returns the method, max retention, xFilesFactor and archive count.
pub(crate) fn decode_metadata(
    buf: &[u8],
    file_len: u64,
) -> Result<(AggregationMethod, u32, f32, u32), DecodeError> {
    if buf.starts_with(GO_WHISPER_COMPRESSED_MAGIC) {
        let at = GO_WHISPER_COMPRESSED_MAGIC.len();
        let version = buf.get(at).copied().unwrap_or(0);
        let aggregation = go_whisper_method_name(be_u32(buf, at + 1));
        return Err(DecodeError::Foreign(ForeignFormat::GoWhisperCompressed {
            version,
            aggregation,
        }));
    }
    if buf.len() < METADATA_SIZE {
        return Err(DecodeError::Corrupt(Corruption::ShortHeader { len: file_len }));
    }
    let code = be_u32(buf, 0);
    let max_retention = be_u32(buf, 4);
    let xff = f32::from_bits(be_u32(buf, 8));
    let count = be_u32(buf, 12);
    let method = AggregationMethod::from_code(code)
        .ok_or(DecodeError::Corrupt(Corruption::UnknownAggregation { code }))?;
    if !(0.0..=1.0).contains(&xff) {
        return Err(DecodeError::Corrupt(Corruption::XFilesFactorOutOfRange { value: xff }));
    }
    Ok((method, max_retention, xff, count))
}

/// Decodes and checks a header from the first bytes of a file of `file_len` bytes.
///
/// `buf` may hold the whole file or just its start; if the header is longer than `buf`, the
/// result is `DecodeError::NeedBytes(n)` and the caller reads `n` bytes and tries again.
pub(crate) fn decode_header(buf: &[u8], file_len: u64) -> Result<Header, DecodeError> {
    let (aggregation_method, max_retention, x_files_factor, count) =
        decode_metadata(buf, file_len)?;
    if count == 0 {
        return Err(DecodeError::Corrupt(Corruption::NoArchives));
    }
    let hlen = header_len(count as usize);
    if hlen > file_len {
        return Err(DecodeError::Corrupt(Corruption::ArchiveListTruncated {
            count,
            len: file_len,
        }));
    }
    if hlen > buf.len() as u64 {
        return Err(DecodeError::NeedBytes(hlen));
    }
    let mut archives = Vec::with_capacity(count as usize);
    for index in 0..count as usize {
        let at = METADATA_SIZE + index * ARCHIVE_INFO_SIZE;
        let info = ArchiveInfo {
            offset: be_u32(buf, at),
            seconds_per_point: be_u32(buf, at + 4),
            points: be_u32(buf, at + 8),
        };
        let corrupt = |c| Err(DecodeError::Corrupt(c));
        if info.seconds_per_point == 0 {
            return corrupt(Corruption::EmptyArchive { index, field: "seconds per point" });
        }
        if info.points == 0 {
            return corrupt(Corruption::EmptyArchive { index, field: "points" });
        }
        if u64::from(info.offset) < hlen {
            return corrupt(Corruption::ArchiveInsideHeader {
                index,
                offset: info.offset,
                header_len: hlen,
            });
        }
        if info.end() > file_len {
            return corrupt(Corruption::ArchivePastEnd {
                index,
                offset: info.offset,
                end: info.end(),
                len: file_len,
            });
        }
        archives.push(info);
    }
    let longest = archives.iter().map(ArchiveInfo::retention).max().unwrap_or(0);
    if u64::from(max_retention) > longest {
        return Err(DecodeError::Corrupt(Corruption::MaxRetentionTooLong {
            max_retention,
            longest,
        }));
    }
    // Archives must not share bytes: a write to one would change another.
    let mut by_offset: Vec<usize> = (0..archives.len()).collect();
    by_offset.sort_by_key(|&i| archives.get(i).map_or(0, |a| a.offset));
    for pair in by_offset.windows(2) {
        if let (Some(&a), Some(&b)) = (pair.first(), pair.get(1))
            && let (Some(x), Some(y)) = (archives.get(a), archives.get(b))
            && x.end() > u64::from(y.offset)
        {
            return Err(DecodeError::Corrupt(Corruption::ArchivesOverlap {
                first: a.min(b),
                second: a.max(b),
            }));
        }
    }
    Ok(Header { aggregation_method, max_retention, x_files_factor, archives })
}

/// go-whisper's names for its aggregation codes (they differ from whisper.py's from 6 on).
fn go_whisper_method_name(code: u32) -> &'static str {
    match code {
        1 => "average",
        2 => "sum",
        3 => "last",
        4 => "max",
        5 => "min",
        6 => "first",
        7 => "mix",
        8 => "percentile",
        _ => "unknown",
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::indexing_slicing)]
    use super::*;

    fn sample() -> Header {
        Header::for_new_file(
            &[Retention::new(60, 1440), Retention::new(300, 8640)],
            0.5,
            AggregationMethod::Average,
        )
    }

    #[test]
    fn new_header_matches_reference_layout() {
        let h = sample();
        assert_eq!(h.len(), 40);
        assert_eq!(h.archives()[0].offset(), 40);
        assert_eq!(h.archives()[1].offset(), 17320);
        assert_eq!(h.file_size(), 121000);
        assert_eq!(h.max_retention(), 2592000);
        let bytes = h.encode();
        assert_eq!(&bytes[..16], &[0, 0, 0, 1, 0, 0x27, 0x8d, 0, 0x3f, 0, 0, 0, 0, 0, 0, 2]);
    }

    #[test]
    fn decode_round_trips() {
        let h = sample();
        let decoded = decode_header(&h.encode(), h.file_size()).unwrap();
        assert_eq!(decoded, h);
    }

    #[test]
    fn decode_reports_what_is_wrong() {
        let h = sample();
        let mut bytes = h.encode();
        let check = |bytes: &[u8], len: u64| match decode_header(bytes, len) {
            Err(DecodeError::Corrupt(c)) => c,
            other => panic!("expected corruption, got {other:?}"),
        };
        assert_eq!(check(&bytes[..10], 10), Corruption::ShortHeader { len: 10 });
        assert!(matches!(
            check(&bytes, h.file_size() - 1),
            Corruption::ArchivePastEnd { index: 1, .. }
        ));
        bytes[3] = 9;
        assert_eq!(check(&bytes, h.file_size()), Corruption::UnknownAggregation { code: 9 });
        bytes[3] = 1;
        bytes[8..12].copy_from_slice(&1.5f32.to_bits().to_be_bytes());
        assert!(matches!(check(&bytes, h.file_size()), Corruption::XFilesFactorOutOfRange { .. }));
    }

    #[test]
    fn empty_fetch_matches_a_fetch_of_an_empty_file() {
        let archives = [Retention::new(60, 1440), Retention::new(300, 2016)];
        let header = Header::new(&archives, 0.5, AggregationMethod::Average).unwrap();
        let mut file = crate::CreateOptions::new().create_in_memory(&archives).unwrap();
        let now = 1_700_000_123;
        for (from, until) in [
            (now - 3600, None),
            (now - 86400 * 2, Some(now - 60)),
            (now + 5, None),
            (now - 10, Some(now - 10)),
        ] {
            let a = header.empty_fetch(from, until, now).map_err(|e| e.to_string());
            let b = file.fetch(from, until, now).map_err(|e| e.to_string());
            assert_eq!(a, b);
        }
    }

    #[test]
    fn detects_go_whisper_compressed() {
        let mut bytes = b"whisper_compressed".to_vec();
        bytes.push(2);
        bytes.extend_from_slice(&7u32.to_be_bytes());
        match decode_header(&bytes, 1000) {
            Err(DecodeError::Foreign(ForeignFormat::GoWhisperCompressed {
                version: 2,
                aggregation: "mix",
            })) => {}
            other => panic!("{other:?}"),
        }
    }
}
