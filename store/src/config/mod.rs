//! carbon's config files.

/// A config file that cannot be used, naming the file and line.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ConfigError {}
