//! The aggregator role of `graphite-rs`: with `--aggregation-rules`, points received over
//! plaintext are aggregated as carbon-aggregator would and the aggregated series lands in
//! Whisper next to the received ones.

use std::fs;
use std::io::Write;
use std::net::{SocketAddr, TcpStream};
use std::path::Path;
use std::process::{Child, Command};
use std::time::Duration;

use crate::support;

/// Kills the server if the test fails before it stops it.
struct Running(Option<Child>);

impl Drop for Running {
    fn drop(&mut self) {
        if let Some(mut c) = self.0.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

fn points(path: &Path) -> Vec<(i64, f64)> {
    let now = whisper::now();
    let s = whisper::fetch(path, now - 86_400, Some(now), now).unwrap().unwrap();
    s.points().filter_map(|(t, v)| v.map(|v| (t, v))).collect()
}

fn start(root: &Path, extra: &[&str]) -> (Running, SocketAddr) {
    let (ready, log) = (root.join("ready"), root.join("server.log"));
    let child = support::graphite_rs(root, &ready, fs::File::create(&log).unwrap())
        .args(["--line-port", "0", "--udp-port", "off", "--pickle-port", "off"])
        .args(["--query-port", "off", "--http-port", "off"])
        .args(extra)
        .spawn()
        .unwrap();
    let mut running = Running(Some(child));
    let text = support::wait_ready(running.0.as_mut().unwrap(), &ready, &log);
    (running, support::ready_addr(&text, "line"))
}

fn stop(mut running: Running, root: &Path) {
    let mut child = running.0.take().unwrap();
    support::stop(&mut child, Duration::from_secs(120), &root.join("server.log"));
}

#[test]
fn aggregated_series_reach_whisper() {
    let tmp = tempfile::tempdir().unwrap();
    let root = tmp.path();
    let rules = root.join("aggregation-rules.conf");
    fs::write(&rules, "# per app\n<app>.all.requests (2) = sum <app>.*.requests\n").unwrap();
    let (running, line) = start(root, &["--aggregation-rules", rules.to_str().unwrap()]);
    let now = whisper::now();
    let t = now - now % 60 - 300;
    let text = format!(
        "shop.web1.requests 1 {t}\nshop.web2.requests 2.5 {t}\nshop.web1.requests 4 {}\n\
         blog.web1.requests 7 {t}\nunrelated.metric 9 {t}\n",
        t + 60
    );
    TcpStream::connect(line).unwrap().write_all(text.as_bytes()).unwrap();
    // The buffers' timers fire 2 s after their first point; the ticker runs every second.
    std::thread::sleep(Duration::from_secs(5));
    stop(running, root);
    let dir = root.join("storage/whisper");
    assert_eq!(points(&dir.join("shop/all/requests.wsp")), [(t, 3.5), (t + 60, 4.0)]);
    assert_eq!(points(&dir.join("blog/all/requests.wsp")), [(t, 7.0)]);
    // FORWARD_ALL: the received points are stored too.
    assert_eq!(points(&dir.join("shop/web1/requests.wsp")), [(t, 1.0), (t + 60, 4.0)]);
    assert_eq!(points(&dir.join("unrelated/metric.wsp")), [(t, 9.0)]);
}

#[test]
fn without_forward_all_only_aggregates_are_stored() {
    let tmp = tempfile::tempdir().unwrap();
    let root = tmp.path();
    let rules = root.join("aggregation-rules.conf");
    fs::write(&rules, "total (1) = max <<any>>\n").unwrap();
    let (running, line) = start(
        root,
        &["--aggregation-rules", rules.to_str().unwrap(), "--aggregation-forward-all", "false"],
    );
    let now = whisper::now();
    let t = now - now % 60 - 120;
    let text = format!("a.b 1 {t}\nc 5 {t}\n");
    TcpStream::connect(line).unwrap().write_all(text.as_bytes()).unwrap();
    std::thread::sleep(Duration::from_secs(4));
    stop(running, root);
    let dir = root.join("storage/whisper");
    assert_eq!(points(&dir.join("total.wsp")), [(t, 5.0)]);
    assert!(!dir.join("a").exists() && !dir.join("c.wsp").exists());
}

#[test]
fn a_bad_rules_file_stops_the_server_naming_the_line() {
    let tmp = tempfile::tempdir().unwrap();
    let rules = tmp.path().join("aggregation-rules.conf");
    fs::write(&rules, "ok (60) = sum a.*\nbad (60) = median a.*\n").unwrap();
    let out = Command::new(support::GRAPHITE_RS)
        .args(["--root", tmp.path().to_str().unwrap(), "--line-port", "0", "--udp-port", "off"])
        .args(["--pickle-port", "off", "--query-port", "off", "--http-port", "off"])
        .arg("--aggregation-rules")
        .arg(&rules)
        .env_remove("GRAPHITE_ROOT")
        .output()
        .unwrap();
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("aggregation-rules.conf:2: invalid aggregation method \"median\""),
        "{stderr}"
    );
}

/// The rules file is looked at every `--aggregation-rules-reload` seconds (carbon: 10): a
/// broken new version is logged and the old rules stay; a good one is used from then on.
#[test]
fn a_changed_rules_file_is_read_again() {
    let tmp = tempfile::tempdir().unwrap();
    let root = tmp.path();
    let rules = root.join("aggregation-rules.conf");
    fs::write(&rules, "first (1) = max <<any>>\n").unwrap();
    let (running, line) = start(
        root,
        &[
            "--aggregation-rules",
            rules.to_str().unwrap(),
            "--aggregation-forward-all",
            "false",
            "--aggregation-rules-reload",
            "1",
        ],
    );
    let log = root.join("server.log");
    let wait_log = |what: &str| {
        let deadline = std::time::Instant::now() + Duration::from_secs(10);
        while !support::read_log(&log).contains(what) {
            assert!(
                std::time::Instant::now() < deadline,
                "no {what:?}:\n{}",
                support::read_log(&log)
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    };
    let now = whisper::now();
    let t = now - now % 60 - 180;
    fs::write(&rules, "first (1) = max <<any>>\nbroken (1) = nosuch <<any>>\n").unwrap();
    wait_log("cannot be used");
    TcpStream::connect(line).unwrap().write_all(format!("a 1 {t}\n").as_bytes()).unwrap();
    // Its buffer fires 1 s after the point (a reload before then would clear it, as in carbon).
    std::thread::sleep(Duration::from_millis(2500));
    fs::write(&rules, "second (1) = sum <<any>>\n").unwrap();
    wait_log("re-read aggregation rules");
    TcpStream::connect(line)
        .unwrap()
        .write_all(format!("a 2 {}\nb 3 {}\n", t + 60, t + 60).as_bytes())
        .unwrap();
    std::thread::sleep(Duration::from_secs(3));
    stop(running, root);
    let dir = root.join("storage/whisper");
    assert_eq!(points(&dir.join("first.wsp")), [(t, 1.0)], "the old rules stayed");
    assert_eq!(points(&dir.join("second.wsp")), [(t + 60, 5.0)], "the new rules");
}
