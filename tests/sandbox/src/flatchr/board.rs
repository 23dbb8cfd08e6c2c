//! A Flatchr company's recruiting board: vacancies, the columns of their pipeline, and the
//! applicants in them, with the two id schemes Flatchr uses — 16-character hash strings in
//! the REST API, integers in webhooks ([C] `shared/API-NOTES.md`).

use serde_json::{Value, json};

/// A pipeline column. `hired` marks the column whose applicants are hired.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Column {
    /// The integer id webhooks carry.
    pub id: u64,
    pub title: String,
    pub hired: bool,
}

/// A job opening.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Vacancy {
    /// The integer id webhooks carry.
    pub id: u64,
    pub title: String,
}

/// A candidate's application to a vacancy. Optional texts are `None` when unknown; an empty
/// string is sent as such (a recruiter can leave a field blank).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Applicant {
    /// The integer id webhooks carry (`applicant_id`).
    pub id: u64,
    /// Index into [`Board::vacancies`].
    pub vacancy: usize,
    /// The id of the column it sits in.
    pub column: u64,
    pub firstname: String,
    pub lastname: String,
    pub email: Option<String>,
    pub phone: Option<String>,
    /// [I] The contract type and start date entered when hiring (`CDI`, `2026-01-05`).
    /// Flatchr sends them to Lucca (seed 001); the search shape in the notes does not list
    /// them, so the simulator adds them to the flat result only when known.
    pub contract_type: Option<String>,
    pub start_date: Option<String>,
    /// `YYYY-MM-DDTHH:MM:SS.000Z`, simulated.
    pub created_at: String,
    pub updated_at: String,
}

/// The REST id of an integer id: 16 lowercase hex characters, stable for an id.
pub fn hash_id(kind: &str, id: u64) -> String {
    // FNV-1a over the kind and the id: deterministic, no dependency.
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in kind.bytes().chain(id.to_le_bytes()) {
        h ^= u64::from(b);
        h = h.wrapping_mul(0x0000_0100_0000_01b3);
    }
    format!("{h:016x}")
}

/// The company's board.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Board {
    /// The REST company id (`/company/{id}/…`).
    pub company: String,
    pub company_id: u64,
    pub company_name: String,
    pub columns: Vec<Column>,
    pub vacancies: Vec<Vacancy>,
    pub applicants: Vec<Applicant>,
}

impl Default for Board {
    /// One vacancy and Flatchr's default pipeline: "À traiter", "Entretien", "Embauché"
    /// (the hired column), "Refusé". No applicants.
    fn default() -> Board {
        let col = |id: u64, title: &str, hired: bool| Column {
            id,
            title: title.into(),
            hired,
        };
        Board {
            company: hash_id("company", 1),
            company_id: 1,
            company_name: "Acme".into(),
            columns: vec![
                col(11, "À traiter", false),
                col(12, "Entretien", false),
                col(13, "Embauché", true),
                col(14, "Refusé", false),
            ],
            vacancies: vec![Vacancy {
                id: 501,
                title: "Développeur·se Rust".into(),
            }],
            applicants: Vec::new(),
        }
    }
}

impl Board {
    /// Adds an applicant to the first vacancy's first column; returns its REST (hash) id.
    pub fn add(&mut self, firstname: &str, lastname: &str, email: Option<&str>) -> String {
        let id = 9000 + self.applicants.len() as u64 + 1;
        self.applicants.push(Applicant {
            id,
            vacancy: 0,
            column: self.columns[0].id,
            firstname: firstname.into(),
            lastname: lastname.into(),
            email: email.map(Into::into),
            phone: None,
            contract_type: None,
            start_date: None,
            created_at: "2026-01-02T09:00:00.000Z".into(),
            updated_at: "2026-01-02T09:00:00.000Z".into(),
        });
        hash_id("applicant", id)
    }

    /// The applicant with this REST id.
    pub fn applicant_mut(&mut self, hash: &str) -> Option<&mut Applicant> {
        self.applicants
            .iter_mut()
            .find(|a| hash_id("applicant", a.id) == hash)
    }

    pub fn column(&self, id: u64) -> Option<&Column> {
        self.columns.iter().find(|c| c.id == id)
    }

    /// The first column marked hired.
    pub fn hired_column(&self) -> Option<&Column> {
        self.columns.iter().find(|c| c.hired)
    }

    /// One search result: the documented flat shape.
    pub fn flat(&self, a: &Applicant) -> Value {
        let column = self.column(a.column);
        let vacancy = &self.vacancies[a.vacancy];
        let mut v = json!({
            "applicant": hash_id("applicant", a.id),
            "vacancy": vacancy.title,
            "vacancy_id": hash_id("vacancy", vacancy.id),
            "column": column.map(|c| c.title.clone()),
            "external_id": null,
            "status": 1,
            "score": 0,
            "hired": column.is_some_and(|c| c.hired),
            "firstname": a.firstname,
            "lastname": a.lastname,
            "email": a.email,
            "phone": a.phone,
            "created_at": a.created_at,
            "updated_at": a.updated_at,
            "source": "careers",
        });
        if let Some(t) = &a.contract_type {
            v["contract_type"] = json!(t);
        }
        if let Some(d) = &a.start_date {
            v["start_date"] = json!(d);
        }
        v
    }

    /// The webhook Flatchr sends when `a` has been dragged into its column:
    /// `event: "drag_applicant"`, integer ids, `data.applicant` the REST id.
    pub fn drag_event(&self, a: &Applicant) -> Value {
        let column = self.column(a.column);
        let vacancy = &self.vacancies[a.vacancy];
        json!({
            "event": "drag_applicant",
            "company_id": self.company_id,
            "data": {
                "user": {"id": 1, "firstname": "Rita", "lastname": "Recruteuse"},
                "applicant": hash_id("applicant", a.id),
                "candidate": {"firstname": a.firstname, "lastname": a.lastname, "email": a.email},
                "column": column.map(|c| json!({"id": c.id, "title": c.title, "hired": c.hired})),
                "vacancy": {"id": vacancy.id, "title": vacancy.title},
                "applicant_id": a.id,
                "candidate_id": a.id + 100_000,
                "column_id": a.column,
                "vacancy_id": vacancy.id,
                "company": {"id": self.company_id, "name": self.company_name},
            },
        })
    }

    /// The move answer: the nested `candidate{…}` shape.
    pub fn moved(&self, a: &Applicant) -> Value {
        json!({
            "id": hash_id("applicant", a.id),
            "column_id": a.column,
            "candidate": {
                "firstname": a.firstname,
                "lastname": a.lastname,
                "email": a.email,
                "phone": a.phone,
            },
        })
    }

    /// Whether `a` passes the search filters of `body` (the documented ones the
    /// connector uses: `hired`, `column` (title), `email`, `firstname`, `lastname`).
    pub fn matches(&self, a: &Applicant, body: &Value) -> bool {
        let column = self.column(a.column);
        let text = |k: &str| body.get(k).and_then(Value::as_str).map(str::trim);
        if let Some(h) = body.get("hired").and_then(Value::as_bool)
            && column.is_some_and(|c| c.hired) != h
        {
            return false;
        }
        if let Some(t) = text("column")
            && !column.is_some_and(|c| c.title.eq_ignore_ascii_case(t))
        {
            return false;
        }
        let same = |k: &str, have: Option<&str>| {
            text(k).is_none_or(|want| have.is_some_and(|h| h.eq_ignore_ascii_case(want)))
        };
        same("email", a.email.as_deref())
            && same("firstname", Some(&a.firstname))
            && same("lastname", Some(&a.lastname))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn board() -> (Board, String, String) {
        let mut b = Board::default();
        let zoe = b.add("Zoë", "Lefèvre", Some("zoe@gmail.com"));
        let max = b.add("Max", "Muster", None);
        (b, zoe, max)
    }

    #[test]
    fn rest_ids_are_16_hex_characters_and_stable() {
        let (b, zoe, max) = board();
        assert_eq!(zoe.len(), 16);
        assert!(zoe.chars().all(|c| c.is_ascii_hexdigit()));
        assert_ne!(zoe, max);
        assert_eq!(zoe, hash_id("applicant", b.applicants[0].id));
    }

    #[test]
    fn the_search_filters_by_hired_column_title_and_email() {
        let (mut b, zoe, _) = board();
        b.applicant_mut(&zoe).unwrap().column = 13;
        let hits = |b: &Board, f: Value| -> Vec<String> {
            b.applicants
                .iter()
                .filter(|a| b.matches(a, &f))
                .map(|a| b.flat(a)["applicant"].as_str().unwrap().to_string())
                .collect()
        };
        let only_zoe = vec![zoe];
        assert_eq!(hits(&b, json!({"hired": true})), only_zoe);
        assert_eq!(hits(&b, json!({"column": "embauché"})), only_zoe);
        assert_eq!(hits(&b, json!({"email": "ZOE@gmail.com"})), only_zoe);
        assert_eq!(hits(&b, json!({})).len(), 2);
        assert_eq!(hits(&b, json!({"hired": false})).len(), 1);
    }

    #[test]
    fn the_drag_event_has_integer_ids_and_the_rest_id_of_the_applicant() {
        let (mut b, zoe, _) = board();
        b.applicant_mut(&zoe).unwrap().column = 13;
        let a = b.applicants[0].clone();
        let e = b.drag_event(&a);
        assert_eq!(e["event"], "drag_applicant");
        assert_eq!(e["data"]["applicant"], zoe.as_str());
        assert_eq!(e["data"]["applicant_id"], a.id);
        assert_eq!(
            e["data"]["column"],
            json!({"id": 13, "title": "Embauché", "hired": true})
        );
        assert!(e["data"]["column_id"].is_u64() && e["company_id"].is_u64());
        // The flat search shape is not the nested move answer.
        assert!(b.flat(&a).get("candidate").is_none());
        assert!(b.moved(&a)["candidate"].is_object());
    }
}
