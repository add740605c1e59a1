//! Exhaustion injection: for each multi-page operation, make the backend
//! fail at its k-th creating step for every k until the operation no longer
//! reaches the failure; after each failure the state and accounting must be
//! exactly as before, and the invariant must hold. Also: running out of
//! frames and reaching fixed limits are errors with no partial mapping.

mod common;

use common::{check, server, snapshot, ADMIN};
use memserver_core::layout::{DESCRIPTOR_SIZE, TOP_ENTRY_SPAN};
use memserver_core::sim::Sim;
use memserver_core::{Area, Badge, Error, Limit, MemServer, Pfn, Rights, VmallocAddr, VmallocFlags, VmemmapOptions};

const CLIENT: Badge = Badge(5);

/// A server with two spaces and some content, so that failures happen with
/// existing structures around.
fn populated() -> Box<MemServer<Sim>> {
    let mut s = server(3);
    for _ in 0..2 {
        let v = s.sim_hooks().new_vspace();
        s.register_space(&s.admin(ADMIN).expect("admin"), v).expect("register");
    }
    // Two areas one guard page apart: the first cannot grow in place.
    s.vmalloc(CLIENT, 3 * 4096, VmallocFlags::default()).expect("vmalloc");
    s.vmalloc(CLIENT, 4096, VmallocFlags::default()).expect("vmalloc");
    s.vmemmap_populate(CLIENT, Pfn::new(4096).unwrap(), 64, VmemmapOptions::default()).expect("populate");
    s.percpu_alloc(CLIENT, memserver_core::limits::PERCPU_UNIT_SIZE, 8).expect("fill the first percpu chunk");
    s
}

/// Run `op` with a failure injected at every step k; returns how many steps
/// the operation takes when nothing fails.
fn inject_everywhere(name: &str, op: impl Fn(&mut MemServer<Sim>) -> Result<(), Error>) -> u64 {
    for k in 0.. {
        let mut s = populated();
        let before = snapshot(&s);
        s.sim_hooks().fail_after(Some(k));
        let result = op(&mut s);
        if !s.region().backend().failure_pending() {
            assert_eq!(result, Err(Error::OutOfMemory), "{name}: step {k} failed, so must the operation");
            assert_eq!(snapshot(&s), before, "{name}: state after failing at step {k}");
            check(&s);
        } else {
            assert_eq!(result, Ok(()), "{name} without failure");
            check(&s);
            return k;
        }
    }
    unreachable!()
}

#[test]
fn every_failing_step_rolls_back_exactly() {
    let boundary = TOP_ENTRY_SPAN / DESCRIPTOR_SIZE;
    let steps = [
        inject_everywhere("vmalloc across page tables", |s| {
            s.vmalloc(CLIENT, 520 * 4096, VmallocFlags::default()).map(|_| ())
        }),
        inject_everywhere("huge vmalloc", |s| s.vmalloc(CLIENT, 4 << 20, VmallocFlags::HUGE).map(|_| ())),
        inject_everywhere("vrealloc growing in place across page tables", |s| {
            let second = VmallocAddr::new(Area::Vmalloc.start() + 4 * 4096).expect("address");
            s.vrealloc(CLIENT, second, 520 * 4096).map(|r| assert!(!r.moved))
        }),
        inject_everywhere("vrealloc moving", |s| {
            let first = VmallocAddr::new(Area::Vmalloc.start()).expect("address");
            s.vrealloc(CLIENT, first, 600 * 4096).map(|r| assert!(r.moved))
        }),
        inject_everywhere("vmap", |s| {
            let frames: Vec<_> = (0..5).map(|_| s.sim_hooks().client_frame()).collect();
            s.vmap(CLIENT, &frames, Rights::ReadWrite).map(|_| ())
        }),
        inject_everywhere("compound vmemmap across the top-level boundary", |s| {
            let options = VmemmapOptions { huge: false, compound_order: Some(8) };
            s.vmemmap_populate(CLIENT, Pfn::new(boundary - 512).unwrap(), 1024, options)
        }),
        inject_everywhere("huge vmemmap", |s| {
            s.vmemmap_populate(
                CLIENT,
                Pfn::new(1 << 20).unwrap(),
                3 << 15,
                VmemmapOptions { huge: true, compound_order: None },
            )
        }),
        inject_everywhere("percpu growing a chunk", |s| s.percpu_alloc(CLIENT, 8, 8).map(|_| ())),
        inject_everywhere("late registration", |s| {
            let v = s.sim_hooks().new_vspace();
            s.register_space(&s.admin(ADMIN).expect("admin"), v).map(|_| ())
        }),
    ];
    assert!(steps.iter().all(|&k| k > 2), "each operation has several steps: {steps:?}");
}

#[test]
fn out_of_frames_and_limits_leave_nothing_behind() {
    let mut s = populated();
    let before = snapshot(&s);
    let live = s.region().backend().frame_bytes();
    s.sim_hooks().set_memory_limit(Some(live + 10 * 4096));
    assert_eq!(s.vmalloc(CLIENT, 11 * 4096, VmallocFlags::default()), Err(Error::OutOfMemory));
    assert_eq!(snapshot(&s), before);
    s.sim_hooks().set_memory_limit(None);
    let too_many = memserver_core::limits::MAX_PAGES_PER_OP as u64 + 1;
    // Quota enough for more than one request may map.
    assert_eq!(s.set_quota(&s.admin(ADMIN).expect("admin"), CLIENT, 4 * too_many * 4096), Ok(()));
    assert_eq!(
        s.vmalloc(CLIENT, too_many * 4096, VmallocFlags::default()),
        Err(Error::LimitReached(Limit::PagesPerOp))
    );
    assert_eq!(
        s.vmemmap_populate(CLIENT, Pfn::new(1 << 24).unwrap(), too_many * 64, VmemmapOptions::default()),
        Err(Error::LimitReached(Limit::PagesPerOp))
    );
    assert_eq!(s.set_quota(&s.admin(ADMIN).expect("admin"), CLIENT, 1), Ok(()));
    assert_eq!(s.vmalloc(CLIENT, 4096, VmallocFlags::default()), Err(Error::QuotaExceeded));
    assert_eq!(s.admin(CLIENT).map(drop), Err(Error::NotAdmin), "only the administrator sets quotas");
    assert_eq!(
        s.set_quota(&s.admin(ADMIN).expect("admin"), CLIENT, memserver_core::limits::DEFAULT_QUOTA_BYTES),
        Ok(())
    );
    assert_eq!(snapshot(&s), before);
    check(&s);
}

#[test]
fn bad_requests_are_errors_that_change_nothing() {
    let mut s = populated();
    let before = snapshot(&s);
    let order = |o| VmemmapOptions { huge: false, compound_order: Some(o) };
    assert_eq!(s.vmalloc(CLIENT, 0, VmallocFlags::default()), Err(Error::InvalidArgument));
    assert_eq!(s.vmalloc(CLIENT, u64::MAX, VmallocFlags::HUGE), Err(Error::InvalidArgument));
    assert_eq!(s.vmap(CLIENT, &[], Rights::ReadOnly), Err(Error::InvalidArgument));
    assert_eq!(
        s.vmemmap_populate(CLIENT, Pfn::new(0).unwrap(), 0, VmemmapOptions::default()),
        Err(Error::InvalidArgument)
    );
    assert_eq!(s.vmemmap_populate(CLIENT, Pfn::new(100).unwrap(), 256, order(8)), Err(Error::InvalidArgument));
    assert_eq!(s.vmemmap_populate(CLIENT, Pfn::new(0).unwrap(), 256, order(30)), Err(Error::InvalidArgument));
    let max = memserver_core::ids::MAX_PFN;
    assert_eq!(
        s.vmemmap_populate(CLIENT, Pfn::new(max - 1).unwrap(), 2, VmemmapOptions::default()),
        Err(Error::InvalidArgument)
    );
    assert_eq!(
        s.vmemmap_populate(CLIENT, Pfn::new(4000).unwrap(), 100, VmemmapOptions::default()),
        Err(Error::Overlap)
    );
    assert_eq!(
        s.vmemmap_populate(Badge(9), Pfn::new(4100).unwrap(), 4, VmemmapOptions::default()),
        Err(Error::NotOwner),
        "populated by another client"
    );
    assert_eq!(
        s.vmemmap_populate(CLIENT, Pfn::new(4100).unwrap(), 4, VmemmapOptions::default()),
        Ok(()),
        "populated by the caller already"
    );
    assert_eq!(s.vmemmap_depopulate(Badge(9), Pfn::new(4096).unwrap(), 64), Err(Error::NotOwner));
    assert_eq!(s.vmemmap_depopulate(CLIENT, Pfn::new(4096).unwrap(), 63), Err(Error::NotFound));
    assert_eq!(s.percpu_alloc(CLIENT, 0, 8), Err(Error::InvalidArgument));
    assert_eq!(s.percpu_alloc(CLIENT, 8, 3), Err(Error::InvalidArgument));
    assert_eq!(s.percpu_free(CLIENT, memserver_core::PercpuOffset::new(12345)), Err(Error::NotFound));
    let stranger = memserver_core::SpaceId::new(9).unwrap();
    assert_eq!(s.unregister_space(&s.admin(ADMIN).expect("admin"), stranger), Err(Error::NoSuchSpace));
    assert_eq!(snapshot(&s), before);
}

#[test]
fn requests_before_start_are_refused() {
    let mut s = Box::new(MemServer::new(Sim::new(), memserver_core::Config { admin: ADMIN, cpus: 0 }));
    assert_eq!(s.vmalloc(CLIENT, 4096, VmallocFlags::default()), Err(Error::NotStarted));
    assert_eq!(s.start(()), Err(Error::InvalidArgument), "zero CPUs");
    assert_eq!(s.percpu_alloc(CLIENT, 8, 8), Err(Error::NotStarted));
}
