//! The system collectors against fixture `/proc` trees captured from a real machine
//! (tests/fixtures/README.md): two snapshots 5.02 s apart (proc-1, proc-2) and a hand-edited
//! third one 10 s later with counter resets (proc-3).
//!
//! Each expected value below is computed here from the numbers in the fixture files, copied
//! by hand, not by the collectors' parsers. The fixture snapshots are staged into a temporary
//! directory and later snapshots are written over the same files in place, as the kernel
//! regenerates a `/proc` file under an open descriptor, so collectors that keep their files
//! open see each snapshot in turn.

use std::collections::BTreeMap;
use std::fs;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use collect::system::{
    Cpu, DiskSpace, Entropy, FixedFsStat, FsUsage, Iostat, LoadAverage, Memory, Network, Process,
    SYSTEM_COLLECTORS, Sockets, Tcp, Uptime, VmStat,
};
use collect::{Collector, Env, Options, RunContext, Sample};

/// Seconds between proc-1 and proc-2 (the difference of their /proc/uptime).
const DT1: f64 = 5.02;
/// Seconds between proc-2 and proc-3.
const DT2: f64 = 10.0;
/// Pid of the captured `sleep` (the other two, 27144 and 27146, are a cpu-burning and an
/// I/O-doing Python worker run as `appworker`).
const SLEEPER: u32 = 27148;

fn fixtures() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures")
}

/// A staged `/proc` tree that advances through the snapshots.
struct Host {
    dir: tempfile::TempDir,
    t0: Instant,
}

impl Host {
    fn new(snapshot: &str) -> Host {
        let host = Host { dir: tempfile::tempdir().unwrap(), t0: Instant::now() };
        fs::create_dir(host.proc()).unwrap();
        host.load(snapshot);
        host
    }

    fn proc(&self) -> PathBuf {
        self.dir.path().join("proc")
    }

    fn env(&self) -> Env {
        Env {
            proc_root: self.proc(),
            sys_root: fixtures().join("sys"),
            dev_root: fixtures().join("dev"),
        }
    }

    /// Writes `snapshot` over the staged tree, file by file in place.
    fn load(&self, snapshot: &str) {
        copy_tree(&fixtures().join(snapshot), &self.proc());
    }

    /// The run context `secs` after the first run.
    fn at(&self, secs: f64) -> RunContext {
        RunContext { now: self.t0 + Duration::from_secs_f64(secs), unix_time: 1_700_000_000 }
    }
}

fn copy_tree(from: &Path, to: &Path) {
    for entry in fs::read_dir(from).unwrap() {
        let entry = entry.unwrap();
        let (src, dst) = (entry.path(), to.join(entry.file_name()));
        let kind = entry.file_type().unwrap();
        if kind.is_symlink() {
            let _ = fs::remove_file(&dst);
            std::os::unix::fs::symlink(fs::read_link(&src).unwrap(), &dst).unwrap();
        } else if kind.is_dir() {
            fs::create_dir_all(&dst).unwrap();
            copy_tree(&src, &dst);
        } else {
            fs::write(&dst, fs::read(&src).unwrap()).unwrap();
        }
    }
}

fn opts(pairs: &[(&str, &str)]) -> Options {
    pairs.iter().copied().collect()
}

fn run(c: &mut dyn Collector, ctx: &RunContext) -> Vec<Sample> {
    let mut out = Vec::new();
    c.collect(ctx, &mut out).unwrap();
    out
}

/// Asserts that `got` holds exactly the names of `want`, each once, with the same value
/// (to 1e-12 relative: the expected values are computed in a different order).
#[track_caller]
fn check(got: &[Sample], want: &[(&str, f64)]) {
    let mut got_map = BTreeMap::new();
    for s in got {
        assert!(s.timestamp.is_none(), "{} carries a timestamp", s.name);
        assert!(got_map.insert(s.name.as_str(), s.value).is_none(), "{} published twice", s.name);
    }
    let want_map: BTreeMap<&str, f64> = want.iter().copied().collect();
    assert_eq!(want_map.len(), want.len(), "the expectation lists a name twice");
    let got_names: Vec<_> = got_map.keys().collect();
    let want_names: Vec<_> = want_map.keys().collect();
    assert_eq!(got_names, want_names);
    for (name, w) in want_map {
        let g = got_map[name];
        assert!((g - w).abs() <= 1e-12 * w.abs().max(1.0), "{name}: got {g}, want {w}");
    }
}

fn names(samples: &[Sample]) -> Vec<&str> {
    samples.iter().map(|s| s.name.as_str()).collect()
}

#[test]
fn registry_lists_every_collector_once() {
    assert_eq!(SYSTEM_COLLECTORS.len(), 12);
    assert!(SYSTEM_COLLECTORS.contains(&("DiskUsageCollector", "iostat")));
    assert!(SYSTEM_COLLECTORS.contains(&("SockstatCollector", "sockets")));
}

// ---- cpu ---------------------------------------------------------------------------------

/// proc-1 to proc-2 jiffy deltas of user, nice, system, idle, iowait, irq, softirq, steal,
/// guest, guest_nice.
const CPU_TOTAL: [f64; 10] =
    [(1707323 - 1706453) as f64, 0.0, (305240 - 305108) as f64, 1.0, 0.0, 0.0, 1.0, 0.0, 0.0, 0.0];
const CPU0: [f64; 10] =
    [(818826 - 818388) as f64, 0.0, (134013 - 133950) as f64, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0];
const CPU1: [f64; 10] =
    [(888497 - 888064) as f64, 0.0, (171226 - 171157) as f64, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0];
const STATES: [&str; 10] =
    ["user", "nice", "system", "idle", "iowait", "irq", "softirq", "steal", "guest", "guest_nice"];

fn cpu_expect(nodes: &[(&str, &[f64; 10], f64)], hz: f64) -> Vec<(String, f64)> {
    let mut v = vec![("cpu_count".to_owned(), 2.0)];
    for (node, deltas, divisor) in nodes {
        for (state, d) in STATES.iter().zip(deltas.iter()) {
            v.push((format!("{node}.{state}"), d / hz / DT1 * 100.0 / divisor));
        }
    }
    v
}

fn as_refs(v: &[(String, f64)]) -> Vec<(&str, f64)> {
    v.iter().map(|(n, x)| (n.as_str(), *x)).collect()
}

#[test]
fn cpu_publishes_percent_of_a_core_per_state_from_the_second_run() {
    let host = Host::new("proc-1");
    let mut cpu = Cpu::new(&Options::new(), &host.env()).unwrap();
    cpu.set_clock_ticks(100);
    check(&run(&mut cpu, &host.at(0.0)), &[("cpu_count", 2.0)]);
    host.load("proc-2");
    let want = cpu_expect(
        &[("total", &CPU_TOTAL, 1.0), ("cpu0", &CPU0, 1.0), ("cpu1", &CPU1, 1.0)],
        100.0,
    );
    check(&run(&mut cpu, &host.at(DT1)), &as_refs(&want));
    // proc-3 has the same cpu lines as proc-2: ten idle-free seconds are all zeros.
    host.load("proc-3");
    let zeros: Vec<(String, f64)> =
        want.iter().map(|(n, v)| (n.clone(), if n == "cpu_count" { *v } else { 0.0 })).collect();
    check(&run(&mut cpu, &host.at(DT1 + DT2)), &as_refs(&zeros));
}

#[test]
fn cpu_scales_by_clock_ticks_and_normalizes_the_total() {
    let host = Host::new("proc-1");
    let mut cpu =
        Cpu::new(&opts(&[("normalize", "true"), ("percore", "false")]), &host.env()).unwrap();
    cpu.set_clock_ticks(250);
    run(&mut cpu, &host.at(0.0));
    host.load("proc-2");
    let want = cpu_expect(&[("total", &CPU_TOTAL, 2.0)], 250.0);
    check(&run(&mut cpu, &host.at(DT1)), &as_refs(&want));
}

#[test]
fn cpu_simple_gives_the_busy_percentage() {
    let host = Host::new("proc-1");
    let mut cpu = Cpu::new(&opts(&[("simple", "yes")]), &host.env()).unwrap();
    check(&run(&mut cpu, &host.at(0.0)), &[]);
    host.load("proc-2");
    // user + nice + system + idle deltas: 870 + 0 + 132 + 1.
    check(&run(&mut cpu, &host.at(DT1)), &[("percent", 100.0 - 1.0 * 100.0 / 1003.0)]);
}

#[test]
fn cpu_skips_a_bad_line_and_keeps_the_rest() {
    let host = Host::new("proc-1");
    let stat = host.proc().join("stat");
    let text = fs::read_to_string(&stat).unwrap().replace("cpu1 888064", "cpu1 x888064");
    fs::write(&stat, text).unwrap();
    let mut cpu = Cpu::new(&Options::new(), &host.env()).unwrap();
    let out = run(&mut cpu, &host.at(0.0));
    assert_eq!(names(&out), ["cpu_count"]);
}

// ---- memory, loadavg, uptime, entropy, sockets (gauges) --------------------------------

const KIB: f64 = 1024.0;

/// proc-1's meminfo, in kB.
const MEMINFO_1: [(&str, f64); 16] = [
    ("MemTotal", 24684096.0),
    ("MemFree", 2693240.0),
    ("MemAvailable", 23018616.0),
    ("Buffers", 296624.0),
    ("Cached", 19335784.0),
    ("SwapCached", 0.0),
    ("Active", 4927352.0),
    ("Inactive", 15532344.0),
    ("SwapTotal", 0.0),
    ("SwapFree", 0.0),
    ("Dirty", 1298648.0),
    ("Shmem", 8788.0),
    ("Committed_AS", 545480.0),
    ("VmallocTotal", 34359738367.0),
    ("VmallocUsed", 15180.0),
    ("VmallocChunk", 0.0),
];

#[test]
fn memory_publishes_bytes_and_the_used_percentage() {
    let host = Host::new("proc-1");
    let mut mem = Memory::new(&Options::new(), &host.env()).unwrap();
    let mut want: Vec<(&str, f64)> = MEMINFO_1.iter().map(|(k, v)| (*k, v * KIB)).collect();
    want.push(("MemUsedPercentage", 100.0 * (24684096.0 - 23018616.0) / 24684096.0));
    check(&run(&mut mem, &host.at(0.0)), &want);
}

#[test]
fn memory_converts_to_the_first_byte_unit_and_detailed_publishes_every_kb_line() {
    let host = Host::new("proc-1");
    let mut mem = Memory::new(&opts(&[("byte_unit", "gigabyte, byte")]), &host.env()).unwrap();
    let out = run(&mut mem, &host.at(0.0));
    let total = out.iter().find(|s| s.name == "MemTotal").unwrap().value;
    assert_eq!(total, 24684096.0 * KIB / (KIB * KIB * KIB));
    assert_eq!(out.len(), 17, "one unit only, as Diamond");

    let mut detailed = Memory::new(&opts(&[("detailed", "true")]), &host.env()).unwrap();
    let out = run(&mut detailed, &host.at(0.0));
    let kb_lines = fs::read_to_string(host.proc().join("meminfo"))
        .unwrap()
        .lines()
        .filter(|l| l.ends_with(" kB"))
        .count();
    assert_eq!(out.len(), kb_lines + 1);
    assert!(names(&out).contains(&"AnonPages"));
    assert!(!names(&out).contains(&"HugePages_Total"), "counts without a unit are skipped");
}

#[test]
fn loadavg_publishes_loads_normalized_by_online_cpus() {
    let host = Host::new("proc-1");
    let mut load = LoadAverage::new(&Options::new(), &host.env()).unwrap();
    check(
        &run(&mut load, &host.at(0.0)),
        &[
            ("01", 2.83),
            ("05", 2.23),
            ("15", 1.77),
            ("01_normalized", 2.83 / 2.0),
            ("05_normalized", 2.23 / 2.0),
            ("15_normalized", 1.77 / 2.0),
            ("processes_running", 6.0),
            ("processes_total", 150.0),
        ],
    );
    let mut simple = LoadAverage::new(&opts(&[("simple", "true")]), &host.env()).unwrap();
    check(
        &run(&mut simple, &host.at(0.0)),
        &[
            ("load", 2.83),
            ("load_normalized", 2.83 / 2.0),
            ("processes_running", 6.0),
            ("processes_total", 150.0),
        ],
    );
}

#[test]
fn uptime_is_in_minutes_or_the_configured_unit() {
    let host = Host::new("proc-1");
    let mut up = Uptime::new(&Options::new(), &host.env()).unwrap();
    check(&run(&mut up, &host.at(0.0)), &[("minutes", 21487.68 / 60.0)]);
    let mut hours = Uptime::new(&opts(&[("unit", "h")]), &host.env()).unwrap();
    check(&run(&mut hours, &host.at(0.0)), &[("hours", 21487.68 / 3600.0)]);
    assert!(Uptime::new(&opts(&[("unit", "fortnights")]), &host.env()).is_err());
}

#[test]
fn entropy_publishes_available_bits() {
    let host = Host::new("proc-1");
    let mut e = Entropy::new(&Options::new(), &host.env()).unwrap();
    check(&run(&mut e, &host.at(0.0)), &[("available", 256.0)]);
}

#[test]
fn sockets_adds_ipv6_counts_to_ipv4() {
    let host = Host::new("proc-1");
    let mut s = Sockets::new(&Options::new(), &host.env()).unwrap();
    let base = [
        ("used", 30.0),
        ("tcp_inuse", 2.0),
        ("tcp_orphan", 0.0),
        ("tcp_tw", 297.0),
        ("tcp_alloc", 2.0),
        ("tcp_mem", 0.0),
        ("udp_inuse", 0.0),
        ("udp_mem", 0.0),
    ];
    check(&run(&mut s, &host.at(0.0)), &base);
    host.load("proc-3");
    // proc-3 has TCP6 inuse 3 and UDP6 inuse 2 (hand-edited) and tw 540.
    let mut want = base;
    want[1].1 = 5.0;
    want[3].1 = 540.0;
    want[6].1 = 2.0;
    check(&run(&mut s, &host.at(1.0)), &want);
    // No IPv6 on the host: no sockstat6, still the IPv4 counts.
    fs::remove_file(host.proc().join("net/sockstat6")).unwrap();
    let mut s = Sockets::new(&Options::new(), &host.env()).unwrap();
    let mut want = base;
    want[3].1 = 540.0;
    check(&run(&mut s, &host.at(2.0)), &want);
}

// ---- rates: vmstat, tcp, network, iostat ----------------------------------------------

#[test]
fn vmstat_rates_skip_the_first_sample_and_resets() {
    let host = Host::new("proc-1");
    let mut vm = VmStat::new(&Options::new(), &host.env()).unwrap();
    check(&run(&mut vm, &host.at(0.0)), &[]);
    host.load("proc-2");
    check(
        &run(&mut vm, &host.at(DT1)),
        &[
            ("pgpgin", (37912797 - 37912605) as f64 / DT1),
            ("pgpgout", (372368368 - 372250012) as f64 / DT1),
            ("pswpin", 0.0),
            ("pswpout", 0.0),
            ("pgfault", (719131600 - 718607725) as f64 / DT1),
            ("pgmajfault", (127465 - 127355) as f64 / DT1),
        ],
    );
    host.load("proc-3");
    // pgmajfault went down to 5: skipped, not 0 and not a wrap-around spike.
    check(
        &run(&mut vm, &host.at(DT1 + DT2)),
        &[
            ("pgpgin", 0.0),
            ("pgpgout", 0.0),
            ("pswpin", 0.0),
            ("pswpout", 0.0),
            ("pgfault", 1000.0 / DT2),
        ],
    );
}

#[test]
fn tcp_publishes_allowed_counters_per_second_and_gauges_as_they_are() {
    let host = Host::new("proc-1");
    let mut tcp = Tcp::new(&Options::new(), &host.env()).unwrap();
    check(&run(&mut tcp, &host.at(0.0)), &[("CurrEstab", 0.0)]);
    host.load("proc-2");
    let zero = |n| (n, 0.0);
    let mut want = vec![
        zero("ListenOverflows"),
        zero("ListenDrops"),
        zero("TCPLostRetransmit"),
        zero("TCPFastRetrans"),
        zero("TCPSlowStartRetrans"),
        zero("TCPTimeouts"),
        zero("TCPAbortOnMemory"),
        zero("TCPBacklogDrop"),
        ("ActiveOpens", (278406 - 278163) as f64 / DT1),
        ("PassiveOpens", (278297 - 278054) as f64 / DT1),
        zero("AttemptFails"),
        zero("EstabResets"),
        zero("CurrEstab"),
        zero("InErrs"),
    ];
    check(&run(&mut tcp, &host.at(DT1)), &want);
    host.load("proc-3");
    // ActiveOpens went down to 10 (a reset): skipped. PassiveOpens went up by 10.
    want.retain(|(n, _)| *n != "ActiveOpens");
    for w in &mut want {
        if w.0 == "PassiveOpens" {
            w.1 = 10.0 / DT2;
        }
    }
    check(&run(&mut tcp, &host.at(DT1 + DT2)), &want);
}

#[test]
fn tcp_with_an_empty_allow_list_publishes_every_column() {
    let host = Host::new("proc-1");
    let mut tcp = Tcp::new(&opts(&[("allowed_names", "")]), &host.env()).unwrap();
    let out = run(&mut tcp, &host.at(0.0));
    // The first run has only the gauges.
    check(&out, &[("MaxConn", -1.0), ("CurrEstab", 0.0)]);
    host.load("proc-2");
    let out = run(&mut tcp, &host.at(DT1));
    let header_columns = |file: &str, label: &str| {
        let text = fs::read_to_string(host.proc().join(file)).unwrap();
        text.lines().find(|l| l.starts_with(label)).unwrap().split_whitespace().count() - 1
    };
    assert_eq!(
        out.len(),
        header_columns("net/netstat", "TcpExt:") + header_columns("net/snmp", "Tcp:")
    );
}

fn lo_rates(
    dt: f64,
    rx_bytes: f64,
    rx_packets: f64,
    tx_bytes: f64,
    tx_packets: f64,
) -> Vec<(String, f64)> {
    let mut v = vec![
        ("lo.rx_bit".to_owned(), rx_bytes * 8.0 / dt),
        ("lo.rx_byte".to_owned(), rx_bytes / dt),
        ("lo.rx_packets".to_owned(), rx_packets / dt),
        ("lo.tx_bit".to_owned(), tx_bytes * 8.0 / dt),
        ("lo.tx_byte".to_owned(), tx_bytes / dt),
        ("lo.tx_packets".to_owned(), tx_packets / dt),
    ];
    for leaf in [
        "rx_errors",
        "rx_drop",
        "rx_fifo",
        "rx_frame",
        "rx_compressed",
        "rx_multicast",
        "tx_errors",
        "tx_drop",
        "tx_fifo",
        "tx_colls",
        "tx_carrier",
        "tx_compressed",
    ] {
        v.push((format!("lo.{leaf}"), 0.0));
    }
    v
}

#[test]
fn network_rates_in_bits_and_bytes_per_second() {
    let host = Host::new("proc-1");
    let mut net = Network::new(&opts(&[("interfaces", "lo")]), &host.env()).unwrap();
    check(&run(&mut net, &host.at(0.0)), &[]);
    host.load("proc-2");
    let (bytes, packets) = ((45366926371u64 - 45350602603) as f64, (8710109 - 8707193) as f64);
    check(&run(&mut net, &host.at(DT1)), &as_refs(&lo_rates(DT1, bytes, packets, bytes, packets)));
    host.load("proc-3");
    // lo received 10000 bytes in 100 packets (hand-edited), sent nothing.
    check(&run(&mut net, &host.at(DT1 + DT2)), &as_refs(&lo_rates(DT2, 10000.0, 100.0, 0.0, 0.0)));
}

#[test]
fn network_defaults_to_ethernet_names_and_skips_a_recreated_interface() {
    let host = Host::new("proc-1");
    let mut net = Network::new(&Options::new(), &host.env()).unwrap();
    run(&mut net, &host.at(0.0));
    host.load("proc-2");
    let out = run(&mut net, &host.at(DT1));
    // eth0 was idle during the capture: every rate is 0, and lo, ifb0, ifb1 are not listed.
    assert_eq!(out.len(), 18);
    assert!(out.iter().all(|s| s.name.starts_with("eth0.") && s.value == 0.0), "{out:?}");
    host.load("proc-3");
    // eth0's counters restarted low in proc-3: no rate at all rather than a 0 or a spike.
    check(&run(&mut net, &host.at(DT1 + DT2)), &[]);
}

#[test]
fn network_units_legacy_tx_names_and_dotted_interfaces() {
    let host = Host::new("proc-1");
    let dev = host.proc().join("net/dev");
    let vlan = |rx: u64| format!("eth0.100: {rx} 1 0 0 0 0 0 0 {rx} 1 0 0 0 7 0 0\n");
    fs::write(&dev, fs::read_to_string(&dev).unwrap() + &vlan(1000)).unwrap();
    let o = opts(&[("interfaces", "eth"), ("byte_unit", "megabyte"), ("diamond_tx_names", "true")]);
    let mut net = Network::new(&o, &host.env()).unwrap();
    run(&mut net, &host.at(0.0));
    let text =
        fs::read_to_string(&dev).unwrap().replace(&vlan(1000), &vlan(1000 + 2 * 1024 * 1024));
    fs::write(&dev, text).unwrap();
    let out = run(&mut net, &host.at(2.0));
    let got: BTreeMap<&str, f64> = out.iter().map(|s| (s.name.as_str(), s.value)).collect();
    assert_eq!(got["eth0_100.rx_megabyte"], 1.0, "2 MiB in 2 s, and the dot cannot add a level");
    assert!(got.contains_key("eth0.tx_frame") && got.contains_key("eth0.tx_multicast"));
    assert!(!got.contains_key("eth0.tx_colls"));
}

/// proc-1 to proc-2 deltas of vda's counters.
struct VdaDeltas;
impl VdaDeltas {
    const READS: f64 = (3496986 - 3496939) as f64;
    const READS_MERGED: f64 = 0.0;
    const READ_SECTORS: f64 = (75825594 - 75825210) as f64;
    const READ_MS: f64 = (2850561 - 2850534) as f64;
    const WRITES: f64 = (25492895 - 25492802) as f64;
    const WRITES_MERGED: f64 = (7835078 - 7834846) as f64;
    const WRITE_SECTORS: f64 = (744736736 - 744500024) as f64;
    const WRITE_MS: f64 = (16558980 - 16558431) as f64;
    const IO_MS: f64 = (1690084 - 1689996) as f64;
    const IO_MS_WEIGHTED: f64 = (24178366 - 24177717) as f64;
}

#[test]
fn iostat_publishes_deltas_rates_and_derived_figures() {
    let host = Host::new("proc-1");
    let mut io = Iostat::new(&Options::new(), &host.env()).unwrap();
    check(&run(&mut io, &host.at(0.0)), &[]);
    host.load("proc-2");
    type D = VdaDeltas;
    let (rbytes, wbytes) = (D::READ_SECTORS * 512.0, D::WRITE_SECTORS * 512.0);
    let n = D::READS + D::WRITES;
    let want = [
        ("vda.reads", D::READS),
        ("vda.reads_merged", D::READS_MERGED),
        ("vda.reads_byte", rbytes),
        ("vda.reads_milliseconds", D::READ_MS),
        ("vda.writes", D::WRITES),
        ("vda.writes_merged", D::WRITES_MERGED),
        ("vda.writes_byte", wbytes),
        ("vda.writes_milliseconds", D::WRITE_MS),
        ("vda.io_in_progress", 0.0),
        ("vda.io_milliseconds", D::IO_MS),
        ("vda.io_milliseconds_weighted", D::IO_MS_WEIGHTED),
        ("vda.read_requests_merged_per_second", D::READS_MERGED / DT1),
        ("vda.write_requests_merged_per_second", D::WRITES_MERGED / DT1),
        ("vda.reads_per_second", D::READS / DT1),
        ("vda.writes_per_second", D::WRITES / DT1),
        ("vda.read_byte_per_second", rbytes / DT1),
        ("vda.write_byte_per_second", wbytes / DT1),
        ("vda.average_request_size_byte", (rbytes + wbytes) / n),
        ("vda.io", n),
        ("vda.average_queue_length", D::IO_MS_WEIGHTED / DT1 / 1000.0),
        ("vda.util_percentage", D::IO_MS / DT1 / 10.0),
        ("vda.read_await", D::READ_MS / D::READS),
        ("vda.write_await", D::WRITE_MS / D::WRITES),
        ("vda.iops", n / DT1),
        ("vda.service_time", D::IO_MS / n),
        ("vda.await", (D::READ_MS + D::WRITE_MS) / n),
        ("vda.concurrent_io", (D::READS / DT1 + D::WRITES / DT1) * (D::IO_MS / n) / 1000.0),
    ];
    check(&run(&mut io, &host.at(DT1)), &want);
    host.load("proc-3");
    // vda was re-attached in proc-3 (its counters restarted): nothing for this interval.
    check(&run(&mut io, &host.at(DT1 + DT2)), &[]);
}

#[test]
fn iostat_leaves_idle_devices_out_unless_send_zero() {
    let host = Host::new("proc-1");
    for (send_zero, expected) in [("false", 0), ("true", 27)] {
        let o = opts(&[("devices", "zram[0-9]+$"), ("send_zero", send_zero)]);
        let mut io = Iostat::new(&o, &host.env()).unwrap();
        run(&mut io, &host.at(0.0));
        let out = run(&mut io, &host.at(DT1));
        assert_eq!(out.len(), expected, "send_zero = {send_zero}");
        assert!(out.iter().all(|s| s.name.starts_with("zram0.") && s.value == 0.0));
    }
    let mut bytes = Iostat::new(&opts(&[("byte_unit", "kB, byte")]), &host.env()).unwrap();
    run(&mut bytes, &host.at(0.0));
    host.load("proc-2");
    let out = run(&mut bytes, &host.at(DT1));
    let got: BTreeMap<&str, f64> = out.iter().map(|s| (s.name.as_str(), s.value)).collect();
    assert_eq!(got["vda.reads_kB"], VdaDeltas::READ_SECTORS * 512.0 / 1024.0);
    assert_eq!(got["vda.reads_byte"], VdaDeltas::READ_SECTORS * 512.0);
    assert_eq!(out.len(), 27 + 5, "five more names per extra unit");
}

// ---- diskspace -----------------------------------------------------------------------

/// The statvfs table of tests/fixtures/statvfs.txt.
fn fixture_statvfs() -> FixedFsStat {
    let mut fs_stat = FixedFsStat::new();
    for line in fs::read_to_string(fixtures().join("statvfs.txt")).unwrap().lines() {
        if line.starts_with('#') || line.trim().is_empty() {
            continue;
        }
        let f: Vec<&str> = line.split_whitespace().collect();
        let n = |i: usize| f[i].parse::<u64>().unwrap();
        fs_stat.insert(
            f[0],
            FsUsage {
                dev: (n(1) << 20) | n(2),
                fragment_size: n(3),
                blocks: n(4),
                blocks_free: n(5),
                blocks_avail: n(6),
                files: n(7),
                files_free: n(8),
                files_avail: n(9),
            },
        );
    }
    fs_stat
}

/// (frsize, blocks, bfree, bavail, files, ffree, favail) as expected metrics of `node`.
fn disk_expect(node: &str, units: &[(&str, f64)], f: [f64; 7]) -> Vec<(String, f64)> {
    let [frsize, blocks, bfree, bavail, files, ffree, favail] = f;
    let mut v = Vec::new();
    for (unit, bytes_per_unit) in units {
        v.push((format!("{node}.{unit}_percentfree"), bfree / blocks * 100.0));
        v.push((format!("{node}.{unit}_used"), (blocks - bfree) * frsize / bytes_per_unit));
        v.push((format!("{node}.{unit}_free"), bfree * frsize / bytes_per_unit));
        v.push((format!("{node}.{unit}_avail"), bavail * frsize / bytes_per_unit));
    }
    v.push((format!("{node}.inodes_percentfree"), ffree / files * 100.0));
    v.push((format!("{node}.inodes_used"), files - ffree));
    v.push((format!("{node}.inodes_free"), ffree));
    v.push((format!("{node}.inodes_avail"), favail));
    v
}

const ROOT_STATVFS: [f64; 7] =
    [4096.0, 66053021.0, 51035074.0, 8803525.0, 16777216.0, 16185590.0, 16185590.0];

#[test]
fn diskspace_reports_the_real_root_filesystem() {
    let host = Host::new("proc-1");
    let mut ds =
        DiskSpace::with_fs_stat(&Options::new(), &host.env(), Box::new(fixture_statvfs())).unwrap();
    let want = disk_expect("root", &[("byte", 1.0)], ROOT_STATVFS);
    check(&run(&mut ds, &host.at(0.0)), &as_refs(&want));
}

#[test]
fn diskspace_names_labels_excludes_and_reports_each_device_once() {
    let host = Host::new("proc-3");
    let units = [("byte", 1.0), ("gigabyte", 1024.0 * 1024.0 * 1024.0)];
    let o = opts(&[("byte_unit", "byte, gigabyte")]);
    let mut ds = DiskSpace::with_fs_stat(&o, &host.env(), Box::new(fixture_statvfs())).unwrap();
    let mut want = disk_expect("root", &units, ROOT_STATVFS);
    // /dev/vdb1 carries the label DATA (dev/disk/by-label/DATA -> ../../vdb1).
    want.extend(disk_expect(
        "DATA",
        &units,
        [4096.0, 26214400.0, 13107200.0, 13107200.0, 1048576.0, 1048000.0, 1048000.0],
    ));
    want.extend(disk_expect(
        "_var_log_old",
        &units,
        [1024.0, 2048.0, 1024.0, 512.0, 256.0, 128.0, 64.0],
    ));
    // Not listed: /export/home (exclude_filters), /var/lib/docker (the root device again),
    // tmpfs /run (not in filesystems).
    check(&run(&mut ds, &host.at(0.0)), &as_refs(&want));

    let o = opts(&[("exclude_filters", ""), ("filesystems", "xfs, ext4")]);
    let mut all = DiskSpace::with_fs_stat(&o, &host.env(), Box::new(fixture_statvfs())).unwrap();
    let out = run(&mut all, &host.at(0.0));
    assert!(names(&out).contains(&"_export_home.byte_avail"));
}

// ---- process -------------------------------------------------------------------------

const MEM_TOTAL_BYTES: f64 = 24684096.0 * 1024.0;
const PAGE: f64 = 4096.0;

/// proc-2's figures of one process.
struct Proc2 {
    /// utime, stime (ticks).
    times: [f64; 2],
    /// syscr, syscw, read_bytes, write_bytes, rchar, wchar.
    io: [f64; 6],
    /// statm: size, resident, shared, text, lib, data, dt (pages).
    statm: [f64; 7],
    /// voluntary, involuntary.
    ctx: [f64; 2],
    starttime: f64,
}

const BURNER_2: Proc2 = Proc2 {
    times: [308.0, 0.0],
    io: [69.0, 0.0, 0.0, 0.0, 288421.0, 0.0],
    statm: [3518.0, 2232.0, 1356.0, 691.0, 0.0, 1253.0, 0.0],
    ctx: [16.0, 771.0],
    starttime: 2148449.0,
};
const IO_WORKER_2: Proc2 = Proc2 {
    times: [0.0, 10.0],
    io: [101.0, 16.0, 0.0, 67112960.0, 67397285.0, 67108864.0],
    statm: [4550.0, 3254.0, 1356.0, 691.0, 0.0, 2285.0, 0.0],
    ctx: [88.0, 28.0],
    starttime: 2148450.0,
};
const SLEEPER_2: Proc2 = Proc2 {
    times: [0.0, 0.0],
    io: [20.0, 0.0, 0.0, 0.0, 13952.0, 0.0],
    statm: [730.0, 438.0, 411.0, 5.0, 0.0, 89.0, 0.0],
    ctx: [1.0, 1.0],
    starttime: 2148450.0,
};
/// proc-2's uptime.
const UPTIME_2: f64 = 21492.70;

/// The expected metrics of group `node` made of `procs` at proc-2, with `cpu_percent`.
fn group_expect(node: &str, procs: &[&Proc2], cpu_percent: Option<f64>) -> Vec<(String, f64)> {
    let sum = |f: &dyn Fn(&Proc2) -> f64| procs.iter().map(|p| f(p)).sum::<f64>();
    let mut v = Vec::new();
    let mut push = |leaf: &str, value: f64| v.push((format!("{node}.{leaf}"), value));
    if let Some(c) = cpu_percent {
        push("cpu_percent", c);
    }
    push("cpu_times.user", sum(&|p| p.times[0] / 100.0));
    push("cpu_times.system", sum(&|p| p.times[1] / 100.0));
    push("cpu_times.children_user", 0.0);
    push("cpu_times.children_system", 0.0);
    push("cpu_times.iowait", 0.0);
    for (i, leaf) in
        ["read_count", "write_count", "read_bytes", "write_bytes", "read_chars", "write_chars"]
            .iter()
            .enumerate()
    {
        push(&format!("io_counters.{leaf}"), sum(&|p| p.io[i]));
    }
    // psutil's memory_info_ex order: rss, vms, shared, text, lib, data, dirty.
    for (leaf, i) in
        [("rss", 1), ("vms", 0), ("shared", 2), ("text", 3), ("lib", 4), ("data", 5), ("dirty", 6)]
    {
        push(&format!("memory_info_ex.{leaf}"), sum(&|p| p.statm[i] * PAGE));
    }
    push("memory_percent", sum(&|p| p.statm[1] * PAGE / MEM_TOTAL_BYTES * 100.0));
    push("num_ctx_switches.voluntary", sum(&|p| p.ctx[0]));
    push("num_ctx_switches.involuntary", sum(&|p| p.ctx[1]));
    push("num_fds", 5.0 * procs.len() as f64);
    push("num_threads", procs.len() as f64);
    push("uptime", sum(&|p| UPTIME_2 - p.starttime / 100.0));
    v
}

fn process_options(pid_file: &Path) -> Options {
    opts(&[
        ("process.worker.name", "^appworker$"),
        ("process.burner.cmdline", r"burn\.py cpu"),
        ("process.python.exe", "python3, /nonexistent"),
        ("process.sleeper.pid_file", pid_file.to_str().unwrap()),
        ("process.sleeper.count_workers", "true"),
        ("process.none.name", "^nomatch$"),
        ("process.none.count_workers", "true"),
        ("unit", "B"),
    ])
}

#[test]
fn process_groups_sum_their_processes_figures() {
    let host = Host::new("proc-1");
    let pid_file = host.dir.path().join("sleep.pid");
    fs::write(&pid_file, format!("{SLEEPER}\n")).unwrap();
    let mut p = Process::new(&process_options(&pid_file), &host.env()).unwrap();
    p.set_clock_ticks(100).set_page_size(4096);
    let first = run(&mut p, &host.at(0.0));
    assert!(
        !names(&first).iter().any(|n| n.ends_with("cpu_percent")),
        "no cpu_percent before a second sample"
    );
    assert!(names(&first).contains(&"none.workers_count"));

    host.load("proc-2");
    let burner_cpu = (BURNER_2.times[0] - 116.0) / 100.0 / DT1 * 100.0;
    let io_cpu = (IO_WORKER_2.times[1] - 4.0) / 100.0 / DT1 * 100.0;
    let mut want = group_expect("burner", &[&BURNER_2], Some(burner_cpu));
    want.push(("none.workers_count".to_owned(), 0.0));
    want.extend(group_expect("python", &[&BURNER_2, &IO_WORKER_2], Some(burner_cpu + io_cpu)));
    want.extend(group_expect("sleeper", &[&SLEEPER_2], Some(0.0)));
    want.push(("sleeper.workers_count".to_owned(), 1.0));
    want.extend(group_expect("worker", &[&BURNER_2, &IO_WORKER_2], Some(burner_cpu + io_cpu)));
    check(&run(&mut p, &host.at(DT1)), &as_refs(&want));

    host.load("proc-3");
    let out = run(&mut p, &host.at(DT1 + DT2));
    let got: BTreeMap<&str, f64> = out.iter().map(|s| (s.name.as_str(), s.value)).collect();
    // The burner's pid now belongs to a new process (another start time): it has no cpu
    // history, so the group has no cpu_percent; the worker group keeps the I/O worker's.
    assert!(!got.contains_key("burner.cpu_percent"));
    assert_eq!(got["worker.cpu_percent"], 0.0);
    assert_eq!(got["burner.cpu_times.user"], 0.03);
    assert_eq!(got["burner.uptime"], 21502.70 - 21494.49);
}

#[test]
fn process_groups_without_a_match_publish_nothing_or_a_zero_count() {
    let host = Host::new("proc-1");
    let o = opts(&[("process.ghost.pid_file", "/nonexistent/ghost.pid")]);
    let mut p = Process::new(&o, &host.env()).unwrap();
    check(&run(&mut p, &host.at(0.0)), &[]);
    assert!(Process::new(&opts(&[("process.x.colour", "red")]), &host.env()).is_err());
    assert!(
        Process::new(&opts(&[("process.x.count_workers", "true")]), &host.env()).is_err(),
        "nothing to match on"
    );
    assert!(Process::new(&opts(&[("process.x.name", "(")]), &host.env()).is_err());
}

#[test]
fn process_reads_the_running_agent_itself() {
    let mut p = Process::new(&opts(&[("process.me.selfmon", "true")]), &Env::default()).unwrap();
    let t0 = Instant::now();
    let ctx = |s| RunContext { now: t0 + Duration::from_secs(s), unix_time: 0 };
    run(&mut p, &ctx(0));
    let out = run(&mut p, &ctx(1));
    let got: BTreeMap<&str, f64> = out.iter().map(|s| (s.name.as_str(), s.value)).collect();
    assert!(got["me.num_threads"] >= 1.0);
    assert!(got["me.memory_info_ex.rss"] > 0.0);
    assert!(got["me.num_fds"] >= 3.0);
    assert!(got.contains_key("me.cpu_percent"));
}

// ---- failures --------------------------------------------------------------------------

type Build = fn(&Env) -> Box<dyn Collector>;

/// The files below the proc root that a collector needs.
type Needs = &'static [&'static str];

fn boxed<C: Collector + 'static>(c: C) -> Box<dyn Collector> {
    Box::new(c)
}

/// Each collector and the files whose absence fails it.
fn collectors() -> Vec<(&'static str, Build, Needs)> {
    vec![
        ("cpu", (|e: &Env| boxed(Cpu::new(&Options::new(), e).unwrap())) as Build, &["stat"]),
        (
            "memory",
            (|e: &Env| boxed(Memory::new(&Options::new(), e).unwrap())) as Build,
            &["meminfo"],
        ),
        (
            "loadavg",
            (|e: &Env| boxed(LoadAverage::new(&Options::new(), e).unwrap())) as Build,
            &["loadavg"],
        ),
        (
            "diskspace",
            (|e: &Env| {
                boxed(
                    DiskSpace::with_fs_stat(&Options::new(), e, Box::new(fixture_statvfs()))
                        .unwrap(),
                )
            }) as Build,
            &["mounts"],
        ),
        (
            "iostat",
            (|e: &Env| boxed(Iostat::new(&Options::new(), e).unwrap())) as Build,
            &["diskstats"],
        ),
        (
            "network",
            (|e: &Env| boxed(Network::new(&Options::new(), e).unwrap())) as Build,
            &["net/dev"],
        ),
        (
            "vmstat",
            (|e: &Env| boxed(VmStat::new(&Options::new(), e).unwrap())) as Build,
            &["vmstat"],
        ),
        (
            "sockets",
            (|e: &Env| boxed(Sockets::new(&Options::new(), e).unwrap())) as Build,
            &["net/sockstat"],
        ),
        ("tcp", (|e: &Env| boxed(Tcp::new(&Options::new(), e).unwrap())) as Build, &["net/snmp"]),
        (
            "uptime",
            (|e: &Env| boxed(Uptime::new(&Options::new(), e).unwrap())) as Build,
            &["uptime"],
        ),
        (
            "entropy",
            (|e: &Env| boxed(Entropy::new(&Options::new(), e).unwrap())) as Build,
            &["sys/kernel/random/entropy_avail"],
        ),
        (
            "process",
            (|e: &Env| boxed(Process::new(&opts(&[("process.a.name", "x")]), e).unwrap())) as Build,
            &["uptime", "meminfo"],
        ),
    ]
}

#[test]
fn a_missing_file_fails_only_that_collector_and_names_the_path() {
    for (name, build, needs) in collectors() {
        for file in needs {
            let host = Host::new("proc-1");
            let env = host.env();
            fs::remove_file(host.proc().join(file)).unwrap();
            let mut c = build(&env);
            let mut out = Vec::new();
            let err = c.collect(&host.at(0.0), &mut out).expect_err(name).to_string();
            assert!(err.contains(file), "{name}: {err}");
            // Every collector that does not read that file still works on the same tree.
            for (other, build_other, other_needs) in collectors() {
                if !other_needs.contains(file) {
                    let mut c = build_other(&env);
                    c.collect(&host.at(0.0), &mut out)
                        .unwrap_or_else(|e| panic!("{other} without {file}: {e}"));
                }
            }
            // The failed collector recovers when the file comes back.
            host.load("proc-1");
            c.collect(&host.at(1.0), &mut out)
                .unwrap_or_else(|e| panic!("{name} after {file} returned: {e}"));
        }
    }
}

#[test]
fn loadavg_needs_the_online_cpu_list() {
    let host = Host::new("proc-1");
    let env = Env { sys_root: host.dir.path().join("no-sys"), ..host.env() };
    let mut load = LoadAverage::new(&Options::new(), &env).unwrap();
    let mut out = Vec::new();
    let err = load.collect(&host.at(0.0), &mut out).unwrap_err().to_string();
    assert!(err.contains("devices/system/cpu/online"), "{err}");
}

#[test]
fn garbage_files_are_errors_not_panics() {
    let host = Host::new("proc-1");
    for (_, _, needs) in collectors() {
        for file in needs {
            fs::write(host.proc().join(file), "garbage \u{1F4A9} 1/x\n").unwrap();
        }
    }
    for (name, build, _) in collectors() {
        let mut c = build(&host.env());
        let mut out = Vec::new();
        // Whether it errs or publishes nothing useful, it returns.
        let _ = c.collect(&host.at(0.0), &mut out);
        let _ = c.collect(&host.at(1.0), &mut out);
        assert!(out.iter().all(|s| s.value.is_finite()), "{name}: {out:?}");
    }
}

#[test]
fn bad_options_are_rejected_with_their_key() {
    let env = Env::default();
    let err = Cpu::new(&opts(&[("percore", "maybe")]), &env).unwrap_err().to_string();
    assert!(err.contains("percore"), "{err}");
    let err = Network::new(&opts(&[("byte_unit", "parsec")]), &env).unwrap_err().to_string();
    assert!(err.contains("byte_unit"), "{err}");
    let err = Iostat::new(&opts(&[("devices", "sd[")]), &env).unwrap_err().to_string();
    assert!(err.contains("devices"), "{err}");
    let err = DiskSpace::new(&opts(&[("exclude_filters", "(")]), &env).unwrap_err().to_string();
    assert!(err.contains("exclude_filters"), "{err}");
}

// ---- the real host -----------------------------------------------------------------------

#[test]
fn every_collector_runs_on_this_host() {
    let env = Env::default();
    let t0 = Instant::now();
    let ctx = |s| RunContext { now: t0 + Duration::from_secs(s), unix_time: 0 };
    let mut all: Vec<Box<dyn Collector>> = vec![
        Box::new(Cpu::new(&Options::new(), &env).unwrap()),
        Box::new(Memory::new(&Options::new(), &env).unwrap()),
        Box::new(LoadAverage::new(&Options::new(), &env).unwrap()),
        Box::new(DiskSpace::new(&Options::new(), &env).unwrap()),
        Box::new(Iostat::new(&opts(&[("send_zero", "true")]), &env).unwrap()),
        Box::new(Network::new(&Options::new(), &env).unwrap()),
        Box::new(VmStat::new(&Options::new(), &env).unwrap()),
        Box::new(Sockets::new(&Options::new(), &env).unwrap()),
        Box::new(Tcp::new(&Options::new(), &env).unwrap()),
        Box::new(Uptime::new(&Options::new(), &env).unwrap()),
        Box::new(Entropy::new(&Options::new(), &env).unwrap()),
    ];
    for c in &mut all {
        run(c.as_mut(), &ctx(0));
        let out = run(c.as_mut(), &ctx(1));
        assert!(
            out.iter().all(|s| s.value.is_finite() && !s.name.is_empty()),
            "{}: {out:?}",
            c.default_path()
        );
        if c.default_path() == "cpu" {
            assert!(names(&out).contains(&"total.user"));
        }
        if c.default_path() == "memory" {
            assert!(names(&out).contains(&"MemFree"));
        }
    }
}
