//! HTTP and TCP checks against local servers on 127.0.0.1:0, alone and as rules in the engine.

use std::io::{BufRead, BufReader, Write};
use std::net::TcpListener;
use std::path::Path;
use std::sync::mpsc;
use std::thread;

use alert::checks;
use alert::engine::Engine;
use alert::model::{Severity, Status};
use alert::rules::{RuleKind, parse};
use alert::source::Sources;

/// A one-request-per-connection HTTP server answering `status` and `body`; sends each request's
/// head (request line and headers) to the returned channel. Serves `n` connections, then stops.
fn serve(status: u16, body: &'static str, n: usize) -> (String, mpsc::Receiver<String>) {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    let (tx, rx) = mpsc::channel();
    thread::spawn(move || {
        for stream in listener.incoming().take(n) {
            let Ok(mut stream) = stream else { continue };
            let mut reader = BufReader::new(stream.try_clone().unwrap());
            let mut head = String::new();
            for _ in 0..100 {
                let mut line = String::new();
                if reader.read_line(&mut line).unwrap_or(0) == 0 || line == "\r\n" {
                    break;
                }
                head.push_str(&line);
            }
            let _ = tx.send(head);
            let _ = write!(
                stream,
                "HTTP/1.1 {status} X\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
                body.len()
            );
        }
    });
    (format!("http://{addr}"), rx)
}

fn http_rule(extra: &str, url: &str) -> alert::rules::HttpCheck {
    let timeout = if extra.contains("timeout") { "" } else { "timeout = \"2s\"\n" };
    let text = format!(
        "[[rule]]\nname = \"h\"\nkind = \"http\"\nurl = \"{url}/health\"\n{timeout}{extra}"
    );
    match parse(&text, Path::new("c.toml")).unwrap().rules.remove(0).kind {
        RuleKind::Http(h) => h,
        _ => unreachable!(),
    }
}

#[test]
fn http_status_body_and_basic_auth() {
    let (url, rx) = serve(200, "status: healthy", 4);
    let ok = checks::http(&http_rule(
        "body = \"healthy\"\nusername = \"ops\"\npassword = \"s3cret\"\n",
        &url,
    ));
    assert!(ok.ok, "{ok:?}");
    let head = rx.recv().unwrap();
    assert!(head.starts_with("GET /health HTTP/1.1"), "{head}");
    assert!(head.contains("Basic b3BzOnMzY3JldA=="), "{head}");
    let bad_body = checks::http(&http_rule("body = \"^ok$\"\n", &url));
    assert!(!bad_body.ok && bad_body.detail.contains("does not match"), "{bad_body:?}");
    let wrong_status = checks::http(&http_rule("status = [204]\n", &url));
    assert!(!wrong_status.ok && wrong_status.detail.contains("HTTP 200"), "{wrong_status:?}");
    let listed = checks::http(&http_rule("status = [200, 204]\n", &url));
    assert!(listed.ok);
}

#[test]
fn http_error_statuses_fail_unless_listed() {
    let (url, _rx) = serve(503, "down", 2);
    assert!(!checks::http(&http_rule("", &url)).ok);
    assert!(checks::http(&http_rule("status = [503]\n", &url)).ok);
}

#[test]
fn http_timeout_and_refused() {
    // Accepts and never answers: the check gives up at its timeout.
    let silent = TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}", silent.local_addr().unwrap());
    let out = checks::http(&http_rule("timeout = \"1s\"\n", &url));
    assert!(!out.ok, "{out:?}");
    drop(silent);
    let closed = {
        let l = TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap()
    };
    let out = checks::http(&http_rule("", &format!("http://{closed}")));
    assert!(!out.ok && out.detail.contains("request failed"), "{out:?}");
}

#[test]
fn https_to_a_plain_server_fails_with_or_without_verification() {
    let (url, _rx) = serve(200, "ok", 2);
    let https = url.replacen("http://", "https://", 1);
    assert!(!checks::http(&http_rule("", &https)).ok);
    let h = http_rule("tls_verify = false\n", &https);
    assert!(!h.tls_verify);
    assert!(!checks::http(&h).ok, "no TLS at all still fails");
}

#[test]
fn tcp_connect() {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    let check = alert::rules::TcpCheck { address: addr.to_string(), timeout: 2 };
    let ok = checks::tcp(&check);
    assert!(ok.ok, "{ok:?}");
    drop(listener);
    let out = checks::tcp(&check);
    assert!(!out.ok, "{out:?}");
    let out = checks::tcp(&alert::rules::TcpCheck {
        address: "no-such-host.invalid:1".into(),
        timeout: 1,
    });
    assert!(!out.ok);
}

#[test]
fn checks_are_rules_with_the_same_state_machine() {
    let (url, _rx) = serve(500, "", 8);
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let text = format!(
        "[[rule]]\nname = \"web\"\nkind = \"http\"\nurl = \"{url}/\"\nfor = \"1m\"\nseverity = \"warning\"\n\
         annotations = {{ summary = \"{{instance}} failed in {{value}} ms\" }}\n\n\
         [[rule]]\nname = \"db\"\nkind = \"tcp\"\naddress = \"{}\"\n",
        listener.local_addr().unwrap()
    );
    let rules = parse(&text, Path::new("c.toml")).unwrap();
    let mut e = Engine::new(rules, Sources::remote_only(), None).unwrap();
    assert!(e.evaluate_round(0).is_empty(), "pending first");
    let ev = e.evaluate_round(60);
    assert_eq!(ev.len(), 1);
    assert_eq!((ev[0].status, ev[0].severity), (Status::Firing, Some(Severity::Warning)));
    assert_eq!(ev[0].labels["instance"], format!("{url}/"));
    assert!(ev[0].annotations["detail"].contains("HTTP 500"));
    assert!(ev[0].annotations["summary"].contains("failed in"));
    assert!(ev[0].value.is_some_and(|v| v >= 0.0), "latency is the value");
    let db = e.instances().into_iter().find(|i| i.rule == "db").unwrap();
    assert_eq!(db.status, Status::Normal);
}
