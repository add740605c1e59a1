//! The server's heap grows from its untyped memory (`memserver::heap`), as
//! the seL4 loop grows it after a request failed for want of heap: frames
//! of the untyped pool mapped writable at the heap's end in the server's
//! own VSpace, page tables made as the end reaches them, spare frames
//! taken out of the zeroing window with their kept copies deleted; and
//! when the untyped memory is gone, the growth fails and so do requests,
//! with nothing left inconsistent. The model checks every mapping and the
//! server's records of its slots, objects and untyped memory.

mod common;

use common::{System, KIB, MIB};
use memserver::heap::{HEAP_END, HEAP_START};
use memserver_core::harness::ADMIN;
use memserver_core::Badge;
use memserver_protocol::bootstrap::{cspace, server_slot};
use memserver_protocol::{ErrorCode, Reply, Request};

const A: Badge = Badge(1);
const CPUS: usize = 4;

/// The frames the server's own VSpace maps writable in the heap's
/// addresses.
fn heap_pages(s: &System) -> u64 {
    let model = s.model();
    let own = model.object_of(cspace::cptr(server_slot::VSPACE)).expect("the server's VSpace");
    let leaves = model.leaves(own, HEAP_START..HEAP_END);
    assert!(leaves.iter().all(|leaf| leaf.writable() && leaf.frame.is_some()));
    leaves.len() as u64
}

fn stats(s: &mut System) -> memserver_protocol::Stats {
    match s.ok(ADMIN, Request::Stats) {
        Reply::Stats(stats) => stats,
        other => panic!("stats: {other:?}"),
    }
}

#[test]
fn the_heap_grows_page_by_page_in_the_servers_own_vspace() {
    let mut s = System::new(CPUS);
    let before = (stats(&mut s), s.unused());
    s.d.grow_heap(MIB + 1).expect("a growth");
    s.check();
    assert_eq!(heap_pages(&s), 257, "1 MiB and a byte, in whole pages");
    s.d.grow_heap(3 * MIB).expect("a second growth");
    s.check();
    assert_eq!(heap_pages(&s), 1025);
    let after = stats(&mut s);
    // 1,025 frames and their PDPT, page directory and three page tables.
    assert_eq!(after.own_objects - before.0.own_objects, 1025 + 5);
    assert_eq!(after.own_bytes, after.own_objects * 4 * KIB);
    assert_eq!(before.0.untyped_free + before.0.spare_bytes - after.untyped_free - after.spare_bytes, 1030 * 4 * KIB);
    assert_eq!(s.unused(), before.1, "the server's own memory is held for no client");
}

/// Frames freed by clients serve the heap: a spare frame leaves the
/// zeroing window, its kept copies are deleted (their slots are free
/// again), and the heap takes memory until none is left; then growth and
/// requests fail cleanly, and what the clients hold is still theirs.
#[test]
fn the_heap_takes_spare_frames_and_stops_when_the_memory_is_gone() {
    let mut s = System::new(CPUS);
    let spaces: Vec<_> = (0..3).map(|_| s.register(A, 1 << 30)).collect();
    // Frames mapped in three spaces, freed, reused (zeroed through the
    // window), freed again: spare, with kept copies, in the window.
    for _ in 0..2 {
        let areas: Vec<_> = (0..8).map(|_| s.vmalloc(A, 64 * KIB, false)).collect();
        for addr in areas {
            s.ok(A, Request::Vfree { addr });
        }
        s.ok(ADMIN, Request::Purge);
    }
    let kept = s.vmalloc(A, 256 * KIB, false);
    // Page tables of 4 MiB of its own, which the purge keeps.
    let far = s.vmalloc(A, 4 * MIB, false);
    s.ok(A, Request::Vfree { addr: far });
    s.ok(ADMIN, Request::Purge);
    assert!(s.d.server().census().kept_structures > 0);
    let spare = stats(&mut s);
    assert!(spare.spare_objects > 0, "{spare:?}");
    let mut growths = 0;
    while s.d.grow_heap(4 * MIB).is_ok() {
        growths += 1;
        s.check();
    }
    s.check();
    assert_eq!(s.d.server().census().kept_structures, 0, "the growth that found no memory took them back first");
    let gone = stats(&mut s);
    assert!(growths > 1, "{growths} growths");
    assert_eq!(gone.untyped_free, 0);
    let pages = heap_pages(&s);
    // A page table per 2 MiB of heap, its PD and PDPT, and the zeroing
    // window's three structures.
    assert_eq!(gone.own_objects - pages, pages.div_ceil(512) + 2 + 3);
    assert!(gone.spare_objects < spare.spare_objects, "the spare frames and their copies went to the heap");
    assert!(pages * 4 * KIB > 24 * MIB, "{pages} pages of the server's 32 MiB");
    assert_eq!(
        s.send(A, Request::Vmalloc { size: 64 * KIB, large_pages: false }),
        Reply::Error(ErrorCode::OutOfMemory)
    );
    s.ok(A, Request::Vfree { addr: kept });
    s.ok(ADMIN, Request::Purge);
    for registration in spaces {
        s.ok(ADMIN, Request::Unregister { space: registration.space });
    }
}

/// Areas of `size` bytes (`large` pages) for `A` until the server's memory
/// runs out, calling `between` after each.
fn fill(s: &mut System, size: u64, large: bool, mut between: impl FnMut(&mut System)) -> Vec<u64> {
    let mut areas = Vec::new();
    loop {
        match s.send(A, Request::Vmalloc { size, large_pages: large }) {
            Reply::Address(addr) => areas.push(addr),
            Reply::Error(ErrorCode::OutOfMemory) => return areas,
            other => panic!("vmalloc: {other:?}"),
        }
        between(s);
    }
}

fn free(s: &mut System, areas: Vec<u64>) {
    for addr in areas {
        s.ok(A, Request::Vfree { addr });
    }
    s.ok(ADMIN, Request::Purge);
}

/// The heap's frames gather in granules of their own: a heap that grows
/// while a client fills the memory with 4 KiB pages takes no frame beside
/// the client's, so once the client freed them the memory serves 2 MiB
/// pages again, all but the granules the heap took.
#[test]
fn a_heap_grown_amid_client_frames_leaves_their_memory_to_large_pages() {
    let mut s = System::new(CPUS);
    let registration = s.register(A, 1 << 30);
    let large = fill(&mut s, 2 * MIB, true, |_| {});
    let n = large.len();
    free(&mut s, large);
    let before = heap_pages(&s);
    // The heap grows (each growth at least doubles it) after the 4th,
    // 8th, 16th, 32nd and 64th area, each time amid the client's frames.
    let mut count = 0u32;
    let small = fill(&mut s, 256 * KIB, false, |s| {
        count += 1;
        if count >= 4 && count.is_power_of_two() && count <= 64 {
            s.d.grow_heap(16 * KIB).expect("a growth");
        }
    });
    assert!(small.len() > 64, "{} areas of 4 KiB pages after {n} of 2 MiB", small.len());
    let grown = heap_pages(&s) - before;
    assert!(grown >= 64, "the heap grew by {grown} pages");
    free(&mut s, small);
    let again = fill(&mut s, 2 * MIB, true, |_| {});
    // The heap's pages, their page tables and a granule partly used
    // before: whole granules' worth, and one more.
    let held = (grown + grown.div_ceil(512)).div_ceil(512) as usize + 1;
    assert!(
        again.len() + held >= n,
        "{} areas of 2 MiB pages where {n} fitted; the heap grew by {grown} pages",
        again.len()
    );
    free(&mut s, again);
    s.ok(ADMIN, Request::Unregister { space: registration.space });
}
