//! Protect over the wire (`Request::Protect`): an area's rights change in
//! every registered space at once (one Page Remap per page per space), a
//! write to a read-only area from any space is a reported fault, never a
//! repair, spaces registered later and pages a vrealloc adds get the
//! area's rights, and bad or failing protects change nothing. The
//! invariant (every space maps what the canonical table does, rights
//! included) is checked after every message.

mod common;

use common::dispatcher::{dispatcher, register_space, registration, send, vm_fault, vmalloc_with};
use common::snapshot;
use memserver_core::backend::OpKind;
use memserver_core::dispatch::{Dispatcher, FaultAction};
use memserver_core::layout::{LARGE_PAGE_SIZE, PAGE_SIZE};
use memserver_core::sim::Sim;
use memserver_core::{Badge, Rights};
use memserver_protocol::{ErrorCode, FaultKind, Protection, Quota, Registration, Reply, Request, VmallocOptions};

const A: Badge = Badge(0x100);
const B: Badge = Badge(0x101);
const MIB: u64 = 1 << 20;

/// A dispatcher with two spaces of A's and one of B's.
fn three_spaces() -> (Box<Dispatcher<Sim>>, [Registration; 3]) {
    let mut d = dispatcher();
    let spaces = [registration(&mut d, A), registration(&mut d, A), registration(&mut d, B)];
    (d, spaces)
}

fn protect(d: &mut Dispatcher<Sim>, caller: Badge, addr: u64, protection: Protection) -> Result<(), ErrorCode> {
    match send(d, caller, Request::Protect { addr, protection }, None) {
        Reply::Done => Ok(()),
        Reply::Error(code) => Err(code),
        other => panic!("protect: {other:?}"),
    }
}

/// Whether `addr` is mapped writable in each registered space, in
/// registry order (`None` where it is not mapped).
fn writable(d: &Dispatcher<Sim>, addr: u64) -> Vec<Option<bool>> {
    let region = d.server().region();
    region
        .space_ids()
        .map(|id| region.backend().translate(region.vspace(id).expect("registered"), addr).map(|m| m.writable))
        .collect()
}

fn take_fault(d: &mut Dispatcher<Sim>) -> Option<(u64, FaultKind)> {
    match send(d, common::ADMIN, Request::TakeFault, None) {
        Reply::Fault(report) => report.map(|r| (r.addr, r.kind)),
        other => panic!("take fault: {other:?}"),
    }
}

fn missed_syncs(d: &mut Dispatcher<Sim>) -> u64 {
    match send(d, common::ADMIN, Request::Stats, None) {
        Reply::Stats(stats) => stats.missed_syncs,
        other => panic!("stats: {other:?}"),
    }
}

#[test]
fn a_read_only_area_is_read_only_in_every_space_and_its_writes_are_reported() {
    let (mut d, spaces) = three_spaces();
    let pages = 600;
    let addr = vmalloc_with(&mut d, A, pages * PAGE_SIZE, VmallocOptions::DEFAULT);
    let neighbour = vmalloc_with(&mut d, B, PAGE_SIZE, VmallocOptions::DEFAULT);
    let before = d.server().region().op_counts();
    assert_eq!(protect(&mut d, A, addr, Protection::ReadOnly), Ok(()));
    let remaps = d.server().region().op_counts().since(&before);
    assert_eq!(remaps.get(OpKind::RemapFrame), pages * 3, "one remap per page per space");
    assert_eq!(remaps.get(OpKind::MapFrame) + remaps.get(OpKind::AllocFrame), 0, "nothing made");
    for page in [0, 1, 511, 512, pages - 1] {
        assert_eq!(writable(&d, addr + page * PAGE_SIZE), [Some(false); 3], "page {page}");
    }
    assert_eq!(writable(&d, neighbour), [Some(true); 3], "the neighbour keeps its rights");
    for space in &spaces {
        let at = addr + 7 * PAGE_SIZE + 8;
        assert_eq!(vm_fault(&mut d, space.fault_badge, at, true), FaultAction::Reported, "space {}", space.space);
        assert_eq!(take_fault(&mut d), Some((at, FaultKind::ReadOnlyWrite)));
        assert_eq!(vm_fault(&mut d, space.fault_badge, at, false), FaultAction::Resume, "reads go on");
    }
    assert_eq!(missed_syncs(&mut d), 0, "no write was repaired");
    assert_eq!(protect(&mut d, A, addr, Protection::ReadWrite), Ok(()));
    assert_eq!(writable(&d, addr + (pages - 1) * PAGE_SIZE), [Some(true); 3]);
    assert_eq!(vm_fault(&mut d, spaces[2].fault_badge, addr, true), FaultAction::Resume, "writable again");
    let before = d.server().region().op_counts();
    assert_eq!(protect(&mut d, A, addr, Protection::ReadWrite), Ok(()), "as it is already");
    assert_eq!(d.server().region().op_counts().since(&before).get(OpKind::RemapFrame), 0);
}

#[test]
fn large_pages_later_spaces_and_pages_a_vrealloc_adds_get_the_areas_rights() {
    let (mut d, _) = three_spaces();
    let large = VmallocOptions { large_pages: true, ..VmallocOptions::DEFAULT };
    let big = vmalloc_with(&mut d, A, 2 * LARGE_PAGE_SIZE, large);
    let small = vmalloc_with(&mut d, A, 2 * PAGE_SIZE, VmallocOptions::DEFAULT);
    for addr in [big, small] {
        assert_eq!(protect(&mut d, A, addr, Protection::ReadOnly), Ok(()));
    }
    assert_eq!(writable(&d, big + LARGE_PAGE_SIZE + 5 * PAGE_SIZE), [Some(false); 3]);
    let late = d.sim_hooks().new_vspace();
    register_space(&mut d, B, Quota::bytes(64 * MIB), late);
    assert_eq!(writable(&d, big), [Some(false); 4], "a late space copies the rights");
    // In place: the tail comes read-only.
    let grown = match send(&mut d, A, Request::Vrealloc { addr: small, size: 4 * PAGE_SIZE }, None) {
        Reply::Realloc(r) => r,
        other => panic!("vrealloc: {other:?}"),
    };
    assert!(!grown.moved);
    assert_eq!(writable(&d, small + 3 * PAGE_SIZE), [Some(false); 4]);
    // Moved: every page read-only at its new place.
    let _blocker = vmalloc_with(&mut d, B, PAGE_SIZE, VmallocOptions::DEFAULT);
    let moved = match send(&mut d, A, Request::Vrealloc { addr: small, size: 9 * PAGE_SIZE }, None) {
        Reply::Realloc(r) => r,
        other => panic!("vrealloc: {other:?}"),
    };
    assert!(moved.moved);
    assert!((0..9).all(|i| writable(&d, moved.addr + i * PAGE_SIZE) == [Some(false); 4]));
    assert_eq!(protect(&mut d, A, moved.addr, Protection::ReadWrite), Ok(()));
    assert!((0..9).all(|i| writable(&d, moved.addr + i * PAGE_SIZE) == [Some(true); 4]));
}

#[test]
fn bad_protects_are_refused_and_change_nothing() {
    let (mut d, _) = three_spaces();
    let addr = vmalloc_with(&mut d, A, 4 * PAGE_SIZE, VmallocOptions::DEFAULT);
    let freed = vmalloc_with(&mut d, A, PAGE_SIZE, VmallocOptions::DEFAULT);
    assert_eq!(send(&mut d, A, Request::Vfree { addr: freed }, None), Reply::Done);
    let given = [d.sim_hooks().client_frame(), d.sim_hooks().client_frame()];
    let vmap = d.server_mut().vmap(A, &given, Rights::ReadOnly).expect("vmap").get();
    let before = snapshot(d.server());
    let bad = [
        (B, addr, ErrorCode::NotOwner),
        (A, addr + PAGE_SIZE, ErrorCode::NotFound),
        (A, addr + 8, ErrorCode::InvalidArgument),
        (A, freed, ErrorCode::NotFound),
        (A, 0x1000, ErrorCode::InvalidArgument),
        (A, vmap, ErrorCode::InvalidArgument),
    ];
    for (caller, at, code) in bad {
        for protection in [Protection::ReadOnly, Protection::ReadWrite] {
            let refused = protect(&mut d, caller, at, protection);
            // A read-only vmap may be made read-only: it is already.
            if at == vmap && protection == Protection::ReadOnly {
                assert_eq!(refused, Ok(()));
                continue;
            }
            assert_eq!(refused, Err(code), "{caller:?} {at:#x} {protection:?}");
        }
        assert_eq!(snapshot(d.server()), before, "{caller:?} {at:#x} changed the state");
    }
    let unregistered = Badge(0x999);
    assert_eq!(protect(&mut d, unregistered, addr, Protection::ReadOnly), Err(ErrorCode::NotRegistered));
    assert_eq!(snapshot(d.server()), before);
}

#[test]
fn a_vmap_of_writable_frames_can_be_made_read_only_and_back() {
    let (mut d, _) = three_spaces();
    let given = [d.sim_hooks().client_frame(), d.sim_hooks().client_frame()];
    let vmap = d.server_mut().vmap(A, &given, Rights::ReadWrite).expect("vmap").get();
    assert_eq!(protect(&mut d, A, vmap, Protection::ReadOnly), Ok(()));
    assert_eq!(writable(&d, vmap + PAGE_SIZE), [Some(false); 3]);
    assert_eq!(protect(&mut d, A, vmap, Protection::ReadWrite), Ok(()));
    assert_eq!(writable(&d, vmap + PAGE_SIZE), [Some(true); 3]);
}

#[test]
fn a_remap_failing_in_any_space_at_any_page_leaves_every_space_as_it_was() {
    let (mut d, _) = three_spaces();
    let pages = 5;
    let addr = vmalloc_with(&mut d, A, pages * PAGE_SIZE, VmallocOptions::DEFAULT);
    for protection in [Protection::ReadOnly, Protection::ReadWrite] {
        let before = snapshot(d.server());
        for k in 0..pages * 3 {
            d.sim_hooks().fail_after(Some(k));
            assert_eq!(protect(&mut d, A, addr, protection), Err(ErrorCode::OutOfMemory), "remap {k} fails");
            assert_eq!(snapshot(d.server()), before, "remap {k} failed and left a change");
        }
        d.sim_hooks().fail_after(None);
        assert_eq!(protect(&mut d, A, addr, protection), Ok(()));
    }
}
