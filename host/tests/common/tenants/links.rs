//! The links check: a store's person links against the target's accounts. The kit does not
//! know where the state lives (a SQLite file per tenant, the fleet's PostgreSQL): the test
//! hands each tenant's links over.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;

use muster_core::Link;

use super::{TenantSims, Tenants, expected_ids};

/// One tenant's findings.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TenantLinks {
    pub tenant: String,
    /// Links in the store.
    pub links: usize,
    /// Lucca ids of accounts the flow made (`externalId` of a person who must have one)
    /// that no link joins: a lost link (the next run would create them again or conflict).
    pub unlinked: Vec<String>,
    /// Links to an account that does not exist, or not to the account carrying the
    /// person's id: `(source id, target id)`.
    pub wrong: Vec<(String, String)>,
}

impl TenantLinks {
    pub fn is_clean(&self) -> bool {
        self.unlinked.is_empty() && self.wrong.is_empty()
    }
}

/// Every tenant's findings, in tenant order.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct LinksReport {
    pub tenants: Vec<TenantLinks>,
}

impl LinksReport {
    pub fn is_clean(&self) -> bool {
        self.tenants.iter().all(TenantLinks::is_clean)
    }

    /// Lost links over every tenant.
    pub fn lost(&self) -> usize {
        self.tenants.iter().map(|t| t.unlinked.len()).sum()
    }

    /// The tenants with a finding.
    pub fn failures(&self) -> Vec<&TenantLinks> {
        self.tenants.iter().filter(|t| !t.is_clean()).collect()
    }
}

impl fmt::Display for LinksReport {
    /// A summary line, then one line per tenant with a finding.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let links: usize = self.tenants.iter().map(|t| t.links).sum();
        writeln!(
            f,
            "{} tenants: {links} links, {} lost, {} tenant(s) with findings",
            self.tenants.len(),
            self.lost(),
            self.failures().len()
        )?;
        for t in self.failures() {
            writeln!(
                f,
                "  {}: unlinked {:?}, wrong {:?}",
                t.tenant, t.unlinked, t.wrong
            )?;
        }
        Ok(())
    }
}

impl Tenants {
    /// Checks each tenant's person links, as `links_of` reads them from the store (e.g.
    /// `|t| store_of(&t.id).links(FLOW)`), against its target's accounts.
    pub fn check_links(&self, links_of: impl Fn(&TenantSims) -> Vec<Link>) -> LinksReport {
        LinksReport {
            tenants: self
                .tenants
                .iter()
                .map(|t| check_tenant(t, &links_of(t)))
                .collect(),
        }
    }
}

fn check_tenant(t: &TenantSims, links: &[Link]) -> TenantLinks {
    let expected = expected_ids(&t.lucca.tenant());
    let users = t.target.users();
    let account_of: BTreeMap<&str, &str> = users
        .iter()
        .filter_map(|u| Some((u.external_id.as_deref()?, u.id.as_str())))
        .collect();
    let linked: BTreeSet<&str> = links.iter().map(|l| l.source_id.as_str()).collect();
    TenantLinks {
        tenant: t.id.clone(),
        links: links.len(),
        unlinked: account_of
            .keys()
            .filter(|id| expected.contains(**id) && !linked.contains(**id))
            .map(|id| (*id).to_owned())
            .collect(),
        wrong: links
            .iter()
            .filter(|l| account_of.get(l.source_id.as_str()) != Some(&l.target_id.as_str()))
            .map(|l| (l.source_id.clone(), l.target_id.clone()))
            .collect(),
    }
}
