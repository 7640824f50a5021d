//! carbon-relay's configuration: the `[relay]` section of carbon.conf (with `[relay:<instance>]`
//! over it, as carbon reads it) and relay-rules.conf.
//!
//! Read as carbon 1.1.7 reads them: `RELAY_METHOD` is `rules` (relay-rules.conf, first match
//! wins unless `continue = true`, exactly one `default = true` section, always tried last,
//! patterns searched case-insensitively, destinations not in `DESTINATIONS` ignored) or
//! `consistent-hashing` (carbon's ring, `REPLICATION_FACTOR`, `DIVERSE_REPLICAS`,
//! `ROUTER_HASH_TYPE`) or `aggregated-consistent-hashing` (the same ring, keyed by the
//! aggregate names aggregation-rules.conf makes of each metric), and their `fast-hashing` and
//! `fast-aggregated-hashing` variants on carbon's `FastHashRing`.
//!
//! carbon-aggregator reads the `[aggregator]` section instead ([`CarbonRelayConf::open_section`]),
//! with `RELAY_METHOD` forced to `consistent-hashing` as carbon forces it, and its own keys
//! ([`CarbonRelayConf::aggregator`]): `AGGREGATION_RULES`, `REWRITE_RULES`, `FORWARD_ALL`,
//! `MAX_AGGREGATION_INTERVALS`, `WRITE_BACK_FREQUENCY`.

use std::path::{Path, PathBuf};

use anyhow::{Context, bail};
use carbon_proto::ring::{
    ConsistentHashRingBuilder, Destination, FastHashRingBuilder, HashType, parse_destinations,
};
use collect::sender::Protocol;
use store::aggregator::{AggregationRules, AggregatorConfig};
use store::config::{Ini, PatternList, RewriteRules};

use super::router::{CarbonRing, RelayRule, Router};
use super::{DestSpec, ListenSpec, RelaySettings};

/// The settings of carbon.conf's `[relay]` (or `[aggregator]`) section that the relay uses,
/// as text.
#[derive(Debug, Clone)]
pub struct CarbonRelayConf {
    /// Upper-case key -> value, `[relay:<instance>]` over `[relay]`.
    values: Vec<(String, String)>,
    /// `CONF_DIR`: the directory of carbon.conf.
    conf_dir: PathBuf,
    /// Read as carbon-aggregator's `[aggregator]` section.
    aggregator: bool,
}

/// The aggregator role's settings: carbon-aggregator's rules and `[aggregator]` keys.
#[derive(Debug)]
pub struct AggregatorSettings {
    /// aggregation-rules.conf (empty when the file is missing, as carbon reads it).
    pub rules: AggregationRules,
    /// `FORWARD_ALL`, `MAX_AGGREGATION_INTERVALS`, `WRITE_BACK_FREQUENCY`, rewrite-rules.conf.
    pub config: AggregatorConfig,
}

impl CarbonRelayConf {
    /// Reads carbon.conf's `[relay]` section (and `[relay:<instance>]` over it).
    ///
    /// # Errors
    ///
    /// The file cannot be read or is not valid INI.
    pub fn open(path: &Path, instance: Option<&str>) -> anyhow::Result<CarbonRelayConf> {
        CarbonRelayConf::open_section(path, "relay", instance)
    }

    /// Reads carbon.conf's `[<section>]` (and `[<section>:<instance>]` over it): `relay` for
    /// carbon-relay, `aggregator` for carbon-aggregator.
    ///
    /// # Errors
    ///
    /// The file cannot be read or is not valid INI.
    pub fn open_section(
        path: &Path,
        section: &str,
        instance: Option<&str>,
    ) -> anyhow::Result<CarbonRelayConf> {
        let ini = Ini::open(path).with_context(|| format!("cannot read {}", path.display()))?;
        let mut values: Vec<(String, String)> = Vec::new();
        let mut sections = vec![section.to_string()];
        if let Some(i) = instance {
            sections.push(format!("{section}:{i}"));
        }
        for section in sections {
            let Some(items) = ini.items(&section) else { continue };
            for item in items? {
                let key = item.key.to_uppercase();
                match values.iter_mut().find(|(k, _)| *k == key) {
                    Some(slot) => slot.1 = item.value,
                    None => values.push((key, item.value)),
                }
            }
        }
        let conf_dir = path.parent().map(Path::to_path_buf).unwrap_or_default();
        Ok(CarbonRelayConf { values, conf_dir, aggregator: section == "aggregator" })
    }

    /// From text (tests), `[relay]`.
    ///
    /// # Errors
    ///
    /// As [`CarbonRelayConf::open`].
    pub fn parse(text: &str, conf_dir: &Path) -> anyhow::Result<CarbonRelayConf> {
        CarbonRelayConf::parse_section(text, "relay", conf_dir)
    }

    /// From text, `[<section>]`.
    ///
    /// # Errors
    ///
    /// As [`CarbonRelayConf::open`].
    pub fn parse_section(
        text: &str,
        section: &str,
        conf_dir: &Path,
    ) -> anyhow::Result<CarbonRelayConf> {
        let ini = Ini::parse(text, &conf_dir.join("carbon.conf"))?;
        let mut values = Vec::new();
        if let Some(items) = ini.items(section) {
            for item in items? {
                values.push((item.key.to_uppercase(), item.value));
            }
        }
        Ok(CarbonRelayConf {
            values,
            conf_dir: conf_dir.to_path_buf(),
            aggregator: section == "aggregator",
        })
    }

    /// carbon-aggregator's settings: the rules (`rules_override`, carbon-aggregator's
    /// `--rules`, else `AGGREGATION_RULES` in carbon.conf's directory; a missing file means no
    /// rules, as carbon reads it, except an override), `REWRITE_RULES` if that file exists,
    /// `FORWARD_ALL`, `MAX_AGGREGATION_INTERVALS`, `WRITE_BACK_FREQUENCY`.
    ///
    /// # Errors
    ///
    /// A bad value or rules file (naming its line), a missing override.
    pub fn aggregator(&self, rules_override: Option<&Path>) -> anyhow::Result<AggregatorSettings> {
        let path = match rules_override {
            Some(p) if !p.exists() => bail!("aggregation rules {}: no such file", p.display()),
            Some(p) => p.to_path_buf(),
            None => self
                .conf_dir
                .join(self.get("AGGREGATION_RULES").unwrap_or("aggregation-rules.conf")),
        };
        if !path.exists() {
            tracing::warn!(file = %path.display(), "no aggregation rules file: nothing to aggregate");
        }
        // A missing file has no rules (and is read when it appears).
        let rules = AggregationRules::open(&path)?;
        let rewrite_path =
            self.conf_dir.join(self.get("REWRITE_RULES").unwrap_or("rewrite-rules.conf"));
        let rewrite =
            if rewrite_path.exists() { Some(RewriteRules::open(&rewrite_path)?) } else { None };
        let write_back = match self.get("WRITE_BACK_FREQUENCY") {
            None | Some("" | "None") => None,
            Some(v) => Some(
                v.parse::<u32>()
                    .ok()
                    .filter(|f| *f > 0)
                    .with_context(|| format!("WRITE_BACK_FREQUENCY = {v:?}"))?,
            ),
        };
        let config = AggregatorConfig {
            forward_all: self.bool("FORWARD_ALL", true)?,
            max_aggregation_intervals: self.number("MAX_AGGREGATION_INTERVALS", 5u32)?,
            write_back_frequency: write_back,
            rewrite,
            ..AggregatorConfig::default()
        };
        Ok(AggregatorSettings { rules, config })
    }

    fn get(&self, key: &str) -> Option<&str> {
        self.values.iter().find(|(k, _)| k == key).map(|(_, v)| v.trim())
    }

    fn bool(&self, key: &str, default: bool) -> anyhow::Result<bool> {
        match self.get(key) {
            None => Ok(default),
            Some(v) => match v.to_ascii_lowercase().as_str() {
                "1" | "yes" | "true" | "on" => Ok(true),
                "0" | "no" | "false" | "off" => Ok(false),
                _ => bail!("{key} = {v:?} is not a boolean"),
            },
        }
    }

    fn number<T: std::str::FromStr>(&self, key: &str, default: T) -> anyhow::Result<T> {
        match self.get(key) {
            None => Ok(default),
            Some(v) => v.parse().map_err(|_| anyhow::anyhow!("{key} = {v:?} is not a number")),
        }
    }

    /// Builds the relay's settings: listeners, destinations, router, queues.
    ///
    /// # Errors
    ///
    /// A value carbon would refuse or that this relay does not support, a bad rules file.
    pub fn settings(
        &self,
        rules_override: Option<&Path>,
        aggregation_rules: Option<&Path>,
    ) -> anyhow::Result<RelaySettings> {
        let iface = |k: &str| self.get(k).unwrap_or("0.0.0.0").to_string();
        // carbon.conf.example's ports: the relay's 2013/2014, the aggregator's 2023/2024.
        let base = if self.aggregator { 2023 } else { 2013 };
        let line_port: u16 = self.number("LINE_RECEIVER_PORT", base)?;
        let pickle_port: u16 = self.number("PICKLE_RECEIVER_PORT", base + 1)?;
        let udp_port: u16 = self.number("UDP_RECEIVER_PORT", base)?;
        let listen = ListenSpec {
            line: Some((iface("LINE_RECEIVER_INTERFACE"), line_port)),
            pickle: Some((iface("PICKLE_RECEIVER_INTERFACE"), pickle_port)),
            udp: if self.bool("ENABLE_UDP_LISTENER", false)? {
                Some((iface("UDP_RECEIVER_INTERFACE"), udp_port))
            } else {
                None
            },
        };
        let protocol = match self.get("DESTINATION_PROTOCOL").unwrap_or("pickle") {
            "pickle" => Protocol::Pickle,
            "line" => Protocol::Plaintext,
            other => bail!("DESTINATION_PROTOCOL = {other:?}: this relay speaks pickle and line"),
        };
        let dest_text = self.get("DESTINATIONS").unwrap_or("127.0.0.1:2004");
        let nodes = parse_destinations(dest_text).context("DESTINATIONS")?;
        let destinations: Vec<DestSpec> =
            nodes.iter().map(|d| DestSpec { dest: d.clone(), protocol, file: None }).collect();
        for (i, d) in nodes.iter().enumerate() {
            if nodes[..i].contains(d) {
                bail!("DESTINATIONS lists {d} twice");
            }
        }
        // carbon-aggregator forces consistent-hashing (carbon's `createAggregatorService`).
        let method = if self.aggregator {
            "consistent-hashing"
        } else {
            self.get("RELAY_METHOD").unwrap_or("rules")
        };
        let router = match method {
            "rules" => {
                let path = match rules_override {
                    Some(p) => p.to_path_buf(),
                    None => {
                        self.conf_dir.join(self.get("RELAY_RULES").unwrap_or("relay-rules.conf"))
                    }
                };
                let text = std::fs::read_to_string(&path)
                    .with_context(|| format!("Could not read rules file {}", path.display()))?;
                Router::Rules(parse_relay_rules(&text, &path, &nodes)?)
            }
            "consistent-hashing"
            | "aggregated-consistent-hashing"
            | "fast-hashing"
            | "fast-aggregated-hashing" => {
                let fast = method.starts_with("fast-");
                let hash: HashType = match self.get("ROUTER_HASH_TYPE") {
                    // carbon's defaults: `carbon_ch` for the ring, `mmh3_ch` for the fast one.
                    None | Some("") if fast => HashType::Mmh3Ch,
                    None | Some("") => HashType::CarbonCh,
                    Some(h) => h.parse().with_context(|| format!("ROUTER_HASH_TYPE = {h:?}"))?,
                };
                let factor = self.number("REPLICATION_FACTOR", 1usize)?;
                let diverse = self.bool("DIVERSE_REPLICAS", true)?;
                let ring = if fast {
                    CarbonRing::Fast(
                        FastHashRingBuilder::new()
                            .hash_type(hash)
                            .replication_factor(factor)
                            .diverse_replicas(diverse)
                            .build(nodes.clone())
                            .context("the fast-hashing ring")?,
                    )
                } else {
                    CarbonRing::Consistent(
                        ConsistentHashRingBuilder::new()
                            .hash_type(hash)
                            .replication_factor(factor)
                            .diverse_replicas(diverse)
                            .build(nodes.clone())
                            .context("the consistent-hashing ring")?,
                    )
                };
                let members = (0..nodes.len()).collect();
                if !method.contains("aggregated") {
                    Router::Hash { members, ring }
                } else {
                    let path = match aggregation_rules {
                        Some(p) => p.to_path_buf(),
                        None => self.conf_dir.join(
                            self.get("AGGREGATION_RULES").unwrap_or("aggregation-rules.conf"),
                        ),
                    };
                    // carbon reads the file only if it is there; no file means no rules.
                    let rules = if path.exists() {
                        AggregationRules::open(&path)
                            .with_context(|| format!("cannot read {}", path.display()))?
                    } else {
                        AggregationRules::default()
                    };
                    Router::AggregatedHash { members, ring, rules }
                }
            }
            other => bail!(
                "In carbon.conf, RELAY_METHOD must be one of rules, consistent-hashing, \
                 aggregated-consistent-hashing, fast-hashing, fast-aggregated-hashing. Invalid \
                 value: '{other}'"
            ),
        };
        let max_queue = match self.get("MAX_QUEUE_SIZE") {
            None => None,
            Some(v) => Some(
                v.parse::<f64>()
                    .ok()
                    .filter(|q| *q >= 1.0)
                    .map(|q| q.min(1e9) as usize)
                    .with_context(|| format!("MAX_QUEUE_SIZE = {v:?}"))?,
            ),
        };
        let batch = self.number("MAX_DATAPOINTS_PER_MESSAGE", 500usize)?;
        Ok(RelaySettings {
            listen,
            destinations,
            router,
            cleanse: false,
            queue_points: max_queue,
            batch_size: Some(batch.max(1)),
            metric_prefix: self.get("CARBON_METRIC_PREFIX").unwrap_or("carbon").to_string(),
            metric_interval: self.number("CARBON_METRIC_INTERVAL", 60u64)?,
            statistics: None,
        })
    }
}

/// Reads relay-rules.conf as carbon's `loadRelayRules`; destination strings are matched
/// against `configured` (carbon's `DESTINATIONS`) and the others dropped, as carbon's router
/// does at run time.
///
/// # Errors
///
/// carbon's: a section without `destinations`, `pattern` with `default`, two default rules,
/// none; a pattern Python would refuse (or that cannot run here).
pub fn parse_relay_rules(
    text: &str,
    path: &Path,
    configured: &[Destination],
) -> anyhow::Result<Vec<RelayRule>> {
    let ini = Ini::parse(text, path)?;
    let mut rules = Vec::new();
    let mut default: Option<RelayRule> = None;
    for section in ini.sections() {
        let name = section.name().to_string();
        let items = ini.items(&name).transpose()?.unwrap_or_default();
        let get = |k: &str| items.iter().find(|i| i.key == k).map(|i| i.value.trim().to_string());
        let Some(dest_text) = get("destinations") else {
            bail!(
                "Rules file {} section {name} does not define a 'destinations' list",
                path.display()
            );
        };
        let mut destinations = Vec::new();
        for d in parse_destinations(&dest_text)
            .with_context(|| format!("{}: section {name}", path.display()))?
        {
            match configured.iter().position(|c| *c == d) {
                Some(i) => destinations.push(i),
                None => tracing::warn!(
                    section = %name, destination = %d,
                    "relay rule destination is not in DESTINATIONS: ignored (as carbon does)"
                ),
            }
        }
        let boolean = |k: &str| -> anyhow::Result<Option<bool>> {
            match get(k) {
                None => Ok(None),
                Some(v) => match v.to_ascii_lowercase().as_str() {
                    "1" | "yes" | "true" | "on" => Ok(Some(true)),
                    "0" | "no" | "false" | "off" => Ok(Some(false)),
                    _ => bail!("{}: section {name}: {k} = {v:?} is not a boolean", path.display()),
                },
            }
        };
        if let Some(pattern) = get("pattern") {
            if get("default").is_some() {
                bail!(
                    "Section {name} contains both 'pattern' and 'default'. You must use one or \
                     the other."
                );
            }
            // re.compile(pattern, re.I): the inline flag gives the same search.
            let list = PatternList::parse(&format!("(?i){pattern}\n"), path)
                .with_context(|| format!("section {name}: pattern {pattern:?}"))?;
            if list.is_empty() {
                bail!("{}: section {name}: pattern {pattern:?} does not compile", path.display());
            }
            let continue_matching = boolean("continue")?.unwrap_or(false);
            rules.push(RelayRule { name, pattern: Some(list), destinations, continue_matching });
            continue;
        }
        // `default = false` sections are ignored, as carbon does.
        if boolean("default")? == Some(true) {
            if default.is_some() {
                bail!("Only one default rule can be specified");
            }
            default =
                Some(RelayRule { name, pattern: None, destinations, continue_matching: false });
        }
    }
    let Some(default) = default else {
        bail!(
            "No default rule defined. You must specify exactly one rule with 'default = true' \
             instead of a pattern."
        );
    };
    rules.push(default);
    Ok(rules)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::relay::router::Health;

    fn route(router: &Router, name: &str) -> Vec<usize> {
        let mut out = Vec::new();
        router.route(name, &Health::new(8), &mut |_, d| out.push(d));
        out
    }

    #[test]
    fn rules_follow_carbon() {
        let nodes =
            parse_destinations("127.0.0.1:2004:a, 127.0.0.1:2104:b, 10.0.0.1:2004").unwrap();
        let text = "[default]\ndefault = true\ndestinations = 127.0.0.1:2004:a\n\
                    [web]\npattern = ^WEB\\.\ndestinations = 127.0.0.1:2104:b, 9.9.9.9:1\ncontinue = true\n\
                    [db]\npattern = db\ndestinations = 10.0.0.1:2004, 127.0.0.1:2104:b\n";
        let rules = parse_relay_rules(text, Path::new("r.conf"), &nodes).unwrap();
        let r = Router::Rules(rules);
        assert_eq!(route(&r, "web.db.x"), [1, 2]);
        assert_eq!(route(&r, "web.x"), [1, 0]);
        assert_eq!(route(&r, "x.db"), [2, 1]);
        assert_eq!(route(&r, "other"), [0]);
    }

    #[test]
    fn rules_errors_are_carbons() {
        let nodes = parse_destinations("127.0.0.1:2004").unwrap();
        let p = Path::new("r.conf");
        assert!(parse_relay_rules("[a]\npattern = x\n", p, &nodes).is_err());
        assert!(
            parse_relay_rules("[a]\npattern = x\ndestinations = 127.0.0.1:2004\n", p, &nodes)
                .is_err()
        );
        let two = "[a]\ndefault = true\ndestinations = 127.0.0.1:2004\n\
                   [b]\ndefault = true\ndestinations = 127.0.0.1:2004\n";
        assert!(parse_relay_rules(two, p, &nodes).is_err());
        let both = "[a]\ndefault = true\npattern = x\ndestinations = 127.0.0.1:2004\n";
        assert!(parse_relay_rules(both, p, &nodes).is_err());
    }

    #[test]
    fn consistent_hashing_from_carbon_conf() {
        let conf = CarbonRelayConf::parse(
            "[relay]\nRELAY_METHOD = consistent-hashing\nREPLICATION_FACTOR = 2\n\
             DESTINATIONS = 127.0.0.1:2004:a, 127.0.0.1:2104:b, 127.0.0.2:2004:c\n\
             DESTINATION_PROTOCOL = line\n",
            Path::new("/nonexistent"),
        )
        .unwrap();
        let s = conf.settings(None, None).unwrap();
        assert_eq!(s.destinations.len(), 3);
        assert_eq!(s.destinations[0].protocol, Protocol::Plaintext);
        assert_eq!(s.listen.line, Some(("0.0.0.0".to_string(), 2013)));
        let to = route(&s.router, "foo.bar");
        assert_eq!(to.len(), 2);
        // DIVERSE_REPLICAS (carbon's default): the two copies are on different servers.
        let hosts: Vec<&str> = to.iter().map(|&d| s.destinations[d].dest.host()).collect();
        assert_ne!(hosts[0], hosts[1]);
    }

    #[test]
    fn aggregated_hashing_keys_on_the_aggregate_with_either_ring() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(
            dir.path().join("aggregation-rules.conf"),
            "app.<env>.all.requests (60) = sum app.<env>.*.requests\n",
        )
        .unwrap();
        for method in ["aggregated-consistent-hashing", "fast-aggregated-hashing"] {
            let conf = CarbonRelayConf::parse(
                &format!(
                    "[relay]\nRELAY_METHOD = {method}\n\
                     DESTINATIONS = 127.0.0.1:2004:a, 127.0.0.1:2104:b, 127.0.0.1:2204:c\n"
                ),
                dir.path(),
            )
            .unwrap();
            let s = conf.settings(None, None).unwrap();
            let Router::AggregatedHash { ring, .. } = &s.router else { panic!("wrong router") };
            let owner_of = |name: &str| match (method, ring) {
                ("aggregated-consistent-hashing", CarbonRing::Consistent(r)) => {
                    r.get_node(name).clone()
                }
                ("fast-aggregated-hashing", CarbonRing::Fast(r)) => {
                    r.get_nodes(name).next().unwrap().clone()
                }
                _ => panic!("{method}: wrong ring"),
            };
            let owner = owner_of("app.prod.all.requests");
            // Every input of the aggregate goes where the aggregate is owned.
            for host in ["web1", "web2", "db7", "x"] {
                let to = route(&s.router, &format!("app.prod.{host}.requests"));
                assert_eq!(to.len(), 1, "{method}");
                assert_eq!(s.destinations[to[0]].dest, owner, "{method}");
            }
            // Others hash on their own name.
            let to = route(&s.router, "other.metric");
            assert_eq!(s.destinations[to[0]].dest, owner_of("other.metric"), "{method}");
        }
    }

    #[test]
    fn fast_hashing_from_carbon_conf() {
        let conf = |extra: &str| {
            CarbonRelayConf::parse(
                &format!(
                    "[relay]\nRELAY_METHOD = fast-hashing\n\
                     DESTINATIONS = 127.0.0.1:2004:a, 127.0.0.1:2104:b, 127.0.0.2:2004:c\n{extra}"
                ),
                Path::new("/nonexistent"),
            )
            .unwrap()
            .settings(None, None)
            .unwrap()
        };
        // carbon's FastHashRing hashes with mmh3_ch unless ROUTER_HASH_TYPE says otherwise.
        let s = conf("");
        let Router::Hash { ring: CarbonRing::Fast(ring), .. } = &s.router else {
            panic!("wrong router")
        };
        assert_eq!(ring.hash_type(), HashType::Mmh3Ch);
        for name in ["foo.bar", "a", "servers.web01.cpu"] {
            let to = route(&s.router, name);
            let want: Vec<&Destination> = ring.destinations(name).collect();
            assert_eq!(to.iter().map(|&d| &s.destinations[d].dest).collect::<Vec<_>>(), want);
        }
        let s = conf("ROUTER_HASH_TYPE = carbon_ch\nREPLICATION_FACTOR = 2\n");
        let Router::Hash { ring: CarbonRing::Fast(ring), .. } = &s.router else {
            panic!("wrong router")
        };
        assert_eq!(ring.hash_type(), HashType::CarbonCh);
        let to = route(&s.router, "foo.bar");
        let hosts: Vec<&str> = to.iter().map(|&d| s.destinations[d].dest.host()).collect();
        assert_eq!(hosts.len(), 2);
        assert_ne!(hosts[0], hosts[1]);
    }

    #[test]
    fn aggregator_section_as_carbon_aggregator_reads_it() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("agg.conf"), "total (10) = sum <h>.cpu\n").unwrap();
        let conf = CarbonRelayConf::parse_section(
            "[relay]\nRELAY_METHOD = rules\n\
             [aggregator]\nRELAY_METHOD = rules\nDESTINATIONS = 127.0.0.1:2004:a, 127.0.0.1:2104:b\n\
             AGGREGATION_RULES = agg.conf\nFORWARD_ALL = False\nMAX_AGGREGATION_INTERVALS = 3\n\
             WRITE_BACK_FREQUENCY = 2\n",
            "aggregator",
            dir.path(),
        )
        .unwrap();
        // RELAY_METHOD is forced to consistent-hashing; the ports are the aggregator's.
        let s = conf.settings(None, None).unwrap();
        assert!(matches!(s.router, Router::Hash { .. }));
        assert_eq!(s.listen.line, Some(("0.0.0.0".to_string(), 2023)));
        assert_eq!(s.listen.pickle, Some(("0.0.0.0".to_string(), 2024)));
        let a = conf.aggregator(None).unwrap();
        assert_eq!(a.rules.rules().len(), 1);
        assert!(!a.config.forward_all);
        assert_eq!(a.config.max_aggregation_intervals, 3);
        assert_eq!(a.config.write_back_frequency, Some(2));
        assert!(a.config.rewrite.is_none());
        // No rules file: no rules, as carbon; a missing override is an error.
        let bare = CarbonRelayConf::parse_section("", "aggregator", dir.path()).unwrap();
        let a = bare.aggregator(None).unwrap();
        assert!(a.rules.is_empty());
        assert!(a.config.forward_all);
        assert!(bare.aggregator(Some(&dir.path().join("missing.conf"))).is_err());
    }

    proptest::proptest! {
        #[test]
        fn rules_parser_never_panics(text in "(\\[[a-z]{1,3}\\]\n|pattern = [a-z.^$*()]{0,6}\n|destinations = [0-9.:, a-z]{0,20}\n|default = (true|false|x)\n|continue = (true|no)\n){0,8}") {
            let nodes = parse_destinations("127.0.0.1:2004").unwrap();
            let _ = parse_relay_rules(&text, Path::new("r.conf"), &nodes);
        }
    }
}
