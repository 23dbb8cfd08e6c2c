//! `muster::connect`: what a connection's grants become, with the real
//! plugins — hosts narrowed by the config, "any host" manifests that must be
//! narrowed, and a denied host that is denied before any network traffic.

use std::path::Path;

mod common;

use muster::config::Config;
use muster::connect::{ConnectError, Host};

fn config(connection: &str) -> Config {
    // The compilation cache the other end-to-end tests share: each plugin compiles once.
    let cache = common::cache_dir();
    let text = format!(
        "[tenant]\nname = \"t\"\ntimezone = \"Europe/Paris\"\nstate = \"state.db\"\ncache = {:?}\n\n{connection}",
        cache.display().to_string()
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

/// A Lucca source and a SCIM target, with `flow` as the flow's extra lines.
fn lucca_to_scim(flow: &str) -> Config {
    config(&format!(
        "[connections.lucca]\nplugin = \"lucca\"\nsettings = {{ subdomain = \"acme\" }}\n\n\
         [connections.scim]\nplugin = \"scim\"\nsettings = {{ base_url = \"https://scim.example.com/v2\" }}\n\
         hosts = [\"https://scim.example.com\"]\n\n\
         [flows.hr-to-scim]\nsource = \"lucca\"\ntarget = \"scim\"\n{flow}"
    ))
}

#[test]
fn the_built_plugins_carry_their_declarations_through_componentization() {
    use muster_core::{Field, FieldRef};
    let rt = common::runtime(common::config());
    // Contract 0.2 plugins declare in their manifest (the host keeps reading the custom
    // section of 0.1 ones); the host fits flows with `Declarations::from_manifest`.
    let load = |name: &str| {
        let manifest = rt
            .load_file(muster::plugins::path(name))
            .and_then(|p| p.describe())
            .unwrap_or_else(|e| panic!("{name}: {e}"));
        muster::runtime::Declarations::from_manifest(&manifest)
    };
    let scim = load("muster-plugin-scim");
    assert!(scim.stores(&Field::Login.into()));
    assert!(!scim.stores(&Field::BirthDate.into()));
    assert!(!scim.stores(&FieldRef::Custom("e_x".into())));
    assert!(scim.create_requires.has(Field::Login));
    let lucca = load("muster-plugin-lucca");
    assert!(lucca.stores(&FieldRef::Custom("e_formation".into())));
    // Stored in the extended-data field named by `contract_type_field`.
    assert!(lucca.stores(&Field::ContractType.into()));
    let leapsome = load("muster-plugin-leapsome");
    assert!(leapsome.create_requires.has(Field::WorkEmail));
    assert!(!leapsome.stores(&Field::Login.into()));
    // A plugin that declares nothing restricts nothing.
    let fixture = load("fixture-good");
    assert!(fixture.stores.is_none() && fixture.create_requires.iter().next().is_none());
}

#[test]
fn a_flow_owning_a_field_its_target_cannot_store_is_refused_at_load() {
    let cfg = lucca_to_scim("fields = [\"given_name\", \"birth_date\", \"work_email\"]\n");
    let host = Host::new(&cfg).expect("host");
    let err = match host.connect_flow(&cfg, &cfg.flows["hr-to-scim"]) {
        Err(e) => e,
        Ok(_) => panic!("a flow owning birth_date connected to a SCIM target"),
    };
    assert!(matches!(err, ConnectError::Flow(_)), "{err}");
    let text = err.to_string();
    // File, line and column of the offending item, the flow, the field,
    // the target and what to do.
    assert!(
        text.starts_with("muster.toml:19:25: `flows.hr-to-scim.fields[1]`"),
        "{text}"
    );
    for part in [
        "flow `hr-to-scim`",
        "`birth_date`",
        "target `scim`",
        "remove it from `fields`",
    ] {
        assert!(text.contains(part), "{part} missing: {text}");
    }
    // `muster check`'s path: the component alone says the same.
    assert!(matches!(
        host.flow_policy(&cfg, &cfg.flows["hr-to-scim"]),
        Err(ConnectError::Flow(_))
    ));
}

#[test]
fn the_default_fields_narrow_to_what_the_target_stores_and_creates_carry_its_requirements() {
    use muster_core::Field;
    let cfg = lucca_to_scim("");
    let host = Host::new(&cfg).expect("host");
    let flow = &cfg.flows["hr-to-scim"];
    let connected = host.connect_flow(&cfg, flow).expect("connect the flow");
    let policy = connected.policy;
    for f in [
        Field::BirthDate,
        Field::StartDate,
        Field::EndDate,
        Field::Gender,
    ] {
        assert!(flow.policy.owned.has(f), "the configured default owns {f}");
        assert!(!policy.owned.has(f), "{f} is owned against a SCIM target");
    }
    assert!(policy.owned.has(Field::GivenName) && policy.owned.has(Field::WorkEmail));
    // SCIM's userName comes from `login`, which the default does not own:
    // a create carries it, and a record without it is skipped.
    assert!(!policy.owned.has(Field::Login));
    assert!(policy.required_on_create.has(Field::Login));
    let carried: Vec<String> = policy
        .carried_on_create()
        .iter()
        .map(String::from)
        .collect();
    assert_eq!(carried, ["login"]);
}

/// Rate limits come with the connected plugins, in each connection's grant,
/// not from the host: none host-wide; Lucca's published limit for the
/// `lucca` connection once the built-in plugin is connected (its 0.2
/// manifest declares it); nothing for a plugin that declares none.
#[test]
fn rate_limits_arrive_with_the_connected_plugins() {
    let cfg = config(
        "[connections.lucca]\nplugin = \"lucca\"\nsettings = { subdomain = \"acme\" }\n\n\
         [connections.scim]\nplugin = \"scim\"\nsettings = { base_url = \"https://scim.example.com/v2\" }\nhosts = [\"https://scim.example.com\"]\n",
    );
    let host = Host::new(&cfg).expect("host");
    let lucca = "https://acme.ilucca.net/api/v3/users";
    let scim = "https://scim.example.com/v2/Users";
    let out = host.outbound();
    assert_eq!(out.rate_limit_of("lucca", lucca), None);
    host.connect(&cfg.connections["scim"])
        .expect("connect scim");
    assert_eq!(out.rate_limit_of("scim", scim), None);
    assert_eq!(out.rate_limit_of("lucca", lucca), None);
    host.connect(&cfg.connections["lucca"])
        .expect("connect lucca");
    // Lucca's declared 50 / 61 s, plus the host's margin for the time a
    // request takes to arrive.
    let declared = muster_outbound::RateLimit::LUCCA;
    assert_eq!(
        out.rate_limit_of("lucca", lucca),
        Some(muster_outbound::RateLimit::new(
            declared.requests,
            declared.per + muster::connect::PACING_MARGIN
        ))
    );
    assert_eq!(out.rate_limit_for(lucca), None, "not host-wide");
    assert_eq!(out.rate_limit_of("scim", scim), None);
}
