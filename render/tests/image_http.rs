//! `/render` images end to end: a real server on a loopback port over an in-memory source,
//! real HTTP/1.1 requests; formats, content types, pie graphs (literal and computed slices),
//! JSONP, cache headers and the errors graphite-web answers.

#[path = "support/server.rs"]
mod server;

use render::MemorySource;
use render::events::EventStore;
use render::http::HttpConfig;
use resvg::tiny_skia::Pixmap;
use resvg::usvg::roxmltree;
use server::{Reply, TestServer, get, serve};

const T0: i64 = 1_795_288_200;
const RANGE: &str = "from=1795288200&until=1795288500";

fn start() -> TestServer {
    let mut src = MemorySource::new();
    let v = |xs: &[f64]| xs.iter().map(|x| Some(*x)).collect::<Vec<_>>();
    src.insert("servers.web01.cpu", T0, 60, v(&[21.0, 16.0, 11.0, 6.0, 1.0]));
    src.insert("servers.web02.cpu", T0, 60, v(&[2.0, 4.0, 6.0, 8.0, 10.0]));
    serve(src, HttpConfig::default(), EventStore::in_memory())
}

impl Reply {
    /// The `<text>` contents of an SVG answer.
    fn svg_texts(&self) -> Vec<String> {
        let text = self.text();
        let doc = roxmltree::Document::parse(&text).unwrap();
        doc.descendants()
            .filter(|n| n.has_tag_name("text"))
            .map(|n| n.text().unwrap_or_default().to_string())
            .collect()
    }
}

#[test]
fn formats_and_content_types() {
    let s = start();
    // No format: a PNG of graphite-web's default size.
    let r = get(s.addr, &format!("/render?target=servers.*.cpu&{RANGE}"));
    assert_eq!((r.status, r.header("content-type")), (200, Some("image/png")));
    let p = Pixmap::decode_png(&r.body).unwrap();
    assert_eq!((p.width(), p.height()), (330, 250));
    assert!(r.header("cache-control").is_some_and(|c| c.contains("max-age=60")));
    // An unknown format is a PNG too.
    let r = get(s.addr, &format!("/render?target=servers.*.cpu&{RANGE}&format=gif&width=100"));
    assert_eq!(r.header("content-type"), Some("image/png"));
    assert_eq!(Pixmap::decode_png(&r.body).unwrap().width(), 100);
    let r = get(s.addr, &format!("/render?target=servers.*.cpu&{RANGE}&format=svg&title=CPU"));
    assert_eq!((r.status, r.header("content-type")), (200, Some("image/svg+xml")));
    let texts = r.svg_texts();
    assert!(texts.contains(&"CPU".to_string()));
    assert!(texts.contains(&"servers.web01.cpu".to_string()));
    assert!(r.text().contains("metadata = {"));
    let r = get(s.addr, &format!("/render?target=servers.*.cpu&{RANGE}&format=pdf"));
    assert_eq!((r.status, r.header("content-type")), (200, Some("application/x-pdf")));
    assert!(r.body.starts_with(b"%PDF-"));
    // outputFormat (a graph option) overrides the format.
    let r = get(s.addr, &format!("/render?target=servers.*.cpu&{RANGE}&outputFormat=svg"));
    assert_eq!(r.header("content-type"), Some("image/svg+xml"));
    // Nothing matched: "No Data".
    let r = get(s.addr, &format!("/render?target=nothing.here&{RANGE}&format=svg"));
    assert_eq!(r.svg_texts(), ["No Data"]);
    let r = get(s.addr, &format!("/render?target=servers.*.cpu&{RANGE}&noCache=1"));
    assert!(r.header("cache-control").is_some_and(|c| c.contains("no-cache")));
}

#[test]
fn svg_jsonp_is_a_json_string() {
    let s = start();
    let r = get(s.addr, &format!("/render?target=servers.web01.cpu&{RANGE}&format=svg&jsonp=cb"));
    assert_eq!((r.status, r.header("content-type")), (200, Some("text/javascript")));
    let text = r.text();
    assert!(text.starts_with("cb(\"<svg ") && text.ends_with("\")"), "{}", &text[..40]);
    let inner: String = serde_json::from_str(&text[3..text.len() - 1]).unwrap();
    assert!(inner.contains("servers.web01.cpu"));
}

#[test]
fn pie_graphs() {
    let s = start();
    // Literal slices, whatever the format asks for (json draws a PNG).
    let r =
        get(s.addr, &format!("/render?graphType=pie&target=a:10&target=b:30&{RANGE}&format=json"));
    assert_eq!((r.status, r.header("content-type")), (200, Some("image/png")));
    let r =
        get(s.addr, &format!("/render?graphType=pie&target=a:10&target=b:30&{RANGE}&format=svg"));
    assert_eq!(r.svg_texts(), ["a", "b", "%25.00", "%75.00"]);
    // Computed slices: one per series, reduced by pieMode (default average). The range
    // reads the values after `from`: 16, 11, 6, 1 and 4, 6, 8, 10.
    let q = format!(
        "/render?graphType=pie&target=servers.*.cpu&{RANGE}&format=svg&valueLabels=number&valueLabelsMin=0"
    );
    let names = ["servers.web01.cpu", "servers.web02.cpu"];
    assert_eq!(r_texts(&s, &q)[..2], names);
    assert_eq!(r_texts(&s, &q)[2..], ["8.50", "7"]);
    assert_eq!(r_texts(&s, &format!("{q}&pieMode=maximum"))[2..], ["16", "10"]);
    assert_eq!(r_texts(&s, &format!("{q}&pieMode=minimum"))[2..], ["1", "4"]);
    // graphite-web's errors: 500s raised while drawing.
    let r = get(s.addr, &format!("/render?graphType=pie&target=bad:x&{RANGE}"));
    assert_eq!((r.status, r.text().as_str()), (500, "Invalid target 'bad:x'"));
    let r =
        get(s.addr, &format!("/render?graphType=pie&target=servers.*.cpu&pieMode=median&{RANGE}"));
    assert_eq!((r.status, r.text().as_str()), (500, "Function \"median\" not found"));
    let r = get(s.addr, &format!("/render?graphType=pie&target=a:0&{RANGE}"));
    assert_eq!(r.status, 500);
}

fn r_texts(s: &TestServer, q: &str) -> Vec<String> {
    let r = get(s.addr, q);
    assert_eq!(r.status, 200, "{}", r.text());
    r.svg_texts()
}

#[test]
fn drawing_errors() {
    let s = start();
    let r = get(s.addr, &format!("/render?target=servers.web01.cpu&{RANGE}&bgcolor=nocolour"));
    assert_eq!(r.status, 500);
    assert!(r.text().starts_with("Must specify an RGB 3-tuple"), "{}", r.text());
    let r = get(s.addr, &format!("/render?target=servers.web01.cpu&{RANGE}&yMin=5&yMax=1"));
    assert_eq!((r.status, r.text().as_str()), (500, "The min must be less than the max"));
    let r = get(s.addr, &format!("/render?target=servers.web01.cpu&{RANGE}&width=99999"));
    assert_eq!(r.status, 400);
    // Target errors are the same as for data formats.
    let r = get(s.addr, &format!("/render?target=sumSeries(&{RANGE}"));
    assert_eq!(r.status, 400);
}

#[test]
fn graph_functions_change_the_picture() {
    let s = start();
    // Stroked paths of the lines section as (stroke, attributes).
    let strokes = |q: &str| -> Vec<std::collections::BTreeMap<String, String>> {
        let r = get(s.addr, &format!("/render?{q}&{RANGE}&format=svg"));
        assert_eq!(r.status, 200, "{q}: {}", r.text());
        let text = r.text();
        let doc = roxmltree::Document::parse(&text).unwrap();
        doc.descendants()
            .filter(|n| n.has_tag_name("path"))
            .filter(|n| n.ancestors().any(|a| a.attribute("class") == Some("lines")))
            .filter(|n| !n.ancestors().any(|a| a.has_tag_name("clipPath")))
            .map(|n| {
                n.attributes().map(|a| (a.name().to_string(), a.value().to_string())).collect()
            })
            .collect()
    };
    let one = |q: &str, key: &str| strokes(q)[0].get(key).cloned().unwrap_or_default();
    assert_eq!(one("target=color(servers.web01.cpu,'red')", "stroke"), "#c80032");
    assert_eq!(one("target=color(servers.web01.cpu,'00ff0080')", "stroke-opacity"), "0.502");
    assert_eq!(one("target=alpha(servers.web01.cpu,0.4)", "stroke-opacity"), "0.4");
    assert_eq!(one("target=lineWidth(servers.web01.cpu,3)", "stroke-width"), "3");
    assert_eq!(one("target=dashed(servers.web01.cpu)", "stroke-dasharray"), "5");
    // Stacked series are filled areas.
    let filled = strokes("target=stacked(servers.*.cpu)");
    assert!(filled.iter().all(|p| p["fill"] != "none") && filled.len() == 2, "{filled:?}");
    let band = strokes("target=areaBetween(servers.*.cpu)");
    assert_eq!(band.len(), 2);
    assert_eq!(band[0]["fill-opacity"], "0");
    // secondYAxis: labels on both sides, so no single y axis in the metadata.
    let r = get(
        s.addr,
        &format!(
            "/render?target=servers.web01.cpu&target=secondYAxis(servers.web02.cpu)&{RANGE}&format=svg"
        ),
    );
    assert!(!r.text().contains("\"y\": {"));
    // drawAsInfinite and verticalLine: full-height lines.
    let v = strokes("target=verticalLine('1795288320','deploy')&target=servers.web01.cpu");
    assert!(v.len() >= 2);
    // Legend names from cactiStyle and legendValue.
    let r = get(
        s.addr,
        &format!("/render?target=legendValue(servers.web01.cpu,'avg')&{RANGE}&format=svg"),
    );
    assert!(
        r.svg_texts().iter().any(|t| t.starts_with("servers.web01.cpu (avg: 8.5")),
        "{:?}",
        r.svg_texts()
    );
    let r = get(s.addr, &format!("/render?target=cactiStyle(servers.*.cpu)&{RANGE}&format=svg"));
    assert!(r.svg_texts().iter().any(|t| t.contains("Current:")), "{:?}", r.svg_texts());
}
