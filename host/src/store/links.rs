//! Flows and links: which source record is which target record.
//!
//! Links are what make a target account *ours* (the core never touches an
//! account no link names), so they are guarded twice: the API checks both
//! directions and names the conflicting ids, and the schema's two UNIQUE
//! constraints hold even if a caller bypasses it.

use std::fmt;

/// What a link joins: people ↔ accounts, or departments ↔ groups.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum LinkKind {
    Person,
    Group,
}

impl LinkKind {
    pub const fn as_str(self) -> &'static str {
        match self {
            LinkKind::Person => "person",
            LinkKind::Group => "group",
        }
    }

    pub fn parse(s: &str) -> Option<LinkKind> {
        match s {
            "person" => Some(LinkKind::Person),
            "group" => Some(LinkKind::Group),
            _ => None,
        }
    }
}

impl fmt::Display for LinkKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}
