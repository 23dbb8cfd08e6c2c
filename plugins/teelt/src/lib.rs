//! # The Teelt connector
//!
//! Teelt (onboarding) as a **source** of talents — the people about to join — for the
//! create-only Teelt → Lucca flow: every night the new talents become Lucca employees, and
//! "test the sync from a talent's record" is a single-record run (`muster sync --only ID`).
//!
//! Teelt publishes no API documentation (`shared/API-NOTES.md`, \[I\]): this connector reads a
//! small talents API as the sandbox models it, with the paths as settings ([`config`]):
//!
//! - `read-people` → `GET {talents_path}?page=N&limit=M`, following `next`. With a `since`
//!   (the watermark the host stored from the last completed read) it adds
//!   `updated_since=since` and its pages say `coverage: changes`; otherwise `full`. The last
//!   page returns a `watermark`: the `generatedAt` of the read's first page (Teelt's clock
//!   when the read started), so a talent changed during the read is read again next time.
//!   Without a `generatedAt` no watermark is returned and the next read is full.
//! - `read-person(id)` → `GET {talent_path}` with `{id}` percent-encoded; `none` on 404.
//!   The host also calls it with a talent's manager reference (an email), which is no
//!   talent: `none`, and the core matches the email against the target's accounts.
//!
//! The mapping talent → person is [`map`]. Departments and legal entities come as the names
//! Teelt's admin typed: the flow passes them to the target (Lucca resolves a name, code or
//! id), or maps them with `value_map`. Talents are never groups: `read-groups` answers an
//! empty page.
//!
//! One credential slot, `api-token`, sent as `Authorization: Bearer {secret}`. No rate limit
//! is declared (none is published).

mod config;
mod map;

use std::cell::RefCell;

use muster_sdk::prelude::*;
use muster_sdk::serde_json::Value;

use config::Settings;

/// The credential slot.
const SLOT: &str = "api-token";

/// Teelt's hosts ([I]: the accounts live under teelt.io; narrow with `hosts`).
const HOSTS: &[&str] = &["https://*.teelt.io"];

#[derive(Default)]
struct State {
    settings: Option<Settings>,
    /// `generatedAt` of the current read's first page: its watermark.
    started: Option<String>,
}

thread_local! {
    static STATE: RefCell<State> = RefCell::new(State::default());
}

fn settings() -> Result<Settings, ConnectorError> {
    STATE
        .with_borrow(|s| s.settings.clone())
        .ok_or_else(|| ConnectorError::Invalid("the Teelt connector is not configured".into()))
}

fn client(s: &Settings) -> Client {
    Client::new(s.base_url.clone()).with_credential(SLOT)
}

/// Percent-encodes a query or path value.
fn encode(v: &str) -> String {
    v.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'.' | b'_' | b'~' => {
                (b as char).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}

/// `next` of a list page: a page number or null.
fn next_page(page: &Value) -> Option<String> {
    match page.get("next")? {
        Value::Number(n) => Some(n.to_string()),
        Value::String(s) if !s.is_empty() => Some(s.clone()),
        _ => None,
    }
}

/// Talents of one list response as people; an item without id fails the read (it could
/// not even be reported), a bad value is a problem on the page.
fn people_of(
    page: &Value,
    what: &str,
) -> Result<(Vec<Person>, Vec<RecordProblem>), ConnectorError> {
    let items = page.get("items").and_then(Value::as_array).ok_or_else(|| {
        ConnectorError::Invalid(format!("{what}: the answer has no `items` list"))
    })?;
    let mut people = Vec::with_capacity(items.len());
    let mut problems = Vec::new();
    for (i, item) in items.iter().enumerate() {
        let (p, mut probs) = map::person(item)
            .ok_or_else(|| ConnectorError::Invalid(format!("{what}: talent #{i} has no id")))?;
        for pr in &probs {
            warn!("talent `{}`: {}", pr.record_id, pr.message);
        }
        problems.append(&mut probs);
        people.push(p);
    }
    Ok((people, problems))
}

fn read_people(request: ReadRequest) -> Result<PersonPage, ConnectorError> {
    let s = settings()?;
    let page_no: u64 = match request.cursor.as_deref() {
        None => 1,
        Some(c) => c
            .parse()
            .map_err(|_| ConnectorError::Invalid(format!("bad paging cursor `{c}`")))?,
    };
    let mut path = format!("{}?page={page_no}&limit={}", s.talents_path, s.page_size);
    if let Some(since) = &request.since {
        path.push_str(&format!("&updated_since={}", encode(since)));
    }
    let what = format!("reading Teelt talents (page {page_no})");
    let page: Value = client(&s).get(&path)?;
    let (items, problems) = people_of(&page, &what)?;
    let generated = page
        .get("generatedAt")
        .and_then(Value::as_str)
        .map(str::to_owned);
    if page_no == 1 {
        STATE.with_borrow_mut(|st| st.started = generated);
    }
    let next = next_page(&page);
    let watermark = match next {
        Some(_) => None,
        None => STATE.with_borrow(|st| st.started.clone()),
    };
    let coverage = match request.since {
        Some(_) => Coverage::Changes,
        None => Coverage::Full,
    };
    Ok(PersonPage {
        items,
        next,
        coverage,
        watermark,
        problems,
    })
}

fn read_person(id: &str) -> Result<Option<Person>, ConnectorError> {
    let s = settings()?;
    let path = s.talent_path.replace("{id}", &encode(id.trim()));
    match client(&s).get::<Value>(&path) {
        Ok(v) => {
            let (p, problems) = map::person(&v).ok_or_else(|| {
                ConnectorError::Invalid(format!(
                    "reading Teelt talent `{id}`: the answer has no id"
                ))
            })?;
            for pr in problems {
                warn!("talent `{}`: {}", pr.record_id, pr.message);
            }
            Ok(Some(p))
        }
        Err(ConnectorError::NotFound) => Ok(None),
        Err(e) => Err(e),
    }
}

struct Teelt;

impl Connector for Teelt {
    fn describe() -> Manifest {
        Manifest {
            capabilities: vec![Capability::ReadPeople, Capability::ReadPerson],
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
                name: SLOT.into(),
                description: "Teelt API token (Teelt > Settings > Integration)".into(),
                header: "Authorization".into(),
                template: "Bearer {secret}".into(),
            }],
            ..Manifest::new(
                "teelt",
                env!("CARGO_PKG_VERSION"),
                "Teelt onboarding: talents (people about to join) as a source, read incrementally",
            )
        }
    }

    fn configure(settings: Vec<(String, String)>) -> Result<(), ConnectorError> {
        let parsed = Settings::parse(&settings)?;
        STATE.with_borrow_mut(|st| {
            *st = State {
                settings: Some(parsed),
                started: None,
            }
        });
        Ok(())
    }

    fn check() -> Result<(), ConnectorError> {
        let s = settings()?;
        let page: Value = client(&s).get(&format!("{}?page=1&limit=1", s.talents_path))?;
        people_of(&page, "reading Teelt talents (checking the token)").map(|_| ())
    }
}

impl Source for Teelt {
    fn read_people(request: ReadRequest) -> Result<PersonPage, ConnectorError> {
        read_people(request)
    }

    fn read_groups(_cursor: Option<String>) -> Result<GroupPage, ConnectorError> {
        Ok(GroupPage::new(Vec::new(), None))
    }

    fn read_person(id: String) -> Result<Option<Person>, ConnectorError> {
        read_person(&id)
    }
}

impl Target for Teelt {
    fn read_accounts(_: Option<String>) -> Result<PersonPage, ConnectorError> {
        Err(ConnectorError::Unsupported)
    }
    fn read_groups(_: Option<String>) -> Result<GroupPage, ConnectorError> {
        Err(ConnectorError::Unsupported)
    }
    fn read_account(_: String) -> Result<Option<Person>, ConnectorError> {
        Err(ConnectorError::Unsupported)
    }
    fn apply(_: Operation) -> Result<Applied, ConnectorError> {
        Err(ConnectorError::Unsupported)
    }
}

muster_sdk::export!(Teelt);
