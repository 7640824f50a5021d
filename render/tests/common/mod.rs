//! Running graphite-web's own Python code as the reference of a test.

use std::io::Write;
use std::process::{Command, Stdio};

/// The interpreter that can import Debian's graphite-web (other pythons on PATH cannot).
pub(crate) const PYTHON: &str = "/usr/bin/python3";

/// Runs `script` under [`PYTHON`] with `input` on stdin and returns its stdout. When graphite
/// cannot be run (no interpreter, the import fails: the script exits non-zero), prints why the
/// comparison is skipped and returns `None` — unless `GRAPHITE_REQUIRE_REFERENCE=1` (as
/// `.ci/run` sets it), which turns the skip into a failure.
pub(crate) fn run_reference(what: &str, script: &str, input: String) -> Option<String> {
    let required = std::env::var("GRAPHITE_REQUIRE_REFERENCE").is_ok_and(|v| v == "1");
    let skip = |why: String| {
        assert!(!required, "GRAPHITE_REQUIRE_REFERENCE=1 but {why}");
        eprintln!("skipping the graphite-web {what}: {why}");
        None
    };
    let child = Command::new(PYTHON)
        .args(["-c", script])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn();
    let mut child = match child {
        Ok(c) => c,
        Err(e) => return skip(format!("cannot run {PYTHON}: {e}")),
    };
    let mut stdin = child.stdin.take().expect("piped stdin");
    let writer = std::thread::spawn(move || stdin.write_all(input.as_bytes()));
    let out = child.wait_with_output().expect("python runs");
    writer.join().expect("writer thread").expect("write the input");
    if !out.status.success() {
        return skip(format!(
            "{PYTHON} failed ({}): {}",
            out.status,
            String::from_utf8_lossy(&out.stderr).trim()
        ));
    }
    Some(String::from_utf8(out.stdout).expect("utf-8"))
}
