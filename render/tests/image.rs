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
            let options = GraphOptions::from_query(&case.params);
            let series = case.series.iter().map(SeriesSpec::to_series).collect();
            render_line(series, &options, &TimeZone::utc(), format).unwrap()
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
fn golden_pie() {
    assert_matches_graphite_web("pie", 48, 0.015);
}

#[test]
fn golden_pie_rotated() {
    assert_matches_graphite_web("pie_rotated", 48, 0.005);
}
