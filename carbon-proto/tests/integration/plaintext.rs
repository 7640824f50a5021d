//! Tests of `carbon_proto::plaintext`: the line parser against carbon's own rules (run by
//! Python), stream framing that does not depend on how bytes are chunked, round trips, and
//! hostile input.

use bytes::BytesMut;
use carbon_proto::plaintext::{LineDecoder, LineError, decode_datagram, encode_line, parse_line};
use carbon_proto::{MetricName, parse_py_float};
use proptest::prelude::*;
use proptest::strategy::ValueTree;
use serde_json::Value;

use crate::reference;

/// carbon 1.1.7's `MetricLineReceiver.lineReceived` parsing, applied to hex-encoded lines;
/// prints one JSON answer per line.
const CARBON_LINE_RULES: &str = r#"
import json, struct, sys
out = []
for raw in json.load(sys.stdin):
    b = bytes.fromhex(raw)
    try:
        line = b.decode('utf-8')
    except UnicodeDecodeError:
        out.append(['notutf8']); continue
    try:
        metric, value, timestamp = line.strip().split()
        datapoint = (float(timestamp), float(value))
    except ValueError:
        out.append(['bad']); continue
    out.append(['ok', metric, struct.pack('>d', datapoint[0]).hex(), struct.pack('>d', datapoint[1]).hex()])
print(json.dumps(out))
"#;

/// Fields that exercise Python's `float()` and `str.split()`.
fn number() -> impl Strategy<Value = String> {
    prop_oneof![
        (-1_000_000i64..1_000_000).prop_map(|v| v.to_string()),
        any::<f64>().prop_map(|v| format!("{v}")),
        any::<f64>().prop_map(|v| format!("{v:e}")),
        prop::sample::select(vec![
            "inf",
            "-inf",
            "+Infinity",
            "nan",
            "NaN",
            "-nan",
            "1_000",
            "1__0",
            "_1",
            "1_",
            "1e1_0",
            "0x10",
            ".5",
            "5.",
            ".",
            "-",
            "1e",
            "e1",
            "1.5e+3",
            "١٢",
            "1,5",
            "",
            "00012",
            "+0",
        ])
        .prop_map(String::from),
        "[0-9._eE+-]{1,8}",
    ]
}

fn name() -> impl Strategy<Value = String> {
    prop_oneof![
        "[a-z]{1,6}(\\.[a-z0-9_-]{1,6}){0,4}",
        "[a-z]{1,4};[a-z]{1,3}=[a-z0-9]{1,3}",
        "[a-zé中\\.\\-;=~/]{1,10}",
    ]
}

fn separator() -> impl Strategy<Value = String> {
    prop::sample::select(vec![
        " ", "  ", "\t", " \t ", "\x0b", "\x1c", "\u{a0}", "\u{3000}", "\u{200b}", "",
    ])
    .prop_map(String::from)
}

/// A line as a collector might send it, or a broken one.
fn line() -> impl Strategy<Value = Vec<u8>> {
    prop_oneof![
        8 => (separator(), name(), separator(), number(), separator(), number(), separator(), prop::bool::ANY)
            .prop_map(|(a, n, b, v, c, t, d, cr)| {
                let mut s = format!("{a}{n}{b}{v}{c}{t}{d}");
                if cr {
                    s.push('\r');
                }
                s.into_bytes()
            }),
        1 => prop::collection::vec(any::<u8>(), 0..24),
        1 => (name(), number()).prop_map(|(n, v)| format!("{n} {v}").into_bytes()),
    ]
}

#[test]
fn lines_parse_as_carbon_parses_them() {
    if !std::path::Path::new(reference::PYTHON).exists() {
        reference::missing("/usr/bin/python3 does not exist");
        return;
    }
    let mut runner = proptest::test_runner::TestRunner::deterministic();
    let strategy = prop::collection::vec(line(), 2000);
    let lines = strategy.new_tree(&mut runner).expect("strategy").current();
    let input: Vec<String> = lines.iter().map(|l| hex(l)).collect();
    let out = reference::python(
        CARBON_LINE_RULES,
        &[],
        serde_json::to_string(&input).expect("json").as_bytes(),
    );
    let answers: Vec<Value> = serde_json::from_slice(&out).expect("python answered JSON");
    assert_eq!(answers.len(), lines.len());
    let mut checked = [0usize; 4];
    for (line, answer) in lines.iter().zip(&answers) {
        let ours = parse_line(line);
        let kind = answer[0].as_str().expect("kind");
        match (kind, &ours) {
            ("ok", Ok(l)) => {
                assert_eq!(l.name, answer[1].as_str().expect("name"), "{line:?}");
                assert_eq!(
                    hex(&l.timestamp.to_be_bytes()),
                    answer[2].as_str().expect("ts"),
                    "{line:?}"
                );
                assert_eq!(hex(&l.value.to_be_bytes()), answer[3].as_str().expect("v"), "{line:?}");
                checked[0] += 1;
            }
            // We refuse names carbon would store under odd paths.
            ("ok", Err(LineError::Name(_))) => {
                let name = answer[1].as_str().expect("name");
                assert!(MetricName::new(name).is_err(), "{name:?} was refused but is fine");
                checked[1] += 1;
            }
            ("notutf8", Err(LineError::NotUtf8 { .. })) => checked[2] += 1,
            (
                "bad",
                Err(
                    LineError::FieldCount { .. }
                    | LineError::BadValue(_)
                    | LineError::BadTimestamp(_),
                ),
            ) => checked[3] += 1,
            _ => panic!("{line:?}: carbon says {answer}, we say {ours:?}"),
        }
    }
    // The generator must reach every kind of answer.
    assert!(checked.iter().all(|&n| n > 20), "coverage {checked:?}");
}

/// Python's float() on the same strings as `parse_py_float`.
#[test]
fn py_float_matches_python_float() {
    if !std::path::Path::new(reference::PYTHON).exists() {
        reference::missing("/usr/bin/python3 does not exist");
        return;
    }
    let mut runner = proptest::test_runner::TestRunner::deterministic();
    let inputs = prop::collection::vec(number(), 3000).new_tree(&mut runner).expect("s").current();
    let script = r#"
import json, struct, sys
out = []
for s in json.load(sys.stdin):
    try:
        out.append(struct.pack('>d', float(s)).hex())
    except ValueError:
        out.append(None)
print(json.dumps(out))
"#;
    let out =
        reference::python(script, &[], serde_json::to_string(&inputs).expect("json").as_bytes());
    let answers: Vec<Option<String>> = serde_json::from_slice(&out).expect("json");
    for (s, want) in inputs.iter().zip(answers) {
        let ours = parse_py_float(s).map(|v| hex(&v.to_be_bytes()));
        // NaN payloads may differ in sign between Rust and CPython; compare NaN as NaN.
        let nan = |h: &str| f64::from_bits(u64::from_str_radix(h, 16).expect("hex")).is_nan();
        match (&ours, &want) {
            (Some(a), Some(b)) if nan(a) && nan(b) => {}
            _ => assert_eq!(ours, want, "float({s:?})"),
        }
    }
}

fn hex(b: &[u8]) -> String {
    b.iter().map(|x| format!("{x:02x}")).collect()
}

/// Everything the decoder reports for `stream`, fed in the given chunk sizes.
fn decode_in_chunks(
    stream: &[u8],
    chunks: &[usize],
    max_line: usize,
) -> Vec<Result<String, LineError>> {
    let mut decoder = LineDecoder::with_max_line(max_line);
    let mut buf = BytesMut::new();
    let mut out = Vec::new();
    let mut at = 0;
    let mut sizes = chunks.iter().cycle();
    while at < stream.len() {
        let n = (*sizes.next().unwrap_or(&1)).max(1).min(stream.len() - at);
        buf.extend_from_slice(&stream[at..at + n]);
        at += n;
        decoder.decode(&mut buf, |r| {
            out.push(
                r.map(|l| format!("{} {} {}", l.name, l.value, l.timestamp))
                    .map_err(|b| b.error.clone()),
            )
        });
        assert!(buf.len() <= max_line + n, "buffer grew past the line limit");
    }
    decoder.decode_eof(&mut buf, |r| {
        out.push(
            r.map(|l| format!("{} {} {}", l.name, l.value, l.timestamp))
                .map_err(|b| b.error.clone()),
        )
    });
    out
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 256, ..ProptestConfig::default() })]

    /// The batch API (decode into a Vec, then advance) sees what the closure API sees.
    #[test]
    fn batches_see_what_the_closure_sees(
        lines in prop::collection::vec(line(), 0..40),
        chunks in prop::collection::vec(1usize..64, 1..8),
        max_line in 8usize..64,
    ) {
        let mut stream = Vec::new();
        for l in &lines {
            stream.extend_from_slice(l);
            stream.push(b'\n');
        }
        let mut expected = decode_in_chunks(&stream, &chunks, max_line);
        // decode_in_chunks ends with decode_eof; a final unterminated line is none here.
        let mut decoder = LineDecoder::with_max_line(max_line);
        let mut buf = BytesMut::new();
        let mut got = Vec::new();
        let mut at = 0;
        let mut sizes = chunks.iter().cycle();
        while at < stream.len() {
            let n = (*sizes.next().unwrap_or(&1)).max(1).min(stream.len() - at);
            buf.extend_from_slice(&stream[at..at + n]);
            at += n;
            let mut batch = Vec::new();
            let mut bad = Vec::new();
            let used = decoder.decode_batch(&buf, &mut batch, |b| bad.push(b.error.clone()));
            // Interleave as the closure API would: good and bad in line order is not kept by
            // the batch form, so compare as multisets per read.
            let mut round: Vec<Result<String, LineError>> =
                batch.iter().map(|l| Ok(format!("{} {} {}", l.name, l.value, l.timestamp))).collect();
            round.extend(bad.into_iter().map(Err));
            got.extend(round);
            bytes::Buf::advance(&mut buf, used);
        }
        let key = |r: &Result<String, LineError>| format!("{r:?}");
        expected.sort_by_key(key);
        got.sort_by_key(key);
        prop_assert_eq!(expected, got);
    }

    /// However the bytes arrive, the decoder sees the same lines.
    #[test]
    fn chunking_does_not_change_what_is_decoded(
        lines in prop::collection::vec(line(), 0..40),
        chunks in prop::collection::vec(1usize..64, 1..8),
        max_line in 8usize..64,
    ) {
        let mut stream = Vec::new();
        for l in &lines {
            stream.extend_from_slice(l);
            stream.push(b'\n');
        }
        let whole = decode_in_chunks(&stream, &[stream.len().max(1)], max_line);
        let chunked = decode_in_chunks(&stream, &chunks, max_line);
        prop_assert_eq!(whole, chunked);
    }

    /// Arbitrary bytes never panic, in any chunking, as a stream or a datagram.
    #[test]
    fn arbitrary_bytes_never_panic(
        bytes in prop::collection::vec(any::<u8>(), 0..512),
        chunks in prop::collection::vec(1usize..100, 1..6),
    ) {
        let _ = decode_in_chunks(&bytes, &chunks, 64);
        decode_datagram(&bytes, |_| {});
        let _ = parse_line(&bytes);
    }

    /// What `encode_line` writes, the decoder reads back (to `%.10f` precision).
    #[test]
    fn encoded_lines_decode(
        names in prop::collection::vec("[a-z]{1,8}(\\.[a-z0-9_]{1,8}){0,3}", 1..20),
        value in -1e9f64..1e9,
        ts in 0i64..4_000_000_000,
    ) {
        let mut out = Vec::new();
        for n in &names {
            encode_line(&mut out, n, value, ts as f64);
        }
        let mut buf = BytesMut::from(&out[..]);
        let got = LineDecoder::new().decode_to_vec(&mut buf);
        prop_assert_eq!(got.len(), names.len());
        for (p, n) in got.iter().zip(&names) {
            let p = p.as_ref().expect("good line");
            prop_assert_eq!(p.name.as_str(), n.as_str());
            prop_assert_eq!(p.datapoint.timestamp, ts as f64);
            prop_assert!((p.datapoint.value - value).abs() <= 1e-10 * value.abs().max(1.0));
        }
    }
}

#[test]
fn a_connection_keeps_its_good_lines_around_every_kind_of_bad_one() {
    let stream: &[u8] = b"good.one 1 1700000000\n\
        \xff\xfe bad utf8\n\
        too many fields here 1 2\n\
        bad.value x 1700000000\n\
        bad..name 1 1700000000\n\
        good.two 2 1700000060\r\n\
        \n\
        good.three nan 1700000120\n";
    let got = decode_in_chunks(stream, &[7], 1024);
    let good: Vec<&String> = got.iter().flatten().collect();
    assert_eq!(good.len(), 3, "{got:?}");
    assert_eq!(got.iter().filter(|r| r.is_err()).count(), 5);
}
