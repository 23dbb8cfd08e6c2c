//! The status page's run view, person search and `/metrics`, answered by
//! the real `muster serve` binary from a real state database that real runs
//! wrote: two flows syncing a simulated Lucca tenant into a simulated
//! Leapsome through the real plugins (the world of `engine.rs`).
//!
//! The Lucca tenant is edited first so the runs have something to explain:
//! Nina Müller has no work email (both flows skip her, and say why), and one
//! person's first name is markup (every page must show it as text).

mod common;

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::sync::OnceLock;

use common::world::{FLOW, Serving, World, http, json, text};
use muster::store::{RunSummary, Store};
use muster_sandbox::LeapsomeOptions;

/// The second flow: the same people into the same organisation, so it
/// links the accounts the first one created and skips the same people.
const AGAIN: &str = "again";
const HOSTILE: &str = "<img src=x onerror=alert(1)>";

/// Two flows that ran once each, and `muster serve` on their database.
struct Ran {
    world: World,
    serving: Serving,
    /// Nina Müller's Lucca id (skipped by both flows).
    nina: String,
    /// The Lucca id and email of a person both flows acted on.
    known: (String, String),
    /// What `sync --json` of the first flow reported.
    report: serde_json::Value,
}

fn ran() -> Ran {
    let world = World::new(12, LeapsomeOptions::default());
    let path = world.config();
    let config = std::fs::read_to_string(&path).expect("config");
    std::fs::write(
        &path,
        format!(
            "{config}\n[flows.{AGAIN}]\nsource = \"lucca\"\ntarget = \"leapsome\"\n\
             options = {{ sync_groups = false, reactivate = true }}\n"
        ),
    )
    .expect("config");
    let (nina, known) = world.lucca.with_tenant(|t| {
        let start = t.users[0].dt_contract_start.clone();
        for (i, u) in t.users.iter_mut().enumerate().take(3) {
            // Present and started: nothing but what is set below decides.
            u.dt_contract_start = start.clone();
            u.dt_contract_end = None;
            if u.mail.is_none() {
                u.mail = Some(format!("person{i}@sandbox.example"));
            }
        }
        t.users[1].first_name = HOSTILE.into();
        let nina = &mut t.users[2];
        nina.first_name = "Nina".into();
        nina.last_name = "Müller".into();
        nina.mail = None;
        let nina = nina.id.to_string();
        let known = &t.users[0];
        (
            nina,
            (known.id.to_string(), known.mail.clone().expect("mail")),
        )
    });
    let first = world.muster(&["sync", "--flow", FLOW, "--json"]);
    assert_eq!(first.status.code(), Some(0), "{}", text(&first));
    let report = json(&first);
    let second = world.muster(&["sync", "--flow", AGAIN]);
    assert_eq!(second.status.code(), Some(0), "{}", text(&second));
    let serving = world.serve();
    Ran {
        world,
        serving,
        nina,
        known,
        report,
    }
}

fn get(ran: &Ran, path: &str) -> String {
    let (status, body) = http(&ran.serving.addr, "GET", path, &[], "");
    assert_eq!(status, 200, "GET {path}: {body}");
    body
}

fn last_run(store: &Store, flow: &str) -> RunSummary {
    store
        .history(flow, 1)
        .expect("history")
        .pop()
        .expect("a run")
}

/// What the page shows for `s`: HTML-escaped as `page::escape` does.
fn escaped(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
        .replace('\'', "&#39;")
}

#[test]
fn the_run_page_answers_why_a_person_was_not_created_with_times_in_the_zone() {
    let ran = ran();
    let run = last_run(&ran.world.store(), FLOW);
    // The status page links the run to its page.
    let home = get(&ran, "/");
    assert!(
        home.contains(&format!("<a href=\"/runs/{}\">", run.id)),
        "{home}"
    );

    let page = get(&ran, &format!("/runs/{}", run.id));
    // Nina's skip, with the reason the plan gave (the CLI's text).
    let skip = ran.report["steps"]
        .as_array()
        .expect("steps")
        .iter()
        .find(|s| s["kind"] == "skip" && s["source_id"] == ran.nina.as_str())
        .expect("Nina is skipped");
    let why = skip["explanation"].as_str().expect("explanation");
    assert!(why.contains("email"), "{why}");
    let skipped = page.split("<h2>Skipped").nth(1).expect("a Skipped list");
    assert!(skipped.contains("Nina Müller"), "{page}");
    assert!(skipped.contains(&escaped(why)), "{page}");
    assert!(skipped.contains(&format!("source {}", ran.nina)), "{page}");
    assert!(skipped.contains("missing_field"), "{page}");

    // The actions, with the created person's email among the changes.
    let actions = page.split("<h2>Actions").nth(1).expect("actions");
    assert!(actions.contains(&ran.known.1), "{page}");

    // Times in the tenant's zone, named; the stored UTC text never shows.
    let started: jiff::Timestamp = run.started_at.parse().expect("a time");
    let local = started
        .to_zoned(jiff::tz::TimeZone::get("Europe/Paris").expect("zone"))
        .strftime("%Y-%m-%d %H:%M:%S %Z")
        .to_string();
    assert!(page.contains(&local), "{local} not in {page}");
    assert!(page.contains("times in Europe/Paris"), "{page}");
    for p in [&page, &home] {
        assert!(!p.contains(&run.started_at), "raw UTC time shown: {p}");
    }

    let (status, _) = http(&ran.serving.addr, "GET", "/runs/999999", &[], "");
    assert_eq!(status, 404);
    let (status, _) = http(&ran.serving.addr, "POST", "/runs/1", &[], "");
    assert_eq!(status, 405);
}

#[test]
fn search_finds_a_persons_history_across_both_flows_by_email_and_by_id() {
    let ran = ran();
    let (known_id, email) = &ran.known;
    let store = ran.world.store();
    let (first, again) = (last_run(&store, FLOW), last_run(&store, AGAIN));

    // By email (URL-encoded as a browser's GET form sends it): the create
    // in the first flow and the link in the second, newest first.
    let encoded: String = form_urlencoded::byte_serialize(email.as_bytes()).collect();
    let page = get(&ran, &format!("/search?q={encoded}"));
    let rows: Vec<&str> = page.split("<tr class=").skip(1).collect();
    assert_eq!(rows.len(), 2, "{page}");
    assert!(
        rows[0].contains(&format!("<td>{AGAIN}</td>")),
        "{}",
        rows[0]
    );
    assert!(
        rows[0].contains(&format!("/runs/{}", again.id)),
        "{}",
        rows[0]
    );
    assert!(rows[0].contains("link (done)"), "{}", rows[0]);
    assert!(rows[1].contains(&format!("<td>{FLOW}</td>")), "{}", rows[1]);
    assert!(
        rows[1].contains(&format!("/runs/{}", first.id)),
        "{}",
        rows[1]
    );
    assert!(rows[1].contains("create (done)"), "{}", rows[1]);
    for row in &rows {
        assert!(row.contains(&format!("source {known_id}")), "{row}");
    }
    // The form is there, filled in, and the page needs no script.
    assert!(
        page.contains(&format!("value=\"{}\"", escaped(email))),
        "{page}"
    );
    assert!(!page.contains("<script"), "{page}");

    // By Lucca id: Nina's two skips, one per flow, each with why.
    let page = get(&ran, &format!("/search?q={}", ran.nina));
    let rows: Vec<&str> = page.split("<tr class=\"skip\">").skip(1).collect();
    assert_eq!(rows.len(), 2, "{page}");
    assert!(rows[0].contains(AGAIN) && rows[1].contains(FLOW), "{page}");
    for row in rows {
        assert!(
            row.contains("Nina Müller") && row.contains("email"),
            "{row}"
        );
    }

    // By part of a name, any case the browser sends.
    let page = get(&ran, "/search?q=nina+m%C3%BCller");
    assert_eq!(page.matches("<tr class=\"skip\">").count(), 2, "{page}");
    let page = get(&ran, "/search?q=nobody-has-this-name");
    assert!(page.contains("No run acted on"), "{page}");
}

#[test]
fn a_hostile_name_is_shown_as_text_on_every_page() {
    let ran = ran();
    let run = last_run(&ran.world.store(), FLOW);
    let pages = [
        get(&ran, &format!("/runs/{}", run.id)),
        get(&ran, "/search?q=onerror"),
    ];
    for page in &pages {
        assert!(page.contains(&escaped(HOSTILE)), "{page}");
        assert!(!page.contains("<img"), "{page}");
    }
    // A hostile query is echoed escaped too.
    let page = get(&ran, "/search?q=%22%3E%3Cscript%3Ealert(1)%3C%2Fscript%3E");
    assert!(page.contains("&quot;&gt;&lt;script&gt;"), "{page}");
    assert!(!page.contains("<script"), "{page}");
}

/// The Python that has `prometheus-client` installed: `MUSTER_PROM_PYTHON`
/// (CI's venv, see `.ci/run`), else a venv made once under the target
/// directory. Fails, never skips, when neither can be had.
fn prometheus_python() -> PathBuf {
    const PINNED: &str = "prometheus-client==0.26.0";
    static PYTHON: OnceLock<PathBuf> = OnceLock::new();
    PYTHON
        .get_or_init(|| {
            if let Some(p) = std::env::var_os("MUSTER_PROM_PYTHON") {
                return PathBuf::from(p);
            }
            let venv = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("prometheus-venv");
            let python = venv.join("bin").join("python");
            let has = |p: &PathBuf| {
                Command::new(p)
                    .args(["-c", "import prometheus_client.parser"])
                    .status()
                    .is_ok_and(|s| s.success())
            };
            if !has(&python) {
                let made = Command::new("python3")
                    .args(["-m", "venv"])
                    .arg(&venv)
                    .status()
                    .is_ok_and(|s| s.success())
                    && Command::new(&python)
                        .args(["-m", "pip", "install", "--quiet", PINNED])
                        .status()
                        .is_ok_and(|s| s.success());
                assert!(
                    made && has(&python),
                    "this test needs python3 with venv and pip, to install {PINNED}"
                );
            }
            python
        })
        .clone()
}

/// `text` parsed by `prometheus_client.parser.text_string_to_metric_families`:
/// family name → (type, samples as (name, labels, value)).
type Families = BTreeMap<String, (String, Vec<(String, BTreeMap<String, String>, f64)>)>;

fn parse_exposition(text: &str) -> Families {
    const SCRIPT: &str = "import sys, json\n\
        from prometheus_client.parser import text_string_to_metric_families as parse\n\
        print(json.dumps({f.name: [f.type, [[s.name, s.labels, s.value] for s in f.samples]]\n\
                          for f in parse(sys.stdin.read())}))";
    let mut child = Command::new(prometheus_python())
        .args(["-c", SCRIPT])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("run python");
    use std::io::Write;
    child
        .stdin
        .take()
        .expect("stdin")
        .write_all(text.as_bytes())
        .expect("write");
    let out = child.wait_with_output().expect("python");
    assert!(
        out.status.success(),
        "the Prometheus parser refused /metrics: {}\n{text}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).expect("parser output")
}

#[test]
fn metrics_parse_with_the_prometheus_parser_and_count_the_runs() {
    let ran = ran();
    let (status, body) = http(&ran.serving.addr, "GET", "/metrics", &[], "");
    assert_eq!(status, 200, "{body}");
    let families = parse_exposition(&body);
    let value = |family: &str, labels: &[(&str, &str)]| -> Option<f64> {
        let (_, samples) = families.get(family)?;
        samples
            .iter()
            .find(|(_, l, _)| {
                labels
                    .iter()
                    .all(|(k, v)| l.get(*k).map(String::as_str) == Some(*v))
            })
            .map(|s| s.2)
    };
    let kind = |family: &str| families.get(family).map(|f| f.0.as_str());

    // The known history: each flow ran once, and was done.
    assert_eq!(kind("muster_runs"), Some("counter"));
    for flow in [FLOW, AGAIN] {
        assert_eq!(
            value("muster_runs", &[("flow", flow), ("outcome", "done")]),
            Some(1.0)
        );
        assert_eq!(
            value("muster_runs", &[("flow", flow), ("outcome", "failed")]),
            None
        );
        assert_eq!(value("muster_failed_records", &[("flow", flow)]), Some(0.0));
        assert_eq!(
            value(
                "muster_left_out_records",
                &[("flow", flow), ("kind", "skip")]
            ),
            Some(ran_skips(&ran, flow) as f64)
        );
    }
    // Actions by kind: what the first flow's report says it applied.
    let applied = &ran.report["applied"];
    let creates = applied["create"].as_u64().expect("creates");
    assert!(creates >= 2, "{applied}");
    assert_eq!(
        value("muster_actions", &[("flow", FLOW), ("kind", "create")]),
        Some(creates as f64)
    );
    assert_eq!(
        value("muster_actions", &[("flow", AGAIN), ("kind", "link")]),
        Some(creates as f64),
        "the second flow links every account the first created"
    );

    // Durations and the last success, from the stored times.
    let store = ran.world.store();
    let run = last_run(&store, FLOW);
    let secs = |t: &str| t.parse::<jiff::Timestamp>().expect("time").as_millisecond() as f64 / 1e3;
    let finished = secs(run.finished_at.as_deref().expect("finished"));
    assert_eq!(kind("muster_run_duration_seconds"), Some("gauge"));
    let duration = value("muster_run_duration_seconds", &[("flow", FLOW)]).expect("duration");
    assert!(
        (duration - (finished - secs(&run.started_at))).abs() < 1e-6,
        "{duration}"
    );
    assert_eq!(
        value("muster_last_success_timestamp_seconds", &[("flow", FLOW)]),
        Some(finished)
    );
    let since = value("muster_seconds_since_last_success", &[("flow", FLOW)]).expect("since");
    assert!(since >= 0.0, "{since}");
    // Serve ran nothing itself: the family is there, with no wait yet.
    assert_eq!(kind("muster_rate_limit_wait_seconds"), Some("counter"));
}

/// How many records the last run of `flow` skipped, as its counts say.
fn ran_skips(ran: &Ran, flow: &str) -> u64 {
    let run = last_run(&ran.world.store(), flow);
    let n = run.counts.get("skip").copied().unwrap_or(0);
    assert!(n >= 1, "{flow}: Nina at least is skipped: {:?}", run.counts);
    n
}
