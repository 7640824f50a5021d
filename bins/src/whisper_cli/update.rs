//! `whisper-update`: writes points given as `timestamp:value` (`N:value` means now).

use clap::Parser;

use super::pynum::{parse_float, parse_int};
use super::{Failure, Io, Tool};

/// Write points into a whisper file.
#[derive(Debug, Parser)]
#[command(
    name = "whisper-update",
    override_usage = "whisper-update [options] path timestamp:value [timestamp:value]*",
    infer_long_args = true,
    args_override_self = true
)]
pub struct Update {
    /// The whisper file, then the points; a timestamp of N means now
    #[arg(value_name = "path timestamp:value")]
    args: Vec<String>,
}

/// Parses one `timestamp:value` argument the way the script does: every `N:` becomes
/// `<now>:`, the text is split at every `:`, then the timestamp goes through `int()` and the
/// value through `float()`.
pub(crate) fn parse_point(arg: &str, now: i64) -> anyhow::Result<(i64, f64)> {
    let text = arg.replace("N:", &format!("{now}:"));
    let mut parts = text.split(':');
    let (Some(timestamp), Some(value), None) = (parts.next(), parts.next(), parts.next()) else {
        return Err(Failure::error(format!(
            "invalid datapoint '{arg}': expected timestamp:value, such as 1700000000:42 or N:42"
        )));
    };
    let timestamp = parse_int(timestamp, 10).ok_or_else(|| {
        Failure::error(format!(
            "invalid timestamp '{timestamp}' in datapoint '{arg}': not an integer"
        ))
    })?;
    let value = parse_float(value).ok_or_else(|| {
        Failure::error(format!("invalid value '{value}' in datapoint '{arg}': not a number"))
    })?;
    Ok((timestamp, value))
}

impl Tool for Update {
    fn run(self, io: &mut Io<'_>) -> anyhow::Result<u8> {
        let [path, points @ ..] = self.args.as_slice() else {
            io.print_help::<Update>()?;
            return Ok(1);
        };
        if points.is_empty() {
            io.print_help::<Update>()?;
            return Ok(1);
        }
        let now = io.now_secs();
        let points =
            points.iter().map(|p| parse_point(p, now)).collect::<anyhow::Result<Vec<_>>>()?;
        match points.as_slice() {
            // One point goes through update(), which refuses times outside the file.
            [(timestamp, value)] => whisper::update(path, *value, Some(*timestamp), now)?,
            // Several go through update_many(), which drops points older than the file.
            _ => whisper::update_many(path, &points, now)?,
        }
        Ok(0)
    }
}
