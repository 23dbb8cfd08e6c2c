//! Logging to the host. The host attributes each line to the plugin and
//! redacts secrets; the macros format lazily like `std::format!`.

pub use crate::bindings::muster::connector::log::Level;

/// Sends one message at `level` to the host.
pub fn log(level: Level, message: &str) {
    crate::bindings::muster::connector::log::log(level, message);
}

/// Logs at `trace` level.
#[macro_export]
macro_rules! trace { ($($t:tt)*) => { $crate::log::log($crate::log::Level::Trace, &format!($($t)*)) }; }
/// Logs at `debug` level.
#[macro_export]
macro_rules! debug { ($($t:tt)*) => { $crate::log::log($crate::log::Level::Debug, &format!($($t)*)) }; }
/// Logs at `info` level.
#[macro_export]
macro_rules! info { ($($t:tt)*) => { $crate::log::log($crate::log::Level::Info, &format!($($t)*)) }; }
/// Logs at `warn` level.
#[macro_export]
macro_rules! warn { ($($t:tt)*) => { $crate::log::log($crate::log::Level::Warn, &format!($($t)*)) }; }
/// Logs at `error` level.
#[macro_export]
macro_rules! error { ($($t:tt)*) => { $crate::log::log($crate::log::Level::Error, &format!($($t)*)) }; }
