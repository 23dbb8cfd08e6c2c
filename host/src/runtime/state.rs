//! Per-store host state: what one plugin instance can reach.
//!
//! A WASI context with nothing granted (no preopened directory, no
//! environment, no arguments, no network, no name lookup, stdio discarded),
//! the resource limiter and per-call HTTP budget ([`super::limits`]), and the
//! two capabilities the contract imports.

use std::sync::Arc;

use wasmtime::component::ResourceTable;
use wasmtime_wasi::{WasiCtx, WasiCtxView, WasiView};

use super::engine::RuntimeConfig;
use super::http::OutboundHttp;
use super::limits::{CallBudget, Limiter};
use super::log::LogSink;
use super::stderr::StderrTail;

/// The `T` of every `Store<T>` the runtime creates.
pub struct HostState {
    /// Name the plugin's log lines and HTTP requests are attributed to.
    pub(crate) plugin: String,
    /// Credential slots the manifest declared (names only; never secrets).
    pub(crate) credential_slots: Vec<String>,
    pub(crate) http: Arc<dyn OutboundHttp>,
    pub(crate) log: Arc<dyn LogSink>,
    pub(crate) limiter: Limiter,
    /// Deadline and request accounting of the current call.
    pub(crate) budget: CallBudget,
    /// The last few KiB the guest wrote to stderr (its panic message, say).
    pub(crate) stderr: StderrTail,
    wasi: WasiCtx,
    table: ResourceTable,
}

impl HostState {
    pub(crate) fn new(
        plugin: String,
        config: &RuntimeConfig,
        http: Arc<dyn OutboundHttp>,
        log: Arc<dyn LogSink>,
    ) -> Self {
        // Deliberately empty: `WasiCtx::builder()` grants no preopens, env or
        // args; sockets and name lookup are denied explicitly so a future
        // default change in wasmtime-wasi cannot open them.
        let stderr = StderrTail::default();
        let mut builder = WasiCtx::builder();
        builder
            .allow_tcp(false)
            .allow_udp(false)
            .allow_ip_name_lookup(false)
            .socket_addr_check(|_, _| Box::pin(async { false }))
            .stderr(stderr.clone());
        let wasi = builder.build();
        HostState {
            plugin,
            credential_slots: Vec::new(),
            http,
            log,
            limiter: Limiter::new(config),
            budget: CallBudget::new(config),
            stderr,
            wasi,
            table: ResourceTable::new(),
        }
    }
}

impl WasiView for HostState {
    fn ctx(&mut self) -> WasiCtxView<'_> {
        WasiCtxView {
            ctx: &mut self.wasi,
            table: &mut self.table,
        }
    }
}
