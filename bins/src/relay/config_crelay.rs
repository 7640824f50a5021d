//! carbon-c-relay's configuration syntax (3.7): `cluster`, `match`, `rewrite`, `listen`,
//! `include`, `statistics`, `aggregate`.
//!
//! ```text
//! include <path or glob> ;
//! cluster <name> <forward|any_of|failover> [useall] <host[:port][=instance] [proto udp|tcp]>... ;
//! cluster <name> <carbon_ch|fnv1a_ch|jump_fnv1a_ch> [replication N] [dynamic] <host...>... ;
//! cluster <name> file </path/to/file>... ;
//! match <*|regex>... [validate <regex> else log|drop] send to <cluster|blackhole>... [stop] ;
//! match <*|regex>... validate <regex> else log|drop ;
//! rewrite <regex> into <replacement> ;
//! listen type linemode <[iface:]port proto tcp|udp>... ;
//! statistics [submit every N seconds] [reset counters after interval] [prefix with P]
//!     [send to <cluster>... [stop]] ;
//! send statistics to <cluster>... [stop] ;
//! aggregate <expr>... every N seconds expire after M seconds [timestamp at start|middle|end
//!     of bucket] compute <method> write to <name> [compute ...]... [send to <cluster>...]
//!     [stop] ;
//! ```
//!
//! Comments run from `#` to the end of the line; `;` ends a statement wherever it stands.
//! A server is one destination whatever clusters list it (carbon-c-relay's identity is
//! `host:port`). `include` reads other files in place (see [`read_crelay`]); errors name the
//! file and line of the statement. Not supported, refused with a message: `file ip`
//! clusters, `route using`, transports other than plain, `type` other than linemode.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use anyhow::{Context, bail};
use carbon_proto::ring::{CRelayHash, CRelayRingBuilder, Destination};
use collect::sender::Protocol;
use regex::Regex;

use super::aggregate::{Aggregate, AggregateSpec, Compute, Method, TimestampAt};
use super::glob;
use super::router::{AggregateRule, Cluster, Expr, Router, Stmt, Validate, parse_replacement};
use super::statistics::CRelayStatistics;
use super::{DestSpec, ListenSpec, RelaySettings};

/// Default port of a server without one (carbon-c-relay's).
const DEFAULT_PORT: u16 = 2003;

/// One statement: its words and the line it starts on (1-based).
#[derive(Debug, Clone, PartialEq, Eq)]
struct Statement {
    line: usize,
    words: Vec<String>,
}

/// Splits the file into statements of tokens. `"..."` quotes a token (keeping `#`, `;` and
/// spaces); an unterminated quote runs to the end of the file.
fn statements(text: &str) -> Vec<Statement> {
    let mut stmts = Vec::new();
    let mut cur: Vec<String> = Vec::new();
    let mut tok = String::new();
    let mut line = 1usize;
    // The line of the statement's first token.
    let mut start = 1usize;
    let mut chars = text.chars().peekable();
    let flush = |tok: &mut String, cur: &mut Vec<String>, start: &mut usize, line: usize| {
        if !tok.is_empty() {
            if cur.is_empty() {
                *start = line;
            }
            cur.push(std::mem::take(tok));
        }
    };
    while let Some(c) = chars.next() {
        match c {
            '#' => {
                flush(&mut tok, &mut cur, &mut start, line);
                for c in chars.by_ref() {
                    if c == '\n' {
                        line += 1;
                        break;
                    }
                }
            }
            '"' => {
                let at = line;
                for c in chars.by_ref() {
                    if c == '"' {
                        break;
                    }
                    if c == '\n' {
                        line += 1;
                    }
                    tok.push(c);
                }
                // An empty quoted token still counts.
                if cur.is_empty() {
                    start = at;
                }
                cur.push(std::mem::take(&mut tok));
            }
            ';' => {
                flush(&mut tok, &mut cur, &mut start, line);
                if !cur.is_empty() {
                    stmts.push(Statement { line: start, words: std::mem::take(&mut cur) });
                }
            }
            // `\ ` keeps a space inside a word, backslash included, as carbon-c-relay's
            // lexer does (`validate ^[0-9]+\ [0-9]+$`).
            '\\' if chars.peek().is_some_and(|n| *n == ' ' || *n == '\t') => {
                tok.push(c);
                if let Some(n) = chars.next() {
                    tok.push(n);
                }
            }
            c if c.is_whitespace() => {
                flush(&mut tok, &mut cur, &mut start, line);
                if c == '\n' {
                    line += 1;
                }
            }
            c => tok.push(c),
        }
    }
    flush(&mut tok, &mut cur, &mut start, line);
    if !cur.is_empty() {
        stmts.push(Statement { line: start, words: cur });
    }
    stmts
}

/// How deep includes may nest (carbon-c-relay has no limit and overflows its stack on a loop).
const MAX_INCLUDE_DEPTH: usize = 16;

/// A statement and the file it is in.
struct Located {
    file: Arc<str>,
    stmt: Statement,
}

/// The statements of `text` (read from `file`), with every `include <path-or-glob>;` replaced
/// by the statements of the files it names, in place and in sorted order. Paths are taken as
/// written, so relative ones are relative to the working directory, as carbon-c-relay
/// resolves them (not to the including file). `stack` holds the files being read, to refuse
/// a loop.
fn expand_includes(
    file: &Arc<str>,
    text: &str,
    stack: &mut Vec<PathBuf>,
    out: &mut Vec<Located>,
) -> anyhow::Result<()> {
    for stmt in statements(text) {
        if stmt.words.first().map(String::as_str) != Some("include") {
            out.push(Located { file: Arc::clone(file), stmt });
            continue;
        }
        let at = || format!("{file}:{}: in statement `include ...`", stmt.line);
        let [_, pattern] = stmt.words.as_slice() else {
            bail!("{}: expected `include <path or glob>;`", at());
        };
        let paths = if glob::is_glob(pattern) {
            let paths = glob::expand(pattern)
                .with_context(|| format!("{}: cannot expand {pattern:?}", at()))?;
            if paths.is_empty() {
                bail!("{}: {pattern:?} matches no file", at());
            }
            paths
        } else {
            vec![PathBuf::from(pattern)]
        };
        for path in paths {
            if stack.len() >= MAX_INCLUDE_DEPTH {
                bail!("{}: includes nest deeper than {MAX_INCLUDE_DEPTH}", at());
            }
            let canonical = std::fs::canonicalize(&path)
                .with_context(|| format!("{}: cannot include {}", at(), path.display()))?;
            if stack.contains(&canonical) {
                bail!("{}: {} includes itself", at(), path.display());
            }
            if canonical.is_dir() {
                bail!("{}: cannot include {}: it is a directory", at(), path.display());
            }
            let bytes = std::fs::read(&path)
                .with_context(|| format!("{}: cannot include {}", at(), path.display()))?;
            let text = String::from_utf8(bytes)
                .map_err(|_| anyhow::anyhow!("{}: {} is not UTF-8", at(), path.display()))?;
            let name: Arc<str> = Arc::from(path.display().to_string());
            stack.push(canonical);
            expand_includes(&name, &text, stack, out)?;
            stack.pop();
        }
    }
    Ok(())
}

/// A server as written in a cluster: `host[:port][=instance]`, IPv6 in brackets.
fn parse_server(text: &str) -> anyhow::Result<Destination> {
    let (addr, instance) = match text.split_once('=') {
        Some((a, i)) => (a, Some(i.to_string())),
        None => (text, None),
    };
    let (host, port) = if let Some(rest) = addr.strip_prefix('[') {
        let (h, after) = rest.split_once(']').context("unterminated [ in server address")?;
        match after.strip_prefix(':') {
            Some(p) => (h, p),
            None => (h, ""),
        }
    } else {
        match addr.rsplit_once(':') {
            // A bare IPv6 address without brackets has several colons and no port.
            Some((h, p)) if !h.contains(':') => (h, p),
            _ => (addr, ""),
        }
    };
    if host.is_empty() {
        bail!("server {text:?}: empty host");
    }
    let port = if port.is_empty() {
        DEFAULT_PORT
    } else {
        port.parse::<u16>()
            .ok()
            .filter(|p| *p > 0)
            .with_context(|| format!("server {text:?}: bad port"))?
    };
    Ok(Destination::new(host, port, instance))
}

/// POSIX extended regex as carbon-c-relay compiles it (`REG_EXTENDED`), for the `regex`
/// crate: the syntaxes agree on what metric rules use; POSIX bracket classes
/// (`[[:digit:]]`) are accepted by both.
fn compile(expr: &str) -> anyhow::Result<Regex> {
    Regex::new(expr).with_context(|| format!("bad regular expression {expr:?}"))
}

/// Reads a carbon-c-relay config from its text (named `config` in errors); `include`d
/// paths are relative to the working directory.
///
/// # Errors
///
/// Unknown or unsupported statements, an unknown cluster, a bad server or regex, an include
/// that names no file; each names the file, the line and the statement's first words.
pub fn parse_crelay(text: &str) -> anyhow::Result<RelaySettings> {
    let mut located = Vec::new();
    expand_includes(&Arc::from("config"), text, &mut Vec::new(), &mut located)?;
    parse_statements(located)
}

/// Reads a carbon-c-relay config file and the files it `include`s (relative paths are
/// relative to the working directory, as carbon-c-relay reads them).
///
/// # Errors
///
/// The file cannot be read, or as [`parse_crelay`].
pub fn read_crelay(path: &Path) -> anyhow::Result<RelaySettings> {
    let bytes = std::fs::read(path).with_context(|| format!("cannot read {}", path.display()))?;
    let text =
        String::from_utf8(bytes).map_err(|_| anyhow::anyhow!("{} is not UTF-8", path.display()))?;
    let canonical =
        std::fs::canonicalize(path).with_context(|| format!("cannot read {}", path.display()))?;
    let mut located = Vec::new();
    let name: Arc<str> = Arc::from(path.display().to_string());
    expand_includes(&name, &text, &mut vec![canonical], &mut located)?;
    parse_statements(located)
}

fn parse_statements(located: Vec<Located>) -> anyhow::Result<RelaySettings> {
    let mut destinations: Vec<DestSpec> = Vec::new();
    let mut cluster_names: Vec<String> = Vec::new();
    let mut clusters: Vec<Cluster> = Vec::new();
    let mut stmts: Vec<Stmt> = Vec::new();
    let mut listen = ListenSpec { line: None, pickle: None, udp: None };
    let mut listened = false;
    let mut statistics = CRelayStatistics::default();
    let mut aggregates: Vec<AggregateRule> = Vec::new();
    let mut interval = 60u64;
    for Located { file, stmt } in located {
        let words = stmt.words;
        let head = words.iter().take(3).cloned().collect::<Vec<_>>().join(" ");
        let ctx = || format!("{file}:{}: in statement `{head} ...`", stmt.line);
        let Some(first) = words.first() else { continue };
        match first.as_str() {
            "cluster" => {
                let (name, cluster) = parse_cluster(&words, &mut destinations).with_context(ctx)?;
                if cluster_names.contains(&name) || name == "blackhole" {
                    bail!("{}: cluster {name} defined twice", ctx());
                }
                cluster_names.push(name);
                clusters.push(cluster);
            }
            "match" => {
                let stmt =
                    parse_match(&words, &mut cluster_names, &mut clusters).with_context(ctx)?;
                stmts.push(stmt);
            }
            "rewrite" => {
                let [_, expr, into, repl] = words.as_slice() else {
                    bail!("{}: expected `rewrite <regex> into <replacement>`", ctx());
                };
                if into != "into" {
                    bail!("{}: expected `into`", ctx());
                }
                stmts.push(Stmt::Rewrite {
                    regex: compile(expr).with_context(ctx)?,
                    replacement: parse_replacement(repl),
                });
            }
            "listen" => {
                listened = true;
                parse_listen(&words, &mut listen).with_context(ctx)?;
            }
            "statistics" => {
                parse_statistics(
                    &words,
                    &mut cluster_names,
                    &mut clusters,
                    &mut statistics,
                    &mut interval,
                )
                .with_context(ctx)?;
            }
            "send" => {
                // The deprecated `send statistics to <cluster>... [stop];`.
                if words.get(1).map(String::as_str) != Some("statistics") {
                    bail!("{}: unknown statement `send`", ctx());
                }
                tracing::warn!(
                    "{file}:{}: `send statistics to` is deprecated, use `statistics send to`",
                    stmt.line
                );
                let rest: Vec<String> = ["statistics".to_string(), "send".to_string()]
                    .into_iter()
                    .chain(words.into_iter().skip(2))
                    .collect();
                parse_statistics(
                    &rest,
                    &mut cluster_names,
                    &mut clusters,
                    &mut statistics,
                    &mut interval,
                )
                .with_context(ctx)?;
            }
            "aggregate" => {
                let (exprs, rule, stop) =
                    parse_aggregate(&words, &mut cluster_names, &mut clusters).with_context(ctx)?;
                aggregates.push(rule);
                stmts.push(Stmt::Aggregate { exprs, index: aggregates.len() - 1, stop });
            }
            other => bail!("{}: unknown statement `{other}`", ctx()),
        }
    }
    if !listened {
        // carbon-c-relay's default: -p 2003 on all interfaces, TCP and UDP.
        listen.line = Some(("0.0.0.0".into(), DEFAULT_PORT));
        listen.udp = Some(("0.0.0.0".into(), DEFAULT_PORT));
    }
    Ok(RelaySettings {
        listen,
        destinations,
        router: Router::CRelay { clusters, stmts, aggregates },
        cleanse: true,
        queue_points: None,
        batch_size: None,
        metric_prefix: "carbon".into(),
        metric_interval: interval,
        statistics: Some(statistics),
    })
}

/// `aggregate <expr>... every <N> seconds expire after <M> seconds [timestamp at
/// start|middle|end of bucket] compute <method> write to <name> [compute ...]... [send to
/// <cluster>...] [stop];`, with carbon-c-relay's checks: `N > 0`, `M > N`, percentiles 1 to
/// 99.
fn parse_aggregate(
    words: &[String],
    names: &mut Vec<String>,
    clusters: &mut Vec<Cluster>,
) -> anyhow::Result<(Vec<Expr>, AggregateRule, bool)> {
    let at = |i: usize| words.get(i).map(String::as_str);
    let mut i = 1;
    let mut exprs = Vec::new();
    while let Some(w) = at(i) {
        if w == "every" {
            break;
        }
        exprs.push(if w == "*" { Expr::Any } else { Expr::Regex(compile(w)?) });
        i += 1;
    }
    if exprs.is_empty() {
        bail!("aggregate without an expression");
    }
    let seconds = |i: usize, what: &str| -> anyhow::Result<u32> {
        let n = at(i)
            .and_then(|n| n.parse::<u32>().ok())
            .with_context(|| format!("expected a number of seconds after `{what}`"))?;
        if at(i + 1) != Some("seconds") {
            bail!("expected `seconds` after `{what} {n}`");
        }
        Ok(n)
    };
    // at(i) is `every`.
    let interval = seconds(i + 1, "every")?;
    if interval == 0 {
        bail!("interval must be > 0");
    }
    i += 3;
    if at(i) != Some("expire") || at(i + 1) != Some("after") {
        bail!("expected `expire after <M> seconds`");
    }
    let expire = seconds(i + 2, "expire after")?;
    if expire <= interval {
        bail!("expire must be greater than interval");
    }
    i += 4;
    let mut timestamp = TimestampAt::End;
    if at(i) == Some("timestamp") {
        timestamp = match (at(i + 1), at(i + 2), at(i + 3), at(i + 4)) {
            (Some("at"), Some("start"), Some("of"), Some("bucket")) => TimestampAt::Start,
            (Some("at"), Some("middle"), Some("of"), Some("bucket")) => TimestampAt::Middle,
            (Some("at"), Some("end"), Some("of"), Some("bucket")) => TimestampAt::End,
            _ => bail!("expected `timestamp at start|middle|end of bucket`"),
        };
        i += 5;
    }
    let mut computes = Vec::new();
    while at(i) == Some("compute") {
        let kind = at(i + 1).context("expected a method after `compute`")?;
        let method = Method::from_name(kind).with_context(|| {
            format!(
                "unknown method {kind:?} (sum, count, max, min, average, median, \
                 percentile<NN>, variance, stddev)"
            )
        })?;
        if let Method::Percentile(p) = method
            && !(1..=99).contains(&p)
        {
            bail!("percentile<x>: value x must be between 1 and 99");
        }
        let (Some("write"), Some("to"), Some(name)) = (at(i + 2), at(i + 3), at(i + 4)) else {
            bail!("expected `compute <method> write to <name>`");
        };
        computes.push(Compute {
            method,
            name: name.to_string(),
            template: parse_replacement(name),
        });
        i += 5;
    }
    if computes.is_empty() {
        bail!("expected `compute <method> write to <name>`");
    }
    let mut send_to = None;
    let mut stop = false;
    if at(i) == Some("send") {
        if at(i + 1) != Some("to") {
            bail!("expected `send to`");
        }
        let (to, s, used) = parse_targets(words.get(i + 2..).unwrap_or_default(), names, clusters)?;
        if to.is_empty() {
            bail!("`send to` names no cluster");
        }
        send_to = Some(to);
        stop = s;
        i += 2 + used;
    } else if at(i) == Some("stop") {
        stop = true;
        i += 1;
    }
    if let Some(extra) = at(i) {
        bail!("unexpected `{extra}`");
    }
    let engine = Aggregate::new(AggregateSpec { interval, expire, timestamp, computes });
    Ok((exprs, AggregateRule { engine, send_to }, stop))
}

/// `statistics [submit every N seconds] [reset counters after interval] [prefix with P]
/// [send to <cluster>... [stop]];`, clauses in that order, as carbon-c-relay's grammar has
/// them. Several statements override each other's settings; only one may `send to`.
fn parse_statistics(
    words: &[String],
    names: &mut Vec<String>,
    clusters: &mut Vec<Cluster>,
    stats: &mut CRelayStatistics,
    interval: &mut u64,
) -> anyhow::Result<()> {
    let at = |i: usize| words.get(i).map(String::as_str);
    let mut i = 1;
    if at(i) == Some("submit") {
        if at(i + 1) != Some("every") || at(i + 3) != Some("seconds") {
            bail!("expected `submit every <N> seconds`");
        }
        let n: u64 = at(i + 2)
            .and_then(|n| n.parse().ok())
            .context("expected a number of seconds after `submit every`")?;
        if n == 0 {
            bail!("interval must be > 0");
        }
        *interval = n;
        i += 4;
    }
    if at(i) == Some("reset") {
        if words.get(i + 1..i + 4).is_none_or(|w| w != ["counters", "after", "interval"]) {
            bail!("expected `reset counters after interval`");
        }
        stats.reset = true;
        i += 4;
    }
    if at(i) == Some("prefix") {
        let (Some("with"), Some(prefix)) = (at(i + 1), at(i + 2)) else {
            bail!("expected `prefix with <prefix>`");
        };
        stats.prefix = parse_replacement(prefix);
        i += 3;
    }
    if at(i) == Some("send") {
        if at(i + 1) != Some("to") {
            bail!("expected `send to`");
        }
        if stats.send_to.is_some() {
            bail!("duplicate `statistics send to` (name several clusters in one instead)");
        }
        let (to, stop, used) =
            parse_targets(words.get(i + 2..).unwrap_or_default(), names, clusters)?;
        if to.is_empty() {
            bail!("`send to` names no cluster");
        }
        // The statistics never reach the other rules when sent to clusters: `stop` is implied.
        let _ = stop;
        stats.send_to = Some(to);
        i += 2 + used;
    }
    if let Some(extra) = at(i) {
        bail!("unexpected `{extra}`");
    }
    Ok(())
}

/// The clusters of a `send to` list up to an optional `stop` (which must be last): their
/// indices, whether `stop` was there, and how many words were used. `blackhole` is a cluster
/// that discards, added (under that name, which no `cluster` may take) when first used.
/// `names[i]` names `clusters[i]`.
fn parse_targets(
    words: &[String],
    names: &mut Vec<String>,
    clusters: &mut Vec<Cluster>,
) -> anyhow::Result<(Vec<usize>, bool, usize)> {
    let mut to = Vec::new();
    for (i, w) in words.iter().enumerate() {
        if w == "stop" {
            if let Some(extra) = words.get(i + 1) {
                bail!("unexpected `{extra}` after stop");
            }
            return Ok((to, true, i + 1));
        }
        if w == "blackhole" && !names.iter().any(|n| n == "blackhole") {
            names.push("blackhole".into());
            clusters.push(Cluster::Blackhole);
        }
        let c =
            names.iter().position(|n| n == w).with_context(|| format!("unknown cluster {w}"))?;
        to.push(c);
    }
    Ok((to, false, words.len()))
}

fn parse_cluster(
    words: &[String],
    destinations: &mut Vec<DestSpec>,
) -> anyhow::Result<(String, Cluster)> {
    let name = words.get(1).context("cluster without a name")?.clone();
    let kind = words.get(2).context("cluster without a type")?.as_str();
    let mut i = 3;
    let mut replication = 1usize;
    if kind == "file" {
        return parse_file_cluster(name, words.get(i..).unwrap_or_default(), destinations);
    }
    let hash = match kind {
        "forward" | "any_of" | "failover" => {
            if words.get(i).is_some_and(|w| w == "useall") {
                i += 1;
            }
            None
        }
        "carbon_ch" | "fnv1a_ch" | "jump_fnv1a_ch" => {
            let h: CRelayHash = kind.parse().map_err(|e| anyhow::anyhow!("{e}"))?;
            if words.get(i).is_some_and(|w| w == "replication") {
                replication = words
                    .get(i + 1)
                    .and_then(|w| w.parse().ok())
                    .context("replication needs a count")?;
                i += 2;
            }
            if words.get(i).is_some_and(|w| w == "dynamic") {
                i += 1;
            }
            Some(h)
        }
        other => bail!("unknown cluster type {other}"),
    };
    let mut members = Vec::new();
    let mut nodes = Vec::new();
    while let Some(w) = words.get(i) {
        i += 1;
        let node = parse_server(w)?;
        let mut protocol = Protocol::Plaintext;
        // Options after a server.
        loop {
            match words.get(i).map(String::as_str) {
                Some("proto") => {
                    protocol = match words.get(i + 1).map(String::as_str) {
                        Some("tcp") => Protocol::Plaintext,
                        Some("udp") => Protocol::Udp,
                        _ => bail!("proto must be tcp or udp"),
                    };
                    i += 2;
                }
                Some("type") => {
                    if words.get(i + 1).map(String::as_str) != Some("linemode") {
                        bail!("only `type linemode` is supported");
                    }
                    i += 2;
                }
                Some("transport") => {
                    if words.get(i + 1).map(String::as_str) != Some("plain") {
                        bail!("only `transport plain` is supported");
                    }
                    i += 2;
                }
                _ => break,
            }
        }
        // One destination per host:port, whichever clusters list it.
        let d = match destinations
            .iter()
            .position(|d| d.dest.host() == node.host() && d.dest.port() == node.port())
        {
            Some(d) => {
                if destinations[d].dest.instance() != node.instance() {
                    bail!(
                        "server {}:{} is listed with two different instances",
                        node.host(),
                        node.port()
                    );
                }
                d
            }
            None => {
                destinations.push(DestSpec { dest: node.clone(), protocol, file: None });
                destinations.len() - 1
            }
        };
        members.push(d);
        nodes.push(node);
    }
    if members.is_empty() {
        bail!("cluster {name} has no servers");
    }
    let cluster = match (kind, hash) {
        ("forward", _) => Cluster::Forward(members),
        ("any_of", _) => Cluster::AnyOf(members),
        ("failover", _) => Cluster::Failover(members),
        (_, Some(h)) => {
            let ring = CRelayRingBuilder::new(h).replication(replication).build(nodes)?;
            Cluster::Hash { ring, members }
        }
        _ => bail!("unknown cluster type {kind}"),
    };
    Ok((name, cluster))
}

/// `cluster <name> file [ip] </path/to/file>...;`: a forward cluster whose members are files
/// the points are appended to (one destination per path, whatever clusters list it).
fn parse_file_cluster(
    name: String,
    words: &[String],
    destinations: &mut Vec<DestSpec>,
) -> anyhow::Result<(String, Cluster)> {
    if words.first().is_some_and(|w| w == "ip") {
        bail!(
            "`file ip` clusters are not supported (the relay does not keep the address a point \
             came from)"
        );
    }
    let mut members = Vec::new();
    for w in words {
        let path = PathBuf::from(w);
        let d = match destinations.iter().position(|d| d.file.as_ref() == Some(&path)) {
            Some(d) => d,
            None => {
                destinations.push(DestSpec {
                    dest: Destination::new(w.as_str(), 0, None),
                    protocol: Protocol::Plaintext,
                    file: Some(path),
                });
                destinations.len() - 1
            }
        };
        members.push(d);
    }
    if members.is_empty() {
        bail!("cluster {name} has no files");
    }
    Ok((name, Cluster::Forward(members)))
}

fn parse_match(
    words: &[String],
    names: &mut Vec<String>,
    clusters: &mut Vec<Cluster>,
) -> anyhow::Result<Stmt> {
    let mut exprs = Vec::new();
    let mut i = 1;
    while let Some(w) = words.get(i) {
        if w == "send" || w == "validate" || w == "route" {
            break;
        }
        exprs.push(if w == "*" { Expr::Any } else { Expr::Regex(compile(w)?) });
        i += 1;
    }
    if exprs.is_empty() {
        bail!("match without an expression");
    }
    let mut validate = None;
    if words.get(i).is_some_and(|w| w == "validate") {
        let expr = words.get(i + 1).context("`validate` needs an expression")?;
        if words.get(i + 2).is_none_or(|w| w != "else") {
            bail!("expected `else log` or `else drop` after the validate expression");
        }
        let log = match words.get(i + 3).map(String::as_str) {
            Some("log") => true,
            Some("drop") => false,
            _ => bail!("expected `log` or `drop` after `validate ... else`"),
        };
        validate = Some(Validate { regex: compile(expr)?, log });
        i += 4;
    }
    match words.get(i).map(String::as_str) {
        Some("send") if words.get(i + 1).is_some_and(|w| w == "to") => i += 2,
        Some("route") => bail!("`route using` is not supported"),
        // A validate needs no clusters: a global check. carbon-c-relay accepts a `stop`
        // there and ignores it; a failed check stops anyway.
        None | Some("stop") if validate.is_some() && words.len() <= i + 1 => {
            return Ok(Stmt::Match { exprs, validate, clusters: Vec::new(), stop: false });
        }
        _ => bail!("expected `send to`"),
    }
    let (to, stop, _) = parse_targets(words.get(i..).unwrap_or_default(), names, clusters)?;
    if to.is_empty() {
        bail!("match sends nowhere");
    }
    // A match that sends to the blackhole stops, as in carbon-c-relay.
    let blackhole = names.iter().position(|n| n == "blackhole");
    let stop = stop || blackhole.is_some_and(|b| to.contains(&b));
    Ok(Stmt::Match { exprs, validate, clusters: to, stop })
}

fn parse_listen(words: &[String], listen: &mut ListenSpec) -> anyhow::Result<()> {
    let mut i = 1;
    if words.get(i).is_some_and(|w| w == "type") {
        if words.get(i + 1).map(String::as_str) != Some("linemode") {
            bail!("only `type linemode` listeners are supported");
        }
        i += 2;
    }
    if words.get(i).is_some_and(|w| w == "transport") {
        if words.get(i + 1).map(String::as_str) != Some("plain") {
            bail!("only plain listeners are supported");
        }
        i += 2;
    }
    while let Some(w) = words.get(i) {
        let (iface, port) = match w.rsplit_once(':') {
            Some((h, p)) => (h.trim_start_matches('[').trim_end_matches(']').to_string(), p),
            None => ("0.0.0.0".to_string(), w.as_str()),
        };
        if w.starts_with('/') {
            bail!("unix socket listeners are not supported");
        }
        let port: u16 = port.parse().with_context(|| format!("bad listen port in {w:?}"))?;
        let proto = match (words.get(i + 1).map(String::as_str), words.get(i + 2)) {
            (Some("proto"), Some(p)) => {
                i += 3;
                p.as_str()
            }
            _ => {
                i += 1;
                "tcp"
            }
        };
        match proto {
            "tcp" => listen.line = Some((iface, port)),
            "udp" => listen.udp = Some((iface, port)),
            other => bail!("unknown listen proto {other}"),
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::relay::aggregate::{Method, TimestampAt};
    use crate::relay::router::{Health, PointIn, data_text};

    fn route(s: &RelaySettings, name: &str) -> Vec<(String, String)> {
        let mut out = Vec::new();
        s.router.route(name, &Health::new(s.destinations.len()), &mut |n, d| {
            out.push((n.to_string(), s.destinations[d].dest.to_string()));
        });
        out
    }

    #[test]
    fn reads_the_man_page_shapes() {
        let s = parse_crelay(
            "# comment\nlisten type linemode 127.0.0.1:12013 proto tcp 127.0.0.1:12013 proto udp ;\n\
             cluster ch fnv1a_ch replication 1\n  127.0.0.1:2101 127.0.0.1:2102;\n\
             cluster all forward 127.0.0.1:2103 127.0.0.1:2101 ;\n\
             cluster one failover 127.0.0.1:2104 127.0.0.1:2105;\n\
             match ^sys\\. send to all stop;\n\
             rewrite ^foo\\.(.+)$ into bar.\\_1 ;\n\
             match ^bar\\. send to one;\n\
             match junk send to blackhole;\n\
             match * send to ch stop;\n",
        )
        .unwrap();
        assert_eq!(s.listen.line, Some(("127.0.0.1".into(), 12013)));
        assert_eq!(s.listen.udp, Some(("127.0.0.1".into(), 12013)));
        assert_eq!(s.destinations.len(), 5, "127.0.0.1:2101 is one server in two clusters");
        let r = route(&s, "sys.cpu");
        assert_eq!(r.len(), 2);
        let r = route(&s, "foo.ABC");
        assert_eq!(r[0], ("bar.abc".into(), "127.0.0.1:2104".into()));
        assert_eq!(r.len(), 2);
        assert!(route(&s, "a.junk").is_empty());
        assert_eq!(route(&s, "x.y").len(), 1);
    }

    #[test]
    fn refuses_what_it_cannot_do() {
        assert!(parse_crelay("aggregate ^a every 10 seconds;").is_err());
        assert!(parse_crelay("cluster c forward a:1; match * send to c; file x;").is_err());
        assert!(parse_crelay("cluster blackhole forward 127.0.0.1:1;").is_err());
        assert!(parse_crelay("match * send to nowhere;").is_err());
        assert!(parse_crelay("cluster c carbon_ch replication 3 a:1 b:2;").is_err());
        assert!(parse_crelay("cluster c forward ;").is_err());
        assert!(parse_crelay("frobnicate;").is_err());
        assert!(parse_crelay("cluster c forward a:1; match * validate x send to c;").is_err());
        assert!(parse_crelay("cluster c forward a:1; match * validate x else x;").is_err());
        assert!(parse_crelay("cluster c forward a:1; match * validate ( else log;").is_err());
        assert!(parse_crelay("cluster c forward a:1; match * validate x else log c;").is_err());
        assert!(parse_crelay("cluster c forward a:1; match * validate;").is_err());
    }

    /// Where a point with `value` goes: `(name, destination)` pairs, and whether it was
    /// handled without being sent.
    fn route_point(s: &RelaySettings, name: &str, value: f64) -> (Vec<String>, bool) {
        let health = Health::new(s.destinations.len());
        let mut to = Vec::new();
        let point = PointIn { value, timestamp: 1_700_000_000.0, now: 1_700_000_000 };
        let handled = s.router.route_point(name, Some(point), &health, &mut |_, d| {
            to.push(s.destinations[d].address());
        });
        (to, handled)
    }

    #[test]
    fn validate_as_carbon_c_relay_applies_it() {
        let s = parse_crelay(
            "cluster c forward 127.0.0.1:1; cluster d forward 127.0.0.1:2;\n\
             match ^a validate ^[0-9]+\\ [0-9]+$ else drop send to c;\n\
             match ^b validate ^[0-9]+\\ [0-9]+$ else log send to c stop;\n\
             match * validate ^-?[0-9.]+\\ [0-9]+$ else drop stop;\n\
             match * send to d;",
        )
        .unwrap();
        let (c, d) = ("127.0.0.1:1".to_string(), "127.0.0.1:2".to_string());
        // Passing: the rule sends; failing: its clusters are skipped, the next rules run.
        assert_eq!(route_point(&s, "a.x", 1.0), (vec![c.clone(), d.clone()], false));
        assert_eq!(route_point(&s, "a.x", 1.5), (vec![d.clone()], false));
        // `stop` holds either way; `log` counts the refused point as handled.
        assert_eq!(route_point(&s, "b.x", 2.0), (vec![c.clone()], false));
        assert_eq!(route_point(&s, "b.x", 2.5), (vec![], true));
        // A validate without clusters stops the routing when it fails (and `drop` leaves the
        // point blackholed).
        assert_eq!(route_point(&s, "c.x", -0.25), (vec![d.clone()], false));
        assert_eq!(route_point(&s, "c.x", f64::NAN), (vec![], false));
        // Without a point (routing a bare name) validation passes.
        assert_eq!(route(&s, "a.x").len(), 2);
    }

    #[test]
    fn file_clusters_as_crelay_reads_them() {
        let s = parse_crelay(
            "cluster f file /var/log/a.log b.log; cluster g file b.log;\n\
             cluster n forward 127.0.0.1:2003;\n\
             match ^x send to f stop; match * send to g n;",
        )
        .unwrap();
        // One destination per path, whatever clusters list it; relative paths kept as written.
        let files: Vec<Option<&Path>> = s.destinations.iter().map(|d| d.file.as_deref()).collect();
        assert_eq!(files, [Some(Path::new("/var/log/a.log")), Some(Path::new("b.log")), None]);
        assert_eq!(s.destinations[0].address(), "/var/log/a.log");
        assert_eq!(s.destinations[0].label(), "/var/log/a_log");
        let to = |name: &str| -> Vec<String> {
            let mut out = Vec::new();
            s.router.route(name, &Health::new(s.destinations.len()), &mut |_, d| {
                out.push(s.destinations[d].address());
            });
            out
        };
        assert_eq!(to("x.y"), ["/var/log/a.log", "b.log"]);
        assert_eq!(to("y"), ["b.log", "127.0.0.1:2003"]);
        assert!(parse_crelay("cluster f file ip /tmp/x.log;").is_err());
        assert!(parse_crelay("cluster f file;").is_err());
    }

    #[test]
    fn data_text_writes_numbers_as_senders_usually_do() {
        assert_eq!(data_text(1.0, 1_700_000_000.0), "1 1700000000");
        assert_eq!(data_text(-3.0, 5.5), "-3 5.5");
        assert_eq!(data_text(0.25, 0.0), "0.25 0");
        assert_eq!(data_text(f64::NAN, f64::INFINITY), "nan inf");
        assert_eq!(data_text(f64::NEG_INFINITY, 1e20), "-inf 100000000000000000000");
        assert_eq!(data_text(-0.0, 1.0), "0 1");
    }

    #[test]
    fn statements_know_their_lines() {
        let st = statements("# c\ncluster a\n  forward b:1;\n\nmatch *\n send to a; \"x y\";");
        let lines: Vec<usize> = st.iter().map(|s| s.line).collect();
        assert_eq!(lines, [2, 5, 6]);
        assert_eq!(st[2].words, ["x y"]);
    }

    #[test]
    fn errors_name_the_line() {
        let e = parse_crelay("cluster a forward b:1;\n\nmatch * send to nowhere;").unwrap_err();
        let msg = format!("{e:#}");
        assert!(msg.starts_with("config:3: in statement `match * send ...`"), "{msg}");
        assert!(msg.contains("unknown cluster nowhere"), "{msg}");
    }

    #[test]
    fn includes_are_read_in_place_in_sorted_order() {
        let dir = tempfile::tempdir().unwrap();
        let d = dir.path();
        std::fs::create_dir(d.join("conf.d")).unwrap();
        std::fs::write(d.join("conf.d/20-b.conf"), "cluster b forward 127.0.0.1:2102;\n").unwrap();
        std::fs::write(
            d.join("conf.d/10-a.conf"),
            format!("cluster a forward 127.0.0.1:2101;\ninclude {}/more.conf;\n", d.display()),
        )
        .unwrap();
        std::fs::write(d.join("more.conf"), "match ^a\\. send to a stop;\n").unwrap();
        let main = d.join("relay.conf");
        std::fs::write(
            &main,
            format!("include {}/conf.d/*.conf;\nmatch * send to b;\n", d.display()),
        )
        .unwrap();
        let s = read_crelay(&main).unwrap();
        // a.conf (and what it includes) before b.conf, then the rest of relay.conf.
        let addrs: Vec<String> = s.destinations.iter().map(DestSpec::address).collect();
        assert_eq!(addrs, ["127.0.0.1:2101", "127.0.0.1:2102"]);
        assert_eq!(route(&s, "a.x"), [("a.x".to_string(), "127.0.0.1:2101".to_string())]);
        assert_eq!(route(&s, "b.x"), [("b.x".to_string(), "127.0.0.1:2102".to_string())]);
    }

    #[test]
    fn include_errors_name_the_file_and_line() {
        let dir = tempfile::tempdir().unwrap();
        let d = dir.path();
        let main = d.join("relay.conf");
        let inc = d.join("inc.conf");
        std::fs::write(&inc, "cluster a forward 127.0.0.1:1;\n\nfrobnicate;\n").unwrap();
        std::fs::write(&main, format!("# x\ninclude {};\n", inc.display())).unwrap();
        let msg = format!("{:#}", read_crelay(&main).unwrap_err());
        assert!(msg.starts_with(&format!("{}:3:", inc.display())), "{msg}");
        assert!(msg.contains("unknown statement `frobnicate`"), "{msg}");

        std::fs::write(&main, format!("\ninclude {}/none/*.conf;\n", d.display())).unwrap();
        let msg = format!("{:#}", read_crelay(&main).unwrap_err());
        assert!(msg.starts_with(&format!("{}:2:", main.display())), "{msg}");
        assert!(msg.contains("matches no file"), "{msg}");

        std::fs::write(&main, format!("include {}/missing.conf;\n", d.display())).unwrap();
        let msg = format!("{:#}", read_crelay(&main).unwrap_err());
        assert!(msg.contains("cannot include") && msg.contains("missing.conf"), "{msg}");

        std::fs::write(&main, "include a b;\n").unwrap();
        assert!(format!("{:#}", read_crelay(&main).unwrap_err()).contains("expected `include"));

        // A loop: relay.conf -> inc.conf -> relay.conf.
        std::fs::write(&inc, format!("include {};\n", main.display())).unwrap();
        std::fs::write(&main, format!("include {};\n", inc.display())).unwrap();
        let msg = format!("{:#}", read_crelay(&main).unwrap_err());
        assert!(msg.contains("includes itself"), "{msg}");
    }

    #[test]
    fn a_cluster_defined_after_a_blackhole_match_is_itself() {
        // postmortem: `blackhole` used to take a cluster index without a name, so the next
        // cluster defined resolved to the blackhole.
        let s = parse_crelay(
            "cluster a forward 127.0.0.1:1;\nmatch ^junk send to blackhole;\n\
             cluster b forward 127.0.0.1:2;\nmatch * send to b;",
        )
        .unwrap();
        assert_eq!(route(&s, "x"), [("x".to_string(), "127.0.0.1:2".to_string())]);
        assert!(route(&s, "junk.x").is_empty());
    }

    #[test]
    fn statistics_as_crelay_reads_them() {
        let s = parse_crelay("cluster a forward 127.0.0.1:1;").unwrap();
        assert_eq!(s.metric_interval, 60);
        assert_eq!(s.statistics, Some(CRelayStatistics::default()));
        let s = parse_crelay(
            "cluster a forward 127.0.0.1:1;\ncluster b forward 127.0.0.1:2;\n\
             statistics submit every 5 seconds reset counters after interval\n\
               prefix with stats.\\_2 send to a b stop;\n\
             statistics submit every 7 seconds;",
        )
        .unwrap();
        assert_eq!(s.metric_interval, 7, "a later statement overrides");
        let st = s.statistics.unwrap();
        assert!(st.reset);
        assert_eq!(st.prefix_for("Host.example"), "stats.host");
        assert_eq!(st.send_to, Some(vec![0, 1]));
        let s = parse_crelay("cluster a forward 127.0.0.1:1;\nsend statistics to a stop;").unwrap();
        assert_eq!(s.statistics.unwrap().send_to, Some(vec![0]));
        for bad in [
            "statistics submit every 0 seconds;",
            "statistics prefix with x submit every 5 seconds;",
            "statistics stop;",
            "statistics send to nowhere;",
            "cluster a forward 127.0.0.1:1; statistics send to a; statistics send to a;",
            "statistics reset counters;",
            "send stats to a;",
        ] {
            assert!(parse_crelay(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn aggregates_as_crelay_reads_them() {
        let s = parse_crelay(
            "cluster a forward 127.0.0.1:1;\n\
             aggregate ^sys\\.(x|y)\\.cpu ^other every 10 seconds expire after 35 seconds\n\
               timestamp at start of bucket compute sum write to cpu.\\1.sum\n\
               compute percentile95 write to cpu.p95 send to a stop;\n\
             aggregate * every 1 seconds expire after 2 seconds compute count write to n;\n\
             match * send to a;",
        )
        .unwrap();
        let rules = s.router.aggregates();
        assert_eq!(rules.len(), 2);
        let spec = rules[0].engine.spec();
        assert_eq!((spec.interval, spec.expire, spec.timestamp), (10, 35, TimestampAt::Start));
        assert_eq!(spec.computes[1].method, Method::Percentile(95));
        assert_eq!(rules[0].send_to, Some(vec![0]));
        assert_eq!(rules[1].send_to, None);
        assert_eq!(rules[1].engine.spec().timestamp, TimestampAt::End);
        // Routing without a point passes the aggregates over: `sys.x.cpu` stops at the first.
        assert!(route(&s, "sys.x.cpu").is_empty());
        assert_eq!(route(&s, "b").len(), 1);
        for (bad, why) in [
            ("aggregate ^a every 0 seconds expire after 1 seconds compute sum write to x;", "> 0"),
            (
                "aggregate ^a every 2 seconds expire after 2 seconds compute sum write to x;",
                "greater",
            ),
            (
                "aggregate ^a every 2 seconds expire after 3 seconds compute percentile0 write to x;",
                "between 1 and 99",
            ),
            (
                "aggregate ^a every 2 seconds expire after 3 seconds compute percentile100 write to x;",
                "between 1 and 99",
            ),
            (
                "aggregate ^a every 2 seconds expire after 3 seconds compute avg write to x;",
                "unknown method",
            ),
            ("aggregate ^a every 2 seconds expire after 3 seconds;", "compute"),
            (
                "aggregate ^a every 2 seconds expire after 3 seconds compute sum write to x send to no;",
                "unknown cluster",
            ),
            (
                "aggregate every 2 seconds expire after 3 seconds compute sum write to x;",
                "expression",
            ),
            (
                "aggregate ^a every 2 seconds expire after 3 seconds timestamp at end compute sum write to x;",
                "timestamp at",
            ),
            (
                "aggregate ^a every 2 seconds expire after 3 seconds compute sum write to x stop x;",
                "unexpected",
            ),
        ] {
            let msg = format!("{:#}", parse_crelay(bad).unwrap_err());
            assert!(msg.contains(why), "{bad}: {msg}");
        }
    }

    #[test]
    fn servers() {
        let d = parse_server("[::1]:2004=a").unwrap();
        assert_eq!((d.host(), d.port(), d.instance()), ("::1", 2004, Some("a")));
        let d = parse_server("host").unwrap();
        assert_eq!((d.host(), d.port()), ("host", 2003));
        assert!(parse_server("h:0").is_err());
        assert!(parse_server(":1").is_err());
    }

    proptest::proptest! {
        #[test]
        fn parser_never_panics(text in "[a-z_:0-9.=*;#\" \n\\[\\]^$\\\\]{0,120}") {
            let _ = parse_crelay(&text);
        }

        #[test]
        fn parser_never_panics_on_keywords(words in proptest::collection::vec(
            "(cluster|match|send|to|stop|rewrite|into|listen|proto|tcp|udp|forward|any_of|carbon_ch|jump_fnv1a_ch|replication|2|c|127.0.0.1:1|;|\\*|type|linemode)", 0..20)) {
            let _ = parse_crelay(&words.join(" "));
        }
    }
}
