//! Many tenants on the sandbox simulators: the kit of the fleet test (issue 17).
//!
//! [`Tenants::start`] starts, for each of `n` tenants, its **own Lucca simulator** (its own
//! loopback port, hence its own origin as each customer's `*.ilucca.net`; its own people,
//! generated from the seed `options.seed + i`; Lucca's rate limit of 50 requests per 60 s
//! on, in real time) and its **own target simulator** ([`Target`]: Leapsome through the
//! `leapsome` plugin, or the generic `scim` plugin against the same SCIM server). Every tenant
//! has its own Lucca key and SCIM token, so a worker that mixes two tenants' secrets up gets
//! a 401/403 instead of writing into the wrong tenant.
//!
//! ```ignore
//! let kit = Tenants::start(200, 20, KitOptions::default())?;
//! kit.write_configs(tenants_dir, Some("every 1 m"), &Extra::default())?; // <id>.toml each
//! // … run the fleet (with MUSTER_TODAY = TODAY), then:
//! let accounts = kit.check_accounts();
//! assert!(accounts.is_clean(), "{accounts}");
//! let traffic = kit.traffic();
//! assert!(traffic.over_limit().is_empty(), "{traffic}");
//! let links = kit.check_links(|t| links_in_the_store_of(&t.id));
//! assert!(links.is_clean(), "{links}");
//!
//! // SIGKILL a worker in the middle of its applies:
//! let mark = kit.mark();
//! let write = kit.wait_applying(&mark, Some(worker.id()), Duration::from_secs(120))?;
//! worker.kill()?; // it was writing to write.tenant
//! ```
//!
//! # What the checks mean
//!
//! - [`Tenants::check_accounts`]: per tenant, the target's accounts against the Lucca people
//!   who must have one — started, not left on [`TODAY`], with a work email no other Lucca
//!   person has (the flow skips or reports the others): `missing` (no account carries the
//!   person's id as `externalId`), `inactive`, `unexpected` (an account for nobody who
//!   should have one), and `duplicates` — two accounts or more sharing a `userName`, an
//!   email or an `externalId` (case-insensitive). Hand-made accounts count as unexpected.
//! - [`Tenants::traffic`]: per tenant, Lucca's requests, 429s and the most requests it
//!   accepted in any 60 s window (the simulator counts at arrival); the target's reads,
//!   writes and 429s, and Lucca's full reads (one per run reading the tenant).
//!   [`TrafficReport::over_limit`] lists the tenants whose clients went past 50 per window:
//!   the simulator enforces the limit, so trying shows as 429s.
//! - [`Tenants::wait_until`]: polls a predicate over every tenant until all hold or the
//!   deadline passes, and names the tenants still pending.
//! - [`Tenants::mark`] then [`Tenants::wait_applying`]: the first write (POST, PATCH, PUT,
//!   DELETE) any target received since the mark, optionally only one sent by a given
//!   process — found from the client port each simulator logs, through `/proc/net/tcp` and
//!   that process's open sockets (Linux) — so a test can SIGKILL a worker mid-apply.
//! - [`Tenants::check_links`]: per tenant, the store's person links (the test reads them
//!   from wherever the state lives and hands them over) against the target: `unlinked`
//!   (an account the flow made that no link joins: a lost link) and `wrong` (a link to no
//!   account, or not to the account carrying the person's id).
//!
//! # Configs
//!
//! [`Tenants::write_configs`] writes `<dir>/<id>.toml` per tenant (id `tenant-000`, …;
//! tenant id = file stem) in today's `muster.toml` format: connections `lucca` and
//! `target` (`allow_loopback`, secrets as absolute `{ file = … }` paths into the kit's
//! own temporary directory, never inside `dir`), the flow [`FLOW`] with the given
//! schedule (for [`Target::Scim`], with a mapping that makes the work email the login, which
//! that plugin sends as `userName`), and no `state` key — the fleet gives the state; today's
//! single-tenant `muster` requires one, which [`Extra::state_dir`] adds as
//! `<state_dir>/<id>.db`. Run `muster` with `MUSTER_TODAY` = [`TODAY`], the date the
//! generated tenants are built around ([`Tenants::muster`] does).
//!
//! # Cost
//!
//! Every simulator of a kit is served by one [`Hub`]: each keeps its own port, but they
//! share one runtime thread (plus request threads while requests run, let go after 2 s
//! idle). Measured by `two_hundred_tenants_start_in_seconds` (`host/tests/tenants_kit.rs`,
//! debug build, 2 shared cores): 200 tenants of 20 people (400 simulators) start in
//! ~0.2 s with 1 more thread and ~8 MiB more resident memory. The same 400 simulators on
//! threads of their own (`LuccaSim::start`) kept 2 400 threads and ~30 MiB. For scale, a
//! one-off run synced 200 tenants of 10 people with today's `muster sync`, two processes
//! at a time, in 47 s (1 709 accounts, every check clean, no 429).

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use muster_sandbox::{
    ApiKey, Hub, LeapsomeOptions, LeapsomeSim, LuccaOptions, LuccaSim, RateLimit, SandboxError,
    Tenant,
};

mod accounts;
mod links;
mod traffic;
mod watch;

// The kit's API, re-exported for the tests that use it (unused in the others).
#[allow(unused_imports)]
pub use super::world::{FLOW, TODAY};
#[allow(unused_imports)]
pub use accounts::{
    AccountsReport, Duplicate, DuplicateKey, TenantAccounts, duplicates, expected_ids,
};
#[allow(unused_imports)]
pub use links::{LinksReport, TenantLinks};
#[allow(unused_imports)]
pub use traffic::{TenantTraffic, TrafficReport};
#[allow(unused_imports)]
pub use watch::{Mark, Write, holds_socket, owner};

/// Which target each tenant's people are synced into.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Target {
    /// The `leapsome` plugin against the Leapsome simulator.
    #[default]
    Leapsome,
    /// The generic `scim` plugin (updates by PUT) against the same SCIM server.
    Scim,
}

/// How [`Tenants::start`] builds each tenant.
#[derive(Debug, Clone)]
pub struct KitOptions {
    pub target: Target,
    /// Tenant `i`'s people are `Tenant::generate(seed + i, people)`.
    pub seed: u64,
    /// Simulated latency of every Lucca request.
    pub lucca_latency: Duration,
    /// Latency of every target request (e.g. so that applies last long enough to be
    /// interrupted).
    pub target_latency: Duration,
    /// The target's rate limit (`None`: off). Default: Leapsome's 30 requests per second.
    pub target_rate_limit: Option<RateLimit>,
}

impl Default for KitOptions {
    fn default() -> Self {
        KitOptions {
            target: Target::Leapsome,
            seed: 17_000,
            lucca_latency: Duration::ZERO,
            target_latency: Duration::ZERO,
            target_rate_limit: LeapsomeOptions::default().rate_limit,
        }
    }
}

/// What went wrong in the kit itself (a check's findings are reports, not errors).
#[derive(Debug, thiserror::Error)]
pub enum KitError {
    #[error("cannot start the simulators' hub: {0}")]
    Hub(#[source] SandboxError),
    #[error("cannot start the simulators of tenant {tenant}: {source}")]
    Start {
        tenant: String,
        #[source]
        source: SandboxError,
    },
    #[error("cannot write {}: {source}", path.display())]
    Write {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("after {waited:?}, still waiting for {what} on {} tenant(s): {}", pending.len(), pending.join(", "))]
    Timeout {
        what: String,
        waited: Duration,
        pending: Vec<String>,
    },
}

/// One tenant: its id and its two simulators.
pub struct TenantSims {
    /// `tenant-000`, …: the stem of its config file.
    pub id: String,
    pub lucca: LuccaSim,
    pub target: LeapsomeSim,
}

/// `n` tenants' simulators, stopped when dropped; see the module doc.
pub struct Tenants {
    pub tenants: Vec<TenantSims>,
    /// The runtime every simulator is served on (dropped after them).
    _hub: Hub,
    target: Target,
    /// Each tenant's Lucca key and target token, as files the configs point at.
    secrets: tempfile::TempDir,
}

/// Tenant `i`'s id.
pub fn tenant_id(i: usize) -> String {
    format!("tenant-{i:03}")
}

impl Tenants {
    /// Starts `n` tenants of `people` people each, as `options` says.
    pub fn start(n: usize, people: usize, options: KitOptions) -> Result<Tenants, KitError> {
        let secrets = tempfile::tempdir().map_err(|source| KitError::Write {
            path: std::env::temp_dir(),
            source,
        })?;
        let hub = Hub::new().map_err(KitError::Hub)?;
        let mut tenants = Vec::with_capacity(n);
        for i in 0..n {
            let sims = start_tenant(&hub, i, people, &options)?;
            write(
                &secrets.path().join(format!("{}.lucca", sims.id)),
                sims.lucca.api_key(),
            )?;
            write(
                &secrets.path().join(format!("{}.target", sims.id)),
                sims.target.token(),
            )?;
            tenants.push(sims);
        }
        Ok(Tenants {
            tenants,
            _hub: hub,
            target: options.target,
            secrets,
        })
    }

    pub fn len(&self) -> usize {
        self.tenants.len()
    }

    /// The tenant with this id.
    pub fn get(&self, id: &str) -> Option<&TenantSims> {
        self.tenants.iter().find(|t| t.id == id)
    }

    /// A `muster` command (the built binary) on `config`, with `MUSTER_TODAY` set to
    /// [`TODAY`] and no `MUSTER_CONFIG` inherited: `args` go first (`["sync"]`).
    pub fn muster(args: &[&str], config: &Path) -> Command {
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_muster"));
        cmd.args(args)
            .arg("--config")
            .arg(config)
            .env("MUSTER_TODAY", TODAY)
            .env_remove("MUSTER_CONFIG");
        cmd
    }
}

fn start_tenant(
    hub: &Hub,
    i: usize,
    people: usize,
    options: &KitOptions,
) -> Result<TenantSims, KitError> {
    let id = tenant_id(i);
    let failed = |source| KitError::Start {
        tenant: id.clone(),
        source,
    };
    let lucca = LuccaSim::start_on(
        hub,
        Tenant::generate(options.seed + i as u64, people),
        LuccaOptions {
            keys: vec![ApiKey::full(&format!("lucca-key-{id}-0123456789abcdef"))],
            latency: options.lucca_latency,
            ..LuccaOptions::default()
        },
    )
    .map_err(failed)?;
    let target = LeapsomeSim::start_on(
        hub,
        LeapsomeOptions {
            token: format!("scim-token-{id}-0123456789abcdef"),
            latency: options.target_latency,
            rate_limit: options.target_rate_limit,
            ..LeapsomeOptions::default()
        },
    )
    .map_err(failed)?;
    Ok(TenantSims { id, lucca, target })
}

fn write(path: &Path, text: &str) -> Result<(), KitError> {
    std::fs::write(path, text).map_err(|source| KitError::Write {
        path: path.to_owned(),
        source,
    })
}

/// More of each config file, for [`Tenants::write_configs`].
#[derive(Debug, Clone)]
pub struct Extra {
    /// `Some(dir)`: each config gets `state = "<dir>/<id>.db"` (today's single-tenant
    /// `muster sync`); `None`: no `state` key (the fleet gives the state).
    pub state_dir: Option<PathBuf>,
    /// The flow's `options` table.
    pub flow_options: String,
    /// More TOML lines in the `[tenant]`, `[connections.lucca]`, `[connections.target]`
    /// and `[flows.people]` sections.
    pub tenant: String,
    pub lucca: String,
    pub target: String,
    pub flow: String,
}

impl Default for Extra {
    /// No state, no teams, reactivation on.
    fn default() -> Self {
        Extra {
            state_dir: None,
            flow_options: "{ sync_groups = false, reactivate = true }".into(),
            tenant: String::new(),
            lucca: String::new(),
            target: String::new(),
            flow: String::new(),
        }
    }
}

impl Tenants {
    /// Writes `<dir>/<id>.toml` for every tenant (see the module doc); returns the paths in
    /// tenant order. `schedule` is the flow's `schedule` (`"every 1 m"`), `None` for none.
    pub fn write_configs(
        &self,
        dir: &Path,
        schedule: Option<&str>,
        extra: &Extra,
    ) -> Result<Vec<PathBuf>, KitError> {
        std::fs::create_dir_all(dir).map_err(|source| KitError::Write {
            path: dir.to_owned(),
            source,
        })?;
        let mut paths = Vec::with_capacity(self.tenants.len());
        for t in &self.tenants {
            let path = dir.join(format!("{}.toml", t.id));
            write(&path, &self.config(t, schedule, extra))?;
            paths.push(path);
        }
        Ok(paths)
    }

    /// One tenant's config text.
    fn config(&self, t: &TenantSims, schedule: Option<&str>, extra: &Extra) -> String {
        let secret = |kind: &str| toml_str(&self.secrets.path().join(format!("{}.{kind}", t.id)));
        let state = extra.state_dir.as_ref().map_or(String::new(), |d| {
            format!("state = {}\n", toml_str(&d.join(format!("{}.db", t.id))))
        });
        let target = match self.target {
            Target::Leapsome => format!(
                "plugin = \"leapsome\"\nsettings = {{ base_url = \"{}\" }}\n",
                t.target.base_url()
            ),
            Target::Scim => format!(
                "plugin = \"scim\"\nsettings = {{ base_url = \"{url}\", update_method = \"put\" }}\nhosts = [\"{origin}\"]\n",
                url = t.target.base_url(),
                origin = origin(&t.target.base_url()),
            ),
        };
        let schedule = schedule.map_or(String::new(), |s| format!("schedule = \"{s}\"\n"));
        let mapping = match self.target {
            Target::Leapsome => "",
            // The generic SCIM server takes the login as `userName`, Leapsome an email.
            Target::Scim => {
                "mapping = [{ coalesce = { field = \"login\", from = [\"work_email\"] } }]\n"
            }
        };
        format!(
            "[tenant]\nname = \"{id}\"\ntimezone = \"Europe/Paris\"\n{state}cache = {cache}\n{tenant_extra}\n\
             [connections.lucca]\nplugin = \"lucca\"\nsettings = {{ base_url = \"{lucca}\" }}\n\
             secret = {{ file = {lucca_secret} }}\nallow_loopback = true\n{lucca_extra}\n\
             [connections.target]\n{target}secret = {{ file = {target_secret} }}\n\
             allow_loopback = true\n{target_extra}\n\
             [flows.{FLOW}]\nsource = \"lucca\"\ntarget = \"target\"\n{schedule}{mapping}\
             options = {options}\n{flow_extra}\n",
            id = t.id,
            cache = toml_str(&super::cache_dir()),
            tenant_extra = extra.tenant,
            lucca = t.lucca.base_url(),
            lucca_secret = secret("lucca"),
            lucca_extra = extra.lucca,
            target_secret = secret("target"),
            target_extra = extra.target,
            options = extra.flow_options,
            flow_extra = extra.flow,
        )
    }
}

/// A path as a TOML basic string.
fn toml_str(path: &Path) -> String {
    let s = path.display().to_string();
    format!("\"{}\"", s.replace('\\', "\\\\").replace('"', "\\\""))
}

/// `http://127.0.0.1:PORT` of a URL with a path.
fn origin(url: &str) -> &str {
    let after_scheme = url.find("://").map_or(0, |i| i + 3);
    url[after_scheme..]
        .find('/')
        .map_or(url, |i| &url[..after_scheme + i])
}

/// The port of `http://127.0.0.1:PORT/…`.
fn port_of(url: &str) -> Option<u16> {
    let origin = origin(url);
    origin.rsplit(':').next()?.parse().ok()
}
