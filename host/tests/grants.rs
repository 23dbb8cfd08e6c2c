//! The operator decides where a plugin may go, end to end: real config, real
//! `Host`, real hostile fixture components, real HTTP servers on loopback.
//!
//! - a third-party plugin gets no hosts the config does not list;
//! - `allow_loopback` opens loopback to its own connection only;
//! - a credential slot that steers the request refuses the plugin at load;
//! - an upstream that echoes the secret hands the plugin `***`;
//! - `muster check` prints each connection's grant and warns about a secret
//!   file others can read.

mod common;

use std::path::Path;
use std::process::Command;
use std::sync::Arc;

use muster::config::{Config, ConfigError};
use muster::connect::{ConnectError, Host};
use muster::runtime::{ConnectorError, MemoryLog};
use muster_outbound::PolicyError;

const SECRET: &str = "gr4nt-S3cret-never-in-the-guest";

/// One loopback server that records each request's path and Authorization
/// header and answers with that header echoed in a header and the body.
struct Echo {
    url: String,
    seen: std::sync::mpsc::Receiver<(String, Option<String>)>,
}

fn echo_server() -> Echo {
    let server = tiny_http::Server::http("127.0.0.1:0").expect("listener");
    let port = server.server_addr().to_ip().expect("ip").port();
    let (tx, seen) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for request in server.incoming_requests() {
            let auth = request
                .headers()
                .iter()
                .find(|h| h.field.equiv("authorization"))
                .map(|h| h.value.as_str().to_owned());
            let _ = tx.send((request.url().to_owned(), auth.clone()));
            let auth = auth.unwrap_or_default();
            let response = tiny_http::Response::from_string(format!("{{\"you_sent\":\"{auth}\"}}"))
                .with_header(tiny_http::Header::from_bytes("x-echo", auth.as_bytes()).unwrap());
            let _ = request.respond(response);
        }
    });
    Echo {
        url: format!("http://127.0.0.1:{port}"),
        seen,
    }
}

/// A config in a fresh directory; `secret.key` (0600) holds [`SECRET`].
fn world(connections: &str) -> (tempfile::TempDir, Config) {
    use std::os::unix::fs::PermissionsExt;
    let dir = tempfile::tempdir().expect("tempdir");
    let key = dir.path().join("secret.key");
    std::fs::write(&key, SECRET).unwrap();
    std::fs::set_permissions(&key, std::fs::Permissions::from_mode(0o600)).unwrap();
    let text = format!(
        "[tenant]\nname = \"t\"\ntimezone = \"Europe/Paris\"\nstate = \"state.db\"\ncache = \"{}\"\n\n{connections}",
        common::cache_dir().display()
    );
    let path = dir.path().join("muster.toml");
    std::fs::write(&path, &text).unwrap();
    let config = Config::load(&path).unwrap_or_else(|e| panic!("{e}\n{text}"));
    (dir, config)
}

fn misbehave() -> String {
    muster::plugins::fixture_misbehave().display().to_string()
}

#[test]
fn a_third_party_plugin_without_hosts_is_a_config_error() {
    let text = format!(
        "[tenant]\nname = \"t\"\ntimezone = \"UTC\"\nstate = \"s.db\"\n\n[connections.x]\nplugin = \"{}\"\n",
        misbehave()
    );
    let err = Config::parse(&text, Path::new("muster.toml"), Path::new(".")).unwrap_err();
    assert_eq!(err.key(), Some("connections.x.hosts"), "{err}");
    assert_eq!(err.line_col().map(|(l, _)| l), Some(6), "{err}");
    assert!(err.to_string().contains("third-party"), "{err}");
    // An empty list is no better.
    let empty = format!("{text}hosts = []\n");
    let err = Config::parse(&empty, Path::new("muster.toml"), Path::new(".")).unwrap_err();
    assert!(
        matches!(err, ConfigError::Invalid { ref key, .. } if key == "connections.x.hosts"),
        "{err}"
    );
    // A built-in plugin may still default to its manifest's hosts.
    let builtin = "[tenant]\nname = \"t\"\ntimezone = \"UTC\"\nstate = \"s.db\"\n\n[connections.l]\nplugin = \"lucca\"\n";
    Config::parse(builtin, Path::new("muster.toml"), Path::new(".")).unwrap();
}

/// Two hostile plugins of the same code: `sandbox` is allowed loopback;
/// `thief` lists loopback among its hosts and holds a secret, but its
/// connection did not allow loopback. Today's main let every connection
/// reach loopback as soon as one allowed it: the thief's request, secret
/// injected, reached the server.
#[test]
fn allow_loopback_opens_loopback_to_its_own_connection_only() {
    let echo = echo_server();
    let (_dir, cfg) = world(&format!(
        "[connections.sandbox]\nplugin = \"{p}\"\nhosts = [\"{u}\"]\nallow_loopback = true\nsecret = {{ file = \"secret.key\" }}\nsettings = {{ mode = \"sniff\", url = \"{u}/sandbox\" }}\n\n\
         [connections.thief]\nplugin = \"{p}\"\nhosts = [\"http://127.0.0.1:*\"]\nsecret = {{ file = \"secret.key\" }}\nsettings = {{ mode = \"sniff\", url = \"{u}/thief\" }}\n",
        p = misbehave(),
        u = echo.url
    ));
    let host = Host::new(&cfg).expect("host");
    let mut sandbox = host.connect(&cfg.connections["sandbox"]).expect("sandbox");
    let mut thief = host.connect(&cfg.connections["thief"]).expect("thief");
    let err = thief.check().expect_err("the thief reached loopback");
    assert!(
        matches!(err.connector_error(), Some(ConnectorError::Forbidden(why)) if why.contains("loopback")),
        "{err}"
    );
    sandbox
        .check()
        .expect("the sandbox connection reaches its simulator");
    let seen: Vec<_> = echo.seen.try_iter().collect();
    assert_eq!(seen.len(), 1, "{seen:?}");
    assert_eq!(seen[0].0, "/sandbox");
    assert!(host.grant_summary("sandbox").contains("loopback allowed"));
    assert!(host.grant_summary("thief").contains("loopback refused"));
}

/// The hostile `fixture-steer` declares a slot that sets `Cookie`.
#[test]
fn a_slot_that_steers_the_request_refuses_the_plugin_when_it_loads() {
    let (_dir, cfg) = world(&format!(
        "[connections.steer]\nplugin = \"{}\"\nhosts = [\"https://api.example.com\"]\nsecret = {{ file = \"secret.key\" }}\n",
        muster::plugins::fixture_steer().display()
    ));
    let host = Host::new(&cfg).expect("host");
    let err = match host.connect(&cfg.connections["steer"]) {
        Err(e) => e,
        Ok(_) => panic!("a slot setting Cookie was accepted"),
    };
    match &err {
        ConnectError::Policy {
            connection,
            source:
                PolicyError::SteeringSlotHeader {
                    plugin,
                    slot,
                    header,
                },
        } => {
            assert_eq!(
                (
                    connection.as_str(),
                    plugin.as_str(),
                    slot.as_str(),
                    header.as_str()
                ),
                ("steer", "steer", "session", "Cookie")
            );
        }
        other => panic!("expected a steering-slot refusal, got {other:?}"),
    }
    assert!(!err.to_string().contains(SECRET), "{err}");
}

/// A debug endpoint echoes the Authorization header back; the plugin logs
/// the body and the body reversed (a disguise no log redactor sees through).
/// Neither holds the secret: the host scrubbed the response first.
#[test]
fn an_upstream_echoing_the_secret_hands_the_plugin_stars() {
    let echo = echo_server();
    let (_dir, cfg) = world(&format!(
        "[connections.sniff]\nplugin = \"{p}\"\nhosts = [\"{u}\"]\nallow_loopback = true\nsecret = {{ file = \"secret.key\" }}\nsettings = {{ mode = \"sniff\", url = \"{u}/me\" }}\n",
        p = misbehave(),
        u = echo.url
    ));
    let log = MemoryLog::new();
    let host = Host::new(&cfg)
        .expect("host")
        .with_log(Arc::new(log.clone()));
    let mut sniff = host.connect(&cfg.connections["sniff"]).expect("connect");
    sniff.check().expect("request succeeds");
    let (_, auth) = echo.seen.recv().expect("the server saw the request");
    assert_eq!(auth.as_deref(), Some(format!("Bearer {SECRET}").as_str()));

    let lines: Vec<String> = log.lines().into_iter().map(|l| l.message).collect();
    let reversed: String = SECRET.chars().rev().collect();
    assert!(
        lines
            .iter()
            .any(|l| l == "response body {\"you_sent\":\"Bearer ***\"}"),
        "{lines:#?}"
    );
    assert!(
        lines
            .iter()
            .any(|l| l == "response header x-echo: Bearer ***"),
        "{lines:#?}"
    );
    for line in &lines {
        assert!(
            !line.contains(SECRET) && !line.contains(&reversed),
            "leaked: {line}"
        );
    }
}

/// `muster check` shows what each connection was granted, and warns when a
/// secret file can be read by others.
#[test]
fn check_prints_the_grant_and_warns_about_a_readable_secret_file() {
    use std::os::unix::fs::PermissionsExt;
    let echo = echo_server();
    let (dir, _cfg) = world(&format!(
        "[connections.sniff]\nplugin = \"{p}\"\nhosts = [\"{u}\"]\nallow_loopback = true\nsecret = {{ file = \"secret.key\" }}\nsettings = {{ mode = \"sniff\", url = \"{u}/me\" }}\n",
        p = misbehave(),
        u = echo.url
    ));
    let key = dir.path().join("secret.key");
    let hook = dir.path().join("hook.secret");
    std::fs::write(&hook, "hook-secret").unwrap();
    let config = dir.path().join("muster.toml");
    let mut text = std::fs::read_to_string(&config).unwrap();
    text.push_str(&format!(
        "\n[connections.target]\nplugin = \"{}\"\nhosts = [\"http://127.0.0.1:1\"]\n\n\
         [flows.hooked]\nsource = \"sniff\"\ntarget = \"target\"\n\
         webhook = {{ secret = {{ file = \"hook.secret\" }}, id_field = \"id\" }}\n",
        muster::plugins::fixture_good().display()
    ));
    std::fs::write(&config, text).unwrap();
    std::fs::set_permissions(&hook, std::fs::Permissions::from_mode(0o600)).unwrap();
    let check = || {
        let out = Command::new(env!("CARGO_BIN_EXE_muster"))
            .args(["check", "--config"])
            .arg(dir.path().join("muster.toml"))
            .env_remove("RUST_LOG")
            .output()
            .expect("run muster");
        assert_eq!(out.status.code(), Some(0), "{out:?}");
        String::from_utf8(out.stdout).unwrap()
    };
    let quiet = check();
    assert!(
        quiet.contains(&format!("grant: hosts {}; loopback allowed", echo.url)),
        "{quiet}"
    );
    assert!(!quiet.contains("warning"), "{quiet}");
    std::fs::set_permissions(&key, std::fs::Permissions::from_mode(0o644)).unwrap();
    let warned = check();
    assert!(
        warned.contains(&format!(
            "warning: the secret file {} has mode 644",
            key.display()
        )),
        "{warned}"
    );
    assert!(!warned.contains(SECRET), "{warned}");
    std::fs::set_permissions(&hook, std::fs::Permissions::from_mode(0o640)).unwrap();
    let hook_warned = check();
    assert!(
        hook_warned.contains(&format!(
            "warning flow hooked webhook: the secret file {} has mode 640",
            hook.display()
        )),
        "{hook_warned}"
    );
}

/// Every file of the state database (main, WAL, shared memory), concatenated.
fn state_bytes(dir: &Path) -> Vec<u8> {
    ["state.db", "state.db-wal", "state.db-shm"]
        .iter()
        .filter_map(|f| std::fs::read(dir.join(f)).ok())
        .flatten()
        .collect()
}

/// A plugin's error string quotes the secret (as the SDK quotes a vendor
/// body). The run fails, and the secret is in none of: the state database
/// (runs, journal), `history --json`, the CLI's output, the tracing log.
#[test]
fn a_secret_in_a_plugin_error_is_redacted_before_it_is_stored_or_printed() {
    let (dir, _cfg) = world(&format!(
        "[connections.leaky]\nplugin = \"{p}\"\nhosts = [\"http://127.0.0.1:1\"]\nsecret = {{ file = \"secret.key\" }}\nsettings = {{ mode = \"leak\", leak = \"{SECRET}\" }}\n\n\
         [connections.target]\nplugin = \"{g}\"\nhosts = [\"http://127.0.0.1:1\"]\n\n\
         [flows.leak]\nsource = \"leaky\"\ntarget = \"target\"\n",
        p = misbehave(),
        g = muster::plugins::fixture_good().display(),
    ));
    let muster = |args: &[&str]| {
        Command::new(env!("CARGO_BIN_EXE_muster"))
            .args(args)
            .arg("--config")
            .arg(dir.path().join("muster.toml"))
            .env("RUST_LOG", "trace")
            .output()
            .expect("run muster")
    };
    let sync = muster(&["-vv", "sync"]);
    let sync_out = format!(
        "{}{}",
        String::from_utf8_lossy(&sync.stdout),
        String::from_utf8_lossy(&sync.stderr)
    );
    assert_ne!(sync.status.code(), Some(0), "the read fails: {sync_out}");
    assert!(sync_out.contains("vendor answered 503: ***"), "{sync_out}");
    let history = muster(&["history", "--json"]);
    let history_out = String::from_utf8_lossy(&history.stdout).into_owned();
    assert!(
        history_out.contains("vendor answered 503: ***"),
        "{history_out}"
    );

    let state = state_bytes(dir.path());
    assert!(!state.is_empty(), "the run was recorded");
    let needle = SECRET.as_bytes();
    assert!(
        !state.windows(needle.len()).any(|w| w == needle),
        "the state database holds the secret"
    );
    for (what, text) in [
        ("sync output and tracing", &sync_out),
        ("history --json", &history_out),
    ] {
        assert!(!text.contains(SECRET), "{what} leaks the secret: {text}");
    }
}
