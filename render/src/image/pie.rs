//! graphite-web's `PieGraph` (glyph.py). The slices' values come from the caller: literal
//! `name:value` targets, or series reduced by `pieMode` ([`crate::pie_value`]).
//!
//! Slices start at the top and go clockwise in target order, coloured from `colorList`; the
//! legend lists them; labels (`valueLabels`: the percentage, written `%12.34` as
//! graphite-web writes it, or the value) sit halfway out, level or rotated along the slice.

use super::options::{GraphOptions, to_float};
use super::svg::{Align, Canvas, VAlign};
use super::{Common, unquote};
use crate::error::{Error, Result};

/// One slice being drawn.
struct Slice {
    name: String,
    value: f64,
    percent: f64,
    color: String,
    mid_angle: f64,
}

/// What a pie graph leaves to serialise.
pub(crate) struct PieOutput {
    pub(crate) canvas: Canvas,
    pub(crate) canvas_width: u32,
    pub(crate) canvas_height: u32,
}

/// `PieGraph.drawGraph`.
///
/// # Errors
///
/// Slices summing to zero, a non-finite value, an invalid colour or option.
pub(crate) fn draw(data: Vec<(String, f64)>, params: &GraphOptions) -> Result<PieOutput> {
    let mut common = Common::new(params, false)?;
    let done = |common: Common| PieOutput {
        canvas_width: common.pixel_width,
        canvas_height: common.pixel_height,
        canvas: common.canvas,
    };
    if data.is_empty() {
        common.no_data()?;
        return Ok(done(common));
    }
    if data.iter().any(|(_, v)| !v.is_finite()) {
        return Err(Error::Evaluation("a pie slice's value is not a finite number".into()));
    }
    let total: f64 = data.iter().map(|(_, v)| *v).sum();
    if total == 0.0 {
        return Err(Error::Evaluation("float division by zero (the pie slices sum to 0)".into()));
    }
    let alpha = if params.flag("areaAlpha", false) {
        params.value("areaAlpha").map_or(1.0, |v| to_float("areaAlpha", v).unwrap_or(1.0))
    } else {
        1.0
    };
    let mut slices: Vec<Slice> = data
        .into_iter()
        .map(|(name, value)| Slice {
            name,
            value,
            percent: value / total,
            color: common.next_color(),
            mid_angle: 0.0,
        })
        .collect();

    let title_size = common.font.title_size()?;
    common.set_font(Some(title_size));
    let fg = common.fg.clone();
    common.set_color(&fg, 1.0)?;
    if let Some(title) = params.text("title").filter(|t| !t.is_empty()) {
        let right = params.text("yAxisSide") == Some("right");
        common.draw_title(&unquote(title), right);
    }
    common.set_font(None);
    if !params.flag("hideLegend", false) {
        let elements = slices.iter().map(|s| (s.name.clone(), s.color.clone(), false)).collect();
        common.draw_legend(elements, false, false)?;
    }

    common.canvas.section("slices");
    let area = common.area;
    let half_x = (area.xmax - area.xmin) / 2.0;
    let half_y = (area.ymax - area.ymin) / 2.0;
    let (x0, y0) = (area.xmin + half_x, area.ymin + half_y);
    let radius = half_x.min(half_y) * 0.95;
    let turn = 2.0 * std::f64::consts::PI;
    let mut theta = 3.0 * std::f64::consts::PI / 2.0;
    for slice in &mut slices {
        common.set_color(&slice.color, alpha)?;
        common.canvas.move_to(x0, y0);
        let phi = theta + turn * slice.percent;
        common.canvas.arc(x0, y0, radius, theta, phi);
        common.canvas.line_to(x0, y0);
        common.canvas.fill();
        slice.mid_angle = ((theta + phi) / 2.0).rem_euclid(turn);
        theta = phi;
    }

    let labels_color = params.text("valueLabelsColor").unwrap_or("black").to_string();
    let labels_min = params.float("valueLabelsMin", 5.0)?;
    let value_labels = params.text("valueLabels").unwrap_or("percent");
    if !matches!(value_labels, "none" | "number" | "percent") {
        return Err(Error::Evaluation(format!(
            "valueLabels={value_labels} must be one of ('none', 'number', 'percent')"
        )));
    }
    if value_labels != "none" {
        common.set_font(None);
        common.set_color(&labels_color, 1.0)?;
        let rotated = params.text("pieLabels") == Some("rotated");
        for slice in &slices {
            let label = if value_labels == "percent" {
                if slice.percent * 100.0 < labels_min {
                    continue;
                }
                format!("%{:.2}", slice.percent * 100.0)
            } else {
                if slice.value < labels_min {
                    continue;
                }
                if slice.value < 10.0 && slice.value != slice.value.trunc() {
                    format!("{:.2}", slice.value)
                } else {
                    format!("{}", slice.value.trunc() as i64)
                }
            };
            let mut angle = slice.mid_angle;
            let x = x0 + radius / 2.0 * angle.cos();
            let y = y0 + radius / 2.0 * angle.sin();
            if rotated {
                let half = std::f64::consts::PI;
                if angle > half / 2.0 && angle <= 3.0 * half / 2.0 {
                    angle -= half;
                }
                common.canvas.text(&label, x, y, Align::Center, VAlign::Middle, angle.to_degrees());
            } else {
                common.canvas.text(&label, x, y, Align::Center, VAlign::Middle, 0.0);
            }
        }
    }
    Ok(done(common))
}
