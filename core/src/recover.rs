//! The rules recovery shares with the planner.
//!
//! A run killed between a call and the record of its outcome leaves the host
//! to decide, from a fresh read of the target, whether the call took effect.
//! That decision must use the planner's own rules, or recovery and the next
//! plan disagree: a create is found by the **correlation keys the planner
//! matches with** ([`Policy::correlation`], plus the work email the planner
//! never creates twice), under the same normalisation
//! ([`CorrelationKey::normalization`]); an update took effect when each field
//! holds its new value under the **planner's equality** (the fingerprint's:
//! blank is none, white space and, for emails and logins, case ignored).
//! The host keeps the books (journal, links); this module decides.

use alloc::string::String;
use alloc::vec::Vec;

use hashbrown::HashMap;

use crate::fingerprint;
use crate::model::{FieldRef, FieldValue, Person};
use crate::normalize::normalize;
use crate::policy::{CorrelationKey, Policy};

type Map<K, V> = HashMap<K, V, foldhash::fast::FixedState>;

/// What [`Accounts::find_created`] found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Found {
    /// Exactly one free account matches: the create took effect (index into
    /// the accounts).
    Account(usize),
    /// No free account matches any key: the create did not take effect.
    Nothing,
    /// Several free accounts share the key: undecidable here; the next plan
    /// reports the conflict.
    Ambiguous {
        key: CorrelationKey,
        candidates: usize,
    },
}

/// Target accounts indexed by the correlation keys, built once per recovery
/// (a crash leaves up to a batch of creates to look up, and tenants can be
/// large).
#[derive(Debug)]
pub struct Accounts<'t> {
    accounts: &'t [Person],
    /// Per key, in the planner's order: normalised value → account indices.
    by_key: Vec<(CorrelationKey, Map<String, Vec<u32>>)>,
}

impl<'t> Accounts<'t> {
    pub fn new(policy: &Policy, accounts: &'t [Person]) -> Accounts<'t> {
        let by_key = policy
            .correlation_keys()
            .into_iter()
            .map(|(key, _)| {
                let mut index: Map<String, Vec<u32>> =
                    Map::with_hasher(foldhash::fast::FixedState::with_seed(0x5eed));
                for (i, a) in accounts.iter().enumerate() {
                    if let Some(v) = key.value(a) {
                        index
                            .entry(normalize(v, key.normalization()))
                            .or_default()
                            .push(i as u32);
                    }
                }
                (key, index)
            })
            .collect();
        Accounts { accounts, by_key }
    }

    /// The account a create of `person` made, among the accounts `taken`
    /// does not exclude (those some link already names): key by key, the
    /// first key with a match decides.
    pub fn find_created(&self, person: &Person, taken: impl Fn(&Person) -> bool) -> Found {
        for (key, index) in &self.by_key {
            let Some(value) = key.value(person) else {
                continue;
            };
            let Some(all) = index.get(&normalize(value, key.normalization())) else {
                continue;
            };
            let mut free = all
                .iter()
                .map(|&i| i as usize)
                .filter(|&i| !taken(&self.accounts[i]));
            match (free.next(), free.count()) {
                (None, _) => continue,
                (Some(one), 0) => return Found::Account(one),
                (Some(_), more) => {
                    return Found::Ambiguous {
                        key: *key,
                        candidates: more + 1,
                    };
                }
            }
        }
        Found::Nothing
    }
}

/// Whether `field` now holds what an update wrote, with the planner's
/// equality: once the update took effect, the next plan sees no change.
pub fn values_match(field: &FieldRef, now: Option<&FieldValue>, new: Option<&FieldValue>) -> bool {
    fingerprint::field_values_equal_as(field, now, new)
}

/// Whether a group's name `now` is the `planned` one, with the planner's
/// equality (surrounding white space ignored): once a create or rename took
/// effect, the next plan renames nothing.
pub fn group_name_matches(now: &str, planned: &str) -> bool {
    now.trim() == planned.trim()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::date::Date;
    use crate::model::Field;

    fn account(id: &str, email: &str, number: Option<&str>) -> Person {
        Person {
            work_email: Some(email.into()),
            employee_number: number.map(Into::into),
            ..Person::new(id)
        }
    }

    #[test]
    fn a_create_is_found_by_the_planners_keys_and_normalisation() {
        let target = [
            account("a-1", "Ana.Lopez@ACME.fr ", None),
            account("a-2", "ben@acme.fr", Some("E-7")),
        ];
        let policy = Policy::default();
        let accounts = Accounts::new(&policy, &target);
        let ana = account("1", "ana.lopez@acme.fr", None);
        assert_eq!(accounts.find_created(&ana, |_| false), Found::Account(0));
        // Taken by a link: not ours.
        assert_eq!(
            accounts.find_created(&ana, |a| a.id == "a-1"),
            Found::Nothing
        );
        // The employee number is tried first, the email decides otherwise.
        let ben = account("2", "other@acme.fr", Some(" E-7"));
        assert_eq!(accounts.find_created(&ben, |_| false), Found::Account(1));
        // Work email is a key even when the policy does not list it: the
        // planner never creates an account whose email is in use.
        let only_numbers = Policy {
            correlation: alloc::vec![CorrelationKey::EmployeeNumber],
            ..Policy::default()
        };
        let accounts = Accounts::new(&only_numbers, &target);
        assert_eq!(accounts.find_created(&ana, |_| false), Found::Account(0));
    }

    #[test]
    fn two_free_accounts_with_the_key_are_ambiguous() {
        let target = [
            account("a-1", "ana@acme.fr", None),
            account("a-2", "ANA@acme.fr", None),
        ];
        let policy = Policy::default();
        let accounts = Accounts::new(&policy, &target);
        let ana = account("1", "ana@acme.fr", None);
        assert_eq!(
            accounts.find_created(&ana, |_| false),
            Found::Ambiguous {
                key: CorrelationKey::WorkEmail,
                candidates: 2
            }
        );
        assert_eq!(
            accounts.find_created(&ana, |a| a.id == "a-2"),
            Found::Account(0)
        );
    }

    #[test]
    fn group_names_match_as_the_planner_compares_them() {
        assert!(group_name_matches(" Engineering", "Engineering "));
        assert!(!group_name_matches("engineering", "Engineering"));
    }

    #[test]
    fn values_match_with_the_planners_equality() {
        let text = |t: &str| Some(FieldValue::Text(t.into()));
        let email = FieldRef::from(Field::WorkEmail);
        let title = FieldRef::from(Field::JobTitle);
        assert!(values_match(
            &email,
            text("Ana@Acme.fr ").as_ref(),
            text("ana@acme.fr").as_ref()
        ));
        assert!(values_match(
            &title,
            text(" Lead").as_ref(),
            text("Lead").as_ref()
        ));
        assert!(!values_match(
            &title,
            text("lead").as_ref(),
            text("Lead").as_ref()
        ));
        // Blank is none.
        assert!(values_match(&title, text("  ").as_ref(), None));
        let day = |d: &str| Some(FieldValue::Date(Date::parse(d).unwrap()));
        let start = FieldRef::from(Field::StartDate);
        assert!(values_match(
            &start,
            day("2026-01-02").as_ref(),
            day("2026-01-02").as_ref()
        ));
        assert!(!values_match(
            &start,
            day("2026-01-02").as_ref(),
            day("2026-01-03").as_ref()
        ));
    }
}
