//! graphite-web's `LineGraph` (glyph.py), step for step: title and vertical titles, the
//! legend below the graph, the room for axis labels, consolidation of points to the pixel
//! width, the y axes (one, or left and right when a series has `secondYAxis`), the time
//! axis, grid lines, then the series as lines or filled areas.
//!
//! The order of the steps matters as much as the steps: the legend takes its room from the
//! bottom before the axes are laid out, the y labels' width squeezes the drawing area, which
//! changes how points consolidate, which can change the y range, so the y axis is laid out
//! again until the area stops moving, exactly as graphite-web does.

use super::axis::{AxisMax, Tics, UnitSystem};
use super::color::{self, Rgba};
use super::font;
use super::options::{GraphOptions, Value, to_float};
use super::svg::{Align, Canvas, VAlign};
use super::xaxis::{self, Clock, XConfig};
use super::{Area, Common, unquote};
use crate::error::{Error, Result};
use crate::format::Json;
use crate::series::Series;
use crate::time::TimeZone;

/// graphite-web's `LEGEND_MAX_ITEMS`: more series than this hide the legend unless
/// `hideLegend` says otherwise.
const LEGEND_MAX_ITEMS: usize = 10;

/// The y layout may move the drawing area a few times before it settles; graphite-web loops
/// until it does. A bound keeps a pathological case from looping for ever.
const MAX_LAYOUT_PASSES: usize = 32;

/// Minor grid lines drawn between two labels at most (`minorY`), so a huge value costs
/// nothing: more than this many are not distinguishable anyway.
const MAX_MINOR_LINES: i64 = 100;

/// Time labels or grid lines drawn at most per kind: the configurations give a few dozen
/// for any real range; only absurd time ranges (centuries of data) would ask for more.
const MAX_TIME_TICKS: usize = 10_000;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum LineMode {
    Slope,
    Staircase,
    Connected,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum AreaMode {
    None,
    First,
    All,
    Stacked,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Side {
    Only,
    Left,
    Right,
}

/// A series as the graph draws it.
struct Drawn {
    series: Series,
    /// The colour as given (name or hex).
    color: String,
    /// Pixels between consecutive (consolidated) points.
    x_step: f64,
}

impl Drawn {
    fn has(&self, key: &str) -> bool {
        self.series.options.contains_key(key)
    }

    /// A numeric per-series option.
    fn number(&self, key: &str) -> Result<Option<f64>> {
        match self.series.options.get(key) {
            None => Ok(None),
            Some(text) => match text.as_str() {
                "True" | "true" => Ok(Some(1.0)),
                "False" | "false" => Ok(Some(0.0)),
                t => crate::http::params::py_float(t).map(Some).map_err(|e| {
                    Error::Evaluation(format!("series option {key} of {:?}: {e}", self.series.name))
                }),
            },
        }
    }
}

/// A laid-out y axis.
#[derive(Clone, Debug, Default)]
struct YAxis {
    step: Option<f64>,
    bottom: f64,
    top: f64,
    label_values: Vec<f64>,
    labels: Vec<String>,
    label_width: f64,
}

/// Maps values to pixels on one axis (`getYCoord`).
#[derive(Clone, Copy, Debug)]
struct YScale {
    lowest: f64,
    ratio: f64,
    ymax: f64,
    log_base: Option<f64>,
}

impl YScale {
    /// The pixel row of `value`, `None` for a value a log axis cannot place.
    fn coord(&self, value: f64) -> Option<f64> {
        let relative = match self.log_base {
            Some(base) => {
                if value <= 0.0 {
                    return None;
                }
                value.ln() / base.ln() - self.lowest.ln() / base.ln()
            }
            None => value - self.lowest,
        };
        Some(self.ymax - self.ratio * relative)
    }
}

struct LineGraph<'a> {
    common: Common,
    params: GraphOptions,
    tz: &'a TimeZone,
    data: Vec<Drawn>,
    second_y: bool,
    line_width: f64,
    line_mode: LineMode,
    area_mode: AreaMode,
    unit_system: UnitSystem,
    y_axis_right: bool,
    start_time: i64,
    end_time: i64,
    time_range: i64,
    graph_width: f64,
    y: YAxis,
    y_left: YAxis,
    y_right: YAxis,
    x_conf: Option<XConfig>,
    x_scale: f64,
}

/// What a line graph leaves for the SVG metadata.
pub(crate) struct LineOutput {
    pub(crate) canvas: Canvas,
    pub(crate) metadata: Json<'static>,
    pub(crate) canvas_width: u32,
    pub(crate) canvas_height: u32,
}

/// Draws a line graph of `series` (graphite-web's `LineGraph(**graphOptions)`).
///
/// # Errors
///
/// What graphite-web fails on (an invalid colour, a bad option value, impossible axis
/// limits): [`Error::Evaluation`].
pub(crate) fn draw(
    series: Vec<Series>,
    params: &GraphOptions,
    tz: &TimeZone,
    svg: bool,
) -> Result<LineOutput> {
    let common = Common::new(params, true)?;
    let mut graph = LineGraph {
        common,
        params: params.clone(),
        tz,
        data: Vec::with_capacity(series.len()),
        second_y: false,
        line_width: 1.2,
        line_mode: LineMode::Slope,
        area_mode: AreaMode::None,
        unit_system: UnitSystem::Si,
        y_axis_right: false,
        start_time: 0,
        end_time: 0,
        time_range: 0,
        graph_width: 0.0,
        y: YAxis::default(),
        y_left: YAxis::default(),
        y_right: YAxis::default(),
        x_conf: None,
        x_scale: 0.0,
    };
    let has_data = graph.draw_graph(series)?;
    let metadata = if svg && has_data { graph.metadata() } else { Json::Obj(Vec::new()) };
    Ok(LineOutput {
        canvas_width: graph.common.pixel_width,
        canvas_height: graph.common.pixel_height,
        canvas: graph.common.canvas,
        metadata,
    })
}

impl LineGraph<'_> {
    fn canvas(&mut self) -> &mut Canvas {
        &mut self.common.canvas
    }

    /// `drawGraph`; `false` when there was nothing to draw ("No Data").
    fn draw_graph(&mut self, series: Vec<Series>) -> Result<bool> {
        let time_range =
            match (series.iter().map(|s| s.start).min(), series.iter().map(|s| s.end).max()) {
                (Some(start), Some(end)) => end.saturating_sub(start),
                _ => 0,
            };
        if time_range == 0 {
            self.common.no_data()?;
            return Ok(false);
        }
        self.second_y = series.iter().any(|s| s.options.contains_key("secondYAxis"));

        // graphOnly: graphite-web's "API compatibility hacks".
        if self.params.flag("graphOnly", false) {
            for name in ["hideLegend", "hideGrid", "hideAxes"] {
                self.params.set_value(name, Value::Bool(true));
            }
            for name in ["hideXAxis", "hideYAxis"] {
                self.params.set_value(name, Value::Bool(false));
            }
            self.params.set_value("yAxisSide", Value::Str("left".into()));
            self.params.set("title", "");
            self.params.set("vtitle", "");
            self.common.margin = 0.0;
            let (w, h) = (self.common.width, self.common.height);
            self.common.area = Area { xmin: 0.0, xmax: w, ymin: 0.0, ymax: h };
        }
        for (alias, name) in [("min", "yMin"), ("max", "yMax"), ("thickness", "lineWidth")] {
            if !self.params.has(name)
                && let Some(text) = self.params.text(alias).map(str::to_string)
            {
                self.params.set(name, &text);
            }
        }
        self.unit_system = UnitSystem::parse(self.params.text("yUnitSystem").unwrap_or("si"));
        self.y_axis_right = !self.second_y && self.params.text("yAxisSide") == Some("right");
        if self.y_axis_right {
            // glyph.py measures the right side from the margin, set to the width.
            self.common.margin = self.common.width;
        }

        self.line_width = self.params.float("lineWidth", 1.2)?;
        self.line_mode = match self.params.lower("lineMode", "slope")?.as_str() {
            "slope" => LineMode::Slope,
            "staircase" => LineMode::Staircase,
            "connected" => LineMode::Connected,
            _ => return Err(Error::Evaluation("Invalid line mode!".into())),
        };
        self.area_mode = match self.params.lower("areaMode", "none")?.as_str() {
            "none" => AreaMode::None,
            "first" => AreaMode::First,
            "all" => AreaMode::All,
            "stacked" => AreaMode::Stacked,
            _ => return Err(Error::Evaluation("Invalid area mode!".into())),
        };
        if !matches!(
            self.params.lower("pieMode", "maximum")?.as_str(),
            "maximum" | "minimum" | "average"
        ) {
            return Err(Error::Evaluation("Invalid pie mode!".into()));
        }
        // Slope needs two points: one single-point series turns the graph to staircase.
        if self.line_mode == LineMode::Slope && series.iter().any(|s| s.values.len() == 1) {
            self.line_mode = LineMode::Staircase;
        }

        for s in series {
            let color = s.options.get("color").cloned();
            self.data.push(Drawn { series: s, color: color.unwrap_or_default(), x_step: 0.0 });
        }
        let mut explicit: Vec<bool> = self.data.iter().map(|d| d.has("color")).collect();
        if self.second_y {
            for (d, explicit) in self.data.iter_mut().zip(explicit.iter_mut()) {
                let prefix = if d.has("secondYAxis") { "right" } else { "left" };
                if let Some(w) = self.params.text(&format!("{prefix}Width")) {
                    d.series.options.insert("lineWidth".into(), w.to_string());
                }
                if let Some(dash) = self.params.text(&format!("{prefix}Dashed")) {
                    d.series.options.insert("dashed".into(), dash.to_string());
                }
                if let Some(c) = self.params.text(&format!("{prefix}Color")) {
                    d.color = c.to_string();
                    *explicit = true;
                }
            }
        }
        for (d, explicit) in self.data.iter_mut().zip(explicit) {
            if !explicit {
                d.color = self.common.next_color();
            }
        }

        let title_size = self.common.font.title_size()?;
        self.common.set_font(Some(title_size));
        self.common.set_color(&self.common.fg.clone(), 1.0)?;
        if let Some(title) = self.params.text("title").filter(|t| !t.is_empty()) {
            let title = unquote(title);
            self.common.draw_title(&title, self.y_axis_right);
        }
        if let Some(vtitle) = self.params.text("vtitle").filter(|t| !t.is_empty()) {
            let vtitle = unquote(vtitle);
            self.draw_vtitle(&vtitle, false);
        }
        if self.second_y
            && let Some(vtitle) = self.params.text("vtitleRight").filter(|t| !t.is_empty())
        {
            let vtitle = unquote(vtitle);
            self.draw_vtitle(&vtitle, true);
        }
        self.common.set_font(None);

        if !self.params.flag("hideLegend", self.data.len() > LEGEND_MAX_ITEMS) {
            let hide_null = self.params.flag("hideNullFromLegend", false);
            let mut elements = Vec::new();
            for d in &self.data {
                if d.series.name.is_empty() {
                    continue;
                }
                if hide_null && d.series.consolidated().iter().all(Option::is_none) {
                    continue;
                }
                elements.push((unquote(&d.series.name), d.color.clone(), d.has("secondYAxis")));
            }
            if !elements.is_empty() {
                let unique = self.params.flag("uniqueLegend", false);
                self.common.draw_legend(elements, unique, self.second_y)?;
            }
        }

        if !self.params.flag("hideAxes", false) && !self.params.flag("hideXAxis", false) {
            self.common.area.ymax -= font::extents(self.common.canvas.font.size).ascent * 2.0;
        }

        self.start_time = self.data.iter().map(|d| d.series.start).min().unwrap_or(0);
        self.end_time = if self.line_mode == LineMode::Staircase {
            self.data.iter().map(|d| d.series.end).max().unwrap_or(0)
        } else {
            self.data.iter().map(|d| d.series.end.saturating_sub(d.series.step)).max().unwrap_or(0)
        };
        self.time_range = self.end_time.saturating_sub(self.start_time);
        if self.time_range <= 0 {
            return Err(Error::Evaluation(
                "the series cover no time to draw (float division by zero)".into(),
            ));
        }

        self.consolidate_data_points()?;
        self.canvas().section("axes");

        let mut passes = 0;
        loop {
            let (xmin, xmax) = (self.common.area.xmin, self.common.area.xmax);
            if self.second_y {
                self.setup_two_y_axes()?;
            } else {
                self.setup_y_axis()?;
            }
            let settled = xmin == self.common.area.xmin && xmax == self.common.area.xmax;
            passes += 1;
            if settled || passes >= MAX_LAYOUT_PASSES {
                break;
            }
            self.consolidate_data_points()?;
        }

        self.setup_x_axis();
        if !self.params.flag("hideAxes", false) {
            self.draw_labels()?;
            if !self.params.flag("hideGrid", false) {
                self.canvas().section("grid");
                self.draw_grid_lines()?;
            }
        }
        self.canvas().section("lines");
        self.draw_lines()?;
        Ok(true)
    }

    fn draw_vtitle(&mut self, text: &str, right: bool) {
        let line_height = font::extents(self.common.canvas.font.size).height;
        let y = self.common.height / 2.0;
        let margin = self.common.margin;
        if right {
            self.canvas().section("vtitleRight");
            let mut x = self.common.area.xmax - line_height;
            for line in text.split('\n') {
                self.canvas().text(line, x, y, Align::Center, VAlign::Baseline, 90.0);
                x -= line_height;
            }
            self.common.area.xmax = x - margin - line_height;
        } else {
            self.canvas().section("vtitle");
            let mut x = self.common.area.xmin + line_height;
            for line in text.split('\n') {
                self.canvas().text(line, x, y, Align::Center, VAlign::Baseline, 270.0);
                x += line_height;
            }
            self.common.area.xmin = x + margin + line_height;
        }
    }

    /// `consolidateDataPoints`: as many points per pixel as needed to keep `minXStep`
    /// pixels between points.
    fn consolidate_data_points(&mut self) -> Result<()> {
        let pixels = self.common.area.xmax - self.common.area.xmin - (self.line_width + 1.0);
        self.graph_width = pixels;
        let min_x_step = self.params.float("minXStep", 1.0)?;
        let time_range = self.time_range as f64;
        for d in &mut self.data {
            let points = time_range / d.series.step as f64;
            let best_x_step = pixels / points;
            if best_x_step < min_x_step {
                let drawable = (pixels / min_x_step).trunc();
                if drawable < 1.0 || !drawable.is_finite() {
                    return Err(Error::Evaluation(
                        "the graph is too small to draw (division by zero consolidating points)"
                            .into(),
                    ));
                }
                let per_pixel = (points / drawable).ceil();
                d.series.consolidate(per_pixel.min(usize::MAX as f64) as usize);
                d.x_step = (pixels * per_pixel) / points;
            } else {
                d.x_step = best_x_step;
            }
        }
        Ok(())
    }

    /// The y limits options of one side: (`yMin`, `yMax`, `yLimit`, `yStep`) names.
    fn axis_tics(&self, data: &[&Drawn], names: (&str, &str, &str)) -> Result<Tics> {
        let draw_null_as_zero = self.params.flag("drawNullAsZero", false);
        let (min, max) = data_limits(data, draw_null_as_zero, self.area_mode == AreaMode::Stacked);
        let mut tics = Tics::new(min, max, self.unit_system, self.common.log_base)?;
        let axis_max = match self.params.value(names.1) {
            Some(Value::Str(s)) if s == "max" => AxisMax::Extremum,
            _ => self.params.number(names.1)?.map_or(AxisMax::Auto, AxisMax::Value),
        };
        tics.apply_settings(self.params.number(names.0)?, axis_max, self.params.number(names.2)?)?;
        Ok(tics)
    }

    fn divisors(&self) -> Result<Vec<i64>> {
        let text = self.params.text("yDivisors").unwrap_or("4,5,6");
        text.split(',')
            .map(|d| {
                crate::http::params::py_int(d)
                    .map_err(|e| Error::Evaluation(format!("{e} (yDivisors)")))
            })
            .collect()
    }

    fn finish_axis(&self, tics: &mut Tics, labels: bool) -> Result<YAxis> {
        tics.choose_limits()?;
        let mut axis =
            YAxis { step: tics.step, bottom: tics.bottom, top: tics.top, ..YAxis::default() };
        if labels {
            axis.label_values = tics.label_values()?;
            axis.step = tics.step;
            axis.labels = axis.label_values.iter().map(|v| tics.make_label(*v)).collect();
            let size = self.common.canvas.font.size;
            axis.label_width =
                axis.labels.iter().map(|l| font::text_width(l, size)).fold(0.0, f64::max);
        }
        Ok(axis)
    }

    fn choose_step(&self, tics: &mut Tics, step_name: &str) -> Result<()> {
        match self.params.value(step_name) {
            Some(v) => tics.set_step(to_float(step_name, v)?),
            None => tics.choose_step(&self.divisors()?, self.unit_system == UnitSystem::Binary),
        }
    }

    /// `setupYAxis`.
    fn setup_y_axis(&mut self) -> Result<()> {
        let data: Vec<&Drawn> = self.data.iter().collect();
        let mut tics = self.axis_tics(&data, ("yMin", "yMax", "yLimit"))?;
        self.choose_step(&mut tics, "yStep")?;
        let hide_axes = self.params.flag("hideAxes", false);
        self.y = self.finish_axis(&mut tics, !hide_axes)?;
        if !hide_axes && !self.params.flag("hideYAxis", false) {
            let width = self.y.label_width * 1.02;
            if self.y_axis_right {
                let xmax = self.common.margin - width;
                if self.common.area.xmax >= xmax {
                    self.common.area.xmax = xmax;
                }
            } else {
                let xmin = self.common.margin + width;
                if self.common.area.xmin < xmin {
                    self.common.area.xmin = xmin;
                }
            }
        }
        Ok(())
    }

    /// `setupTwoYAxes`.
    fn setup_two_y_axes(&mut self) -> Result<()> {
        let left: Vec<&Drawn> = self.data.iter().filter(|d| !d.has("secondYAxis")).collect();
        let right: Vec<&Drawn> = self.data.iter().filter(|d| d.has("secondYAxis")).collect();
        let mut tics_l = self.axis_tics(&left, ("yMinLeft", "yMaxLeft", "yLimitLeft"))?;
        let mut tics_r = self.axis_tics(&right, ("yMinRight", "yMaxRight", "yLimitRight"))?;
        self.choose_step(&mut tics_l, "yStepLeft")?;
        self.choose_step(&mut tics_r, "yStepRight")?;
        self.y_left = self.finish_axis(&mut tics_l, true)?;
        self.y_right = self.finish_axis(&mut tics_r, true)?;
        let xmin = self.common.margin + self.y_left.label_width * 1.02;
        if self.common.area.xmin < xmin {
            self.common.area.xmin = xmin;
        }
        let xmax = self.common.width - self.y_right.label_width * 1.02;
        if self.common.area.xmax >= xmax {
            self.common.area.xmax = xmax;
        }
        Ok(())
    }

    fn setup_x_axis(&mut self) {
        let seconds_per_pixel = self.time_range as f64 / self.graph_width;
        self.x_scale = self.graph_width / self.time_range as f64;
        self.x_conf = Some(xaxis::choose(seconds_per_pixel, self.time_range));
    }

    /// `getYCoord`'s scale for one side.
    fn y_scale(&self, side: Side) -> Result<YScale> {
        let axis = match side {
            Side::Only => &self.y,
            Side::Left => &self.y_left,
            Side::Right => &self.y_right,
        };
        let (highest, lowest) = if axis.label_values.is_empty() {
            (axis.top, axis.bottom)
        } else {
            (
                axis.label_values.iter().copied().fold(f64::NEG_INFINITY, f64::max),
                axis.label_values.iter().copied().fold(f64::INFINITY, f64::min),
            )
        };
        let pixel_range = self.common.area.ymax - self.common.area.ymin;
        let value_range = match self.common.log_base {
            Some(base) => highest.ln() / base.ln() - lowest.ln() / base.ln(),
            None => highest - lowest,
        };
        if value_range == 0.0 || !value_range.is_finite() {
            return Err(Error::Evaluation(
                "float division by zero (the y axis has a single label; choose another yStep)"
                    .into(),
            ));
        }
        Ok(YScale {
            lowest,
            ratio: pixel_range / value_range,
            ymax: self.common.area.ymax,
            log_base: self.common.log_base,
        })
    }

    fn clock(&self) -> Clock {
        Clock::new(self.tz, self.start_time)
    }

    fn draw_labels(&mut self) -> Result<()> {
        if !self.params.flag("hideYAxis", false) {
            if !self.second_y {
                let scale = self.y_scale(Side::Only)?;
                let labels: Vec<(f64, String)> = self
                    .y
                    .label_values
                    .iter()
                    .copied()
                    .zip(self.y.labels.iter().cloned())
                    .collect();
                for (value, label) in labels {
                    let Some(mut y) = scale.coord(value) else { continue };
                    if y < 0.0 {
                        y = 0.0;
                    }
                    if self.y_axis_right {
                        let x = self.common.area.xmax + self.y.label_width * 0.02;
                        self.canvas().text(&label, x, y, Align::Left, VAlign::Middle, 0.0);
                    } else {
                        let x = self.common.area.xmin - self.y.label_width * 0.02;
                        self.canvas().text(&label, x, y, Align::Right, VAlign::Middle, 0.0);
                    }
                }
            } else {
                let left = self.y_scale(Side::Left)?;
                let right = self.y_scale(Side::Right)?;
                let labels: Vec<(f64, String)> = self
                    .y_left
                    .label_values
                    .iter()
                    .copied()
                    .zip(self.y_left.labels.iter().cloned())
                    .collect();
                for (value, label) in labels {
                    let Some(mut y) = left.coord(value) else { continue };
                    if y < 0.0 {
                        y = 0.0;
                    }
                    let x = self.common.area.xmin - self.y_left.label_width * 0.02;
                    self.canvas().text(&label, x, y, Align::Right, VAlign::Middle, 0.0);
                }
                let labels: Vec<(f64, String)> = self
                    .y_right
                    .label_values
                    .iter()
                    .copied()
                    .zip(self.y_right.labels.iter().cloned())
                    .collect();
                for (value, label) in labels {
                    let Some(mut y) = right.coord(value) else { continue };
                    if y < 0.0 {
                        y = 0.0;
                    }
                    let x = self.common.area.xmax + self.y_right.label_width * 0.02 + 3.0;
                    self.canvas().text(&label, x, y, Align::Left, VAlign::Middle, 0.0);
                }
            }
        }
        if !self.params.flag("hideXAxis", false) {
            let Some(conf) = self.x_conf else { return Ok(()) };
            let clock = self.clock();
            let start = clock.local(self.start_time);
            let end = clock.local(self.end_time);
            let (mut dt, delta) = clock.first_tick(start, conf.label_unit, conf.label_step);
            let format = match self.params.text("xFormat") {
                Some(f) => f.to_string(),
                None => conf.format(),
            };
            let y = self.common.area.ymax + font::extents(self.common.canvas.font.size).ascent;
            for _ in 0..MAX_TIME_TICKS {
                if dt >= end {
                    break;
                }
                let label = clock.strftime(dt, &format);
                let x = self.common.area.xmin + dt.saturating_sub(start) as f64 * self.x_scale;
                self.canvas().text(&label, x, y, Align::Center, VAlign::Top, 0.0);
                dt = dt.saturating_add(delta);
            }
        }
        Ok(())
    }

    fn grid_color(&self, name: &str, default: &str) -> Result<Rgba> {
        color::parse(self.params.text(name).unwrap_or(default), 1.0, false)
    }

    fn draw_grid_lines(&mut self) -> Result<()> {
        let (left, right) = (self.common.area.xmin, self.common.area.xmax);
        let (labels, scale, top_value) = if self.second_y {
            (self.y_left.label_values.clone(), self.y_scale(Side::Left)?, self.y_left.top)
        } else {
            (self.y.label_values.clone(), self.y_scale(Side::Only)?, self.y.top)
        };
        let major = self.grid_color("majorGridLineColor", "rose")?;
        let minor = self.grid_color("minorGridLineColor", "grey")?;
        let minor_y = self.common.minor_y;
        for (i, &value) in labels.iter().enumerate() {
            self.canvas().set_line_width(0.4);
            self.canvas().set_color(major);
            if let Some(y) = scale.coord(value).filter(|y| *y >= 0.0) {
                self.canvas().move_to(left, y);
                self.canvas().line_to(right, y);
                self.canvas().stroke();
            } else {
                continue;
            }
            let Some(&next) = labels.get(i + 1) else { continue };
            if minor_y < 1 {
                continue;
            }
            let (lower, upper) = if value <= next { (value, next) } else { (next, value) };
            let distance = (upper - lower) / (1 + minor_y) as f64;
            let top_factor = self.common.log_base.map_or(1.0, |b| b * b);
            for m in 0..minor_y.min(MAX_MINOR_LINES) {
                self.canvas().set_line_width(0.3);
                self.canvas().set_color(minor);
                let v = lower + (1 + m) as f64 * distance;
                if v >= top_factor * top_value {
                    continue;
                }
                let Some(y) = scale.coord(v).filter(|y| *y >= 0.0) else { continue };
                self.canvas().move_to(left, y);
                self.canvas().line_to(right, y);
                self.canvas().stroke();
            }
        }

        let (top, bottom) = (self.common.area.ymin, self.common.area.ymax);
        let Some(conf) = self.x_conf else { return Ok(()) };
        let clock = self.clock();
        let start = clock.local(self.start_time);
        let end = clock.local(self.end_time);
        for (unit, step, width, color) in [
            (conf.minor_unit, conf.minor_step, 0.25, minor),
            (conf.major_unit, conf.major_step, 0.33, major),
        ] {
            self.canvas().set_line_width(width);
            self.canvas().set_color(color);
            let (mut dt, delta) = clock.first_tick(start, unit, step);
            for _ in 0..MAX_TIME_TICKS {
                if dt >= end {
                    break;
                }
                let x = self.common.area.xmin + dt.saturating_sub(start) as f64 * self.x_scale;
                if x < self.common.area.xmax {
                    self.canvas().move_to(x, bottom);
                    self.canvas().line_to(x, top);
                    self.canvas().stroke();
                }
                dt = dt.saturating_add(delta);
            }
        }
        // The graph area's side borders, in the major grid colour.
        self.canvas().set_line_width(0.5);
        let (xmin, xmax) = (self.common.area.xmin, self.common.area.xmax);
        self.canvas().move_to(xmax, bottom);
        self.canvas().line_to(xmax, top);
        self.canvas().move_to(xmin, bottom);
        self.canvas().line_to(xmin, top);
        self.canvas().stroke();
        Ok(())
    }

    /// `drawLines`.
    fn draw_lines(&mut self) -> Result<()> {
        let original_width = self.line_width;
        self.canvas().set_line_width(original_width);
        self.canvas().set_dash(None);

        if self.data.iter().any(|d| d.has("areaBetween") || d.has("stacked")) {
            // Stacked series (areaBetween's pair included) draw first.
            for d in &mut self.data {
                if d.has("areaBetween") && !d.has("stacked") {
                    d.series.options.insert("stacked".into(), "True".into());
                }
            }
            let (stacked, rest): (Vec<Drawn>, Vec<Drawn>) =
                std::mem::take(&mut self.data).into_iter().partition(|d| d.has("stacked"));
            self.data = stacked;
            self.data.extend(rest);
        }

        match self.area_mode {
            AreaMode::Stacked if !self.second_y => {
                let mut total: Vec<f64> = Vec::new();
                for d in &mut self.data {
                    if d.has("drawAsInfinite") {
                        continue;
                    }
                    d.series.options.insert("stacked".into(), "True".into());
                    for (i, v) in d.series.values.iter_mut().enumerate() {
                        if total.len() <= i {
                            total.push(0.0);
                        }
                        if let Some(x) = v {
                            let original = *x;
                            *x += total[i];
                            total[i] += original;
                        }
                    }
                }
            }
            AreaMode::First => {
                if let Some(d) = self.data.first_mut() {
                    d.series.options.insert("stacked".into(), "True".into());
                }
            }
            AreaMode::All => {
                for d in &mut self.data {
                    if !d.has("drawAsInfinite") {
                        d.series.options.insert("stacked".into(), "True".into());
                    }
                }
            }
            _ => {}
        }

        if self.params.flag("areaAlpha", false) {
            let alpha = match self.params.value("areaAlpha") {
                Some(v) => to_float("areaAlpha", v).unwrap_or(0.5),
                None => 0.5,
            };
            let mut strokes = Vec::new();
            for d in &mut self.data {
                if !d.has("stacked") {
                    continue;
                }
                d.series.options.insert("alpha".into(), crate::pyfmt::float_repr(alpha));
                let mut s = Series::new(
                    d.series.name.clone(),
                    d.series.start,
                    d.series.end,
                    d.series.read_step(),
                    d.series.consolidated(),
                );
                s.options.clear();
                if d.has("secondYAxis") {
                    s.options.insert("secondYAxis".into(), "True".into());
                }
                strokes.push(Drawn { series: s, color: d.color.clone(), x_step: d.x_step });
            }
            self.data.extend(strokes);
        }

        let area = self.common.area;
        self.canvas().set_line_width(1.0);
        self.canvas().move_to(area.xmin, area.ymin);
        self.canvas().line_to(area.xmax, area.ymin);
        self.canvas().line_to(area.xmax, area.ymax);
        self.canvas().line_to(area.xmin, area.ymax);
        self.canvas().close_path();
        self.canvas().clip();
        self.canvas().set_line_width(original_width);
        self.canvas().save();
        let mut clip_restored = false;

        let scales = if self.second_y {
            [self.y_scale(Side::Left)?, self.y_scale(Side::Right)?]
        } else {
            let s = self.y_scale(Side::Only)?;
            [s, s]
        };
        let draw_null_as_zero = self.params.flag("drawNullAsZero", false);
        let connected_limit = if self.line_mode == LineMode::Connected {
            self.params.number("connectedLimit")?.unwrap_or(f64::INFINITY)
        } else {
            f64::INFINITY
        };

        let data = std::mem::take(&mut self.data);
        for d in &data {
            let stacked = d.has("stacked");
            if !stacked && !clip_restored {
                clip_restored = true;
                self.canvas().restore();
            }
            if let Some(w) = d.number("lineWidth")? {
                self.canvas().set_line_width(w);
            }
            match d.number("dashed")? {
                Some(length) => self.canvas().set_dash(Some((length, 1.0))),
                None => self.canvas().set_dash(None),
            }
            let s = &d.series;
            let missing = s.start.saturating_sub(self.start_time) as f64 / s.step as f64;
            let start_shift = d.x_step * (missing / s.values_per_point.max(1) as f64);
            let mut x = area.xmin + start_shift + self.line_width / 2.0;
            let mut y = area.ymin;
            let mut start_x = x;
            if d.has("invisible") {
                let c = color::parse(&d.color, 0.0, true)?;
                self.canvas().set_color(c);
            } else {
                let alpha = d.number("alpha")?.filter(|a| *a != 0.0).unwrap_or(1.0);
                self.common.set_color(&d.color, alpha)?;
            }
            let scale = if d.has("secondYAxis") { scales[1] } else { scales[0] };
            let zero_y = scale.coord(0.0);
            let infinite = d.has("drawAsInfinite");

            let mut consecutive_nones: usize = 0;
            for (index, value) in s.consolidated().into_iter().enumerate() {
                let mut value = value.filter(|v| !v.is_nan());
                if value.is_none() && draw_null_as_zero {
                    value = Some(0.0);
                }
                // A value a log axis cannot place draws as a gap (graphite-web fails).
                let point = value.and_then(|v| scale.coord(v).map(|y| (v, y)));
                match point {
                    None => {
                        if consecutive_nones == 0 {
                            self.canvas().line_to(x, y);
                            if stacked {
                                self.fill_area_and_clip(x, y, Some(start_x), zero_y);
                            }
                        }
                        x += d.x_step;
                        consecutive_nones += 1;
                    }
                    Some((v, py)) => {
                        y = py.max(0.0);
                        if infinite && v > 0.0 {
                            self.canvas().move_to(x, area.ymax);
                            self.canvas().line_to(x, area.ymin);
                            self.canvas().stroke();
                            x += d.x_step;
                            continue;
                        }
                        if consecutive_nones > 0 {
                            start_x = x;
                        }
                        match self.line_mode {
                            LineMode::Staircase => {
                                if consecutive_nones > 0 {
                                    self.canvas().move_to(x, y);
                                } else {
                                    self.canvas().line_to(x, y);
                                }
                                x += d.x_step;
                                self.canvas().line_to(x, y);
                            }
                            LineMode::Slope => {
                                if consecutive_nones > 0 {
                                    self.canvas().move_to(x, y);
                                }
                                self.canvas().line_to(x, y);
                                x += d.x_step;
                            }
                            LineMode::Connected => {
                                if consecutive_nones as f64 > connected_limit
                                    || consecutive_nones == index
                                {
                                    self.canvas().move_to(x, y);
                                }
                                self.canvas().line_to(x, y);
                                x += d.x_step;
                            }
                        }
                        consecutive_nones = 0;
                    }
                }
            }
            if stacked {
                let x_pos = if self.line_mode == LineMode::Staircase { x } else { x - d.x_step };
                self.fill_area_and_clip(x_pos, y, Some(start_x), zero_y);
            } else {
                self.canvas().stroke();
            }
            self.canvas().set_line_width(original_width);
        }
        self.data = data;
        Ok(())
    }

    /// `fillAreaAndClip`: fills from the path down (or up) to the zero line, then clips
    /// the filled region away so the next stacked series only paints above it.
    fn fill_area_and_clip(&mut self, x: f64, y: f64, start_x: Option<f64>, zero_y: Option<f64>) {
        let _ = y;
        let area = self.common.area;
        // Python's `or`: 0 and None both fall back.
        let start_x = start_x.filter(|v| *v != 0.0).unwrap_or(area.xmin);
        let from = zero_y.filter(|v| *v != 0.0).unwrap_or(area.ymax);
        let pattern = self.canvas().path_snapshot();
        let c = self.canvas();
        c.line_to(x, from);
        c.line_to(start_x, from);
        c.close_path();
        c.fill();
        c.restore_path(pattern);
        c.line_to(x, from);
        c.line_to(area.xmax, from);
        c.line_to(area.xmax, area.ymin);
        c.line_to(area.xmin, area.ymin);
        c.line_to(area.xmin, from);
        c.line_to(start_x, from);
        c.line_to(x, from);
        c.line_to(area.xmax, from);
        c.line_to(area.xmax, area.ymax);
        c.line_to(area.xmin, area.ymax);
        c.line_to(area.xmin, from);
        c.line_to(start_x, from);
        c.close_path();
        c.clip();
    }

    /// The JSON graphite-web appends to its SVG (`metadata = {...}`).
    fn metadata(&self) -> Json<'static> {
        let area = self.common.area;
        let font = &self.common.font;
        let mut entries: Vec<(&'static str, Json<'static>)> = vec![
            (
                "x",
                Json::obj([
                    ("start", Json::Int(self.start_time)),
                    ("end", Json::Int(self.end_time)),
                ]),
            ),
            ("options", Json::obj([("lineWidth", Json::Float(self.line_width))])),
            (
                "font",
                Json::obj([
                    ("name", Json::str(font.name.clone())),
                    ("size", Json::Int(font.size as i64)),
                    ("bold", Json::Bool(font.bold)),
                    ("italic", Json::Bool(font.italic)),
                ]),
            ),
            (
                "area",
                Json::obj([
                    ("xmin", Json::Float(area.xmin)),
                    ("xmax", Json::Float(area.xmax)),
                    ("ymin", Json::Float(area.ymin)),
                    ("ymax", Json::Float(area.ymax)),
                ]),
            ),
        ];
        let series: Vec<Json<'static>> = self
            .data
            .iter()
            .filter(|d| !d.has("stacked"))
            .map(|d| {
                let s = &d.series;
                Json::obj([
                    ("name", Json::str(s.name.clone())),
                    ("start", Json::Int(s.start)),
                    ("end", Json::Int(s.end)),
                    ("step", Json::Int(s.step)),
                    ("valuesPerPoint", Json::Int(s.values_per_point as i64)),
                    ("color", Json::str(d.color.clone())),
                    (
                        "data",
                        Json::Arr(
                            s.values.iter().map(|v| v.map_or(Json::Null, Json::Float)).collect(),
                        ),
                    ),
                    (
                        "options",
                        Json::Obj(
                            s.options
                                .iter()
                                .map(|(k, v)| (k.clone().into(), option_json(v)))
                                .collect(),
                        ),
                    ),
                ])
            })
            .collect();
        entries.push(("series", Json::Arr(series)));
        if !self.second_y {
            entries.push((
                "y",
                Json::obj([
                    ("top", Json::Float(self.y.top)),
                    ("bottom", Json::Float(self.y.bottom)),
                    ("step", self.y.step.map_or(Json::Null, Json::Float)),
                    (
                        "labels",
                        Json::Arr(self.y.labels.iter().map(|l| Json::str(l.clone())).collect()),
                    ),
                    (
                        "labelValues",
                        Json::Arr(self.y.label_values.iter().map(|v| Json::Float(*v)).collect()),
                    ),
                ]),
            ));
        }
        Json::obj(entries)
    }
}

/// A per-series option in the metadata as graphite-web's Python value would read: `True`
/// as `true`, numbers as numbers, anything else as text.
fn option_json(text: &str) -> Json<'static> {
    match text {
        "True" => Json::Bool(true),
        "False" => Json::Bool(false),
        t => match t.parse::<i64>() {
            Ok(i) => Json::Int(i),
            Err(_) => match t.parse::<f64>() {
                Ok(x) if x.is_finite() => Json::Float(x),
                _ => Json::str(t.to_string()),
            },
        },
    }
}

/// glyph.py's `dataLimits`: the smallest and largest values to show (finite values of
/// series not drawn as infinite; with `stacked`, the largest sum by index; zero included
/// when nulls draw as zero).
fn data_limits(data: &[&Drawn], draw_null_as_zero: bool, stacked: bool) -> (f64, f64) {
    let missing = data.iter().any(|d| d.series.values.iter().any(Option::is_none));
    let finite: Vec<&Drawn> = data.iter().copied().filter(|d| !d.has("drawAsInfinite")).collect();
    let usable = |v: &Option<f64>| v.filter(|x| x.is_finite());
    let mut min: Option<f64> = None;
    let mut max: Option<f64> = None;
    let columns: Vec<Vec<Option<f64>>> = finite.iter().map(|d| d.series.consolidated()).collect();
    for c in &columns {
        let series_min = c.iter().filter_map(usable).reduce(crate::series::py_min);
        if let Some(m) = series_min {
            min = Some(min.map_or(m, |a| crate::series::py_min(a, m)));
        }
    }
    let Some(mut min) = min else { return (0.0, 1.0) };
    if min > 0.0 && draw_null_as_zero && missing {
        min = 0.0;
    }
    if stacked {
        // By raw index, as glyph.py indexes `series[i]`.
        let length = finite.iter().map(|d| d.series.values.len()).min().unwrap_or(0);
        for i in 0..length {
            let sum: f64 = finite
                .iter()
                .filter_map(|d| d.series.values.get(i).copied().flatten())
                .filter(|x| x.is_finite())
                .sum();
            max = Some(max.map_or(sum, |a| crate::series::py_max(a, sum)));
        }
    } else {
        for c in &columns {
            if let Some(m) = c.iter().filter_map(usable).reduce(crate::series::py_max) {
                max = Some(max.map_or(m, |a| crate::series::py_max(a, m)));
            }
        }
    }
    // glyph.py would fail comparing None; an empty stack reads as the minimum.
    let mut max = max.unwrap_or(min);
    if max < 0.0 && draw_null_as_zero && missing {
        max = 0.0;
    }
    (min, max)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn drawn(values: &[Option<f64>]) -> Drawn {
        Drawn {
            series: Series::new("a", 0, 60 * values.len() as i64, 60, values.to_vec()),
            color: "blue".into(),
            x_step: 1.0,
        }
    }

    #[test]
    fn data_limits_as_glyph() {
        let a = drawn(&[Some(1.0), None, Some(5.0)]);
        let b = drawn(&[Some(2.0), Some(3.0), Some(f64::INFINITY)]);
        assert_eq!(data_limits(&[&a, &b], false, false), (1.0, 5.0));
        assert_eq!(data_limits(&[&a, &b], true, false), (0.0, 5.0));
        assert_eq!(data_limits(&[&a, &b], false, true), (1.0, 5.0));
        let c = drawn(&[None, None]);
        assert_eq!(data_limits(&[&c], false, false), (0.0, 1.0));
    }
}
