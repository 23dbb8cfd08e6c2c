//! Contract 0.1.0 (`wit/since_v0.1.0`, frozen): its own bindings and the
//! adapter that makes a 0.1 plugin look like a 0.2 one to the rest of the host.
//!
//! Coming in (plugin → host), everything is widened to the latest types:
//!
//! - the manifest gains what 0.1 could not say: `stores` and
//!   `create-requires` from the `muster:declarations` custom section
//!   ([`crate::runtime::declarations`]), no rate limits, and
//!   `max-members-per-change = 1` (0.1 adds and removes one member per call);
//! - the free-text gender becomes the 0.2 `gender` enum through the one
//!   vocabulary this host understands ([`parse_gender`]); an unknown spelling
//!   is a `record-problem` naming the record and the field, and the record
//!   goes on without a gender;
//! - pages are full reads (`coverage: full`), without a watermark;
//! - `unauthorized` gains an empty explanation.
//!
//! Going out (host → plugin), 0.2 operations are narrowed back
//! ([`operation_out`]); what 0.1 cannot express (a member change of more than
//! one member, reads of one record) is refused before it
//! reaches the plugin, as [`Unsupported`]; row changes become a write of
//! the whole compound field, which is what a 0.1 update always meant.
//!
//! `http` and `log` did not change between the versions: the bindings reuse
//! the latest ones (`with`), so the host implements each import once.

use wasmtime::Store;

use super::Call;
use super::latest as l;
use crate::runtime::declarations::Declarations;
use crate::runtime::state::HostState;

wasmtime::component::bindgen!({
    path: "../wit/since_v0.1.0",
    world: "connector-plugin",
    additional_derives: [PartialEq],
    with: {
        "muster:connector/http": super::latest::muster::connector::http,
        "muster:connector/log": super::latest::muster::connector::log,
    },
});

use self::exports::muster::connector::connector as c;
use self::exports::muster::connector::target as t;
use self::muster::connector::types as ty;

/// The `types` interface has no functions; its (empty) host trait is
/// implemented so the generated `add_to_linker` accepts the state.
impl ty::Host for crate::runtime::state::HostState {}

/// Adds 0.1's imports to `linker`, under their 0.1 names
/// (`muster:connector/http@0.1.0`…), served by the latest host
/// implementations.
///
/// The generated world-level `add_to_linker` cannot be used: for an
/// interface taken from the latest bindings (`with`), it registers the
/// functions under the *latest* interface's name, which the latest world
/// already defines.
pub fn add_to_linker(
    linker: &mut wasmtime::component::Linker<crate::runtime::state::HostState>,
) -> wasmtime::Result<()> {
    use crate::runtime::state::HostState;
    type D = wasmtime::component::HasSelf<HostState>;
    ty::add_to_linker::<HostState, D>(linker, |s| s)?;
    l::muster::connector::http::add_to_linker_instance::<HostState, D>(
        &mut linker.instance("muster:connector/http@0.1.0")?,
        |s| s,
    )?;
    l::muster::connector::log::add_to_linker_instance::<HostState, D>(
        &mut linker.instance("muster:connector/log@0.1.0")?,
        |s| s,
    )
}

pub use super::Unsupported;

/// A 0.1 instance and the component's declarations (which its manifest
/// lacks): contract 0.1's [`super::Contract`], every call adapted.
pub struct Adapted {
    pub plugin: ConnectorPlugin,
    pub declarations: Declarations,
}

fn lift<T, U>(
    r: wasmtime::Result<Result<T, ty::ConnectorError>>,
    f: impl FnOnce(T) -> U,
) -> Call<U> {
    r.map(|r| r.map(f).map_err(error))
}

impl super::Contract for Adapted {
    fn describe(&self, s: &mut Store<HostState>) -> wasmtime::Result<l::Manifest> {
        let m = self.plugin.muster_connector_connector().call_describe(s)?;
        Ok(manifest(m, &self.declarations))
    }

    fn configure(&self, s: &mut Store<HostState>, settings: &[(String, String)]) -> Call<()> {
        let call = self.plugin.muster_connector_connector();
        lift(call.call_configure(s, settings), |u| u)
    }

    fn check(&self, s: &mut Store<HostState>) -> Call<()> {
        lift(
            self.plugin.muster_connector_connector().call_check(s),
            |u| u,
        )
    }

    /// `since` is dropped: 0.1 reads are always full (and say so).
    fn read_people(
        &self,
        s: &mut Store<HostState>,
        cursor: Option<&str>,
        _since: Option<&str>,
    ) -> Call<l::PersonPage> {
        let call = self.plugin.muster_connector_source();
        lift(call.call_read_people(s, cursor), person_page)
    }

    fn read_groups(&self, s: &mut Store<HostState>, cursor: Option<&str>) -> Call<l::GroupPage> {
        let call = self.plugin.muster_connector_source();
        lift(call.call_read_groups(s, cursor), group_page)
    }

    fn read_accounts(&self, s: &mut Store<HostState>, cursor: Option<&str>) -> Call<l::PersonPage> {
        let call = self.plugin.muster_connector_target();
        lift(call.call_read_accounts(s, cursor), person_page)
    }

    fn read_target_groups(
        &self,
        s: &mut Store<HostState>,
        cursor: Option<&str>,
    ) -> Call<l::GroupPage> {
        let call = self.plugin.muster_connector_target();
        lift(call.call_read_groups(s, cursor), group_page)
    }

    /// 0.1 cannot read one person.
    fn read_person(
        &self,
        _s: &mut Store<HostState>,
        _id: &str,
    ) -> Result<Call<Option<l::Person>>, Unsupported> {
        Err(Unsupported("read-person"))
    }

    /// 0.1 cannot read one account.
    fn read_account(
        &self,
        _s: &mut Store<HostState>,
        _id: &str,
    ) -> Result<Call<Option<l::Person>>, Unsupported> {
        Err(Unsupported("read-account"))
    }

    /// An operation with no 0.1 form is refused; nothing is sent then.
    fn apply(
        &self,
        s: &mut Store<HostState>,
        op: &l::Operation,
    ) -> Result<Call<l::Applied>, Unsupported> {
        let op = operation_out(op)?;
        let call = self.plugin.muster_connector_target();
        Ok(lift(call.call_apply(s, &op), |a| l::Applied {
            target_id: a.target_id,
        }))
    }
}

/// The vendor spellings of gender muster understands (English, French and
/// German forms, and Lucca's `Misc`/`Undefined`). A 0.2 connector maps its
/// vendor's spelling itself; for a 0.1 one the host does it here.
pub fn parse_gender(text: &str) -> Option<l::Gender> {
    match text.trim().to_lowercase().as_str() {
        "male" | "m" | "man" | "homme" | "masculin" | "männlich" => Some(l::Gender::Male),
        "female" | "f" | "woman" | "femme" | "féminin" | "weiblich" => Some(l::Gender::Female),
        "diverse" | "misc" | "other" | "non-binary" | "nonbinary" | "divers" | "x" => {
            Some(l::Gender::Diverse)
        }
        "undefined" | "unknown" | "unspecified" | "not_stated" => Some(l::Gender::Undefined),
        _ => None,
    }
}

/// The 0.1 manifest with the component's declarations, as a 0.2 manifest.
pub fn manifest(m: c::Manifest, declarations: &Declarations) -> l::Manifest {
    let stores = declarations.stores.as_ref().map(|s| {
        let mut fields: Vec<l::FieldRef> = s
            .fields
            .iter()
            .map(|f| l::field_ref_from_core(&f))
            .collect();
        if s.any_custom {
            fields.push(l::FieldRef::Custom("*".into()));
        }
        fields
    });
    l::Manifest {
        name: m.name,
        version: m.version,
        description: m.description,
        capabilities: m.capabilities.into_iter().map(capability).collect(),
        config_keys: m
            .config_keys
            .into_iter()
            .map(|k| l::ConfigKey {
                name: k.name,
                description: k.description,
                required: k.required,
            })
            .collect(),
        hosts: m.hosts,
        credential_slots: m
            .credential_slots
            .into_iter()
            .map(|s| l::CredentialSlot {
                name: s.name,
                description: s.description,
                header: s.header,
                template: s.template,
            })
            .collect(),
        rate_limits: Vec::new(),
        stores,
        create_requires: declarations
            .create_requires
            .iter()
            .map(|f| l::field_ref_from_core(&f))
            .collect(),
        max_members_per_change: 1,
    }
}

fn capability(cap: c::Capability) -> l::Capability {
    match cap {
        c::Capability::ReadPeople => l::Capability::ReadPeople,
        c::Capability::ReadGroups => l::Capability::ReadGroups,
        c::Capability::ReadAccounts => l::Capability::ReadAccounts,
        c::Capability::ReadTargetGroups => l::Capability::ReadTargetGroups,
        c::Capability::WriteAccounts => l::Capability::WriteAccounts,
        c::Capability::WriteGroups => l::Capability::WriteGroups,
    }
}

/// A 0.1 connector error as the latest one.
pub fn error(e: ty::ConnectorError) -> l::ConnectorError {
    match e {
        ty::ConnectorError::Unauthorized => l::ConnectorError::Unauthorized(String::new()),
        ty::ConnectorError::Forbidden(s) => l::ConnectorError::Forbidden(s),
        ty::ConnectorError::NotFound => l::ConnectorError::NotFound,
        ty::ConnectorError::Conflict(s) => l::ConnectorError::Conflict(s),
        ty::ConnectorError::RateLimited(n) => l::ConnectorError::RateLimited(n),
        ty::ConnectorError::Invalid(s) => l::ConnectorError::Invalid(s),
        ty::ConnectorError::Unavailable(s) => l::ConnectorError::Unavailable(s),
        ty::ConnectorError::Unsupported => l::ConnectorError::Unsupported,
        ty::ConnectorError::Other(s) => l::ConnectorError::Other(s),
    }
}

fn date_in(d: ty::Date) -> l::Date {
    l::Date {
        year: d.year,
        month: d.month,
        day: d.day,
    }
}

fn date_out(d: &l::Date) -> ty::Date {
    ty::Date {
        year: d.year,
        month: d.month,
        day: d.day,
    }
}

fn scalar_in(s: ty::Scalar) -> l::Scalar {
    match s {
        ty::Scalar::Text(t) => l::Scalar::Text(t),
        ty::Scalar::Date(d) => l::Scalar::Date(date_in(d)),
        ty::Scalar::Number(n) => l::Scalar::Number(n),
        ty::Scalar::Boolean(b) => l::Scalar::Boolean(b),
    }
}

fn scalar_out(s: &l::Scalar) -> ty::Scalar {
    match s {
        l::Scalar::Text(t) => ty::Scalar::Text(t.clone()),
        l::Scalar::Date(d) => ty::Scalar::Date(date_out(d)),
        l::Scalar::Number(n) => ty::Scalar::Number(*n),
        l::Scalar::Boolean(b) => ty::Scalar::Boolean(*b),
    }
}

fn value_in(v: ty::FieldValue) -> l::FieldValue {
    match v {
        ty::FieldValue::Text(t) => l::FieldValue::Text(t),
        ty::FieldValue::Date(d) => l::FieldValue::Date(date_in(d)),
        ty::FieldValue::Number(n) => l::FieldValue::Number(n),
        ty::FieldValue::Boolean(b) => l::FieldValue::Boolean(b),
        ty::FieldValue::Rows(rows) => l::FieldValue::Rows(
            rows.into_iter()
                .map(|row| row.into_iter().map(|(k, s)| (k, scalar_in(s))).collect())
                .collect(),
        ),
    }
}

fn value_out(v: &l::FieldValue) -> ty::FieldValue {
    match v {
        l::FieldValue::Text(t) => ty::FieldValue::Text(t.clone()),
        l::FieldValue::Date(d) => ty::FieldValue::Date(date_out(d)),
        l::FieldValue::Number(n) => ty::FieldValue::Number(*n),
        l::FieldValue::Boolean(b) => ty::FieldValue::Boolean(*b),
        l::FieldValue::Rows(rows) => ty::FieldValue::Rows(
            rows.iter()
                .map(|row| {
                    row.iter()
                        .map(|(k, s)| (k.clone(), scalar_out(s)))
                        .collect()
                })
                .collect(),
        ),
    }
}

/// A 0.1 person as the latest one. A gender spelling outside
/// [`parse_gender`]'s vocabulary is left out and reported on `problems`.
pub fn person_in(p: ty::Person, problems: &mut Vec<l::RecordProblem>) -> l::Person {
    let gender = match p.gender.as_deref().map(str::trim) {
        None | Some("") => None,
        Some(text) => {
            let parsed = parse_gender(text);
            if parsed.is_none() {
                problems.push(l::RecordProblem {
                    record_id: p.id.clone(),
                    field: Some(l::FieldRef::Canonical(l::Field::Gender)),
                    message: format!(
                        "unknown gender {text:?}; left empty (this host understands male, \
                         female, diverse and undefined, in English, French or German)"
                    ),
                });
            }
            parsed
        }
    };
    l::Person {
        id: p.id,
        employee_number: p.employee_number,
        given_name: p.given_name,
        family_name: p.family_name,
        work_email: p.work_email,
        personal_email: p.personal_email,
        phone: p.phone,
        login: p.login,
        birth_date: p.birth_date.map(date_in),
        start_date: p.start_date.map(date_in),
        end_date: p.end_date.map(date_in),
        job_title: p.job_title,
        gender,
        department_id: p.department_id,
        manager_id: p.manager_id,
        legal_entity_id: p.legal_entity_id,
        contract_type: p.contract_type,
        active: p.active,
        custom_fields: p
            .custom_fields
            .into_iter()
            .map(|(k, v)| (k, value_in(v)))
            .collect(),
    }
}

/// The gender's name in 0.1, the spelling [`parse_gender`] reads back.
fn gender_name(g: l::Gender) -> &'static str {
    match g {
        l::Gender::Male => "male",
        l::Gender::Female => "female",
        l::Gender::Diverse => "diverse",
        l::Gender::Undefined => "undefined",
    }
}

/// A latest person as a 0.1 one.
pub fn person_out(p: &l::Person) -> ty::Person {
    ty::Person {
        id: p.id.clone(),
        employee_number: p.employee_number.clone(),
        given_name: p.given_name.clone(),
        family_name: p.family_name.clone(),
        work_email: p.work_email.clone(),
        personal_email: p.personal_email.clone(),
        phone: p.phone.clone(),
        login: p.login.clone(),
        birth_date: p.birth_date.as_ref().map(date_out),
        start_date: p.start_date.as_ref().map(date_out),
        end_date: p.end_date.as_ref().map(date_out),
        job_title: p.job_title.clone(),
        gender: p.gender.map(|g| gender_name(g).to_owned()),
        department_id: p.department_id.clone(),
        manager_id: p.manager_id.clone(),
        legal_entity_id: p.legal_entity_id.clone(),
        contract_type: p.contract_type.clone(),
        active: p.active,
        custom_fields: p
            .custom_fields
            .iter()
            .map(|(k, v)| (k.clone(), value_out(v)))
            .collect(),
    }
}

/// A 0.1 page as a full, watermark-less 0.2 page; the only problems are
/// the gender spellings [`person_in`] could not read.
pub fn person_page(page: ty::PersonPage) -> l::PersonPage {
    let mut problems = Vec::new();
    let items = page
        .items
        .into_iter()
        .map(|p| person_in(p, &mut problems))
        .collect();
    l::PersonPage {
        items,
        next: page.next,
        coverage: l::Coverage::Full,
        watermark: None,
        problems,
    }
}

/// A 0.1 group page as a 0.2 one (no problems).
pub fn group_page(page: ty::GroupPage) -> l::GroupPage {
    l::GroupPage {
        items: page
            .items
            .into_iter()
            .map(|g| l::Group {
                id: g.id,
                name: g.name,
                parent_id: g.parent_id,
                members: g.members,
            })
            .collect(),
        next: page.next,
        problems: Vec::new(),
    }
}

/// A field reference in 0.1's spelling of `account-update.fields`:
/// kebab-case for canonical fields (`work-email`), `custom:<code>`.
pub fn field_name(field: &l::FieldRef) -> String {
    match field {
        l::FieldRef::Canonical(f) => l::field_to_core(*f).name().replace('_', "-"),
        l::FieldRef::Custom(code) => format!("custom:{code}"),
    }
}

/// The fields a 0.1 update writes. 0.1 has no row changes: a compound field
/// changed row by row is written whole, as 0.1 plugins always did (`person`
/// carries its desired rows), so a 0.1 plugin keeps working under a flow
/// that sets `row_keys`.
fn update_fields(u: &l::AccountUpdate) -> Vec<String> {
    let mut fields: Vec<String> = u.fields.iter().map(field_name).collect();
    for change in &u.rows {
        let name = format!("custom:{}", change.field);
        if !fields.contains(&name) {
            fields.push(name);
        }
    }
    fields
}

/// A latest operation as 0.1 speaks it, or the name of the operation when
/// 0.1 has no way to say it.
pub fn operation_out(op: &l::Operation) -> Result<t::Operation, Unsupported> {
    Ok(match op {
        l::Operation::Create(p) => t::Operation::Create(person_out(p)),
        l::Operation::Update(u) => t::Operation::Update(t::AccountUpdate {
            id: u.id.clone(),
            person: person_out(&u.person),
            fields: update_fields(u),
        }),
        l::Operation::Deactivate(a) => t::Operation::Deactivate(a.id.clone()),
        l::Operation::Reactivate(a) => t::Operation::Reactivate(a.id.clone()),
        l::Operation::SetManager(m) => t::Operation::SetManager(t::ManagerChange {
            id: m.id.clone(),
            manager_id: m.manager_id.clone(),
        }),
        l::Operation::CreateGroup(g) => t::Operation::CreateGroup(t::NewGroup {
            name: g.name.clone(),
            parent_id: g.parent_id.clone(),
        }),
        l::Operation::RenameGroup(g) => t::Operation::RenameGroup((g.id.clone(), g.name.clone())),
        l::Operation::ChangeMembers(m) => member_change(m)?,
    })
}

/// A member change of exactly one member, as `add-member`/`remove-member`.
fn member_change(m: &l::MemberChange) -> Result<t::Operation, Unsupported> {
    let one = |account_id: &String| t::Membership {
        group_id: m.group_id.clone(),
        account_id: account_id.clone(),
    };
    match (m.add.as_slice(), m.remove.as_slice()) {
        ([id], []) => Ok(t::Operation::AddMember(one(id))),
        ([], [id]) => Ok(t::Operation::RemoveMember(one(id))),
        _ => Err(Unsupported("change-members with other than one member")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn person(gender: Option<&str>) -> ty::Person {
        ty::Person {
            id: "42".into(),
            employee_number: None,
            given_name: Some("Ada".into()),
            family_name: None,
            work_email: None,
            personal_email: None,
            phone: None,
            login: None,
            birth_date: Some(ty::Date {
                year: 1990,
                month: 2,
                day: 3,
            }),
            start_date: None,
            end_date: None,
            job_title: None,
            gender: gender.map(String::from),
            department_id: None,
            manager_id: None,
            legal_entity_id: None,
            contract_type: None,
            active: true,
            custom_fields: vec![(
                "e_rows".into(),
                ty::FieldValue::Rows(vec![vec![("e_n".into(), ty::Scalar::Number(1.0))]]),
            )],
        }
    }

    #[test]
    fn gender_vocabulary() {
        assert_eq!(parse_gender(" Homme "), Some(l::Gender::Male));
        assert_eq!(parse_gender("weiblich"), Some(l::Gender::Female));
        assert_eq!(parse_gender("Misc"), Some(l::Gender::Diverse));
        assert_eq!(parse_gender("not_stated"), Some(l::Gender::Undefined));
        assert_eq!(parse_gender("Mme"), None);
    }

    #[test]
    fn a_page_is_full_and_an_unknown_gender_is_a_problem_not_a_lost_record() {
        let page = person_page(ty::PersonPage {
            items: vec![person(Some("Femme")), person(Some("Mme"))],
            next: Some("2".into()),
        });
        assert_eq!(page.items.len(), 2);
        assert_eq!(page.items[0].gender, Some(l::Gender::Female));
        assert_eq!(page.items[1].gender, None);
        assert_eq!(page.coverage, l::Coverage::Full);
        assert_eq!(page.watermark, None);
        assert_eq!(page.next.as_deref(), Some("2"));
        let [problem] = page.problems.as_slice() else {
            panic!("one problem expected: {:?}", page.problems)
        };
        assert_eq!(problem.record_id, "42");
        assert_eq!(
            problem.field,
            Some(l::FieldRef::Canonical(l::Field::Gender))
        );
        assert!(problem.message.contains("Mme"), "{}", problem.message);
    }

    #[test]
    fn a_person_round_trips() {
        let mut problems = Vec::new();
        let p = person(Some("female"));
        let latest = person_in(p.clone(), &mut problems);
        assert!(problems.is_empty());
        assert_eq!(person_out(&latest), p);
    }

    #[test]
    fn operations_narrow_to_0_1() {
        let change = |add: &[&str], remove: &[&str]| {
            l::Operation::ChangeMembers(l::MemberChange {
                group_id: "g".into(),
                add: add.iter().map(|s| s.to_string()).collect(),
                remove: remove.iter().map(|s| s.to_string()).collect(),
            })
        };
        let membership = t::Membership {
            group_id: "g".into(),
            account_id: "a".into(),
        };
        assert_eq!(
            operation_out(&change(&["a"], &[])),
            Ok(t::Operation::AddMember(membership.clone()))
        );
        assert_eq!(
            operation_out(&change(&[], &["a"])),
            Ok(t::Operation::RemoveMember(membership))
        );
        assert!(operation_out(&change(&["a", "b"], &[])).is_err());
        assert!(operation_out(&change(&["a"], &["b"])).is_err());
        assert_eq!(
            operation_out(&l::Operation::Deactivate(l::AccountRef { id: "7".into() })),
            Ok(t::Operation::Deactivate("7".into()))
        );
        assert_eq!(
            operation_out(&l::Operation::RenameGroup(l::GroupRename {
                id: "g".into(),
                name: "Sales".into()
            })),
            Ok(t::Operation::RenameGroup(("g".into(), "Sales".into())))
        );
    }

    #[test]
    fn update_fields_use_0_1_spelling() {
        assert_eq!(
            field_name(&l::FieldRef::Canonical(l::Field::WorkEmail)),
            "work-email"
        );
        assert_eq!(field_name(&l::FieldRef::Custom("e_x".into())), "custom:e_x");
    }

    #[test]
    fn row_changes_become_a_whole_field_write() {
        let row = vec![("e_title".to_string(), l::Scalar::Text("GDPR".into()))];
        let update = l::AccountUpdate {
            id: "7".into(),
            person: person_in(person(None), &mut Vec::new()),
            fields: vec![l::FieldRef::Canonical(l::Field::JobTitle)],
            rows: vec![
                l::RowChange {
                    field: "e_formation".into(),
                    key: "e_title".into(),
                    action: l::RowAction::Add(row),
                },
                l::RowChange {
                    field: "e_formation".into(),
                    key: "e_title".into(),
                    action: l::RowAction::Remove(l::Scalar::Text("Old".into())),
                },
            ],
        };
        let Ok(t::Operation::Update(out)) = operation_out(&l::Operation::Update(update)) else {
            panic!("an update stays an update");
        };
        assert_eq!(out.fields, ["job-title", "custom:e_formation"]);
    }

    #[test]
    fn declarations_fill_the_manifest() {
        let d = Declarations::parse(
            "muster-declarations 1\nstores login custom:*\ncreate-requires login\n",
        )
        .unwrap();
        let m = manifest(
            c::Manifest {
                name: "x".into(),
                version: "1.0.0".into(),
                contract_version: "0.1.0".into(),
                description: String::new(),
                capabilities: vec![c::Capability::ReadAccounts],
                config_keys: vec![],
                hosts: vec![],
                credential_slots: vec![],
            },
            &d,
        );
        let login = l::FieldRef::Canonical(l::Field::Login);
        assert_eq!(
            m.stores,
            Some(vec![login.clone(), l::FieldRef::Custom("*".into())])
        );
        assert_eq!(m.create_requires, vec![login]);
        assert_eq!(m.max_members_per_change, 1);
        assert!(m.rate_limits.is_empty());
        assert_eq!(m.capabilities, vec![l::Capability::ReadAccounts]);
    }
}
