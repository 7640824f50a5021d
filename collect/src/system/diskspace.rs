//! Free space per filesystem from `/proc/mounts` and `statvfs` (Diamond's
//! `DiskSpaceCollector`, node `diskspace`).
//!
//! For each mounted filesystem of a type in `filesystems`, not matching `exclude_filters`
//! (regexes matched at the start of the mount point) and not under `/dev`, `/proc` or `/sys`,
//! once per device id: for each `byte_unit`, `<name>.<unit>_percentfree`, `_used`, `_free`
//! (f_bfree) and `_avail` (f_bavail), then `inodes_percentfree`, `inodes_used`,
//! `inodes_free`, `inodes_avail`. `<name>` is the filesystem's label (from
//! `<dev>/disk/by-label`) or the mount point with `/` and `.` turned into `_` (`/` is `root`).
//!
//! `statvfs` goes through the [`FsStat`] seam so fixture tests can give exact figures.

use std::collections::{HashMap, HashSet};
use std::ffi::CString;
use std::io;
use std::mem::MaybeUninit;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::MetadataExt;
use std::path::{Component, Path, PathBuf};

use regex::Regex;

use super::procfile::ProcFile;
use super::{BadInput, compile_regex, parse, push_node};
use crate::units::{ByteUnit, byte_units};
use crate::{Collector, Env, Options, Result, RunContext, Sample};

const DEFAULT_FILESYSTEMS: &[&str] = &[
    "ext2",
    "ext3",
    "ext4",
    "xfs",
    "glusterfs",
    "nfs",
    "nfs4",
    "ntfs",
    "hfs",
    "fat32",
    "fat16",
    "btrfs",
];

/// What `statvfs` (and `stat` for the device id) says about a mounted filesystem.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct FsUsage {
    /// The device id (`st_dev`) of the mount point: two mounts of one device count once.
    pub dev: u64,
    /// The fundamental block size (`f_frsize`), the unit of the block counts.
    pub fragment_size: u64,
    /// Size in blocks (`f_blocks`).
    pub blocks: u64,
    /// Free blocks (`f_bfree`).
    pub blocks_free: u64,
    /// Blocks free to unprivileged users (`f_bavail`).
    pub blocks_avail: u64,
    /// Inodes (`f_files`).
    pub files: u64,
    /// Free inodes (`f_ffree`).
    pub files_free: u64,
    /// Inodes free to unprivileged users (`f_favail`).
    pub files_avail: u64,
}

/// Where the diskspace collector gets a mount point's figures: the system
/// ([`StatvfsFsStat`]) or a table ([`FixedFsStat`], for tests).
pub trait FsStat: Send + std::fmt::Debug {
    /// The figures of the filesystem mounted at `mount_point`.
    ///
    /// # Errors
    /// Whatever the system says (the mount went away, permission); the collector skips that
    /// filesystem.
    fn stat(&self, mount_point: &Path) -> io::Result<FsUsage>;
}

/// The system's `stat` and `statvfs`.
#[derive(Clone, Copy, Debug, Default)]
pub struct StatvfsFsStat;

impl FsStat for StatvfsFsStat {
    fn stat(&self, mount_point: &Path) -> io::Result<FsUsage> {
        let dev = std::fs::metadata(mount_point)?.dev();
        let path = CString::new(mount_point.as_os_str().as_bytes())?;
        let mut buf = MaybeUninit::<libc::statvfs>::uninit();
        // SAFETY: `path` is a NUL-terminated string that outlives the call, and `buf` is valid
        // for writes of one `statvfs`.
        let rc = unsafe { libc::statvfs(path.as_ptr(), buf.as_mut_ptr()) };
        if rc != 0 {
            return Err(io::Error::last_os_error());
        }
        // SAFETY: statvfs returned 0, so it filled `buf`.
        let s = unsafe { buf.assume_init() };
        #[allow(clippy::unnecessary_cast)] // the field types are c_ulong or u64 by platform
        Ok(FsUsage {
            dev,
            fragment_size: s.f_frsize as u64,
            blocks: s.f_blocks as u64,
            blocks_free: s.f_bfree as u64,
            blocks_avail: s.f_bavail as u64,
            files: s.f_files as u64,
            files_free: s.f_ffree as u64,
            files_avail: s.f_favail as u64,
        })
    }
}

/// Figures given by the caller, per mount point (the in-memory seam for tests).
#[derive(Clone, Debug, Default)]
pub struct FixedFsStat {
    table: HashMap<PathBuf, FsUsage>,
}

impl FixedFsStat {
    /// An empty table: every mount point is "not found".
    pub fn new() -> FixedFsStat {
        FixedFsStat::default()
    }

    /// Sets the figures of `mount_point`.
    pub fn insert(&mut self, mount_point: impl Into<PathBuf>, usage: FsUsage) -> &mut FixedFsStat {
        self.table.insert(mount_point.into(), usage);
        self
    }
}

impl FsStat for FixedFsStat {
    fn stat(&self, mount_point: &Path) -> io::Result<FsUsage> {
        self.table.get(mount_point).copied().ok_or_else(|| io::Error::from(io::ErrorKind::NotFound))
    }
}

/// The diskspace collector.
#[derive(Debug)]
pub struct DiskSpace {
    mounts: ProcFile,
    dev_root: PathBuf,
    buf: Vec<u8>,
    filesystems: Vec<String>,
    exclude: Option<Regex>,
    units: Vec<ByteUnit>,
    fs: Box<dyn FsStat>,
    bad: BadInput,
}

impl DiskSpace {
    /// Options: `filesystems` (ext2, ext3, ext4, xfs, glusterfs, nfs, nfs4, ntfs, hfs, fat32,
    /// fat16, btrfs), `exclude_filters` (`^/export/home`; empty for none), `byte_unit`
    /// (`byte`). Uses the system's `statvfs`.
    ///
    /// # Errors
    /// [`Error::BadOption`](crate::Error::BadOption) for a bad regex or unit.
    pub fn new(opts: &Options, env: &Env) -> Result<DiskSpace> {
        DiskSpace::with_fs_stat(opts, env, Box::new(StatvfsFsStat))
    }

    /// Like [`new`](DiskSpace::new), with figures from `fs`.
    ///
    /// # Errors
    /// As [`new`](DiskSpace::new).
    pub fn with_fs_stat(opts: &Options, env: &Env, fs: Box<dyn FsStat>) -> Result<DiskSpace> {
        let filters = opts.list_or("exclude_filters", &["^/export/home"]);
        let exclude = if filters.is_empty() {
            None
        } else {
            Some(compile_regex("exclude_filters", &format!("^(?:{})", filters.join("|")))?)
        };
        Ok(DiskSpace {
            mounts: ProcFile::new(env.proc_root.join("mounts")),
            dev_root: env.dev_root.clone(),
            buf: Vec::new(),
            filesystems: opts.list_or("filesystems", DEFAULT_FILESYSTEMS),
            exclude,
            units: byte_units(opts, &["byte"])?,
            fs,
            bad: BadInput::default(),
        })
    }

    /// Device path (as `/dev/...`) to label, from the `<dev>/disk/by-label` symlinks. No
    /// directory means no labels.
    fn labels(&self) -> HashMap<String, String> {
        let dir = self.dev_root.join("disk/by-label");
        let Ok(entries) = std::fs::read_dir(&dir) else { return HashMap::new() };
        entries
            .flatten()
            .filter_map(|e| {
                let target = std::fs::read_link(e.path()).ok()?;
                let device = self.host_dev_path(&dir.join(target))?;
                Some((device, unescape_udev(&e.file_name().to_string_lossy())))
            })
            .collect()
    }

    /// `path` (under `dev_root`, possibly with `..`) as the host's `/dev/...` path.
    fn host_dev_path(&self, path: &Path) -> Option<String> {
        let rel = normalize(path).strip_prefix(normalize(&self.dev_root)).ok()?.to_owned();
        Some(Path::new("/dev").join(rel).to_string_lossy().into_owned())
    }

    /// A mount's device, following one symlink (`/dev/mapper/x` to `/dev/dm-0`) so it can
    /// match a label's target.
    fn resolve_device(&self, device: &str) -> Option<String> {
        let rel = device.strip_prefix("/dev/")?;
        let link = self.dev_root.join(rel);
        let target = std::fs::read_link(&link).ok()?;
        self.host_dev_path(&link.parent()?.join(target))
    }
}

/// Resolves `.` and `..` without touching the filesystem.
fn normalize(path: &Path) -> PathBuf {
    let mut out = PathBuf::new();
    for c in path.components() {
        match c {
            Component::ParentDir => {
                out.pop();
            }
            Component::CurDir => {}
            other => out.push(other),
        }
    }
    out
}

/// udev writes unsafe characters of a label as `\xHH`.
fn unescape_udev(name: &str) -> String {
    let mut out = String::with_capacity(name.len());
    let mut rest = name;
    while let Some(pos) = rest.find("\\x") {
        let (head, tail) = rest.split_at(pos);
        out.push_str(head);
        match tail.get(2..4).and_then(|h| u8::from_str_radix(h, 16).ok()) {
            Some(b) => {
                out.push(char::from(b));
                rest = tail.get(4..).unwrap_or("");
            }
            None => {
                out.push_str("\\x");
                rest = tail.get(2..).unwrap_or("");
            }
        }
    }
    out.push_str(rest);
    out
}

/// Diamond's name for an unlabelled mount point: `/` and `.` to `_`, backslashes dropped,
/// `/` itself is `root`.
fn mount_point_name(mount_point: &str) -> String {
    let name: String = mount_point
        .chars()
        .filter(|&c| c != '\\')
        .map(|c| if c == '/' || c == '.' { '_' } else { c })
        .collect();
    if name == "_" { "root".to_owned() } else { name }
}

fn percent(part: u64, whole: u64) -> f64 {
    if whole == 0 { 0.0 } else { part as f64 * 100.0 / whole as f64 }
}

impl Collector for DiskSpace {
    fn default_path(&self) -> &str {
        "diskspace"
    }

    fn collect(&mut self, _ctx: &RunContext, out: &mut Vec<Sample>) -> Result<()> {
        let labels = self.labels();
        // The text borrows a local buffer so `self`'s helpers stay usable while it is parsed.
        let mut buf = std::mem::take(&mut self.buf);
        let text = match self.mounts.read(&mut buf) {
            Ok(text) => text,
            Err(e) => {
                self.buf = buf;
                return Err(e);
            }
        };
        {
            let mut seen = HashSet::new();
            for line in text.lines() {
                let Some(m) = parse::mount_line(line) else {
                    self.bad.note(self.mounts.path(), format_args!("bad mount line {line:?}"));
                    continue;
                };
                let mp: &str = &m.mount_point;
                if !self.filesystems.iter().any(|f| f == m.fs_type)
                    || self.exclude.as_ref().is_some_and(|r| r.is_match(mp))
                    || mp.starts_with("/dev")
                    || mp.starts_with("/proc")
                    || mp.starts_with("/sys")
                    || !m.device.contains('/')
                    || !mp.starts_with('/')
                {
                    continue;
                }
                let usage = match self.fs.stat(Path::new(mp)) {
                    Ok(u) => u,
                    Err(e) => {
                        tracing::debug!(mount_point = mp, error = %e, "skipping a mount point statvfs cannot read");
                        continue;
                    }
                };
                if !seen.insert(usage.dev) {
                    continue;
                }
                let label = labels.get(&*m.device).cloned().or_else(|| {
                    self.resolve_device(&m.device).and_then(|d| labels.get(&d).cloned())
                });
                let mut node = String::new();
                push_node(&mut node, &label.unwrap_or_else(|| mount_point_name(mp)));
                let bytes = |blocks: u64| blocks as f64 * usage.fragment_size as f64;
                for u in &self.units {
                    let un = u.name();
                    let used = usage.blocks.saturating_sub(usage.blocks_free);
                    out.push(Sample::new(
                        format!("{node}.{un}_percentfree"),
                        percent(usage.blocks_free, usage.blocks),
                    ));
                    out.push(Sample::new(format!("{node}.{un}_used"), u.from_bytes(bytes(used))));
                    out.push(Sample::new(
                        format!("{node}.{un}_free"),
                        u.from_bytes(bytes(usage.blocks_free)),
                    ));
                    out.push(Sample::new(
                        format!("{node}.{un}_avail"),
                        u.from_bytes(bytes(usage.blocks_avail)),
                    ));
                }
                out.push(Sample::new(
                    format!("{node}.inodes_percentfree"),
                    percent(usage.files_free, usage.files),
                ));
                out.push(Sample::new(
                    format!("{node}.inodes_used"),
                    usage.files.saturating_sub(usage.files_free) as f64,
                ));
                out.push(Sample::new(format!("{node}.inodes_free"), usage.files_free as f64));
                out.push(Sample::new(format!("{node}.inodes_avail"), usage.files_avail as f64));
            }
        }
        self.buf = buf;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_follow_diamond() {
        assert_eq!(mount_point_name("/"), "root");
        assert_eq!(mount_point_name("/var/log.old"), "_var_log_old");
        assert_eq!(mount_point_name("/tmp"), "_tmp");
        assert_eq!(unescape_udev("my\\x20disk"), "my disk");
        assert_eq!(unescape_udev("odd\\xZZ"), "odd\\xZZ");
        assert_eq!(normalize(Path::new("/d/disk/by-label/../../vdb1")), Path::new("/d/vdb1"));
    }

    #[test]
    fn statvfs_of_the_root_works() {
        let u = StatvfsFsStat.stat(Path::new("/")).unwrap();
        assert!(u.fragment_size > 0 && u.blocks >= u.blocks_free);
    }
}
