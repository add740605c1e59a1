//! The seL4 invocations the memory server makes, counted by kind, so every
//! request's cost can be compared with its lower bound; the server reports
//! them in its statistics.

use postcard::experimental::max_size::MaxSize;
use serde::{Deserialize, Serialize};

/// Kinds of seL4 invocation the server makes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Invocation {
    /// Untyped Retype.
    Retype,
    /// CNode Copy (a frame capability for one space).
    Copy,
    /// CNode Delete (of an unmapped copy or an unused object: in seL4 5.0.0
    /// deleting a copy does not unmap it).
    Delete,
    /// CNode Revoke (every unmapped copy of a frame at once).
    Revoke,
    /// PDPT Map.
    MapPdpt,
    /// PageDirectory Map.
    MapPd,
    /// PageTable Map.
    MapPt,
    /// Page Map.
    MapPage,
    /// Page Unmap.
    UnmapPage,
    /// PDPT, PageDirectory or PageTable Unmap.
    UnmapStructure,
    /// Page GetAddress.
    GetAddress,
}

impl Invocation {
    /// Every kind, in counter order.
    pub const ALL: [Invocation; 11] = [
        Invocation::Retype,
        Invocation::Copy,
        Invocation::Delete,
        Invocation::Revoke,
        Invocation::MapPdpt,
        Invocation::MapPd,
        Invocation::MapPt,
        Invocation::MapPage,
        Invocation::UnmapPage,
        Invocation::UnmapStructure,
        Invocation::GetAddress,
    ];
}

/// Invocations made, by kind (in [`Invocation::ALL`] order).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize, MaxSize)]
pub struct InvocationCounts([u64; Invocation::ALL.len()]);

impl InvocationCounts {
    /// No invocation yet.
    pub const fn new() -> InvocationCounts {
        InvocationCounts([0; Invocation::ALL.len()])
    }

    /// Counts one invocation of `kind`.
    pub fn record(&mut self, kind: Invocation) {
        if let Some(count) = self.0.get_mut(kind as usize) {
            *count += 1;
        }
    }

    /// Invocations of `kind`.
    pub fn get(&self, kind: Invocation) -> u64 {
        self.0.get(kind as usize).copied().unwrap_or(0)
    }

    /// All invocations.
    pub fn total(&self) -> u64 {
        self.0.iter().sum()
    }

    /// The invocations counted since `earlier` was taken.
    pub fn since(&self, earlier: &InvocationCounts) -> InvocationCounts {
        let mut out = *self;
        for (o, e) in out.0.iter_mut().zip(earlier.0) {
            *o = o.saturating_sub(e);
        }
        out
    }
}
