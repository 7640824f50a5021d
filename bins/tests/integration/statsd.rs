//! `graphite-rs --statsd`: statsd packets over UDP and TCP become Whisper files with statsd's
//! names and values (the last flush happens at SIGTERM, before the cache is written).

use std::fs;
use std::io::{Read, Write};
use std::net::{TcpStream, UdpSocket};
use std::path::{Path, PathBuf};
use std::time::Duration;

use crate::support;

fn wsp(root: &Path, name: &str) -> PathBuf {
    root.join("storage/whisper").join(format!("{}.wsp", name.replace('.', "/")))
}

/// The non-empty values of a file over the last day.
fn values(path: &Path) -> Vec<f64> {
    let now = whisper::now();
    let series = whisper::fetch(path, now - 86_400, Some(now + 60), now)
        .unwrap_or_else(|e| panic!("{}: {e}", path.display()))
        .unwrap();
    series.points().filter_map(|(_, v)| v).collect()
}

#[test]
fn statsd_packets_reach_whisper_files() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path();
    let (ready, log) = (root.join("ready"), root.join("server.log"));
    let mut child = support::graphite_rs(root, &ready, fs::File::create(&log).unwrap())
        .args(["--line-port", "0", "--udp-port", "off", "--pickle-port", "0", "--query-port", "0"])
        .args(["--http-port", "off", "--statsd", "127.0.0.1:0"])
        // One hour: the only flush is the last one, at SIGTERM, so every value is known.
        .args(["--statsd-flush-interval", "3600000"])
        .spawn()
        .expect("start graphite-rs");
    let text = support::wait_ready(&mut child, &ready, &log);
    let addr = |key: &str| support::ready_addr(&text, key);
    let (udp, tcp) = (addr("statsd_udp"), addr("statsd_tcp"));

    let s = UdpSocket::bind("127.0.0.1:0").unwrap();
    s.send_to(b"hits:1|c\nhits:1|c|@0.5\nlat:10|ms\nlat:30|ms", udp).unwrap();
    s.send_to(b"temp:21.5|g\ntemp:+1|g\nusers:a|s\nusers:b|s\nusers:a|s", udp).unwrap();
    s.send_to(b"req:1|c|#env:prod", udp).unwrap();
    let mut c = TcpStream::connect(tcp).unwrap();
    c.set_read_timeout(Some(Duration::from_secs(30))).unwrap();
    c.write_all(b"hits:4|c\nbad\n").unwrap();
    c.shutdown(std::net::Shutdown::Write).unwrap();
    // The server closes the connection once it has taken every line.
    let _ = c.read_to_end(&mut Vec::new());

    support::sigterm(&child);
    let status = support::wait_exit(&mut child, Duration::from_secs(120), &log);
    let server_log = fs::read_to_string(&log).unwrap_or_default();
    assert!(status.success(), "{status}:\n{server_log}");

    for (name, want) in [
        ("stats_counts.hits", 7.0),
        ("stats.hits", 7.0 / 3600.0),
        ("stats.timers.lat.mean", 20.0),
        ("stats.timers.lat.upper_90", 30.0),
        ("stats.timers.lat.count", 2.0),
        ("stats.gauges.temp", 22.5),
        ("stats.sets.users.count", 2.0),
        ("stats_counts.statsd.packets_received", 4.0),
        ("stats_counts.statsd.bad_lines_seen", 1.0),
        ("statsd.numStats", 8.0),
    ] {
        let path = wsp(root, name);
        assert!(path.exists(), "{} missing:\n{server_log}", path.display());
        assert_eq!(values(&path), [want], "{name}");
    }
    // The tagged counter is stored as a tagged series (under `_tagged/`).
    let tagged = fs::read_dir(root.join("storage/whisper/_tagged")).map(|d| d.count()).unwrap_or(0);
    assert!(tagged > 0, "no tagged series for req;env=prod");
}
