//! `whisper-fill`: fills the gaps of one file with the points of another.

use clap::Parser;

use super::{Io, Tool};

/// Copies data from src in dst, if missing.
#[derive(Debug, Parser)]
#[command(
    name = "whisper-fill",
    override_usage = "whisper-fill [--lock] src dst",
    infer_long_args = true,
    args_override_self = true
)]
pub struct Fill {
    /// Lock whisper files
    #[arg(long)]
    lock: bool,

    /// The file to read, then the file whose gaps are filled
    #[arg(value_name = "src dst")]
    args: Vec<String>,
}

impl Tool for Fill {
    fn run(self, io: &mut Io<'_>) -> anyhow::Result<u8> {
        let [src, dst] = self.args.as_slice() else {
            io.print_help::<Fill>()?;
            return Ok(1);
        };
        // The script passes time.time() itself, a float whose fraction matters.
        whisper::fill(src, dst, io.now(), self.lock)?;
        Ok(0)
    }
}
