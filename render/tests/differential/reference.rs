//! The reference: Debian's graphite-web 1.1.8, started once per test run by
//! `graphite_web.py` on a free loopback port, and a minimal HTTP/1.0 client for it (and for
//! our own server, when it is compared too).

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, Command, Stdio};
use std::time::Duration;

/// The environment variable that turns a missing reference into a failure (CI sets it).
pub(crate) const REQUIRE_ENV: &str = "GRAPHITE_REQUIRE_REFERENCE";
/// The system Python, the one that imports Debian's graphite-web.
const PYTHON: &str = "/usr/bin/python3";
/// How long graphite-web may take to start (imports and `migrate`: about a second here).
const START_TIMEOUT: Duration = Duration::from_secs(60);

/// Why graphite-web cannot be used here, if it cannot.
pub(crate) fn unavailable() -> Option<String> {
    if !Path::new(PYTHON).exists() {
        return Some(format!("{PYTHON} does not exist"));
    }
    let out = Command::new(PYTHON)
        .args(["-c", "import graphite.render, django, whisper, wsgiref"])
        .stdin(Stdio::null())
        .output();
    match out {
        Ok(o) if o.status.success() => None,
        Ok(o) => Some(format!(
            "{PYTHON} cannot import graphite-web: {}",
            String::from_utf8_lossy(&o.stderr).lines().last().unwrap_or("")
        )),
        Err(e) => Some(format!("cannot run {PYTHON}: {e}")),
    }
}

/// A running graphite-web. Dropping it stops the process (and closing its stdin makes it exit
/// by itself should this process die without unwinding).
pub(crate) struct GraphiteWeb {
    child: Child,
    /// Held open: the server exits when it closes.
    _stdin: ChildStdin,
    port: u16,
    log: PathBuf,
}

impl GraphiteWeb {
    /// Starts graphite-web on `whisper_dir`, its state (settings, SQLite, logs) in `work_dir`,
    /// and waits until it answers.
    ///
    /// # Panics
    ///
    /// When it does not start; the message carries the end of its log.
    pub(crate) fn start(whisper_dir: &Path, work_dir: &Path) -> GraphiteWeb {
        let script =
            Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/differential/graphite_web.py");
        std::fs::create_dir_all(work_dir).expect("create graphite-web's work dir");
        let log = work_dir.join("server.log");
        let log_file = std::fs::File::create(&log).expect("create graphite-web's log");
        let mut child = Command::new(PYTHON)
            .arg(&script)
            .arg(whisper_dir)
            .arg(work_dir)
            .env("PYTHONDONTWRITEBYTECODE", "1")
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(log_file)
            .spawn()
            .expect("spawn graphite-web");
        let stdin = child.stdin.take().expect("piped stdin");
        let stdout = child.stdout.take().expect("piped stdout");
        let mut server = GraphiteWeb { child, _stdin: stdin, port: 0, log };
        // The script prints READY once `migrate` ran and the socket listens; a reader thread
        // lets a stuck start time out instead of hanging the test.
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            let mut line = String::new();
            let _ = BufReader::new(stdout).read_line(&mut line);
            let _ = tx.send(line);
        });
        let line = rx.recv_timeout(START_TIMEOUT).unwrap_or_default();
        match line.trim().strip_prefix("READY ").and_then(|p| p.parse().ok()) {
            Some(port) => server.port = port,
            None => panic!(
                "graphite-web did not start within {START_TIMEOUT:?}:\n{}",
                server.log_tail()
            ),
        }
        server
    }

    /// The port it listens on (127.0.0.1).
    pub(crate) fn port(&self) -> u16 {
        self.port
    }

    /// The last lines of its stderr.
    pub(crate) fn log_tail(&self) -> String {
        let text = std::fs::read_to_string(&self.log).unwrap_or_default();
        let lines: Vec<&str> = text.lines().collect();
        lines[lines.len().saturating_sub(30)..].join("\n")
    }
}

impl Drop for GraphiteWeb {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// An HTTP answer.
pub(crate) struct Response {
    /// The status code.
    pub(crate) status: u16,
    /// The body.
    pub(crate) body: String,
}

/// A request to `127.0.0.1:port`: GET when `form` is `None`, else a form POST.
///
/// # Errors
///
/// The connection failed or the answer is not HTTP.
pub(crate) fn request(port: u16, path: &str, form: Option<&str>) -> Result<Response, String> {
    request_timed(port, path, form).map(|(r, _)| r)
}

/// [`request`], and the time from connecting until the last byte of the answer arrived: the
/// server's serving time as its client sees it, without this client's own decoding of the
/// body afterwards (a UTF-8 check and a copy of up to 86,400 points' JSON), which would
/// otherwise be counted on both sides.
///
/// # Errors
///
/// The connection failed or the answer is not HTTP.
pub(crate) fn request_timed(
    port: u16,
    path: &str,
    form: Option<&str>,
) -> Result<(Response, Duration), String> {
    let started = std::time::Instant::now();
    let mut stream =
        TcpStream::connect(("127.0.0.1", port)).map_err(|e| format!("connect to {port}: {e}"))?;
    stream.set_read_timeout(Some(Duration::from_secs(60))).map_err(|e| e.to_string())?;
    let head = match form {
        None => format!("GET {path} HTTP/1.0\r\nHost: 127.0.0.1\r\n\r\n"),
        Some(body) => format!(
            "POST {path} HTTP/1.0\r\nHost: 127.0.0.1\r\n\
             Content-Type: application/x-www-form-urlencoded\r\nContent-Length: {}\r\n\r\n{body}",
            body.len()
        ),
    };
    stream.write_all(head.as_bytes()).map_err(|e| format!("send: {e}"))?;
    let mut raw = Vec::new();
    stream.read_to_end(&mut raw).map_err(|e| format!("receive: {e}"))?;
    let took = started.elapsed();
    let text = String::from_utf8_lossy(&raw);
    let (headers, body) = text.split_once("\r\n\r\n").ok_or("no end of headers")?;
    let status = headers
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .ok_or_else(|| format!("bad status line: {}", headers.lines().next().unwrap_or("")))?;
    let chunked = headers.lines().any(|l| {
        let l = l.to_ascii_lowercase();
        l.starts_with("transfer-encoding:") && l.contains("chunked")
    });
    let body = if chunked { dechunk(body) } else { body.to_string() };
    Ok((Response { status, body }, took))
}

/// Decodes a chunked body (HTTP/1.0 requests should not get one, but a server may send it).
fn dechunk(mut body: &str) -> String {
    let mut out = String::new();
    while let Some((size, rest)) = body.split_once("\r\n") {
        let Ok(n) = usize::from_str_radix(size.trim(), 16) else { break };
        if n == 0 || rest.len() < n {
            break;
        }
        out.push_str(&rest[..n]);
        body = rest[n..].trim_start_matches("\r\n");
    }
    out
}

/// Percent-encodes a query-string value.
pub(crate) fn encode(s: &str) -> String {
    let mut out = String::with_capacity(s.len() * 3);
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || b"-._~".contains(&b) {
            out.push(char::from(b));
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}
