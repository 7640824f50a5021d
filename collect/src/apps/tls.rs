//! TLS for the HTTP client's `https` URLs: rustls on the `ring` provider, the same build the
//! workspace already links through `ureq` and `lettre`, driven over the client's own blocking
//! `TcpStream` so connect timeout, deadline and size cap stay the ones plain HTTP has.
//!
//! How the server is checked, from the collector's options:
//!
//! - by default, against the system's CA store, read once per process with
//!   `rustls-native-certs` (Debian's `/etc/ssl/certs`, or `SSL_CERT_FILE` / `SSL_CERT_DIR`),
//!   and the certificate must name the host connected to;
//! - `ca_file = "/path.pem"`: against the certificates in that PEM file only (a private CA, or a
//!   self-signed server certificate), read when the collector is built. A server presenting one
//!   of those certificates itself is accepted when its dates and name are right, even when it is
//!   marked as a CA: `openssl req -x509` marks its self-signed certificates so, and webpki alone
//!   refuses a CA certificate as a server's (`CaUsedAsEndEntity`) where OpenSSL took it;
//! - `tls_verify = false`: the certificate is not checked at all (the handshake signatures still
//!   are); `ca_file` is then unused.
//!
//! Why the system store rather than a compiled-in list (`webpki-roots`): it is what Diamond's
//! Python trusted, it follows the host's `ca-certificates` updates and any local CA an
//! administrator added with `update-ca-certificates`, and a binary built today does not carry a
//! root list that goes stale.

use std::fmt;
use std::io::{Read, Write};
use std::net::TcpStream;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Instant;

use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::crypto::CryptoProvider;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use rustls::{ClientConfig, ClientConnection, DigitallySignedStruct, RootCertStore, StreamOwned};

use super::AppError;
use crate::error::Result;
use crate::options::Options;

/// A TLS session over the client's socket.
pub(crate) type TlsStream = StreamOwned<ClientConnection, TcpStream>;

/// TLS sessions a collector keeps for resumption: it talks to one server.
const RESUMPTION_SESSIONS: usize = 4;

/// How a collector checks its `https` server: a rustls client configuration, shared by the
/// collector's connections.
#[derive(Clone)]
pub(crate) struct Tls {
    /// The configuration every connection of this collector starts from.
    config: Arc<ClientConfig>,
    /// Whether certificates are checked (for `Debug`).
    verify: bool,
}

impl fmt::Debug for Tls {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Tls").field("verify", &self.verify).finish_non_exhaustive()
    }
}

impl Tls {
    /// Reads `tls_verify` (default true) and `ca_file` (default: the system's CA store).
    ///
    /// # Errors
    ///
    /// [`crate::Error::BadOption`]: a bad `tls_verify`; a `ca_file` that cannot be read or
    /// holds no PEM certificate; no CA certificate on the system when neither option is set
    /// (named `ca_file`).
    pub(crate) fn from_options(opts: &Options) -> Result<Tls> {
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let verify = opts.bool_or("tls_verify", true)?;
        let builder = ClientConfig::builder_with_provider(provider.clone())
            .with_safe_default_protocol_versions()
            .map_err(|_| crate::Error::BadOption {
                key: "tls_verify".into(),
                value: opts.get("tls_verify").unwrap_or_default().into(),
                reason: "the TLS provider offers no protocol version",
            })?;
        let mut config = if !verify {
            builder
                .dangerous()
                .with_custom_certificate_verifier(Arc::new(NoCertificateCheck(provider)))
                .with_no_client_auth()
        } else if let Some(path) = opts.get("ca_file").filter(|p| !p.is_empty()) {
            let (roots, pinned) = read_ca_file(path)?;
            let inner = rustls::client::WebPkiServerVerifier::builder_with_provider(
                Arc::new(roots),
                provider,
            )
            .build()
            .map_err(|_| crate::Error::BadOption {
                key: "ca_file".into(),
                value: path.into(),
                reason: "no certificate in it can be used as a trust anchor",
            })?;
            builder
                .dangerous()
                .with_custom_certificate_verifier(Arc::new(CaFileCheck { inner, pinned }))
                .with_no_client_auth()
        } else {
            let roots = system_roots().ok_or_else(|| crate::Error::BadOption {
                key: "ca_file".into(),
                value: String::new(),
                reason: "no CA certificate found on this system (SSL_CERT_FILE, SSL_CERT_DIR, \
                         /etc/ssl/certs): install ca-certificates, set ca_file, or set \
                         tls_verify = false",
            })?;
            builder.with_root_certificates(roots).with_no_client_auth()
        };
        config.resumption = rustls::client::Resumption::in_memory_sessions(RESUMPTION_SESSIONS);
        Ok(Tls { config: Arc::new(config), verify })
    }

    /// Runs the TLS handshake on `tcp` for `server_name` (the host connected to), finishing by
    /// `deadline`; `url` names the source in errors.
    ///
    /// # Errors
    ///
    /// [`AppError::BadUrl`] for a host that is no TLS server name, [`AppError::Tls`] when the
    /// handshake fails (certificate refused, no common protocol, a peer that is not TLS),
    /// [`AppError::Timeout`] at the deadline, [`AppError::Protocol`] when the peer closes
    /// during the handshake, [`AppError::Io`] for a socket error.
    pub(crate) fn handshake(
        &self,
        url: &str,
        server_name: &str,
        mut tcp: TcpStream,
        deadline: Instant,
        read_timeout: std::time::Duration,
    ) -> Result<TlsStream, AppError> {
        let name = ServerName::try_from(server_name.to_owned()).map_err(|_| AppError::BadUrl {
            url: url.to_owned(),
            reason: "the host is not a valid TLS server name",
        })?;
        let tls_err = |source| AppError::Tls { addr: url.to_owned(), handshake: true, source };
        let mut conn = ClientConnection::new(self.config.clone(), name).map_err(tls_err)?;
        while conn.is_handshaking() {
            let now = Instant::now();
            if now >= deadline {
                return Err(AppError::Timeout { addr: url.to_owned(), timeout: read_timeout });
            }
            let left = Some(deadline - now);
            let io = |source| AppError::Io { addr: url.to_owned(), source };
            tcp.set_read_timeout(left).map_err(io)?;
            tcp.set_write_timeout(left).map_err(io)?;
            if let Err(e) = conn.complete_io(&mut tcp) {
                return Err(classify(url, true, e, read_timeout));
            }
        }
        Ok(StreamOwned::new(conn, tcp))
    }
}

/// Turns an I/O error from a TLS stream into the collector's error: rustls's own errors (a
/// refused certificate, a bad record, an alert) become [`AppError::Tls`].
pub(crate) fn classify(
    url: &str,
    handshake: bool,
    e: std::io::Error,
    read_timeout: std::time::Duration,
) -> AppError {
    if super::http::is_timeout(&e) {
        return AppError::Timeout { addr: url.to_owned(), timeout: read_timeout };
    }
    if e.kind() == std::io::ErrorKind::UnexpectedEof && handshake {
        return AppError::Protocol {
            addr: url.to_owned(),
            what: "connection closed during the TLS handshake".into(),
        };
    }
    if let Some(source) = e.get_ref().and_then(|inner| inner.downcast_ref::<rustls::Error>()) {
        return AppError::Tls { addr: url.to_owned(), handshake, source: source.clone() };
    }
    AppError::Io { addr: url.to_owned(), source: e }
}

/// A hint for the usual causes of a failed handshake, appended to [`AppError::Tls`]'s message.
pub(crate) fn hint(source: &rustls::Error) -> &'static str {
    use rustls::CertificateError as C;
    match source {
        rustls::Error::InvalidCertificate(
            C::NotValidForName | C::NotValidForNameContext { .. },
        ) => " (use a host name the certificate lists, or tls_verify = false)",
        rustls::Error::InvalidCertificate(
            C::Expired | C::ExpiredContext { .. } | C::NotValidYet | C::NotValidYetContext { .. },
        ) => " (check the server's certificate dates and this host's clock)",
        rustls::Error::InvalidCertificate(_) => {
            " (a private CA or self-signed certificate: set ca_file to its PEM file, or \
             tls_verify = false)"
        }
        rustls::Error::InvalidMessage(_) => " (does the server speak plain http on this port?)",
        _ => "",
    }
}

/// The certificates of a PEM file, as trust anchors and as they were written.
///
/// # Errors
///
/// [`crate::Error::BadOption`] on `ca_file` (so the agent names the file, line and key): the
/// file cannot be read, is not PEM, or holds no certificate usable as a trust anchor.
fn read_ca_file(path: &str) -> Result<(RootCertStore, Vec<CertificateDer<'static>>)> {
    let bad =
        |reason| crate::Error::BadOption { key: "ca_file".into(), value: path.into(), reason };
    let bytes = std::fs::read(path).map_err(|e| {
        bad(match e.kind() {
            std::io::ErrorKind::NotFound => "no such file",
            std::io::ErrorKind::PermissionDenied => "permission denied",
            _ => "cannot be read",
        })
    })?;
    let mut roots = RootCertStore::empty();
    let mut pinned = Vec::new();
    let mut unusable = 0usize;
    for cert in CertificateDer::pem_slice_iter(&bytes) {
        let der = cert.map_err(|_| bad("not a PEM file"))?;
        if roots.add(der.clone()).is_err() {
            unusable += 1;
        } else {
            pinned.push(der);
        }
    }
    if roots.is_empty() {
        return Err(bad(if unusable > 0 {
            "no certificate in it can be used as a trust anchor"
        } else {
            "no PEM certificate (-----BEGIN CERTIFICATE-----) in it"
        }));
    }
    Ok((roots, pinned))
}

/// The system's CA certificates, read on first use and kept for the process (a few hundred KiB
/// shared by every https collector), or `None` when there are none.
fn system_roots() -> Option<Arc<RootCertStore>> {
    static ROOTS: Mutex<Option<Arc<RootCertStore>>> = Mutex::new(None);
    let mut cached = ROOTS.lock().unwrap_or_else(PoisonError::into_inner);
    if let Some(roots) = &*cached {
        return Some(roots.clone());
    }
    let found = rustls_native_certs::load_native_certs();
    for e in &found.errors {
        tracing::warn!(error = %e, "reading the system's CA certificates");
    }
    let mut roots = RootCertStore::empty();
    let (added, ignored) = roots.add_parsable_certificates(found.certs);
    if ignored > 0 {
        tracing::debug!(added, ignored, "system CA certificates that rustls cannot use");
    }
    if roots.is_empty() {
        return None;
    }
    let roots = Arc::new(roots);
    *cached = Some(roots.clone());
    Some(roots)
}

/// `ca_file`: webpki's check against the file's certificates, plus one case it refuses: the
/// server presents, as its own, a certificate of the file that is marked as a CA.
#[derive(Debug)]
struct CaFileCheck {
    /// webpki with the file's certificates as trust anchors.
    inner: Arc<rustls::client::WebPkiServerVerifier>,
    /// The file's certificates, DER, to recognise one presented as is.
    pinned: Vec<CertificateDer<'static>>,
}

impl ServerCertVerifier for CaFileCheck {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        server_name: &ServerName<'_>,
        ocsp_response: &[u8],
        now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        let verdict = self.inner.verify_server_cert(
            end_entity,
            intermediates,
            server_name,
            ocsp_response,
            now,
        );
        match verdict {
            Err(rustls::Error::InvalidCertificate(rustls::CertificateError::Other(other)))
                if matches!(
                    other.0.downcast_ref::<webpki::Error>(),
                    Some(webpki::Error::CaUsedAsEndEntity)
                ) && self.pinned.iter().any(|p| p.as_ref() == end_entity.as_ref()) =>
            {
                // webpki checks a certificate's dates before its CA flag, so they were right;
                // it is one the operator trusts byte for byte; what is left is the name.
                let parsed = rustls::server::ParsedCertificate::try_from(end_entity)?;
                rustls::client::verify_server_name(&parsed, server_name)?;
                Ok(ServerCertVerified::assertion())
            }
            other => other,
        }
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.inner.verify_tls12_signature(message, cert, dss)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.inner.verify_tls13_signature(message, cert, dss)
    }

    fn supported_verify_schemes(&self) -> Vec<rustls::SignatureScheme> {
        self.inner.supported_verify_schemes()
    }
}

/// `tls_verify = false`: any certificate is accepted, but the handshake's signatures are still
/// checked with the provider's algorithms (a peer must at least hold the key it presents).
#[derive(Debug)]
struct NoCertificateCheck(Arc<CryptoProvider>);

impl ServerCertVerifier for NoCertificateCheck {
    fn verify_server_cert(
        &self,
        _end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp_response: &[u8],
        _now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        Ok(ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(
            message,
            cert,
            dss,
            &self.0.signature_verification_algorithms,
        )
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(
            message,
            cert,
            dss,
            &self.0.signature_verification_algorithms,
        )
    }

    fn supported_verify_schemes(&self) -> Vec<rustls::SignatureScheme> {
        self.0.signature_verification_algorithms.supported_schemes()
    }
}

/// Plain TCP or TLS: what the HTTP client reads and writes.
pub(crate) enum Stream {
    /// `http`.
    Plain(TcpStream),
    /// `https` (boxed: a rustls connection holds its buffers inline).
    Tls(Box<TlsStream>),
}

impl Stream {
    /// The socket underneath, for its timeouts.
    pub(crate) fn tcp(&self) -> &TcpStream {
        match self {
            Stream::Plain(s) => s,
            Stream::Tls(s) => s.get_ref(),
        }
    }
}

impl Read for Stream {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        match self {
            Stream::Plain(s) => s.read(buf),
            Stream::Tls(s) => match s.read(buf) {
                // A peer that closes without TLS's close_notify: taken as the end of the
                // stream, as Diamond's Python (`suppress_ragged_eofs`) did. A body cut short
                // is still caught by its framing (Content-Length, chunked) or its parser.
                Err(e) if e.kind() == std::io::ErrorKind::UnexpectedEof => Ok(0),
                other => other,
            },
        }
    }
}

impl Write for Stream {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        match self {
            Stream::Plain(s) => s.write(buf),
            Stream::Tls(s) => s.write(buf),
        }
    }

    fn flush(&mut self) -> std::io::Result<()> {
        match self {
            Stream::Plain(s) => s.flush(),
            Stream::Tls(s) => s.flush(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_ca_file_without_certificates_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("ca.pem");
        std::fs::write(&path, "not a certificate\n").unwrap();
        let o: Options = [("ca_file", path.to_str().unwrap())].into_iter().collect();
        let e = Tls::from_options(&o).unwrap_err().to_string();
        assert!(e.contains("no PEM certificate") && e.contains("ca.pem"), "{e}");
        let o: Options = [("ca_file", "/nonexistent/ca.pem")].into_iter().collect();
        let e = Tls::from_options(&o).unwrap_err().to_string();
        assert!(e.contains("`ca_file`") && e.contains("/nonexistent/ca.pem"), "{e}");
        assert!(e.contains("no such file"), "{e}");
    }

    #[test]
    fn tls_verify_takes_diamonds_booleans() {
        let o: Options = [("tls_verify", "False")].into_iter().collect();
        assert!(!Tls::from_options(&o).unwrap().verify);
        let o: Options = [("tls_verify", "maybe")].into_iter().collect();
        assert!(Tls::from_options(&o).is_err());
    }

    #[test]
    fn hints_name_the_usual_causes() {
        let cert = rustls::Error::InvalidCertificate(rustls::CertificateError::UnknownIssuer);
        assert!(hint(&cert).contains("ca_file"));
        let name = rustls::Error::InvalidCertificate(rustls::CertificateError::NotValidForName);
        assert!(hint(&name).contains("host name"));
        assert_eq!(hint(&rustls::Error::DecryptError), "");
    }
}
