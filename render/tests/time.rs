//! Differential test of `render::time` against graphite-web 1.1.8's `attime.py` and pytz.
//!
//! Every case runs through our code and through the real Python (`/usr/bin/python3`, which can
//! import `graphite`): `parseATTime(spec, tz, now)` for many specifications, zones and "now"s
//! around DST changes, `parseTimeOffset`, pytz's zone lookup and the CSV time format. Results
//! are epoch seconds (as graphite-web's `epoch()` computes them), text, or `E` for an error.
//!
//! Without graphite-web the test prints why and passes, unless `GRAPHITE_REQUIRE_REFERENCE=1`.

mod common;

use std::fmt::Write as _;

use render::time::{TimeZone, format_csv_time, parse_at_time, parse_time_offset};

/// One case per line: `A <spec hex> <zone> <now>`, `O <spec hex>`, `C <ts> <zone>` or
/// `Z <name hex>` (hex `-` is the empty string); one answer per line.
const REFERENCE: &str = r#"
import os, sys, calendar, warnings
os.environ.setdefault('DJANGO_SETTINGS_MODULE', 'graphite.settings')
warnings.simplefilter('ignore')
try:
    import django
    django.setup()
    import pytz
    from datetime import datetime
    from graphite.render.attime import parseATTime, parseTimeOffset
except Exception as e:
    print('cannot import graphite: %r' % (e,), file=sys.stderr)
    sys.exit(3)

def unhex(s): return '' if s == '-' else bytes.fromhex(s).decode('utf-8')

for line in sys.stdin:
    f = line.split()
    try:
        if f[0] == 'A':
            tz = pytz.timezone(f[2])
            now = datetime.fromtimestamp(int(f[3]), tz)
            r = parseATTime(unhex(f[1]), tz, now)
            print(calendar.timegm(r.astimezone(pytz.utc).timetuple()))
        elif f[0] == 'O':
            td = parseTimeOffset(unhex(f[1]))
            print(td.days * 86400 + td.seconds)
        elif f[0] == 'C':
            print(datetime.fromtimestamp(int(f[1]), pytz.timezone(f[2])).strftime('%Y-%m-%d %H:%M:%S'))
        elif f[0] == 'Z':
            print(pytz.timezone(unhex(f[1])).zone)
    except Exception:
        print('E')
    sys.stdout.flush()
"#;

/// `s` in hex, `-` when empty (the Python side splits lines at spaces).
fn hex(s: &str) -> String {
    if s.is_empty() {
        return "-".into();
    }
    s.bytes().fold(String::new(), |mut out, b| {
        let _ = write!(out, "{b:02x}");
        out
    })
}

/// A case: the line for Python and our answer.
struct Case {
    line: String,
    ours: String,
}

fn answer(r: render::Result<i64>) -> String {
    r.map_or_else(|_| "E".into(), |v| v.to_string())
}

fn at_time(spec: &str, zone: &str, now: i64) -> Case {
    let tz = TimeZone::named(zone).expect("test zones exist");
    Case {
        line: format!("A {} {zone} {now}", hex(spec)),
        ours: answer(parse_at_time(spec, &tz, now)),
    }
}

fn offset(spec: &str) -> Case {
    Case { line: format!("O {}", hex(spec)), ours: answer(parse_time_offset(spec)) }
}

fn run(cases: &[Case]) {
    let input: String = cases.iter().map(|c| format!("{}\n", c.line)).collect();
    let Some(out) = common::run_reference("comparison", REFERENCE, input) else { return };
    let answers: Vec<String> = out.lines().map(String::from).collect();
    assert_eq!(answers.len(), cases.len(), "one answer per case");
    let errors = answers.iter().filter(|a| *a == "E").count();
    eprintln!("{} cases, {errors} of them errors in graphite-web", cases.len());
    let failures: Vec<String> = cases
        .iter()
        .zip(&answers)
        .filter(|(c, want)| &c.ours != *want)
        .map(|(c, want)| {
            format!("{}\n  graphite: {want}\n  ours:     {}", describe(&c.line), c.ours)
        })
        .collect();
    assert!(
        failures.is_empty(),
        "{} of {} differ:\n{}",
        failures.len(),
        cases.len(),
        failures.join("\n")
    );
}

/// The case line with its hex spec decoded, for failure messages.
fn describe(line: &str) -> String {
    let mut fields: Vec<String> = line.split(' ').map(String::from).collect();
    if matches!(fields.first().map(String::as_str), Some("A" | "O" | "Z"))
        && let Some(spec) = fields.get_mut(1)
    {
        let bytes: Vec<u8> = (0..spec.len() / 2)
            .filter_map(|i| u8::from_str_radix(spec.get(2 * i..2 * i + 2)?, 16).ok())
            .collect();
        *spec = format!("{:?}", String::from_utf8_lossy(&bytes));
    }
    fields.join(" ")
}

const ZONES: [&str; 3] = ["UTC", "Europe/Berlin", "America/New_York"];

/// "Now"s: an ordinary Friday, both DST changes in Berlin and New York (just before, inside
/// and just after), a leap day and a year end.
const NOWS: [i64; 11] = [
    1_710_498_030, // 2024-03-15 10:20:30 UTC, a Friday
    1_711_846_800, // 2024-03-31 01:00 UTC: Berlin jumps 02:00 -> 03:00
    1_711_850_400, // 2024-03-31 02:00 UTC
    1_729_989_000, // 2024-10-27 00:30 UTC: 02:30 CEST, first pass
    1_729_992_600, // 2024-10-27 01:30 UTC: 02:30 CET, second pass
    1_710_052_200, // 2024-03-10 06:30 UTC: 01:30 EST, before New York's jump
    1_710_055_800, // 2024-03-10 07:30 UTC: 03:30 EDT
    1_730_611_800, // 2024-11-03 05:30 UTC: 01:30 EDT, first pass
    1_730_615_400, // 2024-11-03 06:30 UTC: 01:30 EST, second pass
    1_709_208_000, // 2024-02-29 12:00 UTC
    1_704_065_400, // 2023-12-31 23:30 UTC
];

/// Specifications covering every form of `parseATTime`.
const SPECS: &[&str] = &[
    "",
    "now",
    "NOW",
    " now ",
    "1700000000",
    "0",
    "20240101",
    "20241301",
    "19000101",
    "20240100",
    "20240229",
    "20230229",
    "99999999999",
    "-1d",
    "-1day",
    "-2days",
    "+1d",
    "1d",
    "now-2h",
    "now - 2 hours",
    "now+30s",
    "-5min",
    "-5minutes",
    "-5m",
    "-5mon",
    "-3months",
    "-1y",
    "-2years",
    "-1w",
    "-2weeks",
    "-1w2d3h",
    "-10000y",
    "-",
    "now-",
    "-5",
    "-1d-2h",
    "now-1d+2h",
    "-1x",
    "midnight",
    "noon",
    "teatime",
    "midnight-1d",
    "midnight+2h30min",
    "noon yesterday",
    "noonyesterday",
    "noon+yesterday",
    "teatime tomorrow",
    "yesterday",
    "today",
    "tomorrow",
    "3pm",
    "3am",
    "11pm",
    "12am",
    "12pm",
    "8am+1d",
    "8am_tomorrow",
    "100am",
    "xam",
    "12:30",
    "12:30pm",
    "12:30am",
    "9:05pm",
    "02:30",
    "2:30am",
    "01:30",
    "23:59",
    "24:00",
    "12:60",
    "9:5",
    "9:",
    "16:00yesterday",
    "10:00_20240101",
    "02:30_20240331",
    "02:30_20241027",
    "02:30_20240310",
    "01:30_20241103",
    "2:30_3/31/2024",
    "01/02/24",
    "1/2/69",
    "1/2/70",
    "1/2/1950",
    "1/2/1850",
    "12/31/1999",
    "2/29/2023",
    "13/01/2024",
    "1/2",
    "jan1",
    "jan 1",
    "january15",
    "feb 14",
    "feb29",
    "feb30",
    "march",
    "mar31",
    "dec 25 + 1d",
    "oct27",
    "monday",
    "mon",
    "tuesday",
    "friday",
    "saturday",
    "sunday",
    "sundae",
    "noon monday",
    "3pm friday",
    "bogus",
    "now_-_1_d",
    "-1,000s",
    "١٧٠٠٠٠٠٠٠٠",
    "-٣d",
];

#[test]
fn matches_attime_on_known_specs() {
    let mut cases = Vec::new();
    for zone in ZONES {
        for now in NOWS {
            for spec in SPECS {
                cases.push(at_time(spec, zone, now));
            }
        }
    }
    run(&cases);
}

#[test]
fn matches_parse_time_offset() {
    let specs = [
        "",
        "1d",
        "-1d",
        "+1d",
        "5min",
        "1h",
        "1H",
        "-2w",
        "3mon",
        "3months",
        "1y",
        "30s",
        "2seconds",
        "1m",
        "-",
        "+",
        "x",
        " 1d",
        "1d ",
        "1d2h",
        "-1d2h",
        "1d-2h",
        "1",
        "d",
        "999999999d",
        "1000000000d",
        "-1000000000d",
        "142857142w",
        "142857143w",
        "24855134y",
        "1min30s",
        "10minutes",
        "2hours",
        "1month",
        "1year",
        "7days",
        "1week",
        "٣d",
    ];
    let cases: Vec<Case> = specs.iter().map(|s| offset(s)).collect();
    run(&cases);
}

#[test]
fn matches_pytz_zone_names_and_csv_times() {
    let names = [
        "UTC",
        "utc",
        "Utc",
        "Europe/Berlin",
        "europe/berlin",
        "AMERICA/NEW_YORK",
        "America/New_York",
        "US/Eastern",
        "GMT",
        "Etc/GMT+5",
        "Etc/GMT_plus_5",
        "Etc/GMT_minus_3",
        "Asia/Kolkata",
        "Australia/Lord_Howe",
        "EST5EDT",
        "Zulu",
        "Mars/Olympus",
        "",
        "Europe",
        "Berlin",
    ];
    let mut cases: Vec<Case> = names
        .iter()
        .map(|n| Case {
            line: format!("Z {}", hex(n)),
            ours: TimeZone::named(n).map_or_else(|| "E".into(), |t| t.name().to_string()),
        })
        .collect();
    for zone in ["UTC", "Europe/Berlin", "America/New_York", "Asia/Kolkata", "Australia/Lord_Howe"]
    {
        let tz = TimeZone::named(zone).expect("zone");
        for ts in NOWS.iter().copied().chain([0, 1, 951_782_400, 4_102_444_800]) {
            cases.push(Case { line: format!("C {ts} {zone}"), ours: format_csv_time(ts, &tz) });
        }
    }
    run(&cases);
}

/// A small xorshift generator, so the random cases are the same on every run.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }

    fn pick<'a>(&mut self, items: &[&'a str]) -> &'a str {
        items[(self.next() % items.len() as u64) as usize]
    }
}

#[test]
fn matches_attime_on_random_specs() {
    let tokens = [
        "now",
        "-",
        "+",
        "1",
        "2",
        "12",
        "30",
        "1d",
        "2h",
        "5min",
        "3mon",
        "1y",
        "w",
        "s",
        ":",
        ":30",
        "am",
        "pm",
        "noon",
        "midnight",
        "teatime",
        "yesterday",
        "today",
        "tomorrow",
        "jan",
        "feb",
        "mon",
        "fri",
        "/",
        "2024",
        "0229",
        "20240331",
        "_",
        " ",
        ",",
    ];
    let mut rng = Rng(0x5851_f42d_4c95_7f2d);
    let mut cases = Vec::new();
    for _ in 0..2500 {
        let n = 1 + rng.next() % 5;
        let spec: String = (0..n).map(|_| rng.pick(&tokens)).collect();
        let zone = rng.pick(&ZONES);
        let now = NOWS[(rng.next() % NOWS.len() as u64) as usize];
        cases.push(at_time(&spec, zone, now));
    }
    run(&cases);
}
