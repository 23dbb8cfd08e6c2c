//! Reading one side of a flow completely, and fingerprinting what was read.
//!
//! A side is read page by page through its plugin; any failed page fails the
//! read (the runtime's `read_all_*` never returns a partial list), so a run
//! never plans from a truncated source.
//!
//! [`read_paged`] hands each page's records, converted, to the caller as the
//! read delivers them, on a worker thread: while the plugin waits on the
//! vendor for page *k + 1*, page *k* is converted and hashed (the engine
//! prepares the plan's per-record hashes there, [`super::prepared`]), so
//! little is left to do once the last page is in.
//!
//! The [`Digest`] of both snapshots and the link tables is what makes a plan
//! file or a held plan *checkable*: applying it later re-reads both sides and
//! refuses to go on when the digest differs (the world moved on since the
//! plan was reviewed).

use std::fmt;
use std::io::Write;
use std::sync::mpsc;

use muster_core::{Group, Link, Person};
use sha2::{Digest as _, Sha256};

use crate::runtime::connector::{Connector, Problem, RawPage, Reading, Records, Side};
use crate::runtime::{Capability, PluginError, PluginInstance};

/// What one side looked like when it was read.
#[derive(Debug, Clone, Default)]
pub struct Snapshot {
    pub people: Vec<Person>,
    pub groups: Vec<Group>,
    /// Whether groups were read (the plugin has the capability and the flow
    /// syncs groups).
    pub with_groups: bool,
    /// Records that could not be taken as they are, by plugin, record and
    /// field.
    pub problems: Vec<Problem>,
    /// The ids of the records those problems hold
    /// ([`crate::runtime::connector::Records::held`]): source records not in
    /// `people`, target accounts kept without their bad values.
    pub held: Vec<String>,
    /// What the people read covers (a target read is always full).
    pub coverage: muster_core::Coverage,
    /// Where the next incremental read may start, when the connector says.
    pub watermark: Option<String>,
}

/// Reads the people (or accounts) of one side and, when asked and
/// supported, its groups. `since` (source only) asks for the changes since
/// that watermark; the snapshot says what the read covered.
pub fn read(
    plugin: &mut PluginInstance,
    side: Side,
    groups: bool,
    since: Option<&str>,
) -> Result<Snapshot, PluginError> {
    let read = match side {
        Side::Source => plugin.people(since)?,
        Side::Target => plugin.accounts()?,
    };
    let mut snapshot = Snapshot {
        people: read.people,
        problems: read.problems,
        held: read.held,
        coverage: read.coverage,
        watermark: read.watermark,
        ..Snapshot::default()
    };
    if groups {
        read_groups(plugin, side, &mut snapshot)?;
    }
    Ok(snapshot)
}

/// How many pages the plugin may read ahead of their conversion: enough to
/// keep it busy while a page is hashed, few enough to bound the memory of a
/// read whose conversion falls behind.
const PAGES_AHEAD: usize = 4;

/// [`read`], handing each page's records to `on_page` as they are converted
/// (all of them, in read order, on a worker thread, while the plugin reads
/// the next page). Returns the snapshot and the positions, in that order, of
/// the records handed over that are not in its people (source records a
/// problem held: [`Records::dropped`]).
pub fn read_paged(
    plugin: &mut PluginInstance,
    side: Side,
    groups: bool,
    since: Option<&str>,
    on_page: &mut (dyn FnMut(&[Person]) + Send),
) -> Result<(Snapshot, Vec<usize>), PluginError> {
    let records = read_overlapped(plugin, side, since, on_page)?;
    let mut snapshot = Snapshot {
        people: records.people,
        problems: records.problems,
        held: records.held,
        coverage: records.coverage,
        watermark: records.watermark,
        ..Snapshot::default()
    };
    if groups {
        read_groups(plugin, side, &mut snapshot)?;
    }
    Ok((snapshot, records.dropped))
}

/// The plugin reads pages on this thread; a worker converts each
/// ([`Reading`]) and hands it to `on_page`. A failed read fails once the
/// worker has finished the pages it was given.
fn read_overlapped(
    plugin: &mut PluginInstance,
    side: Side,
    since: Option<&str>,
    on_page: &mut (dyn FnMut(&[Person]) + Send),
) -> Result<Records, PluginError> {
    let name = plugin.name().to_owned();
    std::thread::scope(|scope| {
        let (pages, arrived) = mpsc::sync_channel::<RawPage>(PAGES_AHEAD);
        let worker = scope.spawn(move || {
            let mut reading = Reading::new(side, &name);
            for page in arrived {
                on_page(reading.page(page));
            }
            reading
        });
        let end = plugin.read_person_pages(side, since, &mut |page| {
            // Fails only when the worker panicked, which `join` re-raises.
            let _ = pages.send(page);
        });
        drop(pages);
        let reading = worker
            .join()
            .unwrap_or_else(|panic| std::panic::resume_unwind(panic));
        end.map(|end| reading.finish(end))
    })
}

/// Reads the groups of one side into `snapshot` when the plugin can.
pub fn read_groups(
    plugin: &mut PluginInstance,
    side: Side,
    snapshot: &mut Snapshot,
) -> Result<(), PluginError> {
    let group_cap = match side {
        Side::Source => Capability::ReadGroups,
        Side::Target => Capability::ReadTargetGroups,
    };
    if plugin.manifest().capabilities.contains(&group_cap) {
        let read = plugin.groups(side)?;
        snapshot.problems.extend(read.problems);
        snapshot.groups = read.groups;
        snapshot.with_groups = true;
    }
    Ok(())
}

/// SHA-256 of everything a plan is made from, hex-encoded.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Digest(pub String);

impl fmt::Display for Digest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// Streams JSON into the hasher without building the document in memory.
struct HashWriter(Sha256);

impl Write for HashWriter {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.update(buf);
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// The digest of a flow's inputs: both snapshots (as read, before mapping,
/// with the ids of their held records when there are any), both link tables
/// and the day the plan is for.
pub fn digest(
    source: &Snapshot,
    target: &Snapshot,
    links: &[Link],
    group_links: &[Link],
    today: muster_core::Date,
) -> Digest {
    let mut w = HashWriter(Sha256::new());
    // Serialising these types cannot fail (no maps with non-string keys, no
    // non-finite floats: the connector layer leaves them out), and the
    // writer never fails.
    let parts: [&dyn erased::Part; 7] = [
        &source.people,
        &source.groups,
        &target.people,
        &target.groups,
        &links,
        &group_links,
        &today,
    ];
    for part in parts {
        part.write_to(&mut w);
        w.0.update(b"\x1e");
    }
    // Only when there are any, so the digests of clean reads stay as they were.
    for held in [&source.held, &target.held] {
        if !held.is_empty() {
            let part: &dyn erased::Part = held;
            part.write_to(&mut w);
            w.0.update(b"\x1e");
        }
    }
    let bytes = w.0.finalize();
    let mut hex = String::with_capacity(64);
    for b in bytes {
        hex.push_str(&format!("{b:02x}"));
    }
    Digest(hex)
}

/// A tiny object-safe wrapper so heterogeneous parts go through one loop.
mod erased {
    use sha2::Digest as _;

    use super::HashWriter;

    pub trait Part {
        fn write_to(&self, w: &mut HashWriter);
    }

    impl<T: serde::Serialize> Part for T {
        fn write_to(&self, w: &mut HashWriter) {
            if serde_json::to_writer(&mut *w, self).is_err() {
                // Unreachable for our types; hash a marker rather than panic.
                w.0.update(b"\x00unserialisable");
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn snap(ids: &[&str]) -> Snapshot {
        Snapshot {
            people: ids.iter().map(|id| Person::new(*id)).collect(),
            ..Snapshot::default()
        }
    }

    #[test]
    fn digest_changes_with_any_input() {
        let today = muster_core::Date::from_ymd(2026, 3, 2).unwrap();
        let base = digest(&snap(&["1"]), &snap(&["a"]), &[], &[], today);
        assert_eq!(base, digest(&snap(&["1"]), &snap(&["a"]), &[], &[], today));
        assert_eq!(base.0.len(), 64);
        assert_ne!(base, digest(&snap(&["2"]), &snap(&["a"]), &[], &[], today));
        assert_ne!(base, digest(&snap(&["1"]), &snap(&["b"]), &[], &[], today));
        let link = [Link::new("1", "a")];
        assert_ne!(
            base,
            digest(&snap(&["1"]), &snap(&["a"]), &link, &[], today)
        );
        assert_ne!(
            base,
            digest(&snap(&["1"]), &snap(&["a"]), &[], &link, today)
        );
        let mut held = snap(&["1"]);
        held.held = vec!["2".into()];
        assert_ne!(base, digest(&held, &snap(&["a"]), &[], &[], today));
        let tomorrow = today.add_days(1);
        assert_ne!(
            base,
            digest(&snap(&["1"]), &snap(&["a"]), &[], &[], tomorrow)
        );
    }
}
