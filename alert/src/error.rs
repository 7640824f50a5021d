//! The crate's error type.

use std::path::PathBuf;

/// A `Result` with this crate's [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Everything that can go wrong in the alert engine and notifier.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// A file could not be read or written.
    #[error("{}: {source}", path.display())]
    Io {
        /// The file.
        path: PathBuf,
        /// What the operating system said.
        #[source]
        source: std::io::Error,
    },
    /// A `[[receiver]]` section is wrong (the notifier's validation).
    #[error("receiver {receiver:?}: {problem}")]
    Receiver {
        /// The receiver's name.
        receiver: String,
        /// What is wrong with it.
        problem: String,
    },
    /// The `[route]` section is wrong.
    #[error("[route]: {problem}")]
    Route {
        /// What is wrong with it.
        problem: String,
    },
    /// A silence or acknowledgement request, or an inhibit rule, is wrong (a bad matcher,
    /// an end before its start, a side without matchers).
    #[error("{what}: {problem}")]
    Request {
        /// What was being made (`silence`, `matcher "x=~("`, `ack`, `` `target_match` ``).
        what: String,
        /// What is wrong with it.
        problem: String,
    },
    /// The notifier's saved state could not be read back.
    #[error("notifier state: {source}")]
    NotifyState {
        /// What serde said.
        #[source]
        source: serde_json::Error,
    },
    // The engine's variants (rules, state file, backtest).
    /// A rules file (or a rule test file) is invalid: the message says what, the line and the
    /// rule say where.
    #[error("{}", .0)]
    Rules(Box<RulesError>),
    /// The state file does not parse; the engine starts fresh only when told to.
    #[error("{}: corrupt state file: {detail}", path.display())]
    StateCorrupt {
        /// The state file.
        path: PathBuf,
        /// What the JSON parser said.
        detail: String,
    },
    /// The state file was written by another version of the format.
    #[error("{}: state file version {found}, this build reads version {expected}", path.display())]
    StateVersion {
        /// The state file.
        path: PathBuf,
        /// The version in the file.
        found: u32,
        /// The version this build writes.
        expected: u32,
    },
    /// A backtest or test named a rule the rules file does not have.
    #[error("no rule named `{0}`")]
    UnknownRule(String),
    /// A backtest cannot replay this rule (HTTP and TCP checks have no history).
    #[error("rule `{rule}` is a {kind} check: only target rules can be backtested")]
    NotReplayable {
        /// The rule.
        rule: String,
        /// Its kind.
        kind: &'static str,
    },
    /// A backtest range is empty, or has more steps than a backtest runs.
    #[error("invalid backtest range: from {from} until {until} every {step}s")]
    InvalidRange {
        /// Start.
        from: i64,
        /// End.
        until: i64,
        /// Step (seconds).
        step: i64,
    },
    /// A backtest's history query failed.
    #[error("rule `{rule}`: history query failed: {source}")]
    History {
        /// The rule.
        rule: String,
        /// Why.
        #[source]
        source: crate::source::SourceError,
    },
}

/// Where a rules file (or rule test file) is wrong, and how.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RulesError {
    /// The file.
    pub path: PathBuf,
    /// The 1-based line, when known.
    pub line: Option<usize>,
    /// The rule (or test) the error is in, when it is in one.
    pub rule: Option<String>,
    /// What is wrong.
    pub message: String,
}

impl std::fmt::Display for RulesError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}", self.path.display())?;
        if let Some(line) = self.line {
            write!(f, ":{line}")?;
        }
        if let Some(rule) = &self.rule {
            write!(f, ": rule `{rule}`")?;
        }
        write!(f, ": {}", self.message)
    }
}

impl Error {
    /// A rules-file error at `line` in `rule`.
    pub(crate) fn rules(
        path: &std::path::Path,
        line: Option<usize>,
        rule: Option<&str>,
        message: impl Into<String>,
    ) -> Error {
        Error::Rules(Box::new(RulesError {
            path: path.to_path_buf(),
            line,
            rule: rule.map(str::to_owned),
            message: message.into(),
        }))
    }

    /// A receiver's configuration error.
    pub(crate) fn receiver(receiver: &str, problem: impl Into<String>) -> Error {
        Error::Receiver { receiver: receiver.to_owned(), problem: problem.into() }
    }

    /// A route configuration error.
    pub(crate) fn route(problem: String) -> Error {
        Error::Route { problem }
    }

    /// A bad API request.
    pub(crate) fn request(what: impl Into<String>, problem: impl Into<String>) -> Error {
        Error::Request { what: what.into(), problem: problem.into() }
    }
}
