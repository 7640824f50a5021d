//! Uptime from `/proc/uptime` (Diamond's `UptimeCollector`, node `uptime`).
//!
//! `minutes` by default; the `unit` option (Diamond's time spellings: `s`, `seconds`, `h`,
//! `days`...) changes both the value and the leaf (`uptime.hours`).

use super::parse;
use super::procfile::ProcFile;
use crate::units::TimeUnit;
use crate::{Collector, Env, Error, Options, Result, RunContext, Sample};

/// The uptime collector.
#[derive(Debug)]
pub struct Uptime {
    uptime: ProcFile,
    buf: Vec<u8>,
    unit: TimeUnit,
}

impl Uptime {
    /// Options: `unit` (`minutes`).
    ///
    /// # Errors
    /// [`Error::BadOption`] for an unknown unit.
    pub fn new(opts: &Options, env: &Env) -> Result<Uptime> {
        let raw = opts.str_or("unit", "minutes");
        let unit = TimeUnit::parse(raw).ok_or_else(|| Error::BadOption {
            key: "unit".to_owned(),
            value: raw.to_owned(),
            reason: "expected a time unit (seconds, minutes, hours, days, ...)",
        })?;
        Ok(Uptime { uptime: ProcFile::new(env.proc_root.join("uptime")), buf: Vec::new(), unit })
    }
}

impl Collector for Uptime {
    fn default_path(&self) -> &str {
        "uptime"
    }

    fn collect(&mut self, _ctx: &RunContext, out: &mut Vec<Sample>) -> Result<()> {
        let text = self.uptime.read(&mut self.buf)?;
        let secs = parse::uptime_seconds(text).ok_or_else(|| Error::Malformed {
            path: self.uptime.path().to_owned(),
            what: format!("expected seconds since boot, got {:?}", text.trim()),
        })?;
        out.push(Sample::new(self.unit.plural(), self.unit.from_seconds(secs)));
        Ok(())
    }
}
