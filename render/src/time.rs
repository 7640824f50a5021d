//! Time handling as graphite-web 1.1.8's `attime.py`: `from`/`until`/`now` specifications
//! ([`parse_at_time`]), interval offsets such as `-1d` or `5min` ([`parse_time_offset`]), and
//! time zones with pytz's names and DST rules ([`TimeZone`]).
//!
//! graphite-web does this with Python `datetime`s and pytz; the quirks that follow from that
//! are reproduced on purpose (graphite-reference §3.3 "Time syntax"), and `tests/time.rs`
//! compares the results with the real `attime.py`:
//!
//! * the specification is lower-cased and loses its `_`, `,` and spaces first;
//! * all digits is an epoch, except eight digits that look like `YYYYMMDD` (year > 1900,
//!   month < 13, day < 32), which are a date;
//! * otherwise the text splits at the first `+` (or, without one, the first `-`) into a
//!   reference and an offset; the offset's units are `s`, `min`, `h`, `d`, `w`, `mon` (30 days)
//!   and `y` (365 days), matched by prefix, so `m` alone is invalid and `3months` is 90 days;
//! * a reference is a time of day (`HH:MM`, `Xam`, `XXpm`, `noon`, `midnight`, `teatime`),
//!   then a day (`yesterday`, `today`, `tomorrow`, `MM/DD/YY[YY]`, `YYYYMMDD`, a month name and
//!   day, a weekday). `12:30pm` is 00:30 (the hour becomes `(12 + 12) % 24`) and `12am` is noon;
//!   two-digit years below 70 are 20xx, and so are four-digit years 1900 to 1969;
//! * day arithmetic (`yesterday`, weekdays) is on the wall clock, and a wall time is placed in
//!   the zone like pytz's `localize(is_dst=False)`: a time skipped by a DST change reads with the
//!   offset from before the change, a repeated time is the later (standard time) instant;
//! * the offset is then added as exact seconds;
//! * every result must lie within Python's `datetime` range (years 1 to 9999), and an offset
//!   within `timedelta`'s (999,999,999 days).
//!
//! Python's `int()` and `str.isdigit()` accept any Unicode decimal digit; so does this module.
//! Where Python would raise, this returns [`Error::Time`] with a message close to Python's.

use jiff::Timestamp;
use jiff::tz::{self, AmbiguousOffset};

use crate::error::{Error, Result};
use crate::parse::digit_value;

const SECONDS_PER_DAY: i64 = 86_400;
/// Seconds from 1970-01-01 to 0001-01-01 00:00:00 (`datetime.min`).
const MIN_WALL_SECONDS: i64 = -62_135_596_800;
/// Seconds from 1970-01-01 to 9999-12-31 23:59:59 (`datetime.max`, whole seconds).
const MAX_WALL_SECONDS: i64 = 253_402_300_799;
/// `timedelta.max.days`.
const MAX_TIMEDELTA_DAYS: i128 = 999_999_999;

const MONTHS: [&str; 12] =
    ["jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec"];
const WEEKDAYS: [&str; 7] = ["sun", "mon", "tue", "wed", "thu", "fri", "sat"];

/// A request's time zone (`tz`): an IANA zone from the database compiled into the binary.
#[derive(Clone, Debug)]
pub struct TimeZone {
    /// The zone's canonical name (`Europe/Berlin`, `UTC`).
    name: String,
    /// The zone's rules.
    tz: tz::TimeZone,
}

impl PartialEq for TimeZone {
    fn eq(&self, other: &TimeZone) -> bool {
        self.name == other.name
    }
}

impl Eq for TimeZone {}

impl TimeZone {
    /// UTC, graphite-web's default TIME_ZONE in Debian's build.
    pub fn utc() -> TimeZone {
        TimeZone { name: "UTC".into(), tz: tz::TimeZone::UTC }
    }

    /// The zone `pytz.timezone(name)` returns, or `None` where pytz raises
    /// `UnknownTimeZoneError` (graphite-web then keeps its default zone).
    ///
    /// As in pytz: any case of `utc` is UTC, other names match case-insensitively, names must
    /// be ASCII, and the old munged forms `_plus_`/`_minus_` stand for `+`/`-`.
    pub fn named(name: &str) -> Option<TimeZone> {
        if name.to_uppercase() == "UTC" {
            return Some(TimeZone::utc());
        }
        if !name.is_ascii() {
            return None;
        }
        let unmunged = name.replace("_plus_", "+").replace("_minus_", "-");
        let tz = tz::db().get(&unmunged).ok()?;
        let name = tz.iana_name().unwrap_or(&unmunged).to_string();
        Some(TimeZone { name, tz })
    }

    /// The zone's name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The offset from UTC, in seconds, in force at epoch second `ts` (0 outside the range the
    /// zone rules cover, years -9999 to 9999).
    pub fn offset_seconds(&self, ts: i64) -> i64 {
        Timestamp::from_second(ts).map_or(0, |t| i64::from(self.tz.to_offset(t).seconds()))
    }

    /// Whether daylight saving time is in force at epoch second `ts`.
    pub fn is_dst(&self, ts: i64) -> bool {
        Timestamp::from_second(ts).is_ok_and(|t| self.tz.to_offset_info(t).dst().is_dst())
    }

    /// The wall-clock time at epoch second `ts`.
    pub fn local_time(&self, ts: i64) -> LocalTime {
        LocalTime::from_wall_seconds(ts.saturating_add(self.offset_seconds(ts)))
    }

    /// The epoch second of a wall-clock time, placed like pytz's `localize(is_dst=False)`
    /// (see the module docs for skipped and repeated times).
    pub fn localize(&self, time: &LocalTime) -> Option<i64> {
        self.localize_wall(time.to_wall_seconds()?).map(|(ts, _)| ts)
    }

    /// [`Self::localize`] on wall seconds; also returns the offset pytz attaches (which, for a
    /// skipped time, is the one from before the change).
    fn localize_wall(&self, wall: i64) -> Option<(i64, i64)> {
        let t = LocalTime::from_wall_seconds(wall);
        let dt = jiff::civil::DateTime::new(
            i16::try_from(t.year).ok()?,
            i8::try_from(t.month).ok()?,
            i8::try_from(t.day).ok()?,
            i8::try_from(t.hour).ok()?,
            i8::try_from(t.minute).ok()?,
            i8::try_from(t.second).ok()?,
            0,
        )
        .ok()?;
        let offset = match self.tz.to_ambiguous_timestamp(dt).offset() {
            AmbiguousOffset::Unambiguous { offset } => offset,
            AmbiguousOffset::Gap { before, .. } => before,
            AmbiguousOffset::Fold { after, .. } => after,
        };
        let offset = i64::from(offset.seconds());
        Some((wall - offset, offset))
    }
}

/// A wall-clock time in some zone, to the second (proleptic Gregorian calendar).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct LocalTime {
    /// The year (1 to 9999 for anything graphite-web can represent).
    pub year: i64,
    /// 1 to 12.
    pub month: i64,
    /// 1 to 31.
    pub day: i64,
    /// 0 to 23.
    pub hour: i64,
    /// 0 to 59.
    pub minute: i64,
    /// 0 to 59.
    pub second: i64,
}

impl LocalTime {
    /// The calendar fields of "wall seconds" (seconds since 1970-01-01 00:00 on the same wall
    /// clock).
    fn from_wall_seconds(wall: i64) -> LocalTime {
        let days = wall.div_euclid(SECONDS_PER_DAY);
        let secs = wall.rem_euclid(SECONDS_PER_DAY);
        let (year, month, day) = civil_from_days(days);
        LocalTime { year, month, day, hour: secs / 3600, minute: secs / 60 % 60, second: secs % 60 }
    }

    /// The inverse of [`Self::from_wall_seconds`]; `None` for invalid fields.
    fn to_wall_seconds(self) -> Option<i64> {
        let valid = (1..=12).contains(&self.month)
            && (1..=days_in_month(self.year, self.month)).contains(&self.day)
            && (0..24).contains(&self.hour)
            && (0..60).contains(&self.minute)
            && (0..60).contains(&self.second)
            && (-100_000..=100_000).contains(&self.year);
        valid.then(|| {
            days_from_civil(self.year, self.month, self.day) * SECONDS_PER_DAY
                + self.hour * 3600
                + self.minute * 60
                + self.second
        })
    }

    /// Day of the week, Sunday = 0 (graphite-web's `weekdays` order).
    fn weekday_from_sunday(self) -> i64 {
        // 1970-01-01 was a Thursday.
        (days_from_civil(self.year, self.month, self.day) + 4).rem_euclid(7)
    }
}

/// Days since 1970-01-01 of a proleptic Gregorian date (Howard Hinnant's algorithm).
fn days_from_civil(year: i64, month: i64, day: i64) -> i64 {
    let y = if month <= 2 { year - 1 } else { year };
    let era = y.div_euclid(400);
    let yoe = y.rem_euclid(400);
    let mp = (month + 9) % 12;
    let doy = (153 * mp + 2) / 5 + day - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

/// The date `days` after 1970-01-01 (inverse of [`days_from_civil`]).
fn civil_from_days(days: i64) -> (i64, i64, i64) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    (yoe + era * 400 + i64::from(month <= 2), month, day)
}

fn is_leap(year: i64) -> bool {
    year % 4 == 0 && (year % 100 != 0 || year % 400 == 0)
}

fn days_in_month(year: i64, month: i64) -> i64 {
    match month {
        2 if is_leap(year) => 29,
        2 => 28,
        4 | 6 | 9 | 11 => 30,
        _ => 31,
    }
}

fn time_error(msg: impl Into<String>) -> Error {
    Error::Time(msg.into())
}

/// Python's `str.isspace` (Rust's `char::is_whitespace` plus the information separators
/// U+001C to U+001F).
fn py_isspace(c: char) -> bool {
    c.is_whitespace() || ('\u{1c}'..='\u{1f}').contains(&c)
}

/// Python's `str.isdigit` on a non-empty string, for the decimal digits `int()` can read.
fn py_isdigit(s: &[char]) -> bool {
    !s.is_empty() && s.iter().all(|&c| digit_value(c).is_some())
}

/// Python's `int(s)`: surrounding whitespace, a sign, decimal digits (single underscores
/// between them allowed).
fn py_int(s: &[char]) -> Result<i128> {
    let invalid = || {
        let text: String = s.iter().collect();
        time_error(format!("invalid literal for int() with base 10: '{text}'"))
    };
    let start = s.iter().position(|&c| !py_isspace(c)).unwrap_or(s.len());
    let end = s.iter().rposition(|&c| !py_isspace(c)).map_or(start, |i| i + 1);
    let mut body = s.get(start..end).unwrap_or_default();
    let negative = body.first() == Some(&'-');
    if matches!(body.first(), Some('-' | '+')) {
        body = body.get(1..).unwrap_or_default();
    }
    if body.is_empty() || body.first() == Some(&'_') || body.last() == Some(&'_') {
        return Err(invalid());
    }
    let mut value: i128 = 0;
    let mut previous_underscore = false;
    for &c in body {
        if c == '_' {
            if previous_underscore {
                return Err(invalid());
            }
            previous_underscore = true;
            continue;
        }
        previous_underscore = false;
        let digit = digit_value(c).ok_or_else(invalid)?;
        value = value
            .checked_mul(10)
            .and_then(|v| v.checked_add(i128::from(digit)))
            .ok_or_else(|| time_error("Python int too large to convert to C int"))?;
    }
    Ok(if negative { -value } else { value })
}

/// Python's `s[a:b]` on characters, clamped like a slice.
fn slice(s: &[char], from: usize, to: usize) -> &[char] {
    let to = to.min(s.len());
    s.get(from.min(to)..to).unwrap_or_default()
}

/// Python's `s.find(needle)`, in characters.
fn find(s: &[char], needle: &str) -> Option<usize> {
    let needle: Vec<char> = needle.chars().collect();
    s.windows(needle.len()).position(|w| w == needle.as_slice())
}

fn starts_with(s: &[char], prefix: &str) -> bool {
    let mut it = s.iter();
    prefix.chars().all(|p| it.next() == Some(&p))
}

fn text(s: &[char]) -> String {
    s.iter().collect()
}

/// Checks that wall seconds fit Python's `datetime`.
fn check_wall(wall: i128) -> Result<i64> {
    i64::try_from(wall)
        .ok()
        .filter(|w| (MIN_WALL_SECONDS..=MAX_WALL_SECONDS).contains(w))
        .ok_or_else(|| time_error("date value out of range"))
}

/// `datetime(year, month, day, hour, minute)` as wall seconds, with Python's validation.
fn make_wall(year: i128, month: i128, day: i128, hour: i128, minute: i128) -> Result<i64> {
    if !(1..=9999).contains(&year) {
        return Err(time_error(format!("year {year} is out of range")));
    }
    if !(1..=12).contains(&month) {
        return Err(time_error("month must be in 1..12"));
    }
    // Both are in range now, so the conversions cannot fail.
    let (year, month) = (year as i64, month as i64);
    if !(1..=i128::from(days_in_month(year, month))).contains(&day) {
        return Err(time_error("day is out of range for month"));
    }
    check_hour_minute(hour, minute)?;
    Ok(days_from_civil(year, month, day as i64) * SECONDS_PER_DAY
        + hour as i64 * 3600
        + minute as i64 * 60)
}

fn check_hour_minute(hour: i128, minute: i128) -> Result<()> {
    if !(0..24).contains(&hour) {
        return Err(time_error("hour must be in 0..23"));
    }
    if !(0..60).contains(&minute) {
        return Err(time_error("minute must be in 0..59"));
    }
    Ok(())
}

/// Parses a time specification (`from`, `until`, `now`, an `at` time of a function) against
/// `now` (epoch seconds) in zone `tz`, as graphite-web's `parseATTime`; returns epoch seconds.
///
/// # Errors
///
/// [`Error::Time`] wherever `parseATTime` raises: an unknown reference or unit, an invalid date,
/// a result outside Python's `datetime` range.
pub fn parse_at_time(spec: &str, tz: &TimeZone, now: i64) -> Result<i64> {
    let trimmed: String = spec.chars().skip_while(|&c| py_isspace(c)).collect();
    let trimmed = trimmed.trim_end_matches(py_isspace);
    let s: Vec<char> =
        trimmed.to_lowercase().chars().filter(|c| !matches!(c, '_' | ',' | ' ')).collect();
    if py_isdigit(&s) {
        let yyyymmdd = s.len() == 8
            && py_int(slice(&s, 0, 4))? > 1900
            && py_int(slice(&s, 4, 6))? < 13
            && py_int(slice(&s, 6, 8))? < 32;
        if !yyyymmdd {
            // `datetime.fromtimestamp(int(s), tz)`.
            let ts = i64::try_from(py_int(&s)?)
                .map_err(|_| time_error("timestamp out of range for platform time_t"))?;
            check_wall(i128::from(ts))?;
            check_wall(i128::from(ts) + i128::from(tz.offset_seconds(ts)))?;
            return Ok(ts);
        }
    }
    let split = s.iter().position(|&c| c == '+').or_else(|| s.iter().position(|&c| c == '-'));
    let (reference, offset) = match split {
        Some(i) => (slice(&s, 0, i), slice(&s, i, s.len())),
        None => (s.as_slice(), &[][..]),
    };
    let (base, base_offset) = parse_time_reference(reference, tz, now)?;
    let delta = time_offset(offset)?;
    // `aware datetime + timedelta` must stay within range in its fixed offset, then
    // `normalize` converts it to the zone's local time, which must be in range too.
    let instant = i128::from(base) + delta;
    check_wall(instant + i128::from(base_offset))?;
    let instant = i64::try_from(instant).map_err(|_| time_error("date value out of range"))?;
    check_wall(i128::from(instant) + i128::from(tz.offset_seconds(instant)))?;
    Ok(instant)
}

/// `parseTimeReference`: the instant and the UTC offset pytz attaches to it.
fn parse_time_reference(reference: &[char], tz: &TimeZone, now: i64) -> Result<(i64, i64)> {
    let now_offset = tz.offset_seconds(now);
    if reference.is_empty() || text(reference) == "now" {
        return Ok((now, now_offset));
    }
    let raw = text(reference);
    let mut r = reference;
    let (mut hour, mut minute): (i128, i128) = (0, 0);

    // HH:MM, optionally followed by am/pm.
    if let Some(i) = find(r, ":").filter(|&i| 0 < i && i < 3) {
        hour = py_int(slice(r, 0, i))?;
        minute = py_int(slice(r, i + 1, i + 3))?;
        r = slice(r, i + 3, r.len());
        if starts_with(r, "am") {
            r = slice(r, 2, r.len());
        } else if starts_with(r, "pm") {
            hour = (hour + 12).rem_euclid(24);
            r = slice(r, 2, r.len());
        }
    }
    // Xam, XXam.
    if let Some(i) = find(r, "am").filter(|&i| 0 < i && i < 3) {
        hour = py_int(slice(r, 0, i))?;
        r = slice(r, i + 2, r.len());
    }
    // Xpm, XXpm.
    if let Some(i) = find(r, "pm").filter(|&i| 0 < i && i < 3) {
        hour = (py_int(slice(r, 0, i))? + 12).rem_euclid(24);
        r = slice(r, i + 2, r.len());
    }
    if starts_with(r, "noon") {
        (hour, minute) = (12, 0);
        r = slice(r, 4, r.len());
    } else if starts_with(r, "midnight") {
        (hour, minute) = (0, 0);
        r = slice(r, 8, r.len());
    } else if starts_with(r, "teatime") {
        (hour, minute) = (16, 0);
        r = slice(r, 7, r.len());
    }

    // `now.replace(hour=, minute=, second=0, microsecond=0, tzinfo=None)`.
    check_hour_minute(hour, minute)?;
    let now_wall = check_wall(i128::from(now) + i128::from(now_offset))?;
    let today = now_wall.div_euclid(SECONDS_PER_DAY) * SECONDS_PER_DAY;
    // Validated above: hour < 24, minute < 60.
    let time_of_day = hour as i64 * 3600 + minute as i64 * 60;
    let mut wall = today + time_of_day;
    let day_shift = |wall: i64, days: i64| check_wall(i128::from(wall) + i128::from(days) * 86_400);

    let name = text(r);
    let first3 = text(slice(r, 0, 3));
    if name == "yesterday" {
        wall = day_shift(wall, -1)?;
    } else if name == "tomorrow" {
        wall = day_shift(wall, 1)?;
    } else if name == "today" {
    } else if r.iter().filter(|&&c| c == '/').count() == 2 {
        // MM/DD/YY[YY]
        let parts: Vec<&[char]> = r.split(|&c| c == '/').collect();
        let [m, d, y] = parts.as_slice() else {
            return Err(time_error(format!("Unknown day reference: {raw}")));
        };
        let (m, d, mut y) = (py_int(m)?, py_int(d)?, py_int(y)?);
        if y < 1900 {
            y += 1900;
        }
        if y < 1970 {
            y += 100;
        }
        wall = make_wall(y, m, d, hour, minute)?;
    } else if r.len() == 8 && py_isdigit(r) {
        // YYYYMMDD
        let year = py_int(slice(r, 0, 4))?;
        let month = py_int(slice(r, 4, 6))?;
        let day = py_int(slice(r, 6, 8))?;
        wall = make_wall(year, month, day, hour, minute)?;
    } else if let Some(month) = MONTHS.iter().position(|m| *m == first3) {
        // Month name and day of month.
        let last2 = slice(r, r.len().saturating_sub(2), r.len());
        let last1 = slice(r, r.len().saturating_sub(1), r.len());
        let day = if py_isdigit(last2) {
            py_int(last2)?
        } else if py_isdigit(last1) {
            py_int(last1)?
        } else {
            return Err(time_error("Day of month required after month name"));
        };
        let year = LocalTime::from_wall_seconds(wall).year;
        wall = make_wall(i128::from(year), month as i128 + 1, day, hour, minute)?;
    } else if let Some(target) = WEEKDAYS.iter().position(|d| *d == first3) {
        // The most recent such weekday, today included.
        let today = LocalTime::from_wall_seconds(wall).weekday_from_sunday();
        let mut back = today - target as i64;
        if back < 0 {
            back += 7;
        }
        wall = day_shift(wall, -back)?;
    } else if !r.is_empty() {
        return Err(time_error(format!("Unknown day reference: {raw}")));
    }
    tz.localize_wall(wall).ok_or_else(|| time_error("date value out of range"))
}

/// Parses an interval such as `5min`, `-1d`, `+2h30min` or `3months` into signed seconds, as
/// graphite-web's `parseTimeOffset` (used by functions for their interval arguments).
///
/// No sign means positive; the sign applies to every part. Units match by prefix: `s`
/// (seconds), `min`, `h`, `d`, `w`, `mon` (30 days), `y` (365 days); `m` alone is invalid.
/// Unlike [`parse_at_time`], nothing is lower-cased or trimmed (as in graphite-web, `1H` is an
/// error). An empty string is zero.
///
/// # Errors
///
/// [`Error::Time`] for a missing number or unit, an unknown unit, a leading character other
/// than a digit or sign, or a total beyond Python's `timedelta` range.
pub fn parse_time_offset(s: &str) -> Result<i64> {
    let chars: Vec<char> = s.chars().collect();
    let total = time_offset(&chars)?;
    i64::try_from(total)
        .map_err(|_| time_error("days=1000000000; must have magnitude <= 999999999"))
}

/// `parseTimeOffset` on characters, in seconds.
fn time_offset(offset: &[char]) -> Result<i128> {
    let Some(&first) = offset.first() else {
        return Ok(0);
    };
    let (sign, mut rest) = if digit_value(first).is_some() {
        (1, offset)
    } else {
        let sign = match first {
            '+' => 1,
            '-' => -1,
            _ => return Err(time_error(format!("Invalid offset: {}", text(offset)))),
        };
        (sign, slice(offset, 1, offset.len()))
    };
    let mut total: i128 = 0;
    while !rest.is_empty() {
        let digits = rest.iter().take_while(|&&c| digit_value(c).is_some()).count();
        let num = py_int(slice(rest, 0, digits))?;
        rest = slice(rest, digits, rest.len());
        let letters = rest.iter().take_while(|c| c.is_alphabetic()).count();
        let unit = slice(rest, 0, letters);
        rest = slice(rest, letters, rest.len());
        let unit_seconds: i128 = if starts_with(unit, "s") {
            1
        } else if starts_with(unit, "min") {
            60
        } else if starts_with(unit, "h") {
            3600
        } else if starts_with(unit, "d") {
            86_400
        } else if starts_with(unit, "w") {
            7 * 86_400
        } else if starts_with(unit, "mon") {
            30 * 86_400
        } else if starts_with(unit, "y") {
            365 * 86_400
        } else {
            return Err(time_error(format!("Invalid offset unit '{}'", text(unit))));
        };
        let part = num
            .checked_mul(unit_seconds)
            .map(|p| sign * p)
            .ok_or_else(|| time_error("Python int too large to convert to C int"))?;
        check_timedelta(part)?;
        total += part;
        check_timedelta(total)?;
    }
    Ok(total)
}

/// Whether `seconds` fits a Python `timedelta` (±999,999,999 days).
fn check_timedelta(seconds: i128) -> Result<()> {
    let days = seconds.div_euclid(i128::from(SECONDS_PER_DAY));
    if (-MAX_TIMEDELTA_DAYS..=MAX_TIMEDELTA_DAYS).contains(&days) {
        Ok(())
    } else {
        Err(time_error(format!("days={days}; must have magnitude <= 999999999")))
    }
}

/// A point's time as graphite-web's CSV output writes it: `YYYY-MM-DD HH:MM:SS` in `tz`.
pub fn format_csv_time(ts: i64, tz: &TimeZone) -> String {
    let t = tz.local_time(ts);
    format!(
        "{:04}-{:02}-{:02} {:02}:{:02}:{:02}",
        t.year, t.month, t.day, t.hour, t.minute, t.second
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    /// 2024-03-15 10:20:30 UTC, a Friday.
    const NOW: i64 = 1_710_498_030;

    fn utc(spec: &str) -> Result<i64> {
        parse_at_time(spec, &TimeZone::utc(), NOW)
    }

    fn at(y: i64, mo: i64, d: i64, h: i64, mi: i64) -> i64 {
        days_from_civil(y, mo, d) * SECONDS_PER_DAY + h * 3600 + mi * 60
    }

    #[test]
    fn civil_conversions_round_trip() {
        for days in [-719_468 - 1000, -1, 0, 1, 59, 60, 365, 10_957, 2_932_896] {
            let (y, m, d) = civil_from_days(days);
            assert_eq!(days_from_civil(y, m, d), days);
        }
        assert_eq!(days_from_civil(1, 1, 1) * SECONDS_PER_DAY, MIN_WALL_SECONDS);
        assert_eq!(at(9999, 12, 31, 23, 59) + 59, MAX_WALL_SECONDS);
    }

    #[test]
    fn reads_epochs_and_the_yyyymmdd_quirk() {
        assert_eq!(utc("1700000000").ok(), Some(1_700_000_000));
        assert_eq!(utc("20240101").ok(), Some(at(2024, 1, 1, 0, 0)));
        // Month 13 is not a date, so it is an epoch.
        assert_eq!(utc("20241301").ok(), Some(20_241_301));
        assert_eq!(utc("19000101").ok(), Some(19_000_101));
        // Day 0 passes the quirk's test, then fails as a date.
        assert!(utc("20240100").is_err());
    }

    #[test]
    fn reads_relative_times() {
        assert_eq!(utc("").ok(), Some(NOW));
        assert_eq!(utc("now").ok(), Some(NOW));
        assert_eq!(utc("-1d").ok(), Some(NOW - 86_400));
        assert_eq!(utc("now-2h").ok(), Some(NOW - 7200));
        assert_eq!(utc("-5min").ok(), Some(NOW - 300));
        assert_eq!(utc("-3months").ok(), Some(NOW - 90 * 86_400));
        assert_eq!(utc("+1y").ok(), Some(NOW + 365 * 86_400));
        assert_eq!(utc("-1w2d").ok(), Some(NOW - 9 * 86_400));
        assert_eq!(utc(" Now - 1 D ").ok(), Some(NOW - 86_400));
        assert_eq!(utc("now-").ok(), Some(NOW));
        assert!(utc("-5m").is_err());
        assert!(utc("-5").is_err());
        assert!(utc("now-1d-2h").is_err());
        assert!(utc("now-1d+2h").is_err());
    }

    #[test]
    fn reads_absolute_references() {
        assert_eq!(utc("midnight").ok(), Some(at(2024, 3, 15, 0, 0)));
        assert_eq!(utc("noon yesterday").ok(), Some(at(2024, 3, 14, 12, 0)));
        assert_eq!(utc("teatime tomorrow").ok(), Some(at(2024, 3, 16, 16, 0)));
        assert_eq!(utc("3pm").ok(), Some(at(2024, 3, 15, 15, 0)));
        assert_eq!(utc("8am+1d").ok(), Some(at(2024, 3, 16, 8, 0)));
        assert_eq!(utc("12:30pm").ok(), Some(at(2024, 3, 15, 0, 30)));
        assert_eq!(utc("12am").ok(), Some(at(2024, 3, 15, 12, 0)));
        assert_eq!(utc("16:00yesterday").ok(), Some(at(2024, 3, 14, 16, 0)));
        assert_eq!(utc("10:00_20240101").ok(), Some(at(2024, 1, 1, 10, 0)));
        assert_eq!(utc("02/29/24").ok(), Some(at(2024, 2, 29, 0, 0)));
        assert_eq!(utc("1/2/69").ok(), Some(at(2069, 1, 2, 0, 0)));
        assert_eq!(utc("1/2/1950").ok(), Some(at(2050, 1, 2, 0, 0)));
        assert_eq!(utc("jan1").ok(), Some(at(2024, 1, 1, 0, 0)));
        assert_eq!(utc("feb 14").ok(), Some(at(2024, 2, 14, 0, 0)));
        assert_eq!(utc("friday").ok(), Some(at(2024, 3, 15, 0, 0)));
        assert_eq!(utc("monday").ok(), Some(at(2024, 3, 11, 0, 0)));
        assert_eq!(utc("saturday").ok(), Some(at(2024, 3, 9, 0, 0)));
        assert!(utc("noon+yesterday").is_err());
        assert!(utc("march").is_err());
        assert!(utc("feb30").is_err());
        assert!(utc("25:00").is_err());
        assert!(utc("bogus").is_err());
    }

    #[test]
    fn places_wall_times_like_pytz() {
        let berlin = TimeZone::named("europe/berlin").expect("zone");
        assert_eq!(berlin.name(), "Europe/Berlin");
        // 2024-03-31 02:30 does not exist in Berlin: read with +01:00.
        let gap = berlin.localize(&LocalTime {
            year: 2024,
            month: 3,
            day: 31,
            hour: 2,
            minute: 30,
            second: 0,
        });
        assert_eq!(gap, Some(at(2024, 3, 31, 1, 30)));
        // 2024-10-27 02:30 happens twice: the later one (+01:00).
        let fold = berlin.localize(&LocalTime {
            year: 2024,
            month: 10,
            day: 27,
            hour: 2,
            minute: 30,
            second: 0,
        });
        assert_eq!(fold, Some(at(2024, 10, 27, 1, 30)));
        assert!(berlin.is_dst(at(2024, 7, 1, 0, 0)));
        assert_eq!(format_csv_time(at(2024, 7, 1, 0, 0), &berlin), "2024-07-01 02:00:00");
    }

    #[test]
    fn names_zones_like_pytz() {
        assert_eq!(TimeZone::named("utc").map(|t| t.name().to_string()).as_deref(), Some("UTC"));
        assert_eq!(
            TimeZone::named("AMERICA/NEW_YORK").map(|t| t.name().to_string()).as_deref(),
            Some("America/New_York")
        );
        assert_eq!(
            TimeZone::named("Etc/GMT_plus_5").map(|t| t.name().to_string()).as_deref(),
            Some("Etc/GMT+5")
        );
        assert!(TimeZone::named("Mars/Olympus").is_none());
        assert!(TimeZone::named("Europe/Berlín").is_none());
    }

    #[test]
    fn parses_offsets() {
        assert_eq!(parse_time_offset("").ok(), Some(0));
        assert_eq!(parse_time_offset("5min").ok(), Some(300));
        assert_eq!(parse_time_offset("-1d").ok(), Some(-86_400));
        assert_eq!(parse_time_offset("+1h30min").ok(), Some(5400));
        assert_eq!(parse_time_offset("2seconds").ok(), Some(2));
        assert!(parse_time_offset("1H").is_err());
        assert!(parse_time_offset("1m").is_err());
        assert!(parse_time_offset(" 1d").is_err());
        assert!(parse_time_offset("d").is_err());
        assert!(parse_time_offset("1000000000d").is_err());
        assert_eq!(parse_time_offset("999999999d").ok(), Some(999_999_999 * 86_400));
    }

    #[test]
    fn rejects_out_of_range_results() {
        assert!(utc("-10000y").is_err());
        assert!(utc("99999999999999").is_err());
        assert!(utc("99999999999999999999999999999999999999999").is_err());
    }

    mod props {
        use super::super::*;
        use proptest::prelude::*;

        proptest! {
            #[test]
            fn never_panics(s in "\\PC{0,24}", now in any::<i64>()) {
                let _ = parse_at_time(&s, &TimeZone::utc(), now);
                let _ = parse_time_offset(&s);
            }

            #[test]
            fn never_panics_on_time_words(
                s in "(now|today|noon|midnight|teatime|[0-9]{1,9}|:|am|pm|/|[+-]|jan|mon|y|d|h|min|s| )*",
                now in any::<i64>(),
            ) {
                let berlin = TimeZone::named("Europe/Berlin").expect("zone");
                let _ = parse_at_time(&s, &berlin, now);
                let _ = format_csv_time(now, &berlin);
            }
        }
    }
}
