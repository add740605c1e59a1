//! The protocol side of the server on the host: requests as the seL4 loop
//! receives them (message words and badges), decoded and dispatched over
//! the simulated MMU, with the invariant checked after every message.

mod common;

use client_lib::bootstrap::FaultKind;
use client_lib::protocol::{ErrorCode, FailurePoint, Quota, Reply, Request, PROTOCOL_VERSION, REQUESTS};
use client_lib::wire::Words;
use memserver::dispatch::{CapUse, Dispatcher};
use memserver::layout::{LARGE_PAGE_SIZE, PAGE_SIZE};
use memserver::limits::LAZY_PURGE_BYTES;
use memserver::sim::{Sim, SimVSpace};
use memserver::{Access, Badge, Config};

const ADMIN: Badge = common::ADMIN;
const A: Badge = Badge(0x100);
const B: Badge = Badge(0x101);
const MIB: u64 = 1 << 20;

/// A started dispatcher on the heap. Built on a thread with a large stack:
/// unoptimised builds move the half-megabyte server through the stack
/// several times on its way into the box.
fn dispatcher() -> Box<Dispatcher<Sim>> {
    let build = || {
        let mut d = Box::new(Dispatcher::new(Sim::new(), Config { admin: ADMIN, cpus: 4 }));
        d.start().expect("server starts");
        d
    };
    std::thread::Builder::new().stack_size(64 << 20).spawn(build).unwrap().join().unwrap()
}

/// Sends `request` from `caller` (with `cap`), checks the invariant, and
/// returns the reply.
fn send(d: &mut Dispatcher<Sim>, caller: Badge, request: Request, cap: Option<SimVSpace>) -> Reply {
    let (reply, _) = d.handle(caller, &Words::encode(&request).unwrap(), cap);
    common::check(d.server());
    assert!(Words::encode(&reply).is_some(), "reply {reply:?} does not fit a message");
    reply
}

/// Registers a new VSpace for `client`; returns its space id.
fn register(d: &mut Dispatcher<Sim>, client: Badge) -> u8 {
    register_quota(d, client, Quota::bytes(64 * MIB))
}

/// Registers a new VSpace for `client` with `quota`; returns its space id.
fn register_quota(d: &mut Dispatcher<Sim>, client: Badge, quota: Quota) -> u8 {
    let vspace = d.backend_mut().new_vspace();
    let (reply, cap_use) =
        d.handle(ADMIN, &Words::encode(&Request::Register { client: client.0, quota }).unwrap(), Some(vspace));
    assert_eq!(cap_use, CapUse::Kept);
    match reply {
        Reply::Space(space) => space,
        other => panic!("register: {other:?}"),
    }
}

fn address(reply: Reply) -> u64 {
    match reply {
        Reply::Address(addr) => addr,
        other => panic!("expected an address, got {other:?}"),
    }
}

#[test]
fn hello_checks_the_version_and_the_percpu_formula_matches_the_server() {
    let mut d = dispatcher();
    let region = match send(&mut d, B, Request::Hello { version: PROTOCOL_VERSION }, None) {
        Reply::Hello { version: PROTOCOL_VERSION, region } => region,
        other => panic!("{other:?}"),
    };
    assert_eq!(
        send(&mut d, B, Request::Hello { version: PROTOCOL_VERSION + 1 }, None),
        Reply::Error(ErrorCode::VersionMismatch)
    );
    register(&mut d, A);
    for size in [8, 64, 4096] {
        let Reply::Offset(offset) = send(&mut d, A, Request::PercpuAlloc { size, align: 8 }, None) else { panic!() };
        for cpu in 0..region.cpus {
            assert_eq!(Some(region.percpu_address(offset, cpu)), d.percpu_address(offset, cpu));
        }
    }
}

#[test]
fn only_the_admin_registers_and_only_registered_clients_allocate() {
    let mut d = dispatcher();
    let vmalloc = Request::Vmalloc { size: MIB, large_pages: false };
    assert_eq!(send(&mut d, A, vmalloc, None), Reply::Error(ErrorCode::NotRegistered));
    let vspace = d.backend_mut().new_vspace();
    let register = Request::Register { client: A.0, quota: Quota::bytes(MIB) };
    assert_eq!(send(&mut d, B, register, Some(vspace)), Reply::Error(ErrorCode::NotAdmin));
    assert_eq!(send(&mut d, ADMIN, register, None), Reply::Error(ErrorCode::InvalidArgument));
    let space = register_with(&mut d, register, vspace);
    assert_eq!(send(&mut d, ADMIN, register, Some(vspace)), Reply::Error(ErrorCode::AlreadyRegistered));
    address(send(&mut d, A, vmalloc, None));
    assert_eq!(send(&mut d, A, vmalloc, None), Reply::Error(ErrorCode::QuotaExceeded));
    assert_eq!(send(&mut d, ADMIN, Request::Unregister { space: 15 }, None), Reply::Error(ErrorCode::NoSuchSpace));
    assert_eq!(send(&mut d, ADMIN, Request::Unregister { space: 200 }, None), Reply::Error(ErrorCode::NoSuchSpace));
    assert_eq!(send(&mut d, A, Request::Unregister { space }, None), Reply::Error(ErrorCode::NotAdmin));
    assert_eq!(send(&mut d, ADMIN, Request::Unregister { space }, None), Reply::Done);
    assert_eq!(send(&mut d, A, vmalloc, None), Reply::Error(ErrorCode::NotRegistered));
}

fn register_with(d: &mut Dispatcher<Sim>, register: Request, vspace: SimVSpace) -> u8 {
    match send(d, ADMIN, register, Some(vspace)) {
        Reply::Space(space) => space,
        other => panic!("{other:?}"),
    }
}

#[test]
fn malformed_and_unknown_messages_get_their_codes_and_change_nothing() {
    let mut d = dispatcher();
    register(&mut d, A);
    let before = common::snapshot(d.server());
    let cases: [(&[u64], ErrorCode); 4] = [
        (&[], ErrorCode::Malformed),
        (&[0x02_00_01], ErrorCode::Malformed),
        (&[REQUESTS as u64], ErrorCode::UnknownOperation),
        (&[u64::MAX; 4], ErrorCode::Malformed),
    ];
    for (words, code) in cases {
        let (reply, cap_use) = d.handle(A, &Words::from_slice(words), None);
        assert_eq!((reply, cap_use), (Reply::Error(code), CapUse::Unused), "{words:x?}");
    }
    assert_eq!(common::snapshot(d.server()), before);
}

#[test]
fn every_request_keeps_every_space_identical() {
    let mut d = dispatcher();
    register(&mut d, A);
    register(&mut d, B);
    let area = address(send(&mut d, A, Request::Vmalloc { size: 3 * MIB, large_pages: true }, None));
    let small = address(send(&mut d, B, Request::Vmalloc { size: 20_000, large_pages: false }, None));
    let populate = Request::VmemmapPopulate { start_pfn: (1 << 33) - 1024, nr_pages: 2048, compound_order: 9 };
    assert_eq!(send(&mut d, A, populate, None), Reply::Done);
    let late = register(&mut d, B);
    let Reply::Translation(Some(t)) = send(&mut d, B, Request::Translate { addr: area }, None) else { panic!() };
    assert!(t.large && t.writable);
    assert_eq!(send(&mut d, B, Request::Translate { addr: 0x1000 }, None), Reply::Translation(None));
    assert_eq!(send(&mut d, B, Request::Vfree { addr: area }, None), Reply::Error(ErrorCode::NotOwner));
    assert_eq!(send(&mut d, A, Request::Vfree { addr: area }, None), Reply::Done);
    assert_eq!(send(&mut d, B, Request::Vfree { addr: small }, None), Reply::Done);
    assert_eq!(send(&mut d, A, Request::Purge, None), Reply::Error(ErrorCode::NotAdmin));
    assert_eq!(send(&mut d, ADMIN, Request::Purge, None), Reply::Done);
    assert_eq!(send(&mut d, B, Request::Translate { addr: area }, None), Reply::Translation(None));
    let depopulate = Request::VmemmapDepopulate { start_pfn: (1 << 33) - 1024, nr_pages: 2048 };
    assert_eq!(send(&mut d, A, depopulate, None), Reply::Done);
    assert_eq!(send(&mut d, ADMIN, Request::Unregister { space: late }, None), Reply::Done);
    let Reply::Stats(stats) = send(&mut d, ADMIN, Request::Stats, None) else { panic!() };
    assert_eq!((stats.spaces, stats.missed_syncs), (2, 0));
}

#[test]
fn faults_are_repaired_from_the_canonical_table_or_reported() {
    let mut d = dispatcher();
    let vspace = d.backend_mut().new_vspace();
    let register = Request::Register { client: A.0, quota: Quota::bytes(64 * MIB) };
    let space = register_with(&mut d, register, vspace);
    let area = address(send(&mut d, A, Request::Vmalloc { size: 8192, large_pages: false }, None));
    assert!(d.backend_mut().drop_mapping(vspace, area), "simulate a missed sync");
    assert_eq!(d.handle_fault(space, area + 16, 0x1234, Access::Write), None, "repaired, not reported");
    let Reply::Stats(stats) = send(&mut d, ADMIN, Request::Stats, None) else { panic!() };
    assert_eq!(stats.missed_syncs, 1);
    let unmapped = area + 64 * 1024 * 1024;
    let report = d.handle_fault(space, unmapped, 0x1234, Access::Read).expect("a real fault");
    assert_eq!((report.space, report.addr, report.ip, report.kind), (space, unmapped, 0x1234, FaultKind::UnmappedRead));
    assert_eq!(d.handle_fault(space, unmapped, 0, Access::Write).map(|r| r.kind), Some(FaultKind::UnmappedWrite));
    let populate = Request::VmemmapPopulate { start_pfn: 0, nr_pages: 512, compound_order: 9 };
    assert_eq!(send(&mut d, A, populate, None), Reply::Done);
    let shared_tail = 0x7100_0000_0000 + 3 * 4096;
    assert_eq!(d.handle_fault(space, shared_tail, 0, Access::Write).map(|r| r.kind), Some(FaultKind::ReadOnlyWrite));
    assert_eq!(d.handle_fault(200, area, 0, Access::Read).map(|r| r.kind), None, "no such space: nothing to report to");
    common::check(d.server());
}

/// `caller` fills its allocations of every kind; returns the vmalloc address.
fn hold_one_of_each(d: &mut Dispatcher<Sim>, caller: Badge, pfn: u64) -> u64 {
    let area = address(send(d, caller, Request::Vmalloc { size: 5 * 4096, large_pages: false }, None));
    assert!(matches!(send(d, caller, Request::PercpuAlloc { size: 64, align: 8 }, None), Reply::Offset(_)));
    let populate = Request::VmemmapPopulate { start_pfn: pfn, nr_pages: 1024, compound_order: 0 };
    assert_eq!(send(d, caller, populate, None), Reply::Done);
    area
}

#[test]
fn unregistering_a_clients_last_space_reclaims_everything_it_held() {
    let mut d = dispatcher();
    register(&mut d, B);
    let theirs = hold_one_of_each(&mut d, B, 0);
    let before = common::snapshot(d.server());
    let first = register(&mut d, A);
    let second = register(&mut d, A);
    hold_one_of_each(&mut d, A, 1 << 20);
    hold_one_of_each(&mut d, A, 1 << 21);
    assert_eq!(send(&mut d, ADMIN, Request::Unregister { space: first }, None), Reply::Done);
    assert_eq!(d.server().vmalloc_areas().filter(|a| a.owner == A).count(), 2, "A still has a space: it keeps all");
    let (reply, _) = d.handle(ADMIN, &Words::encode(&Request::Unregister { space: second }).unwrap(), None);
    assert_eq!(reply, Reply::Done);
    common::check(d.server());
    assert!(d.server().vmalloc_areas().all(|a| a.owner != A));
    assert!(d.server().percpu_allocations().all(|a| a.owner != A));
    assert!(d.server().vmemmap_ranges().all(|r| r.owner != A));
    assert_eq!(common::snapshot(d.server()), before, "A's frames, structures and records are all gone");
    let check = Request::Translate { addr: theirs };
    assert!(matches!(send(&mut d, B, check, None), Reply::Translation(Some(_))), "B's area stays");
    address(send(&mut d, B, Request::Vmalloc { size: 4096, large_pages: false }, None));
}

#[test]
fn object_quotas_refuse_only_the_client_over_them_and_change_nothing() {
    let mut d = dispatcher();
    register_quota(&mut d, A, Quota { bytes: 64 * MIB, frames: 8, structures: u32::MAX, areas: 3 });
    register_quota(&mut d, B, Quota { bytes: 64 * MIB, frames: u32::MAX, structures: 2, areas: u32::MAX });
    let small = Request::Vmalloc { size: 4 * 4096, large_pages: false };
    let first = address(send(&mut d, A, small, None));
    address(send(&mut d, A, small, None));
    let before = common::snapshot(d.server());
    assert_eq!(send(&mut d, A, small, None), Reply::Error(ErrorCode::QuotaExceeded), "12 frames > 8");
    assert_eq!(common::snapshot(d.server()), before);
    assert!(matches!(send(&mut d, A, Request::PercpuAlloc { size: 8, align: 8 }, None), Reply::Offset(_)));
    let before = common::snapshot(d.server());
    assert_eq!(
        send(&mut d, A, Request::PercpuAlloc { size: 8, align: 8 }, None),
        Reply::Error(ErrorCode::QuotaExceeded),
        "a fourth area"
    );
    assert_eq!(common::snapshot(d.server()), before);
    // A new vmemmap page table, its directory and pointer table, in two
    // spaces: more than B's two structures.
    let far = Request::VmemmapPopulate { start_pfn: 1 << 31, nr_pages: 64, compound_order: 0 };
    assert_eq!(send(&mut d, B, far, None), Reply::Error(ErrorCode::QuotaExceeded));
    assert_eq!(common::snapshot(d.server()), before);
    address(send(&mut d, B, small, None));
    assert_eq!(send(&mut d, A, Request::Vfree { addr: first }, None), Reply::Done);
    address(send(&mut d, A, small, None));
    assert_eq!(d.server().usage(A).objects.frames, 8, "the freed area was refunded exactly");
}

#[test]
fn injected_failures_are_administrator_only_and_leave_nothing_behind() {
    let mut d = dispatcher();
    register(&mut d, A);
    register(&mut d, B);
    let inject = Request::InjectFailure { point: FailurePoint::Retype, nth: 3 };
    assert_eq!(send(&mut d, A, inject, None), Reply::Error(ErrorCode::NotAdmin));
    let vmalloc = Request::Vmalloc { size: 8 * 4096, large_pages: false };
    let before = common::snapshot(d.server());
    assert_eq!(send(&mut d, ADMIN, inject, None), Reply::Done);
    assert_eq!(send(&mut d, A, vmalloc, None), Reply::Error(ErrorCode::OutOfMemory));
    assert_eq!(common::snapshot(d.server()), before);
    assert_eq!(send(&mut d, ADMIN, Request::InjectFailure { point: FailurePoint::Map, nth: 0 }, None), Reply::Done);
    address(send(&mut d, A, vmalloc, None));
}

/// Bytes of the frames the server holds, by its own tally.
fn frame_bytes(d: &Dispatcher<Sim>) -> u64 {
    let frames = d.server().stats().frames;
    frames.small * PAGE_SIZE + frames.large * LARGE_PAGE_SIZE
}

/// A vmalloc of `size` bytes by `caller` that must succeed.
fn vmalloc(d: &mut Dispatcher<Sim>, caller: Badge, size: u64, large_pages: bool) -> u64 {
    address(send(d, caller, Request::Vmalloc { size, large_pages }, None))
}

#[test]
fn freed_areas_count_against_the_quota_until_the_purge() {
    // The 16 MiB area in 2 MiB pages (8 frames) or 4 KiB pages (4096).
    for (large, frames) in [(true, 8), (false, 4096)] {
        for quota in [Quota::bytes(16 * MIB), Quota { frames, ..Quota::bytes(u64::MAX) }] {
            let mut d = dispatcher();
            register_quota(&mut d, A, quota);
            let baseline = frame_bytes(&d);
            for round in 0..40 {
                let addr = vmalloc(&mut d, A, 16 * MIB, large);
                for step in ["vmalloc", "vfree"] {
                    let usage = d.server().usage(A);
                    let held = frame_bytes(&d) - baseline;
                    let what = format!("{quota:?}, large {large}, round {round}, after the {step}");
                    assert!(held <= 16 * MIB, "{what}: {} MiB of frames held", held / MIB);
                    assert!(
                        usage.used <= quota.bytes && usage.objects.frames <= quota.frames.into(),
                        "{what}: {usage:?}"
                    );
                    if step == "vmalloc" {
                        assert_eq!(send(&mut d, A, Request::Vfree { addr }, None), Reply::Done);
                    }
                }
            }
        }
    }
}

#[test]
fn the_forced_purge_bounds_the_bytes_freed_areas_hold() {
    let mut d = dispatcher();
    register_quota(&mut d, A, Quota::bytes(u64::MAX));
    let baseline = frame_bytes(&d);
    for round in 0..40 {
        let addr = vmalloc(&mut d, A, LARGE_PAGE_SIZE, true);
        assert_eq!(send(&mut d, A, Request::Vfree { addr }, None), Reply::Done);
        let held = frame_bytes(&d) - baseline;
        assert!(held <= LAZY_PURGE_BYTES, "round {round}: freed 2 MiB areas hold {} MiB", held / MIB);
        assert_eq!(d.server().stats().vmalloc_lazy_bytes, held);
    }
}

#[test]
fn a_request_short_of_memory_purges_what_others_freed_first() {
    for large in [true, false] {
        let mut d = dispatcher();
        register(&mut d, A);
        register(&mut d, B);
        let limit = frame_bytes(&d) + 24 * MIB;
        d.backend_mut().set_memory_limit(Some(limit));
        // Each frees what it allocated; the other's next 16 MiB fit only
        // once that is purged, and no administrator purges.
        for (round, caller) in [A, B, A, B, A].into_iter().enumerate() {
            let reply = send(&mut d, caller, Request::Vmalloc { size: 16 * MIB, large_pages: large }, None);
            let Reply::Address(addr) = reply else { panic!("large {large}, round {round}: {reply:?}") };
            assert_eq!(send(&mut d, caller, Request::Vfree { addr }, None), Reply::Done);
            assert!(frame_bytes(&d) <= limit);
        }
        assert_eq!(
            send(&mut d, A, Request::Vmalloc { size: 32 * MIB, large_pages: large }, None),
            Reply::Error(ErrorCode::OutOfMemory),
            "more than there is fails even after the purge"
        );
    }
}

/// A space of A that allocated and freed a page, purged: its page directory
/// and PDPT stay, empty. B is registered with `quota`.
fn with_kept_structures(quota: Quota) -> Box<Dispatcher<Sim>> {
    let mut d = dispatcher();
    register(&mut d, A);
    let structures = d.server().stats().canonical_structures;
    let addr = vmalloc(&mut d, A, PAGE_SIZE, false);
    assert_eq!(send(&mut d, A, Request::Vfree { addr }, None), Reply::Done);
    assert_eq!(send(&mut d, ADMIN, Request::Purge, None), Reply::Done);
    register_quota(&mut d, B, quota);
    assert_eq!(d.server().stats().canonical_structures, structures + 2, "the purge kept the PD and PDPT");
    d
}

#[test]
fn a_vmalloc_refused_by_the_quota_keeps_the_structures_a_purge_kept() {
    let refused = [
        (2 * PAGE_SIZE, false, Quota { structures: 0, ..Quota::bytes(64 * MIB) }),
        (2 * PAGE_SIZE, false, Quota { frames: 0, ..Quota::bytes(64 * MIB) }),
        (4 * MIB, true, Quota { frames: 1, ..Quota::bytes(64 * MIB) }),
    ];
    for (size, large_pages, quota) in refused {
        let mut d = with_kept_structures(quota);
        let before = common::snapshot(d.server());
        let reply = send(&mut d, B, Request::Vmalloc { size, large_pages }, None);
        assert_eq!(reply, Reply::Error(ErrorCode::QuotaExceeded), "{size} bytes, {quota:?}");
        assert_eq!(common::snapshot(d.server()), before, "{size} bytes, {quota:?}");
    }
}

#[test]
fn a_vmalloc_failing_mid_way_keeps_the_structures_a_purge_kept() {
    for (size, large_pages) in [(520 * PAGE_SIZE, false), (4 * MIB, true)] {
        for point in [FailurePoint::Retype, FailurePoint::Map] {
            let mut d = with_kept_structures(Quota::bytes(64 * MIB));
            let before = common::snapshot(d.server());
            let succeeded = (1..).find(|&nth| {
                assert_eq!(send(&mut d, ADMIN, Request::InjectFailure { point, nth }, None), Reply::Done);
                match send(&mut d, B, Request::Vmalloc { size, large_pages }, None) {
                    Reply::Address(_) => true,
                    reply => {
                        assert_eq!(reply, Reply::Error(ErrorCode::OutOfMemory));
                        assert_eq!(common::snapshot(d.server()), before, "{size} bytes, {point:?} #{nth} failing");
                        false
                    }
                }
            });
            assert!(succeeded > Some(2), "{size} bytes: the failure was reached at several steps");
        }
    }
}
