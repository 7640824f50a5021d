//! The HTTP collectors over `https`: a local rustls server with a self-signed certificate made
//! here (rcgen) for `localhost` and `127.0.0.1`, serving the same stub_status captures and JSON
//! as the plain HTTP tests; and Debian's nginx with `ssl` when it is installed.

use std::io::{Read, Write};
use std::net::TcpListener;
use std::path::PathBuf;
use std::sync::{Arc, mpsc};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use collect::apps::{AppError, HttpJsonCollector, NginxCollector};
use collect::{Collector, Env, Sample};
use rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer};

use super::{
    NGINX_FIRST_READ, NGINX_SECOND_READ, assert_metrics, by_name, ctx, dead_port, fixture,
    http_chunked, http_ok, opts, reference_binary,
};

/// A self-signed certificate and its key, in memory and as PEM files.
struct TestCert {
    der: CertificateDer<'static>,
    key_pkcs8: Vec<u8>,
    /// `cert.pem` and `key.pem`.
    dir: tempfile::TempDir,
}

impl TestCert {
    /// A self-signed end-entity certificate for `names`.
    fn new(names: &[&str]) -> TestCert {
        TestCert::make(names, false)
    }

    /// A self-signed certificate marked as a CA (basicConstraints CA:TRUE), as
    /// `openssl req -x509` makes them.
    fn new_ca_flagged(names: &[&str]) -> TestCert {
        TestCert::make(names, true)
    }

    fn make(names: &[&str], ca: bool) -> TestCert {
        let names: Vec<String> = names.iter().map(|n| (*n).to_owned()).collect();
        let mut params = rcgen::CertificateParams::new(names).unwrap();
        if ca {
            params.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
        }
        let key = rcgen::KeyPair::generate().unwrap();
        let cert = params.self_signed(&key).unwrap();
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("cert.pem"), cert.pem()).unwrap();
        std::fs::write(dir.path().join("key.pem"), key.serialize_pem()).unwrap();
        TestCert { der: cert.der().clone(), key_pkcs8: key.serialize_der(), dir }
    }

    fn cert_path(&self) -> PathBuf {
        self.dir.path().join("cert.pem")
    }

    fn ca_file(&self) -> String {
        self.cert_path().to_str().unwrap().to_owned()
    }
}

/// A one-thread HTTPS server on 127.0.0.1:0 answering each connection with the next response
/// (raw bytes), then exiting. Sends each request head it read. A connection whose handshake
/// fails (the client refused the certificate) uses up its response.
fn https_server(
    cert: &TestCert,
    responses: Vec<Vec<u8>>,
) -> (u16, mpsc::Receiver<String>, JoinHandle<()>) {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let config = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_no_client_auth()
        .with_single_cert(
            vec![cert.der.clone()],
            PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(cert.key_pkcs8.clone())),
        )
        .unwrap();
    let config = Arc::new(config);
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let (tx, rx) = mpsc::channel();
    let handle = std::thread::spawn(move || {
        for response in responses {
            let Ok((tcp, _)) = listener.accept() else { return };
            tcp.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
            let conn = rustls::ServerConnection::new(config.clone()).unwrap();
            let mut tls = rustls::StreamOwned::new(conn, tcp);
            let mut head = Vec::new();
            let mut buf = [0u8; 1024];
            while !head.windows(4).any(|w| w == b"\r\n\r\n") && head.len() < 65536 {
                match tls.read(&mut buf) {
                    Ok(0) | Err(_) => break,
                    Ok(n) => head.extend_from_slice(&buf[..n]),
                }
            }
            if head.is_empty() {
                continue; // the handshake failed
            }
            let _ = tx.send(String::from_utf8_lossy(&head).into_owned());
            let _ = tls.write_all(&response);
            tls.conn.send_close_notify();
            let _ = tls.flush();
        }
    });
    (port, rx, handle)
}

fn nginx(pairs: &[(&str, &str)]) -> NginxCollector {
    NginxCollector::new(&opts(pairs), &Env::default()).unwrap()
}

fn http_json(pairs: &[(&str, &str)]) -> HttpJsonCollector {
    HttpJsonCollector::new(&opts(pairs), &Env::default()).unwrap()
}

/// One run of `c`: its samples, or its error.
fn run(c: &mut dyn Collector) -> Result<Vec<Sample>, collect::Error> {
    let mut out = Vec::new();
    c.collect(&ctx(Instant::now(), 0), &mut out).map(|()| out)
}

/// The error of a run that must fail.
fn run_err(c: &mut dyn Collector) -> collect::Error {
    match run(c) {
        Ok(out) => panic!("expected an error, got {out:?}"),
        Err(e) => e,
    }
}

const JSON_DOC: &[u8] = br#"{"uptime": 3600, "healthy": true,
    "jvm": {"heap": {"used": 1.5e9}, "gc": [{"count": 12}]}, "name": "x"}"#;

const JSON_METRICS: [(&str, f64); 4] =
    [("uptime", 3600.0), ("healthy", 1.0), ("jvm.heap.used", 1.5e9), ("jvm.gc.0.count", 12.0)];

#[test]
fn nginx_over_https_with_ca_file_publishes_the_same_metrics() {
    let cert = TestCert::new(&["localhost", "127.0.0.1"]);
    let one = fixture("nginx-stub-status-1.txt");
    let two = fixture("nginx-stub-status-2.txt");
    let (port, heads, server) =
        https_server(&cert, vec![http_ok("text/plain", &one), http_chunked("text/plain", &two)]);
    let port_s = port.to_string();
    let ca = cert.ca_file();
    let mut c = nginx(&[
        ("req_host", "127.0.0.1"),
        ("req_port", &port_s),
        ("req_ssl", "True"),
        ("ca_file", &ca),
    ]);
    let t0 = Instant::now();
    let mut out = Vec::new();
    c.collect(&ctx(t0, 1_700_000_000), &mut out).unwrap();
    assert_metrics(&out, NGINX_FIRST_READ);
    let head = heads.recv().unwrap();
    assert!(head.starts_with("GET /nginx_status HTTP/1.1\r\n"), "{head}");
    assert!(head.contains(&format!("\r\nHost: 127.0.0.1:{port}\r\n")), "{head}");

    let mut out = Vec::new();
    c.collect(&ctx(t0 + Duration::from_secs(8), 1_700_000_008), &mut out).unwrap();
    assert_metrics(&out, NGINX_SECOND_READ);
    server.join().unwrap();
}

#[test]
fn http_json_over_https_with_ca_file_flattens_the_document() {
    // The certificate names `localhost`; the URL does too.
    let cert = TestCert::new(&["localhost"]);
    let (port, heads, server) = https_server(
        &cert,
        vec![http_ok("application/json", JSON_DOC), http_chunked("application/json", JSON_DOC)],
    );
    let url = format!("https://localhost:{port}/stats?pretty");
    let ca = cert.ca_file();
    let mut c = http_json(&[("url", &url), ("headers", "X-Token: abc"), ("ca_file", &ca)]);
    for _ in 0..2 {
        assert_metrics(&run(&mut c).unwrap(), &JSON_METRICS);
    }
    let head = heads.recv().unwrap();
    assert!(head.starts_with("GET /stats?pretty HTTP/1.1\r\n"), "{head}");
    assert!(head.contains("\r\nX-Token: abc\r\n"), "{head}");
    server.join().unwrap();
}

/// Asserts `e` is a failed TLS handshake whose certificate was refused.
fn assert_certificate_refused(e: &collect::Error, url: &str) {
    let text = e.to_string();
    match e {
        collect::Error::App(AppError::Tls { addr, handshake: true, source }) => {
            assert_eq!(addr, url);
            assert!(matches!(source, rustls::Error::InvalidCertificate(_)), "{source:?}");
        }
        other => panic!("expected a TLS handshake error, got {other:?}"),
    }
    assert!(text.starts_with(&format!("{url}: TLS handshake failed: ")), "{text}");
    assert!(text.contains("certificate"), "{text}");
    if let collect::Error::App(AppError::Tls {
        source: rustls::Error::InvalidCertificate(rustls::CertificateError::UnknownIssuer),
        ..
    }) = e
    {
        assert!(text.contains("set ca_file"), "{text}");
    }
}

#[test]
fn a_self_signed_certificate_is_refused_by_default() {
    let cert = TestCert::new(&["localhost", "127.0.0.1"]);
    let page = fixture("nginx-stub-status-1.txt");
    let (port, heads, server) = https_server(
        &cert,
        vec![http_ok("text/plain", &page), http_ok("application/json", JSON_DOC)],
    );
    let port_s = port.to_string();
    // The system's CA store (Debian's /etc/ssl/certs) does not know the test certificate.
    let mut n = nginx(&[("req_host", "127.0.0.1"), ("req_port", &port_s), ("req_ssl", "yes")]);
    let e = run_err(&mut n);
    assert_certificate_refused(&e, &format!("https://127.0.0.1:{port}/nginx_status"));
    let url = format!("https://127.0.0.1:{port}/");
    let mut j = http_json(&[("url", &url)]);
    assert_certificate_refused(&run_err(&mut j), &url);
    server.join().unwrap();
    assert!(heads.try_recv().is_err(), "no request may be sent after a refused handshake");
}

#[test]
fn tls_verify_false_accepts_a_self_signed_certificate() {
    // Even one for another name.
    let cert = TestCert::new(&["elsewhere.example"]);
    let page = fixture("nginx-stub-status-1.txt");
    let (port, _heads, server) = https_server(
        &cert,
        vec![http_ok("text/plain", &page), http_ok("application/json", JSON_DOC)],
    );
    let port_s = port.to_string();
    let mut n = nginx(&[
        ("req_host", "127.0.0.1"),
        ("req_port", &port_s),
        ("req_ssl", "True"),
        ("tls_verify", "False"),
    ]);
    assert_eq!(by_name(&run(&mut n).unwrap())["active_connections"], 1.0);
    let url = format!("https://127.0.0.1:{port}/");
    let mut j = http_json(&[("url", &url), ("tls_verify", "false")]);
    assert_metrics(&run(&mut j).unwrap(), &JSON_METRICS);
    server.join().unwrap();
}

#[test]
fn a_certificate_for_another_name_is_refused_even_with_its_ca_file() {
    let cert = TestCert::new(&["elsewhere.example"]);
    let (port, _heads, server) = https_server(&cert, vec![Vec::new()]);
    let url = format!("https://127.0.0.1:{port}/");
    let ca = cert.ca_file();
    let e = run_err(&mut http_json(&[("url", &url), ("ca_file", &ca)]));
    assert_certificate_refused(&e, &url);
    match e {
        collect::Error::App(AppError::Tls { source, .. }) => assert!(
            matches!(
                source,
                rustls::Error::InvalidCertificate(
                    rustls::CertificateError::NotValidForName
                        | rustls::CertificateError::NotValidForNameContext { .. }
                )
            ),
            "{source:?}"
        ),
        other => panic!("{other:?}"),
    }
    server.join().unwrap();
}

#[test]
fn a_ca_flagged_self_signed_certificate_in_ca_file_is_accepted_as_is() {
    // What `openssl req -x509` makes: webpki alone refuses it as a server's certificate.
    let cert = TestCert::new_ca_flagged(&["localhost", "127.0.0.1"]);
    let other = TestCert::new_ca_flagged(&["localhost", "127.0.0.1"]);
    let elsewhere = TestCert::new_ca_flagged(&["elsewhere.example"]);
    let (port, _heads, server) =
        https_server(&cert, vec![http_ok("application/json", JSON_DOC), Vec::new()]);
    let url = format!("https://127.0.0.1:{port}/");
    let ca = cert.ca_file();
    assert_metrics(
        &run(&mut http_json(&[("url", &url), ("ca_file", &ca)])).unwrap(),
        &JSON_METRICS,
    );
    // Another CA-flagged certificate in ca_file does not vouch for this one.
    let other_ca = other.ca_file();
    assert_certificate_refused(
        &run_err(&mut http_json(&[("url", &url), ("ca_file", &other_ca)])),
        &url,
    );
    server.join().unwrap();

    // The very certificate, but for another name: refused.
    let (port, _heads, server) = https_server(&elsewhere, vec![Vec::new()]);
    let url = format!("https://127.0.0.1:{port}/");
    let ca = elsewhere.ca_file();
    let e = run_err(&mut http_json(&[("url", &url), ("ca_file", &ca)]));
    assert_certificate_refused(&e, &url);
    assert!(e.to_string().contains("not valid for name"), "{e}");
    server.join().unwrap();
}

#[test]
fn https_timeouts_and_size_caps_are_those_of_http() {
    let cert = TestCert::new(&["127.0.0.1"]);
    let ca = cert.ca_file();

    // A server that accepts and never says a word: the handshake runs out of `timeout`.
    let silent = TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("https://127.0.0.1:{}/", silent.local_addr().unwrap().port());
    let mut c = http_json(&[("url", &url), ("ca_file", &ca), ("timeout", "0.3")]);
    let started = Instant::now();
    let e = run_err(&mut c);
    assert!(started.elapsed() < Duration::from_secs(3), "{:?}", started.elapsed());
    assert!(
        matches!(&e, collect::Error::App(AppError::Timeout { addr, timeout })
            if *addr == url && *timeout == Duration::from_millis(300)),
        "{e:?}"
    );
    drop(silent);

    // Nobody listening: the connect error, as for http.
    let url = format!("https://127.0.0.1:{}/", dead_port());
    let e = run_err(&mut http_json(&[("url", &url), ("ca_file", &ca)]));
    assert!(matches!(e, collect::Error::App(AppError::Connect { .. })), "{e:?}");

    // A head that never ends within 64 KiB: the same cap as over http.
    let mut endless = b"HTTP/1.1 200 OK\r\n".to_vec();
    while endless.len() <= 70 << 10 {
        endless
            .extend_from_slice(b"X-Padding: aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa\r\n");
    }
    let (port, _heads, server) = https_server(&cert, vec![endless]);
    let url = format!("https://127.0.0.1:{port}/");
    let e = run_err(&mut http_json(&[("url", &url), ("ca_file", &ca)]));
    assert!(
        matches!(&e, collect::Error::App(AppError::Protocol { what, .. })
            if what.contains("response head over")),
        "{e:?}"
    );
    server.join().unwrap();
}

#[test]
fn https_to_a_plain_http_server_is_a_tls_error() {
    // A plain HTTP answer to the ClientHello, written at once (the test's HTTP server would
    // wait for a request head that never comes).
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let server = std::thread::spawn(move || {
        let (mut conn, _) = listener.accept().unwrap();
        let _ = conn.write_all(&http_ok("text/plain", b"hello"));
        let _ = conn.shutdown(std::net::Shutdown::Write);
        let _ = conn.read(&mut [0u8; 4096]);
    });
    let url = format!("https://127.0.0.1:{port}/");
    let e = run_err(&mut http_json(&[("url", &url), ("tls_verify", "false")]));
    let text = e.to_string();
    assert!(
        matches!(&e, collect::Error::App(AppError::Tls { handshake: true, .. })),
        "{e:?}: {text}"
    );
    assert!(text.starts_with(&format!("{url}: TLS handshake failed")), "{text}");
    assert!(text.contains("plain http"), "{text}");
    server.join().unwrap();
}

#[test]
fn an_unusable_ca_file_is_refused_when_the_collector_is_built() {
    let dir = tempfile::tempdir().unwrap();
    let junk = dir.path().join("junk.pem");
    std::fs::write(&junk, "hello\n").unwrap();
    let missing = dir.path().join("missing.pem");
    for path in [&junk, &missing] {
        let p = path.to_str().unwrap();
        let o = opts(&[("url", "https://127.0.0.1:1/"), ("ca_file", p)]);
        let e = HttpJsonCollector::new(&o, &Env::default()).unwrap_err().to_string();
        assert!(e.contains("`ca_file`") && e.contains(p), "{e}");
        let o = opts(&[("req_ssl", "True"), ("ca_file", p)]);
        let e = NginxCollector::new(&o, &Env::default()).unwrap_err().to_string();
        assert!(e.contains("`ca_file`"), "{e}");
    }
    // Over http the TLS options are not read.
    let o = opts(&[("url", "http://127.0.0.1:1/"), ("ca_file", missing.to_str().unwrap())]);
    assert!(HttpJsonCollector::new(&o, &Env::default()).is_ok());
}

#[test]
fn nginx_collector_reads_a_real_nginx_over_https() {
    let Some(bin) = reference_binary("/usr/sbin/nginx", "nginx-light") else { return };
    // Marked as a CA, like the self-signed certificates `openssl req -x509` makes for nginx.
    let cert = TestCert::new_ca_flagged(&["localhost", "127.0.0.1"]);
    let dir = tempfile::tempdir().unwrap();
    let c = cert.dir.path().display();
    let (port, _server) = super::start_nginx(
        &bin,
        dir.path(),
        " ssl",
        &format!(
            "ssl_certificate {c}/cert.pem; ssl_certificate_key {c}/key.pem;\n\
             location /stats.json {{ default_type application/json;\n\
             return 200 '{{\"up\": 1, \"pool\": {{\"active\": 3, \"idle\": \"7\"}}}}'; }}"
        ),
    );
    let port_s = port.to_string();
    let ca = cert.ca_file();
    let mut n = nginx(&[
        ("req_host", "127.0.0.1"),
        ("req_port", &port_s),
        ("req_ssl", "True"),
        ("ca_file", &ca),
    ]);
    assert!(by_name(&run(&mut n).unwrap())["active_connections"] >= 1.0);
    std::thread::sleep(Duration::from_millis(20));
    let m = by_name(&run(&mut n).unwrap());
    let names: Vec<&str> = m.keys().map(String::as_str).collect();
    assert_eq!(names, super::NGINX_NAMES);
    assert!(m["conn_accepted"] > 0.0 && m["req_handled"] > 0.0, "{m:?}");

    let url = format!("https://localhost:{port}/stats.json");
    let mut j = http_json(&[("url", &url), ("ca_file", &ca)]);
    assert_metrics(&run(&mut j).unwrap(), &[("up", 1.0), ("pool.active", 3.0), ("pool.idle", 7.0)]);

    // Without the CA the real nginx's certificate is refused too.
    let mut j = http_json(&[("url", &url)]);
    assert_certificate_refused(&run_err(&mut j), &url);
}
