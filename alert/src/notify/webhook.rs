//! The webhook receiver: one HTTP POST per notification (ureq, blocking, on the receiver's
//! own delivery thread), Alertmanager's v4 JSON unless the receiver has a `body` template.

use std::time::Duration;

use crate::error::Result;
use crate::notify::{DeliveryError, Notification, ReceiverConfig, Template, webhook_body};

/// A configured webhook.
pub(crate) struct WebhookTransport {
    /// The URL every notification is POSTed to.
    url: String,
    /// Extra headers, as configured.
    headers: Vec<(String, String)>,
    /// The body template (none: the AM JSON).
    body: Option<Template>,
    /// The `Content-Type` sent.
    content_type: String,
    /// `max_alerts` of the AM body.
    max_alerts: usize,
    /// One agent (connection pool) per receiver, with the receiver's timeout.
    agent: ureq::Agent,
}

impl WebhookTransport {
    pub(crate) fn new(r: &ReceiverConfig) -> Result<WebhookTransport> {
        let timeout = r.timeout.map_or(Duration::from_secs(10), |t| t.0);
        let agent = ureq::Agent::config_builder()
            .timeout_global(Some(timeout))
            .http_status_as_error(false)
            .user_agent(concat!("graphite-rs-alert/", env!("CARGO_PKG_VERSION")))
            .build()
            .into();
        let body = match &r.body {
            Some(text) => Some(
                Template::parse(text)
                    .map_err(|e| crate::Error::receiver(&r.name, format!("template `body` {e}")))?,
            ),
            None => None,
        };
        Ok(WebhookTransport {
            url: r.url.clone().unwrap_or_default(),
            headers: r.headers.iter().map(|(k, v)| (k.clone(), v.clone())).collect(),
            body,
            content_type: r.content_type.clone().unwrap_or_else(|| "application/json".into()),
            max_alerts: r.max_alerts,
            agent,
        })
    }

    pub(crate) fn deliver(&self, n: &Notification) -> std::result::Result<(), DeliveryError> {
        let body = match &self.body {
            Some(t) => t.render(n).into_bytes(),
            None => webhook_body(n, self.max_alerts).to_string().into_bytes(),
        };
        let mut request = self.agent.post(&self.url).header("Content-Type", &self.content_type);
        for (k, v) in &self.headers {
            request = request.header(k, v);
        }
        match request.send(&body[..]) {
            Ok(response) => {
                let status = response.status().as_u16();
                if (200..300).contains(&status) {
                    Ok(())
                } else if status == 429 || status >= 500 || status == 408 {
                    Err(DeliveryError::retry(format!("{}: HTTP {status}", self.url)))
                } else {
                    Err(DeliveryError::fatal(format!("{}: HTTP {status}", self.url)))
                }
            }
            Err(e) => Err(DeliveryError::retry(format!("{}: {e}", self.url))),
        }
    }
}
