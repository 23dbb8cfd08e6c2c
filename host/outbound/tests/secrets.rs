//! Credentials are injected by the host; secrets never reach an error, a log line or `Debug`.

mod common;

use std::io::Write;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use common::*;
use muster_outbound::{
    Credential, CredentialSlot, Outbound, OutboundError, PluginPolicy, Policy, Request, RetryPolicy,
};

const PLUGIN: &str = "lucca";
/// Contains characters that change under URL encoding, to test both forms.
const SECRET: &str = "Zx9-s3cr3t/key+AbC=";
const SECRET_ENCODED: &str = "Zx9-s3cr3t%2Fkey%2BAbC%3D";

fn policy_with_secret(hosts: &[muster_outbound::HostPattern]) -> Policy {
    let mut policy = loopback_policy(PLUGIN, hosts);
    let p = policy.plugins.get_mut(PLUGIN).unwrap();
    p.slots = vec![lucca_slot()];
    p.credentials = vec![Credential::new("lucca", SECRET)];
    policy
}

fn assert_clean(what: &str, text: &str) {
    assert!(!text.contains(SECRET), "{what} leaks the secret: {text}");
    assert!(
        !text.contains(SECRET_ENCODED),
        "{what} leaks the encoded secret: {text}"
    );
    assert!(
        !text.contains("Zx9-s3cr3t"),
        "{what} leaks part of the secret: {text}"
    );
}

fn assert_error_clean(err: &OutboundError) {
    assert_clean("error Display", &err.to_string());
    assert_clean("error Debug", &format!("{err:?}"));
}

#[test]
fn host_injects_the_credential_and_overwrites_the_guest_header() {
    let server = TestServer::start(|_| Reply::ok("{}"));
    let out = Outbound::new(policy_with_secret(&[server.origin()])).unwrap();
    let resp = out
        .send(
            PLUGIN,
            Request::new("GET", server.url("/api/v3/users"))
                .header("authorization", "Bearer guest-made-this-up")
                .header("Accept", "application/json")
                .credential("lucca"),
        )
        .unwrap();
    assert_eq!(resp.status, 200);
    let hit = &server.hits()[0];
    assert_eq!(
        hit.headers_named("authorization"),
        [format!("lucca application={SECRET}").as_str()]
    );
    assert_eq!(hit.header("accept"), Some("application/json"));
}

#[test]
fn without_a_slot_the_guest_header_is_sent_as_is() {
    let server = TestServer::start(|_| Reply::ok(""));
    let out = Outbound::new(policy_with_secret(&[server.origin()])).unwrap();
    out.send(
        PLUGIN,
        Request::new("GET", server.url("/")).header("Authorization", "Bearer public"),
    )
    .unwrap();
    assert_eq!(
        server.hits()[0].header("authorization"),
        Some("Bearer public")
    );
}

#[test]
fn a_secret_with_stray_spaces_is_refused_by_name_and_nothing_is_sent() {
    let server = TestServer::start(|_| Reply::ok(""));
    let mut policy = policy_with_secret(&[server.origin()]);
    // A pasted key with a stray space: refused with a message saying so, not a bare 401.
    policy.plugins.get_mut(PLUGIN).unwrap().credentials =
        vec![Credential::new("lucca", format!(" {SECRET} "))];
    let out = Outbound::new(policy).unwrap();
    let err = out
        .send(
            PLUGIN,
            Request::new("GET", server.url("/api/v3/users")).credential("lucca"),
        )
        .unwrap_err();
    assert!(matches!(err, OutboundError::Invalid { .. }), "{err:?}");
    assert!(
        err.to_string()
            .contains("the secret for slot `lucca` has leading or trailing spaces"),
        "{err}"
    );
    assert_error_clean(&err);
    assert_eq!(server.count(), 0);
}

#[test]
fn unknown_slot_or_missing_secret_is_invalid_and_nothing_is_sent() {
    let server = TestServer::start(|_| Reply::ok(""));
    let mut policy = policy_with_secret(&[server.origin()]);
    policy
        .plugins
        .get_mut(PLUGIN)
        .unwrap()
        .slots
        .push(CredentialSlot::new(
            "scim",
            "Authorization",
            "Bearer {secret}",
        ));
    let out = Outbound::new(policy).unwrap();
    for slot in ["nope", "scim"] {
        let err = out
            .send(
                PLUGIN,
                Request::new("GET", server.url("/")).credential(slot),
            )
            .unwrap_err();
        assert!(
            matches!(err, OutboundError::Invalid { .. }),
            "{slot}: {err:?}"
        );
    }
    assert_eq!(server.count(), 0);
}

#[test]
fn invalid_credential_config_is_rejected_without_echoing_the_secret() {
    let bad = |cred: Credential, slots: Vec<CredentialSlot>| {
        Outbound::new(Policy::default().with_plugin(
            PLUGIN,
            PluginPolicy {
                slots,
                credentials: vec![cred],
                ..PluginPolicy::default()
            },
        ))
        .unwrap_err()
    };
    let e = bad(Credential::new("other", SECRET), vec![lucca_slot()]);
    assert_clean("policy error", &e.to_string());
    let e = bad(
        Credential::new("lucca", format!("{SECRET}\r\nX-Injected: 1")),
        vec![lucca_slot()],
    );
    assert_clean("policy error", &e.to_string());
    let e = bad(
        Credential::new("lucca", SECRET),
        vec![CredentialSlot::new(
            "lucca",
            "Authorization",
            "no placeholder",
        )],
    );
    assert!(e.to_string().contains("{secret}"), "{e}");
}

#[test]
fn errors_never_contain_the_secret() {
    let slow = TestServer::start(|_| Reply::ok("").delay(Duration::from_millis(600)));
    let closed_port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let mut policy = policy_with_secret(&[
        slow.origin(),
        pat(&format!("http://127.0.0.1:{closed_port}")),
    ]);
    policy.read_timeout = Duration::from_millis(150);
    policy.retry = RetryPolicy::none();
    let out = Outbound::new(policy).unwrap();

    // The secret in a URL (raw and encoded), to a denied host: Denied, redacted.
    for url in [
        format!("http://denied.example/?api_key={SECRET}"),
        format!("http://denied.example/?api_key={SECRET_ENCODED}"),
        format!("http://user:{SECRET_ENCODED}@denied.example/"),
    ] {
        let err = out
            .send(PLUGIN, Request::new("GET", url).credential("lucca"))
            .unwrap_err();
        assert!(
            matches!(
                err,
                OutboundError::Denied { .. } | OutboundError::Invalid { .. }
            ),
            "{err:?}"
        );
        assert_error_clean(&err);
    }
    // Granted, with the credential injected and the secret in the URL: a read timeout.
    let err = out
        .send(
            PLUGIN,
            Request::new("GET", slow.url(&format!("/x?k={SECRET_ENCODED}"))).credential("lucca"),
        )
        .unwrap_err();
    assert!(matches!(err, OutboundError::Timeout { .. }), "{err:?}");
    assert_error_clean(&err);
    // Connection refused.
    let err = out
        .send(
            PLUGIN,
            Request::new(
                "GET",
                format!("http://127.0.0.1:{closed_port}/{SECRET_ENCODED}"),
            )
            .credential("lucca"),
        )
        .unwrap_err();
    assert!(matches!(err, OutboundError::Transport { .. }), "{err:?}");
    assert_error_clean(&err);
    // A header value (which may hold anything) is never echoed in an error.
    let err = out
        .send(
            PLUGIN,
            Request::new("GET", slow.url("/")).header("X-Key", format!("{SECRET}\n")),
        )
        .unwrap_err();
    assert!(matches!(err, OutboundError::Invalid { .. }), "{err:?}");
    assert_error_clean(&err);
}

#[test]
fn debug_output_of_policy_and_outbound_never_contains_the_secret() {
    let policy = policy_with_secret(&[pat("https://acme.ilucca.net")]);
    assert_clean("Policy Debug", &format!("{policy:?}"));
    let out = Outbound::new(policy).unwrap();
    assert_clean("Outbound Debug", &format!("{out:?}"));
    assert_eq!(out.redact(&format!("echo {SECRET}")), "echo ***");
}

/// A `tracing` writer collecting everything, at every level.
#[derive(Clone, Default)]
struct Capture(Arc<Mutex<Vec<u8>>>);

impl Write for Capture {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

#[test]
fn log_lines_never_contain_the_secret_even_when_the_server_echoes_it() {
    // An upstream that echoes the Authorization header back (some debug endpoints do), and
    // fails once so the retry path logs too.
    let count = std::sync::atomic::AtomicUsize::new(0);
    let echo = TestServer::start(move |hit| {
        let auth = hit.header("authorization").unwrap_or_default().to_owned();
        if count.fetch_add(1, std::sync::atomic::Ordering::SeqCst) == 0 {
            Reply::status(503).header("X-Echo", &auth)
        } else {
            Reply::ok(format!("you sent: {auth}")).header("X-Echo", &auth)
        }
    });
    let out = Outbound::new(policy_with_secret(&[echo.origin()])).unwrap();

    let capture = Capture::default();
    let writer = capture.clone();
    let subscriber = tracing_subscriber::fmt()
        .with_max_level(tracing::Level::TRACE)
        .with_writer(move || writer.clone())
        .with_ansi(false)
        .finish();
    let resp = tracing::subscriber::with_default(subscriber, || {
        let resp = out
            .send(
                PLUGIN,
                Request::new("GET", echo.url(&format!("/?q={SECRET_ENCODED}"))).credential("lucca"),
            )
            .unwrap();
        let _ = out.send(
            PLUGIN,
            Request::new("GET", format!("http://denied.example/{SECRET}")).credential("lucca"),
        );
        let _ = out.send(
            PLUGIN,
            Request::new("GET", format!("http://localhost:1/{SECRET}")).credential("lucca"),
        );
        resp
    });

    // The response is the upstream's, except that the echoed secret is scrubbed before the
    // plugin sees it.
    assert_eq!(resp.status, 200);
    let body = String::from_utf8_lossy(&resp.body).into_owned();
    assert!(body.contains("lucca application=***"), "{body}");
    assert_clean("response body", &body);
    assert_clean("response headers", &format!("{:?}", resp.headers));

    let logs = String::from_utf8(capture.0.lock().unwrap().clone()).unwrap();
    assert!(logs.contains("outbound: retrying"), "{logs}");
    assert!(logs.contains("outbound: denied"), "{logs}");
    assert!(
        logs.contains("***"),
        "the URL secret is logged redacted: {logs}"
    );
    assert_clean("logs", &logs);
}
