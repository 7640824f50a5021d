//! Load average from `/proc/loadavg` (Diamond's `LoadAverageCollector`, node `loadavg`).
//!
//! `01`, `05`, `15`, the same divided by the number of online cpus (`01_normalized`, ...), and
//! `processes_running` / `processes_total` (the `r/t` field). `simple = true` gives `load` and
//! `load_normalized` (the one-minute figures) instead of the six load values.

use super::parse;
use super::procfile::ProcFile;
use crate::{Collector, Env, Error, Options, Result, RunContext, Sample};

/// The loadavg collector.
#[derive(Debug)]
pub struct LoadAverage {
    loadavg: ProcFile,
    /// `<sys>/devices/system/cpu/online`, for the cpu count (Python's `cpu_count()`).
    online: ProcFile,
    buf: Vec<u8>,
    simple: bool,
}

impl LoadAverage {
    /// Options: `simple` (false).
    ///
    /// # Errors
    /// [`Error::BadOption`] for a bad boolean.
    pub fn new(opts: &Options, env: &Env) -> Result<LoadAverage> {
        Ok(LoadAverage {
            loadavg: ProcFile::new(env.proc_root.join("loadavg")),
            online: ProcFile::new(env.sys_root.join("devices/system/cpu/online")),
            buf: Vec::new(),
            simple: opts.bool_or("simple", false)?,
        })
    }
}

impl Collector for LoadAverage {
    fn default_path(&self) -> &str {
        "loadavg"
    }

    fn collect(&mut self, _ctx: &RunContext, out: &mut Vec<Sample>) -> Result<()> {
        let text = self.online.read(&mut self.buf)?;
        let cpus =
            parse::cpu_list_count(text).filter(|&n| n > 0).ok_or_else(|| Error::Malformed {
                path: self.online.path().to_owned(),
                what: format!("not a cpu list: {:?}", text.trim()),
            })? as f64;
        let text = self.loadavg.read(&mut self.buf)?;
        let load = parse::loadavg(text).ok_or_else(|| Error::Malformed {
            path: self.loadavg.path().to_owned(),
            what: format!("expected `1m 5m 15m running/total last_pid`, got {:?}", text.trim()),
        })?;
        if self.simple {
            out.push(Sample::new("load", load.one));
            out.push(Sample::new("load_normalized", load.one / cpus));
        } else {
            for (name, value) in [("01", load.one), ("05", load.five), ("15", load.fifteen)] {
                out.push(Sample::new(name, value));
            }
            for (name, value) in [
                ("01_normalized", load.one),
                ("05_normalized", load.five),
                ("15_normalized", load.fifteen),
            ] {
                out.push(Sample::new(name, value / cpus));
            }
        }
        out.push(Sample::new("processes_running", load.running as f64));
        out.push(Sample::new("processes_total", load.total as f64));
        Ok(())
    }
}
