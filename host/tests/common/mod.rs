//! Shared helpers of the host's end-to-end tests: real `.wasm` fixtures built
//! by `host/build.rs`, a runtime with a shared compilation cache, a check
//! that the engine still serves a well-behaved plugin, one tenant's world
//! ([`world`]) and many tenants' simulators for the fleet test ([`tenants`]).

#![allow(dead_code)]

pub mod admin;
pub mod tenants;
pub mod world;

use std::path::PathBuf;
use std::sync::Arc;

use muster::runtime::{
    Capabilities, DenyAll, MemoryLog, PluginInstance, Runtime, RuntimeConfig, grant,
};
use muster_outbound::{Credential, Outbound, Policy};

/// A cache shared by every test process, so each fixture compiles once.
pub fn cache_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("muster-plugin-cache")
}

pub fn config() -> RuntimeConfig {
    RuntimeConfig {
        cache_dir: Some(cache_dir()),
        ..RuntimeConfig::default()
    }
}

pub fn runtime(config: RuntimeConfig) -> Runtime {
    Runtime::new(config).expect("runtime")
}

pub fn settings(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
    pairs
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

/// A misbehaving fixture instance configured with `mode`, no network.
pub fn misbehave(rt: &Runtime, mode: &str) -> PluginInstance {
    let plugin = rt
        .load_file(muster::plugins::fixture_misbehave())
        .expect("load misbehave");
    let mut instance = plugin
        .instantiate(no_network())
        .expect("instantiate misbehave");
    instance
        .configure(&settings(&[("mode", mode)]))
        .expect("configure");
    instance
}

/// Loads `plugin_path` into `rt`, registers its grant (manifest ∩
/// `tenant_hosts`, with `credentials`) with a real `Outbound` (no retries),
/// and instantiates it against that `Outbound` as connection `conn`.
pub fn instance_with_outbound(
    rt: &Runtime,
    plugin_path: PathBuf,
    tenant_hosts: &[&str],
    credentials: Vec<Credential>,
    allow_loopback: bool,
) -> (PluginInstance, MemoryLog) {
    let plugin = rt.load_file(plugin_path).unwrap();
    let log = MemoryLog::new();
    let outbound = Arc::new(
        Outbound::new(Policy {
            allow_loopback,
            retry: muster_outbound::RetryPolicy::none(),
            ..Policy::default()
        })
        .expect("policy"),
    );
    // Instantiate first (describe needs no network), then register the grant
    // computed from the manifest, as the host does; the connection is named.
    let caps = Capabilities {
        name: Some("conn".into()),
        http: outbound.clone(),
        log: Arc::new(log.clone()),
    };
    let instance = plugin.instantiate(caps).unwrap();
    let policy = grant(instance.manifest(), tenant_hosts, credentials).unwrap();
    outbound.set_plugin("conn", policy).expect("grant");
    (instance, log)
}

pub fn no_network() -> Capabilities {
    Capabilities {
        name: None,
        http: Arc::new(DenyAll),
        log: Arc::new(MemoryLog::new()),
    }
}

/// The engine keeps serving: a fresh, well-behaved plugin reads its people.
pub fn assert_good_plugin_still_works(rt: &Runtime) {
    let plugin = rt
        .load_file(muster::plugins::fixture_good())
        .expect("load good");
    let mut good = plugin.instantiate(no_network()).expect("instantiate good");
    good.configure(&settings(&[("count", "25"), ("page", "10")]))
        .expect("configure good");
    let people = good.read_all_people(None).expect("read people").people;
    assert_eq!(people.len(), 25);
    assert_eq!(people[7].work_email.as_deref(), Some("person7@example.com"));
}
