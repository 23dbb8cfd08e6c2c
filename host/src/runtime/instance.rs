//! One running plugin instance: every call goes through
//! [`PluginInstance::call`], which refuels the store, arms the epoch deadline
//! and the HTTP budget, and turns any failure into a typed [`PluginError`];
//! reads that page stop at [`RuntimeConfig::max_pages_per_read`]. The records
//! come back in the latest contract's terms, unchecked: converting and
//! checking them (a bad value holds its record, it never fails the read) is
//! [`super::connector`]'s job.

use wasmtime::{Store, Trap};

use super::PluginError;
use super::bindings::{
    Applied, Capability, ConnectorError, Coverage, Group, GroupPage, Manifest, Operation, Person,
    PersonPage, RecordProblem,
};
use super::contract::{Bindings, ContractVersion, Unsupported};
use super::engine::RuntimeConfig;
use super::error::redact_connector_error;
use super::limits::{Hit, Limit, Refusal};
use super::plugin::{Capabilities, Plugin};
use super::state::HostState;

/// A whole read of people or accounts: every page, in the latest contract's
/// terms.
#[derive(Debug, Clone, PartialEq)]
pub struct PeopleRead {
    /// Every record of every page, in order.
    pub people: Vec<Person>,
    /// What the read covers (as the first page says; a plugin that changes
    /// its mind between pages is refused). A target read and a 0.1 read are
    /// always [`Coverage::Full`].
    pub coverage: Coverage,
    /// The last page's watermark, where the next incremental read may start.
    pub watermark: Option<String>,
    /// Records the plugin could not take as they are, from every page.
    pub problems: Vec<RecordProblem>,
}

/// A whole read of groups (always full).
#[derive(Debug, Clone, PartialEq)]
pub struct GroupsRead {
    /// Every group of every page, in order.
    pub groups: Vec<Group>,
    /// Records the plugin could not take as they are, from every page.
    pub problems: Vec<RecordProblem>,
}

/// One running plugin instance: its store, bindings (for its contract
/// version) and manifest (in the latest contract's terms).
pub struct PluginInstance {
    pub(crate) store: Store<HostState>,
    pub(crate) bindings: Option<Bindings>,
    pub(crate) version: ContractVersion,
    pub(crate) manifest: Option<Manifest>,
    pub(crate) name: String,
    pub(crate) poisoned: bool,
    pub(crate) config: RuntimeConfig,
    /// The plugin and capabilities this instance was made from, to make
    /// [siblings](Self::sibling).
    pub(crate) origin: Origin,
    /// The settings of its last successful `configure`, passed to siblings.
    pub(crate) settings: Option<Vec<(String, String)>>,
    /// How many calls of this connection may be in flight at once (its
    /// `max_in_flight`; 1 unless the connection says otherwise).
    pub(crate) max_in_flight: usize,
}

/// What an instance was made from: enough to make another one like it.
#[derive(Clone)]
pub(crate) struct Origin {
    pub(crate) plugin: Plugin,
    pub(crate) caps: Capabilities,
}

impl PluginInstance {
    /// The manifest returned by `describe` at instantiation.
    pub fn manifest(&self) -> &Manifest {
        // Invariant: `Plugin::instantiate` only returns instances with a manifest.
        self.manifest
            .as_ref()
            .unwrap_or_else(|| unreachable!("instance without manifest"))
    }

    /// The contract version the plugin speaks (read from the component).
    pub fn contract_version(&self) -> ContractVersion {
        self.version
    }

    /// The plugin's name, from its manifest.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// Whether an earlier call trapped (the instance then refuses calls).
    pub fn is_poisoned(&self) -> bool {
        self.poisoned
    }

    /// How many of this connection's calls may be in flight at once: the
    /// connection's `max_in_flight` (1 for an instance made without one).
    pub fn max_in_flight(&self) -> usize {
        self.max_in_flight
    }

    /// Sets [`Self::max_in_flight`] (0 is taken as 1).
    pub fn set_max_in_flight(&mut self, n: usize) {
        self.max_in_flight = n.max(1);
    }

    /// Another instance of the same plugin for the same connection: its own
    /// store, memory and per-call budgets, but the same capabilities — the
    /// same outbound client, hence the same grant, credential, rate limiters
    /// and `Retry-After` back-off — and configured with the same settings.
    /// Instantiating from the loaded component costs tens of microseconds;
    /// `configure` is one call into the plugin. Siblings are how the engine
    /// keeps several calls in flight (`engine::inflight`).
    pub fn sibling(&self) -> Result<PluginInstance, PluginError> {
        let Origin { plugin, caps } = &self.origin;
        let mut other = plugin.instantiate(caps.clone())?;
        if let Some(settings) = &self.settings {
            other.configure(settings)?;
        }
        other.max_in_flight = self.max_in_flight;
        Ok(other)
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
        f: impl FnOnce(&Bindings, &mut Store<HostState>) -> wasmtime::Result<R>,
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
        self.call(|b, s| b.describe(s))
    }

    /// Passes the connection settings.
    pub fn configure(&mut self, settings: &[(String, String)]) -> Result<(), PluginError> {
        let r = self.call(|b, s| b.configure(s, settings))?;
        self.connector(r)?;
        self.settings = Some(settings.to_vec());
        Ok(())
    }

    /// Checks credentials and reachability.
    pub fn check(&mut self) -> Result<(), PluginError> {
        let r = self.call(|b, s| b.check(s))?;
        self.connector(r)
    }

    /// Reads one page of source people (a full read).
    pub fn read_people(&mut self, cursor: Option<&str>) -> Result<PersonPage, PluginError> {
        self.read_people_since(cursor, None)
    }

    /// Reads one page of source people changed since `since` (a watermark
    /// from an earlier read); the page's `coverage` says whether the plugin
    /// could.
    pub fn read_people_since(
        &mut self,
        cursor: Option<&str>,
        since: Option<&str>,
    ) -> Result<PersonPage, PluginError> {
        self.require(Capability::ReadPeople)?;
        let r = self.call(|b, s| b.read_people(s, cursor, since))?;
        self.connector(r)
    }

    /// Reads one page of source groups.
    pub fn read_groups(&mut self, cursor: Option<&str>) -> Result<GroupPage, PluginError> {
        self.require(Capability::ReadGroups)?;
        let r = self.call(|b, s| b.read_groups(s, cursor))?;
        self.connector(r)
    }

    /// Reads one page of target accounts.
    pub fn read_accounts(&mut self, cursor: Option<&str>) -> Result<PersonPage, PluginError> {
        self.require(Capability::ReadAccounts)?;
        let r = self.call(|b, s| b.read_accounts(s, cursor))?;
        self.connector(r)
    }

    /// Reads one page of target groups.
    pub fn read_target_groups(&mut self, cursor: Option<&str>) -> Result<GroupPage, PluginError> {
        self.require(Capability::ReadTargetGroups)?;
        let r = self.call(|b, s| b.read_target_groups(s, cursor))?;
        self.connector(r)
    }

    /// Reads one source person by id (`None`: no such person). Needs the
    /// `read-person` capability, which no 0.1 plugin has.
    pub fn read_person(&mut self, id: &str) -> Result<Option<Person>, PluginError> {
        self.require(Capability::ReadPerson)?;
        let r = self.call_versioned(|b, s| b.read_person(s, id))?;
        self.connector(r)
    }

    /// Reads one target account by id (`None`: no such account). Needs the
    /// `read-account` capability, which no 0.1 plugin has.
    pub fn read_account(&mut self, id: &str) -> Result<Option<Person>, PluginError> {
        self.require(Capability::ReadAccount)?;
        let r = self.call_versioned(|b, s| b.read_account(s, id))?;
        self.connector(r)
    }

    /// Applies one operation to the target. An operation the plugin's
    /// contract version cannot express is refused before anything is sent
    /// ([`PluginError::UnsupportedOperation`]).
    pub fn apply(&mut self, operation: &Operation) -> Result<Applied, PluginError> {
        let needed = match operation {
            Operation::CreateGroup(_) | Operation::RenameGroup(_) | Operation::ChangeMembers(_) => {
                Capability::WriteGroups
            }
            _ => Capability::WriteAccounts,
        };
        self.require(needed)?;
        let r = self.call_versioned(|b, s| b.apply(s, operation))?;
        self.connector(r)
    }

    /// Like [`Self::call`], for exports that an older contract version may
    /// not have: its [`Unsupported`] becomes a typed error, and the
    /// plugin is not called.
    fn call_versioned<R>(
        &mut self,
        f: impl FnOnce(&Bindings, &mut Store<HostState>) -> Result<wasmtime::Result<R>, Unsupported>,
    ) -> Result<R, PluginError> {
        let mut refused = None;
        let r = self.call(|b, s| match f(b, s) {
            Ok(r) => r.map(Some),
            Err(unsupported) => {
                refused = Some(unsupported);
                Ok(None)
            }
        })?;
        match (r, refused) {
            (Some(r), _) => Ok(r),
            (None, refused) => Err(PluginError::UnsupportedOperation {
                plugin: self.name.clone(),
                operation: refused.map_or("(unknown)", |u| u.0),
                contract: self.version,
            }),
        }
    }

    /// Reads every page of source people, following cursors; with `since`,
    /// asks for the changes since that watermark only (the result's
    /// `coverage` says what the plugin did). A failed page fails the whole
    /// read (an incomplete source must never look complete).
    ///
    /// A read may cover only changes even without `since` (an operator's
    /// connector setting, such as Lucca's `modified_since`, can make it
    /// so): the result says so, and the core decides — it refuses to plan
    /// a flow that can deactivate from it ([`muster_core::PlanError::IncompleteSource`]).
    pub fn read_all_people(&mut self, since: Option<&str>) -> Result<PeopleRead, PluginError> {
        let mut all = Collect::default();
        let read = self.read_people_pages(since, &mut |_, page| all.page(page))?;
        Ok(all.into_read(read))
    }

    /// Reads every page of target accounts. A target read is always full;
    /// one that says otherwise is an `invalid` error.
    pub fn read_all_accounts(&mut self) -> Result<PeopleRead, PluginError> {
        let mut all = Collect::default();
        let read = self.read_account_pages(&mut |_, page| all.page(page))?;
        Ok(all.into_read(read))
    }

    /// [`Self::read_all_people`], handing each page to `sink` as it arrives
    /// (with this instance, to redact what the page says) instead of
    /// collecting them: the caller converts and hashes a page while the
    /// next one is read. The result has the read's coverage and watermark,
    /// and no people or problems (they went to `sink`). A page is handed
    /// over only once its coverage has been checked.
    pub fn read_people_pages(
        &mut self,
        since: Option<&str>,
        sink: &mut dyn FnMut(&Self, PersonPage),
    ) -> Result<PeopleRead, PluginError> {
        self.read_pages("read-people", |i, c| i.read_people_since(c, since), sink)
    }

    /// [`Self::read_all_accounts`], page by page (see
    /// [`Self::read_people_pages`]).
    pub fn read_account_pages(
        &mut self,
        sink: &mut dyn FnMut(&Self, PersonPage),
    ) -> Result<PeopleRead, PluginError> {
        let read = self.read_pages("read-accounts", |i, c| i.read_accounts(c), sink)?;
        if read.coverage != Coverage::Full {
            return Err(self.invalid("read-accounts: a target read must be `full`".into()));
        }
        Ok(read)
    }

    /// Reads every page of source groups (see [`Self::read_all_people`]).
    pub fn read_all_groups(&mut self) -> Result<GroupsRead, PluginError> {
        self.read_all_group_pages("read-groups", Self::read_groups)
    }

    /// Reads every page of target groups (see [`Self::read_all_people`]).
    pub fn read_all_target_groups(&mut self) -> Result<GroupsRead, PluginError> {
        self.read_all_group_pages("read-target-groups", Self::read_target_groups)
    }

    /// Follows person pages, keeping the first page's coverage and the last
    /// page's watermark, and hands each page to `sink`. Pages that disagree
    /// on coverage are an `invalid` error: a read is full or it is not.
    fn read_pages(
        &mut self,
        read: &'static str,
        mut page: impl FnMut(&mut Self, Option<&str>) -> Result<PersonPage, PluginError>,
        sink: &mut dyn FnMut(&Self, PersonPage),
    ) -> Result<PeopleRead, PluginError> {
        let mut coverage = None;
        let mut watermark = None;
        self.follow(read, |i, c| {
            let mut p = page(i, c)?;
            if *coverage.get_or_insert(p.coverage) != p.coverage {
                return Err(i.invalid(format!("{read}: pages disagree on the read's coverage")));
            }
            watermark = p.watermark.take();
            let next = p.next.clone();
            sink(i, p);
            Ok(next)
        })?;
        Ok(PeopleRead {
            people: Vec::new(),
            coverage: coverage.unwrap_or(Coverage::Full),
            watermark,
            problems: Vec::new(),
        })
    }

    fn read_all_group_pages(
        &mut self,
        read: &'static str,
        mut page: impl FnMut(&mut Self, Option<&str>) -> Result<GroupPage, PluginError>,
    ) -> Result<GroupsRead, PluginError> {
        let mut problems = Vec::new();
        let groups = self.read_all(read, |i, c| {
            let p = page(i, c)?;
            problems.extend(p.problems);
            Ok((p.items, p.next))
        })?;
        Ok(GroupsRead { groups, problems })
    }

    fn invalid(&self, message: String) -> PluginError {
        PluginError::Connector {
            plugin: self.name.clone(),
            error: ConnectorError::Invalid(message),
        }
    }

    /// Every item of every page, following cursors ([`Self::follow`]).
    fn read_all<T>(
        &mut self,
        read: &'static str,
        mut page: impl FnMut(&mut Self, Option<&str>) -> Result<(Vec<T>, Option<String>), PluginError>,
    ) -> Result<Vec<T>, PluginError> {
        let mut all = Vec::new();
        self.follow(read, |i, c| {
            let (items, next) = page(i, c)?;
            all.extend(items);
            Ok(next)
        })?;
        Ok(all)
    }

    /// Reads pages until one has no next cursor. A cursor that does not
    /// advance is an `invalid` error, and a read still going after
    /// `max_pages_per_read` pages is [`Limit::PagesPerRead`], rather than an
    /// endless loop. `read` names the export in that error.
    fn follow(
        &mut self,
        read: &'static str,
        mut page: impl FnMut(&mut Self, Option<&str>) -> Result<Option<String>, PluginError>,
    ) -> Result<(), PluginError> {
        let limit = self.config.max_pages_per_read;
        let mut cursor: Option<String> = None;
        let mut pages = 0u32;
        loop {
            let next = page(self, cursor.as_deref())?;
            pages = pages.saturating_add(1);
            if next.is_some() && pages >= limit {
                return Err(PluginError::LimitExceeded {
                    plugin: self.name.clone(),
                    limit: Limit::PagesPerRead { limit, read },
                });
            }
            match next {
                Some(next) if Some(&next) != cursor.as_ref() => cursor = Some(next),
                Some(_) => return Err(self.invalid("paging cursor did not advance".into())),
                None => return Ok(()),
            }
        }
    }
}

/// Pages collected into one [`PeopleRead`] (the all-at-once reads).
#[derive(Default)]
struct Collect {
    people: Vec<Person>,
    problems: Vec<RecordProblem>,
}

impl Collect {
    fn page(&mut self, page: PersonPage) {
        self.people.extend(page.items);
        self.problems.extend(page.problems);
    }

    fn into_read(self, read: PeopleRead) -> PeopleRead {
        PeopleRead {
            people: self.people,
            problems: self.problems,
            ..read
        }
    }
}
