//! Helpers shared by the scenario tests: a server over the simulated MMU
//! and the invariant check after each step.

// Each test binary uses its own subset of these helpers.
#![allow(dead_code, reason = "each test binary uses a different subset")]

use memserver::sim::{Sim, SimFrame};
use memserver::{
    invariant, Badge, ClientUsage, Config, Leaf, MemServer, OpCounts, PercpuAlloc, Stats, VmArea, VmemmapRange,
};

/// The administrator (root task) badge.
pub const ADMIN: Badge = Badge(0);

/// A server over a fresh simulation, on the heap.
pub fn server(cpus: usize) -> Box<MemServer<Sim>> {
    let mut s = Box::new(MemServer::new(Sim::new(), Config { admin: ADMIN, cpus }));
    s.start().expect("server starts");
    s
}

/// Panic with the broken invariant, if any.
#[track_caller]
pub fn check(s: &MemServer<Sim>) {
    if let Err(e) = invariant::check(s) {
        panic!("invariant broken: {e}");
    }
}

/// Everything the server's state consists of, apart from the backend's op
/// counters: used to compare before and after a failed operation.
#[derive(Debug, PartialEq)]
pub struct Snapshot {
    stats: Stats,
    leaves: Vec<Leaf<SimFrame>>,
    areas: Vec<VmArea>,
    free: Vec<(u64, u64)>,
    ranges: Vec<VmemmapRange>,
    percpu: Vec<PercpuAlloc>,
    clients: Vec<ClientUsage>,
    live_frames: (usize, usize),
    live_structures: usize,
}

pub fn snapshot(s: &MemServer<Sim>) -> Snapshot {
    let mut stats = s.stats();
    stats.ops = OpCounts::ZERO;
    Snapshot {
        stats,
        leaves: s.region().canonical().leaves().copied().collect(),
        areas: s.vmalloc_areas().collect(),
        free: s.vmalloc_free_ranges().collect(),
        ranges: s.vmemmap_ranges().collect(),
        percpu: s.percpu_allocations().collect(),
        clients: s.clients().to_vec(),
        live_frames: s.region().backend().live_frames(),
        live_structures: s.region().backend().live_structures(),
    }
}
