//! A Cards space: users, groups and training statistics, and the rules the API enforces on
//! them (190-character names, role/lang/source enums, unique emails, groups by id or name).

use std::collections::BTreeMap;

use serde_json::{Value, json};

/// Longest first name, last name, email, company or group name Cards accepts.
pub const MAX_NAME: usize = 190;
/// `role` values.
pub const ROLES: &[&str] = &["user", "editor", "owner"];
/// `lang` values.
pub const LANGS: &[&str] = &["fr", "en"];
/// `source` (login mode) values.
pub const SOURCES: &[&str] = &["app", "sso", "GoogleOAuth", "MicrosoftOAuth", "AppleOAuth"];

/// A Cards user.
#[derive(Debug, Clone, PartialEq)]
pub struct CardsUser {
    pub id: u64,
    pub firstname: String,
    pub lastname: String,
    pub email: Option<String>,
    pub role: String,
    pub company: Option<String>,
    pub phone: Option<String>,
    /// Login mode: `app` (password) or `sso`, or an OAuth provider.
    pub source: String,
    pub lang: String,
    pub enable_ranking: u8,
    /// Group ids, in the order they were given.
    pub groups: Vec<u64>,
}

impl CardsUser {
    /// A user with Cards' defaults (`role` user, `lang` fr, `source` app, no group).
    pub fn new(firstname: &str, lastname: &str, email: &str) -> Self {
        CardsUser {
            id: 0,
            firstname: firstname.into(),
            lastname: lastname.into(),
            email: Some(email.into()),
            role: "user".into(),
            company: None,
            phone: None,
            source: "app".into(),
            lang: "fr".into(),
            enable_ranking: 1,
            groups: Vec::new(),
        }
    }
}

/// A Cards group.
#[derive(Debug, Clone, PartialEq)]
pub struct CardsGroup {
    pub id: u64,
    pub name: String,
    pub is_public: bool,
    pub enable_ranking: bool,
}

/// One row of the training-statistics feed (\[I\] in API-NOTES: modelled, not published).
#[derive(Debug, Clone, PartialEq)]
pub struct TrainingStat {
    pub user_email: String,
    pub training_title: String,
    pub training_link: String,
    /// Percent, 0–100.
    pub progress: u32,
    pub score: u32,
    /// `YYYY-MM-DD HH:MM:SS`, none when never completed.
    pub last_completed_at: Option<String>,
}

/// A notification e-mail Cards sent to a created user (the "notify created users" option).
#[derive(Debug, Clone, PartialEq)]
pub struct Notification {
    pub user_id: u64,
    pub email: String,
}

/// The whole space.
#[derive(Debug, Clone, Default)]
pub struct Space {
    pub users: BTreeMap<u64, CardsUser>,
    pub groups: BTreeMap<u64, CardsGroup>,
    pub stats: Vec<TrainingStat>,
    pub notifications: Vec<Notification>,
    /// Users removed with DELETE, by email (for tests: muster never deletes).
    pub deleted: Vec<String>,
    next_id: u64,
}

/// A refusal, as Cards (a Laravel API) answers it: 422 with `errors` per field.
#[derive(Debug, Clone)]
pub struct Invalid {
    pub field: String,
    pub message: String,
}

impl Invalid {
    fn new(field: &str, message: impl Into<String>) -> Self {
        Invalid {
            field: field.into(),
            message: message.into(),
        }
    }
}

impl Space {
    pub fn new() -> Self {
        Space::default()
    }

    fn next(&mut self) -> u64 {
        self.next_id += 1;
        self.next_id
    }

    /// Adds a group made by hand in Cards; returns its id.
    pub fn add_group(&mut self, name: &str) -> u64 {
        let id = self.next();
        self.groups.insert(
            id,
            CardsGroup {
                id,
                name: name.into(),
                is_public: false,
                enable_ranking: true,
            },
        );
        id
    }

    /// Adds a user as it is (its `id` is assigned); returns the id.
    pub fn add_user(&mut self, mut user: CardsUser) -> u64 {
        let id = self.next();
        user.id = id;
        self.users.insert(id, user);
        id
    }

    /// The user whose email is `email` (case-insensitive).
    pub fn user_by_email(&self, email: &str) -> Option<&CardsUser> {
        self.users.values().find(|u| {
            u.email
                .as_deref()
                .is_some_and(|e| e.eq_ignore_ascii_case(email))
        })
    }

    /// The group named `name` (exact, as Cards compares).
    pub fn group_by_name(&self, name: &str) -> Option<&CardsGroup> {
        self.groups.values().find(|g| g.name == name)
    }

    /// The names of a user's groups.
    pub fn group_names(&self, user: &CardsUser) -> Vec<String> {
        user.groups
            .iter()
            .filter_map(|g| self.groups.get(g).map(|g| g.name.clone()))
            .collect()
    }

    /// A user as the API shows it.
    pub fn user_json(&self, u: &CardsUser) -> Value {
        let groups: Vec<Value> = u
            .groups
            .iter()
            .filter_map(|g| self.groups.get(g))
            .map(|g| json!({"id": g.id, "name": g.name}))
            .collect();
        json!({
            "id": u.id,
            "firstname": u.firstname,
            "lastname": u.lastname,
            "email": u.email,
            "role": u.role,
            "company": u.company,
            "phone": u.phone,
            "source": u.source,
            "lang": u.lang,
            "enable_ranking": u.enable_ranking,
            "groups": groups,
        })
    }

    pub fn group_json(g: &CardsGroup) -> Value {
        json!({"id": g.id, "name": g.name, "is_public": g.is_public,
               "enable_ranking": u8::from(g.enable_ranking)})
    }

    /// Creates a user from a POST body. `firstname` and `lastname` are required.
    pub fn create_user(&mut self, body: &Value) -> Result<u64, Invalid> {
        let mut user = CardsUser::new("", "", "");
        user.email = None;
        for field in ["firstname", "lastname"] {
            if body
                .get(field)
                .and_then(Value::as_str)
                .is_none_or(str::is_empty)
            {
                return Err(Invalid::new(
                    field,
                    format!("The {field} field is required."),
                ));
            }
        }
        self.apply_fields(&mut user, body, None)?;
        let id = self.next();
        user.id = id;
        self.users.insert(id, user);
        Ok(id)
    }

    /// A partial update: present keys replace; `groups` replaces the whole list (`[]` removes
    /// every group).
    pub fn update_user(&mut self, id: u64, body: &Value) -> Result<(), Invalid> {
        let Some(mut user) = self.users.get(&id).cloned() else {
            return Err(Invalid::new(
                "id",
                format!("No query results for user {id}"),
            ));
        };
        self.apply_fields(&mut user, body, Some(id))?;
        self.users.insert(id, user);
        Ok(())
    }

    fn apply_fields(
        &mut self,
        user: &mut CardsUser,
        body: &Value,
        id: Option<u64>,
    ) -> Result<(), Invalid> {
        let Some(obj) = body.as_object() else {
            return Err(Invalid::new("body", "The body must be a JSON object."));
        };
        // Validate everything first: a refused write changes nothing.
        let text = |field: &str| -> Result<Option<Option<String>>, Invalid> {
            match obj.get(field) {
                None => Ok(None),
                Some(Value::Null) => Ok(Some(None)),
                Some(Value::String(s)) if s.chars().count() > MAX_NAME => Err(Invalid::new(
                    field,
                    format!("The {field} may not be greater than {MAX_NAME} characters."),
                )),
                Some(Value::String(s)) => Ok(Some(Some(s.clone()))),
                Some(_) => Err(Invalid::new(
                    field,
                    format!("The {field} must be a string."),
                )),
            }
        };
        let (first, last) = (text("firstname")?, text("lastname")?);
        let (email, company, phone) = (text("email")?, text("company")?, text("phone")?);
        if let Some(Some(e)) = &email {
            if !e.contains('@') {
                return Err(Invalid::new(
                    "email",
                    "The email must be a valid email address.",
                ));
            }
            if self
                .user_by_email(e)
                .is_some_and(|other| Some(other.id) != id)
            {
                return Err(Invalid::new("email", "The email has already been taken."));
            }
        }
        let enums = [("role", ROLES), ("lang", LANGS), ("source", SOURCES)];
        let mut chosen = Vec::new();
        for (field, allowed) in enums {
            match obj.get(field) {
                None => {}
                Some(Value::String(v)) if allowed.contains(&v.as_str()) => {
                    chosen.push((field, v.clone()));
                }
                Some(other) => {
                    return Err(Invalid::new(
                        field,
                        format!(
                            "The selected {field} {other} is invalid ({}).",
                            allowed.join("|")
                        ),
                    ));
                }
            }
        }
        let groups = match obj.get("groups") {
            None => None,
            Some(g) => Some(self.check_groups(g)?),
        };
        if let Some(Some(v)) = first {
            user.firstname = v;
        }
        if let Some(Some(v)) = last {
            user.lastname = v;
        }
        if let Some(v) = email {
            user.email = v;
        }
        if let Some(v) = company {
            user.company = v;
        }
        if let Some(v) = phone {
            user.phone = v;
        }
        for (field, v) in chosen {
            match field {
                "role" => user.role = v,
                "lang" => user.lang = v,
                _ => user.source = v,
            }
        }
        if let Some(refs) = groups {
            user.groups = refs
                .into_iter()
                .map(|r| match r {
                    GroupRef::Id(id) => id,
                    GroupRef::Name(name) => self.group_named_or_new(&name),
                })
                .collect();
            user.groups.dedup();
        }
        Ok(())
    }

    fn group_named_or_new(&mut self, name: &str) -> u64 {
        match self.group_by_name(name) {
            Some(g) => g.id,
            None => self.add_group(name),
        }
    }

    /// `groups: [{id}|{name}]`: an unknown id is refused, an unknown name is created later.
    fn check_groups(&self, value: &Value) -> Result<Vec<GroupRef>, Invalid> {
        let Value::Array(items) = value else {
            return Err(Invalid::new("groups", "The groups must be an array."));
        };
        let mut refs = Vec::with_capacity(items.len());
        for (i, item) in items.iter().enumerate() {
            let field = format!("groups.{i}");
            if let Some(id) = item.get("id").and_then(Value::as_u64) {
                if !self.groups.contains_key(&id) {
                    return Err(Invalid::new(
                        &field,
                        format!("The selected group {id} is invalid."),
                    ));
                }
                refs.push(GroupRef::Id(id));
            } else if let Some(name) = item.get("name").and_then(Value::as_str) {
                if name.trim().is_empty() || name.chars().count() > MAX_NAME {
                    return Err(Invalid::new(
                        &field,
                        format!("The group name must be 1 to {MAX_NAME} characters."),
                    ));
                }
                refs.push(GroupRef::Name(name.to_string()));
            } else {
                return Err(Invalid::new(
                    &field,
                    "A group is {\"id\": …} or {\"name\": …}.",
                ));
            }
        }
        Ok(refs)
    }
}

enum GroupRef {
    Id(u64),
    Name(String),
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_unknown_group_name_creates_the_group_and_empty_groups_removes_all() {
        let mut s = Space::new();
        let manual = s.add_group("Hand-made");
        let id = s
            .create_user(
                &json!({"firstname": "A", "lastname": "B", "email": "a@x.example",
                "groups": [{"id": manual}, {"name": "Sales"}]}),
            )
            .expect("create");
        let user = s.users[&id].clone();
        assert_eq!(s.group_names(&user), ["Hand-made", "Sales"]);
        s.update_user(id, &json!({"groups": []})).expect("update");
        assert!(s.users[&id].groups.is_empty());
        assert_eq!(s.groups.len(), 2, "groups outlive their members");
    }

    #[test]
    fn refusals_name_the_field_and_change_nothing() {
        let mut s = Space::new();
        let id = s
            .create_user(&json!({"firstname": "A", "lastname": "B", "email": "a@x.example"}))
            .expect("create");
        let long = "x".repeat(MAX_NAME + 1);
        let e = s
            .update_user(id, &json!({"firstname": "C", "lastname": long}))
            .expect_err("too long");
        assert_eq!(e.field, "lastname");
        assert_eq!(s.users[&id].firstname, "A");
        let e = s
            .update_user(id, &json!({"source": "password"}))
            .expect_err("enum");
        assert_eq!(e.field, "source");
        let e = s
            .create_user(&json!({"firstname": "D", "lastname": "E", "email": "A@x.example"}))
            .expect_err("taken");
        assert_eq!(e.field, "email");
        let e = s
            .create_user(&json!({"lastname": "E"}))
            .expect_err("required");
        assert_eq!(e.field, "firstname");
    }
}
