//! The seL4 invocations the memory server makes, counted by kind, so every
//! request's cost can be compared with its lower bound; the server reports
//! them in its statistics.

use crate::counts::{Counts, Kind};
use strum::VariantArray;

/// Kinds of seL4 invocation the server makes (every kind, in counter
/// order: `Invocation::VARIANTS`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, VariantArray)]
pub enum Invocation {
    /// Untyped Retype.
    Retype,
    /// CNode Copy (a frame capability for one space).
    Copy,
    /// CNode Delete (of an unmapped copy or an unused object: in seL4 5.0.0
    /// deleting a copy does not unmap it).
    Delete,
    /// CNode Revoke (of a granule of untyped memory, whose objects are all
    /// unused: it deletes them and every copy of their capabilities).
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
    /// Page Remap (new rights for a mapping).
    RemapPage,
}

impl Kind for Invocation {
    fn index(self) -> usize {
        self as usize
    }
}

/// Invocations made, by kind.
pub type InvocationCounts = Counts<Invocation, { Invocation::VARIANTS.len() }>;
