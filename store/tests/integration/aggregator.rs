//! Differential test of `store::aggregator` against Debian's carbon-aggregator 1.1.7: the same
//! rules and the same timed input lines go to a live carbon-aggregator (its destination a
//! small TCP sink here, line protocol) and to an [`Aggregator`] driven with the same clock;
//! the lines that come out (aggregated and forwarded) must be the same set.
//!
//! Without carbon-aggregator the test prints `SKIP` and passes, unless
//! `GRAPHITE_REQUIRE_REFERENCE=1`.

use std::collections::BTreeSet;
use std::io::{BufRead, BufReader, Write};
use std::net::{TcpListener, TcpStream};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use store::aggregator::{AggregationRules, Aggregator, AggregatorConfig};
use store::config::RewriteRules;

const CARBON_AGGREGATOR: &str = "/usr/bin/carbon-aggregator";
const REQUIRE_ENV: &str = "GRAPHITE_REQUIRE_REFERENCE";

const RULES: &str = "\
# one of each method, two frequencies, multi-node captures
agg.<app>.sum (2) = sum app.<app>.*.requests
agg.<app>.avg (2) = avg app.<app>.*.requests
agg.<app>.min (3) = min app.<app>.*.requests
agg.<app>.max (3) = max app.<app>.*.requests
agg.<app>.count (2) = count app.<app>.*.requests
agg.<app>.p50 (3) = p50 app.<app>.*.requests
agg.<app>.p90 (2) = p90 app.<app>.*.requests
agg.<app>.p999 (2) = p999 app.<app>.*.requests
tree.<path>.total (2) = sum tree.<<path>>.leaf
all.requests (3) = sum app.*.*.requests
same.name (2) = max same.name
";

const REWRITE: &str = "[pre]\n^raw\\. = app.\n[post]\n^tree\\. = fwd.tree.\n";

fn skip(reason: &str) {
    if std::env::var_os(REQUIRE_ENV).is_some_and(|v| v != "0") {
        panic!("reference implementation required ({REQUIRE_ENV} is set) but {reason}");
    }
    eprintln!("SKIP: {reason}");
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

/// carbon's line client: `"%.10f" % value` without trailing zeros (and `.`).
fn carbon_value(v: f64) -> String {
    let s = format!("{v:.10}");
    s.trim_end_matches('0').trim_end_matches('.').to_string()
}

fn now() -> f64 {
    SystemTime::now().duration_since(UNIX_EPOCH).unwrap().as_secs_f64()
}

/// Kills carbon-aggregator when the test ends, however it ends.
struct Running(Child);

impl Drop for Running {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Points as (name, timestamp offset from the start, value).
type Points = Vec<(String, f64, f64)>;

/// The input: the points sent first and the late ones.
fn input() -> (Points, Points) {
    let mut first = Vec::new();
    let mut late = Vec::new();
    let mut x: u64 = 0x2545_f491_4f6c_dd1d;
    let mut next = || {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        x
    };
    for i in 0..300u64 {
        let r = next();
        let app = ["shop", "blog", "api"][(r % 3) as usize];
        let host = format!("web{}", (r >> 8) % 4);
        // Recent (the current interval or the few before) or long past.
        let age = if (r >> 16) % 5 == 0 {
            1000.0 + ((r >> 20) % 7) as f64
        } else {
            ((r >> 20) % 5) as f64
        };
        let value = ((r >> 32) % 20_000) as f64 / 8.0 - 500.0;
        let name = match i % 7 {
            0 => format!("raw.{app}.{host}.requests"),
            1 => format!("tree.{app}.{host}.deep.leaf"),
            2 => "same.name".to_string(),
            3 => format!("other.{app}"),
            _ => format!("app.{app}.{host}.requests"),
        };
        if i % 6 == 5 { late.push((name, -age, value)) } else { first.push((name, -age, value)) }
    }
    (first, late)
}

#[test]
fn same_output_as_carbon_aggregator() {
    if !Path::new(CARBON_AGGREGATOR).exists() {
        return skip(&format!("{CARBON_AGGREGATOR} not found (apt-get install graphite-carbon)"));
    }
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    for sub in ["conf", "storage/whisper", "log", "lists"] {
        std::fs::create_dir_all(d.join(sub)).unwrap();
    }
    let sink = TcpListener::bind("127.0.0.1:0").unwrap();
    let sink_port = sink.local_addr().unwrap().port();
    let line_port = free_port();
    let pickle_port = free_port();
    let conf = format!(
        "[aggregator]\nSTORAGE_DIR = {d}/storage/\nLOCAL_DATA_DIR = {d}/storage/whisper/\n\
         WHITELISTS_DIR = {d}/lists/\nCONF_DIR = {d}/conf/\nLOG_DIR = {d}/log/\nPID_DIR = {d}/\n\
         USER =\nENABLE_LOGROTATION = False\nLINE_RECEIVER_INTERFACE = 127.0.0.1\n\
         LINE_RECEIVER_PORT = {line_port}\nPICKLE_RECEIVER_INTERFACE = 127.0.0.1\n\
         PICKLE_RECEIVER_PORT = {pickle_port}\nENABLE_UDP_LISTENER = False\n\
         DESTINATIONS = 127.0.0.1:{sink_port}\nDESTINATION_PROTOCOL = line\n\
         FORWARD_ALL = True\nMAX_AGGREGATION_INTERVALS = 5\nLOG_AGGREGATOR_MISSES = False\n\
         LOG_LISTENER_CONN_SUCCESS = False\nCARBON_METRIC_INTERVAL = 0\nENABLE_TAGS = False\n",
        d = d.display()
    );
    std::fs::write(d.join("conf/carbon.conf"), conf).unwrap();
    std::fs::write(
        d.join("conf/storage-schemas.conf"),
        "[default]\npattern = .*\nretentions = 1s:1h\n",
    )
    .unwrap();
    std::fs::write(d.join("conf/aggregation-rules.conf"), RULES).unwrap();
    std::fs::write(d.join("conf/rewrite-rules.conf"), REWRITE).unwrap();

    // The sink: every line carbon sends.
    let received = Arc::new(Mutex::new(Vec::<String>::new()));
    {
        let received = Arc::clone(&received);
        std::thread::spawn(move || {
            for conn in sink.incoming().take(16) {
                let Ok(conn) = conn else { continue };
                let received = Arc::clone(&received);
                std::thread::spawn(move || {
                    for line in BufReader::new(conn).lines().map_while(Result::ok) {
                        received.lock().unwrap().push(line);
                    }
                });
            }
        });
    }

    let child = Command::new("/usr/bin/python3")
        .arg(CARBON_AGGREGATOR)
        .arg(format!("--config={}/conf/carbon.conf", d.display()))
        .arg(format!("--pidfile={}/carbon-aggregator.pid", d.display()))
        .arg(format!("--logdir={}/log", d.display()))
        .args(["--nodaemon", "start"])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let _running = Running(child);
    let started = Instant::now();
    let mut conn = loop {
        if let Ok(c) = TcpStream::connect(("127.0.0.1", line_port)) {
            break c;
        }
        assert!(started.elapsed() < Duration::from_secs(30), "carbon-aggregator did not start");
        std::thread::sleep(Duration::from_millis(100));
    };
    // Let its relay connect to the sink first.
    std::thread::sleep(Duration::from_millis(1500));

    let rules = AggregationRules::parse(RULES, Path::new("aggregation-rules.conf")).unwrap();
    let rewrite = RewriteRules::parse(REWRITE, Path::new("rewrite-rules.conf")).unwrap();
    let mut ours = Aggregator::new(
        rules,
        AggregatorConfig { rewrite: Some(rewrite), ..AggregatorConfig::default() },
    );
    let mut expected = BTreeSet::new();
    let (first, late) = input();
    let t0 = now().floor() + 0.05;
    // Wait for t0 so that the phases below fall between the buffers' timer firings.
    std::thread::sleep(Duration::from_secs_f64((t0 - now()).max(0.0) + 1.0));
    let t0 = now();
    let send = |points: &[(String, f64, f64)],
                at: f64,
                conn: &mut TcpStream,
                ours: &mut Aggregator,
                expected: &mut BTreeSet<String>| {
        let mut text = String::new();
        for (name, age, value) in points {
            let ts = (t0 + age).floor();
            text.push_str(&format!("{name} {value} {ts}\n"));
            let pushed = ours.push(name, ts, *value, t0 + at);
            if let Some(fwd) = pushed.forward {
                expected.insert(format!("{fwd} {} {}", carbon_value(*value), ts as i64));
            }
        }
        conn.write_all(text.as_bytes()).unwrap();
        conn.flush().unwrap();
    };
    // Phase 1 at t0; the timers fire at t0+2, +3, +4, ... (the first points start them).
    send(&first, 0.0, &mut conn, &mut ours, &mut expected);
    let sent1 = now() - t0;
    assert!(sent1 < 0.5, "sending took {sent1} s: too slow for the timing of this test");
    let mut emitted = Vec::new();
    for t in [2.0, 3.0, 4.0] {
        emitted.extend(ours.tick(t0 + t));
    }
    // Phase 2 at t0+5: late points re-emit their intervals at t0+6.
    std::thread::sleep(Duration::from_secs_f64((t0 + 5.0 - now()).max(0.0)));
    send(&late, 5.0, &mut conn, &mut ours, &mut expected);
    for t in [6.0, 7.0, 8.0, 9.0, 10.0] {
        emitted.extend(ours.tick(t0 + t));
    }
    for p in &emitted {
        expected.insert(format!(
            "{} {} {}",
            p.name.as_str(),
            carbon_value(p.datapoint.value),
            p.datapoint.timestamp as i64
        ));
    }
    std::thread::sleep(Duration::from_secs_f64((t0 + 11.0 - now()).max(0.0)));
    drop(conn);

    let got: BTreeSet<String> =
        received.lock().unwrap().iter().filter(|l| !l.starts_with("carbon.")).cloned().collect();
    let missing: Vec<_> = expected.difference(&got).collect();
    let extra: Vec<_> = got.difference(&expected).collect();
    eprintln!(
        "carbon-aggregator sent {} distinct lines, ours {} ({} aggregated points)",
        got.len(),
        expected.len(),
        emitted.len()
    );
    assert!(
        missing.is_empty() && extra.is_empty(),
        "only ours: {missing:#?}\nonly carbon's: {extra:#?}"
    );
    assert!(emitted.len() > 50);
}
