//! The paging structures a purge keeps, over the model of seL4: the next
//! area in their range maps its pages and makes none, a 2 MiB page takes
//! the place of the page tables kept below it, and memory that runs out
//! takes them back before any request fails for it.

mod common;

use common::{System, MIB};
use memserver_core::backend::OpKind;
use memserver_core::ids::Badge;
use memserver_protocol::{Page, Quota, Reply, Request, Translation, VmallocOptions};

const A: Badge = Badge(0x100);
const B: Badge = Badge(0x200);
/// A quota no count of which stops these tests.
const UNLIMITED: Quota =
    Quota { bytes: 1 << 40, frames: Quota::NO_LIMIT, structures: Quota::NO_LIMIT, areas: Quota::NO_LIMIT };

fn vfree_purged(s: &mut System, client: Badge, addr: u64) {
    s.ok(client, Request::Vfree { addr });
    s.ok(memserver_core::harness::ADMIN, Request::Purge);
}

fn kept(s: &System) -> u64 {
    s.d.server().census().kept_structures
}

fn page_at(s: &mut System, client: Badge, addr: u64) -> Page {
    match s.ok(client, Request::Translate { addr }) {
        Reply::Translation(Some(Translation { page, .. })) => page,
        other => panic!("translate: {other:?}"),
    }
}

#[test]
fn the_next_area_reuses_the_kept_structures_and_a_2_mib_page_takes_their_place() {
    let mut s = System::new(1);
    for client in [A, B] {
        s.try_register(client, UNLIMITED);
    }
    let small = s.vmalloc(A, 4 * MIB, false);
    vfree_purged(&mut s, A, small);
    let structures = kept(&s);
    assert!(structures >= 2 * 2, "two page tables at least, in both spaces: {structures}");
    let (unused, structures_before) = (s.unused(), s.d.server().census().ops.get(OpKind::CreateStructure));
    assert_eq!(s.d.stats().structures + structures, s.d.server().census().space_structures);

    let again = s.vmalloc(B, 4 * MIB, false);
    assert_eq!((again, kept(&s)), (small, 0), "the same addresses, on the kept structures");
    let made = |s: &System| s.d.server().census().ops.get(OpKind::CreateStructure);
    assert_eq!(made(&s), structures_before, "no structure made");
    vfree_purged(&mut s, B, again);
    assert_eq!(s.unused(), unused, "kept structures count as spare objects");

    let large = s.vmalloc(B, 4 * MIB, true);
    assert_eq!(large, small, "the 2 MiB pages go where the page tables were kept");
    assert_eq!(page_at(&mut s, B, large + MIB), Page::Large);
    assert!(kept(&s) < structures, "the page tables under the 2 MiB pages are gone");
}

/// How many bytes `client` can vmalloc, in areas of `step` bytes, before
/// memory runs out.
fn fill(s: &mut System, client: Badge, step: u64) -> u64 {
    let mut got = 0;
    loop {
        match s.send(client, Request::Vmalloc { size: step, large_pages: false }) {
            Reply::Address(_) => got += step,
            Reply::Error(memserver_protocol::ErrorCode::OutOfMemory) => return got,
            other => panic!("vmalloc: {other:?}"),
        }
    }
}

#[test]
fn memory_running_out_takes_the_kept_structures_back() {
    const AREAS: u64 = 400;
    const STEP: u64 = 256 << 10;
    let mut s = System::with_memory(1, 24);
    for client in [A, B] {
        s.try_register(client, UNLIMITED);
    }
    // One page in each 2 MiB: a page table each, kept once purged.
    let options = VmallocOptions::aligned(2 * MIB);
    let areas: Vec<u64> = (0..AREAS)
        .map(|_| match s.ok(A, Request::VmallocWith { size: 4096, options }) {
            Reply::Address(addr) => addr,
            other => panic!("vmalloc: {other:?}"),
        })
        .collect();
    for addr in areas {
        s.ok(A, Request::Vfree { addr });
    }
    s.ok(memserver_core::harness::ADMIN, Request::Purge);
    assert!(kept(&s) >= 2 * AREAS, "{} kept", kept(&s));
    let got = fill(&mut s, B, STEP);
    assert_eq!(kept(&s), 0, "B's requests ran out of memory only once the kept structures were given up");
    assert!(got >= 16 * MIB, "B got {got} bytes of 32 MiB");
}
