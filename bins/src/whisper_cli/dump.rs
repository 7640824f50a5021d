//! `whisper-dump`: prints the header and every slot of every archive, empty ones included.

use clap::Parser;

use super::{Failure, Io, Tool};
use crate::pyfmt;

/// Print the header and every stored point of a whisper file.
#[derive(Debug, Parser)]
#[command(
    name = "whisper-dump",
    override_usage = "whisper-dump path",
    infer_long_args = true,
    args_override_self = true
)]
pub struct Dump {
    /// Show human-readable timestamps instead of unix times
    #[arg(long)]
    pretty: bool,

    /// Time format to use with --pretty; see time.strftime()
    #[arg(short = 't', long = "time-format", value_name = "FORMAT", allow_hyphen_values = true)]
    time_format: Option<String>,

    /// The whisper file
    path: String,
}

impl Tool for Dump {
    fn run(self, io: &mut Io<'_>) -> anyhow::Result<u8> {
        let path = &self.path;
        if !super::exists(path) {
            return Err(Failure::error(format!("File \"{path}\" does not exist!")));
        }
        let mut file = whisper::OpenOptions::new().open(path)?;
        let header = file.header().clone();
        let out = io.out();

        let mut line = String::with_capacity(256);
        writeln!(out, "Meta data:")?;
        writeln!(out, "  aggregation method: {}", header.aggregation_method())?;
        writeln!(out, "  max retention: {}", header.max_retention())?;
        pyfmt::format_g(&mut line, header.x_files_factor().into(), 0, 6);
        writeln!(out, "  xFilesFactor: {line}")?;
        writeln!(out)?;
        for (i, a) in header.archives().iter().enumerate() {
            writeln!(out, "Archive {i} info:")?;
            writeln!(out, "  offset: {}", a.offset())?;
            writeln!(out, "  seconds per point: {}", a.seconds_per_point())?;
            writeln!(out, "  points: {}", a.points())?;
            writeln!(out, "  retention: {}", a.retention())?;
            writeln!(out, "  size: {}", a.size())?;
            writeln!(out)?;
        }

        // `--pretty -t ''` uses ctime, as the script's `if options.time_format:` does.
        let time_format =
            self.time_format.as_deref().filter(|f| !f.is_empty()).map(pyfmt::Strftime::new);
        // Most slots of a sparse file share timestamp 0: format each distinct time once.
        let mut last_time: Option<u32> = None;
        let mut time_text = String::new();
        for i in 0..header.archives().len() {
            writeln!(out, "Archive {i} data:")?;
            let slots = file.archive_slots(i)?;
            for (slot, &(timestamp, value)) in slots.iter().enumerate() {
                line.clear();
                if self.pretty {
                    if last_time != Some(timestamp) {
                        time_text.clear();
                        match &time_format {
                            Some(f) => f.append(&mut time_text, timestamp.into()),
                            None => pyfmt::format_ctime(&mut time_text, timestamp.into()),
                        }
                        last_time = Some(timestamp);
                    }
                    use std::fmt::Write as _;
                    let _ = write!(line, "{slot}: {time_text}, ");
                } else {
                    use std::fmt::Write as _;
                    let _ = write!(line, "{slot}: {timestamp}, ");
                }
                pyfmt::format_g(&mut line, value, 10, 35);
                line.push('\n');
                out.write_all(line.as_bytes())?;
            }
        }
        Ok(0)
    }
}
