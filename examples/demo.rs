//! # `cargo demo`: from an empty Leapsome to a day of HR changes, on loopback
//!
//! The newcomer's first command (README). It starts the Lucca and Leapsome
//! simulators of `muster-sandbox` on 127.0.0.1 with a generated tenant
//! (300 people, fixed seed, so every run prints the same plans), writes a
//! real config file into `target/demo/`, and drives the Lucca → Leapsome flow
//! through the same library calls the `muster` binary makes (`Host::new`,
//! `engine::run`): the real `.wasm` connectors, the real outbound HTTP
//! checks, a real SQLite state database.
//!
//! 1. plan the first sync (printed in the CLI's format) and apply it;
//! 2. change the tenant — a hire, a leaver, a rehire, a department rename —
//!    plan again, print the plan, apply it;
//! 3. sync once more: nothing is left to do.
//!
//! Why an example of the root package and not `muster demo`: the simulators
//! are test code; keeping them out of the `muster` crate keeps them out of
//! the production binary. Why the library and not the binary: the demo
//! changes the simulated tenant between runs, which only an in-process
//! simulator allows.
//!
//! The compiled-plugin cache lives in `target/demo/plugin-cache`, so only
//! the first run pays for compiling the connectors; the state database is
//! recreated on every run.
//!
//! `cargo demo teelt` runs the inbound scenario instead (Teelt's new
//! talents into Lucca, `demo/teelt.rs`).

use std::collections::BTreeMap;
use std::error::Error;
use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Instant;

use muster::cli::render;
use muster::config::Config;
use muster::connect::Host;
use muster::engine::{self, Mode, RunOptions, RunReport};
use muster::runtime::MemoryLog;
use muster::store::{Store, Trigger};
use muster_core::{ActionKind, Date, Step};
use muster_sandbox::{LeapsomeOptions, LeapsomeSim, LuccaOptions, LuccaSim, ScimUser, Tenant};

/// People in the generated Lucca tenant.
const PEOPLE: usize = 300;
/// The tenant generator's seed: same seed, same people, same plans.
const SEED: u64 = 2026;
/// The simulators' "today" (`muster_sandbox::tenant::DEFAULT_EPOCH`).
const TODAY: &str = "2026-06-01";
const FLOW: &str = "lucca-to-leapsome";

type DemoResult<T> = Result<T, Box<dyn Error>>;

/// `cargo demo cards`: the Lucca → Cards scenario.
#[path = "demo/cards.rs"]
mod cards;
/// `cargo demo teelt`: the inbound Teelt → Lucca scenario.
#[path = "demo/teelt.rs"]
mod teelt;

fn main() -> ExitCode {
    let scenario = std::env::args().nth(1);
    let run = match scenario.as_deref() {
        None | Some("leapsome") => demo,
        Some("cards") => cards::demo,
        Some("teelt") => teelt::demo,
        Some(other) => {
            eprintln!(
                "unknown demo `{other}`: `cargo demo` (Lucca → Leapsome), `cargo demo cards` (Lucca → Cards) or `cargo demo teelt` (Teelt → Lucca)"
            );
            return ExitCode::FAILURE;
        }
    };
    match run() {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("demo failed: {e}");
            ExitCode::FAILURE
        }
    }
}

fn header(title: &str) {
    println!("\n== {title}\n");
}

fn demo() -> DemoResult<()> {
    let started = Instant::now();
    println!("muster demo: syncing a simulated Lucca into a simulated Leapsome, on this machine.");

    let lucca = LuccaSim::start(
        Tenant::generate(SEED, PEOPLE),
        LuccaOptions {
            // The connector paces itself to Lucca's 50 requests/60 s on real
            // tenants; the demo's simulator does not make it wait.
            rate_limit: None,
            ..LuccaOptions::default()
        },
    )?;
    let leapsome = LeapsomeSim::start(LeapsomeOptions {
        rate_limit: None,
        ..LeapsomeOptions::default()
    })?;
    let returning = seed_former_account(&lucca, &leapsome)?;

    let dir = demo_dir();
    let config_path = write_config(&dir, &lucca, &leapsome)?;
    let tenant = lucca.tenant();
    println!(
        "  Lucca     {}  {} people in {} departments (seed {SEED})",
        lucca.base_url(),
        tenant.users.len(),
        tenant.departments.len()
    );
    println!(
        "  Leapsome  {}  empty but for a former employee's deactivated account ({})",
        leapsome.base_url(),
        returning.email
    );
    println!(
        "  config    {}  (the simulators stop when the demo ends)",
        config_path.display()
    );

    let log = MemoryLog::new();
    let mut demo = Demo::new(&config_path, FLOW, log.clone())?;

    header("1. The first plan: what a sync would do (nothing is changed yet)");
    let plan = demo.run(Mode::Plan)?;
    let full = dir.join("plan-1.txt");
    std::fs::write(&full, render::human(&plan))?;
    print!("{}", excerpt(&plan, |_| 3));
    println!(
        "The whole plan, every line with its reason: {}",
        full.display()
    );

    header("2. Apply it");
    let applied = demo.sync()?;
    print!("{}", result(&applied));
    println!(
        "Leapsome now has {} active accounts and {} teams.",
        leapsome.users().iter().filter(|u| u.active).count(),
        leapsome.teams().len()
    );

    header("3. A day in HR: four changes in Lucca");
    for change in change_tenant(&lucca, &returning)? {
        println!("  - {change}");
    }

    header("4. The second plan: only what changed, each with its reason");
    let plan = demo.run(Mode::Plan)?;
    // Every action in full; the skips and conflicts the first plan already
    // showed (people without a work email, future hires, ...) abbreviated.
    print!(
        "{}",
        excerpt(&plan, |kind| match kind {
            ActionKind::Skip | ActionKind::Conflict => 2,
            _ => usize::MAX,
        })
    );

    header("5. Apply it");
    let applied = demo.sync()?;
    print!("{}", result(&applied));

    header("6. Sync once more: the target matches the source");
    let again = demo.sync()?;
    print!("{}", result(&again));
    // CI runs the demo: a story that no longer ends converged is a failure.
    if again.0.outcome != engine::Outcome::NoChanges {
        return Err("the third sync still had changes to apply".into());
    }

    let lines = log.lines();
    if !lines.is_empty() {
        let path = dir.join("plugins.log");
        let text: String = lines
            .iter()
            .map(|l| format!("{:?} [{}] {}\n", l.level, l.plugin, l.message))
            .collect();
        std::fs::write(&path, text)?;
        println!(
            "\nThe connectors logged {} line(s): {}",
            lines.len(),
            path.display()
        );
    }
    println!(
        "\nDone in {:.1} s. Next: README.md (the CLI, a real config) and docs/config.md.",
        started.elapsed().as_secs_f64()
    );
    Ok(())
}

/// `target/demo/` next to the example binary (`target/<profile>/examples/`),
/// so the compiled-plugin cache survives between runs; a temp directory if
/// the layout is not the usual one.
fn demo_dir() -> PathBuf {
    std::env::current_exe()
        .ok()
        .and_then(|exe| Some(exe.parent()?.parent()?.parent()?.join("demo")))
        .unwrap_or_else(|| std::env::temp_dir().join("muster-demo"))
}

/// Writes the secrets and the config; removes the previous run's state so
/// every demo starts from an empty Leapsome.
fn write_config(dir: &Path, lucca: &LuccaSim, leapsome: &LeapsomeSim) -> DemoResult<PathBuf> {
    std::fs::create_dir_all(dir)?;
    for name in ["state.db", "state.db-wal", "state.db-shm"] {
        match std::fs::remove_file(dir.join(name)) {
            Err(e) if e.kind() != std::io::ErrorKind::NotFound => return Err(e.into()),
            _ => {}
        }
    }
    std::fs::write(dir.join("lucca.key"), lucca.api_key())?;
    std::fs::write(dir.join("leapsome.token"), leapsome.token())?;
    let config = format!(
        r#"# Written by `cargo demo` for simulators on loopback; see docs/config.md.
[tenant]
name = "demo"
timezone = "Europe/Paris"
state = "state.db"
cache = "plugin-cache"

[connections.lucca]
plugin = "lucca"
settings = {{ base_url = "{lucca}" }}
secret = {{ file = "lucca.key" }}
allow_loopback = true

[connections.leapsome]
plugin = "leapsome"
settings = {{ base_url = "{leapsome}" }}
secret = {{ file = "leapsome.token" }}
allow_loopback = true

[flows.{FLOW}]
source = "lucca"
target = "leapsome"
actions = ["create", "link", "update", "deactivate", "reactivate"]
correlation = ["employee_number", "work_email"]
options = {{ reactivate = true, sync_groups = true }}
"#,
        lucca = lucca.base_url(),
        leapsome = leapsome.base_url(),
    );
    let path = dir.join("muster.toml");
    std::fs::write(&path, config)?;
    Ok(path)
}

/// The library calls `muster sync` makes, on one config, host and store.
struct Demo {
    config: Config,
    flow: &'static str,
    host: Host,
    store: Store,
    options: RunOptions,
}

impl Demo {
    fn new(config_path: &Path, flow: &'static str, log: MemoryLog) -> DemoResult<Demo> {
        let config = Config::load(config_path)?;
        // Plugin log lines (warnings about values the connectors could not
        // read) go to target/demo/plugins.log instead of between the plans.
        let host = Host::new(&config)?.with_log(Arc::new(log));
        let store = Store::open(&config.tenant.state)?;
        let today = Date::parse(TODAY).map_err(|e| format!("{TODAY}: {e}"))?;
        Ok(Demo {
            config,
            flow,
            host,
            store,
            options: RunOptions {
                trigger: Trigger::Manual,
                only: None,
                today,
                approver: "demo".into(),
            },
        })
    }

    fn run(&mut self, mode: Mode) -> DemoResult<RunReport> {
        let flow = self.config.flow(self.flow)?;
        // As `muster sync`: the policy fitted to what the target declares it stores.
        let report =
            self.host
                .run_flow(&self.config, &mut self.store, flow, mode, &self.options)?;
        Ok(report)
    }

    /// Plans and applies; returns the report and how long it took.
    fn sync(&mut self) -> DemoResult<(RunReport, f64)> {
        self.sync_only(None)
    }

    /// [`Demo::sync`] of one source record when `only` names it (`muster sync --only ID`).
    fn sync_only(&mut self, only: Option<String>) -> DemoResult<(RunReport, f64)> {
        let started = Instant::now();
        self.options.only = only;
        let report = self.run(Mode::Sync {
            approve_held: false,
        });
        self.options.only = None;
        let report = report?;
        if report.outcome == engine::Outcome::Held {
            return Err(format!("the guard held the plan: {}", report.breaches.join("; ")).into());
        }
        let secs = started.elapsed().as_secs_f64();
        if report.failed() > 0 || report.applied.aborted.is_some() {
            print!("{}", result(&(report, secs)));
            return Err("some actions failed (listed above)".into());
        }
        Ok((report, secs))
    }
}

/// The plan in the CLI's format (`render::steps`), at most `limit(kind)`
/// steps of each kind, with the counts of the whole plan.
fn excerpt(report: &RunReport, limit: impl Fn(ActionKind) -> usize) -> String {
    let mut kinds: Vec<ActionKind> = Vec::new();
    for s in &report.steps {
        if !kinds.contains(&s.kind) {
            kinds.push(s.kind);
        }
    }
    let mut out = String::new();
    if kinds.is_empty() {
        out.push_str(&render::steps(&[]));
    }
    for kind in kinds {
        let all: Vec<&Step> = report.steps.iter().filter(|s| s.kind == kind).collect();
        let shown: Vec<Step> = all.iter().take(limit(kind)).map(|s| (*s).clone()).collect();
        let text = render::steps(&shown);
        let mut lines = text.lines();
        // render::steps heads each kind with "kind (n):"; say how many
        // there are in the whole plan, not in the excerpt.
        lines.next();
        if shown.len() < all.len() {
            let _ = writeln!(
                out,
                "{kind} ({}, the first {} shown):",
                all.len(),
                shown.len()
            );
        } else {
            let _ = writeln!(out, "{kind} ({}):", all.len());
        }
        for line in lines {
            let _ = writeln!(out, "{line}");
        }
        if shown.len() < all.len() {
            let _ = writeln!(out, "  … and {} more", all.len() - shown.len());
        }
    }
    let _ = writeln!(out, "\nPlan: {}.", counts(&report.planned_counts()));
    if !report.problems.is_empty() {
        let _ = writeln!(
            out,
            "Values the connectors could not read ({}), left out and reported by record:",
            report.problems.len()
        );
        for p in report.problems.iter().take(3) {
            let _ = writeln!(out, "  - {p}");
        }
    }
    out
}

fn counts(counts: &BTreeMap<String, u64>) -> String {
    if counts.is_empty() {
        return "nothing".into();
    }
    counts
        .iter()
        .map(|(k, n)| format!("{n} {k}"))
        .collect::<Vec<_>>()
        .join(", ")
}

/// What a sync did: counts (of calls: one per member for memberships), how
/// long it took, and every call that failed with its reason.
fn result((report, secs): &(RunReport, f64)) -> String {
    let mut out = String::new();
    let run = report.run.map(|r| format!("run {r}: ")).unwrap_or_default();
    match report.outcome {
        engine::Outcome::NoChanges => {
            let _ = writeln!(out, "{run}nothing to apply ({secs:.1} s).");
        }
        _ => {
            let _ = writeln!(
                out,
                "{run}applied {} ({secs:.1} s).",
                counts(&report.applied.counts)
            );
            // The plan counts steps; applying counts calls, and a team's
            // membership step is one call per member.
            let c = &report.applied.counts;
            if c.contains_key("add_members") || c.contains_key("remove_members") {
                out.push_str(
                    "(Applied counts are calls: one per member added to or removed from a team.)\n",
                );
            }
        }
    }
    for f in &report.applied.failures {
        let _ = writeln!(out, "  ! {} {}: {}", f.step.kind, f.step.label, f.error);
    }
    if let Some(why) = &report.applied.aborted {
        let _ = writeln!(out, "  stopped: {why}");
    }
    out
}

/// An account a former employee left in Leapsome, deactivated. The first
/// sync leaves it alone (the person has left); when they are rehired, the
/// sync finds it by e-mail, links and reactivates it instead of creating a
/// second account.
struct Returning {
    lucca_id: u64,
    email: String,
}

fn seed_former_account(lucca: &LuccaSim, leapsome: &LeapsomeSim) -> DemoResult<Returning> {
    let tenant = lucca.tenant();
    let former = tenant
        .users
        .iter()
        .find(|u| u.mail.is_some() && u.dt_contract_end.as_deref().is_some_and(|end| end < TODAY))
        .ok_or("the generated tenant has no former employee with an e-mail")?;
    let email = former.mail.clone().unwrap_or_default();
    leapsome.with_state(|d| {
        d.add_user(ScimUser {
            given_name: Some(former.first_name.clone()),
            family_name: Some(former.last_name.clone()),
            active: false,
            ..ScimUser::new("", &email)
        })
    });
    Ok(Returning {
        lucca_id: former.id,
        email,
    })
}

/// A hire, a leaver, a rehire and a department rename, made in the Lucca
/// simulator as an HR admin would; returns what was done, for the reader.
fn change_tenant(lucca: &LuccaSim, returning: &Returning) -> DemoResult<Vec<String>> {
    let now = lucca.now();
    let start = format!("{TODAY}T00:00:00");
    lucca.with_tenant(|t| -> DemoResult<Vec<String>> {
        let mut done = Vec::new();

        // A hire starting today, in the first department, reporting to its
        // first employee.
        let template = t.users.first().cloned().ok_or("empty tenant")?;
        let id = t.take_user_id();
        let mut hire = template.clone();
        hire.id = id;
        hire.first_name = "Margaux".into();
        hire.last_name = "Lemaire".into();
        hire.login = "mlemaire".into();
        hire.mail = Some("margaux.lemaire@sandbox.example".into());
        hire.personal_email = None;
        hire.employee_number = Some(format!("{:05}", PEOPLE + 1));
        hire.job_title = Some("Product Manager".into());
        hire.dt_contract_start = Some(start.clone());
        hire.dt_contract_end = None;
        hire.manager_id = Some(template.id);
        hire.extended.clear();
        hire.modified_at = now.clone();
        t.users.push(hire);
        done.push(format!(
            "hire: Margaux Lemaire (Lucca id {id}) starts today, reporting to {} {}",
            template.first_name, template.last_name
        ));

        // A leaver: the last current employee with an e-mail and nobody
        // reporting to them; the contract ended yesterday.
        let managers: Vec<u64> = t.users.iter().filter_map(|u| u.manager_id).collect();
        let leaver = t
            .users
            .iter_mut()
            .rev()
            .filter(|u| u.id != id && !managers.contains(&u.id) && u.mail.is_some())
            .find(|u| {
                u.dt_contract_end.is_none()
                    && u.dt_contract_start.as_deref().is_some_and(|s| s < TODAY)
            })
            .ok_or("no current employee to let go")?;
        leaver.dt_contract_end = Some("2026-05-31T00:00:00".into());
        leaver.modified_at = now.clone();
        done.push(format!(
            "leaver: {} {} (Lucca id {}), contract ended yesterday",
            leaver.first_name, leaver.last_name, leaver.id
        ));

        // A rehire: the former employee whose old, deactivated account is
        // still in Leapsome comes back today.
        let back = t
            .user_mut(returning.lucca_id)
            .ok_or("the returning employee is gone")?;
        back.dt_contract_start = Some(start.clone());
        back.dt_contract_end = None;
        back.modified_at = now.clone();
        done.push(format!(
            "rehire: {} {} (Lucca id {}) is back from today; Leapsome still has their old account",
            back.first_name, back.last_name, back.id
        ));

        // A department rename: the second department (the first is the root).
        let dept = t.departments.get_mut(1).ok_or("only one department")?;
        let old = std::mem::replace(&mut dept.name, "Customer Success".into());
        dept.last_modified_at = now.clone();
        done.push(format!(
            "rename: department {:?} is now \"Customer Success\"",
            old
        ));
        Ok(done)
    })
}
