//! Scenario tests of the populate path: registration before and after
//! mappings, unregistration, lazy repair, and each allocator end to end,
//! with the invariant checked after every step.

mod common;

use common::{check, server, ADMIN};
use memserver_core::invariant::{SimViolation, Violation};
use memserver_core::sim::Sim;
use memserver_core::{Access, Badge, CpuId, Error, FaultError, Pfn, Rights, VmallocFlags, VmemmapOptions};

const CLIENT: Badge = Badge(7);

#[test]
fn late_registration_receives_the_whole_region() {
    let mut s = server(2);
    let early = s.sim_hooks().new_vspace();
    let id = s.register_space(&s.admin(ADMIN).expect("admin"), early).expect("register");
    check(&s);
    let a = s.vmalloc(CLIENT, 5 * 4096, VmallocFlags::default()).expect("vmalloc");
    s.vmemmap_populate(CLIENT, Pfn::new(1000).unwrap(), 300, VmemmapOptions::default()).expect("populate");
    check(&s);
    let late = s.sim_hooks().new_vspace();
    let late_id = s.register_space(&s.admin(ADMIN).expect("admin"), late).expect("register late");
    check(&s);
    let sim: &Sim = s.region().backend();
    assert_eq!(sim.region_leaves(early), sim.region_leaves(late));
    assert!(sim.translate(late, a.get()).is_some());
    assert_eq!(s.register_space(&s.admin(ADMIN).expect("admin"), late), Err(Error::AlreadyRegistered));
    assert_eq!(s.admin(CLIENT).map(drop), Err(Error::NotAdmin), "a client cannot register");
    assert_eq!(s.unregister_space(&s.admin(ADMIN).expect("admin"), late_id), Ok(()));
    check(&s);
    assert!(s.region().backend().region_leaves(late).is_empty());
    assert_eq!(s.unregister_space(&s.admin(ADMIN).expect("admin"), late_id), Err(Error::NoSuchSpace));
    assert_eq!(s.unregister_space(&s.admin(ADMIN).expect("admin"), id), Ok(()));
    check(&s);
}

#[test]
fn a_fault_is_repaired_only_where_the_canonical_table_maps() {
    let mut s = server(1);
    let v = s.sim_hooks().new_vspace();
    let id = s.register_space(&s.admin(ADMIN).expect("admin"), v).expect("register");
    let a = s.vmalloc(CLIENT, 4096, VmallocFlags::default()).expect("vmalloc");
    assert_eq!(s.handle_fault(id, a.get() + 4096, Access::Read), Err(FaultError::NotMapped), "guard page");
    assert_eq!(s.handle_fault(id, 0x1000, Access::Read), Err(FaultError::OutsideRegion));
    assert_eq!(s.region().missed_syncs(), 0);
    // Lose the mapping behind the server's back: the next check sees it.
    assert!(s.sim_hooks().drop_mapping(v, a.get()));
    let lost = memserver_core::invariant::check(&s);
    assert!(
        matches!(lost, Err(Violation::Spaces(SimViolation::Translation { space, addr, expected: Some(_), found: None }))
            if space == id && addr == a.get()),
        "{lost:?}"
    );
    assert_eq!(s.handle_fault(id, a.get() + 8, Access::Write), Ok(()));
    assert_eq!(s.region().missed_syncs(), 1);
    check(&s);
    let other = memserver_core::SpaceId::new(5).unwrap();
    assert_eq!(s.handle_fault(other, a.get(), Access::Read), Err(FaultError::NoSuchSpace));
}

#[test]
fn vmalloc_vmap_and_vfree_with_lazy_purge() {
    let mut s = server(1);
    let v = s.sim_hooks().new_vspace();
    s.register_space(&s.admin(ADMIN).expect("admin"), v).expect("register");
    let a = s.vmalloc(CLIENT, 3 * 4096, VmallocFlags::default()).expect("vmalloc");
    let b = s.vmalloc(CLIENT, 4096, VmallocFlags::default()).expect("vmalloc");
    assert_eq!(b.get(), a.get() + 4 * 4096, "one guard page between areas");
    let frames = [s.sim_hooks().client_frame(), s.sim_hooks().client_frame()];
    let m = s.vmap(Badge(8), &frames, Rights::ReadOnly).expect("vmap");
    check(&s);
    assert_eq!(s.vfree(Badge(8), a), Err(Error::NotOwner));
    assert_eq!(s.vfree(CLIENT, a), Ok(()));
    assert_eq!(s.vfree(CLIENT, a), Err(Error::NotFound), "already freed");
    check(&s);
    assert!(s.translate(a.get()).is_some(), "still mapped until the purge");
    let c = s.vmalloc(CLIENT, 4096, VmallocFlags::default()).expect("vmalloc");
    assert!(c.get() > m.get(), "freed addresses are not reused before the purge");
    s.purge(&s.admin(ADMIN).expect("admin"));
    check(&s);
    assert!(s.translate(a.get()).is_none());
    let d = s.vmalloc(CLIENT, 4096, VmallocFlags::default()).expect("vmalloc");
    assert_eq!(d, a, "reused after the purge");
    for (who, addr) in [(CLIENT, b), (Badge(8), m), (CLIENT, c), (CLIENT, d)] {
        s.vfree(who, addr).expect("vfree");
    }
    s.purge(&s.admin(ADMIN).expect("admin"));
    check(&s);
    assert_eq!(s.census().canonical_leaves, s.region().canonical().leaf_count());
    assert_eq!(s.vmalloc_free_ranges().count(), 1);
}

#[test]
fn huge_vmalloc_uses_2mib_pages() {
    let mut s = server(1);
    let a = s.vmalloc(CLIENT, 3 << 20, VmallocFlags::HUGE).expect("vmalloc");
    assert_eq!(a.get() % (2 << 20), 0);
    assert_eq!(s.census().frames.large, 2, "rounded up to two 2 MiB pages");
    assert_eq!(s.usage(CLIENT).used, 4 << 20);
    check(&s);
}

#[test]
fn percpu_chunks_grow_and_shrink() {
    let mut s = server(4);
    let unit = memserver_core::limits::PERCPU_UNIT_SIZE;
    let first = s.percpu_alloc(CLIENT, unit, 16).expect("fills the first chunk");
    let second = s.percpu_alloc(CLIENT, 64, 64).expect("needs a new chunk");
    assert_eq!(s.census().percpu_chunks, 2);
    check(&s);
    let a0 = s.percpu_address(second, CpuId::new(0).unwrap()).expect("address");
    let a3 = s.percpu_address(second, CpuId::new(3).unwrap()).expect("address");
    assert_eq!(a3.get() - a0.get(), 3 * unit);
    assert!(s.translate(a3.get()).is_some());
    assert_eq!(s.percpu_address(second, CpuId::new(4).unwrap()), Err(Error::InvalidArgument));
    assert_eq!(s.percpu_free(Badge(9), second), Err(Error::NotOwner));
    s.percpu_free(CLIENT, second).expect("free");
    assert_eq!(s.census().percpu_chunks, 1, "empty chunk depopulated");
    s.percpu_free(CLIENT, first).expect("free");
    assert_eq!(s.census().percpu_chunks, 1, "the first chunk stays");
    check(&s);
}
