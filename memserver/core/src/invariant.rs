//! The invariant checker (host only, `sim` feature), run by the tests after
//! every operation, over any [`HostBackend`]: every registered space
//! translates every kernel-region address exactly as the canonical table
//! does (same frame, size, rights) and maps nothing there the canonical
//! table lacks; it holds exactly the canonical structures; spaces not
//! registered hold nothing of the region (the backend's part,
//! [`HostBackend::check_spaces`]; for the simulator [`check_sim_spaces`]);
//! the server's frame tally matches the live frames; the allocators' records
//! tile their areas and add up to the clients' usage; every CPU's unit of
//! every percpu allocation, at the address the clients' layout gives, is
//! mapped writable and shares no byte with another; no descriptor frame
//! holds descriptors of two clients' vmemmap ranges. Also the [`snapshot`]
//! of the state a failed operation must leave exactly as it was. A broken
//! invariant is a [`Violation`] naming what disagrees with what (the
//! backend's part of it, its own typed violation: for the simulator a
//! [`SimViolation`]).

use core::fmt;
use std::collections::BTreeMap;
use std::vec::Vec;

use crate::accounting::{Census, ClientUsage, FrameTally};
use crate::backend::{OpCounts, Rights};
use crate::host_backend::HostBackend;
use crate::ids::SpaceId;
use crate::layout::{Area, Level, DESCRIPTOR_SIZE, PAGE_SIZE};
use crate::percpu::PercpuAlloc;
use crate::populate::Leaf;
use crate::server::MemServer;
use crate::sim::{Sim, SimMapping, SimVSpace};
use crate::vmalloc::{Backing, VmArea};
use crate::vmemmap::VmemmapRange;

/// A broken invariant: what disagrees, where, what was expected and what
/// was found. `S` is the backend's own part ([`HostBackend::SpaceViolation`]).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Violation<S> {
    /// The registered spaces disagree with the canonical table (the
    /// backend's part of the invariant).
    Spaces(S),
    /// A percpu allocation has no address on a CPU.
    PercpuAddress {
        /// The allocation.
        alloc: PercpuAlloc,
        /// The CPU.
        cpu: u16,
    },
    /// A page of a percpu allocation's unit is not mapped writable.
    PercpuUnmapped {
        /// The allocation.
        alloc: PercpuAlloc,
        /// The CPU whose unit it is.
        cpu: u16,
        /// The page.
        page: u64,
    },
    /// Two percpu units `[start, end)` share bytes.
    PercpuOverlap {
        /// The lower unit.
        first: (u64, u64),
        /// The unit it overlaps.
        second: (u64, u64),
    },
    /// Two clients' vmemmap ranges have descriptors in one frame.
    SharedDescriptorFrame {
        /// The lower range.
        first: VmemmapRange,
        /// The next range, of another client.
        second: VmemmapRange,
    },
    /// A vmalloc area is not mapped whole, or its guard page is mapped.
    AreaMapping {
        /// The area.
        area: VmArea,
        /// Whether every page of it is mapped.
        mapped: bool,
        /// Whether its guard page is unmapped.
        guard_unmapped: bool,
    },
    /// The vmalloc areas and free ranges do not tile the area: a piece
    /// should start at `expected` and the next starts at `found` (at the
    /// end, `found` is where the tiling stops).
    VmallocTiling {
        /// Where the next piece should start.
        expected: u64,
        /// Where it starts.
        found: u64,
    },
    /// The clients' recorded usage (bytes, by badge) is not what they hold.
    ClientUsage {
        /// What they hold.
        expected: BTreeMap<u64, u64>,
        /// What is recorded.
        found: BTreeMap<u64, u64>,
    },
}

/// How the simulator's spaces disagree with the canonical table.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum SimViolation {
    /// A registered space has no handle in the registry.
    NoHandle {
        /// The space.
        space: SpaceId,
    },
    /// A registered space maps `addr` otherwise than the canonical table
    /// (`None`: nothing mapped there); the first such address.
    Translation {
        /// The space.
        space: SpaceId,
        /// The address.
        addr: u64,
        /// The canonical table's mapping.
        expected: Option<SimMapping>,
        /// The space's mapping.
        found: Option<SimMapping>,
    },
    /// A registered space holds another number of region structures than
    /// the canonical table.
    StructureCount {
        /// The space.
        space: SpaceId,
        /// The canonical table's.
        expected: usize,
        /// The space's.
        found: usize,
    },
    /// A canonical structure is not installed in a registered space (or
    /// the table records no handle for it there).
    MissingStructure {
        /// The space.
        space: SpaceId,
        /// The structure's level.
        level: Level,
        /// The first address it covers.
        base: u64,
    },
    /// A VSpace that is not registered still holds part of the region.
    Unregistered {
        /// The VSpace.
        vspace: SimVSpace,
    },
    /// The server's frame tally is not the live frames.
    FrameTally {
        /// The tally.
        expected: FrameTally,
        /// The simulator's live frames.
        found: FrameTally,
    },
    /// Structures are alive outside the registered spaces' replicas.
    LiveStructures {
        /// The canonical structures times the registered spaces.
        expected: usize,
        /// The simulator's live structures.
        found: usize,
    },
}

impl<S: fmt::Debug> fmt::Display for Violation<S> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(self, f)
    }
}

impl fmt::Display for SimViolation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(self, f)
    }
}

/// Check every invariant; the error says which one broke and where.
pub fn check<B: HostBackend>(server: &MemServer<B>) -> Result<(), Violation<B::SpaceViolation>> {
    B::check_spaces(server).map_err(Violation::Spaces)?;
    check_allocators(server)
}

/// Everything the server's state consists of, apart from the backend's op
/// counters: compared before and after an operation that failed (`F` and
/// `H`: the backend's frame and [`HostBackend::Held`]).
#[derive(Debug, PartialEq)]
pub struct Snapshot<F, H> {
    census: Census,
    leaves: Vec<Leaf<F>>,
    areas: Vec<VmArea>,
    free: Vec<(u64, u64)>,
    ranges: Vec<VmemmapRange>,
    percpu: Vec<PercpuAlloc>,
    clients: Vec<ClientUsage>,
    backend: H,
}

/// The server's state now, the paging structures a purge kept counted
/// as spare objects.
pub fn snapshot<B: HostBackend>(server: &MemServer<B>) -> Snapshot<B::Frame, B::Held> {
    let mut census = server.census();
    census.ops = OpCounts::new();
    // Structures a purge kept are spare objects: a state that differs
    // from another by them alone holds the same.
    let kept = core::mem::take(&mut census.kept_structures);
    census.space_structures -= kept;
    census.canonical_structures -= server.region().canonical().kept_structure_count();
    Snapshot {
        census,
        leaves: server.region().canonical().leaves().copied().collect(),
        areas: server.vmalloc_areas().collect(),
        free: server.vmalloc_free_ranges().collect(),
        ranges: server.vmemmap_ranges().collect(),
        percpu: server.percpu_allocations().collect(),
        clients: server.clients().to_vec(),
        backend: B::sparing(server.region().backend().held(), kept),
    }
}

/// The first address where the mappings `found` and `expected` (each in
/// address order) differ, with what each has there: `(address, expected,
/// found)`. Backends' parts of the invariant use it for their mappings.
pub fn first_difference<M: Copy + PartialEq>(
    found: &[(u64, M)],
    expected: &[(u64, M)],
) -> Option<(u64, Option<M>, Option<M>)> {
    let (mut f, mut e) = (found.iter().peekable(), expected.iter().peekable());
    loop {
        match (f.peek().copied(), e.peek().copied()) {
            (None, None) => return None,
            (Some(&(at, m)), None) => return Some((at, None, Some(m))),
            (None, Some(&(at, m))) => return Some((at, Some(m), None)),
            (Some(&(a, fm)), Some(&(b, em))) if a == b && fm == em => {
                f.next();
                e.next();
            }
            (Some(&(a, fm)), Some(&(b, em))) if a == b => return Some((a, Some(em), Some(fm))),
            (Some(&(a, fm)), Some(&(b, _))) if a < b => return Some((a, None, Some(fm))),
            (Some(_), Some(&(b, em))) => return Some((b, Some(em), None)),
        }
    }
}

/// [`HostBackend::check_spaces`] of the simulator.
pub fn check_sim_spaces(server: &MemServer<Sim>) -> Result<(), SimViolation> {
    let region = server.region();
    let sim = region.backend();
    let canonical = region.canonical();
    let expected: Vec<(u64, SimMapping)> = canonical
        .leaves()
        .map(|l| (l.addr.get(), SimMapping { frame: l.frame, size: l.size, writable: l.rights == Rights::ReadWrite }))
        .collect();
    let mut registered = Vec::new();
    for id in region.space_ids() {
        let vspace = region.vspace(id).ok_or(SimViolation::NoHandle { space: id })?;
        registered.push(vspace);
        let found = sim.region_leaves(vspace);
        if let Some((addr, expected, found)) = first_difference(&found, &expected) {
            return Err(SimViolation::Translation { space: id, addr, expected, found });
        }
        let (expected, found) = (canonical.structure_count(), sim.structure_count(vspace));
        if found != expected {
            return Err(SimViolation::StructureCount { space: id, expected, found });
        }
        for s in canonical.structures() {
            let held = s.replica(id).is_some();
            if !held || !sim.has_structure(vspace, s.level, s.base) {
                return Err(SimViolation::MissingStructure { space: id, level: s.level, base: s.base });
            }
        }
    }
    for vspace in sim.vspaces().filter(|v| !registered.contains(v)) {
        if !sim.region_leaves(vspace).is_empty() || sim.structure_count(vspace) != 0 {
            return Err(SimViolation::Unregistered { vspace });
        }
    }
    let frames = region.frames();
    if sim.live_frames() != frames {
        return Err(SimViolation::FrameTally { expected: frames, found: sim.live_frames() });
    }
    let expected = canonical.structure_count() * registered.len();
    if sim.live_structures() != expected {
        return Err(SimViolation::LiveStructures { expected, found: sim.live_structures() });
    }
    Ok(())
}

/// Every unit of every percpu allocation, where the layout clients learn
/// puts it, is mapped writable, and no two units share a byte.
fn check_percpu_units<B: HostBackend, S>(server: &MemServer<B>) -> Result<(), Violation<S>> {
    let layout = server.percpu_layout();
    let mut units = Vec::new();
    for p in server.percpu_allocations() {
        for cpu in 0..layout.cpus {
            let addr = layout.address(p.offset.get(), cpu).ok_or(Violation::PercpuAddress { alloc: p, cpu })?;
            let end = addr + p.size;
            let writable = |page: &u64| server.translate(*page).is_some_and(|l| l.rights == Rights::ReadWrite);
            let mut pages = (addr / PAGE_SIZE..end.div_ceil(PAGE_SIZE)).map(|n| n * PAGE_SIZE);
            if let Some(page) = pages.find(|page| !writable(page)) {
                return Err(Violation::PercpuUnmapped { alloc: p, cpu, page });
            }
            units.push((addr, end));
        }
    }
    units.sort_unstable();
    match units.iter().zip(units.iter().skip(1)).find(|(unit, next)| unit.1 > next.0) {
        Some((&first, &second)) => Err(Violation::PercpuOverlap { first, second }),
        None => Ok(()),
    }
}

/// No descriptor frame holds descriptors of two clients' vmemmap ranges
/// (ranges are in pfn order and disjoint, so only neighbours can share).
fn check_descriptor_frames<B: HostBackend, S>(server: &MemServer<B>) -> Result<(), Violation<S>> {
    let ranges: Vec<VmemmapRange> = server.vmemmap_ranges().collect();
    let frame = |pfn: u64| pfn * DESCRIPTOR_SIZE / PAGE_SIZE;
    let shared = |(r, next): &(&VmemmapRange, &VmemmapRange)| {
        r.owner != next.owner && frame(r.start.get() + r.pages - 1) == frame(next.start.get())
    };
    match ranges.iter().zip(ranges.iter().skip(1)).find(shared) {
        Some((&first, &second)) => Err(Violation::SharedDescriptorFrame { first, second }),
        None => Ok(()),
    }
}

fn check_allocators<B: HostBackend, S>(server: &MemServer<B>) -> Result<(), Violation<S>> {
    // vmalloc: areas and free ranges tile the area exactly, in order.
    let mut pieces: Vec<(u64, u64)> = server.vmalloc_free_ranges().collect();
    let mut usage: BTreeMap<u64, u64> = BTreeMap::new();
    for a in server.vmalloc_areas() {
        let page = match a.backing {
            Backing::Frames(size) => size.bytes(),
            Backing::Vmap => PAGE_SIZE,
        };
        pieces.push((a.start.get(), a.size + a.guard));
        let mapped = (0..a.size / page).all(|i| server.translate(a.start.get() + i * page).is_some());
        // The first and last guard pages (each page between is in no other piece).
        let guard_pages = [a.size, a.size + a.guard - PAGE_SIZE].map(|at| a.start.get() + at);
        let guard_unmapped = a.guard == 0 || guard_pages.iter().all(|&at| server.translate(at).is_none());
        if !mapped || !guard_unmapped {
            return Err(Violation::AreaMapping { area: a, mapped, guard_unmapped });
        }
        // Freed areas stay charged until the purge, guard pages beyond the first too.
        *usage.entry(a.owner.0).or_default() += a.size + a.guard.saturating_sub(PAGE_SIZE);
    }
    pieces.sort_unstable();
    let mut at = Area::Vmalloc.start();
    for (start, len) in pieces {
        if start != at {
            return Err(Violation::VmallocTiling { expected: at, found: start });
        }
        at = start + len;
    }
    if at != Area::Vmalloc.end() {
        return Err(Violation::VmallocTiling { expected: Area::Vmalloc.end(), found: at });
    }
    for r in server.vmemmap_ranges() {
        *usage.entry(r.owner.0).or_default() += r.pages * DESCRIPTOR_SIZE;
    }
    for p in server.percpu_allocations() {
        *usage.entry(p.owner.0).or_default() += p.size * server.cpus() as u64;
    }
    check_percpu_units(server)?;
    check_descriptor_frames(server)?;
    let recorded: BTreeMap<u64, u64> =
        server.clients().iter().filter(|c| c.used > 0).map(|c| (c.badge.0, c.used)).collect();
    usage.retain(|_, v| *v > 0);
    if recorded != usage {
        return Err(Violation::ClientUsage { expected: usage, found: recorded });
    }
    Ok(())
}
