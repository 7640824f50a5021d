//! What a collector is and what it emits.

use std::path::PathBuf;
use std::time::Instant;

use crate::error::Result;

/// One value a collector publishes.
///
/// `name` is relative to the collector's node (`total.user` for the cpu collector, which the
/// agent turns into `servers.<host>.cpu.total.user`). Collectors whose node is `.` (exec,
/// files) give the name below the host. `timestamp` is set only when the source gives its
/// own (a script printing `name value ts`); otherwise the agent stamps the run's time.
#[derive(Clone, Debug, PartialEq)]
pub struct Sample {
    /// Dotted name below the collector's node.
    pub name: String,
    /// The value, already in the published unit.
    pub value: f64,
    /// Unix seconds from the source, when it gave one.
    pub timestamp: Option<i64>,
}

impl Sample {
    /// A sample stamped with the run's time.
    pub fn new(name: impl Into<String>, value: f64) -> Sample {
        Sample { name: name.into(), value, timestamp: None }
    }
}

/// Where system collectors read the host from. Tests point these at fixture trees captured
/// from real machines; the agent uses the real paths.
#[derive(Clone, Debug)]
pub struct Env {
    /// `/proc`.
    pub proc_root: PathBuf,
    /// `/sys`.
    pub sys_root: PathBuf,
    /// `/dev` (disk labels under `disk/by-label`).
    pub dev_root: PathBuf,
}

impl Default for Env {
    fn default() -> Env {
        Env {
            proc_root: PathBuf::from("/proc"),
            sys_root: PathBuf::from("/sys"),
            dev_root: PathBuf::from("/dev"),
        }
    }
}

/// What a collector knows about the run it is asked for.
#[derive(Clone, Copy, Debug)]
pub struct RunContext {
    /// Monotonic time of the run: rates divide by the difference between two runs' `now`.
    pub now: Instant,
    /// Wall-clock time of the run, Unix seconds (the timestamp of the published points).
    pub unix_time: i64,
}

/// One source of metrics. The agent runs each collector on its own thread, so a collector
/// may block (with its own timeouts); a slow or failing one delays only itself.
pub trait Collector: Send {
    /// The collector's node in the tree (`cpu`, `memory`, ...), before any `path` override.
    fn default_path(&self) -> &str;

    /// Reads the source once and appends what it publishes to `out`. An error is counted and
    /// logged by the agent, which tries again next interval; what the collector appended
    /// before returning it is still published, so a collector with several sources (Redis
    /// instances, scripts) puts the healthy ones' samples in `out` and reports the failed
    /// ones in the error. Rates need two runs: the first run after start publishes none.
    fn collect(&mut self, ctx: &RunContext, out: &mut Vec<Sample>) -> Result<()>;
}
