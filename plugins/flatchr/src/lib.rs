//! # The Flatchr connector (recruiting → HR)
//!
//! Flatchr is the **source** of an inbound flow: a candidate who reaches the hire column
//! becomes a person, which the flow creates in Lucca. It never writes to Flatchr.
//!
//! ## Reading
//! - **People** (`read-people`): `POST /company/{company}/search/applicants` with the hire
//!   filter — `{"column": "<title>"}` when the `hire_column` setting names a column, else
//!   `{"hired": true}` (the column Flatchr marks as hired). The answer is a flat array
//!   without paging, so a read is one page, `coverage: full`.
//! - **One person** (`read-person`, for webhook runs): the same search, keeping the
//!   applicant with that REST id (Flatchr documents no route that reads one applicant). A
//!   webhook comes for every drag: an applicant who is *not* in the hire column is answered
//!   **inactive**, with its data from a search without filter (a second request, only for
//!   such events), so the flow plans nothing for them — an inbound flow never creates an
//!   inactive person nor deactivates anybody. An id Flatchr does not know (deleted since the
//!   event) is an inactive record with only its id: answering none would fail the run and
//!   leave the event retried for ever.
//!
//! ## Mapping (applicant → person)
//! `applicant` (the 16-character hash) → id; `firstname`, `lastname` → given and family
//! name; `email` → **personal** email (a candidate's address: a flow coalesces it into the
//! work email when the work one is unknown); `phone`; `contract_type` and `start_date`
//! when the applicant has them. An empty text is absent (the core then skips the person,
//! naming the missing field); an unreadable start date is absent with a `record-problem`
//! naming the applicant and `start-date`. Everyone read is active.
//!
//! ## Settings and credential
//! `company` (required: the REST company id), `hire_column` (optional: the title of the
//! column that means hired), `base_url` (optional, default `https://api.flatchr.io`). The
//! API key goes in the `api-key` slot, sent as `Authorization: Bearer {secret}`; it never
//! enters the plugin.

mod map;

use std::cell::RefCell;

use muster_sdk::prelude::*;
use muster_sdk::serde_json::{Value, json};

/// Flatchr's API host.
const HOST: &str = "https://api.flatchr.io";
/// The credential slot.
const SLOT: &str = "api-key";

/// The parsed settings.
#[derive(Debug, Clone)]
struct Settings {
    base_url: String,
    company: String,
    hire_column: Option<String>,
}

const KEYS: &[(&str, &str, bool)] = &[
    (
        "company",
        "The Flatchr company id (the 16-character id in /company/{id}/… URLs)",
        true,
    ),
    (
        "hire_column",
        "Title of the column that means hired (default: the column Flatchr marks as hired)",
        false,
    ),
    (
        "base_url",
        "API base URL (default https://api.flatchr.io)",
        false,
    ),
];

thread_local! {
    static SETTINGS: RefCell<Option<Settings>> = const { RefCell::new(None) };
}

fn settings() -> Result<Settings, ConnectorError> {
    SETTINGS
        .with(|s| s.borrow().clone())
        .ok_or_else(|| ConnectorError::Invalid("the connector is not configured".into()))
}

fn client(s: &Settings) -> Client {
    Client::new(s.base_url.clone()).with_credential(SLOT)
}

/// The search filter that selects hired applicants.
fn hire_filter(s: &Settings) -> Value {
    match &s.hire_column {
        Some(title) => json!({ "column": title }),
        None => json!({ "hired": true }),
    }
}

/// One search: the flat array of applicants matching `filter`.
fn search(s: &Settings, filter: &Value, what: &str) -> Result<Vec<Value>, ConnectorError> {
    let path = format!("/company/{}/search/applicants", s.company);
    let rows: Value = client(s)
        .post(&path, filter)
        .map_err(|e| in_context(e, what))?;
    match rows {
        Value::Array(items) => Ok(items),
        other => Err(ConnectorError::Invalid(format!(
            "{what}: Flatchr's search answered {} instead of a flat array of applicants",
            kind(&other)
        ))),
    }
}

fn kind(v: &Value) -> &'static str {
    match v {
        Value::Object(_) => "an object",
        Value::Array(_) => "an array",
        Value::String(_) => "a string",
        Value::Number(_) => "a number",
        Value::Bool(_) => "a boolean",
        Value::Null => "null",
    }
}

/// Adds what was being done to an error's text.
fn in_context(e: ConnectorError, what: &str) -> ConnectorError {
    match e {
        ConnectorError::Unauthorized(m) => ConnectorError::Unauthorized(format!(
            "{what}: Flatchr refused the API key (slot `{SLOT}`): {m}"
        )),
        ConnectorError::NotFound => ConnectorError::Invalid(format!(
            "{what}: Flatchr does not know this company: check the `company` setting"
        )),
        ConnectorError::Invalid(m) => ConnectorError::Invalid(format!("{what}: {m}")),
        other => other,
    }
}

struct Flatchr;

impl Connector for Flatchr {
    fn describe() -> Manifest {
        Manifest {
            capabilities: vec![Capability::ReadPeople, Capability::ReadPerson],
            config_keys: KEYS
                .iter()
                .map(|(name, description, required)| ConfigKey {
                    name: (*name).into(),
                    description: (*description).into(),
                    required: *required,
                })
                .collect(),
            hosts: vec![HOST.into()],
            credential_slots: vec![CredentialSlot {
                name: SLOT.into(),
                description: "Flatchr API key (Flatchr > Settings > API)".into(),
                header: "Authorization".into(),
                template: "Bearer {secret}".into(),
            }],
            ..Manifest::new(
                "flatchr",
                env!("CARGO_PKG_VERSION"),
                "Flatchr recruiting: hired applicants (the hire column) as people to create",
            )
        }
    }

    fn configure(pairs: Vec<(String, String)>) -> Result<(), ConnectorError> {
        let get = |k: &str| {
            muster_sdk::setting(&pairs, k)
                .map(|v| v.trim().to_string())
                .filter(|v| !v.is_empty())
        };
        if let Some((k, _)) = pairs
            .iter()
            .find(|(k, _)| !KEYS.iter().any(|(n, ..)| n == k))
        {
            return Err(ConnectorError::Invalid(format!(
                "unknown setting `{k}`; settings are company, hire_column, base_url"
            )));
        }
        let company = get("company").ok_or_else(|| {
            ConnectorError::Invalid("missing setting `company` (the Flatchr company id)".into())
        })?;
        let parsed = Settings {
            base_url: get("base_url")
                .unwrap_or_else(|| HOST.into())
                .trim_end_matches('/')
                .to_string(),
            company,
            hire_column: get("hire_column"),
        };
        SETTINGS.with(|s| *s.borrow_mut() = Some(parsed));
        Ok(())
    }

    fn check() -> Result<(), ConnectorError> {
        let s = settings()?;
        let probe = json!({ "email": "muster-check@invalid.example" });
        search(&s, &probe, "searching applicants (checking the API key)").map(|_| ())
    }
}

impl Source for Flatchr {
    fn read_people(_request: ReadRequest) -> Result<PersonPage, ConnectorError> {
        let s = settings()?;
        let rows = search(&s, &hire_filter(&s), "searching hired applicants")?;
        let mut people = Vec::with_capacity(rows.len());
        let mut problems = Vec::new();
        for row in &rows {
            let (person, problem) = map::person(row)?;
            people.push(person);
            problems.extend(problem);
        }
        Ok(PersonPage::full(people, None).with_problems(problems))
    }

    fn read_groups(_cursor: Option<String>) -> Result<GroupPage, ConnectorError> {
        Err(ConnectorError::Unsupported)
    }

    fn read_person(id: String) -> Result<Option<Person>, ConnectorError> {
        let s = settings()?;
        let what = format!("reading applicant `{id}`");
        if let Some(person) = find(&s, &hire_filter(&s), &id, &what)? {
            return Ok(Some(person));
        }
        // Not in the hire column: the applicant as it is, inactive, so the
        // run plans nothing and changes nothing it does not own.
        let anywhere = find(&s, &json!({}), &id, &what)?;
        Ok(Some(match anywhere {
            Some(p) => Person { active: false, ..p },
            // Unknown to Flatchr (deleted since the event): an inactive
            // record with only its id — answering none would leave the
            // event failing and retried for ever.
            None => Person::new(id, false),
        }))
    }
}

/// The applicant `id` among the results of a search with `filter`.
fn find(
    s: &Settings,
    filter: &Value,
    id: &str,
    what: &str,
) -> Result<Option<Person>, ConnectorError> {
    let rows = search(s, filter, what)?;
    let Some(row) = rows
        .iter()
        .find(|r| r.get("applicant").and_then(Value::as_str) == Some(id))
    else {
        return Ok(None);
    };
    let (person, problem) = map::person(row)?;
    if let Some(p) = problem {
        muster_sdk::warn!("{}: {}", p.record_id, p.message);
    }
    Ok(Some(person))
}

impl Target for Flatchr {
    fn read_accounts(_cursor: Option<String>) -> Result<PersonPage, ConnectorError> {
        Err(ConnectorError::Unsupported)
    }
    fn read_groups(_cursor: Option<String>) -> Result<GroupPage, ConnectorError> {
        Err(ConnectorError::Unsupported)
    }
    fn read_account(_id: String) -> Result<Option<Person>, ConnectorError> {
        Err(ConnectorError::Unsupported)
    }
    fn apply(_operation: Operation) -> Result<Applied, ConnectorError> {
        Err(ConnectorError::Unsupported)
    }
}

muster_sdk::export!(Flatchr);
