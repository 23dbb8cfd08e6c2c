//! # `muster serve`: schedules, webhooks, health and a status page
//!
//! One process per tenant, for a small server: it runs each flow on its
//! [schedule](crate::schedule), takes webhooks (a recruiting tool's
//! "candidate hired" → a single-record run), answers `/healthz`, and shows
//! a status page, where signed-in admins review, approve or reject held
//! plans.
//!
//! ## Shape
//!
//! - **HTTP** — hyper's HTTP/1 server on a small tokio runtime: one I/O
//!   thread for every connection, and a small pool of handler threads
//!   ([`ServeConfig::http_threads`]) for what reads the store. Requests only
//!   read the store or append to the inbox: they never run a sync
//!   themselves. Every resource a client could exhaust is bounded —
//!   connections, head size, body size, header/body/write timeouts — and a
//!   panicking handler answers `500`; see `listener.rs`.
//! - **One worker thread** runs everything that syncs, one job at a time:
//!   due schedules and inbox events. Runs of one tenant never overlap in
//!   this process, which is what the engine expects (one writer per
//!   store), and a burst of webhooks queues rather than stampedes the
//!   vendors' rate limits.
//! - **The engine is injected** as a [`Runner`]: this module knows nothing
//!   of plugins or plans, and its tests drive it with their own runner.
//! - **Time is injected** as a [`Clock`], so tests can step through
//!   schedules without waiting.
//!
//! ## Routes
//!
//! | route | answer |
//! |---|---|
//! | `GET /healthz` | `200 ok` while the process serves |
//! | `GET /` | the status page: flows, schedules and next firings, last runs with counts, held plans, inbox backlog — read-only, every value HTML-escaped |
//! | `GET /runs/{id}` | one run: its actions, failures, data problems, skips and conflicts with their reasons |
//! | `GET /search?q=…` | a person's history (by name, email or id) across runs and flows |
//! | `GET /metrics` | Prometheus text exposition of the run history and rate-limit waits |
//! | `POST /webhooks/{flow}` | see below |
//! | `GET`/`POST /login`, `POST /logout` | the admin pages' sign-in (`auth.rs`) |
//! | `GET /held/{flow}` | a held plan for review, with **Approve** and **Reject** (`held.rs`) |
//! | `POST /held/{flow}/approve`, `…/reject` | the admin's decision (session + CSRF token) |
//! | `POST /runs/{id}/undo` | the Undo button: the undo of that run, held for review (`undo.rs`) |
//!
//! With `[serve] admins` configured every page needs a signed-in admin;
//! see `auth.rs` for the design and `docs/admin.md` for the admin's guide.
//!
//! ## Alerts
//!
//! With `[alerts]` configured, the worker checks after each job whether it
//! calls for an alert (a failed run, a held plan, records failing across
//! runs) and hands it to the alerts thread; see [`crate::alerts`]. The hook
//! is [`Shared::alert`]; sending never delays or fails a run.
//!
//! ## Webhooks and the durable inbox
//!
//! A flow with a `webhook` in its config accepts `POST /webhooks/{flow}`:
//!
//! 1. **Authentication**: the request must carry the flow's shared secret in
//!    the `X-Muster-Secret` header. It is compared in constant time (both
//!    sides are hashed with SHA-256 first, so neither the content nor the
//!    length leaks through timing). A missing or wrong secret is `401` and
//!    **nothing is stored**.
//! 2. **Size**: a body over [`ServeConfig::max_body`] is `413`, not stored
//!    (any route: a declared `Content-Length` over the cap is refused before
//!    the body is read, and the connection is closed).
//! 3. **Shape**: the body must be JSON with a record id at the flow's
//!    `id_field` path (`candidate.id`: a non-empty string or an integer) and
//!    a value at each of its `require` paths (`data.column.id`). Otherwise
//!    it is `400` naming what is missing and **nothing is stored**: such a
//!    body can never be run, and a sender that retries it must not fill the
//!    inbox.
//! 4. **Stored before processed**: the event is committed to the inbox
//!    ([`Store::inbox_push`]) before anything else happens. A sender's
//!    delivery id (`X-Muster-Delivery`, or `Idempotency-Key`) makes
//!    redelivery idempotent: the same id is stored once (`200`, with the
//!    first event's id).
//! 5. Otherwise the answer is `202 Accepted` with the inbox id, and the
//!    worker runs `runner.run(flow, Trigger::Webhook, Some(id))`. A run that
//!    fails leaves the event `pending`: it is retried every
//!    [`ServeConfig::retry_every`] and at the next start. An accepted event
//!    is never lost, even if the process dies right after answering.

mod admin;
mod auth;
mod held;
pub(crate) mod http;
pub(crate) mod listener;
mod metrics;
pub(crate) mod page;
mod run_page;
mod search;
mod undo;
mod views;

pub use auth::{CSRF_FIELD, SESSION_COOKIE};
pub use held::Approval;
pub use http::{DELIVERY_HEADERS, SECRET_HEADER};
pub use listener::{MAX_HEAD, MAX_HEADERS};

use std::collections::{BTreeMap, HashSet, VecDeque};
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::thread::JoinHandle;
use std::time::Duration;

use jiff::tz::TimeZone;
use jiff::{SignedDuration, Timestamp};

use crate::alerts::{Alerting, Finished, Notifier};
use crate::config::{Config, ConfigError, Secret};
use crate::schedule::{Clock, Schedule, Scheduler};
use crate::store::{
    HeldPlanId, InboxId, InboxState, RunCounts, RunId, RunStatus, Store, StoreError, Trigger,
};

/// What a run reports back to `serve`. Small on purpose: the details are
/// in the store (journal, history), which the status page reads.
#[derive(Debug, Clone, PartialEq)]
pub struct RunReport {
    /// The run's row in the store.
    pub run: RunId,
    /// `Done` and `Held` count as processed; `Failed` and `Aborted` leave a
    /// webhook event pending for retry.
    pub status: RunStatus,
    pub counts: RunCounts,
}

/// The engine, as `serve` sees it. The lead's engine implements it; tests
/// implement it with recording runners.
pub trait Runner: Send + Sync {
    /// Runs `flow` once. `only` restricts the run to one source record
    /// (a webhook's record id). `Err` means no run could be made at all
    /// (e.g. a plugin failed to load); a run that started and failed is
    /// `Ok` with [`RunStatus::Failed`].
    fn run(&self, flow: &str, trigger: Trigger, only: Option<&str>) -> Result<RunReport, String>;

    /// How long this process's runs have waited for each connection's rate
    /// limit so far (the vendor's declared limit, or its `Retry-After`), for
    /// `/metrics`. None by default: a runner that calls no vendor waits for
    /// none.
    fn rate_limit_waits(&self) -> Vec<(String, Duration)> {
        Vec::new()
    }

    /// Plans the undo of `run` of `flow` and holds it for review, whatever
    /// its size (the status page's undo button: a click never changes the
    /// target by itself); approving it applies it if the data has not
    /// changed (`muster undo RUN --yes --approve-held`). `Err` when the run
    /// cannot be undone (unknown, another flow's, still running, never
    /// applied). The default refuses, for runners that cannot undo.
    fn undo(&self, flow: &str, run: RunId) -> Result<RunReport, String> {
        Err(format!("flow `{flow}`: this server cannot undo run {run}"))
    }

    /// Applies the held plan of `flow` an admin approved in the browser,
    /// the way `muster sync --approve-held` does: only if it is still the
    /// pending plan with snapshot digest `digest` and the data has not
    /// moved since (otherwise the fresh plan is held, or applied if the
    /// guard lets it through: see [`Approval`]), recording `who` as the
    /// approver in the audit log. The default refuses: a runner that cannot
    /// approve.
    fn approve(&self, flow: &str, digest: &str, who: &str) -> Result<RunReport, String> {
        let _ = (digest, who);
        Err(format!(
            "flow `{flow}`: this server cannot approve held plans"
        ))
    }
}

/// A flow as `serve` needs it.
#[derive(Debug, Clone)]
pub struct ServeFlow {
    pub name: String,
    pub source: String,
    pub target: String,
    pub schedule: Option<Schedule>,
    pub webhook: Option<ServeWebhook>,
}

/// An admin of the admin pages, with the password loaded.
#[derive(Debug, Clone)]
pub struct ServeAdmin {
    /// The login name, recorded in the audit log.
    pub name: String,
    pub password: Secret,
}

/// A flow's webhook, with its secret loaded.
#[derive(Debug, Clone)]
pub struct ServeWebhook {
    pub secret: Secret,
    /// Dotted path of the record id in the JSON body (`candidate.id`).
    pub id_field: String,
    /// Dotted paths every event must have (the sender's documented shape).
    pub require: Vec<String>,
}

/// The default cap on a request body: 1 MiB, far above any webhook event.
pub const MAX_BODY: usize = 1024 * 1024;
/// The default bound on connections served at once. A tenant's server sees
/// a few webhook senders and browsers; the bound keeps file descriptors
/// and memory (at most `MAX_CONNECTIONS` × [`MAX_HEAD`] of request heads)
/// small whatever clients do.
pub const MAX_CONNECTIONS: usize = 256;

/// Everything [`Server::start`] needs.
#[derive(Debug, Clone)]
pub struct ServeConfig {
    pub tenant: String,
    pub timezone: TimeZone,
    pub timezone_name: String,
    /// The state database (the same one the engine writes): a file, or a
    /// PostgreSQL URL (see [`crate::config::state_location`]).
    pub store: PathBuf,
    /// The PostgreSQL password's secret, when `store` is a URL.
    pub store_password: Option<crate::config::SecretSource>,
    pub flows: Vec<ServeFlow>,
    /// Handler threads: the status page and webhooks run on them (default
    /// 4). `/healthz` and the connections themselves need none.
    pub http_threads: usize,
    /// Largest accepted request body, in bytes (default [`MAX_BODY`]).
    pub max_body: usize,
    /// Connections served at once (default [`MAX_CONNECTIONS`]); more wait
    /// in the listen backlog.
    pub max_connections: usize,
    /// Time to send a request head, and that an idle keep-alive connection
    /// is kept (default 10 s).
    pub header_timeout: Duration,
    /// Time to send a whole webhook body (default 10 s); `408` after it.
    pub body_timeout: Duration,
    /// Time a client may leave its answer unread before it is
    /// disconnected (default 10 s).
    pub write_timeout: Duration,
    /// How often pending inbox events are retried (default 5 minutes).
    pub retry_every: Duration,
    /// Runs shown per flow on the status page (default 5).
    pub page_runs: usize,
    /// `[alerts]`, with its secrets loaded; `None`: no alerts.
    pub alerts: Option<Alerting>,
    /// Who may sign in to the admin pages (`[serve] admins`); none: the
    /// status page is public and read-only, the admin pages are off.
    pub admins: Vec<ServeAdmin>,
    /// How long a sign-in lasts (default 8 hours).
    pub session_ttl: Duration,
    /// How long an approval's answer waits for its run (default 10
    /// minutes); after it the page says the run goes on, and the status
    /// page shows how it ended.
    pub approve_wait: Duration,
}

impl ServeConfig {
    /// From a loaded [`Config`]; loads every webhook secret now, so a
    /// missing variable stops `serve` at start rather than at the first
    /// event.
    pub fn from_config(config: &Config) -> Result<ServeConfig, ConfigError> {
        let mut flows = Vec::with_capacity(config.flows.len());
        for f in config.flows.values() {
            let webhook = match &f.webhook {
                Some(w) => Some(ServeWebhook {
                    secret: w.secret.load()?,
                    id_field: w.id_field.clone(),
                    require: w.require.clone(),
                }),
                None => None,
            };
            flows.push(ServeFlow {
                name: f.name.clone(),
                source: f.source.clone(),
                target: f.target.clone(),
                schedule: f.schedule,
                webhook,
            });
        }
        let admins = config
            .serve
            .admins
            .iter()
            .map(|a| {
                Ok(ServeAdmin {
                    name: a.name.clone(),
                    password: a.password.load()?,
                })
            })
            .collect::<Result<_, ConfigError>>()?;
        Ok(ServeConfig {
            tenant: config.tenant.name.clone(),
            timezone: config.tenant.timezone.clone(),
            timezone_name: config.tenant.timezone_name.clone(),
            store: config.tenant.state.clone(),
            store_password: config.tenant.state_password.clone(),
            flows,
            alerts: config.alerts.as_ref().map(Alerting::load).transpose()?,
            admins,
            ..ServeConfig::defaults()
        })
    }

    /// An empty configuration (UTC, no flows) with the default limits.
    pub fn defaults() -> ServeConfig {
        ServeConfig {
            tenant: String::new(),
            timezone: TimeZone::UTC,
            timezone_name: "UTC".into(),
            store: PathBuf::from("muster.db"),
            store_password: None,
            flows: Vec::new(),
            http_threads: 4,
            max_body: MAX_BODY,
            max_connections: MAX_CONNECTIONS,
            header_timeout: Duration::from_secs(10),
            body_timeout: Duration::from_secs(10),
            write_timeout: Duration::from_secs(10),
            retry_every: Duration::from_secs(300),
            page_runs: 5,
            alerts: None,
            admins: Vec::new(),
            session_ttl: Duration::from_secs(8 * 3600),
            approve_wait: Duration::from_secs(600),
        }
    }
}

/// Why `serve` could not start.
#[derive(Debug, thiserror::Error)]
pub enum ServeError {
    #[error("cannot listen on {addr}: {message}")]
    Bind { addr: String, message: String },
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error(transparent)]
    Config(#[from] crate::config::ConfigError),
    #[error("cannot start a serve thread: {0}")]
    Thread(std::io::Error),
}

/// A job for the worker.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Job {
    Scheduled(String),
    Inbox(InboxId),
    /// An admin approved held plan `plan` (snapshot `digest`) of `flow`;
    /// the outcome goes to [`Queue::approvals`] under `ticket`.
    Approve {
        ticket: u64,
        flow: String,
        plan: HeldPlanId,
        digest: String,
        who: String,
    },
    /// An admin asked to undo `run` of `flow` (the Undo button); the
    /// outcome goes to [`Queue::undos`] under `ticket`.
    Undo {
        ticket: u64,
        flow: String,
        run: RunId,
    },
}

#[derive(Default)]
struct Queue {
    jobs: VecDeque<Job>,
    /// Inbox events queued or running, so a retry sweep does not queue them twice.
    inbox: HashSet<InboxId>,
    busy: bool,
    /// The last outcome of each flow's scheduled run, for the status page.
    notes: BTreeMap<String, String>,
    /// Outcomes of approvals, by ticket, until their page takes them.
    approvals: BTreeMap<u64, Approval>,
    /// Outcomes of undo requests, by ticket, until their page takes them.
    undos: BTreeMap<u64, Result<RunReport, String>>,
    next_ticket: u64,
}

/// State shared by the request threads and the worker.
struct Shared {
    cfg: ServeConfig,
    runner: Arc<dyn Runner>,
    clock: Arc<dyn Clock>,
    store: Mutex<Store>,
    scheduler: Mutex<Scheduler>,
    queue: Mutex<Queue>,
    /// Signalled when a job is queued, the server stops, or it goes idle.
    changed: Condvar,
    stop: AtomicBool,
    /// The alerts thread, when `[alerts]` is configured.
    notifier: Option<Notifier>,
    /// The admin pages' sign-ins (`auth.rs`).
    sessions: auth::Sessions,
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    // A panicking job must not take the whole server down with poison.
    m.lock().unwrap_or_else(|p| p.into_inner())
}

impl Shared {
    fn enqueue(&self, job: Job) {
        let mut q = lock(&self.queue);
        if let Job::Inbox(id) = job
            && !q.inbox.insert(id)
        {
            return;
        }
        q.jobs.push_back(job);
        self.changed.notify_all();
    }

    /// Queues the flows due at the clock's time. The due check and the
    /// queueing happen under the queue lock, so whoever waits for the queue
    /// to drain ([`Server::wait_idle`]) never sees a firing that was taken
    /// off the scheduler but not yet queued. Lock order: queue, then
    /// scheduler.
    fn queue_due(&self) {
        let mut q = lock(&self.queue);
        let now = self.clock.now();
        let due = lock(&self.scheduler).due(now);
        if !due.is_empty() {
            q.jobs.extend(due.into_iter().map(Job::Scheduled));
            self.changed.notify_all();
        }
    }

    /// Queues every pending event of every webhook flow.
    fn queue_pending(&self) -> Result<(), StoreError> {
        let mut ids = Vec::new();
        {
            let store = lock(&self.store);
            for f in self.cfg.flows.iter().filter(|f| f.webhook.is_some()) {
                ids.extend(store.inbox_pending(&f.name)?.into_iter().map(|e| e.id));
            }
        }
        for id in ids {
            self.enqueue(Job::Inbox(id));
        }
        Ok(())
    }

    fn note(&self, flow: &str, text: String) {
        lock(&self.queue).notes.insert(flow.to_string(), text);
    }

    /// Calls the runner; a panic in it becomes an error, so one bad run
    /// cannot stop the worker (and with it every later schedule and event).
    fn run_guarded(
        &self,
        flow: &str,
        trigger: Trigger,
        only: Option<&str>,
    ) -> Result<RunReport, String> {
        std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            self.runner.run(flow, trigger, only)
        }))
        .unwrap_or_else(|_| Err(format!("the run of flow `{flow}` panicked")))
    }

    fn run_job(&self, job: &Job) {
        match job {
            Job::Scheduled(flow) => {
                let outcome = self.run_guarded(flow, Trigger::Schedule, None);
                let note = match &outcome {
                    Ok(r) => format!("run {}: {}", r.run, r.status),
                    Err(e) => format!("could not run: {e}"),
                };
                self.note(flow, note);
                self.alert(flow, Trigger::Schedule, &outcome, true);
            }
            Job::Inbox(id) => self.process_event(*id),
            Job::Approve {
                ticket,
                flow,
                plan,
                digest,
                who,
            } => {
                let outcome = held::run_approval(self, flow, *plan, digest, who);
                lock(&self.queue).approvals.insert(*ticket, outcome);
            }
            Job::Undo { ticket, flow, run } => {
                let outcome = undo::run_undo(self, flow, *run);
                lock(&self.queue).undos.insert(*ticket, outcome);
            }
        }
    }

    /// The alerts hook: decides (under the store lock, a few reads) what the
    /// finished job calls for and queues it for the alerts thread.
    fn alert(
        &self,
        flow: &str,
        trigger: Trigger,
        outcome: &Result<RunReport, String>,
        first_attempt: bool,
    ) {
        let (Some(alerting), Some(notifier)) = (&self.cfg.alerts, &self.notifier) else {
            return;
        };
        let at = self.clock.now().to_zoned(self.cfg.timezone.clone());
        let job = Finished {
            tenant: &self.cfg.tenant,
            flow,
            trigger,
            outcome,
            first_attempt,
            at: &at,
        };
        let alerts = alerting.after_job(&mut lock(&self.store), &job);
        for a in alerts {
            notifier.send(a);
        }
    }

    /// Runs one inbox event and records the outcome. Store errors here are
    /// recorded where possible; the event stays pending either way.
    fn process_event(&self, id: InboxId) {
        let event = match lock(&self.store).inbox_event(id) {
            Ok(e) => e,
            Err(_) => return, // gone or unreadable: nothing to run
        };
        if event.state != InboxState::Pending {
            return;
        }
        let Some(record) = event.record_id.as_deref() else {
            let _ = lock(&self.store).inbox_reject(id, "the event has no record id");
            return;
        };
        let outcome = self.run_guarded(&event.flow, Trigger::Webhook, Some(record));
        self.alert(&event.flow, Trigger::Webhook, &outcome, event.attempts == 0);
        let _ = settle_event(&mut lock(&self.store), id, &outcome);
    }

    /// The worker: due schedules, retry sweeps, then queued jobs, one at a time.
    fn work(&self) {
        let retry = SignedDuration::try_from(self.cfg.retry_every).unwrap_or(SignedDuration::MAX);
        let mut next_retry = self
            .clock
            .now()
            .checked_add(retry)
            .unwrap_or(Timestamp::MAX);
        loop {
            if self.stop.load(Ordering::SeqCst) {
                return;
            }
            self.queue_due();
            let now = self.clock.now();
            if now >= next_retry {
                let _ = self.queue_pending();
                next_retry = now.checked_add(retry).unwrap_or(Timestamp::MAX);
            }
            let mut q = lock(&self.queue);
            if let Some(job) = q.jobs.pop_front() {
                q.busy = true;
                drop(q);
                self.run_job(&job);
                let mut q = lock(&self.queue);
                if let Job::Inbox(id) = job {
                    q.inbox.remove(&id);
                }
                q.busy = false;
                self.changed.notify_all();
                continue;
            }
            // Sleep until the next firing or retry sweep, a new job, or a
            // stop; at most a minute, so a clock that jumps (suspend, NTP)
            // is noticed.
            let wake_at = lock(&self.scheduler)
                .next_wakeup()
                .map_or(next_retry, |t| t.min(next_retry));
            let wait = Duration::try_from(wake_at.duration_since(self.clock.now()))
                .unwrap_or(Duration::ZERO)
                .clamp(Duration::from_millis(10), Duration::from_secs(60));
            let (q, _) = self
                .changed
                .wait_timeout(q, wait)
                .unwrap_or_else(|p| p.into_inner());
            drop(q);
        }
    }
}

/// Records how the run of inbox event `id` went: `Done` and `Held` runs
/// process it; a failed run (or none) leaves it pending, for a retry.
/// Shared by `serve`'s worker and a fleet worker.
pub(crate) fn settle_event(
    store: &mut Store,
    id: InboxId,
    outcome: &Result<RunReport, String>,
) -> Result<(), StoreError> {
    match outcome {
        Ok(r) if matches!(r.status, RunStatus::Done | RunStatus::Held) => {
            store.inbox_done(id, Some(r.run))
        }
        Ok(r) => store.inbox_failed(
            id,
            Some(r.run),
            &format!("run {} ended {}", r.run, r.status),
        ),
        Err(e) => store.inbox_failed(id, None, e),
    }
}

/// A running `serve`: stops (and joins its threads) when dropped.
pub struct Server {
    shared: Arc<Shared>,
    /// The HTTP side (`listener.rs`); dropping it stops serving.
    http: Option<tokio::runtime::Runtime>,
    addr: SocketAddr,
    worker: Option<JoinHandle<()>>,
}

/// How long stopping waits for a request handler that is still running.
const STOP_GRACE: Duration = Duration::from_secs(5);

impl Server {
    /// Listens on `listen` (`127.0.0.1:8080`; port 0 picks a free one),
    /// opens the store, records the flows, queues the inbox events left
    /// pending by a previous run, and starts the worker and request
    /// threads. `now` for the schedules comes from `clock`.
    pub fn start(
        listen: &str,
        cfg: ServeConfig,
        runner: Arc<dyn Runner>,
        clock: Arc<dyn Clock>,
    ) -> Result<Server, ServeError> {
        let location = crate::config::state_location(&cfg.store, cfg.store_password.as_ref())?;
        let mut store = Store::open_location(&location)?;
        for f in &cfg.flows {
            store.ensure_flow(&f.name, &f.source, &f.target)?;
        }
        let scheduler = Scheduler::new(
            cfg.timezone.clone(),
            cfg.flows
                .iter()
                .filter_map(|f| f.schedule.map(|s| (f.name.clone(), s))),
            clock.now(),
        );
        let notifier = cfg
            .alerts
            .as_ref()
            .map(Notifier::start)
            .transpose()
            .map_err(ServeError::Thread)?;
        let shared = Arc::new(Shared {
            notifier,
            cfg,
            runner,
            clock,
            store: Mutex::new(store),
            scheduler: Mutex::new(scheduler),
            queue: Mutex::new(Queue::default()),
            changed: Condvar::new(),
            stop: AtomicBool::new(false),
            sessions: auth::Sessions::default(),
        });
        // Retry what a previous process accepted but did not finish.
        shared.queue_pending()?;

        let (http, addr) = listener::start(listen, shared.clone())?;
        let mut server = Server {
            shared: shared.clone(),
            http: Some(http),
            addr,
            worker: None,
        };
        server.worker = Some(
            std::thread::Builder::new()
                .name("muster-serve-worker".into())
                .spawn(move || shared.work())
                .map_err(ServeError::Thread)?,
        );
        Ok(server)
    }

    /// The address actually listened on (useful with port 0).
    pub fn local_addr(&self) -> SocketAddr {
        self.addr
    }

    /// The next firing of a scheduled flow.
    pub fn next_fire(&self, flow: &str) -> Option<Timestamp> {
        lock(&self.shared.scheduler).next_fire(flow)
    }

    /// Queues the flows due at the clock's current time and wakes the
    /// worker (after a test moved a
    /// [`ManualClock`](crate::schedule::ManualClock)). When this returns,
    /// the due runs are queued, so [`Server::wait_idle`] waits for them.
    pub fn wake(&self) {
        self.shared.queue_due();
        let _q = lock(&self.shared.queue);
        self.shared.changed.notify_all();
    }

    /// Blocks until no job is queued or running. After moving a manual
    /// clock, call [`Server::wake`] first so due schedules are queued.
    pub fn wait_idle(&self) {
        let mut q = lock(&self.shared.queue);
        while q.busy || !q.jobs.is_empty() {
            q = self
                .shared
                .changed
                .wait(q)
                .unwrap_or_else(|p| p.into_inner());
        }
    }

    /// Serves until the process is stopped.
    pub fn run_forever(mut self) {
        if let Some(w) = self.worker.take() {
            let _ = w.join();
        }
    }

    /// Stops serving: finishes the running job, answers no more requests,
    /// joins every thread. Queued events stay pending in the store.
    pub fn stop(self) {
        drop(self);
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        self.shared.stop.store(true, Ordering::SeqCst);
        {
            let _q = lock(&self.shared.queue);
            self.shared.changed.notify_all();
        }
        if let Some(http) = self.http.take() {
            http.shutdown_timeout(STOP_GRACE);
        }
        if let Some(w) = self.worker.take() {
            let _ = w.join();
        }
    }
}

impl std::fmt::Debug for Server {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Server").field("addr", &self.addr).finish()
    }
}
