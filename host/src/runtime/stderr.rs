//! Keeps the last few KiB a plugin wrote to stderr, so a trap can say *why*
//! (Rust guests print their panic message there) without granting the guest
//! the host's stderr. Writes never fail and never block: old bytes are
//! dropped, so a chatty plugin cannot grow host memory or trap itself.

use std::collections::VecDeque;
use std::io;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};

use bytes::Bytes;
use tokio::io::AsyncWrite;
use wasmtime_wasi::cli::{IsTerminal, StdoutStream};
use wasmtime_wasi::p2::{OutputStream, Pollable, StreamResult};

/// Bytes of stderr kept.
const TAIL: usize = 4096;

/// A bounded, shared tail of the guest's stderr.
#[derive(Debug, Clone, Default)]
pub(crate) struct StderrTail {
    buf: Arc<Mutex<VecDeque<u8>>>,
}

impl StderrTail {
    fn push(&self, bytes: &[u8]) {
        let Ok(mut buf) = self.buf.lock() else { return };
        let bytes = &bytes[bytes.len().saturating_sub(TAIL)..];
        let excess = (buf.len() + bytes.len()).saturating_sub(TAIL);
        buf.drain(..excess);
        buf.extend(bytes);
    }

    /// The kept tail, lossily decoded and trimmed.
    pub(crate) fn text(&self) -> String {
        let Ok(buf) = self.buf.lock() else {
            return String::new();
        };
        let (a, b) = buf.as_slices();
        String::from_utf8_lossy(&[a, b].concat()).trim().to_owned()
    }
}

impl IsTerminal for StderrTail {
    fn is_terminal(&self) -> bool {
        false
    }
}

impl StdoutStream for StderrTail {
    fn p2_stream(&self) -> Box<dyn OutputStream> {
        Box::new(self.clone())
    }

    fn async_stream(&self) -> Box<dyn AsyncWrite + Send + Sync> {
        Box::new(self.clone())
    }
}

impl OutputStream for StderrTail {
    fn write(&mut self, bytes: Bytes) -> StreamResult<()> {
        self.push(&bytes);
        Ok(())
    }

    fn flush(&mut self) -> StreamResult<()> {
        Ok(())
    }

    fn check_write(&mut self) -> StreamResult<usize> {
        Ok(64 * 1024)
    }
}

#[wasmtime_wasi::async_trait]
impl Pollable for StderrTail {
    async fn ready(&mut self) {}
}

impl AsyncWrite for StderrTail {
    fn poll_write(
        self: Pin<&mut Self>,
        _cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        self.push(buf);
        Poll::Ready(Ok(buf.len()))
    }

    fn poll_flush(self: Pin<&mut Self>, _cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Poll::Ready(Ok(()))
    }

    fn poll_shutdown(self: Pin<&mut Self>, _cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Poll::Ready(Ok(()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keeps_only_the_tail() {
        let tail = StderrTail::default();
        tail.push(b"hello ");
        tail.push(b"world");
        assert_eq!(tail.text(), "hello world");
        tail.push(&vec![b'x'; TAIL + 10]);
        tail.push(b"end");
        let text = tail.text();
        assert_eq!(text.len(), TAIL);
        assert!(text.ends_with("xend"));
    }
}
