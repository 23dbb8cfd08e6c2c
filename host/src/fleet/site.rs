//! A fleet worker's HTTP side, on `serve`'s listener (every bound of
//! `serve/listener.rs`) and `serve`'s webhook protocol (`serve/http.rs`):
//!
//! | route | answer |
//! |---|---|
//! | `GET /healthz` | `200 ok` while the worker serves |
//! | `GET /` | the fleet status page: tenants, claims, workers ([`super::page`]) |
//! | `POST /tenants/{tenant}/webhooks/{flow}` | `serve`'s `/webhooks/{flow}` for that tenant: authenticated, shape-checked, committed to the tenant's inbox, then recorded in the work ledger for one worker to run |

use hyper::Method;
use serde_json::json;

use super::{Fleet, lock, work};
use crate::serve::ServeConfig;
use crate::serve::http::{self, Answer, Head, Received};
use crate::serve::listener::{Limits, Route, Site};

/// A routed request.
pub(crate) enum FleetRequest {
    Status,
    /// An authenticated webhook of `tenants[tenant]`'s `flows[flow]`.
    Webhook {
        tenant: usize,
        flow: usize,
    },
}

impl Site for Fleet {
    type Request = FleetRequest;

    fn limits(&self) -> Limits {
        Limits::from(&ServeConfig::defaults())
    }

    fn route(&self, head: &Head) -> Route<FleetRequest> {
        let path = head.path.as_str();
        let hook = path
            .strip_prefix("/tenants/")
            .and_then(|rest| rest.split_once("/webhooks/"));
        let answer = match (&head.method, path, hook) {
            (&Method::GET | &Method::HEAD, "/healthz", _) => http::healthz(),
            (&Method::GET | &Method::HEAD, "/", _) => {
                return Route::Handle {
                    request: FleetRequest::Status,
                    read_body: false,
                };
            }
            (&Method::POST, _, Some((tenant, flow))) => {
                return self.authenticate(tenant, flow, head);
            }
            (_, _, Some(_)) => http::webhooks_are_posted(),
            (_, "/healthz" | "/", _) => http::method_not_allowed(),
            _ => http::not_found(),
        };
        Route::Answer(answer)
    }

    fn handle(&self, request: FleetRequest, head: &Head, body: &[u8]) -> Answer {
        match request {
            FleetRequest::Status => http::html(200, super::page::render(self)),
            FleetRequest::Webhook { tenant, flow } => self.webhook(tenant, flow, head, body),
        }
    }
}

impl Fleet {
    /// Step 1 of the webhook protocol, for one tenant's flow.
    fn authenticate(&self, tenant: &str, flow: &str, head: &Head) -> Route<FleetRequest> {
        let Some(t) = self.tenants.iter().position(|t| t.id == tenant) else {
            return Route::Answer(http::json_answer(
                404,
                json!({ "error": format!("no tenant `{tenant}`") }),
            ));
        };
        let Ok((_, flows)) = &self.tenants[t].ready else {
            return Route::Answer(http::json_answer(
                503,
                json!({ "error": format!("tenant `{tenant}` is not served: its config has a problem (see the status page)") }),
            ));
        };
        let found = flows.iter().position(|f| f.name == flow);
        let hook = found.and_then(|i| flows[i].webhook.as_ref());
        match (found, http::authenticate(hook, head)) {
            (Some(flow), Ok(())) => Route::Handle {
                request: FleetRequest::Webhook { tenant: t, flow },
                read_body: true,
            },
            (_, Err(refused)) => Route::Answer(refused),
            (None, Ok(())) => Route::Answer(http::internal_error()),
        }
    }

    /// Steps 3 to 5: into the tenant's inbox, then into the work ledger.
    /// An event stored in the inbox whose ledger row could not be written
    /// is still accepted: the sweep records it (it is never lost).
    fn webhook(&self, tenant: usize, flow: usize, head: &Head, body: &[u8]) -> Answer {
        let t = &self.tenants[tenant];
        let Some((config, f, hook)) = t.ready.as_ref().ok().and_then(|(config, flows)| {
            let f = flows.get(flow)?;
            Some((config, f, f.webhook.as_ref()?))
        }) else {
            return http::internal_error();
        };
        let mut store = match super::open_store(config) {
            Ok(s) => s,
            Err(e) => {
                return http::json_answer(
                    503,
                    json!({ "error": format!("the event could not be stored, retry later: {e}") }),
                );
            }
        };
        let (id, record) = match http::receive(&mut store, &f.name, hook, head, body) {
            Ok(Received::New { id, record }) => (id, record),
            Ok(Received::Answered(answer)) | Err(answer) => return answer,
        };
        let retry_ms = i64::try_from(self.cfg.retry_every.as_millis()).unwrap_or(i64::MAX);
        let recorded = self.with_db(&mut lock(&self.http_db), |c| {
            work::record_event(c, &t.id, &f.name, id.0, Some(&record), retry_ms)
        });
        if let Err(e) = recorded {
            tracing::warn!(tenant = %t.id, flow = %f.name,
                "fleet: event {} is in the inbox but not yet in the work ledger (the sweep will add it): {e}", id.0);
        }
        http::accepted(id, &record)
    }
}
