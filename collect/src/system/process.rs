//! Per-process resources from `/proc/<pid>/...` (Diamond's `ProcessResourcesCollector`, node
//! `process`), without psutil.
//!
//! Processes are grouped by the settings of each group (flattened from Diamond's
//! `[process] [[<group>]]` subsections): `process.<group>.name`, `.exe`, `.cmdline` (comma
//! lists of regexes searched anywhere in the process name, executable path and space-joined
//! command line), `.pid_file` (a file holding a pid), `.selfmon` (this agent), and
//! `.count_workers`. A process may belong to several groups. Each group publishes the sums
//! over its processes, under psutil's field names as Diamond published them:
//! `cpu_percent`, `cpu_times.{user,system,children_user,children_system,iowait}` (seconds),
//! `io_counters.{read_count,write_count,read_bytes,write_bytes,read_chars,write_chars}`,
//! `memory_info_ex.{rss,vms,shared,text,lib,data,dirty}` (bytes), `memory_percent`,
//! `num_ctx_switches.{voluntary,involuntary}`, `num_fds`, `num_threads`, `uptime` (seconds)
//! and, with `count_workers`, `workers_count` (the number of processes, 0 when none).
//!
//! Files a process does not let us read (`io`, `fd` of another user's process) leave their
//! fields out for that process; a process that exits mid-read is skipped.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use regex::Regex;

use super::procfile::{ProcFile, read_into};
use super::{BadInput, clock_ticks_per_second, compile_regex, page_size_bytes, parse, push_node};
use crate::rate::{Clock, CounterTable};
use crate::{Collector, Env, Error, Options, Result, RunContext, Sample};

/// The process collector.
#[derive(Debug)]
pub struct Process {
    proc_root: PathBuf,
    groups: Vec<Group>,
    uptime: ProcFile,
    meminfo: ProcFile,
    /// Holds `/proc/<pid>/stat` while the other files of the process are read into `aux`.
    buf: Vec<u8>,
    aux: Vec<u8>,
    cmdline: String,
    ticks_per_second: f64,
    page_size: f64,
    clock: Clock,
    /// utime + stime per (pid, start time): a reused pid is a new process.
    cpu: CounterTable<(u32, u64)>,
    deltas: Vec<Option<u64>>,
    self_pid: u32,
    needs_exe: bool,
    needs_cmdline: bool,
    needs_name: bool,
    bad: BadInput,
}

#[derive(Debug)]
struct Group {
    /// The group's node, sanitised.
    node: String,
    exe: Vec<Regex>,
    name: Vec<Regex>,
    cmdline: Vec<Regex>,
    pid_file: Option<PathBuf>,
    selfmon: bool,
    count_workers: bool,
    /// The pid read from `pid_file` this run.
    pid: Option<u32>,
    sum: Sums,
}

/// A group's totals for one run.
#[derive(Debug, Default)]
struct Sums {
    /// Processes added.
    count: u64,
    /// Their figures, field by field.
    total: Info,
}

/// One process's figures (psutil's, per field group), or a group's sums of them.
#[derive(Debug, Default)]
struct Info {
    cpu_percent: Option<f64>,
    /// user, system, children_user, children_system, iowait.
    cpu_times: [Option<f64>; 5],
    io: [Option<f64>; 6],
    memory: [Option<f64>; 7],
    memory_percent: Option<f64>,
    ctx: [Option<f64>; 2],
    num_fds: Option<f64>,
    num_threads: Option<f64>,
    uptime: Option<f64>,
}

const CPU_TIMES: [&str; 5] = ["user", "system", "children_user", "children_system", "iowait"];
const IO: [&str; 6] =
    ["read_count", "write_count", "read_bytes", "write_bytes", "read_chars", "write_chars"];
const MEMORY: [&str; 7] = ["rss", "vms", "shared", "text", "lib", "data", "dirty"];
const CTX: [&str; 2] = ["voluntary", "involuntary"];

fn add(total: &mut Option<f64>, v: Option<f64>) {
    if let Some(v) = v {
        *total = Some(total.unwrap_or(0.0) + v);
    }
}

fn add_all<const N: usize>(total: &mut [Option<f64>; N], v: &[Option<f64>; N]) {
    for (t, v) in total.iter_mut().zip(v) {
        add(t, *v);
    }
}

impl Sums {
    fn add(&mut self, i: &Info) {
        self.count += 1;
        self.total.add(i);
    }
}

impl Info {
    fn add(&mut self, i: &Info) {
        add(&mut self.cpu_percent, i.cpu_percent);
        add_all(&mut self.cpu_times, &i.cpu_times);
        add_all(&mut self.io, &i.io);
        add_all(&mut self.memory, &i.memory);
        add(&mut self.memory_percent, i.memory_percent);
        add_all(&mut self.ctx, &i.ctx);
        add(&mut self.num_fds, i.num_fds);
        add(&mut self.num_threads, i.num_threads);
        add(&mut self.uptime, i.uptime);
    }
}

fn parse_groups(opts: &Options) -> Result<Vec<Group>> {
    let mut groups: BTreeMap<String, Group> = BTreeMap::new();
    let bad = |key: &str, value: &str, reason| Error::BadOption {
        key: key.to_owned(),
        value: value.to_owned(),
        reason,
    };
    for (key, value) in opts.iter() {
        let Some(rest) = key.strip_prefix("process.") else { continue };
        let Some((name, field)) = rest.rsplit_once('.') else {
            return Err(bad(
                key,
                value,
                "expected process.<group>.<exe|name|cmdline|pid_file|selfmon|count_workers>",
            ));
        };
        let group = groups.entry(name.to_owned()).or_insert_with(|| {
            let mut node = String::new();
            push_node(&mut node, name);
            Group {
                node,
                exe: Vec::new(),
                name: Vec::new(),
                cmdline: Vec::new(),
                pid_file: None,
                selfmon: false,
                count_workers: false,
                pid: None,
                sum: Sums::default(),
            }
        });
        let regexes = || -> Result<Vec<Regex>> {
            opts.list_or(key, &[]).iter().map(|p| compile_regex(key, p)).collect()
        };
        match field {
            "exe" => group.exe = regexes()?,
            "name" => group.name = regexes()?,
            "cmdline" => group.cmdline = regexes()?,
            "pid_file" => group.pid_file = Some(PathBuf::from(value.trim())),
            "selfmon" => group.selfmon = opts.bool_or(key, false)?,
            "count_workers" => group.count_workers = opts.bool_or(key, false)?,
            _ => {
                return Err(bad(
                    key,
                    value,
                    "unknown process group setting (exe, name, cmdline, pid_file, selfmon, count_workers)",
                ));
            }
        }
    }
    for (name, g) in &groups {
        if g.exe.is_empty()
            && g.name.is_empty()
            && g.cmdline.is_empty()
            && g.pid_file.is_none()
            && !g.selfmon
        {
            return Err(bad(
                &format!("process.{name}"),
                "",
                "a process group needs one of exe, name, cmdline, pid_file or selfmon",
            ));
        }
    }
    Ok(groups.into_values().collect())
}

impl Process {
    /// Options: the `process.<group>.<setting>` keys described in the module docs. Diamond's
    /// `unit` is accepted and, as in Diamond, has no effect.
    ///
    /// # Errors
    /// [`Error::BadOption`] for an unknown group setting, a bad regex or boolean, or a group
    /// with nothing to match on.
    pub fn new(opts: &Options, env: &Env) -> Result<Process> {
        let groups = parse_groups(opts)?;
        Ok(Process {
            proc_root: env.proc_root.clone(),
            needs_exe: groups.iter().any(|g| !g.exe.is_empty()),
            needs_cmdline: groups.iter().any(|g| !g.cmdline.is_empty()),
            needs_name: groups.iter().any(|g| !g.name.is_empty()),
            groups,
            uptime: ProcFile::new(env.proc_root.join("uptime")),
            meminfo: ProcFile::new(env.proc_root.join("meminfo")),
            buf: Vec::new(),
            aux: Vec::new(),
            cmdline: String::new(),
            ticks_per_second: clock_ticks_per_second() as f64,
            page_size: page_size_bytes() as f64,
            clock: Clock::new(),
            cpu: CounterTable::new(),
            deltas: Vec::new(),
            self_pid: std::process::id(),
            bad: BadInput::default(),
        })
    }

    /// Overrides the kernel's clock ticks per second (`sysconf(_SC_CLK_TCK)`), for a fixture
    /// captured on another machine.
    pub fn set_clock_ticks(&mut self, ticks_per_second: u64) -> &mut Process {
        self.ticks_per_second = ticks_per_second.max(1) as f64;
        self
    }

    /// Overrides the page size (`sysconf(_SC_PAGESIZE)`) that scales `statm`.
    pub fn set_page_size(&mut self, bytes: u64) -> &mut Process {
        self.page_size = bytes.max(1) as f64;
        self
    }

    /// Seconds since boot and total memory in bytes, which every process's figures need.
    fn host_figures(&mut self) -> Result<(f64, f64)> {
        let text = self.uptime.read(&mut self.buf)?;
        let uptime = parse::uptime_seconds(text).ok_or_else(|| Error::Malformed {
            path: self.uptime.path().to_owned(),
            what: format!("expected seconds since boot, got {:?}", text.trim()),
        })?;
        let text = self.meminfo.read(&mut self.buf)?;
        let total = text
            .lines()
            .filter_map(parse::meminfo_line)
            .find_map(|(k, v, _)| (k == "MemTotal").then_some(v))
            .ok_or_else(|| Error::Malformed {
                path: self.meminfo.path().to_owned(),
                what: "no MemTotal".to_owned(),
            })?;
        Ok((uptime, total as f64 * 1024.0))
    }

    /// Reads the figures of process `pid` whose stat line is `stat`.
    #[allow(clippy::too_many_arguments)]
    fn info(
        &mut self,
        dir: &Path,
        pid: u32,
        stat: &parse::PidStat<'_>,
        elapsed: Option<f64>,
        uptime: f64,
        mem_total: f64,
    ) -> Info {
        let hz = self.ticks_per_second;
        let mut info = Info::default();
        self.cpu.update(
            &(pid, stat.starttime),
            &[stat.utime.saturating_add(stat.stime)],
            &mut self.deltas,
        );
        if let (Some(secs), Some(d)) = (elapsed, self.deltas.first().copied().flatten()) {
            info.cpu_percent = Some(d as f64 / hz / secs * 100.0);
        }
        info.cpu_times = [
            Some(stat.utime as f64 / hz),
            Some(stat.stime as f64 / hz),
            Some(stat.cutime as f64 / hz),
            Some(stat.cstime as f64 / hz),
            stat.blkio_ticks.map(|t| t as f64 / hz),
        ];
        info.num_threads = Some(stat.num_threads as f64);
        info.uptime = Some((uptime - stat.starttime as f64 / hz).max(0.0));
        if read_into(&dir.join("status"), &mut self.aux).is_ok()
            && let Some((v, i)) = parse::pid_ctx_switches(&String::from_utf8_lossy(&self.aux))
        {
            info.ctx = [Some(v as f64), Some(i as f64)];
        }
        if read_into(&dir.join("io"), &mut self.aux).is_ok()
            && let Some(io) = parse::pid_io(&String::from_utf8_lossy(&self.aux))
        {
            info.io = [io.syscr, io.syscw, io.read_bytes, io.write_bytes, io.rchar, io.wchar]
                .map(|v| Some(v as f64));
        }
        if read_into(&dir.join("statm"), &mut self.aux).is_ok()
            && let Some([size, resident, shared, text, lib, data, dirty]) =
                parse::pid_statm(&String::from_utf8_lossy(&self.aux))
        {
            let page = self.page_size;
            info.memory =
                [resident, size, shared, text, lib, data, dirty].map(|p| Some(p as f64 * page));
            if mem_total > 0.0 {
                info.memory_percent = Some(resident as f64 * page / mem_total * 100.0);
            }
        }
        if let Ok(fds) = std::fs::read_dir(dir.join("fd")) {
            info.num_fds = Some(fds.count() as f64);
        }
        info
    }

    fn publish(&mut self, out: &mut Vec<Sample>) {
        for g in &mut self.groups {
            let s = std::mem::take(&mut g.sum);
            let t = &s.total;
            let node = &g.node;
            let mut push = |leaf: String, v: Option<f64>| {
                if let Some(v) = v {
                    out.push(Sample::new(format!("{node}.{leaf}"), v));
                }
            };
            if s.count > 0 {
                push("cpu_percent".to_owned(), t.cpu_percent);
                for (f, v) in CPU_TIMES.iter().zip(t.cpu_times) {
                    push(format!("cpu_times.{f}"), v);
                }
                for (f, v) in IO.iter().zip(t.io) {
                    push(format!("io_counters.{f}"), v);
                }
                for (f, v) in MEMORY.iter().zip(t.memory) {
                    push(format!("memory_info_ex.{f}"), v);
                }
                push("memory_percent".to_owned(), t.memory_percent);
                for (f, v) in CTX.iter().zip(t.ctx) {
                    push(format!("num_ctx_switches.{f}"), v);
                }
                push("num_fds".to_owned(), t.num_fds);
                push("num_threads".to_owned(), t.num_threads);
                push("uptime".to_owned(), t.uptime);
            }
            if g.count_workers {
                push("workers_count".to_owned(), Some(s.count as f64));
            }
        }
    }
}

impl Collector for Process {
    fn default_path(&self) -> &str {
        "process"
    }

    fn collect(&mut self, ctx: &RunContext, out: &mut Vec<Sample>) -> Result<()> {
        let elapsed = self.clock.tick(ctx.now);
        let (uptime, mem_total) = self.host_figures()?;
        for g in &mut self.groups {
            g.pid = g.pid_file.as_ref().and_then(|path| {
                let text = std::fs::read_to_string(path)
                    .map_err(|e| tracing::debug!(path = %path.display(), error = %e, "pid file unreadable"))
                    .ok()?;
                parse::single_u64(&text).and_then(|p| u32::try_from(p).ok())
            });
        }
        let entries =
            std::fs::read_dir(&self.proc_root).map_err(|e| Error::io(&self.proc_root, e))?;
        let mut stat_buf = std::mem::take(&mut self.buf);
        let mut matched = Vec::with_capacity(self.groups.len());
        for entry in entries.flatten() {
            let Some(pid) = entry.file_name().to_str().and_then(|n| n.parse::<u32>().ok()) else {
                continue;
            };
            let dir = entry.path();
            // A process that exited since the listing is simply gone.
            if read_into(&dir.join("stat"), &mut stat_buf).is_err() {
                continue;
            }
            let text = String::from_utf8_lossy(&stat_buf);
            let Some(stat) = parse::pid_stat(&text) else {
                self.bad.note(&dir.join("stat"), format_args!("bad stat line {text:?}"));
                continue;
            };
            let want_cmdline = self.needs_cmdline || (self.needs_name && stat.comm.len() >= 15);
            self.cmdline.clear();
            if want_cmdline && read_into(&dir.join("cmdline"), &mut self.aux).is_ok() {
                self.cmdline.push_str(&String::from_utf8_lossy(&self.aux).replace('\0', " "));
                self.cmdline.truncate(self.cmdline.trim_end().len());
            }
            // psutil's name: the kernel keeps 15 bytes of it; take the full one from argv[0].
            let mut name = stat.comm;
            if stat.comm.len() >= 15 {
                let argv0 = self.cmdline.split(' ').next().unwrap_or("");
                let base = argv0.rsplit('/').next().unwrap_or("");
                if base.starts_with(stat.comm) {
                    name = base;
                }
            }
            let exe = if self.needs_exe {
                std::fs::read_link(dir.join("exe"))
                    .map(|p| p.to_string_lossy().into_owned())
                    .unwrap_or_default()
            } else {
                String::new()
            };
            matched.clear();
            for (i, g) in self.groups.iter().enumerate() {
                let hit = (g.selfmon && pid == self.self_pid)
                    || g.pid == Some(pid)
                    || g.exe.iter().any(|r| r.is_match(&exe))
                    || g.name.iter().any(|r| r.is_match(name))
                    || g.cmdline.iter().any(|r| r.is_match(&self.cmdline));
                if hit {
                    matched.push(i);
                }
            }
            if matched.is_empty() {
                continue;
            }
            let info = self.info(&dir, pid, &stat, elapsed, uptime, mem_total);
            for &i in &matched {
                if let Some(g) = self.groups.get_mut(i) {
                    g.sum.add(&info);
                }
            }
        }
        self.buf = stat_buf;
        self.cpu.sweep();
        self.publish(out);
        Ok(())
    }
}
