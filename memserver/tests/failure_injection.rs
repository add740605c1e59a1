//! The failure-injection walk over the seL4 backend on the model of seL4,
//! as the `fault-injection` scenario makes it on seL4: each request tried
//! with the k-th Untyped Retype, CNode Copy, or Map (a Page Map or Remap
//! or a paging-structure Map) failing, k = 1, 2, ... until it succeeds. After every
//! failed try the reply is `OutOfMemory` or `Kernel`, the server's state is
//! exactly as before (tables, allocators, clients, untyped bytes and slots
//! not in use) and the invariant holds in the model (every registered
//! VSpace still maps exactly the canonical table). The requests: vmalloc
//! of 4 KiB and of 2 MiB pages, vmemmap populate of plain and compound
//! ranges, a percpu allocation that needs a new chunk, a registration, and
//! a protect of an area of each page size (read-only), with three spaces
//! registered (so every mapping is copied). At the end,
//! everything freed and every space unregistered, the untyped memory and
//! slots not in use are as after start.

mod common;

use common::{System, KIB, MIB};
use memserver_core::harness::ADMIN;
use memserver_core::invariant::snapshot;
use memserver_core::limits::PERCPU_UNIT_SIZE;
use memserver_core::Badge;
use memserver_protocol::{ErrorCode, FailurePoint, Protection, Quota, Reply, Request};

const A: Badge = Badge(1);
const B: Badge = Badge(2);
const C: Badge = Badge(3);
const CPUS: usize = 4;
const MAX_TRIES: u32 = 4096;
const POINTS: [FailurePoint; 3] = [FailurePoint::Retype, FailurePoint::Copy, FailurePoint::Map];

/// A request under test.
#[derive(Clone, Copy, Debug)]
enum Target {
    Vmalloc,
    VmallocLarge,
    Vmemmap,
    VmemmapCompound,
    Percpu,
    Register,
    /// The content area (4 KiB pages) made read-only.
    Protect,
    /// The large content area (2 MiB pages) made read-only.
    ProtectLarge,
}

const TARGETS: [Target; 8] = [
    Target::Vmalloc,
    Target::VmallocLarge,
    Target::Vmemmap,
    Target::VmemmapCompound,
    Target::Percpu,
    Target::Register,
    Target::Protect,
    Target::ProtectLarge,
];

/// The areas a registration copies and a protect changes: of 4 KiB pages
/// and of 2 MiB pages.
#[derive(Clone, Copy)]
struct Content {
    small: u64,
    large: u64,
}

/// Far from every other range, so new structures are needed.
const FRESH_PFN: u64 = 3 << 30;

impl Target {
    /// Makes the request: what undoing it needs, or the error.
    fn attempt(self, s: &mut System, content: Content) -> Result<u64, ErrorCode> {
        let (caller, request) = match self {
            Target::Vmalloc => (A, Request::Vmalloc { size: 8 * 4 * KIB, large_pages: false }),
            Target::VmallocLarge => (A, Request::Vmalloc { size: 4 * MIB, large_pages: true }),
            Target::Vmemmap => {
                (A, Request::VmemmapPopulate { start_pfn: FRESH_PFN, nr_pages: 1024, compound_order: 0, huge: false })
            }
            Target::VmemmapCompound => (
                A,
                Request::VmemmapPopulate { start_pfn: FRESH_PFN, nr_pages: 4 * 512, compound_order: 9, huge: false },
            ),
            // Larger than what the first chunk has left (see below).
            Target::Percpu => (A, Request::PercpuAlloc { size: PERCPU_UNIT_SIZE as u32 / 2 + 8, align: 8 }),
            Target::Register => {
                return match s.try_register(C, Quota::bytes(64 * MIB)).0 {
                    Reply::Space(r) => Ok(r.space.into()),
                    Reply::Error(e) => Err(e),
                    other => panic!("register: {other:?}"),
                };
            }
            Target::Protect => (B, Request::Protect { addr: content.small, protection: Protection::ReadOnly }),
            Target::ProtectLarge => (B, Request::Protect { addr: content.large, protection: Protection::ReadOnly }),
        };
        match s.send(caller, request) {
            Reply::Address(addr) => Ok(addr),
            Reply::Offset(offset) => Ok(offset.into()),
            Reply::Done => Ok(match request {
                Request::Protect { addr, .. } => addr,
                _ => 0,
            }),
            Reply::Error(e) => Err(e),
            other => panic!("{self:?}: {other:?}"),
        }
    }

    /// Takes back what succeeded.
    fn undo(self, s: &mut System, made: u64) {
        match self {
            Target::Vmalloc | Target::VmallocLarge => {
                s.ok(A, Request::Vfree { addr: made });
                s.ok(ADMIN, Request::Purge)
            }
            Target::Vmemmap => s.ok(A, Request::VmemmapDepopulate { start_pfn: FRESH_PFN, nr_pages: 1024 }),
            Target::VmemmapCompound => s.ok(A, Request::VmemmapDepopulate { start_pfn: FRESH_PFN, nr_pages: 2048 }),
            Target::Percpu => s.ok(A, Request::PercpuFree { offset: made as u32 }),
            Target::Register => s.ok(ADMIN, Request::Unregister { space: made as u16 }),
            Target::Protect | Target::ProtectLarge => {
                s.ok(B, Request::Protect { addr: made, protection: Protection::ReadWrite })
            }
        };
    }
}

/// Tries `target` with the k-th `point` invocation failing, k = 1, 2, ...;
/// the k at which it succeeded.
fn until_success(s: &mut System, target: Target, point: FailurePoint, content: Content) -> u32 {
    for k in 1..=MAX_TRIES {
        let before = snapshot(s.d.server());
        s.ok(ADMIN, Request::InjectFailure { point, nth: k });
        match target.attempt(s, content) {
            Ok(made) => {
                s.ok(ADMIN, Request::InjectFailure { point, nth: 0 });
                target.undo(s, made);
                return k;
            }
            Err(ErrorCode::OutOfMemory | ErrorCode::Kernel) => {
                assert_eq!(snapshot(s.d.server()), before, "{target:?} with {point:?} #{k} failing changed the state");
            }
            Err(other) => panic!("{target:?} with {point:?} #{k} failing answered {other:?}"),
        }
    }
    panic!("{target:?} still fails after {MAX_TRIES} tries with {point:?} failures")
}

#[test]
fn every_failed_try_changes_nothing_and_each_request_succeeds_at_last() {
    let mut s = System::new(CPUS);
    let start = s.unused();
    for client in [A, B, Badge(4)] {
        s.register(client, 256 * MIB);
    }
    // Some content for a registration to copy: an area and descriptors.
    let content = Content { small: s.vmalloc(B, 64 * KIB, false), large: s.vmalloc(B, 4 * MIB, true) };
    s.ok(B, Request::VmemmapPopulate { start_pfn: 0, nr_pages: 4096, compound_order: 0, huge: false });
    // Half of the first percpu chunk, so the target's allocation needs the
    // next chunk.
    let half = match s.ok(B, Request::PercpuAlloc { size: PERCPU_UNIT_SIZE as u32 / 2, align: 8 }) {
        Reply::Offset(offset) => offset,
        other => panic!("percpu: {other:?}"),
    };
    let mut failures = [0; 3];
    for target in TARGETS {
        let tries = POINTS.map(|point| until_success(&mut s, target, point, content));
        eprintln!("{target:?} succeeded at try {tries:?} (Retype, Copy, Map)");
        for (failed, k) in failures.iter_mut().zip(tries) {
            *failed += k - 1;
        }
    }
    assert!(failures.iter().all(|&n| n > 0), "every point failed some request: {failures:?}");
    s.ok(B, Request::Vfree { addr: content.small });
    s.ok(B, Request::Vfree { addr: content.large });
    s.ok(B, Request::PercpuFree { offset: half });
    s.ok(B, Request::VmemmapDepopulate { start_pfn: 0, nr_pages: 4096 });
    s.ok(ADMIN, Request::Purge);
    for space in 0..3 {
        s.ok(ADMIN, Request::Unregister { space });
    }
    assert_eq!(s.unused(), start, "(untyped bytes, slots) not in use after unregistering every space");
}
