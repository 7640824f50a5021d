//! TCP counters from `/proc/net/netstat` (the `TcpExt` table) and `/proc/net/snmp` (the `Tcp`
//! table) (Diamond's `TCPCollector`, node `tcp`).
//!
//! Names as the kernel spells them, filtered by `allowed_names` (Diamond's default list; empty
//! means every one). `CurrEstab` and `MaxConn` are gauges; every other one is a per-second
//! rate.

use super::BadInput;
use super::parse;
use super::procfile::ProcFile;
use crate::rate::{Clock, CounterTable, per_second};
use crate::{Collector, Env, Error, Options, Result, RunContext, Sample};

const DEFAULT_ALLOWED: &[&str] = &[
    "ListenOverflows",
    "ListenDrops",
    "TCPLoss",
    "TCPTimeouts",
    "TCPFastRetrans",
    "TCPLostRetransmit",
    "TCPForwardRetrans",
    "TCPSlowStartRetrans",
    "CurrEstab",
    "TCPAbortOnMemory",
    "TCPBacklogDrop",
    "AttemptFails",
    "EstabResets",
    "InErrs",
    "ActiveOpens",
    "PassiveOpens",
];

const GAUGES: [&str; 2] = ["CurrEstab", "MaxConn"];

/// The tcp collector.
#[derive(Debug)]
pub struct Tcp {
    files: [ProcFile; 2],
    buf: Vec<u8>,
    /// Empty: publish everything.
    allowed: Vec<String>,
    clock: Clock,
    counters: CounterTable,
    deltas: Vec<Option<u64>>,
    bad: BadInput,
}

impl Tcp {
    /// Options: `allowed_names` (Diamond's list of 16; empty for all).
    ///
    /// # Errors
    /// None today; the signature matches the other collectors.
    pub fn new(opts: &Options, env: &Env) -> Result<Tcp> {
        Ok(Tcp {
            files: [
                ProcFile::new(env.proc_root.join("net/netstat")),
                ProcFile::new(env.proc_root.join("net/snmp")),
            ],
            buf: Vec::new(),
            allowed: opts.list_or("allowed_names", DEFAULT_ALLOWED),
            clock: Clock::new(),
            counters: CounterTable::new(),
            deltas: Vec::new(),
            bad: BadInput::default(),
        })
    }
}

impl Collector for Tcp {
    fn default_path(&self) -> &str {
        "tcp"
    }

    fn collect(&mut self, ctx: &RunContext, out: &mut Vec<Sample>) -> Result<()> {
        let elapsed = self.clock.tick(ctx.now);
        for file in &mut self.files {
            let text = file.read(&mut self.buf)?;
            // The first table whose label starts with `Tcp` (TcpExt in netstat, Tcp in snmp),
            // as Diamond reads it: a header line, then its values.
            let mut lines = text.lines();
            let Some(header) = lines.find(|l| l.starts_with("Tcp")) else {
                return Err(Error::Malformed {
                    path: file.path().to_owned(),
                    what: "no Tcp table".to_owned(),
                });
            };
            let row = lines.next().and_then(|values| parse::table_row(header, values)).ok_or_else(
                || Error::Malformed {
                    path: file.path().to_owned(),
                    what: "the Tcp header has no matching line of values".to_owned(),
                },
            )?;
            for (name, raw) in row {
                if !self.allowed.is_empty() && !self.allowed.iter().any(|a| a == name) {
                    continue;
                }
                if GAUGES.contains(&name) {
                    match raw.parse::<i64>() {
                        Ok(v) => out.push(Sample::new(name, v as f64)),
                        Err(_) => self.bad.note(file.path(), format_args!("{name} = {raw:?}")),
                    }
                    continue;
                }
                let Ok(value) = raw.parse::<u64>() else {
                    self.bad.note(file.path(), format_args!("{name} = {raw:?}"));
                    continue;
                };
                self.counters.update(name, &[value], &mut self.deltas);
                if let (Some(secs), Some(d)) = (elapsed, self.deltas.first().copied().flatten()) {
                    out.push(Sample::new(name, per_second(d, secs)));
                }
            }
        }
        Ok(())
    }
}
