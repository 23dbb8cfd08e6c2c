//! The operator's grant, enforced per plugin: loopback only for the plugin whose own grant
//! allows it, plain `http://` only to loopback, no credential slot that steers a request, and
//! no secret handed back to a plugin when an upstream echoes it.

mod common;

use common::*;
use muster_outbound::{
    Credential, CredentialSlot, Outbound, OutboundError, PluginPolicy, Policy, PolicyError, Request,
};

const SECRET: &str = "Gr4nt-s3cr3t/key+Q=";

/// `loopback_policy` without the process-wide loopback switch: each plugin decides.
fn per_plugin_policy() -> Policy {
    Policy {
        allow_loopback: false,
        ..loopback_policy("unused", &[])
    }
}

#[test]
fn loopback_granted_to_one_plugin_is_not_granted_to_another() {
    let server = TestServer::start(|_| Reply::ok("hello"));
    let sandbox = PluginPolicy {
        allow_loopback: true,
        ..grant(&[server.origin()])
    };
    // Same origin in its allow-list, but its connection did not allow loopback.
    let other = grant(&[server.origin()]);
    let out = Outbound::new(
        per_plugin_policy()
            .with_plugin("sandbox", sandbox)
            .with_plugin("other", other),
    )
    .unwrap();

    let ok = out
        .send("sandbox", Request::new("GET", server.url("/a")))
        .unwrap();
    assert_eq!(ok.status, 200);
    let err = out
        .send("other", Request::new("GET", server.url("/b")))
        .unwrap_err();
    assert!(
        matches!(err, OutboundError::AddressRefused { ref plugin, .. } if plugin == "other"),
        "{err:?}"
    );
    // By name too: `localhost` is resolved and refused by the resolver, not only literals.
    let by_name = format!("http://localhost:{}/c", server.port);
    let localhost_grant = grant(&[pat(&format!("http://localhost:{}", server.port))]);
    out.set_plugin("named", localhost_grant).unwrap();
    let err = out.send("named", Request::new("GET", by_name)).unwrap_err();
    assert!(
        matches!(err, OutboundError::AddressRefused { .. }),
        "{err:?}"
    );
    let hits = server.hits();
    assert_eq!(
        hits.len(),
        1,
        "only the sandbox plugin got through: {hits:?}"
    );
    assert_eq!(hits[0].path, "/a");
    assert!(out.allows_loopback("sandbox"));
    assert!(!out.allows_loopback("other"));
}

#[test]
fn plain_http_is_refused_for_any_host_but_loopback() {
    let err = Outbound::new(
        per_plugin_policy().with_plugin("scim", grant(&[pat("http://scim.example.com")])),
    )
    .unwrap_err();
    assert_eq!(
        err,
        PolicyError::PlainHttp {
            plugin: "scim".into(),
            pattern: "http://scim.example.com".into()
        }
    );
    assert!(err.to_string().contains("use https://"), "{err}");
    // Loopback over http, and https anywhere, are fine.
    for ok in [
        "http://127.0.0.1:*",
        "http://localhost:8080",
        "https://scim.example.com",
    ] {
        Outbound::new(per_plugin_policy().with_plugin("scim", grant(&[pat(ok)])))
            .unwrap_or_else(|e| panic!("{ok}: {e}"));
    }
}

#[test]
fn a_slot_header_that_steers_the_request_is_refused_when_the_plugin_loads() {
    for header in [
        "Host",
        "Connection",
        "Content-Length",
        "Transfer-Encoding",
        "Proxy-Authorization",
        "Proxy-Whatever",
        "Cookie",
        "cookie",
    ] {
        let plugin = PluginPolicy {
            slots: vec![CredentialSlot::new("key", header, "{secret}")],
            credentials: vec![Credential::new("key", SECRET)],
            ..grant(&[pat("https://api.example.com")])
        };
        let err = Outbound::new(per_plugin_policy().with_plugin("hostile", plugin)).unwrap_err();
        assert_eq!(
            err,
            PolicyError::SteeringSlotHeader {
                plugin: "hostile".into(),
                slot: "key".into(),
                header: header.into(),
            },
            "{header}"
        );
        assert!(!err.to_string().contains("s3cr3t"), "{err}");
    }
    // An ordinary authentication header is accepted.
    let fine = PluginPolicy {
        slots: vec![CredentialSlot::new("key", "X-Api-Key", "{secret}")],
        ..grant(&[pat("https://api.example.com")])
    };
    Outbound::new(per_plugin_policy().with_plugin("fine", fine)).unwrap();
}

#[test]
fn an_echoed_secret_is_replaced_before_the_plugin_sees_the_response() {
    // A debug endpoint that reflects the Authorization header in a header and the body.
    let echo = TestServer::start(|hit| {
        let auth = hit.header("authorization").unwrap_or_default().to_owned();
        Reply::ok(format!("{{\"you_sent\":\"{auth}\"}}")).header("X-Echo", &auth)
    });
    let plugin = PluginPolicy {
        slots: vec![lucca_slot()],
        credentials: vec![Credential::new("lucca", SECRET)],
        allow_loopback: true,
        ..grant(&[echo.origin()])
    };
    let out = Outbound::new(per_plugin_policy().with_plugin("lucca", plugin)).unwrap();
    let resp = out
        .send(
            "lucca",
            Request::new("GET", echo.url("/me")).credential("lucca"),
        )
        .unwrap();

    // The upstream did receive the credential…
    let hits = echo.hits();
    assert_eq!(
        hits[0].header("authorization"),
        Some(format!("lucca application={SECRET}").as_str())
    );
    // …and the plugin gets it back only as `***`.
    let body = String::from_utf8(resp.body).unwrap();
    assert_eq!(body, "{\"you_sent\":\"lucca application=***\"}");
    assert_eq!(
        resp.headers
            .iter()
            .find(|(n, _)| n == "x-echo")
            .map(|(_, v)| v.as_str()),
        Some("lucca application=***")
    );
    for (n, v) in &resp.headers {
        assert!(!v.contains("s3cr3t"), "header {n} leaks: {v}");
    }
}

#[test]
fn a_credential_travels_only_to_its_own_plugins_granted_origins() {
    let mine = TestServer::start(|_| Reply::ok("mine"));
    let theirs = TestServer::start(|_| Reply::ok("theirs"));
    let owner = PluginPolicy {
        slots: vec![lucca_slot()],
        credentials: vec![Credential::new("lucca", SECRET)],
        allow_loopback: true,
        ..grant(&[mine.origin()])
    };
    let other = PluginPolicy {
        allow_loopback: true,
        ..grant(&[theirs.origin()])
    };
    let out = Outbound::new(
        per_plugin_policy()
            .with_plugin("owner", owner)
            .with_plugin("other", other),
    )
    .unwrap();
    // The owner points its credential at another plugin's (loopback) server: denied.
    let err = out
        .send(
            "owner",
            Request::new("GET", theirs.url("/")).credential("lucca"),
        )
        .unwrap_err();
    assert!(matches!(err, OutboundError::Denied { .. }), "{err:?}");
    // The other plugin names the owner's slot: it has no such slot.
    let err = out
        .send(
            "other",
            Request::new("GET", theirs.url("/")).credential("lucca"),
        )
        .unwrap_err();
    assert!(matches!(err, OutboundError::Invalid { .. }), "{err:?}");
    assert_eq!(theirs.count(), 0, "no request reached the other server");
    // To its own granted origin, it is injected.
    out.send(
        "owner",
        Request::new("GET", mine.url("/")).credential("lucca"),
    )
    .unwrap();
    let hits = mine.hits();
    assert_eq!(
        hits[0].header("authorization"),
        Some(format!("lucca application={SECRET}").as_str())
    );
}
