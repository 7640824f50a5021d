//! The time axis as graphite-web's glyph.py lays it out: a configuration chosen by seconds
//! per pixel (label, minor and major grid spacing and the label format, taken from rrdtool),
//! label and grid times found by rounding the start down to the unit and stepping, and labels
//! printed with `strftime` in the request's time zone.
//!
//! graphite-web does this with pytz-aware datetimes and never re-normalises them: every time
//! on the axis keeps the UTC offset the start had (across a DST change the labels stay on the
//! start's wall clock). Reproduced by working on `epoch + offset at start` throughout.

use crate::format::civil;
use crate::time::TimeZone;

const SEC: i64 = 1;
const MIN: i64 = 60;
const HOUR: i64 = 3_600;
const DAY: i64 = 86_400;

/// graphite-web's `DATE_FORMAT` setting (its default).
const DATE_FORMAT: &str = "%m/%d";

/// One row of glyph.py's `xAxisConfigs`.
#[derive(Clone, Copy, Debug, PartialEq)]
pub(crate) struct XConfig {
    /// The smallest seconds per pixel this row is for.
    seconds: f64,
    pub(crate) minor_unit: i64,
    pub(crate) minor_step: f64,
    pub(crate) major_unit: i64,
    pub(crate) major_step: f64,
    pub(crate) label_unit: i64,
    pub(crate) label_step: f64,
    /// The label format (`DATE_FORMAT` is spliced in).
    format: &'static str,
    /// The longest time range this row is for (unbounded when `None`).
    max_interval: Option<i64>,
}

impl XConfig {
    /// The default label format.
    pub(crate) fn format(&self) -> String {
        self.format.replace("{DATE}", DATE_FORMAT)
    }
}

macro_rules! xc {
    ($s:expr, $mu:expr, $ms:expr, $Mu:expr, $Ms:expr, $lu:expr, $ls:expr, $f:expr, $max:expr) => {
        XConfig {
            seconds: $s,
            minor_unit: $mu,
            minor_step: $ms,
            major_unit: $Mu,
            major_step: $Ms,
            label_unit: $lu,
            label_step: $ls,
            format: $f,
            max_interval: $max,
        }
    };
}

/// glyph.py's `xAxisConfigs`, in order.
const CONFIGS: &[XConfig] = &[
    xc!(0.00, SEC, 5.0, MIN, 1.0, SEC, 5.0, "%H:%M:%S", Some(10 * MIN)),
    xc!(0.07, SEC, 10.0, MIN, 1.0, SEC, 10.0, "%H:%M:%S", Some(20 * MIN)),
    xc!(0.14, SEC, 15.0, MIN, 1.0, SEC, 15.0, "%H:%M:%S", Some(30 * MIN)),
    xc!(0.27, SEC, 30.0, MIN, 2.0, MIN, 1.0, "%H:%M", Some(2 * HOUR)),
    xc!(0.5, MIN, 1.0, MIN, 2.0, MIN, 1.0, "%H:%M", Some(2 * HOUR)),
    xc!(1.2, MIN, 1.0, MIN, 4.0, MIN, 2.0, "%H:%M", Some(3 * HOUR)),
    xc!(2.0, MIN, 1.0, MIN, 10.0, MIN, 5.0, "%H:%M", Some(6 * HOUR)),
    xc!(5.0, MIN, 2.0, MIN, 10.0, MIN, 10.0, "%H:%M", Some(12 * HOUR)),
    xc!(10.0, MIN, 5.0, MIN, 20.0, MIN, 20.0, "%H:%M", Some(DAY)),
    xc!(30.0, MIN, 10.0, HOUR, 1.0, HOUR, 1.0, "%H:%M", Some(2 * DAY)),
    xc!(60.0, MIN, 30.0, HOUR, 2.0, HOUR, 2.0, "%H:%M", Some(2 * DAY)),
    xc!(100.0, HOUR, 2.0, HOUR, 4.0, HOUR, 4.0, "%a %H:%M", Some(6 * DAY)),
    xc!(255.0, HOUR, 6.0, HOUR, 12.0, HOUR, 12.0, "{DATE} %H:%M", Some(10 * DAY)),
    xc!(600.0, HOUR, 6.0, DAY, 1.0, DAY, 1.0, "{DATE}", Some(14 * DAY)),
    xc!(1000.0, HOUR, 12.0, DAY, 1.0, DAY, 1.0, "{DATE}", Some(365 * DAY)),
    xc!(2000.0, DAY, 1.0, DAY, 2.0, DAY, 2.0, "{DATE}", Some(365 * DAY)),
    xc!(4000.0, DAY, 2.0, DAY, 4.0, DAY, 4.0, "{DATE}", Some(365 * DAY)),
    xc!(8000.0, DAY, 3.5, DAY, 7.0, DAY, 7.0, "{DATE}", Some(365 * DAY)),
    xc!(16000.0, DAY, 7.0, DAY, 14.0, DAY, 14.0, "{DATE}", Some(365 * DAY)),
    xc!(32000.0, DAY, 15.0, DAY, 30.0, DAY, 30.0, "{DATE}", Some(365 * DAY)),
    xc!(64000.0, DAY, 30.0, DAY, 60.0, DAY, 60.0, "{DATE} %Y", None),
    xc!(100000.0, DAY, 60.0, DAY, 120.0, DAY, 120.0, "{DATE} %Y", None),
    xc!(120000.0, DAY, 120.0, DAY, 240.0, DAY, 240.0, "{DATE} %Y", None),
];

/// `setupXAxis`: the last configuration whose seconds per pixel fit and whose
/// `maxInterval` covers the time range (the last row when none does).
pub(crate) fn choose(seconds_per_pixel: f64, time_range: i64) -> XConfig {
    CONFIGS
        .iter()
        .rfind(|c| {
            c.seconds <= seconds_per_pixel && c.max_interval.unwrap_or(time_range + 1) >= time_range
        })
        .or(CONFIGS.last())
        .copied()
        .unwrap_or(CONFIGS[0])
}

/// The axis' clock: local time as `epoch + offset`, the offset fixed at the start's.
#[derive(Clone, Debug)]
pub(crate) struct Clock {
    offset: i64,
    abbreviation: String,
}

impl Clock {
    /// The clock of an axis starting at `start` in `tz`.
    pub(crate) fn new(tz: &TimeZone, start: i64) -> Clock {
        let offset = tz.offset_seconds(start);
        let abbreviation = jiff::tz::TimeZone::get(tz.name())
            .ok()
            .and_then(|z| {
                let ts = jiff::Timestamp::from_second(start).ok()?;
                Some(z.to_offset_info(ts).abbreviation().to_string())
            })
            .unwrap_or_else(|| "UTC".to_string());
        Clock { offset, abbreviation }
    }

    /// Local seconds of an epoch.
    pub(crate) fn local(&self, ts: i64) -> i64 {
        ts.saturating_add(self.offset)
    }

    /// `find_x_times`: the first time at or after `start` (local seconds) on a `step` x
    /// `unit` boundary (the start rounded down within its minute, hour or day, then stepped
    /// forward), and the step in seconds.
    pub(crate) fn first_tick(&self, start_local: i64, unit: i64, step: f64) -> (i64, i64) {
        let delta = ((unit as f64) * step) as i64;
        let delta = delta.max(1);
        let (_, _, _, h, mi, s) = civil(start_local);
        let (h, mi, s) = (i64::from(h), i64::from(mi), i64::from(s));
        let step_i = step as i64;
        let day_start = start_local - h * HOUR - mi * MIN - s;
        let mut dt = match unit {
            SEC => start_local - s + (s - s % step_i.max(1)),
            MIN => day_start + h * HOUR + (mi - mi % step_i.max(1)) * MIN,
            HOUR => day_start + (h - h % step_i.max(1)) * HOUR,
            _ => day_start,
        };
        if dt < start_local {
            dt += ((start_local - dt) + delta - 1) / delta * delta;
        }
        (dt, delta)
    }

    /// Python's `datetime.strftime` (glibc's directives, C locale) of local seconds.
    pub(crate) fn strftime(&self, local: i64, format: &str) -> String {
        strftime(local, self.offset, &self.abbreviation, format)
    }
}

const WEEKDAYS: [&str; 7] =
    ["Sunday", "Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday"];
const MONTHS: [&str; 12] = [
    "January",
    "February",
    "March",
    "April",
    "May",
    "June",
    "July",
    "August",
    "September",
    "October",
    "November",
    "December",
];

/// `strftime` over local seconds with the zone's offset and abbreviation, in the C locale.
/// Flags `-` (no padding), `_` (spaces) and `0` (zeros) are honoured as glibc does; an
/// unknown directive is copied as is.
pub(crate) fn strftime(local: i64, offset: i64, zone: &str, format: &str) -> String {
    let (y, mo, d, h, mi, s) = civil(local);
    let days = local.div_euclid(DAY);
    let weekday = (days + 4).rem_euclid(7) as usize; // 1970-01-01 was a Thursday.
    let yday = day_of_year(y, mo, d);
    let hour12 = if h % 12 == 0 { 12 } else { h % 12 };
    let mut out = String::with_capacity(format.len() + 8);
    let mut chars = format.chars().peekable();
    while let Some(c) = chars.next() {
        if c != '%' {
            out.push(c);
            continue;
        }
        let flag = match chars.peek() {
            Some(&f @ ('-' | '_' | '0')) => {
                chars.next();
                Some(f)
            }
            _ => None,
        };
        let Some(spec) = chars.next() else {
            out.push('%');
            if let Some(f) = flag {
                out.push(f);
            }
            break;
        };
        let num = |out: &mut String, v: i64, width: usize, pad: char| {
            let pad = match flag {
                Some('-') => None,
                Some('_') => Some(' '),
                Some('0') => Some('0'),
                _ => Some(pad),
            };
            match pad {
                None => out.push_str(&v.to_string()),
                Some(p) => {
                    let digits = v.abs().to_string();
                    if v < 0 {
                        out.push('-');
                    }
                    for _ in digits.len()..width {
                        out.push(p);
                    }
                    out.push_str(&digits);
                }
            }
        };
        let weekday_name = WEEKDAYS.get(weekday).copied().unwrap_or("Thursday");
        let month_name = MONTHS.get(mo.saturating_sub(1) as usize).copied().unwrap_or("January");
        match spec {
            'a' => out.push_str(&weekday_name[..3]),
            'A' => out.push_str(weekday_name),
            'b' | 'h' => out.push_str(&month_name[..3]),
            'B' => out.push_str(month_name),
            'C' => num(&mut out, y.div_euclid(100), 2, '0'),
            'd' => num(&mut out, i64::from(d), 2, '0'),
            'e' => num(&mut out, i64::from(d), 2, ' '),
            'H' => num(&mut out, i64::from(h), 2, '0'),
            'k' => num(&mut out, i64::from(h), 2, ' '),
            'I' => num(&mut out, i64::from(hour12), 2, '0'),
            'l' => num(&mut out, i64::from(hour12), 2, ' '),
            'j' => num(&mut out, yday, 3, '0'),
            'm' => num(&mut out, i64::from(mo), 2, '0'),
            'M' => num(&mut out, i64::from(mi), 2, '0'),
            'S' => num(&mut out, i64::from(s), 2, '0'),
            'y' => num(&mut out, y.rem_euclid(100), 2, '0'),
            'Y' => num(&mut out, y, 1, '0'),
            'p' => out.push_str(if h < 12 { "AM" } else { "PM" }),
            'P' => out.push_str(if h < 12 { "am" } else { "pm" }),
            'w' => num(&mut out, weekday as i64, 1, '0'),
            'u' => num(&mut out, if weekday == 0 { 7 } else { weekday as i64 }, 1, '0'),
            's' => num(&mut out, local, 1, '0'),
            'z' => {
                let sign = if offset < 0 { '-' } else { '+' };
                let o = offset.abs();
                out.push_str(&format!("{sign}{:02}{:02}", o / HOUR, (o % HOUR) / MIN));
            }
            'Z' => out.push_str(zone),
            'n' => out.push('\n'),
            't' => out.push('\t'),
            '%' => out.push('%'),
            'D' => out.push_str(&strftime(local, offset, zone, "%m/%d/%y")),
            'x' => out.push_str(&strftime(local, offset, zone, "%m/%d/%y")),
            'F' => out.push_str(&strftime(local, offset, zone, "%Y-%m-%d")),
            'T' | 'X' => out.push_str(&strftime(local, offset, zone, "%H:%M:%S")),
            'R' => out.push_str(&strftime(local, offset, zone, "%H:%M")),
            'r' => out.push_str(&strftime(local, offset, zone, "%I:%M:%S %p")),
            'c' => out.push_str(&strftime(local, offset, zone, "%a %b %e %H:%M:%S %Y")),
            other => {
                out.push('%');
                if let Some(f) = flag {
                    out.push(f);
                }
                out.push(other);
            }
        }
    }
    out
}

fn day_of_year(y: i64, mo: u32, d: u32) -> i64 {
    const CUMULATIVE: [i64; 12] = [0, 31, 59, 90, 120, 151, 181, 212, 243, 273, 304, 334];
    let leap = (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;
    let before = CUMULATIVE.get(mo.saturating_sub(1) as usize).copied().unwrap_or(0);
    before + i64::from(d) + i64::from(leap && mo > 2)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn config_by_seconds_per_pixel() {
        // One hour on ~290 pixels: 12.4 s/px -> labels every 20 minutes.
        let c = choose(3600.0 / 290.0, 3600);
        assert_eq!((c.label_unit, c.label_step, c.format()), (MIN, 20.0, "%H:%M".to_string()));
        // A day: 298 s/px -> labels at 00:00 and 12:00 with the date.
        let c = choose(86_400.0 / 290.0, 86_400);
        assert_eq!((c.label_unit, c.label_step, c.format()), (HOUR, 12.0, "%m/%d %H:%M".into()));
        // A year and more: the last row.
        let c = choose(1e9, 400 * DAY);
        assert_eq!(c.format(), "%m/%d %Y");
    }

    #[test]
    fn ticks_round_down_then_step() {
        let clock = Clock::new(&TimeZone::utc(), 0);
        // 22:07:30 with 20-minute labels: first label at 22:20.
        let start = 22 * HOUR + 7 * MIN + 30;
        assert_eq!(clock.first_tick(start, MIN, 20.0), (22 * HOUR + 20 * MIN, 20 * MIN));
        // Days round to midnight, then step by 3.5 days.
        assert_eq!(clock.first_tick(DAY + 5, DAY, 3.5), (DAY + 302_400, 302_400));
        assert_eq!(clock.first_tick(2 * HOUR, HOUR, 2.0), (2 * HOUR, 2 * HOUR));
    }

    #[test]
    fn strftime_c_locale() {
        // 2023-11-14 22:13:20 UTC, a Tuesday.
        let t = 1_700_000_000;
        assert_eq!(strftime(t, 0, "UTC", "%a %H:%M"), "Tue 22:13");
        assert_eq!(strftime(t, 0, "UTC", "%m/%d %Y"), "11/14 2023");
        assert_eq!(strftime(t, 0, "UTC", "%A %B %e %l%p %j %%"), "Tuesday November 14 10PM 318 %");
        assert_eq!(strftime(t, 3600, "CET", "%-d %Z %z %Q"), "14 CET +0100 %Q");
    }
}
