//! Per-store host state: what one plugin instance can reach.
//!
//! A WASI context with nothing granted (no preopened directory, no
//! environment, no arguments, no network, no name lookup, stdio discarded),
//! the memory limiter, and the two capabilities the contract imports.

use std::sync::Arc;

use wasmtime::component::ResourceTable;
use wasmtime::{ResourceLimiter, StoreLimits, StoreLimitsBuilder};
use wasmtime_wasi::{WasiCtx, WasiCtxView, WasiView};

use super::http::OutboundHttp;
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
    /// The last few KiB the guest wrote to stderr (its panic message, say).
    pub(crate) stderr: StderrTail,
    wasi: WasiCtx,
    table: ResourceTable,
}

impl HostState {
    pub(crate) fn new(
        plugin: String,
        memory_limit: usize,
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
            limiter: Limiter::new(memory_limit),
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

/// `StoreLimits` plus a record of whether a limit was hit, so a failed
/// `memory.grow` becomes [`super::PluginError::MemoryLimit`] rather than an
/// anonymous trap.
pub(crate) struct Limiter {
    inner: StoreLimits,
    pub(crate) hit: bool,
}

impl Limiter {
    fn new(memory_limit: usize) -> Self {
        Limiter {
            inner: StoreLimitsBuilder::new()
                .memory_size(memory_limit)
                .instances(16)
                .tables(64)
                .memories(8)
                .trap_on_grow_failure(true)
                .build(),
            hit: false,
        }
    }
}

impl ResourceLimiter for Limiter {
    fn memory_growing(
        &mut self,
        current: usize,
        desired: usize,
        maximum: Option<usize>,
    ) -> wasmtime::Result<bool> {
        let verdict = self.inner.memory_growing(current, desired, maximum);
        if !matches!(verdict, Ok(true)) {
            self.hit = true;
        }
        verdict
    }

    fn memory_grow_failed(&mut self, error: wasmtime::Error) -> wasmtime::Result<()> {
        self.hit = true;
        self.inner.memory_grow_failed(error)
    }

    fn table_growing(
        &mut self,
        current: usize,
        desired: usize,
        maximum: Option<usize>,
    ) -> wasmtime::Result<bool> {
        self.inner.table_growing(current, desired, maximum)
    }

    fn table_grow_failed(&mut self, error: wasmtime::Error) -> wasmtime::Result<()> {
        self.inner.table_grow_failed(error)
    }

    fn instances(&self) -> usize {
        self.inner.instances()
    }

    fn tables(&self) -> usize {
        self.inner.tables()
    }

    fn memories(&self) -> usize {
        self.inner.memories()
    }
}
