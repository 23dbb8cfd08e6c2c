//! Single-record runs (`muster sync --only ID`, a webhook's record): reading
//! that record instead of the whole source and target.
//!
//! When the source declares `read-person`, the run reads the person and
//! their manager (the plan needs the manager to set the manager field) one
//! by one. When the target declares `read-account` and the person is
//! already linked, it reads their account and their manager's account the
//! same way; otherwise (no capability, an unlinked person who must be
//! correlated against every account, an account gone from the target) the
//! target is read in full. A source without `read-person` (every 0.1
//! plugin) makes the run read both sides in full, as before.
//!
//! The core plans from a **narrowed world** that is consistent on its own
//! terms: the links kept are exactly those of the people read, and the
//! accounts are those links' accounts plus, after a full target read, the
//! accounts no other link claims (the candidates for correlation). So no
//! linked account is without its person — nobody else can look like a
//! leaver — and an account linked to someone else can never be correlated
//! with this person. On top of that, [`super::Selection::Only`] keeps only
//! the actions about the record, exactly as a full read would.
//!
//! Groups (departments and target groups) are few and always read in full
//! when the flow syncs them.
//!
//! A narrowed target would make recovery judge a dead run's calls against
//! accounts it did not read: while the flow has unsettled journal entries,
//! a single-record run reads both sides in full (and recovery settles them).

use std::collections::HashSet;

use muster_core::{Link, Person};

use super::snapshot::{self, Snapshot};
use super::{Connected, EngineError, FlowSpec};
use crate::runtime::connector::{Connector, Records, Side};
use crate::runtime::{Capability, PluginError, PluginInstance};
use crate::store::Store;

/// What a single-record run plans from.
#[derive(Debug, Clone)]
pub(crate) struct Narrowed {
    pub source: Snapshot,
    pub target: Snapshot,
    pub links: Vec<Link>,
    pub group_links: Vec<Link>,
    /// Logins of the accounts left out of `target` (linked to people not
    /// read): a create must not take them ([`muster_core::login`]).
    pub other_logins: Vec<String>,
}

/// Reads for a run about source record `id`: `None` when it must read both
/// sides in full (see the module doc). `links` and `group_links` are the
/// flow's.
pub(crate) fn read(
    store: &Store,
    flow: &FlowSpec,
    plugins: Connected<'_>,
    id: &str,
    groups: bool,
    links: &[Link],
    group_links: &[Link],
) -> Result<Option<Narrowed>, EngineError> {
    let Connected { source, target } = plugins;
    if !reads_one(source, Side::Source) || has_unsettled(store, &flow.name)? {
        return Ok(None);
    }
    let source_err = |e| read_error("source", &flow.source, e);
    let target_err = |e| read_error("target", &flow.target, e);
    let mut src = Snapshot::default();
    let person = read_person(source, id, &mut src).map_err(source_err)?;
    let manager = match person.as_ref().and_then(manager_of) {
        Some(m) => read_person(source, m, &mut src).map_err(source_err)?,
        None => None,
    };
    // A held person (a value that could not be taken) goes on to the plan
    // as held: the plan says why their account is left alone.
    if person.is_none() && !src.held.iter().any(|h| h == id) {
        return Err(EngineError::UnknownRecord(id.to_owned()));
    }
    src.people = person.into_iter().chain(manager).collect();
    let ids: Vec<&str> = src
        .people
        .iter()
        .map(|p| p.id.as_str())
        .chain(src.held.iter().map(String::as_str))
        .collect();
    let kept = links_of(links, &ids);

    let mut other_logins = Vec::new();
    let mut tgt = match read_accounts(target, id, &kept).map_err(target_err)? {
        Some(accounts) => accounts,
        None => {
            let mut full = snapshot::read(target, Side::Target, false, None).map_err(target_err)?;
            let (kept_accounts, left_out) = unclaimed(full.people, links, &kept);
            full.people = kept_accounts;
            other_logins = left_out.into_iter().filter_map(|a| a.login).collect();
            full
        }
    };
    // Keep only the links whose account is in the narrowed target.
    let present: HashSet<&str> = tgt.people.iter().map(|p| p.id.as_str()).collect();
    let kept: Vec<Link> = kept
        .into_iter()
        .filter(|l| present.contains(l.target_id.as_str()))
        .collect();
    if groups {
        snapshot::read_groups(source, Side::Source, &mut src).map_err(source_err)?;
        snapshot::read_groups(target, Side::Target, &mut tgt).map_err(target_err)?;
    }
    Ok(Some(Narrowed {
        source: src,
        target: tgt,
        links: kept,
        group_links: group_links.to_vec(),
        other_logins,
    }))
}

/// Whether `plugin` declares the one-record read of `side`:
/// `read-person` (source) or `read-account` (target), contract 0.2.
fn reads_one(plugin: &PluginInstance, side: Side) -> bool {
    let capability = match side {
        Side::Source => Capability::ReadPerson,
        Side::Target => Capability::ReadAccount,
    };
    plugin.manifest().capabilities.contains(&capability)
}

/// One record of `side`, converted; its problems and held id go to `into`.
/// `None`: no such record, or the record is held (source side).
fn read_one(
    plugin: &mut PluginInstance,
    side: Side,
    id: &str,
    into: &mut Snapshot,
) -> Result<Option<Person>, PluginError> {
    let Records {
        people,
        held,
        problems,
        ..
    } = plugin.one(side, id)?;
    into.problems.extend(problems);
    into.held.extend(held);
    Ok(people.into_iter().next())
}

fn read_error(side: &'static str, connection: &str, source: PluginError) -> EngineError {
    EngineError::Read {
        side,
        connection: connection.to_owned(),
        source,
    }
}

fn has_unsettled(store: &Store, flow: &str) -> Result<bool, EngineError> {
    match store.unresolved_journal(flow) {
        Ok(entries) => Ok(!entries.is_empty()),
        Err(crate::store::StoreError::UnknownFlow(_)) => Ok(false),
        Err(e) => Err(e.into()),
    }
}

/// One person through `read-person`, converted (problems go to `into`).
fn read_person(
    source: &mut PluginInstance,
    id: &str,
    into: &mut Snapshot,
) -> Result<Option<Person>, PluginError> {
    read_one(source, Side::Source, id, into)
}

/// The accounts the kept links name, read one by one; `None` when the
/// target must be read in full: it cannot read one account, the person is
/// not linked (correlation needs every account), or their account is gone.
fn read_accounts(
    target: &mut PluginInstance,
    person: &str,
    kept: &[Link],
) -> Result<Option<Snapshot>, PluginError> {
    if !reads_one(target, Side::Target) || !kept.iter().any(|l| l.source_id == person) {
        return Ok(None);
    }
    let mut snap = Snapshot::default();
    for link in kept {
        match read_one(target, Side::Target, &link.target_id, &mut snap)? {
            Some(account) => snap.people.push(account),
            None if link.source_id == person => return Ok(None),
            // The manager's account is gone: the plan reports the manager
            // as out of scope, as it would after a full read.
            None => {}
        }
    }
    Ok(Some(snap))
}

/// The source id of a person's manager, when it is not the person.
fn manager_of(person: &Person) -> Option<&str> {
    person
        .manager_id
        .as_deref()
        .map(str::trim)
        .filter(|m| !m.is_empty() && *m != person.id.trim())
}

/// The links of the people read.
fn links_of(links: &[Link], ids: &[&str]) -> Vec<Link> {
    links
        .iter()
        .filter(|l| ids.contains(&l.source_id.as_str()))
        .cloned()
        .collect()
}

/// The accounts of a full target read that the narrowed world may hold:
/// those of the kept links and those no link claims. An account linked to
/// somebody not read is left out, so it can neither look like a leaver nor
/// be correlated with this person; it comes back second, as its login
/// still may not be given to a new account.
fn unclaimed(accounts: Vec<Person>, links: &[Link], kept: &[Link]) -> (Vec<Person>, Vec<Person>) {
    let ours: HashSet<&str> = kept.iter().map(|l| l.target_id.as_str()).collect();
    let claimed: HashSet<&str> = links
        .iter()
        .map(|l| l.target_id.as_str())
        .filter(|t| !ours.contains(t))
        .collect();
    accounts
        .into_iter()
        .partition(|a| !claimed.contains(a.id.as_str()))
}

#[cfg(test)]
mod tests {
    use muster_core::{Date, Input, Policy, Side};

    use super::*;

    fn person(id: &str, email: &str, manager: Option<&str>) -> Person {
        let mut p = Person::new(id);
        p.work_email = Some(email.into());
        p.manager_id = manager.map(str::to_owned);
        p.start_date = Date::from_ymd(2020, 1, 6).ok();
        p
    }

    fn plan_kinds(source: &[Person], target: &[Person], links: &[Link]) -> Vec<String> {
        let policy = Policy::default();
        let input = Input {
            source: Side::people(source),
            target: Side::people(target),
            links,
            prepared_links: None,
            group_links: &[],
            identities: &[],
            written_rows: &muster_core::rows::NOTHING_WRITTEN,
            policy: &policy,
            today: Date::from_ymd(2026, 3, 2).unwrap(),
        };
        let plan = muster_core::plan(&input).unwrap();
        plan.actions()
            .iter()
            .map(|a| plan.step(a).kind.name().to_owned())
            .collect()
    }

    #[test]
    fn the_manager_is_read_unless_it_is_the_person() {
        assert_eq!(manager_of(&person("1", "a@x", Some(" 2 "))), Some("2"));
        assert_eq!(manager_of(&person("1", "a@x", Some("1"))), None);
        assert_eq!(manager_of(&person("1", "a@x", Some(""))), None);
        assert_eq!(manager_of(&person("1", "a@x", None)), None);
    }

    #[test]
    fn only_the_links_of_the_people_read_are_kept() {
        let links = [
            Link::new("1", "a"),
            Link::new("2", "b"),
            Link::new("3", "c"),
        ];
        let kept = links_of(&links, &["1", "3"]);
        assert_eq!(kept, [Link::new("1", "a"), Link::new("3", "c")]);
    }

    #[test]
    fn accounts_linked_to_people_not_read_are_left_out() {
        let accounts = vec![
            person("a", "a@x", None),
            person("b", "b@x", None),
            person("free", "f@x", None),
        ];
        let links = [Link::new("1", "a"), Link::new("2", "b")];
        let kept = links_of(&links, &["1"]);
        let (kept_accounts, left_out) = unclaimed(accounts, &links, &kept);
        let ids: Vec<String> = kept_accounts.into_iter().map(|a| a.id).collect();
        assert_eq!(ids, ["a", "free"]);
        let left: Vec<String> = left_out.into_iter().map(|a| a.id).collect();
        assert_eq!(left, ["b"]);
    }

    /// The narrowed world plans nothing about anybody else: the other
    /// linked accounts are neither deactivated nor matched, where handing
    /// the core one person against every link would deactivate them all.
    #[test]
    fn a_narrowed_world_never_deactivates_anybody_else() {
        let accounts = vec![
            person("a", "ann@x", None),
            person("b", "bob@x", None),
            person("c", "new@x", None),
        ];
        let links = [
            Link::new("1", "a"),
            Link::new("2", "b"),
            Link::new("3", "c"),
        ];
        // Person 4 is new and shares an email with 3's account: that account
        // is taken, so it must not be linked to 4.
        let source = vec![person("4", "new@x", None)];
        let kept = links_of(&links, &["4"]);
        let (target, _) = unclaimed(accounts.clone(), &links, &kept);
        let kinds = plan_kinds(&source, &target, &kept);
        assert_eq!(kinds, ["create"]);
        // What the narrowing avoids: every other account planned away.
        let naive = plan_kinds(&source, &accounts, &links);
        assert_eq!(
            naive.iter().filter(|k| *k == "deactivate").count(),
            3,
            "{naive:?}"
        );
    }

    #[test]
    fn a_linked_person_is_planned_against_their_account_only() {
        let mut changed = person("1", "ann@x", None);
        changed.family_name = Some("Martin".into());
        let account = person("a", "ann@x", None);
        let links = [Link::new("1", "a"), Link::new("2", "b")];
        let kept = links_of(&links, &["1"]);
        let kinds = plan_kinds(&[changed], &[account], &kept);
        assert_eq!(kinds, ["update"]);
    }
}
