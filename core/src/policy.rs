//! What a flow is allowed and expected to do.
//!
//! A [`Policy`] is the per-flow configuration the planner obeys: which kinds
//! of action it may take (an inbound recruiting flow is create-only), which
//! fields it owns (source wins on those, the rest are never touched), how
//! unlinked records are correlated, the date gating, and the [`Guard`] that
//! holds suspicious plans for approval.

use alloc::collections::BTreeMap;
use alloc::string::String;
use alloc::vec::Vec;
use core::fmt;

use crate::model::{Field, FieldRef};
use crate::normalize::Normalization;

/// The kinds of action a plan can hold.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
#[cfg_attr(feature = "serde", serde(rename_all = "snake_case"))]
pub enum ActionKind {
    CreateGroup,
    RenameGroup,
    Create,
    Link,
    Update,
    Reactivate,
    SetManager,
    AddMembers,
    RemoveMembers,
    Deactivate,
    Skip,
    Conflict,
}

impl ActionKind {
    pub const ALL: [ActionKind; 12] = [
        ActionKind::CreateGroup,
        ActionKind::RenameGroup,
        ActionKind::Create,
        ActionKind::Link,
        ActionKind::Update,
        ActionKind::Reactivate,
        ActionKind::SetManager,
        ActionKind::AddMembers,
        ActionKind::RemoveMembers,
        ActionKind::Deactivate,
        ActionKind::Skip,
        ActionKind::Conflict,
    ];

    /// The snake_case name used in config and JSON.
    pub const fn name(self) -> &'static str {
        match self {
            ActionKind::CreateGroup => "create_group",
            ActionKind::RenameGroup => "rename_group",
            ActionKind::Create => "create",
            ActionKind::Link => "link",
            ActionKind::Update => "update",
            ActionKind::Reactivate => "reactivate",
            ActionKind::SetManager => "set_manager",
            ActionKind::AddMembers => "add_members",
            ActionKind::RemoveMembers => "remove_members",
            ActionKind::Deactivate => "deactivate",
            ActionKind::Skip => "skip",
            ActionKind::Conflict => "conflict",
        }
    }

    pub fn from_name(name: &str) -> Option<ActionKind> {
        ActionKind::ALL.into_iter().find(|k| k.name() == name)
    }

    /// How many apply phases there are ([`ActionKind::phase`]).
    pub const PHASES: usize = 8;

    /// The order plans hold and the host applies actions in, defined once:
    /// group creations, renames, creates and links, updates and
    /// reactivations, managers, memberships, deactivations, then the reports
    /// (skips, conflicts). An action only depends on actions of *earlier*
    /// phases (a member's account and its group exist before the membership
    /// call, a manager's account before `set_manager`), so the actions of
    /// one phase can be applied in a batch.
    pub const fn phase(self) -> usize {
        match self {
            ActionKind::CreateGroup => 0,
            ActionKind::RenameGroup => 1,
            ActionKind::Create | ActionKind::Link => 2,
            ActionKind::Update | ActionKind::Reactivate => 3,
            ActionKind::SetManager => 4,
            ActionKind::AddMembers | ActionKind::RemoveMembers => 5,
            ActionKind::Deactivate => 6,
            ActionKind::Skip | ActionKind::Conflict => 7,
        }
    }

    /// Skip and Conflict only report; every other kind changes the target.
    pub const fn changes_target(self) -> bool {
        !matches!(self, ActionKind::Skip | ActionKind::Conflict)
    }
}

impl fmt::Display for ActionKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// The person-level actions a flow may take, as configured by the operator
/// (`actions = ["create", "update", "deactivate", "reactivate"]`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
pub struct Allowed {
    pub create: bool,
    /// Adopting an existing, correlated account instead of creating one.
    pub link: bool,
    pub update: bool,
    pub deactivate: bool,
    pub reactivate: bool,
}

impl Allowed {
    pub const ALL: Allowed = Allowed {
        create: true,
        link: true,
        update: true,
        deactivate: true,
        reactivate: true,
    };
    /// Inbound recruiting/onboarding flows: they never change nor deactivate
    /// anybody already in the HR system.
    pub const CREATE_ONLY: Allowed = Allowed {
        create: true,
        link: false,
        update: false,
        deactivate: false,
        reactivate: false,
    };

    pub fn permits(&self, kind: ActionKind) -> bool {
        match kind {
            ActionKind::Create => self.create,
            ActionKind::Link => self.link,
            ActionKind::Update | ActionKind::SetManager => self.update,
            ActionKind::Deactivate => self.deactivate,
            ActionKind::Reactivate => self.reactivate,
            _ => true,
        }
    }
}

/// A set of fields: canonical ones as a bit mask, custom ones by name.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct FieldSet {
    mask: u32,
    custom: Vec<String>,
}

impl FieldSet {
    pub fn new() -> FieldSet {
        FieldSet::default()
    }

    /// Every canonical field (custom fields must be named).
    pub fn all_canonical() -> FieldSet {
        Field::ALL.iter().copied().map(FieldRef::from).collect()
    }

    pub fn insert(&mut self, field: FieldRef) {
        match field {
            FieldRef::Canonical(f) => self.mask |= f.bit(),
            FieldRef::Custom(name) => {
                if let Err(at) = self.custom.binary_search(&name) {
                    self.custom.insert(at, name);
                }
            }
        }
    }

    pub fn remove(&mut self, field: &FieldRef) {
        match field {
            FieldRef::Canonical(f) => self.mask &= !f.bit(),
            FieldRef::Custom(name) => {
                if let Ok(at) = self.custom.binary_search(name) {
                    self.custom.remove(at);
                }
            }
        }
    }

    pub fn contains(&self, field: &FieldRef) -> bool {
        match field {
            FieldRef::Canonical(f) => self.has(*f),
            FieldRef::Custom(name) => self.custom.binary_search(name).is_ok(),
        }
    }

    pub fn has(&self, field: Field) -> bool {
        self.mask & field.bit() != 0
    }

    /// Canonical members, in declaration order.
    pub fn canonical(&self) -> impl Iterator<Item = Field> + '_ {
        Field::ALL.iter().copied().filter(|f| self.has(*f))
    }

    /// Custom members, sorted by name.
    pub fn custom(&self) -> &[String] {
        &self.custom
    }

    /// Every member, canonical first.
    pub fn iter(&self) -> impl Iterator<Item = FieldRef> + '_ {
        self.canonical()
            .map(FieldRef::Canonical)
            .chain(self.custom.iter().cloned().map(FieldRef::Custom))
    }
}

impl FromIterator<FieldRef> for FieldSet {
    fn from_iter<I: IntoIterator<Item = FieldRef>>(iter: I) -> FieldSet {
        let mut set = FieldSet::new();
        for f in iter {
            set.insert(f);
        }
        set
    }
}

#[cfg(feature = "serde")]
impl serde::Serialize for FieldSet {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_seq(self.iter().map(String::from))
    }
}

#[cfg(feature = "serde")]
impl<'de> serde::Deserialize<'de> for FieldSet {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<FieldSet, D::Error> {
        let names = Vec::<String>::deserialize(d)?;
        Ok(names.into_iter().map(FieldRef::from).collect())
    }
}

/// A key by which an unlinked source person is matched to an existing
/// account. Tried in the policy's order, after the link table.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
#[cfg_attr(feature = "serde", serde(rename_all = "snake_case"))]
pub enum CorrelationKey {
    EmployeeNumber,
    WorkEmail,
    PersonalEmail,
    Login,
}

impl CorrelationKey {
    pub const fn field(self) -> Field {
        match self {
            CorrelationKey::EmployeeNumber => Field::EmployeeNumber,
            CorrelationKey::WorkEmail => Field::WorkEmail,
            CorrelationKey::PersonalEmail => Field::PersonalEmail,
            CorrelationKey::Login => Field::Login,
        }
    }

    /// Emails and logins compare case-insensitively; employee numbers only
    /// ignore surrounding white space. Both are NFKC-normalised (see
    /// [`crate::normalize`]).
    pub const fn normalization(self) -> Normalization {
        match self {
            CorrelationKey::EmployeeNumber => Normalization::Key,
            _ => Normalization::KeyFold,
        }
    }

    pub fn value(self, p: &crate::model::Person) -> Option<&str> {
        let v = match self {
            CorrelationKey::EmployeeNumber => p.employee_number.as_deref(),
            CorrelationKey::WorkEmail => p.work_email.as_deref(),
            CorrelationKey::PersonalEmail => p.personal_email.as_deref(),
            CorrelationKey::Login => p.login.as_deref(),
        };
        v.filter(|t| !crate::normalize::is_blank(t))
    }
}

impl fmt::Display for CorrelationKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.field().name())
    }
}

/// A limit on how many actions of one kind a plan may hold before it is
/// held for approval.
#[derive(Debug, Clone, Copy, PartialEq, Default)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
pub struct Threshold {
    /// Held when the plan has more than this many.
    pub max: Option<u32>,
    /// Held when the plan's count exceeds this share of the linked accounts
    /// (0.10 = 10 %).
    pub max_ratio: Option<f64>,
    /// The ratio is only checked from this many actions on, so that in a
    /// five-person company one leaver (20 %) does not hold every run.
    #[cfg_attr(feature = "serde", serde(default))]
    pub ratio_from: u32,
}

/// Thresholds per action kind. A plan over any of them is *held*.
#[derive(Debug, Clone, PartialEq)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
pub struct Guard {
    pub thresholds: Vec<(ActionKind, Threshold)>,
}

impl Default for Guard {
    /// Deactivating more than 25 accounts, or more than 10 % of the linked
    /// ones (when at least 2), in one run is held: a broken source must never
    /// deactivate a whole company.
    fn default() -> Guard {
        Guard {
            thresholds: alloc::vec![(
                ActionKind::Deactivate,
                Threshold {
                    max: Some(25),
                    max_ratio: Some(0.10),
                    ratio_from: 2,
                },
            )],
        }
    }
}

impl Guard {
    /// No thresholds: nothing is ever held.
    pub fn off() -> Guard {
        Guard {
            thresholds: Vec::new(),
        }
    }

    /// Sets (or replaces) the threshold for `kind`.
    pub fn with(mut self, kind: ActionKind, threshold: Threshold) -> Guard {
        self.thresholds.retain(|(k, _)| *k != kind);
        self.thresholds.push((kind, threshold));
        self
    }
}

/// Everything the planner needs to know about one flow.
#[derive(Debug, Clone, PartialEq)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
#[cfg_attr(feature = "serde", serde(default))]
pub struct Policy {
    pub allowed: Allowed,
    /// Fields the flow owns: source wins on them. `manager_id` owned means
    /// the manager is synced; reference fields are never compared by value.
    pub owned: FieldSet,
    /// Tried in order after the link table; ambiguity is a conflict.
    pub correlation: Vec<CorrelationKey>,
    /// Fields a new account cannot be created without (a target's mandatory
    /// fields: Leapsome's email, Lucca's legal entity and department).
    pub required_on_create: FieldSet,
    /// Accounts are created this many days before the start date.
    pub pre_start_days: u16,
    /// A leaver's account stays active this many days after the end date
    /// (the grace period): the plan says when it will be deactivated
    /// ([`crate::Reason::DeactivationPending`]), and a rehire or a corrected
    /// end date within it cancels the deactivation with nothing done. 0 (the
    /// default): deactivated the day after the end date.
    pub deactivate_after_days: u16,
    /// Reactivate a deactivated account whose person is active again
    /// (parental leave, sabbatical). Off: the plan reports a skip.
    pub reactivate: bool,
    /// Ask the target to invite new accounts (carried to the connector).
    pub invite_on_create: bool,
    /// Mirror source departments as target groups (teams).
    pub sync_groups: bool,
    pub guard: Guard,
    /// Compound (multi-occurrence) custom fields compared row by row: field
    /// code → the sub-field whose value identifies a row (`e_formation` →
    /// `e_title`). See [`crate::rows`]. A field not named here is compared
    /// as a whole value.
    pub row_keys: BTreeMap<String, String>,
    /// Another flow whose person links establish identities for this one:
    /// its target is this flow's source and its source this flow's target
    /// (`lucca-to-cards` for a Cards → Lucca write-back). The host loads its
    /// links into [`crate::Input::identities`]; an unlinked person is matched
    /// through them before any [`Policy::correlation`] key.
    pub identity_links: Option<String>,
    /// What a create whose login is already taken becomes (a suffixed
    /// login, or a conflict): see [`crate::login`].
    pub login_taken: crate::LoginTaken,
    /// How a person's `manager_id` is matched (see [`ManagerMatch`]).
    pub manager_match: ManagerMatch,
}

/// How the core resolves a person's manager reference (`manager_id`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
#[cfg_attr(feature = "serde", serde(rename_all = "snake_case"))]
pub enum ManagerMatch {
    /// The reference is the manager's id in the source (the default): the
    /// manager's account is the one linked to, or planned for, that person.
    #[default]
    SourceId,
    /// The reference is the manager's work email, as an onboarding tool
    /// knows the manager of a newcomer: a source person with that id first,
    /// else the one active target account whose work email it is (compared
    /// as the `work_email` correlation key is). None, or several: the manager is
    /// reported as out of scope for that person, who is still created.
    WorkEmail,
}

impl Default for Policy {
    fn default() -> Policy {
        let mut owned = FieldSet::all_canonical();
        owned.remove(&Field::Login.into());
        owned.remove(&Field::PersonalEmail.into());
        Policy {
            allowed: Allowed::ALL,
            owned,
            correlation: alloc::vec![CorrelationKey::EmployeeNumber, CorrelationKey::WorkEmail],
            required_on_create: [FieldRef::from(Field::WorkEmail)].into_iter().collect(),
            pre_start_days: 0,
            deactivate_after_days: 0,
            reactivate: false,
            invite_on_create: false,
            sync_groups: true,
            guard: Guard::default(),
            row_keys: BTreeMap::new(),
            identity_links: None,
            login_taken: crate::LoginTaken::default(),
            manager_match: ManagerMatch::SourceId,
        }
    }
}

impl Policy {
    /// An inbound flow (recruiting or onboarding tool → HR system): creates
    /// people, never updates, deactivates or links anybody.
    pub fn create_only() -> Policy {
        Policy {
            allowed: Allowed::CREATE_ONLY,
            sync_groups: false,
            guard: Guard::off(),
            ..Policy::default()
        }
    }

    /// What a create writes: the owned fields plus the fields the target
    /// cannot create an account without ([`Policy::required_on_create`],
    /// which the host fills from the target plugin's declarations). Nothing
    /// else of the source record leaves muster on a create.
    pub fn create_fields(&self) -> FieldSet {
        let mut set = self.owned.clone();
        for f in self.required_on_create.iter() {
            set.insert(f);
        }
        set
    }

    /// Fields a create writes although the flow does not own them: required
    /// by the target, written once, never updated afterwards. Plans show
    /// them on each create line.
    pub fn carried_on_create(&self) -> FieldSet {
        self.required_on_create
            .iter()
            .filter(|f| !self.owned.contains(f))
            .collect()
    }

    /// The row key of `field` when the flow compares it row by row.
    pub fn row_key(&self, field: &FieldRef) -> Option<&str> {
        match field {
            FieldRef::Custom(name) => self.row_keys.get(name).map(String::as_str),
            FieldRef::Canonical(_) => None,
        }
    }

    /// The keys an unlinked person is matched by, in order, each with
    /// whether a match may be *adopted* (linked): the policy's
    /// [`Policy::correlation`], then the work email if it is not among them
    /// — never adopted through it, but never created twice either.
    pub fn correlation_keys(&self) -> Vec<(CorrelationKey, bool)> {
        let mut keys: Vec<(CorrelationKey, bool)> =
            self.correlation.iter().map(|k| (*k, true)).collect();
        if !self.correlation.contains(&CorrelationKey::WorkEmail) {
            keys.push((CorrelationKey::WorkEmail, false));
        }
        keys
    }

    /// Whether planning needs a full source read: a flow that can deactivate
    /// would take people absent from a changes-only read for leavers. A flow
    /// that cannot (create-only inbound flows) may plan from changes
    /// ([`crate::read`]).
    pub fn needs_full_source(&self) -> bool {
        self.allowed.deactivate
    }

    /// Owned fields compared by value (reference fields excluded).
    pub(crate) fn compared_fields(&self) -> FieldSet {
        let mut set = self.owned.clone();
        set.remove(&Field::ManagerId.into());
        set.remove(&Field::DepartmentId.into());
        set
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn field_set_keeps_canonical_and_custom_members() {
        let mut s: FieldSet = ["given_name", "e_formation", "work_email", "e_a"]
            .into_iter()
            .map(FieldRef::parse)
            .collect();
        assert!(s.has(Field::GivenName));
        assert!(s.contains(&FieldRef::parse("e_formation")));
        assert_eq!(s.custom(), ["e_a", "e_formation"]);
        s.remove(&FieldRef::parse("e_a"));
        let names: Vec<String> = s.iter().map(String::from).collect();
        assert_eq!(names, ["given_name", "work_email", "e_formation"]);
    }

    #[test]
    fn a_create_carries_owned_and_required_fields_only() {
        let mut p = Policy {
            owned: ["given_name", "work_email"]
                .into_iter()
                .map(FieldRef::parse)
                .collect(),
            ..Policy::default()
        };
        p.required_on_create = ["work_email", "login"]
            .into_iter()
            .map(FieldRef::parse)
            .collect();
        let names = |s: FieldSet| s.iter().map(String::from).collect::<Vec<_>>();
        assert_eq!(
            names(p.create_fields()),
            ["given_name", "work_email", "login"]
        );
        assert_eq!(names(p.carried_on_create()), ["login"]);
    }

    #[test]
    fn phases_order_what_depends_on_what() {
        use ActionKind as K;
        assert!(K::CreateGroup.phase() < K::AddMembers.phase());
        assert!(K::Create.phase() < K::Update.phase());
        assert!(K::Create.phase() < K::SetManager.phase());
        assert!(K::Create.phase() < K::AddMembers.phase());
        assert!(K::AddMembers.phase() < K::Deactivate.phase());
        assert!(
            ActionKind::ALL
                .iter()
                .all(|k| k.phase() < ActionKind::PHASES)
        );
        // Reports come last, after every kind that changes the target.
        let last = ActionKind::ALL
            .iter()
            .filter(|k| k.changes_target())
            .map(|k| k.phase())
            .max();
        assert!(last < Some(K::Skip.phase()));
        assert_eq!(K::Skip.phase(), K::Conflict.phase());
    }

    #[test]
    fn create_only_forbids_everything_but_create() {
        let p = Policy::create_only();
        assert!(p.allowed.permits(ActionKind::Create));
        for k in [
            ActionKind::Update,
            ActionKind::Deactivate,
            ActionKind::Reactivate,
            ActionKind::Link,
            ActionKind::SetManager,
        ] {
            assert!(!p.allowed.permits(k), "{k} must not be allowed");
        }
    }
}
