//! The protocol side of the server on the host: requests as the seL4 loop
//! receives them (message words and badges), decoded and dispatched over
//! the simulated MMU, with the invariant checked after every message.

mod common;

use common::dispatcher::{dispatcher, register, register_quota, register_space, registration, send, vm_fault};

use memserver_core::dispatch::{CapUse, Dispatcher, FaultAction};
use memserver_core::host_backend::HostBackend;
use memserver_core::layout::{LARGE_PAGE_SIZE, PAGE_SIZE};
use memserver_core::limits::{LAZY_PURGE_BYTES, REPORTS_PER_SPACE};
use memserver_core::sim::{Sim, SimVSpace};
use memserver_core::{Area, Badge};
use memserver_protocol::bootstrap::badge::SPACE_FAULT;
use memserver_protocol::fault;
use memserver_protocol::words::Words;
use memserver_protocol::PING_LABEL;
use memserver_protocol::{
    ErrorCode, FailurePoint, FaultKind, FaultReport, Page, Quota, Registration, Reply, Request, PROTOCOL_VERSION,
    REQUESTS,
};

const ADMIN: Badge = common::ADMIN;
const A: Badge = Badge(0x100);
const B: Badge = Badge(0x101);
const MIB: u64 = 1 << 20;

fn address(reply: Reply) -> u64 {
    match reply {
        Reply::Address(addr) => addr,
        other => panic!("expected an address, got {other:?}"),
    }
}

#[test]
fn hello_checks_the_version_and_announces_the_layout() {
    let mut d = dispatcher();
    let region = match send(&mut d, B, Request::Hello { version: PROTOCOL_VERSION }, None) {
        Reply::Hello { version: PROTOCOL_VERSION, region } => region,
        other => panic!("{other:?}"),
    };
    assert_eq!(
        send(&mut d, B, Request::Hello { version: PROTOCOL_VERSION + 1 }, None),
        Reply::Error(ErrorCode::VersionMismatch)
    );
    assert_eq!((region.vmalloc_start, region.vmemmap_start), (Area::Vmalloc.start(), Area::Vmemmap.start()));
    assert_eq!(region.percpu, d.server().percpu_layout());
    assert_eq!((region.percpu.start, region.percpu.cpus), (Area::Percpu.start(), 4));
}

#[test]
fn only_the_admin_registers_and_only_registered_clients_allocate() {
    let mut d = dispatcher();
    let vmalloc = Request::Vmalloc { size: MIB, large_pages: false };
    assert_eq!(send(&mut d, A, vmalloc, None), Reply::Error(ErrorCode::NotRegistered));
    let vspace = d.sim_hooks().new_vspace();
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

fn register_with(d: &mut Dispatcher<Sim>, register: Request, vspace: SimVSpace) -> u16 {
    match send(d, ADMIN, register, Some(vspace)) {
        Reply::Space(registration) => registration.space,
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
    let populate =
        Request::VmemmapPopulate { start_pfn: (1 << 33) - 1024, nr_pages: 2048, compound_order: 9, huge: false };
    assert_eq!(send(&mut d, A, populate, None), Reply::Done);
    let late = register(&mut d, B);
    let Reply::Translation(Some(t)) = send(&mut d, B, Request::Translate { addr: area }, None) else { panic!() };
    assert!(t.page == Page::Large && t.writable);
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

/// Every report waiting, as the administrator takes them.
fn take_all(d: &mut Dispatcher<Sim>) -> Vec<FaultReport> {
    std::iter::from_fn(|| match send(d, ADMIN, Request::TakeFault, None) {
        Reply::Fault(report) => report,
        other => panic!("take fault: {other:?}"),
    })
    .collect()
}

/// A's space (its VSpace and registration) holding a two-page area of A's.
fn a_space_with_an_area(d: &mut Dispatcher<Sim>) -> (SimVSpace, Registration, u64) {
    let vspace = d.sim_hooks().new_vspace();
    let a = register_space(d, A, Quota::bytes(64 * MIB), vspace);
    let area = address(send(d, A, Request::Vmalloc { size: 8192, large_pages: false }, None));
    (vspace, a, area)
}

#[test]
fn faults_are_repaired_from_the_canonical_table_or_reported() {
    let mut d = dispatcher();
    let (vspace, a, area) = a_space_with_an_area(&mut d);
    assert!(d.sim_hooks().drop_mapping(vspace, area), "simulate a missed sync");
    assert_eq!(vm_fault(&mut d, a.fault_badge, area + 16, true), FaultAction::Resume, "repaired, not reported");
    assert!(!d.take_notice());
    let Reply::Stats(stats) = send(&mut d, ADMIN, Request::Stats, None) else { panic!() };
    assert_eq!(stats.missed_syncs, 1);
    assert_eq!(vm_fault(&mut d, a.fault_badge, area, false), FaultAction::Resume, "mapped already: retry");
    let unmapped = area + 64 * 1024 * 1024;
    assert_eq!(vm_fault(&mut d, a.fault_badge, unmapped, false), FaultAction::Reported);
    assert!(d.take_notice() && !d.take_notice(), "the administrator is told once");
    assert_eq!(vm_fault(&mut d, a.fault_badge, unmapped, true), FaultAction::Reported);
    let populate = Request::VmemmapPopulate { start_pfn: 0, nr_pages: 512, compound_order: 9, huge: false };
    assert_eq!(send(&mut d, A, populate, None), Reply::Done);
    let shared_tail = 0x7100_0000_0000 + 3 * 4096;
    assert_eq!(vm_fault(&mut d, a.fault_badge, shared_tail, true), FaultAction::Reported);
    let exception = Words::from_slice(&[0x4321, 0, 0, 6, 0]);
    assert_eq!(d.fault(a.fault_badge, fault::USER_EXCEPTION, false, &exception), FaultAction::Reported);
    assert_eq!(send(&mut d, A, Request::TakeFault, None), Reply::Error(ErrorCode::NotAdmin));
    let report = |addr, ip, kind| FaultReport { space: a.space, addr, ip, kind, dropped: 0 };
    assert_eq!(
        take_all(&mut d),
        [
            report(unmapped, 0x1234, FaultKind::UnmappedRead),
            report(unmapped, 0x1234, FaultKind::UnmappedWrite),
            report(shared_tail, 0x1234, FaultKind::ReadOnlyWrite),
            report(0x4321, 0x4321, FaultKind::Exception),
        ]
    );
}

#[test]
fn fault_messages_count_only_in_the_kernels_shape_and_with_the_current_registrations_badge() {
    let mut d = dispatcher();
    let vspace = d.sim_hooks().new_vspace();
    let first = register_space(&mut d, A, Quota::bytes(64 * MIB), vspace);
    let unmapped = 0x7000_0000_0000 + 64 * MIB;
    let before = common::snapshot(d.server());
    let vm = [0x1234, unmapped, 0, 0];
    let misshapen: [(u64, u64, &[u64]); 6] = [
        (fault::VM_FAULT, 1, &vm),
        (fault::VM_FAULT, 0, &vm[..3]),
        (fault::VM_FAULT, 0, &[0; 5]),
        (PING_LABEL, 0, &vm),
        (0, 0, &vm),
        (fault::USER_EXCEPTION, 0, &vm),
    ];
    for (label, caps, words) in misshapen {
        assert_eq!(
            d.fault(first.fault_badge, label, caps != 0, &Words::from_slice(words)),
            FaultAction::Dropped,
            "{label} {words:x?}"
        );
    }
    assert_eq!(
        vm_fault(&mut d, first.fault_badge ^ 0x100, unmapped, false),
        FaultAction::Dropped,
        "another generation"
    );
    assert_eq!(
        vm_fault(&mut d, first.fault_badge + 1, unmapped, false),
        FaultAction::Dropped,
        "a space not registered"
    );
    assert_eq!(vm_fault(&mut d, A.0, unmapped, false), FaultAction::Dropped, "a client badge");
    assert!(!d.take_notice());
    assert_eq!(common::snapshot(d.server()), before);
    assert_eq!(take_all(&mut d), []);
    assert_eq!(vm_fault(&mut d, first.fault_badge, unmapped, false), FaultAction::Reported);
    // Unregistering ends the identity, and its waiting reports go with it.
    assert_eq!(send(&mut d, ADMIN, Request::Unregister { space: first.space }, None), Reply::Done);
    assert_eq!(vm_fault(&mut d, first.fault_badge, unmapped, false), FaultAction::Dropped, "unregistered");
    assert_eq!(take_all(&mut d), []);
    let again = register_space(&mut d, A, Quota::bytes(64 * MIB), vspace);
    assert_eq!(again.space, first.space, "the id is reused");
    assert_ne!(again.fault_badge, first.fault_badge);
    let area = address(send(&mut d, A, Request::Vmalloc { size: 4096, large_pages: false }, None));
    let before = common::snapshot(d.server());
    for addr in [unmapped, area] {
        assert_eq!(vm_fault(&mut d, first.fault_badge, addr, false), FaultAction::Dropped, "the old identity");
    }
    assert_eq!(common::snapshot(d.server()), before);
    assert_eq!(take_all(&mut d), []);
    assert_eq!(vm_fault(&mut d, again.fault_badge, unmapped, false), FaultAction::Reported, "the new identity");
    assert_eq!(take_all(&mut d).len(), 1);
    let faulty = Request::Register { client: SPACE_FAULT | 5, quota: Quota::bytes(MIB) };
    let other = d.sim_hooks().new_vspace();
    assert_eq!(send(&mut d, ADMIN, faulty, Some(other)), Reply::Error(ErrorCode::InvalidArgument));
}

#[test]
fn a_forged_fault_reaches_only_the_forgers_own_space() {
    let mut d = dispatcher();
    let a_vspace = d.sim_hooks().new_vspace();
    let a = register_space(&mut d, A, Quota::bytes(64 * MIB), a_vspace);
    let b = registration(&mut d, B);
    let theirs = address(send(&mut d, A, Request::Vmalloc { size: 8192, large_pages: false }, None));
    assert!(d.sim_hooks().drop_mapping(a_vspace, theirs), "A's space misses a page");
    assert_eq!(vm_fault_unchecked(&mut d, b.fault_badge, theirs), FaultAction::Resume, "B maps it: nothing to do");
    assert!(
        d.server().region().backend().translate(a_vspace, theirs).is_none(),
        "B's fault repaired nothing in A's space"
    );
    assert_eq!(vm_fault(&mut d, a.fault_badge, theirs, false), FaultAction::Resume, "A's own fault repairs it");
    let unmapped = theirs + 64 * MIB;
    assert_eq!(vm_fault(&mut d, b.fault_badge, unmapped, false), FaultAction::Reported);
    let reports = take_all(&mut d);
    assert_eq!(reports.iter().map(|r| (r.space, r.addr)).collect::<Vec<_>>(), [(b.space, unmapped)]);
}

#[test]
fn a_repair_short_of_memory_is_tried_again_before_it_is_reported() {
    let mut d = dispatcher();
    let (a_vspace, a, area) = a_space_with_an_area(&mut d);
    let words = Words::from_slice(&[0x1234, area, 0, 0b100]);
    for last_try in [false, true] {
        let inject = Request::InjectFailure { point: FailurePoint::Map, nth: 1 };
        assert_eq!(send(&mut d, ADMIN, inject, None), Reply::Done);
        assert!(d.sim_hooks().drop_mapping(a_vspace, area), "A's space misses a page");
        if last_try {
            assert_eq!(d.fault(a.fault_badge, fault::VM_FAULT, false, &words), FaultAction::Reported);
            assert!(d.take_notice(), "reported");
        } else {
            let short = d.repair_fault(a.fault_badge, fault::VM_FAULT, false, &words);
            assert_eq!(short, FaultAction::ShortOfMemory);
            assert!(!d.take_notice(), "nothing queued");
            let again = d.repair_fault(a.fault_badge, fault::VM_FAULT, false, &words);
            assert_eq!(again, FaultAction::Resume, "repaired on the next try");
            common::check(d.server());
        }
    }
}

/// As `vm_fault`, without the invariant check (for a space left broken on purpose).
fn vm_fault_unchecked(d: &mut Dispatcher<Sim>, badge: u64, addr: u64) -> FaultAction {
    d.fault(badge, fault::VM_FAULT, false, &Words::from_slice(&[0x1234, addr, 0, 0b100]))
}

#[test]
fn a_flood_of_reports_never_blocks_and_loses_only_the_flooders_reports_never_silently() {
    let mut d = dispatcher();
    let (a, b) = (registration(&mut d, A), registration(&mut d, B));
    let unmapped = 0x7000_0000_0000 + 64 * MIB;
    const FLOOD: usize = 1000;
    for i in 0..FLOOD {
        assert_eq!(vm_fault_unchecked(&mut d, b.fault_badge, unmapped + 8 * i as u64), FaultAction::Reported);
    }
    assert_eq!(vm_fault(&mut d, a.fault_badge, unmapped, true), FaultAction::Reported);
    assert!(d.take_notice());
    // Each report taken while others wait tells the administrator again.
    let mut taken = Vec::new();
    while let Reply::Fault(Some(report)) = send(&mut d, ADMIN, Request::TakeFault, None) {
        assert!(d.take_notice() || send(&mut d, ADMIN, Request::TakeFault, None) == Reply::Fault(None));
        taken.push(report);
    }
    let (of_b, of_a): (Vec<FaultReport>, Vec<FaultReport>) = taken.iter().partition(|r| r.space == b.space);
    assert_eq!(of_a.len(), 1, "A's report is kept whole");
    assert_eq!(of_b.len(), REPORTS_PER_SPACE);
    let dropped: usize = of_b.iter().map(|r| r.dropped as usize).sum();
    assert_eq!(of_b.len() + dropped, FLOOD, "every report of B is taken or counted as dropped");
}

/// `caller` fills its allocations of every kind; returns the vmalloc address.
fn hold_one_of_each(d: &mut Dispatcher<Sim>, caller: Badge, pfn: u64) -> u64 {
    let area = address(send(d, caller, Request::Vmalloc { size: 5 * 4096, large_pages: false }, None));
    assert!(matches!(send(d, caller, Request::PercpuAlloc { size: 64, align: 8 }, None), Reply::Offset(_)));
    let populate = Request::VmemmapPopulate { start_pfn: pfn, nr_pages: 1024, compound_order: 0, huge: false };
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
    let far = Request::VmemmapPopulate { start_pfn: 1 << 31, nr_pages: 64, compound_order: 0, huge: false };
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
    let frames = d.server().census().frames;
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
        assert_eq!(d.server().census().vmalloc_lazy_bytes, held);
    }
}

#[test]
fn a_request_short_of_memory_purges_what_others_freed_first() {
    for large in [true, false] {
        let mut d = dispatcher();
        register(&mut d, A);
        register(&mut d, B);
        let limit = frame_bytes(&d) + 24 * MIB;
        d.sim_hooks().set_memory_limit(Some(limit));
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

/// A space of A that allocated and freed a page, purged: its page table,
/// page directory and PDPT stay, empty. B is registered with `quota`.
fn with_kept_structures(quota: Quota) -> Box<Dispatcher<Sim>> {
    let mut d = dispatcher();
    register(&mut d, A);
    let structures = d.server().census().canonical_structures;
    let addr = vmalloc(&mut d, A, PAGE_SIZE, false);
    assert_eq!(send(&mut d, A, Request::Vfree { addr }, None), Reply::Done);
    assert_eq!(send(&mut d, ADMIN, Request::Purge, None), Reply::Done);
    register_quota(&mut d, B, quota);
    assert_eq!(d.server().census().canonical_structures, structures + 3, "the purge kept the PT, PD and PDPT");
    assert_eq!(d.server().census().kept_structures, 6, "in A's space and in B's");
    d
}

#[test]
fn a_vmalloc_refused_by_the_quota_keeps_the_structures_a_purge_kept() {
    let refused = [
        (520 * PAGE_SIZE, false, Quota { structures: 0, ..Quota::bytes(64 * MIB) }),
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
fn a_vmalloc_failing_mid_way_gives_up_the_kept_structures_and_tries_again() {
    for (size, large_pages) in [(520 * PAGE_SIZE, false), (4 * MIB, true)] {
        for point in [FailurePoint::Retype, FailurePoint::Map] {
            let failed = (1..).take_while(|&nth| {
                let mut d = with_kept_structures(Quota::bytes(64 * MIB));
                let injected = d.server().region().backend().failures_injected();
                assert_eq!(send(&mut d, ADMIN, Request::InjectFailure { point, nth }, None), Reply::Done);
                let reply = send(&mut d, B, Request::Vmalloc { size, large_pages }, None);
                assert!(matches!(reply, Reply::Address(_)), "{size} bytes, {point:?} #{nth} failing: {reply:?}");
                let failed = d.server().region().backend().failures_injected() > injected;
                if failed {
                    assert_eq!(d.server().census().kept_structures, 0, "{size} bytes, {point:?} #{nth} failing");
                }
                failed
            });
            assert!(failed.count() > 2, "{size} bytes: the failure was reached at several steps");
        }
    }
}
