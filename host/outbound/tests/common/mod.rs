//! Loopback HTTP servers for the integration tests (tiny_http on 127.0.0.1, port 0).
//!
//! Each server records every request it receives, so a test can assert that a denied or
//! refused request never arrived, and answers through a closure given the request number.
#![allow(dead_code)]

use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use muster_outbound::{CredentialSlot, HostPattern, PluginPolicy, Policy, RetryPolicy};

/// A request as the server saw it.
#[derive(Debug, Clone)]
pub struct Hit {
    pub n: usize,
    pub method: String,
    pub path: String,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
    pub at: Instant,
}

impl Hit {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }
    pub fn headers_named(&self, name: &str) -> Vec<&str> {
        self.headers
            .iter()
            .filter(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
            .collect()
    }
}

/// What the server answers.
#[derive(Debug, Clone, Default)]
pub struct Reply {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
    /// Sleep before answering (to trigger read timeouts).
    pub delay: Duration,
    /// Send the body chunked, without a Content-Length.
    pub chunked: bool,
}

impl Reply {
    pub fn status(status: u16) -> Self {
        Self {
            status,
            ..Self::default()
        }
    }
    pub fn ok(body: impl Into<Vec<u8>>) -> Self {
        Self {
            status: 200,
            body: body.into(),
            ..Self::default()
        }
    }
    pub fn header(mut self, n: &str, v: &str) -> Self {
        self.headers.push((n.to_owned(), v.to_owned()));
        self
    }
    pub fn delay(mut self, d: Duration) -> Self {
        self.delay = d;
        self
    }
    pub fn chunked(mut self) -> Self {
        self.chunked = true;
        self
    }
}

pub struct TestServer {
    pub port: u16,
    hits: Arc<Mutex<Vec<Hit>>>,
    server: Arc<tiny_http::Server>,
    thread: Option<JoinHandle<()>>,
}

impl TestServer {
    /// Starts a server answering every request with `handler(&hit)`.
    pub fn start(handler: impl Fn(&Hit) -> Reply + Send + 'static) -> Self {
        let server = Arc::new(tiny_http::Server::http("127.0.0.1:0").expect("bind loopback"));
        let port = server.server_addr().to_ip().expect("ip listener").port();
        let hits = Arc::new(Mutex::new(Vec::new()));
        let (s, h) = (Arc::clone(&server), Arc::clone(&hits));
        let thread = std::thread::spawn(move || {
            for mut rq in s.incoming_requests() {
                let mut body = Vec::new();
                let _ = rq.as_reader().read_to_end(&mut body);
                let hit = {
                    let mut hits = h.lock().unwrap();
                    let hit = Hit {
                        n: hits.len(),
                        method: rq.method().as_str().to_owned(),
                        path: rq.url().to_owned(),
                        headers: rq
                            .headers()
                            .iter()
                            .map(|x| {
                                (
                                    x.field.as_str().as_str().to_owned(),
                                    x.value.as_str().to_owned(),
                                )
                            })
                            .collect(),
                        body,
                        at: Instant::now(),
                    };
                    hits.push(hit.clone());
                    hit
                };
                let reply = handler(&hit);
                std::thread::sleep(reply.delay);
                let len = (!reply.chunked).then_some(reply.body.len());
                let mut resp = tiny_http::Response::new(
                    tiny_http::StatusCode(reply.status),
                    Vec::new(),
                    std::io::Cursor::new(reply.body),
                    len,
                    None,
                );
                if reply.chunked {
                    resp = resp.with_chunked_threshold(0);
                }
                for (n, v) in reply.headers {
                    resp.add_header(
                        tiny_http::Header::from_bytes(n.as_bytes(), v.as_bytes()).unwrap(),
                    );
                }
                let _ = rq.respond(resp);
            }
        });
        Self {
            port,
            hits,
            server,
            thread: Some(thread),
        }
    }

    pub fn url(&self, path: &str) -> String {
        format!("http://127.0.0.1:{}{}", self.port, path)
    }

    pub fn origin(&self) -> HostPattern {
        HostPattern::parse(&format!("http://127.0.0.1:{}", self.port)).unwrap()
    }

    pub fn hits(&self) -> Vec<Hit> {
        self.hits.lock().unwrap().clone()
    }

    pub fn count(&self) -> usize {
        self.hits.lock().unwrap().len()
    }

    /// Waits (at most 10 s) until the server has seen `n` requests; returns what it saw.
    pub fn wait_for(&self, n: usize) -> Vec<Hit> {
        let deadline = Instant::now() + Duration::from_secs(10);
        while self.count() < n && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(10));
        }
        self.hits()
    }
}

impl Drop for TestServer {
    fn drop(&mut self) {
        self.server.unblock();
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

pub fn pat(s: &str) -> HostPattern {
    HostPattern::parse(s).unwrap()
}

/// A plugin granted exactly `hosts` (same patterns in manifest and tenant config).
pub fn grant(hosts: &[HostPattern]) -> PluginPolicy {
    PluginPolicy {
        manifest_hosts: hosts.to_vec(),
        tenant_hosts: hosts.to_vec(),
        ..PluginPolicy::default()
    }
}

/// The Lucca-style credential slot used across tests.
pub fn lucca_slot() -> CredentialSlot {
    CredentialSlot::new("lucca", "Authorization", "lucca application={secret}")
}

/// A loopback-enabled policy with short timeouts and fast retries, granting `plugin` to `hosts`.
pub fn loopback_policy(plugin: &str, hosts: &[HostPattern]) -> Policy {
    Policy {
        allow_loopback: true,
        connect_timeout: Duration::from_secs(2),
        read_timeout: Duration::from_secs(2),
        retry: RetryPolicy {
            max_attempts: 3,
            base_delay: Duration::from_millis(10),
            max_delay: Duration::from_secs(600),
            max_total_wait: Duration::from_secs(900),
        },
        ..Policy::default()
    }
    .with_plugin(plugin, grant(hosts))
}
