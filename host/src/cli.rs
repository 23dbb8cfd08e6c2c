//! The `muster` command line. Each subcommand is a small function over the
//! library; exit codes follow DESIGN.md §6 (0 done, 1 failed, 2 usage).

use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;

use clap::{Parser, Subcommand};

use crate::runtime::{
    Capabilities, DenyAll, Manifest, MemoryLog, PluginError, Runtime, RuntimeConfig,
};

/// muster — keeps an HR system and the tools around it in agreement.
#[derive(Debug, Parser)]
#[command(name = "muster", version, about)]
pub struct Cli {
    /// What to do.
    #[command(subcommand)]
    pub command: Command,
}

/// Top-level subcommands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Work with connector plugins.
    #[command(subcommand)]
    Plugin(PluginCommand),
}

/// `muster plugin …`
#[derive(Debug, Subcommand)]
pub enum PluginCommand {
    /// Print a plugin's manifest: name, version, contract version,
    /// capabilities, hosts and credential slots.
    Inspect {
        /// The plugin component (`.wasm`).
        file: PathBuf,
    },
}

/// Parses the arguments, runs, and maps the outcome to an exit code.
pub fn main() -> ExitCode {
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(e) => {
            let _ = e.print();
            return if e.use_stderr() {
                ExitCode::from(2)
            } else {
                ExitCode::SUCCESS
            };
        }
    };
    match run(cli) {
        Ok(text) => {
            print!("{text}");
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::from(1)
        }
    }
}

/// Runs a parsed command and returns what it prints.
pub fn run(cli: Cli) -> Result<String, PluginError> {
    match cli.command {
        Command::Plugin(PluginCommand::Inspect { file }) => inspect(&file),
    }
}

/// Loads the plugin with no network, instantiates it and renders its manifest.
pub fn inspect(file: &std::path::Path) -> Result<String, PluginError> {
    let runtime = Runtime::new(RuntimeConfig::default())?;
    let plugin = runtime.load_file(file)?;
    let caps = Capabilities {
        name: None,
        http: Arc::new(DenyAll),
        log: Arc::new(MemoryLog::new()),
    };
    let instance = plugin.instantiate(caps)?;
    Ok(render_manifest(instance.manifest(), plugin.digest()))
}

/// Human-readable manifest, one fact per line.
pub fn render_manifest(m: &Manifest, digest: &str) -> String {
    use std::fmt::Write as _;
    let mut out = String::new();
    let list = |items: Vec<String>| {
        if items.is_empty() {
            "(none)".to_string()
        } else {
            items.join(", ")
        }
    };
    let _ = writeln!(out, "name:             {}", m.name);
    let _ = writeln!(out, "version:          {}", m.version);
    let _ = writeln!(out, "contract version: {}", m.contract_version);
    let _ = writeln!(out, "description:      {}", m.description);
    let _ = writeln!(out, "sha256:           {digest}");
    let _ = writeln!(
        out,
        "capabilities:     {}",
        list(m.capabilities.iter().map(|c| c.to_string()).collect())
    );
    let _ = writeln!(out, "hosts:            {}", list(m.hosts.clone()));
    let _ = writeln!(
        out,
        "config keys:{}",
        if m.config_keys.is_empty() {
            "      (none)"
        } else {
            ""
        }
    );
    for k in &m.config_keys {
        let _ = writeln!(
            out,
            "  {}{} — {}",
            k.name,
            if k.required { " (required)" } else { "" },
            k.description
        );
    }
    let _ = writeln!(
        out,
        "credential slots:{}",
        if m.credential_slots.is_empty() {
            " (none)"
        } else {
            ""
        }
    );
    for s in &m.credential_slots {
        let _ = writeln!(
            out,
            "  {}: {}: {} — {}",
            s.name, s.header, s.template, s.description
        );
    }
    out
}
