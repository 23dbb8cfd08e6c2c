//! Host side of the `http` import: the plugin's only way out of the sandbox.
//!
//! This module only *translates*: WIT request → [`muster_outbound::Request`],
//! response/error back to WIT. Every policy decision (allow-list, address
//! checks, redirects, rate limits, retries, credential injection, redaction)
//! belongs to `muster-outbound`, reached through the [`OutboundHttp`] trait so
//! the runtime can also run with [`DenyAll`] (e.g. `muster plugin inspect`).
//! The checks done here are the per-call budget of [`super::limits`] (body
//! size, requests per call, the call's deadline) and that a named credential
//! slot is declared by the plugin's own manifest — the guest never sees the
//! secret either way.

use std::sync::{Arc, mpsc};
use std::time::Duration;

use muster_outbound::{Credential, HostPattern, OutboundError, PluginPolicy, Request, Response};

use super::PluginError;
use super::bindings::Manifest;
use super::limits::Refusal;

use super::bindings::muster::connector::http::{
    Host, HttpError, Method, Request as WitRequest, Response as WitResponse,
};
use super::state::HostState;

/// The outbound HTTP capability as the runtime sees it.
pub trait OutboundHttp: Send + Sync {
    /// Sends `req` on behalf of `plugin`, applying the host's policy.
    fn send(&self, plugin: &str, req: Request) -> Result<Response, OutboundError>;

    /// Removes secrets from a text before it is logged. The default keeps the
    /// text, for implementations that hold no secrets.
    fn redact(&self, text: &str) -> String {
        text.to_owned()
    }
}

impl OutboundHttp for muster_outbound::Outbound {
    fn send(&self, plugin: &str, req: Request) -> Result<Response, OutboundError> {
        muster_outbound::Outbound::send(self, plugin, req)
    }

    fn redact(&self, text: &str) -> String {
        muster_outbound::Outbound::redact(self, text)
    }
}

/// Builds a plugin's outbound grant from its manifest: the hosts it declares
/// (narrowed by `tenant_hosts`, the operator's configuration) and its credential
/// slots, filled with `credentials` (slot name → secret).
///
/// A manifest host pattern the outbound policy cannot parse makes the plugin
/// [`PluginError::Incompatible`]; a bad tenant pattern is a configuration error
/// reported the same way, naming the pattern.
pub fn grant(
    manifest: &Manifest,
    tenant_hosts: &[&str],
    credentials: Vec<Credential>,
) -> Result<PluginPolicy, PluginError> {
    let parse = |p: &str, whose: &str| {
        HostPattern::parse(p).map_err(|e| PluginError::Incompatible {
            reason: format!("{whose} host pattern: {e}"),
        })
    };
    Ok(PluginPolicy {
        manifest_hosts: manifest
            .hosts
            .iter()
            .map(|h| {
                HostPattern::parse_manifest(h).map_err(|e| PluginError::Incompatible {
                    reason: format!("manifest host pattern: {e}"),
                })
            })
            .collect::<Result<_, _>>()?,
        tenant_hosts: tenant_hosts
            .iter()
            .map(|h| parse(h, "tenant"))
            .collect::<Result<_, _>>()?,
        slots: manifest
            .credential_slots
            .iter()
            .map(|s| {
                muster_outbound::CredentialSlot::new(
                    s.name.clone(),
                    s.header.clone(),
                    s.template.clone(),
                )
            })
            .collect(),
        credentials,
        local_hosts: Vec::new(),
        allow_loopback: false,
        // The manifest's declared limits are added by the host (`connect`),
        // which checks them against the connection.
        rate_limits: Vec::new(),
    })
}

/// Refuses every request: the capability of a plugin that was granted no
/// network at all.
#[derive(Debug, Default, Clone, Copy)]
pub struct DenyAll;

impl OutboundHttp for DenyAll {
    fn send(&self, plugin: &str, req: Request) -> Result<Response, OutboundError> {
        Err(OutboundError::Denied {
            plugin: plugin.to_owned(),
            method: req.method,
            url: String::new(),
            reason: "no outbound HTTP is granted to this plugin instance".into(),
        })
    }
}

fn method_name(method: Method) -> &'static str {
    match method {
        Method::Get => "GET",
        Method::Head => "HEAD",
        Method::Post => "POST",
        Method::Put => "PUT",
        Method::Patch => "PATCH",
        Method::Delete => "DELETE",
    }
}

/// Maps the outbound error onto the contract. The messages of
/// `OutboundError` are already redacted by `muster-outbound`.
fn to_wit_error(err: OutboundError) -> HttpError {
    match err {
        e @ (OutboundError::Denied { .. } | OutboundError::AddressRefused { .. }) => {
            HttpError::Denied(e.to_string())
        }
        e @ OutboundError::Invalid { .. } => HttpError::InvalidRequest(e.to_string()),
        OutboundError::RateLimited { retry_after, .. } => {
            HttpError::RateLimited(u32::try_from(retry_after.as_secs().max(1)).unwrap_or(u32::MAX))
        }
        OutboundError::TooLarge { .. } => HttpError::TooLarge,
        OutboundError::Timeout { .. } => HttpError::Timeout,
        e => HttpError::Transport(e.to_string()),
    }
}

impl Host for HostState {
    /// Checks the call's budget (body size, request count, deadline: a
    /// refusal traps the call, see [`super::limits`]) and the credential slot,
    /// then sends through the outbound policy, waiting at most until the
    /// call's deadline.
    fn send(&mut self, request: WitRequest) -> wasmtime::Result<Result<WitResponse, HttpError>> {
        let size = request.body.as_ref().map_or(0, Vec::len);
        let left = match self.budget.admit(size) {
            Ok(left) => left,
            Err(refusal) => return Err(trap(refusal)),
        };
        if let Some(slot) = &request.credential
            && !self.credential_slots.iter().any(|s| s == slot)
        {
            return Ok(Err(HttpError::UnknownCredential(format!(
                "`{slot}` is not a credential slot of plugin `{}`",
                self.plugin
            ))));
        }
        let req = Request {
            method: method_name(request.method).to_owned(),
            url: request.url,
            headers: request.headers,
            body: request.body.unwrap_or_default(),
            credential: request.credential,
        };
        let response = match send_within(&self.http, &self.plugin, req, left) {
            Sent::Done(result) => result.map_err(to_wit_error),
            Sent::Failed(why) => Err(HttpError::Transport(why)),
            Sent::Overran => return Err(trap(self.budget.refuse(Refusal::Deadline))),
        };
        Ok(response.map(|response| WitResponse {
            status: response.status,
            headers: response.headers,
            body: response.body,
        }))
    }
}

/// The trap that stops a call at a refused request; `PluginInstance`
/// turns it into the typed error from the budget's record.
fn trap(refusal: Refusal) -> wasmtime::Error {
    match refusal {
        Refusal::Deadline => wasmtime::format_err!("http: the call's deadline has passed"),
        Refusal::Limit(limit) => wasmtime::format_err!("http: {limit}"),
    }
}

/// How a request sent under a deadline ended.
enum Sent {
    Done(Result<Response, OutboundError>),
    /// Still running at the deadline: abandoned.
    Overran,
    /// The request could not be run (no thread, or it panicked).
    Failed(String),
}

/// Sends `req` on a helper thread and waits at most `left` for it.
///
/// `muster-outbound` bounds each request by its own connect/read timeouts
/// and retries, which can add up to far more than a call's budget; waiting
/// here keeps the call within its deadline whatever the vendor does. An
/// abandoned request finishes (or times out) on its thread, and its result
/// is dropped.
fn send_within(http: &Arc<dyn OutboundHttp>, plugin: &str, req: Request, left: Duration) -> Sent {
    let (tx, rx) = mpsc::sync_channel(1);
    let (http, plugin) = (Arc::clone(http), plugin.to_owned());
    let spawned = std::thread::Builder::new()
        .name("muster-http".into())
        .spawn(move || {
            let _ = tx.send(http.send(&plugin, req));
        });
    if let Err(e) = spawned {
        return Sent::Failed(format!("cannot start the request: {e}"));
    }
    match rx.recv_timeout(left) {
        Ok(result) => Sent::Done(result),
        Err(mpsc::RecvTimeoutError::Timeout) => Sent::Overran,
        Err(mpsc::RecvTimeoutError::Disconnected) => {
            Sent::Failed("the request failed in the host".into())
        }
    }
}
