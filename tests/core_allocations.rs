//! The core's promise: planning an unchanged record allocates nothing. A
//! plan allocates a fixed number of buffers (indexes, the action list)
//! whatever the tenant's size, plus a little per *changed* record.

use muster_core::ActionKind;
use muster_suite::alloc_counter::{Counting, allocations_during};
use muster_suite::synthetic::Tenant;

#[global_allocator]
static ALLOCATOR: Counting = Counting;

fn plan_allocations(n: usize, churn_per_mille: usize, groups: bool) -> u64 {
    let (tenant, churn) = Tenant::new(n, churn_per_mille, groups);
    let input = tenant.input();
    let (plan, allocations) = allocations_during(|| muster_core::plan(&input).expect("plan"));
    // The plan found exactly the churn the tenant was built with.
    let counts = plan.counts();
    assert_eq!(counts.get(ActionKind::Create) as usize, churn.creates);
    assert_eq!(counts.get(ActionKind::Update) as usize, churn.updates);
    assert_eq!(
        counts.get(ActionKind::Deactivate) as usize,
        churn.deactivations
    );
    assert_eq!(
        counts.get(ActionKind::Reactivate) as usize,
        churn.reactivations
    );
    allocations
}

#[test]
fn unchanged_records_allocate_nothing() {
    for groups in [false, true] {
        let small = plan_allocations(1_000, 0, groups);
        let large = plan_allocations(50_000, 0, groups);
        assert_eq!(
            small, large,
            "allocations grew with unchanged records (groups: {groups})"
        );
    }
}

#[test]
fn changed_records_allocate_a_little_each() {
    let unchanged = plan_allocations(50_000, 0, false);
    let churned = plan_allocations(50_000, 10, false);
    let changed = 500;
    let per_change = (churned - unchanged) as f64 / changed as f64;
    assert!(
        per_change <= 4.0,
        "{per_change} allocations per changed record"
    );
}
