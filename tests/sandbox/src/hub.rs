//! Many simulators on one small runtime: for tests that start hundreds of them (the fleet
//! test's 200 tenants, each with a Lucca and a target simulator).
//!
//! A simulator started with [`Server::start`](crate::server::Server::start) is a `tiny_http`
//! server: six threads each even when idle (its listener's, four pooled connection threads,
//! our acceptor), so 400 simulators keep 2 400 threads. A simulator started on a [`Hub`]
//! keeps its own loopback port (its own origin, as each customer's own Lucca domain) but
//! no thread: the hub's runtime has **one** thread for every listener and connection
//! (hyper's HTTP/1.1 over tokio, as `muster serve`), and each request runs on a blocking
//! thread of the runtime's pool — so a request sleeping through simulated latency holds up
//! nobody else, as with [`Server::start`](crate::server::Server::start) — which is let go
//! after [`IDLE_THREAD`] without work. An idle hub is one thread, whatever it serves.
//!
//! What a simulator sees does not change: the same [`Request`] (method upper-cased, path and
//! query as sent, headers, body, [`MAX_BODY`] → 413, the client's address) and the same
//! [`Response`]. Header names arrive lower-cased (HTTP/1.1 names are case-insensitive;
//! [`Request::header`] ignores case).

use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use bytes::Bytes;
use http_body_util::{BodyExt, Full, Limited};
use hyper::body::Incoming;
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper_util::rt::TokioIo;
use tokio::net::{TcpListener, TcpStream};

use crate::SandboxError;
use crate::server::{Handler, MAX_BODY, MAX_IN_FLIGHT, Request, Response};

/// How long a request thread of the pool waits for more work before it ends.
pub const IDLE_THREAD: Duration = Duration::from_secs(2);

/// Requests handled at once by one hub, over all its simulators.
pub const MAX_HANDLERS: usize = 2 * MAX_IN_FLIGHT;

/// Pause after a failed `accept` (out of file descriptors…) before the next.
const ACCEPT_BACKOFF: Duration = Duration::from_millis(20);

/// A runtime serving any number of simulators; cheap to clone (the clones share it). It
/// stops once it and every simulator started on it are dropped.
#[derive(Clone)]
pub struct Hub {
    runtime: Arc<tokio::runtime::Runtime>,
}

impl Hub {
    /// Starts the runtime: one thread, plus request threads while there are requests.
    pub fn new() -> Result<Self, SandboxError> {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .max_blocking_threads(MAX_HANDLERS)
            .thread_keep_alive(IDLE_THREAD)
            .thread_name("sandbox-hub")
            .enable_io()
            .enable_time()
            .build()
            .map_err(|e| SandboxError::Bind(format!("cannot start the hub's runtime: {e}")))?;
        Ok(Hub {
            runtime: Arc::new(runtime),
        })
    }

    /// Binds a loopback port and serves it with `handler` until the returned registration
    /// is dropped.
    pub(crate) fn serve(&self, handler: Arc<Handler>) -> Result<Registration, SandboxError> {
        let bind = |e: std::io::Error| SandboxError::Bind(e.to_string());
        let listener = crate::server::nodelay_listener().map_err(bind)?;
        listener.set_nonblocking(true).map_err(bind)?;
        let port = listener.local_addr().map_err(bind)?.port();
        let listener = {
            let _entered = self.runtime.enter();
            TcpListener::from_std(listener).map_err(bind)?
        };
        let open = Arc::new(AtomicBool::new(true));
        let accept = self
            .runtime
            .spawn(accept_loop(listener, handler, open.clone()));
        Ok(Registration {
            port,
            accept,
            open,
            _hub: self.clone(),
        })
    }
}

/// One simulator on a hub: its port; dropping it closes the port and answers what its open
/// connections still send with 503.
pub(crate) struct Registration {
    pub port: u16,
    accept: tokio::task::JoinHandle<()>,
    open: Arc<AtomicBool>,
    _hub: Hub,
}

impl Drop for Registration {
    fn drop(&mut self) {
        self.open.store(false, Ordering::SeqCst);
        self.accept.abort();
    }
}

async fn accept_loop(listener: TcpListener, handler: Arc<Handler>, open: Arc<AtomicBool>) {
    loop {
        match listener.accept().await {
            Ok((stream, peer)) => {
                tokio::spawn(connection(stream, peer, handler.clone(), open.clone()));
            }
            Err(_) => tokio::time::sleep(ACCEPT_BACKOFF).await,
        }
    }
}

/// Serves one keep-alive connection until the client closes it.
async fn connection(
    stream: TcpStream,
    peer: SocketAddr,
    handler: Arc<Handler>,
    open: Arc<AtomicBool>,
) {
    let _ = stream.set_nodelay(true);
    let service = service_fn(move |req| {
        let (handler, open) = (handler.clone(), open.clone());
        async move { Ok::<_, Infallible>(respond(req, peer, handler, &open).await) }
    });
    let _ = http1::Builder::new()
        .serve_connection(TokioIo::new(stream), service)
        .await;
}

/// Reads the request (at most [`MAX_BODY`] of its body), runs the handler on a request
/// thread, and turns its answer into hyper's.
async fn respond(
    req: hyper::Request<Incoming>,
    peer: SocketAddr,
    handler: Arc<Handler>,
    open: &AtomicBool,
) -> hyper::Response<Full<Bytes>> {
    if !open.load(Ordering::SeqCst) {
        return into_hyper(error(503, "the simulator is stopped"));
    }
    let (parts, body) = req.into_parts();
    let (body, body_too_large) = match Limited::new(body, MAX_BODY).collect().await {
        Ok(collected) => (collected.to_bytes().to_vec(), false),
        Err(e) if e.is::<http_body_util::LengthLimitError>() => (Vec::new(), true),
        Err(_) => return into_hyper(error(400, "unreadable body")),
    };
    let request = Request {
        method: parts.method.as_str().to_ascii_uppercase(),
        url: parts
            .uri
            .path_and_query()
            .map_or_else(|| "/".to_owned(), |p| p.as_str().to_owned()),
        headers: parts
            .headers
            .iter()
            .map(|(n, v)| {
                let value = String::from_utf8_lossy(v.as_bytes()).into_owned();
                (n.as_str().to_owned(), value)
            })
            .collect(),
        body,
        body_too_large,
        peer: Some(peer),
    };
    let answer = tokio::task::spawn_blocking(move || handler(&request)).await;
    into_hyper(answer.unwrap_or_else(|_| error(500, "the simulator panicked")))
}

fn error(status: u16, message: &str) -> Response {
    Response::json(
        status,
        &serde_json::json!({"status": status, "message": message}),
    )
}

fn into_hyper(response: Response) -> hyper::Response<Full<Bytes>> {
    let mut out = hyper::Response::new(Full::new(Bytes::from(response.body)));
    *out.status_mut() = hyper::StatusCode::from_u16(response.status)
        .unwrap_or(hyper::StatusCode::INTERNAL_SERVER_ERROR);
    for (name, value) in response.headers {
        if let (Ok(n), Ok(v)) = (
            hyper::header::HeaderName::from_bytes(name.as_bytes()),
            hyper::header::HeaderValue::from_str(&value),
        ) {
            out.headers_mut().append(n, v);
        }
    }
    out
}
