//! Colours as graphite-web's `Graph.setColor` reads them: one of its named colours
//! (`colorAliases`, not the CSS names: graphite-web's `blue` is `#6464ff`), or hex digits
//! `RRGGBB` / `RRGGBBAA`, optionally after `#` or `%23`.

use crate::error::{Error, Result};

/// graphite-web's `colorAliases` (glyph.py).
const ALIASES: &[(&str, [u8; 3])] = &[
    ("black", [0, 0, 0]),
    ("white", [255, 255, 255]),
    ("blue", [100, 100, 255]),
    ("green", [0, 200, 0]),
    ("red", [200, 0, 50]),
    ("yellow", [255, 255, 0]),
    ("orange", [255, 165, 0]),
    ("purple", [200, 100, 255]),
    ("brown", [150, 100, 50]),
    ("cyan", [0, 255, 255]),
    ("aqua", [0, 150, 150]),
    ("gray", [175, 175, 175]),
    ("grey", [175, 175, 175]),
    ("magenta", [255, 0, 255]),
    ("pink", [255, 100, 100]),
    ("gold", [200, 200, 0]),
    ("rose", [200, 150, 200]),
    ("darkblue", [0, 0, 255]),
    ("darkgreen", [0, 255, 0]),
    ("darkred", [255, 0, 0]),
    ("darkgray", [111, 111, 111]),
    ("darkgrey", [111, 111, 111]),
];

/// An RGB colour with an alpha from 0 to 1.
#[derive(Clone, Copy, Debug, PartialEq)]
pub(crate) struct Rgba {
    pub(crate) r: u8,
    pub(crate) g: u8,
    pub(crate) b: u8,
    pub(crate) a: f64,
}

impl Rgba {
    /// An opaque colour.
    pub(crate) const fn rgb(r: u8, g: u8, b: u8) -> Rgba {
        Rgba { r, g, b, a: 1.0 }
    }

    /// `#rrggbb` for SVG attributes.
    pub(crate) fn hex(self) -> String {
        format!("#{:02x}{:02x}{:02x}", self.r, self.g, self.b)
    }
}

/// Parses a colour as `setColor(value, alpha, forceAlpha)` does: a name, else at least six
/// characters of hex (`#` or `%23` first is skipped); eight hex digits carry their own alpha,
/// which wins over `alpha` unless `force_alpha`.
///
/// # Errors
///
/// Anything else: graphite-web's `ValueError` (a 500 there; [`Error::Evaluation`] here).
pub(crate) fn parse(value: &str, alpha: f64, force_alpha: bool) -> Result<Rgba> {
    if let Some((_, [r, g, b])) = ALIASES.iter().find(|(name, _)| *name == value) {
        return Ok(Rgba { r: *r, g: *g, b: *b, a: alpha });
    }
    let invalid = || {
        Error::Evaluation(format!(
            "Must specify an RGB 3-tuple, an html color string, or a known color alias! (got {value:?})"
        ))
    };
    if value.chars().count() < 6 {
        return Err(invalid());
    }
    let mut s = value.strip_prefix('#').unwrap_or(value);
    s = s.strip_prefix("%23").unwrap_or(s);
    // Python slices characters: s[0:2], s[2:4], s[4:6] (a slice may come up short).
    let chars: Vec<char> = s.chars().collect();
    let channel = |from: usize| -> Result<u8> {
        let digits: String = chars.iter().skip(from).take(2).collect();
        if digits.is_empty() {
            return Err(invalid());
        }
        u8::from_str_radix(&digits, 16).map_err(|_| invalid())
    };
    let (r, g, b) = (channel(0)?, channel(2)?, channel(4)?);
    let mut a = alpha;
    if chars.len() == 8 && !force_alpha {
        a = f64::from(channel(6)?) / 255.0;
    }
    Ok(Rgba { r, g, b, a })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_graphite_webs_not_css() {
        assert_eq!(parse("blue", 1.0, false).unwrap(), Rgba::rgb(100, 100, 255));
        assert_eq!(parse("darkgrey", 1.0, false).unwrap(), Rgba::rgb(111, 111, 111));
        assert_eq!(parse("rose", 0.5, false).unwrap().a, 0.5);
    }

    #[test]
    fn hex_forms() {
        assert_eq!(parse("ff0000", 1.0, false).unwrap(), Rgba::rgb(255, 0, 0));
        assert_eq!(parse("#00FF00", 1.0, false).unwrap(), Rgba::rgb(0, 255, 0));
        assert_eq!(parse("%230000ff", 1.0, false).unwrap(), Rgba::rgb(0, 0, 255));
        let c = parse("ff000080", 1.0, false).unwrap();
        assert!((c.a - 128.0 / 255.0).abs() < 1e-12);
        assert_eq!(parse("ff000080", 0.25, true).unwrap().a, 0.25);
        assert_eq!(parse("ff0000", 1.0, false).unwrap().hex(), "#ff0000");
    }

    #[test]
    fn rejects_what_graphite_web_rejects() {
        for bad in ["", "fff", "#fff", "zzzzzz", "navy", " blue"] {
            assert!(parse(bad, 1.0, false).is_err(), "{bad}");
        }
    }
}
