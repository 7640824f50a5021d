//! CarbonLink reads with several cache nodes (graphite/carbonlink.py,
//! graphite/readers/utils.py `merge_with_carbonlink`): when the Whisper files are written by
//! several carbon-caches (ours or carbon's) behind a consistent-hashing relay, the points not
//! yet on disk sit in the cache of the node the ring names for the metric, so the read side
//! asks that node and merges what it holds into what it read from the file.
//!
//! As graphite-web: the ring is carbon's `ConsistentHashRing` over `(server, instance)` with
//! `CARBONLINK_HASHING_TYPE` (carbon_ch or fnv1a_ch), a metric goes to the ring's first node
//! (REPLICATION_FACTOR 1), a metric under `carbon.` (carbon's own metrics, each cache has
//! its own) is asked of every node and the answers united; a node that fails is logged and the
//! file's values stand. Connections are kept per node and reused.
//!
//! Differences: tagged series (`name;tag=value`) are not looked up (their file names are
//! hashed); the node of a metric is always the ring's first (graphite-web picks at random
//! among the replicas when REPLICATION_FACTOR > 1, and its `is_available` test is inverted so
//! it never skips a failed node; we skip a node for `retry_delay` after a failure).

use std::collections::HashMap;
use std::io::{Read, Write};
use std::net::{TcpStream, ToSocketAddrs};
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use carbon_proto::cache_query::{MAX_RESPONSE_BYTES, Request, Response};
use carbon_proto::pickle::encode_frame;
use carbon_proto::ring::{ConsistentHashRing, ConsistentHashRingBuilder, Destination, HashType};
use store::index::{Node, TagIndex};
use whisper::AggregationMethod;

use crate::error::Result;
use crate::eval::{DataSource, Fetched};
use crate::http::Backend;

/// The CarbonLink settings (graphite-web's names in parentheses).
#[derive(Clone, Debug)]
pub struct CarbonLinkConfig {
    /// The cache nodes, `host:port:instance` (`CARBONLINK_HOSTS`).
    pub hosts: Vec<Destination>,
    /// The ring's hash (`CARBONLINK_HASHING_TYPE`, default carbon_ch).
    pub hash_type: HashType,
    /// Connect and read timeout (`CARBONLINK_TIMEOUT`, default 1 s).
    pub timeout: Duration,
    /// How long a failed node is left out (`CARBONLINK_RETRY_DELAY`, default 15 s).
    pub retry_delay: Duration,
    /// Metrics under this prefix are asked of every node (`CARBON_METRIC_PREFIX`, `carbon`).
    pub carbon_prefix: String,
}

impl CarbonLinkConfig {
    /// Settings for `hosts` (`host:port:instance,...`) with graphite-web's defaults.
    ///
    /// # Errors
    ///
    /// A host that does not parse.
    pub fn parse(hosts: &str, hash_type: HashType) -> std::result::Result<Self, String> {
        let hosts = hosts
            .split(',')
            .map(str::trim)
            .filter(|h| !h.is_empty())
            .map(|h| Destination::parse(h).map_err(|e| e.to_string()))
            .collect::<std::result::Result<Vec<_>, _>>()?;
        Ok(CarbonLinkConfig {
            hosts,
            hash_type,
            timeout: Duration::from_secs(1),
            retry_delay: Duration::from_secs(15),
            carbon_prefix: "carbon".into(),
        })
    }
}

/// The cache nodes and their ring.
pub struct CarbonLinkPool {
    ring: ConsistentHashRing,
    config: CarbonLinkConfig,
    /// Idle connections per node (index in `config.hosts`).
    idle: Vec<Mutex<Vec<TcpStream>>>,
    last_failure: Vec<Mutex<Option<Instant>>>,
}

impl CarbonLinkPool {
    /// The pool over `config.hosts`.
    ///
    /// # Errors
    ///
    /// No host, or two with the same host and instance.
    pub fn new(config: CarbonLinkConfig) -> std::result::Result<Self, String> {
        let ring = ConsistentHashRingBuilder::new()
            .hash_type(config.hash_type)
            .build(config.hosts.iter().cloned())
            .map_err(|e| e.to_string())?;
        let n = config.hosts.len();
        Ok(CarbonLinkPool {
            ring,
            idle: (0..n).map(|_| Mutex::new(Vec::new())).collect(),
            last_failure: (0..n).map(|_| Mutex::new(None)).collect(),
            config,
        })
    }

    /// The node the ring names for `metric` (`select_host`).
    pub fn select_host(&self, metric: &str) -> &Destination {
        self.ring.get_node(metric)
    }

    fn index_of(&self, d: &Destination) -> Option<usize> {
        self.config.hosts.iter().position(|h| h == d)
    }

    /// The cached points of `metric` (`CarbonLink().query`): from its node, or from every node
    /// for carbon's own metrics. A node that fails gives nothing.
    pub fn query(&self, metric: &str) -> Vec<(f64, f64)> {
        let nodes: Vec<usize> = if metric.starts_with(&self.config.carbon_prefix) {
            (0..self.config.hosts.len()).collect()
        } else {
            self.index_of(self.select_host(metric)).into_iter().collect()
        };
        let mut points: Vec<(f64, f64)> = Vec::new();
        for i in nodes {
            if self.is_down(i) {
                continue;
            }
            match self.ask(i, metric) {
                Ok(p) => points.extend(p),
                Err(e) => {
                    if let Some(t) = self.last_failure.get(i)
                        && let Ok(mut t) = t.lock()
                    {
                        *t = Some(Instant::now());
                    }
                    let host =
                        self.config.hosts.get(i).map(|h| format!("{}:{}", h.host(), h.port()));
                    tracing::warn!(?host, metric, error = %e, "CarbonLink query failed");
                }
            }
        }
        points
    }

    fn is_down(&self, i: usize) -> bool {
        self.last_failure
            .get(i)
            .and_then(|t| t.lock().ok())
            .is_some_and(|t| t.is_some_and(|t| t.elapsed() < self.config.retry_delay))
    }

    fn ask(&self, i: usize, metric: &str) -> std::result::Result<Vec<(f64, f64)>, String> {
        let dest = self.config.hosts.get(i).ok_or("no such node")?;
        let pooled = self.idle.get(i).and_then(|p| p.lock().ok()).and_then(|mut p| p.pop());
        let mut conn = match pooled {
            Some(c) => c,
            None => {
                let addr = (dest.host(), dest.port())
                    .to_socket_addrs()
                    .map_err(|e| e.to_string())?
                    .next()
                    .ok_or("no address")?;
                let c = TcpStream::connect_timeout(&addr, self.config.timeout)
                    .map_err(|e| e.to_string())?;
                c.set_read_timeout(Some(self.config.timeout)).map_err(|e| e.to_string())?;
                c.set_write_timeout(Some(self.config.timeout)).map_err(|e| e.to_string())?;
                let _ = c.set_nodelay(true);
                c
            }
        };
        let mut payload = Vec::new();
        Request::CacheQuery { metric: metric.to_string() }.encode(&mut payload);
        let mut frame = Vec::with_capacity(payload.len() + 4);
        encode_frame(&mut frame, &payload).map_err(|e| e.to_string())?;
        conn.write_all(&frame).map_err(|e| e.to_string())?;
        let mut len = [0u8; 4];
        conn.read_exact(&mut len).map_err(|e| e.to_string())?;
        let len = u32::from_be_bytes(len) as usize;
        if len > MAX_RESPONSE_BYTES {
            return Err(format!("a {len}-byte answer is over the limit"));
        }
        let mut body = vec![0u8; len];
        conn.read_exact(&mut body).map_err(|e| e.to_string())?;
        let response = Response::decode(&body).map_err(|e| e.to_string())?;
        if let Some(p) = self.idle.get(i).and_then(|p| p.lock().ok()).as_mut() {
            p.push(conn);
        }
        match response {
            Response::Datapoints(points) => {
                Ok(points.into_iter().map(|d| (d.timestamp, d.value)).collect())
            }
            Response::Error { message } => Err(message),
            _ => Err("unexpected answer to cache-query".into()),
        }
    }
}

/// graphite-web's `merge_with_cache`: the cached points reduced to one per finest interval
/// (the last wins), aggregated to the fetched step with the file's method when it is
/// coarser, then written over the fetched values they fall in.
pub(crate) fn merge_with_cache(
    fetched: &mut Fetched,
    cached: &[(f64, f64)],
    raw_step: i64,
    method: AggregationMethod,
) {
    /// Groups by `t - t % step`, in first-seen order (a Python dict).
    fn group(points: &[(i64, f64)], step: i64) -> Vec<(i64, Vec<f64>)> {
        let mut index: HashMap<i64, usize> = HashMap::new();
        let mut out: Vec<(i64, Vec<f64>)> = Vec::new();
        for &(t, v) in points {
            let interval = t - t.rem_euclid(step);
            match index.get(&interval).and_then(|&i| out.get_mut(i)) {
                Some(g) => g.1.push(v),
                None => {
                    index.insert(interval, out.len());
                    out.push((interval, vec![v]));
                }
            }
        }
        out
    }
    if cached.is_empty() || fetched.step <= 0 {
        return;
    }
    let mut points: Vec<(i64, f64)> =
        cached.iter().filter(|(t, _)| t.is_finite()).map(|&(t, v)| (t as i64, v)).collect();
    if raw_step > 1 {
        points = group(&points, raw_step)
            .into_iter()
            .filter_map(|(i, vs)| vs.last().map(|v| (i, *v)))
            .collect();
    }
    if fetched.step != raw_step {
        points = group(&points, fetched.step)
            .into_iter()
            .filter_map(|(i, vs)| {
                let slots: Vec<Option<f64>> = vs.into_iter().map(Some).collect();
                method.aggregate(&slots).map(|v| (i, v))
            })
            .collect();
    }
    for (interval, value) in points {
        let i = (interval - fetched.start).div_euclid(fetched.step);
        if let Some(slot) = usize::try_from(i).ok().and_then(|i| fetched.values.get_mut(i)) {
            *slot = Some(value);
        }
    }
}

/// A backend whose reads also ask the cache node the ring names (see the module docs).
pub struct CarbonLinkBackend {
    inner: Arc<dyn Backend>,
    data_dir: PathBuf,
    pool: CarbonLinkPool,
}

impl CarbonLinkBackend {
    /// `inner` (the store over `data_dir`) with `pool`'s cache nodes merged into its reads.
    pub fn new(
        inner: Arc<dyn Backend>,
        data_dir: impl Into<PathBuf>,
        pool: CarbonLinkPool,
    ) -> Self {
        CarbonLinkBackend { inner, data_dir: data_dir.into(), pool }
    }

    /// The pool.
    pub fn pool(&self) -> &CarbonLinkPool {
        &self.pool
    }

    fn whisper_path(&self, name: &str) -> Option<PathBuf> {
        if name.contains(';') || name.split('.').any(|p| p.is_empty() || p == "..") {
            return None;
        }
        let mut path = self.data_dir.clone();
        for part in name.split('.') {
            path.push(part);
        }
        path.set_extension("wsp");
        Some(path)
    }
}

impl DataSource for CarbonLinkBackend {
    fn find_leaves(&self, pattern: &str) -> Result<Vec<String>> {
        self.inner.find_leaves(pattern)
    }

    fn find_tagged(&self, exprs: &[String]) -> Result<Vec<String>> {
        self.inner.find_tagged(exprs)
    }

    fn fetch(&self, name: &str, from: i64, until: i64, now: i64) -> Result<Option<Fetched>> {
        let Some(mut fetched) = self.inner.fetch(name, from, until, now)? else {
            return Ok(None);
        };
        let Some(header) = self.whisper_path(name).and_then(|p| whisper::info(p).ok()) else {
            return Ok(Some(fetched));
        };
        let raw_step = header.archives().first().map_or(1, |a| i64::from(a.seconds_per_point()));
        let cached = self.pool.query(name);
        merge_with_cache(&mut fetched, &cached, raw_step, header.aggregation_method());
        Ok(Some(fetched))
    }

    // `fetch_query` stays the default (`None`), whatever `inner` answers: every name goes
    // through `fetch` above, so its points are merged with the cache.
}

impl Backend for CarbonLinkBackend {
    fn find_nodes(&self, pattern: &str) -> Result<Vec<Node>> {
        self.inner.find_nodes(pattern)
    }

    fn tag_index(&self) -> &TagIndex {
        self.inner.tag_index()
    }

    fn leaf_names(&self) -> Vec<String> {
        self.inner.leaf_names()
    }

    fn intervals(&self, name: &str) -> Vec<(f64, f64)> {
        self.inner.intervals(name)
    }

    fn get_metadata(&self, name: &str, key: &str) -> std::result::Result<String, String> {
        self.inner.get_metadata(name, key)
    }

    fn set_metadata(
        &self,
        name: &str,
        key: &str,
        value: &str,
    ) -> std::result::Result<String, String> {
        self.inner.set_metadata(name, key, value)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn merges_as_graphite_web() {
        let mut f = Fetched { start: 600, end: 900, step: 60, values: vec![None; 5] };
        // Raw step 10: 610 and 615 fall in the 610 interval, the last wins; then averaged
        // into 60 s slots: (610: 2, 620: 4) -> 600: 3.
        merge_with_cache(
            &mut f,
            &[(610.0, 1.0), (615.0, 2.0), (620.0, 4.0), (780.0, 7.0), (100.0, 9.0), (2000.0, 1.0)],
            10,
            AggregationMethod::Average,
        );
        assert_eq!(f.values, vec![Some(3.0), None, None, Some(7.0), None]);
    }

    #[test]
    fn picks_the_rings_node() {
        let config =
            CarbonLinkConfig::parse("127.0.0.1:1:a, 127.0.0.1:2:b", HashType::CarbonCh).unwrap();
        let pool = CarbonLinkPool::new(config).unwrap();
        let ring = ConsistentHashRingBuilder::new()
            .build([
                Destination::parse("127.0.0.1:1:a").unwrap(),
                Destination::parse("127.0.0.1:2:b").unwrap(),
            ])
            .unwrap();
        for m in ["a.b.c", "servers.web1.cpu", "x"] {
            assert_eq!(pool.select_host(m), ring.get_node(m));
        }
        // Nothing listens there: the query gives nothing and marks the node down.
        assert!(pool.query("a.b.c").is_empty());
    }
}
