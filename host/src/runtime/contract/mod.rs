//! The versions of the connector contract this host speaks, one module each,
//! the way Zed's `extension_host` does it: every version has its own
//! `bindgen!` over its own frozen `wit/since_v…` directory, and converts its
//! types into the latest ones beside it. The rest of the host speaks only
//! [`latest`]; each version implements [`Contract`] (the calls, in the latest
//! types), and an instance's [`Bindings`] are that implementation, adapting
//! on the way in and out.
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
            BindingsPre::V0_1(pre) => Box::new(v0_1::Adapted {
                plugin: pre.instantiate(store)?,
                declarations: declarations.clone(),
            }),
            BindingsPre::V0_2(pre) => Box::new(pre.instantiate(store)?),
        })
    }
}

/// A 0.2 operation that an older plugin cannot receive; the value names it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Unsupported(pub &'static str);

/// What a call returns: a wasmtime failure (trap…) or the connector's result.
pub(crate) type Call<T> = wasmtime::Result<Result<T, ConnectorError>>;

/// The calls of one contract version, in the latest contract's types:
/// implemented **once per version** — natively by [`v0_2`], through the
/// adapter by [`v0_1`] — so a new version is a new module and one more
/// implementation, and nothing above it changes. What a version cannot
/// express is refused as [`Unsupported`] before anything reaches the plugin.
pub(crate) trait Contract: Send + Sync {
    fn describe(&self, s: &mut Store<HostState>) -> wasmtime::Result<Manifest>;
    fn configure(&self, s: &mut Store<HostState>, settings: &[(String, String)]) -> Call<()>;
    fn check(&self, s: &mut Store<HostState>) -> Call<()>;
    /// `since`: the watermark to read from (a version that cannot read
    /// changes drops it, and its pages say `full`).
    fn read_people(
        &self,
        s: &mut Store<HostState>,
        cursor: Option<&str>,
        since: Option<&str>,
    ) -> Call<PersonPage>;
    fn read_groups(&self, s: &mut Store<HostState>, cursor: Option<&str>) -> Call<GroupPage>;
    fn read_accounts(&self, s: &mut Store<HostState>, cursor: Option<&str>) -> Call<PersonPage>;
    fn read_target_groups(&self, s: &mut Store<HostState>, cursor: Option<&str>)
    -> Call<GroupPage>;
    fn read_person(
        &self,
        s: &mut Store<HostState>,
        id: &str,
    ) -> Result<Call<Option<Person>>, Unsupported>;
    fn read_account(
        &self,
        s: &mut Store<HostState>,
        id: &str,
    ) -> Result<Call<Option<Person>>, Unsupported>;
    fn apply(&self, s: &mut Store<HostState>, op: &Operation)
    -> Result<Call<Applied>, Unsupported>;
}

/// The bindings of one instance, for its contract version; every call is
/// dispatched through them.
pub(crate) type Bindings = Box<dyn Contract>;

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
