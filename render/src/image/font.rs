//! The one font every graph is drawn with: DejaVu Sans, bundled into the binary so text is
//! legible on any machine (a server without fonts installed included). Licence:
//! `render/assets/DejaVuSans-LICENSE.txt`.
//!
//! Layout needs text sizes before anything is drawn (legend columns, the room the y labels
//! take), as graphite-web asks cairo for them. cairo hints the font: its metrics come back
//! in whole pixels (ascent and descent rounded up, the line height rounded, each glyph's
//! advance rounded), and graphite-web's layout is built on those numbers. The functions here
//! compute the same rounded values from the font's own tables, so the same text takes the
//! same room as in graphite-web (checked against cairo for sizes 5 to 40).

use std::sync::{Arc, OnceLock};

use resvg::usvg::fontdb;

use super::cairo_advances::{ADVANCES, FIRST_SIZE};

/// DejaVu Sans, unmodified, from Debian's fonts-dejavu-core.
static DEJAVU_SANS: &[u8] = include_bytes!("../../assets/DejaVuSans.ttf");

/// The family name the bundled font registers under (what the SVG asks for).
pub(crate) const FAMILY: &str = "DejaVu Sans";

/// cairo's `font_extents()` for a size: ascent, descent and line height in pixels.
#[derive(Clone, Copy, Debug, PartialEq)]
pub(crate) struct FontExtents {
    /// Above the baseline (cairo's `ascent`, graphite-web's `maxAscent`).
    pub(crate) ascent: f64,
    /// Below the baseline (`maxDescent`).
    pub(crate) descent: f64,
    /// Baseline to baseline (`maxHeight`).
    pub(crate) height: f64,
}

/// The parsed font: only the numbers layout needs, read once.
struct Face {
    face: ttf_parser::Face<'static>,
    units_per_em: f64,
    ascender: f64,
    descender: f64,
    line_height: f64,
}

fn face() -> Option<&'static Face> {
    static FACE: OnceLock<Option<Face>> = OnceLock::new();
    FACE.get_or_init(|| {
        let face = ttf_parser::Face::parse(DEJAVU_SANS, 0).ok()?;
        let ascender = f64::from(face.ascender());
        let descender = -f64::from(face.descender());
        Some(Face {
            units_per_em: f64::from(face.units_per_em()),
            ascender,
            descender,
            line_height: ascender + descender + f64::from(face.line_gap()),
            face,
        })
    })
    .as_ref()
}

/// The font's extents at `size` pixels, rounded as FreeType's hinting rounds them (ascent
/// and descent up, the height to nearest).
pub(crate) fn extents(size: f64) -> FontExtents {
    match face() {
        Some(f) => {
            let scale = size / f.units_per_em;
            FontExtents {
                ascent: (f.ascender * scale).ceil(),
                descent: (f.descender * scale).ceil(),
                height: (f.line_height * scale + 0.5).floor(),
            }
        }
        // The font is compiled in and parses (tested); these are its proportions, kept only
        // so that a broken asset degrades the layout instead of failing every graph.
        None => FontExtents {
            ascent: (size * 0.93).ceil(),
            descent: (size * 0.24).ceil(),
            height: (size * 1.16 + 0.5).floor(),
        },
    }
}

/// The advance width of `text` at `size` pixels: the sum of each glyph's advance rounded to
/// whole pixels (cairo's `text_extents().x_advance` with hinted metrics; no kerning, as
/// cairo's toy text API does none).
pub(crate) fn text_width(text: &str, size: f64) -> f64 {
    advances(text, size).iter().sum()
}

/// Each character's advance at `size` pixels as cairo's hinted metrics give it: from the
/// table of cairo's own values for printable ASCII at whole sizes 5 to 40 (FreeType's
/// hinting moves many advances by a pixel, which rounding cannot predict), else the font's
/// advance rounded to whole pixels (characters the font lacks take the width of its
/// missing-glyph box).
pub(crate) fn advances(text: &str, size: f64) -> Vec<f64> {
    let Some(f) = face() else {
        return text.chars().map(|_| (size * 0.6).round()).collect();
    };
    let scale = size / f.units_per_em;
    let notdef = f.face.glyph_hor_advance(ttf_parser::GlyphId(0)).map_or(0.0, f64::from);
    // cairo's own numbers where we have them (whole sizes, printable ASCII).
    let table = (size.fract() == 0.0 && size >= FIRST_SIZE as f64)
        .then(|| ADVANCES.get(size as usize - FIRST_SIZE))
        .flatten();
    text.chars()
        .map(|c| {
            if let Some(&a) =
                table.and_then(|row| (c as usize).checked_sub(32).and_then(|i| row.get(i)))
            {
                return f64::from(a);
            }
            let advance = f
                .face
                .glyph_index(c)
                .and_then(|g| f.face.glyph_hor_advance(g))
                .map_or(notdef, f64::from);
            (advance * scale + 0.5).floor()
        })
        .collect()
}

/// The font database usvg draws text from: the bundled font alone (no system fonts, so the
/// picture is the same on every machine), built once and shared by every request.
pub(crate) fn database() -> Arc<fontdb::Database> {
    static DB: OnceLock<Arc<fontdb::Database>> = OnceLock::new();
    DB.get_or_init(|| {
        let mut db = fontdb::Database::new();
        db.load_font_data(DEJAVU_SANS.to_vec());
        db.set_sans_serif_family(FAMILY);
        db.set_serif_family(FAMILY);
        db.set_monospace_family(FAMILY);
        db.set_cursive_family(FAMILY);
        db.set_fantasy_family(FAMILY);
        Arc::new(db)
    })
    .clone()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bundled_font_parses_and_registers() {
        assert!(face().is_some());
        let db = database();
        assert_eq!(db.len(), 1);
        assert!(db.faces().any(|f| f.families.iter().any(|(name, _)| name == FAMILY)));
    }

    #[test]
    fn extents_match_cairos_hinted_metrics() {
        // cairo.Context.font_extents() for "Sans" (DejaVu Sans) at these sizes.
        let e = extents(10.0);
        assert_eq!((e.ascent, e.descent, e.height), (10.0, 3.0, 12.0));
        let e = extents(12.0);
        assert_eq!((e.ascent, e.descent, e.height), (12.0, 3.0, 14.0));
        let e = extents(6.4);
        assert_eq!((e.ascent, e.descent, e.height), (6.0, 2.0, 7.0));
        let e = extents(10.6);
        assert_eq!((e.ascent, e.descent, e.height), (10.0, 3.0, 12.0));
    }

    #[test]
    fn widths_match_cairos_hinted_advances() {
        // cairo.Context.text_extents(text).x_advance for "Sans" with antialiasing off (as
        // glyph.py sets it) at sizes 10, 11 and 12.
        assert_eq!(text_width("12:00", 10.0), 27.0);
        assert_eq!(text_width("servers.web01.cpu", 10.0), 91.0);
        assert_eq!(text_width("12:00", 11.0), 32.0);
        assert_eq!(text_width("servers.web01.cpu", 12.0), 118.0);
        assert_eq!(text_width("", 10.0), 0.0);
        // Outside the table: the font's advances, rounded ("é" is 1260 units).
        assert_eq!(text_width("é", 10.0), 6.0);
        assert_eq!(text_width("12:00", 10.5), 32.0);
    }
}
