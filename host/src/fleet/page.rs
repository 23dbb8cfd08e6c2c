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
    /// id, host, pid, listen, started, heartbeat, stopped.
    workers: Vec<(String, String, i64, String, i64, i64, Option<i64>)>,
    /// tenant, flow, kind, key, claimed_by, claimed, expires, attempts.
    claims: Vec<(String, String, String, i64, String, i64, i64, i32)>,
    /// tenant → (flow, state, run, note, finished).
    last: HashMap<String, (String, String, Option<i64>, Option<String>, i64)>,
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
            Ok((
                r.try_get(0)?,
                r.try_get(1)?,
                r.try_get(2)?,
                r.try_get(3)?,
                r.try_get(4)?,
                r.try_get(5)?,
                r.try_get(6)?,
            ))
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
            Ok((
                r.try_get(0)?,
                r.try_get(1)?,
                r.try_get(2)?,
                r.try_get(3)?,
                r.try_get(4)?,
                r.try_get(5)?,
                r.try_get(6)?,
                r.try_get(7)?,
            ))
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
            Ok((
                r.try_get(0)?,
                (
                    r.try_get(1)?,
                    r.try_get(2)?,
                    r.try_get(3)?,
                    r.try_get(4)?,
                    r.try_get(5)?,
                ),
            ))
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
    for (id, host, pid, listen, started, beat, stopped) in &s.workers {
        let state = match stopped {
            Some(_) => "stopped",
            None if s.now - beat > dead_ms => "dead",
            None => "alive",
        };
        let _ = write!(
            body,
            "<tr><td>{}</td><td>{}</td><td>{pid}</td><td>{}</td><td>{}</td><td>{}</td><td class=\"{}\">{state}</td></tr>",
            escape(id),
            escape(host),
            escape(listen),
            utc(*started),
            utc(*beat),
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
    for (tenant, flow, kind, key, by, since, until, attempts) in &s.claims {
        let what = if kind == "schedule" {
            format!("tick {}", utc(*key))
        } else {
            format!("webhook event {key}")
        };
        let expired = if *until <= s.now { " (expired)" } else { "" };
        let _ = write!(
            body,
            "<tr><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}{expired}</td><td>{attempts}</td></tr>",
            escape(tenant),
            escape(flow),
            escape(&what),
            escape(by),
            utc(*since),
            utc(*until),
        );
    }
    body.push_str("</table>");
}

fn tenants(body: &mut String, s: &Snapshot, fleet: &Fleet) {
    body.push_str("<h2>Tenants</h2><table><tr><th>tenant</th><th>file</th><th>last run</th><th>next tick</th><th>problem</th></tr>");
    for t in &fleet.tenants {
        let last = s
            .last
            .get(&t.id)
            .map_or_else(String::new, |(flow, state, run, note, at)| {
                format!(
                    "{} <span class=\"{}\">{}</span> {}{} <small>{}</small>",
                    escape(flow),
                    escape(state),
                    escape(state),
                    run.map(|r| format!("run {r} ")).unwrap_or_default(),
                    utc(*at),
                    escape(note.as_deref().unwrap_or("")),
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
