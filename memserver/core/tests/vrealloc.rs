//! vrealloc over the wire (`Request::Vrealloc`): an area shrinks or grows
//! in place when the addresses after it are free (only the tail changes,
//! in every space), else moves, its frames (and so its contents) mapped at
//! the new place in every space before the old place is unmapped; bad
//! requests are refused with nothing changed. The invariant is checked
//! after every message.

mod common;

use common::dispatcher::{dispatcher, register, register_quota, send, vmalloc_with};
use common::snapshot;
use common::ADMIN;
use memserver_core::dispatch::Dispatcher;
use memserver_core::layout::{LARGE_PAGE_SIZE, PAGE_SIZE};
use memserver_core::sim::{Sim, SimFrame};
use memserver_core::{Area, Badge};
use memserver_protocol::{ErrorCode, Quota, Realloc, Reply, Request, VmallocOptions};

const A: Badge = Badge(0x100);
const B: Badge = Badge(0x101);

fn three_spaces() -> Box<Dispatcher<Sim>> {
    common::dispatcher::three_spaces(A, B)
}

fn vrealloc(d: &mut Dispatcher<Sim>, caller: Badge, addr: u64, size: u64) -> Result<Realloc, ErrorCode> {
    match send(d, caller, Request::Vrealloc { addr, size }, None) {
        Reply::Realloc(realloc) => Ok(realloc),
        Reply::Error(code) => Err(code),
        other => panic!("vrealloc: {other:?}"),
    }
}

/// The frame mapped at `addr` in every registered space, if it is the
/// same in all of them (`None` if unmapped anywhere or not the same).
fn frame_everywhere(d: &Dispatcher<Sim>, addr: u64) -> Option<SimFrame> {
    let region = d.server().region();
    let frames: Vec<Option<SimFrame>> = region
        .space_ids()
        .map(|id| region.backend().translate(region.vspace(id).expect("registered"), addr).map(|m| m.frame))
        .collect();
    frames.windows(2).all(|w| w[0] == w[1]).then(|| frames[0]).flatten()
}

/// Unmapped in every registered space.
fn unmapped_everywhere(d: &Dispatcher<Sim>, addr: u64) -> bool {
    let region = d.server().region();
    region.space_ids().all(|id| region.backend().translate(region.vspace(id).expect("registered"), addr).is_none())
}

fn frames_of(d: &Dispatcher<Sim>, addr: u64, pages: u64, page: u64) -> Vec<SimFrame> {
    (0..pages)
        .map(|i| frame_everywhere(d, addr + i * page).unwrap_or_else(|| panic!("page {i} not in every space")))
        .collect()
}

#[test]
fn a_shrink_unmaps_the_tail_everywhere_and_refunds_it() {
    let mut d = three_spaces();
    let addr = vmalloc_with(&mut d, A, 8 * PAGE_SIZE, VmallocOptions::DEFAULT);
    let kept = frames_of(&d, addr, 3, PAGE_SIZE);
    let (used, frames) = (d.server().usage(A).used, d.server().census().frames);
    assert_eq!(vrealloc(&mut d, A, addr, 3 * PAGE_SIZE - 100), Ok(Realloc { addr, moved: false }));
    assert_eq!(frames_of(&d, addr, 3, PAGE_SIZE), kept, "the kept pages keep their frames");
    assert!((3..8).all(|i| unmapped_everywhere(&d, addr + i * PAGE_SIZE)), "the tail is unmapped everywhere");
    assert_eq!(d.server().usage(A).used, used - 5 * PAGE_SIZE);
    assert_eq!(d.server().usage(A).objects.frames, 3);
    assert_eq!(d.server().census().frames.small, frames.small - 5, "the tail's frames are freed");
    // The addresses after the new guard page are free again.
    let next = vmalloc_with(&mut d, B, PAGE_SIZE, VmallocOptions::DEFAULT);
    assert_eq!(next, addr + 4 * PAGE_SIZE);
}

#[test]
fn a_growth_with_free_addresses_after_maps_only_the_tail() {
    let mut d = three_spaces();
    let addr = vmalloc_with(&mut d, A, 2 * PAGE_SIZE, VmallocOptions::DEFAULT);
    let kept = frames_of(&d, addr, 2, PAGE_SIZE);
    // Across a page table boundary: 600 pages.
    assert_eq!(vrealloc(&mut d, A, addr, 600 * PAGE_SIZE), Ok(Realloc { addr, moved: false }));
    let grown = frames_of(&d, addr, 600, PAGE_SIZE);
    assert_eq!(grown[..2], kept[..], "the first pages keep their frames");
    assert!(unmapped_everywhere(&d, addr + 600 * PAGE_SIZE), "a guard page after the new end");
    assert_eq!(d.server().usage(A).used, 600 * PAGE_SIZE);
    assert_eq!(d.server().usage(A).objects.frames, 600);
}

#[test]
fn a_growth_blocked_by_a_neighbour_moves_the_frames_and_keeps_the_alignment() {
    let mut d = three_spaces();
    let align = 1 << 20;
    let addr = vmalloc_with(&mut d, A, 4 * PAGE_SIZE, VmallocOptions::aligned(align));
    let neighbour = vmalloc_with(&mut d, B, PAGE_SIZE, VmallocOptions::DEFAULT);
    assert_eq!(neighbour, addr + 5 * PAGE_SIZE, "right after the guard page");
    let (old, theirs) = (frames_of(&d, addr, 4, PAGE_SIZE), frame_everywhere(&d, neighbour));
    let moved = vrealloc(&mut d, A, addr, 10 * PAGE_SIZE).expect("vrealloc");
    assert!(moved.moved && moved.addr != addr);
    assert_eq!(moved.addr % align, 0, "the new place has the area's alignment");
    assert_eq!(frames_of(&d, moved.addr, 4, PAGE_SIZE), old, "the contents moved with their frames");
    assert!(frame_everywhere(&d, moved.addr + 9 * PAGE_SIZE).is_some(), "the new tail is mapped everywhere");
    assert!((0..4).all(|i| unmapped_everywhere(&d, addr + i * PAGE_SIZE)), "the old place is unmapped everywhere");
    assert_eq!(frame_everywhere(&d, neighbour), theirs, "the neighbour is untouched");
    assert_eq!(d.server().usage(A).objects.frames, 10);
    assert_eq!(send(&mut d, A, Request::Vfree { addr }, None), Reply::Error(ErrorCode::NotFound), "gone from there");
    assert_eq!(send(&mut d, A, Request::Vfree { addr: moved.addr }, None), Reply::Done);
}

#[test]
fn large_page_areas_grow_and_move_in_large_pages() {
    let mut d = three_spaces();
    let large = VmallocOptions { large_pages: true, ..VmallocOptions::DEFAULT };
    let addr = vmalloc_with(&mut d, A, 2 * LARGE_PAGE_SIZE, large);
    let old = frames_of(&d, addr, 2, LARGE_PAGE_SIZE);
    let grown = vrealloc(&mut d, A, addr, 3 * LARGE_PAGE_SIZE).expect("grow");
    assert!(!grown.moved);
    let _blocker = vmalloc_with(&mut d, B, PAGE_SIZE, VmallocOptions::DEFAULT);
    let moved = vrealloc(&mut d, A, addr, 4 * LARGE_PAGE_SIZE + 1).expect("move");
    assert!(moved.moved && moved.addr.is_multiple_of(LARGE_PAGE_SIZE));
    assert_eq!(frames_of(&d, moved.addr, 2, LARGE_PAGE_SIZE), old);
    assert_eq!(frames_of(&d, moved.addr, 5, LARGE_PAGE_SIZE).len(), 5, "rounded up to 2 MiB pages");
    assert!(d.server().translate(moved.addr).is_some_and(|leaf| leaf.size.bytes() == LARGE_PAGE_SIZE));
}

/// 4 KiB pages freed and purged keep their page tables; a 2 MiB area
/// placed, grown and moved over them takes their place each time.
#[test]
fn large_page_areas_grow_and_move_over_the_page_tables_a_purge_kept() {
    let mut d = three_spaces();
    let small = vmalloc_with(&mut d, A, 16 * LARGE_PAGE_SIZE, VmallocOptions::aligned(LARGE_PAGE_SIZE));
    assert_eq!(send(&mut d, A, Request::Vfree { addr: small }, None), Reply::Done);
    assert_eq!(send(&mut d, ADMIN, Request::Purge, None), Reply::Done);
    let kept = d.server().census().kept_structures;
    assert!(kept >= 3 * 16, "16 page tables in each of the 3 spaces: {kept}");
    let large = VmallocOptions { large_pages: true, ..VmallocOptions::DEFAULT };
    let addr = vmalloc_with(&mut d, A, 2 * LARGE_PAGE_SIZE, large);
    assert_eq!(addr, small, "the lowest free addresses, where the page tables were kept");
    assert!(!vrealloc(&mut d, A, addr, 4 * LARGE_PAGE_SIZE).expect("grow").moved);
    let _blocker = vmalloc_with(&mut d, B, PAGE_SIZE, VmallocOptions::DEFAULT);
    let moved = vrealloc(&mut d, A, addr, 8 * LARGE_PAGE_SIZE).expect("move");
    assert!(moved.moved && moved.addr < small + 16 * LARGE_PAGE_SIZE, "into the kept range: {moved:?}");
    for page in 0..8 {
        let leaf = d.server().translate(moved.addr + page * LARGE_PAGE_SIZE).expect("mapped");
        assert_eq!(leaf.size.bytes(), LARGE_PAGE_SIZE);
    }
    assert!(d.server().census().kept_structures < kept, "the page tables under the 2 MiB pages are gone");
}

#[test]
fn bad_vreallocs_are_refused_and_change_nothing() {
    let mut d = three_spaces();
    let addr = vmalloc_with(&mut d, A, 4 * PAGE_SIZE, VmallocOptions::DEFAULT);
    let freed = vmalloc_with(&mut d, A, PAGE_SIZE, VmallocOptions::DEFAULT);
    assert_eq!(send(&mut d, A, Request::Vfree { addr: freed }, None), Reply::Done);
    let before = snapshot(d.server());
    let bad = [
        (B, addr, 8 * PAGE_SIZE, ErrorCode::NotOwner),
        (A, addr, 0, ErrorCode::InvalidArgument),
        (A, addr, Area::Vmalloc.size() + 1, ErrorCode::InvalidArgument),
        (A, addr + PAGE_SIZE, 8 * PAGE_SIZE, ErrorCode::NotFound),
        (A, addr + 1, 8 * PAGE_SIZE, ErrorCode::InvalidArgument),
        (A, freed, 2 * PAGE_SIZE, ErrorCode::NotFound),
        (A, 0x1000, PAGE_SIZE, ErrorCode::InvalidArgument),
        (A, Area::Vmalloc.start() + (1 << 38), PAGE_SIZE, ErrorCode::NotFound),
    ];
    for (caller, at, size, code) in bad {
        assert_eq!(vrealloc(&mut d, caller, at, size), Err(code), "{caller:?} {at:#x} {size}");
        assert_eq!(snapshot(d.server()), before, "{caller:?} {at:#x} {size} changed the state");
    }
}

#[test]
fn a_growth_over_the_quota_is_refused_in_place_and_when_moving() {
    let mut d = dispatcher();
    register_quota(&mut d, A, Quota::bytes(16 * PAGE_SIZE));
    register(&mut d, B);
    let addr = vmalloc_with(&mut d, A, 4 * PAGE_SIZE, VmallocOptions::DEFAULT);
    let before = snapshot(d.server());
    assert_eq!(vrealloc(&mut d, A, addr, 17 * PAGE_SIZE), Err(ErrorCode::QuotaExceeded));
    assert_eq!(snapshot(d.server()), before);
    let _blocker = vmalloc_with(&mut d, B, PAGE_SIZE, VmallocOptions::DEFAULT);
    let before = snapshot(d.server());
    assert_eq!(vrealloc(&mut d, A, addr, 17 * PAGE_SIZE), Err(ErrorCode::QuotaExceeded));
    assert_eq!(snapshot(d.server()), before);
    assert!(vrealloc(&mut d, A, addr, 16 * PAGE_SIZE).is_ok_and(|r| r.moved), "the whole quota fits");
}

#[test]
fn a_vmap_area_cannot_be_resized() {
    let mut d = three_spaces();
    let frames: Vec<_> = (0..3).map(|_| d.sim_hooks().client_frame()).collect();
    let addr = d.server_mut().vmap(A, &frames, memserver_core::Rights::ReadWrite).expect("vmap").get();
    let before = snapshot(d.server());
    assert_eq!(vrealloc(&mut d, A, addr, 4 * PAGE_SIZE), Err(ErrorCode::InvalidArgument));
    assert_eq!(snapshot(d.server()), before);
}

#[test]
fn repeated_moves_keep_the_charge_to_what_the_area_holds() {
    let mut d = three_spaces();
    let mut addr = vmalloc_with(&mut d, A, PAGE_SIZE, VmallocOptions::DEFAULT);
    for round in 1..200u64 {
        let blocker = vmalloc_with(&mut d, B, PAGE_SIZE, VmallocOptions::DEFAULT);
        let r = vrealloc(&mut d, A, addr, (round + 1) * PAGE_SIZE).expect("vrealloc");
        addr = r.addr;
        assert_eq!(send(&mut d, B, Request::Vfree { addr: blocker }, None), Reply::Done);
    }
    let usage = d.server().usage(A);
    assert_eq!((usage.used, usage.objects.frames, usage.objects.areas), (200 * PAGE_SIZE, 200, 1));
    // Structures: no more than the area's page tables in the three spaces
    // (and the levels above them).
    assert!(usage.objects.structures <= 3 * 4, "{usage:?}");
}
