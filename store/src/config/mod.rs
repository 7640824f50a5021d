//! carbon's config files.

mod error;
mod ini;
mod text;

pub use error::{
    ConfigError, ConfigErrorKind, ConfigWarning, ConfigWarningKind, InterpolationProblem,
    RetentionProblem, SyntaxError,
};
pub use ini::{DEFAULT_SECTION, Ini, IniEntry, IniItem, IniSection};
