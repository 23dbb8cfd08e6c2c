//! # `muster serve --fleet`: many tenants, several workers, one PostgreSQL
//!
//! A fleet worker serves every tenant of a tenants directory (one config
//! file per tenant, [`tenants`]) from one PostgreSQL database shared by all
//! workers. Start as many workers as throughput and failover need, on one
//! machine or several: they coordinate only through the database.
//!
//! ## Isolation
//!
//! Each tenant's state is the ordinary store in its own schema
//! (`tenant_<id>`, created and migrated on first use); the coordination
//! tables are in the `muster_fleet` schema ([`schema`]). A bad tenant file
//! is reported (log and status page, with file, line and column) and the
//! other tenants go on.
//!
//! ## Exactly once per tick
//!
//! Every worker's ticker records each tenant flow's due tick ([`ticks`])
//! in the work ledger with `INSERT … ON CONFLICT DO NOTHING`; runner
//! threads claim rows with `SELECT … FOR UPDATE SKIP LOCKED`, an expiry
//! and a fencing token, renewed by the heartbeat thread while the run
//! lasts ([`work`]). The run takes the flow's lease as any run does
//! (`store/lease.rs`), so two runs of one flow never overlap, and a run
//! that takes over a dead worker's lease runs recovery before planning.
//!
//! **A taken-over tick** is one ledger row (`attempts` 2,
//! `taken_over_from` the dead worker, `run_id` the completed run) and, in
//! the tenant's run history, two runs: the dead worker's, left `running`
//! and finished as `aborted` by the recovery of the run that took over,
//! and that run, `done`. So every tick has exactly one completed run.
//!
//! ## Webhooks
//!
//! Any worker accepts `POST /tenants/{tenant}/webhooks/{flow}` with the
//! same protocol as `serve`'s `/webhooks/{flow}` (the same code,
//! `serve/http.rs`): the event is committed to the tenant's inbox, then a
//! ledger row keyed by its inbox id is recorded, and whichever worker
//! claims that row runs it. A redelivery (same delivery id) is stored once,
//! so it makes no second row. Pending events whose row is missing or
//! failed are swept into the ledger every `retry_every`.
//!
//! ## Housekeeping
//!
//! Finished ledger rows and workers gone for longer than `keep` (7 days)
//! are deleted at each sweep; a tenant's run history, in its schema, is
//! kept as `serve` keeps it.
//!
//! ## Threads
//!
//! One HTTP listener (`serve/listener.rs`, every bound of `serve`), one
//! ticker, one heartbeat, and `jobs` runner threads (default 1), each with
//! its own database connection; and the worker's rate-limit budget
//! ([`budget`]): at most `jobs` more connections, shared by every tenant's
//! runs (each request takes from its tenant's bucket, in its schema). A lost connection is retried every poll;
//! nothing is claimed meanwhile, and claims held lapse after their expiry
//! for another worker to take.

pub mod budget;
mod page;
pub mod schema;
mod site;
pub mod tenants;
mod ticks;
pub mod work;

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Condvar, Mutex};
use std::thread::JoinHandle;
use std::time::Duration;

use muster_outbound::SharedLimiter;
use postgres::Client;

use crate::config::{Config, ConfigError, SecretSource};
use crate::serve::{RunReport, ServeConfig, ServeError, ServeFlow};
use crate::store::{InboxId, PostgresLocation, RunStatus, Store, StoreError, Trigger};
use budget::FleetBudget;
use tenants::{TenantFile, TenantsError};
use work::{Claim, Kind, Outcome};

/// How a fleet worker runs.
#[derive(Debug, Clone)]
pub struct FleetConfig {
    /// The fleet database (`postgres://user@host:port/name`, no password).
    pub url: String,
    /// Its password's secret (`--fleet-password-env` / `--fleet-password-file`).
    pub password: Option<SecretSource>,
    /// The tenants directory: one `<id>.toml` per tenant.
    pub tenants: PathBuf,
    /// Runs this worker makes at once (default 1).
    pub jobs: usize,
    /// How long a claim lasts unless renewed (the flow lease's TTL too).
    pub ttl: Duration,
    /// How often idle runner threads look for work and the ticker looks
    /// for due ticks (default 1 s).
    pub poll: Duration,
    /// How often pending webhook events are swept into the ledger
    /// (default 5 minutes, like `serve`); old ledger rows are pruned then.
    pub retry_every: Duration,
    /// How long finished ledger rows (and workers gone) are kept, for the
    /// status page and audits (default 7 days); a tenant's run history
    /// itself is in its schema and not pruned.
    pub keep: Duration,
}

impl FleetConfig {
    /// The defaults for `url` and `tenants`.
    pub fn new(url: String, tenants: PathBuf, ttl: Duration) -> FleetConfig {
        FleetConfig {
            url,
            password: None,
            tenants,
            jobs: 1,
            ttl,
            poll: Duration::from_secs(1),
            retry_every: Duration::from_secs(300),
            keep: Duration::from_secs(7 * 24 * 3600),
        }
    }
}

/// Why a fleet worker could not start.
#[derive(Debug, thiserror::Error)]
pub enum FleetError {
    #[error(transparent)]
    Tenants(#[from] TenantsError),
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("the fleet database's password: {0}")]
    Password(#[source] ConfigError),
    #[error(transparent)]
    Serve(#[from] ServeError),
}

/// How one run of a tenant's flow went, as the fleet needs to know.
#[derive(Debug, Clone, PartialEq)]
pub enum Ran {
    /// The run was made (done, held or failed: see its status).
    Report(RunReport),
    /// Another live run holds the flow's lease: try again shortly.
    Busy(String),
    /// No run could be made (a plugin did not load, the store is down…).
    Failed(String),
}

/// The engine, as the fleet sees it: runs `flow` of the tenant `config`
/// describes (its state is its schema in the fleet database), its
/// rate-limited requests taking from `budget` — the tenant's bucket, on the
/// worker's budget connections ([`budget`]) — rather than from a budget
/// connection of the run's own.
pub trait TenantRunner: Send + Sync {
    fn run(&self, run: TenantRun<'_>) -> Ran;
}

/// One run a [`TenantRunner`] is asked for.
pub struct TenantRun<'a> {
    pub config: &'a Config,
    pub flow: &'a str,
    pub trigger: Trigger,
    /// A webhook's record: only it is synced.
    pub only: Option<&'a str>,
    /// The tenant's shared rate-limit budget.
    pub budget: Arc<dyn SharedLimiter>,
}

/// A tenant as this worker serves it.
#[derive(Debug)]
pub(crate) struct Tenant {
    pub id: String,
    pub file: PathBuf,
    /// `tenant_<id>`: its store, and its rate-limit buckets.
    pub schema: String,
    /// Loaded and ready, or why not.
    pub ready: Result<(Config, Vec<ServeFlow>), String>,
}

/// What the worker's threads and the HTTP handlers share.
pub(crate) struct Fleet {
    cfg: FleetConfig,
    /// `host:pid:nonce`.
    worker: String,
    location: PostgresLocation,
    tenants: Vec<Tenant>,
    /// Ids of the tenants that are ready: the only ones this worker claims.
    served: Vec<String>,
    runner: Arc<dyn TenantRunner>,
    /// Every tenant's rate-limit budget, on at most `jobs` connections.
    budget: Arc<FleetBudget>,
    /// Claims held now (id → fence), renewed by the heartbeat.
    claims: Mutex<HashMap<i64, i64>>,
    /// One connection for HTTP handlers (webhook rows, the status page).
    http_db: Mutex<Option<Client>>,
    stop: AtomicBool,
    stopped: (Mutex<()>, Condvar),
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

impl Fleet {
    fn connect(&self) -> Result<Client, StoreError> {
        self.location.connect()
    }

    /// Sleeps `d`, or less when the worker stops.
    fn pause(&self, d: Duration) {
        let guard = lock(&self.stopped.0);
        if !self.stop.load(Ordering::SeqCst) {
            let _ = self.stopped.1.wait_timeout(guard, d);
        }
    }

    fn tenant(&self, id: &str) -> Option<&Tenant> {
        self.tenants.iter().find(|t| t.id == id)
    }

    /// Runs `f` on `conn`, connecting first if needed; a failed call drops
    /// the connection so the next one reconnects.
    fn with_db<T>(
        &self,
        conn: &mut Option<Client>,
        f: impl FnOnce(&mut Client) -> Result<T, StoreError>,
    ) -> Result<T, StoreError> {
        let c = match conn {
            Some(c) => c,
            None => conn.insert(self.connect()?),
        };
        let out = f(c);
        if out.is_err() && c.is_closed() {
            *conn = None;
        }
        out
    }

    /// The ticker: records due ticks every poll, sweeps pending webhook
    /// events every `retry_every`.
    fn tick_loop(&self) {
        let mut conn = None;
        let mut recorded: HashMap<(String, String), i64> = HashMap::new();
        let mut registered = HashMap::new();
        let mut next_sweep = std::time::Instant::now();
        while !self.stop.load(Ordering::SeqCst) {
            let pass = self.with_db(&mut conn, |c| {
                if registered.len() < self.served.len() {
                    registered = work::registered(c)?;
                }
                self.record_ticks(c, &registered, &mut recorded)
            });
            if let Err(e) = pass {
                tracing::warn!(worker = %self.worker, "fleet ticker: {e}");
            }
            if std::time::Instant::now() >= next_sweep {
                self.sweep_inboxes(&mut conn);
                let keep = ttl_ms(self.cfg.keep);
                if let Err(e) = self.with_db(&mut conn, |c| work::prune(c, keep)) {
                    tracing::warn!(worker = %self.worker, "fleet ticker: {e}");
                }
                next_sweep = std::time::Instant::now() + self.cfg.retry_every;
            }
            self.pause(self.cfg.poll);
        }
    }

    fn record_ticks(
        &self,
        c: &mut Client,
        registered: &HashMap<String, i64>,
        recorded: &mut HashMap<(String, String), i64>,
    ) -> Result<(), StoreError> {
        let now = work::server_now(c)?;
        for t in &self.tenants {
            let (Ok((config, flows)), Some(&since)) = (&t.ready, registered.get(&t.id)) else {
                continue;
            };
            for f in flows {
                let Some(schedule) = f.schedule else { continue };
                let Some(tick) = ticks::due_tick(schedule, &config.tenant.timezone, now, since)
                else {
                    continue;
                };
                let key = (t.id.clone(), f.name.clone());
                if recorded.get(&key) == Some(&tick) {
                    continue;
                }
                work::record_tick(c, &t.id, &f.name, tick)?;
                recorded.insert(key, tick);
            }
        }
        Ok(())
    }

    /// Records every pending event of every webhook flow (rows missing
    /// after a crash between inbox and ledger, or failed and due a retry).
    fn sweep_inboxes(&self, conn: &mut Option<Client>) {
        let retry_ms = i64::try_from(self.cfg.retry_every.as_millis()).unwrap_or(i64::MAX);
        for t in &self.tenants {
            let Ok((config, flows)) = &t.ready else {
                continue;
            };
            if flows.iter().all(|f| f.webhook.is_none()) {
                continue;
            }
            let swept = open_store(config)
                .map_err(|e| e.to_string())
                .and_then(|store| {
                    let mut pending = Vec::new();
                    for f in flows.iter().filter(|f| f.webhook.is_some()) {
                        pending.extend(store.inbox_pending(&f.name).map_err(|e| e.to_string())?);
                    }
                    self.with_db(conn, |c| {
                        for e in &pending {
                            let record = e.record_id.as_deref();
                            work::record_event(c, &t.id, &e.flow, e.id.0, record, retry_ms)?;
                        }
                        Ok(())
                    })
                    .map_err(|e| e.to_string())
                });
            if let Err(e) = swept {
                tracing::warn!(tenant = %t.id, "fleet: sweeping the webhook inbox: {e}");
            }
        }
    }

    /// The heartbeat: the worker's row and every claim it holds, every
    /// third of the TTL.
    fn heartbeat_loop(&self) {
        let mut conn = None;
        let ttl = ttl_ms(self.cfg.ttl);
        while !self.stop.load(Ordering::SeqCst) {
            let claims: Vec<(i64, i64)> =
                lock(&self.claims).iter().map(|(&i, &f)| (i, f)).collect();
            let beat = self.with_db(&mut conn, |c| {
                work::worker_alive(c, &self.worker)?;
                work::renew(c, &claims, ttl)
            });
            match beat {
                Ok(lost) => {
                    for id in lost {
                        tracing::warn!(worker = %self.worker, "fleet: the claim on work {id} was taken over");
                    }
                }
                Err(e) => tracing::warn!(worker = %self.worker, "fleet heartbeat: {e}"),
            }
            self.pause(self.cfg.ttl / 3);
        }
    }

    /// A runner thread: claims a row, runs it, records how it ended.
    fn run_loop(&self) {
        let mut conn = None;
        let ttl = ttl_ms(self.cfg.ttl);
        while !self.stop.load(Ordering::SeqCst) {
            let claimed = self.with_db(&mut conn, |c| {
                work::claim(c, &self.worker, ttl, &self.served)
            });
            let claim = match claimed {
                Ok(Some(claim)) => claim,
                Ok(None) => {
                    self.pause(self.cfg.poll);
                    continue;
                }
                Err(e) => {
                    tracing::warn!(worker = %self.worker, "fleet: claiming work: {e}");
                    self.pause(self.cfg.poll);
                    continue;
                }
            };
            lock(&self.claims).insert(claim.id, claim.fence);
            if let Some(dead) = &claim.taken_over_from {
                tracing::warn!(tenant = %claim.tenant, flow = %claim.flow,
                    "fleet: taking over work {} from worker {dead}, whose claim expired", claim.id);
            }
            let (outcome, run, note) = self.execute(&claim);
            let ended = self.end_claim(&mut conn, &claim, outcome, run, &note);
            lock(&self.claims).remove(&claim.id);
            match ended {
                Ok(true) => {}
                Ok(false) => tracing::warn!(tenant = %claim.tenant, flow = %claim.flow,
                    "fleet: work {} was taken over before it ended ({note})", claim.id),
                Err(e) => {
                    tracing::warn!(tenant = %claim.tenant, "fleet: ending work {}: {e}", claim.id)
                }
            }
        }
    }

    /// Records how a claim ended; retried every poll while the database is
    /// unreachable, for as long as the claim would last (the heartbeat
    /// keeps renewing it if it can), so that a finished run is not run
    /// again by a take-over because its end could not be written.
    fn end_claim(
        &self,
        conn: &mut Option<Client>,
        claim: &Claim,
        outcome: Option<Outcome>,
        run: Option<i64>,
        note: &str,
    ) -> Result<bool, StoreError> {
        let give_up = std::time::Instant::now() + self.cfg.ttl;
        loop {
            let ended = self.with_db(conn, |c| match outcome {
                None => {
                    work::postpone(c, claim, ttl_ms(self.cfg.ttl).min(2_000), note).map(|()| true)
                }
                Some(o) => work::finish(c, claim, o, run, note),
            });
            if ended.is_ok()
                || std::time::Instant::now() >= give_up
                || self.stop.load(Ordering::SeqCst)
            {
                return ended;
            }
            self.pause(self.cfg.poll);
        }
    }

    /// Runs a claimed row: `None` outcome when the flow was busy (the row
    /// is postponed), else how it ended, its run and a note.
    fn execute(&self, claim: &Claim) -> (Option<Outcome>, Option<i64>, String) {
        let Some((tenant, (config, _))) = self
            .tenant(&claim.tenant)
            .and_then(|t| Some((t, t.ready.as_ref().ok()?)))
        else {
            return (
                Some(Outcome::Failed),
                None,
                "the tenant is not ready".into(),
            );
        };
        let ran = match claim.kind {
            Kind::Schedule => guarded(|| {
                self.runner.run(TenantRun {
                    config,
                    flow: &claim.flow,
                    trigger: Trigger::Schedule,
                    only: None,
                    budget: self.budget.tenant(&tenant.schema),
                })
            }),
            Kind::Webhook => match self.run_event(tenant, config, claim) {
                Ok(ran) => ran,
                Err(done) => return (Some(Outcome::Done), None, done),
            },
        };
        match ran {
            Ran::Report(r) => {
                let ok = matches!(r.status, RunStatus::Done | RunStatus::Held);
                let outcome = if ok { Outcome::Done } else { Outcome::Failed };
                (
                    Some(outcome),
                    Some(r.run.0),
                    format!("run {}: {}", r.run, r.status),
                )
            }
            Ran::Busy(why) => (None, None, format!("busy: {why}")),
            Ran::Failed(why) => (Some(Outcome::Failed), None, why),
        }
    }

    /// Runs a webhook event and settles it in the tenant's inbox, the way
    /// `serve` does. `Err` when there is nothing to run (already processed).
    fn run_event(&self, tenant: &Tenant, config: &Config, claim: &Claim) -> Result<Ran, String> {
        let id = InboxId(claim.key);
        let mut store = open_store(config).map_err(|e| format!("cannot open the store: {e}"))?;
        let event = store.inbox_event(id).map_err(|e| e.to_string())?;
        if event.state != crate::store::InboxState::Pending {
            return Err(format!("event {} is already {}", id.0, event.state));
        }
        let Some(record) = event.record_id.as_deref() else {
            let _ = store.inbox_reject(id, "the event has no record id");
            return Err(format!("event {} has no record id", id.0));
        };
        let ran = guarded(|| {
            self.runner.run(TenantRun {
                config,
                flow: &claim.flow,
                trigger: Trigger::Webhook,
                only: Some(record),
                budget: self.budget.tenant(&tenant.schema),
            })
        });
        let outcome = match &ran {
            Ran::Report(r) => Ok(r.clone()),
            Ran::Busy(why) | Ran::Failed(why) => Err(why.clone()),
        };
        if !matches!(ran, Ran::Busy(_))
            && let Err(e) = crate::serve::settle_event(&mut store, id, &outcome)
        {
            tracing::warn!(tenant = %claim.tenant, "fleet: settling event {}: {e}", id.0);
        }
        Ok(ran)
    }
}

fn guarded(f: impl FnOnce() -> Ran) -> Ran {
    std::panic::catch_unwind(std::panic::AssertUnwindSafe(f))
        .unwrap_or_else(|_| Ran::Failed("the run panicked".into()))
}

fn ttl_ms(d: Duration) -> i64 {
    i64::try_from(d.as_millis()).unwrap_or(i64::MAX / 2)
}

/// Why a tenant's store could not be opened.
#[derive(Debug, thiserror::Error)]
pub enum TenantStoreError {
    #[error("tenant `{tenant}`: {source}")]
    Location {
        tenant: String,
        source: Box<ConfigError>,
    },
    #[error("tenant `{tenant}`: {source}")]
    Store {
        tenant: String,
        source: Box<StoreError>,
    },
}

/// A tenant's store: its schema in the fleet database.
pub(crate) fn open_store(config: &Config) -> Result<Store, TenantStoreError> {
    let tenant = || config.tenant.name.clone();
    let location = config
        .tenant
        .location()
        .map_err(|source| TenantStoreError::Location {
            tenant: tenant(),
            source: Box::new(source),
        })?;
    Store::open_location(&location).map_err(|source| TenantStoreError::Store {
        tenant: tenant(),
        source: Box::new(source),
    })
}

/// Creates the schema of every tenant whose file loaded and registers it
/// (quick: every tenant is registered within moments of the first worker's
/// start, so tenants due in the same minute get the same first tick);
/// a tenant whose schema cannot be created gets that problem.
fn register(files: Vec<TenantFile>, c: &mut Client) -> Vec<(TenantFile, Result<(), String>)> {
    files
        .into_iter()
        .map(|f| {
            let registered = match &f.config {
                Ok(_) => schema::ensure_tenant(c, &f.id, &f.schema).map_err(|e| e.to_string()),
                Err(e) => Err(e.to_string()),
            };
            (f, registered)
        })
        .collect()
}

/// Migrates a registered tenant's store, records its flows and loads its
/// webhook secrets; any failure is its problem only.
fn prepare(file: TenantFile, registered: Result<(), String>) -> Tenant {
    let ready = registered.and_then(|()| {
        let config = file.config.map_err(|e| e.to_string())?;
        let mut store = open_store(&config).map_err(|e| e.to_string())?;
        for f in config.flows.values() {
            store
                .ensure_flow(&f.name, &f.source, &f.target)
                .map_err(|e| e.to_string())?;
        }
        let flows = ServeConfig::from_config(&config)
            .map_err(|e| e.to_string())?
            .flows;
        Ok((config, flows))
    });
    if let Err(problem) = &ready {
        tracing::error!(tenant = %file.id, "fleet: tenant not served: {problem}");
    }
    Tenant {
        id: file.id,
        file: file.file,
        schema: file.schema,
        ready,
    }
}

/// A running fleet worker: stops (and joins its threads) when dropped.
pub struct FleetWorker {
    fleet: Arc<Fleet>,
    http: Option<tokio::runtime::Runtime>,
    addr: std::net::SocketAddr,
    threads: Vec<JoinHandle<()>>,
}

impl FleetWorker {
    /// Loads the tenants, migrates the fleet schema and each tenant's,
    /// registers the worker, listens on `listen` and starts its threads.
    pub fn start(
        listen: &str,
        cfg: FleetConfig,
        runner: Arc<dyn TenantRunner>,
    ) -> Result<FleetWorker, FleetError> {
        let password = cfg
            .password
            .as_ref()
            .map(|s| s.load().map(|p| p.expose().to_string()))
            .transpose()
            .map_err(FleetError::Password)?;
        let location = PostgresLocation::parse(&cfg.url, password)?;
        let mut c = location.connect()?;
        schema::migrate(&mut c, &location.describe())?;
        let files = tenants::load(&cfg.tenants, &cfg.url, cfg.password.as_ref())?;
        let tenants: Vec<Tenant> = register(files, &mut c)
            .into_iter()
            .map(|(f, registered)| prepare(f, registered))
            .collect();
        let served = tenants
            .iter()
            .filter(|t| t.ready.is_ok())
            .map(|t| t.id.clone())
            .collect();
        let worker = crate::store::lease::owner_name();
        let budget = Arc::new(FleetBudget::new(&location, cfg.jobs));
        let fleet = Arc::new(Fleet {
            cfg,
            worker,
            location,
            tenants,
            served,
            runner,
            budget,
            claims: Mutex::new(HashMap::new()),
            http_db: Mutex::new(Some(c)),
            stop: AtomicBool::new(false),
            stopped: (Mutex::new(()), Condvar::new()),
        });
        let (http, addr) = crate::serve::listener::start(listen, fleet.clone())?;
        fleet.with_db(&mut lock(&fleet.http_db), |c| {
            work::register_worker(c, &fleet.worker, &addr.to_string())
        })?;
        let mut threads = Vec::new();
        let spawn = |name: String, f: fn(&Fleet)| {
            let fleet = fleet.clone();
            std::thread::Builder::new()
                .name(name)
                .spawn(move || f(&fleet))
                .map_err(ServeError::Thread)
        };
        threads.push(spawn("muster-fleet-ticker".into(), Fleet::tick_loop)?);
        threads.push(spawn(
            "muster-fleet-heartbeat".into(),
            Fleet::heartbeat_loop,
        )?);
        for i in 0..fleet.cfg.jobs.max(1) {
            threads.push(spawn(format!("muster-fleet-run-{i}"), Fleet::run_loop)?);
        }
        Ok(FleetWorker {
            fleet,
            http: Some(http),
            addr,
            threads,
        })
    }

    /// The address actually listened on.
    pub fn local_addr(&self) -> std::net::SocketAddr {
        self.addr
    }

    /// This worker's id (`host:pid:nonce`).
    pub fn id(&self) -> &str {
        &self.fleet.worker
    }

    /// The tenants not served, with why (file, line:column).
    pub fn problems(&self) -> Vec<(String, String)> {
        self.fleet
            .tenants
            .iter()
            .filter_map(|t| t.ready.as_ref().err().map(|p| (t.id.clone(), p.clone())))
            .collect()
    }

    /// Serves until the process is stopped.
    pub fn run_forever(mut self) {
        for t in self.threads.drain(..) {
            let _ = t.join();
        }
    }
}

impl Drop for FleetWorker {
    fn drop(&mut self) {
        self.fleet.stop.store(true, Ordering::SeqCst);
        {
            let _g = lock(&self.fleet.stopped.0);
            self.fleet.stopped.1.notify_all();
        }
        if let Some(http) = self.http.take() {
            http.shutdown_timeout(Duration::from_secs(5));
        }
        for t in self.threads.drain(..) {
            let _ = t.join();
        }
        let fleet = &self.fleet;
        let _ = fleet.with_db(&mut lock(&fleet.http_db), |c| {
            work::worker_stopped(c, &fleet.worker)
        });
    }
}
