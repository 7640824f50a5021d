//! Checks beyond metrics: an HTTP request and a TCP connect (Cabot's HTTP check and its
//! ICMP check done as a connect, since ping needs privileges).
//!
//! A check is a rule of kind `http` or `tcp` in the same file, with the same state machine:
//! the value is the latency in milliseconds (so `warn`/`crit` can bound it), and a failed
//! check is the condition holding at the rule's `severity`. Data freshness (`kind =
//! "freshness"`) is a target rule and lives in the engine, since it reads series.

use std::io::Read as _;
use std::net::{TcpStream, ToSocketAddrs};
use std::time::{Duration, Instant};

use crate::rules::{HttpCheck, TcpCheck};

/// Most body bytes an HTTP check reads for its regex (1 MiB).
pub const MAX_CHECK_BODY_BYTES: u64 = 1 << 20;

/// What one check run found.
#[derive(Clone, Debug, PartialEq)]
pub struct CheckOutcome {
    /// The check passed.
    pub ok: bool,
    /// Milliseconds until the answer (or the failure).
    pub latency_ms: f64,
    /// Why it failed (or a one-line success note): goes to the `check` annotation.
    pub detail: String,
}

fn outcome(ok: bool, started: Instant, detail: String) -> CheckOutcome {
    CheckOutcome { ok, latency_ms: started.elapsed().as_secs_f64() * 1000.0, detail }
}

/// Runs an HTTP check: GET the URL (redirects followed), compare the status with the accepted
/// set (any 2xx when empty), match the body regex, all within the timeout.
pub fn http(check: &HttpCheck) -> CheckOutcome {
    let tls = ureq::tls::TlsConfig::builder().disable_verification(!check.tls_verify).build();
    let agent = ureq::Agent::config_builder()
        .timeout_global(Some(Duration::from_secs(check.timeout.max(1) as u64)))
        .http_status_as_error(false)
        .tls_config(tls)
        .user_agent("graphite-rs-alert")
        .build()
        .new_agent();
    let started = Instant::now();
    let mut req = agent.get(&check.url);
    if let Some(user) = &check.username {
        let pair = format!("{user}:{}", check.password.as_deref().unwrap_or(""));
        req = req.header("Authorization", format!("Basic {}", base64(pair.as_bytes())));
    }
    let mut resp = match req.call() {
        Ok(r) => r,
        Err(e) => return outcome(false, started, format!("request failed: {e}")),
    };
    let status = resp.status().as_u16();
    let status_ok = if check.status.is_empty() {
        (200..300).contains(&status)
    } else {
        check.status.contains(&status)
    };
    if !status_ok {
        return outcome(false, started, format!("HTTP {status}"));
    }
    if let Some(re) = &check.body {
        let mut body = String::new();
        let read = resp
            .body_mut()
            .with_config()
            .limit(MAX_CHECK_BODY_BYTES)
            .lossy_utf8(true)
            .reader()
            .take(MAX_CHECK_BODY_BYTES)
            .read_to_string(&mut body);
        if let Err(e) = read {
            return outcome(false, started, format!("reading the body failed: {e}"));
        }
        if !re.is_match(&body) {
            return outcome(false, started, format!("HTTP {status}, body does not match /{re}/"));
        }
    }
    outcome(true, started, format!("HTTP {status}"))
}

/// Runs a TCP check: resolve the address and connect to each resolved address in turn until
/// one accepts, within the timeout each.
pub fn tcp(check: &TcpCheck) -> CheckOutcome {
    let started = Instant::now();
    let timeout = Duration::from_secs(check.timeout.max(1) as u64);
    let addrs = match check.address.to_socket_addrs() {
        Ok(a) => a.collect::<Vec<_>>(),
        Err(e) => return outcome(false, started, format!("cannot resolve {}: {e}", check.address)),
    };
    let mut last = format!("{} resolves to no address", check.address);
    for addr in addrs {
        match TcpStream::connect_timeout(&addr, timeout) {
            Ok(_) => return outcome(true, started, format!("connected to {addr}")),
            Err(e) => last = format!("connect to {addr}: {e}"),
        }
    }
    outcome(false, started, last)
}

/// Standard base64 with padding (basic auth needs nothing more).
fn base64(input: &[u8]) -> String {
    const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::with_capacity(input.len().div_ceil(3) * 4);
    for chunk in input.chunks(3) {
        let b = [
            chunk.first().copied().unwrap_or(0),
            chunk.get(1).copied().unwrap_or(0),
            chunk.get(2).copied().unwrap_or(0),
        ];
        let n = (u32::from(b[0]) << 16) | (u32::from(b[1]) << 8) | u32::from(b[2]);
        for i in 0..4 {
            if i <= chunk.len() {
                let idx = ((n >> (18 - 6 * i)) & 63) as usize;
                out.push(char::from(ALPHABET.get(idx).copied().unwrap_or(b'A')));
            } else {
                out.push('=');
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn base64_matches_rfc4648_vectors() {
        for (i, o) in [
            ("", ""),
            ("f", "Zg=="),
            ("fo", "Zm8="),
            ("foo", "Zm9v"),
            ("foob", "Zm9vYg=="),
            ("fooba", "Zm9vYmE="),
            ("foobar", "Zm9vYmFy"),
        ] {
            assert_eq!(base64(i.as_bytes()), o);
        }
    }
}
