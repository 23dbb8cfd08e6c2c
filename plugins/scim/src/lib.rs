//! The `scim` connector (work in progress).

use muster_sdk::prelude::*;

struct Scim;

impl Connector for Scim {
    fn describe() -> Manifest {
        Manifest {
            name: "scim".into(),
            version: "0.1.0".into(),
            contract_version: CONTRACT_VERSION.into(),
            description: "work in progress".into(),
            capabilities: vec![],
            config_keys: vec![],
            hosts: vec![],
            credential_slots: vec![],
        }
    }

    fn configure(_settings: Vec<(String, String)>) -> Result<(), ConnectorError> {
        Ok(())
    }

    fn check() -> Result<(), ConnectorError> {
        Err(ConnectorError::Unsupported)
    }
}

impl Source for Scim {
    fn read_people(_cursor: Option<String>) -> Result<PersonPage, ConnectorError> {
        Err(ConnectorError::Unsupported)
    }

    fn read_groups(_cursor: Option<String>) -> Result<GroupPage, ConnectorError> {
        Err(ConnectorError::Unsupported)
    }
}

impl Target for Scim {
    fn read_accounts(_cursor: Option<String>) -> Result<PersonPage, ConnectorError> {
        Err(ConnectorError::Unsupported)
    }

    fn read_groups(_cursor: Option<String>) -> Result<GroupPage, ConnectorError> {
        Err(ConnectorError::Unsupported)
    }

    fn apply(_operation: Operation) -> Result<Applied, ConnectorError> {
        Err(ConnectorError::Unsupported)
    }
}

muster_sdk::export!(Scim);
