//! The many-tenants kit of the fleet test (`common::tenants`), proved without the fleet:
//! today's `muster sync` (the built binary) per tenant, each with its own SQLite state, two
//! at a time; every check passes, then fails on a hand-made duplicate and a lost account;
//! the "applying" watcher names the process that writes; and 200 tenants start cheaply.

mod common;

use std::path::PathBuf;
use std::process::{Output, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use common::tenants::{
    DuplicateKey, Extra, FLOW, KitError, KitOptions, Target, Tenants, duplicates,
};
use common::world::{http, text};
use muster::store::{LinkKind, Store};
use muster_sandbox::ScimUser;
use muster_sandbox::leapsome::Email;

/// Runs `muster sync` on every config, `parallel` at a time; the outputs in config order.
fn sync_all(configs: &[PathBuf], parallel: usize) -> Vec<Output> {
    let next = AtomicUsize::new(0);
    let mut outputs: Vec<Option<Output>> = vec![None; configs.len()];
    std::thread::scope(|s| {
        let workers: Vec<_> = (0..parallel)
            .map(|_| {
                s.spawn(|| {
                    let mut done = Vec::new();
                    loop {
                        let i = next.fetch_add(1, Ordering::SeqCst);
                        let Some(config) = configs.get(i) else {
                            break done;
                        };
                        let out = Tenants::muster(&["sync"], config)
                            .output()
                            .expect("run muster");
                        done.push((i, out));
                    }
                })
            })
            .collect();
        for w in workers {
            for (i, out) in w.join().expect("sync thread") {
                outputs[i] = Some(out);
            }
        }
    });
    outputs
        .into_iter()
        .map(|o| o.expect("every config ran"))
        .collect()
}

/// Starts `n` tenants, writes their configs with a state file each, syncs them all.
fn synced(
    n: usize,
    people: usize,
    options: KitOptions,
) -> (Tenants, tempfile::TempDir, Vec<PathBuf>) {
    let kit = Tenants::start(n, people, options).expect("start the tenants");
    let dir = tempfile::tempdir().expect("tempdir");
    let extra = Extra {
        state_dir: Some(dir.path().join("state")),
        ..Extra::default()
    };
    std::fs::create_dir_all(dir.path().join("state")).expect("state dir");
    let configs = kit
        .write_configs(&dir.path().join("tenants"), Some("every 1 m"), &extra)
        .expect("write configs");
    for (config, out) in configs.iter().zip(sync_all(&configs, 2)) {
        assert!(out.status.success(), "{}: {}", config.display(), text(&out));
    }
    (kit, dir, configs)
}

#[test]
fn twenty_tenants_synced_two_at_a_time_pass_every_check_until_one_is_broken() {
    let (kit, dir, configs) = synced(20, 15, KitOptions::default());
    assert_eq!(
        std::fs::read_dir(dir.path().join("state"))
            .expect("state")
            .count(),
        20,
        "one SQLite state per tenant"
    );

    let accounts = kit.check_accounts();
    println!("{accounts}");
    assert!(accounts.is_clean(), "{accounts}");
    for t in &accounts.tenants {
        assert!(t.expected > 0 && t.accounts == t.expected, "{t:?}");
    }
    let traffic = kit.traffic();
    println!("{traffic}");
    assert!(traffic.over_limit().is_empty(), "{traffic}");
    assert_eq!(traffic.lucca_throttled(), 0, "{traffic}");
    for t in &traffic.tenants {
        assert!(t.lucca_requests > 0 && t.target_writes > 0, "{t:?}");
        assert_eq!(t.lucca_full_reads, 1, "one run, one full read: {t:?}");
    }
    // A second run of tenant-000 changes nothing and reads Lucca once more.
    let again = Tenants::muster(&["sync"], &configs[0])
        .output()
        .expect("resync");
    assert!(again.status.success(), "{}", text(&again));
    let resynced = &kit.traffic().tenants[0];
    assert_eq!(resynced.lucca_full_reads, 2, "{resynced:?}");
    assert_eq!(resynced.target_writes, traffic.tenants[0].target_writes);

    let state = |id: &str| Store::open(dir.path().join("state").join(format!("{id}.db")));
    let links = kit.check_links(|t| state(&t.id).expect("store").links(FLOW).expect("links"));
    println!("{links}");
    assert!(links.is_clean(), "{links}");
    assert_eq!(links.tenants.iter().map(|t| t.links).sum::<usize>(), 252);
    // A link lost from tenant-007's store: reported as exactly that.
    let mut store = state("tenant-007").expect("store");
    let lost = store.links(FLOW).expect("links")[0].clone();
    store
        .remove_link(FLOW, LinkKind::Person, &lost.source_id, &lost.target_id)
        .expect("remove");
    let links = kit.check_links(|t| state(&t.id).expect("store").links(FLOW).expect("links"));
    let failing: Vec<&str> = links.failures().iter().map(|t| t.tenant.as_str()).collect();
    assert_eq!(failing, ["tenant-007"], "{links}");
    assert_eq!(links.tenants[7].unlinked, [lost.source_id], "{links}");
    assert_eq!(links.lost(), 1);

    // A hand-made second account for tenant-003's first person, and tenant-005's first
    // account gone: the check names exactly those.
    let twin = kit.tenants[3].target.users()[0].clone();
    let external = twin.external_id.clone().expect("muster sets externalId");
    kit.tenants[3].target.with_state(|d| {
        d.add_user(ScimUser {
            external_id: Some(external.clone()),
            ..ScimUser::new("", "someone.else@sandbox.example")
        })
    });
    let gone = kit.tenants[5].target.with_state(|d| d.users.remove(0));

    let accounts = kit.check_accounts();
    println!("{accounts}");
    let failing: Vec<&str> = accounts
        .failures()
        .iter()
        .map(|t| t.tenant.as_str())
        .collect();
    assert_eq!(failing, ["tenant-003", "tenant-005"], "{accounts}");
    let t3 = &accounts.tenants[3];
    assert_eq!(t3.duplicates.len(), 1, "{t3:?}");
    assert_eq!(t3.duplicates[0].by, DuplicateKey::ExternalId);
    assert_eq!(t3.duplicates[0].value, external);
    assert_eq!(t3.duplicates[0].accounts.len(), 2);
    assert!(t3.missing.is_empty() && t3.unexpected.is_empty(), "{t3:?}");
    let t5 = &accounts.tenants[5];
    assert_eq!(
        t5.missing,
        [gone.external_id.expect("externalId")],
        "{t5:?}"
    );
    assert_eq!((accounts.duplicates(), accounts.missing()), (1, 1));
}

#[test]
fn the_generic_scim_target_passes_the_same_checks() {
    let options = KitOptions {
        target: Target::Scim,
        seed: 4_200,
        ..KitOptions::default()
    };
    let (kit, _dir, _configs) = synced(2, 15, options);
    let accounts = kit.check_accounts();
    assert!(accounts.is_clean(), "{accounts}");
    assert!(
        accounts.tenants.iter().all(|t| t.accounts > 0),
        "{accounts}"
    );
    assert!(kit.traffic().over_limit().is_empty());
}

#[test]
fn wait_applying_names_the_process_that_writes() {
    let kit = Tenants::start(
        2,
        15,
        KitOptions {
            target_latency: Duration::from_millis(200),
            ..KitOptions::default()
        },
    )
    .expect("start");
    let dir = tempfile::tempdir().expect("tempdir");
    let extra = Extra {
        state_dir: Some(dir.path().to_owned()),
        ..Extra::default()
    };
    let configs = kit
        .write_configs(dir.path(), None, &extra)
        .expect("configs");
    let mark = kit.mark();
    let mut child = Tenants::muster(&["sync"], &configs[1])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("spawn muster sync");

    let write = kit.wait_applying(&mark, Some(child.id()), Duration::from_secs(120));
    let busy = kit.wait_applying(&mark, Some(std::process::id()), Duration::from_millis(300));
    let only_one = kit.wait_until("a write", Duration::from_millis(300), |t| {
        t.target.request_counts().writes > 0
    });
    let while_running = kit.writes_since(&mark);
    child.kill().expect("kill");
    let _ = child.wait();

    let write = write.expect("muster sync writes to tenant-001");
    assert_eq!(write.tenant, "tenant-001");
    assert_eq!(write.pid, Some(child.id()));
    assert_ne!(write.request.method, "GET");
    assert!(
        matches!(busy, Err(KitError::Timeout { .. })),
        "this test process sends no write: {busy:?}"
    );
    match only_one {
        Err(KitError::Timeout { pending, .. }) => assert_eq!(pending, ["tenant-000"]),
        other => panic!("tenant-000 got no write: {other:?}"),
    }
    assert!(
        while_running.iter().all(|w| w.tenant == "tenant-001")
            && while_running.iter().any(|w| w.pid == Some(child.id())),
        "{while_running:?}"
    );
}

/// Threads and resident memory of this process, from `/proc/self/status`.
fn threads_and_rss_kib() -> (usize, usize) {
    let status = std::fs::read_to_string("/proc/self/status").expect("status");
    let field = |name: &str| {
        status
            .lines()
            .find_map(|l| l.strip_prefix(name))
            .and_then(|v| v.split_whitespace().next()?.parse().ok())
            .unwrap_or(0)
    };
    (field("Threads:"), field("VmRSS:"))
}

#[test]
fn two_hundred_tenants_start_in_seconds() {
    let (threads_before, rss_before) = threads_and_rss_kib();
    let started = Instant::now();
    let kit = Tenants::start(200, 20, KitOptions::default()).expect("start 200 tenants");
    let took = started.elapsed();
    let (threads, rss) = threads_and_rss_kib();
    // Other tests of this binary start and end threads meanwhile: signed differences.
    let more_threads = threads as i64 - threads_before as i64;
    println!(
        "200 tenants (400 simulators, 20 people each): started in {took:?}, {more_threads} more threads, {} MiB more resident",
        (rss as i64 - rss_before as i64) / 1024
    );
    let mut ports: Vec<String> = kit
        .tenants
        .iter()
        .flat_map(|t| [t.lucca.base_url(), t.target.base_url()])
        .collect();
    ports.sort();
    ports.dedup();
    assert_eq!(ports.len(), 400, "every simulator on its own port");
    let people = |kit: &Tenants, i: usize| kit.tenants[i].lucca.tenant().users;
    assert_ne!(
        people(&kit, 0),
        people(&kit, 1),
        "each tenant its own people"
    );
    let again = Tenants::start(1, 20, KitOptions::default()).expect("start one");
    assert_eq!(
        people(&again, 0),
        people(&kit, 0),
        "the same seed, the same people"
    );
    let dir = tempfile::tempdir().expect("tempdir");
    let configs = kit
        .write_configs(dir.path(), Some("every 1 m"), &Extra::default())
        .expect("configs");
    assert_eq!(configs.len(), 200);
    let text = std::fs::read_to_string(&configs[42]).expect("config");
    assert!(text.contains(&kit.tenants[42].lucca.base_url()), "{text}");
    assert!(!text.contains("state ="), "no state key by default: {text}");
    assert!(
        took < Duration::from_secs(60),
        "a 200-tenant start took {took:?}"
    );
}

#[test]
fn a_tenant_whose_client_bursts_past_lucca_limit_is_reported() {
    let kit = Tenants::start(3, 5, KitOptions::default()).expect("start");
    let lucca = &kit.tenants[1].lucca;
    let addr = lucca.base_url().replace("http://", "");
    let auth = format!("lucca application={}", lucca.api_key());
    let statuses: Vec<u16> = (0..51)
        .map(|_| {
            http(
                &addr,
                "GET",
                "/api/v3/users",
                &[("Authorization", &auth)],
                "",
            )
            .0
        })
        .collect();
    assert_eq!(statuses.iter().filter(|s| **s == 429).count(), 1);
    let traffic = kit.traffic();
    let over: Vec<&str> = traffic
        .over_limit()
        .iter()
        .map(|t| t.tenant.as_str())
        .collect();
    assert_eq!(over, ["tenant-001"], "{traffic}");
    assert_eq!(
        (traffic.lucca_throttled(), traffic.max_in_window()),
        (1, 50)
    );
    assert_eq!(
        traffic.tenants[1].lucca_full_reads, 0,
        "no formerEmployees read"
    );
}

#[test]
fn duplicates_are_found_by_user_name_email_and_external_id_ignoring_case() {
    let account = |id: &str, user_name: &str, external: Option<&str>| ScimUser {
        id: id.into(),
        external_id: external.map(str::to_owned),
        ..ScimUser::new(id, user_name)
    };
    let mut shared_email = account("c", "c@x.example", Some("3"));
    shared_email.emails.push(Email::work("A@X.example"));
    let found = duplicates(&[
        account("a", "a@x.example", Some("1")),
        account("b", "A@x.example ", Some("2")),
        shared_email,
        account("d", "d@x.example", Some("1")),
        account("e", "e@x.example", None),
    ]);
    let summary: Vec<(DuplicateKey, &str, Vec<&str>)> = found
        .iter()
        .map(|d| {
            (
                d.by,
                d.value.as_str(),
                d.accounts.iter().map(String::as_str).collect(),
            )
        })
        .collect();
    assert_eq!(
        summary,
        [
            (DuplicateKey::UserName, "a@x.example", vec!["a", "b"]),
            (DuplicateKey::Email, "a@x.example", vec!["a", "b", "c"]),
            (DuplicateKey::ExternalId, "1", vec!["a", "d"]),
        ]
    );
}
