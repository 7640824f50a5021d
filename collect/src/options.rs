//! A collector's settings as key/value strings.
//!
//! Diamond's `diamond.conf` (configobj) gives every value as a string, and TOML gives typed
//! values; both are flattened into [`Options`] so a collector reads its settings one way.
//! Getters parse with Diamond's rules (booleans `true/t/yes/y/1`, `false/f/no/n/0/empty`;
//! lists are comma separated) and fail with the key and value named.

use std::collections::BTreeMap;

use crate::error::{Error, Result};

/// Settings of one collector (or of the agent): keys to string values.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Options {
    map: BTreeMap<String, String>,
}

impl Options {
    /// No settings: every getter returns its default.
    pub fn new() -> Options {
        Options::default()
    }

    /// Sets `key` (a later set wins, which is how Diamond layers defaults, `[[default]]`,
    /// the collector's section and its own file).
    pub fn set(&mut self, key: impl Into<String>, value: impl Into<String>) -> &mut Options {
        self.map.insert(key.into(), value.into());
        self
    }

    /// Copies every setting of `other` over this one.
    pub fn merge(&mut self, other: &Options) {
        for (k, v) in &other.map {
            self.map.insert(k.clone(), v.clone());
        }
    }

    /// The raw value of `key`.
    pub fn get(&self, key: &str) -> Option<&str> {
        self.map.get(key).map(String::as_str)
    }

    /// Every key and value, sorted by key.
    pub fn iter(&self) -> impl Iterator<Item = (&str, &str)> {
        self.map.iter().map(|(k, v)| (k.as_str(), v.as_str()))
    }

    /// `key` as a string, or `default`.
    pub fn str_or<'a>(&'a self, key: &str, default: &'a str) -> &'a str {
        self.get(key).unwrap_or(default)
    }

    /// `key` as a boolean with Diamond's spellings (case-insensitive), or `default`.
    pub fn bool_or(&self, key: &str, default: bool) -> Result<bool> {
        let Some(raw) = self.get(key) else { return Ok(default) };
        match raw.trim().to_ascii_lowercase().as_str() {
            "true" | "t" | "yes" | "y" | "on" | "1" => Ok(true),
            "false" | "f" | "no" | "n" | "off" | "0" | "" => Ok(false),
            _ => Err(bad(key, raw, "expected a boolean (true/false, yes/no)")),
        }
    }

    /// `key` as a number, or `default`.
    pub fn f64_or(&self, key: &str, default: f64) -> Result<f64> {
        let Some(raw) = self.get(key) else { return Ok(default) };
        match raw.trim().parse::<f64>() {
            Ok(v) if v.is_finite() => Ok(v),
            _ => Err(bad(key, raw, "expected a number")),
        }
    }

    /// `key` as a non-negative integer, or `default`.
    pub fn u64_or(&self, key: &str, default: u64) -> Result<u64> {
        let Some(raw) = self.get(key) else { return Ok(default) };
        raw.trim().parse::<u64>().map_err(|_| bad(key, raw, "expected a non-negative integer"))
    }

    /// `key` as a comma-separated list (items trimmed, empty items dropped), or `default`.
    pub fn list_or(&self, key: &str, default: &[&str]) -> Vec<String> {
        match self.get(key) {
            Some(raw) => {
                raw.split(',').map(str::trim).filter(|s| !s.is_empty()).map(str::to_owned).collect()
            }
            None => default.iter().map(|s| (*s).to_owned()).collect(),
        }
    }
}

impl<K: Into<String>, V: Into<String>> FromIterator<(K, V)> for Options {
    fn from_iter<I: IntoIterator<Item = (K, V)>>(iter: I) -> Options {
        Options { map: iter.into_iter().map(|(k, v)| (k.into(), v.into())).collect() }
    }
}

fn bad(key: &str, value: &str, reason: &'static str) -> Error {
    Error::BadOption { key: key.to_owned(), value: value.to_owned(), reason }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn booleans_take_diamonds_spellings() {
        let o: Options =
            [("a", "Yes"), ("b", "f"), ("c", ""), ("d", "maybe")].into_iter().collect();
        assert!(o.bool_or("a", false).unwrap());
        assert!(!o.bool_or("b", true).unwrap());
        assert!(!o.bool_or("c", true).unwrap());
        assert!(o.bool_or("missing", true).unwrap());
        let err = o.bool_or("d", true).unwrap_err().to_string();
        assert!(err.contains("`d`") && err.contains("maybe"), "{err}");
    }

    #[test]
    fn lists_split_on_commas() {
        let o: Options = [("l", " eth, bond ,,em")].into_iter().collect();
        assert_eq!(o.list_or("l", &[]), ["eth", "bond", "em"]);
        assert_eq!(o.list_or("none", &["x"]), ["x"]);
    }

    #[test]
    fn later_settings_win() {
        let mut base: Options = [("interval", "300"), ("enabled", "false")].into_iter().collect();
        let over: Options = [("enabled", "true")].into_iter().collect();
        base.merge(&over);
        assert_eq!(base.u64_or("interval", 0).unwrap(), 300);
        assert!(base.bool_or("enabled", false).unwrap());
    }
}
