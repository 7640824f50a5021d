//! Backtest on a synthetic history: the exact state machine replayed over stored data.

use std::path::Path;
use std::sync::Arc;

use alert::Error;
use alert::backtest;
use alert::model::Status;
use alert::source::Sources;

const T0: i64 = 86_400 * 19_000;

fn history() -> Sources {
    let mut m = render::MemorySource::new();
    let mut a = vec![Some(10.0); 1200];
    for i in (100..110).chain(500..502) {
        a[i] = Some(90.0);
    }
    m.insert("servers.a.cpu", T0, 60, a);
    m.insert("servers.b.cpu", T0, 60, vec![Some(5.0); 1200]);
    Sources::local(Arc::new(m))
}

fn rules() -> alert::rules::RulesFile {
    alert::rules::parse(
        r#"
[[rule]]
name = "cpu"
target = "servers.*.cpu"
op = ">"
warn = 80
for = "2m"
labels = { host = "{node:1}" }

[[rule]]
name = "web"
kind = "http"
url = "http://127.0.0.1:9/"
"#,
        Path::new("bt.toml"),
    )
    .unwrap()
}

#[test]
fn replays_the_state_machine_over_history() {
    let r = backtest::run(&rules(), &history(), "cpu", T0 + 600, T0 + 60_000, 60).unwrap();
    assert_eq!(r.evaluations, 991);
    // The 10-minute spike (points 100..109, judged one lag later) fires after 2m pending.
    let fired: Vec<(i64, &str)> =
        r.notifications.iter().map(|n| ((n.at - T0) / 60, n.kind)).collect();
    assert_eq!(fired, vec![(103, "firing"), (111, "resolved")]);
    assert!(r.notifications.iter().all(|n| n.labels["host"] == "a"));
    // The 2-minute blip only went pending.
    let pend: Vec<i64> = r
        .transitions
        .iter()
        .filter(|t| t.to == Status::Pending)
        .map(|t| (t.at - T0) / 60)
        .collect();
    assert_eq!(pend, vec![101, 501]);
    assert_eq!(r.firing_seconds.values().copied().collect::<Vec<_>>(), vec![8 * 60]);
    assert_eq!(r.firings, 1);
    assert!((r.flaps_per_day - 1.0 / (990.0 * 60.0 / 86_400.0)).abs() < 1e-9);
    let text = r.to_string();
    assert!(text.contains("backtest of rule `cpu`"), "{text}");
    assert!(text.contains("firing    {host=\"a\", name=\"servers.a.cpu\"}"), "{text}");
    assert!(text.contains("summary: 1 firings, 8m active in total"), "{text}");
    assert!(text.contains("rolled up"), "{text}");
}

#[test]
fn a_coarser_step_still_uses_the_rules_every() {
    let r = backtest::run(&rules(), &history(), "cpu", T0 + 600, T0 + 60_000, 0).unwrap();
    assert_eq!(r.step, 60);
}

#[test]
fn refuses_what_cannot_be_replayed() {
    let s = history();
    assert!(matches!(
        backtest::run(&rules(), &s, "nope", T0, T0 + 60, 60),
        Err(Error::UnknownRule(_))
    ));
    assert!(matches!(
        backtest::run(&rules(), &s, "web", T0, T0 + 60, 60),
        Err(Error::NotReplayable { .. })
    ));
    assert!(matches!(
        backtest::run(&rules(), &s, "cpu", T0 + 60, T0, 60),
        Err(Error::InvalidRange { .. })
    ));
    assert!(matches!(
        backtest::run(&rules(), &s, "cpu", 0, i64::MAX / 2, 1),
        Err(Error::InvalidRange { .. })
    ));
}

#[test]
fn a_failing_history_query_is_an_error() {
    let text = "[[rule]]\nname = \"x\"\ntarget = \"nosuchfunction(a)\"\nop = \">\"\nwarn = 1\n";
    let rules = alert::rules::parse(text, Path::new("x.toml")).unwrap();
    let err = backtest::run(&rules, &history(), "x", T0, T0 + 600, 60).unwrap_err();
    assert!(matches!(err, Error::History { .. }), "{err}");
}
