//! Tests of `carbon_proto::ring`: placements of a few thousand generated names, compared on
//! every run with carbon's own `carbon.hashing.ConsistentHashRing` and
//! `carbon.routers.ConsistentHashingRouter` (Debian graphite-carbon, through
//! `/usr/bin/python3`) and with `carbon-c-relay -d -t` (Debian carbon-c-relay 3.7.3), which
//! prints each cluster's ring and, for every metric read on stdin, its hash position and
//! destinations. Each reference runs once over all names and rings.

use std::collections::{HashMap, HashSet};
use std::fmt::Write as _;
use std::process::Command;

use carbon_proto::ring::{
    CRelayHash, CRelayRing, CRelayRingBuilder, ConsistentHashRing, ConsistentHashRingBuilder,
    Destination, FastHashRing, FastHashRingBuilder, HashType, RingError, parse_destinations,
};

use super::reference::{CARBON_C_RELAY, have_carbon_c_relay, have_python_module, python, run};

/// SplitMix64: a seeded generator, so every run checks the same names.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }

    fn pick<'a>(&mut self, items: &[&'a str]) -> &'a str {
        items[self.below(items.len())]
    }
}

/// `n` names: dotted names as collectors send them, tagged names, non-ASCII names, and names
/// with odd but valid UTF-8 (controls, quotes, noncharacters). None has a newline.
fn names(n: usize) -> Vec<String> {
    let mut rng = Rng(0x005e_ed0f_7269_6e67);
    let prefixes = ["servers", "carbon.agents", "stats.timers", "collectd", "app.prod", "k8s"];
    let metrics = [
        "cpu.total.user",
        "cpu.total.system",
        "memory.MemFree",
        "loadavg.01",
        "network.eth0.rx_bytes",
        "diskspace.root.byte_avail",
        "latency.p99",
        "requests.count",
        "cpuUsage",
        "metricsReceived",
    ];
    let tags = ["host", "dc", "env", "service", "region"];
    let values = ["web01", "eu-west-1", "prod", "api", "db-7", "x/y", "a=b", "über"];
    let unicode = [
        "météo.température.paris",
        "日本.東京.cpu",
        "emoji.😀.count",
        "e\u{301}.combining",
        "ελληνικά.δοκιμή",
        "кириллица.метрика",
        "\u{fffd}.replacement",
        "ü",
    ];
    let odd = [
        "ctl.\u{1}.\u{7f}",
        "quote'in.name",
        "dquote\"in.name",
        "back\\slash",
        "percent.%s.%d",
        "braces.{}.[x]",
        "nonchar.\u{ffff}.\u{10ffff}",
        "bom.\u{feff}.zw\u{200b}",
        "tab\there",
        "cr\rhere",
        "nul\0here",
        "sp ace.after",
        "a..b",
        ".lead.trail.",
        "",
        "=",
        ";",
    ];
    let mut out = Vec::with_capacity(n);
    for i in 0..n {
        let name = match i % 10 {
            0..=5 => {
                let mut s = format!(
                    "{}.{}{:02}",
                    rng.pick(&prefixes),
                    rng.pick(&["web", "db", "cache"]),
                    rng.below(100)
                );
                s.push('.');
                s.push_str(rng.pick(&metrics));
                if rng.below(3) == 0 {
                    let _ = write!(s, ".{}", rng.below(1000));
                }
                s
            }
            6 | 7 => {
                let mut s = rng.pick(&metrics).to_owned();
                for _ in 0..1 + rng.below(3) {
                    let _ = write!(s, ";{}={}", rng.pick(&tags), rng.pick(&values));
                }
                s
            }
            8 => format!("{}.{}", rng.pick(&unicode), rng.below(50)),
            _ => {
                if rng.below(4) == 0 {
                    rng.pick(&odd).to_owned()
                } else if rng.below(10) == 0 {
                    "long.".repeat(200 + rng.below(100))
                } else {
                    format!("{}{}", rng.pick(&odd), rng.below(100))
                }
            }
        };
        out.push(name);
    }
    out
}

fn dest(host: &str, port: u16, instance: Option<&str>) -> Destination {
    Destination::new(host, port, instance.map(str::to_owned))
}

/// One carbon ring to compare: its nodes, hash type and replica count, and the router
/// settings `(REPLICATION_FACTOR, DIVERSE_REPLICAS)` to compare on it.
struct CarbonCase {
    nodes: Vec<Destination>,
    hash_type: HashType,
    replicas: u32,
}

const ROUTERS: [(usize, bool); 6] =
    [(1, true), (2, true), (3, true), (1, false), (2, false), (3, false)];

fn carbon_cases(with_mmh3: bool) -> Vec<CarbonCase> {
    let case =
        |nodes: Vec<Destination>, hash_type, replicas| CarbonCase { nodes, hash_type, replicas };
    let ten: Vec<Destination> = (0..10)
        .map(|i| dest(&format!("10.0.1.{}", i / 2), 2004 + i, Some(["a", "b"][usize::from(i % 2)])))
        .collect();
    let ten_plain: Vec<Destination> =
        (1..=10).map(|i| dest(&format!("192.168.0.{i}"), 2004, None)).collect();
    let mut cases = vec![
        case(vec![dest("127.0.0.1", 2004, None)], HashType::CarbonCh, 100),
        case(
            parse_destinations("127.0.0.1:2104:a, 127.0.0.1:2204:b").unwrap(),
            HashType::CarbonCh,
            100,
        ),
        case(
            parse_destinations("10.0.0.1:2004,10.0.0.2:2004,10.0.0.3:2004").unwrap(),
            HashType::CarbonCh,
            100,
        ),
        case(ten.clone(), HashType::CarbonCh, 100),
        case(ten_plain.clone(), HashType::CarbonCh, 100),
        case(ten.clone(), HashType::Fnv1aCh, 100),
        case(vec![dest("127.0.0.1", 2004, None)], HashType::Fnv1aCh, 100),
        // fnv1a_ch keys leave the server out: equal instances (and two missing ones, "None")
        // put every position of the second node on the first's, and probing moves it up.
        case(
            vec![
                dest("10.0.0.1", 2004, Some("x")),
                dest("10.0.0.2", 2004, Some("x")),
                dest("10.0.0.3", 2004, None),
                dest("10.0.0.4", 2004, None),
                dest("10.0.0.5", 2004, Some("None")),
            ],
            HashType::Fnv1aCh,
            100,
        ),
        // Text that Python's repr escapes or quotes differently.
        case(
            vec![
                dest("it's", 2004, Some("a\"b")),
                dest("ho\\st", 2004, Some("é\u{a0}x")),
                dest("h\tx", 2004, None),
                dest("::1", 2004, Some("")),
                dest("日本", 2004, Some("\u{200b}\u{ffff}'\"")),
            ],
            HashType::CarbonCh,
            100,
        ),
        // Few replicas make the walk's quirk (the entry before the start is never examined)
        // and the collisions show.
        case(ten_plain[..3].to_vec(), HashType::CarbonCh, 1),
        case(ten[..5].to_vec(), HashType::CarbonCh, 2),
        case(ten_plain[..4].to_vec(), HashType::Fnv1aCh, 3),
        case(vec![dest("127.0.0.1", 2004, Some("solo"))], HashType::CarbonCh, 1),
    ];
    if with_mmh3 {
        cases.push(case(ten.clone(), HashType::Mmh3Ch, 100));
        cases.push(case(ten_plain[..3].to_vec(), HashType::Mmh3Ch, 2));
    }
    cases
}

/// What both comparison scripts start with: carbon's settings object for a router, the
/// cases (JSON in `argv[1]`), the names (stdin) and the output lines, printed at the end.
const SCRIPT_PRELUDE: &str = r#"
import json, sys

class Settings:
    def __init__(self, factor, diverse, hash_type):
        self.REPLICATION_FACTOR = factor
        self.DIVERSE_REPLICAS = diverse
        self.ROUTER_HASH_TYPE = hash_type

cases = json.loads(sys.argv[1])
names = [n.decode('utf-8') for n in sys.stdin.buffer.read().split(b'\n')]
out = []
"#;

/// Python that prints, for each ring: `R` and its entries as `position:node`, then a line per
/// name: position, get_node, get_nodes and each router's destinations (node indices).
const CARBON_SCRIPT: &str = r#"
from carbon.hashing import ConsistentHashRing, carbonHash
from carbon.routers import ConsistentHashingRouter
for case in cases:
    dests = [tuple(d) for d in case['nodes']]
    nodes = [(h, i) for (h, p, i) in dests]
    index = {n: k for k, n in enumerate(nodes)}
    ring = ConsistentHashRing(nodes, replica_count=case['replicas'], hash_type=case['hash'])
    out.append('R ' + ' '.join('%d:%d' % (p, index[n]) for (p, n) in ring.ring))
    routers = []
    for factor, diverse in case['routers']:
        router = ConsistentHashingRouter(Settings(factor, diverse, case['hash']))
        router.ring = ConsistentHashRing([], replica_count=case['replicas'], hash_type=case['hash'])
        for d in dests:
            router.addDestination(d)
        routers.append(router)
    for name in names:
        fields = [str(carbonHash(name, case['hash'])), str(index[ring.get_node(name)]),
                  ','.join(str(index[n]) for n in ring.get_nodes(name))]
        for router in routers:
            fields.append(','.join(str(index[(h, i)]) for (h, p, i) in router.getDestinations(name)))
        out.append(' '.join(fields))
sys.stdout.write('\n'.join(out) + '\n')
"#;

/// JSON for one string (the names and hosts here have no character JSON cannot carry).
fn json_str(s: &str) -> String {
    serde_json::to_string(s).unwrap()
}

fn cases_json(cases: &[CarbonCase]) -> String {
    let mut out = String::from("[");
    for (k, case) in cases.iter().enumerate() {
        if k > 0 {
            out.push(',');
        }
        let nodes: Vec<String> = case
            .nodes
            .iter()
            .map(|d| {
                let instance = d.instance().map_or("null".to_owned(), json_str);
                format!("[{},{},{}]", json_str(d.host()), d.port(), instance)
            })
            .collect();
        let routers: Vec<String> = ROUTERS
            .iter()
            .map(|(f, d)| format!("[{f},{}]", if *d { "true" } else { "false" }))
            .collect();
        let _ = write!(
            out,
            r#"{{"nodes":[{}],"hash":"{}","replicas":{},"routers":[{}]}}"#,
            nodes.join(","),
            case.hash_type,
            case.replicas,
            routers.join(",")
        );
    }
    out.push(']');
    out
}

/// Node indices as the script prints them: `0,2,1`.
fn index_list(it: impl Iterator<Item = usize>) -> String {
    it.map(|i| i.to_string()).collect::<Vec<_>>().join(",")
}

fn carbon_ring(case: &CarbonCase, factor: usize, diverse: bool) -> ConsistentHashRing {
    ConsistentHashRingBuilder::new()
        .hash_type(case.hash_type)
        .replica_count(case.replicas)
        .replication_factor(factor)
        .diverse_replicas(diverse)
        .build(case.nodes.clone())
        .unwrap()
}

fn position_in(ring: &ConsistentHashRing, d: &Destination) -> usize {
    ring.nodes().iter().position(|n| n == d).unwrap()
}

/// Our answers in the script's format, for one case.
fn carbon_lines(case: &CarbonCase, names: &[String]) -> Vec<String> {
    let ring = carbon_ring(case, 1, true);
    let routers: Vec<ConsistentHashRing> =
        ROUTERS.iter().map(|&(f, d)| carbon_ring(case, f, d)).collect();
    let mut lines = Vec::with_capacity(names.len() + 1);
    let entries: Vec<String> =
        ring.entries().map(|(p, d)| format!("{p}:{}", position_in(&ring, d))).collect();
    lines.push(format!("R {}", entries.join(" ")));
    for name in names {
        let mut fields = vec![
            ring.position(name).to_string(),
            position_in(&ring, ring.get_node(name)).to_string(),
            index_list(ring.get_nodes(name).map(|d| position_in(&ring, d))),
        ];
        for router in &routers {
            fields.push(index_list(router.destinations(name).indices()));
        }
        lines.push(fields.join(" "));
    }
    lines
}

#[test]
fn carbon_rings_place_names_like_carbon() {
    if !have_python_module("carbon.hashing") {
        return;
    }
    // Debian has no mmh3 module; where Python has one, mmh3_ch is compared too.
    let with_mmh3 = Command::new(super::reference::PYTHON)
        .args(["-c", "import mmh3"])
        .output()
        .is_ok_and(|o| o.status.success());
    let names = names(3000);
    let cases = carbon_cases(with_mmh3);
    let input = names.join("\n");
    let out = python(
        &format!("{SCRIPT_PRELUDE}{CARBON_SCRIPT}"),
        &[&cases_json(&cases)],
        input.as_bytes(),
    );
    let out = String::from_utf8(out).unwrap();
    let theirs: Vec<&str> = out.lines().collect();
    let mut ours = Vec::new();
    for case in &cases {
        ours.extend(carbon_lines(case, &names));
    }
    assert_eq!(theirs.len(), ours.len());
    let mut checked = 0;
    for (k, (t, o)) in theirs.iter().zip(&ours).enumerate() {
        let case = k / (names.len() + 1);
        let row = k % (names.len() + 1);
        let what =
            if row == 0 { "ring entries".to_owned() } else { format!("name {:?}", names[row - 1]) };
        assert_eq!(
            t,
            o,
            "case {case} ({} nodes, {}, {} replicas): {what}\n(fields: position, get_node, get_nodes, then routers {ROUTERS:?})",
            cases[case].nodes.len(),
            cases[case].hash_type,
            cases[case].replicas
        );
        checked += 1;
    }
    eprintln!("compared {checked} ring lines with carbon.hashing over {} rings", cases.len());
}

/// Ring placements for mmh3_ch recorded from carbon's ConsistentHashRing with the `mmh3`
/// module (5.x) from PyPI, which Debian does not package:
/// `ConsistentHashRing([('10.0.0.1', None), ('10.0.0.2', 'b')], hash_type='mmh3_ch')`.
#[test]
fn mmh3_ring_matches_recorded_carbon_placements() {
    let ring = ConsistentHashRingBuilder::new()
        .hash_type(HashType::Mmh3Ch)
        .replication_factor(2)
        .build([dest("10.0.0.1", 2004, None), dest("10.0.0.2", 2004, Some("b"))])
        .unwrap();
    let first: Vec<(i64, &str)> = ring.entries().take(3).map(|(p, d)| (p, d.host())).collect();
    assert_eq!(first, MMH3_FIRST_ENTRIES);
    for (name, position, host) in MMH3_PLACEMENTS {
        assert_eq!(ring.position(name), position, "{name}");
        assert_eq!(ring.get_node(name).host(), host, "{name}");
        let walk: Vec<&str> = ring.get_nodes(name).map(Destination::host).collect();
        let other = if host == "10.0.0.1" { "10.0.0.2" } else { "10.0.0.1" };
        assert_eq!(walk, [host, other], "{name}");
    }
}

const MMH3_FIRST_ENTRIES: [(i64, &str); 3] =
    [(-2_128_040_468, "10.0.0.1"), (-2_053_872_864, "10.0.0.2"), (-2_030_548_671, "10.0.0.1")];

const MMH3_PLACEMENTS: [(&str, i64, &str); 6] = [
    ("foo.bar", -154_558_337, "10.0.0.1"),
    ("servers.web01.cpu.user", 1_529_179_887, "10.0.0.2"),
    ("a", 1_009_084_850, "10.0.0.1"),
    ("carbon.agents.host-a.cpuUsage", 1_049_736_081, "10.0.0.2"),
    ("météo.température", -2_014_158_742, "10.0.0.1"),
    ("日本.東京", 644_670_075, "10.0.0.1"),
];

/// One carbon-c-relay cluster to compare.
struct CRelayCase {
    hash: CRelayHash,
    replication: usize,
    servers: Vec<Destination>,
}

fn c_relay_cases() -> Vec<CRelayCase> {
    // Each cluster on its own ports: carbon-c-relay shares a server between clusters by
    // host:port and insists its instance is the same everywhere.
    let mut port = 2100;
    let mut servers = |hosts: &[&str], instances: &[Option<&str>]| {
        hosts
            .iter()
            .zip(instances.iter().cycle())
            .map(|(h, i)| {
                port += 1;
                dest(h, port, *i)
            })
            .collect::<Vec<_>>()
    };
    let ten_hosts: Vec<String> = (1..=10).map(|i| format!("10.0.2.{i}")).collect();
    let ten: Vec<&str> = ten_hosts.iter().map(String::as_str).collect();
    let case = |hash, replication, servers| CRelayCase { hash, replication, servers };
    use CRelayHash::{CarbonCh, Fnv1aCh, JumpFnv1aCh};
    vec![
        case(CarbonCh, 1, servers(&["127.0.0.1"], &[None])),
        case(CarbonCh, 2, servers(&["127.0.0.1", "127.0.0.1"], &[Some("a"), Some("b")])),
        case(CarbonCh, 3, servers(&["10.0.0.1", "10.0.0.2", "10.0.0.3"], &[None])),
        case(CarbonCh, 2, servers(&ten, &[Some("a"), None, Some("c")])),
        // Same host and instance on two ports: identical keys, every position equal; the
        // sort keeps config order and the second server is never reached.
        case(CarbonCh, 1, servers(&["10.0.3.1", "10.0.3.1", "10.0.3.2"], &[Some("x")])),
        case(Fnv1aCh, 1, servers(&["127.0.0.1"], &[None])),
        case(Fnv1aCh, 2, servers(&["127.0.0.1", "127.0.0.2"], &[None])),
        case(Fnv1aCh, 3, servers(&ten, &[None])),
        case(
            Fnv1aCh,
            2,
            servers(&ten, &[Some("0f3a"), Some("b7c1"), Some("e29d"), Some("4c88"), Some("91ab")]),
        ),
        // Equal instances: equal positions, the lower host (then port) wins them all.
        case(Fnv1aCh, 1, servers(&["10.0.4.9", "10.0.4.10", "10.0.4.2"], &[Some("same")])),
        case(JumpFnv1aCh, 1, servers(&["127.0.0.1"], &[None])),
        case(
            JumpFnv1aCh,
            2,
            servers(&["127.0.0.1", "127.0.0.2", "127.0.0.3"], &[Some("2"), Some("1"), None]),
        ),
        case(JumpFnv1aCh, 3, servers(&ten, &[None])),
        case(
            JumpFnv1aCh,
            2,
            servers(
                &ten,
                &[Some("10"), Some("9"), Some("b"), None, Some("a"), Some("11"), Some("-3"), None],
            ),
        ),
    ]
}

fn c_relay_config(cases: &[CRelayCase]) -> String {
    let mut conf = String::new();
    for (k, case) in cases.iter().enumerate() {
        let _ = write!(conf, "cluster c{k} {} replication {}", case.hash, case.replication);
        for s in &case.servers {
            let _ = write!(conf, " {}:{}", bracketed(s.host()), s.port());
            if let Some(i) = s.instance() {
                let _ = write!(conf, "={i}");
            }
        }
        conf.push_str(";\n");
    }
    conf.push_str("match * send to");
    for k in 0..cases.len() {
        let _ = write!(conf, " c{k}");
    }
    conf.push_str(";\n");
    conf
}

fn bracketed(host: &str) -> String {
    if host.contains(':') { format!("[{host}]") } else { host.to_owned() }
}

/// How carbon-c-relay prints a destination in test mode.
fn printed(d: &Destination) -> String {
    format!("{}:{}", bracketed(d.host()), d.port())
}

/// How carbon-c-relay's ring dump prints an entry: `pos@host:port[=instance]`, the server
/// part cut to 20 bytes.
fn dumped(position: u32, d: &Destination) -> String {
    let mut server = format!("{}:{}", d.host(), d.port());
    if let Some(i) = d.instance() {
        let _ = write!(server, "={i}");
    }
    server.truncate(20);
    format!("{position}@{server}")
}

/// What `carbon-c-relay -d -t` printed: each cluster's ring dump, and for each metric its
/// key and, per cluster, the hash position and destinations.
struct CRelayOutput {
    rings: HashMap<String, Vec<String>>,
    routes: Vec<RelayedMetric>,
}

/// One metric's block in test mode.
struct RelayedMetric {
    key: String,
    clusters: Vec<ClusterRoute>,
}

/// One cluster's part of a metric's block.
struct ClusterRoute {
    cluster: String,
    position: u32,
    destinations: Vec<String>,
}

fn parse_c_relay_output(out: &str) -> CRelayOutput {
    let mut rings: HashMap<String, Vec<String>> = HashMap::new();
    let mut routes: Vec<RelayedMetric> = Vec::new();
    let mut ring: Option<String> = None;
    for line in out.split('\n') {
        if let Some(rest) = line.strip_prefix("# hash ring for ") {
            ring = Some(rest.trim_end_matches(" follows").to_owned());
            continue;
        }
        if let Some(name) = &ring {
            let tokens: Vec<&str> = line.split_whitespace().collect();
            if !tokens.is_empty() && tokens.iter().all(|t| t.contains('@')) {
                rings.entry(name.clone()).or_default().extend(tokens.iter().map(|t| t.to_string()));
                continue;
            }
            ring = None;
        }
        if let Some(key) = line.strip_prefix("    * -> ") {
            routes.push(RelayedMetric { key: key.to_owned(), clusters: Vec::new() });
            continue;
        }
        // Before the first metric comes the configuration dump.
        let Some(metric) = routes.last_mut() else { continue };
        if let Some(rest) = line.strip_prefix("        hash_pos(") {
            let cluster = metric.clusters.last_mut().expect("hash_pos before a cluster");
            cluster.position = rest.trim_end_matches(')').parse().unwrap();
        } else if let Some(dest) = line.strip_prefix("        ") {
            let cluster = metric.clusters.last_mut().expect("destination before a cluster");
            cluster.destinations.push(dest.to_owned());
        } else if let Some(header) =
            line.strip_prefix("    ").filter(|l| l.ends_with(')') && !l.starts_with(' '))
        {
            let name = header.split('(').nth(1).unwrap().trim_end_matches(')').to_owned();
            metric.clusters.push(ClusterRoute {
                cluster: name,
                position: 0,
                destinations: Vec::new(),
            });
        }
    }
    CRelayOutput { rings, routes }
}

/// The names carbon-c-relay reads back unchanged: one per line, no white space (it ends the
/// metric), no NUL.
fn c_relay_names(names: &[String]) -> Vec<String> {
    names
        .iter()
        .filter(|n| {
            !n.is_empty() && !n.bytes().any(|b| b.is_ascii_whitespace() || b == 0 || b == 0x0b)
        })
        .cloned()
        .collect()
}

#[test]
fn c_relay_rings_place_names_like_carbon_c_relay() {
    if !have_carbon_c_relay() {
        return;
    }
    let cases = c_relay_cases();
    let rings: Vec<CRelayRing> = cases
        .iter()
        .map(|c| {
            CRelayRingBuilder::new(c.hash)
                .replication(c.replication)
                .build(c.servers.clone())
                .unwrap()
        })
        .collect();
    let names = c_relay_names(&names(4000));
    assert!(names.len() > 3000);
    // Every seventh as a whole plaintext line: only the metric, up to the space, is hashed.
    let lines: Vec<String> = names
        .iter()
        .enumerate()
        .map(|(i, n)| if i % 7 == 0 { format!("{n} 1.5 1700000000") } else { n.clone() })
        .collect();

    let dir = tempfile::tempdir().unwrap();
    let conf = dir.path().join("relay.conf");
    std::fs::write(&conf, c_relay_config(&cases)).unwrap();
    let mut input = lines.join("\n");
    input.push('\n');
    let out = run(
        Command::new(CARBON_C_RELAY).arg("-d").arg("-t").arg("-f").arg(&conf),
        input.as_bytes(),
    );
    let out = parse_c_relay_output(&String::from_utf8_lossy(&out));

    for (k, ring) in rings.iter().enumerate() {
        let theirs =
            out.rings.get(&format!("c{k}")).unwrap_or_else(|| panic!("no ring dump for c{k}"));
        let ours: Vec<String> = ring.entries().map(|(p, d)| dumped(p, d)).collect();
        assert_eq!(theirs, &ours, "ring of c{k} ({})", cases[k].hash);
    }

    assert_eq!(out.routes.len(), names.len(), "one route per name");
    let mut compared = 0;
    for ((metric, name), line) in out.routes.iter().zip(&names).zip(&lines) {
        // Test mode routes the name as it was read.
        assert_eq!(metric.key.as_bytes(), name.as_bytes());
        assert_eq!(metric.clusters.len(), rings.len(), "{name:?}");
        for (k, (ring, theirs)) in rings.iter().zip(&metric.clusters).enumerate() {
            let what = format!("{line:?} in c{k} ({})", cases[k].hash);
            assert_eq!(theirs.cluster, format!("c{k}"));
            assert_eq!(ring.position(line), theirs.position, "hash_pos of {what}");
            let ours: Vec<String> = ring.route(line).map(printed).collect();
            assert_eq!(theirs.destinations, ours, "destinations of {what}");
            compared += 1;
        }
    }
    eprintln!("compared {compared} routes with carbon-c-relay over {} clusters", rings.len());
}

#[test]
fn destination_strings_parse_like_carbon() {
    if !have_python_module("carbon.util") {
        return;
    }
    let inputs = [
        "127.0.0.1:2004",
        "127.0.0.1:2004:a",
        " cache-1.example.com:2104:b ",
        "[::1]:2004",
        "[fe80::1%eth0]:2004:x",
        "h:2004:",
        "h:2004:a:b",
        "h: 2004",
        "h:+2004",
        "[::1]:2004:a]:3",
    ];
    let script = "import sys\nfrom carbon.util import parseDestination\nfor line in sys.stdin.read().split('\\n'):\n    print(repr(parseDestination(line)))\n";
    let out = python(script, &[], inputs.join("\n").as_bytes());
    let out = String::from_utf8(out).unwrap();
    for (input, theirs) in inputs.iter().zip(out.lines()) {
        let d = Destination::parse(input).unwrap();
        let instance = d.instance().map_or("None".to_owned(), |i| format!("'{i}'"));
        assert_eq!(theirs, format!("('{}', {}, {instance})", d.host(), d.port()), "{input:?}");
    }
}

#[test]
fn refuses_what_carbon_cannot_route() {
    // carbon's relay raises on a second destination with the same host and instance.
    let err = ConsistentHashRingBuilder::new()
        .build(parse_destinations("10.0.0.1:2004:a,10.0.0.1:2104:a").unwrap())
        .unwrap_err();
    assert!(matches!(err, RingError::DuplicateNode { .. }));
    assert_eq!(
        err.to_string(),
        "destination 10.0.0.1:2104:a is in the ring twice (same host and instance)"
    );
    let err = parse_destinations("10.0.0.1:2004,10.0.0.2").unwrap_err();
    assert_eq!(err.to_string(), "bad destination \"10.0.0.2\": no port");
    let err: carbon_proto::Error = err.into();
    assert!(matches!(err, carbon_proto::Error::Ring(_)));
}

/// A pure-Python MurmurHash3 x86_32 installed as the `mmh3` module when Python has none
/// (Debian does not package it), so carbon's `FastHashRing` runs with its default hash type.
/// It is checked against values the real `mmh3` gave (see [`MMH3_PLACEMENTS`]) before use.
const MMH3_SHIM: &str = r#"
import sys, types
try:
    import mmh3
except ImportError:
    def _mmh3_hash(key, seed=0):
        data = key.encode('utf-8') if isinstance(key, str) else bytes(key)
        c1, c2, m = 0xcc9e2d51, 0x1b873593, 0xffffffff
        h, n = seed & m, len(data)
        nb = n - n % 4
        for i in range(0, nb, 4):
            k = (int.from_bytes(data[i:i + 4], 'little') * c1) & m
            k = (((k << 15) | (k >> 17)) & m) * c2 & m
            h ^= k
            h = ((((h << 13) | (h >> 19)) & m) * 5 + 0xe6546b64) & m
        tail, k = data[nb:], 0
        if len(tail) >= 3: k ^= tail[2] << 16
        if len(tail) >= 2: k ^= tail[1] << 8
        if len(tail) >= 1:
            k = ((k ^ tail[0]) * c1) & m
            k = (((k << 15) | (k >> 17)) & m) * c2 & m
            h ^= k
        h ^= n
        h ^= h >> 16; h = (h * 0x85ebca6b) & m
        h ^= h >> 13; h = (h * 0xc2b2ae35) & m
        h ^= h >> 16
        return h - (1 << 32) if h & 0x80000000 else h
    mmh3 = types.ModuleType('mmh3')
    mmh3.hash = _mmh3_hash
    sys.modules['mmh3'] = mmh3
for key, want in json.loads(sys.argv[2]):
    assert mmh3.hash(key) == want, (key, mmh3.hash(key), want)
"#;

/// Python that prints, for each fast ring: `R` and its sorted nodes as `position:node`, then a
/// line per name: position, get_nodes and each router's destinations (node indices). The
/// routers are carbon's `FastHashingRouter`, given their destinations as the relay does.
const FAST_SCRIPT: &str = r#"
from carbon.routers import FastHashingRouter
for case in cases:
    dests = [tuple(d) for d in case['nodes']]
    index = {(h, i): k for k, (h, p, i) in enumerate(dests)}
    routers = []
    for factor, diverse in case['routers']:
        router = FastHashingRouter(Settings(factor, diverse, case['hash']))
        for d in dests:
            router.addDestination(d)
        routers.append(router)
    ring = routers[0].ring
    out.append('R ' + ' '.join('%d:%d' % (p, index[n]) for (p, n) in ring.sorted_nodes))
    for name in names:
        fields = [str(ring._hash(name)), ','.join(str(index[n]) for n in ring.get_nodes(name))]
        for router in routers:
            fields.append(','.join(str(index[(h, i)]) for (h, p, i) in router.getDestinations(name)))
        out.append(' '.join(fields))
sys.stdout.write('\n'.join(out) + '\n')
"#;

/// One fast ring to compare: its nodes and `ROUTER_HASH_TYPE` (`None`: unset, `mmh3_ch`).
struct FastCase {
    nodes: Vec<Destination>,
    hash_type: Option<HashType>,
}

fn fast_cases() -> Vec<FastCase> {
    let ten: Vec<Destination> = (0..10)
        .map(|i| dest(&format!("10.0.1.{}", i / 2), 2004 + i, Some(["a", "b"][usize::from(i % 2)])))
        .collect();
    let three = parse_destinations("10.0.0.1:2004,10.0.0.2:2004,10.0.0.3:2004").unwrap();
    let odd = vec![
        dest("it's", 2004, Some("a\"b")),
        dest("ho\\st", 2004, Some("é\u{a0}x")),
        dest("h\tx", 2004, None),
        dest("日本", 2004, Some("\u{200b}'\"")),
    ];
    vec![
        FastCase { nodes: ten.clone(), hash_type: None },
        FastCase { nodes: ten.clone(), hash_type: Some(HashType::CarbonCh) },
        FastCase { nodes: ten, hash_type: Some(HashType::Fnv1aCh) },
        FastCase { nodes: three, hash_type: None },
        FastCase { nodes: vec![dest("127.0.0.1", 2004, None)], hash_type: None },
        FastCase { nodes: odd, hash_type: Some(HashType::CarbonCh) },
    ]
}

fn fast_ring(case: &FastCase, factor: usize, diverse: bool) -> FastHashRing {
    let mut builder = FastHashRingBuilder::new();
    if let Some(h) = case.hash_type {
        builder.hash_type(h);
    }
    builder.replication_factor(factor).diverse_replicas(diverse).build(case.nodes.clone()).unwrap()
}

fn fast_cases_json(cases: &[FastCase]) -> String {
    let items: Vec<String> = cases
        .iter()
        .map(|case| {
            let nodes: Vec<String> = case
                .nodes
                .iter()
                .map(|d| {
                    let instance = d.instance().map_or("null".to_owned(), json_str);
                    format!("[{},{},{}]", json_str(d.host()), d.port(), instance)
                })
                .collect();
            let routers: Vec<String> = ROUTERS.iter().map(|(f, d)| format!("[{f},{d}]")).collect();
            let hash = case.hash_type.map_or("null".to_owned(), |h| json_str(h.as_str()));
            format!(
                r#"{{"nodes":[{}],"hash":{hash},"routers":[{}]}}"#,
                nodes.join(","),
                routers.join(",")
            )
        })
        .collect();
    format!("[{}]", items.join(","))
}

/// Our answers in [`FAST_SCRIPT`]'s format, for one case.
fn fast_lines(case: &FastCase, names: &[String]) -> Vec<String> {
    let routers: Vec<FastHashRing> = ROUTERS.iter().map(|&(f, d)| fast_ring(case, f, d)).collect();
    let ring = &routers[0];
    let at = |d: &Destination| case.nodes.iter().position(|n| n == d).unwrap();
    let entries: Vec<String> = ring.entries().map(|(p, d)| format!("{p}:{}", at(d))).collect();
    // Equal positions would be ordered by Python's per-process string hashing: none here.
    let positions: HashSet<i64> = ring.entries().map(|(p, _)| p).collect();
    assert_eq!(positions.len(), case.nodes.len(), "a fast case has two nodes on one position");
    let mut lines = vec![format!("R {}", entries.join(" "))];
    for name in names {
        let mut fields =
            vec![ring.position(name).to_string(), index_list(ring.get_nodes(name).map(at))];
        for router in &routers {
            fields.push(index_list(router.destinations(name).indices()));
        }
        lines.push(fields.join(" "));
    }
    lines
}

/// `RELAY_METHOD = fast-hashing`: 10,000 names through carbon's own `FastHashingRouter`
/// (every `REPLICATION_FACTOR`/`DIVERSE_REPLICAS` pair of [`ROUTERS`]) and through ours.
#[test]
fn fast_rings_place_names_like_carbon() {
    if !have_python_module("carbon.routers") {
        return;
    }
    let names = names(10_000);
    let cases = fast_cases();
    let known: Vec<String> =
        MMH3_PLACEMENTS.iter().map(|(k, h, _)| format!("[{},{h}]", json_str(k))).collect();
    let script = format!("{SCRIPT_PRELUDE}{MMH3_SHIM}\n{FAST_SCRIPT}");
    let out = python(
        &script,
        &[&fast_cases_json(&cases), &format!("[{}]", known.join(","))],
        names.join("\n").as_bytes(),
    );
    let out = String::from_utf8(out).unwrap();
    let theirs: Vec<&str> = out.lines().collect();
    let ours: Vec<String> = cases.iter().flat_map(|c| fast_lines(c, &names)).collect();
    assert_eq!(theirs.len(), ours.len());
    for (k, (t, o)) in theirs.iter().zip(&ours).enumerate() {
        let (case, row) = (k / (names.len() + 1), k % (names.len() + 1));
        let what =
            if row == 0 { "sorted nodes".to_owned() } else { format!("{:?}", names[row - 1]) };
        assert_eq!(
            t,
            o,
            "fast case {case} ({} nodes, {:?}): {what}\n(fields: position, get_nodes, then routers {ROUTERS:?})",
            cases[case].nodes.len(),
            cases[case].hash_type
        );
    }
    eprintln!(
        "compared {} fast-hashing lines with carbon.routers over {} rings",
        ours.len(),
        cases.len()
    );
}
