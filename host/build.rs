//! Builds the guest workspace `plugins/` for `wasm32-wasip2`, so a plain
//! `cargo build` / `cargo test` from a clean clone produces the `.wasm`
//! plugins (the Fermyon Spin `test-components` approach).
//!
//! The inner cargo gets a clean environment: everything the outer cargo sets
//! for build scripts or for its own configuration (RUSTFLAGS, target dir,
//! build target, clippy's workspace wrapper, `cargo fix` internals…) would
//! otherwise leak into a build for a different target.

use std::env;
use std::path::{Path, PathBuf};
use std::process::Command;

const TARGET: &str = "wasm32-wasip2";

fn main() {
    let manifest_dir =
        PathBuf::from(env::var_os("CARGO_MANIFEST_DIR").expect("cargo sets CARGO_MANIFEST_DIR"));
    let root = manifest_dir
        .parent()
        .expect("host/ has a parent")
        .to_path_buf();
    let plugins = root.join("plugins");
    watch(&plugins);
    println!("cargo:rerun-if-changed={}", root.join("wit").display());

    let out_dir = PathBuf::from(env::var_os("OUT_DIR").expect("cargo sets OUT_DIR"));
    let target_dir = main_target_dir(&out_dir)
        .unwrap_or_else(|| out_dir.clone())
        .join("plugins");

    let rustc = env::var_os("RUSTC").unwrap_or_else(|| "rustc".into());
    check_target_installed(Path::new(&rustc));

    let cargo = env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
    let mut cmd = Command::new(cargo);
    cmd.arg("build")
        .arg("--release")
        .arg("--target")
        .arg(TARGET)
        .arg("--manifest-path")
        .arg(plugins.join("Cargo.toml"))
        .arg("--target-dir")
        .arg(&target_dir);
    for (key, _) in env::vars_os() {
        let Some(key) = key.to_str() else { continue };
        if leaks_into_inner_build(key) {
            cmd.env_remove(key);
        }
    }
    let status = cmd.status().expect("cannot run cargo to build the plugins");
    if !status.success() {
        panic!(
            "building the plugins in {} for {TARGET} failed (see the output above)",
            plugins.display()
        );
    }
    let dir = target_dir.join(TARGET).join("release");
    println!("cargo:rustc-env=MUSTER_PLUGIN_DIR={}", dir.display());
}

/// Re-run when anything under `plugins/` changes, except a `target/` there
/// (`cargo clippy --manifest-path plugins/Cargo.toml`, as CI runs it, writes
/// one, and cargo scans a watched directory recursively). So the top-level
/// entries are watched one by one; a new crate also changes
/// `plugins/Cargo.toml` (its `members`), which is watched.
fn watch(plugins: &Path) {
    let Ok(entries) = std::fs::read_dir(plugins) else {
        println!("cargo:rerun-if-changed={}", plugins.display());
        return;
    };
    for entry in entries.flatten() {
        if entry.file_name() != "target" {
            println!("cargo:rerun-if-changed={}", entry.path().display());
        }
    }
}

/// Outer-build variables that must not configure the inner build.
fn leaks_into_inner_build(key: &str) -> bool {
    const KEEP: &[&str] = &[
        "CARGO_HOME",
        "CARGO_MAKEFLAGS",
        "CARGO_NET_OFFLINE",
        "CARGO_HTTP_TIMEOUT",
    ];
    if KEEP.contains(&key) || key.starts_with("CARGO_REGISTRIES_") || key.starts_with("CARGO_NET_")
    {
        return false;
    }
    key.starts_with("CARGO_")
        || key.starts_with("__CARGO")
        || key.starts_with("DEP_")
        || matches!(
            key,
            "RUSTFLAGS"
                | "RUSTDOCFLAGS"
                | "RUSTC_WORKSPACE_WRAPPER"
                | "TARGET"
                | "HOST"
                | "OUT_DIR"
                | "PROFILE"
                | "OPT_LEVEL"
                | "DEBUG"
                | "NUM_JOBS"
                | "RUSTC_LINKER"
                | "CLIPPY_ARGS"
                | "CLIPPY_CONF_DIR"
        )
}

/// The outer target directory: the ancestor of OUT_DIR that cargo marked
/// with `CACHEDIR.TAG`.
fn main_target_dir(out_dir: &Path) -> Option<PathBuf> {
    out_dir
        .ancestors()
        .find(|p| p.join("CACHEDIR.TAG").is_file())
        .map(Path::to_path_buf)
}

fn check_target_installed(rustc: &Path) {
    let sysroot = Command::new(rustc)
        .args(["--print", "sysroot"])
        .output()
        .ok()
        .filter(|o| o.status.success())
        .map(|o| PathBuf::from(String::from_utf8_lossy(&o.stdout).trim()));
    if let Some(sysroot) = sysroot
        && !sysroot.join("lib/rustlib").join(TARGET).is_dir()
    {
        panic!(
            "the Rust target `{TARGET}` is not installed (needed to build the connector plugins in plugins/); \
             run `rustup target add {TARGET}`"
        );
    }
}
