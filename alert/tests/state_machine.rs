//! The per-instance state machine on synthetic series: pending, firing, escalation, recovery,
//! keep-firing, hysteresis, flapping, no data, errors, missing series, min_series and
//! max_failing, and restarts through the state file.

mod common;

use alert::engine::{Engine, EngineConfig};
use alert::model::{Severity, Status};
use alert::source::Sources;
use common::*;

fn with(extra: &str) -> String {
    format!("{RULE}{extra}\n")
}

#[test]
fn pending_for_then_firing_and_one_resolution() {
    let src = Scripted::new();
    let mut e = engine(&with("for = \"3m\""), &src, None);
    src.set(one("servers.a.cpu", Some(90.0)));
    for t in [0, 60, 120] {
        assert!(e.evaluate_round(t).is_empty(), "no event while pending at {t}");
        assert_eq!(status(&e, "servers.a.cpu"), Status::Pending);
    }
    let ev = e.evaluate_round(180);
    assert_eq!(summary(&ev), vec![("servers.a.cpu".into(), Status::Firing, true)]);
    assert_eq!(ev[0].starts_at, 180);
    assert_eq!(ev[0].severity, Some(Severity::Warning));
    assert_eq!(e.evaluate_round(240).len(), 1, "firing instances are reported every round");
    src.set(one("servers.a.cpu", Some(10.0)));
    let ev = e.evaluate_round(300);
    assert_eq!(summary(&ev), vec![("servers.a.cpu".into(), Status::Normal, false)]);
    assert_eq!(ev[0].ends_at, Some(300));
    assert_eq!(ev[0].starts_at, 180);
    assert!(e.evaluate_round(360).is_empty(), "a resolution is reported once");
    let h: Vec<(Status, Status)> = e.history(10).iter().rev().map(|t| (t.from, t.to)).collect();
    assert_eq!(
        h,
        vec![
            (Status::Normal, Status::Pending),
            (Status::Pending, Status::Firing),
            (Status::Firing, Status::Normal)
        ]
    );
}

#[test]
fn flapping_below_the_pending_period_never_fires() {
    let src = Scripted::new();
    let mut e = engine(&with("for = \"2m\""), &src, None);
    for (k, v) in [90.0, 10.0, 90.0, 10.0, 90.0, 91.0, 10.0, 99.0].into_iter().enumerate() {
        src.set(one("servers.a.cpu", Some(v)));
        assert!(e.evaluate_round(k as i64 * 60).is_empty(), "round {k}");
    }
    assert_eq!(status(&e, "servers.a.cpu"), Status::Pending);
}

#[test]
fn escalation_is_immediate_and_keeps_starts_at() {
    let src = Scripted::new();
    let mut e = engine(&with("for = \"1m\""), &src, None);
    src.set(one("servers.a.cpu", Some(85.0)));
    e.evaluate_round(0);
    let ev = e.evaluate_round(60);
    assert_eq!(ev[0].severity, Some(Severity::Warning));
    src.set(one("servers.a.cpu", Some(99.0)));
    let ev = e.evaluate_round(120);
    assert_eq!(ev[0].severity, Some(Severity::Critical), "no second pending period to escalate");
    assert_eq!(ev[0].starts_at, 60);
    src.set(one("servers.a.cpu", Some(85.0)));
    assert_eq!(e.evaluate_round(180)[0].severity, Some(Severity::Warning));
}

#[test]
fn keep_firing_for_recovers_then_resolves() {
    let src = Scripted::new();
    let mut e = engine(&with("keep_firing_for = \"2m\""), &src, None);
    src.set(one("servers.a.cpu", Some(90.0)));
    assert_eq!(summary(&e.evaluate_round(0)), vec![("servers.a.cpu".into(), Status::Firing, true)]);
    src.set(one("servers.a.cpu", Some(10.0)));
    let ev = e.evaluate_round(60);
    assert_eq!(summary(&ev), vec![("servers.a.cpu".into(), Status::Recovering, true)]);
    assert_eq!(
        summary(&e.evaluate_round(120)),
        vec![("servers.a.cpu".into(), Status::Recovering, true)]
    );
    // Bad again while recovering: back to firing, same episode.
    src.set(one("servers.a.cpu", Some(90.0)));
    let ev = e.evaluate_round(180);
    assert_eq!((ev[0].status, ev[0].starts_at), (Status::Firing, 0));
    src.set(one("servers.a.cpu", Some(10.0)));
    e.evaluate_round(240);
    assert_eq!(
        summary(&e.evaluate_round(300)),
        vec![("servers.a.cpu".into(), Status::Recovering, true)]
    );
    let ev = e.evaluate_round(360);
    assert_eq!(summary(&ev), vec![("servers.a.cpu".into(), Status::Normal, false)]);
}

#[test]
fn hysteresis_holds_until_the_clear_threshold() {
    let run = |clear: &str| {
        let src = Scripted::new();
        let mut e = engine(&with(clear), &src, None);
        let mut out = Vec::new();
        for (k, v) in [90.0, 75.0, 79.0, 65.0].into_iter().enumerate() {
            src.set(one("servers.a.cpu", Some(v)));
            e.evaluate_round(k as i64 * 60);
            out.push(status(&e, "servers.a.cpu"));
        }
        out
    };
    use Status::*;
    assert_eq!(run("clear = 70"), vec![Firing, Firing, Firing, Normal]);
    assert_eq!(run(""), vec![Firing, Normal, Normal, Normal]);
}

#[test]
fn hysteresis_for_low_is_bad_rules() {
    let src = Scripted::new();
    let text = "[[rule]]\nname = \"disk\"\ntarget = \"d.*\"\nop = \"<\"\nwarn = 15\ncrit = 5\nclear = 20\nlag = 0\n";
    let mut e = engine(text, &src, None);
    let mut got = Vec::new();
    for v in [50.0, 10.0, 3.0, 18.0, 21.0] {
        src.set(one("d.root", Some(v)));
        let ev = e.evaluate_round(got.len() as i64 * 60);
        got.push(ev.first().map(|e| (e.status, e.severity)));
    }
    assert_eq!(
        got,
        vec![
            None,
            Some((Status::Firing, Some(Severity::Warning))),
            Some((Status::Firing, Some(Severity::Critical))),
            Some((Status::Firing, Some(Severity::Warning))),
            Some((Status::Normal, Some(Severity::Warning))),
        ]
    );
}

#[test]
fn no_data_policies() {
    use Status::*;
    let run = |policy: &str, answers: &[Option<Option<f64>>]| {
        let src = Scripted::new();
        let mut e = engine(&with(&format!("no_data = \"{policy}\"")), &src, None);
        let mut out = Vec::new();
        for (k, a) in answers.iter().enumerate() {
            match a {
                Some(v) => src.set(one("servers.a.cpu", *v)),
                None => src.set(vec![]),
            }
            e.evaluate_round(k as i64 * 60);
            out.push((status(&e, "servers.a.cpu"), rule_status(&e, "cpu")));
        }
        out
    };
    // An all-null series is no data for that instance.
    let nulls = [Some(Some(90.0)), Some(None), Some(Some(10.0))];
    assert_eq!(run("ok", &nulls), vec![(Firing, Normal), (Normal, Normal), (Normal, Normal)]);
    assert_eq!(run("alert", &nulls), vec![(Firing, Normal), (Firing, Normal), (Normal, Normal)]);
    assert_eq!(run("nodata", &nulls), vec![(Firing, Normal), (NoData, Normal), (Normal, Normal)]);
    assert_eq!(
        run("keep_last", &nulls),
        vec![(Firing, Normal), (Firing, Normal), (Normal, Normal)]
    );
    // An empty answer with no instance yet goes to the rule-level instance.
    let empty = [None, Some(Some(10.0))];
    assert_eq!(run("nodata", &empty), vec![(Normal, NoData), (Normal, Normal)]);
    assert_eq!(run("alert", &empty), vec![(Normal, Firing), (Normal, Normal)]);
    assert_eq!(run("ok", &empty), vec![(Normal, Normal), (Normal, Normal)]);
    // An empty answer after a series was seen applies to that series' instance.
    let vanished = [Some(Some(10.0)), None];
    assert_eq!(run("nodata", &vanished), vec![(Normal, Normal), (NoData, Normal)]);
}

#[test]
fn no_data_goes_through_the_pending_period() {
    let src = Scripted::new();
    let mut e = engine(&with("for = \"2m\"\nno_data = \"nodata\""), &src, None);
    src.set(vec![]);
    e.evaluate_round(0);
    assert_eq!(rule_status(&e, "cpu"), Status::Pending);
    e.evaluate_round(60);
    assert_eq!(rule_status(&e, "cpu"), Status::Pending);
    let ev = e.evaluate_round(120);
    assert_eq!(summary(&ev), vec![("-".into(), Status::NoData, true)]);
}

#[test]
fn error_policies() {
    use Status::*;
    let run = |policy: &str| {
        let src = Scripted::new();
        let mut e = engine(&with(&format!("on_error = \"{policy}\"")), &src, None);
        src.set(one("servers.a.cpu", Some(90.0)));
        e.evaluate_round(0);
        src.fail();
        e.evaluate_round(60);
        let mid = status(&e, "servers.a.cpu");
        src.set(one("servers.a.cpu", Some(10.0)));
        e.evaluate_round(120);
        (mid, status(&e, "servers.a.cpu"), e.rules_view()[0].last_error.clone())
    };
    assert_eq!(run("ok"), (Normal, Normal, None));
    assert_eq!(run("alert"), (Firing, Normal, None));
    assert_eq!(run("error").0, Error);
    assert_eq!(run("keep_last").0, Firing);

    // The error is visible on the instance and the rule while it lasts.
    let src = Scripted::new();
    let mut e = engine(&with("on_error = \"error\""), &src, None);
    src.fail();
    let ev = e.evaluate_round(0);
    assert_eq!(summary(&ev), vec![("-".into(), Error, true)]);
    assert!(ev[0].annotations.get("detail").is_some_and(|d| d.contains("boom")));
    assert!(e.rules_view()[0].last_error.as_deref().is_some_and(|d| d.contains("boom")));
}

#[test]
fn missing_series_resolve_after_n_rounds() {
    let src = Scripted::new();
    let mut e = engine(&with("missing_after = 2"), &src, None);
    src.set(vec![series("servers.a.cpu", &[Some(90.0)]), series("servers.b.cpu", &[Some(90.0)])]);
    assert_eq!(e.evaluate_round(0).len(), 2);
    src.set(one("servers.a.cpu", Some(90.0)));
    let ev = e.evaluate_round(60);
    assert_eq!(ev.len(), 2, "b is kept (firing) for one missing round");
    assert_eq!(status(&e, "servers.b.cpu"), Status::Firing);
    let ev = e.evaluate_round(120);
    let b: Vec<_> = summary(&ev).into_iter().filter(|s| s.0 == "servers.b.cpu").collect();
    assert_eq!(b, vec![("servers.b.cpu".into(), Status::Normal, false)]);
    assert!(!e.instances().iter().any(|i| i.labels["name"] == "servers.b.cpu"), "forgotten");
}

#[test]
fn missing_series_can_go_no_data() {
    let src = Scripted::new();
    let mut e = engine(&with("missing_after = 1\nmissing = \"nodata\""), &src, None);
    src.set(vec![series("servers.a.cpu", &[Some(10.0)]), series("servers.b.cpu", &[Some(10.0)])]);
    e.evaluate_round(0);
    src.set(one("servers.a.cpu", Some(10.0)));
    let ev = e.evaluate_round(60);
    assert_eq!(summary(&ev), vec![("servers.b.cpu".into(), Status::NoData, true)]);
    src.set(vec![series("servers.a.cpu", &[Some(10.0)]), series("servers.b.cpu", &[Some(10.0)])]);
    let ev = e.evaluate_round(120);
    assert_eq!(summary(&ev), vec![("servers.b.cpu".into(), Status::Normal, false)]);
}

#[test]
fn min_series_fires_the_rule_level_instance() {
    let src = Scripted::new();
    let mut e = engine(&with("min_series = 3\nno_data = \"ok\""), &src, None);
    src.set(vec![
        series("servers.a.cpu", &[Some(10.0)]),
        series("servers.b.cpu", &[Some(10.0)]),
        series("servers.c.cpu", &[None]),
    ]);
    let ev = e.evaluate_round(0);
    let agg: Vec<_> = ev.iter().filter(|e| !e.labels.contains_key("name")).collect();
    assert_eq!(agg.len(), 1);
    assert_eq!((agg[0].status, agg[0].value), (Status::Firing, Some(2.0)));
    src.set(vec![
        series("servers.a.cpu", &[Some(10.0)]),
        series("servers.b.cpu", &[Some(10.0)]),
        series("servers.c.cpu", &[Some(10.0)]),
    ]);
    let ev = e.evaluate_round(60);
    assert_eq!(summary(&ev), vec![("-".into(), Status::Normal, false)]);
    // An empty answer is fewer series too (Cabot's "passes with no data at all" fixed).
    src.set(vec![]);
    assert_eq!(summary(&e.evaluate_round(120)), vec![("-".into(), Status::Firing, true)]);
}

#[test]
fn max_failing_makes_one_aggregate_instance() {
    let src = Scripted::new();
    let mut e = engine(&with("max_failing = 1"), &src, None);
    let set = |vals: [f64; 3]| {
        src.set(
            ["a", "b", "c"]
                .iter()
                .zip(vals)
                .map(|(h, v)| series(&format!("servers.{h}.cpu"), &[Some(v)]))
                .collect(),
        );
    };
    set([90.0, 10.0, 10.0]);
    assert!(e.evaluate_round(0).is_empty(), "one failure is allowed");
    set([90.0, 99.0, 10.0]);
    let ev = e.evaluate_round(60);
    assert_eq!(summary(&ev), vec![("-".into(), Status::Firing, true)]);
    assert_eq!(ev[0].value, Some(2.0));
    assert_eq!(ev[0].severity, Some(Severity::Warning), "only one series is critical");
    set([99.0, 99.0, 10.0]);
    assert_eq!(e.evaluate_round(120)[0].severity, Some(Severity::Critical));
    assert_eq!(e.instances().len(), 1, "no per-series instances");
}

#[test]
fn reducers_see_the_whole_window() {
    let src = Scripted::new();
    let mut e = engine(&with("reduce = \"any\""), &src, None);
    src.set(vec![series("servers.a.cpu", &[Some(10.0), Some(99.0), None, Some(10.0)])]);
    let ev = e.evaluate_round(0);
    assert_eq!((ev[0].severity, ev[0].value), (Some(Severity::Critical), Some(99.0)));
    let mut e = engine(&with("reduce = \"avg\""), &src, None);
    assert!(e.evaluate_round(0).is_empty(), "avg 39.67 is fine");
}

#[test]
fn the_query_window_ends_lag_before_now() {
    let src = Scripted::new();
    let mut e = engine(
        "[[rule]]\nname = \"x\"\ntarget = \"a\"\nop = \">\"\nwarn = 1\nwindow = \"5m\"\n",
        &src,
        None,
    );
    e.evaluate_round(6000);
    assert_eq!(src.queries.lock().unwrap().as_slice(), &[(6000 - 360, 6000 - 60, 6000)]);
}

#[test]
fn rules_run_on_their_own_every() {
    let src = Scripted::new();
    let mut e = engine(&with("every = \"2m\""), &src, None);
    src.set(one("servers.a.cpu", Some(10.0)));
    for t in [0, 30, 60, 90, 120, 150, 179, 240] {
        e.evaluate_round(t);
    }
    let q: Vec<i64> = src.queries.lock().unwrap().iter().map(|q| q.2).collect();
    assert_eq!(q, vec![0, 120, 240]);
}

#[test]
fn restart_in_the_middle_of_pending_continues_the_timer() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("alert.state");
    let src = Scripted::new();
    src.set(one("servers.a.cpu", Some(90.0)));
    {
        let mut e = engine(&with("for = \"3m\""), &src, Some(path.clone()));
        e.set_notify_state(serde_json::json!({"sent": ["x"]}));
        e.evaluate_round(0);
        e.evaluate_round(60);
        assert_eq!(status(&e, "servers.a.cpu"), Status::Pending);
    }
    let mut e = engine(&with("for = \"3m\""), &src, Some(path.clone()));
    assert_eq!(status(&e, "servers.a.cpu"), Status::Pending);
    assert_eq!(e.notify_state(), &serde_json::json!({"sent": ["x"]}));
    assert!(e.evaluate_round(120).is_empty());
    let ev = e.evaluate_round(180);
    assert_eq!(
        (ev[0].status, ev[0].starts_at),
        (Status::Firing, 180),
        "fires at 0 + 3m, not restart + 3m"
    );
}

#[test]
fn restart_while_firing_keeps_firing_without_a_new_transition() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("alert.state");
    let src = Scripted::new();
    src.set(one("servers.a.cpu", Some(90.0)));
    {
        let mut e = engine(RULE, &src, Some(path.clone()));
        e.evaluate_round(0);
        e.evaluate_round(60);
    }
    let mut e = engine(RULE, &src, Some(path.clone()));
    // Same rule slot (every 60s) and already evaluated at 60: not due again within the slot.
    assert!(e.evaluate_round(90).iter().all(|ev| ev.starts_at == 0));
    let ev = e.evaluate_round(120);
    assert_eq!((ev[0].status, ev[0].starts_at), (Status::Firing, 0));
    let firings = e.history(100).iter().filter(|t| t.to == Status::Firing).count();
    assert_eq!(firings, 1, "the restart did not re-fire");
}

#[test]
fn corrupt_state_is_an_error_unless_told_to_start_fresh() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("alert.state");
    std::fs::write(&path, b"{ not json").unwrap();
    let src = Scripted::new();
    let err = Engine::new(rules(RULE), Sources::fixed(src.clone()), Some(path.clone()))
        .err()
        .expect("corrupt state must not be ignored");
    assert!(err.to_string().contains("alert.state"), "{err}");
    let config = EngineConfig { start_fresh_on_bad_state: true, ..EngineConfig::default() };
    let mut e =
        Engine::with_config(rules(RULE), Sources::fixed(src.clone()), Some(path.clone()), config)
            .unwrap();
    src.set(one("servers.a.cpu", Some(90.0)));
    e.evaluate_round(0);
    assert!(alert::state::load(&path).unwrap().is_some(), "the next round rewrites it");
}

#[test]
fn freshness_fires_on_old_or_absent_points() {
    let src = Scripted::new();
    let text =
        "[[rule]]\nname = \"fresh\"\nkind = \"freshness\"\ntarget = \"a.*\"\nmax_age = \"5m\"\n";
    let mut e = engine(text, &src, None);
    let mut s = series("a.x", &[Some(1.0), Some(1.0), None]);
    s.start = 1000;
    src.set(vec![s.clone()]);
    // Newest non-null point at 1060: 1300 is 240 s later, 1400 is 340 s.
    assert!(e.evaluate_round(1300).is_empty());
    let ev = e.evaluate_round(1400);
    assert_eq!((ev[0].status, ev[0].value), (Status::Firing, Some(340.0)));
    src.set(vec![]);
    let ev = e.evaluate_round(1500);
    assert_eq!(
        summary(&ev),
        vec![("a.x".into(), Status::Firing, true)],
        "a vanished series is stale"
    );
    let mut e = engine(text, &src, None);
    let ev = e.evaluate_round(1500);
    assert_eq!(summary(&ev), vec![("-".into(), Status::Firing, true)], "nothing at all is stale");
}

#[test]
fn series_mapping_to_one_instance_report_the_worst() {
    let src = Scripted::new();
    let text = format!("{RULE}labels = {{ name = \"all\" }}\n");
    let mut e = engine(&text, &src, None);
    src.set(vec![series("servers.a.cpu", &[Some(10.0)]), series("servers.b.cpu", &[Some(99.0)])]);
    let ev = e.evaluate_round(0);
    assert_eq!(ev.len(), 1);
    assert_eq!(ev[0].severity, Some(Severity::Critical));
}

const DISK: &str = r#"
[[rule]]
name = "disk"
target = "servers.*.disk"
op = ">"
crit = 50
lag = 0
notify = ["ops"]

[[receiver]]
name = "ops"
type = "command"
command = ["true"]
"#;

const LOAD: &str = r#"
[[rule]]
name = "load"
target = "servers.*.load"
op = ">"
warn = 10
lag = 0
"#;

#[test]
fn reload_keeps_unchanged_rules_state_and_resolves_removed_ones() {
    let src = Scripted::new();
    let mut e = engine(&format!("{RULE}for = \"3m\"\n{DISK}"), &src, None);
    src.set(one("servers.a.cpu", Some(90.0)));
    assert!(e.evaluate_round(0).iter().all(|ev| ev.labels["alertname"] == "disk"));
    let fired = e.evaluate_round(60);
    assert_eq!(fired.len(), 1, "disk fires at once, cpu is pending");
    assert_eq!(status(&e, "servers.a.cpu"), Status::Pending);

    // New thresholds and annotations for cpu (same name, target, labels), disk removed,
    // load added.
    let report = e.reload(
        rules(&format!(
            "{}for = \"3m\"\nannotations = {{ s = \"{{value}}\" }}\n{LOAD}",
            RULE.replace("warn = 80", "warn = 85")
        )),
        90,
    );
    assert_eq!((report.rules, report.kept), (2, 1));
    assert_eq!(report.added, vec!["load"]);
    assert_eq!(report.removed, vec!["disk"]);
    assert!(report.changed.is_empty());
    assert_eq!(report.resolved.len(), 1, "the removed rule's firing instance resolves");
    let r = &report.resolved[0];
    assert_eq!(
        (r.labels["alertname"].as_str(), r.status, r.ends_at),
        ("disk", Status::Normal, Some(90))
    );
    assert_eq!(r.starts_at, 0, "its resolution carries when it fired");
    assert_eq!(r.receivers, vec!["ops"], "routed like the old rule");
    assert_eq!(e.history(1)[0].to, Status::Normal);
    assert!(e.instances().iter().all(|i| i.rule != "disk"), "removed rules are dropped");

    // cpu's pending timer (since 0) goes on: evaluated at 120 (not again in the slot of its
    // evaluation at 60), firing at 180, three minutes after it began — not after the reload.
    let ev = e.evaluate_round(120);
    assert!(ev.iter().all(|ev| ev.labels["alertname"] == "load"), "{ev:?}");
    assert_eq!(status(&e, "servers.a.cpu"), Status::Pending);
    let ev = e.evaluate_round(180);
    let cpu = ev.iter().find(|ev| ev.labels["alertname"] == "cpu").unwrap();
    assert_eq!((cpu.status, cpu.starts_at), (Status::Firing, 180));
    assert_eq!(cpu.annotations["s"], "90", "the new annotations apply");
    let m = e.metrics();
    assert_eq!((m.rules, m.reloads, m.rounds), (2, 1, 4));
}

#[test]
fn reload_keeps_firing_since_and_restarts_a_rule_whose_target_changed() {
    let src = Scripted::new();
    let mut e = engine(&format!("{RULE}{LOAD}"), &src, None);
    src.set(one("servers.a.cpu", Some(99.0)));
    assert_eq!(e.evaluate_round(0).len(), 2);
    // cpu keeps its identity; load's target changes: it starts again as new.
    let report = e.reload(rules(&format!("{RULE}{}", LOAD.replace(".load", ".load15"))), 30);
    assert_eq!((report.kept, report.changed.clone()), (1, vec!["load".to_owned()]));
    assert_eq!(report.resolved.len(), 1);
    assert_eq!(report.resolved[0].labels["alertname"], "load");
    assert!(e.instances().iter().all(|i| i.rule != "load"), "load starts without instances");
    let ev = e.evaluate_round(60);
    let by = |name: &str| ev.iter().find(|ev| ev.labels["alertname"] == name).unwrap().starts_at;
    assert_eq!(by("cpu"), 0, "firing since before the reload");
    assert_eq!(by("load"), 60, "fired again, as new");
}
