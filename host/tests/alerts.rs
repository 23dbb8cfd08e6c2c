//! `muster serve`'s alerts, end to end: a real serve with a real state
//! database, the `[alerts]` section read by the real config parser with its
//! webhook URL in a secret file, a loopback HTTP receiver (tiny_http) for
//! the webhook and a loopback SMTP sink (hand-written below: the SMTP
//! subset lettre speaks without TLS or login) for the email.
//!
//! The engine is behind the `Runner` trait (our own boundary): these tests
//! script it to write real failed, held and partly failing runs to the
//! store, then step a manual clock through a daily schedule.

use std::collections::VecDeque;
use std::io::{BufRead, BufReader, Write};
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::sync::mpsc::{Receiver, Sender, channel};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Duration;

use jiff::SignedDuration;
use muster::alerts::Alerting;
use muster::config::Config;
use muster::config::Secret;
use muster::schedule::{ManualClock, Schedule};
use muster::serve::{
    RunReport, Runner, SECRET_HEADER, ServeConfig, ServeFlow, ServeWebhook, Server,
};
use muster::store::{RunCounts, RunProblem, RunStatus, Store, Trigger};

const FLOW: &str = "lucca-to-leapsome";
const BASE: &str = "http://muster.test:8080";
/// The secret part of the webhook URL, as Slack puts it in the path.
const TOKEN: &str = "T0001/B0001/xoxb-s3cret-t0ken";
/// Generous: a delivery normally takes milliseconds.
const WAIT: Duration = Duration::from_secs(30);

/// What the scripted engine does on its next run.
enum Script {
    Fail(&'static str),
    Held(&'static str),
    Done(&'static [&'static str]),
}

struct Scripted {
    store: PathBuf,
    next: Mutex<VecDeque<Script>>,
}

impl Runner for Scripted {
    fn run(&self, flow: &str, trigger: Trigger, _only: Option<&str>) -> Result<RunReport, String> {
        let script = self
            .next
            .lock()
            .unwrap()
            .pop_front()
            .expect("a scripted run");
        let mut store = Store::open(&self.store).map_err(|e| e.to_string())?;
        let run = store.begin_run(flow, trigger).map_err(|e| e.to_string())?;
        let mut counts = RunCounts::new();
        let (status, error) = match script {
            Script::Fail(error) => (RunStatus::Failed, Some(error)),
            Script::Held(digest) => {
                counts.insert("deactivate".into(), 12);
                counts.insert("update".into(), 3);
                store
                    .hold_plan(flow, run, &[], digest, BREACH)
                    .map_err(|e| e.to_string())?;
                (RunStatus::Held, None)
            }
            Script::Done(records) => {
                let problems: Vec<RunProblem> = records.iter().map(|r| problem(r)).collect();
                store
                    .add_run_problems(run, &problems)
                    .map_err(|e| e.to_string())?;
                (RunStatus::Done, None)
            }
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

const BREACH: &str = "would deactivate 12 of 40 accounts (30%), over max_deactivate = 10%";

fn problem(record: &str) -> RunProblem {
    RunProblem {
        side: "source".into(),
        plugin: "lucca".into(),
        record: record.into(),
        field: "birth_date".into(),
        message: format!("`31/02/1990` is not a date (record {record})"),
    }
}

/// A loopback webhook receiver: every request's path and body, in order.
/// The first `fail_first` requests are answered `500`.
struct HookReceiver {
    port: u16,
    got: Receiver<(String, String)>,
}

fn hook_receiver(fail_first: usize) -> HookReceiver {
    let server = tiny_http::Server::http("127.0.0.1:0").unwrap();
    let port = server.server_addr().to_ip().unwrap().port();
    let (tx, got) = channel();
    std::thread::spawn(move || {
        for (n, mut req) in server.incoming_requests().enumerate() {
            let mut body = String::new();
            req.as_reader().read_to_string(&mut body).unwrap();
            let status = if n < fail_first { 500 } else { 200 };
            let url = req.url().to_string();
            let _ = req.respond(tiny_http::Response::from_string("ok").with_status_code(status));
            if status == 200 {
                let _ = tx.send((url, body));
            }
        }
    });
    HookReceiver { port, got }
}

impl HookReceiver {
    /// The `text` of the next alert received.
    fn next_text(&self) -> String {
        let (path, body) = self.got.recv_timeout(WAIT).expect("a webhook alert");
        assert_eq!(path, format!("/services/{TOKEN}"));
        let json: serde_json::Value = serde_json::from_str(&body).unwrap();
        assert_eq!(json.as_object().unwrap().len(), 1, "only `text`: {json}");
        json["text"].as_str().unwrap().to_string()
    }
}

/// One email as the SMTP sink received it.
#[derive(Debug)]
struct Mail {
    from: String,
    rcpt: Vec<String>,
    data: String,
}

impl Mail {
    /// The header `name`'s value (unfolded).
    fn header(&self, name: &str) -> String {
        let (head, _) = self.data.split_once("\r\n\r\n").expect("a header block");
        let unfolded = head.replace("\r\n ", " ").replace("\r\n\t", " ");
        unfolded
            .lines()
            .find_map(|l| l.strip_prefix(&format!("{name}: ")))
            .unwrap_or_else(|| panic!("no {name} header in {head}"))
            .to_string()
    }

    /// The body, decoded when lettre chose quoted-printable (lines over 76
    /// characters).
    fn body(&self) -> String {
        let (_, body) = self.data.split_once("\r\n\r\n").expect("a body");
        if !self
            .header("Content-Transfer-Encoding")
            .eq_ignore_ascii_case("quoted-printable")
        {
            return body.to_string();
        }
        let b = body.replace("=\r\n", "");
        let b = b.as_bytes();
        let mut out = Vec::new();
        let mut i = 0;
        while i < b.len() {
            let hex = b
                .get(i + 1..i + 3)
                .and_then(|h| std::str::from_utf8(h).ok());
            match (b[i], hex.and_then(|h| u8::from_str_radix(h, 16).ok())) {
                (b'=', Some(byte)) => {
                    out.push(byte);
                    i += 3;
                }
                (c, _) => {
                    out.push(c);
                    i += 1;
                }
            }
        }
        String::from_utf8(out).unwrap()
    }
}

/// A loopback SMTP sink: greets, accepts EHLO, MAIL, RCPT, DATA, QUIT, and
/// hands each message over.
fn smtp_sink() -> (u16, Receiver<Mail>) {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let (tx, rx) = channel();
    std::thread::spawn(move || {
        for conn in listener.incoming() {
            let tx = tx.clone();
            std::thread::spawn(move || smtp_session(conn.unwrap(), &tx));
        }
    });
    (port, rx)
}

fn smtp_session(conn: TcpStream, tx: &Sender<Mail>) {
    let mut out = conn.try_clone().unwrap();
    let mut lines = BufReader::new(conn);
    let mut say = |s: &str| out.write_all(format!("{s}\r\n").as_bytes()).unwrap();
    say("220 sink ESMTP");
    let mut mail = Mail {
        from: String::new(),
        rcpt: Vec::new(),
        data: String::new(),
    };
    let mut line = String::new();
    while lines.read_line(&mut line).unwrap_or(0) > 0 {
        let cmd = line.trim_end().to_string();
        line.clear();
        let upper = cmd.to_ascii_uppercase();
        if upper.starts_with("EHLO") || upper.starts_with("HELO") {
            say("250 sink");
        } else if let Some(from) = upper.strip_prefix("MAIL FROM:") {
            mail.from = from.to_lowercase();
            say("250 ok");
        } else if let Some(to) = upper.strip_prefix("RCPT TO:") {
            mail.rcpt.push(to.to_lowercase());
            say("250 ok");
        } else if upper == "DATA" {
            say("354 go on");
            while lines.read_line(&mut line).unwrap() > 0 && line != ".\r\n" {
                mail.data.push_str(&line);
                line.clear();
            }
            line.clear();
            say("250 queued");
            tx.send(std::mem::replace(
                &mut mail,
                Mail {
                    from: String::new(),
                    rcpt: Vec::new(),
                    data: String::new(),
                },
            ))
            .unwrap();
        } else if upper == "QUIT" {
            say("221 bye");
            return;
        } else {
            say("502 not here");
        }
    }
}

/// Every log line of this test binary, captured (the alerts thread logs
/// from its own thread, so the subscriber is global).
fn logs() -> &'static Arc<Mutex<Vec<u8>>> {
    static LOGS: OnceLock<Arc<Mutex<Vec<u8>>>> = OnceLock::new();
    LOGS.get_or_init(|| {
        let buf = Arc::new(Mutex::new(Vec::new()));
        let sink = buf.clone();
        tracing_subscriber::fmt()
            .with_max_level(tracing::Level::TRACE)
            .with_ansi(false)
            .with_writer(move || LogWriter(sink.clone()))
            .init();
        buf
    })
}

struct LogWriter(Arc<Mutex<Vec<u8>>>);

impl Write for LogWriter {
    fn write(&mut self, b: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(b);
        Ok(b.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// A tenant with `[alerts]` as the operator writes it; the webhook URL in
/// a secret file.
struct Tenant {
    dir: tempfile::TempDir,
    alerting: Alerting,
}

fn tenant(hook_port: u16, email: Option<u16>) -> Tenant {
    logs();
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("hook"),
        format!("http://127.0.0.1:{hook_port}/services/{TOKEN}\n"),
    )
    .unwrap();
    let email = email.map_or(String::new(), |port| {
        format!(
            "[alerts.email]\nsmtp_host = \"127.0.0.1\"\nsmtp_port = {port}\ntls = \"none\"\n\
             from = \"muster <muster@acme.test>\"\nto = [\"it@acme.test\", \"Ops <ops@acme.test>\"]\n"
        )
    });
    let text = format!(
        "[tenant]\nname = \"acme\"\ntimezone = \"Europe/Paris\"\nstate = \"muster.db\"\n\n\
         [alerts]\nbase_url = \"{BASE}/\"\nwebhook_url = {{ file = \"hook\" }}\nfailing_after_runs = 3\n{email}"
    );
    let path = dir.path().join("muster.toml");
    std::fs::write(&path, text).unwrap();
    let config = Config::load(&path).unwrap();
    let mut alerting = Alerting::load(config.alerts.as_ref().unwrap()).unwrap();
    alerting.retry_pause = Duration::from_millis(20);
    Tenant { dir, alerting }
}

impl Tenant {
    fn store(&self) -> PathBuf {
        self.dir.path().join("muster.db")
    }

    /// Starts serve with one daily flow whose runs follow `script`.
    fn serve(&self, script: Vec<Script>) -> (Server, Arc<ManualClock>) {
        self.serve_with(Vec::new(), script)
    }

    /// Starts serve with the daily flow and `more` flows; every run, in
    /// the order they happen, follows `script`.
    fn serve_with(&self, more: Vec<ServeFlow>, script: Vec<Script>) -> (Server, Arc<ManualClock>) {
        let clock = Arc::new(ManualClock::new("2026-06-10T10:00:00Z".parse().unwrap()));
        let cfg = ServeConfig {
            tenant: "acme".into(),
            timezone: jiff::tz::TimeZone::get("Europe/Paris").unwrap(),
            timezone_name: "Europe/Paris".into(),
            store: self.store(),
            flows: [ServeFlow {
                name: FLOW.into(),
                source: "lucca".into(),
                target: "leapsome".into(),
                schedule: Some(Schedule::parse("daily 02:30").unwrap()),
                webhook: None,
            }]
            .into_iter()
            .chain(more)
            .collect(),
            http_threads: 1,
            alerts: Some(self.alerting.clone()),
            ..ServeConfig::defaults()
        };
        let runner = Arc::new(Scripted {
            store: self.store(),
            next: Mutex::new(script.into()),
        });
        let server = Server::start("127.0.0.1:0", cfg, runner, clock.clone()).unwrap();
        (server, clock)
    }
}

/// Moves the clock a day on and waits for the scheduled run.
fn next_night(server: &Server, clock: &ManualClock) {
    clock.advance(SignedDuration::from_hours(24));
    server.wake();
    server.wait_idle();
}

fn assert_names(text: &str, what: &[&str]) {
    for w in what {
        assert!(text.contains(w), "`{w}` missing from: {text}");
    }
}

#[test]
fn a_failed_run_and_a_held_plan_reach_the_webhook_and_the_mailbox_once() {
    let hook = hook_receiver(0);
    let (smtp_port, mails) = smtp_sink();
    let t = tenant(hook.port, Some(smtp_port));
    let (server, clock) = t.serve(vec![
        Script::Fail("Lucca answered 503 <b>maintenance</b>"),
        Script::Held("digest-1"),
        Script::Held("digest-1"),
        Script::Fail("sentinel"),
    ]);

    next_night(&server, &clock);
    let text = hook.next_text();
    assert_names(
        &text,
        &[
            "acme",
            FLOW,
            "run 1 failed",
            "2026-06-11 12:00 CEST",
            "Lucca answered 503 &lt;b&gt;maintenance&lt;/b&gt;",
            &format!("Review: {BASE}/runs/1"),
        ],
    );
    assert!(!text.contains("<b>"), "markup escaped: {text}");
    let mail = mails.recv_timeout(WAIT).expect("an email");
    assert_eq!(mail.from, "<muster@acme.test>");
    assert_eq!(mail.rcpt, vec!["<it@acme.test>", "<ops@acme.test>"]);
    assert_eq!(
        mail.header("Subject"),
        format!("[muster acme] {FLOW}: run 1 failed")
    );
    assert_names(
        &mail.header("To"),
        &["it@acme.test", "Ops", "<ops@acme.test>"],
    );
    assert_names(&mail.header("From"), &["muster", "<muster@acme.test>"]);
    assert_names(
        &mail.body(),
        &[
            "Lucca answered 503 <b>maintenance</b>",
            "2026-06-11 12:00 CEST",
            &format!("Review: {BASE}/runs/1"),
        ],
    );

    next_night(&server, &clock);
    let text = hook.next_text();
    assert_names(
        &text,
        &[
            FLOW,
            "the plan of run 2 is held",
            BREACH,
            "deactivate 12, update 3",
            "2026-06-12 12:00 CEST",
            &format!("Review: {BASE}/held/{FLOW}"),
        ],
    );
    let mail = mails.recv_timeout(WAIT).expect("an email");
    assert_eq!(
        mail.header("Subject"),
        format!("[muster acme] {FLOW}: the plan of run 2 is held")
    );
    assert_names(&mail.body(), &[BREACH, &format!("{BASE}/held/{FLOW}")]);

    // The same plan held again: no alert. The next alert is run 4's.
    next_night(&server, &clock);
    next_night(&server, &clock);
    assert_names(&hook.next_text(), &["run 4 failed", "sentinel"]);
    assert_names(
        &mails.recv_timeout(WAIT).unwrap().header("Subject"),
        &["run 4 failed"],
    );
    server.stop();

    // After a restart, the same held plan is still not alerted again.
    let (server, clock) = t.serve(vec![Script::Held("digest-1"), Script::Fail("sentinel 2")]);
    next_night(&server, &clock);
    next_night(&server, &clock);
    assert_names(&hook.next_text(), &["run 6 failed", "sentinel 2"]);
    server.stop();
}

#[test]
fn a_record_failing_in_three_consecutive_runs_is_alerted_once() {
    let hook = hook_receiver(0);
    let t = tenant(hook.port, None);
    let (server, clock) = t.serve(vec![
        Script::Done(&["7", "8"]),
        Script::Done(&["7", "8"]),
        Script::Done(&["7"]),
        Script::Done(&["7", "8"]),
        Script::Done(&["7"]),
        Script::Fail("sentinel"),
    ]);
    for _ in 0..2 {
        next_night(&server, &clock);
    }
    next_night(&server, &clock);
    let text = hook.next_text();
    assert_names(
        &text,
        &[
            FLOW,
            "records keep failing (3 runs in a row)",
            "1 record(s) failed in each of the last 3 runs (latest: run 3)",
            "record 7: birth_date: `31/02/1990` is not a date (record 7)",
        ],
    );
    assert!(!text.contains("record 8"), "8 recovered in run 3: {text}");
    // Runs 4 and 5: 7 still failing, no second alert; the next is run 6's.
    for _ in 0..3 {
        next_night(&server, &clock);
    }
    assert_names(&hook.next_text(), &["run 6 failed"]);
    server.stop();
}

#[test]
fn a_failed_delivery_is_retried_and_the_webhook_url_is_never_logged_or_stored() {
    let hook = hook_receiver(1);
    let t = tenant(hook.port, None);
    let (server, clock) = t.serve(vec![Script::Fail("boom")]);
    next_night(&server, &clock);
    assert_names(&hook.next_text(), &["run 1 failed", "boom"]);
    server.stop();

    let logs = String::from_utf8(logs().lock().unwrap().clone()).unwrap();
    let origin = format!("http://127.0.0.1:{}", hook.port);
    assert!(
        logs.contains("attempt 1 of 3 failed") && logs.contains(&origin),
        "the failed attempt is logged, naming the host: {logs}"
    );
    assert!(
        !logs.contains("s3cret") && !logs.contains(TOKEN),
        "the token leaked into the logs"
    );
    for file in ["muster.db", "muster.db-wal"] {
        let path: &Path = &t.dir.path().join(file);
        if let Ok(bytes) = std::fs::read(path) {
            let hay = String::from_utf8_lossy(&bytes);
            assert!(!hay.contains("s3cret"), "the token is in {file}");
        }
    }
    let store = Store::open(t.store()).unwrap();
    assert_eq!(
        store.history(FLOW, 10).unwrap().len(),
        1,
        "the run is stored"
    );
}

#[test]
fn an_unreachable_webhook_is_given_up_on_and_logged_without_its_token() {
    // A port nothing listens on any more: every attempt is refused.
    let port = TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let t = tenant(port, None);
    let (server, clock) = t.serve(vec![Script::Fail("boom")]);
    next_night(&server, &clock);
    // The run is not held up by the delivery: it is already recorded.
    assert_eq!(
        Store::open(t.store()).unwrap().history(FLOW, 1).unwrap()[0].status,
        RunStatus::Failed
    );
    let origin = format!("http://127.0.0.1:{port}");
    let gave_up = |logs: &str| {
        logs.lines()
            .any(|l| l.contains("giving up after 3 attempts") && l.contains(&origin))
    };
    let deadline = std::time::Instant::now() + WAIT;
    let logs = loop {
        let logs = String::from_utf8(logs().lock().unwrap().clone()).unwrap();
        if gave_up(&logs) || std::time::Instant::now() > deadline {
            break logs;
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    assert!(gave_up(&logs), "the lost alert is logged: {logs}");
    assert!(!logs.contains(TOKEN), "the token leaked into the logs");
    server.stop();
}

#[test]
fn a_webhook_event_that_keeps_failing_is_alerted_on_its_first_failure_only() {
    const HOOKED: &str = "flatchr-to-lucca";
    let hook = hook_receiver(0);
    let t = tenant(hook.port, None);
    let webhook_flow = ServeFlow {
        name: HOOKED.into(),
        source: "flatchr".into(),
        target: "lucca".into(),
        schedule: None,
        webhook: Some(ServeWebhook {
            secret: Secret::new("hook-secret"),
            id_field: "candidate.id".into(),
            require: Vec::new(),
        }),
    };
    let (server, clock) = t.serve_with(
        vec![webhook_flow],
        vec![
            Script::Fail("Lucca refused the candidate"),
            Script::Fail("Lucca refused the candidate"),
            Script::Fail("nightly sentinel"),
            Script::Fail("Lucca refused the candidate"),
        ],
    );
    let url = format!("http://{}/webhooks/{HOOKED}", server.local_addr());
    let answer = ureq::post(&url)
        .header(SECRET_HEADER, "hook-secret")
        .send(r#"{"candidate": {"id": 42}}"#)
        .unwrap();
    assert_eq!(answer.status(), 202);
    assert_names(
        &hook.next_text(),
        &[HOOKED, "run 1 failed", "Lucca refused"],
    );

    // The retry sweep runs the event again: it fails again, silently.
    clock.advance(SignedDuration::from_mins(6));
    server.wake();
    let attempts = || {
        Store::open(t.store())
            .unwrap()
            .inbox_pending(HOOKED)
            .unwrap()[0]
            .attempts
    };
    let deadline = std::time::Instant::now() + WAIT;
    while attempts() < 2 && std::time::Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(20));
    }
    assert_eq!(attempts(), 2, "the event was retried");
    // The nightly run (and another retry) later: the next alert is the nightly one.
    next_night(&server, &clock);
    let text = hook.next_text();
    assert_names(&text, &[FLOW, "nightly sentinel"]);
    assert!(!text.contains(HOOKED), "{text}");
    server.stop();
}
