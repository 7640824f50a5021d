//! What the tests of the long-running programs share: starting `graphite-rs` and waiting for
//! its ready file, stopping a child with SIGTERM, and plain HTTP/1.1 requests.

use std::fs;
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::Path;
use std::process::{Child, Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

/// Our server binary.
pub(crate) const GRAPHITE_RS: &str = env!("CARGO_BIN_EXE_graphite-rs");

/// How long a program may take to write its ready file.
const READY_WITHIN: Duration = Duration::from_secs(60);

/// `graphite-rs --root ROOT --bind 127.0.0.1 --ready-file READY` with the `GRAPHITE_*`
/// variables removed (so the root alone decides), stdout discarded and stderr into `log`.
/// The caller adds the listener flags.
pub(crate) fn graphite_rs(root: &Path, ready: &Path, log: fs::File) -> Command {
    let mut cmd = Command::new(GRAPHITE_RS);
    cmd.args(["--root", root.to_str().unwrap(), "--bind", "127.0.0.1"])
        .arg("--ready-file")
        .arg(ready)
        .env_remove("GRAPHITE_ROOT")
        .env_remove("GRAPHITE_CONF_DIR")
        .env_remove("GRAPHITE_STORAGE_DIR")
        .stdout(Stdio::null())
        .stderr(log);
    cmd
}

/// Waits for `child` to write `ready` and returns what it wrote.
///
/// # Panics
///
/// The child exits first, or writes nothing within a minute (the panic shows `log`).
pub(crate) fn wait_ready(child: &mut Child, ready: &Path, log: &Path) -> String {
    let deadline = Instant::now() + READY_WITHIN;
    loop {
        if let Ok(text) = fs::read_to_string(ready) {
            return text;
        }
        if let Some(status) = child.try_wait().unwrap() {
            panic!("exited with {status} before it was ready:\n{}", read_log(log));
        }
        assert!(Instant::now() < deadline, "not ready:\n{}", read_log(log));
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// The address after `key=` in a ready file (`line=127.0.0.1:40123 http=...`).
///
/// # Panics
///
/// There is none.
pub(crate) fn ready_addr(text: &str, key: &str) -> SocketAddr {
    text.split_whitespace()
        .find_map(|f| f.strip_prefix(key).and_then(|v| v.strip_prefix('=')))
        .and_then(|v| v.parse().ok())
        .unwrap_or_else(|| panic!("no {key} in {text:?}"))
}

/// A log file's text (empty when there is none yet).
pub(crate) fn read_log(log: &Path) -> String {
    fs::read_to_string(log).unwrap_or_default()
}

/// Sends SIGTERM to `child`.
pub(crate) fn sigterm(child: &Child) {
    // SAFETY: a plain kill(2) on our own child's pid.
    unsafe { libc::kill(child.id() as i32, libc::SIGTERM) };
}

/// Waits up to `limit` for `child` to exit.
///
/// # Panics
///
/// It is still running then (it is killed first; the panic shows `log`).
pub(crate) fn wait_exit(child: &mut Child, limit: Duration, log: &Path) -> ExitStatus {
    let deadline = Instant::now() + limit;
    loop {
        if let Some(status) = child.try_wait().unwrap() {
            return status;
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            panic!("did not stop within {limit:?}:\n{}", read_log(log));
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// SIGTERM, then waits up to `limit` for a clean exit.
///
/// # Panics
///
/// It does not stop in time or exits with a failure (the panic shows `log`).
pub(crate) fn stop(child: &mut Child, limit: Duration, log: &Path) {
    sigterm(child);
    let status = wait_exit(child, limit, log);
    assert!(status.success(), "exit {status}:\n{}", read_log(log));
}

/// A free loopback port (bound, then released for the process that takes it).
pub(crate) fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

/// One HTTP/1.1 request with `Connection: close`: the status and the body. `headers` are
/// extra header lines, each ending in `\r\n`.
pub(crate) fn http_request(
    addr: SocketAddr,
    method: &str,
    target: &str,
    headers: &str,
    body: &str,
) -> (u16, String) {
    let mut s = TcpStream::connect(addr).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(30))).unwrap();
    let request = format!(
        "{method} {target} HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n{headers}\
         Content-Length: {}\r\n\r\n{body}",
        body.len()
    );
    s.write_all(request.as_bytes()).unwrap();
    let mut raw = Vec::new();
    s.read_to_end(&mut raw).unwrap();
    let text = String::from_utf8_lossy(&raw).into_owned();
    let (head, body) = text.split_once("\r\n\r\n").expect("a response");
    let status = head.split(' ').nth(1).unwrap().parse().unwrap();
    (status, body.to_owned())
}

/// `GET target`: the status and the body.
pub(crate) fn http_get(addr: SocketAddr, target: &str) -> (u16, String) {
    http_request(addr, "GET", target, "", "")
}
