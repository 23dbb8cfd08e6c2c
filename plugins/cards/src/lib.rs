//! The `cards` connector: Cards (micro-learning, `https://api.cards-microlearning.com/v1`,
//! see `shared/API-NOTES.md`) as a **target** for people and groups, and as a **source** of
//! training statistics (`feed = "statistics"`).
//!
//! # Settings
//! See [`settings::KEYS`]: `tenant` (required, sent as `X-Tenant`), `base_url`,
//! `notify_created_users` (yes/no, default no; else the flow's `invite_on_create`),
//! `connection_mode` (`password` = Cards' `source: app`, or `sso`), `page_size` (≤ 500),
//! `leavers_group`, `feed` and the statistics field codes. One credential slot, `api-token`,
//! sent as `Authorization: Bearer {secret}`.
//!
//! # Target
//! - **Accounts** are Cards users, id = Cards' numeric id. Stores given name, family name and
//!   work email, all three required by a create. Flows match users by professional email
//!   only (`correlation = ["work_email"]`); a create answered "email already taken" links
//!   that user instead (the create is safe to retry).
//! - **Groups are named by their name**: a group's muster id is its Cards name. Cards creates
//!   a group when a user's `groups` first names it and has no group write of its own, so a
//!   `create-group` sends nothing and the first member's write creates the group. A group
//!   cannot be renamed through the API: `rename-group` is `invalid`, saying so. A department
//!   without any member never becomes a Cards group (and is planned again at each run).
//! - **Memberships** are read-modify-writes of each member's whole `groups` list, keeping
//!   every other group (see [`target`]): hand-made groups and memberships survive.
//! - **Leavers**: Cards has no deactivation, only `DELETE`, which would also erase the
//!   person's training history; muster never deletes. `deactivate` puts the user in the
//!   `leavers_group` (default `Former employees (muster)`), which `read-accounts` reads back
//!   as inactive; the flow removes the leaver from its department groups as for any inactive
//!   account; hand-made groups are kept. An admin who wants the account gone deletes that
//!   group's members in Cards. `reactivate` takes the user out of it. The leavers group is
//!   not listed by `read-target-groups`.
//!
//! # Source (`feed = "statistics"`)
//! See [`stats`]: one person per e-mail of the training-statistics feed, carrying the
//! compound field `e_formation` (codes configurable) with one row per training.
//!
//! # Manifest
//! Rate limit 10 requests per second on Cards (\[I\]: Cards publishes none; the sandbox
//! enforces the same). `max-members-per-change` 100 (each member is still one write).

mod api;
mod settings;
mod stats;
mod target;

use std::cell::RefCell;
use std::collections::BTreeMap;

use muster_sdk::manifest;
use muster_sdk::prelude::*;
use serde_json::Value;

use settings::Settings;

const HOST: &str = "https://api.cards-microlearning.com";
/// Records per page handed to the host.
const HOST_PAGE: usize = 1000;

thread_local! {
    static SETTINGS: RefCell<Option<Settings>> = const { RefCell::new(None) };
    /// The records of the read in progress (accounts or statistics people), paged from here.
    static PEOPLE: RefCell<Vec<Person>> = const { RefCell::new(Vec::new()) };
    /// Group name → member ids, from the last `read-accounts`.
    static MEMBERS: RefCell<Option<BTreeMap<String, Vec<String>>>> = const { RefCell::new(None) };
}

fn settings() -> Result<Settings, ConnectorError> {
    SETTINGS.with_borrow(|s| {
        s.clone()
            .ok_or_else(|| ConnectorError::Invalid("the connector is not configured".into()))
    })
}

/// The people of a read: all of them at its first page (`cursor` none), then from memory.
fn page(
    cursor: Option<String>,
    read: impl FnOnce() -> Result<(Vec<Person>, Vec<RecordProblem>), ConnectorError>,
) -> Result<PersonPage, ConnectorError> {
    let mut problems = Vec::new();
    if cursor.is_none() || PEOPLE.with_borrow(Vec::is_empty) {
        let (people, p) = read()?;
        PEOPLE.with_borrow_mut(|all| *all = people);
        problems = p;
    }
    PEOPLE.with_borrow_mut(|all| {
        let (items, next) = muster_sdk::paging::page_of(all, cursor.as_deref(), HOST_PAGE)?;
        if next.is_none() {
            all.clear();
        }
        Ok(PersonPage::full(items, next).with_problems(problems))
    })
}

/// Every Cards user as an account; records who is in which group.
fn read_accounts(s: &Settings) -> Result<(Vec<Person>, Vec<RecordProblem>), ConnectorError> {
    target::forget_writes();
    let mut people = Vec::new();
    let mut problems = Vec::new();
    let mut members: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for (i, row) in api::read_all(s, "/users")?.iter().enumerate() {
        let Some(user) = api::user(row) else {
            problems.push(RecordProblem {
                record_id: format!("user row {}", i + 1),
                field: None,
                message: "a Cards user without a numeric id; left out".into(),
            });
            continue;
        };
        for g in &user.groups {
            members
                .entry(g.name.clone())
                .or_default()
                .push(user.id.to_string());
        }
        people.push(api::person(&user, &s.leavers_group));
    }
    MEMBERS.with_borrow_mut(|m| *m = Some(members));
    Ok((people, problems))
}

struct Cards;

impl Connector for Cards {
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
                Capability::WriteGroups,
            ],
            config_keys: settings::KEYS
                .iter()
                .map(|(name, description)| ConfigKey {
                    name: (*name).into(),
                    description: (*description).into(),
                    required: *name == "tenant",
                })
                .collect(),
            hosts: vec![HOST.into(), "http://127.0.0.1:*".into()],
            credential_slots: vec![CredentialSlot {
                name: api::SLOT.into(),
                description: "Cards API token (Integrations and applications > API)".into(),
                header: "Authorization".into(),
                template: "Bearer {secret}".into(),
            }],
            rate_limits: vec![RateLimit::new(HOST, 10, 1)],
            stores: Some(manifest::canonical(&STORES)),
            create_requires: manifest::canonical(&STORES),
            max_members_per_change: 100,
            ..Manifest::new(
                "cards",
                "0.1.0",
                "Cards (micro-learning): users and groups; training statistics",
            )
        }
    }

    fn configure(settings: Vec<(String, String)>) -> Result<(), ConnectorError> {
        let parsed = Settings::parse(&settings)?;
        SETTINGS.with_borrow_mut(|s| *s = Some(parsed));
        PEOPLE.with_borrow_mut(Vec::clear);
        MEMBERS.with_borrow_mut(|m| *m = None);
        target::forget_writes();
        Ok(())
    }

    fn check() -> Result<(), ConnectorError> {
        let s = settings()?;
        api::client(&s)
            .get::<Value>("/users?paginate=1&page=1")
            .map(|_| ())
            .map_err(|e| match e {
                ConnectorError::Unauthorized(d) => ConnectorError::Unauthorized(format!(
                    "Cards refused the API token (slot `{}`): {d}",
                    api::SLOT
                )),
                ConnectorError::Forbidden(d) => ConnectorError::Forbidden(format!(
                    "the API token has no access to tenant `{}` (setting `tenant`): {d}",
                    s.tenant
                )),
                ConnectorError::NotFound => ConnectorError::Invalid(format!(
                    "no Cards users endpoint at {}/users: check the setting `base_url`",
                    s.base_url
                )),
                other => other,
            })
    }
}

fn statistics_only(s: &Settings) -> Result<(), ConnectorError> {
    if s.statistics {
        Ok(())
    } else {
        Err(ConnectorError::Invalid(
            "this Cards connection is not a source: set `feed = \"statistics\"` to read the \
             training statistics"
                .into(),
        ))
    }
}

impl Source for Cards {
    fn read_people(request: ReadRequest) -> Result<PersonPage, ConnectorError> {
        let s = settings()?;
        statistics_only(&s)?;
        page(request.cursor, || stats::read(&s))
    }

    fn read_groups(_cursor: Option<String>) -> Result<GroupPage, ConnectorError> {
        statistics_only(&settings()?)?;
        Ok(GroupPage::new(Vec::new(), None))
    }

    fn read_person(id: String) -> Result<Option<Person>, ConnectorError> {
        let s = settings()?;
        statistics_only(&s)?;
        Ok(stats::read(&s)?.0.into_iter().find(|p| p.id == id))
    }
}

impl Target for Cards {
    fn read_accounts(cursor: Option<String>) -> Result<PersonPage, ConnectorError> {
        let s = settings()?;
        page(cursor, || read_accounts(&s))
    }

    /// Groups (by name, see the crate docs) with their members from the users read just
    /// before, else from a read of the users now. Two Cards groups with one name are one
    /// muster group; the leavers group is left out.
    fn read_groups(_cursor: Option<String>) -> Result<GroupPage, ConnectorError> {
        let s = settings()?;
        if MEMBERS.with_borrow(Option::is_none) {
            read_accounts(&s)?;
        }
        let members = MEMBERS.with_borrow_mut(Option::take).unwrap_or_default();
        let mut groups: BTreeMap<String, Group> = BTreeMap::new();
        for row in api::read_all(&s, "/groups")? {
            let Some(name) = row.get("name").and_then(Value::as_str) else {
                continue;
            };
            if name == s.leavers_group {
                continue;
            }
            groups.entry(name.to_string()).or_insert_with(|| Group {
                id: name.to_string(),
                name: name.to_string(),
                parent_id: None,
                members: members.get(name).cloned().unwrap_or_default(),
            });
        }
        Ok(GroupPage::new(groups.into_values().collect(), None))
    }

    fn read_account(id: String) -> Result<Option<Person>, ConnectorError> {
        let s = settings()?;
        Ok(api::get_user(&s, &id)?.map(|u| api::person(&u, &s.leavers_group)))
    }

    fn apply(operation: Operation) -> Result<Applied, ConnectorError> {
        let s = settings()?;
        let done = |id: &str| Applied {
            target_id: id.to_string(),
        };
        match &operation {
            Operation::Create(p) => target::create(&s, p),
            Operation::Update(u) => target::update(&s, u),
            Operation::Deactivate(a) => {
                target::set_membership(&s, &a.id, &s.leavers_group, true).map(|()| done(&a.id))
            }
            Operation::Reactivate(a) => {
                target::set_membership(&s, &a.id, &s.leavers_group, false).map(|()| done(&a.id))
            }
            Operation::CreateGroup(g) => target::create_group(&s, g),
            Operation::ChangeMembers(m) => target::change_members(&s, m),
            Operation::RenameGroup(r) => Err(ConnectorError::Invalid(format!(
                "group `{}` → `{}`: Cards' API cannot rename a group; rename it in Cards",
                r.id, r.name
            ))),
            Operation::SetManager(m) => Err(ConnectorError::Invalid(format!(
                "account {}: Cards stores no manager",
                m.id
            ))),
        }
    }
}

muster_sdk::export!(Cards);

const STORES: [Field; 3] = [Field::GivenName, Field::FamilyName, Field::WorkEmail];
