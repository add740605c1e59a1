//! The server's capacities are bounded by memory, not by tables: each test
//! reaches one figure a real system needs, over the simulated MMU, checks
//! the result from the spaces, and frees everything back to the baseline.
//! 4,096 registered spaces (seL4 x86-64's ASIDs), 100,000 live vmalloc
//! areas, 1,000,000 mapped 4 KiB pages, one request of 1 GiB, 10,000
//! percpu allocations, vmemmap for 64 GiB on 2 MiB frames and for 1 TiB of
//! order-18 compound pages, and 256 CPUs.

mod common;

use common::{check, server, snapshot, ADMIN};
use memserver_core::limits::MAX_PAGES_PER_OP;
use memserver_core::sim::Sim;
use memserver_core::vmalloc::VmallocFlags;
use memserver_core::vmemmap::VmemmapOptions;
use memserver_core::{Badge, CpuId, Error, Limit, MemServer, Objects, Pfn, SpaceId};

const CLIENT: Badge = Badge(0x100);
const PAGE: u64 = 4096;
const GIB: u64 = 1 << 30;

/// Gives the client quotas larger than anything these tests hold.
fn unbounded(s: &mut MemServer<Sim>) {
    let admin = s.admin(ADMIN).expect("admin");
    assert_eq!(s.set_quota(&admin, CLIENT, u64::MAX / 4), Ok(()));
    assert_eq!(s.set_object_quota(&admin, CLIENT, Objects::UNLIMITED), Ok(()));
}

fn register(s: &mut MemServer<Sim>) -> SpaceId {
    let v = s.sim_hooks().new_vspace();
    s.register_space(&s.admin(ADMIN).expect("admin"), v).expect("registered")
}

/// Whether space `id` maps `raw` to the frame the canonical table has there.
fn seen_from(s: &MemServer<Sim>, id: SpaceId, raw: u64) -> bool {
    let vspace = s.region().vspace(id).expect("registered");
    let canonical = s.translate(raw).map(|l| l.frame);
    canonical.is_some() && s.region().backend().translate(vspace, raw).map(|m| m.frame) == canonical
}

#[test]
fn four_thousand_and_ninety_six_spaces_each_hold_the_region_and_see_every_change() {
    let mut s = server(1);
    let frames = s.census().frames;
    let spaces: Vec<SpaceId> = (0..4096).map(|_| register(&mut s)).collect();
    assert_eq!(s.census().spaces, 4096);
    assert_eq!(spaces.last().map(|id| id.index()), Some(4095));
    let area = s.vmalloc(CLIENT, 2 * PAGE, VmallocFlags::default()).expect("vmalloc in 4,096 spaces");
    for id in &spaces {
        assert!(seen_from(&s, *id, area.get()) && seen_from(&s, *id, area.get() + PAGE), "space {}", id.index());
    }
    check(&s);
    assert_eq!(s.vfree(CLIENT, area), Ok(()));
    let admin = s.admin(ADMIN).expect("admin");
    s.purge(&admin);
    for id in spaces {
        assert_eq!(s.unregister_space(&admin, id), Ok(()));
    }
    let census = s.census();
    assert_eq!((census.spaces, census.space_structures, census.frames), (0, 0, frames));
    assert_eq!(s.region().backend().live_structures(), 0);
}

#[test]
fn a_hundred_thousand_live_vmalloc_areas_in_two_spaces() {
    const AREAS: usize = 100_000;
    let mut s = server(1);
    unbounded(&mut s);
    let spaces = [register(&mut s), register(&mut s)];
    let frames = s.census().frames;
    let areas: Vec<_> = (0..AREAS)
        .map(|i| s.vmalloc(CLIENT, PAGE, VmallocFlags::default()).unwrap_or_else(|e| panic!("area {i}: {e:?}")))
        .collect();
    assert_eq!(s.census().vmalloc_areas, AREAS);
    for area in areas.iter().step_by(997) {
        assert!(spaces.iter().all(|id| seen_from(&s, *id, area.get())));
    }
    check(&s);
    for area in areas {
        assert_eq!(s.vfree(CLIENT, area), Ok(()));
    }
    s.purge(&s.admin(ADMIN).expect("admin"));
    assert_eq!(s.census().vmalloc_areas, 0);
    assert_eq!(s.census().frames, frames);
}

#[test]
fn a_million_mapped_pages_in_requests_of_one_gib() {
    let mut s = server(1);
    unbounded(&mut s);
    let id = register(&mut s);
    let flags = VmallocFlags::default();
    let too_large = (MAX_PAGES_PER_OP as u64 + 1) * PAGE;
    assert_eq!(s.vmalloc(CLIENT, too_large, flags), Err(Error::LimitReached(Limit::PagesPerOp)));
    let areas: Vec<_> = (0..4).map(|_| s.vmalloc(CLIENT, GIB, flags).expect("1 GiB in one request")).collect();
    let leaves = s.census().canonical_leaves;
    assert!(leaves >= 1_000_000, "{leaves} pages mapped");
    assert_eq!(s.census().frames.small as usize, leaves);
    for area in &areas {
        assert!(seen_from(&s, id, area.get()) && seen_from(&s, id, area.get() + GIB - PAGE));
    }
    for area in areas {
        assert_eq!(s.vfree(CLIENT, area), Ok(()));
    }
    s.purge(&s.admin(ADMIN).expect("admin"));
    assert!(s.census().canonical_leaves < 100, "only the first percpu chunk stays");
}

#[test]
fn ten_thousand_percpu_allocations_create_and_depopulate_chunks() {
    const ALLOCS: usize = 10_000;
    let mut s = server(4);
    unbounded(&mut s);
    let spaces = [register(&mut s), register(&mut s)];
    let before = snapshot(&s);
    let offsets: Vec<_> = (0..ALLOCS).map(|i| s.percpu_alloc(CLIENT, 8 << (i % 4), 8).expect("percpu")).collect();
    let chunks = s.census().percpu_chunks;
    assert!(chunks > 8, "{chunks} chunks");
    for offset in offsets.iter().step_by(101) {
        for cpu in 0..4 {
            let addr = s.percpu_address(*offset, CpuId::new(cpu).expect("cpu")).expect("mapped");
            assert!(spaces.iter().all(|id| seen_from(&s, *id, addr.get())));
        }
    }
    check(&s);
    for offset in offsets {
        assert_eq!(s.percpu_free(CLIENT, offset), Ok(()));
    }
    assert_eq!(s.census().percpu_chunks, 1, "every chunk but the first is depopulated");
    assert_eq!(snapshot(&s), before);
}

#[test]
fn vmemmap_for_64_gib_on_2_mib_frames_and_for_1_tib_of_compound_pages() {
    let mut s = server(1);
    unbounded(&mut s);
    let spaces = [register(&mut s), register(&mut s)];
    let frames = s.census().frames;
    let base_pfns = 64 * GIB / PAGE;
    let huge = VmemmapOptions { huge: true, compound_order: None };
    assert_eq!(s.vmemmap_populate(CLIENT, Pfn::new(0).expect("pfn"), base_pfns, huge), Ok(()));
    assert_eq!(s.census().frames.large, 512, "1 GiB of descriptors in 2 MiB frames");
    // 1 TiB of order-18 (1 GiB) compound pages, a request mapping at most
    // 1 GiB of descriptors' addresses each.
    let compound = VmemmapOptions { huge: false, compound_order: Some(18) };
    let start = base_pfns;
    let per_request = 64 << 18;
    for i in 0..16u64 {
        let at = Pfn::new(start + i * per_request).expect("pfn");
        assert_eq!(s.vmemmap_populate(CLIENT, at, per_request, compound), Ok(()), "request {i}");
    }
    let descriptors = memserver_core::layout::Area::Vmemmap.start();
    for id in spaces {
        assert!(seen_from(&s, id, descriptors) && seen_from(&s, id, descriptors + 64 * GIB / PAGE * 64 - 64));
        assert!(seen_from(&s, id, descriptors + (start + 16 * per_request - 1) * 64));
    }
    let unique = s.census().frames.small;
    assert!(unique < 16 * 64 * 4, "compound pages share their tail frames: {unique} frames for 1 TiB");
    assert_eq!(s.vmemmap_depopulate(CLIENT, Pfn::new(0).expect("pfn"), base_pfns), Ok(()));
    for i in 0..16u64 {
        let at = Pfn::new(start + i * per_request).expect("pfn");
        assert_eq!(s.vmemmap_depopulate(CLIENT, at, per_request), Ok(()));
    }
    assert_eq!(s.census().frames, frames);
}

#[test]
fn percpu_serves_as_many_cpus_as_the_kernel_boots() {
    const CPUS: usize = 256;
    let mut s = server(CPUS);
    let id = register(&mut s);
    assert_eq!(s.percpu_layout().cpus as usize, CPUS);
    let offset = s.percpu_alloc(CLIENT, 64, 64).expect("percpu");
    let last = s.percpu_address(offset, CpuId::new(CPUS - 1).expect("cpu")).expect("the last CPU's unit");
    assert!(seen_from(&s, id, last.get()));
    assert_eq!(s.percpu_address(offset, CpuId::new(CPUS).expect("cpu")), Err(Error::InvalidArgument));
    check(&s);
}
