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
//! of the state a failed operation must leave exactly as it was.

use std::collections::BTreeMap;

use crate::accounting::{ClientUsage, Stats};
use crate::backend::{OpCounts, Rights};
use crate::host_backend::HostBackend;
use crate::layout::{Area, DESCRIPTOR_SIZE, PAGE_SIZE};
use crate::percpu::PercpuAlloc;
use crate::populate::Leaf;
use crate::server::MemServer;
use crate::sim::{Sim, SimMapping};
use crate::vmalloc::{Backing, VmArea};
use crate::vmemmap::VmemmapRange;

/// Check every invariant; the error says which one broke and where.
pub fn check<B: HostBackend>(server: &MemServer<B>) -> Result<(), String> {
    B::check_spaces(server)?;
    check_allocators(server)
}

/// Everything the server's state consists of, apart from the backend's op
/// counters: compared before and after an operation that failed (`F` and
/// `H`: the backend's frame and [`HostBackend::Held`]).
#[derive(Debug, PartialEq)]
pub struct Snapshot<F, H> {
    stats: Stats,
    leaves: Vec<Leaf<F>>,
    areas: Vec<VmArea>,
    free: Vec<(u64, u64)>,
    ranges: Vec<VmemmapRange>,
    percpu: Vec<PercpuAlloc>,
    clients: Vec<ClientUsage>,
    backend: H,
}

/// The server's state now.
pub fn snapshot<B: HostBackend>(server: &MemServer<B>) -> Snapshot<B::Frame, B::Held> {
    let mut stats = server.stats();
    stats.ops = OpCounts::new();
    Snapshot {
        stats,
        leaves: server.region().canonical().leaves().copied().collect(),
        areas: server.vmalloc_areas().collect(),
        free: server.vmalloc_free_ranges().collect(),
        ranges: server.vmemmap_ranges().collect(),
        percpu: server.percpu_allocations().collect(),
        clients: server.clients().to_vec(),
        backend: server.region().backend().held(),
    }
}

/// [`HostBackend::check_spaces`] of the simulator.
pub fn check_sim_spaces(server: &MemServer<Sim>) -> Result<(), String> {
    let region = server.region();
    let sim = region.backend();
    let canonical = region.canonical();
    let expected: Vec<(u64, SimMapping)> = canonical
        .leaves()
        .map(|l| (l.addr.get(), SimMapping { frame: l.frame, size: l.size, writable: l.rights == Rights::ReadWrite }))
        .collect();
    let mut registered_mask = 0u32;
    let mut registered = Vec::new();
    for id in region.space_ids() {
        let vspace = region.vspace(id).ok_or("registered space without a handle")?;
        registered_mask |= 1 << id.index();
        registered.push(vspace);
        let actual = sim.region_leaves(vspace);
        if actual != expected {
            let diff = actual.iter().zip(&expected).find(|(a, e)| a != e);
            return Err(format!(
                "space {id:?}: {} leaves vs {} canonical; first difference {diff:?}",
                actual.len(),
                expected.len()
            ));
        }
        if sim.structure_count(vspace) != canonical.structure_count() {
            return Err(format!(
                "space {id:?}: {} structures vs {}",
                sim.structure_count(vspace),
                canonical.structure_count()
            ));
        }
        for s in canonical.structures() {
            let held = s.replicas.get(id.index()).copied().flatten().is_some();
            if !held || !sim.has_structure(vspace, s.level, s.base) {
                return Err(format!("space {id:?} lacks {:?} at {:#x}", s.level, s.base));
            }
        }
    }
    for v in sim.vspaces().filter(|v| !registered.contains(v)) {
        if !sim.region_leaves(v).is_empty() || sim.structure_count(v) != 0 {
            return Err(format!("unregistered {v:?} still holds part of the region"));
        }
    }
    if let Some(l) = canonical.leaves().find(|l| l.mapped_mask() != registered_mask) {
        return Err(format!(
            "leaf at {:?} installed in {:#x}, registered {registered_mask:#x}",
            l.addr,
            l.mapped_mask()
        ));
    }
    let frames = region.frames();
    if sim.live_frames() != (frames.small as usize, frames.large as usize) {
        return Err(format!("live frames {:?} vs tally {frames:?}", sim.live_frames()));
    }
    if sim.live_structures() != canonical.structure_count() * registered.len() {
        return Err("structures alive outside the registered spaces".into());
    }
    Ok(())
}

/// Every unit of every percpu allocation, where the layout clients learn
/// puts it, is mapped writable, and no two units share a byte.
fn check_percpu_units<B: HostBackend>(server: &MemServer<B>) -> Result<(), String> {
    let layout = server.percpu_layout();
    let mut units = Vec::new();
    for p in server.percpu_allocations() {
        for cpu in 0..layout.cpus {
            let addr = layout.address(p.offset.get(), cpu).ok_or_else(|| format!("{p:?}: no address on CPU {cpu}"))?;
            let end = addr + p.size;
            let writable = |page: &u64| server.translate(*page).is_some_and(|l| l.rights == Rights::ReadWrite);
            let mut pages = (addr / PAGE_SIZE..end.div_ceil(PAGE_SIZE)).map(|n| n * PAGE_SIZE);
            if let Some(page) = pages.find(|page| !writable(page)) {
                return Err(format!("{p:?} on CPU {cpu}: page {page:#x} of {addr:#x} is not mapped writable"));
            }
            units.push((addr, end));
        }
    }
    units.sort_unstable();
    match units.iter().zip(units.iter().skip(1)).find(|(unit, next)| unit.1 > next.0) {
        Some((unit, next)) => Err(format!("percpu units {unit:#x?} and {next:#x?} overlap")),
        None => Ok(()),
    }
}

/// No descriptor frame holds descriptors of two clients' vmemmap ranges
/// (ranges are in pfn order and disjoint, so only neighbours can share).
fn check_descriptor_frames<B: HostBackend>(server: &MemServer<B>) -> Result<(), String> {
    let ranges: Vec<VmemmapRange> = server.vmemmap_ranges().collect();
    let frame = |pfn: u64| pfn * DESCRIPTOR_SIZE / PAGE_SIZE;
    let shared = |(r, next): &(&VmemmapRange, &VmemmapRange)| {
        r.owner != next.owner && frame(r.start.get() + r.pages - 1) == frame(next.start.get())
    };
    match ranges.iter().zip(ranges.iter().skip(1)).find(shared) {
        Some((r, next)) => Err(format!("ranges {r:?} and {next:?} of two clients share a descriptor frame")),
        None => Ok(()),
    }
}

fn check_allocators<B: HostBackend>(server: &MemServer<B>) -> Result<(), String> {
    // vmalloc: areas and free ranges tile the area exactly, in order.
    let mut pieces: Vec<(u64, u64)> = server.vmalloc_free_ranges().collect();
    let mut usage: BTreeMap<u64, u64> = BTreeMap::new();
    for a in server.vmalloc_areas() {
        let page = match a.backing {
            Backing::Frames(size) => size.bytes(),
            Backing::Vmap => PAGE_SIZE,
        };
        pieces.push((a.start.get(), a.size + PAGE_SIZE));
        let mapped = (0..a.size / page).all(|i| server.translate(a.start.get() + i * page).is_some());
        let guard = server.translate(a.start.get() + a.size).is_none();
        if !mapped || !guard {
            return Err(format!("area {a:?}: mapped {mapped}, guard unmapped {guard}"));
        }
        // Freed areas stay charged until the purge.
        *usage.entry(a.owner.0).or_default() += a.size;
    }
    pieces.sort_unstable();
    let mut at = Area::Vmalloc.start();
    for (start, len) in pieces {
        if start != at {
            return Err(format!("vmalloc tiling broken at {at:#x} (next piece at {start:#x})"));
        }
        at = start + len;
    }
    if at != Area::Vmalloc.end() {
        return Err(format!("vmalloc tiling ends at {at:#x}"));
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
        return Err(format!("client usage {recorded:?} vs holdings {usage:?}"));
    }
    Ok(())
}
