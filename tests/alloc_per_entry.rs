//! The core allocates per batch, not per entry: proposing 64 entries in one
//! MsgProp through a 3-node in-memory cluster (propose, replicate, commit,
//! apply everywhere) costs no more heap allocations than a small constant
//! above one entry. Entries carry `Bytes::from_static` payloads, so every
//! allocation counted here is the core's (or the test pump's) own.

#[path = "common/counting_alloc.rs"]
mod counting_alloc;
use counting_alloc::allocs;

mod common;

use bytes::Bytes;
use common::mem_cluster::MemCluster;

static PAYLOAD: [u8; 128] = [7; 128];

/// Allocations per batch, averaged over `rounds` batches after warm-up
/// (with asynchronous storage writes if `async_writes`). Checks that every
/// batch is applied on all three nodes.
fn allocs_per_batch(batch: usize, rounds: u64, async_writes: bool) -> f64 {
    let payload = Bytes::from_static(&PAYLOAD);
    let mut c = MemCluster::with_mode(3, async_writes);
    c.elect_first();
    for _ in 0..16 {
        c.propose_batch(batch, &payload);
    }
    let before = allocs();
    for _ in 0..rounds {
        let last = c.propose_batch(batch, &payload);
        assert!(c.applied.iter().all(|&a| a >= last), "batch not applied");
    }
    (allocs() - before) as f64 / rounds as f64
}

#[test]
fn allocations_do_not_grow_with_entries_per_batch() {
    assert_no_allocation_per_entry(false);
}

#[test]
fn allocations_do_not_grow_with_entries_per_batch_with_async_writes() {
    assert_no_allocation_per_entry(true);
}

fn assert_no_allocation_per_entry(async_writes: bool) {
    let one = allocs_per_batch(1, 256, async_writes);
    let many = allocs_per_batch(64, 256, async_writes);
    let per_extra_entry = (many - one) / 63.0;
    let mode = if async_writes { "async" } else { "sync" };
    println!(
        "allocations per batch ({mode}): {one:.1} (1 entry), {many:.1} (64 entries); \
         {per_extra_entry:.3} per extra entry"
    );
    // Amortized Vec growth may add a few allocations per batch; one per
    // entry (or more) would show up as >= 1.0 here.
    assert!(
        per_extra_entry < 0.25,
        "the core allocates per entry: {per_extra_entry:.3} allocations per extra entry"
    );
}
