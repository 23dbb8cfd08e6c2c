//! The simulated tenant: people, departments, establishments, roles and custom-field
//! definitions, plus the deterministic generator that builds realistic (messy) ones.
//!
//! Dates are Lucca-formatted strings (see [`crate::datetime`]); ids are integers, as in Lucca.

use std::collections::BTreeMap;

use serde_json::{Value, json};

use crate::datetime;
use crate::rng::Rng;

/// An employee, as the v3 users API knows them.
#[derive(Debug, Clone, PartialEq)]
pub struct User {
    pub id: u64,
    pub first_name: String,
    pub last_name: String,
    pub login: String,
    /// Work email; `None` for people without one.
    pub mail: Option<String>,
    pub personal_email: Option<String>,
    pub birth_date: Option<String>,
    pub employee_number: Option<String>,
    pub job_title: Option<String>,
    /// `Undefined|Male|Female|Misc`.
    pub gender: String,
    pub dt_contract_start: Option<String>,
    /// `None` while the contract is open-ended; in the past for former employees.
    pub dt_contract_end: Option<String>,
    pub direct_line: Option<String>,
    pub professional_mobile: Option<String>,
    pub personal_mobile: Option<String>,
    pub legal_entity_id: Option<u64>,
    pub department_id: Option<u64>,
    pub manager_id: Option<u64>,
    pub role_principal_id: Option<u64>,
    pub modified_at: String,
    /// Custom fields by code (`e_…`): one occurrence for single fields, any number for
    /// multi-occurrence ones.
    pub extended: BTreeMap<String, Vec<Occurrence>>,
}

/// One occurrence of a custom field: Lucca gives each its own id, used to update or delete it.
#[derive(Debug, Clone, PartialEq)]
pub struct Occurrence {
    pub id: u64,
    /// A string (text or date), a number, or for compound fields an object with one entry per
    /// sub-field code.
    pub value: Value,
}

/// A node of the department tree.
#[derive(Debug, Clone, PartialEq)]
pub struct Department {
    pub id: u64,
    pub name: String,
    pub code: String,
    pub description: Option<String>,
    pub parent_id: Option<u64>,
    pub is_active: bool,
    pub head_id: Option<u64>,
    pub created_at: String,
    pub last_modified_at: String,
    pub sort_order_in_siblings: u32,
}

/// An establishment (what v3 called a legal entity).
#[derive(Debug, Clone, PartialEq)]
pub struct Establishment {
    pub id: u64,
    pub name: String,
    pub legal_unit_id: u64,
    pub code: String,
    pub street: String,
    pub zip_code: String,
    pub city: String,
    pub country: String,
    pub timezone_id: String,
    pub is_archived: bool,
}

/// A role ("main role", `rolePrincipal`).
#[derive(Debug, Clone, PartialEq)]
pub struct Role {
    pub id: u64,
    pub name: String,
}

/// The type of a custom field or of a compound field's sub-field.
#[derive(Debug, Clone, PartialEq)]
pub enum ExtKind {
    Text,
    Number,
    /// `"2016-09-01T00:00:00"`.
    Date,
    /// A compound value: an object with one entry per sub-field.
    Compound(Vec<ExtDefinition>),
}

/// A custom HR-file field definition (`/api/v3/extensionuserdefinitions`).
#[derive(Debug, Clone, PartialEq)]
pub struct ExtDefinition {
    pub id: u64,
    pub code: String,
    pub name: String,
    pub kind: ExtKind,
    /// Multi-occurrence: read and written as an array of `{id,value}`.
    pub multiple: bool,
    /// Editable in its HR-file section ("Editable" ticked when the field was set up): a
    /// write to a field that is not is refused. Shown as `isEditable` in the definitions.
    pub editable: bool,
}

/// Values applied on create when the body omits a mandatory field; `None` = the field is
/// mandatory (what a tenant without configured defaults does).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct CreateDefaults {
    pub legal_entity_id: Option<u64>,
    pub department_id: Option<u64>,
    pub role_principal_id: Option<u64>,
}

/// A whole simulated tenant.
#[derive(Debug, Clone, PartialEq)]
pub struct Tenant {
    /// Account name (`{name}.ilucca.net`).
    pub name: String,
    /// Simulated date-time when the simulator starts; the simulated clock advances from it.
    pub epoch: String,
    /// Users ordered by id.
    pub users: Vec<User>,
    pub departments: Vec<Department>,
    pub establishments: Vec<Establishment>,
    pub roles: Vec<Role>,
    pub definitions: Vec<ExtDefinition>,
    pub defaults: CreateDefaults,
    pub next_user_id: u64,
    pub next_occurrence_id: u64,
}

/// Share of generated employees in each situation, in percent (drawn per employee from the
/// seeded generator, so actual counts vary a little around these).
pub mod proportions {
    /// Contract ended in the past (hidden unless `formerEmployees=true`).
    pub const FORMER: u64 = 8;
    /// Contract starts after the epoch.
    pub const FUTURE_HIRE: u64 = 3;
    /// No `dtContractStart` at all.
    pub const NO_START_DATE: u64 = 2;
    /// Current employees with an end date still in the future (leaving soon).
    pub const LEAVING_SOON: u64 = 2;
    /// No work email.
    pub const MISSING_MAIL: u64 = 2;
    /// Work email equal to an earlier employee's.
    pub const DUPLICATE_MAIL: u64 = 1;
    /// Have `e_tshirt` (single text).
    pub const TSHIRT: u64 = 50;
    /// Have `e_badge_date` (single date).
    pub const BADGE_DATE: u64 = 30;
    /// Have 1 to 3 `e_formation` occurrences (compound, multi-occurrence).
    pub const FORMATION: u64 = 20;
    /// One department per this many employees (at least one).
    pub const EMPLOYEES_PER_DEPARTMENT: usize = 20;
}

const FIRST_NAMES: &[&str] = &[
    "Alice",
    "Bruno",
    "Camille",
    "Élodie",
    "François",
    "Jörg",
    "Zoë",
    "Noël",
    "Inès",
    "Hélène",
    "Mathis",
    "Léa",
    "Paul",
    "Sofia",
    "Thomas",
    "Chloé",
    "Agnès",
    "Renée",
    "Björn",
    "Ana",
    "Julien",
    "Sarah",
    "Hugo",
    "Emma",
    "Lucas",
    "Nina",
    "Marc",
    "Claire",
];
const LAST_NAMES: &[&str] = &[
    "Martin",
    "Bernard",
    "Dubois",
    "Müller",
    "Núñez",
    "Peña",
    "Garçon",
    "Lefèvre",
    "Öztürk",
    "Durand",
    "Moreau",
    "Laurent",
    "Simon",
    "Michel",
    "Leroy",
    "Roux",
    "Fournier",
    "Girard",
    "Bonnet",
    "François",
    "Petit",
    "Garcia",
    "Lambert",
    "Mercier",
];
const DEPARTMENT_NAMES: &[&str] = &[
    "Direction",
    "Sales",
    "Marketing",
    "Engineering",
    "Finance",
    "Ressources humaines",
    "Support",
    "Opérations",
    "Logistique",
    "Recherche & Développement",
    "Qualité",
    "Legal",
    "Product",
];
const JOB_TITLES: &[&str] = &[
    "Developer",
    "Account Executive",
    "Chargé de recrutement",
    "Comptable",
    "Designer",
    "Support Engineer",
    "Product Manager",
    "Office Manager",
];
const GENDERS: &[&str] = &["Male", "Female", "Misc", "Undefined"];
const TRAININGS: &[&str] = &["Sécurité incendie", "RGPD", "Onboarding", "Management 101"];

/// The generator's "today": the simulated epoch of generated tenants.
pub const DEFAULT_EPOCH: &str = "2026-06-01T09:00:00";

impl Tenant {
    /// An empty tenant with one department, one establishment, the standard roles and the
    /// standard custom-field definitions; no create defaults.
    pub fn empty(name: &str) -> Self {
        let mut t = Tenant {
            name: name.to_string(),
            epoch: DEFAULT_EPOCH.to_string(),
            users: Vec::new(),
            departments: Vec::new(),
            establishments: Vec::new(),
            roles: vec![
                Role {
                    id: 1,
                    name: "Collaborateur".into(),
                },
                Role {
                    id: 2,
                    name: "Manager".into(),
                },
                Role {
                    id: 3,
                    name: "Administrateur RH".into(),
                },
            ],
            definitions: standard_definitions(),
            defaults: CreateDefaults::default(),
            next_user_id: 1001,
            next_occurrence_id: 10_001,
        };
        t.establishments = (0..3).map(establishment).collect();
        t.departments.push(department(0, None, 0));
        t
    }

    /// A deterministic tenant of `employees` people: same seed, same tenant. See
    /// [`proportions`] for what it contains.
    pub fn generate(seed: u64, employees: usize) -> Self {
        use proportions as p;
        let mut rng = Rng::new(seed);
        let mut t = Tenant::empty("sandbox");
        let epoch_day = datetime::parse(DEFAULT_EPOCH)
            .unwrap_or(0)
            .div_euclid(86_400);
        let day = |d: i64| datetime::format(d * 86_400);

        let n_departments = employees.div_ceil(p::EMPLOYEES_PER_DEPARTMENT).max(1);
        t.departments = (0..n_departments)
            .map(|i| {
                let parent = if i == 0 {
                    None
                } else {
                    Some(rng.below(i as u64))
                };
                department(i, parent, i as u32)
            })
            .collect();

        let mut mails: Vec<String> = Vec::new();
        for i in 0..employees {
            let id = t.next_user_id;
            t.next_user_id += 1;
            let first = rng.pick(FIRST_NAMES).to_string();
            let last = rng.pick(LAST_NAMES).to_string();
            let dept_index = if i == 0 {
                0
            } else {
                rng.below(n_departments as u64) as usize
            };
            let login = format!(
                "{}{}{}",
                ascii_fold(&first[..first.char_indices().nth(1).map_or(first.len(), |c| c.0)]),
                ascii_fold(&last),
                i + 1
            );
            let situation = if i == 0 { 99 } else { rng.below(100) };
            let (start, end) = {
                let past_start = epoch_day - 30 - rng.below(5000) as i64;
                let (f, fu, ns, ls) = (
                    p::FORMER,
                    p::FORMER + p::FUTURE_HIRE,
                    p::FORMER + p::FUTURE_HIRE + p::NO_START_DATE,
                    p::FORMER + p::FUTURE_HIRE + p::NO_START_DATE + p::LEAVING_SOON,
                );
                if situation < f {
                    let end = epoch_day - 1 - rng.below(700) as i64;
                    (Some(day(end - 30 - rng.below(3000) as i64)), Some(day(end)))
                } else if situation < fu {
                    (Some(day(epoch_day + 1 + rng.below(90) as i64)), None)
                } else if situation < ns {
                    (None, None)
                } else if situation < ls {
                    (
                        Some(day(past_start)),
                        Some(day(epoch_day + 1 + rng.below(60) as i64)),
                    )
                } else {
                    (Some(day(past_start)), None)
                }
            };
            let mail_draw = if i == 0 { 99 } else { rng.below(100) };
            let mail = if mail_draw < p::MISSING_MAIL {
                None
            } else if mail_draw < p::MISSING_MAIL + p::DUPLICATE_MAIL && !mails.is_empty() {
                Some(rng.pick(&mails).clone())
            } else {
                Some(format!(
                    "{}.{}{}@sandbox.example",
                    ascii_fold(&first),
                    ascii_fold(&last),
                    i + 1
                ))
            };
            if let Some(m) = &mail {
                mails.push(m.clone());
            }
            let dept_id = t.departments[dept_index].id;
            let mut user = User {
                id,
                personal_email: rng
                    .percent(60)
                    .then(|| format!("{}.{}@perso.example", ascii_fold(&first), ascii_fold(&last))),
                birth_date: Some(day(datetime::days_from_civil(
                    1960 + rng.below(43) as i64,
                    1 + rng.below(12) as u32,
                    1 + rng.below(28) as u32,
                ))),
                employee_number: Some(format!("{:05}", i + 1)),
                job_title: Some(rng.pick(JOB_TITLES).to_string()),
                gender: rng.pick(GENDERS).to_string(),
                dt_contract_start: start,
                dt_contract_end: end,
                direct_line: rng.percent(30).then(|| {
                    format!(
                        "+33 1 {:02} {:02} {:02} {:02}",
                        rng.below(100),
                        rng.below(100),
                        rng.below(100),
                        rng.below(100)
                    )
                }),
                professional_mobile: rng.percent(50).then(|| {
                    format!(
                        "+33 6 {:02} {:02} {:02} {:02}",
                        rng.below(100),
                        rng.below(100),
                        rng.below(100),
                        rng.below(100)
                    )
                }),
                personal_mobile: None,
                legal_entity_id: Some(
                    t.establishments[rng.below(t.establishments.len() as u64) as usize].id,
                ),
                department_id: Some(dept_id),
                manager_id: None,
                role_principal_id: Some(1),
                modified_at: datetime::format(
                    (epoch_day - 1 - rng.below(730) as i64) * 86_400 + rng.below(86_400) as i64,
                ),
                extended: BTreeMap::new(),
                first_name: first,
                last_name: last,
                login,
                mail,
            };
            if rng.percent(p::TSHIRT) {
                let v = json!(rng.pick(&["S", "M", "L", "XL"]));
                user.extended.insert(
                    "e_tshirt".into(),
                    vec![Occurrence {
                        id: t.take_occurrence_id(),
                        value: v,
                    }],
                );
            }
            if rng.percent(p::BADGE_DATE) {
                let v = json!(day(epoch_day - rng.below(1500) as i64));
                user.extended.insert(
                    "e_badge_date".into(),
                    vec![Occurrence {
                        id: t.take_occurrence_id(),
                        value: v,
                    }],
                );
            }
            if rng.percent(p::FORMATION) {
                let count = 1 + rng.below(3);
                let occurrences = (0..count)
                    .map(|_| {
                        let title = rng.pick(TRAININGS).to_string();
                        let value = json!({
                            "e_title": title,
                            "e_link": format!("https://cards.example/t/{}", rng.below(1000)),
                            "e_progress": rng.below(101),
                            "e_score": rng.below(101),
                            "e_last_completion_date": day(epoch_day - rng.below(400) as i64),
                        });
                        Occurrence {
                            id: t.take_occurrence_id(),
                            value,
                        }
                    })
                    .collect();
                user.extended.insert("e_formation".into(), occurrences);
            }
            let dept = &mut t.departments[dept_index];
            if dept.head_id.is_none() {
                dept.head_id = Some(id);
                user.role_principal_id = Some(2);
            }
            t.users.push(user);
        }
        // Managers: a department's head reports to the nearest ancestor department's head,
        // everyone else to their department's head; the tree of departments makes it acyclic.
        let heads: BTreeMap<u64, (Option<u64>, Option<u64>)> = t
            .departments
            .iter()
            .map(|d| (d.id, (d.head_id, d.parent_id)))
            .collect();
        let ancestor_head = |mut dept: Option<u64>| {
            while let Some(d) = dept {
                let (head, parent) = heads.get(&d).copied().unwrap_or((None, None));
                if head.is_some() {
                    return head;
                }
                dept = parent;
            }
            None
        };
        for user in &mut t.users {
            let Some(dept) = user.department_id else {
                continue;
            };
            let (head, parent) = heads.get(&dept).copied().unwrap_or((None, None));
            user.manager_id = if head == Some(user.id) {
                ancestor_head(parent)
            } else {
                head
            };
        }
        t
    }

    /// The user with this id (users are kept ordered by id; a test that pushes out of order
    /// still gets an answer, through a linear scan).
    pub fn user(&self, id: u64) -> Option<&User> {
        self.user_index(id).map(|i| &self.users[i])
    }

    /// The user with this id, mutably.
    pub fn user_mut(&mut self, id: u64) -> Option<&mut User> {
        self.user_index(id).map(move |i| &mut self.users[i])
    }

    fn user_index(&self, id: u64) -> Option<usize> {
        self.users
            .binary_search_by_key(&id, |u| u.id)
            .ok()
            .or_else(|| self.users.iter().position(|u| u.id == id))
    }

    /// Whether the user is a former employee at simulated date-time `now`: their contract
    /// end date has passed.
    pub fn is_former(user: &User, now: &str) -> bool {
        user.dt_contract_end.as_deref().is_some_and(|end| end < now)
    }

    /// Allocates a new custom-field occurrence id.
    pub fn take_occurrence_id(&mut self) -> u64 {
        let id = self.next_occurrence_id;
        self.next_occurrence_id += 1;
        id
    }

    /// Allocates a new user id.
    pub fn take_user_id(&mut self) -> u64 {
        let id = self.next_user_id;
        self.next_user_id += 1;
        id
    }

    pub fn department(&self, id: u64) -> Option<&Department> {
        self.departments.iter().find(|d| d.id == id)
    }

    pub fn establishment(&self, id: u64) -> Option<&Establishment> {
        self.establishments.iter().find(|e| e.id == id)
    }

    pub fn role(&self, id: u64) -> Option<&Role> {
        self.roles.iter().find(|r| r.id == id)
    }

    pub fn definition(&self, code: &str) -> Option<&ExtDefinition> {
        self.definitions.iter().find(|d| d.code == code)
    }
}

fn department(i: usize, parent_id: Option<u64>, sort: u32) -> Department {
    let base = DEPARTMENT_NAMES[i % DEPARTMENT_NAMES.len()];
    let name = if i < DEPARTMENT_NAMES.len() {
        base.to_string()
    } else {
        format!("{base} {}", i / DEPARTMENT_NAMES.len() + 1)
    };
    Department {
        id: i as u64 + 1,
        code: format!("D{:03}", i + 1),
        description: None,
        parent_id: parent_id.map(|p| p + 1),
        is_active: true,
        head_id: None,
        created_at: "2015-01-01T00:00:00".into(),
        last_modified_at: "2025-01-01T00:00:00".into(),
        sort_order_in_siblings: sort,
        name,
    }
}

fn establishment(i: usize) -> Establishment {
    let (name, city, zip) = [
        ("Sandbox SAS Paris", "Paris", "75002"),
        ("Sandbox SAS Lyon", "Lyon", "69002"),
        ("Sandbox GmbH", "München", "80331"),
    ][i % 3];
    Establishment {
        id: i as u64 + 1,
        name: name.into(),
        legal_unit_id: if i == 2 { 2 } else { 1 },
        code: format!("E{:02}", i + 1),
        street: format!("{} rue de la Paix", i + 1),
        zip_code: zip.into(),
        city: city.into(),
        country: if i == 2 { "DE".into() } else { "FR".into() },
        timezone_id: if i == 2 {
            "Europe/Berlin".into()
        } else {
            "Europe/Paris".into()
        },
        is_archived: false,
    }
}

fn standard_definitions() -> Vec<ExtDefinition> {
    let sub = |id: u64, code: &str, name: &str, kind: ExtKind| ExtDefinition {
        id,
        code: code.into(),
        name: name.into(),
        kind,
        multiple: false,
        editable: true,
    };
    vec![
        sub(1, "e_tshirt", "T-shirt size", ExtKind::Text),
        sub(2, "e_badge_date", "Badge issued on", ExtKind::Date),
        ExtDefinition {
            id: 3,
            code: "e_formation".into(),
            name: "Formations".into(),
            multiple: true,
            editable: true,
            kind: ExtKind::Compound(vec![
                sub(4, "e_title", "Title", ExtKind::Text),
                sub(5, "e_link", "Link", ExtKind::Text),
                sub(6, "e_progress", "Progress", ExtKind::Number),
                sub(7, "e_score", "Score", ExtKind::Number),
                sub(
                    8,
                    "e_last_completion_date",
                    "Last completion",
                    ExtKind::Date,
                ),
            ]),
        },
    ]
}

/// Lower-case ASCII rendering of a name, for logins and emails.
pub(crate) fn ascii_fold(s: &str) -> String {
    s.chars()
        .filter_map(|c| {
            let c = match c {
                'à' | 'á' | 'â' | 'ä' | 'À' | 'Á' | 'Â' | 'Ä' => 'a',
                'ç' | 'Ç' => 'c',
                'é' | 'è' | 'ê' | 'ë' | 'É' | 'È' | 'Ê' | 'Ë' => 'e',
                'ï' | 'î' | 'Ï' | 'Î' => 'i',
                'ñ' | 'Ñ' => 'n',
                'ö' | 'ô' | 'Ö' | 'Ô' => 'o',
                'ü' | 'û' | 'ú' | 'Ü' | 'Û' | 'Ú' => 'u',
                c => c,
            };
            c.is_ascii_alphanumeric().then(|| c.to_ascii_lowercase())
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn same_seed_same_tenant_and_other_seed_differs() {
        assert_eq!(Tenant::generate(7, 300), Tenant::generate(7, 300));
        assert_ne!(Tenant::generate(7, 300), Tenant::generate(8, 300));
    }

    #[test]
    fn proportions_and_shapes() {
        let t = Tenant::generate(42, 2000);
        let n = t.users.len() as f64;
        let now = DEFAULT_EPOCH;
        let share =
            |f: &dyn Fn(&User) -> bool| t.users.iter().filter(|u| f(u)).count() as f64 / n * 100.0;
        let near = |got: f64, want: u64| (got - want as f64).abs() <= (want as f64 * 0.5).max(1.5);
        assert!(near(
            share(&|u| Tenant::is_former(u, now)),
            proportions::FORMER
        ));
        assert!(near(
            share(&|u| u.dt_contract_start.as_deref().is_some_and(|s| s > now)),
            proportions::FUTURE_HIRE
        ));
        assert!(near(
            share(&|u| u.dt_contract_start.is_none()),
            proportions::NO_START_DATE
        ));
        assert!(near(
            share(&|u| u.mail.is_none()),
            proportions::MISSING_MAIL
        ));
        assert!(near(
            share(&|u| u.extended.contains_key("e_tshirt")),
            proportions::TSHIRT
        ));
        assert!(near(
            share(&|u| u.extended.contains_key("e_badge_date")),
            proportions::BADGE_DATE
        ));
        assert!(near(
            share(&|u| u.extended.contains_key("e_formation")),
            proportions::FORMATION
        ));
        let mut mails: Vec<_> = t.users.iter().filter_map(|u| u.mail.as_deref()).collect();
        let total = mails.len();
        mails.sort();
        mails.dedup();
        assert!(total > mails.len(), "some duplicate work emails");
        assert!(share(&|u| !(u.first_name.is_ascii() && u.last_name.is_ascii())) > 10.0);
        for c in ['É', 'ö', 'ñ', 'ç'] {
            assert!(
                t.users
                    .iter()
                    .any(|u| u.first_name.contains(c) || u.last_name.contains(c)),
                "{c}"
            );
        }
        assert!(
            t.users
                .iter()
                .any(|u| u.extended.get("e_formation").is_some_and(|o| o.len() > 1))
        );
        // Logins are unique.
        let mut logins: Vec<_> = t.users.iter().map(|u| &u.login).collect();
        logins.sort();
        logins.dedup();
        assert_eq!(logins.len(), t.users.len());
        assert_eq!(t.departments.len(), 100);
        assert!(
            t.departments
                .iter()
                .skip(1)
                .all(|d| d.parent_id.is_some_and(|p| p < d.id))
        );
    }

    #[test]
    fn managers_form_a_valid_hierarchy() {
        let t = Tenant::generate(3, 500);
        for u in &t.users {
            let mut seen = 0;
            let mut cur = u.manager_id;
            while let Some(m) = cur {
                assert!(t.user(m).is_some(), "manager {m} exists");
                seen += 1;
                assert!(seen < 100, "no cycle from {}", u.id);
                cur = t.user(m).and_then(|m| m.manager_id);
            }
        }
        assert_eq!(t.users.iter().filter(|u| u.manager_id.is_none()).count(), 1);
    }
}
