//! Byte and time units with Diamond's spellings.
//!
//! Diamond's `byte_unit` setting is a list (`byte_unit = bit, byte`); each unit yields its own
//! metric whose name carries the unit as written (`byte_avail`, `gigabyte_avail`, `rx_bit`,
//! `rx_MB`). Steps are binary (1024) for every unit, bits included, and a byte is 8 bits: the
//! same table as Diamond's `diamond.convertor.binary`, so converted values match to the bit.

use crate::error::{Error, Result};
use crate::options::Options;

/// One unit of `byte_unit`: how many bits it holds and the spelling used in metric names.
#[derive(Clone, Debug, PartialEq)]
pub struct ByteUnit {
    /// The unit as the user wrote it (`byte`, `GB`, `kilobit`): Diamond names metrics with it.
    name: String,
    /// Bits in one unit.
    bits: f64,
}

/// Diamond's spellings of each unit (case-sensitive, like Diamond) and the unit's size as
/// (is it a byte unit, power of 1024).
const SPELLINGS: &[(&[&str], bool, i32)] = &[
    (&["bit", "b"], false, 0),
    (&["kilobit", "kbit", "Kibit"], false, 1),
    (&["megabit", "Mbit", "Mibit"], false, 2),
    (&["gigabit", "Gbit", "Gibit"], false, 3),
    (&["terabit", "Tbit", "Tibit"], false, 4),
    (&["petabit", "Pbit", "Pibit"], false, 5),
    (&["exabit", "Ebit", "Eibit"], false, 6),
    (&["zettabit", "Zbit", "Zibit"], false, 7),
    (&["yottabit", "Ybit", "Yibit"], false, 8),
    (&["byte", "B"], true, 0),
    (&["kilobyte", "kB", "KiB"], true, 1),
    (&["megabyte", "MB", "MiB", "Mbyte"], true, 2),
    (&["gigabyte", "GB", "GiB"], true, 3),
    (&["terabyte", "TB", "TiB"], true, 4),
    (&["petabyte", "PB", "PiB"], true, 5),
    (&["exabyte", "EB", "EiB"], true, 6),
    (&["zettabyte", "ZB", "ZiB"], true, 7),
    (&["yottabyte", "YB", "YiB"], true, 8),
];

impl ByteUnit {
    /// The unit Diamond spells `spelling`, or `None` for an unknown word.
    pub fn parse(spelling: &str) -> Option<ByteUnit> {
        let (_, is_byte, power) =
            SPELLINGS.iter().find(|(words, _, _)| words.contains(&spelling))?;
        let bits = 1024f64.powi(*power) * if *is_byte { 8.0 } else { 1.0 };
        Some(ByteUnit { name: spelling.to_owned(), bits })
    }

    /// Plain bytes.
    pub fn byte() -> ByteUnit {
        ByteUnit { name: "byte".to_owned(), bits: 8.0 }
    }

    /// The spelling used in metric names (`byte` in `byte_avail`).
    pub fn name(&self) -> &str {
        &self.name
    }

    /// `bytes` bytes expressed in this unit.
    pub fn from_bytes(&self, bytes: f64) -> f64 {
        bytes * 8.0 / self.bits
    }
}

/// The `byte_unit` list of `opts` (comma or whitespace separated, as Diamond accepts both), or
/// `default` when unset.
///
/// # Errors
/// [`Error::BadOption`] for an unknown unit or an empty list.
pub fn byte_units(opts: &Options, default: &[&str]) -> Result<Vec<ByteUnit>> {
    let raw = opts.get("byte_unit");
    let words: Vec<&str> = match raw {
        Some(raw) => {
            raw.split(|c: char| c == ',' || c.is_whitespace()).filter(|w| !w.is_empty()).collect()
        }
        None => default.to_vec(),
    };
    let bad = |reason| Error::BadOption {
        key: "byte_unit".to_owned(),
        value: raw.unwrap_or_default().to_owned(),
        reason,
    };
    if words.is_empty() {
        return Err(bad("expected at least one unit (byte, kilobyte, bit, ...)"));
    }
    words
        .into_iter()
        .map(|w| ByteUnit::parse(w).ok_or_else(|| bad("unknown unit (byte, kB, MB, GB, bit, ...)")))
        .collect()
}

/// A unit of time with Diamond's spellings (`diamond.convertor.time`), for the uptime
/// collector.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum TimeUnit {
    /// 1e-9 s.
    Nanosecond,
    /// 1e-6 s.
    Microsecond,
    /// 1e-3 s.
    Millisecond,
    /// 1 s.
    Second,
    /// 60 s.
    Minute,
    /// 3600 s.
    Hour,
    /// 86400 s.
    Day,
    /// 365 days, as Diamond counts a year.
    Year,
}

impl TimeUnit {
    /// Parses Diamond's spellings, case-insensitively: `s`, `second`, `seconds`, `m`,
    /// `minute(s)`, `h`, `hour(s)`, `d`, `day(s)`, `y`, `year(s)`, `ms`, `us`, `ns` and their
    /// long forms.
    pub fn parse(word: &str) -> Option<TimeUnit> {
        let w = word.trim().to_ascii_lowercase();
        Some(match w.as_str() {
            "ns" | "nanosecond" | "nanoseconds" => TimeUnit::Nanosecond,
            "us" | "microsecond" | "microseconds" => TimeUnit::Microsecond,
            "ms" | "millisecond" | "milliseconds" => TimeUnit::Millisecond,
            "s" | "second" | "seconds" => TimeUnit::Second,
            "m" | "minute" | "minutes" => TimeUnit::Minute,
            "h" | "hour" | "hours" => TimeUnit::Hour,
            "d" | "day" | "days" => TimeUnit::Day,
            "y" | "year" | "years" => TimeUnit::Year,
            _ => return None,
        })
    }

    /// The plural long name (`minutes`), used as the uptime metric's leaf.
    pub fn plural(self) -> &'static str {
        match self {
            TimeUnit::Nanosecond => "nanoseconds",
            TimeUnit::Microsecond => "microseconds",
            TimeUnit::Millisecond => "milliseconds",
            TimeUnit::Second => "seconds",
            TimeUnit::Minute => "minutes",
            TimeUnit::Hour => "hours",
            TimeUnit::Day => "days",
            TimeUnit::Year => "years",
        }
    }

    /// `seconds` expressed in this unit.
    pub fn from_seconds(self, seconds: f64) -> f64 {
        match self {
            TimeUnit::Nanosecond => seconds * 1e9,
            TimeUnit::Microsecond => seconds * 1e6,
            TimeUnit::Millisecond => seconds * 1e3,
            TimeUnit::Second => seconds,
            TimeUnit::Minute => seconds / 60.0,
            TimeUnit::Hour => seconds / 3600.0,
            TimeUnit::Day => seconds / 86400.0,
            TimeUnit::Year => seconds / (86400.0 * 365.0),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn byte_units_step_by_1024_and_a_byte_is_eight_bits() {
        let gb = ByteUnit::parse("gigabyte").unwrap();
        assert_eq!(gb.from_bytes(3.0 * 1024.0 * 1024.0 * 1024.0), 3.0);
        assert_eq!(ByteUnit::parse("bit").unwrap().from_bytes(2.0), 16.0);
        assert_eq!(ByteUnit::parse("kbit").unwrap().from_bytes(128.0), 1.0);
        assert_eq!(ByteUnit::parse("kB").unwrap().from_bytes(2048.0), 2.0);
        assert_eq!(ByteUnit::parse("MB").unwrap().name(), "MB");
        assert_eq!(ByteUnit::byte().from_bytes(5.0), 5.0);
    }

    #[test]
    fn unknown_spellings_are_rejected() {
        assert!(ByteUnit::parse("Gigabyte").is_none(), "Diamond's spellings are case-sensitive");
        assert!(ByteUnit::parse("kb").is_none());
        let opts: Options = [("byte_unit", "byte, furlong")].into_iter().collect();
        let err = byte_units(&opts, &["byte"]).unwrap_err().to_string();
        assert!(err.contains("byte_unit") && err.contains("furlong"), "{err}");
    }

    #[test]
    fn byte_unit_lists_split_on_commas_and_spaces() {
        let opts: Options = [("byte_unit", "bit byte,  gigabyte")].into_iter().collect();
        let names: Vec<String> =
            byte_units(&opts, &[]).unwrap().iter().map(|u| u.name().to_owned()).collect();
        assert_eq!(names, ["bit", "byte", "gigabyte"]);
        let defaults = byte_units(&Options::new(), &["bit", "byte"]).unwrap();
        assert_eq!(defaults.len(), 2);
        let empty: Options = [("byte_unit", " , ")].into_iter().collect();
        assert!(byte_units(&empty, &["byte"]).is_err());
    }

    #[test]
    fn time_units_take_diamonds_spellings() {
        assert_eq!(TimeUnit::parse("M"), Some(TimeUnit::Minute));
        assert_eq!(TimeUnit::parse("hours"), Some(TimeUnit::Hour));
        assert_eq!(TimeUnit::parse("fortnight"), None);
        assert_eq!(TimeUnit::Minute.from_seconds(90.0), 1.5);
        assert_eq!(TimeUnit::Millisecond.from_seconds(2.0), 2000.0);
        assert_eq!(TimeUnit::Day.plural(), "days");
    }
}
