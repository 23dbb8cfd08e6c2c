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
    assert_eq!(instance.read_all_people(None).unwrap().people.len(), 3);
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

/// The future fixture really exports `muster:connector/connector@0.3.0`: the
/// version is read from the component, and the load is refused naming the
/// versions this host supports, before anything is instantiated.
#[test]
fn plugin_built_for_another_contract_version_is_refused_at_load() {
    let rt = runtime(config());
    let err = rt
        .load_file(muster::plugins::fixture_future())
        .err()
        .expect("must be refused");
    match &err {
        muster::runtime::PluginError::UnsupportedContract { version, supported } => {
            assert_eq!(
                (version.as_str(), supported.as_str()),
                ("0.3.0", "0.1.0, 0.2.0")
            );
        }
        other => panic!("expected an unsupported contract, got {other:?}"),
    }
    let text = err.to_string();
    assert!(
        text.contains("0.3.0") && text.contains("supports 0.1.0, 0.2.0"),
        "{text}"
    );
}

/// The contract version is read from the component's exports: fixture-good is
/// built with the 0.2 SDK. (A 0.1.0 fixture, for the 0.1 side of this check,
/// is h-runtime's `plugins/fixtures/v0_1-scim`, not on this branch yet.)
#[test]
fn a_0_2_plugin_is_read_as_0_2_from_its_exports() {
    let rt = runtime(config());
    let plugin = rt.load_file(muster::plugins::fixture_good()).unwrap();
    assert_eq!(
        plugin.contract_version(),
        muster::runtime::ContractVersion::V0_2
    );
    let instance = plugin.instantiate(no_network()).unwrap();
    assert_eq!(
        instance.contract_version(),
        muster::runtime::ContractVersion::V0_2
    );
    assert_eq!(instance.manifest().max_members_per_change, 1);
}

/// Someone plants native code at the predictable path of a plugin's entry: a
/// genuine, loadable entry of *another* plugin (the misbehaving fixture), and
/// then the bare output of `precompile_component` with no tag. Neither is
/// loaded: the good plugin is recompiled, behaves as itself, and its entry is
/// overwritten with an authenticated one.
#[test]
fn a_planted_entry_is_not_loaded() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = RuntimeConfig {
        cache_dir: Some(dir.path().to_path_buf()),
        ..RuntimeConfig::default()
    };
    let rt = Runtime::new(cfg.clone()).unwrap();
    let good = rt.load_file(muster::plugins::fixture_good()).unwrap();
    let evil = rt.load_file(muster::plugins::fixture_misbehave()).unwrap();
    let cache = rt.cache().unwrap();
    let good_entry = cache.entry(good.digest());
    let evil_entry = cache.entry(evil.digest());

    let planted: [(&str, Vec<u8>); 2] = [
        (
            "another plugin's entry",
            std::fs::read(&evil_entry).unwrap(),
        ),
        (
            "an untagged precompiled component",
            rt.engine()
                .precompile_component(&std::fs::read(muster::plugins::fixture_misbehave()).unwrap())
                .unwrap(),
        ),
    ];
    for (what, bytes) in planted {
        std::fs::write(&good_entry, &bytes).unwrap();
        // A fresh runtime, as after a restart.
        let rt = Runtime::new(cfg.clone()).unwrap();
        let plugin = rt.load_file(muster::plugins::fixture_good()).unwrap();
        assert_eq!(plugin.loaded(), Loaded::Compiled, "{what} was loaded");
        let instance = plugin.instantiate(no_network()).unwrap();
        assert_eq!(instance.manifest().name, "fixture-good", "{what}");
        assert_ne!(
            std::fs::read(&good_entry).unwrap(),
            bytes,
            "{what} overwritten"
        );
        assert_eq!(
            rt.load_file(muster::plugins::fixture_good())
                .unwrap()
                .loaded(),
            Loaded::FromCache,
            "the rewritten entry is trusted again"
        );
    }
}

/// Entries are private to the user: directories 0700, entries and key 0600;
/// a cache directory others may write to is refused with a typed error.
#[test]
fn the_cache_is_private_and_a_shared_directory_is_refused() {
    use std::os::unix::fs::PermissionsExt;
    let mode = |p: &std::path::Path| std::fs::metadata(p).unwrap().permissions().mode() & 0o777;
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("cache");
    let rt = Runtime::new(RuntimeConfig {
        cache_dir: Some(root.clone()),
        ..RuntimeConfig::default()
    })
    .unwrap();
    let plugin = rt.load_file(muster::plugins::fixture_good()).unwrap();
    let entry = rt.cache().unwrap().entry(plugin.digest());
    assert_eq!(mode(&root), 0o700);
    assert_eq!(mode(rt.cache().unwrap().dir()), 0o700);
    assert_eq!(mode(&entry), 0o600);
    assert_eq!(mode(&root.join(muster::runtime::cache::KEY_FILE)), 0o600);

    std::fs::set_permissions(&root, std::fs::Permissions::from_mode(0o773)).unwrap();
    let err = Runtime::new(RuntimeConfig {
        cache_dir: Some(root.clone()),
        ..RuntimeConfig::default()
    })
    .err()
    .expect("a group/world-writable cache is refused");
    assert!(
        matches!(&err, muster::runtime::PluginError::UnsafeCache { path, .. } if *path == root),
        "{err:?}"
    );
    assert!(err.to_string().contains("773"), "{err}");
}
