//! Diamond's `RedisCollector`: `INFO` and `CONFIG GET maxmemory` from one or more Redis
//! instances, over plain RESP2 on TCP or a unix socket.
//!
//! Every metric is a gauge named `<nick>.<key>` under `redis.`, where `<nick>` is the
//! instance's nickname (its port unless given) and `<key>` is Diamond's renamed key:
//!
//! | published | INFO field |
//! |---|---|
//! | `clients.blocked`, `clients.connected`, `clients.longest_output_list` | `blocked_clients`, `connected_clients`, `client_longest_output_list` |
//! | `cpu.parent.sys`, `cpu.parent.user` | `used_cpu_sys`, `used_cpu_user` |
//! | `cpu.children.sys`, `cpu.children.user` | `used_cpu_sys_children`, `used_cpu_user_children` |
//! | `hash_max_zipmap.entries`, `hash_max_zipmap.value` | `hash_max_zipmap_*` (Redis 2.0) |
//! | `keys.evicted`, `keys.expired` | `evicted_keys`, `expired_keys` |
//! | `keyspace.hits`, `keyspace.misses` | `keyspace_hits`, `keyspace_misses` |
//! | `last_save.changes_since`, `last_save.time` | `rdb_changes_since_last_save`, `rdb_last_save_time` (or the 2.4 names) |
//! | `last_save.time_since` | now - `last_save.time` |
//! | `memory.internal_view`, `memory.external_view`, `memory.fragmentation_ratio` | `used_memory`, `used_memory_rss`, `mem_fragmentation_ratio` |
//! | `memory.used_percent` | 100 x `used_memory` / `maxmemory` (2 decimals; 0 when maxmemory is 0) |
//! | `process.commands_processed`, `process.connections_received`, `process.uptime` | `total_commands_processed`, `total_connections_received`, `uptime_in_seconds` |
//! | `pubsub.channels`, `pubsub.patterns` | `pubsub_channels`, `pubsub_patterns` |
//! | `replication.master` | 1 when `role:master`, else 0 |
//! | `replication.master_link_status` | 1 when `up`, else 0 (replicas only) |
//! | `replication.master_sync_in_progress` | `master_sync_in_progress` |
//! | `slaves.connected`, `slaves.last_io` | `connected_slaves`, `master_last_io_seconds_ago` |
//! | `db<N>.<field>` | every `field=value` of the `db<N>` keyspace line, N below `databases` |
//!
//! Options (Diamond's): `host` (`localhost`, or `unix:/path`), `port` (6379), `auth`,
//! `instances` (`nick@host:port/password`, `nick@:port`, `nick@host`,
//! `nick@unix:/path:/password`, comma separated; overrides host/port), `databases` (16),
//! `connect_timeout` (5 s), `timeout` (10 s). `db` is accepted and ignored: INFO is
//! server-wide.

use std::collections::BTreeMap;
use std::io::{Read, Write};
use std::net::TcpStream;
use std::os::unix::net::UnixStream;
use std::time::{Duration, Instant};

use super::resp::{self, Reply};
use super::{AppError, Timeouts, http, sanitize_node};
use crate::error::Result;
use crate::options::Options;
use crate::sample::{Collector, Env, RunContext, Sample};

const DEFAULT_PORT: u16 = 6379;
/// The most bytes we read for the replies of one exchange.
const MAX_EXCHANGE_BYTES: usize = 32 << 20;

/// Diamond's renamed keys: published name, then the INFO fields that give it (first found
/// wins; the later ones are older or newer spellings).
const KEYS: &[(&str, &[&str])] = &[
    ("clients.blocked", &["blocked_clients"]),
    ("clients.connected", &["connected_clients"]),
    ("clients.longest_output_list", &["client_longest_output_list"]),
    ("cpu.parent.sys", &["used_cpu_sys"]),
    ("cpu.children.sys", &["used_cpu_sys_children", "used_cpu_sys_childrens"]),
    ("cpu.parent.user", &["used_cpu_user"]),
    ("cpu.children.user", &["used_cpu_user_children", "used_cpu_user_childrens"]),
    ("hash_max_zipmap.entries", &["hash_max_zipmap_entries"]),
    ("hash_max_zipmap.value", &["hash_max_zipmap_value"]),
    ("keys.evicted", &["evicted_keys"]),
    ("keys.expired", &["expired_keys"]),
    ("keyspace.hits", &["keyspace_hits"]),
    ("keyspace.misses", &["keyspace_misses"]),
    ("last_save.changes_since", &["rdb_changes_since_last_save", "changes_since_last_save"]),
    ("last_save.time", &["rdb_last_save_time", "last_save_time"]),
    ("memory.internal_view", &["used_memory"]),
    ("memory.external_view", &["used_memory_rss"]),
    ("memory.fragmentation_ratio", &["mem_fragmentation_ratio"]),
    ("process.commands_processed", &["total_commands_processed"]),
    ("process.connections_received", &["total_connections_received"]),
    ("process.uptime", &["uptime_in_seconds"]),
    ("pubsub.channels", &["pubsub_channels"]),
    ("pubsub.patterns", &["pubsub_patterns"]),
    ("replication.master_sync_in_progress", &["master_sync_in_progress"]),
    ("slaves.connected", &["connected_slaves"]),
    ("slaves.last_io", &["master_last_io_seconds_ago"]),
];

/// Where one Redis instance listens.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Endpoint {
    /// A TCP host and port.
    Tcp {
        /// Host name or address.
        host: String,
        /// Port.
        port: u16,
    },
    /// A unix socket path.
    Unix(String),
}

/// One configured instance.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Instance {
    /// The node under `redis.` (the port unless a nickname was given), sanitised.
    pub nick: String,
    /// Where it listens.
    pub endpoint: Endpoint,
    /// The `AUTH` password.
    pub auth: Option<String>,
}

impl Instance {
    /// `host:port` or the socket path, for messages.
    fn addr(&self) -> String {
        match &self.endpoint {
            Endpoint::Tcp { host, port } => format!("{host}:{port}"),
            Endpoint::Unix(path) => format!("unix:{path}"),
        }
    }
}

/// Parses one `instances` item as Diamond spells it (see the module docs).
///
/// # Errors
///
/// A description of a bad port or an empty socket path.
pub fn parse_instance(spec: &str) -> Result<Instance, String> {
    let (nick, rest) = match spec.split_once('@') {
        Some((n, r)) => (Some(n.trim()).filter(|n| !n.is_empty()), r.trim()),
        None => (None, spec.trim()),
    };
    let port_of = |p: &str| -> Result<u16, String> {
        p.parse::<u16>()
            .ok()
            .filter(|&p| p != 0)
            .ok_or_else(|| format!("bad port {p:?} in {spec:?}"))
    };
    let (endpoint, auth, port) = if let Some(sock) = rest.strip_prefix("unix:") {
        // `unix:/path:/password`: the colon before the slash separates the password.
        let (path, auth) = match sock.split_once(":/") {
            Some((p, a)) => (p, Some(a)),
            None => (sock, None),
        };
        if path.is_empty() {
            return Err(format!("empty socket path in {spec:?}"));
        }
        (Endpoint::Unix(path.to_owned()), auth, DEFAULT_PORT)
    } else {
        let (hostport, auth) = match rest.split_once('/') {
            Some((h, a)) => (h, Some(a)),
            None => (rest, None),
        };
        let (host, port) = match hostport.split_once(':') {
            Some(("", p)) => ("localhost", port_of(p)?),
            Some((h, p)) => (h, port_of(p)?),
            None if hostport.is_empty() => ("localhost", DEFAULT_PORT),
            None => (hostport, DEFAULT_PORT),
        };
        (Endpoint::Tcp { host: host.to_owned(), port }, auth, port)
    };
    let nick = sanitize_node(&nick.map_or_else(|| port.to_string(), str::to_owned));
    let auth = auth.filter(|a| !a.is_empty()).map(str::to_owned);
    Ok(Instance { nick, endpoint, auth })
}

/// Parses INFO text into field -> value (section headers and blank lines skipped).
pub fn parse_info(text: &str) -> BTreeMap<&str, &str> {
    text.lines()
        .map(|l| l.trim_end_matches('\r'))
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
        .filter_map(|l| l.split_once(':'))
        .collect()
}

/// Turns one instance's INFO fields (and `maxmemory`, when CONFIG GET answered) into Diamond's
/// metrics, names relative to the instance's node.
pub fn info_metrics(
    info: &BTreeMap<&str, &str>,
    maxmemory: Option<f64>,
    databases: u64,
    unix_time: i64,
) -> Vec<(String, f64)> {
    let num = |field: &str| info.get(field).and_then(|v| v.trim().parse::<f64>().ok());
    let mut out = Vec::new();
    for (name, fields) in KEYS {
        if let Some(v) = fields.iter().find_map(|f| num(f)) {
            out.push(((*name).to_owned(), v));
        }
    }
    if let Some(role) = info.get("role") {
        out.push(("replication.master".to_owned(), f64::from(u8::from(*role == "master"))));
    }
    if let Some(link) = info.get("master_link_status") {
        out.push(("replication.master_link_status".to_owned(), f64::from(u8::from(*link == "up"))));
    }
    if let (Some(max), Some(used)) = (maxmemory, num("used_memory")) {
        let pct = if max > 0.0 { (used / max * 100.0 * 100.0).round() / 100.0 } else { 0.0 };
        out.push(("memory.used_percent".to_owned(), pct));
    }
    for (key, line) in info {
        let wanted = key
            .strip_prefix("db")
            .filter(|n| !n.is_empty() && n.bytes().all(|b| b.is_ascii_digit()))
            .and_then(|n| n.parse::<u64>().ok())
            .is_some_and(|n| n < databases);
        if !wanted {
            continue;
        }
        for item in line.split(',') {
            if let Some((k, v)) = item.split_once('=') {
                if let Ok(v) = v.trim().parse::<f64>() {
                    out.push((format!("{key}.{}", sanitize_node(k.trim())), v));
                }
            }
        }
    }
    if let Some(t) = ["rdb_last_save_time", "last_save_time"].iter().find_map(|f| num(f)) {
        out.push(("last_save.time_since".to_owned(), (unix_time as f64 - t).max(0.0)));
    }
    out.retain(|(_, v)| v.is_finite());
    out
}

/// A connection to TCP or a unix socket.
enum Stream {
    Tcp(TcpStream),
    Unix(UnixStream),
}

impl Stream {
    fn set_timeouts(&self, d: Duration) -> std::io::Result<()> {
        match self {
            Stream::Tcp(s) => {
                s.set_read_timeout(Some(d))?;
                s.set_write_timeout(Some(d))
            }
            Stream::Unix(s) => {
                s.set_read_timeout(Some(d))?;
                s.set_write_timeout(Some(d))
            }
        }
    }

    fn write_all(&mut self, b: &[u8]) -> std::io::Result<()> {
        match self {
            Stream::Tcp(s) => s.write_all(b),
            Stream::Unix(s) => s.write_all(b),
        }
    }

    fn read(&mut self, b: &mut [u8]) -> std::io::Result<usize> {
        match self {
            Stream::Tcp(s) => s.read(b),
            Stream::Unix(s) => s.read(b),
        }
    }
}

/// Reads INFO (and maxmemory) from one or more Redis instances (see the module docs).
#[derive(Debug)]
pub struct RedisCollector {
    instances: Vec<Instance>,
    databases: u64,
    timeouts: Timeouts,
}

impl RedisCollector {
    /// Builds the collector from its options (see the module docs).
    ///
    /// # Errors
    ///
    /// A bad option: an instance that does not parse, a bad port or timeout.
    pub fn new(opts: &Options, _env: &Env) -> Result<RedisCollector> {
        let specs = opts.list_or("instances", &[]);
        let specs = if specs.is_empty() {
            let host = opts.str_or("host", "localhost");
            let port = opts.u64_or("port", u64::from(DEFAULT_PORT))?;
            let mut spec =
                if host.starts_with("unix:") { host.to_owned() } else { format!("{host}:{port}") };
            if let Some(a) = opts.get("auth").filter(|a| !a.is_empty()) {
                spec.push_str(if host.starts_with("unix:") { ":/" } else { "/" });
                spec.push_str(a);
            }
            vec![spec]
        } else {
            specs
        };
        let mut instances = Vec::with_capacity(specs.len());
        for spec in &specs {
            let inst = parse_instance(spec).map_err(|_| crate::Error::BadOption {
                key: "instances".into(),
                value: spec.clone(),
                reason: "expected nick@host:port/password, nick@:port or nick@unix:/path",
            })?;
            instances.push(inst);
        }
        Ok(RedisCollector {
            instances,
            databases: opts.u64_or("databases", 16)?,
            timeouts: Timeouts::from_options(opts)?,
        })
    }

    /// The configured instances, in order.
    pub fn instances(&self) -> &[Instance] {
        &self.instances
    }

    /// Sends AUTH (if set), INFO and CONFIG GET maxmemory in one pipeline and returns the INFO
    /// text and maxmemory (`None` when CONFIG is disabled or renamed).
    fn query(&self, inst: &Instance) -> Result<(String, Option<f64>), AppError> {
        let addr = inst.addr();
        let mut stream = match &inst.endpoint {
            Endpoint::Tcp { host, port } => {
                Stream::Tcp(http::connect(&addr, host, *port, self.timeouts.connect)?)
            }
            Endpoint::Unix(path) => Stream::Unix(
                UnixStream::connect(path)
                    .map_err(|source| AppError::Connect { addr: addr.clone(), source })?,
            ),
        };
        let deadline = Instant::now() + self.timeouts.read;
        let timeout = || AppError::Timeout { addr: addr.clone(), timeout: self.timeouts.read };
        let io_err = |source: std::io::Error| {
            if http::is_timeout(&source) {
                timeout()
            } else {
                AppError::Io { addr: addr.clone(), source }
            }
        };
        let protocol = |what: String| AppError::Protocol { addr: addr.clone(), what };

        let mut req = Vec::new();
        if let Some(pw) = &inst.auth {
            resp::encode_command(&mut req, &[b"AUTH", pw.as_bytes()]);
        }
        resp::encode_command(&mut req, &[b"INFO"]);
        resp::encode_command(&mut req, &[b"CONFIG", b"GET", b"maxmemory"]);
        stream.set_timeouts(self.timeouts.read).map_err(io_err)?;
        stream.write_all(&req).map_err(io_err)?;

        let want = if inst.auth.is_some() { 3 } else { 2 };
        let mut replies = Vec::with_capacity(want);
        let mut buf = Vec::with_capacity(8192);
        let mut chunk = [0u8; 16 * 1024];
        while replies.len() < want {
            while let Some((reply, used)) = resp::decode(&buf).map_err(protocol)? {
                replies.push(reply);
                buf.drain(..used);
                if replies.len() == want {
                    break;
                }
            }
            if replies.len() == want {
                break;
            }
            let now = Instant::now();
            if now >= deadline {
                return Err(timeout());
            }
            stream.set_timeouts(deadline - now).map_err(io_err)?;
            let n = match stream.read(&mut chunk) {
                Ok(n) => n,
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
                Err(e) => return Err(io_err(e)),
            };
            if n == 0 {
                return Err(protocol("connection closed before the replies were complete".into()));
            }
            buf.extend_from_slice(chunk.get(..n).unwrap_or_default());
            if buf.len() > MAX_EXCHANGE_BYTES {
                return Err(protocol(format!("replies over {MAX_EXCHANGE_BYTES} bytes")));
            }
        }
        let mut replies = replies.into_iter();
        if inst.auth.is_some() {
            if let Some(Reply::Error(e)) = replies.next() {
                return Err(protocol(format!("AUTH refused: {e}")));
            }
        }
        let info = match replies.next() {
            Some(Reply::Bulk(Some(b))) => String::from_utf8_lossy(&b).into_owned(),
            Some(Reply::Error(e)) => return Err(protocol(format!("INFO refused: {e}"))),
            other => return Err(protocol(format!("unexpected INFO reply {other:?}"))),
        };
        let maxmemory = match replies.next() {
            Some(Reply::Array(Some(items))) => match items.as_slice() {
                [_, Reply::Bulk(Some(v))] => {
                    std::str::from_utf8(v).ok().and_then(|v| v.parse().ok())
                }
                _ => None,
            },
            // CONFIG may be renamed or disabled (managed Redis): no used_percent then.
            _ => None,
        };
        Ok((info, maxmemory))
    }
}

impl Collector for RedisCollector {
    fn default_path(&self) -> &str {
        "redis"
    }

    fn collect(&mut self, ctx: &RunContext, out: &mut Vec<Sample>) -> Result<()> {
        let mut failures = Vec::new();
        for inst in &self.instances {
            match self.query(inst) {
                Ok((text, maxmemory)) => {
                    let info = parse_info(&text);
                    for (name, v) in info_metrics(&info, maxmemory, self.databases, ctx.unix_time) {
                        out.push(Sample::new(format!("{}.{name}", inst.nick), v));
                    }
                }
                Err(e) => failures.push(e),
            }
        }
        match AppError::from_failures(failures) {
            None => Ok(()),
            Some(e) => Err(e.into()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn tcp(nick: &str, host: &str, port: u16, auth: Option<&str>) -> Instance {
        Instance {
            nick: nick.into(),
            endpoint: Endpoint::Tcp { host: host.into(), port },
            auth: auth.map(Into::into),
        }
    }

    #[test]
    fn instances_parse_as_diamond_spells_them() {
        assert_eq!(parse_instance("nick1@host1:7000").unwrap(), tcp("nick1", "host1", 7000, None));
        assert_eq!(parse_instance("n@host:7000/pw").unwrap(), tcp("n", "host", 7000, Some("pw")));
        assert_eq!(parse_instance("n2@:7001").unwrap(), tcp("n2", "localhost", 7001, None));
        assert_eq!(parse_instance("n3@cache").unwrap(), tcp("n3", "cache", 6379, None));
        assert_eq!(
            parse_instance("db.example:6380").unwrap(),
            tcp("6380", "db.example", 6380, None)
        );
        assert_eq!(
            parse_instance("s@unix:/run/redis.sock:/secret").unwrap(),
            Instance {
                nick: "s".into(),
                endpoint: Endpoint::Unix("/run/redis.sock".into()),
                auth: Some("secret".into())
            }
        );
        assert_eq!(parse_instance("a.b@h:1").unwrap().nick, "a_b");
        assert!(parse_instance("n@h:notaport").is_err());
        assert!(parse_instance("n@h:0").is_err());
        assert!(parse_instance("unix:").is_err());
    }

    #[test]
    fn host_port_and_auth_options_make_one_instance() {
        let o: Options =
            [("host", "10.0.0.1"), ("port", "6380"), ("auth", "pw")].into_iter().collect();
        let c = RedisCollector::new(&o, &Env::default()).unwrap();
        assert_eq!(c.instances(), [tcp("6380", "10.0.0.1", 6380, Some("pw"))]);
        let c = RedisCollector::new(&Options::new(), &Env::default()).unwrap();
        assert_eq!(c.instances(), [tcp("6379", "localhost", 6379, None)]);
        let o: Options = [("instances", "a@:1, b@h:2/x")].into_iter().collect();
        let c = RedisCollector::new(&o, &Env::default()).unwrap();
        assert_eq!(c.instances().len(), 2);
    }

    #[test]
    fn replica_fields_and_old_spellings_map() {
        let text = "role:slave\r\nmaster_link_status:down\r\nmaster_last_io_seconds_ago:7\r\n\
                    used_cpu_sys_childrens:1.5\r\nchanges_since_last_save:3\r\nlast_save_time:100\r\n";
        let m: BTreeMap<String, f64> =
            info_metrics(&parse_info(text), None, 16, 160).into_iter().collect();
        assert_eq!(m["replication.master"], 0.0);
        assert_eq!(m["replication.master_link_status"], 0.0);
        assert_eq!(m["slaves.last_io"], 7.0);
        assert_eq!(m["cpu.children.sys"], 1.5);
        assert_eq!(m["last_save.changes_since"], 3.0);
        assert_eq!(m["last_save.time_since"], 60.0);
        assert!(!m.contains_key("memory.used_percent"));
    }

    #[test]
    fn used_percent_is_zero_without_a_limit() {
        let info = parse_info("used_memory:500\r\n");
        let m: BTreeMap<String, f64> = info_metrics(&info, Some(0.0), 16, 0).into_iter().collect();
        assert_eq!(m["memory.used_percent"], 0.0);
        let m: BTreeMap<String, f64> =
            info_metrics(&info, Some(3000.0), 16, 0).into_iter().collect();
        assert_eq!(m["memory.used_percent"], 16.67);
    }

    proptest! {
        #[test]
        fn info_parsing_never_panics(s in "\\PC{0,300}", dbs in 0u64..20) {
            let info = parse_info(&s);
            for (_, v) in info_metrics(&info, Some(1.0), dbs, 0) {
                prop_assert!(v.is_finite());
            }
        }

        #[test]
        fn instance_parsing_never_panics(s in "\\PC{0,60}") {
            let _ = parse_instance(&s);
        }
    }
}
