//! The commands that read the configuration: check, plan, apply, sync,
//! history, undo.

use std::path::Path;

use muster_core::Date;

use super::render;
use super::{EXIT_BUSY, EXIT_CHANGES, EXIT_FAILED, EXIT_HELD, EXIT_USAGE, Outcome};
use crate::config::{Config, Flow};
use crate::connect::{ConnectError, ConnectedFlow, Host};
use crate::engine::{
    self, Connected, EngineError, FlowSpec, LeaseSettings, Mode, Outcome as RunOutcome, PlanFile,
    RunOptions,
};
use crate::fleet::{FleetConfig, FleetWorker, Ran, TenantRun, TenantRunner};
use crate::store::{Store, Trigger};

/// A report for people; coloured when stdout is a terminal and `NO_COLOR`
/// is not set.
fn human(report: &engine::RunReport) -> String {
    use std::io::IsTerminal;
    if std::io::stdout().is_terminal() && std::env::var_os("NO_COLOR").is_none() {
        render::human_colored(report)
    } else {
        render::human(report)
    }
}

/// Loads the config or fails with exit code 2.
fn load(path: &Path) -> Result<Config, Outcome> {
    Config::load(path).map_err(|e| Outcome::failed(EXIT_USAGE, e.to_string()))
}

/// Today in the tenant's time zone. `MUSTER_TODAY=YYYY-MM-DD` overrides it,
/// for reproducible tests and demos.
pub fn today(config: &Config) -> Result<Date, String> {
    if let Ok(text) = std::env::var("MUSTER_TODAY") {
        return Date::parse(text.trim())
            .map_err(|e| format!("MUSTER_TODAY={text:?} is not a date (YYYY-MM-DD): {e}"));
    }
    let now = jiff::Timestamp::now().to_zoned(config.tenant.timezone.clone());
    Date::from_ymd(
        i32::from(now.year()),
        u32::try_from(now.month()).unwrap_or(1),
        u32::try_from(now.day()).unwrap_or(1),
    )
    .map_err(|e| format!("today's date in {}: {e}", config.tenant.timezone_name))
}

/// The flows a command applies to: the one named, or all of them.
fn flows<'c>(config: &'c Config, name: Option<&str>) -> Result<Vec<&'c Flow>, Outcome> {
    match name {
        Some(n) => config
            .flow(n)
            .map(|f| vec![f])
            .map_err(|e| Outcome::failed(EXIT_USAGE, e)),
        None if config.flows.is_empty() => Err(Outcome::failed(
            EXIT_USAGE,
            format!("{} defines no [flows.NAME] section", config.path.display()),
        )),
        None => Ok(config.flows.values().collect()),
    }
}

/// The state store `tenant.state` names: a SQLite file or a PostgreSQL
/// database (its password loaded from its secret here, never printed).
fn open_store(config: &Config) -> Result<Store, Outcome> {
    let location = config
        .tenant
        .location()
        .map_err(|e| Outcome::failed(EXIT_FAILED, e.to_string()))?;
    Store::open_location(&location).map_err(|e| Outcome::failed(EXIT_FAILED, e.to_string()))
}

/// [`open_store`] for `serve`'s runner, whose errors are text.
fn open_state(config: &Config) -> Result<Store, String> {
    let location = config.tenant.location().map_err(|e| e.to_string())?;
    Store::open_location(&location).map_err(|e| e.to_string())
}

/// The plugin host and the state store a run needs.
fn host_and_store(config: &Config) -> Result<(Host, Store), Outcome> {
    let host = Host::new(config).map_err(|e| Outcome::failed(EXIT_FAILED, e.to_string()))?;
    Ok((host, open_store(config)?))
}

/// Why a flow did not run, with the exit code it means.
#[derive(Debug)]
pub struct RunFailure {
    /// [`EXIT_USAGE`] for a flow that does not fit its target, [`EXIT_BUSY`]
    /// when another live run holds the flow's lease, else [`EXIT_FAILED`].
    pub code: u8,
    pub message: String,
}

impl From<ConnectError> for RunFailure {
    fn from(e: ConnectError) -> RunFailure {
        let code = match e {
            ConnectError::Flow(_) => EXIT_USAGE,
            _ => EXIT_FAILED,
        };
        RunFailure {
            code,
            message: e.to_string(),
        }
    }
}

impl From<EngineError> for RunFailure {
    fn from(e: EngineError) -> RunFailure {
        let code = match e {
            EngineError::Busy { .. } => EXIT_BUSY,
            EngineError::Undo(engine::UndoError::StillRunning { .. }) => EXIT_BUSY,
            EngineError::Undo(_) => EXIT_USAGE,
            _ => EXIT_FAILED,
        };
        RunFailure {
            code,
            message: e.to_string(),
        }
    }
}

/// The lease settings of a run: `MUSTER_LEASE_TTL`, and `--wait SECONDS`.
fn lease(wait: u64) -> Result<LeaseSettings, Outcome> {
    LeaseSettings::from_env(std::time::Duration::from_secs(wait))
        .map_err(|e| Outcome::failed(EXIT_USAGE, e.to_string()))
}

/// Connects the flow's two plugins (checking the flow against what its
/// target declares) and runs it once.
pub fn run_flow(
    config: &Config,
    host: &Host,
    store: &mut Store,
    flow: &Flow,
    mode: Mode,
    options: &RunOptions,
    lease: &LeaseSettings,
) -> Result<engine::RunReport, RunFailure> {
    let ConnectedFlow {
        mut source,
        mut target,
        policy,
    } = host.connect_flow(config, flow)?;
    let progress = Progress::new(&flow.name);
    engine::run_leased(
        store,
        &FlowSpec::of(flow, policy),
        Connected {
            source: &mut source,
            target: &mut target,
        },
        mode,
        options,
        &progress,
        lease,
    )
    .map_err(RunFailure::from)
}

/// Progress on stderr for long reads and applies: a spinner naming the
/// stage, then a bar over the calls to make. indicatif draws nothing when
/// stderr is not a terminal (cron, CI, pipes).
struct Progress {
    bar: indicatif::ProgressBar,
    flow: String,
}

impl Progress {
    fn new(flow: &str) -> Progress {
        let bar = indicatif::ProgressBar::new_spinner();
        bar.enable_steady_tick(std::time::Duration::from_millis(120));
        Progress {
            bar,
            flow: flow.to_owned(),
        }
    }
}

impl engine::Observer for Progress {
    fn stage(&self, what: &str) {
        self.bar.set_message(format!("{}: {what}", self.flow));
    }

    fn apply_started(&self, calls: u64) {
        self.bar.set_length(calls);
        self.bar.set_position(0);
        if let Ok(style) =
            indicatif::ProgressStyle::with_template("{msg} [{bar:30}] {pos}/{len} ({eta} left)")
        {
            self.bar.set_style(style.progress_chars("=> "));
        }
    }

    fn applied_one(&self) {
        self.bar.inc(1);
    }

    fn finished(&self) {
        self.bar.finish_and_clear();
    }
}

fn options(config: &Config, trigger: Trigger, only: Option<String>) -> Result<RunOptions, Outcome> {
    Ok(RunOptions {
        trigger: if only.is_some() {
            Trigger::Single
        } else {
            trigger
        },
        only,
        today: today(config).map_err(|e| Outcome::failed(EXIT_USAGE, e))?,
        approver: std::env::var("USER").unwrap_or_else(|_| "cli".into()),
    })
}

/// `muster check`
pub fn check(path: &Path, only: Option<&str>) -> Outcome {
    let config = match load(path) {
        Ok(c) => c,
        Err(o) => return o,
    };
    let host = match Host::new(&config) {
        Ok(h) => h,
        Err(e) => return Outcome::failed(EXIT_FAILED, e.to_string()),
    };
    let mut out = String::new();
    let mut failed = 0;
    let connections: Vec<_> = match only {
        Some(name) => match config.connection(name) {
            Ok(c) => vec![c],
            Err(e) => return Outcome::failed(EXIT_USAGE, e),
        },
        None => config.connections.values().collect(),
    };
    for conn in connections {
        let result = host
            .connect(conn)
            .map_err(|e| e.to_string())
            .and_then(|mut p| {
                p.check()
                    .map_err(|e| format!("connection `{}`: {e}", conn.name))
            });
        match result {
            Ok(()) => out.push_str(&format!("ok      {}: plugin {}\n", conn.name, conn.plugin)),
            Err(e) => {
                failed += 1;
                out.push_str(&format!("FAILED  {}: {e}\n", conn.name));
            }
        }
        out.push_str(&format!(
            "        grant: {}\n",
            host.grant_summary(&conn.name)
        ));
        if let Some(warning) = conn.secret.as_ref().and_then(|s| s.permission_warning()) {
            out.push_str(&format!("        warning: {warning}\n"));
        }
    }
    if only.is_none() {
        for flow in config.flows.values() {
            let warning = flow
                .webhook
                .as_ref()
                .and_then(|w| w.secret.permission_warning());
            if let Some(warning) = warning {
                out.push_str(&format!("warning flow {} webhook: {warning}\n", flow.name));
            }
        }
    }
    if only.is_none()
        && let Some(alerts) = &config.alerts
    {
        let (lines, ok) = crate::alerts::check(alerts);
        out.push_str(&lines);
        failed += usize::from(!ok);
    }
    // Every flow against what its target declares: a field the target
    // cannot store is a configuration error (exit 2), found here rather
    // than on every record of every run.
    let mut misfits = 0;
    if only.is_none() {
        for flow in config.flows.values() {
            match host.flow_policy(&config, flow) {
                Ok(_) => out.push_str(&format!(
                    "ok      flow {}: its fields fit target {}\n",
                    flow.name, flow.target
                )),
                Err(e) => {
                    match e {
                        ConnectError::Flow(_) => misfits += 1,
                        _ => failed += 1,
                    }
                    out.push_str(&format!("FAILED  flow {}: {e}\n", flow.name));
                }
            }
        }
    }
    let outcome = Outcome::ok(out);
    if misfits > 0 {
        outcome.with_error(
            EXIT_USAGE,
            format!("{misfits} flow(s) do not fit their target"),
        )
    } else if failed > 0 {
        outcome.with_error(
            EXIT_FAILED,
            format!("{failed} connection(s) or [alerts] failed the check"),
        )
    } else {
        outcome
    }
}

/// How `muster plan` reports.
#[derive(Debug, Clone, Copy)]
pub struct PlanOutput<'a> {
    /// JSON (docs/plan-json.md) instead of the human form.
    pub json: bool,
    /// Also write the plan file here (one flow only).
    pub out_file: Option<&'a Path>,
    /// Exit 3 when a plan would be held, 4 when one has changes.
    pub detailed_exitcode: bool,
}

/// `muster plan`
pub fn plan(
    path: &Path,
    flow: Option<&str>,
    output: PlanOutput<'_>,
    only: Option<String>,
) -> Outcome {
    let PlanOutput {
        json,
        out_file,
        detailed_exitcode,
    } = output;
    let config = match load(path) {
        Ok(c) => c,
        Err(o) => return o,
    };
    let (flows, options) = match (
        flows(&config, flow),
        options(&config, Trigger::Manual, only),
    ) {
        (Ok(f), Ok(o)) => (f, o),
        (Err(o), _) | (_, Err(o)) => return o,
    };
    if out_file.is_some() && flows.len() > 1 {
        return Outcome::failed(
            EXIT_USAGE,
            "--out writes one flow's plan: name it with --flow".into(),
        );
    }
    let (host, mut store) = match host_and_store(&config) {
        Ok(hs) => hs,
        Err(o) => return o,
    };
    let mut stdout = String::new();
    let mut files = Vec::new();
    let lease = LeaseSettings::default(); // `plan` takes no lease
    let (mut held, mut changes) = (false, false);
    for flow in flows {
        match run_flow(
            &config,
            &host,
            &mut store,
            flow,
            Mode::Plan,
            &options,
            &lease,
        ) {
            Ok(report) => {
                // A plan is never applied, so "held" is: over a guard threshold.
                held |= !report.breaches.is_empty();
                changes |= report.steps.iter().any(|s| s.kind.changes_target());
                let file = report.plan_file();
                if json {
                    stdout.push_str(&render::json(&file));
                } else {
                    stdout.push_str(&human(&report));
                }
                files.push(file);
            }
            Err(e) => return Outcome::ok(stdout).with_error(e.code, e.message),
        }
    }
    if let (Some(out), Some(file)) = (out_file, files.first()) {
        if let Err(e) = std::fs::write(out, render::json(file)) {
            return Outcome::ok(stdout)
                .with_error(EXIT_FAILED, format!("cannot write {}: {e}", out.display()));
        }
        if !json {
            stdout.push_str(&format!(
                "\nPlan written to {}; apply it with `muster apply {}`.\n",
                out.display(),
                out.display()
            ));
        }
    }
    let outcome = Outcome::ok(stdout);
    match (detailed_exitcode, held, changes) {
        (true, true, _) => Outcome {
            code: EXIT_HELD,
            ..outcome
        },
        (true, false, true) => Outcome {
            code: EXIT_CHANGES,
            ..outcome
        },
        _ => outcome,
    }
}

/// `muster apply plan.json`
pub fn apply(path: &Path, plan_path: &Path, approve_held: bool, json: bool, wait: u64) -> Outcome {
    let (config, lease) = match (load(path), lease(wait)) {
        (Ok(c), Ok(l)) => (c, l),
        (Err(o), _) | (_, Err(o)) => return o,
    };
    let text = match std::fs::read_to_string(plan_path) {
        Ok(t) => t,
        Err(e) => {
            return Outcome::failed(
                EXIT_USAGE,
                format!("cannot read plan file {}: {e}", plan_path.display()),
            );
        }
    };
    let file: PlanFile = match serde_json::from_str(&text) {
        Ok(f) => f,
        Err(e) => {
            return Outcome::failed(
                EXIT_USAGE,
                format!(
                    "{} is not a muster plan file: {e} (write one with `muster plan --out`)",
                    plan_path.display()
                ),
            );
        }
    };
    if file.format != engine::PLAN_FORMAT {
        return Outcome::failed(
            EXIT_USAGE,
            format!(
                "{}: plan format {:?} is not supported by this muster (expects {:?})",
                plan_path.display(),
                file.format,
                engine::PLAN_FORMAT
            ),
        );
    }
    let flow = match config.flow(&file.flow) {
        Ok(f) => f,
        Err(e) => return Outcome::failed(EXIT_USAGE, e),
    };
    let options = match options(&config, Trigger::Manual, None) {
        Ok(o) => o,
        Err(o) => return o,
    };
    let (host, mut store) = match host_and_store(&config) {
        Ok(hs) => hs,
        Err(o) => return o,
    };
    let mode = Mode::ApplyFile {
        plan: file,
        file: plan_path.display().to_string(),
        approve_held,
    };
    finish_runs(
        vec![run_flow(
            &config, &host, &mut store, flow, mode, &options, &lease,
        )],
        json,
    )
}

/// `muster sync`
pub fn sync(
    path: &Path,
    flow: Option<&str>,
    only: Option<String>,
    approve_held: bool,
    json: bool,
    wait: u64,
) -> Outcome {
    let (config, lease) = match (load(path), lease(wait)) {
        (Ok(c), Ok(l)) => (c, l),
        (Err(o), _) | (_, Err(o)) => return o,
    };
    let (flows, options) = match (
        flows(&config, flow),
        options(&config, Trigger::Manual, only),
    ) {
        (Ok(f), Ok(o)) => (f, o),
        (Err(o), _) | (_, Err(o)) => return o,
    };
    let (host, mut store) = match host_and_store(&config) {
        Ok(hs) => hs,
        Err(o) => return o,
    };
    let results = flows
        .into_iter()
        .map(|flow| {
            run_flow(
                &config,
                &host,
                &mut store,
                flow,
                Mode::Sync { approve_held },
                &options,
                &lease,
            )
        })
        .collect();
    finish_runs(results, json)
}

/// Renders run results; the exit code is the worst of them
/// (a configuration error > failed > busy > held).
fn finish_runs(results: Vec<Result<engine::RunReport, RunFailure>>, json: bool) -> Outcome {
    let mut stdout = String::new();
    let mut errors = Vec::new();
    let mut code = EXIT_FAILED;
    let mut busy = Vec::new();
    let mut held = false;
    for result in results {
        match result {
            Ok(report) => {
                if json {
                    stdout.push_str(&render::run_json(&report));
                } else {
                    stdout.push_str(&human(&report));
                }
                held |= report.outcome == RunOutcome::Held;
                let failed = report.failed();
                if failed > 0 {
                    errors.push(format!(
                        "flow `{}`: {failed} action(s) failed; the next run retries them",
                        report.flow
                    ));
                }
                if let Some(why) = &report.applied.aborted {
                    errors.push(format!("flow `{}`: {why}", report.flow));
                }
            }
            Err(e) if e.code == EXIT_BUSY => busy.push(e.message),
            Err(e) => {
                code = code.max(e.code);
                errors.push(e.message);
            }
        }
    }
    let outcome = Outcome::ok(stdout);
    if !errors.is_empty() {
        errors.append(&mut busy);
        outcome.with_error(code, errors.join("\nerror: "))
    } else if !busy.is_empty() {
        outcome.with_error(EXIT_BUSY, busy.join("\nerror: "))
    } else if held {
        outcome.with_error(
            EXIT_HELD,
            "the guard held the plan; review it, then run `muster sync --approve-held`".into(),
        )
    } else {
        outcome
    }
}

/// `muster history`
pub fn history(path: &Path, flow: Option<&str>, limit: usize, json: bool) -> Outcome {
    let config = match load(path) {
        Ok(c) => c,
        Err(o) => return o,
    };
    let flows = match flows(&config, flow) {
        Ok(f) => f,
        Err(o) => return o,
    };
    let store = match open_store(&config) {
        Ok(s) => s,
        Err(o) => return o,
    };
    let mut runs = Vec::new();
    for flow in flows {
        match store.history(&flow.name, limit) {
            Ok(mut r) => runs.append(&mut r),
            // A flow that never ran is not in the store yet.
            Err(crate::store::StoreError::UnknownFlow(_)) => {}
            Err(e) => return Outcome::failed(EXIT_FAILED, e.to_string()),
        }
    }
    if json {
        Outcome::ok(render::history_json(&runs))
    } else {
        Outcome::ok(render::history(&runs))
    }
}

/// The engine as `serve` runs it: one store connection and one pair of
/// plugin instances per run, so a failing run leaves nothing behind.
struct EngineRunner {
    config: Config,
    host: Host,
    /// No waiting: a busy flow's tick is skipped (and a webhook event stays
    /// pending for the next retry).
    lease: LeaseSettings,
}

impl EngineRunner {
    /// One sync of `flow`; `approver` set: approving its held plan, the way
    /// `muster sync --approve-held` does, audited under that name.
    fn sync(
        &self,
        flow: &str,
        trigger: Trigger,
        only: Option<&str>,
        approver: Option<&str>,
    ) -> Result<crate::serve::RunReport, String> {
        match self.attempt(flow, trigger, only, approver) {
            Ran::Report(r) => Ok(r),
            Ran::Busy(why) => Err(format!("skipped: {why}")),
            Ran::Failed(why) => Err(why),
        }
    }

    /// [`EngineRunner::sync`], telling a busy flow (another live run holds
    /// its lease) from a failure: a fleet worker retries the first.
    fn attempt(
        &self,
        flow: &str,
        trigger: Trigger,
        only: Option<&str>,
        approver: Option<&str>,
    ) -> Ran {
        match self.sync_once(flow, trigger, only, approver) {
            Ok(r) => Ran::Report(r),
            Err((true, why)) => Ran::Busy(why),
            Err((false, why)) => Ran::Failed(why),
        }
    }

    /// One run; `Err((busy, message))`.
    fn sync_once(
        &self,
        flow: &str,
        trigger: Trigger,
        only: Option<&str>,
        approver: Option<&str>,
    ) -> Result<crate::serve::RunReport, (bool, String)> {
        let failed = |e: String| (false, e);
        let flow = self.config.flow(flow).map_err(failed)?;
        let mut store = open_state(&self.config).map_err(failed)?;
        let options = RunOptions {
            trigger,
            only: only.map(str::to_owned),
            today: today(&self.config).map_err(failed)?,
            approver: approver.unwrap_or("serve").into(),
        };
        let mode = Mode::Sync {
            approve_held: approver.is_some(),
        };
        let report = run_flow(
            &self.config,
            &self.host,
            &mut store,
            flow,
            mode,
            &options,
            &self.lease,
        )
        .map_err(|f| {
            if f.code == EXIT_BUSY {
                return (true, f.message);
            }
            // Nobody prints a served run's error: log it, once.
            tracing::error!(tenant = %self.config.tenant.name, flow = %flow.name, "run failed: {}", f.message);
            (false, f.message)
        })?;
        let run = report.run.ok_or_else(|| {
            (
                false,
                format!("flow `{}`: the run recorded no id", flow.name),
            )
        })?;
        let status = match report.outcome {
            RunOutcome::Held => crate::store::RunStatus::Held,
            _ => crate::store::RunStatus::Done,
        };
        Ok(crate::serve::RunReport {
            run,
            status,
            counts: report.applied.counts.clone(),
        })
    }

    /// [`crate::serve::Runner::undo`]: the undo plan, held for review.
    fn hold_undo(
        &self,
        flow: &str,
        run: crate::store::RunId,
    ) -> Result<crate::serve::RunReport, String> {
        self.undo_run(flow, run, engine::UndoMode::Hold, "serve")
    }

    /// An admin's approval of a held undo plan: applied if the data has not
    /// changed since (`muster undo RUN --yes --approve-held`).
    fn apply_undo(
        &self,
        flow: &str,
        run: crate::store::RunId,
        who: &str,
    ) -> Result<crate::serve::RunReport, String> {
        let mode = engine::UndoMode::Apply { approve_held: true };
        self.undo_run(flow, run, mode, who)
    }

    /// Plans the undo of `run` and holds or applies it as `mode` says.
    fn undo_run(
        &self,
        flow: &str,
        run: crate::store::RunId,
        mode: engine::UndoMode,
        approver: &str,
    ) -> Result<crate::serve::RunReport, String> {
        let flow = self.config.flow(flow)?;
        let mut store = open_state(&self.config)?;
        let request = engine::UndoRequest {
            run,
            mode,
            today: today(&self.config)?,
            approver: approver.into(),
        };
        let report = undo_flow_run(
            &self.config,
            &self.host,
            &mut store,
            flow,
            &request,
            &self.lease,
        )
        .map_err(|f| f.message)?;
        let run = report
            .run
            .ok_or_else(|| format!("flow `{}`: the undo recorded no run", flow.name))?;
        Ok(match report.outcome {
            RunOutcome::Held => crate::serve::RunReport {
                run,
                status: crate::store::RunStatus::Held,
                counts: report.planned_counts(),
            },
            _ => crate::serve::RunReport {
                run,
                status: crate::store::RunStatus::Done,
                counts: report.applied.counts.clone(),
            },
        })
    }
}

impl crate::serve::Runner for EngineRunner {
    fn run(
        &self,
        flow: &str,
        trigger: Trigger,
        only: Option<&str>,
    ) -> Result<crate::serve::RunReport, String> {
        self.sync(flow, trigger, only, None)
    }

    fn rate_limit_waits(&self) -> Vec<(String, std::time::Duration)> {
        self.host
            .outbound()
            .rate_limit_waits()
            .into_iter()
            .collect()
    }

    fn undo(
        &self,
        flow: &str,
        run: crate::store::RunId,
    ) -> Result<crate::serve::RunReport, String> {
        self.hold_undo(flow, run)
    }

    /// Refuses unless the pending plan still has `digest`; the engine then
    /// applies it only if the fresh plan is that very plan (same inputs,
    /// same steps) and records `who` as its approver.
    fn approve(
        &self,
        flow: &str,
        digest: &str,
        who: &str,
    ) -> Result<crate::serve::RunReport, String> {
        let store = open_state(&self.config)?;
        let held = store.held_plan(flow).map_err(|e| e.to_string())?;
        // A held undo plan (the status page's Undo button) is applied as an
        // undo of the run it reverses, not compared with a fresh sync plan.
        let undoes = match &held {
            Some(plan) => {
                store
                    .run_record(plan.run)
                    .map_err(|e| e.to_string())?
                    .undoes
            }
            None => None,
        };
        drop(store);
        match held {
            Some(plan) if plan.snapshot_digest == digest => match undoes {
                Some(undone) => self.apply_undo(flow, undone, who),
                None => self.sync(flow, Trigger::Manual, None, Some(who)),
            },
            Some(plan) => Err(format!(
                "flow `{flow}`: held plan {} is not the plan that was reviewed",
                plan.id
            )),
            None => Err(format!("flow `{flow}`: no plan is held any more")),
        }
    }
}

/// `muster serve`: schedules, webhooks, `/healthz` and the status page,
/// until the process is stopped.
pub fn serve(path: &Path, listen: &str) -> Outcome {
    let config = match load(path) {
        Ok(c) => c,
        Err(o) => return o,
    };
    let serve_config = match crate::serve::ServeConfig::from_config(&config) {
        Ok(c) => c,
        Err(e) => return Outcome::failed(EXIT_USAGE, e.to_string()),
    };
    let host = match Host::new(&config) {
        Ok(h) => h,
        Err(e) => return Outcome::failed(EXIT_FAILED, e.to_string()),
    };
    let lease = match lease(0) {
        Ok(l) => l,
        Err(o) => return o,
    };
    let runner = std::sync::Arc::new(EngineRunner {
        config,
        host,
        lease,
    });
    match crate::serve::Server::start(
        listen,
        serve_config,
        runner,
        std::sync::Arc::new(crate::schedule::SystemClock),
    ) {
        Ok(server) => {
            eprintln!(
                "muster serve: listening on http://{} (status page /, /healthz, webhooks /webhooks/FLOW)",
                server.local_addr()
            );
            server.run_forever();
            Outcome::ok(String::new())
        }
        Err(e) => Outcome::failed(EXIT_FAILED, e.to_string()),
    }
}

/// The engine as a fleet worker runs it: [`EngineRunner`]'s run for the
/// tenant's config, with a plugin host made for the run (each tenant's
/// connections get their own grants and rate limits) from the shared
/// compiled-plugin cache, taking from the tenant's rate-limit budget on the
/// worker's budget connections (`fleet/budget.rs`).
struct FleetRunner {
    lease: LeaseSettings,
    /// The compiled-plugin cache of tenants that name none.
    cache: std::path::PathBuf,
}

impl TenantRunner for FleetRunner {
    fn run(&self, run: TenantRun<'_>) -> Ran {
        let mut config = run.config.clone();
        if config.tenant.cache.is_none() {
            config.tenant.cache = Some(self.cache.clone());
        }
        let host = match Host::with_shared_budget(&config, run.budget) {
            Ok(h) => h,
            Err(e) => return Ran::Failed(e.to_string()),
        };
        let runner = EngineRunner {
            config,
            host,
            lease: self.lease,
        };
        runner.attempt(run.flow, run.trigger, run.only, None)
    }
}

/// What `muster serve --fleet` was asked.
#[derive(Debug, Clone)]
pub struct FleetArgs {
    pub url: String,
    pub tenants: std::path::PathBuf,
    pub password: Option<crate::config::SecretSource>,
    pub jobs: usize,
    pub cache: std::path::PathBuf,
}

/// `muster serve --fleet URL --tenants DIR`: a fleet worker (docs/fleet.md).
pub fn serve_fleet(args: FleetArgs, listen: &str) -> Outcome {
    let lease = match lease(0) {
        Ok(l) => l,
        Err(o) => return o,
    };
    let mut cfg = FleetConfig::new(args.url, args.tenants, lease.ttl);
    cfg.password = args.password;
    cfg.jobs = args.jobs;
    let runner = std::sync::Arc::new(FleetRunner {
        lease,
        cache: args.cache,
    });
    match FleetWorker::start(listen, cfg, runner) {
        Ok(worker) => {
            eprintln!(
                "muster serve --fleet: worker {} listening on http://{} (status page /, /healthz, webhooks /tenants/TENANT/webhooks/FLOW)",
                worker.id(),
                worker.local_addr()
            );
            for (tenant, problem) in worker.problems() {
                eprintln!("muster serve --fleet: tenant `{tenant}` is not served: {problem}");
            }
            worker.run_forever();
            Outcome::ok(String::new())
        }
        Err(e) => Outcome::failed(EXIT_FAILED, e.to_string()),
    }
}

/// What `muster undo` was asked.
#[derive(Debug, Clone, Copy)]
pub struct UndoArgs<'a> {
    pub run: i64,
    /// Checked against the run's own flow.
    pub flow: Option<&'a str>,
    /// `--yes`: apply; otherwise only show the plan.
    pub apply: bool,
    pub approve_held: bool,
    /// Also write the plan file here.
    pub out: Option<&'a Path>,
    pub json: bool,
    pub wait: u64,
}

/// `muster undo RUN`
pub fn undo(path: &Path, args: UndoArgs<'_>) -> Outcome {
    let (config, lease) = match (load(path), lease(args.wait)) {
        (Ok(c), Ok(l)) => (c, l),
        (Err(o), _) | (_, Err(o)) => return o,
    };
    let (host, mut store) = match host_and_store(&config) {
        Ok(hs) => hs,
        Err(o) => return o,
    };
    let today = match today(&config) {
        Ok(t) => t,
        Err(e) => return Outcome::failed(EXIT_USAGE, e),
    };
    let run = crate::store::RunId(args.run);
    let flow = match undo_flow(&config, &store, run, args.flow) {
        Ok(f) => f,
        Err(o) => return o,
    };
    let request = engine::UndoRequest {
        run,
        mode: match (args.apply, args.approve_held) {
            (false, _) => engine::UndoMode::Plan,
            (true, approve_held) => engine::UndoMode::Apply { approve_held },
        },
        today,
        approver: std::env::var("USER").unwrap_or_else(|_| "cli".into()),
    };
    let report = match undo_flow_run(&config, &host, &mut store, flow, &request, &lease) {
        Ok(r) => r,
        Err(e) => return Outcome::failed(e.code, e.message),
    };
    let mut stdout = if args.json {
        String::new()
    } else {
        format!("Undo of run {run}:\n")
    };
    if let Some(out) = args.out
        && let Err(e) = std::fs::write(out, render::json(&report.plan_file()))
    {
        return Outcome::ok(stdout)
            .with_error(EXIT_FAILED, format!("cannot write {}: {e}", out.display()));
    }
    if !args.apply {
        if args.json {
            stdout.push_str(&render::json(&report.plan_file()));
        } else {
            stdout.push_str(&human(&report));
            stdout.push_str(&format!(
                "\nNothing was changed; apply it with `muster undo {run} --yes`.\n"
            ));
        }
        return match report.breaches.is_empty() {
            true => Outcome::ok(stdout),
            false => Outcome {
                code: EXIT_HELD,
                ..Outcome::ok(stdout)
            },
        };
    }
    let outcome = finish_runs(vec![Ok(report)], args.json);
    Outcome {
        stdout: stdout + &outcome.stdout,
        ..outcome
    }
}

/// The flow of the run to undo: the run's own, which `--flow`, when
/// given, must name.
fn undo_flow<'c>(
    config: &'c Config,
    store: &Store,
    run: crate::store::RunId,
    named: Option<&str>,
) -> Result<&'c Flow, Outcome> {
    let refused = |e: EngineError| {
        let f = RunFailure::from(e);
        Outcome::failed(f.code, f.message)
    };
    let record = match store.run_record(run) {
        Ok(r) => r,
        Err(crate::store::StoreError::UnknownRun(_)) => {
            return Err(refused(engine::UndoError::UnknownRun(run).into()));
        }
        Err(e) => return Err(refused(e.into())),
    };
    if let Some(name) = named
        && name != record.flow
    {
        return Err(refused(
            engine::UndoError::OtherFlow {
                run,
                flow: name.into(),
                found: record.flow,
            }
            .into(),
        ));
    }
    config
        .flow(&record.flow)
        .map_err(|e| Outcome::failed(EXIT_USAGE, e))
}

/// Connects the flow (its target checked against the flow) and undoes.
fn undo_flow_run(
    config: &Config,
    host: &Host,
    store: &mut Store,
    flow: &Flow,
    request: &engine::UndoRequest,
    lease: &LeaseSettings,
) -> Result<engine::RunReport, RunFailure> {
    let ConnectedFlow {
        mut target, policy, ..
    } = host.connect_flow(config, flow)?;
    let progress = Progress::new(&flow.name);
    engine::undo::undo(
        store,
        &FlowSpec::of(flow, policy),
        &mut target,
        request,
        &progress,
        lease,
    )
    .map_err(RunFailure::from)
}
