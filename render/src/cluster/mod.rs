//! Federated reads: graphite-web's `CLUSTER_SERVERS` (graphite/storage.py,
//! graphite/finders/remote.py, graphite/readers/remote.py, graphite/render/datalib.py).
//!
//! [`ClusterBackend`] wraps the local backend and a list of peers (graphite-web nodes or ours)
//! and answers as graphite-web 1.1.8 does with those peers in `CLUSTER_SERVERS`:
//!
//! - `/render`: each target's path pattern (or `seriesByTag(...)` call) is fetched from the
//!   local store and sent as is to every peer's `/render/?format=pickle&local=1&noCache=1`,
//!   all peers at once; the answers are merged by series name with `_merge_results`'
//!   `REMOTE_STORE_MERGE_RESULTS = True` rule ([`merge_results`]);
//! - `/metrics/find`: the local nodes and every peer's `/metrics/find/?local=1&format=pickle`,
//!   a path found as a branch anywhere is a branch, as a leaf anywhere a leaf;
//! - a peer that fails (connect, timeout, a status other than 200, an answer that does not
//!   decode) is logged, left out of that answer, and not asked again for `retry_delay`
//!   (`REMOTE_RETRY_DELAY`, 60 s); a fetch is tried `max_fetch_retries` times
//!   (`MAX_FETCH_RETRIES`, 2), all within `fetch_timeout` (`FETCH_TIMEOUT`, 6 s); a find
//!   within `find_timeout` (`FIND_TIMEOUT`, 3 s). A failing peer never fails the request;
//! - requests with `local=1` (what peers send) read the local backend only
//!   ([`crate::http::Backend::local_part`]), so nodes that list each other never loop.

mod carbonlink;
mod client;
mod remote;

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;
use std::time::{Duration, Instant};

use store::index::{Node, TagIndex};

pub use carbonlink::{CarbonLinkBackend, CarbonLinkConfig, CarbonLinkPool};
pub use remote::RemoteNode;

use crate::error::Result;
use crate::eval::{DataSource, Fetched, Query};
use crate::http::Backend;

/// The cluster settings (graphite-web's names in parentheses).
#[derive(Clone, Debug)]
pub struct ClusterConfig {
    /// The peers, `host:port[/prefix][?params]` (`CLUSTER_SERVERS`).
    pub servers: Vec<String>,
    /// How long a find may take (`FIND_TIMEOUT`, default 3 s).
    pub find_timeout: Duration,
    /// How long a fetch may take, retries included (`FETCH_TIMEOUT`, default 6 s).
    pub fetch_timeout: Duration,
    /// Attempts per fetch (`MAX_FETCH_RETRIES`, default 2).
    pub max_fetch_retries: u32,
    /// How long a failed peer is left out (`REMOTE_RETRY_DELAY`, default 60 s).
    pub retry_delay: Duration,
    /// The largest answer read from a peer (ours; default 256 MiB).
    pub max_response_bytes: usize,
}

impl Default for ClusterConfig {
    fn default() -> ClusterConfig {
        ClusterConfig {
            servers: Vec::new(),
            find_timeout: Duration::from_secs(3),
            fetch_timeout: Duration::from_secs(6),
            max_fetch_retries: 2,
            retry_delay: Duration::from_secs(60),
            max_response_bytes: 256 << 20,
        }
    }
}

/// The local backend and its peers (see the module docs).
pub struct ClusterBackend {
    local: Arc<dyn Backend>,
    nodes: Vec<RemoteNode>,
    config: ClusterConfig,
}

impl ClusterBackend {
    /// `local` federated with `config.servers`.
    ///
    /// # Errors
    ///
    /// A server entry that does not parse.
    pub fn new(
        local: Arc<dyn Backend>,
        config: ClusterConfig,
    ) -> std::result::Result<Self, String> {
        let nodes = config
            .servers
            .iter()
            .map(|s| RemoteNode::parse(s))
            .collect::<std::result::Result<Vec<_>, _>>()?;
        Ok(ClusterBackend { local, nodes, config })
    }

    /// The peers, in the configured order.
    pub fn nodes(&self) -> &[RemoteNode] {
        &self.nodes
    }

    /// The peers not marked down.
    fn live_nodes(&self) -> impl Iterator<Item = &RemoteNode> {
        self.nodes.iter().filter(|n| !n.is_down(self.config.retry_delay))
    }

    /// Runs `ask` on every live peer at once (one thread each, all ending by the deadline
    /// `ask` is given), and returns the answers of those that succeeded, in the configured
    /// order; failures are logged.
    fn ask_all<T: Send>(
        &self,
        what: &str,
        ask: impl Fn(&RemoteNode) -> std::result::Result<T, String> + Sync,
    ) -> Vec<T> {
        let live: Vec<&RemoteNode> = self.live_nodes().collect();
        if live.is_empty() {
            return Vec::new();
        }
        let results: Vec<std::result::Result<T, String>> = std::thread::scope(|scope| {
            let handles: Vec<_> = live.iter().map(|node| scope.spawn(|| ask(node))).collect();
            handles
                .into_iter()
                .map(|h| h.join().unwrap_or_else(|_| Err("peer request panicked".into())))
                .collect()
        });
        let mut out = Vec::with_capacity(results.len());
        for (node, r) in live.iter().zip(results) {
            match r {
                Ok(v) => out.push(v),
                Err(e) => {
                    tracing::warn!(peer = node.host(), error = %e, "{what} from a cluster peer failed; it is marked down");
                }
            }
        }
        out
    }

    /// The local fetch of a query (find, then fetch each name).
    fn local_fetch(
        &self,
        query: Query<'_>,
        from: i64,
        until: i64,
        now: i64,
    ) -> Result<Vec<(String, Fetched)>> {
        if let Some(found) = self.local.fetch_query(query, from, until, now)? {
            return Ok(found);
        }
        let names = match query {
            Query::Glob(p) => self.local.find_leaves(p)?,
            Query::Tagged { exprs, .. } => self.local.find_tagged(exprs)?,
        };
        let mut out = Vec::with_capacity(names.len());
        for name in names {
            if let Some(f) = self.local.fetch(&name, from, until, now)? {
                out.push((name, f));
            }
        }
        Ok(out)
    }
}

/// graphite-web's `_merge_results` with `REMOTE_STORE_MERGE_RESULTS = True` (its default),
/// over `(name, series)` in the order they arrive:
///
/// - the first series of a name is kept ("known");
/// - a later one of the same name, when the known one has nulls and the later one is not
///   empty: of the same length, it fills the known one's nulls where it has values; of
///   another length, it replaces the known one, and (a quirk of the code: the candidate's
///   nulls are not counted in this mode) no later series changes that name again;
/// - the result is sorted by name.
///
/// graphite-web takes the answers in the order its worker threads finish; we take the local
/// one first, then the peers in their configured order.
pub fn merge_results(
    results: impl IntoIterator<Item = (String, Fetched)>,
) -> Vec<(String, Fetched)> {
    let mut list: BTreeMap<String, Fetched> = BTreeMap::new();
    let mut best_nones: HashMap<String, usize> = HashMap::new();
    for (name, series) in results {
        let Some(known) = list.get_mut(&name) else {
            list.insert(name, series);
            continue;
        };
        let known_nones = *best_nones
            .entry(name.clone())
            .or_insert_with(|| known.values.iter().filter(|v| v.is_none()).count());
        if known_nones > 0 && !series.values.is_empty() {
            if series.values.len() == known.values.len() {
                let mut nones = known_nones;
                for (k, c) in known.values.iter_mut().zip(&series.values) {
                    if k.is_none() && c.is_some() {
                        *k = *c;
                        nones -= 1;
                    }
                }
                best_nones.insert(name, nones);
            } else {
                best_nones.insert(name, 0);
                *known = series;
            }
        }
    }
    list.into_iter().collect()
}

impl DataSource for ClusterBackend {
    fn find_leaves(&self, pattern: &str) -> Result<Vec<String>> {
        Ok(self.find_nodes(pattern)?.into_iter().filter(|n| n.is_leaf).map(|n| n.path).collect())
    }

    fn find_tagged(&self, exprs: &[String]) -> Result<Vec<String>> {
        self.local.find_tagged(exprs)
    }

    fn fetch(&self, name: &str, from: i64, until: i64, now: i64) -> Result<Option<Fetched>> {
        let found = self.fetch_query(Query::Glob(name), from, until, now)?.unwrap_or_default();
        Ok(found.into_iter().find(|(n, _)| n == name).map(|(_, f)| f))
    }

    fn fetch_query(
        &self,
        query: Query<'_>,
        from: i64,
        until: i64,
        now: i64,
    ) -> Result<Option<Vec<(String, Fetched)>>> {
        let target = match query {
            Query::Glob(p) => p,
            Query::Tagged { expression, .. } => expression,
        };
        let deadline = Instant::now() + self.config.fetch_timeout;
        let (local, remote) = std::thread::scope(|scope| {
            let remote = scope.spawn(|| {
                self.ask_all("a fetch", |node| {
                    node.fetch(
                        &[target],
                        (from, until, now),
                        self.config.max_fetch_retries,
                        deadline,
                        self.config.max_response_bytes,
                    )
                })
            });
            let local = self.local_fetch(query, from, until, now);
            (local, remote.join().unwrap_or_default())
        });
        let local = local?;
        let all =
            local.into_iter().chain(remote.into_iter().flatten().map(|s| (s.name, s.fetched)));
        Ok(Some(merge_results(all)))
    }
}

impl Backend for ClusterBackend {
    fn find_nodes(&self, pattern: &str) -> Result<Vec<Node>> {
        let deadline = Instant::now() + self.config.find_timeout;
        let (local, remote) = std::thread::scope(|scope| {
            let remote = scope.spawn(|| {
                self.ask_all("a find", |node| {
                    node.find(pattern, deadline, self.config.max_response_bytes)
                })
            });
            (self.local.find_nodes(pattern), remote.join().unwrap_or_default())
        });
        let mut merged: BTreeMap<String, (bool, bool)> = BTreeMap::new();
        for n in local? {
            let e = merged.entry(n.path).or_default();
            e.0 |= n.is_leaf;
            e.1 |= n.is_branch;
        }
        for n in remote.into_iter().flatten() {
            let e = merged.entry(n.path).or_default();
            if n.is_leaf {
                e.0 = true;
            } else {
                e.1 = true;
            }
        }
        Ok(merged
            .into_iter()
            .map(|(path, (is_leaf, is_branch))| Node { path, is_leaf, is_branch })
            .collect())
    }

    fn tag_index(&self) -> &TagIndex {
        self.local.tag_index()
    }

    fn leaf_names(&self) -> Vec<String> {
        self.local.leaf_names()
    }

    fn intervals(&self, name: &str) -> Vec<(f64, f64)> {
        self.local.intervals(name)
    }

    fn local_part(&self) -> Option<&dyn Backend> {
        Some(self.local.local_part().unwrap_or(&*self.local))
    }

    fn get_metadata(&self, name: &str, key: &str) -> std::result::Result<String, String> {
        self.local.get_metadata(name, key)
    }

    fn set_metadata(
        &self,
        name: &str,
        key: &str,
        value: &str,
    ) -> std::result::Result<String, String> {
        self.local.set_metadata(name, key, value)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn f(values: &[Option<f64>]) -> Fetched {
        Fetched { start: 0, end: 60 * values.len() as i64, step: 60, values: values.to_vec() }
    }

    #[test]
    fn same_length_fills_the_known_nulls() {
        let merged = merge_results([
            ("a".to_string(), f(&[Some(1.0), None, None, Some(4.0)])),
            ("a".to_string(), f(&[Some(9.0), Some(2.0), None, None])),
            ("a".to_string(), f(&[None, None, Some(3.0), None])),
        ]);
        assert_eq!(merged, vec![("a".into(), f(&[Some(1.0), Some(2.0), Some(3.0), Some(4.0)]))]);
    }

    #[test]
    fn a_complete_known_series_is_kept() {
        let merged = merge_results([
            ("a".to_string(), f(&[Some(1.0), Some(2.0)])),
            ("a".to_string(), f(&[Some(5.0), Some(6.0)])),
        ]);
        assert_eq!(merged[0].1, f(&[Some(1.0), Some(2.0)]));
    }

    #[test]
    fn another_length_replaces_and_then_sticks() {
        let merged = merge_results([
            ("a".to_string(), f(&[Some(1.0), None])),
            ("a".to_string(), f(&[None, None, Some(3.0)])),
            ("a".to_string(), f(&[Some(7.0), Some(7.0), Some(7.0)])),
        ]);
        assert_eq!(merged[0].1, f(&[None, None, Some(3.0)]));
    }

    #[test]
    fn an_empty_candidate_changes_nothing_and_names_sort() {
        let merged = merge_results([
            ("b".to_string(), f(&[None])),
            ("b".to_string(), f(&[])),
            ("a".to_string(), f(&[Some(1.0)])),
        ]);
        let names: Vec<&str> = merged.iter().map(|(n, _)| n.as_str()).collect();
        assert_eq!(names, ["a", "b"]);
        assert_eq!(merged[1].1, f(&[None]));
    }
}
