//! `whisper-set-aggregation-method`: changes how a file aggregates (and optionally its
//! xFilesFactor).

use clap::Parser;
use whisper::AggregationMethod;

use super::pynum::parse_float;
use super::{Failure, Io, Tool};

/// Change the aggregation method of a whisper file.
#[derive(Debug, Parser)]
#[command(
    name = "whisper-set-aggregation-method",
    override_usage = "whisper-set-aggregation-method path \
                      <average|sum|last|max|min|avg_zero|absmax|absmin> [xFilesFactor]",
    infer_long_args = true,
    args_override_self = true
)]
pub struct SetAggregationMethod {
    /// The whisper file, the new method, and optionally a new xFilesFactor
    #[arg(value_name = "path method [xFilesFactor]")]
    args: Vec<String>,
}

/// Opens `path` for writing; a missing file prints the script's message and help.
/// Returns `None` when the program should exit 1.
pub(crate) fn open_for_update<T: clap::CommandFactory>(
    io: &mut Io<'_>,
    path: &str,
) -> anyhow::Result<Option<whisper::Whisper>> {
    match whisper::OpenOptions::new().write(true).open(path) {
        Ok(file) => Ok(Some(file)),
        Err(whisper::Error::Io { source, .. }) if source.kind() == std::io::ErrorKind::NotFound => {
            io.eprint(&format!("[ERROR] File '{path}' does not exist!\n\n"))?;
            io.print_help::<T>()?;
            Ok(None)
        }
        Err(e) => Err(e.into()),
    }
}

impl Tool for SetAggregationMethod {
    fn run(self, io: &mut Io<'_>) -> anyhow::Result<u8> {
        let [path, method_name, rest @ ..] = self.args.as_slice() else {
            io.print_help::<SetAggregationMethod>()?;
            return Ok(1);
        };
        // The script only takes an xFilesFactor when it is exactly the third argument.
        let xff_text = match rest {
            [xff] => Some(xff),
            _ => None,
        };
        // whisper.py opens the file and reads its header before it checks its arguments.
        let Some(mut file) = open_for_update::<SetAggregationMethod>(io, path)? else {
            return Ok(1);
        };
        let method: AggregationMethod = method_name.parse()?;
        let xff = match xff_text {
            Some(text) => Some(parse_float(text).ok_or_else(|| {
                Failure::error(format!("Invalid xFilesFactor {text}, not a float"))
            })?),
            None => None,
        };
        let (old, _) = file.set_aggregation(Some(method), xff)?;
        writeln!(io.out(), "Updated aggregation method: {path} ({old} -> {method_name})")?;
        Ok(0)
    }
}
