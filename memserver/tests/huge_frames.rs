//! 1 GiB frames, served by the seL4 backend over the model of seL4 with two
//! 1 GiB untypeds: a vmalloc of 1 GiB with `huge_pages` is one 1 GiB
//! frame mapped in every registered space (what one space writes, another
//! reads in the same frame), made from a block of untyped memory none of
//! whose objects is in use; a block holding objects in use is not taken,
//! and without an idle block the request fails with nothing changed. Once
//! freed, the block is untyped memory again (the next 1 GiB frame from it
//! is fresh), and at the end the untyped memory and slots not in use are
//! as after start.

mod common;

use common::{System, MIB};
use memserver_core::dispatch::CapUse;
use memserver_core::harness::ADMIN;
use memserver_core::invariant::snapshot;
use memserver_core::layout::PAGE_SIZE;
use memserver_core::Badge;
use memserver_protocol::{ErrorCode, Quota, Registration, Reply, Request, VmallocOptions};
use sel4_model::FrameSize;

const CPUS: usize = 2;
const A: Badge = Badge(1);
const B: Badge = Badge(2);
const GIB: u64 = 1 << 30;
const HUGE: VmallocOptions = VmallocOptions { huge_pages: true, ..VmallocOptions::DEFAULT };

fn register(s: &mut System, client: Badge, bytes: u64) -> Registration {
    match s.try_register(client, Quota::bytes_only(bytes)) {
        (Reply::Space(registration), CapUse::Kept) => registration,
        other => panic!("register: {other:?}"),
    }
}

fn vmalloc(s: &mut System, client: Badge, size: u64, options: VmallocOptions) -> Result<u64, ErrorCode> {
    match s.send(client, Request::VmallocWith { size, options }) {
        Reply::Address(addr) => Ok(addr),
        Reply::Error(code) => Err(code),
        other => panic!("vmalloc: {other:?}"),
    }
}

#[test]
fn a_1_gib_area_is_one_frame_in_every_space_from_an_idle_block() {
    let mut s = System::with_memory(CPUS, 30);
    let start = s.unused();
    let spaces: Vec<u16> = [A, A, B].into_iter().map(|client| register(&mut s, client, 3 * GIB).space).collect();
    // B's small areas put objects in use in one block.
    let small: Vec<u64> =
        (0..8).map(|_| vmalloc(&mut s, B, 64 * PAGE_SIZE, VmallocOptions::DEFAULT).unwrap()).collect();

    let addr = vmalloc(&mut s, A, GIB, HUGE).expect("the other block becomes a 1 GiB frame");
    assert_eq!(addr % GIB, 0);
    let writer = s.vspace(spaces[0]);
    let written = s.model_mut().write(writer, addr + GIB - 8).expect("mapped writable");
    for &space in &spaces {
        let leaf = s.model().translate(s.vspace(space), addr + 12345 * PAGE_SIZE).expect("mapped in every space");
        assert_eq!((leaf.size, leaf.frame), (FrameSize::Huge, Some(written)), "space {space}");
    }
    assert!(s.model().holds_data(written));
    assert!(s.model().translate(s.vspace(spaces[2]), addr + GIB).is_none(), "a guard page follows");

    // No block is idle: B's objects are in use in the other.
    let before = snapshot(s.d.server());
    assert_eq!(vmalloc(&mut s, A, GIB, HUGE), Err(ErrorCode::OutOfMemory));
    assert_eq!(snapshot(s.d.server()), before, "nothing changed");
    assert!(vmalloc(&mut s, B, 16 * MIB, VmallocOptions::DEFAULT).is_ok(), "4 KiB objects still come");

    // Freed and purged, the frame's block is idle again and serves the
    // next 1 GiB frame, fresh from its Retype: what A wrote is gone.
    s.ok(A, Request::Vfree { addr });
    s.ok(ADMIN, Request::Purge);
    let again = vmalloc(&mut s, A, GIB, HUGE).expect("the block, remade, is a 1 GiB frame again");
    let leaf = s.model().translate(s.vspace(spaces[2]), again + GIB - 8).expect("mapped");
    assert_eq!(leaf.size, FrameSize::Huge);
    assert!(!s.model().holds_data(leaf.frame.expect("a live frame")), "fresh from its Retype");
    s.ok(A, Request::Vfree { addr: again });
    for area in small {
        s.ok(B, Request::Vfree { addr: area });
    }
    s.ok(ADMIN, Request::Purge);
    for space in spaces {
        s.ok(ADMIN, Request::Unregister { space });
    }
    assert_eq!(s.unused(), start, "untyped memory and slots as after start");
}
