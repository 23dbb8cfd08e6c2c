//! Every resource a plugin instance can consume is capped, and going past a
//! cap is a typed [`Limit`] rather than an anonymous trap:
//!
//! - **inside wasm** ([`Limiter`], wasmtime's `ResourceLimiter`): the size of
//!   each linear memory, the total of all of them, the elements of every
//!   table, and (checked by wasmtime at instantiation) how many core
//!   instances, memories and tables a component may create;
//! - **at the `http` import** ([`CallBudget`]): the size of a request body,
//!   the number of requests in one call, and the call's wall-clock deadline,
//!   which bounds time spent in host HTTP too;
//! - **in the read loop** (`PluginInstance::read_all`): pages per read.
//!
//! Fuel and the epoch deadline (time spent in wasm) are armed per call by
//! `PluginInstance::arm`. The defaults are in [`super::RuntimeConfig`].

use std::fmt;
use std::time::{Duration, Instant};

use wasmtime::ResourceLimiter;

use super::engine::RuntimeConfig;

/// A sandbox limit that a call went past (besides fuel, time and the size of
/// one linear memory, which have their own [`super::PluginError`] variants).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum Limit {
    /// A table would grow past this many elements.
    TableElements(usize),
    /// All linear memories together would grow past this many bytes.
    TotalMemory(usize),
    /// The component creates more than this many core instances.
    Instances(usize),
    /// The component creates more than this many linear memories.
    Memories(usize),
    /// The component creates more than this many tables.
    Tables(usize),
    /// A request body of `size` bytes, over the `limit`.
    RequestBody {
        /// The cap, in bytes.
        limit: usize,
        /// The refused body's size, in bytes.
        size: usize,
    },
    /// One call sent this many HTTP requests and tried another.
    RequestsPerCall(u32),
    /// A read (`read-people`, `read-accounts`, …) still had a next page after
    /// this many pages.
    PagesPerRead {
        /// The cap.
        limit: u32,
        /// The export being paged through.
        read: &'static str,
    },
}

impl fmt::Display for Limit {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Limit::TableElements(n) => write!(f, "table limit of {n} elements"),
            Limit::TotalMemory(n) => write!(f, "total memory limit of {n} bytes"),
            Limit::Instances(n) => write!(f, "limit of {n} core instances"),
            Limit::Memories(n) => write!(f, "limit of {n} linear memories"),
            Limit::Tables(n) => write!(f, "limit of {n} tables"),
            Limit::RequestBody { limit, size } => write!(
                f,
                "request body limit of {limit} bytes (the request had {size} bytes)"
            ),
            Limit::RequestsPerCall(n) => write!(f, "limit of {n} HTTP requests per call"),
            Limit::PagesPerRead { limit, read } => {
                write!(f, "limit of {limit} pages per `{read}`")
            }
        }
    }
}

/// What stopped a `memory.grow` or `table.grow`, for the call's error.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Hit {
    /// One memory past `memory_limit` (`PluginError::MemoryLimit`).
    Memory,
    /// Any other limit.
    Other(Limit),
}

/// The store's `ResourceLimiter`: per-memory and total memory, table
/// elements, and the instance/memory/table counts wasmtime enforces. Records
/// which limit stopped a growth, so the failure becomes a typed error.
pub(crate) struct Limiter {
    memory: usize,
    total_memory: usize,
    table_elements: usize,
    instances: usize,
    memories: usize,
    tables: usize,
    /// Bytes of every linear memory created so far. Memories only grow, and
    /// a new memory is announced as a growth from 0, so a running sum is
    /// exact.
    used: usize,
    pub(crate) hit: Option<Hit>,
}

impl Limiter {
    pub(crate) fn new(config: &RuntimeConfig) -> Self {
        Limiter {
            memory: config.memory_limit,
            total_memory: config.total_memory_limit,
            table_elements: config.table_elements,
            instances: config.max_instances,
            memories: config.max_memories,
            tables: config.max_tables,
            used: 0,
            hit: None,
        }
    }

    /// Which count limit an instantiation error is, if any. Wasmtime checks
    /// the counts itself and reports them as text ("resource limit exceeded:
    /// memory count too high at 9"); `count_limits_are_typed` pins the text.
    pub(crate) fn count_limit(&self, err: &wasmtime::Error) -> Option<Limit> {
        let text = format!("{err:#}");
        let (_, rest) = text.split_once("resource limit exceeded: ")?;
        match rest.split(' ').next()? {
            "instance" => Some(Limit::Instances(self.instances)),
            "memory" => Some(Limit::Memories(self.memories)),
            "table" => Some(Limit::Tables(self.tables)),
            _ => None,
        }
    }

    fn refuse(&mut self, hit: Hit) -> wasmtime::Result<bool> {
        self.hit.get_or_insert(hit);
        // Trap rather than let `memory.grow`/`table.grow` return -1: a guest
        // that ignores the failure would otherwise go on to fail elsewhere.
        Err(match hit {
            Hit::Memory => wasmtime::format_err!("memory limit of {} bytes", self.memory),
            Hit::Other(limit) => wasmtime::format_err!("{limit}"),
        })
    }
}

impl ResourceLimiter for Limiter {
    fn memory_growing(
        &mut self,
        current: usize,
        desired: usize,
        maximum: Option<usize>,
    ) -> wasmtime::Result<bool> {
        // Past its own declared maximum, `memory.grow` just returns -1.
        if maximum.is_some_and(|m| desired > m) {
            return Ok(false);
        }
        if desired > self.memory {
            return self.refuse(Hit::Memory);
        }
        let total = self.used - current.min(self.used) + desired;
        if total > self.total_memory {
            return self.refuse(Hit::Other(Limit::TotalMemory(self.total_memory)));
        }
        self.used = total;
        Ok(true)
    }

    fn table_growing(
        &mut self,
        _current: usize,
        desired: usize,
        maximum: Option<usize>,
    ) -> wasmtime::Result<bool> {
        if maximum.is_some_and(|m| desired > m) {
            return Ok(false);
        }
        if desired > self.table_elements {
            return self.refuse(Hit::Other(Limit::TableElements(self.table_elements)));
        }
        Ok(true)
    }

    fn instances(&self) -> usize {
        self.instances
    }

    fn tables(&self) -> usize {
        self.tables
    }

    fn memories(&self) -> usize {
        self.memories
    }
}

/// Per-call accounting of the `http` import: armed before every call.
#[derive(Debug, Clone)]
pub(crate) struct CallBudget {
    deadline: Instant,
    requests: u32,
    max_requests: u32,
    max_body: usize,
    /// The limit that stopped the call, for its error.
    pub(crate) hit: Option<Refusal>,
}

/// Why the `http` import stopped a call.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Refusal {
    /// The call's wall-clock deadline passed (before or during a request).
    Deadline,
    /// A request limit.
    Limit(Limit),
}

impl CallBudget {
    pub(crate) fn new(config: &RuntimeConfig) -> Self {
        CallBudget {
            deadline: Instant::now() + config.call_timeout,
            requests: 0,
            max_requests: config.max_requests_per_call,
            max_body: config.max_request_body,
            hit: None,
        }
    }

    /// Starts a call: a fresh deadline `timeout` from now, no request sent.
    pub(crate) fn arm(&mut self, timeout: Duration) {
        self.deadline = Instant::now() + timeout;
        self.requests = 0;
        self.hit = None;
    }

    /// Admits one more request of `body` bytes, or says which limit refuses
    /// it. Returns the time left before the deadline, which bounds the
    /// request.
    pub(crate) fn admit(&mut self, body: usize) -> Result<Duration, Refusal> {
        let refusal = if body > self.max_body {
            Refusal::Limit(Limit::RequestBody {
                limit: self.max_body,
                size: body,
            })
        } else if self.requests >= self.max_requests {
            Refusal::Limit(Limit::RequestsPerCall(self.max_requests))
        } else {
            match self.deadline.checked_duration_since(Instant::now()) {
                Some(left) if !left.is_zero() => {
                    self.requests += 1;
                    return Ok(left);
                }
                _ => Refusal::Deadline,
            }
        };
        Err(self.refuse(refusal))
    }

    /// Records `refusal` as the call's failure and returns it.
    pub(crate) fn refuse(&mut self, refusal: Refusal) -> Refusal {
        *self.hit.get_or_insert(refusal)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use wasmtime::{Engine, Instance, Module, Store};

    fn store(config: &RuntimeConfig) -> Store<Limiter> {
        let mut store = Store::new(&Engine::default(), Limiter::new(config));
        store.limiter(|l| l);
        store
    }

    fn module(store: &Store<Limiter>, wat: &str) -> Module {
        Module::new(store.engine(), wat::parse_str(wat).expect("wat")).expect("module")
    }

    fn run(store: &mut Store<Limiter>, wat: &str) -> wasmtime::Result<()> {
        let m = module(store, wat);
        let instance = Instance::new(&mut *store, &m, &[])?;
        let f = instance.get_typed_func::<(), ()>(&mut *store, "run")?;
        f.call(&mut *store, ())
    }

    #[test]
    fn table_grow_bomb_is_stopped_at_the_element_limit() {
        let config = RuntimeConfig {
            table_elements: 10_000,
            ..RuntimeConfig::default()
        };
        let mut store = store(&config);
        let err = run(
            &mut store,
            r#"(module (table 1 funcref)
                 (func (export "run")
                   (loop (drop (table.grow (ref.null func) (i32.const 1000))) (br 0))))"#,
        )
        .unwrap_err();
        assert_eq!(
            store.data().hit,
            Some(Hit::Other(Limit::TableElements(10_000))),
            "{err:#}"
        );
    }

    #[test]
    fn memories_are_capped_together() {
        let config = RuntimeConfig {
            memory_limit: 4 << 20,
            total_memory_limit: 5 << 20,
            ..RuntimeConfig::default()
        };
        let mut store = store(&config);
        // Two memories of 1 MiB, each grown by 1 MiB at a time: each stays
        // under 4 MiB, but together they reach 5 MiB first.
        let err = run(
            &mut store,
            r#"(module (memory $a 16) (memory $b 16)
                 (func (export "run")
                   (loop
                     (drop (memory.grow $a (i32.const 16)))
                     (drop (memory.grow $b (i32.const 16)))
                     (br 0))))"#,
        )
        .unwrap_err();
        assert_eq!(
            store.data().hit,
            Some(Hit::Other(Limit::TotalMemory(5 << 20))),
            "{err:#}"
        );
        assert!(store.data().used <= 5 << 20);
    }

    #[test]
    fn one_memory_past_its_own_cap_is_the_memory_limit() {
        let config = RuntimeConfig {
            memory_limit: 2 << 20,
            ..RuntimeConfig::default()
        };
        let mut store = store(&config);
        let err = run(
            &mut store,
            r#"(module (memory 1)
                 (func (export "run") (loop (drop (memory.grow (i32.const 1))) (br 0))))"#,
        )
        .unwrap_err();
        assert_eq!(store.data().hit, Some(Hit::Memory), "{err:#}");
    }

    #[test]
    fn count_limits_are_typed() {
        let config = RuntimeConfig {
            max_instances: 2,
            max_memories: 2,
            max_tables: 2,
            ..RuntimeConfig::default()
        };
        let cases = [
            (
                "(module (memory 1) (memory 1) (memory 1))",
                Limit::Memories(2),
            ),
            (
                "(module (table 1 funcref) (table 1 funcref) (table 1 funcref))",
                Limit::Tables(2),
            ),
        ];
        for (wat, limit) in cases {
            let mut store = store(&config);
            let m = module(&store, wat);
            let err = Instance::new(&mut store, &m, &[]).unwrap_err();
            assert_eq!(store.data().count_limit(&err), Some(limit), "{err:#}");
        }
        let mut store = store(&config);
        let m = module(&store, "(module)");
        for _ in 0..2 {
            Instance::new(&mut store, &m, &[]).expect("within the limit");
        }
        let err = Instance::new(&mut store, &m, &[]).unwrap_err();
        assert_eq!(
            store.data().count_limit(&err),
            Some(Limit::Instances(2)),
            "{err:#}"
        );
    }

    #[test]
    fn call_budget_counts_requests_sizes_bodies_and_keeps_the_deadline() {
        let config = RuntimeConfig {
            max_requests_per_call: 2,
            max_request_body: 10,
            ..RuntimeConfig::default()
        };
        let mut budget = CallBudget::new(&config);
        budget.arm(Duration::from_secs(60));
        let left = budget.admit(10).expect("first");
        assert!(left <= Duration::from_secs(60) && left > Duration::from_secs(50));
        assert_eq!(
            budget.admit(11),
            Err(Refusal::Limit(Limit::RequestBody {
                limit: 10,
                size: 11
            }))
        );
        budget.hit = None;
        budget.admit(0).expect("second");
        assert_eq!(
            budget.admit(0),
            Err(Refusal::Limit(Limit::RequestsPerCall(2)))
        );
        budget.arm(Duration::ZERO);
        assert_eq!(budget.admit(0), Err(Refusal::Deadline));
        assert_eq!(budget.hit, Some(Refusal::Deadline));
        budget.arm(Duration::from_secs(1));
        assert_eq!(budget.hit, None, "every call starts afresh");
    }
}
