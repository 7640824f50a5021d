//! The alerter as the binaries run it ([`AlertService`]): reloading the rules file (state
//! kept for unchanged rules, removed rules resolved and told, receivers swapped, an invalid
//! file refused whole), `POST /-/reload` and `GET /api/metrics` over HTTP, and the
//! self-metrics as carbon plaintext lines to a TCP listener started here. Rounds and ticks
//! run at explicit times; only deliveries take real time, each wait bounded.

mod common;
mod sinks;

use std::io::{BufRead, BufReader};
use std::net::{SocketAddr, TcpListener};
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use alert::AlertService;
use alert::ack::AckTarget;
use alert::engine::EngineConfig;
use alert::silence::{Matcher, NewSilence};
use alert::source::Sources;
use common::{Scripted, one};
use sinks::{T0, WebhookSink, wait_until};

/// Two rules on the same (scripted) series, both told to `hook`, plus `extra`.
fn rules_text(sink: &WebhookSink, extra: &str) -> String {
    format!(
        r#"
[defaults]
lag = "0s"

[[rule]]
name = "cpu"
target = "servers.*.cpu"
op = ">"
crit = 80
notify = ["hook"]

[[rule]]
name = "disk"
target = "servers.*.disk"
op = ">"
crit = 50
notify = ["hook"]

[[receiver]]
name = "hook"
type = "webhook"
url = "{}"

[route]
group_by = ["alertname"]
group_wait = "0s"
group_interval = "5m"
retry_initial = "20ms"
{extra}"#,
        sink.url("/hook")
    )
}

fn service(path: &Path, src: &Arc<Scripted>) -> Arc<AlertService> {
    let rules = alert::rules::load(path).unwrap();
    let config = EngineConfig { workers: 1, ..EngineConfig::default() };
    Arc::new(AlertService::new(rules, Sources::fixed(src.clone()), None, config).unwrap())
}

/// A started service: the webhook sink, the rules file (with `extra`) in its own directory,
/// and the service over a scripted source (`servers.a.cpu` at 99, so cpu fires).
struct Started {
    sink: WebhookSink,
    _dir: tempfile::TempDir,
    path: std::path::PathBuf,
    s: Arc<AlertService>,
}

fn start(extra: &str) -> Started {
    let sink = WebhookSink::start();
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("rules.toml");
    std::fs::write(&path, rules_text(&sink, extra)).unwrap();
    let src = Scripted::new();
    src.set(one("servers.a.cpu", Some(99.0)));
    let s = service(&path, &src);
    Started { sink, _dir: dir, path, s }
}

fn alertnames(hooks: &[sinks::Hook]) -> Vec<(String, String)> {
    hooks
        .iter()
        .map(|h| {
            let name = h.body["groupLabels"]["alertname"].as_str().unwrap_or("").to_owned();
            (name, h.body["status"].as_str().unwrap_or("").to_owned())
        })
        .collect()
}

#[test]
fn a_reload_keeps_what_was_told_and_tells_removed_rules_resolved() {
    let Started { sink, _dir, path, s } = start("");
    let d = Arc::clone(s.dispatcher());
    assert_eq!(s.round(T0), 2);
    assert_eq!(d.tick(T0), 2);
    let mut told = alertnames(&sink.wait_for(2));
    told.sort();
    assert_eq!(told, vec![("cpu".into(), "firing".into()), ("disk".into(), "firing".into())]);
    let ack = d
        .ack(
            alert::AckRequest {
                target: AckTarget::GroupKey("hook:{alertname=\"cpu\"}".into()),
                by: "me".into(),
                comment: String::new(),
                expires_in: None,
            },
            T0 + 10,
        )
        .unwrap();
    let silence = d
        .add_silence(
            NewSilence {
                matchers: vec![Matcher::parse("alertname=nothing").unwrap()],
                starts_at: None,
                ends_at: T0 + 86_400,
                created_by: "me".into(),
                comment: String::new(),
            },
            T0 + 10,
        )
        .unwrap();

    // disk goes; cpu stays (a new annotation is not a new rule).
    let text = rules_text(&sink, "").replace(
        "[[rule]]\nname = \"disk\"\ntarget = \"servers.*.disk\"\nop = \">\"\ncrit = 50\nnotify = [\"hook\"]\n",
        "",
    );
    std::fs::write(&path, text.replace("crit = 80\n", "crit = 80\nannotations = { a = \"b\" }\n"))
        .unwrap();
    let report = s.reload_from_file(T0 + 30).unwrap();
    assert_eq!((report.rules, report.kept), (1, 1));
    assert_eq!(report.removed, vec!["disk"]);

    // The next flush of disk's group tells it resolved; cpu is not told again (its log
    // survived the reload), nor is its ack or the silence gone.
    for t in (60..=600).step_by(60) {
        s.round(T0 + t);
        d.tick(T0 + t);
    }
    let hooks = sink.wait_for(3);
    assert_eq!(alertnames(&hooks[2..]), vec![("disk".into(), "resolved".into())]);
    assert_eq!(hooks[2].body["alerts"][0]["status"], "resolved");
    assert!(!wait_for_more(&sink, 3), "nothing more: {:?}", alertnames(&sink.hooks()));
    assert_eq!(d.acks(), vec![ack]);
    assert_eq!(d.silences(), vec![silence]);
    let m = s.metrics(T0 + 600);
    assert_eq!((m.engine.reloads, m.engine.reload_failures, m.engine.rules), (1, 0, 1));
    assert_eq!(m.engine.instances["firing"], 1);
    d.shutdown(Duration::from_secs(5));
}

/// Whether more than `n` notifications arrive within a short while (for "nothing more").
fn wait_for_more(sink: &WebhookSink, n: usize) -> bool {
    std::thread::sleep(Duration::from_millis(200));
    sink.hooks().len() > n
}

#[test]
fn an_invalid_rules_file_is_refused_and_the_old_rules_stay() {
    let Started { sink, _dir, path, s } = start("");
    s.round(T0);
    let before = s.dispatcher().config();

    // A typo in a rule, then a receiver whose transport cannot be built.
    std::fs::write(&path, rules_text(&sink, "").replace("crit = 50", "crti = 50")).unwrap();
    let e = s.reload_from_file(T0 + 30).unwrap_err().to_string();
    assert!(e.contains("rules.toml:16: rule `disk`") && e.contains("crti"), "{e}");
    let mail = "\n[[receiver]]\nname = \"mail\"\ntype = \"email\"\nsmtp_host = \"h\"\n\
                from = \"a@b.c\"\nto = [\"d@e.f\"]\nusername = \"u\"\n\
                password_env = \"GRAPHITE_RS_TEST_UNSET_VARIABLE\"\n";
    std::fs::write(&path, format!("{}{mail}", rules_text(&sink, ""))).unwrap();
    let e = s.reload_from_file(T0 + 40).unwrap_err().to_string();
    assert!(e.contains("rules.toml:") && e.contains("GRAPHITE_RS_TEST_UNSET_VARIABLE"), "{e}");

    assert_eq!(s.dispatcher().config(), before);
    assert_eq!(s.round(T0 + 60), 2, "both old rules still run");
    let m = s.metrics(T0 + 60);
    assert_eq!((m.engine.reloads, m.engine.reload_failures), (0, 2));
    assert!(m.engine.last_reload_error.is_some_and(|e| e.contains("password_env")));
    s.dispatcher().shutdown(Duration::from_secs(5));
}

#[test]
fn a_reload_moves_alerts_to_their_new_receivers() {
    let Started { sink, _dir, path, s } = start("");
    let d = Arc::clone(s.dispatcher());
    s.round(T0);
    d.tick(T0);
    sink.wait_for(2);
    // cpu now goes to `pager` (another path on the same sink), disk stays with `hook`.
    let pager = format!(
        "\n[[receiver]]\nname = \"pager\"\ntype = \"webhook\"\nurl = \"{}\"\n",
        sink.url("/pager")
    );
    let text = format!("{}{pager}", rules_text(&sink, "")).replacen(
        "notify = [\"hook\"]",
        "notify = [\"pager\"]",
        1,
    );
    std::fs::write(&path, text).unwrap();
    s.reload_from_file(T0 + 30).unwrap();
    for t in (60..=600).step_by(60) {
        s.round(T0 + t);
        d.tick(T0 + t);
    }
    let hooks = sink.wait_for(3);
    assert!(!wait_for_more(&sink, 3), "{:?}", alertnames(&sink.hooks()));
    assert_eq!(hooks[2].path, "/pager");
    assert_eq!(alertnames(&hooks[2..]), vec![("cpu".into(), "firing".into())]);
    let names: Vec<String> = d.receivers().into_iter().map(|r| r.name).collect();
    assert_eq!(names, vec!["hook", "pager"]);
    d.shutdown(Duration::from_secs(5));
}

/// Serves the service's page and API on 127.0.0.1:0 on a runtime thread of its own.
fn serve(s: &Arc<AlertService>) -> SocketAddr {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    listener.set_nonblocking(true).unwrap();
    let addr = listener.local_addr().unwrap();
    let app = alert::api::router(s.api_state());
    std::thread::spawn(move || {
        let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
        rt.block_on(async move {
            let listener = tokio::net::TcpListener::from_std(listener).unwrap();
            let _ = axum::serve(listener, app).await;
        });
    });
    addr
}

fn request(addr: SocketAddr, method: &str, path: &str) -> (u16, serde_json::Value) {
    let agent: ureq::Agent = ureq::Agent::config_builder()
        .http_status_as_error(false)
        .timeout_global(Some(Duration::from_secs(10)))
        .build()
        .into();
    let url = format!("http://{addr}{path}");
    let mut r = match method {
        "POST" => agent.post(&url).send("").unwrap(),
        _ => agent.get(&url).call().unwrap(),
    };
    let body = r.body_mut().read_to_string().unwrap();
    (r.status().as_u16(), serde_json::from_str(&body).unwrap_or(serde_json::Value::String(body)))
}

#[test]
fn post_reload_answers_200_or_400_and_metrics_are_json() {
    let Started { sink, _dir, path, s } = start("");
    s.round(T0);
    let addr = serve(&s);

    let (status, body) = request(addr, "GET", "/api/metrics");
    assert_eq!(status, 200);
    assert_eq!(body["rounds"], 1);
    assert_eq!(body["rule_evaluations"], 2);
    assert_eq!(body["instances"]["firing"], 2);
    assert_eq!(body["receivers"]["hook"]["sent"], 0);

    std::fs::write(&path, rules_text(&sink, "").replace("crit = 80", "crit = 80\nnope = 1"))
        .unwrap();
    let (status, body) = request(addr, "POST", "/-/reload");
    assert_eq!(status, 400);
    assert!(body["error"].as_str().unwrap().contains("rules.toml:10: rule `cpu`"), "{body}");
    std::fs::write(&path, rules_text(&sink, "").replace("name = \"disk\"", "name = \"disk2\""))
        .unwrap();
    let (status, body) = request(addr, "POST", "/-/reload");
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["added"], serde_json::json!(["disk2"]));
    assert_eq!(body["removed"], serde_json::json!(["disk"]));
    let (_, body) = request(addr, "GET", "/api/metrics");
    assert_eq!((body["reloads"].as_u64(), body["reload_failures"].as_u64()), (Some(1), Some(1)));
    s.dispatcher().shutdown(Duration::from_secs(5));
}

#[test]
fn self_metrics_reach_carbon_as_plaintext_lines() {
    let carbon = TcpListener::bind("127.0.0.1:0").unwrap();
    let extra = format!(
        "\n[self_metrics]\ncarbon = \"{}\"\nprefix = \"alert.test\"\ninterval = \"10s\"\n",
        carbon.local_addr().unwrap()
    );
    let Started { sink: _sink, _dir, s, .. } = start(&extra);
    s.round(T0);
    s.dispatcher().tick(T0);
    assert!(wait_until(|| s.dispatcher().receivers()[0].sent == 2), "both groups delivered");

    let sent = s.send_self_metrics(T0 + 5).unwrap();
    let (conn, _) = carbon.accept().unwrap();
    conn.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    let mut reader = BufReader::new(conn);
    let mut read = |n: usize| -> Vec<String> {
        (0..n)
            .map(|_| {
                let mut line = String::new();
                reader.read_line(&mut line).unwrap();
                line
            })
            .collect()
    };
    let first = read(sent);
    for expected in [
        format!("alert.test.rounds 1 {}\n", T0 + 5),
        format!("alert.test.rule_evaluations 2 {}\n", T0 + 5),
        format!("alert.test.evaluation_errors 0 {}\n", T0 + 5),
        format!("alert.test.instances.firing 2 {}\n", T0 + 5),
        format!("alert.test.receivers.hook.sent 2 {}\n", T0 + 5),
        format!("alert.test.receivers.hook.queued 0 {}\n", T0 + 5),
    ] {
        assert!(first.contains(&expected), "{expected:?} not in {first:?}");
    }
    assert!(first.iter().any(|l| l.starts_with("alert.test.round_duration_ms ")), "{first:?}");

    // The next interval counts only what happened in it, on the same connection.
    s.round(T0 + 60);
    let sent = s.send_self_metrics(T0 + 65).unwrap();
    let second = read(sent);
    assert!(second.contains(&format!("alert.test.rounds 1 {}\n", T0 + 65)), "{second:?}");
    assert!(second.contains(&format!("alert.test.receivers.hook.sent 0 {}\n", T0 + 65)));
    s.dispatcher().shutdown(Duration::from_secs(5));
}

#[test]
fn an_inhibited_instance_is_marked_in_the_api_and_on_the_page_and_not_told() {
    let inhibit = "\n[[inhibit]]\nsource_match = { alertname = \"cpu\" }\n\
                   target_match = { alertname = \"disk\" }\nequal = [\"name\"]\n";
    let Started { sink, _dir, s, .. } = start(inhibit);
    s.round(T0);
    assert_eq!(s.dispatcher().tick(T0), 1, "only cpu is told");
    assert_eq!(alertnames(&sink.wait_for(1)), vec![("cpu".into(), "firing".into())]);
    let addr = serve(&s);
    let (_, alerts) = request(addr, "GET", "/api/alerts");
    let by_rule =
        |name: &str| alerts.as_array().unwrap().iter().find(|a| a["rule"] == name).unwrap().clone();
    assert_eq!(by_rule("disk")["inhibited_by"], serde_json::json!([by_rule("cpu")["fingerprint"]]));
    assert_eq!(by_rule("cpu")["inhibited_by"], serde_json::json!([]));
    let (_, page) = request(addr, "GET", "/");
    let page = page.as_str().unwrap_or_default().to_owned();
    assert!(page.contains("<h2>Inhibited (1)</h2>"), "{page}");
    assert!(page.contains("<h2>Firing (1)</h2>"), "{page}");
    assert!(page.contains("inhibited by cpu {alertname=cpu, name=servers.a.cpu}"), "{page}");
    s.dispatcher().shutdown(Duration::from_secs(5));
}
