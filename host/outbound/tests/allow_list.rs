//! Allow-list, address and redirect behaviour, against real loopback servers.

mod common;

use common::*;
use muster_outbound::{HostPattern, Outbound, OutboundError, PluginPolicy, Policy, Request};

const PLUGIN: &str = "lucca";

fn outbound(policy: Policy) -> Outbound {
    Outbound::new(policy).expect("valid policy")
}

#[test]
fn outbound_is_send_and_sync() {
    fn assert_send_sync<T: Send + Sync>() {}
    assert_send_sync::<Outbound>();
}

#[test]
fn granted_request_reaches_the_server_with_method_headers_and_body() {
    let server = TestServer::start(|hit| {
        Reply::ok(format!("{} {}", hit.method, hit.path)).header("X-Answer", "42")
    });
    let out = outbound(loopback_policy(PLUGIN, &[server.origin()]));

    let resp = out
        .send(
            PLUGIN,
            Request::new("POST", server.url("/api/v3/users?contract=true"))
                .header("Content-Type", "application/json")
                .body(&b"{\"a\":1}"[..]),
        )
        .unwrap();
    assert_eq!(resp.status, 200);
    assert_eq!(resp.body, b"POST /api/v3/users?contract=true");
    assert_eq!(resp.header("x-answer"), Some("42"));

    let hit = &server.hits()[0];
    assert_eq!(hit.header("content-type"), Some("application/json"));
    assert_eq!(hit.body, b"{\"a\":1}");
}

#[test]
fn request_outside_the_grant_is_denied_without_reaching_anyone() {
    let granted = TestServer::start(|_| Reply::ok("granted"));
    let other = TestServer::start(|_| Reply::ok("other"));
    let out = outbound(loopback_policy(PLUGIN, &[granted.origin()]));

    for url in [
        other.url("/"),                                 // same host, other port
        format!("https://127.0.0.1:{}/", granted.port), // other scheme
        "http://example.com/".to_owned(),               // other host
    ] {
        let err = out.send(PLUGIN, Request::new("GET", &url)).unwrap_err();
        let OutboundError::Denied { url: u, reason, .. } = &err else {
            panic!("{url}: expected Denied, got {err:?}");
        };
        assert_eq!(u, &url);
        assert!(reason.contains("allow-list"), "{reason}");
    }
    assert_eq!(other.count(), 0);
    assert_eq!(granted.count(), 0);
}

#[test]
fn unknown_plugin_and_non_http_schemes_are_denied() {
    let server = TestServer::start(|_| Reply::ok(""));
    let out = outbound(loopback_policy(PLUGIN, &[server.origin()]));
    let err = out
        .send("someone-else", Request::new("GET", server.url("/")))
        .unwrap_err();
    assert!(matches!(err, OutboundError::Denied { .. }), "{err:?}");
    let err = out
        .send(PLUGIN, Request::new("GET", "file:///etc/passwd"))
        .unwrap_err();
    assert!(matches!(err, OutboundError::Denied { .. }), "{err:?}");
    assert_eq!(server.count(), 0);
}

#[test]
fn effective_grant_is_manifest_intersected_with_tenant_config() {
    let a = TestServer::start(|_| Reply::ok("a"));
    let b = TestServer::start(|_| Reply::ok("b"));
    // The manifest asks for any loopback port; the tenant grants only server A's.
    let policy = loopback_policy(PLUGIN, &[]).with_plugin(
        PLUGIN,
        PluginPolicy {
            manifest_hosts: vec![pat("http://127.0.0.1:*")],
            tenant_hosts: vec![a.origin(), pat("https://acme.ilucca.net")],
            ..PluginPolicy::default()
        },
    );
    let out = outbound(policy);
    assert_eq!(out.effective_hosts(PLUGIN), vec![a.origin()]);

    assert_eq!(
        out.send(PLUGIN, Request::new("GET", a.url("/")))
            .unwrap()
            .body,
        b"a"
    );
    let err = out
        .send(PLUGIN, Request::new("GET", b.url("/")))
        .unwrap_err();
    assert!(matches!(err, OutboundError::Denied { .. }), "{err:?}");
    // Granted by the tenant, not asked for by the manifest: still denied.
    let err = out
        .send(PLUGIN, Request::new("GET", "https://acme.ilucca.net/api"))
        .unwrap_err();
    assert!(matches!(err, OutboundError::Denied { .. }), "{err:?}");
    assert_eq!(b.count(), 0);
}

#[test]
fn redirect_is_returned_to_the_caller_not_followed() {
    let target = TestServer::start(|_| Reply::ok("target"));
    let target_url = target.url("/landing");
    let redirector = TestServer::start(move |_| Reply::status(302).header("Location", &target_url));
    // Both granted: the redirect is still not followed automatically.
    let out = outbound(loopback_policy(
        PLUGIN,
        &[redirector.origin(), target.origin()],
    ));

    let resp = out
        .send(PLUGIN, Request::new("GET", redirector.url("/")))
        .unwrap();
    assert_eq!(resp.status, 302);
    assert_eq!(
        resp.header("location"),
        Some(target.url("/landing").as_str())
    );
    assert_eq!(target.count(), 0);
}

#[test]
fn redirect_to_a_denied_host_is_not_followed_and_following_it_is_rechecked() {
    let denied = TestServer::start(|_| Reply::ok("secret internal data"));
    let denied_url = denied.url("/admin");
    let redirector = TestServer::start(move |_| Reply::status(307).header("Location", &denied_url));
    let out = outbound(loopback_policy(PLUGIN, &[redirector.origin()]));

    let resp = out
        .send(PLUGIN, Request::new("POST", redirector.url("/")).body("x"))
        .unwrap();
    assert_eq!(resp.status, 307);
    // The guest follows the redirect with a new request: checked like any other.
    let location = resp.header("location").unwrap().to_owned();
    let err = out
        .send(PLUGIN, Request::new("POST", location))
        .unwrap_err();
    assert!(matches!(err, OutboundError::Denied { .. }), "{err:?}");
    assert_eq!(denied.count(), 0);
}

#[test]
fn granted_name_resolving_to_loopback_is_refused_without_opt_in() {
    let server = TestServer::start(|_| Reply::ok("should not be reached"));
    let mut policy = loopback_policy(
        PLUGIN,
        &[
            pat(&format!("http://localhost:{}", server.port)),
            server.origin(),
        ],
    );
    policy.allow_loopback = false;
    let out = outbound(policy);

    // A name: refused after resolution, by the resolver.
    let err = out
        .send(
            PLUGIN,
            Request::new("GET", format!("http://localhost:{}/", server.port)),
        )
        .unwrap_err();
    match &err {
        OutboundError::AddressRefused { addr, reason, .. } => {
            assert!(addr.is_loopback(), "{addr}");
            assert!(reason.contains("loopback"), "{reason}");
        }
        other => panic!("expected AddressRefused, got {other:?}"),
    }
    // An IP literal: refused before any socket exists.
    let err = out
        .send(PLUGIN, Request::new("GET", server.url("/")))
        .unwrap_err();
    assert!(
        matches!(err, OutboundError::AddressRefused { .. }),
        "{err:?}"
    );
    assert_eq!(server.count(), 0);
}

#[test]
fn loopback_name_works_when_opted_in() {
    let server = TestServer::start(|_| Reply::ok("hello"));
    let out = outbound(loopback_policy(
        PLUGIN,
        &[pat(&format!("http://localhost:{}", server.port))],
    ));
    // `localhost` may resolve to ::1 first while the server listens on 127.0.0.1 only;
    // ureq tries every resolved address, so this still reaches it.
    let resp = out
        .send(
            PLUGIN,
            Request::new("GET", format!("http://localhost:{}/", server.port)),
        )
        .unwrap();
    assert_eq!(resp.body, b"hello");
}

/// Private and metadata literals are refused even with loopback allowed, before connecting:
/// no packet is ever sent to these addresses (the check runs before the client is called).
#[test]
fn private_and_metadata_ip_literals_are_refused_even_with_loopback_allowed() {
    let cases = [
        ("https://10.0.0.1/", "10.0.0.1"),
        (
            "https://169.254.169.254/latest/meta-data/",
            "169.254.169.254",
        ),
        ("https://[fd00:ec2::254]/", "fd00:ec2::254"),
        ("https://192.168.1.1:8080/", "192.168.1.1"),
        ("https://100.64.0.1/", "100.64.0.1"),
        ("https://[::ffff:10.0.0.1]/", "::ffff:10.0.0.1"),
    ];
    let hosts: Vec<_> = [
        "https://10.0.0.1",
        "https://169.254.169.254",
        "https://[fd00:ec2::254]",
        "https://192.168.1.1:8080",
        "https://100.64.0.1",
        "https://[::ffff:a00:1]",
    ]
    .iter()
    .map(|s| pat(s))
    .collect();
    let policy = loopback_policy(PLUGIN, &hosts);
    // Zero retries and a tiny connect timeout: should the check ever regress, nothing waits.
    let out = outbound(Policy {
        retry: muster_outbound::RetryPolicy::none(),
        ..policy
    });
    for (url, ip) in cases {
        let err = out.send(PLUGIN, Request::new("GET", url)).unwrap_err();
        match &err {
            OutboundError::AddressRefused { addr, .. } => assert_eq!(addr.to_string(), ip),
            other => panic!("{url}: expected AddressRefused, got {other:?}"),
        }
    }
}

#[test]
fn connection_level_headers_and_user_info_are_refused() {
    let server = TestServer::start(|_| Reply::ok(""));
    let out = outbound(loopback_policy(PLUGIN, &[server.origin()]));
    for (n, v) in [
        ("Host", "other-tenant.ilucca.net"),
        ("Transfer-Encoding", "chunked"),
        ("Proxy-Authorization", "Basic x"),
    ] {
        let err = out
            .send(PLUGIN, Request::new("GET", server.url("/")).header(n, v))
            .unwrap_err();
        assert!(matches!(err, OutboundError::Invalid { .. }), "{n}: {err:?}");
    }
    let err = out
        .send(
            PLUGIN,
            Request::new("GET", format!("http://u:p@127.0.0.1:{}/", server.port)),
        )
        .unwrap_err();
    assert!(matches!(err, OutboundError::Invalid { .. }), "{err:?}");
    let err = out
        .send(PLUGIN, Request::new("TRACE", server.url("/")))
        .unwrap_err();
    assert!(matches!(err, OutboundError::Invalid { .. }), "{err:?}");
    assert_eq!(server.count(), 0);
}

/// The URL parser normalises odd IPv4 spellings before both the allow-list and the address
/// check see them, so `http://167772161/` is judged as 10.0.0.1, not as a name.
#[test]
fn odd_ipv4_spellings_are_normalised_before_checking() {
    let out = outbound(Policy {
        retry: muster_outbound::RetryPolicy::none(),
        ..loopback_policy(
            PLUGIN,
            &[pat("https://10.0.0.1"), pat("http://127.0.0.1:*")],
        )
    });
    for url in ["https://167772161/", "https://0x0a.0.0.1/", "https://10.1/"] {
        let err = out.send(PLUGIN, Request::new("GET", url)).unwrap_err();
        assert!(
            matches!(&err, OutboundError::AddressRefused { addr, .. } if addr.to_string() == "10.0.0.1"),
            "{url}: {err:?}"
        );
    }
    // Not granted at all: denied before the address is even considered.
    let err = out
        .send(
            PLUGIN,
            Request::new("GET", "https://0xa9fea9fe/latest/meta-data/"),
        )
        .unwrap_err();
    assert!(matches!(err, OutboundError::Denied { .. }), "{err:?}");
}

#[test]
fn local_hosts_stand_in_for_the_manifest_only_for_loopback() {
    let sim = TestServer::start(|_| Reply::ok("sim"));
    // A Lucca-like manifest that knows nothing of loopback; the operator points the
    // connection at a local simulator.
    let grant = |local: Vec<HostPattern>| PluginPolicy {
        manifest_hosts: vec![pat("https://*.ilucca.net")],
        tenant_hosts: vec![pat("https://acme.ilucca.net")],
        local_hosts: local,
        ..PluginPolicy::default()
    };
    let out = outbound(loopback_policy(PLUGIN, &[]).with_plugin(PLUGIN, grant(vec![sim.origin()])));
    let resp = out.send(PLUGIN, Request::new("GET", sim.url("/"))).unwrap();
    assert_eq!(resp.body, b"sim");

    // Without the global loopback opt-in the address check still refuses it.
    let strict =
        Outbound::new(Policy::default().with_plugin(PLUGIN, grant(vec![sim.origin()]))).unwrap();
    let err = strict
        .send(PLUGIN, Request::new("GET", sim.url("/")))
        .unwrap_err();
    assert!(
        matches!(err, OutboundError::AddressRefused { .. }),
        "{err:?}"
    );
    assert_eq!(sim.count(), 1);

    // A non-loopback host cannot be smuggled in through `local_hosts`.
    let err = Outbound::new(
        Policy::default().with_plugin(PLUGIN, grant(vec![pat("https://evil.example")])),
    )
    .unwrap_err();
    assert!(err.to_string().contains("only loopback"), "{err}");
}
