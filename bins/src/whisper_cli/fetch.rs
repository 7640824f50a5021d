//! `whisper-fetch`: prints the values of a time range, as text or JSON.

use std::fmt::Write as _;

use clap::{Parser, ValueEnum};

use super::pynum::optparse_int;
use super::{Failure, Io, Tool};
use crate::pyfmt;

/// Which values `--drop` removes.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
enum DropValues {
    /// Drop null values
    Nulls,
    /// Drop zero values
    Zeroes,
    /// Drop both null and zero values
    Empty,
}

impl DropValues {
    /// Whether the script keeps `value` (its `_DROP_FUNCTIONS`; NaN is not zero, so it stays).
    fn keeps(self, value: Option<f64>) -> bool {
        match self {
            DropValues::Nulls => value.is_some(),
            DropValues::Zeroes => value != Some(0.0),
            DropValues::Empty => value.is_some_and(|v| v != 0.0),
        }
    }
}

/// Print the values of a whisper file in a time range.
#[derive(Debug, Parser)]
#[command(
    name = "whisper-fetch",
    override_usage = "whisper-fetch [options] path",
    infer_long_args = true,
    args_override_self = true
)]
pub struct Fetch {
    /// Unix epoch time of the beginning of your requested interval (default: 24 hours ago)
    #[arg(long = "from", value_name = "TIMESTAMP", value_parser = optparse_int, allow_hyphen_values = true)]
    from: Option<i64>,

    /// Unix epoch time of the end of your requested interval (default: now)
    #[arg(long, value_name = "TIMESTAMP", value_parser = optparse_int, allow_hyphen_values = true)]
    until: Option<i64>,

    /// Output results in JSON form
    #[arg(long)]
    json: bool,

    /// Show human-readable timestamps instead of unix times
    #[arg(long)]
    pretty: bool,

    /// Time format to use with --pretty; see time.strftime()
    #[arg(short = 't', long = "time-format", value_name = "FORMAT", allow_hyphen_values = true)]
    time_format: Option<String>,

    /// Drop null values, zero values, or both ("empty")
    #[arg(long, value_enum, value_name = "WHAT")]
    drop: Option<DropValues>,

    /// The whisper file
    #[arg(value_name = "path")]
    args: Vec<String>,
}

impl Tool for Fetch {
    fn run(self, io: &mut Io<'_>) -> anyhow::Result<u8> {
        let [path] = self.args.as_slice() else {
            io.print_help::<Fetch>()?;
            return Ok(1);
        };
        let now = io.now_secs();
        let from = self.from.unwrap_or(now - 86400);
        let until = self.until.unwrap_or(now);
        let Some(series) = whisper::fetch(path, from, Some(until), now)? else {
            return Err(Failure::message("No data in selected timerange", 1));
        };
        let mut values = series.values;
        if let Some(drop) = self.drop {
            values.retain(|v| drop.keeps(*v));
        }
        let out = io.out();

        if self.json {
            // The script prints str(values) with None replaced by null: floats stay Python
            // reprs (so NaN prints as nan, which is not JSON; scripts depend on the bytes).
            writeln!(
                out,
                "{{\n    \"start\" : {},\n    \"end\" : {},\n    \"step\" : {},\n    \"values\" : {}\n  }}",
                series.from,
                series.until,
                series.step,
                pyfmt::float_list_repr(&values).replace("None", "null")
            )?;
            return Ok(0);
        }

        // After --drop the timestamps still count up from the start, so they shift (as the
        // script's do).
        let time_format =
            self.time_format.as_deref().filter(|f| !f.is_empty()).map(pyfmt::Strftime::new);
        let mut line = String::with_capacity(128);
        let mut t = series.from;
        for value in values {
            line.clear();
            if self.pretty {
                match &time_format {
                    Some(f) => f.append(&mut line, t),
                    None => pyfmt::format_ctime(&mut line, t),
                }
            } else {
                let _ = write!(line, "{t}");
            }
            line.push('\t');
            match value {
                Some(v) => pyfmt::format_f(&mut line, v, 6),
                None => line.push_str("None"),
            }
            line.push('\n');
            out.write_all(line.as_bytes())?;
            t += i64::from(series.step);
        }
        Ok(0)
    }
}
