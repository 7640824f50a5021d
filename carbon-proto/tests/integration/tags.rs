//! Tests of `carbon_proto::tags` against carbon's own `TaggedSeries` (Debian graphite-carbon,
//! run by /usr/bin/python3): normalisation, refusals and on-disk paths for thousands of names.

use carbon_proto::tags::{disk_path, normalize};
use proptest::prelude::*;
use proptest::strategy::ValueTree;
use serde_json::Value;

use crate::reference;

/// For each name: carbon's normalised path (or the error), and `encode` with `/` both ways.
const CARBON_TAGS: &str = r#"
import json, sys
from carbon.util import TaggedSeries
out = []
for path in json.load(sys.stdin):
    try:
        norm = TaggedSeries.parse(path).path
    except Exception as e:
        out.append({'error': str(e)}); continue
    out.append({
        'path': norm,
        'hashed': TaggedSeries.encode(norm, '/', hash_only=True) + '.wsp',
        'named': TaggedSeries.encode(norm, '/', hash_only=False) + '.wsp',
    })
print(json.dumps(out))
"#;

fn tag_text() -> impl Strategy<Value = String> {
    prop_oneof![
        6 => "[a-z0-9_.-]{1,6}",
        2 => "[a-zA-Z0-9~!^=;,{}\"\\\\ é/:-]{0,6}",
    ]
}

fn tagged_name() -> impl Strategy<Value = String> {
    prop_oneof![
        // Carbon form with a few tags, sometimes broken.
        4 => ("~{0,2}[a-z]{1,5}(\\.[a-z0-9]{1,4}){0,2}", prop::collection::vec((tag_text(), tag_text()), 0..5))
            .prop_map(|(m, tags)| {
                let mut s = m;
                for (t, v) in tags {
                    s.push(';');
                    s.push_str(&t);
                    s.push('=');
                    s.push_str(&v);
                }
                s
            }),
        // OpenMetrics form.
        2 => ("[a-z_]{0,6}", prop::collection::vec((tag_text(), tag_text(), prop::sample::select(vec![",", ":,", "", ", "])), 0..4))
            .prop_map(|(m, tags)| {
                let body: Vec<String> = tags.iter().map(|(t, v, sep)| format!("{t}=\"{v}\"{sep}")).collect();
                format!("{m}{{{}}}", body.concat())
            }),
        // Anything.
        1 => "[a-z;=~!^{}\",.\\\\]{0,12}",
    ]
}

#[test]
fn tagged_names_normalize_and_map_to_disk_as_carbon_does() {
    if !reference::have_python_module("carbon.util") {
        return;
    }
    let mut runner = proptest::test_runner::TestRunner::deterministic();
    let names =
        prop::collection::vec(tagged_name(), 3000).new_tree(&mut runner).expect("s").current();
    let out = reference::python(
        CARBON_TAGS,
        &[],
        serde_json::to_string(&names).expect("json").as_bytes(),
    );
    let answers: Vec<Value> = serde_json::from_slice(&out).expect("json");
    let (mut ok, mut refused) = (0, 0);
    for (name, answer) in names.iter().zip(&answers) {
        match (normalize(name), answer.get("error")) {
            (Ok(norm), None) => {
                assert_eq!(norm, answer["path"].as_str().expect("path"), "{name:?}");
                let hashed = disk_path(&norm, true).expect("hashed path");
                assert_eq!(hashed.to_str(), answer["hashed"].as_str(), "{name:?}");
                match disk_path(&norm, false) {
                    Ok(named) => assert_eq!(named.to_str(), answer["named"].as_str(), "{name:?}"),
                    // We refuse readable file names that carbon would turn into directories.
                    Err(_) => assert!(norm.contains('/'), "{norm:?}"),
                }
                ok += 1;
            }
            (Err(e), Some(msg)) => {
                let msg = msg.as_str().expect("message");
                // carbon's unpacking error for two '{' is Python's own message.
                if !msg.starts_with("too many values to unpack") {
                    assert_eq!(e.to_string(), msg, "{name:?}");
                }
                refused += 1;
            }
            (ours, _) => panic!("{name:?}: ours {ours:?}, carbon {answer}"),
        }
    }
    assert!(ok > 300 && refused > 300, "coverage: {ok} accepted, {refused} refused");
}

#[test]
fn the_documented_example_lands_where_graphite_web_looks() {
    // graphite-reference.md §2.2, observed with carbon: test.tagged;z=1;a=2
    let norm = normalize("test.tagged;z=1;a=2").expect("valid");
    assert_eq!(norm, "test.tagged;a=2;z=1");
    let path = disk_path(&norm, true).expect("path");
    let path = path.to_str().expect("utf-8");
    assert!(path.starts_with("_tagged/e77/640/e7764083"), "{path}");
    assert!(path.ends_with("cd4c.wsp"), "{path}");
}

proptest! {
    #[test]
    fn normalizing_is_idempotent_and_never_panics(name in tagged_name()) {
        // Not idempotent in carbon either when the normal form ends in `"}` and has a `{`:
        // it then parses as OpenMetrics.
        if let Ok(norm) = normalize(&name) {
            if norm.ends_with("\"}") && norm.contains('{') {
                return Ok(());
            }
            let again = normalize(&norm);
            prop_assert_eq!(again.as_ref(), Ok(&norm));
            let _ = disk_path(&norm, false);
            let _ = disk_path(&norm, true);
        }
    }

    #[test]
    fn arbitrary_strings_never_panic(name in ".{0,40}") {
        let _ = normalize(&name);
        let _ = disk_path(&name, false);
    }
}
