//! Routing and timing: which receiver hears of which alert, in which group, and when —
//! Alertmanager's aggregation groups and notification log, plus escalation.
//!
//! An alert goes to the receivers its rule names (`notify = [...]`), else to the route's
//! default receiver. Per receiver, alerts with the same values of the route's `group_by`
//! labels form a group. A new group waits `group_wait`, then is flushed; after that every
//! `group_interval`. A flush notifies when something changed since the receiver was last
//! told (an alert it has not heard of fires, an alert got worse, or — with
//! `send_resolved` — one it heard of resolved), or when `repeat_interval` passed since the
//! last notification and some firing alert is unacknowledged. A notification lists the
//! group's firing alerts and those resolved since. Silenced and inhibited alerts are left out
//! as if they were not firing, so when a silence or an inhibition ends on a still-firing
//! alert it is notified as new.
//! An alert that gets worse flushes its group at once rather than at the next interval.
//!
//! Time intervals: while one of the route's `mute_time_intervals` holds, or none of its
//! `active_time_intervals` does, notifications are held, as in Alertmanager: no flush, repeat
//! or escalation happens, and nothing is forgotten — the notification log, the due flushes and
//! the resolutions wait, so the first tick after the window opens sends what is still firing
//! (and resolutions of alerts the receiver was told of), and an alert that fired and resolved
//! within the window is never sent.
//!
//! Escalation: when a receiver (or the route) sets `escalate_after`/`escalate_to` and a
//! group has been notified for that long with a firing, unsilenced alert nobody
//! acknowledged, the group is also sent to `escalate_to`, which then hears of the group's
//! further notifications (so the phone also learns it resolved).
//!
//! All of this is a pure function of the events, the clock passed in, silences, inhibitions
//! and acks:
//! [`RouteState`] holds no threads and is tested with explicit times.

use std::collections::{BTreeMap, BTreeSet, HashMap};

use serde::{Deserialize, Serialize};

use crate::ack::Acks;
use crate::inhibit::Inhibitor;
use crate::model::{AlertEvent, Labels, Severity};
use crate::notify::{GroupStatus, Notification, NotifyConfig, RouteConfig};
use crate::silence::Silences;

/// One alert in a group, with when the engine last reported it.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub(crate) struct GroupAlert {
    pub(crate) event: AlertEvent,
    pub(crate) updated_at: i64,
}

/// An aggregation group with its notification log.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub(crate) struct Group {
    /// The receiver it notifies.
    pub(crate) receiver: String,
    /// Its identity: receiver and group labels.
    pub(crate) key: String,
    /// The `group_by` labels' values.
    pub(crate) labels: Labels,
    /// Its alerts by fingerprint.
    pub(crate) alerts: BTreeMap<String, GroupAlert>,
    /// When it is next flushed.
    pub(crate) next_flush: i64,
    /// The firing alerts the receiver was last told of, with their severities.
    pub(crate) sent: BTreeMap<String, Option<Severity>>,
    /// When the receiver was last notified.
    pub(crate) last_sent: Option<i64>,
    /// When the receiver was first notified of the current firing spell (escalation's
    /// clock).
    pub(crate) first_sent: Option<i64>,
    /// Whether the escalation receiver was told.
    pub(crate) escalated: bool,
}

/// Groups at most (each receiver times each distinct group_by value set); past this new
/// groups are not made and the alert is counted as dropped.
pub(crate) const MAX_GROUPS: usize = 100_000;

/// Every group, by key.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub(crate) struct RouteState {
    pub(crate) groups: BTreeMap<String, Group>,
    /// Alerts that could not be grouped because [`MAX_GROUPS`] was reached.
    #[serde(default)]
    pub(crate) dropped: u64,
}

/// What a tick produced: the notifications to send, and the groups that ended (their acks
/// end with them).
#[derive(Debug, Default)]
pub(crate) struct TickOutput {
    pub(crate) notifications: Vec<Notification>,
    pub(crate) ended_groups: Vec<String>,
}

fn secs(d: crate::notify::HumanDuration) -> i64 {
    d.as_secs_ceil()
}

/// The group labels of `labels` under `group_by`.
pub(crate) fn group_labels(route: &RouteConfig, labels: &Labels) -> Labels {
    if route.group_by.iter().any(|l| l == "...") {
        return labels.clone();
    }
    route
        .group_by
        .iter()
        .filter_map(|name| labels.get(name).map(|v| (name.clone(), v.clone())))
        .collect()
}

/// A group's key: `receiver:{a="x",b="y"}`, as Alertmanager prints them.
pub(crate) fn group_key(receiver: &str, labels: &Labels) -> String {
    let inner: Vec<String> = labels.iter().map(|(k, v)| format!("{k}={v:?}")).collect();
    format!("{receiver}:{{{}}}", inner.join(","))
}

/// The receivers `event` goes to.
pub(crate) fn receivers_of<'a>(config: &'a NotifyConfig, event: &'a AlertEvent) -> Vec<&'a str> {
    if event.receivers.is_empty() {
        config.route.receiver.as_deref().into_iter().collect()
    } else {
        event.receivers.iter().map(String::as_str).collect()
    }
}

impl RouteState {
    /// Files the engine's events of one round at `now`.
    ///
    /// A resolution goes to every group that holds the alert, wherever the alert would be
    /// routed now (after a reload changed its receivers or the grouping, the groups it was
    /// told in still hear that it resolved).
    pub(crate) fn ingest(&mut self, config: &NotifyConfig, events: &[AlertEvent], now: i64) {
        let holding: HashMap<String, Vec<String>> = if events.iter().any(|e| !e.is_active()) {
            let mut index: HashMap<String, Vec<String>> = HashMap::new();
            for g in self.groups.values() {
                for fp in g.alerts.keys() {
                    index.entry(fp.clone()).or_default().push(g.key.clone());
                }
            }
            index
        } else {
            HashMap::new()
        };
        for event in events {
            let fp = event.fingerprint();
            if !event.is_active() {
                for key in holding.get(&fp).into_iter().flatten() {
                    if let Some(group) = self.groups.get_mut(key) {
                        group.alerts.insert(
                            fp.clone(),
                            GroupAlert { event: event.clone(), updated_at: now },
                        );
                    }
                }
                continue;
            }
            let labels = group_labels(&config.route, &event.labels);
            for receiver in receivers_of(config, event) {
                if config.receiver(receiver).is_none() {
                    tracing::warn!(receiver, alert = %fp, "alert names an unknown receiver");
                    continue;
                }
                let key = group_key(receiver, &labels);
                if !self.groups.contains_key(&key) {
                    if self.groups.len() >= MAX_GROUPS {
                        self.dropped += 1;
                        continue;
                    }
                    self.groups.insert(
                        key.clone(),
                        Group {
                            receiver: receiver.to_owned(),
                            key: key.clone(),
                            labels: labels.clone(),
                            alerts: BTreeMap::new(),
                            next_flush: now.saturating_add(secs(config.route.group_wait)),
                            sent: BTreeMap::new(),
                            last_sent: None,
                            first_sent: None,
                            escalated: false,
                        },
                    );
                }
                let Some(group) = self.groups.get_mut(&key) else { continue };
                if let Some(told) = group.sent.get(&fp)
                    && event.severity > *told
                {
                    // Worse than the receiver knows: tell it now, not at the next interval.
                    group.next_flush = group.next_flush.min(now);
                }
                group
                    .alerts
                    .insert(fp.clone(), GroupAlert { event: event.clone(), updated_at: now });
            }
        }
    }

    /// After a reload: drops the alerts that one full round's `events` report active but
    /// no longer route to the group holding them (their rule's receivers or the grouping
    /// changed), without a resolution (the alert goes on in its new groups), and the groups
    /// of receivers that are gone. Returns the keys of the groups dropped.
    pub(crate) fn reroute(&mut self, config: &NotifyConfig, events: &[AlertEvent]) -> Vec<String> {
        let mut routes: HashMap<String, BTreeSet<String>> = HashMap::new();
        for e in events.iter().filter(|e| e.is_active()) {
            let labels = group_labels(&config.route, &e.labels);
            let keys = receivers_of(config, e)
                .into_iter()
                .filter(|r| config.receiver(r).is_some())
                .map(|r| group_key(r, &labels))
                .collect();
            routes.insert(e.fingerprint(), keys);
        }
        let mut dropped = Vec::new();
        self.groups.retain(|key, g| {
            if config.receiver(&g.receiver).is_none() {
                dropped.push(key.clone());
                return false;
            }
            g.alerts.retain(|fp, a| {
                !a.event.is_active() || routes.get(fp).is_none_or(|keys| keys.contains(key))
            });
            let alerts = &g.alerts;
            g.sent.retain(|fp, _| alerts.contains_key(fp));
            true
        });
        dropped
    }

    /// Drops the groups of receivers `config` does not have; returns their keys.
    pub(crate) fn drop_unknown_receivers(&mut self, config: &NotifyConfig) -> Vec<String> {
        let mut dropped = Vec::new();
        self.groups.retain(|key, g| {
            let keep = config.receiver(&g.receiver).is_some();
            if !keep {
                dropped.push(key.clone());
            }
            keep
        });
        dropped
    }

    /// Flushes due groups and escalates at `now`.
    pub(crate) fn tick(
        &mut self,
        config: &NotifyConfig,
        silences: &Silences,
        acks: &Acks,
        inhibitor: &Inhibitor,
        now: i64,
    ) -> TickOutput {
        let mut out = TickOutput::default();
        let route = &config.route;
        let held = !config.muted_by(now).is_empty();
        // Silenced and inhibited alerts are left out as if they were not firing.
        let muted = |e: &AlertEvent| {
            let labels = crate::notify::labels_of(e);
            silences.is_silenced(&labels, now) || inhibitor.is_inhibited(&e.fingerprint(), &labels)
        };
        for group in self.groups.values_mut() {
            // An alert the engine stopped reporting (its rule was removed) resolves.
            for a in group.alerts.values_mut() {
                if a.event.is_active()
                    && now.saturating_sub(a.updated_at) >= secs(route.resolve_timeout)
                {
                    a.event.ends_at = Some(now);
                    a.event.status = crate::model::Status::Normal;
                }
            }
            let receiver = config.receiver(&group.receiver);
            let send_resolved =
                receiver.and_then(|r| r.send_resolved).unwrap_or(route.send_resolved);
            let escalation = receiver
                .and_then(|r| r.escalate_after.zip(r.escalate_to.clone()))
                .or_else(|| route.escalate_after.zip(route.escalate_to.clone()))
                .filter(|(_, to)| to != &group.receiver);
            let mut firing: Vec<&AlertEvent> = group
                .alerts
                .values()
                .map(|a| &a.event)
                .filter(|e| e.is_active() && !muted(e))
                .collect();
            firing.sort_by(|a, b| a.labels.cmp(&b.labels));
            let unacked = firing
                .iter()
                .filter(|e| {
                    acks.covering(&e.fingerprint(), Some(&group.key), e.severity, now).is_none()
                })
                .count();
            if !held && now >= group.next_flush {
                let mut resolved: Vec<&AlertEvent> = group
                    .alerts
                    .iter()
                    .filter(|(fp, a)| !a.event.is_active() && group.sent.contains_key(*fp))
                    .map(|(_, a)| &a.event)
                    .collect();
                resolved.sort_by(|a, b| a.labels.cmp(&b.labels));
                let changed = firing.iter().any(|e| match group.sent.get(&e.fingerprint()) {
                    None => true,
                    Some(told) => e.severity > *told,
                }) || (send_resolved && !resolved.is_empty());
                let repeat = unacked > 0
                    && group
                        .last_sent
                        .is_some_and(|t| now >= t.saturating_add(secs(route.repeat_interval)));
                if changed || repeat {
                    let mut alerts: Vec<AlertEvent> = firing.iter().map(|e| (*e).clone()).collect();
                    if send_resolved {
                        alerts.extend(resolved.iter().map(|e| (*e).clone()));
                    }
                    let n = Notification {
                        receiver: group.receiver.clone(),
                        group_key: group.key.clone(),
                        status: if firing.is_empty() {
                            GroupStatus::Resolved
                        } else {
                            GroupStatus::Firing
                        },
                        group_labels: group.labels.clone(),
                        external_url: route.external_url.clone(),
                        alerts,
                        escalation: false,
                    };
                    if group.escalated
                        && let Some((_, to)) = &escalation
                    {
                        out.notifications.push(Notification { receiver: to.clone(), ..n.clone() });
                    }
                    out.notifications.push(n);
                    group.last_sent = Some(now);
                    if !firing.is_empty() {
                        group.first_sent.get_or_insert(now);
                    }
                }
                // The log holds what is firing now: an alert silenced or resolved meanwhile
                // is new to the receiver when it fires again.
                let sent: BTreeMap<String, Option<Severity>> = firing
                    .iter()
                    .map(|e| {
                        let fp = e.fingerprint();
                        let told = if changed || repeat {
                            e.severity
                        } else {
                            group.sent.get(&fp).copied().unwrap_or(e.severity)
                        };
                        (fp, told)
                    })
                    .collect();
                let none_firing = firing.is_empty();
                group.sent = sent;
                group.alerts.retain(|_, a| a.event.is_active());
                group.next_flush = now.saturating_add(secs(route.group_interval));
                if none_firing {
                    group.first_sent = None;
                    group.escalated = false;
                }
            }
            if let Some((after, to)) = escalation
                && !held
                && !group.escalated
                && unacked > 0
                && group.first_sent.is_some_and(|t| now >= t.saturating_add(secs(after)))
            {
                let mut alerts: Vec<AlertEvent> = group
                    .alerts
                    .values()
                    .map(|a| &a.event)
                    .filter(|e| e.is_active() && !muted(e))
                    .cloned()
                    .collect();
                alerts.sort_by(|a, b| a.labels.cmp(&b.labels));
                out.notifications.push(Notification {
                    receiver: to,
                    group_key: group.key.clone(),
                    status: GroupStatus::Firing,
                    group_labels: group.labels.clone(),
                    external_url: route.external_url.clone(),
                    alerts,
                    escalation: true,
                });
                group.escalated = true;
            }
        }
        self.groups.retain(|key, g| {
            let keep = !g.alerts.is_empty();
            if !keep {
                out.ended_groups.push(key.clone());
            }
            keep
        });
        out
    }

    /// A delivery to `receiver` for group `key` was given up: forget that it was told, so
    /// the next flush sends again (or escalates again).
    pub(crate) fn delivery_failed(&mut self, receiver: &str, key: &str) {
        if let Some(g) = self.groups.get_mut(key) {
            if g.receiver == receiver {
                g.sent.clear();
            } else {
                g.escalated = false;
            }
        }
    }

    /// The keys of the groups alert `fp` is in.
    pub(crate) fn groups_of(&self, fp: &str) -> Vec<String> {
        self.groups.values().filter(|g| g.alerts.contains_key(fp)).map(|g| g.key.clone()).collect()
    }

    /// The worst severity among a group's active alerts, if the group exists.
    pub(crate) fn group_severity(&self, key: &str) -> Option<Option<Severity>> {
        self.groups.get(key).map(|g| {
            g.alerts.values().filter(|a| a.event.is_active()).filter_map(|a| a.event.severity).max()
        })
    }

    /// The latest event of alert `fp`, from any group.
    pub(crate) fn alert(&self, fp: &str) -> Option<&AlertEvent> {
        self.groups.values().find_map(|g| g.alerts.get(fp)).map(|a| &a.event)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ack::{Ack, AckTarget};
    use crate::model::Status;
    use crate::notify::{HumanDuration, ReceiverConfig, ReceiverKind};
    use crate::silence::{Matcher, NewSilence};

    fn config() -> NotifyConfig {
        let mut hook = ReceiverConfig::new("hook", ReceiverKind::Webhook);
        hook.url = Some("http://127.0.0.1:1/".into());
        let mut phone = ReceiverConfig::new("phone", ReceiverKind::Command);
        phone.command = vec!["true".into()];
        let mut c = NotifyConfig { receivers: vec![hook, phone], ..NotifyConfig::default() };
        c.route.receiver = Some("hook".into());
        c.route.group_by = vec!["alertname".into()];
        c.route.group_wait = HumanDuration::from_secs(30);
        c.route.group_interval = HumanDuration::from_secs(300);
        c.route.repeat_interval = HumanDuration::from_secs(3600);
        c.validate().unwrap();
        c
    }

    fn event(name: &str, host: &str, severity: Option<Severity>) -> AlertEvent {
        AlertEvent {
            labels: [("alertname", name), ("host", host)]
                .into_iter()
                .map(|(a, b)| (a.to_owned(), b.to_owned()))
                .collect(),
            annotations: Labels::new(),
            status: Status::Firing,
            severity,
            value: Some(1.0),
            starts_at: 0,
            ends_at: None,
            generator_url: String::new(),
            receivers: vec![],
        }
    }

    fn resolved(mut e: AlertEvent, at: i64) -> AlertEvent {
        e.ends_at = Some(at);
        e.status = Status::Normal;
        e
    }

    struct World {
        config: NotifyConfig,
        state: RouteState,
        silences: Silences,
        acks: Acks,
        inhibitor: Inhibitor,
    }

    impl World {
        fn new(config: NotifyConfig) -> World {
            World {
                config,
                state: RouteState::default(),
                silences: Silences::default(),
                acks: Acks::default(),
                inhibitor: Inhibitor::default(),
            }
        }
        fn round(&mut self, events: &[AlertEvent], now: i64) -> Vec<Notification> {
            self.state.ingest(&self.config, events, now);
            self.tick(now)
        }
        fn tick(&mut self, now: i64) -> Vec<Notification> {
            self.state
                .tick(&self.config, &self.silences, &self.acks, &self.inhibitor, now)
                .notifications
        }
        /// Runs rounds every 60 s from `from` to `to` with the same events; collects sends.
        fn run(&mut self, events: &[AlertEvent], from: i64, to: i64) -> Vec<(i64, Notification)> {
            let mut out = Vec::new();
            let mut t = from;
            while t <= to {
                out.extend(self.round(events, t).into_iter().map(|n| (t, n)));
                t += 60;
            }
            out
        }
    }

    fn hosts(n: &Notification) -> Vec<(String, &'static str)> {
        n.alerts
            .iter()
            .map(|a| (a.labels["host"].clone(), if a.is_active() { "firing" } else { "resolved" }))
            .collect()
    }

    #[test]
    fn group_wait_batches_then_group_interval_adds() {
        let mut w = World::new(config());
        assert!(w.round(&[event("disk", "a", None)], 0).is_empty());
        assert!(w.round(&[event("disk", "a", None), event("disk", "b", None)], 10).is_empty());
        let sent = w.tick(30);
        assert_eq!(sent.len(), 1);
        assert_eq!(hosts(&sent[0]), vec![("a".into(), "firing"), ("b".into(), "firing")]);
        assert_eq!(sent[0].group_key, "hook:{alertname=\"disk\"}");
        // A third host joins: told at the next group_interval, not before.
        let three = [event("disk", "a", None), event("disk", "b", None), event("disk", "c", None)];
        assert!(w.round(&three, 60).is_empty());
        assert!(w.round(&three, 329).is_empty());
        let sent = w.round(&three, 330);
        assert_eq!(sent.len(), 1);
        assert_eq!(sent[0].alerts.len(), 3);
    }

    #[test]
    fn repeats_after_repeat_interval_only() {
        let mut w = World::new(config());
        let sends = w.run(&[event("disk", "a", None)], 0, 3 * 3600);
        let times: Vec<i64> = sends.iter().map(|(t, _)| *t).collect();
        // First at group_wait (rounded to the next round), then once per hour, on a flush.
        assert_eq!(times[0], 60);
        assert_eq!(times.len(), 3, "{times:?}");
        assert!(times.windows(2).all(|w| w[1] - w[0] >= 3600), "{times:?}");
    }

    #[test]
    fn resolution_is_told_once_and_the_group_ends() {
        let mut w = World::new(config());
        let a = event("disk", "a", None);
        w.run(std::slice::from_ref(&a), 0, 60);
        let sent = w.round(&[resolved(a.clone(), 100)], 120);
        assert!(sent.is_empty(), "waits for group_interval");
        let sent = w.tick(360);
        assert_eq!(sent.len(), 1);
        assert_eq!(sent[0].status, GroupStatus::Resolved);
        assert_eq!(hosts(&sent[0]), vec![("a".into(), "resolved")]);
        assert!(w.state.groups.is_empty());
        assert!(w.tick(10_000).is_empty());
    }

    #[test]
    fn send_resolved_false_stays_quiet() {
        let mut c = config();
        c.receivers[0].send_resolved = Some(false);
        let mut w = World::new(c);
        let a = event("disk", "a", None);
        w.run(std::slice::from_ref(&a), 0, 60);
        w.round(&[resolved(a, 100)], 120);
        assert!(w.tick(360).is_empty());
        assert!(w.state.groups.is_empty());
    }

    #[test]
    fn never_told_alerts_resolve_silently() {
        let mut w = World::new(config());
        let a = event("disk", "a", None);
        w.round(std::slice::from_ref(&a), 0);
        w.round(&[resolved(a, 10)], 10);
        assert!(w.tick(30).is_empty());
        assert!(w.state.groups.is_empty());
    }

    #[test]
    fn silence_suppresses_and_its_end_notifies() {
        let mut w = World::new(config());
        w.silences
            .add(
                NewSilence {
                    matchers: vec![Matcher::parse("host=a").unwrap()],
                    starts_at: None,
                    ends_at: 1000,
                    created_by: "me".into(),
                    comment: String::new(),
                },
                0,
            )
            .unwrap();
        let sends = w.run(&[event("disk", "a", None), event("disk", "b", None)], 0, 900);
        assert_eq!(sends.len(), 1);
        assert_eq!(hosts(&sends[0].1), vec![("b".into(), "firing")]);
        let sends = w.run(&[event("disk", "a", None), event("disk", "b", None)], 960, 1500);
        assert_eq!(sends.len(), 1, "the silence's end is news");
        assert_eq!(sends[0].1.alerts.len(), 2);
    }

    #[test]
    fn ack_stops_repeats_but_worse_severity_notifies() {
        let mut w = World::new(config());
        let warn = event("disk", "a", Some(Severity::Warning));
        w.run(std::slice::from_ref(&warn), 0, 60);
        w.acks.add(Ack {
            target: AckTarget::Fingerprint(warn.fingerprint()),
            by: "me".into(),
            comment: String::new(),
            at: 100,
            expires_at: 100 + 5 * 3600,
            severity: Some(Severity::Warning),
        });
        assert!(
            w.run(std::slice::from_ref(&warn), 120, 4 * 3600).is_empty(),
            "no repeats while acked"
        );
        let crit = event("disk", "a", Some(Severity::Critical));
        let sent = w.round(std::slice::from_ref(&crit), 4 * 3600 + 60);
        assert_eq!(sent.len(), 1, "worse severity is told at once");
        assert_eq!(sent[0].alerts[0].severity, Some(Severity::Critical));
    }

    #[test]
    fn ack_expiry_resumes_repeats() {
        let mut w = World::new(config());
        let a = event("disk", "a", None);
        w.run(std::slice::from_ref(&a), 0, 60);
        w.acks.add(Ack {
            target: AckTarget::GroupKey("hook:{alertname=\"disk\"}".into()),
            by: "me".into(),
            comment: String::new(),
            at: 100,
            expires_at: 5000,
            severity: None,
        });
        let sends = w.run(&[a], 120, 8000);
        assert_eq!(sends.len(), 1);
        assert!(sends[0].0 >= 5000);
    }

    #[test]
    fn escalates_when_unacknowledged_and_only_once() {
        let mut c = config();
        c.receivers[0].escalate_after = Some(HumanDuration::from_secs(900));
        c.receivers[0].escalate_to = Some("phone".into());
        let mut w = World::new(c);
        let sends = w.run(&[event("disk", "a", None)], 0, 3000);
        let to_phone: Vec<&(i64, Notification)> =
            sends.iter().filter(|(_, n)| n.receiver == "phone").collect();
        assert_eq!(to_phone.len(), 1);
        assert!(to_phone[0].1.escalation);
        assert_eq!(to_phone[0].0, 60 + 900);
        // Later news of the group also reaches the phone.
        let a = event("disk", "a", None);
        let mut sent = w.round(&[resolved(a, 3010)], 3060);
        sent.extend(w.tick(3400));
        let receivers: Vec<&str> = sent.iter().map(|n| n.receiver.as_str()).collect();
        assert_eq!(receivers, vec!["phone", "hook"]);
    }

    #[test]
    fn an_ack_prevents_escalation() {
        let mut c = config();
        c.route.escalate_after = Some(HumanDuration::from_secs(900));
        c.route.escalate_to = Some("phone".into());
        let mut w = World::new(c);
        let a = event("disk", "a", None);
        w.run(std::slice::from_ref(&a), 0, 60);
        w.acks.add(Ack {
            target: AckTarget::Fingerprint(a.fingerprint()),
            by: "me".into(),
            comment: String::new(),
            at: 100,
            expires_at: 100_000,
            severity: None,
        });
        let sends = w.run(&[a], 120, 3000);
        assert!(sends.iter().all(|(_, n)| n.receiver != "phone"), "{sends:?}");
    }

    #[test]
    fn a_failed_delivery_is_sent_again_at_the_next_flush() {
        let mut w = World::new(config());
        let a = event("disk", "a", None);
        assert_eq!(w.run(std::slice::from_ref(&a), 0, 60).len(), 1);
        w.state.delivery_failed("hook", "hook:{alertname=\"disk\"}");
        let sends = w.run(&[a], 120, 400);
        assert_eq!(sends.len(), 1);
        assert_eq!(sends[0].0, 360);
    }

    #[test]
    fn stale_alerts_resolve_after_resolve_timeout() {
        let mut w = World::new(config());
        w.run(&[event("disk", "a", None)], 0, 60);
        let mut sent = Vec::new();
        for t in (120..=4000).step_by(60) {
            sent.extend(w.round(&[], t));
        }
        assert_eq!(sent.len(), 1);
        assert_eq!(sent[0].status, GroupStatus::Resolved);
    }

    #[test]
    fn group_by_dots_makes_one_group_per_alert_and_empty_one_group() {
        let mut c = config();
        c.route.group_by = vec!["...".into()];
        let mut w = World::new(c.clone());
        let sent = w.run(&[event("disk", "a", None), event("cpu", "a", None)], 0, 60);
        assert_eq!(sent.len(), 2);
        c.route.group_by = vec![];
        let mut w = World::new(c);
        let sent = w.run(&[event("disk", "a", None), event("cpu", "a", None)], 0, 60);
        assert_eq!(sent.len(), 1);
        assert_eq!(sent[0].1.group_key, "hook:{}");
    }

    #[test]
    fn rule_receivers_override_the_default_and_unknown_ones_are_skipped() {
        let mut w = World::new(config());
        let mut e = event("disk", "a", None);
        e.receivers = vec!["phone".into(), "nobody".into()];
        let sent = w.run(&[e], 0, 60);
        assert_eq!(sent.len(), 1);
        assert_eq!(sent[0].1.receiver, "phone");
    }

    #[test]
    fn reroute_moves_an_alert_without_telling_its_old_group_it_resolved() {
        let mut w = World::new(config());
        let a = event("disk", "a", None);
        assert_eq!(w.run(std::slice::from_ref(&a), 0, 60).len(), 1);
        // A reload made the rule notify the phone instead.
        let mut moved = a.clone();
        moved.receivers = vec!["phone".into()];
        w.state.ingest(&w.config, std::slice::from_ref(&moved), 120);
        assert!(w.state.reroute(&w.config, std::slice::from_ref(&moved)).is_empty());
        let sent = w.run(std::slice::from_ref(&moved), 180, 1800);
        assert_eq!(sent.len(), 1, "{sent:?}");
        assert_eq!(sent[0].1.receiver, "phone");
        assert_eq!(hosts(&sent[0].1), vec![("a".into(), "firing")]);
        assert!(!w.state.groups.keys().any(|k| k.starts_with("hook:")), "the hook's group ended");
    }

    #[test]
    fn a_resolution_reaches_the_group_that_told_it_after_the_grouping_changed() {
        let mut w = World::new(config());
        let a = event("disk", "a", None);
        w.run(std::slice::from_ref(&a), 0, 60);
        w.config.route.group_by = vec!["host".into()];
        let mut sent = w.round(&[resolved(a, 100)], 120);
        sent.extend(w.tick(360));
        assert_eq!(sent.len(), 1);
        assert_eq!(sent[0].group_key, "hook:{alertname=\"disk\"}");
        assert_eq!(sent[0].status, GroupStatus::Resolved);
    }

    #[test]
    fn groups_of_removed_receivers_are_dropped() {
        let mut w = World::new(config());
        let mut a = event("disk", "a", None);
        a.receivers = vec!["phone".into()];
        w.run(std::slice::from_ref(&a), 0, 60);
        w.config.receivers.retain(|r| r.name != "phone");
        assert_eq!(w.state.drop_unknown_receivers(&w.config), vec!["phone:{alertname=\"disk\"}"]);
        assert!(w.state.groups.is_empty());
    }

    fn interval(text: &str) -> crate::timeinterval::TimeInterval {
        toml::from_str(text).unwrap()
    }

    fn at(text: &str) -> i64 {
        text.parse::<jiff::Timestamp>().unwrap().as_second()
    }

    #[test]
    fn a_mute_interval_holds_notifications_and_its_end_sends_what_still_fires() {
        let mut c = config();
        c.time_intervals = vec![interval(
            "name = \"night\"\ntimes = [{start_time = \"00:00\", end_time = \"06:00\"}]",
        )];
        c.route.mute_time_intervals = vec!["night".into()];
        c.validate().unwrap();
        let mut w = World::new(c);
        // Told before the night: host a fires at 23:00 on Sunday 1 March 2026 (UTC).
        let evening = at("2026-03-01T23:00:00Z");
        let a = event("disk", "a", None);
        let sends = w.run(std::slice::from_ref(&a), evening, evening + 1800);
        assert_eq!(sends.len(), 1);
        let midnight = at("2026-03-02T00:00:00Z");
        let six = at("2026-03-02T06:00:00Z");
        assert_eq!(w.config.muted_by(midnight), vec!["night".to_owned()]);
        assert!(w.config.muted_by(six).is_empty());
        // During the night: b fires and stays, c fires and resolves, a resolves. Nothing is
        // sent, not even the repeat that falls due.
        let (b, cc) = (event("disk", "b", None), event("disk", "c", None));
        let mut t = midnight;
        while t < six {
            let mut events = vec![b.clone()];
            if t < midnight + 600 {
                events.push(a.clone());
                events.push(cc.clone());
            } else if t == midnight + 600 {
                events.push(resolved(a.clone(), t));
                events.push(resolved(cc.clone(), t));
            }
            assert!(w.round(&events, t).is_empty(), "sent at {t} while muted");
            t += 60;
        }
        // The window opens: the first tick sends b firing and a resolved, not c.
        let sent = w.round(std::slice::from_ref(&b), six);
        assert_eq!(sent.len(), 1, "{sent:?}");
        assert_eq!(hosts(&sent[0]), vec![("b".into(), "firing"), ("a".into(), "resolved")]);
        assert!(w.round(std::slice::from_ref(&b), six + 60).is_empty());
    }

    #[test]
    fn active_intervals_hold_outside_working_hours_in_the_zone_across_dst() {
        let mut c = config();
        c.time_intervals = vec![interval(
            "name = \"office\"\ntimes = [{start_time = \"09:00\", end_time = \"17:00\"}]\n\
             weekdays = [\"monday:friday\"]\nlocation = \"Europe/Berlin\"",
        )];
        c.route.active_time_intervals = vec!["office".into()];
        c.validate().unwrap();
        let mut w = World::new(c);
        // Fires on Sunday 29 March 2026, the day Berlin moves to summer time (UTC+2).
        let from = at("2026-03-29T20:00:00Z");
        assert_eq!(w.config.muted_by(from), vec!["outside office".to_owned()]);
        let sends = w.run(&[event("disk", "a", None)], from, at("2026-03-30T07:30:00Z"));
        let times: Vec<i64> = sends.iter().map(|(t, _)| *t).collect();
        // 09:00 on Monday in Berlin is 07:00Z (it was 08:00Z the Friday before).
        assert_eq!(times, vec![at("2026-03-30T07:00:00Z")]);
        // 17:00 Berlin (15:00Z) closes the window again: the hourly repeat is held at 16:00Z.
        let sends = w.run(
            &[event("disk", "a", None)],
            at("2026-03-30T07:31:00Z"),
            at("2026-03-30T18:00:00Z"),
        );
        assert!(sends.iter().all(|(t, _)| *t < at("2026-03-30T15:00:00Z")), "{sends:?}");
        assert!(!sends.is_empty(), "repeats within the window");
    }

    #[test]
    fn unknown_interval_names_are_refused() {
        let mut c = config();
        c.route.mute_time_intervals = vec!["nights".into()];
        let e = c.validate().unwrap_err().to_string();
        assert!(e.contains("mute_time_intervals: \"nights\" is not defined"), "{e}");
    }

    /// A model check: whatever the sequence of rounds, the receiver never hears of a
    /// resolution it was not told was firing, and never twice in one flush.
    mod model {
        use super::*;
        use proptest::prelude::*;

        proptest! {
            #[test]
            fn resolutions_follow_firing(steps in proptest::collection::vec((0u8..4, 0u8..3), 1..60)) {
                let mut w = World::new(config());
                let mut told_firing = std::collections::BTreeSet::new();
                for (i, (host, what)) in steps.iter().enumerate() {
                    let t = i as i64 * 60;
                    let e = event("disk", &host.to_string(), None);
                    let events = match what {
                        0 => vec![e],
                        1 => vec![resolved(e, t)],
                        _ => vec![],
                    };
                    for n in w.round(&events, t) {
                        for a in &n.alerts {
                            let fp = a.fingerprint();
                            if a.is_active() {
                                told_firing.insert(fp);
                            } else {
                                prop_assert!(told_firing.remove(&fp), "resolved {fp} never told firing");
                            }
                        }
                    }
                }
            }
        }
    }
}
