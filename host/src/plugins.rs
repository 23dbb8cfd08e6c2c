//! Where the plugins built from `plugins/` by `host/build.rs` live.
//!
//! `build.rs` compiles the guest workspace for `wasm32-wasip2` into its own
//! target directory (under the main one) on every ordinary `cargo build`, so
//! these paths exist whenever this crate compiled.

use std::path::PathBuf;

/// Directory holding the built `.wasm` plugins.
pub const PLUGIN_DIR: &str = env!("MUSTER_PLUGIN_DIR");

/// Path of the built plugin crate `crate_name` (dashes or underscores).
pub fn path(crate_name: &str) -> PathBuf {
    PathBuf::from(PLUGIN_DIR).join(format!("{}.wasm", crate_name.replace('-', "_")))
}

/// Test fixture: a well-behaved synthetic source/target.
pub fn fixture_good() -> PathBuf {
    path("fixture-good")
}

/// Test fixture: misbehaves on purpose, selected by its `mode` setting.
pub fn fixture_misbehave() -> PathBuf {
    path("fixture-misbehave")
}

/// Test fixture: exports `muster:connector/connector@0.3.0`, a contract
/// version this host must refuse at load.
pub fn fixture_future() -> PathBuf {
    path("fixture-future")
}

/// Test fixture: a credential slot that sets `Cookie`, which the host must
/// refuse when the plugin loads.
pub fn fixture_steer() -> PathBuf {
    path("fixture-steer")
}
