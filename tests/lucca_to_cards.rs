//! Lucca → Cards end to end (issue 14): a generated 2,000-person Lucca tenant imported into a
//! Cards space through the real `lucca` and `cards` `.wasm` plugins, real HTTP to both
//! simulators on loopback, the real outbound layer and a real SQLite store, driven through
//! the library as `muster sync` drives it.
//!
//! **Both rate limits are on**, on simulated time: Lucca's 50 requests per 60 s (shared with
//! "another integration" of the tenant, which spends most of the budget just before the
//! import) and Cards' 10 per second. The host runs its waits on a clock at the same scale
//! ([`Host::with_clock`]), so the import goes through several of Lucca's windows in seconds.
//!
//! Expectations are computed from the tenant's data (who is active, who has a unique work
//! email, which departments exist), never hard-coded counts.
//!
//! The story:
//! 1. **Import all** — an account per active employee with a unique professional email, the
//!    one already in Cards linked instead; everyone else reported (`missing_field`,
//!    `duplicate_in_source`); one group per department with its members; the options
//!    (notify, SSO) applied; a hand-made group and its members untouched; Lucca answered 429
//!    and the import neither burst past the limit nor failed.
//! 2. **The day's changes** — a hire (imported alone first: `sync --only ID`), a leaver who
//!    is also in the hand-made group, a department change. The leaver goes to the leavers
//!    group and out of the department's, keeps the hand-made membership, and is never deleted.
//! 3. **A resync** plans nothing and sends Cards no write.

#[path = "support/lucca.rs"]
mod lucca;

use std::collections::{BTreeMap, BTreeSet};
use std::io::{Read, Write};
use std::sync::Arc;

use muster::config::Config;
use muster::connect::{Host, RunFlowError};
use muster::engine::{Mode, RunOptions, RunReport};
use muster::store::{Store, Trigger};
use muster_core::{ActionKind, Date};
use muster_sandbox::{
    CardsOptions, CardsSim, CardsUser, Fault, FaultKind, LuccaOptions, LuccaSim, Space, Tenant,
    TrainingStat, User,
};
use serde_json::Value;

use lucca::ScaledClock;

const FLOW: &str = "lucca-to-cards";
const TODAY: &str = "2026-06-01";
const SEED: u64 = 14;
const PEOPLE: usize = 2_000;
/// Simulated seconds per real second, on both simulators and the host's clock.
const SCALE: f64 = 60.0;
/// Lucca users per request: small, so the import needs several of Lucca's 60 s windows.
const LUCCA_PAGE: usize = 25;
/// Requests "another integration" spends on Lucca just before the import.
const OTHER_INTEGRATION: usize = 45;
const HAND_MADE: &str = "Book club";
const LEAVERS: &str = "Former employees (muster)";

fn cache_dir() -> std::path::PathBuf {
    std::path::PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("muster-plugin-cache")
}

struct World {
    lucca: LuccaSim,
    cards: CardsSim,
    host: Host,
    store: Store,
    config: Config,
    flow: &'static str,
    _dir: tempfile::TempDir,
}

impl World {
    /// Both simulators and a host on [`SCALE`]; the config is `config_text`'s, its flow `flow`.
    fn new(
        tenant: Tenant,
        space: Space,
        flow: &'static str,
        config_text: fn(&LuccaSim, &CardsSim) -> String,
    ) -> World {
        World::with_faults(tenant, space, flow, config_text, Vec::new())
    }

    /// [`World::new`] with faults injected into the Cards simulator.
    fn with_faults(
        tenant: Tenant,
        space: Space,
        flow: &'static str,
        config_text: fn(&LuccaSim, &CardsSim) -> String,
        faults: Vec<Fault>,
    ) -> World {
        let lucca = LuccaSim::start(
            tenant,
            LuccaOptions {
                time_scale: SCALE,
                ..LuccaOptions::default()
            },
        )
        .expect("start lucca");
        let cards = CardsSim::start(CardsOptions {
            time_scale: SCALE,
            space,
            faults,
            ..CardsOptions::default()
        })
        .expect("start cards");
        let dir = tempfile::tempdir().expect("tempdir");
        std::fs::write(dir.path().join("lucca.key"), lucca.api_key()).expect("key");
        std::fs::write(dir.path().join("cards.token"), cards.token()).expect("token");
        let text = config_text(&lucca, &cards);
        let path = dir.path().join("muster.toml");
        std::fs::write(&path, &text).expect("config");
        let config = Config::parse(&text, &path, dir.path()).expect("config parses");
        let host = Host::with_clock(&config, Arc::new(ScaledClock::new(SCALE))).expect("host");
        World {
            store: Store::open(&config.tenant.state).expect("store"),
            lucca,
            cards,
            host,
            config,
            flow,
            _dir: dir,
        }
    }

    fn run(&mut self, mode: Mode, only: Option<String>) -> RunReport {
        self.try_run(mode, only).expect("run")
    }

    fn try_run(&mut self, mode: Mode, only: Option<String>) -> Result<RunReport, RunFlowError> {
        let flow = self.config.flow(self.flow).expect("flow");
        let options = RunOptions {
            trigger: Trigger::Manual,
            only,
            today: Date::parse(TODAY).expect("today"),
            approver: "test".into(),
        };
        self.host
            .run_flow(&self.config, &mut self.store, flow, mode, &options)
    }

    /// A sync whose every call succeeds.
    fn sync(&mut self, only: Option<String>) -> RunReport {
        let mode = Mode::Sync {
            approve_held: false,
        };
        let report = self.run(mode, only);
        assert_eq!(report.failed(), 0, "{:#?}", report.applied.failures);
        assert!(report.applied.aborted.is_none(), "{:?}", report.applied);
        report
    }

    /// Lucca id → Cards user id.
    fn links(&self) -> BTreeMap<String, u64> {
        self.store
            .links(self.flow)
            .expect("links")
            .into_iter()
            .map(|l| (l.source_id, l.target_id.parse().expect("numeric Cards id")))
            .collect()
    }

    /// Group name → member emails, as Cards has them now.
    fn groups(&self) -> BTreeMap<String, BTreeSet<String>> {
        let space = self.cards.space();
        let mut out: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
        for g in space.groups.values() {
            out.entry(g.name.clone()).or_default();
        }
        for u in space.users.values() {
            for name in space.group_names(u) {
                out.entry(name)
                    .or_default()
                    .insert(u.email.clone().unwrap_or_default());
            }
        }
        out
    }
}

/// The Lucca → Cards flow, as `docs/config.md` shows it.
fn config_text(lucca: &LuccaSim, cards: &CardsSim) -> String {
    format!(
        r#"[tenant]
name = "lucca-to-cards"
timezone = "Europe/Paris"
state = "state.db"
cache = "{cache}"

[connections.lucca]
plugin = "lucca"
settings = {{ base_url = "{lucca}", page_size = {LUCCA_PAGE} }}
secret = {{ file = "lucca.key" }}
allow_loopback = true

[connections.cards]
plugin = "cards"
settings = {{ base_url = "{cards}", tenant = "{tenant}", notify_created_users = "yes", connection_mode = "sso" }}
secret = {{ file = "cards.token" }}
allow_loopback = true

[flows.{FLOW}]
source = "lucca"
target = "cards"
schedule = "daily 02:00"
correlation = ["work_email"]
options = {{ sync_groups = true, reactivate = true }}
"#,
        cache = cache_dir().display(),
        lucca = lucca.base_url(),
        cards = cards.base_url(),
        tenant = cards.tenant(),
    )
}

fn day(d: &str) -> &str {
    d.get(..10).unwrap_or(d)
}

fn active(u: &User) -> bool {
    u.dt_contract_end.as_deref().is_none_or(|e| day(e) >= TODAY)
        && u.dt_contract_start
            .as_deref()
            .is_some_and(|s| day(s) <= TODAY)
}

fn mail_key(m: &str) -> String {
    m.trim().to_lowercase()
}

/// Who the import must create, link or report, from the tenant's data.
struct Expected {
    /// Lucca id → email, active with an email no one else has.
    importable: BTreeMap<String, String>,
    missing_mail: BTreeSet<String>,
    shared_mail: BTreeSet<String>,
}

fn expected(t: &Tenant) -> Expected {
    let mut count: BTreeMap<String, usize> = BTreeMap::new();
    for m in t.users.iter().filter_map(|u| u.mail.as_deref()) {
        *count.entry(mail_key(m)).or_default() += 1;
    }
    let mut e = Expected {
        importable: BTreeMap::new(),
        missing_mail: BTreeSet::new(),
        shared_mail: BTreeSet::new(),
    };
    for u in t.users.iter().filter(|u| active(u)) {
        let id = u.id.to_string();
        match &u.mail {
            None => {
                e.missing_mail.insert(id);
            }
            Some(m) if count[&mail_key(m)] > 1 => {
                e.shared_mail.insert(id);
            }
            Some(m) => {
                e.importable.insert(id, mail_key(m));
            }
        }
    }
    e
}

/// Another integration of the same Lucca tenant, spending `n` requests of the shared budget.
fn other_integration(lucca: &LuccaSim, n: usize) {
    let addr = lucca
        .base_url()
        .trim_start_matches("http://")
        .trim_end_matches('/')
        .to_string();
    for _ in 0..n {
        let mut s = std::net::TcpStream::connect(&addr).expect("connect to lucca");
        write!(
            s,
            "GET /api/v3/users?paging=0,1 HTTP/1.1\r\nHost: {addr}\r\n\
             Authorization: lucca application={}\r\nConnection: close\r\n\r\n",
            lucca.api_key()
        )
        .expect("send");
        let mut answer = String::new();
        s.read_to_string(&mut answer).expect("read");
        assert!(answer.starts_with("HTTP/1.1 200"), "{answer}");
    }
}

fn ids(report: &RunReport, kind: ActionKind, reason: &str) -> BTreeSet<String> {
    report
        .steps
        .iter()
        .filter(|s| s.kind == kind && s.reason == reason)
        .filter_map(|s| s.source_id.clone())
        .collect()
}

/// A Lucca employee already in Cards (same email, other case), in the hand-made group, and
/// a consultant of the hand-made group whom Lucca does not know.
fn space_with_hand_made_group(existing_email: &str) -> Space {
    let mut space = Space::new();
    let group = space.add_group(HAND_MADE);
    let mut existing = CardsUser::new("Déjà", "Là", &existing_email.to_uppercase());
    existing.groups = vec![group];
    space.add_user(existing);
    let mut consultant = CardsUser::new("Con", "Sultant", "consultant@partner.example");
    consultant.groups = vec![group];
    space.add_user(consultant);
    space
}

#[test]
fn lucca_to_cards_end_to_end() {
    let tenant = Tenant::generate(SEED, PEOPLE);
    let want = expected(&tenant);
    let (existing_id, existing_email) = want
        .importable
        .iter()
        .next()
        .map(|(i, m)| (i.clone(), m.clone()))
        .expect("someone importable");
    let mut w = World::new(
        tenant.clone(),
        space_with_hand_made_group(&existing_email),
        FLOW,
        config_text,
    );

    // 1. Import all, with another integration having spent most of Lucca's budget.
    other_integration(&w.lucca, OTHER_INTEGRATION);
    let report = w.sync(None);
    let created = ids(&report, ActionKind::Create, "new_person");
    let linked = ids(&report, ActionKind::Link, "matched");
    assert_eq!(linked, BTreeSet::from([existing_id.clone()]));
    let mut importable: BTreeSet<String> = want.importable.keys().cloned().collect();
    importable.remove(&existing_id);
    assert_eq!(
        created, importable,
        "an account per active, uniquely mailed person"
    );
    assert_eq!(
        ids(&report, ActionKind::Skip, "missing_field"),
        want.missing_mail
    );
    assert_eq!(
        ids(&report, ActionKind::Conflict, "duplicate_in_source"),
        want.shared_mail
    );
    let lucca_log = w.lucca.request_log();
    assert!(lucca_log.count_status(429) > 0, "the shared budget ran out");
    assert!(lucca_log.max_accepted_in_window(60.0) <= 50);

    let links = w.links();
    let space = w.cards.space();
    for (lucca_id, email) in &want.importable {
        let user = &space.users[&links[lucca_id]];
        assert_eq!(
            user.email.as_deref().map(mail_key).as_deref(),
            Some(email.as_str())
        );
    }
    let created_users: Vec<&CardsUser> =
        created.iter().map(|id| &space.users[&links[id]]).collect();
    assert!(created_users.iter().all(|u| u.source == "sso"));
    let notified: BTreeSet<u64> = w.cards.notifications().iter().map(|n| n.user_id).collect();
    let created_ids: BTreeSet<u64> = created_users.iter().map(|u| u.id).collect();
    assert_eq!(
        notified, created_ids,
        "created users are notified, the linked one is not"
    );

    // Departments as groups of the same name, with exactly their imported members.
    let groups = w.groups();
    let mut by_department: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    for u in tenant.users.iter() {
        let (Some(email), Some(d)) = (want.importable.get(&u.id.to_string()), u.department_id)
        else {
            continue;
        };
        let name = tenant.department(d).expect("department").name.clone();
        by_department.entry(name).or_default().insert(email.clone());
    }
    for (name, members) in &by_department {
        let got: BTreeSet<String> = groups[name].iter().map(|m| mail_key(m)).collect();
        assert_eq!(&got, members, "group {name}");
    }
    let hand_made: BTreeSet<String> = groups[HAND_MADE].iter().map(|m| mail_key(m)).collect();
    assert_eq!(
        hand_made,
        BTreeSet::from([existing_email.clone(), "consultant@partner.example".into()]),
        "the hand-made group keeps its members"
    );

    // 2. The day's changes.
    let boss = tenant
        .users
        .iter()
        .find(|u| {
            want.importable.contains_key(&u.id.to_string()) && u.id.to_string() != existing_id
        })
        .expect("a boss")
        .clone();
    let mover = tenant
        .users
        .iter()
        .find(|u| {
            want.importable.contains_key(&u.id.to_string())
                && u.department_id != boss.department_id
                && u.id != boss.id
                && u.id.to_string() != existing_id
        })
        .expect("a mover")
        .clone();
    let leaver = boss.clone();
    let leaver_cards = links[&leaver.id.to_string()];
    // The leaver is also in the hand-made group (added by hand in Cards).
    w.cards.with_space(|s| {
        let g = s.group_by_name(HAND_MADE).expect("group").id;
        s.users
            .get_mut(&leaver_cards)
            .expect("leaver")
            .groups
            .push(g);
    });
    let hire = w.lucca.with_tenant(|t| {
        let mut hire = t.user(mover.id).expect("mover").clone();
        hire.id = t.take_user_id();
        hire.first_name = "Nina".into();
        hire.last_name = "Nouvelle".into();
        hire.login = format!("nnouvelle{}", hire.id);
        hire.mail = Some(format!("nina.nouvelle{}@sandbox.example", hire.id));
        hire.employee_number = Some(format!("H{}", hire.id));
        hire.dt_contract_start = Some("2026-05-25T00:00:00".into());
        t.users.push(hire.clone());
        let l = t.user_mut(leaver.id).expect("leaver");
        l.dt_contract_end = Some("2026-05-20T00:00:00".into());
        let m = t.user_mut(mover.id).expect("mover");
        m.department_id = boss.department_id;
        hire
    });
    // "Import one": the hire alone.
    let one = w.sync(Some(hire.id.to_string()));
    assert_eq!(
        ids(&one, ActionKind::Create, "new_person"),
        BTreeSet::from([hire.id.to_string()])
    );
    let report = w.sync(None);
    let deactivated = ids(&report, ActionKind::Deactivate, "end_date_passed");
    assert_eq!(deactivated, BTreeSet::from([leaver.id.to_string()]));
    assert!(ids(&report, ActionKind::Create, "new_person").is_empty());

    let groups = w.groups();
    let dept = |d: Option<u64>| {
        tenant
            .department(d.expect("dept"))
            .expect("dept")
            .name
            .clone()
    };
    let (old_dept, new_dept) = (dept(mover.department_id), dept(boss.department_id));
    let mail = |u: &User| mail_key(u.mail.as_deref().expect("mail"));
    assert!(
        groups[&new_dept].contains(&mail(&mover)),
        "mover joins {new_dept}"
    );
    assert!(
        !groups[&old_dept].contains(&mail(&mover)),
        "mover leaves {old_dept}"
    );
    // The hire was copied from the mover before the move: the mover's old department.
    assert!(
        groups[&old_dept].contains(&mail(&hire)),
        "hire in {old_dept}"
    );
    assert!(
        !groups[&new_dept].contains(&mail(&leaver)),
        "leaver out of {new_dept}"
    );
    assert!(groups[LEAVERS].contains(&mail(&leaver)), "leaver marked");
    assert!(
        groups[HAND_MADE].contains(&mail(&leaver)),
        "hand-made membership kept"
    );
    assert!(w.cards.space().deleted.is_empty(), "muster never deletes");

    // 3. Nothing left to do.
    w.cards.clear_request_log();
    let again = w.sync(None);
    let writes: Vec<String> = again
        .steps
        .iter()
        .filter(|s| !matches!(s.kind, ActionKind::Skip | ActionKind::Conflict))
        .map(|s| format!("{:?} {:?} {}", s.kind, s.source_id, s.reason))
        .collect();
    assert!(writes.is_empty(), "{writes:#?}");
    assert_eq!(w.cards.writes(), 0);
}

const STATS_FLOW: &str = "cards-statistics";

/// A Cards → Lucca flow reading the statistics feed into `e_formation` rows.
fn stats_config_text(lucca: &LuccaSim, cards: &CardsSim) -> String {
    format!(
        r#"[tenant]
name = "cards-statistics"
timezone = "Europe/Paris"
state = "state.db"
cache = "{cache}"

[connections.lucca]
plugin = "lucca"
settings = {{ base_url = "{lucca}", custom_fields = "e_formation" }}
secret = {{ file = "lucca.key" }}
allow_loopback = true

[connections.cards-stats]
plugin = "cards"
settings = {{ base_url = "{cards}", tenant = "{tenant}", feed = "statistics" }}
secret = {{ file = "cards.token" }}
allow_loopback = true

[flows.{STATS_FLOW}]
source = "cards-stats"
target = "lucca"
actions = ["link", "update"]
fields = ["custom:e_formation"]
correlation = ["work_email"]
row_keys = {{ e_formation = "e_title" }}
options = {{ sync_groups = false }}
# The feed has no contract dates and the planner gates every account on a start date:
# statistics people are taken as started (start_date is not owned, so never written).
mapping = [{{ default = {{ field = "start_date", value = "2000-01-01" }} }}]
"#,
        cache = cache_dir().display(),
        lucca = lucca.base_url(),
        cards = cards.base_url(),
        tenant = cards.tenant(),
    )
}

fn stat(email: &str, title: &str, completed: Option<&str>) -> TrainingStat {
    TrainingStat {
        user_email: email.into(),
        training_title: title.into(),
        training_link: format!("https://app.cards.example/t/{}", title.len()),
        progress: 80,
        score: 42,
        last_completed_at: completed.map(str::to_string),
    }
}

/// The statistics source role: `plan` of a Cards → Lucca flow reads the feed through the
/// real plugin and shows one `e_formation` row addition per training, on the Lucca employee
/// with that work email; the person's id is its Cards user id when Cards has the user.
#[test]
fn the_statistics_feed_reads_as_e_formation_rows() {
    let tenant = Tenant::generate(SEED, 40);
    let want = expected(&tenant);
    let mut mailed = want.importable.iter();
    let (lucca_a, mail_a) = mailed.next().expect("a");
    let (lucca_b, mail_b) = mailed.next().expect("b");
    let mut space = Space::new();
    let cards_a = space.add_user(CardsUser::new("A", "A", mail_a));
    space.stats = vec![
        stat(mail_a, "Cards · Sécurité 2026", Some("2026-05-30 09:10:00")),
        stat(&mail_a.to_uppercase(), "Cards · RGPD", None),
        stat(mail_b, "Cards · Onboarding", Some("2026-05-02 12:00:00")),
        stat("", "Cards · Orphan", None),
    ];
    let mut w = World::new(tenant, space, STATS_FLOW, stats_config_text);
    let report = w.run(Mode::Plan, None);

    let mut added: BTreeMap<String, (String, BTreeSet<String>)> = BTreeMap::new();
    for s in &report.steps {
        for r in &s.rows {
            if let muster_core::RowAction::Add { row } = &r.action {
                assert_eq!(
                    (r.field.as_str(), r.key.as_str()),
                    ("e_formation", "e_title")
                );
                let entry = added
                    .entry(s.source_id.clone().unwrap_or_default())
                    .or_insert_with(|| (s.target_id.clone().unwrap_or_default(), BTreeSet::new()));
                entry.1.insert(format!("{row:?}"));
            }
        }
    }
    // A: its Cards id, two rows; B: no Cards user, so its (lower-cased) email.
    let a = &added[&cards_a.to_string()];
    assert_eq!(&a.0, lucca_a, "matched on the work email");
    assert_eq!(a.1.len(), 2, "{a:?}");
    assert!(
        a.1.iter()
            .any(|r| r.contains("Sécurité") && r.contains("2026-05-30"))
    );
    assert!(
        a.1.iter()
            .all(|r| r.contains("e_progress") && r.contains("80"))
    );
    let b = &added[&mail_key(mail_b)];
    assert_eq!(&b.0, lucca_b);
    assert!(b.1.iter().all(|r| r.contains("Onboarding")));
    assert!(
        report
            .problems
            .iter()
            .any(|p| p.message.contains("statistics row 4")),
        "{:?}",
        report.problems
    );
    assert_eq!(
        w.lucca
            .request_log()
            .records
            .iter()
            .filter(|r| r.method != "GET")
            .count(),
        0
    );
}

/// A name Cards refuses (over 190 characters) fails that person's create alone, naming the
/// person and the field; everyone else is imported.
#[test]
fn a_name_cards_refuses_fails_that_person_only() {
    let mut tenant = Tenant::generate(SEED, 30);
    let want = expected(&tenant);
    let (long_id, _) = want.importable.iter().next().expect("someone");
    let long_id: u64 = long_id.parse().expect("id");
    tenant.user_mut(long_id).expect("user").last_name = "L".repeat(191);
    let mut w = World::new(tenant, Space::new(), FLOW, config_text);
    let report = w.run(
        Mode::Sync {
            approve_held: false,
        },
        None,
    );
    let failures = format!("{:?}", report.applied.failures);
    assert_eq!(report.failed(), 1, "{failures}");
    assert!(
        failures.contains(&format!("person {long_id}")),
        "{failures}"
    );
    assert!(
        failures.contains("family-name is 191 characters"),
        "{failures}"
    );
    assert_eq!(w.links().len(), want.importable.len() - 1);
}

/// The Lucca ↔ Cards example of `docs/config.md` loads, and both flows fit their targets'
/// declarations (`muster check`'s flow check, from the real plugins' manifests).
#[test]
fn the_lucca_cards_example_in_docs_config_md_is_valid() {
    let doc = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/docs/config.md"))
        .expect("docs/config.md");
    let after = doc
        .split("### Lucca ↔ Cards, complete")
        .nth(1)
        .expect("the section");
    let example = after
        .split("```toml\n")
        .nth(1)
        .and_then(|b| b.split("```").next())
        .expect("its example");
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("acme.toml");
    let mut config = Config::parse(example, &path, dir.path())
        .unwrap_or_else(|e| panic!("docs/config.md Lucca ↔ Cards example: {e}"));
    // The example has no cache; the tests' spares compiling the plugins again.
    config.tenant.cache = Some(cache_dir());
    let host = Host::new(&config).expect("host");
    let import = config.flow("lucca-to-cards").expect("import flow");
    assert!(import.schedule.is_some(), "the import runs on a schedule");
    let policy = host.flow_policy(&config, import).expect("fits Cards");
    assert!(policy.sync_groups);
    let stats = config.flow("cards-to-lucca").expect("statistics flow");
    let policy = host.flow_policy(&config, stats).expect("fits Lucca");
    assert_eq!(
        policy.row_keys.get("e_formation").map(String::as_str),
        Some("e_title")
    );
}

/// The `muster-sandbox` binary's config, with its Cards part, loads.
#[test]
fn the_sandbox_config_with_cards_loads() {
    let text = format!(
        "{}{}",
        muster_sandbox::config_toml("http://127.0.0.1:1", "http://127.0.0.1:2/scim/v1"),
        muster_sandbox::cards_config_toml("http://127.0.0.1:3/v1", "sandbox"),
    );
    let dir = tempfile::tempdir().expect("tempdir");
    let config = Config::parse(&text, &dir.path().join("muster.sandbox.toml"), dir.path())
        .unwrap_or_else(|e| panic!("{e}\n{text}"));
    let flow = config.flow("lucca-to-cards").expect("flow");
    assert_eq!(
        (flow.source.as_str(), flow.target.as_str()),
        ("lucca", "cards")
    );
}

/// `muster check` of a Cards connection: a wrong token is `unauthorized` naming the slot, a
/// tenant the token does not open is `forbidden` naming the `tenant` setting; neither
/// message carries the token.
#[test]
fn cards_check_names_what_to_fix() {
    let cards = CardsSim::start(CardsOptions::default()).expect("start cards");
    let dir = tempfile::tempdir().expect("tempdir");
    let check = |tenant: &str, token: &str| {
        std::fs::write(dir.path().join("cards.token"), token).expect("token");
        let text = format!(
            "[tenant]\nname = \"t\"\ntimezone = \"UTC\"\nstate = \"s.db\"\ncache = \"{}\"\n\n\
             [connections.cards]\nplugin = \"cards\"\n\
             settings = {{ base_url = \"{}\", tenant = \"{tenant}\" }}\n\
             secret = {{ file = \"cards.token\" }}\nallow_loopback = true\n",
            cache_dir().display(),
            cards.base_url()
        );
        let config = Config::parse(&text, &dir.path().join("m.toml"), dir.path()).expect("parse");
        let host = Host::new(&config).expect("host");
        let mut plugin = host
            .connect(config.connection("cards").expect("conn"))
            .expect("connect");
        plugin.check().map_err(|e| e.to_string())
    };
    assert_eq!(check(cards.tenant(), cards.token()), Ok(()));
    let wrong_token = check(cards.tenant(), "not-the-token").expect_err("401");
    assert!(wrong_token.contains("slot `api-token`"), "{wrong_token}");
    assert!(!wrong_token.contains(cards.token()));
    let wrong_tenant = check("someone-else", cards.token()).expect_err("403");
    assert!(wrong_tenant.contains("setting `tenant`"), "{wrong_tenant}");
    assert!(!wrong_tenant.contains(cards.token()));
}

/// A Cards user list cut short (half a page, the total unchanged) fails the run before
/// anything is written: the missing users are never taken for absent and created again.
#[test]
fn a_cut_short_cards_page_fails_the_run_and_writes_nothing() {
    let tenant = Tenant::generate(SEED, 30);
    let want = expected(&tenant);
    let mut space = Space::new();
    for (id, mail) in want.importable.iter().take(4) {
        space.add_user(CardsUser::new("Already", id, mail));
    }
    // Request 1 is the first page of users (the target is read first).
    let faults = vec![Fault::new(1, FaultKind::TruncatedPage)];
    let mut w = World::with_faults(tenant, space, FLOW, config_text, faults);
    let mode = Mode::Sync {
        approve_held: false,
    };
    let err = w
        .try_run(mode, None)
        .expect_err("a partial read must fail the run");
    assert!(err.to_string().contains("refusing a partial read"), "{err}");
    assert_eq!(w.cards.writes(), 0);
    assert_eq!(w.cards.space().users.len(), 4);
}

const WRITE_BACK: &str = "cards-to-lucca";
/// People whose training statistics the write-back carries.
const STATS_PEOPLE: usize = 500;

/// Both directions, as `docs/config.md` shows them: Lucca → Cards, and the statistics back
/// into Lucca's `e_formation` rows. One `cards` connection plays both roles (a target for
/// people and groups; `feed = "statistics"` makes its read the statistics feed), so the
/// write-back can match people through the Lucca → Cards flow's links.
fn both_ways_config_text(lucca: &LuccaSim, cards: &CardsSim) -> String {
    let base = config_text(lucca, cards)
        .replace(
            &format!("page_size = {LUCCA_PAGE} }}"),
            &format!(
                "page_size = {LUCCA_PAGE}, custom_fields = \"e_formation\", \
                 compound_fields = \"e_formation:e_title|e_link|e_progress|e_score|e_last_completion_date\" }}"
            ),
        )
        .replace(
            "connection_mode = \"sso\" }",
            "connection_mode = \"sso\", feed = \"statistics\" }",
        );
    format!(
        r#"{base}
[flows.{WRITE_BACK}]
source = "cards"
target = "lucca"
schedule = "daily 01:00"
actions = ["link", "update"]
fields = ["custom:e_formation"]
correlation = ["links:{FLOW}", "work_email"]
row_keys = {{ e_formation = "e_title" }}
options = {{ sync_groups = false }}
mapping = [{{ default = {{ field = "start_date", value = "2000-01-01" }} }}]
"#
    )
}

/// The steps of a run that change the target (no skip, conflict or link).
fn changes(report: &RunReport) -> Vec<&muster_core::Step> {
    report
        .steps
        .iter()
        .filter(|s| !matches!(s.kind, ActionKind::Skip | ActionKind::Conflict))
        .collect()
}

/// Lucca's non-GET requests since the log was cleared.
fn lucca_writes(lucca: &LuccaSim) -> Vec<String> {
    let log = lucca.request_log();
    log.records
        .iter()
        .filter(|r| r.method != "GET" && r.status < 400)
        .map(|r| format!("{} {}", r.method, r.url))
        .collect()
}

/// `e_formation` rows of Lucca user `id`, title → (occurrence id, score).
fn lucca_rows(lucca: &LuccaSim, id: &str) -> BTreeMap<String, (u64, Value)> {
    let id: u64 = id.parse().expect("numeric Lucca id");
    let tenant = lucca.tenant();
    let user = tenant.users.iter().find(|u| u.id == id).expect("user");
    user.extended
        .get("e_formation")
        .into_iter()
        .flatten()
        .map(|o| {
            let title = o.value["e_title"].as_str().unwrap_or_default().to_string();
            (title, (o.id, o.value["e_score"].clone()))
        })
        .collect()
}

/// Cards both ways with the real `cards` plugin in both roles (issue 14, item 5): import all
/// into Cards, then the training statistics of 500 people written back into Lucca, people
/// matched through the import's links (one person's Cards email no longer equals Lucca's),
/// rows HR made by hand left alone, a changed score updating one row, and a second run of
/// each flow writing nothing. Lucca's and Cards' rate limits are on.
#[test]
fn cards_both_ways_statistics_for_500_people_land_in_lucca() {
    let tenant = Tenant::generate(SEED, 700);
    let want = expected(&tenant);
    assert!(want.importable.len() > STATS_PEOPLE, "tenant too small");
    let mut w = World::new(tenant, Space::new(), FLOW, both_ways_config_text);
    w.sync(None);
    let links = w.links();
    assert_eq!(links.len(), want.importable.len());

    // Statistics for 500 imported people; the first one changed their e-mail in Cards,
    // so only the import's link says who they are in Lucca.
    let chosen: Vec<(&String, &String)> = want.importable.iter().take(STATS_PEOPLE).collect();
    let (moved_lucca, _) = chosen[0];
    let moved_cards = links[moved_lucca];
    w.cards.with_space(|s| {
        if let Some(u) = s.users.get_mut(&moved_cards) {
            u.email = Some("renamed.in.cards@partner.example".into());
        }
    });
    let hand_made: BTreeMap<String, Vec<String>> = chosen
        .iter()
        .map(|(id, _)| {
            (
                (*id).clone(),
                lucca_rows(&w.lucca, id).into_keys().collect(),
            )
        })
        .collect();
    w.cards.with_space(|s| {
        s.stats = chosen
            .iter()
            .enumerate()
            .flat_map(|(i, (_, mail))| {
                let mail = if i == 0 {
                    "renamed.in.cards@partner.example"
                } else {
                    mail.as_str()
                };
                [
                    stat(mail, "Cards · Sécurité 2026", Some("2026-05-30 09:10:00")),
                    stat(mail, "Cards · RGPD", None),
                ]
            })
            .collect();
    });

    w.flow = WRITE_BACK;
    w.lucca.clear_request_log();
    let first = w.sync(None);
    let updates = ids(&first, ActionKind::Update, "owned_fields_differ");
    assert_eq!(updates.len(), STATS_PEOPLE, "{}", first.plan_text);
    let writes = lucca_writes(&w.lucca);
    assert_eq!(writes.len(), STATS_PEOPLE, "one PUT per person: {writes:?}");
    for (id, _) in &chosen {
        let rows = lucca_rows(&w.lucca, id);
        assert!(rows.contains_key("Cards · Sécurité 2026"), "{id}: {rows:?}");
        assert!(rows.contains_key("Cards · RGPD"), "{id}: {rows:?}");
        for title in &hand_made[*id] {
            assert!(rows.contains_key(title), "{id}: hand-made row {title} kept");
        }
    }

    // Second run of each flow: nothing to write anywhere.
    w.lucca.clear_request_log();
    let again = w.sync(None);
    assert!(changes(&again).is_empty(), "{}", again.plan_text);
    assert!(lucca_writes(&w.lucca).is_empty());
    w.flow = FLOW;
    w.cards.with_space(|s| {
        if let Some(u) = s.users.get_mut(&moved_cards) {
            u.email = Some(want.importable[moved_lucca].clone());
        }
    });
    let before = w.cards.writes();
    let resync = w.sync(None);
    assert!(changes(&resync).is_empty(), "{}", resync.plan_text);
    assert_eq!(w.cards.writes(), before);

    // A changed score: one PUT, for that person, keeping the row's occurrence id.
    let (changed_id, changed_mail) = chosen[1];
    let old = lucca_rows(&w.lucca, changed_id)["Cards · RGPD"].clone();
    w.cards.with_space(|s| {
        for st in s.stats.iter_mut() {
            if &st.user_email == changed_mail && st.training_title == "Cards · RGPD" {
                st.score = 97;
            }
        }
    });
    w.flow = WRITE_BACK;
    w.lucca.clear_request_log();
    let changed = w.sync(None);
    assert_eq!(changes(&changed).len(), 1, "{}", changed.plan_text);
    let writes = lucca_writes(&w.lucca);
    assert_eq!(writes.len(), 1, "{writes:?}");
    assert!(
        writes[0].contains(&format!("/api/v3/users/{changed_id}")),
        "{writes:?}"
    );
    let now = lucca_rows(&w.lucca, changed_id)["Cards · RGPD"].clone();
    assert_eq!(now.0, old.0, "the same occurrence");
    assert_eq!(now.1.as_f64(), Some(97.0), "{now:?}");
}
