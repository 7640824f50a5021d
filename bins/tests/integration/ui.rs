//! The web UI served by `graphite-rs`: the dashboards JSON API over raw HTTP (including a
//! restart, to show dashboards are durable), and end-to-end runs in headless Chromium through
//! chromedriver (Debian's `chromium` and `chromium-driver`): browse the tree to a metric,
//! apply a function, save a dashboard, reload it, compare a chart with a golden PNG, and time
//! a 12-graph dashboard over 1,008 series; and, with `--alert-rules`, see a firing alert in the
//! Alerts tab, silence and acknowledge it there and expire the silence, checked over the API.
//!
//! Without chromium or chromedriver the browser test prints SKIP and passes, unless
//! `GRAPHITE_REQUIRE_REFERENCE=1`, when it fails. Regenerate the golden PNG with
//! `UPDATE_GOLDEN=1 cargo test -p bins --test integration ui::` (see `ui/README.md`).

use std::fs;
use std::io::Write;
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use fantoccini::{Client, ClientBuilder, Locator};
use serde_json::{Value, json};

use crate::support;

/// The golden screenshot of the chart of `golden.*` (see [`GOLDEN_URL`]).
const GOLDEN_PNG: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/data/ui_chart.png");
/// 2020-01-01 00:00 UTC, the start of the golden chart's fixed range.
const GOLDEN_FROM: i64 = 1_577_836_800;

/// A running server on loopback with its own root.
struct Server {
    child: Child,
    root: PathBuf,
    line: SocketAddr,
    http: SocketAddr,
}

impl Server {
    fn start(root: &Path) -> Server {
        Server::start_with(root, &[])
    }

    /// Starts it with `extra` arguments (such as `--alert-rules FILE`).
    fn start_with(root: &Path, extra: &[&std::ffi::OsStr]) -> Server {
        let (ready, log) = (root.join("ready"), root.join("server.log"));
        let _ = fs::remove_file(&ready);
        let mut child = support::graphite_rs(root, &ready, fs::File::create(&log).unwrap())
            .args(["--line-port", "0", "--udp-port", "off", "--pickle-port", "off"])
            .args(["--query-port", "off", "--http-port", "0", "--no-wal"])
            .args(extra)
            .spawn()
            .expect("start graphite-rs");
        let text = support::wait_ready(&mut child, &ready, &log);
        Server {
            line: support::ready_addr(&text, "line"),
            http: support::ready_addr(&text, "http"),
            child,
            root: root.to_path_buf(),
        }
    }

    fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.http)
    }

    fn request(&self, method: &str, target: &str, body: &str) -> (u16, String) {
        let headers = "Content-Type: application/json\r\n";
        support::http_request(self.http, method, target, headers, body)
    }

    fn json(&self, method: &str, target: &str, body: &str) -> (u16, Value) {
        let (status, text) = self.request(method, target, body);
        (status, serde_json::from_str(&text).unwrap_or(Value::Null))
    }

    fn send(&self, lines: &str) {
        TcpStream::connect(self.line).unwrap().write_all(lines.as_bytes()).unwrap();
    }

    /// Waits until `/render` of `target` over `from..until` has `count` series with a value.
    fn wait_series(&self, target: &str, range: &str, count: usize) {
        let deadline = Instant::now() + Duration::from_secs(120);
        loop {
            let (status, v) =
                self.json("GET", &format!("/render?format=json&target={target}&{range}"), "");
            let with_data = v.as_array().map_or(0, |a| {
                a.iter()
                    .filter(|s| {
                        s["datapoints"]
                            .as_array()
                            .is_some_and(|d| d.iter().any(|p| !p[0].is_null()))
                    })
                    .count()
            });
            if status == 200 && with_data >= count {
                return;
            }
            assert!(
                Instant::now() < deadline,
                "{target}: {with_data} of {count} series: {}",
                log_of(&self.root)
            );
            std::thread::sleep(Duration::from_millis(100));
        }
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn log_of(root: &Path) -> String {
    support::read_log(&root.join("server.log"))
}

/// A retention long enough for the golden chart's fixed 2020 range, and short small files
/// for the rest.
fn write_schemas(root: &Path) {
    fs::create_dir_all(root.join("conf")).unwrap();
    fs::write(
        root.join("conf/storage-schemas.conf"),
        "[golden]\npattern = ^golden\\.\nretentions = 1h:10y\n\n\
         [default]\npattern = .*\nretentions = 60s:1d\n",
    )
    .unwrap();
}

#[test]
fn dashboard_api_saves_renames_deletes_imports_and_survives_a_restart() {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(dir.path());

    // The page and its assets, all relative and local.
    let (status, page) = server.request("GET", "/", "");
    assert_eq!(status, 200);
    assert!(page.contains("src=\"ui/assets/app.js\""), "{page}");
    for asset in ["app.js", "app.css", "uPlot.iife.min.js", "uPlot.min.css"] {
        let (status, body) = server.request("GET", &format!("/ui/assets/{asset}"), "");
        assert_eq!(status, 200, "{asset}");
        assert!(!body.is_empty());
    }
    for own in ["/", "/ui/assets/app.js", "/ui/assets/app.css"] {
        let (_, body) = server.request("GET", own, "");
        assert!(!body.contains("http://") && !body.contains("https://"), "{own} links outside");
    }
    assert_eq!(server.request("GET", "/ui/assets/nope.js", "").0, 404);
    // The API still answers under the UI.
    assert_eq!(server.request("GET", "/version", "").0, 200);
    // Without --alert-rules the page's probe of the alert engine gets 404, so the Alerts tab
    // stays hidden (it starts hidden in the page).
    assert_eq!(server.request("GET", "/alerts/api/rules", "").0, 404);
    assert!(page.contains(r#"id="nav-alerts" hidden"#), "{page}");

    let (status, list) = server.json("GET", "/ui/api/dashboards", "");
    assert_eq!((status, list), (200, json!({"dashboards": []})));
    let ops = json!({"graphs": [{"title": "cpu", "targets": ["servers.$host.cpu"]}],
        "time": {"from": "-6h", "until": "now"},
        "variables": [{"name": "host", "query": "servers.*"}]});
    let (status, saved) = server.json("PUT", "/ui/api/dashboards/ops", &ops.to_string());
    assert_eq!(status, 200, "{saved}");
    assert_eq!(saved["name"], "ops");
    let (status, got) = server.json("GET", "/ui/api/dashboards/ops", "");
    assert_eq!(status, 200);
    assert_eq!(got["graphs"][0]["targets"], json!(["servers.$host.cpu"]));
    assert_eq!(got["variables"][0]["query"], "servers.*");
    assert_eq!(got["time"]["from"], "-6h");

    // Bad names, bodies and paths get 4xx, never a crash.
    for (method, path, body, want) in [
        ("GET", "/ui/api/dashboards/nope", "", 404),
        ("GET", "/ui/api/dashboards/..%2Fetc", "", 400),
        ("PUT", "/ui/api/dashboards/.hidden", "{}", 400),
        ("PUT", "/ui/api/dashboards/x", "{not json", 400),
        ("PUT", "/ui/api/dashboards/x", "[1,2]", 400),
        ("PUT", "/ui/api/dashboards/x", "{\"graphs\": 5}", 400),
        ("DELETE", "/ui/api/dashboards/nope", "", 404),
        ("POST", "/ui/api/dashboards/ops/rename", "{}", 400),
        ("POST", "/ui/api/dashboards/nope/rename", "{\"to\": \"b\"}", 404),
        ("POST", "/ui/api/dashboards/ops/rename", "{\"to\": \"../b\"}", 400),
        ("POST", "/ui/api/import", "3", 400),
        ("GET", "/ui/api/dashboards/%FF", "", 400),
    ] {
        let (status, body) = server.request(method, path, body);
        assert_eq!(status, want, "{method} {path}: {body}");
    }

    server.json("PUT", "/ui/api/dashboards/other", "{}");
    let (status, _) = server.json("POST", "/ui/api/dashboards/ops/rename", r#"{"to": "other"}"#);
    assert_eq!(status, 409);
    let (status, renamed) =
        server.json("POST", "/ui/api/dashboards/ops/rename", r#"{"to": "web ops"}"#);
    assert_eq!((status, &renamed["name"]), (200, &json!("web ops")));
    assert_eq!(server.request("DELETE", "/ui/api/dashboards/other", "").0, 204);

    // graphite-web's dashboard state, as /dashboard/load answers it.
    let state = json!({"state": {"name": "legacy", "timeConfig": {"type": "relative",
        "relativeStartQuantity": "2", "relativeStartUnits": "days",
        "relativeUntilQuantity": "", "relativeUntilUnits": "now"},
        "refreshConfig": {"enabled": false, "interval": 60000},
        "graphs": [["x", {"target": ["a.b", "sum(c.*)"], "title": "T"}, "/render?target=a.b"]]}});
    let (status, imported) = server.json("POST", "/ui/api/import", &state.to_string());
    assert_eq!(status, 200, "{imported}");
    assert_eq!(imported["time"]["from"], "-2days");
    assert_eq!(imported["graphs"][0]["targets"], json!(["a.b", "sum(c.*)"]));

    // Durable: a new server over the same root has them.
    drop(server);
    let server = Server::start(dir.path());
    let (_, list) = server.json("GET", "/ui/api/dashboards", "");
    assert_eq!(list, json!({"dashboards": ["legacy", "web ops"]}));
    let (_, got) = server.json("GET", "/ui/api/dashboards/web%20ops", "");
    assert_eq!(got["graphs"][0]["title"], "cpu");
}

// ---- the browser

/// chromedriver on a free loopback port, killed on drop.
struct Driver {
    child: Child,
    port: u16,
}

impl Drop for Driver {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn which(name: &str) -> Option<PathBuf> {
    std::env::var_os("PATH")?
        .to_str()?
        .split(':')
        .map(|d| Path::new(d).join(name))
        .find(|p| p.is_file())
}

/// The browser and its driver, or `None` after printing SKIP (a failure under
/// `GRAPHITE_REQUIRE_REFERENCE=1`).
fn browser_tools() -> Option<(PathBuf, PathBuf)> {
    let chromium = which("chromium").or_else(|| which("chromium-browser"));
    let driver = which("chromedriver");
    match (chromium, driver) {
        (Some(c), Some(d)) => Some((c, d)),
        _ => {
            let why =
                "chromium or chromedriver not on PATH (apt-get install chromium chromium-driver)";
            assert!(
                std::env::var("GRAPHITE_REQUIRE_REFERENCE").as_deref() != Ok("1"),
                "GRAPHITE_REQUIRE_REFERENCE=1 and {why}"
            );
            eprintln!("SKIP ui browser tests: {why}");
            None
        }
    }
}

fn start_driver(driver: &Path) -> Driver {
    let port = TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let child = Command::new(driver)
        .arg(format!("--port={port}"))
        // Chart axes show local time: UTC makes the golden image the same everywhere.
        .env("TZ", "UTC")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("start chromedriver");
    let deadline = Instant::now() + Duration::from_secs(30);
    while TcpStream::connect(("127.0.0.1", port)).is_err() {
        assert!(Instant::now() < deadline, "chromedriver did not listen");
        std::thread::sleep(Duration::from_millis(50));
    }
    Driver { child, port }
}

async fn connect(driver: &Driver, chromium: &Path) -> Client {
    let mut caps = serde_json::Map::new();
    caps.insert(
        "goog:chromeOptions".into(),
        json!({
            "binary": chromium,
            "args": ["--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                "--window-size=1280,900", "--force-device-scale-factor=1", "--hide-scrollbars",
                "--font-render-hinting=none", "--disable-extensions", "--no-first-run"]
        }),
    );
    let connector = hyper_util::client::legacy::connect::HttpConnector::new();
    ClientBuilder::new(connector)
        .capabilities(caps)
        .connect(&format!("http://127.0.0.1:{}", driver.port))
        .await
        .expect("a chromium session")
}

/// Waits until `script` (a JS expression) is truthy, failing after 30 s.
async fn wait_js(c: &Client, script: &str) -> Value {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let v = c.execute(&format!("return ({script});"), vec![]).await.expect("execute");
        if !(v.is_null() || v == json!(false) || v == json!("") || v == json!(0)) {
            return v;
        }
        assert!(Instant::now() < deadline, "timed out waiting for {script}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

async fn click(c: &Client, css: &str) {
    let e = c.wait().at_most(Duration::from_secs(30)).for_element(Locator::Css(css)).await;
    e.unwrap_or_else(|err| panic!("no {css}: {err}")).click().await.expect("click");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn browser_browses_composes_saves_reloads_and_draws_the_golden_chart() {
    let Some((chromium, driver_bin)) = browser_tools() else { return };
    let dir = tempfile::tempdir().unwrap();
    write_schemas(dir.path());
    let server = Server::start(dir.path());

    // Known data: three hosts' cpu now; a golden pair at fixed 2020 hours; 1,008 perf series.
    let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_secs()
        as i64;
    let now = now - now % 60;
    let mut lines = String::new();
    for (h, host) in ["web1", "web2", "db1"].iter().enumerate() {
        for i in 0..60 {
            let v = (i % 10) + h as i64;
            lines.push_str(&format!("servers.{host}.cpu {v} {}\n", now - 3600 + i * 60));
        }
    }
    for i in 0..24 {
        let t = GOLDEN_FROM + i * 3600;
        let sine = ((i as f64) * std::f64::consts::PI / 6.0).sin() * 10.0;
        lines.push_str(&format!("golden.sine {sine:.3} {t}\ngolden.ramp {} {t}\n", i));
    }
    for g in 0..12 {
        for s in 0..84 {
            for i in 0..60 {
                let v = (g * 7 + s + i) % 50;
                lines.push_str(&format!("perf.g{g}.s{s} {v} {}\n", now - 3600 + i * 60));
            }
        }
    }
    server.send(&lines);
    server.wait_series("servers.*.cpu", "from=-2h", 3);
    server.wait_series("golden.*", &format!("from={GOLDEN_FROM}&until={}", GOLDEN_FROM + 86400), 2);
    server.wait_series("perf.*.*", "from=-2h", 12 * 84);

    let driver = start_driver(&driver_bin);
    let c = connect(&driver, &chromium).await;
    c.set_window_size(1280, 900).await.expect("window size");

    // First paint of the page, from the Performance API.
    c.goto(&server.url("/")).await.expect("open /");
    let paint =
        wait_js(&c, "(performance.getEntriesByName('first-contentful-paint')[0] || {}).startTime")
            .await;
    let nav = c
        .execute(
            "const n = performance.getEntriesByType('navigation')[0]; \
             return [n.responseEnd, n.domContentLoadedEventEnd, n.loadEventEnd];",
            vec![],
        )
        .await
        .unwrap();
    println!("ui first-contentful-paint: {paint} ms (responseEnd, DOMContentLoaded, load: {nav})");

    // No alert engine here: the probe has run and the Alerts tab stays hidden.
    wait_js(&c, "document.body.dataset.alertsProbe === 'done'").await;
    let tab = c.execute("return document.getElementById('nav-alerts').hidden;", vec![]).await;
    assert_eq!(tab.unwrap(), json!(true), "the Alerts tab shows without an alert engine");

    // Browse the tree to servers.web1.cpu and pick it.
    click(&c, "li[data-path='servers'] > .node").await;
    click(&c, "li[data-path='servers.web1'] > .node").await;
    click(&c, "li[data-path='servers.web1.cpu'] > .node").await;
    wait_js(&c, "document.querySelector('#targets input.target')?.value === 'servers.web1.cpu'")
        .await;
    wait_js(&c, "document.getElementById('composer-chart').dataset.state === 'done'").await;

    // Search finds it too.
    let search = c.find(Locator::Id("search")).await.unwrap();
    search.send_keys("web2.cp").await.unwrap();
    wait_js(&c, "document.querySelector(\"#search-results li[data-path='servers.web2.cpu']\")")
        .await;
    search.clear().await.unwrap();

    // Apply scale(…, 10) through the function form built from /functions.
    click(&c, "#targets button.fn").await;
    let filter = c.wait().for_element(Locator::Id("fn-filter")).await.unwrap();
    filter.send_keys("scale").await.unwrap();
    wait_js(&c, "document.getElementById('fn-select').value === 'scale'").await;
    let factor = c.wait().for_element(Locator::Css("#fn-params [data-name='factor']")).await;
    factor.unwrap().send_keys("10").await.unwrap();
    click(&c, "#fn-apply").await;
    wait_js(
        &c,
        "document.querySelector('#targets input.target')?.value === 'scale(servers.web1.cpu, 10)'",
    )
    .await;
    wait_js(&c, "document.getElementById('composer-chart').dataset.state === 'done'").await;
    let legend = c.find(Locator::Css("#composer-chart .u-legend")).await.unwrap();
    let legend = legend.text().await.unwrap();
    assert!(legend.contains("scale(servers.web1.cpu,10)"), "legend: {legend}");

    // Save it to a new dashboard, open it, reload, and check what is shown.
    c.find(Locator::Id("graph-title")).await.unwrap().send_keys("CPU x10").await.unwrap();
    c.find(Locator::Id("save-dashboard")).await.unwrap().send_keys("ops").await.unwrap();
    click(&c, "#save-graph-button").await;
    click(&c, "#open-saved").await;
    wait_js(&c, "document.body.dataset.dashReady === '1'").await;
    c.refresh().await.unwrap();
    wait_js(&c, "document.body.dataset.dashReady === '1'").await;
    let shown = c
        .execute(
            "return [location.hash, document.getElementById('dash-select').value, \
             [...document.querySelectorAll('.cell h4 span')].map(e => e.textContent), \
             [...document.querySelectorAll('.cell .chart')].map(e => e.dataset.state + ':' + e.dataset.series), \
             document.querySelector('.cell .u-legend')?.textContent];",
            vec![],
        )
        .await
        .unwrap();
    assert!(shown[0].as_str().unwrap().starts_with("#/dash/ops"), "{shown}");
    assert_eq!(shown[1], "ops");
    assert_eq!(shown[2], json!(["CPU x10"]));
    assert_eq!(shown[3], json!(["done:1"]));
    assert!(shown[4].as_str().unwrap().contains("scale(servers.web1.cpu,10)"), "{shown}");
    let (_, saved) = server.json("GET", "/ui/api/dashboards/ops", "");
    assert_eq!(saved["graphs"][0]["targets"], json!(["scale(servers.web1.cpu, 10)"]));

    // The golden chart: known data over a fixed range, compared pixel by pixel.
    let golden_url = server.url(&format!(
        "/#/graph?target=golden.sine&target=golden.ramp&from={GOLDEN_FROM}&until={}",
        GOLDEN_FROM + 86400
    ));
    // Through about:blank, so each page below is a fresh load, not a hash change.
    c.goto("about:blank").await.unwrap();
    c.goto(&golden_url).await.unwrap();
    wait_js(&c, "document.getElementById('composer-chart').dataset.series === '2'").await;
    let chart = c.find(Locator::Id("composer-chart")).await.unwrap();
    let shot = chart.screenshot().await.expect("element screenshot");
    compare_golden(&shot, dir.path());

    // A dashboard of 12 graphs over 1,008 series, timed in the browser.
    let graphs: Vec<Value> = (0..12)
        .map(|g| json!({"title": format!("group {g}"), "targets": [format!("perf.g{g}.*")]}))
        .collect();
    let (status, _) = server.json(
        "PUT",
        "/ui/api/dashboards/perf",
        &json!({"graphs": graphs, "time": {"from": "-2h", "until": "now"}}).to_string(),
    );
    assert_eq!(status, 200);
    c.goto("about:blank").await.unwrap();
    let started = Instant::now();
    c.goto(&server.url("/#/dash/perf")).await.unwrap();
    wait_js(&c, "document.body.dataset.dashReady === '1'").await;
    let wall = started.elapsed();
    let figures = c
        .execute(
            "return [window.uiDashboardLoad, \
             [...document.querySelectorAll('.cell .chart')].reduce((n, e) => n + Number(e.dataset.series || 0), 0)];",
            vec![],
        )
        .await
        .unwrap();
    assert_eq!(figures[1], json!(1008), "{figures}");
    println!(
        "ui dashboard 12 graphs / {} series: ready {:.0} ms after navigation start \
         (grid render {:.0} ms); webdriver wall time {} ms",
        figures[1],
        figures[0]["readyAt"].as_f64().unwrap_or(f64::NAN),
        figures[0]["ms"].as_f64().unwrap_or(f64::NAN),
        wall.as_millis()
    );

    c.close().await.unwrap();
}

/// A rule that fires (critical) on `test.alert.web01.cpu` at 95 and stays normal on web02 at
/// 10, evaluated every second over the server's own store. Its receiver runs `/bin/true`: an
/// alert can be acknowledged only when some receiver hears of it.
const ALERT_RULES: &str = r#"
[defaults]
source = "local"
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
labels = { host = "{node:2}" }
annotations = { summary = "{host} cpu at {value}" }
notify = ["null"]

[[receiver]]
name = "null"
type = "command"
command = ["/bin/true"]

[route]
group_by = ["alertname"]
group_wait = "0s"
"#;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn browser_shows_alerts_and_silences_acknowledges_and_expires_through_the_ui() {
    let Some((chromium, driver_bin)) = browser_tools() else { return };
    let dir = tempfile::tempdir().unwrap();
    let rules = dir.path().join("rules.toml");
    fs::write(&rules, ALERT_RULES).unwrap();
    let server = Server::start_with(dir.path(), &["--alert-rules".as_ref(), rules.as_os_str()]);
    let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_secs();
    let mut lines = String::new();
    for (host, value) in [("web01", 95), ("web02", 10)] {
        for back in [90, 30] {
            lines.push_str(&format!("test.alert.{host}.cpu {value} {}\n", now - back));
        }
    }
    server.send(&lines);

    // The engine fires within a few rounds of a second.
    let deadline = Instant::now() + Duration::from_secs(60);
    let firing = loop {
        let (_, alerts) = server.json("GET", "/alerts/api/alerts", "");
        let hit = alerts.as_array().and_then(|a| {
            a.iter().find(|a| a["status"] == "firing" && a["labels"]["host"] == "web01").cloned()
        });
        if let Some(a) = hit.filter(|a| a["groups"].as_array().is_some_and(|g| !g.is_empty())) {
            break a;
        }
        assert!(Instant::now() < deadline, "no firing alert: {alerts}\n{}", log_of(dir.path()));
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    let fp = firing["fingerprint"].as_str().unwrap().to_owned();
    let row = format!("#instances tr[data-fingerprint='{fp}']");

    let driver = start_driver(&driver_bin);
    let c = connect(&driver, &chromium).await;
    c.goto(&server.url("/#/alerts")).await.expect("open the alerts view");
    wait_js(&c, "!document.getElementById('nav-alerts').hidden").await;
    wait_js(&c, &format!("document.querySelector(\"{row}[data-status='firing']\")")).await;
    let shown = c
        .execute(
            &format!(
                "const r = document.querySelector(\"{row}\"); \
                 return [r.querySelector('.rule').textContent, r.querySelector('.labels').textContent, \
                 r.querySelector('.badge').textContent, getComputedStyle(r.querySelector('.badge')).backgroundColor, \
                 r.querySelector('.severity').textContent, r.querySelector('.value').textContent, \
                 document.querySelector(\"#rules tr[data-rule='cpu_high']\")?.textContent, \
                 document.querySelectorAll('#instances tbody tr').length];"
            ),
            vec![],
        )
        .await
        .unwrap();
    assert_eq!(shown[0], "cpu_high", "{shown}");
    assert!(shown[1].as_str().unwrap().contains("host=web01"), "{shown}");
    assert_eq!(shown[2], "firing");
    assert_eq!(shown[3], "rgb(217, 60, 60)", "critical firing is red");
    assert_eq!((&shown[4], &shown[5]), (&json!("critical"), &json!("95")), "{shown}");
    let rule = shown[6].as_str().unwrap();
    assert!(rule.contains("test.alert.*.cpu") && rule.contains("ago"), "rule row: {rule}");
    assert_eq!(shown[7], 1, "the normal web02 instance is hidden: {shown}");

    // Silence it: the form comes prefilled from its labels.
    click(&c, &format!("{row} button.silence")).await;
    wait_js(&c, "document.getElementById('silence-dialog').open").await;
    let matchers = c
        .execute(
            "return [...document.querySelectorAll('#silence-matchers tbody tr')].map(r => \
             [r.querySelector('.m-on').checked, r.querySelector('.m-name').value, \
              r.querySelector('.m-op').value, r.querySelector('.m-value').value]);",
            vec![],
        )
        .await
        .unwrap();
    assert!(
        matchers.as_array().unwrap().contains(&json!([true, "host", "=", "web01"])),
        "{matchers}"
    );
    assert!(
        matchers.as_array().unwrap().contains(&json!([true, "alertname", "=", "cpu_high"])),
        "{matchers}"
    );
    let duration = c.find(Locator::Id("silence-duration")).await.unwrap();
    duration.clear().await.unwrap();
    duration.send_keys("1h").await.unwrap();
    c.find(Locator::Id("silence-author")).await.unwrap().send_keys("alice").await.unwrap();
    c.find(Locator::Id("silence-comment")).await.unwrap().send_keys("deploy").await.unwrap();
    click(&c, "#silence-submit").await;
    wait_js(&c, "!document.getElementById('silence-dialog').open").await;
    let (status, silences) = server.json("GET", "/alerts/api/silences", "");
    assert_eq!(status, 200);
    let silence = silences.as_array().unwrap().first().cloned().unwrap_or_default();
    assert_eq!(silences.as_array().unwrap().len(), 1, "{silences}");
    assert_eq!((&silence["created_by"], &silence["comment"]), (&json!("alice"), &json!("deploy")));
    assert_eq!(silence["state"], "active");
    assert_eq!(silence["ends_at"].as_i64().unwrap() - silence["starts_at"].as_i64().unwrap(), 3600);
    let sent = silence["matchers"].as_array().unwrap();
    assert!(sent.contains(&json!({"name": "host", "op": "=", "value": "web01"})), "{silence}");
    let id = silence["id"].as_str().unwrap().to_owned();
    wait_js(&c, &format!("document.querySelector(\"{row}.silenced\")")).await;
    wait_js(
        &c,
        &format!("document.querySelector(\"#silences tr[data-id='{id}'][data-state='active']\")"),
    )
    .await;

    // Acknowledge it.
    click(&c, &format!("{row} button.ack")).await;
    wait_js(&c, "document.getElementById('ack-dialog').open").await;
    let by = c.find(Locator::Id("ack-by")).await.unwrap();
    by.clear().await.unwrap();
    by.send_keys("bob").await.unwrap();
    c.find(Locator::Id("ack-comment")).await.unwrap().send_keys("on it").await.unwrap();
    c.find(Locator::Id("ack-expires")).await.unwrap().send_keys("30m").await.unwrap();
    click(&c, "#ack-submit").await;
    wait_js(&c, "!document.getElementById('ack-dialog').open").await;
    let (_, alerts) = server.json("GET", "/alerts/api/alerts", "");
    let ack = alerts.as_array().unwrap().iter().find(|a| a["fingerprint"] == fp.as_str()).unwrap()
        ["ack"]
        .clone();
    assert_eq!(ack["target"], json!({"fingerprint": fp}), "{ack}");
    assert_eq!((&ack["by"], &ack["comment"]), (&json!("bob"), &json!("on it")), "{ack}");
    assert_eq!(ack["expires_at"].as_i64().unwrap() - ack["at"].as_i64().unwrap(), 1800);
    wait_js(
        &c,
        &format!(
            "document.querySelector(\"#acks tr[data-target='{fp}'] .by\")?.textContent === 'bob'"
        ),
    )
    .await;
    wait_js(&c, &format!("document.querySelector(\"{row}.acked\")")).await;

    // Expire the silence (two clicks: the first arms the button).
    let expire = format!("#silences tr[data-id='{id}'] button.expire");
    click(&c, &expire).await;
    click(&c, &expire).await;
    wait_js(&c, &format!("!document.querySelector(\"{row}.silenced\")")).await;
    let (_, silences) = server.json("GET", "/alerts/api/silences", "");
    assert_eq!(silences[0]["state"], "expired", "{silences}");

    c.close().await.unwrap();
}

/// Compares a screenshot with the golden PNG: at most 2% of pixels may differ by more than
/// 48 (summed over RGB), which absorbs anti-aliasing and font hinting but not a wrong line.
/// `UPDATE_GOLDEN=1` writes the screenshot as the new golden instead.
fn compare_golden(shot: &[u8], scratch: &Path) {
    if std::env::var("UPDATE_GOLDEN").as_deref() == Ok("1") {
        fs::create_dir_all(Path::new(GOLDEN_PNG).parent().unwrap()).unwrap();
        fs::write(GOLDEN_PNG, shot).unwrap();
        eprintln!("wrote {GOLDEN_PNG}");
        return;
    }
    let golden = fs::read(GOLDEN_PNG).unwrap_or_else(|e| {
        panic!("{GOLDEN_PNG}: {e} (regenerate with UPDATE_GOLDEN=1)");
    });
    let (gw, gh, gpx) = decode_rgb(&golden);
    let (w, h, px) = decode_rgb(shot);
    let kept = scratch.join("ui_chart.actual.png");
    fs::write(&kept, shot).unwrap();
    assert_eq!((w, h), (gw, gh), "screenshot size differs from the golden ({})", kept.display());
    let differing = gpx
        .chunks_exact(3)
        .zip(px.chunks_exact(3))
        .filter(|(a, b)| {
            a.iter().zip(b.iter()).map(|(x, y)| x.abs_diff(*y) as u32).sum::<u32>() > 48
        })
        .count();
    let share = differing as f64 / (w as f64 * h as f64);
    println!("ui golden chart: {differing} of {} pixels differ ({:.3}%)", w * h, share * 100.0);
    if share > 0.02 {
        let keep = std::env::temp_dir().join("ui_chart.actual.png");
        let _ = fs::write(&keep, shot);
        panic!(
            "chart differs from {GOLDEN_PNG} in {:.2}% of pixels; actual: {}",
            share * 100.0,
            keep.display()
        );
    }
}

fn decode_rgb(png_bytes: &[u8]) -> (u32, u32, Vec<u8>) {
    let mut decoder = png::Decoder::new(png_bytes);
    decoder.set_transformations(png::Transformations::normalize_to_color8());
    let mut reader = decoder.read_info().expect("a PNG");
    let mut buf = vec![0; reader.output_buffer_size()];
    let info = reader.next_frame(&mut buf).expect("a PNG frame");
    let bytes = &buf[..info.buffer_size()];
    let rgb = match info.color_type {
        png::ColorType::Rgba => bytes.chunks_exact(4).flat_map(|p| [p[0], p[1], p[2]]).collect(),
        png::ColorType::Rgb => bytes.to_vec(),
        png::ColorType::Grayscale => bytes.iter().flat_map(|&g| [g, g, g]).collect(),
        png::ColorType::GrayscaleAlpha => {
            bytes.chunks_exact(2).flat_map(|p| [p[0], p[0], p[0]]).collect()
        }
        other => panic!("unexpected PNG colour type {other:?}"),
    };
    (info.width, info.height, rgb)
}
