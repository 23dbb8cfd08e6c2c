//! A loopback HTTP proxy in front of a real SCIM server that answers chosen
//! requests itself, with a status the server would not produce on cue (a 412
//! from a concurrent writer, a 501 for an unsupported PATCH), and forwards
//! everything else unchanged. It lets the conformance test exercise the
//! connector's recovery paths against the real server's state.
//!
//! Deliberately minimal: one connection at a time (the connector is
//! sequential), `Content-Length` bodies, and `Connection: close` on every
//! answer, which the upstream `scim2-server` (HTTP/1.0) does anyway.

#![allow(dead_code)]

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::thread;

/// Decides, per request (method, path with query), whether the proxy answers
/// it itself with `(status, body)`.
pub type Rule = Box<dyn FnMut(&str, &str) -> Option<(u16, String)> + Send>;

/// The running proxy; stops accepting when dropped.
pub struct FaultProxy {
    port: u16,
    seen: Arc<Mutex<Vec<String>>>,
    stop: Arc<AtomicBool>,
}

impl FaultProxy {
    /// Starts a proxy on a free loopback port forwarding to
    /// `127.0.0.1:upstream`.
    pub fn start(upstream: u16, mut rule: Rule) -> FaultProxy {
        let listener = TcpListener::bind("127.0.0.1:0").expect("proxy listener");
        let port = listener.local_addr().expect("proxy addr").port();
        let seen = Arc::new(Mutex::new(Vec::new()));
        let stop = Arc::new(AtomicBool::new(false));
        let (seen2, stop2) = (seen.clone(), stop.clone());
        thread::spawn(move || {
            for conn in listener.incoming() {
                if stop2.load(Ordering::SeqCst) {
                    return;
                }
                let Ok(client) = conn else { continue };
                if let Err(e) = relay(client, upstream, &mut rule, &seen2) {
                    eprintln!("fault proxy: {e}");
                }
            }
        });
        FaultProxy { port, seen, stop }
    }

    /// `http://127.0.0.1:PORT/v2`: the SCIM base URL through the proxy.
    pub fn base_url(&self) -> String {
        format!("http://127.0.0.1:{}/v2", self.port)
    }

    /// `"METHOD /path?query"` of every request received, in order.
    pub fn seen(&self) -> Vec<String> {
        self.seen.lock().map(|s| s.clone()).unwrap_or_default()
    }

    /// How many received requests have `method` and a path containing `path`.
    pub fn count(&self, method: &str, path: &str) -> usize {
        let prefix = format!("{method} ");
        self.seen()
            .iter()
            .filter(|l| l.starts_with(&prefix) && l.contains(path))
            .count()
    }
}

impl Drop for FaultProxy {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        // Wake the accept loop so it sees the flag.
        let _ = TcpStream::connect(("127.0.0.1", self.port));
    }
}

fn relay(
    mut client: TcpStream,
    upstream: u16,
    rule: &mut Rule,
    seen: &Mutex<Vec<String>>,
) -> std::io::Result<()> {
    let mut reader = BufReader::new(client.try_clone()?);
    let mut head = Vec::new();
    let mut content_length = 0usize;
    loop {
        let mut line = String::new();
        if reader.read_line(&mut line)? == 0 {
            return Ok(()); // the accept-loop wake-up, or a client that gave up
        }
        if let Some((name, value)) = line.split_once(':')
            && name.trim().eq_ignore_ascii_case("content-length")
        {
            content_length = value.trim().parse().unwrap_or(0);
        }
        let end = line == "\r\n";
        head.push(line);
        if end {
            break;
        }
    }
    let mut body = vec![0; content_length];
    reader.read_exact(&mut body)?;
    let mut parts = head[0].split_whitespace();
    let (method, path) = (
        parts.next().unwrap_or_default().to_string(),
        parts.next().unwrap_or_default().to_string(),
    );
    if let Ok(mut s) = seen.lock() {
        s.push(format!("{method} {path}"));
    }
    if let Some((status, text)) = rule(&method, &path) {
        let answer = format!(
            "HTTP/1.1 {status} Injected\r\nContent-Type: application/scim+json\r\n\
             Content-Length: {}\r\nConnection: close\r\n\r\n{text}",
            text.len()
        );
        client.write_all(answer.as_bytes())?;
        return client.flush();
    }
    let mut server = TcpStream::connect(("127.0.0.1", upstream))?;
    for line in &head {
        let lower = line.to_ascii_lowercase();
        if line != "\r\n" && !lower.starts_with("connection:") {
            server.write_all(line.as_bytes())?;
        }
    }
    // The answer is relayed until the upstream closes: ask it to.
    server.write_all(b"Connection: close\r\n\r\n")?;
    server.write_all(&body)?;
    let mut answer = Vec::new();
    server.read_to_end(&mut answer)?;
    client.write_all(&answer)?;
    client.flush()
}
