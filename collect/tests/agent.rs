//! The agent's configuration readers, naming and scheduler, with stand-in collectors (the
//! registry takes any constructor, so these tests do not depend on the real collectors).

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use collect::agent::{
    Agent, AgentConfig, CollectorKind, HostNames, HostnameMethod, MemorySink, PointSink, Registry,
    run_once,
};
use collect::sender::{DestinationKind, Protocol};
use collect::{Collector, Env, Options, Result, RunContext, Sample};

/// A collector publishing `value` (an option, default 1) as `metric`, plus `other`; `sleep_ms`
/// makes it slow, `fail = true` makes it fail. It reads its options the way real collectors
/// do, so bad values are refused with the key named.
struct Fake {
    node: &'static str,
    value: f64,
    sleep: Duration,
    fail: bool,
}

impl Fake {
    fn build(node: &'static str, o: &Options) -> Result<Box<dyn Collector>> {
        o.bool_or("percore", true)?;
        o.bool_or("normalize", false)?;
        o.u64_or("req_port", 80)?;
        Ok(Box::new(Fake {
            node,
            value: o.f64_or("value", 1.0)?,
            sleep: Duration::from_millis(o.u64_or("sleep_ms", 0)?),
            fail: o.bool_or("fail", false)?,
        }))
    }
}

impl Collector for Fake {
    fn default_path(&self) -> &str {
        self.node
    }

    fn collect(&mut self, _ctx: &RunContext, out: &mut Vec<Sample>) -> Result<()> {
        std::thread::sleep(self.sleep);
        if self.fail {
            return Err(collect::Error::Malformed { path: "/proc/x".into(), what: "fake".into() });
        }
        out.push(Sample::new("metric", self.value));
        out.push(Sample::new("other.value", 2.0));
        out.push(Sample { name: "stamped".into(), value: 3.0, timestamp: Some(1_000) });
        Ok(())
    }
}

macro_rules! fake {
    ($class:literal, $short:literal) => {
        CollectorKind {
            class: $class,
            short: $short,
            make: |o: &Options, _e: &Env| Fake::build($short, o),
        }
    };
}

fn registry() -> Registry {
    Registry::default()
        .with(fake!("CPUCollector", "cpu"))
        .with(fake!("MemoryCollector", "memory"))
        .with(fake!("LoadAverageCollector", "loadavg"))
        .with(fake!("DiskSpaceCollector", "diskspace"))
        .with(fake!("UptimeCollector", "uptime"))
        .with(fake!("NginxCollector", "nginx"))
}

fn names() -> HostNames {
    HostNames { hostname: "box".into(), uname: "box".into(), fqdn: "box.example.com".into() }
}

fn fixtures() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/agent")
}

fn from_toml_text(text: &str) -> std::result::Result<AgentConfig, String> {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("agent.toml");
    std::fs::write(&path, text).unwrap();
    AgentConfig::from_toml(&path, &registry(), &names()).map_err(|e| e.to_string())
}

#[test]
fn toml_and_diamond_conf_resolve_to_the_same_config() {
    let toml =
        AgentConfig::from_toml(&fixtures().join("agent.toml"), &registry(), &names()).unwrap();
    let diamond =
        AgentConfig::from_diamond(&fixtures().join("diamond/diamond.conf"), &registry(), &names())
            .unwrap();
    assert_eq!(toml.collectors, diamond.collectors);
    assert_eq!(toml.naming, diamond.naming);
    assert_eq!(format!("{:?}", toml.sender), format!("{:?}", diamond.sender));
    assert_eq!(AgentConfig { skipped: diamond.skipped.clone(), ..toml.clone() }, diamond);

    let names: Vec<&str> = diamond.collectors.iter().map(|c| c.name.as_str()).collect();
    assert_eq!(names, ["cpu", "loadavg", "memory", "nginx", "nginx web2"]);
    let cpu = &diamond.collectors[0];
    assert_eq!(cpu.interval, Duration::from_secs(30));
    // CPUCollector.conf wins over diamond.conf's section.
    assert_eq!(cpu.options.get("normalize"), Some("true"));
    assert_eq!(cpu.options.get("percore"), Some("false"));
    assert_eq!(cpu.options.get("byte_unit"), Some("byte"));
    assert_eq!(cpu.naming.host.as_deref(), Some("web01"));
    let memory = &diamond.collectors[2];
    assert_eq!(memory.naming.path_suffix, "prod");
    assert_eq!(memory.metrics_blacklist.as_deref(), Some("Vmalloc.*"));
    // The second instance takes [[default]] and its own section, not [[NginxCollector]].
    let web2 = &diamond.collectors[4];
    assert_eq!(web2.interval, Duration::from_secs(300));
    assert_eq!(web2.naming.host.as_deref(), Some("web02"));
    assert_eq!(web2.options.get("req_port"), Some("8081"));
    // Where each setting came from is kept for error messages.
    let origin = &cpu.origins.0["normalize"];
    assert!(origin.path.ends_with("collectors/CPUCollector.conf"), "{origin}");
    assert_eq!(origin.line, 2);

    assert_eq!(diamond.sender.destinations.len(), 2);
    let carbon = &diamond.sender.destinations[0];
    assert_eq!((carbon.kind, carbon.protocol), (DestinationKind::Carbon, Protocol::Plaintext));
    assert_eq!(carbon.address, "graphite.example:2003");
    assert_eq!(carbon.timeout, Duration::from_secs(10));
    assert_eq!(diamond.sender.destinations[1].kind, DestinationKind::Archive);
    assert_eq!(
        diamond.skipped,
        ["handler diamond.handler.stats_d.StatsdHandler", "MySQLCollector"]
    );

    // The printed configuration reads back to the same configuration.
    let printed = from_toml_text(&diamond.to_toml()).unwrap();
    assert_eq!(printed.collectors, diamond.collectors);
    assert_eq!(printed.naming, diamond.naming);
}

#[test]
fn no_config_runs_the_default_set_every_10_s_to_local_carbon() {
    let c = AgentConfig::builtin(&registry(), &names()).unwrap();
    let names: Vec<&str> = c.collectors.iter().map(|c| c.name.as_str()).collect();
    // The default set, less what this test registry lacks.
    assert_eq!(names, ["cpu", "diskspace", "loadavg", "memory"]);
    assert!(c.collectors.iter().all(|c| c.interval == Duration::from_secs(10)));
    assert_eq!(c.naming.host.as_deref(), Some("box"));
    assert_eq!(c.naming.hostname_method, HostnameMethod::Smart);
    assert_eq!(c.naming.path_prefix, "servers");
    assert_eq!(c.sender.destinations.len(), 1);
    assert_eq!(c.sender.destinations[0].kind, DestinationKind::Carbon);
    assert_eq!(c.sender.destinations[0].address, "");
    // A TOML file may switch one off, or the whole default set.
    let c = from_toml_text("[collectors.memory]\nenabled = false\n").unwrap();
    assert!(c.collectors.iter().all(|c| c.name != "memory") && c.collectors.len() == 3);
    let c = from_toml_text("[agent]\ndefault_collectors = false\n[collectors.uptime]\n").unwrap();
    assert_eq!(c.collectors.len(), 1);
}

#[test]
fn diamond_conf_without_an_interval_takes_diamonds_300_s() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("diamond.conf");
    std::fs::write(&path, "[collectors]\n[[CPUCollector]]\nenabled = True\n").unwrap();
    let c = AgentConfig::from_diamond(&path, &registry(), &names()).unwrap();
    assert_eq!(c.collectors[0].interval, Duration::from_secs(300));
}

/// Asserts the error text starts with `file:line:` and names `key`.
fn assert_names(err: &str, file: &Path, line: usize, key: &str) {
    let want = format!("{}:{line}:", file.display());
    assert!(err.starts_with(&want), "{err:?} should start with {want:?}");
    assert!(err.contains(&format!("`{key}`")), "{err:?} should name `{key}`");
}

#[test]
fn a_typo_or_bad_value_in_toml_names_file_line_and_key() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("agent.toml");
    for (text, line, key) in [
        ("[agnet]\ninterval = 5\n", 1, "agnet"),
        ("[agent]\nintervall = 5\n", 2, "intervall"),
        ("[agent]\ninterval = -5\n", 2, "interval"),
        ("[agent]\nhostname_method = \"fqdn_shrot\"\n", 2, "hostname_method"),
        ("[collectors.cpu]\n\npercore = \"maybe\"\n", 3, "percore"),
        ("[collectors.cpuu]\npercore = true\n", 1, "cpuu"),
        ("[collectors.memory]\nmetrics_whitelist = \"(\"\n", 2, "metrics_whitelist"),
        ("[collectors.nginx]\nreq_port = \"eighty\"\n", 2, "req_port"),
        ("[collectors.default]\nenabled = true\n", 2, "enabled"),
        ("[agent]\ninterval = 5\ninterval = 6\n", 3, ""),
        ("[[sender.destinations]]\nadress = \"x:1\"\n", 2, "sender"),
    ] {
        std::fs::write(&path, text).unwrap();
        let err = AgentConfig::from_toml(&path, &registry(), &names()).unwrap_err().to_string();
        assert_names(&err, &path, line, key);
    }
}

#[test]
fn a_bad_value_in_diamond_conf_names_file_line_and_key() {
    let dir = tempfile::tempdir().unwrap();
    let conf = dir.path().join("diamond.conf");
    std::fs::create_dir(dir.path().join("collectors")).unwrap();
    let cpu_file = dir.path().join("collectors/CPUCollector.conf");
    std::fs::write(&cpu_file, "# cpu\nenabled = True\npercore = sometimes\n").unwrap();
    std::fs::write(&conf, "[server]\ncollectors_config_path = collectors\n[collectors]\n").unwrap();
    let err = AgentConfig::from_diamond(&conf, &registry(), &names()).unwrap_err().to_string();
    assert_names(&err, &cpu_file, 3, "percore");

    std::fs::remove_file(&cpu_file).unwrap();
    for (text, line, key) in [
        ("[collectors]\n[[MemoryCollector]]\nenabled = Ture\n", 3, "enabled"),
        (
            "[collectors]\n[[default]]\nhostname_method = fdqn\n[[CPUCollector]]\nenabled = y\n",
            3,
            "hostname_method",
        ),
        ("[collectors]\n[[CPUCollector]]\nenabled = 1\ninterval = often\n", 4, "interval"),
        (
            "[server]\nhandlers = diamond.handler.graphite.GraphiteHandler\n[handlers]\n[[GraphiteHandler]]\nport = http\n",
            5,
            "port",
        ),
        ("[collectors]\n[[CPUCollector]\nenabled = True\n", 2, "[[CPUCollector]"),
    ] {
        std::fs::write(&conf, text).unwrap();
        let err = AgentConfig::from_diamond(&conf, &registry(), &names()).unwrap_err().to_string();
        assert_names(&err, &conf, line, key);
    }
}

#[test]
fn paths_follow_the_naming_settings() {
    let c = from_toml_text(
        "[agent]\ndefault_collectors = false\nhostname_method = \"fqdn_rev\"\n\
         [collectors.cpu]\nmetrics_whitelist = \"metric|stamped|collector_\"\nmeasure_collector_time = true\n\
         [collectors.memory]\npath = \".\"\npath_prefix = \"\"\nhostname = \"literal\"\npath_suffix = \"dc1\"\n\
         [collectors.loadavg]\npath = \"load\"\nhostname_method = \"none\"\nmetrics_blacklist = \"other\"\n\
         [collectors.nginx]\nhostname_method = \"fqdn\"\n",
    )
    .unwrap();
    let points = run_once(&c, &registry(), Duration::ZERO).unwrap();
    let mut lines: Vec<String> = points
        .iter()
        .map(|p| format!("{} {}", p.name, p.datapoint.value))
        .filter(|l| !l.contains("collector_time_ms"))
        .collect();
    lines.sort();
    assert_eq!(
        lines,
        [
            "literal.dc1.metric 1",
            "literal.dc1.other.value 2",
            "literal.dc1.stamped 3",
            "servers.box_example_com.nginx.metric 1",
            "servers.box_example_com.nginx.other.value 2",
            "servers.box_example_com.nginx.stamped 3",
            "servers.com.example.box.cpu.metric 1",
            "servers.com.example.box.cpu.stamped 3",
            "servers.load.metric 1",
            "servers.load.stamped 3",
        ]
    );
    assert!(
        points.iter().any(|p| p.name.as_str() == "servers.com.example.box.cpu.collector_time_ms")
    );
    // A sample's own timestamp is kept; the others get the run's.
    let stamped = points.iter().find(|p| p.name.as_str() == "servers.load.stamped").unwrap();
    assert_eq!(stamped.datapoint.timestamp, 1_000.0);
    let other = points.iter().find(|p| p.name.as_str() == "servers.load.metric").unwrap();
    assert!(other.datapoint.timestamp > 1_600_000_000.0);
}

/// Waits (bounded) until `sink` has received a point whose name ends with `suffix`.
fn wait_for(sink: &MemorySink, got: &mut Vec<carbon_proto::Point>, suffix: &str) -> bool {
    let deadline = Instant::now() + Duration::from_secs(10);
    while Instant::now() < deadline {
        got.extend(sink.take());
        if got.iter().any(|p| p.name.as_str().ends_with(suffix)) {
            return true;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    false
}

#[test]
fn a_hanging_or_failing_collector_delays_only_itself_and_is_counted() {
    let c = from_toml_text(
        "[agent]\ndefault_collectors = false\ninterval = 1\nhostname = \"h\"\n\
         [collectors.cpu]\nsleep_ms = 2500\n\
         [collectors.memory]\nfail = true\n\
         [collectors.loadavg]\nvalue = 7\n",
    )
    .unwrap();
    let sink = Arc::new(MemorySink::new());
    let agent = Agent::start(&c, &registry(), Arc::clone(&sink) as Arc<dyn PointSink>).unwrap();
    let mut got = Vec::new();
    // loadavg keeps publishing every second while cpu sleeps through its windows.
    let deadline = Instant::now() + Duration::from_secs(15);
    while got
        .iter()
        .filter(|p: &&carbon_proto::Point| p.name.as_str() == "servers.h.loadavg.metric")
        .count()
        < 3
    {
        assert!(Instant::now() < deadline, "loadavg stalled: {got:?}");
        got.extend(sink.take());
        std::thread::sleep(Duration::from_millis(20));
    }
    assert!(wait_for(&sink, &mut got, "collect.collectors.cpu.overruns"));
    let stats = agent.stats().to_vec();
    let busy = agent.stop(Duration::from_secs(5));
    assert!(busy.is_empty(), "{busy:?}");
    let get = |name: &str| stats.iter().find(|(n, _)| n == name).unwrap().1.clone();
    use std::sync::atomic::Ordering::Relaxed;
    assert!(get("cpu").overruns.load(Relaxed) >= 1);
    assert!(get("memory").errors.load(Relaxed) >= 1);
    assert_eq!(get("loadavg").errors.load(Relaxed), 0);
    assert!(!got.iter().any(|p| p.name.as_str().starts_with("servers.h.memory.")));
    assert!(got.iter().any(|p| p.name.as_str() == "servers.h.collect.collectors.memory.errors"));
    assert!(got.iter().any(|p| p.name.as_str() == "servers.h.collect.sender.memory.sent"));
}

#[test]
fn the_example_file_and_the_builtin_registry_agree() {
    let example = Path::new(env!("CARGO_MANIFEST_DIR")).join("agent.example.toml");
    let c = AgentConfig::from_toml(&example, &Registry::builtin(), &names()).unwrap();
    let listed: Vec<&str> = c.collectors.iter().map(|c| c.name.as_str()).collect();
    let mut default_set = collect::agent::DEFAULT_SET.to_vec();
    default_set.sort_unstable();
    assert_eq!(listed, default_set);
    let builtin = AgentConfig::builtin(&Registry::builtin(), &names()).unwrap();
    assert_eq!(builtin.collectors, c.collectors);
    // The commented [statsd] table, uncommented, gives statsd's defaults on this host.
    assert_eq!(c.statsd, None);
    let text = std::fs::read_to_string(&example).unwrap();
    let block = &text[text.find("\n# [statsd]\n").unwrap()..];
    let statsd: String =
        block.lines().map(|l| format!("{}\n", l.strip_prefix("# ").unwrap_or(l))).collect();
    let c = from_toml_text(&statsd).unwrap().statsd.unwrap();
    let local = collect::agent::AGENT_STATSD_ADDR;
    let defaults = collect::statsd::StatsdConfig {
        udp: Some(local),
        tcp: Some(local),
        ..collect::statsd::StatsdConfig::default()
    };
    assert_eq!(c, defaults);
    // Every Diamond class name and short name finds its collector.
    for kind in Registry::builtin().kinds() {
        assert_eq!(Registry::builtin().find(kind.class).unwrap().short, kind.short);
        assert_eq!(
            Registry::builtin().find(&format!("{} second", kind.short)).unwrap().class,
            kind.class
        );
    }
}

#[test]
fn a_statsd_table_runs_a_statsd_server_with_statsds_settings() {
    // Off without the table, and in a diamond.conf (Diamond has no statsd server).
    assert_eq!(from_toml_text("").unwrap().statsd, None);
    let diamond =
        AgentConfig::from_diamond(&fixtures().join("diamond/diamond.conf"), &registry(), &names())
            .unwrap();
    assert_eq!(diamond.statsd, None);

    // The table alone: statsd's defaults, on this host's port 8125.
    let c = from_toml_text("[statsd]\n").unwrap().statsd.unwrap();
    let local = collect::agent::AGENT_STATSD_ADDR;
    assert_eq!((c.udp, c.tcp), (Some(local), Some(local)));
    assert_eq!(local.to_string(), "127.0.0.1:8125");
    assert_eq!(c.flush_interval_ms, 10_000);
    assert_eq!(
        from_toml_text("[statsd]\nenabled = false\nudp = \"127.0.0.1:1\"\n").unwrap().statsd,
        None
    );

    // Either spelling of statsd's keys; `false` turns a socket off.
    let text = "[statsd]\nenabled = true\nudp = \"127.0.0.1:9125\"\ntcp = false\n\
                flushInterval = 2000\npercent_threshold = [90, 99.9]\ndelete_counters = true\n\
                histogram = [{ metric = \"api\", bins = [10, \"inf\"] }]\n\
                [statsd.graphite]\nlegacyNamespace = false\nglobal_suffix = \"web01\"\n";
    let config = from_toml_text(text).unwrap();
    let c = config.statsd.clone().unwrap();
    assert_eq!(c.udp, Some("127.0.0.1:9125".parse().unwrap()));
    assert_eq!(c.tcp, None);
    assert_eq!(c.flush_interval_ms, 2000);
    assert_eq!(c.percent_threshold, [90.0, 99.9]);
    assert_eq!(c.delete_counters, Some(true));
    assert_eq!(c.histogram[0].bins.len(), 2);
    assert!(!c.graphite.legacy_namespace);
    assert_eq!(c.graphite.global_suffix.as_deref(), Some("web01"));

    // --print-config shows the table, and it reads back the same.
    let printed = config.to_toml();
    assert!(printed.contains("\n[statsd]\nenabled = true\n"), "{printed}");
    assert_eq!(from_toml_text(&printed).unwrap().statsd, config.statsd);
}

#[test]
fn a_bad_statsd_setting_names_file_and_line() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("agent.toml");
    for (text, line, key) in [
        ("[agent]\ninterval = 5\n[statsd]\nflush_intervall = 5\n", 4, "statsd"),
        ("[statsd]\n\nudp = \"nowhere\"\n", 3, "statsd"),
        ("[statsd]\nenabled = \"yes\"\n", 2, "enabled"),
        ("[statsd]\nflush_interval_ms = 0\n", 2, "flushInterval"),
        ("[statsd]\n\npercentThreshold = 101\n", 3, "percentThreshold"),
        ("[statsd.graphite]\nlegacy_namespace = false\nprefix_timr = \"t\"\n", 3, "statsd"),
    ] {
        std::fs::write(&path, text).unwrap();
        let err = AgentConfig::from_toml(&path, &registry(), &names()).unwrap_err().to_string();
        assert_names(&err, &path, line, key);
    }
}

#[test]
fn diamond_conf_tls_keys_reach_the_http_collectors() {
    // The real collectors, so each section is built (and its ca_file read) as at start.
    let dir = tempfile::tempdir().unwrap();
    let ca = dir.path().join("ca.pem");
    let made = rcgen::generate_simple_self_signed(vec!["localhost".to_owned()]).unwrap();
    std::fs::write(&ca, made.cert.pem()).unwrap();
    let conf = dir.path().join("diamond.conf");
    let text = format!(
        "[collectors]\n[[NginxCollector]]\nenabled = True\nreq_ssl = True\nreq_port = 8443\n\
         ca_file = {}\n[[HTTPJSONCollector]]\nenabled = True\n\
         url = https://localhost:9200/_stats\ntls_verify = False\n",
        ca.display()
    );
    std::fs::write(&conf, &text).unwrap();
    let builtin = Registry::builtin();
    let c = AgentConfig::from_diamond(&conf, &builtin, &names()).unwrap();
    let names_of: Vec<&str> = c.collectors.iter().map(|c| c.name.as_str()).collect();
    assert_eq!(names_of, ["httpjson", "nginx"]);
    let (json, nginx) = (&c.collectors[0].options, &c.collectors[1].options);
    assert!(nginx.bool_or("req_ssl", false).unwrap());
    assert_eq!(nginx.get("ca_file"), ca.to_str());
    assert!(!json.bool_or("tls_verify", true).unwrap());
    // The printed agent.toml carries them too.
    let toml = dir.path().join("agent.toml");
    std::fs::write(&toml, c.to_toml()).unwrap();
    let again = AgentConfig::from_toml(&toml, &builtin, &names()).unwrap();
    assert_eq!(again.collectors, c.collectors);

    // A ca_file that is not there, or a bad tls_verify, is refused naming file, line and key.
    std::fs::write(&conf, text.replace(ca.to_str().unwrap(), "/nonexistent/ca.pem")).unwrap();
    let err = AgentConfig::from_diamond(&conf, &builtin, &names()).unwrap_err().to_string();
    assert_names(&err, &conf, 6, "ca_file");
    assert!(err.contains("no such file"), "{err}");
    std::fs::write(&conf, text.replace("tls_verify = False", "tls_verify = maybe")).unwrap();
    let err = AgentConfig::from_diamond(&conf, &builtin, &names()).unwrap_err().to_string();
    assert_names(&err, &conf, 10, "tls_verify");
}
