//! The host node of every path, found the ways Diamond finds it (`hostname_method`).
//!
//! Diamond's methods, and what each gives for a host whose name is `web01` and whose FQDN is
//! `web01.dc1.example.com`:
//!
//! | method | result | note |
//! |---|---|---|
//! | `smart` (default) | `web01` | `fqdn_short`, unless that is `localhost`: then `hostname_short` |
//! | `fqdn_short` | `web01` | first label of the FQDN |
//! | `fqdn` | `web01_dc1_example_com` | the only method that turns dots into `_` |
//! | `fqdn_rev` | `com.example.dc1.web01` | dots kept: one node per label |
//! | `uname_short` / `uname_rev` | as above, from `uname -n` | |
//! | `hostname` | `gethostname()` as it is | dots kept, as Diamond does (they add levels) |
//! | `hostname_short` / `hostname_rev` | first label / reversed labels | |
//! | `shell` | the output of the `hostname` setting run by `sh -c` | trimmed |
//! | `none` | no host node at all | |
//!
//! A literal `hostname = x` wins over every method except `shell` (where it is the command).
//! Diamond finds the FQDN with Python's `socket.getfqdn()` (a reverse lookup of the host
//! name); we ask the resolver for the canonical name (`getaddrinfo` with `AI_CANONNAME`, what
//! `hostname -f` does), which agrees on hosts with a sane `/etc/hosts` or DNS.

use std::ffi::{CStr, CString};
use std::io::Read;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use super::error::AgentError;

/// How the host node is found.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub enum HostnameMethod {
    /// `fqdn_short`, unless it is `localhost`; then `hostname_short`.
    #[default]
    Smart,
    /// The first label of the FQDN.
    FqdnShort,
    /// The FQDN with dots turned into `_`.
    Fqdn,
    /// The FQDN's labels reversed (`com.example.www`).
    FqdnRev,
    /// The first label of `uname -n`.
    UnameShort,
    /// The labels of `uname -n` reversed.
    UnameRev,
    /// `gethostname()` as it is.
    Hostname,
    /// The first label of `gethostname()`.
    HostnameShort,
    /// The labels of `gethostname()` reversed.
    HostnameRev,
    /// The output of the `hostname` setting run as a shell command.
    Shell,
    /// No host node.
    None,
}

/// Every method's name, as `hostname_method` spells it.
pub const METHOD_NAMES: [&str; 11] = [
    "smart",
    "fqdn_short",
    "fqdn",
    "fqdn_rev",
    "uname_short",
    "uname_rev",
    "hostname",
    "hostname_short",
    "hostname_rev",
    "shell",
    "none",
];

impl HostnameMethod {
    /// Parses a method name (case-insensitive, as Diamond lowercases it).
    pub fn parse(name: &str) -> Option<HostnameMethod> {
        Some(match name.trim().to_ascii_lowercase().as_str() {
            "smart" => HostnameMethod::Smart,
            "fqdn_short" => HostnameMethod::FqdnShort,
            "fqdn" => HostnameMethod::Fqdn,
            "fqdn_rev" => HostnameMethod::FqdnRev,
            "uname_short" => HostnameMethod::UnameShort,
            "uname_rev" => HostnameMethod::UnameRev,
            "hostname" => HostnameMethod::Hostname,
            "hostname_short" => HostnameMethod::HostnameShort,
            "hostname_rev" => HostnameMethod::HostnameRev,
            "shell" => HostnameMethod::Shell,
            "none" => HostnameMethod::None,
            _ => return None,
        })
    }

    /// The method's name.
    pub fn as_str(self) -> &'static str {
        match self {
            HostnameMethod::Smart => "smart",
            HostnameMethod::FqdnShort => "fqdn_short",
            HostnameMethod::Fqdn => "fqdn",
            HostnameMethod::FqdnRev => "fqdn_rev",
            HostnameMethod::UnameShort => "uname_short",
            HostnameMethod::UnameRev => "uname_rev",
            HostnameMethod::Hostname => "hostname",
            HostnameMethod::HostnameShort => "hostname_short",
            HostnameMethod::HostnameRev => "hostname_rev",
            HostnameMethod::Shell => "shell",
            HostnameMethod::None => "none",
        }
    }
}

/// What the host's names are: the inputs of every method, so the methods are pure functions
/// that tests can feed.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct HostNames {
    /// `gethostname()`.
    pub hostname: String,
    /// `uname -n` (the same as `hostname` on Linux, kept apart as Diamond does).
    pub uname: String,
    /// The fully qualified name.
    pub fqdn: String,
}

impl HostNames {
    /// The names of this host.
    pub fn of_this_host() -> HostNames {
        let hostname = gethostname();
        let uname = uname_nodename().unwrap_or_else(|| hostname.clone());
        let fqdn = canonical_name(&hostname).unwrap_or_else(|| hostname.clone());
        HostNames { hostname, uname, fqdn }
    }
}

/// Longest time a `shell` hostname command may take.
const SHELL_TIMEOUT: Duration = Duration::from_secs(10);

/// The host node for `method` and a literal `hostname` setting (`None`: no host node).
///
/// # Errors
///
/// `shell` without a command, or a command that fails, hangs or prints nothing.
pub fn resolve_hostname(
    method: HostnameMethod,
    literal: Option<&str>,
    names: &HostNames,
) -> Result<Option<String>, AgentError> {
    if let Some(h) = literal.filter(|h| !h.is_empty())
        && method != HostnameMethod::Shell
    {
        return Ok(Some(h.to_owned()));
    }
    let first = |s: &str| s.split('.').next().unwrap_or_default().to_owned();
    let rev = |s: &str| s.split('.').rev().collect::<Vec<_>>().join(".");
    Ok(Some(match method {
        HostnameMethod::Smart => {
            let short = first(&names.fqdn);
            if short == "localhost" { first(&names.hostname) } else { short }
        }
        HostnameMethod::FqdnShort => first(&names.fqdn),
        HostnameMethod::Fqdn => names.fqdn.replace('.', "_"),
        HostnameMethod::FqdnRev => rev(&names.fqdn),
        HostnameMethod::UnameShort => first(&names.uname),
        HostnameMethod::UnameRev => rev(&names.uname),
        HostnameMethod::Hostname => names.hostname.clone(),
        HostnameMethod::HostnameShort => first(&names.hostname),
        HostnameMethod::HostnameRev => rev(&names.hostname),
        HostnameMethod::None => return Ok(None),
        HostnameMethod::Shell => {
            let Some(cmd) = literal.filter(|c| !c.trim().is_empty()) else {
                return Err(shell_err("needs the command in the `hostname` setting"));
            };
            run_shell(cmd)?
        }
    }))
}

fn shell_err(reason: impl Into<String>) -> AgentError {
    AgentError::Hostname { method: "shell".into(), reason: reason.into() }
}

/// Runs `cmd` with `sh -c`, bounded by [`SHELL_TIMEOUT`]; the trimmed first line of stdout.
fn run_shell(cmd: &str) -> Result<String, AgentError> {
    let mut child = Command::new("/bin/sh")
        .args(["-c", cmd])
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .map_err(|e| shell_err(format!("cannot run {cmd:?}: {e}")))?;
    let deadline = Instant::now() + SHELL_TIMEOUT;
    let status = loop {
        match child.try_wait() {
            Ok(Some(status)) => break status,
            Ok(None) if Instant::now() < deadline => std::thread::sleep(Duration::from_millis(10)),
            Ok(None) => {
                let _ = child.kill();
                let _ = child.wait();
                return Err(shell_err(format!("{cmd:?} did not finish within {SHELL_TIMEOUT:?}")));
            }
            Err(e) => return Err(shell_err(format!("waiting for {cmd:?}: {e}"))),
        }
    };
    let mut out = String::new();
    if let Some(mut stdout) = child.stdout.take() {
        let _ = stdout.by_ref().take(4096).read_to_string(&mut out);
    }
    if !status.success() {
        return Err(shell_err(format!("{cmd:?} exited with {status}")));
    }
    let name = out.lines().next().unwrap_or_default().trim().to_owned();
    if name.is_empty() {
        return Err(shell_err(format!("{cmd:?} printed nothing")));
    }
    Ok(name)
}

fn gethostname() -> String {
    let mut buf = [0u8; 256];
    // SAFETY: the buffer is valid for its length; gethostname writes at most that many bytes.
    let rc = unsafe { libc::gethostname(buf.as_mut_ptr().cast(), buf.len()) };
    if rc != 0 {
        return "localhost".into();
    }
    let end = buf.iter().position(|&b| b == 0).unwrap_or(buf.len());
    String::from_utf8_lossy(buf.get(..end).unwrap_or_default()).into_owned()
}

fn uname_nodename() -> Option<String> {
    // SAFETY: utsname is plain old data; uname fills it.
    let mut u: libc::utsname = unsafe { std::mem::zeroed() };
    // SAFETY: `u` is a valid utsname to write into.
    if unsafe { libc::uname(&mut u) } != 0 {
        return None;
    }
    // SAFETY: uname NUL-terminates nodename within the array.
    let s = unsafe { CStr::from_ptr(u.nodename.as_ptr()) };
    Some(s.to_string_lossy().into_owned())
}

/// The resolver's canonical name of `host`, when it has a dot in it.
fn canonical_name(host: &str) -> Option<String> {
    let c_host = CString::new(host).ok()?;
    // SAFETY: addrinfo is plain old data; zero is a valid "no hints" value.
    let mut hints: libc::addrinfo = unsafe { std::mem::zeroed() };
    hints.ai_flags = libc::AI_CANONNAME;
    hints.ai_family = libc::AF_UNSPEC;
    let mut res: *mut libc::addrinfo = std::ptr::null_mut();
    // SAFETY: valid NUL-terminated host, valid hints, `res` receives a list we free below.
    let rc = unsafe { libc::getaddrinfo(c_host.as_ptr(), std::ptr::null(), &hints, &mut res) };
    if rc != 0 || res.is_null() {
        return None;
    }
    // SAFETY: `res` is the non-null list getaddrinfo returned; ai_canonname is NUL-terminated
    // or null.
    let name = unsafe {
        let canon = (*res).ai_canonname;
        let name = if canon.is_null() {
            None
        } else {
            Some(CStr::from_ptr(canon).to_string_lossy().into_owned())
        };
        libc::freeaddrinfo(res);
        name
    };
    name.filter(|n| n.contains('.'))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn names() -> HostNames {
        HostNames {
            hostname: "web01.dc1".into(),
            uname: "web01.dc1".into(),
            fqdn: "web01.dc1.example.com".into(),
        }
    }

    fn host(method: &str, literal: Option<&str>) -> Option<String> {
        resolve_hostname(HostnameMethod::parse(method).unwrap(), literal, &names()).unwrap()
    }

    #[test]
    fn every_method_gives_diamonds_node() {
        let expect = [
            ("smart", Some("web01")),
            ("fqdn_short", Some("web01")),
            ("fqdn", Some("web01_dc1_example_com")),
            ("fqdn_rev", Some("com.example.dc1.web01")),
            ("uname_short", Some("web01")),
            ("uname_rev", Some("dc1.web01")),
            ("hostname", Some("web01.dc1")),
            ("hostname_short", Some("web01")),
            ("hostname_rev", Some("dc1.web01")),
            ("none", None),
        ];
        for (method, want) in expect {
            assert_eq!(host(method, None).as_deref(), want, "{method}");
        }
        assert_eq!(METHOD_NAMES.len(), expect.len() + 1);
        for name in METHOD_NAMES {
            assert_eq!(HostnameMethod::parse(name).unwrap().as_str(), name);
        }
        assert_eq!(HostnameMethod::parse("FQDN"), Some(HostnameMethod::Fqdn));
        assert_eq!(HostnameMethod::parse("fqdn-short"), None);
    }

    #[test]
    fn smart_falls_back_to_the_host_name_when_the_fqdn_is_localhost() {
        let n = HostNames {
            hostname: "box7.lan".into(),
            uname: "box7.lan".into(),
            fqdn: "localhost.localdomain".into(),
        };
        assert_eq!(resolve_hostname(HostnameMethod::Smart, None, &n).unwrap().unwrap(), "box7");
    }

    #[test]
    fn a_literal_wins_except_for_shell() {
        assert_eq!(host("fqdn", Some("db.primary")).unwrap(), "db.primary");
        assert_eq!(host("none", Some("x")).unwrap(), "x");
        assert_eq!(host("fqdn", Some("")).unwrap(), "web01_dc1_example_com");
        assert_eq!(host("shell", Some("echo from-shell; echo second")).unwrap(), "from-shell");
        assert!(resolve_hostname(HostnameMethod::Shell, None, &names()).is_err());
        let err = resolve_hostname(HostnameMethod::Shell, Some("exit 3"), &names()).unwrap_err();
        assert!(err.to_string().contains("exit"), "{err}");
        assert!(resolve_hostname(HostnameMethod::Shell, Some("true"), &names()).is_err());
    }

    #[test]
    fn this_host_has_a_name() {
        let n = HostNames::of_this_host();
        assert!(!n.hostname.is_empty() && !n.fqdn.is_empty());
    }
}
