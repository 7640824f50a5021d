//! Acknowledgements: "someone is on it". An ack names one alert instance (its fingerprint)
//! or a whole notification group (its group key), and lasts until it expires (the route's
//! `ack_expiry`, 20 minutes by default, Cabot's; or what the request asks).
//!
//! While an alert is acknowledged its group is not repeated and does not escalate; an
//! alert that gets worse than it was when acknowledged (warning to critical) is no longer
//! covered and notifies again at once, as Bosun's acks end at a severity increase. An
//! instance's ack ends when the instance resolves; a group's ack when the group empties.

use serde::{Deserialize, Serialize};

use crate::model::Severity;

/// What an acknowledgement covers.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum AckTarget {
    /// One alert instance, by fingerprint.
    Fingerprint(String),
    /// Every alert of a notification group, by group key.
    GroupKey(String),
}

/// One acknowledgement.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Ack {
    /// What it covers.
    pub target: AckTarget,
    /// Who acknowledged.
    pub by: String,
    /// Their note.
    pub comment: String,
    /// When (Unix seconds).
    pub at: i64,
    /// Until when (Unix seconds).
    pub expires_at: i64,
    /// The worst severity when acknowledged: anything worse is not covered.
    pub severity: Option<Severity>,
}

/// Acknowledgements at most (each comes from an API request; expired ones are dropped).
pub const MAX_ACKS: usize = 10_000;

/// The acknowledgements in force.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Acks {
    list: Vec<Ack>,
}

impl Acks {
    /// Records `ack`, replacing an earlier one for the same target. Returns false when the
    /// table is full.
    pub fn add(&mut self, ack: Ack) -> bool {
        self.list.retain(|a| a.target != ack.target);
        if self.list.len() >= MAX_ACKS {
            return false;
        }
        self.list.push(ack);
        true
    }

    /// The ack covering an alert with fingerprint `fp` in group `group_key` at severity
    /// `severity` at `now`, if any.
    pub fn covering(
        &self,
        fp: &str,
        group_key: Option<&str>,
        severity: Option<Severity>,
        now: i64,
    ) -> Option<&Ack> {
        self.list.iter().find(|a| {
            let target = match &a.target {
                AckTarget::Fingerprint(f) => f == fp,
                AckTarget::GroupKey(k) => Some(k.as_str()) == group_key,
            };
            target && now < a.expires_at && severity <= a.severity
        })
    }

    /// The unexpired ack of instance `fp`, whatever the severity (for the status page).
    pub fn of_instance(&self, fp: &str, now: i64) -> Option<&Ack> {
        self.list.iter().find(|a| {
            now < a.expires_at && matches!(&a.target, AckTarget::Fingerprint(f) if f == fp)
        })
    }

    /// Ends the acks of `target`.
    pub fn remove(&mut self, target: &AckTarget) {
        self.list.retain(|a| &a.target != target);
    }

    /// Forgets expired acks.
    pub fn gc(&mut self, now: i64) {
        self.list.retain(|a| now < a.expires_at);
    }

    /// Every ack.
    pub fn list(&self) -> &[Ack] {
        &self.list
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ack(target: AckTarget, severity: Option<Severity>) -> Ack {
        Ack { target, by: "me".into(), comment: String::new(), at: 0, expires_at: 100, severity }
    }

    #[test]
    fn acks_cover_until_expiry_or_worse_severity() {
        let mut acks = Acks::default();
        acks.add(ack(AckTarget::Fingerprint("f".into()), Some(Severity::Warning)));
        assert!(acks.covering("f", None, Some(Severity::Warning), 10).is_some());
        assert!(acks.covering("f", None, None, 10).is_some());
        assert!(acks.covering("f", None, Some(Severity::Critical), 10).is_none());
        assert!(acks.covering("f", None, Some(Severity::Warning), 100).is_none());
        assert!(acks.covering("g", None, Some(Severity::Warning), 10).is_none());
        acks.gc(100);
        assert!(acks.list().is_empty());
    }

    #[test]
    fn group_acks_cover_their_group_only() {
        let mut acks = Acks::default();
        acks.add(ack(AckTarget::GroupKey("k".into()), Some(Severity::Critical)));
        assert!(acks.covering("any", Some("k"), Some(Severity::Critical), 0).is_some());
        assert!(acks.covering("any", Some("j"), Some(Severity::Critical), 0).is_none());
        acks.remove(&AckTarget::GroupKey("k".into()));
        assert!(acks.covering("any", Some("k"), None, 0).is_none());
    }

    #[test]
    fn a_new_ack_replaces_the_old_one() {
        let mut acks = Acks::default();
        acks.add(ack(AckTarget::Fingerprint("f".into()), None));
        acks.add(ack(AckTarget::Fingerprint("f".into()), Some(Severity::Critical)));
        assert_eq!(acks.list().len(), 1);
        assert!(acks.covering("f", None, Some(Severity::Critical), 0).is_some());
    }
}
