//! The contract types the host speaks: always the **latest** version
//! ([`super::contract::latest`], `muster:connector@0.2.0`). Plugins built
//! against an older version are adapted at the boundary by their version's
//! module under [`super::contract`]; nothing outside it sees older types.

pub use super::contract::latest::*;
