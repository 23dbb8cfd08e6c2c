//! The HTTP server loop: hyper's HTTP/1 server on a small tokio runtime,
//! with every limit a hostile or broken client could otherwise exhaust.
//!
//! | resource | bound |
//! |---|---|
//! | connections | at most [`ServeConfig::max_connections`] are served at once; the next ones wait in the kernel's listen backlog (nothing is spawned for them) until one closes |
//! | request head | [`MAX_HEAD`] bytes and [`MAX_HEADERS`] headers (`431` beyond), read within [`ServeConfig::header_timeout`] (an idle keep-alive connection is closed after it too) |
//! | body | a declared `Content-Length` over [`ServeConfig::max_body`] is `413` before a byte of it is read, and the connection is closed without draining it; a chunked body is cut at the cap (`413`); the whole body must arrive within [`ServeConfig::body_timeout`] (`408`) |
//! | writes | a client that stops reading its answer for [`ServeConfig::write_timeout`] is disconnected |
//! | threads | one I/O thread, plus at most [`ServeConfig::http_threads`] handler threads for what reads the store (status page, webhooks); connections never add threads |
//! | panics | a handler that panics answers `500`; its thread and the server go on |
//!
//! Only the body of an authenticated webhook is ever read; `/healthz` is
//! answered on the I/O thread from the head alone, so it answers while
//! every handler thread is busy.
//!
//! [`ServeConfig::max_connections`]: super::ServeConfig::max_connections
//! [`ServeConfig::header_timeout`]: super::ServeConfig::header_timeout
//! [`ServeConfig::max_body`]: super::ServeConfig::max_body
//! [`ServeConfig::body_timeout`]: super::ServeConfig::body_timeout
//! [`ServeConfig::write_timeout`]: super::ServeConfig::write_timeout
//! [`ServeConfig::http_threads`]: super::ServeConfig::http_threads

use std::convert::Infallible;
use std::io;
use std::net::SocketAddr;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use http_body_util::{BodyExt, Limited};
use hyper::Request;
use hyper::body::{Body, Bytes, Incoming};
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper_util::rt::{TokioIo, TokioTimer};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::{TcpListener, TcpStream};
use tokio::runtime::Runtime;
use tokio::sync::{OwnedSemaphorePermit, Semaphore};
use tokio::time::Sleep;

use super::ServeError;
use super::http::{self, Answer, Head};

/// Largest request head (request line and headers), in bytes.
pub const MAX_HEAD: usize = 64 * 1024;
/// Most headers in one request.
pub const MAX_HEADERS: usize = 64;
/// How long to wait before accepting again after an accept error (out of
/// file descriptors, typically), so the loop does not spin.
const ACCEPT_BACKOFF: Duration = Duration::from_millis(100);

/// The bounds of the table above, as one site configures them.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Limits {
    pub http_threads: usize,
    pub max_body: usize,
    pub max_connections: usize,
    pub header_timeout: Duration,
    pub body_timeout: Duration,
    pub write_timeout: Duration,
}

impl From<&super::ServeConfig> for Limits {
    fn from(c: &super::ServeConfig) -> Limits {
        Limits {
            http_threads: c.http_threads,
            max_body: c.max_body,
            max_connections: c.max_connections,
            header_timeout: c.header_timeout,
            body_timeout: c.body_timeout,
            write_timeout: c.write_timeout,
        }
    }
}

/// What a site (one tenant's `serve`, or a fleet worker) answers. The
/// listener owns every bound of the table above; a site only decides from
/// a request's head what it is ([`Site::route`]) and then answers it on a
/// handler thread ([`Site::handle`]) with its body, read only when the
/// route asked for it.
pub(crate) trait Site: Send + Sync + 'static {
    /// A routed request, handed from the I/O thread to a handler thread.
    type Request: Send + 'static;
    fn limits(&self) -> Limits;
    /// Decides from the head alone (authenticating a webhook before its
    /// body is read).
    fn route(&self, head: &Head) -> Route<Self::Request>;
    /// Answers a routed request; `body` is empty unless the route asked
    /// for it.
    fn handle(&self, request: Self::Request, head: &Head, body: &[u8]) -> Answer;
}

/// What to do with a request once its head is read.
pub(crate) enum Route<R> {
    /// Answered from the head alone (`/healthz`, `404`, `405`, `401`…),
    /// on the I/O thread.
    Answer(Answer),
    /// Handled on a handler thread, after reading the body (within the cap
    /// and the body timeout) when `read_body`.
    Handle { request: R, read_body: bool },
}

/// Binds `listen`, builds the runtime and starts the accept loop on it.
/// Dropping the returned runtime stops serving.
pub(crate) fn start<S: Site>(
    listen: &str,
    site: Arc<S>,
) -> Result<(Runtime, SocketAddr), ServeError> {
    let bind_error = |e: io::Error| ServeError::Bind {
        addr: listen.to_string(),
        message: e.to_string(),
    };
    let std_listener = std::net::TcpListener::bind(listen).map_err(bind_error)?;
    std_listener.set_nonblocking(true).map_err(bind_error)?;
    let addr = std_listener.local_addr().map_err(bind_error)?;
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .max_blocking_threads(site.limits().http_threads.max(1))
        .thread_name("muster-serve-http")
        .enable_io()
        .enable_time()
        .build()
        .map_err(ServeError::Thread)?;
    let listener = {
        let _entered = runtime.enter();
        TcpListener::from_std(std_listener).map_err(bind_error)?
    };
    runtime.spawn(accept_loop(listener, site));
    Ok((runtime, addr))
}

/// Accepts connections while a connection slot is free, each served by its
/// own task (not thread).
async fn accept_loop<S: Site>(listener: TcpListener, site: Arc<S>) {
    let slots = Arc::new(Semaphore::new(site.limits().max_connections.max(1)));
    loop {
        // Never closed, so `acquire_owned` cannot fail; stop serving if it did.
        let Ok(slot) = slots.clone().acquire_owned().await else {
            return;
        };
        match listener.accept().await {
            Ok((stream, _)) => {
                tokio::spawn(serve_connection(stream, site.clone(), slot));
            }
            Err(e) => {
                tracing::warn!("muster serve: cannot accept a connection: {e}");
                tokio::time::sleep(ACCEPT_BACKOFF).await;
            }
        }
    }
}

/// Serves one connection (HTTP/1.1 keep-alive) until it closes, fails or
/// times out; its slot is freed then.
async fn serve_connection<S: Site>(stream: TcpStream, site: Arc<S>, _slot: OwnedSemaphorePermit) {
    let _ = stream.set_nodelay(true);
    let limits = site.limits();
    let io = TokioIo::new(WriteDeadline::new(stream, limits.write_timeout));
    let mut builder = http1::Builder::new();
    builder
        .timer(TokioTimer::new())
        .header_read_timeout(limits.header_timeout)
        .max_header_size(MAX_HEAD)
        .max_buf_size(MAX_HEAD)
        .max_headers(MAX_HEADERS);
    let service = service_fn(move |req| {
        let site = site.clone();
        async move { Ok::<_, Infallible>(respond(site, req).await.into_response()) }
    });
    if let Err(e) = builder.serve_connection(io, service).await {
        tracing::debug!("muster serve: connection ended: {e}");
    }
}

/// Answers one request: the body cap from the head, the route, then the
/// handler, which never sees an unread or unbounded body.
async fn respond<S: Site>(site: Arc<S>, req: Request<Incoming>) -> Answer {
    let limits = site.limits();
    let max = limits.max_body;
    let (parts, body) = req.into_parts();
    let declared = body.size_hint().exact();
    if declared.is_some_and(|n| n > u64::try_from(max).unwrap_or(u64::MAX)) {
        return http::too_large(max);
    }
    let head = Head {
        method: parts.method,
        path: parts.uri.path().to_string(),
        query: parts.uri.query().map(str::to_string),
        headers: parts.headers,
    };
    let route = guarded(|| Ok(site.route(&head))).unwrap_or_else(Route::Answer);
    let (request, read) = match route {
        Route::Answer(answer) => return answer,
        Route::Handle { request, read_body } => (request, read_body),
    };
    let body = if read {
        match read_body(body, max, limits.body_timeout).await {
            Ok(b) => b,
            Err(answer) => return answer,
        }
    } else {
        Bytes::new()
    };
    tokio::task::spawn_blocking(move || {
        guarded(|| Ok(site.handle(request, &head, &body))).unwrap_or_else(|a| a)
    })
    .await
    .unwrap_or_else(|_| http::internal_error())
}

/// Reads the whole body, at most `max` bytes, within `timeout`.
async fn read_body(body: Incoming, max: usize, timeout: Duration) -> Result<Bytes, Answer> {
    let collected = tokio::time::timeout(timeout, Limited::new(body, max).collect()).await;
    match collected {
        Err(_) => Err(http::body_timeout(timeout)),
        Ok(Ok(c)) => Ok(c.to_bytes()),
        Ok(Err(e)) if e.is::<http_body_util::LengthLimitError>() => Err(http::too_large(max)),
        Ok(Err(e)) => Err(http::unreadable_body(&e)),
    }
}

/// Calls `f`; a panic becomes `Err(500)`, so no request can take a thread
/// (or, through poisoned state, the server) down.
fn guarded<T>(f: impl FnOnce() -> Result<T, Answer>) -> Result<T, Answer> {
    catch_unwind(AssertUnwindSafe(f)).unwrap_or_else(|_| {
        tracing::error!("muster serve: a request handler panicked; answered 500");
        Err(http::internal_error())
    })
}

/// A stream whose writes fail with [`io::ErrorKind::TimedOut`] once they
/// have made no progress for `timeout`: a client that stops reading its
/// answer cannot hold a connection (and its buffers) forever. Reads are
/// bounded by the header and body timeouts instead.
struct WriteDeadline<S> {
    inner: S,
    timeout: Duration,
    /// Armed when a write could not progress; cleared when one does.
    stalled: Option<Pin<Box<Sleep>>>,
}

impl<S> WriteDeadline<S> {
    fn new(inner: S, timeout: Duration) -> WriteDeadline<S> {
        WriteDeadline {
            inner,
            timeout,
            stalled: None,
        }
    }

    /// After a write poll: `Ready` clears the deadline, `Pending` arms it
    /// (once) and fails when it has passed.
    fn check<T>(
        &mut self,
        cx: &mut Context<'_>,
        polled: Poll<io::Result<T>>,
    ) -> Poll<io::Result<T>> {
        if polled.is_ready() {
            self.stalled = None;
            return polled;
        }
        let timeout = self.timeout;
        let sleep = self
            .stalled
            .get_or_insert_with(|| Box::pin(tokio::time::sleep(timeout)));
        match sleep.as_mut().poll(cx) {
            Poll::Ready(()) => Poll::Ready(Err(io::Error::new(
                io::ErrorKind::TimedOut,
                format!("the client read nothing for {timeout:?}"),
            ))),
            Poll::Pending => Poll::Pending,
        }
    }
}

impl<S: AsyncRead + Unpin> AsyncRead for WriteDeadline<S> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_read(cx, buf)
    }
}

impl<S: AsyncWrite + Unpin> AsyncWrite for WriteDeadline<S> {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        let polled = Pin::new(&mut self.inner).poll_write(cx, buf);
        self.check(cx, polled)
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        let polled = Pin::new(&mut self.inner).poll_write_vectored(cx, bufs);
        self.check(cx, polled)
    }

    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let polled = Pin::new(&mut self.inner).poll_flush(cx);
        self.check(cx, polled)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let polled = Pin::new(&mut self.inner).poll_shutdown(cx);
        self.check(cx, polled)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::io::AsyncWriteExt;

    fn runtime() -> Runtime {
        tokio::runtime::Builder::new_current_thread()
            .enable_time()
            .build()
            .unwrap()
    }

    #[test]
    fn a_write_the_peer_never_reads_times_out() {
        runtime().block_on(async {
            // A pipe of 64 bytes whose other end is never read.
            let (near, _far) = tokio::io::duplex(64);
            let mut w = WriteDeadline::new(near, Duration::from_millis(50));
            let started = tokio::time::Instant::now();
            let err = w.write_all(&[b'x'; 4096]).await.unwrap_err();
            assert_eq!(err.kind(), io::ErrorKind::TimedOut);
            assert!(started.elapsed() >= Duration::from_millis(50));
        });
    }

    #[test]
    fn a_write_that_progresses_is_not_cut() {
        runtime().block_on(async {
            let (near, mut far) = tokio::io::duplex(64);
            let reader = tokio::spawn(async move {
                let mut all = Vec::new();
                tokio::io::AsyncReadExt::read_to_end(&mut far, &mut all)
                    .await
                    .map(|_| all.len())
            });
            let mut w = WriteDeadline::new(near, Duration::from_secs(5));
            w.write_all(&[b'x'; 4096]).await.unwrap();
            w.shutdown().await.unwrap();
            drop(w);
            assert_eq!(reader.await.unwrap().unwrap(), 4096);
        });
    }
}
