//! One running plugin instance: every call goes through
//! [`PluginInstance::call`], which refuels the store, arms the epoch deadline
//! and the HTTP budget, and turns any failure into a typed [`PluginError`];
//! data coming back is validated before it leaves the boundary, and reads
//! that page stop at [`RuntimeConfig::max_pages_per_read`].

use wasmtime::{Store, Trap};

use super::bindings::{
    Applied, Capability, ConnectorError, ConnectorPlugin, Group, GroupPage, Manifest, Operation,
    Person, PersonPage,
};
use super::engine::RuntimeConfig;
use super::error::redact_connector_error;
use super::limits::{Hit, Limit, Refusal};
use super::state::HostState;
use super::{PluginError, validate};

/// One running plugin instance: its store, bindings and manifest.
pub struct PluginInstance {
    pub(crate) store: Store<HostState>,
    pub(crate) bindings: Option<ConnectorPlugin>,
    pub(crate) manifest: Option<Manifest>,
    pub(crate) name: String,
    pub(crate) poisoned: bool,
    pub(crate) config: RuntimeConfig,
}

impl PluginInstance {
    /// The manifest returned by `describe` at instantiation.
    pub fn manifest(&self) -> &Manifest {
        // Invariant: `Plugin::instantiate` only returns instances with a manifest.
        self.manifest
            .as_ref()
            .unwrap_or_else(|| unreachable!("instance without manifest"))
    }

    /// The plugin's name, from its manifest.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// Whether an earlier call trapped (the instance then refuses calls).
    pub fn is_poisoned(&self) -> bool {
        self.poisoned
    }

    /// Refuels and re-arms the deadline before a call.
    pub(crate) fn arm(&mut self) -> Result<(), PluginError> {
        self.store
            .set_fuel(self.config.fuel_per_call)
            .map_err(|e| PluginError::Runtime(format!("{e:#}")))?;
        let tick = self.config.epoch_tick.as_nanos().max(1);
        let ticks =
            u64::try_from(self.config.call_timeout.as_nanos().div_ceil(tick)).unwrap_or(u64::MAX);
        self.store.set_epoch_deadline(ticks.max(1));
        self.store.data_mut().budget.arm(self.config.call_timeout);
        Ok(())
    }

    /// Maps a wasmtime failure to a typed error and poisons the instance.
    pub(crate) fn classify(&mut self, err: wasmtime::Error) -> PluginError {
        self.poisoned = true;
        let plugin = self.name.clone();
        let state = self.store.data();
        let limit = match (state.budget.hit, state.limiter.hit) {
            (Some(Refusal::Deadline), _) => {
                return PluginError::Timeout {
                    plugin,
                    budget: self.config.call_timeout,
                };
            }
            (Some(Refusal::Limit(limit)), _) | (None, Some(Hit::Other(limit))) => Some(limit),
            (None, Some(Hit::Memory)) => {
                return PluginError::MemoryLimit {
                    plugin,
                    limit: self.config.memory_limit,
                };
            }
            (None, None) => state.limiter.count_limit(&err),
        };
        if let Some(limit) = limit {
            return PluginError::LimitExceeded { plugin, limit };
        }
        match err.downcast_ref::<Trap>() {
            Some(Trap::OutOfFuel) => PluginError::OutOfFuel {
                plugin,
                budget: self.config.fuel_per_call,
            },
            Some(Trap::Interrupt) => PluginError::Timeout {
                plugin,
                budget: self.config.call_timeout,
            },
            _ => {
                let state = self.store.data();
                let stderr = state.stderr.text();
                let detail = if stderr.is_empty() {
                    format!("{err:?}")
                } else {
                    // The guest wrote this; it may echo anything it saw, so redact.
                    format!(
                        "{err:?}\nplugin stderr (tail):\n{}",
                        state.http.redact(&stderr)
                    )
                };
                PluginError::Trap { plugin, detail }
            }
        }
    }

    /// Runs one export under the per-call budgets.
    pub(crate) fn call<R>(
        &mut self,
        f: impl FnOnce(&ConnectorPlugin, &mut Store<HostState>) -> wasmtime::Result<R>,
    ) -> Result<R, PluginError> {
        if self.poisoned {
            return Err(PluginError::Poisoned(self.name.clone()));
        }
        self.arm()?;
        let Some(bindings) = self.bindings.as_ref() else {
            return Err(PluginError::Runtime("instance has no bindings".into()));
        };
        match f(bindings, &mut self.store) {
            Ok(r) => Ok(r),
            Err(e) => Err(self.classify(e)),
        }
    }

    /// Lifts a connector-level result into the host error type, its text
    /// redacted like the plugin's log lines (see [`redact_connector_error`]).
    fn connector<R>(&self, r: Result<R, ConnectorError>) -> Result<R, PluginError> {
        r.map_err(|error| PluginError::Connector {
            plugin: self.name.clone(),
            error: redact_connector_error(error, |t| self.store.data().http.redact(t)),
        })
    }

    fn require(&self, capability: Capability) -> Result<(), PluginError> {
        if self.manifest().capabilities.contains(&capability) {
            Ok(())
        } else {
            Err(PluginError::MissingCapability {
                plugin: self.name.clone(),
                capability: capability.to_string(),
            })
        }
    }

    /// Calls `describe` again (the manifest is also cached: [`Self::manifest`]).
    pub fn describe(&mut self) -> Result<Manifest, PluginError> {
        self.call(|b, s| b.muster_connector_connector().call_describe(s))
    }

    /// Passes the connection settings.
    pub fn configure(&mut self, settings: &[(String, String)]) -> Result<(), PluginError> {
        let r = self.call(|b, s| b.muster_connector_connector().call_configure(s, settings))?;
        self.connector(r)
    }

    /// Checks credentials and reachability.
    pub fn check(&mut self) -> Result<(), PluginError> {
        let r = self.call(|b, s| b.muster_connector_connector().call_check(s))?;
        self.connector(r)
    }

    /// Reads one page of source people; every date is validated.
    pub fn read_people(&mut self, cursor: Option<&str>) -> Result<PersonPage, PluginError> {
        self.require(Capability::ReadPeople)?;
        let r = self.call(|b, s| b.muster_connector_source().call_read_people(s, cursor))?;
        let page = self.connector(r)?;
        self.validated(page)
    }

    /// Reads one page of source groups.
    pub fn read_groups(&mut self, cursor: Option<&str>) -> Result<GroupPage, PluginError> {
        self.require(Capability::ReadGroups)?;
        let r = self.call(|b, s| b.muster_connector_source().call_read_groups(s, cursor))?;
        self.connector(r)
    }

    /// Reads one page of target accounts; every date is validated.
    pub fn read_accounts(&mut self, cursor: Option<&str>) -> Result<PersonPage, PluginError> {
        self.require(Capability::ReadAccounts)?;
        let r = self.call(|b, s| b.muster_connector_target().call_read_accounts(s, cursor))?;
        let page = self.connector(r)?;
        self.validated(page)
    }

    /// Reads one page of target groups.
    pub fn read_target_groups(&mut self, cursor: Option<&str>) -> Result<GroupPage, PluginError> {
        self.require(Capability::ReadTargetGroups)?;
        let r = self.call(|b, s| b.muster_connector_target().call_read_groups(s, cursor))?;
        self.connector(r)
    }

    /// Applies one operation to the target.
    pub fn apply(&mut self, operation: &Operation) -> Result<Applied, PluginError> {
        let needed = match operation {
            Operation::CreateGroup(_)
            | Operation::RenameGroup(_)
            | Operation::AddMember(_)
            | Operation::RemoveMember(_) => Capability::WriteGroups,
            _ => Capability::WriteAccounts,
        };
        self.require(needed)?;
        let r = self.call(|b, s| b.muster_connector_target().call_apply(s, operation))?;
        self.connector(r)
    }

    /// Reads every page of source people, following cursors. A failed page
    /// fails the whole read (an incomplete source must never look complete).
    pub fn read_all_people(&mut self) -> Result<Vec<Person>, PluginError> {
        self.read_all("read-people", |i, c| {
            i.read_people(c).map(|p| (p.items, p.next))
        })
    }

    /// Reads every page of source groups (see [`Self::read_all_people`]).
    pub fn read_all_groups(&mut self) -> Result<Vec<Group>, PluginError> {
        self.read_all("read-groups", |i, c| {
            i.read_groups(c).map(|p| (p.items, p.next))
        })
    }

    /// Reads every page of target accounts (see [`Self::read_all_people`]).
    pub fn read_all_accounts(&mut self) -> Result<Vec<Person>, PluginError> {
        self.read_all("read-accounts", |i, c| {
            i.read_accounts(c).map(|p| (p.items, p.next))
        })
    }

    /// Reads every page of target groups (see [`Self::read_all_people`]).
    pub fn read_all_target_groups(&mut self) -> Result<Vec<Group>, PluginError> {
        self.read_all("read-target-groups", |i, c| {
            i.read_target_groups(c).map(|p| (p.items, p.next))
        })
    }

    /// Follows cursors until a page has none. A cursor that does not advance
    /// is an `invalid` error, and a read still going after
    /// `max_pages_per_read` pages is [`Limit::PagesPerRead`], rather than an
    /// endless loop. `read` names the export in that error.
    fn read_all<T>(
        &mut self,
        read: &'static str,
        mut page: impl FnMut(&mut Self, Option<&str>) -> Result<(Vec<T>, Option<String>), PluginError>,
    ) -> Result<Vec<T>, PluginError> {
        let limit = self.config.max_pages_per_read;
        let mut all = Vec::new();
        let mut cursor: Option<String> = None;
        let mut pages = 0u32;
        loop {
            let (items, next) = page(self, cursor.as_deref())?;
            pages = pages.saturating_add(1);
            all.extend(items);
            if next.is_some() && pages >= limit {
                return Err(PluginError::LimitExceeded {
                    plugin: self.name.clone(),
                    limit: Limit::PagesPerRead { limit, read },
                });
            }
            match next {
                Some(next) if Some(&next) != cursor.as_ref() => cursor = Some(next),
                Some(_) => {
                    return Err(PluginError::Connector {
                        plugin: self.name.clone(),
                        error: ConnectorError::Invalid("paging cursor did not advance".into()),
                    });
                }
                None => return Ok(all),
            }
        }
    }

    fn validated(&self, page: PersonPage) -> Result<PersonPage, PluginError> {
        for p in &page.items {
            self.connector(validate::person(p))?;
        }
        Ok(page)
    }
}
