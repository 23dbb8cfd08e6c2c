//! The cost of the plugin boundary, with the real `fixture-good` component:
//!
//! - `load_from_cache`: `Runtime::load_file` when the precompiled component
//!   is in the on-disk cache (read + digest + deserialise + link);
//! - `instantiate`: a fresh instance from the cached `InstancePre`, including
//!   its store, WASI context and the `describe` call (target ≤ 1 ms median);
//! - `empty_call`: `check()` on a plugin with nothing to check;
//! - `people_100k/guest_to_host`: 100 000 fully populated `person` records
//!   returned by one `read-people` call, lifted into host values and
//!   date-validated (the guest builds them in an untimed setup);
//! - `people_100k/json_native`: `serde_json` deserialising the same 100 000
//!   records from JSON into equivalent host structs (target: guest_to_host
//!   ≤ 2× this).
//!
//! Run: `cargo bench --bench plugin_boundary`.

use std::hint::black_box;
use std::sync::Arc;
use std::time::Duration;

use criterion::{BatchSize, Criterion, Throughput, criterion_group, criterion_main};
use muster::runtime::{
    Capabilities, DenyAll, FieldValue, Loaded, MemoryLog, Person, Plugin, Runtime, RuntimeConfig,
};
use serde::{Deserialize, Serialize};

const PEOPLE: usize = 100_000;

fn caps() -> Capabilities {
    Capabilities {
        name: None,
        http: Arc::new(DenyAll),
        log: Arc::new(MemoryLog::new()),
    }
}

fn settings(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
    pairs
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

/// A runtime whose cache already holds the fixture, and the plugin loaded from it.
fn cached_runtime(dir: &std::path::Path) -> (Runtime, Plugin) {
    let config = RuntimeConfig {
        cache_dir: Some(dir.to_path_buf()),
        // 100k records live twice in guest memory (Rust values + their
        // canonical-ABI copy): give the bench instance room.
        memory_limit: 1 << 30,
        ..RuntimeConfig::default()
    };
    let runtime = Runtime::new(config).expect("runtime");
    runtime
        .load_file(muster::plugins::fixture_good())
        .expect("warm the cache");
    let plugin = runtime
        .load_file(muster::plugins::fixture_good())
        .expect("load");
    assert_eq!(plugin.loaded(), Loaded::FromCache);
    (runtime, plugin)
}

fn boundary(c: &mut Criterion) {
    let dir = tempfile::tempdir().expect("tempdir");
    let (runtime, plugin) = cached_runtime(dir.path());

    c.bench_function("plugin_boundary/load_from_cache", |b| {
        b.iter(|| {
            black_box(
                runtime
                    .load_file(muster::plugins::fixture_good())
                    .expect("load"),
            )
        })
    });
    c.bench_function("plugin_boundary/instantiate", |b| {
        b.iter(|| black_box(plugin.instantiate(caps()).expect("instantiate")))
    });
    let mut instance = plugin.instantiate(caps()).expect("instantiate");
    instance
        .configure(&settings(&[("count", "0")]))
        .expect("configure");
    c.bench_function("plugin_boundary/empty_call", |b| {
        b.iter(|| instance.check().expect("check"))
    });
}

// --- the native baseline: the same records as JSON --------------------------

#[derive(Serialize, Deserialize)]
struct DateJson {
    year: i32,
    month: u8,
    day: u8,
}

#[derive(Serialize, Deserialize)]
enum FieldJson {
    Text(String),
    Number(f64),
    Boolean(bool),
}

#[derive(Serialize, Deserialize)]
struct PersonJson {
    id: String,
    employee_number: Option<String>,
    given_name: Option<String>,
    family_name: Option<String>,
    work_email: Option<String>,
    personal_email: Option<String>,
    phone: Option<String>,
    login: Option<String>,
    birth_date: Option<DateJson>,
    start_date: Option<DateJson>,
    end_date: Option<DateJson>,
    job_title: Option<String>,
    gender: Option<String>,
    department_id: Option<String>,
    manager_id: Option<String>,
    legal_entity_id: Option<String>,
    contract_type: Option<String>,
    active: bool,
    custom_fields: Vec<(String, FieldJson)>,
}

fn to_json(p: &Person) -> PersonJson {
    let date = |d: &Option<muster::runtime::Date>| {
        d.map(|d| DateJson {
            year: d.year,
            month: d.month,
            day: d.day,
        })
    };
    PersonJson {
        id: p.id.clone(),
        employee_number: p.employee_number.clone(),
        given_name: p.given_name.clone(),
        family_name: p.family_name.clone(),
        work_email: p.work_email.clone(),
        personal_email: p.personal_email.clone(),
        phone: p.phone.clone(),
        login: p.login.clone(),
        birth_date: date(&p.birth_date),
        start_date: date(&p.start_date),
        end_date: date(&p.end_date),
        job_title: p.job_title.clone(),
        gender: p.gender.map(|g| format!("{g:?}")),
        department_id: p.department_id.clone(),
        manager_id: p.manager_id.clone(),
        legal_entity_id: p.legal_entity_id.clone(),
        contract_type: p.contract_type.clone(),
        active: p.active,
        custom_fields: p
            .custom_fields
            .iter()
            .map(|(k, v)| {
                let v = match v {
                    FieldValue::Number(n) => FieldJson::Number(*n),
                    FieldValue::Boolean(b) => FieldJson::Boolean(*b),
                    other => FieldJson::Text(format!("{other:?}")),
                };
                (k.clone(), v)
            })
            .collect(),
    }
}

fn people(c: &mut Criterion) {
    let dir = tempfile::tempdir().expect("tempdir");
    let (_runtime, plugin) = cached_runtime(dir.path());
    let mut instance = plugin.instantiate(caps()).expect("instantiate");
    let fill = settings(&[("count", &PEOPLE.to_string()), ("drain", "true")]);

    instance.configure(&fill).expect("configure");
    let records = instance.read_people(None).expect("read").items;
    assert_eq!(records.len(), PEOPLE);
    let json = serde_json::to_vec(&records.iter().map(to_json).collect::<Vec<_>>()).expect("json");
    drop(records);
    // Setup and routine both need the instance; criterion takes them as two closures.
    let instance = std::cell::RefCell::new(instance);

    let mut group = c.benchmark_group("plugin_boundary/people_100k");
    group
        .sample_size(20)
        .measurement_time(Duration::from_secs(20));
    group.throughput(Throughput::Elements(PEOPLE as u64));
    group.bench_function("guest_to_host", |b| {
        b.iter_batched(
            || instance.borrow_mut().configure(&fill).expect("configure"),
            |()| {
                let page = instance.borrow_mut().read_people(None).expect("read");
                assert_eq!(page.items.len(), PEOPLE);
                page
            },
            BatchSize::PerIteration,
        )
    });
    // Same harness shape as above (outputs dropped outside the timed region).
    group.bench_function("json_native", |b| {
        b.iter_batched(
            || (),
            |()| {
                let people: Vec<PersonJson> =
                    serde_json::from_slice(black_box(&json)).expect("decode");
                assert_eq!(people.len(), PEOPLE);
                people
            },
            BatchSize::PerIteration,
        )
    });
    group.finish();
}

criterion_group!(benches, boundary, people);
criterion_main!(benches);
