//! [`StatsdServer`]: the UDP and TCP listeners around an [`Aggregator`], and the flush loop.
//!
//! UDP is read with `recvmmsg(2)`: up to [`UDP_BATCH`] datagrams per system call, each into its
//! own slot of one buffer allocated at start, and the whole batch is aggregated under one lock.
//! Nothing is allocated per packet (a new key allocates its name once). TCP connections are
//! read in chunks; the complete lines of a chunk go in as one packet, as statsd's TCP server
//! does.
//!
//! The flush takes the interval's figures out under the lock (no statistic computed there),
//! then computes and hands the points to the sink outside it, so receiving goes on meanwhile.

use std::io;
use std::net::SocketAddr;
use std::os::fd::AsRawFd;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant, SystemTime};

use carbon_proto::Point;
use tokio::io::AsyncReadExt;
use tokio::io::Interest;
use tokio::net::{TcpListener, TcpStream, UdpSocket};
use tokio::sync::Semaphore;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use super::aggregate::Aggregator;
use super::config::{Settings, StatsdConfig};
use super::error::{Error, Result};

/// Datagrams read per `recvmmsg` call.
pub const UDP_BATCH: usize = 64;

/// Room for one datagram: the largest UDP payload (65507 bytes over IPv4) fits, so nothing is
/// cut. The buffer is `UDP_BATCH` of these (4 MiB of address space); pages the kernel never
/// writes to stay unallocated, so resident memory follows the datagram sizes seen.
const UDP_SLOT_BYTES: usize = 65_536;

/// Batches read back to back before the UDP task lets other tasks run.
const UDP_BATCHES_PER_TURN: usize = 16;

/// Bytes read from a TCP connection at a time.
const TCP_READ_BYTES: usize = 64 * 1024;

/// Where the server's sockets are bound.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct StatsdAddrs {
    /// The UDP socket, if on.
    pub udp: Option<SocketAddr>,
    /// The TCP listener, if on.
    pub tcp: Option<SocketAddr>,
}

/// A statsd server: bound sockets and checked settings, ready to [`run`](Self::run).
///
/// ```no_run
/// use collect::statsd::{StatsdConfig, StatsdServer};
/// use tokio_util::sync::CancellationToken;
///
/// # async fn example() -> Result<(), collect::statsd::Error> {
/// let config = StatsdConfig {
///     udp: Some("127.0.0.1:8125".parse().unwrap()),
///     tcp: Some("127.0.0.1:8125".parse().unwrap()),
///     ..StatsdConfig::default()
/// };
/// let server = StatsdServer::bind(&config)?;
/// let shutdown = CancellationToken::new();
/// server.run(|points| println!("{} points", points.len()), shutdown).await
/// # }
/// ```
#[derive(Debug)]
pub struct StatsdServer {
    config: StatsdConfig,
    settings: Arc<Settings>,
    udp: Option<std::net::UdpSocket>,
    tcp: Option<std::net::TcpListener>,
}

impl StatsdServer {
    /// Checks the settings and binds the sockets (so a caller learns the ports, and a port in
    /// use fails here). Needs no runtime.
    ///
    /// # Errors
    ///
    /// [`Error::Config`] for a setting that cannot be used, [`Error::Bind`] for a socket.
    pub fn bind(config: &StatsdConfig) -> Result<StatsdServer> {
        let settings = Arc::new(Settings::new(config)?);
        let udp = match config.udp {
            Some(addr) => {
                let bind = |e| Error::Bind { proto: "udp", addr, source: e };
                let socket = std::net::UdpSocket::bind(addr).map_err(bind)?;
                socket.set_nonblocking(true).map_err(bind)?;
                if config.udp_receive_buffer_bytes > 0 {
                    set_receive_buffer(&socket, config.udp_receive_buffer_bytes);
                }
                Some(socket)
            }
            None => None,
        };
        let tcp = match config.tcp {
            Some(addr) => {
                let bind = |e| Error::Bind { proto: "tcp", addr, source: e };
                let listener = std::net::TcpListener::bind(addr).map_err(bind)?;
                listener.set_nonblocking(true).map_err(bind)?;
                Some(listener)
            }
            None => None,
        };
        Ok(StatsdServer { config: config.clone(), settings, udp, tcp })
    }

    /// Where the sockets are bound (useful with port 0).
    pub fn local_addrs(&self) -> StatsdAddrs {
        StatsdAddrs {
            udp: self.udp.as_ref().and_then(|s| s.local_addr().ok()),
            tcp: self.tcp.as_ref().and_then(|s| s.local_addr().ok()),
        }
    }

    /// Receives and flushes every `flushInterval` until `shutdown` is cancelled; then stops
    /// receiving, lets the open connections hand in what they read, flushes a last time and
    /// returns. `sink` gets each flush's points (it may block: it runs on the flush task).
    ///
    /// # Errors
    ///
    /// [`Error::Bind`] if a socket cannot join the runtime (no tokio reactor).
    pub async fn run(
        self,
        mut sink: impl FnMut(Vec<Point>) + Send + 'static,
        shutdown: CancellationToken,
    ) -> Result<()> {
        let started = SystemTime::now();
        let state = Arc::new(Mutex::new(Aggregator::with_settings(
            Arc::clone(&self.settings),
            &self.config,
            started,
        )));
        let tracker = TaskTracker::new();
        if let Some(socket) = self.udp {
            let addr = socket.local_addr().map_err(|e| bind_error("udp", &self.config, e))?;
            let socket = UdpSocket::from_std(socket).map_err(|e| Error::Bind {
                proto: "udp",
                addr,
                source: e,
            })?;
            tracker.spawn(serve_udp(socket, Arc::clone(&state), shutdown.clone()));
        }
        if let Some(listener) = self.tcp {
            let addr = listener.local_addr().map_err(|e| bind_error("tcp", &self.config, e))?;
            let listener = TcpListener::from_std(listener).map_err(|e| Error::Bind {
                proto: "tcp",
                addr,
                source: e,
            })?;
            let limits = TcpLimits {
                max_line: self.config.max_line_bytes.max(1),
                idle: (self.config.idle_timeout_secs > 0)
                    .then(|| Duration::from_secs(self.config.idle_timeout_secs)),
            };
            let permits = Arc::new(Semaphore::new(self.config.max_connections.max(1)));
            tracker.spawn(accept_tcp(
                listener,
                Arc::clone(&state),
                permits,
                limits,
                tracker.clone(),
                shutdown.clone(),
            ));
        }
        tracker.close();

        let period = self.settings.flush_interval;
        let mut ticks = tokio::time::interval_at(tokio::time::Instant::now() + period, period);
        ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                _ = ticks.tick() => flush(&state, &mut sink),
                () = shutdown.cancelled() => break,
            }
        }
        tracker.wait().await;
        flush(&state, &mut sink);
        Ok(())
    }
}

fn bind_error(proto: &'static str, config: &StatsdConfig, source: io::Error) -> Error {
    let addr = if proto == "udp" { config.udp } else { config.tcp };
    Error::Bind { proto, addr: addr.unwrap_or_else(|| SocketAddr::from(([0, 0, 0, 0], 0))), source }
}

fn lock(state: &Mutex<Aggregator>) -> MutexGuard<'_, Aggregator> {
    // A panic while holding the lock cannot leave the maps unusable: keep going.
    state.lock().unwrap_or_else(|e| e.into_inner())
}

/// One flush: figures out under the lock, points computed and handed over outside it.
fn flush(state: &Mutex<Aggregator>, sink: &mut impl FnMut(Vec<Point>)) {
    let interval = lock(state).take(SystemTime::now());
    let dropped = interval.dropped;
    if dropped.keys > 0 {
        tracing::warn!(
            dropped_keys = dropped.keys,
            example = interval.dropped_example.as_deref().unwrap_or(""),
            "statsd: the key limit (max_keys) was reached; values for new keys were dropped"
        );
    }
    if dropped.set_members > 0 {
        tracing::warn!(
            dropped_members = dropped.set_members,
            "statsd: sets reached max_set_members; new members were dropped"
        );
    }
    let (points, bytes) = interval.into_points();
    let started = Instant::now();
    sink(points);
    let took = started.elapsed();
    lock(state).flushed(took, bytes, SystemTime::now());
}

/// Asks for a larger receive buffer, so bursts wait in the kernel rather than being dropped
/// while a batch is aggregated. Failure only costs the default size.
fn set_receive_buffer(socket: &std::net::UdpSocket, bytes: usize) {
    let size = libc::c_int::try_from(bytes).unwrap_or(libc::c_int::MAX);
    // SAFETY: setsockopt reads `size_of::<c_int>()` bytes from a live c_int on the stack, on a
    // descriptor this socket owns.
    let rc = unsafe {
        libc::setsockopt(
            socket.as_raw_fd(),
            libc::SOL_SOCKET,
            libc::SO_RCVBUF,
            (&size as *const libc::c_int).cast(),
            std::mem::size_of::<libc::c_int>() as libc::socklen_t,
        )
    };
    if rc != 0 {
        tracing::debug!(error = %io::Error::last_os_error(), "statsd: SO_RCVBUF not set");
    }
}

/// Reads datagrams in batches until shutdown.
async fn serve_udp(socket: UdpSocket, state: Arc<Mutex<Aggregator>>, shutdown: CancellationToken) {
    let mut buf = vec![0u8; UDP_BATCH * UDP_SLOT_BYTES];
    let mut lens = [0usize; UDP_BATCH];
    loop {
        tokio::select! {
            r = socket.readable() => if let Err(e) = r {
                tracing::warn!(error = %e, "statsd: udp socket failed");
                return;
            },
            () = shutdown.cancelled() => {
                // What already arrived is taken before the last flush (bounded: a sender
                // that keeps going cannot hold the shutdown up).
                drain_udp(&socket, &state, &mut buf, &mut lens, UDP_DRAIN_BATCHES, true);
                return;
            }
        }
        if drain_udp(&socket, &state, &mut buf, &mut lens, UDP_BATCHES_PER_TURN, false) {
            tokio::task::yield_now().await;
        }
    }
}

/// Batches read at most at shutdown.
const UDP_DRAIN_BATCHES: usize = 1024;

/// Reads and aggregates up to `batches` batches without waiting; whether the socket may have
/// more (the last read was not cut short by an empty queue). `last` reads the socket even if
/// the runtime has not seen it become readable yet (at shutdown, when nothing waits after).
fn drain_udp(
    socket: &UdpSocket,
    state: &Mutex<Aggregator>,
    buf: &mut [u8],
    lens: &mut [usize; UDP_BATCH],
    batches: usize,
    last: bool,
) -> bool {
    for _ in 0..batches {
        let fd = socket.as_raw_fd();
        let got = if last {
            recv_batch(fd, buf, lens)
        } else {
            socket.try_io(Interest::READABLE, || recv_batch(fd, buf, lens))
        };
        let n = match got {
            Ok(n) => n,
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => return false,
            Err(e) => {
                // ICMP errors and the like: nothing to do but read on.
                tracing::debug!(error = %e, "statsd: udp receive failed");
                return false;
            }
        };
        let mut aggregator = lock(state);
        for (slot, &len) in buf.chunks(UDP_SLOT_BYTES).zip(lens.iter()).take(n) {
            aggregator.ingest(slot.get(..len).unwrap_or_default());
        }
    }
    true
}

/// One `recvmmsg` call without waiting: how many datagrams arrived, their lengths in `lens`.
fn recv_batch(fd: i32, buf: &mut [u8], lens: &mut [usize; UDP_BATCH]) -> io::Result<usize> {
    // SAFETY: iovec is a plain C struct for which all zero bytes are a valid value (a null
    // pointer and a zero length).
    let mut iovecs: [libc::iovec; UDP_BATCH] = unsafe { std::mem::zeroed() };
    // SAFETY: mmsghdr is a plain C struct for which all zero bytes are a valid value (null
    // pointers, zero lengths and flags).
    let mut headers: [libc::mmsghdr; UDP_BATCH] = unsafe { std::mem::zeroed() };
    let slots = buf.chunks_mut(UDP_SLOT_BYTES);
    let mut count = 0;
    for ((slot, iov), header) in slots.zip(iovecs.iter_mut()).zip(headers.iter_mut()) {
        iov.iov_base = slot.as_mut_ptr().cast();
        iov.iov_len = slot.len();
        header.msg_hdr.msg_iov = iov;
        header.msg_hdr.msg_iovlen = 1;
        count += 1;
    }
    let count = libc::c_uint::try_from(count).unwrap_or(0);
    // SAFETY: every header points at one iovec, each describing a distinct, live slot of
    // `buf` that is exclusively borrowed for this call; the kernel writes at most iov_len
    // bytes into each and fills msg_len. No address or control buffer is asked for.
    let n = unsafe {
        libc::recvmmsg(fd, headers.as_mut_ptr(), count, libc::MSG_DONTWAIT, std::ptr::null_mut())
    };
    if n < 0 {
        return Err(io::Error::last_os_error());
    }
    let n = usize::try_from(n).unwrap_or(0).min(UDP_BATCH);
    for (len, header) in lens.iter_mut().zip(&headers).take(n) {
        *len = (header.msg_len as usize).min(UDP_SLOT_BYTES);
    }
    Ok(n)
}

#[derive(Clone, Copy, Debug)]
struct TcpLimits {
    max_line: usize,
    idle: Option<Duration>,
}

/// Accepts connections while permits last, until shutdown; a failed accept is retried with
/// backoff (a full file table should not end the listener).
async fn accept_tcp(
    listener: TcpListener,
    state: Arc<Mutex<Aggregator>>,
    permits: Arc<Semaphore>,
    limits: TcpLimits,
    tracker: TaskTracker,
    shutdown: CancellationToken,
) {
    let mut backoff = Duration::from_millis(10);
    loop {
        let permit = tokio::select! {
            p = Arc::clone(&permits).acquire_owned() => match p {
                Ok(p) => p,
                Err(_) => return,
            },
            () = shutdown.cancelled() => return,
        };
        let accepted = tokio::select! {
            a = listener.accept() => a,
            () = shutdown.cancelled() => return,
        };
        match accepted {
            Ok((stream, peer)) => {
                backoff = Duration::from_millis(10);
                let (state, shutdown) = (Arc::clone(&state), shutdown.clone());
                tracker.spawn(async move {
                    let _permit = permit;
                    match serve_tcp(stream, &state, limits, &shutdown).await {
                        Ok(()) => tracing::debug!(%peer, "statsd: connection closed"),
                        Err(e) => tracing::debug!(%peer, error = %e, "statsd: connection lost"),
                    }
                });
            }
            Err(e) => {
                tracing::warn!(error = %e, "statsd: accept failed; retrying in {backoff:?}");
                tokio::select! {
                    () = tokio::time::sleep(backoff) => {}
                    () = shutdown.cancelled() => return,
                }
                backoff = (backoff * 2).min(Duration::from_secs(1));
            }
        }
    }
}

/// Reads newline-terminated lines; each read's complete lines go in as one packet. A line
/// longer than the limit is dropped (counted as a bad line) up to its newline. At the end
/// of the stream, or at shutdown, a last unterminated line is taken too.
async fn serve_tcp(
    mut stream: TcpStream,
    state: &Mutex<Aggregator>,
    limits: TcpLimits,
    shutdown: &CancellationToken,
) -> io::Result<()> {
    let mut buf: Vec<u8> = Vec::with_capacity(TCP_READ_BYTES);
    let mut chunk = vec![0u8; TCP_READ_BYTES];
    // Whether the bytes being read belong to an over-long line being skipped.
    let mut skipping = false;
    loop {
        let read = async {
            match limits.idle {
                Some(t) => tokio::time::timeout(t, stream.read(&mut chunk))
                    .await
                    .unwrap_or_else(|_| Err(io::Error::new(io::ErrorKind::TimedOut, "idle"))),
                None => stream.read(&mut chunk).await,
            }
        };
        let n = tokio::select! {
            r = read => r?,
            () = shutdown.cancelled() => 0,
        };
        if n == 0 {
            if !buf.is_empty() && !skipping {
                lock(state).ingest(&buf);
            }
            return Ok(());
        }
        let mut data = chunk.get(..n).unwrap_or_default();
        if skipping {
            match memchr::memchr(b'\n', data) {
                Some(end) => {
                    skipping = false;
                    data = data.get(end + 1..).unwrap_or_default();
                }
                None => continue,
            }
        }
        buf.extend_from_slice(data);
        if let Some(last) = memchr::memrchr(b'\n', &buf) {
            lock(state).ingest(buf.get(..=last).unwrap_or_default());
            buf.drain(..=last);
        }
        if buf.len() > limits.max_line {
            lock(state).ingest_oversized();
            tracing::debug!(bytes = buf.len(), "statsd: tcp line over max_line_bytes dropped");
            buf.clear();
            skipping = true;
        }
    }
}
