//! The resolved configuration: what the agent runs, whichever file it came from.
//!
//! Both readers ([`AgentConfig::from_toml`] and [`AgentConfig::from_diamond`]) produce
//! layers of string settings with the file and line of each; [`resolve`] stacks them in
//! Diamond's order (the agent's defaults, `[[default]]`/`[collectors.default]`, the
//! collector's own section, its own file), parses the settings the agent applies itself, and
//! builds every enabled collector once so a bad collector setting is reported with its line
//! before anything runs.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::time::Duration;

use super::error::{AgentError, Origin};
use super::hostname::{HostNames, HostnameMethod, resolve_hostname};
use super::path::MetricFilter;
use super::registry::{DEFAULT_SET, Registry, instance_name};
use crate::sender::{DestinationConfig, SenderConfig};
use crate::statsd::{Bin, StatsdConfig};
use crate::{Env, Error, Options};

/// Interval of a collector read from TOML without one, seconds.
pub const TOML_DEFAULT_INTERVAL_SECS: u64 = 10;
/// Interval of a collector read from diamond.conf without one (Diamond's code default).
pub const DIAMOND_DEFAULT_INTERVAL_SECS: u64 = 300;

/// The address the agent's statsd server takes, UDP and TCP, when `[statsd]` names none: this
/// host only (statsd's own default, and the main server's, is every interface).
pub const AGENT_STATSD_ADDR: SocketAddr =
    SocketAddr::new(IpAddr::V4(Ipv4Addr::LOCALHOST), crate::statsd::DEFAULT_PORT);

/// The settings the agent applies itself (every other key goes to the collector).
pub(crate) const COMMON_KEYS: [&str; 11] = [
    "enabled",
    "path",
    "path_prefix",
    "path_suffix",
    "hostname",
    "hostname_method",
    "interval",
    "stagger_collection",
    "measure_collector_time",
    "metrics_whitelist",
    "metrics_blacklist",
];

/// Diamond settings that mean nothing here (its process model, TTLs, per-VM paths); dropped
/// quietly so a diamond.conf is taken as it is.
pub(crate) const IGNORED_KEYS: [&str; 4] = ["splay", "method", "ttl_multiplier", "instance_prefix"];

/// Where a collector's paths start: prefix, host node, suffix.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Naming {
    /// `path_prefix` (default `servers`; empty leaves the node out).
    pub path_prefix: String,
    /// `hostname`, a literal host node (or the command, with `hostname_method = shell`).
    pub hostname: Option<String>,
    /// `hostname_method` (default `smart`).
    pub hostname_method: HostnameMethod,
    /// `path_suffix` (default empty), after the host node.
    pub path_suffix: String,
    /// The host node the two settings above give on this host (`None`: no host node).
    pub host: Option<String>,
}

/// One enabled collector, ready to build.
#[derive(Clone, Debug, PartialEq)]
pub struct CollectorConfig {
    /// The instance name: the short name, plus the instance words (`nginx web2`).
    pub name: String,
    /// The collector's short name in the registry (`nginx`).
    pub kind: String,
    /// Prefix, host, suffix.
    pub naming: Naming,
    /// `path`: the collector's node when set (`.` or empty: no node); `None` keeps the
    /// collector's own (`cpu`, ...).
    pub path: Option<String>,
    /// `interval`: time between runs.
    pub interval: Duration,
    /// `stagger_collection` (default true): runs start at a per-collector offset inside the
    /// interval instead of on its boundary.
    pub stagger: bool,
    /// `measure_collector_time` (default false): publish `collector_time_ms`.
    pub measure_collector_time: bool,
    /// `metrics_whitelist` regex.
    pub metrics_whitelist: Option<String>,
    /// `metrics_blacklist` regex.
    pub metrics_blacklist: Option<String>,
    /// Every other setting, for the collector.
    pub options: Options,
    /// Where each setting was written (not compared: the same settings from two files are
    /// the same configuration).
    pub origins: Origins,
}

/// Where each setting of a collector was written.
#[derive(Clone, Debug, Default)]
pub struct Origins(pub BTreeMap<String, Origin>);

impl PartialEq for Origins {
    /// Always equal: origins document a configuration, they are not part of it.
    fn eq(&self, _other: &Origins) -> bool {
        true
    }
}

impl CollectorConfig {
    /// The collector's options with `interval` added (some collectors size timeouts by it).
    pub fn collector_options(&self) -> Options {
        let mut o = self.options.clone();
        o.set("interval", self.interval.as_secs().to_string());
        o
    }
}

/// Everything the agent runs with.
#[derive(Clone, Debug)]
pub struct AgentConfig {
    /// Naming of the agent's own metrics (`<prefix>.<host>.collect.*`).
    pub naming: Naming,
    /// `self_metrics` (default true): publish the agent's own counters.
    pub self_metrics: bool,
    /// How often the agent's own counters are published (the default interval).
    pub self_interval: Duration,
    /// The enabled collectors.
    pub collectors: Vec<CollectorConfig>,
    /// Where points go (at least one destination).
    pub sender: SenderConfig,
    /// Sections naming collectors or handlers we do not have (diamond.conf only; logged).
    pub skipped: Vec<String>,
    /// Where system collectors read the host.
    pub env: EnvConfig,
    /// The statsd server the agent runs (`[statsd]`; `None`: none). Its points go to the
    /// sender as they are: statsd's names are already whole paths (`stats.<key>`,
    /// `stats_counts.<key>`), without the agent's prefix and host node.
    pub statsd: Option<StatsdConfig>,
}

impl PartialEq for AgentConfig {
    /// Field by field; the sender's settings (which have no `PartialEq`) by their debug text,
    /// which shows every field.
    fn eq(&self, other: &AgentConfig) -> bool {
        self.naming == other.naming
            && self.self_metrics == other.self_metrics
            && self.self_interval == other.self_interval
            && self.collectors == other.collectors
            && self.skipped == other.skipped
            && self.env == other.env
            && self.statsd == other.statsd
            && self.same_sender(other)
    }
}

impl AgentConfig {
    /// Whether `other` sends to the same destinations with the same settings (a reload keeps
    /// the running sender then).
    pub fn same_sender(&self, other: &AgentConfig) -> bool {
        format!("{:?}", self.sender) == format!("{:?}", other.sender)
    }
}

/// [`Env`] as configuration (compared, printed).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct EnvConfig {
    /// `proc_root` (default `/proc`).
    pub proc_root: String,
    /// `sys_root` (default `/sys`).
    pub sys_root: String,
    /// `dev_root` (default `/dev`).
    pub dev_root: String,
}

impl Default for EnvConfig {
    fn default() -> EnvConfig {
        EnvConfig { proc_root: "/proc".into(), sys_root: "/sys".into(), dev_root: "/dev".into() }
    }
}

impl EnvConfig {
    /// The [`Env`] collectors get.
    pub fn env(&self) -> Env {
        Env {
            proc_root: self.proc_root.clone().into(),
            sys_root: self.sys_root.clone().into(),
            dev_root: self.dev_root.clone().into(),
        }
    }
}

/// Settings with the place each was written.
#[derive(Clone, Debug, Default)]
pub(crate) struct Layer {
    pub(crate) opts: Options,
    pub(crate) origins: BTreeMap<String, Origin>,
}

impl Layer {
    pub(crate) fn set(&mut self, key: &str, value: impl Into<String>, origin: Origin) {
        self.opts.set(key, value);
        self.origins.insert(key.to_owned(), origin);
    }

    pub(crate) fn merge(&mut self, other: &Layer) {
        self.opts.merge(&other.opts);
        for (k, v) in &other.origins {
            self.origins.insert(k.clone(), v.clone());
        }
    }

    fn origin(&self, key: &str) -> Origin {
        self.origins.get(key).cloned().unwrap_or_default()
    }
}

/// What a reader found, before resolution.
#[derive(Debug)]
pub(crate) struct RawConfig {
    /// Agent-wide settings (TOML `[agent]`; for diamond.conf, `[collectors] [[default]]`).
    pub(crate) agent: Layer,
    /// Settings for every collector.
    pub(crate) default: Layer,
    /// Each collector section, in file order: name as written, header origin, settings.
    pub(crate) collectors: Vec<(String, Origin, Layer)>,
    /// Whether the default set runs without being named.
    pub(crate) default_set: bool,
    /// Whether a named collector runs without `enabled = true`.
    pub(crate) enabled_by_default: bool,
    /// Interval when none is set.
    pub(crate) default_interval: u64,
    /// Unknown collector names are skipped (diamond.conf) rather than refused (TOML).
    pub(crate) skip_unknown: bool,
    pub(crate) sender: SenderConfig,
    pub(crate) skipped: Vec<String>,
    /// The `[statsd]` table, if present and enabled (TOML only).
    pub(crate) statsd: Option<StatsdConfig>,
}

fn bad(layer: &Layer, err: &Error) -> AgentError {
    match err {
        Error::BadOption { key, value, reason } => {
            AgentError::config(layer.origin(key), key, format!("{value:?}: {reason}"))
        }
        other => AgentError::config(Origin::default(), "", other.to_string()),
    }
}

fn parse_naming(layer: &Layer, names: &HostNames) -> Result<Naming, AgentError> {
    let o = &layer.opts;
    let method_raw = o.str_or("hostname_method", "smart");
    let hostname_method = HostnameMethod::parse(method_raw).ok_or_else(|| {
        AgentError::config(
            layer.origin("hostname_method"),
            "hostname_method",
            format!(
                "{method_raw:?} is not a method (one of {})",
                super::hostname::METHOD_NAMES.join(", ")
            ),
        )
    })?;
    let hostname = o.get("hostname").filter(|h| !h.is_empty()).map(str::to_owned);
    let host = resolve_hostname(hostname_method, hostname.as_deref(), names).map_err(|e| {
        AgentError::config(layer.origin("hostname_method"), "hostname_method", e.to_string())
    })?;
    Ok(Naming {
        path_prefix: o.str_or("path_prefix", "servers").to_owned(),
        hostname,
        hostname_method,
        path_suffix: o.str_or("path_suffix", "").to_owned(),
        host,
    })
}

fn parse_interval(layer: &Layer, default: u64) -> Result<Duration, AgentError> {
    let raw = layer.opts.get("interval");
    let secs = layer.opts.f64_or("interval", default as f64).map_err(|e| bad(layer, &e))?;
    if !(secs > 0.0 && secs <= 86_400.0) {
        return Err(AgentError::config(
            layer.origin("interval"),
            "interval",
            format!("{:?}: expected seconds between 0 and 86400", raw.unwrap_or_default()),
        ));
    }
    Ok(Duration::from_secs_f64(secs))
}

/// Stacks the layers and checks every setting (see the module docs).
pub(crate) fn resolve(
    raw: RawConfig,
    registry: &Registry,
    names: &HostNames,
) -> Result<AgentConfig, AgentError> {
    let mut top = raw.agent.clone();
    top.merge(&raw.default);
    let naming = parse_naming(&top, names)?;
    let self_interval = parse_interval(&top, raw.default_interval)?;
    let self_metrics = top.opts.bool_or("self_metrics", true).map_err(|e| bad(&top, &e))?;
    let env = EnvConfig {
        proc_root: top.opts.str_or("proc_root", "/proc").to_owned(),
        sys_root: top.opts.str_or("sys_root", "/sys").to_owned(),
        dev_root: top.opts.str_or("dev_root", "/dev").to_owned(),
    };

    let mut sections = raw.collectors;
    if raw.default_set {
        for short in DEFAULT_SET {
            let named = sections.iter().any(|(name, _, _)| {
                registry.find(name).is_some_and(|k| instance_name(k, name) == short)
            });
            if !named && registry.find(short).is_some() {
                sections.push((short.to_owned(), Origin::default(), Layer::default()));
            }
        }
    }

    let mut sender = raw.sender;
    if sender.destinations.is_empty() {
        sender.destinations.push(DestinationConfig::default());
    }
    let mut skipped = raw.skipped;
    let mut collectors: Vec<CollectorConfig> = Vec::new();
    for (section, header, own) in sections {
        let mut layer = raw.agent.clone();
        layer.merge(&raw.default);
        layer.merge(&own);
        let enabled =
            layer.opts.bool_or("enabled", raw.enabled_by_default).map_err(|e| bad(&layer, &e))?;
        if !enabled {
            continue;
        }
        let Some(kind) = registry.find(&section) else {
            if raw.skip_unknown {
                skipped.push(section);
                continue;
            }
            let known: Vec<&str> = registry.kinds().iter().map(|k| k.short).collect();
            return Err(AgentError::config(
                header,
                section,
                format!("no such collector (known: {})", known.join(", ")),
            ));
        };
        let name = instance_name(kind, &section);
        if collectors.iter().any(|c| c.name == name) {
            return Err(AgentError::config(header, section, "collector configured twice"));
        }
        let o = &layer.opts;
        let filter_whitelist = o.get("metrics_whitelist").filter(|s| !s.is_empty());
        let filter_blacklist = o.get("metrics_blacklist").filter(|s| !s.is_empty());
        if let Err((key, e)) = MetricFilter::new(filter_whitelist, filter_blacklist) {
            return Err(AgentError::config(layer.origin(key), key, format!("bad regex: {e}")));
        }
        let mut options = Options::new();
        for (k, v) in o.iter() {
            if !COMMON_KEYS.contains(&k)
                && !IGNORED_KEYS.contains(&k)
                && !AGENT_ONLY_KEYS.contains(&k)
            {
                options.set(k, v);
            }
        }
        let config = CollectorConfig {
            name,
            kind: kind.short.to_owned(),
            naming: parse_naming(&layer, names)?,
            path: o.get("path").map(str::to_owned),
            interval: parse_interval(&layer, raw.default_interval)?,
            stagger: o.bool_or("stagger_collection", true).map_err(|e| bad(&layer, &e))?,
            measure_collector_time: o
                .bool_or("measure_collector_time", false)
                .map_err(|e| bad(&layer, &e))?,
            metrics_whitelist: filter_whitelist.map(str::to_owned),
            metrics_blacklist: filter_blacklist.map(str::to_owned),
            options,
            origins: Origins(layer.origins.clone()),
        };
        // Built once and dropped: the collector checks its own settings.
        (kind.make)(&config.collector_options(), &env.env()).map_err(|e| bad(&layer, &e))?;
        collectors.push(config);
    }
    // One order whatever the file's: TOML tables come sorted, configobj sections in file order.
    collectors.sort_by(|a, b| a.name.cmp(&b.name));
    Ok(AgentConfig {
        naming,
        self_metrics,
        self_interval,
        collectors,
        sender,
        skipped,
        env,
        statsd: raw.statsd,
    })
}

/// Agent-wide keys that are not collector settings.
pub(crate) const AGENT_ONLY_KEYS: [&str; 5] =
    ["self_metrics", "default_collectors", "proc_root", "sys_root", "dev_root"];

impl AgentConfig {
    /// The configuration with no file: the default set every 10 s to 127.0.0.1:2003.
    ///
    /// # Errors
    ///
    /// Only if the host name cannot be found.
    pub fn builtin(registry: &Registry, names: &HostNames) -> Result<AgentConfig, AgentError> {
        super::toml_config::parse_toml("", std::path::Path::new("(built-in)"), registry, names)
    }

    /// The configuration as an agent.toml that reads back to the same configuration.
    pub fn to_toml(&self) -> String {
        let mut s = String::new();
        let q = |v: &str| format!("{v:?}");
        let _ = writeln!(s, "# resolved configuration\n[agent]");
        write_naming(&mut s, &self.naming);
        let _ = writeln!(s, "interval = {}", secs(self.self_interval));
        let _ = writeln!(s, "self_metrics = {}", self.self_metrics);
        let _ = writeln!(s, "default_collectors = false");
        let _ = writeln!(s, "proc_root = {}", q(&self.env.proc_root));
        let _ = writeln!(s, "sys_root = {}", q(&self.env.sys_root));
        let _ = writeln!(s, "dev_root = {}", q(&self.env.dev_root));
        for c in &self.collectors {
            let _ = writeln!(s, "\n[collectors.{}]", q(&c.name));
            write_naming(&mut s, &c.naming);
            if let Some(p) = &c.path {
                let _ = writeln!(s, "path = {}", q(p));
            }
            let _ = writeln!(s, "interval = {}", secs(c.interval));
            let _ = writeln!(s, "stagger_collection = {}", c.stagger);
            let _ = writeln!(s, "measure_collector_time = {}", c.measure_collector_time);
            if let Some(w) = &c.metrics_whitelist {
                let _ = writeln!(s, "metrics_whitelist = {}", q(w));
            }
            if let Some(b) = &c.metrics_blacklist {
                let _ = writeln!(s, "metrics_blacklist = {}", q(b));
            }
            for (k, v) in c.options.iter() {
                let _ = writeln!(s, "{} = {}", q(k), q(v));
            }
        }
        if let Some(statsd) = &self.statsd {
            write_statsd(&mut s, statsd);
        }
        let _ = writeln!(s, "\n# sender: {:?}", self.sender);
        for name in &self.skipped {
            let _ = writeln!(s, "# skipped (not supported): {name}");
        }
        s
    }
}

/// `[statsd]`, every key (snake_case spelling), so it reads back the same.
fn write_statsd(s: &mut String, c: &StatsdConfig) {
    let addr = |a: Option<SocketAddr>| a.map_or("false".into(), |a| format!("\"{a}\""));
    let list = |v: &[f64]| v.iter().map(|x| format!("{x:?}")).collect::<Vec<_>>().join(", ");
    let _ = writeln!(s, "\n# statsd's names are whole paths (stats.<key>): no prefix or host node");
    let _ = writeln!(s, "[statsd]\nenabled = true");
    let _ = writeln!(s, "udp = {}\ntcp = {}", addr(c.udp), addr(c.tcp));
    let _ = writeln!(s, "flush_interval_ms = {}", c.flush_interval_ms);
    let _ = writeln!(s, "percent_threshold = [{}]", list(&c.percent_threshold));
    let _ = writeln!(s, "calculated_timer_metrics = {:?}", c.calculated_timer_metrics);
    let _ = writeln!(s, "delete_idle_stats = {}", c.delete_idle_stats);
    for (key, v) in [
        ("delete_counters", c.delete_counters),
        ("delete_timers", c.delete_timers),
        ("delete_sets", c.delete_sets),
        ("delete_gauges", c.delete_gauges),
    ] {
        if let Some(v) = v {
            let _ = writeln!(s, "{key} = {v}");
        }
    }
    let _ = writeln!(s, "gauges_max_ttl = {}", c.gauges_max_ttl);
    let _ = writeln!(s, "prefix_stats = {:?}", c.prefix_stats);
    let _ = writeln!(s, "flush_counts = {}", c.flush_counts);
    let _ = writeln!(s, "max_keys = {}", c.max_keys);
    let _ = writeln!(s, "max_timer_samples = {}", c.max_timer_samples);
    let _ = writeln!(s, "max_set_members = {}", c.max_set_members);
    let _ = writeln!(s, "max_line_bytes = {}", c.max_line_bytes);
    let _ = writeln!(s, "max_connections = {}", c.max_connections);
    let _ = writeln!(s, "idle_timeout_secs = {}", c.idle_timeout_secs);
    let _ = writeln!(s, "udp_receive_buffer_bytes = {}", c.udp_receive_buffer_bytes);
    let h: Vec<String> = c
        .histogram
        .iter()
        .map(|h| {
            let bins: Vec<String> = h
                .bins
                .iter()
                .map(|b| match b {
                    Bin::Below(v) => format!("{v:?}"),
                    Bin::Inf => "\"inf\"".into(),
                })
                .collect();
            format!("{{ metric = {:?}, bins = [{}] }}", h.metric, bins.join(", "))
        })
        .collect();
    let _ = writeln!(s, "histogram = [{}]", h.join(", "));
    let g = &c.graphite;
    let _ = writeln!(s, "[statsd.graphite]");
    let _ = writeln!(s, "legacy_namespace = {}", g.legacy_namespace);
    let _ = writeln!(s, "global_prefix = {:?}", g.global_prefix);
    let _ = writeln!(s, "prefix_counter = {:?}", g.prefix_counter);
    let _ = writeln!(s, "prefix_timer = {:?}", g.prefix_timer);
    let _ = writeln!(s, "prefix_gauge = {:?}", g.prefix_gauge);
    let _ = writeln!(s, "prefix_set = {:?}", g.prefix_set);
    if let Some(suffix) = &g.global_suffix {
        let _ = writeln!(s, "global_suffix = {suffix:?}");
    }
}

fn secs(d: Duration) -> String {
    if d.subsec_nanos() == 0 { d.as_secs().to_string() } else { d.as_secs_f64().to_string() }
}

fn write_naming(s: &mut String, n: &Naming) {
    let _ = writeln!(s, "path_prefix = {:?}", n.path_prefix);
    if let Some(h) = &n.hostname {
        let _ = writeln!(s, "hostname = {h:?}");
    }
    let _ = writeln!(s, "hostname_method = {:?}", n.hostname_method.as_str());
    let _ = writeln!(s, "path_suffix = {:?}", n.path_suffix);
    let _ = writeln!(s, "# host node: {}", n.host.as_deref().unwrap_or("(none)"));
}
