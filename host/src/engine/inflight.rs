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
//! (Leapsome names a person's department by the team's name, known from the
//! teams it read or created, and rewrites a team's member list from the
//! members it knows when a change removes one). Every call may go to any
//! instance — creating, renaming and re-membering groups included — because
//! the pool keeps one rule ([`group_views`]): **before an instance makes a
//! call, it has seen every change to each group the call names** (the group
//! it changes, the department of an account it writes). The pool records,
//! after each wave, which instance changed which group; an instance about
//! to make a call that names a group another instance changed since its
//! last read reads the target's groups again first, as a new sibling does
//! before its first call. A target that cannot read its groups (no
//! `read-target-groups`) cannot catch up: a wave that changes a group is
//! then made by the connected instance alone, one call at a time.
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

use super::group_views::{self, Changes, View};
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
    /// What each instance has seen of the target's groups: `views[0]` is
    /// `first`'s, `views[i]` is `siblings[i - 1]`'s.
    views: Vec<View>,
    /// The groups changed so far through the pool, by whom and when.
    changes: Changes,
    /// Whether an instance can read the target's groups again (the target
    /// declares `read-target-groups`); without it, a wave that changes a
    /// group is made by the connected instance alone.
    can_reread: bool,
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
        let can_reread = first
            .manifest()
            .capabilities
            .contains(&Capability::ReadTargetGroups);
        Pool {
            first,
            siblings: Vec::new(),
            views: vec![View::new(0, 0)],
            changes: Changes::default(),
            can_reread,
            width,
            cannot_grow: false,
        }
    }

    /// The most calls in flight: the connection's `max_in_flight`.
    pub fn width(&self) -> usize {
        self.width
    }

    /// Makes each lane's calls, in order within a lane, lanes concurrently
    /// on up to `width` instances. `ahead` is how many actions the apply
    /// has left, this wave's included (it decides how many siblings are
    /// worth making). Returns every job's outcome (in no particular order)
    /// and, if the run must stop calling, why.
    pub fn run(
        &mut self,
        lanes: &[Vec<Job<'_>>],
        ahead: usize,
        lease: &LeaseWatch,
    ) -> (Vec<(usize, Sent)>, Option<String>) {
        self.changes.next_wave();
        let alone = !self.can_reread
            && lanes
                .iter()
                .flatten()
                .any(|job| group_views::changes_a_group(job.op));
        if !alone && lanes.len() > 1 {
            self.grow(ahead.max(lanes.len()));
        }
        let (done, reason) = {
            let shared = Shared {
                lanes,
                next: AtomicUsize::new(0),
                stop: Stop::default(),
                lease,
                changes: &self.changes,
                reread: self.can_reread,
            };
            let sequential = alone || self.siblings.is_empty() || lanes.len() < 2;
            let mut instances = std::iter::once(&mut *self.first)
                .chain(self.siblings.iter_mut())
                .zip(self.views.iter_mut());
            let done = if sequential {
                // The connected instance alone, on this thread.
                instances
                    .next()
                    .map(|(instance, view)| vec![work(instance, view, &shared)])
                    .unwrap_or_default()
            } else {
                concurrently(instances, &shared)
            };
            (done, shared.stop.reason())
        };
        let mut out = Vec::new();
        for Done {
            index,
            sent,
            changed,
        } in done
        {
            for group in changed {
                self.changes.record(index, group);
            }
            out.extend(sent);
        }
        (out, reason)
    }

    /// Makes siblings until the pool has one instance per
    /// [`ACTIONS_PER_SIBLING`] actions left besides the first, at most
    /// `width`; each reads the target's groups first (see the module doc).
    /// A sibling that cannot be made or cannot read leaves the pool as it
    /// is: fewer calls in flight, never a failed run.
    fn grow(&mut self, actions: usize) {
        let wanted = (actions / ACTIONS_PER_SIBLING).min(self.width.saturating_sub(1));
        while !self.cannot_grow && self.siblings.len() < wanted {
            let reread = self.can_reread;
            let made = self.first.sibling().and_then(|mut sibling| {
                if reread {
                    sibling.read_all_target_groups()?;
                }
                Ok(sibling)
            });
            match made {
                Ok(sibling) => {
                    self.siblings.push(sibling);
                    let index = self.siblings.len();
                    self.views.push(View::new(index, self.changes.wave()));
                }
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

/// Actions left in the apply (a call each, about) per sibling made: a
/// sibling costs a read of the target's groups (for Leapsome, of its
/// directory), which a handful of calls does not repay; a run of a few
/// changes stays on one instance. Counted over the rest of the apply, not
/// the wave: a phase cut into short waves (the teams of a tree, a team
/// whose parent is created in the wave starting the next) gets the
/// siblings the calls after it will use anyway.
const ACTIONS_PER_SIBLING: usize = 8;

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

/// Runs one worker per instance (as many as there are lanes, at most) on
/// its own thread, and gathers what each did.
fn concurrently<'i>(
    instances: impl Iterator<Item = (&'i mut PluginInstance, &'i mut View)>,
    shared: &Shared<'_, '_>,
) -> Vec<Done> {
    std::thread::scope(|scope| {
        let workers: Vec<_> = instances
            .take(shared.lanes.len())
            .map(|(instance, view)| scope.spawn(move || work(instance, view, shared)))
            .collect();
        workers
            .into_iter()
            .map(|worker| match worker.join() {
                Ok(done) => done,
                // A panic in a worker is a bug; carry it to the caller.
                Err(panic) => std::panic::resume_unwind(panic),
            })
            .collect()
    })
}

/// What every worker of a wave shares.
struct Shared<'w, 'o> {
    lanes: &'w [Vec<Job<'o>>],
    /// The next lane to take.
    next: AtomicUsize,
    stop: Stop,
    lease: &'w LeaseWatch,
    /// The groups changed before this wave (read-only during it).
    changes: &'w Changes,
    /// Whether a stale instance can read the groups again.
    reread: bool,
}

/// What one worker did: its instance's index, its jobs' outcomes, and the
/// groups its calls changed.
struct Done {
    index: usize,
    sent: Vec<(usize, Sent)>,
    changed: Vec<String>,
}

/// One worker: takes the next lane until none is left, making its calls in
/// order, each after reading the target's groups again if it names one
/// another instance changed since this one last read them.
fn work(instance: &mut PluginInstance, view: &mut View, shared: &Shared<'_, '_>) -> Done {
    let mut done = Done {
        index: view.index,
        sent: Vec::new(),
        changed: Vec::new(),
    };
    while let Some(lane) = shared.lanes.get(shared.next.fetch_add(1, Ordering::SeqCst)) {
        for job in lane {
            let sent = match shared.stop.check(shared.lease) {
                Some(why) => Sent::NotAttempted(why),
                None => match catch_up(instance, view, shared, job.op) {
                    Err(why) => Sent::NotAttempted(why),
                    Ok(()) => {
                        let result = instance.apply(job.op);
                        if let Some(group) = group_views::changed_group(job.op, &result) {
                            done.changed.push(group);
                        }
                        if let Err(e) = &result
                            && instance.is_poisoned()
                        {
                            shared.stop.set(plugin_stopped(&e.to_string()));
                        }
                        Sent::Made(result)
                    }
                },
            };
            done.sent.push((job.unit, sent));
        }
    }
    done
}

/// Reads the target's groups on `instance` if `op` names a group another
/// instance changed since it last read them ([`group_views`]). When the
/// read fails the call is not made (why, naming the group); a trap stops
/// every worker.
fn catch_up(
    instance: &mut PluginInstance,
    view: &mut View,
    shared: &Shared<'_, '_>,
    op: &Operation,
) -> Result<(), String> {
    if !shared.reread {
        return Ok(());
    }
    let Some(group) = shared.changes.stale_for(view, op) else {
        return Ok(());
    };
    tracing::debug!(
        instance = view.index,
        wave = shared.changes.wave(),
        "reading the target's groups again: another instance changed group {group}"
    );
    match instance.read_all_target_groups() {
        Ok(_) => {
            view.refreshed(shared.changes);
            Ok(())
        }
        Err(e) => {
            if instance.is_poisoned() {
                shared.stop.set(plugin_stopped(&e.to_string()));
            }
            Err(stale_view(group, &e))
        }
    }
}

/// Why a call was not made: its instance could not read again the groups
/// that another instance had changed.
fn stale_view(group: &str, error: &PluginError) -> String {
    format!(
        "another instance changed group {group}, and this instance could not read the target's groups again ({error}); the call was not sent"
    )
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
