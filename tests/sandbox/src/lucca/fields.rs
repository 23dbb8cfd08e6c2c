//! The `fields=` projection of the v3 API. Real clients use both dotted paths
//! (`manager.id,manager.name`) and the nested form (`manager[id,name]`), and mix them; both
//! parse into the same tree, which then picks from the full JSON view of a record.

use serde_json::{Map, Value};

use super::ApiError;

/// A selection: field names in request order, each with an optional sub-selection.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Selection(pub Vec<(String, Option<Selection>)>);

impl Selection {
    /// Parses `id,manager.id,department[id,name]`.
    pub fn parse(s: &str) -> Result<Self, ApiError> {
        let chars: Vec<char> = s.chars().collect();
        let mut pos = 0;
        let sel = parse_list(&chars, &mut pos, s)?;
        if pos != chars.len() {
            return Err(bad(s));
        }
        Ok(sel)
    }

    /// Top-level names.
    pub fn names(&self) -> impl Iterator<Item = &str> {
        self.0.iter().map(|(n, _)| n.as_str())
    }

    /// The sub-selection of `name`, if selected.
    pub fn get(&self, name: &str) -> Option<&Option<Selection>> {
        self.0.iter().find(|(n, _)| n == name).map(|(_, s)| s)
    }

    /// Removes `name` from the selection, returning its sub-selection if it was there.
    pub fn take(&mut self, name: &str) -> Option<Option<Selection>> {
        let i = self.0.iter().position(|(n, _)| n == name)?;
        Some(self.0.remove(i).1)
    }

    fn insert(&mut self, name: String, sub: Option<Selection>) {
        match self.0.iter_mut().find(|(n, _)| *n == name) {
            // `manager` and `manager.id`: the whole object wins.
            Some((_, existing)) => match (existing.as_mut(), sub) {
                (Some(e), Some(s)) => s.0.into_iter().for_each(|(n, sub)| e.insert(n, sub)),
                (Some(_), None) => *existing = None,
                (None, _) => {}
            },
            None => self.0.push((name, sub)),
        }
    }

    /// Picks the selected fields of `value` (objects recursively, arrays element-wise);
    /// a selected field the record does not have comes out `null`.
    pub fn project(&self, value: &Value) -> Value {
        match value {
            Value::Object(obj) => {
                let mut out = Map::new();
                for (name, sub) in &self.0 {
                    let v = obj.get(name).unwrap_or(&Value::Null);
                    out.insert(
                        name.clone(),
                        sub.as_ref().map_or_else(|| v.clone(), |s| s.project(v)),
                    );
                }
                Value::Object(out)
            }
            Value::Array(items) => Value::Array(items.iter().map(|v| self.project(v)).collect()),
            other => other.clone(),
        }
    }
}

fn bad(s: &str) -> ApiError {
    ApiError::bad(format!("invalid fields parameter '{s}'")).with("field", "fields")
}

fn parse_list(chars: &[char], pos: &mut usize, src: &str) -> Result<Selection, ApiError> {
    let mut sel = Selection::default();
    loop {
        let (name, sub) = parse_item(chars, pos, src)?;
        sel.insert(name, sub);
        match chars.get(*pos) {
            Some(',') => *pos += 1,
            _ => return Ok(sel),
        }
    }
}

fn parse_item(
    chars: &[char],
    pos: &mut usize,
    src: &str,
) -> Result<(String, Option<Selection>), ApiError> {
    while chars.get(*pos) == Some(&' ') {
        *pos += 1;
    }
    let start = *pos;
    while chars
        .get(*pos)
        .is_some_and(|c| c.is_alphanumeric() || *c == '_')
    {
        *pos += 1;
    }
    if start == *pos {
        return Err(bad(src));
    }
    let name: String = chars[start..*pos].iter().collect();
    match chars.get(*pos) {
        Some('.') => {
            *pos += 1;
            let (child, sub) = parse_item(chars, pos, src)?;
            Ok((name, Some(Selection(vec![(child, sub)]))))
        }
        Some('[') => {
            *pos += 1;
            let sub = parse_list(chars, pos, src)?;
            if chars.get(*pos) != Some(&']') {
                return Err(bad(src));
            }
            *pos += 1;
            Ok((name, Some(sub)))
        }
        _ => Ok((name, None)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn both_forms_agree() {
        let v = json!({"id": 1, "manager": {"id": 2, "name": "B", "x": 0}, "department": {"id": 3, "name": "D"}});
        let a = Selection::parse("id,manager.id,manager.name,department[id]").unwrap();
        let b = Selection::parse("id,manager[id,name],department.id").unwrap();
        assert_eq!(a.project(&v), b.project(&v));
        assert_eq!(
            a.project(&v),
            json!({"id": 1, "manager": {"id": 2, "name": "B"}, "department": {"id": 3}})
        );
        assert!(Selection::parse("id,").is_err());
        assert!(Selection::parse("a[b").is_err());
    }
}
