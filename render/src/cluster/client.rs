//! A small blocking HTTP/1.1 GET client over `std::net`, for the cluster protocol.
//!
//! Why not a crate: a peer request is one GET with `Connection: close` on loopback or a LAN,
//! the data source that makes it is synchronous (it runs on the HTTP server's blocking pool),
//! and what matters is that every step is bounded: the connect, each read and write, the
//! whole exchange (one deadline) and the body size. That is a hundred lines here.

use std::io::{Read, Write};
use std::net::{TcpStream, ToSocketAddrs};
use std::time::{Duration, Instant};

/// A peer's answer.
#[derive(Debug)]
pub(crate) struct HttpResponse {
    /// The status code.
    pub(crate) status: u16,
    /// The `Content-Type` header, if any.
    pub(crate) content_type: Option<String>,
    /// The body (de-chunked).
    pub(crate) body: Vec<u8>,
}

/// `GET http://{host}{target}` with everything finished by `deadline` and a body of at most
/// `max_body` bytes.
///
/// # Errors
///
/// A text saying what failed: resolving, connecting, the deadline, a body too large, or an
/// answer that is not HTTP.
pub(crate) fn get(
    host: &str,
    target: &str,
    deadline: Instant,
    max_body: usize,
) -> Result<HttpResponse, String> {
    let remaining = |what: &str| -> Result<Duration, String> {
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() { Err(format!("timed out {what}")) } else { Ok(left) }
    };
    let addrs: Vec<_> = host
        .to_socket_addrs()
        .map_err(|e| format!("cannot resolve {host}: {e}"))?
        .take(8)
        .collect();
    let mut stream = None;
    let mut last_error = format!("{host} resolves to no address");
    for addr in addrs {
        match TcpStream::connect_timeout(&addr, remaining("connecting")?) {
            Ok(s) => {
                stream = Some(s);
                break;
            }
            Err(e) => last_error = format!("connect to {addr}: {e}"),
        }
    }
    let mut stream = stream.ok_or(last_error)?;
    let _ = stream.set_nodelay(true);
    stream.set_write_timeout(Some(remaining("sending")?)).map_err(|e| e.to_string())?;
    let head = format!(
        "GET {target} HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n\
         Accept-Encoding: identity\r\nUser-Agent: graphite-rs\r\n\r\n"
    );
    stream.write_all(head.as_bytes()).map_err(|e| format!("send to {host}: {e}"))?;

    // Headers are small; the body is capped. Read until the peer closes (Connection: close),
    // or until Content-Length is reached.
    let limit = max_body.saturating_add(64 * 1024);
    let mut raw: Vec<u8> = Vec::with_capacity(16 * 1024);
    let mut buf = [0u8; 64 * 1024];
    let mut header_end = None;
    let mut content_length: Option<usize> = None;
    loop {
        stream.set_read_timeout(Some(remaining("reading")?)).map_err(|e| e.to_string())?;
        let n = match stream.read(&mut buf) {
            Ok(n) => n,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(format!("receive from {host}: {e}")),
        };
        if n == 0 {
            break;
        }
        raw.extend_from_slice(buf.get(..n).unwrap_or_default());
        if raw.len() > limit {
            return Err(format!("answer from {host} larger than {max_body} bytes"));
        }
        if header_end.is_none() {
            header_end = memchr::memmem::find(&raw, b"\r\n\r\n").map(|i| i + 4);
            if let Some(end) = header_end {
                content_length = header_lines(raw.get(..end).unwrap_or_default())
                    .find(|(k, _)| k.eq_ignore_ascii_case("content-length"))
                    .and_then(|(_, v)| v.trim().parse().ok());
            } else if raw.len() > 64 * 1024 {
                return Err(format!("answer from {host} has no end of headers"));
            }
        }
        if let (Some(end), Some(len)) = (header_end, content_length)
            && raw.len() >= end.saturating_add(len)
        {
            break;
        }
    }
    let end = header_end.ok_or_else(|| format!("answer from {host} is not HTTP"))?;
    let head = raw.get(..end).unwrap_or_default();
    let status_line = head.split(|&b| b == b'\n').next().unwrap_or_default();
    let status = std::str::from_utf8(status_line)
        .ok()
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|s| s.parse::<u16>().ok())
        .ok_or_else(|| format!("answer from {host} has a bad status line"))?;
    let mut content_type = None;
    let mut chunked = false;
    for (k, v) in header_lines(head) {
        if k.eq_ignore_ascii_case("content-type") {
            content_type = Some(v.trim().to_string());
        } else if k.eq_ignore_ascii_case("transfer-encoding") {
            chunked = v.to_ascii_lowercase().contains("chunked");
        }
    }
    let mut body = raw.split_off(end);
    if chunked {
        body = dechunk(&body).ok_or_else(|| format!("bad chunked body from {host}"))?;
    } else if let Some(len) = content_length {
        if body.len() < len {
            return Err(format!("answer from {host} ended early"));
        }
        body.truncate(len);
    }
    if body.len() > max_body {
        return Err(format!("answer from {host} larger than {max_body} bytes"));
    }
    Ok(HttpResponse { status, content_type, body })
}

/// The `name: value` lines after the status line.
fn header_lines(head: &[u8]) -> impl Iterator<Item = (&str, &str)> {
    head.split(|&b| b == b'\n').skip(1).filter_map(|line| {
        let line = std::str::from_utf8(line).ok()?.trim_end_matches('\r');
        line.split_once(':')
    })
}

/// Decodes a chunked body; `None` when it is malformed or ends early.
fn dechunk(mut body: &[u8]) -> Option<Vec<u8>> {
    let mut out = Vec::with_capacity(body.len());
    loop {
        let eol = memchr::memmem::find(body, b"\r\n")?;
        let size_text = std::str::from_utf8(body.get(..eol)?).ok()?;
        let size_text = size_text.split(';').next().unwrap_or("").trim();
        let size = usize::from_str_radix(size_text, 16).ok()?;
        body = body.get(eol + 2..)?;
        if size == 0 {
            return Some(out);
        }
        out.extend_from_slice(body.get(..size)?);
        body = body.get(size..)?;
        body = body.strip_prefix(b"\r\n")?;
    }
}

/// `application/x-www-form-urlencoded` as Python's `urlencode` writes it (`quote_plus`:
/// spaces as `+`, unreserved `A-Za-z0-9_.-~` kept).
pub(crate) fn urlencode(pairs: &[(&str, String)]) -> String {
    let mut out = String::new();
    for (i, (k, v)) in pairs.iter().enumerate() {
        if i > 0 {
            out.push('&');
        }
        quote_plus(&mut out, k);
        out.push('=');
        quote_plus(&mut out, v);
    }
    out
}

fn quote_plus(out: &mut String, s: &str) {
    for b in s.bytes() {
        match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'_' | b'.' | b'-' | b'~' => {
                out.push(char::from(b));
            }
            b' ' => out.push('+'),
            _ => {
                const HEX: &[u8; 16] = b"0123456789ABCDEF";
                out.push('%');
                out.push(char::from(HEX[usize::from(b >> 4)]));
                out.push(char::from(HEX[usize::from(b & 15)]));
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urlencode_is_pythons() {
        let q = urlencode(&[("target", "sum(a.*, b)".into()), ("from", "-1h".into())]);
        assert_eq!(q, "target=sum%28a.%2A%2C+b%29&from=-1h");
    }

    #[test]
    fn dechunks() {
        assert_eq!(dechunk(b"3\r\nabc\r\n2;x\r\nde\r\n0\r\n\r\n").as_deref(), Some(&b"abcde"[..]));
        assert_eq!(dechunk(b"5\r\nab"), None);
        assert_eq!(dechunk(b"zz\r\n"), None);
    }

    #[test]
    fn gets_from_a_local_listener() {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        let server = std::thread::spawn(move || {
            let (mut s, _) = listener.accept().unwrap();
            let mut buf = [0u8; 1024];
            let _ = s.read(&mut buf).unwrap();
            s.write_all(b"HTTP/1.1 200 OK\r\nContent-Type: application/pickle\r\nTransfer-Encoding: chunked\r\n\r\n2\r\nhi\r\n0\r\n\r\n").unwrap();
        });
        let deadline = Instant::now() + Duration::from_secs(5);
        let r = get(&addr.to_string(), "/x", deadline, 1024).unwrap();
        server.join().unwrap();
        assert_eq!(
            (r.status, r.content_type.as_deref(), &r.body[..]),
            (200, Some("application/pickle"), &b"hi"[..])
        );
    }

    #[test]
    fn a_silent_peer_times_out() {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        let started = Instant::now();
        let r = get(&addr.to_string(), "/x", started + Duration::from_millis(200), 1024);
        assert!(r.is_err());
        assert!(started.elapsed() < Duration::from_secs(2));
        drop(listener);
    }
}
