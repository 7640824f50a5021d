//! carbon-c-relay's configuration constructs beyond clusters and matches, against Debian's
//! carbon-c-relay where it can say what the answer is:
//!
//! - `include <glob>`: the same config tree routed by `carbon-c-relay -t` and by us; relative
//!   include paths are relative to the working directory (checked through the binary);
//! - `statistics`: both relays send their statistics to one sink; the names are the same
//!   (less the thread and internal-queue metrics we do not have) and ours count right;
//! - `validate ... else log|drop`: lines with different data routed by `carbon-c-relay -t`
//!   and by us.
//!
//! Tests that need carbon-c-relay print SKIP when it is missing, and fail instead under
//! `GRAPHITE_REQUIRE_REFERENCE=1`.

use std::collections::{BTreeMap, BTreeSet};
use std::fs;
use std::io::Write as _;
use std::net::SocketAddr;
use std::path::Path;
use std::process::{Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bins::relay::config_crelay::read_crelay;
use bins::relay::router::{Health, PointIn};

use crate::carbon::Carbon;
use crate::relay::{
    CRELAY, Proc, RELAY, crelay_test_output, have, names, ready_addrs, routes_of, send_lines,
    start_relay, wait_until,
};

/// Writes the include tree under `dir`: `conf.d/10-clusters.conf` defines the clusters that
/// `conf.d/20-routes.conf` uses, so a wrong order fails to parse.
fn include_tree(dir: &Path, sink_port: u16) {
    fs::create_dir_all(dir.join("conf.d")).unwrap();
    fs::write(
        dir.join("conf.d/10-clusters.conf"),
        format!(
            "cluster sink forward 127.0.0.1:{sink_port} ;\n\
             cluster ring fnv1a_ch 127.0.0.1:2101 127.0.0.1:2102 127.0.0.1:2103 ;\n"
        ),
    )
    .unwrap();
    fs::write(
        dir.join("conf.d/20-routes.conf"),
        "rewrite ^old\\.(.*)$ into new.\\1 ;\nmatch ^new\\. send to sink stop ;\n",
    )
    .unwrap();
    fs::write(dir.join("conf.d/README"), "not a config: the glob leaves it out\n").unwrap();
}

/// Our routing of `names` for the config file `path`: per name, the servers.
fn our_routes(path: &Path, names: &[String]) -> BTreeMap<String, Vec<String>> {
    routes_of(&read_crelay(path).unwrap(), names)
}

/// `carbon-c-relay -t` on `config` with `names`, every name ending in a `stop` rule: per
/// name in input order, the servers it would be sent to.
fn crelay_servers(dir: &Path, config: &str, names: &[String]) -> Vec<Vec<String>> {
    let text = crelay_test_output(dir, config, names);
    let lines: Vec<&str> = text.lines().collect();
    // The configuration dump ends with its last `    ;`; the routing follows.
    let start = lines.iter().rposition(|l| *l == "    ;").map_or(0, |i| i + 1);
    let mut blocks = Vec::new();
    let mut current = Vec::new();
    for l in &lines[start..] {
        if *l == "    stop" {
            blocks.push(std::mem::take(&mut current));
        } else if let Some(server) = l.strip_prefix("        ")
            && !server.starts_with(' ')
        {
            current.push(server.trim().to_string());
        }
    }
    blocks
}

#[test]
fn include_routes_like_carbon_c_relay() {
    if !have(CRELAY, "include_routes_like_carbon_c_relay") {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    include_tree(d, 2199);
    let config = format!("include {}/conf.d/*.conf ;\nmatch * send to ring stop ;\n", d.display());
    let mut all = names("inc.route", 500);
    all.extend(names("old.route", 200));
    all.extend(names("new.route", 100));
    let theirs = crelay_servers(d, &config, &all);
    let path = d.join("ours.conf");
    fs::write(&path, &config).unwrap();
    let ours = our_routes(&path, &all);
    assert_eq!(theirs.len(), all.len(), "carbon-c-relay -t printed {} routes", theirs.len());
    let differ: Vec<_> =
        all.iter().zip(&theirs).filter(|(n, t)| Some(*t) != ours.get(*n)).take(5).collect();
    assert!(
        differ.is_empty(),
        "routes differ, e.g. {:?}",
        differ.iter().map(|(n, t)| (n, t, &ours[*n])).collect::<Vec<_>>()
    );
    let to_sink = ours.values().filter(|v| v.iter().any(|s| s.ends_with(":2199"))).count();
    assert_eq!(to_sink, 300, "the rewrite and match of the second included file apply");
    eprintln!("include: {} names routed identically", all.len());
}

#[test]
fn relative_includes_are_relative_to_the_working_directory() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let lines = Arc::new(Mutex::new(Vec::new()));
    let sink = Carbon::start_on("127.0.0.1:0".parse().unwrap(), Arc::clone(&lines));
    include_tree(d, sink.addr.port());
    fs::write(d.join("relay.conf"), "include conf.d/*.conf ;\nmatch * send to sink stop ;\n")
        .unwrap();
    // From elsewhere the relative glob matches nothing: refused, naming the file and line.
    fs::create_dir(d.join("elsewhere")).unwrap();
    let out = Command::new(RELAY)
        .args(["--crelay-config", "../relay.conf", "--bind", "127.0.0.1", "--line-port", "0"])
        .current_dir(d.join("elsewhere"))
        .stdin(Stdio::null())
        .output()
        .unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("../relay.conf:1:") && err.contains("matches no file"), "{err}");
    // From the directory the paths are relative to, it runs and routes through the include.
    let ready = d.join("relay.ready");
    let mut relay = Proc::spawn(
        "graphite-relay",
        Command::new(RELAY)
            .args(["--crelay-config", "relay.conf", "--udp-port", "0", "--metric-interval", "0"])
            .args(["--bind", "127.0.0.1", "--line-port", "0", "--ready-file"])
            .arg(&ready)
            .current_dir(d),
        d.join("relay.log"),
    );
    let addr = ready_addrs(&ready, &mut relay)["line"];
    send_lines(addr, &["old.cpu 1 1700000000".to_string()]);
    let arrived = wait_until(Duration::from_secs(10), || {
        lines.lock().unwrap().iter().any(|l| l.starts_with("new.cpu 1"))
    });
    relay.stop();
    assert!(arrived, "nothing arrived:\n{}", relay.log());
    sink.finish();
}

/// Waits for carbon-c-relay to accept connections on `port`, and checks it is the one that
/// does.
fn wait_crelay(crelay: &mut Proc, port: u16) {
    let up = wait_until(Duration::from_secs(15), || {
        crelay.assert_running();
        std::net::TcpStream::connect(("127.0.0.1", port)).is_ok()
    });
    assert!(up, "carbon-c-relay did not listen on {port}:\n{}", crelay.log());
    crelay.assert_running();
}

/// Starts Debian's carbon-c-relay on a free port with `config(port, "theirs")` (and
/// `crelay_args`), waits until it listens, then ours with `config(port, "ours")` (and
/// `relay_args`): carbon-c-relay
/// listens before ours takes a free port, so neither can take the other's. Returns
/// carbon-c-relay, its port, our relay and its line address.
fn start_both(
    d: &Path,
    config: impl Fn(u16, &str) -> String,
    crelay_args: &[&str],
    relay_args: &[&str],
) -> (Proc, u16, Proc, SocketAddr) {
    let port = crate::support::free_port();
    fs::write(d.join("crelay.conf"), config(port, "theirs")).unwrap();
    let mut crelay = Proc::spawn(
        "carbon-c-relay",
        Command::new(CRELAY).arg("-f").arg(d.join("crelay.conf")).args(crelay_args),
        d.join("crelay.log"),
    );
    wait_crelay(&mut crelay, port);
    let ours_conf = d.join("ours.conf");
    fs::write(&ours_conf, config(port, "ours")).unwrap();
    let mut args = vec!["--crelay-config", ours_conf.to_str().unwrap()];
    args.extend_from_slice(relay_args);
    let (relay, addr) = start_relay(d, &args);
    (crelay, port, relay, addr)
}

/// The metric names after the prefix, from the lines starting with `prefix.`.
fn stat_names(lines: &[String], prefix: &str) -> BTreeSet<String> {
    lines
        .iter()
        .filter_map(|l| l.strip_prefix(prefix)?.strip_prefix('.'))
        .filter_map(|l| l.split(' ').next())
        .map(str::to_string)
        .collect()
}

/// carbon-c-relay's statistics that describe its threads and internal queue: not emitted here.
fn crelay_only(name: &str) -> bool {
    name.starts_with("dispatcher")
        || name.starts_with("destinations.internal.")
        || name.ends_with("wallTime_us")
        || name.ends_with("sleepTime_us")
}

#[test]
fn statistics_have_carbon_c_relays_names() {
    if !have(CRELAY, "statistics_have_carbon_c_relays_names") {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let lines = Arc::new(Mutex::new(Vec::new()));
    let sink = Carbon::start_on("127.0.0.1:0".parse().unwrap(), Arc::clone(&lines));
    let spare = crate::support::free_port();
    let config = |listen: u16, prefix: &str| {
        format!(
            "listen type linemode 127.0.0.1:{listen} proto tcp ;\n\
             cluster sink forward 127.0.0.1:{} ;\n\
             cluster spare forward 127.0.0.1:{} proto udp ;\n\
             statistics submit every 1 seconds reset counters after interval\n\
               prefix with {prefix}.\\_2 send to sink stop ;\n\
             aggregate ^stat\\.m1$ every 1 seconds expire after 2 seconds\n\
               compute sum write to agg.sum send to sink stop ;\n\
             match ^junk send to blackhole ;\n\
             match * send to sink stop ;\n",
            sink.addr.port(),
            spare,
        )
    };
    let (mut crelay, port, mut relay, addr) = start_both(d, config, &["-w", "1"], &[]);
    let input: Vec<String> = (0..50)
        .map(|i| format!("stat.m{i} {i} 1700000000"))
        .chain((0..5).map(|i| format!("junk.m{i} 1 1700000000")))
        .collect();
    send_lines(SocketAddr::from(([127, 0, 0, 1], port)), &input);
    send_lines(addr, &input);
    let prefix = |who: &str| format!("{who}.{}", hostname_short());
    let arrived = wait_until(Duration::from_secs(10), || {
        let l = lines.lock().unwrap();
        let sums = |who: &str, metric: &str| -> f64 {
            let p = format!("{}.{metric} ", prefix(who));
            l.iter()
                .filter_map(|x| x.strip_prefix(&p)?.split(' ').next()?.parse::<f64>().ok())
                .sum()
        };
        // Both have counted the 5 blackholed points in some interval.
        sums("theirs", "metricsBlackholed") >= 5.0 && sums("ours", "metricsBlackholed") >= 5.0
    });
    relay.stop();
    crelay.stop();
    let l = lines.lock().unwrap().clone();
    assert!(
        arrived,
        "statistics did not arrive: {:?}\n{}",
        &l[l.len().saturating_sub(40)..],
        relay.log()
    );
    let theirs: BTreeSet<String> =
        stat_names(&l, &prefix("theirs")).into_iter().filter(|n| !crelay_only(n)).collect();
    let ours = stat_names(&l, &prefix("ours"));
    assert_eq!(ours, theirs, "metric names differ");
    assert!(ours.contains("aggregators.metricsReceived"), "{ours:?}");
    // Our counters over the intervals: the 55 points in, 49 to the sink (and one aggregate),
    // 5 blackholed.
    let sum = |metric: &str| -> f64 {
        let p = format!("{}.{metric} ", prefix("ours"));
        l.iter().filter_map(|x| x.strip_prefix(&p)?.split(' ').next()?.parse::<f64>().ok()).sum()
    };
    assert_eq!(sum("metricsBlackholed"), 5.0);
    assert!(sum("metricsReceived") >= 55.0);
    let dest = format!("destinations.127_0_0_1:{}.sent", sink.addr.port());
    assert!(sum(&dest) >= 49.0, "{dest}: {}", sum(&dest));
    assert_eq!(sum("aggregators.metricsReceived"), 1.0);
    eprintln!(
        "statistics: {} names as carbon-c-relay's ({} of its own left out)",
        ours.len(),
        stat_names(&l, &prefix("theirs")).len() - ours.len()
    );
    drop(l);
    sink.finish();
}

/// The host name's first label, lowercased (`\_2` of carbon-c-relay's host name pattern).
fn hostname_short() -> String {
    bins::relay::hostname().split('.').next().unwrap_or_default().to_lowercase()
}

/// The aggregate lines (`name value timestamp`, names under `out.`, `m2.` or `lit.`) a sink
/// received, parsed and sorted.
fn aggregate_lines(lines: &Mutex<Vec<String>>) -> Vec<(String, i64, f64)> {
    let mut out: Vec<(String, i64, f64)> = lines
        .lock()
        .unwrap()
        .iter()
        .filter(|l| l.starts_with("out.") || l.starts_with("m2.") || l.starts_with("lit."))
        .filter_map(|l| {
            let mut f = l.split(' ');
            let (n, v, t) = (f.next()?, f.next()?, f.next()?);
            Some((n.to_string(), t.parse::<f64>().ok()? as i64, v.parse().ok()?))
        })
        .collect();
    out.sort_by(|a, b| a.partial_cmp(b).unwrap());
    out
}

/// The same timestamped points into carbon-c-relay and into ours, both configured with the
/// same `aggregate` statements (buckets of 2 s expiring after 3 s, so the test is short):
/// the aggregate lines each sends out must be the same names, timestamps and values. Then
/// points late for buckets already emitted: both drop them.
#[test]
fn aggregates_match_carbon_c_relay() {
    if !have(CRELAY, "aggregates_match_carbon_c_relay") {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let (theirs_lines, ours_lines) =
        (Arc::new(Mutex::new(Vec::new())), Arc::new(Mutex::new(Vec::new())));
    let theirs_sink = Carbon::start_on("127.0.0.1:0".parse().unwrap(), Arc::clone(&theirs_lines));
    let ours_sink = Carbon::start_on("127.0.0.1:0".parse().unwrap(), Arc::clone(&ours_lines));
    let config = |listen: u16, sink: u16| {
        format!(
            "listen type linemode 127.0.0.1:{listen} proto tcp ;\n\
             cluster sink forward 127.0.0.1:{sink} ;\n\
             aggregate ^agg\\.([a-z]+)\\.v ^agg2\\.([a-z]+)$\n\
               every 2 seconds expire after 3 seconds\n\
               compute sum write to out.\\1.sum\n\
               compute count write to out.\\1.count\n\
               compute max write to out.\\1.max\n\
               compute min write to out.\\1.min\n\
               compute average write to out.\\1.avg\n\
               compute median write to out.\\1.median\n\
               compute percentile90 write to out.\\1.p90\n\
               compute percentile25 write to out.\\1.p25\n\
               compute percentile5 write to out.\\1.p5\n\
               compute variance write to out.\\1.var\n\
               compute stddev write to out.\\1.sd\n\
               send to sink stop ;\n\
             aggregate ^mid\\.([a-z]+) every 2 seconds expire after 3 seconds\n\
               timestamp at start of bucket compute sum write to m2.\\_1.s ;\n\
             aggregate ^lit\\. every 2 seconds expire after 5 seconds\n\
               timestamp at middle of bucket compute count write to lit.count\n\
               compute max write to lit.\\1.max send to sink stop ;\n\
             match * send to sink stop ;\n"
        )
    };
    let sink_of = |who: &str| if who == "theirs" { &theirs_sink } else { &ours_sink };
    let (mut crelay, port, mut relay, ours) = start_both(
        d,
        |listen, who| config(listen, sink_of(who).addr.port()),
        &["-s", "-w", "1"],
        &["--metric-interval", "0"],
    );
    let theirs = SocketAddr::from(([127, 0, 0, 1], port));
    // Timestamps within [now - 2, now + 1], well inside every window whichever second each
    // relay creates its buckets in; others far outside, dropped by both.
    let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_secs()
        as i64;
    let values = [0.5, 0.2, 1.7, 3.0, 2.25, 10.0, -1.5, 1e9, 7.125, 0.0078125, -3.3];
    let mut input = Vec::new();
    for (i, v) in values.iter().enumerate() {
        let t = now - 2 + (i as i64 % 4);
        input.push(format!("agg.a.v {v} {t}"));
        input.push(format!("agg.b.v {} {}", v * 3.0, now - 1));
        input.push(format!("agg2.c {} {t}.75", v / 7.0));
        // The match is `mid.ab`: the output keeps what follows it (`m2.ab.sC.d`).
        input.push(format!("mid.abC.d {v} {t}"));
        input.push(format!("lit.q {v} {}", now - 1));
    }
    input.push(format!("agg.a.v 100 {}", now - 30));
    input.push(format!("agg.a.v 100 {}", now + 100));
    input.push(format!("agg.late.v 1 {}", now - 30));
    input.push("other.metric 1 1700000000".to_string());
    let send_both = |input: &[String]| {
        let (a, b) = (input.to_vec(), input.to_vec());
        let t1 = std::thread::spawn(move || send_lines(theirs, &a));
        let t2 = std::thread::spawn(move || send_lines(ours, &b));
        t1.join().unwrap();
        t2.join().unwrap();
    };
    send_both(&input);
    // Every bucket has been emitted by then: the last starts at now + 1 at the latest and
    // goes once `start + expire + splay (at most 1) < clock` (`lit.`: now - 1 + 5 + 1), plus
    // an expiry pass.
    let all_emitted = std::time::UNIX_EPOCH + Duration::from_secs((now + 7) as u64);
    if let Ok(wait) = all_emitted.duration_since(std::time::SystemTime::now()) {
        std::thread::sleep(wait + Duration::from_millis(300));
    }
    let before_late = (aggregate_lines(&theirs_lines).len(), aggregate_lines(&ours_lines).len());
    // Late points for the buckets just emitted: dropped by both.
    let late: Vec<String> = ["agg.a.v 5 {t}", "agg2.c 5 {t}", "lit.q 5 {t}", "mid.abC.d 5 {t}"]
        .iter()
        .map(|l| l.replace("{t}", &(now - 2).to_string()))
        .collect();
    send_both(&late);
    std::thread::sleep(Duration::from_millis(1500));
    relay.stop();
    crelay.stop();
    let (t, o) = (aggregate_lines(&theirs_lines), aggregate_lines(&ours_lines));
    assert!(
        t.len() >= 40,
        "carbon-c-relay sent {} aggregates (ours {}): {t:?}\nours: {o:?}\n{}",
        t.len(),
        o.len(),
        crelay.log()
    );
    let only_theirs: Vec<_> = t.iter().filter(|x| !o.contains(x)).collect();
    let only_ours: Vec<_> = o.iter().filter(|x| !t.contains(x)).collect();
    assert!(
        only_theirs.is_empty() && only_ours.is_empty() && t.len() == o.len(),
        "aggregates differ:\nonly carbon-c-relay's: {only_theirs:?}\nonly ours: {only_ours:?}"
    );
    // The points forwarded by `match *` too (the `mid.` inputs and the others).
    let forwarded = |l: &Mutex<Vec<String>>| -> Vec<String> {
        let mut v: Vec<String> = l
            .lock()
            .unwrap()
            .iter()
            .filter(|x| x.starts_with("mid.") || x.starts_with("other."))
            .map(|x| {
                let f: Vec<&str> = x.split(' ').collect();
                format!(
                    "{} {} {}",
                    f[0],
                    f[1].parse::<f64>().unwrap(),
                    f[2].parse::<f64>().unwrap()
                )
            })
            .collect();
        v.sort();
        v
    };
    assert_eq!(forwarded(&ours_lines), forwarded(&theirs_lines));
    assert_eq!((t.len(), o.len()), before_late, "late points made aggregates");
    for name in ["out.a.p25", "out.b.sd", "out.c.p5", "m2.ab.sC.d", "lit.count", "lit._1.max"] {
        assert!(o.iter().any(|(n, _, _)| n == name), "no {name}: {o:?}");
    }
    eprintln!("aggregates: {} lines identical to carbon-c-relay's", o.len());
    theirs_sink.finish();
    ours_sink.finish();
}

/// `validate ... else log|drop`, with and without clusters and `stop`, and an escaped space
/// in the expression: lines with integer, decimal, negative and `nan` values routed by
/// `carbon-c-relay -t` and by us; the same servers, and a refused point logged by both.
#[test]
fn validate_routes_like_carbon_c_relay() {
    if !have(CRELAY, "validate_routes_like_carbon_c_relay") {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let config = "cluster c forward 127.0.0.1:2101 ;\ncluster d fnv1a_ch 127.0.0.1:2102 127.0.0.1:2103 ;\n\
                  match ^a validate ^[0-9]+\\ [0-9]+$ else drop send to c ;\n\
                  match ^b validate ^[0-9]+\\ [0-9]+$ else log send to c d stop ;\n\
                  match * validate ^-?[0-9.]+\\ [0-9.]+$ else drop ;\n\
                  match ^other validate 5 else log ;\n\
                  match * send to d stop ;\n";
    let mut lines = Vec::new();
    for prefix in ["a", "b", "c", "other", "a.b"] {
        for host in 0..5 {
            for value in ["1", "1.5", "-1", "0.25", "100", "nan", "-7", "3.14159", "15"] {
                for ts in ["1700000000", "1700000000.5"] {
                    lines.push((format!("{prefix}.h{host}.m"), value, ts));
                }
            }
        }
    }
    let path = dir.path().join("validate.conf");
    fs::write(&path, config).unwrap();
    let mut child = Command::new(CRELAY)
        .args(["-t", "-f"])
        .arg(&path)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let input: String = lines.iter().map(|(n, v, t)| format!("{n} {v} {t}\n")).collect();
    let mut stdin = child.stdin.take().unwrap();
    let writer = std::thread::spawn(move || stdin.write_all(input.as_bytes()).unwrap());
    let out = child.wait_with_output().unwrap();
    writer.join().unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    let all: Vec<&str> = text.lines().collect();
    let start = all.iter().rposition(|l| *l == "    ;").map_or(0, |i| i + 1);
    // Per line: the servers, and whether a `log` validation refused it.
    let mut theirs: Vec<(Vec<String>, bool)> = Vec::new();
    let mut current = (Vec::new(), false);
    for l in &all[start..] {
        if *l == "    stop" {
            theirs.push(std::mem::take(&mut current));
        } else if *l == "        fail -> log" {
            current.1 = true;
        } else if let Some(server) = l.strip_prefix("        ")
            && !server.contains(' ')
            && server.rsplit_once(':').is_some_and(|(_, p)| p.parse::<u16>().is_ok())
        {
            current.0.push(server.to_string());
        }
    }
    assert_eq!(theirs.len(), lines.len(), "carbon-c-relay -t printed {} routes", theirs.len());
    let s = read_crelay(&path).unwrap();
    let health = Health::new(s.destinations.len());
    let mut differ = Vec::new();
    let (mut refused, mut logged) = (0, 0);
    for ((name, value, ts), theirs) in lines.iter().zip(&theirs) {
        let mut to = Vec::new();
        let point = PointIn {
            value: value.parse().unwrap(),
            timestamp: ts.parse().unwrap(),
            now: 1_700_000_000,
        };
        let handled = s.router.route_point(name, Some(point), &health, &mut |_, d| {
            to.push(s.destinations[d].address());
        });
        // Both list a route's servers in cluster order; a point reaches each rule's once.
        let ours = (to, handled);
        if ours != *theirs {
            differ.push((name, value, ts, theirs.clone(), ours.clone()));
        }
        refused += usize::from(ours.0.is_empty());
        logged += usize::from(ours.1);
    }
    assert!(
        differ.is_empty(),
        "{} lines differ, e.g. {:?}",
        differ.len(),
        &differ[..differ.len().min(5)]
    );
    assert!(
        refused > 50 && logged > 50,
        "the cases are not exercised: {refused} refused, {logged} logged"
    );
    eprintln!(
        "validate: {} lines routed identically ({refused} refused, {logged} logged)",
        lines.len()
    );
}

/// The lines of the file at `path`, sorted (missing file: none).
fn sorted_lines(path: &Path) -> Vec<String> {
    let mut lines: Vec<String> =
        fs::read_to_string(path).unwrap_or_default().lines().map(str::to_string).collect();
    lines.sort();
    lines
}

/// `file` clusters: Debian's carbon-c-relay and ours, each with two file clusters (one of
/// two files, one shared with a `forward` of the same file), are sent the same lines; each
/// file holds the same lines for both (cleansed names, integer and decimal values).
#[test]
fn file_clusters_write_what_carbon_c_relay_writes() {
    if !have(CRELAY, "file_clusters_write_what_carbon_c_relay_writes") {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let config = |listen: u16, who: &str| {
        format!(
            "listen type linemode 127.0.0.1:{listen} proto tcp ;\n\
             cluster two file {d}/{who}-a.log {d}/{who}-b.log ;\n\
             cluster all file {d}/{who}-all.log ;\n\
             match ^x send to two stop ;\n\
             match * send to all ;\n",
            d = d.display()
        )
    };
    let (mut crelay, port, mut relay, addr) = start_both(d, config, &["-w", "1"], &[]);
    let input: Vec<String> = (0..100)
        .map(|i| format!("x.m{i} {i} 1700000000"))
        .chain((0..100).map(|i| format!("y.m{i}@x {i}.25 1700000001")))
        .chain((1..=20).map(|i| format!("z.m{i} -{i} 1700000002")))
        .collect();
    send_lines(SocketAddr::from(([127, 0, 0, 1], port)), &input);
    send_lines(addr, &input);
    let files = ["a.log", "b.log", "all.log"];
    let count = |who: &str| -> usize {
        files.iter().map(|f| sorted_lines(&d.join(format!("{who}-{f}"))).len()).sum()
    };
    // 100 lines to each of two files, 120 to the third.
    let arrived = wait_until(Duration::from_secs(10), || count("ours") >= 320);
    // carbon-c-relay writes its files as it goes and closes them when it stops.
    let _ = wait_until(Duration::from_secs(5), || count("theirs") >= 320);
    relay.stop();
    crelay.stop();
    assert!(arrived, "our files have {} lines:\n{}", count("ours"), relay.log());
    for f in files {
        let theirs = sorted_lines(&d.join(format!("theirs-{f}")));
        let ours = sorted_lines(&d.join(format!("ours-{f}")));
        assert_eq!(ours.len(), if f == "all.log" { 120 } else { 100 }, "{f}");
        assert_eq!(ours, theirs, "{f} differs");
    }
    assert!(sorted_lines(&d.join("ours-all.log")).contains(&"y.m7_x 7.25 1700000001".to_string()));
    eprintln!("file clusters: 320 lines in three files, as carbon-c-relay writes them");
}
