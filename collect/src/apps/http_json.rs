//! Diamond's `HTTPJSONCollector`: GET a URL and publish every numeric leaf of the JSON document
//! under `httpjson.`, its path of keys joined with dots.
//!
//! `{"a": {"b": 1, "c": [5, 6], "ok": true, "name": "x"}}` gives `a.b 1`, `a.c.0 5`, `a.c.1 6`,
//! `a.ok 1`. Numbers are published as they are; `true`/`false` as 1/0; strings only when the
//! whole string is a number (`"42"`, as Diamond's `int(value)` test lets through); `null` and
//! other strings are skipped. Arrays are indexed from 0 (Diamond failed on arrays). Each key is
//! sanitised (dots, whitespace, `/`, `;` become `_`; an empty key becomes `_`) so a key cannot
//! add tree levels; Diamond's names started with a stray dot (`httpjson..a.b`), ours do not.
//!
//! Options: `url` (`http://localhost/stat`; `https://` too), `headers` (comma separated
//! `Name: value` items), `tls_verify` (true) and `ca_file` (the system's CA store) for `https`,
//! `connect_timeout` (5 s), `timeout` (10 s).

use serde_json::Value;

use super::http::{self, Target};
use super::{AppError, Timeouts, sanitize_node};
use crate::error::Result;
use crate::options::Options;
use crate::sample::{Collector, Env, RunContext, Sample};

/// The most samples one document may give; the rest are dropped with a log line. A 16 MiB
/// body of tiny numbers could otherwise make millions of metrics, each a whisper file.
pub const MAX_LEAVES: usize = 100_000;

/// Flattens `doc` into `(dotted name, value)` pairs (see the module docs), at most
/// [`MAX_LEAVES`]; returns whether leaves were dropped. A scalar document is named `value`.
pub fn flatten(doc: &Value, out: &mut Vec<(String, f64)>) -> bool {
    let mut truncated = false;
    match doc {
        Value::Object(_) | Value::Array(_) => walk(doc, &mut String::new(), out, &mut truncated),
        _ => {
            if let Some(v) = leaf(doc) {
                out.push(("value".to_owned(), v));
            }
        }
    }
    truncated
}

fn walk(v: &Value, prefix: &mut String, out: &mut Vec<(String, f64)>, truncated: &mut bool) {
    let mut visit = |label: &str, child: &Value, out: &mut Vec<(String, f64)>| {
        let len = prefix.len();
        if !prefix.is_empty() {
            prefix.push('.');
        }
        prefix.push_str(label);
        match child {
            Value::Object(_) | Value::Array(_) => walk(child, prefix, out, truncated),
            _ => {
                if let Some(x) = leaf(child) {
                    if out.len() < MAX_LEAVES {
                        out.push((prefix.clone(), x));
                    } else {
                        *truncated = true;
                    }
                }
            }
        }
        prefix.truncate(len);
    };
    match v {
        Value::Object(map) => {
            for (k, child) in map {
                visit(&sanitize_node(k), child, out);
            }
        }
        Value::Array(items) => {
            for (i, child) in items.iter().enumerate() {
                visit(&i.to_string(), child, out);
            }
        }
        _ => {}
    }
}

/// The number a scalar stands for, if any.
fn leaf(v: &Value) -> Option<f64> {
    let x = match v {
        Value::Number(n) => n.as_f64()?,
        Value::Bool(b) => f64::from(u8::from(*b)),
        Value::String(s) => s.trim().parse::<f64>().ok()?,
        _ => return None,
    };
    x.is_finite().then_some(x)
}

/// GETs a JSON document on every run and publishes its numeric leaves (see the module docs).
#[derive(Debug)]
pub struct HttpJsonCollector {
    target: Target,
    headers: Vec<(String, String)>,
    timeouts: Timeouts,
}

impl HttpJsonCollector {
    /// Builds the collector from its options (see the module docs).
    ///
    /// # Errors
    ///
    /// A bad option: a URL that is not `http://` or `https://`, a header item without `:` or
    /// with CR/LF, a bad `tls_verify`, a `ca_file` that cannot be read or holds no certificate.
    pub fn new(opts: &Options, _env: &Env) -> Result<HttpJsonCollector> {
        let text = opts.str_or("url", "http://localhost/stat");
        let target = Target::from_options("url", text, opts)?;
        let items = opts.list_or("headers", &[]);
        let headers = http::parse_header_list(&items).map_err(|_| crate::Error::BadOption {
            key: "headers".into(),
            value: opts.get("headers").unwrap_or_default().into(),
            reason: "expected comma separated `Name: value` items",
        })?;
        Ok(HttpJsonCollector { target, headers, timeouts: Timeouts::from_options(opts)? })
    }
}

impl Collector for HttpJsonCollector {
    fn default_path(&self) -> &str {
        "httpjson"
    }

    fn collect(&mut self, _ctx: &RunContext, out: &mut Vec<Sample>) -> Result<()> {
        let url = &self.target.url.text;
        let resp = http::get(&self.target, None, &self.headers, self.timeouts)?;
        if !(200..300).contains(&resp.status) {
            return Err(AppError::HttpStatus { url: url.clone(), status: resp.status }.into());
        }
        let doc: Value = serde_json::from_slice(&resp.body).map_err(|e| AppError::Protocol {
            addr: url.clone(),
            what: format!("body is not JSON: {e}"),
        })?;
        let mut pairs = Vec::new();
        if flatten(&doc, &mut pairs) {
            tracing::warn!(url = %url, max = MAX_LEAVES, "JSON document has too many numeric leaves; the rest are dropped");
        }
        out.extend(pairs.into_iter().map(|(name, v)| Sample::new(name, v)));
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use std::collections::BTreeMap;

    fn flat(doc: &str) -> BTreeMap<String, f64> {
        let mut out = Vec::new();
        flatten(&serde_json::from_str(doc).unwrap(), &mut out);
        out.into_iter().collect()
    }

    #[test]
    fn nested_documents_flatten_to_dotted_names() {
        let m = flat(
            r#"{"a": {"b": 1, "c": [5, {"d": 6.5}], "ok": true, "no": false, "name": "x",
                "n": null, "s": "42"}, "top": -3}"#,
        );
        let want: BTreeMap<String, f64> = [
            ("a.b", 1.0),
            ("a.c.0", 5.0),
            ("a.c.1.d", 6.5),
            ("a.ok", 1.0),
            ("a.no", 0.0),
            ("a.s", 42.0),
            ("top", -3.0),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_owned(), v))
        .collect();
        assert_eq!(m, want);
    }

    #[test]
    fn keys_cannot_add_levels() {
        let m = flat(r#"{"a.b": {"c d/e": 1, "": 2, "x;y=z": 3}}"#);
        let names: Vec<&str> = m.keys().map(String::as_str).collect();
        assert_eq!(names, ["a_b._", "a_b.c_d_e", "a_b.x_y=z"]);
    }

    #[test]
    fn scalar_documents_are_named_value() {
        assert_eq!(flat("7"), [("value".to_owned(), 7.0)].into_iter().collect());
        assert!(flat(r#""text""#).is_empty());
    }

    fn json() -> impl Strategy<Value = Value> {
        let leaf = prop_oneof![
            Just(Value::Null),
            any::<bool>().prop_map(Value::Bool),
            any::<f64>()
                .prop_map(|f| serde_json::Number::from_f64(f).map_or(Value::Null, Value::Number)),
            any::<i64>().prop_map(|i| Value::Number(i.into())),
            "\\PC{0,10}".prop_map(Value::String),
        ];
        leaf.prop_recursive(4, 64, 8, |inner| {
            prop_oneof![
                proptest::collection::vec(inner.clone(), 0..8).prop_map(Value::Array),
                proptest::collection::btree_map("\\PC{0,8}", inner, 0..8)
                    .prop_map(|m| Value::Object(m.into_iter().collect())),
            ]
        })
    }

    proptest! {
        #[test]
        fn flattening_never_panics_and_names_are_clean(doc in json()) {
            let mut out = Vec::new();
            flatten(&doc, &mut out);
            for (name, v) in &out {
                prop_assert!(v.is_finite());
                prop_assert!(!name.is_empty());
                prop_assert!(name.split('.').all(|n| !n.is_empty()), "{}", name);
                prop_assert!(!name.contains(char::is_whitespace) && !name.contains(['/', ';']));
            }
        }

        #[test]
        fn arbitrary_text_never_panics(s in "\\PC{0,200}") {
            if let Ok(doc) = serde_json::from_str::<Value>(&s) {
                let mut out = Vec::new();
                flatten(&doc, &mut out);
            }
        }
    }
}
