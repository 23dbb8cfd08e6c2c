//! Synthetic tenants for benchmarks and allocation tests.
//!
//! A tenant of `n` people, already synced once (every person linked to an
//! account with the same values), then touched by churn: new hires,
//! updates, leavers and returners in equal parts. Deterministic for a given
//! `n` and churn, so figures can be compared across runs and machines.

use muster_core::{
    Date, Gender, Group, Input, Link, Person, Policy, Prepared, PreparedLinks, Side,
};

/// One synthetic tenant: both sides, links and the policy, owned.
pub struct Tenant {
    pub source: Vec<Person>,
    pub target: Vec<Person>,
    pub links: Vec<Link>,
    pub departments: Vec<Group>,
    pub teams: Vec<Group>,
    pub group_links: Vec<Link>,
    pub policy: Policy,
    pub today: Date,
    pub source_fp: Prepared,
    pub target_fp: Prepared,
    pub links_prepared: PreparedLinks,
}

/// How many changes of each kind a tenant was built with.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Churn {
    pub creates: usize,
    pub updates: usize,
    pub deactivations: usize,
    pub reactivations: usize,
}

impl Churn {
    pub fn total(&self) -> usize {
        self.creates + self.updates + self.deactivations + self.reactivations
    }
}

const DEPARTMENTS: usize = 50;
const TITLES: &[&str] = &[
    "Engineer",
    "Sales Manager",
    "Designer",
    "Accountant",
    "Support",
];
const GIVEN: &[&str] = &["Ana", "Élodie", "Jean", "Zoë", "Mehmet", "Sofia", "Luc"];
const FAMILY: &[&str] = &["Lopez", "Martin", "Dubois", "Müller", "Nguyen", "Rossi"];

/// Person `i`'s department: spread so that churned people (every
/// `stride`-th) land in many departments, not one.
fn department_of(i: usize) -> usize {
    (i / 100 + i) % DEPARTMENTS
}

impl Tenant {
    /// `n` people with `churn_per_mille` ‰ of them changed since the last
    /// sync (10 ‰ = 1 %), split evenly across creates, updates,
    /// deactivations and reactivations. With `groups`, departments are
    /// mirrored as teams (membership is part of the plan).
    pub fn new(n: usize, churn_per_mille: usize, groups: bool) -> (Tenant, Churn) {
        let today = Date::from_ymd(2026, 3, 2).expect("valid date");
        let start = Date::from_ymd(2020, 1, 1).expect("valid date");
        let policy = Policy {
            reactivate: true,
            sync_groups: groups,
            ..Policy::default()
        };
        let changed = n * churn_per_mille / 1000;
        let quarter = changed / 4;
        let churn = Churn {
            creates: quarter,
            updates: quarter,
            deactivations: quarter,
            reactivations: changed - 3 * quarter,
        };
        // Churned people are spread evenly through the tenant.
        let stride = n.checked_div(changed).unwrap_or(usize::MAX);
        // Person `i % 50` manages person `i`; churn starts after them
        // (positions stride-1, 2·stride-1, …), so managers stay put.
        let kind_of = |i: usize| {
            if stride == usize::MAX || i < DEPARTMENTS || !(i + 1).is_multiple_of(stride) {
                return None;
            }
            let k = (i + 1) / stride - 1;
            (k < changed).then_some(k % 4)
        };
        let mut source = Vec::with_capacity(n);
        let mut target = Vec::with_capacity(n);
        let mut links = Vec::with_capacity(n);
        for i in 0..n {
            let dept = department_of(i);
            let person = Person {
                employee_number: Some(format!("E{i:07}")),
                given_name: Some(GIVEN[i % GIVEN.len()].into()),
                family_name: Some(format!("{}{}", FAMILY[i % FAMILY.len()], i)),
                work_email: Some(format!("person.{i}@acme.example")),
                birth_date: Some(Date::from_days_since_epoch(3000 + (i % 9000) as i32)),
                start_date: Some(start.add_days((i % 1500) as i32)),
                job_title: Some(TITLES[i % TITLES.len()].into()),
                gender: Some(if i % 2 == 0 {
                    Gender::Female
                } else {
                    Gender::Male
                }),
                department_id: Some(format!("d{dept}")),
                manager_id: (i >= DEPARTMENTS).then(|| format!("{}", dept)),
                ..Person::new(format!("{i}"))
            };
            let mut account = Person {
                id: format!("acct-{i}"),
                manager_id: person.manager_id.as_ref().map(|m| format!("acct-{m}")),
                department_id: None,
                ..person.clone()
            };
            let mut person = person;
            match kind_of(i) {
                Some(0) => {
                    // A new hire: in the source only.
                    source.push(person);
                    continue;
                }
                Some(1) => person.job_title = Some("Promoted".into()),
                Some(2) => {
                    // A leaver: the end date was synced before it passed, so
                    // the deactivation is the only change.
                    person.end_date = Some(today.add_days(-1));
                    account.end_date = person.end_date;
                }
                Some(3) => account.active = false,
                _ => {}
            }
            links.push(Link::new(person.id.clone(), account.id.clone()));
            source.push(person);
            target.push(account);
        }
        let departments: Vec<Group> = (0..DEPARTMENTS)
            .map(|d| Group {
                id: format!("d{d}"),
                name: format!("Department {d}"),
                ..Group::default()
            })
            .collect();
        let (teams, group_links) = if groups {
            let mut teams: Vec<Group> = (0..DEPARTMENTS)
                .map(|d| Group {
                    id: format!("team-{d}"),
                    name: format!("Department {d}"),
                    ..Group::default()
                })
                .collect();
            // Members as the last sync left them: every active linked account.
            for account in target.iter().filter(|a| a.active) {
                let i: usize = account.id["acct-".len()..].parse().unwrap_or(0);
                teams[department_of(i)].members.push(account.id.clone());
            }
            let links = (0..DEPARTMENTS)
                .map(|d| Link::new(format!("d{d}"), format!("team-{d}")))
                .collect();
            (teams, links)
        } else {
            (Vec::new(), Vec::new())
        };
        let source_fp = Prepared::new(&source, &policy);
        let target_fp = Prepared::new(&target, &policy).with_groups(&teams);
        let links_prepared = PreparedLinks::new(&links);
        let tenant = Tenant {
            source,
            target,
            links,
            departments,
            teams,
            group_links,
            policy,
            today,
            source_fp,
            target_fp,
            links_prepared,
        };
        (tenant, churn)
    }

    /// The planner's input, with fingerprints.
    pub fn input(&self) -> Input<'_> {
        Input {
            source: Side {
                people: &self.source,
                groups: &self.departments,
                coverage: muster_core::Coverage::Full,
                held: &[],
                prepared: Some(&self.source_fp),
                other_logins: &[],
            },
            target: Side {
                people: &self.target,
                groups: &self.teams,
                coverage: muster_core::Coverage::Full,
                held: &[],
                prepared: Some(&self.target_fp),
                other_logins: &[],
            },
            links: &self.links,
            prepared_links: Some(&self.links_prepared),
            group_links: &self.group_links,
            identities: &[],
            written_rows: &muster_core::rows::NOTHING_WRITTEN,
            policy: &self.policy,
            today: self.today,
        }
    }
}
