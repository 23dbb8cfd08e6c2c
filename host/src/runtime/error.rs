//! The one error type of the runtime. Every way a plugin can fail maps to a
//! variant the caller can act on without parsing strings: a misbehaving plugin
//! (fuel, time, memory, trap) is distinguished from a well-behaved plugin
//! reporting a vendor problem (`Connector`).

use std::path::PathBuf;
use std::time::Duration;

use super::bindings::ConnectorError;

/// Why loading, instantiating or calling a plugin failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum PluginError {
    /// The call used up its fuel budget (roughly: wasm instructions).
    #[error("plugin `{plugin}` ran out of fuel (budget {budget} units per call)")]
    OutOfFuel {
        /// Plugin name.
        plugin: String,
        /// Fuel granted to the call.
        budget: u64,
    },
    /// The call exceeded its wall-clock budget (epoch deadline).
    #[error("plugin `{plugin}` exceeded its time budget of {budget:?}")]
    Timeout {
        /// Plugin name.
        plugin: String,
        /// Wall-clock time granted to the call.
        budget: Duration,
    },
    /// The plugin tried to grow its memory past the cap.
    #[error("plugin `{plugin}` exceeded its memory limit of {limit} bytes")]
    MemoryLimit {
        /// Plugin name.
        plugin: String,
        /// The cap, in bytes.
        limit: usize,
    },
    /// The plugin went past another sandbox limit: table elements, total
    /// memory, instance/memory/table counts, request body size, requests per
    /// call, pages per read.
    #[error("plugin `{plugin}` exceeded its {limit}")]
    LimitExceeded {
        /// Plugin name (the connection).
        plugin: String,
        /// The limit, with its value.
        limit: super::limits::Limit,
    },
    /// The plugin trapped (panic, `unreachable`, out-of-bounds access…).
    #[error("plugin `{plugin}` trapped: {detail}")]
    Trap {
        /// Plugin name.
        plugin: String,
        /// Wasmtime's description, with the guest backtrace when available.
        detail: String,
    },
    /// The plugin ran fine and reported a typed connector error.
    #[error(
        "plugin `{plugin}`: {}",
        super::bindings::connector_error_message(error)
    )]
    Connector {
        /// Plugin name.
        plugin: String,
        /// The error the connector returned (or the host's validation of its data).
        error: ConnectorError,
    },
    /// The component does not fit this host: wrong imports/exports, or a
    /// contract version this host does not speak.
    #[error("incompatible plugin: {reason}")]
    Incompatible {
        /// What does not fit.
        reason: String,
    },
    /// The file is not a valid WebAssembly component.
    #[error("not a valid plugin component: {0}")]
    InvalidComponent(String),
    /// An earlier call trapped; a trapped instance is never re-entered.
    /// Instantiate the plugin again.
    #[error("plugin `{0}` trapped earlier; instantiate it again")]
    Poisoned(String),
    /// The plugin does not declare the capability the caller needs.
    #[error("plugin `{plugin}` does not declare capability `{capability}`")]
    MissingCapability {
        /// Plugin name.
        plugin: String,
        /// The missing capability.
        capability: String,
    },
    /// Reading a plugin file or writing the compilation cache failed.
    #[error("{path}: {source}")]
    Io {
        /// The file concerned.
        path: PathBuf,
        /// The underlying error.
        source: std::io::Error,
    },
    /// Engine set-up or another host-side failure.
    #[error("runtime: {0}")]
    Runtime(String),
}

impl PluginError {
    /// The connector error, if this is a typed error reported by the plugin.
    pub fn connector_error(&self) -> Option<&ConnectorError> {
        match self {
            PluginError::Connector { error, .. } => Some(error),
            _ => None,
        }
    }
}
