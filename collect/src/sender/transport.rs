//! How a batch reaches a destination: TCP (plaintext or pickle), UDP, stdout, an archive file.
//!
//! A [`Transport`] makes [`Connection`]s; a connection writes batches until one fails, then
//! the worker drops it and asks for a new one after a backoff.

use std::io::{self, Read, Write};
use std::net::{SocketAddr, TcpStream, ToSocketAddrs, UdpSocket};
use std::path::PathBuf;
use std::time::{Duration, SystemTime};

use carbon_proto::Point;
use carbon_proto::pickle::{MAX_FRAME_BYTES, Number, encode_datapoints_into, framed};
use carbon_proto::plaintext::encode_line_exact;
use socket2::{Domain, Socket, TcpKeepalive, Type};

use super::archive::ArchiveWriter;
use super::config::{DestinationConfig, DestinationKind, Protocol};

/// Largest UDP datagram we build: fits an Ethernet MTU of 1500 after the IP and UDP headers
/// (statsd's and Diamond's choice), so datagrams are never fragmented.
pub const MAX_DATAGRAM_BYTES: usize = 1432;

/// Points per pickle frame before the size check (carbon refuses frames over 1 MiB).
const PICKLE_POINTS_PER_FRAME: usize = 2000;

/// TCP keepalive: first probe after a minute idle, then every 10 s, dead after 5 probes.
const KEEPALIVE_IDLE: Duration = Duration::from_secs(60);
const KEEPALIVE_INTERVAL: Duration = Duration::from_secs(10);
const KEEPALIVE_PROBES: u32 = 5;

/// A failed write.
#[derive(Debug)]
pub(crate) struct WriteFailure {
    /// What went wrong.
    pub(crate) error: io::Error,
    /// Points of the batch known not to be sent (fire-and-forget transports count them as
    /// dropped; reliable ones resend the whole batch).
    pub(crate) unsent: usize,
}

/// An open way to a destination.
pub(crate) trait Connection: Send {
    /// Writes a batch within `timeout`.
    fn write_batch(&mut self, points: &[Point], timeout: Duration) -> Result<(), WriteFailure>;
}

/// How to reach a destination.
#[derive(Clone, Debug)]
pub(crate) enum Transport {
    /// TCP with the plaintext or pickle protocol.
    Tcp { address: String, pickle: bool },
    /// Plaintext over UDP.
    Udp { address: String },
    /// Standard output.
    Stdout,
    /// An archive file.
    Archive { path: PathBuf, rotate_days: u32 },
}

impl Transport {
    pub(crate) fn from_config(c: &DestinationConfig) -> Transport {
        match (c.kind, c.protocol) {
            (DestinationKind::Archive, _) => Transport::Archive {
                path: c.path.clone().unwrap_or_default(),
                rotate_days: c.rotate_days,
            },
            (DestinationKind::Stdout, _) => Transport::Stdout,
            (_, Protocol::Udp) => Transport::Udp { address: c.resolved_address() },
            (_, Protocol::Pickle) => Transport::Tcp { address: c.resolved_address(), pickle: true },
            (_, _) => Transport::Tcp { address: c.resolved_address(), pickle: false },
        }
    }

    /// Whether a failed write is dropped rather than retried (UDP: the network gives no
    /// delivery report, so a retry could not know what to resend).
    pub(crate) fn fire_and_forget(&self) -> bool {
        matches!(self, Transport::Udp { .. })
    }

    /// Opens a connection.
    pub(crate) fn connect(&self, timeout: Duration) -> io::Result<Box<dyn Connection>> {
        match self {
            Transport::Tcp { address, pickle } => {
                let stream = connect_tcp(address, timeout)?;
                Ok(Box::new(TcpConnection { stream, pickle: *pickle, buf: Vec::new() }))
            }
            Transport::Udp { address } => {
                let addr = resolve(address)?.into_iter().next().ok_or_else(no_address)?;
                let local: SocketAddr = if addr.is_ipv4() {
                    (std::net::Ipv4Addr::UNSPECIFIED, 0).into()
                } else {
                    (std::net::Ipv6Addr::UNSPECIFIED, 0).into()
                };
                let socket = UdpSocket::bind(local)?;
                socket.connect(addr)?;
                Ok(Box::new(UdpConnection { socket, datagram: Vec::new(), line: Vec::new() }))
            }
            Transport::Stdout => Ok(Box::new(StdoutConnection { buf: Vec::new() })),
            Transport::Archive { path, rotate_days } => {
                let writer = ArchiveWriter::open(path, *rotate_days, SystemTime::now())?;
                Ok(Box::new(ArchiveConnection(writer)))
            }
        }
    }
}

fn no_address() -> io::Error {
    io::Error::new(io::ErrorKind::NotFound, "the address resolves to nothing")
}

fn resolve(address: &str) -> io::Result<Vec<SocketAddr>> {
    Ok(address.to_socket_addrs()?.collect())
}

/// Connects to the first address that answers, with keepalive on.
fn connect_tcp(address: &str, timeout: Duration) -> io::Result<TcpStream> {
    let mut last = None;
    for addr in resolve(address)? {
        let attempt = (|| {
            let socket = Socket::new(Domain::for_address(addr), Type::STREAM, None)?;
            let keepalive = TcpKeepalive::new().with_time(KEEPALIVE_IDLE);
            #[cfg(any(target_os = "linux", target_os = "android", target_os = "macos"))]
            let keepalive =
                keepalive.with_interval(KEEPALIVE_INTERVAL).with_retries(KEEPALIVE_PROBES);
            socket.set_tcp_keepalive(&keepalive)?;
            socket.connect_timeout(&addr.into(), timeout)?;
            Ok::<TcpStream, io::Error>(socket.into())
        })();
        match attempt {
            Ok(stream) => return Ok(stream),
            Err(e) => last = Some(e),
        }
    }
    Err(last.unwrap_or_else(no_address))
}

/// Appends `name value timestamp\n` per point: the shortest exact value, the timestamp as
/// whole seconds (truncated), as Diamond sends them.
pub(crate) fn encode_plaintext(out: &mut Vec<u8>, points: &[Point]) {
    for p in points {
        encode_line_exact(out, p.name.as_str(), p.datapoint.value, timestamp_secs(p));
    }
}

fn timestamp_secs(p: &Point) -> i64 {
    // Saturating: absurd timestamps are refused by carbon anyway.
    p.datapoint.timestamp.trunc() as i64
}

/// Appends pickle frames of `points`, none over carbon's 1 MiB limit. Whole-second
/// timestamps go as ints (as Diamond's pickle handler sends them), others as floats.
pub(crate) fn encode_pickle(out: &mut Vec<u8>, points: &[Point]) {
    let mut rest = points;
    while !rest.is_empty() {
        let mut n = rest.len().min(PICKLE_POINTS_PER_FRAME);
        loop {
            let start = out.len();
            let chunk = rest.get(..n).unwrap_or_default();
            let ok = framed(out, |o| encode_datapoints_into(o, chunk.iter().map(pickle_item)));
            if ok.is_ok() && (out.len() - start <= MAX_FRAME_BYTES || n == 1) {
                break;
            }
            out.truncate(start);
            if n == 1 {
                break;
            }
            n /= 2;
        }
        rest = rest.get(n..).unwrap_or_default();
    }
}

fn pickle_item(p: &Point) -> (&str, Number, Number) {
    let ts = p.datapoint.timestamp;
    let ts = if ts.fract() == 0.0 && ts.abs() < 9.0e15 {
        Number::Int(ts as i64)
    } else {
        Number::Float(ts)
    };
    (p.name.as_str(), ts, Number::Float(p.datapoint.value))
}

/// A carbon TCP connection.
struct TcpConnection {
    stream: TcpStream,
    pickle: bool,
    buf: Vec<u8>,
}

impl TcpConnection {
    /// Whether carbon has closed its end. Carbon never sends anything, so a readable
    /// socket means end of stream (or an error). Checked before every write: a write into
    /// a half-closed connection succeeds locally and its points would be lost, so this
    /// catches a restarted carbon before the batch is handed to the kernel.
    fn peer_closed(&mut self) -> bool {
        if self.stream.set_nonblocking(true).is_err() {
            return true;
        }
        let mut scratch = [0u8; 512];
        let mut closed = false;
        // Bounded: discard at most a few reads of unexpected data.
        for _ in 0..4 {
            match self.stream.read(&mut scratch) {
                Ok(0) => {
                    closed = true;
                    break;
                }
                Ok(_) => {}
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(_) => {
                    closed = true;
                    break;
                }
            }
        }
        closed || self.stream.set_nonblocking(false).is_err()
    }
}

impl Connection for TcpConnection {
    fn write_batch(&mut self, points: &[Point], timeout: Duration) -> Result<(), WriteFailure> {
        let fail = |error| WriteFailure { error, unsent: points.len() };
        if self.peer_closed() {
            let e = io::Error::new(io::ErrorKind::ConnectionReset, "carbon closed the connection");
            return Err(fail(e));
        }
        self.buf.clear();
        if self.pickle {
            encode_pickle(&mut self.buf, points);
        } else {
            encode_plaintext(&mut self.buf, points);
        }
        let timeout = timeout.max(Duration::from_millis(1));
        self.stream.set_write_timeout(Some(timeout)).map_err(fail)?;
        self.stream.write_all(&self.buf).map_err(fail)
    }
}

/// Plaintext over UDP.
struct UdpConnection {
    socket: UdpSocket,
    datagram: Vec<u8>,
    line: Vec<u8>,
}

impl Connection for UdpConnection {
    fn write_batch(&mut self, points: &[Point], _timeout: Duration) -> Result<(), WriteFailure> {
        let mut first_error = None;
        let mut unsent = 0;
        let mut in_datagram = 0;
        self.datagram.clear();
        for p in points {
            self.line.clear();
            encode_plaintext(&mut self.line, std::slice::from_ref(p));
            if !self.datagram.is_empty()
                && self.datagram.len() + self.line.len() > MAX_DATAGRAM_BYTES
            {
                if let Err(e) = self.socket.send(&self.datagram) {
                    unsent += in_datagram;
                    first_error.get_or_insert(e);
                }
                self.datagram.clear();
                in_datagram = 0;
            }
            // A line longer than a datagram goes alone (the IP layer fragments it).
            self.datagram.extend_from_slice(&self.line);
            in_datagram += 1;
        }
        if !self.datagram.is_empty()
            && let Err(e) = self.socket.send(&self.datagram)
        {
            unsent += in_datagram;
            first_error.get_or_insert(e);
        }
        match first_error {
            None => Ok(()),
            Some(error) => Err(WriteFailure { error, unsent }),
        }
    }
}

/// Standard output (`--dry-run`).
struct StdoutConnection {
    buf: Vec<u8>,
}

impl Connection for StdoutConnection {
    fn write_batch(&mut self, points: &[Point], _timeout: Duration) -> Result<(), WriteFailure> {
        self.buf.clear();
        encode_plaintext(&mut self.buf, points);
        let mut out = io::stdout().lock();
        out.write_all(&self.buf)
            .and_then(|()| out.flush())
            .map_err(|error| WriteFailure { error, unsent: points.len() })
    }
}

/// The archive file.
struct ArchiveConnection(ArchiveWriter);

impl Connection for ArchiveConnection {
    fn write_batch(&mut self, points: &[Point], _timeout: Duration) -> Result<(), WriteFailure> {
        self.0
            .write_points(points, SystemTime::now())
            .map_err(|error| WriteFailure { error, unsent: points.len() })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use carbon_proto::MetricName;
    use carbon_proto::pickle::{FRAME_HEADER_BYTES, Unpickler};

    fn points(n: usize, name_len: usize) -> Vec<Point> {
        (0..n)
            .map(|i| {
                let name = format!("{}.{i}", "x".repeat(name_len));
                Point::new(
                    MetricName::new(&name).unwrap(),
                    1_700_000_000.0 + i as f64,
                    i as f64 / 3.0,
                )
            })
            .collect()
    }

    #[test]
    fn pickle_frames_stay_under_carbons_limit() {
        let pts = points(3000, 1000);
        let mut out = Vec::new();
        encode_pickle(&mut out, &pts);
        let mut rest = &out[..];
        let mut decoded = Vec::new();
        while !rest.is_empty() {
            let len = u32::from_be_bytes(rest[..4].try_into().unwrap()) as usize;
            assert!(len <= MAX_FRAME_BYTES);
            let payload = &rest[FRAME_HEADER_BYTES..FRAME_HEADER_BYTES + len];
            decoded.extend(Unpickler::new().decode_datapoints(payload).unwrap().points);
            rest = &rest[FRAME_HEADER_BYTES + len..];
        }
        assert_eq!(decoded, pts);
    }

    #[test]
    fn plaintext_values_are_exact() {
        let mut out = Vec::new();
        let p = Point::new(MetricName::new("a").unwrap(), 1_700_000_000.9, 0.1 + 0.2);
        encode_plaintext(&mut out, &[p]);
        assert_eq!(out, b"a 0.30000000000000004 1700000000\n");
    }
}
