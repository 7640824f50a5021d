//! CPU time from `/proc/stat` (Diamond's `CPUCollector`, node `cpu`).
//!
//! `total.<state>` and `cpuN.<state>` for user, nice, system, idle, iowait, irq, softirq,
//! steal, guest and guest_nice: the jiffies spent in that state per second of real time,
//! scaled by the kernel's clock ticks to percent of one core. `total` is the kernel's sum over
//! cores (up to 100 x cores) unless `normalize`; `cpu_count` is the number of cores.
//! `simple = true` publishes only `percent` (busy share of user+nice+system+idle).

use std::path::PathBuf;

use super::parse::{self, CPU_FIELDS};
use super::procfile::ProcFile;
use super::{BadInput, clock_ticks_per_second};
use crate::rate::{Clock, CounterTable};
use crate::{Collector, Env, Options, Result, RunContext, Sample};

const STATES: [&str; CPU_FIELDS] =
    ["user", "nice", "system", "idle", "iowait", "irq", "softirq", "steal", "guest", "guest_nice"];

/// The cpu collector.
#[derive(Debug)]
pub struct Cpu {
    stat: ProcFile,
    /// `<proc>/xen`: present on Xen guests, whose kernels (RHBZ 624756) double the idle time.
    xen_dir: PathBuf,
    buf: Vec<u8>,
    percore: bool,
    normalize: bool,
    simple: bool,
    /// `None` until decided (Diamond's auto-detection), or forced by the `xenfix` option.
    xenfix: Option<bool>,
    ticks_per_second: f64,
    clock: Clock,
    counters: CounterTable,
    deltas: Vec<Option<u64>>,
    bad: BadInput,
}

impl Cpu {
    /// Options (Diamond's): `percore` (true), `normalize` (false), `simple` (false), `xenfix`
    /// (unset: detect a Xen guest whose idle time is doubled; true/false to force).
    ///
    /// # Errors
    /// [`Error::BadOption`](crate::Error::BadOption) for a value that is not a boolean.
    pub fn new(opts: &Options, env: &Env) -> Result<Cpu> {
        let xenfix = match opts.get("xenfix") {
            None => None,
            Some(s) if s.trim().eq_ignore_ascii_case("none") => None,
            Some(_) => Some(opts.bool_or("xenfix", false)?),
        };
        Ok(Cpu {
            stat: ProcFile::new(env.proc_root.join("stat")),
            xen_dir: env.proc_root.join("xen"),
            buf: Vec::new(),
            percore: opts.bool_or("percore", true)?,
            normalize: opts.bool_or("normalize", false)?,
            simple: opts.bool_or("simple", false)?,
            xenfix,
            ticks_per_second: clock_ticks_per_second() as f64,
            clock: Clock::new(),
            counters: CounterTable::new(),
            deltas: Vec::new(),
            bad: BadInput::default(),
        })
    }

    /// Overrides the kernel's clock ticks per second (read with `sysconf(_SC_CLK_TCK)`), for
    /// reading a fixture captured on another machine.
    pub fn set_clock_ticks(&mut self, ticks_per_second: u64) -> &mut Cpu {
        self.ticks_per_second = ticks_per_second.max(1) as f64;
        self
    }

    fn fix_xen_idle(&mut self, published: &mut [Sample]) {
        if self.xenfix == Some(false) || !self.xen_dir.is_dir() {
            if self.xenfix.is_none() {
                self.xenfix = Some(false);
            }
            return;
        }
        let cpu0: f64 =
            published.iter().filter(|s| s.name.starts_with("cpu0.")).map(|s| s.value).sum();
        if self.xenfix == Some(true) || cpu0 > 110.0 {
            self.xenfix = Some(true);
            for s in published.iter_mut().filter(|s| s.name.ends_with(".idle")) {
                s.value /= 2.0;
            }
        } else if cpu0 > 0.0 {
            self.xenfix = Some(false);
        }
    }
}

impl Collector for Cpu {
    fn default_path(&self) -> &str {
        "cpu"
    }

    fn collect(&mut self, ctx: &RunContext, out: &mut Vec<Sample>) -> Result<()> {
        let text = self.stat.read(&mut self.buf)?;
        let elapsed = self.clock.tick(ctx.now);
        let start = out.len();
        let cores = text.lines().filter(|l| l.starts_with("cpu") && !l.starts_with("cpu ")).count();
        let mut saw_total = false;
        for line in text.lines().filter(|l| l.starts_with("cpu")) {
            let Some(cpu) = parse::cpu_line(line) else {
                self.bad.note(self.stat.path(), format_args!("bad cpu line {line:?}"));
                continue;
            };
            let total = cpu.name == "cpu";
            saw_total |= total;
            if self.simple {
                if total {
                    // user, nice, system, idle: the four Diamond's `simple` mode compares.
                    self.counters.update("total", &cpu.values[..4], &mut self.deltas);
                    if let [Some(u), Some(n), Some(s), Some(idle)] = self.deltas[..] {
                        let all = u.saturating_add(n).saturating_add(s).saturating_add(idle);
                        if all > 0 {
                            out.push(Sample::new(
                                "percent",
                                100.0 - idle as f64 * 100.0 / all as f64,
                            ));
                        }
                    }
                }
                continue;
            }
            if !total && !self.percore {
                continue;
            }
            let node = if total { "total" } else { cpu.name };
            self.counters.update(node, &cpu.values[..cpu.len], &mut self.deltas);
            let Some(secs) = elapsed else { continue };
            let divisor = if total && self.normalize && cores > 0 { cores as f64 } else { 1.0 };
            for (state, delta) in STATES.iter().zip(&self.deltas) {
                if let Some(d) = delta {
                    let percent = *d as f64 / self.ticks_per_second / secs * 100.0 / divisor;
                    out.push(Sample::new(format!("{node}.{state}"), percent));
                }
            }
        }
        if !saw_total {
            return Err(crate::Error::Malformed {
                path: self.stat.path().to_owned(),
                what: "no `cpu` line".to_owned(),
            });
        }
        self.counters.sweep();
        if !self.simple {
            out.push(Sample::new("cpu_count", cores as f64));
            let published = out.get_mut(start..).unwrap_or_default();
            self.fix_xen_idle(published);
        }
        Ok(())
    }
}
