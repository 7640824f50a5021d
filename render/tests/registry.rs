//! The function registry against graphite-web 1.1.8's: every name graphite-web registers
//! (`SeriesFunctions`, aliases included, and the pie functions of `/functions?type=pie`) must
//! be registered here with the same group, aggregator flag and parameters (name, type,
//! required, default, multiple, options and suggestions, in order), because `/functions`
//! hands them to Grafana's editor and keyword arguments bind by those names. The signature
//! text (`/functions`' `function`) is compared too.
//!
//! graphite-web's side is dumped by the real Python (`/usr/bin/python3`, which can import
//! `graphite`); its `functionInfo` calls `inspect.getargspec`, which Python 3.11 no longer has,
//! so the dump reads the registry and `inspect.signature` directly instead.
//!
//! Without graphite-web the test prints why and passes, unless `GRAPHITE_REQUIRE_REFERENCE=1`.

mod common;

use std::collections::BTreeMap;

use render::function::{Default, FunctionDef, Param};
use serde_json::{Value, json};

/// Prints one JSON object per function: `kind` (`series` or `pie`), `name`, `group`,
/// `aggregator`, `signature` and `params`, each value as `[kind, text]` (`bool`, `int`,
/// `float` as `repr`, `str`) or null.
const REFERENCE: &str = r#"
import os, sys, json, inspect, warnings
os.environ.setdefault('DJANGO_SETTINGS_MODULE', 'graphite.settings')
warnings.simplefilter('ignore')
try:
    import django
    django.setup()
    from graphite.functions import SeriesFunctions, PieFunctions
except Exception as e:
    print('cannot import graphite: %r' % (e,), file=sys.stderr)
    sys.exit(3)

def val(v):
    if v is None: return None
    if isinstance(v, bool): return ['bool', str(v)]
    if isinstance(v, int): return ['int', str(v)]
    if isinstance(v, float): return ['float', repr(v)]
    return ['str', str(v)]

def signature(name, f):
    params = list(inspect.signature(f).parameters.values())[1:]
    return name + '(' + ', '.join(str(p) for p in params) + ')'

def dump(kind, funcs):
    for name in sorted(funcs):
        f = funcs[name]
        params = [{'name': p.name, 'type': p.type.name, 'required': p.required,
                   'default': val(p.default), 'multiple': p.multiple,
                   'options': [val(o) for o in p.options],
                   'suggestions': [val(o) for o in (p.suggestions or [])]}
                  for p in f.params]
        print(json.dumps({'kind': kind, 'name': name, 'group': f.group,
                          'aggregator': getattr(f, 'aggregator', False) is True,
                          'signature': signature(name, f), 'params': params}))

dump('series', SeriesFunctions())
dump('pie', PieFunctions())
"#;

/// Signatures that differ from graphite-web's for a known reason, with the reason (none
/// today). Ours are written from the declared parameters (with [`Param::py_name`] and
/// [`Param::fallback`] where the Python argument's name or default differs); graphite-web's
/// come from the Python function.
const KNOWN_SIGNATURE_DIFFERENCES: &[(&str, &str)] = &[];

/// A value as `[kind, text]`, the way the Python side writes it.
fn typed(kind: &str, text: impl Into<String>) -> Value {
    json!([kind, text.into()])
}

fn default_value(d: Default) -> Value {
    match d {
        Default::Bool(b) => typed("bool", if b { "True" } else { "False" }),
        Default::Int(i) => typed("int", i.to_string()),
        Default::Float(f) => typed("float", render::pyfmt::float_repr(f)),
        Default::Str(s) => typed("str", s),
        Default::None => Value::Null,
    }
}

/// An option or suggestion as `/functions` writes it (`True`, `False`, `None` and integers
/// become JSON values, see `http/functions.rs`).
fn choice_value(text: &str) -> Value {
    match text {
        "True" | "False" => typed("bool", text),
        "None" => Value::Null,
        _ if !text.starts_with('+') && text.parse::<i64>().is_ok() => typed("int", text),
        _ => typed("str", text),
    }
}

fn param_value(p: &Param) -> Value {
    json!({
        "name": p.name,
        "type": p.ty.name(),
        "required": p.required,
        "default": p.default.map_or(Value::Null, default_value),
        "multiple": p.multiple,
        "options": p.options.iter().map(|o| choice_value(o)).collect::<Vec<_>>(),
        "suggestions": p.suggestions.iter().map(|o| choice_value(o)).collect::<Vec<_>>(),
    })
}

/// What the comparison looks at, for one of our definitions.
fn ours(kind: &str, def: &FunctionDef) -> Value {
    json!({
        "kind": kind,
        "name": def.name,
        "group": def.group,
        "aggregator": def.aggregator,
        "signature": def.signature(),
        "params": def.params.iter().map(param_value).collect::<Vec<_>>(),
    })
}

/// The differences between two descriptions of one function, one line each.
fn differences(name: &str, want: &Value, got: &Value) -> Vec<String> {
    let mut out = Vec::new();
    for key in ["group", "aggregator"] {
        if want[key] != got[key] {
            out.push(format!("{name}: {key} is {} in graphite-web, {} here", want[key], got[key]));
        }
    }
    let known = KNOWN_SIGNATURE_DIFFERENCES.iter().any(|(n, _)| *n == name);
    match (want["signature"] == got["signature"], known) {
        (false, false) => out.push(format!(
            "{name}: signature is {} in graphite-web, {} here",
            want["signature"], got["signature"]
        )),
        (true, true) => out.push(format!(
            "{name}: the signature matches now; remove it from KNOWN_SIGNATURE_DIFFERENCES"
        )),
        _ => {}
    }
    let empty = Vec::new();
    let want_params = want["params"].as_array().unwrap_or(&empty);
    let got_params = got["params"].as_array().unwrap_or(&empty);
    if want_params.len() != got_params.len() {
        out.push(format!(
            "{name}: {} parameters in graphite-web, {} here",
            want_params.len(),
            got_params.len()
        ));
    }
    for (i, (w, g)) in want_params.iter().zip(got_params).enumerate() {
        for key in ["name", "type", "required", "default", "multiple", "options", "suggestions"] {
            if w[key] != g[key] {
                out.push(format!(
                    "{name}: parameter {i} ({}) {key} is {} in graphite-web, {} here",
                    w["name"], w[key], g[key]
                ));
            }
        }
    }
    out
}

#[test]
fn registry_matches_graphite_web() {
    let Some(out) = common::run_reference("registry comparison", REFERENCE, String::new()) else {
        return;
    };
    let reference: BTreeMap<(String, String), Value> = out
        .lines()
        .map(|line| {
            let v: Value = serde_json::from_str(line).expect("one JSON object per line");
            let key = (
                v["kind"].as_str().unwrap_or_default().to_string(),
                v["name"].as_str().unwrap_or_default().to_string(),
            );
            (key, v)
        })
        .collect();
    let mut mine: BTreeMap<(String, String), Value> = BTreeMap::new();
    for def in render::function::all() {
        mine.insert(("series".into(), def.name.to_string()), ours("series", def));
    }
    for def in render::function::pie_functions() {
        mine.insert(("pie".into(), def.name.to_string()), ours("pie", def));
    }

    let mut problems = Vec::new();
    for ((kind, name), want) in &reference {
        match mine.get(&(kind.clone(), name.clone())) {
            None => problems.push(format!("{name}: a graphite-web {kind} function missing here")),
            Some(got) => problems.extend(differences(name, want, got)),
        }
    }
    for (kind, name) in mine.keys() {
        if !reference.contains_key(&(kind.clone(), name.clone())) {
            problems.push(format!("{name}: a {kind} function graphite-web does not register"));
        }
    }
    let series = reference.keys().filter(|(kind, _)| kind == "series").count();
    eprintln!("{series} series functions and {} pie functions compared", reference.len() - series);
    assert!(series >= 151, "graphite-web 1.1.8 registers 151 names, the dump has {series}");
    assert!(problems.is_empty(), "{} differences:\n{}", problems.len(), problems.join("\n"));
}
