//! Graphs as pictures: `format=png` (the default), `svg` and `pdf`, line graphs and
//! `graphType=pie`, in the manner of graphite-web 1.1.8's glyph.py.
//!
//! The graph is laid out as glyph.py lays it out (the same options and defaults, the same
//! room for title, legend and labels, the same axis steps, units, time labels and grid, the
//! same line and area modes, the same per-series options set by the Graph functions) and
//! written as an SVG document by our own writer (`svg.rs`), which follows cairo's drawing
//! model so the port stays close to the original. The document is then:
//!
//! - returned as is for `svg`, with graphite-web's `<g class=...>` sections and its JSON
//!   metadata block;
//! - rasterised by resvg (usvg parses it, tiny-skia paints) for `png`;
//! - converted to a vector PDF by svg2pdf for `pdf`.
//!
//! Text is drawn with the bundled DejaVu Sans (`font.rs`), the face cairo picks for "Sans" on
//! Debian, and measured with cairo's hinted metrics so the layout matches.
//!
//! What differs from graphite-web is listed in the render crate's README ("Images").

mod axis;
mod cairo_advances;
mod color;
mod font;
mod line;
mod options;
mod pie;
mod svg;
mod xaxis;

pub use options::GraphOptions;

use resvg::tiny_skia;
use resvg::usvg;

use crate::error::{Error, Result};
use crate::format::ImageFormat;
use crate::series::Series;
use crate::time::TimeZone;
use color::Rgba;
use svg::{Align, Canvas, Font, VAlign};

/// The widest or tallest picture drawn, in pixels: larger requests are refused rather than
/// allocating without bound.
pub const MAX_SIDE_PIXELS: i64 = 10_000;

/// The most pixels a picture may have (100 MB of RGBA).
pub const MAX_PIXELS: i64 = 25_000_000;

/// graphite-web's default width and height (`parseOptions`).
const DEFAULT_WIDTH: i64 = 330;
const DEFAULT_HEIGHT: i64 = 250;

/// A line graph of `series` in `format`. `tz` places the time labels (the request's `tz`).
///
/// # Errors
///
/// [`Error::InvalidParameter`] for a size out of bounds; [`Error::Evaluation`] for what
/// graphite-web fails on while drawing (an unknown colour, a text where a number belongs,
/// `yMin` above `yMax`, a log scale over values not all positive).
///
/// # Examples
///
/// ```
/// use render::image::{GraphOptions, render_line};
/// use render::format::ImageFormat;
/// use render::time::TimeZone;
/// use render::Series;
///
/// let s = Series::new("a.b", 0, 600, 60, (0..10).map(|i| Some(i as f64)).collect());
/// let options = GraphOptions::from_query("width=400&title=Demo");
/// let png = render_line(vec![s], &options, &TimeZone::utc(), ImageFormat::Png)?;
/// assert!(png.starts_with(b"\x89PNG"));
/// # Ok::<(), render::Error>(())
/// ```
pub fn render_line(
    series: Vec<Series>,
    options: &GraphOptions,
    tz: &TimeZone,
    format: ImageFormat,
) -> Result<Vec<u8>> {
    let format = output_format(options, format);
    let out = line::draw(series, options, tz, format == ImageFormat::Svg)?;
    let (width, height) = (out.canvas_width, out.canvas_height);
    finish(out.canvas, &out.metadata, width, height, format)
}

/// A pie graph of `(name, value)` slices in `format`.
///
/// # Errors
///
/// As [`render_line`]; also slices that sum to zero (graphite-web divides by the total).
pub fn render_pie(
    slices: Vec<(String, f64)>,
    options: &GraphOptions,
    format: ImageFormat,
) -> Result<Vec<u8>> {
    let format = output_format(options, format);
    let out = pie::draw(slices, options)?;
    let (width, height) = (out.canvas_width, out.canvas_height);
    finish(out.canvas, &crate::format::Json::Obj(Vec::new()), width, height, format)
}

/// The format actually drawn: graphite-web lets the `outputFormat` option override the one
/// `format` chose.
pub fn output_format(options: &GraphOptions, requested: ImageFormat) -> ImageFormat {
    match options.text("outputFormat").map(str::to_lowercase).as_deref() {
        Some("svg") => ImageFormat::Svg,
        Some("pdf") => ImageFormat::Pdf,
        Some("png") => ImageFormat::Png,
        _ => requested,
    }
}

/// Serialises the drawn document in `format`.
fn finish(
    canvas: Canvas,
    metadata: &crate::format::Json<'_>,
    width: u32,
    height: u32,
    format: ImageFormat,
) -> Result<Vec<u8>> {
    match format {
        ImageFormat::Svg => {
            let mut json = Vec::with_capacity(256);
            metadata.write(&mut json, None, false, false);
            // The JSON sits in a CDATA section, which "]]>" would close.
            let json = String::from_utf8_lossy(&json).replace("]]>", "]]\\u003e");
            let trailer =
                format!("<script>\n  <![CDATA[\n    metadata = {json}\n  ]]>\n</script>\n");
            Ok(canvas.finish(&trailer).into_bytes())
        }
        ImageFormat::Png => {
            let tree = parse_tree(&canvas.finish(""))?;
            let mut pixmap = tiny_skia::Pixmap::new(width, height).ok_or_else(|| {
                Error::InvalidParameter(format!("cannot allocate a {width}x{height} picture"))
            })?;
            resvg::render(&tree, tiny_skia::Transform::identity(), &mut pixmap.as_mut());
            pixmap.encode_png().map_err(|e| Error::Evaluation(format!("png encoding failed: {e}")))
        }
        ImageFormat::Pdf => {
            let tree = parse_tree(&canvas.finish(""))?;
            svg2pdf::to_pdf(
                &tree,
                svg2pdf::ConversionOptions::default(),
                svg2pdf::PageOptions::default(),
            )
            .map_err(|e| Error::Evaluation(format!("pdf conversion failed: {e}")))
        }
    }
}

/// Parses our own SVG with the bundled font.
fn parse_tree(svg: &str) -> Result<usvg::Tree> {
    let options = usvg::Options {
        fontdb: font::database(),
        font_family: font::FAMILY.to_string(),
        ..usvg::Options::default()
    };
    usvg::Tree::from_str(svg, &options)
        .map_err(|e| Error::Evaluation(format!("the graph's SVG did not parse: {e}")))
}

/// Python's `unquote_plus`, which glyph.py applies to titles and legend names.
pub(crate) fn unquote(text: &str) -> String {
    crate::http::params::unquote_plus(text)
}

/// The drawing area (glyph.py's `self.area`).
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub(crate) struct Area {
    pub(crate) xmin: f64,
    pub(crate) xmax: f64,
    pub(crate) ymin: f64,
    pub(crate) ymax: f64,
}

/// The font settings (glyph.py's `defaultFontParams`).
#[derive(Clone, Debug, PartialEq)]
pub(crate) struct FontParams {
    pub(crate) name: String,
    pub(crate) size: f64,
    pub(crate) bold: bool,
    pub(crate) italic: bool,
}

impl FontParams {
    /// The title's size: `size + floor(log(size))`.
    pub(crate) fn title_size(&self) -> Result<f64> {
        if self.size <= 0.0 {
            return Err(Error::Evaluation("math domain error (fontSize must be positive)".into()));
        }
        Ok(self.size + self.size.ln().floor())
    }
}

/// What both graph types share (glyph.py's `Graph`): the canvas, size, margins, fonts,
/// colours, and the title and legend.
pub(crate) struct Common {
    pub(crate) canvas: Canvas,
    pub(crate) width: f64,
    pub(crate) height: f64,
    pub(crate) margin: f64,
    pub(crate) area: Area,
    pub(crate) font: FontParams,
    pub(crate) fg: String,
    pub(crate) bg: String,
    colors: Vec<String>,
    next_color: usize,
    pub(crate) log_base: Option<f64>,
    pub(crate) minor_y: i64,
    pub(crate) pixel_width: u32,
    pub(crate) pixel_height: u32,
}

impl Common {
    /// `Graph.__init__`: size, margin, log base, fonts, colours, and the background.
    pub(crate) fn new(params: &GraphOptions, line: bool) -> Result<Common> {
        let width = params.int("width", DEFAULT_WIDTH)?;
        let height = params.int("height", DEFAULT_HEIGHT)?;
        if !(1..=MAX_SIDE_PIXELS).contains(&width)
            || !(1..=MAX_SIDE_PIXELS).contains(&height)
            || width * height > MAX_PIXELS
        {
            return Err(Error::InvalidParameter(format!(
                "a graph is 1 to {MAX_SIDE_PIXELS} pixels wide and high and at most {MAX_PIXELS} pixels in all (asked for {width}x{height})"
            )));
        }
        let mut margin = params.int("margin", 10)?;
        if margin < 0 {
            margin = 10;
        }
        let log_base = if line { log_base(params)? } else { None };
        let minor_y = params.int("minorY", 1)?;
        let font = FontParams {
            name: params.text("fontName").unwrap_or("Sans").to_string(),
            size: params.int("fontSize", 10)? as f64,
            bold: params.flag("fontBold", false),
            italic: params.flag("fontItalic", false),
        };
        let fg = params.text("fgcolor").unwrap_or("black").to_string();
        let bg = params.text("bgcolor").unwrap_or("white").to_string();
        let colors: Vec<String> = match params.text("colorList") {
            Some(list) => unquote(list).split(',').map(str::to_string).collect(),
            None => "blue,green,red,purple,brown,yellow,aqua,grey,magenta,pink,gold,rose"
                .split(',')
                .map(str::to_string)
                .collect(),
        };
        let (w, h, m) = (width as f64, height as f64, margin as f64);
        let family = font_family(&font.name);
        let mut common = Common {
            canvas: Canvas::new(w, h, &family),
            width: w,
            height: h,
            margin: m,
            area: Area { xmin: m + 10.0, xmax: w - m, ymin: m, ymax: h - m },
            font,
            fg,
            bg,
            colors,
            next_color: 0,
            log_base,
            minor_y,
            pixel_width: width as u32,
            pixel_height: height as u32,
        };
        common.set_font(None);
        let bg = common.bg.clone();
        common.set_color(&bg, 1.0)?;
        common.canvas.fill_rect(0.0, 0.0, w, h);
        Ok(common)
    }

    /// The next colour of `colorList`, cycling.
    pub(crate) fn next_color(&mut self) -> String {
        let c = self.colors.get(self.next_color % self.colors.len().max(1)).cloned();
        self.next_color += 1;
        c.unwrap_or_else(|| "blue".into())
    }

    /// `setColor(value, alpha)`.
    pub(crate) fn set_color(&mut self, spec: &str, alpha: f64) -> Result<()> {
        let c = color::parse(spec, alpha, false)?;
        self.canvas.set_color(c);
        Ok(())
    }

    /// `setFont()`, or `setFont(size=...)`.
    pub(crate) fn set_font(&mut self, size: Option<f64>) {
        self.canvas.font = Font {
            size: size.unwrap_or(self.font.size),
            bold: self.font.bold,
            italic: self.font.italic,
        };
    }

    /// The "No Data" picture: red text in the middle, sized by the picture's area.
    pub(crate) fn no_data(&mut self) -> Result<()> {
        self.set_color("red", 1.0)?;
        self.set_font(Some((self.width * self.height).ln()));
        let (x, y) = (self.width / 2.0, self.height / 2.0);
        self.canvas.text("No Data", x, y, Align::Center, VAlign::Top, 0.0);
        Ok(())
    }

    /// `drawTitle`: centred lines from the top; the area starts below them.
    pub(crate) fn draw_title(&mut self, text: &str, y_axis_right: bool) {
        self.canvas.section("title");
        let mut y = self.area.ymin;
        let x = self.width / 2.0;
        let line_height = font::extents(self.canvas.font.size).height;
        for line in text.split('\n') {
            self.canvas.text(line, x, y, Align::Center, VAlign::Top, 0.0);
            y += line_height;
        }
        self.area.ymin = if y_axis_right { y } else { y + self.margin };
    }

    /// `drawLegend`: colour boxes and names below the graph, in as many columns as fit
    /// (left and right groups when a second y axis is in use and there is room).
    pub(crate) fn draw_legend(
        &mut self,
        mut elements: Vec<(String, String, bool)>,
        unique: bool,
        second_y: bool,
    ) -> Result<()> {
        self.canvas.section("legend");
        if unique {
            let mut seen: Vec<String> = Vec::new();
            elements.retain(|(name, _, _)| {
                if seen.contains(name) {
                    false
                } else {
                    seen.push(name.clone());
                    true
                }
            });
        }
        let size = self.canvas.font.size;
        let ext = font::extents(size);
        let padding = 5.0;
        // The longest name (the last of equal lengths, as Python's stable sort leaves it).
        let mut longest = "";
        for (name, _, _) in &elements {
            if name.chars().count() >= longest.chars().count() {
                longest = name;
            }
        }
        let longest = longest.to_string();
        let test_width = font::text_width(&format!("{longest} {longest}"), size)
            + 2.0 * (ext.height - 1.0 + padding);
        let right_side_labels = test_width + 50.0 < self.width;
        let box_size = ext.height - 1.0;
        let line_height = ext.height + 1.0;
        let label_width = font::text_width(&longest, size) + 2.0 * (box_size + padding);
        let darkgrey = Rgba::rgb(111, 111, 111);
        self.canvas.set_line_width(1.0);
        if second_y && right_side_labels {
            let mut columns = ((self.width - self.area.xmin) / label_width).floor().max(1.0);
            let num_right = elements.iter().filter(|e| e.2).count();
            let lines = (elements.len() - num_right).max(num_right) as f64;
            columns = (columns / 2.0).floor();
            if columns < 1.0 {
                columns = 1.0;
            }
            let legend_height = (lines / columns).max(1.0) * line_height + padding;
            self.area.ymax -= legend_height;
            let mut x = self.area.xmin;
            let mut y = self.area.ymax + 2.0 * padding;
            let mut n = 0.0;
            let mut x_right = self.area.xmax - self.area.xmin;
            let mut y_right = y;
            let mut n_right = 0.0;
            for (name, color, right) in &elements {
                self.set_color(color, 1.0)?;
                if *right {
                    n_right += 1.0;
                    self.canvas.fill_rect(x_right - padding, y_right, box_size, box_size);
                    self.canvas.set_color(darkgrey);
                    self.legend_box_border(x_right - padding, y_right, box_size);
                    let fg = self.fg.clone();
                    self.set_color(&fg, 1.0)?;
                    self.canvas.text(
                        name,
                        x_right - box_size,
                        y_right,
                        Align::Right,
                        VAlign::Top,
                        0.0,
                    );
                    x_right -= label_width;
                    if n_right % columns == 0.0 {
                        x_right = self.area.xmax - self.area.xmin;
                        y_right += line_height;
                    }
                } else {
                    n += 1.0;
                    self.canvas.fill_rect(x, y, box_size, box_size);
                    self.canvas.set_color(darkgrey);
                    self.legend_box_border(x, y, box_size);
                    let fg = self.fg.clone();
                    self.set_color(&fg, 1.0)?;
                    self.canvas.text(
                        name,
                        x + box_size + padding,
                        y,
                        Align::Left,
                        VAlign::Top,
                        0.0,
                    );
                    x += label_width;
                    if n % columns == 0.0 {
                        x = self.area.xmin;
                        y += line_height;
                    }
                }
            }
        } else {
            let columns = (self.width / label_width).floor().max(1.0);
            let lines = (elements.len() as f64 / columns).ceil();
            let legend_height = lines * line_height + padding;
            self.area.ymax -= legend_height;
            let mut x = self.area.xmin;
            let mut y = self.area.ymax + 2.0 * padding;
            for (i, (name, color, right)) in elements.iter().enumerate() {
                self.set_color(color, 1.0)?;
                if *right {
                    self.canvas.fill_rect(x + label_width + padding, y, box_size, box_size);
                    self.canvas.set_color(darkgrey);
                    self.legend_box_border(x + label_width + padding, y, box_size);
                    let fg = self.fg.clone();
                    self.set_color(&fg, 1.0)?;
                    self.canvas.text(name, x + label_width, y, Align::Right, VAlign::Top, 0.0);
                } else {
                    self.canvas.fill_rect(x, y, box_size, box_size);
                    self.canvas.set_color(darkgrey);
                    self.legend_box_border(x, y, box_size);
                    let fg = self.fg.clone();
                    self.set_color(&fg, 1.0)?;
                    self.canvas.text(
                        name,
                        x + box_size + padding,
                        y,
                        Align::Left,
                        VAlign::Top,
                        0.0,
                    );
                }
                x += label_width;
                if (i + 1) as f64 % columns == 0.0 {
                    x = self.area.xmin;
                    y += line_height;
                }
            }
        }
        Ok(())
    }

    /// `drawRectangle(..., fill=False)`: the outline inset by half the line width.
    fn legend_box_border(&mut self, x: f64, y: f64, size: f64) {
        let o = self.canvas.line_width() / 2.0;
        self.canvas.stroke_rect(x + o, y + o, size - o, size - o);
    }
}

/// `Graph.__init__`'s `logBase`: `e`, a number of at least 1, or nothing (0, or below 1).
fn log_base(params: &GraphOptions) -> Result<Option<f64>> {
    use options::Value;
    match params.value("logBase") {
        None => Ok(None),
        Some(Value::Str(s)) if s == "e" => Ok(Some(std::f64::consts::E)),
        Some(Value::Str(_)) => Err(Error::Evaluation(
            "'<' not supported between instances of 'str' and 'int' (logBase)".into(),
        )),
        Some(v) => {
            let x = options::to_float("logBase", v)?;
            if x == 0.0 || x < 1.0 { Ok(None) } else { Ok(Some(x)) }
        }
    }
}

/// The CSS font list for text: the bundled face (characters are placed at its advances),
/// then the requested family when it is not the default "Sans" (for SVG viewers without
/// DejaVu Sans), then the generic family.
fn font_family(name: &str) -> String {
    let clean: String = name.chars().filter(|c| !matches!(c, '\'' | '"' | ',' | ';')).collect();
    if clean.is_empty() || clean == "Sans" || clean == font::FAMILY {
        format!("'{}', sans-serif", font::FAMILY)
    } else {
        format!("'{}', '{clean}', sans-serif", font::FAMILY)
    }
}
