//! Diamond's `UserScriptsCollector`, with tcollector's line format, de-duplication and
//! long-running collectors as options.
//!
//! On every run, each executable regular file in `scripts_path` is run (all at once, no
//! arguments, no stdin) and each line it prints becomes a sample below the host (node `.`):
//!
//! - `format = graphite` (default): `name value [timestamp]`, as Diamond's scripts print.
//! - `format = tcollector`: `metric timestamp value [tag=value ...]`, as tcollector's
//!   collectors print; tags become Graphite tags (`metric;k=v`, sorted by key) unless
//!   `tags = drop`. Repeated values are held back by tcollector's de-duplication (see
//!   [`dedup`]): `dedup_interval` (300 s; 0 turns it off), `dedup_only_zero` (false),
//!   `evict_interval` (6000 s).
//!
//! tcollector's directory layout works too: scripts in a subdirectory named by a number `N`
//! run every `N` seconds at most, and those in `0/` are long-running: started once, read line
//! by line as they print, killed and respawned (after `respawn_min`, 1 s, doubling up to
//! `respawn_max`, 300 s) when they exit or print nothing for `allowed_inactivity` (600 s).
//!
//! Bad input costs only itself: a line that does not parse is counted ([`ExecStats`]) and
//! skipped; a script that exits non-zero publishes nothing from that run (as in Diamond) and is
//! logged; stderr goes to a log line at most once a minute per script. A script still running
//! after `timeout` (10 s) is killed with its whole process group, and the run returns an error
//! naming it, after the other scripts' samples were added.

pub mod dedup;
pub mod lines;
mod process;

use std::collections::{BTreeMap, BTreeSet};
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use dedup::{Dedup, Verdict};
use lines::{parse_graphite, parse_tcollector};
use process::{RunError, StreamConfig, StreamEvent, StreamLine};

use super::{AppError, seconds};
use crate::error::{Error, Result};
use crate::options::Options;
use crate::sample::{Collector, Env, RunContext, Sample};

/// The line format scripts print.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum Format {
    /// `name value [timestamp]`.
    Graphite,
    /// `metric timestamp value [tag=value ...]`.
    Tcollector,
}

/// Counts of what the collector has seen since it was built.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct ExecStats {
    /// Script runs started (periodic runs and long-running spawns).
    pub runs: u64,
    /// Lines that became samples.
    pub lines_valid: u64,
    /// Lines refused: unparsable, too long, or out of order.
    pub lines_invalid: u64,
    /// Lines held back by de-duplication (not an error).
    pub lines_held: u64,
    /// Lines of long-running scripts dropped because the queue was full.
    pub lines_dropped: u64,
    /// Runs that exited non-zero or by a signal (their output is not published).
    pub runs_failed: u64,
    /// Runs killed at the timeout.
    pub timeouts: u64,
    /// Scripts that could not be started.
    pub spawn_errors: u64,
    /// Long-running scripts that exited or went silent (and will be respawned).
    pub stream_restarts: u64,
    /// Runs whose stdout passed the 4 MiB cap (the rest was dropped).
    pub output_truncated: u64,
}

/// Allows one log line a minute; counts the ones it refuses.
#[derive(Debug, Default)]
struct LogLimit {
    last: Option<Instant>,
    suppressed: u64,
}

impl LogLimit {
    /// `Some(number suppressed since the last allowed line)` when a line may be logged now.
    fn allow(&mut self, now: Instant) -> Option<u64> {
        if self.last.is_some_and(|l| now.duration_since(l) < Duration::from_secs(60)) {
            self.suppressed += 1;
            return None;
        }
        self.last = Some(now);
        Some(std::mem::take(&mut self.suppressed))
    }
}

/// When a script runs.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Schedule {
    /// Every run of the collector (top-level scripts, Diamond's way).
    EveryRun,
    /// At most every so many seconds (tcollector's `N/` directories).
    Every(Duration),
    /// Kept running (tcollector's `0/`).
    Stream,
}

/// What the collector remembers about one script.
#[derive(Debug)]
struct Script {
    schedule: Schedule,
    last_start: Option<Instant>,
    dedup: Dedup<Sample>,
    stderr_log: LogLimit,
    fail_log: LogLimit,
    bad_line_log: LogLimit,
    stream: Option<process::Stream>,
    dropped_seen: u64,
}

/// Runs user scripts (see the module docs).
#[derive(Debug)]
pub struct ExecCollector {
    scripts_path: PathBuf,
    format: Format,
    with_tags: bool,
    timeout: Duration,
    dedup_interval_ms: i64,
    dedup_only_zero: bool,
    evict_ms: i64,
    stream_cfg: StreamConfig,
    scripts: BTreeMap<PathBuf, Script>,
    missing_dir_logged: bool,
    stats: ExecStats,
}

impl ExecCollector {
    /// Builds the collector from its options (see the module docs).
    ///
    /// # Errors
    ///
    /// A bad option (an unknown `format` or `tags`, a bad number).
    pub fn new(opts: &Options, _env: &Env) -> Result<ExecCollector> {
        let format = match opts.str_or("format", "graphite").to_ascii_lowercase().as_str() {
            "graphite" | "diamond" => Format::Graphite,
            "tcollector" | "opentsdb" => Format::Tcollector,
            _ => return Err(bad(opts, "format", "expected graphite or tcollector")),
        };
        let with_tags = match opts.str_or("tags", "graphite").to_ascii_lowercase().as_str() {
            "graphite" => true,
            "drop" => false,
            _ => return Err(bad(opts, "tags", "expected graphite or drop")),
        };
        let ms = |key: &str, default_s: u64| -> Result<i64> {
            let s = opts.u64_or(key, default_s)?;
            i64::try_from(s.saturating_mul(1000)).map_err(|_| bad(opts, key, "too large"))
        };
        Ok(ExecCollector {
            scripts_path: PathBuf::from(opts.str_or("scripts_path", "/etc/diamond/user_scripts/")),
            format,
            with_tags,
            timeout: seconds(opts, "timeout", super::DEFAULT_TIMEOUT)?,
            dedup_interval_ms: ms("dedup_interval", 300)?,
            dedup_only_zero: opts.bool_or("dedup_only_zero", false)?,
            evict_ms: ms("evict_interval", 6000)?,
            stream_cfg: StreamConfig {
                inactivity: seconds(opts, "allowed_inactivity", Duration::from_secs(600))?,
                respawn_min: seconds(opts, "respawn_min", Duration::from_secs(1))?,
                respawn_max: seconds(opts, "respawn_max", Duration::from_secs(300))?,
            },
            scripts: BTreeMap::new(),
            missing_dir_logged: false,
            stats: ExecStats::default(),
        })
    }

    /// What the collector has seen so far.
    pub fn stats(&self) -> ExecStats {
        self.stats
    }

    /// The executables under `scripts_path` and when each runs.
    fn discover(&self) -> std::io::Result<Vec<(PathBuf, Schedule)>> {
        let mut found = Vec::new();
        for entry in std::fs::read_dir(&self.scripts_path)? {
            let Ok(entry) = entry else { continue };
            let path = entry.path();
            let Ok(meta) = std::fs::metadata(&path) else { continue };
            if meta.is_file() {
                if is_executable(&meta) {
                    found.push((path, Schedule::EveryRun));
                }
            } else if meta.is_dir() {
                // tcollector's layout: a directory named by its interval in seconds.
                let Some(n) = entry.file_name().to_str().and_then(|s| s.parse::<u64>().ok()) else {
                    continue;
                };
                let schedule =
                    if n == 0 { Schedule::Stream } else { Schedule::Every(Duration::from_secs(n)) };
                let Ok(inner) = std::fs::read_dir(&path) else { continue };
                for e in inner.flatten() {
                    let p = e.path();
                    if std::fs::metadata(&p).is_ok_and(|m| m.is_file() && is_executable(&m)) {
                        found.push((p, schedule));
                    }
                }
            }
        }
        found.sort_by(|a, b| a.0.cmp(&b.0));
        Ok(found)
    }

    /// Turns one line of `path`'s output into samples (or counts it).
    fn take_line(&mut self, path: &Path, line: &str, read_at: Option<i64>, out: &mut Vec<Sample>) {
        let line = line.trim();
        if line.is_empty() {
            return;
        }
        let (format, with_tags, dedup_on) =
            (self.format, self.with_tags, self.dedup_interval_ms > 0);
        let Some(script) = self.scripts.get_mut(path) else { return };
        let refused = match format {
            Format::Graphite => match parse_graphite(line) {
                Ok(p) => {
                    out.push(Sample {
                        name: p.name,
                        value: p.value,
                        timestamp: p.timestamp.or(read_at),
                    });
                    self.stats.lines_valid += 1;
                    None
                }
                Err(e) => Some(e.to_string()),
            },
            Format::Tcollector => match parse_tcollector(line) {
                Ok(p) => {
                    let name = p.name(with_tags);
                    let sample = Sample {
                        name: name.clone(),
                        value: p.value,
                        timestamp: Some(p.ts_ms.div_euclid(1000)),
                    };
                    if dedup_on {
                        match script.dedup.offer(&name, p.value, p.ts_ms, sample) {
                            Verdict::Send(points) => {
                                self.stats.lines_valid += 1;
                                out.extend(points);
                                None
                            }
                            Verdict::Held => {
                                self.stats.lines_held += 1;
                                None
                            }
                            Verdict::OutOfOrder => Some("timestamp not after the last one".into()),
                        }
                    } else {
                        self.stats.lines_valid += 1;
                        out.push(sample);
                        None
                    }
                }
                Err(e) => Some(e.to_string()),
            },
        };
        if let Some(why) = refused {
            self.stats.lines_invalid += 1;
            if let Some(suppressed) = script.bad_line_log.allow(Instant::now()) {
                let shown: String = line.chars().take(200).collect();
                tracing::warn!(script = %path.display(), line = %shown, reason = %why, suppressed, "bad line from script");
            }
        }
    }

    /// Runs the periodic scripts that are due; returns the failures to report.
    fn run_periodic(&mut self, due: &[PathBuf], out: &mut Vec<Sample>) -> Vec<AppError> {
        let mut failures = Vec::new();
        if due.is_empty() {
            return failures;
        }
        let results = process::run_all(due, self.timeout);
        let now = Instant::now();
        for (path, result) in due.iter().zip(results) {
            self.stats.runs += 1;
            let Some(script) = self.scripts.get_mut(path) else { continue };
            let output = match result {
                Ok(o) => o,
                Err(RunError::TimedOut) => {
                    self.stats.timeouts += 1;
                    failures.push(AppError::Script {
                        path: path.clone(),
                        what: format!("killed after {:?} (still running)", self.timeout),
                    });
                    continue;
                }
                Err(RunError::Spawn(e)) => {
                    self.stats.spawn_errors += 1;
                    failures.push(AppError::Script {
                        path: path.clone(),
                        what: format!("cannot start: {e}"),
                    });
                    continue;
                }
            };
            if !output.stderr.is_empty() {
                if let Some(suppressed) = script.stderr_log.allow(now) {
                    let text = String::from_utf8_lossy(&output.stderr);
                    let first: String =
                        text.lines().next().unwrap_or_default().chars().take(200).collect();
                    tracing::warn!(script = %path.display(), stderr = %first, suppressed, "script wrote to stderr");
                }
            }
            if !output.status.success() {
                // Diamond: a script that fails publishes nothing from that run.
                self.stats.runs_failed += 1;
                if let Some(suppressed) = script.fail_log.allow(now) {
                    tracing::warn!(script = %path.display(), status = %output.status, suppressed, "script failed; its output is not published");
                }
                continue;
            }
            if output.stdout_truncated {
                self.stats.output_truncated += 1;
                tracing::warn!(script = %path.display(), cap = process::MAX_STDOUT_BYTES, "script output over the cap; the rest was dropped");
            }
            let text = String::from_utf8_lossy(&output.stdout).into_owned();
            for line in text.lines() {
                self.take_line(path, line, None, out);
            }
        }
        failures
    }

    /// Polls the long-running scripts: their lines become samples, exits are respawned.
    fn poll_streams(&mut self, now: Instant, out: &mut Vec<Sample>) {
        let paths: Vec<PathBuf> = self
            .scripts
            .iter()
            .filter(|(_, s)| s.schedule == Schedule::Stream)
            .map(|(p, _)| p.clone())
            .collect();
        for path in paths {
            let mut lines = Vec::new();
            let cfg = self.stream_cfg;
            let Some(script) = self.scripts.get_mut(&path) else { continue };
            let stream =
                script.stream.get_or_insert_with(|| process::Stream::new(path.clone(), now, &cfg));
            let events = stream.poll(now, &cfg, &mut lines);
            let dropped = stream.dropped();
            self.stats.lines_dropped += dropped.saturating_sub(script.dropped_seen);
            script.dropped_seen = dropped;
            for ev in events {
                match ev {
                    StreamEvent::Spawned => self.stats.runs += 1,
                    StreamEvent::SpawnFailed(e) => {
                        self.stats.spawn_errors += 1;
                        if let Some(suppressed) = script.fail_log.allow(now) {
                            tracing::warn!(script = %path.display(), error = %e, suppressed, "cannot start long-running script");
                        }
                    }
                    StreamEvent::Exited(status) => {
                        self.stats.stream_restarts += 1;
                        if let Some(suppressed) = script.fail_log.allow(now) {
                            tracing::warn!(script = %path.display(), status = %status, suppressed, "long-running script exited; respawning");
                        }
                    }
                    StreamEvent::KilledSilent => {
                        self.stats.stream_restarts += 1;
                        if let Some(suppressed) = script.fail_log.allow(now) {
                            tracing::warn!(script = %path.display(), suppressed, "long-running script silent too long; killed, respawning");
                        }
                    }
                }
            }
            for line in lines {
                match line {
                    StreamLine::Line(text, at) => self.take_line(&path, &text, Some(at), out),
                    StreamLine::Overlong => self.stats.lines_invalid += 1,
                }
            }
        }
    }
}

fn is_executable(meta: &std::fs::Metadata) -> bool {
    meta.permissions().mode() & 0o111 != 0
}

fn bad(opts: &Options, key: &str, reason: &'static str) -> Error {
    Error::BadOption {
        key: key.to_owned(),
        value: opts.get(key).unwrap_or_default().to_owned(),
        reason,
    }
}

impl Collector for ExecCollector {
    fn default_path(&self) -> &str {
        "."
    }

    fn collect(&mut self, ctx: &RunContext, out: &mut Vec<Sample>) -> Result<()> {
        let found = match self.discover() {
            Ok(f) => {
                self.missing_dir_logged = false;
                f
            }
            Err(e) => {
                // Diamond publishes nothing while the directory is unreadable; so do we, and
                // say so once.
                if !self.missing_dir_logged {
                    tracing::warn!(dir = %self.scripts_path.display(), error = %e, "cannot read scripts_path");
                    self.missing_dir_logged = true;
                }
                Vec::new()
            }
        };
        // Forget scripts that are gone (dropping a stream kills it); learn new ones.
        let present: BTreeSet<&PathBuf> = found.iter().map(|(p, _)| p).collect();
        self.scripts.retain(|p, _| present.contains(p));
        for (path, schedule) in &found {
            let (interval, only_zero) = (self.dedup_interval_ms, self.dedup_only_zero);
            let s = self.scripts.entry(path.clone()).or_insert_with(|| Script {
                schedule: *schedule,
                last_start: None,
                dedup: Dedup::new(interval, only_zero),
                stderr_log: LogLimit::default(),
                fail_log: LogLimit::default(),
                bad_line_log: LogLimit::default(),
                stream: None,
                dropped_seen: 0,
            });
            if s.schedule != *schedule {
                s.schedule = *schedule;
                s.stream = None;
            }
        }
        let now = ctx.now;
        let mut due = Vec::new();
        for (path, s) in &mut self.scripts {
            let run = match s.schedule {
                Schedule::EveryRun => true,
                Schedule::Every(every) => {
                    s.last_start.is_none_or(|t| now.duration_since(t) >= every)
                }
                Schedule::Stream => false,
            };
            if run {
                s.last_start = Some(now);
                due.push(path.clone());
            }
        }
        let failures = self.run_periodic(&due, out);
        self.poll_streams(Instant::now(), out);
        let cutoff = ctx.unix_time.saturating_mul(1000).saturating_sub(self.evict_ms);
        for s in self.scripts.values_mut() {
            s.dedup.evict_before(cutoff);
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

    #[test]
    fn formats_and_tag_modes_are_checked() {
        let o: Options = [("format", "TCollector"), ("tags", "drop")].into_iter().collect();
        let c = ExecCollector::new(&o, &Env::default()).unwrap();
        assert_eq!((c.format, c.with_tags), (Format::Tcollector, false));
        let o: Options = [("format", "influx")].into_iter().collect();
        assert!(ExecCollector::new(&o, &Env::default()).is_err());
    }

    #[test]
    fn log_limit_allows_one_line_a_minute() {
        let mut l = LogLimit::default();
        let t = Instant::now();
        assert_eq!(l.allow(t), Some(0));
        assert_eq!(l.allow(t + Duration::from_secs(1)), None);
        assert_eq!(l.allow(t + Duration::from_secs(2)), None);
        assert_eq!(l.allow(t + Duration::from_secs(61)), Some(2));
    }
}
