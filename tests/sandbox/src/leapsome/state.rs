//! The directory a simulated Leapsome organisation holds: users, teams and the invitations
//! sent. Plain data behind the simulator's mutex, so a test can seed it before a sync, change
//! it by hand between two syncs (a manual edit, a team created in Leapsome) and read it back.

use std::collections::HashMap;

/// The core SCIM user schema.
pub const USER_SCHEMA: &str = "urn:ietf:params:scim:schemas:core:2.0:User";
/// The SCIM enterprise extension, where Leapsome keeps manager, dates and gender.
pub const ENTERPRISE: &str = "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User";
/// \[I\] The extension a create uses to ask for an invitation (`{"invite": true}`). Leapsome's
/// public docs only say invitations are optional; the spelling is ours, in one place.
pub const INVITE_EXTENSION: &str = "urn:ietf:params:scim:schemas:extension:leapsome:2.0:User";
/// The core SCIM group schema (Leapsome teams).
pub const GROUP_SCHEMA: &str = "urn:ietf:params:scim:schemas:core:2.0:Group";

/// One address of `emails[]`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Email {
    pub value: String,
    /// `work`, `home`, … as sent.
    pub kind: Option<String>,
    pub primary: bool,
}

impl Email {
    /// The primary work address.
    pub fn work(value: &str) -> Self {
        Email {
            value: value.to_string(),
            kind: Some("work".into()),
            primary: true,
        }
    }
}

/// A Leapsome account as SCIM exposes it.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct ScimUser {
    /// Leapsome's own id (24 hex digits, like the real ones).
    pub id: String,
    /// The provisioning client's id for the person (muster stores the source id here).
    pub external_id: Option<String>,
    /// The login email; unique, case-insensitively.
    pub user_name: String,
    pub given_name: Option<String>,
    pub family_name: Option<String>,
    pub display_name: Option<String>,
    pub title: Option<String>,
    pub emails: Vec<Email>,
    pub active: bool,
    // Enterprise extension.
    pub employee_number: Option<String>,
    pub department: Option<String>,
    /// Leapsome id of the manager (writes may name it by id, email or externalId).
    pub manager: Option<String>,
    /// `YYYY-MM-DD`.
    pub start_date: Option<String>,
    pub end_date: Option<String>,
    pub birthday: Option<String>,
    /// `male`, `female` or `diverse`.
    pub gender: Option<String>,
    /// Whether the person accepted the invitation (logged in once). An account created
    /// through SCIM starts `false` and stays "invited" until [`Directory::accept_invitation`];
    /// reactivating it (`active: true`) leaves it invited, as Leapsome does.
    pub accepted: bool,
}

impl ScimUser {
    /// An active account with only a login email (and that email as its work address):
    /// a starting point for struct-update syntax when seeding pre-existing accounts.
    pub fn new(id: impl Into<String>, user_name: &str) -> Self {
        ScimUser {
            id: id.into(),
            user_name: user_name.to_string(),
            emails: vec![Email::work(user_name)],
            active: true,
            accepted: true,
            ..ScimUser::default()
        }
    }

    /// Leapsome's status of the account: `deactivated` when not active, else `invited` until
    /// the person accepts the invitation, then `active`.
    pub fn status(&self) -> &'static str {
        match (self.active, self.accepted) {
            (false, _) => "deactivated",
            (true, false) => "invited",
            (true, true) => "active",
        }
    }
}

/// A Leapsome team (a SCIM group).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Team {
    pub id: String,
    pub display_name: String,
    pub external_id: Option<String>,
    /// Leapsome ids of the members, in insertion order, without duplicates.
    pub members: Vec<String>,
}

/// An invitation e-mail Leapsome would have sent.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Invitation {
    /// Leapsome id of the invited account.
    pub user_id: String,
    /// Where it went.
    pub email: String,
}

/// The organisation's directory.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Directory {
    pub users: Vec<ScimUser>,
    pub teams: Vec<Team>,
    pub invitations: Vec<Invitation>,
    /// Last id handed out; ids are deterministic (a counter), never random.
    pub last_id: u64,
}

impl Directory {
    /// An empty organisation.
    pub fn new() -> Self {
        Directory::default()
    }

    /// A fresh user id: `5f` + 22 hex digits of a counter.
    pub fn next_user_id(&mut self) -> String {
        self.last_id += 1;
        format!("5f{:022x}", self.last_id)
    }

    /// A fresh team id: `7e` + 22 hex digits of the same counter.
    pub fn next_team_id(&mut self) -> String {
        self.last_id += 1;
        format!("7e{:022x}", self.last_id)
    }

    /// Seeds a pre-existing account (as if created by hand in Leapsome) with a fresh id,
    /// returning that id. `user.id` is ignored.
    pub fn add_user(&mut self, user: ScimUser) -> String {
        let id = self.next_user_id();
        self.users.push(ScimUser {
            id: id.clone(),
            ..user
        });
        id
    }

    /// Seeds a team created by hand in Leapsome, with these member ids, returning its id.
    pub fn add_team(&mut self, name: &str, members: &[String]) -> String {
        let id = self.next_team_id();
        let mut team = Team {
            id: id.clone(),
            display_name: name.to_string(),
            external_id: None,
            members: Vec::new(),
        };
        for m in members {
            if !team.members.contains(m) {
                team.members.push(m.clone());
            }
        }
        self.teams.push(team);
        id
    }

    /// The user with this Leapsome id.
    pub fn user(&self, id: &str) -> Option<&ScimUser> {
        self.users.iter().find(|u| u.id == id)
    }

    /// The person behind `user_id` accepts the invitation (logs in): the account becomes
    /// `active` when it is. Returns false for an unknown id.
    pub fn accept_invitation(&mut self, user_id: &str) -> bool {
        self.user_mut(user_id).map(|u| u.accepted = true).is_some()
    }

    /// Mutable access to the user with this Leapsome id.
    pub fn user_mut(&mut self, id: &str) -> Option<&mut ScimUser> {
        self.users.iter_mut().find(|u| u.id == id)
    }

    /// The user whose `userName` is `email` (case-insensitive).
    pub fn user_by_email(&self, email: &str) -> Option<&ScimUser> {
        self.users
            .iter()
            .find(|u| u.user_name.eq_ignore_ascii_case(email))
    }

    /// The user whose `externalId` is `external_id`.
    pub fn user_by_external_id(&self, external_id: &str) -> Option<&ScimUser> {
        self.users
            .iter()
            .find(|u| u.external_id.as_deref() == Some(external_id))
    }

    /// Index of the user a path or reference names: Leapsome id first, then `externalId`
    /// (the real API accepts both in `/Users/{id}`).
    pub fn find_user(&self, reference: &str) -> Option<usize> {
        self.users
            .iter()
            .position(|u| u.id == reference)
            .or_else(|| {
                self.users
                    .iter()
                    .position(|u| u.external_id.as_deref() == Some(reference))
            })
    }

    /// Index of the team a path names: id first, then `externalId`.
    pub fn find_team(&self, reference: &str) -> Option<usize> {
        self.teams
            .iter()
            .position(|t| t.id == reference)
            .or_else(|| {
                self.teams
                    .iter()
                    .position(|t| t.external_id.as_deref() == Some(reference))
            })
    }

    /// The team with this id.
    pub fn team(&self, id: &str) -> Option<&Team> {
        self.teams.iter().find(|t| t.id == id)
    }

    /// The team with this name (case-insensitive, trimmed).
    pub fn team_by_name(&self, name: &str) -> Option<&Team> {
        self.teams
            .iter()
            .find(|t| t.display_name.trim().eq_ignore_ascii_case(name.trim()))
    }

    /// Ids of the teams `user_id` belongs to.
    pub fn teams_of(&self, user_id: &str) -> Vec<&Team> {
        self.teams
            .iter()
            .filter(|t| t.members.iter().any(|m| m == user_id))
            .collect()
    }
}

/// Lookups over a directory, built once per request so rendering a page of N records costs
/// O(directory + N), not O(directory × N).
pub(crate) struct Index<'d> {
    pub users: HashMap<&'d str, &'d ScimUser>,
    pub teams_of: HashMap<&'d str, Vec<&'d Team>>,
}

impl Directory {
    pub(crate) fn index(&self) -> Index<'_> {
        let users = self.users.iter().map(|u| (u.id.as_str(), u)).collect();
        let mut teams_of: HashMap<&str, Vec<&Team>> = HashMap::new();
        for t in &self.teams {
            for m in &t.members {
                teams_of.entry(m.as_str()).or_default().push(t);
            }
        }
        Index { users, teams_of }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_are_deterministic_and_lookups_accept_external_ids() {
        let mut d = Directory::new();
        let a = d.add_user(ScimUser {
            external_id: Some("42".into()),
            ..ScimUser::new("", "Ann@Sandbox.example")
        });
        let t = d.add_team("Sales", &[a.clone(), a.clone()]);
        assert_eq!(a, "5f0000000000000000000001");
        assert_eq!(t, "7e0000000000000000000002");
        assert_eq!(d.find_user("42"), Some(0));
        assert_eq!(d.find_user(&a), Some(0));
        assert!(d.user_by_email("ann@sandbox.example").is_some());
        assert_eq!(d.team(&t).map(|t| t.members.len()), Some(1));
        assert_eq!(d.teams_of(&a).len(), 1);
        assert!(d.team_by_name(" sales ").is_some());
    }
}
