//! `whisper-resize`: rewrites a file with new archives, keeping its data.

use std::io::{self, Write};

use clap::Parser;
use whisper::{AggregationMethod, ResizeEvent, ResizeOptions};

use super::pynum::optparse_float;
use super::{Failure, Io, Tool};
use crate::pyfmt;

/// Change the archives of a whisper file, keeping its data.
///
/// timePerPoint and timeToStore specify lengths of time, for example:
///
/// 60:1440      60 seconds per datapoint, 1440 datapoints = 1 day of retention
/// 15m:8        15 minutes per datapoint, 8 datapoints = 2 hours of retention
/// 1h:7d        1 hour per datapoint, 7 days of retention
/// 12h:2y       12 hours per datapoint, 2 years of retention
#[derive(Debug, Parser)]
#[command(
    name = "whisper-resize",
    override_usage = "whisper-resize path timePerPoint:timeToStore [timePerPoint:timeToStore]*",
    verbatim_doc_comment,
    infer_long_args = true,
    args_override_self = true
)]
pub struct Resize {
    /// Change the xFilesFactor
    #[arg(long = "xFilesFactor", value_name = "XFF", value_parser = optparse_float, allow_hyphen_values = true)]
    x_files_factor: Option<f64>,

    /// Change the aggregation function (average, sum, last, max, min, avg_zero, absmax, absmin)
    #[arg(long = "aggregationMethod", value_name = "METHOD", allow_hyphen_values = true)]
    aggregation_method: Option<String>,

    /// Perform a destructive change (accepted and ignored, as by whisper-resize)
    #[arg(long)]
    force: bool,

    /// Create a new database file without removing the existing one
    #[arg(long, value_name = "PATH", allow_hyphen_values = true)]
    newfile: Option<String>,

    /// Delete the .bak file after successful execution
    #[arg(long)]
    nobackup: bool,

    /// Try to aggregate the values to fit the new archive better. Note that this will make
    /// things slower and use more memory.
    #[arg(long)]
    aggregate: bool,

    /// The whisper file, then its new archives
    #[arg(value_name = "path timePerPoint:timeToStore")]
    args: Vec<String>,
}

/// Prints what the script prints for each step of the resize.
fn print_event(out: &mut dyn Write, event: &ResizeEvent<'_>) -> io::Result<()> {
    match event {
        ResizeEvent::Retrieving => writeln!(out, "Retrieving all data from the archives"),
        ResizeEvent::RemovingTemporary(p) => {
            writeln!(out, "Removing previous temporary database file: {}", p.display())
        }
        ResizeEvent::Creating(p) => writeln!(out, "Creating new whisper database: {}", p.display()),
        ResizeEvent::Created(p, size) => writeln!(out, "Created: {} ({size} bytes)", p.display()),
        ResizeEvent::Migrating(true) => writeln!(out, "Migrating data with aggregation..."),
        ResizeEvent::Migrating(false) => writeln!(out, "Migrating data without aggregation..."),
        ResizeEvent::OldTimestamps(ts) => {
            writeln!(out, "oldtimestamps: {}", pyfmt::int_list_repr(ts))
        }
        ResizeEvent::ArchiveWindow(from, until, step) => {
            writeln!(out, "({from},{until},{step})")?;
            let range = pyfmt::range_repr(*from, *until, (*step).into());
            writeln!(out, "timepoints_to_update: {range}")
        }
        ResizeEvent::RenamingOld(p) => writeln!(out, "Renaming old database to: {}", p.display()),
        ResizeEvent::RenamingNew(p) => writeln!(out, "Renaming new database to: {}", p.display()),
        ResizeEvent::RestoringBackup(_) => writeln!(out, "\nOperation failed, restoring backup"),
        ResizeEvent::UnlinkingBackup(p) => writeln!(out, "Unlinking backup: {}", p.display()),
        _ => Ok(()),
    }
}

impl Tool for Resize {
    fn run(self, io: &mut Io<'_>) -> anyhow::Result<u8> {
        let [path, defs @ ..] = self.args.as_slice() else {
            io.print_help::<Resize>()?;
            return Ok(1);
        };
        if defs.is_empty() {
            io.print_help::<Resize>()?;
            return Ok(1);
        }
        if !super::exists(path) {
            io.eprint(&format!("[ERROR] File '{path}' does not exist!\n\n"))?;
            io.print_help::<Resize>()?;
            return Ok(1);
        }
        // whisper.py reads the header (and fails on a corrupt one) before the archives.
        whisper::info(path)?;
        let archives = defs
            .iter()
            .map(|d| whisper::parse_retention_def(d))
            .collect::<Result<Vec<_>, _>>()
            .map_err(Failure::error)?;
        let method = match &self.aggregation_method {
            Some(name) => Some(name.parse::<AggregationMethod>()?),
            None => None,
        };

        let mut options = ResizeOptions::new();
        options
            .x_files_factor(self.x_files_factor)
            .aggregation_method(method)
            .new_file(self.newfile.map(Into::into))
            .keep_backup(!self.nobackup)
            .aggregate(self.aggregate);

        // The library reports each step; print it at once, and keep the first write error
        // (a closed pipe) to return after the resize, which is not interrupted half-way.
        let now = io.now_secs();
        let out = io.out();
        let mut write_error: Option<io::Error> = None;
        let mut restored = false;
        let result = whisper::resize(path.as_ref(), &archives, &options, now, &mut |event| {
            if let ResizeEvent::RestoringBackup(_) = &event {
                restored = true;
            }
            if write_error.is_none()
                && let Err(e) = print_event(out, &event)
            {
                write_error = Some(e);
            }
        });
        if let Some(e) = write_error {
            return Err(e.into());
        }
        if let (Err(e), true) = (&result, restored) {
            return Err(Failure::error(format!(
                "renaming the new file into place failed: {}; the original file was restored",
                super::describe(e)
            )));
        }
        result?;
        Ok(0)
    }
}
