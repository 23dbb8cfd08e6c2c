//! Host side of the `log` import: plugin log lines, attributed to the plugin
//! and passed through the outbound redactor before they reach any sink, so a
//! secret that somehow reached a message is still never written out.

use std::sync::{Arc, Mutex};

use super::bindings::muster::connector::log::{Host, Level};
use super::state::HostState;

/// Where plugin log lines go. Implementations must be cheap and must not fail.
pub trait LogSink: Send + Sync {
    /// Records one (already redacted) line from `plugin`.
    fn log(&self, plugin: &str, level: Level, message: &str);
}

/// Writes lines to standard error, one per line, prefixed by level and plugin.
#[derive(Debug, Default, Clone, Copy)]
pub struct StderrLog;

impl LogSink for StderrLog {
    fn log(&self, plugin: &str, level: Level, message: &str) {
        eprintln!("{:<5} [{plugin}] {message}", level_name(level));
    }
}

/// Sends lines to `tracing` (target `plugin`, field `plugin`), so `-v` and
/// `RUST_LOG` govern them like the host's own logs.
#[derive(Debug, Default, Clone, Copy)]
pub struct TracingLog;

impl LogSink for TracingLog {
    fn log(&self, plugin: &str, level: Level, message: &str) {
        match level {
            Level::Error => tracing::error!(target: "plugin", plugin, "{message}"),
            Level::Warn => tracing::warn!(target: "plugin", plugin, "{message}"),
            Level::Info => tracing::info!(target: "plugin", plugin, "{message}"),
            Level::Debug => tracing::debug!(target: "plugin", plugin, "{message}"),
            Level::Trace => tracing::trace!(target: "plugin", plugin, "{message}"),
        }
    }
}

/// Keeps lines in memory: used by `muster plugin inspect` and by tests that
/// assert what a plugin logged.
#[derive(Debug, Default, Clone)]
pub struct MemoryLog {
    lines: Arc<Mutex<Vec<LogLine>>>,
}

/// One recorded line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LogLine {
    /// Plugin name.
    pub plugin: String,
    /// Severity.
    pub level: Level,
    /// Redacted message.
    pub message: String,
}

impl MemoryLog {
    /// A new, empty log.
    pub fn new() -> Self {
        Self::default()
    }

    /// A copy of every line recorded so far.
    pub fn lines(&self) -> Vec<LogLine> {
        self.lines.lock().map(|l| l.clone()).unwrap_or_default()
    }
}

impl LogSink for MemoryLog {
    fn log(&self, plugin: &str, level: Level, message: &str) {
        if let Ok(mut lines) = self.lines.lock() {
            lines.push(LogLine {
                plugin: plugin.to_owned(),
                level,
                message: message.to_owned(),
            });
        }
    }
}

/// Lower-case level name, as printed.
pub fn level_name(level: Level) -> &'static str {
    match level {
        Level::Trace => "trace",
        Level::Debug => "debug",
        Level::Info => "info",
        Level::Warn => "warn",
        Level::Error => "error",
    }
}

/// Longest message kept; a plugin must not be able to flood the host's logs.
const MAX_MESSAGE: usize = 8 * 1024;

impl Host for HostState {
    fn log(&mut self, level: Level, message: String) {
        let mut message = self.http.redact(&message);
        if message.len() > MAX_MESSAGE {
            let mut cut = MAX_MESSAGE;
            while !message.is_char_boundary(cut) {
                cut -= 1;
            }
            message.truncate(cut);
            message.push('…');
        }
        self.log.log(&self.plugin, level, &message);
    }
}
