//! Collectors and the sender of the graphite-rs agent.
//!
//! A drop-in for Diamond: the same collectors publish the same metric tree
//! (`servers.<host>.cpu.total.user`, `servers.<host>.memory.MemFree`, ...) with the same
//! units, but every rate divides by the real elapsed time and the first sample (and a sample
//! after a counter reset) is skipped instead of being published as a fake 0.
//!
//! The pieces:
//! - [`Collector`]: one source of metrics, run on an interval by the agent. System collectors
//!   read `/proc` (or a fixture tree, see [`Env`]); application collectors speak HTTP, RESP
//!   or run user scripts.
//! - [`Options`]: a collector's settings as key/value strings, so `diamond.conf` sections and
//!   TOML tables configure collectors the same way.
//! - [`Sample`]: what a collector emits; the agent turns it into a full Graphite path
//!   (`<prefix>.<host>[.<suffix>].<node>.<name>`, as Diamond builds it).
//! - [`sender::Sender`]: batches points to carbon (plaintext, pickle, UDP), an archive file
//!   or stdout, one thread per destination, with a bounded on-disk spool for outages.

pub mod agent;
pub mod apps;
mod error;
mod options;
pub mod rate;
mod sample;
pub mod system;
pub mod units;

pub mod sender;

pub mod statsd;

pub use error::{Error, Result};
pub use options::Options;
pub use sample::{Collector, Env, RunContext, Sample};
