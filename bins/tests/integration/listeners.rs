//! The server's listeners on loopback, with an in-memory sink: every protocol, bad input,
//! backpressure, and clean stops.

use std::sync::Arc;
use std::time::{Duration, Instant};

use bins::server::{
    CacheService, Limits, ListenConfig, ListenerStats, Listeners, MemorySink, Sink,
};
use carbon_proto::cache_query::{Request, Response};
use carbon_proto::pickle::{FrameDecoder, encode_datapoints, encode_frame};
use carbon_proto::{MetricName, Point};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpStream, UdpSocket};
use tokio_util::sync::CancellationToken;

fn loopback() -> Option<std::net::SocketAddr> {
    Some("127.0.0.1:0".parse().expect("addr"))
}

struct Running {
    addrs: bins::server::BoundAddrs,
    sink: Arc<MemorySink>,
    stats: Arc<ListenerStats>,
    shutdown: CancellationToken,
    task: tokio::task::JoinHandle<std::io::Result<()>>,
}

async fn start(sink: MemorySink, limits: Limits) -> Running {
    let config = ListenConfig {
        line: loopback(),
        udp: loopback(),
        pickle: loopback(),
        cache_query: loopback(),
        limits,
    };
    let listeners = Listeners::bind(&config).await.expect("bind");
    let addrs = listeners.addrs();
    let sink = Arc::new(sink);
    let stats = Arc::new(ListenerStats::default());
    let shutdown = CancellationToken::new();
    let task = tokio::spawn(listeners.serve(
        Arc::clone(&sink) as Arc<dyn Sink>,
        Arc::clone(&sink) as Arc<dyn CacheService>,
        Arc::clone(&stats),
        shutdown.clone(),
    ));
    Running { addrs, sink, stats, shutdown, task }
}

impl Running {
    async fn stop(self) -> Arc<MemorySink> {
        self.shutdown.cancel();
        tokio::time::timeout(Duration::from_secs(5), self.task)
            .await
            .expect("stops within 5 s")
            .expect("join")
            .expect("serve");
        self.sink
    }
}

/// Waits until the sink holds `n` points (or 5 s pass).
async fn wait_points(sink: &MemorySink, n: usize) -> Vec<(String, f64, f64)> {
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        let points = sink.points();
        if points.len() >= n || Instant::now() > deadline {
            return points;
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn plaintext_tcp_keeps_good_lines_around_bad_ones() {
    let r = start(MemorySink::new(), Limits::default()).await;
    let mut s = TcpStream::connect(r.addrs.line.expect("line")).await.expect("connect");
    s.write_all(b"a.b 1 1700000000\nbad line\nc..d 2 1700000000\r\n\xff\xfe 1 2\n")
        .await
        .expect("write");
    // A line split across writes, and a last line without a newline.
    s.write_all(b"e.f 3 17000").await.expect("write");
    tokio::time::sleep(Duration::from_millis(20)).await;
    s.write_all(b"00000\ng.h 4 1700000000").await.expect("write");
    drop(s);
    let points = wait_points(&r.sink, 3).await;
    let names: Vec<&str> = points.iter().map(|p| p.0.as_str()).collect();
    assert_eq!(names, ["a.b", "e.f", "g.h"]);
    assert_eq!(ListenerStats::get(&r.stats.bad_lines), 3);
    r.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn overlong_lines_cost_only_themselves() {
    let limits = Limits { max_line: 100, ..Limits::default() };
    let r = start(MemorySink::new(), limits).await;
    let mut s = TcpStream::connect(r.addrs.line.expect("line")).await.expect("connect");
    let mut data = b"before 1 1700000000\n".to_vec();
    data.extend(std::iter::repeat_n(b'x', 1_000_000));
    data.extend_from_slice(b"\nafter 2 1700000000\n");
    s.write_all(&data).await.expect("write");
    drop(s);
    let points = wait_points(&r.sink, 2).await;
    assert_eq!(points.iter().map(|p| p.0.as_str()).collect::<Vec<_>>(), ["before", "after"]);
    assert_eq!(ListenerStats::get(&r.stats.bad_lines), 1);
    r.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn udp_datagrams_with_several_lines() {
    let r = start(MemorySink::new(), Limits::default()).await;
    let s = UdpSocket::bind("127.0.0.1:0").await.expect("bind");
    s.send_to(b"u.a 1 1700000000\nu.b 2 1700000000\nbroken\n", r.addrs.udp.expect("udp"))
        .await
        .expect("send");
    s.send_to(b"u.c 3 1700000000", r.addrs.udp.expect("udp")).await.expect("send");
    let points = wait_points(&r.sink, 3).await;
    assert_eq!(points.len(), 3);
    assert_eq!(ListenerStats::get(&r.stats.bad_lines), 1);
    r.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pickle_frames_good_bad_and_oversized() {
    let limits = Limits { max_pickle_frame: 4096, ..Limits::default() };
    let r = start(MemorySink::new(), limits).await;
    let mut s = TcpStream::connect(r.addrs.pickle.expect("pickle")).await.expect("connect");
    let points: Vec<Point> = (0..10)
        .map(|i| {
            Point::new(MetricName::new(&format!("p.m{i}")).expect("name"), 1.7e9, f64::from(i))
        })
        .collect();
    let mut frame = Vec::new();
    encode_frame(&mut frame, &encode_datapoints(&points)).expect("frame");
    s.write_all(&frame).await.expect("write");
    // Garbage that is not a pickle, then an oversized frame, then a good frame again.
    let mut junk = Vec::new();
    encode_frame(&mut junk, b"not a pickle").expect("frame");
    s.write_all(&junk).await.expect("write");
    s.write_all(&(100_000u32).to_be_bytes()).await.expect("write");
    s.write_all(&vec![b'x'; 100_000]).await.expect("write");
    s.write_all(&frame).await.expect("write");
    drop(s);
    let got = wait_points(&r.sink, 20).await;
    assert_eq!(got.len(), 20);
    assert_eq!(ListenerStats::get(&r.stats.bad_frames), 2);
    r.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cache_query_answers_and_survives_garbage() {
    let r = start(MemorySink::new(), Limits::default()).await;
    r.sink.ingest(&[bins::server::RawPoint {
        name: "q.a",
        timestamp: 1_700_000_000.0,
        value: 4.5,
    }]);
    let mut s = TcpStream::connect(r.addrs.cache_query.expect("query")).await.expect("connect");
    let mut request = Vec::new();
    Request::CacheQuery { metric: "q.a".into() }.encode(&mut request);
    for payload in [b"garbage".to_vec(), request] {
        let mut frame = Vec::new();
        encode_frame(&mut frame, &payload).expect("frame");
        s.write_all(&frame).await.expect("write");
    }
    let mut frames = FrameDecoder::new();
    let mut buf = bytes::BytesMut::new();
    let mut answers = Vec::new();
    while answers.len() < 2 {
        let n = tokio::time::timeout(Duration::from_secs(5), s.read_buf(&mut buf))
            .await
            .expect("answer")
            .expect("read");
        assert!(n > 0, "connection closed");
        while let Some(payload) = frames.decode(&mut buf).expect("frame") {
            answers.push(Response::decode(&payload).expect("response"));
        }
    }
    assert!(matches!(answers[0], Response::Error { .. }), "{:?}", answers[0]);
    assert!(format!("{:?}", answers[1]).contains("4.5"), "{:?}", answers[1]);
    r.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_full_sink_stops_reading_instead_of_dropping() {
    let r = start(MemorySink::with_limit(1000), Limits::default()).await;
    let total = 20_000;
    let addr = r.addrs.line.expect("line");
    let sender = tokio::spawn(async move {
        let mut s = TcpStream::connect(addr).await.expect("connect");
        let mut data = Vec::new();
        for i in 0..total {
            data.extend_from_slice(format!("bp.m{i} {i} 1700000000\n").as_bytes());
        }
        s.write_all(&data).await.expect("write");
        s.shutdown().await.expect("shutdown");
    });
    // The sink fills up and stays near its limit while nothing drains it.
    tokio::time::sleep(Duration::from_millis(200)).await;
    let held = r.sink.points().len();
    assert!((1000..6000).contains(&held), "held {held}");
    assert!(ListenerStats::get(&r.stats.backpressure_waits) > 0);
    // Drain like a persister until everything arrived: nothing is lost.
    let mut got = Vec::new();
    let deadline = Instant::now() + Duration::from_secs(10);
    while got.len() < total && Instant::now() < deadline {
        got.extend(r.sink.drain());
        tokio::time::sleep(Duration::from_millis(2)).await;
    }
    sender.await.expect("sender");
    got.extend(r.sink.drain());
    assert_eq!(got.len(), total);
    for (i, p) in got.iter().enumerate() {
        assert_eq!(p.0, format!("bp.m{i}"), "in order, none lost");
    }
    r.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stops_cleanly_and_the_port_can_be_bound_again() {
    let mut port = None;
    for _ in 0..5 {
        let addr = port.unwrap_or_else(|| "127.0.0.1:0".parse().expect("addr"));
        let config = ListenConfig {
            line: Some(addr),
            udp: None,
            pickle: None,
            cache_query: None,
            limits: Limits::default(),
        };
        // Other tests run alongside and their client sockets take ephemeral ports too: one may
        // hold this port for a moment after we free it. A port our stopped listener kept would
        // stay taken through every retry.
        let mut tries = 0;
        let listeners = loop {
            match Listeners::bind(&config).await {
                Ok(l) => break l,
                Err(e) if tries < 20 && e.kind() == std::io::ErrorKind::AddrInUse => {
                    tries += 1;
                    tokio::time::sleep(Duration::from_millis(100)).await;
                }
                Err(e) => panic!("bind again: {e:?}"),
            }
        };
        port = listeners.addrs().line;
        let sink = Arc::new(MemorySink::new());
        let stats = Arc::new(ListenerStats::default());
        let shutdown = CancellationToken::new();
        let task = tokio::spawn(listeners.serve(
            Arc::clone(&sink) as Arc<dyn Sink>,
            Arc::clone(&sink) as Arc<dyn CacheService>,
            Arc::clone(&stats),
            shutdown.clone(),
        ));
        // A connection that stays open and idle must not keep the server from stopping.
        let idle = TcpStream::connect(port.expect("port")).await.expect("connect");
        tokio::time::sleep(Duration::from_millis(10)).await;
        shutdown.cancel();
        tokio::time::timeout(Duration::from_secs(5), task)
            .await
            .expect("stopped")
            .expect("join")
            .expect("serve");
        assert_eq!(stats.active_connections.load(std::sync::atomic::Ordering::Relaxed), 0);
        drop(idle);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hostile_bytes_never_crash_a_listener() {
    let r = start(MemorySink::new(), Limits { max_pickle_frame: 65536, ..Limits::default() }).await;
    let mut seed: u64 = 0x1234_5678;
    for addr in [r.addrs.line, r.addrs.pickle, r.addrs.cache_query].into_iter().flatten() {
        for _ in 0..20 {
            let mut s = TcpStream::connect(addr).await.expect("connect");
            let mut junk = vec![0u8; 4096];
            for b in &mut junk {
                seed ^= seed << 13;
                seed ^= seed >> 7;
                seed ^= seed << 17;
                *b = seed as u8;
            }
            let _ = s.write_all(&junk).await;
        }
    }
    // Still serving.
    let mut s = TcpStream::connect(r.addrs.line.expect("line")).await.expect("connect");
    s.write_all(b"still.alive 1 1700000000\n").await.expect("write");
    drop(s);
    let deadline = Instant::now() + Duration::from_secs(5);
    while !r.sink.points().iter().any(|p| p.0 == "still.alive") && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    assert!(r.sink.points().iter().any(|p| p.0 == "still.alive"));
    r.stop().await;
}
