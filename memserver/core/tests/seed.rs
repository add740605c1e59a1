//! The seed regression (Linux: vmemmap_populate_compound_pages did not sync
//! a new top-level entry, so tasks other than init crashed on descriptors
//! past a 512 GiB boundary): a vmemmap range whose descriptors cross the
//! boundary between two top-level entries, populated through the
//! compound-optimised path (and, for contrast, the plain one and the one of
//! 2 MiB descriptor frames), with one space
//! registered before and one after. Every descriptor must translate in every
//! space exactly as in the canonical table.

mod common;

use common::{check, server, ADMIN};
use memserver_core::layout::{Area, PageSize, DESCRIPTOR_SIZE, LARGE_PAGE_SIZE, TOP_ENTRY_SPAN};
use memserver_core::{Badge, FrameKind, Level, Pfn, Rights, VmemmapOptions};

/// First pfn whose descriptor lies in the second top-level entry.
const BOUNDARY_PFN: u64 = TOP_ENTRY_SPAN / DESCRIPTOR_SIZE;

/// Populates the `pages` pfns centred on the boundary with `options`,
/// between two registrations, and checks every descriptor in both spaces.
fn populate_across_the_boundary_then_check(
    options: VmemmapOptions,
    pages: u64,
) -> Box<memserver_core::MemServer<memserver_core::sim::Sim>> {
    let mut s = server(2);
    let before = s.sim_hooks().new_vspace();
    s.register_space(&s.admin(ADMIN).expect("admin"), before).expect("register before");
    let start = BOUNDARY_PFN - pages / 2;
    s.vmemmap_populate(Badge(3), Pfn::new(start).unwrap(), pages, options).expect("populate");
    check(&s);
    let after = s.sim_hooks().new_vspace();
    s.register_space(&s.admin(ADMIN).expect("admin"), after).expect("register after");
    check(&s);
    let boundary = Area::Vmemmap.start() + TOP_ENTRY_SPAN;
    for vspace in [before, after] {
        assert!(s.region().backend().has_structure(vspace, Level::Pdpt, boundary), "top-level entry synced");
        for pfn in start..start + pages {
            let addr = Area::Vmemmap.start() + pfn * DESCRIPTOR_SIZE;
            let canonical = s.translate(addr).expect("canonical maps every descriptor");
            let seen = s.region().backend().translate(vspace, addr).expect("space maps every descriptor");
            assert_eq!((seen.frame, seen.size), (canonical.frame, canonical.size), "pfn {pfn:#x}");
            assert_eq!(seen.writable, canonical.rights == Rights::ReadWrite, "pfn {pfn:#x}");
        }
    }
    s
}

#[test]
fn seed_compound_vmemmap_across_a_top_level_boundary_is_synced_everywhere() {
    let s = populate_across_the_boundary_then_check(VmemmapOptions { huge: false, compound_order: Some(9) }, 2048);
    // Order 9: 512 descriptors = 8 frames per compound page, 2 of them private.
    let percpu_frames = 2 * memserver_core::limits::PERCPU_UNIT_SIZE / 4096;
    assert_eq!(s.census().frames.small, percpu_frames + 4 * 2);
    let vmemmap: Vec<_> = s.region().canonical().leaves().filter(|l| Area::Vmemmap.contains(l.addr.get())).collect();
    assert_eq!(vmemmap.len(), 4 * 8);
    assert_eq!(vmemmap.iter().filter(|l| l.kind == FrameKind::Owned).count(), 8);
    assert!(vmemmap.iter().filter(|l| l.kind == FrameKind::Alias).all(|l| l.rights == Rights::ReadOnly));
}

#[test]
fn seed_plain_vmemmap_across_a_top_level_boundary_is_synced_everywhere() {
    let s = populate_across_the_boundary_then_check(VmemmapOptions::default(), 2048);
    let vmemmap = s.region().canonical().leaves().filter(|l| Area::Vmemmap.contains(l.addr.get())).count();
    assert_eq!(vmemmap, 2048 * 64 / 4096);
}

/// The same on the 2 MiB path (Linux's `vmemmap_populate_hugepages`): the
/// descriptors of 32,768 pfns on each side of the boundary, one 2 MiB
/// frame each, the second the first page of its top-level entry.
#[test]
fn seed_huge_vmemmap_across_a_top_level_boundary_is_synced_everywhere() {
    let per_frame = LARGE_PAGE_SIZE / DESCRIPTOR_SIZE;
    let s = populate_across_the_boundary_then_check(VmemmapOptions { huge: true, compound_order: None }, 2 * per_frame);
    let vmemmap: Vec<_> = s.region().canonical().leaves().filter(|l| Area::Vmemmap.contains(l.addr.get())).collect();
    assert_eq!(vmemmap.len(), 2);
    assert!(vmemmap.iter().all(|l| l.size == PageSize::Large && l.kind == FrameKind::Owned));
    assert_eq!(vmemmap[1].addr.get(), Area::Vmemmap.start() + TOP_ENTRY_SPAN);
}
