//! Per-record hashes, computed once when records are read.
//!
//! Planning a million people must not re-hash a million ids, emails and
//! field sets every time. [`Prepared`] holds, for each record of one side:
//!
//! - the **fingerprint** of the fields the policy compares (change detection
//!   with one integer comparison, see [`crate::fingerprint`]);
//! - a 128-bit **id key** and **manager key** for the partitioned joins
//!   (see [`crate::join`]);
//! - a 64-bit hash of each normalised **correlation key** (employee number,
//!   work email, personal email, login), so matching unlinked people streams
//!   over dense integers instead of strings; hits are verified on the text;
//! - which records have a **look-alike** correlation key (see
//!   [`crate::normalize::lookalike`]), found here, once; the list is empty
//!   (no allocation) for ASCII data;
//! - a 128-bit key of the **department** id;
//! - optionally ([`Prepared::with_groups`]), which of the side's records
//!   each group member is: membership is a property of the target snapshot
//!   alone, so it is joined once, when the snapshot is read.
//!
//! The host computes it when a connector's read completes and may reuse it
//! for every plan of the same policy; without it, [`plan`](crate::plan())
//! prepares both sides itself (same result, more time).

use alloc::vec::Vec;
use core::hash::{BuildHasher, Hasher};

use crate::date::Date;
use crate::fingerprint::{fingerprint, set_id};
use crate::join::{Index, Key, NO_KEY};
use crate::model::{Group, Link, Person};
use crate::normalize::{Lookalike, hash_normalized, lookalike, trim};
use crate::policy::{CorrelationKey, Policy};

const SEED_A: u64 = 0x0123_4567_89ab_cdef;
const SEED_B: u64 = 0xfedc_ba98_7654_3210;
const SEED_K: u64 = 0x6b65_7973_6b65_7973;

/// The 128-bit join key of an id (or id reference); [`NO_KEY`] for none.
pub(crate) fn key_of(id: Option<&str>) -> Key {
    let Some(id) = id.map(trim).filter(|t| !t.is_empty()) else {
        return NO_KEY;
    };
    let a = foldhash::fast::FixedState::with_seed(SEED_A).hash_one(id);
    let b = foldhash::fast::FixedState::with_seed(SEED_B).hash_one(id);
    if (a, b) == NO_KEY { (0, 1) } else { (a, b) }
}

/// The hash of a normalised correlation key; 0 for none.
#[cfg(test)]
pub(crate) fn correlation_hash(key: CorrelationKey, p: &Person) -> u64 {
    key.value(p).map_or(0, |text| text_hash(key, text))
}

/// The hash of `text` normalised as `key` compares it; never 0.
fn text_hash(key: CorrelationKey, text: &str) -> u64 {
    let mut h = foldhash::fast::FixedState::with_seed(SEED_K).build_hasher();
    hash_normalized(text, key.normalization(), &mut h);
    h.finish().max(1)
}

/// A record's status and dates.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Status {
    pub active: bool,
    pub start: Option<Date>,
    pub end: Option<Date>,
}

/// Join keys of the link table, computed when the links are loaded.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PreparedLinks {
    pub(crate) source: Vec<Key>,
    pub(crate) target: Vec<Key>,
}

impl PreparedLinks {
    pub fn new(links: &[Link]) -> PreparedLinks {
        PreparedLinks {
            source: links.iter().map(|l| key_of(Some(&l.source_id))).collect(),
            target: links.iter().map(|l| key_of(Some(&l.target_id))).collect(),
        }
    }

    /// Whether this was prepared for `links`: same length, and the first and
    /// last links hash alike (a cheap guard against handing in another set).
    pub fn fits(&self, links: &[Link]) -> bool {
        let ends = |i: usize| {
            self.source[i] == key_of(Some(&links[i].source_id))
                && self.target[i] == key_of(Some(&links[i].target_id))
        };
        self.source.len() == links.len() && (links.is_empty() || (ends(0) && ends(links.len() - 1)))
    }
}

/// Per-record hashes of one side, for one policy. See the module docs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Prepared {
    set_id: u64,
    pub(crate) fingerprint: Vec<u64>,
    pub(crate) id: Vec<Key>,
    /// The ids, partitioned for joins.
    pub(crate) id_index: Index,
    pub(crate) manager: Vec<Key>,
    pub(crate) department: Vec<Key>,
    /// For every group member (flattened in group order), the index of its
    /// record or `NO_MATCH`; with each group's member count, to check they
    /// fit the groups planned.
    pub(crate) members: Option<(Vec<usize>, Vec<u32>)>,
    /// What date gating needs, dense, so the planner's main pass never
    /// touches the (large) records themselves.
    pub(crate) status: Vec<Status>,
    /// Indexed by `CorrelationKey as usize`.
    pub(crate) keys: [Vec<u64>; 4],
    /// Per key (same indexing), the records whose key is a look-alike, by
    /// ascending index, with why.
    pub(crate) lookalikes: [Vec<(u32, Lookalike)>; 4],
}

const KEYS: [CorrelationKey; 4] = [
    CorrelationKey::EmployeeNumber,
    CorrelationKey::WorkEmail,
    CorrelationKey::PersonalEmail,
    CorrelationKey::Login,
];

impl Prepared {
    /// Hashes `people` for plans made with `policy`.
    ///
    /// One pass over the records: each is read once, while it is in cache,
    /// and everything the planner needs of it is computed then (a million
    /// records are hundreds of megabytes; a pass per hash would stream them
    /// from memory ten times).
    pub fn new(people: &[Person], policy: &Policy) -> Prepared {
        let fields = policy.compared_fields();
        let n = people.len();
        let mut prepared = Prepared {
            set_id: set_id(&fields),
            fingerprint: Vec::with_capacity(n),
            id_index: Index::new(&[]),
            id: Vec::with_capacity(n),
            manager: Vec::with_capacity(n),
            department: Vec::with_capacity(n),
            members: None,
            status: Vec::with_capacity(n),
            keys: KEYS.map(|_| Vec::with_capacity(n)),
            lookalikes: KEYS.map(|_| Vec::new()),
        };
        for (i, p) in people.iter().enumerate() {
            prepared.push(i, p, &fields);
        }
        prepared.id_index = Index::new(&prepared.id);
        prepared
    }

    /// Record `i`'s hashes, appended.
    fn push(&mut self, i: usize, p: &Person, fields: &crate::policy::FieldSet) {
        self.fingerprint.push(fingerprint(p, fields));
        self.id.push(key_of(Some(&p.id)));
        self.manager.push(key_of(p.manager_id.as_deref()));
        self.department.push(key_of(p.department_id.as_deref()));
        self.status.push(Status {
            active: p.active,
            start: p.start_date,
            end: p.end_date,
        });
        for (k, key) in KEYS.into_iter().enumerate() {
            let value = key.value(p);
            self.keys[k].push(value.map_or(0, |text| text_hash(key, text)));
            if let Some(why) = value.and_then(lookalike) {
                self.lookalikes[k].push((i as u32, why));
            }
        }
    }

    /// Whether this was prepared for `len` records under `policy`.
    pub fn fits(&self, len: usize, policy: &Policy) -> bool {
        self.id.len() == len && self.set_id == set_id(&policy.compared_fields())
    }

    pub(crate) fn key(&self, key: CorrelationKey) -> &[u64] {
        &self.keys[key as usize]
    }

    /// Why record `i`'s `key` is a look-alike, if it is.
    pub(crate) fn lookalike(&self, key: CorrelationKey, i: usize) -> Option<Lookalike> {
        let list = &self.lookalikes[key as usize];
        let found = list.binary_search_by_key(&i, |(r, _)| *r as usize).ok()?;
        Some(list[found].1)
    }

    /// Resolves the members of `groups` (the same groups the plan gets) to
    /// this side's records.
    pub fn with_groups(mut self, groups: &[Group]) -> Prepared {
        let counts = groups.iter().map(|g| g.members.len()).collect();
        self.members = Some((counts, self.resolve_members(groups)));
        self
    }

    /// For every member of `groups`, flattened, its record index or
    /// `NO_MATCH`.
    pub(crate) fn resolve_members(&self, groups: &[Group]) -> Vec<u32> {
        let keys: Vec<Key> = groups
            .iter()
            .flat_map(|g| g.members.iter().map(|m| key_of(Some(m))))
            .collect();
        self.id_index.probe(&keys)
    }

    /// The resolved members, when prepared for exactly these groups.
    pub(crate) fn members_of(&self, groups: &[Group]) -> Option<&[u32]> {
        let (counts, members) = self.members.as_ref()?;
        let fits = counts.len() == groups.len()
            && counts
                .iter()
                .zip(groups)
                .all(|(n, g)| *n == g.members.len());
        fits.then_some(members.as_slice())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::Field;

    #[test]
    fn prepared_knows_its_policy_and_size() {
        let people = [Person::new("1")];
        let policy = Policy::default();
        let prepared = Prepared::new(&people, &policy);
        assert!(prepared.fits(1, &policy));
        assert!(!prepared.fits(2, &policy));
        let mut other = policy.clone();
        other.owned.remove(&Field::JobTitle.into());
        assert!(!prepared.fits(1, &other));
    }

    #[test]
    fn keys_ignore_surrounding_space_and_absence_is_no_key() {
        assert_eq!(key_of(Some(" 42 ")), key_of(Some("42")));
        assert_ne!(key_of(Some("42")), key_of(Some("43")));
        assert_eq!(key_of(Some("  ")), NO_KEY);
        assert_eq!(key_of(None), NO_KEY);
        let a = Person {
            work_email: Some(" Ana@X.fr".into()),
            ..Person::new("1")
        };
        let b = Person {
            work_email: Some("ana@x.fr".into()),
            ..Person::new("2")
        };
        let k = CorrelationKey::WorkEmail;
        assert_eq!(correlation_hash(k, &a), correlation_hash(k, &b));
        assert_eq!(correlation_hash(CorrelationKey::Login, &a), 0);
        assert_eq!(
            key_of(Some(" d1")),
            Prepared::new(
                &[Person {
                    department_id: Some("d1".into()),
                    ..Person::new("x")
                }],
                &Policy::default()
            )
            .department[0]
        );
    }
}
