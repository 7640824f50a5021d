//! The sender's error type.

use std::path::PathBuf;

/// Why the sender could not start or stop cleanly. Failures while running (a destination
/// down, a write error, a full spool) are not errors: they are retried, counted in
/// [`DestinationStats`](super::DestinationStats) and logged once per change of state.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum SenderError {
    /// A destination's setting cannot work.
    #[error("destination {destination}: `{field}` {reason}")]
    BadConfig {
        /// The destination's name.
        destination: String,
        /// The setting.
        field: &'static str,
        /// What is wrong with it.
        reason: &'static str,
    },
    /// The configuration lists no destination.
    #[error("no destination configured")]
    NoDestination,
    /// Two destinations have the same name (and would share a spool directory).
    #[error("two destinations are named {name:?}")]
    DuplicateName {
        /// The name.
        name: String,
    },
    /// A destination's spool directory could not be opened or read.
    #[error("destination {destination}: spool {}: {source}", path.display())]
    Spool {
        /// The destination's name.
        destination: String,
        /// The spool directory.
        path: PathBuf,
        /// What the operating system said.
        #[source]
        source: std::io::Error,
    },
    /// A destination's worker thread could not be started.
    #[error("destination {destination}: cannot start its thread: {source}")]
    Spawn {
        /// The destination's name.
        destination: String,
        /// What the operating system said.
        #[source]
        source: std::io::Error,
    },
    /// Some workers were still running when the shutdown deadline passed (a write or a
    /// connect that had not timed out yet); they stop on their own.
    #[error("shutdown deadline passed with destinations still running: {destinations:?}")]
    ShutdownTimeout {
        /// Their names.
        destinations: Vec<String>,
    },
}
