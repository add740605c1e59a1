//! Helpers shared by the scenario tests: a server over the simulated MMU
//! and the invariant check after each step; the snapshot of the state a
//! failed operation must leave unchanged; a dispatcher driven through the
//! wire protocol ([`dispatcher`]).

// Each test binary uses its own subset of these helpers.
#![allow(dead_code, unused_imports, reason = "each test binary uses a different subset")]

pub mod dispatcher;

pub use memserver_core::invariant::snapshot;
use memserver_core::sim::Sim;
use memserver_core::{invariant, Badge, Config, MemServer};

/// The administrator (root task) badge.
pub const ADMIN: Badge = Badge(0);

/// A server over a fresh simulation, on the heap.
pub fn server(cpus: usize) -> Box<MemServer<Sim>> {
    let mut s = Box::new(MemServer::new(Sim::new(), Config { admin: ADMIN, cpus }));
    s.start(()).expect("server starts");
    s
}

/// Panic with the broken invariant, if any.
#[track_caller]
pub fn check(s: &MemServer<Sim>) {
    if let Err(e) = invariant::check(s) {
        panic!("invariant broken: {e}");
    }
}
