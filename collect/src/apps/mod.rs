//! Application collectors: nginx stub_status, Redis INFO, HTTP JSON, user scripts (Graphite or
//! tcollector lines) and a drop directory of `name value` files.
//!
//! Each talks to something outside the agent that may be down, slow or mad, so each bounds
//! what it waits for (connect and read timeouts, output and response caps) and reports a
//! failure as an [`AppError`] naming the address or script, never as a panic or a hang. A
//! collector that reads several sources (Redis instances, scripts) appends what the healthy
//! ones gave before it returns the error for the rest: the samples in `out` are good even when
//! `collect` fails.
//!
//! The HTTP collectors (nginx, HTTP JSON) take `https` URLs too; TLS (rustls) is set up from
//! `tls_verify` and `ca_file` as the private `tls` module describes.
//!
//! | Diamond class | module | node |
//! |---|---|---|
//! | `NginxCollector` | [`nginx`] | `nginx` |
//! | `RedisCollector` | [`redis`] | `redis` |
//! | `HTTPJSONCollector` | [`http_json`] | `httpjson` |
//! | `UserScriptsCollector` | [`exec`] | `.` |
//! | `FilesCollector` | [`files`] | `.` |

use std::path::PathBuf;
use std::time::Duration;

use crate::error::Result;
use crate::options::Options;

pub mod exec;
pub mod files;
mod http;
pub mod http_json;
pub mod nginx;
pub mod redis;
mod resp;
mod tls;

pub use exec::{ExecCollector, ExecStats};
pub use files::FilesCollector;
pub use http_json::HttpJsonCollector;
pub use nginx::NginxCollector;
pub use redis::RedisCollector;

/// How long a collector waits to connect, unless `connect_timeout` says otherwise.
pub const DEFAULT_CONNECT_TIMEOUT: Duration = Duration::from_secs(5);
/// How long a collector waits for a whole answer (or a script to finish), unless `timeout`
/// says otherwise.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(10);

/// What went wrong in an application collector. Every variant names the address, URL or script
/// so the agent's log line says which source failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum AppError {
    /// No connection could be made.
    #[error("{addr}: cannot connect: {source}")]
    Connect {
        /// `host:port` (or the socket path) as configured.
        addr: String,
        /// What the operating system said (refused, unreachable, timed out, name unknown).
        #[source]
        source: std::io::Error,
    },
    /// The peer did not answer completely within the time allowed.
    #[error("{addr}: no complete answer within {timeout:?}")]
    Timeout {
        /// `host:port`, the socket path or the URL.
        addr: String,
        /// The limit that ran out.
        timeout: Duration,
    },
    /// Reading or writing the connection failed after it was made.
    #[error("{addr}: {source}")]
    Io {
        /// `host:port`, the socket path or the URL.
        addr: String,
        /// What the operating system said.
        #[source]
        source: std::io::Error,
    },
    /// The peer answered, but not with what the protocol allows (a bad HTTP head, a RESP
    /// error reply, a body that is not stub_status text or JSON, an answer over the size cap).
    #[error("{addr}: {what}")]
    Protocol {
        /// `host:port`, the socket path or the URL.
        addr: String,
        /// What was wrong.
        what: String,
    },
    /// An HTTP server answered with a status other than 2xx.
    #[error("{url}: HTTP status {status}")]
    HttpStatus {
        /// The URL asked for.
        url: String,
        /// The status code.
        status: u16,
    },
    /// A TLS session with an `https` server failed: its certificate was refused (unknown
    /// issuer, another host's name, expired), no protocol version or cipher suite was common,
    /// the peer does not speak TLS, or a record was bad after the handshake.
    #[error("{addr}: {}: {source}{}", tls_stage(*.handshake), tls::hint(.source))]
    Tls {
        /// The URL.
        addr: String,
        /// Whether it failed during the handshake (rather than while reading the answer).
        handshake: bool,
        /// What rustls said.
        #[source]
        source: rustls::Error,
    },
    /// A URL this collector cannot fetch (another scheme, user info, no host).
    #[error("{url}: {reason}")]
    BadUrl {
        /// The URL as configured.
        url: String,
        /// Why it cannot be used.
        reason: &'static str,
    },
    /// Some sources of a multi-source collector failed; the others' samples were kept.
    #[error("{}", join_failures(.0))]
    Several(Vec<AppError>),
    /// A script could not be started, or was killed when it overran its time.
    #[error("{}: {what}", path.display())]
    Script {
        /// The executable.
        path: PathBuf,
        /// What happened ("killed after 10s", "cannot start: ...").
        what: String,
    },
}

fn tls_stage(handshake: bool) -> &'static str {
    if handshake { "TLS handshake failed" } else { "TLS error" }
}

fn join_failures(all: &[AppError]) -> String {
    let parts: Vec<String> = all.iter().map(ToString::to_string).collect();
    parts.join("; ")
}

impl AppError {
    /// One error for a list of failed sources, or `None` when none failed.
    pub(crate) fn from_failures(mut failures: Vec<AppError>) -> Option<AppError> {
        match failures.len() {
            0 => None,
            1 => failures.pop(),
            _ => Some(AppError::Several(failures)),
        }
    }
}

/// The connect and whole-answer limits of a network collector, from `connect_timeout` and
/// `timeout` (seconds, fractions allowed).
#[derive(Clone, Copy, Debug, PartialEq)]
pub(crate) struct Timeouts {
    /// The limit on making the connection.
    pub(crate) connect: Duration,
    /// The limit on the whole exchange after connecting.
    pub(crate) read: Duration,
}

impl Timeouts {
    /// Reads `connect_timeout` (default 5 s) and `timeout` (default 10 s).
    pub(crate) fn from_options(opts: &Options) -> Result<Timeouts> {
        Ok(Timeouts {
            connect: seconds(opts, "connect_timeout", DEFAULT_CONNECT_TIMEOUT)?,
            read: seconds(opts, "timeout", DEFAULT_TIMEOUT)?,
        })
    }
}

/// A positive duration in seconds (fractions allowed) from `key`, or `default`.
pub(crate) fn seconds(opts: &Options, key: &str, default: Duration) -> Result<Duration> {
    let v = opts.f64_or(key, default.as_secs_f64())?;
    if v <= 0.0 || v > 86_400.0 {
        return Err(crate::Error::BadOption {
            key: key.to_owned(),
            value: opts.get(key).unwrap_or_default().to_owned(),
            reason: "expected a number of seconds above 0 and at most 86400",
        });
    }
    Ok(Duration::from_secs_f64(v))
}

/// Makes one node of a metric name out of arbitrary text: dots, whitespace, `/`, `;` and
/// control characters become `_`, so a JSON key or a nickname cannot add tree levels, tags or
/// a directory. An empty label becomes `_`.
pub(crate) fn sanitize_node(label: &str) -> String {
    if label.is_empty() {
        return "_".to_owned();
    }
    label
        .chars()
        .map(|c| {
            if c == '.' || c == '/' || c == ';' || c == '\\' || c.is_whitespace() || c.is_control()
            {
                '_'
            } else {
                c
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn errors_stay_small() {
        // STYLE: the crate's Error stays at 128 bytes or less.
        assert!(
            std::mem::size_of::<crate::Error>() <= 128,
            "{}",
            std::mem::size_of::<crate::Error>()
        );
    }

    #[test]
    fn sanitized_labels_cannot_add_levels() {
        assert_eq!(sanitize_node("a.b c/d;e"), "a_b_c_d_e");
        assert_eq!(sanitize_node(""), "_");
        assert_eq!(sanitize_node("tab\there\n"), "tab_here_");
    }

    #[test]
    fn timeouts_read_seconds_with_fractions() {
        let o: Options = [("timeout", "0.5")].into_iter().collect();
        let t = Timeouts::from_options(&o).unwrap();
        assert_eq!(t.read, Duration::from_millis(500));
        assert_eq!(t.connect, DEFAULT_CONNECT_TIMEOUT);
        let bad: Options = [("connect_timeout", "0")].into_iter().collect();
        assert!(Timeouts::from_options(&bad).is_err());
    }

    #[test]
    fn several_failures_name_each_source() {
        let e = AppError::from_failures(vec![
            AppError::HttpStatus { url: "http://a/".into(), status: 500 },
            AppError::HttpStatus { url: "http://b/".into(), status: 404 },
        ])
        .unwrap();
        let text = e.to_string();
        assert!(text.contains("http://a/") && text.contains("http://b/"), "{text}");
        assert!(AppError::from_failures(Vec::new()).is_none());
    }
}
