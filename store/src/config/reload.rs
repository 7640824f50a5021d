//! Re-reading config files when they change.
//!
//! carbon re-reads the white/blacklists and the rewrite rules every 10 seconds if their mtime
//! moved on, and the two storage files every 60 seconds regardless. Here every file is re-read
//! when its modification time or size differs from when it was last read; the caller calls
//! [`Reloadable::reload_if_changed`] on its own clock, every [`LIST_RELOAD_INTERVAL`] or
//! [`SCHEMA_RELOAD_INTERVAL`] to do what carbon does.

use std::fs;
use std::io::{self, ErrorKind};
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime};

use super::error::{ConfigError, ConfigErrorKind};
use super::{PatternList, RewriteRules, StorageAggregation, StorageSchemas};

/// How often carbon checks `whitelist.conf`, `blacklist.conf` and `rewrite-rules.conf`.
pub const LIST_RELOAD_INTERVAL: Duration = Duration::from_secs(10);

/// How often carbon re-reads `storage-schemas.conf` and `storage-aggregation.conf`.
pub const SCHEMA_RELOAD_INTERVAL: Duration = Duration::from_secs(60);

/// A config file type that [`Reloadable`] can read.
pub trait ConfigFile: Sized {
    /// What a file that cannot be used is.
    type Error;

    /// Reads the file at `path`, deciding what a missing file means (each type's `open`).
    ///
    /// # Errors
    ///
    /// The type's own errors.
    fn open_file(path: &Path) -> Result<Self, Self::Error>;

    /// The error for a file that cannot even be looked at (`stat` failed).
    fn io_error(path: &Path, error: io::Error) -> Self::Error;
}

/// The config files whose errors are [`ConfigError`].
macro_rules! config_file {
    ($($t:ty),*) => {$(
        impl ConfigFile for $t {
            type Error = ConfigError;

            fn open_file(path: &Path) -> Result<Self, ConfigError> {
                <$t>::open(path)
            }

            fn io_error(path: &Path, error: io::Error) -> ConfigError {
                ConfigError::new(path, None, ConfigErrorKind::Io(error))
            }
        }
    )*};
}

config_file!(StorageSchemas, StorageAggregation, PatternList, RewriteRules);

/// What identifies a version of a file: its modification time and size, `None` when the file
/// does not exist.
type Stamp = Option<(Option<SystemTime>, u64)>;

/// A value read from a config file, re-read when the file changes; a broken new version keeps
/// the old value in use.
///
/// ```
/// use store::config::{PatternList, Reloadable};
///
/// # fn main() -> Result<(), Box<dyn std::error::Error>> {
/// let dir = tempfile::tempdir()?;
/// let path = dir.path().join("blacklist.conf");
/// let mut list = Reloadable::<PatternList>::open(&path)?;
/// assert!(list.get().is_empty());
///
/// std::fs::write(&path, "^noisy\\.\n")?;
/// assert!(list.reload_if_changed()?);
/// assert!(list.get().is_match("noisy.metric"));
/// assert!(!list.reload_if_changed()?);
/// # Ok(())
/// # }
/// ```
#[derive(Debug)]
pub struct Reloadable<T> {
    path: PathBuf,
    value: T,
    /// The version `value` was read from.
    loaded: Stamp,
    /// The version last tried, loaded or not: a broken file is not read again until it
    /// changes.
    tried: Stamp,
}

impl<T: ConfigFile> Reloadable<T> {
    /// Reads the file.
    ///
    /// # Errors
    ///
    /// As the type's `open`, or [`ConfigFile::io_error`] if the file cannot be looked at.
    pub fn open(path: impl AsRef<Path>) -> Result<Reloadable<T>, T::Error> {
        let path = path.as_ref().to_path_buf();
        let stamp = stamp(&path).map_err(|e| T::io_error(&path, e))?;
        let value = T::open_file(&path)?;
        Ok(Reloadable { path, value, loaded: stamp, tried: stamp })
    }

    /// Re-reads the file if it changed (appeared, disappeared, or has another modification time
    /// or size) since it was last tried. `Ok(true)` if the value was replaced.
    ///
    /// # Errors
    ///
    /// The new version's error; the old value stays in use, and the same broken version is not
    /// reported again.
    pub fn reload_if_changed(&mut self) -> Result<bool, T::Error> {
        let now = stamp(&self.path).map_err(|e| T::io_error(&self.path, e))?;
        if now == self.tried {
            return Ok(false);
        }
        self.tried = now;
        self.value = T::open_file(&self.path)?;
        self.loaded = now;
        Ok(true)
    }

    /// Whether the value in use is older than the file (the last version tried was broken).
    pub fn is_stale(&self) -> bool {
        self.loaded != self.tried
    }
}

impl<T> Reloadable<T> {
    /// The value in use.
    pub fn get(&self) -> &T {
        &self.value
    }

    /// The file.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The value in use, owned.
    pub fn into_inner(self) -> T {
        self.value
    }
}

fn stamp(path: &Path) -> io::Result<Stamp> {
    match fs::metadata(path) {
        Ok(meta) => Ok(Some((meta.modified().ok(), meta.len()))),
        Err(e) if e.kind() == ErrorKind::NotFound => Ok(None),
        Err(e) => Err(e),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::fs::File;

    /// Moves a file's mtime, so tests do not depend on the clock's resolution.
    fn touch(path: &Path, seconds: u64) {
        let file = File::options().append(true).open(path).unwrap();
        file.set_modified(SystemTime::UNIX_EPOCH + Duration::from_secs(seconds)).unwrap();
    }

    #[test]
    fn reloads_on_change_and_keeps_the_old_value_when_broken() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("storage-schemas.conf");
        fs::write(&path, "[a]\npattern = ^a\nretentions = 1m:1d\n").unwrap();
        touch(&path, 1_000);
        let mut s = Reloadable::<StorageSchemas>::open(&path).unwrap();
        assert_eq!(s.get().matching("a.b").name(), "a");
        assert!(!s.reload_if_changed().unwrap());

        fs::write(&path, "[b]\npattern = ^a\nretentions = 1m:1x\n").unwrap();
        touch(&path, 2_000);
        let e = s.reload_if_changed().unwrap_err();
        assert_eq!(e.line(), Some(3));
        assert_eq!(s.get().matching("a.b").name(), "a", "the old schemas stay");
        assert!(s.is_stale());
        assert!(!s.reload_if_changed().unwrap(), "the same broken file is not re-read");

        fs::write(&path, "[c]\npattern = ^a\nretentions = 1m:1d\n").unwrap();
        touch(&path, 3_000);
        assert!(s.reload_if_changed().unwrap());
        assert_eq!(s.get().matching("a.b").name(), "c");
        assert!(!s.is_stale());

        // Same mtime, other size: still a change.
        fs::write(&path, "[dd]\npattern = ^a\nretentions = 1m:1d\n").unwrap();
        touch(&path, 3_000);
        assert!(s.reload_if_changed().unwrap());
        assert_eq!(s.get().matching("a.b").name(), "dd");
    }

    #[test]
    fn a_removed_file_reads_as_missing() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("whitelist.conf");
        fs::write(&path, "^a\n").unwrap();
        let mut l = Reloadable::<PatternList>::open(&path).unwrap();
        assert_eq!(l.get().len(), 1);
        fs::remove_file(&path).unwrap();
        assert!(l.reload_if_changed().unwrap());
        assert!(l.get().is_empty());
        assert!(!l.reload_if_changed().unwrap());
        assert_eq!(l.path(), path);
        assert!(l.into_inner().is_empty());
    }

    #[test]
    fn every_file_type_reloads() {
        let dir = tempfile::tempdir().unwrap();
        let agg = dir.path().join("storage-aggregation.conf");
        let mut a = Reloadable::<StorageAggregation>::open(&agg).unwrap();
        assert_eq!(a.get().rules().len(), 1);
        fs::write(&agg, "[x]\npattern = x\naggregationMethod = sum\n").unwrap();
        assert!(a.reload_if_changed().unwrap());
        assert_eq!(a.get().rules().len(), 2);

        let rw = dir.path().join("rewrite-rules.conf");
        let mut r = Reloadable::<RewriteRules>::open(&rw).unwrap();
        fs::write(&rw, "[pre]\na = b\n").unwrap();
        assert!(r.reload_if_changed().unwrap());
        assert_eq!(r.get().apply_pre("a"), "b");
    }
}
