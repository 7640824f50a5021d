//! Collectors that read the host directly: `/proc`, `/sys`, `/dev` and `statvfs`, no shelling
//! out and no psutil.
//!
//! Each publishes Diamond's node and leaf names and units by default (see the crate README,
//! "System collectors", for every deliberate difference) and takes Diamond's per-collector
//! options. Every collector is built with `new(&Options, &Env)` and implements
//! [`Collector`](crate::Collector); [`SYSTEM_COLLECTORS`] lists them by Diamond class name.
//!
//! Reading: the files of `/proc` that a collector reads every run are kept open and re-read
//! from offset 0 (like tcollector), into a buffer the collector keeps, and parsed in place
//! (`parse`), so a run allocates little beyond the samples it returns. A missing or unreadable
//! file fails that collector's run with the path named; a line that does not parse costs only
//! itself (counted, logged once).

mod cpu;
mod diskspace;
mod entropy;
mod iostat;
mod loadavg;
mod memory;
mod network;
mod parse;
mod process;
mod procfile;
mod sockets;
mod tcp;
mod uptime;
mod vmstat;

use std::path::Path;

pub use cpu::Cpu;
pub use diskspace::{DiskSpace, FixedFsStat, FsStat, FsUsage, StatvfsFsStat};
pub use entropy::Entropy;
pub use iostat::Iostat;
pub use loadavg::LoadAverage;
pub use memory::Memory;
pub use network::Network;
pub use process::Process;
pub use sockets::Sockets;
pub use tcp::Tcp;
pub use uptime::Uptime;
pub use vmstat::VmStat;

/// The system collectors: (Diamond class name, our short name). The short name is also the
/// collector's default node in the tree, except `sockets` whose node Diamond calls `sockets`
/// too, and `iostat`, Diamond's `DiskUsageCollector` (node `iostat`).
pub const SYSTEM_COLLECTORS: &[(&str, &str)] = &[
    ("CPUCollector", "cpu"),
    ("MemoryCollector", "memory"),
    ("LoadAverageCollector", "loadavg"),
    ("DiskSpaceCollector", "diskspace"),
    ("DiskUsageCollector", "iostat"),
    ("NetworkCollector", "network"),
    ("VMStatCollector", "vmstat"),
    ("SockstatCollector", "sockets"),
    ("TCPCollector", "tcp"),
    ("UptimeCollector", "uptime"),
    ("EntropyStatCollector", "entropy"),
    ("ProcessResourcesCollector", "process"),
];

/// Lines (or entries) of input a collector could not use. The first is logged at `warn`, the
/// rest at `debug`: a kernel with an unexpected format should not flood the log every run.
#[derive(Debug, Default)]
struct BadInput {
    count: u64,
}

impl BadInput {
    fn note(&mut self, path: &Path, what: std::fmt::Arguments<'_>) {
        self.count += 1;
        if self.count == 1 {
            tracing::warn!(path = %path.display(), "skipped input: {what} (further ones logged at debug)");
        } else {
            tracing::debug!(path = %path.display(), count = self.count, "skipped input: {what}");
        }
    }
}

/// Appends `label` to `out` as one tree node: dots, whitespace and slashes become `_`, so a
/// device or label name cannot add levels to the tree.
fn push_node(out: &mut String, label: &str) {
    out.extend(
        label.chars().map(|c| if c == '.' || c == '/' || c.is_whitespace() { '_' } else { c }),
    );
}

/// `<node>.<leaf>` with `node` sanitised.
fn node_leaf(node: &str, leaf: &str) -> String {
    let mut s = String::with_capacity(node.len() + 1 + leaf.len());
    push_node(&mut s, node);
    s.push('.');
    s.push_str(leaf);
    s
}

/// Compiles a user's regex, naming the option when it does not compile.
fn compile_regex(key: &str, pattern: &str) -> crate::Result<regex::Regex> {
    regex::Regex::new(pattern).map_err(|_| crate::Error::BadOption {
        key: key.to_owned(),
        value: pattern.to_owned(),
        reason: "not a valid regular expression",
    })
}

/// The kernel's clock ticks per second (`USER_HZ`), which scales `/proc/stat` and
/// `/proc/<pid>/stat` times. 100 on nearly every Linux build; read rather than assumed.
fn clock_ticks_per_second() -> u64 {
    // SAFETY: sysconf only reads a configuration value; it has no memory preconditions.
    let hz = unsafe { libc::sysconf(libc::_SC_CLK_TCK) };
    u64::try_from(hz).ok().filter(|&hz| hz > 0).unwrap_or(100)
}

/// The size of a memory page, which scales `/proc/<pid>/statm`.
fn page_size_bytes() -> u64 {
    // SAFETY: sysconf only reads a configuration value; it has no memory preconditions.
    let size = unsafe { libc::sysconf(libc::_SC_PAGESIZE) };
    u64::try_from(size).ok().filter(|&s| s > 0).unwrap_or(4096)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn node_names_cannot_add_levels() {
        assert_eq!(node_leaf("eth0.100", "rx_byte"), "eth0_100.rx_byte");
        assert_eq!(node_leaf("cciss/c0d0", "reads"), "cciss_c0d0.reads");
        assert_eq!(node_leaf("my disk", "byte_free"), "my_disk.byte_free");
    }

    #[test]
    fn host_constants_are_sane() {
        assert!(clock_ticks_per_second() > 0);
        assert!(page_size_bytes() >= 4096);
    }
}
