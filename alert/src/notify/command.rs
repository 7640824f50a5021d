//! The command receiver: runs a program (no shell) with the notification's Alertmanager JSON
//! on stdin and `ALERT_*` environment variables, so any script can page; a program that runs
//! past its timeout is killed, and a non-zero exit is a failed delivery (retried).
//!
//! Variables: `ALERT_STATUS` (`firing`/`resolved`), `ALERT_RECEIVER`, `ALERT_GROUP_KEY`,
//! `ALERT_COUNT`, `ALERT_FIRING`, `ALERT_SEVERITY`, `ALERT_NAME` (the common `alertname`),
//! `ALERT_SUMMARY` (the common `summary` annotation), `ALERT_ESCALATION` (`1` or `0`),
//! `ALERT_EXTERNAL_URL`, and `ALERT_LABEL_<NAME>` for each common label (name upper-cased,
//! anything but letters and digits as `_`).

use std::io::{Read, Write};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use crate::error::Result;
use crate::notify::{DeliveryError, Notification, ReceiverConfig, webhook_body};

/// How often a running command is polled for its exit.
const POLL: Duration = Duration::from_millis(10);

/// Bytes of a failing command's stderr kept for the error message.
const STDERR_KEEP_BYTES: usize = 500;

/// A configured command.
pub(crate) struct CommandTransport {
    /// The program and its arguments.
    argv: Vec<String>,
    /// How long it may run.
    timeout: Duration,
}

impl CommandTransport {
    pub(crate) fn new(r: &ReceiverConfig) -> Result<CommandTransport> {
        Ok(CommandTransport {
            argv: r.command.clone(),
            timeout: r.timeout.map_or(Duration::from_secs(30), |t| t.0),
        })
    }

    /// The environment the command gets.
    pub(crate) fn env(n: &Notification) -> Vec<(String, String)> {
        let common = n.common_labels();
        let annotations = n.common_annotations();
        let severity = match n.severity() {
            Some(crate::model::Severity::Warning) => "warning",
            Some(crate::model::Severity::Critical) => "critical",
            None => "",
        };
        let mut env = vec![
            ("ALERT_STATUS".to_owned(), n.status.as_str().to_owned()),
            ("ALERT_RECEIVER".to_owned(), n.receiver.clone()),
            ("ALERT_GROUP_KEY".to_owned(), n.group_key.clone()),
            ("ALERT_COUNT".to_owned(), n.alerts.len().to_string()),
            ("ALERT_FIRING".to_owned(), n.firing().count().to_string()),
            ("ALERT_SEVERITY".to_owned(), severity.to_owned()),
            ("ALERT_NAME".to_owned(), common.get("alertname").cloned().unwrap_or_default()),
            ("ALERT_SUMMARY".to_owned(), annotations.get("summary").cloned().unwrap_or_default()),
            ("ALERT_ESCALATION".to_owned(), if n.escalation { "1" } else { "0" }.to_owned()),
            ("ALERT_EXTERNAL_URL".to_owned(), n.external_url.clone()),
        ];
        for (k, v) in &common {
            let name: String = k
                .chars()
                .map(|c| if c.is_ascii_alphanumeric() { c.to_ascii_uppercase() } else { '_' })
                .collect();
            // A NUL cannot be passed in the environment.
            env.push((format!("ALERT_LABEL_{name}"), v.replace('\0', "")));
        }
        env.retain(|(_, v)| !v.contains('\0'));
        env
    }

    pub(crate) fn deliver(&self, n: &Notification) -> std::result::Result<(), DeliveryError> {
        let (program, args) =
            self.argv.split_first().ok_or_else(|| DeliveryError::fatal("no command"))?;
        let mut child = Command::new(program)
            .args(args)
            .envs(Self::env(n))
            .stdin(Stdio::piped())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .map_err(|e| DeliveryError::retry(format!("cannot run {program:?}: {e}")))?;
        let input = webhook_body(n, 0).to_string();
        // Written from a thread: a command that does not read its stdin must not block us
        // past the timeout (the pipe holds only 64 KiB).
        let writer = child.stdin.take().map(|mut stdin| {
            std::thread::spawn(move || {
                let _ = stdin.write_all(input.as_bytes());
            })
        });
        let deadline = Instant::now() + self.timeout;
        let status = loop {
            match child.try_wait() {
                Ok(Some(status)) => break status,
                Ok(None) if Instant::now() >= deadline => {
                    let _ = child.kill();
                    let _ = child.wait();
                    return Err(DeliveryError::retry(format!(
                        "{program:?} ran longer than {:?} and was killed",
                        self.timeout
                    )));
                }
                Ok(None) => std::thread::sleep(POLL),
                Err(e) => return Err(DeliveryError::retry(format!("{program:?}: {e}"))),
            }
        };
        if let Some(w) = writer {
            let _ = w.join();
        }
        if status.success() {
            return Ok(());
        }
        let mut stderr = Vec::new();
        if let Some(mut pipe) = child.stderr.take() {
            let _ = pipe.by_ref().take(STDERR_KEEP_BYTES as u64).read_to_end(&mut stderr);
        }
        Err(DeliveryError::retry(format!(
            "{program:?} exited with {status}: {}",
            String::from_utf8_lossy(&stderr).trim()
        )))
    }
}
