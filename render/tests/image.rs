//! Pictures: our graphs against graphite-web's own (golden PNGs drawn by glyph.py, see
//! tests/data/image/README.md), and one check per option that it changes the picture as it
//! should.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use render::format::ImageFormat;
use render::http::Params;
use render::image::{GraphOptions, render_line, render_pie};
use render::time::TimeZone;
use render::{Error, Series};
use resvg::tiny_skia::Pixmap;

const DATA: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/data/image");

// ---------------------------------------------------------------------------------------------
// Cases shared with graphite-web (tests/data/image/cases.json).

#[derive(serde::Deserialize)]
struct Case {
    name: String,
    params: String,
    #[serde(default)]
    series: Vec<SeriesSpec>,
    #[serde(default)]
    pie: Option<Vec<(String, f64)>>,
}

#[derive(serde::Deserialize)]
struct SeriesSpec {
    name: String,
    start: i64,
    step: i64,
    values: Vec<Option<f64>>,
    options: BTreeMap<String, String>,
}

impl SeriesSpec {
    fn to_series(&self) -> Series {
        let end = self.start + self.step * self.values.len() as i64;
        let mut s = Series::new(self.name.clone(), self.start, end, self.step, self.values.clone());
        s.options = self.options.clone();
        s
    }
}

fn cases() -> Vec<Case> {
    let text = std::fs::read_to_string(Path::new(DATA).join("cases.json")).unwrap();
    serde_json::from_str(&text).unwrap()
}

fn case(name: &str) -> Case {
    cases().into_iter().find(|c| c.name == name).unwrap()
}

fn draw_case(case: &Case, format: ImageFormat) -> Vec<u8> {
    match &case.pie {
        Some(slices) => {
            let options = GraphOptions::from_params(&Params::from_query(&case.params), true);
            render_pie(slices.clone(), &options, format).unwrap()
        }
        None => {
            let params = Params::from_query(&case.params);
            let tz = params.get("tz").and_then(TimeZone::named).unwrap_or_else(TimeZone::utc);
            let options = GraphOptions::from_params(&params, false);
            let series = case.series.iter().map(SeriesSpec::to_series).collect();
            render_line(series, &options, &tz, format).unwrap()
        }
    }
}

/// Where failing comparisons leave our picture and a diff, for a look.
fn out_dir() -> PathBuf {
    let dir = Path::new(env!("CARGO_TARGET_TMPDIR")).join("image");
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// Pixels whose largest channel difference is above `tolerance`, and the total.
fn changed_pixels(a: &Pixmap, b: &Pixmap, tolerance: u8) -> (usize, usize) {
    assert_eq!((a.width(), a.height()), (b.width(), b.height()), "sizes differ");
    let changed = a
        .data()
        .chunks(4)
        .zip(b.data().chunks(4))
        .filter(|(p, q)| p.iter().zip(q.iter()).any(|(x, y)| x.abs_diff(*y) > tolerance))
        .count();
    (changed, (a.width() * a.height()) as usize)
}

/// Our PNG of a case against graphite-web's: a pixel counts as changed when a channel
/// differs by more than `tolerance`, and at most `budget` (a fraction) may change. Text is
/// the main difference (graphite-web draws it without antialiasing), so budgets are a few
/// percent.
fn assert_matches_graphite_web(name: &str, tolerance: u8, budget: f64) {
    let case = case(name);
    let ours = draw_case(&case, ImageFormat::Png);
    let golden = std::fs::read(Path::new(DATA).join(format!("{name}.png"))).unwrap();
    std::fs::write(out_dir().join(format!("{name}.png")), &ours).unwrap();
    let a = Pixmap::decode_png(&ours).unwrap();
    let b = Pixmap::decode_png(&golden).unwrap();
    let (changed, total) = changed_pixels(&a, &b, tolerance);
    let fraction = changed as f64 / total as f64;
    assert!(
        fraction <= budget,
        "{name}: {changed} of {total} pixels differ ({:.2}% > {:.2}%); ours is in {}",
        fraction * 100.0,
        budget * 100.0,
        out_dir().display()
    );
}

#[test]
fn golden_basic() {
    assert_matches_graphite_web("basic", 48, 0.025);
}

#[test]
fn golden_stacked() {
    assert_matches_graphite_web("stacked", 48, 0.02);
}

#[test]
fn golden_second_y_axis() {
    assert_matches_graphite_web("second_y_axis", 48, 0.025);
}

#[test]
fn golden_log_binary() {
    assert_matches_graphite_web("log_binary", 48, 0.02);
}

#[test]
fn golden_week_dark() {
    assert_matches_graphite_web("week_dark", 48, 0.015);
}

#[test]
fn golden_options_mix() {
    assert_matches_graphite_web("options_mix", 48, 0.015);
}

#[test]
fn golden_graph_only() {
    assert_matches_graphite_web("graph_only", 48, 0.001);
}

#[test]
fn golden_no_data() {
    assert_matches_graphite_web("no_data", 48, 0.005);
}

#[test]
fn golden_right_axis() {
    assert_matches_graphite_web("right_axis", 48, 0.025);
}

#[test]
fn golden_first_staircase() {
    assert_matches_graphite_web("first_staircase", 48, 0.025);
}

#[test]
fn golden_stacked_second_axis() {
    assert_matches_graphite_web("stacked_second_axis", 48, 0.025);
}

#[test]
fn golden_big_font_berlin() {
    assert_matches_graphite_web("big_font_berlin", 48, 0.025);
}

#[test]
fn golden_pie() {
    assert_matches_graphite_web("pie", 48, 0.015);
}

#[test]
fn golden_pie_rotated() {
    assert_matches_graphite_web("pie_rotated", 48, 0.005);
}

#[test]
fn svg_keeps_graphite_webs_structure() {
    let svg = String::from_utf8(draw_case(&case("basic"), ImageFormat::Svg)).unwrap();
    let doc = roxmltree::Document::parse(&svg).unwrap();
    let root = doc.root_element();
    assert_eq!((root.attribute("width"), root.attribute("height")), (Some("330px"), Some("250px")));
    let graphite = root.children().find(|n| n.has_tag_name("g")).unwrap();
    assert_eq!(graphite.attribute("class"), Some("graphite"));
    let sections: Vec<&str> = graphite
        .children()
        .filter(|n| n.has_tag_name("g"))
        .filter_map(|n| n.attribute("class"))
        .collect();
    assert_eq!(sections, ["title", "vtitle", "legend", "axes", "grid", "lines"]);
    let meta = metadata(&svg);
    assert_eq!(meta["x"]["start"], 1_699_999_200);
    assert_eq!(meta["x"]["end"], 1_699_999_200 + 59 * 60);
    assert_eq!(meta["options"]["lineWidth"], 1.2);
    assert_eq!(meta["font"]["name"], "Sans");
    assert_eq!(meta["y"]["labels"][0], "4.0 ");
    assert_eq!(meta["series"][1]["name"], "servers.web02.cpu.user");
    assert_eq!(meta["series"][1]["color"], "green");
    assert!(meta["series"][1]["data"][0].is_null());
}

#[test]
fn every_format_of_every_case_renders() {
    for case in cases() {
        let png = draw_case(&case, ImageFormat::Png);
        assert!(png.starts_with(b"\x89PNG\r\n"), "{}", case.name);
        let pdf = draw_case(&case, ImageFormat::Pdf);
        assert!(pdf.starts_with(b"%PDF-"), "{}", case.name);
        let svg = String::from_utf8(draw_case(&case, ImageFormat::Svg)).unwrap();
        roxmltree::Document::parse(&svg).unwrap_or_else(|e| panic!("{}: {e}", case.name));
        metadata(&svg);
    }
}

// ---------------------------------------------------------------------------------------------
// Each option changes the picture as it should.

use resvg::usvg::roxmltree;

const T0: i64 = 1_699_999_200;

/// A series of `n` points a minute apart from T0.
fn series(name: &str, values: &[Option<f64>]) -> Series {
    Series::new(name, T0, T0 + 60 * values.len() as i64, 60, values.to_vec())
}

fn ramp(name: &str, n: usize, scale: f64) -> Series {
    series(name, &(0..n).map(|i| Some(scale * (1.0 + i as f64))).collect::<Vec<_>>())
}

fn two() -> Vec<Series> {
    vec![ramp("a.one", 30, 1.0), ramp("a.two", 30, 0.5)]
}

fn try_svg(series: Vec<Series>, query: &str) -> Result<String, Error> {
    let bytes =
        render_line(series, &GraphOptions::from_query(query), &TimeZone::utc(), ImageFormat::Svg)?;
    Ok(String::from_utf8(bytes).unwrap())
}

fn svg(series: Vec<Series>, query: &str) -> String {
    try_svg(series, query).unwrap()
}

fn png(series: Vec<Series>, query: &str) -> Pixmap {
    let bytes =
        render_line(series, &GraphOptions::from_query(query), &TimeZone::utc(), ImageFormat::Png)
            .unwrap();
    Pixmap::decode_png(&bytes).unwrap()
}

fn pixel(p: &Pixmap, x: u32, y: u32) -> [u8; 3] {
    let c = p.pixel(x, y).unwrap().demultiply();
    [c.red(), c.green(), c.blue()]
}

/// The JSON graphite-web appends to its SVG.
fn metadata(svg: &str) -> serde_json::Value {
    let start = svg.find("metadata = ").unwrap() + "metadata = ".len();
    let end = start + svg[start..].find("\n  ]]>").unwrap();
    serde_json::from_str(&svg[start..end]).unwrap()
}

/// The text of every `<text>` in a section (`None`: everywhere).
fn texts(svg: &str, section: Option<&str>) -> Vec<String> {
    let doc = roxmltree::Document::parse(svg).unwrap();
    doc.descendants()
        .filter(|n| n.has_tag_name("text"))
        .filter(|n| section.is_none_or(|s| n.ancestors().any(|a| a.attribute("class") == Some(s))))
        .map(|n| n.text().unwrap_or_default().to_string())
        .collect()
}

/// The attributes of every element named `tag` in a section (clip paths left out).
fn elements(svg: &str, tag: &str, section: &str) -> Vec<BTreeMap<String, String>> {
    let doc = roxmltree::Document::parse(svg).unwrap();
    doc.descendants()
        .filter(|n| n.has_tag_name(tag))
        .filter(|n| n.ancestors().any(|a| a.attribute("class") == Some(section)))
        .filter(|n| !n.ancestors().any(|a| a.has_tag_name("clipPath")))
        .map(|n| n.attributes().map(|a| (a.name().to_string(), a.value().to_string())).collect())
        .collect()
}

fn sections(svg: &str) -> Vec<String> {
    let doc = roxmltree::Document::parse(svg).unwrap();
    doc.descendants()
        .filter(|n| n.has_tag_name("g"))
        .filter_map(|n| n.attribute("class").map(str::to_string))
        .collect()
}

/// The stroked paths of the lines section, as (stroke colour, path data).
fn lines(svg: &str) -> Vec<(String, String)> {
    elements(svg, "path", "lines")
        .into_iter()
        .filter(|a| a.get("fill").map(String::as_str) == Some("none"))
        .map(|a| (a["stroke"].clone(), a["d"].clone()))
        .collect()
}

fn fills(svg: &str) -> Vec<BTreeMap<String, String>> {
    elements(svg, "path", "lines")
        .into_iter()
        .filter(|a| a.get("fill").map(String::as_str) != Some("none"))
        .collect()
}

#[test]
fn bgcolor_changes_the_corner_pixel() {
    assert_eq!(pixel(&png(two(), ""), 0, 0), [255, 255, 255]);
    // graphite-web's red, not CSS red.
    assert_eq!(pixel(&png(two(), "bgcolor=red"), 0, 0), [200, 0, 50]);
    assert_eq!(pixel(&png(two(), "bgcolor=%23123456"), 1, 1), [0x12, 0x34, 0x56]);
    assert_eq!(pixel(&png(two(), "bgcolor=123456"), 1, 1), [0x12, 0x34, 0x56]);
}

#[test]
fn width_and_height_size_the_picture() {
    let p = png(two(), "width=500&height=120");
    assert_eq!((p.width(), p.height()), (500, 120));
    let p = png(two(), "");
    assert_eq!((p.width(), p.height()), (330, 250));
    let e = try_svg(two(), "width=20000").unwrap_err();
    assert!(matches!(e, Error::InvalidParameter(_)), "{e}");
    assert!(try_svg(two(), "width=0").is_err());
    assert!(try_svg(two(), "height=abc").is_err());
}

#[test]
fn fgcolor_colours_the_text() {
    let s = svg(two(), "fgcolor=blue&title=T");
    let title = elements(&s, "text", "title");
    assert_eq!(title[0]["fill"], "#6464ff");
    assert!(elements(&s, "text", "axes").iter().all(|t| t["fill"] == "#6464ff"));
}

#[test]
fn hide_legend_removes_the_legend_area() {
    let shown = svg(two(), "");
    let hidden = svg(two(), "hideLegend=true");
    assert!(sections(&shown).contains(&"legend".to_string()));
    assert!(!sections(&hidden).contains(&"legend".to_string()));
    let ymax = |s: &str| metadata(s)["area"]["ymax"].as_f64().unwrap();
    assert!(ymax(&hidden) > ymax(&shown) + 10.0);
    // More than 10 series hide it unless asked for.
    let many: Vec<Series> = (0..11).map(|i| ramp(&format!("s{i}"), 10, 1.0)).collect();
    assert!(!sections(&svg(many.clone(), "")).contains(&"legend".to_string()));
    assert!(sections(&svg(many, "hideLegend=false")).contains(&"legend".to_string()));
}

#[test]
fn legend_options_filter_names() {
    let series = vec![
        ramp("dup", 10, 1.0),
        ramp("dup", 10, 2.0),
        series("empty", &[None; 10]),
        ramp("a+b%2Bc", 10, 3.0),
    ];
    let all = texts(&svg(series.clone(), ""), Some("legend"));
    assert_eq!(all, ["dup", "dup", "empty", "a b+c"]);
    let unique =
        texts(&svg(series.clone(), "uniqueLegend=true&hideNullFromLegend=1"), Some("legend"));
    assert_eq!(unique, ["dup", "a b+c"]);
}

#[test]
fn hide_axes_and_grid() {
    let full = svg(two(), "");
    assert!(!texts(&full, Some("axes")).is_empty());
    assert!(sections(&full).contains(&"grid".to_string()));
    let no_axes = svg(two(), "hideAxes=true");
    assert!(texts(&no_axes, Some("axes")).is_empty());
    assert!(!sections(&no_axes).contains(&"grid".to_string()));
    let no_grid = svg(two(), "hideGrid=true");
    assert!(!texts(&no_grid, Some("axes")).is_empty());
    assert!(!sections(&no_grid).contains(&"grid".to_string()));
    // hideYAxis keeps the time labels only; hideXAxis the value labels only.
    let y_labels = metadata(&full)["y"]["labels"].as_array().unwrap().len();
    let x_only = texts(&svg(two(), "hideYAxis=true"), Some("axes"));
    assert!(x_only.iter().all(|t| t.contains(':')), "{x_only:?}");
    let y_only = texts(&svg(two(), "hideXAxis=true"), Some("axes"));
    assert_eq!(y_only.len(), y_labels);
}

#[test]
fn graph_only_draws_edge_to_edge() {
    let s = svg(two(), "graphOnly=true&title=gone");
    let area = &metadata(&s)["area"];
    assert_eq!((area["xmin"].as_f64(), area["ymin"].as_f64()), (Some(0.0), Some(0.0)));
    assert_eq!((area["xmax"].as_f64(), area["ymax"].as_f64()), (Some(330.0), Some(250.0)));
    assert!(texts(&s, None).is_empty());
}

#[test]
fn margin_moves_the_area() {
    let area = |q: &str, key: &str| {
        metadata(&svg(two(), &format!("hideAxes=true&hideLegend=true&{q}")))["area"][key]
            .as_f64()
            .unwrap()
    };
    assert_eq!(area("", "ymin"), 10.0);
    assert_eq!(area("margin=30", "ymin"), 30.0);
    assert_eq!(area("margin=30", "xmin"), 40.0);
    assert_eq!(area("margin=30", "xmax"), 300.0);
}

#[test]
fn y_limits_and_step_change_the_labels() {
    let labels = |q: &str| -> Vec<String> {
        metadata(&svg(two(), q))["y"]["labels"]
            .as_array()
            .unwrap()
            .iter()
            .map(|v| v.as_str().unwrap().to_string())
            .collect()
    };
    assert_eq!(labels("").last().unwrap(), "30.0 ");
    assert_eq!(labels("yMax=100").last().unwrap(), "100.0 ");
    assert_eq!(labels("max=100").last().unwrap(), "100.0 ");
    assert_eq!(labels("yMin=-10")[0], "-10 ");
    assert_eq!(labels("yMin=0&yMax=30&yStep=10"), ["0 ", "10.0 ", "20.0 ", "30.0 "]);
    assert_eq!(labels("yLimit=20").last().unwrap(), "20.0 ");
    assert_eq!(labels("yMin=0&yDivisors=3").len(), 4);
    assert_eq!(labels("yUnitSystem=none&yMax=5000").last().unwrap(), "5000.0 ");
    assert_eq!(labels("yMax=5000&yStep=1000").last().unwrap(), "5.0 k ");
    assert_eq!(labels("yUnitSystem=binary&yMax=4096&yStep=1024").last().unwrap(), "4.0 Ki ");
    let e = try_svg(two(), "yMin=10&yMax=5").unwrap_err();
    assert_eq!(e.to_string(), "The min must be less than the max");
    assert!(try_svg(two(), "yMax=abc").is_err());
}

#[test]
fn log_base_changes_tick_labels() {
    let s = vec![series("grow", &(0..20).map(|i| Some(10f64.powi(i / 4))).collect::<Vec<_>>())];
    let labels = metadata(&svg(s.clone(), "logBase=10"))["y"]["labelValues"].clone();
    assert_eq!(labels, serde_json::json!([1.0, 10.0, 100.0, 1000.0, 10000.0]));
    let labels = metadata(&svg(s.clone(), "logBase=e"))["y"]["labelValues"].clone();
    assert!((labels[1].as_f64().unwrap() - std::f64::consts::E).abs() < 1e-9);
    // A log scale needs positive values.
    let zero = vec![series("z", &[Some(0.0), Some(1.0)])];
    assert!(try_svg(zero, "logBase=10").is_err());
    // Below 1 means no log scale.
    assert_eq!(metadata(&svg(s, "logBase=0.5"))["y"]["labelValues"][1], 2000.0);
}

#[test]
fn second_y_axis_adds_right_labels() {
    let mut right = ramp("bytes", 30, 1000.0);
    right.options.insert("secondYAxis".into(), "True".into());
    let s = svg(vec![ramp("load", 30, 1.0), right], "vtitleRight=bytes");
    let xmax = metadata(&s)["area"]["xmax"].as_f64().unwrap();
    let doc = roxmltree::Document::parse(&s).unwrap();
    let labels_right_of = |x: f64| {
        doc.descendants()
            .filter(|n| n.has_tag_name("text"))
            .filter(|n| n.ancestors().any(|a| a.attribute("class") == Some("axes")))
            .filter(|n| {
                let first: f64 =
                    n.attribute("x").unwrap().split(' ').next().unwrap().parse().unwrap();
                first > x
            })
            .count()
    };
    assert!(labels_right_of(xmax) >= 4);
    assert!(sections(&s).contains(&"vtitleRight".to_string()));
    // No second axis: nothing right of the area.
    assert_eq!(texts(&svg(two(), "vtitleRight=x"), Some("vtitleRight")).len(), 0);
    // Both axes are in the metadata only when there is one.
    assert!(metadata(&s).get("y").is_none());
}

#[test]
fn area_modes_fill() {
    let flat = || vec![series("low", &[Some(10.0); 10]), series("high", &[Some(10.0); 10])];
    // Stacked: two bands, the first series below.
    let p = png(flat(), "areaMode=stacked&yMin=0&yMax=20&hideLegend=true&hideAxes=true&margin=0");
    // (graphite-web's area starts 10 px in from the left edge even without margin.)
    assert_eq!(pixel(&p, 150, 200), [100, 100, 255]);
    assert_eq!(pixel(&p, 150, 60), [0, 200, 0]);
    let s = svg(flat(), "areaMode=stacked");
    assert_eq!(fills(&s).len(), 2);
    assert!(lines(&s).is_empty(), "stacked areas have no outline");
    assert_eq!(fills(&svg(flat(), "areaMode=first")).len(), 1);
    assert_eq!(lines(&svg(flat(), "areaMode=first")).len(), 1);
    assert_eq!(fills(&svg(flat(), "areaMode=all")).len(), 2);
    assert!(fills(&svg(flat(), "")).is_empty());
    // areaAlpha: translucent fills plus an outline per area.
    let s = svg(flat(), "areaMode=all&areaAlpha=0.25");
    assert!(fills(&s).iter().all(|f| f["fill-opacity"] == "0.25"));
    assert_eq!(lines(&s).len(), 2);
    assert!(try_svg(flat(), "areaMode=bars").is_err());
}

#[test]
fn line_modes_shape_the_path() {
    let s = || vec![series("x", &[Some(1.0), Some(3.0), Some(2.0)])];
    let path = |q: &str| lines(&svg(s(), &format!("yMin=0&yMax=4&{q}")))[0].1.clone();
    let segments = |d: &str| d.matches('L').count();
    // Slope: one segment per point after the first; staircase: two per point.
    assert_eq!(segments(&path("")), 2);
    assert_eq!(segments(&path("lineMode=staircase")), 5);
    assert!(try_svg(s(), "lineMode=zigzag").is_err());
    // A gap breaks a slope line; connected bridges it up to connectedLimit.
    let gap = || vec![series("g", &[Some(1.0), None, None, Some(2.0), Some(3.0)])];
    let moves = |q: &str| lines(&svg(gap(), q))[0].1.matches('M').count();
    assert_eq!(moves(""), 2);
    assert_eq!(moves("lineMode=connected"), 1);
    assert_eq!(moves("lineMode=connected&connectedLimit=1"), 2);
    assert_eq!(moves("drawNullAsZero=true"), 1);
}

#[test]
fn line_width_and_colours() {
    let widths = |q: &str| -> Vec<String> {
        elements(&svg(two(), q), "path", "lines")
            .iter()
            .map(|p| p["stroke-width"].clone())
            .collect()
    };
    assert_eq!(widths("lineWidth=3"), ["3", "3"]);
    assert_eq!(widths("thickness=2.5"), ["2.5", "2.5"]);
    assert_eq!(widths(""), ["1.2", "1.2"]);
    let s = svg(two(), "colorList=%23ff0000,darkblue");
    let strokes: Vec<String> = lines(&s).into_iter().map(|l| l.0).collect();
    assert_eq!(strokes, ["#ff0000", "#0000ff"]);
    assert!(try_svg(two(), "colorList=nocolour").is_err());
    let s = svg(two(), "majorGridLineColor=%23010203&minorGridLineColor=%23040506");
    let grid: Vec<String> =
        elements(&s, "path", "grid").into_iter().map(|p| p["stroke"].clone()).collect();
    assert!(grid.contains(&"#010203".to_string()) && grid.contains(&"#040506".to_string()));
}

#[test]
fn minor_y_sets_the_minor_grid_lines() {
    let count = |q: &str| {
        elements(&svg(two(), q), "path", "grid")
            .iter()
            .filter(|p| p["stroke-width"] == "0.3")
            .count()
    };
    let labels = metadata(&svg(two(), ""))["y"]["labels"].as_array().unwrap().len();
    assert_eq!(count(""), labels - 1);
    assert_eq!(count("minorY=3"), 3 * (labels - 1));
    assert_eq!(count("minorY=0"), 0);
}

#[test]
fn titles_and_fonts() {
    let s = svg(two(), "title=Line+one%0ALine+two&vtitle=units");
    assert_eq!(texts(&s, Some("title")), ["Line one", "Line two"]);
    assert_eq!(texts(&s, Some("vtitle")), ["units"]);
    let vtitle = &elements(&s, "text", "vtitle")[0];
    assert!(vtitle["transform"].contains("rotate(270)"));
    // The title is larger than the text: 10 + floor(ln 10).
    assert_eq!(elements(&s, "text", "title")[0]["font-size"], "12");
    assert_eq!(elements(&s, "text", "axes")[0]["font-size"], "10");
    let s = svg(two(), "fontSize=14&fontBold=true&fontItalic=true&fontName=Verdana");
    let label = &elements(&s, "text", "axes")[0];
    assert_eq!(label["font-size"], "14");
    assert!(label.contains_key("stroke"), "synthetic bold");
    assert!(label["transform"].contains("skewX"), "synthetic italic");
    let doc = roxmltree::Document::parse(&s).unwrap();
    let families = doc.descendants().find_map(|n| n.attribute("font-family")).unwrap();
    assert_eq!(families, "'DejaVu Sans', 'Verdana', sans-serif");
}

#[test]
fn time_labels_follow_x_format_and_tz() {
    let x_labels = |q: &str, tz: &TimeZone| -> Vec<String> {
        let bytes = render_line(two(), &GraphOptions::from_query(q), tz, ImageFormat::Svg).unwrap();
        let s = String::from_utf8(bytes).unwrap();
        texts(&s, Some("axes")).into_iter().filter(|t| !t.ends_with(' ')).collect()
    };
    let utc = TimeZone::utc();
    assert_eq!(x_labels("", &utc), ["22:00", "22:10", "22:20"]);
    assert_eq!(x_labels("xFormat=%25H+h", &utc), ["22 h", "22 h", "22 h"]);
    let tokyo = TimeZone::named("Asia/Tokyo").unwrap();
    assert_eq!(x_labels("", &tokyo), ["07:00", "07:10", "07:20"]);
    let kolkata = TimeZone::named("Asia/Kolkata").unwrap();
    assert_eq!(x_labels("", &kolkata), ["03:30", "03:40", "03:50"]);
}

#[test]
fn no_data_says_so() {
    let s = svg(vec![], "title=x");
    assert_eq!(texts(&s, None), ["No Data"]);
    assert_eq!(metadata(&s), serde_json::json!({}));
    let p = png(vec![], "");
    assert_eq!((p.width(), p.height()), (330, 250));
}

// ---------------------------------------------------------------------------------------------
// Per-series options set by the Graph functions (color, alpha, lineWidth, dashed, stacked,
// secondYAxis, drawAsInfinite, invisible, areaBetween).

fn with(mut s: Series, options: &[(&str, &str)]) -> Series {
    for (k, v) in options {
        s.options.insert(k.to_string(), v.to_string());
    }
    s
}

#[test]
fn series_colour_alpha_width_and_dash() {
    let s = svg(
        vec![
            with(ramp("a", 10, 1.0), &[("color", "ff8800"), ("alpha", "0.5")]),
            with(ramp("b", 10, 2.0), &[("lineWidth", "4"), ("dashed", "5.0")]),
        ],
        "",
    );
    let paths = elements(&s, "path", "lines");
    let strokes: Vec<&BTreeMap<String, String>> =
        paths.iter().filter(|p| p.get("fill").map(String::as_str) == Some("none")).collect();
    assert_eq!(strokes[0]["stroke"], "#ff8800");
    assert_eq!(strokes[0]["stroke-opacity"], "0.5");
    // An explicit colour does not use up a colorList entry: b is still blue.
    assert_eq!(strokes[1]["stroke"], "#6464ff");
    assert_eq!(strokes[1]["stroke-width"], "4");
    assert_eq!(strokes[1]["stroke-dasharray"], "5");
    // The legend shows the series' colour too.
    assert_eq!(elements(&s, "rect", "legend")[0]["fill"], "#ff8800");
}

#[test]
fn series_stacked_and_area_between() {
    let s =
        svg(vec![ramp("line", 10, 1.0), with(ramp("area", 10, 2.0), &[("stacked", "True")])], "");
    // Stacked series draw first, as areas.
    assert_eq!(fills(&s).len(), 1);
    assert_eq!(fills(&s)[0]["fill"], "#00c800");
    assert_eq!(lines(&s).len(), 1);
    let band = svg(
        vec![
            with(ramp("low", 10, 1.0), &[("stacked", "True"), ("invisible", "True")]),
            with(ramp("high", 10, 2.0), &[("stacked", "True"), ("areaBetween", "True")]),
        ],
        "",
    );
    let f = fills(&band);
    assert_eq!(f.len(), 2);
    assert_eq!(f[0]["fill-opacity"], "0");
    // areaBetween alone also draws as an area.
    let alone = svg(vec![with(ramp("x", 10, 1.0), &[("areaBetween", "True")])], "");
    assert_eq!(fills(&alone).len(), 1);
}

#[test]
fn series_draw_as_infinite_and_second_axis() {
    let events = with(
        series("deploy", &[Some(0.0), Some(1.0), Some(0.0), Some(0.0), Some(2.0)]),
        &[("drawAsInfinite", "True")],
    );
    let s = svg(vec![ramp("x", 5, 1.0), events], "hideLegend=true");
    let area = metadata(&s)["area"].clone();
    let (ymin, ymax) = (area["ymin"].as_f64().unwrap(), area["ymax"].as_f64().unwrap());
    // Each positive value is a full-height vertical line.
    let verticals = lines(&s)
        .into_iter()
        .filter(|(stroke, _)| stroke == "#00c800")
        .filter(|(_, d)| d.contains(&format!(" {ymax}L")) && d.ends_with(&format!(" {ymin}")))
        .count();
    assert_eq!(verticals, 2, "{s}");
    // drawAsInfinite values do not widen the y axis.
    assert_eq!(metadata(&s)["y"]["labels"].as_array().unwrap().last().unwrap(), "5.0 ");
    let right = with(ramp("r", 5, 100.0), &[("secondYAxis", "True")]);
    let s = svg(vec![ramp("l", 5, 1.0), right], "rightColor=red&rightWidth=3");
    let strokes = lines(&s);
    assert_eq!(strokes[1].0, "#c80032");
    assert!(
        elements(&s, "path", "lines")
            .iter()
            .any(|p| p.get("stroke-width").map(String::as_str) == Some("3"))
    );
}

#[test]
fn bad_series_options_fail_cleanly() {
    let bad = with(ramp("x", 5, 1.0), &[("color", "notacolour")]);
    assert!(matches!(try_svg(vec![bad], ""), Err(Error::Evaluation(_))));
    let bad = with(ramp("x", 5, 1.0), &[("lineWidth", "wide")]);
    assert!(try_svg(vec![bad], "").is_err());
}

// ---------------------------------------------------------------------------------------------
// Pie graphs.

fn pie_png(slices: &[(&str, f64)], query: &str) -> Pixmap {
    let options = GraphOptions::from_params(&Params::from_query(query), true);
    let slices = slices.iter().map(|(n, v)| (n.to_string(), *v)).collect();
    Pixmap::decode_png(&render_pie(slices, &options, ImageFormat::Png).unwrap()).unwrap()
}

fn pie_svg(slices: &[(&str, f64)], query: &str) -> Result<String, Error> {
    let options = GraphOptions::from_params(&Params::from_query(query), true);
    let slices = slices.iter().map(|(n, v)| (n.to_string(), *v)).collect();
    Ok(String::from_utf8(render_pie(slices, &options, ImageFormat::Svg)?).unwrap())
}

#[test]
fn pie_draws_slices() {
    // Two halves: the first from the top clockwise (right), the second on the left.
    let p = pie_png(&[("a", 1.0), ("b", 1.0)], "hideLegend=true&valueLabels=none");
    assert_eq!(pixel(&p, 200, 125), [100, 100, 255]);
    assert_eq!(pixel(&p, 130, 125), [0, 200, 0]);
    let p = pie_png(&[("a", 1.0)], "hideLegend=true&valueLabels=none&colorList=red");
    assert_eq!(pixel(&p, 165, 125), [200, 0, 50]);
    assert_eq!(pixel(&p, 130, 125), [200, 0, 50]);
}

#[test]
fn pie_labels_and_legend() {
    let s = pie_svg(&[("a", 30.0), ("b", 10.0), ("c", 0.5)], "title=Share").unwrap();
    assert_eq!(texts(&s, Some("title")), ["Share"]);
    assert_eq!(texts(&s, Some("legend")), ["a", "b", "c"]);
    // Percentages as graphite-web writes them, small slices unlabelled.
    assert_eq!(texts(&s, Some("slices")), ["%74.07", "%24.69"]);
    let s = pie_svg(&[("a", 30.0), ("b", 7.25)], "valueLabels=number&hideLegend=true").unwrap();
    assert_eq!(texts(&s, Some("slices")), ["30", "7.25"]);
    let s = pie_svg(&[("a", 30.0), ("b", 10.0)], "valueLabelsMin=50").unwrap();
    assert_eq!(texts(&s, Some("slices")), ["%75.00"]);
    let s = pie_svg(&[("a", 1.0), ("b", 3.0)], "pieLabels=rotated").unwrap();
    let rotations: Vec<String> =
        elements(&s, "text", "slices").iter().map(|t| t["transform"].clone()).collect();
    assert!(rotations[0].ends_with("rotate(315)"), "{rotations:?}");
    assert!(rotations[1].ends_with("rotate(-45)"), "{rotations:?}");
    assert!(pie_svg(&[("a", 1.0)], "valueLabels=bars").is_err());
    assert!(pie_svg(&[("a", 0.0)], "").is_err());
    let s = pie_svg(&[], "").unwrap();
    assert_eq!(texts(&s, None), ["No Data"]);
}

// ---------------------------------------------------------------------------------------------
// No request can make the renderer panic or hang: random options, values and series.

mod never_panics {
    use super::*;
    use proptest::prelude::*;

    const NAMES: &[&str] = &[
        "width",
        "height",
        "margin",
        "bgcolor",
        "fgcolor",
        "fontSize",
        "fontBold",
        "fontItalic",
        "colorList",
        "yAxisSide",
        "title",
        "vtitle",
        "vtitleRight",
        "lineMode",
        "lineWidth",
        "hideLegend",
        "hideAxes",
        "minXStep",
        "hideGrid",
        "majorGridLineColor",
        "thickness",
        "min",
        "max",
        "graphOnly",
        "yMin",
        "yMax",
        "yLimit",
        "yStep",
        "areaMode",
        "areaAlpha",
        "drawNullAsZero",
        "pieMode",
        "yUnitSystem",
        "logBase",
        "yMinLeft",
        "yMaxRight",
        "yStepLeft",
        "rightWidth",
        "rightColor",
        "leftDashed",
        "xFormat",
        "minorY",
        "hideYAxis",
        "uniqueLegend",
        "yDivisors",
        "connectedLimit",
        "hideXAxis",
        "hideNullFromLegend",
        "valueLabels",
        "valueLabelsMin",
        "pieLabels",
        "valueLabelsColor",
        "outputFormat",
    ];
    const VALUES: &[&str] = &[
        "0",
        "1",
        "-1",
        "2",
        "7",
        "100",
        "330",
        "-5",
        "0.5",
        "1.5",
        "-0.25",
        "1e308",
        "nan",
        "inf",
        "-inf",
        "99999999999999999999",
        "true",
        "false",
        "e",
        "max",
        "abc",
        "%25",
        "red",
        "ff0000",
        "%23ff000080",
        "red,,blue",
        "staircase",
        "connected",
        "stacked",
        "all",
        "first",
        "binary",
        "msec",
        "right",
        "0,0",
        "4,5,6",
        "rotated",
        "number",
        "none",
        "%25Y%25m",
        "%25Q",
        "é",
        "svg",
    ];

    fn query() -> impl Strategy<Value = String> {
        proptest::collection::vec((0..NAMES.len(), 0..VALUES.len()), 0..6).prop_map(|pairs| {
            pairs
                .into_iter()
                .map(|(n, v)| format!("{}={}", NAMES[n], VALUES[v]))
                .collect::<Vec<_>>()
                .join("&")
        })
    }

    fn value() -> impl Strategy<Value = Option<f64>> {
        prop_oneof![
            4 => (-1e6f64..1e6).prop_map(Some),
            1 => Just(None),
            1 => Just(Some(f64::NAN)),
            1 => Just(Some(f64::INFINITY)),
            1 => Just(Some(0.0)),
            1 => Just(Some(1e300)),
            1 => Just(Some(-1e300)),
        ]
    }

    fn one_series() -> impl Strategy<Value = Series> {
        let option = prop_oneof![
            Just(("stacked", "True")),
            Just(("secondYAxis", "True")),
            Just(("drawAsInfinite", "True")),
            Just(("invisible", "True")),
            Just(("areaBetween", "True")),
            Just(("color", "blue")),
            Just(("alpha", "0.3")),
            Just(("lineWidth", "0")),
            Just(("dashed", "0.0001")),
            Just(("dashed", "4")),
        ];
        (
            proptest::collection::vec(value(), 0..40),
            1i64..3600,
            -1000i64..1000,
            proptest::collection::vec(option, 0..3),
        )
            .prop_map(|(values, step, offset, options)| {
                let start = T0 + offset * 60;
                let mut s =
                    Series::new("s", start, start + step * values.len() as i64, step, values);
                for (k, v) in options {
                    s.options.insert(k.into(), v.into());
                }
                s
            })
    }

    proptest! {
        #![proptest_config(ProptestConfig { cases: 200, ..ProptestConfig::default() })]

        #[test]
        fn svg_never_panics(series in proptest::collection::vec(one_series(), 0..5), q in query()) {
            let _ = render_line(series, &GraphOptions::from_query(&q), &TimeZone::utc(), ImageFormat::Svg);
        }

        #[test]
        fn pie_never_panics(
            slices in proptest::collection::vec((-10f64..100.0, 0..3usize), 0..6),
            q in query(),
        ) {
            let slices = slices.into_iter().map(|(v, n)| (format!("n{n}"), v)).collect();
            let options = GraphOptions::from_params(&Params::from_query(&q), true);
            let _ = render_pie(slices, &options, ImageFormat::Svg);
        }
    }

    proptest! {
        #![proptest_config(ProptestConfig { cases: 24, ..ProptestConfig::default() })]

        #[test]
        fn png_never_panics(series in proptest::collection::vec(one_series(), 0..4), q in query()) {
            // Small pictures: rasterising is the slow part of a debug build.
            let q = format!("{q}&width=120&height=90");
            let _ = render_line(series, &GraphOptions::from_query(&q), &TimeZone::utc(), ImageFormat::Png);
        }
    }
}

#[test]
fn right_side_axis_with_a_vertical_title_fails_as_in_graphite_web() {
    // glyph.py measures the right side from a margin set to the width, so the vertical
    // title pushes the area off the picture and graphite-web divides by zero (500).
    assert!(matches!(try_svg(two(), "yAxisSide=right&vtitle=abc"), Err(Error::Evaluation(_))));
    assert!(try_svg(two(), "yAxisSide=right").is_ok());
}
