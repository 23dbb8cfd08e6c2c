//! # The generic SCIM 2.0 target connector
//!
//! Provisions accounts and groups into any service provider that speaks SCIM
//! 2.0 (RFC 7643 schemas, RFC 7644 protocol) — most SaaS tools do. It is a
//! *target* only: it reads accounts and groups and applies the core's plan.
//!
//! ## Settings
//! - `base_url` (required): the SCIM endpoint, e.g.
//!   `https://scim.example.com/scim/v2` (the URL that `/Users` is appended to).
//! - `page_size` (default 100, 1–1000): `count` of each list request.
//! - `user_filter` / `group_filter` (optional): a SCIM filter (RFC 7644
//!   §3.4.2.2) narrowing which users / groups this connection reads, e.g.
//!   `userName ew "@acme.com"`. Accounts outside the filter are invisible to
//!   the sync, so it must match the accounts the flow creates (otherwise the
//!   next plan creates them again; the retry-safe create then links them).
//! - `update_method` (`auto` | `patch` | `put`, default `auto`): how updates
//!   are sent. `auto` reads `/ServiceProviderConfig` once, on the first write
//!   or in `check`, and uses PATCH when it says `patch.supported`, else PUT.
//!
//! The credential slot `bearer-token` is injected by the host as
//! `Authorization: Bearer {secret}`; the token never enters the plugin.
//!
//! ## Protocol choices, and why
//! - **Reads** page with `startIndex`/`count` and stop when `totalResults` is
//!   reached or a page comes back empty; the page length actually returned
//!   drives the next `startIndex`, since servers may cap `count` lower.
//! - **Creates** POST the user with the source id as `externalId`. A 409 whose
//!   conflicting account carries that same `externalId` is our own earlier
//!   create (a retry after a crash), so it is answered with that account's id
//!   instead of a conflict: `apply` must be safe to retry.
//! - **Updates** (including deactivate, reactivate and manager) read the user
//!   first, compute the edits from what the server really holds — only fields
//!   listed in the operation, only values that differ, and for `emails` /
//!   `phoneNumbers` only the entry of the written type — and send them as one
//!   `PatchOp`, or as a full PUT of the edited resource. When the server
//!   offers ETags (`etag.supported`), the write carries `If-Match` with the
//!   version just read, and a 412 (somebody wrote in between) re-reads and
//!   retries, at most three times. A PATCH answered 501 or 405 switches the
//!   connection to PUT for good.
//! - **Group** member changes (`change-members`: the members to add and to
//!   remove of one group) are **one** PatchOp request that does not depend on
//!   the group's current state — one `add` operation carrying every new
//!   member, one `remove` of `members[value eq "…"]` per leaving member — so
//!   it skips the read (a group's member list can be large). The manifest
//!   declares `max-members-per-change: 100`, which keeps a request small for
//!   any server. RFC 7644 applies a PATCH atomically, so a server answering
//!   `noTarget` (a removed account that is no member) refused the whole
//!   request: the change is then made by reading the group and writing the
//!   edited member list, as in PUT mode, where the connector reads, edits and
//!   PUTs with `If-Match` like users.
//! - **`read-account(id)`** is a `GET /Users/{id}`; a 404 is `none`.
//! - **Errors** carry the SCIM error body's `scimType` and `detail` and name
//!   the record: 409 → `conflict`, 400 → `invalid`, 404 → `not-found`, 401 →
//!   `unauthorized` (with the server's words), 403 → `forbidden`, 429 → `rate-limited`, 5xx →
//!   `unavailable`.
//!
//! ## Hosts
//! A generic SCIM server can be anywhere, so the manifest asks for any HTTPS
//! host (`https://*`), which the host treats as "whatever the operator
//! grants": a connection must name its server in `hosts = [...]`, and the
//! grant is the intersection. Plain-HTTP loopback (self-hosted and test
//! servers) is declared too; the address check still refuses loopback unless
//! the connection allows it. See [`HOSTS`].

mod user;
mod wire;

use std::cell::RefCell;

use muster_sdk::bindings::muster::connector::http::Method;
use muster_sdk::prelude::*;
use muster_sdk::serde_json::{Value, json};
use muster_sdk::{field, manifest, required_setting, setting};

use user::{Attr, Edit, Path};
use wire::{Reply, encode, quote};

/// Group schema URN.
const GROUP_SCHEMA: &str = "urn:ietf:params:scim:schemas:core:2.0:Group";
/// PatchOp message URN.
const PATCH_OP: &str = "urn:ietf:params:scim:api:messages:2.0:PatchOp";

/// Host patterns the manifest asks for; the tenant configuration narrows them
/// (`https://*` only ever grants the hosts a connection names).
pub const HOSTS: &[&str] = &["https://*", "http://127.0.0.1:*", "http://[::1]:*"];

const DEFAULT_PAGE_SIZE: u32 = 100;
const MAX_PAGE_SIZE: u32 = 1000;
/// Attempts of a read-modify-write that the server refuses with 412.
const ETAG_ATTEMPTS: u32 = 3;

struct Scim;

/// How updates are sent.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum UpdateMethod {
    /// PATCH unless the ServiceProviderConfig says it is unsupported.
    Auto,
    /// Always PATCH.
    Patch,
    /// Always PUT.
    Put,
}

#[derive(Debug, Clone)]
struct Config {
    base_url: String,
    page_size: u32,
    user_filter: Option<String>,
    group_filter: Option<String>,
    update_method: UpdateMethod,
}

/// What the server said it supports (`/ServiceProviderConfig`).
#[derive(Debug, Clone, Copy)]
struct Features {
    patch: bool,
    etag: bool,
}

#[derive(Debug)]
struct State {
    config: Config,
    features: Option<Features>,
}

thread_local! {
    static STATE: RefCell<Option<State>> = const { RefCell::new(None) };
}

fn config() -> Result<Config, ConnectorError> {
    STATE.with(|s| {
        s.borrow()
            .as_ref()
            .map(|s| s.config.clone())
            .ok_or_else(|| ConnectorError::Invalid("the connector is not configured".into()))
    })
}

fn parse_config(settings: &[(String, String)]) -> Result<Config, ConnectorError> {
    let base_url = required_setting(settings, "base_url")?
        .trim()
        .trim_end_matches('/')
        .to_string();
    if !(base_url.starts_with("https://") || base_url.starts_with("http://"))
        || base_url.split_once("://").is_none_or(|(_, h)| h.is_empty())
    {
        return Err(ConnectorError::Invalid(format!(
            "setting `base_url`: `{base_url}` is not an http(s) URL"
        )));
    }
    let page_size = match setting(settings, "page_size") {
        None => DEFAULT_PAGE_SIZE,
        Some(v) => v
            .trim()
            .parse::<u32>()
            .ok()
            .filter(|n| (1..=MAX_PAGE_SIZE).contains(n))
            .ok_or_else(|| {
                ConnectorError::Invalid(format!(
                    "setting `page_size`: `{v}` is not a number from 1 to {MAX_PAGE_SIZE}"
                ))
            })?,
    };
    let update_method = match setting(settings, "update_method").as_deref().map(str::trim) {
        None | Some("auto") => UpdateMethod::Auto,
        Some("patch") => UpdateMethod::Patch,
        Some("put") => UpdateMethod::Put,
        Some(other) => {
            return Err(ConnectorError::Invalid(format!(
                "setting `update_method`: `{other}` is not one of auto, patch, put"
            )));
        }
    };
    let filter = |key: &str| setting(settings, key).filter(|f| !f.trim().is_empty());
    let known = [
        "base_url",
        "page_size",
        "user_filter",
        "group_filter",
        "update_method",
    ];
    if let Some((unknown, _)) = settings.iter().find(|(k, _)| !known.contains(&k.as_str())) {
        return Err(ConnectorError::Invalid(format!(
            "unknown setting `{unknown}` (known: {})",
            known.join(", ")
        )));
    }
    Ok(Config {
        base_url,
        page_size,
        user_filter: filter("user_filter"),
        group_filter: filter("group_filter"),
        update_method,
    })
}

/// The server's features, read from `/ServiceProviderConfig` once per
/// instance. A server without that endpoint (404) is taken to support PATCH
/// and not ETags, the RFC's baseline.
fn features() -> Result<Features, ConnectorError> {
    if let Some(f) = STATE.with(|s| s.borrow().as_ref().and_then(|s| s.features)) {
        return Ok(f);
    }
    let cfg = config()?;
    let reply = wire::send(
        Method::Get,
        &format!("{}/ServiceProviderConfig", cfg.base_url),
        None,
        None,
    )?;
    let found = if reply.status == 404 {
        muster_sdk::warn!(
            "{}/ServiceProviderConfig not found: assuming PATCH without ETags",
            cfg.base_url
        );
        Features {
            patch: true,
            etag: false,
        }
    } else {
        let spc = wire::ok(reply, "read /ServiceProviderConfig")?.json("/ServiceProviderConfig")?;
        let supported = |key: &str| {
            spc.get(key)
                .and_then(|f| f.get("supported"))
                .and_then(Value::as_bool)
        };
        Features {
            patch: supported("patch").unwrap_or(true),
            etag: supported("etag").unwrap_or(false),
        }
    };
    remember(found);
    Ok(found)
}

fn remember(features: Features) {
    STATE.with(|s| {
        if let Some(state) = s.borrow_mut().as_mut() {
            state.features = Some(features);
        }
    });
}

/// Whether updates go out as PATCH (else PUT).
fn use_patch() -> Result<bool, ConnectorError> {
    Ok(match config()?.update_method {
        UpdateMethod::Patch => true,
        UpdateMethod::Put => false,
        UpdateMethod::Auto => features()?.patch,
    })
}

/// Switches this instance to PUT after the server refused PATCH itself.
fn patch_refused() -> Result<(), ConnectorError> {
    let f = features()?;
    muster_sdk::warn!("the SCIM server refused PATCH: sending updates as PUT from now on");
    STATE.with(|s| {
        if let Some(state) = s.borrow_mut().as_mut() {
            state.config.update_method = UpdateMethod::Put;
        }
    });
    remember(Features { patch: false, ..f });
    Ok(())
}

/// `{base}/{kind}/{id}` with the id percent-encoded.
fn resource_url(kind: &str, id: &str) -> Result<String, ConnectorError> {
    Ok(format!("{}/{kind}/{}", config()?.base_url, encode(id)))
}

/// One page of a resource list: `(resources, next cursor)`.
fn list(
    kind: &str,
    filter: Option<&str>,
    cursor: Option<&str>,
) -> Result<(Vec<Value>, Option<String>), ConnectorError> {
    let cfg = config()?;
    let start: u64 = match cursor {
        None => 1,
        Some(c) => c
            .parse()
            .ok()
            .filter(|n| *n >= 1)
            .ok_or_else(|| ConnectorError::Invalid(format!("bad paging cursor `{c}`")))?,
    };
    let mut url = format!(
        "{}/{kind}?startIndex={start}&count={}",
        cfg.base_url, cfg.page_size
    );
    if let Some(f) = filter {
        url.push_str("&filter=");
        url.push_str(&encode(f));
    }
    let what = format!("list {kind}");
    let body = wire::ok(wire::send(Method::Get, &url, None, None)?, &what)?.json(&what)?;
    let resources = match body.get("Resources") {
        None | Some(Value::Null) => Vec::new(),
        Some(Value::Array(items)) => items.clone(),
        Some(_) => {
            return Err(ConnectorError::Invalid(format!(
                "{what}: `Resources` is not a list"
            )));
        }
    };
    let total = body
        .get("totalResults")
        .and_then(Value::as_u64)
        .ok_or_else(|| ConnectorError::Invalid(format!("{what}: no `totalResults`")))?;
    let got = resources.len() as u64;
    let next = (got > 0 && start - 1 + got < total).then(|| (start + got).to_string());
    Ok((resources, next))
}

/// `GET` one resource: its JSON and entity tag (the `ETag` header, else
/// `meta.version`).
fn fetch(kind: &str, id: &str, what: &str) -> Result<(Value, Option<String>), ConnectorError> {
    let reply = wire::ok(
        wire::send(Method::Get, &resource_url(kind, id)?, None, None)?,
        what,
    )?;
    let body = reply.json(what)?;
    let tag = reply
        .header("etag")
        .map(str::to_string)
        .or_else(|| {
            body.get("meta")
                .and_then(|m| m.get("version"))
                .and_then(Value::as_str)
                .map(str::to_string)
        })
        .filter(|t| !t.is_empty());
    Ok((body, tag))
}

/// The id of a resource the server just created: from the body, else the
/// last segment of `Location`.
fn created_id(reply: &Reply, what: &str) -> Result<String, ConnectorError> {
    let from_body = muster_sdk::serde_json::from_slice::<Value>(&reply.body)
        .ok()
        .and_then(|b| b.get("id").and_then(Value::as_str).map(str::to_string));
    from_body
        .or_else(|| {
            reply
                .header("location")
                .and_then(|l| l.trim_end_matches('/').rsplit('/').next())
                .map(str::to_string)
        })
        .filter(|id| !id.is_empty())
        .ok_or_else(|| ConnectorError::Invalid(format!("{what}: the server returned no id")))
}

/// Read-modify-write of one resource: reads it, asks `make` for the edits,
/// and sends them as a PatchOp or a PUT, with `If-Match` when the server
/// offers ETags. Retries on 412; switches to PUT if PATCH itself is refused.
fn modify(
    kind: &str,
    id: &str,
    what: &str,
    make: &dyn Fn(&Value) -> Result<Vec<Edit>, ConnectorError>,
) -> Result<Applied, ConnectorError> {
    let done = || Applied {
        target_id: id.to_string(),
    };
    let mut attempt = 0;
    loop {
        attempt += 1;
        let (current, tag) = fetch(kind, id, what)?;
        let edits = make(&current)?;
        if edits.is_empty() {
            return Ok(done());
        }
        let if_match = if features()?.etag { tag } else { None };
        let patch = use_patch()?;
        let body = if patch {
            json!({
                "schemas": [PATCH_OP],
                "Operations": edits.iter().map(Edit::to_patch_op).collect::<Vec<_>>(),
            })
        } else {
            let mut full = current.clone();
            for e in &edits {
                e.path.set(&mut full, e.value.clone());
            }
            if let Some(obj) = full.as_object_mut() {
                obj.remove("meta");
            }
            full
        };
        let method = if patch { Method::Patch } else { Method::Put };
        let url = resource_url(kind, id)?;
        let reply = wire::send(method, &url, Some(&body), if_match.as_deref())?;
        match reply.status {
            s if (200..300).contains(&s) => return Ok(done()),
            412 if attempt < ETAG_ATTEMPTS => continue,
            405 | 501 if patch => {
                patch_refused()?;
                continue;
            }
            _ => return Err(wire::error_for(&reply, what)),
        }
    }
}

/// Sends one PatchOp to a group without reading it first.
fn patch_group(id: &str, ops: Vec<Value>) -> Result<Reply, ConnectorError> {
    let body = json!({"schemas": [PATCH_OP], "Operations": ops});
    wire::send(
        Method::Patch,
        &resource_url("Groups", id)?,
        Some(&body),
        None,
    )
}

/// Member ids of a group (nested groups left out: the contract's members are
/// accounts).
fn members(group: &Value) -> Vec<String> {
    group
        .get("members")
        .and_then(Value::as_array)
        .map(|ms| {
            ms.iter()
                .filter(|m| {
                    m.get("type")
                        .and_then(Value::as_str)
                        .is_none_or(|t| t.eq_ignore_ascii_case("User"))
                })
                .filter_map(|m| m.get("value").and_then(Value::as_str).map(str::to_string))
                .collect()
        })
        .unwrap_or_default()
}

fn create_user(person: &Person) -> Result<Applied, ConnectorError> {
    let what = format!("create user for source id `{}`", person.id);
    let body = user::new_user(person)?;
    let url = format!("{}/Users", config()?.base_url);
    let reply = wire::send(Method::Post, &url, Some(&body), None)?;
    if reply.is_success() {
        return Ok(Applied {
            target_id: created_id(&reply, &what)?,
        });
    }
    if reply.status == 409 {
        // Our own earlier create (the run crashed before recording it) is
        // recognised by its externalId; anything else is a real conflict.
        let filter = format!("externalId eq {}", quote(&person.id));
        if let Ok((found, _)) = list("Users", Some(&filter), None)
            && let [only] = found.as_slice()
            && let Some(id) = only.get("id").and_then(Value::as_str)
        {
            muster_sdk::info!("{what}: already exists as `{id}` (retried create)");
            return Ok(Applied {
                target_id: id.to_string(),
            });
        }
    }
    Err(wire::error_for(&reply, &what))
}

fn update_user(
    id: &str,
    desired: &Person,
    attrs: &[Attr],
    what: &str,
) -> Result<Applied, ConnectorError> {
    modify("Users", id, what, &|current| {
        user::edits(current, desired, attrs, what)
    })
}

fn set_active(id: &str, active: bool) -> Result<Applied, ConnectorError> {
    let what = format!(
        "{} user `{id}`",
        if active { "reactivate" } else { "deactivate" }
    );
    update_user(id, &Person::new(id, active), &[Attr::Active], &what)
}

fn create_group(group: &NewGroup) -> Result<Applied, ConnectorError> {
    let what = format!("create group `{}`", group.name);
    if group.parent_id.is_some() {
        // SCIM groups are flat (RFC 7643 §4.2 has no parent).
        muster_sdk::debug!("{what}: parent ignored, SCIM groups have no hierarchy");
    }
    let body = json!({"schemas": [GROUP_SCHEMA], "displayName": group.name});
    let url = format!("{}/Groups", config()?.base_url);
    let reply = wire::ok(wire::send(Method::Post, &url, Some(&body), None)?, &what)?;
    Ok(Applied {
        target_id: created_id(&reply, &what)?,
    })
}

fn rename_group(id: &str, name: &str) -> Result<Applied, ConnectorError> {
    let what = format!("rename group `{id}` to `{name}`");
    let want = Value::String(name.to_string());
    modify("Groups", id, &what, &|current| {
        Ok(if current.get("displayName") == Some(&want) {
            Vec::new()
        } else {
            vec![Edit {
                path: Path::Top("displayName"),
                value: Some(want.clone()),
            }]
        })
    })
}

/// Most account ids one `change-members` carries (declared in the manifest).
const MEMBERS_PER_CHANGE: usize = 100;

/// Adds and removes members of one group in one PatchOp request (see the
/// crate docs); in PUT mode, or when the server refused a removal with
/// `noTarget`, by reading the group and writing its edited member list.
fn change_members(m: &MemberChange) -> Result<Applied, ConnectorError> {
    let what = format!(
        "change the members of group `{}` (add {}, remove {})",
        m.group_id,
        m.add.len(),
        m.remove.len()
    );
    let done = Applied {
        target_id: m.group_id.clone(),
    };
    if m.add.len() + m.remove.len() > MEMBERS_PER_CHANGE {
        return Err(ConnectorError::Invalid(format!(
            "{what}: more than the {MEMBERS_PER_CHANGE} members this connector declares \
             (max-members-per-change)"
        )));
    }
    if m.add.is_empty() && m.remove.is_empty() {
        return Ok(done);
    }
    if use_patch()? {
        let reply = patch_group(&m.group_id, member_ops(m))?;
        if reply.is_success() {
            return Ok(done);
        }
        let (scim_type, _) = wire::error_detail(&reply.body);
        // A removed account that is no member: the server refused the whole PATCH.
        let removal_no_target =
            !m.remove.is_empty() && reply.status == 400 && scim_type.as_deref() == Some("noTarget");
        if matches!(reply.status, 405 | 501) {
            patch_refused()?;
        } else if !removal_no_target {
            return Err(wire::error_for(&reply, &what));
        }
    }
    modify("Groups", &m.group_id, &what, &|current| {
        let list = current
            .get("members")
            .and_then(Value::as_array)
            .cloned()
            .unwrap_or_default();
        Ok(edited_members(&list, m).map_or_else(Vec::new, |list| {
            vec![Edit {
                path: Path::Top("members"),
                value: Some(Value::Array(list)),
            }]
        }))
    })
}

/// The PatchOp operations of a member change: one `add` with every new
/// member, one `remove` per leaving member.
fn member_ops(m: &MemberChange) -> Vec<Value> {
    let mut ops = Vec::with_capacity(1 + m.remove.len());
    if !m.add.is_empty() {
        let values: Vec<Value> = m.add.iter().map(|a| json!({"value": a})).collect();
        ops.push(json!({"op": "add", "path": "members", "value": values}));
    }
    for r in &m.remove {
        ops.push(json!({"op": "remove", "path": format!("members[value eq {}]", quote(r))}));
    }
    ops
}

/// A group's `members` list with the change applied; `None` when it already
/// holds (every added account is a member, no removed one is).
fn edited_members(list: &[Value], m: &MemberChange) -> Option<Vec<Value>> {
    let id = |v: &Value| v.get("value").and_then(Value::as_str).map(str::to_string);
    let mut out: Vec<Value> = list
        .iter()
        .filter(|v| id(v).is_none_or(|i| !m.remove.contains(&i)))
        .cloned()
        .collect();
    for a in &m.add {
        if !out.iter().any(|v| id(v).as_deref() == Some(a.as_str())) {
            out.push(json!({"value": a}));
        }
    }
    (out.as_slice() != list).then_some(out)
}

/// One account by id; `none` when the server answers 404.
fn read_account(id: &str) -> Result<Option<Person>, ConnectorError> {
    let what = format!("read user `{id}`");
    match fetch("Users", id, &what) {
        Ok((user, _)) => user::to_person(&user).map(Some),
        Err(ConnectorError::NotFound) => Ok(None),
        Err(e) => Err(e),
    }
}

impl Connector for Scim {
    fn describe() -> Manifest {
        let key = |name: &str, description: &str, required: bool| ConfigKey {
            name: name.into(),
            description: description.into(),
            required,
        };
        Manifest {
            capabilities: vec![
                Capability::ReadAccounts,
                Capability::ReadTargetGroups,
                Capability::ReadAccount,
                Capability::WriteAccounts,
                Capability::WriteGroups,
            ],
            config_keys: vec![
                key(
                    "base_url",
                    "SCIM endpoint that /Users and /Groups are appended to, e.g. \
                     https://scim.example.com/scim/v2",
                    true,
                ),
                key(
                    "page_size",
                    "count of each list request, 1-1000 (default 100)",
                    false,
                ),
                key(
                    "user_filter",
                    "SCIM filter narrowing the users read, e.g. userName ew \"@acme.com\"",
                    false,
                ),
                key(
                    "group_filter",
                    "SCIM filter narrowing the groups read",
                    false,
                ),
                key(
                    "update_method",
                    "auto (PATCH unless /ServiceProviderConfig says unsupported), patch or put",
                    false,
                ),
            ],
            hosts: HOSTS.iter().map(|h| h.to_string()).collect(),
            credential_slots: vec![CredentialSlot {
                name: wire::SLOT.into(),
                description: "SCIM bearer token issued by the service provider".into(),
                header: "Authorization".into(),
                template: "Bearer {secret}".into(),
            }],
            stores: Some(manifest::canonical(&STORES)),
            create_requires: manifest::canonical(&[Field::Login]),
            max_members_per_change: MEMBERS_PER_CHANGE as u32,
            ..Manifest::new(
                "scim",
                env!("CARGO_PKG_VERSION"),
                "Generic SCIM 2.0 target (RFC 7643/7644): users with the enterprise \
                 extension, groups and members",
            )
        }
    }

    fn configure(settings: Vec<(String, String)>) -> Result<(), ConnectorError> {
        let config = parse_config(&settings)?;
        STATE.with(|s| {
            *s.borrow_mut() = Some(State {
                config,
                features: None,
            })
        });
        Ok(())
    }

    /// Reads `/ServiceProviderConfig` (reachability, features) and one user
    /// (the token: the RFC lets the configuration endpoint be anonymous).
    fn check() -> Result<(), ConnectorError> {
        features()?;
        let url = format!("{}/Users?startIndex=1&count=1", config()?.base_url);
        wire::ok(wire::send(Method::Get, &url, None, None)?, "list Users")?;
        Ok(())
    }
}

impl Source for Scim {
    fn read_people(_request: ReadRequest) -> Result<PersonPage, ConnectorError> {
        Err(ConnectorError::Unsupported)
    }

    fn read_groups(_cursor: Option<String>) -> Result<GroupPage, ConnectorError> {
        Err(ConnectorError::Unsupported)
    }

    fn read_person(_id: String) -> Result<Option<Person>, ConnectorError> {
        Err(ConnectorError::Unsupported)
    }
}

impl Target for Scim {
    fn read_accounts(cursor: Option<String>) -> Result<PersonPage, ConnectorError> {
        let filter = config()?.user_filter;
        let (users, next) = list("Users", filter.as_deref(), cursor.as_deref())?;
        let items = users
            .iter()
            .map(user::to_person)
            .collect::<Result<_, _>>()?;
        Ok(PersonPage::full(items, next))
    }

    fn read_groups(cursor: Option<String>) -> Result<GroupPage, ConnectorError> {
        let filter = config()?.group_filter;
        let (groups, next) = list("Groups", filter.as_deref(), cursor.as_deref())?;
        let items = groups
            .iter()
            .map(|g| {
                let id = g.get("id").and_then(Value::as_str).ok_or_else(|| {
                    ConnectorError::Invalid(format!(
                        "SCIM group without an `id`: {}",
                        user::excerpt(&g.to_string())
                    ))
                })?;
                Ok(Group {
                    id: id.to_string(),
                    name: g
                        .get("displayName")
                        .and_then(Value::as_str)
                        .unwrap_or_default()
                        .to_string(),
                    parent_id: None,
                    members: members(g),
                })
            })
            .collect::<Result<_, ConnectorError>>()?;
        Ok(GroupPage::new(items, next))
    }

    fn read_account(id: String) -> Result<Option<Person>, ConnectorError> {
        read_account(&id)
    }

    fn apply(operation: Operation) -> Result<Applied, ConnectorError> {
        match operation {
            Operation::Create(person) => create_user(&person),
            Operation::Update(update) => {
                let what = format!("update user `{}`", update.id);
                let attrs = update
                    .fields
                    .iter()
                    .map(|f| Attr::parse(&field::name(f), &update.id))
                    .collect::<Result<Vec<_>, _>>()?;
                update_user(&update.id, &update.person, &attrs, &what)
            }
            Operation::Deactivate(a) => set_active(&a.id, false),
            Operation::Reactivate(a) => set_active(&a.id, true),
            Operation::SetManager(change) => {
                let what = format!("set manager of user `{}`", change.id);
                let desired = Person {
                    manager_id: change.manager_id.clone(),
                    ..Person::new(change.id.clone(), true)
                };
                update_user(&change.id, &desired, &[Attr::ManagerId], &what)
            }
            Operation::CreateGroup(group) => create_group(&group),
            Operation::RenameGroup(r) => rename_group(&r.id, &r.name),
            Operation::ChangeMembers(m) => change_members(&m),
        }
    }
}

muster_sdk::export!(Scim);

/// What a SCIM server stores (the core and enterprise schemas, see `user`):
/// no birth, start or end date, gender or custom field. A create requires
/// `userName`, which comes from `login`.
const STORES: [Field; 12] = [
    Field::Login,
    Field::GivenName,
    Field::FamilyName,
    Field::WorkEmail,
    Field::PersonalEmail,
    Field::Phone,
    Field::JobTitle,
    Field::ContractType,
    Field::EmployeeNumber,
    Field::DepartmentId,
    Field::LegalEntityId,
    Field::ManagerId,
];

#[cfg(test)]
mod tests {
    use super::*;

    fn settings(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn settings_are_validated_by_name() {
        let c = parse_config(&settings(&[("base_url", "http://127.0.0.1:9/v2/")])).unwrap();
        assert_eq!(c.base_url, "http://127.0.0.1:9/v2");
        assert_eq!(c.page_size, DEFAULT_PAGE_SIZE);
        assert_eq!(c.update_method, UpdateMethod::Auto);
        let bad = |pairs: &[(&str, &str)], key: &str| {
            assert!(
                matches!(parse_config(&settings(pairs)), Err(ConnectorError::Invalid(m)) if m.contains(key)),
                "{key}"
            )
        };
        bad(&[], "base_url");
        bad(&[("base_url", "scim.example.com")], "base_url");
        bad(
            &[("base_url", "https://x.test"), ("page_size", "0")],
            "page_size",
        );
        bad(
            &[("base_url", "https://x.test"), ("update_method", "post")],
            "update_method",
        );
        bad(&[("base_url", "https://x.test"), ("token", "t")], "token");
    }

    fn change(add: &[&str], remove: &[&str]) -> MemberChange {
        MemberChange {
            group_id: "g1".into(),
            add: add.iter().map(|a| a.to_string()).collect(),
            remove: remove.iter().map(|r| r.to_string()).collect(),
        }
    }

    #[test]
    fn a_member_change_is_one_add_and_one_remove_per_leaver() {
        let ops = member_ops(&change(&["u1", "u2"], &["u3"]));
        assert_eq!(
            ops,
            vec![
                json!({"op": "add", "path": "members", "value": [{"value": "u1"}, {"value": "u2"}]}),
                json!({"op": "remove", "path": "members[value eq \"u3\"]"}),
            ]
        );
        assert_eq!(member_ops(&change(&[], &["u3"])).len(), 1);
    }

    #[test]
    fn an_edited_member_list_applies_the_change_or_says_it_holds() {
        let list = vec![
            json!({"value": "u1"}),
            json!({"value": "u3", "display": "C"}),
        ];
        assert_eq!(
            edited_members(&list, &change(&["u2", "u1"], &["u3"])),
            Some(vec![json!({"value": "u1"}), json!({"value": "u2"})])
        );
        assert_eq!(edited_members(&list, &change(&["u1"], &["u9"])), None);
    }

    #[test]
    fn nested_groups_are_not_members() {
        let g = json!({"members": [{"value": "u1"}, {"value": "g2", "type": "Group"}, {"value": "u3", "type": "User"}]});
        assert_eq!(members(&g), vec!["u1".to_string(), "u3".to_string()]);
    }
}
