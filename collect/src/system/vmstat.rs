//! Paging and swapping rates from `/proc/vmstat` (Diamond's `VMStatCollector`, node
//! `vmstat`): `pgfault`, `pgmajfault`, `pgpgin`, `pgpgout`, `pswpin`, `pswpout`, per second.

use super::BadInput;
use super::parse;
use super::procfile::ProcFile;
use crate::rate::{Clock, CounterTable, per_second};
use crate::{Collector, Env, Error, Options, Result, RunContext, Sample};

const KEYS: [&str; 6] = ["pgfault", "pgmajfault", "pgpgin", "pgpgout", "pswpin", "pswpout"];

/// The vmstat collector.
#[derive(Debug)]
pub struct VmStat {
    vmstat: ProcFile,
    buf: Vec<u8>,
    clock: Clock,
    counters: CounterTable,
    deltas: Vec<Option<u64>>,
    bad: BadInput,
}

impl VmStat {
    /// No options of its own.
    ///
    /// # Errors
    /// None today; the signature matches the other collectors.
    pub fn new(_opts: &Options, env: &Env) -> Result<VmStat> {
        Ok(VmStat {
            vmstat: ProcFile::new(env.proc_root.join("vmstat")),
            buf: Vec::new(),
            clock: Clock::new(),
            counters: CounterTable::new(),
            deltas: Vec::new(),
            bad: BadInput::default(),
        })
    }
}

impl Collector for VmStat {
    fn default_path(&self) -> &str {
        "vmstat"
    }

    fn collect(&mut self, ctx: &RunContext, out: &mut Vec<Sample>) -> Result<()> {
        let text = self.vmstat.read(&mut self.buf)?;
        let elapsed = self.clock.tick(ctx.now);
        let mut found = 0;
        for line in text.lines() {
            let Some((key, value)) = parse::key_value(line) else {
                self.bad.note(self.vmstat.path(), format_args!("bad vmstat line {line:?}"));
                continue;
            };
            let Some(&key) = KEYS.iter().find(|k| **k == key) else { continue };
            found += 1;
            self.counters.update(key, &[value], &mut self.deltas);
            if let (Some(secs), Some(d)) = (elapsed, self.deltas.first().copied().flatten()) {
                out.push(Sample::new(key, per_second(d, secs)));
            }
        }
        if found == 0 {
            return Err(Error::Malformed {
                path: self.vmstat.path().to_owned(),
                what: "none of pgfault, pgmajfault, pgpgin, pgpgout, pswpin, pswpout".to_owned(),
            });
        }
        Ok(())
    }
}
