//! Misbehaving plugins meet the sandbox: each bad fixture yields one specific
//! typed error, and the same engine keeps serving other plugins afterwards.

mod common;

use std::time::Duration;

use common::*;
use muster::runtime::connector::Connector;
use muster::runtime::{ConnectorError, PluginError, RuntimeConfig};

#[test]
fn infinite_loop_runs_out_of_fuel() {
    let rt = runtime(RuntimeConfig {
        fuel_per_call: 50_000_000,
        ..config()
    });
    let mut bad = misbehave(&rt, "loop");
    let err = bad.check().unwrap_err();
    assert!(
        matches!(
            err,
            PluginError::OutOfFuel {
                budget: 50_000_000,
                ..
            }
        ),
        "{err:?}"
    );
    assert!(bad.is_poisoned());
    assert!(matches!(bad.check().unwrap_err(), PluginError::Poisoned(_)));
    assert_good_plugin_still_works(&rt);
}

#[test]
fn infinite_loop_hits_the_wall_clock_deadline() {
    let rt = runtime(RuntimeConfig {
        fuel_per_call: u64::MAX / 2,
        call_timeout: Duration::from_millis(300),
        ..config()
    });
    let mut bad = misbehave(&rt, "loop");
    let err = bad.check().unwrap_err();
    assert!(matches!(err, PluginError::Timeout { .. }), "{err:?}");
    assert_good_plugin_still_works(&rt);
}

#[test]
fn memory_hog_hits_the_memory_limit() {
    let rt = runtime(RuntimeConfig {
        memory_limit: 16 << 20,
        ..config()
    });
    let mut bad = misbehave(&rt, "hog");
    let err = bad.check().unwrap_err();
    assert!(
        matches!(err, PluginError::MemoryLimit { limit, .. } if limit == 16 << 20),
        "{err:?}"
    );
    assert_good_plugin_still_works(&rt);
}

#[test]
fn panic_is_a_trap_and_poisons_only_that_instance() {
    let rt = runtime(config());
    let mut bad = misbehave(&rt, "panic");
    let err = bad.check().unwrap_err();
    match &err {
        PluginError::Trap { plugin, detail } => {
            assert_eq!(plugin, "fixture-misbehave");
            assert!(detail.contains("unreachable"), "{detail}");
            // The guest's panic message, captured from its (private) stderr.
            assert!(detail.contains("fixture panics on purpose"), "{detail}");
        }
        other => panic!("expected a trap, got {other:?}"),
    }
    assert!(matches!(
        bad.read_people(None).unwrap_err(),
        PluginError::Poisoned(_)
    ));
    // Another instance of the *same* plugin is unaffected.
    let mut again = misbehave(&rt, "none");
    again.check().expect("fresh instance works");
    assert_good_plugin_still_works(&rt);
}

#[test]
fn no_files_no_environment_no_arguments_no_sockets() {
    let rt = runtime(config());
    // A live listener, so a refused connection is the sandbox, not an empty port.
    let server = tiny_http::Server::http("127.0.0.1:0").expect("listener");
    let addr = server
        .server_addr()
        .to_ip()
        .expect("ip address")
        .to_string();
    let plugin = rt.load_file(muster::plugins::fixture_misbehave()).unwrap();
    let mut probe = plugin.instantiate(no_network()).unwrap();
    probe
        .configure(&settings(&[("mode", "probe"), ("addr", &addr)]))
        .unwrap();
    // SAFETY of the assertion: the test process itself has HOME and arguments.
    assert!(std::env::var("HOME").is_ok() || std::env::vars().count() > 0);
    let err = probe.check().unwrap_err();
    let Some(ConnectorError::Other(report)) = err.connector_error() else {
        panic!("expected the probe report, got {err:?}");
    };
    assert!(report.contains("file=error:"), "{report}");
    assert!(report.contains("dir=error:"), "{report}");
    assert!(report.contains("vars=0;"), "{report}");
    assert!(report.contains("HOME=error:"), "{report}");
    assert!(report.contains("args=0;"), "{report}");
    assert!(report.contains("socket=error:"), "{report}");
    assert!(
        server.try_recv().expect("poll").is_none(),
        "nothing reached the listener"
    );
    assert_good_plugin_still_works(&rt);
}

#[test]
fn malformed_vendor_data_is_a_typed_invalid_error() {
    let rt = runtime(config());
    let mut bad = misbehave(&rt, "malformed");
    let err = bad.check().unwrap_err();
    assert!(
        matches!(err.connector_error(), Some(ConnectorError::Invalid(why)) if why.contains("birthDate") && why.contains("2024-02-30")),
        "{err:?}"
    );
    // A typed error is not a trap: the instance stays usable.
    assert!(!bad.is_poisoned());
    assert!(bad.read_people(None).is_ok());
    assert_good_plugin_still_works(&rt);
}

#[test]
fn impossible_date_handed_to_the_host_holds_the_record_not_the_read() {
    let rt = runtime(config());
    let mut bad = misbehave(&rt, "bad-record");
    // Below the connector layer the page comes back as the plugin said.
    let page = bad.read_people(None).expect("the read itself succeeds");
    assert_eq!(page.items.len(), 1);
    // The connector layer converts it once: the record is held and named.
    let read = bad.people(None).expect("a bad value never fails the read");
    assert!(read.people.is_empty(), "{:?}", read.people);
    assert_eq!(read.held, ["1"]);
    let [problem] = read.problems.as_slice() else {
        panic!("one problem expected: {:?}", read.problems);
    };
    assert_eq!(
        (
            problem.plugin.as_str(),
            problem.record.as_str(),
            problem.field.as_str()
        ),
        (bad.name(), "1", "birth_date")
    );
    assert!(problem.message.contains("2024-13-45"), "{problem}");
    assert!(!bad.is_poisoned());
    assert_good_plugin_still_works(&rt);
}

#[test]
fn undeclared_capability_is_refused_by_the_host() {
    let rt = runtime(config());
    let mut bad = misbehave(&rt, "none");
    let err = bad.read_accounts(None).unwrap_err();
    assert!(
        matches!(err, PluginError::MissingCapability { ref capability, .. } if capability == "read-accounts"),
        "{err:?}"
    );
}

#[test]
fn one_engine_survives_every_bad_fixture_in_turn() {
    let rt = runtime(RuntimeConfig {
        fuel_per_call: 50_000_000,
        memory_limit: 16 << 20,
        ..config()
    });
    for mode in ["loop", "hog", "panic", "malformed", "probe", "deny"] {
        let mut bad = misbehave(&rt, mode);
        assert!(bad.check().is_err(), "mode {mode} must fail");
        assert_good_plugin_still_works(&rt);
    }
}

#[test]
fn good_plugin_pages_reads_and_applies() {
    let rt = runtime(config());
    let plugin = rt.load_file(muster::plugins::fixture_good()).unwrap();
    let mut good = plugin.instantiate(no_network()).unwrap();
    assert_eq!(good.manifest().name, "fixture-good");
    good.configure(&settings(&[("count", "5"), ("page", "2")]))
        .unwrap();
    let first = good.read_people(None).unwrap();
    assert_eq!(first.items.len(), 2);
    assert_eq!(first.next.as_deref(), Some("2"));
    assert_eq!(good.read_all_people(None).unwrap().people.len(), 5);
    assert_eq!(good.read_all_groups().unwrap().groups.len(), 3);
    assert_eq!(good.read_all_accounts().unwrap().people.len(), 5);
    assert!(matches!(
        good.read_all_target_groups(),
        Err(PluginError::MissingCapability { .. })
    ));

    // Compound, multi-occurrence custom fields cross the boundary intact.
    let first = &good.read_people(None).unwrap().items[0];
    let formation = first
        .custom_fields
        .iter()
        .find(|(k, _)| k == "e_formation")
        .map(|(_, v)| v);
    let Some(muster::runtime::FieldValue::Rows(rows)) = formation else {
        panic!("expected compound rows, got {formation:?}");
    };
    assert_eq!(rows.len(), 2);
    assert!(rows[0].contains(&(
        "e_title".to_string(),
        muster::runtime::Scalar::Text("Security basics".into())
    )));
    assert!(rows[1].contains(&(
        "e_progress".to_string(),
        muster::runtime::Scalar::Number(40.0)
    )));
    let person = good.read_people(None).unwrap().items[0].clone();
    let created = good
        .apply(&muster::runtime::Operation::Create(person))
        .unwrap();
    assert_eq!(created.target_id, "t-0");
    let err = good.configure(&settings(&[("count", "many")])).unwrap_err();
    assert!(
        matches!(err.connector_error(), Some(ConnectorError::Invalid(why)) if why.contains("count")),
        "{err:?}"
    );
}
