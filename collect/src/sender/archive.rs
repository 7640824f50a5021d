//! The archive file: every point appended as a plaintext line, rotated daily.
//!
//! This is Diamond's `ArchiveHandler` (a `TimedRotatingFileHandler` with `when='midnight'`
//! and `backupCount=days`): the current file is `path`; at the first write of a new day it
//! is renamed `path.YYYY-MM-DD` (the day its lines belong to) and a new one is started, and
//! only the newest `rotate_days` rotated files are kept. Users replay such a file by hand
//! (`nc carbon 2003 < archive.log.2024-05-01`) after an outage.
//!
//! Differences from Diamond: days are UTC days (no time-zone code; a day is always 24
//! hours), and a file left by a previous run is rotated at start if it was last written on
//! an earlier day, as Python's handler does from the file's mtime.

use std::fs::{self, File, OpenOptions};
use std::io::{self, BufWriter, Write};
use std::path::{Path, PathBuf};
use std::time::{SystemTime, UNIX_EPOCH};

use carbon_proto::Point;

use super::transport::encode_plaintext;

/// Writes an archive file and rotates it.
///
/// ```
/// use std::time::{Duration, UNIX_EPOCH};
/// use carbon_proto::{MetricName, Point};
/// use collect::sender::ArchiveWriter;
///
/// let dir = tempfile::tempdir()?;
/// let day = |d: u64| UNIX_EPOCH + Duration::from_secs(d * 86_400 + 3600);
/// let mut archive = ArchiveWriter::open(dir.path().join("archive.log"), 7, day(19_000))?;
/// let p = Point::new(MetricName::new("a.b")?, 1_641_603_600.0, 1.0);
/// archive.write_points(&[p.clone()], day(19_000))?;
/// archive.write_points(&[p], day(19_001))?; // a new day: rotates first
/// assert!(dir.path().join("archive.log.2022-01-08").exists());
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Debug)]
pub struct ArchiveWriter {
    /// The current file's path.
    path: PathBuf,
    /// Rotated files kept (0 = all).
    rotate_days: u32,
    /// The current file.
    file: BufWriter<File>,
    /// The UTC day (days since the epoch) the current file's lines belong to.
    day: i64,
    /// Encoding buffer.
    buf: Vec<u8>,
}

impl ArchiveWriter {
    /// Opens (appending) or creates `path` and its directory; rotates a file left from an
    /// earlier day first.
    ///
    /// # Errors
    ///
    /// The I/O error of creating, renaming or opening the file.
    pub fn open(
        path: impl Into<PathBuf>,
        rotate_days: u32,
        now: SystemTime,
    ) -> io::Result<ArchiveWriter> {
        let path = path.into();
        if let Some(parent) = path.parent().filter(|p| !p.as_os_str().is_empty()) {
            fs::create_dir_all(parent)?;
        }
        let today = utc_day(now);
        if let Ok(meta) = fs::metadata(&path) {
            let written = meta.modified().map(utc_day).unwrap_or(today);
            if written < today && meta.len() > 0 {
                rotate_file(&path, written)?;
                remove_old(&path, rotate_days);
            }
        }
        let file = OpenOptions::new().create(true).append(true).open(&path)?;
        Ok(ArchiveWriter {
            path,
            rotate_days,
            file: BufWriter::new(file),
            day: today,
            buf: Vec::new(),
        })
    }

    /// The current file.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Appends one line per point (rotating first if `now` is on a later day) and flushes.
    ///
    /// # Errors
    ///
    /// The I/O error of writing, or of rotating.
    pub fn write_points(&mut self, points: &[Point], now: SystemTime) -> io::Result<()> {
        let today = utc_day(now);
        if today > self.day {
            self.rotate(today)?;
        }
        self.buf.clear();
        encode_plaintext(&mut self.buf, points);
        self.file.write_all(&self.buf)?;
        self.file.flush()
    }

    fn rotate(&mut self, today: i64) -> io::Result<()> {
        self.file.flush()?;
        rotate_file(&self.path, self.day)?;
        let file = OpenOptions::new().create(true).append(true).open(&self.path)?;
        self.file = BufWriter::new(file);
        self.day = today;
        remove_old(&self.path, self.rotate_days);
        Ok(())
    }
}

/// Renames `path` to `path.YYYY-MM-DD` for `day` (`path.YYYY-MM-DD.N` if that exists).
fn rotate_file(path: &Path, day: i64) -> io::Result<()> {
    let mut target = suffixed(path, &format_day(day));
    let mut n = 1;
    while target.exists() && n < 1000 {
        target = suffixed(path, &format!("{}.{n}", format_day(day)));
        n += 1;
    }
    fs::rename(path, &target)
}

fn suffixed(path: &Path, suffix: &str) -> PathBuf {
    let mut s = path.as_os_str().to_os_string();
    s.push(".");
    s.push(suffix);
    PathBuf::from(s)
}

/// Deletes rotated files beyond the newest `keep` (by the date in their names).
fn remove_old(path: &Path, keep: u32) {
    if keep == 0 {
        return;
    }
    let (Some(dir), Some(base)) = (path.parent(), path.file_name().and_then(|n| n.to_str())) else {
        return;
    };
    let dir = if dir.as_os_str().is_empty() { Path::new(".") } else { dir };
    let Ok(entries) = fs::read_dir(dir) else { return };
    let mut rotated: Vec<(String, PathBuf)> = entries
        .filter_map(|e| e.ok())
        .filter_map(|e| {
            let name = e.file_name().into_string().ok()?;
            let suffix = name.strip_prefix(base)?.strip_prefix('.')?;
            is_day(suffix.get(..10)?).then(|| (suffix.to_string(), e.path()))
        })
        .collect();
    // Newest first: dates sort as text, and `.N` after the same date is newer.
    rotated.sort_by(|a, b| b.0.cmp(&a.0));
    for (_, old) in rotated.into_iter().skip(keep as usize) {
        if let Err(error) = fs::remove_file(&old) {
            tracing::warn!(path = %old.display(), %error, "cannot delete an old archive file");
        }
    }
}

fn is_day(s: &str) -> bool {
    let b = s.as_bytes();
    b.len() == 10
        && b.iter()
            .enumerate()
            .all(|(i, c)| if i == 4 || i == 7 { *c == b'-' } else { c.is_ascii_digit() })
}

/// Days since the epoch of `t`, UTC.
fn utc_day(t: SystemTime) -> i64 {
    match t.duration_since(UNIX_EPOCH) {
        Ok(d) => (d.as_secs() / 86_400) as i64,
        Err(e) => -((e.duration().as_secs() / 86_400) as i64) - 1,
    }
}

/// `YYYY-MM-DD` of a day number (Howard Hinnant's `civil_from_days`).
fn format_day(days: i64) -> String {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + i64::from(m <= 2);
    format!("{y:04}-{m:02}-{d:02}")
}

#[cfg(test)]
mod tests {
    use super::*;
    use carbon_proto::MetricName;
    use std::time::Duration;

    fn at(day: i64, secs: u64) -> SystemTime {
        UNIX_EPOCH + Duration::from_secs(day as u64 * 86_400 + secs)
    }

    #[test]
    fn days_format_as_civil_dates() {
        assert_eq!(format_day(0), "1970-01-01");
        assert_eq!(format_day(19_723), "2024-01-01");
        assert_eq!(format_day(19_782), "2024-02-29");
        assert_eq!(format_day(-1), "1969-12-31");
        assert_eq!(utc_day(at(19_723, 86_399)), 19_723);
        assert!(is_day("2024-02-29") && !is_day("2024-02-2x"));
    }

    #[test]
    fn rotates_daily_and_keeps_rotate_days_files() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("archive.log");
        let p = Point::new(MetricName::new("a.b").unwrap(), 1.7e9, 2.5);
        let mut w = ArchiveWriter::open(&path, 2, at(19_723, 10)).unwrap();
        for day in 19_723..19_728 {
            w.write_points(&[p.clone()], at(day, 100)).unwrap();
            w.write_points(&[p.clone()], at(day, 80_000)).unwrap();
        }
        let mut names: Vec<String> = fs::read_dir(dir.path())
            .unwrap()
            .map(|e| e.unwrap().file_name().into_string().unwrap())
            .collect();
        names.sort();
        assert_eq!(names, ["archive.log", "archive.log.2024-01-03", "archive.log.2024-01-04"]);
        let current = fs::read_to_string(&path).unwrap();
        assert_eq!(current, "a.b 2.5 1700000000\na.b 2.5 1700000000\n");
        let old = fs::read_to_string(dir.path().join("archive.log.2024-01-04")).unwrap();
        assert_eq!(old.lines().count(), 2);
    }

    #[test]
    fn a_file_from_an_earlier_day_is_rotated_at_open() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("a.log");
        fs::write(&path, "old 1 1\n").unwrap();
        // The file's mtime is now; opening "tomorrow" rotates it under today's date.
        let today = utc_day(SystemTime::now());
        let w = ArchiveWriter::open(&path, 7, at(today + 1, 0)).unwrap();
        assert_eq!(fs::read_to_string(suffixed(&path, &format_day(today))).unwrap(), "old 1 1\n");
        assert_eq!(fs::metadata(w.path()).unwrap().len(), 0);
    }
}
