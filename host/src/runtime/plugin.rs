//! A loaded component ([`Plugin`]) and what an instance of it may reach
//! ([`Capabilities`]): instantiation from the `InstancePre` of the
//! component's contract version, and the `describe` call.

use std::sync::Arc;

use wasmtime::Store;

use super::PluginError;
use super::bindings::Manifest;
use super::cache::Loaded;
use super::contract::{BindingsPre, ContractVersion};
use super::declarations::Declarations;
use super::engine::RuntimeConfig;
use super::http::{DenyAll, OutboundHttp};
use super::instance::{Origin, PluginInstance};
use super::log::{LogSink, MemoryLog, StderrLog};
use super::state::HostState;

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
    pub(crate) pre: BindingsPre,
    pub(crate) digest: String,
    pub(crate) loaded: Loaded,
    pub(crate) config: RuntimeConfig,
    pub(crate) declarations: Declarations,
}

impl Plugin {
    /// SHA-256 of the component bytes.
    pub fn digest(&self) -> &str {
        &self.digest
    }

    /// The contract version the component speaks, read from its exports.
    pub fn contract_version(&self) -> ContractVersion {
        self.pre.version()
    }

    /// What the plugin declares about its vendor (stored fields, fields a
    /// create requires), read from the component's custom section at load.
    pub fn declarations(&self) -> &Declarations {
        &self.declarations
    }

    /// Whether this load hit the compilation cache.
    pub fn loaded(&self) -> Loaded {
        self.loaded
    }

    /// Creates a fresh instance in its own store and calls `describe`. The
    /// manifest's name attributes logs and HTTP.
    pub fn instantiate(&self, caps: Capabilities) -> Result<PluginInstance, PluginError> {
        let engine = self.pre.engine();
        let origin = Origin {
            plugin: self.clone(),
            caps: caps.clone(),
        };
        let label = caps.name;
        let state = HostState::new("(loading)".into(), &self.config, caps.http, caps.log);
        let mut store = Store::new(engine, state);
        store.limiter(|s| &mut s.limiter);
        store.epoch_deadline_trap();
        let mut instance = PluginInstance {
            store,
            bindings: None,
            version: self.pre.version(),
            manifest: None,
            name: "(loading)".into(),
            poisoned: false,
            config: self.config.clone(),
            origin,
            settings: None,
            max_in_flight: 1,
        };
        instance.arm()?;
        let bindings = match self
            .pre
            .instantiate(&mut instance.store, &self.declarations)
        {
            Ok(b) => b,
            Err(e) => return Err(instance.classify(e)),
        };
        instance.bindings = Some(bindings);
        let manifest = instance.call(|b, s| b.describe(s))?;
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

    /// The plugin's manifest (in the latest contract's terms), from a
    /// throw-away instance with no network — for `muster plugin inspect`.
    pub fn describe(&self) -> Result<Manifest, PluginError> {
        let caps = Capabilities {
            name: None,
            http: Arc::new(DenyAll),
            log: Arc::new(MemoryLog::new()),
        };
        Ok(self.instantiate(caps)?.manifest().clone())
    }
}
