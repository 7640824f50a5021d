//! What can be wrong with a config file: errors (the file cannot be used) and warnings (carbon
//! skips or ignores something and goes on; so do we, and the caller decides how to log it).
//!
//! Both name the file and, when there is one, the line.

use std::fmt;
use std::io;
use std::path::{Path, PathBuf};

/// A config file that cannot be used, naming the file and line.
///
/// Boxed so that the crate's `Error` stays small.
#[derive(Debug)]
pub struct ConfigError(Box<ErrorInner>);

#[derive(Debug)]
struct ErrorInner {
    path: PathBuf,
    line: Option<usize>,
    kind: ConfigErrorKind,
}

impl ConfigError {
    /// An error in `path`, at `line` (1-based) if it is about one line.
    pub(crate) fn new(path: &Path, line: Option<usize>, kind: ConfigErrorKind) -> ConfigError {
        ConfigError(Box::new(ErrorInner { path: path.to_path_buf(), line, kind }))
    }

    /// An error at one line of `path`.
    pub(crate) fn at(path: &Path, line: usize, kind: ConfigErrorKind) -> ConfigError {
        ConfigError::new(path, Some(line), kind)
    }

    /// The file.
    pub fn path(&self) -> &Path {
        &self.0.path
    }

    /// The line (1-based), when the error is about one line.
    pub fn line(&self) -> Option<usize> {
        self.0.line
    }

    /// What is wrong.
    pub fn kind(&self) -> &ConfigErrorKind {
        &self.0.kind
    }
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.0.path.display())?;
        if let Some(line) = self.0.line {
            write!(f, ":{line}")?;
        }
        write!(f, ": {}", self.0.kind)
    }
}

impl std::error::Error for ConfigError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match &self.0.kind {
            ConfigErrorKind::Io(e) => Some(e),
            _ => None,
        }
    }
}

/// What is wrong with a config file (see [`ConfigError`] for where).
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ConfigErrorKind {
    /// The file could not be read.
    #[error("{0}")]
    Io(io::Error),
    /// The file is not UTF-8 (Python reads it as UTF-8 and fails).
    #[error("not valid UTF-8")]
    NotUtf8,
    /// A line that breaks the INI syntax.
    #[error("{0}")]
    Syntax(SyntaxError),
    /// A `%` that is not `%%` or `%(name)s`, or a reference that cannot be resolved.
    #[error("{key}: {problem}")]
    Interpolation {
        /// The key whose value is wrong.
        key: String,
        /// What is wrong with it.
        problem: InterpolationProblem,
    },
    /// A `carbon.conf` value of the wrong type or out of range.
    #[error("{key} = {value:?}: expected {expected}")]
    Value {
        /// The key, upper-case as carbon names it.
        key: String,
        /// The value as written (after interpolation).
        value: String,
        /// What the key takes.
        expected: &'static str,
    },
    /// A retention definition carbon refuses (carbon exits).
    #[error("[{section}] retentions: {definition:?}: {problem}")]
    Retention {
        /// The section.
        section: String,
        /// The one definition (between commas) that is wrong.
        definition: String,
        /// What is wrong with it.
        problem: RetentionProblem,
    },
    /// A regular expression Python refuses, where carbon stops on it.
    #[error("invalid regular expression {pattern:?}: {message}")]
    InvalidRegex {
        /// The pattern.
        pattern: String,
        /// What Python's `re` would object to.
        message: String,
    },
    /// A regular expression Python accepts but this implementation cannot run (look-around,
    /// back-references, ...).
    #[error("regular expression {pattern:?} uses {feature}, which is not supported here")]
    UnsupportedRegex {
        /// The pattern.
        pattern: String,
        /// The construct, or the regex engine's own message.
        feature: String,
    },
    /// A rewrite replacement Python refuses (carbon fails on every metric the rule matches).
    #[error("invalid replacement {replacement:?}: {message}")]
    InvalidReplacement {
        /// The replacement text.
        replacement: String,
        /// What is wrong with it.
        message: String,
    },
    /// An `xFilesFactor` outside `[0, 1]` (carbon's assertion stops it).
    #[error("[{section}] xFilesFactor = {value:?}: not between 0 and 1")]
    XFilesFactor {
        /// The section.
        section: String,
        /// The value as written.
        value: String,
    },
    /// An `aggregationMethod` whisper does not know (carbon's assertion stops it).
    #[error("[{section}] aggregationMethod = {name:?}: not one of whisper's methods")]
    AggregationMethod {
        /// The section.
        section: String,
        /// The value as written.
        name: String,
    },
    /// A line that carbon's section scan reads as a section header although the INI parser
    /// does not (an indented `[name]` continuing a value): carbon fails looking it up.
    #[error("[{name}] is an indented continuation line, not a section header")]
    NotASection {
        /// The name between the brackets.
        name: String,
    },
}

impl ConfigErrorKind {
    /// Shorthand for a [`ConfigErrorKind::Value`] error.
    pub(crate) fn value(key: &str, value: &str, expected: &'static str) -> ConfigErrorKind {
        ConfigErrorKind::Value { key: key.to_string(), value: value.to_string(), expected }
    }
}

/// A line that breaks Python ConfigParser's syntax.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum SyntaxError {
    /// A key before the first `[section]` line.
    #[error("no [section] header before the first key")]
    MissingSectionHeader,
    /// The file starts with a UTF-8 byte-order mark, which Python keeps as text.
    #[error("the file starts with a byte-order mark")]
    ByteOrderMark,
    /// A line that is neither a header, nor `key = value`, nor `key: value`.
    #[error("expected [section], key = value or key: value, found {text:?}")]
    NotKeyValue {
        /// The line, stripped.
        text: String,
    },
    /// A line that starts with its `=` or `:`.
    #[error("empty key in {text:?}")]
    EmptyKey {
        /// The line, stripped.
        text: String,
    },
    /// A section given twice.
    #[error("section [{name}] already given")]
    DuplicateSection {
        /// The section.
        name: String,
    },
    /// A key given twice in one section.
    #[error("key {key:?} already given in section [{section}]")]
    DuplicateKey {
        /// The section.
        section: String,
        /// The key (lower-case).
        key: String,
    },
}

/// A value whose `%` interpolation fails, as Python's `BasicInterpolation` says.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum InterpolationProblem {
    /// A `%` not followed by `%` or `(name)s`.
    #[error(
        "'%' must be followed by '%' or '(name)s' (write '%%' for a literal '%'), found {rest:?}"
    )]
    Syntax {
        /// The text from the bad `%` on.
        rest: String,
    },
    /// A `%(name)s` with no `name` in the section or in `[DEFAULT]`.
    #[error("no key {name:?} to substitute for %({name})s")]
    Missing {
        /// The name referred to (lower-case).
        name: String,
    },
    /// References nested more than 10 deep (usually a loop).
    #[error("references nested too deep (a loop?)")]
    TooDeep,
}

/// Why carbon's `parseRetentionDef` refuses a retention definition.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum RetentionProblem {
    /// Not exactly one `:` (carbon splits on every `:`).
    #[error("expected precision:points with exactly one ':'")]
    Parts,
    /// The precision is neither digits nor digits and a unit.
    #[error("Invalid precision specification '{0}'")]
    Precision(String),
    /// The points are neither digits nor digits and a unit.
    #[error("Invalid retention specification '{0}'")]
    Points(String),
    /// A unit other than `s`, `m`, `h`, `d`, `w`, `y`.
    #[error("Invalid unit '{0}'")]
    Unit(String),
    /// A zero precision with a duration on the points side (Python divides by zero).
    #[error("zero precision with a duration for points (division by zero)")]
    ZeroPrecision,
}

/// Something carbon skips or ignores, with where it is.
#[derive(Debug, Clone, PartialEq)]
pub struct ConfigWarning {
    path: PathBuf,
    line: Option<usize>,
    kind: ConfigWarningKind,
}

impl ConfigWarning {
    /// A warning about `path`, at `line` if it is about one line.
    pub(crate) fn new(path: &Path, line: Option<usize>, kind: ConfigWarningKind) -> ConfigWarning {
        ConfigWarning { path: path.to_path_buf(), line, kind }
    }

    /// The file.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The line (1-based), when the warning is about one line.
    pub fn line(&self) -> Option<usize> {
        self.line
    }

    /// What was skipped or ignored.
    pub fn kind(&self) -> &ConfigWarningKind {
        &self.kind
    }
}

impl fmt::Display for ConfigWarning {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt_at(f, &self.path, self.line, &self.kind)
    }
}

/// Writes `path:line: what` (`path: what` without a line), the form of every message about
/// a place in a configuration file.
pub(crate) fn fmt_at(
    f: &mut fmt::Formatter<'_>,
    path: &Path,
    line: Option<usize>,
    what: &dyn fmt::Display,
) -> fmt::Result {
    write!(f, "{}", path.display())?;
    if let Some(line) = line {
        write!(f, ":{line}")?;
    }
    write!(f, ": {what}")
}

/// What a [`ConfigWarning`] is about.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[non_exhaustive]
pub enum ConfigWarningKind {
    /// A schema section without `retentions`: skipped.
    #[error("schema [{section}] has no 'retentions', skipped")]
    MissingRetentions {
        /// The section.
        section: String,
    },
    /// A schema or aggregation section without `pattern` (or with an empty one): skipped.
    #[error("[{section}] has no 'pattern', skipped")]
    MissingPattern {
        /// The section.
        section: String,
    },
    /// A schema whose archives whisper refuses: skipped.
    #[error("schema [{section}] skipped: {source}")]
    InvalidArchiveList {
        /// The section.
        section: String,
        /// whisper's objection.
        source: whisper::ArchiveListError,
    },
    /// A schema with a number too large for whisper's 32-bit fields: skipped.
    #[error(
        "schema [{section}] skipped: retention {definition:?} does not fit whisper's 32-bit fields"
    )]
    RetentionTooLarge {
        /// The section.
        section: String,
        /// The definition.
        definition: String,
    },
    /// An aggregation section whose `xFilesFactor` is not a number: skipped.
    #[error("aggregation [{section}] skipped: xFilesFactor {value:?} is not a number")]
    XFilesFactorNotANumber {
        /// The section.
        section: String,
        /// The value as written.
        value: String,
    },
    /// A header line with text after its `]`: the INI parser reads the section but carbon's
    /// section scan does not list it, so carbon never uses it; neither do we.
    #[error("[{section}] ignored: text after ']' on its header line hides it from carbon")]
    HiddenSection {
        /// The section the header names.
        section: String,
    },
    /// A white/blacklist or rewrite pattern Python refuses: skipped.
    #[error("invalid regular expression {pattern:?} skipped: {message}")]
    InvalidRegex {
        /// The pattern.
        pattern: String,
        /// What Python's `re` would object to.
        message: String,
    },
    /// A list line that starts with blanks and then `#`: carbon only treats lines starting with
    /// `#` as comments, so this is a pattern.
    #[error("{pattern:?} is a pattern, not a comment ('#' must start the line)")]
    IndentedComment {
        /// The pattern (the stripped line).
        pattern: String,
    },
    /// A rewrite-rules line that is neither a header nor `regex = replacement`: ignored.
    #[error("not a section heading or rule: {text:?}")]
    NotARule {
        /// The stripped line.
        text: String,
    },
    /// A rewrite rule outside `[pre]` and `[post]`: kept but never applied.
    #[error("rule {pattern:?} is in {section}, which carbon never applies")]
    UnusedRule {
        /// The pattern.
        pattern: String,
        /// Where it is: `[name]`, or `no section`.
        section: String,
    },
    /// The file does not exist: the built-in default is used.
    #[error("not found, using the built-in default")]
    MissingFile,
    /// A `carbon.conf` key carbon does not know: carbon ignores it.
    #[error("unknown key {key}, ignored")]
    UnknownKey {
        /// The key, upper-case.
        key: String,
    },
    /// A `carbon.conf` setting for a carbon feature this implementation does not have.
    #[error("{key} = {value:?} is not supported here, ignored")]
    Unsupported {
        /// The key, upper-case.
        key: String,
        /// The value as written.
        value: String,
    },
}
