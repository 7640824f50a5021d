//! Interface counters from `/proc/net/dev` (Diamond's `NetworkCollector`, node `network`).
//!
//! For each interface matching `interfaces` (regex prefixes; with `greedy` anything may
//! follow, without it the name must match whole): `rx_<unit>` and `tx_<unit>` for each
//! `byte_unit` (default `bit, byte`), and `rx_packets, rx_errors, rx_drop, rx_fifo, rx_frame,
//! rx_compressed, rx_multicast, tx_packets, tx_errors, tx_drop, tx_fifo, tx_colls,
//! tx_carrier, tx_compressed`, all per second.
//!
//! Diamond's parser names the last three transmit columns after the receive ones
//! (`tx_frame` holds collisions, `tx_compressed` carrier losses, `tx_multicast` compressed
//! packets); `diamond_tx_names = true` publishes those names for dashboards built on them.

use regex::Regex;

use super::parse;
use super::procfile::ProcFile;
use super::{BadInput, compile_regex, node_leaf};
use crate::rate::{Clock, CounterTable, per_second};
use crate::units::{ByteUnit, byte_units};
use crate::{Collector, Env, Options, Result, RunContext, Sample};

const DEFAULT_INTERFACES: &[&str] = &["eth", "bond", "em", "p1p", "eno", "enp", "ens", "enx"];

/// Leaf names of the 16 columns, in the kernel's order; `None` for the byte columns, which
/// are published once per unit.
const COLUMNS: [Option<&str>; 16] = [
    None,
    Some("rx_packets"),
    Some("rx_errors"),
    Some("rx_drop"),
    Some("rx_fifo"),
    Some("rx_frame"),
    Some("rx_compressed"),
    Some("rx_multicast"),
    None,
    Some("tx_packets"),
    Some("tx_errors"),
    Some("tx_drop"),
    Some("tx_fifo"),
    Some("tx_colls"),
    Some("tx_carrier"),
    Some("tx_compressed"),
];

/// Diamond's names for the transmit columns 13..16.
const DIAMOND_TX: [&str; 3] = ["tx_frame", "tx_compressed", "tx_multicast"];

/// The network collector.
#[derive(Debug)]
pub struct Network {
    dev: ProcFile,
    buf: Vec<u8>,
    interfaces: Regex,
    units: Vec<ByteUnit>,
    diamond_tx_names: bool,
    clock: Clock,
    counters: CounterTable,
    deltas: Vec<Option<u64>>,
    bad: BadInput,
}

impl Network {
    /// Options: `interfaces` (`eth, bond, em, p1p, eno, enp, ens, enx`), `greedy` (true),
    /// `byte_unit` (`bit, byte`), `diamond_tx_names` (false).
    ///
    /// # Errors
    /// [`Error::BadOption`](crate::Error::BadOption) for a bad regex, boolean or unit.
    pub fn new(opts: &Options, env: &Env) -> Result<Network> {
        let alternatives = opts.list_or("interfaces", DEFAULT_INTERFACES).join("|");
        let tail = if opts.bool_or("greedy", true)? { r"\S*" } else { "" };
        let interfaces = compile_regex("interfaces", &format!("^(?:{alternatives}){tail}$"))?;
        Ok(Network {
            dev: ProcFile::new(env.proc_root.join("net/dev")),
            buf: Vec::new(),
            interfaces,
            units: byte_units(opts, &["bit", "byte"])?,
            diamond_tx_names: opts.bool_or("diamond_tx_names", false)?,
            clock: Clock::new(),
            counters: CounterTable::new(),
            deltas: Vec::new(),
            bad: BadInput::default(),
        })
    }
}

impl Collector for Network {
    fn default_path(&self) -> &str {
        "network"
    }

    fn collect(&mut self, ctx: &RunContext, out: &mut Vec<Sample>) -> Result<()> {
        let text = self.dev.read(&mut self.buf)?;
        let elapsed = self.clock.tick(ctx.now);
        // The first two lines are the column headers.
        for line in text.lines().skip(2) {
            let Some((name, values)) = parse::net_dev_line(line) else {
                self.bad.note(self.dev.path(), format_args!("bad interface line {line:?}"));
                continue;
            };
            if !self.interfaces.is_match(name) {
                continue;
            }
            self.counters.update(name, &values, &mut self.deltas);
            let Some(secs) = elapsed else { continue };
            for (i, (column, delta)) in COLUMNS.iter().zip(&self.deltas).enumerate() {
                let Some(d) = *delta else { continue };
                let rate = per_second(d, secs);
                match column {
                    Some(leaf) => {
                        let leaf = match i.checked_sub(13).and_then(|j| DIAMOND_TX.get(j)) {
                            Some(diamond) if self.diamond_tx_names => diamond,
                            _ => leaf,
                        };
                        out.push(Sample::new(node_leaf(name, leaf), rate));
                    }
                    None => {
                        let dir = if i == 0 { "rx" } else { "tx" };
                        for unit in &self.units {
                            let leaf = format!("{dir}_{}", unit.name());
                            out.push(Sample::new(node_leaf(name, &leaf), unit.from_bytes(rate)));
                        }
                    }
                }
            }
        }
        self.counters.sweep();
        Ok(())
    }
}
