//! # Unique logins on create
//!
//! A target such as Lucca refuses a new account whose `login` is already
//! used. The login of a hire is usually generated from a template
//! (`{given_name|initial}{family_name}|login`: Zoë Lefèvre → `zlefevre`), so
//! two people can want the same one — each other's, or an account's that
//! already exists. The planner resolves that **at plan time**, never as a
//! failed call: after the plan is made, every create that writes a login is
//! checked, in plan order (source id), against the logins of every account
//! the target already has (active or not; those a single-record run left
//! out of the plan come in [`Side::other_logins`](crate::Side::other_logins))
//! and the logins of the creates before it. Logins compare like the `login` correlation key: trimmed,
//! Unicode-NFKC-normalised and case-folded (`ZLefevre` takes `zlefevre`).
//!
//! What happens to a create whose login is taken is the flow's
//! [`LoginTaken`] rule:
//!
//! - [`LoginTaken::Suffix`] (the default): the first free `login2`,
//!   `login3` … up to [`MAX_SUFFIX`] is used instead; the plan shows the
//!   change (`login: zlefevre -> zlefevre2`) and the create writes it. When
//!   all of them are taken the create becomes a `login_taken` conflict.
//! - [`LoginTaken::Conflict`]: the create becomes a `login_taken` conflict
//!   naming the record, the login and who holds it; nothing is written.
//!
//! A create that does not write `login` (the flow neither owns nor must
//! carry it) is left alone.

use alloc::collections::BTreeMap;
use alloc::string::String;

use crate::model::{Field, Person};
use crate::normalize::normalize;
use crate::plan::{Action, Reason, Side, Subject};
use crate::policy::{CorrelationKey, Policy};

/// The highest suffix tried (`zlefevre99`) before a create is a conflict.
pub const MAX_SUFFIX: u32 = 99;

/// What a create whose login is already taken becomes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
#[cfg_attr(feature = "serde", serde(rename_all = "snake_case"))]
pub enum LoginTaken {
    /// The first free `login2`, `login3` … is used instead.
    #[default]
    Suffix,
    /// A `login_taken` conflict; the person is not created.
    Conflict,
}

/// Who already holds a login a create wants.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LoginHolder {
    /// An account of the target (index into the target side).
    Account(usize),
    /// Another person this plan creates (index into the source side).
    Person(usize),
    /// An account that is not in the plan's target side
    /// ([`Side::other_logins`](crate::Side::other_logins)).
    Elsewhere,
}

/// The outcome of the pass: the creates that write another login than the
/// one the person asked for (source index → login written).
pub(crate) type Renamed = BTreeMap<usize, String>;

fn key(login: &str) -> String {
    normalize(login.trim(), CorrelationKey::Login.normalization())
}

/// Checks the logins of the creates in `actions` (already in plan order)
/// against the target's logins and each other, applying `policy.login_taken`:
/// renames go into the returned map, conflicts replace their create.
pub(crate) fn resolve(
    actions: &mut [Action],
    people: &[Person],
    target: Side<'_>,
    policy: &Policy,
) -> Renamed {
    let mut renamed = Renamed::new();
    if !policy.create_fields().contains(&Field::Login.into()) {
        return renamed;
    }
    let mut taken: BTreeMap<String, LoginHolder> = BTreeMap::new();
    for (i, a) in target.people.iter().enumerate() {
        if let Some(l) = a.login.as_deref().filter(|l| !l.trim().is_empty()) {
            taken.entry(key(l)).or_insert(LoginHolder::Account(i));
        }
    }
    for l in target.other_logins.iter().filter(|l| !l.trim().is_empty()) {
        taken.entry(key(l)).or_insert(LoginHolder::Elsewhere);
    }
    for action in actions.iter_mut() {
        let Action::Create { person } = *action else {
            continue;
        };
        let Some(wanted) = people[person].login.as_deref().map(str::trim) else {
            continue;
        };
        if wanted.is_empty() {
            continue;
        }
        let Some(holder) = taken.get(&key(wanted)).cloned() else {
            taken.insert(key(wanted), LoginHolder::Person(person));
            continue;
        };
        let free = match policy.login_taken {
            LoginTaken::Suffix => first_free(wanted, &taken),
            LoginTaken::Conflict => None,
        };
        match free {
            Some(login) => {
                taken.insert(key(&login), LoginHolder::Person(person));
                renamed.insert(person, login);
            }
            None => {
                *action = Action::Conflict {
                    subject: Subject::Person(person),
                    reason: Reason::LoginTaken {
                        login: wanted.into(),
                        holder,
                    },
                };
            }
        }
    }
    renamed
}

/// `wanted2`, `wanted3` … : the first that nobody holds.
fn first_free(wanted: &str, taken: &BTreeMap<String, LoginHolder>) -> Option<String> {
    (2..=MAX_SUFFIX)
        .map(|n| alloc::format!("{wanted}{n}"))
        .find(|l| !taken.contains_key(&key(l)))
}

#[cfg(test)]
mod tests {
    use alloc::string::ToString;
    use alloc::vec;
    use alloc::vec::Vec;

    use super::*;
    use crate::plan::{Input, Side};
    use crate::policy::FieldSet;
    use crate::{Date, FieldRef, Link, plan};

    fn hire(id: &str, login: &str) -> Person {
        Person {
            given_name: Some("Zoë".into()),
            family_name: Some(id.into()),
            work_email: Some(alloc::format!("{id}@acme.fr")),
            login: Some(login.into()),
            start_date: Date::from_ymd(2026, 1, 5).ok(),
            ..Person::new(id)
        }
    }

    fn account(id: &str, login: &str) -> Person {
        Person {
            login: Some(login.into()),
            work_email: Some(alloc::format!("{id}@old.acme.fr")),
            ..Person::new(id)
        }
    }

    fn policy(rule: LoginTaken) -> Policy {
        let mut p = Policy::create_only();
        p.owned = [
            Field::GivenName,
            Field::FamilyName,
            Field::WorkEmail,
            Field::Login,
        ]
        .into_iter()
        .map(FieldRef::from)
        .collect::<FieldSet>();
        p.login_taken = rule;
        p
    }

    /// The plan's input for these sides, on the tests' day.
    fn input<'a>(
        source: Side<'a>,
        target: Side<'a>,
        links: &'a [Link],
        policy: &'a Policy,
    ) -> Input<'a> {
        Input {
            source,
            target,
            links,
            prepared_links: None,
            group_links: &[],
            identities: &[],
            written_rows: &crate::rows::NOTHING_WRITTEN,
            policy,
            today: Date::from_ymd(2026, 3, 2).unwrap(),
        }
    }

    /// (kind, source id, login written or the conflict's reason code)
    fn outcome(
        source: &[Person],
        target: &[Person],
        links: &[Link],
        rule: LoginTaken,
    ) -> Vec<(String, String, String)> {
        let policy = policy(rule);
        let input = input(Side::people(source), Side::people(target), links, &policy);
        let plan = plan(&input).unwrap();
        plan.actions()
            .iter()
            .filter_map(|a| match a {
                Action::Create { person } => Some((
                    "create".to_string(),
                    source[*person].id.clone(),
                    plan.create_login(*person)
                        .or(source[*person].login.as_deref())
                        .unwrap_or_default()
                        .to_string(),
                )),
                Action::Conflict {
                    subject: Subject::Person(p),
                    reason,
                } => Some((
                    "conflict".to_string(),
                    source[*p].id.clone(),
                    plan.explain(reason),
                )),
                _ => None,
            })
            .collect()
    }

    fn row(kind: &str, id: &str, what: &str) -> (String, String, String) {
        (kind.into(), id.into(), what.into())
    }

    #[test]
    fn a_login_held_by_an_account_or_an_earlier_create_gets_the_next_free_suffix() {
        let source = [
            hire("h1", "zlefevre"),
            hire("h2", "zlefevre"),
            hire("h3", "amartin"),
        ];
        // The account's login differs only by case and spaces: still taken.
        let target = [account("7", " ZLefevre "), account("8", "zlefevre3")];
        let got = outcome(&source, &target, &[], LoginTaken::Suffix);
        assert_eq!(
            got,
            vec![
                row("create", "h1", "zlefevre2"),
                row("create", "h2", "zlefevre4"),
                row("create", "h3", "amartin"),
            ]
        );
    }

    #[test]
    fn the_plan_shows_the_login_it_writes() {
        let source = [hire("h1", "zlefevre")];
        let target = [account("7", "zlefevre")];
        let policy = policy(LoginTaken::Suffix);
        let input = input(Side::people(&source), Side::people(&target), &[], &policy);
        let plan = plan(&input).unwrap();
        let text = plan.to_string();
        assert!(
            text.contains(r#"login: "zlefevre" -> "zlefevre2""#),
            "{text}"
        );
    }

    #[test]
    fn under_the_conflict_rule_a_taken_login_names_who_holds_it() {
        let source = [
            hire("h1", "zlefevre"),
            hire("h2", "ZLEFEVRE"),
            hire("h3", "amartin"),
        ];
        let target = [account("7", "amartin")];
        let got = outcome(&source, &target, &[], LoginTaken::Conflict);
        assert_eq!(
            got,
            vec![
                row("create", "h1", "zlefevre"),
                row(
                    "conflict",
                    "h2",
                    "login ZLEFEVRE is already written by the create of source person h1"
                ),
                row(
                    "conflict",
                    "h3",
                    "login amartin is already used by account 7"
                ),
            ]
        );
    }

    #[test]
    fn all_suffixes_taken_is_a_conflict_even_under_the_suffix_rule() {
        let mut target: Vec<Person> = (2..=MAX_SUFFIX)
            .map(|n| account(&alloc::format!("a{n}"), &alloc::format!("x{n}")))
            .collect();
        target.push(account("a1", "x"));
        let got = outcome(&[hire("h1", "x")], &target, &[], LoginTaken::Suffix);
        assert_eq!(
            got,
            vec![row(
                "conflict",
                "h1",
                "login x is already used by account a1"
            )]
        );
    }

    #[test]
    fn logins_of_accounts_left_out_of_the_plan_are_taken_too() {
        // A single-record run leaves out the accounts linked to people it
        // did not read; their logins still may not be given away.
        let source = [hire("h2", "zlefevre")];
        let others = ["ZLEFEVRE".to_string()];
        let policy = policy(LoginTaken::Suffix);
        let input = input(
            Side::people(&source),
            Side {
                other_logins: &others,
                ..Side::people(&[])
            },
            &[],
            &policy,
        );
        let plan = plan(&input).unwrap();
        assert_eq!(plan.create_login(0), Some("zlefevre2"));
        let conflict = Policy {
            login_taken: LoginTaken::Conflict,
            ..policy.clone()
        };
        let plan = crate::plan(&Input {
            policy: &conflict,
            ..input
        })
        .unwrap();
        let reason = plan.actions()[0].reason();
        assert_eq!(reason.code(), "login_taken");
        assert_eq!(
            plan.explain(&reason),
            "login zlefevre is already used by another account"
        );
    }

    #[test]
    fn a_create_that_does_not_write_the_login_is_left_alone() {
        let source = [hire("h1", "zlefevre")];
        let target = [account("7", "zlefevre")];
        let mut p = policy(LoginTaken::Conflict);
        p.owned.remove(&Field::Login.into());
        let input = input(Side::people(&source), Side::people(&target), &[], &p);
        let plan = plan(&input).unwrap();
        assert_eq!(plan.counts().get(crate::ActionKind::Create), 1);
        assert_eq!(plan.create_login(0), None);
    }
}
