//! The accounts check: each target's accounts against the Lucca people who must have one.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;

use muster_sandbox::{ScimUser, Tenant, User};

use super::{TODAY, TenantSims, Tenants};

/// What two accounts or more have in common.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum DuplicateKey {
    UserName,
    /// Any of the account's `emails`.
    Email,
    ExternalId,
}

/// Accounts sharing one value of one key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Duplicate {
    pub by: DuplicateKey,
    /// The shared value, lower-cased.
    pub value: String,
    /// The target's ids of the accounts sharing it.
    pub accounts: Vec<String>,
}

/// One tenant's findings.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TenantAccounts {
    pub tenant: String,
    /// Lucca people who must have an account.
    pub expected: usize,
    /// Accounts on the target.
    pub accounts: usize,
    /// Lucca ids of expected people whose id no account carries as `externalId`.
    pub missing: Vec<String>,
    /// Lucca ids of expected people whose account is deactivated.
    pub inactive: Vec<String>,
    /// `userName`s of accounts of nobody who must have one (hand-made ones included).
    pub unexpected: Vec<String>,
    pub duplicates: Vec<Duplicate>,
}

impl TenantAccounts {
    /// Nothing missing, inactive, unexpected or duplicated.
    pub fn is_clean(&self) -> bool {
        self.missing.is_empty()
            && self.inactive.is_empty()
            && self.unexpected.is_empty()
            && self.duplicates.is_empty()
    }
}

/// Every tenant's findings, in tenant order.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct AccountsReport {
    pub tenants: Vec<TenantAccounts>,
}

impl AccountsReport {
    pub fn is_clean(&self) -> bool {
        self.tenants.iter().all(TenantAccounts::is_clean)
    }

    /// The tenants with a finding.
    pub fn failures(&self) -> Vec<&TenantAccounts> {
        self.tenants.iter().filter(|t| !t.is_clean()).collect()
    }

    /// Duplicate groups over every tenant.
    pub fn duplicates(&self) -> usize {
        self.tenants.iter().map(|t| t.duplicates.len()).sum()
    }

    /// Missing accounts over every tenant.
    pub fn missing(&self) -> usize {
        self.tenants.iter().map(|t| t.missing.len()).sum()
    }
}

impl fmt::Display for AccountsReport {
    /// A summary line, then one line per tenant with a finding.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let expected: usize = self.tenants.iter().map(|t| t.expected).sum();
        let accounts: usize = self.tenants.iter().map(|t| t.accounts).sum();
        writeln!(
            f,
            "{} tenants: {expected} people expected, {accounts} accounts, {} missing, {} duplicate groups, {} tenant(s) with findings",
            self.tenants.len(),
            self.missing(),
            self.duplicates(),
            self.failures().len()
        )?;
        for t in self.failures() {
            writeln!(
                f,
                "  {}: missing {:?}, inactive {:?}, unexpected {:?}, duplicates {:?}",
                t.tenant, t.missing, t.inactive, t.unexpected, t.duplicates
            )?;
        }
        Ok(())
    }
}

impl Tenants {
    /// Checks every tenant's accounts (see the module doc).
    pub fn check_accounts(&self) -> AccountsReport {
        AccountsReport {
            tenants: self.tenants.iter().map(check_tenant).collect(),
        }
    }
}

fn check_tenant(t: &TenantSims) -> TenantAccounts {
    let expected = expected_ids(&t.lucca.tenant());
    let users = t.target.users();
    let by_external: BTreeMap<&str, &ScimUser> = users
        .iter()
        .filter_map(|u| u.external_id.as_deref().map(|e| (e, u)))
        .collect();
    let mut report = TenantAccounts {
        tenant: t.id.clone(),
        expected: expected.len(),
        accounts: users.len(),
        duplicates: duplicates(&users),
        ..TenantAccounts::default()
    };
    for id in &expected {
        match by_external.get(id.as_str()) {
            None => report.missing.push(id.clone()),
            Some(u) if !u.active => report.inactive.push(id.clone()),
            Some(_) => {}
        }
    }
    report.unexpected = users
        .iter()
        .filter(|u| !u.external_id.as_ref().is_some_and(|e| expected.contains(e)))
        .map(|u| u.user_name.clone())
        .collect();
    report
}

/// The Lucca ids of the people the flow gives an account on [`TODAY`]: started, not left,
/// with a work email no other person of the tenant has (the same rule as
/// `tests/lucca_to_leapsome.rs`'s initial plan).
pub fn expected_ids(tenant: &Tenant) -> BTreeSet<String> {
    let mut mails: BTreeMap<String, usize> = BTreeMap::new();
    for m in tenant.users.iter().filter_map(|u| u.mail.as_deref()) {
        *mails.entry(m.trim().to_lowercase()).or_default() += 1;
    }
    tenant
        .users
        .iter()
        .filter(|u| is_current(u))
        .filter(|u| {
            u.mail
                .as_deref()
                .is_some_and(|m| mails.get(&m.trim().to_lowercase()) == Some(&1))
        })
        .map(|u| u.id.to_string())
        .collect()
}

/// Started on or before [`TODAY`] and not left before it.
fn is_current(u: &User) -> bool {
    let day = |d: &str| d.get(..10).unwrap_or(d).to_owned();
    let left = u
        .dt_contract_end
        .as_deref()
        .is_some_and(|e| day(e).as_str() < TODAY);
    let started = u
        .dt_contract_start
        .as_deref()
        .is_some_and(|s| day(s).as_str() <= TODAY);
    started && !left
}

/// Groups of accounts sharing a `userName`, an email or an `externalId`.
pub fn duplicates(users: &[ScimUser]) -> Vec<Duplicate> {
    let mut seen: BTreeMap<(DuplicateKey, String), BTreeSet<String>> = BTreeMap::new();
    for u in users {
        let mut add = |by, value: &str| {
            seen.entry((by, value.trim().to_lowercase()))
                .or_default()
                .insert(u.id.clone());
        };
        add(DuplicateKey::UserName, &u.user_name);
        for e in &u.emails {
            add(DuplicateKey::Email, &e.value);
        }
        if let Some(x) = &u.external_id {
            add(DuplicateKey::ExternalId, x);
        }
    }
    seen.into_iter()
        .filter(|(_, ids)| ids.len() > 1)
        .map(|((by, value), ids)| Duplicate {
            by,
            value,
            accounts: ids.into_iter().collect(),
        })
        .collect()
}
