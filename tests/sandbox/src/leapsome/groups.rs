//! `/Groups`: Leapsome teams. No answer lists members (Leapsome's `members` has
//! `maxItems: 0`); a user's `groups` shows its teams. List (filter `displayName eq`, `startIndex`/`count` up to
//! 1000), get, create, and the partial-JSON PATCH with `members` (at most 100 per call) and
//! `replaceMembers`.
//!
//! Choices where the notes leave room: a duplicate `displayName` (case-insensitive) is a 409;
//! a member may be named by Leapsome id or `externalId`, and an unknown one is a 400 naming
//! it (nothing is changed).

use serde_json::{Map, Value, json};

use super::state::{Directory, GROUP_SCHEMA, Team};
use super::{
    Ctx, MAX_GROUPS_PAGE, MAX_MEMBERS_PER_PATCH, Query, ScimError, kind_of, list_response,
    refuse_patch_op,
};

/// The JSON view of a team. Like Leapsome's (`members` has `maxItems: 0`), it never lists
/// the members: they show on each user's `groups`.
pub fn view(ctx: &Ctx, t: &Team) -> Value {
    let mut v = json!({
        "schemas": [GROUP_SCHEMA],
        "id": t.id,
        "displayName": t.display_name,
        "members": [],
        "meta": {"resourceType": "Group", "location": format!("{}/Groups/{}", ctx.base_url, t.id)},
    });
    if let Some(x) = &t.external_id {
        v["externalId"] = json!(x);
    }
    v
}

/// `GET /Groups`.
pub fn list(ctx: &Ctx, dir: &Directory, query: &Query) -> Result<Value, ScimError> {
    let (offset, count) = query.paging(MAX_GROUPS_PAGE)?;
    let filter = query.eq_filter("displayName")?;
    let matching: Vec<&Team> = dir
        .teams
        .iter()
        .filter(|t| {
            filter
                .as_deref()
                .is_none_or(|f| t.display_name.eq_ignore_ascii_case(f))
        })
        .collect();
    let page = matching
        .iter()
        .skip(offset)
        .take(count)
        .map(|t| view(ctx, t))
        .collect();
    Ok(list_response(matching.len(), offset, page))
}

/// `GET /Groups/{id}`.
pub fn get(ctx: &Ctx, dir: &Directory, id: &str) -> Result<Value, ScimError> {
    let i = dir.find_team(id).ok_or_else(|| not_found(id))?;
    Ok(view(ctx, &dir.teams[i]))
}

fn not_found(id: &str) -> ScimError {
    ScimError::new(404, format!("Group {id} not found"))
}

/// `POST /Groups`: `displayName` required, optional `externalId` and `members` (≤ 100).
pub fn create(
    ctx: &Ctx,
    dir: &mut Directory,
    body: &Map<String, Value>,
) -> Result<Value, ScimError> {
    refuse_patch_op(body)?;
    let mut team = Team::default();
    let mut members = None;
    for (k, v) in body {
        match k.as_str() {
            "schemas" | "id" | "meta" => {}
            "displayName" => team.display_name = name(v)?,
            "externalId" => team.external_id = text(v, "externalId")?,
            "members" => members = Some(member_ids(dir, v)?),
            other => {
                return Err(
                    ScimError::invalid(format!("unknown attribute '{other}'")).typed("invalidPath")
                );
            }
        }
    }
    if team.display_name.is_empty() {
        return Err(ScimError::invalid("displayName is required"));
    }
    if dir.team_by_name(&team.display_name).is_some() {
        return Err(duplicate(&team.display_name));
    }
    for m in members.unwrap_or_default() {
        if !team.members.contains(&m) {
            team.members.push(m);
        }
    }
    team.id = dir.next_team_id();
    let v = view(ctx, &team);
    dir.teams.push(team);
    Ok(v)
}

/// `PATCH /Groups/{id}`: `displayName`, `members` (≤ 100) and `replaceMembers`.
pub fn patch(
    ctx: &Ctx,
    dir: &mut Directory,
    id: &str,
    body: &Map<String, Value>,
) -> Result<Value, ScimError> {
    refuse_patch_op(body)?;
    let i = dir.find_team(id).ok_or_else(|| not_found(id))?;
    let mut team = dir.teams[i].clone();
    let mut members = None;
    let mut replace = false;
    for (k, v) in body {
        match k.as_str() {
            "schemas" | "id" | "meta" => {}
            "displayName" => team.display_name = name(v)?,
            "externalId" => team.external_id = text(v, "externalId")?,
            "members" => members = Some(member_ids(dir, v)?),
            "replaceMembers" => {
                replace = match v {
                    Value::Null => false,
                    Value::Bool(b) => *b,
                    other => {
                        return Err(ScimError::invalid(format!(
                            "replaceMembers must be a boolean, not {}",
                            kind_of(other)
                        )));
                    }
                };
            }
            other => {
                return Err(
                    ScimError::invalid(format!("unknown attribute '{other}'")).typed("invalidPath")
                );
            }
        }
    }
    if team.display_name.is_empty() {
        return Err(ScimError::invalid("displayName cannot be empty"));
    }
    if !team
        .display_name
        .eq_ignore_ascii_case(&dir.teams[i].display_name)
        && dir.team_by_name(&team.display_name).is_some()
    {
        return Err(duplicate(&team.display_name));
    }
    match members {
        Some(list) => {
            if replace {
                team.members.clear();
            }
            for m in list {
                if !team.members.contains(&m) {
                    team.members.push(m);
                }
            }
        }
        None if replace => team.members.clear(),
        None => {}
    }
    dir.teams[i] = team;
    Ok(view(ctx, &dir.teams[i]))
}

fn duplicate(name: &str) -> ScimError {
    ScimError::new(409, format!("a team named '{name}' already exists")).typed("uniqueness")
}

fn name(v: &Value) -> Result<String, ScimError> {
    Ok(text(v, "displayName")?.unwrap_or_default())
}

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

/// `members[{value}]` → Leapsome ids; more than 100, or an unknown member, is a 400.
fn member_ids(dir: &Directory, v: &Value) -> Result<Vec<String>, ScimError> {
    let items = match v {
        Value::Null => return Ok(Vec::new()),
        Value::Array(a) => a,
        other => {
            return Err(ScimError::invalid(format!(
                "members must be an array, not {}",
                kind_of(other)
            )));
        }
    };
    if items.len() > MAX_MEMBERS_PER_PATCH {
        return Err(ScimError::invalid(format!(
            "at most {MAX_MEMBERS_PER_PATCH} members per request, got {}",
            items.len()
        ))
        .typed("tooMany"));
    }
    let mut out = Vec::with_capacity(items.len());
    for (i, item) in items.iter().enumerate() {
        let reference = match item {
            Value::Object(m) => m
                .get("value")
                .map(|v| text(v, &format!("members[{i}].value")))
                .transpose()?
                .flatten(),
            other => {
                return Err(ScimError::invalid(format!(
                    "members[{i}] must be an object {{\"value\": …}}, not {}",
                    kind_of(other)
                )));
            }
        }
        .ok_or_else(|| ScimError::invalid(format!("members[{i}].value is required")))?;
        let idx = dir
            .find_user(&reference)
            .ok_or_else(|| ScimError::invalid(format!("members[{i}]: no account '{reference}'")))?;
        out.push(dir.users[idx].id.clone());
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::leapsome::{LeapsomeOptions, ScimUser};

    #[test]
    fn members_are_batched_and_replaced() {
        let options = LeapsomeOptions::default();
        let ctx = Ctx {
            base_url: "http://sim/scim/v1".into(),
            options: &options,
        };
        let mut dir = Directory::new();
        let ids: Vec<String> = (0..150)
            .map(|i| dir.add_user(ScimUser::new("", &format!("u{i}@sandbox.example"))))
            .collect();
        let members =
            |ids: &[String]| json!(ids.iter().map(|i| json!({"value": i})).collect::<Vec<_>>());
        let body = |v: Value| v.as_object().cloned().unwrap_or_default();
        let t = create(&ctx, &mut dir, &body(json!({"displayName": "Sales"}))).unwrap();
        let id = t["id"].as_str().unwrap().to_string();
        let too_many = body(json!({"members": members(&ids[..101])}));
        assert_eq!(
            patch(&ctx, &mut dir, &id, &too_many).unwrap_err().status,
            400
        );
        patch(
            &ctx,
            &mut dir,
            &id,
            &body(json!({"members": members(&ids[..100])})),
        )
        .unwrap();
        patch(
            &ctx,
            &mut dir,
            &id,
            &body(json!({"members": members(&ids[100..])})),
        )
        .unwrap();
        assert_eq!(dir.teams[0].members.len(), 150);
        let v = patch(
            &ctx,
            &mut dir,
            &id,
            &body(json!({"members": members(&ids[..2]), "replaceMembers": true})),
        )
        .unwrap();
        assert_eq!(v["members"], json!([]), "a group never lists its members");
        assert_eq!(dir.teams[0].members.len(), 2);
        assert_eq!(
            create(&ctx, &mut dir, &body(json!({"displayName": "sales"})))
                .unwrap_err()
                .status,
            409
        );
        let unknown = body(json!({"members": [{"value": "nope"}]}));
        assert!(
            patch(&ctx, &mut dir, &id, &unknown)
                .unwrap_err()
                .detail
                .contains("nope")
        );
    }
}
