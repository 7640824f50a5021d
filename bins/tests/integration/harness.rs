//! Runs a whisper-* tool twice, once as Debian's Python script (through the reference worker)
//! and once as our binary, on the same files at the same instant, and compares the outcomes.
//!
//! Each run starts from the same directory contents (`setup` recreates them), so tools that
//! write files can be compared by the bytes they leave behind, and the paths they print are the
//! same in both runs.

use std::collections::BTreeMap;
use std::path::Path;
use std::process::Command;
use std::sync::{Mutex, MutexGuard, OnceLock};

use serde_json::json;

use crate::reference::PyWorker;

/// The instant every comparison runs at (`time.time()` for Python, `WHISPER_NOW` for ours).
pub(crate) const NOW: i64 = 1_700_000_000;

/// What a run printed and returned.
#[derive(Clone, Debug, PartialEq)]
pub(crate) struct Outcome {
    pub(crate) stdout: String,
    pub(crate) stderr: String,
    pub(crate) code: i64,
}

/// An outcome and the files the run left in its directory.
#[derive(Debug)]
pub(crate) struct Run {
    pub(crate) out: Outcome,
    pub(crate) files: BTreeMap<String, Vec<u8>>,
}

/// The path of our binary for `tool`.
pub(crate) fn bin(tool: &str) -> &'static str {
    match tool {
        "whisper-info" => env!("CARGO_BIN_EXE_whisper-info"),
        "whisper-dump" => env!("CARGO_BIN_EXE_whisper-dump"),
        "whisper-fetch" => env!("CARGO_BIN_EXE_whisper-fetch"),
        "whisper-create" => env!("CARGO_BIN_EXE_whisper-create"),
        "whisper-update" => env!("CARGO_BIN_EXE_whisper-update"),
        "whisper-resize" => env!("CARGO_BIN_EXE_whisper-resize"),
        "whisper-merge" => env!("CARGO_BIN_EXE_whisper-merge"),
        "whisper-fill" => env!("CARGO_BIN_EXE_whisper-fill"),
        "whisper-diff" => env!("CARGO_BIN_EXE_whisper-diff"),
        "whisper-set-aggregation-method" => env!("CARGO_BIN_EXE_whisper-set-aggregation-method"),
        "whisper-set-xfilesfactor" => env!("CARGO_BIN_EXE_whisper-set-xfilesfactor"),
        other => panic!("unknown tool {other}"),
    }
}

/// Runs our binary.
pub(crate) fn run_ours(tool: &str, args: &[String], now: &str, tz: &str) -> Outcome {
    let output = Command::new(bin(tool))
        .args(args)
        .env("WHISPER_NOW", now)
        .env("TZ", tz)
        .output()
        .expect("run our binary");
    Outcome {
        stdout: String::from_utf8(output.stdout).expect("utf-8 stdout"),
        stderr: String::from_utf8(output.stderr).expect("utf-8 stderr"),
        code: output.status.code().map_or(-1, i64::from),
    }
}

static WORKER: OnceLock<Option<Mutex<PyWorker>>> = OnceLock::new();

/// The shared reference worker, or `None` (after printing SKIP) when python3-whisper is missing.
fn worker() -> Option<MutexGuard<'static, PyWorker>> {
    WORKER
        .get_or_init(|| PyWorker::spawn().map(Mutex::new))
        .as_ref()
        .map(|m| m.lock().unwrap_or_else(|poisoned| poisoned.into_inner()))
}

/// Whether the reference is available (prints SKIP, or panics under
/// `GRAPHITE_REQUIRE_REFERENCE=1`, when it is not).
pub(crate) fn have_reference() -> bool {
    worker().is_some()
}

/// Runs the Python script in the reference worker.
pub(crate) fn run_python(tool: &str, args: &[String], now: &str, tz: &str) -> Outcome {
    let mut w = worker().expect("reference checked by the caller");
    let now: serde_json::Value = serde_json::from_str(now).expect("now is a JSON number");
    let op = if tz == "UTC" { "cli" } else { "cli_tz" };
    let answer = w
        .call(json!({"op": op, "tz": tz, "tool": tool, "argv": args, "now": now}))
        .unwrap_or_else(|e| panic!("reference worker failed on {tool} {args:?}: {e}"));
    Outcome {
        stdout: answer["stdout"].as_str().unwrap_or_default().to_string(),
        stderr: answer["stderr"].as_str().unwrap_or_default().to_string(),
        code: answer["code"].as_i64().unwrap_or(-1),
    }
}

/// Every file in `dir`, by name.
fn snapshot(dir: &Path) -> BTreeMap<String, Vec<u8>> {
    let mut files = BTreeMap::new();
    for entry in std::fs::read_dir(dir).expect("read dir") {
        let entry = entry.expect("dir entry");
        if entry.file_type().expect("file type").is_file() {
            let name = entry.file_name().to_string_lossy().into_owned();
            files.insert(name, std::fs::read(entry.path()).expect("read file"));
        }
    }
    files
}

fn reset(dir: &Path, setup: &dyn Fn(&Path)) {
    for entry in std::fs::read_dir(dir).expect("read dir") {
        let path = entry.expect("dir entry").path();
        if path.is_dir() {
            std::fs::remove_dir_all(&path).expect("clear dir");
        } else {
            std::fs::remove_file(&path).expect("clear file");
        }
    }
    setup(dir);
}

/// A scratch directory where a tool is run both ways.
pub(crate) struct Bench {
    dir: tempfile::TempDir,
    now: String,
    tz: &'static str,
}

impl Bench {
    /// A bench at [`NOW`] in UTC, or `None` (SKIP) without the reference.
    pub(crate) fn new() -> Option<Bench> {
        if !have_reference() {
            return None;
        }
        Some(Bench { dir: tempfile::tempdir().expect("tempdir"), now: NOW.to_string(), tz: "UTC" })
    }

    /// Sets the instant (a JSON number such as `1700000000.75`).
    pub(crate) fn at(&mut self, now: &str) -> &mut Bench {
        self.now = now.to_string();
        self
    }

    /// Sets the time zone both runs see.
    pub(crate) fn tz(&mut self, tz: &'static str) -> &mut Bench {
        self.tz = tz;
        self
    }

    /// The directory.
    pub(crate) fn dir(&self) -> &Path {
        self.dir.path()
    }

    /// The absolute path of `name` in the directory, as a string for the command line.
    pub(crate) fn path(&self, name: &str) -> String {
        self.dir.path().join(name).to_string_lossy().into_owned()
    }

    /// Runs Python then ours, each on a directory freshly made by `setup`.
    pub(crate) fn both(&self, setup: &dyn Fn(&Path), tool: &str, args: &[String]) -> (Run, Run) {
        reset(self.dir(), setup);
        let py = run_python(tool, args, &self.now, self.tz);
        let py = Run { out: py, files: snapshot(self.dir()) };
        reset(self.dir(), setup);
        let ours = run_ours(tool, args, &self.now, self.tz);
        let ours = Run { out: ours, files: snapshot(self.dir()) };
        (py, ours)
    }

    /// Asserts that ours prints the same bytes, exits the same way and leaves the same files.
    pub(crate) fn same(&self, setup: &dyn Fn(&Path), tool: &str, args: &[String]) -> Outcome {
        let (py, ours) = self.both(setup, tool, args);
        assert_same_outcome(&py.out, &ours.out, tool, args);
        assert_same_files(&py, &ours, tool, args);
        ours.out
    }

    /// For tools that only read: runs both on the directory as it is (prepare it with
    /// [`prepare`](Self::prepare)), asserts the same outcome and that no file changed.
    pub(crate) fn same_read_only(&self, tool: &str, args: &[String]) -> Outcome {
        let before = snapshot(self.dir());
        let py = run_python(tool, args, &self.now, self.tz);
        let ours = run_ours(tool, args, &self.now, self.tz);
        assert_same_outcome(&py, &ours, tool, args);
        assert!(snapshot(self.dir()) == before, "{tool} {args:?} changed a file");
        ours
    }

    /// Resets the directory to what `setup` makes.
    pub(crate) fn prepare(&self, setup: &dyn Fn(&Path)) {
        reset(self.dir(), setup);
    }

    /// As [`same`](Self::same), without comparing the files (where the script leaves a
    /// half-made file and we leave none).
    pub(crate) fn same_output(
        &self,
        setup: &dyn Fn(&Path),
        tool: &str,
        args: &[String],
    ) -> (Run, Run) {
        let (py, ours) = self.both(setup, tool, args);
        assert_same_outcome(&py.out, &ours.out, tool, args);
        (py, ours)
    }

    /// For cases where the script crashes with a traceback: asserts that it did, that ours
    /// exits 1 with a one-line `[ERROR]` message containing every one of `expect`, and that
    /// ours printed what the script printed before it crashed.
    pub(crate) fn crash_vs_error(
        &self,
        setup: &dyn Fn(&Path),
        tool: &str,
        args: &[String],
        expect: &[&str],
    ) -> (Run, Run) {
        let (py, ours) = self.both(setup, tool, args);
        assert!(
            py.out.stderr.contains("Traceback"),
            "{tool} {args:?}: expected the script to crash, got {:?}",
            py.out
        );
        assert_clear_error(&ours.out, tool, args, expect);
        assert_eq!(ours.out.stdout, py.out.stdout, "{tool} {args:?}: stdout before the error");
        (py, ours)
    }

    /// For cases where the script prints its help and exits 1 (wrong number of arguments):
    /// same exit code and stderr; the help text itself is clap's.
    pub(crate) fn help_exit(&self, tool: &str, args: &[String]) {
        let (py, ours) = self.both(&|_| {}, tool, args);
        assert_eq!(ours.out.code, py.out.code, "{tool} {args:?}: exit code");
        assert_eq!(ours.out.stderr, py.out.stderr, "{tool} {args:?}: stderr");
        assert!(!ours.out.stdout.is_empty(), "{tool} {args:?}: help on stdout");
    }
}

pub(crate) fn assert_same_outcome(py: &Outcome, ours: &Outcome, tool: &str, args: &[String]) {
    assert_eq!(
        ours.stdout, py.stdout,
        "{tool} {args:?}: stdout differs (python stderr: {})",
        py.stderr
    );
    assert_eq!(ours.stderr, py.stderr, "{tool} {args:?}: stderr differs");
    assert_eq!(ours.code, py.code, "{tool} {args:?}: exit code differs");
}

fn assert_same_files(py: &Run, ours: &Run, tool: &str, args: &[String]) {
    let names = |r: &Run| r.files.keys().cloned().collect::<Vec<_>>();
    assert_eq!(names(ours), names(py), "{tool} {args:?}: files left behind");
    for (name, bytes) in &py.files {
        assert!(ours.files[name] == *bytes, "{tool} {args:?}: {name} has different bytes");
    }
}

/// Asserts a non-zero exit with one `[ERROR] ...` line naming everything in `expect`.
pub(crate) fn assert_clear_error(ours: &Outcome, tool: &str, args: &[String], expect: &[&str]) {
    assert_eq!(ours.code, 1, "{tool} {args:?}: exit code, stderr {:?}", ours.stderr);
    assert!(ours.stderr.starts_with("[ERROR] "), "{tool} {args:?}: {:?}", ours.stderr);
    assert_eq!(ours.stderr.lines().count(), 1, "{tool} {args:?}: one line: {:?}", ours.stderr);
    for e in expect {
        assert!(ours.stderr.contains(e), "{tool} {args:?}: {:?} should mention {e:?}", ours.stderr);
    }
}

/// `["a", "b"]` as owned strings.
pub(crate) fn args(a: &[&str]) -> Vec<String> {
    a.iter().map(|s| s.to_string()).collect()
}
