//! Operations across files: merge, diff, fill and resize.
//!
//! `merge` and `diff` are whisper.py's library functions; `fill` and `resize` are the logic of
//! the `whisper-fill` and `whisper-resize` scripts, moved into the library so other programs can
//! use them. All follow the Python code's order of reads and writes, which decides the bytes.

use std::fs;
use std::path::{Path, PathBuf};

use crate::aggregation::AggregationMethod;
use crate::create::CreateOptions;
use crate::error::{Error, Result};
use crate::format::ArchiveInfo;
use crate::handle::{OpenOptions, Series, Whisper, clamp_time, retention_i64};
use crate::retention::Retention;
use crate::storage::Storage;

/// Archive indexes sorted by retention, shortest first (a stable sort, as Python's).
fn by_retention(archives: &[ArchiveInfo]) -> Vec<usize> {
    let mut order: Vec<usize> = (0..archives.len()).collect();
    order.sort_by_key(|&i| archives[i].retention());
    order
}

/// Copies the points of `src` into `dst`, as whisper.py's `merge(from, to, time_from, time_to,
/// now)`.
///
/// Both files must have the same archives. For each archive, shortest retention first, the
/// points of `src` between `max(time_from, now - retention)` and `time_to` overwrite those of
/// `dst` and propagate with `dst`'s aggregation settings. `time_from` defaults to 0 and
/// `time_to` to `now`.
///
/// # Errors
///
/// [`Error::ArchivesUnalike`], [`Error::InvalidMergeRange`], I/O errors.
pub fn merge_into<S1: Storage, S2: Storage>(
    src: &mut Whisper<S1>,
    dst: &mut Whisper<S2>,
    time_from: Option<i64>,
    time_to: Option<i64>,
    now: i64,
) -> Result<()> {
    let result = merge_archives(src, dst, time_from, time_to, now);
    // Writes go straight to the archives, outside `dst`'s write operations: tell its header
    // cache, if it has one, what they learned (or that they failed).
    dst.finish_cached(&result);
    result
}

fn merge_archives<S1: Storage, S2: Storage>(
    src: &mut Whisper<S1>,
    dst: &mut Whisper<S2>,
    time_from: Option<i64>,
    time_to: Option<i64>,
    now: i64,
) -> Result<()> {
    let src_archives = src.info()?.archives().to_vec();
    let dst_archives = dst.info()?.archives().to_vec();
    if src_archives != dst_archives {
        return Err(Error::ArchivesUnalike {
            from: src.path().to_path_buf(),
            to: dst.path().to_path_buf(),
            operation: "merging",
        });
    }
    let now = clamp_time(now);
    let until = clamp_time(time_to.unwrap_or(now));
    let from = clamp_time(time_from.unwrap_or(0));
    if until < from {
        return Err(Error::InvalidMergeRange { from, to: until });
    }
    for index in by_retention(&src_archives) {
        let oldest = now - retention_i64(&src_archives[index]);
        if until < oldest {
            continue;
        }
        let (start, _, step, values) =
            src.read_archive_window(index, from.max(oldest), until, 0)?;
        let points: Vec<(i64, f64)> = values
            .iter()
            .enumerate()
            .filter_map(|(i, v)| v.map(|v| (start + i as i64 * i64::from(step), v)))
            .collect();
        if points.is_empty() {
            continue;
        }
        dst.archive_update_many(&dst_archives, index, points.iter().copied())?;
    }
    Ok(())
}

/// Merges the file at `from` into the file at `to`. See [`merge_into`].
///
/// # Errors
///
/// As [`merge_into`], plus open errors.
pub fn merge(
    from: impl AsRef<Path>,
    to: impl AsRef<Path>,
    time_from: Option<i64>,
    time_to: Option<i64>,
    now: i64,
) -> Result<()> {
    let mut src = OpenOptions::new().open(from)?;
    let mut dst = OpenOptions::new().write(true).open(to)?;
    merge_into(&mut src, &mut dst, time_from, time_to, now)
}

/// The differences between two files in one archive, as whisper.py's `diff` returns them.
#[derive(Clone, Debug, PartialEq)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
pub struct ArchiveDiff {
    /// The archive's position when archives are sorted by retention (finest first).
    pub archive: usize,
    /// `(timestamp, value in the first file, value in the second)` where the values differ.
    pub points: Vec<(i64, Option<f64>, Option<f64>)>,
    /// How many points were compared.
    pub total: usize,
}

/// Compares two files archive by archive, as whisper.py's `diff(a, b, ignore_empty,
/// until_time, now)`.
///
/// Each archive covers `[now - retention, until]`, then `until` moves back to where that
/// archive began, so each archive compares only its own older slice. A point is compared when
/// either value is known, or with `ignore_empty` only when both are. `until` of `None` or 0
/// means `now`.
///
/// Where one file's archive holds fewer slots than the window (only possible with an `until` in
/// the future), whisper.py raises `IndexError`; we compare the slots both have.
///
/// # Errors
///
/// [`Error::ArchivesUnalike`], I/O errors.
pub fn diff_files<S1: Storage, S2: Storage>(
    a: &mut Whisper<S1>,
    b: &mut Whisper<S2>,
    ignore_empty: bool,
    until_time: Option<i64>,
    now: i64,
) -> Result<Vec<ArchiveDiff>> {
    let archives = a.info()?.archives().to_vec();
    if b.info()?.archives() != archives.as_slice() {
        return Err(Error::ArchivesUnalike {
            from: a.path().to_path_buf(),
            to: b.path().to_path_buf(),
            operation: "diffing",
        });
    }
    let now = clamp_time(now);
    let mut until = clamp_time(until_time.filter(|&t| t != 0).unwrap_or(now));
    let mut out = Vec::with_capacity(archives.len());
    for (number, index) in by_retention(&archives).into_iter().enumerate() {
        let start_time = now - retention_i64(&archives[index]);
        let points = archives[index].points() as usize;
        let (fa, ua, step, va) = a.read_archive_window(index, start_time, until, points)?;
        let (fb, ub, _, vb) = b.read_archive_window(index, start_time, until, points)?;
        let start = fa.min(fb);
        let end = ua.max(ub);
        let step = i64::from(step);
        let span = ((end - start) / step).max(0) as usize;
        let n = span.min(va.len()).min(vb.len());
        let mut total = 0;
        let mut differing = Vec::new();
        for s in 0..n {
            let (x, y) = (va[s], vb[s]);
            let compared =
                if ignore_empty { x.is_some() && y.is_some() } else { x.is_some() || y.is_some() };
            if !compared {
                continue;
            }
            total += 1;
            if x != y {
                differing.push((start + s as i64 * step, x, y));
            }
        }
        out.push(ArchiveDiff { archive: number, points: differing, total });
        until = until.min(start_time);
    }
    Ok(out)
}

/// Compares the files at `a` and `b`. See [`diff_files`].
///
/// # Errors
///
/// As [`diff_files`], plus open errors.
pub fn diff(
    a: impl AsRef<Path>,
    b: impl AsRef<Path>,
    ignore_empty: bool,
    until_time: Option<i64>,
    now: i64,
) -> Result<Vec<ArchiveDiff>> {
    let mut a = OpenOptions::new().open(a)?;
    let mut b = OpenOptions::new().open(b)?;
    diff_files(&mut a, &mut b, ignore_empty, until_time, now)
}

/// Fills the gaps of `dst` with points of `src`, as the `whisper-fill` script does: existing
/// points of `dst` are kept, and each gap is filled from the finest archive of `src` that
/// covers it.
///
/// `now` is the script's `time.time()`, a float; its fraction matters in a few comparisons, so
/// it is kept. As in the script, a value of `0.0` in `dst` counts as a gap, and a gap of a
/// single point, or at the very last slot, is left alone.
///
/// # Errors
///
/// I/O errors.
pub fn fill_from<S1: Storage, S2: Storage>(
    src: &mut Whisper<S1>,
    dst: &mut Whisper<S2>,
    now: f64,
) -> Result<()> {
    let now_int = clamp_time(now as i64);
    let archives = dst.info()?.archives().to_vec();
    let mut start_from = now;
    for index in by_retention(&archives) {
        let archive = archives[index];
        let from_time = now - archive.retention() as f64;
        if from_time >= start_from {
            continue;
        }
        let Some(series) = dst.fetch(from_time as i64, Some(start_from as i64), now_int)? else {
            start_from = from_time;
            continue;
        };
        let step = i64::from(series.step);
        let end = series.until;
        let mut start = series.from;
        // Python's `not gapstart` is also true for a gap starting at timestamp 0.
        let mut gap_start: Option<i64> = None;
        for v in &series.values {
            let known = matches!(v, Some(x) if *x != 0.0);
            let open = gap_start.filter(|&g| g != 0);
            match open {
                None if !known => gap_start = Some(start),
                Some(g) if known => {
                    if start - g > i64::from(archive.seconds_per_point()) {
                        fill_range(src, dst, (g - step) as f64, start as f64, now)?;
                    }
                    gap_start = None;
                }
                Some(g) if start == end - step => {
                    fill_range(src, dst, (g - step) as f64, start as f64, now)?;
                }
                _ => {}
            }
            start += step;
        }
        start_from = from_time;
    }
    Ok(())
}

/// The script's `fill(src, dst, tstart, tstop)`: copies `src`'s points of `(tstart, tstop]`
/// into `dst`, walking back in time from the finest archive to coarser ones.
fn fill_range<S1: Storage, S2: Storage>(
    src: &mut Whisper<S1>,
    dst: &mut Whisper<S2>,
    tstart: f64,
    mut tstop: f64,
    now: f64,
) -> Result<()> {
    let now_int = clamp_time(now as i64);
    let header = src.info()?;
    let archives = header.archives().to_vec();
    let src_time = (now_int - i64::from(header.max_retention())) as f64;
    if tstart < src_time && tstop < src_time {
        return Ok(());
    }
    for index in by_retention(&archives) {
        let rtime = now - archives[index].retention() as f64;
        if tstop <= rtime {
            continue;
        }
        let from_time = if rtime > tstart { rtime } else { tstart };
        if let Some(series) = src.fetch(from_time as i64, Some(tstop as i64), now_int)? {
            let points: Vec<(i64, f64)> =
                series.points().filter_map(|(t, v)| v.map(|v| (t, v))).collect();
            dst.update_many(&points, now_int)?;
        }
        tstop = from_time;
        if tstart == tstop {
            return Ok(());
        }
    }
    Ok(())
}

/// Fills the gaps of the file at `dst` from the file at `src`. See [`fill_from`].
///
/// # Errors
///
/// As [`fill_from`], plus open errors.
pub fn fill(src: impl AsRef<Path>, dst: impl AsRef<Path>, now: f64, lock: bool) -> Result<()> {
    let mut src = OpenOptions::new().open(src)?;
    let mut dst = OpenOptions::new().write(true).lock(lock).open(dst)?;
    fill_from(&mut src, &mut dst, now)
}

/// Options for [`resize`].
#[derive(Clone, Debug, Default)]
pub struct ResizeOptions {
    x_files_factor: Option<f64>,
    aggregation_method: Option<AggregationMethod>,
    new_file: Option<PathBuf>,
    keep_backup: bool,
    aggregate: bool,
}

impl ResizeOptions {
    /// Keep the file's xFilesFactor and method, replace the file in place, keep a `.bak`.
    pub fn new() -> ResizeOptions {
        ResizeOptions { keep_backup: true, ..ResizeOptions::default() }
    }

    /// A new xFilesFactor. Default: the file's own.
    pub fn x_files_factor(&mut self, x: Option<f64>) -> &mut ResizeOptions {
        self.x_files_factor = x;
        self
    }

    /// A new aggregation method. Default: the file's own.
    pub fn aggregation_method(&mut self, m: Option<AggregationMethod>) -> &mut ResizeOptions {
        self.aggregation_method = m;
        self
    }

    /// Write the result to this path and leave the original alone (`--newfile`).
    /// Default: replace the original.
    pub fn new_file(&mut self, path: Option<PathBuf>) -> &mut ResizeOptions {
        self.new_file = path;
        self
    }

    /// Keep the original as `<path>.bak` (without `--nobackup`). Default: `true`.
    pub fn keep_backup(&mut self, yes: bool) -> &mut ResizeOptions {
        self.keep_backup = yes;
        self
    }

    /// Aggregate old points into the new archives' intervals (`--aggregate`) instead of
    /// copying them as they are. Default: `false`.
    pub fn aggregate(&mut self, yes: bool) -> &mut ResizeOptions {
        self.aggregate = yes;
        self
    }
}

/// What [`resize`] is doing; `whisper-resize` prints a line for each.
#[derive(Debug)]
#[non_exhaustive]
pub enum ResizeEvent<'a> {
    /// About to read every archive of the old file.
    Retrieving,
    /// A leftover temporary file from an earlier run is being removed.
    RemovingTemporary(&'a Path),
    /// About to create the new file.
    Creating(&'a Path),
    /// The new file exists, with this size in bytes.
    Created(&'a Path, u64),
    /// About to copy the points; `true` when aggregating.
    Migrating(bool),
    /// With aggregation: the timestamps of every old point, merged across archives.
    OldTimestamps(&'a [i64]),
    /// With aggregation: the window of one new archive, `(from, until, step)`.
    ArchiveWindow(i64, i64, u32),
    /// Renaming the old file to this backup path.
    RenamingOld(&'a Path),
    /// Renaming the new file into place.
    RenamingNew(&'a Path),
    /// Renaming failed; the backup is being put back.
    RestoringBackup(&'a std::io::Error),
    /// Removing the backup.
    UnlinkingBackup(&'a Path),
}

/// Rewrites the file at `path` with new archives, as the `whisper-resize` script does.
///
/// Reads every old archive (coarsest first, each from `now - retention + step`), creates the
/// new file (zero-filled) at `<path>.tmp` or the chosen new path, copies the points (coarsest
/// archive first, so finer points win) or, with `aggregate`, aggregates them into each new
/// archive's intervals, then renames the old file to `<path>.bak` and the new one into place.
/// `on_event` hears each step, in order.
///
/// The aggregating mode is that of current upstream whisper (the Debian 1.1.4 script crashes
/// on Python 3 there), except where upstream re-reads a coarser archive that adds no older
/// point and so aggregates values into the wrong intervals.
///
/// # Errors
///
/// Open, create and I/O errors. If renaming the new file into place fails, the backup is
/// renamed back and the error returned.
pub fn resize(
    path: &Path,
    archives: &[Retention],
    options: &ResizeOptions,
    now: i64,
    on_event: &mut dyn FnMut(ResizeEvent<'_>),
) -> Result<()> {
    let now = clamp_time(now);
    let mut old = OpenOptions::new().open(path)?;
    let header = old.info()?.clone();
    let mut old_archives: Vec<ArchiveInfo> = header.archives().to_vec();
    // Coarsest first (a stable sort on seconds per point, reversed, as the script does).
    old_archives.sort_by_key(|a| std::cmp::Reverse(a.seconds_per_point()));
    let xff = options.x_files_factor.unwrap_or(f64::from(header.x_files_factor()));
    let method = options.aggregation_method.unwrap_or(header.aggregation_method());

    on_event(ResizeEvent::Retrieving);
    let mut data: Vec<Series> = Vec::with_capacity(old_archives.len());
    for a in &old_archives {
        let from = now - retention_i64(a) + i64::from(a.seconds_per_point());
        data.push(old.fetch(from, Some(now), now)?.unwrap_or_default());
    }
    drop(old);

    let tmp = path_with_suffix(path, ".tmp");
    let new_path = match &options.new_file {
        Some(p) => p.clone(),
        None => {
            if tmp.exists() {
                on_event(ResizeEvent::RemovingTemporary(&tmp));
                fs::remove_file(&tmp).map_err(|e| Error::io(&tmp, e))?;
            }
            tmp.clone()
        }
    };
    on_event(ResizeEvent::Creating(&new_path));
    let mut new = CreateOptions::new()
        .x_files_factor(xff)
        .aggregation_method(method)
        .create(&new_path, archives)?;
    let size = fs::metadata(&new_path).map_err(|e| Error::io(&new_path, e))?.len();
    on_event(ResizeEvent::Created(&new_path, size));

    on_event(ResizeEvent::Migrating(options.aggregate));
    if options.aggregate {
        migrate_aggregated(&mut new, &old_archives, &data, xff, method, now, on_event)?;
    } else {
        for series in &data {
            let points: Vec<(i64, f64)> =
                series.points().filter_map(|(t, v)| v.map(|v| (t, v))).collect();
            new.update_many(&points, now)?;
        }
    }
    drop(new);

    if options.new_file.is_some() {
        return Ok(());
    }
    let backup = path_with_suffix(path, ".bak");
    on_event(ResizeEvent::RenamingOld(&backup));
    fs::rename(path, &backup).map_err(|e| Error::io(path, e))?;
    on_event(ResizeEvent::RenamingNew(path));
    if let Err(e) = fs::rename(&tmp, path) {
        on_event(ResizeEvent::RestoringBackup(&e));
        fs::rename(&backup, path).map_err(|e| Error::io(&backup, e))?;
        return Err(Error::io(&tmp, e));
    }
    if !options.keep_backup {
        on_event(ResizeEvent::UnlinkingBackup(&backup));
        fs::remove_file(&backup).map_err(|e| Error::io(&backup, e))?;
    }
    Ok(())
}

/// The `--aggregate` migration of upstream whisper-resize.
fn migrate_aggregated(
    new: &mut Whisper,
    old_archives: &[ArchiveInfo],
    data: &[Series],
    xff: f64,
    method: AggregationMethod,
    now: i64,
    on_event: &mut dyn FnMut(ResizeEvent<'_>),
) -> Result<()> {
    // Merge the old archives, finest first, newest first: each coarser archive adds only the
    // points older than everything so far. (Upstream's script slices from 0 when no point is
    // older, re-adding the whole archive and leaving the timeline unsorted, so its bisections
    // put values in the wrong intervals; such an archive adds nothing here.)
    let mut order: Vec<usize> = (0..old_archives.len()).collect();
    order.sort_by_key(|&i| old_archives[i].seconds_per_point());
    let mut all: Vec<(i64, Option<f64>)> = Vec::new();
    for i in order {
        let mut points: Vec<(i64, Option<f64>)> = data[i].points().collect();
        points.reverse();
        let skip = match all.last() {
            Some(&(last, _)) => points.iter().position(|&(t, _)| t < last).unwrap_or(points.len()),
            None => 0,
        };
        all.extend_from_slice(&points[skip..]);
    }
    all.reverse();
    let timestamps: Vec<i64> = all.iter().map(|p| p.0).collect();
    let values: Vec<Option<f64>> = all.iter().map(|p| p.1).collect();
    drop(all);
    on_event(ResizeEvent::OldTimestamps(&timestamps));

    let new_archives = new.info()?.archives().to_vec();
    for archive in &new_archives {
        let step = i64::from(archive.seconds_per_point());
        let from = now - retention_i64(archive) + now.rem_euclid(step);
        let until = now + now.rem_euclid(step) + step;
        on_event(ResizeEvent::ArchiveWindow(from, until, archive.seconds_per_point()));
        let mut points = Vec::new();
        let mut left_edge = from;
        while left_edge + step < until {
            let right_edge = left_edge + step;
            let left = bisect_left(&timestamps, left_edge, 0);
            let right = bisect_left(&timestamps, right_edge, left);
            let window = &values[left..right.max(left)];
            if !window.is_empty() {
                let known = window.iter().filter(|v| v.is_some()).count();
                if known > 0
                    && known as f64 / window.len() as f64 >= xff
                    && let Some(v) = method.aggregate(window)
                {
                    points.push((left_edge, v));
                }
            }
            left_edge = right_edge;
        }
        new.update_many(&points, now)?;
    }
    Ok(())
}

/// Python's `bisect.bisect_left`, step for step, so it gives the same answer as the script even
/// on a list that is not sorted.
fn bisect_left(a: &[i64], x: i64, lo: usize) -> usize {
    let (mut lo, mut hi) = (lo, a.len());
    while lo < hi {
        let mid = (lo + hi) / 2;
        if a[mid] < x {
            lo = mid + 1;
        } else {
            hi = mid;
        }
    }
    lo
}

fn path_with_suffix(path: &Path, suffix: &str) -> PathBuf {
    let mut s = path.as_os_str().to_os_string();
    s.push(suffix);
    PathBuf::from(s)
}

#[cfg(test)]
mod tests {
    use super::bisect_left;

    #[test]
    fn bisect_matches_python_on_sorted_input() {
        let a = [1, 2, 2, 4];
        assert_eq!(bisect_left(&a, 2, 0), 1);
        assert_eq!(bisect_left(&a, 3, 0), 3);
        assert_eq!(bisect_left(&a, 9, 0), 4);
        assert_eq!(bisect_left(&a, 0, 2), 2);
    }
}
