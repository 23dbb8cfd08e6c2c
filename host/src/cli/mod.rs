//! The `muster` command line (DESIGN.md §6).
//!
//! Each subcommand is a small function over the library that returns an
//! [`Outcome`]: what to print, and the exit code — 0 done, 1 failed (a run
//! failed, or some records could not be applied), 2 usage or configuration
//! error, 3 plan held by the guard, 4 flow busy (another live run holds its
//! lease; nothing was done), and for `plan --detailed-exitcode` only, 5 the
//! plan has changes to apply.

mod commands;
mod inspect;
pub mod render;

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{CommandFactory, Parser, Subcommand};

pub use inspect::{inspect, render_manifest};

/// Exit code: done.
pub const EXIT_OK: u8 = 0;
/// Exit code: a run failed, or records could not be applied.
pub const EXIT_FAILED: u8 = 1;
/// Exit code: bad usage or configuration.
pub const EXIT_USAGE: u8 = 2;
/// Exit code: the guard held the plan; approve it with `--approve-held`.
pub const EXIT_HELD: u8 = 3;
/// Exit code: another live run holds the flow's lease; nothing was done.
pub const EXIT_BUSY: u8 = 4;
/// Exit code of `plan --detailed-exitcode`: the plan has changes (and the
/// guard would not hold it). Like `terraform plan -detailed-exitcode`, whose
/// 2 is our usage error.
pub const EXIT_CHANGES: u8 = 5;

const AFTER_HELP: &str = "\
Exit codes: 0 done, 1 failed, 2 usage or configuration error, 3 plan held by the guard,
4 flow busy (another run of it is in progress; nothing was done);
`plan --detailed-exitcode`: 0 no changes, 3 would be held, 5 has changes.

Examples:
  muster check --config muster.toml
  muster plan  --config muster.toml --flow lucca-to-leapsome --out plan.json
  muster apply --config muster.toml plan.json
  muster sync  --config muster.toml --only 1042        # one person's record only
  muster sync  --config muster.toml --approve-held     # apply the plan the guard held
  muster serve --config muster.toml
  muster history --config muster.toml --json
  muster undo 42 --config muster.toml --yes          # reverse what run 42 did";

const UNDO_HELP: &str = "\
The plan is shown first; nothing changes without --yes. It is guarded like any
plan (exit 3 when held: review it, then add --approve-held). Fields changed
since the run, fields the flow no longer owns, and what cannot be reversed (an
invitation e-mail already sent, groups, memberships) are named in the plan and
left alone. The undo is a run of its own (trigger `undo`): it can be undone.

Exit codes: 0 done, 1 failed, 2 the run cannot be undone (unknown id, another
flow's run, never applied, changed nothing) or usage error, 3 held by the guard,
4 the run is still running or the flow is busy.

Examples:
  muster undo 42                       # show what undoing run 42 would do
  muster undo 42 --yes                 # do it
  muster undo 42 --yes --approve-held  # apply the undo the guard held";

/// muster — keeps an HR system and the tools around it in agreement.
#[derive(Debug, Parser)]
#[command(name = "muster", version, about, after_help = AFTER_HELP)]
pub struct Cli {
    /// More log output on stderr: -v info, -vv debug, -vvv trace (`RUST_LOG`
    /// overrides it). Secrets never appear in logs.
    #[arg(short, long, action = clap::ArgAction::Count, global = true)]
    pub verbose: u8,
    /// What to do.
    #[command(subcommand)]
    pub command: Command,
}

/// Options shared by commands that read the configuration.
#[derive(Debug, Clone, clap::Args)]
pub struct ConfigArg {
    /// The configuration file (TOML, see docs/config.md).
    #[arg(
        long,
        short = 'c',
        env = "MUSTER_CONFIG",
        default_value = "muster.toml"
    )]
    pub config: PathBuf,
}

/// Top-level subcommands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Test each connection's credentials and reachability.
    #[command(after_help = "Example:\n  muster check --config muster.toml --connection lucca")]
    Check {
        #[command(flatten)]
        config: ConfigArg,
        /// Only this connection.
        #[arg(long)]
        connection: Option<String>,
    },
    /// Compute and show what a sync would do, without changing anything.
    #[command(
        after_help = "Examples:\n  muster plan --flow lucca-to-leapsome\n  muster plan --json --out plan.json\n  muster plan --detailed-exitcode || [ $? -eq 5 ] && muster sync"
    )]
    Plan {
        #[command(flatten)]
        config: ConfigArg,
        /// Only this flow (default: every flow).
        #[arg(long)]
        flow: Option<String>,
        /// Print the plan as JSON (schema: docs/plan-json.md).
        #[arg(long)]
        json: bool,
        /// Also write the plan to this file, for `muster apply`.
        #[arg(long)]
        out: Option<PathBuf>,
        /// Only actions about this source record ("test the sync from this record").
        #[arg(long)]
        only: Option<String>,
        /// Tell scripts what the plan would do by the exit code: 0 no changes,
        /// 3 the guard would hold it, 4 it has changes (1 and 2 keep their meaning).
        #[arg(long)]
        detailed_exitcode: bool,
    },
    /// Apply a plan file written by `muster plan --out`, if its data is still current.
    #[command(after_help = "Example:\n  muster apply --config muster.toml plan.json")]
    Apply {
        #[command(flatten)]
        config: ConfigArg,
        /// The plan file.
        plan: PathBuf,
        /// Apply it even though the guard holds it.
        #[arg(long)]
        approve_held: bool,
        /// Print the result as JSON.
        #[arg(long)]
        json: bool,
        /// If another run of the flow is in progress, wait up to this many
        /// seconds for it (default: exit at once with code 4).
        #[arg(long, value_name = "SECONDS", default_value_t = 0)]
        wait: u64,
    },
    /// Plan and apply (unless the guard holds the plan).
    #[command(
        after_help = "Examples:\n  muster sync --flow lucca-to-leapsome\n  muster sync --only 1042\n  muster sync --approve-held"
    )]
    Sync {
        #[command(flatten)]
        config: ConfigArg,
        /// Only this flow (default: every flow).
        #[arg(long)]
        flow: Option<String>,
        /// Only actions about this source record.
        #[arg(long)]
        only: Option<String>,
        /// Apply the plan the guard held, if the data has not changed since.
        #[arg(long)]
        approve_held: bool,
        /// Print the result as JSON.
        #[arg(long)]
        json: bool,
        /// If another run of a flow is in progress, wait up to this many
        /// seconds for it (default: exit at once with code 4).
        #[arg(long, value_name = "SECONDS", default_value_t = 0)]
        wait: u64,
    },
    /// Run every flow on its schedule, take webhooks, serve `/healthz` and a
    /// status page (with `[serve] admins`: sign in to approve held plans).
    #[command(
        after_help = "Example:\n  muster serve --config muster.toml --listen 127.0.0.1:8080\n  curl -H 'X-Muster-Secret: …' -d @event.json http://127.0.0.1:8080/webhooks/flatchr-to-lucca"
    )]
    Serve {
        #[command(flatten)]
        config: ConfigArg,
        /// Address to listen on.
        #[arg(long, default_value = "127.0.0.1:8080")]
        listen: String,
        /// Run as a fleet worker: many tenants (--tenants), their state in
        /// this PostgreSQL database, shared with the other workers
        /// (docs/fleet.md). --config is not read then.
        #[arg(long, value_name = "POSTGRES_URL", requires = "tenants")]
        fleet: Option<String>,
        /// The tenants directory of a fleet worker: one TENANT.toml per
        /// tenant, in the muster.toml format without `state`.
        #[arg(long, value_name = "DIR", requires = "fleet")]
        tenants: Option<PathBuf>,
        /// The environment variable holding the fleet database's password.
        #[arg(long, value_name = "VAR", requires = "fleet")]
        fleet_password_env: Option<String>,
        /// The file holding the fleet database's password.
        #[arg(
            long,
            value_name = "FILE",
            requires = "fleet",
            conflicts_with = "fleet_password_env"
        )]
        fleet_password_file: Option<PathBuf>,
        /// Runs a fleet worker makes at once.
        #[arg(long, default_value_t = 1, value_parser = clap::value_parser!(u16).range(1..=64))]
        jobs: u16,
        /// The compiled-plugin cache of fleet tenants that name none.
        #[arg(long, value_name = "DIR", default_value = ".muster-cache")]
        cache: PathBuf,
    },
    /// Runs and their actions, newest first.
    #[command(after_help = "Example:\n  muster history --flow lucca-to-leapsome --json")]
    History {
        #[command(flatten)]
        config: ConfigArg,
        /// Only this flow (default: every flow).
        #[arg(long)]
        flow: Option<String>,
        /// How many runs per flow.
        #[arg(long, default_value_t = 20)]
        limit: usize,
        /// Print as JSON.
        #[arg(long)]
        json: bool,
    },
    /// Plan the inverse of what a run did (reactivate what it deactivated,
    /// deactivate what it created or reactivated, write back the values it
    /// overwrote) and, with --yes, apply it as a run of its own.
    #[command(after_help = UNDO_HELP)]
    Undo {
        #[command(flatten)]
        config: ConfigArg,
        /// The run to undo (its id in `muster history`).
        run: i64,
        /// The run's flow; checked against the run (default: the run's own).
        #[arg(long)]
        flow: Option<String>,
        /// Apply the undo plan (default: only show it).
        #[arg(long, conflicts_with = "out")]
        yes: bool,
        /// With --yes: apply the undo plan the guard held, if the data has not
        /// changed since.
        #[arg(long, requires = "yes")]
        approve_held: bool,
        /// Also write the undo plan to this file, for review.
        #[arg(long)]
        out: Option<PathBuf>,
        /// Print the plan or the result as JSON.
        #[arg(long)]
        json: bool,
        /// If another run of the flow is in progress, wait up to this many
        /// seconds for it (default: exit at once with code 4).
        #[arg(long, value_name = "SECONDS", default_value_t = 0)]
        wait: u64,
    },
    /// Print a shell completion script.
    #[command(after_help = "Example:\n  muster completions bash > /etc/bash_completion.d/muster")]
    Completions {
        /// bash, zsh, fish, elvish or powershell.
        shell: clap_complete::Shell,
    },
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

/// What a command printed and how it ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Outcome {
    /// Text for standard output.
    pub stdout: String,
    /// Shown on standard error as `error: …`.
    pub error: Option<String>,
    /// The process exit code.
    pub code: u8,
}

impl Outcome {
    pub fn ok(stdout: String) -> Outcome {
        Outcome {
            stdout,
            error: None,
            code: EXIT_OK,
        }
    }

    pub fn failed(code: u8, error: String) -> Outcome {
        Outcome {
            stdout: String::new(),
            error: Some(error),
            code,
        }
    }

    /// Keeps what was printed, and fails with `error`.
    pub fn with_error(mut self, code: u8, error: String) -> Outcome {
        self.error = Some(error);
        self.code = code;
        self
    }
}

/// Parses the arguments, runs, and maps the outcome to an exit code.
pub fn main() -> ExitCode {
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(e) => {
            let _ = e.print();
            return if e.use_stderr() {
                ExitCode::from(EXIT_USAGE)
            } else {
                ExitCode::SUCCESS
            };
        }
    };
    init_logging(cli.verbose);
    let outcome = run(cli);
    print!("{}", outcome.stdout);
    if let Some(e) = &outcome.error {
        eprintln!("error: {e}");
    }
    ExitCode::from(outcome.code)
}

/// Logs go to stderr through `tracing`: warnings by default, more with
/// `-v`, or exactly what `RUST_LOG` says.
fn init_logging(verbose: u8) {
    use std::io::IsTerminal;
    let filter = match std::env::var("RUST_LOG") {
        Ok(f) if !f.trim().is_empty() => tracing_subscriber::EnvFilter::new(f),
        _ => tracing_subscriber::EnvFilter::new(match verbose {
            0 => "warn",
            1 => "info",
            2 => "debug",
            _ => "trace",
        }),
    };
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(std::io::stderr().is_terminal())
        .without_time()
        .with_target(false)
        .try_init();
}

/// Runs a parsed command.
pub fn run(cli: Cli) -> Outcome {
    match cli.command {
        Command::Plugin(PluginCommand::Inspect { file }) => inspect(&file),
        Command::Completions { shell } => {
            let mut buf = Vec::new();
            clap_complete::generate(shell, &mut Cli::command(), "muster", &mut buf);
            Outcome::ok(String::from_utf8_lossy(&buf).into_owned())
        }
        Command::Check { config, connection } => {
            commands::check(&config.config, connection.as_deref())
        }
        Command::Plan {
            config,
            flow,
            json,
            out,
            only,
            detailed_exitcode,
        } => commands::plan(
            &config.config,
            flow.as_deref(),
            commands::PlanOutput {
                json,
                out_file: out.as_deref(),
                detailed_exitcode,
            },
            only,
        ),
        Command::Apply {
            config,
            plan,
            approve_held,
            json,
            wait,
        } => commands::apply(&config.config, &plan, approve_held, json, wait),
        Command::Sync {
            config,
            flow,
            only,
            approve_held,
            json,
            wait,
        } => commands::sync(
            &config.config,
            flow.as_deref(),
            only,
            approve_held,
            json,
            wait,
        ),
        Command::Serve {
            config,
            listen,
            fleet,
            tenants,
            fleet_password_env,
            fleet_password_file,
            jobs,
            cache,
        } => match (fleet, tenants) {
            (Some(url), Some(tenants)) => {
                let password = fleet_password_env
                    .map(crate::config::SecretSource::Env)
                    .or(fleet_password_file.map(crate::config::SecretSource::File));
                let args = commands::FleetArgs {
                    url,
                    tenants,
                    password,
                    jobs: usize::from(jobs),
                    cache,
                };
                commands::serve_fleet(args, &listen)
            }
            _ => commands::serve(&config.config, &listen),
        },
        Command::History {
            config,
            flow,
            limit,
            json,
        } => commands::history(&config.config, flow.as_deref(), limit, json),
        Command::Undo {
            config,
            run,
            flow,
            yes,
            approve_held,
            out,
            json,
            wait,
        } => commands::undo(
            &config.config,
            commands::UndoArgs {
                run,
                flow: flow.as_deref(),
                apply: yes,
                approve_held,
                out: out.as_deref(),
                json,
                wait,
            },
        ),
    }
}
