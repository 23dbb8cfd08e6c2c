//! # muster — the host
//!
//! muster keeps an HR system and the SaaS tools around it in agreement. Every
//! third-party system is reached through a *connector plugin*: a WebAssembly
//! component built against one version of the contract in `wit/`
//! (`wit/since_v0.1.0`, `wit/since_v0.2.0`; the host speaks both, see
//! [`runtime::contract`]).
//! This crate is the thin host around them:
//!
//! - [`runtime`] — the sandbox. One wasmtime [`Engine`](wasmtime::Engine) per
//!   process (component model, fuel for a per-call budget, epoch interruption
//!   driven by a ticker thread for a wall-clock budget), one `Store` per plugin
//!   instance with a memory cap that traps on growth failure, precompiled
//!   components cached on disk (keyed by the engine's compatibility hash and
//!   the wasm's SHA-256, in a private directory, each entry authenticated by
//!   an HMAC so planted native code is never loaded) and `InstancePre` reuse
//!   so instantiating is cheap.
//!   WASI is linked so ordinary Rust guests run, but nothing is granted: no
//!   files, no environment, no arguments, no sockets.
//! - The plugin's only capabilities are the contract's imports, one module
//!   each: [`runtime::http`] (delegates every request to `muster-outbound`,
//!   which owns the allow-list, rate limits and credential injection — the
//!   secret never enters plugin memory) and [`runtime::log`].
//! - [`store`] — the state database (one SQLite file): flows, links, runs,
//!   the action journal, watermarks, held plans, audit log.
//! - [`config`] — the TOML config file: tenant, connections, flows resolved
//!   into the core's `Policy` and `Mapping`; errors name key and line:column.
//! - [`schedule`] — `daily 02:00` in the tenant's zone, DST-correct, and the
//!   scheduler with an injectable clock.
//! - [`serve`] — `muster serve`: schedules, webhooks into a durable inbox,
//!   `/healthz`, a status page, and admin pages to approve held plans.
//! - [`alerts`] — what `serve` tells people: a failed run, a held plan,
//!   records failing across runs, by webhook (Slack/Teams) and/or email.
//! - [`cli`] — the `muster` command line (`muster plugin inspect FILE.wasm`).
//!
//! Business rules live in `muster-core`; this crate holds none.
//!
//! Loading a plugin, granting it its hosts and secret, and calling it:
//!
//! ```no_run
//! use std::sync::Arc;
//! use muster::runtime::{grant, Capabilities, MemoryLog, Runtime, RuntimeConfig};
//! use muster_outbound::{Credential, Outbound, Policy};
//! # fn main() -> Result<(), Box<dyn std::error::Error>> {
//! let runtime = Runtime::new(RuntimeConfig { cache_dir: Some("cache".into()), ..Default::default() })?;
//! let outbound = Arc::new(Outbound::new(Policy::default())?);
//! let plugin = runtime.load_file("lucca.wasm")?; // compiled once, then from the cache
//! let caps = Capabilities { name: Some("lucca".into()), http: outbound.clone(), log: Arc::new(MemoryLog::new()) };
//! let mut lucca = plugin.instantiate(caps)?; // calls `describe` (contract version read at load)
//! // The grant is the manifest's hosts narrowed by the tenant config, plus the secret per slot;
//! // the plugin makes no request before `configure`, so registering it now is in time.
//! let policy = grant(lucca.manifest(), &["https://acme.ilucca.net"], vec![Credential::new("api-key", "…")])?;
//! outbound.set_plugin("lucca", policy)?;
//! lucca.configure(&[("subdomain".into(), "acme".into())])?;
//! lucca.check()?;
//! let read = lucca.read_all_people(None)?; // every page, or an error: never a partial read
//! let (people, problems) = (read.people, read.problems); // records, and those it could not take
//! # let _ = (people, problems); Ok(()) }
//! ```

pub mod alerts;
pub mod cli;
pub mod config;
pub mod connect;
pub mod engine;
pub mod fleet;
pub mod plugins;
pub mod runtime;
pub mod schedule;
pub mod serve;
pub mod store;
