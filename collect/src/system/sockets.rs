//! Socket counts from `/proc/net/sockstat` and `/proc/net/sockstat6` (Diamond's
//! `SockstatCollector`, node `sockets`).
//!
//! Gauges `used`, `tcp_inuse`, `tcp_orphan`, `tcp_tw`, `tcp_alloc`, `tcp_mem`, `udp_inuse`,
//! `udp_mem`; the IPv6 `inuse` counts of sockstat6 are added to `tcp_inuse` and `udp_inuse`.
//! sockstat6 is absent when IPv6 is disabled, which is not an error.

use std::io::ErrorKind;

use super::parse;
use super::procfile::ProcFile;
use crate::{Collector, Env, Error, Options, Result, RunContext, Sample};

/// (label in sockstat, key, metric name).
const FIELDS: [(&str, &str, &str); 8] = [
    ("sockets", "used", "used"),
    ("TCP", "inuse", "tcp_inuse"),
    ("TCP", "orphan", "tcp_orphan"),
    ("TCP", "tw", "tcp_tw"),
    ("TCP", "alloc", "tcp_alloc"),
    ("TCP", "mem", "tcp_mem"),
    ("UDP", "inuse", "udp_inuse"),
    ("UDP", "mem", "udp_mem"),
];

/// The sockets collector.
#[derive(Debug)]
pub struct Sockets {
    sockstat: ProcFile,
    sockstat6: ProcFile,
    buf: Vec<u8>,
}

impl Sockets {
    /// No options of its own.
    ///
    /// # Errors
    /// None today; the signature matches the other collectors.
    pub fn new(_opts: &Options, env: &Env) -> Result<Sockets> {
        Ok(Sockets {
            sockstat: ProcFile::new(env.proc_root.join("net/sockstat")),
            sockstat6: ProcFile::new(env.proc_root.join("net/sockstat6")),
            buf: Vec::new(),
        })
    }
}

impl Collector for Sockets {
    fn default_path(&self) -> &str {
        "sockets"
    }

    fn collect(&mut self, _ctx: &RunContext, out: &mut Vec<Sample>) -> Result<()> {
        let mut values: [Option<u64>; FIELDS.len()] = [None; FIELDS.len()];
        let text = self.sockstat.read(&mut self.buf)?;
        for line in text.lines() {
            for ((label, key, _), slot) in FIELDS.iter().zip(values.iter_mut()) {
                if let Some((l, v)) = parse::sockstat_value(line, key)
                    && l == *label
                {
                    *slot = Some(v);
                }
            }
        }
        if values.iter().all(Option::is_none) {
            return Err(Error::Malformed {
                path: self.sockstat.path().to_owned(),
                what: "no `sockets:`, `TCP:` or `UDP:` line".to_owned(),
            });
        }
        match self.sockstat6.read(&mut self.buf) {
            Ok(text) => {
                for line in text.lines() {
                    if let Some((label, v)) = parse::sockstat_value(line, "inuse") {
                        let slot = match label {
                            "TCP6" => values.get_mut(1),
                            "UDP6" => values.get_mut(6),
                            _ => None,
                        };
                        if let Some(Some(total)) = slot {
                            *total = total.saturating_add(v);
                        }
                    }
                }
            }
            Err(Error::Io { source, .. }) if source.kind() == ErrorKind::NotFound => {}
            Err(e) => return Err(e),
        }
        for ((_, _, name), value) in FIELDS.iter().zip(values) {
            if let Some(v) = value {
                out.push(Sample::new(*name, v as f64));
            }
        }
        Ok(())
    }
}
