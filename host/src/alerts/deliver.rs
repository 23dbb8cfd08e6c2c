//! Sending alerts: a webhook POST and an SMTP email, on a thread of their
//! own, each attempt under a timeout, retried a bounded number of times.

use std::sync::mpsc::{Receiver, Sender, channel};
use std::thread::JoinHandle;
use std::time::Duration;

use lettre::message::header::ContentType;
use lettre::transport::smtp::authentication::Credentials;
use lettre::{Message, SmtpTransport, Transport};

use super::{Alert, Alerting, Email};
use crate::config::{Secret, SmtpTls};

/// Why one delivery attempt failed. Never holds the webhook URL.
#[derive(Debug, thiserror::Error)]
pub enum DeliveryError {
    #[error("the webhook at {origin} answered or failed: {message}")]
    Webhook { origin: String, message: String },
    #[error("the email to {to} could not be built: {message}")]
    Message { to: String, message: String },
    #[error("the SMTP server {host}:{port} refused or failed: {message}")]
    Smtp {
        host: String,
        port: u16,
        message: String,
    },
}

/// Where an alert goes; [`Notifier`] tries each destination in turn.
trait Delivery: Send + Sync {
    fn deliver(&self, alert: &Alert) -> Result<(), DeliveryError>;
}

/// The alerts thread. Dropping it closes the queue; the thread sends what
/// is queued and ends on its own (it is not joined: a dead receiver must
/// not hold up stopping `serve` for its retries).
pub struct Notifier {
    queue: Sender<Alert>,
    _thread: JoinHandle<()>,
}

impl Notifier {
    /// Starts the thread that delivers `alerting`'s alerts.
    pub fn start(alerting: &Alerting) -> std::io::Result<Notifier> {
        let mut destinations: Vec<Box<dyn Delivery>> = Vec::new();
        if let Some(url) = &alerting.webhook {
            destinations.push(Box::new(Webhook::new(url.clone(), alerting.timeout)));
        }
        if let Some(email) = &alerting.email {
            destinations.push(Box::new(Smtp {
                email: email.clone(),
                timeout: alerting.timeout,
            }));
        }
        let retry = Retry {
            attempts: alerting.attempts.max(1),
            pause: alerting.retry_pause,
        };
        let (queue, rx) = channel();
        let thread = std::thread::Builder::new()
            .name("muster-alerts".into())
            .spawn(move || deliver_all(&rx, &destinations, retry))?;
        Ok(Notifier {
            queue,
            _thread: thread,
        })
    }

    /// Queues `alert`; never blocks.
    pub fn send(&self, alert: Alert) {
        if self.queue.send(alert).is_err() {
            tracing::error!("alerts: the delivery thread has stopped; an alert is lost");
        }
    }
}

impl std::fmt::Debug for Notifier {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Notifier")
    }
}

#[derive(Debug, Clone, Copy)]
struct Retry {
    attempts: u32,
    pause: Duration,
}

fn deliver_all(rx: &Receiver<Alert>, destinations: &[Box<dyn Delivery>], retry: Retry) {
    while let Ok(alert) = rx.recv() {
        for d in destinations {
            deliver_one(d.as_ref(), &alert, retry);
        }
    }
}

/// Up to `retry.attempts` tries, pausing `pause`, then twice that…
fn deliver_one(d: &dyn Delivery, alert: &Alert, retry: Retry) {
    let mut pause = retry.pause;
    for attempt in 1..=retry.attempts {
        match d.deliver(alert) {
            Ok(()) => return,
            Err(e) if attempt < retry.attempts => {
                tracing::warn!(
                    flow = alert.flow,
                    "alerts: attempt {attempt} of {} failed, retrying: {e}",
                    retry.attempts
                );
                std::thread::sleep(pause);
                pause = pause.saturating_mul(2);
            }
            Err(e) => tracing::error!(
                flow = alert.flow,
                "alerts: giving up after {attempt} attempts, the alert \"{}\" is lost: {e}",
                alert.subject
            ),
        }
    }
}

/// `POST {"text": …}` to a Slack or Teams incoming webhook.
struct Webhook {
    url: Secret,
    /// `scheme://host[:port]`, what logs may say about where it goes.
    origin: String,
    agent: ureq::Agent,
}

impl Webhook {
    fn new(url: Secret, timeout: Duration) -> Webhook {
        let agent = ureq::Agent::config_builder()
            .timeout_global(Some(timeout))
            .max_redirects(0)
            .http_status_as_error(true)
            .build()
            .into();
        Webhook {
            origin: origin(url.expose()),
            url,
            agent,
        }
    }
}

impl Delivery for Webhook {
    fn deliver(&self, alert: &Alert) -> Result<(), DeliveryError> {
        let body = serde_json::json!({ "text": slack_escape(&alert.text) }).to_string();
        self.agent
            .post(self.url.expose())
            .header("Content-Type", "application/json")
            .send(body.as_bytes())
            .map(drop)
            .map_err(|e| DeliveryError::Webhook {
                origin: self.origin.clone(),
                message: redact(&e.to_string(), self.url.expose()),
            })
    }
}

/// `scheme://host[:port]` of a URL: the part that is not the token.
pub(super) fn origin(url: &str) -> String {
    let (scheme, rest) = url.split_once("://").unwrap_or(("", url));
    let authority = rest.split(['/', '?', '#']).next().unwrap_or_default();
    let host = authority.rsplit('@').next().unwrap_or_default();
    format!("{scheme}://{host}")
}

/// `text` with the URL and its path (where the token is) replaced.
fn redact(text: &str, url: &str) -> String {
    let mut out = text.replace(url, "[webhook]");
    let (_, rest) = url.split_once("://").unwrap_or(("", url));
    if let Some(i) = rest.find(['/', '?']) {
        let path = &rest[i..];
        if path.len() > 1 {
            out = out.replace(path, "/[redacted]");
        }
    }
    out
}

/// Slack's three control characters, escaped as it asks; Teams shows the
/// entities as the characters too.
fn slack_escape(text: &str) -> String {
    text.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
}

/// An email through the configured SMTP server.
struct Smtp {
    email: Email,
    timeout: Duration,
}

impl Smtp {
    fn transport(&self) -> Result<SmtpTransport, DeliveryError> {
        let e = &self.email;
        let builder = match e.tls {
            SmtpTls::StartTls => SmtpTransport::starttls_relay(&e.smtp_host),
            SmtpTls::Tls => SmtpTransport::relay(&e.smtp_host),
            SmtpTls::None => Ok(SmtpTransport::builder_dangerous(&e.smtp_host)),
        }
        .map_err(|err| self.error(err))?;
        let mut builder = builder.port(e.smtp_port).timeout(Some(self.timeout));
        if let Some((user, password)) = &e.login {
            builder = builder.credentials(Credentials::new(user.clone(), password.expose().into()));
        }
        Ok(builder.build())
    }

    fn error(&self, err: impl std::fmt::Display) -> DeliveryError {
        DeliveryError::Smtp {
            host: self.email.smtp_host.clone(),
            port: self.email.smtp_port,
            message: err.to_string(),
        }
    }

    fn message(&self, alert: &Alert) -> Result<Message, DeliveryError> {
        let mut m = Message::builder()
            .from(self.email.from.clone())
            .subject(alert.subject.clone())
            .header(ContentType::TEXT_PLAIN);
        for to in &self.email.to {
            m = m.to(to.clone());
        }
        m.body(alert.text.clone())
            .map_err(|err| DeliveryError::Message {
                to: self
                    .email
                    .to
                    .iter()
                    .map(ToString::to_string)
                    .collect::<Vec<_>>()
                    .join(", "),
                message: err.to_string(),
            })
    }
}

impl Delivery for Smtp {
    fn deliver(&self, alert: &Alert) -> Result<(), DeliveryError> {
        let message = self.message(alert)?;
        self.transport()?
            .send(&message)
            .map(drop)
            .map_err(|err| self.error(err))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_token_never_survives_in_an_error() {
        let url = "https://hooks.slack.com/services/T0/B0/s3cr3t";
        assert_eq!(origin(url), "https://hooks.slack.com");
        let e = redact(
            &format!("bad uri {url}; GET /services/T0/B0/s3cr3t failed"),
            url,
        );
        assert!(!e.contains("s3cr3t"), "{e}");
        assert_eq!(e, "bad uri [webhook]; GET /[redacted] failed");
    }

    #[test]
    fn slack_control_characters_are_escaped() {
        assert_eq!(slack_escape("a<b>&c"), "a&lt;b&gt;&amp;c");
    }
}
