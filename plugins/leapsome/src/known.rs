//! What the connector knows of the Leapsome directory between calls of one plugin instance.
//!
//! Leapsome's dialect makes a few facts necessary that its writes do not give back:
//! - every user PATCH must carry the account's `userName`, but a deactivation or a manager
//!   change only names the account by id: [`Known::user_names`];
//! - a group GET lists no members (`maxItems: 0`): the members of a team are gathered from
//!   the users' `groups` when the directory is read, and kept up to date by this instance's
//!   own membership writes: [`Known::members`];
//! - the enterprise `department` is a team *name*, while the host names teams by id:
//!   [`Known::team_names`];
//! - a create's PATCH already sets the manager when it is known, so the set-manager the plan
//!   holds for the same new account has nothing left to do: [`Known::managers`].
//!
//! Everything here is refreshed by each full read of the directory; a fact that is missing
//! is fetched from Leapsome (never guessed). With several instances in flight, each keeps its
//! own `Known`; the host has an instance read the teams again (`read-target-groups`, which
//! re-reads the directory) before a call that names a team another instance changed since, so
//! the team names and members used here are never another instance's stale copy.

use std::cell::RefCell;
use std::collections::HashMap;

/// Facts about accounts and teams, by Leapsome id.
#[derive(Debug, Default)]
pub struct Known {
    /// Account id → `userName`.
    pub user_names: HashMap<String, String>,
    /// Account id → its manager's Leapsome id (`None`: no manager), as last read or written.
    pub managers: HashMap<String, Option<String>>,
    /// Team id → member account ids, from the users' `groups`.
    pub members: HashMap<String, Vec<String>>,
    /// Whether `members` comes from a read of this sync that `read-target-groups` has not
    /// consumed yet (the host reads accounts, then teams).
    pub members_fresh: bool,
    /// Team id → `displayName`.
    pub team_names: HashMap<String, String>,
}

thread_local! {
    static KNOWN: RefCell<Known> = RefCell::new(Known::default());
}

/// Runs `f` on what is known.
pub fn with<R>(f: impl FnOnce(&mut Known) -> R) -> R {
    KNOWN.with_borrow_mut(f)
}

impl Known {
    /// Forgets everything (a new configuration).
    pub fn clear(&mut self) {
        *self = Known::default();
    }

    /// Records one account as read: its `userName`, manager and teams.
    pub fn account(&mut self, id: &str, user_name: Option<&str>, manager: Option<&str>) {
        if let Some(u) = user_name {
            self.user_names.insert(id.to_string(), u.to_string());
        }
        self.managers
            .insert(id.to_string(), manager.map(str::to_string));
    }

    /// Records that `account` is in `team`.
    pub fn add_member(&mut self, team: &str, account: &str) {
        let members = self.members.entry(team.to_string()).or_default();
        if !members.iter().any(|m| m == account) {
            members.push(account.to_string());
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn members_are_recorded_once() {
        let mut k = Known::default();
        k.add_member("t1", "a");
        k.add_member("t1", "a");
        k.add_member("t1", "b");
        assert_eq!(k.members["t1"], ["a", "b"]);
        k.account("a", Some("a@x.example"), None);
        assert_eq!(k.user_names["a"], "a@x.example");
        assert_eq!(k.managers["a"], None);
        k.clear();
        assert!(k.members.is_empty() && k.user_names.is_empty());
    }
}
