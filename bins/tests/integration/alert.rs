//! The alerter end to end: `graphite-rs --alert-rules` evaluates a rule over its own store
//! (points sent over plaintext), the rule fires and a webhook receiver started here gets
//! Alertmanager's JSON; the page and API answer under /alerts/; SIGTERM saves the state.
//! Then the standalone `graphite-alert run --source URL` does the same against the server's
//! HTTP API.

use std::fs;
use std::io::Write;
use std::net::{SocketAddr, TcpStream};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

#[path = "../../../alert/tests/sinks/mod.rs"]
mod sinks;

use crate::support;

const ALERT: &str = env!("CARGO_BIN_EXE_graphite-alert");

fn rules(hook: &str, source: &str) -> String {
    format!(
        r#"
[defaults]
source = "{source}"
every = "1s"
window = "2m"
lag = "0s"

[[rule]]
name = "cpu_high"
target = "test.alert.*.cpu"
reduce = "max"
op = ">"
warn = 80
crit = 90
no_data = "ok"
labels = {{ host = "{{node:2}}" }}
annotations = {{ summary = "{{host}} cpu at {{value}}" }}
notify = ["hook"]

[[receiver]]
name = "hook"
type = "webhook"
url = "{hook}"

[route]
group_by = ["alertname"]
group_wait = "0s"
"#
    )
}

/// A child process killed on drop unless it was stopped.
struct Proc {
    child: Child,
    log: std::path::PathBuf,
}

impl Proc {
    /// SIGTERM; the exit status must be 0.
    fn stop(mut self) {
        support::stop(&mut self.child, Duration::from_secs(60), &self.log);
    }
}

impl Drop for Proc {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn start_server(root: &Path, rules_file: &Path) -> (Proc, SocketAddr, SocketAddr) {
    let (ready, log) = (root.join("ready"), root.join("server.log"));
    let mut child = support::graphite_rs(root, &ready, fs::File::create(&log).unwrap())
        .args(["--line-port", "0", "--udp-port", "off", "--pickle-port", "off"])
        .args(["--query-port", "off", "--http-port", "0", "--no-wal"])
        .arg("--alert-rules")
        .arg(rules_file)
        .spawn()
        .expect("start graphite-rs");
    let text = support::wait_ready(&mut child, &ready, &log);
    let (line, http) = (support::ready_addr(&text, "line"), support::ready_addr(&text, "http"));
    (Proc { child, log }, line, http)
}

fn send_points(line: SocketAddr) {
    let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_secs();
    let mut s = TcpStream::connect(line).unwrap();
    for (host, value) in [("web01", 95.0), ("web02", 10.0)] {
        for back in [90, 30] {
            writeln!(s, "test.alert.{host}.cpu {value} {}", now - back).unwrap();
        }
    }
}

fn firing_hook(sink: &sinks::WebhookSink) -> serde_json::Value {
    assert!(
        sinks::wait_until(|| sink.hooks().iter().any(|h| h.body["status"] == "firing")),
        "no firing notification"
    );
    sink.hooks().into_iter().find(|h| h.body["status"] == "firing").unwrap().body
}

#[test]
fn the_server_runs_rules_over_its_store_and_notifies() {
    let dir = tempfile::tempdir().unwrap();
    let sink = sinks::WebhookSink::start();
    let rules_file = dir.path().join("rules.toml");
    fs::write(&rules_file, rules(&sink.url("/hook"), "local")).unwrap();
    let (server, line, http) = start_server(dir.path(), &rules_file);
    send_points(line);

    let body = firing_hook(&sink);
    assert_eq!(body["version"], "4");
    assert_eq!(body["receiver"], "hook");
    assert_eq!(body["groupKey"], "hook:{alertname=\"cpu_high\"}");
    let alerts = body["alerts"].as_array().unwrap();
    assert_eq!(alerts.len(), 1, "{body}");
    assert_eq!(alerts[0]["labels"]["host"], "web01", "{body}");
    assert_eq!(alerts[0]["labels"]["severity"], "critical");
    assert_eq!(alerts[0]["annotations"]["summary"], "web01 cpu at 95");
    assert!(alerts[0]["generatorURL"].as_str().unwrap().contains("/render?"), "{body}");

    let (status, page) = support::http_get(http, "/alerts/");
    assert_eq!(status, 200);
    assert!(page.contains("<h2>Firing (1)</h2>"), "{page}");
    assert!(page.contains("host=web01"));
    let (status, _) = support::http_get(http, "/alerts");
    assert_eq!(status, 308, "redirected to /alerts/");
    let (status, api) = support::http_get(http, "/alerts/api/alerts");
    assert_eq!(status, 200);
    let api: serde_json::Value = serde_json::from_str(&api).unwrap();
    assert!(
        api.as_array()
            .unwrap()
            .iter()
            .any(|a| a["status"] == "firing" && a["labels"]["host"] == "web01")
    );
    assert_eq!(support::http_get(http, "/alerts/healthz"), (200, "ok\n".into()));
    // render's API is still there.
    assert_eq!(support::http_get(http, "/version").0, 200);

    server.stop();
    let state: serde_json::Value = serde_json::from_slice(
        &fs::read(dir.path().join("storage/whisper/.alert-state.json")).unwrap(),
    )
    .unwrap();
    assert!(
        state["notify"]["route"]["groups"].as_object().is_some_and(|g| !g.is_empty()),
        "{state}"
    );
}

#[test]
fn the_standalone_alerter_reads_a_remote_api_and_saves_its_state_on_sigterm() {
    let dir = tempfile::tempdir().unwrap();
    let sink = sinks::WebhookSink::start();
    // The server, with a rule file that notifies nobody: it is only the data source here.
    let quiet = dir.path().join("quiet.toml");
    fs::write(&quiet, "[[rule]]\nname = \"noop\"\ntarget = \"nothing\"\nop = \">\"\ncrit = 1\n")
        .unwrap();
    let (server, line, http) = start_server(dir.path(), &quiet);
    send_points(line);

    let rules_file = dir.path().join("rules.toml");
    fs::write(&rules_file, rules(&sink.url("/hook"), "local")).unwrap();
    let check = Command::new(ALERT).arg("check").arg(&rules_file).output().unwrap();
    assert!(check.status.success(), "{}", String::from_utf8_lossy(&check.stderr));
    assert!(String::from_utf8_lossy(&check.stdout).contains("name = \"cpu_high\""));

    let state = dir.path().join("alert-state.json");
    let log = dir.path().join("alert.log");
    let listen = SocketAddr::from(([127, 0, 0, 1], support::free_port()));
    let child = Command::new(ALERT)
        .arg("run")
        .arg("--rules")
        .arg(&rules_file)
        .arg("--state")
        .arg(&state)
        .arg("--listen")
        .arg(listen.to_string())
        .arg("--source")
        .arg(format!("http://{http}"))
        .stdout(Stdio::null())
        .stderr(fs::File::create(&log).unwrap())
        .spawn()
        .unwrap();
    let alerter = Proc { child, log };
    let body = firing_hook(&sink);
    assert_eq!(body["alerts"][0]["labels"]["host"], "web01");
    assert!(body["externalURL"].as_str().unwrap().starts_with("http://127.0.0.1:"));
    assert!(sinks::wait_until(|| TcpStream::connect(listen).is_ok()));
    let (status, page) = support::http_get(listen, "/");
    assert_eq!(status, 200);
    assert!(page.contains("cpu_high"));
    alerter.stop();
    let saved: serde_json::Value = serde_json::from_slice(&fs::read(&state).unwrap()).unwrap();
    assert!(
        saved["notify"]["route"]["groups"].as_object().is_some_and(|g| !g.is_empty()),
        "{saved}"
    );
    server.stop();
}

#[test]
fn a_rules_file_with_a_typo_names_file_and_line() {
    let dir = tempfile::tempdir().unwrap();
    let rules_file = dir.path().join("rules.toml");
    fs::write(
        &rules_file,
        rules("http://127.0.0.1:9/", "local").replace("group_wait", "group_wiat"),
    )
    .unwrap();
    let out = Command::new(ALERT).arg("check").arg(&rules_file).output().unwrap();
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("rules.toml:25") && err.contains("group_wiat"), "{err}");
}

/// A rules file of rules named `names` (on nothing: they stay normal), evaluated each second.
fn named_rules(names: &[&str], extra: &str) -> String {
    let mut text = String::from("[defaults]\nevery = \"1s\"\nlag = \"0s\"\n");
    for name in names {
        text.push_str(&format!(
            "\n[[rule]]\nname = \"{name}\"\ntarget = \"test.reload.{name}\"\nop = \">\"\ncrit = 1\nno_data = \"ok\"\n"
        ));
    }
    text.push_str(extra);
    text
}

/// The rule names `GET {prefix}/api/rules` lists.
fn listed_rules(addr: SocketAddr, prefix: &str) -> Vec<String> {
    let (status, body) = support::http_get(addr, &format!("{prefix}/api/rules"));
    assert_eq!(status, 200, "{body}");
    let rules: serde_json::Value = serde_json::from_str(&body).unwrap();
    rules.as_array().unwrap().iter().map(|r| r["name"].as_str().unwrap().to_owned()).collect()
}

/// `GET {prefix}/api/metrics`.
fn alert_metrics(addr: SocketAddr, prefix: &str) -> serde_json::Value {
    let (status, body) = support::http_get(addr, &format!("{prefix}/api/metrics"));
    assert_eq!(status, 200, "{body}");
    serde_json::from_str(&body).unwrap()
}

/// Sends SIGHUP to `child`.
fn sighup(child: &Child) {
    // SAFETY: a plain kill(2) on our own child's pid.
    unsafe { libc::kill(child.id() as i32, libc::SIGHUP) };
}

#[test]
fn the_standalone_alerter_reloads_on_sighup_and_sends_its_metrics_to_carbon() {
    let dir = tempfile::tempdir().unwrap();
    let carbon = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    carbon.set_nonblocking(true).unwrap();
    let metrics = format!(
        "\n[self_metrics]\ncarbon = \"{}\"\nprefix = \"alert.it\"\ninterval = \"1s\"\n",
        carbon.local_addr().unwrap()
    );
    let rules_file = dir.path().join("rules.toml");
    fs::write(&rules_file, named_rules(&["first"], &metrics)).unwrap();
    let data = dir.path().join("whisper");
    fs::create_dir_all(&data).unwrap();
    let log = dir.path().join("alert.log");
    let listen = SocketAddr::from(([127, 0, 0, 1], support::free_port()));
    let child = Command::new(ALERT)
        .arg("run")
        .arg(&rules_file)
        .arg("--listen")
        .arg(listen.to_string())
        .arg("--data-dir")
        .arg(&data)
        .stdout(Stdio::null())
        .stderr(fs::File::create(&log).unwrap())
        .spawn()
        .unwrap();
    let alerter = Proc { child, log: log.clone() };
    assert!(
        sinks::wait_until(|| TcpStream::connect(listen).is_ok()),
        "{}",
        support::read_log(&log)
    );
    assert_eq!(listed_rules(listen, ""), vec!["first"]);

    // A valid file: in force after SIGHUP.
    fs::write(&rules_file, named_rules(&["first", "second"], &metrics)).unwrap();
    sighup(&alerter.child);
    assert!(
        sinks::wait_until(|| listed_rules(listen, "").len() == 2),
        "not reloaded:\n{}",
        support::read_log(&log)
    );
    // An invalid one: logged with its file, line and rule; the old rules keep running.
    fs::write(
        &rules_file,
        named_rules(&["first", "second"], &metrics).replace("crit = 1", "crti = 1"),
    )
    .unwrap();
    sighup(&alerter.child);
    assert!(sinks::wait_until(|| alert_metrics(listen, "")["reload_failures"] == 1));
    assert_eq!(listed_rules(listen, ""), vec!["first", "second"]);
    let text = support::read_log(&log);
    assert!(text.contains("rules.toml:9: rule `first`") && text.contains("crti"), "{text}");
    assert!(text.contains("the old rules stay in force"), "{text}");
    // The same through the API.
    let (status, body) = support::http_request(listen, "POST", "/-/reload", "", "");
    assert_eq!(status, 400, "{body}");
    fs::write(&rules_file, named_rules(&["third"], &metrics)).unwrap();
    let (status, body) = support::http_request(listen, "POST", "/-/reload", "", "");
    assert_eq!(status, 200, "{body}");
    assert_eq!(listed_rules(listen, ""), vec!["third"]);

    // The self-metrics, once a second, as carbon plaintext lines.
    let mut conn = None;
    assert!(sinks::wait_until(|| {
        conn = carbon.accept().ok().map(|(c, _)| c);
        conn.is_some()
    }));
    let conn = conn.unwrap();
    conn.set_nonblocking(false).unwrap();
    conn.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    let mut lines = std::io::BufRead::lines(std::io::BufReader::new(conn));
    let names: Vec<String> = (0..30)
        .map_while(|_| lines.next().and_then(Result::ok))
        .map(|l| l.split(' ').next().unwrap_or("").to_owned())
        .collect();
    for name in ["alert.it.rounds", "alert.it.rule_evaluations", "alert.it.instances.normal"] {
        assert!(names.iter().any(|n| n == name), "{name} not in {names:?}");
    }
    alerter.stop();
}

#[test]
fn the_server_reloads_alert_rules_on_sighup_and_stores_their_metrics() {
    let dir = tempfile::tempdir().unwrap();
    fs::create_dir_all(dir.path().join("conf")).unwrap();
    fs::write(dir.path().join("conf/carbon.conf"), "[cache]\nCARBON_METRIC_INTERVAL = 1\n")
        .unwrap();
    let rules_file = dir.path().join("rules.toml");
    fs::write(&rules_file, named_rules(&["first"], "")).unwrap();
    let (server, _, http) = start_server(dir.path(), &rules_file);
    assert_eq!(listed_rules(http, "/alerts"), vec!["first"]);
    fs::write(&rules_file, named_rules(&["first", "second"], "")).unwrap();
    sighup(&server.child);
    assert!(
        sinks::wait_until(|| listed_rules(http, "/alerts").len() == 2),
        "{}",
        support::read_log(&server.log)
    );
    fs::write(&rules_file, "[[rule]]\nname = \"broken\"\n").unwrap();
    sighup(&server.child);
    assert!(sinks::wait_until(|| alert_metrics(http, "/alerts")["reload_failures"] == 1));
    assert_eq!(listed_rules(http, "/alerts"), vec!["first", "second"]);
    // The alerter's metrics are in the store beside carbon.agents.*'s own.
    let find = "/metrics/find?format=json&query=carbon.agents.*.alert.rounds";
    assert!(
        sinks::wait_until(|| support::http_get(http, find).1.contains("alert.rounds")),
        "{}",
        support::http_get(http, find).1
    );
    server.stop();
}
