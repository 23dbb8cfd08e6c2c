//! A real third-party SCIM 2.0 server for conformance tests: the
//! `scim2-server` package from PyPI (an in-memory RFC 7643/7644 server), run on
//! 127.0.0.1 from a virtualenv.
//!
//! Which Python: `MUSTER_SCIM2_PYTHON` if set (CI pre-creates a venv and points
//! it there), else `$CARGO_TARGET_TMPDIR/scim2-venv/bin/python`, created on
//! first use with `python3 -m venv` + `pip install scim2-server==PINNED`. If
//! that fails the tests fail with a message saying what to install: a
//! conformance test that silently skips proves nothing.
//!
//! Each [`Scim2Server`] is its own process with its own data, killed when the
//! value is dropped (also when a test panics).

#![allow(dead_code)]

use std::fs::File;
use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

/// The `scim2-server` release these tests were written and run against.
pub const PINNED_VERSION: &str = "0.8.3";

/// Bearer token the servers accept.
pub const TOKEN: &str = "conformance-token-7f3a";

/// How long a server may take to answer its first request. A bound on
/// waiting, not an assertion: a slow machine only waits longer.
const STARTUP_LIMIT: Duration = Duration::from_secs(90);

/// How long to wait for an access-log line to appear (see
/// [`Scim2Server::requests`]); also a bound, not an assertion.
const LOG_LIMIT: Duration = Duration::from_secs(20);

/// Options of one server.
#[derive(Debug, Default, Clone)]
pub struct Options {
    /// Contents of a `/ServiceProviderConfig` JSON document to announce
    /// instead of the default (everything supported).
    pub service_provider_config: Option<String>,
    /// Log every request's WSGI environment (headers included) to the log.
    pub debug: bool,
}

/// A running `scim2-server`; killed on drop.
pub struct Scim2Server {
    child: Child,
    port: u16,
    log: PathBuf,
    _dir: tempfile::TempDir,
}

impl Scim2Server {
    /// Starts a server on a free loopback port and waits until it answers.
    pub fn start(options: Options) -> Scim2Server {
        let python = python();
        let mut last_log = String::new();
        // A port picked free can be taken before the server binds it: retry.
        for _ in 0..3 {
            let dir = tempfile::tempdir().expect("temp dir");
            let port = free_port();
            let log = dir.path().join("server.log");
            let log_file = File::create(&log).expect("log file");
            let mut cmd = Command::new(&python);
            cmd.args(["-m", "scim2_server.testserver.cli"])
                .args(["--hostname", "127.0.0.1", "--port", &port.to_string()])
                .args(["--bearer-token", TOKEN])
                .stdin(Stdio::null())
                .stdout(log_file.try_clone().expect("log file"))
                .stderr(log_file);
            if let Some(spc) = &options.service_provider_config {
                let path = dir.path().join("spc.json");
                std::fs::write(&path, spc).expect("write spc");
                cmd.arg("--service-provider-config").arg(&path);
            }
            if options.debug {
                cmd.arg("--debug");
            }
            let child = cmd
                .spawn()
                .unwrap_or_else(|e| panic!("cannot start {}: {e}", python.display()));
            let mut server = Scim2Server {
                child,
                port,
                log,
                _dir: dir,
            };
            if server.wait_ready() {
                return server;
            }
            last_log = server.log();
        }
        panic!("scim2-server did not start; its last log:\n{last_log}");
    }

    /// The loopback port the server listens on.
    pub fn port(&self) -> u16 {
        self.port
    }

    /// `http://127.0.0.1:PORT/v2`, the SCIM base URL.
    pub fn base_url(&self) -> String {
        format!("http://127.0.0.1:{}/v2", self.port)
    }

    /// Everything the server logged so far: one access-log line per request
    /// (`"PATCH /v2/Users/… HTTP/1.1" 204`), plus errors and, with
    /// [`Options::debug`], each request's environment.
    pub fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// Access-log lines of requests with `method` whose path contains `path`.
    ///
    /// The server writes a request's access-log line just *after* sending
    /// its response, so the client can be faster than the log: this polls
    /// (bounded) until at least `expected` lines are there, then returns the
    /// count, for the caller to compare with `expected`.
    pub fn requests(&self, method: &str, path: &str, expected: usize) -> usize {
        let needle = format!("\"{method} ");
        let count = || {
            self.log()
                .lines()
                .filter(|l| l.contains(&needle) && l.contains(path))
                .count()
        };
        let start = Instant::now();
        let mut seen = count();
        while seen < expected && start.elapsed() < LOG_LIMIT {
            std::thread::sleep(Duration::from_millis(20));
            seen = count();
        }
        seen
    }

    /// Polls until an HTTP request gets an answer; false if the process
    /// exited (e.g. the port was taken) or the limit passed.
    fn wait_ready(&mut self) -> bool {
        let start = Instant::now();
        while start.elapsed() < STARTUP_LIMIT {
            if let Ok(Some(_)) = self.child.try_wait() {
                return false;
            }
            if let Ok(mut stream) = TcpStream::connect(("127.0.0.1", self.port)) {
                let _ = stream.set_read_timeout(Some(Duration::from_secs(5)));
                let request = format!(
                    "GET /v2/ServiceProviderConfig HTTP/1.0\r\nHost: 127.0.0.1\r\n\
                     Authorization: Bearer {TOKEN}\r\n\r\n"
                );
                let mut answer = String::new();
                if stream.write_all(request.as_bytes()).is_ok()
                    && stream.read_to_string(&mut answer).is_ok()
                    && answer.starts_with("HTTP/1.0 200")
                {
                    return true;
                }
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        false
    }
}

impl Drop for Scim2Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("free loopback port")
}

/// The Python that has `scim2-server` installed, provisioned once per
/// test process.
pub fn python() -> PathBuf {
    static PYTHON: OnceLock<PathBuf> = OnceLock::new();
    PYTHON.get_or_init(provision).clone()
}

fn provision() -> PathBuf {
    if let Some(p) = std::env::var_os("MUSTER_SCIM2_PYTHON") {
        let p = PathBuf::from(p);
        if let Err(why) = check_installed(&p) {
            fail(&format!(
                "MUSTER_SCIM2_PYTHON={} has no usable scim2-server: {why}",
                p.display()
            ));
        }
        return p;
    }
    let venv = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("scim2-venv");
    let python = venv.join("bin").join("python");
    if check_installed(&python).is_ok() {
        return python;
    }
    run(
        Command::new("python3").arg("-m").arg("venv").arg(&venv),
        "python3 -m venv",
    );
    run(
        Command::new(&python).args([
            "-m",
            "pip",
            "install",
            "--quiet",
            "--disable-pip-version-check",
            &format!("scim2-server=={PINNED_VERSION}"),
        ]),
        "pip install scim2-server",
    );
    if let Err(why) = check_installed(&python) {
        fail(&format!("scim2-server installed but unusable: {why}"));
    }
    python
}

/// Ok if `python` imports `scim2_server` at the pinned version.
fn check_installed(python: &Path) -> Result<(), String> {
    let out = Command::new(python)
        .args([
            "-c",
            "import scim2_server.testserver.cli, importlib.metadata as m; \
             print(m.version('scim2-server'))",
        ])
        .output()
        .map_err(|e| format!("cannot run {}: {e}", python.display()))?;
    let version = String::from_utf8_lossy(&out.stdout).trim().to_string();
    if !out.status.success() {
        return Err(String::from_utf8_lossy(&out.stderr).trim().to_string());
    }
    if version != PINNED_VERSION {
        return Err(format!(
            "scim2-server {version} is installed, the tests pin {PINNED_VERSION}"
        ));
    }
    Ok(())
}

fn run(cmd: &mut Command, what: &str) {
    match cmd.output() {
        Ok(out) if out.status.success() => {}
        Ok(out) => fail(&format!(
            "`{what}` failed ({}):\n{}{}",
            out.status,
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        )),
        Err(e) => fail(&format!("cannot run `{what}`: {e}")),
    }
}

fn fail(why: &str) -> ! {
    panic!(
        "\n\nSCIM conformance test: cannot provide the scim2-server test server.\n{why}\n\n\
         It needs python3 with the venv module and pip, and network access to PyPI to \
         install scim2-server=={PINNED_VERSION} (e.g. `apt-get install python3 python3-venv \
         python3-pip`), or MUSTER_SCIM2_PYTHON pointing at a python that has it.\n"
    )
}
