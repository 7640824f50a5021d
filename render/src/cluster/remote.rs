//! One `CLUSTER_SERVERS` peer: graphite-web's `RemoteFinder` and `RemoteReader`
//! (graphite/finders/remote.py, graphite/readers/remote.py).

use std::sync::Mutex;
use std::time::{Duration, Instant};

use carbon_proto::pickle::{Unpickler, UnpicklerBuilder, ValueRef};

use super::client::{self, HttpResponse};
use crate::eval::Fetched;

/// The classes graphite-web's `SafeUnpickler` allows (graphite/util.py), read as the dicts of
/// their state. A 1.1 peer's `/metrics/find?format=pickle` holds `IntervalSet` and
/// `Interval` objects.
const SAFE_CLASSES: [(&str, &str); 6] = [
    ("graphite.intervals", "Interval"),
    ("graphite.intervals", "IntervalSet"),
    ("builtins", "object"),
    ("__builtin__", "object"),
    ("copy_reg", "_reconstructor"),
    ("collections", "deque"),
];

/// A node a peer found.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct FoundNode {
    pub(crate) path: String,
    pub(crate) is_leaf: bool,
}

/// A series a peer returned.
#[derive(Clone, Debug, PartialEq)]
pub(crate) struct RemoteSeries {
    pub(crate) name: String,
    pub(crate) path_expression: String,
    pub(crate) fetched: Fetched,
}

/// A peer, as `CLUSTER_SERVERS` names it: `host:port[/prefix][?params]` or
/// `http://host:port[/prefix][?params]`.
#[derive(Debug)]
pub struct RemoteNode {
    /// `host:port`.
    host: String,
    /// The URL path prefix (`/graphite`), without a trailing slash.
    prefix: String,
    /// The `?params` of the entry (the last value of each key wins, as `parse_qs` then
    /// `value[-1]`): `local` and `format` override what is sent.
    params: Vec<(String, String)>,
    /// When the peer last failed; it is skipped for `retry_delay` after (graphite-web's
    /// `last_failure` and `disabled`).
    last_failure: Mutex<Option<Instant>>,
}

impl RemoteNode {
    /// Parses a `CLUSTER_SERVERS` entry.
    ///
    /// # Errors
    ///
    /// `https://` (this client speaks plain HTTP only), or an entry without a host.
    pub fn parse(entry: &str) -> Result<RemoteNode, String> {
        let entry = entry.trim();
        if entry.starts_with("https://") {
            return Err(format!("{entry}: https peers are not supported (plain HTTP only)"));
        }
        let rest = entry.strip_prefix("http://").unwrap_or(entry);
        let (before_query, query) = match rest.split_once('?') {
            Some((a, q)) => (a, q),
            None => (rest, ""),
        };
        let (host, prefix) = match before_query.find('/') {
            Some(i) => (&before_query[..i], &before_query[i..]),
            None => (before_query, ""),
        };
        if host.is_empty() {
            return Err(format!("{entry}: no host"));
        }
        let host = if host.contains(':') && !host.ends_with(']') {
            host.to_string()
        } else {
            format!("{host}:80")
        };
        let mut params: Vec<(String, String)> = Vec::new();
        for (k, v) in form_urlencoded::parse(query.as_bytes()) {
            params.retain(|(key, _)| key != k.as_ref());
            params.push((k.into_owned(), v.into_owned()));
        }
        Ok(RemoteNode {
            host,
            prefix: prefix.trim_end_matches('/').to_string(),
            params,
            last_failure: Mutex::new(None),
        })
    }

    /// `host:port`.
    pub fn host(&self) -> &str {
        &self.host
    }

    fn param(&self, key: &str, default: &str) -> String {
        self.params
            .iter()
            .find(|(k, _)| k == key)
            .map_or_else(|| default.to_string(), |(_, v)| v.clone())
    }

    /// Whether the peer failed less than `retry_delay` ago (then it is not asked).
    pub fn is_down(&self, retry_delay: Duration) -> bool {
        self.last_failure
            .lock()
            .map(|t| t.is_some_and(|t| t.elapsed() < retry_delay))
            .unwrap_or(false)
    }

    /// Marks the peer failed now.
    pub(crate) fn fail(&self) {
        if let Ok(mut t) = self.last_failure.lock() {
            *t = Some(Instant::now());
        }
    }

    fn recovered(&self) {
        if let Ok(mut t) = self.last_failure.lock() {
            *t = None;
        }
    }

    /// graphite-web's `RemoteFinder.request`: a failure to connect or a status other than
    /// 200 marks the peer failed; a success clears the mark.
    fn request(
        &self,
        path: &str,
        fields: &[(&str, String)],
        deadline: Instant,
        max_body: usize,
    ) -> Result<HttpResponse, String> {
        let target = format!("{}{}?{}", self.prefix, path, client::urlencode(fields));
        match client::get(&self.host, &target, deadline, max_body) {
            Ok(r) if r.status == 200 => {
                self.recovered();
                Ok(r)
            }
            Ok(r) => {
                self.fail();
                Err(format!("error response {} from {}{target}", r.status, self.host))
            }
            Err(e) => {
                self.fail();
                Err(format!("error requesting {}{target}: {e}", self.host))
            }
        }
    }

    /// `/metrics/find/?local=1&format=pickle&query=...` (graphite-web's `find_nodes`).
    pub(crate) fn find(
        &self,
        pattern: &str,
        deadline: Instant,
        max_body: usize,
    ) -> Result<Vec<FoundNode>, String> {
        let fields = [
            ("local", self.param("local", "1")),
            ("format", self.param("format", "pickle")),
            ("query", pattern.to_string()),
        ];
        let response = self.request("/metrics/find/", &fields, deadline, max_body)?;
        let decoded = decode_find(&response).map_err(|e| {
            self.fail();
            format!("error decoding find response from {}: {e}", self.host)
        })?;
        Ok(decoded)
    }

    /// `/render/?format=pickle&local=1&noCache=1&from=..&until=..&target=..&now=..`
    /// (graphite-web's `RemoteReader.fetch_multi`), tried up to `attempts` times (its
    /// `MAX_FETCH_RETRIES`) while `deadline` allows.
    pub(crate) fn fetch(
        &self,
        targets: &[&str],
        (from, until, now): (i64, i64, i64),
        attempts: u32,
        deadline: Instant,
        max_body: usize,
    ) -> Result<Vec<RemoteSeries>, String> {
        let mut fields = vec![
            ("format", self.param("format", "pickle")),
            ("local", self.param("local", "1")),
            ("noCache", "1".to_string()),
            ("from", from.to_string()),
            ("until", until.to_string()),
        ];
        for t in targets {
            fields.push(("target", (*t).to_string()));
        }
        fields.push(("now", now.to_string()));
        let mut attempt = 1;
        let response = loop {
            match self.request("/render/", &fields, deadline, max_body) {
                Ok(r) => break r,
                Err(e) if attempt >= attempts.max(1) || Instant::now() >= deadline => {
                    return Err(e);
                }
                Err(e) => {
                    tracing::info!(peer = %self.host, attempt, error = %e, "peer fetch failed, retrying");
                    attempt += 1;
                }
            }
        };
        decode_render(&response).map_err(|e| {
            self.fail();
            format!("invalid render response from {}: {e}", self.host)
        })
    }
}

/// An unpickler sized to the payload: a pickle cannot push more values or memo entries than
/// it has bytes, so the HTTP body limit bounds it.
fn unpickler(len: usize) -> Unpickler {
    UnpicklerBuilder::new()
        .max_values(len.saturating_add(16))
        .max_memo(len.saturating_add(16))
        .allow_classes(SAFE_CLASSES)
        .build()
}

fn check_type(r: &HttpResponse) -> Result<(), String> {
    match r.content_type.as_deref() {
        Some(ct) if ct.starts_with("application/x-msgpack") => {
            Err("msgpack answers are not read (ask for format=pickle)".into())
        }
        _ => Ok(()),
    }
}

/// A pickled list answer, each item read by `each`; the first bad item fails the whole.
fn decode_list<T>(
    r: &HttpResponse,
    mut each: impl FnMut(ValueRef<'_>) -> Result<T, String>,
) -> Result<Vec<T>, String> {
    check_type(r)?;
    let mut u = unpickler(r.body.len());
    let root = u.loads_ref(&r.body).map_err(|e| e.to_string())?;
    let items = root.seq().ok_or("not a list")?;
    let mut out = Vec::with_capacity(items.len());
    for item in items {
        out.push(each(item)?);
    }
    Ok(out)
}

/// A find answer: a list of dicts with `path` (or 0.9's `metric_path`) and `is_leaf` (or
/// `isLeaf`); intervals are not used.
pub(crate) fn decode_find(r: &HttpResponse) -> Result<Vec<FoundNode>, String> {
    decode_list(r, |item| {
        let get = |a: &str, b: &str| item.get(a).filter(truthy).or_else(|| item.get(b));
        let path = get("path", "metric_path")
            .and_then(|p| p.as_str())
            .ok_or("a node without a path")?
            .to_string();
        let is_leaf = get("is_leaf", "isLeaf").is_some_and(|v| truthy(&v));
        Ok(FoundNode { path, is_leaf })
    })
}

/// Python truthiness of the plain values a node dict holds.
fn truthy(v: &ValueRef<'_>) -> bool {
    if v.is_none() {
        return false;
    }
    if let Some(b) = v.as_bool() {
        return b;
    }
    if let Some(i) = v.as_i64() {
        return i != 0;
    }
    if let Some(f) = v.as_f64() {
        return f != 0.0;
    }
    if let Some(s) = v.as_str() {
        return !s.is_empty();
    }
    v.seq().is_none_or(|s| s.len() > 0)
}

/// A render answer: a list of series dicts (`name`, `start`, `end`, `step`, `values`,
/// `pathExpression` defaulting to `name`), as graphite-web's reader takes them.
pub(crate) fn decode_render(r: &HttpResponse) -> Result<Vec<RemoteSeries>, String> {
    decode_list(r, |item| {
        let name = item.get("name").and_then(|v| v.as_str()).ok_or("a series without a name")?;
        let int = |key: &'static str| -> Result<i64, String> {
            let v = item.get(key).ok_or_else(|| format!("{name}: no {key}"))?;
            v.as_i64()
                .or_else(|| v.as_f64().filter(|f| f.is_finite()).map(|f| f as i64))
                .ok_or_else(|| format!("{name}: {key} is not a number"))
        };
        let (start, end, step) = (int("start")?, int("end")?, int("step")?);
        let values = item.get("values").and_then(|v| v.seq()).ok_or("values is not a list")?;
        let mut vals = Vec::with_capacity(values.len());
        for v in values {
            if v.is_none() {
                vals.push(None);
            } else {
                vals.push(Some(v.py_float().map_err(|e| format!("{name}: bad value: {e}"))?));
            }
        }
        let path_expression =
            item.get("pathExpression").and_then(|v| v.as_str()).unwrap_or(name).to_string();
        Ok(RemoteSeries {
            name: name.to_string(),
            path_expression,
            fetched: Fetched { start, end, step, values: vals },
        })
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn resp(body: &[u8]) -> HttpResponse {
        HttpResponse {
            status: 200,
            content_type: Some("application/pickle".into()),
            body: body.to_vec(),
        }
    }

    /// graphite-web 1.1.8's `pickle_nodes` on Python 3 (protocol 5): one branch and one leaf
    /// whose intervals are an `IntervalSet` of one `Interval`.
    const GRAPHITE_WEB_FIND: &[u8] = b"\x80\x05\x95\xda\x00\x00\x00\x00\x00\x00\x00]\x94(}\x94(\x8c\x04path\x94\x8c\x01a\x94\x8c\x07is_leaf\x94\x89u}\x94(h\x02\x8c\x03a.b\x94h\x04\x88\x8c\x09intervals\x94\x8c\x12graphite.intervals\x94\x8c\x0bIntervalSet\x94\x93\x94)\x81\x94}\x94(h\x07]\x94h\x08\x8c\x08Interval\x94\x93\x94)\x81\x94}\x94(\x8c\x05start\x94G?\xf0\x00\x00\x00\x00\x00\x00\x8c\x03end\x94G@\x00\x00\x00\x00\x00\x00\x00\x8c\x05tuple\x94G?\xf0\x00\x00\x00\x00\x00\x00G@\x00\x00\x00\x00\x00\x00\x00\x86\x94\x8c\x04size\x94G?\xf0\x00\x00\x00\x00\x00\x00ubah\x16G?\xf0\x00\x00\x00\x00\x00\x00ubue.";

    #[test]
    fn reads_graphite_webs_find_pickle() {
        let nodes = decode_find(&resp(GRAPHITE_WEB_FIND)).unwrap();
        assert_eq!(
            nodes,
            vec![
                FoundNode { path: "a".into(), is_leaf: false },
                FoundNode { path: "a.b".into(), is_leaf: true },
            ]
        );
    }

    #[test]
    fn other_classes_are_refused() {
        // pickle.dumps(os.system, protocol=2)-like: a GLOBAL of a module not allowed.
        let evil = b"\x80\x02cposix\nsystem\nq\x00.";
        assert!(decode_find(&resp(evil)).is_err());
        let evil = b"\x80\x05\x8c\x02os\x94\x8c\x06system\x94\x93\x94.";
        assert!(decode_find(&resp(evil)).is_err());
    }

    #[test]
    fn reads_our_own_render_pickle() {
        let mut s = crate::Series::new("a.b", 60, 240, 60, vec![Some(1.0), None, Some(3.5)]);
        s.path_expression = "a.*".into();
        let mut body = Vec::new();
        crate::format::write_pickle(&mut body, &[s]);
        let got = decode_render(&resp(&body)).unwrap();
        assert_eq!(
            got,
            vec![RemoteSeries {
                name: "a.b".into(),
                path_expression: "a.*".into(),
                fetched: Fetched {
                    start: 60,
                    end: 240,
                    step: 60,
                    values: vec![Some(1.0), None, Some(3.5)]
                },
            }]
        );
    }

    #[test]
    fn parses_cluster_server_entries() {
        let n = RemoteNode::parse("10.0.0.1:8080/graphite?format=pickle&local=0&local=1").unwrap();
        assert_eq!((n.host(), n.prefix.as_str()), ("10.0.0.1:8080", "/graphite"));
        assert_eq!(n.param("local", "x"), "1");
        let n = RemoteNode::parse("http://web1").unwrap();
        assert_eq!(n.host(), "web1:80");
        assert!(RemoteNode::parse("https://web1:443").is_err());
        assert!(RemoteNode::parse("/x").is_err());
    }

    #[test]
    fn a_node_is_down_for_the_retry_delay() {
        let n = RemoteNode::parse("127.0.0.1:1").unwrap();
        assert!(!n.is_down(Duration::from_secs(60)));
        n.fail();
        assert!(n.is_down(Duration::from_secs(60)));
        assert!(!n.is_down(Duration::ZERO));
    }

    proptest::proptest! {
        /// Whatever a peer sends, decoding ends in a value or an error, never a panic.
        #[test]
        fn peer_answers_never_panic(body in proptest::collection::vec(proptest::num::u8::ANY, 0..512)) {
            let _ = decode_find(&resp(&body));
            let _ = decode_render(&resp(&body));
        }

        /// Mutated graphite-web find answers decode or fail cleanly.
        #[test]
        fn mutated_find_answers_never_panic(at in 0..GRAPHITE_WEB_FIND.len(), byte in proptest::num::u8::ANY) {
            let mut body = GRAPHITE_WEB_FIND.to_vec();
            body[at] = byte;
            let _ = decode_find(&resp(&body));
        }

        #[test]
        fn server_entries_never_panic(entry in "\\PC{0,40}") {
            let _ = RemoteNode::parse(&entry);
        }
    }
}
