//! Calls in flight: the target's calls of one wave, made by several plugin
//! instances at once.
//!
//! With real network latency one call at a time leaves most of a vendor's
//! rate limit unused (150 ms a round trip is under 7 calls/s; Leapsome
//! allows 30). The applier (`apply.rs`) therefore hands each **wave** — the
//! calls of one journaled batch, all of one phase, whose intents are
//! already committed — to a [`Pool`] of up to the connection's
//! `max_in_flight` instances of the target plugin: the connected one and
//! [siblings](PluginInstance::sibling), each its own wasmtime store, each on
//! its own worker thread for the wave.
//!
//! What keeps the order that matters:
//!
//! - **between waves**: a wave starts once the previous one has settled, and
//!   the core's phases put every action after those it depends on (a create
//!   before the manager or membership that names the account, a group
//!   before its members), so what a call needs exists before it is built;
//! - **inside a wave**: calls about one account or one group form a
//!   [lane](lanes) made by one worker in plan order (a reactivation before
//!   an update of the same account; a removal from a group before the add
//!   that follows it); lanes are independent and run concurrently.
//!
//! What the pool shares: every instance has the same capabilities, so the
//! same outbound client — one rate limiter per vendor origin and one
//! `Retry-After` back-off, which a 429 seen by any instance imposes on all
//! (the outbound client retries the request; a 429 never becomes a failed
//! record or a second create). The pool adds no pacing of its own.
//!
//! What a plugin instance knows: a plugin may keep what it read or wrote
//! (Leapsome resolves a person's team through the teams it read, and
//! changes a team's members from the members it knows). So a sibling
//! reads the target's groups before its first call, and every call that
//! changes a group (creating or renaming it, changing its members) is made
//! by the connected instance, which read them and saw every change since:
//! a wave with such calls is made one call at a time. Those are few (a
//! membership change carries up to the target's `max-members-per-change`).
//!
//! When to stop: before each call a worker checks the run's lease
//! ([`LeaseWatch`], rule 6 of `store/lease.rs`) and whether another worker's
//! instance trapped; either stops every worker, and the calls not made are
//! reported as not attempted, exactly as in a sequential apply.
//!
//! With `max_in_flight = 1` (or a wave of one lane) the calls are made on
//! the caller's thread, one after the other: the sequential apply.

use std::collections::HashMap;
use std::sync::Mutex;
use std::sync::atomic::{AtomicUsize, Ordering};

use crate::runtime::{Applied, Capability, Operation, PluginError, PluginInstance};
use crate::store::LeaseWatch;

/// One call of a wave: the index of the applier's unit it settles, and the
/// operation to send.
pub(crate) struct Job<'o> {
    pub unit: usize,
    pub op: &'o Operation,
}

/// What became of one job.
pub(crate) enum Sent {
    /// The call was made; its result.
    Made(Result<Applied, PluginError>),
    /// Never sent, for this reason (the run stopped calling).
    NotAttempted(String),
}

/// The target's instances for one apply.
pub(crate) struct Pool<'t> {
    first: &'t mut PluginInstance,
    siblings: Vec<PluginInstance>,
    /// The most instances: the connection's `max_in_flight`.
    width: usize,
    /// Set once making a sibling failed: the pool keeps the ones it has.
    cannot_grow: bool,
}

impl<'t> Pool<'t> {
    /// A pool around the connected target instance, as wide as its
    /// connection's `max_in_flight`. Siblings are made when a wave needs
    /// them.
    pub fn new(first: &'t mut PluginInstance) -> Pool<'t> {
        let width = first.max_in_flight().max(1);
        Pool {
            first,
            siblings: Vec::new(),
            width,
            cannot_grow: false,
        }
    }

    /// The most calls in flight: the connection's `max_in_flight`.
    pub fn width(&self) -> usize {
        self.width
    }

    /// Makes each lane's calls, in order within a lane, lanes concurrently
    /// on up to `width` instances. Returns every job's outcome (in no
    /// particular order) and, if the run must stop calling, why.
    pub fn run(
        &mut self,
        lanes: &[Vec<Job<'_>>],
        lease: &LeaseWatch,
    ) -> (Vec<(usize, Sent)>, Option<String>) {
        let stop = Stop::default();
        let next = AtomicUsize::new(0);
        let mut out = Vec::new();
        let groups = lanes.iter().flatten().any(|job| changes_a_group(job.op));
        if !groups {
            self.grow(lanes.len());
        }
        if groups || self.siblings.is_empty() || lanes.len() < 2 {
            out = work(self.first, lanes, &next, &stop, lease);
        } else {
            let instances = std::iter::once(&mut *self.first).chain(self.siblings.iter_mut());
            std::thread::scope(|scope| {
                let workers: Vec<_> = instances
                    .take(lanes.len())
                    .map(|instance| {
                        let (next, stop) = (&next, &stop);
                        scope.spawn(move || work(instance, lanes, next, stop, lease))
                    })
                    .collect();
                for worker in workers {
                    match worker.join() {
                        Ok(sent) => out.extend(sent),
                        // A panic in a worker is a bug; carry it to the caller.
                        Err(panic) => std::panic::resume_unwind(panic),
                    }
                }
            });
        }
        (out, stop.reason())
    }

    /// Makes siblings until the pool has one instance per
    /// [`LANES_PER_SIBLING`] lanes besides the first, at most `width`; each
    /// reads the target's groups first (see the module doc). A sibling
    /// that cannot be made or cannot read leaves the pool as it is: fewer
    /// calls in flight, never a failed run.
    fn grow(&mut self, lanes: usize) {
        let wanted = (lanes / LANES_PER_SIBLING).min(self.width.saturating_sub(1));
        while !self.cannot_grow && self.siblings.len() < wanted {
            let made = self.first.sibling().and_then(|mut sibling| {
                let caps = &sibling.manifest().capabilities;
                if caps.contains(&Capability::ReadTargetGroups) {
                    sibling.read_all_target_groups()?;
                }
                Ok(sibling)
            });
            match made {
                Ok(sibling) => self.siblings.push(sibling),
                Err(e) => {
                    tracing::warn!(
                        plugin = self.first.name(),
                        in_flight = self.siblings.len() + 1,
                        "cannot make another instance of the target plugin; going on with fewer calls in flight: {e}"
                    );
                    self.cannot_grow = true;
                }
            }
        }
    }
}

/// Lanes of a wave per sibling made: a sibling costs a read of the
/// target's groups (for Leapsome, of its directory), which a handful of
/// calls does not repay; a run of a few changes stays on one instance.
const LANES_PER_SIBLING: usize = 8;

/// Why the workers stop calling, set by the first that finds a reason.
#[derive(Default)]
struct Stop(Mutex<Option<String>>);

impl Stop {
    fn set(&self, why: String) {
        let mut reason = self.0.lock().unwrap_or_else(|e| e.into_inner());
        reason.get_or_insert(why);
    }

    /// The reason to stop, checking the lease first (rule 6).
    fn check(&self, lease: &LeaseWatch) -> Option<String> {
        if lease.lapsed() {
            self.set(LEASE_LAPSED.to_owned());
        }
        self.reason()
    }

    fn reason(&self) -> Option<String> {
        self.0.lock().unwrap_or_else(|e| e.into_inner()).clone()
    }
}

/// Why calls stop when the run's lease lapsed: another run may take the
/// flow over (and settle the open intents).
pub(crate) const LEASE_LAPSED: &str = "this run's lease on the flow lapsed (the process was suspended, or the database unreachable); the remaining actions were not attempted";

/// Why calls stop after the target plugin trapped: an instance that
/// trapped refuses every further call.
pub(crate) fn plugin_stopped(error: &str) -> String {
    format!("the target plugin stopped working ({error}); the remaining actions were not attempted")
}

/// One worker: takes the next lane until none is left, making its calls in
/// order.
fn work(
    instance: &mut PluginInstance,
    lanes: &[Vec<Job<'_>>],
    next: &AtomicUsize,
    stop: &Stop,
    lease: &LeaseWatch,
) -> Vec<(usize, Sent)> {
    let mut out = Vec::new();
    while let Some(lane) = lanes.get(next.fetch_add(1, Ordering::SeqCst)) {
        for job in lane {
            let sent = match stop.check(lease) {
                Some(why) => Sent::NotAttempted(why),
                None => {
                    let result = instance.apply(job.op);
                    if let Err(e) = &result
                        && instance.is_poisoned()
                    {
                        stop.set(plugin_stopped(&e.to_string()));
                    }
                    Sent::Made(result)
                }
            };
            out.push((job.unit, sent));
        }
    }
    out
}

/// Cuts a wave's jobs (in plan order) into lanes: the calls about one
/// account or one group share a lane, in plan order; every other call
/// (a create) is a lane of its own. Lanes come in the order of their first
/// call.
pub(crate) fn lanes(jobs: Vec<Job<'_>>) -> Vec<Vec<Job<'_>>> {
    let mut lanes: Vec<Vec<Job<'_>>> = Vec::new();
    let mut by_subject: HashMap<(&'static str, String), usize> = HashMap::new();
    for job in jobs {
        match subject(job.op) {
            Some(key) => match by_subject.get(&key) {
                Some(&lane) => lanes[lane].push(job),
                None => {
                    by_subject.insert(key, lanes.len());
                    lanes.push(vec![job]);
                }
            },
            None => lanes.push(vec![job]),
        }
    }
    lanes
}

/// Whether a call changes a group (made by the connected instance only).
fn changes_a_group(op: &Operation) -> bool {
    matches!(
        op,
        Operation::CreateGroup(_) | Operation::RenameGroup(_) | Operation::ChangeMembers(_)
    )
}

/// The existing account or group a call changes, whose calls must stay in
/// order; `None` for a call that makes something new.
fn subject(op: &Operation) -> Option<(&'static str, String)> {
    match op {
        Operation::Create(_) | Operation::CreateGroup(_) => None,
        Operation::Update(u) => Some(("account", u.id.clone())),
        Operation::Deactivate(a) | Operation::Reactivate(a) => Some(("account", a.id.clone())),
        Operation::SetManager(m) => Some(("account", m.id.clone())),
        Operation::RenameGroup(g) => Some(("group", g.id.clone())),
        Operation::ChangeMembers(c) => Some(("group", c.group_id.clone())),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::runtime::{AccountRef, ManagerChange, MemberChange, NewGroup};

    fn account(id: &str) -> AccountRef {
        AccountRef { id: id.into() }
    }

    /// The units of each lane.
    fn cut(ops: &[Operation]) -> Vec<Vec<usize>> {
        let jobs = ops
            .iter()
            .enumerate()
            .map(|(unit, op)| Job { unit, op })
            .collect();
        lanes(jobs)
            .iter()
            .map(|l| l.iter().map(|j| j.unit).collect())
            .collect()
    }

    #[test]
    fn creates_are_lanes_of_their_own() {
        let create = || {
            Operation::CreateGroup(NewGroup {
                name: "Sales".into(),
                parent_id: None,
            })
        };
        assert_eq!(
            cut(&[create(), create(), create()]),
            [vec![0], vec![1], vec![2]]
        );
    }

    #[test]
    fn one_accounts_calls_share_a_lane_in_plan_order() {
        let ops = [
            Operation::Reactivate(account("a")),
            Operation::Deactivate(account("b")),
            Operation::SetManager(ManagerChange {
                id: "a".into(),
                manager_id: Some("b".into()),
            }),
            Operation::Deactivate(account("a")),
        ];
        assert_eq!(cut(&ops), [vec![0, 2, 3], vec![1]]);
    }

    #[test]
    fn one_groups_membership_changes_share_a_lane() {
        let change = |group: &str, add: &str| {
            Operation::ChangeMembers(MemberChange {
                group_id: group.into(),
                add: vec![add.into()],
                remove: Vec::new(),
            })
        };
        let ops = [change("g1", "a"), change("g2", "a"), change("g1", "b")];
        assert_eq!(cut(&ops), [vec![0, 2], vec![1]]);
        // An account id and a group id that are equal are still different
        // subjects.
        let ops = [change("x", "a"), Operation::Deactivate(account("x"))];
        assert_eq!(cut(&ops), [vec![0], vec![1]]);
    }
}
