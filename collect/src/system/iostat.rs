//! Disk I/O from `/proc/diskstats` (Diamond's `DiskUsageCollector`, node `iostat`).
//!
//! For each device matching `devices` (a regex matched at the start of the name; ram and loop
//! devices never), per interval: the counter deltas `reads, reads_merged, reads_<unit>,
//! reads_milliseconds, writes, writes_merged, writes_<unit>, writes_milliseconds,
//! io_milliseconds, io_milliseconds_weighted, io`, the gauge `io_in_progress`, the rates
//! `reads_per_second, writes_per_second, read_<unit>_per_second, write_<unit>_per_second,
//! read_requests_merged_per_second, write_requests_merged_per_second, iops`, and the derived
//! `average_queue_length, util_percentage, read_await, write_await, await, service_time,
//! average_request_size_<unit>, concurrent_io`. Sectors are `sector_size` (512) bytes.
//! A device with no I/O in the interval is left out unless `send_zero`.

use regex::Regex;

use super::parse;
use super::procfile::ProcFile;
use super::{BadInput, compile_regex, node_leaf};
use crate::rate::{Clock, CounterTable};
use crate::units::{ByteUnit, byte_units};
use crate::{Collector, Env, Error, Options, Result, RunContext, Sample};

const DEFAULT_DEVICES: &str = r"PhysicalDrive[0-9]+$|md[0-9]+$|sd[a-z]+[0-9]*$|x?vd[a-z]+[0-9]*$|disk[0-9]+$|nvme[0-9]+n[0-9]+(p[0-9]+)?$|dm-[0-9]+$";

/// Column of `DiskLine::values` holding the in-flight I/O count, a gauge.
const IN_PROGRESS: usize = 8;

/// The iostat collector.
#[derive(Debug)]
pub struct Iostat {
    diskstats: ProcFile,
    buf: Vec<u8>,
    devices: Regex,
    sector_size: u64,
    send_zero: bool,
    units: Vec<ByteUnit>,
    clock: Clock,
    counters: CounterTable,
    deltas: Vec<Option<u64>>,
    bad: BadInput,
}

impl Iostat {
    /// Options: `devices` (Diamond's regex of sd, vd, xvd, md, dm, nvme, disk and
    /// PhysicalDrive names), `sector_size` (512), `send_zero` (false), `byte_unit` (`byte`).
    ///
    /// # Errors
    /// [`Error::BadOption`] for a bad regex, number, boolean or unit.
    pub fn new(opts: &Options, env: &Env) -> Result<Iostat> {
        let devices =
            compile_regex("devices", &format!("^(?:{})", opts.str_or("devices", DEFAULT_DEVICES)))?;
        let sector_size = opts.u64_or("sector_size", 512)?;
        if sector_size == 0 {
            return Err(Error::BadOption {
                key: "sector_size".to_owned(),
                value: "0".to_owned(),
                reason: "a sector holds at least one byte",
            });
        }
        Ok(Iostat {
            diskstats: ProcFile::new(env.proc_root.join("diskstats")),
            buf: Vec::new(),
            devices,
            sector_size,
            send_zero: opts.bool_or("send_zero", false)?,
            units: byte_units(opts, &["byte"])?,
            clock: Clock::new(),
            counters: CounterTable::new(),
            deltas: Vec::new(),
            bad: BadInput::default(),
        })
    }
}

impl Collector for Iostat {
    fn default_path(&self) -> &str {
        "iostat"
    }

    fn collect(&mut self, ctx: &RunContext, out: &mut Vec<Sample>) -> Result<()> {
        let text = self.diskstats.read(&mut self.buf)?;
        let elapsed = self.clock.tick(ctx.now);
        for line in text.lines() {
            if line.split_ascii_whitespace().count() < 14 {
                // Partition lines of kernels before 2.6.25 carry 4 counters; Diamond skips them.
                continue;
            }
            let Some(disk) = parse::diskstats_line(line) else {
                self.bad.note(self.diskstats.path(), format_args!("bad diskstats line {line:?}"));
                continue;
            };
            if disk.name.starts_with("ram")
                || disk.name.starts_with("loop")
                || !self.devices.is_match(disk.name)
            {
                continue;
            }
            self.counters.update(disk.name, &disk.values, &mut self.deltas);
            let Some(secs) = elapsed else { continue };
            // Every counter needs a delta (in_progress is a gauge and takes its value).
            let mut d = [0f64; 11];
            let mut complete = true;
            for (i, (slot, delta)) in d.iter_mut().zip(&self.deltas).enumerate() {
                match (i, delta) {
                    (IN_PROGRESS, _) => *slot = disk.values[IN_PROGRESS] as f64,
                    (_, Some(v)) => *slot = *v as f64,
                    (_, None) => complete = false,
                }
            }
            if !complete {
                continue;
            }
            let [
                reads,
                reads_merged,
                rsect,
                reads_ms,
                writes,
                writes_merged,
                wsect,
                writes_ms,
                in_progress,
                io_ms,
                io_ms_weighted,
            ] = d;
            let io = reads + writes;
            if io == 0.0 && !self.send_zero {
                continue;
            }
            let sector = self.sector_size as f64;
            let node = disk.name;
            let mut push =
                |leaf: &str, value: f64| out.push(Sample::new(node_leaf(node, leaf), value));
            push("reads", reads);
            push("reads_merged", reads_merged);
            for u in &self.units {
                push(&format!("reads_{}", u.name()), u.from_bytes(rsect * sector));
            }
            push("reads_milliseconds", reads_ms);
            push("writes", writes);
            push("writes_merged", writes_merged);
            for u in &self.units {
                push(&format!("writes_{}", u.name()), u.from_bytes(wsect * sector));
            }
            push("writes_milliseconds", writes_ms);
            push("io_in_progress", in_progress);
            push("io_milliseconds", io_ms);
            push("io_milliseconds_weighted", io_ms_weighted);
            push("read_requests_merged_per_second", reads_merged / secs);
            push("write_requests_merged_per_second", writes_merged / secs);
            let (reads_ps, writes_ps) = (reads / secs, writes / secs);
            push("reads_per_second", reads_ps);
            push("writes_per_second", writes_ps);
            for u in &self.units {
                push(&format!("read_{}_per_second", u.name()), u.from_bytes(rsect * sector) / secs);
                push(
                    &format!("write_{}_per_second", u.name()),
                    u.from_bytes(wsect * sector) / secs,
                );
            }
            let per_io = |v: f64| if io > 0.0 { v / io } else { 0.0 };
            for u in &self.units {
                let bytes = u.from_bytes(rsect * sector) + u.from_bytes(wsect * sector);
                push(&format!("average_request_size_{}", u.name()), per_io(bytes));
            }
            push("io", io);
            push("average_queue_length", io_ms_weighted / secs / 1000.0);
            push("util_percentage", io_ms / secs / 10.0);
            push("read_await", if reads > 0.0 { reads_ms / reads } else { 0.0 });
            push("write_await", if writes > 0.0 { writes_ms / writes } else { 0.0 });
            push("iops", io / secs);
            let service_time = per_io(io_ms);
            push("service_time", service_time);
            push("await", per_io(reads_ms + writes_ms));
            push("concurrent_io", (reads_ps + writes_ps) * service_time / 1000.0);
        }
        self.counters.sweep();
        Ok(())
    }
}
