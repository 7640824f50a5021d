//! Time intervals: Alertmanager's `time_intervals`, for the route's `mute_time_intervals`
//! and `active_time_intervals`.
//!
//! A `[[time_interval]]` section has a `name` and any of `times`, `weekdays`,
//! `days_of_month`, `months`, `years` and `location`. An instant is in the interval when,
//! read as wall-clock time in `location` (an IANA zone, default UTC), it matches every field
//! that is set; a field that is not set matches everything, and a field matches when one of
//! its ranges does. As in Alertmanager:
//!
//! - `times = [{start_time = "09:00", end_time = "17:00"}]`: minutes of the day, the start
//!   inclusive and the end exclusive (`"24:00"` is the end of the day);
//! - `weekdays = ["monday:friday", "sunday"]`, `months = ["january:march", "12"]`,
//!   `years = ["2026:2027"]`: ranges are inclusive, a single value is a range of one, and a
//!   range's start may not come after its end (Sunday is the first day of the week);
//! - `days_of_month = ["1:5", "-3:-1"]`: negative days count from the end of the month
//!   (`-1` is its last day); a range is clamped to the month, and one that starts after the
//!   month's end matches nothing in that month.
//!
//! The fields are read in the zone, so `09:00`–`17:00` in `Europe/Berlin` follows daylight
//! saving time: on the day the clocks change the interval is still 09:00 to 17:00 on the
//! wall clock.

use jiff::Timestamp;
use jiff::tz::TimeZone;
use serde::{Deserialize, Serialize};

/// One `times` entry as written.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawTimeRange {
    /// `HH:MM`, inclusive.
    pub start_time: String,
    /// `HH:MM`, exclusive (`24:00` allowed).
    pub end_time: String,
}

/// A `[[time_interval]]` section as written (what is serialised back).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawTimeInterval {
    /// What routes name in `mute_time_intervals` / `active_time_intervals`.
    pub name: String,
    /// Times of the day.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub times: Vec<RawTimeRange>,
    /// Days of the week.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub weekdays: Vec<String>,
    /// Days of the month (negative: from its end).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub days_of_month: Vec<String>,
    /// Months, by name or number.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub months: Vec<String>,
    /// Years.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub years: Vec<String>,
    /// The IANA time zone the fields are read in (default UTC).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub location: Option<String>,
}

/// A validated time interval.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(try_from = "RawTimeInterval", into = "RawTimeInterval")]
pub struct TimeInterval {
    raw: RawTimeInterval,
    /// Minutes of the day, `[start, end)`.
    times: Vec<(u32, u32)>,
    /// Sunday = 0.
    weekdays: Vec<(i8, i8)>,
    days_of_month: Vec<(i8, i8)>,
    months: Vec<(i8, i8)>,
    years: Vec<(i32, i32)>,
    tz: TimeZone,
}

impl PartialEq for TimeInterval {
    fn eq(&self, other: &TimeInterval) -> bool {
        self.raw == other.raw
    }
}

impl From<TimeInterval> for RawTimeInterval {
    fn from(t: TimeInterval) -> RawTimeInterval {
        t.raw
    }
}

impl TryFrom<RawTimeInterval> for TimeInterval {
    type Error = String;

    fn try_from(raw: RawTimeInterval) -> Result<TimeInterval, String> {
        TimeInterval::new(raw)
    }
}

const WEEKDAYS: [&str; 7] =
    ["sunday", "monday", "tuesday", "wednesday", "thursday", "friday", "saturday"];
const MONTHS: [&str; 12] = [
    "january",
    "february",
    "march",
    "april",
    "may",
    "june",
    "july",
    "august",
    "september",
    "october",
    "november",
    "december",
];

/// `a:b` or `a` into its two ends, each parsed by `one`; the start may not be after the end.
fn range<T: PartialOrd + Copy>(text: &str, one: impl Fn(&str) -> Option<T>) -> Option<(T, T)> {
    let (a, b) = text.split_once(':').unwrap_or((text, text));
    let (a, b) = (one(a.trim())?, one(b.trim())?);
    (a <= b).then_some((a, b))
}

fn named(text: &str, names: &[&str], offset: i8) -> Option<i8> {
    let lower = text.to_ascii_lowercase();
    let i = names.iter().position(|n| *n == lower)?;
    i8::try_from(i).ok().map(|i| i + offset)
}

/// `HH:MM` as minutes of the day (0..=1440).
fn clock(text: &str) -> Option<u32> {
    let (h, m) = text.split_once(':')?;
    if h.is_empty() || h.len() > 2 || m.len() != 2 {
        return None;
    }
    let (h, m): (u32, u32) = (h.parse().ok()?, m.parse().ok()?);
    let minutes = h.checked_mul(60)?.checked_add(m)?;
    (m < 60 && minutes <= 1440).then_some(minutes)
}

impl TimeInterval {
    /// Validates a section.
    ///
    /// # Errors
    ///
    /// A range that does not parse, runs backwards or is out of bounds, or an unknown time
    /// zone; the message names the key in backticks and the value.
    pub fn new(raw: RawTimeInterval) -> Result<TimeInterval, String> {
        if raw.name.trim().is_empty() {
            return Err("`name`: a time interval needs a name".into());
        }
        let mut times = Vec::new();
        for t in &raw.times {
            let (Some(start), Some(end)) = (clock(&t.start_time), clock(&t.end_time)) else {
                return Err(format!(
                    "`times`: {:?} to {:?} is not a time range (\"HH:MM\", 00:00 to 24:00)",
                    t.start_time, t.end_time
                ));
            };
            if start >= end {
                return Err(format!(
                    "`times`: start_time {:?} must be before end_time {:?}",
                    t.start_time, t.end_time
                ));
            }
            times.push((start, end));
        }
        let weekdays = raw
            .weekdays
            .iter()
            .map(|w| {
                range(w, |d| named(d, &WEEKDAYS, 0)).ok_or_else(|| {
                    format!(
                        "`weekdays`: {w:?} is not a weekday or a range like \"monday:friday\" \
                         (inclusive, the week starts on Sunday)"
                    )
                })
            })
            .collect::<Result<Vec<_>, String>>()?;
        let mut days_of_month = Vec::new();
        for d in &raw.days_of_month {
            let day = |s: &str| s.parse::<i8>().ok().filter(|d| *d != 0 && (-31..=31).contains(d));
            let (a, b) = d.split_once(':').unwrap_or((d, d));
            let parsed = day(a.trim()).zip(day(b.trim()));
            // Same signs must run forwards; a negative start with a positive end can't.
            let ok = parsed.filter(|(a, b)| if (*a < 0) == (*b < 0) { a <= b } else { *a > 0 });
            let Some(r) = ok else {
                return Err(format!(
                    "`days_of_month`: {d:?} is not a day or a range like \"1:5\" or \"-3:-1\" \
                     (1 to 31, or -31 to -1 from the month's end)"
                ));
            };
            days_of_month.push(r);
        }
        let months = raw
            .months
            .iter()
            .map(|m| {
                let one = |s: &str| {
                    named(s, &MONTHS, 1)
                        .or_else(|| s.parse::<i8>().ok().filter(|n| (1..=12).contains(n)))
                };
                range(m, one).ok_or_else(|| {
                    format!(
                        "`months`: {m:?} is not a month or a range like \"january:march\" or \"1:3\""
                    )
                })
            })
            .collect::<Result<Vec<_>, String>>()?;
        let years = raw
            .years
            .iter()
            .map(|y| {
                range(y, |s| s.parse::<i32>().ok().filter(|y| (1..=9999).contains(y))).ok_or_else(
                    || format!("`years`: {y:?} is not a year or a range like \"2026:2027\""),
                )
            })
            .collect::<Result<Vec<_>, String>>()?;
        let tz = match &raw.location {
            None => TimeZone::UTC,
            Some(name) => TimeZone::get(name).map_err(|e| {
                format!(
                    "`location`: {name:?} is not a known time zone (like \"Europe/Berlin\"): {e}"
                )
            })?,
        };
        Ok(TimeInterval { raw, times, weekdays, days_of_month, months, years, tz })
    }

    /// Its name.
    pub fn name(&self) -> &str {
        &self.raw.name
    }

    /// The section as written.
    pub fn raw(&self) -> &RawTimeInterval {
        &self.raw
    }

    /// Whether the instant `now` (Unix seconds) is in the interval.
    pub fn contains(&self, now: i64) -> bool {
        let Ok(ts) = Timestamp::from_second(now) else { return false };
        let t = ts.to_zoned(self.tz.clone());
        let minute = u32::try_from(i32::from(t.hour()) * 60 + i32::from(t.minute())).unwrap_or(0);
        let any = |ranges: &[(i8, i8)], v: i8| {
            ranges.is_empty() || ranges.iter().any(|(a, b)| (*a..=*b).contains(&v))
        };
        let in_times =
            self.times.is_empty() || self.times.iter().any(|(a, b)| (*a..*b).contains(&minute));
        let in_days = self.days_of_month.is_empty() || {
            let len = t.days_in_month();
            let day = t.day();
            self.days_of_month.iter().any(|&(a, b)| {
                let abs = |d: i8| if d < 0 { len + d + 1 } else { d };
                let (a, b) = (abs(a), abs(b));
                // A range starting past this month's end matches nothing in it.
                a <= len && (a.max(1)..=b.min(len)).contains(&day)
            })
        };
        let year = i32::from(t.year());
        let in_years =
            self.years.is_empty() || self.years.iter().any(|(a, b)| (*a..=*b).contains(&year));
        in_times
            && in_days
            && in_years
            && any(&self.weekdays, t.weekday().to_sunday_zero_offset())
            && any(&self.months, t.month())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn interval(toml_text: &str) -> TimeInterval {
        let raw: RawTimeInterval = toml::from_str(&format!("name = \"t\"\n{toml_text}")).unwrap();
        TimeInterval::new(raw).unwrap()
    }

    fn at(text: &str) -> i64 {
        text.parse::<Timestamp>().unwrap().as_second()
    }

    #[test]
    fn times_are_start_inclusive_end_exclusive() {
        let t = interval("times = [{start_time = \"09:00\", end_time = \"17:00\"}]");
        assert!(!t.contains(at("2026-03-02T08:59:59Z")));
        assert!(t.contains(at("2026-03-02T09:00:00Z")));
        assert!(t.contains(at("2026-03-02T16:59:59Z")));
        assert!(!t.contains(at("2026-03-02T17:00:00Z")));
        let all_day = interval("times = [{start_time = \"22:00\", end_time = \"24:00\"}]");
        assert!(all_day.contains(at("2026-03-02T23:59:59Z")));
        assert!(!all_day.contains(at("2026-03-03T00:00:00Z")));
    }

    #[test]
    fn weekday_ranges_are_inclusive() {
        let t = interval("weekdays = [\"monday:friday\"]");
        // 2026-03-01 is a Sunday.
        assert!(!t.contains(at("2026-03-01T12:00:00Z")));
        assert!(t.contains(at("2026-03-02T00:00:00Z")), "Monday");
        assert!(t.contains(at("2026-03-06T23:59:59Z")), "Friday");
        assert!(!t.contains(at("2026-03-07T00:00:00Z")), "Saturday");
        let weekend = interval("weekdays = [\"Saturday\", \"sunday\"]");
        assert!(weekend.contains(at("2026-03-07T10:00:00Z")));
        assert!(weekend.contains(at("2026-03-01T10:00:00Z")));
        assert!(!weekend.contains(at("2026-03-04T10:00:00Z")));
    }

    #[test]
    fn days_of_month_count_from_the_end_when_negative() {
        let t = interval("days_of_month = [\"1:5\", \"-3:-1\"]");
        assert!(t.contains(at("2026-02-01T00:00:00Z")));
        assert!(t.contains(at("2026-02-05T23:00:00Z")));
        assert!(!t.contains(at("2026-02-06T00:00:00Z")));
        assert!(!t.contains(at("2026-02-25T12:00:00Z")));
        // February 2026 has 28 days: the last three are 26..28.
        assert!(t.contains(at("2026-02-26T00:00:00Z")));
        assert!(t.contains(at("2026-02-28T23:59:59Z")));
        // March has 31: 28 is not among the last three, 29 is.
        assert!(!t.contains(at("2026-03-28T12:00:00Z")));
        assert!(t.contains(at("2026-03-29T12:00:00Z")));
        // A leap year's February: the 27th is among the last three.
        assert!(t.contains(at("2028-02-27T12:00:00Z")));
        assert!(!t.contains(at("2028-02-26T12:00:00Z")));
        // "1:-1" is the whole month; "30:31" matches nothing in February.
        let whole = interval("days_of_month = [\"1:-1\"]");
        assert!(whole.contains(at("2026-02-14T00:00:00Z")));
        let late = interval("days_of_month = [\"30:31\"]");
        assert!(!late.contains(at("2026-02-28T00:00:00Z")));
        assert!(late.contains(at("2026-01-31T00:00:00Z")));
    }

    #[test]
    fn months_and_years_take_names_numbers_and_ranges() {
        let t = interval("months = [\"january:march\", \"12\"]\nyears = [\"2026:2027\"]");
        assert!(t.contains(at("2026-01-01T00:00:00Z")));
        assert!(t.contains(at("2027-03-31T23:59:59Z")));
        assert!(!t.contains(at("2027-04-01T00:00:00Z")));
        assert!(t.contains(at("2026-12-24T00:00:00Z")));
        assert!(!t.contains(at("2025-12-24T00:00:00Z")));
        assert!(!t.contains(at("2028-01-01T00:00:00Z")));
    }

    #[test]
    fn fields_are_read_in_the_location_across_a_dst_change() {
        let t = interval(
            "times = [{start_time = \"09:00\", end_time = \"17:00\"}]\n\
             weekdays = [\"monday:friday\"]\nlocation = \"Europe/Berlin\"",
        );
        // Friday 27 March 2026, CET (UTC+1): 09:00 local is 08:00Z.
        assert!(!t.contains(at("2026-03-27T07:59:59Z")));
        assert!(t.contains(at("2026-03-27T08:00:00Z")));
        assert!(!t.contains(at("2026-03-27T16:00:00Z")));
        // Monday 30 March, after the change to CEST (UTC+2): 09:00 local is 07:00Z.
        assert!(t.contains(at("2026-03-30T07:00:00Z")));
        assert!(t.contains(at("2026-03-30T14:59:59Z")));
        assert!(!t.contains(at("2026-03-30T15:00:00Z")));
        // On the change day (Sunday 29 March; 02:00 CET becomes 03:00 CEST) a night window
        // 01:00-04:00 on the wall clock lasts two real hours: 00:00Z to 02:00Z.
        let night = interval(
            "times = [{start_time = \"01:00\", end_time = \"04:00\"}]\nlocation = \"Europe/Berlin\"",
        );
        assert!(!night.contains(at("2026-03-28T23:59:59Z")));
        assert!(night.contains(at("2026-03-29T00:00:00Z")));
        assert!(night.contains(at("2026-03-29T01:59:59Z")));
        assert!(!night.contains(at("2026-03-29T02:00:00Z")));
        // The weekday is the zone's: 23:30Z on a Friday is Saturday in Berlin.
        let friday = interval("weekdays = [\"friday\"]\nlocation = \"Europe/Berlin\"");
        assert!(!friday.contains(at("2026-03-27T23:30:00Z")));
        assert!(friday.contains(at("2026-03-27T22:30:00Z")));
    }

    #[test]
    fn bad_values_are_refused_naming_the_key() {
        let bad = |text: &str| {
            let raw: RawTimeInterval = toml::from_str(&format!("name = \"t\"\n{text}")).unwrap();
            TimeInterval::new(raw).unwrap_err()
        };
        assert!(bad("weekdays = [\"friday:monday\"]").starts_with("`weekdays`"));
        assert!(bad("weekdays = [\"funday\"]").starts_with("`weekdays`"));
        assert!(bad("days_of_month = [\"0\"]").starts_with("`days_of_month`"));
        assert!(bad("days_of_month = [\"5:1\"]").starts_with("`days_of_month`"));
        assert!(bad("days_of_month = [\"-1:5\"]").starts_with("`days_of_month`"));
        assert!(bad("days_of_month = [\"32\"]").starts_with("`days_of_month`"));
        assert!(bad("months = [\"march:january\"]").starts_with("`months`"));
        assert!(bad("months = [\"13\"]").starts_with("`months`"));
        assert!(bad("years = [\"2027:2026\"]").starts_with("`years`"));
        assert!(bad("location = \"Mars/Olympus\"").starts_with("`location`"));
        assert!(
            bad("times = [{start_time = \"17:00\", end_time = \"09:00\"}]").starts_with("`times`")
        );
        assert!(
            bad("times = [{start_time = \"9:60\", end_time = \"10:00\"}]").starts_with("`times`")
        );
        assert!(
            bad("times = [{start_time = \"09:00\", end_time = \"24:01\"}]").starts_with("`times`")
        );
        let unknown = toml::from_str::<RawTimeInterval>("name = \"t\"\nweekday = [\"monday\"]");
        assert!(unknown.is_err());
    }
}
