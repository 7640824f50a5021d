//! Tests of `carbon_proto::opentsdb`: OpenTSDB's documented lines and its test suite's
//! values, OpenTSDB's replies, round trips and hostile input.

use bytes::BytesMut;
use carbon_proto::opentsdb::{
    Command, LineDecoder, NameKind, NumberError, OpenTsdbError, Put, Request, Timestamp, Value,
    parse_line, parse_put,
};
use carbon_proto::tags::normalize;
use proptest::prelude::*;

fn put(line: &str) -> Put<'_> {
    match parse_line(line.as_bytes()) {
        Ok(Request::Put(p)) => p,
        other => panic!("{line:?}: {other:?}"),
    }
}

fn err(line: &str) -> OpenTsdbError {
    parse_line(line.as_bytes()).unwrap_err()
}

/// OpenTSDB's "Writing Data" and telnet `put` pages: the documented example lines.
#[test]
fn opentsdb_documented_examples() {
    let p = put("put sys.cpu.user 1356998400 42.5 host=webserver01 cpu=0");
    let point = p.to_point();
    assert_eq!(point.name.as_str(), "sys.cpu.user;cpu=0;host=webserver01");
    assert_eq!((point.datapoint.timestamp, point.datapoint.value), (1356998400.0, 42.5));

    // "Millisecond timestamps must be of the format 1364410924250 where the final three
    // digits represent the milliseconds."
    let p = put("put sys.cpu.user 1364410924250 42.5 host=webserver01 cpu=0");
    assert!(p.timestamp().is_milliseconds());
    assert_eq!(p.to_point().datapoint.timestamp, 1364410924.25);

    // The tag examples of the "Metrics and Tags" page.
    let p = put("put sys.cpu.user 1234567890 1 host=webserver01 cpu=0 type=idle");
    assert_eq!(p.name().as_str(), "sys.cpu.user;cpu=0;host=webserver01;type=idle");
    // At least one tag is required.
    assert_eq!(err("put sys.cpu.user 1234567890 1"), OpenTsdbError::NotEnoughArguments { got: 3 });
}

/// The values OpenTSDB's `test/tsd/TestPutRpc.java` puts for `sys.cpu.nice` at 1365465600
/// with `host=web01` (`putNegativeInt`, `putFloat`, `putSEBig`, `putSECaseTiny`, ...).
#[test]
fn opentsdb_put_rpc_test_values() {
    for (text, value) in [
        ("42", Value::Integer(42)),
        ("-42", Value::Integer(-42)),
        ("42.2", Value::Float(42.2)),
        ("-42.2", Value::Float(-42.2)),
        ("4.22e3", Value::Float(4220.0)),
        ("4.22E3", Value::Float(4220.0)),
        ("-4.22e3", Value::Float(-4220.0)),
        ("-4.22E3", Value::Float(-4220.0)),
        ("4.2e-3", Value::Float(0.0042)),
        ("4.2E-3", Value::Float(0.0042)),
        ("-4.2e-3", Value::Float(-0.0042)),
        ("-4.2E-3", Value::Float(-0.0042)),
    ] {
        let line = format!("put sys.cpu.nice 1365465600 {text} host=web01");
        let p = put(&line);
        assert_eq!(p.value(), value, "{line}");
        assert_eq!(p.name().as_str(), "sys.cpu.nice;host=web01");
        assert_eq!(p.timestamp().raw(), 1365465600);
    }
}

/// OpenTSDB's `test/core/TestTags.java` cases for `Tags.parse` and `validateString`, as put
/// lines: `foo=bar` is fine; `foo`, `=bar`, `foo=`, `foo=bar=baz` are invalid; the same tag
/// twice is fine with the same value and a duplicate otherwise; `a:b` is an illegal
/// character.
#[test]
fn opentsdb_tags_test_cases() {
    assert_eq!(put("put m 1 1 foo=bar").tags(), &[("foo", "bar")]);
    for tag in ["foo", "=bar", "foo=", "foo=bar=baz", "="] {
        assert_eq!(err(&format!("put m 1 1 {tag}")), OpenTsdbError::InvalidTag { tag: tag.into() });
    }
    assert_eq!(put("put m 1 1 foo=bar foo=bar").tags(), &[("foo", "bar")]);
    assert_eq!(
        err("put m 1 1 foo=bar foo=qux"),
        OpenTsdbError::DuplicateTag { tag: "foo=qux".into(), previous: "bar".into() }
    );
    assert!(matches!(
        err("put m 1 1 a:b=c"),
        OpenTsdbError::IllegalCharacter { what: NameKind::TagName, character: ':', .. }
    ));
    assert!(matches!(
        err("put sys.cpu$ 1 1 a=b"),
        OpenTsdbError::IllegalCharacter { what: NameKind::MetricName, character: '$', .. }
    ));
    // Unicode letters are allowed (`Character.isLetter`), other symbols are not.
    assert_eq!(put("put 温度 1 1 城市=北京").name().as_str(), "温度;城市=北京");
    assert!(matches!(err("put m 1 1 a=€"), OpenTsdbError::IllegalCharacter { character: '€', .. }));
}

#[test]
fn opentsdb_replies_on_the_telnet_connection() {
    let reply = |l: &str| err(l).telnet_reply();
    assert_eq!(reply("hello"), "unknown command: hello.  Try `help'.\n");
    assert_eq!(
        reply("put sys.cpu.user"),
        "put: illegal argument: not enough arguments (need least 4, got 1)\n"
    );
    assert_eq!(reply("put  1 1 a=b"), "put: illegal argument: empty metric name\n");
    assert_eq!(reply("put m 0 1 a=b"), "put: illegal argument: invalid timestamp: 0\n");
    assert_eq!(reply("put m 1  a=b"), "put: illegal argument: empty value\n");
    assert_eq!(reply("put m 1 1 a"), "put: illegal argument: invalid tag: a\n");
    assert_eq!(reply("put m - 1 a=b"), "put: invalid value: Just a sign, no value: -\n");
    assert_eq!(
        reply("put m 123456789012345678901 1 a=b"),
        "put: invalid value: Value too long: 123456789012345678901\n"
    );
    assert_eq!(
        reply("put m 9223372036854775808 1 a=b"),
        "put: invalid value: Overflow in 9223372036854775808\n"
    );
    assert_eq!(reply("put m 1 . a=b"), "put: invalid value: For input string: \".\"\n");
    assert_eq!(
        reply("put m 1 1 a=b c=d e=f g=h i=j k=l m=n o=p q=r"),
        "put: illegal argument: Too many tags: 9 maximum allowed: 8\n"
    );
    assert_eq!(
        reply("put m/x 1 1 a=b"),
        "put: illegal argument: metric \"m/x;a=b\" cannot be stored: metric name has '/' at byte 1, which would make a directory\n"
    );
}

#[test]
fn graphite_decisions() {
    // `/` in the metric is refused; in tag names and values it is kept.
    assert!(matches!(err("put proc/net 1 1 a=b"), OpenTsdbError::Name { .. }));
    assert_eq!(put("put df.bytes 1 1 mount=/var/log").name().as_str(), "df.bytes;mount=/var/log");
    // A tag named `name` would be swallowed by carbon's normalisation.
    assert_eq!(
        err("put io.read 1 1 name=vda2"),
        OpenTsdbError::ReservedTag { tag: "name=vda2".into() }
    );
    // A collector line without `put` is what tcollector prints; the TSD refuses it.
    let collector = "proc.stat.cpu 1700000000 12345 type=user";
    assert_eq!(err(collector), OpenTsdbError::UnknownCommand { command: "proc.stat.cpu".into() });
    assert_eq!(parse_put(collector.as_bytes()).unwrap(), put(&format!("put {collector}")));
}

#[test]
fn commands_for_the_server() {
    for (word, command) in [
        ("version", Command::Version),
        ("stats", Command::Stats),
        ("help", Command::Help),
        ("exit", Command::Exit),
        ("diediedie", Command::DieDieDie),
        ("dropcaches", Command::DropCaches),
        ("status", Command::Status),
        ("rollup 1h-sum sys.cpu 1 1 a=b", Command::Rollup),
        ("histogram sys.lat 1 AAAA a=b", Command::Histogram),
    ] {
        assert_eq!(parse_line(word.as_bytes()), Ok(Request::Command(command)), "{word}");
    }
    assert!(matches!(err("Version"), OpenTsdbError::UnknownCommand { .. }));
}

#[test]
fn errors_name_what_was_wrong() {
    assert_eq!(
        err("put m 17x 1 a=b").to_string(),
        "invalid timestamp \"17x\": invalid character 'x'"
    );
    assert_eq!(
        err("put m 1 NaN a=b"),
        OpenTsdbError::InvalidValue {
            text: "NaN".into(),
            reason: NumberError::InvalidCharacter('N')
        }
    );
    assert_eq!(
        err("put m 1 1 a=b:c").to_string(),
        "invalid tag value (\"b:c\"): illegal character: :"
    );
}

#[test]
fn decoder_keeps_going_after_bad_lines() {
    let mut decoder = LineDecoder::new();
    let mut buf = BytesMut::from(
        &b"put a 1 1 h=x\r\nput b 1 x h=x\nnope\nversion\nput c 1365465600 2.5 h=y\nput d"[..],
    );
    let mut seen = Vec::new();
    decoder.decode(&mut buf, |r| {
        seen.push(match r {
            Ok(Request::Put(p)) => p.name().to_string(),
            Ok(Request::Command(c)) => c.name().to_string(),
            Err(bad) => format!("bad {}", String::from_utf8_lossy(bad.line)),
        })
    });
    assert_eq!(seen, ["a;h=x", "bad put b 1 x h=x", "bad nope", "version", "c;h=y"]);
    assert_eq!(&buf[..], b"put d");
    decoder.decode_eof(&mut buf, |r| assert!(r.is_err()));
    assert!(buf.is_empty());
}

fn word() -> impl Strategy<Value = String> {
    "[A-Za-z0-9_./-]{1,8}|[a-zé]{1,4}"
}

fn put_strategy() -> impl Strategy<Value = (String, i64, Value, Vec<(String, String)>)> {
    let metric = "[A-Za-z0-9_-]{1,8}(\\.[A-Za-z0-9_-]{1,8}){0,3}";
    let timestamp = prop_oneof![1i64..=4_294_967_295, 4_294_967_296i64..=9_999_999_999_999];
    let value = prop_oneof![
        any::<i64>().prop_map(Value::Integer),
        any::<f64>().prop_filter("finite", |f| f.is_finite()).prop_map(Value::Float),
    ];
    let tags =
        prop::collection::btree_map(word().prop_filter("reserved", |k| k != "name"), word(), 1..=8)
            .prop_map(|m| m.into_iter().collect::<Vec<_>>());
    (metric, timestamp, value, tags)
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 256, ..ProptestConfig::default() })]

    #[test]
    fn encode_then_parse_round_trips((metric, ts, value, tags) in put_strategy()) {
        let pairs: Vec<(&str, &str)> = tags.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
        let p = Put::new(&metric, Timestamp::new(ts).unwrap(), value, &pairs).unwrap();
        let mut line = Vec::new();
        p.encode(&mut line);
        prop_assert_eq!(line.last(), Some(&b'\n'));
        let parsed = match parse_line(&line[..line.len() - 1]) {
            Ok(Request::Put(parsed)) => parsed,
            other => return Err(TestCaseError::fail(format!("{other:?}"))),
        };
        prop_assert_eq!(&parsed, &p);
        if let (Value::Float(a), Value::Float(b)) = (parsed.value(), value) {
            prop_assert_eq!(a.to_bits(), b.to_bits());
        }
        let mut expected = metric.clone();
        for (k, v) in &tags {
            expected.push_str(&format!(";{k}={v}"));
        }
        prop_assert_eq!(parsed.name().as_str(), normalize(&expected).unwrap());
        let seconds = if ts > 4_294_967_295 { ts as f64 / 1000.0 } else { ts as f64 };
        prop_assert_eq!(parsed.to_point().datapoint.timestamp, seconds);
    }

    #[test]
    fn arbitrary_bytes_never_panic(line in prop::collection::vec(any::<u8>(), 0..300)) {
        if let Ok(Request::Put(p)) = parse_line(&line) {
            prop_assert!(!p.tags().is_empty());
            prop_assert!(p.value().as_f64().is_finite());
        }
        let _ = parse_put(&line);
        let mut decoder = LineDecoder::new();
        let mut buf = BytesMut::from(&line[..]);
        decoder.decode(&mut buf, |_| {});
        decoder.decode_eof(&mut buf, |_| {});
        prop_assert!(buf.is_empty());
    }

    #[test]
    fn put_shaped_noise_never_panics(
        words in prop::collection::vec(
            prop_oneof![
                Just("put".to_string()), Just(String::new()), Just("=".to_string()),
                Just("a=b".to_string()), Just("1.5".to_string()), Just("1e999".to_string()),
                Just("-".to_string()), Just("name=x".to_string()), Just("0x1p3".to_string()),
                "[0-9.eE+-]{1,22}", "[a-z/.=é]{1,6}",
            ],
            0..12,
        )
    ) {
        let line = words.join(" ");
        match parse_line(line.as_bytes()) {
            Ok(Request::Put(p)) => {
                prop_assert!(p.value().as_f64().is_finite());
                prop_assert!(p.timestamp().raw() > 0);
            }
            Ok(Request::Command(_)) => {}
            Err(e) => {
                prop_assert!(!e.to_string().is_empty());
                prop_assert!(e.telnet_reply().ends_with('\n'));
            }
        }
    }

    #[test]
    fn split_reads_give_the_same_lines(
        lines in prop::collection::vec("put [a-z]{1,4} [0-9]{1,10} [0-9]{1,3} h=[a-z]{1,3}|[a-z ]{0,8}", 1..8),
        cut in any::<prop::sample::Index>(),
    ) {
        let stream = lines.join("\n") + "\n";
        let collect = |chunks: &[&[u8]]| {
            let mut d = LineDecoder::new();
            let mut buf = BytesMut::new();
            let mut out = Vec::new();
            for chunk in chunks {
                buf.extend_from_slice(chunk);
                d.decode(&mut buf, |r| out.push(format!("{:?}", r.map_err(|b| b.error))));
            }
            out
        };
        let at = cut.index(stream.len());
        let (a, b) = stream.as_bytes().split_at(at);
        prop_assert_eq!(collect(&[stream.as_bytes()]), collect(&[a, b]));
    }
}
