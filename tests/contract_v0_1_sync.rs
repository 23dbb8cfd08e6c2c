//! A plugin built against the frozen contract **0.1.0** still runs a whole
//! sync on a host that speaks 0.2.0.
//!
//! `plugins/fixtures/v0_1-scim` is built with `wit-bindgen` straight from
//! `wit/since_v0.1.0` (not the SDK): a small SCIM target. It runs as a
//! third-party `.wasm` against the sandbox's SCIM directory (the Leapsome
//! simulator's `/scim/v1`), fed by the real `lucca` plugin reading the Lucca
//! simulator, through the library exactly as `muster sync` drives it. The
//! host reads the version from the component, adapts every call (manifest
//! plus declarations section, gender text, operations), and the second run
//! must plan nothing and write nothing.

use std::collections::BTreeMap;

use muster::config::Config;
use muster::connect::{ConnectedFlow, Host};
use muster::engine::{self, Connected, Mode, Outcome, RunOptions, RunReport};
use muster::runtime::{ContractVersion, Runtime, RuntimeConfig};
use muster::store::{Store, Trigger};
use muster_core::Date;
use muster_sandbox::{LeapsomeOptions, LeapsomeSim, LuccaOptions, LuccaSim, Tenant};

const FLOW: &str = "people";
const PEOPLE: usize = 40;

fn fixture() -> std::path::PathBuf {
    muster::plugins::path("fixture-v0-1-scim")
}

struct World {
    lucca: LuccaSim,
    scim: LeapsomeSim,
    config: Config,
    host: Host,
    store: Store,
    _dir: tempfile::TempDir,
}

impl World {
    fn new() -> World {
        let lucca = LuccaSim::start(
            Tenant::generate(2026, PEOPLE),
            LuccaOptions {
                rate_limit: None,
                ..LuccaOptions::default()
            },
        )
        .expect("start lucca");
        let scim = LeapsomeSim::start(LeapsomeOptions {
            rate_limit: None,
            ..LeapsomeOptions::default()
        })
        .expect("start the SCIM directory");
        let dir = tempfile::tempdir().expect("tempdir");
        std::fs::write(dir.path().join("lucca.key"), lucca.api_key()).expect("key");
        std::fs::write(dir.path().join("scim.token"), scim.token()).expect("token");
        let text = format!(
            r#"[tenant]
name = "v0-1-sync"
timezone = "Europe/Paris"
state = "state.db"

[connections.lucca]
plugin = "lucca"
settings = {{ base_url = "{lucca}" }}
secret = {{ file = "lucca.key" }}
allow_loopback = true

[connections.scim]
plugin = "{plugin}"
hosts = ["http://127.0.0.1:*"]
settings = {{ base_url = "{scim}" }}
secret = {{ file = "scim.token" }}
allow_loopback = true

[flows.{FLOW}]
source = "lucca"
target = "scim"
"#,
            lucca = lucca.base_url(),
            scim = scim.base_url(),
            plugin = fixture().display(),
        );
        let path = dir.path().join("muster.toml");
        let config = Config::parse(&text, &path, dir.path()).expect("config parses");
        World {
            host: Host::new(&config).expect("host"),
            store: Store::open(&config.tenant.state).expect("store"),
            config,
            lucca,
            scim,
            _dir: dir,
        }
    }

    fn sync(&mut self) -> RunReport {
        let flow = self.config.flow(FLOW).expect("flow");
        let ConnectedFlow {
            mut source,
            mut target,
            policy,
        } = self.host.connect_flow(&self.config, flow).expect("connect");
        assert_eq!(target.contract_version(), ContractVersion::V0_1);
        let spec = engine::FlowSpec::of(flow, policy);
        let report = engine::run(
            &mut self.store,
            &spec,
            Connected {
                source: &mut source,
                target: &mut target,
            },
            Mode::Sync {
                approve_held: false,
            },
            &RunOptions {
                trigger: Trigger::Manual,
                only: None,
                today: Date::parse("2026-06-01").expect("today"),
                approver: "test".into(),
            },
        )
        .expect("run");
        assert_eq!(report.failed(), 0, "{:#?}", report.applied.failures);
        assert!(report.applied.aborted.is_none(), "{:?}", report.applied);
        report
    }
}

#[test]
fn the_fixture_is_a_0_1_component() {
    let runtime = Runtime::new(RuntimeConfig::default()).expect("runtime");
    let plugin = runtime.load_file(fixture()).expect("load");
    assert_eq!(plugin.contract_version(), ContractVersion::V0_1);
    let manifest = plugin.describe().expect("describe");
    // From its `muster:declarations` section, widened into the 0.2 manifest.
    assert_eq!(manifest.create_requires.len(), 1);
    assert_eq!(manifest.stores.as_ref().map(Vec::len), Some(3));
    assert_eq!(manifest.max_members_per_change, 1);
}

#[test]
fn a_0_1_plugin_runs_a_whole_sync_and_a_resync_is_a_no_op() {
    let mut w = World::new();
    let first = w.sync();
    let created = first.applied.counts.get("create").copied().unwrap_or(0);
    let created = usize::try_from(created).expect("a count");
    assert!(created > 0, "{}", first.plan_text);

    // Every link names an account in the directory, carrying the source's
    // email and names (the person's Lucca record, read back from the
    // simulator, not from the plan).
    let links: BTreeMap<String, String> = w
        .store
        .links(FLOW)
        .expect("links")
        .into_iter()
        .map(|l| (l.source_id, l.target_id))
        .collect();
    assert_eq!(links.len(), created);
    let directory = w.scim.directory();
    assert_eq!(directory.users.len(), created);
    for (source_id, account_id) in &links {
        let account = directory
            .user(account_id)
            .unwrap_or_else(|| panic!("no account {account_id}"));
        let person = w
            .lucca
            .tenant()
            .user(source_id.parse().expect("a Lucca id"))
            .expect("the source person")
            .clone();
        assert_eq!(Some(&account.user_name), person.mail.as_ref());
        assert_eq!(
            account.given_name.as_deref(),
            Some(person.first_name.as_str())
        );
        assert!(account.active);
    }

    let writes = w.scim.request_counts().writes;
    let second = w.sync();
    assert_eq!(second.outcome, Outcome::NoChanges, "{}", second.plan_text);
    assert_eq!(
        w.scim.request_counts().writes,
        writes,
        "a no-change resync wrote to the directory"
    );
}

/// A 0.1.0 plugin never receives a 0.2.0-only operation: `read-person` and
/// `read-account` (which 0.1 cannot declare) and a change of two members
/// are refused by the host before any call, naming the plugin and what it
/// lacks, and nothing reaches the directory. The instance stays usable.
/// (A 0.1 plugin that declared `write-groups` would get
/// `UnsupportedOperation` for the two-member change from its adapter:
/// `runtime::contract::v0_1` tests that.)
#[test]
fn a_0_1_plugin_never_receives_a_0_2_only_operation() {
    use muster::runtime::{MemberChange, Operation, PluginError};
    let w = World::new();
    let flow = w.config.flow(FLOW).expect("flow");
    let ConnectedFlow { mut target, .. } = w.host.connect_flow(&w.config, flow).expect("connect");
    let before = w.scim.request_counts();
    let two_members = Operation::ChangeMembers(MemberChange {
        group_id: "g".into(),
        add: vec!["a".into(), "b".into()],
        remove: vec![],
    });
    let refusals = [
        target.read_person("1").map(|_| ()).unwrap_err(),
        target.read_account("1").map(|_| ()).unwrap_err(),
        target.apply(&two_members).map(|_| ()).unwrap_err(),
    ];
    let lacking: Vec<String> = refusals
        .iter()
        .map(|e| match e {
            PluginError::MissingCapability { plugin, capability } => {
                assert_eq!(plugin, target.name());
                capability.clone()
            }
            other => panic!("not refused before the call: {other:?}"),
        })
        .collect();
    assert_eq!(lacking, ["read-person", "read-account", "write-groups"]);
    let after = w.scim.request_counts();
    assert_eq!((after.reads, after.writes), (before.reads, before.writes));
    assert!(!target.is_poisoned());
    assert!(target.read_all_accounts().is_ok(), "still usable");
}
