//! `whisper-merge`: copies the points of one file into another with the same archives.

use clap::Parser;

use super::pynum::optparse_int;
use super::{Failure, Io, Tool};

/// Copy the points of one whisper file into another with the same archives.
#[derive(Debug, Parser)]
#[command(
    name = "whisper-merge",
    override_usage = "whisper-merge [options] from_path to_path",
    infer_long_args = true,
    args_override_self = true
)]
pub struct Merge {
    /// Begining of interval, unix timestamp (default: epoch)
    #[arg(long = "from", value_name = "TIMESTAMP", value_parser = optparse_int, allow_hyphen_values = true)]
    from: Option<i64>,

    /// End of interval, unix timestamp (default: now)
    #[arg(long, value_name = "TIMESTAMP", value_parser = optparse_int, allow_hyphen_values = true)]
    until: Option<i64>,

    /// The file to read, then the file to write
    #[arg(value_name = "from_path to_path")]
    args: Vec<String>,
}

impl Tool for Merge {
    fn run(self, io: &mut Io<'_>) -> anyhow::Result<u8> {
        let [from_path, to_path, ..] = self.args.as_slice() else {
            io.print_help::<Merge>()?;
            return Ok(1);
        };
        for path in [from_path, to_path] {
            if !super::exists(path) {
                return Err(Failure::error(format!("File \"{path}\" does not exist!")));
            }
        }
        whisper::merge(from_path, to_path, self.from, self.until, io.now_secs())?;
        Ok(0)
    }
}
