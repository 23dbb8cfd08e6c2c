//! The HTTP plumbing shared by every simulator: a `tiny_http` server on `127.0.0.1:0`,
//! translating to and from plain request/response values so the simulators themselves are
//! pure functions of (state, request) that never touch sockets.
//!
//! Requests are handled **concurrently**: one thread takes requests off the listener and
//! hands each to a thread of its own, at most [`MAX_IN_FLIGHT`] at a time. A request
//! sleeping through simulated latency therefore holds up nobody else — as on a real network,
//! where 30 calls of 150 ms each can all be on the wire in the same second.

use std::io::Read;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Condvar, Mutex};
use std::thread::JoinHandle;

use crate::SandboxError;

/// Requests handled at once per simulator; past it, the next waits for one to finish.
pub const MAX_IN_FLIGHT: usize = 256;

/// Bodies above this size are refused with 413, like the real APIs.
pub const MAX_BODY: usize = 4 * 1024 * 1024;

/// How much of a too-large body is read and discarded before answering 413.
const DRAIN_LIMIT: u64 = 64 * 1024 * 1024;

/// An incoming request, already read.
#[derive(Debug, Clone)]
pub struct Request {
    pub method: String,
    /// Path and query, as sent (`/api/v3/users?fields=id`).
    pub url: String,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
    /// The body was larger than [`MAX_BODY`] and was not read entirely.
    pub body_too_large: bool,
    /// The client's address (its socket's port tells which process sent the request, see
    /// [`RequestRecord::peer_port`](crate::RequestRecord::peer_port)); `None` when unknown.
    pub peer: Option<std::net::SocketAddr>,
}

impl Request {
    /// First header with this name (case-insensitive), as sent (not trimmed).
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }
}

/// A response to send.
#[derive(Debug, Clone)]
pub struct Response {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

impl Response {
    /// A JSON response.
    pub fn json(status: u16, value: &serde_json::Value) -> Self {
        Response {
            status,
            headers: vec![(
                "Content-Type".into(),
                "application/json; charset=utf-8".into(),
            )],
            body: value.to_string().into_bytes(),
        }
    }
}

/// What a simulator does with a request; called concurrently from the worker threads.
pub type Handler = dyn Fn(&Request) -> Response + Send + Sync;

/// A running HTTP server; when dropped, stops taking requests (and, started with
/// [`Server::start`], waits for those in flight).
pub struct Server {
    port: u16,
    _backend: Backend,
}

/// What serves the port: a `tiny_http` server of its own, or a [`Hub`](crate::hub::Hub);
/// kept for what dropping it does.
enum Backend {
    Own {
        _server: OwnServer,
    },
    Hub {
        _registration: crate::hub::Registration,
    },
}

impl Server {
    /// Binds `127.0.0.1:0` and starts serving with `handler` on threads of its own.
    pub fn start(handler: Arc<Handler>) -> Result<Self, SandboxError> {
        let own = OwnServer::start(handler)?;
        Ok(Server {
            port: own.port,
            _backend: Backend::Own { _server: own },
        })
    }

    /// Binds `127.0.0.1:0` and serves it with `handler` on `hub`'s runtime (see [`hub`]).
    ///
    /// [`hub`]: crate::hub
    pub fn start_on(hub: &crate::hub::Hub, handler: Arc<Handler>) -> Result<Self, SandboxError> {
        let registration = hub.serve(handler)?;
        Ok(Server {
            port: registration.port,
            _backend: Backend::Hub {
                _registration: registration,
            },
        })
    }

    /// The bound port on 127.0.0.1.
    pub fn port(&self) -> u16 {
        self.port
    }
}

/// A `tiny_http` server with its acceptor thread.
struct OwnServer {
    inner: Arc<tiny_http::Server>,
    port: u16,
    stop: Arc<AtomicBool>,
    acceptor: Option<JoinHandle<()>>,
    in_flight: Arc<InFlight>,
}

/// How many requests are being handled, bounded by [`MAX_IN_FLIGHT`].
#[derive(Default)]
struct InFlight {
    count: Mutex<usize>,
    changed: Condvar,
}

impl InFlight {
    fn lock(&self) -> std::sync::MutexGuard<'_, usize> {
        self.count.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Waits until fewer than `limit` requests are in flight, then counts one more.
    fn enter(&self, limit: usize) {
        let mut n = self.lock();
        while *n >= limit {
            n = self.changed.wait(n).unwrap_or_else(|e| e.into_inner());
        }
        *n += 1;
    }

    fn leave(&self) {
        *self.lock() -= 1;
        self.changed.notify_all();
    }
}

/// A loopback listener whose accepted connections have Nagle's algorithm off
/// (Linux copies `TCP_NODELAY` to accepted sockets). tiny_http writes a
/// response's head and body separately; with Nagle on, a body over ~1 KB
/// waits for the client's delayed ACK — 40 ms per response, which made
/// every simulated write call cost 40 ms.
pub(crate) fn nodelay_listener() -> std::io::Result<std::net::TcpListener> {
    use socket2::{Domain, Protocol, Socket, Type};
    let socket = Socket::new(Domain::IPV4, Type::STREAM, Some(Protocol::TCP))?;
    socket.set_tcp_nodelay(true)?;
    let addr: std::net::SocketAddr = ([127, 0, 0, 1], 0).into();
    socket.bind(&addr.into())?;
    socket.listen(1024)?;
    Ok(socket.into())
}

impl OwnServer {
    fn start(handler: Arc<Handler>) -> Result<Self, SandboxError> {
        let listener = nodelay_listener().map_err(|e| SandboxError::Bind(e.to_string()))?;
        let inner = tiny_http::Server::from_listener(listener, None)
            .map_err(|e| SandboxError::Bind(e.to_string()))?;
        let port = inner
            .server_addr()
            .to_ip()
            .map(|a| a.port())
            .ok_or_else(|| SandboxError::Bind("not an IP listener".into()))?;
        let inner = Arc::new(inner);
        let stop = Arc::new(AtomicBool::new(false));
        let in_flight = Arc::new(InFlight::default());
        let acceptor = {
            let (inner, stop, in_flight) = (inner.clone(), stop.clone(), in_flight.clone());
            std::thread::spawn(move || accept(&inner, &stop, &in_flight, &handler))
        };
        Ok(OwnServer {
            inner,
            port,
            stop,
            acceptor: Some(acceptor),
            in_flight,
        })
    }
}

impl Drop for OwnServer {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        // Wakes the acceptor stuck in recv().
        self.inner.unblock();
        if let Some(acceptor) = self.acceptor.take() {
            let _ = acceptor.join();
        }
        let mut n = self.in_flight.lock();
        while *n > 0 {
            n = self
                .in_flight
                .changed
                .wait(n)
                .unwrap_or_else(|e| e.into_inner());
        }
    }
}

/// Takes requests off the listener until `stop`, each handled on a thread of its own.
fn accept(
    server: &tiny_http::Server,
    stop: &AtomicBool,
    in_flight: &Arc<InFlight>,
    handler: &Arc<Handler>,
) {
    while !stop.load(Ordering::SeqCst) {
        let Ok(raw) = server.recv() else { continue };
        in_flight.enter(MAX_IN_FLIGHT);
        let (done, handler) = (in_flight.clone(), handler.clone());
        let spawned = std::thread::Builder::new()
            .name("sandbox-request".into())
            .spawn(move || {
                serve(raw, &*handler);
                done.leave();
            });
        if spawned.is_err() {
            // No thread to be had: the request is dropped (its client sees the connection
            // close), and the count goes back down.
            in_flight.leave();
        }
    }
}

/// Reads one request, answers it with `handler`.
fn serve(mut raw: tiny_http::Request, handler: &Handler) {
    let mut body = Vec::new();
    let reader = raw.as_reader();
    let read = (&mut *reader)
        .take(MAX_BODY as u64 + 1)
        .read_to_end(&mut body);
    if body.len() > MAX_BODY {
        // Drain (bounded) what the client is still sending, so it reads our 413 instead of
        // a connection reset in the middle of its upload.
        let _ = std::io::copy(&mut reader.take(DRAIN_LIMIT), &mut std::io::sink());
    }
    let request = Request {
        method: raw.method().as_str().to_ascii_uppercase(),
        url: raw.url().to_string(),
        headers: raw
            .headers()
            .iter()
            .map(|h| {
                (
                    h.field.as_str().as_str().to_string(),
                    h.value.as_str().to_string(),
                )
            })
            .collect(),
        body_too_large: body.len() > MAX_BODY,
        body,
        peer: raw.remote_addr().copied(),
    };
    let response = if read.is_err() {
        Response::json(
            400,
            &serde_json::json!({"status": 400, "message": "unreadable body"}),
        )
    } else {
        handler(&request)
    };
    let mut out = tiny_http::Response::from_data(response.body).with_status_code(response.status);
    for (name, value) in response.headers {
        if let Ok(h) = tiny_http::Header::from_bytes(name.as_bytes(), value.as_bytes()) {
            out.add_header(h);
        }
    }
    let _ = raw.respond(out);
}
