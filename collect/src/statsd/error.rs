//! The statsd server's error type.

use std::net::SocketAddr;

/// What can go wrong while configuring or starting the statsd server. Bad packets are not
/// errors: they are counted (`statsd.bad_lines_seen`) and logged.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// A setting has a value the server cannot use.
    #[error("statsd setting `{key}`: {reason}")]
    Config {
        /// The setting's name, as in statsd's config.js where there is one.
        key: &'static str,
        /// Why it cannot be used.
        reason: String,
    },
    /// A socket could not be opened or set up.
    #[error("statsd {proto} socket on {addr}: {source}")]
    Bind {
        /// `udp` or `tcp`.
        proto: &'static str,
        /// The address asked for.
        addr: SocketAddr,
        /// What the operating system said.
        #[source]
        source: std::io::Error,
    },
}

/// A `Result` with the statsd [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;

impl Error {
    pub(crate) fn config(key: &'static str, reason: impl Into<String>) -> Error {
        Error::Config { key, reason: reason.into() }
    }
}
