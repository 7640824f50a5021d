//! Load for the statsd server (`side-by-side/statsd.sh`): a receiver and a UDP blaster.
//!
//! ```text
//! statsd-load serve --addr 127.0.0.1:0 --ready-file F [--flush-ms 1000]
//!     runs collect's StatsdServer on one thread (a current-thread runtime) until SIGTERM or
//!     SIGINT, then prints `RESULT packets=.. metrics=.. bad=.. user_ms=.. sys_ms=..`
//!     (packets and metrics from statsd's own counters over every flush, CPU from getrusage).
//! statsd-load blast --addr A [--packets N] [--lines L] [--keys K] [--max-seconds S]
//!     sends N datagrams (default 5,000,000) of L lines over K keys with sendmmsg, 64 per
//!     call, from a pool of 8,192 prebuilt packets; stops after S seconds at most (default
//!     60); prints `RESULT sent=.. seconds=.. pps=..`.
//! ```

use std::net::{SocketAddr, UdpSocket};
use std::os::fd::AsRawFd;
use std::time::{Duration, Instant};

use collect::statsd::{StatsdConfig, StatsdServer};
use tokio_util::sync::CancellationToken;

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let flag = |name: &str| {
        args.iter().position(|a| a == name).and_then(|i| args.get(i + 1)).map(String::as_str)
    };
    let number = |name: &str, default: u64| {
        flag(name).map_or(default, |v| v.parse().unwrap_or_else(|_| die(&format!("{name} {v}"))))
    };
    let addr: SocketAddr = flag("--addr")
        .unwrap_or("127.0.0.1:0")
        .parse()
        .unwrap_or_else(|_| die("--addr is not an address"));
    if !addr.ip().is_loopback() {
        die("loopback addresses only");
    }
    match args.first().map(String::as_str) {
        Some("serve") => serve(addr, flag("--ready-file"), number("--flush-ms", 1000)),
        Some("blast") => blast(
            addr,
            number("--packets", 5_000_000),
            number("--lines", 1) as usize,
            number("--keys", 1000),
            Duration::from_secs(number("--max-seconds", 60)),
        ),
        _ => die("usage: statsd-load serve|blast --addr ADDR ..."),
    }
}

fn die(message: &str) -> ! {
    eprintln!("statsd-load: {message}");
    std::process::exit(2);
}

fn serve(addr: SocketAddr, ready: Option<&str>, flush_ms: u64) {
    let config = StatsdConfig {
        udp: Some(addr),
        tcp: None,
        flush_interval_ms: flush_ms,
        ..StatsdConfig::default()
    };
    let server = StatsdServer::bind(&config).unwrap_or_else(|e| die(&e.to_string()));
    let bound = server.local_addrs().udp.unwrap_or_else(|| die("no udp socket"));
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap_or_else(|e| die(&e.to_string()));
    let totals = std::sync::Arc::new(std::sync::Mutex::new([0.0f64; 3]));
    let sink_totals = std::sync::Arc::clone(&totals);
    let sink = move |points: Vec<carbon_proto::Point>| {
        let mut t = sink_totals.lock().unwrap_or_else(|e| e.into_inner());
        for p in points {
            let slot = match p.name.as_str() {
                "stats_counts.statsd.packets_received" => 0,
                "stats_counts.statsd.metrics_received" => 1,
                "stats_counts.statsd.bad_lines_seen" => 2,
                _ => continue,
            };
            t[slot] += p.datapoint.value;
        }
    };
    runtime.block_on(async move {
        let shutdown = CancellationToken::new();
        let task = tokio::spawn(server.run(sink, shutdown.clone()));
        if let Some(path) = ready {
            let tmp = format!("{path}.tmp");
            std::fs::write(&tmp, format!("{bound}\n")).unwrap_or_else(|e| die(&e.to_string()));
            std::fs::rename(&tmp, path).unwrap_or_else(|e| die(&e.to_string()));
        }
        use tokio::signal::unix::{SignalKind, signal};
        let mut term = signal(SignalKind::terminate()).unwrap_or_else(|e| die(&e.to_string()));
        let mut int = signal(SignalKind::interrupt()).unwrap_or_else(|e| die(&e.to_string()));
        tokio::select! {
            _ = term.recv() => {}
            _ = int.recv() => {}
        }
        shutdown.cancel();
        let _ = task.await;
    });
    let [packets, metrics, bad] = *totals.lock().unwrap_or_else(|e| e.into_inner());
    let (user_ms, sys_ms) = cpu_ms();
    println!(
        "RESULT packets={packets} metrics={metrics} bad={bad} user_ms={user_ms} sys_ms={sys_ms}"
    );
}

/// This process's user and system CPU time, in milliseconds.
fn cpu_ms() -> (u64, u64) {
    // SAFETY: getrusage fills the zeroed struct we own; all-zero bytes are a valid rusage.
    let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
    // SAFETY: a valid pointer to that struct, for this process.
    unsafe { libc::getrusage(libc::RUSAGE_SELF, &mut usage) };
    let ms = |t: libc::timeval| t.tv_sec as u64 * 1000 + t.tv_usec as u64 / 1000;
    (ms(usage.ru_utime), ms(usage.ru_stime))
}

/// Datagrams per sendmmsg call.
const SEND_BATCH: usize = 64;

fn blast(to: SocketAddr, total: u64, lines: usize, keys: u64, limit: Duration) {
    let pool = benches::statsd_packets::packets(8192, lines, keys);
    let socket = UdpSocket::bind("127.0.0.1:0").unwrap_or_else(|e| die(&e.to_string()));
    socket.connect(to).unwrap_or_else(|e| die(&e.to_string()));
    let fd = socket.as_raw_fd();
    let started = Instant::now();
    let mut sent = 0u64;
    let mut next = 0usize;
    // Bounded in count and in time.
    while sent < total && started.elapsed() < limit {
        let n = ((total - sent) as usize).min(SEND_BATCH);
        // SAFETY: iovec and mmsghdr are plain C structs; all-zero bytes are valid values.
        let mut iovecs: [libc::iovec; SEND_BATCH] = unsafe { std::mem::zeroed() };
        // SAFETY: as above.
        let mut headers: [libc::mmsghdr; SEND_BATCH] = unsafe { std::mem::zeroed() };
        for (iov, header) in iovecs.iter_mut().zip(headers.iter_mut()).take(n) {
            let packet = &pool[next % pool.len()];
            next += 1;
            iov.iov_base = packet.as_ptr() as *mut libc::c_void;
            iov.iov_len = packet.len();
            header.msg_hdr.msg_iov = iov;
            header.msg_hdr.msg_iovlen = 1;
        }
        // SAFETY: each of the first n headers points at one iovec describing a live packet of
        // the pool, which the kernel only reads; the socket is connected, so no address.
        let rc = unsafe { libc::sendmmsg(fd, headers.as_mut_ptr(), n as libc::c_uint, 0) };
        if rc < 0 {
            let e = std::io::Error::last_os_error();
            if e.raw_os_error() == Some(libc::ECONNREFUSED)
                || e.kind() == std::io::ErrorKind::WouldBlock
            {
                continue;
            }
            die(&format!("sendmmsg: {e}"));
        }
        sent += rc as u64;
    }
    let seconds = started.elapsed().as_secs_f64();
    println!("RESULT sent={sent} seconds={seconds:.3} pps={:.0}", sent as f64 / seconds);
}
