//! carbon's config files.

mod aggregation;
mod carbon_conf;
mod error;
mod ini;
mod lists;
mod pyre;
mod reload;
mod retention;
mod rewrite;
mod schemas;
mod text;

use std::path::Path;

pub use aggregation::{AggregationRule, StorageAggregation};
pub use carbon_conf::{
    CacheWriteStrategy, CarbonConfig, CarbonConfigBuilder, ConfigEnv, DEFAULT_GRAPHITE_ROOT,
    DEFAULT_INSTANCE, RateLimit, Setting, Value,
};
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
