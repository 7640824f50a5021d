//! carbon-cache's listeners: plaintext TCP and UDP (2003), pickle (2004), cache query (7002).
//!
//! [`Listeners::bind`] opens the sockets (so a caller learns the ports, and a partial start
//! fails before anything runs); [`Listeners::serve`] runs them until the shutdown token is
//! cancelled, then stops accepting, lets every connection finish the data it already read,
//! and returns when all tasks are done.
//!
//! Every connection is bounded: lines are capped ([`Limits::max_line`]), pickle and query
//! frames too, an idle connection is closed after [`Limits::idle_timeout`], at most
//! [`Limits::max_connections`] are open (the listeners stop accepting at the limit, as carbon
//! pauses its ports). A bad line or frame costs only itself. When the sink is full, every
//! connection stops reading until it has room: the senders' TCP windows close and they wait,
//! instead of points being dropped.

mod aggregate_sink;
pub mod app;
mod cache_query;
mod http;
mod line;
mod pickle;
mod sink;
mod stats;
mod store_sink;
mod udp;

use std::io;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use tokio::net::{TcpListener, TcpStream, UdpSocket};
use tokio::sync::Semaphore;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

pub use aggregate_sink::AggregatingSink;
pub use sink::{CacheService, MemorySink, RawPoint, Sink};
pub use stats::ListenerStats;
pub use store_sink::{StatsBridge, StoreSink};

/// Where to listen; `None` disables a listener.
#[derive(Clone, Debug)]
pub struct ListenConfig {
    /// Plaintext TCP (carbon's `LINE_RECEIVER_PORT`, 2003).
    pub line: Option<SocketAddr>,
    /// Plaintext UDP (`UDP_RECEIVER_PORT`, 2003; carbon's default is off, ours on).
    pub udp: Option<SocketAddr>,
    /// Pickle TCP (`PICKLE_RECEIVER_PORT`, 2004).
    pub pickle: Option<SocketAddr>,
    /// Cache query TCP (`CACHE_QUERY_PORT`, 7002).
    pub cache_query: Option<SocketAddr>,
    /// Bounds on connections.
    pub limits: Limits,
}

/// Bounds on what one connection may cost.
#[derive(Clone, Copy, Debug)]
pub struct Limits {
    /// Open TCP connections at most, all listeners together (`MAX_RECEIVER_CONNECTIONS`).
    pub max_connections: usize,
    /// Close a connection that sends nothing for this long (`METRIC_CLIENT_IDLE_TIMEOUT`).
    pub idle_timeout: Option<Duration>,
    /// Longest plaintext line (carbon: 16384).
    pub max_line: usize,
    /// Longest pickle frame (`PICKLE_RECEIVER_MAX_LENGTH`, 1 MiB).
    pub max_pickle_frame: usize,
    /// Longest cache-query request.
    pub max_query_frame: usize,
}

impl Default for Limits {
    fn default() -> Limits {
        Limits {
            max_connections: 10_000,
            idle_timeout: Some(Duration::from_secs(120)),
            max_line: carbon_proto::plaintext::MAX_LINE_BYTES,
            max_pickle_frame: carbon_proto::pickle::MAX_FRAME_BYTES,
            max_query_frame: carbon_proto::cache_query::MAX_REQUEST_BYTES,
        }
    }
}

/// Bytes read from a socket at a time.
const READ_BYTES: usize = 64 * 1024;

/// How often a connection waiting for room in a full sink checks again.
const FULL_POLL: Duration = Duration::from_millis(5);

/// The bound sockets.
#[derive(Debug)]
pub struct Listeners {
    line: Option<TcpListener>,
    udp: Option<UdpSocket>,
    pickle: Option<TcpListener>,
    cache_query: Option<TcpListener>,
    limits: Limits,
}

/// The addresses the listeners are bound to (useful with port 0).
#[derive(Clone, Copy, Debug, Default)]
pub struct BoundAddrs {
    /// Plaintext TCP.
    pub line: Option<SocketAddr>,
    /// Plaintext UDP.
    pub udp: Option<SocketAddr>,
    /// Pickle.
    pub pickle: Option<SocketAddr>,
    /// Cache query.
    pub cache_query: Option<SocketAddr>,
}

impl Listeners {
    /// Binds every configured socket.
    ///
    /// # Errors
    ///
    /// The first bind that fails, naming the address (the others are closed again).
    pub async fn bind(config: &ListenConfig) -> io::Result<Listeners> {
        async fn tcp(addr: Option<SocketAddr>) -> io::Result<Option<TcpListener>> {
            match addr {
                Some(a) => TcpListener::bind(a)
                    .await
                    .map(Some)
                    .map_err(|e| io::Error::new(e.kind(), format!("cannot listen on {a}: {e}"))),
                None => Ok(None),
            }
        }
        let line = tcp(config.line).await?;
        let pickle = tcp(config.pickle).await?;
        let cache_query = tcp(config.cache_query).await?;
        let udp =
            match config.udp {
                Some(a) => Some(UdpSocket::bind(a).await.map_err(|e| {
                    io::Error::new(e.kind(), format!("cannot listen on udp {a}: {e}"))
                })?),
                None => None,
            };
        Ok(Listeners { line, udp, pickle, cache_query, limits: config.limits })
    }

    /// Where the sockets are bound.
    pub fn addrs(&self) -> BoundAddrs {
        BoundAddrs {
            line: self.line.as_ref().and_then(|l| l.local_addr().ok()),
            udp: self.udp.as_ref().and_then(|l| l.local_addr().ok()),
            pickle: self.pickle.as_ref().and_then(|l| l.local_addr().ok()),
            cache_query: self.cache_query.as_ref().and_then(|l| l.local_addr().ok()),
        }
    }

    /// Serves until `shutdown` is cancelled, then drains: no new connections, every open one
    /// finishes what it already read. Returns when every task has ended.
    ///
    /// # Errors
    ///
    /// None today; kept for listeners that can fail after start.
    pub async fn serve(
        self,
        sink: Arc<dyn Sink>,
        cache: Arc<dyn CacheService>,
        stats: Arc<ListenerStats>,
        shutdown: CancellationToken,
    ) -> io::Result<()> {
        let tracker = TaskTracker::new();
        let permits = Arc::new(Semaphore::new(self.limits.max_connections.max(1)));
        let limits = self.limits;
        let ctx = Ctx { sink, cache, stats, limits, shutdown: shutdown.clone() };

        if let Some(l) = self.line {
            tracker.spawn(accept_loop(
                l,
                ctx.clone(),
                Arc::clone(&permits),
                tracker.clone(),
                Protocol::Line,
            ));
        }
        if let Some(l) = self.pickle {
            tracker.spawn(accept_loop(
                l,
                ctx.clone(),
                Arc::clone(&permits),
                tracker.clone(),
                Protocol::Pickle,
            ));
        }
        if let Some(l) = self.cache_query {
            tracker.spawn(accept_loop(
                l,
                ctx.clone(),
                Arc::clone(&permits),
                tracker.clone(),
                Protocol::CacheQuery,
            ));
        }
        if let Some(s) = self.udp {
            tracker.spawn(udp::serve(s, ctx.clone()));
        }
        tracker.close();
        shutdown.cancelled().await;
        tracker.wait().await;
        Ok(())
    }
}

/// What every connection task needs.
#[derive(Clone)]
pub(crate) struct Ctx {
    pub(crate) sink: Arc<dyn Sink>,
    pub(crate) cache: Arc<dyn CacheService>,
    pub(crate) stats: Arc<ListenerStats>,
    pub(crate) limits: Limits,
    pub(crate) shutdown: CancellationToken,
}

impl Ctx {
    /// Waits while the sink is full; returns `false` if shutdown came first.
    pub(crate) async fn wait_for_room(&self) -> bool {
        if !self.sink.is_full() {
            return true;
        }
        ListenerStats::add(&self.stats.backpressure_waits, 1);
        while self.sink.is_full() {
            tokio::select! {
                () = tokio::time::sleep(FULL_POLL) => {}
                () = self.shutdown.cancelled() => return false,
            }
        }
        true
    }

    /// Hands points to the sink. The sink may block (a synchronous log commit), so this runs
    /// where blocking is allowed.
    pub(crate) fn ingest(&self, points: &[RawPoint<'_>]) {
        if points.is_empty() {
            return;
        }
        ListenerStats::add(&self.stats.points, points.len() as u64);
        tokio::task::block_in_place(|| self.sink.ingest(points));
    }
}

#[derive(Clone, Copy, Debug)]
enum Protocol {
    Line,
    Pickle,
    CacheQuery,
}

/// Accepts connections while permits last and the server runs; retries failed accepts with
/// backoff (a full file table should not end the listener).
async fn accept_loop(
    listener: TcpListener,
    ctx: Ctx,
    permits: Arc<Semaphore>,
    tracker: TaskTracker,
    protocol: Protocol,
) {
    let mut backoff = Duration::from_millis(10);
    loop {
        let permit = tokio::select! {
            p = Arc::clone(&permits).acquire_owned() => match p {
                Ok(p) => p,
                Err(_) => return,
            },
            () = ctx.shutdown.cancelled() => return,
        };
        let accepted = tokio::select! {
            a = listener.accept() => a,
            () = ctx.shutdown.cancelled() => return,
        };
        let (stream, peer) = match accepted {
            Ok(a) => {
                backoff = Duration::from_millis(10);
                a
            }
            Err(e) => {
                tracing::warn!(error = %e, "accept failed; retrying in {backoff:?}");
                tokio::select! {
                    () = tokio::time::sleep(backoff) => {}
                    () = ctx.shutdown.cancelled() => return,
                }
                backoff = (backoff * 2).min(Duration::from_secs(1));
                continue;
            }
        };
        let _ = stream.set_nodelay(true);
        let ctx = ctx.clone();
        tracker.spawn(async move {
            let _permit = permit;
            connection(stream, peer, ctx, protocol).await;
        });
    }
}

async fn connection(stream: TcpStream, peer: SocketAddr, ctx: Ctx, protocol: Protocol) {
    let _guard = stats::ConnectionGuard::new(&ctx.stats);
    tracing::debug!(%peer, ?protocol, "connection established");
    let result = match protocol {
        Protocol::Line => line::serve(stream, peer, &ctx).await,
        Protocol::Pickle => pickle::serve(stream, peer, &ctx).await,
        Protocol::CacheQuery => cache_query::serve(stream, peer, &ctx).await,
    };
    match result {
        Ok(()) => tracing::debug!(%peer, ?protocol, "connection closed"),
        Err(e) if e.kind() == io::ErrorKind::TimedOut => {
            ListenerStats::add(&ctx.stats.idle_timeouts, 1);
            tracing::debug!(%peer, ?protocol, "idle connection closed");
        }
        Err(e) => tracing::debug!(%peer, ?protocol, error = %e, "connection lost"),
    }
}

/// Reads more into `buf`, giving up after the idle timeout; `Ok(0)` at end of stream.
pub(crate) async fn read_some(
    stream: &mut TcpStream,
    buf: &mut bytes::BytesMut,
    ctx: &Ctx,
) -> io::Result<Option<usize>> {
    use bytes::BufMut;
    use tokio::io::AsyncReadExt;
    buf.reserve(READ_BYTES);
    // At most READ_BYTES a read, whatever `reserve` allocated: what one read can bring in
    // past a full sink stays bounded.
    let mut limited = buf.limit(READ_BYTES);
    let read = stream.read_buf(&mut limited);
    let read = async {
        match ctx.limits.idle_timeout {
            Some(t) => tokio::time::timeout(t, read)
                .await
                .unwrap_or_else(|_| Err(io::Error::new(io::ErrorKind::TimedOut, "idle"))),
            None => read.await,
        }
    };
    tokio::select! {
        r = read => r.map(Some),
        () = ctx.shutdown.cancelled() => Ok(None),
    }
}

/// What a bad line or frame looks like in a log line: at most 400 characters (carbon's cut).
pub(crate) fn excerpt(bytes: &[u8]) -> String {
    let text = String::from_utf8_lossy(bytes);
    match text.char_indices().nth(400) {
        Some((i, _)) => format!("{}...", &text[..i]),
        None => text.into_owned(),
    }
}
