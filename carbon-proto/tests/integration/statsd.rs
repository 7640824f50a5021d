//! Tests of `carbon_proto::statsd`: the statsd reference's own test vectors, DogStatsD's
//! documented datagrams, round trips and hostile input.

use std::borrow::Cow;

use carbon_proto::statsd::{
    Kind, PacketStats, StatsdError, Value, decode_packet, decode_packet_to_vec, encode,
    encode_dogstatsd,
};
use carbon_proto::tags::normalize;
use proptest::prelude::*;

/// The single good metric of a one-line packet: name, value, rate.
fn good(packet: &str) -> (String, Value<'static>, f64) {
    let mut v = decode_packet_to_vec(packet.as_bytes());
    assert_eq!(v.len(), 1, "{packet:?} gave {v:?}");
    let m = v.remove(0).unwrap_or_else(|e| panic!("{packet:?}: {e}"));
    (m.name().to_string(), m.value().clone().into_owned(), m.sample_rate())
}

fn is_bad(packet: &str) -> bool {
    decode_packet_to_vec(packet.as_bytes()).iter().all(Result::is_err)
}

/// statsd's `test/helpers_tests.js`: `is_valid_packet(fields)` for `value|type|rate` fields,
/// written here as the line `key:fields` (statsd 0.9.0, from the npm package).
#[test]
fn statsd_helpers_tests_vectors() {
    let valid = [
        "foo:+10e1|c",         // counter_deltas_scientific_are_valid
        "foo:+10|c",           // counter_deltas_positive_are_valid
        "foo:-10|c",           // counter_deltas_negative_are_valid
        "foo:+1|ms",           // times_positive_are_valid
        "foo:1.0|ms",          //
        "foo:+1.0|ms",         //
        "foo:+0.0|ms",         // times_zero_are_valid
        "foo:-0.0|ms",         //
        "foo:0.0|ms",          //
        "foo:0|ms",            //
        "foo:10|g",            // gauges_delta_positive_are_valid
        "foo:+10|g",           //
        "foo:10.0|g",          //
        "foo:+10.0|g",         //
        "foo:-10|g",           // gauges_delta_negative_are_valid
        "foo:-10.0|g",         //
        "foo:foo|s",           // sets_strings_are_valid
        "foo:123456|s",        // sets_numeric_are_valid
        "foo:345345|ms|@2",    // sampling_is_valid
        "foo:345345|ms|@.2",   //
        "foo:345345|ms|@0.2",  //
        "foo:345345|ms|@2e-1", //
        "foo:345345|ms|@1.0",  // correct_packet
        "foo:100|ms|@0.1",     // correct_packet_with_small_sampling
        "foo:1.0|c|@0.1",      // correct_counter_with_float
    ];
    for line in valid {
        let _ = good(line);
    }
    let invalid = [
        "foo",                    // no_metrics_field
        "foo:0,345345|ms",        // wrong_formated_metric_value
        "foo:345345|ms|0,456456", // wrong_formated_sampling_value
        "foo:|c",                 // counter_empty_are_invalid
        "foo:-1|ms",              // times_negative_are_invalid
        "foo:-1.0|ms",            //
        "foo:|g",                 // gauges_empty_are_invalid
        "foo:345345|ms|",         // sampling_is_invalid
        "foo:345345|ms|b",        //
        "foo:345345|ms|blah",     //
        "foo:345345|ms|@",        //
        "foo:345345|ms|@blah",    //
        "foo:345345|ms|@.",       //
        "foo:345345|ms|@.1.",     //
        "foo:345345|ms|@.1.2.3",  //
        "foo:345345|ms|@-1.0",    //
    ];
    for line in invalid {
        assert!(is_bad(line), "{line:?} should be refused");
    }
}

/// statsd's `test/graphite_tests.js` sends these packets and checks the names it flushes
/// (`metric_names_are_sanitized`, `graphite_tags_are_supported`,
/// `dogstatsd_tags_are_supported`) and that `a_bad_test_value|z` is a bad line
/// (`send_malformed_post`). The reference keeps tags in the order received; carbon sorts
/// them when it stores the series, which [`normalize`] does here already.
#[test]
fn statsd_graphite_tests_vectors() {
    for (packet, name) in [
        ("fo/o:250|c", "fo-o"),
        ("b ar:250|c", "b_ar"),
        ("foo+bar:250|c", "foobar"),
        ("fo/o;tag1=val1:250|c", "fo-o;tag1=val1"),
        ("b ar;tag1=val1;tag2=val2:250|c", "b_ar;tag1=val1;tag2=val2"),
        ("foo+bar;tag1=val1;tag3=val3;tag2=val2:250|c", "foobar;tag1=val1;tag2=val2;tag3=val3"),
        ("fo/o:250|c|#tag1:val1", "fo-o;tag1=val1"),
        ("b ar:250|c|#tag1:val1,tag2:val2", "b_ar;tag1=val1;tag2=val2"),
        // `tag1:val;1`: the tag's first `;` becomes `_`.
        ("foo+bar:250|c|#tag1:val;1,tag3:val3,tag2:val2", "foobar;tag1=val_1;tag2=val2;tag3=val3"),
    ] {
        assert_eq!(good(packet), (name.to_string(), Value::Counter(250.0), 1.0), "{packet}");
    }
    assert_eq!(
        decode_packet_to_vec(b"a_bad_test_value|z"),
        [Err(StatsdError::NoType { line: 1, part: 1 })]
    );
    // `timers_are_valid`, `sampled_timers_are_valid`, `counts_are_valid`, `gauges_are_valid`,
    // `gauge_modifications_are_valid`.
    assert_eq!(good("a_test_value:100|ms").1, Value::Timer(100.0));
    assert_eq!(good("a_test_value:100|ms|@0.1").2, 0.1);
    assert_eq!(good("a_test_value:100|c").1, Value::Counter(100.0));
    assert_eq!(good("a_test_value:70|g").1, Value::Gauge(70.0));
    assert_eq!(good("test_value:-3|g").1, Value::GaugeDelta(-3.0));
}

/// statsd's `docs/metric_types.md`, every example.
#[test]
fn statsd_metric_types_doc_examples() {
    assert_eq!(good("gorets:1|c"), ("gorets".into(), Value::Counter(1.0), 1.0));
    assert_eq!(good("gorets:1|c|@0.1"), ("gorets".into(), Value::Counter(1.0), 0.1));
    assert_eq!(good("glork:320|ms|@0.1"), ("glork".into(), Value::Timer(320.0), 0.1));
    assert_eq!(good("gaugor:333|g").1, Value::Gauge(333.0));
    assert_eq!(good("gaugor:-10|g").1, Value::GaugeDelta(-10.0));
    assert_eq!(good("gaugor:+4|g").1, Value::GaugeDelta(4.0));
    assert_eq!(good("uniques:765|s").1, Value::Set(Cow::Borrowed("765")));
    let all = decode_packet_to_vec(b"gorets:1|c\nglork:320|ms\ngaugor:333|g\nuniques:765|s");
    let kinds: Vec<Kind> =
        all.iter().map(|r| r.as_ref().unwrap().value().reference_kind()).collect();
    assert_eq!(kinds, [Kind::Counter, Kind::Timer, Kind::Gauge, Kind::Set]);
}

/// DogStatsD's "Datagram Format and Shell Usage" page, its example datagrams.
#[test]
fn dogstatsd_datagram_examples() {
    assert_eq!(good("page.views:1|c"), ("page.views".into(), Value::Counter(1.0), 1.0));
    assert_eq!(good("fuel.level:0.5|g").1, Value::Gauge(0.5));
    assert_eq!(
        good("song.length:240|h|@0.5"),
        ("song.length".into(), Value::Histogram(240.0), 0.5)
    );
    assert_eq!(good("users.uniques:1234|s").1, Value::Set(Cow::Borrowed("1234")));
    assert_eq!(
        good("users.online:1|c|#country:china"),
        ("users.online;country=china".into(), Value::Counter(1.0), 1.0)
    );
    assert_eq!(
        good("users.online:1|c|@0.5|#country:china"),
        ("users.online;country=china".into(), Value::Counter(1.0), 0.5)
    );
    // `h` is a counter to the statsd reference; the aggregator decides.
    assert_eq!(good("song.length:240|h").1.reference_kind(), Kind::Counter);
    assert_eq!(good("a:1|d").1, Value::Distribution(1.0));
}

#[test]
fn good_lines_survive_bad_neighbours() {
    let mut names = Vec::new();
    let mut errors = Vec::new();
    let stats = decode_packet(b"a:1|c\nb:x|c\n\nc:1|ms:-1|ms\nd\ne:2|g", |r| match r {
        Ok(m) => names.push(m.name().to_string()),
        Err(bad) => errors.push((bad.error, String::from_utf8_lossy(bad.line).into_owned())),
    });
    assert_eq!(names, ["a", "c", "e"]);
    assert_eq!(
        errors,
        [
            (StatsdError::BadValue { line: 2, part: 1, value: "x".into() }, "b:x|c".into()),
            (
                StatsdError::NegativeTimer { line: 4, part: 2, value: "-1".into() },
                "c:1|ms:-1|ms".into()
            ),
            (StatsdError::NoType { line: 5, part: 1 }, "d".into()),
        ]
    );
    assert_eq!(stats, PacketStats { lines: 5, metrics: 3, bad_lines: 3, dropped_tags: 0 });
}

#[test]
fn errors_say_what_and_where() {
    let e = |p: &str| {
        let first_error = decode_packet_to_vec(p.as_bytes()).into_iter().find_map(Result::err);
        first_error.unwrap().to_string()
    };
    assert_eq!(e("a:1|c\nb:x|c"), "line 2, part 1: value \"x\" is not a number");
    assert_eq!(
        e("a:1|c|@-1"),
        "line 1, part 1: sample rate \"@-1\" is not @ and a non-negative number"
    );
    assert_eq!(
        e("a..b:1|c"),
        "line 1, part 1: metric name \"a..b\": metric name has an empty component (number 1, counting from 0)"
    );
    assert_eq!(e("a:-5|ms"), "line 1, part 1: timer value \"-5\" is negative");
}

/// A metric name as the decoder would produce it: a clean metric part and, sometimes,
/// tags, normalised.
fn name_strategy() -> impl Strategy<Value = String> {
    let component = "[A-Za-z0-9_-]{1,8}";
    let metric = prop::collection::vec(component, 1..4).prop_map(|c| c.join("."));
    let tag = ("[a-z][a-z0-9_]{0,5}", "[A-Za-z0-9_.-]{1,6}")
        .prop_filter("name is reserved", |(k, _)| k != "name");
    (metric, prop::collection::vec(tag, 0..3)).prop_map(|(metric, tags)| {
        let mut name = metric;
        for (k, v) in tags {
            name.push_str(&format!(";{k}={v}"));
        }
        normalize(&name).unwrap()
    })
}

fn number_strategy() -> impl Strategy<Value = f64> {
    prop_oneof![
        any::<i32>().prop_map(f64::from),
        any::<f64>().prop_filter("NaN is refused", |v| !v.is_nan()),
        Just(f64::INFINITY),
    ]
}

fn value_strategy() -> impl Strategy<Value = Value<'static>> {
    prop_oneof![
        number_strategy().prop_map(Value::Counter),
        number_strategy().prop_map(|v| Value::Timer(v.abs())),
        number_strategy().prop_map(Value::Histogram),
        number_strategy().prop_map(Value::Distribution),
        number_strategy().prop_filter("see gauge_negative", |v| *v >= 0.0).prop_map(Value::Gauge),
        number_strategy().prop_map(Value::GaugeDelta),
        "[A-Za-z0-9_.@#-]{1,10}".prop_map(|m| Value::Set(Cow::Owned(m))),
        ("[A-Za-z]{1,3}", number_strategy())
            .prop_filter("known types", |(k, _)| !["c", "ms", "h", "d", "g", "s"]
                .contains(&k.as_str()))
            .prop_map(|(k, value)| Value::Other { kind: Cow::Owned(k), value }),
    ]
}

fn rate_strategy() -> impl Strategy<Value = f64> {
    prop_oneof![Just(1.0), (0.0f64..=1.0), (1u32..1000).prop_map(|n| f64::from(n) / 1000.0)]
}

/// `-0.0` and `0.0` differ in bits but not as values; compare values and the sign of zero
/// only where the wire keeps it.
fn same(a: &Value<'_>, b: &Value<'_>) -> bool {
    match (a, b) {
        (Value::Gauge(x), Value::Gauge(y)) => x == y,
        _ => a == b,
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 256, ..ProptestConfig::default() })]

    #[test]
    fn encode_then_decode_round_trips(
        name in name_strategy(),
        value in value_strategy(),
        rate in rate_strategy(),
    ) {
        let mut out = Vec::new();
        encode(&mut out, &name, &value, rate);
        let decoded = decode_packet_to_vec(&out);
        prop_assert_eq!(decoded.len(), 1, "{:?}", String::from_utf8_lossy(&out));
        let m = decoded.into_iter().next().unwrap().unwrap();
        prop_assert_eq!(m.name(), name.as_str());
        prop_assert!(same(m.value(), &value), "{:?} != {:?}", m.value(), value);
        prop_assert_eq!(m.sample_rate().to_bits(), rate.to_bits());
        // And a decoded metric encodes to the same line.
        let mut again = Vec::new();
        m.encode(&mut again);
        prop_assert_eq!(again, out);
    }

    #[test]
    fn dogstatsd_tags_round_trip_into_graphite_names(
        metric in "[a-z][a-z0-9_]{0,6}(\\.[a-z0-9_]{1,6}){0,2}",
        tags in prop::collection::btree_map("[a-z][a-z0-9_]{0,5}", "[A-Za-z0-9_.-]{1,6}", 0..4),
        value in number_strategy(),
    ) {
        let tags: Vec<(&str, &str)> = tags
            .iter()
            .filter(|(k, _)| k.as_str() != "name")
            .map(|(k, v)| (k.as_str(), v.as_str()))
            .collect();
        let mut out = Vec::new();
        encode_dogstatsd(&mut out, &metric, &Value::Counter(value), 0.5, &tags);
        let m = decode_packet_to_vec(&out).remove(0).unwrap();
        let mut expected = metric.clone();
        for (k, v) in &tags {
            expected.push_str(&format!(";{k}={v}"));
        }
        prop_assert_eq!(m.name(), normalize(&expected).unwrap());
        prop_assert_eq!(m.value(), &Value::Counter(value));
        prop_assert_eq!(m.sample_rate(), 0.5);
    }

    #[test]
    fn negative_gauges_are_sent_as_zero_then_delta(v in number_strategy().prop_filter("negative", |v| *v < 0.0)) {
        let mut out = Vec::new();
        encode(&mut out, "g", &Value::Gauge(v), 1.0);
        let values: Vec<Value<'_>> =
            decode_packet_to_vec(&out).into_iter().map(|r| r.unwrap().value().clone()).collect();
        prop_assert_eq!(values, vec![Value::Gauge(0.0), Value::GaugeDelta(v)]);
    }

    #[test]
    fn arbitrary_bytes_never_panic(packet in prop::collection::vec(any::<u8>(), 0..512)) {
        let mut items = 0;
        let stats = decode_packet(&packet, |r| {
            items += 1;
            if let Ok(m) = r {
                // Every name handed out is a valid Graphite name.
                let _ = m.to_metric_name();
            }
        });
        prop_assert_eq!(items, stats.metrics + stats.bad_lines);
    }

    #[test]
    fn statsd_shaped_noise_never_panics(
        packet in prop::collection::vec(
            prop_oneof![
                3 => prop::sample::select(b":|@#,;=\n\r .-+cgsm01x".to_vec()),
                1 => any::<u8>(),
            ],
            0..256,
        )
    ) {
        let mut good = Vec::new();
        let stats = decode_packet(&packet, |r| {
            if let Ok(m) = r {
                good.push((m.sample_rate(), m.value().as_f64()));
            }
        });
        for (rate, value) in &good {
            prop_assert!(*rate >= 0.0);
            prop_assert!(!value.is_some_and(f64::is_nan));
        }
        prop_assert_eq!(good.len(), stats.metrics);
    }
}
