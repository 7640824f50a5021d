//! Where a metric goes: carbon-relay's routers (`rules`, `consistent-hashing`) and
//! carbon-c-relay's route list (clusters, `match`, `rewrite`, `aggregate`).
//!
//! A router maps a metric name to destination indices (into the relay's destination table),
//! possibly under a new name (c-relay's `rewrite`). It allocates nothing per lookup unless a
//! rewrite changes the name. The only state it reads at run time is which destinations are
//! up ([`Health`]), for c-relay's `any_of` and `failover` clusters.

use std::borrow::Cow;
use std::sync::atomic::{AtomicBool, Ordering};

use carbon_proto::ring::{CRelayRing, ConsistentHashRing, FastHashRing, Replicas};
use regex::Regex;
use store::config::PatternList;

use super::aggregate::Aggregate;

/// Which destinations are connected now, updated by the relay's monitor. `any_of` and
/// `failover` clusters skip destinations that are down; every other router ignores it
/// (their destinations spool while down).
#[derive(Debug, Default)]
pub struct Health {
    up: Vec<AtomicBool>,
}

impl Health {
    /// `n` destinations, all assumed up until the monitor says otherwise.
    pub fn new(n: usize) -> Health {
        Health { up: (0..n).map(|_| AtomicBool::new(true)).collect() }
    }

    /// Whether destination `d` is up (unknown destinations count as up).
    pub fn is_up(&self, d: usize) -> bool {
        self.up.get(d).is_none_or(|u| u.load(Ordering::Relaxed))
    }

    /// Records the state of destination `d`.
    pub fn set(&self, d: usize, up: bool) {
        if let Some(u) = self.up.get(d) {
            u.store(up, Ordering::Relaxed);
        }
    }
}

/// One relay-rules.conf section (carbon's `RelayRule`).
#[derive(Debug)]
pub struct RelayRule {
    /// The section name, for messages.
    pub name: String,
    /// `pattern`, searched case-insensitively; `None` for the default rule.
    pub pattern: Option<PatternList>,
    /// Destination indices, only those also in `DESTINATIONS`.
    pub destinations: Vec<usize>,
    /// `continue = true`: later rules are tried too.
    pub continue_matching: bool,
}

/// A carbon-c-relay cluster.
#[derive(Debug)]
pub enum Cluster {
    /// `forward`: every member gets every metric.
    Forward(Vec<usize>),
    /// `any_of`: one member per metric, chosen by hash; a member that is down is skipped.
    AnyOf(Vec<usize>),
    /// `failover`: the first member that is up.
    Failover(Vec<usize>),
    /// `carbon_ch`, `fnv1a_ch`, `jump_fnv1a_ch` with `replication`: ring node `i` is
    /// destination `members[i]`.
    Hash {
        /// The ring, with carbon-c-relay's placement.
        ring: CRelayRing,
        /// Destination index of each ring node.
        members: Vec<usize>,
    },
    /// `blackhole`: discards.
    Blackhole,
}

/// A c-relay match expression.
#[derive(Debug)]
pub enum Expr {
    /// `*`: everything.
    Any,
    /// A POSIX extended regular expression, searched in the name.
    Regex(Regex),
}

/// One statement of a c-relay route list, in file order.
#[derive(Debug)]
pub enum Stmt {
    /// `match <expr>... [validate <regex> else log|drop] send to <cluster>... [stop];`
    Match {
        /// Any of these matching is a match.
        exprs: Vec<Expr>,
        /// `validate`: checked on the point's data once the name matched.
        validate: Option<Validate>,
        /// Cluster indices.
        clusters: Vec<usize>,
        /// Stop after a match (implied by `blackhole`).
        stop: bool,
    },
    /// `aggregate <expr>... ... [stop];`: a matching point goes into the aggregate.
    Aggregate {
        /// Any of these matching is a match; the first that matches gives the groups.
        exprs: Vec<Expr>,
        /// Index into the route list's aggregates.
        index: usize,
        /// Stop after a match.
        stop: bool,
    },
    /// `rewrite <regex> into <replacement>;`
    Rewrite {
        /// The regex.
        regex: Regex,
        /// The replacement, parsed.
        replacement: Vec<ReplPart>,
    },
}

/// A `validate <regex> else log|drop` clause of a c-relay `match`.
///
/// The regex is searched in the point's data, `value timestamp`, as [`data_text`] writes it.
/// When it does not match, the rule's clusters are skipped (and, for a rule without `send
/// to`, the following rules too); `log` also logs the metric and counts it as handled rather
/// than blackholed, as carbon-c-relay does.
#[derive(Debug)]
pub struct Validate {
    /// The POSIX extended regex.
    pub regex: Regex,
    /// `else log` (`true`) or `else drop`.
    pub log: bool,
}

/// The data part of a point as a `validate` clause sees it: `value timestamp`, a number with
/// an integral value written as an integer (`1`, `-3`), any other in Rust's shortest decimal
/// form (`0.5`), `nan`, `inf`, `-inf`. carbon-c-relay matches the text as received; this
/// relay keeps only the parsed numbers, so `1.0`, `1e3` or `1.50` as sent are seen as `1`,
/// `1000` and `1.5`.
pub fn data_text(value: f64, timestamp: f64) -> String {
    fn number(out: &mut String, v: f64) {
        use std::fmt::Write as _;
        // Writing to a String cannot fail.
        let _ = if v.is_nan() {
            write!(out, "nan")
        } else if v.is_infinite() {
            write!(out, "{}", if v > 0.0 { "inf" } else { "-inf" })
        } else if v.fract() == 0.0 && v.abs() < 1e18 {
            // Exact: integral and within i64.
            write!(out, "{}", v as i64)
        } else {
            write!(out, "{v}")
        };
    }
    let mut out = String::with_capacity(32);
    number(&mut out, value);
    out.push(' ');
    number(&mut out, timestamp);
    out
}

/// A piece of a c-relay rewrite replacement.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ReplPart {
    /// Text copied as is.
    Text(String),
    /// `\N`, with c-relay's modifiers: `\_N` lowercase, `\^N` uppercase, a `.` after the
    /// backslash or the case mark turns dots into underscores.
    Group {
        /// The group number (1 to 9).
        index: usize,
        /// Lowercase / uppercase / as is.
        case: Case,
        /// Replace `.` by `_`.
        undot: bool,
    },
}

/// Case change of a rewrite back-reference.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Case {
    /// As captured.
    Keep,
    /// `\_N`.
    Lower,
    /// `\^N`.
    Upper,
}

/// The ring of carbon's hashing routers: `consistent-hashing`'s or `fast-hashing`'s.
#[derive(Debug)]
pub enum CarbonRing {
    /// `consistent-hashing`, `aggregated-consistent-hashing`.
    Consistent(ConsistentHashRing),
    /// `fast-hashing`, `fast-aggregated-hashing`.
    Fast(FastHashRing),
}

impl CarbonRing {
    /// The router's destinations for `key`, with the ring's replication settings.
    pub fn destinations(&self, key: &str) -> Replicas<'_> {
        match self {
            CarbonRing::Consistent(ring) => ring.destinations(key),
            CarbonRing::Fast(ring) => ring.destinations(key),
        }
    }
}

/// A router.
#[derive(Debug)]
pub enum Router {
    /// carbon's `RELAY_METHOD = rules`.
    Rules(Vec<RelayRule>),
    /// carbon's `RELAY_METHOD = consistent-hashing` or `fast-hashing` (`REPLICATION_FACTOR`,
    /// `DIVERSE_REPLICAS`, `ROUTER_HASH_TYPE`): ring node `i` is destination `members[i]`.
    Hash {
        /// carbon's ring.
        ring: CarbonRing,
        /// Destination index of each ring node.
        members: Vec<usize>,
    },
    /// carbon's `RELAY_METHOD = aggregated-consistent-hashing` or `fast-aggregated-hashing`:
    /// the ring keys are the
    /// aggregate names the aggregation rules make of the metric (the union of their
    /// destinations), or the metric itself when no rule matches, so every input of an
    /// aggregate reaches the aggregator that owns it.
    AggregatedHash {
        /// carbon's ring.
        ring: CarbonRing,
        /// Destination index of each ring node.
        members: Vec<usize>,
        /// aggregation-rules.conf.
        rules: store::aggregator::AggregationRules,
    },
    /// A carbon-c-relay route list.
    CRelay {
        /// The clusters, referenced by index from the statements.
        clusters: Vec<Cluster>,
        /// The statements in file order.
        stmts: Vec<Stmt>,
        /// The `aggregate` statements' engines, referenced by index from the statements.
        aggregates: Vec<AggregateRule>,
    },
}

/// An `aggregate` statement: its buckets, and where its aggregates go.
#[derive(Debug)]
pub struct AggregateRule {
    /// The buckets.
    pub engine: Aggregate,
    /// `send to`: cluster indices; `None`: the aggregates are routed like received points.
    pub send_to: Option<Vec<usize>>,
}

/// A point being routed, for the `aggregate` statements.
#[derive(Debug, Clone, Copy)]
pub struct PointIn {
    /// The value.
    pub value: f64,
    /// The timestamp.
    pub timestamp: f64,
    /// The clock, in whole seconds.
    pub now: i64,
}

impl Router {
    /// Calls `emit(name, destination)` for every destination of `metric`, with the name to
    /// send there (a c-relay rewrite changes it for the statements after it).
    ///
    /// carbon's routers send a metric at most once to each destination (its client manager
    /// collects the destinations in a set); carbon-c-relay sends once per matching cluster.
    pub fn route(&self, metric: &str, health: &Health, emit: &mut dyn FnMut(&str, usize)) {
        self.route_point(metric, None, health, emit);
    }

    /// [`Router::route`] for a point: an `aggregate` statement that matches takes it into its
    /// buckets (with `point` `None` it is passed over, as carbon-c-relay's test mode shows it),
    /// and `validate` clauses check the point's data (with `point` `None` they pass).
    /// Returns whether the point was handled without being emitted: an aggregate took it, or
    /// a `validate ... else log` refused it (both count as routed, not blackholed).
    pub fn route_point(
        &self,
        metric: &str,
        point: Option<PointIn>,
        health: &Health,
        emit: &mut dyn FnMut(&str, usize),
    ) -> bool {
        let mut aggregated = false;
        match self {
            Router::Rules(rules) => {
                let mut seen: [usize; 8] = [usize::MAX; 8];
                let mut extra: Vec<usize> = Vec::new();
                let mut n = 0usize;
                let mut once = |d: usize, emit: &mut dyn FnMut(&str, usize)| {
                    let held = seen.get(..n.min(8)).unwrap_or_default();
                    if held.contains(&d) || extra.contains(&d) {
                        return;
                    }
                    match seen.get_mut(n) {
                        Some(slot) => *slot = d,
                        None => extra.push(d),
                    }
                    n += 1;
                    emit(metric, d);
                };
                for rule in rules {
                    if rule.pattern.as_ref().is_none_or(|p| p.is_match(metric)) {
                        for &d in &rule.destinations {
                            once(d, emit);
                        }
                        if !rule.continue_matching {
                            return false;
                        }
                    }
                }
            }
            Router::Hash { ring, members } => {
                for node in ring.destinations(metric).indices() {
                    if let Some(&d) = members.get(node) {
                        emit(metric, d);
                    }
                }
            }
            Router::AggregatedHash { ring, members, rules } => {
                let mut seen: Vec<usize> = Vec::new();
                let mut add = |key: &str, emit: &mut dyn FnMut(&str, usize)| {
                    for node in ring.destinations(key).indices() {
                        if let Some(&d) = members.get(node)
                            && !seen.contains(&d)
                        {
                            seen.push(d);
                            emit(metric, d);
                        }
                    }
                };
                let mut any = false;
                for rule in rules.rules() {
                    if let Some(aggregate) = rule.output_for(metric) {
                        any = true;
                        add(&aggregate, emit);
                    }
                }
                if !any {
                    add(metric, emit);
                }
            }
            Router::CRelay { clusters, stmts, aggregates } => {
                let mut name: Cow<'_, str> = Cow::Borrowed(metric);
                for stmt in stmts {
                    match stmt {
                        Stmt::Match { exprs, validate, clusters: to, stop } => {
                            if !exprs.iter().any(|e| e.matches(&name)) {
                                continue;
                            }
                            if let (Some(v), Some(p)) = (validate, point)
                                && !v.regex.is_match(&data_text(p.value, p.timestamp))
                            {
                                if v.log {
                                    tracing::warn!(
                                        metric = %name,
                                        data = %data_text(p.value, p.timestamp),
                                        "dropping metric due to validation error"
                                    );
                                    // Handled, not blackholed (carbon-c-relay's `wassent`).
                                    aggregated = true;
                                }
                                // A validate without clusters stops the routing.
                                if *stop || to.is_empty() {
                                    return aggregated;
                                }
                                continue;
                            }
                            for &c in to {
                                if let Some(cluster) = clusters.get(c) {
                                    cluster.send(&name, health, emit);
                                }
                            }
                            if *stop {
                                return aggregated;
                            }
                        }
                        Stmt::Aggregate { exprs, index, stop } => {
                            let Some(expr) = exprs.iter().find(|e| e.matches(&name)) else {
                                continue;
                            };
                            if let (Some(p), Some(rule)) = (point, aggregates.get(*index)) {
                                // The outputs are rewrites of the name when the expression
                                // has groups, else named as written.
                                let caps = match expr {
                                    Expr::Regex(r) if r.captures_len() > 1 => r.captures(&name),
                                    _ => None,
                                };
                                rule.engine.put(&name, caps.as_ref(), p.value, p.timestamp, p.now);
                                aggregated = true;
                            }
                            if *stop {
                                return aggregated;
                            }
                        }
                        Stmt::Rewrite { regex, replacement } => {
                            if let Some(new) = rewrite(regex, replacement, &name) {
                                name = Cow::Owned(new);
                            }
                        }
                    }
                }
            }
        }
        aggregated
    }

    /// The `aggregate` statements (c-relay), in file order.
    pub fn aggregates(&self) -> &[AggregateRule] {
        match self {
            Router::CRelay { aggregates, .. } => aggregates,
            _ => &[],
        }
    }

    /// Calls `emit(name, destination)` for `metric` sent straight to the c-relay clusters
    /// `to` (indices into the route list's clusters), as a `send to` of a `statistics` or
    /// `aggregate` statement does: no rule applies. Other routers emit nothing.
    pub fn send_to_clusters(
        &self,
        metric: &str,
        to: &[usize],
        health: &Health,
        emit: &mut dyn FnMut(&str, usize),
    ) {
        if let Router::CRelay { clusters, .. } = self {
            for &c in to {
                if let Some(cluster) = clusters.get(c) {
                    cluster.send(metric, health, emit);
                }
            }
        }
    }

    /// Every destination index the router can ever emit.
    pub fn destinations(&self) -> Vec<usize> {
        let mut all = Vec::new();
        match self {
            Router::Rules(rules) => {
                for r in rules {
                    all.extend(&r.destinations);
                }
            }
            Router::Hash { members, .. } | Router::AggregatedHash { members, .. } => {
                all.extend(members);
            }
            Router::CRelay { clusters, .. } => {
                for c in clusters {
                    match c {
                        Cluster::Forward(m) | Cluster::AnyOf(m) | Cluster::Failover(m) => {
                            all.extend(m);
                        }
                        Cluster::Hash { members, .. } => all.extend(members),
                        Cluster::Blackhole => {}
                    }
                }
            }
        }
        all.sort_unstable();
        all.dedup();
        all
    }
}

impl Expr {
    fn matches(&self, name: &str) -> bool {
        match self {
            Expr::Any => true,
            Expr::Regex(r) => r.is_match(name),
        }
    }
}

impl Cluster {
    fn send(&self, name: &str, health: &Health, emit: &mut dyn FnMut(&str, usize)) {
        match self {
            Cluster::Forward(members) => {
                for &d in members {
                    emit(name, d);
                }
            }
            Cluster::AnyOf(members) => {
                if members.is_empty() {
                    return;
                }
                let start = (fnv1a32(name.as_bytes()) as usize) % members.len();
                let pick = (0..members.len())
                    .map(|i| members[(start + i) % members.len()])
                    .find(|&d| health.is_up(d))
                    .unwrap_or(members[start]);
                emit(name, pick);
            }
            Cluster::Failover(members) => {
                if let Some(&d) = members.iter().find(|&&d| health.is_up(d)).or(members.first()) {
                    emit(name, d);
                }
            }
            Cluster::Hash { ring, members } => {
                for node in ring.route(name).indices() {
                    if let Some(&d) = members.get(node) {
                        emit(name, d);
                    }
                }
            }
            Cluster::Blackhole => {}
        }
    }
}

/// 32-bit FNV-1a: spreads `any_of` members by metric, so one metric keeps going to the same
/// member while it is up.
fn fnv1a32(bytes: &[u8]) -> u32 {
    let mut h: u32 = 0x811c_9dc5;
    for &b in bytes {
        h ^= u32::from(b);
        h = h.wrapping_mul(0x0100_0193);
    }
    h
}

/// c-relay's rewrite: the first match of `regex` in `name` is replaced (the text around it
/// is kept), back-references expanded with their modifiers. `None` when it does not match.
pub fn rewrite(regex: &Regex, replacement: &[ReplPart], name: &str) -> Option<String> {
    let caps = regex.captures(name)?;
    Some(expand(&caps, replacement, name))
}

/// The rewrite of `name` for a match `caps` of it: the text before and after the match kept,
/// the match replaced by `replacement` with its back-references expanded (a group that did
/// not take part is empty).
pub fn expand(caps: &regex::Captures<'_>, replacement: &[ReplPart], name: &str) -> String {
    let (start, end) = caps.get(0).map_or((0, 0), |m| (m.start(), m.end()));
    let mut out = String::with_capacity(name.len() + 16);
    out.push_str(name.get(..start).unwrap_or_default());
    for part in replacement {
        match part {
            ReplPart::Text(t) => out.push_str(t),
            ReplPart::Group { index, case, undot } => {
                let Some(g) = caps.get(*index) else { continue };
                for ch in g.as_str().chars() {
                    let ch = if *undot && ch == '.' { '_' } else { ch };
                    match case {
                        Case::Keep => out.push(ch),
                        Case::Lower => out.extend(ch.to_lowercase()),
                        Case::Upper => out.extend(ch.to_uppercase()),
                    }
                }
            }
        }
    }
    out.push_str(name.get(end..).unwrap_or_default());
    out
}

/// Parses a c-relay replacement: `\1`..`\9`, `\_1` (lowercase), `\^1` (uppercase), `\.1`,
/// `\_.1`, `\^.1` (dots to underscores); any other backslash is kept as written.
pub fn parse_replacement(text: &str) -> Vec<ReplPart> {
    let mut parts = Vec::new();
    let mut lit = String::new();
    let chars: Vec<char> = text.chars().collect();
    let mut i = 0;
    while i < chars.len() {
        let c = chars[i];
        if c == '\\' {
            let mut j = i + 1;
            let mut case = Case::Keep;
            let mut undot = false;
            match chars.get(j) {
                Some('_') => {
                    case = Case::Lower;
                    j += 1;
                }
                Some('^') => {
                    case = Case::Upper;
                    j += 1;
                }
                _ => {}
            }
            if chars.get(j) == Some(&'.') {
                undot = true;
                j += 1;
            }
            if let Some(d) = chars.get(j).and_then(|c| c.to_digit(10)) {
                if !lit.is_empty() {
                    parts.push(ReplPart::Text(std::mem::take(&mut lit)));
                }
                parts.push(ReplPart::Group { index: d as usize, case, undot });
                i = j + 1;
                continue;
            }
        }
        lit.push(c);
        i += 1;
    }
    if !lit.is_empty() {
        parts.push(ReplPart::Text(lit));
    }
    parts
}

/// carbon-c-relay's input cleansing, applied to every metric before any rule sees it:
/// consecutive dots become one, leading and trailing dots go, and characters outside
/// `[0-9a-zA-Z-_:#.]` become `_`. The tags of a tagged name (after the first `;`) are kept
/// as they are. Borrowed when nothing changes (the usual case).
pub fn cleanse(name: &str) -> Cow<'_, str> {
    let (metric, tags) = match name.find(';') {
        Some(i) => name.split_at(i),
        None => (name, ""),
    };
    let ok = |b: u8| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b':' | b'#');
    let bytes = metric.as_bytes();
    let clean = bytes.first().is_none_or(|&b| b != b'.')
        && bytes.last().is_none_or(|&b| b != b'.')
        && !bytes.windows(2).any(|w| w == b"..")
        && bytes.iter().all(|&b| b == b'.' || ok(b));
    if clean {
        return Cow::Borrowed(name);
    }
    let mut out = String::with_capacity(name.len());
    for ch in metric.chars() {
        if ch == '.' {
            if !out.is_empty() && !out.ends_with('.') {
                out.push('.');
            }
        } else if ch.is_ascii() && ok(ch as u8) {
            out.push(ch);
        } else {
            out.push('_');
        }
    }
    while out.ends_with('.') {
        out.pop();
    }
    out.push_str(tags);
    Cow::Owned(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn replacement_modifiers() {
        let r = Regex::new(r"^server\.(.+)\.(.+)\.([a-zA-Z]+)([0-9]+)").unwrap();
        let repl = parse_replacement(r"server.\_1.\2.\3.\3\4");
        assert_eq!(
            rewrite(&r, &repl, "server.DC.role.name123").as_deref(),
            Some("server.dc.role.name.name123")
        );
        let r = Regex::new(r"^a\.(.*)$").unwrap();
        assert_eq!(rewrite(&r, &parse_replacement(r"b.\^.1"), "a.x.y").as_deref(), Some("b.X_Y"));
        assert_eq!(rewrite(&r, &parse_replacement(r"b\n"), "c").as_deref(), None);
    }

    #[test]
    fn cleansing_like_crelay() {
        assert_eq!(cleanse("a.b.c"), "a.b.c");
        assert!(matches!(cleanse("a.b.c"), Cow::Borrowed(_)));
        assert_eq!(cleanse(".a..b.c."), "a.b.c");
        assert_eq!(cleanse("a b/c"), "a_b_c");
        assert_eq!(cleanse("a..b;tag=x y"), "a.b;tag=x y");
        assert_eq!(cleanse("é.x"), "_.x");
    }

    proptest::proptest! {
        #[test]
        fn cleanse_output_is_clean(s in ".{0,40}") {
            let c = cleanse(&s);
            let metric = c.split(';').next().unwrap_or_default();
            proptest::prop_assert!(!metric.contains(".."));
            proptest::prop_assert!(!metric.starts_with('.') && !metric.ends_with('.'));
        }

        #[test]
        fn replacement_parse_never_panics(s in ".{0,40}", name in "[a-z.]{0,20}") {
            let parts = parse_replacement(&s);
            let r = Regex::new("^(.*)$").unwrap();
            let _ = rewrite(&r, &parts, &name);
        }
    }
}
