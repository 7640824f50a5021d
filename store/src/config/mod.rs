//! carbon's config files, read as carbon 1.1.7 reads them, with carbon's defaults when a file
//! is absent.
//!
//! | file | type | read as |
//! |---|---|---|
//! | `carbon.conf` | [`CarbonConfig`] (from [`CarbonConfigBuilder`]) | `carbon.conf.read_config` for carbon-cache |
//! | `storage-schemas.conf` | [`StorageSchemas`] | `carbon.storage.loadStorageSchemas` |
//! | `storage-aggregation.conf` | [`StorageAggregation`] | `carbon.storage.loadAggregationSchemas` |
//! | `whitelist.conf`, `blacklist.conf` | [`PatternList`] | `carbon.regexlist.RegexList` |
//! | `rewrite-rules.conf` | [`RewriteRules`] | `carbon.rewrite.RewriteRuleManager` |
//!
//! The INI files go through [`Ini`], a reader with Python `ConfigParser` semantics. Patterns
//! are Python regular expressions: they are checked as Python's `re` checks them and translated
//! for the `regex` crate; what Python accepts but cannot run here (look-around,
//! back-references) is an error. Every error is a [`ConfigError`] naming the file and line;
//! what carbon skips or ignores is returned as [`ConfigWarning`]s for the caller to log.
//! [`Reloadable`] re-reads a file when it changes, keeping the old value if the new one is
//! broken.
//!
//! # Where this differs from carbon
//!
//! * No `carbon.conf` means carbon's code defaults and no `$GRAPHITE_ROOT` means
//!   [`DEFAULT_GRAPHITE_ROOT`]; a missing `storage-schemas.conf` means the built-in schema (with
//!   a warning). carbon refuses to start in all three cases.
//! * `carbon.conf` values of the keys used here are checked for type and range (a port of
//!   `abc`, a zero update rate); carbon takes anything and fails later or misbehaves. Text keys
//!   keep their text even when it looks like a number. `DATABASE` must be `whisper`.
//! * Archive lists whisper.py accepts but whisper-rs refuses (a zero, or past its 32-bit
//!   fields) skip their schema with a warning; carbon keeps them and fails when creating the
//!   file (or dies dividing by a zero precision).
//! * A rewrite replacement Python refuses is an error when the file is read; carbon fails on
//!   every metric instead. A re-read starts from scratch: carbon keeps the rules of sections the
//!   new file no longer has.
//! * A section header with text after its `]`, which carbon silently ignores, is a warning.
//! * Python reports every bad INI line at once; the first is reported here.
//! * Patterns are checked as Python 3.11's `re` checks them and translated for the `regex`
//!   crate (`\Z`, escaped punctuation such as `\<`, a `{` that is no repeat, `[[]`, named
//!   groups, octal escapes). Look-around, back-references, conditionals, atomic groups,
//!   possessive repeats, `\N{...}` and the `x`, `a` and `t` flags are errors. Python's `$` also
//!   matches before a final `\n`; Unicode classes follow slightly different tables; after an
//!   empty match, `re.sub` can differ for patterns that prefer an empty match (`a??`, `|a`).
//! * Numbers: only ASCII digits are digits (Python's `int()` takes any Unicode decimal digit);
//!   integers past `i64` become floats; `~user` in directories is not expanded.
//!
//! ```
//! use store::config::{CarbonConfigBuilder, ConfigEnv, Reloadable, StorageSchemas};
//!
//! # fn main() -> Result<(), Box<dyn std::error::Error>> {
//! let root = tempfile::tempdir()?;
//! let mut builder = CarbonConfigBuilder::new();
//! builder.env(ConfigEnv {
//!     graphite_root: Some(root.path().to_string_lossy().into_owned()),
//!     ..ConfigEnv::default()
//! });
//! // No carbon.conf and no storage-schemas.conf: carbon's defaults.
//! let config = builder.build()?;
//! assert_eq!(config.line_receiver_port, 2003);
//! let schemas = Reloadable::<StorageSchemas>::open(config.storage_schemas_path())?;
//! assert_eq!(schemas.get().matching("servers.web1.cpu").retentions()[0].points(), 10080);
//! for warning in schemas.get().warnings() {
//!     eprintln!("{warning}"); // "…/storage-schemas.conf: not found, using the built-in default"
//! }
//! # Ok(())
//! # }
//! ```

mod aggregation;
mod carbon_conf;
mod error;
mod ini;
mod lists;
pub(crate) mod pyre;
mod reload;
mod retention;
mod rewrite;
mod schemas;
pub(crate) mod text;

use std::path::Path;

pub use aggregation::{AggregationRule, StorageAggregation};
pub use carbon_conf::{
    CacheWriteStrategy, CarbonConfig, CarbonConfigBuilder, ConfigEnv, DEFAULT_GRAPHITE_ROOT,
    DEFAULT_INSTANCE, RateLimit, Setting, Value,
};
pub(crate) use error::fmt_at;
pub use error::{
    ConfigError, ConfigErrorKind, ConfigWarning, ConfigWarningKind, InterpolationProblem,
    RetentionProblem, SyntaxError,
};
pub use ini::{DEFAULT_SECTION, Ini, IniEntry, IniItem, IniSection};
pub use lists::PatternList;
pub use reload::{ConfigFile, LIST_RELOAD_INTERVAL, Reloadable, SCHEMA_RELOAD_INTERVAL};
pub use rewrite::{RewriteRule, RewriteRules};
pub use schemas::{DEFAULT_RETENTION, DEFAULT_SCHEMA_NAME, Schema, StorageSchemas};

use pyre::{PyRegex, PyRegexError};

/// Reads a whole file; `None` if it does not exist.
fn read_optional(path: &Path) -> Result<Option<Vec<u8>>, ConfigError> {
    match std::fs::read(path) {
        Ok(bytes) => Ok(Some(bytes)),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(ConfigError::new(path, None, ConfigErrorKind::Io(e))),
    }
}

/// Compiles a Python pattern where carbon stops on a bad one: both kinds of failure are errors.
fn compile(pattern: &str, path: &Path, line: usize) -> Result<PyRegex, ConfigError> {
    PyRegex::new(pattern).map_err(|e| ConfigError::at(path, line, regex_error(pattern, e)))
}

fn regex_error(pattern: &str, e: PyRegexError) -> ConfigErrorKind {
    let pattern = pattern.to_string();
    match e {
        PyRegexError::Invalid(message) => ConfigErrorKind::InvalidRegex { pattern, message },
        PyRegexError::Unsupported(feature) => {
            ConfigErrorKind::UnsupportedRegex { pattern, feature }
        }
    }
}
