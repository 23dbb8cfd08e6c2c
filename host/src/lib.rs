//! # muster — the host
//!
//! muster keeps an HR system and the SaaS tools around it in agreement. Every
//! third-party system is reached through a *connector plugin*: a WebAssembly
//! component built against the contract in `wit/` (`muster:connector@0.1.0`).
//! This crate is the thin host around them:
//!
//! - [`runtime`] — the sandbox. One wasmtime [`Engine`](wasmtime::Engine) per
//!   process (component model, fuel for a per-call budget, epoch interruption
//!   driven by a ticker thread for a wall-clock budget), one `Store` per plugin
//!   instance with a memory cap that traps on growth failure, precompiled
//!   components cached on disk (keyed by the engine's compatibility hash and
//!   the wasm's SHA-256) and `InstancePre` reuse so instantiating is cheap.
//!   WASI is linked so ordinary Rust guests run, but nothing is granted: no
//!   files, no environment, no arguments, no sockets.
//! - The plugin's only capabilities are the contract's imports, one module
//!   each: [`runtime::http`] (delegates every request to `muster-outbound`,
//!   which owns the allow-list, rate limits and credential injection — the
//!   secret never enters plugin memory) and [`runtime::log`].
//! - [`cli`] — the `muster` command line (`muster plugin inspect FILE.wasm`).
//!
//! Business rules live in `muster-core`; this crate holds none.
//!
//! Loading and calling a plugin:
//!
//! ```no_run
//! use muster::runtime::{Capabilities, Runtime, RuntimeConfig};
//! # fn main() -> Result<(), muster::runtime::PluginError> {
//! let runtime = Runtime::new(RuntimeConfig { cache_dir: Some("cache".into()), ..Default::default() })?;
//! let plugin = runtime.load_file("lucca.wasm")?;
//! let mut lucca = plugin.instantiate(Capabilities::default())?;
//! lucca.configure(&[("subdomain".into(), "acme".into())])?;
//! let people = lucca.read_all_people()?;
//! # let _ = people; Ok(()) }
//! ```

pub mod cli;
pub mod plugins;
pub mod runtime;
