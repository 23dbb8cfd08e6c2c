//! Teelt → Lucca end to end: the onboarding tool's new talents become Lucca
//! employees, through the real `teelt` and `lucca` `.wasm` plugins, real HTTP
//! to both simulators on loopback (Lucca's 50 requests / 60 s rate limit on
//! throughout), the real outbound client and a real SQLite store — driven
//! through the library as `muster sync` does (`Config` → `Host::connect_flow`
//! → `engine::run`), the single-talent run rendered as the CLI prints it.
//!
//! The story (`shared/DESIGN.md` §7, seed 003):
//! 1. **The nightly run** creates the new talents and nothing else: no
//!    existing Lucca employee is updated; a talent whose email Lucca already
//!    has is linked and reported, not duplicated; the mandatory legal entity
//!    (from a custom field mapped to establishments by name), department
//!    (Teelt's name mapped to Lucca's) and main role (a default given by
//!    name) are filled; contract type and start date are sent; the manager
//!    given by email is the existing Lucca employee with that email (one
//!    that matches nobody is reported, the talent still created). Bad input
//!    — no email at all, no last name, a department that maps to nothing —
//!    is skipped with the record and the field named; the others go on.
//! 2. **A second run** writes nothing to Lucca.
//! 3. **"Test the sync from a talent's record"** (`sync --only ID`): the plan
//!    says exactly what would be created, the sync creates it and says so,
//!    and touches nobody else.

use std::path::PathBuf;

use muster::cli::render;
use muster::config::Config;
use muster::connect::{Host, RunFlowError};
use muster::engine::{Mode, RunOptions, RunReport};
use muster::store::{Store, Trigger};
use muster_core::{ActionKind, Date, Step};
use muster_sandbox::{
    ExtDefinition, ExtKind, LuccaOptions, LuccaSim, Talent, TeeltOptions, TeeltSim, Tenant, User,
};

const FLOW: &str = "teelt-to-lucca";
/// The sandbox tenants' "today".
const TODAY: &str = "2026-06-01";
/// Teelt's routes live under this prefix: the connector's paths are settings.
const PREFIX: &str = "/api/v1";

fn cache_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("muster-plugin-cache")
}

/// What the config refers to by name in Lucca.
struct Names {
    paris: String,
    lyon: String,
    tech: String,
    role: String,
}

struct World {
    lucca: LuccaSim,
    teelt: TeeltSim,
    dir: tempfile::TempDir,
    config: Config,
    host: Host,
    store: Store,
}

impl World {
    fn new(talents: Vec<Talent>) -> (World, Names) {
        World::with_settings(talents, "")
    }

    /// [`World::new`], with more Teelt connection settings (`, page_size = 2`).
    fn with_settings(talents: Vec<Talent>, teelt_settings: &str) -> (World, Names) {
        let mut tenant = Tenant::generate(2027, 12);
        tenant.definitions.push(ExtDefinition {
            id: 90,
            code: "e_contract".into(),
            name: "Contract type".into(),
            kind: ExtKind::Text,
            multiple: false,
            editable: true,
        });
        let names = Names {
            paris: tenant.establishments[1].name.clone(),
            lyon: tenant.establishments[2].name.clone(),
            tech: tenant.departments[0].name.clone(),
            role: tenant.roles[0].name.clone(),
        };
        // Lucca's rate limit stays on (the default: 50 requests per 60 s).
        let lucca = LuccaSim::start(tenant, LuccaOptions::default()).expect("start lucca");
        let teelt = TeeltSim::start(TeeltOptions {
            prefix: PREFIX.into(),
            talents,
            ..TeeltOptions::default()
        })
        .expect("start teelt");
        let dir = tempfile::tempdir().expect("tempdir");
        std::fs::write(dir.path().join("lucca.key"), lucca.api_key()).expect("key");
        std::fs::write(dir.path().join("teelt.token"), teelt.token()).expect("token");
        let config = parse(&dir, &lucca, &teelt, &names, teelt_settings);
        let world = World {
            host: Host::new(&config).expect("host"),
            store: Store::open(&config.tenant.state).expect("store"),
            config,
            lucca,
            teelt,
            dir,
        };
        (world, names)
    }

    /// One engine run, as `muster sync` / `muster plan` (with `--only`).
    fn run(&mut self, mode: Mode, only: Option<&str>) -> RunReport {
        self.try_run(mode, only).expect("run")
    }

    /// [`World::run`], returning the engine's error instead of failing.
    fn try_run(&mut self, mode: Mode, only: Option<&str>) -> Result<RunReport, RunFlowError> {
        let flow = self.config.flow(FLOW).expect("flow");
        let options = RunOptions {
            trigger: Trigger::Schedule,
            only: only.map(str::to_owned),
            today: Date::parse(TODAY).expect("today"),
            approver: "test".into(),
        };
        self.host
            .run_flow(&self.config, &mut self.store, flow, mode, &options)
    }

    fn sync(&mut self, only: Option<&str>) -> RunReport {
        let report = self.run(
            Mode::Sync {
                approve_held: false,
            },
            only,
        );
        assert_eq!(report.failed(), 0, "{:#?}", report.applied.failures);
        report
    }

    /// Lucca's writes (POST/PUT) since the log was last cleared.
    fn lucca_writes(&self) -> Vec<String> {
        self.lucca
            .request_log()
            .records
            .iter()
            .filter(|r| r.method != "GET")
            .map(|r| format!("{} {} → {}", r.method, r.url, r.status))
            .collect()
    }

    fn lucca_user_by_mail(&self, mail: &str) -> Option<User> {
        self.lucca
            .tenant()
            .users
            .into_iter()
            .find(|u| u.mail.as_deref() == Some(mail))
    }
}

fn parse(
    dir: &tempfile::TempDir,
    lucca: &LuccaSim,
    teelt: &TeeltSim,
    n: &Names,
    teelt_settings: &str,
) -> Config {
    let text = format!(
        r#"[tenant]
name = "teelt-to-lucca"
timezone = "Europe/Paris"
state = "state.db"
cache = "{cache}"

[connections.teelt]
plugin = "teelt"
settings = {{ base_url = "{teelt}", talents_path = "{PREFIX}/talents", talent_path = "{PREFIX}/talents/{{id}}"{teelt_settings} }}
secret = {{ file = "teelt.token" }}
allow_loopback = true

[connections.lucca]
plugin = "lucca"
settings = {{ base_url = "{lucca}", default_role = "{role}", default_department = "{tech}", contract_type_field = "e_contract" }}
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
  {{ value_map = {{ from = "custom:establishment", to = "legal_entity_id", values = {{ Paris = "{paris}", Lyon = "{lyon}" }} }} }},
  {{ value_map = {{ from = "department_id", to = "department_id", values = {{ Tech = "{tech}" }} }} }},
]
"#,
        cache = cache_dir().display(),
        teelt = teelt.base_url(),
        lucca = lucca.base_url(),
        role = n.role,
        tech = n.tech,
        paris = n.paris,
        lyon = n.lyon,
    );
    let path = dir.path().join("muster.toml");
    std::fs::write(&path, &text).expect("config");
    Config::parse(&text, &path, dir.path()).expect("config parses")
}

/// A runner for `serve` that is never asked to run (no schedule is due).
struct NoRuns;

impl muster::serve::Runner for NoRuns {
    fn run(
        &self,
        flow: &str,
        _: Trigger,
        _: Option<&str>,
    ) -> Result<muster::serve::RunReport, String> {
        Err(format!("{flow}: this test's server runs nothing"))
    }
}

/// `muster serve`'s status page (`GET /`) over the flow's state database.
fn status_page(config: &Config) -> String {
    use std::io::{Read, Write};
    let cfg = muster::serve::ServeConfig::from_config(config).expect("serve config");
    let server = muster::serve::Server::start(
        "127.0.0.1:0",
        cfg,
        std::sync::Arc::new(NoRuns),
        std::sync::Arc::new(muster::schedule::SystemClock),
    )
    .expect("serve");
    let addr = server.local_addr();
    let mut s = std::net::TcpStream::connect(addr).expect("connect");
    write!(
        s,
        "GET / HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n"
    )
    .expect("request");
    let mut page = String::new();
    s.read_to_string(&mut page).expect("page");
    server.stop();
    page
}

const UPDATED: &str = "2026-05-20T09:00:00Z";

fn talent(id: &str, first: &str, last: &str, email: &str) -> Talent {
    let mut t = Talent::new(id, first, last, email, UPDATED);
    t.department = Some("Tech".into());
    t.start_date = Some("2026-06-15".into());
    t.contract_type = Some("CDI".into());
    t.custom.insert("establishment".into(), "Paris".into());
    t
}

/// A step as one comparable line.
fn line(s: &Step) -> String {
    format!(
        "{} {} ({})",
        s.kind,
        s.source_id.as_deref().unwrap_or("-"),
        s.reason
    )
}

fn lines(report: &RunReport) -> Vec<String> {
    let mut l: Vec<String> = report.steps.iter().map(line).collect();
    l.sort();
    l
}

/// An active Lucca employee with a work email, other than `not`.
fn employee(t: &Tenant, not: Option<u64>) -> User {
    t.users
        .iter()
        .find(|u| {
            u.mail.is_some()
                && u.dt_contract_end.is_none()
                && u.dt_contract_start.is_some()
                && Some(u.id) != not
        })
        .cloned()
        .expect("an active employee with an email")
}

#[test]
fn teelt_to_lucca_end_to_end() {
    let probe = Tenant::generate(2027, 12);
    let boss = employee(&probe, None);
    let known = employee(&probe, Some(boss.id));
    let boss_mail = boss.mail.clone().unwrap();
    let known_mail = known.mail.clone().unwrap();

    let mut lea = talent("t-101", "Léa", "Zéphyrin", "lea.zephyrin@sandbox.example");
    lea.phone = Some("+33 6 12 34 56 78".into());
    lea.manager_email = Some(boss_mail.to_uppercase());
    let already = talent("t-102", &known.first_name, &known.last_name, &known_mail);
    let mut no_email = talent("t-103", "Noé", "Sansmail", "");
    no_email.email = None;
    let mut no_last = talent("t-104", "Ilan", "", "ilan@sandbox.example");
    no_last.last_name = None;
    let mut astro = talent("t-105", "Vera", "Rubinova", "vera.rubinova@sandbox.example");
    astro.department = Some("Astrophysics".into());
    let mut ugo = talent("t-106", "Ugo", "Quillevere", "");
    ugo.email = None;
    ugo.personal_email = Some("ugo.quillevere@mail.example".into());
    ugo.manager_email = Some("nobody@sandbox.example".into());
    ugo.custom.insert("establishment".into(), "Lyon".into());
    ugo.contract_type = Some("CDD".into());

    let (mut w, names) = World::new(vec![lea, already, no_email, no_last, astro, ugo]);
    let flow = w.config.flow(FLOW).expect("flow");
    assert_eq!(
        flow.schedule.as_ref().map(ToString::to_string).as_deref(),
        Some("daily 00:00"),
        "every night at midnight, in the tenant's zone ({})",
        w.config.tenant.timezone_name
    );
    let before = w.lucca.tenant();

    // 1. The nightly run.
    let report = w.sync(None);
    assert_eq!(
        lines(&report),
        vec![
            "create t-101 (new_person)",
            "create t-106 (new_person)",
            "link t-102 (matched)",
            "set_manager t-101 (manager_changed)",
            "skip t-103 (missing_field)",
            "skip t-106 (manager_out_of_scope)",
        ],
        "{}",
        report.plan_text
    );
    // A talent whose mapping fails is held out of the plan (no account: no
    // step) and reported with its record and field in the run's problems,
    // which `plan`/`sync` print under "Problems in the data".
    let printed = render::human(&report);
    assert!(printed.contains("Problems in the data (2)"), "{printed}");
    let problems: Vec<String> = report.problems.iter().map(ToString::to_string).collect();
    assert!(
        problems.contains(
            &"source record t-104 (plugin `teelt`): field `login`: needs `family_name`, which is empty; the record is left out of this run and its account is left as it is"
                .to_string()
        ),
        "record and field named once: {problems:?}"
    );
    assert!(
        problems.iter().any(|p| p.contains("t-105")
            && p.contains("department_id")
            && p.contains("Astrophysics")),
        "{problems:?}"
    );
    let skip_103 = report
        .steps
        .iter()
        .find(|s| s.source_id.as_deref() == Some("t-103"))
        .expect("t-103 reported");
    assert!(
        skip_103.explanation.contains("work_email"),
        "{}",
        skip_103.explanation
    );

    // `history` and the status page name the records left out, and why.
    let history = render::history(&w.store.history(FLOW, 1).expect("history"));
    let page = status_page(&w.config);
    for (record, why) in [
        ("t-103", "`work_email` is required"),
        ("t-104", "needs `family_name`"),
        ("t-105", "no mapping for value \"Astrophysics\""),
        ("t-106", "nobody@sandbox.example has no account"),
    ] {
        assert!(
            history.lines().any(
                |l| (l.starts_with("  note: ") || l.starts_with("  problem: "))
                    && l.contains(record)
                    && l.contains(why)
            ),
            "{record} in history:\n{history}"
        );
        let escaped_why = why.replace('"', "&quot;");
        assert!(
            page.lines().any(|l| l.contains(record))
                && (page.contains(why) || page.contains(&escaped_why)),
            "{record} on the status page:\n{page}"
        );
    }

    // Lucca now has exactly the two new employees; nobody else changed.
    let after = w.lucca.tenant();
    assert_eq!(after.users.len(), before.users.len() + 2);
    for u in &before.users {
        assert_eq!(
            after.user(u.id),
            Some(u),
            "existing employee {} untouched",
            u.id
        );
    }
    let created = w
        .lucca_user_by_mail("lea.zephyrin@sandbox.example")
        .expect("Léa");
    let id_of =
        |list: &[(u64, &str)], name: &str| list.iter().find(|(_, n)| *n == name).map(|(id, _)| *id);
    let establishments: Vec<(u64, &str)> = after
        .establishments
        .iter()
        .map(|e| (e.id, e.name.as_str()))
        .collect();
    let departments: Vec<(u64, &str)> = after
        .departments
        .iter()
        .map(|d| (d.id, d.name.as_str()))
        .collect();
    let roles: Vec<(u64, &str)> = after
        .roles
        .iter()
        .map(|r| (r.id, r.name.as_str()))
        .collect();
    assert_eq!(
        (
            created.first_name.as_str(),
            created.last_name.as_str(),
            created.login.as_str(),
            created.professional_mobile.as_deref(),
            created.dt_contract_start.as_deref(),
        ),
        (
            "Léa",
            "Zéphyrin",
            "lzephyrin",
            Some("+33 6 12 34 56 78"),
            Some("2026-06-15T00:00:00")
        )
    );
    assert_eq!(
        (
            created.legal_entity_id,
            created.department_id,
            created.role_principal_id,
            created.manager_id,
        ),
        (
            id_of(&establishments, &names.paris),
            id_of(&departments, &names.tech),
            id_of(&roles, &names.role),
            Some(boss.id),
        ),
        "establishment from the custom field, department mapped, role default by name, manager by email"
    );
    assert_eq!(
        created
            .extended
            .get("e_contract")
            .map(|o| o[0].value.clone()),
        Some(serde_json::json!("CDI"))
    );
    let ugo = w
        .lucca_user_by_mail("ugo.quillevere@mail.example")
        .expect("Ugo, with his personal email as the only one known");
    assert_eq!(ugo.manager_id, None, "a manager matching nobody is not set");
    assert_eq!(ugo.legal_entity_id, id_of(&establishments, &names.lyon));
    // The talent already in Lucca is linked to that employee, not duplicated.
    let links = w.store.links(FLOW).expect("links");
    assert!(
        links
            .iter()
            .any(|l| l.source_id == "t-102" && l.target_id == known.id.to_string()),
        "{links:?}"
    );
    assert_eq!(
        after
            .users
            .iter()
            .filter(|u| u.mail.as_deref() == Some(&known_mail))
            .count(),
        1
    );

    // 2. The next night: nothing new, nothing written.
    w.lucca.clear_request_log();
    w.teelt.set_now("2026-06-02T00:00:00Z");
    let again = w.sync(None);
    assert!(
        again
            .steps
            .iter()
            .all(|s| matches!(s.kind, ActionKind::Skip | ActionKind::Conflict)),
        "{}",
        again.plan_text
    );
    assert_eq!(w.lucca_writes(), Vec::<String>::new());

    // 3. A new talent, tried from their record: the plan says what would be
    // created, the sync creates exactly that and touches nobody else.
    let mut ines = talent(
        "t-107",
        "Inès",
        "Vautrin-Lefebvre",
        "ines.vautrin@sandbox.example",
    );
    ines.manager_email = Some(boss_mail.clone());
    ines.updated_at = "2026-06-02T08:00:00Z".into();
    w.teelt.with_talents(|t| t.push(ines));
    let plan = w.run(Mode::Plan, Some("t-107"));
    let printed = render::human(&plan);
    for expected in [
        "t-107",
        "Inès",
        "Vautrin-Lefebvre",
        "ines.vautrin@sandbox.example",
        "login: \"ivautrin-lefebvre\"",
        "start_date: 2026-06-15",
        "contract_type: \"CDI\"",
        "legal_entity_id: \"",
        "department_id: \"",
    ] {
        assert!(printed.contains(expected), "`{expected}` in:\n{printed}");
    }
    assert_eq!(
        lines(&plan),
        vec![
            "create t-107 (new_person)",
            "set_manager t-107 (manager_changed)"
        ],
        "{printed}"
    );
    assert_eq!(
        w.lucca_writes(),
        Vec::<String>::new(),
        "a plan writes nothing"
    );
    let users_before = w.lucca.tenant().users;
    let done = w.sync(Some("t-107"));
    let printed = render::human(&done);
    assert!(printed.contains("Applied: "), "{printed}");
    assert!(printed.contains("create"), "{printed}");
    let writes = w.lucca_writes();
    assert_eq!(
        writes.len(),
        2,
        "one POST and the manager's PUT: {writes:?}"
    );
    assert!(
        writes[0].starts_with("POST /api/v3/users?contract=true"),
        "{writes:?}"
    );
    let ines = w
        .lucca_user_by_mail("ines.vautrin@sandbox.example")
        .expect("Inès");
    assert_eq!(ines.manager_id, Some(boss.id));
    let users_after = w.lucca.tenant().users;
    assert_eq!(users_after.len(), users_before.len() + 1);
    for u in &users_before {
        assert_eq!(users_after.iter().find(|a| a.id == u.id), Some(u));
    }
    // Lucca's rate limit was on and never hit.
    assert!(
        w.lucca
            .request_log()
            .records
            .iter()
            .all(|r| r.status != 429),
        "no 429"
    );
}

/// The nightly read is incremental: after a run that did everything, the
/// next one asks Teelt only for the talents updated since the first page's
/// `generatedAt`, and a talent added since is created — nobody else is
/// touched.
#[test]
fn the_next_nightly_run_reads_only_the_talents_updated_since() {
    let first = talent("t-201", "Ada", "Quarrel", "ada.quarrel@sandbox.example");
    let (mut w, _) = World::new(vec![first]);
    let report = w.sync(None);
    assert_eq!(lines(&report), vec!["create t-201 (new_person)"]);
    let full_read = w.teelt.requests();
    assert!(
        full_read
            .iter()
            .all(|(_, url)| !url.contains("updated_since")),
        "the first read is full: {full_read:?}"
    );

    w.teelt.set_now("2026-06-02T00:00:00Z");
    let mut late = talent("t-202", "Bea", "Quillon", "bea.quillon@sandbox.example");
    late.updated_at = "2026-06-01T12:00:00Z".into();
    w.teelt.with_talents(|t| t.push(late));
    w.lucca.clear_request_log();
    let report = w.sync(None);
    assert_eq!(lines(&report), vec!["create t-202 (new_person)"]);
    let reads: Vec<String> = w
        .teelt
        .requests()
        .into_iter()
        .skip(full_read.len())
        .map(|(_, url)| url)
        .filter(|url| url.starts_with(&format!("{PREFIX}/talents?")))
        .collect();
    assert_eq!(
        reads,
        vec![format!(
            "{PREFIX}/talents?page=1&limit=100&updated_since=2026-06-01T00%3A00%3A00Z"
        )],
        "one page of the talents changed since the last run's start"
    );
    let writes = w.lucca_writes();
    assert_eq!(writes.len(), 1, "{writes:?}");
    assert!(writes[0].starts_with("POST /api/v3/users?contract=true"));
}

/// Talents are read page by page; one whose start date is no date is
/// reported (record and field) and held: not created, and no step is planned
/// from a value that could not be read; a token Teelt refuses fails the run, naming the connection, and
/// writes nothing.
#[test]
fn talents_are_paged_a_bad_date_is_reported_and_a_wrong_token_fails_the_run() {
    let mut talents: Vec<Talent> = (1..=5)
        .map(|i| {
            talent(
                &format!("t-30{i}"),
                "Kim",
                &format!("Quintal{i}"),
                &format!("kim.quintal{i}@sandbox.example"),
            )
        })
        .collect();
    talents[4].start_date = Some("2026-02-30".into());
    let (mut w, _) = World::with_settings(talents, ", page_size = 2");
    let report = w.sync(None);
    assert_eq!(
        lines(&report),
        vec![
            "create t-301 (new_person)",
            "create t-302 (new_person)",
            "create t-303 (new_person)",
            "create t-304 (new_person)",
        ],
        "t-305, whose start date is no date, is held out of the plan"
    );
    let problems: Vec<String> = report.problems.iter().map(ToString::to_string).collect();
    assert_eq!(problems.len(), 1, "{problems:?}");
    assert!(
        problems[0].contains("t-305")
            && problems[0].contains("start_date")
            && problems[0].contains("2026-02-30"),
        "{problems:?}"
    );
    let pages: Vec<String> = w
        .teelt
        .requests()
        .into_iter()
        .map(|(_, url)| url)
        .filter(|u| u.starts_with(&format!("{PREFIX}/talents?")))
        .collect();
    assert_eq!(
        pages,
        (1..=3)
            .map(|p| format!("{PREFIX}/talents?page={p}&limit=2"))
            .collect::<Vec<_>>()
    );

    std::fs::write(w.dir.path().join("teelt.token"), "not-the-token").expect("token");
    w.host = Host::new(&w.config).expect("host");
    w.lucca.clear_request_log();
    let err = w
        .try_run(
            Mode::Sync {
                approve_held: false,
            },
            None,
        )
        .expect_err("Teelt refuses the token");
    let message = err.to_string();
    assert!(
        message.contains("teelt") && message.contains("bearer token"),
        "{message}"
    );
    assert_eq!(w.lucca_writes(), Vec::<String>::new());
}
