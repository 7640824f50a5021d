//! Collectors by name: Diamond's class names (`CPUCollector`) and our short names (`cpu`).
//!
//! Adding a collector is one line in [`Registry::builtin`]. A section name may carry an
//! instance after a space (`NginxCollector web2`, `nginx web2`): the first word picks the
//! collector, the whole name is the instance (its node in the self metrics, its config).

use crate::{Collector, Env, Options, Result};

/// Makes a collector from its options.
pub type MakeCollector = fn(&Options, &Env) -> Result<Box<dyn Collector>>;

/// One kind of collector.
#[derive(Clone, Copy, Debug)]
pub struct CollectorKind {
    /// Diamond's class name (`CPUCollector`).
    pub class: &'static str,
    /// Our short name (`cpu`), the TOML table name.
    pub short: &'static str,
    /// The constructor.
    pub make: MakeCollector,
}

/// The collectors enabled when no configuration names any (and in TOML configs unless
/// `default_collectors = false`).
pub const DEFAULT_SET: [&str; 9] =
    ["cpu", "memory", "loadavg", "diskspace", "iostat", "vmstat", "network", "sockets", "tcp"];

/// The known collectors.
#[derive(Clone, Debug, Default)]
pub struct Registry {
    kinds: Vec<CollectorKind>,
}

/// A registry entry for a type with `fn new(&Options, &Env) -> Result<Self>`.
macro_rules! kind {
    ($class:literal, $short:literal, $ty:ty) => {
        CollectorKind {
            class: $class,
            short: $short,
            make: |o, e| Ok(Box::new(<$ty>::new(o, e)?) as Box<dyn Collector>),
        }
    };
}

impl Registry {
    /// Every collector of this crate.
    pub fn builtin() -> Registry {
        use crate::{apps, system};
        let kinds = vec![
            kind!("CPUCollector", "cpu", system::Cpu),
            kind!("MemoryCollector", "memory", system::Memory),
            kind!("LoadAverageCollector", "loadavg", system::LoadAverage),
            kind!("DiskSpaceCollector", "diskspace", system::DiskSpace),
            kind!("DiskUsageCollector", "iostat", system::Iostat),
            kind!("NetworkCollector", "network", system::Network),
            kind!("VMStatCollector", "vmstat", system::VmStat),
            kind!("SockstatCollector", "sockets", system::Sockets),
            kind!("TCPCollector", "tcp", system::Tcp),
            kind!("UptimeCollector", "uptime", system::Uptime),
            kind!("EntropyStatCollector", "entropy", system::Entropy),
            kind!("ProcessResourcesCollector", "process", system::Process),
            kind!("NginxCollector", "nginx", apps::NginxCollector),
            kind!("RedisCollector", "redis", apps::RedisCollector),
            kind!("HTTPJSONCollector", "httpjson", apps::HttpJsonCollector),
            kind!("UserScriptsCollector", "userscripts", apps::ExecCollector),
            kind!("FilesCollector", "files", apps::FilesCollector),
        ];
        Registry { kinds }
    }

    /// Adds (or replaces, by short name) a kind: for tests and embedders.
    pub fn with(mut self, kind: CollectorKind) -> Registry {
        self.kinds.retain(|k| k.short != kind.short);
        self.kinds.push(kind);
        self
    }

    /// The kind named by the first word of `section` (class or short name).
    pub fn find(&self, section: &str) -> Option<&CollectorKind> {
        let word = section.split_whitespace().next().unwrap_or_default();
        self.kinds.iter().find(|k| k.class == word || k.short.eq_ignore_ascii_case(word))
    }

    /// Every kind.
    pub fn kinds(&self) -> &[CollectorKind] {
        &self.kinds
    }
}

/// The instance's resolved name: the short name, plus the instance words (`nginx web2`).
pub(crate) fn instance_name(kind: &CollectorKind, section: &str) -> String {
    let mut words = section.split_whitespace();
    words.next();
    let rest: Vec<&str> = words.collect();
    if rest.is_empty() {
        kind.short.to_owned()
    } else {
        format!("{} {}", kind.short, rest.join(" "))
    }
}
