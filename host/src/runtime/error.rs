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
    /// The component speaks a contract version this host does not support
    /// (read from the version of the interfaces it exports).
    #[error(
        "incompatible plugin: it speaks contract {version}, which this host does not support (supports {supported})"
    )]
    UnsupportedContract {
        /// The version the component's exports carry, e.g. `0.3.0`.
        version: String,
        /// The versions this host supports, e.g. `0.1.0, 0.2.0`.
        supported: String,
    },
    /// The host was about to send an operation the plugin's contract version
    /// cannot express (a 0.2-only operation to a 0.1 plugin); nothing was sent.
    #[error(
        "plugin `{plugin}` speaks contract {contract}, which has no `{operation}`; nothing was sent"
    )]
    UnsupportedOperation {
        /// Plugin name.
        plugin: String,
        /// The operation, e.g. `change-members with other than one member`.
        operation: &'static str,
        /// The plugin's contract version.
        contract: super::ContractVersion,
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
    /// The compiled-plugin cache directory (or its key) could be tampered
    /// with by someone else: another user owns it, or group/others may write
    /// to it (or read the key). Its entries are native code, so it is refused
    /// rather than trusted.
    #[error(
        "refusing the plugin cache {}: {reason}; fix it (chmod 700 for a directory, 600 for the key, owned by this user) or point `tenant.cache` elsewhere",
        path.display()
    )]
    UnsafeCache {
        /// The directory or key file concerned.
        path: PathBuf,
        /// What is wrong with it.
        reason: String,
    },
    /// Engine set-up or another host-side failure.
    #[error("runtime: {0}")]
    Runtime(String),
}

/// Passes every free-text payload of a connector error through `redact`.
///
/// A plugin's error strings are vendor text as much as the plugin's own (the
/// SDK copies 200-character excerpts of vendor bodies into them), so they may
/// carry a secret. The runtime applies the same redaction as to plugin log
/// lines (the outbound redactor: every configured secret, raw and
/// percent-encoded, becomes `***`) at the one place a plugin's error becomes a
/// [`PluginError::Connector`]; the journal, the status page, `--json` and
/// tracing downstream only ever see the redacted text.
pub(crate) fn redact_connector_error(
    error: ConnectorError,
    redact: impl Fn(&str) -> String,
) -> ConnectorError {
    match error {
        ConnectorError::Unauthorized(t) => ConnectorError::Unauthorized(redact(&t)),
        ConnectorError::Forbidden(t) => ConnectorError::Forbidden(redact(&t)),
        ConnectorError::Conflict(t) => ConnectorError::Conflict(redact(&t)),
        ConnectorError::Invalid(t) => ConnectorError::Invalid(redact(&t)),
        ConnectorError::Unavailable(t) => ConnectorError::Unavailable(redact(&t)),
        ConnectorError::Other(t) => ConnectorError::Other(redact(&t)),
        e @ (ConnectorError::NotFound
        | ConnectorError::RateLimited(_)
        | ConnectorError::Unsupported) => e,
    }
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_text_payload_is_redacted_and_the_rest_kept() {
        let redact = |t: &str| t.replace("k3y", "***");
        let cases = [
            (
                ConnectorError::Forbidden("a k3y".into()),
                ConnectorError::Forbidden("a ***".into()),
            ),
            (
                ConnectorError::Conflict("k3y".into()),
                ConnectorError::Conflict("***".into()),
            ),
            (
                ConnectorError::Invalid("k3y!".into()),
                ConnectorError::Invalid("***!".into()),
            ),
            (
                ConnectorError::Unavailable("body: k3y".into()),
                ConnectorError::Unavailable("body: ***".into()),
            ),
            (
                ConnectorError::Other("k3yk3y".into()),
                ConnectorError::Other("******".into()),
            ),
            (
                ConnectorError::RateLimited(7),
                ConnectorError::RateLimited(7),
            ),
            (
                ConnectorError::Unauthorized("revoked k3y".into()),
                ConnectorError::Unauthorized("revoked ***".into()),
            ),
            (ConnectorError::NotFound, ConnectorError::NotFound),
        ];
        for (input, want) in cases {
            assert_eq!(redact_connector_error(input, redact), want);
        }
    }
}
