//! The on-disk compilation cache: a second load deserialises instead of
//! compiling, and a corrupt entry is recompiled rather than trusted.

mod common;

use common::*;
use muster::runtime::{Loaded, Runtime, RuntimeConfig};

#[test]
fn second_load_does_not_recompile() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = RuntimeConfig {
        cache_dir: Some(dir.path().to_path_buf()),
        ..RuntimeConfig::default()
    };
    let path = muster::plugins::fixture_good();

    let first = Runtime::new(cfg.clone()).unwrap();
    let plugin = first.load_file(&path).unwrap();
    assert_eq!(plugin.loaded(), Loaded::Compiled);
    let entry = first.cache().unwrap().entry(plugin.digest());
    assert!(
        entry.is_file(),
        "cache entry written at {}",
        entry.display()
    );
    assert!(entry.starts_with(dir.path()));
    let written = std::fs::metadata(&entry).unwrap().modified().unwrap();

    // Same process, and a brand-new runtime (as after a restart): both hit.
    assert_eq!(first.load_file(&path).unwrap().loaded(), Loaded::FromCache);
    let second = Runtime::new(cfg).unwrap();
    let again = second.load_file(&path).unwrap();
    assert_eq!(again.loaded(), Loaded::FromCache);
    assert_eq!(
        std::fs::metadata(&entry).unwrap().modified().unwrap(),
        written,
        "entry not rewritten"
    );
    let mut instance = again.instantiate(no_network()).unwrap();
    instance.configure(&settings(&[("count", "3")])).unwrap();
    assert_eq!(instance.read_all_people().unwrap().len(), 3);
}

#[test]
fn corrupt_cache_entry_is_recompiled() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = RuntimeConfig {
        cache_dir: Some(dir.path().to_path_buf()),
        ..RuntimeConfig::default()
    };
    let rt = Runtime::new(cfg).unwrap();
    let path = muster::plugins::fixture_good();
    let plugin = rt.load_file(&path).unwrap();
    let entry = rt.cache().unwrap().entry(plugin.digest());
    std::fs::write(&entry, b"not a precompiled component").unwrap();
    let reloaded = rt.load_file(&path).unwrap();
    assert_eq!(reloaded.loaded(), Loaded::Compiled);
    reloaded.instantiate(no_network()).unwrap();
    assert_eq!(rt.load_file(&path).unwrap().loaded(), Loaded::FromCache);
}

#[test]
fn not_a_component_is_a_clear_error() {
    let rt = runtime(config());
    let core_module = b"\0asm\x01\0\0\0";
    let err = rt.load(core_module).err().expect("must fail");
    assert!(err.to_string().contains("not a component"), "{err}");
    let err = rt.load(b"hello").err().expect("must fail");
    assert!(
        matches!(err, muster::runtime::PluginError::InvalidComponent(_)),
        "{err:?}"
    );
}

#[test]
fn plugin_built_for_another_contract_version_is_incompatible() {
    let rt = runtime(config());
    let plugin = rt.load_file(muster::plugins::fixture_future()).unwrap();
    let err = plugin
        .instantiate(no_network())
        .err()
        .expect("must be refused");
    match err {
        muster::runtime::PluginError::Incompatible { reason } => {
            assert!(
                reason.contains("0.2.0") && reason.contains("0.1"),
                "{reason}"
            )
        }
        other => panic!("expected incompatible, got {other:?}"),
    }
}
