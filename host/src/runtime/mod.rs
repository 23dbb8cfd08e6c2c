//! The plugin runtime: one [`Runtime`] (engine, linker, epoch ticker,
//! compilation cache) per process, one [`Plugin`] per loaded component (an
//! `InstancePre`, reused for every instantiation), one [`PluginInstance`] per
//! configured connection (its own `Store`, memory cap, fuel and deadline).
//!
//! Every call into a plugin goes through [`PluginInstance::call`], which
//! refuels the store, arms the epoch deadline, and turns any failure into a
//! typed [`PluginError`]. A trap poisons only that instance: the engine and
//! every other instance keep working.

pub mod bindings;
pub mod cache;
mod error;
pub mod http;
pub mod log;
mod state;
pub mod validate;

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::mpsc;
use std::thread::JoinHandle;
use std::time::Duration;

use wasmtime::component::{Component, Linker};
use wasmtime::{Config, Engine, Store, Trap};

pub use bindings::{
    AccountUpdate, Applied, Capability, CompoundRow, ConfigKey, ConnectorError, CredentialSlot,
    Date, FieldValue, Group, GroupPage, ManagerChange, Manifest, Membership, NewGroup, Operation,
    Person, PersonPage, Scalar,
};
pub use cache::{ComponentCache, Loaded};
pub use error::PluginError;
pub use http::{DenyAll, OutboundHttp, grant};
pub use log::{LogLine, LogSink, MemoryLog, StderrLog};

use bindings::{ConnectorPlugin, ConnectorPluginPre};
use state::HostState;

/// The contract version this host implements (`wit/`, `muster:connector@0.1.0`).
pub const CONTRACT_VERSION: &str = "0.1.0";

/// Resource budgets and the cache location.
#[derive(Debug, Clone)]
pub struct RuntimeConfig {
    /// Root of the precompiled-component cache; `None` compiles on every load.
    pub cache_dir: Option<PathBuf>,
    /// Maximum linear memory per plugin instance, in bytes (default 64 MiB).
    pub memory_limit: usize,
    /// Fuel granted to each call (default 20 billion: seconds of work, far
    /// more than reading a page of records needs).
    pub fuel_per_call: u64,
    /// Wall-clock budget of each call. Time spent blocked in host HTTP counts,
    /// but the deadline can only interrupt wasm code: a call that overran
    /// while in the host fails as soon as it returns to the guest (HTTP has its
    /// own timeouts in `muster-outbound`).
    pub call_timeout: Duration,
    /// Epoch tick: the resolution of `call_timeout`.
    pub epoch_tick: Duration,
}

impl Default for RuntimeConfig {
    fn default() -> Self {
        RuntimeConfig {
            cache_dir: None,
            memory_limit: 64 << 20,
            fuel_per_call: 20_000_000_000,
            call_timeout: Duration::from_secs(120),
            epoch_tick: Duration::from_millis(10),
        }
    }
}

/// Increments the engine's epoch every tick until dropped.
struct EpochTicker {
    stop: Option<mpsc::Sender<()>>,
    thread: Option<JoinHandle<()>>,
}

impl EpochTicker {
    fn start(engine: Engine, tick: Duration) -> Result<Self, PluginError> {
        let (stop, stopped) = mpsc::channel::<()>();
        let thread = std::thread::Builder::new()
            .name("muster-epoch".into())
            .spawn(move || {
                while let Err(mpsc::RecvTimeoutError::Timeout) = stopped.recv_timeout(tick) {
                    engine.increment_epoch();
                }
            })
            .map_err(|e| PluginError::Runtime(format!("cannot start the epoch ticker: {e}")))?;
        Ok(EpochTicker {
            stop: Some(stop),
            thread: Some(thread),
        })
    }
}

impl Drop for EpochTicker {
    fn drop(&mut self) {
        drop(self.stop.take());
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

/// The process-wide runtime. Cheap to share behind an `Arc`.
pub struct Runtime {
    engine: Engine,
    linker: Linker<HostState>,
    cache: Option<ComponentCache>,
    config: RuntimeConfig,
    _ticker: EpochTicker,
}

impl Runtime {
    /// Builds the engine, links WASI (nothing granted) and the contract's
    /// imports, and starts the epoch ticker.
    pub fn new(config: RuntimeConfig) -> Result<Self, PluginError> {
        let mut wasm_config = Config::new();
        wasm_config
            .wasm_component_model(true)
            .consume_fuel(true)
            .epoch_interruption(true);
        let engine =
            Engine::new(&wasm_config).map_err(|e| PluginError::Runtime(format!("{e:#}")))?;

        let mut linker = Linker::<HostState>::new(&engine);
        wasmtime_wasi::p2::add_to_linker_sync(&mut linker)
            .map_err(|e| PluginError::Runtime(format!("{e:#}")))?;
        ConnectorPlugin::add_to_linker::<HostState, wasmtime::component::HasSelf<HostState>>(
            &mut linker,
            |s| s,
        )
        .map_err(|e| PluginError::Runtime(format!("{e:#}")))?;

        let cache = config
            .cache_dir
            .as_deref()
            .map(|dir| ComponentCache::new(dir, &engine));
        let ticker = EpochTicker::start(engine.clone(), config.epoch_tick)?;
        Ok(Runtime {
            engine,
            linker,
            cache,
            config,
            _ticker: ticker,
        })
    }

    /// The engine (shared by every plugin of this runtime).
    pub fn engine(&self) -> &Engine {
        &self.engine
    }

    /// The configuration in force.
    pub fn config(&self) -> &RuntimeConfig {
        &self.config
    }

    /// The compilation cache, if configured.
    pub fn cache(&self) -> Option<&ComponentCache> {
        self.cache.as_ref()
    }

    /// Loads a plugin from a `.wasm` file.
    pub fn load_file(&self, path: impl AsRef<Path>) -> Result<Plugin, PluginError> {
        let path = path.as_ref();
        let wasm = std::fs::read(path).map_err(|source| PluginError::Io {
            path: path.to_path_buf(),
            source,
        })?;
        self.load(&wasm)
    }

    /// Loads a plugin from component bytes: compile (or fetch from the
    /// cache), then resolve every import once into an `InstancePre`.
    pub fn load(&self, wasm: &[u8]) -> Result<Plugin, PluginError> {
        if wasmparser_is_core_module(wasm) {
            return Err(PluginError::InvalidComponent(
                "this is a core WebAssembly module, not a component (build for wasm32-wasip2)"
                    .into(),
            ));
        }
        let digest = cache::wasm_digest(wasm);
        let (component, loaded) = match &self.cache {
            Some(cache) => cache.load(&self.engine, wasm, &digest)?,
            None => (
                Component::new(&self.engine, wasm)
                    .map_err(|e| PluginError::InvalidComponent(format!("{e:#}")))?,
                Loaded::Compiled,
            ),
        };
        let pre =
            self.linker
                .instantiate_pre(&component)
                .map_err(|e| PluginError::Incompatible {
                    reason: format!("{e:#}"),
                })?;
        let pre = ConnectorPluginPre::new(pre).map_err(|e| PluginError::Incompatible {
            reason: format!("{e:#}"),
        })?;
        Ok(Plugin {
            pre,
            digest,
            loaded,
            config: self.config.clone(),
        })
    }
}

/// A core module starts with the same magic as a component but a different
/// layer/version field; catching it early gives a clearer error.
fn wasmparser_is_core_module(wasm: &[u8]) -> bool {
    wasm.len() >= 8 && wasm[..4] == *b"\0asm" && wasm[4..8] == [1, 0, 0, 0]
}

/// What a plugin instance may reach, besides nothing.
#[derive(Clone)]
pub struct Capabilities {
    /// Name the instance's HTTP requests and log lines are attributed to (the
    /// connection name, e.g. `lucca`); `None` uses the manifest's name. The
    /// outbound policy's grants are keyed by this name.
    pub name: Option<String>,
    /// Outbound HTTP (normally a `muster_outbound::Outbound`).
    pub http: Arc<dyn OutboundHttp>,
    /// Where log lines go.
    pub log: Arc<dyn LogSink>,
}

impl Default for Capabilities {
    /// No network, logs to standard error.
    fn default() -> Self {
        Capabilities {
            name: None,
            http: Arc::new(DenyAll),
            log: Arc::new(StderrLog),
        }
    }
}

/// A loaded, linked plugin component, ready to instantiate many times.
#[derive(Clone)]
pub struct Plugin {
    pre: ConnectorPluginPre<HostState>,
    digest: String,
    loaded: Loaded,
    config: RuntimeConfig,
}

impl Plugin {
    /// SHA-256 of the component bytes.
    pub fn digest(&self) -> &str {
        &self.digest
    }

    /// Whether this load hit the compilation cache.
    pub fn loaded(&self) -> Loaded {
        self.loaded
    }

    /// Creates a fresh instance in its own store, calls `describe`, and checks
    /// the contract version. The manifest's name attributes logs and HTTP.
    pub fn instantiate(&self, caps: Capabilities) -> Result<PluginInstance, PluginError> {
        let engine = self.pre.engine();
        let label = caps.name;
        let state = HostState::new(
            "(loading)".into(),
            self.config.memory_limit,
            caps.http,
            caps.log,
        );
        let mut store = Store::new(engine, state);
        store.limiter(|s| &mut s.limiter);
        store.epoch_deadline_trap();
        let mut instance = PluginInstance {
            store,
            bindings: None,
            manifest: None,
            name: "(loading)".into(),
            poisoned: false,
            config: self.config.clone(),
        };
        instance.arm()?;
        let bindings = match self.pre.instantiate(&mut instance.store) {
            Ok(b) => b,
            Err(e) => return Err(instance.classify(e)),
        };
        instance.bindings = Some(bindings);
        let manifest = instance.call(|b, s| b.muster_connector_connector().call_describe(s))?;
        check_contract(&manifest.contract_version)?;
        instance.name = label.unwrap_or_else(|| manifest.name.clone());
        let data = instance.store.data_mut();
        data.plugin = instance.name.clone();
        data.credential_slots = manifest
            .credential_slots
            .iter()
            .map(|s| s.name.clone())
            .collect();
        instance.manifest = Some(manifest);
        Ok(instance)
    }
}

/// Accepts any `0.1.x` (additive minor versions, see DESIGN.md §3).
fn check_contract(version: &str) -> Result<(), PluginError> {
    let mut parts = version.trim().split('.');
    match (parts.next(), parts.next()) {
        (Some("0"), Some("1")) => Ok(()),
        _ => Err(PluginError::Incompatible {
            reason: format!(
                "plugin speaks contract {version}, this host speaks {CONTRACT_VERSION} (0.1.x)"
            ),
        }),
    }
}

/// One running plugin instance: its store, bindings and manifest.
pub struct PluginInstance {
    store: Store<HostState>,
    bindings: Option<ConnectorPlugin>,
    manifest: Option<Manifest>,
    name: String,
    poisoned: bool,
    config: RuntimeConfig,
}

impl PluginInstance {
    /// The manifest returned by `describe` at instantiation.
    pub fn manifest(&self) -> &Manifest {
        // Invariant: `Plugin::instantiate` only returns instances with a manifest.
        self.manifest
            .as_ref()
            .unwrap_or_else(|| unreachable!("instance without manifest"))
    }

    /// The plugin's name, from its manifest.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// Whether an earlier call trapped (the instance then refuses calls).
    pub fn is_poisoned(&self) -> bool {
        self.poisoned
    }

    /// Refuels and re-arms the deadline before a call.
    fn arm(&mut self) -> Result<(), PluginError> {
        self.store
            .set_fuel(self.config.fuel_per_call)
            .map_err(|e| PluginError::Runtime(format!("{e:#}")))?;
        let tick = self.config.epoch_tick.as_nanos().max(1);
        let ticks =
            u64::try_from(self.config.call_timeout.as_nanos().div_ceil(tick)).unwrap_or(u64::MAX);
        self.store.set_epoch_deadline(ticks.max(1));
        Ok(())
    }

    /// Maps a wasmtime failure to a typed error and poisons the instance.
    fn classify(&mut self, err: wasmtime::Error) -> PluginError {
        self.poisoned = true;
        let plugin = self.name.clone();
        if self.store.data().limiter.hit {
            return PluginError::MemoryLimit {
                plugin,
                limit: self.config.memory_limit,
            };
        }
        match err.downcast_ref::<Trap>() {
            Some(Trap::OutOfFuel) => PluginError::OutOfFuel {
                plugin,
                budget: self.config.fuel_per_call,
            },
            Some(Trap::Interrupt) => PluginError::Timeout {
                plugin,
                budget: self.config.call_timeout,
            },
            _ => PluginError::Trap {
                plugin,
                detail: format!("{err:?}"),
            },
        }
    }

    /// Runs one export under the per-call budgets.
    fn call<R>(
        &mut self,
        f: impl FnOnce(&ConnectorPlugin, &mut Store<HostState>) -> wasmtime::Result<R>,
    ) -> Result<R, PluginError> {
        if self.poisoned {
            return Err(PluginError::Poisoned(self.name.clone()));
        }
        self.arm()?;
        let Some(bindings) = self.bindings.as_ref() else {
            return Err(PluginError::Runtime("instance has no bindings".into()));
        };
        match f(bindings, &mut self.store) {
            Ok(r) => Ok(r),
            Err(e) => Err(self.classify(e)),
        }
    }

    /// Lifts a connector-level result into the host error type.
    fn connector<R>(&self, r: Result<R, ConnectorError>) -> Result<R, PluginError> {
        r.map_err(|error| PluginError::Connector {
            plugin: self.name.clone(),
            error,
        })
    }

    fn require(&self, capability: Capability) -> Result<(), PluginError> {
        if self.manifest().capabilities.contains(&capability) {
            Ok(())
        } else {
            Err(PluginError::MissingCapability {
                plugin: self.name.clone(),
                capability: capability.to_string(),
            })
        }
    }

    /// Calls `describe` again (the manifest is also cached: [`Self::manifest`]).
    pub fn describe(&mut self) -> Result<Manifest, PluginError> {
        self.call(|b, s| b.muster_connector_connector().call_describe(s))
    }

    /// Passes the connection settings.
    pub fn configure(&mut self, settings: &[(String, String)]) -> Result<(), PluginError> {
        let r = self.call(|b, s| b.muster_connector_connector().call_configure(s, settings))?;
        self.connector(r)
    }

    /// Checks credentials and reachability.
    pub fn check(&mut self) -> Result<(), PluginError> {
        let r = self.call(|b, s| b.muster_connector_connector().call_check(s))?;
        self.connector(r)
    }

    /// Reads one page of source people; every date is validated.
    pub fn read_people(&mut self, cursor: Option<&str>) -> Result<PersonPage, PluginError> {
        self.require(Capability::ReadPeople)?;
        let r = self.call(|b, s| b.muster_connector_source().call_read_people(s, cursor))?;
        let page = self.connector(r)?;
        self.validated(page)
    }

    /// Reads one page of source groups.
    pub fn read_groups(&mut self, cursor: Option<&str>) -> Result<GroupPage, PluginError> {
        self.require(Capability::ReadGroups)?;
        let r = self.call(|b, s| b.muster_connector_source().call_read_groups(s, cursor))?;
        self.connector(r)
    }

    /// Reads one page of target accounts; every date is validated.
    pub fn read_accounts(&mut self, cursor: Option<&str>) -> Result<PersonPage, PluginError> {
        self.require(Capability::ReadAccounts)?;
        let r = self.call(|b, s| b.muster_connector_target().call_read_accounts(s, cursor))?;
        let page = self.connector(r)?;
        self.validated(page)
    }

    /// Reads one page of target groups.
    pub fn read_target_groups(&mut self, cursor: Option<&str>) -> Result<GroupPage, PluginError> {
        self.require(Capability::ReadTargetGroups)?;
        let r = self.call(|b, s| b.muster_connector_target().call_read_groups(s, cursor))?;
        self.connector(r)
    }

    /// Applies one operation to the target.
    pub fn apply(&mut self, operation: &Operation) -> Result<Applied, PluginError> {
        let needed = match operation {
            Operation::CreateGroup(_)
            | Operation::RenameGroup(_)
            | Operation::AddMember(_)
            | Operation::RemoveMember(_) => Capability::WriteGroups,
            _ => Capability::WriteAccounts,
        };
        self.require(needed)?;
        let r = self.call(|b, s| b.muster_connector_target().call_apply(s, operation))?;
        self.connector(r)
    }

    /// Reads every page of source people, following cursors. A failed page
    /// fails the whole read (an incomplete source must never look complete).
    pub fn read_all_people(&mut self) -> Result<Vec<Person>, PluginError> {
        self.read_all(|i, c| i.read_people(c).map(|p| (p.items, p.next)))
    }

    /// Reads every page of source groups (see [`Self::read_all_people`]).
    pub fn read_all_groups(&mut self) -> Result<Vec<Group>, PluginError> {
        self.read_all(|i, c| i.read_groups(c).map(|p| (p.items, p.next)))
    }

    /// Reads every page of target accounts (see [`Self::read_all_people`]).
    pub fn read_all_accounts(&mut self) -> Result<Vec<Person>, PluginError> {
        self.read_all(|i, c| i.read_accounts(c).map(|p| (p.items, p.next)))
    }

    /// Reads every page of target groups (see [`Self::read_all_people`]).
    pub fn read_all_target_groups(&mut self) -> Result<Vec<Group>, PluginError> {
        self.read_all(|i, c| i.read_target_groups(c).map(|p| (p.items, p.next)))
    }

    /// Follows cursors until a page has none. A cursor that does not advance
    /// is an `invalid` error rather than an endless loop.
    fn read_all<T>(
        &mut self,
        mut page: impl FnMut(&mut Self, Option<&str>) -> Result<(Vec<T>, Option<String>), PluginError>,
    ) -> Result<Vec<T>, PluginError> {
        let mut all = Vec::new();
        let mut cursor: Option<String> = None;
        loop {
            let (items, next) = page(self, cursor.as_deref())?;
            all.extend(items);
            match next {
                Some(next) if Some(&next) != cursor.as_ref() => cursor = Some(next),
                Some(_) => {
                    return Err(PluginError::Connector {
                        plugin: self.name.clone(),
                        error: ConnectorError::Invalid("paging cursor did not advance".into()),
                    });
                }
                None => return Ok(all),
            }
        }
    }

    fn validated(&self, page: PersonPage) -> Result<PersonPage, PluginError> {
        for p in &page.items {
            self.connector(validate::person(p))?;
        }
        Ok(page)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn contract_versions() {
        assert!(check_contract("0.1.0").is_ok());
        assert!(check_contract("0.1.7").is_ok());
        assert!(matches!(
            check_contract("0.2.0"),
            Err(PluginError::Incompatible { .. })
        ));
        assert!(matches!(
            check_contract("1.0.0"),
            Err(PluginError::Incompatible { .. })
        ));
    }

    #[test]
    fn core_modules_are_recognised() {
        assert!(wasmparser_is_core_module(b"\0asm\x01\0\0\0"));
        assert!(!wasmparser_is_core_module(b"\0asm\x0d\0\x01\0"));
    }
}
