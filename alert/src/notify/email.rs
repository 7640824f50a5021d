//! The email receiver: one message per notification over SMTP with lettre (the maintained
//! Rust SMTP client: STARTTLS, implicit TLS, AUTH), its blocking transport run on the
//! receiver's own delivery thread. A connection is opened per message (no pool): alerts are
//! rare, and a pooled connection the server has since closed would only cost a retry.

use std::time::Duration;

use lettre::message::header::ContentType;
use lettre::message::{Mailbox, Message};
use lettre::transport::smtp::SmtpTransport;
use lettre::transport::smtp::authentication::Credentials;
use lettre::transport::smtp::client::{Tls, TlsParameters};

use crate::error::{Error, Result};
use crate::notify::{DeliveryError, Notification, ReceiverConfig, SmtpTls, Template};

/// The subject when the receiver sets none.
pub(crate) const DEFAULT_SUBJECT: &str = "[{{status|upper}}:{{count}}] {{labels.alertname}}";

/// The body when the receiver sets none.
pub(crate) const DEFAULT_BODY: &str = "{{status|upper}}: {{count}} alert(s), {{group_labels}}\n\
{{#alerts}}\n[{{status}}] {{labels}}\n  {{annotations.summary}}\n  value {{value}}, since {{starts_at}}\n  graph: {{generator_url}}\n{{/alerts}}\n\
Status page: {{external_url}}\n";

/// A configured email receiver.
pub(crate) struct EmailTransport {
    /// The SMTP connection settings.
    mailer: SmtpTransport,
    /// The sender.
    from: Mailbox,
    /// The recipients.
    to: Vec<Mailbox>,
    /// The subject template.
    subject: Template,
    /// The body template.
    body: Template,
}

impl EmailTransport {
    pub(crate) fn new(r: &ReceiverConfig) -> Result<EmailTransport> {
        let bad = |problem: String| Error::receiver(&r.name, problem);
        let host = r.smtp_host.clone().unwrap_or_default();
        let mode = r.tls.unwrap_or_default();
        let port = r.smtp_port.unwrap_or(match mode {
            SmtpTls::Starttls => 587,
            SmtpTls::Tls => 465,
            SmtpTls::None => 25,
        });
        let params =
            || TlsParameters::new(host.clone()).map_err(|e| bad(format!("TLS for {host:?}: {e}")));
        let tls = match mode {
            SmtpTls::Starttls => Tls::Required(params()?),
            SmtpTls::Tls => Tls::Wrapper(params()?),
            SmtpTls::None => Tls::None,
        };
        let mut builder = SmtpTransport::builder_dangerous(&host)
            .port(port)
            .tls(tls)
            .timeout(Some(r.timeout.map_or(Duration::from_secs(10), |t| t.0)));
        if let Some(user) = &r.username {
            let password = match (&r.password, &r.password_env) {
                (Some(p), _) => p.clone(),
                (None, Some(var)) => std::env::var(var)
                    .map_err(|_| bad(format!("password_env {var:?} is not set")))?,
                (None, None) => String::new(),
            };
            builder = builder.credentials(Credentials::new(user.clone(), password));
        }
        let mailbox = |a: &str| a.parse::<Mailbox>().map_err(|e| bad(format!("{a:?}: {e}")));
        let template = |text: &Option<String>, default: &str, field: &str| {
            Template::parse(text.as_deref().unwrap_or(default))
                .map_err(|e| bad(format!("template `{field}` {e}")))
        };
        Ok(EmailTransport {
            mailer: builder.build(),
            from: mailbox(r.from.as_deref().unwrap_or_default())?,
            to: r.to.iter().map(|a| mailbox(a)).collect::<Result<_>>()?,
            subject: template(&r.subject, DEFAULT_SUBJECT, "subject")?,
            body: template(&r.body, DEFAULT_BODY, "body")?,
        })
    }

    pub(crate) fn deliver(&self, n: &Notification) -> std::result::Result<(), DeliveryError> {
        let mut message = Message::builder().from(self.from.clone());
        for to in &self.to {
            message = message.to(to.clone());
        }
        // A subject is one line: templates may put newlines in (from labels); fold them.
        let subject: String =
            self.subject.render(n).chars().map(|c| if c.is_control() { ' ' } else { c }).collect();
        let message = message
            .subject(subject)
            .header(ContentType::TEXT_PLAIN)
            .body(self.body.render(n))
            .map_err(|e| DeliveryError::fatal(format!("cannot build the message: {e}")))?;
        match lettre::Transport::send(&self.mailer, &message) {
            Ok(_) => Ok(()),
            Err(e) if e.is_permanent() => Err(DeliveryError::fatal(format!("SMTP: {e}"))),
            Err(e) => Err(DeliveryError::retry(format!("SMTP: {e}"))),
        }
    }
}
