//! The status page and JSON API over HTTP on 127.0.0.1:0, and the page in headless Chromium
//! driven over WebDriver (fantoccini + chromedriver): the firing instance must be on it.
//!
//! The browser test needs Debian's `chromium` and `chromium-driver`; without them it prints
//! why and passes, unless GRAPHITE_REQUIRE_REFERENCE=1, where it fails.

mod sinks;

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use alert::Dispatcher;
use alert::api::{self, AlertRow, ApiState, RoundRow, RuleRow, StatusSource, TransitionRow};
use alert::model::{Severity, Status};
use alert::notify::NotifyConfig;
use sinks::*;

/// A fixed engine view: one firing instance, one pending, one normal.
struct Fixed;

fn row(host: &str, status: Status, severity: Option<Severity>) -> AlertRow {
    let labels = labels(&[("alertname", "disk_full"), ("host", host)]);
    AlertRow {
        rule: "disk_full".into(),
        fingerprint: alert::model::fingerprint(&labels),
        labels,
        annotations: labels_of(&[("summary", &format!("{host} <disk> almost full"))]),
        status,
        severity,
        value: Some(97.5),
        since: T0,
        starts_at: Some(T0),
        last_eval: T0 + 60,
        detail: None,
    }
}

fn labels_of(pairs: &[(&str, &str)]) -> alert::model::Labels {
    labels(pairs)
}

impl StatusSource for Fixed {
    fn alerts(&self) -> Vec<AlertRow> {
        vec![
            row("web01", Status::Firing, Some(Severity::Critical)),
            row("web02", Status::Pending, Some(Severity::Warning)),
            row("web03", Status::Normal, None),
        ]
    }
    fn rules(&self) -> Vec<RuleRow> {
        vec![RuleRow {
            name: "disk_full".into(),
            kind: "graphite".into(),
            subject: "servers.*.disk.percent_used".into(),
            every: 60,
            for_seconds: 300,
            condition: "last > 90 (warn), > 95 (crit)".into(),
            last_eval: Some(T0 + 60),
            last_duration_ms: 1.5,
            last_error: None,
            counts: BTreeMap::from([("firing".into(), 1), ("pending".into(), 1)]),
            generator_url: "/render?target=servers.*.disk.percent_used&from=-1h".into(),
            notify: vec!["ops".into()],
        }]
    }
    fn history(&self, limit: usize) -> Vec<TransitionRow> {
        let t = TransitionRow {
            at: T0,
            rule: "disk_full".into(),
            labels: labels(&[("alertname", "disk_full"), ("host", "web01")]),
            from: Status::Pending,
            to: Status::Firing,
            severity: Some(Severity::Critical),
            value: Some(97.5),
        };
        vec![t; 3].into_iter().take(limit).collect()
    }
    fn last_round(&self) -> Option<RoundRow> {
        Some(RoundRow { at: T0 + 60, rules: 1, duration_ms: 2.0, errors: 0 })
    }
}

/// Serves the API over the fixed view on 127.0.0.1:0 on its own runtime thread; returns its
/// address.
fn serve(dispatcher: Arc<Dispatcher>) -> SocketAddr {
    serve_state(ApiState {
        source: Arc::new(Fixed),
        dispatcher,
        clock: Arc::new(|| T0 + 120),
        reload: None,
        eval: None,
    })
}

/// Serves `state` on 127.0.0.1:0 on its own runtime thread; returns its address.
fn serve_state(state: ApiState) -> SocketAddr {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    listener.set_nonblocking(true).unwrap();
    let addr = listener.local_addr().unwrap();
    std::thread::spawn(move || {
        let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
        rt.block_on(async move {
            let listener = tokio::net::TcpListener::from_std(listener).unwrap();
            let _ = axum::serve(listener, api::router(state)).await;
        });
    });
    addr
}

fn dispatcher() -> Arc<Dispatcher> {
    dispatcher_with("")
}

/// The dispatcher with `extra` added to its `[route]` section and after it.
fn dispatcher_with(extra: &str) -> Arc<Dispatcher> {
    let config: NotifyConfig = toml::from_str(&format!(
        r#"
        [[receiver]]
        name = "ops"
        type = "command"
        command = ["true"]

        [route]
        receiver = "ops"
        group_wait = "0s"
        {extra}
        "#,
    ))
    .unwrap();
    let d = Arc::new(Dispatcher::new(config).unwrap());
    let mut e = firing("disk_full", "web01", Severity::Critical, 97.5);
    e.labels = labels(&[("alertname", "disk_full"), ("host", "web01")]);
    d.ingest(&[e], T0);
    d
}

fn agent() -> ureq::Agent {
    ureq::Agent::config_builder()
        .http_status_as_error(false)
        .timeout_global(Some(Duration::from_secs(10)))
        .build()
        .into()
}

fn get(addr: SocketAddr, path: &str) -> (u16, String) {
    let mut r = agent().get(&format!("http://{addr}{path}")).call().unwrap();
    (r.status().as_u16(), r.body_mut().read_to_string().unwrap())
}

fn send(addr: SocketAddr, method: &str, path: &str, body: &str) -> (u16, serde_json::Value) {
    let url = format!("http://{addr}{path}");
    let mut r = match method {
        "POST" => agent().post(&url).header("Content-Type", "application/json").send(body).unwrap(),
        _ => agent().delete(&url).call().unwrap(),
    };
    let text = r.body_mut().read_to_string().unwrap();
    (r.status().as_u16(), serde_json::from_str(&text).unwrap())
}

#[test]
fn json_api_lists_and_changes_silences_and_acks() {
    let d = dispatcher();
    let addr = serve(Arc::clone(&d));

    let (status, text) = get(addr, "/api/alerts");
    assert_eq!(status, 200);
    let alerts: serde_json::Value = serde_json::from_str(&text).unwrap();
    assert_eq!(alerts.as_array().unwrap().len(), 3);
    assert_eq!(alerts[0]["status"], "firing");
    assert_eq!(alerts[0]["labels"]["host"], "web01");
    assert_eq!(alerts[0]["silenced_by"], serde_json::json!([]));
    assert_eq!(alerts[0]["groups"], serde_json::json!(["ops:{}"]));

    let (status, silence) = send(
        addr,
        "POST",
        "/api/silences",
        r#"{"matchers": ["host=web01"], "duration": "1h", "created_by": "alice", "comment": "disk swap"}"#,
    );
    assert_eq!(status, 200, "{silence}");
    assert_eq!(silence["state"], "active");
    assert_eq!(silence["ends_at"], T0 + 120 + 3600);
    let id = silence["id"].as_str().unwrap().to_owned();
    let (_, text) = get(addr, "/api/alerts");
    let alerts: serde_json::Value = serde_json::from_str(&text).unwrap();
    assert_eq!(alerts[0]["silenced_by"], serde_json::json!([id]));
    let (_, page) = get(addr, "/");
    assert!(page.contains("<h2>Silenced (1)</h2>"), "{page}");

    let (status, expired) = send(addr, "DELETE", &format!("/api/silences/{id}"), "");
    assert_eq!((status, expired["state"].as_str()), (200, Some("expired")));
    let (_, list) = get(addr, "/api/silences");
    assert!(list.contains("\"expired\""), "kept for the page: {list}");
    let (status, _) = send(addr, "DELETE", "/api/silences/nope", "");
    assert_eq!(status, 404);

    let fp = alerts[0]["fingerprint"].as_str().unwrap();
    let (status, ack) =
        send(addr, "POST", "/api/ack", &format!(r#"{{"fingerprint": "{fp}", "by": "bob"}}"#));
    assert_eq!(status, 200, "{ack}");
    assert_eq!(ack["expires_at"], T0 + 120 + 1200, "the route's 20 minute default");
    let (_, text) = get(addr, "/api/alerts");
    let alerts: serde_json::Value = serde_json::from_str(&text).unwrap();
    assert_eq!(alerts[0]["ack"]["by"], "bob");

    for (path, body, code) in [
        ("/api/ack", r#"{"fingerprint": "0123"}"#, 404),
        ("/api/ack", r#"{}"#, 400),
        ("/api/ack", r#"not json"#, 400),
        ("/api/silences", r#"{"matchers": ["host=~("], "duration": "1h"}"#, 400),
        ("/api/silences", r#"{"matchers": [".*"], "duration": "1h"}"#, 400),
        ("/api/silences", r#"{"matchers": ["host=~.*"], "duration": "1h"}"#, 400),
    ] {
        let (status, err) = send(addr, "POST", path, body);
        assert_eq!(status, code, "{path} {body}: {err}");
        assert!(err["error"].is_string());
    }
    let big = format!(
        r#"{{"matchers": ["a=b"], "duration": "1h", "comment": "{}"}}"#,
        "x".repeat(100_000)
    );
    let r = agent()
        .post(&format!("http://{addr}/api/silences"))
        .header("Content-Type", "application/json")
        .send(big.as_str())
        .unwrap();
    assert_eq!(r.status().as_u16(), 413);

    let (status, text) = get(addr, "/api/history?limit=2");
    assert_eq!(status, 200);
    assert_eq!(
        serde_json::from_str::<serde_json::Value>(&text).unwrap().as_array().unwrap().len(),
        2
    );
    assert_eq!(get(addr, "/api/history?limit=x").0, 400);
    let (_, text) = get(addr, "/api/rules");
    assert!(text.contains("servers.*.disk.percent_used"));
    let (_, text) = get(addr, "/api/receivers");
    assert!(text.contains("\"name\":\"ops\""));
    assert_eq!(get(addr, "/healthz"), (200, "ok\n".into()));
    d.shutdown(Duration::from_secs(5));
}

#[test]
fn the_page_escapes_and_links_the_png() {
    let d = dispatcher();
    let addr = serve(Arc::clone(&d));
    let (status, page) = get(addr, "/");
    assert_eq!(status, 200);
    assert!(page.contains("web01 &lt;disk&gt; almost full"));
    assert!(!page.contains("<disk>"));
    assert!(page.contains("format=png"));
    assert!(page.contains("<h2>Firing (1)</h2>"));
    assert!(page.contains("<h2>Pending (1)</h2>"));
    assert!(!page.contains("src=\"http"), "no external resources");
    d.shutdown(Duration::from_secs(5));
}

#[test]
fn muted_alerts_are_marked_in_the_api_and_listed_on_the_page() {
    // An interval with no fields holds at every instant.
    let d = dispatcher_with(
        "mute_time_intervals = [\"always\"]\n[[time_interval]]\nname = \"always\"\n",
    );
    let addr = serve(Arc::clone(&d));
    let (_, text) = get(addr, "/api/alerts");
    let alerts: serde_json::Value = serde_json::from_str(&text).unwrap();
    assert_eq!(alerts[0]["muted_by"], serde_json::json!(["always"]));
    assert_eq!(alerts[1]["muted_by"], serde_json::json!([]), "pending: in no group");
    let (_, page) = get(addr, "/");
    assert!(page.contains("<h2>Muted (1)</h2>"), "{page}");
    assert!(page.contains("<h2>Firing (0)</h2>"), "{page}");
    assert!(page.contains("muted by always"), "{page}");
    assert_eq!(d.tick(T0 + 120), 0, "held, not sent");
    d.shutdown(Duration::from_secs(5));
}

#[test]
fn post_eval_answers_the_instances_without_storing_or_notifying() {
    let mut m = render::MemorySource::new();
    m.insert("servers.web01.cpu", 0, 60, vec![Some(97.0); 30]);
    m.insert("servers.web02.cpu", 0, 60, vec![Some(10.0); 30]);
    let text = "[defaults]\nlag = \"0s\"\nwindow = \"5m\"\n";
    let rules = alert::rules::parse(text, std::path::Path::new("rules.toml")).unwrap();
    let config = alert::engine::EngineConfig { workers: 1, ..Default::default() };
    let service = Arc::new(
        alert::AlertService::new(rules, alert::source::Sources::local(Arc::new(m)), None, config)
            .unwrap(),
    );
    let mut state = service.api_state();
    state.clock = Arc::new(|| 1200);
    let addr = serve_state(state);

    // A target with a reducer, an operator and a threshold.
    let (status, report) = send(
        addr,
        "POST",
        "/api/eval",
        r#"{"target": "servers.*.cpu", "reducer": "avg", "op": ">", "crit": 90}"#,
    );
    assert_eq!(status, 200, "{report}");
    assert_eq!(report["rule"], "eval");
    assert_eq!(report["at"], 1200);
    assert_eq!(report["error"], serde_json::Value::Null);
    let got: Vec<(String, String, serde_json::Value)> = report["instances"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| {
            (
                i["labels"]["name"].as_str().unwrap_or("").to_owned(),
                i["status"].to_string(),
                i["value"].clone(),
            )
        })
        .collect();
    assert_eq!(
        got,
        vec![
            ("servers.web01.cpu".into(), "\"firing\"".into(), serde_json::json!(97.0)),
            ("servers.web02.cpu".into(), "\"normal\"".into(), serde_json::json!(10.0)),
        ]
    );
    assert_eq!(report["instances"][0]["severity"], "critical");
    assert_eq!(report["instances"][0]["labels"]["alertname"], "eval");

    // A rule as in the rules file, wrapped in "rule": its `for` makes the instance pending.
    let (status, report) = send(
        addr,
        "POST",
        "/api/eval",
        r#"{"rule": {"name": "cpu_hot", "target": "servers.web01.cpu", "op": ">", "warn": 50, "for": "5m", "labels": {"host": "{node:1}"}}}"#,
    );
    assert_eq!(status, 200, "{report}");
    let instances = report["instances"].as_array().unwrap();
    assert_eq!(instances.len(), 1);
    assert_eq!(instances[0]["status"], "pending");
    assert_eq!(instances[0]["labels"]["host"], "web01");
    assert_eq!(instances[0]["labels"]["alertname"], "cpu_hot");

    // Nothing was stored and nothing routed.
    let (_, alerts) = get(addr, "/api/alerts");
    assert_eq!(alerts, "[]");
    assert_eq!(service.dispatcher().tick(1200), 0);

    for (body, needle) in [
        (r#"{"target": "servers.*.cpu", "op": ">", "tresh": 5}"#, "unknown field `tresh`"),
        (r#"{"target": "servers.*.cpu", "op": "=>", "crit": 5}"#, "op"),
        (r#"{"target": "servers.*.cpu", "crit": null}"#, "`crit`: null"),
        (r#"{"reduce": "avg", "reducer": "max", "target": "a"}"#, "not both"),
        (r#"[1, 2]"#, "JSON object"),
        (r#"not json"#, "not JSON"),
    ] {
        let (status, err) = send(addr, "POST", "/api/eval", body);
        assert_eq!(status, 400, "{body}: {err}");
        let message = err["error"].as_str().unwrap();
        assert!(message.contains(needle), "{body}: {message}");
    }
    let (_, err) = send(addr, "POST", "/api/eval", r#"{"target": "a", "tresh": 5}"#);
    assert!(err["error"].as_str().unwrap().starts_with("POST /api/eval: rule `eval`: "), "{err}");
    service.stop(Duration::from_secs(5)).unwrap();
}

/// Whether the browser test can run here; prints why not.
fn chromium() -> Option<(String, String)> {
    let find = |names: &[&str]| {
        names.iter().map(|n| format!("/usr/bin/{n}")).find(|p| std::path::Path::new(p).exists())
    };
    match (find(&["chromium", "chromium-browser"]), find(&["chromedriver"])) {
        (Some(browser), Some(driver)) => Some((browser, driver)),
        _ => {
            let why = "chromium and chromedriver are not installed (apt-get install chromium chromium-driver)";
            assert!(
                std::env::var("GRAPHITE_REQUIRE_REFERENCE").as_deref() != Ok("1"),
                "GRAPHITE_REQUIRE_REFERENCE=1 but {why}"
            );
            eprintln!("skipping the headless browser test: {why}");
            None
        }
    }
}

/// A chromedriver child, killed on drop.
struct Driver(std::process::Child);

impl Drop for Driver {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

#[test]
fn headless_chromium_shows_the_firing_instance() {
    let Some((browser, driver)) = chromium() else { return };
    let d = dispatcher();
    let addr = serve(Arc::clone(&d));
    let port = closed_port();
    let _driver = Driver(
        std::process::Command::new(&driver)
            .arg(format!("--port={port}"))
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .unwrap(),
    );
    assert!(
        wait_until(|| std::net::TcpStream::connect(("127.0.0.1", port)).is_ok()),
        "chromedriver did not start"
    );
    let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
    rt.block_on(async move {
        let mut caps = serde_json::Map::new();
        caps.insert(
            "goog:chromeOptions".into(),
            serde_json::json!({
                "binary": browser,
                "args": ["--headless", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage"],
            }),
        );
        let client = fantoccini::ClientBuilder::new(
            hyper_util::client::legacy::connect::HttpConnector::new(),
        )
        .capabilities(caps)
        .connect(&format!("http://127.0.0.1:{port}"))
        .await
        .unwrap();
        client.goto(&format!("http://{addr}/")).await.unwrap();
        assert_eq!(client.title().await.unwrap(), "Alerts: 1 firing");
        let rows =
            client.find_all(fantoccini::Locator::Css("table#firing tr.alert")).await.unwrap();
        assert_eq!(rows.len(), 1);
        let text = rows[0].text().await.unwrap();
        assert!(text.contains("host=web01"), "{text}");
        assert!(text.contains("critical"), "{text}");
        assert!(text.contains("web01 <disk> almost full"), "{text}");
        let fp = rows[0].attr("data-fingerprint").await.unwrap().unwrap();
        assert_eq!(fp, row("web01", Status::Firing, None).fingerprint);
        let pending =
            client.find_all(fantoccini::Locator::Css("table#pending tr.alert")).await.unwrap();
        assert_eq!(pending.len(), 1);
        assert!(pending[0].text().await.unwrap().contains("web02"));
        // The link to the graph is there and points at the render PNG.
        let link = rows[0].find(fantoccini::Locator::LinkText("png")).await.unwrap();
        let href = link.attr("href").await.unwrap().unwrap();
        assert!(
            href.contains("/render?target=servers.*.disk.percent_used")
                && href.ends_with("format=png"),
            "{href}"
        );
        client.close().await.unwrap();
    });
    d.shutdown(Duration::from_secs(5));
}
