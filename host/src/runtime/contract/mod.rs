//! The versions of the connector contract this host speaks, one module each,
//! the way Zed's `extension_host` does it: every version has its own
//! `bindgen!` over its own frozen `wit/since_v…` directory, and converts its
//! types into the latest ones beside it. The rest of the host speaks only
//! [`latest`]; [`Bindings`] holds an instance's version-specific bindings and
//! dispatches every call, adapting on the way in and out.
//!
//! Which version a component speaks is read from the component itself: the
//! interfaces it exports carry it (`muster:connector/connector@0.1.0`), see
//! [`ContractVersion::of`]. Nothing the plugin *returns* is trusted for it.

pub mod v0_1;
pub mod v0_2;

pub use v0_2 as latest;

use wasmtime::Store;
use wasmtime::component::{Component, InstancePre};

use super::PluginError;
use super::declarations::Declarations;
use super::state::HostState;
use latest::{Applied, ConnectorError, GroupPage, Manifest, Operation, Person, PersonPage};

/// A contract version this host supports.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum ContractVersion {
    /// `wit/since_v0.1.0`, adapted by [`v0_1`].
    V0_1,
    /// `wit/since_v0.2.0`, the latest.
    V0_2,
}

/// The interface every connector exports, whose version names the contract.
const CONNECTOR_INTERFACE: &str = "muster:connector/connector@";

impl ContractVersion {
    /// Every version this host supports, oldest first.
    pub const SUPPORTED: [ContractVersion; 2] = [ContractVersion::V0_1, ContractVersion::V0_2];

    /// The latest version (what the host speaks internally).
    pub const LATEST: ContractVersion = ContractVersion::V0_2;

    /// The version as written in WIT package names.
    pub const fn as_str(self) -> &'static str {
        match self {
            ContractVersion::V0_1 => "0.1.0",
            ContractVersion::V0_2 => "0.2.0",
        }
    }

    /// `0.1.0, 0.2.0`: for messages.
    pub fn supported_list() -> String {
        Self::SUPPORTED.map(Self::as_str).join(", ")
    }

    /// The supported version spelled `version`, if any.
    pub fn parse(version: &str) -> Option<ContractVersion> {
        Self::SUPPORTED.into_iter().find(|v| v.as_str() == version)
    }

    /// The version `component` speaks, from the name of the
    /// `muster:connector/connector@<version>` interface it exports. A
    /// component exporting no such interface is
    /// [`PluginError::Incompatible`]; one of a version this host does not
    /// support is [`PluginError::UnsupportedContract`].
    pub fn of(component: &Component) -> Result<ContractVersion, PluginError> {
        let ty = component.component_type();
        let engine = component.engine();
        let version = ty
            .exports(engine)
            .find_map(|(name, _)| name.strip_prefix(CONNECTOR_INTERFACE).map(str::to_owned));
        let Some(version) = version else {
            return Err(PluginError::Incompatible {
                reason: format!(
                    "the component exports no `{}<version>` interface: it is not a muster connector",
                    CONNECTOR_INTERFACE
                ),
            });
        };
        Self::parse(&version).ok_or_else(|| PluginError::UnsupportedContract {
            version,
            supported: Self::supported_list(),
        })
    }
}

impl std::fmt::Display for ContractVersion {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A component linked for its contract version, ready to instantiate.
#[derive(Clone)]
pub(crate) enum BindingsPre {
    V0_1(v0_1::ConnectorPluginPre<HostState>),
    V0_2(v0_2::ConnectorPluginPre<HostState>),
}

impl BindingsPre {
    /// Checks that the linked component has the exports of `version`.
    pub(crate) fn new(
        version: ContractVersion,
        pre: InstancePre<HostState>,
    ) -> wasmtime::Result<BindingsPre> {
        Ok(match version {
            ContractVersion::V0_1 => BindingsPre::V0_1(v0_1::ConnectorPluginPre::new(pre)?),
            ContractVersion::V0_2 => BindingsPre::V0_2(v0_2::ConnectorPluginPre::new(pre)?),
        })
    }

    pub(crate) fn version(&self) -> ContractVersion {
        match self {
            BindingsPre::V0_1(_) => ContractVersion::V0_1,
            BindingsPre::V0_2(_) => ContractVersion::V0_2,
        }
    }

    pub(crate) fn engine(&self) -> &wasmtime::Engine {
        match self {
            BindingsPre::V0_1(pre) => pre.engine(),
            BindingsPre::V0_2(pre) => pre.engine(),
        }
    }

    /// Instantiates in `store`. A 0.1 instance keeps the component's
    /// declarations, which its manifest lacks.
    pub(crate) fn instantiate(
        &self,
        store: &mut Store<HostState>,
        declarations: &Declarations,
    ) -> wasmtime::Result<Bindings> {
        Ok(match self {
            BindingsPre::V0_1(pre) => Bindings::V0_1 {
                plugin: pre.instantiate(store)?,
                declarations: declarations.clone(),
            },
            BindingsPre::V0_2(pre) => Bindings::V0_2(pre.instantiate(store)?),
        })
    }
}

/// The bindings of one instance, for its contract version. Every method takes
/// and returns the latest types.
pub(crate) enum Bindings {
    V0_1 {
        plugin: v0_1::ConnectorPlugin,
        declarations: Declarations,
    },
    V0_2(v0_2::ConnectorPlugin),
}

/// What a call returns: a wasmtime failure (trap…) or the connector's result.
pub(crate) type Call<T> = wasmtime::Result<Result<T, ConnectorError>>;

fn lift<T, U>(
    r: wasmtime::Result<Result<T, v0_1::muster::connector::types::ConnectorError>>,
    f: impl FnOnce(T) -> U,
) -> Call<U> {
    r.map(|r| r.map(f).map_err(v0_1::error))
}

impl Bindings {
    pub(crate) fn describe(&self, s: &mut Store<HostState>) -> wasmtime::Result<Manifest> {
        match self {
            Bindings::V0_1 {
                plugin,
                declarations,
            } => plugin
                .muster_connector_connector()
                .call_describe(s)
                .map(|m| v0_1::manifest(m, declarations)),
            Bindings::V0_2(b) => b.muster_connector_connector().call_describe(s),
        }
    }

    pub(crate) fn configure(
        &self,
        s: &mut Store<HostState>,
        settings: &[(String, String)],
    ) -> Call<()> {
        match self {
            Bindings::V0_1 { plugin, .. } => lift(
                plugin
                    .muster_connector_connector()
                    .call_configure(s, settings),
                |u| u,
            ),
            Bindings::V0_2(b) => b.muster_connector_connector().call_configure(s, settings),
        }
    }

    pub(crate) fn check(&self, s: &mut Store<HostState>) -> Call<()> {
        match self {
            Bindings::V0_1 { plugin, .. } => {
                lift(plugin.muster_connector_connector().call_check(s), |u| u)
            }
            Bindings::V0_2(b) => b.muster_connector_connector().call_check(s),
        }
    }

    /// `since` is dropped for 0.1, whose reads are always full (and say so).
    pub(crate) fn read_people(
        &self,
        s: &mut Store<HostState>,
        cursor: Option<&str>,
        since: Option<&str>,
    ) -> Call<PersonPage> {
        match self {
            Bindings::V0_1 { plugin, .. } => lift(
                plugin.muster_connector_source().call_read_people(s, cursor),
                v0_1::person_page,
            ),
            Bindings::V0_2(b) => {
                let request = latest::ReadRequest {
                    cursor: cursor.map(str::to_owned),
                    since: since.map(str::to_owned),
                };
                b.muster_connector_source().call_read_people(s, &request)
            }
        }
    }

    pub(crate) fn read_groups(
        &self,
        s: &mut Store<HostState>,
        cursor: Option<&str>,
    ) -> Call<GroupPage> {
        match self {
            Bindings::V0_1 { plugin, .. } => lift(
                plugin.muster_connector_source().call_read_groups(s, cursor),
                v0_1::group_page,
            ),
            Bindings::V0_2(b) => b.muster_connector_source().call_read_groups(s, cursor),
        }
    }

    pub(crate) fn read_accounts(
        &self,
        s: &mut Store<HostState>,
        cursor: Option<&str>,
    ) -> Call<PersonPage> {
        match self {
            Bindings::V0_1 { plugin, .. } => lift(
                plugin
                    .muster_connector_target()
                    .call_read_accounts(s, cursor),
                v0_1::person_page,
            ),
            Bindings::V0_2(b) => b.muster_connector_target().call_read_accounts(s, cursor),
        }
    }

    pub(crate) fn read_target_groups(
        &self,
        s: &mut Store<HostState>,
        cursor: Option<&str>,
    ) -> Call<GroupPage> {
        match self {
            Bindings::V0_1 { plugin, .. } => lift(
                plugin.muster_connector_target().call_read_groups(s, cursor),
                v0_1::group_page,
            ),
            Bindings::V0_2(b) => b.muster_connector_target().call_read_groups(s, cursor),
        }
    }

    /// `Err(Unsupported)` for a 0.1 plugin, which cannot read one person.
    pub(crate) fn read_person(
        &self,
        s: &mut Store<HostState>,
        id: &str,
    ) -> Result<Call<Option<Person>>, v0_1::Unsupported> {
        match self {
            Bindings::V0_1 { .. } => Err(v0_1::Unsupported("read-person")),
            Bindings::V0_2(b) => Ok(b.muster_connector_source().call_read_person(s, id)),
        }
    }

    /// `Err(Unsupported)` for a 0.1 plugin, which cannot read one account.
    pub(crate) fn read_account(
        &self,
        s: &mut Store<HostState>,
        id: &str,
    ) -> Result<Call<Option<Person>>, v0_1::Unsupported> {
        match self {
            Bindings::V0_1 { .. } => Err(v0_1::Unsupported("read-account")),
            Bindings::V0_2(b) => Ok(b.muster_connector_target().call_read_account(s, id)),
        }
    }

    /// `Err(Unsupported)` when the operation has no 0.1 form; nothing is
    /// sent then.
    pub(crate) fn apply(
        &self,
        s: &mut Store<HostState>,
        op: &Operation,
    ) -> Result<Call<Applied>, v0_1::Unsupported> {
        match self {
            Bindings::V0_1 { plugin, .. } => {
                let op = v0_1::operation_out(op)?;
                Ok(lift(
                    plugin.muster_connector_target().call_apply(s, &op),
                    |a| Applied {
                        target_id: a.target_id,
                    },
                ))
            }
            Bindings::V0_2(b) => Ok(b.muster_connector_target().call_apply(s, op)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn versions_are_named_and_listed() {
        assert_eq!(ContractVersion::supported_list(), "0.1.0, 0.2.0");
        assert_eq!(ContractVersion::parse("0.1.0"), Some(ContractVersion::V0_1));
        assert_eq!(ContractVersion::parse("0.2.0"), Some(ContractVersion::V0_2));
        assert_eq!(ContractVersion::parse("0.3.0"), None);
        assert_eq!(ContractVersion::parse("1.0.0"), None);
        assert_eq!(
            ContractVersion::LATEST,
            *ContractVersion::SUPPORTED.last().unwrap()
        );
    }
}
