//! `whitelist.conf` and `blacklist.conf`, as `carbon.regexlist.RegexList` reads them.

use std::path::{Path, PathBuf};

use super::error::{ConfigError, ConfigWarning, ConfigWarningKind};
use super::pyre::{PyRegex, PyRegexError};
use super::text::{decode, lines, py_strip};
use super::{read_optional, regex_error};

/// A list of patterns, one per line; a metric is in the list if any pattern is found in its
/// name.
///
/// Read as carbon reads it: each line is stripped; a line that *starts* with `#` (before any
/// blank) and a blank line are skipped; every other line is a pattern, so an indented `# text`
/// is a pattern too (with a [`ConfigWarningKind::IndentedComment`] warning). A pattern Python
/// refuses is skipped with a warning; one that cannot run here is an error. A missing file is
/// an empty list.
///
/// How carbon uses the two lists (with `USE_WHITELIST`): a metric in the blacklist is
/// dropped; then, if the whitelist is not empty, a metric not in it is dropped.
///
/// ```
/// use store::config::PatternList;
/// use std::path::Path;
///
/// let list = PatternList::parse("# noisy\n^some\\.noisy\\.\n\\.\\.\n", Path::new("blacklist.conf"))?;
/// assert!(list.is_match("some.noisy.thing"));
/// assert!(list.is_match("a..b"));
/// assert!(!list.is_match("a.b"));
/// # Ok::<(), store::config::ConfigError>(())
/// ```
#[derive(Debug, Clone)]
pub struct PatternList {
    path: PathBuf,
    /// Tried one by one. Not a `regex::RegexSet`: regex-automata 0.4.18's one-pass DFA, which
    /// a set of start-anchored patterns uses, panics on `\b^` against non-ASCII names.
    patterns: Vec<PyRegex>,
    warnings: Vec<ConfigWarning>,
}

impl Default for PatternList {
    /// An empty list.
    fn default() -> PatternList {
        PatternList { path: PathBuf::new(), patterns: Vec::new(), warnings: Vec::new() }
    }
}

impl PatternList {
    /// Reads a list from the file's text; `path` names the file in errors and warnings.
    ///
    /// # Errors
    ///
    /// [`ConfigErrorKind::UnsupportedRegex`](super::ConfigErrorKind::UnsupportedRegex) for a
    /// pattern Python accepts but this implementation cannot run, with its line.
    pub fn parse(text: &str, path: &Path) -> Result<PatternList, ConfigError> {
        let mut patterns = Vec::new();
        let mut warnings = Vec::new();
        for (number, line) in lines(text) {
            let pattern = py_strip(line);
            if line.starts_with('#') || pattern.is_empty() {
                continue;
            }
            let warn = |kind| ConfigWarning::new(path, Some(number), kind);
            if pattern.starts_with('#') {
                warnings.push(warn(ConfigWarningKind::IndentedComment {
                    pattern: pattern.to_string(),
                }));
            }
            match PyRegex::new(pattern) {
                Ok(regex) => patterns.push(regex),
                Err(PyRegexError::Invalid(message)) => {
                    warnings.push(warn(ConfigWarningKind::InvalidRegex {
                        pattern: pattern.to_string(),
                        message,
                    }));
                }
                Err(e) => return Err(ConfigError::at(path, number, regex_error(pattern, e))),
            }
        }
        Ok(PatternList { path: path.to_path_buf(), patterns, warnings })
    }

    /// Reads a list from the file's bytes (UTF-8).
    ///
    /// # Errors
    ///
    /// [`ConfigErrorKind::NotUtf8`](super::ConfigErrorKind::NotUtf8), or as
    /// [`PatternList::parse`].
    pub fn from_bytes(bytes: &[u8], path: &Path) -> Result<PatternList, ConfigError> {
        PatternList::parse(decode(bytes, path)?, path)
    }

    /// Reads a list file; a missing file is an empty list.
    ///
    /// # Errors
    ///
    /// [`ConfigErrorKind::Io`](super::ConfigErrorKind::Io) if the file exists but cannot be
    /// read, or as [`PatternList::from_bytes`].
    pub fn open(path: impl AsRef<Path>) -> Result<PatternList, ConfigError> {
        let path = path.as_ref();
        match read_optional(path)? {
            Some(bytes) => PatternList::from_bytes(&bytes, path),
            None => Ok(PatternList { path: path.to_path_buf(), ..PatternList::default() }),
        }
    }

    /// Whether any pattern is found in `metric` (Python's `re.search`); `false` for an empty
    /// list.
    pub fn is_match(&self, metric: &str) -> bool {
        self.patterns.iter().any(|p| p.is_match(metric))
    }

    /// Whether the list has no usable pattern (carbon's whitelist then allows everything).
    pub fn is_empty(&self) -> bool {
        self.patterns.is_empty()
    }

    /// How many patterns are in use.
    pub fn len(&self) -> usize {
        self.patterns.len()
    }

    /// The patterns in use, as written.
    pub fn patterns(&self) -> impl Iterator<Item = &str> {
        self.patterns.iter().map(PyRegex::as_str)
    }

    /// What was skipped or looks wrong, in file order.
    pub fn warnings(&self) -> &[ConfigWarning] {
        &self.warnings
    }

    /// The file read.
    pub fn path(&self) -> &Path {
        &self.path
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::ConfigErrorKind;

    fn parse(text: &str) -> Result<PatternList, ConfigError> {
        PatternList::parse(text, Path::new("list.conf"))
    }

    #[test]
    fn blacklist_example() {
        let l = parse(
            "# comment\n^some\\.noisy\\.metric\\.prefix\\..*\n\n# Reject ...\n\\.\\.\n^\\.\n\\.$\n",
        )
        .unwrap();
        assert_eq!(l.len(), 4);
        for bad in ["some.noisy.metric.prefix.x", "a..b", ".a", "a."] {
            assert!(l.is_match(bad), "{bad}");
        }
        assert!(!l.is_match("a.b"));
        assert!(l.warnings().is_empty());
    }

    #[test]
    fn empty_and_missing_lists_match_nothing() {
        for l in [parse("").unwrap(), parse("# only\n\n   \n").unwrap(), PatternList::default()] {
            assert!(l.is_empty());
            assert!(!l.is_match("a"));
        }
        let dir = tempfile::tempdir().unwrap();
        let l = PatternList::open(dir.path().join("whitelist.conf")).unwrap();
        assert!(l.is_empty());
    }

    #[test]
    fn only_a_leading_hash_is_a_comment() {
        let l = parse("  # not a comment\n").unwrap();
        assert_eq!(l.patterns().collect::<Vec<_>>(), ["# not a comment"]);
        assert!(l.is_match("x# not a comment"));
        assert_eq!(l.warnings()[0].line(), Some(1));
        assert!(matches!(l.warnings()[0].kind(), ConfigWarningKind::IndentedComment { .. }));
    }

    #[test]
    fn bad_patterns() {
        let l = parse("a\n(b\nc\n").unwrap();
        assert_eq!(l.patterns().collect::<Vec<_>>(), ["a", "c"]);
        assert_eq!(l.warnings()[0].line(), Some(2));
        assert_eq!(
            l.warnings()[0].to_string(),
            "list.conf:2: invalid regular expression \"(b\" skipped: missing ), unterminated subpattern"
        );
        let e = parse("a\n^(?!carbon\\.)\n").unwrap_err();
        assert_eq!(e.line(), Some(2));
        assert!(matches!(e.kind(), ConfigErrorKind::UnsupportedRegex { .. }));
    }

    #[test]
    fn anchored_word_boundaries_on_non_ascii_names() {
        // postmortem: with a RegexSet this panicked inside regex-automata (one-pass DFA).
        let l = parse("\\b^\n^\\bzz\n").unwrap();
        for name in ["é", "Éa", "a", ""] {
            assert_eq!(l.is_match(name), !name.is_empty(), "{name:?}");
        }
    }
}
