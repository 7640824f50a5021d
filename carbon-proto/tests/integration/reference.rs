//! Access to the reference implementations for differential and golden tests.
//!
//! The references are Debian's packages: `python3` (pickle itself), `graphite-carbon` (carbon's
//! own `carbon.hashing` and `carbon.util.TaggedSeries`, importable only by `/usr/bin/python3`)
//! and `carbon-c-relay` (its `-t` test mode prints where it routes each metric).
//!
//! When one is missing, [`missing`] prints why and the test passes without checking; with
//! `GRAPHITE_REQUIRE_REFERENCE=1` (set by `.ci/run`, which installs them) it fails instead.
#![allow(dead_code)]

use std::io::Write;
use std::path::Path;
use std::process::{Command, Stdio};

/// The environment variable that turns a missing reference into a failure.
pub(crate) const REQUIRE_ENV: &str = "GRAPHITE_REQUIRE_REFERENCE";

/// The system Python, the one that imports Debian's graphite packages.
pub(crate) const PYTHON: &str = "/usr/bin/python3";

/// carbon-c-relay's binary.
pub(crate) const CARBON_C_RELAY: &str = "/usr/bin/carbon-c-relay";

/// Reports a missing reference: panics under `GRAPHITE_REQUIRE_REFERENCE`, else prints a SKIP
/// line. Returns `false` so callers can write `if !have(..) { return; }`.
pub(crate) fn missing(reason: &str) -> bool {
    if std::env::var_os(REQUIRE_ENV).is_some_and(|v| v != "0") {
        panic!("reference implementation required ({REQUIRE_ENV} is set) but {reason}");
    }
    eprintln!("SKIP: {reason}");
    false
}

/// Whether `/usr/bin/python3` can import `module` (reporting through [`missing`] if not).
pub(crate) fn have_python_module(module: &str) -> bool {
    if !Path::new(PYTHON).exists() {
        return missing(&format!("{PYTHON} does not exist"));
    }
    let ok = Command::new(PYTHON)
        .args(["-c", &format!("import {module}")])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success());
    ok || missing(&format!("{PYTHON} cannot import {module} (apt-get install graphite-carbon)"))
}

/// Whether carbon-c-relay is installed (reporting through [`missing`] if not).
pub(crate) fn have_carbon_c_relay() -> bool {
    Path::new(CARBON_C_RELAY).exists()
        || missing(&format!("{CARBON_C_RELAY} does not exist (apt-get install carbon-c-relay)"))
}

/// Runs `/usr/bin/python3 -c script args...` with `stdin`, returns its stdout. Panics with
/// Python's stderr if it fails: callers check availability first.
pub(crate) fn python(script: &str, args: &[&str], stdin: &[u8]) -> Vec<u8> {
    run(Command::new(PYTHON).arg("-c").arg(script).args(args), stdin)
}

/// Runs a command with `stdin`, returns its stdout; panics with its stderr if it fails.
pub(crate) fn run(cmd: &mut Command, stdin: &[u8]) -> Vec<u8> {
    let mut child = cmd
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("cannot run {cmd:?}: {e}"));
    let mut input = child.stdin.take().expect("piped");
    let data = stdin.to_vec();
    // Write from a thread so a large input cannot deadlock against a full stdout pipe.
    let writer = std::thread::spawn(move || {
        let _ = input.write_all(&data);
    });
    let out = child.wait_with_output().expect("wait");
    let _ = writer.join();
    assert!(
        out.status.success(),
        "{cmd:?} failed ({}): {}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    out.stdout
}
