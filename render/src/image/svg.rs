//! A small SVG writer with cairo's drawing model, so the graph code can follow graphite-web's
//! glyph.py call for call: a current colour, line width and dash; a path built with
//! `move_to`/`line_to` (a `line_to` without a current point moves, as in cairo) and consumed
//! by `stroke`, `fill` or `clip`; clips that intersect until `restore`; text placed on a
//! baseline.
//!
//! Each operation becomes one SVG element; a clip opens a `<g clip-path>` that stays open
//! until the matching `restore` (or the end of the section). Sections are the `<g class=...>`
//! groups graphite-web's SVG output has (`title`, `legend`, `axes`, `grid`, `lines`, ...).

use std::fmt::Write as _;

use super::color::Rgba;
use super::font;

/// Font settings for text (graphite-web's `setFont`).
#[derive(Clone, Debug, PartialEq)]
pub(crate) struct Font {
    /// Size in pixels.
    pub(crate) size: f64,
    /// Drawn bolder (the bundled font has no bold face: the outline is stroked).
    pub(crate) bold: bool,
    /// Slanted (the bundled font has no oblique face: the glyphs are skewed).
    pub(crate) italic: bool,
}

/// Horizontal text alignment relative to the anchor point.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Align {
    Left,
    Center,
    Right,
}

/// Vertical text alignment relative to the anchor point (graphite-web's `valign`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum VAlign {
    Top,
    Middle,
    Baseline,
}

/// The shortest dash drawn, in pixels.
const MIN_DASH: f64 = 0.5;

/// The skew of synthetic italics, in degrees (what a typical oblique face leans).
const ITALIC_SKEW_DEGREES: f64 = -12.0;

/// A saved path ([`Canvas::path_snapshot`]).
pub(crate) struct PathSnapshot {
    data: String,
    current: Option<(f64, f64)>,
    subpath_start: Option<(f64, f64)>,
}

/// The document under construction.
pub(crate) struct Canvas {
    /// The SVG text so far.
    out: String,
    /// Current source colour.
    color: Rgba,
    /// Current line width.
    line_width: f64,
    /// Current dash: `(length, offset)`, or solid.
    dash: Option<(f64, f64)>,
    /// Path data of the path being built.
    path: String,
    /// The path's current point, if any.
    current: Option<(f64, f64)>,
    /// Where the current subpath started (for `close_path`).
    subpath_start: Option<(f64, f64)>,
    /// `<g clip-path>` groups open in the current section.
    clip_depth: usize,
    /// Clip depths recorded by `save`.
    saved: Vec<usize>,
    /// Next id for clip paths.
    next_id: usize,
    /// Whether a section group is open.
    in_section: bool,
    /// Current font.
    pub(crate) font: Font,
}

impl Canvas {
    /// A document of `width` x `height` pixels; `family` is the CSS font list for text.
    pub(crate) fn new(width: f64, height: f64, family: &str) -> Canvas {
        let mut out = String::with_capacity(16 * 1024);
        out.push_str("<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"");
        num(&mut out, width);
        out.push_str("px\" height=\"");
        num(&mut out, height);
        out.push_str("px\" viewBox=\"0 0 ");
        num(&mut out, width);
        out.push(' ');
        num(&mut out, height);
        out.push_str("\">\n<g class=\"graphite\" font-family=\"");
        escape_into(&mut out, family);
        out.push_str("\" font-kerning=\"none\">\n");
        Canvas {
            out,
            color: Rgba::rgb(0, 0, 0),
            line_width: 2.0,
            dash: None,
            path: String::new(),
            current: None,
            subpath_start: None,
            clip_depth: 0,
            saved: Vec::new(),
            next_id: 0,
            in_section: false,
            font: Font { size: 10.0, bold: false, italic: false },
        }
    }

    /// Starts a section group `<g class="name">`, closing the previous one (graphite-web's
    /// `encodeHeader`).
    pub(crate) fn section(&mut self, name: &str) {
        self.end_section();
        self.out.push_str("<g class=\"");
        escape_into(&mut self.out, name);
        self.out.push_str("\">\n");
        self.in_section = true;
    }

    fn end_section(&mut self) {
        self.close_clips(0);
        self.saved.clear();
        if self.in_section {
            self.out.push_str("</g>\n");
            self.in_section = false;
        }
    }

    /// Closes the document; `trailer` (graphite-web's metadata script) goes last inside
    /// `<svg>`.
    pub(crate) fn finish(mut self, trailer: &str) -> String {
        self.end_section();
        self.out.push_str("</g>\n");
        self.out.push_str(trailer);
        self.out.push_str("</svg>\n");
        self.out
    }

    pub(crate) fn set_color(&mut self, color: Rgba) {
        self.color = color;
    }

    pub(crate) fn set_line_width(&mut self, width: f64) {
        self.line_width = if width.is_finite() { width.max(0.0) } else { 0.0 };
    }

    pub(crate) fn line_width(&self) -> f64 {
        self.line_width
    }

    /// `set_dash([length], offset)`, or solid for `None`. Dashes shorter than half a pixel
    /// (invisible as dashes, and costly to rasterise) are drawn half a pixel long.
    pub(crate) fn set_dash(&mut self, dash: Option<(f64, f64)>) {
        self.dash = dash
            .filter(|(length, offset)| length.is_finite() && offset.is_finite() && *length > 0.0)
            .map(|(length, offset)| (length.max(MIN_DASH), offset));
    }

    /// Records the clip state (`ctx.save()`).
    pub(crate) fn save(&mut self) {
        self.saved.push(self.clip_depth);
    }

    /// Drops the clips added since the matching `save` (`ctx.restore()`).
    pub(crate) fn restore(&mut self) {
        if let Some(depth) = self.saved.pop() {
            self.close_clips(depth);
        }
    }

    fn close_clips(&mut self, depth: usize) {
        while self.clip_depth > depth {
            self.out.push_str("</g>\n");
            self.clip_depth -= 1;
        }
    }

    pub(crate) fn move_to(&mut self, x: f64, y: f64) {
        self.path.push('M');
        point(&mut self.path, x, y);
        self.current = Some((x, y));
        self.subpath_start = Some((x, y));
    }

    /// cairo's `line_to`: a line from the current point, or a move when there is none.
    pub(crate) fn line_to(&mut self, x: f64, y: f64) {
        if self.current.is_none() {
            self.move_to(x, y);
            return;
        }
        self.path.push('L');
        point(&mut self.path, x, y);
        self.current = Some((x, y));
    }

    pub(crate) fn close_path(&mut self) {
        if self.current.is_some() {
            self.path.push('Z');
            self.current = self.subpath_start;
        }
    }

    /// Appends a circular arc (cairo's `arc`, angles in radians, increasing clockwise on
    /// screen), joined to the current point by a line.
    pub(crate) fn arc(&mut self, cx: f64, cy: f64, radius: f64, from: f64, to: f64) {
        let start = (cx + radius * from.cos(), cy + radius * from.sin());
        self.line_to(start.0, start.1);
        if !(from.is_finite() && to.is_finite()) || radius <= 0.0 {
            return;
        }
        // cairo turns an end before the start into the next turn after it.
        let turn = 2.0 * std::f64::consts::PI;
        let to = if to < from { to + ((from - to) / turn).ceil() * turn } else { to };
        // SVG arcs cannot draw a whole circle in one command: split into quarter turns.
        let quarter = std::f64::consts::FRAC_PI_2;
        let mut a = from;
        while a < to {
            let b = (a + quarter).min(to);
            let end = (cx + radius * b.cos(), cy + radius * b.sin());
            self.path.push('A');
            num(&mut self.path, radius);
            self.path.push(' ');
            num(&mut self.path, radius);
            self.path.push_str(" 0 0 1");
            point(&mut self.path, end.0, end.1);
            self.current = Some(end);
            a = b;
        }
    }

    /// A copy of the path being built (cairo's `copy_path`).
    pub(crate) fn path_snapshot(&self) -> PathSnapshot {
        PathSnapshot {
            data: self.path.clone(),
            current: self.current,
            subpath_start: self.subpath_start,
        }
    }

    /// Replaces the path with a snapshot (`append_path` onto an empty path).
    pub(crate) fn restore_path(&mut self, snapshot: PathSnapshot) {
        self.path = snapshot.data;
        self.current = snapshot.current;
        self.subpath_start = snapshot.subpath_start;
    }

    fn take_path(&mut self) -> String {
        self.current = None;
        self.subpath_start = None;
        std::mem::take(&mut self.path)
    }

    /// Strokes and clears the path.
    pub(crate) fn stroke(&mut self) {
        let d = self.take_path();
        if d.is_empty() {
            return;
        }
        self.out.push_str("<path d=\"");
        self.out.push_str(&d);
        self.out.push_str("\" fill=\"none\"");
        self.stroke_attrs();
        self.out.push_str("/>\n");
    }

    fn stroke_attrs(&mut self) {
        let c = self.color;
        let _ = write!(self.out, " stroke=\"{}\"", c.hex());
        if c.a < 1.0 {
            self.out.push_str(" stroke-opacity=\"");
            num(&mut self.out, c.a.max(0.0));
            self.out.push('"');
        }
        self.out.push_str(" stroke-width=\"");
        num(&mut self.out, self.line_width);
        // cairo's defaults: butt caps, miter joins with a limit of 10.
        self.out.push_str("\" stroke-miterlimit=\"10\"");
        if let Some((length, offset)) = self.dash
            && length > 0.0
        {
            self.out.push_str(" stroke-dasharray=\"");
            num(&mut self.out, length);
            self.out.push_str("\" stroke-dashoffset=\"");
            num(&mut self.out, offset);
            self.out.push('"');
        }
    }

    fn fill_attrs(&mut self) {
        let c = self.color;
        let _ = write!(self.out, " fill=\"{}\"", c.hex());
        if c.a < 1.0 {
            self.out.push_str(" fill-opacity=\"");
            num(&mut self.out, c.a.max(0.0));
            self.out.push('"');
        }
    }

    /// Fills (non-zero rule) and clears the path. A path of fewer than three points encloses
    /// nothing and is dropped.
    pub(crate) fn fill(&mut self) {
        let d = self.take_path();
        if d.bytes().filter(|b| matches!(b, b'L' | b'A')).count() < 2 {
            return;
        }
        self.out.push_str("<path d=\"");
        self.out.push_str(&d);
        self.out.push('"');
        self.fill_attrs();
        self.out.push_str("/>\n");
    }

    /// Intersects the clip with the path (non-zero rule) and clears the path.
    pub(crate) fn clip(&mut self) {
        let d = self.take_path();
        let id = self.next_id;
        self.next_id += 1;
        let _ = write!(self.out, "<clipPath id=\"c{id}\"><path d=\"");
        self.out.push_str(if d.is_empty() { "M0 0" } else { &d });
        let _ = writeln!(
            self.out,
            "\" clip-rule=\"nonzero\"/></clipPath><g clip-path=\"url(#c{id})\">"
        );
        self.clip_depth += 1;
    }

    /// A filled rectangle.
    pub(crate) fn fill_rect(&mut self, x: f64, y: f64, w: f64, h: f64) {
        self.rect_element(x, y, w, h);
        self.fill_attrs();
        self.out.push_str("/>\n");
    }

    /// A stroked rectangle outline, solid.
    pub(crate) fn stroke_rect(&mut self, x: f64, y: f64, w: f64, h: f64) {
        self.rect_element(x, y, w, h);
        self.out.push_str(" fill=\"none\"");
        let dash = self.dash.take();
        self.stroke_attrs();
        self.dash = dash;
        self.out.push_str("/>\n");
    }

    fn rect_element(&mut self, x: f64, y: f64, w: f64, h: f64) {
        // cairo draws negative sizes towards the other side; SVG ignores them.
        let (x, w) = if w < 0.0 { (x + w, -w) } else { (x, w) };
        let (y, h) = if h < 0.0 { (y + h, -h) } else { (y, h) };
        self.out.push_str("<rect x=\"");
        num(&mut self.out, x);
        self.out.push_str("\" y=\"");
        num(&mut self.out, y);
        self.out.push_str("\" width=\"");
        num(&mut self.out, w);
        self.out.push_str("\" height=\"");
        num(&mut self.out, h);
        self.out.push('"');
    }

    /// graphite-web's `drawText`: `text` at `(x, y)` in the current font and colour, aligned
    /// horizontally and vertically against the font's extents, rotated by `rotate` degrees
    /// about the anchor.
    pub(crate) fn text(
        &mut self,
        text: &str,
        x: f64,
        y: f64,
        align: Align,
        valign: VAlign,
        rotate: f64,
    ) {
        let ext = font::extents(self.font.size);
        let vertical = match valign {
            VAlign::Top => ext.ascent,
            VAlign::Middle => ext.height / 2.0 - ext.descent,
            VAlign::Baseline => 0.0,
        };
        let angle = rotate.to_radians();
        // The baseline origin, as cairo's rel_move_to places it before rotating.
        let bx = x + angle.sin() * -vertical;
        let by = y + angle.cos() * vertical;
        // Each character at cairo's hinted (whole-pixel) advance, aligned by the total, so
        // text sits where graphite-web's does whatever the renderer's own spacing.
        let advances = font::advances(text, self.font.size);
        let width: f64 = advances.iter().sum();
        let shift = match align {
            Align::Left => 0.0,
            Align::Center => width / 2.0,
            Align::Right => width,
        };
        let local = rotate != 0.0 || self.font.italic;
        let (x0, y0) = if local { (-shift, 0.0) } else { (bx - shift, by) };
        self.out.push_str("<text");
        if local {
            self.out.push_str(" transform=\"translate(");
            num(&mut self.out, bx);
            self.out.push(' ');
            num(&mut self.out, by);
            self.out.push(')');
            if rotate != 0.0 {
                self.out.push_str(" rotate(");
                num(&mut self.out, rotate);
                self.out.push(')');
            }
            if self.font.italic {
                self.out.push_str(" skewX(");
                num(&mut self.out, ITALIC_SKEW_DEGREES);
                self.out.push(')');
            }
            self.out.push('"');
        }
        self.out.push_str(" x=\"");
        let mut at = x0;
        for (i, advance) in advances.iter().enumerate() {
            if i > 0 {
                self.out.push(' ');
            }
            num(&mut self.out, at);
            at += advance;
        }
        if advances.is_empty() {
            num(&mut self.out, x0);
        }
        self.out.push_str("\" y=\"");
        num(&mut self.out, y0);
        self.out.push('"');
        self.out.push_str(" font-size=\"");
        num(&mut self.out, self.font.size);
        self.out.push('"');
        self.fill_attrs();
        if self.font.bold {
            let c = self.color;
            let _ = write!(self.out, " stroke=\"{}\" stroke-width=\"", c.hex());
            num(&mut self.out, self.font.size / 20.0);
            self.out.push('"');
            if c.a < 1.0 {
                self.out.push_str(" stroke-opacity=\"");
                num(&mut self.out, c.a.max(0.0));
                self.out.push('"');
            }
        }
        // Spaces count, as in cairo (y labels end with one).
        self.out.push_str(" xml:space=\"preserve\">");
        escape_into(&mut self.out, text);
        self.out.push_str("</text>\n");
    }
}

/// Coordinates are kept within this many pixels of the origin: far beyond any picture
/// (at most 10,000 pixels wide), near enough for the rasteriser's arithmetic.
const MAX_COORDINATE: f64 = 1.0e6;

/// Writes a coordinate: rounded to 1/1000 of a pixel, shortest form, within
/// [`MAX_COORDINATE`]; non-finite values (which cairo would refuse) as 0.
pub(crate) fn num(out: &mut String, v: f64) {
    let r = ((v * 1000.0).round() / 1000.0).clamp(-MAX_COORDINATE, MAX_COORDINATE);
    if !r.is_finite() {
        out.push('0');
        return;
    }
    if r == r.trunc() && r.abs() < 1e15 {
        let _ = write!(out, "{}", r as i64);
    } else {
        let _ = write!(out, "{r}");
    }
}

fn point(out: &mut String, x: f64, y: f64) {
    num(out, x);
    out.push(' ');
    num(out, y);
}

/// Escapes text for XML content and attribute values; characters XML 1.0 cannot carry
/// (controls other than tab and newlines) become U+FFFD.
pub(crate) fn escape_into(out: &mut String, text: &str) {
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&apos;"),
            '\t' | '\n' | '\r' => out.push(c),
            c if (c as u32) < 0x20 || c == '\u{fffe}' || c == '\u{ffff}' => out.push('\u{fffd}'),
            c => out.push(c),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numbers_are_short() {
        let mut s = String::new();
        for v in [1.0, 1.5, 0.1234, -3.0004, f64::NAN, 12345.6789, -1e300] {
            num(&mut s, v);
            s.push(',');
        }
        assert_eq!(s, "1,1.5,0.123,-3,0,12345.679,-1000000,");
    }

    #[test]
    fn line_to_without_current_point_moves() {
        let mut c = Canvas::new(10.0, 10.0, "x");
        c.line_to(1.0, 2.0);
        c.line_to(3.0, 4.0);
        c.stroke();
        let svg = c.finish("");
        assert!(svg.contains("d=\"M1 2L3 4\""), "{svg}");
    }

    #[test]
    fn clips_nest_until_restore() {
        let mut c = Canvas::new(10.0, 10.0, "x");
        c.section("lines");
        c.save();
        c.move_to(0.0, 0.0);
        c.line_to(5.0, 5.0);
        c.clip();
        c.move_to(0.0, 0.0);
        c.line_to(1.0, 1.0);
        c.clip();
        c.restore();
        let svg = c.finish("");
        assert_eq!(svg.matches("<g clip-path").count(), 2);
        assert_eq!(svg.matches("<g").count(), svg.matches("</g>").count());
    }

    #[test]
    fn text_is_escaped_and_sanitised() {
        let mut c = Canvas::new(10.0, 10.0, "x");
        c.text("a<b&\u{1}", 0.0, 0.0, Align::Left, VAlign::Top, 0.0);
        let svg = c.finish("");
        assert!(svg.contains(">a&lt;b&amp;\u{fffd}</text>"), "{svg}");
    }
}
