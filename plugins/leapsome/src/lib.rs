//! The `leapsome` connector: a target speaking Leapsome's SCIM 2.0 dialect
//! (`https://api.leapsome.com/scim/v1`, see `shared/API-NOTES.md`).
//!
//! # Settings
//! - `base_url` — the SCIM base, default `https://api.leapsome.com/scim/v1` (the sandbox
//!   prints its own).
//! - `invite_on_create` — `true`/`false` (default `false`): ask Leapsome to send an invitation
//!   to each account this connector creates; never for updates, links or reactivations.
//! - `page_size` — accounts per list request, 1–5000 (default 1000).
//!
//! One credential slot, `scim-token`, sent as `Authorization: Bearer {secret}`.
//!
//! # Ids
//! Account and group ids are Leapsome's own `id`s. A create stores the source id
//! (`person.id`) as the account's `externalId`; manager references (which Leapsome may give as
//! an `externalId`, an email or an id) are translated to Leapsome ids on read, and set-manager
//! writes the manager's Leapsome id.
//!
//! # The dialect (Leapsome's published SCIM API, `shared/API-NOTES.md`)
//! - **A create is a POST then one PATCH**: the POST carries the core attributes Leapsome
//!   keeps (`userName`, `name`, `displayName`, `title`, `externalId`), the PATCH the
//!   enterprise attributes (employee number, department name, dates, birthday, gender),
//!   `active` and the manager when its account is known. If the PATCH fails, the account
//!   exists and is linked all the same (a warning says so); the next sync sees the missing
//!   attributes and updates them. A sync killed between the two is completed the same way:
//!   its recovery links the account by `userName`, the next plan updates it.
//! - **Every user PATCH carries `userName`** (Leapsome refuses one without it): the account's
//!   current one, known from the last read ([`known`]) or fetched, or the new one when the
//!   update changes the work email. PATCH sends a partial user JSON with only the fields the
//!   operation lists; `null` clears.
//! - A create sends no `emails` (Leapsome refuses any address outside the organisation's
//!   domains); the personal email is written only by an update that lists `personal-email`,
//!   i.e. when the flow owns it.
//! - A create answered `{}` means the account already exists: it is looked up by `userName`
//!   and its id returned, so the host links it (this is also what makes a create safe to
//!   retry after a crash). A 409 is a `conflict` naming the email; a refused email domain is
//!   `invalid` naming the email.
//! - **Leapsome swaps 401 and 403**: its 403 means an invalid token, mapped to
//!   `unauthorized("<account>: the SCIM token is not valid (Leapsome answered 403: …)")`; its
//!   401 means missing rights, mapped to `forbidden` "the token lacks rights", naming the
//!   account.
//! - Teams are SCIM groups whose GET lists **no members**: memberships are read from the
//!   users' `groups` (the whole directory is read for that when `read-target-groups` is
//!   called alone). A group PATCH carries at most 100 members, so the manifest declares
//!   `max-members-per-change: 100` and a `change-members` that only adds is **one** PATCH
//!   (`replaceMembers: false`) whatever its size up to 100. Leapsome has no way to remove one
//!   member: a change that removes rewrites the team's member list (`replaceMembers: true`),
//!   one PATCH when the new list holds at most 100 members, else the first 100 replacing and
//!   the rest added 100 per PATCH.
//! - `read-accounts` reads every account on the first call (managers can only be translated
//!   with the whole directory at hand), then serves pages from memory. A page that comes back
//!   shorter than announced fails the read instead of returning a partial directory. A value
//!   that cannot be read (a date that is not one, a gender other than male/female/diverse) is
//!   left absent and reported as a `record-problem` on the page.
//! - `read-account(id)` GETs one user (`none` on 404) and translates its manager reference
//!   with at most one more request (Leapsome accepts an id or `externalId` in `/Users/{id}`,
//!   an email through the `userName` filter).
//!
//! # Manifest
//! Rate limit: 30 requests per second on `https://api.leapsome.com` (Leapsome answers 429
//! past it). Stores what the mapping table in [`map`] lists; a create requires the work email
//! (the `userName`) and the name.

mod known;
mod map;

use std::cell::RefCell;

use muster_sdk::bindings::muster::connector::http::Method;
use muster_sdk::manifest;
use muster_sdk::prelude::*;
use serde_json::{Value, json};

use map::{Department, ENTERPRISE, GROUP_SCHEMA};

/// Leapsome's SCIM base.
const DEFAULT_BASE_URL: &str = "https://api.leapsome.com/scim/v1";
/// Largest list page Leapsome serves for users, and for groups.
const MAX_USERS_PAGE: usize = 5000;
const GROUPS_PAGE: usize = 1000;
/// Most members one group PATCH may carry.
const MEMBERS_PER_PATCH: usize = 100;
/// Accounts per page handed to the host.
const HOST_PAGE: usize = 1000;
const SLOT: &str = "scim-token";

struct Config {
    base_url: String,
    invite_on_create: bool,
    page_size: usize,
}

thread_local! {
    static CONFIG: RefCell<Option<Config>> = const { RefCell::new(None) };
    /// Every account, read on the first `read-accounts` call and paged from here.
    static ACCOUNTS: RefCell<Vec<Person>> = const { RefCell::new(Vec::new()) };
}

fn client() -> Result<Client, ConnectorError> {
    CONFIG.with_borrow(|c| {
        c.as_ref()
            .map(|c| Client::new(c.base_url.clone()).with_credential(SLOT))
            .ok_or_else(|| ConnectorError::Invalid("the connector is not configured".into()))
    })
}

fn config<R>(f: impl FnOnce(&Config) -> R) -> Result<R, ConnectorError> {
    CONFIG.with_borrow(|c| {
        c.as_ref()
            .map(f)
            .ok_or_else(|| ConnectorError::Invalid("the connector is not configured".into()))
    })
}

/// Percent-encodes a path segment or query value.
fn encode(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~') {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

fn to_bytes(body: &serde_json::Map<String, Value>) -> Result<Vec<u8>, ConnectorError> {
    serde_json::to_vec(body)
        .map_err(|e| ConnectorError::Invalid(format!("cannot encode request: {e}")))
}

fn patch(path: &str, body: &serde_json::Map<String, Value>) -> Result<(), ConnectorError> {
    client()?
        .send(Method::Patch, path, Some(to_bytes(body)?))
        .map(|_| ())
}

/// Prefix of the SDK's `forbidden` for a request the host's sandbox refused (not a vendor
/// answer): such an error is kept as is.
const HOST_DENIAL: &str = "sandbox denied the request";

/// Undoes Leapsome's swap of 401 and 403 (published: 401 = "not sufficiently authorized",
/// 403 = "Invalid token"). The SDK read a 401 as `unauthorized` and a 403 as `forbidden`;
/// this gives the host the right case, naming `about` (the account or team concerned) and
/// carrying Leapsome's own words.
fn leapsome_auth(e: ConnectorError, about: &str) -> ConnectorError {
    match e {
        ConnectorError::Unauthorized(detail) => ConnectorError::Forbidden(format!(
            "{about}: the token lacks rights (Leapsome answered 401: {detail})"
        )),
        ConnectorError::Forbidden(detail) if !detail.starts_with(HOST_DENIAL) => {
            ConnectorError::Unauthorized(format!(
                "{about}: the SCIM token is not valid (Leapsome answered 403: {detail})"
            ))
        }
        other => other,
    }
}

/// A user PATCH, with the account's `userName` added (Leapsome requires it in every PATCH)
/// unless `body` already sets a new one.
fn patch_user(id: &str, mut body: serde_json::Map<String, Value>) -> Result<(), ConnectorError> {
    if !body.contains_key("userName") {
        body.insert("userName".into(), json!(user_name_of(id)?));
    }
    patch(&format!("/Users/{}", encode(id)), &body)?;
    if let Some(Value::String(u)) = body.get("userName") {
        known::with(|k| k.user_names.insert(id.to_string(), u.clone()));
    }
    Ok(())
}

/// The account's current `userName`: known from the last read or write, else fetched.
fn user_name_of(id: &str) -> Result<String, ConnectorError> {
    if let Some(u) = known::with(|k| k.user_names.get(id).cloned()) {
        return Ok(u);
    }
    let user: Value = client()?.get(&format!("/Users/{}", encode(id)))?;
    let u = user
        .get("userName")
        .and_then(Value::as_str)
        .filter(|u| !u.is_empty())
        .ok_or_else(|| {
            ConnectorError::Invalid(format!(
                "malformed vendor response: Leapsome account {id} has no userName"
            ))
        })?
        .to_string();
    known::with(|k| k.user_names.insert(id.to_string(), u.clone()));
    Ok(u)
}

struct Leapsome;

impl Connector for Leapsome {
    fn describe() -> Manifest {
        let key = |name: &str, description: &str| ConfigKey {
            name: name.into(),
            description: description.into(),
            required: false,
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
                    "SCIM base URL (default https://api.leapsome.com/scim/v1)",
                ),
                key(
                    "invite_on_create",
                    "true: Leapsome invites each account created (default false)",
                ),
                key(
                    "page_size",
                    "accounts per list request, 1-5000 (default 1000)",
                ),
            ],
            // Loopback is only reachable when the operator allows it (tests, the sandbox).
            hosts: vec![
                "https://api.leapsome.com".into(),
                "http://127.0.0.1:*".into(),
            ],
            credential_slots: vec![CredentialSlot {
                name: SLOT.into(),
                description: "Leapsome SCIM token (Admin settings > Integrations > SCIM)".into(),
                header: "Authorization".into(),
                template: "Bearer {secret}".into(),
            }],
            // Leapsome answers 429 past 30 requests a second: the host paces us instead.
            rate_limits: vec![RateLimit::new("https://api.leapsome.com", 30, 1)],
            stores: Some(manifest::canonical(&STORES)),
            create_requires: manifest::canonical(&[
                Field::WorkEmail,
                Field::GivenName,
                Field::FamilyName,
            ]),
            max_members_per_change: MEMBERS_PER_PATCH as u32,
            ..Manifest::new(
                "leapsome",
                "0.2.0",
                "Leapsome (SCIM 2.0): accounts and teams",
            )
        }
    }

    fn configure(settings: Vec<(String, String)>) -> Result<(), ConnectorError> {
        let mut config = Config {
            base_url: DEFAULT_BASE_URL.into(),
            invite_on_create: false,
            page_size: HOST_PAGE,
        };
        for (key, value) in &settings {
            let value = value.trim();
            match key.as_str() {
                "base_url" => {
                    if !(value.starts_with("https://") || value.starts_with("http://")) {
                        return Err(ConnectorError::Invalid(format!(
                            "setting `base_url` must be an http(s) URL, got `{value}`"
                        )));
                    }
                    config.base_url = value.trim_end_matches('/').to_string();
                }
                "invite_on_create" => {
                    config.invite_on_create = match value.to_ascii_lowercase().as_str() {
                        "true" => true,
                        "false" => false,
                        _ => {
                            return Err(ConnectorError::Invalid(format!(
                                "setting `invite_on_create` must be true or false, got `{value}`"
                            )));
                        }
                    };
                }
                "page_size" => {
                    config.page_size = value
                        .parse::<usize>()
                        .ok()
                        .filter(|n| (1..=MAX_USERS_PAGE).contains(n))
                        .ok_or_else(|| {
                            ConnectorError::Invalid(format!(
                                "setting `page_size` must be a number from 1 to 5000, got `{value}`"
                            ))
                        })?;
                }
                other => warn!("ignoring unknown setting `{other}`"),
            }
        }
        CONFIG.with_borrow_mut(|c| *c = Some(config));
        ACCOUNTS.with_borrow_mut(Vec::clear);
        known::with(known::Known::clear);
        Ok(())
    }

    fn check() -> Result<(), ConnectorError> {
        client()?
            .get::<Value>("/Users?startIndex=1&count=1")
            .map(|_| ())
            .map_err(|e| match e {
                // The commonest setup slip: a base URL without `/scim/v1`.
                ConnectorError::NotFound => ConnectorError::Invalid(format!(
                    "no SCIM Users endpoint at {}/Users: check the setting `base_url` \
                     (Leapsome's is {DEFAULT_BASE_URL})",
                    config(|c| c.base_url.clone()).unwrap_or_default()
                )),
                other => leapsome_auth(other, "checking the SCIM token"),
            })
    }
}

impl Source for Leapsome {
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

/// One list page: `(Resources, totalResults)`.
fn list_page(path: &str) -> Result<(Vec<Value>, usize), ConnectorError> {
    let page: Value = client()?.get(path)?;
    let total = page
        .get("totalResults")
        .and_then(Value::as_u64)
        .ok_or_else(|| {
            ConnectorError::Invalid(format!(
                "malformed vendor response: no totalResults in {path}"
            ))
        })? as usize;
    let items = match page.get("Resources") {
        Some(Value::Array(items)) => items.clone(),
        None | Some(Value::Null) => Vec::new(),
        Some(_) => {
            return Err(ConnectorError::Invalid(format!(
                "malformed vendor response: Resources is not a list in {path}"
            )));
        }
    };
    Ok((items, total))
}

/// A page shorter than announced (neither full nor reaching `totalResults`) is a cut-short
/// read: refuse it rather than let the host see a partial directory.
fn check_page(
    what: &str,
    start: usize,
    got: usize,
    asked: usize,
    total: usize,
) -> Result<(), ConnectorError> {
    let expected = asked.min(total.saturating_sub(start));
    if got < expected {
        return Err(ConnectorError::Unavailable(format!(
            "Leapsome returned {got} {what} at startIndex {} where {expected} were expected \
             (of {total}); refusing a partial read",
            start + 1
        )));
    }
    Ok(())
}

/// Every account, with managers translated to Leapsome ids, and the problems of the values
/// that could not be read. Refreshes what is [`known`]: user names, managers, and the teams'
/// members (from the users' `groups`).
fn read_directory() -> Result<(Vec<Person>, Vec<RecordProblem>), ConnectorError> {
    let page_size = config(|c| c.page_size)?;
    let mut reads = Vec::new();
    let mut start = 0;
    loop {
        let (items, total) = list_page(&format!(
            "/Users?startIndex={}&count={page_size}",
            start + 1
        ))?;
        check_page("accounts", start, items.len(), page_size, total)?;
        let got = items.len();
        for item in &items {
            reads.push(map::person_from_user(item)?);
        }
        start += got;
        if got == 0 || start >= total {
            break;
        }
    }
    // Manager references → Leapsome ids: `$ref`'s id, else the value as an id, an
    // externalId or an email.
    let mut by_id = std::collections::HashMap::new();
    let mut by_external = std::collections::HashMap::new();
    let mut by_email = std::collections::HashMap::new();
    for r in &reads {
        by_id.insert(r.person.id.clone(), r.person.id.clone());
        if let Some(x) = &r.external_id {
            by_external.insert(x.clone(), r.person.id.clone());
        }
        if let Some(l) = &r.person.login {
            by_email.insert(l.to_ascii_lowercase(), r.person.id.clone());
        }
    }
    let mut people = Vec::with_capacity(reads.len());
    let mut problems = Vec::new();
    let mut known = known::Known::default();
    for mut r in reads {
        problems.append(&mut r.problems);
        if let Some((value, from_ref)) = r.manager.take() {
            let resolved = from_ref
                .and_then(|id| by_id.get(&id))
                .or_else(|| by_id.get(&value))
                .or_else(|| by_external.get(&value))
                .or_else(|| by_email.get(&value.to_ascii_lowercase()))
                .cloned();
            if resolved.is_none() {
                warn!(
                    "Leapsome account {}: manager `{value}` is not a known account; read as none",
                    r.person.id
                );
            }
            r.person.manager_id = resolved;
        }
        let p = &r.person;
        known.account(&p.id, p.login.as_deref(), p.manager_id.as_deref());
        for team in &r.teams {
            known.add_member(team, &p.id);
        }
        people.push(r.person);
    }
    known::with(|k| {
        known.team_names = std::mem::take(&mut k.team_names);
        known.members_fresh = true;
        *k = known;
    });
    Ok((people, problems))
}

fn user_id_by_email(email: &str) -> Result<Option<String>, ConnectorError> {
    let filter = encode(&format!("userName eq \"{}\"", email.replace('"', "\\\"")));
    let (items, _) = list_page(&format!("/Users?filter={filter}&startIndex=1&count=1"))?;
    Ok(items
        .first()
        .and_then(|u| u.get("id"))
        .and_then(Value::as_str)
        .map(str::to_string))
}

/// A create: the POST of the core attributes, then the PATCH of the rest (see the crate
/// docs). A `{}` answer links the existing account without writing to it: the next plan
/// updates what the flow owns.
fn create(person: &Person) -> Result<Applied, ConnectorError> {
    let email = person.work_email.as_deref().ok_or_else(|| {
        ConnectorError::Invalid(format!(
            "person {}: no work-email, and Leapsome needs one (it is the userName)",
            person.id
        ))
    })?;
    let about = format!("person {} ({email})", person.id);
    let invite = config(|c| c.invite_on_create)?;
    let department = team_name(person.department_id.as_ref());
    // Both bodies first: a person Leapsome cannot take fails before anything is written.
    let completion = map::create_patch(person, email, department.as_deref())?;
    let post = map::create_post(person, email, invite);
    let response = client()?
        .send(Method::Post, "/Users", Some(to_bytes(&post)?))
        .map_err(|e| match e {
            ConnectorError::Conflict(detail) => ConnectorError::Conflict(format!(
                "person {}: the email {email} is already used by another Leapsome account ({detail})",
                person.id
            )),
            ConnectorError::Invalid(detail) => ConnectorError::Invalid(format!("{about}: {detail}")),
            other => leapsome_auth(other, &about),
        })?;
    let answer: Value = if response.body.iter().all(u8::is_ascii_whitespace) {
        json!({})
    } else {
        response.json()?
    };
    let Some(id) = answer.get("id").and_then(Value::as_str) else {
        return link_existing(person, email);
    };
    known::with(|k| k.user_names.insert(id.to_string(), email.to_string()));
    match patch(&format!("/Users/{}", encode(id)), &completion) {
        Ok(()) => known::with(|k| {
            k.managers.insert(id.to_string(), person.manager_id.clone());
        }),
        // The account exists: link it all the same, so nothing is created twice; the next
        // plan sees the attributes that are missing and updates them.
        Err(e) => warn!(
            "{about}: created as Leapsome account {id}, but its attributes were not written \
             ({:?}); the next sync updates them",
            leapsome_auth(e, &about)
        ),
    }
    Ok(Applied {
        target_id: id.to_string(),
    })
}

/// The create was answered `{}`: the account already exists. Hand its id back so the host
/// links it.
fn link_existing(person: &Person, email: &str) -> Result<Applied, ConnectorError> {
    match user_id_by_email(email)? {
        Some(id) => {
            info!(
                "person {}: {email} already exists in Leapsome as {id}; linking",
                person.id
            );
            known::with(|k| k.user_names.insert(id.clone(), email.to_string()));
            Ok(Applied { target_id: id })
        }
        None => Err(ConnectorError::Other(format!(
            "person {}: Leapsome answered the create of {email} without an account, and no \
             account has that userName",
            person.id
        ))),
    }
}

/// The name of the team `team_id`, when this instance has read or created it.
fn team_name(team_id: Option<&String>) -> Option<String> {
    team_id.and_then(|d| known::with(|k| k.team_names.get(d).cloned()))
}

fn update(u: &AccountUpdate) -> Result<Applied, ConnectorError> {
    let about = format!(
        "account {} ({})",
        u.id,
        u.person.work_email.as_deref().unwrap_or("no work email")
    );
    let touches_emails = u.fields.iter().any(|f| {
        matches!(
            f,
            FieldRef::Canonical(Field::WorkEmail | Field::PersonalEmail)
        )
    });
    let current = if touches_emails {
        let user: Value = client()?
            .get(&format!("/Users/{}", encode(&u.id)))
            .map_err(|e| leapsome_auth(e, &about))?;
        user.get("emails").cloned()
    } else {
        None
    };
    let name = team_name(u.person.department_id.as_ref());
    let department = match (&u.person.department_id, &name) {
        (None, _) => Department::None,
        (Some(_), Some(n)) => Department::Named(n),
        (Some(_), None) => Department::Unknown,
    };
    let body = map::user_body(&u.person, &u.fields, current.as_ref(), department)?;
    if !body.is_empty() {
        patch_user(&u.id, body).map_err(|e| match e {
            ConnectorError::Conflict(detail) => ConnectorError::Conflict(format!(
                "account {}: the email {} is already used by another Leapsome account ({detail})",
                u.id,
                u.person.work_email.as_deref().unwrap_or("?")
            )),
            ConnectorError::Invalid(detail) => {
                ConnectorError::Invalid(format!("{about}: {detail}"))
            }
            other => leapsome_auth(other, &about),
        })?;
    }
    Ok(Applied {
        target_id: u.id.clone(),
    })
}

fn set_active(id: &str, active: bool) -> Result<Applied, ConnectorError> {
    let mut body = serde_json::Map::new();
    body.insert("active".into(), json!(active));
    patch_user(id, body).map_err(|e| match e {
        ConnectorError::Invalid(detail) => {
            ConnectorError::Invalid(format!("account {id}: active: {detail}"))
        }
        other => leapsome_auth(other, &format!("account {id}")),
    })?;
    Ok(Applied {
        target_id: id.to_string(),
    })
}

/// Sets or clears the manager. Nothing is sent when the account is known to have that
/// manager already — the case of an account this instance created, whose create PATCH set it.
fn set_manager(m: &ManagerChange) -> Result<Applied, ConnectorError> {
    let applied = Applied {
        target_id: m.id.clone(),
    };
    if known::with(|k| k.managers.get(&m.id) == Some(&m.manager_id)) {
        return Ok(applied);
    }
    let manager = match &m.manager_id {
        Some(id) => json!({"value": id}),
        None => Value::Null,
    };
    let mut body = serde_json::Map::new();
    body.insert(ENTERPRISE.into(), json!({"manager": manager}));
    patch_user(&m.id, body).map_err(|e| match e {
        ConnectorError::Invalid(detail) => {
            ConnectorError::Invalid(format!("account {}: manager: {detail}", m.id))
        }
        other => leapsome_auth(other, &format!("account {}", m.id)),
    })?;
    known::with(|k| k.managers.insert(m.id.clone(), m.manager_id.clone()));
    Ok(applied)
}

fn create_group(g: &NewGroup) -> Result<Applied, ConnectorError> {
    let about = format!("team `{}`", g.name);
    let body = json!({"schemas": [GROUP_SCHEMA], "displayName": g.name});
    let created: Value = client()?.post("/Groups", &body).map_err(|e| match e {
        ConnectorError::Conflict(detail) => ConnectorError::Conflict(format!("{about}: {detail}")),
        other => leapsome_auth(other, &about),
    })?;
    let id = created.get("id").and_then(Value::as_str).ok_or_else(|| {
        ConnectorError::Invalid(format!(
            "malformed vendor response: the created team `{}` has no id",
            g.name
        ))
    })?;
    known::with(|k| {
        k.team_names.insert(id.to_string(), g.name.clone());
        k.members.entry(id.to_string()).or_default();
    });
    Ok(Applied {
        target_id: id.to_string(),
    })
}

fn rename_group(id: &str, name: &str) -> Result<Applied, ConnectorError> {
    let mut body = serde_json::Map::new();
    body.insert("displayName".into(), json!(name));
    patch(&format!("/Groups/{}", encode(id)), &body).map_err(|e| match e {
        ConnectorError::Conflict(detail) => {
            ConnectorError::Conflict(format!("team {id} → `{name}`: {detail}"))
        }
        other => leapsome_auth(other, &format!("team {id}")),
    })?;
    known::with(|k| k.team_names.insert(id.to_string(), name.to_string()));
    Ok(Applied {
        target_id: id.to_string(),
    })
}

/// Rewrites a team's members: the first PATCH replaces, the next ones add, ≤ 100 each.
fn replace_members(group_id: &str, members: &[String]) -> Result<(), ConnectorError> {
    let path = format!("/Groups/{}", encode(group_id));
    let mut chunks: Vec<&[String]> = members.chunks(MEMBERS_PER_PATCH).collect();
    if chunks.is_empty() {
        chunks.push(&[]);
    }
    for (i, chunk) in chunks.iter().enumerate() {
        let mut body = serde_json::Map::new();
        body.insert(
            "members".into(),
            Value::Array(chunk.iter().map(|m| json!({"value": m})).collect()),
        );
        body.insert("replaceMembers".into(), json!(i == 0));
        patch(&path, &body)?;
    }
    Ok(())
}

/// The members of a team, from the users' `groups` (Leapsome's group GET lists none): as
/// known from this instance's last read and writes, else read now.
fn members_of(group_id: &str) -> Result<Vec<String>, ConnectorError> {
    if let Some(m) = known::with(|k| k.members.get(group_id).cloned()) {
        return Ok(m);
    }
    read_directory()?;
    Ok(known::with(|k| k.members.get(group_id).cloned()).unwrap_or_default())
}

/// Adds and removes members of one team. Adding only is one PATCH carrying every new
/// member (`replaceMembers: false`); a removal rewrites the member list (Leapsome has no
/// remove), see the crate docs. Nothing is sent when nothing would change.
fn change_members(m: &MemberChange) -> Result<Applied, ConnectorError> {
    let about = format!("team {}", m.group_id);
    let auth = |e| leapsome_auth(e, &about);
    let applied = Applied {
        target_id: m.group_id.clone(),
    };
    if m.add.len() + m.remove.len() > MEMBERS_PER_PATCH {
        return Err(ConnectorError::Invalid(format!(
            "{about}: a change of {} members exceeds the {MEMBERS_PER_PATCH} this connector \
             declares (max-members-per-change)",
            m.add.len() + m.remove.len()
        )));
    }
    if m.remove.is_empty() {
        if m.add.is_empty() {
            return Ok(applied);
        }
        let mut body = serde_json::Map::new();
        body.insert(
            "members".into(),
            Value::Array(m.add.iter().map(|a| json!({"value": a})).collect()),
        );
        body.insert("replaceMembers".into(), json!(false));
        patch(&format!("/Groups/{}", encode(&m.group_id)), &body).map_err(auth)?;
        // Only a team whose members are known is kept up to date: recording the new ones
        // alone would pass a partial list off as the team (a later removal rewrites it).
        known::with(|k| {
            if k.members.contains_key(&m.group_id) {
                for a in &m.add {
                    k.add_member(&m.group_id, a);
                }
            }
        });
        return Ok(applied);
    }
    let current = members_of(&m.group_id).map_err(auth)?;
    let mut next: Vec<String> = current
        .iter()
        .filter(|x| !m.remove.contains(x))
        .cloned()
        .collect();
    for a in &m.add {
        if !next.contains(a) {
            next.push(a.clone());
        }
    }
    if next != current {
        replace_members(&m.group_id, &next).map_err(auth)?;
        known::with(|k| k.members.insert(m.group_id.clone(), next));
    }
    Ok(applied)
}

/// One account by Leapsome id (or `externalId`, which Leapsome also accepts); `none` on 404.
fn read_account(id: &str) -> Result<Option<Person>, ConnectorError> {
    let about = format!("account {id}");
    let user: Value = match client()?.get(&format!("/Users/{}", encode(id))) {
        Ok(u) => u,
        Err(ConnectorError::NotFound) => return Ok(None),
        Err(e) => return Err(leapsome_auth(e, &about)),
    };
    let mut r = map::person_from_user(&user)?;
    for p in &r.problems {
        warn!("account {}: {}", p.record_id, p.message);
    }
    if let Some((value, from_ref)) = r.manager.take() {
        r.person.manager_id = match from_ref {
            Some(id) => Some(id),
            None => manager_id(&value).map_err(|e| leapsome_auth(e, &about))?,
        };
        if r.person.manager_id.is_none() {
            warn!("Leapsome account {id}: manager `{value}` is not a known account; read as none");
        }
    }
    let p = &r.person;
    known::with(|k| {
        if let Some(l) = &p.login {
            k.user_names.insert(p.id.clone(), l.clone());
        }
    });
    Ok(Some(r.person))
}

/// A manager reference (a Leapsome id, an `externalId` or an email) as a Leapsome id.
fn manager_id(value: &str) -> Result<Option<String>, ConnectorError> {
    if value.contains('@') {
        return user_id_by_email(value);
    }
    match client()?.get::<Value>(&format!("/Users/{}", encode(value))) {
        Ok(u) => Ok(u.get("id").and_then(Value::as_str).map(str::to_string)),
        Err(ConnectorError::NotFound) => Ok(None),
        Err(e) => Err(e),
    }
}

impl Target for Leapsome {
    fn read_accounts(cursor: Option<String>) -> Result<PersonPage, ConnectorError> {
        let offset = muster_sdk::paging::Offset::decode(cursor.as_deref())?.0 as usize;
        let mut problems = Vec::new();
        if offset == 0 || ACCOUNTS.with_borrow(Vec::is_empty) {
            let (people, read_problems) = read_directory()?;
            ACCOUNTS.with_borrow_mut(|a| *a = people);
            problems = read_problems;
        }
        ACCOUNTS.with_borrow_mut(|all| {
            let (items, next) =
                muster_sdk::paging::page_of(all, Some(&offset.to_string()), HOST_PAGE)?;
            if next.is_none() {
                all.clear();
            }
            Ok(PersonPage::full(items, next).with_problems(problems))
        })
    }

    /// Teams, with their members taken from the users' `groups`: from the accounts read just
    /// before (the host reads accounts, then teams), else from a read of the directory now.
    fn read_groups(cursor: Option<String>) -> Result<GroupPage, ConnectorError> {
        let offset = muster_sdk::paging::Offset::decode(cursor.as_deref())?.0 as usize;
        if offset == 0 && !known::with(|k| std::mem::take(&mut k.members_fresh)) {
            read_directory()?;
            known::with(|k| k.members_fresh = false);
        }
        let (items, total) = list_page(&format!(
            "/Groups?startIndex={}&count={GROUPS_PAGE}",
            offset + 1
        ))?;
        check_page("teams", offset, items.len(), GROUPS_PAGE, total)?;
        let mut groups = Vec::with_capacity(items.len());
        for item in &items {
            let id = item.get("id").and_then(Value::as_str).ok_or_else(|| {
                ConnectorError::Invalid("malformed vendor response: a team without id".into())
            })?;
            let name = item
                .get("displayName")
                .and_then(Value::as_str)
                .unwrap_or_default()
                .to_string();
            let members = known::with(|k| {
                k.team_names.insert(id.to_string(), name.clone());
                k.members.get(id).cloned().unwrap_or_default()
            });
            groups.push(Group {
                id: id.to_string(),
                name,
                parent_id: None,
                members,
            });
        }
        let end = offset + items.len();
        let next = (!items.is_empty() && end < total).then(|| end.to_string());
        Ok(GroupPage::new(groups, next))
    }

    fn read_account(id: String) -> Result<Option<Person>, ConnectorError> {
        read_account(&id)
    }

    fn apply(operation: Operation) -> Result<Applied, ConnectorError> {
        match &operation {
            Operation::Create(p) => create(p),
            Operation::Update(u) => update(u),
            Operation::Deactivate(a) => set_active(&a.id, false),
            Operation::Reactivate(a) => set_active(&a.id, true),
            Operation::SetManager(m) => set_manager(m),
            Operation::CreateGroup(g) => create_group(g),
            Operation::RenameGroup(r) => rename_group(&r.id, &r.name),
            Operation::ChangeMembers(m) => change_members(m),
        }
    }
}

muster_sdk::export!(Leapsome);

// What Leapsome stores (see `map`): no login of its own (it is the email), no custom field,
// and no phone, contract type or legal entity (its published user schema has no
// `phoneNumbers`, `userType` or enterprise `organization`; the real service drops them).
const STORES: [Field; 12] = [
    Field::WorkEmail,
    Field::PersonalEmail,
    Field::GivenName,
    Field::FamilyName,
    Field::JobTitle,
    Field::EmployeeNumber,
    Field::DepartmentId,
    Field::BirthDate,
    Field::StartDate,
    Field::EndDate,
    Field::Gender,
    Field::ManagerId,
];
