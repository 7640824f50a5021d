//! Re-reading `aggregation-rules.conf` when it changes: carbon-aggregator's
//! `RuleManager.read_rules`, which a `LoopingCall` runs every 10 seconds.
//!
//! carbon looks at the file's modification time and, when it moved on, reads the file, clears
//! every aggregation buffer and uses the new rules; a file that is gone means no rules (the
//! buffers are left to drain). Here the file is re-read when its modification time or size
//! changed ([`Reloadable`]), and:
//!
//! - a file that cannot be used (a bad line, unreadable) is reported and the rules in use stay
//!   (carbon's `LoopingCall` dies on the exception and never looks at the file again);
//! - a file that says the same rules as before (touched, or rewritten unchanged) keeps the
//!   buffers (carbon clears them, losing the intervals in progress);
//! - a removed file means no rules, the buffers kept, as in carbon.
//!
//! [`RulesFile::poll`] does the file work and [`Aggregator::update_rules`] applies what it
//! found, so the caller can read the file without holding its aggregator's lock. The caller
//! supplies the clock: carbon's period is [`RULES_RELOAD_INTERVAL`].

use std::io;
use std::path::Path;
use std::time::Duration;

use super::engine::Aggregator;
use super::rules::{AggregationRules, RulesError};
use crate::config::{ConfigFile, Reloadable};

/// How often carbon-aggregator looks at its rules file (`read_task.start(10, now=False)`).
pub const RULES_RELOAD_INTERVAL: Duration = Duration::from_secs(10);

impl ConfigFile for AggregationRules {
    type Error = RulesError;

    fn open_file(path: &Path) -> Result<Self, RulesError> {
        AggregationRules::open(path)
    }

    fn io_error(path: &Path, error: io::Error) -> RulesError {
        RulesError::io(path, error)
    }
}

/// An `aggregation-rules.conf` and the version of it in use.
///
/// ```
/// use store::aggregator::{Aggregator, AggregatorConfig, RulesFile, RulesReload};
///
/// # fn main() -> Result<(), Box<dyn std::error::Error>> {
/// let dir = tempfile::tempdir()?;
/// let path = dir.path().join("aggregation-rules.conf");
/// std::fs::write(&path, "total (60) = sum <h>.requests\n")?;
/// let mut file = RulesFile::open(&path)?;
/// let mut agg = Aggregator::new(file.rules().clone(), AggregatorConfig::default());
///
/// std::fs::write(&path, "total (60) = sum <h>.requests\nall (60) = sum *.*.requests\n")?;
/// if let Some(update) = file.poll()? {
///     assert_eq!(agg.update_rules(update), RulesReload::Replaced { rules: 2 });
/// }
/// assert_eq!(agg.rules().rules().len(), 2);
/// # Ok(())
/// # }
/// ```
#[derive(Debug)]
pub struct RulesFile {
    file: Reloadable<AggregationRules>,
}

/// New rules read by [`RulesFile::poll`], for [`Aggregator::update_rules`].
#[derive(Debug)]
pub struct RulesUpdate {
    rules: AggregationRules,
    /// The file is gone (its rules are then empty).
    removed: bool,
}

/// What [`Aggregator::update_rules`] did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum RulesReload {
    /// The file changed but says the same rules: nothing replaced, the buffers kept.
    SameRules,
    /// The new rules are in use and every buffer was cleared, as carbon clears them.
    Replaced {
        /// How many rules there are now.
        rules: usize,
    },
    /// The file is gone: no rules from now on; the buffers already filled are emitted when
    /// due, as in carbon.
    Removed,
}

impl RulesFile {
    /// Reads the file (a missing one has no rules, as [`AggregationRules::open`]).
    ///
    /// # Errors
    ///
    /// As [`AggregationRules::open`].
    pub fn open(path: impl AsRef<Path>) -> Result<RulesFile, RulesError> {
        Ok(RulesFile { file: Reloadable::open(path)? })
    }

    /// The rules of the version in use.
    pub fn rules(&self) -> &AggregationRules {
        self.file.get()
    }

    /// The file.
    pub fn path(&self) -> &Path {
        self.file.path()
    }

    /// Re-reads the file if it changed since it was last read or tried: `Ok(Some(_))` with
    /// its rules for [`Aggregator::update_rules`], `Ok(None)` if it did not change.
    ///
    /// # Errors
    ///
    /// The new version cannot be used (the error names the file and line): the rules in use
    /// stay, and the same broken version is not reported again.
    pub fn poll(&mut self) -> Result<Option<RulesUpdate>, RulesError> {
        if !self.file.reload_if_changed()? {
            return Ok(None);
        }
        let removed = !self.file.path().exists();
        Ok(Some(RulesUpdate { rules: self.file.get().clone(), removed }))
    }
}

impl Aggregator {
    /// Puts rules re-read by [`RulesFile::poll`] in use, as carbon's `read_rules` does (see
    /// the module docs for where this differs).
    pub fn update_rules(&mut self, update: RulesUpdate) -> RulesReload {
        if update.removed {
            self.replace_rules_keeping_buffers(update.rules);
            RulesReload::Removed
        } else if update.rules.same_rules(self.rules()) {
            RulesReload::SameRules
        } else {
            let rules = update.rules.rules().len();
            self.set_rules(update.rules);
            RulesReload::Replaced { rules }
        }
    }
}

#[cfg(test)]
mod tests {
    use std::fs::{self, File};
    use std::time::{SystemTime, UNIX_EPOCH};

    use super::*;
    use crate::aggregator::AggregatorConfig;

    /// Moves a file's mtime, so tests do not depend on the clock's resolution.
    fn touch(path: &Path, seconds: u64) {
        let file = File::options().append(true).open(path).unwrap();
        file.set_modified(UNIX_EPOCH + Duration::from_secs(seconds)).unwrap();
    }

    fn write(path: &Path, text: &str, mtime: u64) {
        fs::write(path, text).unwrap();
        touch(path, mtime);
    }

    fn now() -> f64 {
        SystemTime::now().duration_since(UNIX_EPOCH).unwrap().as_secs_f64()
    }

    /// A rules file holding `rules` (mtime 1000), opened, an aggregator on its rules with
    /// one point for `a.cpu` (`value`) buffered, and the point's time.
    struct Setup {
        _dir: tempfile::TempDir,
        path: std::path::PathBuf,
        file: RulesFile,
        agg: Aggregator,
        t: f64,
    }

    fn setup(rules: &str, value: f64) -> Setup {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("aggregation-rules.conf");
        write(&path, rules, 1_000);
        let file = RulesFile::open(&path).unwrap();
        let mut agg = Aggregator::new(file.rules().clone(), AggregatorConfig::default());
        let t = now();
        assert_eq!(agg.push("a.cpu", t, value, t).matched, 1);
        Setup { _dir: dir, path, file, agg, t }
    }

    #[test]
    fn a_changed_file_replaces_the_rules_and_clears_the_buffers() {
        let Setup { _dir, path, mut file, mut agg, t } = setup("total (10) = sum <h>.cpu\n", 1.0);
        assert!(file.poll().unwrap().is_none(), "unchanged");

        write(&path, "total (10) = max <h>.cpu\nmem (10) = sum <h>.mem\n", 2_000);
        let update = file.poll().unwrap().unwrap();
        assert_eq!(agg.update_rules(update), RulesReload::Replaced { rules: 2 });
        assert_eq!(agg.buffers(), 0, "carbon clears the buffers");
        assert_eq!(agg.push("a.mem", t, 1.0, t).matched, 1);
    }

    #[test]
    fn an_invalid_file_keeps_the_rules_in_use() {
        let Setup { _dir, path, mut file, mut agg, .. } = setup("total (10) = sum <h>.cpu\n", 1.0);

        write(&path, "total (10) = sum <h>.cpu\n\nbad (10) = nosuch <h>.cpu\n", 2_000);
        let e = file.poll().unwrap_err();
        assert_eq!(e.line(), Some(3));
        assert_eq!(e.path(), path);
        assert!(file.poll().unwrap().is_none(), "the same broken file is reported once");
        assert_eq!(agg.rules().rules().len(), 1);
        assert_eq!(agg.buffers(), 1, "the buffers are kept");
        assert_eq!(file.rules().rules().len(), 1, "the version in use is the old one");

        // Fixed: read again.
        write(&path, "other (10) = sum <h>.cpu\n", 3_000);
        let update = file.poll().unwrap().unwrap();
        assert_eq!(agg.update_rules(update), RulesReload::Replaced { rules: 1 });
    }

    #[test]
    fn the_same_rules_keep_the_buffers() {
        let Setup { _dir, path, mut file, mut agg, .. } = setup("total (10) = sum <h>.cpu\n", 1.0);
        // Same rules, another comment and mtime.
        write(&path, "# touched\ntotal (10) = sum <h>.cpu\n", 2_000);
        let update = file.poll().unwrap().unwrap();
        assert_eq!(agg.update_rules(update), RulesReload::SameRules);
        assert_eq!(agg.buffers(), 1);
    }

    #[test]
    fn a_removed_file_means_no_rules_and_the_buffers_drain() {
        let Setup { _dir, path, mut file, mut agg, t } = setup("total (1) = sum <h>.cpu\n", 2.0);
        fs::remove_file(&path).unwrap();
        let update = file.poll().unwrap().unwrap();
        assert_eq!(agg.update_rules(update), RulesReload::Removed);
        assert_eq!(agg.push("b.cpu", t, 1.0, t).matched, 0);
        let out = agg.tick(t + 2.0);
        assert_eq!(out.len(), 1, "the buffer filled before the removal is emitted");
        assert_eq!(out[0].datapoint.value, 2.0);

        // Back again: read.
        write(&path, "total (1) = sum <h>.cpu\n", 5_000);
        let update = file.poll().unwrap().unwrap();
        assert_eq!(agg.update_rules(update), RulesReload::Replaced { rules: 1 });
    }
}
