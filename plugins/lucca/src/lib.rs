//! # The Lucca connector
//!
//! Lucca (HRIS) is the hub of muster's flows: the **source** of people and departments for
//! Leapsome and Cards, and the **target** of inbound flows (Flatchr, Teelt: create-only) and
//! of Cards' training statistics (a compound, multi-occurrence HR-file field).
//!
//! ## Reading
//! - **People** (`read-people`, and `read-accounts` when Lucca is a target):
//!   `GET /api/v3/users?formerEmployees=true` — current, future *and* former employees, since
//!   the core needs leavers to deactivate them — with a `fields=` projection of exactly what is
//!   mapped (see [`map::projection`]) plus `collection.count`, paged by `paging=offset,limit`
//!   (1000, Lucca's maximum; setting `page_size`). The cursor is the next offset. The count
//!   makes a **truncated page** detectable: fewer items than the count promises fails the read
//!   (`invalid`, naming the page) instead of passing for complete.
//! - **Incremental reads**: the request's `since` (the watermark the host stored from the
//!   last completed read), else the `modified_since` setting (RFC 3339), adds
//!   `modifiedAt=since,…` to `read-people`, and its pages say `coverage: changes` — people
//!   absent from such a read are unchanged, not gone. Without either the pages say
//!   `coverage: full`. The last page of every people read returns a `watermark`: the time
//!   the read started, by Lucca's clock (`header.generated` of the first page) when it gives
//!   one, else the host's wall clock, as `YYYY-MM-DDTHH:MM:SS` UTC, so a person modified
//!   during the read is read again next time. A target read (`read-accounts`) is always a
//!   complete snapshot, without watermark.
//! - **One person** (`read-person`, and `read-account` as a target): `GET /api/v3/users/{id}`
//!   with the same projection; `none` when Lucca answers 404 with its JSON body.
//! - **Departments** are the groups (`read-groups`, both as source and target):
//!   v4 `GET /organization/structure/api/departments`, 100 per page, following `next`.
//! - **Establishments** are what the v3 API calls legal entities: a person's
//!   `legal-entity-id` is the id of their establishment (`legalEntity.id`). They are not
//!   exposed as groups; writes resolve a legal entity given by id, code or name against them.
//!
//! ## Manifest
//! Rate limit: Lucca's 50 requests per 60 s per tenant, declared as 50 per 61 s on each Lucca
//! host pattern (see [`RATE_WINDOW_SECS`]). Stores every canonical field (the contract type
//! through the `contract_type_field` setting) and every custom field; a create requires the first and last name. Genders are
//! written in Lucca's spelling (`diverse` → `Misc`).
//!
//! ## Ids
//! Person ids are Lucca user ids (`"1042"`); `manager-id` is the manager's user id; group ids
//! are v4 department ids (`"7"`), with `parent-id` the parent department's id; a person's
//! `department-id` is the id of their department group. Departments list no members: membership
//! is each person's `department-id`.
//!
//! ## Bad records
//! A record with an unreadable value (impossible date, a gender other than Lucca's
//! `Undefined|Male|Female|Misc`, custom value of the wrong type) is **kept** with that field
//! absent, and a `record-problem` naming the person id and the field goes on the page (and a
//! `warn` line to the host's log). People without a work email are reported the same way. At
//! the end of a complete read, unknown manager ids and work emails shared by several people
//! are logged (they need the whole read, after its pages have been returned). A read never fails because of one record's data; it fails on
//! malformed or truncated pages, so an incomplete source never looks complete.
//!
//! ## Writing
//! `create` → `POST /api/v3/users?contract=true` (user and contract together). Legal entity,
//! department and main role are mandatory in Lucca: the record's values, else the settings
//! `default_legal_entity`, `default_department`, `default_role` (an id, or a name or code
//! resolved once through the organisation API and `GET /api/v3/roles`, at `check` and before
//! the first create: a name matching nothing is an `invalid` error naming the setting and the
//! closest names), else the tenant's own defaults; when none has one, Lucca's refusal becomes an `invalid` error naming the field and
//! the setting. `update` → `PUT /api/v3/users/{id}` with only the fields listed; `custom:e_…`
//! fields are written at the root of the body ([`write`]). An update's `rows` (row-level
//! changes to a multi-occurrence compound field, keyed by a sub-field such as `e_title`) are
//! applied to the user's occurrences as they are now, whatever their order: add or change
//! updates the occurrence with that key (or creates it), remove deletes it, and an
//! occurrence no change names is not touched ([`write::row_change_writes`]). Lucca has no deactivation call (a
//! leaver is an end date an HR admin sets), so `deactivate`/`reactivate` are `unsupported`:
//! flows into Lucca are create/update-only.
//!
//! ## Checking the setup
//! `check` reads one user and one department (the key works), the extended-data
//! definitions when custom fields are read, and — when the setting `compound_fields` names
//! the compound fields a flow writes (the Cards statistics) — holds each against
//! `GET /api/v3/extensionuserdefinitions` ([`setup`]): a missing code or sub-field, a field
//! that is not compound, not multi-occurrence or not editable is an `invalid` error naming
//! the code and what the Cards guide expects.
//!
//! ## Errors
//! Lucca's errors become actionable errors in muster's words ([`api`]): 403 → `forbidden("the
//! API key lacks 'Coworkers > Manage users' … also needs 'See future employees' and 'See former
//! employees'")`, named from what the request needed when Lucca's body does not say; a server
//! that is not Lucca (an HTML page, a 404 without Lucca's JSON) → `invalid("… does not answer
//! like a Lucca API: check `subdomain`")`; 401 → `unauthorized` naming the request and the `api-key` slot, 429 (after the host's own
//! retries) → `rate-limited(retry-after)`. The API key never enters the plugin: requests name
//! the `api-key` slot and the host injects `Authorization: lucca application={secret}`; a
//! secret configured with stray spaces is refused by the host with a message saying so, which
//! reaches the operator through this plugin's error.

mod api;
mod config;
mod defaults;
mod map;
mod setup;
mod time;
mod write;

use std::cell::RefCell;
use std::collections::{BTreeMap, HashSet};

use muster_sdk::bindings::muster::connector::http::Method;
use muster_sdk::paging::Offset;
use muster_sdk::prelude::*;
use muster_sdk::serde_json::{Map, Value, json};
use muster_sdk::{field, manifest};

use api::Failure;
use config::{CustomFields, Settings};
use map::Definitions;
use write::Ref;

/// Hosts of Lucca accounts: production, test, demo and Swiss.
const HOSTS: &[&str] = &[
    "https://*.ilucca.net",
    "https://*.ilucca-test.net",
    "https://*.ilucca-demo.net",
    "https://*.ilucca.ch",
];

/// v4 organisation pages: Lucca's maximum.
const ORG_PAGE: usize = 100;

struct Lucca;

/// Cross-page bookkeeping of one read, for the reports only a whole read can make.
#[derive(Default)]
struct ReadCheck {
    /// Whether this read covers every person (not incremental).
    complete: bool,
    /// When the read started, by Lucca's clock when it says (`header.generated` of the
    /// first page), as `YYYY-MM-DDTHH:MM:SS` UTC: the watermark of a people read.
    started: Option<String>,
    ids: HashSet<String>,
    /// (person, manager) pairs.
    managers: Vec<(String, String)>,
    /// Normalised work email → person ids.
    mails: BTreeMap<String, Vec<String>>,
    people: usize,
    with_problems: usize,
}

#[derive(Default)]
struct State {
    settings: Option<Settings>,
    definitions: Option<Definitions>,
    departments: Option<Vec<Value>>,
    establishments: Option<Vec<Value>>,
    /// The create defaults as Lucca ids (legal entity, department, role), once resolved.
    create_defaults: Option<[Option<u64>; 3]>,
    /// By read kind: people (source) and accounts (target).
    checks: [ReadCheck; 2],
}

thread_local! {
    static STATE: RefCell<State> = RefCell::new(State::default());
}

fn settings() -> Result<Settings, ConnectorError> {
    STATE.with(|s| s.borrow().settings.clone()).ok_or_else(|| {
        ConnectorError::Invalid(
            "the Lucca connector is not configured (call configure first)".into(),
        )
    })
}

fn url(s: &Settings, path: &str) -> String {
    format!("{}{path}", s.base_url)
}

/// The extended-data definitions, fetched once per instance.
fn definitions(s: &Settings) -> Result<Definitions, ConnectorError> {
    if let Some(d) = STATE.with(|st| st.borrow().definitions.clone()) {
        return Ok(d);
    }
    let v = api::get(
        &url(s, "/api/v3/extensionuserdefinitions"),
        "reading the custom HR-file field definitions",
    )?;
    let items = v
        .pointer("/data/items")
        .and_then(Value::as_array)
        .map_or(&[][..], Vec::as_slice);
    let defs = map::definitions(items);
    STATE.with(|st| st.borrow_mut().definitions = Some(defs.clone()));
    Ok(defs)
}

/// "Today" for `active`: Lucca's own clock (`header.generated`) when it gives one, so the
/// connector and Lucca's "former employee" agree; else the host's wall clock.
fn today(envelope: &Value) -> Date {
    envelope
        .pointer("/header/generated")
        .and_then(Value::as_str)
        .and_then(time::today_from_generated)
        .unwrap_or_else(|| {
            let secs = std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map_or(0, |d| d.as_secs() as i64);
            time::civil_from_unix(secs)
        })
}

/// The Lucca timestamp a people read takes changes since: the request's `since` (the
/// watermark the host stored from the last completed read), else the `modified_since`
/// setting; `None` reads everybody.
fn since(s: &Settings, request: Option<&str>) -> Result<Option<String>, ConnectorError> {
    match request.map(str::trim).filter(|r| !r.is_empty()) {
        Some(r) => time::rfc3339_to_lucca_utc(r).map(Some).ok_or_else(|| {
            ConnectorError::Invalid(format!(
                "read-request.since `{r}` is not a watermark this connector returned (YYYY-MM-DDTHH:MM:SS)"
            ))
        }),
        None => Ok(s.modified_since.clone()),
    }
}

/// Lucca's clock at `envelope` (`header.generated`) as `YYYY-MM-DDTHH:MM:SS` UTC, else the
/// host's wall clock.
fn clock(envelope: &Value) -> String {
    envelope
        .pointer("/header/generated")
        .and_then(Value::as_str)
        .and_then(time::rfc3339_to_lucca_utc)
        .unwrap_or_else(|| {
            let secs = std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map_or(0, |d| d.as_secs() as i64);
            time::lucca_utc_from_unix(secs)
        })
}

/// A problem found by [`map`] as the contract's record problem (and a log line).
fn record_problem(p: map::Problem) -> RecordProblem {
    warn!("{p}");
    RecordProblem {
        field: field::parse(&p.field),
        record_id: p.id,
        message: p.what,
    }
}

/// One page of users: `which` 0 = people (source), 1 = accounts (target, always complete).
/// `since` makes a people read incremental (see [`since`]).
fn read_users(
    cursor: Option<String>,
    since: Option<String>,
    which: usize,
) -> Result<PersonPage, ConnectorError> {
    let s = settings()?;
    let offset = Offset::decode(cursor.as_deref())?;
    let since = if which == 0 { since } else { None };
    if offset.0 == 0 {
        STATE.with(|st| {
            st.borrow_mut().checks[which] = ReadCheck {
                complete: since.is_none(),
                ..ReadCheck::default()
            }
        });
    }
    let defs = if s.custom_fields != CustomFields::None || s.contract_type_field.is_some() {
        definitions(&s)?
    } else {
        Definitions::new()
    };
    let limit = s.page_size;
    let mut u = url(
        &s,
        &format!(
            "/api/v3/users?formerEmployees=true&fields={},collection.count&paging={},{limit}",
            map::projection(&s),
            offset.0
        ),
    );
    if let Some(since) = &since {
        u.push_str(&format!("&modifiedAt=since,{since}"));
    }
    let what = format!("the page of people at offset {}", offset.0);
    let v = api::get(&u, &what)?;
    if offset.0 == 0 {
        let started = clock(&v);
        STATE.with(|st| st.borrow_mut().checks[which].started = Some(started));
    }
    let items = v
        .pointer("/data/items")
        .and_then(Value::as_array)
        .ok_or_else(|| {
            ConnectorError::Invalid(format!("{what}: Lucca's answer has no data.items"))
        })?;
    let count = v.pointer("/data/count").and_then(Value::as_u64);
    let today = today(&v);
    let mut people = Vec::with_capacity(items.len());
    let mut page_problems = Vec::new();
    for (i, item) in items.iter().enumerate() {
        let (p, mut problems) = map::person(item, &s, &defs, today).ok_or_else(|| {
            ConnectorError::Invalid(format!("{what}: item #{i} has no user id: {item}"))
        })?;
        if p.work_email.is_none() {
            problems.push(map::Problem {
                id: p.id.clone(),
                field: "work-email".into(),
                what: "no work email in Lucca (`mail` is empty): this person cannot be matched by email".into(),
            });
        }
        STATE.with(|st| {
            let c = &mut st.borrow_mut().checks[which];
            c.people += 1;
            c.with_problems += usize::from(!problems.is_empty());
            c.ids.insert(p.id.clone());
            if let Some(m) = &p.manager_id {
                c.managers.push((p.id.clone(), m.clone()));
            }
            if let Some(m) = &p.work_email {
                c.mails
                    .entry(m.to_lowercase())
                    .or_default()
                    .push(p.id.clone());
            }
        });
        page_problems.extend(problems.into_iter().map(record_problem));
        people.push(p);
    }
    let got = people.len();
    let next = match count {
        Some(count) => {
            let expected = (count.saturating_sub(offset.0) as usize).min(limit);
            if got < expected {
                return Err(ConnectorError::Invalid(format!(
                    "{what} is truncated: Lucca returned {got} people where its count ({count}) promises {expected}; the read is aborted rather than passed off as complete"
                )));
            }
            (offset.0 + (got as u64) < count && got > 0)
                .then(|| (offset.0 + got as u64).to_string())
        }
        None => offset.next(got, limit),
    };
    let watermark = match next {
        None => finish_read(which).filter(|_| which == 0),
        Some(_) => None,
    };
    Ok(PersonPage {
        items: people,
        next,
        coverage: if since.is_some() {
            Coverage::Changes
        } else {
            Coverage::Full
        },
        watermark,
        problems: page_problems,
    })
}

/// One user by id (`GET /api/v3/users/{id}` with the read's projection); `None` on 404.
fn read_person(id: &str) -> Result<Option<Person>, ConnectorError> {
    let s = settings()?;
    let user = user_id(id)?;
    let defs = if s.custom_fields != CustomFields::None || s.contract_type_field.is_some() {
        definitions(&s)?
    } else {
        Definitions::new()
    };
    let what = format!("reading user `{user}`");
    let u = url(
        &s,
        &format!("/api/v3/users/{user}?fields={}", map::projection(&s)),
    );
    let bytes = match api::send(Method::Get, &u, None) {
        Ok(b) => b,
        Err(Failure::Lucca(e)) if e.status == 404 && e.json => return Ok(None),
        Err(f) => return Err(f.into_connector_error(&what)),
    };
    let v: Value = muster_sdk::serde_json::from_slice(&bytes).map_err(|e| {
        ConnectorError::Invalid(format!("malformed JSON from Lucca for {what}: {e}"))
    })?;
    let item = v
        .get("data")
        .ok_or_else(|| ConnectorError::Invalid(format!("{what}: Lucca's answer has no data")))?;
    let (p, problems) = map::person(item, &s, &defs, today(&v)).ok_or_else(|| {
        ConnectorError::Invalid(format!("{what}: Lucca's answer has no user id: {item}"))
    })?;
    for p in problems {
        record_problem(p);
    }
    Ok(Some(p))
}

/// End of a read: reports that need every person (unknown managers, shared work emails).
/// Returns when the read started (see [`ReadCheck::started`]).
fn finish_read(which: usize) -> Option<String> {
    let c = STATE.with(|st| std::mem::take(&mut st.borrow_mut().checks[which]));
    let mut flagged = 0;
    if c.complete {
        for (person, manager) in &c.managers {
            if !c.ids.contains(manager) {
                flagged += 1;
                warn!(
                    "person `{person}`: manager-id: manager `{manager}` is not among the {} people Lucca returned (unknown manager); kept as is",
                    c.people
                );
            }
        }
        for (mail, ids) in &c.mails {
            if ids.len() > 1 {
                flagged += ids.len();
                warn!(
                    "person `{}`: work-email: `{mail}` is shared by people {}; email matching will report a conflict",
                    ids[0],
                    ids.iter()
                        .map(|i| format!("`{i}`"))
                        .collect::<Vec<_>>()
                        .join(", ")
                );
            }
        }
    }
    info!(
        "read {} people from Lucca{}; {} with unreadable or missing values, {} with unknown managers or shared emails (see the warnings)",
        c.people,
        if c.complete {
            ""
        } else {
            " (modified since the watermark)"
        },
        c.with_problems,
        flagged
    );
    c.started
}

/// One v4 organisation page. The cursor is `received|next-link`.
fn org_page(
    s: &Settings,
    path: &str,
    cursor: Option<&str>,
    what: &str,
) -> Result<(Vec<Value>, Option<String>), ConnectorError> {
    let (received, link) = match cursor {
        None => (0usize, format!("{path}?limit={ORG_PAGE}")),
        Some(c) => {
            let (n, link) = c
                .split_once('|')
                .and_then(|(n, l)| Some((n.parse().ok()?, l.to_string())))
                .ok_or_else(|| ConnectorError::Invalid(format!("bad paging cursor `{c}`")))?;
            (n, link)
        }
    };
    let full = if link.starts_with("http://") || link.starts_with("https://") {
        if !link.starts_with(&format!("{}/", s.base_url)) {
            return Err(ConnectorError::Invalid(format!(
                "{what}: Lucca's next page `{link}` is not on {}",
                s.base_url
            )));
        }
        link.clone()
    } else if link.starts_with('/') {
        url(s, &link)
    } else {
        url(s, &format!("/{link}"))
    };
    let what = format!("{what} (page after {received} items)");
    let v = api::get(&full, &what)?;
    let items = v
        .get("items")
        .and_then(Value::as_array)
        .cloned()
        .ok_or_else(|| ConnectorError::Invalid(format!("{what}: Lucca's answer has no items")))?;
    let next = v
        .get("next")
        .and_then(Value::as_str)
        .filter(|n| !n.is_empty());
    if let Some(count) = v.get("count").and_then(Value::as_u64) {
        let expected = (count as usize).saturating_sub(received).min(ORG_PAGE);
        let limit = link
            .split(['?', '&'])
            .find_map(|kv| kv.strip_prefix("limit="))
            .and_then(|l| l.parse::<usize>().ok())
            .unwrap_or(ORG_PAGE);
        if items.len() < expected.min(limit) {
            return Err(ConnectorError::Invalid(format!(
                "{what} is truncated: Lucca returned {} items where its count ({count}) promises {}",
                items.len(),
                expected.min(limit)
            )));
        }
    }
    let next = next.map(|n| format!("{}|{n}", received + items.len()));
    Ok((items, next))
}

fn read_departments(cursor: Option<String>) -> Result<GroupPage, ConnectorError> {
    let s = settings()?;
    let (items, next) = org_page(
        &s,
        "/organization/structure/api/departments",
        cursor.as_deref(),
        "reading departments",
    )?;
    let mut groups = Vec::with_capacity(items.len());
    for (i, d) in items.iter().enumerate() {
        groups.push(map::group(d).ok_or_else(|| {
            ConnectorError::Invalid(format!("reading departments: item #{i} has no id: {d}"))
        })?);
    }
    Ok(GroupPage::new(groups, next))
}

/// Every item of a v4 list, cached per instance (used to resolve names and codes on writes).
fn org_all(kind: Ref) -> Result<Vec<Value>, ConnectorError> {
    let cached = STATE.with(|st| {
        let st = st.borrow();
        match kind {
            Ref::Department => st.departments.clone(),
            _ => st.establishments.clone(),
        }
    });
    if let Some(c) = cached {
        return Ok(c);
    }
    let s = settings()?;
    let (path, what) = match kind {
        Ref::Department => (
            "/organization/structure/api/departments",
            "reading departments",
        ),
        _ => (
            "/organization/structure/api/establishments",
            "reading establishments",
        ),
    };
    let mut all = Vec::new();
    let mut cursor: Option<String> = None;
    loop {
        let (items, next) = org_page(&s, path, cursor.as_deref(), what)?;
        all.extend(items);
        match next {
            Some(n) if Some(&n) != cursor.as_ref() => cursor = Some(n),
            _ => break,
        }
    }
    STATE.with(|st| {
        let mut st = st.borrow_mut();
        match kind {
            Ref::Department => st.departments = Some(all.clone()),
            _ => st.establishments = Some(all.clone()),
        }
    });
    Ok(all)
}

/// Resolves a reference given by id (`"7"`), or for departments and legal entities by code or
/// name, or for managers by work email or login, to a Lucca id.
fn resolve(person: &str, kind: Ref, value: &str) -> Result<u64, ConnectorError> {
    if let Ok(id) = value.parse::<u64>() {
        return Ok(id);
    }
    let (field, noun) = match kind {
        Ref::Department => ("department-id", "department"),
        Ref::LegalEntity => ("legal-entity-id", "establishment (legal entity)"),
        Ref::Manager => ("manager-id", "user"),
    };
    let not_found = |how: &str| {
        ConnectorError::Invalid(format!(
            "person `{person}`: {field} `{value}` matches no Lucca {noun} (by {how})"
        ))
    };
    if kind == Ref::Manager {
        let s = settings()?;
        let key = if value.contains('@') { "mail" } else { "login" };
        let v = api::get(
            &url(
                &s,
                &format!("/api/v3/users?fields=id&{key}={}", encode(value)),
            ),
            &format!("looking up the manager of person `{person}` by {key}"),
        )?;
        let ids: Vec<u64> = v
            .pointer("/data/items")
            .and_then(Value::as_array)
            .map(|a| a.iter().filter_map(|u| u.get("id")?.as_u64()).collect())
            .unwrap_or_default();
        return match ids.as_slice() {
            [id] => Ok(*id),
            [] => Err(not_found(&format!("id or {key}"))),
            many => Err(ConnectorError::Conflict(format!(
                "person `{person}`: manager `{value}` matches {} Lucca users",
                many.len()
            ))),
        };
    }
    let wanted = value.trim().to_lowercase();
    let all = org_all(kind)?;
    let found: Vec<u64> = all
        .iter()
        .filter(|d| {
            ["code", "name"].iter().any(|k| {
                d.get(*k)
                    .and_then(Value::as_str)
                    .is_some_and(|x| x.trim().to_lowercase() == wanted)
            })
        })
        .filter_map(|d| d.get("id")?.as_u64())
        .collect();
    match found.as_slice() {
        [id] => Ok(*id),
        [] => Err(not_found("id, code or name")),
        many => Err(ConnectorError::Conflict(format!(
            "person `{person}`: {field} `{value}` matches {} Lucca {noun}s",
            many.len()
        ))),
    }
}

/// Percent-encodes a query value.
fn encode(v: &str) -> String {
    v.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'.' | b'_' | b'~' | b'@' => {
                (b as char).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}

fn user_id(id: &str) -> Result<u64, ConnectorError> {
    id.trim()
        .parse()
        .map_err(|_| ConnectorError::Invalid(format!("`{id}` is not a Lucca user id")))
}

/// The setting behind each mandatory create field, for the error message.
fn mandatory(field: &str) -> Option<(&'static str, &'static str, &'static str)> {
    Some(match field {
        "legalEntityId" => (
            "legal-entity-id",
            "legal entity",
            "default_legal_entity` or `default_legal_entity_id",
        ),
        "departmentId" => (
            "department-id",
            "department",
            "default_department` or `default_department_id",
        ),
        "rolePrincipalId" => (
            "(no record field)",
            "main role",
            "default_role` or `default_role_id",
        ),
        _ => return None,
    })
}

/// Lucca's roles (`GET /api/v3/roles`, `data.items` of `{id, name}`).
fn roles(s: &Settings) -> Result<Vec<Value>, ConnectorError> {
    let v = api::get(&url(s, "/api/v3/roles?fields=id,name"), "reading roles")?;
    Ok(v.pointer("/data/items")
        .and_then(Value::as_array)
        .cloned()
        .unwrap_or_default())
}

/// The create defaults (legal entity, department, main role) as Lucca ids: ids as
/// configured, names resolved once per instance through the organisation API and the roles
/// list ([`defaults::match_name`]); a name matching nothing or several items is `invalid`
/// naming the setting.
fn create_defaults(s: &Settings) -> Result<[Option<u64>; 3], ConnectorError> {
    if let Some(d) = STATE.with(|st| st.borrow().create_defaults) {
        return Ok(d);
    }
    let mut out = [None; 3];
    let configured = [
        (&s.default_legal_entity, defaults::Kind::LegalEntity),
        (&s.default_department, defaults::Kind::Department),
        (&s.default_role, defaults::Kind::Role),
    ];
    for (slot, (default, kind)) in out.iter_mut().zip(configured) {
        let Some(d) = default else { continue };
        *slot = Some(match &d.value {
            config::DefaultRef::Id(id) => *id,
            config::DefaultRef::Name(name) => {
                let items = match kind {
                    defaults::Kind::LegalEntity => org_all(Ref::LegalEntity)?,
                    defaults::Kind::Department => org_all(Ref::Department)?,
                    defaults::Kind::Role => roles(s)?,
                };
                defaults::match_name(&d.setting, kind, name, &items)?
            }
        });
    }
    STATE.with(|st| st.borrow_mut().create_defaults = Some(out));
    Ok(out)
}

fn create(p: &Person) -> Result<Applied, ConnectorError> {
    let s = settings()?;
    for (field, lucca, v) in [
        ("given-name", "firstName", &p.given_name),
        ("family-name", "lastName", &p.family_name),
    ] {
        if v.as_deref().is_none_or(|x| x.trim().is_empty()) {
            return Err(ConnectorError::Invalid(format!(
                "cannot create person `{}` in Lucca: {field} (Lucca `{lucca}`) is mandatory and the record has none",
                p.id
            )));
        }
    }
    let mut body = Map::new();
    let mut resolver = |kind: Ref, v: &str| resolve(&p.id, kind, v);
    for field in write::CREATE_FIELDS {
        let present = match *field {
            "given-name" => p.given_name.is_some(),
            "family-name" => p.family_name.is_some(),
            "login" => p.login.is_some(),
            "work-email" => p.work_email.is_some(),
            "personal-email" => p.personal_email.is_some(),
            "phone" => p.phone.is_some(),
            "employee-number" => p.employee_number.is_some(),
            "birth-date" => p.birth_date.is_some(),
            "start-date" => p.start_date.is_some(),
            "end-date" => p.end_date.is_some(),
            "job-title" => p.job_title.is_some(),
            "gender" => p.gender.is_some(),
            "department-id" => p.department_id.is_some(),
            "legal-entity-id" => p.legal_entity_id.is_some(),
            "manager-id" => p.manager_id.is_some(),
            _ => false,
        };
        if !present {
            continue;
        }
        if let Some((k, v)) = write::canonical(field, p, &s.phone_field, &mut resolver)?
            && !v.is_null()
        {
            body.insert(k, v);
        }
    }
    let [legal_entity, department, role] = create_defaults(&s)?;
    for (key, default) in [
        ("legalEntityId", legal_entity),
        ("departmentId", department),
        ("rolePrincipalId", role),
    ] {
        if let Some(d) = default
            && !body.contains_key(key)
        {
            body.insert(key.into(), json!(d));
        }
    }
    for (code, v) in &p.custom_fields {
        if !code.starts_with("e_") {
            warn!(
                "person `{}`: custom:{code}: not a Lucca extended-data code (they start with e_); not written",
                p.id
            );
            continue;
        }
        body.insert(code.clone(), new_occurrences(v));
    }
    match (&p.contract_type, &s.contract_type_field) {
        (Some(ct), Some(code)) => {
            body.insert(code.clone(), json!({"value": ct}));
        }
        (Some(ct), None) => warn!(
            "person `{}`: contract-type `{ct}` not written: Lucca's users API has no contract-type field; set the `contract_type_field` setting to an extended-data code",
            p.id
        ),
        _ => {}
    }
    let what = format!("the creation of person `{}`", p.id);
    let bytes = api::send(
        Method::Post,
        &url(&s, "/api/v3/users?contract=true"),
        Some(&Value::Object(body)),
    )
    .map_err(|f| match f {
        Failure::Lucca(e) if e.status == 400 && e.field.as_deref().and_then(mandatory).is_some() => {
            let field = e.field.clone().unwrap_or_default();
            let (record_field, label, setting) = mandatory(&field).unwrap_or_default();
            ConnectorError::Invalid(format!(
                "cannot create person `{}` in Lucca: `{field}` ({label}) is mandatory, and neither the record ({record_field}), the `{setting}` setting nor the Lucca tenant's defaults give one (Lucca: {})",
                p.id, e.message
            ))
        }
        f => f.into_connector_error(&what),
    })?;
    let v: Value = muster_sdk::serde_json::from_slice(&bytes).map_err(|e| {
        ConnectorError::Invalid(format!("malformed JSON from Lucca for {what}: {e}"))
    })?;
    let id = map::id_of(v.pointer("/data/id")).ok_or_else(|| {
        ConnectorError::Invalid(format!("{what}: Lucca's answer names no user id"))
    })?;
    info!("created Lucca user `{id}` for person `{}`", p.id);
    Ok(Applied { target_id: id })
}

/// A custom value as new occurrences (a create has nothing to update).
fn new_occurrences(v: &FieldValue) -> Value {
    match v {
        FieldValue::Rows(rows) => Value::Array(
            rows.iter()
                .map(|r| {
                    let obj: Map<String, Value> = r
                        .iter()
                        .map(|(k, x)| (k.clone(), write::scalar_json(x)))
                        .collect();
                    json!({"value": obj})
                })
                .collect(),
        ),
        single => json!({"value": write::single_json(single).unwrap_or(Value::Null)}),
    }
}

fn update(u: &AccountUpdate) -> Result<Applied, ConnectorError> {
    let s = settings()?;
    let id = user_id(&u.id)?;
    let p = &u.person;
    let mut body = Map::new();
    let mut codes: Vec<String> = Vec::new();
    let mut resolver = |kind: Ref, v: &str| resolve(&u.id, kind, v);
    for f in &u.fields {
        let f = field::name(f);
        if let Some(code) = f.strip_prefix("custom:") {
            if !code.starts_with("e_") {
                return Err(ConnectorError::Invalid(format!(
                    "person `{}`: custom:{code} is not a Lucca extended-data code (they start with e_)",
                    u.id
                )));
            }
            codes.push(code.to_string());
        } else if f == "contract-type" {
            match &s.contract_type_field {
                Some(code) => codes.push(code.clone()),
                None => {
                    return Err(ConnectorError::Invalid(format!(
                        "person `{}`: contract-type cannot be written: Lucca's users API has no contract-type field; set the `contract_type_field` setting to an extended-data code",
                        u.id
                    )));
                }
            }
        } else if let Some((k, v)) = write::canonical(&f, p, &s.phone_field, &mut resolver)? {
            body.insert(k, v);
        }
    }
    codes.dedup();
    let rows = row_groups(u)?;
    if !codes.is_empty() || !rows.is_empty() {
        let read: Vec<&str> = codes
            .iter()
            .map(String::as_str)
            .chain(rows.iter().map(|r| r.0))
            .collect();
        let ext = extended_data(&s, id, &read)?;
        custom_writes(&s, u, &codes, &ext, &mut body)?;
        let defs = definitions(&s)?;
        let none = BTreeMap::new();
        for (code, key, changes) in &rows {
            let current = occurrences(ext.get(*code).unwrap_or(&Value::Null));
            let kinds = match defs.get(*code) {
                Some(map::Kind::Compound(subs)) => subs,
                _ => &none,
            };
            let writes =
                write::row_change_writes(key, changes, &current, kinds).map_err(|why| {
                    ConnectorError::Invalid(format!("person `{}`: custom:{code}: {why}", u.id))
                })?;
            if !writes.is_empty() {
                body.insert((*code).to_string(), Value::Array(writes));
            }
        }
    }
    if body.is_empty() {
        debug!("user `{id}`: nothing to write");
        return Ok(Applied {
            target_id: id.to_string(),
        });
    }
    put_user(&s, id, body)
}

/// The current `extendedData` of user `id` for `codes` (one GET).
fn extended_data(s: &Settings, id: u64, codes: &[&str]) -> Result<Value, ConnectorError> {
    let v = api::get(
        &url(
            s,
            &format!(
                "/api/v3/users/{id}?fields=id,extendedData[{}]",
                codes.join(",")
            ),
        ),
        &format!("reading the custom fields of user `{id}`"),
    )?;
    Ok(v.pointer("/data/extendedData")
        .cloned()
        .unwrap_or(Value::Null))
}

/// The occurrences `(id, value)` of a multi-occurrence field as Lucca returns it.
fn occurrences(existing: &Value) -> Vec<(u64, Value)> {
    existing
        .as_array()
        .map(|a| {
            a.iter()
                .filter_map(|o| {
                    Some((
                        o.get("id")?.as_u64()?,
                        o.get("value").cloned().unwrap_or(Value::Null),
                    ))
                })
                .collect()
        })
        .unwrap_or_default()
}

/// The row changes of one field: `(code, key sub-field, actions)`.
type RowGroup<'u> = (&'u str, &'u str, Vec<&'u RowAction>);

/// The row changes of an update, by field. A field that is not a Lucca extended-data code,
/// or changes of one field under two keys, are `invalid`.
fn row_groups(u: &AccountUpdate) -> Result<Vec<RowGroup<'_>>, ConnectorError> {
    let mut groups: Vec<RowGroup<'_>> = Vec::new();
    for rc in &u.rows {
        if !rc.field.starts_with("e_") {
            return Err(ConnectorError::Invalid(format!(
                "person `{}`: custom:{}: not a Lucca extended-data code (they start with e_)",
                u.id, rc.field
            )));
        }
        match groups.iter_mut().find(|g| g.0 == rc.field) {
            Some(g) if g.1 != rc.key => {
                return Err(ConnectorError::Invalid(format!(
                    "person `{}`: custom:{}: rows keyed by both `{}` and `{}`",
                    u.id, rc.field, g.1, rc.key
                )));
            }
            Some(g) => g.2.push(&rc.action),
            None => groups.push((&rc.field, &rc.key, vec![&rc.action])),
        }
    }
    Ok(groups)
}

/// Body entries for the custom fields `codes` that the update lists in `fields` (whole
/// values; multi-occurrence fields are diffed occurrence by occurrence, see [`write`]).
fn custom_writes(
    s: &Settings,
    u: &AccountUpdate,
    codes: &[String],
    ext: &Value,
    body: &mut Map<String, Value>,
) -> Result<(), ConnectorError> {
    let p = &u.person;
    for code in codes {
        let desired: Option<FieldValue> = if s.contract_type_field.as_deref() == Some(code.as_str())
            && !p.custom_fields.iter().any(|(c, _)| c == code)
        {
            p.contract_type.clone().map(FieldValue::Text)
        } else {
            p.custom_fields
                .iter()
                .find(|(c, _)| c == code)
                .map(|(_, v)| v.clone())
        };
        let existing = ext.get(code).cloned().unwrap_or(Value::Null);
        let entry = match (&existing, &desired) {
            (Value::Array(_), _) | (_, Some(FieldValue::Rows(_))) => {
                let current = occurrences(&existing);
                let rows = match &desired {
                    Some(FieldValue::Rows(r)) => r.clone(),
                    Some(single) => vec![vec![(
                        code.clone(),
                        match single {
                            FieldValue::Text(t) => Scalar::Text(t.clone()),
                            FieldValue::Date(d) => Scalar::Date(*d),
                            FieldValue::Number(n) => Scalar::Number(*n),
                            FieldValue::Boolean(b) => Scalar::Boolean(*b),
                            FieldValue::Rows(_) => Scalar::Text(String::new()),
                        },
                    )]],
                    None => Vec::new(),
                };
                let writes = write::occurrence_writes(&rows, &current, s.row_key(code));
                (!writes.is_empty()).then_some(Value::Array(writes))
            }
            _ => write::single_write(desired.as_ref(), &existing).map_err(|why| {
                ConnectorError::Invalid(format!("person `{}`: custom:{code}: {why}", u.id))
            })?,
        };
        if let Some(e) = entry {
            body.insert(code.clone(), e);
        }
    }
    Ok(())
}

fn put_user(s: &Settings, id: u64, body: Map<String, Value>) -> Result<Applied, ConnectorError> {
    let what = format!("the update of user `{id}`");
    match api::send(
        Method::Put,
        &url(s, &format!("/api/v3/users/{id}")),
        Some(&Value::Object(body)),
    ) {
        Ok(_) => Ok(Applied {
            target_id: id.to_string(),
        }),
        // Lucca has been seen to answer 500 for a user that does not exist: ask.
        Err(Failure::Lucca(e)) if e.status == 500 => {
            match api::send(
                Method::Get,
                &url(s, &format!("/api/v3/users/{id}?fields=id")),
                None,
            ) {
                Err(Failure::Lucca(g)) if g.status == 404 => Err(ConnectorError::NotFound),
                _ => Err(e.into_connector_error(&what)),
            }
        }
        Err(f) => Err(f.into_connector_error(&what)),
    }
}

fn check() -> Result<(), ConnectorError> {
    let s = settings()?;
    api::get(
        &url(&s, "/api/v3/users?fields=id&paging=0,1"),
        "reading users (checking the API key)",
    )?;
    api::get(
        &url(&s, "/organization/structure/api/departments?limit=1"),
        "reading departments (checking the API key)",
    )?;
    if s.custom_fields != CustomFields::None || s.contract_type_field.is_some() {
        definitions(&s)?;
    }
    create_defaults(&s)?;
    check_compound_fields(&s)
}

/// The compound fields a flow writes here (setting `compound_fields`) against Lucca's
/// definitions ([`setup`]): every problem of every field in one `invalid` error.
fn check_compound_fields(s: &Settings) -> Result<(), ConnectorError> {
    if s.compound_fields.is_empty() {
        return Ok(());
    }
    let v = api::get(
        &url(s, "/api/v3/extensionuserdefinitions"),
        "reading the custom HR-file field definitions",
    )?;
    let items = v
        .pointer("/data/items")
        .and_then(Value::as_array)
        .map_or(&[][..], Vec::as_slice);
    let problems: Vec<String> = s
        .compound_fields
        .iter()
        .flat_map(|(code, subs)| {
            setup::problems(
                items,
                &setup::Expected {
                    code,
                    sub_fields: subs,
                    row_key: s.row_key(code),
                },
            )
        })
        .collect();
    if problems.is_empty() {
        Ok(())
    } else {
        Err(ConnectorError::Invalid(problems.join("; ")))
    }
}

impl Connector for Lucca {
    fn describe() -> Manifest {
        Manifest {
            capabilities: vec![
                Capability::ReadPeople,
                Capability::ReadGroups,
                Capability::ReadPerson,
                Capability::ReadAccounts,
                Capability::ReadTargetGroups,
                Capability::ReadAccount,
                Capability::WriteAccounts,
            ],
            config_keys: config::KEYS
                .iter()
                .map(|(name, description, required)| ConfigKey {
                    name: (*name).into(),
                    description: (*description).into(),
                    required: *required,
                })
                .collect(),
            hosts: HOSTS.iter().map(|h| (*h).into()).collect(),
            credential_slots: vec![CredentialSlot {
                name: api::SLOT.into(),
                description: "Lucca API key (Lucca > Integrations); its role needs 'Coworkers > Manage users', plus 'HR file > Custom data' to read or write custom fields".into(),
                header: "Authorization".into(),
                template: "lucca application={secret}".into(),
            }],
            rate_limits: HOSTS
                .iter()
                .map(|h| RateLimit::new(*h, RATE_REQUESTS, RATE_WINDOW_SECS))
                .collect(),
            stores: Some(
                manifest::canonical(&STORES)
                    .into_iter()
                    .chain([manifest::every_custom_field()])
                    .collect(),
            ),
            create_requires: manifest::canonical(&[Field::GivenName, Field::FamilyName]),
            ..Manifest::new(
                "lucca",
                env!("CARGO_PKG_VERSION"),
                "Lucca HRIS: employees (current, future, former) and departments; creates and updates employees and their custom HR-file data",
            )
        }
    }

    fn configure(settings: Vec<(String, String)>) -> Result<(), ConnectorError> {
        let parsed = Settings::parse(&settings)?;
        STATE.with(|st| {
            *st.borrow_mut() = State {
                settings: Some(parsed),
                ..State::default()
            }
        });
        Ok(())
    }

    fn check() -> Result<(), ConnectorError> {
        check()
    }
}

impl Source for Lucca {
    fn read_people(request: ReadRequest) -> Result<PersonPage, ConnectorError> {
        let since = since(&settings()?, request.since.as_deref())?;
        read_users(request.cursor, since, 0)
    }

    fn read_groups(cursor: Option<String>) -> Result<GroupPage, ConnectorError> {
        read_departments(cursor)
    }

    fn read_person(id: String) -> Result<Option<Person>, ConnectorError> {
        read_person(&id)
    }
}

impl Target for Lucca {
    fn read_accounts(cursor: Option<String>) -> Result<PersonPage, ConnectorError> {
        read_users(cursor, None, 1)
    }

    fn read_groups(cursor: Option<String>) -> Result<GroupPage, ConnectorError> {
        read_departments(cursor)
    }

    fn read_account(id: String) -> Result<Option<Person>, ConnectorError> {
        read_person(&id)
    }

    fn apply(operation: Operation) -> Result<Applied, ConnectorError> {
        match operation {
            Operation::Create(p) => create(&p),
            Operation::Update(u) => update(&u),
            Operation::SetManager(m) => {
                let s = settings()?;
                let id = user_id(&m.id)?;
                let manager = match m.manager_id.as_deref().map(str::trim) {
                    None | Some("") => Value::Null,
                    Some(v) => json!(resolve(&m.id, Ref::Manager, v)?),
                };
                let mut body = Map::new();
                body.insert("managerId".into(), manager);
                put_user(&s, id, body)
            }
            // Lucca has no deactivation call: a leaver is a contract end date an HR admin
            // sets. Flows into Lucca are create/update-only.
            Operation::Deactivate(_) | Operation::Reactivate(_) => Err(ConnectorError::Unsupported),
            Operation::CreateGroup(_) | Operation::RenameGroup(_) | Operation::ChangeMembers(_) => {
                Err(ConnectorError::Unsupported)
            }
        }
    }
}

muster_sdk::export!(Lucca);

/// Lucca's published limit: 50 requests per 60 s per tenant domain, shared by every
/// integration. Declared over **61 s**: the host counts a request when it leaves, Lucca when
/// it arrives, and with the exact 60 s network jitter let the simulator see 51 in one of its
/// windows (`host/outbound/src/ratelimit.rs`, `RateLimit::LUCCA`). The margin costs under 2 %
/// of throughput on a rate-bound read.
const RATE_REQUESTS: u32 = 50;
const RATE_WINDOW_SECS: u32 = 61;

/// What Lucca stores as a target (see `write`): every canonical field — the contract type in
/// the extended-data field named by the `contract_type_field` setting (Lucca's users API has
/// no contract-type field; without the setting it is logged as not written) — plus every
/// custom HR-file field. First and last name are mandatory on create; legal entity,
/// department and role fall back to the settings' and the tenant's defaults.
const STORES: [Field; 16] = [
    Field::EmployeeNumber,
    Field::GivenName,
    Field::FamilyName,
    Field::WorkEmail,
    Field::PersonalEmail,
    Field::Phone,
    Field::Login,
    Field::BirthDate,
    Field::StartDate,
    Field::EndDate,
    Field::JobTitle,
    Field::Gender,
    Field::DepartmentId,
    Field::ManagerId,
    Field::LegalEntityId,
    Field::ContractType,
];
