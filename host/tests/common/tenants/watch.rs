//! Watching the tenants while something else works on them: waiting for a predicate over
//! every tenant, and catching a process in the middle of its writes.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use muster_sandbox::RequestRecord;

use super::{KitError, TenantSims, Tenants, port_of};

/// How often the watchers poll the simulators.
const POLL: Duration = Duration::from_millis(5);

/// Where each target's request log stood at [`Tenants::mark`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Mark {
    logged: Vec<usize>,
}

/// A write request a target received.
#[derive(Debug, Clone, PartialEq)]
pub struct Write {
    pub tenant: String,
    /// As the target logged it (method, URL, status, client port…).
    pub request: RequestRecord,
    /// The process that sent it, when known: it holds the client socket.
    pub pid: Option<u32>,
}

impl Tenants {
    /// Waits until `holds` is true of every tenant, polling, for at most `timeout`; returns
    /// the time it took. `what` names the wait in the error, which lists the pending tenants.
    pub fn wait_until(
        &self,
        what: &str,
        timeout: Duration,
        holds: impl Fn(&TenantSims) -> bool,
    ) -> Result<Duration, KitError> {
        let start = Instant::now();
        let mut pending: Vec<&TenantSims> = self.tenants.iter().collect();
        loop {
            pending.retain(|t| !holds(t));
            if pending.is_empty() {
                return Ok(start.elapsed());
            }
            if start.elapsed() >= timeout {
                return Err(KitError::Timeout {
                    what: what.to_owned(),
                    waited: start.elapsed(),
                    pending: pending.iter().map(|t| t.id.clone()).collect(),
                });
            }
            std::thread::sleep(POLL);
        }
    }

    /// Marks where every target's request log stands, for [`Tenants::wait_applying`] and
    /// [`Tenants::writes_since`]. (Clearing a target's log invalidates the mark.)
    pub fn mark(&self) -> Mark {
        Mark {
            logged: self
                .tenants
                .iter()
                .map(|t| t.target.request_log().records.len())
                .collect(),
        }
    }

    /// The write requests every target received since `mark`, tenant by tenant, each with
    /// the process that sent it when that process still holds the connection.
    pub fn writes_since(&self, mark: &Mark) -> Vec<Write> {
        let sockets = Sockets::read();
        let mut out = Vec::new();
        for (t, from) in self.tenants.iter().zip(&mark.logged) {
            let server = port_of(&t.target.base_url());
            for request in t.target.request_log_since(*from) {
                if is_write(&request) {
                    let pid = request
                        .peer_port
                        .zip(server)
                        .and_then(|(c, s)| sockets.owner(c, s));
                    out.push(Write {
                        tenant: t.id.clone(),
                        request,
                        pid,
                    });
                }
            }
        }
        out
    }

    /// Waits (at most `timeout`) for the first write any target receives after `mark` —
    /// from process `pid` only, when given — and returns it: that process is applying.
    pub fn wait_applying(
        &self,
        mark: &Mark,
        pid: Option<u32>,
        timeout: Duration,
    ) -> Result<Write, KitError> {
        let start = Instant::now();
        let mut seen = mark.clone();
        loop {
            for (i, t) in self.tenants.iter().enumerate() {
                if let Some(write) = first_write(t, &mut seen.logged[i], pid) {
                    return Ok(write);
                }
            }
            if start.elapsed() >= timeout {
                return Err(KitError::Timeout {
                    what: pid.map_or("a write".into(), |p| format!("a write by process {p}")),
                    waited: start.elapsed(),
                    pending: self.tenants.iter().map(|t| t.id.clone()).collect(),
                });
            }
            std::thread::sleep(POLL);
        }
    }
}

/// The first write (by `pid`, if given) logged by `t`'s target from index `*from`; moves
/// `*from` past what it looked at.
fn first_write(t: &TenantSims, from: &mut usize, pid: Option<u32>) -> Option<Write> {
    let records = t.target.request_log_since(*from);
    *from += records.len();
    let server = port_of(&t.target.base_url());
    records.into_iter().filter(is_write).find_map(|request| {
        let socket = request.peer_port.zip(server);
        let owner = match pid {
            Some(p) => socket
                .is_some_and(|(c, s)| holds_socket(p, c, s))
                .then_some(p),
            None => socket.and_then(|(c, s)| owner(c, s)),
        };
        (pid.is_none() || owner.is_some()).then(|| Write {
            tenant: t.id.clone(),
            request,
            pid: owner,
        })
    })
}

fn is_write(r: &RequestRecord) -> bool {
    !matches!(r.method.as_str(), "GET" | "HEAD") && r.status != 429
}

/// The process holding the loopback TCP socket from `client_port` to `server_port`, or
/// `None` once the connection is closed (or on a system without `/proc`).
pub fn owner(client_port: u16, server_port: u16) -> Option<u32> {
    Sockets::read().owner(client_port, server_port)
}

/// Whether process `pid` holds the loopback TCP socket from `client_port` to `server_port`.
pub fn holds_socket(pid: u32, client_port: u16, server_port: u16) -> bool {
    socket_inode(client_port, server_port).is_some_and(|inode| has_socket(pid, inode))
}

/// Which process holds which loopback TCP connection, read once from `/proc` (for many
/// lookups): `/proc/net/tcp` gives each connection's socket inode, each process's `fd`
/// directory the inodes it holds (`socket:[inode]`).
struct Sockets {
    inodes: HashMap<(u16, u16), u64>,
    owners: HashMap<u64, u32>,
}

impl Sockets {
    fn read() -> Sockets {
        let inodes = loopback_connections().into_iter().collect();
        let mut owners = HashMap::new();
        for p in std::fs::read_dir("/proc").into_iter().flatten().flatten() {
            let Some(pid) = p.file_name().to_str().and_then(|n| n.parse::<u32>().ok()) else {
                continue;
            };
            for fd in std::fs::read_dir(p.path().join("fd"))
                .into_iter()
                .flatten()
                .flatten()
            {
                if let Some(inode) = std::fs::read_link(fd.path())
                    .ok()
                    .and_then(|l| socket_of(&l.to_string_lossy()))
                {
                    owners.insert(inode, pid);
                }
            }
        }
        Sockets { inodes, owners }
    }

    fn owner(&self, client_port: u16, server_port: u16) -> Option<u32> {
        let inode = self.inodes.get(&(client_port, server_port))?;
        self.owners.get(inode).copied()
    }
}

/// `socket:[123]` → 123.
fn socket_of(link: &str) -> Option<u64> {
    link.strip_prefix("socket:[")?
        .strip_suffix(']')?
        .parse()
        .ok()
}

/// Whether `socket:[inode]` is among process `pid`'s open files.
fn has_socket(pid: u32, inode: u64) -> bool {
    std::fs::read_dir(format!("/proc/{pid}/fd")).is_ok_and(|fds| {
        fds.flatten().any(|fd| {
            std::fs::read_link(fd.path())
                .is_ok_and(|l| socket_of(&l.to_string_lossy()) == Some(inode))
        })
    })
}

/// The inode of the socket whose local end is `127.0.0.1:client_port` and remote end
/// `127.0.0.1:server_port`.
fn socket_inode(client_port: u16, server_port: u16) -> Option<u64> {
    loopback_connections()
        .into_iter()
        .find_map(|(ports, inode)| (ports == (client_port, server_port)).then_some(inode))
}

/// Every IPv4 TCP socket between two loopback ends, as ((local port, remote port), inode),
/// from `/proc/net/tcp` (lines `sl local rem st … uid timeout inode`, addresses in hex).
fn loopback_connections() -> Vec<((u16, u16), u64)> {
    let table = std::fs::read_to_string("/proc/net/tcp").unwrap_or_default();
    let port = |end: &str| {
        let port = end.strip_prefix("0100007F:")?;
        u16::from_str_radix(port, 16).ok()
    };
    table
        .lines()
        .skip(1)
        .filter_map(|line| {
            let cols: Vec<&str> = line.split_whitespace().collect();
            let ends = (port(cols.get(1)?)?, port(cols.get(2)?)?);
            Some((ends, cols.get(9)?.parse().ok()?))
        })
        .collect()
}
