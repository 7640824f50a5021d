//! Loading the indexes from a Whisper data directory.
//!
//! The names are those graphite-web's finder gives: a file `a/b/c.wsp` is the metric `a.b.c`
//! (the file name is cut at its first `.`, so `c.old.wsp` is `a.b.c` too), names starting
//! with `.` are skipped, and so are directories whose name has a `.` (no metric name makes
//! one, and graphite-web could not find what is below them either) and names with a `;`
//! outside `_tagged/` (tagged names are only looked for there). Symbolic links are
//! followed, each linked directory once. `_tagged/` at the top holds tagged series: a file
//! named after its series (`_DOT_` for `.`, carbon's `TAG_HASH_FILENAMES = False`) is
//! indexed under that name, one named by a hash is only counted, its name being in the
//! [`TagRegistry`](super::TagRegistry).
//!
//! The walk runs on a few threads that share a queue of directories; a directory's files
//! are inserted under one lock, with the directory's trie node resolved once.

use std::collections::HashSet;
use std::fs;
use std::io::ErrorKind;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::sync::{Condvar, Mutex, PoisonError};
use std::time::{Duration, Instant};

use super::registry::RegistryLoad;
use super::{IndexError, MetricIndex, TagIndex};

/// The most walker threads (the walk is bound by the kernel's directory reads).
const MAX_THREADS: usize = 8;

/// What [`MetricIndex::build_from_dir`] found.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct BuildStats {
    /// Metrics indexed (plain, and tagged ones named by their file).
    pub metrics: usize,
    /// `.wsp` files seen (two files can make one metric: `c.wsp` and `c.old.wsp`).
    pub files: usize,
    /// Directories read.
    pub directories: usize,
    /// Tagged series files named after their series (indexed).
    pub tagged_named: usize,
    /// Tagged series files named by the hash of their name (their names come from the
    /// registry).
    pub tagged_hashed: usize,
    /// Entries skipped: hidden names, names that are not UTF-8, directories with a `.` in
    /// their name, names with a `;` outside `_tagged/`, broken links, links to a directory already walked, `_tagged` files that
    /// are not a normalised tagged name.
    pub skipped: usize,
    /// Directories or entries that could not be read (logged at `warn`).
    pub errors: usize,
    /// Walker threads used.
    pub threads: usize,
    /// Wall time of the walk.
    pub elapsed: Duration,
}

/// What [`open_data_dir`] found.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct OpenReport {
    /// The directory walk.
    pub build: BuildStats,
    /// The tag registry.
    pub registry: RegistryLoad,
}

/// Loads both indexes of a data directory: the [`MetricIndex`] from its files, the
/// [`TagIndex`] from its tag registry (persisting later insertions there), and each tagged
/// name found one way into the other index.
///
/// Plain names are not put in the tag index (carbon's `ENABLE_TAGS` registers every metric
/// with graphite-web's tag database; a caller that wants `seriesByTag('name=...')` to find
/// plain series inserts them too).
///
/// # Errors
///
/// As [`MetricIndex::build_from_dir`] and [`TagIndex::open`].
pub fn open_data_dir(data_dir: &Path) -> Result<(MetricIndex, TagIndex, OpenReport), IndexError> {
    let (tags, registry) = TagIndex::open(data_dir)?;
    let (metrics, build, named) = scan(data_dir)?;
    for name in &named {
        tags.insert(name)?;
    }
    for name in tags.to_names() {
        metrics.insert(&name);
    }
    metrics.shrink_to_fit();
    Ok((metrics, tags, OpenReport { build, registry }))
}

impl MetricIndex {
    /// Builds the index of every metric under a Whisper data directory, walking it on
    /// parallel threads (see the module docs of `scan.rs` for the naming rules). A missing
    /// directory is an empty index.
    ///
    /// Tagged series stored by hash are not indexed here (their names are in the tag
    /// registry: [`open_data_dir`] adds them).
    ///
    /// # Errors
    ///
    /// [`IndexError::Io`] if `data_dir` exists but cannot be read as a directory. Unreadable
    /// entries below it are counted in [`BuildStats::errors`] and logged.
    pub fn build_from_dir(data_dir: &Path) -> Result<(MetricIndex, BuildStats), IndexError> {
        let (index, stats, named) = scan(data_dir)?;
        for name in &named {
            index.insert(name);
        }
        index.shrink_to_fit();
        Ok((index, stats))
    }
}

/// A directory to read.
struct Job {
    dir: PathBuf,
    /// The metric name of the directory followed by `.` (empty at the top).
    prefix: String,
    /// Components in `prefix`; under `_tagged`, levels below the top (`_tagged` is 1).
    depth: usize,
    /// Under `_tagged/`.
    tagged: bool,
}

/// The walkers' shared state.
struct Walk<'a> {
    index: &'a MetricIndex,
    /// Directories waiting, and how many walkers are reading one.
    queue: Mutex<(Vec<Job>, usize)>,
    /// Signalled when a job is queued or the last busy walker goes idle.
    changed: Condvar,
    /// `(device, inode)` of every directory reached through a link.
    linked_dirs: Mutex<HashSet<(u64, u64)>>,
}

/// One walker's counts and the tagged names it found.
#[derive(Default)]
struct Found {
    stats: BuildStats,
    named: Vec<String>,
}

/// Walks `data_dir`: the index of its plain metrics, the counts, and the tagged names found
/// as file names (not yet inserted).
fn scan(data_dir: &Path) -> Result<(MetricIndex, BuildStats, Vec<String>), IndexError> {
    let start = Instant::now();
    let index = MetricIndex::new();
    match fs::metadata(data_dir) {
        Ok(m) if m.is_dir() => {}
        Ok(_) => {
            return Err(IndexError::io(
                data_dir,
                std::io::Error::new(ErrorKind::NotADirectory, "not a directory"),
            ));
        }
        Err(e) if e.kind() == ErrorKind::NotFound => {
            return Ok((index, BuildStats::default(), Vec::new()));
        }
        Err(e) => return Err(IndexError::io(data_dir, e)),
    }
    // Fail early (and clearly) if the top cannot be listed.
    fs::read_dir(data_dir).map_err(|e| IndexError::io(data_dir, e))?;
    let threads = std::thread::available_parallelism().map_or(2, |n| n.get()).clamp(1, MAX_THREADS);
    let walk = Walk {
        index: &index,
        queue: Mutex::new((
            vec![Job {
                dir: data_dir.to_path_buf(),
                prefix: String::new(),
                depth: 0,
                tagged: false,
            }],
            0,
        )),
        changed: Condvar::new(),
        linked_dirs: Mutex::new(HashSet::new()),
    };
    let found: Vec<Found> = std::thread::scope(|s| {
        let handles: Vec<_> = (0..threads).map(|_| s.spawn(|| walk.run())).collect();
        handles.into_iter().filter_map(|h| h.join().ok()).collect()
    });
    let mut stats = BuildStats { threads, ..BuildStats::default() };
    let mut named = Vec::new();
    for f in found {
        stats.metrics += f.stats.metrics;
        stats.files += f.stats.files;
        stats.directories += f.stats.directories;
        stats.tagged_named += f.stats.tagged_named;
        stats.tagged_hashed += f.stats.tagged_hashed;
        stats.skipped += f.stats.skipped;
        stats.errors += f.stats.errors;
        named.extend(f.named);
    }
    named.sort_unstable();
    named.dedup();
    stats.metrics += named.len();
    stats.elapsed = start.elapsed();
    Ok((index, stats, named))
}

impl Walk<'_> {
    /// A walker: takes directories until none is left and no walker can add more.
    fn run(&self) -> Found {
        let mut found = Found::default();
        loop {
            let job = {
                let mut q = self.queue.lock().unwrap_or_else(PoisonError::into_inner);
                loop {
                    if let Some(job) = q.0.pop() {
                        q.1 += 1;
                        break Some(job);
                    }
                    if q.1 == 0 {
                        break None;
                    }
                    q = self.changed.wait(q).unwrap_or_else(PoisonError::into_inner);
                }
            };
            let Some(job) = job else {
                self.changed.notify_all();
                return found;
            };
            let more = self.read(&job, &mut found);
            let mut q = self.queue.lock().unwrap_or_else(PoisonError::into_inner);
            let queued = !more.is_empty();
            q.0.extend(more);
            q.1 -= 1;
            let idle = q.1 == 0;
            drop(q);
            if queued || idle {
                self.changed.notify_all();
            }
        }
    }

    /// Reads one directory: indexes its files, returns its subdirectories.
    fn read(&self, job: &Job, found: &mut Found) -> Vec<Job> {
        let entries = match fs::read_dir(&job.dir) {
            Ok(e) => e,
            Err(e) => {
                tracing::warn!(dir = %job.dir.display(), error = %e, "index scan: cannot read directory");
                found.stats.errors += 1;
                return Vec::new();
            }
        };
        found.stats.directories += 1;
        let mut subdirs = Vec::new();
        let mut stems: Vec<String> = Vec::new();
        for entry in entries {
            let entry = match entry {
                Ok(e) => e,
                Err(e) => {
                    tracing::warn!(dir = %job.dir.display(), error = %e, "index scan: cannot read entry");
                    found.stats.errors += 1;
                    continue;
                }
            };
            let file_name = entry.file_name();
            let Some(name) = file_name.to_str() else {
                found.stats.skipped += 1;
                continue;
            };
            if name.starts_with('.') {
                found.stats.skipped += 1;
                continue;
            }
            let Ok(kind) = entry.file_type() else {
                found.stats.errors += 1;
                continue;
            };
            let (is_dir, is_file) = if kind.is_symlink() {
                match fs::metadata(entry.path()) {
                    Ok(m) if m.is_dir() => {
                        let mut seen =
                            self.linked_dirs.lock().unwrap_or_else(PoisonError::into_inner);
                        if !seen.insert((m.dev(), m.ino())) {
                            found.stats.skipped += 1;
                            continue;
                        }
                        (true, false)
                    }
                    Ok(m) => (false, m.is_file()),
                    Err(_) => {
                        found.stats.skipped += 1;
                        continue;
                    }
                }
            } else {
                (kind.is_dir(), kind.is_file())
            };
            if job.tagged {
                if is_dir && job.depth < 3 {
                    subdirs.push(Job {
                        dir: entry.path(),
                        prefix: String::new(),
                        depth: job.depth + 1,
                        tagged: true,
                    });
                } else if is_file
                    && job.depth == 3
                    && let Some(stem) = name.strip_suffix(".wsp")
                {
                    found.stats.files += 1;
                    tagged_file(stem, found);
                }
                continue;
            }
            if is_dir {
                if job.depth == 0 && name == "_tagged" {
                    subdirs.push(Job {
                        dir: entry.path(),
                        prefix: String::new(),
                        depth: 1,
                        tagged: true,
                    });
                } else if name.contains(['.', ';']) {
                    found.stats.skipped += 1;
                } else {
                    subdirs.push(Job {
                        dir: entry.path(),
                        prefix: format!("{}{name}.", job.prefix),
                        depth: job.depth + 1,
                        tagged: false,
                    });
                }
            } else if is_file && name.ends_with(".wsp") {
                found.stats.files += 1;
                // Not hidden, so the part before the first dot is not empty.
                let stem = name.split('.').next().unwrap_or(name);
                if stem.contains(';') {
                    // A tagged name outside `_tagged/`: carbon never writes one there, and
                    // graphite-web would look for it under `_tagged/` only.
                    found.stats.skipped += 1;
                } else {
                    stems.push(stem.to_string());
                }
            }
        }
        found.stats.metrics += self.insert(job, &stems);
        subdirs
    }

    /// Indexes a directory's metrics; returns how many were new.
    fn insert(&self, job: &Job, stems: &[String]) -> usize {
        let Some(first) = stems.first() else { return 0 };
        let mut name = String::with_capacity(job.prefix.len() + 32);
        if job.depth < 2 {
            // Top-level files and those one level down belong to different shards.
            return stems
                .iter()
                .filter(|stem| {
                    name.clear();
                    name.push_str(&job.prefix);
                    name.push_str(stem);
                    self.index.insert(&name)
                })
                .count();
        }
        // Deeper down every file shares the shard of the first two components: take its
        // lock once and resolve the directory's node once.
        let key = format!("{}{first}", job.prefix);
        let dir = job.prefix.strip_suffix('.').unwrap_or(&job.prefix);
        let added = self
            .index
            .with_shard_of(&key, |trie| {
                let Some(parent) = trie.branch(dir.split('.')) else { return 0 };
                stems
                    .iter()
                    .filter(|stem| {
                        name.clear();
                        name.push_str(&job.prefix);
                        name.push_str(stem);
                        let hash = trie.hash(&name);
                        trie.insert_under(parent, stem, &name, hash)
                    })
                    .count()
            })
            .unwrap_or(0);
        self.index.add_len(added);
        added
    }
}

/// A file `_tagged/xxx/yyy/<stem>.wsp`: counted if `stem` is a hash, kept if it is a
/// normalised tagged name spelled with `_DOT_`.
fn tagged_file(stem: &str, found: &mut Found) {
    if stem.len() == 64 && stem.bytes().all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b)) {
        found.stats.tagged_hashed += 1;
        return;
    }
    let name = carbon_proto::tags::name_from_disk_path(&format!("_tagged/x/y/{stem}"));
    match carbon_proto::tags::normalize(&name) {
        Ok(n) if n == name && name.contains(';') => {
            found.stats.tagged_named += 1;
            found.named.push(name);
        }
        _ => found.stats.skipped += 1,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn touch(root: &Path, rel: &str) {
        let p = root.join(rel);
        fs::create_dir_all(p.parent().unwrap()).unwrap();
        fs::write(p, b"").unwrap();
    }

    #[test]
    fn builds_names_as_graphite_web_does() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path();
        for f in [
            "top.wsp",
            "a/b.wsp",
            "a/b/c.wsp",
            "a/b/c/d/e.wsp",
            "a/b/c/d/f.old.wsp",
            "a/b/c/d/g.txt",
            "a/.hidden/x.wsp",
            "a/.h.wsp",
            "a/dotted.dir/x.wsp",
            "a/misfiled;t=1.wsp",
            "_tagged/e77/640/test_DOT_tagged;a=2;z=1.wsp",
            "_tagged/e77/640/e7764083aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaacd4c.wsp",
            "_tagged/.registry",
        ] {
            touch(root, f);
        }
        std::os::unix::fs::symlink(root.join("a/b/c"), root.join("link")).unwrap();
        std::os::unix::fs::symlink(root.join("a"), root.join("a/b/loop")).unwrap();
        let (idx, stats) = MetricIndex::build_from_dir(root).unwrap();
        let names = idx.to_names();
        assert_eq!(
            names,
            [
                "a.b",
                "a.b.c",
                "a.b.c.d.e",
                "a.b.c.d.f",
                "a.b.loop.b",
                "a.b.loop.b.c",
                "a.b.loop.b.c.d.e",
                "a.b.loop.b.c.d.f",
                "link.d.e",
                "link.d.f",
                "test.tagged;a=2;z=1",
                "top"
            ]
        );
        assert_eq!(stats.metrics, names.len());
        assert_eq!(stats.tagged_named, 1);
        assert_eq!(stats.tagged_hashed, 1);
        assert_eq!(stats.errors, 0);
        assert!(stats.skipped >= 4, "{stats:?}");
    }

    #[test]
    fn missing_directory_is_empty() {
        let dir = tempfile::tempdir().unwrap();
        let (idx, stats) = MetricIndex::build_from_dir(&dir.path().join("nope")).unwrap();
        assert!(idx.is_empty());
        assert_eq!(stats.metrics, 0);
        let file = dir.path().join("f");
        fs::write(&file, b"").unwrap();
        assert!(MetricIndex::build_from_dir(&file).is_err());
    }
}
