//! Tests of `store::index`.
//!
//! The reference is graphite-web 1.1.8 itself (Debian's `graphite-web`, importable only by
//! `/usr/bin/python3`): its `StandardFinder.find_nodes` run on the same directory of empty
//! `.wsp` files for thousands of generated patterns, and its `LocalDatabaseTagDB` (on an
//! in-memory SQLite database, as graphite-web's default settings use SQLite) fed the same
//! series and asked the same generated tag queries. When graphite-web is missing these tests
//! print `SKIP` and pass, unless `GRAPHITE_REQUIRE_REFERENCE=1`, when they fail.

use std::collections::{BTreeSet, HashSet};
use std::fs;
use std::io::Write;
use std::path::Path;
use std::process::{Command, Stdio};
use std::sync::Arc;

use proptest::prelude::*;
use serde_json::{Value, json};
use store::index::{IndexError, MetricIndex, Node, TagIndex, TagRegistry, open_data_dir};

// ---------------------------------------------------------------------------------------------
// The reference

/// The environment variable that turns a missing reference into a failure.
const REQUIRE_ENV: &str = "GRAPHITE_REQUIRE_REFERENCE";
/// The system Python, the one that imports Debian's graphite-web.
const PYTHON: &str = "/usr/bin/python3";

/// A settings module for graphite-web: an in-memory SQLite database, logs in the temp dir
/// (the first line sets `LOG_DIR`).
const SETTINGS: &str = r#"
SECRET_KEY = 'graphite-rs tests'
DATABASES = {'default': {'NAME': ':memory:', 'ENGINE': 'django.db.backends.sqlite3'}}
"#;

/// Common start of the reference scripts: argv[1] is a directory holding the settings.
const PRELUDE: &str = r#"
import os, sys, json, warnings
warnings.simplefilter('ignore')
sys.path.insert(0, sys.argv[1])
os.environ['GRAPHITE_SETTINGS_MODULE'] = 'gwtest_settings'
os.environ['DJANGO_SETTINGS_MODULE'] = 'graphite.settings'
os.environ.setdefault('GRAPHITE_STORAGE_DIR', sys.argv[1])
"#;

/// Whether graphite-web is importable; prints SKIP (or panics under `REQUIRE_ENV`) if not.
pub(super) fn have_graphite_web() -> bool {
    let ok = Path::new(PYTHON).exists()
        && Command::new(PYTHON)
            .args(["-c", "import graphite.finders, graphite.tags, django"])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .is_ok_and(|s| s.success());
    if ok {
        return true;
    }
    let reason = format!("{PYTHON} cannot import graphite-web (apt-get install graphite-web)");
    if std::env::var_os(REQUIRE_ENV).is_some_and(|v| v != "0") {
        panic!("reference implementation required ({REQUIRE_ENV} is set) but {reason}");
    }
    eprintln!("SKIP: {reason}");
    false
}

/// Runs a reference script (after [`PRELUDE`]) with `input` as JSON on stdin; its stdout as
/// JSON. A temporary directory holds the settings module and serves as graphite's storage.
pub(super) fn reference(script: &str, input: &Value) -> Value {
    let tmp = tempfile::tempdir().expect("tempdir");
    let settings = format!("LOG_DIR = {:?}\n{SETTINGS}", tmp.path().to_str().expect("utf-8"));
    fs::write(tmp.path().join("gwtest_settings.py"), settings).expect("settings");
    let mut child = Command::new(PYTHON)
        .arg("-c")
        .arg(format!("{PRELUDE}\n{script}"))
        .arg(tmp.path())
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("python");
    let mut stdin = child.stdin.take().expect("stdin");
    let data = serde_json::to_vec(input).expect("json");
    let writer = std::thread::spawn(move || {
        let _ = stdin.write_all(&data);
    });
    let out = child.wait_with_output().expect("wait");
    let _ = writer.join();
    assert!(out.status.success(), "reference failed: {}", String::from_utf8_lossy(&out.stderr));
    serde_json::from_slice(&out.stdout).expect("reference output")
}

/// A small deterministic generator (SplitMix64).
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }
    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }
    fn chance(&mut self, percent: usize) -> bool {
        self.below(100) < percent
    }
    fn pick<'a, T>(&mut self, items: &'a [T]) -> &'a T {
        &items[self.below(items.len())]
    }
}

/// Creates an empty file (and its directories).
fn touch(root: &Path, rel: &str) {
    let p = root.join(rel);
    fs::create_dir_all(p.parent().expect("parent")).expect("mkdir");
    fs::write(p, b"").expect("touch");
}

/// The file of a plain metric name.
fn file_of(name: &str) -> String {
    format!("{}.wsp", name.replace('.', "/"))
}

// ---------------------------------------------------------------------------------------------
// find against graphite-web's StandardFinder

/// For each pattern: `{"nodes": [[path, is_leaf], ...]}`, `{"error": ...}` when graphite-web
/// fails, or `{"skip": ...}` where graphite-web's answer is a bug we do not reproduce: a `**`
/// that is one of several brace variants (the answer then depends on Python's set order,
/// which varies from run to run), or a `**` after an empty component (the empty component
/// leaves a trailing `/` on the directory, and the `**` walk then cuts one character too many
/// off every path below it); and an empty last variant in an escaped last component (the
/// directory listed as `<dir>.`, which we do not list, is then renamed by the escape rule).
const FIND: &str = r#"
from graphite.finders.standard import StandardFinder
from graphite.finders.utils import FindQuery
from graphite.finders import expand_braces
from graphite.util import find_escaped_pattern_fields
req = json.load(sys.stdin)
finder = StandardFinder(directories=[req['dir']])
out = []
for pattern in req['patterns']:
    clean = pattern.replace('\\', '')
    variants = [expand_braces(p) for p in clean.split('.')]
    if any('**' in v and len(v) > 1 for v in variants):
        out.append({'skip': 'globstar among brace variants'})
        continue
    if '' in variants[-1] and len(variants) - 1 in find_escaped_pattern_fields(pattern):
        out.append({'skip': 'escaped empty last component'})
        continue
    empty = [i for i, v in enumerate(variants) if '' in v]
    if empty and any('**' in v for v in variants[empty[0] + 1:]):
        out.append({'skip': 'globstar after an empty component'})
        continue
    try:
        nodes = set((n.path, bool(n.is_leaf)) for n in finder.find_nodes(FindQuery(pattern, None, None)))
        out.append({'nodes': sorted(nodes)})
    except Exception as e:
        out.append({'error': repr(e)})
print(json.dumps(out))
"#;

/// Characters of generated name components (no `.`, `/`, `\` or `;`).
const NAME_CHARS: &[&str] = &[
    "a", "a", "a", "b", "b", "b", "c", "c", "1", "2", "-", "!", "^", "]", "[", "*", "?", "{", "}",
    ",", "é", "_", "z",
];

fn gen_component(rng: &mut Rng) -> String {
    let len = 1 + rng.below(3);
    (0..len).map(|_| *rng.pick(NAME_CHARS)).collect()
}

/// Names with shared prefixes: each level picks from a small pool.
fn gen_names(rng: &mut Rng, count: usize) -> Vec<String> {
    let pools: Vec<Vec<String>> =
        (0..4).map(|_| (0..6).map(|_| gen_component(rng)).collect()).collect();
    let mut names = BTreeSet::new();
    while names.len() < count {
        let depth = 1 + rng.below(4);
        let parts: Vec<String> =
            (0..depth)
                .map(|level| {
                    if rng.chance(85) {
                        rng.pick(&pools[level]).clone()
                    } else {
                        gen_component(rng)
                    }
                })
                .collect();
        if parts[0] == "_tagged" {
            continue;
        }
        names.insert(parts.join("."));
    }
    names.into_iter().collect()
}

/// One token of a pattern component.
fn gen_token(rng: &mut Rng, depth: usize, out: &mut String) {
    match rng.below(100) {
        0..=34 => out.push_str(rng.pick::<&str>(NAME_CHARS)),
        35..=49 => out.push('*'),
        50..=57 => out.push('?'),
        58..=71 => {
            out.push('[');
            for _ in 0..rng.below(5) {
                out.push_str(
                    rng.pick::<&str>(&["a", "b", "c", "z", "!", "-", "^", "]", "1", "é", "["]),
                );
            }
            if rng.chance(85) {
                out.push(']');
            }
        }
        72..=87 if depth < 3 => {
            out.push('{');
            let alternatives = 1 + rng.below(3);
            for i in 0..alternatives {
                if i > 0 {
                    out.push(',');
                }
                for _ in 0..rng.below(3) {
                    gen_token(rng, depth + 1, out);
                }
            }
            if rng.chance(90) {
                out.push('}');
            }
        }
        88..=93 => {
            out.push('\\');
            out.push_str(rng.pick::<&str>(&["*", "?", "[", "{", "a", "b"]));
        }
        _ => out.push_str(rng.pick::<&str>(&["{", "}", ","])),
    }
}

fn gen_pattern(rng: &mut Rng, names: &[String]) -> String {
    // Half the time, start from a real name so that patterns match something.
    let base: Vec<&str> = rng.pick(names).split('.').collect();
    let depth = if rng.chance(50) { base.len() } else { 1 + rng.below(4) };
    let parts: Vec<String> = (0..depth)
        .map(|i| match rng.below(100) {
            0..=5 => "**".to_string(),
            6..=7 => String::new(),
            8..=37 if i < base.len() => base[i].to_string(),
            38..=52 if i < base.len() => {
                // A real component with one character replaced by a wildcard.
                let chars: Vec<char> = base[i].chars().collect();
                let at = rng.below(chars.len());
                chars
                    .iter()
                    .enumerate()
                    .map(|(k, c)| if k == at { *rng.pick(&['*', '?']) } else { *c })
                    .collect()
            }
            _ => {
                let mut s = String::new();
                for _ in 0..1 + rng.below(4) {
                    gen_token(rng, 0, &mut s);
                }
                s
            }
        })
        .collect();
    parts.join(".")
}

/// Our answer as graphite-web's `(path, is_leaf)` pairs.
fn as_pairs(nodes: &[Node]) -> BTreeSet<(String, bool)> {
    let mut out = BTreeSet::new();
    for n in nodes {
        if n.is_leaf {
            out.insert((n.path.clone(), true));
        }
        if n.is_branch {
            out.insert((n.path.clone(), false));
        }
    }
    out
}

#[test]
fn find_matches_graphite_web_standard_finder() {
    if !have_graphite_web() {
        return;
    }
    let mut rng = Rng(0x5EED_F1ED);
    let dir = tempfile::tempdir().expect("tempdir");
    let names = gen_names(&mut rng, 400);
    for name in &names {
        touch(dir.path(), &file_of(name));
    }
    let (index, stats) = MetricIndex::build_from_dir(dir.path()).expect("build");
    assert_eq!(index.to_names(), names);
    assert_eq!(stats.metrics, names.len());
    let mut patterns: Vec<String> = (0..3000).map(|_| gen_pattern(&mut rng, &names)).collect();
    patterns.extend(
        ["*", "**", "*.*", "**.*", "*.**", "a*.**.b*", "{a,b}*.*", "\\*", "*\\*", "[!a]*.*"]
            .iter()
            .map(|s| s.to_string()),
    );
    let answers = reference(FIND, &json!({ "dir": dir.path(), "patterns": patterns }));
    let answers = answers.as_array().expect("list");
    assert_eq!(answers.len(), patterns.len());
    let (mut compared, mut matched_something, mut skipped, mut errors) = (0, 0, 0, 0);
    for (pattern, answer) in patterns.iter().zip(answers) {
        if answer.get("skip").is_some() {
            skipped += 1;
            continue;
        }
        if answer.get("error").is_some() {
            // graphite-web fails when an escaped component's index is past the end of a
            // match (after `**` or an empty component: IndexError); we leave it alone.
            assert!(pattern.contains('\\'), "{pattern}: {answer}");
            errors += 1;
            continue;
        }
        let expected: BTreeSet<(String, bool)> = answer["nodes"]
            .as_array()
            .expect("nodes")
            .iter()
            .map(|n| (n[0].as_str().expect("path").to_string(), n[1].as_bool().expect("leaf")))
            // graphite-web lists a directory itself as `<dir>.` for an empty last component;
            // we do not (it is not a metric name).
            .filter(|(path, _)| !path.is_empty() && !path.ends_with('.'))
            .collect();
        let ours = index.find(pattern).unwrap_or_else(|e| panic!("{pattern}: {e}"));
        assert!(ours.windows(2).all(|w| w[0].path < w[1].path), "{pattern}: not sorted");
        assert_eq!(as_pairs(&ours), expected, "pattern {pattern:?}");
        compared += 1;
        if !expected.is_empty() {
            matched_something += 1;
        }
    }
    eprintln!(
        "find: {compared} patterns agree with graphite-web ({matched_something} matching \
         something), {skipped} skipped, {errors} graphite-web errors"
    );
    assert!(compared > 2800 && matched_something > 800, "{compared} {matched_something}");
}

// ---------------------------------------------------------------------------------------------
// The tag database against graphite-web's LocalDatabaseTagDB

/// Feeds the series, then answers each kind of query; `{"error": kind, "message": ...}` for
/// failures (`value` for graphite-web's ValueErrors, `regex` for Python regex errors).
const TAGDB: &str = r#"
import re, django
django.setup()
from django.core.management import call_command
call_command('migrate', 'tags', verbosity=0)
from django.conf import settings
from graphite.tags.localdatabase import LocalDatabaseTagDB
db = LocalDatabaseTagDB(settings, cache=None, log=None)
req = json.load(sys.stdin)

def run(f):
    try:
        return {'ok': f()}
    except ValueError as e:
        return {'error': 'value', 'message': str(e)}
    except re.error as e:
        return {'error': 'regex', 'message': str(e)}

def limited(results, limit):
    results = sorted(set(results))
    return results[:int(limit)] if limit else results

out = {}
out['normalized'] = [db.tag_series(s) for s in req['series']]
out['find'] = [run(lambda: db.find_series(q)) for q in req['queries']]
out['tags'] = [[t['tag'] for t in db.list_tags(tagFilter=f, limit=l)] for f, l in req['tag_lists']]
def details(tag, f, l):
    r = db.get_tag(tag, valueFilter=f, limit=l)
    return None if r is None else [[v['value'], v['count']] for v in r['values']]
out['values'] = [details(*a) for a in req['tag_details']]
out['ac_tags'] = [run(lambda: limited(db.auto_complete_tags(e, p, l), l)) for e, p, l in req['ac_tags']]
out['ac_values'] = [run(lambda: limited(db.auto_complete_values(e, t, p, l), l)) for t, e, p, l in req['ac_values']]
for s in req['delete']:
    db.del_series(s)
out['find_after'] = [run(lambda: db.find_series(q)) for q in req['queries']]
out['values_after'] = [details(*a) for a in req['tag_details']]
print(json.dumps(out))
"#;

const METRICS: &[&str] = &["cpu", "disk.used", "mem.free", "a.b.c", "web", "~tilde.m"];
const TAGS: &[&str] = &["dc", "host", "rack", "env", "a-b", "a", "zone"];
const VALUES: &[&str] = &[
    "1", "2", "10", "web01", "web02", "web10", "us-east", "us-west", "a.b", "x=y", "!x", "^z",
    "UP", "é",
];
const REGEXES: &[&str] = &[
    "web",
    "web0[12]",
    ".*",
    "us-(east|west)",
    "1|2",
    "^1",
    "^(1|2)$",
    "a.b",
    "x?",
    "[a-z]+",
    "",
    "\\d+",
    "^$",
    "(",
    "[",
    "u.*t",
    "web.*|1",
    "^us|2",
    "[^w].*",
    "(?i:up)",
    "é",
    "0$",
    "x=",
    ".+",
];

fn gen_series(rng: &mut Rng) -> String {
    let mut s = rng.pick(METRICS).to_string();
    for _ in 0..rng.below(4) {
        s.push(';');
        s.push_str(rng.pick::<&str>(TAGS));
        s.push('=');
        s.push_str(rng.pick::<&str>(VALUES));
    }
    s
}

fn gen_expr(rng: &mut Rng) -> String {
    let tag = if rng.chance(15) { "name" } else { *rng.pick(TAGS) };
    let tag = if rng.chance(3) { "zz" } else { tag };
    let op = *rng.pick(&["=", "!=", "=~", "!=~"]);
    let spec = match op {
        "=" | "!=" if tag == "name" => rng.pick(METRICS).trim_start_matches('~').to_string(),
        "=" | "!=" => {
            if rng.chance(15) {
                String::new()
            } else {
                rng.pick(VALUES).to_string()
            }
        }
        _ => rng.pick(REGEXES).to_string(),
    };
    if rng.chance(2) {
        // Something that does not parse.
        return rng.pick(&["", "=x", "a", "a;b=c", "a=b;c", "!=x", "a!x"]).to_string();
    }
    format!("{tag}{op}{spec}")
}

fn gen_exprs(rng: &mut Rng) -> Vec<String> {
    (0..1 + rng.below(3)).map(|_| gen_expr(rng)).collect()
}

/// Compares one of our results with a reference `run()` answer.
fn same_result(ours: Result<Vec<String>, IndexError>, reference: &Value, what: &str) {
    match (ours, reference.get("ok")) {
        (Ok(list), Some(expected)) => {
            let expected: Vec<String> = serde_json::from_value(expected.clone()).expect("list");
            assert_eq!(list, expected, "{what}");
        }
        (Err(e), None) => match reference["error"].as_str() {
            Some("value") => {
                assert_eq!(e.to_string(), reference["message"].as_str().expect("msg"), "{what}")
            }
            Some("regex") => assert!(matches!(e, IndexError::InvalidRegex { .. }), "{what}: {e}"),
            other => panic!("{what}: unexpected reference error {other:?}"),
        },
        (ours, _) => panic!("{what}: ours {ours:?}, graphite-web {reference}"),
    }
}

fn values_of(index: &TagIndex, tag: &str, filter: Option<&str>, limit: Option<usize>) -> Value {
    match index.tag_values(tag, filter, limit).expect("values") {
        None => Value::Null,
        Some(t) => json!(t.values.iter().map(|v| json!([v.value, v.count])).collect::<Vec<_>>()),
    }
}

#[test]
fn tag_queries_match_graphite_web_local_database_tagdb() {
    if !have_graphite_web() {
        return;
    }
    let mut rng = Rng(0x7A6D_B00C);
    let series: Vec<String> = (0..300).map(|_| gen_series(&mut rng)).collect();
    let queries: Vec<Vec<String>> = (0..3000).map(|_| gen_exprs(&mut rng)).collect();
    let filters = ["", "d", "a|h", "^a", "r.*", "[a-d]", "e", "1", "web0", "us-"];
    let limits = [None, Some(0), Some(1), Some(2), Some(100)];
    let tag_lists: Vec<(Option<&str>, Option<usize>)> = (0..60)
        .map(|_| {
            let f = *rng.pick(&filters);
            (if f.is_empty() { None } else { Some(f) }, *rng.pick(&limits))
        })
        .collect();
    let mut all_tags: Vec<&str> = TAGS.to_vec();
    all_tags.extend(["name", "zz"]);
    let tag_details: Vec<(&str, Option<&str>, Option<usize>)> = (0..80)
        .map(|_| {
            let f = *rng.pick(&filters);
            (*rng.pick(&all_tags), if f.is_empty() { None } else { Some(f) }, *rng.pick(&limits))
        })
        .collect();
    let prefixes = [None, Some(""), Some("a"), Some("d"), Some("w"), Some("web0"), Some("u")];
    let ac_limits = [0usize, 1, 2, 5, 100];
    let ac_tags: Vec<(Vec<String>, Option<&str>, usize)> = (0..300)
        .map(|_| {
            let exprs = if rng.chance(30) { Vec::new() } else { gen_exprs(&mut rng) };
            (exprs, *rng.pick(&prefixes), *rng.pick(&ac_limits))
        })
        .collect();
    let ac_values: Vec<(&str, Vec<String>, Option<&str>, usize)> = (0..300)
        .map(|_| {
            let exprs = if rng.chance(30) { Vec::new() } else { gen_exprs(&mut rng) };
            (*rng.pick(&all_tags), exprs, *rng.pick(&prefixes), *rng.pick(&ac_limits))
        })
        .collect();
    let delete: Vec<String> = series.iter().step_by(3).cloned().collect();

    let index = TagIndex::new();
    for s in &series {
        index.insert(s).expect("insert");
    }
    let answer = reference(
        TAGDB,
        &json!({
            "series": series, "queries": queries, "tag_lists": tag_lists,
            "tag_details": tag_details, "ac_tags": ac_tags, "ac_values": ac_values,
            "delete": delete,
        }),
    );
    let normalized: BTreeSet<String> =
        serde_json::from_value(answer["normalized"].clone()).expect("normalized");
    assert_eq!(index.to_names(), normalized.into_iter().collect::<Vec<_>>());

    let mut found = 0;
    for (q, reference) in queries.iter().zip(answer["find"].as_array().expect("find")) {
        let exprs: Vec<&str> = q.iter().map(String::as_str).collect();
        let ours = index.find_series(&exprs);
        found += ours.as_ref().map_or(0, |v| usize::from(!v.is_empty()));
        same_result(ours, reference, &format!("findSeries {q:?}"));
    }
    assert!(found > 500, "only {found} queries found something");
    for ((f, l), reference) in tag_lists.iter().zip(answer["tags"].as_array().expect("tags")) {
        let ours: Vec<String> =
            index.tags(*f, *l).expect("tags").into_iter().map(|t| t.tag).collect();
        let expected: Vec<String> = serde_json::from_value(reference.clone()).expect("tags");
        assert_eq!(ours, expected, "tags filter={f:?} limit={l:?}");
    }
    for ((t, f, l), reference) in tag_details.iter().zip(answer["values"].as_array().expect("v")) {
        assert_eq!(&values_of(&index, t, *f, *l), reference, "tag {t} filter={f:?} limit={l:?}");
    }
    for ((e, p, l), reference) in ac_tags.iter().zip(answer["ac_tags"].as_array().expect("ac")) {
        let exprs: Vec<&str> = e.iter().map(String::as_str).collect();
        let ours = index.auto_complete_tags(&exprs, *p, *l);
        same_result(ours, reference, &format!("autoComplete/tags {e:?} prefix={p:?} limit={l}"));
    }
    for ((t, e, p, l), reference) in
        ac_values.iter().zip(answer["ac_values"].as_array().expect("v"))
    {
        let exprs: Vec<&str> = e.iter().map(String::as_str).collect();
        let ours = index.auto_complete_values(t, &exprs, *p, *l);
        same_result(ours, reference, &format!("autoComplete/values {t} {e:?} {p:?} {l}"));
    }

    for s in &delete {
        index.remove(s).expect("remove");
    }
    for (q, reference) in queries.iter().zip(answer["find_after"].as_array().expect("find")) {
        let exprs: Vec<&str> = q.iter().map(String::as_str).collect();
        same_result(index.find_series(&exprs), reference, &format!("after deletes {q:?}"));
    }
    for ((t, f, l), reference) in
        tag_details.iter().zip(answer["values_after"].as_array().expect("v"))
    {
        // graphite-web keeps a tag whose series are all gone (with no values); we drop it.
        let ours = values_of(&index, t, *f, *l);
        let reference = if reference.as_array().is_some_and(Vec::is_empty) {
            Value::Null
        } else {
            reference.clone()
        };
        let ours = if ours.as_array().is_some_and(Vec::is_empty) { Value::Null } else { ours };
        assert_eq!(ours, reference, "after deletes: tag {t} filter={f:?} limit={l:?}");
    }
}

// ---------------------------------------------------------------------------------------------
// Models

/// A naive glob matcher for the subset of the syntax the model test generates: `*`, `?`,
/// `[set]`, `[!set]` with plain characters and `x-y` ranges.
fn naive_glob(pattern: &[char], name: &[char]) -> bool {
    match pattern.first() {
        None => name.is_empty(),
        Some('*') => (0..=name.len()).any(|k| naive_glob(&pattern[1..], &name[k..])),
        Some('?') => !name.is_empty() && naive_glob(&pattern[1..], &name[1..]),
        Some('[') => {
            let Some(close) = pattern.iter().position(|&c| c == ']') else {
                return name.first() == Some(&'[') && naive_glob(&pattern[1..], &name[1..]);
            };
            let (negated, set) = match pattern[1..close].split_first() {
                Some(('!', rest)) => (true, rest),
                _ => (false, &pattern[1..close]),
            };
            let Some(&c) = name.first() else { return false };
            let mut hit = false;
            let mut i = 0;
            while i < set.len() {
                if i + 2 < set.len() && set[i + 1] == '-' {
                    hit |= set[i] <= c && c <= set[i + 2];
                    i += 3;
                } else {
                    hit |= set[i] == c;
                    i += 1;
                }
            }
            hit != negated && naive_glob(&pattern[close + 1..], &name[1..])
        }
        Some(&p) => name.first() == Some(&p) && naive_glob(&pattern[1..], &name[1..]),
    }
}

/// Whether a path's components match the pattern's (`**` as graphite-web: any number of
/// levels, at least one when it is last).
fn naive_path(pattern: &[&str], path: &[&str]) -> bool {
    match pattern.split_first() {
        None => path.is_empty(),
        Some((&"**", [])) => !path.is_empty(),
        Some((&"**", rest)) => (0..=path.len()).any(|k| naive_path(rest, &path[k..])),
        Some((p, rest)) => match path.split_first() {
            Some((c, tail)) => {
                let p: Vec<char> = p.chars().collect();
                let c: Vec<char> = c.chars().collect();
                naive_glob(&p, &c) && naive_path(rest, tail)
            }
            None => false,
        },
    }
}

/// The model's find: every name and every proper prefix of one is a candidate.
fn naive_find(names: &HashSet<String>, pattern: &str) -> BTreeSet<(String, bool)> {
    let pattern: Vec<&str> = pattern.split('.').collect();
    let mut out = BTreeSet::new();
    for name in names {
        let parts: Vec<&str> = name.split('.').collect();
        for k in 1..=parts.len() {
            let path = &parts[..k];
            if naive_path(&pattern, path) {
                out.insert((path.join("."), k == parts.len()));
            }
        }
    }
    out
}

fn model_name() -> impl Strategy<Value = String> {
    prop::collection::vec("[abc]{1,2}", 1..4).prop_map(|parts| parts.join("."))
}

fn model_pattern() -> impl Strategy<Value = String> {
    let component = prop_oneof![
        3 => "[abc*?]{1,3}",
        1 => "\\[!?[abc]{1,2}(-c)?\\][abc*]?",
        1 => Just("**".to_string()),
    ];
    prop::collection::vec(component, 1..4).prop_map(|parts| parts.join("."))
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 256, ..ProptestConfig::default() })]

    #[test]
    fn find_never_panics(pattern in any::<String>(), ascii in "[a-c.*?\\[\\]{},!\\\\-]{0,40}") {
        let index = MetricIndex::new();
        for name in ["a.b", "a.b.c", "b.c", "c"] {
            index.insert(name);
        }
        for p in [pattern, ascii] {
            match index.find(&p) {
                Ok(nodes) => prop_assert!(nodes.iter().all(|n| n.is_leaf || n.is_branch)),
                Err(IndexError::PatternTooComplex { .. }) => {}
                Err(e) => prop_assert!(false, "{p:?}: {e}"),
            }
        }
    }

    #[test]
    fn find_agrees_with_a_naive_model(
        names in prop::collection::hash_set(model_name(), 0..40),
        patterns in prop::collection::vec(model_pattern(), 1..10),
    ) {
        let index = MetricIndex::new();
        for n in &names {
            prop_assert!(index.insert(n));
        }
        prop_assert_eq!(index.len(), names.len());
        for pattern in &patterns {
            let ours = as_pairs(&index.find(pattern).expect("find"));
            prop_assert_eq!(ours, naive_find(&names, pattern), "pattern {}", pattern);
        }
    }

    #[test]
    fn inserts_and_removes_agree_with_a_hash_set(
        ops in prop::collection::vec((any::<bool>(), model_name()), 0..200),
    ) {
        let index = MetricIndex::new();
        let mut model = HashSet::new();
        for (insert, name) in &ops {
            if *insert {
                prop_assert_eq!(index.insert(name), model.insert(name.clone()));
            } else {
                prop_assert_eq!(index.remove(name), model.remove(name));
            }
            prop_assert_eq!(index.len(), model.len());
        }
        let mut expected: Vec<String> = model.iter().cloned().collect();
        expected.sort();
        prop_assert_eq!(index.to_names(), expected);
        for name in &model {
            prop_assert!(index.contains(name));
        }
        prop_assert_eq!(as_pairs(&index.find("**").expect("find")), naive_find(&model, "**"));
    }

    #[test]
    fn equality_queries_agree_with_a_naive_filter(
        series in prop::collection::vec(
            ("[ab]", prop::collection::btree_map("[xyz]", "[12]", 0..3)), 0..30),
        query in prop::collection::btree_map("[xyz]", "[12]", 1..3),
    ) {
        let index = TagIndex::new();
        let mut model = BTreeSet::new();
        for (metric, tags) in &series {
            let mut name = metric.clone();
            for (t, v) in tags {
                name.push_str(&format!(";{t}={v}"));
            }
            index.insert(&name).expect("insert");
            model.insert((name, tags.clone()));
        }
        let exprs: Vec<String> = query.iter().map(|(t, v)| format!("{t}={v}")).collect();
        let exprs: Vec<&str> = exprs.iter().map(String::as_str).collect();
        let expected: Vec<String> = model
            .iter()
            .filter(|(_, tags)| query.iter().all(|(t, v)| tags.get(t) == Some(v)))
            .map(|(name, _)| name.clone())
            .collect();
        prop_assert_eq!(index.find_series(&exprs).expect("find"), expected);
    }
}

// ---------------------------------------------------------------------------------------------
// Concurrency, persistence, scale

#[test]
fn concurrent_inserts_and_finds_see_consistent_results() {
    let index = Arc::new(MetricIndex::new());
    let writers: Vec<_> = (0..4)
        .map(|w| {
            let index = Arc::clone(&index);
            std::thread::spawn(move || {
                for i in 0..5000 {
                    // Every writer inserts the shared names too.
                    index.insert(&format!("servers.host{}.cpu.{}", i % 50, i % 100));
                    index.insert(&format!("w{w}.m{i}"));
                }
            })
        })
        .collect();
    let readers: Vec<_> = (0..2)
        .map(|_| {
            let index = Arc::clone(&index);
            std::thread::spawn(move || {
                let mut last = 0;
                for _ in 0..200 {
                    let found = index.find("servers.*.cpu.*").expect("find");
                    // Names are only added: a later find never sees fewer.
                    assert!(found.len() >= last);
                    last = found.len();
                    assert!(found.iter().all(|n| n.is_leaf && !n.is_branch));
                }
            })
        })
        .collect();
    for t in writers.into_iter().chain(readers) {
        t.join().expect("thread");
    }
    assert_eq!(index.find("servers.*.cpu.*").expect("find").len(), 100);
    assert_eq!(index.len(), 100 + 4 * 5000);
    assert_eq!(index.find("w3.*").expect("find").len(), 5000);
}

#[test]
fn open_data_dir_joins_the_directory_and_the_registry() {
    let dir = tempfile::tempdir().expect("tempdir");
    let root = dir.path();
    touch(root, "servers/web01/cpu.wsp");
    touch(root, "_tagged/e77/640/test_DOT_tagged;a=2;z=1.wsp");
    let hashed = carbon_proto::tags::disk_path("disk.used;dc=dc1;host=web01", true).expect("path");
    touch(root, hashed.to_str().expect("utf-8"));
    {
        let (metrics, tags, report) = open_data_dir(root).expect("open");
        assert_eq!(report.build.tagged_hashed, 1);
        assert_eq!(report.build.tagged_named, 1);
        // The readable-name file went into the tag index (and so into the registry).
        assert_eq!(tags.to_names(), ["test.tagged;a=2;z=1"]);
        assert_eq!(metrics.len(), 2);
        // The series stored by hash is registered when its points arrive.
        assert!(tags.insert("disk.used;host=web01;dc=dc1").expect("insert"));
        assert!(metrics.insert("disk.used;dc=dc1;host=web01"));
        tags.sync().expect("sync");
    }
    let (metrics, tags, report) = open_data_dir(root).expect("reopen");
    assert_eq!(report.registry.series, 2);
    assert_eq!(tags.find_series(&["dc=dc1"]).expect("find"), ["disk.used;dc=dc1;host=web01"]);
    assert_eq!(
        metrics.find("disk.used;dc=dc1;host=web01").expect("find"),
        [Node { path: "disk.used;dc=dc1;host=web01".into(), is_leaf: true, is_branch: false }]
    );
    assert_eq!(
        metrics.to_names(),
        ["disk.used;dc=dc1;host=web01", "servers.web01.cpu", "test.tagged;a=2;z=1"]
    );
    // The registry is hidden from graphite-web's finder (and from ours).
    assert!(TagRegistry::path_in(root).exists());
    assert_eq!(metrics.find("*").expect("find").len(), 1);
}

#[test]
fn a_torn_registry_line_loses_only_that_series() {
    let dir = tempfile::tempdir().expect("tempdir");
    {
        let (tags, _) = TagIndex::open(dir.path()).expect("open");
        for i in 0..10 {
            tags.insert(&format!("m;i={i}")).expect("insert");
        }
    }
    let path = TagRegistry::path_in(dir.path());
    let data = fs::read(&path).expect("read");
    // Cut the last record at every byte: the nine before it always survive.
    let last_start = data[..data.len() - 1].iter().rposition(|&b| b == b'\n').expect("nl") + 1;
    for cut in last_start..data.len() {
        fs::write(&path, &data[..cut]).expect("write");
        let (tags, load) = TagIndex::open(dir.path()).expect("open");
        assert_eq!(tags.len(), 9, "cut at {cut}");
        assert_eq!(load.torn_tail_bytes, (cut - last_start) as u64);
        // The next series starts on a fresh line.
        tags.insert("m;i=new").expect("insert");
        drop(tags);
        let (tags, load) = TagIndex::open(dir.path()).expect("open");
        assert_eq!((tags.len(), load.torn_tail_bytes, load.corrupt_lines), (10, 0, 0));
    }
}

#[test]
fn registry_compacts_after_many_removals() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (tags, _) = TagIndex::open(dir.path()).expect("open");
    for i in 0..2000 {
        tags.insert(&format!("m;i={i}")).expect("insert");
    }
    let size = fs::metadata(TagRegistry::path_in(dir.path())).expect("meta").len();
    for i in 0..1500 {
        tags.remove(&format!("m;i={i}")).expect("remove");
    }
    let after = fs::metadata(TagRegistry::path_in(dir.path())).expect("meta").len();
    assert!(after < size / 2, "{after} >= {size} / 2: not compacted");
    drop(tags);
    let (tags, load) = TagIndex::open(dir.path()).expect("open");
    assert_eq!(tags.len(), 500);
    assert!(load.records < 1500, "{load:?}");
}

/// `servers.hostNNNNN.<group>.<item>.<stat>`-like names, 95 a host (4 to 6
/// components, shared prefixes), as collectd or Diamond send them.
fn typical_names(count: usize) -> Vec<String> {
    let mut per_host = Vec::new();
    for cpu in 0..4 {
        for s in ["user", "system", "idle", "iowait", "irq", "softirq", "steal", "nice"] {
            per_host.push(format!("cpu.cpu{cpu}.{s}"));
        }
    }
    for s in ["used", "free", "cached", "buffers", "swap_used", "swap_free"] {
        per_host.push(format!("memory.{s}"));
    }
    for d in ["sda", "sdb"] {
        for s in ["reads", "writes", "read_bytes", "write_bytes", "io_time", "weighted_io_time"] {
            per_host.push(format!("disk.{d}.{s}"));
        }
    }
    for i in ["eth0", "eth1"] {
        for s in ["rx_bytes", "tx_bytes", "rx_packets", "tx_packets", "rx_errors", "tx_errors"] {
            per_host.push(format!("net.{i}.{s}"));
        }
    }
    for s in ["load1", "load5", "load15"] {
        per_host.push(format!("load.{s}"));
    }
    for fs in ["root", "var", "home"] {
        for s in ["used", "free", "reserved"] {
            per_host.push(format!("df.{fs}.{s}"));
        }
    }
    for m in ["get", "post", "put", "delete"] {
        for s in ["count", "p50", "p95", "p99", "max"] {
            per_host.push(format!("app.requests.{m}.{s}"));
        }
    }
    per_host.push("uptime".to_string());
    (0..count)
        .map(|i| {
            let host = i / per_host.len();
            format!("servers.host{host:05}.{}", per_host[i % per_host.len()])
        })
        .collect()
}

#[test]
fn typical_names_take_under_100_bytes_each() {
    let names = typical_names(100_000);
    let index = MetricIndex::new();
    for n in &names {
        assert!(index.insert(n));
    }
    index.shrink_to_fit();
    let per_metric = index.heap_bytes() as f64 / names.len() as f64;
    eprintln!("{per_metric:.1} bytes a metric (heap capacities) for {} names", names.len());
    assert!(per_metric < 100.0, "{per_metric}");
    assert_eq!(index.find("servers.host0000[01].cpu.*.idle").expect("find").len(), 8);
    let uptimes = names.iter().filter(|n| n.ends_with(".uptime")).count();
    assert_eq!(index.find("servers.*.uptime").expect("find").len(), uptimes);
}

/// Creates a million empty files in a realistic tree and times `build_from_dir` (slow: run
/// with `cargo test --release -p store --test integration -- --ignored million --nocapture`).
#[test]
#[ignore = "creates a million files; run on purpose"]
fn builds_the_index_of_a_million_files() {
    let names = typical_names(1_000_000);
    let dir = tempfile::tempdir_in(std::env::temp_dir()).expect("tempdir");
    let start = std::time::Instant::now();
    let mut made = HashSet::new();
    for name in &names {
        let file = dir.path().join(file_of(name));
        let parent = file.parent().expect("parent").to_path_buf();
        if made.insert(parent.clone()) {
            fs::create_dir_all(&parent).expect("mkdir");
        }
        fs::File::create(&file).expect("create");
    }
    eprintln!("created {} files in {:?}", names.len(), start.elapsed());
    for run in 0..3 {
        let (index, stats) = MetricIndex::build_from_dir(dir.path()).expect("build");
        assert_eq!(index.len(), names.len());
        eprintln!(
            "run {run}: build_from_dir: {} metrics, {} directories in {:?} on {} threads; {:.1} \
             bytes a metric (heap capacities)",
            stats.metrics,
            stats.directories,
            stats.elapsed,
            stats.threads,
            index.heap_bytes() as f64 / names.len() as f64
        );
    }
}
