//! The planner: desired people + actual accounts + links → [`Plan`].
//!
//! # How it stays fast
//!
//! Everything the planner compares was hashed once, when the records were
//! read ([`Prepared`]): ids, manager references, correlation keys, the
//! fingerprint of the compared fields, and the dates. The two big sides are
//! joined through the link table with cache-conscious partitioned joins
//! ([`crate::join`]); after that every decision works on dense vectors
//! (`account_of`, `owner_of`, `planned`), so an unchanged, linked person
//! costs a few sequential reads, one fingerprint comparison, and no
//! allocation at all. The records themselves are only read for what changes.
//!
//! Correlation (matching unlinked people to existing accounts by employee
//! number or email) concerns only the few people without a link, so instead
//! of indexing a million accounts by every key, the planner indexes the
//! *small* side — the unlinked people — and streams the big side past it.
//!
//! # Order
//!
//! Actions come out in application order ([`ActionKind::phase`]: group
//! creations, renames, creates and links, updates and reactivations,
//! managers, memberships, deactivations) and then the reports (skips,
//! conflicts). Inside each phase they are sorted by id, so the plan does not
//! depend on the order the connectors returned the records in — except that
//! creates go managers first ([`crate::order`]: by depth in the manager
//! chain, then by id), so a new account's manager exists by the time the
//! account is created and can be sent with it.

use alloc::vec;
use alloc::vec::Vec;
use core::hash::{Hash, Hasher};

use hashbrown::HashMap;
use hashbrown::hash_map::Entry;

use crate::date::Date;
use crate::fingerprint::fields_equal;
use crate::join::{Key, NO_KEY, NO_MATCH};
use crate::model::{Field, FieldRef, Link, Person};
use crate::normalize::{Normalization, hash_normalized, normalized_eq};
use crate::plan::{
    Action, Breach, Counts, GroupRef, Input, Limit, MatchedBy, Plan, PlanError, Reason, Subject,
};
use crate::policy::{ActionKind, CorrelationKey, FieldSet, ManagerMatch, Policy};
use crate::prepare::{Prepared, PreparedLinks, Status, key_of};
use crate::read::Coverage;
use crate::rows::{self, RowProblem, RowSide};

type Map<K, V> = HashMap<K, V, foldhash::fast::FixedState>;

fn map<K, V>(capacity: usize) -> Map<K, V> {
    Map::with_capacity_and_hasher(capacity, foldhash::fast::FixedState::with_seed(0x5eed))
}

/// No account / no owner.
const NONE: u32 = u32::MAX;
/// `owner_of`: linked to a source id that is not in the (complete) source.
const VANISHED: u32 = u32::MAX - 1;
/// `owner_of`: linked to a source person excluded from planning — a
/// duplicate id, a held record ([`crate::Side::held`]), or a person absent
/// from a changes-only read: the account is left alone (no update,
/// deactivation or membership change) rather than mistaken for a leaver.
const EXCLUDED: u32 = u32::MAX - 2;
/// `planned`: the account is created by this plan.
const PLANNED: u32 = u32::MAX - 3;

/// Computes the plan for `input`. See the [crate docs](crate) for the rules.
pub fn plan<'a>(input: &Input<'a>) -> Result<Plan<'a>, PlanError> {
    if input.source.coverage == Coverage::Changes && input.policy.needs_full_source() {
        return Err(PlanError::IncompleteSource);
    }
    if input.target.coverage != Coverage::Full {
        return Err(PlanError::IncompleteTarget);
    }
    let (local_source, local_target);
    let source = match input.source.prepared {
        Some(p) if p.fits(input.source.people.len(), input.policy) => p,
        Some(_) => return Err(PlanError::StalePrepared { side: "source" }),
        None => {
            local_source = Prepared::new(input.source.people, input.policy);
            &local_source
        }
    };
    let target = match input.target.prepared {
        Some(p) if p.fits(input.target.people.len(), input.policy) => p,
        Some(_) => return Err(PlanError::StalePrepared { side: "target" }),
        None => {
            local_target = Prepared::new(input.target.people, input.policy);
            &local_target
        }
    };
    let mut r = Reconciler::new(input, source, target)?;
    r.join_links();
    r.people();
    r.correlate();
    r.managers();
    r.groups();
    r.vanished();
    Ok(r.finish())
}

/// Whom a person's account should report to.
#[derive(Clone, Copy)]
enum Manager {
    Nobody,
    /// A source person with an account after the plan.
    Person(usize),
    /// An account left alone this run (its person is held or not in a
    /// changes-only read).
    Account(u32),
}

/// Where a person stands on `today`.
#[derive(Debug, Clone, PartialEq)]
enum Life {
    Active,
    NoStart,
    NotYet(Date),
    Left(Reason),
    /// Left, but within the flow's grace period
    /// ([`Policy::deactivate_after_days`]): the account stays active until
    /// `on`, the first day it is deactivated.
    Grace {
        end: Date,
        on: Date,
    },
}

fn life(p: &Status, today: Date, policy: &Policy) -> Life {
    let grace = i32::from(policy.deactivate_after_days);
    // The end date first: it is the more telling reason, and HR sources
    // (Lucca) mark a person inactive *because* the end date has passed —
    // so an inactive leaver with an end date gets the grace period too.
    if let Some(end) = p.end
        && (end < today || (!p.active && grace > 0))
    {
        let on = end.add_days(grace + 1);
        return if today < on {
            Life::Grace { end, on }
        } else if end < today {
            Life::Left(Reason::EndDatePassed(end))
        } else {
            Life::Left(Reason::InactiveInSource)
        };
    }
    if !p.active {
        return Life::Left(Reason::InactiveInSource);
    }
    match p.start {
        None => Life::NoStart,
        Some(start) if start > today.add_days(i32::from(policy.pre_start_days)) => {
            Life::NotYet(start)
        }
        Some(_) => Life::Active,
    }
}

/// A correlation key's normalised text, hashable without allocating.
#[derive(Clone, Copy)]
struct NormKey<'a> {
    text: &'a str,
    how: Normalization,
}

impl Hash for NormKey<'_> {
    fn hash<H: Hasher>(&self, state: &mut H) {
        hash_normalized(self.text, self.how, state);
    }
}

impl PartialEq for NormKey<'_> {
    fn eq(&self, other: &Self) -> bool {
        normalized_eq(self.text, other.text, self.how)
    }
}

impl Eq for NormKey<'_> {}

struct Reconciler<'i, 'a> {
    input: &'i Input<'a>,
    desired: &'a [Person],
    actual: &'a [Person],
    policy: &'a Policy,
    compared: FieldSet,
    /// Per-record hashes of the source (`dp`) and target (`ap`).
    dp: &'i Prepared,
    ap: &'i Prepared,
    /// Source people whose id is not unique: excluded, reported.
    duplicate_id: Vec<bool>,
    /// desired index → linked account index (or NONE).
    account_of: Vec<u32>,
    /// actual index → owning desired index (or NONE / VANISHED / EXCLUDED).
    owner_of: Vec<u32>,
    /// desired index → its account after the plan: an index, PLANNED or NONE.
    planned: Vec<u32>,
    /// desired index → whether that account is active after the plan.
    active_after: Vec<bool>,
    /// Unlinked, active people to correlate or create.
    unlinked: Vec<u32>,
    /// Links that name an account the target does not have.
    broken: Vec<(u32, &'a str)>,
    /// Source id key → account, for linked people who are held or absent
    /// from a changes-only read: their accounts stay, so a present person's
    /// manager reference to them still resolves.
    retained: Map<Key, u32>,
    linked: usize,
    /// desired index → its manager's desired index (or `NO_MATCH`), when
    /// the flow owns managers: what [`crate::order`] orders creates by.
    manager_of: Vec<u32>,
    /// Actions by [`ActionKind::phase`].
    phases: [Vec<Action>; ActionKind::PHASES],
}

impl<'i, 'a> Reconciler<'i, 'a> {
    fn new(input: &'i Input<'a>, dp: &'i Prepared, ap: &'i Prepared) -> Result<Self, PlanError> {
        let (desired, actual) = (input.source.people, input.target.people);
        let too_large = |n: usize| n >= PLANNED as usize;
        if too_large(desired.len()) || too_large(actual.len()) || too_large(input.links.len()) {
            return Err(PlanError::TooLarge);
        }
        let policy = input.policy;
        Ok(Reconciler {
            input,
            desired,
            actual,
            policy,
            compared: policy.compared_fields(),
            dp,
            ap,
            duplicate_id: vec![false; desired.len()],
            account_of: vec![NONE; desired.len()],
            owner_of: vec![NONE; actual.len()],
            planned: vec![NONE; desired.len()],
            active_after: vec![false; desired.len()],
            unlinked: Vec::new(),
            broken: Vec::new(),
            retained: map(0),
            linked: 0,
            manager_of: Vec::new(),
            phases: Default::default(),
        })
    }

    fn report(&mut self, conflict: bool, subject: Subject, reason: Reason) {
        self.push(if conflict {
            Action::Conflict { subject, reason }
        } else {
            Action::Skip { subject, reason }
        });
    }

    /// Files `action` under its apply phase.
    fn push(&mut self, action: Action) {
        self.phases[action.kind().phase()].push(action);
    }

    /// Resolves every link to a (person, account) index pair, and finds
    /// duplicate source ids, with two partitioned joins.
    fn join_links(&mut self) {
        let links = self.input.links;
        let local;
        let keys = match self.input.prepared_links {
            Some(keys) if keys.fits(links) => keys,
            _ => {
                local = PreparedLinks::new(links);
                &local
            }
        };
        for &(first, later) in self.dp.id_index.duplicates() {
            self.duplicate_id[first as usize] = true;
            self.duplicate_id[later as usize] = true;
        }
        let mut held: Map<Key, ()> = map(self.input.source.held.len());
        for id in self.input.source.held {
            held.insert(key_of(Some(id)), ());
        }
        let person_of = self.dp.id_index.probe(&keys.source);
        let account_of_link = self.ap.id_index.probe(&keys.target);
        for (l, link) in links.iter().enumerate() {
            match (person_of[l], account_of_link[l]) {
                (NO_MATCH, NO_MATCH) => {}
                (di, NO_MATCH) => self.broken.push((di, link.target_id.as_str())),
                (NO_MATCH, ai) => {
                    if self.owner_of[ai as usize] == NONE {
                        self.linked += 1;
                        self.absent_owner(ai, keys.source[l], &held, link);
                    }
                }
                (di, ai) => {
                    let (d, a) = (di as usize, ai as usize);
                    if self.owner_of[a] != NONE || self.account_of[d] != NONE {
                        continue; // a second link for either end: the first wins
                    }
                    self.linked += 1;
                    if self.duplicate_id[d] {
                        self.owner_of[a] = EXCLUDED;
                    } else {
                        self.account_of[d] = ai;
                        self.owner_of[a] = di;
                    }
                }
            }
        }
    }

    /// The owner of account `a`, linked to a source id that is not among the
    /// people read: held (reported) or merely unchanged in a changes-only
    /// read, the account is retained; gone from a full read, it vanished.
    fn absent_owner(&mut self, a: u32, source: Key, held: &Map<Key, ()>, link: &'a Link) {
        let is_held = held.contains_key(&source);
        if !is_held && self.input.source.coverage == Coverage::Full {
            self.owner_of[a as usize] = VANISHED;
            return;
        }
        self.owner_of[a as usize] = EXCLUDED;
        self.retained.entry(source).or_insert(a);
        if is_held {
            let reason = Reason::SourceRecordUnusable(link.source_id.trim().into());
            self.report(false, Subject::Account(a as usize), reason);
        }
    }

    /// Decides every source person that has a link, and collects the rest.
    fn people(&mut self) {
        let today = self.input.today;
        for (di, target) in core::mem::take(&mut self.broken) {
            let d = di as usize;
            if self.account_of[d] == NONE && !self.duplicate_id[d] {
                self.account_of[d] = EXCLUDED;
                self.report(
                    true,
                    Subject::Person(d),
                    Reason::LinkedAccountMissing(target.into()),
                );
            }
        }
        for d in 0..self.desired.len() {
            if self.duplicate_id[d] {
                self.report(true, Subject::Person(d), Reason::DuplicateId);
                continue;
            }
            let state = life(&self.dp.status[d], today, self.policy);
            match self.account_of[d] {
                EXCLUDED => {}
                NONE => match state {
                    Life::Active => self.unlinked.push(d as u32),
                    // A start date gates creates; a flow that cannot create
                    // (a write-back) still matches the person to an account.
                    Life::NoStart if !self.policy.allowed.create => self.unlinked.push(d as u32),
                    Life::NoStart => self.report(false, Subject::Person(d), Reason::NoStartDate),
                    Life::NotYet(start) => {
                        self.report(false, Subject::Person(d), Reason::NotStartedYet(start))
                    }
                    // No account is made for a leaver, in grace or not.
                    Life::Left(_) | Life::Grace { .. } => {}
                },
                ai => self.linked_person(d, ai as usize, state),
            }
        }
    }

    /// Lifecycle and field sync for a person with an account.
    fn linked_person(&mut self, d: usize, a: usize, state: Life) {
        let account_active = self.ap.status[a].active;
        self.planned[d] = a as u32;
        let active_after = match state {
            Life::Left(reason) => {
                if account_active && self.policy.allowed.deactivate {
                    self.push(Action::Deactivate {
                        account: a,
                        person: Some(d),
                        reason,
                    });
                    false
                } else {
                    account_active
                }
            }
            Life::Active if !account_active => {
                if !self.policy.reactivate {
                    self.report(false, Subject::Person(d), Reason::ReactivationDisabled);
                    false
                } else if !self.policy.allowed.reactivate {
                    let reason = Reason::NotAllowed(ActionKind::Reactivate);
                    self.report(false, Subject::Person(d), reason);
                    false
                } else {
                    self.push(Action::Reactivate {
                        person: d,
                        account: a,
                    });
                    true
                }
            }
            Life::Grace { end, on } => {
                // The account stays as it is until `on`; only an active one
                // has a deactivation to announce.
                if account_active && self.policy.allowed.deactivate {
                    let reason = Reason::DeactivationPending { end, on };
                    self.report(false, Subject::Person(d), reason);
                }
                account_active
            }
            Life::Active | Life::NoStart | Life::NotYet(_) => account_active,
        };
        self.active_after[d] = active_after;
        if active_after && self.policy.allowed.update {
            self.update(d, a);
        }
    }

    /// Source wins on owned fields: an `Update` with the fields that differ.
    fn update(&mut self, d: usize, a: usize) {
        if self.dp.fingerprint[d] == self.ap.fingerprint[a] {
            return;
        }
        let (p, acc) = (&self.desired[d], &self.actual[a]);
        let mut changes = Vec::new();
        let mut problems = Vec::new();
        let mut not_written = Vec::new();
        for f in self.compared.canonical() {
            if !fields_equal(p, acc, &FieldRef::Canonical(f)) {
                changes.push(FieldRef::Canonical(f));
            }
        }
        for name in self.compared.custom() {
            let (want, have) = (p.custom.get(name.as_str()), acc.custom.get(name.as_str()));
            let equal = match (want, have, self.policy.row_keys.get(name)) {
                (None, None, _) => true,
                (_, _, Some(key)) => {
                    let written = self.input.written_rows.keys(&acc.id, name);
                    match rows::diff_values(name, key, want, have, written) {
                        Ok(diff) => {
                            for value in diff.not_written {
                                not_written.push(Reason::RowNotWritten {
                                    field: name.clone(),
                                    key: key.clone(),
                                    value,
                                });
                            }
                            diff.changes.is_empty()
                        }
                        Err(problem) => {
                            problems.push(problem);
                            true
                        }
                    }
                }
                _ => fields_equal(p, acc, &FieldRef::Custom(name.clone())),
            };
            if !equal {
                changes.push(FieldRef::Custom(name.clone()));
            }
        }
        for reason in not_written {
            self.report(true, Subject::Account(a), reason);
        }
        for problem in problems {
            self.row_problem(d, a, problem);
        }
        if !changes.is_empty() {
            self.push(Action::Update {
                person: d,
                account: a,
                changes,
            });
        }
    }

    /// A compound field whose rows cannot be compared by key: the record
    /// at fault is reported (a human fixes the data) and the field is left
    /// as it is; the person's other fields are still updated.
    fn row_problem(&mut self, d: usize, a: usize, problem: RowProblem) {
        let subject = match problem.side() {
            RowSide::Source => Subject::Person(d),
            RowSide::Target => Subject::Account(a),
        };
        self.report(true, subject, Reason::BadRows(problem));
    }

    /// Matches unlinked people to unlinked accounts, key by key, or plans
    /// their creation.
    fn correlate(&mut self) {
        if self.unlinked.is_empty() {
            return;
        }
        // Process people in id order so that who "wins" an account is
        // independent of input order.
        let desired = self.desired;
        self.unlinked
            .sort_unstable_by(|&x, &y| desired[x as usize].id.cmp(&desired[y as usize].id));
        let pending = core::mem::take(&mut self.unlinked);
        let mut done = vec![false; pending.len()];
        let mut claimed: Map<u32, ()> = map(pending.len());
        self.correlate_by_identity(&pending, &mut done, &mut claimed);
        // Whatever the keys, never create an account whose email another
        // account already uses (see `Policy::correlation_keys`).
        for (key, adopt) in self.policy.correlation_keys() {
            self.correlate_by(key, adopt, &pending, &mut done, &mut claimed);
        }
        for (i, &d) in pending.iter().enumerate() {
            if !done[i] {
                self.create(d as usize);
            }
        }
    }

    /// Matches pending people through another flow's links
    /// ([`Input::identities`]): a link whose *target* id is the person's id
    /// names, by its *source* id, the account the person is. A person whose
    /// named account is missing, or already linked or claimed, is left to
    /// the correlation keys, which report a taken key by name.
    fn correlate_by_identity(
        &mut self,
        pending: &[u32],
        done: &mut [bool],
        claimed: &mut Map<u32, ()>,
    ) {
        let identities = self.input.identities;
        if identities.is_empty() || !self.policy.allowed.link {
            return;
        }
        // The small side: pending people by id key.
        let mut by_id: Map<Key, u32> = map(pending.len());
        for (i, &d) in pending.iter().enumerate() {
            if self.dp.id[d as usize] != NO_KEY {
                by_id.insert(self.dp.id[d as usize], i as u32);
            }
        }
        let mut found: Vec<(u32, Key)> = identities
            .iter()
            .filter_map(|l| {
                let i = by_id.get(&key_of(Some(&l.target_id)))?;
                Some((*i, key_of(Some(&l.source_id))))
            })
            .collect();
        found.sort_unstable_by_key(|(i, _)| *i);
        found.dedup_by_key(|(i, _)| *i);
        let keys: Vec<Key> = found.iter().map(|(_, k)| *k).collect();
        let accounts = self.ap.id_index.probe(&keys);
        for (&(i, _), a) in found.iter().zip(accounts) {
            if a == NO_MATCH || self.owner_of[a as usize] != NONE || claimed.contains_key(&a) {
                continue;
            }
            let d = pending[i as usize] as usize;
            done[i as usize] = true;
            claimed.insert(a, ());
            self.push(Action::Link {
                person: d,
                account: a as usize,
                by: MatchedBy::Identity,
            });
            self.linked_person(d, a as usize, Life::Active);
        }
    }

    fn correlate_by(
        &mut self,
        key: CorrelationKey,
        adopt: bool,
        pending: &[u32],
        done: &mut [bool],
        claimed: &mut Map<u32, ()>,
    ) {
        let how = key.normalization();
        let same = |a: &Person, b: &Person| match (key.value(a), key.value(b)) {
            (Some(x), Some(y)) => normalized_eq(x, y, how),
            _ => false,
        };
        let (dkeys, akeys) = (self.dp.key(key), self.ap.key(key));
        // The small side: pending people with this key, by key hash.
        let mut index: Map<u64, u32> = map(pending.len());
        for (i, &d) in pending.iter().enumerate() {
            let h = dkeys[d as usize];
            if done[i] || h == 0 {
                continue;
            }
            // A look-alike key is neither matched nor used to create.
            if let Some(why) = self.dp.lookalike(key, d as usize) {
                done[i] = true;
                let reason = Reason::LookalikeKey {
                    key,
                    account: None,
                    why,
                };
                self.report(true, Subject::Person(d as usize), reason);
                continue;
            }
            // Two pending people with one key: the later (by id) is a
            // duplicate of the first; the first is caught by the scan.
            match index.entry(h) {
                Entry::Occupied(first) => {
                    let other = pending[*first.get() as usize] as usize;
                    if same(&self.desired[other], &self.desired[d as usize]) {
                        done[i] = true;
                        let reason = Reason::DuplicateInSource { key, other };
                        self.report(true, Subject::Person(d as usize), reason);
                    }
                }
                Entry::Vacant(slot) => {
                    slot.insert(i as u32);
                }
            }
        }
        if index.is_empty() {
            return;
        }
        // Duplicates in the source: stream every source key past it.
        let mut duplicate_of: Map<u32, u32> = map(0);
        for (d, &h) in dkeys.iter().enumerate() {
            if h == 0 {
                continue;
            }
            if let Some(&i) = index.get(&h) {
                let first = pending[i as usize] as usize;
                let p = &self.desired[d];
                if first != d && same(&self.desired[first], p) {
                    // Name the duplicate with the smallest id, whatever the order.
                    let slot = duplicate_of.entry(i).or_insert(d as u32);
                    if p.id < self.desired[*slot as usize].id {
                        *slot = d as u32;
                    }
                }
            }
        }
        // Candidate accounts: stream every account key past it.
        let mut candidates: Vec<(u32, u32)> = Vec::new();
        for (a, &h) in akeys.iter().enumerate() {
            if h == 0 {
                continue;
            }
            if let Some(&i) = index.get(&h)
                && same(&self.desired[pending[i as usize] as usize], &self.actual[a])
            {
                candidates.push((i, a as u32));
            }
        }
        candidates.sort_unstable();
        let mut dups: Vec<(u32, u32)> = duplicate_of.into_iter().collect();
        dups.sort_unstable();
        let mut next_dup = dups.iter().peekable();
        let mut next_cand = 0;
        let mut entries: Vec<u32> = index.into_values().collect();
        entries.sort_unstable();
        for i in entries {
            let d = pending[i as usize] as usize;
            let start = next_cand;
            while next_cand < candidates.len() && candidates[next_cand].0 == i {
                next_cand += 1;
            }
            let found = &candidates[start..next_cand];
            while next_dup.peek().is_some_and(|(j, _)| *j < i) {
                next_dup.next();
            }
            let duplicate = next_dup.peek().filter(|(j, _)| *j == i).map(|(_, o)| *o);
            // An account linked to someone else names the problem best;
            // otherwise a duplicate in the source blocks any match.
            let taken = matches!(found, [(_, a)] if self.owner_of[*a as usize] != NONE);
            if let (Some(other), false) = (duplicate, taken) {
                done[i as usize] = true;
                let reason = Reason::DuplicateInSource {
                    key,
                    other: other as usize,
                };
                self.report(true, Subject::Person(d), reason);
                continue;
            }
            match found {
                [] => {}
                [(_, a)] => {
                    done[i as usize] = true;
                    let a = *a as usize;
                    if let Some(why) = self.ap.lookalike(key, a) {
                        let reason = Reason::LookalikeKey {
                            key,
                            account: Some(a),
                            why,
                        };
                        self.report(true, Subject::Person(d), reason);
                    } else if self.owner_of[a] != NONE
                        || claimed.contains_key(&(a as u32))
                        || !adopt
                    {
                        let reason = Reason::KeyTaken { key, account: a };
                        self.report(true, Subject::Person(d), reason);
                    } else if !self.policy.allowed.link {
                        let reason = Reason::AlreadyExists { key, account: a };
                        self.report(false, Subject::Person(d), reason);
                    } else {
                        claimed.insert(a as u32, ());
                        self.push(Action::Link {
                            person: d,
                            account: a,
                            by: MatchedBy::Key(key),
                        });
                        self.linked_person(d, a, Life::Active);
                    }
                }
                many => {
                    done[i as usize] = true;
                    let reason = Reason::Ambiguous {
                        key,
                        candidates: many.len(),
                    };
                    self.report(true, Subject::Person(d), reason);
                }
            }
        }
    }

    fn create(&mut self, d: usize) {
        if !self.policy.allowed.create {
            self.report(false, Subject::Person(d), Reason::NoMatch);
            return;
        }
        let p = &self.desired[d];
        if let Some(missing) = self
            .policy
            .required_on_create
            .iter()
            .find(|f| fields_equal(p, &Person::default(), f))
        {
            self.report(false, Subject::Person(d), Reason::MissingField(missing));
            return;
        }
        self.push(Action::Create { person: d });
        self.planned[d] = PLANNED;
        self.active_after[d] = true;
    }

    /// `SetManager` where the manager's account differs from the one the
    /// person's account points at (managers created in this plan included).
    /// Setting the manager of an account this plan creates is part of the
    /// create: a flow that may not update (an inbound, create-only flow)
    /// still sets it, and touches no other account's manager.
    fn managers(&mut self) {
        if !self.policy.owned.has(Field::ManagerId) {
            return;
        }
        let update = self.policy.allowed.update;
        let manager_of = self.dp.id_index.probe(&self.dp.manager);
        self.manager_of.clone_from(&manager_of);
        let by_email = match self.policy.manager_match {
            ManagerMatch::WorkEmail => self.accounts_by_work_email(),
            ManagerMatch::SourceId => map(0),
        };
        // Compared through the prepared id keys: no record is touched unless
        // it must be reported.
        for (d, &manager) in manager_of.iter().enumerate() {
            let acct = self.planned[d];
            if acct == NONE || !self.active_after[d] || (!update && acct != PLANNED) {
                continue;
            }
            let want = self.wanted_manager(d, manager).or_else(|| {
                let reference = self.desired[d].manager_id.as_deref()?;
                let how = CorrelationKey::WorkEmail.normalization();
                match by_email.get(&NormKey {
                    text: reference,
                    how,
                }) {
                    Some(&a) if a != NONE => Some(Manager::Account(a)),
                    _ => None,
                }
            });
            let Some(want) = want else {
                let mid = self.desired[d].manager_id.as_deref().unwrap_or_default();
                let reason = Reason::ManagerOutOfScope(mid.trim().into());
                self.report(false, Subject::Person(d), reason);
                continue;
            };
            let current = match acct {
                PLANNED => NO_KEY,
                a => self.ap.manager[a as usize],
            };
            let is = |a: u32| current != NO_KEY && self.ap.id[a as usize] == current;
            let (manager, manager_account) = match want {
                Manager::Nobody if current == NO_KEY => continue,
                Manager::Nobody => (None, None),
                Manager::Person(m) => match self.planned[m] {
                    PLANNED => (Some(m), None),
                    ma if is(ma) => continue,
                    ma => (Some(m), Some(ma as usize)),
                },
                Manager::Account(a) if is(a) => continue,
                Manager::Account(a) => (None, Some(a as usize)),
            };
            self.push(Action::SetManager {
                person: d,
                account: (acct != PLANNED).then_some(acct as usize),
                manager,
                manager_account,
            });
        }
    }

    /// [`ManagerMatch::WorkEmail`]: the active target accounts by work email
    /// (normalised as the correlation key is); `NONE` where several share
    /// one. A deactivated account (a former employee) manages nobody new.
    fn accounts_by_work_email(&self) -> Map<NormKey<'a>, u32> {
        let how = CorrelationKey::WorkEmail.normalization();
        let mut index: Map<NormKey<'a>, u32> = map(self.actual.len());
        for (a, account) in self.actual.iter().enumerate().filter(|(_, a)| a.active) {
            let Some(text) = account
                .work_email
                .as_deref()
                .filter(|t| !t.trim().is_empty())
            else {
                continue;
            };
            index
                .entry(NormKey { text, how })
                .and_modify(|v| *v = NONE)
                .or_insert(a as u32);
        }
        index
    }

    /// Who person `d`'s manager should be: nobody, a planned person, or the
    /// retained account of a linked manager who is held or absent from a
    /// changes-only read. `None`: the manager has no account.
    fn wanted_manager(&self, d: usize, manager: u32) -> Option<Manager> {
        let key = self.dp.manager[d];
        if key == NO_KEY {
            return Some(Manager::Nobody);
        }
        let m = manager as usize;
        if manager != NO_MATCH && !self.duplicate_id[m] && self.planned[m] != NONE {
            return Some(Manager::Person(m));
        }
        if manager == NO_MATCH {
            return self.retained.get(&key).map(|&a| Manager::Account(a));
        }
        None
    }

    /// One owned group per source department: create, rename, membership.
    fn groups(&mut self) {
        if !self.policy.sync_groups {
            return;
        }
        let (sgroups, tgroups) = (self.input.source.groups, self.input.target.groups);
        // Groups are matched by the same id keys as people (trimmed ids), so
        // a group link resolves exactly like a person link.
        let index = |groups: &[crate::model::Group]| {
            let mut by_key: Map<Key, u32> = map(groups.len());
            for (i, g) in groups.iter().enumerate() {
                by_key.entry(key_of(Some(&g.id))).or_insert(i as u32);
            }
            by_key
        };
        let (sg_by_key, tg_by_key) = (index(sgroups), index(tgroups));
        let mut group_of = vec![NONE; sgroups.len()];
        let mut owned = vec![false; tgroups.len()];
        for link in self.input.group_links {
            let t = tg_by_key.get(&key_of(Some(&link.target_id))).copied();
            if let Some(t) = t {
                owned[t as usize] = true;
            }
            if let (Some(&s), Some(t)) = (sg_by_key.get(&key_of(Some(&link.source_id))), t)
                && group_of[s as usize] == NONE
            {
                group_of[s as usize] = t;
            }
        }
        let mut unowned_by_name: Map<NormKey<'a>, u32> = map(tgroups.len());
        for (i, g) in tgroups.iter().enumerate() {
            if !owned[i] {
                let key = NormKey {
                    text: g.name.as_str(),
                    how: Normalization::TrimFold,
                };
                let slot = unowned_by_name.entry(key).or_insert(i as u32);
                if g.id < tgroups[*slot as usize].id {
                    *slot = i as u32;
                }
            }
        }
        // Where each department's members go: Existing(t) or Planned(s).
        let mut target_of: Vec<Option<GroupRef>> = vec![None; sgroups.len()];
        for (s, g) in sgroups.iter().enumerate() {
            match group_of[s] {
                NONE => {
                    let key = NormKey {
                        text: g.name.as_str(),
                        how: Normalization::TrimFold,
                    };
                    if let Some(&t) = unowned_by_name.get(&key) {
                        let reason = Reason::GroupNameTaken(t as usize);
                        self.report(true, Subject::Department(s), reason);
                    } else {
                        self.push(Action::CreateGroup { group: s });
                        target_of[s] = Some(GroupRef::Planned(s));
                    }
                }
                t => {
                    let t = t as usize;
                    if !crate::recover::group_name_matches(&tgroups[t].name, &g.name) {
                        self.push(Action::RenameGroup {
                            group: s,
                            target: t,
                        });
                    }
                    target_of[s] = Some(GroupRef::Existing(t));
                }
            }
        }
        // Each person's group after the plan (only accounts active after it).
        let mut group_of_person: Vec<Option<GroupRef>> = vec![None; self.desired.len()];
        for (d, key) in self.dp.department.iter().enumerate() {
            if self.planned[d] == NONE || !self.active_after[d] || *key == NO_KEY {
                continue;
            }
            if let Some(&s) = sg_by_key.get(key) {
                group_of_person[d] = target_of[s as usize];
            }
        }
        let mut present = vec![false; self.desired.len()];
        // Group members → accounts (prepared with the snapshot, or joined now).
        let local;
        let member_accounts = match self.ap.members_of(tgroups) {
            Some(members) => members,
            None => {
                local = self.ap.resolve_members(tgroups);
                &local
            }
        };
        let mut next_member = 0;
        for (t, g) in tgroups.iter().enumerate() {
            let accounts = &member_accounts[next_member..next_member + g.members.len()];
            next_member += g.members.len();
            if !owned[t] {
                continue;
            }
            let mut remove = Vec::new();
            for (m, &a) in accounts.iter().enumerate() {
                let owner = (a != NO_MATCH).then(|| self.owner_of[a as usize]);
                match owner {
                    // Its person is held, absent from a changes-only read
                    // or a duplicate: left alone.
                    Some(EXCLUDED) => {}
                    Some(d)
                        if (d as usize) < self.desired.len()
                            && group_of_person[d as usize] == Some(GroupRef::Existing(t))
                            && !present[d as usize] =>
                    {
                        present[d as usize] = true;
                    }
                    _ => remove.push(m),
                }
            }
            if !remove.is_empty() {
                self.push(Action::RemoveMembers {
                    group: t,
                    members: remove,
                });
            }
        }
        let mut adds: Vec<(GroupRef, usize)> = group_of_person
            .iter()
            .enumerate()
            .filter_map(|(d, g)| g.filter(|_| !present[d]).map(|g| (g, d)))
            .collect();
        let order = |g: &GroupRef| match *g {
            GroupRef::Existing(t) => (0, t),
            GroupRef::Planned(s) => (1, s),
        };
        adds.sort_unstable_by_key(|(g, d)| (order(g), *d));
        for chunk in adds.chunk_by(|x, y| x.0 == y.0) {
            self.push(Action::AddMembers {
                group: chunk[0].0,
                members: chunk.iter().map(|(_, d)| *d).collect(),
            });
        }
    }

    /// Linked accounts whose person is gone from the complete source.
    fn vanished(&mut self) {
        if !self.policy.allowed.deactivate {
            return;
        }
        for (a, status) in self.ap.status.iter().enumerate() {
            if self.owner_of[a] == VANISHED && status.active {
                self.push(Action::Deactivate {
                    account: a,
                    person: None,
                    reason: Reason::VanishedFromSource,
                });
            }
        }
    }

    fn finish(mut self) -> Plan<'a> {
        let input = *self.input;
        let (src, tgt) = (input.source, input.target);
        // Sort each phase by the ids it concerns, so the plan does not depend
        // on input order.
        let key = |a: &Action| -> (&'a str, u8, &'a str) {
            let sp = |i: usize| src.people[i].id.as_str();
            let tp = |i: usize| tgt.people[i].id.as_str();
            let kind = a.kind() as u8;
            match a {
                Action::CreateGroup { group } | Action::RenameGroup { group, .. } => {
                    (src.groups[*group].id.as_str(), kind, "")
                }
                Action::Create { person }
                | Action::Link { person, .. }
                | Action::Update { person, .. }
                | Action::Reactivate { person, .. }
                | Action::SetManager { person, .. } => (sp(*person), kind, ""),
                Action::AddMembers { group, .. } => match group {
                    GroupRef::Existing(t) => (tgt.groups[*t].id.as_str(), kind, ""),
                    GroupRef::Planned(s) => ("", kind, src.groups[*s].id.as_str()),
                },
                Action::RemoveMembers { group, .. } => (tgt.groups[*group].id.as_str(), kind, ""),
                Action::Deactivate { account, .. } => (tp(*account), kind, ""),
                Action::Skip { subject, .. } | Action::Conflict { subject, .. } => match subject {
                    Subject::Person(p) => (sp(*p), kind, ""),
                    Subject::Account(a) => ("", kind, tp(*a)),
                    Subject::Department(g) => ("", kind, src.groups[*g].id.as_str()),
                },
            }
        };
        let mut actions = Vec::with_capacity(self.phases.iter().map(Vec::len).sum());
        for phase in &mut self.phases {
            phase.sort_by(|x, y| key(x).cmp(&key(y)));
            for action in phase.iter_mut() {
                sort_members(action, src.people, tgt.groups);
            }
            actions.append(phase);
        }
        // Logins are settled in id order (who keeps a contested login does
        // not depend on the org chart); then the creates go managers first.
        let logins = crate::login::resolve(&mut actions, src.people, tgt, self.policy);
        self.order_creates(&mut actions);
        let mut counts = Counts::default();
        for a in &actions {
            counts.add(a.kind());
        }
        let breaches = evaluate_guard(self.policy, &counts, self.linked);
        Plan {
            input,
            actions,
            counts,
            breaches,
            linked: self.linked,
            accounts_by_id: core::cell::OnceCell::new(),
            logins,
            undoes: None,
        }
    }
}

impl Reconciler<'_, '_> {
    /// Puts the creates managers first ([`crate::order`]), in the places
    /// the creates already hold: the rest of the plan keeps its order.
    fn order_creates(&self, actions: &mut [Action]) {
        if self.manager_of.is_empty() {
            return;
        }
        let (slots, mut creates): (Vec<usize>, Vec<usize>) = actions
            .iter()
            .enumerate()
            .filter_map(|(i, a)| match a {
                Action::Create { person } => Some((i, *person)),
                _ => None,
            })
            .unzip();
        let manager_of = &self.manager_of;
        let people = self.desired;
        crate::order::managers_first(
            &mut creates,
            people.len(),
            |p| match manager_of.get(p) {
                Some(&m) if m != NO_MATCH && !self.duplicate_id[m as usize] => Some(m as usize),
                _ => None,
            },
            |p| people[p].id.as_str(),
        );
        for (slot, person) in slots.into_iter().zip(creates) {
            actions[slot] = Action::Create { person };
        }
    }
}

fn sort_members(action: &mut Action, people: &[Person], groups: &[crate::model::Group]) {
    match action {
        Action::AddMembers { members, .. } => {
            members.sort_unstable_by(|x, y| people[*x].id.cmp(&people[*y].id))
        }
        Action::RemoveMembers { group, members } => {
            let g = &groups[*group];
            members.sort_unstable_by(|x, y| g.members[*x].cmp(&g.members[*y]))
        }
        _ => {}
    }
}

/// The guard thresholds `counts` exceeds, given `linked` accounts.
pub fn evaluate_guard(policy: &Policy, counts: &Counts, linked: usize) -> Vec<Breach> {
    let mut breaches = Vec::new();
    for &(kind, t) in &policy.guard.thresholds {
        let count = counts.get(kind);
        if let Some(max) = t.max
            && count > max
        {
            breaches.push(Breach {
                kind,
                count,
                limit: Limit::Max(max),
            });
        }
        if let Some(max_ratio) = t.max_ratio
            && count >= t.ratio_from
            && f64::from(count) > max_ratio * linked as f64
        {
            breaches.push(Breach {
                kind,
                count,
                limit: Limit::Ratio { max_ratio, linked },
            });
        }
    }
    breaches
}
