//! Parser and semantics tests; expected values were taken from carbon 1.1.7's own code.

use std::path::Path;

use proptest::prelude::*;

use super::*;

fn rules(text: &str) -> AggregationRules {
    AggregationRules::parse(text, Path::new("aggregation-rules.conf")).unwrap()
}

fn err(text: &str) -> RulesError {
    AggregationRules::parse(text, Path::new("aggregation-rules.conf")).unwrap_err()
}

fn agg(text: &str) -> Aggregator {
    Aggregator::new(rules(text), AggregatorConfig::default())
}

fn out(points: &[carbon_proto::Point]) -> Vec<(String, f64, f64)> {
    let mut v: Vec<_> = points
        .iter()
        .map(|p| (p.name.as_str().to_string(), p.datapoint.timestamp, p.datapoint.value))
        .collect();
    v.sort_by(|a, b| a.partial_cmp(b).unwrap());
    v
}

#[test]
fn regexes_as_carbon_builds_them() {
    assert_eq!(
        input_regex("<env>.applications.<app>.*.requests"),
        r"(?P<env>[^.]+?)\.applications\.(?P<app>[^.]+?)\.[^.]+\.requests$"
    );
    assert_eq!(input_regex("a.<<rest>>"), r"a\.(?P<rest>.+?)$");
    assert_eq!(
        input_regex("srv<n>x.*cpu*.{a,b}.*"),
        r"srv(?P<n>[^.]+?)x\.[^.]*cpu[^.]*\.{a,b}\.[^.]+$"
    );
    assert_eq!(input_regex("x<a>y.<<b>>z"), r"x(?P<a>[^.]+?)y\.(?P<b>.+?)z$");
    assert_eq!(input_regex("a.>>x<<.b"), r"a\.>>x(?P<>.+?)x<<\.b$");
}

#[test]
fn parse_and_match() {
    let r = rules(
        "# comment\n\n  <env>.applications.<app>.all.requests (60) = sum <env>.applications.<app>.*.requests\n\
         o.<rest> 10 = p90 a.<<rest>>\r\nbraces.<x> ((5)) =   count   b.{a,b}.<x>\n",
    );
    assert_eq!(r.rules().len(), 3);
    let [a, b, c] = r.rules() else { panic!() };
    assert_eq!((a.line(), a.frequency(), a.method()), (3, 60, Method::Sum));
    assert_eq!(
        a.output_for("prod.applications.shop.web1.requests").as_deref(),
        Some("prod.applications.shop.all.requests")
    );
    assert_eq!(a.output_for("prod.applications.shop.requests"), None);
    // Anchored at the start (re.match) and at the end ($).
    assert_eq!(a.output_for("x.prod.applications.shop.web1.requests.y"), None);
    assert_eq!((b.line(), b.frequency(), b.method()), (4, 10, Method::Percentile(0.9)));
    assert_eq!(b.output_for("a.b.c.d").as_deref(), Some("o.b.c.d"));
    assert_eq!(b.output_for("a."), None);
    // `{a,b}` is no glob in carbon: Python reads it as literal text.
    assert_eq!(c.frequency(), 5);
    assert_eq!(c.output_for("b.a.x"), None);
    assert_eq!(c.output_for("b.{a,b}.x").as_deref(), Some("braces.x"));
    // `%%` in a template is `%`, as Python formats it.
    let r = rules("a%%.<x> (1) = max in.<x>\n");
    assert_eq!(r.rules()[0].output_for("in.q").as_deref(), Some("a%.q"));
    // Regex syntax passes through.
    let r = rules("dc.<dc>.total (1) = sum <dc>\\d{2}.(cpu|mem)\n");
    assert_eq!(r.rules()[0].output_for("ab12.mem").as_deref(), Some("dc.ab.total"));
    assert_eq!(r.rules()[0].output_for("ab1.mem"), None);
}

#[test]
fn errors_name_file_and_line() {
    let e = err("# ok\na (60) = sum b\nbroken line\n");
    assert_eq!(e.line(), Some(3));
    assert_eq!(
        e.to_string(),
        "aggregation-rules.conf:3: expected `output_template (frequency) = method input_pattern`, found \"broken line\""
    );
    assert!(matches!(err("a (60) = median b").kind(), RuleErrorKind::Method { .. }));
    assert!(matches!(err("a (x) = sum b").kind(), RuleErrorKind::Frequency { .. }));
    assert!(matches!(err("a (0) = sum b").kind(), RuleErrorKind::Frequency { .. }));
    assert!(matches!(err("a (60) (1) = sum b").kind(), RuleErrorKind::Syntax { .. }));
    assert!(matches!(err("a (60) = sum b c").kind(), RuleErrorKind::Syntax { .. }));
    assert!(matches!(err("a (60) = sum <x>.<x>").kind(), RuleErrorKind::InvalidRegex { .. }));
    assert!(matches!(err("a (60) = sum a.>>x<<.b").kind(), RuleErrorKind::InvalidRegex { .. }));
    assert!(matches!(err("a.<y> (60) = sum <x>").kind(), RuleErrorKind::Template { .. }));
    assert!(matches!(err("a.<<x>> (60) = sum <<x>>").kind(), RuleErrorKind::Template { .. }));
    assert!(matches!(err("a% (60) = sum <x>").kind(), RuleErrorKind::Template { .. }));
    assert!(matches!(err("a%d (60) = sum <x>").kind(), RuleErrorKind::Template { .. }));
    let e = AggregationRules::from_bytes(b"a (1) = sum b\n\xff\n", Path::new("r")).unwrap_err();
    assert_eq!((e.line(), e.to_string()), (Some(2), "r:2: not valid UTF-8".to_string()));
    assert!(AggregationRules::open("/nonexistent/aggregation-rules.conf").unwrap().is_empty());
}

#[test]
fn methods_as_carbon_computes_them() {
    let values = [3.0, 1.0, 2.0, 10.0, 7.5];
    let expect = [
        ("sum", 23.5),
        ("avg", 4.7),
        ("min", 1.0),
        ("max", 10.0),
        ("count", 5.0),
        ("last", 7.5),
        ("p50", 3.0),
        ("p999", 9.99),
    ];
    for (method, want) in expect {
        let mut a = agg(&format!("out (10) = {method} in.*\n"));
        for (i, v) in values.iter().enumerate() {
            a.push(&format!("in.{i}"), 100.0 + i as f64, *v, 1000.0);
        }
        let got = a.tick(1010.0);
        assert_eq!(out(&got), [("out".to_string(), 100.0, want)], "{method}");
    }
    let mut a = agg("out (10) = p90 in.*\n");
    for v in [1.5, 2.5, 100.0] {
        a.push("in.x", 5.0, v, 0.0);
    }
    assert_eq!(out(&a.tick(10.0)), [("out".to_string(), 0.0, 80.5)]);
}

#[test]
fn timers_late_points_and_expiry() {
    let mut a = agg("sum.<h> (60) = sum <h>.*\n");
    // First point at t=1000: the buffer's timer fires at 1060, 1120, ...
    a.push("h1.a", 960.0, 1.0, 1000.0);
    a.push("h1.b", 1019.0, 2.0, 1001.0);
    a.push("h1.a", 1020.0, 4.0, 1002.0);
    assert!(a.tick(1059.9).is_empty());
    assert_eq!(
        out(&a.tick(1060.0)),
        [("sum.h1".into(), 960.0, 3.0), ("sum.h1".into(), 1020.0, 4.0)]
    );
    // Nothing new: nothing emitted.
    assert!(a.tick(1120.0).is_empty());
    // A late point re-emits its interval with the new value.
    a.push("h1.c", 970.0, 10.0, 1130.0);
    assert_eq!(out(&a.tick(1180.0)), [("sum.h1".into(), 960.0, 13.0)]);
    assert_eq!(a.intervals(), 2);
    // At 1260 the current interval is 1260, the threshold 1260 - 5*60 = 960: nothing older.
    assert!(a.tick(1260.0).is_empty());
    assert_eq!(a.intervals(), 2);
    // A late tick: at 1330 (due 1300) the threshold is 1320 - 300 = 1020.
    assert!(a.tick(1330.0).is_empty());
    assert_eq!(a.intervals(), 1);
    assert_eq!(a.next_due(), Some(1360.0));
    // 1440 - 300 = 1140 > 1020: the last interval goes and the buffer with it.
    assert!(a.tick(1440.0).is_empty());
    assert_eq!((a.buffers(), a.intervals()), (0, 0));
    // A point for a dropped interval starts a new buffer with a new timer.
    a.push("h1.a", 960.0, 7.0, 1500.0);
    assert!(a.tick(1559.0).is_empty());
    assert_eq!(out(&a.tick(1560.0)), [("sum.h1".into(), 960.0, 7.0)]);
}

#[test]
fn forward_all_and_several_rules() {
    let text = "all (10) = sum <a>.<b>\nall (10) = sum x.<b>\n<a>.<b> (10) = max <a>.<b>\n";
    let mut a = agg(text);
    // Two rules make `all`: the point goes into its buffer twice, as in carbon.
    let p = a.push("x.y", 0.0, 2.0, 0.0);
    assert_eq!(p.matched, 3);
    // Its own name is one of its outputs: not passed on.
    assert_eq!(p.forward, None);
    assert_eq!(out(&a.tick(10.0)), [("all".into(), 0.0, 4.0), ("x.y".into(), 0.0, 2.0)]);
    let p = a.push("nothing", 0.0, 2.0, 0.0);
    assert_eq!((p.matched, p.forward.as_deref()), (0, Some("nothing")));
    let mut a = Aggregator::new(
        rules(text),
        AggregatorConfig { forward_all: false, ..AggregatorConfig::default() },
    );
    assert_eq!(a.push("nothing", 0.0, 2.0, 0.0).forward, None);
    assert_eq!(a.stats().unmatched, 1);
}

#[test]
fn the_first_rule_configures_a_buffer() {
    let mut a = agg("o (10) = sum a.*\no (60) = max *.b\n");
    a.push("a.b", 15.0, 2.0, 0.0);
    a.push("c.b", 15.0, 5.0, 0.0);
    // Frequency 10 and sum for both rules' points: 2 + 2 + 5.
    assert_eq!(out(&a.tick(10.0)), [("o".into(), 10.0, 9.0)]);
}

#[test]
fn rewrite_rules() {
    let rw = crate::config::RewriteRules::parse(
        "[pre]\n^prod\\. = \n[post]\n^ = fwd.\n",
        Path::new("rewrite-rules.conf"),
    )
    .unwrap();
    let mut a = Aggregator::new(
        rules("total (10) = sum <h>.cpu\n"),
        AggregatorConfig { rewrite: Some(rw), ..AggregatorConfig::default() },
    );
    let p = a.push("prod.web1.cpu", 0.0, 1.0, 0.0);
    assert_eq!((p.matched, p.forward.as_deref()), (1, Some("fwd.web1.cpu")));
    // Aggregated points skip [post], as in carbon.
    assert_eq!(out(&a.tick(10.0)), [("total".into(), 0.0, 1.0)]);
}

#[test]
fn write_back_frequency() {
    let mut a = Aggregator::new(
        rules("o (60) = sum i\n"),
        AggregatorConfig { write_back_frequency: Some(10), ..AggregatorConfig::default() },
    );
    a.push("i", 0.0, 1.0, 5.0);
    assert_eq!(out(&a.tick(15.0)), [("o".into(), 0.0, 1.0)]);
    a.push("i", 1.0, 1.0, 16.0);
    assert_eq!(out(&a.tick(25.0)), [("o".into(), 0.0, 2.0)]);
}

#[test]
fn caps_bound_memory() {
    let mut a = Aggregator::new(
        rules("o.<x> (10) = p50 i.<x>\n"),
        AggregatorConfig { max_intervals: 3, max_values_per_interval: 2, ..Default::default() },
    );
    for i in 0..10 {
        a.push(&format!("i.{i}"), 0.0, 1.0, 0.0);
    }
    assert_eq!((a.buffers(), a.intervals(), a.stats().dropped), (3, 3, 7));
    for _ in 0..5 {
        a.push("i.0", 0.0, 1.0, 0.0);
    }
    assert_eq!(a.stats().dropped, 7 + 4);
    assert_eq!(a.tick(10.0).len(), 3);
    // Bad timestamps are counted, not buffered.
    a.push("i.0", f64::NAN, 1.0, 0.0);
    a.push("i.9", f64::INFINITY, 1.0, 0.0);
    assert_eq!(a.stats().bad_timestamps, 2);
}

#[test]
fn bad_output_names_are_counted() {
    let mut a = agg("a..<x> (10) = sum <x>\n");
    a.push("b", 0.0, 1.0, 0.0);
    assert!(a.tick(10.0).is_empty());
    assert_eq!(a.stats().bad_names, 1);
}

#[test]
fn set_rules_clears_buffers() {
    let mut a = agg("o (10) = sum i\n");
    a.push("i", 0.0, 1.0, 0.0);
    a.set_rules(rules("o (10) = max i\n"));
    assert_eq!((a.buffers(), a.intervals()), (0, 0));
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    #[test]
    fn any_text_parses_or_errs(text in "[ -~\t\r\n<>().*=#%{}]{0,200}") {
        let _ = AggregationRules::parse(&text, Path::new("x"));
    }

    #[test]
    fn any_bytes_parse_or_err(bytes in proptest::collection::vec(any::<u8>(), 0..200)) {
        if let Err(e) = AggregationRules::from_bytes(&bytes, Path::new("x")) {
            prop_assert!(e.to_string().starts_with("x"));
        }
    }

    #[test]
    fn rule_lines_parse_or_err(
        output in "[a-z<>.%]{1,12}",
        freq in "\\(?-?[0-9]{0,4}\\)?",
        method in "(sum|avg|min|max|count|last|p50|p999|median|x)",
        input in "[a-z<>.*{},]{1,16}",
    ) {
        if let Ok(r) = AggregationRules::parse(&format!("{output} {freq} = {method} {input}\n"), Path::new("x")) {
            let rule = &r.rules()[0];
            for name in ["a", "a.b", "a.b.c", "<x>.y", ""] {
                let _ = rule.output_for(name);
            }
        }
    }

    #[test]
    fn engine_never_panics_and_stays_bounded(
        ops in proptest::collection::vec(
            (0u8..4, "[a-c]{1,2}(\\.[a-c]{1,2}){0,2}", -1e3f64..1e10, any::<f64>(), 0f64..200.0),
            0..100,
        ),
    ) {
        let mut a = Aggregator::new(
            rules("s.<x> (7) = sum <x>.*\np (3) = p75 *.<<y>>\nc (1) = count <<z>>\n"),
            AggregatorConfig { max_intervals: 20, max_values_per_interval: 5, ..Default::default() },
        );
        let mut now = 0.0;
        for (op, name, ts, value, dt) in ops {
            now += dt;
            if op == 0 {
                a.tick(now);
            } else {
                a.push(&name, ts, value, now);
            }
            prop_assert!(a.intervals() <= 20);
            prop_assert!(a.buffers() <= a.intervals());
        }
        // Everything expires once time moves on far enough.
        a.tick(now + 2e10);
        a.tick(now + 3e10);
        prop_assert_eq!(a.intervals(), 0);
    }
}
