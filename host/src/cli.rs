//! The `muster` command line. Each subcommand is a small function over the
//! library; exit codes follow DESIGN.md §6 (0 done, 1 failed, 2 usage).

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};

use crate::runtime::{Manifest, PluginError, Runtime, RuntimeConfig, check_contract};

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
    let outcome = run(cli);
    print!("{}", outcome.stdout);
    match outcome.error {
        None => ExitCode::SUCCESS,
        Some(e) => {
            eprintln!("error: {e}");
            ExitCode::from(1)
        }
    }
}

/// What a command printed, and whether it failed. A command may print
/// something useful *and* fail (e.g. inspecting an incompatible plugin).
#[derive(Debug)]
pub struct Outcome {
    /// Text for standard output.
    pub stdout: String,
    /// The failure, if any (exit code 1).
    pub error: Option<PluginError>,
}

impl From<Result<String, PluginError>> for Outcome {
    fn from(r: Result<String, PluginError>) -> Self {
        match r {
            Ok(stdout) => Outcome {
                stdout,
                error: None,
            },
            Err(e) => Outcome {
                stdout: String::new(),
                error: Some(e),
            },
        }
    }
}

/// Runs a parsed command.
pub fn run(cli: Cli) -> Outcome {
    match cli.command {
        Command::Plugin(PluginCommand::Inspect { file }) => inspect(&file),
    }
}

/// Loads the plugin with no network, asks it to describe itself and renders
/// the manifest. An incompatible contract version is shown, then reported as
/// the command's error, so the operator sees both what the plugin is and why
/// this host will not run it.
pub fn inspect(file: &std::path::Path) -> Outcome {
    let described = Runtime::new(RuntimeConfig::default())
        .and_then(|runtime| runtime.load_file(file))
        .and_then(|plugin| Ok((plugin.describe()?, plugin.digest().to_owned())));
    let (manifest, digest) = match described {
        Ok(d) => d,
        Err(e) => return Err(e).into(),
    };
    Outcome {
        stdout: render_manifest(&manifest, &digest),
        error: check_contract(&manifest.contract_version).err(),
    }
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
