//! `cargo demo teelt`: an inbound scenario, Teelt → Lucca.
//!
//! Starts the Teelt and Lucca simulators, writes the flow of `docs/config.md`
//! ("An onboarding flow") into `target/demo/teelt/`, and drives it as the
//! `muster` binary would: the nightly run (new talents created, one Lucca
//! already has linked, bad input reported), then "test the sync from a
//! talent's record" for a new talent (`sync --only`), printed in the CLI's
//! format. Lucca's rate limit stays on.

use std::path::Path;

use muster::cli::render;
use muster::config::Config;
use muster::connect::Host;
use muster::engine::{Mode, RunOptions, RunReport};
use muster::store::{Store, Trigger};
use muster_core::Date;
use muster_sandbox::{
    ExtDefinition, ExtKind, LuccaOptions, LuccaSim, Talent, TeeltOptions, TeeltSim, Tenant,
};

use super::{DemoResult, TODAY, demo_dir, header};

const FLOW: &str = "teelt-to-lucca";

fn talent(id: &str, first: &str, last: &str, email: Option<&str>, boss: &str) -> Talent {
    let mut t = Talent::new(id, first, last, email.unwrap_or(""), "2026-05-20T09:00:00Z");
    t.email = email.map(str::to_owned);
    t.department = Some("Tech".into());
    t.start_date = Some("2026-06-15".into());
    t.contract_type = Some("CDI".into());
    t.manager_email = Some(boss.into());
    t.custom.insert("establishment".into(), "Paris".into());
    t
}

pub fn demo() -> DemoResult<()> {
    println!("muster demo: Teelt's new talents become Lucca employees, on this machine.");
    let mut tenant = Tenant::generate(2027, 40);
    tenant.definitions.push(ExtDefinition {
        id: 90,
        code: "e_contract".into(),
        name: "Contract type".into(),
        kind: ExtKind::Text,
        multiple: false,
        editable: true,
    });
    let boss = tenant
        .users
        .iter()
        .find(|u| u.mail.is_some() && u.dt_contract_end.is_none())
        .and_then(|u| u.mail.clone())
        .ok_or("the generated tenant has no employee with an email")?;
    let mut no_last = talent("t-3", "Ilan", "", Some("ilan@sandbox.example"), &boss);
    no_last.last_name = None;
    let mut astro = talent(
        "t-4",
        "Vera",
        "Rubinova",
        Some("vera@sandbox.example"),
        &boss,
    );
    astro.department = Some("Astrophysics".into());
    let talents = vec![
        talent(
            "t-1",
            "Léa",
            "Zéphyrin",
            Some("lea.zephyrin@sandbox.example"),
            &boss,
        ),
        talent("t-2", "Noé", "Sansmail", None, &boss),
        no_last,
        astro,
    ];
    let names = (
        tenant.establishments[1].name.clone(),
        tenant.departments[0].name.clone(),
        tenant.roles[0].name.clone(),
    );
    // Lucca's 50 requests per 60 s stay on: the connector paces itself.
    let lucca = LuccaSim::start(tenant, LuccaOptions::default())?;
    let teelt = TeeltSim::start(TeeltOptions {
        talents,
        ..TeeltOptions::default()
    })?;
    let dir = demo_dir().join("teelt");
    let config_path = write_config(&dir, &lucca, &teelt, &names)?;
    println!("  Teelt  {}  4 new talents", teelt.base_url());
    println!("  Lucca  {}  40 employees", lucca.base_url());
    println!("  config {}", config_path.display());

    let config = Config::load(&config_path)?;
    let host = Host::new(&config)?;
    let mut store = Store::open(&config.tenant.state)?;

    header("1. The nightly run (schedule `daily 00:00`, Europe/Paris)");
    let report = run(
        &config,
        &host,
        &mut store,
        Mode::Sync {
            approve_held: false,
        },
        None,
    )?;
    print!("{}", render::human(&report));

    header("2. A new talent, tried from their record: `muster sync --only t-5`");
    teelt.with_talents(|t| {
        t.push(talent(
            "t-5",
            "Inès",
            "Vautrin",
            Some("ines.vautrin@sandbox.example"),
            &boss,
        ))
    });
    let plan = run(&config, &host, &mut store, Mode::Plan, Some("t-5"))?;
    print!("{}", render::human(&plan));
    let done = run(
        &config,
        &host,
        &mut store,
        Mode::Sync {
            approve_held: false,
        },
        Some("t-5"),
    )?;
    print!("{}", render::human(&done));
    if done.failed() > 0 {
        return Err("the single-talent run failed (see above)".into());
    }
    Ok(())
}

fn write_config(
    dir: &Path,
    lucca: &LuccaSim,
    teelt: &TeeltSim,
    (paris, tech, role): &(String, String, String),
) -> DemoResult<std::path::PathBuf> {
    std::fs::create_dir_all(dir)?;
    for name in ["state.db", "state.db-wal", "state.db-shm"] {
        match std::fs::remove_file(dir.join(name)) {
            Err(e) if e.kind() != std::io::ErrorKind::NotFound => return Err(e.into()),
            _ => {}
        }
    }
    std::fs::write(dir.join("lucca.key"), lucca.api_key())?;
    std::fs::write(dir.join("teelt.token"), teelt.token())?;
    let config = format!(
        r#"# Written by `cargo demo teelt` for simulators on loopback; see docs/config.md.
[tenant]
name = "demo-teelt"
timezone = "Europe/Paris"
state = "state.db"
cache = "../plugin-cache"

[connections.teelt]
plugin = "teelt"
settings = {{ base_url = "{teelt}" }}
secret = {{ file = "teelt.token" }}
allow_loopback = true

[connections.lucca]
plugin = "lucca"
settings = {{ base_url = "{lucca}", default_role = "{role}", contract_type_field = "e_contract" }}
secret = {{ file = "lucca.key" }}
allow_loopback = true

[flows.{FLOW}]
source = "teelt"
target = "lucca"
schedule = "daily 00:00"
actions = ["create", "link"]
fields = ["given_name", "family_name", "work_email", "phone", "login", "legal_entity_id",
          "department_id", "start_date", "contract_type", "manager_id"]
correlation = ["work_email"]
guard = false
options = {{ manager_match = "work_email", pre_start_days = 366 }}
mapping = [
  {{ coalesce = {{ field = "work_email", from = ["work_email", "personal_email"] }} }},
  {{ template = {{ field = "login", pattern = "{{given_name|initial}}{{family_name}}|login" }} }},
  {{ value_map = {{ from = "custom:establishment", to = "legal_entity_id", values = {{ Paris = "{paris}" }} }} }},
  {{ value_map = {{ from = "department_id", to = "department_id", values = {{ Tech = "{tech}" }} }} }},
]
"#,
        teelt = teelt.base_url(),
        lucca = lucca.base_url(),
    );
    let path = dir.join("muster.toml");
    std::fs::write(&path, config)?;
    Ok(path)
}

fn run(
    config: &Config,
    host: &Host,
    store: &mut Store,
    mode: Mode,
    only: Option<&str>,
) -> DemoResult<RunReport> {
    let flow = config.flow(FLOW)?;
    let options = RunOptions {
        trigger: if only.is_some() {
            Trigger::Single
        } else {
            Trigger::Schedule
        },
        only: only.map(str::to_owned),
        today: Date::parse(TODAY).map_err(|e| format!("{TODAY}: {e}"))?,
        approver: "demo".into(),
    };
    Ok(host.run_flow(config, store, flow, mode, &options)?)
}
