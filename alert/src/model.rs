//! The types the engine and the notifier share.
//!
//! An alert instance is identified by its labels (the rule's name under `alertname`, the
//! series' labels, the rule's static labels), as in Alertmanager, so a webhook body, a silence
//! matcher and the status page all speak of the same thing.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

/// Label names to values; sorted, so the same set always prints and hashes the same way.
pub type Labels = BTreeMap<String, String>;

/// How bad a firing instance is.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Severity {
    /// Over the warn threshold.
    Warning,
    /// Over the crit threshold.
    Critical,
}

/// Where one alert instance is in its life.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Status {
    /// The condition does not hold.
    Normal,
    /// The condition holds, but not yet for the rule's `for` period.
    Pending,
    /// The condition held for the pending period: notifications go out.
    Firing,
    /// The condition stopped holding, but the instance keeps firing for `keep_firing_for`.
    Recovering,
    /// The query worked but returned no data for this instance (policy `nodata`).
    NoData,
    /// The query failed (policy `error`).
    Error,
}

/// What the engine tells the notifier about one instance after an evaluation round: sent for
/// every instance that is firing (so repeats can be timed) and once when it resolves.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct AlertEvent {
    /// Identity: `alertname` plus the series' and the rule's labels.
    pub labels: Labels,
    /// Rendered annotations (`summary`, `description`, `runbook`...).
    pub annotations: Labels,
    /// The instance's status after this round (`Firing`, `NoData` or `Error` while active;
    /// `Normal` when it resolved).
    pub status: Status,
    /// The severity while firing.
    pub severity: Option<Severity>,
    /// The reduced value that was judged, if there was one.
    pub value: Option<f64>,
    /// When the instance started firing (Unix seconds).
    pub starts_at: i64,
    /// When it resolved (Unix seconds); `None` while active.
    pub ends_at: Option<i64>,
    /// A link to the render graph of the rule's target.
    pub generator_url: String,
    /// The receivers named by the rule (`notify = [...]`).
    pub receivers: Vec<String>,
}

impl AlertEvent {
    /// The instance's identity as one stable string (Alertmanager's fingerprint role): the
    /// labels' FNV-1a hash in hex.
    pub fn fingerprint(&self) -> String {
        fingerprint(&self.labels)
    }

    /// True while the instance needs notifications (anything but a resolution).
    pub fn is_active(&self) -> bool {
        self.ends_at.is_none()
    }
}

/// The FNV-1a 64 hash of a label set (names and values separated by 0xff), in hex.
pub fn fingerprint(labels: &Labels) -> String {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for (k, v) in labels {
        for b in k.bytes().chain([0xff]).chain(v.bytes()).chain([0xff]) {
            h ^= u64::from(b);
            h = h.wrapping_mul(0x0000_0100_0000_01b3);
        }
    }
    format!("{h:016x}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fingerprints_depend_on_every_label() {
        let a: Labels = [("alertname".to_owned(), "x".to_owned())].into();
        let mut b = a.clone();
        b.insert("host".into(), "web01".into());
        assert_ne!(fingerprint(&a), fingerprint(&b));
        assert_eq!(fingerprint(&a), fingerprint(&a.clone()));
        assert_eq!(fingerprint(&a).len(), 16);
    }
}
