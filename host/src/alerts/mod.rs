//! # Alerts: telling people that a run failed, a plan was held, or records keep failing
//!
//! A nightly run that fails, or a plan the guard holds, is only useful if
//! someone hears of it. `muster serve` (the only long-lived process) sends an
//! alert, configured in `[alerts]` ([`crate::config::AlertsSettings`]), for:
//!
//! - **a failed run** — the run's error (or why no run could be made);
//! - **a held plan** — the planned counts, the guard's breaches (count and
//!   threshold, in its own words) and the link to `/held/{flow}`, where the
//!   plan is reviewed and approved;
//! - **records failing across runs** — a record that failed (a data problem
//!   or a failed action) in each of the last `failing_after_runs` full runs,
//!   with its field or action and the error.
//!
//! Every message names the tenant, the flow, what happened, when (in the
//! tenant's time zone) and the link to review it (`base_url`).
//!
//! ## Where they go
//!
//! - a **webhook**: `POST {"text": "…"}`, which both Slack incoming webhooks
//!   and Teams' classic incoming webhooks accept. The URL embeds the token
//!   that lets anyone post to the channel, so it is a secret: loaded from
//!   the environment or a file, never logged (errors are logged with the URL
//!   replaced by `[webhook]`), never stored. `<`, `>` and `&` in the text are
//!   escaped, as Slack requires, so a vendor's error cannot inject markup.
//! - **email** over SMTP (lettre, rustls): STARTTLS (required, not
//!   opportunistic), implicit TLS, or plain for a local relay (without login).
//!
//! ## Never in a run's way, never twice
//!
//! What to alert is decided by the serve worker right after a job finishes
//! (a few store reads); sending happens on a separate thread
//! ([`Notifier`]), with a timeout per attempt and a bounded number of
//! retries, so a slow or dead receiver never delays the next run. A failed
//! delivery is logged and dropped.
//!
//! Each alert is remembered in the store (`alerts_sent`) before it is
//! queued: a held plan is alerted once per snapshot digest (re-holding the
//! same plan every night, or restarting `serve`, does not re-alert), a
//! failed run once per run (and a webhook event only on its first failed
//! attempt, not on every retry), a failing record once when its streak
//! reaches the threshold. If the process dies between remembering and
//! sending, that alert is lost rather than duplicated.

mod deliver;
mod events;

pub use deliver::{DeliveryError, Notifier};
pub use events::{Alert, Finished, failing_streaks};

use std::time::Duration;

use crate::config::{AlertsSettings, ConfigError, Secret, SecretSource, SmtpTls};
use lettre::message::Mailbox;

/// `[alerts]` with its secrets loaded: what [`Notifier`] and the serve hook
/// need.
#[derive(Debug, Clone)]
pub struct Alerting {
    /// No trailing `/`.
    pub base_url: String,
    pub webhook: Option<Secret>,
    pub email: Option<Email>,
    pub failing_after_runs: u32,
    /// Time allowed for each delivery attempt (default 10 s).
    pub timeout: Duration,
    /// Attempts per alert and destination (default 3).
    pub attempts: u32,
    /// Pause before the second attempt, doubled before each later one
    /// (default 5 s).
    pub retry_pause: Duration,
}

/// `[alerts.email]` with its password loaded.
#[derive(Debug, Clone)]
pub struct Email {
    pub smtp_host: String,
    pub smtp_port: u16,
    pub tls: SmtpTls,
    pub from: Mailbox,
    pub to: Vec<Mailbox>,
    pub login: Option<(String, Secret)>,
}

impl Alerting {
    /// Loads the secrets of `[alerts]`: a missing variable stops `serve` at
    /// start rather than at the first alert. The webhook URL must be
    /// `https://` (plain `http://` only to a loopback receiver).
    pub fn load(settings: &AlertsSettings) -> Result<Alerting, ConfigError> {
        let webhook = match &settings.webhook_url {
            Some(source) => Some(load_webhook_url(source)?),
            None => None,
        };
        let email = match &settings.email {
            Some(e) => Some(Email {
                smtp_host: e.smtp_host.clone(),
                smtp_port: e.smtp_port,
                tls: e.tls,
                from: e.from.clone(),
                to: e.to.clone(),
                login: match (&e.username, &e.password) {
                    (Some(u), Some(p)) => Some((u.clone(), p.load()?)),
                    _ => None,
                },
            }),
            None => None,
        };
        Ok(Alerting {
            base_url: settings.base_url.clone(),
            webhook,
            email,
            failing_after_runs: settings.failing_after_runs,
            timeout: Duration::from_secs(10),
            attempts: 3,
            retry_pause: Duration::from_secs(5),
        })
    }
}

/// What `muster check` says about `[alerts]`: where alerts go, or why they
/// cannot (a missing secret, a webhook URL that is not https), and a
/// warning for each secret file others may read. Sends nothing (a test
/// message would reach real people). The flag is false when it failed.
pub fn check(settings: &AlertsSettings) -> (String, bool) {
    let mut out = match Alerting::load(settings) {
        Ok(a) => {
            let mut to = Vec::new();
            if let Some(url) = &a.webhook {
                to.push(format!("webhook at {}", deliver::origin(url.expose())));
            }
            if let Some(e) = &a.email {
                let rcpt: Vec<String> = e.to.iter().map(|m| m.email.to_string()).collect();
                to.push(format!(
                    "email to {} via {}:{} ({:?})",
                    rcpt.join(", "),
                    e.smtp_host,
                    e.smtp_port,
                    e.tls
                ));
            }
            format!("ok      alerts: {}\n", to.join("; "))
        }
        Err(e) => return (format!("FAILED  alerts: {e}\n"), false),
    };
    let secrets = [
        settings.webhook_url.as_ref(),
        settings.email.as_ref().and_then(|e| e.password.as_ref()),
    ];
    for warning in secrets
        .into_iter()
        .flatten()
        .filter_map(SecretSource::permission_warning)
    {
        out.push_str(&format!("        warning: {warning}\n"));
    }
    (out, true)
}

/// Loads and checks the webhook URL without ever echoing it.
fn load_webhook_url(source: &SecretSource) -> Result<Secret, ConfigError> {
    let url = source.load()?;
    let text = url.expose();
    let rest = text
        .strip_prefix("https://")
        .or_else(|| text.strip_prefix("http://").filter(|r| is_loopback(r)));
    match rest {
        Some(r) if !r.is_empty() && !r.contains(char::is_whitespace) => Ok(url),
        _ => Err(ConfigError::SecretInvalid {
            secret: source.to_string(),
            problem:
                "is not an https:// URL (plain http:// is only accepted for a loopback receiver)"
                    .into(),
        }),
    }
}

/// `rest` is a URL after its scheme: does its host name the loopback?
fn is_loopback(rest: &str) -> bool {
    let authority = rest.split(['/', '?', '#']).next().unwrap_or_default();
    let host = authority.rsplit('@').next().unwrap_or_default();
    let host = match host.strip_prefix('[') {
        Some(v6) => v6.split(']').next().unwrap_or_default(),
        None => host.split(':').next().unwrap_or_default(),
    };
    host == "localhost"
        || host
            .parse::<std::net::IpAddr>()
            .is_ok_and(|ip| ip.is_loopback())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn check_says_where_alerts_go_without_the_token_or_why_they_cannot() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("hook");
        std::fs::write(&p, "https://hooks.slack.com/services/T/B/s3cret").unwrap();
        std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o644)).unwrap();
        let mut settings = AlertsSettings {
            base_url: "http://muster.internal".into(),
            webhook_url: Some(SecretSource::File(p.clone())),
            email: None,
            failing_after_runs: 3,
        };
        let (out, ok) = check(&settings);
        assert!(ok, "{out}");
        assert!(
            out.starts_with("ok      alerts: webhook at https://hooks.slack.com\n"),
            "{out}"
        );
        assert!(
            out.contains("chmod 600") && !out.contains("s3cret"),
            "{out}"
        );
        settings.webhook_url = Some(SecretSource::File(dir.path().join("missing")));
        let (out, ok) = check(&settings);
        assert!(
            !ok && out.starts_with("FAILED  alerts: the secret file"),
            "{out}"
        );
    }

    #[test]
    fn webhook_urls_must_be_https_except_to_loopback() {
        for (url, ok) in [
            ("https://hooks.slack.com/services/T/B/x", true),
            ("http://127.0.0.1:8080/hook", true),
            ("http://[::1]:9/h", true),
            ("http://localhost/h", true),
            ("http://hooks.slack.com/services/T/B/x", false),
            ("http://127.0.0.1.evil.example/h", false),
            ("ftp://x", false),
            ("https://", false),
        ] {
            let dir = tempfile::tempdir().unwrap();
            let p = dir.path().join("hook");
            std::fs::write(&p, url).unwrap();
            let got = load_webhook_url(&SecretSource::File(p.clone()));
            assert_eq!(got.is_ok(), ok, "{url}");
            if let Err(e) = got {
                // Where the secret is and what is wrong: nothing of the value.
                assert_eq!(
                    e.to_string(),
                    format!(
                        "the secret in the file {} is not an https:// URL (plain http:// is only accepted for a loopback receiver)",
                        p.display()
                    )
                );
            }
        }
    }
}
