//! No client can starve another: a client registered without quotas gets
//! the default share of every kind, exhausts each kind up to it (areas,
//! percpu allocations, vmemmap ranges, frames, paging structures), and
//! every other client's next requests still succeed, in every space.

mod common;

use common::{check, server, ADMIN};
use memserver_core::limits::{DEFAULT_QUOTA_AREAS, DEFAULT_QUOTA_STRUCTURES};
use memserver_core::sim::Sim;
use memserver_core::vmalloc::VmallocFlags;
use memserver_core::vmemmap::VmemmapOptions;
use memserver_core::{Badge, Error, MemServer, Pfn};

const GREEDY: Badge = Badge(0x100);
const OTHER: Badge = Badge(0x101);
const PAGE: u64 = 4096;

/// What the other client does next: one of each request, all of which
/// must succeed and be undone.
fn other_still_served(s: &mut MemServer<Sim>, what: &str) {
    let area = s.vmalloc(OTHER, 3 * PAGE, VmallocFlags::default()).unwrap_or_else(|e| panic!("{what}: vmalloc {e:?}"));
    let offset = s.percpu_alloc(OTHER, 64, 8).unwrap_or_else(|e| panic!("{what}: percpu {e:?}"));
    let pfn = Pfn::new(1 << 30).expect("pfn");
    let range = s.vmemmap_populate(OTHER, pfn, 64, VmemmapOptions::default());
    assert_eq!(range, Ok(()), "{what}: vmemmap");
    for id in s.region().space_ids().collect::<Vec<_>>() {
        let vspace = s.region().vspace(id).expect("registered");
        assert!(s.region().backend().translate(vspace, area.get()).is_some(), "{what}: seen from space {}", id.index());
    }
    assert_eq!(s.vfree(OTHER, area), Ok(()));
    assert_eq!(s.percpu_free(OTHER, offset), Ok(()));
    assert_eq!(s.vmemmap_depopulate(OTHER, pfn, 64), Ok(()));
}

fn register(s: &mut MemServer<Sim>) {
    let v = s.sim_hooks().new_vspace();
    assert!(s.register_space(&s.admin(ADMIN).expect("admin"), v).is_ok());
}

/// Calls `request` until it fails; the failure must be the client's quota.
fn exhaust<T>(what: &str, mut request: impl FnMut(u64) -> Result<T, Error>) -> Vec<T> {
    let mut held = Vec::new();
    loop {
        match request(held.len() as u64) {
            Ok(t) => held.push(t),
            Err(e) => {
                assert_eq!(e, Error::QuotaExceeded, "{what} after {}", held.len());
                return held;
            }
        }
    }
}

#[test]
fn a_greedy_client_with_the_default_quota_exhausts_each_kind_and_others_are_served() {
    let mut s = server(2);
    for _ in 0..4 {
        register(&mut s);
    }
    // Areas: one page each, until the count or byte share runs out.
    let areas = exhaust("areas", |_| s.vmalloc(GREEDY, PAGE, VmallocFlags::default()));
    assert!(areas.len() as u64 <= DEFAULT_QUOTA_AREAS && areas.len() > 1000, "{} areas", areas.len());
    other_still_served(&mut s, "areas exhausted");
    for area in areas {
        assert_eq!(s.vfree(GREEDY, area), Ok(()));
    }
    s.purge(&s.admin(ADMIN).expect("admin"));
    // Percpu allocations: the smallest, until the share runs out.
    let offsets = exhaust("percpu", |_| s.percpu_alloc(GREEDY, 16, 16));
    assert!(offsets.len() > 1000, "{} allocations", offsets.len());
    other_still_served(&mut s, "percpu exhausted");
    for offset in offsets {
        assert_eq!(s.percpu_free(GREEDY, offset), Ok(()));
    }
    // vmemmap ranges, each in a 1 GiB slot of its own: descriptor frames
    // and paging structures in every space.
    let ranges = exhaust("vmemmap", |i| {
        s.vmemmap_populate(GREEDY, Pfn::new(i << 18).expect("pfn"), 64, VmemmapOptions::default()).map(|()| i << 18)
    });
    assert!(!ranges.is_empty());
    other_still_served(&mut s, "vmemmap exhausted");
    for start in ranges {
        assert_eq!(s.vmemmap_depopulate(GREEDY, Pfn::new(start).expect("pfn"), 64), Ok(()));
    }
    // Paging structures: areas 2 MiB apart, each needing a page table in
    // every space.
    let spread = exhaust("structures", |_| {
        let big = s.vmalloc(GREEDY, 2 << 20, VmallocFlags::default())?;
        Ok(big)
    });
    let charged = s.usage(GREEDY).objects.structures;
    assert!(charged <= DEFAULT_QUOTA_STRUCTURES, "{charged} structures");
    other_still_served(&mut s, "structures or frames exhausted");
    for area in spread {
        assert_eq!(s.vfree(GREEDY, area), Ok(()));
    }
    s.purge(&s.admin(ADMIN).expect("admin"));
    check(&s);
}

#[test]
fn a_client_at_its_quota_purges_only_its_own_freed_areas() {
    let mut s = server(1);
    register(&mut s);
    let admin = s.admin(ADMIN).expect("admin");
    let others = s.vmalloc(OTHER, PAGE, VmallocFlags::default()).expect("vmalloc");
    assert_eq!(s.vfree(OTHER, others), Ok(()));
    assert_eq!(s.set_quota(&admin, GREEDY, 4 * PAGE), Ok(()));
    let first = s.vmalloc(GREEDY, 4 * PAGE, VmallocFlags::default()).expect("vmalloc");
    assert_eq!(s.vfree(GREEDY, first), Ok(()));
    // Over its quota until its own freed area is purged.
    assert!(s.vmalloc(GREEDY, 4 * PAGE, VmallocFlags::default()).is_ok());
    let lazy: Vec<Badge> = s.vmalloc_areas().filter(|a| a.lazy).map(|a| a.owner).collect();
    assert_eq!(lazy, [OTHER], "the other client's freed area waits for the purge");
}

/// Through the wire: a registration whose quota names bytes only
/// (`Quota::bytes`) gets the default share of the other kinds, so the
/// client's areas stop at the default count, not at the server's memory.
#[test]
fn a_registration_with_bytes_only_gets_the_default_share_of_areas() {
    use common::dispatcher::{dispatcher, register, send};
    use memserver_protocol::{ErrorCode, Reply, Request};
    let mut d = dispatcher();
    register(&mut d, GREEDY);
    let mut held = 0;
    let refused = loop {
        match send(&mut d, GREEDY, Request::PercpuAlloc { size: 16, align: 16 }, None) {
            Reply::Offset(_) if held <= DEFAULT_QUOTA_AREAS => held += 1,
            other => break other,
        }
    };
    assert_eq!((refused, held), (Reply::Error(ErrorCode::QuotaExceeded), DEFAULT_QUOTA_AREAS));
}

/// The default share follows the server's memory: on a server given 64
/// MiB, a client registered without counts makes paging structures of at
/// most 4 MiB (1,024) with 4 KiB areas each 2 MiB-aligned (one page
/// table in each of four spaces apiece), then is refused; the server's
/// other fifteen sixteenths stay, and the other client is served.
#[test]
fn on_a_small_server_the_default_share_of_structures_is_a_sixteenth_of_its_memory() {
    const MEMORY: u64 = 64 << 20;
    let mut s = Box::new(MemServer::new(Sim::new(), memserver_core::Config { admin: ADMIN, cpus: 1 }));
    s.sim_hooks().set_memory_limit(Some(MEMORY));
    s.start(()).expect("server starts");
    assert_eq!(s.default_objects().structures, MEMORY / 16 / PAGE);
    for _ in 0..4 {
        register(&mut s);
    }
    let aligned = VmallocFlags { align: 2 << 20, ..VmallocFlags::default() };
    let areas = exhaust("aligned areas", |_| s.vmalloc(GREEDY, PAGE, aligned));
    let charged = s.usage(GREEDY).objects.structures;
    assert!(charged <= MEMORY / 16 / PAGE && charged + 4 * 4 > MEMORY / 16 / PAGE, "{charged} structures");
    assert!(areas.len() as u64 >= charged / 4 - 4, "{} areas for {charged} structures", areas.len());
    other_still_served(&mut s, "structures exhausted");
    for area in areas {
        assert_eq!(s.vfree(GREEDY, area), Ok(()));
    }
    s.purge(&s.admin(ADMIN).expect("admin"));
    check(&s);
}
