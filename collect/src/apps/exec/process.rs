//! Running scripts: each in its own process group (so a timeout kills the script and every
//! child it started), stdout and stderr read by threads into bounded buffers (so a chatty
//! script can neither block on a full pipe nor eat memory), and long-running scripts kept
//! alive with a respawn backoff.

use std::io::Read;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc::{self, Receiver, RecvTimeoutError, SyncSender, TryRecvError};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

/// The most stdout kept from one run of a periodic script; the rest is read and dropped.
pub(crate) const MAX_STDOUT_BYTES: usize = 4 << 20;
/// The most stderr kept from one run (it only goes to a log line).
pub(crate) const MAX_STDERR_BYTES: usize = 4 << 10;
/// The longest line a long-running script may print before the rest of it is dropped.
pub(crate) const MAX_STREAM_LINE_BYTES: usize = 64 << 10;
/// How many lines of one long-running script may wait between two runs of the collector;
/// more are dropped and counted (tcollector's reader queue is bounded the same way).
pub(crate) const STREAM_QUEUE_LINES: usize = 10_000;
/// How often the run loop looks at children that closed their pipes but have not exited.
const POLL: Duration = Duration::from_millis(20);

/// Starts `path` with no arguments and no stdin, in a new process group.
fn spawn(path: &Path) -> std::io::Result<Child> {
    Command::new(path)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .process_group(0)
        .spawn()
}

/// Sends SIGKILL to the process group led by `child` (the script and whatever it started).
fn kill_group(child: &Child) {
    let Ok(pid) = libc::pid_t::try_from(child.id()) else { return };
    if pid <= 0 {
        return;
    }
    // SAFETY: kill(2) takes plain integers and touches no memory of ours. The child was made
    // leader of its own group by `process_group(0)`, so -pid names that group; it has not been
    // reaped when this is called (or its group still holds members), so the id is not reused.
    unsafe {
        libc::kill(-pid, libc::SIGKILL);
    }
}

/// Reads `r` to its end, keeping at most `cap` bytes; sends (bytes, truncated) when done.
fn drain_to<R: Read + Send + 'static>(mut r: R, cap: usize, tx: mpsc::Sender<(Vec<u8>, bool)>) {
    std::thread::spawn(move || {
        let mut kept = Vec::new();
        let mut truncated = false;
        let mut buf = [0u8; 8192];
        loop {
            match r.read(&mut buf) {
                Ok(0) => break,
                Ok(n) => {
                    let room = cap.saturating_sub(kept.len());
                    let take = n.min(room);
                    kept.extend_from_slice(buf.get(..take).unwrap_or_default());
                    truncated |= take < n;
                }
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
                Err(_) => break,
            }
        }
        let _ = tx.send((kept, truncated));
    });
}

/// What one run of a periodic script gave.
#[derive(Debug)]
pub(crate) struct Output {
    pub(crate) status: ExitStatus,
    pub(crate) stdout: Vec<u8>,
    pub(crate) stdout_truncated: bool,
    pub(crate) stderr: Vec<u8>,
}

/// Why a run gave no output.
#[derive(Debug)]
pub(crate) enum RunError {
    /// The script could not be started.
    Spawn(std::io::Error),
    /// It did not finish (exit and close its output) within the timeout, and was killed.
    TimedOut,
}

struct Job {
    child: Child,
    stdout: Receiver<(Vec<u8>, bool)>,
    stderr: Receiver<(Vec<u8>, bool)>,
    status: Option<ExitStatus>,
    out: Option<(Vec<u8>, bool)>,
    err: Option<(Vec<u8>, bool)>,
}

impl Job {
    fn done(&self) -> bool {
        self.status.is_some() && self.out.is_some() && self.err.is_some()
    }
}

/// Runs every script of `paths` at once and waits until each has exited and closed its output,
/// or `timeout` has passed; a script still running then is killed with its process group.
/// Results come back in the order of `paths`.
pub(crate) fn run_all(paths: &[PathBuf], timeout: Duration) -> Vec<Result<Output, RunError>> {
    let deadline = Instant::now() + timeout;
    let mut jobs: Vec<Result<Job, RunError>> = paths
        .iter()
        .map(|p| {
            let mut child = spawn(p).map_err(RunError::Spawn)?;
            let (otx, orx) = mpsc::channel();
            let (etx, erx) = mpsc::channel();
            if let Some(out) = child.stdout.take() {
                drain_to(out, MAX_STDOUT_BYTES, otx);
            }
            if let Some(err) = child.stderr.take() {
                drain_to(err, MAX_STDERR_BYTES, etx);
            }
            Ok(Job { child, stdout: orx, stderr: erx, status: None, out: None, err: None })
        })
        .collect();
    loop {
        let mut pending = false;
        for job in jobs.iter_mut().flatten() {
            if job.done() {
                continue;
            }
            if job.status.is_none() {
                match job.child.try_wait() {
                    Ok(Some(s)) => job.status = Some(s),
                    Ok(None) => {}
                    // Cannot happen for our own un-reaped child; count it as still running.
                    Err(_) => {}
                }
            }
            if job.out.is_none() {
                job.out = job.stdout.try_recv().ok();
            }
            if job.err.is_none() {
                job.err = job.stderr.try_recv().ok();
            }
            pending |= !job.done();
        }
        if !pending {
            break;
        }
        let now = Instant::now();
        if now >= deadline {
            break;
        }
        // Wake when a stdout closes (usually the moment the script exits) or after POLL.
        let wait = POLL.min(deadline - now);
        if let Some(job) = jobs.iter_mut().flatten().find(|j| j.out.is_none()) {
            match job.stdout.recv_timeout(wait) {
                Ok(v) => job.out = Some(v),
                Err(RecvTimeoutError::Timeout | RecvTimeoutError::Disconnected) => {}
            }
        } else {
            std::thread::sleep(wait);
        }
    }
    jobs.into_iter()
        .map(|j| {
            let mut job = j?;
            if !job.done() {
                kill_group(&job.child);
                let _ = job.child.wait();
                return Err(RunError::TimedOut);
            }
            let (stdout, stdout_truncated) = job.out.take().unwrap_or_default();
            let (stderr, _) = job.err.take().unwrap_or_default();
            // `done()` checked the status is there.
            let status = job.status.ok_or(RunError::TimedOut)?;
            Ok(Output { status, stdout, stdout_truncated, stderr })
        })
        .collect()
}

/// One line from a long-running script.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum StreamLine {
    /// A line (without its newline), and the Unix second it was read.
    Line(String, i64),
    /// A line longer than [`MAX_STREAM_LINE_BYTES`], dropped.
    Overlong,
}

fn unix_now() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_secs()).unwrap_or(i64::MAX))
}

/// Splits `r` into lines as they arrive and queues them; a full queue drops the line and counts
/// it in `dropped`.
fn stream_lines<R: Read + Send + 'static>(
    mut r: R,
    tx: SyncSender<StreamLine>,
    dropped: Arc<AtomicU64>,
) {
    std::thread::spawn(move || {
        let mut line: Vec<u8> = Vec::new();
        let mut skipping = false;
        let mut buf = [0u8; 8192];
        let send = |msg: StreamLine| match tx.try_send(msg) {
            Ok(()) => true,
            Err(mpsc::TrySendError::Full(_)) => {
                dropped.fetch_add(1, Ordering::Relaxed);
                true
            }
            Err(mpsc::TrySendError::Disconnected(_)) => false,
        };
        loop {
            let n = match r.read(&mut buf) {
                Ok(0) | Err(_) => break,
                Ok(n) => n,
            };
            for &b in buf.get(..n).unwrap_or_default() {
                if b == b'\n' {
                    let alive = if skipping {
                        send(StreamLine::Overlong)
                    } else {
                        let text = String::from_utf8_lossy(&line).trim_end_matches('\r').to_owned();
                        send(StreamLine::Line(text, unix_now()))
                    };
                    line.clear();
                    skipping = false;
                    if !alive {
                        return;
                    }
                } else if !skipping {
                    if line.len() >= MAX_STREAM_LINE_BYTES {
                        skipping = true;
                        line.clear();
                    } else {
                        line.push(b);
                    }
                }
            }
        }
        if !line.is_empty() && !skipping {
            let text = String::from_utf8_lossy(&line).into_owned();
            let _ = send(StreamLine::Line(text, unix_now()));
        }
    });
}

/// Logs a long-running script's stderr, at most one line a minute (the rest counted); only the
/// first 512 bytes of a line are kept.
fn log_stderr<R: Read + Send + 'static>(mut r: R, script: String) {
    std::thread::spawn(move || {
        let mut last: Option<Instant> = None;
        let mut suppressed = 0u64;
        let mut line: Vec<u8> = Vec::new();
        let mut buf = [0u8; 4096];
        loop {
            let n = match r.read(&mut buf) {
                Ok(0) | Err(_) => break,
                Ok(n) => n,
            };
            for &b in buf.get(..n).unwrap_or_default() {
                if b != b'\n' {
                    if line.len() < 512 {
                        line.push(b);
                    }
                    continue;
                }
                let now = Instant::now();
                if last.is_some_and(|l| now.duration_since(l) < Duration::from_secs(60)) {
                    suppressed += 1;
                } else {
                    last = Some(now);
                    let text = String::from_utf8_lossy(&line);
                    tracing::warn!(script = %script, stderr = %text, suppressed, "script wrote to stderr");
                    suppressed = 0;
                }
                line.clear();
            }
        }
    });
}

/// Settings of long-running scripts.
#[derive(Clone, Copy, Debug)]
pub(crate) struct StreamConfig {
    /// Kill and respawn a script silent this long (tcollector's `allowed_inactivity_time`).
    pub(crate) inactivity: Duration,
    /// The first respawn delay; it doubles after each exit up to `respawn_max`.
    pub(crate) respawn_min: Duration,
    /// The longest respawn delay; a script that ran at least this long starts over from
    /// `respawn_min`.
    pub(crate) respawn_max: Duration,
}

/// What happened to a long-running script during one poll.
#[derive(Debug)]
pub(crate) enum StreamEvent {
    /// (Re)started.
    Spawned,
    /// Could not be started; will be tried again after the backoff.
    SpawnFailed(std::io::Error),
    /// Exited by itself.
    Exited(ExitStatus),
    /// Killed for printing nothing for too long.
    KilledSilent,
}

/// A script kept running (tcollector's interval 0), respawned when it exits or goes silent.
#[derive(Debug)]
pub(crate) struct Stream {
    path: PathBuf,
    child: Option<Child>,
    lines: Option<Receiver<StreamLine>>,
    started: Instant,
    last_output: Instant,
    next_spawn: Instant,
    backoff: Duration,
    dropped: Arc<AtomicU64>,
}

impl Stream {
    /// A stream that starts at the first poll.
    pub(crate) fn new(path: PathBuf, now: Instant, cfg: &StreamConfig) -> Stream {
        Stream {
            path,
            child: None,
            lines: None,
            started: now,
            last_output: now,
            next_spawn: now,
            backoff: cfg.respawn_min,
            dropped: Arc::new(AtomicU64::new(0)),
        }
    }

    /// Lines dropped because the queue was full, since the stream was made.
    pub(crate) fn dropped(&self) -> u64 {
        self.dropped.load(Ordering::Relaxed)
    }

    /// Takes the lines read so far, notices an exit or a silence (and kills, then schedules a
    /// respawn), and starts the script when it is due.
    pub(crate) fn poll(
        &mut self,
        now: Instant,
        cfg: &StreamConfig,
        out: &mut Vec<StreamLine>,
    ) -> Vec<StreamEvent> {
        let mut events = Vec::new();
        self.drain(now, out);
        if let Some(child) = self.child.as_mut() {
            let exited = match child.try_wait() {
                Ok(Some(status)) => Some(StreamEvent::Exited(status)),
                Ok(None) if now.duration_since(self.last_output) > cfg.inactivity => {
                    kill_group(child);
                    let _ = child.wait();
                    Some(StreamEvent::KilledSilent)
                }
                Ok(None) => None,
                Err(_) => {
                    kill_group(child);
                    let _ = child.wait();
                    Some(StreamEvent::KilledSilent)
                }
            };
            if let Some(ev) = exited {
                events.push(ev);
                self.child = None;
                self.schedule(now, cfg);
            }
        }
        if self.child.is_none() && now >= self.next_spawn {
            self.drain(now, out);
            match spawn(&self.path) {
                Ok(mut child) => {
                    let (tx, rx) = mpsc::sync_channel(STREAM_QUEUE_LINES);
                    if let Some(o) = child.stdout.take() {
                        stream_lines(o, tx, Arc::clone(&self.dropped));
                    }
                    if let Some(e) = child.stderr.take() {
                        log_stderr(e, self.path.display().to_string());
                    }
                    self.child = Some(child);
                    self.lines = Some(rx);
                    self.started = now;
                    self.last_output = now;
                    events.push(StreamEvent::Spawned);
                }
                Err(e) => {
                    events.push(StreamEvent::SpawnFailed(e));
                    self.schedule(now, cfg);
                }
            }
        }
        events
    }

    fn drain(&mut self, now: Instant, out: &mut Vec<StreamLine>) {
        let Some(rx) = &self.lines else { return };
        for _ in 0..STREAM_QUEUE_LINES + 1 {
            match rx.try_recv() {
                Ok(l) => {
                    out.push(l);
                    self.last_output = now;
                }
                Err(TryRecvError::Empty) => return,
                Err(TryRecvError::Disconnected) => {
                    self.lines = None;
                    return;
                }
            }
        }
    }

    fn schedule(&mut self, now: Instant, cfg: &StreamConfig) {
        if now.duration_since(self.started) >= cfg.respawn_max {
            self.backoff = cfg.respawn_min;
        }
        self.next_spawn = now + self.backoff;
        self.backoff = (self.backoff * 2).min(cfg.respawn_max);
    }
}

impl Drop for Stream {
    fn drop(&mut self) {
        if let Some(child) = self.child.as_mut() {
            kill_group(child);
            let _ = child.wait();
        }
    }
}
