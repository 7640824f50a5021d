//! Diamond's `FilesCollector`: every regular file in a drop directory holds `name value` lines;
//! each becomes a sample below the host (node `.`), and the file is deleted after it gave at
//! least one metric when `delete` is set.
//!
//! A line is read as Diamond's pattern does: at its start a name of `a-z`, `0-9`, `.`, `_`,
//! `-`; one separator (whitespace, `=` or `:`); a value of digits and `-` with an optional
//! decimal part (`cpu.temp 41.5`, `jobs=3`, `queue:12`). Anything after the value is ignored.
//! Lines that do not match are skipped and counted; a line that matches but whose value is not
//! a number (`1-2`) or whose name is not a valid metric name (`a..b`) is counted too, where
//! Diamond dropped the rest of the file. Files are read in name order, each up to 4 MiB.
//!
//! Options (Diamond's): `dir` (`/tmp/diamond`), `delete` (false).

use std::io::Read;
use std::path::{Path, PathBuf};
use std::sync::LazyLock;

use regex::Regex;

use crate::error::{Error, Result};
use crate::options::Options;
use crate::sample::{Collector, Env, RunContext, Sample};

/// The most bytes read from one file.
const MAX_FILE_BYTES: u64 = 4 << 20;

/// Diamond's line pattern (`_RE` in files.py), anchored at the start as `re.match` is.
static LINE: LazyLock<Option<Regex>> =
    LazyLock::new(|| Regex::new(r"^([a-z0-9._-]+)[\s=:]([0-9-]+)(\.?\d*)").ok());

/// Counts of what the collector has read since it was built.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct FilesStats {
    /// Samples published.
    pub lines_valid: u64,
    /// Lines skipped: no match, a bad value or a bad name.
    pub lines_invalid: u64,
    /// Files deleted after reading.
    pub files_deleted: u64,
    /// Files that could not be read or deleted.
    pub file_errors: u64,
}

/// Parses one line (see the module docs): `Some((name, value))`, `None` when it does not match.
/// `Some(Err(()))` when it matched but the name or value is unusable.
pub fn parse_line(line: &str) -> Option<Result<(String, f64), ()>> {
    let caps = LINE.as_ref()?.captures(line)?;
    let name = caps.get(1)?.as_str();
    let value = format!("{}{}", caps.get(2)?.as_str(), caps.get(3).map_or("", |m| m.as_str()));
    let ok = value.parse::<f64>().ok().filter(|v| v.is_finite());
    match ok {
        Some(v) if carbon_proto::MetricName::new(name).is_ok() => Some(Ok((name.to_owned(), v))),
        _ => Some(Err(())),
    }
}

/// Reads the drop directory on every run (see the module docs).
#[derive(Debug)]
pub struct FilesCollector {
    dir: PathBuf,
    delete: bool,
    stats: FilesStats,
}

impl FilesCollector {
    /// Builds the collector from its options (see the module docs).
    ///
    /// # Errors
    ///
    /// A bad `delete` value.
    pub fn new(opts: &Options, _env: &Env) -> Result<FilesCollector> {
        Ok(FilesCollector {
            dir: PathBuf::from(opts.str_or("dir", "/tmp/diamond")),
            delete: opts.bool_or("delete", false)?,
            stats: FilesStats::default(),
        })
    }

    /// What has been read so far.
    pub fn stats(&self) -> FilesStats {
        self.stats
    }

    fn read_file(&mut self, path: &Path, out: &mut Vec<Sample>) -> std::io::Result<bool> {
        let mut text = String::new();
        let file = std::fs::File::open(path)?;
        let mut bytes = Vec::new();
        file.take(MAX_FILE_BYTES).read_to_end(&mut bytes)?;
        text.push_str(&String::from_utf8_lossy(&bytes));
        let mut found = false;
        for line in text.lines() {
            match parse_line(line) {
                Some(Ok((name, v))) => {
                    out.push(Sample::new(name, v));
                    self.stats.lines_valid += 1;
                    found = true;
                }
                Some(Err(())) => self.stats.lines_invalid += 1,
                None if line.trim().is_empty() => {}
                None => self.stats.lines_invalid += 1,
            }
        }
        Ok(found)
    }
}

impl Collector for FilesCollector {
    fn default_path(&self) -> &str {
        "."
    }

    fn collect(&mut self, _ctx: &RunContext, out: &mut Vec<Sample>) -> Result<()> {
        let entries = match std::fs::read_dir(&self.dir) {
            Ok(e) => e,
            // Diamond publishes nothing while the directory does not exist; so do we.
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(()),
            Err(e) => return Err(Error::io(&self.dir, e)),
        };
        let mut paths: Vec<PathBuf> = entries
            .filter_map(|e| e.ok())
            .filter(|e| e.file_type().is_ok_and(|t| t.is_file()))
            .map(|e| e.path())
            .collect();
        paths.sort();
        for path in paths {
            let invalid_before = self.stats.lines_invalid;
            match self.read_file(&path, out) {
                Ok(found) => {
                    if self.stats.lines_invalid > invalid_before {
                        tracing::debug!(file = %path.display(), bad = self.stats.lines_invalid - invalid_before, "lines skipped");
                    }
                    if found && self.delete {
                        match std::fs::remove_file(&path) {
                            Ok(()) => self.stats.files_deleted += 1,
                            Err(e) => {
                                self.stats.file_errors += 1;
                                tracing::warn!(file = %path.display(), error = %e, "cannot delete");
                            }
                        }
                    }
                }
                Err(e) => {
                    self.stats.file_errors += 1;
                    tracing::warn!(file = %path.display(), error = %e, "cannot read");
                }
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn lines_match_diamonds_pattern() {
        assert_eq!(parse_line("cpu.temp 41.5"), Some(Ok(("cpu.temp".into(), 41.5))));
        assert_eq!(parse_line("jobs=3 trailing words"), Some(Ok(("jobs".into(), 3.0))));
        assert_eq!(parse_line("queue:-12"), Some(Ok(("queue".into(), -12.0))));
        assert_eq!(parse_line("Upper 1"), None);
        assert_eq!(parse_line("name value"), None);
        assert_eq!(parse_line("a 1-2"), Some(Err(())));
        assert_eq!(parse_line("a..b 1"), Some(Err(())));
    }

    proptest! {
        #[test]
        fn parser_never_panics(s in "\\PC{0,80}") {
            if let Some(Ok((name, v))) = parse_line(&s) {
                prop_assert!(v.is_finite() && !name.is_empty());
            }
        }
    }
}
