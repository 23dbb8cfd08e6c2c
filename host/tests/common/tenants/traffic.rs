//! The traffic check: what each tenant's simulators served, and Lucca's limit.

use std::fmt;

use muster_sandbox::{RateLimit, RequestRecord};

use super::{TenantSims, Tenants};

/// One tenant's requests.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TenantTraffic {
    pub tenant: String,
    /// Every request Lucca received, 429s included.
    pub lucca_requests: usize,
    /// Lucca's 429 answers.
    pub lucca_throttled: usize,
    /// The most requests Lucca accepted in any window of its limit (60 s).
    pub lucca_max_in_window: usize,
    /// Reads of the whole tenant Lucca answered: `GET /api/v3/users?formerEmployees=true…`
    /// from the first page (`paging=0,…`), as the Lucca connector starts every full read —
    /// one per run of a flow reading this tenant, so "every due run exactly once" can be
    /// checked on the vendor's side too.
    pub lucca_full_reads: usize,
    /// The target's reads and writes that passed its limiter, and its 429s.
    pub target_reads: usize,
    pub target_writes: usize,
    pub target_throttled: usize,
}

/// Every tenant's traffic, in tenant order, and Lucca's limit it is judged against.
#[derive(Debug, Clone, PartialEq)]
pub struct TrafficReport {
    pub limit: RateLimit,
    pub tenants: Vec<TenantTraffic>,
}

impl TrafficReport {
    /// The tenants whose clients went past Lucca's limit. The simulator enforces it, so
    /// what it accepts never exceeds it: a client that tries gets 429s, which is what this
    /// looks at (with the accepted count, should a test turn the limit off).
    pub fn over_limit(&self) -> Vec<&TenantTraffic> {
        self.tenants
            .iter()
            .filter(|t| t.lucca_throttled > 0 || t.lucca_max_in_window > self.limit.requests)
            .collect()
    }

    /// Lucca's 429s over every tenant.
    pub fn lucca_throttled(&self) -> usize {
        self.tenants.iter().map(|t| t.lucca_throttled).sum()
    }

    /// Target writes over every tenant.
    pub fn target_writes(&self) -> usize {
        self.tenants.iter().map(|t| t.target_writes).sum()
    }

    /// The busiest tenant's most requests in one Lucca window.
    pub fn max_in_window(&self) -> usize {
        self.tenants
            .iter()
            .map(|t| t.lucca_max_in_window)
            .max()
            .unwrap_or(0)
    }
}

impl fmt::Display for TrafficReport {
    /// A summary line, then one line per tenant over the limit or throttled.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let lucca: usize = self.tenants.iter().map(|t| t.lucca_requests).sum();
        let reads: usize = self.tenants.iter().map(|t| t.target_reads).sum();
        writeln!(
            f,
            "{} tenants: Lucca {lucca} requests, {} × 429, at most {} per {} s window (limit {}); target {reads} reads, {} writes",
            self.tenants.len(),
            self.lucca_throttled(),
            self.max_in_window(),
            self.limit.window_secs,
            self.limit.requests,
            self.target_writes()
        )?;
        for t in &self.tenants {
            if t.lucca_max_in_window > self.limit.requests || t.lucca_throttled > 0 {
                writeln!(f, "  {t:?}")?;
            }
        }
        Ok(())
    }
}

impl Tenants {
    /// Every tenant's requests so far (see the module doc).
    pub fn traffic(&self) -> TrafficReport {
        let limit = RateLimit::default();
        TrafficReport {
            limit,
            tenants: self
                .tenants
                .iter()
                .map(|t| tenant_traffic(t, &limit))
                .collect(),
        }
    }
}

fn tenant_traffic(t: &TenantSims, limit: &RateLimit) -> TenantTraffic {
    let lucca = t.lucca.request_log();
    let target = t.target.request_counts();
    TenantTraffic {
        tenant: t.id.clone(),
        lucca_requests: lucca.records.len(),
        lucca_throttled: lucca.count_status(429),
        lucca_max_in_window: lucca.max_accepted_in_window(limit.window_secs),
        lucca_full_reads: lucca.records.iter().filter(|r| is_full_read(r)).count(),
        target_reads: target.reads,
        target_writes: target.writes,
        target_throttled: target.throttled,
    }
}

/// The first page of a read of every user, answered.
fn is_full_read(r: &RequestRecord) -> bool {
    let Some(query) = r.url.strip_prefix("/api/v3/users?") else {
        return false;
    };
    let params: Vec<&str> = query.split('&').collect();
    r.method == "GET"
        && r.status == 200
        && params.contains(&"formerEmployees=true")
        && params.iter().any(|p| p.starts_with("paging=0,"))
}
