//! HTTP simulators of the vendor APIs muster talks to, so anyone can run muster or develop a
//! connector without credentials, and so end-to-end tests exercise real HTTP on loopback.
//!
//! # Design
//!
//! - **One simulator per vendor tenant.** [`LuccaSim::start`] binds `127.0.0.1:0`, serves the
//!   routes described in `shared/API-NOTES.md` from a small pool of worker threads
//!   ([`server`]), and stops when dropped. Its state (the [`Tenant`]) sits behind a mutex so a
//!   test can read or change it between two syncs ([`LuccaSim::with_tenant`]).
//!   [`LuccaSim::start_on`] and [`LeapsomeSim::start_on`] serve the same simulator, on its own
//!   port still, from a shared [`Hub`]: one thread for hundreds of simulators ([`hub`]).
//! - **Simulated time.** Everything time-related (the 50 requests / 60 s rate limit, the 408
//!   timeout, injected latency, `modifiedAt` of writes, "former employee") runs on a
//!   [`SimClock`]: `time_scale` simulated seconds pass per real second, so a test can go
//!   through several rate-limit windows in milliseconds. Durations reported to clients
//!   (`Retry-After`) and recorded in the [`RequestLog`] are in **simulated** seconds.
//! - **Deterministic.** [`Tenant::generate`] builds the same tenant from the same seed, and
//!   faults ([`Fault`]) are keyed on the request's sequence number, never on chance; so is
//!   the latency's [`Jitter`] (seeded from the options).
//! - **A realistic network.** Each simulator's `latency` (± `jitter`) is slept per request,
//!   each request on its own thread ([`server`]), so latency slows every call down without
//!   serialising them.
//! - **Never panics on input.** A malformed request gets a Lucca-like JSON error
//!   (`{"status":400,"message":"…"}`) naming what is wrong.
//!
//! # Use from a test
//!
//! ```
//! use muster_sandbox::{LuccaOptions, LuccaSim, Tenant};
//!
//! let lucca = LuccaSim::start(Tenant::generate(42, 50), LuccaOptions::default())?;
//! let base_url = lucca.base_url(); // http://127.0.0.1:PORT
//! let header = format!("lucca application={}", lucca.api_key());
//! // … run a sync against base_url, then change the tenant for the next one:
//! lucca.with_tenant(|t| t.departments[0].name = "Direction générale".into());
//! // … and check the client's manners:
//! assert!(lucca.request_log().max_accepted_in_window(60.0) <= 50);
//! # let _ = (base_url, header);
//! # Ok::<(), muster_sandbox::SandboxError>(())
//! ```
//!
//! The Leapsome simulator ([`LeapsomeSim`], SCIM in Leapsome's dialect, see [`leapsome`])
//! works the same way, with its state a [`Directory`] of accounts, teams and invitations:
//!
//! ```
//! use muster_sandbox::{Directory, LeapsomeOptions, LeapsomeSim, RejectRule, ScimUser};
//!
//! let mut directory = Directory::new(); // pre-existing accounts and manual teams
//! let manual = directory.add_user(ScimUser::new("", "manual@sandbox.example"));
//! directory.add_team("Hand-made", &[manual]);
//! let leapsome = LeapsomeSim::start(LeapsomeOptions {
//!     directory,
//!     rejects: vec![RejectRule::email_contains("refused")], // per-record failures
//!     ..LeapsomeOptions::default()
//! })?;
//! let base_url = leapsome.base_url(); // http://127.0.0.1:PORT/scim/v1
//! let header = format!("Bearer {}", leapsome.token());
//! // … run a sync, then look at what it did:
//! assert_eq!(leapsome.users().len(), 1);
//! assert_eq!(leapsome.request_counts().writes, 0);
//! assert!(leapsome.invitations().is_empty());
//! # let _ = (base_url, header);
//! # Ok::<(), muster_sandbox::SandboxError>(())
//! ```
//!
//! The Flatchr simulator ([`FlatchrSim`], see [`flatchr`]) holds a recruiting [`Board`]
//! (columns, applicants) and sends the `drag_applicant` webhook when an applicant moves.
//! The Cards simulator ([`CardsSim`], see [`cards`]) keeps a [`Space`] of users, groups and
//! training statistics; it answers `Authorization: Bearer` + `X-Tenant` requests under `/v1`.
//! The Teelt simulator ([`TeeltSim`], a small talents API, see [`teelt`]) holds
//! [`Talent`]s for the inbound Teelt → Lucca flow.
//!
//! The binary (`cargo run -p muster-sandbox -- --employees 1000`) starts the simulators, prints
//! their URLs and secrets, and writes a ready `muster.sandbox.toml` (connections `lucca`,
//! `leapsome` and `cards`, flows Lucca → Leapsome and Lucca → Cards).

pub mod cards;
pub mod clock;
pub mod datetime;
pub mod flatchr;
pub mod hub;
pub mod latency;
pub mod leapsome;
pub mod lucca;
pub mod postgres;
pub mod rng;
pub mod server;
pub mod teelt;
pub mod tenant;

pub use cards::{CardsGroup, CardsOptions, CardsSim, CardsUser, Notification, Space, TrainingStat};
pub use clock::SimClock;
pub use flatchr::{Board, FlatchrSim, WebhookTarget};
pub use hub::Hub;
pub use latency::Jitter;
pub use leapsome::{
    Directory, Invitation, LeapsomeOptions, LeapsomeSim, ManagerOnRead, RejectRule, RequestCounts,
    ScimUser, Team,
};
pub use lucca::{
    ApiKey, Fault, FaultKind, LuccaOptions, LuccaSim, Permission, RateLimit, RequestLog,
    RequestRecord,
};
pub use teelt::{Talent, TeeltOptions, TeeltSim};
pub use tenant::{
    Department, Establishment, ExtDefinition, ExtKind, Occurrence, Role, Tenant, User,
};

/// The Cards part of the binary's `muster.sandbox.toml`, appended to [`config_toml`]: the
/// `cards` connection (secret from `CARDS_API_TOKEN`) and the Lucca → Cards flow.
pub fn cards_config_toml(cards_url: &str, cards_tenant: &str) -> String {
    format!(
        "\n[connections.cards]\n\
         plugin = \"cards\"\n\
         settings = {{ base_url = \"{cards_url}\", tenant = \"{cards_tenant}\" }}\n\
         secret = {{ env = \"CARDS_API_TOKEN\" }}\n\
         allow_loopback = true\n\n\
         [flows.lucca-to-cards]\n\
         source = \"lucca\"\n\
         target = \"cards\"\n\
         schedule = \"daily 02:30\"\n\
         correlation = [\"work_email\"]\n\
         options = {{ sync_groups = true, reactivate = true }}\n"
    )
}

/// Errors of the sandbox itself (not of the simulated API, which answers HTTP errors).
#[derive(Debug, thiserror::Error)]
pub enum SandboxError {
    /// The listening socket could not be bound.
    #[error("cannot bind the simulator on 127.0.0.1: {0}")]
    Bind(String),
    /// Writing the generated config failed.
    #[error("cannot write {path}: {source}")]
    Write {
        path: String,
        #[source]
        source: std::io::Error,
    },
}

/// A complete muster configuration joining a Lucca and a Leapsome simulator
/// (what the binary writes to `muster.sandbox.toml`): secrets from
/// `LUCCA_API_KEY` and `LEAPSOME_SCIM_TOKEN`, loopback allowed (these
/// connections point at local simulators), and the Lucca → Leapsome flow.
/// Kept here so the host's tests can check it stays loadable.
pub fn config_toml(lucca_url: &str, leapsome_url: &str) -> String {
    format!(
        "[tenant]\n\
         name = \"sandbox\"\n\
         timezone = \"Europe/Paris\"\n\
         state = \"muster.sandbox.db\"\n\n\
         [connections.lucca]\n\
         plugin = \"lucca\"\n\
         settings = {{ base_url = \"{lucca_url}\" }}\n\
         secret = {{ env = \"LUCCA_API_KEY\" }}\n\
         allow_loopback = true\n\n\
         [connections.leapsome]\n\
         plugin = \"leapsome\"\n\
         settings = {{ base_url = \"{leapsome_url}\" }}\n\
         secret = {{ env = \"LEAPSOME_SCIM_TOKEN\" }}\n\
         allow_loopback = true\n\n\
         [flows.lucca-to-leapsome]\n\
         source = \"lucca\"\n\
         target = \"leapsome\"\n\
         schedule = \"daily 02:00\"\n\
         options = {{ reactivate = true }}\n"
    )
}
