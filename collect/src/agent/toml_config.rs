//! The agent's own configuration file (TOML); `collect/agent.example.toml` documents every
//! key with its default.
//!
//! ```toml
//! [agent]                      # agent-wide; every key is also a per-collector default
//! interval = 10                # seconds between runs (default 10)
//! hostname_method = "smart"    # see the hostname module
//! path_prefix = "servers"
//!
//! [collectors.default]         # settings for every collector (Diamond's [[default]])
//! byte_unit = "byte"
//!
//! [collectors.cpu]             # a named collector runs unless `enabled = false`
//! percore = false
//!
//! [collectors."nginx web2"]    # a second instance of a collector
//! req_port = 8081
//!
//! [[sender.destinations]]      # the sender (collect::sender)
//! address = "127.0.0.1:2003"
//!
//! [statsd]                     # a statsd server in the agent (off without this table)
//! udp = "127.0.0.1:8125"       # the keys of collect::statsd::StatsdConfig
//! ```
//!
//! Unknown sections and `[agent]` keys are refused with their line (a typo is not silently
//! ignored); collector keys go to the collector, which refuses bad values.

use std::path::Path;

use serde::Deserialize;
use toml::Spanned;
use toml::de::{DeTable, DeValue, ValueDeserializer};

use super::config::{
    AGENT_STATSD_ADDR, AgentConfig, Layer, RawConfig, TOML_DEFAULT_INTERVAL_SECS, resolve,
};
use super::error::{AgentError, Origin, line_of};
use super::hostname::HostNames;
use super::registry::Registry;
use crate::sender::SenderConfig;
use crate::statsd::StatsdConfig;

/// Keys of `[agent]`.
const AGENT_KEYS: [&str; 14] = [
    "hostname",
    "hostname_method",
    "path_prefix",
    "path_suffix",
    "interval",
    "stagger_collection",
    "measure_collector_time",
    "metrics_whitelist",
    "metrics_blacklist",
    "self_metrics",
    "default_collectors",
    "proc_root",
    "sys_root",
    "dev_root",
];

#[derive(Deserialize)]
struct SenderSection {
    #[serde(default)]
    sender: SenderConfig,
}

impl AgentConfig {
    /// Reads an agent.toml.
    ///
    /// # Errors
    ///
    /// The file cannot be read, or a setting is wrong ([`AgentError::Config`] names the
    /// file, line and key).
    pub fn from_toml(
        path: &Path,
        registry: &Registry,
        names: &HostNames,
    ) -> Result<AgentConfig, AgentError> {
        let text = std::fs::read_to_string(path)
            .map_err(|source| AgentError::Read { path: path.to_owned(), source })?;
        parse_toml(&text, path, registry, names)
    }
}

/// Parses agent.toml text (`path` names it in errors).
pub(crate) fn parse_toml(
    text: &str,
    path: &Path,
    registry: &Registry,
    names: &HostNames,
) -> Result<AgentConfig, AgentError> {
    let at = |offset: usize| Origin::new(path, line_of(text, offset));
    let doc = DeTable::parse(text).map_err(|e| {
        let origin = e.span().map(|s| at(s.start)).unwrap_or_else(|| Origin::new(path, 0));
        AgentError::config(origin, "", format!("syntax: {}", e.message()))
    })?;
    let sender = toml::from_str::<SenderSection>(text)
        .map_err(|e| {
            let origin = e.span().map(|s| at(s.start)).unwrap_or_else(|| Origin::new(path, 0));
            AgentError::config(origin, "sender", e.message().to_owned())
        })?
        .sender;
    for d in &sender.destinations {
        d.validate().map_err(|e| {
            let line =
                text.lines().position(|l| l.trim_start().starts_with("[[sender.destinations]]"));
            AgentError::config(
                Origin::new(path, line.map_or(0, |l| l + 1)),
                "sender",
                e.to_string(),
            )
        })?;
    }
    let mut raw = RawConfig {
        agent: Layer::default(),
        default: Layer::default(),
        collectors: Vec::new(),
        default_set: true,
        enabled_by_default: true,
        default_interval: TOML_DEFAULT_INTERVAL_SECS,
        skip_unknown: false,
        sender,
        skipped: Vec::new(),
        statsd: None,
    };
    for (key, value) in doc.get_ref() {
        let origin = at(key.span().start);
        match key.get_ref().as_ref() {
            "agent" => {
                let table = as_table(value, &origin, "agent")?;
                for (k, v) in table {
                    let name: &str = k.get_ref();
                    if !AGENT_KEYS.contains(&name) {
                        return Err(AgentError::config(
                            at(k.span().start),
                            name,
                            format!("not an [agent] setting (one of {})", AGENT_KEYS.join(", ")),
                        ));
                    }
                    flatten(&mut raw.agent, name, v, &at)?;
                }
                raw.default_set =
                    raw.agent.opts.bool_or("default_collectors", true).map_err(|e| {
                        AgentError::config(origin.clone(), "default_collectors", e.to_string())
                    })?;
            }
            "collectors" => {
                for (name, section) in as_table(value, &origin, "collectors")? {
                    let header = at(name.span().start);
                    let section_name: &str = name.get_ref();
                    let mut layer = Layer::default();
                    for (k, v) in as_table(section, &header, section_name)? {
                        flatten(&mut layer, k.get_ref(), v, &at)?;
                    }
                    if section_name == "default" {
                        if let Some(k) = layer.opts.iter().map(|(k, _)| k).find(|k| *k == "enabled")
                        {
                            return Err(AgentError::config(
                                layer.origins.get(k).cloned().unwrap_or(header),
                                k,
                                "`enabled` belongs in a collector's own table",
                            ));
                        }
                        raw.default = layer;
                    } else {
                        raw.collectors.push((section_name.to_owned(), header, layer));
                    }
                }
            }
            "sender" => {}
            "statsd" => raw.statsd = parse_statsd(value, &origin, &at)?,
            other => {
                return Err(AgentError::config(
                    origin,
                    other,
                    "not a section of agent.toml (agent, collectors, sender, statsd)",
                ));
            }
        }
    }
    resolve(raw, registry, names)
}

/// The `[statsd]` table: `enabled` (default true), `udp`/`tcp` (default
/// [`AGENT_STATSD_ADDR`]; `false` turns one off) and every other key of [`StatsdConfig`], in
/// either spelling. `None` when `enabled = false`.
fn parse_statsd(
    value: &Spanned<DeValue<'_>>,
    header: &Origin,
    at: &dyn Fn(usize) -> Origin,
) -> Result<Option<StatsdConfig>, AgentError> {
    let table = as_table(value, header, "statsd")?;
    let mut enabled = true;
    let mut off = Vec::new();
    let mut rest = DeTable::new();
    for (k, v) in table {
        let name: &str = k.get_ref();
        match (name, v.get_ref()) {
            ("enabled", DeValue::Boolean(b)) => enabled = *b,
            ("enabled", _) => {
                return Err(AgentError::config(at(v.span().start), name, "expected true or false"));
            }
            ("udp" | "tcp", DeValue::Boolean(false)) => off.push(name.to_owned()),
            _ => {
                rest.insert(k.clone(), v.clone());
            }
        }
    }
    let rest = Spanned::new(value.span(), DeValue::Table(rest));
    let mut config = StatsdConfig::deserialize(ValueDeserializer::from(rest)).map_err(|e| {
        let origin = e.span().map_or_else(|| header.clone(), |s| at(s.start));
        AgentError::config(origin, "statsd", e.message().to_owned())
    })?;
    for (key, addr) in [("udp", &mut config.udp), ("tcp", &mut config.tcp)] {
        if off.iter().any(|o| o == key) {
            *addr = None;
        } else if !table.contains_key(key) {
            *addr = Some(AGENT_STATSD_ADDR);
        }
    }
    if let Err(crate::statsd::Error::Config { key, reason }) = config.validate() {
        // statsd's spelling (`flushInterval`, `graphite.prefixTimer`): the line of the table
        // or of the key it names, whichever spelling the file uses.
        let top = key.split(['.', ' ']).next().unwrap_or(key);
        let snake = match top {
            "flushInterval" => "flush_interval_ms",
            "percentThreshold" => "percent_threshold",
            "prefixStats" => "prefix_stats",
            other => other,
        };
        let origin = table
            .iter()
            .find(|(k, _)| {
                let k: &str = k.get_ref();
                k == top || k == snake
            })
            .map_or_else(|| header.clone(), |(_, v)| at(v.span().start));
        return Err(AgentError::config(origin, key, reason));
    }
    Ok(enabled.then_some(config))
}

fn as_table<'a, 'i>(
    value: &'a Spanned<DeValue<'i>>,
    origin: &Origin,
    name: &str,
) -> Result<&'a DeTable<'i>, AgentError> {
    value
        .get_ref()
        .as_table()
        .ok_or_else(|| AgentError::config(origin.clone(), name, "expected a table"))
}

/// Puts a TOML value into `layer` as Diamond-style text: booleans `true`/`false`, numbers as
/// written, arrays comma-joined, nested tables as dotted keys.
fn flatten(
    layer: &mut Layer,
    key: &str,
    value: &Spanned<DeValue<'_>>,
    at: &dyn Fn(usize) -> Origin,
) -> Result<(), AgentError> {
    let origin = at(value.span().start);
    let text = match value.get_ref() {
        DeValue::Table(t) => {
            for (k, v) in t {
                flatten(layer, &format!("{key}.{}", k.get_ref()), v, at)?;
            }
            return Ok(());
        }
        DeValue::Array(items) => {
            let mut parts = Vec::new();
            for item in items {
                parts.push(scalar(key, item.get_ref(), &origin)?);
            }
            parts.join(",")
        }
        other => scalar(key, other, &origin)?,
    };
    layer.set(key, text, origin);
    Ok(())
}

fn scalar(key: &str, value: &DeValue<'_>, origin: &Origin) -> Result<String, AgentError> {
    Ok(match value {
        DeValue::String(s) => s.to_string(),
        DeValue::Integer(i) => i64::from_str_radix(i.as_str().replace('_', "").as_str(), i.radix())
            .map_err(|e| AgentError::config(origin.clone(), key, e.to_string()))?
            .to_string(),
        DeValue::Float(f) => f.as_str().replace('_', ""),
        DeValue::Boolean(b) => b.to_string(),
        DeValue::Datetime(d) => d.to_string(),
        DeValue::Array(_) | DeValue::Table(_) => {
            return Err(AgentError::config(origin.clone(), key, "nested lists are not settings"));
        }
    })
}
