//! A small template language for subjects and bodies.
//!
//! Our own rather than a general engine (minijinja, handlebars, tera): the language needs
//! a dozen names and one loop, a template should be checked when the rules file loads (an
//! unknown name is an error with its byte offset, not an empty string at 3 a.m.), and it
//! must not be able to run anything or loop forever. Rendering is a walk over a parsed tree,
//! bounded by the template's size times the number of alerts.
//!
//! Syntax:
//!
//! - `{{name}}` inserts a value; `{{name | filter}}` transforms it (`json`: a quoted JSON
//!   string, for webhook bodies; `upper`; `lower`). Filters chain left to right.
//! - Group names: `status` (`firing`/`resolved`), `receiver`, `group_key`, `external_url`,
//!   `count`, `firing_count`, `resolved_count`, `severity` (the worst firing one), `value`
//!   (the first alert's), `labels.NAME` and `annotations.NAME` (the common ones),
//!   `group_labels.NAME`; `labels` alone lists them as `a=x, b=y`.
//! - `{{#alerts}}...{{/alerts}}` repeats its body per alert (`{{#firing}}`, `{{#resolved}}`
//!   only those); inside, `status`, `labels.NAME`, `annotations.NAME`, `value`, `severity`,
//!   `starts_at`, `ends_at` (RFC 3339), `generator_url` and `fingerprint` are the alert's,
//!   the other names the group's.
//! - A label that is not there is empty.

use std::fmt::Write as _;

use crate::model::{AlertEvent, Labels, Severity};
use crate::notify::Notification;

/// A template that failed to parse: where, and why.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("at byte {offset}: {message}")]
pub struct TemplateError {
    /// The byte offset of the offending tag.
    pub offset: usize,
    /// What is wrong.
    pub message: String,
}

/// A parsed template.
#[derive(Clone, Debug, PartialEq)]
pub struct Template {
    nodes: Vec<Node>,
}

#[derive(Clone, Debug, PartialEq)]
enum Node {
    Text(String),
    Var { name: Name, filters: Vec<Filter> },
    Loop { which: Which, body: Vec<Node> },
}

#[derive(Clone, Copy, Debug, PartialEq)]
enum Which {
    All,
    Firing,
    Resolved,
}

#[derive(Clone, Copy, Debug, PartialEq)]
enum Filter {
    Json,
    Upper,
    Lower,
}

#[derive(Clone, Debug, PartialEq)]
enum Name {
    Status,
    Receiver,
    GroupKey,
    ExternalUrl,
    Count,
    FiringCount,
    ResolvedCount,
    Severity,
    Value,
    StartsAt,
    EndsAt,
    GeneratorUrl,
    Fingerprint,
    /// `labels.NAME`, or all of them when the name is empty.
    Labels(String),
    Annotations(String),
    GroupLabels(String),
}

/// Tags at most in one template, to bound parsing and rendering.
const MAX_TAGS: usize = 10_000;

impl Template {
    /// Parses `text`.
    ///
    /// # Errors
    ///
    /// An unclosed tag, an unknown name or filter, a loop inside a loop or an unbalanced
    /// loop end, with the byte offset.
    pub fn parse(text: &str) -> Result<Template, TemplateError> {
        let mut stack: Vec<(Which, usize, Vec<Node>)> = Vec::new();
        let mut nodes: Vec<Node> = Vec::new();
        let mut pos = 0;
        let mut tags = 0;
        while let Some(found) = text.get(pos..).and_then(|rest| rest.find("{{")) {
            let start = pos + found;
            let current = stack.last_mut().map_or(&mut nodes, |(_, _, body)| body);
            if start > pos {
                current.push(Node::Text(text.get(pos..start).unwrap_or_default().to_owned()));
            }
            let inner_start = start + 2;
            let Some(len) = text.get(inner_start..).and_then(|rest| rest.find("}}")) else {
                return Err(err(start, "`{{` without a closing `}}`"));
            };
            tags += 1;
            if tags > MAX_TAGS {
                return Err(err(start, "too many tags"));
            }
            let inner = text.get(inner_start..inner_start + len).unwrap_or_default().trim();
            pos = inner_start + len + 2;
            if let Some(section) = inner.strip_prefix('#') {
                if !stack.is_empty() {
                    return Err(err(start, "a loop cannot be inside another loop"));
                }
                stack.push((which(section.trim(), start)?, start, Vec::new()));
            } else if let Some(section) = inner.strip_prefix('/') {
                let w = which(section.trim(), start)?;
                match stack.pop() {
                    Some((open, _, body)) if open == w => nodes.push(Node::Loop { which: w, body }),
                    _ => return Err(err(start, &format!("`{{{{{inner}}}}}` closes no open loop"))),
                }
            } else {
                let mut parts = inner.split('|');
                let name = name(parts.next().unwrap_or_default().trim(), start)?;
                let filters = parts.map(|f| filter(f.trim(), start)).collect::<Result<_, _>>()?;
                current.push(Node::Var { name, filters });
            }
        }
        if let Some((_, at, _)) = stack.last() {
            return Err(err(*at, "loop not closed"));
        }
        if let Some(rest) = text.get(pos..)
            && !rest.is_empty()
        {
            nodes.push(Node::Text(rest.to_owned()));
        }
        Ok(Template { nodes })
    }

    /// The text for `n`.
    pub fn render(&self, n: &Notification) -> String {
        let mut out = String::new();
        render_nodes(&self.nodes, n, None, &mut out);
        out
    }
}

fn err(offset: usize, message: &str) -> TemplateError {
    TemplateError { offset, message: message.to_owned() }
}

fn which(text: &str, at: usize) -> Result<Which, TemplateError> {
    match text {
        "alerts" => Ok(Which::All),
        "firing" => Ok(Which::Firing),
        "resolved" => Ok(Which::Resolved),
        other => Err(err(at, &format!("unknown loop {other:?} (alerts, firing, resolved)"))),
    }
}

fn filter(text: &str, at: usize) -> Result<Filter, TemplateError> {
    match text {
        "json" => Ok(Filter::Json),
        "upper" => Ok(Filter::Upper),
        "lower" => Ok(Filter::Lower),
        other => Err(err(at, &format!("unknown filter {other:?} (json, upper, lower)"))),
    }
}

fn name(text: &str, at: usize) -> Result<Name, TemplateError> {
    let labelled = |prefix: &str| -> Option<String> {
        if text == prefix {
            return Some(String::new());
        }
        text.strip_prefix(prefix)?.strip_prefix('.').map(str::to_owned)
    };
    if let Some(l) = labelled("labels") {
        return Ok(Name::Labels(l));
    }
    if let Some(l) = labelled("annotations") {
        return Ok(Name::Annotations(l));
    }
    if let Some(l) = labelled("group_labels") {
        return Ok(Name::GroupLabels(l));
    }
    Ok(match text {
        "status" => Name::Status,
        "receiver" => Name::Receiver,
        "group_key" => Name::GroupKey,
        "external_url" => Name::ExternalUrl,
        "count" => Name::Count,
        "firing_count" => Name::FiringCount,
        "resolved_count" => Name::ResolvedCount,
        "severity" => Name::Severity,
        "value" => Name::Value,
        "starts_at" => Name::StartsAt,
        "ends_at" => Name::EndsAt,
        "generator_url" => Name::GeneratorUrl,
        "fingerprint" => Name::Fingerprint,
        "" => return Err(err(at, "empty tag")),
        other => return Err(err(at, &format!("unknown name {other:?}"))),
    })
}

fn render_nodes(nodes: &[Node], n: &Notification, alert: Option<&AlertEvent>, out: &mut String) {
    for node in nodes {
        match node {
            Node::Text(t) => out.push_str(t),
            Node::Var { name, filters } => {
                let mut v = value(name, n, alert);
                for f in filters {
                    v = match f {
                        Filter::Json => serde_json::Value::String(v).to_string(),
                        Filter::Upper => v.to_uppercase(),
                        Filter::Lower => v.to_lowercase(),
                    };
                }
                out.push_str(&v);
            }
            Node::Loop { which, body } => {
                for a in &n.alerts {
                    let take = match which {
                        Which::All => true,
                        Which::Firing => a.is_active(),
                        Which::Resolved => !a.is_active(),
                    };
                    if take {
                        render_nodes(body, n, Some(a), out);
                    }
                }
            }
        }
    }
}

fn label_text(set: &Labels, key: &str) -> String {
    if key.is_empty() {
        let mut s = String::new();
        for (i, (k, v)) in set.iter().enumerate() {
            let _ = write!(s, "{}{k}={v}", if i > 0 { ", " } else { "" });
        }
        return s;
    }
    set.get(key).cloned().unwrap_or_default()
}

fn severity_text(s: Option<Severity>) -> String {
    match s {
        Some(Severity::Warning) => "warning".into(),
        Some(Severity::Critical) => "critical".into(),
        None => String::new(),
    }
}

fn value_text(v: Option<f64>) -> String {
    v.map(|v| v.to_string()).unwrap_or_default()
}

fn value(name: &Name, n: &Notification, alert: Option<&AlertEvent>) -> String {
    if let Some(a) = alert {
        match name {
            Name::Status => return if a.is_active() { "firing" } else { "resolved" }.into(),
            Name::Labels(k) => return label_text(&crate::notify::payload::labels_of(a), k),
            Name::Annotations(k) => return label_text(&a.annotations, k),
            Name::Value => return value_text(a.value),
            Name::Severity => return severity_text(a.severity),
            Name::StartsAt => return super::format_time(Some(a.starts_at)),
            Name::EndsAt => return super::format_time(a.ends_at),
            Name::GeneratorUrl => return a.generator_url.clone(),
            Name::Fingerprint => return a.fingerprint(),
            _ => {}
        }
    }
    let first = n.alerts.first();
    match name {
        Name::Status => n.status.as_str().into(),
        Name::Receiver => n.receiver.clone(),
        Name::GroupKey => n.group_key.clone(),
        Name::ExternalUrl => n.external_url.clone(),
        Name::Count => n.alerts.len().to_string(),
        Name::FiringCount => n.firing().count().to_string(),
        Name::ResolvedCount => (n.alerts.len() - n.firing().count()).to_string(),
        Name::Severity => severity_text(n.severity()),
        Name::Value => value_text(first.and_then(|a| a.value)),
        Name::StartsAt => super::format_time(first.map(|a| a.starts_at)),
        Name::EndsAt => super::format_time(first.and_then(|a| a.ends_at)),
        Name::GeneratorUrl => first.map(|a| a.generator_url.clone()).unwrap_or_default(),
        Name::Fingerprint => first.map(AlertEvent::fingerprint).unwrap_or_default(),
        Name::Labels(k) => {
            let mut common = n.common_labels();
            if let Some(s) = n.severity()
                && n.alerts.iter().all(|a| a.severity == Some(s))
            {
                common.entry("severity".into()).or_insert_with(|| severity_text(Some(s)));
            }
            label_text(&common, k)
        }
        Name::Annotations(k) => label_text(&n.common_annotations(), k),
        Name::GroupLabels(k) => label_text(&n.group_labels, k),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::Status;
    use crate::notify::GroupStatus;

    fn alert(host: &str, value: f64, resolved: bool) -> AlertEvent {
        AlertEvent {
            labels: [("alertname", "disk_full"), ("host", host)]
                .into_iter()
                .map(|(a, b)| (a.to_owned(), b.to_owned()))
                .collect(),
            annotations: [("summary".to_owned(), format!("{host} is full"))].into(),
            status: if resolved { Status::Normal } else { Status::Firing },
            severity: Some(Severity::Critical),
            value: Some(value),
            starts_at: 1_700_000_000,
            ends_at: resolved.then_some(1_700_000_600),
            generator_url: "http://g/render?target=x".into(),
            receivers: vec!["r".into()],
        }
    }

    fn note(alerts: Vec<AlertEvent>) -> Notification {
        Notification {
            receiver: "ops".into(),
            group_key: "ops:{}".into(),
            status: if alerts.iter().any(AlertEvent::is_active) {
                GroupStatus::Firing
            } else {
                GroupStatus::Resolved
            },
            group_labels: [("alertname".to_owned(), "disk_full".to_owned())].into(),
            external_url: "http://page".into(),
            alerts,
            escalation: false,
        }
    }

    #[test]
    fn renders_names_filters_and_loops() {
        let t = Template::parse(
            "[{{status|upper}}:{{count}}] {{labels.alertname}} {{severity}}\n\
             {{#firing}}- {{labels.host}}: {{value}} ({{annotations.summary}})\n{{/firing}}\
             {{#resolved}}ok {{labels.host}} at {{ends_at}}\n{{/resolved}}",
        )
        .unwrap();
        let text = t.render(&note(vec![alert("a", 97.5, false), alert("b", 3.0, true)]));
        assert_eq!(
            text,
            "[FIRING:2] disk_full critical\n- a: 97.5 (a is full)\n\
             ok b at 2023-11-14T22:23:20Z\n"
        );
    }

    #[test]
    fn json_filter_quotes_and_escapes() {
        let t = Template::parse(r#"{"text": {{annotations.summary | json}}}"#).unwrap();
        let mut a = alert("x\"y", 1.0, false);
        a.annotations.insert("summary".into(), "line\n\"quoted\"".into());
        let body = t.render(&note(vec![a]));
        let v: serde_json::Value = serde_json::from_str(&body).unwrap();
        assert_eq!(v["text"], "line\n\"quoted\"");
    }

    #[test]
    fn missing_labels_are_empty_and_all_labels_list() {
        let t = Template::parse("<{{labels.nope}}>{{group_labels}}").unwrap();
        assert_eq!(t.render(&note(vec![alert("a", 1.0, false)])), "<>alertname=disk_full");
    }

    #[test]
    fn parse_errors_have_offsets() {
        let e = |t: &str| Template::parse(t).unwrap_err();
        assert_eq!(e("ab {{nope}}").offset, 3);
        assert!(e("ab {{nope}}").message.contains("nope"));
        assert_eq!(e("x {{labels.a").offset, 2);
        assert!(e("{{#alerts}}{{#alerts}}{{/alerts}}{{/alerts}}").message.contains("inside"));
        assert!(e("{{#alerts}}x").message.contains("not closed"));
        assert!(e("{{/alerts}}").message.contains("closes"));
        assert!(e("{{#firing}}{{/alerts}}").message.contains("closes"));
        assert!(e("{{status|shout}}").message.contains("shout"));
        assert!(e("{{}}").message.contains("empty"));
    }

    #[test]
    fn text_without_tags_is_kept() {
        let t = Template::parse("plain } { text").unwrap();
        assert_eq!(t.render(&note(vec![])), "plain } { text");
    }

    proptest::proptest! {
        #[test]
        fn parse_and_render_never_panic(text in "(\\PC|\\{\\{|\\}\\}|#|/|\\|){0,40}") {
            if let Ok(t) = Template::parse(&text) {
                let _ = t.render(&note(vec![alert("a", 1.0, false), alert("b", 2.0, true)]));
            }
        }
    }
}
