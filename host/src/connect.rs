//! From a validated [`Config`] to running, configured plugin instances.
//!
//! This is where the three grants of a connection meet, once:
//!
//! - **hosts**: the plugin manifest's patterns narrowed by the connection's
//!   `hosts` (required for a third-party plugin: the operator, not the plugin,
//!   decides where it may go); a connection with `allow_loopback = true` may
//!   also reach loopback (the sandbox), in place of the vendor hosts — that
//!   connection only, never the others of the process;
//! - **secret**: loaded from the environment or a file at connect time and
//!   handed to `muster-outbound` for the manifest's credential slot — it never
//!   enters plugin memory, a log or the store;
//! - **settings**: passed to the plugin's `configure`.
//!
//! A flow is connected as a whole ([`Host::connect_flow`]): what its target
//! plugin declares (stored fields, fields a create requires: in its 0.2
//! manifest, or a 0.1 plugin's section — see
//! [`crate::runtime::declarations`]) is checked against the flow and fitted
//! into the policy the engine plans with, before any record is read.
//!
//! - **rate limits**: the vendor's, as the plugin's manifest declares them
//!   (`rate-limits`, contract 0.2), part of the connection's grant: they
//!   pace its requests to the vendor's hosts *and* to the loopback stand-ins
//!   `allow_loopback` grants (at the strictest declared limit), so a sandbox
//!   run is paced like a real one. Buckets are per origin (scheme + host +
//!   port). A 0.1 plugin declares none and is not paced (the vendor's 429s
//!   still are, through `Retry-After`, for every call to that origin).
//!
//! One [`Host`] (one wasmtime engine, one outbound client with its rate
//! limiters, shared per upstream) serves every connection of a process.
//! When the state is PostgreSQL (`tenant.state = "postgres://…"`), other
//! processes may run flows of the same tenant, so the outbound client also
//! takes every rate-limited request from the budget all of them share in
//! the database ([`crate::store::PostgresBudget`], set with
//! [`muster_outbound::Outbound::set_shared_limiter`]); with SQLite, one
//! process owns the file and its own limiter is the whole budget.

use std::sync::Arc;

use muster_outbound::{Credential, HostPattern, Outbound, Policy, RateLimit, SharedLimiter};

use crate::config::{Config, ConfigError, Connection, Flow, PluginRef, TargetFacts};
use crate::runtime::{
    Capabilities, Declarations, LogSink, Manifest, PluginError, PluginInstance, Runtime,
    RuntimeConfig, TracingLog, grant,
};
use crate::store::{Location, PostgresBudget};

/// Why [`Host::run_flow`] could not run a flow: its plugins could not be
/// connected, or the run itself failed.
#[derive(Debug, thiserror::Error)]
pub enum RunFlowError {
    #[error(transparent)]
    Connect(#[from] ConnectError),
    #[error(transparent)]
    Engine(#[from] crate::engine::EngineError),
}

/// Why a connection could not be set up.
#[derive(Debug, thiserror::Error)]
pub enum ConnectError {
    #[error("connection `{connection}`: {source}")]
    Config {
        connection: String,
        #[source]
        source: ConfigError,
    },
    #[error("connection `{connection}` (plugin {plugin}): {source}")]
    Plugin {
        connection: String,
        plugin: String,
        #[source]
        source: PluginError,
    },
    #[error("connection `{connection}`: {message}")]
    Grant { connection: String, message: String },
    /// The plugin's grant cannot be enforced: a credential slot that steers the
    /// request, plain `http://` to a non-loopback host, … — refused when the
    /// plugin loads, before any request.
    #[error("connection `{connection}`: {source}")]
    Policy {
        connection: String,
        #[source]
        source: muster_outbound::PolicyError,
    },
    /// The flow's configuration does not fit its target (a field it cannot
    /// store): a configuration error, found when the flow is connected.
    #[error("{0}")]
    Flow(#[source] ConfigError),
    #[error("cannot start the plugin runtime: {0}")]
    Runtime(#[source] PluginError),
    #[error("cannot set up outbound HTTP: {0}")]
    Outbound(String),
    /// `tenant.state` names a PostgreSQL database whose location (its
    /// password secret) cannot be loaded, so the rate-limit budget shared
    /// through it cannot be set up.
    #[error("the shared rate-limit budget: {0}")]
    State(#[source] ConfigError),
}

/// A flow's two configured plugins, and its policy fitted to what the
/// target declares ([`Flow::fit_to_target`]): what the engine runs with.
pub struct ConnectedFlow {
    pub source: PluginInstance,
    pub target: PluginInstance,
    pub policy: muster_core::Policy,
}

/// The loopback origins a sandbox connection may reach.
const LOOPBACK: &[&str] = &["http://127.0.0.1:*", "http://localhost:*"];

/// The process-wide plugin runtime and outbound HTTP client.
pub struct Host {
    runtime: Runtime,
    outbound: Arc<Outbound>,
    log: Arc<dyn LogSink>,
}

impl Host {
    /// A host for `config`: its plugin cache, no rate limit yet (each
    /// connected plugin brings its vendor's, [`Host::connect`]) and no
    /// loopback (each connection that asks for it gets it for itself). With
    /// a PostgreSQL state, its rate limits are also shared with every other
    /// process through the database (see the module documentation).
    pub fn new(config: &Config) -> Result<Host, ConnectError> {
        // Loopback is granted per connection (`PluginPolicy::allow_loopback`),
        // never process-wide: one connection pointed at the sandbox must not
        // open loopback to the others. Rate limits come in each connection's
        // grant, from its plugin's manifest (`Host::connect`).
        let policy = Policy {
            allow_loopback: false,
            ..Policy::default()
        };
        let outbound = Outbound::new(policy).map_err(|e| ConnectError::Outbound(e.to_string()))?;
        Host::with_outbound(config, outbound, None)
    }

    /// [`Host::new`] whose rate-limited requests take from `budget` rather
    /// than from a [`PostgresBudget`] of the host's own: a fleet worker's
    /// run (`fleet/budget.rs`), whose tenant's buckets the worker reaches
    /// on connections it keeps for all its runs — so a run opens no budget
    /// connection of its own.
    pub fn with_shared_budget(
        config: &Config,
        budget: Arc<dyn SharedLimiter>,
    ) -> Result<Host, ConnectError> {
        let policy = Policy {
            allow_loopback: false,
            ..Policy::default()
        };
        let outbound = Outbound::new(policy).map_err(|e| ConnectError::Outbound(e.to_string()))?;
        Host::with_outbound(config, outbound, Some(budget))
    }

    /// [`Host::new`] whose outbound client paces and backs off on `clock`
    /// (benches and tests that run a vendor simulator in scaled time, so a
    /// per-minute rate limit means the same to both sides). With a
    /// PostgreSQL state and a scaled clock, also replace the shared budget
    /// with one at the same scale:
    /// `host.outbound().set_shared_limiter(Some(Arc::new(PostgresBudget::new(&pg).time_scale(s))))`.
    pub fn with_clock(
        config: &Config,
        clock: Arc<dyn muster_outbound::clock::Clock>,
    ) -> Result<Host, ConnectError> {
        let policy = Policy {
            allow_loopback: false,
            ..Policy::default()
        };
        let outbound = Outbound::with_clock(policy, clock)
            .map_err(|e| ConnectError::Outbound(e.to_string()))?;
        Host::with_outbound(config, outbound, None)
    }

    /// The host on `outbound`, whose shared budget is `budget` or, with a
    /// PostgreSQL state, a [`PostgresBudget`] of its own.
    fn with_outbound(
        config: &Config,
        outbound: Outbound,
        budget: Option<Arc<dyn SharedLimiter>>,
    ) -> Result<Host, ConnectError> {
        if let Some(budget) = budget {
            outbound.set_shared_limiter(Some(budget));
        } else if let Location::Postgres(pg) =
            config.tenant.location().map_err(ConnectError::State)?
        {
            outbound.set_shared_limiter(Some(Arc::new(PostgresBudget::new(&pg))));
        }
        let runtime = Runtime::new(RuntimeConfig {
            cache_dir: config.tenant.cache.clone(),
            ..RuntimeConfig::default()
        })
        .map_err(ConnectError::Runtime)?;
        Ok(Host {
            runtime,
            outbound: Arc::new(outbound),
            log: Arc::new(TracingLog),
        })
    }

    /// Replaces where plugin log lines go (`tracing`, target `plugin`, by default).
    pub fn with_log(mut self, log: Arc<dyn LogSink>) -> Host {
        self.log = log;
        self
    }

    /// The outbound client (for request statistics in tests and benches).
    pub fn outbound(&self) -> &Arc<Outbound> {
        &self.outbound
    }

    /// What the connection named `name` was granted, for `muster check`:
    /// its effective hosts (manifest ∩ `hosts`, plus the loopback stand-ins of
    /// `allow_loopback`) and whether it may connect to loopback. Call after
    /// [`Host::connect`]; before, the grant is empty.
    pub fn grant_summary(&self, name: &str) -> String {
        let hosts: Vec<String> = self
            .outbound
            .effective_hosts(name)
            .iter()
            .map(ToString::to_string)
            .collect();
        let hosts = if hosts.is_empty() {
            "no host".to_owned()
        } else {
            hosts.join(", ")
        };
        let loopback = if self.outbound.allows_loopback(name) {
            "allowed"
        } else {
            "refused"
        };
        format!("hosts {hosts}; loopback {loopback}")
    }

    /// Loads, grants and configures the plugin of `conn`.
    pub fn connect(&self, conn: &Connection) -> Result<PluginInstance, ConnectError> {
        Ok(self.connect_with(conn, &[])?.0)
    }

    /// Connects a flow: its target first, whose declarations must fit the
    /// flow (a field it owns but the target cannot store is a
    /// [`ConnectError::Flow`], before any request), then its source. The
    /// returned policy is the one to plan with.
    /// Connects `flow`'s two plugins ([`Host::connect_flow`]) and runs it
    /// once ([`crate::engine::run`]): what `muster plan` and `muster sync` do,
    /// without their progress output and lease waiting — for tests, examples
    /// and programs that embed muster.
    pub fn run_flow(
        &self,
        config: &Config,
        store: &mut crate::store::Store,
        flow: &Flow,
        mode: crate::engine::Mode,
        options: &crate::engine::RunOptions,
    ) -> Result<crate::engine::RunReport, RunFlowError> {
        let ConnectedFlow {
            mut source,
            mut target,
            policy,
        } = self.connect_flow(config, flow)?;
        let plugins = crate::engine::Connected {
            source: &mut source,
            target: &mut target,
        };
        let spec = crate::engine::FlowSpec::of(flow, policy);
        Ok(crate::engine::run(store, &spec, plugins, mode, options)?)
    }

    pub fn connect_flow(
        &self,
        config: &Config,
        flow: &Flow,
    ) -> Result<ConnectedFlow, ConnectError> {
        let target_conn = flow_connection(config, &flow.target)?;
        let (target, declarations) = self.connect_target_declared(target_conn, &flow.policy)?;
        let policy = fit(config, flow, target_conn, &declarations)?;
        let source = self.connect(flow_connection(config, &flow.source)?)?;
        Ok(ConnectedFlow {
            source,
            target,
            policy,
        })
    }

    /// The flow's policy fitted to its target's declarations, from the
    /// target's manifest (a throw-away instance with no network): `muster
    /// check`.
    pub fn flow_policy(
        &self,
        config: &Config,
        flow: &Flow,
    ) -> Result<muster_core::Policy, ConnectError> {
        let conn = flow_connection(config, &flow.target)?;
        let plugin = self
            .runtime
            .load_file(conn.plugin.wasm_path())
            .map_err(|source| ConnectError::Plugin {
                connection: conn.name.clone(),
                plugin: conn.plugin.to_string(),
                source,
            })?;
        let manifest = plugin.describe().map_err(|source| ConnectError::Plugin {
            connection: conn.name.clone(),
            plugin: conn.plugin.to_string(),
            source,
        })?;
        fit(config, flow, conn, &Declarations::from_manifest(&manifest))
    }

    /// Connects the target of a flow: the flow's options that a connector
    /// implements as settings (`invite_on_create`) are passed on when the
    /// plugin declares that setting and the connection does not set it.
    pub fn connect_target(
        &self,
        conn: &Connection,
        policy: &muster_core::Policy,
    ) -> Result<PluginInstance, ConnectError> {
        Ok(self.connect_target_declared(conn, policy)?.0)
    }

    /// [`Host::connect_target`], with what the plugin declares.
    fn connect_target_declared(
        &self,
        conn: &Connection,
        policy: &muster_core::Policy,
    ) -> Result<(PluginInstance, Declarations), ConnectError> {
        let invite = [(
            "invite_on_create".to_owned(),
            policy.invite_on_create.to_string(),
        )];
        self.connect_with(conn, &invite)
    }

    /// [`Host::connect`], with `flow_settings` added where the manifest
    /// declares them and the connection leaves them unset; also returns what
    /// the plugin declares.
    fn connect_with(
        &self,
        conn: &Connection,
        flow_settings: &[(String, String)],
    ) -> Result<(PluginInstance, Declarations), ConnectError> {
        let plugin_name = conn.plugin.to_string();
        let plugin_err = |source| ConnectError::Plugin {
            connection: conn.name.clone(),
            plugin: plugin_name.clone(),
            source,
        };
        let plugin = self
            .runtime
            .load_file(conn.plugin.wasm_path())
            .map_err(plugin_err)?;
        let mut instance = plugin
            .instantiate(Capabilities {
                name: Some(conn.name.clone()),
                http: self.outbound.clone(),
                log: self.log.clone(),
            })
            .map_err(plugin_err)?;

        let manifest = instance.manifest().clone();
        // Without `hosts`, the connection gets what the manifest names —
        // except "any host" (a generic SCIM server), which the operator must
        // name: that is the one decision a plugin cannot make for itself.
        let is_any = |h: &str| HostPattern::parse_manifest(h).is_ok_and(|p| p.is_any_host());
        if conn.hosts.is_empty() && matches!(conn.plugin, PluginRef::Path(_)) {
            // `Config::load` refuses this too; a `Connection` built in code is held
            // to the same rule: a third-party plugin does not choose its hosts.
            return Err(ConnectError::Grant {
                connection: conn.name.clone(),
                message: format!(
                    "plugin {plugin_name} is third-party: list the hosts it may reach, \
                     e.g. hosts = [\"https://api.vendor.example\"]"
                ),
            });
        }
        let tenant_hosts: Vec<&str> = if conn.hosts.is_empty() {
            let named: Vec<&str> = manifest
                .hosts
                .iter()
                .map(String::as_str)
                .filter(|h| !is_any(h))
                .collect();
            if !conn.allow_loopback && manifest.hosts.iter().any(|h| is_any(h)) {
                return Err(ConnectError::Grant {
                    connection: conn.name.clone(),
                    message: format!(
                        "plugin {plugin_name} can talk to any host; say which this connection may reach, \
                         e.g. hosts = [\"https://scim.example.com\"]"
                    ),
                });
            }
            named
        } else {
            conn.hosts.iter().map(String::as_str).collect()
        };
        let mut credentials = Vec::new();
        if let Some(secret) = &conn.secret {
            let secret = secret.load().map_err(|source| ConnectError::Config {
                connection: conn.name.clone(),
                source,
            })?;
            let Some(slot) = manifest.credential_slots.first() else {
                return Err(ConnectError::Grant {
                    connection: conn.name.clone(),
                    message: format!(
                        "a secret is configured but plugin {plugin_name} declares no credential slot; remove `secret`"
                    ),
                });
            };
            credentials.push(Credential::new(slot.name.clone(), secret.expose()));
        }
        let mut policy = grant(&manifest, &tenant_hosts, credentials).map_err(plugin_err)?;
        policy.allow_loopback = conn.allow_loopback;
        // A built-in plugin's manifest names only its vendor, so pointing it at
        // the sandbox needs loopback stand-ins. A third-party plugin gets
        // exactly the hosts listed: `allow_loopback` then only lets those
        // listed loopback hosts be connected to.
        if conn.allow_loopback && matches!(conn.plugin, PluginRef::Builtin(_)) {
            for pattern in LOOPBACK {
                let p = HostPattern::parse(pattern).map_err(|e| ConnectError::Grant {
                    connection: conn.name.clone(),
                    message: e.to_string(),
                })?;
                policy.local_hosts.push(p);
            }
        }
        policy.rate_limits = rate_limits(conn, &manifest)?;
        self.outbound
            .set_plugin(&conn.name, policy)
            .map_err(|source| ConnectError::Policy {
                connection: conn.name.clone(),
                source,
            })?;
        let mut settings = conn.settings.clone();
        for (key, value) in flow_settings {
            let declared = manifest.config_keys.iter().any(|k| &k.name == key);
            if declared && !settings.iter().any(|(k, _)| k == key) {
                settings.push((key.clone(), value.clone()));
            }
        }
        instance.configure(&settings).map_err(plugin_err)?;
        // As a target, the engine keeps up to this many calls in flight,
        // each on a sibling of this instance (`engine::inflight`).
        instance.set_max_in_flight(conn.max_in_flight);
        Ok((instance, Declarations::from_manifest(&manifest)))
    }
}

/// Added to every declared window: the host counts a request when it leaves,
/// the vendor when it arrives, and the few milliseconds between the two vary;
/// with the exact window, a vendor that checks the same limit sees one
/// request too many in some window (a 1,000-person sync against the Leapsome
/// simulator got 42 429s at 30 / 1 s, each holding back the whole origin for
/// a second). 50 ms costs 5 % of a 1 s window's throughput, nothing of a
/// minute's.
pub const PACING_MARGIN: std::time::Duration = std::time::Duration::from_millis(50);

/// The vendor limits the plugin's manifest declares, for the connection's
/// grant: they pace this connection's requests to the vendor's hosts and to
/// the loopback stand-ins it may have in their place (buckets per origin,
/// shared with every other connection to the same origin).
fn rate_limits(
    conn: &Connection,
    manifest: &Manifest,
) -> Result<Vec<(HostPattern, RateLimit)>, ConnectError> {
    let grant_err = |message: String| ConnectError::Grant {
        connection: conn.name.clone(),
        message,
    };
    let mut limits = Vec::new();
    for r in &manifest.rate_limits {
        if r.requests == 0 || r.per_seconds == 0 {
            return Err(grant_err(format!(
                "plugin {} declares an empty rate limit for {} ({} / {} s)",
                conn.plugin, r.host, r.requests, r.per_seconds
            )));
        }
        let pattern = HostPattern::parse_manifest(&r.host)
            .map_err(|e| grant_err(format!("rate limit host pattern {:?}: {e}", r.host)))?;
        let per = std::time::Duration::from_secs(u64::from(r.per_seconds)) + PACING_MARGIN;
        limits.push((
            pattern,
            RateLimit {
                requests: r.requests,
                per,
            },
        ));
    }
    Ok(limits)
}

/// The connection a flow names (config validation guarantees it exists).
fn flow_connection<'c>(config: &'c Config, name: &str) -> Result<&'c Connection, ConnectError> {
    config
        .connection(name)
        .map_err(|message| ConnectError::Grant {
            connection: name.to_owned(),
            message,
        })
}

/// [`Flow::fit_to_target`] with the target connection's names.
fn fit(
    config: &Config,
    flow: &Flow,
    target: &Connection,
    declarations: &Declarations,
) -> Result<muster_core::Policy, ConnectError> {
    let plugin = match &target.plugin {
        PluginRef::Builtin(name) => name.clone(),
        PluginRef::Path(path) => path.display().to_string(),
    };
    let facts = TargetFacts {
        connection: &target.name,
        plugin: &plugin,
        declarations,
    };
    flow.fit_to_target(&config.path, &facts)
        .map_err(ConnectError::Flow)
}
