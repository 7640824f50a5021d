//! Notifications end to end: a real dispatcher with its delivery threads, a webhook receiver
//! and an SMTP sink started here on 127.0.0.1:0, commands run for real. The dispatcher's
//! clock is passed in (rounds at explicit times), so only the deliveries themselves take
//! real time, and each wait is bounded.

mod sinks;

use std::time::Duration;

use alert::ack::AckTarget;
use alert::model::Severity;
use alert::notify::NotifyConfig;
use alert::silence::{Matcher, NewSilence};
use alert::{AckRequest, Dispatcher};
use sinks::*;

fn dispatcher(text: &str) -> Dispatcher {
    let config: NotifyConfig = toml::from_str(text).unwrap();
    Dispatcher::new(config).unwrap()
}

fn hook_config(sink: &WebhookSink, route: &str) -> String {
    format!(
        r#"
        [[receiver]]
        name = "ops"
        type = "webhook"
        url = "{}"
        headers = {{ Authorization = "Bearer t0ken" }}

        [route]
        receiver = "ops"
        group_by = ["alertname"]
        group_wait = "0s"
        group_interval = "5m"
        repeat_interval = "1h"
        external_url = "http://alerts.test/"
        retry_initial = "20ms"
        retry_max = "100ms"
        {route}
        "#,
        sink.url("/hook")
    )
}

#[test]
fn webhook_receives_alertmanager_v4_json() {
    let sink = WebhookSink::start();
    let d = dispatcher(&hook_config(&sink, ""));
    let a = firing("disk_full", "web01", Severity::Critical, 97.5);
    d.ingest(std::slice::from_ref(&a), T0);
    assert_eq!(d.tick(T0), 1);
    let hooks = sink.wait_for(1);
    assert_eq!(hooks[0].path, "/hook");
    assert!(hooks[0].headers.contains(&("authorization".into(), "Bearer t0ken".into())));
    assert!(hooks[0].headers.contains(&("content-type".into(), "application/json".into())));
    let expected = serde_json::json!({
        "receiver": "ops",
        "status": "firing",
        "alerts": [{
            "status": "firing",
            "labels": {"alertname": "disk_full", "host": "web01", "severity": "critical"},
            "annotations": {"summary": "web01: disk_full at 97.5"},
            "startsAt": "2023-11-14T22:13:20Z",
            "endsAt": "0001-01-01T00:00:00Z",
            "generatorURL": "http://graphite.test/render?target=servers.web01.disk_full",
            "fingerprint": a.fingerprint(),
        }],
        "groupLabels": {"alertname": "disk_full"},
        "commonLabels": {"alertname": "disk_full", "host": "web01", "severity": "critical"},
        "commonAnnotations": {"summary": "web01: disk_full at 97.5"},
        "externalURL": "http://alerts.test/",
        "version": "4",
        "groupKey": "ops:{alertname=\"disk_full\"}",
        "truncatedAlerts": 0,
    });
    assert_eq!(hooks[0].body, expected);
    d.shutdown(Duration::from_secs(5));
}

#[test]
fn webhook_groups_repeats_and_resolves() {
    let sink = WebhookSink::start();
    let d = dispatcher(&hook_config(&sink, ""));
    let a = firing("disk_full", "web01", Severity::Warning, 91.0);
    let b = firing("disk_full", "web02", Severity::Warning, 92.0);
    let c = firing("load_high", "web01", Severity::Critical, 30.0);
    d.ingest(&[a.clone(), b.clone(), c.clone()], T0);
    assert_eq!(d.tick(T0), 2, "two groups: disk_full and load_high");
    let hooks = sink.wait_for(2);
    let disk = hooks.iter().find(|h| h.body["groupLabels"]["alertname"] == "disk_full").unwrap();
    assert_eq!(disk.body["alerts"].as_array().unwrap().len(), 2);
    assert_eq!(
        disk.body["commonLabels"],
        serde_json::json!({"alertname": "disk_full", "severity": "warning"})
    );

    // Every round re-reports; nothing is sent again until the repeat interval.
    for t in (60..3600).step_by(60) {
        d.ingest(&[a.clone(), b.clone(), c.clone()], T0 + t);
        assert_eq!(d.tick(T0 + t), 0, "at +{t}s");
    }
    d.ingest(&[a.clone(), b.clone(), c.clone()], T0 + 3600);
    assert_eq!(d.tick(T0 + 3600), 2, "repeat_interval 1h");
    sink.wait_for(4);

    // web02 resolves: told at the group's next flush (group_interval), with web01 firing.
    d.ingest(&[a.clone(), resolved(b.clone(), T0 + 3650), c.clone()], T0 + 3660);
    assert_eq!(d.tick(T0 + 3660), 0);
    d.ingest(&[a.clone(), c.clone()], T0 + 3900);
    assert_eq!(d.tick(T0 + 3900), 1);
    let hooks = sink.wait_for(5);
    let last = &hooks[4].body;
    assert_eq!(last["status"], "firing");
    let statuses: Vec<(&str, &str)> = last["alerts"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| (a["labels"]["host"].as_str().unwrap(), a["status"].as_str().unwrap()))
        .collect();
    assert_eq!(statuses, vec![("web01", "firing"), ("web02", "resolved")]);
    assert_eq!(last["alerts"][1]["endsAt"], "2023-11-14T23:14:10Z");

    // Everything resolves: one last "resolved" message per group.
    d.ingest(&[resolved(a, T0 + 4000), resolved(c, T0 + 4000)], T0 + 4000);
    d.tick(T0 + 4200);
    let hooks = sink.wait_for(7);
    assert!(hooks[5..].iter().all(|h| h.body["status"] == "resolved"), "{hooks:?}");
    d.shutdown(Duration::from_secs(5));
}

#[test]
fn a_silence_suppresses_and_its_end_notifies() {
    let sink = WebhookSink::start();
    let d = dispatcher(&hook_config(&sink, ""));
    let silence = d
        .add_silence(
            NewSilence {
                matchers: vec![Matcher::parse("host=~web0[12]").unwrap()],
                starts_at: None,
                ends_at: T0 + 600,
                created_by: "ops".into(),
                comment: "maintenance".into(),
            },
            T0,
        )
        .unwrap();
    let a = firing("disk_full", "web01", Severity::Critical, 99.0);
    for t in (0..600).step_by(60) {
        d.ingest(std::slice::from_ref(&a), T0 + t);
        assert_eq!(d.tick(T0 + t), 0);
    }
    assert_eq!(d.silences()[0].id, silence.id);
    // The silence ends while the alert still fires: it is news at the next flush.
    let mut sent = 0;
    for t in (600..1300).step_by(60) {
        d.ingest(std::slice::from_ref(&a), T0 + t);
        sent += d.tick(T0 + t);
    }
    assert_eq!(sent, 1);
    assert_eq!(sink.wait_for(1)[0].body["alerts"][0]["labels"]["host"], "web01");
    d.shutdown(Duration::from_secs(5));
}

fn escalation_config(sink: &WebhookSink) -> String {
    format!(
        r#"
        [[receiver]]
        name = "ops"
        type = "webhook"
        url = "{}"
        escalate_after = "15m"
        escalate_to = "phone"

        [[receiver]]
        name = "phone"
        type = "webhook"
        url = "{}"

        [route]
        receiver = "ops"
        group_by = ["alertname"]
        group_wait = "0s"
        repeat_interval = "4h"
        "#,
        sink.url("/ops"),
        sink.url("/phone")
    )
}

#[test]
fn escalates_after_the_delay_when_unacknowledged() {
    let sink = WebhookSink::start();
    let d = dispatcher(&escalation_config(&sink));
    let a = firing("disk_full", "web01", Severity::Critical, 99.0);
    for t in (0..=1200).step_by(60) {
        d.ingest(std::slice::from_ref(&a), T0 + t);
        d.tick(T0 + t);
    }
    // Two threads deliver: the order of arrival is theirs.
    let mut hooks = sink.wait_for(2);
    hooks.sort_by(|a, b| a.path.cmp(&b.path));
    let paths: Vec<&str> = hooks.iter().map(|h| h.path.as_str()).collect();
    assert_eq!(paths, vec!["/ops", "/phone"]);
    assert_eq!(hooks[1].body["receiver"], "phone");
    let escalated = d.recent().into_iter().find(|r| r.escalation).unwrap();
    assert_eq!(escalated.at, T0 + 900);
    d.shutdown(Duration::from_secs(5));
}

#[test]
fn an_ack_stops_escalation_and_repeats_until_it_gets_worse() {
    let sink = WebhookSink::start();
    let d = dispatcher(&escalation_config(&sink));
    let a = firing("disk_full", "web01", Severity::Warning, 91.0);
    d.ingest(std::slice::from_ref(&a), T0);
    d.tick(T0);
    sink.wait_for(1);
    let ack = d
        .ack(
            AckRequest {
                target: AckTarget::Fingerprint(a.fingerprint()),
                by: "alice".into(),
                comment: "on it".into(),
                expires_in: Some(alert::notify::HumanDuration::from_secs(6 * 3600)),
            },
            T0 + 60,
        )
        .unwrap();
    assert_eq!(ack.severity, Some(Severity::Warning));
    for t in (60..5 * 3600).step_by(60) {
        d.ingest(std::slice::from_ref(&a), T0 + t);
        assert_eq!(d.tick(T0 + t), 0, "acknowledged: no repeat, no escalation (+{t}s)");
    }
    // Worse: critical now. Told at once, and the ack no longer covers it; the group has
    // been told for longer than escalate_after, so it escalates in the same tick.
    let worse = firing("disk_full", "web01", Severity::Critical, 99.0);
    d.ingest(std::slice::from_ref(&worse), T0 + 5 * 3600);
    assert_eq!(d.tick(T0 + 5 * 3600), 2);
    let mut hooks = sink.wait_for(3);
    hooks.sort_by(|a, b| a.path.cmp(&b.path));
    assert_eq!(hooks[0].path, "/ops");
    assert_eq!(hooks[1].path, "/ops");
    assert_eq!(hooks[2].path, "/phone");
    assert!(hooks[1..].iter().all(|h| h.body["alerts"][0]["labels"]["severity"] == "critical"));
    // Unknown targets are refused.
    let err = d
        .ack(
            AckRequest {
                target: AckTarget::Fingerprint("0000".into()),
                by: String::new(),
                comment: String::new(),
                expires_in: None,
            },
            T0,
        )
        .unwrap_err();
    assert!(err.to_string().contains("no active alert"), "{err}");
    d.shutdown(Duration::from_secs(5));
}

#[test]
fn a_webhook_that_was_down_gets_the_retry() {
    let sink = WebhookSink::start();
    sink.fail_first.store(2, std::sync::atomic::Ordering::SeqCst);
    let d = dispatcher(&hook_config(&sink, ""));
    d.ingest(&[firing("disk_full", "web01", Severity::Critical, 99.0)], T0);
    d.tick(T0);
    let hooks = sink.wait_for(1);
    assert_eq!(hooks.len(), 1);
    assert_eq!(sink.requests.load(std::sync::atomic::Ordering::SeqCst), 3);
    let status = wait_for_status(&d, "ops", |r| r.sent == 1);
    assert_eq!((status.failed_attempts, status.retries, status.given_up), (2, 2, 0));
    assert!(status.last_error.unwrap().contains("503"));
    d.shutdown(Duration::from_secs(5));
}

fn wait_for_status(
    d: &Dispatcher,
    name: &str,
    done: impl Fn(&alert::ReceiverStatus) -> bool,
) -> alert::ReceiverStatus {
    let find = || d.receivers().into_iter().find(|r| r.name == name).unwrap();
    wait_until(|| done(&find()));
    find()
}

#[test]
fn email_goes_through_smtp() {
    let smtp = SmtpSink::start();
    let d = dispatcher(&format!(
        r#"
        [[receiver]]
        name = "mail"
        type = "email"
        smtp_host = "127.0.0.1"
        smtp_port = {}
        tls = "none"
        from = "Alerts <alerts@example.com>"
        to = ["ops@example.com", "dba@example.com"]
        subject = "[{{{{status|upper}}}}] {{{{labels.alertname}}}} on {{{{labels.host}}}}"

        [route]
        receiver = "mail"
        group_wait = "0s"
        "#,
        smtp.addr.port()
    ));
    d.ingest(&[firing("disk_full", "web01", Severity::Critical, 97.5)], T0);
    d.tick(T0);
    let mails = smtp.wait_for(1);
    let m = &mails[0];
    assert_eq!(m.from, "<alerts@example.com>");
    assert_eq!(m.to, vec!["<ops@example.com>", "<dba@example.com>"]);
    assert!(m.data.contains("Subject: [FIRING] disk_full on web01\r\n"), "{}", m.data);
    assert!(m.data.contains("To: ops@example.com, dba@example.com"), "{}", m.data);
    assert!(m.data.contains("web01: disk_full at 97.5"), "{}", m.data);
    assert!(
        m.data.contains("http://graphite.test/render?target=servers.web01.disk_full"),
        "{}",
        m.data
    );
    d.shutdown(Duration::from_secs(5));
}

#[test]
fn a_dead_smtp_server_is_retried_counted_and_blocks_nobody() {
    let sink = WebhookSink::start();
    let d = dispatcher(&format!(
        r#"
        [[receiver]]
        name = "mail"
        type = "email"
        smtp_host = "127.0.0.1"
        smtp_port = {}
        tls = "none"
        timeout = "2s"
        from = "alerts@example.com"
        to = ["ops@example.com"]

        [[receiver]]
        name = "hook"
        type = "webhook"
        url = "{}"

        [route]
        group_wait = "0s"
        max_attempts = 3
        retry_initial = "20ms"
        "#,
        closed_port(),
        sink.url("/hook")
    ));
    let mut a = firing("disk_full", "web01", Severity::Critical, 97.5);
    a.receivers = vec!["mail".into(), "hook".into()];
    d.ingest(std::slice::from_ref(&a), T0);
    assert_eq!(d.tick(T0), 2);
    assert_eq!(sink.wait_for(1).len(), 1, "the webhook is not held up by the mail");
    let mail = wait_for_status(&d, "mail", |r| r.given_up == 1);
    assert_eq!((mail.sent, mail.failed_attempts, mail.retries, mail.given_up), (0, 3, 2, 1));
    assert!(mail.last_error.is_some());
    // Given up: the group is untold, so the next flush tries the mail again.
    d.ingest(std::slice::from_ref(&a), T0 + 300);
    assert_eq!(d.tick(T0 + 300), 1);
    d.shutdown(Duration::from_secs(5));
}

#[test]
fn a_command_gets_json_on_stdin_and_alert_variables() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("out");
    let d = dispatcher(&format!(
        r#"
        [[receiver]]
        name = "page"
        type = "command"
        command = ["sh", "-c", "cat > '{0}.json'; env | grep '^ALERT_' | sort > '{0}.env'"]

        [route]
        receiver = "page"
        group_wait = "0s"
        "#,
        out.display()
    ));
    d.ingest(&[firing("disk_full", "web01", Severity::Critical, 97.5)], T0);
    d.tick(T0);
    wait_for_status(&d, "page", |r| r.sent == 1);
    let json: serde_json::Value =
        serde_json::from_slice(&std::fs::read(out.with_extension("json")).unwrap()).unwrap();
    assert_eq!(json["version"], "4");
    assert_eq!(json["alerts"][0]["labels"]["host"], "web01");
    let env = std::fs::read_to_string(out.with_extension("env")).unwrap();
    for line in [
        "ALERT_STATUS=firing",
        "ALERT_NAME=disk_full",
        "ALERT_SEVERITY=critical",
        "ALERT_LABEL_HOST=web01",
        "ALERT_COUNT=1",
        "ALERT_RECEIVER=page",
    ] {
        assert!(env.lines().any(|l| l == line), "{line} missing from\n{env}");
    }
    d.shutdown(Duration::from_secs(5));
}

#[test]
fn a_hanging_or_failing_command_is_killed_and_counted() {
    let d = dispatcher(
        r#"
        [[receiver]]
        name = "slow"
        type = "command"
        command = ["sleep", "30"]
        timeout = "200ms"

        [[receiver]]
        name = "bad"
        type = "command"
        command = ["sh", "-c", "echo nope >&2; exit 3"]

        [route]
        group_wait = "0s"
        max_attempts = 1
        "#,
    );
    let mut a = firing("disk_full", "web01", Severity::Critical, 97.5);
    a.receivers = vec!["slow".into(), "bad".into()];
    d.ingest(&[a], T0);
    d.tick(T0);
    let slow = wait_for_status(&d, "slow", |r| r.given_up == 1);
    assert!(slow.last_error.unwrap().contains("killed"));
    let bad = wait_for_status(&d, "bad", |r| r.given_up == 1);
    let err = bad.last_error.unwrap();
    assert!(err.contains("exit status: 3") && err.contains("nope"), "{err}");
    d.shutdown(Duration::from_secs(5));
}

#[test]
fn restart_neither_resends_nor_forgets() {
    let sink = WebhookSink::start();
    let config = hook_config(&sink, "");
    let a = firing("disk_full", "web01", Severity::Critical, 99.0);
    let saved = {
        let d = dispatcher(&config);
        d.ingest(std::slice::from_ref(&a), T0);
        d.tick(T0);
        sink.wait_for(1);
        d.add_silence(
            NewSilence {
                matchers: vec![Matcher::parse("alertname=other").unwrap()],
                starts_at: None,
                ends_at: T0 + 86_400,
                created_by: "ops".into(),
                comment: String::new(),
            },
            T0,
        )
        .unwrap();
        d.shutdown(Duration::from_secs(5));
        // Through text, as the state file stores it.
        serde_json::to_string(&d.snapshot()).unwrap()
    };
    let d = dispatcher(&config);
    d.restore(&serde_json::from_str(&saved).unwrap()).unwrap();
    assert_eq!(d.silences().len(), 1);
    for t in (60..3600).step_by(60) {
        d.ingest(std::slice::from_ref(&a), T0 + t);
        assert_eq!(d.tick(T0 + t), 0, "no re-send after restart (+{t}s)");
    }
    d.ingest(std::slice::from_ref(&a), T0 + 3600);
    assert_eq!(d.tick(T0 + 3600), 1, "but the repeat comes on time");
    d.shutdown(Duration::from_secs(5));
}

#[test]
fn a_body_template_replaces_the_json() {
    let sink = WebhookSink::start();
    let d = dispatcher(&format!(
        r#"
        [[receiver]]
        name = "chat"
        type = "webhook"
        url = "{}"
        body = '{{"text": {{{{annotations.summary | json}}}}, "n": {{{{count}}}}}}'

        [route]
        receiver = "chat"
        group_wait = "0s"
        "#,
        sink.url("/chat")
    ));
    d.ingest(&[firing("disk_full", "web\"01", Severity::Critical, 97.5)], T0);
    d.tick(T0);
    let hooks = sink.wait_for(1);
    assert_eq!(hooks[0].body, serde_json::json!({"text": "web\"01: disk_full at 97.5", "n": 1}));
    d.shutdown(Duration::from_secs(5));
}

#[test]
fn an_inhibited_alert_is_told_only_once_its_source_resolves() {
    let sink = WebhookSink::start();
    let d = dispatcher(&format!(
        r#"{}
        [[inhibit]]
        source_match = {{ severity = "critical" }}
        target_match = {{ severity = "warning" }}
        equal = ["dc"]

        # Every dc_down alert is a source and a target: none may inhibit itself.
        [[inhibit]]
        source_match = {{ alertname = "dc_down" }}
        target_match = {{ alertname = "dc_down" }}
        "#,
        hook_config(&sink, "").replace(r#"group_by = ["alertname"]"#, r#"group_by = ["..."]"#)
    ));
    let in_dc = |mut e: alert::model::AlertEvent, dc: &str| {
        e.labels.insert("dc".into(), dc.into());
        e
    };
    let source = in_dc(firing("dc_down", "core1", Severity::Critical, 1.0), "ams");
    let target = in_dc(firing("disk_full", "web01", Severity::Warning, 91.0), "ams");
    let elsewhere = in_dc(firing("disk_full", "web02", Severity::Warning, 92.0), "fra");
    let all = [source.clone(), target.clone(), elsewhere.clone()];
    d.ingest(&all, T0);
    assert_eq!(d.tick(T0), 2, "the source and the alert in another dc; not web01");
    let hooks = sink.wait_for(2);
    let mut told: Vec<&str> =
        hooks.iter().map(|h| h.body["alerts"][0]["labels"]["host"].as_str().unwrap()).collect();
    told.sort_unstable();
    assert_eq!(told, vec!["core1", "web02"]);
    let marks = d.marks(&target.labels, target.severity, T0);
    assert_eq!(marks.inhibited_by, vec![source.fingerprint()]);
    assert!(d.marks(&elsewhere.labels, elsewhere.severity, T0).inhibited_by.is_empty());
    assert!(d.marks(&source.labels, source.severity, T0).inhibited_by.is_empty());

    // Still inhibited at the next flush; then the source resolves and web01 is news.
    d.ingest(&all, T0 + 300);
    assert_eq!(d.tick(T0 + 300), 0);
    d.ingest(&[resolved(source.clone(), T0 + 330), target.clone(), elsewhere.clone()], T0 + 360);
    assert!(d.marks(&target.labels, target.severity, T0 + 360).inhibited_by.is_empty());
    assert_eq!(d.tick(T0 + 600), 2, "web01 firing, core1 resolved");
    let hooks = sink.wait_for(4);
    let web01 = hooks[2..].iter().find(|h| h.body["alerts"][0]["labels"]["host"] == "web01");
    assert_eq!(web01.map(|h| h.body["status"].clone()), Some("firing".into()), "{hooks:?}");
    d.shutdown(Duration::from_secs(5));
}
