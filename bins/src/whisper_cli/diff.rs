//! `whisper-diff`: compares two files with the same archives.

use std::io::Write;

use clap::Parser;
use whisper::ArchiveDiff;

use super::pynum::optparse_int;
use super::{Io, Tool};
use crate::pyfmt::{self, FloatRepr, JsonStyle, PyValue};

/// Compare two whisper files with the same archives.
#[derive(Debug, Parser)]
#[command(
    name = "whisper-diff",
    override_usage = "whisper-diff [options] path_a path_b",
    infer_long_args = true,
    args_override_self = true
)]
pub struct Diff {
    /// show summary of differences
    #[arg(long)]
    summary: bool,

    /// skip comparison if either value is undefined
    #[arg(long = "ignore-empty")]
    ignore_empty: bool,

    /// print output in simple columns
    #[arg(long)]
    columns: bool,

    /// do not print column headers
    #[arg(long = "no-headers")]
    no_headers: bool,

    /// Unix epoch time of the end of your requested interval (default: None)
    #[arg(long, value_name = "TIMESTAMP", value_parser = optparse_int, allow_hyphen_values = true)]
    until: Option<i64>,

    /// Output results in JSON form
    #[arg(long)]
    json: bool,

    /// The two files
    #[arg(value_name = "path_a path_b")]
    args: Vec<String>,
}

/// Python's `str()` of a value that may be `None`.
fn py_str(v: Option<f64>) -> String {
    v.map_or_else(|| "None".to_string(), |x| FloatRepr(x).to_string())
}

fn print_diffs(
    out: &mut dyn Write,
    diffs: &[ArchiveDiff],
    pretty: bool,
    headers: bool,
) -> std::io::Result<()> {
    if headers {
        if pretty {
            writeln!(
                out,
                "{:>7} {:>11} {:>13} {:>13}",
                "archive", "timestamp", "value_a", "value_b"
            )?;
        } else {
            writeln!(out, "archive timestamp value_a value_b")?;
        }
    }
    for d in diffs {
        if pretty {
            writeln!(
                out,
                "Archive {} ({} of {} datapoints differ)",
                d.archive,
                d.points.len(),
                d.total
            )?;
            writeln!(out, "{:>7} {:>11} {:>13} {:>13}", "", "timestamp", "value_a", "value_b")?;
        }
        for &(t, a, b) in &d.points {
            if pretty {
                writeln!(out, "{:>7} {t:>11} {:>13} {:>13}", "", py_str(a), py_str(b))?;
            } else {
                writeln!(out, "{} {t} {} {}", d.archive, py_str(a), py_str(b))?;
            }
        }
    }
    Ok(())
}

fn print_summary(
    out: &mut dyn Write,
    diffs: &[ArchiveDiff],
    pretty: bool,
    headers: bool,
) -> std::io::Result<()> {
    let row = |out: &mut dyn Write, a: &str, b: &str, c: &str| {
        if pretty { writeln!(out, "{a:>7} {b:>9} {c:>9}") } else { writeln!(out, "{a} {b} {c}") }
    };
    if headers {
        row(out, "archive", "total", "differing")?;
    }
    for d in diffs {
        row(out, &d.archive.to_string(), &d.total.to_string(), &d.points.len().to_string())?;
    }
    Ok(())
}

/// The dict the script dumps, with or without the differing points.
fn json_value(diffs: &[ArchiveDiff], path_a: &str, path_b: &str, points: bool) -> PyValue {
    let archives = diffs
        .iter()
        .map(|d| {
            let mut fields = vec![
                ("archive".to_string(), PyValue::Int(d.archive as i128)),
                ("total".to_string(), PyValue::Int(d.total as i128)),
                ("points".to_string(), PyValue::Int(d.points.len() as i128)),
            ];
            if points {
                let list = d
                    .points
                    .iter()
                    .map(|&(t, a, b)| {
                        PyValue::Dict(vec![
                            ("timestamp".into(), PyValue::Int(t.into())),
                            ("value_a".into(), PyValue::opt_float(a)),
                            ("value_b".into(), PyValue::opt_float(b)),
                        ])
                    })
                    .collect();
                fields.push(("datapoint".to_string(), PyValue::List(list)));
            }
            PyValue::Dict(fields)
        })
        .collect();
    PyValue::Dict(vec![
        ("path_a".into(), PyValue::Str(path_a.into())),
        ("path_b".into(), PyValue::Str(path_b.into())),
        ("archives".into(), PyValue::List(archives)),
    ])
}

impl Tool for Diff {
    fn run(self, io: &mut Io<'_>) -> anyhow::Result<u8> {
        let [path_a, path_b] = self.args.as_slice() else {
            io.print_help::<Diff>()?;
            return Ok(1);
        };
        // `if options.until:` in the script: 0 means no end.
        let until = self.until.filter(|&t| t != 0);
        let diffs = whisper::diff(path_a, path_b, self.ignore_empty, until, io.now_secs())?;
        let out = io.out();
        let (pretty, headers) = (!self.columns, !self.no_headers);
        if self.json {
            let style = JsonStyle {
                indent: Some(2),
                item_separator: ",",
                key_separator: " : ",
                sort_keys: true,
            };
            let value = json_value(&diffs, path_a, path_b, !self.summary);
            writeln!(out, "{}", pyfmt::json_dumps(&value, &style))?;
        } else if self.summary {
            print_summary(out, &diffs, pretty, headers)?;
        } else {
            print_diffs(out, &diffs, pretty, headers)?;
        }
        Ok(0)
    }
}
