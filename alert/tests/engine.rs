//! The engine end to end over its real sources: in-process render over a MemorySource and a
//! remote render API served by a local HTTP server; views and history.

use std::io::{BufRead, BufReader, Write};
use std::net::TcpListener;
use std::path::Path;
use std::sync::Arc;
use std::sync::mpsc;
use std::thread;

use alert::engine::Engine;
use alert::model::Status;
use alert::source::{RemoteSource, Source, SourceError, Sources};

/// Serves `answers` in order, one per connection; sends each request line to the channel.
fn serve(answers: Vec<(u16, String)>) -> (String, mpsc::Receiver<String>) {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    let (tx, rx) = mpsc::channel();
    thread::spawn(move || {
        for (stream, (status, body)) in listener.incoming().zip(answers) {
            let Ok(mut stream) = stream else { continue };
            let mut reader = BufReader::new(stream.try_clone().unwrap());
            let mut first = String::new();
            let _ = reader.read_line(&mut first);
            for _ in 0..100 {
                let mut line = String::new();
                if reader.read_line(&mut line).unwrap_or(0) == 0 || line == "\r\n" {
                    break;
                }
            }
            let _ = tx.send(first);
            let _ = write!(
                stream,
                "HTTP/1.1 {status} X\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
                body.len()
            );
        }
    });
    (format!("http://{addr}"), rx)
}

#[test]
fn remote_source_reads_render_json_and_keeps_errors_distinct() {
    let json = r#"[{"target":"servers.a.cpu","tags":{"name":"servers.a.cpu"},"datapoints":[[91,540],[null,600]]}]"#;
    let (url, rx) = serve(vec![
        (200, json.to_owned()),
        (200, "[]".to_owned()),
        (500, "oops".to_owned()),
        (200, "<html>".to_owned()),
    ]);
    let src = RemoteSource::new(&url, std::time::Duration::from_secs(5));
    let s = src.query("servers.*.cpu", 300, 600, 660).unwrap();
    assert_eq!(s[0].values, vec![Some(91.0), None]);
    let line = rx.recv().unwrap();
    assert!(
        line.starts_with("GET /render?target=servers.*.cpu&format=json&from=300&until=600 "),
        "{line}"
    );
    assert!(src.query("x", 0, 60, 60).unwrap().is_empty(), "no data is not an error");
    assert!(matches!(src.query("x", 0, 60, 60), Err(SourceError::Status { status: 500, .. })));
    assert!(matches!(src.query("x", 0, 60, 60), Err(SourceError::BadResponse { .. })));
}

#[test]
fn rules_with_a_remote_source_fire_through_the_engine() {
    let json = r#"[{"target":"servers.a.cpu","datapoints":[[91,540]]}]"#.to_owned();
    let (url, _rx) = serve(vec![(200, json.clone()), (200, json)]);
    let text = format!(
        "[defaults]\nsource = \"{url}\"\n\n[[rule]]\nname = \"cpu\"\ntarget = \"servers.*.cpu\"\nop = \">\"\nwarn = 80\n"
    );
    let rules = alert::rules::parse(&text, Path::new("r.toml")).unwrap();
    let mut e = Engine::new(rules, Sources::remote_only(), None).unwrap();
    let ev = e.evaluate_round(660);
    assert_eq!(ev.len(), 1);
    assert_eq!(ev[0].status, Status::Firing);
    assert!(
        ev[0].generator_url.starts_with(&format!("{url}/render?target=servers.*.cpu")),
        "{}",
        ev[0].generator_url
    );
}

#[test]
fn local_rules_without_a_local_source_are_errors() {
    let text = "[[rule]]\nname = \"x\"\ntarget = \"a\"\nop = \">\"\nwarn = 1\n";
    let rules = alert::rules::parse(text, Path::new("r.toml")).unwrap();
    let mut e = Engine::new(rules, Sources::remote_only(), None).unwrap();
    let ev = e.evaluate_round(0);
    assert_eq!(ev[0].status, Status::Error);
    assert!(e.rules_view()[0].last_error.as_deref().unwrap().contains("no local data source"));
}

#[test]
fn in_process_evaluation_with_functions_views_and_history() {
    let mut m = render::MemorySource::new();
    m.insert("servers.web01.disk.free", 0, 60, vec![Some(8.0); 30]);
    m.insert("servers.web01.disk.total", 0, 60, vec![Some(100.0); 30]);
    m.insert("cpu;host=db01;dc=ams", 0, 60, vec![Some(97.0); 30]);
    let text = r#"
[[rule]]
name = "disk_pct"
target = "asPercent(servers.web01.disk.free, servers.web01.disk.total)"
op = "<"
warn = 10
annotations = { summary = "{value}% free" }

[[rule]]
name = "cpu_tagged"
target = "seriesByTag('name=cpu')"
op = ">"
crit = 95
labels = { team = "db" }
"#;
    let rules = alert::rules::parse(text, Path::new("r.toml")).unwrap();
    let mut e = Engine::new(rules, Sources::local(Arc::new(m)), None).unwrap();
    let ev = e.evaluate_round(1200);
    assert_eq!(ev.len(), 2);
    assert_eq!(ev[0].annotations["summary"], "8% free");
    let tagged = &ev[1].labels;
    assert_eq!(
        (tagged["host"].as_str(), tagged["dc"].as_str(), tagged["team"].as_str()),
        ("db01", "ams", "db")
    );
    assert_eq!(tagged["alertname"], "cpu_tagged");
    let views = e.rules_view();
    assert_eq!(views[0].counts.get("firing"), Some(&1));
    assert_eq!(views[1].condition, "last > 95 (crit)");
    assert_eq!(e.history(1).len(), 1);
    assert_eq!(e.history(10).len(), 2);
    let json = serde_json::to_string(&e.instances()).unwrap();
    assert!(json.contains("\"status\":\"firing\""), "{json}");
}

#[test]
fn evaluate_once_uses_the_files_defaults_reports_errors_and_stores_nothing() {
    let mut m = render::MemorySource::new();
    m.insert(
        "servers.web01.load",
        0,
        60,
        vec![Some(1.0), Some(9.0), Some(2.0), Some(3.0), Some(4.0)],
    );
    // At 180 the 2-minute window ending 1 minute before now (the file's defaults) holds 9 and 2;
    // its `max` (also a default) is 9, where the built-in `last` would be 2.
    let text = "[defaults]\nwindow = \"2m\"\nlag = \"1m\"\nreduce = \"max\"\n";
    let rules = alert::rules::parse(text, Path::new("r.toml")).unwrap();
    let e = Engine::new(rules, Sources::local(Arc::new(m)), None).unwrap();
    let ctx = e.eval_context();
    let table: toml::Table =
        toml::from_str("target = \"servers.*.load\"\nop = \">\"\nwarn = 5").unwrap();
    let rule = alert::rules::parse_rule(&ctx.defaults, table, "eval").unwrap();
    let report = alert::engine::evaluate_once(&ctx, rule, 180);
    assert_eq!(report.error, None);
    assert_eq!(report.instances.len(), 1);
    assert_eq!(
        (report.instances[0].status, report.instances[0].value),
        (Status::Firing, Some(9.0))
    );
    assert!(e.instances().is_empty(), "nothing stored");
    // A failed query is an answer, not an error: the error status (pending, for `for`) and
    // the message. Here the engine has no local data source.
    let none = Engine::new(
        alert::rules::parse("", Path::new("r.toml")).unwrap(),
        Sources::remote_only(),
        None,
    )
    .unwrap();
    let ctx = none.eval_context();
    let table: toml::Table =
        toml::from_str("target = \"a.b\"\nop = \">\"\nwarn = 5\nfor = \"1m\"").unwrap();
    let rule = alert::rules::parse_rule(&ctx.defaults, table, "eval").unwrap();
    let report = alert::engine::evaluate_once(&ctx, rule, 180);
    assert!(
        report.error.as_deref().is_some_and(|e| e.contains("no local data source")),
        "{report:?}"
    );
    assert_eq!(report.instances[0].status, Status::Pending, "{report:?}");
}
