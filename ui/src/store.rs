//! Dashboards on disk: one JSON file per dashboard in one directory, each replaced atomically.
//!
//! A save writes `NAME.json.tmp`, fsyncs it, renames it over `NAME.json` and fsyncs the
//! directory, so a crash leaves either the old or the new dashboard, never half of one. One
//! file per dashboard (rather than one file for all) keeps a save's cost independent of how
//! many dashboards exist and lets an operator copy or delete one with `cp`/`rm`.

use std::collections::BTreeMap;
use std::fs;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::Mutex;

use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};

/// The longest dashboard name, in bytes (file systems allow 255 for the whole file name).
pub const MAX_NAME_BYTES: usize = 128;
/// The most graphs one dashboard may hold (bounds what one save writes and one page draws).
pub const MAX_GRAPHS: usize = 500;
/// The largest dashboard file accepted, in bytes.
pub const MAX_DASHBOARD_BYTES: usize = 1 << 20;

/// One saved dashboard: plain data, checked by [`DashboardStore::put`] (which is the only way
/// in), so the fields are public for the UI's JSON and for tests.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct Dashboard {
    /// The name, also the file name; see [`validate_name`].
    pub name: String,
    /// The graphs, in grid order.
    pub graphs: Vec<Graph>,
    /// The time range every graph shows.
    pub time: TimeRange,
    /// Seconds between refreshes; 0 is off.
    pub refresh_seconds: u32,
    /// Template variables (`$host`), substituted into the targets by the browser.
    pub variables: Vec<Variable>,
}

/// One graph of a dashboard.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct Graph {
    /// The title shown above the chart (empty: the targets).
    pub title: String,
    /// The render targets, possibly with `$variable` references.
    pub targets: Vec<String>,
    /// Other render parameters kept as given (graphite-web's `params`: `yMin`, `areaMode`, …).
    pub params: BTreeMap<String, serde_json::Value>,
}

/// A time range in render's own syntax (`-6h`, `now`, `12:00_20240101`, epoch seconds).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct TimeRange {
    /// The `from` parameter.
    pub from: String,
    /// The `until` parameter.
    pub until: String,
}

impl Default for TimeRange {
    fn default() -> TimeRange {
        TimeRange { from: "-1h".into(), until: "now".into() }
    }
}

/// A template variable: the browser lists the last node of what `query` finds and lets the
/// viewer pick one (or `*`).
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct Variable {
    /// The name without `$`.
    pub name: String,
    /// A metrics glob such as `servers.*`.
    pub query: String,
    /// The value chosen when the dashboard was saved (empty: the first found).
    pub value: String,
}

/// Checks that `name` can be a dashboard name (and so a file name).
///
/// # Errors
///
/// [`Error::InvalidName`] when it is empty, longer than [`MAX_NAME_BYTES`], starts with `.` or
/// a space, or has a character outside `[A-Za-z0-9._ -]`.
pub fn validate_name(name: &str) -> Result<()> {
    let ok = !name.is_empty()
        && name.len() <= MAX_NAME_BYTES
        && !name.starts_with(['.', ' '])
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-' | b' '));
    if ok { Ok(()) } else { Err(Error::InvalidName { name: name.to_string() }) }
}

/// Checks the limits of a dashboard (name, graph count, variable names).
///
/// # Errors
///
/// [`Error::InvalidName`] or [`Error::InvalidDashboard`].
pub fn validate(dashboard: &Dashboard) -> Result<()> {
    validate_name(&dashboard.name)?;
    if dashboard.graphs.len() > MAX_GRAPHS {
        return Err(Error::invalid(format!(
            "{} graphs, more than the {MAX_GRAPHS} allowed",
            dashboard.graphs.len()
        )));
    }
    for v in &dashboard.variables {
        let ok =
            !v.name.is_empty() && v.name.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_');
        if !ok {
            return Err(Error::invalid(format!("variable name {:?} is not [A-Za-z0-9_]+", v.name)));
        }
    }
    Ok(())
}

/// Parses a dashboard from JSON bytes, checking its size.
///
/// # Errors
///
/// [`Error::InvalidDashboard`] when it is too large or not a dashboard.
pub fn parse(bytes: &[u8]) -> Result<Dashboard> {
    if bytes.len() > MAX_DASHBOARD_BYTES {
        return Err(Error::invalid(format!("larger than {MAX_DASHBOARD_BYTES} bytes")));
    }
    serde_json::from_slice(bytes).map_err(|e| Error::invalid(e.to_string()))
}

/// The dashboards directory.
#[derive(Debug)]
pub struct DashboardStore {
    /// Where the `NAME.json` files live.
    dir: PathBuf,
    /// Serialises writers, so a rename's check-then-write and two saves of one name do not
    /// interleave; readers do not take it (a rename is atomic, so they see whole files).
    writes: Mutex<()>,
}

impl DashboardStore {
    /// Opens (creating if needed) the dashboards directory `dir`.
    ///
    /// # Errors
    ///
    /// [`Error::Io`] when the directory cannot be created.
    pub fn open(dir: impl Into<PathBuf>) -> Result<DashboardStore> {
        let dir = dir.into();
        fs::create_dir_all(&dir).map_err(|e| Error::io(&dir, e))?;
        Ok(DashboardStore { dir, writes: Mutex::new(()) })
    }

    /// The directory.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    fn path(&self, name: &str) -> PathBuf {
        self.dir.join(format!("{name}.json"))
    }

    /// The names of the saved dashboards, sorted.
    ///
    /// # Errors
    ///
    /// [`Error::Io`] when the directory cannot be listed.
    pub fn list(&self) -> Result<Vec<String>> {
        let entries = fs::read_dir(&self.dir).map_err(|e| Error::io(&self.dir, e))?;
        let mut names = Vec::new();
        for entry in entries {
            let entry = entry.map_err(|e| Error::io(&self.dir, e))?;
            let file = entry.file_name();
            let Some(name) = file.to_str().and_then(|f| f.strip_suffix(".json")) else { continue };
            if validate_name(name).is_ok() {
                names.push(name.to_string());
            }
        }
        names.sort();
        Ok(names)
    }

    /// The dashboard `name`, or `None`.
    ///
    /// # Errors
    ///
    /// [`Error::InvalidName`], [`Error::Io`], or [`Error::Corrupt`] for a damaged file.
    pub fn get(&self, name: &str) -> Result<Option<Dashboard>> {
        validate_name(name)?;
        let path = self.path(name);
        let bytes = match fs::read(&path) {
            Ok(b) => b,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(Error::io(path, e)),
        };
        let mut d: Dashboard =
            serde_json::from_slice(&bytes).map_err(|source| Error::Corrupt { path, source })?;
        // The file name is the truth: a hand-copied file keeps its new name.
        d.name = name.to_string();
        Ok(Some(d))
    }

    /// Saves `dashboard` under its name, replacing any dashboard of that name.
    ///
    /// # Errors
    ///
    /// [`Error::InvalidName`], [`Error::InvalidDashboard`] or [`Error::Io`].
    pub fn put(&self, dashboard: &Dashboard) -> Result<()> {
        validate(dashboard)?;
        let _guard = self.writes.lock().unwrap_or_else(|p| p.into_inner());
        self.write(dashboard)
    }

    fn write(&self, dashboard: &Dashboard) -> Result<()> {
        // Serialising plain data with string keys cannot fail.
        let bytes =
            serde_json::to_vec_pretty(dashboard).map_err(|e| Error::invalid(e.to_string()))?;
        let path = self.path(&dashboard.name);
        let tmp = self.dir.join(format!("{}.json.tmp", dashboard.name));
        let written = (|| {
            let mut f = fs::File::create(&tmp)?;
            f.write_all(&bytes)?;
            f.sync_all()
        })();
        if let Err(e) = written {
            let _ = fs::remove_file(&tmp);
            return Err(Error::io(tmp, e));
        }
        fs::rename(&tmp, &path).map_err(|e| Error::io(&path, e))?;
        self.sync_dir()
    }

    /// Fsyncs the directory so a rename or removal survives a crash.
    fn sync_dir(&self) -> Result<()> {
        fs::File::open(&self.dir).and_then(|d| d.sync_all()).map_err(|e| Error::io(&self.dir, e))
    }

    /// Deletes the dashboard `name`; `false` when there was none.
    ///
    /// # Errors
    ///
    /// [`Error::InvalidName`] or [`Error::Io`].
    pub fn delete(&self, name: &str) -> Result<bool> {
        validate_name(name)?;
        let _guard = self.writes.lock().unwrap_or_else(|p| p.into_inner());
        let path = self.path(name);
        match fs::remove_file(&path) {
            Ok(()) => {
                self.sync_dir()?;
                Ok(true)
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(false),
            Err(e) => Err(Error::io(path, e)),
        }
    }

    /// Renames dashboard `from` to `to`.
    ///
    /// # Errors
    ///
    /// [`Error::NotFound`] without `from`, [`Error::Exists`] when `to` is taken, or the errors
    /// of reading and writing.
    pub fn rename(&self, from: &str, to: &str) -> Result<Dashboard> {
        validate_name(from)?;
        validate_name(to)?;
        let _guard = self.writes.lock().unwrap_or_else(|p| p.into_inner());
        let mut d = self.get(from)?.ok_or_else(|| Error::NotFound { name: from.to_string() })?;
        if from == to {
            return Ok(d);
        }
        if self.path(to).exists() {
            return Err(Error::Exists { name: to.to_string() });
        }
        d.name = to.to_string();
        // New file first, then the old one goes: a crash between leaves both, never neither.
        self.write(&d)?;
        let old = self.path(from);
        fs::remove_file(&old).map_err(|e| Error::io(old, e))?;
        self.sync_dir()?;
        Ok(d)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn dash(name: &str, targets: &[&str]) -> Dashboard {
        Dashboard {
            name: name.into(),
            graphs: vec![Graph {
                title: "t".into(),
                targets: targets.iter().map(|t| t.to_string()).collect(),
                params: BTreeMap::new(),
            }],
            ..Dashboard::default()
        }
    }

    #[test]
    fn rejects_names_that_escape_the_directory() {
        for bad in ["", "../x", "a/b", ".hidden", " lead", "a\0b", "é", &"x".repeat(129)] {
            assert!(validate_name(bad).is_err(), "{bad:?}");
        }
        for good in ["a", "web servers", "db-1.prod_x", &"x".repeat(128)] {
            assert!(validate_name(good).is_ok(), "{good:?}");
        }
    }

    #[test]
    fn saves_lists_reads_renames_and_deletes() {
        let dir = tempfile::tempdir().unwrap();
        let s = DashboardStore::open(dir.path().join("d")).unwrap();
        assert!(s.list().unwrap().is_empty());
        s.put(&dash("b", &["x.y"])).unwrap();
        s.put(&dash("a", &["sum(x.*)"])).unwrap();
        assert_eq!(s.list().unwrap(), ["a", "b"]);
        assert_eq!(s.get("b").unwrap().unwrap(), dash("b", &["x.y"]));
        assert!(matches!(s.rename("a", "b"), Err(Error::Exists { .. })));
        let renamed = s.rename("a", "c").unwrap();
        assert_eq!(renamed.name, "c");
        assert_eq!(s.list().unwrap(), ["b", "c"]);
        assert!(s.get("a").unwrap().is_none());
        assert!(s.delete("b").unwrap());
        assert!(!s.delete("b").unwrap());
        assert_eq!(s.list().unwrap(), ["c"]);
        // Nothing but the dashboards is left: no temp files.
        let files: Vec<_> =
            fs::read_dir(s.dir()).unwrap().map(|e| e.unwrap().file_name()).collect();
        assert_eq!(files, ["c.json"]);
    }

    #[test]
    fn survives_reopening_and_reports_damaged_files() {
        let dir = tempfile::tempdir().unwrap();
        {
            let s = DashboardStore::open(dir.path()).unwrap();
            s.put(&dash("keep", &["a.b"])).unwrap();
        }
        let s = DashboardStore::open(dir.path()).unwrap();
        assert_eq!(s.get("keep").unwrap().unwrap().graphs[0].targets, ["a.b"]);
        fs::write(dir.path().join("bad.json"), b"{not json").unwrap();
        assert!(matches!(s.get("bad"), Err(Error::Corrupt { .. })));
        // A stray temp file from a crash is not listed.
        fs::write(dir.path().join("x.json.tmp"), b"{}").unwrap();
        assert_eq!(s.list().unwrap(), ["bad", "keep"]);
    }

    #[test]
    fn rejects_too_many_graphs_and_bad_variables() {
        let mut d = dash("a", &["x"]);
        d.graphs = vec![Graph::default(); MAX_GRAPHS + 1];
        assert!(validate(&d).is_err());
        let mut d = dash("a", &["x"]);
        d.variables.push(Variable { name: "a b".into(), ..Variable::default() });
        assert!(validate(&d).is_err());
        assert!(parse(&vec![b' '; MAX_DASHBOARD_BYTES + 1]).is_err());
    }

    #[test]
    fn model_matches_a_btreemap() {
        // A small deterministic model check: random put/delete/rename against a BTreeMap.
        let dir = tempfile::tempdir().unwrap();
        let s = DashboardStore::open(dir.path()).unwrap();
        let mut model: BTreeMap<String, Dashboard> = BTreeMap::new();
        let mut seed: u64 = 0x9e37_79b9_7f4a_7c15;
        let mut next = || {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            seed
        };
        for i in 0..300 {
            let a = format!("n{}", next() % 6);
            let b = format!("n{}", next() % 6);
            match next() % 3 {
                0 => {
                    let d = dash(&a, &[&format!("m.{i}")]);
                    s.put(&d).unwrap();
                    model.insert(a, d);
                }
                1 => assert_eq!(s.delete(&a).unwrap(), model.remove(&a).is_some()),
                _ => {
                    let got = s.rename(&a, &b);
                    match (model.contains_key(&a), a == b || !model.contains_key(&b)) {
                        (false, _) => assert!(matches!(got, Err(Error::NotFound { .. }))),
                        (true, false) => assert!(matches!(got, Err(Error::Exists { .. }))),
                        (true, true) => {
                            let mut d = model.remove(&a).unwrap();
                            d.name = b.clone();
                            assert_eq!(got.unwrap(), d);
                            model.insert(b, d);
                        }
                    }
                }
            }
            assert_eq!(s.list().unwrap(), model.keys().cloned().collect::<Vec<_>>());
        }
        for (name, d) in &model {
            assert_eq!(&s.get(name).unwrap().unwrap(), d);
        }
    }
}
