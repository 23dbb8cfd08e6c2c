//! The `http` import end to end: a real fixture component, the real
//! `muster-outbound` policy, real HTTP on 127.0.0.1 (tiny_http).

mod common;

use std::sync::mpsc;
use std::thread;

use common::*;
use muster::runtime::{ConnectorError, MemoryLog};
use muster_outbound::Credential;

const SECRET: &str = "s3cr3t-Ab9-never-in-the-guest";

/// A one-shot server: answers one request, reports what it received.
fn serve_once(status: u16, body: &'static str) -> (String, mpsc::Receiver<Vec<(String, String)>>) {
    let server = tiny_http::Server::http("127.0.0.1:0").expect("listener");
    let port = server.server_addr().to_ip().expect("ip").port();
    let (tx, rx) = mpsc::channel();
    thread::spawn(move || {
        if let Ok(request) = server.recv() {
            let headers = request
                .headers()
                .iter()
                .map(|h| {
                    (
                        h.field.as_str().as_str().to_ascii_lowercase(),
                        h.value.as_str().to_owned(),
                    )
                })
                .collect();
            let _ = tx.send(headers);
            let response = tiny_http::Response::from_string(body)
                .with_status_code(status)
                .with_header(tiny_http::Header::from_bytes("x-vendor", "acme").expect("header"));
            let _ = request.respond(response);
        }
    });
    (format!("http://127.0.0.1:{port}"), rx)
}

/// The plugin against a real `Outbound` holding one secret, in slot `slot`.
fn instance_with_outbound(
    plugin_path: std::path::PathBuf,
    tenant_hosts: &[&str],
    slot: &str,
    allow_loopback: bool,
) -> (muster::runtime::PluginInstance, MemoryLog) {
    common::instance_with_outbound(
        &runtime(config()),
        plugin_path,
        tenant_hosts,
        vec![Credential::new(slot, SECRET)],
        allow_loopback,
    )
}

/// What a scripted server saw: path and lower-cased headers of each request.
type Seen = (String, Vec<(String, String)>);

/// A server answering the scripted `(status, location)` responses in order.
fn serve_script(script: Vec<(u16, Option<String>)>) -> (String, mpsc::Receiver<Seen>) {
    let server = tiny_http::Server::http("127.0.0.1:0").expect("listener");
    let port = server.server_addr().to_ip().expect("ip").port();
    let (tx, rx) = mpsc::channel();
    thread::spawn(move || {
        for (status, location) in script {
            let Ok(request) = server.recv() else { return };
            let headers = request
                .headers()
                .iter()
                .map(|h| {
                    (
                        h.field.as_str().as_str().to_ascii_lowercase(),
                        h.value.as_str().to_owned(),
                    )
                })
                .collect();
            let _ = tx.send((request.url().to_owned(), headers));
            let mut response = tiny_http::Response::from_string("{}").with_status_code(status);
            if let Some(location) = location {
                response.add_header(
                    tiny_http::Header::from_bytes("location", location.as_bytes()).expect("header"),
                );
            }
            let _ = request.respond(response);
        }
    });
    (format!("http://127.0.0.1:{port}"), rx)
}

fn authorization(headers: &[(String, String)]) -> Option<&str> {
    headers
        .iter()
        .find(|(k, _)| k == "authorization")
        .map(|(_, v)| v.as_str())
}

#[test]
fn redirect_on_the_granted_origin_is_followed_with_a_new_checked_request() {
    let (base, seen) = serve_script(vec![(302, Some("/v2/ping".into())), (200, None)]);
    let (mut good, _log) = instance_with_outbound(
        muster::plugins::fixture_good(),
        &["http://127.0.0.1:*"],
        "token",
        true,
    );
    good.configure(&settings(&[("url", &format!("{base}/v1/ping"))]))
        .unwrap();
    good.check().expect("redirect followed");
    let (first, h1) = seen.recv().unwrap();
    let (second, h2) = seen.recv().unwrap();
    assert_eq!((first.as_str(), second.as_str()), ("/v1/ping", "/v2/ping"));
    // Same origin: the host injected the credential into both requests.
    assert_eq!(
        authorization(&h1),
        Some(format!("Bearer {SECRET}").as_str())
    );
    assert_eq!(
        authorization(&h2),
        Some(format!("Bearer {SECRET}").as_str())
    );
}

#[test]
fn redirect_to_a_denied_host_is_refused_by_the_host() {
    let (base, seen) = serve_script(vec![(
        302,
        Some("http://not-granted.example.com/steal".into()),
    )]);
    let (mut good, _log) = instance_with_outbound(
        muster::plugins::fixture_good(),
        &["http://127.0.0.1:*"],
        "token",
        true,
    );
    good.configure(&settings(&[("url", &format!("{base}/ping"))]))
        .unwrap();
    let err = good.check().unwrap_err();
    assert!(
        matches!(err.connector_error(), Some(ConnectorError::Forbidden(why)) if why.contains("not-granted.example.com")),
        "{err:?}"
    );
    assert_eq!(seen.recv().unwrap().0, "/ping");
}

#[test]
fn redirect_to_another_granted_origin_drops_the_credential() {
    let (target, seen_target) = serve_script(vec![(200, None)]);
    let (base, seen) = serve_script(vec![(307, Some(format!("{target}/elsewhere")))]);
    let (mut good, _log) = instance_with_outbound(
        muster::plugins::fixture_good(),
        &["http://127.0.0.1:*"],
        "token",
        true,
    );
    good.configure(&settings(&[("url", &format!("{base}/ping"))]))
        .unwrap();
    good.check().expect("redirect followed");
    assert!(authorization(&seen.recv().unwrap().1).is_some());
    let (path, headers) = seen_target.recv().unwrap();
    assert_eq!(path, "/elsewhere");
    assert_eq!(
        authorization(&headers),
        None,
        "credential must not follow a cross-origin redirect"
    );
}

#[test]
fn secret_is_injected_by_the_host_and_never_seen_by_the_guest_or_logged() {
    let (base, received) = serve_once(200, r#"{"vendor":"reply"}"#);
    let (mut sniffer, log) = instance_with_outbound(
        muster::plugins::fixture_misbehave(),
        &["http://127.0.0.1:*"],
        "api-key",
        true,
    );
    sniffer
        .configure(&settings(&[
            ("mode", "sniff"),
            ("url", &format!("{base}/echo")),
        ]))
        .unwrap();
    sniffer.check().expect("sniffer request succeeds");

    // The vendor got the credential, rendered from the slot's template…
    let headers = received.recv().expect("server saw the request");
    let auth = headers
        .iter()
        .find(|(k, _)| k == "authorization")
        .map(|(_, v)| v.as_str());
    assert_eq!(auth, Some(format!("Bearer {SECRET}").as_str()));
    assert!(headers.iter().any(|(k, v)| k == "x-probe" && v == "1"));

    // …while the guest, which logged every header, setting, env var and body
    // it could see, never had it.
    let lines = log.lines();
    let messages: Vec<&str> = lines.iter().map(|l| l.message.as_str()).collect();
    assert!(
        messages
            .iter()
            .any(|m| m.contains("request header x-probe: 1")),
        "{messages:#?}"
    );
    assert!(
        messages
            .iter()
            .any(|m| m.contains("response header x-vendor: acme")),
        "{messages:#?}"
    );
    assert!(
        messages
            .iter()
            .any(|m| m.contains(r#"response body {"vendor":"reply"}"#)),
        "{messages:#?}"
    );
    assert!(
        !messages
            .iter()
            .any(|m| m.to_ascii_lowercase().contains("authorization")),
        "{messages:#?}"
    );
    for line in &lines {
        assert!(
            !line.message.contains(SECRET),
            "secret leaked into a log line: {line:?}"
        );
        assert_eq!(
            line.plugin, "conn",
            "lines are attributed to the connection"
        );
    }
}

#[test]
fn request_to_a_non_granted_host_is_a_typed_forbidden_error() {
    let (mut bad, _log) = instance_with_outbound(
        muster::plugins::fixture_misbehave(),
        &["http://127.0.0.1:*"],
        "api-key",
        true,
    );
    bad.configure(&settings(&[("mode", "deny")])).unwrap();
    let err = bad.check().unwrap_err();
    match err.connector_error() {
        Some(ConnectorError::Forbidden(why)) => {
            assert!(why.contains("not-granted.example.com"), "{why}");
            assert!(!why.contains(SECRET));
        }
        other => panic!("expected forbidden, got {other:?} ({err})"),
    }
}

#[test]
fn loopback_is_refused_unless_the_tenant_opts_in() {
    let (base, received) = serve_once(200, "{}");
    let (mut good, _log) = instance_with_outbound(
        muster::plugins::fixture_good(),
        &["http://127.0.0.1:*"],
        "token",
        false,
    );
    good.configure(&settings(&[("url", &format!("{base}/ping"))]))
        .unwrap();
    let err = good.check().unwrap_err();
    assert!(
        matches!(err.connector_error(), Some(ConnectorError::Forbidden(_))),
        "{err:?}"
    );
    assert!(received.try_recv().is_err(), "nothing was sent");
}

#[test]
fn tenant_config_narrows_the_manifest_grant() {
    let (base, received) = serve_once(200, "{}");
    // The manifest asks for 127.0.0.1 on any port; the tenant grants one other port only.
    let (mut good, _log) = instance_with_outbound(
        muster::plugins::fixture_good(),
        &["http://127.0.0.1:1"],
        "token",
        true,
    );
    good.configure(&settings(&[("url", &format!("{base}/ping"))]))
        .unwrap();
    let err = good.check().unwrap_err();
    assert!(
        matches!(err.connector_error(), Some(ConnectorError::Forbidden(_))),
        "{err:?}"
    );
    assert!(received.try_recv().is_err(), "nothing was sent");
}

#[test]
fn vendor_statuses_become_typed_connector_errors() {
    let (base, _received) = serve_once(403, "missing permission Coworkers > Manage users");
    let (mut good, _log) = instance_with_outbound(
        muster::plugins::fixture_good(),
        &["http://127.0.0.1:*"],
        "token",
        true,
    );
    good.configure(&settings(&[("url", &format!("{base}/api/v3/users"))]))
        .unwrap();
    let err = good.check().unwrap_err();
    assert!(
        matches!(err.connector_error(), Some(ConnectorError::Forbidden(why)) if why.contains("Manage users")),
        "{err:?}"
    );
}
