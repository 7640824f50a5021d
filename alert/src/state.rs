//! The state file: everything that must survive a restart, in one JSON file written
//! atomically after each evaluation round.
//!
//! Durability steps, in order: write `<file>.tmp` in the same directory, fsync it, rename it
//! over the file, fsync the directory (so the rename itself is durable). A crash at any point
//! leaves either the old file or the new one, never a mix; at most one round is lost.
//!
//! The file holds the engine's part (per-instance state with its timers, each rule's last
//! evaluation, the transition history) and an opaque `notify` value the notifier owns (its
//! notification log, silences, acks). It is versioned: another version is an error naming both
//! versions; a corrupt file is an error naming the path, and the engine starts fresh only when
//! its configuration says so.

use std::collections::BTreeMap;
use std::io::Write as _;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};
use crate::model::{Labels, Severity, Status};

/// The format version this build reads and writes.
pub const STATE_VERSION: u32 = 1;

/// The whole file.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct StateFile {
    /// [`STATE_VERSION`].
    pub version: u32,
    /// When it was written (Unix seconds, the round's `now`).
    pub saved_at: i64,
    /// The engine's part.
    pub engine: EngineState,
    /// The notifier's part, opaque to the engine.
    #[serde(default)]
    pub notify: serde_json::Value,
}

/// The engine's part of the state file.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct EngineState {
    /// Per rule name.
    pub rules: BTreeMap<String, SavedRule>,
    /// The newest transitions, oldest first.
    pub history: Vec<Transition>,
}

/// One rule's saved state.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct SavedRule {
    /// The rule's last evaluation time.
    pub last_eval: Option<i64>,
    /// Its instances (Normal ones included).
    pub instances: Vec<SavedInstance>,
}

/// One alert instance's state: the engine's working record, saved as is.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct SavedInstance {
    /// Identity.
    pub labels: Labels,
    /// The series it follows (empty for rule-level instances and checks).
    #[serde(default)]
    pub series: String,
    /// Where it is.
    pub status: Status,
    /// Severity while firing (the prospective one while pending).
    pub severity: Option<Severity>,
    /// The last judged value.
    pub value: Option<f64>,
    /// When it entered `status`.
    pub since: i64,
    /// When the current bad streak began (the pending timer).
    pub pending_since: Option<i64>,
    /// When it became active (fired); kept across Firing/NoData/Error/Recovering.
    pub starts_at: Option<i64>,
    /// When it began recovering (the keep-firing timer).
    pub recovering_since: Option<i64>,
    /// When it was last judged.
    pub last_eval: i64,
    /// Rounds its series has been absent.
    #[serde(default)]
    pub missing_rounds: u32,
    /// Rendered annotations.
    #[serde(default)]
    pub annotations: Labels,
    /// The query error or check detail behind the status, if any.
    #[serde(default)]
    pub detail: Option<String>,
}

/// One state change of one instance.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Transition {
    /// When (the round's `now`).
    pub at: i64,
    /// The rule.
    pub rule: String,
    /// The instance.
    pub labels: Labels,
    /// The status before.
    pub from: Status,
    /// The status after.
    pub to: Status,
    /// The severity after (for Firing).
    pub severity: Option<Severity>,
    /// The value judged.
    pub value: Option<f64>,
}

/// Reads the state file; `Ok(None)` when there is none yet.
///
/// # Errors
///
/// [`Error::Io`] if it cannot be read, [`Error::StateVersion`] for another format version,
/// [`Error::StateCorrupt`] if it does not parse.
pub fn load(path: &Path) -> Result<Option<StateFile>> {
    let bytes = match std::fs::read(path) {
        Ok(b) => b,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(source) => return Err(Error::Io { path: path.to_path_buf(), source }),
    };
    let corrupt = |detail: String| Error::StateCorrupt { path: path.to_path_buf(), detail };
    let value: serde_json::Value =
        serde_json::from_slice(&bytes).map_err(|e| corrupt(e.to_string()))?;
    let version = value.get("version").and_then(serde_json::Value::as_u64);
    match version {
        Some(v) if v == u64::from(STATE_VERSION) => {}
        Some(v) => {
            return Err(Error::StateVersion {
                path: path.to_path_buf(),
                found: u32::try_from(v).unwrap_or(u32::MAX),
                expected: STATE_VERSION,
            });
        }
        None => return Err(corrupt("no `version` field".into())),
    }
    serde_json::from_value(value).map(Some).map_err(|e| corrupt(e.to_string()))
}

/// Writes `state` to `path` atomically (see the module docs for the steps).
///
/// # Errors
///
/// [`Error::Io`] naming the file that failed.
pub fn save(path: &Path, state: &StateFile) -> Result<()> {
    // Serialising plain data to a Vec cannot fail (no maps with non-string keys, no
    // non-finite floats reach serde_json as errors: they become null).
    let bytes = serde_json::to_vec(state).unwrap_or_default();
    write_atomic(path, &bytes)
}

/// Writes `bytes` to `path` through a temporary file in the same directory: write, fsync,
/// rename, fsync the directory.
///
/// # Errors
///
/// [`Error::Io`] naming the file that failed.
pub fn write_atomic(path: &Path, bytes: &[u8]) -> Result<()> {
    let io = |p: &Path| {
        let p: PathBuf = p.to_path_buf();
        move |source| Error::Io { path: p, source }
    };
    let mut tmp_name = path.file_name().map(|n| n.to_os_string()).unwrap_or_default();
    tmp_name.push(".tmp");
    let tmp = path.with_file_name(tmp_name);
    {
        let mut f = std::fs::File::create(&tmp).map_err(io(&tmp))?;
        f.write_all(bytes).map_err(io(&tmp))?;
        f.sync_all().map_err(io(&tmp))?;
    }
    std::fs::rename(&tmp, path).map_err(io(path))?;
    let dir = match path.parent() {
        Some(d) if !d.as_os_str().is_empty() => d.to_path_buf(),
        _ => PathBuf::from("."),
    };
    // Directories can be opened read-only and fsynced on Unix; elsewhere this is best effort.
    if let Ok(d) = std::fs::File::open(&dir) {
        #[cfg(unix)]
        d.sync_all().map_err(io(&dir))?;
        #[cfg(not(unix))]
        drop(d);
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> StateFile {
        let labels: Labels = [("alertname".to_owned(), "x".to_owned())].into();
        let mut rules = BTreeMap::new();
        rules.insert(
            "x".to_owned(),
            SavedRule {
                last_eval: Some(120),
                instances: vec![SavedInstance {
                    labels: labels.clone(),
                    series: "a.b".into(),
                    status: Status::Pending,
                    severity: Some(Severity::Warning),
                    value: Some(3.5),
                    since: 60,
                    pending_since: Some(60),
                    starts_at: None,
                    recovering_since: None,
                    last_eval: 120,
                    missing_rounds: 0,
                    annotations: Labels::new(),
                    detail: None,
                }],
            },
        );
        StateFile {
            version: STATE_VERSION,
            saved_at: 120,
            engine: EngineState { rules, history: vec![] },
            notify: serde_json::json!({"log": [1, 2]}),
        }
    }

    #[test]
    fn round_trips_and_replaces_atomically() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("alert.state");
        assert_eq!(load(&path).unwrap(), None);
        save(&path, &sample()).unwrap();
        assert_eq!(load(&path).unwrap(), Some(sample()));
        let mut second = sample();
        second.saved_at = 180;
        save(&path, &second).unwrap();
        assert_eq!(load(&path).unwrap().unwrap().saved_at, 180);
        assert!(!dir.path().join("alert.state.tmp").exists());
    }

    #[test]
    fn corrupt_and_foreign_files_are_errors_naming_the_path() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("alert.state");
        std::fs::write(&path, b"{\"version\": 1, \"engine\": 7").unwrap();
        let e = load(&path).unwrap_err();
        assert!(matches!(e, Error::StateCorrupt { .. }));
        assert!(e.to_string().contains("alert.state"), "{e}");
        std::fs::write(&path, b"{\"version\": 99}").unwrap();
        assert!(matches!(load(&path), Err(Error::StateVersion { found: 99, expected: 1, .. })));
        std::fs::write(&path, b"[]").unwrap();
        assert!(matches!(load(&path), Err(Error::StateCorrupt { .. })));
    }

    proptest::proptest! {
        // A restored value must be the same bits as the saved one, or a restart changes the
        // value an alert reports (CI once saw 13.969788726317505 come back ...503).
        #[test]
        fn every_finite_value_reads_back_exactly(v in proptest::num::f64::NORMAL | proptest::num::f64::SUBNORMAL | proptest::num::f64::ZERO) {
            let dir = tempfile::tempdir().unwrap();
            let path = dir.path().join("alert.state");
            let mut state = sample();
            state.engine.rules.get_mut("x").unwrap().instances[0].value = Some(v);
            save(&path, &state).unwrap();
            let back = load(&path).unwrap().unwrap();
            let got = back.engine.rules["x"].instances[0].value.unwrap();
            proptest::prop_assert_eq!(got.to_bits(), v.to_bits());
        }
    }

    proptest::proptest! {
        #[test]
        fn arbitrary_bytes_never_panic(bytes in proptest::collection::vec(proptest::num::u8::ANY, 0..300)) {
            let dir = tempfile::tempdir().unwrap();
            let path = dir.path().join("s");
            std::fs::write(&path, &bytes).unwrap();
            let _ = load(&path);
        }
    }
}
