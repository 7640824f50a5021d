//! `whisper-set-xfilesfactor`: changes a file's xFilesFactor.

use clap::Parser;

use super::pynum::argparse_float;
use super::set_aggregation_method::open_for_update;
use super::{Io, Tool};
use crate::pyfmt::FloatRepr;

/// Set xFilesFactor for existing whisper file
#[derive(Debug, Parser)]
#[command(
    name = "whisper-set-xfilesfactor",
    infer_long_args = true,
    args_override_self = true,
    allow_negative_numbers = true
)]
pub struct SetXFilesFactor {
    /// path to whisper file
    path: String,

    /// new xFilesFactor, a float between 0 and 1
    #[arg(value_name = "xFilesFactor", value_parser = argparse_float)]
    xff: f64,
}

impl Tool for SetXFilesFactor {
    fn run(self, io: &mut Io<'_>) -> anyhow::Result<u8> {
        let path = &self.path;
        let Some(mut file) = open_for_update::<SetXFilesFactor>(io, path)? else {
            return Ok(1);
        };
        let (_, old) = file.set_aggregation(None, Some(self.xff))?;
        writeln!(
            io.out(),
            "Updated xFilesFactor: {path} ({} -> {})",
            FloatRepr(old.into()),
            FloatRepr(self.xff)
        )?;
        Ok(0)
    }
}
