//! Label and annotation templates: `{value}`, `{series}`, `{node:N}`, `{severity}`,
//! `{status}` and `{LABEL}` for any label of the instance (Graphite tags included).
//!
//! Templates are compiled when the rules file loads, so a bad one is a load error with a line,
//! and rendering per instance per round is a walk over a few pieces (no parsing on the hot
//! path). `{{` and `}}` are literal braces.

use std::fmt::Write as _;

use crate::model::Labels;

/// One compiled template.
#[derive(Clone, Debug, PartialEq)]
pub struct Template {
    pieces: Vec<Piece>,
}

#[derive(Clone, Debug, PartialEq)]
enum Piece {
    Text(String),
    Value,
    Series,
    Severity,
    Status,
    /// A node of the series name, as aliasByNode counts them (negative from the end).
    Node(i64),
    Label(String),
}

/// What a template is rendered against.
#[derive(Clone, Copy, Debug, Default)]
pub struct Vars<'a> {
    /// The judged value.
    pub value: Option<f64>,
    /// The series name (empty for rule-level instances and checks).
    pub series: &'a str,
    /// The instance's labels.
    pub labels: Option<&'a Labels>,
    /// `warning` / `critical` while firing.
    pub severity: &'a str,
    /// The status name.
    pub status: &'a str,
}

impl Template {
    /// Compiles `text`.
    ///
    /// # Errors
    ///
    /// An unclosed or stray brace, an empty placeholder or a node index that is not an
    /// integer; the message says which.
    pub fn parse(text: &str) -> Result<Template, String> {
        let mut pieces = Vec::new();
        let mut lit = String::new();
        let mut rest = text;
        while let Some(c) = rest.chars().next() {
            if let Some(r) = rest.strip_prefix("{{") {
                lit.push('{');
                rest = r;
            } else if let Some(r) = rest.strip_prefix("}}") {
                lit.push('}');
                rest = r;
            } else if c == '}' {
                return Err(format!("stray `}}` in template `{text}` (write `}}}}` for a brace)"));
            } else if c == '{' {
                let Some(end) = rest.find('}') else {
                    return Err(format!("unclosed `{{` in template `{text}`"));
                };
                let name = rest.get(1..end).unwrap_or("").trim();
                rest = rest.get(end + 1..).unwrap_or("");
                if !lit.is_empty() {
                    pieces.push(Piece::Text(std::mem::take(&mut lit)));
                }
                pieces.push(Template::placeholder(name, text)?);
            } else {
                lit.push(c);
                rest = rest.get(c.len_utf8()..).unwrap_or("");
            }
        }
        if !lit.is_empty() {
            pieces.push(Piece::Text(lit));
        }
        Ok(Template { pieces })
    }

    fn placeholder(name: &str, text: &str) -> Result<Piece, String> {
        if name.is_empty() || name.contains('{') {
            return Err(format!("empty or nested placeholder in template `{text}`"));
        }
        Ok(match name {
            "value" => Piece::Value,
            "series" => Piece::Series,
            "severity" => Piece::Severity,
            "status" => Piece::Status,
            _ => match name.strip_prefix("node:") {
                Some(n) => Piece::Node(n.trim().parse().map_err(|_| {
                    format!("`{{{name}}}` in template `{text}`: the node must be an integer")
                })?),
                None => Piece::Label(name.to_owned()),
            },
        })
    }

    /// True when the template refers to the judged value (not allowed in labels: labels are the
    /// instance's identity and must not change with the value).
    pub fn uses_value(&self) -> bool {
        self.pieces.iter().any(|p| matches!(p, Piece::Value | Piece::Severity | Piece::Status))
    }

    /// True when the template depends on the series (nodes, labels): such a label is dropped
    /// from rule-level instances, which have no series.
    pub fn uses_series(&self) -> bool {
        self.pieces.iter().any(|p| matches!(p, Piece::Series | Piece::Node(_) | Piece::Label(_)))
    }

    /// Renders with `vars`; unknown labels and out-of-range nodes render as nothing.
    pub fn render(&self, vars: &Vars<'_>) -> String {
        let mut out = String::new();
        for piece in &self.pieces {
            match piece {
                Piece::Text(t) => out.push_str(t),
                Piece::Value => {
                    if let Some(v) = vars.value {
                        out.push_str(&format_value(v));
                    }
                }
                Piece::Series => out.push_str(vars.series),
                Piece::Severity => out.push_str(vars.severity),
                Piece::Status => out.push_str(vars.status),
                Piece::Node(n) => out.push_str(node(vars.series, *n)),
                Piece::Label(l) => {
                    if let Some(v) = vars.labels.and_then(|m| m.get(l)) {
                        out.push_str(v);
                    }
                }
            }
        }
        out
    }
}

/// Node `n` of a dotted series name (aliasByNode's counting: 0 is the first, -1 the last);
/// empty when out of range. Tagged names count nodes of the path before the first `;`.
pub fn node(series: &str, n: i64) -> &str {
    let path = series.split(';').next().unwrap_or("");
    let count = path.split('.').count() as i64;
    let i = if n < 0 { count + n } else { n };
    if i < 0 || i >= count {
        return "";
    }
    path.split('.').nth(i as usize).unwrap_or("")
}

/// A value for humans: integers without a fraction, others with up to four decimals.
pub fn format_value(v: f64) -> String {
    if !v.is_finite() {
        return v.to_string();
    }
    if v == v.trunc() && v.abs() < 1e15 {
        return format!("{}", v as i64);
    }
    let mut s = String::new();
    let _ = write!(s, "{v:.4}");
    let trimmed = s.trim_end_matches('0').trim_end_matches('.');
    trimmed.to_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renders_value_nodes_and_labels() {
        let t = Template::parse("{host}: {value}% free on {node:1} ({node:-1}) {{x}}").unwrap();
        let labels: Labels = [("host".to_owned(), "web01".to_owned())].into();
        let vars = Vars {
            value: Some(12.5),
            series: "servers.web01.disk",
            labels: Some(&labels),
            ..Vars::default()
        };
        assert_eq!(t.render(&vars), "web01: 12.5% free on web01 (disk) {x}");
        assert!(t.uses_value());
        assert!(t.uses_series());
    }

    #[test]
    fn rejects_bad_templates() {
        assert!(Template::parse("{value").is_err());
        assert!(Template::parse("a } b").is_err());
        assert!(Template::parse("{}").is_err());
        assert!(Template::parse("{node:x}").is_err());
    }

    #[test]
    fn nodes_out_of_range_are_empty() {
        assert_eq!(node("a.b.c", 5), "");
        assert_eq!(node("a.b.c", -4), "");
        assert_eq!(node("a.b.c;k=v", -1), "c");
    }

    #[test]
    fn formats_values() {
        assert_eq!(format_value(3.0), "3");
        assert_eq!(format_value(1.23456), "1.2346");
        assert_eq!(format_value(0.5), "0.5");
    }
}
