//! Retention definitions (`60s:1d`) and archive-list validation.
//!
//! This is whisper.py's `parseRetentionDef` and `validateArchiveList`, with their messages.
//! carbon's `storage-schemas.conf` parser is stricter (single-letter units only) and lives in
//! the `store` crate; this one accepts every unit prefix whisper accepts (`s`, `sec`, `min`,
//! `hour`, `d`, `w`, `y`, ...).

use std::fmt;
use std::str::FromStr;

use crate::error::{ArchiveListError, RetentionError};
use crate::format::{ARCHIVE_INFO_SIZE, METADATA_SIZE, POINT_SIZE};

/// The units whisper accepts, in the order it tries them: a unit string matches the first of
/// these that starts with it, so `m` means minutes and `mo` is an error.
const UNITS: [(&str, u64); 6] = [
    ("seconds", 1),
    ("minutes", 60),
    ("hours", 3600),
    ("days", 86400),
    ("weeks", 86400 * 7),
    ("years", 86400 * 365),
];

/// The shape of one archive: how many seconds each point covers, and how many points it keeps.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
pub struct Retention {
    seconds_per_point: u32,
    points: u32,
}

impl Retention {
    /// An archive of `points` points of `seconds_per_point` seconds each.
    ///
    /// Nothing is checked here; [`validate_archive_list`] checks a whole list.
    pub const fn new(seconds_per_point: u32, points: u32) -> Retention {
        Retention { seconds_per_point, points }
    }

    /// Seconds covered by one point (the archive's precision).
    pub const fn seconds_per_point(&self) -> u32 {
        self.seconds_per_point
    }

    /// Number of points (slots) in the archive.
    pub const fn points(&self) -> u32 {
        self.points
    }

    /// Seconds of history the archive covers: `seconds_per_point * points`.
    pub const fn retention(&self) -> u64 {
        self.seconds_per_point as u64 * self.points as u64
    }

    /// Bytes the archive takes on disk: 12 per point.
    pub const fn size(&self) -> u64 {
        self.points as u64 * POINT_SIZE as u64
    }
}

impl fmt::Display for Retention {
    /// Prints as whisper.py prints an archive tuple: `(60, 1440)`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "({}, {})", self.seconds_per_point, self.points)
    }
}

impl FromStr for Retention {
    type Err = RetentionError;

    fn from_str(s: &str) -> Result<Retention, RetentionError> {
        parse_retention_def(s)
    }
}

/// Expands a unit prefix to whisper's unit name: `m` → `minutes`, `h` → `hours`.
///
/// # Errors
///
/// [`RetentionError::Unit`] when no unit starts with `unit` (`mo`, `M`, ...).
pub fn unit_string(unit: &str) -> Result<&'static str, RetentionError> {
    unit_multiplier(unit).map(|(name, _)| name)
}

fn unit_multiplier(unit: &str) -> Result<(&'static str, u64), RetentionError> {
    UNITS
        .iter()
        .find(|(name, _)| name.starts_with(unit))
        .copied()
        .ok_or_else(|| RetentionError::Unit(unit.to_string()))
}

/// Splits `^(\d+)([a-z]+)$` into its number and unit.
fn number_and_unit(s: &str) -> Option<(&str, &str)> {
    let split = s.find(|c: char| !c.is_ascii_digit())?;
    let (digits, unit) = s.split_at(split);
    if digits.is_empty() || unit.is_empty() || !unit.bytes().all(|b| b.is_ascii_lowercase()) {
        return None;
    }
    Some((digits, unit))
}

fn all_digits(s: &str) -> bool {
    !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit())
}

/// Parses one retention definition the way whisper.py's `parseRetentionDef` does.
///
/// `precision:points`, where each side is digits or digits followed by a unit prefix. A bare
/// precision is seconds; a bare points count is a count; a duration on the points side is divided
/// (rounding down) by the precision: `7s:1d` is 12342 points.
///
/// ```
/// use whisper::{parse_retention_def, Retention};
/// assert_eq!(parse_retention_def("1m:7d")?, Retention::new(60, 10080));
/// assert_eq!(parse_retention_def("60:1440")?, Retention::new(60, 1440));
/// assert_eq!(parse_retention_def("1min:1d")?, Retention::new(60, 1440));
/// # Ok::<(), whisper::RetentionError>(())
/// ```
///
/// # Errors
///
/// whisper.py's messages: `Invalid retention definition '...'` without a `:`,
/// `Invalid precision specification '...'`, `Invalid retention specification '...'`,
/// `Invalid unit '...'`; plus [`RetentionError::ZeroPrecision`] and
/// [`RetentionError::TooLarge`] where whisper.py would crash or write an unreadable file.
pub fn parse_retention_def(def: &str) -> Result<Retention, RetentionError> {
    let (precision, points) =
        def.trim().split_once(':').ok_or_else(|| RetentionError::Definition(def.to_string()))?;
    let too_large = || RetentionError::TooLarge(def.to_string());

    let precision_secs: u64 = if all_digits(precision) {
        precision.parse().map_err(|_| too_large())?
    } else {
        let (n, unit) = number_and_unit(precision)
            .ok_or_else(|| RetentionError::Precision(precision.to_string()))?;
        let (_, mult) = unit_multiplier(unit)?;
        let n: u64 = n.parse().map_err(|_| too_large())?;
        n.checked_mul(mult).ok_or_else(too_large)?
    };

    let points_count: u64 = if all_digits(points) {
        points.parse().map_err(|_| too_large())?
    } else {
        let (n, unit) =
            number_and_unit(points).ok_or_else(|| RetentionError::Points(points.to_string()))?;
        let (_, mult) = unit_multiplier(unit)?;
        let n: u64 = n.parse().map_err(|_| too_large())?;
        if precision_secs == 0 {
            return Err(RetentionError::ZeroPrecision(precision.to_string()));
        }
        n.checked_mul(mult).ok_or_else(too_large)? / precision_secs
    };

    let seconds_per_point = u32::try_from(precision_secs).map_err(|_| too_large())?;
    let points = u32::try_from(points_count).map_err(|_| too_large())?;
    Ok(Retention::new(seconds_per_point, points))
}

/// Parses a precision alone (`1m`, `300`), as whisper.py does for `fetch(archiveToSelect=...)`.
///
/// # Errors
///
/// As [`parse_retention_def`].
pub fn parse_precision(precision: &str) -> Result<u32, RetentionError> {
    parse_retention_def(&format!("{precision}:1")).map(|r| r.seconds_per_point())
}

/// Sorts `archives` by precision and checks them against whisper's rules, in whisper's order,
/// so the first broken rule gives whisper.py's message.
///
/// 1. at least one archive;
/// 2. no two archives with the same precision;
/// 3. each precision divides the next (coarser) one;
/// 4. each coarser archive covers a longer time than the finer one;
/// 5. each archive has at least as many points as one point of the next consolidates.
///
/// On top of whisper.py, zero precisions or point counts and files too large for whisper's
/// 32-bit offsets are refused (whisper.py crashes on the first and writes a broken file for
/// the second).
///
/// # Errors
///
/// The [`ArchiveListError`] for the first rule that fails.
pub fn validate_archive_list(archives: &mut [Retention]) -> Result<(), ArchiveListError> {
    if archives.is_empty() {
        return Err(ArchiveListError::Empty);
    }
    archives.sort_by_key(|a| a.seconds_per_point);
    for (index, a) in archives.iter().enumerate() {
        if a.seconds_per_point == 0 || a.points == 0 {
            return Err(ArchiveListError::ZeroField {
                index,
                archive: (a.seconds_per_point, a.points),
            });
        }
    }
    for (index, pair) in archives.windows(2).enumerate() {
        let (hi, lo) = (pair[0], pair[1]);
        if hi.seconds_per_point >= lo.seconds_per_point {
            return Err(ArchiveListError::DuplicatePrecision {
                index,
                first: (hi.seconds_per_point, hi.points),
                second: (lo.seconds_per_point, lo.points),
            });
        }
        if lo.seconds_per_point % hi.seconds_per_point != 0 {
            return Err(ArchiveListError::UnevenPrecision {
                index,
                higher: hi.seconds_per_point,
                lower: lo.seconds_per_point,
            });
        }
        if lo.retention() <= hi.retention() {
            return Err(ArchiveListError::ShorterRetention {
                index,
                higher: hi.retention(),
                lower: lo.retention(),
            });
        }
        let per_point = lo.seconds_per_point / hi.seconds_per_point;
        if hi.points < per_point {
            return Err(ArchiveListError::TooFewPoints { index, per_point, points: hi.points });
        }
    }
    let bytes = file_size(archives);
    let max_retention = archives.iter().map(Retention::retention).max().unwrap_or(0);
    if bytes > u64::from(u32::MAX) || max_retention > u64::from(u32::MAX) {
        return Err(ArchiveListError::TooLarge { bytes });
    }
    Ok(())
}

/// The size in bytes of a whisper file with these archives: header plus 12 bytes per point.
pub fn file_size(archives: &[Retention]) -> u64 {
    let header = METADATA_SIZE as u64 + ARCHIVE_INFO_SIZE as u64 * archives.len() as u64;
    header + archives.iter().map(Retention::size).sum::<u64>()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p(s: &str) -> Result<(u32, u32), String> {
        parse_retention_def(s)
            .map(|r| (r.seconds_per_point(), r.points()))
            .map_err(|e| e.to_string())
    }

    #[test]
    fn parses_whisper_examples() {
        assert_eq!(p("60:1440"), Ok((60, 1440)));
        assert_eq!(p("1m:1d"), Ok((60, 1440)));
        assert_eq!(p("10s:6h"), Ok((10, 2160)));
        assert_eq!(p("1h:7d"), Ok((3600, 168)));
        assert_eq!(p("15m:8"), Ok((900, 8)));
        assert_eq!(p("12h:2y"), Ok((43200, 1460)));
        assert_eq!(p("7s:1d"), Ok((7, 12342)));
        assert_eq!(p(" 60s:1d "), Ok((60, 1440)));
    }

    #[test]
    fn accepts_every_unit_prefix() {
        for (unit, mult) in [
            ("s", 1),
            ("sec", 1),
            ("seconds", 1),
            ("m", 60),
            ("min", 60),
            ("minutes", 60),
            ("h", 3600),
            ("hour", 3600),
            ("d", 86400),
            ("day", 86400),
            ("w", 604800),
            ("week", 604800),
            ("y", 31536000),
            ("years", 31536000),
        ] {
            assert_eq!(p(&format!("1{unit}:1")), Ok((mult, 1)), "{unit}");
        }
    }

    #[test]
    fn rejects_with_whisper_messages() {
        assert_eq!(p("60"), Err("Invalid retention definition '60'".into()));
        assert_eq!(p("1mo:1d"), Err("Invalid unit 'mo'".into()));
        assert_eq!(p("1M:1d"), Err("Invalid precision specification '1M'".into()));
        assert_eq!(p("60:1x"), Err("Invalid unit 'x'".into()));
        assert_eq!(p("60:d"), Err("Invalid retention specification 'd'".into()));
        assert_eq!(p("60:1:2"), Err("Invalid retention specification '1:2'".into()));
        assert_eq!(p(":1"), Err("Invalid precision specification ''".into()));
        assert_eq!(p("-1:10"), Err("Invalid precision specification '-1'".into()));
    }

    #[test]
    fn refuses_zero_precision_and_overflow() {
        assert!(matches!(parse_retention_def("0:1d"), Err(RetentionError::ZeroPrecision(_))));
        assert!(matches!(parse_retention_def("1:99999999999"), Err(RetentionError::TooLarge(_))));
    }

    #[test]
    fn validation_sorts_and_applies_rules_in_order() {
        let mut list = vec![Retention::new(300, 2016), Retention::new(60, 1440)];
        validate_archive_list(&mut list).unwrap();
        assert_eq!(list[0], Retention::new(60, 1440));

        let err = |v: &mut [Retention]| validate_archive_list(v).unwrap_err().to_string();
        assert_eq!(err(&mut []), "You must specify at least one archive configuration!");
        assert!(err(&mut [Retention::new(60, 10), Retention::new(60, 20)]).starts_with(
            "A Whisper database may not be configured having two archives with the same precision (archive0: (60, 10), archive1: (60, 20))"
        ));
        assert_eq!(
            err(&mut [Retention::new(60, 100), Retention::new(90, 100)]),
            "Higher precision archives' precision must evenly divide all lower precision archives' precision (archive0: 60, archive1: 90)"
        );
        assert_eq!(
            err(&mut [Retention::new(60, 100), Retention::new(120, 50)]),
            "Lower precision archives must cover larger time intervals than higher precision archives (archive0: 6000 seconds, archive1: 6000 seconds)"
        );
        assert_eq!(
            err(&mut [Retention::new(60, 4), Retention::new(300, 100)]),
            "Each archive must have at least enough points to consolidate to the next archive (archive1 consolidates 5 of archive0's points but it has only 4 total points)"
        );
    }

    #[test]
    fn file_size_matches_reference_examples() {
        assert_eq!(file_size(&[Retention::new(60, 1440)]), 17308);
        assert_eq!(file_size(&[Retention::new(60, 1440), Retention::new(300, 8640)]), 121000);
    }
}
