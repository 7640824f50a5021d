//! Tests of `carbon_proto::pickle` against CPython's own pickle and carbon's own receiver
//! (Debian graphite-carbon, run by /usr/bin/python3): values pickled by Python in every
//! protocol decode to the same values, our encoder writes Python's bytes, mutated pickles are
//! refused or read exactly as Python reads them, and carbon's `MetricPickleReceiver` keeps and
//! skips the same items. Plus round trips, "arbitrary bytes never panic" and hostile input.

use std::collections::BTreeMap;

use bytes::{Bytes, BytesMut};
use carbon_proto::pickle::{
    BigInt, FrameDecoder, Number, PickleError, SkipReason, Unpickler, UnpicklerBuilder, Value,
    decode_datapoints, dumps, encode_datapoints, encode_datapoints_into, encode_frame, framed,
    loads,
};
use carbon_proto::{MetricName, Point};
use proptest::prelude::*;
use proptest::strategy::ValueTree;
use proptest::test_runner::TestRunner;
use serde_json::{Value as Json, json};

use crate::reference;

// ---------------------------------------------------------------------------------------------
// Value <-> tagged JSON, the form values cross the process boundary in.

fn hex(b: &[u8]) -> String {
    b.iter().map(|x| format!("{x:02x}")).collect()
}

fn unhex(s: &str) -> Vec<u8> {
    (0..s.len()).step_by(2).map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap()).collect()
}

fn float_tag(f: f64) -> Json {
    if f.is_nan() {
        json!({"t": "float", "v": "nan"})
    } else {
        json!({"t": "float", "v": hex(&f.to_be_bytes())})
    }
}

/// The tagged JSON of a value (ints as minimal signed little-endian hex, floats by their bits).
fn tag(v: &Value) -> Json {
    match v {
        Value::None => json!({"t": "none"}),
        Value::Bool(b) => json!({"t": "bool", "v": b}),
        Value::Int(i) => json!({"t": "int", "v": hex(BigInt::from(*i).as_signed_bytes_le())}),
        Value::BigInt(b) => json!({"t": "int", "v": hex(b.as_signed_bytes_le())}),
        Value::Float(f) => float_tag(*f),
        Value::Str(s) => json!({"t": "str", "v": &**s}),
        Value::Bytes(b) => json!({"t": "bytes", "v": hex(b)}),
        Value::List(items) => json!({"t": "list", "v": items.iter().map(tag).collect::<Vec<_>>()}),
        Value::Tuple(items) => {
            json!({"t": "tuple", "v": items.iter().map(tag).collect::<Vec<_>>()})
        }
        Value::Dict(entries) => {
            json!({"t": "dict", "v": entries.iter().map(|(k, v)| json!([tag(k), tag(v)])).collect::<Vec<_>>()})
        }
        other => json!({"t": "other", "v": other.type_name()}),
    }
}

/// Normalises Python's tagged JSON: ints to their minimal bytes, NaN floats to "nan".
fn normalize(j: &Json) -> Json {
    let t = j["t"].as_str().unwrap_or("");
    match t {
        "int" => {
            let b = BigInt::from_signed_bytes_le(&unhex(j["v"].as_str().unwrap()));
            json!({"t": "int", "v": hex(b.as_signed_bytes_le())})
        }
        "float" => {
            let s = j["v"].as_str().unwrap();
            if s == "nan" {
                return j.clone();
            }
            let bytes: [u8; 8] = unhex(s).try_into().unwrap();
            float_tag(f64::from_be_bytes(bytes))
        }
        "list" | "tuple" => {
            json!({"t": t, "v": j["v"].as_array().unwrap().iter().map(normalize).collect::<Vec<_>>()})
        }
        "dict" => json!({"t": t, "v": j["v"].as_array().unwrap().iter()
            .map(|kv| json!([normalize(&kv[0]), normalize(&kv[1])])).collect::<Vec<_>>()}),
        _ => j.clone(),
    }
}

/// Python's side of the value protocol: `build` turns tagged JSON into objects (each `str` a
/// fresh object, as in real data: CPython's empty and one-Latin-1-character strings are
/// singletons either way), `tag` turns objects back, naming what our model cannot hold.
const PY_VALUES: &str = r#"
import json, struct, sys, pickle, io, resource

def build(j):
    t = j['t']; v = j.get('v')
    if t == 'none': return None
    if t == 'bool': return v
    if t == 'int': return int.from_bytes(bytes.fromhex(v), 'little', signed=True)
    if t == 'float': return struct.unpack('>d', bytes.fromhex(v))[0] if v != 'nan' else float('nan')
    if t == 'str': return (v + 'x')[:-1]
    if t == 'bytes': return bytes.fromhex(v)
    if t == 'list': return [build(x) for x in v]
    if t == 'tuple': return tuple(build(x) for x in v)
    if t == 'dict': return {build(k): build(x) for k, x in v}
    raise ValueError(t)

def tag(o, seen=()):
    if o is None: return {'t': 'none'}
    if o is True or o is False: return {'t': 'bool', 'v': o}
    if type(o) is int: return {'t': 'int', 'v': o.to_bytes((o.bit_length() + 8) // 8, 'little', signed=True).hex()}
    if type(o) is float: return {'t': 'float', 'v': 'nan' if o != o else struct.pack('>d', o).hex()}
    if type(o) is str:
        try: o.encode('utf-8')
        except UnicodeEncodeError: return {'t': 'surrogate'}
        return {'t': 'str', 'v': o}
    if type(o) is bytes: return {'t': 'bytes', 'v': o.hex()}
    if type(o) in (list, tuple, dict):
        if id(o) in seen: return {'t': 'cycle'}
        seen = seen + (id(o),)
        if type(o) is dict:
            return {'t': 'dict', 'v': [[tag(k, seen), tag(v, seen)] for k, v in o.items()]}
        return {'t': type(o).__name__, 'v': [tag(x, seen) for x in o]}
    return {'t': 'other', 'v': type(o).__name__}

class Safe(pickle.Unpickler):
    def find_class(self, module, name):
        raise pickle.UnpicklingError('global %s.%s refused' % (module, name))

def safe_loads(data):
    return Safe(io.BytesIO(data), encoding='utf-8').load()
"#;

// ---------------------------------------------------------------------------------------------
// Strategies.

fn text() -> impl Strategy<Value = String> {
    prop_oneof![
        4 => "[a-z0-9_.-]{1,24}",
        2 => "\\PC{0,12}",
        1 => ".{0,6}",
        1 => prop::sample::select(vec![
            "", "a", "é", "\u{ff}", "\u{100}", "€", "\u{1f600}", "\\", "\\u0041", "'", "\"", "'\"",
            "\n", "\r\n", "\0", "\u{1a}", "a\\b\nc", "\u{85}\u{2028}", "caf\u{e9}.x",
        ]).prop_map(String::from),
    ]
}

fn int_value(i: i64) -> Value {
    Value::Int(i)
}

fn leaf() -> impl Strategy<Value = Value> {
    prop_oneof![
        1 => Just(Value::None),
        1 => any::<bool>().prop_map(Value::Bool),
        2 => (-300i64..70_000).prop_map(int_value),
        1 => prop::sample::select(vec![
            i64::from(i32::MIN), i64::from(i32::MAX), i64::from(i32::MIN) - 1,
            i64::from(i32::MAX) + 1, i64::MIN, i64::MAX, 1_700_000_000, -1,
        ]).prop_map(int_value),
        1 => any::<i64>().prop_map(int_value),
        1 => prop::collection::vec(any::<u8>(), 9..40).prop_map(|b| {
            let big = BigInt::from_signed_bytes_le(&b);
            match big.to_i64() {
                Some(i) => Value::Int(i),
                None => Value::BigInt(big),
            }
        }),
        2 => any::<f64>().prop_map(Value::Float),
        1 => prop::sample::select(vec![
            0.0, -0.0, 1.5, 0.1, 1e16, 1e-5, 1e300, -1e-310, 5e-324, f64::MAX, f64::INFINITY,
            f64::NEG_INFINITY, f64::NAN, 1_700_000_000.0, 1_700_000_000.25,
        ]).prop_map(Value::Float),
        3 => text().prop_map(|s| Value::str(&s)),
        1 => prop::collection::vec(any::<u8>(), 0..300).prop_map(|b| Value::Bytes(Bytes::from(b))),
    ]
}

fn value() -> impl Strategy<Value = Value> {
    leaf().prop_recursive(3, 48, 8, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..8).prop_map(Value::List),
            prop::collection::vec(inner.clone(), 0..6).prop_map(Value::Tuple),
            prop::collection::btree_map(text(), inner, 0..5).prop_map(|m| {
                Value::Dict(m.into_iter().map(|(k, v)| (Value::str(&k), v)).collect())
            }),
        ]
    })
}

fn has_bytes(v: &Value) -> bool {
    match v {
        Value::Bytes(_) => true,
        Value::List(items) | Value::Tuple(items) => items.iter().any(has_bytes),
        Value::Dict(entries) => entries.iter().any(|(k, v)| has_bytes(k) || has_bytes(v)),
        _ => false,
    }
}

fn sample<S: Strategy>(strategy: S, n: usize) -> Vec<S::Value> {
    let mut runner = TestRunner::deterministic();
    (0..n).map(|_| strategy.new_tree(&mut runner).unwrap().current()).collect()
}

/// [`sample`] on a thread with a larger stack: nested strategies take deep stacks in debug
/// builds.
fn sample_big_stack<S>(strategy: S, n: usize) -> Vec<S::Value>
where
    S: Strategy + Send + 'static,
    S::Value: Send + 'static,
{
    std::thread::Builder::new()
        .stack_size(64 << 20)
        .spawn(move || sample(strategy, n))
        .unwrap()
        .join()
        .unwrap()
}

/// Values that exercise CPython's batching (1000 items per MARK ... APPENDS / SETITEMS).
fn batch_edge_values() -> Vec<Value> {
    let ints = |n: i64| Value::List((0..n).map(Value::Int).collect());
    let dict = |n: i64| {
        Value::Dict((0..n).map(|i| (Value::str(&format!("k{i}")), Value::Int(i))).collect())
    };
    let mut out: Vec<Value> = [0, 1, 2, 999, 1000, 1001, 2000, 2001].map(ints).to_vec();
    out.extend([1, 2, 1000, 1001].map(dict));
    // Over 256 memo entries: LONG_BINPUT and LONG_BINGET.
    out.push(Value::List(
        (0..300).flat_map(|i| [Value::str(&format!("s{i}")), Value::str("z")]).collect(),
    ));
    out.push(Value::Tuple((0..7).map(Value::Int).collect()));
    // Over 64 KiB: protocols 4 and 5 cut it into several FRAMEs.
    out.push(Value::List(
        (0..6000).map(|i| Value::str(&format!("metric.number.{i:08}"))).collect(),
    ));
    out
}

// ---------------------------------------------------------------------------------------------
// Golden: Python pickles, we read; we pickle, Python's bytes.

#[test]
fn python_pickles_in_every_protocol_decode_to_the_same_values() {
    if !reference::have_python_module("pickle") {
        return;
    }
    let mut values = sample(value(), 400);
    values.extend(batch_edge_values());
    let input = serde_json::to_vec(&values.iter().map(tag).collect::<Vec<_>>()).unwrap();
    let script = format!(
        "{PY_VALUES}\nout = []\nfor j in json.load(sys.stdin):\n    o = build(j)\n    out.append([pickle.dumps(o, protocol=p).hex() for p in range(6)])\nprint(json.dumps(out))"
    );
    let out: Vec<Vec<String>> =
        serde_json::from_slice(&reference::python(&script, &[], &input)).unwrap();
    let mut unpickler = Unpickler::new();
    let mut checked = 0;
    for (value, pickles) in values.iter().zip(&out) {
        for (protocol, p) in pickles.iter().enumerate() {
            let payload = unhex(p);
            let got = unpickler.loads(&payload);
            if has_bytes(value) && protocol < 3 {
                // CPython writes bytes as _codecs.encode(...) through GLOBAL and REDUCE.
                assert!(
                    matches!(got, Err(PickleError::UnsupportedOpcode { name: "GLOBAL", .. })),
                    "protocol {protocol}: {got:?}"
                );
                continue;
            }
            let got = got.unwrap_or_else(|e| panic!("protocol {protocol} of {value:?}: {e}\n{p}"));
            assert_eq!(tag(&got), tag(value), "protocol {protocol}: {p}");
            checked += 1;
        }
    }
    assert!(checked > 2000, "{checked}");
}

#[test]
fn dumps_writes_cpython_protocol_2_bytes() {
    if !reference::have_python_module("pickle") {
        return;
    }
    let mut values: Vec<Value> =
        sample(value(), 400).into_iter().filter(|v| !has_bytes(v)).collect();
    values.extend(batch_edge_values());
    let input = serde_json::to_vec(&values.iter().map(tag).collect::<Vec<_>>()).unwrap();
    let script = format!(
        "{PY_VALUES}\nprint(json.dumps([pickle.dumps(build(j), protocol=2).hex() for j in json.load(sys.stdin)]))"
    );
    let out: Vec<String> =
        serde_json::from_slice(&reference::python(&script, &[], &input)).unwrap();
    for (i, (value, expected)) in values.iter().zip(&out).enumerate() {
        let ours = hex(&dumps(value));
        assert!(ours == *expected, "value {i}: ours {ours}\npython {expected}");
    }
}

/// Random datapoint lists, as a relay holds them: names from a small pool (one-letter names
/// repeat, which CPython memoizes), float or int numbers.
fn relay_batch() -> impl Strategy<Value = Vec<(String, Number, Number)>> {
    let name = prop_oneof![
        3 => "[a-z]{1,8}(\\.[a-z0-9_]{1,8}){0,4}",
        1 => prop::sample::select(vec!["a", "b", "é", "caf\u{e9}.ünï", "a.b;tag=v", "x\u{1f600}.y"])
            .prop_map(String::from),
    ];
    let number = prop_oneof![
        3 => any::<f64>().prop_map(Number::Float),
        1 => any::<i64>().prop_map(Number::Int),
        1 => (1_600_000_000i64..1_800_000_000).prop_map(Number::Int),
    ];
    prop::collection::vec((name, number.clone(), number), 0..40)
}

#[test]
fn encode_datapoints_writes_what_carbon_relay_writes() {
    if !reference::have_python_module("pickle") {
        return;
    }
    let mut batches = sample(relay_batch(), 150);
    // One over the batch size, and the realistic shape: float timestamps and values.
    batches.push(
        (0..1001)
            .map(|i| (format!("m.{i}"), Number::Float(1.7e9 + f64::from(i)), Number::Float(0.5)))
            .collect(),
    );
    let input: Vec<Json> = batches
        .iter()
        .map(|b| {
            let items: Vec<Json> =
                b.iter().map(|(n, t, v)| json!([n, num_tag(*t), num_tag(*v)])).collect();
            Json::Array(items)
        })
        .collect();
    let script = format!(
        "{PY_VALUES}\nout = []\nfor batch in json.load(sys.stdin):\n    data = [((n + 'x')[:-1], (build(t), build(v))) for n, t, v in batch]\n    out.append(pickle.dumps(data, protocol=2).hex())\nprint(json.dumps(out))"
    );
    let out: Vec<String> = serde_json::from_slice(&reference::python(
        &script,
        &[],
        &serde_json::to_vec(&input).unwrap(),
    ))
    .unwrap();
    for (batch, expected) in batches.iter().zip(&out) {
        let mut ours = Vec::new();
        encode_datapoints_into(&mut ours, batch.iter().map(|(n, t, v)| (n.as_str(), *t, *v)));
        assert_eq!(hex(&ours), *expected, "{batch:?}");
    }
    // encode_datapoints writes floats, as carbon's relay does.
    let points = [Point::new(MetricName::new("a.b").unwrap(), 1.7e9, 2.0)];
    let mut ours = Vec::new();
    encode_datapoints_into(&mut ours, [("a.b", Number::Float(1.7e9), Number::Float(2.0))]);
    assert_eq!(encode_datapoints(&points), ours);
}

fn num_tag(n: Number) -> Json {
    match n {
        Number::Int(i) => tag(&Value::Int(i)),
        Number::Float(f) => float_tag(f),
    }
}

// ---------------------------------------------------------------------------------------------
// Python 2 clients.

/// `cPickle.dumps(data, p)` and `pickle.dumps(data, p)` of Python 2.7.18 for
/// `data = [('servers.web01.cpu', (1700000000, 1.5)), (u'caf\xe9.x', (1700000000L, 2)),
/// ('s', (1.0, '3.5')), ('big', (2**70, -2**40)), ('t', (True, None)),
/// ('q\'"\\ \n', (0.1, -0.0))]`.
const PYTHON2_PICKLES: [(u8, &str, &str); 6] = [
    (
        0,
        "cPickle",
        "286c70310a285327736572766572732e77656230312e637075270a70320a2849313730303030303030300a46312e350a7470330a7470340a612856636166e92e780a70350a284c313730303030303030304c0a49320a7470360a7470370a6128532773270a2846310a5327332e35270a70380a7470390a747031300a61285327626967270a7031310a284c313138303539313632303731373431313330333432344c0a492d313039393531313632373737360a74747031320a6128532774270a284930310a4e74747031330a61285327715c27225c5c205c6e270a7031340a2846302e31303030303030303030303030303030310a462d300a747031350a747031360a612e",
    ),
    (
        0,
        "pickle",
        "286c70300a285327736572766572732e77656230312e637075270a70310a2849313730303030303030300a46312e350a7470320a7470330a612856636166e92e780a70340a284c313730303030303030304c0a49320a7470350a7470360a6128532773270a70370a2846312e300a5327332e35270a70380a7470390a747031300a61285327626967270a7031310a284c313138303539313632303731373431313330333432344c0a492d313039393531313632373737360a747031320a747031330a6128532774270a7031340a284930310a4e747031350a747031360a61285327715c27225c5c205c6e270a7031370a2846302e310a462d302e300a747031380a747031390a612e",
    ),
    (
        1,
        "cPickle",
        "5d710128285511736572766572732e77656230312e6370757102284a00f15365473ff8000000000000747103747104285807000000636166c3a92e787105284c313730303030303030304c0a4b027471067471072855017328473ff00000000000005503332e35710874710974710a285503626967710b284c313138303539313632303731373431313330333432344c0a492d313039393531313632373737360a7474710c28550174284930310a4e7474710d2855067127225c200a710e28473fb999999999999a47800000000000000074710f747110652e",
    ),
    (
        1,
        "pickle",
        "5d710028285511736572766572732e77656230312e6370757101284a00f15365473ff8000000000000747102747103285807000000636166c3a92e787104284c313730303030303030304c0a4b0274710574710628550173710728473ff00000000000005503332e35710874710974710a285503626967710b284c313138303539313632303731373431313330333432344c0a492d313039393531313632373737360a74710c74710d28550174710e284930310a4e74710f7471102855067127225c200a711128473fb999999999999a478000000000000000747112747113652e",
    ),
    (
        2,
        "cPickle",
        "80025d7101285511736572766572732e77656230312e63707571024a00f15365473ff80000000000008671038671045807000000636166c3a92e7871058a0400f153654b02867106867107550173473ff00000000000005503332e35710886710986710a5503626967710b8a09000000000000000040492d313039393531313632373737360a8686710c550174884e8686710d55067127225c200a710e473fb999999999999a47800000000000000086710f867110652e",
    ),
    (
        2,
        "pickle",
        "80025d7100285511736572766572732e77656230312e63707571014a00f15365473ff80000000000008671028671035807000000636166c3a92e7871048a0400f153654b028671058671065501737107473ff00000000000005503332e35710886710986710a5503626967710b8a09000000000000000040492d313039393531313632373737360a86710c86710d550174710e884e86710f86711055067127225c200a7111473fb999999999999a478000000000000000867112867113652e",
    ),
];

#[test]
fn python2_client_pickles_decode() {
    for (protocol, module, h) in PYTHON2_PICKLES {
        let payload = unhex(h);
        let d = decode_datapoints(&payload).unwrap_or_else(|e| panic!("{module} {protocol}: {e}"));
        let got: Vec<(String, f64, f64)> = d
            .points
            .iter()
            .map(|p| (p.name.to_string(), p.datapoint.timestamp, p.datapoint.value))
            .collect();
        let expected = vec![
            ("servers.web01.cpu".to_string(), 1.7e9, 1.5),
            ("café.x".to_string(), 1.7e9, 2.0),
            ("s".to_string(), 1.0, 3.5),
            ("big".to_string(), 2f64.powi(70), -(2f64.powi(40))),
        ];
        assert_eq!(got, expected, "{module} {protocol}");
        // ('t', (True, None)): float(None) fails; the last name has a '/'-free but
        // control-character name ("q'\"\\ \n").
        assert_eq!(d.skipped.len(), 2, "{module} {protocol}: {:?}", d.skipped);
        assert!(matches!(d.skipped[0].reason, SkipReason::BadValue(_)));
        assert!(matches!(d.skipped[1].reason, SkipReason::BadName(_)));
        // -0.0 and 0.1 (cPickle's protocol 0 writes 0.10000000000000001) survive exactly.
        let v = loads(&payload).unwrap();
        let last = &v.as_seq().unwrap()[5].as_seq().unwrap()[1];
        assert_eq!(tag(last), tag(&Value::Tuple(vec![Value::Float(0.1), Value::Float(-0.0)])));
    }
}

#[test]
fn python2_pickles_read_as_python3_reads_them() {
    if !reference::have_python_module("pickle") {
        return;
    }
    let input: Vec<&str> = PYTHON2_PICKLES.iter().map(|p| p.2).collect();
    let script = format!(
        "{PY_VALUES}\nprint(json.dumps([tag(safe_loads(bytes.fromhex(h))) for h in json.load(sys.stdin)]))"
    );
    let out: Vec<Json> = serde_json::from_slice(&reference::python(
        &script,
        &[],
        &serde_json::to_vec(&input).unwrap(),
    ))
    .unwrap();
    for (h, expected) in input.iter().zip(&out) {
        assert_eq!(tag(&loads(&unhex(h)).unwrap()), normalize(expected));
    }
}

// ---------------------------------------------------------------------------------------------
// Differential fuzzing: mutated pickles, Python's restricted unpickler against ours.

fn mutate(data: &[u8], runner: &mut TestRunner) -> Vec<u8> {
    let ops = prop::collection::vec((0u8..5, any::<usize>(), any::<u8>()), 1..4);
    let ops = ops.new_tree(runner).unwrap().current();
    let mut d = data.to_vec();
    for (kind, at, byte) in ops {
        if d.is_empty() {
            d.push(byte);
            continue;
        }
        let i = at % d.len();
        match kind {
            0 => d[i] = byte,
            1 => d.insert(i, byte),
            2 => {
                d.remove(i);
            }
            3 => d[i] ^= 1 << (byte % 8),
            // An opcode from the plain-data set, where real pickles have them.
            _ => d.insert(i, *b"(.0120FIJKLMNSTUVXadeghjlpqrstu}])\x80\x85\x86\x87\x88\x89\x8a\x8bBC\x8c\x8d\x8e\x94\x95".get(usize::from(byte) % 50).unwrap_or(&b'.')),
        }
    }
    d
}

#[test]
fn mutated_pickles_are_read_exactly_as_python_reads_them_or_refused() {
    if !reference::have_python_module("pickle") {
        return;
    }
    let mut runner = TestRunner::deterministic();
    let mut seeds: Vec<Vec<u8>> = PYTHON2_PICKLES.iter().map(|p| unhex(p.2)).collect();
    for v in sample(value(), 40) {
        seeds.push(dumps(&v));
    }
    // Protocol 0 to 5 pickles of a few values, from Python.
    let few: Vec<Json> = sample(value(), 12).iter().map(tag).collect();
    let script = format!(
        "{PY_VALUES}\nprint(json.dumps([pickle.dumps(build(j), protocol=p).hex() for j in json.load(sys.stdin) for p in range(6)]))"
    );
    let more: Vec<String> = serde_json::from_slice(&reference::python(
        &script,
        &[],
        &serde_json::to_vec(&few).unwrap(),
    ))
    .unwrap();
    seeds.extend(more.iter().map(|h| unhex(h)));
    let cases: Vec<Vec<u8>> =
        (0..4000).map(|i| mutate(&seeds[i % seeds.len()], &mut runner)).collect();
    let input: Vec<String> = cases.iter().map(|c| hex(c)).collect();
    // Python: the value, or the error's type. Memory is capped: CPython's memo grows to twice
    // a LONG_BINPUT key.
    let script = format!(
        "{PY_VALUES}\nresource.setrlimit(resource.RLIMIT_AS, (1 << 30, 1 << 30))\nsys.setrecursionlimit(200)\nout = []\nfor h in json.load(sys.stdin):\n    try:\n        out.append({{'ok': tag(safe_loads(bytes.fromhex(h)))}})\n    except RecursionError:\n        out.append({{'deep': 1}})\n    except Exception as e:\n        out.append({{'err': type(e).__name__}})\nprint(json.dumps(out))"
    );
    let out: Vec<Json> = serde_json::from_slice(&reference::python(
        &script,
        &[],
        &serde_json::to_vec(&input).unwrap(),
    ))
    .unwrap();
    let mut unpickler = UnpicklerBuilder::new().max_depth(40).build();
    let mut stats: BTreeMap<&str, usize> = BTreeMap::new();
    for (case, py) in cases.iter().zip(&out) {
        let ours = unpickler.loads(case);
        let kind = match (py.get("ok"), &ours) {
            (Some(expected), Ok(got)) => {
                let expected = normalize(expected);
                if has_dict_with_repeated_keys(got) {
                    "both read (repeated dict keys, not compared)"
                } else {
                    assert_eq!(tag(got), expected, "{}", hex(case));
                    "both read, same value"
                }
            }
            (None, Err(_)) => "both refused",
            (Some(expected), Err(e)) => {
                // Only what our model cannot hold, or our limits.
                let text = expected.to_string();
                let explained = text.contains("\"surrogate\"")
                    || text.contains("\"other\"")
                    || text.contains("\"cycle\"")
                    || matches!(
                        e,
                        PickleError::TooDeep { .. }
                            | PickleError::Cycle
                            | PickleError::FrameOverrun { .. }
                    )
                    || matches!(e, PickleError::UnsupportedOpcode { name, .. } if ["EMPTY_SET", "ADDITEMS", "FROZENSET", "BYTEARRAY8", "READONLY_BUFFER"].contains(name));
                assert!(explained, "Python reads {}, we refuse: {e}", hex(case));
                "python reads, we refuse (documented)"
            }
            (None, Ok(got)) => {
                // Python refuses only where it runs out: memory (a huge memo key) or recursion.
                let err = py.get("err").and_then(Json::as_str).unwrap_or("deep");
                assert!(
                    matches!(err, "MemoryError" | "deep") || py.get("deep").is_some(),
                    "Python refuses {} ({err}), we read {got:?}",
                    hex(case)
                );
                "python runs out, we read"
            }
        };
        *stats.entry(kind).or_default() += 1;
    }
    eprintln!("mutated pickles: {stats:?}");
    assert!(stats.get("both read, same value").copied().unwrap_or(0) > 300, "{stats:?}");
    assert!(stats.get("both refused").copied().unwrap_or(0) > 300, "{stats:?}");
}

#[test]
fn protocol_0_text_arguments_read_as_cpython_reads_them() {
    if !reference::have_python_module("pickle") {
        return;
    }
    // Lines from the characters that matter to int(), float(), strtol, escapes and quotes.
    let alphabet: Vec<u8> =
        b"0123456789+-_ \t.eEinfatyLlxXoObBu'\"\\U\x00\x0b\xe9\xc3\xa9".to_vec();
    let arg = prop::collection::vec(prop::sample::select(alphabet), 0..12);
    let args = sample(
        prop_oneof![
            3 => arg.clone(),
            1 => arg.prop_map(|mut a| { a.insert(0, b'\''); a.push(b'\''); a }),
            1 => "[0-9]{1,30}".prop_map(String::into_bytes),
            1 => "\\\\{1,3}[uU][0-9a-fA-F]{0,9}".prop_map(String::into_bytes),
        ],
        1500,
    );
    let mut cases = Vec::new();
    for (i, a) in args.iter().enumerate() {
        let mut c = match i % 6 {
            0 => b"I".to_vec(),
            1 => b"L".to_vec(),
            2 => b"F".to_vec(),
            3 => b"S".to_vec(),
            4 => b"V".to_vec(),
            _ => b"Np".to_vec(),
        };
        c.extend_from_slice(a);
        c.push(b'\n');
        if i % 6 == 5 {
            c.push(b'g');
            c.extend_from_slice(a);
            c.push(b'\n');
        }
        c.push(b'.');
        cases.push(c);
    }
    let input: Vec<String> = cases.iter().map(|c| hex(c)).collect();
    let script = format!(
        "{PY_VALUES}\nresource.setrlimit(resource.RLIMIT_AS, (1 << 30, 1 << 30))\nout = []\nfor h in json.load(sys.stdin):\n    try:\n        out.append(tag(safe_loads(bytes.fromhex(h))))\n    except Exception as e:\n        out.append({{'err': type(e).__name__}})\nprint(json.dumps(out))"
    );
    let out: Vec<Json> = serde_json::from_slice(&reference::python(
        &script,
        &[],
        &serde_json::to_vec(&input).unwrap(),
    ))
    .unwrap();
    let (mut read, mut refused) = (0, 0);
    for (case, py) in cases.iter().zip(&out) {
        let ours = loads(case);
        let shown = String::from_utf8_lossy(case);
        match (py.get("err"), ours) {
            (Some(_), Err(_)) => refused += 1,
            (None, Ok(v)) => {
                assert_eq!(tag(&v), normalize(py), "{shown:?}");
                read += 1;
            }
            (None, Err(e)) => {
                assert_eq!(py["t"], "surrogate", "Python reads {shown:?} as {py}, we refuse: {e}");
            }
            // CPython's memo grows to twice the largest PUT key; ours is sparse.
            (Some(err), Ok(_)) if err == "MemoryError" && case.starts_with(b"Np") => {}
            (Some(err), Ok(v)) => panic!("Python refuses {shown:?} ({err}), we read {v:?}"),
        }
    }
    assert!(read > 150 && refused > 150, "{read} read, {refused} refused");
}

fn has_dict_with_repeated_keys(v: &Value) -> bool {
    match v {
        Value::Dict(entries) => {
            let mut keys: Vec<String> =
                entries.iter().map(|(k, _)| format!("{:?}", key_class(k))).collect();
            keys.sort();
            let n = keys.len();
            keys.dedup();
            keys.len() != n
                || entries
                    .iter()
                    .any(|(k, v)| has_dict_with_repeated_keys(k) || has_dict_with_repeated_keys(v))
        }
        Value::List(items) | Value::Tuple(items) => items.iter().any(has_dict_with_repeated_keys),
        _ => false,
    }
}

/// Python's key equality, roughly: numbers compare by value (1 == 1.0 == True).
fn key_class(v: &Value) -> String {
    match v {
        Value::Bool(b) => format!("n{}", u8::from(*b)),
        Value::Int(i) => format!("n{}", *i as f64),
        Value::Float(f) => format!("n{f}"),
        other => format!("{:?}", tag(other)),
    }
}

// ---------------------------------------------------------------------------------------------
// carbon's receiver: which items it keeps.

/// Items a client might send: good ones and every kind of bad one.
fn client_item() -> impl Strategy<Value = Value> {
    let name = prop_oneof![
        4 => "[a-z]{1,6}(\\.[a-z0-9]{1,6}){0,3}".prop_map(|s| Value::str(&s)),
        1 => prop::sample::select(vec!["a..b", ".a", "a/b", "", "a\nb", "é.x", "a b", "c;t=v"]).prop_map(Value::str),
        1 => Just(Value::Int(5)),
        1 => Just(Value::None),
    ];
    let number = prop_oneof![
        3 => any::<f64>().prop_map(Value::Float),
        2 => any::<i64>().prop_map(Value::Int),
        1 => any::<bool>().prop_map(Value::Bool),
        2 => prop::sample::select(vec![
            "1.5", " 12 ", "\u{3000}7\t", "1e3", "inf", "-nan", "1_000", "abc", "", "0x10", "1__0", "١٢",
        ]).prop_map(Value::str),
        1 => Just(Value::None),
        1 => Just(Value::List(vec![])),
        1 => Just(Value::BigInt(BigInt::from_signed_bytes_le(&[0; 200].iter().chain(&[1]).copied().collect::<Vec<u8>>()))),
        1 => Just(Value::BigInt(BigInt::from_signed_bytes_le(&[0, 0, 0, 0, 0, 0, 0, 0, 0x40]))),
    ];
    let datapoint = prop_oneof![
        6 => (number.clone(), number.clone()).prop_map(|(t, v)| Value::Tuple(vec![t, v])),
        1 => (number.clone(), number.clone()).prop_map(|(t, v)| Value::List(vec![t, v])),
        1 => number.clone().prop_map(|t| Value::Tuple(vec![t])),
        1 => (number.clone(), number.clone(), number).prop_map(|(a, b, c)| Value::Tuple(vec![a, b, c])),
        1 => Just(Value::None),
    ];
    prop_oneof![
        8 => (name.clone(), datapoint.clone()).prop_map(|(n, d)| Value::Tuple(vec![n, d])),
        1 => (name.clone(), datapoint.clone()).prop_map(|(n, d)| Value::List(vec![n, d])),
        1 => name.prop_map(|n| Value::Tuple(vec![n])),
        1 => Just(Value::None),
        1 => datapoint,
    ]
}

/// carbon's `MetricPickleReceiver.stringReceived`, one item at a time, with `metricReceived`
/// recording instead of storing.
const CARBON_RECEIVER: &str = r#"
from carbon.protocols import MetricPickleReceiver
from carbon.util import get_unpickler
r = MetricPickleReceiver.__new__(MetricPickleReceiver)
r.unpickler = get_unpickler(insecure=False)
r.peerName = 'test'
received = []
r.metricReceived = lambda metric, datapoint: received.append([metric, datapoint])
out = []
for case in json.load(sys.stdin):
    items = [build(j) for j in case['items']]
    results = []
    for item in items:
        received.clear()
        try:
            r.stringReceived(pickle.dumps([item], protocol=case['protocol']))
        except Exception as e:
            results.append({'exception': type(e).__name__}); continue
        if received:
            (m, (t, v)), = received
            results.append({'metric': m, 'ts': tag(t), 'value': tag(v)})
        else:
            results.append({'skipped': 1})
    out.append({'payload': pickle.dumps(items, protocol=case['protocol']).hex(), 'results': results})
print(json.dumps(out))
"#;

#[test]
fn datapoints_are_kept_and_skipped_as_carbon_does() {
    if !reference::have_python_module("carbon.protocols") {
        return;
    }
    let batches = sample_big_stack(prop::collection::vec(client_item(), 0..30), 60);
    let input: Vec<Json> = batches
        .iter()
        .enumerate()
        .map(|(i, items)| json!({"protocol": i % 6, "items": items.iter().map(tag).collect::<Vec<_>>()}))
        .collect();
    let script = format!("{PY_VALUES}\n{CARBON_RECEIVER}");
    let out: Vec<Json> = serde_json::from_slice(&reference::python(
        &script,
        &[],
        &serde_json::to_vec(&input).unwrap(),
    ))
    .unwrap();
    let mut stats: BTreeMap<String, usize> = BTreeMap::new();
    for case in &out {
        let payload = unhex(case["payload"].as_str().unwrap());
        let mut ours = Vec::new();
        Unpickler::new()
            .decode_datapoints_with(&payload, |r| ours.push(r))
            .unwrap_or_else(|e| panic!("{e}: {}", hex(&payload)));
        let results = case["results"].as_array().unwrap();
        assert_eq!(ours.len(), results.len());
        for (ours, carbon) in ours.iter().zip(results) {
            let kind = match (ours, carbon.get("metric")) {
                (Ok(p), Some(m)) => {
                    assert_eq!(p.name.as_str(), m.as_str().unwrap());
                    assert_eq!(tag(&Value::Float(p.datapoint.timestamp)), normalize(&carbon["ts"]));
                    assert_eq!(tag(&Value::Float(p.datapoint.value)), normalize(&carbon["value"]));
                    "kept by both".to_string()
                }
                (Err(s), Some(_)) => match s.reason {
                    // carbon keeps names that cannot be stored safely; we do not.
                    SkipReason::BadName(_) => "carbon keeps a bad name".to_string(),
                    // carbon unpacks a 2-character string as a pair ("١٢" is 1.0, 2.0).
                    SkipReason::NotAPair { found: "str", .. }
                    | SkipReason::NotADatapoint { found: "str", .. } => {
                        "carbon unpacks a string".to_string()
                    }
                    _ => panic!("{s} but carbon kept {carbon}"),
                },
                (Err(s), None) if carbon.get("skipped").is_some() => {
                    assert!(
                        !matches!(
                            s.reason,
                            SkipReason::BadName(_)
                                | SkipReason::NameNotText { .. }
                                | SkipReason::NameNotUtf8 { .. }
                        ),
                        "{s}"
                    );
                    format!("both skip ({})", s.reason.kind())
                }
                (Err(s), None) => {
                    // carbon raises: a non-str name (AttributeError), or an int too large for
                    // a float (OverflowError); the connection dies.
                    let exc = carbon["exception"].as_str().unwrap();
                    match exc {
                        // Any reason: carbon's unpacking is looser than ours.
                        "AttributeError" => {}
                        "OverflowError" => assert!(
                            matches!(
                                s.reason,
                                SkipReason::BadTimestamp(_) | SkipReason::BadValue(_)
                            ),
                            "{s}"
                        ),
                        _ => panic!("carbon raised {exc}, we skipped: {s}"),
                    }
                    format!("carbon raises {exc}")
                }
                (Ok(p), None) => panic!("we keep {p:?}, carbon: {carbon}"),
            };
            *stats.entry(kind).or_default() += 1;
        }
    }
    eprintln!("carbon receiver: {stats:?}");
    assert!(stats.get("kept by both").copied().unwrap_or(0) > 100, "{stats:?}");
}

// ---------------------------------------------------------------------------------------------
// Round trips and "never panic".

proptest! {
    #![proptest_config(ProptestConfig { cases: 256, ..ProptestConfig::default() })]

    #[test]
    fn dumps_then_loads_gives_the_value(v in value()) {
        let got = loads(&dumps(&v)).unwrap();
        prop_assert_eq!(tag(&got), tag(&v));
    }

    #[test]
    fn encoded_datapoints_decode_to_the_same_points(
        items in prop::collection::vec(("[a-z]{1,8}(\\.[a-z0-9é_-]{1,8}){0,4}", any::<f64>(), any::<f64>()), 0..50)
    ) {
        let points: Vec<Point> = items.iter().map(|(n, t, v)| Point::new(MetricName::new(n).unwrap(), *t, *v)).collect();
        let mut wire = Vec::new();
        framed(&mut wire, |out| out.extend(encode_datapoints(&points))).unwrap();
        let mut buf = BytesMut::from(&wire[..]);
        let payload = FrameDecoder::new().decode(&mut buf).unwrap().unwrap();
        let decoded = decode_datapoints(&payload).unwrap();
        prop_assert!(decoded.skipped.is_empty());
        prop_assert_eq!(decoded.points.len(), points.len());
        for (a, b) in decoded.points.iter().zip(&points) {
            prop_assert_eq!(&a.name, &b.name);
            prop_assert_eq!(a.datapoint.timestamp.to_bits(), b.datapoint.timestamp.to_bits());
            prop_assert_eq!(a.datapoint.value.to_bits(), b.datapoint.value.to_bits());
        }
    }

    #[test]
    fn arbitrary_bytes_never_panic(data in prop::collection::vec(any::<u8>(), 0..300)) {
        let mut u = Unpickler::new();
        if let Ok(v) = u.loads_ref(&data) {
            walk(v);
        }
        let _ = u.loads(&data);
        let _ = u.decode_datapoints(&data);
    }

    #[test]
    fn opcode_soup_never_panics(data in prop::collection::vec(prop::sample::select(
        b"(.0120FIJKLMNSTUVXadeghjlpqrstu}])\x80\x85\x86\x87\x88\x89\x8a\x8bBC\x8c\x8d\x8e\x94\x95\x00\x01\x02\n'a".to_vec()), 0..200)) {
        let mut u = UnpicklerBuilder::new().max_values(5000).build();
        if let Ok(v) = u.loads_ref(&data) {
            walk(v);
        }
        let _ = u.loads(&data);
        let _ = u.decode_datapoints(&data);
    }

    #[test]
    fn mutated_pickles_never_panic(v in value(), muts in prop::collection::vec((any::<usize>(), any::<u8>(), 0u8..3), 1..5)) {
        let mut data = dumps(&v);
        for (at, byte, kind) in muts {
            let i = at % data.len();
            match kind {
                0 => data[i] = byte,
                1 => data.insert(i, byte),
                _ => { data.remove(i); if data.is_empty() { data.push(byte); } }
            }
        }
        let mut u = Unpickler::new();
        if let Ok(v) = u.loads_ref(&data) {
            walk(v);
        }
        let _ = u.loads(&data);
        let _ = u.decode_datapoints(&data);
    }

    #[test]
    fn frames_survive_any_chunking(
        payloads in prop::collection::vec(prop::collection::vec(any::<u8>(), 0..40), 0..6),
        cuts in prop::collection::vec(1usize..17, 1..40),
        max in 0usize..50,
    ) {
        let mut wire = Vec::new();
        for p in &payloads {
            encode_frame(&mut wire, p).unwrap();
        }
        let mut d = FrameDecoder::with_max_length(max);
        let mut buf = BytesMut::new();
        let (mut got, mut too_long) = (Vec::new(), 0);
        let mut rest = &wire[..];
        let mut cuts = cuts.iter().cycle();
        while !rest.is_empty() {
            let n = (*cuts.next().unwrap()).min(rest.len());
            buf.extend_from_slice(&rest[..n]);
            rest = &rest[n..];
            loop {
                match d.decode(&mut buf) {
                    Ok(Some(f)) => got.push(f.to_vec()),
                    Ok(None) => break,
                    Err(PickleError::FrameTooLong { .. }) => too_long += 1,
                    Err(e) => panic!("{e}"),
                }
            }
        }
        let expected: Vec<Vec<u8>> = payloads.iter().filter(|p| p.len() <= max).cloned().collect();
        prop_assert_eq!(got, expected);
        prop_assert_eq!(too_long, payloads.iter().filter(|p| p.len() > max).count());
        prop_assert!(buf.is_empty());
    }

    #[test]
    fn arbitrary_streams_never_panic_the_frame_decoder(data in prop::collection::vec(any::<u8>(), 0..200), max in 0usize..64) {
        let mut d = FrameDecoder::with_max_length(max);
        let mut buf = BytesMut::from(&data[..]);
        for _ in 0..100 {
            match d.decode(&mut buf) {
                Ok(Some(f)) => prop_assert!(f.len() <= max),
                Ok(None) => break,
                Err(_) => {}
            }
        }
        let _ = d.decode_eof(&mut buf);
    }
}

/// Touches every part of a decoded value through the borrowing API.
fn walk(v: carbon_proto::pickle::ValueRef<'_>) {
    fn go(v: carbon_proto::pickle::ValueRef<'_>, depth: usize, budget: &mut usize) {
        if *budget == 0 || depth > 50 {
            return;
        }
        *budget -= 1;
        let _ = (v.type_name(), v.as_str(), v.as_bytes(), v.as_i64(), v.as_f64(), v.py_float());
        if let Some(items) = v.seq() {
            for i in items {
                go(i, depth + 1, budget);
            }
        }
        if let Some(entries) = v.entries() {
            for (k, x) in entries {
                go(k, depth + 1, budget);
                go(x, depth + 1, budget);
            }
        }
        let _ = v.get("metric");
    }
    go(v, 0, &mut 10_000);
}

// ---------------------------------------------------------------------------------------------
// Hostile input: each a typed error, fast, with bounded memory.

#[test]
fn huge_declared_lengths_are_truncation_not_allocation() {
    for (payload, offset) in [
        (&b"\x80\x04\x8d\xff\xff\xff\xff\xff\xff\xff\x7fabc"[..], 2), // BINUNICODE8
        (b"\x80\x04\x8e\xff\xff\xff\xff\xff\xff\xff\xffabc", 2),      // BINBYTES8
        (b"X\xff\xff\xff\xffabc", 0),                                 // BINUNICODE
        (b"B\xff\xff\xff\xff", 0),                                    // BINBYTES
        (b"\x8b\xff\xff\xff\x7f\x01", 0),                             // LONG4
        (b"\x80\x04\x95\xff\xff\xff\xff\xff\xff\xff\xffN.", 2),       // FRAME
        (b"T\xff\xff\xff\x7fabc", 0),                                 // BINSTRING
    ] {
        assert_eq!(loads(payload), Err(PickleError::Truncated { offset }), "{payload:?}");
    }
    assert!(matches!(
        loads(b"T\xff\xff\xff\xffabc"),
        Err(PickleError::BadArgument { opcode: "BINSTRING", reason: "negative length", .. })
    ));
    assert!(matches!(
        loads(b"\x8b\xff\xff\xff\xff"),
        Err(PickleError::BadArgument { opcode: "LONG4", reason: "negative length", .. })
    ));
}

#[test]
fn deep_nesting_is_refused_when_building_values_and_harmless_when_walking() {
    let n = 200_000;
    // n empty lists, each appended to the one below: nesting n deep.
    let mut p = vec![b']'; n];
    p.extend(std::iter::repeat_n(b'a', n - 1));
    p.push(b'.');
    assert_eq!(loads(&p), Err(PickleError::TooDeep { max: 64 }));
    let d = decode_datapoints(&p).unwrap();
    assert!(matches!(d.skipped[0].reason, SkipReason::NotAPair { len: Some(1), .. }));
    // Nested one-tuples: 1 byte a level.
    let mut p = b"N".to_vec();
    p.extend(std::iter::repeat_n(0x85, n));
    p.push(b'.');
    assert_eq!(loads(&p), Err(PickleError::TooDeep { max: 64 }));
    let mut u = UnpicklerBuilder::new().max_depth(n + 10).build();
    assert!(u.loads_ref(&p).is_ok());
}

#[test]
fn memo_bombs_are_cut_off_by_the_value_budget() {
    // L0 = []; L(k+1) = [Lk] * 100, each fetched from the memo: 100^6 values as a tree.
    let mut p = b"\x80\x02]q\x00".to_vec();
    for k in 0..6u8 {
        p.extend_from_slice(b"](");
        for _ in 0..100 {
            p.extend_from_slice(&[b'h', k]);
        }
        p.extend_from_slice(&[b'e', b'q', k + 1]);
    }
    p.push(b'.');
    assert!(p.len() < 2000);
    let start = std::time::Instant::now();
    assert!(matches!(loads(&p), Err(PickleError::TooManyValues { .. })));
    // Walking shares: instant.
    let mut u = Unpickler::new();
    let top = u.loads_ref(&p).unwrap();
    assert_eq!(top.seq().unwrap().len(), 100);
    let d = decode_datapoints(&p).unwrap();
    assert_eq!(d.skipped.len(), 100);
    assert!(start.elapsed().as_secs() < 5);
    // Strings shared through the memo are shared in the built value too.
    let big = "x".repeat(100_000);
    let mut p = b"\x80\x02]q\x00(X\xa0\x86\x01\x00".to_vec();
    p.extend_from_slice(big.as_bytes());
    p.extend_from_slice(b"q\x01");
    for _ in 1..1000 {
        p.extend_from_slice(b"h\x01");
    }
    p.extend_from_slice(b"e.");
    let got = loads(&p).unwrap();
    let Value::List(got) = got else { panic!() };
    let (Value::Str(a), Value::Str(b)) = (&got[0], &got[999]) else { panic!() };
    assert!(std::sync::Arc::ptr_eq(a, b));
}

#[test]
fn cycles_are_refused_when_building_values() {
    // l = []; l.append(l)
    let p = b"\x80\x02]q\x00h\x00a.";
    assert_eq!(loads(p), Err(PickleError::Cycle));
    let d = decode_datapoints(p).unwrap();
    assert_eq!(d.skipped.len(), 1);
    // A dict holding itself.
    assert_eq!(loads(b"}q\x00K\x01h\x00s."), Err(PickleError::Cycle));
}

#[test]
fn the_memo_is_bounded_and_sparse_keys_cost_nothing() {
    let mut p = b"N".to_vec();
    p.extend(std::iter::repeat_n(0x94, 20));
    p.push(b'.');
    let mut u = UnpicklerBuilder::new().max_memo(10).build();
    assert!(matches!(u.loads(&p), Err(PickleError::MemoFull { max: 10, .. })));
    // CPython resizes its memo to twice this key (32 GiB); we keep one entry.
    assert_eq!(loads(b"Nr\xff\xff\xff\xffj\xff\xff\xff\xff."), Ok(Value::None));
    assert_eq!(loads(b"Np99999999999\ng99999999999\n."), Ok(Value::None));
    assert_eq!(loads(b"h\x05."), Err(PickleError::MemoMissing { key: 5, offset: 0 }));
    assert!(matches!(loads(b"Np-1\n."), Err(PickleError::BadArgument { opcode: "PUT", .. })));
}

#[test]
fn object_opcodes_are_refused_by_name() {
    for (payload, name, offset) in [
        (&b"\x80\x02cos\nsystem\nq\x00X\x02\x00\x00\x00lsq\x01\x85q\x02Rq\x03."[..], "GLOBAL", 2),
        (
            b"\x80\x04\x95\x0e\x00\x00\x00\x00\x00\x00\x00\x8c\x02os\x8c\x06system\x93.",
            "STACK_GLOBAL",
            23,
        ),
        (b"(N}b.", "BUILD", 3),
        (b"(ios\nsystem\n.", "INST", 1),
        (b"(No.", "OBJ", 2),
        (b"NN\x81.", "NEWOBJ", 2),
        (b"Pfoo\n.", "PERSID", 0),
        (b"NQ.", "BINPERSID", 1),
        (b"NR.", "REDUCE", 1),
        (b"\x82\x01.", "EXT1", 0),
        (b"\x8f.", "EMPTY_SET", 0),
        (b"\x80\x05\x96\x00\x00\x00\x00\x00\x00\x00\x00.", "BYTEARRAY8", 2),
        (b"\x97.", "NEXT_BUFFER", 0),
    ] {
        match loads(payload) {
            Err(PickleError::UnsupportedOpcode { name: n, offset: o, .. }) => {
                assert_eq!((n, o), (name, offset), "{payload:?}");
            }
            other => panic!("{payload:?}: {other:?}"),
        }
    }
    assert_eq!(loads(b"N\xff."), Err(PickleError::UnknownOpcode { opcode: 0xff, offset: 1 }));
    assert_eq!(
        loads(b"\x80\x06N."),
        Err(PickleError::UnsupportedProtocol { version: 6, offset: 0 })
    );
}

#[test]
fn malformed_structure_is_a_typed_error() {
    assert_eq!(loads(b""), Err(PickleError::Truncated { offset: 0 }));
    assert_eq!(loads(b"N"), Err(PickleError::Truncated { offset: 1 }));
    assert_eq!(loads(b"."), Err(PickleError::StackUnderflow { opcode: "STOP", offset: 0 }));
    assert_eq!(loads(b"N(."), Err(PickleError::StackUnderflow { opcode: "STOP", offset: 2 }));
    assert_eq!(loads(b"(N."), Ok(Value::None));
    assert_eq!(loads(b"Ne."), Err(PickleError::MissingMark { opcode: "APPENDS", offset: 1 }));
    assert!(matches!(
        loads(b"K\x01K\x02a."),
        Err(PickleError::WrongTarget { expected: "list", found: "int", .. })
    ));
    assert!(matches!(
        loads(b"]K\x01K\x02s."),
        Err(PickleError::WrongTarget { expected: "dict", found: "list", .. })
    ));
    assert!(matches!(loads(b"}(K\x01u."), Err(PickleError::OddItems { opcode: "SETITEMS", .. })));
    assert!(matches!(loads(b"}]K\x01s."), Err(PickleError::UnhashableKey { found: "list", .. })));
    assert!(matches!(
        loads(b"}]\x85K\x01s."),
        Err(PickleError::UnhashableKey { found: "tuple", .. })
    ));
    assert!(matches!(
        loads(b"X\x02\x00\x00\x00\xc3(."),
        Err(PickleError::InvalidUtf8 { offset: 0, at: 0 })
    ));
    assert!(matches!(loads(b"S'\xff'\n."), Err(PickleError::InvalidUtf8 { .. })));
    assert!(matches!(
        loads(b"Vx\\ud800\n."),
        Err(PickleError::BadArgument { opcode: "UNICODE", .. })
    ));
    assert!(matches!(loads(b"F1e999\n."), Err(PickleError::BadArgument { opcode: "FLOAT", .. })));
    assert!(matches!(loads(b"I12"), Err(PickleError::Truncated { offset: 0 })));
    // An opcode that crosses the end of its FRAME (CPython reads this one way from bytes and
    // another from a file), and a FRAME inside a frame.
    assert_eq!(
        loads(b"\x80\x04\x95\x04\x00\x00\x00\x00\x00\x00\x00G\xab\x7f\xf8\x00\x00\x00\x00\x00\x00\x85\x94."),
        Err(PickleError::FrameOverrun { offset: 11 })
    );
    assert_eq!(
        loads(
            b"\x80\x04\x95\x0b\x00\x00\x00\x00\x00\x00\x00\x95\x01\x00\x00\x00\x00\x00\x00\x00N."
        ),
        Err(PickleError::FrameOverrun { offset: 11 })
    );
    assert_eq!(
        loads(b"\x80\x04\x95\x02\x00\x00\x00\x00\x00\x00\x00I1\n."),
        Err(PickleError::FrameOverrun { offset: 11 })
    );
    // Frames that end where their opcodes end are fine, one after the other or not.
    assert_eq!(
        loads(b"\x80\x04\x95\x01\x00\x00\x00\x00\x00\x00\x00N\x95\x01\x00\x00\x00\x00\x00\x00\x00\x85."),
        Ok(Value::Tuple(vec![Value::None]))
    );
    // What CPython accepts, we accept: a tuple of a list is a fine value, just not a key.
    assert_eq!(loads(b"]\x85."), Ok(Value::Tuple(vec![Value::List(vec![])])));
    // APPENDS with nothing to append does not look at its target (CPython's order of checks).
    assert_eq!(loads(b"K\x01(e."), Ok(Value::Int(1)));
    // The top of the stack wins; trailing bytes after STOP are ignored, as by pickle.loads.
    assert_eq!(loads(b"K\x01K\x02.garbage"), Ok(Value::Int(2)));
}

#[test]
fn payloads_that_are_not_lists_fail_the_frame() {
    assert_eq!(
        decode_datapoints(&dumps(&Value::Dict(vec![]))),
        Err(PickleError::NotDatapoints { found: "dict" })
    );
    assert_eq!(decode_datapoints(b"N."), Err(PickleError::NotDatapoints { found: "NoneType" }));
    // A tuple of items is fine.
    let items = Value::Tuple(vec![Value::Tuple(vec![
        Value::Bytes(Bytes::from_static(b"a.b")),
        Value::Tuple(vec![Value::Int(1), Value::str("2")]),
    ])]);
    let d = decode_datapoints(&dumps(&items)).unwrap();
    assert_eq!(d.points, [Point::new(MetricName::new("a.b").unwrap(), 1.0, 2.0)]);
    let items = Value::List(vec![Value::Tuple(vec![
        Value::Bytes(Bytes::from_static(b"a\xff")),
        Value::Tuple(vec![Value::Int(1), Value::Int(2)]),
    ])]);
    let d = decode_datapoints(&dumps(&items)).unwrap();
    assert_eq!(d.skipped[0].reason, SkipReason::NameNotUtf8 { at: 1 });
    assert_eq!(d.skipped_by_kind(), [("name_not_utf8", 1)]);
    assert_eq!(d.skipped[0].to_string(), "item 0: metric name is not UTF-8 (invalid byte at 1)");
}

#[test]
fn oversized_and_truncated_frames_are_typed_errors() {
    let mut d = FrameDecoder::new();
    let mut buf = BytesMut::from(&b"\x00\x10\x00\x01"[..]);
    assert_eq!(
        d.decode(&mut buf),
        Err(PickleError::FrameTooLong { length: 0x0010_0001, max: 1 << 20 })
    );
    // Plaintext sent to the pickle port: "a.b." is a length of 1.6 GB.
    let mut d = FrameDecoder::new();
    let mut buf = BytesMut::from(&b"a.b.c 1 1700000000\n"[..]);
    assert!(matches!(
        d.decode(&mut buf),
        Err(PickleError::FrameTooLong { length: 0x612e_622e, .. })
    ));
    let mut d = FrameDecoder::new();
    let mut buf = BytesMut::from(&b"\x00\x00\x01\x00abc"[..]);
    assert_eq!(d.decode(&mut buf), Ok(None));
    assert_eq!(
        d.decode_eof(&mut buf),
        Err(PickleError::TruncatedFrame { expected: 260, received: 7 })
    );
    // A frame at exactly the limit is accepted.
    let mut d = FrameDecoder::with_max_length(3);
    let mut buf = BytesMut::from(&b"\x00\x00\x00\x03abc"[..]);
    assert_eq!(d.decode(&mut buf).unwrap().as_deref(), Some(&b"abc"[..]));
}

#[test]
fn one_unpickler_reuses_its_buffers_across_payloads() {
    let mut u = Unpickler::new();
    let a = dumps(&Value::List(vec![Value::str("a"), Value::Int(1)]));
    let b = loads(b"(lp0\nS'x'\np1\na.").unwrap();
    for _ in 0..3 {
        assert_eq!(u.loads(&a).unwrap().as_seq().unwrap().len(), 2);
        assert_eq!(u.loads(b"(lp0\nS'x'\np1\na.").unwrap(), b);
        assert!(u.loads(b"\x80\x02h\x00.").is_err());
    }
}
