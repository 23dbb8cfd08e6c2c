//! Sending a webhook: one HTTP/1.1 `POST` on a fresh loopback connection, as a plain
//! `TcpStream` (the sandbox needs no HTTP client for one request shape).

use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::{Duration, Instant};

use serde_json::Value;

/// Where Flatchr sends its webhooks: an `http://host:port/path` URL and extra headers (our
/// own secret — Flatchr signs nothing).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WebhookTarget {
    pub url: String,
    pub headers: Vec<(String, String)>,
}

/// One delivery: the receiver's status (0 when it could not be reached) and body, and when
/// it was sent.
#[derive(Debug, Clone)]
pub struct Delivery {
    pub status: u16,
    pub body: String,
    pub sent_at: Instant,
}

impl WebhookTarget {
    /// POSTs `event`; never panics (an unreachable receiver is status 0).
    pub fn send(&self, event: &Value) -> Delivery {
        let sent_at = Instant::now();
        let (status, body) = self.post(&event.to_string()).unwrap_or((0, String::new()));
        Delivery {
            status,
            body,
            sent_at,
        }
    }

    fn post(&self, body: &str) -> std::io::Result<(u16, String)> {
        let rest = self.url.strip_prefix("http://").unwrap_or(&self.url);
        let (authority, path) = rest.split_at(rest.find('/').unwrap_or(rest.len()));
        let path = if path.is_empty() { "/" } else { path };
        let mut stream = TcpStream::connect(authority)?;
        stream.set_read_timeout(Some(Duration::from_secs(30)))?;
        let mut head = format!(
            "POST {path} HTTP/1.1\r\nHost: {authority}\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n",
            body.len()
        );
        for (k, v) in &self.headers {
            head.push_str(&format!("{k}: {v}\r\n"));
        }
        head.push_str("\r\n");
        stream.write_all(head.as_bytes())?;
        stream.write_all(body.as_bytes())?;
        let mut answer = String::new();
        stream.read_to_string(&mut answer)?;
        let status = answer
            .split_whitespace()
            .nth(1)
            .and_then(|s| s.parse().ok())
            .unwrap_or(0);
        let body = answer
            .split_once("\r\n\r\n")
            .map(|(_, b)| b.to_string())
            .unwrap_or_default();
        Ok((status, body))
    }
}
