//! `muster serve` over real HTTP on loopback, with a real state database.
//!
//! The engine is behind the `Runner` trait (our own boundary); these tests
//! implement it with a runner that records its calls, writes real runs to
//! the store, checks what the inbox holds at the moment it is called, and
//! can be told to fail.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use jiff::{SignedDuration, Timestamp};
use muster::config::Secret;
use muster::schedule::{Clock, ManualClock, Schedule};
use muster::serve::{
    MAX_HEAD, MAX_HEADERS, RunReport, Runner, SECRET_HEADER, ServeConfig, ServeFlow, ServeWebhook,
    Server,
};
use muster::store::{InboxState, RunCounts, RunStatus, Store, Trigger};

const SECRET: &str = "hook-s3cret";

#[derive(Debug, Clone, PartialEq)]
struct Call {
    flow: String,
    trigger: Trigger,
    only: Option<String>,
    /// Whether, when the runner was called, the inbox already held a
    /// pending event for this record (i.e. it was stored before processing).
    stored_before: bool,
}

struct TestRunner {
    store: PathBuf,
    calls: Mutex<Vec<Call>>,
    fail: AtomicBool,
    panic: AtomicBool,
    error_text: String,
}

impl TestRunner {
    fn new(store: &Path) -> Arc<TestRunner> {
        Arc::new(TestRunner {
            store: store.to_path_buf(),
            calls: Mutex::new(Vec::new()),
            fail: AtomicBool::new(false),
            panic: AtomicBool::new(false),
            error_text: "vendor said <img src=x onerror=alert(1)>".into(),
        })
    }

    fn calls(&self) -> Vec<Call> {
        self.calls.lock().unwrap().clone()
    }
}

impl Runner for TestRunner {
    fn run(&self, flow: &str, trigger: Trigger, only: Option<&str>) -> Result<RunReport, String> {
        let mut store = Store::open(&self.store).map_err(|e| e.to_string())?;
        let stored_before = match only {
            Some(id) => store
                .inbox_pending(flow)
                .map_err(|e| e.to_string())?
                .iter()
                .any(|e| e.record_id.as_deref() == Some(id)),
            None => false,
        };
        self.calls.lock().unwrap().push(Call {
            flow: flow.into(),
            trigger,
            only: only.map(str::to_string),
            stored_before,
        });
        if self.panic.load(Ordering::SeqCst) {
            panic!("engine bug");
        }
        let run = store.begin_run(flow, trigger).map_err(|e| e.to_string())?;
        let failing = self.fail.load(Ordering::SeqCst);
        let (status, counts, error) = if failing {
            (
                RunStatus::Failed,
                RunCounts::new(),
                Some(self.error_text.as_str()),
            )
        } else {
            (
                RunStatus::Done,
                [("create".to_string(), 1u64)].into_iter().collect(),
                None,
            )
        };
        store
            .finish_run(run, status, &counts, error)
            .map_err(|e| e.to_string())?;
        Ok(RunReport {
            run,
            status,
            counts,
        })
    }
}

fn config(store: &Path) -> ServeConfig {
    ServeConfig {
        tenant: "acme <script>alert('t')</script>".into(),
        timezone: jiff::tz::TimeZone::get("Europe/Paris").unwrap(),
        timezone_name: "Europe/Paris".into(),
        store: store.to_path_buf(),
        flows: vec![
            ServeFlow {
                name: "flatchr-to-lucca".into(),
                source: "flatchr".into(),
                target: "lucca".into(),
                schedule: None,
                webhook: Some(ServeWebhook {
                    secret: Secret::new(SECRET),
                    id_field: "candidate.id".into(),
                    require: vec!["event".into()],
                }),
            },
            ServeFlow {
                name: "lucca-to-leapsome".into(),
                source: "lucca".into(),
                target: "leap<b>some".into(),
                schedule: Some(Schedule::parse("daily 02:30").unwrap()),
                webhook: None,
            },
        ],
        http_threads: 2,
        max_body: 4096,
        ..ServeConfig::defaults()
    }
}

struct Fixture {
    _dir: tempfile::TempDir,
    store: PathBuf,
    runner: Arc<TestRunner>,
}

fn fixture() -> Fixture {
    let dir = tempfile::tempdir().unwrap();
    let store = dir.path().join("muster.db");
    let runner = TestRunner::new(&store);
    Fixture {
        _dir: dir,
        store,
        runner,
    }
}

/// A clock stopped at noon on an ordinary day, far from any firing, so no
/// scheduled run interferes with the webhook tests whenever they run.
fn noon() -> Arc<ManualClock> {
    Arc::new(ManualClock::new("2026-06-10T10:00:00Z".parse().unwrap()))
}

fn start(f: &Fixture, clock: Arc<dyn Clock>) -> Server {
    Server::start("127.0.0.1:0", config(&f.store), f.runner.clone(), clock).unwrap()
}

/// A minimal HTTP/1.1 client: one request per connection.
fn request(
    addr: SocketAddr,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
    body: &[u8],
) -> (u16, String) {
    let mut s = TcpStream::connect(addr).unwrap();
    let mut head = format!(
        "{method} {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\nContent-Length: {}\r\n",
        body.len()
    );
    for (k, v) in headers {
        head.push_str(&format!("{k}: {v}\r\n"));
    }
    head.push_str("\r\n");
    s.write_all(head.as_bytes()).unwrap();
    s.write_all(body).unwrap();
    let mut raw = Vec::new();
    s.read_to_end(&mut raw).unwrap();
    let raw = String::from_utf8_lossy(&raw).into_owned();
    let status = raw
        .split(' ')
        .nth(1)
        .and_then(|c| c.parse().ok())
        .unwrap_or_else(|| panic!("no status line in {raw:?}"));
    let body = raw
        .split_once("\r\n\r\n")
        .map(|(_, b)| b.to_string())
        .unwrap_or_default();
    (status, body)
}

fn post_hook(addr: SocketAddr, headers: &[(&str, &str)], body: &str) -> (u16, serde_json::Value) {
    let (status, body) = request(
        addr,
        "POST",
        "/webhooks/flatchr-to-lucca",
        headers,
        body.as_bytes(),
    );
    let json = serde_json::from_str(&body).unwrap_or_else(|e| panic!("{e}: {body}"));
    (status, json)
}

fn inbox(store: &Path, flow: &str) -> Vec<muster::store::InboxEvent> {
    Store::open(store).unwrap().inbox_recent(flow, 100).unwrap()
}

const HIRED: &str =
    r#"{"event": "candidate.hired", "candidate": {"id": "c-17", "name": "Élodie"}}"#;

#[test]
fn healthz_answers_ok() {
    let f = fixture();
    let server = start(&f, noon());
    let (status, body) = request(server.local_addr(), "GET", "/healthz", &[], b"");
    assert_eq!((status, body.as_str()), (200, "ok\n"));
    let (status, _) = request(server.local_addr(), "GET", "/nope", &[], b"");
    assert_eq!(status, 404);
    let (status, _) = request(server.local_addr(), "DELETE", "/healthz", &[], b"");
    assert_eq!(status, 405);
}

#[test]
fn a_bad_or_missing_secret_is_refused_and_nothing_is_stored() {
    let f = fixture();
    let server = start(&f, noon());
    let addr = server.local_addr();
    let (status, body) = post_hook(addr, &[("X-Muster-Secret", "wrong")], HIRED);
    assert_eq!(status, 401, "{body}");
    assert!(body["error"].as_str().unwrap().contains("X-Muster-Secret"));
    let (status, _) = post_hook(addr, &[], HIRED);
    assert_eq!(status, 401);
    // A prefix of the secret is not the secret.
    let (status, _) = post_hook(addr, &[("X-Muster-Secret", &SECRET[..5])], HIRED);
    assert_eq!(status, 401);
    server.wait_idle();
    assert!(inbox(&f.store, "flatchr-to-lucca").is_empty());
    assert!(f.runner.calls().is_empty());
    // A flow without a webhook has no endpoint.
    let (status, _) = request(
        addr,
        "POST",
        "/webhooks/lucca-to-leapsome",
        &[("X-Muster-Secret", SECRET)],
        HIRED.as_bytes(),
    );
    assert_eq!(status, 404);
}

#[test]
fn a_good_event_is_stored_before_it_is_processed_then_done() {
    let f = fixture();
    let server = start(&f, noon());
    let (status, body) = post_hook(server.local_addr(), &[("X-Muster-Secret", SECRET)], HIRED);
    assert_eq!(status, 202, "{body}");
    assert_eq!(body["state"], "pending");
    assert_eq!(body["record_id"], "c-17");
    let id = body["inbox_id"].as_i64().unwrap();
    server.wait_idle();
    assert_eq!(
        f.runner.calls(),
        [Call {
            flow: "flatchr-to-lucca".into(),
            trigger: Trigger::Webhook,
            only: Some("c-17".into()),
            stored_before: true,
        }]
    );
    let events = inbox(&f.store, "flatchr-to-lucca");
    assert_eq!(events.len(), 1);
    let e = &events[0];
    assert_eq!((e.id.0, e.state, e.attempts), (id, InboxState::Done, 1));
    assert_eq!(e.payload, HIRED);
    assert!(e.run.is_some() && e.processed_at.is_some());
}

#[test]
fn a_failed_run_keeps_the_event_pending_and_the_next_start_retries_it() {
    let f = fixture();
    f.runner.fail.store(true, Ordering::SeqCst);
    let server = start(&f, noon());
    let (status, body) = post_hook(server.local_addr(), &[("X-Muster-Secret", SECRET)], HIRED);
    assert_eq!(status, 202, "{body}");
    server.wait_idle();
    let events = inbox(&f.store, "flatchr-to-lucca");
    assert_eq!(events.len(), 1);
    assert_eq!(
        (events[0].state, events[0].attempts),
        (InboxState::Pending, 1)
    );
    assert!(
        events[0].error.as_deref().unwrap().contains("failed"),
        "{:?}",
        events[0].error
    );
    drop(server);

    // The vendor is back: a new serve process retries the pending event.
    f.runner.fail.store(false, Ordering::SeqCst);
    let server = start(&f, noon());
    server.wait_idle();
    let calls = f.runner.calls();
    assert_eq!(calls.len(), 2);
    assert!(
        calls
            .iter()
            .all(|c| c.only.as_deref() == Some("c-17") && c.stored_before)
    );
    let events = inbox(&f.store, "flatchr-to-lucca");
    assert_eq!((events[0].state, events[0].attempts), (InboxState::Done, 2));
    assert_eq!(events[0].error, None);
}

#[test]
fn an_event_not_of_the_documented_shape_is_400_and_nothing_is_stored() {
    let f = fixture();
    let server = start(&f, noon());
    let cases = [
        (
            r#"{"event": "x", "candidate": {"name": "no id"}}"#,
            "`candidate.id`",
        ),
        (
            r#"{"event": "x", "candidate": {"id": ""}}"#,
            "`candidate.id`",
        ),
        (r#"{"candidate": {"id": "c-17"}}"#, "no `event`"),
        (
            r#"{"event": null, "candidate": {"id": "c-17"}}"#,
            "no `event`",
        ),
        ("not json", "not JSON"),
    ];
    for (body, reason) in cases {
        let (status, answer) = post_hook(server.local_addr(), &[("X-Muster-Secret", SECRET)], body);
        assert_eq!(status, 400, "{body}: {answer}");
        let error = answer["error"].as_str().unwrap();
        assert!(error.contains(reason), "{body}: {error}");
        assert!(answer.get("inbox_id").is_none(), "{answer}");
    }
    server.wait_idle();
    assert!(f.runner.calls().is_empty());
    assert!(inbox(&f.store, "flatchr-to-lucca").is_empty());
}

#[test]
fn a_redelivery_is_stored_once_and_run_once() {
    let f = fixture();
    let server = start(&f, noon());
    let headers = [("X-Muster-Secret", SECRET), ("X-Muster-Delivery", "d-1")];
    let (status, first) = post_hook(server.local_addr(), &headers, HIRED);
    assert_eq!(status, 202);
    server.wait_idle();
    let (status, second) = post_hook(server.local_addr(), &headers, HIRED);
    assert_eq!(status, 200, "{second}");
    assert_eq!(second["duplicate"], true);
    assert_eq!(second["inbox_id"], first["inbox_id"]);
    assert_eq!(second["state"], "done");
    server.wait_idle();
    assert_eq!(f.runner.calls().len(), 1);
    assert_eq!(inbox(&f.store, "flatchr-to-lucca").len(), 1);
}

#[test]
fn an_oversized_body_is_refused_and_not_stored() {
    let f = fixture();
    let server = start(&f, noon());
    let big = format!(
        r#"{{"candidate": {{"id": "c-1", "cv": "{}"}}}}"#,
        "x".repeat(8000)
    );
    let (status, body) = post_hook(server.local_addr(), &[("X-Muster-Secret", SECRET)], &big);
    assert_eq!(status, 413, "{body}");
    server.wait_idle();
    assert!(inbox(&f.store, "flatchr-to-lucca").is_empty());
}

#[test]
fn schedules_fire_from_the_injected_clock_once_across_the_spring_gap() {
    let f = fixture();
    // Saturday 28 March 2026, 23:00 UTC; "daily 02:30" falls in the gap on
    // the 29th and fires at 03:00 CEST = 01:00 UTC.
    let clock = Arc::new(ManualClock::new("2026-03-28T23:00:00Z".parse().unwrap()));
    let server = start(&f, clock.clone());
    let expected: Timestamp = "2026-03-29T01:00:00Z".parse().unwrap();
    assert_eq!(server.next_fire("lucca-to-leapsome"), Some(expected));
    assert_eq!(server.next_fire("flatchr-to-lucca"), None);

    clock.set("2026-03-29T00:59:00Z".parse().unwrap());
    server.wake();
    server.wait_idle();
    assert!(f.runner.calls().is_empty());

    for _ in 0..3 {
        clock.advance(SignedDuration::from_mins(1));
        server.wake();
        server.wait_idle();
    }
    let calls = f.runner.calls();
    assert_eq!(calls.len(), 1, "{calls:?}");
    assert_eq!(calls[0].flow, "lucca-to-leapsome");
    assert_eq!(calls[0].trigger, Trigger::Schedule);
    assert_eq!(calls[0].only, None);
    assert_eq!(
        server.next_fire("lucca-to-leapsome"),
        Some("2026-03-30T00:30:00Z".parse().unwrap())
    );
}

#[test]
fn the_status_page_shows_runs_and_escapes_everything() {
    let f = fixture();
    f.runner.fail.store(true, Ordering::SeqCst);
    let server = start(&f, noon());
    let (status, _) = post_hook(server.local_addr(), &[("X-Muster-Secret", SECRET)], HIRED);
    assert_eq!(status, 202);
    server.wait_idle();
    f.runner.fail.store(false, Ordering::SeqCst);
    let report = f
        .runner
        .run("lucca-to-leapsome", Trigger::Manual, None)
        .unwrap();
    Store::open(&f.store)
        .unwrap()
        .hold_plan(
            "lucca-to-leapsome",
            report.run,
            &[],
            "digest",
            "deactivate: 30 > max 25 <unsafe>",
        )
        .unwrap();

    let (status, page) = request(server.local_addr(), "GET", "/", &[], b"");
    assert_eq!(status, 200);
    // Names, targets and vendor errors come out escaped, never as markup.
    assert!(
        page.contains("acme &lt;script&gt;alert(&#39;t&#39;)&lt;/script&gt;"),
        "{page}"
    );
    assert!(!page.contains("<script"), "{page}");
    assert!(page.contains("leap&lt;b&gt;some"), "{page}");
    assert!(
        page.contains("vendor said &lt;img src=x onerror=alert(1)&gt;"),
        "{page}"
    );
    assert!(!page.contains("<img"), "{page}");
    // Flows, schedules, next firing, runs with counts, inbox backlog.
    assert!(page.contains("<h2>flatchr-to-lucca</h2>"), "{page}");
    assert!(page.contains("schedule: daily 02:30 · next: "), "{page}");
    assert!(page.contains("create 1"), "{page}");
    assert!(page.contains("pending events: 1"), "{page}");
    assert!(
        page.contains("<td>failed</td>") && page.contains("<td>done</td>"),
        "{page}"
    );
    assert!(page.contains("<b>held</b>"), "{page}");
    assert!(
        page.contains("deactivate: 30 &gt; max 25 &lt;unsafe&gt;"),
        "{page}"
    );
}

#[test]
fn a_panicking_run_keeps_the_event_and_the_worker_goes_on() {
    let f = fixture();
    f.runner.panic.store(true, Ordering::SeqCst);
    let server = start(&f, noon());
    let (status, _) = post_hook(server.local_addr(), &[("X-Muster-Secret", SECRET)], HIRED);
    assert_eq!(status, 202);
    server.wait_idle();
    let events = inbox(&f.store, "flatchr-to-lucca");
    assert_eq!(events[0].state, InboxState::Pending);
    assert!(events[0].error.as_deref().unwrap().contains("panicked"));

    f.runner.panic.store(false, Ordering::SeqCst);
    let other = HIRED.replace("c-17", "c-18");
    let (status, _) = post_hook(server.local_addr(), &[("X-Muster-Secret", SECRET)], &other);
    assert_eq!(status, 202);
    server.wait_idle();
    let events = inbox(&f.store, "flatchr-to-lucca");
    assert_eq!(events[0].record_id.as_deref(), Some("c-18"));
    assert_eq!(events[0].state, InboxState::Done);
}

#[test]
fn serve_config_from_a_config_file_loads_the_webhook_secret_at_start() {
    let dir = tempfile::tempdir().unwrap();
    let text = r#"
[tenant]
name = "acme"
timezone = "Europe/Paris"
state = "state/muster.db"

[connections.flatchr]
plugin = "./flatchr.wasm"
hosts = ["https://api.flatchr.io"]

[connections.lucca]
plugin = "lucca"

[flows.flatchr-to-lucca]
source = "flatchr"
target = "lucca"
actions = ["create"]
schedule = "every 15m"
webhook = { secret = { file = "hook.secret" }, id_field = "candidate.id" }
"#;
    let path = dir.path().join("acme.toml");
    std::fs::write(&path, text).unwrap();
    let config = muster::config::Config::load(&path).unwrap();

    // The secret file is missing: serve refuses to start, naming the file.
    let err = ServeConfig::from_config(&config).unwrap_err().to_string();
    assert!(err.contains("hook.secret"), "{err}");

    std::fs::create_dir(dir.path().join("state")).unwrap();
    std::fs::write(dir.path().join("hook.secret"), format!("{SECRET}\n")).unwrap();
    let cfg = ServeConfig::from_config(&config).unwrap();
    assert_eq!(cfg.store, dir.path().join("state/muster.db"));
    assert_eq!(cfg.flows.len(), 1);
    assert!(
        !format!("{cfg:?}").contains(SECRET),
        "Debug must not print the secret"
    );

    let runner = TestRunner::new(&cfg.store);
    let server = Server::start("127.0.0.1:0", cfg, runner.clone(), noon()).unwrap();
    assert!(server.next_fire("flatchr-to-lucca").is_some());
    let (status, body) = post_hook(server.local_addr(), &[("X-Muster-Secret", SECRET)], HIRED);
    assert_eq!(status, 202, "{body}");
    server.wait_idle();
    assert_eq!(runner.calls().len(), 1);
    assert!(runner.calls()[0].stored_before);
}

// ---------------------------------------------------------------------------
// Limits: no client can stop `serve` from answering (issue 11, item 1).
// ---------------------------------------------------------------------------

/// Generous bound for anything the server should do "at once" on a busy
/// machine; every socket read and write below is bounded by it.
const PATIENCE: Duration = Duration::from_secs(10);

/// A raw connection whose reads and writes give up after [`PATIENCE`].
fn raw(addr: SocketAddr) -> TcpStream {
    let s = TcpStream::connect(addr).unwrap();
    s.set_read_timeout(Some(PATIENCE)).unwrap();
    s.set_write_timeout(Some(PATIENCE)).unwrap();
    s
}

/// Reads until the server closes the connection; the status code of what
/// it answered first (`None`: it closed without a word). Fails if the
/// connection is still open after [`PATIENCE`].
fn answer_then_close(s: &mut TcpStream) -> Option<u16> {
    let mut raw = Vec::new();
    if let Err(e) = s.read_to_end(&mut raw) {
        assert!(
            e.kind() == std::io::ErrorKind::ConnectionReset && !raw.is_empty(),
            "the server neither answered nor closed the connection: {e} (got {raw:?})"
        );
    }
    let text = String::from_utf8_lossy(&raw);
    text.split(' ').nth(1).and_then(|c| c.parse().ok())
}

/// `GET /healthz` answers `200 ok` within a second.
fn healthz_within_a_second(addr: SocketAddr) {
    let started = Instant::now();
    let mut s = raw(addr);
    s.set_read_timeout(Some(Duration::from_secs(1))).unwrap();
    s.write_all(b"GET /healthz HTTP/1.1\r\nHost: muster\r\nConnection: close\r\n\r\n")
        .unwrap();
    let mut answer = Vec::new();
    let read = s.read_to_end(&mut answer);
    let answer = String::from_utf8_lossy(&answer);
    assert!(
        read.is_ok() && answer.starts_with("HTTP/1.1 200") && answer.ends_with("ok\n"),
        "/healthz did not answer within a second ({read:?}): {answer:?}"
    );
    assert!(started.elapsed() < Duration::from_secs(1));
}

fn limited(store: &Path) -> ServeConfig {
    ServeConfig {
        header_timeout: Duration::from_millis(300),
        body_timeout: Duration::from_millis(300),
        write_timeout: Duration::from_millis(300),
        ..config(store)
    }
}

#[test]
fn a_declared_body_over_the_cap_is_413_on_any_route_without_reading_it() {
    let f = fixture();
    let server = start(&f, noon());
    let addr = server.local_addr();
    // Nothing of the declared terabyte is sent: the answer must not wait for it.
    for head in [
        "GET /healthz HTTP/1.1\r\nHost: m\r\nContent-Length: 1000000000000000\r\n\r\n".to_string(),
        format!(
            "POST /webhooks/flatchr-to-lucca HTTP/1.1\r\nHost: m\r\n{SECRET_HEADER}: {SECRET}\r\nContent-Length: 4097\r\n\r\n"
        ),
        // The largest length hyper represents.
        "POST /webhooks/flatchr-to-lucca HTTP/1.1\r\nHost: m\r\nContent-Length: 18446744073709551613\r\n\r\n"
            .to_string(),
    ] {
        let mut s = raw(addr);
        s.write_all(head.as_bytes()).unwrap();
        assert_eq!(answer_then_close(&mut s), Some(413), "{head}");
    }
    // Above that, hyper itself refuses the head (431) and closes.
    let mut s = raw(addr);
    s.write_all(
        b"GET /healthz HTTP/1.1\r\nHost: m\r\nContent-Length: 18446744073709551615\r\n\r\n",
    )
    .unwrap();
    assert_eq!(answer_then_close(&mut s), Some(431));
    healthz_within_a_second(addr);
    server.wait_idle();
    assert!(inbox(&f.store, "flatchr-to-lucca").is_empty());
}

#[test]
fn a_head_over_the_limits_is_431() {
    let f = fixture();
    let server = start(&f, noon());
    let addr = server.local_addr();
    let many: String = (0..=MAX_HEADERS)
        .map(|i| format!("X-H{i}: v\r\n"))
        .collect();
    let long = format!("X-Long: {}\r\n", "v".repeat(MAX_HEAD));
    for (what, extra) in [("many", many), ("long", long)] {
        let mut s = raw(addr);
        s.write_all(format!("GET /healthz HTTP/1.1\r\nHost: m\r\n{extra}\r\n").as_bytes())
            .unwrap();
        assert_eq!(answer_then_close(&mut s), Some(431), "{what} headers");
    }
    healthz_within_a_second(addr);
}

#[test]
fn a_chunked_body_over_the_cap_is_413_and_not_stored() {
    let f = fixture();
    let server = start(&f, noon());
    let mut s = raw(server.local_addr());
    // One chunk announced at 8 KiB; 5000 bytes of it are enough to pass the
    // 4096-byte cap, and the rest never comes.
    let head = format!(
        "POST /webhooks/flatchr-to-lucca HTTP/1.1\r\nHost: m\r\n{SECRET_HEADER}: {SECRET}\r\nTransfer-Encoding: chunked\r\n\r\n2000\r\n"
    );
    s.write_all(head.as_bytes()).unwrap();
    s.write_all(&[b'x'; 5000]).unwrap();
    assert_eq!(answer_then_close(&mut s), Some(413));
    server.wait_idle();
    assert!(inbox(&f.store, "flatchr-to-lucca").is_empty());
}

#[test]
fn a_body_that_stalls_is_408_after_the_body_timeout_and_not_stored() {
    let f = fixture();
    let server = Server::start("127.0.0.1:0", limited(&f.store), f.runner.clone(), noon()).unwrap();
    let mut s = raw(server.local_addr());
    let head = format!(
        "POST /webhooks/flatchr-to-lucca HTTP/1.1\r\nHost: m\r\n{SECRET_HEADER}: {SECRET}\r\nContent-Length: 100\r\n\r\n{{\"cand"
    );
    s.write_all(head.as_bytes()).unwrap();
    assert_eq!(answer_then_close(&mut s), Some(408));
    let (status, body) = post_hook(server.local_addr(), &[(SECRET_HEADER, SECRET)], HIRED);
    assert_eq!(status, 202, "a complete body is still accepted: {body}");
    server.wait_idle();
    let events = inbox(&f.store, "flatchr-to-lucca");
    assert_eq!(events.len(), 1, "only the complete event is stored");
    assert_eq!(events[0].payload, HIRED);
}

#[test]
fn a_head_that_stalls_is_closed_after_the_header_timeout() {
    let f = fixture();
    let server = Server::start("127.0.0.1:0", limited(&f.store), f.runner.clone(), noon()).unwrap();
    let mut half = raw(server.local_addr());
    half.write_all(b"GET /healthz HTTP/1.1\r\nHost: m\r\nX-Half: ")
        .unwrap();
    // An idle keep-alive connection is closed the same way.
    let mut idle = raw(server.local_addr());
    idle.write_all(b"GET /healthz HTTP/1.1\r\nHost: m\r\n\r\n")
        .unwrap();
    let mut first = [0u8; 12];
    idle.read_exact(&mut first).unwrap();
    assert_eq!(&first, b"HTTP/1.1 200");
    assert_eq!(answer_then_close(&mut half), None);
    assert_eq!(answer_then_close(&mut idle), None);
}

#[test]
fn connections_over_the_bound_wait_for_a_free_slot() {
    let f = fixture();
    let cfg = ServeConfig {
        max_connections: 2,
        ..config(&f.store)
    };
    let server = Server::start("127.0.0.1:0", cfg, f.runner.clone(), noon()).unwrap();
    let addr = server.local_addr();
    // Two connections take both slots with half a head (the header
    // timeout, 10 s by default, is far away).
    let mut stalled: Vec<TcpStream> = (0..2)
        .map(|_| {
            let mut s = raw(addr);
            s.write_all(b"GET /healthz HTTP/1.1\r\nHost: m\r\n")
                .unwrap();
            s
        })
        .collect();
    let mut third = raw(addr);
    third
        .write_all(b"GET /healthz HTTP/1.1\r\nHost: m\r\nConnection: close\r\n\r\n")
        .unwrap();
    third
        .set_read_timeout(Some(Duration::from_millis(300)))
        .unwrap();
    let mut byte = [0u8; 1];
    let early = third.read(&mut byte);
    assert!(
        early.as_ref().is_err_and(|e| matches!(
            e.kind(),
            std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
        )),
        "a third connection was served while both slots were taken: {early:?}"
    );
    // A slot frees: the waiting connection is served.
    drop(stalled.pop());
    third.set_read_timeout(Some(PATIENCE)).unwrap();
    assert_eq!(answer_then_close(&mut third), Some(200));
}

#[test]
fn a_client_that_never_reads_is_disconnected_after_the_write_timeout() {
    let f = fixture();
    let server = Server::start("127.0.0.1:0", limited(&f.store), f.runner.clone(), noon()).unwrap();
    let s = raw(server.local_addr());
    // Pipelined requests, never reading an answer: the answers fill both
    // sockets' buffers, the server's writes stop progressing, and after the
    // write timeout it must close the connection, which fails our writes.
    // Without a write timeout our writes would block until PATIENCE.
    let batch = "GET /healthz HTTP/1.1\r\nHost: m\r\n\r\n".repeat(100);
    let mut w = &s;
    let mut sent = 0usize;
    let err = loop {
        match w.write_all(batch.as_bytes()) {
            Ok(()) => sent += 100,
            Err(e) => break e,
        }
        assert!(
            sent < 10_000_000,
            "the server answered ten million requests unread"
        );
    };
    assert!(
        matches!(
            err.kind(),
            std::io::ErrorKind::BrokenPipe | std::io::ErrorKind::ConnectionReset
        ),
        "the connection was not closed by the server after {sent} requests: {err}"
    );
    healthz_within_a_second(server.local_addr());
}

/// A clock whose `now` panics on the HTTP threads (named
/// `muster-serve-http`) while `armed`: the status page reads the clock, so
/// this makes a request handler panic without touching the worker or the
/// test's own thread, which read the same clock.
struct PanickyClock {
    inner: ManualClock,
    armed: AtomicBool,
}

impl Clock for PanickyClock {
    fn now(&self) -> Timestamp {
        let on_http_thread = std::thread::current()
            .name()
            .is_some_and(|n| n.starts_with("muster-serve-http"));
        if self.armed.load(Ordering::SeqCst) && on_http_thread {
            panic!("status page bug");
        }
        self.inner.now()
    }
}

#[test]
fn a_panicking_handler_answers_500_and_the_server_goes_on() {
    let f = fixture();
    let clock = Arc::new(PanickyClock {
        inner: ManualClock::new("2026-06-10T10:00:00Z".parse().unwrap()),
        armed: AtomicBool::new(true),
    });
    let cfg = ServeConfig {
        http_threads: 1,
        ..config(&f.store)
    };
    let server = Server::start("127.0.0.1:0", cfg, f.runner.clone(), clock.clone()).unwrap();
    let addr = server.local_addr();
    // More panics than handler threads: none of them is lost.
    for _ in 0..3 {
        let (status, body) = request(addr, "GET", "/", &[], b"");
        assert_eq!((status, body.as_str()), (500, "internal error\n"));
        healthz_within_a_second(addr);
    }
    clock.armed.store(false, Ordering::SeqCst);
    let (status, page) = request(addr, "GET", "/", &[], b"");
    assert_eq!(status, 200);
    assert!(page.contains("<h2>flatchr-to-lucca</h2>"), "{page}");
    let (status, _) = post_hook(addr, &[(SECRET_HEADER, SECRET)], HIRED);
    assert_eq!(status, 202);
    server.wait_idle();
    assert_eq!(f.runner.calls().len(), 1);
}

/// `muster serve` as a child process, killed when the test ends however it
/// ends; its stderr is drained so it never blocks on a full pipe.
struct ServeProcess {
    process: std::process::Child,
    addr: SocketAddr,
    dir: tempfile::TempDir,
}

impl Drop for ServeProcess {
    fn drop(&mut self) {
        let _ = self.process.kill();
        let _ = self.process.wait();
    }
}

impl ServeProcess {
    /// Starts the real binary on a config with one webhook flow (the
    /// plugins are loaded but never called: no probe gets that far).
    fn start() -> ServeProcess {
        use std::io::BufRead;
        let dir = tempfile::tempdir().unwrap();
        let cache = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("muster-plugin-cache");
        let config = format!(
            r#"[tenant]
name = "probed"
timezone = "Europe/Paris"
state = "state.db"
cache = "{cache}"

[connections.lucca]
plugin = "lucca"
settings = {{ base_url = "http://127.0.0.1:9" }}
secret = {{ file = "key" }}
allow_loopback = true

[connections.leapsome]
plugin = "leapsome"
settings = {{ base_url = "http://127.0.0.1:9" }}
secret = {{ file = "key" }}
allow_loopback = true

[flows.people]
source = "lucca"
target = "leapsome"
webhook = {{ secret = {{ file = "hook.secret" }}, id_field = "candidate.id" }}
"#,
            cache = cache.display()
        );
        std::fs::write(dir.path().join("muster.toml"), config).unwrap();
        std::fs::write(dir.path().join("key"), "unused").unwrap();
        std::fs::write(dir.path().join("hook.secret"), SECRET).unwrap();
        let mut process = std::process::Command::new(env!("CARGO_BIN_EXE_muster"))
            .args(["serve", "--listen", "127.0.0.1:0", "--config"])
            .arg(dir.path().join("muster.toml"))
            .env_remove("MUSTER_CONFIG")
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .unwrap();
        let mut lines = std::io::BufReader::new(process.stderr.take().unwrap()).lines();
        let mut child = ServeProcess {
            process,
            addr: "127.0.0.1:0".parse().unwrap(),
            dir,
        };
        child.addr = loop {
            let line = lines
                .next()
                .expect("serve exited before listening")
                .unwrap();
            if let Some(rest) = line.split("listening on http://").nth(1) {
                break rest.split_whitespace().next().unwrap().parse().unwrap();
            }
        };
        std::thread::spawn(move || for _ in lines {});
        child
    }

    /// Still running, answering `/healthz` within a second, and with at most
    /// `threads` threads.
    fn is_well(&mut self, threads: usize, after: &str) {
        assert!(
            self.process.try_wait().unwrap().is_none(),
            "muster serve died after {after}"
        );
        healthz_within_a_second(self.addr);
        let now = self.threads();
        assert!(
            now <= threads,
            "{now} threads after {after} (at most {threads})"
        );
    }

    fn threads(&self) -> usize {
        std::fs::read_dir(format!("/proc/{}/task", self.process.id()))
            .unwrap()
            .count()
    }
}

/// Opens `n` connections and sends each `bytes`, keeping them open.
fn stalled(addr: SocketAddr, n: usize, bytes: &[u8]) -> Vec<TcpStream> {
    (0..n)
        .map(|_| {
            let mut s = raw(addr);
            s.write_all(bytes).unwrap();
            s
        })
        .collect()
}

/// Every probe of issue 11 against the real binary with its default limits;
/// after each, the process lives, `/healthz` answers within a second and
/// the thread count has not grown past the handler pool.
#[test]
fn the_real_binary_survives_every_probe() {
    let mut child = ServeProcess::start();
    let addr = child.addr;
    healthz_within_a_second(addr);
    // One I/O thread and up to `http_threads` handler threads may come and
    // go; connections must add none.
    let bound = child.threads() + ServeConfig::defaults().http_threads;

    // 1. A GET declaring a petabyte of body: 413, closed, nothing read.
    let mut s = raw(addr);
    s.write_all(b"GET /healthz HTTP/1.1\r\nHost: m\r\nContent-Length: 1000000000000000\r\n\r\n")
        .unwrap();
    assert_eq!(answer_then_close(&mut s), Some(413));
    child.is_well(bound, "a GET declaring 1e15 bytes of body");

    // 2. Four requests declaring u64::MAX bytes: refused (431 by hyper: the
    //    length is not representable) and closed.
    for _ in 0..4 {
        let mut s = raw(addr);
        s.write_all(
            b"POST /webhooks/people HTTP/1.1\r\nHost: m\r\nContent-Length: 18446744073709551615\r\n\r\n",
        )
        .unwrap();
        assert_eq!(answer_then_close(&mut s), Some(431));
    }
    child.is_well(bound, "four requests declaring u64::MAX bytes");

    // 3. Four authenticated webhooks whose bodies stall after a few bytes.
    let head = format!(
        "POST /webhooks/people HTTP/1.1\r\nHost: m\r\n{SECRET_HEADER}: {SECRET}\r\nContent-Length: 100\r\n\r\n{{\"cand"
    );
    let slow = stalled(addr, 4, head.as_bytes());
    child.is_well(bound, "four stalled bodies");

    // 4. 200 connections that send half a header and stall.
    let half = stalled(addr, 200, b"GET /healthz HTTP/1.1\r\nHost: m\r\nX-Half: ");
    child.is_well(bound, "200 half-sent heads");

    drop((slow, half));
    child.is_well(bound, "the stalled clients went away");
    let store = Store::open(child.dir.path().join("state.db")).unwrap();
    assert!(store.inbox_recent("people", 10).unwrap().is_empty());
}
