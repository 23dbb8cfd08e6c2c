//! The fleet status page (`GET /` of any worker): every tenant with its
//! last run, next tick and problem; the claims held now (who, since,
//! until); the workers and their last heartbeat. Plain HTML like `serve`'s
//! pages, every value escaped (tenant names, errors and worker ids come
//! from files, vendors and hosts). Times are UTC, from the database
//! server's clock.

use std::collections::HashMap;
use std::fmt::Write as _;

use postgres::Client;

use super::schema::NOW_MS;
use super::{Fleet, lock};
use crate::serve::page::{escape, page};
use crate::store::Context;

/// A worker is shown dead after this many TTLs without a heartbeat.
const DEAD_AFTER_TTLS: i64 = 2;

struct Snapshot {
    now: i64,
    workers: Vec<WorkerRow>,
    claims: Vec<ClaimRow>,
    /// Each tenant's last finished work.
    last: HashMap<String, LastRow>,
}

/// A `muster_fleet.workers` row.
struct WorkerRow {
    id: String,
    host: String,
    pid: i64,
    listen: String,
    started: i64,
    heartbeat: i64,
    stopped: Option<i64>,
}

/// A claim held now (a `running` ledger row).
struct ClaimRow {
    tenant: String,
    flow: String,
    kind: String,
    key: i64,
    by: String,
    since: i64,
    until: i64,
    attempts: i32,
}

/// A tenant's last finished ledger row.
struct LastRow {
    flow: String,
    state: String,
    run: Option<i64>,
    note: Option<String>,
    at: i64,
}

fn read(c: &mut Client) -> Result<Snapshot, postgres::Error> {
    let now: i64 = c.query_one(&format!("SELECT {NOW_MS}"), &[])?.try_get(0)?;
    let workers = c
        .query(
            "SELECT id, host, pid, listen, started_ms, heartbeat_ms, stopped_ms
             FROM muster_fleet.workers ORDER BY started_ms DESC LIMIT 100",
            &[],
        )?
        .iter()
        .map(|r| {
            Ok(WorkerRow {
                id: r.try_get(0)?,
                host: r.try_get(1)?,
                pid: r.try_get(2)?,
                listen: r.try_get(3)?,
                started: r.try_get(4)?,
                heartbeat: r.try_get(5)?,
                stopped: r.try_get(6)?,
            })
        })
        .collect::<Result<_, postgres::Error>>()?;
    let claims = c
        .query(
            "SELECT tenant, flow, kind, key, claimed_by, claimed_ms, expires_ms, attempts
             FROM muster_fleet.work WHERE state = 'running' ORDER BY claimed_ms",
            &[],
        )?
        .iter()
        .map(|r| {
            Ok(ClaimRow {
                tenant: r.try_get(0)?,
                flow: r.try_get(1)?,
                kind: r.try_get(2)?,
                key: r.try_get(3)?,
                by: r.try_get(4)?,
                since: r.try_get(5)?,
                until: r.try_get(6)?,
                attempts: r.try_get(7)?,
            })
        })
        .collect::<Result<_, postgres::Error>>()?;
    let last = c
        .query(
            "SELECT DISTINCT ON (tenant) tenant, flow, state, run_id, note, finished_ms
             FROM muster_fleet.work WHERE finished_ms IS NOT NULL
             ORDER BY tenant, finished_ms DESC",
            &[],
        )?
        .iter()
        .map(|r| {
            let last = LastRow {
                flow: r.try_get(1)?,
                state: r.try_get(2)?,
                run: r.try_get(3)?,
                note: r.try_get(4)?,
                at: r.try_get(5)?,
            };
            Ok((r.try_get(0)?, last))
        })
        .collect::<Result<_, postgres::Error>>()?;
    Ok(Snapshot {
        now,
        workers,
        claims,
        last,
    })
}

fn utc(ms: i64) -> String {
    crate::store::time::format_unix_millis(ms)
}

/// The whole page; a database error is shown on it instead of the tables.
pub(super) fn render(fleet: &Fleet) -> String {
    let snap = fleet.with_db(&mut lock(&fleet.http_db), |c| {
        read(c).context(|| "reading the fleet's status".into())
    });
    let mut body = format!(
        "<p>Worker <code>{}</code> · {} tenants in <code>{}</code> · times UTC (database clock)</p>",
        escape(&fleet.worker),
        fleet.tenants.len(),
        escape(&fleet.cfg.tenants.display().to_string()),
    );
    match snap {
        Ok(s) => {
            workers(&mut body, &s, fleet);
            claims(&mut body, &s);
            tenants(&mut body, &s, fleet);
        }
        Err(e) => {
            let _ = write!(body, "<p class=\"failed\">{}</p>", escape(&e.to_string()));
        }
    }
    page("fleet", "Fleet", &body)
}

fn workers(body: &mut String, s: &Snapshot, fleet: &Fleet) {
    let dead_ms = super::ttl_ms(fleet.cfg.ttl) * DEAD_AFTER_TTLS;
    body.push_str("<h2>Workers</h2><table><tr><th>worker</th><th>host</th><th>pid</th><th>listens</th><th>started</th><th>last heartbeat</th><th>state</th></tr>");
    for w in &s.workers {
        let state = match w.stopped {
            Some(_) => "stopped",
            None if s.now - w.heartbeat > dead_ms => "dead",
            None => "alive",
        };
        let _ = write!(
            body,
            "<tr><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td class=\"{}\">{state}</td></tr>",
            escape(&w.id),
            escape(&w.host),
            w.pid,
            escape(&w.listen),
            utc(w.started),
            utc(w.heartbeat),
            if state == "alive" { "done" } else { "failed" },
        );
    }
    body.push_str("</table>");
}

fn claims(body: &mut String, s: &Snapshot) {
    let _ = write!(
        body,
        "<h2>Claims ({})</h2><table><tr><th>tenant</th><th>flow</th><th>work</th><th>held by</th><th>since</th><th>until</th><th>attempt</th></tr>",
        s.claims.len()
    );
    for c in &s.claims {
        let what = if c.kind == "schedule" {
            format!("tick {}", utc(c.key))
        } else {
            format!("webhook event {}", c.key)
        };
        let expired = if c.until <= s.now { " (expired)" } else { "" };
        let _ = write!(
            body,
            "<tr><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}{expired}</td><td>{}</td></tr>",
            escape(&c.tenant),
            escape(&c.flow),
            escape(&what),
            escape(&c.by),
            utc(c.since),
            utc(c.until),
            c.attempts,
        );
    }
    body.push_str("</table>");
}

fn tenants(body: &mut String, s: &Snapshot, fleet: &Fleet) {
    body.push_str("<h2>Tenants</h2><table><tr><th>tenant</th><th>file</th><th>last run</th><th>next tick</th><th>problem</th></tr>");
    for t in &fleet.tenants {
        let last = s.last.get(&t.id).map_or_else(String::new, |l| {
            format!(
                "{} <span class=\"{}\">{}</span> {}{} <small>{}</small>",
                escape(&l.flow),
                escape(&l.state),
                escape(&l.state),
                l.run.map(|r| format!("run {r} ")).unwrap_or_default(),
                utc(l.at),
                escape(l.note.as_deref().unwrap_or("")),
            )
        });
        let (next, problem) = match &t.ready {
            Ok((config, flows)) => (next_tick(config, flows, s.now), String::new()),
            Err(p) => (String::new(), p.clone()),
        };
        let _ = write!(
            body,
            "<tr><td>{}</td><td>{}</td><td>{last}</td><td>{}</td><td class=\"failed\">{}</td></tr>",
            escape(&t.id),
            escape(&t.file.display().to_string()),
            escape(&next),
            escape(&problem),
        );
    }
    body.push_str("</table>");
}

/// The earliest next firing of the tenant's scheduled flows.
fn next_tick(
    config: &crate::config::Config,
    flows: &[crate::serve::ServeFlow],
    now: i64,
) -> String {
    let Ok(now_ts) = jiff::Timestamp::from_millisecond(now) else {
        return String::new();
    };
    flows
        .iter()
        .filter_map(|f| {
            let s = f.schedule?;
            Some((s.next_after(now_ts, &config.tenant.timezone), &f.name))
        })
        .min()
        .map(|(at, flow)| format!("{} ({flow})", utc(at.as_millisecond())))
        .unwrap_or_default()
}
