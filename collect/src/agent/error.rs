//! Errors of the agent: a configuration that cannot be used, named by file, line and key.

use std::fmt;
use std::path::PathBuf;

/// Where a setting was written: a file and a 1-based line (0 when the setting is a built-in
/// default or came from the command line).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Origin {
    /// The file.
    pub path: PathBuf,
    /// The line, from 1; 0 when unknown.
    pub line: usize,
}

impl Origin {
    /// A setting at `line` of `path`.
    pub fn new(path: impl Into<PathBuf>, line: usize) -> Origin {
        Origin { path: path.into(), line }
    }
}

impl fmt::Display for Origin {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.path.as_os_str().is_empty() {
            write!(f, "(built-in)")
        } else if self.line == 0 {
            write!(f, "{}", self.path.display())
        } else {
            write!(f, "{}:{}", self.path.display(), self.line)
        }
    }
}

/// Everything that stops the agent from taking a configuration.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum AgentError {
    /// A setting is misspelt, has a bad value, or the file has a syntax error there.
    #[error("{origin}: `{key}`: {reason}")]
    Config {
        /// Where the setting (or the syntax error) is.
        origin: Box<Origin>,
        /// The key as written (or the section, for a section-level problem).
        key: String,
        /// What is wrong, lowercase.
        reason: String,
    },
    /// A configuration file could not be read.
    #[error("{}: {source}", path.display())]
    Read {
        /// The file or directory.
        path: PathBuf,
        /// What the operating system said.
        #[source]
        source: std::io::Error,
    },
    /// The host name could not be found with the configured method.
    #[error("hostname_method `{method}`: {reason}")]
    Hostname {
        /// The method.
        method: String,
        /// Why it failed.
        reason: String,
    },
}

impl AgentError {
    /// A bad setting `key` at `origin`.
    pub fn config(origin: Origin, key: impl Into<String>, reason: impl Into<String>) -> AgentError {
        AgentError::Config { origin: Box::new(origin), key: key.into(), reason: reason.into() }
    }
}

/// The 1-based line of byte `offset` in `text`.
pub(crate) fn line_of(text: &str, offset: usize) -> usize {
    let end = offset.min(text.len());
    text.as_bytes().get(..end).map_or(1, |b| b.iter().filter(|&&c| c == b'\n').count() + 1)
}
