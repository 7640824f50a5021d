//! Read latency of a carbon-cache (ours or carbon's), for `benches/side-by-side/server.sh`:
//! how long one read takes while the server is idle, and while it ingests at full speed.
//!
//! ```text
//! read-latency --port 22002 --metric NAME [--whisper-dir DIR] [--requests 1000]
//!              [--pause-us 1000] [--while-pid PID] [--max-seconds 60] [--label idle]
//!              [--slow-us 1000]
//! read-latency --count-cached --port 22002 --metrics 100000 [--prefix bench.ingest]
//!              [--fanout 1000] [--sample 100]
//! ```
//!
//! One read is what graphite-web does for one series: a CarbonLink cache query (a 4-byte
//! big-endian length and a pickled `{'type': 'cache-query', 'metric': NAME}`, on one kept-open
//! connection, as CarbonLink's pool keeps them) and a `whisper.fetch` of the metric's file
//! (the last 24 h, opened and closed per read). Both are timed apart; `read` is their sum.
//! Reads repeat `--requests` times with `--pause-us` between them, or, with `--while-pid`, for
//! as long as that process lives (the load generator), so that every sample falls inside the
//! ingest. Prints one `RESULT key=value ...` line (microseconds):
//! `cq_*` cache query, `wsp_*` file read, `read_*` both; `p50`, `p99`, `max`, `mean`;
//! `errors` counts failed queries (a timeout, a refused connection, an error answer).
//!
//! `--slow-us N` prints to stderr when (seconds after the start) each cache query of N
//! microseconds or more happened, to look for a period in the stalls.
//!
//! `--count-cached` asks the cache for a sample of the load generator's metrics
//! (`PREFIX.g<i/FANOUT>.m<i%FANOUT>`) and prints how many points it holds for them.

use std::error::Error;
use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use carbon_proto::cache_query::{Request, Response};
use carbon_proto::pickle::encode_frame;

type Result<T> = std::result::Result<T, Box<dyn Error>>;

/// How long one cache query may take before it counts as an error.
const QUERY_TIMEOUT: Duration = Duration::from_secs(10);

struct Args {
    host: String,
    port: u16,
    metric: String,
    whisper_dir: Option<PathBuf>,
    requests: usize,
    pause: Duration,
    while_pid: Option<u32>,
    max_seconds: f64,
    label: String,
    count_cached: bool,
    prefix: String,
    metrics: usize,
    fanout: usize,
    sample: usize,
    slow_us: Option<f64>,
}

fn parse_args() -> Result<Args> {
    let mut a = Args {
        host: "127.0.0.1".into(),
        port: 22002,
        metric: String::new(),
        whisper_dir: None,
        requests: 1000,
        pause: Duration::from_micros(1000),
        while_pid: None,
        max_seconds: 60.0,
        label: "read".into(),
        count_cached: false,
        prefix: "bench.ingest".into(),
        metrics: 0,
        fanout: 1000,
        sample: 100,
        slow_us: None,
    };
    let mut it = std::env::args().skip(1);
    while let Some(flag) = it.next() {
        let mut val = || it.next().ok_or_else(|| format!("{flag} needs a value"));
        match flag.as_str() {
            "--host" => a.host = val()?,
            "--port" => a.port = val()?.parse()?,
            "--metric" => a.metric = val()?,
            "--whisper-dir" => a.whisper_dir = Some(val()?.into()),
            "--requests" => a.requests = val()?.parse()?,
            "--pause-us" => a.pause = Duration::from_micros(val()?.parse()?),
            "--while-pid" => a.while_pid = Some(val()?.parse()?),
            "--max-seconds" => a.max_seconds = val()?.parse()?,
            "--label" => a.label = val()?,
            "--count-cached" => a.count_cached = true,
            "--prefix" => a.prefix = val()?,
            "--metrics" => a.metrics = val()?.parse()?,
            "--fanout" => a.fanout = val()?.parse()?,
            "--sample" => a.sample = val()?.parse()?,
            "--slow-us" => a.slow_us = Some(val()?.parse()?),
            "-h" | "--help" => {
                println!(
                    "usage: read-latency --port P --metric NAME [--whisper-dir DIR] [--requests N] \
                     [--pause-us US] [--while-pid PID] [--max-seconds S] [--label L] [--host H] \
                     [--slow-us US]\n       \
                     read-latency --count-cached --port P --metrics N [--prefix P] [--fanout F] \
                     [--sample S]"
                );
                std::process::exit(0);
            }
            _ => return Err(format!("unknown argument {flag}").into()),
        }
    }
    if a.count_cached {
        if a.metrics == 0 || a.fanout == 0 || a.sample == 0 {
            return Err("--count-cached needs positive --metrics, --fanout and --sample".into());
        }
    } else if a.metric.is_empty() {
        return Err("--metric is required".into());
    }
    Ok(a)
}

/// One kept-open CarbonLink connection.
struct CacheLink {
    addr: String,
    stream: Option<TcpStream>,
    request: Vec<u8>,
    answer: Vec<u8>,
}

impl CacheLink {
    fn new(host: &str, port: u16) -> CacheLink {
        CacheLink {
            addr: format!("{host}:{port}"),
            stream: None,
            request: Vec::new(),
            answer: Vec::new(),
        }
    }

    /// The cached points of `metric`; on any error the connection is dropped (CarbonLink
    /// does the same) and the next query reconnects.
    fn query(&mut self, metric: &str) -> Result<usize> {
        let result = self.query_once(metric);
        if result.is_err() {
            self.stream = None;
        }
        result
    }

    fn query_once(&mut self, metric: &str) -> Result<usize> {
        if self.stream.is_none() {
            let s = TcpStream::connect(&self.addr)?;
            s.set_nodelay(true)?;
            s.set_read_timeout(Some(QUERY_TIMEOUT))?;
            s.set_write_timeout(Some(QUERY_TIMEOUT))?;
            self.stream = Some(s);
        }
        let Some(stream) = self.stream.as_mut() else {
            return Err("not connected".into());
        };
        let mut payload = Vec::new();
        Request::CacheQuery { metric: metric.to_owned() }.encode(&mut payload);
        self.request.clear();
        encode_frame(&mut self.request, &payload)?;
        stream.write_all(&self.request)?;
        let mut len = [0u8; 4];
        stream.read_exact(&mut len)?;
        let len = u32::from_be_bytes(len) as usize;
        if len > carbon_proto::cache_query::MAX_RESPONSE_BYTES {
            return Err(format!("response frame of {len} bytes").into());
        }
        self.answer.resize(len, 0);
        stream.read_exact(&mut self.answer)?;
        match Response::decode(&self.answer)? {
            Response::Datapoints(points) => Ok(points.len()),
            Response::Error { message } => Err(format!("error answer: {message}").into()),
            other => Err(format!("unexpected answer {other:?}").into()),
        }
    }
}

/// The load generator's metric name for index `i`.
fn metric_name(prefix: &str, fanout: usize, i: usize) -> String {
    format!("{prefix}.g{}.m{}", i / fanout, i % fanout)
}

/// The file of `metric` under `dir` (dots are directories).
fn whisper_path(dir: &Path, metric: &str) -> PathBuf {
    let mut p = dir.to_path_buf();
    for part in metric.split('.') {
        p.push(part);
    }
    p.set_extension("wsp");
    p
}

/// Whether `pid` is still running (a zombie counts as gone).
fn alive(pid: u32) -> bool {
    match std::fs::read_to_string(format!("/proc/{pid}/stat")) {
        // The state follows the parenthesised command name.
        Ok(stat) => {
            stat.rsplit_once(')').is_some_and(|(_, rest)| !rest.trim_start().starts_with('Z'))
        }
        Err(_) => false,
    }
}

/// Percentile `p` (0-100) of sorted `v`, nearest rank.
fn percentile(v: &[f64], p: f64) -> f64 {
    if v.is_empty() {
        return 0.0;
    }
    let rank = ((p / 100.0) * v.len() as f64).ceil() as usize;
    v.get(rank.clamp(1, v.len()) - 1).copied().unwrap_or(0.0)
}

fn summary(name: &str, v: &mut [f64]) -> String {
    v.sort_by(f64::total_cmp);
    let mean = if v.is_empty() { 0.0 } else { v.iter().sum::<f64>() / v.len() as f64 };
    format!(
        "{name}_p50_us={:.0} {name}_p90_us={:.0} {name}_p99_us={:.0} {name}_max_us={:.0} \
         {name}_mean_us={:.0} {name}_over_1ms={}",
        percentile(v, 50.0),
        percentile(v, 90.0),
        percentile(v, 99.0),
        v.last().copied().unwrap_or(0.0),
        mean,
        v.iter().filter(|&&x| x >= 1000.0).count()
    )
}

fn count_cached(a: &Args) -> Result<()> {
    let mut link = CacheLink::new(&a.host, a.port);
    let sample = a.sample.min(a.metrics);
    let (mut points, mut errors) = (0usize, 0usize);
    for j in 0..sample {
        let i = j * a.metrics / sample;
        match link.query(&metric_name(&a.prefix, a.fanout, i)) {
            Ok(n) => points += n,
            Err(e) => {
                errors += 1;
                eprintln!("read-latency: metric {i}: {e}");
            }
        }
    }
    println!(
        "RESULT mode=count-cached metrics_sampled={sample} cached_points={points} errors={errors}"
    );
    Ok(())
}

fn latency(a: &Args) -> Result<()> {
    let mut link = CacheLink::new(&a.host, a.port);
    let path = a.whisper_dir.as_ref().map(|d| whisper_path(d, &a.metric));
    let (mut cq, mut wsp, mut read) = (Vec::new(), Vec::new(), Vec::new());
    let (mut errors, mut wsp_errors, mut last_points) = (0usize, 0usize, 0usize);
    let mut first_error = None;
    let started = Instant::now();
    let limit = if a.while_pid.is_some() { usize::MAX } else { a.requests };
    while cq.len() + errors < limit && started.elapsed().as_secs_f64() < a.max_seconds {
        if let Some(pid) = a.while_pid
            && !alive(pid)
        {
            break;
        }
        let t = Instant::now();
        match link.query(&a.metric) {
            Ok(n) => last_points = n,
            Err(e) => {
                errors += 1;
                first_error.get_or_insert_with(|| e.to_string());
                continue;
            }
        }
        let t_cq = t.elapsed().as_secs_f64() * 1e6;
        cq.push(t_cq);
        if a.slow_us.is_some_and(|slow| t_cq >= slow) {
            let at = t.duration_since(started).as_secs_f64();
            eprintln!("read-latency: slow cache query at +{at:.4}s: {t_cq:.0} us");
        }
        if let Some(p) = &path {
            let now = whisper::now();
            let t = Instant::now();
            match whisper::fetch(p, now - 86_400 + 60, None, now) {
                Ok(_) => {
                    let t_wsp = t.elapsed().as_secs_f64() * 1e6;
                    wsp.push(t_wsp);
                    read.push(t_cq + t_wsp);
                }
                Err(e) => {
                    wsp_errors += 1;
                    first_error.get_or_insert_with(|| format!("{}: {e}", p.display()));
                }
            }
        }
        if !a.pause.is_zero() {
            std::thread::sleep(a.pause);
        }
    }
    if let Some(e) = &first_error {
        eprintln!("read-latency: first error: {e}");
    }
    let seconds = started.elapsed().as_secs_f64();
    println!(
        "RESULT mode=latency label={} requests={} errors={errors} wsp_errors={wsp_errors} \
         seconds={seconds:.3} cq_points_last={last_points} {} {} {}",
        a.label,
        cq.len(),
        summary("cq", &mut cq),
        summary("wsp", &mut wsp),
        summary("read", &mut read)
    );
    Ok(())
}

fn main() -> Result<()> {
    let a = parse_args()?;
    if a.count_cached { count_cached(&a) } else { latency(&a) }
}
