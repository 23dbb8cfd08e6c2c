//! Training statistics written back into Lucca (issue 14): the Cards → Lucca
//! flow end to end, through a real statistics source plugin
//! (`plugins/fixtures/stats`, serving the rows a test gives it, until the
//! Cards plugin lands), the real `lucca` plugin, real HTTP to the Lucca
//! simulator and a real SQLite store — driven through the library, so every
//! planned step and every request Lucca served can be asserted.
//!
//! The story, on a generated tenant:
//! 1. **First run** — Ana is matched through the Lucca → Cards flow's link
//!    (her Cards email differs from Lucca's), Bo by his work email, a
//!    statistic for an unknown person is reported by name; their trainings
//!    are added as rows next to a row HR made by hand, which is left as is.
//! 2. **Second run** — nothing to do, no write to Lucca.
//! 3. **A changed score** — one PUT for Ana with that row's occurrence id;
//!    the other rows keep their ids and values.
//! 4. **A training gone from the statistics** — the flow removes the row it
//!    wrote, and still never the hand-made one.
//!
//! And `check` on the Lucca side names the code that is missing, not
//! multi-occurrence or not editable when the compound field is not set up
//! as the Cards guide describes.

use std::collections::BTreeMap;
use std::path::PathBuf;

use muster::config::Config;
use muster::connect::Host;
use muster::engine::{Mode, RunOptions, RunReport};
use muster::schedule::Schedule;
use muster::store::{LinkKind, Store, Trigger};
use muster_core::{ActionKind, Date, RowAction, Step};
use muster_sandbox::{ExtKind, LuccaOptions, LuccaSim, Occurrence, Tenant, User};
use serde_json::{Value, json};

const FLOW: &str = "cards-to-lucca";
const IDENTITIES: &str = "lucca-to-cards";
const TODAY: &str = "2026-06-01";
const SEED: u64 = 14;

fn cache_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("muster-plugin-cache")
}

fn today() -> Date {
    Date::parse(TODAY).expect("today")
}

/// The config: Lucca, the statistics source (`people`: its JSON setting),
/// the Lucca → Cards flow whose links identify people, and the write-back,
/// scheduled daily at 01:00 in the tenant's zone (Europe/Paris).
fn config(dir: &tempfile::TempDir, lucca: &LuccaSim, people: &Value) -> Config {
    let stats = muster::plugins::path("fixture-stats");
    let people = people.to_string().replace('\'', "\\'");
    let text = format!(
        r#"[tenant]
name = "acme"
timezone = "Europe/Paris"
state = "state.db"
cache = "{cache}"

[connections.lucca]
plugin = "lucca"
settings = {{ base_url = "{lucca}", custom_fields = "e_formation", compound_fields = "e_formation:e_title|e_link|e_progress|e_score|e_last_completion_date" }}
secret = {{ file = "lucca.key" }}
allow_loopback = true

[connections.cards]
plugin = "{stats}"
settings = {{ people = '{people}' }}
hosts = ["https://cards.example"]

[flows.{IDENTITIES}]
source = "lucca"
target = "cards"

[flows.{FLOW}]
source = "cards"
target = "lucca"
schedule = "daily 01:00"
actions = ["link", "update"]
fields = ["custom:e_formation"]
row_keys = {{ e_formation = "e_title" }}
correlation = ["links:{IDENTITIES}", "work_email"]
"#,
        cache = cache_dir().display(),
        lucca = lucca.base_url(),
        stats = stats.display(),
    );
    let path = dir.path().join("muster.toml");
    std::fs::write(&path, &text).expect("config");
    Config::parse(&text, &path, dir.path()).expect("config parses")
}

struct World {
    lucca: LuccaSim,
    dir: tempfile::TempDir,
    store: Store,
}

impl World {
    fn new(people: usize) -> World {
        let lucca = LuccaSim::start(
            Tenant::generate(SEED, people),
            LuccaOptions {
                rate_limit: None,
                ..LuccaOptions::default()
            },
        )
        .expect("start lucca");
        let dir = tempfile::tempdir().expect("tempdir");
        std::fs::write(dir.path().join("lucca.key"), lucca.api_key()).expect("key");
        let store = Store::open(dir.path().join("state.db")).expect("store");
        World { lucca, dir, store }
    }

    /// Records the Lucca → Cards flow's links (Lucca id → Cards id), as
    /// its runs would have.
    fn identities(&mut self, pairs: &[(&str, &str)]) {
        self.store
            .ensure_flow(IDENTITIES, "lucca", "cards")
            .expect("flow");
        for (lucca, cards) in pairs {
            self.store
                .add_link(IDENTITIES, LinkKind::Person, lucca, cards)
                .expect("identity link");
        }
    }

    /// One sync of the write-back with the statistics `people`.
    fn sync(&mut self, people: &Value) -> RunReport {
        let config = config(&self.dir, &self.lucca, people);
        let host = Host::new(&config).expect("host");
        let flow = config.flow(FLOW).expect("flow");
        let mode = Mode::Sync {
            approve_held: false,
        };
        let options = RunOptions {
            trigger: Trigger::Manual,
            only: None,
            today: today(),
            approver: "test".into(),
        };
        let report = host
            .run_flow(&config, &mut self.store, flow, mode, &options)
            .expect("run");
        assert_eq!(report.failed(), 0, "{:#?}", report.applied.failures);
        report
    }

    fn user(&self, id: u64) -> User {
        self.lucca
            .tenant()
            .users
            .into_iter()
            .find(|u| u.id == id)
            .expect("user")
    }

    /// The `e_formation` occurrences of user `id`, by title.
    fn rows(&self, id: u64) -> BTreeMap<String, Occurrence> {
        self.user(id)
            .extended
            .get("e_formation")
            .cloned()
            .unwrap_or_default()
            .into_iter()
            .map(|o| (o.value["e_title"].as_str().unwrap_or_default().into(), o))
            .collect()
    }

    /// Writes (method, path) Lucca served since the log was cleared.
    fn writes(&self) -> Vec<(String, String)> {
        self.lucca
            .request_log()
            .records
            .into_iter()
            .filter(|r| r.method != "GET")
            .map(|r| (r.method, r.url))
            .collect()
    }
}

/// Current employees with a work email nobody else has.
fn current_unique(t: &Tenant) -> Vec<User> {
    let mut by_mail: BTreeMap<String, usize> = BTreeMap::new();
    for u in &t.users {
        if let Some(m) = &u.mail {
            *by_mail.entry(m.to_lowercase()).or_default() += 1;
        }
    }
    t.users
        .iter()
        .filter(|u| {
            u.mail
                .as_ref()
                .is_some_and(|m| by_mail[&m.to_lowercase()] == 1)
                && u.dt_contract_start.as_deref().is_some_and(|d| d <= TODAY)
                && u.dt_contract_end.is_none()
        })
        .cloned()
        .collect()
}

fn training(title: &str, progress: f64, score: f64) -> Value {
    json!({
        "e_title": title,
        "e_link": format!("https://cards.example/t/{}", title.len()),
        "e_progress": progress,
        "e_score": score,
        "e_last_completion_date": "2026-05-20",
    })
}

fn step_line(s: &Step) -> String {
    format!(
        "{} {} -> {} ({})",
        s.kind,
        s.source_id.as_deref().unwrap_or("-"),
        s.target_id.as_deref().unwrap_or("-"),
        s.reason
    )
}

fn row_ops(s: &Step) -> Vec<String> {
    s.rows
        .iter()
        .map(|r| {
            let op = match r.action {
                RowAction::Add { .. } => "add",
                RowAction::Change { .. } => "change",
                RowAction::Remove { .. } => "remove",
            };
            format!(
                "{op} {}",
                r.key_value().map(|k| k.to_string()).unwrap_or_default()
            )
        })
        .collect()
}

#[test]
fn training_statistics_are_written_back_row_by_row_and_only_the_flows_rows() {
    let mut w = World::new(40);
    let people = current_unique(&w.lucca.tenant());
    let (ana, bo) = (people[0].clone(), people[1].clone());
    let hand_made = json!({"e_title": "Onboarding (by HR)", "e_progress": 100, "e_score": 0});
    w.lucca.with_tenant(|t| {
        for u in t
            .users
            .iter_mut()
            .filter(|u| u.id == ana.id || u.id == bo.id)
        {
            u.extended.remove("e_formation");
        }
        let id = t.take_occurrence_id();
        let u = t.users.iter_mut().find(|u| u.id == ana.id).expect("ana");
        u.extended.insert(
            "e_formation".into(),
            vec![Occurrence {
                id,
                value: hand_made.clone(),
            }],
        );
    });
    w.identities(&[(&ana.id.to_string(), "c-ana")]);
    let stats = |ana_security: f64, ana_gdpr: bool, bo_ethics: bool| {
        let mut ana_rows = vec![training("Security", 50.0, ana_security)];
        if ana_gdpr {
            ana_rows.push(training("GDPR", 100.0, 80.0));
        }
        let mut bo_rows = vec![training("GDPR", 100.0, 70.0)];
        if bo_ethics {
            bo_rows.push(training("Ethics", 20.0, 0.0));
        }
        json!([
            // Cards knows Ana under another email: only the link tells.
            {"id": "c-ana", "email": "ana.elsewhere@cards.example", "rows": ana_rows},
            {"id": "c-bo", "email": bo.mail.as_deref().expect("mail").to_uppercase(), "rows": bo_rows},
            {"id": "c-ghost", "email": "ghost@nowhere.example", "rows": [training("GDPR", 1.0, 1.0)]},
        ])
    };

    // 1. First run: two matches, two updates adding rows, the ghost reported.
    let first = w.sync(&stats(60.0, true, false));
    let (ana_id, bo_id) = (ana.id.to_string(), bo.id.to_string());
    let mut lines: Vec<String> = first.steps.iter().map(step_line).collect();
    lines.sort();
    let mut expected = vec![
        format!("link c-ana -> {ana_id} (matched)"),
        format!("link c-bo -> {bo_id} (matched)"),
        format!("update c-ana -> {ana_id} (owned_fields_differ)"),
        format!("update c-bo -> {bo_id} (owned_fields_differ)"),
        "skip c-ghost -> - (no_match)".to_string(),
    ];
    expected.sort();
    assert_eq!(lines, expected, "{}", first.plan_text);
    let explain = |kind: ActionKind, who: &str| -> String {
        first
            .steps
            .iter()
            .find(|s| s.kind == kind && s.source_id.as_deref() == Some(who))
            .map(|s| s.explanation.clone())
            .unwrap_or_default()
    };
    assert_eq!(
        explain(ActionKind::Link, "c-ana"),
        "the account another flow's link names (the identity it established)"
    );
    assert_eq!(
        explain(ActionKind::Link, "c-bo"),
        "existing account with the same work_email"
    );
    let ghost = first
        .steps
        .iter()
        .find(|s| s.source_id.as_deref() == Some("c-ghost"))
        .expect("ghost reported");
    assert!(ghost.label.contains("ghost@nowhere.example"), "{ghost:?}");
    assert_eq!(
        ghost.explanation,
        "matches no account in the target (tried the links of flow `lucca-to-cards`, work_email) and this flow may not create one"
    );
    let rows = w.rows(ana.id);
    assert_eq!(
        rows.keys().map(String::as_str).collect::<Vec<_>>(),
        ["GDPR", "Onboarding (by HR)", "Security"]
    );
    assert_eq!(
        rows["Onboarding (by HR)"].value, hand_made,
        "hand-made row kept"
    );
    assert_eq!(rows["Security"].value["e_score"].as_f64(), Some(60.0));
    assert_eq!(w.rows(bo.id).len(), 1);
    let written = w.store.written_rows(FLOW).expect("written rows");
    assert_eq!(written.len(), 3, "{written:?}");

    // 2. The same statistics again: nothing planned, nothing written.
    w.lucca.clear_request_log();
    let second = w.sync(&stats(60.0, true, false));
    let changes: Vec<&Step> = second
        .steps
        .iter()
        .filter(|s| s.kind.changes_target())
        .collect();
    assert!(changes.is_empty(), "{}", second.plan_text);
    assert_eq!(w.writes(), Vec::<(String, String)>::new());

    // 3. Ana's Security score changes, Bo has a new training: one PUT each;
    //    Ana's PUT changes only the Security occurrence, by its id.
    let before = w.rows(ana.id);
    w.lucca.clear_request_log();
    let third = w.sync(&stats(75.0, true, true));
    let updates: BTreeMap<String, Vec<String>> = third
        .steps
        .iter()
        .filter(|s| s.kind == ActionKind::Update)
        .map(|s| (s.source_id.clone().unwrap_or_default(), row_ops(s)))
        .collect();
    assert_eq!(
        updates,
        BTreeMap::from([
            ("c-ana".to_string(), vec!["change \"Security\"".to_string()]),
            ("c-bo".to_string(), vec!["add \"Ethics\"".to_string()]),
        ])
    );
    assert_eq!(
        w.writes(),
        [
            ("PUT".to_string(), format!("/api/v3/users/{ana_id}")),
            ("PUT".to_string(), format!("/api/v3/users/{bo_id}")),
        ]
    );
    let after = w.rows(ana.id);
    assert_eq!(
        after["Security"].id, before["Security"].id,
        "same occurrence"
    );
    assert_eq!(after["Security"].value["e_score"].as_f64(), Some(75.0));
    assert_eq!(after["GDPR"], before["GDPR"]);
    assert_eq!(after["Onboarding (by HR)"], before["Onboarding (by HR)"]);

    // 4. GDPR is gone from Ana's statistics: the flow removes the row it
    //    wrote; the hand-made row, which the source never had, stays.
    let fourth = w.sync(&stats(75.0, false, true));
    let ops: Vec<String> = fourth
        .steps
        .iter()
        .filter(|s| s.kind == ActionKind::Update)
        .flat_map(row_ops)
        .collect();
    assert_eq!(ops, ["remove \"GDPR\""]);
    assert_eq!(
        w.rows(ana.id)
            .keys()
            .map(String::as_str)
            .collect::<Vec<_>>(),
        ["Onboarding (by HR)", "Security"]
    );
}

#[test]
fn the_write_back_runs_daily_at_one_in_the_morning_paris_time() {
    let w = World::new(3);
    let config = config(&w.dir, &w.lucca, &json!([]));
    assert_eq!(config.tenant.timezone_name, "Europe/Paris");
    assert_eq!(
        config.flows[FLOW].schedule,
        Some(Schedule::parse("daily 01:00").expect("schedule"))
    );
}

/// `check` of the Lucca connection, as `muster check` runs it.
fn check(w: &World) -> Result<(), String> {
    let config = config(&w.dir, &w.lucca, &json!([]));
    let host = Host::new(&config).expect("host");
    let mut lucca = host
        .connect(config.connection("lucca").expect("connection"))
        .expect("connect");
    lucca.check().map_err(|e| e.to_string())
}

#[test]
fn check_names_the_compound_field_code_that_is_not_set_up_as_the_guide_says() {
    let w = World::new(3);
    check(&w).expect("the default tenant is set up as the guide says");
    w.lucca.with_tenant(|t| {
        let d = t
            .definitions
            .iter_mut()
            .find(|d| d.code == "e_formation")
            .expect("e_formation");
        d.multiple = false;
        d.editable = false;
        if let ExtKind::Compound(subs) = &mut d.kind {
            subs.retain(|s| s.code != "e_score");
        }
    });
    let err = check(&w).expect_err("the field is not set up");
    for expected in [
        "custom field `e_formation` does not allow multiple occurrences",
        "custom field `e_formation` is not editable",
        "custom field `e_formation` has no sub-field `e_score`",
    ] {
        assert!(err.contains(expected), "{expected:?} not in {err}");
    }
    w.lucca
        .with_tenant(|t| t.definitions.retain(|d| d.code != "e_formation"));
    let err = check(&w).expect_err("the field is missing");
    assert!(
        err.contains("custom field `e_formation` is missing from Lucca's HR-file definitions (GET /api/v3/extensionuserdefinitions)"),
        "{err}"
    );
}
