//! `whisper-create`: creates a file, or estimates the disk space of a retention.

use clap::Parser;
use whisper::{AggregationMethod, Allocation, CreateOptions, Retention};

use super::pynum::optparse_float;
use super::{Failure, Io, Tool};
use crate::pyfmt;

/// Create a whisper file, or estimate the space it needs.
///
/// timePerPoint and timeToStore specify lengths of time, for example:
///
/// 60:1440      60 seconds per datapoint, 1440 datapoints = 1 day of retention
/// 15m:8        15 minutes per datapoint, 8 datapoints = 2 hours of retention
/// 1h:7d        1 hour per datapoint, 7 days of retention
/// 12h:2y       12 hours per datapoint, 2 years of retention
#[derive(Debug, Parser)]
#[command(
    name = "whisper-create",
    override_usage = "whisper-create path timePerPoint:timeToStore [timePerPoint:timeToStore]*\n       \
                      whisper-create --estimate timePerPoint:timeToStore [timePerPoint:timeToStore]*",
    verbatim_doc_comment,
    infer_long_args = true,
    args_override_self = true
)]
pub struct Create {
    /// Fraction of known points needed to propagate to a coarser archive [default: 0.5]
    #[arg(long = "xFilesFactor", value_name = "XFF", value_parser = optparse_float, allow_hyphen_values = true)]
    x_files_factor: Option<f64>,

    /// Function to use when aggregating values (average, sum, last, max, min, avg_zero,
    /// absmax, absmin)
    #[arg(
        long = "aggregationMethod",
        value_name = "METHOD",
        default_value = "average",
        allow_hyphen_values = true
    )]
    aggregation_method: String,

    /// Replace an existing file
    #[arg(long)]
    overwrite: bool,

    /// Don't create a whisper file, estimate storage requirements based on archive definitions
    #[arg(long)]
    estimate: bool,

    /// Create new whisper as sparse file
    #[arg(long)]
    sparse: bool,

    /// Create new whisper and use fallocate
    #[arg(long)]
    fallocate: bool,

    /// The file to create, then its archives
    #[arg(value_name = "path timePerPoint:timeToStore")]
    args: Vec<String>,
}

/// The script's `byte_format`: `%.3f` and a unit, dividing by 1024 up to GB.
fn byte_format(bytes: u128) -> String {
    let mut num = bytes as f64;
    let mut out = String::new();
    for unit in ["bytes", "KB", "MB"] {
        if num < 1024.0 {
            pyfmt::format_f(&mut out, num, 3);
            out.push_str(unit);
            return out;
        }
        num /= 1024.0;
    }
    pyfmt::format_f(&mut out, num, 3);
    out.push_str("GB");
    out
}

fn parse_retention(def: &str) -> anyhow::Result<Retention> {
    whisper::parse_retention_def(def).map_err(Failure::error)
}

fn estimate(io: &mut Io<'_>, args: &[String]) -> anyhow::Result<u8> {
    if args.is_empty() {
        io.print_usage::<Create>()?;
        return Ok(1);
    }
    // One argument with a comma (not first) is a comma-separated list.
    let defs: Vec<&str> = match args {
        [one] if one.find(',').is_some_and(|i| i > 0) => one.split(',').collect(),
        _ => args.iter().map(String::as_str).collect(),
    };
    let out = io.out();
    let mut archives: u128 = 0;
    let mut total_points: u128 = 0;
    for def in defs {
        // Parsed one at a time, as the script's lazy map: earlier lines are already printed
        // when a bad definition stops it.
        let r = parse_retention(def)?;
        writeln!(
            out,
            "Archive {archives}: {} points of {}s precision",
            r.points(),
            r.seconds_per_point()
        )?;
        archives += 1;
        total_points += u128::from(r.points());
    }
    let size = 16 + archives * 12 + total_points * 12;
    let disk_size = size.div_ceil(4096) * 4096;
    writeln!(
        out,
        "\nEstimated Whisper DB Size: {} ({disk_size} bytes on disk with 4k blocks)\n",
        byte_format(size)
    )?;
    for x in [1u128, 5, 10, 50, 100, 500] {
        writeln!(
            out,
            "Estimated storage requirement for {x}k metrics: {}",
            byte_format(x * 1000 * disk_size)
        )?;
    }
    Ok(0)
}

impl Tool for Create {
    fn run(self, io: &mut Io<'_>) -> anyhow::Result<u8> {
        if self.estimate {
            return estimate(io, &self.args);
        }
        let [path, defs @ ..] = self.args.as_slice() else {
            io.print_help::<Create>()?;
            return Ok(1);
        };
        if defs.is_empty() {
            io.print_help::<Create>()?;
            return Ok(1);
        }
        let mut archives =
            defs.iter().map(|d| parse_retention(d)).collect::<Result<Vec<_>, _>>()?;

        // Everything is checked before an existing file is replaced, in whisper.py's order
        // (archives, existing file, method, xFilesFactor), so the first problem gives its
        // message. Unlike the script, a bad option never deletes the old file or leaves an
        // empty new one behind.
        whisper::validate_archive_list(&mut archives).map_err(Failure::error)?;
        let exists = super::exists(path);
        if exists && !self.overwrite {
            return Err(whisper::Error::AlreadyExists { path: path.into() }.into());
        }
        let method: AggregationMethod = self.aggregation_method.parse()?;
        let x_files_factor = self.x_files_factor.unwrap_or(0.5);
        if !(0.0..=1.0).contains(&x_files_factor) {
            return Err(whisper::Error::InvalidXFilesFactor { value: x_files_factor }.into());
        }
        if exists {
            writeln!(io.out(), "Overwriting existing file: {path}")?;
            std::fs::remove_file(path)
                .map_err(|e| Failure::error(pyfmt::os_error(&e, path.as_ref())))?;
        }

        // posix_fallocate wins over sparse, as in whisper.py.
        let allocation = if self.fallocate {
            Allocation::Fallocate
        } else if self.sparse {
            Allocation::Sparse
        } else {
            Allocation::Zeroed
        };
        CreateOptions::new()
            .x_files_factor(x_files_factor)
            .aggregation_method(method)
            .allocation(allocation)
            .create(path, &archives)?;
        let size = std::fs::metadata(path)
            .map_err(|e| Failure::error(pyfmt::os_error(&e, path.as_ref())))?
            .len();
        writeln!(io.out(), "Created: {path} ({size} bytes)")?;
        Ok(0)
    }
}
