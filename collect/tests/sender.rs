//! The sender against local receivers on 127.0.0.1: outages, restarts with a spool, the
//! spool cap, damaged spools, a slow destination beside a fast one, pickle, UDP, archive.

use std::fs;
use std::io::Read;
use std::net::{SocketAddr, TcpListener, UdpSocket};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::BytesMut;
use carbon_proto::pickle::{FrameDecoder, Unpickler};
use carbon_proto::{MetricName, Point};
use collect::sender::{
    DestinationConfig, DestinationKind, DestinationStats, MAX_DATAGRAM_BYTES, Protocol, Sender,
    SenderConfig, record,
};

mod carbon;

use carbon::Carbon;

const BASE_TS: f64 = 1_700_000_000.0;

/// Point `i`: value `i`, timestamp `BASE_TS + i`.
fn point(i: usize) -> Point {
    Point::new(MetricName::new("test.sender.seq").unwrap(), BASE_TS + i as f64, i as f64)
}

fn points(range: std::ops::Range<usize>) -> Vec<Point> {
    range.map(point).collect()
}

/// Polls `cond` every 10 ms until it holds or `limit` passes; returns whether it held.
fn wait_until(limit: Duration, mut cond: impl FnMut() -> bool) -> bool {
    let end = Instant::now() + limit;
    while Instant::now() < end {
        if cond() {
            return true;
        }
        std::thread::sleep(Duration::from_millis(10));
    }
    cond()
}

/// The `i` of each line `test.sender.seq i ts`, checking the timestamp.
fn seq_of(lines: &[String]) -> Vec<usize> {
    lines
        .iter()
        .map(|l| {
            let f: Vec<&str> = l.split(' ').collect();
            assert_eq!(f.len(), 3, "{l:?}");
            assert_eq!(f[0], "test.sender.seq");
            let i = f[1].parse::<f64>().unwrap() as usize;
            assert_eq!(f[2].parse::<i64>().unwrap(), BASE_TS as i64 + i as i64);
            i
        })
        .collect()
}

/// Checks at-least-once delivery in order: keeping the first occurrence of each point
/// gives exactly `want`; every repeat is part of a retried batch, so there are at most
/// `send_errors * batch_size` of them.
fn check_in_order(got: &[usize], want: &[usize], stats: &DestinationStats, batch_size: usize) {
    let mut seen = std::collections::HashSet::new();
    let firsts: Vec<usize> = got.iter().copied().filter(|i| seen.insert(*i)).collect();
    assert_eq!(firsts.len(), want.len(), "points missing");
    assert!(firsts == want, "points out of order");
    let repeats = got.len() - firsts.len();
    assert!(
        repeats as u64 <= stats.send_errors * batch_size as u64,
        "{repeats} repeats for {} failed writes",
        stats.send_errors
    );
}

fn carbon_dest(addr: SocketAddr) -> DestinationConfig {
    DestinationConfig {
        address: addr.to_string(),
        batch_size: 50,
        batch_delay: Duration::from_millis(20),
        reconnect_min: Duration::from_millis(20),
        reconnect_max: Duration::from_millis(200),
        timeout: Duration::from_secs(5),
        ..Default::default()
    }
}

fn start(dests: Vec<DestinationConfig>) -> Sender {
    Sender::start(SenderConfig { destinations: dests }).unwrap()
}

/// An address nothing listens on (connects are refused); it can be bound again later.
fn refusing_addr() -> SocketAddr {
    TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap()
}

fn segments(dir: &Path) -> Vec<PathBuf> {
    let mut v: Vec<PathBuf> =
        fs::read_dir(dir).map(|d| d.map(|e| e.unwrap().path()).collect()).unwrap_or_default();
    v.retain(|p| p.extension().is_some_and(|e| e == "seg"));
    v.sort();
    v
}

#[test]
fn delivers_in_order_to_a_live_carbon() {
    let carbon = Carbon::start();
    let sender = start(vec![carbon_dest(carbon.addr)]);
    for chunk in (0..2000).collect::<Vec<_>>().chunks(37) {
        sender.send(chunk.iter().map(|&i| point(i)).collect());
    }
    assert!(wait_until(Duration::from_secs(20), || carbon.count() >= 2000));
    sender.shutdown(Duration::from_secs(5)).unwrap();
    let stats = &sender.stats()[0];
    assert_eq!(seq_of(&carbon.lines()), (0..2000).collect::<Vec<_>>());
    assert_eq!((stats.sent, stats.dropped, stats.queued, stats.spooled), (2000, 0, 0, 0));
    carbon.finish();
}

#[test]
fn outage_is_replayed_in_order_from_the_spool() {
    let spool = tempfile::tempdir().unwrap();
    let carbon = Carbon::start();
    let (addr, lines) = (carbon.addr, Arc::clone(&carbon.lines));
    let dest = DestinationConfig {
        spool_dir: Some(spool.path().to_path_buf()),
        queue_points: 200,
        ..carbon_dest(addr)
    };
    let sender = start(vec![dest]);
    let mut next = 0;
    let mut send_some = |n: usize| {
        for _ in 0..n / 10 {
            sender.send(points(next..next + 10));
            next += 10;
            std::thread::sleep(Duration::from_millis(1));
        }
    };
    send_some(1000);
    assert!(wait_until(Duration::from_secs(20), || carbon.count() >= 1000));

    // Carbon goes away while points keep coming.
    carbon.begin_outage();
    send_some(500);
    assert!(
        wait_until(Duration::from_secs(20), || {
            let s = &sender.stats()[0];
            !s.connected && s.spooled > 0
        }),
        "the sender should notice the outage and spool: {:?}",
        sender.stats()
    );
    carbon.finish();
    send_some(1500);
    let during = sender.stats()[0].clone();
    assert!(during.spooled > 0 && !during.connected, "{during:?}");

    // Back on the same port.
    let carbon = Carbon::start_on(addr, lines);
    send_some(1000);
    assert!(
        wait_until(Duration::from_secs(30), || carbon.count() >= 4000
            && sender.stats()[0].spooled == 0),
        "{:?}",
        sender.stats()
    );
    sender.shutdown(Duration::from_secs(5)).unwrap();
    let stats = sender.stats()[0].clone();
    eprintln!("after the outage: {stats:?}, {} lines", carbon.count());
    check_in_order(&seq_of(&carbon.lines()), &(0..4000).collect::<Vec<_>>(), &stats, 50);
    assert_eq!((stats.dropped, stats.spooled, stats.queued), (0, 0, 0), "{stats:?}");
    assert!(stats.reconnects >= 1 && stats.send_errors >= 1, "{stats:?}");
    assert!(segments(&spool.path().join(&stats.name)).is_empty());
    carbon.finish();
}

#[test]
fn a_spool_left_by_a_previous_run_is_replayed_first() {
    let spool = tempfile::tempdir().unwrap();
    let addr = refusing_addr();
    let dest =
        DestinationConfig { spool_dir: Some(spool.path().to_path_buf()), ..carbon_dest(addr) };

    let first = start(vec![dest.clone()]);
    first.send(points(0..700));
    first.shutdown(Duration::from_millis(300)).unwrap();
    let stats = first.stats()[0].clone();
    assert_eq!((stats.spooled, stats.sent, stats.dropped), (700, 0, 0), "{stats:?}");
    drop(first);
    assert!(!segments(&spool.path().join(&stats.name)).is_empty());

    let carbon = Carbon::start_on(addr, Arc::default());
    let second = start(vec![dest]);
    second.send(points(700..800));
    assert!(wait_until(Duration::from_secs(20), || carbon.count() >= 800));
    second.shutdown(Duration::from_secs(5)).unwrap();
    let stats = second.stats()[0].clone();
    check_in_order(&seq_of(&carbon.lines()), &(0..800).collect::<Vec<_>>(), &stats, 50);
    assert_eq!(stats.spooled, 0);
    carbon.finish();
}

#[test]
fn a_full_spool_drops_its_oldest_points_and_counts_them() {
    let spool = tempfile::tempdir().unwrap();
    let addr = refusing_addr();
    let dest = DestinationConfig {
        spool_dir: Some(spool.path().to_path_buf()),
        spool_max_bytes: 16 * 1024,
        queue_points: 50,
        batch_size: 20,
        ..carbon_dest(addr)
    };
    let first = start(vec![dest.clone()]);
    for i in (0..5000).step_by(50) {
        first.send(points(i..i + 50));
    }
    first.shutdown(Duration::from_millis(200)).unwrap();
    let stats = first.stats()[0].clone();
    assert!(stats.dropped > 0, "{stats:?}");
    assert_eq!(stats.spooled + stats.dropped, 5000, "{stats:?}");
    let on_disk: u64 = segments(&spool.path().join(&stats.name))
        .iter()
        .map(|p| fs::metadata(p).unwrap().len())
        .sum();
    assert!(on_disk <= 16 * 1024, "{on_disk} bytes spooled");
    drop(first);

    // What survives is the newest points, without a gap, replayed in order.
    let carbon = Carbon::start_on(addr, Arc::default());
    let second = start(vec![dest]);
    let kept = stats.spooled as usize;
    assert!(wait_until(Duration::from_secs(20), || carbon.count() >= kept));
    second.shutdown(Duration::from_secs(5)).unwrap();
    let want: Vec<usize> = (5000 - kept..5000).collect();
    check_in_order(&seq_of(&carbon.lines()), &want, &second.stats()[0], 20);
    carbon.finish();
}

#[test]
fn damaged_spool_segments_keep_their_good_records() {
    let spool = tempfile::tempdir().unwrap();
    let addr = refusing_addr();
    let dest = DestinationConfig {
        spool_dir: Some(spool.path().to_path_buf()),
        spool_max_bytes: 64 * 1024,
        batch_size: 10,
        ..carbon_dest(addr)
    };
    let first = start(vec![dest.clone()]);
    first.send(points(0..600));
    first.shutdown(Duration::from_millis(200)).unwrap();
    let dir = spool.path().join(&first.stats()[0].name);
    drop(first);
    let segs = segments(&dir);
    assert!(segs.len() >= 3, "{segs:?}");

    // A crash tore the newest segment's last record; a bad sector hit the oldest one.
    let last = segs.last().unwrap();
    let len = fs::metadata(last).unwrap().len();
    fs::OpenOptions::new().write(true).open(last).unwrap().set_len(len - 7).unwrap();
    let mut bytes = fs::read(&segs[0]).unwrap();
    let mid = bytes.len() / 2;
    bytes[mid] ^= 0x55;
    fs::write(&segs[0], &bytes).unwrap();

    // Expected: the good records of every segment, as the format's own reader sees them.
    let mut want = Vec::new();
    for s in &segs {
        let scan = record::scan_segment(fs::File::open(s).unwrap());
        for (_, pts) in scan.records {
            want.extend(pts.iter().map(|p| p.datapoint.value as usize));
        }
    }
    assert!(want.len() < 600 && want.len() > 300, "{}", want.len());

    let carbon = Carbon::start_on(addr, Arc::default());
    let second = start(vec![dest]);
    assert_eq!(second.stats()[0].spool_damaged, 2);
    assert!(wait_until(Duration::from_secs(20), || carbon.count() >= want.len()));
    second.shutdown(Duration::from_secs(5)).unwrap();
    check_in_order(&seq_of(&carbon.lines()), &want, &second.stats()[0], 10);
    assert!(segments(&dir).is_empty());
    carbon.finish();
}

#[test]
fn a_slow_destination_does_not_delay_another() {
    // A receiver that accepts and never reads, with a small receive buffer.
    let slow = socket2::Socket::new(socket2::Domain::IPV4, socket2::Type::STREAM, None).unwrap();
    slow.set_recv_buffer_size(4096).unwrap();
    slow.bind(&"127.0.0.1:0".parse::<SocketAddr>().unwrap().into()).unwrap();
    slow.listen(8).unwrap();
    let slow: TcpListener = slow.into();
    let slow_addr = slow.local_addr().unwrap();
    let held = std::thread::spawn(move || {
        let (conn, _) = slow.accept().unwrap();
        conn
    });

    let fast = Carbon::start();
    let sender = start(vec![
        DestinationConfig {
            queue_points: 2000,
            timeout: Duration::from_secs(60),
            batch_size: 500,
            ..carbon_dest(slow_addr)
        },
        DestinationConfig { queue_points: 1_000_000, batch_size: 500, ..carbon_dest(fast.addr) },
    ]);

    // Phase 1: send until the slow destination's socket buffers are full and its worker
    // is blocked in a write (points waiting, none sent for 300 ms).
    let mut next = 0;
    let mut stuck = false;
    let mut last_sent = u64::MAX;
    while !stuck && next < 3_000_000 {
        for _ in 0..20 {
            sender.send(points(next..next + 1000));
            next += 1000;
            std::thread::sleep(Duration::from_millis(1));
        }
        std::thread::sleep(Duration::from_millis(300));
        let s = sender.stats()[0].clone();
        stuck = s.queued > 0 && s.sent == last_sent;
        last_sent = s.sent;
    }
    assert!(stuck, "could not fill the slow receiver's buffers: {:?}", sender.stats());

    // Phase 2: the fast destination gets everything, including what is sent now.
    sender.send(points(next..next + 100_000));
    let total = next + 100_000;
    assert!(
        wait_until(Duration::from_secs(60), || fast.count() >= total),
        "the fast destination is stalled: {:?}",
        sender.stats()
    );
    let stats = sender.stats();
    assert_eq!(stats[1].sent, total as u64);
    assert_eq!(stats[0].sent, last_sent, "the slow one is still stuck: {:?}", stats[0]);
    assert_eq!(seq_of(&fast.lines()), (0..total).collect::<Vec<_>>());
    let _conn = held.join().unwrap();
    // The slow worker is stuck in a write: shutdown gives up on it after the deadline (it
    // exits when the write fails, once `_conn` is dropped).
    let res = sender.shutdown(Duration::from_millis(100));
    let err = res.unwrap_err().to_string();
    assert!(err.contains(&stats[0].name) && !err.contains(&stats[1].name), "{err}");
    fast.finish();
}

#[test]
fn pickle_frames_decode_back_to_the_points() {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    let n = 1234;
    let reader = std::thread::spawn(move || {
        let (mut conn, _) = listener.accept().unwrap();
        conn.set_read_timeout(Some(Duration::from_secs(20))).unwrap();
        let mut buf = BytesMut::new();
        let mut frames = FrameDecoder::new();
        let mut unpickler = Unpickler::new();
        let mut got = Vec::new();
        let mut chunk = [0u8; 65536];
        while got.len() < n {
            let k = conn.read(&mut chunk).unwrap();
            assert!(k > 0, "closed early with {} points", got.len());
            buf.extend_from_slice(&chunk[..k]);
            while let Some(payload) = frames.decode(&mut buf).unwrap() {
                let d = unpickler.decode_datapoints(&payload).unwrap();
                assert!(d.skipped.is_empty());
                got.extend(d.points);
            }
        }
        got
    });
    let sender = start(vec![DestinationConfig { protocol: Protocol::Pickle, ..carbon_dest(addr) }]);
    let mut sent: Vec<Point> = points(0..n);
    // Fractional timestamps go as floats, whole ones as ints; both decode to the same f64.
    sent[7].datapoint.timestamp += 0.25;
    sent[8].datapoint.value = 1e-300;
    sender.send(sent.clone());
    let got = reader.join().unwrap();
    assert_eq!(got, sent);
    sender.shutdown(Duration::from_secs(5)).unwrap();
    assert!(sender.stats()[0].name.starts_with("pickle-127.0.0.1_"));
}

#[test]
fn udp_packs_lines_into_small_datagrams() {
    let socket = UdpSocket::bind("127.0.0.1:0").unwrap();
    socket.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    let addr = socket.local_addr().unwrap();
    let sender = start(vec![DestinationConfig {
        protocol: Protocol::Udp,
        batch_size: 200,
        ..carbon_dest(addr)
    }]);
    let n = 600;
    sender.send(points(0..n));
    let mut lines = Vec::new();
    let mut datagrams = 0;
    let mut buf = [0u8; 65536];
    while lines.len() < n {
        let k = socket.recv(&mut buf).expect("a datagram");
        assert!(k <= MAX_DATAGRAM_BYTES, "datagram of {k} bytes");
        datagrams += 1;
        let text = std::str::from_utf8(&buf[..k]).unwrap();
        assert!(text.ends_with('\n'));
        lines.extend(text.lines().map(str::to_string));
    }
    sender.shutdown(Duration::from_secs(5)).unwrap();
    assert_eq!(seq_of(&lines), (0..n).collect::<Vec<_>>());
    assert!(datagrams < n / 10, "{datagrams} datagrams for {n} lines");
    let stats = &sender.stats()[0];
    assert_eq!((stats.sent, stats.dropped), (n as u64, 0));
}

#[test]
fn archive_gets_every_line_and_carbon_still_gets_its_own() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("logs/archive.log");
    let carbon = Carbon::start();
    let sender = start(vec![
        carbon_dest(carbon.addr),
        DestinationConfig {
            kind: DestinationKind::Archive,
            path: Some(path.clone()),
            batch_delay: Duration::from_millis(10),
            ..Default::default()
        },
    ]);
    sender.send(points(0..300));
    sender.shutdown(Duration::from_secs(5)).unwrap();
    let archived: Vec<String> =
        fs::read_to_string(&path).unwrap().lines().map(str::to_string).collect();
    assert_eq!(seq_of(&archived), (0..300).collect::<Vec<_>>());
    assert!(wait_until(Duration::from_secs(10), || carbon.count() >= 300));
    assert_eq!(seq_of(&carbon.lines()), (0..300).collect::<Vec<_>>());
    carbon.finish();
}

#[test]
fn shutdown_flushes_a_partial_batch_at_once() {
    let carbon = Carbon::start();
    let sender = start(vec![DestinationConfig {
        batch_size: 10_000,
        batch_delay: Duration::from_secs(3600),
        ..carbon_dest(carbon.addr)
    }]);
    sender.send(points(0..123));
    sender.shutdown(Duration::from_secs(5)).unwrap();
    assert!(wait_until(Duration::from_secs(10), || carbon.count() >= 123));
    assert_eq!(seq_of(&carbon.lines()), (0..123).collect::<Vec<_>>());
    // After shutdown, points are refused and counted.
    sender.send(points(0..5));
    assert_eq!(sender.stats()[0].dropped, 5);
    carbon.finish();
}

#[test]
fn without_a_spool_shutdown_while_down_counts_what_is_lost() {
    let addr = refusing_addr();
    let sender = start(vec![DestinationConfig { queue_points: 100, ..carbon_dest(addr) }]);
    sender.send(points(0..250));
    sender.shutdown(Duration::from_millis(100)).unwrap();
    let stats = &sender.stats()[0];
    assert_eq!((stats.sent, stats.dropped, stats.queued), (0, 250, 0), "{stats:?}");
    assert!(stats.send_errors >= 1);
}

#[test]
fn starts_and_stops_repeatedly_on_the_same_spool() {
    let spool = tempfile::tempdir().unwrap();
    let carbon = Carbon::start();
    let dest = DestinationConfig {
        spool_dir: Some(spool.path().to_path_buf()),
        ..carbon_dest(carbon.addr)
    };
    for round in 0..5 {
        let sender = start(vec![dest.clone()]);
        sender.send(points(round * 10..round * 10 + 10));
        sender.shutdown(Duration::from_secs(5)).unwrap();
        assert!(!sender.stats()[0].connected);
    }
    assert!(wait_until(Duration::from_secs(10), || carbon.count() >= 50));
    assert_eq!(seq_of(&carbon.lines()), (0..50).collect::<Vec<_>>());
    carbon.finish();
}

#[test]
fn bad_configurations_are_refused() {
    let err = |dests: Vec<DestinationConfig>| {
        Sender::start(SenderConfig { destinations: dests }).unwrap_err().to_string()
    };
    assert_eq!(err(vec![]), "no destination configured");
    let d = DestinationConfig::default();
    assert!(
        err(vec![d.clone(), d]).contains("two destinations are named \"carbon-127.0.0.1_2003\"")
    );
    let archive = DestinationConfig { kind: DestinationKind::Archive, ..Default::default() };
    assert!(err(vec![archive]).contains("`path`"));
}
