//! Diamond's `NginxCollector`: nginx's `stub_status` page.
//!
//! The page (nginx's `ngx_http_stub_status_module`) is four lines:
//!
//! ```text
//! Active connections: 1
//! server accepts handled requests
//!  22 22 24
//! Reading: 0 Writing: 1 Waiting: 0
//! ```
//!
//! Published under `nginx.`, with Diamond's names: `active_connections`, `act_reads`,
//! `act_writes`, `act_waits` and `req_per_conn` (requests / handled) as gauges;
//! `conn_accepted`, `conn_handled` and `req_handled` as per-second rates. Unlike Diamond, a
//! rate divides by the real time between two reads (not the configured interval), and the first
//! read after start, and a read after nginx restarted (a counter went down), publish no rate
//! instead of a false 0 or a spike.
//!
//! Options (Diamond's): `req_host` (`localhost`), `req_port` (8080), `req_path`
//! (`/nginx_status`), `req_host_header` (sent as `Host`), `req_ssl` (false; true asks over
//! `https`), plus `url` (the whole URL, overrides the five), `tls_verify` (true) and `ca_file`
//! (the system's CA store) for `https`, `connect_timeout` (5 s) and `timeout` (10 s). nginx
//! plus's JSON status is not read: point the `http_json` collector at it.

use std::time::Instant;

use super::http::{self, Target};
use super::{AppError, Timeouts};
use crate::error::Result;
use crate::options::Options;
use crate::sample::{Collector, Env, RunContext, Sample};

/// The numbers of one stub_status page. Each is `None` when its line was missing.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct StubStatus {
    /// `Active connections: N`.
    pub active: Option<u64>,
    /// The counters line: accepted connections, handled connections, requests.
    pub counters: Option<[u64; 3]>,
    /// `Reading: r Writing: w Waiting: q`.
    pub states: Option<[u64; 3]>,
}

/// Parses stub_status text. Lines it does not know are ignored (a future nginx may add some).
///
/// # Errors
///
/// A description when no known line was found: the page is not stub_status output (a login
/// page, a 404 page served with 200, nginx plus's JSON).
pub fn parse_stub_status(text: &str) -> Result<StubStatus, String> {
    let mut st = StubStatus::default();
    for line in text.lines() {
        let trimmed = line.trim();
        if let Some(rest) = trimmed.strip_prefix("Active connections:") {
            st.active = rest.trim().parse().ok();
        } else if trimmed.starts_with("Reading:") {
            // "Reading: 0 Writing: 1 Waiting: 0"
            let f: Vec<&str> = trimmed.split_whitespace().collect();
            if let ["Reading:", r, "Writing:", w, "Waiting:", q] = f.as_slice()
                && let (Ok(r), Ok(w), Ok(q)) = (r.parse(), w.parse(), q.parse())
            {
                st.states = Some([r, w, q]);
            }
        } else if line.starts_with(char::is_whitespace) {
            // " 22 22 24": Diamond requires the leading whitespace too.
            let f: Vec<&str> = trimmed.split_whitespace().collect();
            if let [a, h, r] = f.as_slice()
                && let (Ok(a), Ok(h), Ok(r)) = (a.parse(), h.parse(), r.parse())
            {
                st.counters = Some([a, h, r]);
            }
        }
    }
    if st == StubStatus::default() {
        return Err("not nginx stub_status output (no 'Active connections:' line)".to_owned());
    }
    Ok(st)
}

/// Reads nginx's stub_status page on every run (see the module docs).
#[derive(Debug)]
pub struct NginxCollector {
    target: Target,
    /// `req_host_header`, checked to be a valid header value.
    host_header: Option<String>,
    timeouts: Timeouts,
    /// The counters line of the previous good read, and when it was read.
    last: Option<(Instant, [u64; 3])>,
}

impl NginxCollector {
    /// Builds the collector from its options (see the module docs).
    ///
    /// # Errors
    ///
    /// A bad option: a bad port, a URL that is not `http://` or `https://`, a bad `req_ssl`
    /// or `tls_verify`, a `ca_file` that cannot be read or holds no certificate.
    pub fn new(opts: &Options, _env: &Env) -> Result<NginxCollector> {
        let text = match opts.get("url") {
            Some(u) => u.to_owned(),
            None => {
                let scheme = if opts.bool_or("req_ssl", false)? { "https" } else { "http" };
                let port = opts.u64_or("req_port", 8080)?;
                let host = opts.str_or("req_host", "localhost");
                let host = if host.contains(':') { format!("[{host}]") } else { host.to_owned() };
                let path = opts.str_or("req_path", "/nginx_status");
                let slash = if path.starts_with('/') { "" } else { "/" };
                format!("{scheme}://{host}:{port}{slash}{path}")
            }
        };
        let target = Target::from_options("url", &text, opts)?;
        let mut host_header = None;
        if let Some(h) = opts.get("req_host_header").filter(|h| !h.is_empty()) {
            http::parse_header_list(&[format!("Host: {h}")]).map_err(|_| {
                crate::Error::BadOption {
                    key: "req_host_header".into(),
                    value: h.into(),
                    reason: "not a valid Host header value",
                }
            })?;
            host_header = Some(h.trim().to_owned());
        }
        Ok(NginxCollector {
            target,
            host_header,
            timeouts: Timeouts::from_options(opts)?,
            last: None,
        })
    }

    fn fetch(&self) -> Result<StubStatus, AppError> {
        let url = &self.target.url.text;
        let resp = http::get(&self.target, self.host_header.as_deref(), &[], self.timeouts)?;
        if !(200..300).contains(&resp.status) {
            return Err(AppError::HttpStatus { url: url.clone(), status: resp.status });
        }
        if resp.content_type.as_deref().is_some_and(|t| t.starts_with("application/json")) {
            return Err(AppError::Protocol {
                addr: url.clone(),
                what: "JSON status (nginx plus) is not read by this collector; use http_json"
                    .into(),
            });
        }
        let text = String::from_utf8_lossy(&resp.body);
        parse_stub_status(&text).map_err(|what| AppError::Protocol { addr: url.clone(), what })
    }
}

impl Collector for NginxCollector {
    fn default_path(&self) -> &str {
        "nginx"
    }

    fn collect(&mut self, ctx: &RunContext, out: &mut Vec<Sample>) -> Result<()> {
        let st = self.fetch()?;
        if let Some(a) = st.active {
            out.push(Sample::new("active_connections", a as f64));
        }
        if let Some(c @ [_, handled, requests]) = st.counters {
            if let Some((then, prev)) = self.last {
                let secs = ctx.now.saturating_duration_since(then).as_secs_f64();
                let reset = c.iter().zip(prev.iter()).any(|(new, old)| new < old);
                if secs > 0.0 && !reset {
                    for (name, (new, old)) in ["conn_accepted", "conn_handled", "req_handled"]
                        .iter()
                        .zip(c.iter().zip(prev))
                    {
                        out.push(Sample::new(*name, (new - old) as f64 / secs));
                    }
                }
            }
            self.last = Some((ctx.now, c));
            if handled > 0 {
                out.push(Sample::new("req_per_conn", requests as f64 / handled as f64));
            }
        }
        if let Some([r, w, q]) = st.states {
            out.push(Sample::new("act_reads", r as f64));
            out.push(Sample::new("act_writes", w as f64));
            out.push(Sample::new("act_waits", q as f64));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    const PAGE: &str = "Active connections: 291 \nserver accepts handled requests\n \
                        16630948 16630948 31070465 \nReading: 6 Writing: 179 Waiting: 106 \n";

    #[test]
    fn parses_every_line_of_the_page() {
        let st = parse_stub_status(PAGE).unwrap();
        assert_eq!(st.active, Some(291));
        assert_eq!(st.counters, Some([16630948, 16630948, 31070465]));
        assert_eq!(st.states, Some([6, 179, 106]));
    }

    #[test]
    fn refuses_pages_that_are_not_stub_status() {
        assert!(parse_stub_status("<html>login</html>").is_err());
        assert!(parse_stub_status("").is_err());
        // Counters without their leading space are not Diamond's counters line.
        assert!(parse_stub_status("1 2 3\n").is_err());
    }

    #[test]
    fn options_build_diamonds_default_url() {
        let c = NginxCollector::new(&Options::new(), &Env::default()).unwrap();
        assert_eq!(c.target.url.text, "http://localhost:8080/nginx_status");
        let o: Options =
            [("req_host", "::1"), ("req_port", "81"), ("req_path", "status")].into_iter().collect();
        let c = NginxCollector::new(&o, &Env::default()).unwrap();
        assert_eq!(c.target.url.text, "http://[::1]:81/status");
        // Diamond's req_ssl keeps req_port (no switch to 443).
        let ssl: Options = [("req_ssl", "True"), ("tls_verify", "False")].into_iter().collect();
        let c = NginxCollector::new(&ssl, &Env::default()).unwrap();
        assert_eq!(c.target.url.text, "https://localhost:8080/nginx_status");
        let bad: Options = [("req_ssl", "sometimes")].into_iter().collect();
        assert!(NginxCollector::new(&bad, &Env::default()).is_err());
    }

    proptest! {
        #[test]
        fn parser_never_panics(s in "\\PC{0,200}") {
            let _ = parse_stub_status(&s);
        }

        #[test]
        fn parser_never_panics_on_near_pages(a in any::<u64>(), b in any::<u64>(), junk in "[ 0-9a-zA-Z:\n]{0,40}") {
            let text = format!("Active connections: {a}\n {a} {b} {junk}\nReading: {b} Writing: {junk}");
            let _ = parse_stub_status(&text);
        }
    }
}
