//! The flagship flow end to end: a generated 1,000-person Lucca tenant synced
//! into a Leapsome organisation, through the real `lucca` and `leapsome`
//! `.wasm` plugins, real HTTP to both simulators on loopback, the real
//! outbound client and a real SQLite store — driven through the library
//! (`Config` → `Host::connect` → `engine::run`), so every planned step can be
//! asserted, not only the exit code.
//!
//! The expectations are computed from the tenant's data (who has started,
//! who has left, who has a unique work email, which departments exist), never
//! hard-coded counts: change the generator and the test still says exactly
//! what the flow must do.
//!
//! The story:
//! 1. **Initial sync** — accounts for everyone active with a usable email, one
//!    team per department, managers, memberships; skips and conflicts for the
//!    rest; an invitation per created account (`invite_on_create`).
//! 2. **A leaver** (the person later rehired) — one deactivation.
//! 3. **The day's changes** — a hire, a leaver whose end date has passed, the
//!    rehire (planned first with reactivation off: a `reactivation_disabled`
//!    skip), a department rename, a manager change, a team created by hand in
//!    Leapsome, a hand edit of a synced attribute in Leapsome, a hire whose
//!    email an unlinked Leapsome account already uses, a person without a
//!    start date and a future hire. The plan must be exactly those actions;
//!    the manual team is left alone; only the new account is invited.
//! 4. **A resync** plans nothing and sends Leapsome zero writes.

use std::collections::{BTreeMap, BTreeSet};
use std::path::PathBuf;

use muster::config::Config;
use muster::connect::{Host, RunFlowError};
use muster::engine::{Mode, Outcome, RunOptions, RunReport};
use muster::store::{JournalState, Store, Trigger};
use muster_core::{ActionKind, Date, Field, Step};
use muster_sandbox::{
    LeapsomeOptions, LeapsomeSim, LuccaOptions, LuccaSim, ScimUser, Team, Tenant, User,
};

const FLOW: &str = "people";
/// The sandbox tenants' "today" (their simulated epoch).
const TODAY: &str = "2026-06-01";
/// The generator's seed and size.
const SEED: u64 = 2026;
const PEOPLE: usize = 1_000;
/// The reason code of a leaver's deactivation: the Lucca connector also
/// marks such a person inactive, but the planner names the end date first.
const LEFT: &str = "end_date_passed";

fn cache_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("muster-plugin-cache")
}

fn today() -> Date {
    Date::parse(TODAY).expect("today")
}

/// Both simulators, the config files' directory, one host and the store.
struct World {
    lucca: LuccaSim,
    leapsome: LeapsomeSim,
    dir: tempfile::TempDir,
    host: Host,
    store: Store,
    /// The Leapsome connection's `invite_on_create` setting.
    invite: bool,
}

impl World {
    /// Simulator rate limits are off: the connectors' own tests cover them,
    /// and `examples/lucca_leapsome_10k.rs` measures a sync under them.
    fn new(people: usize, invite: bool) -> World {
        let lucca = LuccaSim::start(
            Tenant::generate(SEED, people),
            LuccaOptions {
                rate_limit: None,
                ..LuccaOptions::default()
            },
        )
        .expect("start lucca");
        let leapsome = LeapsomeSim::start(LeapsomeOptions {
            rate_limit: None,
            ..LeapsomeOptions::default()
        })
        .expect("start leapsome");
        let dir = tempfile::tempdir().expect("tempdir");
        std::fs::write(dir.path().join("lucca.key"), lucca.api_key()).expect("key");
        std::fs::write(dir.path().join("leapsome.token"), leapsome.token()).expect("token");
        let config = parse(&dir, &lucca, &leapsome, invite, true);
        World {
            host: Host::new(&config).expect("host"),
            store: Store::open(&config.tenant.state).expect("store"),
            lucca,
            leapsome,
            dir,
            invite,
        }
    }

    /// The config, with reactivation on or off.
    fn config(&self, reactivate: bool) -> Config {
        parse(
            &self.dir,
            &self.lucca,
            &self.leapsome,
            self.invite,
            reactivate,
        )
    }

    /// One engine run of the flow, as `muster sync` / `muster plan` do it:
    /// a fresh plugin pair from the config's connections, and the flow's
    /// policy fitted to what the Leapsome plugin declares it stores
    /// (`Host::connect_flow`: the default owned fields narrowed to those).
    fn run(&mut self, config: &Config, mode: Mode) -> RunReport {
        self.run_with(config, mode, None)
    }

    /// [`World::run`], for one source record when `only` names it (as
    /// `muster sync --only ID` and a webhook's run).
    fn run_with(&mut self, config: &Config, mode: Mode, only: Option<String>) -> RunReport {
        self.try_run(config, mode, only).expect("run")
    }

    /// [`World::run_with`], returning the engine's error instead of failing.
    fn try_run(
        &mut self,
        config: &Config,
        mode: Mode,
        only: Option<String>,
    ) -> Result<RunReport, RunFlowError> {
        let flow = config.flow(FLOW).expect("flow");
        let options = RunOptions {
            trigger: Trigger::Manual,
            only,
            today: today(),
            approver: "test".into(),
        };
        self.host
            .run_flow(config, &mut self.store, flow, mode, &options)
    }

    /// A sync with reactivation on; every call must succeed.
    fn sync(&mut self) -> RunReport {
        let config = self.config(true);
        let report = self.run(
            &config,
            Mode::Sync {
                approve_held: false,
            },
        );
        assert_eq!(report.failed(), 0, "{:#?}", report.applied.failures);
        assert!(report.applied.aborted.is_none(), "{:?}", report.applied);
        report
    }

    /// Source id → Leapsome account id, from the store's links.
    fn accounts(&self) -> BTreeMap<String, String> {
        self.store
            .links(FLOW)
            .expect("links")
            .into_iter()
            .map(|l| (l.source_id, l.target_id))
            .collect()
    }

    /// Department id → Leapsome team id, from the store's group links.
    fn teams(&self) -> BTreeMap<String, String> {
        self.store
            .group_links(FLOW)
            .expect("group links")
            .into_iter()
            .map(|l| (l.source_id, l.target_id))
            .collect()
    }

    fn account(&self, id: &str) -> ScimUser {
        self.leapsome
            .directory()
            .user(id)
            .cloned()
            .unwrap_or_else(|| panic!("no Leapsome account {id}"))
    }

    fn team(&self, id: &str) -> Team {
        self.leapsome
            .directory()
            .team(id)
            .cloned()
            .unwrap_or_else(|| panic!("no Leapsome team {id}"))
    }
}

/// Writes and parses the config: `invite_on_create` is the flow's option
/// (docs/config.md); `Host::connect_target` passes it to the Leapsome plugin,
/// which declares the setting.
fn parse(
    dir: &tempfile::TempDir,
    lucca: &LuccaSim,
    leapsome: &LeapsomeSim,
    invite: bool,
    reactivate: bool,
) -> Config {
    let text = format!(
        r#"[tenant]
name = "lucca-to-leapsome"
timezone = "Europe/Paris"
state = "state.db"
cache = "{cache}"

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
options = {{ sync_groups = true, reactivate = {reactivate}, invite_on_create = {invite} }}
"#,
        cache = cache_dir().display(),
        lucca = lucca.base_url(),
        leapsome = leapsome.base_url(),
    );
    let path = dir.path().join("muster.toml");
    std::fs::write(&path, &text).expect("config");
    Config::parse(&text, &path, dir.path()).expect("config parses")
}

/// Where a Lucca user stands on [`TODAY`], as the flow must judge it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Life {
    Active,
    NoStart,
    NotYet,
    Left,
}

fn day(lucca_date: &str) -> &str {
    lucca_date.get(..10).unwrap_or(lucca_date)
}

fn life(u: &User) -> Life {
    if u.dt_contract_end.as_deref().is_some_and(|e| day(e) < TODAY) {
        return Life::Left;
    }
    match u.dt_contract_start.as_deref() {
        None => Life::NoStart,
        Some(s) if day(s) > TODAY => Life::NotYet,
        Some(_) => Life::Active,
    }
}

fn mail_key(mail: &str) -> String {
    mail.trim().to_lowercase()
}

/// A step as one comparable line: kind, ids, reason, changed fields, members.
fn line(s: &Step) -> String {
    let fields: Vec<String> = s.changes.iter().map(|c| c.field.to_string()).collect();
    let mut members = s.members.clone();
    members.sort();
    format!(
        "{:?} src={} tgt={} reason={} changes=[{}] members=[{}]",
        s.kind,
        s.source_id.as_deref().unwrap_or("-"),
        s.target_id.as_deref().unwrap_or("-"),
        s.reason,
        fields.join(","),
        members.join(","),
    )
}

/// Builds expected lines.
fn step(kind: ActionKind, src: Option<&str>, tgt: Option<&str>, reason: &str) -> Expected {
    Expected {
        kind,
        src: src.map(str::to_owned),
        tgt: tgt.map(str::to_owned),
        reason: reason.into(),
        changes: Vec::new(),
        members: Vec::new(),
    }
}

#[derive(Clone)]
struct Expected {
    kind: ActionKind,
    src: Option<String>,
    tgt: Option<String>,
    reason: String,
    changes: Vec<&'static str>,
    members: Vec<String>,
}

impl Expected {
    fn changes(mut self, fields: &[&'static str]) -> Expected {
        self.changes = fields.to_vec();
        self
    }

    fn members(mut self, members: impl IntoIterator<Item = String>) -> Expected {
        self.members = members.into_iter().collect();
        self.members.sort();
        self
    }

    fn line(&self) -> String {
        format!(
            "{:?} src={} tgt={} reason={} changes=[{}] members=[{}]",
            self.kind,
            self.src.as_deref().unwrap_or("-"),
            self.tgt.as_deref().unwrap_or("-"),
            self.reason,
            self.changes.join(","),
            self.members.join(","),
        )
    }
}

fn is_report(s: &Step) -> bool {
    matches!(s.kind, ActionKind::Skip | ActionKind::Conflict)
}

/// The plan's lines, sorted (the plan's own order is by phase and id; the
/// comparison is of the multiset, which is what "exactly these actions"
/// means).
fn lines<'s>(steps: impl IntoIterator<Item = &'s Step>) -> Vec<String> {
    let mut out: Vec<String> = steps.into_iter().map(line).collect();
    out.sort();
    out
}

fn expected_lines(expected: &[Expected]) -> Vec<String> {
    let mut out: Vec<String> = expected.iter().map(Expected::line).collect();
    out.sort();
    out
}

/// Asserts two sorted line lists are equal, showing only the differences.
#[track_caller]
fn assert_lines(actual: &[String], expected: &[String], what: &str) {
    let a: BTreeSet<&String> = actual.iter().collect();
    let e: BTreeSet<&String> = expected.iter().collect();
    let extra: Vec<_> = a.difference(&e).collect();
    let missing: Vec<_> = e.difference(&a).collect();
    assert!(
        extra.is_empty() && missing.is_empty() && actual.len() == expected.len(),
        "{what}: {} planned, {} expected\nunexpected: {extra:#?}\nmissing: {missing:#?}",
        actual.len(),
        expected.len()
    );
}

/// What the first sync must do, from the tenant alone.
struct Initial {
    /// Source ids that get an account.
    created: BTreeSet<String>,
    steps: Vec<Expected>,
}

fn initial(t: &Tenant) -> Initial {
    let mut mails: BTreeMap<String, usize> = BTreeMap::new();
    for u in &t.users {
        if let Some(m) = &u.mail {
            *mails.entry(mail_key(m)).or_default() += 1;
        }
    }
    let mut steps = Vec::new();
    let mut created = BTreeSet::new();
    for u in &t.users {
        let id = u.id.to_string();
        let src = Some(id.as_str());
        match life(u) {
            Life::Left => {}
            Life::NoStart => steps.push(step(ActionKind::Skip, src, None, "no_start_date")),
            Life::NotYet => steps.push(step(ActionKind::Skip, src, None, "not_started_yet")),
            Life::Active => match &u.mail {
                None => steps.push(step(ActionKind::Skip, src, None, "missing_field")),
                Some(m) if mails[&mail_key(m)] > 1 => {
                    steps.push(step(ActionKind::Conflict, src, None, "duplicate_in_source"))
                }
                Some(_) => {
                    created.insert(id.clone());
                    steps.push(step(ActionKind::Create, src, None, "new_person"));
                }
            },
        }
    }
    for u in &t.users {
        let id = u.id.to_string();
        if !created.contains(&id) {
            continue;
        }
        if let Some(m) = u.manager_id {
            if created.contains(&m.to_string()) {
                steps.push(
                    step(ActionKind::SetManager, Some(&id), None, "manager_changed")
                        .changes(&["manager_id"]),
                );
            } else {
                steps.push(step(
                    ActionKind::Skip,
                    Some(&id),
                    None,
                    "manager_out_of_scope",
                ));
            }
        }
    }
    for d in &t.departments {
        let dept = d.id.to_string();
        steps.push(step(
            ActionKind::CreateGroup,
            Some(&dept),
            None,
            "new_department",
        ));
        let members: Vec<String> = t
            .users
            .iter()
            .filter(|u| u.department_id == Some(d.id) && created.contains(&u.id.to_string()))
            .map(|u| u.id.to_string())
            .collect();
        if !members.is_empty() {
            steps.push(
                step(
                    ActionKind::AddMembers,
                    Some(&dept),
                    None,
                    "membership_changed",
                )
                .members(members),
            );
        }
    }
    Initial { created, steps }
}

/// A new Lucca user in `boss`'s department, reporting to `boss`.
fn new_user(t: &mut Tenant, boss: &User, first: &str, number: &str) -> User {
    let id = t.take_user_id();
    let last = "Nouveau";
    User {
        id,
        first_name: first.into(),
        last_name: last.into(),
        login: format!("{}{}", first.to_lowercase(), id),
        mail: Some(format!(
            "{}.{}{}@sandbox.example",
            first.to_lowercase(),
            "nouveau",
            id
        )),
        personal_email: None,
        birth_date: Some("1990-04-12T00:00:00".into()),
        employee_number: Some(number.into()),
        job_title: Some("Designer".into()),
        gender: "Female".into(),
        dt_contract_start: Some("2026-05-15T00:00:00".into()),
        dt_contract_end: None,
        direct_line: None,
        professional_mobile: None,
        personal_mobile: None,
        legal_entity_id: Some(1),
        role_principal_id: Some(1),
        modified_at: "2026-06-01T08:00:00".into(),
        department_id: boss.department_id,
        manager_id: Some(boss.id),
        extended: BTreeMap::new(),
    }
}

#[test]
fn lucca_to_leapsome_end_to_end() {
    let mut w = World::new(PEOPLE, true);
    let tenant = w.lucca.tenant();
    let by_id: BTreeMap<String, &User> =
        tenant.users.iter().map(|u| (u.id.to_string(), u)).collect();
    // The flow lists no `fields`: it owns what Leapsome declares it stores, so not the phone,
    // contract type or legal entity Lucca has and Leapsome drops (owning them, every sync
    // would plan the same updates and step 4 would fail).
    let config = w.config(true);
    let owned = w
        .host
        .flow_policy(&config, config.flow(FLOW).expect("flow"))
        .expect("the flow fits Leapsome")
        .owned;
    for dropped in [Field::Phone, Field::ContractType, Field::LegalEntityId] {
        assert!(!owned.has(dropped), "{} is owned", dropped.name());
    }
    assert!(owned.has(Field::JobTitle) && owned.has(Field::BirthDate));

    // ── 1. The initial sync ────────────────────────────────────────────────
    let expect = initial(&tenant);
    assert!(
        expect.created.len() > PEOPLE * 3 / 4,
        "the generated tenant should mostly be creatable: {}",
        expect.created.len()
    );
    let first = w.sync();
    assert_eq!(first.outcome, Outcome::Applied);
    assert_lines(
        &lines(&first.steps),
        &expected_lines(&expect.steps),
        "initial sync",
    );
    let accounts = w.accounts();
    let linked: BTreeSet<String> = accounts.keys().cloned().collect();
    assert_eq!(linked, expect.created, "every created account is linked");
    let users = w.leapsome.users();
    assert_eq!(users.len(), expect.created.len());
    for u in &users {
        let source = u.external_id.as_deref().expect("externalId = source id");
        assert_eq!(accounts.get(source), Some(&u.id), "{source}");
        let person = by_id[source];
        assert_eq!(Some(&u.user_name), person.mail.as_ref());
        assert!(u.active);
    }
    let teams = w.teams();
    assert_eq!(
        teams.len(),
        tenant.departments.len(),
        "one team per department"
    );
    for d in &tenant.departments {
        let team = w.team(&teams[&d.id.to_string()]);
        assert_eq!(team.display_name, d.name);
        let mut members: Vec<String> = tenant
            .users
            .iter()
            .filter(|u| u.department_id == Some(d.id))
            .filter_map(|u| accounts.get(&u.id.to_string()).cloned())
            .collect();
        members.sort();
        let mut actual = team.members.clone();
        actual.sort();
        assert_eq!(actual, members, "members of {}", d.name);
    }
    // Managers point at the manager's account.
    for (source, account) in &accounts {
        let want = by_id[source]
            .manager_id
            .and_then(|m| accounts.get(&m.to_string()));
        assert_eq!(
            w.account(account).manager.as_ref(),
            want,
            "manager of {source}"
        );
    }
    // Leapsome's POST keeps core attributes only: every created account must also have had
    // its enterprise attributes stored by the create's PATCH — read from the simulator's
    // state, not from what the connector sent.
    let mut stored = BTreeMap::<&str, usize>::new();
    for (source, account) in &accounts {
        let person = by_id[source];
        let u = w.account(account);
        let want_gender = match person.gender.as_str() {
            "Male" => Some("male"),
            "Female" => Some("female"),
            "Misc" => Some("diverse"),
            _ => None,
        };
        let department = person
            .department_id
            .and_then(|d| tenant.departments.iter().find(|x| x.id == d))
            .map(|d| d.name.clone());
        let facts = [
            (
                "employee number",
                u.employee_number.clone(),
                person.employee_number.clone(),
            ),
            (
                "start date",
                u.start_date.clone(),
                person
                    .dt_contract_start
                    .as_deref()
                    .map(|d| day(d).to_string()),
            ),
            (
                "birthday",
                u.birthday.clone(),
                person.birth_date.as_deref().map(|d| day(d).to_string()),
            ),
            ("gender", u.gender.clone(), want_gender.map(String::from)),
            ("department", u.department.clone(), department),
        ];
        for (what, actual, want) in facts {
            assert_eq!(actual, want, "{what} of {source}");
            *stored.entry(what).or_default() += usize::from(actual.is_some());
        }
    }
    for what in [
        "employee number",
        "start date",
        "birthday",
        "gender",
        "department",
    ] {
        assert!(
            stored[what] > accounts.len() / 2,
            "only {} of {} accounts have a {what}",
            stored[what],
            accounts.len()
        );
    }
    // One invitation per new account, and only for those.
    let invited: BTreeSet<String> = w
        .leapsome
        .invitations()
        .into_iter()
        .map(|i| i.user_id)
        .collect();
    let created_accounts: BTreeSet<String> = accounts.values().cloned().collect();
    assert_eq!(invited, created_accounts);
    assert_eq!(w.leapsome.invitations().len(), created_accounts.len());
    let reports: Vec<String> = lines(first.steps.iter().filter(|s| is_report(s)));

    // The people the story is about, chosen from the data: plain employees
    // (nobody reports to them) whose manager has an account, and managers.
    let managers: BTreeSet<u64> = tenant.users.iter().filter_map(|u| u.manager_id).collect();
    let mut plain = tenant.users.iter().filter(|u| {
        let id = u.id.to_string();
        expect.created.contains(&id)
            && !managers.contains(&u.id)
            && u.dt_contract_end.is_none()
            && u.job_title.is_some()
            && u.manager_id
                .is_some_and(|m| expect.created.contains(&m.to_string()))
    });
    let mut pick = || plain.next().expect("enough plain employees").clone();
    let (rehired, leaver, edited, moved, bystander) = (pick(), pick(), pick(), pick(), pick());
    let heads: Vec<&User> = tenant
        .users
        .iter()
        .filter(|u| {
            managers.contains(&u.id)
                && expect.created.contains(&u.id.to_string())
                && u.dt_contract_end.is_none()
        })
        .collect();
    let boss = heads[0].clone();
    let new_boss = heads
        .iter()
        .find(|h| Some(h.id) != moved.manager_id)
        .expect("another manager")
        .to_owned()
        .clone();
    let acct = |u: &User| accounts[&u.id.to_string()].clone();
    let team_of = |u: &User| teams[&u.department_id.expect("department").to_string()].clone();

    // ── 2. The person later rehired leaves ────────────────────────────────
    w.lucca.with_tenant(|t| {
        t.user_mut(rehired.id).expect("rehired").dt_contract_end =
            Some("2026-05-20T00:00:00".into());
    });
    let leaving = w.sync();
    let rid = rehired.id.to_string();
    let mut expected = vec![
        step(
            ActionKind::Deactivate,
            Some(&rid),
            Some(&acct(&rehired)),
            LEFT,
        ),
        step(
            ActionKind::RemoveMembers,
            None,
            Some(&team_of(&rehired)),
            "membership_changed",
        )
        .members([acct(&rehired)]),
    ];
    let mut expected_lines_2 = expected_lines(&expected);
    expected_lines_2.extend(reports.iter().cloned());
    expected_lines_2.sort();
    assert_lines(
        &lines(&leaving.steps),
        &expected_lines_2,
        "the leaver's sync",
    );
    assert!(!w.account(&acct(&rehired)).active);
    expected.clear();

    // ── 3. The day's changes ───────────────────────────────────────────────
    let dept_renamed = tenant.departments.last().expect("departments").clone();
    let (hire, adopted, no_start, future) = w.lucca.with_tenant(|t| {
        let hire = new_user(t, &boss, "Nora", "90001");
        let mut adopted = new_user(t, &boss, "Oscar", "90002");
        adopted.dt_contract_start = Some("2026-05-20T00:00:00".into());
        let mut no_start = new_user(t, &boss, "Paula", "90003");
        no_start.dt_contract_start = None;
        let mut future = new_user(t, &boss, "Quentin", "90004");
        future.dt_contract_start = Some("2026-07-01T00:00:00".into());
        for u in [&hire, &adopted, &no_start, &future] {
            t.users.push(u.clone());
        }
        // A leaver whose end date has passed.
        t.user_mut(leaver.id).expect("leaver").dt_contract_end = Some("2026-05-25T00:00:00".into());
        // The rehire: a new contract, open-ended.
        let r = t.user_mut(rehired.id).expect("rehired");
        r.dt_contract_start = Some("2026-05-28T00:00:00".into());
        r.dt_contract_end = None;
        // A manager change.
        t.user_mut(moved.id).expect("moved").manager_id = Some(new_boss.id);
        // A department rename.
        let d = t
            .departments
            .iter_mut()
            .find(|d| d.id == dept_renamed.id)
            .expect("department");
        d.name = format!("{} (renamed)", d.name);
        (hire, adopted, no_start, future)
    });
    let adopted_mail = adopted.mail.clone().expect("mail");
    let (manual_team, manual_account) = w.leapsome.with_state(|d| {
        // A team made by hand, with a synced member and the leaver.
        let team = d.add_team("Book club", &[acct(&bystander), acct(&leaver)]);
        // A hand edit of a synced attribute.
        d.user_mut(&acct(&edited)).expect("edited").title = Some("Chief Vibes Officer".into());
        // An account made by hand with the email of a new hire.
        let account = d.add_user(ScimUser {
            given_name: Some("Oscar".into()),
            ..ScimUser::new("", &adopted_mail)
        });
        // An account made by hand for someone Lucca does not know, in the manual team.
        let coach = d.add_user(ScimUser {
            given_name: Some("Coach".into()),
            title: Some("External coach".into()),
            ..ScimUser::new("", "coach@sandbox.example")
        });
        if let Some(t) = d.teams.iter_mut().find(|t| t.id == team) {
            t.members.push(coach.clone());
        }
        (team, account)
    });
    let manual_team_before = w.team(&manual_team);
    let coach_before = w
        .leapsome
        .user_by_email("coach@sandbox.example")
        .expect("the coach's account");

    let ids = |u: &User| u.id.to_string();
    let (h, a, r, l, e, m) = (
        ids(&hire),
        ids(&adopted),
        ids(&rehired),
        ids(&leaver),
        ids(&edited),
        ids(&moved),
    );
    let mut adds: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for u in [&hire, &adopted, &rehired] {
        adds.entry(team_of(u)).or_default().push(ids(u));
    }
    let mut with_reactivation = vec![
        step(
            ActionKind::RenameGroup,
            Some(&dept_renamed.id.to_string()),
            Some(&teams[&dept_renamed.id.to_string()]),
            "department_renamed",
        )
        .changes(&["name"]),
        step(ActionKind::Create, Some(&h), None, "new_person"),
        step(ActionKind::Link, Some(&a), Some(&manual_account), "matched"),
        step(
            ActionKind::Update,
            Some(&a),
            Some(&manual_account),
            "owned_fields_differ",
        )
        .changes(&[
            "employee_number",
            "family_name",
            "birth_date",
            "start_date",
            "job_title",
            "gender",
        ]),
        step(
            ActionKind::Update,
            Some(&e),
            Some(&acct(&edited)),
            "owned_fields_differ",
        )
        .changes(&["job_title"]),
        step(ActionKind::SetManager, Some(&h), None, "manager_changed").changes(&["manager_id"]),
        step(
            ActionKind::SetManager,
            Some(&a),
            Some(&manual_account),
            "manager_changed",
        )
        .changes(&["manager_id"]),
        step(
            ActionKind::SetManager,
            Some(&m),
            Some(&acct(&moved)),
            "manager_changed",
        )
        .changes(&["manager_id"]),
        step(
            ActionKind::RemoveMembers,
            None,
            Some(&team_of(&leaver)),
            "membership_changed",
        )
        .members([acct(&leaver)]),
        step(ActionKind::Deactivate, Some(&l), Some(&acct(&leaver)), LEFT),
        step(
            ActionKind::Skip,
            Some(&ids(&no_start)),
            None,
            "no_start_date",
        ),
        step(
            ActionKind::Skip,
            Some(&ids(&future)),
            None,
            "not_started_yet",
        ),
    ];
    // Reactivation off: the same plan without the rehire's reactivation,
    // update and membership, and a skip saying why.
    let mut without = with_reactivation.clone();
    without.push(step(
        ActionKind::Skip,
        Some(&r),
        None,
        "reactivation_disabled",
    ));
    for (team, members) in &adds {
        let rest: Vec<String> = members.iter().filter(|x| **x != r).cloned().collect();
        if !rest.is_empty() {
            without.push(
                step(
                    ActionKind::AddMembers,
                    None,
                    Some(team),
                    "membership_changed",
                )
                .members(rest),
            );
        }
        with_reactivation.push(
            step(
                ActionKind::AddMembers,
                None,
                Some(team),
                "membership_changed",
            )
            .members(members.clone()),
        );
    }
    with_reactivation.push(step(
        ActionKind::Reactivate,
        Some(&r),
        Some(&acct(&rehired)),
        "active_again",
    ));
    with_reactivation.push(
        step(
            ActionKind::Update,
            Some(&r),
            Some(&acct(&rehired)),
            "owned_fields_differ",
        )
        .changes(&["start_date"]),
    );
    let plus_reports = |expected: &[Expected]| {
        let mut out = expected_lines(expected);
        out.extend(reports.iter().cloned());
        out.sort();
        out
    };

    // 3a. Planned with reactivation off: a skip, and nothing written.
    let writes = w.leapsome.request_counts().writes;
    let off = w.config(false);
    let planned = w.run(&off, Mode::Plan);
    assert_eq!(planned.outcome, Outcome::Planned);
    assert_lines(
        &lines(&planned.steps),
        &plus_reports(&without),
        "the plan with reactivation off",
    );
    let skip = planned
        .steps
        .iter()
        .find(|s| s.reason == "reactivation_disabled")
        .expect("skip");
    assert_eq!(skip.kind, ActionKind::Skip);
    assert_eq!(w.leapsome.request_counts().writes, writes, "a plan wrote");

    // 3b. The sync: exactly the expected actions.
    let invitations_before = w.leapsome.invitations().len();
    let second = w.sync();
    assert_eq!(second.outcome, Outcome::Applied);
    assert_lines(
        &lines(&second.steps),
        &plus_reports(&with_reactivation),
        "the second sync",
    );
    // The values behind the changes.
    let find = |kind: ActionKind, src: &str| {
        second
            .steps
            .iter()
            .find(|s| s.kind == kind && s.source_id.as_deref() == Some(src))
            .unwrap_or_else(|| panic!("no {kind:?} for {src}"))
            .clone()
    };
    let rename = find(ActionKind::RenameGroup, &dept_renamed.id.to_string());
    assert_eq!(
        rename.changes[0].new.as_ref().map(|v| v.to_string()),
        Some(format!("{:?}", format!("{} (renamed)", dept_renamed.name)))
    );
    let edit = find(ActionKind::Update, &e);
    assert_eq!(
        edit.changes[0].old.as_ref().map(|v| v.to_string()),
        Some("\"Chief Vibes Officer\"".into())
    );
    let manager = find(ActionKind::SetManager, &m);
    assert_eq!(
        manager.changes[0].new.as_ref().map(|v| v.to_string()),
        Some(format!("{:?}", acct(&new_boss)))
    );

    // The target afterwards.
    let accounts = w.accounts();
    assert!(
        !w.account(&acct(&leaver)).active,
        "the leaver is deactivated"
    );
    assert!(
        w.account(&acct(&rehired)).active,
        "the rehire is active again"
    );
    assert_eq!(
        w.account(&acct(&edited)).title,
        edited.job_title,
        "the hand edit is overwritten (the flow owns job_title)"
    );
    assert_eq!(
        w.account(&acct(&moved)).manager,
        Some(acct(&new_boss)),
        "the new manager"
    );
    assert_eq!(
        w.team(&teams[&dept_renamed.id.to_string()]).display_name,
        format!("{} (renamed)", dept_renamed.name)
    );
    assert_eq!(
        accounts.get(&a),
        Some(&manual_account),
        "adopted, not created"
    );
    assert_eq!(
        w.leapsome
            .users()
            .iter()
            .filter(|u| u.user_name.eq_ignore_ascii_case(&adopted_mail))
            .count(),
        1,
        "no second account for the adopted email"
    );
    let new_account = accounts.get(&h).expect("the hire has an account").clone();
    assert!(w.team(&team_of(&hire)).members.contains(&new_account));
    assert!(!w.team(&team_of(&leaver)).members.contains(&acct(&leaver)));
    assert!(!accounts.contains_key(&ids(&no_start)));
    assert!(!accounts.contains_key(&ids(&future)));
    assert_eq!(
        w.team(&manual_team),
        manual_team_before,
        "the manual team is untouched"
    );
    // Only the new account is invited: not the adopted one, not the rehire.
    let invitations = w.leapsome.invitations();
    let new_invitations: Vec<String> = invitations[invitations_before..]
        .iter()
        .map(|i| i.user_id.clone())
        .collect();
    assert_eq!(new_invitations, vec![new_account]);

    // ── 4. Nothing left to do ──────────────────────────────────────────────
    w.leapsome.clear_request_log();
    let third = w.sync();
    assert_eq!(third.outcome, Outcome::NoChanges, "{}", third.plan_text);
    assert!(third.steps.iter().all(is_report), "{}", third.plan_text);
    let mut final_reports = reports.clone();
    final_reports.extend(expected_lines(&[
        step(
            ActionKind::Skip,
            Some(&ids(&no_start)),
            None,
            "no_start_date",
        ),
        step(
            ActionKind::Skip,
            Some(&ids(&future)),
            None,
            "not_started_yet",
        ),
    ]));
    final_reports.sort();
    assert_lines(&lines(&third.steps), &final_reports, "the resync");
    let counts = w.leapsome.request_counts();
    assert_eq!(counts.writes, 0, "a no-change resync wrote to Leapsome");
    assert!(counts.reads > 0);
    assert_eq!(w.team(&manual_team), manual_team_before);
    assert_eq!(
        w.leapsome.user_by_email("coach@sandbox.example").as_ref(),
        Some(&coach_before),
        "a manual account is untouched"
    );
}

#[test]
fn no_invitation_without_invite_on_create() {
    let mut w = World::new(60, false);
    let report = w.sync();
    assert!(report.applied.counts.get("create").copied().unwrap_or(0) > 0);
    assert!(!w.leapsome.users().is_empty());
    assert!(w.leapsome.invitations().is_empty());
}

/// Team memberships reach Leapsome as `change-members` calls of at most what
/// the plugin declares (`max-members-per-change`, Leapsome's 100): one team
/// PATCH per call, while the counts, the journal and the team stay per member.
#[test]
fn memberships_go_to_leapsome_in_calls_of_at_most_its_max() {
    let mut w = World::new(260, false);
    // Everybody in one department: one team of about 250 members.
    let department = w.lucca.with_tenant(|t| {
        let d = t.departments[0].id;
        for u in &mut t.users {
            u.department_id = Some(d);
        }
        d
    });
    let config = w.config(true);
    let max = {
        let flow = config.flow(FLOW).expect("flow");
        let connected = w.host.connect_flow(&config, flow).expect("connect flow");
        connected.target.manifest().max_members_per_change as usize
    };
    assert_eq!(max, 100, "Leapsome takes at most 100 members per PATCH");
    let report = w.sync();
    let added = report
        .applied
        .counts
        .get("add_members")
        .copied()
        .unwrap_or(0) as usize;
    assert!(added > 2 * max, "{:?}", report.applied.counts);
    let team = w.team(&w.teams()[&department.to_string()]);
    assert_eq!(team.members.len(), added, "every member is in the team");
    let patches = w
        .leapsome
        .request_log()
        .records
        .iter()
        .filter(|r| r.method == "PATCH" && r.url.contains("/Groups/"))
        .count();
    assert_eq!(patches, added.div_ceil(max), "one PATCH per {max} members");
    // The journal stays exact per member: one entry each, all done.
    let run = &w.store.history(FLOW, 1).expect("history")[0];
    let entries: Vec<_> = run
        .journal
        .iter()
        .filter(|e| e.kind == ActionKind::AddMembers)
        .collect();
    assert_eq!(entries.len(), added);
    assert!(entries.iter().all(|e| e.step.members.len() == 1));
    assert!(
        entries.iter().all(|e| e.state == JournalState::Done),
        "{entries:#?}"
    );
}

/// `sync --only ID` (and a webhook's run) reads that person and their manager
/// from Lucca with `read-person`, and their accounts from Leapsome with
/// `read-account`, instead of every page of both; it changes that person
/// only, and nobody else is deactivated.
#[test]
fn a_single_record_run_reads_one_person_instead_of_every_page() {
    let mut w = World::new(250, false);
    w.sync();
    let tenant = w.lucca.tenant();
    let links = w.accounts();
    let mut linked = tenant.users.iter().filter(|u| {
        u.dt_contract_end.is_none()
            && links.contains_key(&u.id.to_string())
            && u.manager_id
                .is_some_and(|m| links.contains_key(&m.to_string()))
    });
    let (one, other) = (
        linked.next().expect("a linked employee").clone(),
        linked.next().expect("another").clone(),
    );
    // What a full run reads, for comparison (nothing to write yet: the
    // changes are made after it).
    let log = |w: &World| {
        let lucca: Vec<String> = w
            .lucca
            .request_log()
            .records
            .iter()
            .map(|r| format!("{} {}", r.method, r.url))
            .collect();
        let leapsome: Vec<String> = w
            .leapsome
            .request_log()
            .records
            .iter()
            .map(|r| format!("{} {}", r.method, r.url))
            .collect();
        w.lucca.clear_request_log();
        w.leapsome.clear_request_log();
        (lucca, leapsome)
    };
    let count = |log: &[String], what: &str| log.iter().filter(|r| r.starts_with(what)).count();
    log(&w);
    w.sync();
    let (full_lucca, full_leapsome) = log(&w);
    w.lucca.with_tenant(|t| {
        for id in [one.id, other.id] {
            t.user_mut(id).expect("user").job_title = Some(format!("Title of {id}"));
        }
    });

    let config = w.config(true);
    let report = w.run_with(
        &config,
        Mode::Sync {
            approve_held: false,
        },
        Some(one.id.to_string()),
    );
    assert_eq!(report.failed(), 0, "{:#?}", report.applied.failures);
    assert_eq!(report.applied.counts.get("update"), Some(&1), "{report:#?}");
    assert_eq!(report.applied.counts.get("deactivate"), None);
    let (lucca, leapsome) = log(&w);

    // Lucca: the person and the manager, no page of users.
    assert!(
        count(&full_lucca, "GET /api/v3/users?") > 0,
        "{full_lucca:#?}"
    );
    assert_eq!(count(&lucca, "GET /api/v3/users?"), 0, "{lucca:#?}");
    assert_eq!(count(&lucca, "GET /api/v3/users/"), 2, "{lucca:#?}");
    // Leapsome: the two accounts one by one. The Leapsome plugin's
    // read-groups still pages the user directory for team members (a full
    // run's read-accounts leaves it fresh, so a full run pages it once
    // too): never more pages than a full run.
    assert_eq!(count(&leapsome, "GET /scim/v1/Users/"), 2, "{leapsome:#?}");
    assert_eq!(count(&full_leapsome, "GET /scim/v1/Users/"), 0);
    let pages = |log: &[String]| count(log, "GET /scim/v1/Users?");
    assert!(
        pages(&leapsome) <= pages(&full_leapsome),
        "{leapsome:#?} vs {full_leapsome:#?}"
    );

    // Only that person changed.
    let title = |u: &User| w.account(&links[&u.id.to_string()]).title;
    assert_eq!(title(&one), Some(format!("Title of {}", one.id)));
    assert_ne!(title(&other), Some(format!("Title of {}", other.id)));
}

/// An operator's Lucca `modified_since` setting makes every people read
/// incremental: the plugin says so (`coverage: changes`), and the core
/// refuses to plan this flow — it can deactivate, and everybody not
/// modified since would look like a leaver. Nothing is written.
#[test]
fn an_incremental_source_read_never_deactivates_the_people_it_left_out() {
    let mut w = World::new(40, false);
    w.sync();
    let accounts = w.accounts().len();
    assert!(accounts > 0);
    let text = std::fs::read_to_string(w.dir.path().join("muster.toml")).expect("config");
    let incremental = text.replacen(
        "settings = { base_url = ",
        "settings = { modified_since = \"2099-01-01T00:00:00Z\", base_url = ",
        1,
    );
    assert_ne!(
        incremental, text,
        "the Lucca settings line is where the test expects it"
    );
    let path = w.dir.path().join("muster.toml");
    let config = Config::parse(&incremental, &path, w.dir.path()).expect("config parses");
    w.leapsome.clear_request_log();
    let sync = Mode::Sync {
        approve_held: false,
    };
    let err = w.try_run(&config, sync, None).expect_err("refused");
    let text = err.to_string();
    assert!(text.contains("only changes"), "{text}");
    assert!(text.contains("modified_since"), "{text}");
    let writes = w
        .leapsome
        .request_log()
        .records
        .iter()
        .filter(|r| r.method != "GET")
        .count();
    assert_eq!(writes, 0, "nothing is written from a partial read");
    assert_eq!(w.accounts().len(), accounts);
}

/// Issue 16, fewest calls: a new account's manager goes in the create's own
/// PATCH, never in a PATCH of its own. The tenant's shape is known: `N`
/// people, all active with a usable email, all in one department, in a
/// manager tree where every report's id is *below* its manager's — so in id
/// order every create but the top's would come before its manager's, and
/// cost a `set_manager` PATCH after it (N − 1 extra calls). The core orders
/// the creates managers first; the applier puts the manager, created by
/// then, in the create's PATCH. Counted from the simulator's request log.
#[test]
fn a_new_accounts_manager_goes_in_its_create_patch() {
    const N: usize = 40;
    let mut w = World::new(N, false);
    let (department, departments) = w.lucca.with_tenant(|t| {
        let d = t.departments[0].id;
        let ids: Vec<u64> = t.users.iter().map(|u| u.id).collect();
        for (i, u) in t.users.iter_mut().enumerate() {
            u.dt_contract_start = Some("2020-01-06".into());
            u.dt_contract_end = None;
            u.mail = Some(format!("person{i}@sandbox.example"));
            u.department_id = Some(d);
            // Reports below their manager: i reports to (i + N) / 2 > i.
            u.manager_id = (i + 1 < N).then(|| ids[(i + N) / 2]);
        }
        (d, t.departments.len())
    });
    let ids: Vec<String> = w.lucca.with_tenant(|t| {
        let mut ids: Vec<u64> = t.users.iter().map(|u| u.id).collect();
        ids.sort_unstable();
        assert_eq!(ids.len(), N);
        ids.iter().map(u64::to_string).collect()
    });
    let report = w.sync();

    // The plan stays step by step: N creates, N − 1 set-managers — and the
    // creates come managers first.
    let creates: Vec<&str> = report
        .steps
        .iter()
        .filter(|s| s.kind == ActionKind::Create)
        .filter_map(|s| s.source_id.as_deref())
        .collect();
    assert_eq!(creates.len(), N);
    let set_managers = report
        .steps
        .iter()
        .filter(|s| s.kind == ActionKind::SetManager)
        .count();
    assert_eq!(set_managers, N - 1);
    let managers: BTreeMap<String, Option<String>> = w.lucca.with_tenant(|t| {
        t.users
            .iter()
            .map(|u| (u.id.to_string(), u.manager_id.map(|m| m.to_string())))
            .collect()
    });
    let position = |id: &str| creates.iter().position(|c| *c == id).expect("created");
    for (person, manager) in &managers {
        if let Some(m) = manager {
            assert!(position(m) < position(person), "{m} manages {person}");
        }
    }
    assert_eq!(creates[0], ids[N - 1], "the top of the tree first");

    // Leapsome's writes: a POST and one PATCH per account, one POST per
    // team, one membership PATCH (N ≤ 100 members).
    let mut writes: BTreeMap<String, usize> = BTreeMap::new();
    for r in &w.leapsome.request_log().records {
        if r.method == "GET" {
            continue;
        }
        let collection = if r.url.contains("/Groups") {
            "Groups"
        } else {
            "Users"
        };
        *writes
            .entry(format!("{} {collection}", r.method))
            .or_default() += 1;
    }
    let expected: BTreeMap<String, usize> = [
        ("POST Users".to_string(), N),
        ("PATCH Users".to_string(), N),
        ("POST Groups".to_string(), departments),
        ("PATCH Groups".to_string(), 1),
    ]
    .into();
    assert_eq!(writes, expected, "no set-manager PATCH of its own");

    // Every manager is set, and the journal has each step, done.
    let accounts = w.accounts();
    for (person, manager) in &managers {
        let want = manager.as_ref().map(|m| accounts[m].clone());
        assert_eq!(w.account(&accounts[person]).manager, want, "{person}");
    }
    let team = w.team(&w.teams()[&department.to_string()]);
    assert_eq!(team.members.len(), N);
    let run = &w.store.history(FLOW, 1).expect("history")[0];
    let journaled = |kind| run.journal.iter().filter(|e| e.kind == kind).count();
    assert_eq!(journaled(ActionKind::Create), N);
    assert_eq!(journaled(ActionKind::SetManager), N - 1);
    assert!(
        run.journal.iter().all(|e| e.state == JournalState::Done),
        "{:#?}",
        run.journal
    );
}
