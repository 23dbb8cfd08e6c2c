//! Page constructors, so a connector states what a page covers once and
//! leaves the other page fields at their neutral values.

use crate::{Coverage, Group, GroupPage, Person, PersonPage, RecordProblem};

impl PersonPage {
    /// A page of a full read (every record, active or not), without
    /// watermark or problems. Target reads (`read-accounts`) are always full.
    pub fn full(items: Vec<Person>, next: Option<String>) -> Self {
        PersonPage {
            items,
            next,
            coverage: Coverage::Full,
            watermark: None,
            problems: Vec::new(),
        }
    }

    /// Adds the problems of records of this page.
    pub fn with_problems(mut self, problems: Vec<RecordProblem>) -> Self {
        self.problems = problems;
        self
    }
}

impl GroupPage {
    /// A page of groups without problems.
    pub fn new(items: Vec<Group>, next: Option<String>) -> Self {
        GroupPage {
            items,
            next,
            problems: Vec::new(),
        }
    }
}

impl RecordProblem {
    /// A problem with one field of one record.
    pub fn field(
        record_id: impl Into<String>,
        field: crate::FieldRef,
        message: impl Into<String>,
    ) -> Self {
        RecordProblem {
            record_id: record_id.into(),
            field: Some(field),
            message: message.into(),
        }
    }
}
