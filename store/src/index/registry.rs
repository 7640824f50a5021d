//! [`TagRegistry`]: the names of tagged series, persisted beside their files.
//!
//! carbon stores a tagged series under the SHA-256 of its name by default
//! (`TAG_HASH_FILENAMES = True`: `_tagged/e77/640/e7764083...cd4c.wsp`), so the directory
//! alone cannot say which series exist; graphite-web keeps the names in its SQL tag database.
//! The registry is this store's record of them: `<data_dir>/_tagged/.registry`, a hidden file
//! (graphite-web's finder skips names starting with `.`, and so does the directory scan).
//!
//! # Format
//!
//! A header line `# graphite-rs tag registry v1`, then one record a line:
//! `<crc32 of the rest, 8 hex digits> <op><name>\n`, where `op` is `+` (added) or `-`
//! (removed) and `name` is the normalised series name. The file is only appended to, by one
//! process at a time (the store owns its data directory).
//!
//! # Crash safety
//!
//! - A record is one `write`; a crash can leave only the last line torn (no newline). Loading
//!   ignores it, reports its length ([`RegistryLoad::torn_tail_bytes`]) and cuts it off, so
//!   the next record starts on a fresh line.
//! - A line whose checksum does not match (say, zeros after a power loss) is skipped and
//!   counted ([`RegistryLoad::corrupt_lines`]); the file is then rewritten without it.
//! - A failed append truncates the file back to its last good record.
//! - Compaction writes `.registry.tmp`, syncs it, renames it over the registry and syncs the
//!   directory: a crash leaves either the old file or the new one.
//! - Appends reach the operating system at once but are synced only by
//!   [`TagRegistry::sync`]. A series lost to a machine crash is registered again when its
//!   next point arrives (points are replayed from the write-ahead log).

use std::collections::HashSet;
use std::fs::{self, File, OpenOptions};
use std::io::{ErrorKind, Write};
use std::path::{Path, PathBuf};

use super::IndexError;

/// The first line of a registry this build writes and reads.
const HEADER: &str = "# graphite-rs tag registry v1";

/// Below this many records the registry is never compacted.
const MIN_COMPACT_RECORDS: usize = 1024;

/// What loading a registry found.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct RegistryLoad {
    /// Live series names loaded.
    pub series: usize,
    /// Records read (additions and removals, corrupt ones included).
    pub records: usize,
    /// Records skipped because their checksum or syntax was wrong.
    pub corrupt_lines: usize,
    /// Bytes of a torn last line (a crash during an append), ignored and cut off.
    pub torn_tail_bytes: u64,
    /// Names skipped because they are no longer valid tagged names.
    pub invalid_names: usize,
    /// Whether the file was rewritten (it had corrupt lines or had grown past twice its
    /// live size).
    pub compacted: bool,
}

/// An append-only file of tagged series names (see the module docs for its format).
#[derive(Debug)]
pub struct TagRegistry {
    /// `<data_dir>/_tagged/.registry`.
    path: PathBuf,
    /// The file, opened for appending; `None` until the first record (so a data directory
    /// without tagged series gets no `_tagged` directory).
    file: Option<File>,
    /// The file's length after its last complete record.
    len: u64,
    /// Records in the file.
    records: usize,
    /// Names the records leave live.
    live: usize,
}

/// The checksum of a record's `<op><name>`.
fn crc(op: u8, name: &str) -> u32 {
    let mut h = crc32fast::Hasher::new();
    h.update(&[op]);
    h.update(name.as_bytes());
    h.finalize()
}

/// Parses a record line (without its newline): `(op, name)`, or `None` if corrupt.
fn parse_record(line: &[u8]) -> Option<(u8, &str)> {
    let line = std::str::from_utf8(line).ok()?;
    let (sum, rest) = line.split_once(' ')?;
    if sum.len() != 8 {
        return None;
    }
    let sum = u32::from_str_radix(sum, 16).ok()?;
    let op = *rest.as_bytes().first()?;
    let name = rest.get(1..)?;
    ((op == b'+' || op == b'-') && !name.is_empty() && crc(op, name) == sum).then_some((op, name))
}

/// A record line.
fn record(op: u8, name: &str) -> Vec<u8> {
    let mut line = format!("{:08x} ", crc(op, name)).into_bytes();
    line.push(op);
    line.extend_from_slice(name.as_bytes());
    line.push(b'\n');
    line
}

impl TagRegistry {
    /// The registry file of a data directory.
    pub fn path_in(data_dir: &Path) -> PathBuf {
        data_dir.join("_tagged").join(".registry")
    }

    /// Loads the registry of `data_dir`: the registry, the live names, and what was found.
    /// A missing file is an empty registry (created at the first append).
    ///
    /// # Errors
    ///
    /// [`IndexError::Io`] if the file cannot be read or repaired,
    /// [`IndexError::RegistryVersion`] if its header is not this build's.
    pub fn open(data_dir: &Path) -> Result<(TagRegistry, Vec<String>, RegistryLoad), IndexError> {
        let path = Self::path_in(data_dir);
        let tmp = path.with_extension("tmp");
        match fs::remove_file(&tmp) {
            Err(e) if e.kind() != ErrorKind::NotFound => return Err(IndexError::io(tmp, e)),
            _ => {}
        }
        let data = match fs::read(&path) {
            Ok(d) => d,
            Err(e) if e.kind() == ErrorKind::NotFound => Vec::new(),
            Err(e) => return Err(IndexError::io(path, e)),
        };
        let mut load = RegistryLoad::default();
        let mut live: HashSet<String> = HashSet::new();
        // Everything up to the last newline is complete lines; the rest is a torn append.
        let complete = data.iter().rposition(|&b| b == b'\n').map_or(0, |i| i + 1);
        load.torn_tail_bytes = (data.len() - complete) as u64;
        let mut lines = data.get(..complete).unwrap_or_default().split(|&b| b == b'\n');
        // `complete` ends with a newline, so the split's last piece is empty.
        let mut header_ok = false;
        if complete > 0 {
            let first = lines.next().unwrap_or_default();
            if first != HEADER.as_bytes() {
                let found: String = String::from_utf8_lossy(first).chars().take(80).collect();
                return Err(IndexError::RegistryVersion { path, found, supported: HEADER });
            }
            header_ok = true;
        }
        for line in lines.filter(|l| !l.is_empty()) {
            load.records += 1;
            match parse_record(line) {
                Some((b'+', name)) => {
                    live.insert(name.to_string());
                }
                Some((_, name)) => {
                    live.remove(name);
                }
                None => load.corrupt_lines += 1,
            }
        }
        let mut registry = TagRegistry {
            path: path.clone(),
            file: None,
            len: complete as u64,
            records: load.records,
            live: live.len(),
        };
        if header_ok {
            let file = OpenOptions::new()
                .append(true)
                .open(&path)
                .map_err(|e| IndexError::io(&path, e))?;
            if load.torn_tail_bytes > 0 {
                tracing::warn!(
                    path = %path.display(),
                    bytes = load.torn_tail_bytes,
                    "tag registry: ignoring a torn last line"
                );
                file.set_len(complete as u64).map_err(|e| IndexError::io(&path, e))?;
                file.sync_all().map_err(|e| IndexError::io(&path, e))?;
            }
            registry.file = Some(file);
        } else if load.torn_tail_bytes > 0 {
            // Not even the header made it: start again.
            fs::remove_file(&path).map_err(|e| IndexError::io(&path, e))?;
        }
        if load.corrupt_lines > 0 {
            tracing::warn!(
                path = %path.display(),
                lines = load.corrupt_lines,
                "tag registry: skipped corrupt lines"
            );
        }
        let names: Vec<String> = live.into_iter().collect();
        load.series = names.len();
        if load.corrupt_lines > 0 || registry.should_compact() {
            registry.compact(names.iter().map(String::as_str))?;
            load.compacted = true;
        }
        Ok((registry, names, load))
    }

    /// The registry file.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Records in the file (additions and removals).
    pub fn records(&self) -> usize {
        self.records
    }

    /// Records that a series was added.
    ///
    /// # Errors
    ///
    /// [`IndexError::UnregistrableName`] for a name with a line break, [`IndexError::Io`]
    /// if the write fails (the file is then cut back to its last complete record).
    pub fn append(&mut self, name: &str) -> Result<(), IndexError> {
        self.write_record(b'+', name)?;
        self.live += 1;
        Ok(())
    }

    /// Records that a series was removed.
    ///
    /// # Errors
    ///
    /// As [`TagRegistry::append`].
    pub fn append_removal(&mut self, name: &str) -> Result<(), IndexError> {
        self.write_record(b'-', name)?;
        self.live = self.live.saturating_sub(1);
        Ok(())
    }

    fn write_record(&mut self, op: u8, name: &str) -> Result<(), IndexError> {
        if name.is_empty() || name.contains(['\n', '\r']) {
            return Err(IndexError::UnregistrableName { name: name.to_string() });
        }
        let line = record(op, name);
        let file = self.file()?;
        if let Err(e) = file.write_all(&line) {
            let len = self.len;
            if let Some(f) = &self.file {
                // Best effort: without it the next record would share the torn line.
                let _ = f.set_len(len);
            }
            return Err(IndexError::io(&self.path, e));
        }
        self.len += line.len() as u64;
        self.records += 1;
        Ok(())
    }

    /// The open file, created (with its directory and header) on first use.
    fn file(&mut self) -> Result<&mut File, IndexError> {
        if self.file.is_none() {
            if let Some(dir) = self.path.parent() {
                fs::create_dir_all(dir).map_err(|e| IndexError::io(dir, e))?;
            }
            let mut file = OpenOptions::new()
                .create(true)
                .append(true)
                .open(&self.path)
                .map_err(|e| IndexError::io(&self.path, e))?;
            let header = format!("{HEADER}\n");
            file.write_all(header.as_bytes()).map_err(|e| IndexError::io(&self.path, e))?;
            self.len = header.len() as u64;
            self.records = 0;
            self.file = Some(file);
        }
        // Just set above when it was missing.
        self.file.as_mut().ok_or_else(|| {
            IndexError::io(&self.path, std::io::Error::other("registry file not open"))
        })
    }

    /// Forces appended records to disk.
    ///
    /// # Errors
    ///
    /// [`IndexError::Io`] if `fdatasync` fails.
    pub fn sync(&self) -> Result<(), IndexError> {
        match &self.file {
            Some(f) => f.sync_data().map_err(|e| IndexError::io(&self.path, e)),
            None => Ok(()),
        }
    }

    /// Whether the file has grown past twice the number of live names (and past 1024
    /// records), so that [`TagRegistry::compact`] is worth it.
    pub fn should_compact(&self) -> bool {
        self.records > MIN_COMPACT_RECORDS && self.records > 2 * self.live
    }

    /// Rewrites the file with one `+` record for each of `live` (the names that are
    /// registered now), atomically.
    ///
    /// # Errors
    ///
    /// [`IndexError::Io`] if the new file cannot be written, synced or renamed (the old one
    /// is then still in place).
    pub fn compact<'a>(
        &mut self,
        live: impl IntoIterator<Item = &'a str>,
    ) -> Result<(), IndexError> {
        let tmp = self.path.with_extension("tmp");
        let dir = self.path.parent().unwrap_or(Path::new("."));
        fs::create_dir_all(dir).map_err(|e| IndexError::io(dir, e))?;
        let io = |e| IndexError::io(&tmp, e);
        let file = File::create(&tmp).map_err(io)?;
        let mut out = std::io::BufWriter::new(file);
        writeln!(out, "{HEADER}").map_err(io)?;
        let mut len = HEADER.len() as u64 + 1;
        let mut records = 0;
        for name in live {
            if name.is_empty() || name.contains(['\n', '\r']) {
                continue;
            }
            let line = record(b'+', name);
            out.write_all(&line).map_err(io)?;
            len += line.len() as u64;
            records += 1;
        }
        let file = out.into_inner().map_err(|e| io(e.into_error()))?;
        file.sync_all().map_err(io)?;
        drop(file);
        fs::rename(&tmp, &self.path).map_err(|e| IndexError::io(&self.path, e))?;
        File::open(dir).and_then(|d| d.sync_all()).map_err(|e| IndexError::io(dir, e))?;
        let file = OpenOptions::new()
            .append(true)
            .open(&self.path)
            .map_err(|e| IndexError::io(&self.path, e))?;
        self.file = Some(file);
        self.len = len;
        self.records = records;
        self.live = records;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn open(dir: &Path) -> (TagRegistry, Vec<String>, RegistryLoad) {
        let (r, mut names, load) = TagRegistry::open(dir).unwrap();
        names.sort();
        (r, names, load)
    }

    #[test]
    fn appends_and_reloads() {
        let dir = tempfile::tempdir().unwrap();
        let (mut r, names, load) = open(dir.path());
        assert!(names.is_empty());
        assert_eq!(load, RegistryLoad::default());
        assert!(!dir.path().join("_tagged").exists());
        r.append("a;x=1").unwrap();
        r.append("b;y=2").unwrap();
        r.append_removal("a;x=1").unwrap();
        r.append("c;z=3").unwrap();
        r.sync().unwrap();
        assert!(r.append("bad\nname").is_err());
        drop(r);
        let (r, names, load) = open(dir.path());
        assert_eq!(names, ["b;y=2", "c;z=3"]);
        assert_eq!(load.records, 4);
        assert_eq!(r.records(), 4);
    }

    #[test]
    fn ignores_a_torn_tail_and_corrupt_lines() {
        let dir = tempfile::tempdir().unwrap();
        let (mut r, _, _) = open(dir.path());
        r.append("a;x=1").unwrap();
        r.append("b;x=2").unwrap();
        drop(r);
        let path = TagRegistry::path_in(dir.path());
        let mut data = fs::read(&path).unwrap();
        // Flip a byte of the first record's name, and tear a third record.
        let at = data.iter().position(|&b| b == b'+').unwrap() + 1;
        data[at] = b'z';
        data.extend_from_slice(&record(b'+', "c;x=3")[..7]);
        fs::write(&path, &data).unwrap();
        let (mut r, names, load) = open(dir.path());
        assert_eq!(names, ["b;x=2"]);
        assert_eq!(load.corrupt_lines, 1);
        assert_eq!(load.torn_tail_bytes, 7);
        assert!(load.compacted);
        r.append("d;x=4").unwrap();
        drop(r);
        let (_, names, load) = open(dir.path());
        assert_eq!(names, ["b;x=2", "d;x=4"]);
        assert_eq!((load.corrupt_lines, load.torn_tail_bytes, load.compacted), (0, 0, false));
    }

    #[test]
    fn refuses_another_format() {
        let dir = tempfile::tempdir().unwrap();
        let path = TagRegistry::path_in(dir.path());
        fs::create_dir_all(path.parent().unwrap()).unwrap();
        fs::write(&path, "# graphite-rs tag registry v9\n").unwrap();
        assert!(matches!(TagRegistry::open(dir.path()), Err(IndexError::RegistryVersion { .. })));
    }

    #[test]
    fn compacts_when_twice_the_live_size() {
        let dir = tempfile::tempdir().unwrap();
        let (mut r, _, _) = open(dir.path());
        for i in 0..1000 {
            r.append(&format!("m;i={i}")).unwrap();
        }
        for i in 0..600 {
            r.append_removal(&format!("m;i={i}")).unwrap();
        }
        assert!(r.should_compact());
        drop(r);
        let (r, names, load) = open(dir.path());
        assert!(load.compacted);
        assert_eq!(names.len(), 400);
        assert_eq!(r.records(), 400);
        assert!(!r.should_compact());
    }
}
