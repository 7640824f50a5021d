//! Properties of the state machine over random value sequences (values, nulls, errors, missing
//! series): invariants that must hold whatever the data, and restart equivalence (stopping and
//! restoring from the state file at any round changes nothing).

mod common;

use std::collections::BTreeMap;

use alert::model::{AlertEvent, Status};
use common::*;
use proptest::prelude::*;

/// What the source answers in one round for the two series `a` and `b`.
#[derive(Clone, Debug)]
enum Input {
    Values(Option<f64>, Option<Option<f64>>),
    Empty,
    Error,
}

fn input() -> impl Strategy<Value = Input> {
    let v = prop_oneof![3 => (0.0f64..100.0).prop_map(Some), 1 => Just(None)];
    prop_oneof![
        8 => (v.clone(), proptest::option::of(v)).prop_map(|(a, b)| Input::Values(a, b)),
        1 => Just(Input::Empty),
        1 => Just(Input::Error),
    ]
}

fn rule(for_rounds: i64, keep_rounds: i64, clear: bool) -> String {
    format!(
        "{RULE}for = {}\nkeep_firing_for = {}\n{}no_data = \"nodata\"\non_error = \"error\"\nmissing_after = 2\n",
        for_rounds * 60,
        keep_rounds * 60,
        if clear { "clear = 70\n" } else { "" }
    )
}

fn feed(src: &Scripted, input: &Input) {
    match input {
        Input::Values(a, b) => {
            let mut s = vec![series("servers.a.cpu", &[*a])];
            if let Some(b) = b {
                s.push(series("servers.b.cpu", &[*b]));
            }
            src.set(s);
        }
        Input::Empty => src.set(vec![]),
        Input::Error => src.fail(),
    }
}

/// Whether the round's input is "bad" for series `name` judged from Normal/Pending (warn
/// threshold 80, no hysteresis): over the threshold, null, empty, or an error.
fn bad_for(input: &Input, name: &str) -> Option<bool> {
    match input {
        Input::Values(a, b) => {
            let v = if name == "servers.a.cpu" { Some(*a) } else { *b };
            v.map(|v| v.is_none_or(|v| v > 80.0))
        }
        Input::Empty | Input::Error => Some(true),
    }
}

fn run(
    inputs: &[Input],
    text: &str,
    restart_at: Option<usize>,
    dir: Option<&std::path::Path>,
) -> Vec<Vec<AlertEvent>> {
    let src = Scripted::new();
    let path = dir.map(|d| d.join("state"));
    let mut e = engine(text, &src, path.clone());
    let mut out = Vec::new();
    for (k, input) in inputs.iter().enumerate() {
        if restart_at == Some(k) {
            e = engine(text, &src, path.clone());
        }
        feed(&src, input);
        out.push(e.evaluate_round(k as i64 * 60));
    }
    out
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(200))]

    #[test]
    fn invariants_hold(
        inputs in proptest::collection::vec(input(), 1..40),
        for_rounds in 0i64..4,
        keep_rounds in 0i64..3,
        clear in any::<bool>(),
    ) {
        let rounds = run(&inputs, &rule(for_rounds, keep_rounds, clear), None, None);
        let mut active: BTreeMap<String, i64> = BTreeMap::new(); // fingerprint -> starts_at
        for (k, events) in rounds.iter().enumerate() {
            let now = k as i64 * 60;
            // Never two events for one instance in a round.
            let mut seen = std::collections::BTreeSet::new();
            for ev in events {
                prop_assert!(seen.insert(ev.fingerprint()), "two events for {:?} at {now}", ev.labels);
            }
            let mut next: BTreeMap<String, i64> = BTreeMap::new();
            for ev in events {
                let fp = ev.fingerprint();
                if ev.is_active() {
                    prop_assert!(ev.status != Status::Normal && ev.status != Status::Pending);
                    match active.get(&fp) {
                        // starts_at is fixed for the whole episode.
                        Some(start) => prop_assert_eq!(*start, ev.starts_at),
                        None => {
                            // A new episode: it starts now, and the input was bad for the
                            // whole pending period before it.
                            prop_assert_eq!(ev.starts_at, now);
                            if let Some(name) = ev.labels.get("name") {
                                let first = k as i64 - for_rounds;
                                prop_assert!(first >= 0, "fired before `for` could elapse");
                                for j in first..=k as i64 {
                                    let input = &inputs[j as usize];
                                    prop_assert_ne!(bad_for(input, name), Some(false),
                                        "fired at {} but round {} was good", now, j);
                                }
                            }
                        }
                    }
                    next.insert(fp, ev.starts_at);
                } else {
                    // A resolution only follows an active round, and ends now.
                    prop_assert!(active.contains_key(&fp), "resolution without an active episode");
                    prop_assert_eq!(ev.ends_at, Some(now));
                }
            }
            // Every instance active last round is either still reported or resolved now.
            for fp in active.keys() {
                prop_assert!(events.iter().any(|e| &e.fingerprint() == fp), "{fp} vanished silently");
            }
            active = next;
        }
    }

}

proptest! {
    // Each case writes the state file (with fsyncs) every round: fewer cases.
    #![proptest_config(ProptestConfig::with_cases(24))]

    #[test]
    fn a_restart_at_any_round_changes_nothing(
        inputs in proptest::collection::vec(input(), 2..30),
        cut in 1usize..29,
        for_rounds in 0i64..4,
        keep_rounds in 0i64..3,
    ) {
        let cut = cut % inputs.len();
        let text = rule(for_rounds, keep_rounds, true);
        let a = tempfile::tempdir().unwrap();
        let b = tempfile::tempdir().unwrap();
        let straight = run(&inputs, &text, None, Some(a.path()));
        let restarted = run(&inputs, &text, Some(cut), Some(b.path()));
        prop_assert_eq!(straight, restarted);
    }
}
