//! A small blocking HTTP/1.1 GET client over `std::net`, with TLS for `https` URLs (rustls,
//! see [`super::tls`]), enough for status pages and JSON endpoints.
//!
//! Why not a crate: the collectors need one GET with a connect timeout, a deadline on the whole
//! answer and a size cap; `ureq` would bring a connection pool, redirects and a second HTTP
//! stack we do not use, and its resolver would not connect to one host while naming another in
//! `Host` (nginx's `req_host_header`). TLS is a layer over the same socket, so the timeouts and
//! the cap are the same for `http` and `https`. What is left out: redirects (a 3xx is reported
//! as a status error), proxies, compression (we do not ask for it), keep-alive (every request
//! says `Connection: close`).
//!
//! The parsing is sans-I/O ([`parse_head`], [`decode_chunked`]) so it is tested and fuzzed on
//! bytes; [`get`] only moves bytes and watches the clock.
#![warn(clippy::indexing_slicing)]

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream, ToSocketAddrs};
use std::time::{Duration, Instant};

use super::tls::{Stream, Tls};
use super::{AppError, Timeouts};
use crate::options::Options;

/// The most a response may hold, head and body. Status pages are a few hundred bytes and JSON
/// stats pages rarely pass a megabyte; the cap keeps a runaway endpoint from eating memory.
pub(crate) const MAX_RESPONSE_BYTES: usize = 16 << 20;
/// The most the head (status line and headers) may hold.
const MAX_HEAD_BYTES: usize = 64 << 10;

/// A parsed `http://host[:port]/path` or `https://host[:port]/path` URL.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Url {
    /// The URL as written, for error messages.
    pub(crate) text: String,
    /// `https`: TLS over the connection.
    pub(crate) tls: bool,
    /// Host name or address (IPv6 without brackets).
    pub(crate) host: String,
    /// Port (80, or 443 for `https`, when not written).
    pub(crate) port: u16,
    /// Path and query, starting with `/`.
    pub(crate) path: String,
}

impl Url {
    /// Parses `text`.
    ///
    /// # Errors
    ///
    /// [`AppError::BadUrl`] for another scheme than `http` or `https`, user info, a missing
    /// host or a bad port.
    pub(crate) fn parse(text: &str) -> Result<Url, AppError> {
        let bad = |reason| AppError::BadUrl { url: text.to_owned(), reason };
        let (tls, rest) = match text.split_once("://") {
            Some((scheme, rest)) if scheme.eq_ignore_ascii_case("http") => (false, rest),
            Some((scheme, rest)) if scheme.eq_ignore_ascii_case("https") => (true, rest),
            _ => return Err(bad("expected an http:// or https:// URL")),
        };
        let (authority, path) = match rest.find(['/', '?']) {
            Some(i) => rest.split_at(i),
            None => (rest, "/"),
        };
        let path = if path.starts_with('?') { format!("/{path}") } else { path.to_owned() };
        if authority.contains('@') {
            return Err(bad("user info in URLs is not supported"));
        }
        let (host, port) = if let Some(v6) = authority.strip_prefix('[') {
            let (host, after) = v6.split_once(']').ok_or_else(|| bad("unclosed '[' in host"))?;
            let port = match after.strip_prefix(':') {
                Some(p) => Some(p),
                None if after.is_empty() => None,
                None => return Err(bad("junk after ']' in host")),
            };
            (host, port)
        } else {
            match authority.rsplit_once(':') {
                Some((h, p)) => (h, Some(p)),
                None => (authority, None),
            }
        };
        if host.is_empty() {
            return Err(bad("no host"));
        }
        let port = match port {
            Some(p) => p.parse::<u16>().ok().filter(|&p| p != 0).ok_or_else(|| bad("bad port"))?,
            None => default_port(tls),
        };
        if path.chars().any(|c| c.is_whitespace() || c.is_control()) {
            return Err(bad("whitespace in path"));
        }
        Ok(Url { text: text.to_owned(), tls, host: host.to_owned(), port, path })
    }

    /// `host:port` as it goes in the `Host` header (brackets around IPv6 addresses).
    pub(crate) fn host_header(&self) -> String {
        let host =
            if self.host.contains(':') { format!("[{}]", self.host) } else { self.host.clone() };
        if self.port == default_port(self.tls) { host } else { format!("{host}:{}", self.port) }
    }
}

/// The port a URL without one means.
fn default_port(tls: bool) -> u16 {
    if tls { 443 } else { 80 }
}

/// What a collector GETs: the URL and, for `https`, how the server is checked.
#[derive(Clone, Debug)]
pub(crate) struct Target {
    /// The URL.
    pub(crate) url: Url,
    /// TLS settings; `Some` exactly when the URL is `https`.
    tls: Option<Tls>,
}

impl Target {
    /// Parses `text` (which came from the option `key`) and, for an `https` URL, reads the TLS
    /// options (`tls_verify`, `ca_file`) from `opts`.
    ///
    /// # Errors
    ///
    /// [`crate::Error::BadOption`] on `key` for a URL that cannot be used; the TLS options'
    /// errors (see [`Tls::from_options`]).
    pub(crate) fn from_options(key: &str, text: &str, opts: &Options) -> crate::Result<Target> {
        let url = Url::parse(text).map_err(|e| crate::Error::BadOption {
            key: key.into(),
            value: text.into(),
            reason: match e {
                AppError::BadUrl { reason, .. } => reason,
                _ => "not a usable URL",
            },
        })?;
        let tls = if url.tls { Some(Tls::from_options(opts)?) } else { None };
        Ok(Target { url, tls })
    }
}

/// A response's status and body.
#[derive(Debug)]
pub(crate) struct Response {
    /// The status code.
    pub(crate) status: u16,
    /// The `Content-Type` header, lowercased, when present.
    pub(crate) content_type: Option<String>,
    /// The body, de-chunked.
    pub(crate) body: Vec<u8>,
}

/// How the body of a response ends.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Framing {
    /// `Content-Length: n`.
    Length(usize),
    /// `Transfer-Encoding: chunked`.
    Chunked,
    /// Neither: the body runs until the server closes.
    UntilClose,
}

/// A parsed status line and the headers we use.
#[derive(Debug, PartialEq, Eq)]
pub(crate) struct Head {
    /// The status code.
    pub(crate) status: u16,
    /// The `Content-Type` header, lowercased.
    pub(crate) content_type: Option<String>,
    /// How the body ends.
    pub(crate) framing: Framing,
    /// Where the body starts in the buffer.
    pub(crate) body_start: usize,
}

/// Parses the head of a response at the start of `buf`: `Ok(None)` while the blank line that
/// ends it has not arrived.
///
/// # Errors
///
/// A description of what is wrong (no `HTTP/1.x` status line, a bad header line, a head over
/// 64 KiB, a bad `Content-Length`).
pub(crate) fn parse_head(buf: &[u8]) -> Result<Option<Head>, String> {
    let Some(end) = find(buf, b"\r\n\r\n") else {
        if buf.len() > MAX_HEAD_BYTES {
            return Err(format!("response head over {MAX_HEAD_BYTES} bytes"));
        }
        return Ok(None);
    };
    let head = buf.get(..end).unwrap_or_default();
    let text = std::str::from_utf8(head).map_err(|_| "response head is not UTF-8".to_owned())?;
    let mut lines = text.split("\r\n");
    let status_line = lines.next().unwrap_or_default();
    let mut parts = status_line.splitn(3, ' ');
    let version = parts.next().unwrap_or_default();
    if !version.starts_with("HTTP/1.") {
        return Err(format!("not an HTTP/1.x status line: {:?}", truncate(status_line)));
    }
    let status = parts
        .next()
        .filter(|s| s.len() == 3)
        .and_then(|s| s.parse::<u16>().ok())
        .filter(|s| (100..=999).contains(s))
        .ok_or_else(|| format!("bad status line: {:?}", truncate(status_line)))?;
    let mut content_type = None;
    let mut length = None;
    let mut chunked = false;
    for line in lines {
        let (name, value) =
            line.split_once(':').ok_or_else(|| format!("bad header line: {:?}", truncate(line)))?;
        let value = value.trim();
        if name.eq_ignore_ascii_case("content-type") {
            content_type = Some(value.to_ascii_lowercase());
        } else if name.eq_ignore_ascii_case("content-length") {
            let n = value.parse::<usize>().map_err(|_| format!("bad Content-Length {value:?}"))?;
            length = Some(n);
        } else if name.eq_ignore_ascii_case("transfer-encoding") {
            chunked = value.to_ascii_lowercase().split(',').any(|t| t.trim() == "chunked");
        }
    }
    // RFC 9112 6.3: chunked wins over Content-Length.
    let framing = if chunked {
        Framing::Chunked
    } else if let Some(n) = length {
        Framing::Length(n)
    } else {
        Framing::UntilClose
    };
    Ok(Some(Head { status, content_type, framing, body_start: end + 4 }))
}

/// Decodes a complete chunked body: `Ok(None)` while the last chunk has not arrived.
///
/// # Errors
///
/// A description of a bad chunk size line or a missing CRLF after a chunk.
pub(crate) fn decode_chunked(mut buf: &[u8]) -> Result<Option<Vec<u8>>, String> {
    let mut body = Vec::new();
    loop {
        let Some(line_end) = find(buf, b"\r\n") else { return Ok(None) };
        let line = buf.get(..line_end).unwrap_or_default();
        let size_text = line.split(|&b| b == b';').next().unwrap_or_default();
        let size_text = std::str::from_utf8(size_text).map_err(|_| "bad chunk size".to_owned())?;
        let size = usize::from_str_radix(size_text.trim(), 16)
            .map_err(|_| format!("bad chunk size {:?}", truncate(size_text)))?;
        let data_start = line_end + 2;
        if size == 0 {
            // Trailers (if any) end with an empty line; we need not read them.
            return Ok(Some(body));
        }
        let data_end = data_start.checked_add(size).ok_or("chunk size overflows")?;
        if size > MAX_RESPONSE_BYTES || body.len().saturating_add(size) > MAX_RESPONSE_BYTES {
            return Err(format!("chunked body over {MAX_RESPONSE_BYTES} bytes"));
        }
        let Some(data) = buf.get(data_start..data_end) else { return Ok(None) };
        match buf.get(data_end..data_end + 2) {
            None => return Ok(None),
            Some(b"\r\n") => {}
            Some(_) => return Err("chunk not followed by CRLF".to_owned()),
        }
        body.extend_from_slice(data);
        buf = buf.get(data_end + 2..).unwrap_or_default();
    }
}

/// GETs `target` with `extra_headers` (`Name: value`, already checked for CR/LF), within
/// `timeouts`: connect within `connect`, the TLS handshake (for `https`) and the whole answer
/// within `read`. `host_header` replaces the URL's host in the `Host` header (Diamond's
/// `req_host_header`); the connection, and for `https` the certificate check, still use the
/// URL's host.
///
/// # Errors
///
/// [`AppError::Connect`] when no address of the host accepts, [`AppError::Timeout`] when the
/// answer is not complete in time, [`AppError::Tls`] when the TLS handshake or a TLS record
/// fails, [`AppError::Protocol`] for a malformed or oversized answer, [`AppError::Io`] for a
/// connection error after connecting. A non-2xx status is returned as a response, not an
/// error: callers decide.
pub(crate) fn get(
    target: &Target,
    host_header: Option<&str>,
    extra_headers: &[(String, String)],
    timeouts: Timeouts,
) -> Result<Response, AppError> {
    let url = &target.url;
    let addr = format!("{}:{}", url.host, url.port);
    let tcp = connect(&addr, &url.host, url.port, timeouts.connect)?;
    let deadline = Instant::now() + timeouts.read;
    let mut stream = match (&target.tls, url.tls) {
        (Some(tls), true) => Stream::Tls(Box::new(tls.handshake(
            &url.text,
            &url.host,
            tcp,
            deadline,
            timeouts.read,
        )?)),
        (None, false) => Stream::Plain(tcp),
        _ => return Err(AppError::BadUrl { url: url.text.clone(), reason: "no TLS settings" }),
    };
    let tcp_only = !url.tls;
    let io = |source: std::io::Error| {
        if tcp_only {
            AppError::Io { addr: url.text.clone(), source }
        } else {
            super::tls::classify(&url.text, false, source, timeouts.read)
        }
    };
    let timeout = || AppError::Timeout { addr: url.text.clone(), timeout: timeouts.read };
    let protocol = |what: String| AppError::Protocol { addr: url.text.clone(), what };

    let host = match host_header {
        Some(h) => h.to_owned(),
        None => url.host_header(),
    };
    let mut request = format!("GET {} HTTP/1.1\r\nHost: {host}\r\n", url.path);
    if !extra_headers.iter().any(|(n, _)| n.eq_ignore_ascii_case("user-agent")) {
        request.push_str("User-Agent: graphite-rs-collect\r\n");
    }
    if !extra_headers.iter().any(|(n, _)| n.eq_ignore_ascii_case("accept")) {
        request.push_str("Accept: */*\r\n");
    }
    request.push_str("Connection: close\r\n");
    for (name, value) in extra_headers {
        if name.eq_ignore_ascii_case("host") || name.eq_ignore_ascii_case("connection") {
            continue;
        }
        request.push_str(name);
        request.push_str(": ");
        request.push_str(value);
        request.push_str("\r\n");
    }
    request.push_str("\r\n");
    stream.tcp().set_write_timeout(Some(timeouts.read)).map_err(io)?;
    stream
        .write_all(request.as_bytes())
        .and_then(|()| stream.flush())
        .map_err(|e| if is_timeout(&e) { timeout() } else { io(e) })?;

    let mut buf = Vec::with_capacity(4096);
    let mut head: Option<Head> = None;
    let mut chunk = [0u8; 16 * 1024];
    loop {
        if let Some(h) = &head {
            let body = buf.get(h.body_start..).unwrap_or_default();
            match h.framing {
                Framing::Length(n) if body.len() >= n => {
                    let body = body.get(..n).unwrap_or_default().to_vec();
                    return Ok(Response {
                        status: h.status,
                        content_type: h.content_type.clone(),
                        body,
                    });
                }
                Framing::Chunked => {
                    if let Some(body) = decode_chunked(body).map_err(protocol)? {
                        return Ok(Response {
                            status: h.status,
                            content_type: h.content_type.clone(),
                            body,
                        });
                    }
                }
                _ => {}
            }
        }
        let now = Instant::now();
        if now >= deadline {
            return Err(timeout());
        }
        stream.tcp().set_read_timeout(Some(deadline - now)).map_err(io)?;
        let n = match stream.read(&mut chunk) {
            Ok(n) => n,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
            Err(e) if is_timeout(&e) => return Err(timeout()),
            Err(e) => return Err(io(e)),
        };
        if n == 0 {
            return match head {
                Some(h) if h.framing == Framing::UntilClose => {
                    let body = buf.get(h.body_start..).unwrap_or_default().to_vec();
                    Ok(Response { status: h.status, content_type: h.content_type, body })
                }
                Some(_) => Err(protocol("connection closed before the body was complete".into())),
                None => Err(protocol("connection closed before a complete response head".into())),
            };
        }
        buf.extend_from_slice(chunk.get(..n).unwrap_or_default());
        if buf.len() > MAX_RESPONSE_BYTES {
            return Err(protocol(format!("response over {MAX_RESPONSE_BYTES} bytes")));
        }
        if head.is_none() {
            head = parse_head(&buf).map_err(protocol)?;
        }
    }
}

/// Connects to the first address of `host:port` that accepts within `timeout` each.
///
/// # Errors
///
/// [`AppError::Connect`] naming `addr`, with the last address's error.
pub(crate) fn connect(
    addr: &str,
    host: &str,
    port: u16,
    timeout: Duration,
) -> Result<TcpStream, AppError> {
    let connect_err = |source| AppError::Connect { addr: addr.to_owned(), source };
    let addrs: Vec<SocketAddr> = (host, port).to_socket_addrs().map_err(connect_err)?.collect();
    let mut last = std::io::Error::new(std::io::ErrorKind::NotFound, "no address for host");
    for a in addrs {
        match TcpStream::connect_timeout(&a, timeout) {
            Ok(s) => {
                let _ = s.set_nodelay(true);
                return Ok(s);
            }
            Err(e) => last = e,
        }
    }
    Err(connect_err(last))
}

/// Whether a socket error is a read or write timeout (Unix says `WouldBlock`, others
/// `TimedOut`).
pub(crate) fn is_timeout(e: &std::io::Error) -> bool {
    matches!(e.kind(), std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut)
}

/// The first position of `needle` in `hay`.
fn find(hay: &[u8], needle: &[u8]) -> Option<usize> {
    hay.windows(needle.len()).position(|w| w == needle)
}

/// At most 80 characters of `s`, for error messages.
fn truncate(s: &str) -> &str {
    match s.char_indices().nth(80) {
        Some((i, _)) => s.get(..i).unwrap_or(s),
        None => s,
    }
}

/// Parses `Name: value` header settings (Diamond's `headers`), refusing CR/LF so a setting
/// cannot inject a header or a request.
pub(crate) fn parse_header_list(items: &[String]) -> Result<Vec<(String, String)>, String> {
    let mut out = Vec::with_capacity(items.len());
    for item in items {
        let (name, value) =
            item.split_once(':').ok_or_else(|| format!("header {item:?} has no ':'"))?;
        let (name, value) = (name.trim(), value.trim());
        let name_ok = !name.is_empty()
            && name.bytes().all(|b| b.is_ascii_alphanumeric() || b"-_!#$%&'*+.^`|~".contains(&b));
        if !name_ok || value.bytes().any(|b| b == b'\r' || b == b'\n' || b == 0) {
            return Err(format!("header {item:?} is not a valid header"));
        }
        out.push((name.to_owned(), value.to_owned()));
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::indexing_slicing)]
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn urls_parse_with_defaults() {
        let u = Url::parse("http://localhost:8080/nginx_status").unwrap();
        assert_eq!(
            (u.host.as_str(), u.port, u.path.as_str()),
            ("localhost", 8080, "/nginx_status")
        );
        assert_eq!(u.host_header(), "localhost:8080");
        let u = Url::parse("http://example.org").unwrap();
        assert_eq!((u.port, u.path.as_str(), u.host_header().as_str()), (80, "/", "example.org"));
        let u = Url::parse("http://[::1]:9/x?y=1").unwrap();
        assert_eq!((u.host.as_str(), u.port, u.host_header().as_str()), ("::1", 9, "[::1]:9"));
        assert_eq!(Url::parse("http://h?q").unwrap().path, "/?q");
    }

    #[test]
    fn https_urls_default_to_port_443() {
        let u = Url::parse("HTTPS://example.org/status").unwrap();
        assert!(u.tls);
        assert_eq!((u.port, u.host_header().as_str()), (443, "example.org"));
        let u = Url::parse("https://example.org:80/").unwrap();
        assert_eq!(u.host_header(), "example.org:80");
        assert!(!Url::parse("http://example.org/").unwrap().tls);
    }

    #[test]
    fn junk_urls_are_refused_with_reasons() {
        for bad in ["ftp://h/", "h:80/x", "http://:80/", "http://u@h/", "http://h:0/", "https:///"]
        {
            assert!(matches!(Url::parse(bad), Err(AppError::BadUrl { .. })), "{bad}");
        }
        let e = Url::parse("ftp://h/").unwrap_err().to_string();
        assert!(e.contains("https://"), "{e}");
    }

    #[test]
    fn head_parses_status_type_and_framing() {
        let raw = b"HTTP/1.1 200 OK\r\nContent-Type: Text/Plain\r\nContent-Length: 5\r\n\r\nhello";
        let h = parse_head(raw).unwrap().unwrap();
        assert_eq!(h.status, 200);
        assert_eq!(h.content_type.as_deref(), Some("text/plain"));
        assert_eq!(h.framing, Framing::Length(5));
        assert_eq!(&raw[h.body_start..], b"hello");
        assert_eq!(parse_head(b"HTTP/1.1 200 OK\r\nContent-").unwrap(), None);
        let h = parse_head(b"HTTP/1.0 404 Not Found\r\n\r\n").unwrap().unwrap();
        assert_eq!((h.status, h.framing), (404, Framing::UntilClose));
        let h = parse_head(
            b"HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip, chunked\r\nContent-Length: 3\r\n\r\n",
        )
        .unwrap()
        .unwrap();
        assert_eq!(h.framing, Framing::Chunked);
    }

    #[test]
    fn bad_heads_are_errors() {
        assert!(parse_head(b"SSH-2.0-OpenSSH\r\n\r\n").is_err());
        assert!(parse_head(b"HTTP/1.1 2000 OK\r\n\r\n").is_err());
        assert!(parse_head(b"HTTP/1.1 200 OK\r\nno colon\r\n\r\n").is_err());
        assert!(parse_head(b"HTTP/1.1 200 OK\r\nContent-Length: -1\r\n\r\n").is_err());
        assert!(parse_head(&vec![b'a'; MAX_HEAD_BYTES + 1]).is_err());
    }

    #[test]
    fn chunked_bodies_decode_when_complete() {
        let raw = b"4\r\nWiki\r\n5;ext=1\r\npedia\r\n0\r\n\r\n";
        assert_eq!(decode_chunked(raw).unwrap().unwrap(), b"Wikipedia");
        assert_eq!(decode_chunked(&raw[..10]).unwrap(), None);
        assert_eq!(decode_chunked(b"4\r\nWiki").unwrap(), None);
        assert!(decode_chunked(b"zz\r\n").is_err());
        assert!(decode_chunked(b"2\r\nabXX").is_err());
        assert!(decode_chunked(b"ffffffffffffffffff\r\n").is_err());
    }

    #[test]
    fn header_settings_refuse_injection() {
        let ok = parse_header_list(&["X-Token: abc".into(), "Accept:application/json".into()]);
        assert_eq!(ok.unwrap()[1], ("Accept".to_owned(), "application/json".to_owned()));
        assert!(parse_header_list(&["Bad Name: x".into()]).is_err());
        assert!(parse_header_list(&["X: a\r\nHost: evil".into()]).is_err());
        assert!(parse_header_list(&["nocolon".into()]).is_err());
    }

    proptest! {
        #[test]
        fn head_parser_never_panics(bytes in proptest::collection::vec(any::<u8>(), 0..512)) {
            let _ = parse_head(&bytes);
        }

        #[test]
        fn chunk_decoder_never_panics(bytes in proptest::collection::vec(any::<u8>(), 0..512)) {
            let _ = decode_chunked(&bytes);
        }

        #[test]
        fn chunked_round_trips(parts in proptest::collection::vec(proptest::collection::vec(any::<u8>(), 1..64), 0..8)) {
            let mut raw = Vec::new();
            for p in &parts {
                raw.extend_from_slice(format!("{:x}\r\n", p.len()).as_bytes());
                raw.extend_from_slice(p);
                raw.extend_from_slice(b"\r\n");
            }
            raw.extend_from_slice(b"0\r\n\r\n");
            let want: Vec<u8> = parts.concat();
            prop_assert_eq!(decode_chunked(&raw).unwrap(), Some(want));
        }

        #[test]
        fn url_parser_never_panics(s in "\\PC{0,40}") {
            let _ = Url::parse(&s);
            let _ = Url::parse(&format!("http://{s}"));
        }
    }
}
