//! A simulated Lucca tenant and Leapsome organisation joined by a config,
//! driven through the real `muster` binary: the world of the engine's and
//! the lease's end-to-end tests (`engine.rs`, `lease.rs`).

use std::collections::BTreeMap;
use std::io::BufRead;
use std::path::PathBuf;
use std::process::{Child, Command, Output, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use muster::store::{JournalState, Store};
use muster_sandbox::{LeapsomeOptions, LeapsomeSim, LuccaOptions, LuccaSim, Tenant};

pub const FLOW: &str = "people";

/// An account's comparable facts: source id, active, given and family name.
pub type Account = (Option<String>, bool, Option<String>, Option<String>);
/// The sandbox tenants' "today" (their simulated epoch).
pub const TODAY: &str = "2026-06-01";

/// A Lucca tenant of `n` people and an empty Leapsome, no rate limits (the
/// connectors' own rate-limit tests cover those), and a config joining them.
pub struct World {
    pub lucca: LuccaSim,
    pub leapsome: LeapsomeSim,
    pub dir: tempfile::TempDir,
}

/// How a [`World`] is built, beyond its size.
pub struct Setup<'s> {
    /// The Leapsome simulator's options, as they are (rate limit included).
    pub leapsome: LeapsomeOptions,
    /// More keys of `[connections.leapsome]` (e.g. `max_in_flight = 8`).
    pub leapsome_extra: &'s str,
    /// The flow's `options` table.
    pub options: &'s str,
    /// More keys of the flow's section.
    pub flow_extra: &'s str,
}

impl Default for Setup<'_> {
    /// No simulator rate limit, no groups, reactivation on.
    fn default() -> Self {
        Setup {
            leapsome: LeapsomeOptions {
                rate_limit: None,
                ..LeapsomeOptions::default()
            },
            leapsome_extra: "",
            options: "{ sync_groups = false, reactivate = true }",
            flow_extra: "",
        }
    }
}

impl World {
    pub fn new(n: usize, leapsome: LeapsomeOptions) -> World {
        World::with_flow(n, leapsome, "")
    }

    /// A world whose flow section gets `flow_extra` (more TOML keys).
    pub fn with_flow(n: usize, leapsome: LeapsomeOptions, flow_extra: &str) -> World {
        World::with_setup(
            n,
            Setup {
                leapsome: LeapsomeOptions {
                    rate_limit: None,
                    ..leapsome
                },
                flow_extra,
                ..Setup::default()
            },
        )
    }

    /// A world of `n` people built as `setup` says.
    pub fn with_setup(n: usize, setup: Setup<'_>) -> World {
        let Setup {
            leapsome,
            leapsome_extra,
            options,
            flow_extra,
        } = setup;
        let lucca = LuccaSim::start(
            Tenant::generate(7, n),
            LuccaOptions {
                rate_limit: None,
                ..LuccaOptions::default()
            },
        )
        .expect("start lucca");
        let leapsome = LeapsomeSim::start(leapsome).expect("start leapsome");
        let dir = tempfile::tempdir().expect("tempdir");
        std::fs::write(dir.path().join("lucca.key"), lucca.api_key()).expect("key");
        std::fs::write(dir.path().join("leapsome.token"), leapsome.token()).expect("token");
        let config = format!(
            r#"[tenant]
name = "engine-test"
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
{leapsome_extra}

[flows.{FLOW}]
source = "lucca"
target = "leapsome"
options = {options}
{flow_extra}
"#,
            cache = super::cache_dir().display(),
            lucca = lucca.base_url(),
            leapsome = leapsome.base_url(),
        );
        std::fs::write(dir.path().join("muster.toml"), config).expect("config");
        World {
            lucca,
            leapsome,
            dir,
        }
    }

    pub fn config(&self) -> PathBuf {
        self.dir.path().join("muster.toml")
    }

    pub fn command(&self, args: &[&str]) -> Command {
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_muster"));
        cmd.args(args)
            .arg("--config")
            .arg(self.config())
            .env("MUSTER_TODAY", TODAY)
            .env_remove("MUSTER_CONFIG");
        cmd
    }

    pub fn muster(&self, args: &[&str]) -> Output {
        self.command(args).output().expect("run muster")
    }

    pub fn store(&self) -> Store {
        Store::open(self.dir.path().join("state.db")).expect("open store")
    }

    /// Leapsome's accounts as comparable facts: email → (source id, active, names).
    pub fn accounts(&self) -> BTreeMap<String, Account> {
        let users = self.leapsome.users();
        let mut out = BTreeMap::new();
        for u in users {
            let previous = out.insert(
                u.user_name.to_lowercase(),
                (
                    u.external_id.clone(),
                    u.active,
                    u.given_name.clone(),
                    u.family_name.clone(),
                ),
            );
            assert!(previous.is_none(), "duplicate account for {}", u.user_name);
        }
        out
    }
}

pub fn text(o: &Output) -> String {
    format!(
        "exit {:?}\n--- stdout\n{}\n--- stderr\n{}",
        o.status.code(),
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    )
}

pub fn json(o: &Output) -> serde_json::Value {
    serde_json::from_slice(&o.stdout).unwrap_or_else(|e| panic!("not JSON ({e}):\n{}", text(o)))
}

/// Waits until Leapsome has served `writes` more write requests than
/// `start`, while `child` runs. Returns false when the child finished first.
pub fn await_writes(world: &World, child: &mut Child, start: usize, writes: usize) -> bool {
    let deadline = Instant::now() + Duration::from_secs(120);
    loop {
        if let Ok(Some(_)) = child.try_wait() {
            return false;
        }
        if world.leapsome.request_counts().writes >= start + writes {
            return true;
        }
        assert!(Instant::now() < deadline, "the sync made no progress");
        std::thread::sleep(Duration::from_millis(2));
    }
}

/// Waits until the child has sent `writes` more write requests to
/// Leapsome, then kills it. Returns false when the child finished first.
pub fn kill_after_writes(world: &World, child: &mut Child, writes: usize) -> bool {
    let start = world.leapsome.request_counts().writes;
    if !await_writes(world, child, start, writes) {
        return false;
    }
    // SIGKILL: no destructor, no flush, no chance to finish the call.
    child.kill().expect("kill");
    let _ = child.wait();
    true
}

pub fn assert_journal_resolved(world: &World) {
    let store = world.store();
    let open = store.unresolved_journal(FLOW).expect("journal");
    assert!(open.is_empty(), "unresolved journal entries: {open:?}");
    for run in store.history(FLOW, 10_000).expect("history") {
        for entry in run.journal {
            assert_ne!(entry.state, JournalState::Intent, "{entry:?}");
        }
    }
}

/// One HTTP/1.1 request over a plain socket; returns the status code and body.
pub fn http(
    addr: &str,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
    body: &str,
) -> (u16, String) {
    let answer = http_answer(addr, method, path, headers, body);
    (answer.status, answer.body)
}

/// An HTTP answer: status, response headers (names lower-cased), body.
pub struct HttpAnswer {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: String,
}

impl HttpAnswer {
    /// The first value of response header `name` (lower case).
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }
}

/// One HTTP/1.1 request over a plain socket, with the response headers.
pub fn http_answer(
    addr: &str,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
    body: &str,
) -> HttpAnswer {
    use std::io::{Read, Write};
    let mut stream = std::net::TcpStream::connect(addr).expect("connect to serve");
    let mut req = format!(
        "{method} {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\nContent-Length: {}\r\n",
        body.len()
    );
    for (k, v) in headers {
        req.push_str(&format!("{k}: {v}\r\n"));
    }
    req.push_str("\r\n");
    req.push_str(body);
    stream.write_all(req.as_bytes()).expect("send");
    let mut answer = String::new();
    stream.read_to_string(&mut answer).expect("read");
    let (head, body) = answer.split_once("\r\n\r\n").unwrap_or((&answer, ""));
    let mut lines = head.lines();
    let status = lines
        .next()
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|s| s.parse().ok())
        .unwrap_or(0);
    let headers = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(k, v)| (k.trim().to_ascii_lowercase(), v.trim().to_owned()))
        .collect();
    HttpAnswer {
        status,
        headers,
        body: body.to_owned(),
    }
}

/// A running `muster serve`, killed when the test ends however it ends.
pub struct Serving {
    child: Child,
    /// Where it listens (`127.0.0.1:PORT`).
    pub addr: String,
    /// What it wrote on stderr so far.
    pub log: Arc<Mutex<String>>,
}

impl Drop for Serving {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl World {
    /// Starts `muster serve` on a free loopback port.
    pub fn serve(&self) -> Serving {
        serve_process(self.command(&["serve", "--listen", "127.0.0.1:0"]))
    }
}

/// Spawns `cmd` (a `muster serve --listen 127.0.0.1:0 …`), waits until it
/// says where it listens, and keeps draining its stderr into the log.
pub fn serve_process(mut cmd: Command) -> Serving {
    let mut child = cmd
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn muster serve");
    let stderr = child.stderr.take().expect("stderr");
    let mut lines = std::io::BufReader::new(stderr).lines();
    let addr = loop {
        let line = lines
            .next()
            .expect("serve exited before listening")
            .expect("read stderr");
        if let Some(rest) = line.split("listening on http://").nth(1) {
            break rest.split_whitespace().next().expect("address").to_owned();
        }
    };
    // Keep draining stderr so the child never blocks on a full pipe.
    let log = Arc::new(Mutex::new(String::new()));
    let sink = Arc::clone(&log);
    std::thread::spawn(move || {
        for line in lines.map_while(Result::ok) {
            let mut log = sink.lock().unwrap_or_else(|e| e.into_inner());
            log.push_str(&line);
            log.push('\n');
        }
    });
    Serving { child, addr, log }
}
