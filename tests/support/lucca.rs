//! Wiring the real Lucca connector (`muster-plugin-lucca.wasm`) to a `LuccaSim` on loopback,
//! through the real runtime and the real outbound layer — shared by `tests/lucca_connector.rs`
//! and `examples/lucca_read.rs`.
//!
//! **Simulated time on both sides.** The simulator runs `time_scale` simulated seconds per real
//! second (its 50 requests / 60 s limit, `Retry-After`, request log). The host's outbound layer
//! waits for its token bucket and for `Retry-After` on a [`Clock`]; [`ScaledClock`] runs at the
//! same scale, so "60 s" means the same thing to the client and to the server and a test goes
//! through several rate-limit windows in a fraction of the real time. Nothing else is scaled:
//! the limiter, the retry loop and the plugin run unchanged.

#![allow(dead_code)]

use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

use muster::runtime::{
    Capabilities, MemoryLog, PluginError, PluginInstance, Runtime, RuntimeConfig, grant,
};
use muster_outbound::clock::Clock;
use muster_outbound::{Credential, HostPattern, Outbound, Policy, RateLimit};
use muster_sandbox::LuccaSim;

/// The host's rate limit for a Lucca tenant in these tests: Lucca's 50 requests per 60 s,
/// counted over 61 s. The host counts a request when it *leaves*, Lucca when it *arrives*;
/// a request that leaves exactly 60 s after the one fifty places earlier can arrive less
/// than 60 s after it when that earlier one was slower in transit, and Lucca then sees 51 in
/// a window. One second of margin absorbs transit jitter (real networks: tens of ms).
pub const LUCCA_LIMIT: RateLimit = RateLimit::new(50, Duration::from_secs(61));

/// A clock running `scale` times faster than real time, like the simulator's `SimClock`.
#[derive(Debug)]
pub struct ScaledClock {
    origin: Instant,
    wall_origin: SystemTime,
    scale: f64,
}

impl ScaledClock {
    pub fn new(scale: f64) -> Self {
        ScaledClock {
            origin: Instant::now(),
            wall_origin: SystemTime::now(),
            scale,
        }
    }
}

impl Clock for ScaledClock {
    fn now(&self) -> Duration {
        self.origin.elapsed().mul_f64(self.scale)
    }
    fn wall(&self) -> SystemTime {
        self.wall_origin + self.now()
    }
    fn sleep(&self, d: Duration) {
        std::thread::sleep(d.div_f64(self.scale));
    }
}

/// How to connect.
pub struct Connect<'a> {
    /// The secret configured for the `api-key` slot (the simulator's key unless a test says
    /// otherwise).
    pub secret: Option<String>,
    /// Settings besides `base_url`.
    pub settings: Vec<(&'a str, String)>,
    /// The simulator's `time_scale`, for the host's clock.
    pub time_scale: f64,
    /// The host's limit for the simulator's origin.
    pub rate_limit: Option<RateLimit>,
    /// Compilation cache of the runtime.
    pub cache_dir: Option<PathBuf>,
}

impl Default for Connect<'_> {
    fn default() -> Self {
        Connect {
            secret: None,
            settings: Vec::new(),
            time_scale: 1.0,
            rate_limit: Some(LUCCA_LIMIT),
            cache_dir: None,
        }
    }
}

/// A configured connector instance and what it logged.
pub struct Lucca {
    pub instance: PluginInstance,
    pub log: MemoryLog,
    pub outbound: Arc<Outbound>,
    _runtime: Runtime,
}

impl Lucca {
    /// Warn lines the plugin logged.
    pub fn warnings(&self) -> Vec<String> {
        self.log
            .lines()
            .into_iter()
            .filter(|l| muster::runtime::log::level_name(l.level) == "warn")
            .map(|l| l.message)
            .collect()
    }
}

/// Loads the real `.wasm`, grants it the simulator's origin (as an operator's local host,
/// with loopback allowed) and its secret, and configures it with `base_url`.
pub fn connect(sim: &LuccaSim, c: Connect<'_>) -> Result<Lucca, PluginError> {
    let secret = c
        .secret
        .clone()
        .unwrap_or_else(|| sim.api_key().to_string());
    connect_to(&sim.base_url(), secret, c)
}

/// [`connect`] to any loopback `base_url` (a server that is not the simulator), with `secret`.
pub fn connect_to(base_url: &str, secret: String, c: Connect<'_>) -> Result<Lucca, PluginError> {
    let runtime = Runtime::new(RuntimeConfig {
        cache_dir: c.cache_dir.clone(),
        ..RuntimeConfig::default()
    })?;
    let origin = HostPattern::parse(base_url).expect("loopback origin");
    let policy = Policy {
        allow_loopback: true,
        rate_limits: c
            .rate_limit
            .map(|l| vec![(origin.clone(), l)])
            .unwrap_or_default(),
        ..Policy::default()
    };
    let clock = Arc::new(ScaledClock::new(c.time_scale));
    let outbound = Arc::new(Outbound::with_clock(policy, clock).expect("outbound policy"));
    let log = MemoryLog::new();
    let plugin = runtime.load_file(muster::plugins::path("muster-plugin-lucca"))?;
    let mut instance = plugin.instantiate(Capabilities {
        name: Some("lucca".into()),
        http: outbound.clone(),
        log: Arc::new(log.clone()),
    })?;
    let mut grant = grant(
        instance.manifest(),
        &[],
        vec![Credential::new("api-key", secret)],
    )?;
    grant.local_hosts = vec![origin];
    outbound.set_plugin("lucca", grant).expect("grant");
    let mut settings = vec![("base_url".to_string(), base_url.to_string())];
    settings.extend(c.settings.into_iter().map(|(k, v)| (k.to_string(), v)));
    instance.configure(&settings)?;
    Ok(Lucca {
        instance,
        log,
        outbound,
        _runtime: runtime,
    })
}
