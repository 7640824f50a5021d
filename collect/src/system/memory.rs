//! Memory from `/proc/meminfo` (Diamond's `MemoryCollector`, node `memory`).
//!
//! The kernel's own key names (`MemFree`, `Cached`, ...) in the first unit of `byte_unit`
//! (bytes by default; the kernel's `kB` is 1024 bytes), plus `MemUsedPercentage` =
//! 100 x (MemTotal - MemAvailable) / MemTotal when the kernel has MemAvailable (3.14+).
//! `detailed = true` publishes every key that has a unit.

use super::BadInput;
use super::parse;
use super::procfile::ProcFile;
use crate::units::{ByteUnit, byte_units};
use crate::{Collector, Env, Options, Result, RunContext, Sample};

/// The keys Diamond publishes without `detailed`.
const KEYS: &[&str] = &[
    "MemTotal",
    "MemFree",
    "MemAvailable",
    "Buffers",
    "Cached",
    "Active",
    "Dirty",
    "Inactive",
    "Shmem",
    "SwapTotal",
    "SwapFree",
    "SwapCached",
    "VmallocTotal",
    "VmallocUsed",
    "VmallocChunk",
    "Committed_AS",
];

/// The memory collector.
#[derive(Debug)]
pub struct Memory {
    meminfo: ProcFile,
    buf: Vec<u8>,
    detailed: bool,
    /// Diamond publishes memory in the first `byte_unit` only (its names carry no unit).
    unit: ByteUnit,
    bad: BadInput,
}

impl Memory {
    /// Options: `detailed` (false), `byte_unit` (`byte`; only the first unit is used).
    ///
    /// # Errors
    /// [`Error::BadOption`](crate::Error::BadOption) for a bad boolean or unit.
    pub fn new(opts: &Options, env: &Env) -> Result<Memory> {
        let unit = byte_units(opts, &["byte"])?.into_iter().next().unwrap_or_else(ByteUnit::byte);
        Ok(Memory {
            meminfo: ProcFile::new(env.proc_root.join("meminfo")),
            buf: Vec::new(),
            detailed: opts.bool_or("detailed", false)?,
            unit,
            bad: BadInput::default(),
        })
    }
}

impl Collector for Memory {
    fn default_path(&self) -> &str {
        "memory"
    }

    fn collect(&mut self, _ctx: &RunContext, out: &mut Vec<Sample>) -> Result<()> {
        let text = self.meminfo.read(&mut self.buf)?;
        let (mut total, mut available) = (None, None);
        let start = out.len();
        for line in text.lines() {
            let Some((key, value, unit)) = parse::meminfo_line(line) else {
                self.bad.note(self.meminfo.path(), format_args!("bad meminfo line {line:?}"));
                continue;
            };
            // Lines without a unit are counts (HugePages_Total); Diamond skips them.
            if unit != Some("kB") {
                continue;
            }
            match key {
                "MemTotal" => total = Some(value),
                "MemAvailable" => available = Some(value),
                _ => {}
            }
            if self.detailed || KEYS.contains(&key) {
                out.push(Sample::new(key, self.unit.from_bytes(value as f64 * 1024.0)));
            }
        }
        if out.len() == start {
            return Err(crate::Error::Malformed {
                path: self.meminfo.path().to_owned(),
                what: "no `Key: value kB` line".to_owned(),
            });
        }
        if let (Some(total), Some(avail)) = (total, available)
            && total > 0
        {
            let used = total.saturating_sub(avail) as f64;
            out.push(Sample::new("MemUsedPercentage", 100.0 * used / total as f64));
        }
        Ok(())
    }
}
