//! `[alerts]`: where `muster serve` tells people that a run failed, a plan
//! was held, or records keep failing (see [`crate::alerts`]).
//!
//! ```toml
//! [alerts]
//! base_url = "http://muster.internal:8080"      # links in the messages
//! webhook_url = { env = "MUSTER_ALERT_WEBHOOK" } # a secret: it embeds a token
//! failing_after_runs = 3
//!
//! [alerts.email]
//! smtp_host = "smtp.example.com"
//! smtp_port = 587                                # default: by `tls`
//! tls = "starttls"                               # "starttls", "tls" or "none"
//! from = "muster <muster@example.com>"
//! to = ["it@example.com"]
//! username = "muster"
//! password = { env = "MUSTER_SMTP_PASSWORD" }
//! ```
//!
//! Everything is checked here, with line:column, except the secrets
//! themselves: parsing never reads a secret (the webhook URL is checked
//! when `serve` loads it).

use std::path::Path;

use lettre::message::Mailbox;

use super::reader::{Val, closest, join};
use super::{ConfigError, SecretSource, parse_secret};

/// `[alerts]`, validated.
#[derive(Debug, Clone, PartialEq)]
pub struct AlertsSettings {
    /// Where muster's status page is reached from the people alerted, with
    /// no trailing `/` (`http://muster.internal:8080`).
    pub base_url: String,
    /// The incoming-webhook URL (Slack, Teams): a secret.
    pub webhook_url: Option<SecretSource>,
    pub email: Option<EmailSettings>,
    /// A record failing in this many consecutive full runs is alerted, once.
    pub failing_after_runs: u32,
}

/// `[alerts.email]`, validated.
#[derive(Debug, Clone, PartialEq)]
pub struct EmailSettings {
    pub smtp_host: String,
    pub smtp_port: u16,
    pub tls: SmtpTls,
    pub from: Mailbox,
    pub to: Vec<Mailbox>,
    /// Login, with `password`; both or neither.
    pub username: Option<String>,
    pub password: Option<SecretSource>,
}

/// How the SMTP connection is protected.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SmtpTls {
    /// Plain connection upgraded with `STARTTLS`, which is required (port 587).
    StartTls,
    /// TLS from the first byte (port 465).
    Tls,
    /// No encryption: only for a relay on the same host or network; no
    /// login is allowed over it.
    None,
}

impl SmtpTls {
    const NAMES: [&'static str; 3] = ["starttls", "tls", "none"];

    /// The usual port of each mode.
    pub const fn default_port(self) -> u16 {
        match self {
            SmtpTls::StartTls => 587,
            SmtpTls::Tls => 465,
            SmtpTls::None => 25,
        }
    }
}

/// The default of `failing_after_runs`.
pub const FAILING_AFTER_RUNS: u32 = 3;

const EXAMPLE: &str = "{ base_url = \"http://muster.internal:8080\", webhook_url = { env = \"MUSTER_ALERT_WEBHOOK\" } } (or an [alerts] section)";

/// Reads `[alerts]`.
pub(crate) fn parse_alerts(v: &Val<'_, '_>, base: &Path) -> Result<AlertsSettings, ConfigError> {
    let t = v.table(
        &["base_url", "webhook_url", "email", "failing_after_runs"],
        EXAMPLE,
    )?;
    let bp = join(v.path, "base_url");
    let bv = t
        .get("base_url", &bp)
        .ok_or_else(|| t.missing("base_url", "\"http://muster.internal:8080\""))?;
    let base_url = bv.str("\"http://muster.internal:8080\"")?;
    if !(base_url.starts_with("http://") || base_url.starts_with("https://"))
        || base_url.contains(char::is_whitespace)
    {
        return Err(bv.error(
            "expected the http:// or https:// address people open muster's status page at, e.g. \"http://muster.internal:8080\"",
        ));
    }
    let wp = join(v.path, "webhook_url");
    let webhook_url = t
        .get("webhook_url", &wp)
        .map(|w| parse_secret(&w, base))
        .transpose()?;
    let ep = join(v.path, "email");
    let email = t
        .get("email", &ep)
        .map(|e| parse_email(&e, base))
        .transpose()?;
    if webhook_url.is_none() && email.is_none() {
        return Err(t.missing(
            "webhook_url",
            "{ env = \"MUSTER_ALERT_WEBHOOK\" } (or an [alerts.email] section): alerts need somewhere to go",
        ));
    }
    let fp = join(v.path, "failing_after_runs");
    let failing_after_runs = match t.get("failing_after_runs", &fp) {
        Some(n) => u32::try_from(n.int("3")?)
            .ok()
            .filter(|n| (1..=100).contains(n))
            .ok_or_else(|| n.error("expected a number of runs from 1 to 100"))?,
        None => FAILING_AFTER_RUNS,
    };
    Ok(AlertsSettings {
        base_url: base_url.trim_end_matches('/').to_string(),
        webhook_url,
        email,
        failing_after_runs,
    })
}

fn parse_email(v: &Val<'_, '_>, base: &Path) -> Result<EmailSettings, ConfigError> {
    let t = v.table(
        &[
            "smtp_host",
            "smtp_port",
            "tls",
            "from",
            "to",
            "username",
            "password",
        ],
        "{ smtp_host = \"smtp.example.com\", from = \"muster@example.com\", to = [\"it@example.com\"] }",
    )?;
    let k = |key: &str| join(v.path, key);
    let hp = k("smtp_host");
    let hv = t
        .get("smtp_host", &hp)
        .ok_or_else(|| t.missing("smtp_host", "\"smtp.example.com\""))?;
    let smtp_host = hv.str("\"smtp.example.com\"")?;
    if smtp_host.is_empty() || smtp_host.contains(|c: char| c.is_whitespace() || c == '/') {
        return Err(hv.error("expected a host name or address, e.g. \"smtp.example.com\""));
    }
    let tp = k("tls");
    let tls = match t.get("tls", &tp) {
        Some(m) => parse_tls(&m)?,
        None => SmtpTls::StartTls,
    };
    let pp = k("smtp_port");
    let smtp_port = match t.get("smtp_port", &pp) {
        Some(p) => u16::try_from(p.int("587")?)
            .ok()
            .filter(|p| *p > 0)
            .ok_or_else(|| p.error("expected a port from 1 to 65535"))?,
        None => tls.default_port(),
    };
    let fp = k("from");
    let from = mailbox(
        &t.get("from", &fp)
            .ok_or_else(|| t.missing("from", "\"muster <muster@example.com>\""))?,
    )?;
    let top = k("to");
    let tv = t
        .get("to", &top)
        .ok_or_else(|| t.missing("to", "[\"it@example.com\"]"))?;
    let to = parse_recipients(&tv)?;
    let up = k("username");
    let username = t
        .get("username", &up)
        .map(|u| u.str("\"muster\"").map(str::to_string))
        .transpose()?;
    let pwp = k("password");
    let password_v = t.get("password", &pwp);
    let password = password_v
        .as_ref()
        .map(|p| parse_secret(p, base))
        .transpose()?;
    match (&username, &password_v) {
        (Some(_), None) => {
            return Err(t.missing("password", "{ env = \"MUSTER_SMTP_PASSWORD\" }"));
        }
        (None, Some(p)) => {
            return Err(p.error("a `password` needs a `username`: add `username = \"muster\"`"));
        }
        (Some(_), Some(p)) if tls == SmtpTls::None => {
            return Err(p.error(
                "a password is never sent over an unencrypted connection: use `tls = \"starttls\"` or `tls = \"tls\"`, or drop the login",
            ));
        }
        _ => {}
    }
    Ok(EmailSettings {
        smtp_host: smtp_host.to_string(),
        smtp_port,
        tls,
        from,
        to,
        username,
        password,
    })
}

fn parse_tls(v: &Val<'_, '_>) -> Result<SmtpTls, ConfigError> {
    let s = v.str("\"starttls\"")?;
    match s {
        "starttls" => Ok(SmtpTls::StartTls),
        "tls" => Ok(SmtpTls::Tls),
        "none" => Ok(SmtpTls::None),
        other => {
            let hint = closest(other, SmtpTls::NAMES)
                .map(|c| format!("did you mean `{c}`? "))
                .unwrap_or_default();
            Err(v.error(format!(
                "unknown mode `{other}`; {hint}expected one of {}",
                SmtpTls::NAMES.join(", ")
            )))
        }
    }
}

fn parse_recipients(v: &Val<'_, '_>) -> Result<Vec<Mailbox>, ConfigError> {
    let items = v.array("[\"it@example.com\"]")?;
    if items.is_empty() {
        return Err(v.error("list at least one recipient, e.g. `to = [\"it@example.com\"]`"));
    }
    items
        .iter()
        .map(|(path, value)| {
            mailbox(&Val {
                doc: v.doc,
                path,
                value,
            })
        })
        .collect()
}

/// An address, `muster@example.com` or `muster <muster@example.com>`.
fn mailbox(v: &Val<'_, '_>) -> Result<Mailbox, ConfigError> {
    let s = v.str("\"muster@example.com\"")?;
    s.parse::<Mailbox>().map_err(|e| {
        v.error(format!(
            "`{s}` is not an email address ({e}); write e.g. \"it@example.com\" or \"IT <it@example.com>\""
        ))
    })
}

#[cfg(test)]
mod tests {
    use std::path::Path;

    use crate::config::{Config, ConfigError};

    use super::*;

    const HEAD: &str = "tenant = { name = \"acme\", timezone = \"UTC\", state = \"m.db\" }\n";

    fn parse(alerts: &str) -> Result<Option<AlertsSettings>, ConfigError> {
        Config::parse(
            &format!("{HEAD}{alerts}"),
            Path::new("muster.toml"),
            Path::new("/etc/muster"),
        )
        .map(|c| c.alerts)
    }

    fn err(alerts: &str) -> (String, (usize, usize), String) {
        let e = parse(alerts).unwrap_err();
        (
            e.key().unwrap_or_default().to_string(),
            e.line_col().unwrap_or_default(),
            e.to_string(),
        )
    }

    #[test]
    fn a_full_section_is_read_with_defaults() {
        let a = parse(
            "[alerts]\nbase_url = \"http://muster.internal:8080/\"\nwebhook_url = { env = \"HOOK\" }\n\
             [alerts.email]\nsmtp_host = \"smtp.example.com\"\nfrom = \"muster <m@example.com>\"\n\
             to = [\"it@example.com\", \"B <b@example.com>\"]\nusername = \"m\"\npassword = { file = \"pw\" }\n",
        )
        .unwrap()
        .unwrap();
        assert_eq!(a.base_url, "http://muster.internal:8080");
        assert_eq!(a.webhook_url, Some(SecretSource::Env("HOOK".into())));
        assert_eq!(a.failing_after_runs, FAILING_AFTER_RUNS);
        let e = a.email.unwrap();
        assert_eq!((e.tls, e.smtp_port), (SmtpTls::StartTls, 587));
        assert_eq!(e.to.len(), 2);
        assert_eq!(e.to[1].email.to_string(), "b@example.com");
        assert_eq!(
            e.password,
            Some(SecretSource::File("/etc/muster/pw".into()))
        );
        assert_eq!(parse("").unwrap(), None);
    }

    #[test]
    fn mistakes_name_the_key_and_where_it_is() {
        let (key, at, msg) =
            err("[alerts]\nbase_url = \"http://x\"\nwebhok_url = { env = \"H\" }\n");
        assert_eq!((key.as_str(), at), ("alerts.webhok_url", (4, 1)));
        assert!(msg.contains("did you mean `webhook_url`?"), "{msg}");

        let (key, _, msg) = err(
            "[alerts]\nbase_url = \"http://x\"\nwebhook_url = \"https://hooks.slack.com/T/B/tok\"\n",
        );
        assert_eq!(key, "alerts.webhook_url");
        assert!(
            msg.contains("never inline") && !msg.contains("tok"),
            "{msg}"
        );

        let (key, _, msg) = err("[alerts]\nbase_url = \"http://x\"\n");
        assert_eq!(key, "alerts.webhook_url");
        assert!(msg.contains("somewhere to go"), "{msg}");

        let (key, at, _) =
            err("[alerts]\nbase_url = \"muster.internal\"\nwebhook_url = { env = \"H\" }\n");
        assert_eq!((key.as_str(), at), ("alerts.base_url", (3, 12)));

        let (key, _, msg) = err(
            "[alerts]\nbase_url = \"http://x\"\nfailing_after_runs = 0\nwebhook_url = { env = \"H\" }\n",
        );
        assert_eq!(key, "alerts.failing_after_runs");
        assert!(msg.contains("1 to 100"), "{msg}");
    }

    #[test]
    fn email_mistakes_name_the_key() {
        let email = |rest: &str| {
            err(&format!(
                "[alerts]\nbase_url = \"http://x\"\n[alerts.email]\nsmtp_host = \"h\"\nfrom = \"m@example.com\"\n{rest}"
            ))
        };
        let (key, at, msg) = email("to = [\"it@example.com\", \"not an address\"]\n");
        assert_eq!((key.as_str(), at), ("alerts.email.to[1]", (7, 25)));
        assert!(msg.contains("not an address"), "{msg}");
        let (key, _, _) = email("to = []\n");
        assert_eq!(key, "alerts.email.to");
        let (key, _, msg) = email("to = [\"a@b.c\"]\ntls = \"starttsl\"\n");
        assert_eq!(key, "alerts.email.tls");
        assert!(msg.contains("did you mean `starttls`?"), "{msg}");
        let (key, _, msg) = email(
            "to = [\"a@b.c\"]\ntls = \"none\"\nusername = \"u\"\npassword = { env = \"P\" }\n",
        );
        assert_eq!(key, "alerts.email.password");
        assert!(msg.contains("unencrypted"), "{msg}");
        let (key, _, _) = email("to = [\"a@b.c\"]\nusername = \"u\"\n");
        assert_eq!(key, "alerts.email.password");
        let (key, _, _) = email("to = [\"a@b.c\"]\nsmtp_port = 70000\n");
        assert_eq!(key, "alerts.email.smtp_port");
        let (key, _, _) = email("");
        assert_eq!(key, "alerts.email.to");
    }
}
