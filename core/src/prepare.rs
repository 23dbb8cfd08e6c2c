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
//! The host computes it **page by page as a connector's read delivers
//! them** ([`Preparer`]: hashing one page while the plugin waits on the
//! network for the next), and may reuse it for every plan of the same
//! policy; without it, [`plan`](crate::plan()) prepares both sides itself
//! (same result, more time). [`Prepared::new`] is the all-at-once form: one
//! [`Preparer`] fed one slice.
//!
//! Every per-record hash depends on its record alone, so pages may be cut
//! anywhere: what depends on *all* records (the partitioned id index, in
//! which a duplicate id is found whatever page its twin came in) is built
//! once, by [`Preparer::finish`].

use alloc::vec::Vec;
use core::hash::{BuildHasher, Hasher};

use crate::date::Date;
use crate::fingerprint::{fingerprint, set_id};
use crate::join::{Index, Key, NO_KEY};
use crate::model::{Group, Link, Person};
use crate::normalize::{Lookalike, hash_normalized, lookalike, trim};
use crate::policy::{CorrelationKey, FieldSet, Policy};

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
    /// Hashes `people` for plans made with `policy`, all at once: the same
    /// as a [`Preparer`] given `people` in any number of pages.
    ///
    /// One pass over the records: each is read once, while it is in cache,
    /// and everything the planner needs of it is computed then (a million
    /// records are hundreds of megabytes; a pass per hash would stream them
    /// from memory ten times).
    pub fn new(people: &[Person], policy: &Policy) -> Prepared {
        let mut preparer = Preparer::with_capacity(policy, people.len());
        preparer.push(people);
        preparer.finish()
    }

    /// An empty preparation with room for `n` records.
    fn with_capacity(set_id: u64, n: usize) -> Prepared {
        Prepared {
            set_id,
            fingerprint: Vec::with_capacity(n),
            id_index: Index::new(&[]),
            id: Vec::with_capacity(n),
            manager: Vec::with_capacity(n),
            department: Vec::with_capacity(n),
            members: None,
            status: Vec::with_capacity(n),
            keys: KEYS.map(|_| Vec::with_capacity(n)),
            lookalikes: KEYS.map(|_| Vec::new()),
        }
    }

    /// Record `i`'s hashes, appended.
    fn push(&mut self, i: usize, p: &Person, fields: &FieldSet) {
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

    /// Keeps the records for which `keep[i]` is true, in order, renumbering
    /// the look-alike lists. Only before the id index is built.
    fn retain(&mut self, keep: &[bool]) {
        fn filter<T: Copy>(v: &mut Vec<T>, keep: &[bool]) {
            let mut i = 0;
            v.retain(|_| {
                i += 1;
                keep[i - 1]
            });
        }
        filter(&mut self.fingerprint, keep);
        filter(&mut self.id, keep);
        filter(&mut self.manager, keep);
        filter(&mut self.department, keep);
        filter(&mut self.status, keep);
        // The new index of old record `i` is the number of kept records
        // before it.
        let mut renumbered = Vec::with_capacity(keep.len());
        let mut kept = 0u32;
        for k in keep {
            renumbered.push(kept);
            kept += u32::from(*k);
        }
        for k in 0..KEYS.len() {
            filter(&mut self.keys[k], keep);
            self.lookalikes[k].retain(|(i, _)| keep[*i as usize]);
            for (i, _) in &mut self.lookalikes[k] {
                *i = renumbered[*i as usize];
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

/// Prepares one side page by page, as a connector's read delivers them.
///
/// Give it the pages in read order ([`Self::push`]); when the read is
/// complete, [`Self::finish`] builds what needs every record (the id index)
/// and returns exactly what [`Prepared::new`] returns for all the pages as
/// one slice. The records the host drops after the read (a source record a
/// later page's problem holds, one its mapping refuses, one whose account
/// holds a bad value) are dropped here too, by position ([`Self::retain`]),
/// without hashing anything again.
#[derive(Debug, Clone)]
pub struct Preparer {
    fields: FieldSet,
    prepared: Prepared,
}

impl Preparer {
    /// A preparer for plans made with `policy`.
    pub fn new(policy: &Policy) -> Preparer {
        Preparer::with_capacity(policy, 0)
    }

    /// A preparer with room for `n` records (when the read's size is known).
    pub fn with_capacity(policy: &Policy, n: usize) -> Preparer {
        let fields = policy.compared_fields();
        let prepared = Prepared::with_capacity(set_id(&fields), n);
        Preparer { fields, prepared }
    }

    /// Hashes the next `page` of records (they follow those given before).
    pub fn push(&mut self, page: &[Person]) {
        let first = self.len();
        for (i, p) in page.iter().enumerate() {
            self.prepared.push(first + i, p, &self.fields);
        }
    }

    /// How many records were given so far.
    pub fn len(&self) -> usize {
        self.prepared.id.len()
    }

    /// Whether no record was given yet.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Keeps record `i` (in the order given) when `keep[i]` is true, and
    /// drops the others, as `Vec::retain` does to the records themselves.
    pub fn retain(&mut self, keep: &[bool]) -> Result<(), RetainMismatch> {
        if keep.len() != self.len() {
            return Err(RetainMismatch {
                records: self.len(),
                mask: keep.len(),
            });
        }
        if keep.iter().any(|k| !k) {
            self.prepared.retain(keep);
        }
        Ok(())
    }

    /// Builds the id index over every record given: the preparation is
    /// complete.
    pub fn finish(mut self) -> Prepared {
        self.prepared.id_index = Index::new(&self.prepared.id);
        self.prepared
    }
}

/// A [`Preparer::retain`] mask that does not have one flag per record.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RetainMismatch {
    pub records: usize,
    pub mask: usize,
}

impl core::fmt::Display for RetainMismatch {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        write!(
            f,
            "{} record(s) were prepared but the mask to keep them has {} flag(s)",
            self.records, self.mask
        )
    }
}

#[cfg(feature = "std")]
impl std::error::Error for RetainMismatch {}

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

    /// Records that exercise everything a page boundary could break: the
    /// same id twice (a duplicate found only by the index built at the
    /// end), two people whose work emails collide once normalised, look-alike
    /// keys (a Kelvin sign, a zero-width space, a Cyrillic `а`) at several
    /// positions, managers and departments.
    fn tricky() -> Vec<Person> {
        let email = |id: &str, mail: &str| Person {
            work_email: Some(mail.into()),
            manager_id: Some("1".into()),
            department_id: Some("d1".into()),
            ..Person::new(id)
        };
        alloc::vec![
            email("1", "ana@acme.fr"),
            email("2", "mar\u{212A}@acme.fr"),
            Person {
                login: Some("m\u{430}rk".into()),
                employee_number: Some(" 7 ".into()),
                ..Person::new("3")
            },
            email("4", " ANA@acme.fr"),
            email("1", "dup@acme.fr"),
            Person {
                personal_email: Some("mark\u{200B}@home.fr".into()),
                active: false,
                ..Person::new("6")
            },
            email("7", "zo\u{e9}@acme.fr"),
            email("8", "m\u{430}rk@acme.fr"),
        ]
    }

    /// `people` cut before every index whose bit is set in `cuts`.
    fn pages(people: &[Person], cuts: u32) -> Vec<&[Person]> {
        let mut out = Vec::new();
        let mut start = 0;
        for i in 1..people.len() {
            if cuts & (1 << (i - 1)) != 0 {
                out.push(&people[start..i]);
                start = i;
            }
        }
        out.push(&people[start..]);
        out
    }

    #[test]
    fn every_way_of_cutting_the_read_into_pages_prepares_the_same() {
        let people = tricky();
        let policy = Policy::default();
        let whole = Prepared::new(&people, &policy);
        assert!(
            whole.lookalikes.iter().map(Vec::len).sum::<usize>() >= 3,
            "the data has look-alikes"
        );
        for cuts in 0..1u32 << (people.len() - 1) {
            let mut preparer = Preparer::new(&policy);
            for page in pages(&people, cuts) {
                preparer.push(page);
            }
            // An empty page (a vendor's last page may be) changes nothing.
            preparer.push(&[]);
            assert_eq!(preparer.finish(), whole, "pages cut at {cuts:#b}");
        }
    }

    #[test]
    fn dropping_records_after_the_read_prepares_what_is_left() {
        let people = tricky();
        let policy = Policy::default();
        let mut preparer = Preparer::new(&policy);
        for page in pages(&people, 0b101_0101) {
            preparer.push(page);
        }
        for mask in 0..1u32 << people.len() {
            let keep: Vec<bool> = (0..people.len()).map(|i| mask & (1 << i) != 0).collect();
            let left: Vec<Person> = people
                .iter()
                .zip(&keep)
                .filter(|(_, k)| **k)
                .map(|(p, _)| p.clone())
                .collect();
            let mut kept = preparer.clone();
            assert_eq!(kept.retain(&keep), Ok(()));
            assert_eq!(kept.len(), left.len());
            assert_eq!(
                kept.finish(),
                Prepared::new(&left, &policy),
                "mask {mask:#b}"
            );
        }
        let mut wrong = preparer.clone();
        assert_eq!(
            wrong.retain(&[true]),
            Err(RetainMismatch {
                records: people.len(),
                mask: 1
            })
        );
    }

    #[test]
    fn a_plan_from_pages_has_the_same_actions_and_reasons() {
        let started = Date::from_ymd(2025, 9, 1).ok();
        let source: Vec<Person> = tricky()
            .into_iter()
            .map(|p| Person {
                start_date: started,
                ..p
            })
            .collect();
        // The target: an account per work email, one of them a look-alike
        // of a source key, so correlation and its refusals are exercised.
        let target: Vec<Person> = [
            ("a", "ana@acme.fr"),
            ("b", "zo\u{e9}@acme.fr"),
            ("c", "mark@acme.fr"),
        ]
        .into_iter()
        .map(|(id, mail)| Person {
            work_email: Some(mail.into()),
            ..Person::new(id)
        })
        .collect();
        let policy = Policy::default();
        let today = Date::from_ymd(2026, 3, 2).unwrap();
        let plan_with = |source_prepared: Option<&Prepared>, target_prepared: Option<&Prepared>| {
            let input = crate::Input {
                source: crate::Side {
                    prepared: source_prepared,
                    ..crate::Side::people(&source)
                },
                target: crate::Side {
                    prepared: target_prepared,
                    ..crate::Side::people(&target)
                },
                links: &[],
                prepared_links: None,
                group_links: &[],
                identities: &[],
                written_rows: &crate::rows::NOTHING_WRITTEN,
                policy: &policy,
                today,
            };
            let plan = crate::plan(&input).unwrap();
            (plan.actions().to_vec(), alloc::format!("{plan}"))
        };
        let at_once = plan_with(None, None);
        let codes: Vec<&str> = at_once
            .0
            .iter()
            .filter_map(|a| match a {
                crate::Action::Skip { reason, .. } | crate::Action::Conflict { reason, .. } => {
                    Some(reason.code())
                }
                _ => None,
            })
            .collect();
        for code in ["duplicate_id", "lookalike_key", "duplicate_in_source"] {
            assert!(codes.contains(&code), "{code} not in {codes:?}");
        }
        for cuts in [0, 1, 0b10_1010, 0b111_1111] {
            let mut s = Preparer::new(&policy);
            for page in pages(&source, cuts) {
                s.push(page);
            }
            let mut t = Preparer::new(&policy);
            for page in pages(&target, cuts) {
                t.push(page);
            }
            let (s, t) = (s.finish(), t.finish());
            assert_eq!(
                plan_with(Some(&s), Some(&t)),
                at_once,
                "pages cut at {cuts:#b}"
            );
        }
    }
}
