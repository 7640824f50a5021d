//! Receivers: where notifications go (webhook, email, command) and how their bodies are made.
//!
//! The rules file's `[[receiver]]` sections deserialise into [`ReceiverConfig`] and its
//! `[route]` section into [`RouteConfig`]; with the `[[inhibit]]` rules they are a
//! [`NotifyConfig`], which the [`crate::Dispatcher`] validates once
//! ([`NotifyConfig::validate`]) so a typo fails the load, not the first page at night.
//!
//! A [`Notification`] is what one receiver is told about one group of alerts at one time; the
//! transports turn it into an Alertmanager v4 webhook body ([`webhook_body`]), an email or a
//! command's stdin and environment.

mod command;
mod email;
mod payload;
mod template;
mod webhook;

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;
use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};
use crate::model::{AlertEvent, Labels, Severity};

pub(crate) use payload::labels_of;
pub use payload::{format_time, webhook_body};
pub use template::{Template, TemplateError};

pub(crate) use command::CommandTransport;
pub(crate) use email::EmailTransport;
pub(crate) use webhook::WebhookTransport;

/// A duration written as text in the rules file: `250ms`, `30s`, `5m`, `4h`, `2d`, `1w`, or a
/// bare number of seconds; compound forms such as `1h30m` add up. Serialised back as text.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct HumanDuration(pub Duration);

impl HumanDuration {
    /// A duration of `secs` seconds.
    pub const fn from_secs(secs: u64) -> HumanDuration {
        HumanDuration(Duration::from_secs(secs))
    }

    /// Whole seconds (rounded up, so a non-zero duration is never 0 s on the dispatcher's
    /// one-second clock).
    pub fn as_secs_ceil(&self) -> i64 {
        let secs = self.0.as_secs() + u64::from(self.0.subsec_nanos() > 0);
        i64::try_from(secs).unwrap_or(i64::MAX)
    }

    /// Parses the text form.
    ///
    /// # Errors
    ///
    /// The text is empty, has an unknown unit or overflows; the message says which.
    pub fn parse(text: &str) -> std::result::Result<HumanDuration, String> {
        let text = text.trim();
        if text.is_empty() {
            return Err("empty duration".into());
        }
        if let Ok(secs) = text.parse::<u64>() {
            return Ok(HumanDuration(Duration::from_secs(secs)));
        }
        let mut total_ms: u64 = 0;
        let mut rest = text;
        while !rest.is_empty() {
            let digits = rest.bytes().take_while(u8::is_ascii_digit).count();
            if digits == 0 {
                return Err(format!("{text:?} is not a duration (like 30s, 5m, 4h, 1d)"));
            }
            let (number, tail) = rest.split_at(digits);
            let n: u64 = number.parse().map_err(|_| format!("{text:?}: number too large"))?;
            let unit_len = tail.bytes().take_while(u8::is_ascii_alphabetic).count();
            let (unit, tail) = tail.split_at(unit_len);
            let ms_per: u64 = match unit {
                "ms" => 1,
                "s" => 1_000,
                "m" => 60_000,
                "h" => 3_600_000,
                "d" => 86_400_000,
                "w" => 604_800_000,
                "" => {
                    return Err(format!(
                        "{text:?}: a unit is needed after {n} (ms, s, m, h, d, w)"
                    ));
                }
                other => {
                    return Err(format!("{text:?}: unknown unit {other:?} (ms, s, m, h, d, w)"));
                }
            };
            let ms = n.checked_mul(ms_per).ok_or_else(|| format!("{text:?}: too large"))?;
            total_ms = total_ms.checked_add(ms).ok_or_else(|| format!("{text:?}: too large"))?;
            rest = tail;
        }
        Ok(HumanDuration(Duration::from_millis(total_ms)))
    }
}

impl fmt::Display for HumanDuration {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let ms = self.0.as_millis();
        if ms == 0 {
            return f.write_str("0s");
        }
        for (unit, per) in [("w", 604_800_000), ("d", 86_400_000), ("h", 3_600_000)] {
            if ms.is_multiple_of(per) {
                return write!(f, "{}{unit}", ms / per);
            }
        }
        if ms.is_multiple_of(60_000) {
            write!(f, "{}m", ms / 60_000)
        } else if ms.is_multiple_of(1000) {
            write!(f, "{}s", ms / 1000)
        } else {
            write!(f, "{ms}ms")
        }
    }
}

impl Serialize for HumanDuration {
    fn serialize<S: serde::Serializer>(&self, s: S) -> std::result::Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for HumanDuration {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> std::result::Result<Self, D::Error> {
        #[derive(Deserialize)]
        #[serde(untagged)]
        enum Raw {
            Secs(u64),
            Text(String),
        }
        match Raw::deserialize(d)? {
            Raw::Secs(s) => Ok(HumanDuration::from_secs(s)),
            Raw::Text(t) => HumanDuration::parse(&t).map_err(serde::de::Error::custom),
        }
    }
}

/// The kinds of receiver.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
#[non_exhaustive]
pub enum ReceiverKind {
    /// HTTP POST of Alertmanager's v4 JSON (or the `body` template).
    Webhook,
    /// Email over SMTP.
    Email,
    /// Run a program with the JSON body on stdin and `ALERT_*` variables.
    Command,
}

/// How the email receiver talks to its SMTP server.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum SmtpTls {
    /// Plain SMTP, then STARTTLS, which must succeed (port 587; the default).
    #[default]
    Starttls,
    /// TLS from the first byte (SMTPS, port 465).
    Tls,
    /// No encryption (a local relay on port 25).
    None,
}

/// One `[[receiver]]` section. Every kind shares `name`, `type`, `send_resolved`, `timeout`
/// and the escalation pair; the other fields belong to one kind and are rejected on another.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ReceiverConfig {
    /// What rules name in `notify = [...]`.
    pub name: String,
    /// `webhook`, `email` or `command`.
    #[serde(rename = "type")]
    pub kind: ReceiverKind,
    /// Tell this receiver when alerts resolve (default: the route's `send_resolved`, true).
    #[serde(default)]
    pub send_resolved: Option<bool>,
    /// How long one delivery attempt may take (default 10 s; commands 30 s).
    #[serde(default)]
    pub timeout: Option<HumanDuration>,
    /// After this long firing without an acknowledgement, also notify `escalate_to`
    /// (default: the route's, if any).
    #[serde(default)]
    pub escalate_after: Option<HumanDuration>,
    /// The receiver escalations go to.
    #[serde(default)]
    pub escalate_to: Option<String>,
    /// webhook: the URL to POST to.
    #[serde(default)]
    pub url: Option<String>,
    /// webhook: extra request headers (`Authorization = "Bearer ..."`).
    #[serde(default)]
    pub headers: BTreeMap<String, String>,
    /// webhook and email: a body template instead of the default (webhook: the AM JSON).
    #[serde(default)]
    pub body: Option<String>,
    /// webhook: the `Content-Type` of a templated body (default `application/json`).
    #[serde(default)]
    pub content_type: Option<String>,
    /// webhook: alerts per message at most (0: no limit); the rest are counted in
    /// `truncatedAlerts`, as Alertmanager's `max_alerts`.
    #[serde(default)]
    pub max_alerts: usize,
    /// email: the SMTP server.
    #[serde(default)]
    pub smtp_host: Option<String>,
    /// email: its port (default 587 for STARTTLS, 465 for TLS, 25 for none).
    #[serde(default)]
    pub smtp_port: Option<u16>,
    /// email: `starttls` (default), `tls` or `none`.
    #[serde(default)]
    pub tls: Option<SmtpTls>,
    /// email: the SMTP AUTH user (no AUTH when absent).
    #[serde(default)]
    pub username: Option<String>,
    /// email: the password; prefer `password_env`, which keeps it out of the rules file.
    #[serde(default)]
    pub password: Option<String>,
    /// email: the environment variable holding the password.
    #[serde(default)]
    pub password_env: Option<String>,
    /// email: the sender address.
    #[serde(default)]
    pub from: Option<String>,
    /// email: the recipients.
    #[serde(default)]
    pub to: Vec<String>,
    /// email: the subject template (default `[{{status|upper}}:{{count}}] {{labels.alertname}}`).
    #[serde(default)]
    pub subject: Option<String>,
    /// command: the program and its arguments (no shell).
    #[serde(default)]
    pub command: Vec<String>,
}

impl ReceiverConfig {
    /// A receiver of `kind` named `name` with every optional field unset.
    pub fn new(name: &str, kind: ReceiverKind) -> ReceiverConfig {
        ReceiverConfig {
            name: name.to_owned(),
            kind,
            send_resolved: None,
            timeout: None,
            escalate_after: None,
            escalate_to: None,
            url: None,
            headers: BTreeMap::new(),
            body: None,
            content_type: None,
            max_alerts: 0,
            smtp_host: None,
            smtp_port: None,
            tls: None,
            username: None,
            password: None,
            password_env: None,
            from: None,
            to: Vec::new(),
            subject: None,
            command: Vec::new(),
        }
    }
}

/// The `[route]` section: how alerts are grouped and how often groups are told again, with
/// Alertmanager's meaning and defaults, plus this crate's acknowledgement, silence, retry
/// and escalation settings.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct RouteConfig {
    /// The receiver for rules that name none (none: such alerts only show on the page).
    pub receiver: Option<String>,
    /// Labels whose values make a group; `[]` (Alertmanager's default) puts every alert of a
    /// receiver in one group, `["..."]` makes each alert its own group.
    pub group_by: Vec<String>,
    /// How long a new group waits for more alerts before its first notification (30 s).
    pub group_wait: HumanDuration,
    /// How long a group waits before telling of changes (new or resolved alerts) (5 m).
    pub group_interval: HumanDuration,
    /// How long before the same still-firing group is told again (4 h).
    pub repeat_interval: HumanDuration,
    /// Receivers are told of resolutions unless they say otherwise (true).
    pub send_resolved: bool,
    /// Escalation for every receiver that sets none itself.
    pub escalate_after: Option<HumanDuration>,
    /// See `escalate_after`.
    pub escalate_to: Option<String>,
    /// How long an acknowledgement lasts unless the request says (20 m, Cabot's).
    pub ack_expiry: HumanDuration,
    /// How long expired silences stay listed (24 h).
    pub silence_retention: HumanDuration,
    /// An active alert the engine stops reporting is taken as resolved after this long (1 h;
    /// longer than any rule's `every`).
    pub resolve_timeout: HumanDuration,
    /// Where the status page is reachable, for `externalURL` in webhook bodies.
    pub external_url: String,
    /// Deliveries one receiver may have queued or in retry; more are dropped and counted (256).
    pub queue_capacity: usize,
    /// Attempts per delivery before it is given up (6).
    pub max_attempts: u32,
    /// The first retry's delay, doubled for each further one (1 s).
    pub retry_initial: HumanDuration,
    /// The longest delay between retries (1 m).
    pub retry_max: HumanDuration,
    /// `[[time_interval]]` names during which notifications are held (Alertmanager's
    /// `mute_time_intervals`): not sent, and sent when the interval ends if still due.
    pub mute_time_intervals: Vec<String>,
    /// `[[time_interval]]` names outside all of which notifications are held (Alertmanager's
    /// `active_time_intervals`; empty: always active).
    pub active_time_intervals: Vec<String>,
}

impl Default for RouteConfig {
    fn default() -> RouteConfig {
        RouteConfig {
            receiver: None,
            group_by: Vec::new(),
            group_wait: HumanDuration::from_secs(30),
            group_interval: HumanDuration::from_secs(300),
            repeat_interval: HumanDuration::from_secs(4 * 3600),
            send_resolved: true,
            escalate_after: None,
            escalate_to: None,
            ack_expiry: HumanDuration::from_secs(20 * 60),
            silence_retention: HumanDuration::from_secs(24 * 3600),
            resolve_timeout: HumanDuration::from_secs(3600),
            external_url: String::new(),
            queue_capacity: 256,
            max_attempts: 6,
            retry_initial: HumanDuration::from_secs(1),
            retry_max: HumanDuration::from_secs(60),
            mute_time_intervals: Vec::new(),
            active_time_intervals: Vec::new(),
        }
    }
}

/// The notifier's whole configuration: the `[[receiver]]` sections and the `[route]`.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NotifyConfig {
    /// The receivers, by name.
    #[serde(default, rename = "receiver")]
    pub receivers: Vec<ReceiverConfig>,
    /// Grouping, timing and retries.
    #[serde(default)]
    pub route: RouteConfig,
    /// The `[[inhibit]]` rules.
    #[serde(default, rename = "inhibit", skip_serializing_if = "Vec::is_empty")]
    pub inhibit_rules: Vec<crate::inhibit::InhibitRule>,
    /// The `[[time_interval]]` sections the route's `mute_time_intervals` and
    /// `active_time_intervals` name.
    #[serde(default, rename = "time_interval", skip_serializing_if = "Vec::is_empty")]
    pub time_intervals: Vec<crate::timeinterval::TimeInterval>,
}

impl NotifyConfig {
    /// Why notifications are held at `now` (Unix seconds): the route's
    /// `mute_time_intervals` in force, by name, and, when `active_time_intervals` are set
    /// and none is in force, `outside NAME` for each. Empty: notifications go out.
    pub fn muted_by(&self, now: i64) -> Vec<String> {
        let interval = |name: &String| self.time_intervals.iter().find(|t| t.name() == name);
        let mut out: Vec<String> = self
            .route
            .mute_time_intervals
            .iter()
            .filter(|n| interval(n).is_some_and(|t| t.contains(now)))
            .cloned()
            .collect();
        let active = &self.route.active_time_intervals;
        if !active.is_empty()
            && !active.iter().any(|n| interval(n).is_some_and(|t| t.contains(now)))
        {
            out.extend(active.iter().map(|n| format!("outside {n}")));
        }
        out
    }

    /// The receiver named `name`.
    pub fn receiver(&self, name: &str) -> Option<&ReceiverConfig> {
        self.receivers.iter().find(|r| r.name == name)
    }

    /// The `[[receiver]]` and `[route]` sections of a loaded rules file, validated; errors
    /// name the file and the section's line.
    ///
    /// # Errors
    ///
    /// [`Error::Rules`] for a section that does not deserialise (an unknown key, a bad
    /// duration) or does not validate.
    pub fn from_rules(rules: &crate::rules::RulesFile) -> Result<NotifyConfig> {
        use serde::de::Deserialize as _;
        let at =
            |line: usize, message: String| Error::rules(&rules.path, Some(line), None, message);
        let mut receivers = Vec::new();
        for section in &rules.receivers {
            let name = section.value.get("name").and_then(|v| v.as_str()).unwrap_or("?");
            let r = ReceiverConfig::deserialize(section.value.clone())
                .map_err(|e| at(section.line, format!("[[receiver]] {name:?}: {}", e.message())))?;
            receivers.push(r);
        }
        let route = match &rules.route {
            Some(section) => RouteConfig::deserialize(section.value.clone())
                .map_err(|e| at(section.line, format!("[route]: {}", e.message())))?,
            None => RouteConfig::default(),
        };
        let config = NotifyConfig {
            receivers,
            route,
            inhibit_rules: rules.inhibit.clone(),
            time_intervals: rules.time_intervals.clone(),
        };
        config.validate().map_err(|e| {
            let line = match &e {
                Error::Receiver { receiver, .. } => rules
                    .receivers
                    .iter()
                    .find(|s| {
                        s.value.get("name").and_then(|v| v.as_str()) == Some(receiver.as_str())
                    })
                    .map(|s| s.line),
                _ => rules.route.as_ref().map(|s| s.line),
            };
            Error::rules(&rules.path, line, None, e.to_string())
        })?;
        Ok(config)
    }

    /// Checks what serde cannot: unique names, the fields each kind needs (and no fields of
    /// another kind), templates that parse, escalation targets that exist.
    ///
    /// # Errors
    ///
    /// [`Error::Receiver`] or [`Error::Route`] naming the receiver and the problem.
    pub fn validate(&self) -> Result<()> {
        let mut names = BTreeSet::new();
        for r in &self.receivers {
            if r.name.trim().is_empty() {
                return Err(Error::receiver("", "a receiver needs a name"));
            }
            if !names.insert(r.name.as_str()) {
                return Err(Error::receiver(&r.name, "defined twice"));
            }
        }
        for r in &self.receivers {
            validate_receiver(r, &names)?;
        }
        let route = &self.route;
        if let Some(name) = &route.receiver
            && !names.contains(name.as_str())
        {
            return Err(Error::route(format!("receiver {name:?} is not defined")));
        }
        if let Some(name) = &route.escalate_to
            && !names.contains(name.as_str())
        {
            return Err(Error::route(format!("escalate_to {name:?} is not defined")));
        }
        if route.escalate_to.is_some() != route.escalate_after.is_some() {
            return Err(Error::route("escalate_after and escalate_to go together".into()));
        }
        if route.group_interval.0.is_zero() || route.repeat_interval.0.is_zero() {
            return Err(Error::route("group_interval and repeat_interval must be above 0".into()));
        }
        if route.queue_capacity == 0 || route.max_attempts == 0 {
            return Err(Error::route("queue_capacity and max_attempts must be above 0".into()));
        }
        if route.group_by.iter().any(|l| l == "...") && route.group_by.len() > 1 {
            return Err(Error::route("group_by = [\"...\"] stands alone".into()));
        }
        let mut intervals = BTreeSet::new();
        for t in &self.time_intervals {
            if !intervals.insert(t.name()) {
                return Err(Error::route(format!("time interval {:?} is defined twice", t.name())));
            }
        }
        for (key, names) in [
            ("mute_time_intervals", &route.mute_time_intervals),
            ("active_time_intervals", &route.active_time_intervals),
        ] {
            if let Some(name) = names.iter().find(|n| !intervals.contains(n.as_str())) {
                return Err(Error::route(format!(
                    "{key}: {name:?} is not defined (no [[time_interval]] has that name)"
                )));
            }
        }
        Ok(())
    }
}

fn validate_receiver(r: &ReceiverConfig, names: &BTreeSet<&str>) -> Result<()> {
    let bad = |problem: String| Err(Error::receiver(&r.name, problem));
    let foreign: &[(&str, bool)] = match r.kind {
        ReceiverKind::Webhook => &[
            ("smtp_host", r.smtp_host.is_some()),
            ("smtp_port", r.smtp_port.is_some()),
            ("tls", r.tls.is_some()),
            ("username", r.username.is_some()),
            ("password", r.password.is_some() || r.password_env.is_some()),
            ("from", r.from.is_some()),
            ("to", !r.to.is_empty()),
            ("subject", r.subject.is_some()),
            ("command", !r.command.is_empty()),
        ],
        ReceiverKind::Email => &[
            ("url", r.url.is_some()),
            ("headers", !r.headers.is_empty()),
            ("content_type", r.content_type.is_some()),
            ("max_alerts", r.max_alerts != 0),
            ("command", !r.command.is_empty()),
        ],
        ReceiverKind::Command => &[
            ("url", r.url.is_some()),
            ("headers", !r.headers.is_empty()),
            ("body", r.body.is_some()),
            ("content_type", r.content_type.is_some()),
            ("smtp_host", r.smtp_host.is_some()),
            ("smtp_port", r.smtp_port.is_some()),
            ("tls", r.tls.is_some()),
            ("username", r.username.is_some()),
            ("password", r.password.is_some() || r.password_env.is_some()),
            ("from", r.from.is_some()),
            ("to", !r.to.is_empty()),
            ("subject", r.subject.is_some()),
        ],
    };
    if let Some((field, _)) = foreign.iter().find(|(_, set)| *set) {
        return bad(format!("`{field}` does not apply to a {:?} receiver", r.kind));
    }
    match r.kind {
        ReceiverKind::Webhook => {
            let Some(url) = &r.url else { return bad("a webhook needs `url`".into()) };
            if !(url.starts_with("http://") || url.starts_with("https://")) {
                return bad(format!("url {url:?} must start with http:// or https://"));
            }
        }
        ReceiverKind::Email => {
            if r.smtp_host.as_deref().is_none_or(str::is_empty) {
                return bad("an email receiver needs `smtp_host`".into());
            }
            if r.from.is_none() || r.to.is_empty() {
                return bad("an email receiver needs `from` and `to`".into());
            }
            let mut addresses = r.to.clone();
            addresses.extend(r.from.clone());
            for a in &addresses {
                if a.parse::<lettre::message::Mailbox>().is_err() {
                    return bad(format!("{a:?} is not an email address"));
                }
            }
            if r.password.is_some() && r.password_env.is_some() {
                return bad("give `password` or `password_env`, not both".into());
            }
        }
        ReceiverKind::Command => {
            if r.command.first().is_none_or(String::is_empty) {
                return bad("a command receiver needs `command = [\"program\", ...]`".into());
            }
        }
    }
    for (field, text) in [("body", &r.body), ("subject", &r.subject)] {
        if let Some(text) = text {
            Template::parse(text).map_err(|e| {
                Error::receiver(
                    &r.name,
                    format!("template `{field}` at byte {}: {}", e.offset, e.message),
                )
            })?;
        }
    }
    if r.escalate_to.is_some() != r.escalate_after.is_some() {
        return bad("escalate_after and escalate_to go together".into());
    }
    if let Some(to) = &r.escalate_to {
        if !names.contains(to.as_str()) {
            return bad(format!("escalate_to {to:?} is not defined"));
        }
        if to == &r.name {
            return bad("a receiver cannot escalate to itself".into());
        }
    }
    Ok(())
}

/// Whether a notification says the group is firing or all resolved.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum GroupStatus {
    /// At least one alert fires.
    Firing,
    /// Every alert in it has resolved.
    Resolved,
}

impl GroupStatus {
    /// `firing` or `resolved`.
    pub fn as_str(self) -> &'static str {
        match self {
            GroupStatus::Firing => "firing",
            GroupStatus::Resolved => "resolved",
        }
    }
}

/// What one receiver is told about one group at one time.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Notification {
    /// The receiver's name (the escalation target's, for an escalation).
    pub receiver: String,
    /// The group's identity, stable over its life.
    pub group_key: String,
    /// Firing if any alert in `alerts` fires.
    pub status: GroupStatus,
    /// The labels the group is keyed by.
    pub group_labels: Labels,
    /// The status page's address.
    pub external_url: String,
    /// The alerts: firing ones and those resolved since the last notification.
    pub alerts: Vec<AlertEvent>,
    /// True when this is an escalation (the first message to the escalation receiver).
    pub escalation: bool,
}

impl Notification {
    /// Labels every alert has with the same value.
    pub fn common_labels(&self) -> Labels {
        common(self.alerts.iter().map(|a| &a.labels))
    }

    /// Annotations every alert has with the same value.
    pub fn common_annotations(&self) -> Labels {
        common(self.alerts.iter().map(|a| &a.annotations))
    }

    /// Alerts still firing.
    pub fn firing(&self) -> impl Iterator<Item = &AlertEvent> {
        self.alerts.iter().filter(|a| a.is_active())
    }

    /// The worst severity among the firing alerts.
    pub fn severity(&self) -> Option<Severity> {
        self.firing().filter_map(|a| a.severity).max()
    }
}

fn common<'a>(mut sets: impl Iterator<Item = &'a Labels>) -> Labels {
    let Some(first) = sets.next() else { return Labels::new() };
    let mut out = first.clone();
    for s in sets {
        out.retain(|k, v| s.get(k) == Some(v));
    }
    out
}

/// One delivery mechanism, built from a validated [`ReceiverConfig`].
pub(crate) enum Transport {
    Webhook(WebhookTransport),
    Email(EmailTransport),
    Command(CommandTransport),
}

/// Why a delivery failed, and whether trying again may help.
#[derive(Debug)]
pub(crate) struct DeliveryError {
    /// What went wrong, for the log and the API.
    pub(crate) message: String,
    /// A network error, a 5xx or 429, a timeout: worth retrying. A 4xx or a bad address is
    /// not.
    pub(crate) retryable: bool,
}

impl DeliveryError {
    pub(crate) fn retry(message: impl Into<String>) -> DeliveryError {
        DeliveryError { message: message.into(), retryable: true }
    }

    pub(crate) fn fatal(message: impl Into<String>) -> DeliveryError {
        DeliveryError { message: message.into(), retryable: false }
    }
}

impl Transport {
    /// The transport for a receiver that passed [`NotifyConfig::validate`].
    pub(crate) fn new(r: &ReceiverConfig) -> Result<Transport> {
        Ok(match r.kind {
            ReceiverKind::Webhook => Transport::Webhook(WebhookTransport::new(r)?),
            ReceiverKind::Email => Transport::Email(EmailTransport::new(r)?),
            ReceiverKind::Command => Transport::Command(CommandTransport::new(r)?),
        })
    }

    /// One attempt at delivering `n`.
    pub(crate) fn deliver(&self, n: &Notification) -> std::result::Result<(), DeliveryError> {
        match self {
            Transport::Webhook(t) => t.deliver(n),
            Transport::Email(t) => t.deliver(n),
            Transport::Command(t) => t.deliver(n),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_parse_units_and_compounds() {
        let p = |t: &str| HumanDuration::parse(t).map(|d| d.0);
        assert_eq!(p("30s"), Ok(Duration::from_secs(30)));
        assert_eq!(p("5m"), Ok(Duration::from_secs(300)));
        assert_eq!(p("1h30m"), Ok(Duration::from_secs(5400)));
        assert_eq!(p("250ms"), Ok(Duration::from_millis(250)));
        assert_eq!(p("90"), Ok(Duration::from_secs(90)));
        assert_eq!(p("2d"), Ok(Duration::from_secs(172_800)));
        assert!(p("").is_err());
        assert!(p("5x").is_err());
        assert!(p("m").is_err());
        assert!(p("5").is_ok());
        assert!(p("5 m").is_err());
        assert!(p("99999999999999999999w").is_err());
        assert!(p("18446744073709551615w").is_err());
    }

    #[test]
    fn durations_print_in_the_largest_exact_unit() {
        for (text, shown) in [("90s", "90s"), ("120s", "2m"), ("3600", "1h"), ("1500ms", "1500ms")]
        {
            assert_eq!(HumanDuration::parse(text).map(|d| d.to_string()).as_deref(), Ok(shown));
        }
    }

    #[test]
    fn route_defaults_are_alertmanagers() {
        let r: RouteConfig = toml::from_str("").unwrap();
        assert_eq!(r.group_wait.0, Duration::from_secs(30));
        assert_eq!(r.group_interval.0, Duration::from_secs(300));
        assert_eq!(r.repeat_interval.0, Duration::from_secs(14_400));
        assert!(r.group_by.is_empty());
        assert!(r.send_resolved);
        assert_eq!(r.ack_expiry.0, Duration::from_secs(1200));
    }

    fn parse(text: &str) -> NotifyConfig {
        toml::from_str(text).unwrap()
    }

    #[test]
    fn a_full_config_validates() {
        let c = parse(
            r#"
            [[receiver]]
            name = "hook"
            type = "webhook"
            url = "http://127.0.0.1:9/x"
            escalate_after = "15m"
            escalate_to = "phone"

            [[receiver]]
            name = "mail"
            type = "email"
            smtp_host = "127.0.0.1"
            smtp_port = 2525
            tls = "none"
            from = "alert@example.com"
            to = ["ops@example.com"]
            subject = "[{{status}}] {{labels.alertname}}"

            [[receiver]]
            name = "phone"
            type = "command"
            command = ["/bin/true"]

            [route]
            receiver = "hook"
            group_by = ["alertname"]
            group_wait = "10s"
            "#,
        );
        c.validate().unwrap();
        assert_eq!(c.receivers.len(), 3);
        assert_eq!(c.route.group_wait.0, Duration::from_secs(10));
    }

    #[test]
    fn validation_names_the_receiver_and_the_problem() {
        let cases = [
            ("[[receiver]]\nname='a'\ntype='webhook'\n", "needs `url`"),
            ("[[receiver]]\nname='a'\ntype='webhook'\nurl='ftp://x'\n", "http://"),
            ("[[receiver]]\nname='a'\ntype='command'\ncommand=[]\n", "needs `command"),
            ("[[receiver]]\nname='a'\ntype='command'\ncommand=['x']\nurl='http://x'\n", "`url`"),
            (
                "[[receiver]]\nname='a'\ntype='email'\nsmtp_host='h'\nfrom='x'\nto=['y@z']\n",
                "not an email address",
            ),
            (
                "[[receiver]]\nname='a'\ntype='command'\ncommand=['x']\nescalate_to='b'\nescalate_after='1m'\n",
                "not defined",
            ),
            (
                "[[receiver]]\nname='a'\ntype='webhook'\nurl='http://x'\nbody='{{labels.x'\n",
                "template `body`",
            ),
            (
                "[[receiver]]\nname='a'\ntype='command'\ncommand=['x']\n[[receiver]]\nname='a'\ntype='command'\ncommand=['x']\n",
                "defined twice",
            ),
            ("[route]\nreceiver='nobody'\n", "not defined"),
        ];
        for (text, expected) in cases {
            let err = parse(text).validate().unwrap_err().to_string();
            assert!(err.contains(expected), "{text}: {err}");
        }
    }

    #[test]
    fn unknown_fields_are_rejected_by_serde() {
        let err =
            toml::from_str::<NotifyConfig>("[[receiver]]\nname='a'\ntype='webhook'\nurll='x'\n")
                .unwrap_err()
                .to_string();
        assert!(err.contains("urll"), "{err}");
        assert!(err.contains("line 4"), "{err}");
    }

    #[test]
    fn common_labels_are_the_shared_pairs() {
        let ev = |host: &str| AlertEvent {
            labels: [("alertname", "x"), ("host", host)]
                .into_iter()
                .map(|(a, b)| (a.to_owned(), b.to_owned()))
                .collect(),
            annotations: Labels::new(),
            status: crate::model::Status::Firing,
            severity: None,
            value: None,
            starts_at: 0,
            ends_at: None,
            generator_url: String::new(),
            receivers: vec![],
        };
        let n = Notification {
            receiver: "r".into(),
            group_key: "k".into(),
            status: GroupStatus::Firing,
            group_labels: Labels::new(),
            external_url: String::new(),
            alerts: vec![ev("a"), ev("b")],
            escalation: false,
        };
        assert_eq!(n.common_labels().len(), 1);
        assert_eq!(n.common_labels().get("alertname").map(String::as_str), Some("x"));
    }

    proptest::proptest! {
        #[test]
        fn duration_parse_never_panics(text in "\\PC{0,20}") {
            let _ = HumanDuration::parse(&text);
        }

        #[test]
        fn durations_round_trip_through_text(ms in 0u64..10_000_000_000) {
            let d = HumanDuration(Duration::from_millis(ms));
            proptest::prop_assert_eq!(HumanDuration::parse(&d.to_string()), Ok(d));
        }
    }
}
