//! A stand-in for `collect::sender` (built in parallel on another branch) with the same
//! names, so the agent compiles and runs until it lands: plaintext over TCP, one connection
//! per run, no spool. Deleted when the real sender is merged.

use std::io::Write;
use std::net::TcpStream;
use std::path::PathBuf;
use std::sync::Mutex;
use std::time::Duration;

use carbon_proto::Point;
use serde::Deserialize;

use super::sink::{PointSink, SinkStats};
use crate::Result;

/// Where points go.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum DestinationKind {
    /// A carbon receiver.
    #[default]
    Carbon,
    /// A rotating log file of lines.
    Archive,
    /// Standard output.
    Stdout,
}

/// The wire format to carbon.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Protocol {
    /// Lines over TCP.
    #[default]
    Plaintext,
    /// Pickle frames over TCP.
    Pickle,
    /// Lines over UDP.
    Udp,
}

/// One destination.
#[derive(Clone, Debug, PartialEq, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct DestinationConfig {
    /// Name in stats (default: the address).
    pub name: Option<String>,
    /// What it is.
    pub kind: DestinationKind,
    /// `host:port` of a carbon destination.
    pub address: String,
    /// Wire format.
    pub protocol: Protocol,
    /// Points per write.
    pub batch_size: usize,
    /// Connect and write timeout (seconds in the file).
    #[serde(deserialize_with = "de_secs")]
    pub timeout: Duration,
    /// The archive's file.
    pub path: Option<PathBuf>,
    /// Days of archive kept.
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
            timeout: Duration::from_secs(15),
            path: None,
            rotate_days: 7,
        }
    }
}

fn de_secs<'de, D: serde::Deserializer<'de>>(d: D) -> std::result::Result<Duration, D::Error> {
    let secs = f64::deserialize(d)?;
    Duration::try_from_secs_f64(secs).map_err(serde::de::Error::custom)
}

/// The sender's settings.
#[derive(Clone, Debug, PartialEq, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct SenderConfig {
    /// Every destination gets every point.
    pub destinations: Vec<DestinationConfig>,
}

impl Default for SenderConfig {
    fn default() -> SenderConfig {
        SenderConfig { destinations: vec![DestinationConfig::default()] }
    }
}

/// Sends points to every destination, synchronously.
#[derive(Debug)]
pub struct Sender {
    config: SenderConfig,
    stats: Mutex<Vec<SinkStats>>,
}

impl Sender {
    /// A sender for `config`.
    ///
    /// # Errors
    ///
    /// None today; the real sender fails on an unusable spool directory.
    pub fn start(config: SenderConfig) -> Result<Sender> {
        let stats = config
            .destinations
            .iter()
            .map(|d| SinkStats { name: d.address.clone(), ..SinkStats::default() })
            .collect();
        Ok(Sender { config, stats: Mutex::new(stats) })
    }
}

impl PointSink for Sender {
    fn send(&self, points: Vec<Point>) {
        let mut text = Vec::new();
        for p in &points {
            carbon_proto::plaintext::encode_line(
                &mut text,
                p.name.as_str(),
                p.datapoint.value,
                p.datapoint.timestamp,
            );
        }
        let mut stats = self.stats.lock().unwrap_or_else(|p| p.into_inner());
        for (d, s) in self.config.destinations.iter().zip(stats.iter_mut()) {
            let ok = match d.kind {
                DestinationKind::Stdout => std::io::stdout().lock().write_all(&text).is_ok(),
                DestinationKind::Archive => false,
                DestinationKind::Carbon => {
                    (if d.address.is_empty() { "127.0.0.1:2003" } else { d.address.as_str() })
                        .parse()
                        .ok()
                        .is_some_and(|addr| {
                            TcpStream::connect_timeout(&addr, Duration::from_secs(2))
                                .and_then(|mut c| c.write_all(&text))
                                .is_ok()
                        })
                }
            };
            if ok {
                s.sent += points.len() as u64;
            } else {
                s.errors += 1;
                s.dropped += points.len() as u64;
            }
        }
    }

    fn stats(&self) -> Vec<SinkStats> {
        self.stats.lock().unwrap_or_else(|p| p.into_inner()).clone()
    }

    fn shutdown(&self, _deadline: Duration) {}
}
