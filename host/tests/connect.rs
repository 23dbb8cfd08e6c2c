//! `muster::connect`: what a connection's grants become, with the real
//! plugins — hosts narrowed by the config, "any host" manifests that must be
//! narrowed, and a denied host that is denied before any network traffic.

use std::path::Path;

use muster::config::Config;
use muster::connect::{ConnectError, Host};

fn config(connection: &str) -> Config {
    let text = format!(
        "[tenant]\nname = \"t\"\ntimezone = \"Europe/Paris\"\nstate = \"state.db\"\n\n{connection}"
    );
    Config::parse(&text, Path::new("muster.toml"), Path::new(".")).expect("valid config")
}

#[test]
fn an_any_host_plugin_needs_the_connection_to_name_its_server() {
    let cfg = config(
        "[connections.scim]\nplugin = \"scim\"\nsettings = { base_url = \"https://scim.example.com/v2\" }\n",
    );
    let host = Host::new(&cfg).expect("host");
    let err = match host.connect(&cfg.connections["scim"]) {
        Err(e) => e,
        Ok(_) => panic!("an any-host plugin connected without `hosts`"),
    };
    assert!(matches!(err, ConnectError::Grant { .. }), "{err}");
    assert!(err.to_string().contains("hosts = ["), "{err}");
}

#[test]
fn a_named_server_is_granted_and_any_other_host_is_denied() {
    let cfg = config(
        "[connections.scim]\nplugin = \"scim\"\nsettings = { base_url = \"https://elsewhere.example.com/v2\" }\nhosts = [\"https://scim.example.com\"]\n",
    );
    let host = Host::new(&cfg).expect("host");
    let mut scim = host.connect(&cfg.connections["scim"]).expect("connect");
    // `check` asks the configured base_url, which the grant does not cover:
    // refused by the allow-list, before DNS.
    let err = scim
        .check()
        .expect_err("a host outside the grant was reached");
    let text = err.to_string();
    assert!(text.contains("elsewhere.example.com"), "{text}");
    assert!(text.to_lowercase().contains("allow"), "{text}");
}

#[test]
fn the_sandbox_binarys_config_loads() {
    let text = muster_sandbox::config_toml("http://127.0.0.1:1", "http://127.0.0.1:2/scim/v1");
    let cfg = Config::parse(&text, Path::new("muster.sandbox.toml"), Path::new("."))
        .unwrap_or_else(|e| panic!("{e}\n{text}"));
    assert!(cfg.flows.contains_key("lucca-to-leapsome"));
    assert!(cfg.connections.values().all(|c| c.allow_loopback));
}
