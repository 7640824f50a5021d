//! Where a rule's series come from: in-process through the render crate (no HTTP hop), or a
//! remote graphite-web / our own API through `/render?format=json`.
//!
//! A query answers one of three things and they stay distinct, because each has its own
//! policy: an error (`Err`: the target failed, the server is down, the body is not Graphite's
//! JSON), no data (`Ok` with no series, or series of nulls), or series. A series the engine saw
//! before and that is absent from an `Ok` answer is "missing" — the engine decides that, not
//! the source.

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde::Deserialize;

use crate::rules::SourceSpec;

/// Most bytes read from a remote render answer (64 MiB): a runaway target must not eat memory.
pub const MAX_RENDER_BODY_BYTES: u64 = 64 << 20;

/// One series as the engine judges it.
#[derive(Clone, Debug, PartialEq)]
pub struct SeriesData {
    /// The series name (`target` in Graphite's JSON).
    pub name: String,
    /// Graphite tags (`name` is the path for untagged series).
    pub tags: BTreeMap<String, String>,
    /// Timestamp of the first value.
    pub start: i64,
    /// Seconds between values (> 0).
    pub step: i64,
    /// The values; `None` is null.
    pub values: Vec<Option<f64>>,
}

impl SeriesData {
    /// The timestamp of the newest non-null value.
    pub fn newest(&self) -> Option<i64> {
        let i = self.values.iter().rposition(|v| v.is_some_and(|v| !v.is_nan()))?;
        Some(self.start + i as i64 * self.step)
    }

    /// The values whose timestamps fall in `(from, until]`.
    pub fn window(&self, from: i64, until: i64) -> &[Option<f64>] {
        let step = self.step.max(1);
        let first = (from - self.start).div_euclid(step) + 1;
        let last = (until - self.start).div_euclid(step);
        let len = self.values.len() as i64;
        let (a, b) = (first.clamp(0, len), (last + 1).clamp(0, len));
        if a >= b {
            return &[];
        }
        self.values.get(a as usize..b as usize).unwrap_or(&[])
    }
}

/// Why a query failed.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[non_exhaustive]
pub enum SourceError {
    /// The target is invalid or its evaluation failed (render's message).
    #[error("target failed: {0}")]
    Render(String),
    /// The rule asks for the local store, and this engine has none (the standalone binary).
    #[error("this engine has no local data source (set `source` to a URL)")]
    NoLocal,
    /// The remote server could not be reached or timed out.
    #[error("{url}: {detail}")]
    Transport {
        /// The request URL.
        url: String,
        /// What failed.
        detail: String,
    },
    /// The remote server answered with an error status.
    #[error("{url}: HTTP {status}")]
    Status {
        /// The request URL.
        url: String,
        /// The status code.
        status: u16,
    },
    /// The remote answer is not Graphite's render JSON.
    #[error("{url}: not a render JSON answer: {detail}")]
    BadResponse {
        /// The request URL.
        url: String,
        /// What the parser said.
        detail: String,
    },
}

/// Something that evaluates render targets over a time range.
pub trait Source: Send + Sync {
    /// The series `target` yields over `(from, until]`, `now` being the evaluation time.
    ///
    /// # Errors
    ///
    /// [`SourceError`]: the query failed (as opposed to returning nothing).
    fn query(
        &self,
        target: &str,
        from: i64,
        until: i64,
        now: i64,
    ) -> Result<Vec<SeriesData>, SourceError>;
}

/// Evaluates targets in-process with the render crate over any [`render::DataSource`] (the
/// server's `store::Store`, or a `render::MemorySource`).
pub struct LocalSource {
    data: Arc<dyn render::DataSource>,
    /// Limits per query (series, points); the deadline is set per query from `timeout`.
    limits: render::Limits,
    timeout: Duration,
}

impl LocalSource {
    /// A source over `data` with render's default limits and a 30 s deadline per query.
    pub fn new(data: Arc<dyn render::DataSource>) -> LocalSource {
        LocalSource { data, limits: render::Limits::default(), timeout: Duration::from_secs(30) }
    }
}

impl Source for LocalSource {
    fn query(
        &self,
        target: &str,
        from: i64,
        until: i64,
        now: i64,
    ) -> Result<Vec<SeriesData>, SourceError> {
        let expr = render::parse::parse(target).map_err(|e| SourceError::Render(e.to_string()))?;
        let limits =
            render::Limits { deadline: Some(Instant::now() + self.timeout), ..self.limits.clone() };
        let usage = render::UsageCell::default();
        let ctx = render::Context::new(&*self.data, &limits, &usage, from, until, now);
        let series = ctx.eval_series(&expr).map_err(|e| SourceError::Render(e.to_string()))?;
        Ok(series
            .into_iter()
            .map(|s| {
                let step = s.read_step();
                let values = if s.values_per_point <= 1 { s.values } else { s.consolidated() };
                SeriesData { values, name: s.name, tags: s.tags, start: s.start, step }
            })
            .collect())
    }
}

/// Queries a remote graphite-web (or our API): `GET <base>/render?target=..&format=json&
/// from=..&until=..` with absolute epoch seconds, so the remote's clock does not matter.
pub struct RemoteSource {
    base: String,
    agent: ureq::Agent,
}

impl RemoteSource {
    /// A source for the server at `base` (no trailing slash needed), each request bounded by
    /// `timeout`.
    pub fn new(base: &str, timeout: Duration) -> RemoteSource {
        let agent = ureq::Agent::config_builder()
            .timeout_global(Some(timeout))
            .http_status_as_error(false)
            .user_agent("graphite-rs-alert")
            .build()
            .new_agent();
        RemoteSource { base: base.trim_end_matches('/').to_owned(), agent }
    }

    /// The render URL for a query.
    pub fn url(&self, target: &str, from: i64, until: i64) -> String {
        let query = form_urlencoded::Serializer::new(String::new())
            .append_pair("target", target)
            .append_pair("format", "json")
            .append_pair("from", &from.to_string())
            .append_pair("until", &until.to_string())
            .finish();
        format!("{}/render?{query}", self.base)
    }
}

impl Source for RemoteSource {
    fn query(
        &self,
        target: &str,
        from: i64,
        until: i64,
        _now: i64,
    ) -> Result<Vec<SeriesData>, SourceError> {
        let url = self.url(target, from, until);
        let mut resp = self
            .agent
            .get(&url)
            .call()
            .map_err(|e| SourceError::Transport { url: url.clone(), detail: e.to_string() })?;
        let status = resp.status().as_u16();
        if status != 200 {
            return Err(SourceError::Status { url, status });
        }
        let body = resp
            .body_mut()
            .with_config()
            .limit(MAX_RENDER_BODY_BYTES)
            .read_to_vec()
            .map_err(|e| SourceError::Transport { url: url.clone(), detail: e.to_string() })?;
        parse_render_json(&body).map_err(|detail| SourceError::BadResponse { url, detail })
    }
}

#[derive(Deserialize)]
struct JsonSeries {
    target: String,
    datapoints: Vec<(Option<serde_json::Value>, i64)>,
    #[serde(default)]
    tags: BTreeMap<String, serde_json::Value>,
}

/// Parses graphite-web's `format=json` answer: `[{"target", "tags", "datapoints": [[v, t]..]}]`.
/// The step is the distance between the first two timestamps (60 for a single point);
/// timestamps that do not advance by that step are placed by their own time.
///
/// # Errors
///
/// The body is not that shape (the message is serde_json's).
pub fn parse_render_json(body: &[u8]) -> Result<Vec<SeriesData>, String> {
    let raw: Vec<JsonSeries> = serde_json::from_slice(body).map_err(|e| e.to_string())?;
    Ok(raw
        .into_iter()
        .map(|s| {
            let start = s.datapoints.first().map_or(0, |p| p.1);
            let step = match s.datapoints.get(1) {
                Some(p) if p.1 > start => p.1 - start,
                _ => 60,
            };
            let mut values: Vec<Option<f64>> = Vec::with_capacity(s.datapoints.len());
            for (v, t) in &s.datapoints {
                let i = (t - start).div_euclid(step);
                // Bounded: a hostile timestamp cannot make us allocate more than the body had
                // points, times a small slack.
                if i < 0 || i as usize > 4 * s.datapoints.len() + 16 {
                    continue;
                }
                let i = i as usize;
                if values.len() <= i {
                    values.resize(i + 1, None);
                }
                let v = v.as_ref().and_then(serde_json::Value::as_f64);
                if let Some(slot) = values.get_mut(i) {
                    *slot = v;
                }
            }
            let mut tags: BTreeMap<String, String> = s
                .tags
                .into_iter()
                .map(|(k, v)| {
                    let v = match v {
                        serde_json::Value::String(s) => s,
                        other => other.to_string(),
                    };
                    (k, v)
                })
                .collect();
            if tags.is_empty() {
                tags.insert("name".into(), s.target.clone());
            }
            SeriesData { name: s.target, tags, start, step, values }
        })
        .collect())
}

/// The sources an engine resolves rules' `source` against.
pub struct Sources {
    local: Option<Arc<dyn Source>>,
    /// When set, every rule reads from this one, whatever its `source` (tests, backtests).
    fixed: Option<Arc<dyn Source>>,
    /// Remote sources by (base URL, timeout), created on first use and kept for their
    /// connection pools.
    remote: Mutex<HashMap<(String, i64), Arc<dyn Source>>>,
}

impl Sources {
    /// Local rules read `data` through render; remote rules go over HTTP.
    pub fn local(data: Arc<dyn render::DataSource>) -> Sources {
        Sources::with_local(Arc::new(LocalSource::new(data)))
    }

    /// Local rules read `source`; remote rules go over HTTP.
    pub fn with_local(source: Arc<dyn Source>) -> Sources {
        Sources { local: Some(source), fixed: None, remote: Mutex::default() }
    }

    /// No local store (the standalone binary): local rules end in [`SourceError::NoLocal`].
    pub fn remote_only() -> Sources {
        Sources { local: None, fixed: None, remote: Mutex::default() }
    }

    /// Every rule reads `source`, whatever its `source` says.
    pub fn fixed(source: Arc<dyn Source>) -> Sources {
        Sources { local: None, fixed: Some(source), remote: Mutex::default() }
    }

    /// The source for a rule.
    pub fn get(
        &self,
        spec: &SourceSpec,
        timeout_secs: i64,
    ) -> Result<Arc<dyn Source>, SourceError> {
        if let Some(f) = &self.fixed {
            return Ok(f.clone());
        }
        match spec {
            SourceSpec::Local => self.local.clone().ok_or(SourceError::NoLocal),
            SourceSpec::Remote(url) => {
                // A poisoned lock only means another thread panicked while inserting; the map
                // is still a valid cache.
                let mut map = self.remote.lock().unwrap_or_else(|p| p.into_inner());
                let key = (url.clone(), timeout_secs);
                let timeout = Duration::from_secs(timeout_secs.max(1) as u64);
                Ok(map
                    .entry(key)
                    .or_insert_with(|| Arc::new(RemoteSource::new(url, timeout)))
                    .clone())
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_graphite_json() {
        let body =
            br#"[{"target":"a.b","tags":{"name":"a.b"},"datapoints":[[1.5,60],[null,120],[3,180]]},
                        {"target":"c;k=v","tags":{"name":"c","k":"v"},"datapoints":[]}]"#;
        let s = parse_render_json(body).unwrap();
        assert_eq!(s[0].values, vec![Some(1.5), None, Some(3.0)]);
        assert_eq!((s[0].start, s[0].step), (60, 60));
        assert_eq!(s[0].newest(), Some(180));
        assert_eq!(s[1].tags.get("k").map(String::as_str), Some("v"));
        assert!(parse_render_json(b"{\"error\": 1}").is_err());
        assert!(
            parse_render_json(b"[{\"target\":\"x\",\"datapoints\":[[1,0],[2,9999999999]]}]")
                .is_ok()
        );
    }

    #[test]
    fn windows_are_half_open() {
        let s = SeriesData {
            name: "x".into(),
            tags: BTreeMap::new(),
            start: 0,
            step: 60,
            values: (0..10).map(|i| Some(f64::from(i))).collect(),
        };
        assert_eq!(s.window(60, 180), &[Some(2.0), Some(3.0)]);
        assert_eq!(s.window(-1000, 0), &[Some(0.0)]);
        assert_eq!(s.window(600, 9000), &[] as &[Option<f64>]);
        assert_eq!(s.window(300, 200), &[] as &[Option<f64>]);
    }

    #[test]
    fn local_source_evaluates_functions() {
        let mut m = render::MemorySource::new();
        m.insert("a.x", 0, 60, vec![Some(1.0), Some(2.0), Some(3.0)]);
        m.insert("a.y", 0, 60, vec![Some(10.0), None, Some(30.0)]);
        let src = LocalSource::new(Arc::new(m));
        let s = src.query("sumSeries(a.*)", -1, 120, 180).unwrap();
        assert_eq!(s.len(), 1);
        assert_eq!(s[0].values, vec![Some(11.0), Some(2.0), Some(33.0)]);
        assert!(src.query("a.nothing", -1, 120, 180).unwrap().is_empty());
        assert!(matches!(src.query("nosuchfn(a.x)", 0, 120, 180), Err(SourceError::Render(_))));
    }

    proptest::proptest! {
        #[test]
        fn arbitrary_bodies_never_panic(body in proptest::collection::vec(proptest::num::u8::ANY, 0..200)) {
            let _ = parse_render_json(&body);
        }

        #[test]
        fn arbitrary_points_never_panic(
            pts in proptest::collection::vec((proptest::option::of(-1e9f64..1e9), -1_000_000i64..1_000_000), 0..20)
        ) {
            let dps: Vec<String> = pts.iter().map(|(v, t)| {
                format!("[{},{t}]", v.map_or("null".to_owned(), |v| v.to_string()))
            }).collect();
            let body = format!("[{{\"target\":\"x\",\"datapoints\":[{}]}}]", dps.join(","));
            let s = parse_render_json(body.as_bytes()).unwrap();
            proptest::prop_assert!(s[0].values.len() <= 4 * pts.len() + 17);
        }
    }
}
