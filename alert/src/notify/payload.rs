//! Alertmanager's webhook body, version 4: what every Alertmanager integration and adapter
//! reads, so they work with us unchanged.
//!
//! Field by field: `version` ("4"), `groupKey`, `truncatedAlerts`, `status`
//! (`firing`/`resolved`), `receiver`, `groupLabels`, `commonLabels`, `commonAnnotations`,
//! `externalURL`, and `alerts[]` with `status`, `labels`, `annotations`, `startsAt`,
//! `endsAt` (RFC 3339; Go's zero time `0001-01-01T00:00:00Z` while firing, as Alertmanager
//! writes it), `generatorURL` and `fingerprint`. The alert's severity is added as the label
//! `severity` when the rule's labels do not set one, since that is where receivers look.

use serde::Serialize;

use crate::model::{AlertEvent, Labels, Severity};
use crate::notify::Notification;

/// Go's zero `time.Time`, which Alertmanager writes as `endsAt` of a firing alert.
const ZERO_TIME: &str = "0001-01-01T00:00:00Z";

/// Unix seconds as RFC 3339 in UTC; `None` (and times out of range) as Go's zero time.
pub fn format_time(t: Option<i64>) -> String {
    t.and_then(|s| jiff::Timestamp::from_second(s).ok())
        .map_or_else(|| ZERO_TIME.to_owned(), |ts| ts.to_string())
}

/// The labels a receiver sees: the alert's, plus `severity` when it has one and the labels
/// do not name it.
pub(crate) fn labels_of(a: &AlertEvent) -> Labels {
    let mut labels = a.labels.clone();
    if let Some(s) = a.severity {
        let text = match s {
            Severity::Warning => "warning",
            Severity::Critical => "critical",
        };
        labels.entry("severity".to_owned()).or_insert_with(|| text.to_owned());
    }
    labels
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct Body<'a> {
    receiver: &'a str,
    status: &'a str,
    alerts: Vec<Alert<'a>>,
    group_labels: &'a Labels,
    common_labels: Labels,
    common_annotations: Labels,
    #[serde(rename = "externalURL")]
    external_url: &'a str,
    version: &'static str,
    group_key: &'a str,
    truncated_alerts: usize,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct Alert<'a> {
    status: &'static str,
    labels: Labels,
    annotations: &'a Labels,
    starts_at: String,
    ends_at: String,
    #[serde(rename = "generatorURL")]
    generator_url: &'a str,
    fingerprint: String,
}

/// The Alertmanager v4 JSON body for `n`, with at most `max_alerts` alerts (0: all).
pub fn webhook_body(n: &Notification, max_alerts: usize) -> serde_json::Value {
    let keep = if max_alerts == 0 { n.alerts.len() } else { max_alerts.min(n.alerts.len()) };
    let alerts = n.alerts.get(..keep).unwrap_or_default();
    let with_severity: Vec<Labels> = n.alerts.iter().map(labels_of).collect();
    let mut common_labels = with_severity.first().cloned().unwrap_or_default();
    for l in with_severity.iter().skip(1) {
        common_labels.retain(|k, v| l.get(k) == Some(v));
    }
    let body = Body {
        receiver: &n.receiver,
        status: n.status.as_str(),
        alerts: alerts
            .iter()
            .zip(with_severity)
            .map(|(a, labels)| Alert {
                status: if a.is_active() { "firing" } else { "resolved" },
                labels,
                annotations: &a.annotations,
                starts_at: format_time(Some(a.starts_at)),
                ends_at: format_time(a.ends_at),
                generator_url: &a.generator_url,
                fingerprint: a.fingerprint(),
            })
            .collect(),
        group_labels: &n.group_labels,
        common_labels,
        common_annotations: n.common_annotations(),
        external_url: &n.external_url,
        version: "4",
        group_key: &n.group_key,
        truncated_alerts: n.alerts.len() - keep,
    };
    serde_json::to_value(body).unwrap_or(serde_json::Value::Null)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::Status;
    use crate::notify::GroupStatus;

    #[test]
    fn body_has_every_alertmanager_field() {
        let a = AlertEvent {
            labels: [("alertname".to_owned(), "x".to_owned())].into(),
            annotations: [("summary".to_owned(), "s".to_owned())].into(),
            status: Status::Firing,
            severity: Some(Severity::Warning),
            value: Some(1.0),
            starts_at: 0,
            ends_at: None,
            generator_url: "http://g".into(),
            receivers: vec![],
        };
        let mut b = a.clone();
        b.labels.insert("host".into(), "h".into());
        b.ends_at = Some(60);
        let n = Notification {
            receiver: "hook".into(),
            group_key: "hook:{}".into(),
            status: GroupStatus::Firing,
            group_labels: Labels::new(),
            external_url: "http://page/".into(),
            alerts: vec![a.clone(), b],
            escalation: false,
        };
        let v = webhook_body(&n, 1);
        let expected = serde_json::json!({
            "receiver": "hook",
            "status": "firing",
            "alerts": [{
                "status": "firing",
                "labels": {"alertname": "x", "severity": "warning"},
                "annotations": {"summary": "s"},
                "startsAt": "1970-01-01T00:00:00Z",
                "endsAt": "0001-01-01T00:00:00Z",
                "generatorURL": "http://g",
                "fingerprint": a.fingerprint(),
            }],
            "groupLabels": {},
            "commonLabels": {"alertname": "x", "severity": "warning"},
            "commonAnnotations": {"summary": "s"},
            "externalURL": "http://page/",
            "version": "4",
            "groupKey": "hook:{}",
            "truncatedAlerts": 1,
        });
        assert_eq!(v, expected);
    }

    #[test]
    fn out_of_range_times_are_the_zero_time() {
        assert_eq!(format_time(Some(i64::MAX)), ZERO_TIME);
        assert_eq!(format_time(Some(1_700_000_000)), "2023-11-14T22:13:20Z");
    }
}
