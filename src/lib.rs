//! The root package of the muster workspace. It ships nothing: it owns the
//! end-to-end tests in `tests/`, the criterion benches in `benches/`, and the
//! synthetic tenants and allocation counter both use.

pub mod alloc_counter;
pub mod synthetic;
