//! `/Users`: list (filter `userName eq`, `startIndex`/`count`), get (by id or `externalId`),
//! create, partial-JSON PATCH, PUT.
//!
//! The published facts this follows strictly (API-NOTES, Leapsome, [C]):
//! - **A create keeps only core attributes** ([`CREATE_KEEPS`]): `userName`, `name`,
//!   `displayName`, `title`, `photos`, `externalId`. Everything else in a POST (the enterprise
//!   extension, `active`, `manager`, `emails`…) is ignored; it must follow in a PATCH.
//! - **PATCH and PUT require `userName`** in the body: 400 "The userName field is required".
//! - Every address in `emails` (and the `userName`) must be in the organisation's domains,
//!   in a POST too (where `emails` is then ignored).
//! - A SCIM-created account is "invited" until the person accepts ([`ScimUser::status`]);
//!   reactivating it leaves it invited and sends no new invitation.
//! - **Attributes outside Leapsome's published user schema are ignored** ([`IGNORED`]): core
//!   `phoneNumbers` and `userType`, enterprise `organization`. On POST, PATCH and PUT alike
//!   they are accepted, not stored and never returned (the stricter reading of the notes, which
//!   do not list them): a connector that writes them would never converge against the real
//!   Leapsome.
//!
//! Choices where the notes leave room (easy to change):
//! - Unknown attributes in a PATCH or PUT are a 400 naming them (a typo in a connector shows
//!   at once); read-only ones (`id`, `meta`, `groups`) are ignored.
//! - Strings are trimmed of nothing and stored as sent; an empty string clears like `null`.
//! - `emails` replaces the whole list; `name` and the enterprise extension merge key by key
//!   (in PATCH; PUT replaces everything).
//! - A PATCH changing `userName` to one in use → 409; to another domain → 400.

use serde_json::{Map, Value, json};

use super::state::{
    Directory, ENTERPRISE, Email, INVITE_EXTENSION, Index, Invitation, ScimUser, USER_SCHEMA,
};
use super::{
    Ctx, MAX_USERS_PAGE, ManagerOnRead, Query, ScimError, kind_of, list_response, refuse_patch_op,
};

/// The JSON view of a user.
pub fn view(ctx: &Ctx, ix: &Index, u: &ScimUser) -> Value {
    let mut v = Map::new();
    v.insert("schemas".into(), json!([USER_SCHEMA, ENTERPRISE]));
    v.insert("id".into(), json!(u.id));
    if let Some(x) = &u.external_id {
        v.insert("externalId".into(), json!(x));
    }
    v.insert("userName".into(), json!(u.user_name));
    let mut name = Map::new();
    put_opt(&mut name, "givenName", &u.given_name);
    put_opt(&mut name, "familyName", &u.family_name);
    if !name.is_empty() {
        v.insert("name".into(), Value::Object(name));
    }
    put_opt(&mut v, "displayName", &u.display_name);
    put_opt(&mut v, "title", &u.title);
    v.insert(
        "emails".into(),
        Value::Array(
            u.emails
                .iter()
                .map(|e| {
                    let mut m = json!({"value": e.value, "primary": e.primary});
                    if let Some(k) = &e.kind {
                        m["type"] = json!(k);
                    }
                    m
                })
                .collect(),
        ),
    );
    v.insert("active".into(), json!(u.active));
    v.insert(
        "groups".into(),
        Value::Array(
            ix.teams_of
                .get(u.id.as_str())
                .map(Vec::as_slice)
                .unwrap_or_default()
                .iter()
                .map(|t| {
                    json!({
                        "value": t.id,
                        "display": t.display_name,
                        "$ref": format!("{}/Groups/{}", ctx.base_url, t.id),
                    })
                })
                .collect(),
        ),
    );
    let mut ent = Map::new();
    put_opt(&mut ent, "employeeNumber", &u.employee_number);
    put_opt(&mut ent, "department", &u.department);
    if let Some(m) = u.manager.as_deref().and_then(|m| ix.users.get(m)) {
        let value = match ctx.options.manager_on_read {
            ManagerOnRead::ExternalIdElseId => m.external_id.clone().unwrap_or(m.id.clone()),
            ManagerOnRead::Id => m.id.clone(),
            ManagerOnRead::Email => m.user_name.clone(),
        };
        let mut manager = json!({
            "value": value,
            "$ref": format!("{}/Users/{}", ctx.base_url, m.id),
        });
        if let Some(d) = &m.display_name {
            manager["displayName"] = json!(d);
        }
        ent.insert("manager".into(), manager);
    }
    put_opt(&mut ent, "startDate", &u.start_date);
    put_opt(&mut ent, "endDate", &u.end_date);
    put_opt(&mut ent, "birthday", &u.birthday);
    put_opt(&mut ent, "gender", &u.gender);
    v.insert(ENTERPRISE.into(), Value::Object(ent));
    v.insert(
        "meta".into(),
        json!({
            "resourceType": "User",
            "location": format!("{}/Users/{}", ctx.base_url, u.id),
        }),
    );
    Value::Object(v)
}

fn put_opt(m: &mut Map<String, Value>, key: &str, value: &Option<String>) {
    if let Some(x) = value {
        m.insert(key.into(), json!(x));
    }
}

/// `GET /Users`.
pub fn list(ctx: &Ctx, dir: &Directory, query: &Query) -> Result<Value, ScimError> {
    let (offset, count) = query.paging(MAX_USERS_PAGE)?;
    let filter = query.eq_filter("userName")?;
    let matching: Vec<&ScimUser> = dir
        .users
        .iter()
        .filter(|u| {
            filter
                .as_deref()
                .is_none_or(|f| u.user_name.eq_ignore_ascii_case(f))
        })
        .collect();
    let ix = dir.index();
    let page = matching
        .iter()
        .skip(offset)
        .take(count)
        .map(|u| view(ctx, &ix, u))
        .collect();
    Ok(list_response(matching.len(), offset, page))
}

/// `GET /Users/{id}` (id or `externalId`).
pub fn get(ctx: &Ctx, dir: &Directory, id: &str) -> Result<Value, ScimError> {
    let i = dir.find_user(id).ok_or_else(|| not_found(id))?;
    Ok(view(ctx, &dir.index(), &dir.users[i]))
}

fn not_found(id: &str) -> ScimError {
    ScimError::new(404, format!("User {id} not found"))
}

/// Attributes a write may carry that Leapsome's published user schema does not list: accepted
/// and dropped, on POST, PATCH and PUT alike (core ones by name, enterprise ones in
/// [`ENTERPRISE_IGNORED`]).
pub const IGNORED: &[&str] = &["phoneNumbers", "userType"];

/// The enterprise-extension attributes Leapsome does not publish: accepted and dropped.
pub const ENTERPRISE_IGNORED: &[&str] = &["organization"];

/// How a write body is applied.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Mode {
    Create,
    Patch,
    Put,
}

/// The attributes a create keeps; the rest of a POST body is ignored (Leapsome's published
/// behaviour). The invitation extension is our own \[I\] spelling of "send an invitation".
pub const CREATE_KEEPS: &[&str] = &[
    "schemas",
    "userName",
    "name",
    "displayName",
    "title",
    "photos",
    "externalId",
    INVITE_EXTENSION,
];

/// `POST /Users`: `Some(view)` for a new account (201), `None` when it already exists (the
/// `{}` answer). `ordinal` is this create's number, for reject rules.
pub fn create(
    ctx: &Ctx,
    dir: &mut Directory,
    body: &Map<String, Value>,
    ordinal: u64,
) -> Result<Option<Value>, ScimError> {
    refuse_patch_op(body)?;
    // `emails` is not kept, but its addresses must still be in the organisation's domains.
    if let Some(list) = body.get("emails") {
        check_email_domains(ctx, &emails(list)?)?;
    }
    let kept: Map<String, Value> = body
        .iter()
        .filter(|(k, _)| CREATE_KEEPS.contains(&k.as_str()))
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect();
    let mut user = ScimUser {
        active: true,
        ..ScimUser::default()
    };
    let invite = apply(&mut user, &kept, dir, Mode::Create)?;
    if user.user_name.is_empty() {
        return Err(ScimError::invalid(
            "userName is required (the account's email)",
        ));
    }
    check_rejects(ctx, &user.user_name, Some(ordinal))?;
    check_domain(ctx, &user.user_name)?;
    if let Some(existing) = dir.user_by_email(&user.user_name) {
        let same = existing.external_id.is_none() || existing.external_id == user.external_id;
        if same {
            return Ok(None);
        }
        return Err(ScimError::new(
            409,
            format!(
                "userName '{}' is already used by another account",
                user.user_name
            ),
        )
        .typed("uniqueness"));
    }
    check_external_id(dir, &user)?;
    user.emails.push(Email::work(&user.user_name));
    user.id = dir.next_user_id();
    if invite {
        dir.invitations.push(Invitation {
            user_id: user.id.clone(),
            email: user.user_name.clone(),
        });
    }
    let v = view(ctx, &dir.index(), &user);
    dir.users.push(user);
    // The view was taken before the push: the new account is in no team yet either way.
    Ok(Some(v))
}

/// `PATCH /Users/{id}`: a partial user JSON.
pub fn patch(
    ctx: &Ctx,
    dir: &mut Directory,
    id: &str,
    body: &Map<String, Value>,
) -> Result<Value, ScimError> {
    refuse_patch_op(body)?;
    write(ctx, dir, id, body, Mode::Patch)
}

/// `PUT /Users/{id}`: the whole user (attributes left out are cleared).
pub fn put(
    ctx: &Ctx,
    dir: &mut Directory,
    id: &str,
    body: &Map<String, Value>,
) -> Result<Value, ScimError> {
    refuse_patch_op(body)?;
    write(ctx, dir, id, body, Mode::Put)
}

fn write(
    ctx: &Ctx,
    dir: &mut Directory,
    id: &str,
    body: &Map<String, Value>,
    mode: Mode,
) -> Result<Value, ScimError> {
    let i = dir.find_user(id).ok_or_else(|| not_found(id))?;
    if body.get("userName").is_none_or(Value::is_null) {
        return Err(ScimError::invalid("The userName field is required"));
    }
    let old = dir.users[i].clone();
    let mut user = if mode == Mode::Put {
        ScimUser {
            id: old.id.clone(),
            external_id: old.external_id.clone(),
            user_name: old.user_name.clone(),
            active: old.active,
            ..ScimUser::default()
        }
    } else {
        old.clone()
    };
    apply(&mut user, body, dir, mode)?;
    if user.user_name.is_empty() {
        return Err(ScimError::invalid("userName cannot be empty"));
    }
    check_rejects(ctx, &user.user_name, None)?;
    if !user.user_name.eq_ignore_ascii_case(&old.user_name) {
        check_domain(ctx, &user.user_name)?;
        if dir.user_by_email(&user.user_name).is_some() {
            return Err(ScimError::new(
                409,
                format!(
                    "userName '{}' is already used by another account",
                    user.user_name
                ),
            )
            .typed("uniqueness"));
        }
    }
    if user.external_id != old.external_id {
        check_external_id(dir, &user)?;
    }
    if body.contains_key("emails") {
        check_email_domains(ctx, &user.emails)?;
    }
    dir.users[i] = user;
    Ok(view(ctx, &dir.index(), &dir.users[i]))
}

fn check_rejects(ctx: &Ctx, email: &str, ordinal: Option<u64>) -> Result<(), ScimError> {
    match ctx
        .options
        .rejects
        .iter()
        .find(|r| r.matches(email, ordinal))
    {
        Some(r) => Err(ScimError::new(r.status, format!("{email}: {}", r.message))),
        None => Ok(()),
    }
}

fn check_domain(ctx: &Ctx, email: &str) -> Result<(), ScimError> {
    let Some((_, domain)) = email.rsplit_once('@') else {
        return Err(ScimError::invalid(format!(
            "userName '{email}' is not an email address"
        )));
    };
    let allowed = &ctx.options.allowed_domains;
    if allowed.is_empty() || allowed.iter().any(|d| d.eq_ignore_ascii_case(domain)) {
        return Ok(());
    }
    Err(ScimError::invalid(format!(
        "the email domain '{domain}' of '{email}' does not belong to the organisation \
         (allowed: {})",
        allowed.join(", ")
    )))
}

/// Every address of `emails` must be in the organisation's domains.
fn check_email_domains(ctx: &Ctx, list: &[Email]) -> Result<(), ScimError> {
    list.iter().try_for_each(|e| {
        check_domain(ctx, &e.value)
            .map_err(|err| ScimError::invalid(format!("emails: {}", err.detail)))
    })
}

fn check_external_id(dir: &Directory, user: &ScimUser) -> Result<(), ScimError> {
    if let Some(x) = &user.external_id
        && dir
            .users
            .iter()
            .any(|u| u.id != user.id && u.external_id.as_deref() == Some(x))
    {
        return Err(ScimError::new(
            409,
            format!("externalId '{x}' is already used by another account"),
        )
        .typed("uniqueness"));
    }
    Ok(())
}

/// Applies a write body to `user`; returns whether the body asks for an invitation.
fn apply(
    user: &mut ScimUser,
    body: &Map<String, Value>,
    dir: &Directory,
    mode: Mode,
) -> Result<bool, ScimError> {
    let mut invite = false;
    for (key, value) in body {
        match key.as_str() {
            "schemas" | "id" | "meta" | "groups" | "photos" => {}
            "externalId" => {
                if mode == Mode::Patch && value.is_null() {
                    user.external_id = None;
                } else {
                    user.external_id = text(value, "externalId")?;
                }
            }
            "userName" => {
                user.user_name = text(value, "userName")?.unwrap_or_default();
            }
            "name" => apply_name(user, value, mode)?,
            "displayName" => user.display_name = text(value, "displayName")?,
            "title" => user.title = text(value, "title")?,
            "active" => {
                user.active = value.as_bool().ok_or_else(|| {
                    ScimError::invalid(format!("active must be a boolean, not {}", kind_of(value)))
                })?;
            }
            "emails" => user.emails = emails(value)?,
            k if IGNORED.contains(&k) => {}
            "manager" => user.manager = manager(value, user, dir, "manager")?,
            k if k == ENTERPRISE => apply_enterprise(user, value, dir, mode)?,
            k if k == INVITE_EXTENSION => {
                let obj = object(value, INVITE_EXTENSION)?;
                for (k, v) in obj {
                    match k.as_str() {
                        "invite" => {
                            invite = v.as_bool().ok_or_else(|| {
                                ScimError::invalid(format!(
                                    "{INVITE_EXTENSION}.invite must be a boolean, not {}",
                                    kind_of(v)
                                ))
                            })?;
                        }
                        other => {
                            return Err(ScimError::invalid(format!(
                                "unknown attribute '{INVITE_EXTENSION}.{other}'"
                            ))
                            .typed("invalidPath"));
                        }
                    }
                }
            }
            other => {
                return Err(
                    ScimError::invalid(format!("unknown attribute '{other}'")).typed("invalidPath")
                );
            }
        }
    }
    Ok(invite && mode == Mode::Create)
}

/// An optional string: `null` and `""` are absent, anything but a string is a 400.
fn text(value: &Value, path: &str) -> Result<Option<String>, ScimError> {
    match value {
        Value::Null => Ok(None),
        Value::String(s) if s.is_empty() => Ok(None),
        Value::String(s) => Ok(Some(s.clone())),
        other => Err(ScimError::invalid(format!(
            "{path} must be a string, not {}",
            kind_of(other)
        ))),
    }
}

fn object<'v>(value: &'v Value, path: &str) -> Result<&'v Map<String, Value>, ScimError> {
    static EMPTY: std::sync::OnceLock<Map<String, Value>> = std::sync::OnceLock::new();
    match value {
        Value::Object(m) => Ok(m),
        Value::Null => Ok(EMPTY.get_or_init(Map::new)),
        other => Err(ScimError::invalid(format!(
            "{path} must be an object, not {}",
            kind_of(other)
        ))),
    }
}

fn apply_name(user: &mut ScimUser, value: &Value, mode: Mode) -> Result<(), ScimError> {
    if value.is_null() || mode != Mode::Patch {
        user.given_name = None;
        user.family_name = None;
    }
    for (k, v) in object(value, "name")? {
        match k.as_str() {
            "givenName" => user.given_name = text(v, "name.givenName")?,
            "familyName" => user.family_name = text(v, "name.familyName")?,
            "formatted" | "middleName" | "honorificPrefix" | "honorificSuffix" => {}
            other => {
                return Err(
                    ScimError::invalid(format!("unknown attribute 'name.{other}'"))
                        .typed("invalidPath"),
                );
            }
        }
    }
    Ok(())
}

fn emails(value: &Value) -> Result<Vec<Email>, ScimError> {
    let items = match value {
        Value::Null => return Ok(Vec::new()),
        Value::Array(a) => a,
        other => {
            return Err(ScimError::invalid(format!(
                "emails must be an array, not {}",
                kind_of(other)
            )));
        }
    };
    let mut out = Vec::new();
    for (i, item) in items.iter().enumerate() {
        let obj = object(item, &format!("emails[{i}]"))?;
        let value = obj
            .get("value")
            .map(|v| text(v, &format!("emails[{i}].value")))
            .transpose()?
            .flatten()
            .ok_or_else(|| ScimError::invalid(format!("emails[{i}].value is required")))?;
        if !value.contains('@') {
            return Err(ScimError::invalid(format!(
                "emails[{i}].value '{value}' is not an email address"
            )));
        }
        let kind = obj
            .get("type")
            .map(|v| text(v, &format!("emails[{i}].type")))
            .transpose()?
            .flatten();
        let primary = match obj.get("primary") {
            None | Some(Value::Null) => false,
            Some(Value::Bool(b)) => *b,
            Some(other) => {
                return Err(ScimError::invalid(format!(
                    "emails[{i}].primary must be a boolean, not {}",
                    kind_of(other)
                )));
            }
        };
        out.push(Email {
            value,
            kind,
            primary,
        });
    }
    Ok(out)
}

/// Resolves a manager reference (id, email or `externalId`; a string or `{"value": …}`) to a
/// Leapsome id.
fn manager(
    value: &Value,
    user: &ScimUser,
    dir: &Directory,
    path: &str,
) -> Result<Option<String>, ScimError> {
    let reference = match value {
        Value::Object(m) => match m.get("value") {
            None => None,
            Some(v) => text(v, &format!("{path}.value"))?,
        },
        other => text(other, path)?,
    };
    let Some(reference) = reference else {
        return Ok(None);
    };
    let found = dir
        .users
        .iter()
        .find(|u| u.id == reference)
        .or_else(|| dir.user_by_external_id(&reference))
        .or_else(|| dir.user_by_email(&reference))
        .ok_or_else(|| {
            ScimError::invalid(format!(
                "{path}: no account with id, email or externalId '{reference}' \
                 (create all users before assigning managers)"
            ))
        })?;
    if !user.id.is_empty() && found.id == user.id {
        return Err(ScimError::invalid(format!(
            "{path}: an account cannot be its own manager"
        )));
    }
    Ok(Some(found.id.clone()))
}

fn date(value: &Value, path: &str) -> Result<Option<String>, ScimError> {
    let Some(s) = text(value, path)? else {
        return Ok(None);
    };
    let ok = s.len() == 10
        && s.as_bytes()[4] == b'-'
        && s.as_bytes()[7] == b'-'
        && match (
            s[0..4].parse::<i64>(),
            s[5..7].parse::<u32>(),
            s[8..10].parse::<u32>(),
        ) {
            (Ok(y), Ok(m), Ok(d)) => valid_day(y, m, d),
            _ => false,
        };
    if !ok {
        return Err(ScimError::invalid(format!(
            "{path} must be a date YYYY-MM-DD, not '{s}'"
        )));
    }
    Ok(Some(s))
}

fn valid_day(y: i64, m: u32, d: u32) -> bool {
    let leap = (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;
    let days = match m {
        1 | 3 | 5 | 7 | 8 | 10 | 12 => 31,
        4 | 6 | 9 | 11 => 30,
        2 if leap => 29,
        2 => 28,
        _ => return false,
    };
    (1..=days).contains(&d)
}

fn apply_enterprise(
    user: &mut ScimUser,
    value: &Value,
    dir: &Directory,
    mode: Mode,
) -> Result<(), ScimError> {
    if value.is_null() || mode != Mode::Patch {
        user.employee_number = None;
        user.department = None;
        user.manager = None;
        user.start_date = None;
        user.end_date = None;
        user.birthday = None;
        user.gender = None;
    }
    let p = |k: &str| format!("{ENTERPRISE}.{k}");
    for (k, v) in object(value, ENTERPRISE)? {
        match k.as_str() {
            "employeeNumber" => user.employee_number = text(v, &p(k))?,
            "department" => user.department = text(v, &p(k))?,
            k if ENTERPRISE_IGNORED.contains(&k) => {}
            "manager" => user.manager = manager(v, user, dir, &p(k))?,
            "startDate" => user.start_date = date(v, &p(k))?,
            "endDate" => user.end_date = date(v, &p(k))?,
            "birthday" => user.birthday = date(v, &p(k))?,
            "gender" => {
                user.gender = match text(v, &p(k))? {
                    None => None,
                    Some(g) => {
                        let g = g.to_ascii_lowercase();
                        if !matches!(g.as_str(), "male" | "female" | "diverse") {
                            return Err(ScimError::invalid(format!(
                                "{} must be male, female or diverse, not '{g}'",
                                p(k)
                            )));
                        }
                        Some(g)
                    }
                };
            }
            other => {
                return Err(
                    ScimError::invalid(format!("unknown attribute '{}'", p(other)))
                        .typed("invalidPath"),
                );
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::leapsome::LeapsomeOptions;

    fn ctx(options: &LeapsomeOptions) -> Ctx<'_> {
        Ctx {
            base_url: "http://sim/scim/v1".into(),
            options,
        }
    }

    fn body(v: Value) -> Map<String, Value> {
        v.as_object().cloned().unwrap_or_default()
    }

    #[test]
    fn create_patch_and_the_dialect() {
        let options = LeapsomeOptions::default();
        let ctx = ctx(&options);
        let mut dir = Directory::new();
        let boss = create(
            &ctx,
            &mut dir,
            &body(json!({"userName": "boss@sandbox.example", "externalId": "1"})),
            1,
        )
        .unwrap()
        .unwrap();
        // A POST keeps the core attributes only: the enterprise extension and `active` are
        // ignored, not refused.
        let v = create(
            &ctx,
            &mut dir,
            &body(json!({
                "userName": "ann@sandbox.example",
                "externalId": "2",
                "name": {"givenName": "Ann", "familyName": "Lee"},
                "title": "Engineer",
                "active": false,
                ENTERPRISE: {"manager": "1", "birthday": "1990-02-28", "gender": "Female"},
                INVITE_EXTENSION: {"invite": true},
            })),
            2,
        )
        .unwrap()
        .unwrap();
        assert_eq!(v["name"]["givenName"], "Ann");
        assert_eq!(v["title"], "Engineer");
        assert_eq!(v["active"], true, "active is not a core attribute");
        assert_eq!(
            v[ENTERPRISE],
            json!({}),
            "enterprise attributes need a PATCH"
        );
        assert_eq!(dir.invitations.len(), 1);
        let ann = v["id"].as_str().unwrap().to_string();
        // Same userName and externalId: `{}`; another externalId: 409.
        let again = body(json!({"userName": "ANN@sandbox.example", "externalId": "2"}));
        assert!(create(&ctx, &mut dir, &again, 3).unwrap().is_none());
        let other = body(json!({"userName": "ann@sandbox.example", "externalId": "9"}));
        assert_eq!(create(&ctx, &mut dir, &other, 4).unwrap_err().status, 409);
        // A PATCH without userName is refused, whatever else it carries.
        let e = patch(&ctx, &mut dir, &ann, &body(json!({"active": false}))).unwrap_err();
        assert_eq!(
            (e.status, e.detail.as_str()),
            (400, "The userName field is required")
        );
        let e = put(&ctx, &mut dir, &ann, &body(json!({"title": "x"}))).unwrap_err();
        assert_eq!(e.detail, "The userName field is required");
        // With it, the enterprise attributes and the manager are stored.
        let v = patch(
            &ctx,
            &mut dir,
            &ann,
            &body(json!({
                "userName": "ann@sandbox.example",
                ENTERPRISE: {"manager": "1", "birthday": "1990-02-28", "gender": "Female"},
            })),
        )
        .unwrap();
        assert_eq!(v[ENTERPRISE]["manager"]["value"], "1");
        assert_eq!(v[ENTERPRISE]["gender"], "female");
        // Partial PATCH merges `name`; null clears.
        let v = patch(
            &ctx,
            &mut dir,
            &ann,
            &body(json!({
                "userName": "ann@sandbox.example",
                "name": {"familyName": "Li"},
                ENTERPRISE: {"manager": null},
            })),
        )
        .unwrap();
        assert_eq!(v["name"]["givenName"], "Ann");
        assert_eq!(v["name"]["familyName"], "Li");
        assert!(v[ENTERPRISE].get("manager").is_none());
        assert_eq!(v[ENTERPRISE]["birthday"], "1990-02-28");
        let op = body(
            json!({"schemas": ["urn:ietf:params:scim:api:messages:2.0:PatchOp"], "Operations": []}),
        );
        assert!(
            patch(&ctx, &mut dir, &ann, &op)
                .unwrap_err()
                .detail
                .contains("PatchOp")
        );
        let bad = body(
            json!({"userName": "ann@sandbox.example", ENTERPRISE: {"startDate": "2024-02-30"}}),
        );
        assert!(
            patch(&ctx, &mut dir, &ann, &bad)
                .unwrap_err()
                .detail
                .contains("startDate")
        );
        let foreign = body(json!({"userName": "x@elsewhere.example"}));
        let e = create(&ctx, &mut dir, &foreign, 5).unwrap_err();
        assert!(
            e.detail.contains("x@elsewhere.example") && e.detail.contains("domain"),
            "{e}"
        );
        assert!(boss["id"].is_string());
    }

    #[test]
    fn every_email_must_be_in_the_organisation() {
        let options = LeapsomeOptions::default();
        let ctx = ctx(&options);
        let mut dir = Directory::new();
        let personal = json!([
            {"value": "bob@sandbox.example", "type": "work", "primary": true},
            {"value": "bob@gmail.example", "type": "home"},
        ]);
        let e = create(
            &ctx,
            &mut dir,
            &body(json!({"userName": "bob@sandbox.example", "emails": personal})),
            1,
        )
        .unwrap_err();
        assert!(e.detail.contains("bob@gmail.example"), "{e}");
        assert!(dir.users.is_empty(), "nothing was created");
        let v = create(
            &ctx,
            &mut dir,
            &body(json!({"userName": "bob@sandbox.example"})),
            2,
        )
        .unwrap()
        .unwrap();
        let id = v["id"].as_str().unwrap();
        let e = patch(
            &ctx,
            &mut dir,
            id,
            &body(json!({"userName": "bob@sandbox.example", "emails": personal})),
        )
        .unwrap_err();
        assert!(e.detail.contains("bob@gmail.example"), "{e}");
        assert_eq!(
            dir.users[0].emails,
            vec![Email::work("bob@sandbox.example")]
        );
    }

    #[test]
    fn reactivating_a_never_accepted_invitation_leaves_it_invited() {
        let options = LeapsomeOptions::default();
        let ctx = ctx(&options);
        let mut dir = Directory::new();
        let v = create(
            &ctx,
            &mut dir,
            &body(json!({"userName": "cy@sandbox.example", INVITE_EXTENSION: {"invite": true}})),
            1,
        )
        .unwrap()
        .unwrap();
        let id = v["id"].as_str().unwrap().to_string();
        assert_eq!(dir.users[0].status(), "invited");
        let set = |active: bool| body(json!({"userName": "cy@sandbox.example", "active": active}));
        patch(&ctx, &mut dir, &id, &set(false)).unwrap();
        assert_eq!(dir.users[0].status(), "deactivated");
        patch(&ctx, &mut dir, &id, &set(true)).unwrap();
        assert_eq!(dir.users[0].status(), "invited");
        assert_eq!(dir.invitations.len(), 1, "no second invitation");
        assert!(dir.accept_invitation(&id));
        assert_eq!(dir.users[0].status(), "active");
    }
}
