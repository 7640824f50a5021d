//! Inhibition, as Alertmanager's `inhibit_rules`: while a firing *source* alert matches a
//! rule's source matchers, alerts matching its target matchers that have the same values of
//! the rule's `equal` labels are not notified.
//!
//! ```toml
//! [[inhibit]]
//! source_match = { severity = "critical" }
//! target_match = { severity = "warning" }
//! equal = ["alertname", "host"]
//! ```
//!
//! `source_match`/`target_match` compare labels exactly, `source_match_re`/`target_match_re`
//! with regexes anchored at both ends (as silences do); a label an alert lacks is `""`, and
//! the alert's severity is the label `severity`. Each side needs at least one matcher. For
//! `equal`, a label missing on both alerts counts as equal (both are `""`), as in
//! Alertmanager.
//!
//! An alert never inhibits itself; and, as in Alertmanager, an alert that matches both
//! sides of a rule is only inhibited by sources that do not match the target side, so two
//! such alerts cannot silence each other. Any active alert (firing, recovering, no data,
//! error) is a source, silenced or not; a pending one is not. An inhibited alert is treated
//! like a silenced one: left out of notifications, repeats and escalations, and notified as
//! new when the inhibition ends while it still fires.

use std::collections::{BTreeMap, BTreeSet, HashMap};

use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};
use crate::model::Labels;
use crate::silence::{MatchOp, Matcher};

/// One `[[inhibit]]` rule, validated. Serialised in its TOML form.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(try_from = "RawInhibit", into = "RawInhibit")]
pub struct InhibitRule {
    /// What a source alert must match (all of them).
    source: Vec<Matcher>,
    /// What a target alert must match (all of them).
    target: Vec<Matcher>,
    /// Labels whose values must be the same on the source and the target.
    equal: Vec<String>,
}

/// The TOML form.
#[derive(Clone, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawInhibit {
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    source_match: BTreeMap<String, String>,
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    source_match_re: BTreeMap<String, String>,
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    target_match: BTreeMap<String, String>,
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    target_match_re: BTreeMap<String, String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    equal: Vec<String>,
}

fn matchers(
    key: &str,
    exact: &BTreeMap<String, String>,
    re: &BTreeMap<String, String>,
) -> Result<Vec<Matcher>> {
    let mut out = Vec::with_capacity(exact.len() + re.len());
    for (op, map, key) in
        [(MatchOp::Eq, exact, key.to_owned()), (MatchOp::Re, re, format!("{key}_re"))]
    {
        for (name, value) in map {
            let m = Matcher::new(name, op, value)
                .map_err(|e| Error::request(format!("`{key}`"), e.to_string()))?;
            out.push(m);
        }
    }
    Ok(out)
}

impl TryFrom<RawInhibit> for InhibitRule {
    type Error = Error;
    fn try_from(raw: RawInhibit) -> Result<InhibitRule> {
        let source = matchers("source_match", &raw.source_match, &raw.source_match_re)?;
        let target = matchers("target_match", &raw.target_match, &raw.target_match_re)?;
        if source.is_empty() {
            return Err(Error::request(
                "`source_match`",
                "an inhibit rule needs source_match or source_match_re (a rule whose every \
                 alert is a source is refused)",
            ));
        }
        if target.is_empty() {
            return Err(Error::request(
                "`target_match`",
                "an inhibit rule needs target_match or target_match_re (a rule that would \
                 inhibit every alert is refused)",
            ));
        }
        let mut seen = BTreeSet::new();
        for name in &raw.equal {
            let valid = name.chars().next().is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
                && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_');
            if !valid {
                return Err(Error::request(
                    "`equal`",
                    format!("{name:?} is not a label name (letters, digits and _)"),
                ));
            }
            if !seen.insert(name.as_str()) {
                return Err(Error::request("`equal`", format!("{name:?} is listed twice")));
            }
        }
        Ok(InhibitRule { source, target, equal: raw.equal })
    }
}

impl From<InhibitRule> for RawInhibit {
    fn from(rule: InhibitRule) -> RawInhibit {
        let mut raw = RawInhibit { equal: rule.equal, ..RawInhibit::default() };
        for (side, list) in [(true, rule.source), (false, rule.target)] {
            for m in list {
                let map = match (side, m.op()) {
                    (true, MatchOp::Re) => &mut raw.source_match_re,
                    (true, _) => &mut raw.source_match,
                    (false, MatchOp::Re) => &mut raw.target_match_re,
                    (false, _) => &mut raw.target_match,
                };
                map.insert(m.name().to_owned(), m.value().to_owned());
            }
        }
        raw
    }
}

impl InhibitRule {
    /// Whether `labels` match the source side.
    pub fn matches_source(&self, labels: &Labels) -> bool {
        self.source.iter().all(|m| m.matches(labels))
    }

    /// Whether `labels` match the target side.
    pub fn matches_target(&self, labels: &Labels) -> bool {
        self.target.iter().all(|m| m.matches(labels))
    }

    /// The `equal` labels' values of `labels` (`""` for a missing one).
    fn key(&self, labels: &Labels) -> Vec<String> {
        self.equal.iter().map(|n| labels.get(n).cloned().unwrap_or_default()).collect()
    }
}

/// A source alert of one rule: its fingerprint, and whether it matches the target side too.
#[derive(Clone, Debug)]
struct Source {
    fingerprint: String,
    two_sided: bool,
}

/// The sources of one rule by their `equal` labels' values.
type SourcesByKey = HashMap<Vec<String>, Vec<Source>>;

/// The rules with the active alerts that are their sources, indexed by the `equal` values:
/// asking whether an alert is inhibited costs one lookup per rule.
#[derive(Clone, Debug, Default)]
pub(crate) struct Inhibitor {
    /// Each rule with its sources.
    rules: Vec<(InhibitRule, SourcesByKey)>,
}

impl Inhibitor {
    /// Indexes `active` — the active alerts as `(fingerprint, labels with severity)` — as
    /// sources of `rules`.
    pub(crate) fn new<'a>(
        rules: &[InhibitRule],
        active: impl Iterator<Item = (&'a str, &'a Labels)> + Clone,
    ) -> Inhibitor {
        let rules = rules
            .iter()
            .map(|rule| {
                let mut sources = SourcesByKey::new();
                for (fp, labels) in active.clone().filter(|(_, l)| rule.matches_source(l)) {
                    sources.entry(rule.key(labels)).or_default().push(Source {
                        fingerprint: fp.to_owned(),
                        two_sided: rule.matches_target(labels),
                    });
                }
                (rule.clone(), sources)
            })
            .collect();
        Inhibitor { rules }
    }

    /// The fingerprints of the active alerts that inhibit the alert `fingerprint` with
    /// `labels` (severity included), sorted; empty when it is not inhibited.
    pub(crate) fn inhibited_by(&self, fingerprint: &str, labels: &Labels) -> Vec<String> {
        let mut out = BTreeSet::new();
        for (rule, sources) in &self.rules {
            if sources.is_empty() || !rule.matches_target(labels) {
                continue;
            }
            let Some(found) = sources.get(&rule.key(labels)) else { continue };
            let two_sided = rule.matches_source(labels);
            for s in found {
                if s.fingerprint != fingerprint && !(two_sided && s.two_sided) {
                    out.insert(s.fingerprint.clone());
                }
            }
        }
        out.into_iter().collect()
    }

    /// Whether the alert is inhibited.
    pub(crate) fn is_inhibited(&self, fingerprint: &str, labels: &Labels) -> bool {
        self.rules.iter().any(|(rule, sources)| {
            !sources.is_empty()
                && rule.matches_target(labels)
                && sources.get(&rule.key(labels)).is_some_and(|found| {
                    let two_sided = rule.matches_source(labels);
                    found
                        .iter()
                        .any(|s| s.fingerprint != fingerprint && !(two_sided && s.two_sided))
                })
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::fingerprint;

    fn labels(pairs: &[(&str, &str)]) -> Labels {
        pairs.iter().map(|(k, v)| ((*k).to_owned(), (*v).to_owned())).collect()
    }

    fn rule(text: &str) -> InhibitRule {
        toml::from_str(text).unwrap()
    }

    fn inhibitor(rules: &[InhibitRule], active: &[Labels]) -> Inhibitor {
        let fps: Vec<(String, &Labels)> = active.iter().map(|l| (fingerprint(l), l)).collect();
        Inhibitor::new(rules, fps.iter().map(|(f, l)| (f.as_str(), *l)))
    }

    fn inhibited(i: &Inhibitor, l: &Labels) -> bool {
        let fp = fingerprint(l);
        let by = i.inhibited_by(&fp, l);
        assert_eq!(i.is_inhibited(&fp, l), !by.is_empty());
        !by.is_empty()
    }

    const CRIT_OVER_WARN: &str = r#"
        source_match = { severity = "critical" }
        target_match = { severity = "warning" }
        equal = ["host"]
    "#;

    #[test]
    fn equal_labels_must_match() {
        let r = rule(CRIT_OVER_WARN);
        let crit = labels(&[("alertname", "down"), ("host", "a"), ("severity", "critical")]);
        let warn_a = labels(&[("alertname", "slow"), ("host", "a"), ("severity", "warning")]);
        let warn_b = labels(&[("alertname", "slow"), ("host", "b"), ("severity", "warning")]);
        let i =
            inhibitor(std::slice::from_ref(&r), &[crit.clone(), warn_a.clone(), warn_b.clone()]);
        assert!(inhibited(&i, &warn_a), "same host");
        assert!(!inhibited(&i, &warn_b), "another host");
        assert!(!inhibited(&i, &crit), "the source is not a target");
        assert_eq!(i.inhibited_by(&fingerprint(&warn_a), &warn_a), vec![fingerprint(&crit)]);
        // Without the source, nothing is inhibited.
        let i = inhibitor(&[r], &[warn_a.clone(), warn_b]);
        assert!(!inhibited(&i, &warn_a));
    }

    #[test]
    fn a_label_missing_on_both_sides_is_equal() {
        let r = rule(CRIT_OVER_WARN);
        let crit = labels(&[("alertname", "down"), ("severity", "critical")]);
        let warn = labels(&[("alertname", "slow"), ("severity", "warning")]);
        let warn_a = labels(&[("alertname", "slow"), ("host", "a"), ("severity", "warning")]);
        let i = inhibitor(&[r], &[crit]);
        assert!(inhibited(&i, &warn));
        assert!(!inhibited(&i, &warn_a));
    }

    #[test]
    fn an_alert_never_inhibits_itself_nor_a_two_sided_twin() {
        // Every `team=ops` alert is both a source and a target.
        let r = rule("source_match = { team = \"ops\" }\ntarget_match_re = { team = \"op.*\" }\n");
        let a = labels(&[("alertname", "a"), ("team", "ops")]);
        let b = labels(&[("alertname", "b"), ("team", "ops")]);
        let i = inhibitor(std::slice::from_ref(&r), std::slice::from_ref(&a));
        assert!(!inhibited(&i, &a), "alone, a does not inhibit itself");
        let i = inhibitor(std::slice::from_ref(&r), &[a.clone(), b.clone()]);
        assert!(
            !inhibited(&i, &a) && !inhibited(&i, &b),
            "two-sided alerts never inhibit each other"
        );
        // A one-sided target is inhibited by them.
        let c = labels(&[("alertname", "c"), ("team", "opx")]);
        assert!(inhibited(&i, &c));
    }

    #[test]
    fn regexes_are_anchored() {
        let r = rule(
            "source_match_re = { alertname = \"dc_.*\" }\ntarget_match_re = { host = \"web\" }\n",
        );
        let src = labels(&[("alertname", "dc_down")]);
        let web = labels(&[("alertname", "x"), ("host", "web")]);
        let web01 = labels(&[("alertname", "x"), ("host", "web01")]);
        let i = inhibitor(&[r], &[src]);
        assert!(inhibited(&i, &web));
        assert!(!inhibited(&i, &web01), "`web` does not match `web01` (anchored)");
    }

    #[test]
    fn bad_rules_are_refused_with_the_key() {
        for (text, needle) in [
            ("target_match = { a = \"b\" }\n", "source_match"),
            ("source_match = { a = \"b\" }\n", "target_match"),
            (
                "source_match = { a = \"b\" }\ntarget_match_re = { a = \"(\" }\n",
                "`target_match_re`",
            ),
            (
                "source_match = { a = \"b\" }\ntarget_match = { a = \"c\" }\nequal = [\"a-b\"]\n",
                "`equal`",
            ),
            (
                "source_match = { a = \"b\" }\ntarget_match = { a = \"c\" }\nequals = [\"a\"]\n",
                "equals",
            ),
        ] {
            let e = toml::from_str::<InhibitRule>(text).unwrap_err();
            assert!(e.message().contains(needle), "{text}: {}", e.message());
        }
    }

    #[test]
    fn round_trips_through_toml() {
        let r = rule(
            "source_match = { a = \"b\" }\nsource_match_re = { c = \"d.*\" }\n\
             target_match = { e = \"f\" }\nequal = [\"g\"]\n",
        );
        let text = toml::to_string(&r).unwrap();
        assert_eq!(rule(&text), r);
    }
}
