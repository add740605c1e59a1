//! What users do, at the sizes they reach, served by the seL4 backend over
//! the model of seL4: several clients with many areas of 4 KiB and of
//! 2 MiB pages, vmemmap ranges (plain, and compound across the top-level
//! boundary of the vmemmap area, and neighbours sharing a page table, so
//! one's unmapping is seen while the table stays), percpu allocations over
//! several chunks
//! on every CPU, a space registered late. After every request the invariant
//! holds in the model (every registered VSpace maps exactly the canonical
//! table: the same frame objects, sizes and rights), so each space sees the
//! frame another one writes. What a client wrote is gone when its frames
//! come back to anyone (the server zeroes recycled frames through its own
//! mappings), and once all is freed and every space unregistered the
//! untyped memory and slots not in use are as after start.

mod common;

use common::{System, KIB, MIB};
use memserver::cspace::own;
use memserver::model_rig::ModelBackend;
use memserver_core::dispatch::CapUse;
use memserver_core::harness::ADMIN;
use memserver_core::host_backend::HostBackend;
use memserver_core::ids::SpaceId;
use memserver_core::invariant::snapshot;
use memserver_core::layout::{Area, DESCRIPTOR_SIZE, PAGE_SIZE, TOP_ENTRY_SPAN};
use memserver_core::limits::PERCPU_UNIT_SIZE;
use memserver_core::Badge;
use memserver_protocol::words::Words;
use memserver_protocol::{ErrorCode, Protection, Quota, Reply, Request};
use sel4_layer::kernel::Kernel;
use sel4_layer::CapRights;
use sel4_model::ObjectId;

const CPUS: usize = 4;
const CLIENTS: [Badge; 3] = [Badge(1), Badge(2), Badge(3)];
const LATE: Badge = Badge(4);

/// A pfn 2^15 below the vmemmap area's top-level boundary.
const BOUNDARY_PFN: u64 = TOP_ENTRY_SPAN / DESCRIPTOR_SIZE - (1 << 15);

/// The frames behind `pages` pages of `page` bytes from `addr` in `vspace`,
/// each written through it by the client (a store per page).
fn write_pages(s: &mut System, vspace: ObjectId, addr: u64, bytes: u64, page: u64) -> Vec<ObjectId> {
    (0..bytes / page).map(|i| s.model_mut().write(vspace, addr + i * page).expect("mapped writable")).collect()
}

/// Whether any frame behind `bytes` from `addr` in `vspace` holds data.
fn holds_data(s: &System, vspace: ObjectId, addr: u64, bytes: u64) -> bool {
    (0..bytes / PAGE_SIZE).any(|i| {
        let frame = s.model().translate(vspace, addr + i * PAGE_SIZE).and_then(|l| l.frame).expect("mapped");
        s.model().holds_data(frame)
    })
}

#[test]
fn many_areas_ranges_and_allocations_in_several_spaces_and_a_late_one() {
    let mut s = System::new(CPUS);
    let start = s.unused();
    let spaces: Vec<u16> = CLIENTS.iter().map(|&c| s.register(c, 256 * MIB).space).collect();
    let mut areas = Vec::new();
    for i in 0..48u64 {
        let client = CLIENTS[(i % 3) as usize];
        let addr = s.vmalloc(client, (1 + i % 9) * 4 * KIB, false);
        areas.push((client, addr, (1 + i % 9) * 4 * KIB));
    }
    for client in CLIENTS {
        let addr = s.vmalloc(client, 4 * MIB, true);
        areas.push((client, addr, 4 * MIB));
    }
    let ranges = [
        (CLIENTS[0], 0, 8192, 0),
        (CLIENTS[1], BOUNDARY_PFN, 1 << 16, 9),
        (CLIENTS[2], 3 << 30, 4096, 8),
        // In the same page table, so it stays when the one before goes.
        (CLIENTS[0], (3 << 30) + 4096, 4096, 8),
    ];
    for (client, start_pfn, nr_pages, compound_order) in ranges {
        s.ok(client, Request::VmemmapPopulate { start_pfn, nr_pages, compound_order, huge: false });
    }
    let mut allocs = Vec::new();
    for i in 0..64u32 {
        let client = CLIENTS[(i % 3) as usize];
        let size = [64, 256, 1024, 4096][(i % 4) as usize];
        let request = Request::PercpuAlloc { size, align: 1 << (3 + i % 7) };
        match s.ok(client, request) {
            Reply::Offset(offset) => allocs.push((client, offset)),
            other => panic!("percpu: {other:?}"),
        }
    }
    assert!(allocs.iter().any(|&(_, o)| u64::from(o) >= 2 * PERCPU_UNIT_SIZE), "allocations in a third chunk");
    // A client writes its areas; the late space sees the same frames.
    let late = s.register(LATE, 64 * MIB).space;
    let writer = s.vspace(spaces[0]);
    for &(_, addr, bytes) in areas.iter().filter(|(c, _, _)| *c == CLIENTS[0]) {
        let page = if bytes == 4 * MIB { 2 * MIB } else { PAGE_SIZE };
        let written = write_pages(&mut s, writer, addr, bytes, page);
        let late_vspace = s.vspace(late);
        let seen: Vec<_> = (0..bytes / page)
            .map(|i| s.model().translate(late_vspace, addr + i * page).unwrap().frame.unwrap())
            .collect();
        assert_eq!(seen, written);
    }
    let head = Area::Vmemmap.start() + BOUNDARY_PFN * DESCRIPTOR_SIZE;
    assert!(s.model().translate(s.vspace(late), head).is_some_and(|l| l.writable()), "a head descriptor");
    // Everything back, then the same again: recycled frames hold no data.
    for &(client, addr, _) in &areas {
        s.ok(client, Request::Vfree { addr });
    }
    s.ok(ADMIN, Request::Purge);
    let again: Vec<_> = areas.iter().map(|&(c, _, bytes)| (c, s.vmalloc(c, bytes, bytes == 4 * MIB), bytes)).collect();
    for &(_, addr, bytes) in &again {
        assert!(!holds_data(&s, writer, addr, bytes), "area at {addr:#x} holds a client's data");
    }
    for &(client, addr, _) in &again {
        s.ok(client, Request::Vfree { addr });
    }
    for (client, start_pfn, nr_pages, _) in ranges {
        s.ok(client, Request::VmemmapDepopulate { start_pfn, nr_pages });
    }
    for (client, offset) in allocs {
        s.ok(client, Request::PercpuFree { offset });
    }
    s.ok(ADMIN, Request::Purge);
    for space in spaces.into_iter().chain([late]) {
        s.ok(ADMIN, Request::Unregister { space });
    }
    assert_eq!(s.unused(), start, "(untyped bytes, slots) not in use after unregistering every space");
}

/// A client that dies (its space unregistered) with everything still
/// held: the server takes it all back, and its frames, given to the next
/// client, hold none of its data.
#[test]
fn a_dead_clients_memory_comes_back_clean() {
    let mut s = System::new(CPUS);
    let start = s.unused();
    let dying = s.register(CLIENTS[0], 256 * MIB).space;
    let vspace = s.vspace(dying);
    let small = s.vmalloc(CLIENTS[0], 64 * KIB, false);
    let large = s.vmalloc(CLIENTS[0], 4 * MIB, true);
    write_pages(&mut s, vspace, small, 64 * KIB, PAGE_SIZE);
    write_pages(&mut s, vspace, large, 4 * MIB, 2 * MIB);
    s.ok(ADMIN, Request::Unregister { space: dying });
    s.ok(ADMIN, Request::Purge);
    let next = s.register(CLIENTS[1], 256 * MIB).space;
    let vspace = s.vspace(next);
    let small = s.vmalloc(CLIENTS[1], 64 * KIB, false);
    let large = s.vmalloc(CLIENTS[1], 4 * MIB, true);
    assert!(!holds_data(&s, vspace, small, 64 * KIB));
    assert!(!holds_data(&s, vspace, large, 4 * MIB));
    s.ok(ADMIN, Request::Unregister { space: next });
    s.ok(ADMIN, Request::Purge);
    assert_eq!(s.unused(), start);
}

/// vrealloc on seL4: an area written through one space grows (in place,
/// then, blocked by a neighbour, moved) and shrinks; another space sees
/// the written frames at the area's new place, the old place unmapped,
/// and once all is freed nothing stays in use.
#[test]
fn a_written_area_grows_moves_and_shrinks_with_its_contents() {
    let mut s = System::new(CPUS);
    let start = s.unused();
    let [writer, reader] = [CLIENTS[0], CLIENTS[0]].map(|c| s.register(c, 256 * MIB).space);
    let other = s.register(CLIENTS[1], 256 * MIB).space;
    let (w, r) = (s.vspace(writer), s.vspace(reader));
    // Large pages first, at the area's start: each blocker lands right
    // after the area it blocks (the freed areas are lazy, not reused).
    for large in [true, false] {
        let page = if large { 2 * MIB } else { PAGE_SIZE };
        let addr = s.vmalloc(CLIENTS[0], 3 * page, large);
        let written = write_pages(&mut s, w, addr, 3 * page, page);
        let seen = |s: &System, at: u64, pages: u64| -> Vec<Option<ObjectId>> {
            (0..pages).map(|i| s.model().translate(r, at + i * page).and_then(|l| l.frame)).collect()
        };
        match s.ok(CLIENTS[0], Request::Vrealloc { addr, size: 5 * page }) {
            Reply::Realloc(realloc) => assert_eq!((realloc.addr, realloc.moved), (addr, false)),
            other => panic!("grow: {other:?}"),
        }
        let blocker = s.vmalloc(CLIENTS[1], PAGE_SIZE, false);
        assert_eq!(blocker, addr + 5 * page + PAGE_SIZE, "right after the guard page");
        let moved = match s.ok(CLIENTS[0], Request::Vrealloc { addr, size: 9 * page }) {
            Reply::Realloc(realloc) if realloc.moved => realloc.addr,
            other => panic!("move: {other:?}"),
        };
        assert_eq!(seen(&s, moved, 3), written.iter().copied().map(Some).collect::<Vec<_>>(), "contents moved");
        assert!(seen(&s, moved, 9).iter().all(Option::is_some), "the new tail is mapped in the reader's space");
        assert!(seen(&s, addr, 3).iter().all(Option::is_none), "the old place is unmapped");
        assert!(holds_data(&s, r, moved, 3 * page) && !holds_data(&s, r, moved + 3 * page, 6 * page));
        s.ok(CLIENTS[0], Request::Vrealloc { addr: moved, size: page });
        assert!(seen(&s, moved + page, 8).iter().all(Option::is_none), "the shrunk tail is unmapped");
        s.ok(CLIENTS[0], Request::Vfree { addr: moved });
        s.ok(CLIENTS[1], Request::Vfree { addr: blocker });
    }
    s.ok(ADMIN, Request::Purge);
    for space in [writer, reader, other] {
        s.ok(ADMIN, Request::Unregister { space });
    }
    assert_eq!(s.unused(), start, "(untyped bytes, slots) not in use after unregistering every space");
}

/// A client makes its areas (of 4 KiB and of 2 MiB pages) read-only: no
/// space can write them, each still reads the same frames; made writable
/// again, every space writes them. Once all is freed nothing stays in use.
#[test]
fn read_only_areas_refuse_writes_in_every_space_until_made_writable() {
    let mut s = System::new(CPUS);
    let start = s.unused();
    let spaces = [CLIENTS[0], CLIENTS[0], CLIENTS[1]].map(|c| s.register(c, 256 * MIB).space);
    let vspaces = spaces.map(|space| s.vspace(space));
    for (large, bytes, page) in [(false, 600 * PAGE_SIZE, PAGE_SIZE), (true, 4 * MIB, 2 * MIB)] {
        let addr = s.vmalloc(CLIENTS[0], bytes, large);
        let written = write_pages(&mut s, vspaces[0], addr, bytes, page);
        let protect = |protection| Request::Protect { addr, protection };
        s.ok(CLIENTS[0], protect(Protection::ReadOnly));
        for &vspace in &vspaces {
            for (i, frame) in written.iter().enumerate() {
                let at = addr + i as u64 * page;
                assert!(s.model_mut().write(vspace, at).is_none(), "written read-only at {at:#x}");
                assert_eq!(s.model().translate(vspace, at).and_then(|l| l.frame), Some(*frame), "the same frame");
            }
        }
        s.ok(CLIENTS[0], protect(Protection::ReadWrite));
        for &vspace in &vspaces {
            assert_eq!(write_pages(&mut s, vspace, addr, bytes, page), written, "writable again");
        }
        s.ok(CLIENTS[0], Request::Vfree { addr });
    }
    s.ok(ADMIN, Request::Purge);
    for space in spaces {
        s.ok(ADMIN, Request::Unregister { space });
    }
    assert_eq!(s.unused(), start, "(untyped bytes, slots) not in use after unregistering every space");
}

/// The root task registers a VSpace that is registered already, through
/// another capability to it (the server cannot tell two capabilities of
/// one VSpace apart before it maps): the registration is refused with
/// `AlreadyRegistered` and the first registration keeps all it has.
#[test]
fn a_vspace_registered_again_through_another_capability_is_refused() {
    let mut s = System::new(CPUS);
    let first = s.register(CLIENTS[0], 256 * MIB);
    let addr = s.vmalloc(CLIENTS[0], 8 * PAGE_SIZE, false);
    let before = snapshot(s.d.server());
    let registered = s.d.server().region().vspace(SpaceId::new(first.space.into()).unwrap()).expect("registered");
    let copy = s.d.rig_backend().take_slot().expect("a free slot");
    let ((dest, dest_index), (src, src_index)) = (own(copy), own(registered));
    s.model_mut().cnode_copy(dest, dest_index, src, src_index, CapRights::ALL).expect("a copy");
    let request = Request::Register { client: CLIENTS[1].0, quota: Quota::bytes(MIB) };
    let (reply, cap_use) = s.d.handle(ADMIN, &Words::encode(&request).unwrap(), Some(copy));
    assert_eq!((reply, cap_use), (Reply::Error(ErrorCode::AlreadyRegistered), CapUse::Unused));
    ModelBackend::not_kept(&mut s.d, &mut s.rig, copy);
    s.check();
    assert_eq!(snapshot(s.d.server()), before, "the first registration keeps all it has");
    assert!(s.model().translate(s.vspace(first.space), addr).is_some());
}

/// A client vmaps frames the root task gave it (a CNode of frame
/// capabilities arriving with the request): every space maps the very
/// frames, writes in one are seen in the others, and the frames keep what
/// was written after the area is freed and purged (the server never
/// frees or zeroes them); mapped again they show it. A slot holding an
/// endpoint, an empty slot, or frames of another client are refused with
/// nothing held; once all is freed and unregistered, the untyped memory
/// and slots not in use are as after start.
#[test]
fn frames_a_client_was_given_are_mapped_everywhere_and_stay_its_own() {
    let mut s = System::new(CPUS);
    let start = s.unused();
    let spaces = [CLIENTS[0], CLIENTS[0], CLIENTS[1]].map(|c| s.register(c, 256 * MIB).space);
    let vspaces = spaces.map(|space| s.vspace(space));
    const RADIX: u8 = 6;
    let model = s.d.rig_backend().kernel_mut().inner_mut();
    let mine = s.rig.client_frames(model, 16, RADIX);
    let theirs = s.rig.client_frames(model, 2, RADIX);
    s.rig.endpoint_among(model, &mine, 20);
    for (client, frames) in [(CLIENTS[0], mine), (CLIENTS[1], theirs)] {
        s.ok(ADMIN, Request::GrantFrames { client: client.0, start: frames.start, bytes: frames.bytes });
    }
    let vmap = |s: &mut System, frames, first, pages| {
        let slot = s.d.rig_backend().take_slot().expect("a free slot");
        s.rig.cnode_arrives(s.d.rig_backend().kernel_mut().inner_mut(), frames, slot);
        let request = Request::Vmap { first, pages, depth: RADIX, protection: Protection::ReadWrite };
        let (reply, cap_use) = s.d.handle(CLIENTS[0], &Words::encode(&request).unwrap(), Some(slot));
        assert_eq!(cap_use, CapUse::Unused, "the CNode's capability is not kept");
        ModelBackend::not_kept(&mut s.d, &mut s.rig, slot);
        s.check();
        reply
    };
    let before = snapshot(s.d.server());
    let held = s.unused();
    for (frames, first, pages, code) in [
        (&mine, 14, 8, ErrorCode::NotAFrame),
        (&mine, 20, 1, ErrorCode::NotAFrame),
        (&theirs, 0, 2, ErrorCode::ForeignFrame),
    ] {
        assert_eq!(vmap(&mut s, frames, first, pages), Reply::Error(code), "slots {first}..+{pages}");
        assert_eq!(snapshot(s.d.server()), before);
        assert_eq!(s.unused(), held, "slots {first}..+{pages}: the server holds nothing of them");
    }
    let Reply::Address(addr) = vmap(&mut s, &mine, 0, 16) else { panic!("vmap") };
    let written = write_pages(&mut s, vspaces[1], addr, 16 * PAGE_SIZE, PAGE_SIZE);
    for &vspace in &vspaces {
        for (i, &frame) in written.iter().enumerate() {
            let at = addr + i as u64 * PAGE_SIZE;
            assert_eq!(s.model().translate(vspace, at).and_then(|l| l.frame), Some(frame), "{at:#x}");
        }
    }
    s.ok(CLIENTS[0], Request::Vfree { addr });
    s.ok(ADMIN, Request::Purge);
    assert!(vspaces.iter().all(|&v| s.model().translate(v, addr).is_none()), "unmapped everywhere");
    assert!(written.iter().all(|&f| s.model().holds_data(f)), "the frames keep what was written");
    // What stays are the paging structures a purge keeps (a slot and a
    // page each); no capability of the frames.
    let now = s.unused();
    assert_eq!(held.0 - now.0, (held.1 - now.1) * PAGE_SIZE, "the server gave up its copies: {held:?} {now:?}");
    let Reply::Address(again) = vmap(&mut s, &mine, 0, 16) else { panic!("vmap again") };
    assert!(holds_data(&s, vspaces[2], again, 16 * PAGE_SIZE), "mapped again with their contents");
    s.ok(CLIENTS[0], Request::Vfree { addr: again });
    s.ok(ADMIN, Request::Purge);
    for space in spaces {
        s.ok(ADMIN, Request::Unregister { space });
    }
    assert_eq!(s.unused(), start, "(untyped bytes, slots) not in use after unregistering every space");
}

fn unzeroed_options() -> memserver_protocol::VmallocOptions {
    memserver_protocol::VmallocOptions { zero: false, ..memserver_protocol::VmallocOptions::DEFAULT }
}

/// The frames behind `bytes` from `addr` in `vspace`, in order.
fn frames_of(s: &System, vspace: ObjectId, addr: u64, bytes: u64) -> Vec<ObjectId> {
    let frame = |i| s.model().translate(vspace, addr + i * PAGE_SIZE).and_then(|l| l.frame).expect("mapped");
    (0..bytes / PAGE_SIZE).map(frame).collect()
}

/// `client`'s vmalloc of `bytes` with 4 KiB pages, zeroed or not.
fn vmalloc_zeroed(s: &mut System, client: Badge, bytes: u64, zero: bool) -> u64 {
    let options = memserver_protocol::VmallocOptions { zero, ..unzeroed_options() };
    match s.ok(client, Request::VmallocWith { size: bytes, options }) {
        Reply::Address(addr) => addr,
        other => panic!("vmalloc: {other:?}"),
    }
}

fn vfree_purged(s: &mut System, client: Badge, addr: u64) {
    s.ok(client, Request::Vfree { addr });
    s.ok(ADMIN, Request::Purge);
}

/// An area asked for without zeroing may come with what its owner left in
/// its recycled frames, and never with anyone else's: another client's
/// area on the same frames holds zeros, as does the owner's own once it
/// held nothing (a badge given to a new program is a new holder).
#[test]
fn an_area_without_zeroing_shows_its_owners_old_data_and_no_one_elses() {
    let mut s = System::new(CPUS);
    let [a, b] = [CLIENTS[0], CLIENTS[1]];
    let spaces: Vec<u16> = [a, b].iter().map(|&c| s.register(c, 256 * MIB).space).collect();
    let (va, vb) = (s.vspace(spaces[0]), s.vspace(spaces[1]));
    let bytes = 64 * KIB;
    // The owner holds a page throughout, so its record (and holder) stays.
    let kept = vmalloc_zeroed(&mut s, a, PAGE_SIZE, true);
    // B too, so the failure below does not end its tenure.
    let b_kept = vmalloc_zeroed(&mut s, b, PAGE_SIZE, true);
    let first = vmalloc_zeroed(&mut s, a, bytes, true);
    let mut written = write_pages(&mut s, va, first, bytes, PAGE_SIZE);
    written.sort();
    vfree_purged(&mut s, a, first);

    let again = vmalloc_zeroed(&mut s, a, bytes, false);
    let mut frames = frames_of(&s, vb, again, bytes);
    frames.sort();
    assert_eq!(frames, written, "the owner's freed frames serve it again");
    assert!(holds_data(&s, vb, again, bytes), "not zeroed: as the owner left them, seen from another space");
    vfree_purged(&mut s, a, again);

    // The zeroing of the first of A's frames for B fails (the Page Map
    // that puts it in the zeroing window): B's vmalloc fails, and the
    // frame goes back still A's, so it is zeroed for B next time.
    let inject = Request::InjectFailure { point: memserver_protocol::FailurePoint::Map, nth: 1 };
    s.ok(ADMIN, inject);
    let failed = s.send(b, Request::VmallocWith { size: bytes, options: unzeroed_options() });
    assert!(matches!(failed, Reply::Error(_)), "{failed:?}");
    let other = vmalloc_zeroed(&mut s, b, bytes, false);
    let mut frames = frames_of(&s, va, other, bytes);
    frames.sort();
    assert_eq!(frames, written, "B's area is on the frames A freed");
    assert!(!holds_data(&s, va, other, bytes), "another client's area on those frames is zeroed");
    write_pages(&mut s, vb, other, bytes, PAGE_SIZE);
    vfree_purged(&mut s, b, other);
    vfree_purged(&mut s, b, b_kept);
    let zeroed = vmalloc_zeroed(&mut s, a, bytes, true);
    assert!(!holds_data(&s, vb, zeroed, bytes), "zeroed when asked");
    write_pages(&mut s, va, zeroed, bytes, PAGE_SIZE);
    vfree_purged(&mut s, a, zeroed);

    // The owner holds nothing: a new holder for its next area.
    vfree_purged(&mut s, a, kept);
    let fresh = vmalloc_zeroed(&mut s, a, bytes, false);
    assert!(!holds_data(&s, va, fresh, bytes), "a new tenure of the badge sees none of the old one's data");
    vfree_purged(&mut s, a, fresh);
    for space in spaces {
        s.ok(ADMIN, Request::Unregister { space });
    }
}
