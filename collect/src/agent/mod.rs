//! The agent: configuration (TOML or an existing diamond.conf), host naming, the collector
//! registry and the scheduler that runs each collector on its own thread and hands the
//! points to a sender.

mod config;
mod diamond;
mod error;
mod hostname;
mod path;
mod registry;
mod scheduler;
mod sink;
mod toml_config;

pub use config::{
    AGENT_STATSD_ADDR, AgentConfig, CollectorConfig, DIAMOND_DEFAULT_INTERVAL_SECS, EnvConfig,
    Naming, Origins, TOML_DEFAULT_INTERVAL_SECS,
};
pub use error::{AgentError, Origin};
pub use hostname::{HostNames, HostnameMethod, METHOD_NAMES, resolve_hostname};
pub use path::{MetricFilter, MetricPath, node};
pub use registry::{CollectorKind, DEFAULT_SET, MakeCollector, Registry};
pub use scheduler::{Agent, RunStats, run_once};
pub use sink::{MemorySink, PointSink, SinkStats};
