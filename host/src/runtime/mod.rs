//! The plugin runtime: one [`Runtime`] (engine, linker, epoch ticker,
//! compilation cache) per process, one [`Plugin`] per loaded component (an
//! `InstancePre` for the contract version its exports carry — see
//! [`contract`] — reused for every instantiation), one [`PluginInstance`] per
//! configured connection (its own `Store`, resource caps, fuel and deadline;
//! every cap is listed in [`limits`]). Above them, [`connector`] reads a
//! side in the core's terms, converting and checking every record once.
//!
//! Every call into a plugin goes through one private `PluginInstance::call`, which
//! refuels the store, arms the epoch deadline, and turns any failure into a
//! typed [`PluginError`]. A trap poisons only that instance: the engine and
//! every other instance keep working.

pub mod bindings;
pub mod cache;
pub mod connector;
pub mod contract;
pub mod declarations;
mod engine;
mod error;
pub mod http;
mod instance;
pub mod limits;
pub mod log;
mod plugin;
mod state;
mod stderr;

pub use bindings::{
    AccountRef, AccountUpdate, Applied, Capability, CompoundRow, ConfigKey, ConnectorError,
    Coverage, CredentialSlot, Date, Field, FieldRef, FieldValue, Gender, Group, GroupPage,
    GroupRename, ManagerChange, Manifest, MemberChange, NewGroup, Operation, Person, PersonPage,
    RateLimit, RecordProblem, RowAction, RowChange, Scalar,
};
pub use cache::{ComponentCache, Loaded};
pub use contract::ContractVersion;
pub use declarations::Declarations;
pub use error::PluginError;
pub use http::{DenyAll, OutboundHttp, grant};
pub use limits::Limit;
pub use log::{LogLine, LogSink, MemoryLog, StderrLog, TracingLog};

pub use engine::{Runtime, RuntimeConfig};
pub use instance::{GroupsRead, PeopleRead, PluginInstance};
pub use plugin::{Capabilities, Plugin};

#[cfg(test)]
mod tests {
    use super::*;

    /// The engine (`muster` flows) moves instances to worker threads and shares
    /// the runtime and loaded plugins between them.
    #[test]
    fn handles_are_thread_safe() {
        fn send<T: Send>() {}
        fn sync<T: Send + Sync>() {}
        sync::<Runtime>();
        sync::<Plugin>();
        send::<PluginInstance>();
        sync::<Capabilities>();
        sync::<PluginError>();
    }
}
