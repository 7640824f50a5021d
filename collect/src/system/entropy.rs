//! Available entropy from `/proc/sys/kernel/random/entropy_avail` (Diamond's
//! `EntropyStatCollector`, node `entropy`): `available`, in bits.

use super::parse;
use super::procfile::ProcFile;
use crate::{Collector, Env, Error, Options, Result, RunContext, Sample};

/// The entropy collector.
#[derive(Debug)]
pub struct Entropy {
    file: ProcFile,
    buf: Vec<u8>,
}

impl Entropy {
    /// No options of its own.
    ///
    /// # Errors
    /// None today; the signature matches the other collectors.
    pub fn new(_opts: &Options, env: &Env) -> Result<Entropy> {
        Ok(Entropy {
            file: ProcFile::new(env.proc_root.join("sys/kernel/random/entropy_avail")),
            buf: Vec::new(),
        })
    }
}

impl Collector for Entropy {
    fn default_path(&self) -> &str {
        "entropy"
    }

    fn collect(&mut self, _ctx: &RunContext, out: &mut Vec<Sample>) -> Result<()> {
        let text = self.file.read(&mut self.buf)?;
        let bits = parse::single_u64(text).ok_or_else(|| Error::Malformed {
            path: self.file.path().to_owned(),
            what: format!("expected one integer, got {:?}", text.trim()),
        })?;
        out.push(Sample::new("available", bits as f64));
        Ok(())
    }
}
