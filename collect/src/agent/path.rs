//! Full metric paths, as Diamond builds them, and the whitelist/blacklist filter.
//!
//! `<path_prefix>.<host>[.<path_suffix>].<path>.<metric>`: an empty prefix, a missing host
//! (`hostname_method = none`) or an empty suffix leave their node out, and a `path` of `.` or
//! empty leaves the collector's node out (the user-scripts and files collectors publish
//! straight below the host).

use carbon_proto::MetricName;
use regex::Regex;

/// The fixed part of a collector's paths: everything before the metric's own name.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct MetricPath {
    /// `servers.web01.cpu` (no trailing dot); empty when every node is left out.
    base: String,
}

impl MetricPath {
    /// The base of a collector's paths.
    pub fn new(path_prefix: &str, host: Option<&str>, path_suffix: &str, path: &str) -> MetricPath {
        let mut base = String::new();
        let mut push = |node: &str| {
            if !node.is_empty() {
                if !base.is_empty() {
                    base.push('.');
                }
                base.push_str(node);
            }
        };
        push(path_prefix);
        if let Some(h) = host {
            push(h);
        }
        push(path_suffix);
        if path != "." {
            push(path);
        }
        MetricPath { base }
    }

    /// The base (`servers.web01.cpu`).
    pub fn base(&self) -> &str {
        &self.base
    }

    /// The full path of `name` with whitespace turned into `_` (carbon's line protocol splits
    /// on it; `/` too, which would make a directory), or `None` when the result would have an empty node (`a..b`, a leading or
    /// trailing dot) or is otherwise refused by [`MetricName::new`]: carbon would turn it
    /// into a bad file path.
    pub fn full(&self, name: &str) -> Option<MetricName> {
        let mut out = String::with_capacity(self.base.len() + 1 + name.len());
        out.push_str(&self.base);
        if !self.base.is_empty() {
            out.push('.');
        }
        for c in name.chars() {
            out.push(if c.is_whitespace() || c.is_control() || c == '/' { '_' } else { c });
        }
        MetricName::new(&out).ok()
    }
}

/// Turns a free-form label (an instance name, a destination address) into one node.
pub fn node(label: &str) -> String {
    label
        .chars()
        .map(|c| if c.is_ascii_alphanumeric() || c == '_' || c == '-' { c } else { '_' })
        .collect()
}

/// Diamond's `metrics_whitelist` / `metrics_blacklist`: regexes matched at the start of the
/// metric's own name (Python's `re.match`), the whitelist winning when both are set.
#[derive(Clone, Debug, Default)]
pub struct MetricFilter {
    whitelist: Option<Regex>,
    blacklist: Option<Regex>,
}

impl MetricFilter {
    /// A filter from the two settings (empty means unset).
    ///
    /// # Errors
    ///
    /// The regex error and which setting it came from.
    pub fn new(
        whitelist: Option<&str>,
        blacklist: Option<&str>,
    ) -> Result<MetricFilter, (&'static str, regex::Error)> {
        let compile = |key: &'static str,
                       pat: Option<&str>|
         -> Result<Option<Regex>, (&'static str, regex::Error)> {
            match pat.filter(|p| !p.is_empty()) {
                Some(p) => Regex::new(&format!("^(?:{p})")).map(Some).map_err(|e| (key, e)),
                None => Ok(None),
            }
        };
        Ok(MetricFilter {
            whitelist: compile("metrics_whitelist", whitelist)?,
            blacklist: compile("metrics_blacklist", blacklist)?,
        })
    }

    /// Whether `name` (below the collector's node) is published.
    pub fn allows(&self, name: &str) -> bool {
        match (&self.whitelist, &self.blacklist) {
            (Some(w), _) => w.is_match(name),
            (None, Some(b)) => !b.is_match(name),
            (None, None) => true,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn paths_are_built_like_diamonds() {
        let p = MetricPath::new("servers", Some("web01"), "", "cpu");
        assert_eq!(p.full("total.user").unwrap().as_str(), "servers.web01.cpu.total.user");
        let p = MetricPath::new("servers", Some("web01"), "prod", "cpu");
        assert_eq!(p.full("total.user").unwrap().as_str(), "servers.web01.prod.cpu.total.user");
        let p = MetricPath::new("servers", Some("web01"), "", ".");
        assert_eq!(p.full("app.queue").unwrap().as_str(), "servers.web01.app.queue");
        let p = MetricPath::new("servers", Some("web01"), "", "");
        assert_eq!(p.full("app.queue").unwrap().as_str(), "servers.web01.app.queue");
        let p = MetricPath::new("servers", None, "", "loadavg");
        assert_eq!(p.full("01").unwrap().as_str(), "servers.loadavg.01");
        let p = MetricPath::new("", Some("web01"), "", "memory");
        assert_eq!(p.full("MemFree").unwrap().as_str(), "web01.memory.MemFree");
        let p = MetricPath::new("", None, "", ".");
        assert_eq!(p.full("x").unwrap().as_str(), "x");
        let p = MetricPath::new("servers", Some("com.example.web01"), "", "cpu");
        assert_eq!(
            p.full("total.idle").unwrap().as_str(),
            "servers.com.example.web01.cpu.total.idle"
        );
    }

    #[test]
    fn names_that_would_break_the_protocol_are_mended_or_refused() {
        let p = MetricPath::new("servers", Some("h"), "", "exec");
        assert_eq!(p.full("my metric").unwrap().as_str(), "servers.h.exec.my_metric");
        assert_eq!(p.full("a..b"), None);
        assert_eq!(p.full(".a"), None);
        assert_eq!(p.full(""), None);
        assert_eq!(node("nginx web2"), "nginx_web2");
        assert_eq!(node("127.0.0.1:2003"), "127_0_0_1_2003");
    }

    #[test]
    fn the_whitelist_wins_and_matches_at_the_start() {
        let f = MetricFilter::new(Some("total\\."), Some(".*")).unwrap();
        assert!(f.allows("total.user"));
        assert!(!f.allows("cpu0.total.user"));
        let f = MetricFilter::new(None, Some("cpu\\d+")).unwrap();
        assert!(!f.allows("cpu3.idle"));
        assert!(f.allows("total.idle"));
        let f = MetricFilter::new(Some(""), None).unwrap();
        assert!(f.allows("anything"));
        let err = MetricFilter::new(None, Some("(")).unwrap_err();
        assert_eq!(err.0, "metrics_blacklist");
    }

    proptest! {
        #[test]
        fn full_paths_are_valid_metric_names(name in "\\PC{0,40}") {
            let p = MetricPath::new("servers", Some("h"), "", "x");
            if let Some(full) = p.full(&name) {
                prop_assert!(!full.as_str().contains(char::is_whitespace));
            }
        }
    }
}
