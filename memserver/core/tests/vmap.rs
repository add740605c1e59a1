//! vmap over the wire (`Request::Vmap`): a client's frames, passed as a
//! CNode of frame capabilities, are mapped contiguously in every space; the
//! server never frees them and gives up its hold of each once the area is
//! purged; only frames in the memory the administrator granted the caller
//! are accepted; every bad request is a typed error that changes nothing
//! and leaves the server holding none of the frames. The invariant is
//! checked after every message.

mod common;

use common::dispatcher::{dispatcher, register, send};
use common::{snapshot, ADMIN};
use memserver_core::dispatch::Dispatcher;
use memserver_core::layout::PAGE_SIZE;
use memserver_core::sim::{Sim, SimFrame, SimVSpace};
use memserver_core::Badge;
use memserver_protocol::{ErrorCode, FailurePoint, Protection, Reply, Request};

const A: Badge = Badge(0x100);
const B: Badge = Badge(0x101);
const C: Badge = Badge(0x102);
/// Radix of the frame CNodes the tests pass.
const RADIX: u8 = 8;

/// `n` client frames at consecutive physical addresses, and the grant
/// that covers exactly them.
fn frames(d: &mut Dispatcher<Sim>, n: usize) -> (Vec<SimFrame>, u64, u64) {
    let frames: Vec<SimFrame> = (0..n).map(|_| d.sim_hooks().client_frame()).collect();
    let paddr = |d: &mut Dispatcher<Sim>, f: SimFrame| d.sim_hooks().frame_address(f);
    let start = paddr(d, frames[0]);
    let last = paddr(d, frames[n - 1]);
    assert_eq!(last - start, (n as u64 - 1) * PAGE_SIZE, "client frames are consecutive");
    (frames, start, n as u64 * PAGE_SIZE)
}

fn grant(d: &mut Dispatcher<Sim>, client: Badge, start: u64, bytes: u64) {
    assert_eq!(send(d, ADMIN, Request::GrantFrames { client: client.0, start, bytes }, None), Reply::Done);
}

fn vmap(
    d: &mut Dispatcher<Sim>,
    caller: Badge,
    cnode: Option<SimVSpace>,
    first: u64,
    pages: u32,
    protection: Protection,
) -> Result<u64, ErrorCode> {
    match send(d, caller, Request::Vmap { first, pages, depth: RADIX, protection }, cnode) {
        Reply::Address(addr) => Ok(addr),
        Reply::Error(code) => Err(code),
        other => panic!("vmap: {other:?}"),
    }
}

fn paddr_at(d: &mut Dispatcher<Sim>, addr: u64) -> Option<u64> {
    match send(d, A, Request::Translate { addr }, None) {
        Reply::Translation(t) => t.map(|t| t.paddr),
        other => panic!("translate: {other:?}"),
    }
}

/// A with two spaces and B with one; A granted 8 frames, B 2.
struct Setup {
    d: Box<Dispatcher<Sim>>,
    a_frames: Vec<SimFrame>,
    a_start: u64,
    b_frames: Vec<SimFrame>,
}

fn setup() -> Setup {
    let mut d = dispatcher();
    for client in [A, A, B] {
        register(&mut d, client);
    }
    let (a_frames, a_start, a_bytes) = frames(&mut d, 8);
    grant(&mut d, A, a_start, a_bytes);
    let (b_frames, b_start, b_bytes) = frames(&mut d, 2);
    grant(&mut d, B, b_start, b_bytes);
    Setup { d, a_frames, a_start, b_frames }
}

#[test]
fn a_vmap_maps_the_frames_in_every_space_and_gives_them_back_after_the_purge() {
    let Setup { mut d, a_frames, a_start, .. } = setup();
    let cnode = d.sim_hooks().frame_cnode(RADIX, &a_frames.iter().copied().map(Some).collect::<Vec<_>>());
    let addr = vmap(&mut d, A, Some(cnode), 2, 5, Protection::ReadWrite).expect("vmap");
    for i in 0..5 {
        assert_eq!(paddr_at(&mut d, addr + i * PAGE_SIZE), Some(a_start + (2 + i) * PAGE_SIZE), "page {i}");
    }
    assert_eq!(paddr_at(&mut d, addr + 5 * PAGE_SIZE), None, "a guard page follows");
    assert_eq!(d.sim_hooks().lent_frames(), (5, 0));
    // The same frames again, read-only, beside the first area.
    let again = vmap(&mut d, A, Some(cnode), 0, 8, Protection::ReadOnly).expect("vmap again");
    assert_eq!(d.sim_hooks().lent_frames(), (13, 0));
    assert_eq!(
        send(&mut d, A, Request::Protect { addr: again, protection: Protection::ReadWrite }, None),
        Reply::Error(ErrorCode::InvalidArgument),
        "frames given read-only stay read-only"
    );
    // Freed, the frames stay lent until the purge unmaps them.
    assert_eq!(send(&mut d, A, Request::Vfree { addr }, None), Reply::Done);
    assert_eq!(d.sim_hooks().lent_frames(), (13, 0));
    assert_eq!(send(&mut d, ADMIN, Request::Purge, None), Reply::Done);
    assert_eq!(d.sim_hooks().lent_frames(), (8, 5));
    assert_eq!(paddr_at(&mut d, addr), None);
    // A client's death gives back the rest: its spaces go, its areas with them.
    for space in 0..2 {
        assert_eq!(send(&mut d, ADMIN, Request::Unregister { space }, None), Reply::Done);
    }
    assert_eq!(d.sim_hooks().lent_frames(), (0, 13));
}

#[test]
fn bad_vmaps_are_typed_errors_that_change_nothing_and_hold_no_frame() {
    let Setup { mut d, a_frames, b_frames, .. } = setup();
    let mut slots: Vec<Option<SimFrame>> = a_frames.iter().copied().map(Some).collect();
    slots[3] = None;
    slots.push(Some(b_frames[0]));
    let cnode = d.sim_hooks().frame_cnode(RADIX, &slots);
    let before = snapshot(d.server());
    let rw = Protection::ReadWrite;
    let bad: [(Badge, Option<SimVSpace>, u64, u32, ErrorCode); 8] = [
        (A, None, 0, 1, ErrorCode::InvalidArgument),
        (A, Some(cnode), 0, 0, ErrorCode::InvalidArgument),
        (A, Some(cnode), 0, Request::MAX_VMAP_PAGES + 1, ErrorCode::InvalidArgument),
        // Slot 3 is empty: the frames before it are given back too.
        (A, Some(cnode), 0, 5, ErrorCode::NotAFrame),
        // Past the CNode's last slot.
        (A, Some(cnode), (1 << RADIX) - 1, 2, ErrorCode::NotAFrame),
        // B's frame, in the middle of A's.
        (A, Some(cnode), 4, 5, ErrorCode::ForeignFrame),
        // C has a space but no grant.
        (C, Some(cnode), 0, 1, ErrorCode::ForeignFrame),
        (Badge(0x999), Some(cnode), 0, 1, ErrorCode::NotRegistered),
    ];
    register(&mut d, C);
    let before_c = snapshot(d.server());
    for (caller, cap, first, pages, code) in bad {
        assert_eq!(vmap(&mut d, caller, cap, first, pages, rw), Err(code), "{caller:?} {first} {pages}");
        assert_eq!(snapshot(d.server()), before_c, "{caller:?} {first} {pages} changed the state");
        assert_eq!(d.sim_hooks().lent_frames().0, 0, "{caller:?} {first} {pages} kept a frame");
    }
    // A CNode resolved with another depth than its radix reaches nothing.
    let wrong_depth = Request::Vmap { first: 0, pages: 1, depth: RADIX + 1, protection: rw };
    assert_eq!(send(&mut d, A, wrong_depth, Some(cnode)), Reply::Error(ErrorCode::NotAFrame));
    // Only the administrator grants, page aligned.
    let grants = [
        (A, Request::GrantFrames { client: A.0, start: 0, bytes: 1 << 30 }, ErrorCode::NotAdmin),
        (ADMIN, Request::GrantFrames { client: A.0, start: 0x1800, bytes: PAGE_SIZE }, ErrorCode::InvalidArgument),
        (ADMIN, Request::GrantFrames { client: A.0, start: 0, bytes: 100 }, ErrorCode::InvalidArgument),
        (ADMIN, Request::GrantFrames { client: A.0, start: !0xfff, bytes: 2 * PAGE_SIZE }, ErrorCode::InvalidArgument),
    ];
    for (caller, request, code) in grants {
        assert_eq!(send(&mut d, caller, request, None), Reply::Error(code), "{request:?}");
    }
    assert_eq!(snapshot(d.server()), before_c);
    assert_ne!(before, before_c, "C's registration is part of the state");
    // The good part of the CNode still maps.
    assert!(vmap(&mut d, A, Some(cnode), 0, 3, rw).is_ok());
}

#[test]
fn a_vmap_past_the_quota_or_failing_anywhere_gives_every_frame_back() {
    let Setup { mut d, a_frames, .. } = setup();
    let cnode = d.sim_hooks().frame_cnode(RADIX, &a_frames.iter().copied().map(Some).collect::<Vec<_>>());
    // Fail each creating operation of the vmap in turn (structures in
    // three spaces, maps): nothing changes, until one succeeds.
    let mut k = 1;
    let addr = loop {
        let before = snapshot(d.server());
        let inject = Request::InjectFailure { point: FailurePoint::Map, nth: k };
        assert_eq!(send(&mut d, ADMIN, inject, None), Reply::Done);
        match vmap(&mut d, A, Some(cnode), 0, 8, Protection::ReadWrite) {
            Ok(addr) => break addr,
            Err(code) => {
                assert!(matches!(code, ErrorCode::Kernel | ErrorCode::OutOfMemory), "failure {k}: {code:?}");
                assert_eq!(snapshot(d.server()), before, "failure {k} left a change");
                assert_eq!(d.sim_hooks().lent_frames().0, 0, "failure {k} kept a frame");
            }
        }
        k += 1;
    };
    assert!(k > 8 * 3, "every page in every space was a failure point: {k}");
    let disarm = Request::InjectFailure { point: FailurePoint::Map, nth: 0 };
    assert_eq!(send(&mut d, ADMIN, disarm, None), Reply::Done);
    assert_eq!(send(&mut d, A, Request::Vfree { addr }, None), Reply::Done);
    assert_eq!(send(&mut d, ADMIN, Request::Purge, None), Reply::Done);
    assert_eq!(d.sim_hooks().lent_frames().0, 0);
    // B's quota holds one page.
    let (b_frames, b_start, b_bytes) = frames(&mut d, 2);
    let small = memserver_protocol::Quota::bytes(PAGE_SIZE);
    let vspace = d.sim_hooks().new_vspace();
    common::dispatcher::register_space(&mut d, Badge(0x103), small, vspace);
    grant(&mut d, Badge(0x103), b_start, b_bytes);
    let b_cnode = d.sim_hooks().frame_cnode(RADIX, &[Some(b_frames[0]), Some(b_frames[1])]);
    let before = snapshot(d.server());
    assert_eq!(vmap(&mut d, Badge(0x103), Some(b_cnode), 0, 2, Protection::ReadWrite), Err(ErrorCode::QuotaExceeded));
    assert_eq!(snapshot(d.server()), before);
    assert_eq!(d.sim_hooks().lent_frames().0, 0);
    assert!(vmap(&mut d, Badge(0x103), Some(b_cnode), 0, 1, Protection::ReadWrite).is_ok());
}

#[test]
fn the_grant_goes_with_the_clients_last_space() {
    let Setup { mut d, a_frames, .. } = setup();
    let cnode = d.sim_hooks().frame_cnode(RADIX, &[Some(a_frames[0])]);
    assert!(vmap(&mut d, A, Some(cnode), 0, 1, Protection::ReadWrite).is_ok());
    for space in 0..2 {
        assert_eq!(send(&mut d, ADMIN, Request::Unregister { space }, None), Reply::Done);
    }
    register(&mut d, A);
    assert_eq!(vmap(&mut d, A, Some(cnode), 0, 1, Protection::ReadWrite), Err(ErrorCode::ForeignFrame));
}

fn populate_from(
    d: &mut Dispatcher<Sim>,
    caller: Badge,
    cnode: SimVSpace,
    first: u64,
    (start_pfn, nr_pages): (u64, u64),
) -> Result<(), ErrorCode> {
    match send(d, caller, Request::VmemmapPopulateFrom { start_pfn, nr_pages, first, depth: RADIX }, Some(cnode)) {
        Reply::Done => Ok(()),
        Reply::Error(code) => Err(code),
        other => panic!("populate from: {other:?}"),
    }
}

/// memmap_on_memory: the descriptors of the memory A's frames are, backed
/// by those very frames; bad requests change nothing and hold no frame;
/// depopulated, the frames are given back.
#[test]
fn hot_added_memory_holds_its_own_descriptors() {
    let Setup { mut d, a_frames, a_start, b_frames } = setup();
    let slots: Vec<Option<SimFrame>> = a_frames.iter().chain(&b_frames).copied().map(Some).collect();
    let cnode = d.sim_hooks().frame_cnode(RADIX, &slots);
    // 64 pfns to a descriptor frame: A's first two frames describe the 128
    // pfns from the 64-aligned pfn at or below the first.
    let first_pfn = a_start / PAGE_SIZE;
    let start = first_pfn - first_pfn % 64;
    // The range must hold the frames: that of the second frame is 64 later.
    assert!(first_pfn + 1 < start + 128, "A's first two frames lie in the 128 pfns from {start:#x}");
    let range = (start, 128);
    let empty = d.sim_hooks().frame_cnode(RADIX, &[]);
    let before = snapshot(d.server());
    let bad = [
        (cnode, 0, (start + 1, 128), ErrorCode::InvalidArgument),
        (cnode, 0, (start, 100), ErrorCode::InvalidArgument),
        // A's frames, but not in the memory described.
        (cnode, 0, (start + 128, 128), ErrorCode::InvalidArgument),
        (cnode, 8, (start, 64), ErrorCode::ForeignFrame),
        (empty, 0, (start, 64), ErrorCode::NotAFrame),
    ];
    for (frames, first, range, code) in bad {
        assert_eq!(populate_from(&mut d, A, frames, first, range), Err(code), "slot {first}, range {range:?}");
        assert_eq!(snapshot(d.server()), before, "slot {first}, range {range:?} changed the state");
        assert_eq!(d.sim_hooks().lent_frames().0, 0);
    }
    let (_, returned) = d.sim_hooks().lent_frames();
    assert_eq!(populate_from(&mut d, A, cnode, 0, range), Ok(()));
    let descriptor = |pfn: u64| memserver_core::layout::Area::Vmemmap.start() + pfn * 64;
    for (i, pfn) in [start, start + 127].into_iter().enumerate() {
        assert_eq!(paddr_at(&mut d, descriptor(pfn)), Some(a_start + i as u64 * PAGE_SIZE), "pfn {pfn:#x}");
    }
    assert_eq!(d.sim_hooks().lent_frames(), (2, returned));
    assert_eq!(populate_from(&mut d, A, cnode, 0, range), Err(ErrorCode::Overlap), "populated already");
    let returned = returned + 2;
    assert_eq!(
        send(&mut d, B, Request::VmemmapDepopulate { start_pfn: start, nr_pages: 128 }, None),
        Reply::Error(ErrorCode::NotOwner)
    );
    assert_eq!(send(&mut d, A, Request::VmemmapDepopulate { start_pfn: start, nr_pages: 128 }, None), Reply::Done);
    assert_eq!(d.sim_hooks().lent_frames(), (0, returned + 2));
    assert_eq!(paddr_at(&mut d, descriptor(start)), None);
}
