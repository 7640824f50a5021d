//! The sender's settings: a list of destinations, each with its own queue, spool and timing.

use std::fmt;
use std::net::{IpAddr, SocketAddr};
use std::path::PathBuf;
use std::time::Duration;

use serde::Deserialize;

use super::error::SenderError;

/// Carbon's plaintext port.
pub const DEFAULT_PLAINTEXT_PORT: u16 = 2003;
/// Carbon's pickle port.
pub const DEFAULT_PICKLE_PORT: u16 = 2004;

/// The sender's settings (a `[sender]` table with `[[sender.destinations]]` entries in the
/// agent's TOML).
///
/// ```
/// # use collect::sender::{SenderConfig, Protocol};
/// let config: SenderConfig = serde_json::from_str(r#"{"destinations": [
///     {"address": "carbon.example:2004", "protocol": "pickle", "spool_dir": "/var/spool/agent"},
///     {"kind": "archive", "path": "/var/log/agent/archive.log"}
/// ]}"#)?;
/// assert_eq!(config.destinations[0].protocol, Protocol::Pickle);
/// assert_eq!(config.destinations[1].rotate_days, 7);
/// # Ok::<(), serde_json::Error>(())
/// ```
#[derive(Clone, Debug, Default, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct SenderConfig {
    /// Where points go; every point goes to every destination.
    pub destinations: Vec<DestinationConfig>,
}

/// What a destination is.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
#[non_exhaustive]
pub enum DestinationKind {
    /// A carbon receiver (carbon-cache, carbon-relay, graphite-rs) over [`Protocol`].
    #[default]
    Carbon,
    /// A file with every line appended, rotated daily (Diamond's `ArchiveHandler`).
    Archive,
    /// Standard output, one plaintext line per point (`--dry-run`).
    Stdout,
}

/// How a carbon destination is spoken to.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
#[non_exhaustive]
pub enum Protocol {
    /// `name value timestamp\n` over TCP (port 2003).
    #[default]
    Plaintext,
    /// Length-prefixed pickles of `(name, (timestamp, value))` over TCP (port 2004).
    Pickle,
    /// Plaintext lines over UDP, several per datagram: fire-and-forget, no spool, no retry.
    Udp,
}

/// One destination. Every field has a default, so `{}` is carbon plaintext on
/// `127.0.0.1:2003` with no spool.
#[derive(Clone, Debug, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct DestinationConfig {
    /// Name in stats, logs and the spool directory (`spool_dir/<name>/`). Default: the kind
    /// and address, e.g. `carbon-127.0.0.1_2003`, `pickle-carbon.example_2004`, `archive`,
    /// `stdout`. Two destinations cannot share a name.
    pub name: Option<String>,
    /// What it is. Default: `carbon`.
    pub kind: DestinationKind,
    /// `host:port`, `host` (the protocol's port: 2003, or 2004 for pickle), `[v6]:port`.
    /// Resolved again at every reconnect. Default: `127.0.0.1`.
    pub address: String,
    /// Carbon protocol. Default: `plaintext`.
    pub protocol: Protocol,
    /// Points per write (and per spool record). Default: 500.
    pub batch_size: usize,
    /// Longest a point waits in memory for its batch to fill. Default: 1 s.
    #[serde(deserialize_with = "de_duration")]
    pub batch_delay: Duration,
    /// Points kept in memory; beyond that they go to the spool, or without a spool the
    /// oldest are dropped (counted). Default: 20,000 (about 2 MB).
    pub queue_points: usize,
    /// Directory of on-disk spools; this destination's is `spool_dir/<name>/`. Default:
    /// none (memory only). Ignored for UDP.
    pub spool_dir: Option<PathBuf>,
    /// Cap on the spool's files; the oldest segment is dropped beyond it. Default: 256 MiB.
    pub spool_max_bytes: u64,
    /// First reconnect delay; it doubles per failure (with jitter) up to `reconnect_max`.
    /// Default: 1 s.
    #[serde(deserialize_with = "de_duration")]
    pub reconnect_min: Duration,
    /// Longest reconnect delay. Default: 60 s.
    #[serde(deserialize_with = "de_duration")]
    pub reconnect_max: Duration,
    /// Connect and write timeout. Default: 15 s (Diamond's).
    #[serde(deserialize_with = "de_duration")]
    pub timeout: Duration,
    /// The archive file (kind `archive`; required there).
    pub path: Option<PathBuf>,
    /// Rotated archive files kept (`path.YYYY-MM-DD`); 0 keeps all. Default: 7 (Diamond's
    /// `days`).
    pub rotate_days: u32,
}

impl Default for DestinationConfig {
    fn default() -> DestinationConfig {
        DestinationConfig {
            name: None,
            kind: DestinationKind::Carbon,
            address: String::new(),
            protocol: Protocol::Plaintext,
            batch_size: 500,
            batch_delay: Duration::from_secs(1),
            queue_points: 20_000,
            spool_dir: None,
            spool_max_bytes: 256 << 20,
            reconnect_min: Duration::from_secs(1),
            reconnect_max: Duration::from_secs(60),
            timeout: Duration::from_secs(15),
            path: None,
            rotate_days: 7,
        }
    }
}

impl DestinationConfig {
    /// The destination's name: `name` if set, else derived from kind and address.
    pub fn resolved_name(&self) -> String {
        if let Some(name) = &self.name {
            return name.clone();
        }
        match self.kind {
            DestinationKind::Archive => "archive".to_string(),
            DestinationKind::Stdout => "stdout".to_string(),
            DestinationKind::Carbon => {
                let prefix = match self.protocol {
                    Protocol::Plaintext => "carbon",
                    Protocol::Pickle => "pickle",
                    Protocol::Udp => "udp",
                };
                let address: String = self
                    .resolved_address()
                    .chars()
                    .map(
                        |c| if c.is_ascii_alphanumeric() || c == '.' || c == '-' { c } else { '_' },
                    )
                    .collect();
                format!("{prefix}-{address}")
            }
        }
    }

    /// `address` with the protocol's default port added when it has none.
    pub fn resolved_address(&self) -> String {
        let port = match self.protocol {
            Protocol::Pickle => DEFAULT_PICKLE_PORT,
            Protocol::Plaintext | Protocol::Udp => DEFAULT_PLAINTEXT_PORT,
        };
        let address = self.address.trim();
        if address.is_empty() {
            return format!("127.0.0.1:{port}");
        }
        if address.parse::<SocketAddr>().is_ok() {
            return address.to_string();
        }
        if let Ok(ip) = address.trim_start_matches('[').trim_end_matches(']').parse::<IpAddr>() {
            return SocketAddr::new(ip, port).to_string();
        }
        match address.rsplit_once(':') {
            Some((_, p)) if p.parse::<u16>().is_ok() => address.to_string(),
            _ => format!("{address}:{port}"),
        }
    }

    /// Checks the settings that cannot work.
    ///
    /// # Errors
    ///
    /// [`SenderError::BadConfig`] naming the destination and the field.
    pub fn validate(&self) -> Result<(), SenderError> {
        let name = self.resolved_name();
        let bad = |field: &'static str, reason: &'static str| {
            Err(SenderError::BadConfig { destination: name.clone(), field, reason })
        };
        if name.is_empty() || name == "." || name == ".." || name.contains(['/', '\0']) {
            return bad("name", "must be usable as a directory name");
        }
        if self.batch_size == 0 {
            return bad("batch_size", "must be at least 1");
        }
        if self.queue_points == 0 {
            return bad("queue_points", "must be at least 1");
        }
        if self.reconnect_min.is_zero() {
            return bad("reconnect_min", "must be more than 0");
        }
        if self.reconnect_max < self.reconnect_min {
            return bad("reconnect_max", "must not be less than reconnect_min");
        }
        if self.timeout.is_zero() {
            return bad("timeout", "must be more than 0");
        }
        if self.spool_dir.is_some() && self.spool_max_bytes < 4096 {
            return bad("spool_max_bytes", "must be at least 4096");
        }
        if self.kind == DestinationKind::Archive && self.path.is_none() {
            return bad("path", "an archive destination needs a file path");
        }
        Ok(())
    }
}

/// Reads a duration: a number of seconds (`1`, `0.5`) or text with a unit (`500ms`, `2s`,
/// `5m`, `1h`; no unit is seconds).
fn de_duration<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Duration, D::Error> {
    struct V;
    impl serde::de::Visitor<'_> for V {
        type Value = Duration;
        fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            f.write_str("seconds as a number, or text such as \"500ms\", \"2s\", \"5m\", \"1h\"")
        }
        fn visit_u64<E: serde::de::Error>(self, v: u64) -> Result<Duration, E> {
            Ok(Duration::from_secs(v))
        }
        fn visit_i64<E: serde::de::Error>(self, v: i64) -> Result<Duration, E> {
            u64::try_from(v).map(Duration::from_secs).map_err(|_| E::custom("negative duration"))
        }
        fn visit_f64<E: serde::de::Error>(self, v: f64) -> Result<Duration, E> {
            Duration::try_from_secs_f64(v).map_err(|_| E::custom("duration out of range"))
        }
        fn visit_str<E: serde::de::Error>(self, v: &str) -> Result<Duration, E> {
            parse_duration(v).ok_or_else(|| E::invalid_value(serde::de::Unexpected::Str(v), &self))
        }
    }
    d.deserialize_any(V)
}

/// Parses `500ms`, `2s`, `1.5s`, `5m`, `1h`, `10` (seconds).
pub(crate) fn parse_duration(text: &str) -> Option<Duration> {
    let text = text.trim();
    let split = text.find(|c: char| !(c.is_ascii_digit() || c == '.')).unwrap_or(text.len());
    let (number, unit) = text.split_at(split);
    let number: f64 = number.parse().ok()?;
    let scale = match unit.trim() {
        "ms" => 0.001,
        "" | "s" | "sec" => 1.0,
        "m" | "min" => 60.0,
        "h" => 3600.0,
        _ => return None,
    };
    Duration::try_from_secs_f64(number * scale).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_take_numbers_and_units() {
        assert_eq!(parse_duration("500ms"), Some(Duration::from_millis(500)));
        assert_eq!(parse_duration("2s"), Some(Duration::from_secs(2)));
        assert_eq!(parse_duration("1.5"), Some(Duration::from_millis(1500)));
        assert_eq!(parse_duration("5m"), Some(Duration::from_secs(300)));
        assert_eq!(parse_duration("1h"), Some(Duration::from_secs(3600)));
        assert_eq!(parse_duration("fast"), None);
        assert_eq!(parse_duration("-1s"), None);
        let c: DestinationConfig =
            serde_json::from_str(r#"{"batch_delay": 0.25, "timeout": "3s", "reconnect_max": 30}"#)
                .unwrap();
        assert_eq!(c.batch_delay, Duration::from_millis(250));
        assert_eq!(c.timeout, Duration::from_secs(3));
        assert_eq!(c.reconnect_max, Duration::from_secs(30));
    }

    #[test]
    fn unknown_fields_are_refused() {
        assert!(serde_json::from_str::<DestinationConfig>(r#"{"adress": "x"}"#).is_err());
    }

    #[test]
    fn address_gets_the_protocol_port() {
        let mut c = DestinationConfig::default();
        assert_eq!(c.resolved_address(), "127.0.0.1:2003");
        assert_eq!(c.resolved_name(), "carbon-127.0.0.1_2003");
        c.protocol = Protocol::Pickle;
        c.address = "carbon.example".into();
        assert_eq!(c.resolved_address(), "carbon.example:2004");
        assert_eq!(c.resolved_name(), "pickle-carbon.example_2004");
        c.address = "::1".into();
        assert_eq!(c.resolved_address(), "[::1]:2004");
        c.address = "[::1]:12003".into();
        assert_eq!(c.resolved_address(), "[::1]:12003");
        c.address = "host:9".into();
        assert_eq!(c.resolved_address(), "host:9");
    }

    #[test]
    fn validation_names_the_field() {
        let c = DestinationConfig { batch_size: 0, ..Default::default() };
        assert!(matches!(c.validate(), Err(SenderError::BadConfig { field: "batch_size", .. })));
        let c = DestinationConfig { kind: DestinationKind::Archive, ..Default::default() };
        assert!(matches!(c.validate(), Err(SenderError::BadConfig { field: "path", .. })));
        let c = DestinationConfig { name: Some("../x".into()), ..Default::default() };
        assert!(matches!(c.validate(), Err(SenderError::BadConfig { field: "name", .. })));
        let c = DestinationConfig {
            reconnect_min: Duration::from_secs(5),
            reconnect_max: Duration::from_secs(1),
            ..Default::default()
        };
        assert!(c.validate().is_err());
        assert!(DestinationConfig::default().validate().is_ok());
    }
}
