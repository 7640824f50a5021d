//! Drives the reference implementation (Debian's python3-whisper) for differential tests.
//!
//! One `/usr/bin/python3` process runs `tests/reference/pyworker.py` and answers JSON requests,
//! so a test can make thousands of calls without paying Python's start-up for each.
//!
//! When the reference is not installed, [`PyWorker::spawn`] prints why and returns `None`, and
//! the test skips. With `GRAPHITE_REQUIRE_REFERENCE=1` (set by `.ci/run`), a missing reference
//! is a failure instead, so CI always runs these tests.
//!
//! This file is shared with the `bins` tests through `#[path]`.
#![allow(dead_code)]

use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, ChildStdout, Command, Stdio};

use serde_json::{Value, json};

/// The environment variable that turns a missing reference into a test failure.
pub(crate) const REQUIRE_ENV: &str = "GRAPHITE_REQUIRE_REFERENCE";

/// The system Python that can import Debian's whisper module.
pub(crate) const PYTHON: &str = "/usr/bin/python3";

/// A running reference worker.
pub(crate) struct PyWorker {
    child: Child,
    stdin: ChildStdin,
    stdout: BufReader<ChildStdout>,
}

fn worker_script() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../whisper/tests/reference/pyworker.py")
}

/// Skips (returns `None`) or fails, depending on `GRAPHITE_REQUIRE_REFERENCE`.
pub(crate) fn missing(reason: &str) -> Option<PyWorker> {
    if std::env::var_os(REQUIRE_ENV).is_some_and(|v| v != "0") {
        panic!("reference implementation required ({REQUIRE_ENV} is set) but {reason}");
    }
    eprintln!("SKIP: {reason} (install python3-whisper to run this test)");
    None
}

impl PyWorker {
    /// Starts the worker, or explains why it cannot.
    pub(crate) fn spawn() -> Option<PyWorker> {
        if !Path::new(PYTHON).exists() {
            return missing(&format!("{PYTHON} does not exist"));
        }
        let mut child = match Command::new(PYTHON)
            .arg(worker_script())
            .env("TZ", "UTC")
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
        {
            Ok(c) => c,
            Err(e) => return missing(&format!("cannot start {PYTHON}: {e}")),
        };
        let stdin = child.stdin.take().expect("piped");
        let stdout = BufReader::new(child.stdout.take().expect("piped"));
        let mut w = PyWorker { child, stdin, stdout };
        match w.try_call(&json!({"op": "ping"})) {
            Ok(Ok(_)) => Some(w),
            Ok(Err(e)) => missing(&format!("the reference worker failed: {e}")),
            Err(e) => missing(&format!("python3-whisper is not importable by {PYTHON}: {e}")),
        }
    }

    fn try_call(&mut self, req: &Value) -> Result<Result<Value, String>, String> {
        let mut line = serde_json::to_string(req).map_err(|e| e.to_string())?;
        line.push('\n');
        self.stdin.write_all(line.as_bytes()).map_err(|e| e.to_string())?;
        self.stdin.flush().map_err(|e| e.to_string())?;
        let mut answer = String::new();
        let n = self.stdout.read_line(&mut answer).map_err(|e| e.to_string())?;
        if n == 0 {
            return Err("the worker exited".into());
        }
        let v: Value = serde_json::from_str(&answer).map_err(|e| format!("{e}: {answer}"))?;
        if let Some(err) = v.get("err") {
            return Ok(Err(err.as_str().unwrap_or_default().to_string()));
        }
        Ok(Ok(v.get("ok").cloned().unwrap_or(Value::Null)))
    }

    /// Sends one request; `Err` carries Python's exception as `Type: message`.
    pub(crate) fn call(&mut self, req: Value) -> Result<Value, String> {
        self.try_call(&req).expect("reference worker died")
    }
}

impl Drop for PyWorker {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A float as the worker expects it: 16 hex digits of its big-endian bits.
pub(crate) fn f2h(x: f64) -> String {
    format!("{:016x}", x.to_bits())
}

/// A float from the worker's hex form.
pub(crate) fn h2f(v: &Value) -> Option<f64> {
    v.as_str().map(|s| f64::from_bits(u64::from_str_radix(s, 16).expect("hex float")))
}
