//! Tests of `carbon_proto::cache_query` against carbon's own `CacheManagementHandler` (Debian
//! graphite-carbon, run by /usr/bin/python3, with a real `MetricCache` and a stub database):
//! requests pickled as graphite-web pickles them, in every protocol, decode to the right
//! request; our responses are carbon's bytes; carbon's responses decode. Plus round trips,
//! "arbitrary bytes never panic" and malformed requests.

use bytes::{Bytes, BytesMut};
use carbon_proto::Datapoint;
use carbon_proto::cache_query::{
    CacheQueryError, MAX_REQUEST_BYTES, Request, Response, Timestamps, encode_bulk_response,
    encode_datapoints_response, encode_error_response, encode_metadata_response,
    encode_set_metadata_response, invalid_request_type_message,
};
use carbon_proto::pickle::{FrameDecoder, PickleError, Value, dumps, framed};
use proptest::prelude::*;
use proptest::strategy::ValueTree;
use proptest::test_runner::TestRunner;
use serde_json::{Value as Json, json};

use crate::reference;

fn hex(b: &[u8]) -> String {
    b.iter().map(|x| format!("{x:02x}")).collect()
}

fn unhex(s: &str) -> Vec<u8> {
    (0..s.len()).step_by(2).map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap()).collect()
}

/// Tagged JSON for the Python side (floats by their bits).
fn tag(v: &Value) -> Json {
    match v {
        Value::None => json!({"t": "none"}),
        Value::Bool(b) => json!({"t": "bool", "v": b}),
        Value::Int(i) => json!({"t": "int", "v": i}),
        Value::Float(f) => json!({"t": "float", "v": hex(&f.to_be_bytes())}),
        Value::Str(s) => json!({"t": "str", "v": &**s}),
        Value::Bytes(b) => json!({"t": "bytes", "v": hex(b)}),
        Value::List(items) => json!({"t": "list", "v": items.iter().map(tag).collect::<Vec<_>>()}),
        Value::Dict(entries) => json!({"t": "dict", "v": entries
            .iter()
            .map(|(k, v)| json!([tag(k), tag(v)]))
            .collect::<Vec<_>>()}),
        other => panic!("not used here: {other:?}"),
    }
}

/// carbon's cache-query handler, fed one request per case, with the cache filled first.
const CARBON_HANDLER: &str = r#"
import json, struct, sys, pickle
from carbon.protocols import CacheManagementHandler
from carbon.cache import MetricCache
from carbon.util import get_unpickler
from carbon import state

def build(j):
    t = j['t']; v = j.get('v')
    if t == 'none': return None
    if t == 'bool': return v
    if t == 'int': return v
    if t == 'float': return struct.unpack('>d', bytes.fromhex(v))[0]
    if t == 'str': return (v + 'x')[:-1]
    if t == 'bytes': return bytes.fromhex(v)
    if t == 'list': return [build(x) for x in v]
    if t == 'dict': return {build(k): build(x) for k, x in v}
    raise ValueError(t)

class Database:
    def getMetadata(self, metric, key):
        if key != 'aggregationMethod':
            raise ValueError('Unsupported metadata key "%s"' % key)
        return 'average'
    def setMetadata(self, metric, key, value):
        if key != 'aggregationMethod':
            raise ValueError('Unsupported metadata key "%s"' % key)
        return 'average'

state.database = Database()
handler = CacheManagementHandler.__new__(CacheManagementHandler)
handler.unpickler = get_unpickler(insecure=False)
handler.peerAddr = 'test:1'
sent = []
handler.sendString = sent.append
cache = MetricCache()
out = []
for case in json.load(sys.stdin):
    cache.clear()
    for metric, points in case['cache']:
        for ts, value in points:
            cache.store(metric, (build(ts), build(value)))
    request = pickle.dumps(build(case['request']), protocol=case['protocol'])
    sent.clear()
    try:
        handler.stringReceived(request)
        out.append({'request': request.hex(), 'response': sent[0].hex()})
    except Exception as e:
        out.append({'request': request.hex(), 'exception': type(e).__name__})
print(json.dumps(out))
"#;

/// A cache: metrics with points of unique timestamps, all float or all int timestamps.
#[derive(Debug, Clone)]
struct Cache {
    metrics: Vec<(String, Vec<Datapoint>)>,
    int_timestamps: bool,
}

impl Cache {
    fn points(&self, metric: &str) -> &[Datapoint] {
        self.metrics.iter().find(|(m, _)| m == metric).map_or(&[], |(_, p)| p.as_slice())
    }

    fn kind(&self) -> Timestamps {
        if self.int_timestamps { Timestamps::Int } else { Timestamps::Float }
    }

    fn tagged(&self) -> Json {
        let ts = |t: f64| {
            if self.int_timestamps { tag(&Value::Int(t as i64)) } else { tag(&Value::Float(t)) }
        };
        Json::Array(
            self.metrics
                .iter()
                .map(|(m, points)| {
                    json!([
                        m,
                        points
                            .iter()
                            .map(|d| json!([ts(d.timestamp), tag(&Value::Float(d.value))]))
                            .collect::<Vec<_>>()
                    ])
                })
                .collect(),
        )
    }
}

fn metric_name() -> impl Strategy<Value = String> {
    prop_oneof![
        4 => "[a-z]{1,6}(\\.[a-z0-9_]{1,8}){0,4}",
        1 => prop::sample::select(vec!["a", "é", "caf\u{e9}.ünï", "cpu;host=web01", "x\u{1f600}.y"])
            .prop_map(String::from),
    ]
}

fn cache() -> impl Strategy<Value = Cache> {
    let points =
        (prop::collection::btree_set(1_600_000_000i64..1_600_100_000, 0..12), any::<bool>())
            .prop_flat_map(|(ts, fractional)| {
                let n = ts.len();
                (Just(ts), Just(fractional), prop::collection::vec(any::<f64>(), n))
            })
            .prop_map(|(ts, fractional, values)| {
                ts.into_iter()
                    .zip(values)
                    .map(|(t, v)| Datapoint::new(t as f64 + if fractional { 0.25 } else { 0.0 }, v))
                    .collect::<Vec<_>>()
            });
    (prop::collection::btree_map(metric_name(), points, 0..6), any::<bool>()).prop_map(
        |(metrics, int_timestamps)| {
            let metrics = metrics
                .into_iter()
                .map(|(m, p)| {
                    let p = if int_timestamps {
                        p.into_iter()
                            .map(|d| Datapoint::new(d.timestamp.trunc(), d.value))
                            .collect()
                    } else {
                        p
                    };
                    (m, p)
                })
                .collect();
            Cache { metrics, int_timestamps }
        },
    )
}

/// Metadata values: what graphite-web sends, and a few other plain ones.
fn metadata_value() -> impl Strategy<Value = Value> {
    prop_oneof![
        4 => prop::sample::select(vec!["average", "sum", "last", "max", "min", "a", ""]).prop_map(Value::str),
        1 => any::<i64>().prop_map(Value::Int),
        1 => any::<f64>().prop_map(Value::Float),
        1 => Just(Value::None),
        1 => prop::collection::vec("[a-z]{0,3}".prop_map(|s| Value::str(&s)), 0..4).prop_map(Value::List),
    ]
}

fn string_value(s: &str) -> Value {
    Value::str(s)
}

/// Requests as graphite-web builds them (`dict(type=..., metric=...)`), and unknown types.
fn request(metrics: Vec<String>) -> impl Strategy<Value = Request> {
    let known = prop::sample::select(metrics.clone());
    let any_metric = prop_oneof![known.clone(), metric_name()];
    let key = prop_oneof![3 => Just("aggregationMethod".to_string()), 1 => "[a-zA-Z]{0,10}"];
    prop_oneof![
        4 => any_metric.clone().prop_map(|metric| Request::CacheQuery { metric }),
        3 => prop::collection::vec(any_metric.clone(), 0..8).prop_map(|metrics| Request::CacheQueryBulk { metrics }),
        1 => (any_metric.clone(), key.clone()).prop_map(|(metric, key)| Request::GetMetadata { metric, key }),
        1 => (any_metric, key, metadata_value()).prop_map(|(metric, key, value)| Request::SetMetadata { metric, key, value }),
        1 => prop_oneof![
            "[a-z-]{0,12}".prop_map(|s| string_value(&s)),
            any::<i64>().prop_map(Value::Int),
            any::<f64>().prop_map(Value::Float),
            Just(Value::None),
            any::<bool>().prop_map(Value::Bool),
            Just(Value::Bytes(Bytes::from_static(b"cache-query"))),
            Just(Value::List(vec![Value::str("a'b"), Value::Int(1)])),
        ]
        .prop_map(|request_type| Request::Unknown { request_type }),
    ]
}

/// The request as graphite-web's dict (key order: type, metric(s), key, value).
fn request_dict(r: &Request) -> Value {
    let s = Value::str;
    let entries = match r {
        Request::CacheQuery { metric } => {
            vec![(s("type"), s("cache-query")), (s("metric"), s(metric))]
        }
        Request::CacheQueryBulk { metrics } => vec![
            (s("type"), s("cache-query-bulk")),
            (s("metrics"), Value::List(metrics.iter().map(|m| s(m)).collect())),
        ],
        Request::GetMetadata { metric, key } => {
            vec![(s("type"), s("get-metadata")), (s("metric"), s(metric)), (s("key"), s(key))]
        }
        Request::SetMetadata { metric, key, value } => vec![
            (s("type"), s("set-metadata")),
            (s("metric"), s(metric)),
            (s("key"), s(key)),
            (s("value"), value.clone()),
        ],
        Request::Unknown { request_type } => vec![(s("type"), request_type.clone())],
        other => panic!("{other:?}"),
    };
    Value::Dict(entries)
}

/// Our answer, as a carbon-cache built on this crate would give it. `carbon_error` is carbon's
/// message where the answer is an error we cannot write ourselves (a Python traceback).
fn our_response(r: &Request, cache: &Cache, carbon_error: Option<&str>) -> Vec<u8> {
    let mut out = Vec::new();
    match r {
        Request::CacheQuery { metric } => {
            encode_datapoints_response(&mut out, cache.points(metric), cache.kind());
        }
        Request::CacheQueryBulk { metrics } => encode_bulk_response(
            &mut out,
            metrics.iter().map(|m| (m.as_str(), cache.points(m))),
            cache.kind(),
        ),
        Request::GetMetadata { key, .. } if key == "aggregationMethod" => {
            encode_metadata_response(&mut out, &Value::str("average"));
        }
        Request::SetMetadata { key, value, .. } if key == "aggregationMethod" => {
            encode_set_metadata_response(&mut out, &Value::str("average"), value);
        }
        Request::GetMetadata { .. } | Request::SetMetadata { .. } => {
            encode_error_response(&mut out, carbon_error.expect("carbon answers with an error"));
        }
        Request::Unknown { request_type } => {
            encode_error_response(&mut out, &invalid_request_type_message(request_type));
        }
        other => panic!("{other:?}"),
    }
    out
}

fn sample<S: Strategy>(strategy: S, runner: &mut TestRunner) -> S::Value {
    strategy.new_tree(runner).unwrap().current()
}

#[test]
fn carbon_answers_what_we_answer_for_graphite_web_requests_in_every_protocol() {
    if !reference::have_python_module("carbon.protocols") {
        return;
    }
    // Generate on a larger stack: nested strategies take deep stacks in debug builds.
    let cases: Vec<(Cache, Request, u8)> = std::thread::Builder::new()
        .stack_size(64 << 20)
        .spawn(|| {
            let mut runner = TestRunner::deterministic();
            (0..240)
                .map(|i| {
                    let cache = sample(cache(), &mut runner);
                    let mut names: Vec<String> =
                        cache.metrics.iter().map(|(m, _)| m.clone()).collect();
                    names.push("not.cached".into());
                    let request = sample(request(names), &mut runner);
                    (cache, request, (i % 6) as u8)
                })
                .collect()
        })
        .unwrap()
        .join()
        .unwrap();
    let input: Vec<Json> = cases
        .iter()
        .map(|(c, r, p)| json!({"cache": c.tagged(), "request": tag(&request_dict(r)), "protocol": p}))
        .collect();
    let out: Vec<Json> = serde_json::from_slice(&reference::python(
        CARBON_HANDLER,
        &[],
        &serde_json::to_vec(&input).unwrap(),
    ))
    .unwrap();
    let mut kinds = std::collections::BTreeMap::<&str, usize>::new();
    for ((cache, request, protocol), carbon) in cases.iter().zip(&out) {
        let payload = unhex(carbon["request"].as_str().unwrap());
        let decoded = Request::decode(&payload).unwrap_or_else(|e| panic!("{e}: {request:?}"));
        assert_eq!(&decoded, request, "protocol {protocol}");
        let Some(response) = carbon["response"].as_str() else {
            panic!("carbon raised {} for {request:?}", carbon["exception"]);
        };
        let response = unhex(response);
        let carbon_error = match Response::decode(&response).unwrap() {
            Response::Error { message } => Some(message),
            _ => None,
        };
        let ours = our_response(request, cache, carbon_error.as_deref());
        assert!(
            ours == response,
            "{request:?} with {cache:?}\nours   {}\ncarbon {}",
            hex(&ours),
            hex(&response)
        );
        // And carbon's answer reads back as what we meant.
        let read = Response::decode(&response).unwrap();
        match (request, &read) {
            (Request::CacheQuery { metric }, Response::Datapoints(points)) => {
                assert_eq!(bits(points), bits(cache.points(metric)));
            }
            (Request::CacheQueryBulk { metrics }, Response::DatapointsByMetric(by_metric)) => {
                // One entry per distinct metric, in request order.
                let mut distinct: Vec<&String> = Vec::new();
                for m in metrics {
                    if !distinct.contains(&m) {
                        distinct.push(m);
                    }
                }
                let got: Vec<&String> = by_metric.iter().map(|(m, _)| m).collect();
                assert_eq!(got, distinct);
                for (m, points) in by_metric {
                    assert_eq!(bits(points), bits(cache.points(m)));
                }
            }
            (Request::GetMetadata { .. }, Response::Metadata { value }) => {
                assert_eq!(value, &Value::str("average"));
            }
            (
                Request::SetMetadata { value, .. },
                Response::MetadataChanged { old_value, new_value },
            ) => {
                assert_eq!((old_value, new_value), (&Value::str("average"), value));
            }
            (_, Response::Error { .. }) => {}
            other => panic!("{other:?}"),
        }
        *kinds.entry(kind_of(request)).or_default() += 1;
    }
    eprintln!("cache queries checked: {kinds:?}");
    assert!(kinds.len() >= 5, "{kinds:?}");
}

fn kind_of(r: &Request) -> &'static str {
    match r {
        Request::CacheQuery { .. } => "cache-query",
        Request::CacheQueryBulk { .. } => "cache-query-bulk",
        Request::GetMetadata { .. } => "get-metadata",
        Request::SetMetadata { .. } => "set-metadata",
        _ => "unknown",
    }
}

fn bits(points: &[Datapoint]) -> Vec<(u64, u64)> {
    points.iter().map(|d| (d.timestamp.to_bits(), d.value.to_bits())).collect()
}

#[test]
fn graphite_web_request_bytes_decode() {
    // graphite-web 1.1.8 on Python 3.11: pickle.dumps(dict(type='cache-query', metric='a.b'),
    // protocol=-1) (protocol 5, with FRAME and MEMOIZE).
    let py3 = b"\x80\x05\x95)\x00\x00\x00\x00\x00\x00\x00}\x94(\x8c\x04type\x94\x8c\x0bcache-query\x94\x8c\x06metric\x94\x8c\x03a.b\x94u.";
    assert_eq!(Request::decode(py3).unwrap(), Request::CacheQuery { metric: "a.b".into() });
    // graphite-web on Python 2.7 (cPickle, protocol -1 = 2, str as SHORT_BINSTRING):
    // {'type': 'cache-query-bulk', 'metrics': ['a.b', u'c\xe9']}.
    let py2 = unhex(
        "80027d71012855076d65747269637371025d7103285503612e627104580300000063c3a97105655504747970657106551063616368652d71756572792d62756c6b7107752e",
    );
    assert_eq!(
        Request::decode(&py2).unwrap(),
        Request::CacheQueryBulk { metrics: vec!["a.b".into(), "cé".into()] }
    );
}

#[test]
fn our_requests_are_what_python_pickles_with_protocol_2() {
    if !reference::have_python_module("pickle") {
        return;
    }
    let requests: Vec<Request> = std::thread::Builder::new()
        .stack_size(64 << 20)
        .spawn(|| {
            let mut runner = TestRunner::deterministic();
            (0..150)
                .map(|_| sample(request(vec!["a.b".into(), "a".into()]), &mut runner))
                .filter(|r| !matches!(r, Request::Unknown { request_type: Value::Bytes(_) }))
                .collect()
        })
        .unwrap()
        .join()
        .unwrap();
    let input: Vec<Json> = requests.iter().map(|r| tag(&request_dict(r))).collect();
    let script = format!(
        "{}\nprint(json.dumps([pickle.dumps(build(j), protocol=2).hex() for j in json.load(sys.stdin)]))",
        CARBON_HANDLER.split("class Database").next().unwrap()
    );
    let out: Vec<String> = serde_json::from_slice(&reference::python(
        &script,
        &[],
        &serde_json::to_vec(&input).unwrap(),
    ))
    .unwrap();
    for (r, expected) in requests.iter().zip(&out) {
        let mut ours = Vec::new();
        r.encode(&mut ours);
        assert_eq!(hex(&ours), *expected, "{r:?}");
        assert_eq!(dumps(&request_dict(r)), ours);
    }
}

#[test]
fn malformed_requests_are_typed_errors() {
    let d = |v: Value| Request::decode(&dumps(&v));
    let s = Value::str;
    assert_eq!(d(Value::List(vec![])), Err(CacheQueryError::NotADict { found: "list" }));
    assert_eq!(d(Value::Dict(vec![])), Err(CacheQueryError::MissingKey { key: "type" }));
    assert_eq!(
        d(Value::Dict(vec![(s("type"), s("cache-query"))])),
        Err(CacheQueryError::MissingKey { key: "metric" })
    );
    assert_eq!(
        d(Value::Dict(vec![(s("type"), s("cache-query")), (s("metric"), Value::Int(5))])),
        Err(CacheQueryError::WrongType { key: "metric", expected: "a str", found: "int" })
    );
    assert_eq!(
        d(Value::Dict(vec![(s("type"), s("cache-query-bulk")), (s("metrics"), s("a.b"))])),
        Err(CacheQueryError::WrongType { key: "metrics", expected: "a list of str", found: "str" })
    );
    assert_eq!(
        d(Value::Dict(vec![
            (s("type"), s("cache-query")),
            (s("metric"), Value::Bytes(Bytes::from_static(b"a\xff"))),
        ])),
        Err(CacheQueryError::NotUtf8 { key: "metric", at: 1 })
    );
    // A bytes metric that is UTF-8 is read as text; a bytes type is an unknown type.
    assert_eq!(
        d(Value::Dict(vec![
            (s("type"), s("cache-query")),
            (s("metric"), Value::Bytes(Bytes::from_static(b"a.b"))),
        ])),
        Ok(Request::CacheQuery { metric: "a.b".into() })
    );
    let t = Value::Bytes(Bytes::from_static(b"cache-query"));
    assert_eq!(
        d(Value::Dict(vec![(s("type"), t.clone()), (s("metric"), s("a"))])),
        Ok(Request::Unknown { request_type: t.clone() })
    );
    assert_eq!(invalid_request_type_message(&t), "Invalid request type \"b'cache-query'\"");
    assert!(matches!(
        Request::decode(b"\x80\x02cos\nsystem\n."),
        Err(CacheQueryError::Pickle(PickleError::UnsupportedOpcode { name: "GLOBAL", .. }))
    ));
    assert_eq!(
        CacheQueryError::MissingKey { key: "type" }.to_string(),
        "request has no \"type\" key"
    );
}

#[test]
fn malformed_responses_are_typed_errors() {
    let s = Value::str;
    let d = |v: Value| Response::decode(&dumps(&v));
    assert_eq!(
        d(Value::Dict(vec![(s("surprise"), Value::None)])),
        Err(CacheQueryError::UnknownResponse { keys: vec!["surprise".into()] })
    );
    assert_eq!(
        d(Value::Dict(vec![(s("datapoints"), Value::List(vec![Value::Int(1)]))])),
        Err(CacheQueryError::BadDatapoint { metric: None, index: 0 })
    );
    let bulk = Value::Dict(vec![(
        s("datapointsByMetric"),
        Value::Dict(vec![(
            s("a.b"),
            Value::List(vec![
                Value::Tuple(vec![Value::Int(1), Value::Float(2.0)]),
                Value::Tuple(vec![Value::Int(1), s("x")]),
            ]),
        )]),
    )]);
    assert_eq!(
        d(bulk),
        Err(CacheQueryError::BadDatapoint { metric: Some("a.b".into()), index: 1 })
    );
    // An error wins over anything else, as in graphite-web; a non-str error is shown as Python would.
    assert_eq!(
        d(Value::Dict(vec![(s("datapoints"), Value::List(vec![])), (s("error"), Value::Int(3))])),
        Ok(Response::Error { message: "3".into() })
    );
    assert_eq!(d(Value::None), Err(CacheQueryError::NotADict { found: "NoneType" }));
}

#[test]
fn oversized_requests_are_refused_at_the_frame() {
    let mut frames = FrameDecoder::with_max_length(MAX_REQUEST_BYTES);
    let mut buf = BytesMut::from(&((MAX_REQUEST_BYTES as u32 + 1).to_be_bytes())[..]);
    assert_eq!(
        frames.decode(&mut buf),
        Err(PickleError::FrameTooLong {
            length: MAX_REQUEST_BYTES as u64 + 1,
            max: MAX_REQUEST_BYTES
        })
    );
    // A bulk request for 100,000 metrics fits and decodes.
    let metrics: Vec<String> =
        (0..100_000).map(|i| format!("servers.web{i:05}.cpu.user")).collect();
    let request = Request::CacheQueryBulk { metrics };
    let mut wire = Vec::new();
    framed(&mut wire, |out| request.encode(out)).unwrap();
    assert!(wire.len() < MAX_REQUEST_BYTES);
    let mut buf = BytesMut::from(&wire[..]);
    let payload =
        FrameDecoder::with_max_length(MAX_REQUEST_BYTES).decode(&mut buf).unwrap().unwrap();
    assert_eq!(Request::decode(&payload).unwrap(), request);
}

#[test]
fn big_bulk_responses_decode() {
    // 1,500 metrics of 1,000 cached points: 4.5 million values and 1.5 million memo entries,
    // over the default budgets.
    let points: Vec<Datapoint> =
        (0..1000).map(|i| Datapoint::new(1.7e9 + f64::from(i), 0.5)).collect();
    let names: Vec<String> = (0..1500).map(|i| format!("m.{i}")).collect();
    let mut out = Vec::new();
    encode_bulk_response(
        &mut out,
        names.iter().map(|m| (m.as_str(), points.as_slice())),
        Timestamps::Float,
    );
    let Response::DatapointsByMetric(by_metric) = Response::decode(&out).unwrap() else { panic!() };
    assert_eq!(by_metric.len(), 1500);
    assert!(by_metric.iter().all(|(_, p)| p.len() == 1000));
}

fn datapoints() -> impl Strategy<Value = Vec<Datapoint>> {
    prop::collection::vec(
        (any::<f64>(), any::<f64>()).prop_map(|(t, v)| Datapoint::new(t, v)),
        0..20,
    )
}

fn response() -> impl Strategy<Value = Response> {
    prop_oneof![
        datapoints().prop_map(Response::Datapoints),
        prop::collection::btree_map(metric_name(), datapoints(), 0..5)
            .prop_map(|m| Response::DatapointsByMetric(m.into_iter().collect())),
        metadata_value().prop_map(|value| Response::Metadata { value }),
        (metadata_value(), metadata_value())
            .prop_map(|(old_value, new_value)| Response::MetadataChanged { old_value, new_value }),
        ".{0,40}".prop_map(|message| Response::Error { message }),
    ]
}

fn same_response(a: &Response, b: &Response) -> bool {
    match (a, b) {
        (Response::Datapoints(x), Response::Datapoints(y)) => bits(x) == bits(y),
        (Response::DatapointsByMetric(x), Response::DatapointsByMetric(y)) => {
            x.len() == y.len()
                && x.iter().zip(y).all(|((m, p), (n, q))| m == n && bits(p) == bits(q))
        }
        (Response::Metadata { value: x }, Response::Metadata { value: y }) => {
            format!("{x:?}") == format!("{y:?}")
        }
        _ => format!("{a:?}") == format!("{b:?}"),
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 200, ..ProptestConfig::default() })]

    #[test]
    fn requests_round_trip(r in request(vec!["a.b".into()])) {
        let mut out = Vec::new();
        r.encode(&mut out);
        prop_assert_eq!(Request::decode(&out).unwrap(), r);
    }

    #[test]
    fn responses_round_trip(r in response()) {
        let mut out = Vec::new();
        r.encode(&mut out, Timestamps::Float);
        let back = Response::decode(&out).unwrap();
        prop_assert!(same_response(&back, &r), "{:?} != {:?}", back, r);
    }

    #[test]
    fn int_timestamps_round_trip_when_whole(points in prop::collection::vec((-1_000_000_000_000i64..1_000_000_000_000, any::<f64>()), 0..20)) {
        let points: Vec<Datapoint> = points.iter().map(|&(t, v)| Datapoint::new(t as f64, v)).collect();
        let mut out = Vec::new();
        encode_datapoints_response(&mut out, &points, Timestamps::Int);
        let Response::Datapoints(back) = Response::decode(&out).unwrap() else { panic!() };
        prop_assert_eq!(bits(&back), bits(&points));
    }

    #[test]
    fn arbitrary_bytes_never_panic(data in prop::collection::vec(any::<u8>(), 0..300)) {
        let _ = Request::decode(&data);
        let _ = Response::decode(&data);
    }

    #[test]
    fn mutated_requests_never_panic(r in request(vec!["a.b".into()]), muts in prop::collection::vec((any::<usize>(), any::<u8>()), 1..4)) {
        let mut data = Vec::new();
        r.encode(&mut data);
        for (at, byte) in muts {
            let i = at % data.len();
            data[i] = byte;
        }
        let _ = Request::decode(&data);
        let _ = Response::decode(&data);
    }
}
