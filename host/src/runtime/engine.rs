//! The process-wide part of the runtime: the wasmtime [`Engine`] (component
//! model, fuel, epoch interruption), the epoch ticker thread, the linker with
//! WASI (nothing granted) and the contract's imports, and loading components
//! through the compilation cache into linked [`Plugin`]s.

use std::path::{Path, PathBuf};
use std::sync::mpsc;
use std::thread::JoinHandle;
use std::time::Duration;

use wasmtime::component::{Component, Linker};
use wasmtime::{Config, Engine};

use super::PluginError;
use super::cache::{self, ComponentCache, Loaded};
use super::contract::{BindingsPre, ContractVersion, v0_1, v0_2};
use super::plugin::Plugin;
use super::state::HostState;

/// Resource budgets and the cache location. Every limit is per plugin
/// instance (or per call where it says so); going past one is a typed
/// [`PluginError`] and never affects other instances. See
/// [`super::limits`] and `docs/sandbox.md`.
#[derive(Debug, Clone)]
pub struct RuntimeConfig {
    /// Root of the precompiled-component cache; `None` compiles on every load.
    pub cache_dir: Option<PathBuf>,
    /// Maximum size of each linear memory, in bytes (default 64 MiB).
    pub memory_limit: usize,
    /// Maximum size of all linear memories of an instance together, in bytes
    /// (default 128 MiB).
    pub total_memory_limit: usize,
    /// Maximum elements of each table (default 100 000).
    pub table_elements: usize,
    /// Maximum core instances a component may create (default 16).
    pub max_instances: usize,
    /// Maximum linear memories a component may create (default 8).
    pub max_memories: usize,
    /// Maximum tables a component may create (default 64).
    pub max_tables: usize,
    /// Fuel granted to each call (default 20 billion: seconds of work, far
    /// more than reading a page of records needs).
    pub fuel_per_call: u64,
    /// Wall-clock budget of each call (default 120 s), time spent in host
    /// HTTP included: the epoch deadline interrupts wasm code, and the `http`
    /// import refuses a request once the deadline has passed and abandons one
    /// still running when it passes.
    pub call_timeout: Duration,
    /// Maximum body of one HTTP request, in bytes (default 8 MiB).
    pub max_request_body: usize,
    /// Maximum HTTP requests one call may send (default 256; retries inside
    /// `muster-outbound` count as one).
    pub max_requests_per_call: u32,
    /// Maximum pages one `read_all_*` follows (default 100 000).
    pub max_pages_per_read: u32,
    /// Epoch tick: the resolution of `call_timeout`.
    pub epoch_tick: Duration,
}

impl Default for RuntimeConfig {
    fn default() -> Self {
        RuntimeConfig {
            cache_dir: None,
            memory_limit: 64 << 20,
            total_memory_limit: 128 << 20,
            table_elements: 100_000,
            max_instances: 16,
            max_memories: 8,
            max_tables: 64,
            fuel_per_call: 20_000_000_000,
            call_timeout: Duration::from_secs(120),
            max_request_body: 8 << 20,
            max_requests_per_call: 256,
            max_pages_per_read: 100_000,
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
        // Every supported version's imports, each under its own versioned
        // names (`muster:connector/http@0.1.0`, `…@0.2.0`); unchanged
        // interfaces share one host implementation.
        v0_1::add_to_linker(&mut linker).map_err(|e| PluginError::Runtime(format!("{e:#}")))?;
        v0_2::ConnectorPlugin::add_to_linker::<HostState, wasmtime::component::HasSelf<HostState>>(
            &mut linker,
            |s| s,
        )
        .map_err(|e| PluginError::Runtime(format!("{e:#}")))?;

        let cache = config
            .cache_dir
            .as_deref()
            .map(|dir| ComponentCache::open(dir, &engine))
            .transpose()?;
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
    /// cache), read the contract version from the component's exports
    /// ([`ContractVersion::of`]; an unsupported one is refused here), then
    /// resolve every import once into that version's `InstancePre`.
    pub fn load(&self, wasm: &[u8]) -> Result<Plugin, PluginError> {
        if wasmparser_is_core_module(wasm) {
            return Err(PluginError::InvalidComponent(
                "this is a core WebAssembly module, not a component (build for wasm32-wasip2)"
                    .into(),
            ));
        }
        let declarations = super::Declarations::from_wasm(wasm)?;
        let digest = cache::wasm_digest(wasm);
        let (component, loaded) = match &self.cache {
            Some(cache) => cache.load(&self.engine, wasm, &digest)?,
            None => (
                Component::new(&self.engine, wasm)
                    .map_err(|e| PluginError::InvalidComponent(format!("{e:#}")))?,
                Loaded::Compiled,
            ),
        };
        let version = ContractVersion::of(&component)?;
        let pre =
            self.linker
                .instantiate_pre(&component)
                .map_err(|e| PluginError::Incompatible {
                    reason: format!("{e:#}"),
                })?;
        let pre = BindingsPre::new(version, pre).map_err(|e| PluginError::Incompatible {
            reason: format!("{e:#}"),
        })?;
        Ok(Plugin {
            pre,
            digest,
            loaded,
            config: self.config.clone(),
            declarations,
        })
    }
}

/// A core module starts with the same magic as a component but a different
/// layer/version field; catching it early gives a clearer error.
fn wasmparser_is_core_module(wasm: &[u8]) -> bool {
    wasm.len() >= 8 && wasm[..4] == *b"\0asm" && wasm[4..8] == [1, 0, 0, 0]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn default_budgets() {
        let config = RuntimeConfig::default();
        assert_eq!(config.memory_limit, 64 << 20);
        assert!(config.cache_dir.is_none());
        assert!(config.epoch_tick < config.call_timeout);
    }

    #[test]
    fn core_modules_are_recognised() {
        assert!(wasmparser_is_core_module(b"\0asm\x01\0\0\0"));
        assert!(!wasmparser_is_core_module(b"\0asm\x0d\0\x01\0"));
    }
}
