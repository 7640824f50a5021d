//! Parsers for the `/proc` formats the system collectors read: small pure functions over
//! borrowed text, no allocation per line (except to unescape an escaped mount point).
//!
//! Each returns `None` for input it cannot use; the collector decides whether that line was
//! expected (and counts it as bad) or just not interesting.

#![warn(clippy::indexing_slicing)]

use std::borrow::Cow;

/// The largest number of time fields of a `cpu` line (user ... guest_nice).
pub(super) const CPU_FIELDS: usize = 10;

/// A `cpu` or `cpuN` line of `/proc/stat`.
#[derive(Debug, PartialEq)]
pub(super) struct CpuLine<'a> {
    /// `cpu` (the sum) or `cpuN`.
    pub name: &'a str,
    /// Jiffies in user, nice, system, idle, iowait, irq, softirq, steal, guest, guest_nice
    /// order; only the first `len` are present (older kernels have fewer).
    pub values: [u64; CPU_FIELDS],
    /// How many of `values` the line had.
    pub len: usize,
}

/// Parses a line starting with `cpu`. Needs at least the four fields every kernel has.
pub(super) fn cpu_line(line: &str) -> Option<CpuLine<'_>> {
    let mut tokens = line.split_ascii_whitespace();
    let name = tokens.next().filter(|n| n.starts_with("cpu"))?;
    let digits = name.get(3..)?;
    if !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let mut values = [0u64; CPU_FIELDS];
    let mut len = 0;
    for (slot, token) in values.iter_mut().zip(&mut tokens) {
        *slot = token.parse().ok()?;
        len += 1;
    }
    (len >= 4).then_some(CpuLine { name, values, len })
}

/// A `Key:   value [unit]` line of `/proc/meminfo`.
pub(super) fn meminfo_line(line: &str) -> Option<(&str, u64, Option<&str>)> {
    let (key, rest) = line.split_once(':')?;
    let mut tokens = rest.split_ascii_whitespace();
    let value = tokens.next()?.parse().ok()?;
    let unit = tokens.next();
    if tokens.next().is_some() || key.is_empty() || key.contains(char::is_whitespace) {
        return None;
    }
    Some((key, value, unit))
}

/// `/proc/loadavg`.
#[derive(Debug, PartialEq)]
pub(super) struct Loadavg {
    pub one: f64,
    pub five: f64,
    pub fifteen: f64,
    /// Runnable scheduling entities.
    pub running: u64,
    /// All scheduling entities.
    pub total: u64,
}

/// Parses `/proc/loadavg`: `0.72 1.47 1.57 2/104 27923`.
pub(super) fn loadavg(text: &str) -> Option<Loadavg> {
    let mut t = text.split_ascii_whitespace();
    let mut load = || t.next()?.parse::<f64>().ok().filter(|v| v.is_finite() && *v >= 0.0);
    let (one, five, fifteen) = (load()?, load()?, load()?);
    let (running, total) = t.next()?.split_once('/')?;
    Some(Loadavg { one, five, fifteen, running: running.parse().ok()?, total: total.parse().ok()? })
}

/// The number of cpus in a kernel cpu list (`/sys/devices/system/cpu/online`: `0-3,8,10-11`).
pub(super) fn cpu_list_count(text: &str) -> Option<u64> {
    let text = text.trim();
    if text.is_empty() {
        return None;
    }
    let mut count = 0u64;
    for part in text.split(',') {
        let n = match part.split_once('-') {
            Some((a, b)) => {
                let (a, b) = (a.parse::<u64>().ok()?, b.parse::<u64>().ok()?);
                b.checked_sub(a)?.checked_add(1)?
            }
            None => {
                part.parse::<u64>().ok()?;
                1
            }
        };
        count = count.checked_add(n)?;
    }
    Some(count)
}

/// The counters of a `/proc/diskstats` line that the iostat collector reads.
#[derive(Debug, PartialEq)]
pub(super) struct DiskLine<'a> {
    pub name: &'a str,
    /// reads, reads merged, sectors read, ms reading, writes, writes merged, sectors written,
    /// ms writing, I/Os in progress, ms doing I/O, weighted ms doing I/O.
    pub values: [u64; 11],
}

/// Parses a `/proc/diskstats` line with at least the 14 columns of Linux 2.6.25+ (partition
/// lines of older kernels have 7 and give `None`, like a malformed line).
pub(super) fn diskstats_line(line: &str) -> Option<DiskLine<'_>> {
    let mut t = line.split_ascii_whitespace();
    t.next()?.parse::<u64>().ok()?;
    t.next()?.parse::<u64>().ok()?;
    let name = t.next()?;
    let mut values = [0u64; 11];
    for slot in &mut values {
        *slot = t.next()?.parse().ok()?;
    }
    Some(DiskLine { name, values })
}

/// Parses an interface line of `/proc/net/dev`: the name and its 16 counters (8 receive, 8
/// transmit, in the kernel's column order). Old kernels glue the first number to the colon.
pub(super) fn net_dev_line(line: &str) -> Option<(&str, [u64; 16])> {
    let (name, rest) = line.split_once(':')?;
    let name = name.trim();
    if name.is_empty() || name.contains(char::is_whitespace) {
        return None;
    }
    let mut t = rest.split_ascii_whitespace();
    let mut values = [0u64; 16];
    for slot in &mut values {
        *slot = t.next()?.parse().ok()?;
    }
    Some((name, values))
}

/// A `key value` line (`/proc/vmstat`).
pub(super) fn key_value(line: &str) -> Option<(&str, u64)> {
    let mut t = line.split_ascii_whitespace();
    let key = t.next()?;
    let value = t.next()?.parse().ok()?;
    t.next().is_none().then_some((key, value))
}

/// A `/proc/net/sockstat` line: `TCP: inuse 1 orphan 0 tw 4540 alloc 1 mem 51`. Returns the
/// label (`TCP`) and the value of `key`, if the line has it.
pub(super) fn sockstat_value<'a>(line: &'a str, key: &str) -> Option<(&'a str, u64)> {
    let (label, rest) = line.split_once(':')?;
    let mut t = rest.split_ascii_whitespace();
    while let Some(k) = t.next() {
        let v = t.next()?;
        if k == key {
            return Some((label.trim(), v.parse().ok()?));
        }
    }
    None
}

/// Pairs the names of a `/proc/net/snmp` or `/proc/net/netstat` header line with the values of
/// the line after it (`Tcp: RtoAlgorithm ...` / `Tcp: 1 ...`). Both must carry the same
/// label and the same number of columns.
pub(super) fn table_row<'a>(
    header: &'a str,
    values: &'a str,
) -> Option<impl Iterator<Item = (&'a str, &'a str)>> {
    let (hl, hr) = header.split_once(':')?;
    let (vl, vr) = values.split_once(':')?;
    if hl != vl || hr.split_ascii_whitespace().count() != vr.split_ascii_whitespace().count() {
        return None;
    }
    Some(hr.split_ascii_whitespace().zip(vr.split_ascii_whitespace()))
}

/// The first number of `/proc/uptime` (seconds since boot).
pub(super) fn uptime_seconds(text: &str) -> Option<f64> {
    text.split_ascii_whitespace().next()?.parse::<f64>().ok().filter(|v| v.is_finite() && *v >= 0.0)
}

/// A file holding one integer (`entropy_avail`, a pid file).
pub(super) fn single_u64(text: &str) -> Option<u64> {
    let mut t = text.split_ascii_whitespace();
    let v = t.next()?.parse().ok()?;
    t.next().is_none().then_some(v)
}

/// A line of `/proc/mounts`.
#[derive(Debug, PartialEq)]
pub(super) struct Mount<'a> {
    pub device: Cow<'a, str>,
    pub mount_point: Cow<'a, str>,
    pub fs_type: &'a str,
}

/// Parses a `/proc/mounts` line; the kernel writes space, tab, newline and backslash in
/// device and mount point names as octal escapes (`\040`).
pub(super) fn mount_line(line: &str) -> Option<Mount<'_>> {
    let mut t = line.split_ascii_whitespace();
    let device = unescape_octal(t.next()?);
    let mount_point = unescape_octal(t.next()?);
    let fs_type = t.next()?;
    Some(Mount { device, mount_point, fs_type })
}

fn unescape_octal(s: &str) -> Cow<'_, str> {
    if !s.contains('\\') {
        return Cow::Borrowed(s);
    }
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while let Some(&b) = bytes.get(i) {
        let code = bytes
            .get(i + 1..i + 4)
            .filter(|d| b == b'\\' && d.iter().all(|c| (b'0'..=b'7').contains(c)));
        match code {
            Some(d) => {
                let v = d.iter().fold(0u32, |acc, c| acc * 8 + u32::from(c - b'0'));
                out.push(u8::try_from(v).unwrap_or(b'?'));
                i += 4;
            }
            None => {
                out.push(b);
                i += 1;
            }
        }
    }
    Cow::Owned(String::from_utf8_lossy(&out).into_owned())
}

/// What the process collector reads from `/proc/<pid>/stat`.
#[derive(Debug, PartialEq)]
pub(super) struct PidStat<'a> {
    /// The command name (at most 15 bytes, may contain spaces and parentheses).
    pub comm: &'a str,
    /// Clock ticks in user and kernel mode, and those of waited-for children.
    pub utime: u64,
    pub stime: u64,
    pub cutime: u64,
    pub cstime: u64,
    pub num_threads: u64,
    /// Start time, clock ticks after boot.
    pub starttime: u64,
    /// Clock ticks waiting for block I/O (Linux 2.6.18+).
    pub blkio_ticks: Option<u64>,
}

/// Parses `/proc/<pid>/stat`. The command name sits between the first `(` and the *last*
/// `)`, since it may itself contain parentheses.
pub(super) fn pid_stat(text: &str) -> Option<PidStat<'_>> {
    let open = text.find('(')?;
    let close = text.rfind(')')?;
    let comm = text.get(open.checked_add(1)?..close)?;
    let rest = text.get(close.checked_add(1)?..)?;
    // Field numbers of proc(5) minus 3: the first token after ')' is field 3 (state).
    let mut t = rest.split_ascii_whitespace();
    let mut field = |skip: usize| t.nth(skip);
    let utime = field(11)?.parse().ok()?;
    let stime = field(0)?.parse().ok()?;
    let cutime = field(0)?.parse::<i64>().ok()?.max(0).unsigned_abs();
    let cstime = field(0)?.parse::<i64>().ok()?.max(0).unsigned_abs();
    let num_threads = field(2)?.parse().ok()?;
    let starttime = field(1)?.parse().ok()?;
    let blkio_ticks = field(19).and_then(|v| v.parse().ok());
    Some(PidStat { comm, utime, stime, cutime, cstime, num_threads, starttime, blkio_ticks })
}

/// Context switches from `/proc/<pid>/status`: (voluntary, involuntary).
pub(super) fn pid_ctx_switches(text: &str) -> Option<(u64, u64)> {
    let (mut vol, mut invol) = (None, None);
    for line in text.lines() {
        if let Some(v) = line.strip_prefix("voluntary_ctxt_switches:") {
            vol = v.trim().parse().ok();
        } else if let Some(v) = line.strip_prefix("nonvoluntary_ctxt_switches:") {
            invol = v.trim().parse().ok();
        }
    }
    Some((vol?, invol?))
}

/// `/proc/<pid>/io`.
#[derive(Debug, Default, PartialEq)]
pub(super) struct PidIo {
    pub rchar: u64,
    pub wchar: u64,
    pub syscr: u64,
    pub syscw: u64,
    pub read_bytes: u64,
    pub write_bytes: u64,
}

/// Parses `/proc/<pid>/io`; every one of the six counters must be there.
pub(super) fn pid_io(text: &str) -> Option<PidIo> {
    let mut io = PidIo::default();
    let mut seen = 0u8;
    for line in text.lines() {
        let Some((key, value)) = line.split_once(':') else { continue };
        let slot = match key {
            "rchar" => &mut io.rchar,
            "wchar" => &mut io.wchar,
            "syscr" => &mut io.syscr,
            "syscw" => &mut io.syscw,
            "read_bytes" => &mut io.read_bytes,
            "write_bytes" => &mut io.write_bytes,
            _ => continue,
        };
        *slot = value.trim().parse().ok()?;
        seen += 1;
    }
    (seen == 6).then_some(io)
}

/// `/proc/<pid>/statm`: size, resident, shared, text, lib, data, dt (pages).
pub(super) fn pid_statm(text: &str) -> Option<[u64; 7]> {
    let mut t = text.split_ascii_whitespace();
    let mut out = [0u64; 7];
    for slot in &mut out {
        *slot = t.next()?.parse().ok()?;
    }
    Some(out)
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    #[test]
    fn cpu_lines() {
        let l = cpu_line("cpu  1631867 24789 299100 2013494 154930 0 10988 1642 0 0").unwrap();
        assert_eq!((l.name, l.len, l.values[0], l.values[9]), ("cpu", 10, 1631867, 0));
        let l = cpu_line("cpu1 1 2 3 4").unwrap();
        assert_eq!((l.name, l.len, l.values[3]), ("cpu1", 4, 4));
        assert_eq!(cpu_line("cpu1 1 2 3"), None, "too few fields");
        assert_eq!(cpu_line("cpux 1 2 3 4"), None);
        assert_eq!(cpu_line("cpu0 1 2 x 4"), None);
        let l = cpu_line("cpu0 1 2 3 4 5 6 7 8 9 10 11").unwrap();
        assert_eq!(l.len, 10, "extra future fields are ignored");
    }

    #[test]
    fn meminfo_lines() {
        assert_eq!(
            meminfo_line("MemTotal:       24684096 kB"),
            Some(("MemTotal", 24684096, Some("kB")))
        );
        assert_eq!(meminfo_line("HugePages_Total:       0"), Some(("HugePages_Total", 0, None)));
        assert_eq!(meminfo_line("Bad line"), None);
        assert_eq!(meminfo_line("X: 1 kB extra"), None);
    }

    #[test]
    fn loadavg_and_cpu_lists() {
        let l = loadavg("0.72 1.47 1.57 2/104 27923\n").unwrap();
        assert_eq!((l.one, l.five, l.fifteen, l.running, l.total), (0.72, 1.47, 1.57, 2, 104));
        assert_eq!(loadavg("0.72 1.47 1.57 2104 27923"), None);
        assert_eq!(loadavg("nan 1 1 1/1 1"), None);
        assert_eq!(cpu_list_count("0-1\n"), Some(2));
        assert_eq!(cpu_list_count("0-3,8,10-11"), Some(7));
        assert_eq!(cpu_list_count("3-1"), None);
        assert_eq!(cpu_list_count(""), None);
    }

    #[test]
    fn diskstats_lines() {
        let l = diskstats_line(" 254 0 vda 3401825 132858 73760282 2765056 25457067 7808296 722913200 16485488 0 1677708 24014207 34431494 88 2794619560 4756002 291844 7660").unwrap();
        assert_eq!(l.name, "vda");
        assert_eq!(
            l.values,
            [
                3401825, 132858, 73760282, 2765056, 25457067, 7808296, 722913200, 16485488, 0,
                1677708, 24014207
            ]
        );
        assert_eq!(diskstats_line("   8    1 sda1 100 200 300 400"), None, "old partition line");
    }

    #[test]
    fn net_dev_lines() {
        let (n, v) = net_dev_line("  eth0: 239640516   14936    0    0    0     0          0         0  1070277   11641    0    0    0     0       0          0").unwrap();
        assert_eq!((n, v[0], v[1], v[8], v[9]), ("eth0", 239640516, 14936, 1070277, 11641));
        let (n, v) = net_dev_line("eth1:123 1 0 0 0 0 0 0 5 1 0 0 0 0 0 0").unwrap();
        assert_eq!((n, v[0]), ("eth1", 123));
        assert_eq!(net_dev_line("Inter-|   Receive    |  Transmit"), None);
    }

    #[test]
    fn sockstat_and_tables() {
        let line = "TCP: inuse 1 orphan 0 tw 4540 alloc 1 mem 51";
        assert_eq!(sockstat_value(line, "tw"), Some(("TCP", 4540)));
        assert_eq!(sockstat_value(line, "nope"), None);
        assert_eq!(sockstat_value("sockets: used 17", "used"), Some(("sockets", 17)));
        let row: Vec<_> = table_row("Tcp: RtoMin MaxConn", "Tcp: 200 -1").unwrap().collect();
        assert_eq!(row, [("RtoMin", "200"), ("MaxConn", "-1")]);
        assert!(table_row("Tcp: A B", "Udp: 1 2").is_none());
        assert!(table_row("Tcp: A B", "Tcp: 1").is_none());
    }

    #[test]
    fn small_files() {
        assert_eq!(uptime_seconds("20794.34 20212.22\n"), Some(20794.34));
        assert_eq!(single_u64("256\n"), Some(256));
        assert_eq!(single_u64("256 1"), None);
        assert_eq!(key_value("pgfault 690644821"), Some(("pgfault", 690644821)));
    }

    #[test]
    fn mount_lines_unescape_octal() {
        let m = mount_line("/dev/sdb1 /mnt/my\\040disk ext4 rw 0 0").unwrap();
        assert_eq!((&*m.device, &*m.mount_point, m.fs_type), ("/dev/sdb1", "/mnt/my disk", "ext4"));
        assert_eq!(
            &*unescape_octal("a\\\\b\\04"),
            "a\\\\b\\04",
            "incomplete escapes stay as they are"
        );
    }

    #[test]
    fn pid_files() {
        let s = pid_stat("31645 (app (x) 1) R 1 31645 31645 0 -1 4194304 1146 0 0 0 538 7 -2 3 20 0 4 0 2090667 14409728 2225 18446744073709551615 4321280 7148169 140731181494432 0 0 0 0 16781318 0 0 0 0 17 0 0 0 9 0 0").unwrap();
        assert_eq!(
            s,
            PidStat {
                comm: "app (x) 1",
                utime: 538,
                stime: 7,
                cutime: 0,
                cstime: 3,
                num_threads: 4,
                starttime: 2090667,
                blkio_ticks: Some(9)
            }
        );
        assert_eq!(pid_stat("1 (x) R 1 2"), None);
        assert_eq!(
            pid_ctx_switches(
                "Name:\tx\nvoluntary_ctxt_switches:\t21\nnonvoluntary_ctxt_switches:\t361\n"
            ),
            Some((21, 361))
        );
        let io = pid_io("rchar: 1\nwchar: 2\nsyscr: 3\nsyscw: 4\nread_bytes: 5\nwrite_bytes: 6\ncancelled_write_bytes: 0\n").unwrap();
        assert_eq!((io.rchar, io.write_bytes), (1, 6));
        assert_eq!(pid_io("rchar: 1\n"), None);
        assert_eq!(pid_statm("765 404 376 5 0 123 0\n"), Some([765, 404, 376, 5, 0, 123, 0]));
    }

    fn any_text() -> impl Strategy<Value = String> {
        prop_oneof![
            any::<String>(),
            proptest::collection::vec(any::<u8>(), 0..400)
                .prop_map(|b| String::from_utf8_lossy(&b).into_owned()),
            "[ a-z0-9():/\\\\.\n-]{0,200}",
        ]
    }

    proptest! {
        #[test]
        fn parsers_never_panic(text in any_text()) {
            for line in text.lines() {
                let _ = cpu_line(line);
                let _ = meminfo_line(line);
                let _ = diskstats_line(line);
                let _ = net_dev_line(line);
                let _ = key_value(line);
                let _ = sockstat_value(line, "inuse");
                let _ = mount_line(line);
                if let Some(row) = table_row(line, line) { row.for_each(drop) }
            }
            let _ = loadavg(&text);
            let _ = cpu_list_count(&text);
            let _ = uptime_seconds(&text);
            let _ = single_u64(&text);
            let _ = pid_stat(&text);
            let _ = pid_ctx_switches(&text);
            let _ = pid_io(&text);
            let _ = pid_statm(&text);
        }

        #[test]
        fn octal_unescape_is_identity_without_backslashes(s in "[^\\\\]{0,50}") {
            prop_assert_eq!(unescape_octal(&s), Cow::Borrowed(s.as_str()));
        }
    }
}
