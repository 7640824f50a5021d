//! The HTTP API end to end, in process: a real server on a loopback port over an in-memory
//! source, real HTTP/1.1 requests, and graphite-web's answers for the same data (bodies
//! obtained from graphite-web 1.1.8's own view code where noted).

#[path = "support/server.rs"]
mod server;

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use render::MemorySource;
use render::events::EventStore;
use render::http::HttpConfig;
use server::{Reply, TestServer, get, request, serve};
use tokio_util::sync::CancellationToken;

const T0: i64 = 1_795_288_200;

fn source() -> MemorySource {
    let mut src = MemorySource::new();
    let v = |xs: &[f64]| xs.iter().map(|x| Some(*x)).collect::<Vec<_>>();
    src.insert("servers.web01.cpu", T0, 60, v(&[21.0, 16.0, 11.0, 6.0, 1.0]));
    src.insert("servers.web01.disk.used", T0, 60, v(&[1.0, 2.0, 3.0, 4.0, 5.0]));
    src.insert("servers.web02.cpu.user", T0, 60, v(&[2.0, 4.0, 6.0, 8.0, 10.0]));
    src.insert("servers.web02.load%2Bx", T0, 60, v(&[0.5; 5]));
    src.insert("disk.used;datacenter=dc1;rack=a1;server=web01", T0, 60, v(&[1.0; 5]));
    src.insert("disk.used;datacenter=dc1;rack=a2;server=web02", T0, 60, v(&[2.0; 5]));
    src.insert("cpu.load;datacenter=dc2;server=web03", T0, 60, v(&[3.0; 5]));
    src
}

fn start_with(config: HttpConfig, events: EventStore) -> TestServer {
    serve(source(), config, events)
}

fn start() -> TestServer {
    start_with(HttpConfig::default(), EventStore::in_memory())
}

impl Reply {
    /// The body as JSON. `1e9999` (how `/functions` writes an infinite default, valid JSON
    /// that serde_json refuses as out of range) is read as the largest float.
    fn json(&self) -> serde_json::Value {
        let text = self.text().replace("1e9999", "1.7976931348623157e308");
        serde_json::from_str(&text).unwrap_or_else(|e| panic!("not JSON ({e}): {}", self.text()))
    }
}

fn post_form(addr: SocketAddr, path: &str, form: &str) -> Reply {
    request(
        addr,
        "POST",
        path,
        &[("Content-Type", "application/x-www-form-urlencoded")],
        form.as_bytes(),
    )
}

#[test]
fn version_is_graphite_webs() {
    let s = start();
    for path in ["/version", "/version/"] {
        let r = get(s.addr, path);
        assert_eq!((r.status, r.text().as_str()), (200, "1.1.8\n"));
        assert_eq!(r.header("content-type"), Some("text/html; charset=utf-8"));
    }
}

#[test]
fn find_treejson_matches_graphite_web() {
    let s = start();
    // graphite-web's tree_json for the same nodes (wildcards on, then off).
    let want_wild = r#"[{"text": "*", "id": "servers.*.*", "allowChildren": 1, "expandable": 1, "leaf": 0}, {"text": "disk", "id": "servers.*.disk", "allowChildren": 1, "expandable": 1, "leaf": 0}, {"text": "cpu", "id": "servers.*.cpu", "allowChildren": 0, "expandable": 0, "leaf": 1}, {"text": "load+x", "id": "servers.*.load%2Bx", "allowChildren": 0, "expandable": 0, "leaf": 1}]"#;
    let r = get(s.addr, "/metrics/find?query=servers.*.*&wildcards=1");
    assert_eq!(r.status, 200);
    assert_eq!(r.text(), want_wild);
    assert_eq!(r.header("content-type"), Some("application/json"));
    assert_eq!(r.header("pragma"), Some("no-cache"));
    assert_eq!(r.header("cache-control"), Some("no-cache"));
    // Grafana: POST form with from/until.
    let r = post_form(s.addr, "/metrics/find", "query=servers.*&from=-6h&until=now");
    assert_eq!(
        r.text(),
        r#"[{"text": "web01", "id": "servers.web01", "allowChildren": 1, "expandable": 1, "leaf": 0}, {"text": "web02", "id": "servers.web02", "allowChildren": 1, "expandable": 1, "leaf": 0}]"#
    );
    let r = get(s.addr, "/metrics?query=servers.web01.*&leavesOnly=1");
    assert_eq!(
        r.text(),
        r#"[{"text": "cpu", "id": "servers.web01.cpu", "allowChildren": 0, "expandable": 0, "leaf": 1}]"#
    );
}

#[test]
fn find_other_formats_and_errors() {
    let s = start();
    let r = get(s.addr, "/metrics/find/?query=servers.web0*&format=completer&wildcards=1");
    assert_eq!(
        r.text(),
        r#"{"metrics": [{"path": "servers.web01.", "name": "web01", "is_leaf": "0"}, {"path": "servers.web02.", "name": "web02", "is_leaf": "0"}, {"name": "*"}]}"#
    );
    let r = get(s.addr, "/metrics/find?query=servers.*.*&format=nodelist&position=2");
    assert_eq!(r.text(), r#"{"nodes": ["cpu", "disk", "load%2Bx"]}"#);
    let r = get(s.addr, "/metrics/find?query=servers.web01.*&format=json");
    assert_eq!(
        r.text(),
        r#"[{"path": "servers.web01.cpu", "is_leaf": true, "intervals": []}, {"path": "servers.web01.disk", "is_leaf": false}]"#
    );
    let r = get(s.addr, "/metrics/find?query=a&format=json&jsonp=cb");
    assert_eq!((r.text().as_str(), r.header("content-type")), ("cb([])", Some("text/javascript")));
    let r = get(s.addr, "/metrics/find");
    assert_eq!(r.status, 400);
    assert_eq!(r.text(), "Invalid parameters (Missing required parameter 'query')");
    let r = get(s.addr, "/metrics/find?query=");
    assert_eq!(r.text(), "Invalid parameters (Required parameter 'query' is empty)");
    let r = get(s.addr, "/metrics/find?query=a&leavesOnly=x");
    assert_eq!(
        r.text(),
        "Invalid parameters (Invalid int value 'x' for param leavesOnly: invalid literal for int() with base 10: 'x')"
    );
    let r = get(s.addr, "/metrics/find?query=a&format=yaml");
    assert_eq!((r.status, r.text().as_str()), (400, "Invalid value for 'format' parameter"));
}

#[test]
fn expand_and_index() {
    let s = start();
    let r = get(s.addr, "/metrics/expand?query=servers.*.cpu&query=servers.web01.*");
    assert_eq!(
        r.text(),
        r#"{"results": ["servers.web01.cpu", "servers.web01.disk", "servers.web02.cpu"]}"#
    );
    let r = get(
        s.addr,
        "/metrics/expand/?query=servers.*.cpu&query=servers.web01.*&groupByExpr=1&leavesOnly=1",
    );
    assert_eq!(
        r.text(),
        r#"{"results": {"servers.*.cpu": ["servers.web01.cpu"], "servers.web01.*": ["servers.web01.cpu"]}}"#
    );
    let r = get(s.addr, "/metrics/index.json");
    assert_eq!(
        r.json(),
        serde_json::json!([
            "servers.web01.cpu",
            "servers.web01.disk.used",
            "servers.web02.cpu.user",
            "servers.web02.load%2Bx"
        ])
    );
}

#[test]
fn tags_endpoints() {
    let s = start();
    let r = get(s.addr, "/tags/autoComplete/tags?expr=datacenter%3Ddc1&tagPrefix=r");
    assert_eq!(r.text(), r#"["rack"]"#);
    let r = get(s.addr, "/tags/autoComplete/tags?tagPrefix=&limit=2");
    assert_eq!(r.text(), r#"["datacenter", "name"]"#);
    let r =
        get(s.addr, "/tags/autoComplete/values?tag=server&expr=datacenter%3Ddc1&valuePrefix=web");
    assert_eq!(r.text(), r#"["web01", "web02"]"#);
    let r = get(s.addr, "/tags/autoComplete/values");
    assert_eq!((r.status, r.text().as_str()), (400, r#"{"error": "no tag specified"}"#));
    let r = post_form(s.addr, "/tags/findSeries", "expr=name%3Ddisk.used&expr=rack%21%3Da2");
    assert_eq!(r.text(), r#"["disk.used;datacenter=dc1;rack=a1;server=web01"]"#);
    let r = get(s.addr, "/tags/findSeries?expr=rack%3D");
    assert_eq!(r.status, 400);
    assert!(
        r.text().contains("At least one tagspec must not match the empty string"),
        "{}",
        r.text()
    );
    let r = get(s.addr, "/tags");
    let tags: Vec<String> = r
        .json()
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["tag"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(tags, ["datacenter", "name", "rack", "server"]);
    let r = get(s.addr, "/tags/rack");
    let v = r.json();
    assert_eq!(v["tag"], "rack");
    assert_eq!(v["values"].as_array().unwrap().len(), 2);
    assert_eq!(v["values"][0]["value"], "a1");
    assert_eq!(v["values"][0]["count"], 1);
    assert_eq!(get(s.addr, "/tags/nosuchtag").text(), "null");
    // Registering and deleting series.
    assert_eq!(get(s.addr, "/tags/tagSeries?path=a.b;x=y").status, 405);
    let r = post_form(
        s.addr,
        "/tags/tagSeries",
        "path=disk.used%3Brack%3Da1%3Bdatacenter%3Ddc1%3Bserver%3Dweb09",
    );
    assert_eq!(r.text(), r#""disk.used;datacenter=dc1;rack=a1;server=web09""#);
    let r =
        post_form(s.addr, "/tags/tagMultiSeries", "path%5B%5D=a.b%3Bz%3D1&path%5B%5D=a.c%3By%3D2");
    assert_eq!(r.text(), r#"["a.b;z=1", "a.c;y=2"]"#);
    let r = post_form(s.addr, "/tags/delSeries", "path=a.b%3Bz%3D1");
    assert_eq!(r.text(), "true");
    assert_eq!(get(s.addr, "/tags/findSeries?expr=z%3D1").text(), "[]");
    let r = get(s.addr, "/tags/findSeries?expr=server%3Dweb09&pretty=1");
    assert_eq!(r.text(), "[\n  \"disk.used;datacenter=dc1;rack=a1;server=web09\"\n]");
}

#[test]
fn functions_catalogue_is_valid_json() {
    let s = start();
    let r = get(s.addr, "/functions");
    assert_eq!(r.status, 200);
    let all = r.json();
    assert!(all.is_object());
    let n = all.as_object().unwrap().len();
    assert_eq!(n, render::function::all().count());
    let r = get(s.addr, "/functions?grouped=true");
    assert!(r.json().is_object());
    let r = get(s.addr, "/functions?type=pie");
    assert_eq!(
        r.json()["average"],
        serde_json::json!({"name": "average", "function": "average(series)", "description": "The mean of the series' non-null values.", "module": "graphite.render.functions", "group": "Pie", "params": [{"name": "series", "type": "series", "required": true}]})
    );
    let r = get(s.addr, "/functions/noSuchFunction");
    assert_eq!(
        (r.status, r.text().as_str()),
        (404, r#"{"error": "Function not found: noSuchFunction"}"#)
    );
    if let Some(def) = render::function::all().next() {
        let r = get(s.addr, &format!("/functions/{}", def.name));
        assert_eq!(r.json()["function"], def.signature());
    }
    assert_eq!(request(s.addr, "POST", "/functions", &[], b"").status, 405);
}

#[test]
fn events_are_created_and_queried() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("events.jsonl");
    {
        let s = start_with(HttpConfig::default(), EventStore::open(&path).unwrap());
        let post = |body: &str| {
            request(
                s.addr,
                "POST",
                "/events/",
                &[("Content-Type", "application/json")],
                body.as_bytes(),
            )
        };
        let r = post(
            r#"{"what": "deploy", "tags": ["web", "deploy"], "when": 1795288200, "data": "v1"}"#,
        );
        assert_eq!((r.status, r.body.len()), (200, 0));
        assert_eq!(
            post(r#"{"what": "restart", "tags": "db web", "when": 1795288100.5}"#).status,
            200
        );
        let r = post(r#"{"what": "x", "tags": 5}"#);
        assert_eq!(r.status, 400);
        assert_eq!(r.text(), r#"{"error": "\"tags\" must be an array or space-separated string"}"#);
    }
    // A restart keeps them.
    let s = start_with(HttpConfig::default(), EventStore::open(&path).unwrap());
    let r = get(s.addr, "/events/get_data?from=1795288000&until=1795288300&tags=web");
    assert_eq!(
        r.text(),
        r#"[{"when": 1795288100, "what": "restart", "data": "", "tags": ["db", "web"], "id": 2}, {"when": 1795288200, "what": "deploy", "data": "v1", "tags": ["web", "deploy"], "id": 1}]"#
    );
    let r = get(s.addr, "/events/get_data?tags=web%20deploy&jsonp=f");
    assert!(r.text().starts_with("f([{\"when\": 1795288200"), "{}", r.text());
    let r = get(s.addr, "/events/get_dat?tags=db%20deploy&set=union");
    assert_eq!(r.json().as_array().unwrap().len(), 2);
    let r = request(s.addr, "GET", "/events/1/", &[("Accept", "application/json")], b"");
    assert_eq!(
        r.text(),
        r#"{"id": 1, "when": "2026-11-21T19:10:00Z", "what": "deploy", "data": "v1", "tags": ["web", "deploy"]}"#
    );
    let r = request(s.addr, "GET", "/events/9", &[("Accept", "application/json")], b"");
    assert_eq!(r.status, 404);
    assert_eq!(get(s.addr, "/events/").status, 200);
}

#[test]
fn render_checks_its_parameters_first() {
    let s = start();
    let r = get(s.addr, "/render?target=servers.web01.cpu&format=json&from=100&until=100");
    assert_eq!(
        (r.status, r.text().as_str()),
        (400, "Invalid parameters (Invalid empty time range)")
    );
    assert_eq!(r.header("content-type"), Some("text/html; charset=utf-8"));
    let r = get(s.addr, "/render?target=a&format=json&cacheTimeout=x");
    assert_eq!(r.text(), "Invalid parameters (invalid literal for int() with base 10: 'x')");
    let r = get(s.addr, "/render?target=a&graphType=bar");
    assert_eq!(
        r.text(),
        "Invalid parameters (Invalid graphType 'bar', must be one of ['line', 'pie'])"
    );
    let r = get(s.addr, "/render?target=a&format=json&xFilesFactor=abc");
    assert_eq!(r.text(), "Invalid parameters (could not convert string to float: 'abc')");
    // Images (drawn by render::image; tests/image_http.rs checks them further).
    for (query, content_type) in [
        ("", "image/png"),
        ("&format=svg", "image/svg+xml"),
        ("&format=pdf", "application/x-pdf"),
        ("&format=png", "image/png"),
    ] {
        let r = get(s.addr, &format!("/render?target=servers.web01.cpu{query}"));
        assert_eq!((r.status, r.header("content-type")), (200, Some(content_type)), "{query}");
    }
}

#[test]
fn cors_and_limits() {
    let s = start_with(
        HttpConfig {
            cors_origins: vec!["https://grafana.example".into()],
            max_body_bytes: 1000,
            ..HttpConfig::default()
        },
        EventStore::in_memory(),
    );
    let r = request(
        s.addr,
        "OPTIONS",
        "/render",
        &[
            ("Origin", "https://grafana.example"),
            ("Access-Control-Request-Method", "POST"),
            ("Access-Control-Request-Headers", "content-type,x-grafana-org-id"),
        ],
        b"",
    );
    assert_eq!(r.status, 204);
    assert_eq!(r.header("access-control-allow-origin"), Some("https://grafana.example"));
    assert_eq!(r.header("access-control-allow-headers"), Some("content-type,x-grafana-org-id"));
    let r = request(s.addr, "GET", "/version", &[("Origin", "https://grafana.example")], b"");
    assert_eq!(r.header("access-control-allow-origin"), Some("https://grafana.example"));
    let r = request(s.addr, "GET", "/version", &[("Origin", "https://evil.example")], b"");
    assert_eq!(r.header("access-control-allow-origin"), None);
    let big = format!("query={}", "a".repeat(2000));
    let r = post_form(s.addr, "/metrics/find", &big);
    assert_eq!(r.status, 413);
    assert_eq!(get(s.addr, "/nothing/here").status, 404);
    // The default allows any origin.
    let any = start();
    let r = request(any.addr, "GET", "/version", &[("Origin", "https://x.example")], b"");
    assert_eq!(r.header("access-control-allow-origin"), Some("*"));
}

/// `from`/`until` around the test series: `(T0 - 1, T0 + 299]` reads its five values.
const RANGE: &str = "from=1795288199&until=1795288499";

#[test]
fn render_json_as_grafana_posts_it() {
    let s = start();
    let r = post_form(
        s.addr,
        "/render",
        &format!("target=servers.web01.cpu&{RANGE}&format=json&maxDataPoints=500"),
    );
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(
        r.text(),
        r#"[{"target": "servers.web01.cpu", "tags": {"name": "servers.web01.cpu"}, "datapoints": [[21.0, 1795288200], [16.0, 1795288260], [11.0, 1795288320], [6.0, 1795288380], [1.0, 1795288440]]}]"#
    );
    assert_eq!(r.header("content-type"), Some("application/json"));
    assert_eq!(r.header("cache-control"), Some("max-age=60"));
    assert!(r.header("expires").is_some_and(|e| e.ends_with(" GMT")));
    // The query string and the form merge: targets from both, in order; the form's
    // `format` wins.
    let r = post_form(
        s.addr,
        &format!("/render?target=servers.web02.cpu.user&{RANGE}&format=csv"),
        "target=servers.web01.cpu&format=raw&cacheTimeout=0",
    );
    assert_eq!(
        r.text(),
        "servers.web02.cpu.user,1795288200,1795288500,60|2.0,4.0,6.0,8.0,10.0\n\
         servers.web01.cpu,1795288200,1795288500,60|21.0,16.0,11.0,6.0,1.0\n"
    );
    assert_eq!(
        r.header("cache-control"),
        Some("max-age=0, no-cache, no-store, must-revalidate, private")
    );
    // maxDataPoints as graphite-reference §3.3's worked example (five points, max 2: three
    // values a point, one value dropped by the nudge; the last value here is 1.0, not null).
    let r = get(
        s.addr,
        &format!("/render?target=servers.web01.cpu&{RANGE}&format=json&maxDataPoints=2"),
    );
    assert_eq!(
        r.json()[0]["datapoints"],
        serde_json::json!([[11.0, 1795288320], [1.0, 1795288500]])
    );
    // target[] and a single path expression's series sorted by name; jsonp.
    let r =
        get(s.addr, &format!("/render?target%5B%5D=servers.*.cpu*&{RANGE}&format=json&jsonp=cb"));
    assert_eq!(r.header("content-type"), Some("text/javascript"));
    assert!(r.text().starts_with(r#"cb([{"target": "servers.web01.cpu", "#), "{}", r.text());
    // Empty targets are skipped; no series is [].
    let r = get(
        s.addr,
        &format!("/render?target=&target=%20&target=no.such.metric&{RANGE}&format=json"),
    );
    assert_eq!(r.text(), "[]");
    let r = get(s.addr, &format!("/render?target=servers.web01.cpu&{RANGE}&format=csv"));
    assert!(r.text().starts_with("servers.web01.cpu,2026-11-21 19:10:00,21.0\r\n"), "{}", r.text());
    let r = get(s.addr, &format!("/render?target=servers.web01.cpu&{RANGE}&format=dygraph"));
    assert!(r.text().starts_with(
        r#"{"labels" : ["Time", "servers.web01.cpu"], "data" : [[1795288200000, 21.0], "#
    ));
    let r = get(s.addr, &format!("/render?target=servers.web01.cpu&{RANGE}&format=rickshaw"));
    assert!(r.text().starts_with(
        r#"[{"target": "servers.web01.cpu", "datapoints": [{"x": 1795288200, "y": 21.0}, "#
    ));
    let r = get(s.addr, &format!("/render?target=servers.web01.cpu&{RANGE}&format=pickle"));
    assert_eq!(r.header("content-type"), Some("application/pickle"));
    assert!(r.body.starts_with(b"\x80\x02"));
    let r =
        get(s.addr, &format!("/render?target=seriesByTag(%27rack%3Da1%27)&{RANGE}&format=json"));
    let v = r.json();
    assert_eq!(v[0]["target"], "disk.used;datacenter=dc1;rack=a1;server=web01");
    assert_eq!(
        v[0]["tags"],
        serde_json::json!({"datacenter": "dc1", "rack": "a1", "server": "web01", "name": "disk.used"})
    );
}

#[test]
fn render_errors_are_graphite_webs() {
    let s = start();
    let r =
        get(s.addr, &format!("/render?target=noSuchFunction(a.b)&target=c.d&{RANGE}&format=json"));
    assert_eq!(r.status, 400);
    assert_eq!(
        r.text(),
        r#"Invalid parameters (Received request for unknown function: noSuchFunction); targets: "noSuchFunction(a.b), c.d""#
    );
    let r = get(s.addr, &format!("/render?target=sumSeries(a.b&{RANGE}&format=json"));
    assert_eq!(r.status, 400);
    assert!(r.text().contains("position"), "{}", r.text());
    // A template applied from the request.
    let r = get(
        s.addr,
        &format!(
            "/render?target=template(servers.$h.cpu)&template%5Bh%5D=web01&{RANGE}&format=json"
        ),
    );
    assert_eq!(r.json()[0]["target"], "servers.web01.cpu", "{}", r.text());
}

#[test]
fn render_limits_answer_422_and_503() {
    let s =
        start_with(HttpConfig { max_series: 1, ..HttpConfig::default() }, EventStore::in_memory());
    let r = get(s.addr, &format!("/render?target=servers.*.*&{RANGE}&format=json"));
    assert_eq!(r.status, 422, "{}", r.text());
    assert!(r.text().contains("max_series"), "{}", r.text());
    let s =
        start_with(HttpConfig { max_points: 6, ..HttpConfig::default() }, EventStore::in_memory());
    let r = get(
        s.addr,
        &format!("/render?target=servers.web01.*&target=servers.web02.*&{RANGE}&format=json"),
    );
    assert_eq!(r.status, 422, "{}", r.text());
    assert!(r.text().contains("max_points"), "{}", r.text());
    let s = start_with(
        HttpConfig { request_timeout: Duration::from_nanos(1), ..HttpConfig::default() },
        EventStore::in_memory(),
    );
    let r = get(s.addr, &format!("/render?target=servers.*.*&{RANGE}&format=json"));
    assert_eq!(r.status, 503, "{}", r.text());
    assert!(r.text().contains("request_timeout"), "{}", r.text());
}

#[test]
fn stops_and_rebinds_the_same_port() {
    let rt =
        tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap();
    let mut addr: SocketAddr = "127.0.0.1:0".parse().unwrap();
    for round in 0..5 {
        let shutdown = CancellationToken::new();
        let listener = rt.block_on(tokio::net::TcpListener::bind(addr)).unwrap();
        addr = listener.local_addr().unwrap();
        let server = rt.spawn(render::http::run(
            listener,
            Arc::new(source()),
            Arc::new(EventStore::in_memory()),
            HttpConfig::default(),
            shutdown.clone(),
        ));
        let r = get(addr, "/version");
        assert_eq!(r.status, 200, "round {round}");
        shutdown.cancel();
        rt.block_on(async { tokio::time::timeout(Duration::from_secs(10), server).await })
            .expect("the server stops")
            .unwrap()
            .unwrap();
    }
    // No task is left behind: the runtime shuts down at once.
    rt.shutdown_timeout(Duration::from_secs(1));
}

#[test]
fn csv_times_are_in_the_requested_zone() {
    let s = start();
    // graphite-web's CSV for the same point in Europe/Paris (UTC+1 in November).
    let r = get(
        s.addr,
        &format!("/render?target=servers.web01.cpu&{RANGE}&format=csv&tz=Europe/Paris"),
    );
    assert!(r.text().starts_with("servers.web01.cpu,2026-11-21 20:10:00,21.0\r\n"), "{}", r.text());
    // An unknown zone is ignored (UTC).
    let r = get(
        s.addr,
        &format!("/render?target=servers.web01.cpu&{RANGE}&format=csv&tz=Nowhere/Town"),
    );
    assert!(r.text().starts_with("servers.web01.cpu,2026-11-21 19:10:00,21.0\r\n"), "{}", r.text());
}
