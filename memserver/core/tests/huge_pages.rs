//! 1 GiB pages over the wire: a vmalloc with `huge_pages` (or a plain
//! vmalloc with `large_pages`) whose size is a multiple of 1 GiB is mapped
//! with 1 GiB pages (each one leaf in a page directory pointer table of
//! every space, later ones included), 1 GiB aligned; where no 1 GiB frame
//! is to be had, with 2 MiB pages if `large_pages` is asked too. Other
//! sizes, or `large_pages` alone, keep 2 MiB or 4 KiB pages. Protect,
//! vrealloc, vfree and the purge handle them like any page, and a request
//! the caller's quota or the server's memory cannot hold is refused with
//! nothing changed. The invariant is checked after every message.

mod common;

use common::dispatcher::{dispatcher, register, register_quota, send, try_vmalloc_with as vmalloc};
use common::{snapshot, ADMIN};
use memserver_core::dispatch::Dispatcher;
use memserver_core::layout::{PageSize, LARGE_PAGE_SIZE, PAGE_SIZE};
use memserver_core::sim::{Sim, SimMapping};
use memserver_core::Badge;
use memserver_protocol::{ErrorCode, Protection, Quota, Realloc, Reply, Request, VmallocOptions};

const A: Badge = Badge(0x100);
const B: Badge = Badge(0x101);
const GIB: u64 = 1 << 30;
/// 1 GiB pages where the size allows, else 2 MiB ones.
const LARGE: VmallocOptions = VmallocOptions { large_pages: true, huge_pages: true, ..VmallocOptions::DEFAULT };
/// 2 MiB pages only.
const LARGE_ONLY: VmallocOptions = VmallocOptions { large_pages: true, ..VmallocOptions::DEFAULT };
/// 1 GiB pages only.
const HUGE_ONLY: VmallocOptions = VmallocOptions { huge_pages: true, ..VmallocOptions::DEFAULT };

/// Two spaces of `A` and one of `B`, each client with a quota of 8 GiB.
fn three_spaces() -> Box<Dispatcher<Sim>> {
    let mut d = dispatcher();
    for client in [A, A, B] {
        register_quota(&mut d, client, Quota::bytes_only(8 * GIB));
    }
    d
}

fn done(d: &mut Dispatcher<Sim>, caller: Badge, request: Request) {
    assert_eq!(send(d, caller, request, None), Reply::Done, "{request:?}");
}

/// The mapping at `addr` in every registered space, if it is the same in
/// all of them and in the canonical table.
fn mapping_everywhere(d: &Dispatcher<Sim>, addr: u64) -> Option<SimMapping> {
    let region = d.server().region();
    let mut mappings =
        region.space_ids().map(|id| region.backend().translate(region.vspace(id).expect("registered"), addr));
    let first = mappings.next()??;
    let canonical = d.server().translate(addr)?;
    let same = mappings.all(|m| m == Some(first)) && canonical.size == first.size;
    same.then_some(first)
}

/// Whether `addr` is unmapped in every registered space.
fn unmapped_everywhere(d: &Dispatcher<Sim>, addr: u64) -> bool {
    let region = d.server().region();
    region.space_ids().all(|id| region.backend().translate(region.vspace(id).expect("registered"), addr).is_none())
}

fn huge_frames(d: &Dispatcher<Sim>) -> u64 {
    d.server().census().frames.huge
}

#[test]
fn a_multiple_of_1_gib_maps_1_gib_pages_in_every_space() {
    let mut d = three_spaces();
    let structures = |d: &Dispatcher<Sim>| {
        let region = d.server().region();
        let count = |id| region.backend().structure_count(region.vspace(id).expect("registered"));
        region.space_ids().map(count).collect::<Vec<_>>()
    };
    let before = structures(&d);
    let addr = vmalloc(&mut d, A, 2 * GIB, LARGE).expect("2 GiB");
    assert_eq!(addr % GIB, 0, "{addr:#x}");
    assert_eq!(huge_frames(&d), 2);
    for offset in [0, GIB - PAGE_SIZE, GIB, 2 * GIB - 8] {
        let mapping = mapping_everywhere(&d, addr + offset).expect("mapped in every space");
        assert_eq!(mapping.size, PageSize::Huge, "at +{offset:#x}");
        assert!(mapping.writable);
    }
    assert_ne!(mapping_everywhere(&d, addr), mapping_everywhere(&d, addr + GIB), "two frames");
    // One leaf per 1 GiB, in a PDPT: no page directory or table under it.
    assert_eq!(structures(&d), before.iter().map(|n| n + 1).collect::<Vec<_>>());
    assert!(unmapped_everywhere(&d, addr + 2 * GIB), "a guard page follows");
    // A space registered later gets the same leaves.
    register(&mut d, B);
    assert_eq!(mapping_everywhere(&d, addr + GIB).map(|m| m.size), Some(PageSize::Huge));
    done(&mut d, A, Request::Vfree { addr });
    done(&mut d, ADMIN, Request::Purge);
    assert_eq!(huge_frames(&d), 0);
    assert!(unmapped_everywhere(&d, addr) && unmapped_everywhere(&d, addr + GIB));
}

#[test]
fn a_page_directory_a_purge_kept_gives_way_to_a_1_gib_page() {
    let mut d = three_spaces();
    let small = vmalloc(&mut d, A, PAGE_SIZE, VmallocOptions::DEFAULT).expect("a page");
    done(&mut d, A, Request::Vfree { addr: small });
    done(&mut d, ADMIN, Request::Purge);
    let addr = vmalloc(&mut d, A, GIB, LARGE).expect("1 GiB");
    assert_eq!(addr, small & !(GIB - 1), "the same GiB, whose page directory the purge kept");
    assert_eq!(mapping_everywhere(&d, addr + PAGE_SIZE).map(|m| m.size), Some(PageSize::Huge));
}

#[test]
fn other_sizes_keep_smaller_pages() {
    let mut d = three_spaces();
    let cases = [
        (GIB + LARGE_PAGE_SIZE, LARGE, PageSize::Large),
        (GIB, LARGE_ONLY, PageSize::Large),
        (GIB / 2, HUGE_ONLY, PageSize::Small),
        (GIB - LARGE_PAGE_SIZE, LARGE, PageSize::Large),
        (3 * LARGE_PAGE_SIZE, LARGE, PageSize::Large),
        (GIB, VmallocOptions::DEFAULT, PageSize::Small),
        (GIB, VmallocOptions::aligned(GIB), PageSize::Small),
    ];
    for (size, options, page) in cases {
        let addr = vmalloc(&mut d, A, size, options).unwrap_or_else(|e| panic!("{size:#x}: {e:?}"));
        assert_eq!(addr % page.bytes(), 0);
        let last = mapping_everywhere(&d, addr + size - 1).expect("the last byte is mapped everywhere");
        assert_eq!((size, last.size), (size, page));
        assert_eq!(huge_frames(&d), 0, "{size:#x}");
        done(&mut d, A, Request::Vfree { addr });
    }
}

#[test]
fn without_1_gib_frames_the_area_gets_2_mib_pages() {
    let mut d = three_spaces();
    d.sim_hooks().refuse_huge_frames();
    let addr = vmalloc(&mut d, A, 2 * GIB, LARGE).expect("2 GiB on 2 MiB pages");
    assert_eq!(addr % LARGE_PAGE_SIZE, 0);
    for offset in [0, GIB, 2 * GIB - LARGE_PAGE_SIZE] {
        assert_eq!(mapping_everywhere(&d, addr + offset).map(|m| m.size), Some(PageSize::Large), "+{offset:#x}");
    }
    assert_eq!((huge_frames(&d), d.server().census().frames.large), (0, 1024));
    assert_eq!(d.server().usage(A).used, 2 * GIB);
    let before = snapshot(d.server());
    assert_eq!(vmalloc(&mut d, A, GIB, HUGE_ONLY), Err(ErrorCode::OutOfMemory), "1 GiB pages or nothing");
    assert_eq!(snapshot(d.server()), before);
}

#[test]
fn protect_changes_1_gib_pages_in_every_space() {
    let mut d = three_spaces();
    let addr = vmalloc(&mut d, A, GIB, LARGE).expect("1 GiB");
    let frame = mapping_everywhere(&d, addr).expect("mapped").frame;
    done(&mut d, A, Request::Protect { addr, protection: Protection::ReadOnly });
    let mapping = mapping_everywhere(&d, addr + GIB / 2).expect("still mapped everywhere");
    assert!(!mapping.writable && mapping.frame == frame && mapping.size == PageSize::Huge);
    let other = send(&mut d, B, Request::Protect { addr, protection: Protection::ReadWrite }, None);
    assert_eq!(other, Reply::Error(ErrorCode::NotOwner));
    done(&mut d, A, Request::Protect { addr, protection: Protection::ReadWrite });
    assert!(mapping_everywhere(&d, addr).expect("mapped").writable);
}

#[test]
fn vrealloc_grows_and_shrinks_by_whole_1_gib_pages() {
    let mut d = three_spaces();
    let addr = vmalloc(&mut d, A, GIB, LARGE).expect("1 GiB");
    let first = mapping_everywhere(&d, addr).expect("mapped").frame;
    let grown = send(&mut d, A, Request::Vrealloc { addr, size: 2 * GIB }, None);
    assert_eq!(grown, Reply::Realloc(Realloc { addr, moved: false }), "the addresses after it are free");
    assert_eq!(huge_frames(&d), 2);
    assert_eq!(mapping_everywhere(&d, addr).map(|m| m.frame), Some(first), "the first page stays");
    assert_eq!(mapping_everywhere(&d, addr + GIB).map(|m| m.size), Some(PageSize::Huge));
    // A shrink to less than 1 GiB keeps the area's page size: one page.
    let shrunk = send(&mut d, A, Request::Vrealloc { addr, size: PAGE_SIZE }, None);
    assert_eq!(shrunk, Reply::Realloc(Realloc { addr, moved: false }));
    assert!(unmapped_everywhere(&d, addr + GIB));
    assert_eq!(mapping_everywhere(&d, addr).map(|m| m.frame), Some(first));
    done(&mut d, ADMIN, Request::Purge);
    assert_eq!(huge_frames(&d), 1);
    assert_eq!(d.server().usage(A).used, GIB, "charged its one page");
}

#[test]
fn what_the_quota_or_the_memory_cannot_hold_is_refused_with_nothing_changed() {
    let mut d = dispatcher();
    register_quota(&mut d, A, Quota::bytes_only(GIB - PAGE_SIZE));
    register_quota(&mut d, B, Quota::bytes_only(4 * GIB));
    let before = snapshot(d.server());
    assert_eq!(vmalloc(&mut d, A, GIB, LARGE), Err(ErrorCode::QuotaExceeded));
    assert_eq!(snapshot(d.server()), before);
    d.sim_hooks().set_memory_limit(Some(GIB + (8 << 20)));
    assert!(vmalloc(&mut d, B, GIB, LARGE).is_ok(), "1 GiB fits");
    let before = snapshot(d.server());
    assert_eq!(vmalloc(&mut d, B, GIB, LARGE), Err(ErrorCode::OutOfMemory));
    assert_eq!(snapshot(d.server()), before);
    let small = vmalloc(&mut d, A, 4 * PAGE_SIZE, VmallocOptions::DEFAULT).expect("A's small area still fits");
    assert!(mapping_everywhere(&d, small).is_some());
}
