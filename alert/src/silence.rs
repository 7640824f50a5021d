//! Silences: label matchers with a start and an end, an author and a comment, as in
//! Alertmanager. A firing alert that a silence matches is not notified (it still shows on
//! the status page, marked); when the silence ends and the alert still fires, it is
//! notified as new. Expired silences are kept for `silence_retention` so the page can show
//! what was silenced recently.
//!
//! Matchers: `name = "v"`, `name != "v"`, `name =~ "re"`, `name !~ "re"` (regexes anchored
//! at both ends, as Alertmanager's); a label an alert lacks has the value `""`. The alert's
//! severity can be matched as the label `severity`.

use std::fmt;

use regex::Regex;
use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};
use crate::model::Labels;

/// How a matcher compares.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum MatchOp {
    /// Equal.
    #[serde(rename = "=")]
    Eq,
    /// Not equal.
    #[serde(rename = "!=")]
    Ne,
    /// Matches the regex.
    #[serde(rename = "=~")]
    Re,
    /// Does not match the regex.
    #[serde(rename = "!~")]
    NotRe,
}

/// One label matcher. Serialised as `{"name", "op", "value"}`.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(try_from = "RawMatcher", into = "RawMatcher")]
pub struct Matcher {
    name: String,
    op: MatchOp,
    value: String,
    /// The compiled, anchored regex of `=~` and `!~`.
    regex: Option<Regex>,
}

#[derive(Clone, Serialize, Deserialize)]
struct RawMatcher {
    name: String,
    #[serde(default = "default_op")]
    op: MatchOp,
    value: String,
}

fn default_op() -> MatchOp {
    MatchOp::Eq
}

impl TryFrom<RawMatcher> for Matcher {
    type Error = Error;
    fn try_from(raw: RawMatcher) -> Result<Matcher> {
        Matcher::new(&raw.name, raw.op, &raw.value)
    }
}

impl From<Matcher> for RawMatcher {
    fn from(m: Matcher) -> RawMatcher {
        RawMatcher { name: m.name, op: m.op, value: m.value }
    }
}

/// The longest regex source accepted (a silence comes from an HTTP request).
const MAX_REGEX_BYTES: usize = 1024;

impl Matcher {
    /// A matcher; regexes are compiled (and anchored) here.
    ///
    /// # Errors
    ///
    /// An empty or invalid label name, or a regex that does not compile.
    pub fn new(name: &str, op: MatchOp, value: &str) -> Result<Matcher> {
        let what = || format!("matcher {name}{}{value:?}", op.as_str());
        let valid_name = name.chars().next().is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
            && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_');
        if !valid_name {
            return Err(Error::request(what(), "a label name is letters, digits and _"));
        }
        let regex = match op {
            MatchOp::Re | MatchOp::NotRe => {
                if value.len() > MAX_REGEX_BYTES {
                    return Err(Error::request(what(), "regex too long"));
                }
                let anchored = format!("^(?:{value})$");
                Some(
                    regex::RegexBuilder::new(&anchored)
                        .size_limit(1 << 20)
                        .build()
                        .map_err(|e| Error::request(what(), e.to_string()))?,
                )
            }
            MatchOp::Eq | MatchOp::Ne => None,
        };
        Ok(Matcher { name: name.to_owned(), op, value: value.to_owned(), regex })
    }

    /// Parses `name="value"`, `name!="value"`, `name=~"re"` or `name!~"re"` (quotes optional).
    ///
    /// # Errors
    ///
    /// No operator, or as [`Matcher::new`].
    pub fn parse(text: &str) -> Result<Matcher> {
        let text = text.trim();
        let at = text.find(['=', '!']).ok_or_else(|| {
            Error::request(format!("matcher {text:?}"), "expected name=value, !=, =~ or !~")
        })?;
        let (name, rest) = text.split_at(at);
        let (op, value) = if let Some(v) = rest.strip_prefix("=~") {
            (MatchOp::Re, v)
        } else if let Some(v) = rest.strip_prefix("!~") {
            (MatchOp::NotRe, v)
        } else if let Some(v) = rest.strip_prefix("!=") {
            (MatchOp::Ne, v)
        } else if let Some(v) = rest.strip_prefix('=') {
            (MatchOp::Eq, v)
        } else {
            return Err(Error::request(format!("matcher {text:?}"), "expected =, !=, =~ or !~"));
        };
        let value = value.trim();
        let value = value
            .strip_prefix('"')
            .and_then(|v| v.strip_suffix('"'))
            .map_or_else(|| value.to_owned(), |v| v.replace("\\\"", "\"").replace("\\\\", "\\"));
        Matcher::new(name.trim(), op, &value)
    }

    /// The label name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The operator.
    pub fn op(&self) -> MatchOp {
        self.op
    }

    /// The value or regex source.
    pub fn value(&self) -> &str {
        &self.value
    }

    /// Whether the label's value (`""` if absent) satisfies this matcher.
    pub fn matches_value(&self, v: &str) -> bool {
        match (self.op, &self.regex) {
            (MatchOp::Eq, _) => v == self.value,
            (MatchOp::Ne, _) => v != self.value,
            (MatchOp::Re, Some(re)) => re.is_match(v),
            (MatchOp::NotRe, Some(re)) => !re.is_match(v),
            // Not reachable: `new` compiles a regex for both regex operators.
            (MatchOp::Re | MatchOp::NotRe, None) => false,
        }
    }

    /// Whether `labels` satisfy this matcher.
    pub fn matches(&self, labels: &Labels) -> bool {
        self.matches_value(labels.get(&self.name).map_or("", String::as_str))
    }
}

impl MatchOp {
    /// The operator as written.
    pub fn as_str(self) -> &'static str {
        match self {
            MatchOp::Eq => "=",
            MatchOp::Ne => "!=",
            MatchOp::Re => "=~",
            MatchOp::NotRe => "!~",
        }
    }
}

impl fmt::Display for Matcher {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}{}{:?}", self.name, self.op.as_str(), self.value)
    }
}

impl PartialEq for Matcher {
    fn eq(&self, other: &Matcher) -> bool {
        self.name == other.name && self.op == other.op && self.value == other.value
    }
}

/// One silence.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Silence {
    /// Its id (16 hex digits).
    pub id: String,
    /// All must match for an alert to be silenced.
    pub matchers: Vec<Matcher>,
    /// When it starts (Unix seconds).
    pub starts_at: i64,
    /// When it ends (Unix seconds); an expired silence has `ends_at <= now`.
    pub ends_at: i64,
    /// Who made it.
    pub created_by: String,
    /// Why.
    pub comment: String,
    /// When it was made or last expired (Unix seconds).
    pub updated_at: i64,
}

/// Where a silence is in its life.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum SilenceState {
    /// Not yet started.
    Pending,
    /// In force.
    Active,
    /// Over (kept for a while for the page).
    Expired,
}

impl Silence {
    /// The silence's state at `now`.
    pub fn state(&self, now: i64) -> SilenceState {
        if now >= self.ends_at {
            SilenceState::Expired
        } else if now < self.starts_at {
            SilenceState::Pending
        } else {
            SilenceState::Active
        }
    }

    /// Whether it silences `labels` at `now`.
    pub fn silences(&self, labels: &Labels, now: i64) -> bool {
        self.state(now) == SilenceState::Active && self.matchers.iter().all(|m| m.matches(labels))
    }
}

/// What a request to create a silence gives.
#[derive(Clone, Debug, PartialEq)]
pub struct NewSilence {
    /// The matchers.
    pub matchers: Vec<Matcher>,
    /// Start (Unix seconds); `None` is now.
    pub starts_at: Option<i64>,
    /// End (Unix seconds).
    pub ends_at: i64,
    /// Who.
    pub created_by: String,
    /// Why.
    pub comment: String,
}

/// Silences at most (each comes from an API request; old ones are dropped after retention).
pub const MAX_SILENCES: usize = 10_000;

/// The set of silences.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Silences {
    /// In creation order.
    list: Vec<Silence>,
    /// Ids handed out so far (ids are this counter mixed with the creation time, so they do
    /// not repeat across restarts).
    next: u64,
}

impl Silences {
    /// Adds a silence at `now`.
    ///
    /// # Errors
    ///
    /// No matchers, matchers that match every alert (all match the empty value), an end not
    /// after the start or in the past, too many silences.
    pub fn add(&mut self, s: NewSilence, now: i64) -> Result<Silence> {
        let bad = |problem: &str| Err(Error::request("silence", problem));
        if s.matchers.is_empty() {
            return bad("at least one matcher is needed");
        }
        if s.matchers.iter().all(|m| m.matches_value("")) {
            return bad("the matchers would silence every alert; add one that needs a value");
        }
        let starts_at = s.starts_at.unwrap_or(now);
        if s.ends_at <= starts_at || s.ends_at <= now {
            return bad("ends_at must be after starts_at and in the future");
        }
        if self.list.len() >= MAX_SILENCES {
            return bad("too many silences");
        }
        self.next += 1;
        let id = crate::model::fingerprint(&Labels::from([(
            "silence".to_owned(),
            format!("{now}/{}", self.next),
        )]));
        let silence = Silence {
            id,
            matchers: s.matchers,
            starts_at,
            ends_at: s.ends_at,
            created_by: s.created_by,
            comment: s.comment,
            updated_at: now,
        };
        self.list.push(silence.clone());
        Ok(silence)
    }

    /// Ends silence `id` at `now` (it stays listed until retention passes). Returns it, or
    /// `None` if there is no such silence.
    pub fn expire(&mut self, id: &str, now: i64) -> Option<Silence> {
        let s = self.list.iter_mut().find(|s| s.id == id)?;
        if s.ends_at > now {
            s.ends_at = now;
            s.starts_at = s.starts_at.min(now);
            s.updated_at = now;
        }
        Some(s.clone())
    }

    /// The ids of the silences in force for `labels` at `now`.
    pub fn silencing(&self, labels: &Labels, now: i64) -> Vec<String> {
        self.list.iter().filter(|s| s.silences(labels, now)).map(|s| s.id.clone()).collect()
    }

    /// Whether any silence is in force for `labels` at `now`.
    pub fn is_silenced(&self, labels: &Labels, now: i64) -> bool {
        self.list.iter().any(|s| s.silences(labels, now))
    }

    /// Forgets silences that expired more than `retention` seconds ago.
    pub fn gc(&mut self, now: i64, retention: i64) {
        self.list.retain(|s| s.ends_at.saturating_add(retention) > now);
    }

    /// Every silence, newest first.
    pub fn list(&self) -> Vec<Silence> {
        self.list.iter().rev().cloned().collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn labels(pairs: &[(&str, &str)]) -> Labels {
        pairs.iter().map(|(a, b)| ((*a).to_owned(), (*b).to_owned())).collect()
    }

    #[test]
    fn matchers_follow_alertmanager() {
        let l = labels(&[("alertname", "disk"), ("host", "web01")]);
        let m = |t: &str| Matcher::parse(t).unwrap().matches(&l);
        assert!(m("alertname=disk"));
        assert!(m("alertname=\"disk\""));
        assert!(!m("alertname!=disk"));
        assert!(m("host=~web.*"));
        assert!(!m("host=~web"), "regexes are anchored");
        assert!(m("host!~db.*"));
        assert!(m("dc=\"\""), "a missing label is empty");
        assert!(m("dc!=x"));
        assert!(!m("dc=~.+"));
    }

    #[test]
    fn bad_matchers_are_errors() {
        for t in ["", "host", "=x", "host=~(", "9x=1", "a b=c"] {
            assert!(Matcher::parse(t).is_err(), "{t}");
        }
    }

    #[test]
    fn matchers_round_trip_through_json() {
        let m = Matcher::parse("host=~\"web.*\"").unwrap();
        let text = serde_json::to_string(&m).unwrap();
        assert_eq!(text, r#"{"name":"host","op":"=~","value":"web.*"}"#);
        let back: Matcher = serde_json::from_str(&text).unwrap();
        assert_eq!(back, m);
        assert!(serde_json::from_str::<Matcher>(r#"{"name":"h","op":"=~","value":"("}"#).is_err());
    }

    fn new(matchers: &[&str], start: Option<i64>, end: i64) -> NewSilence {
        NewSilence {
            matchers: matchers.iter().map(|t| Matcher::parse(t).unwrap()).collect(),
            starts_at: start,
            ends_at: end,
            created_by: "me".into(),
            comment: "maintenance".into(),
        }
    }

    #[test]
    fn silences_have_a_life() {
        let mut s = Silences::default();
        let l = labels(&[("alertname", "disk")]);
        let sil = s.add(new(&["alertname=disk"], Some(100), 200), 50).unwrap();
        assert_eq!(sil.state(50), SilenceState::Pending);
        assert!(!s.is_silenced(&l, 99));
        assert!(s.is_silenced(&l, 100));
        assert!(s.is_silenced(&l, 199));
        assert!(!s.is_silenced(&l, 200));
        assert_eq!(s.silencing(&l, 150), vec![sil.id.clone()]);
        s.expire(&sil.id, 150).unwrap();
        assert!(!s.is_silenced(&l, 151));
        assert_eq!(s.list()[0].state(151), SilenceState::Expired);
        s.gc(150 + 10, 100);
        assert_eq!(s.list().len(), 1, "kept during retention");
        s.gc(150 + 100, 100);
        assert!(s.list().is_empty());
        assert!(s.expire("nope", 1).is_none());
    }

    #[test]
    fn silences_that_match_everything_or_end_early_are_refused() {
        let mut s = Silences::default();
        assert!(s.add(new(&[], None, 100), 0).is_err());
        assert!(s.add(new(&["host=~.*"], None, 100), 0).is_err());
        assert!(s.add(new(&["host=a"], Some(50), 50), 0).is_err());
        assert!(s.add(new(&["host=a"], None, 10), 20).is_err());
        let a = s.add(new(&["host=a"], None, 100), 0).unwrap();
        let b = s.add(new(&["host=a"], None, 100), 0).unwrap();
        assert_ne!(a.id, b.id);
    }

    proptest::proptest! {
        #[test]
        fn matcher_parse_never_panics(text in "\\PC{0,30}") {
            let _ = Matcher::parse(&text);
        }
    }
}
