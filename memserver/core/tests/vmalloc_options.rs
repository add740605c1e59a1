//! vmalloc with Linux's `__vmalloc_node_range` options over the wire
//! (`Request::VmallocWith`): alignment, guard pages, 2 MiB pages and the
//! non-blocking flag, with test_vmalloc's alignment cases ported
//! (`fixed_align_alloc_test`, `random_size_align_alloc_test`,
//! `align_shift_alloc_test`), each area seen in every space (the invariant
//! is checked after every message) and bad options refused with nothing
//! changed.

mod common;

use common::dispatcher::{dispatcher, register, register_quota, send, try_vmalloc_with as vmalloc_with};
use common::snapshot;
use memserver_core::dispatch::Dispatcher;
use memserver_core::layout::{LARGE_PAGE_SIZE, PAGE_SIZE};
use memserver_core::sim::Sim;
use memserver_core::{Area, Badge};
use memserver_protocol::{ErrorCode, Quota, Reply, Request, VmallocOptions};
use proptest::prelude::*;

const A: Badge = Badge(0x100);
const B: Badge = Badge(0x101);
const GIB: u64 = 1 << 30;

/// A dispatcher with two spaces for `A` and one for `B`.
fn three_spaces() -> Box<Dispatcher<Sim>> {
    let mut d = dispatcher();
    register(&mut d, A);
    register(&mut d, A);
    register(&mut d, B);
    d
}

fn vfree(d: &mut Dispatcher<Sim>, caller: Badge, addr: u64) {
    assert_eq!(send(d, caller, Request::Vfree { addr }, None), Reply::Done, "vfree {addr:#x}");
}

/// Whether `addr` is mapped in every registered space (and the canonical
/// table), with `large` pages.
fn mapped_everywhere(d: &Dispatcher<Sim>, addr: u64, large: bool) -> bool {
    let region = d.server().region();
    let in_spaces = region.space_ids().all(|id| {
        let vspace = region.vspace(id).expect("registered");
        region.backend().translate(vspace, addr).is_some()
    });
    let canonical = d.server().translate(addr).is_some_and(|leaf| (leaf.size.bytes() == LARGE_PAGE_SIZE) == large);
    in_spaces && canonical
}

#[test]
fn fixed_align_alloc_test_five_pages_at_twice_thread_align() {
    // x86-64's THREAD_ALIGN is 16 KiB; Linux loops a million times, the
    // lazy purge makes the loop's addresses recur long before that.
    let mut d = three_spaces();
    let options = VmallocOptions::aligned(32 << 10);
    for i in 0..20_000 {
        let addr = vmalloc_with(&mut d, A, 5 * PAGE_SIZE, options).unwrap_or_else(|e| panic!("loop {i}: {e:?}"));
        assert_eq!(addr % (32 << 10), 0, "loop {i}: {addr:#x}");
        if i % 997 == 0 {
            assert!(mapped_everywhere(&d, addr + 4 * PAGE_SIZE, false), "loop {i}");
        }
        vfree(&mut d, A, addr);
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 8, ..ProptestConfig::default() })]

    /// test_vmalloc's `random_size_align_alloc_test`: 1 to 10 pages, aligned
    /// to 2^(rnd % 23), allocated and freed; here also held in batches so
    /// that aligned areas lie between others.
    #[test]
    fn random_size_align_alloc_test(rnds in prop::collection::vec(any::<u8>(), 1..400)) {
        let mut d = three_spaces();
        let mut held = Vec::new();
        for (i, rnd) in rnds.iter().map(|&r| u64::from(r)).enumerate() {
            let (align, size) = (1u64 << (rnd % 23), (rnd % 10 + 1) * PAGE_SIZE);
            let addr = vmalloc_with(&mut d, A, size, VmallocOptions::aligned(align));
            let addr = addr.map_err(|e| TestCaseError::fail(format!("{i}: {e:?}")))?;
            prop_assert_eq!(addr % align.max(PAGE_SIZE), 0);
            prop_assert!(mapped_everywhere(&d, addr, false) && mapped_everywhere(&d, addr + size - PAGE_SIZE, false));
            held.push(addr);
            if held.len() == 16 {
                for addr in held.drain(..) {
                    vfree(&mut d, A, addr);
                }
            }
        }
    }
}

#[test]
fn align_shift_alloc_test_succeeds_up_to_one_gib_and_refuses_above() {
    let mut d = three_spaces();
    for shift in 0..64 {
        let align = 1u64 << shift;
        let before = snapshot(d.server());
        match vmalloc_with(&mut d, A, PAGE_SIZE, VmallocOptions::aligned(align)) {
            Ok(addr) => {
                assert!(align <= VmallocOptions::MAX_ALIGN, "align 2^{shift} accepted");
                assert_eq!(addr % align.max(PAGE_SIZE), 0, "align 2^{shift}");
                assert!(mapped_everywhere(&d, addr, false));
                vfree(&mut d, A, addr);
            }
            Err(e) => {
                assert!(align > VmallocOptions::MAX_ALIGN, "align 2^{shift} refused: {e:?}");
                assert_eq!(e, ErrorCode::InvalidArgument);
                assert_eq!(snapshot(d.server()), before, "a refused alignment changes nothing");
            }
        }
    }
}

#[test]
fn bad_options_are_invalid_arguments_and_change_nothing() {
    let mut d = three_spaces();
    let kept = vmalloc_with(&mut d, A, 3 * PAGE_SIZE, VmallocOptions::DEFAULT).expect("vmalloc");
    let before = snapshot(d.server());
    let bad = [
        (PAGE_SIZE, VmallocOptions::aligned(0)),
        (PAGE_SIZE, VmallocOptions::aligned(3 * PAGE_SIZE)),
        (PAGE_SIZE, VmallocOptions::aligned(2 * GIB)),
        (PAGE_SIZE, VmallocOptions { guard_pages: u32::MAX, ..VmallocOptions::DEFAULT }),
        (0, VmallocOptions::DEFAULT),
        (Area::Vmalloc.size() + 1, VmallocOptions::DEFAULT),
    ];
    for (size, options) in bad {
        assert_eq!(vmalloc_with(&mut d, A, size, options), Err(ErrorCode::InvalidArgument), "{size} {options:?}");
        assert_eq!(snapshot(d.server()), before, "{size} {options:?} changed the state");
    }
    vfree(&mut d, A, kept);
}

#[test]
fn guard_pages_separate_areas_and_none_lets_them_touch() {
    let mut d = three_spaces();
    let no_guard = VmallocOptions { guard_pages: 0, ..VmallocOptions::DEFAULT };
    let a = vmalloc_with(&mut d, A, 2 * PAGE_SIZE, no_guard).expect("a");
    let b =
        vmalloc_with(&mut d, B, PAGE_SIZE, VmallocOptions { guard_pages: 7, ..VmallocOptions::DEFAULT }).expect("b");
    let c = vmalloc_with(&mut d, A, PAGE_SIZE, VmallocOptions::DEFAULT).expect("c");
    assert_eq!(b, a + 2 * PAGE_SIZE, "VM_NO_GUARD: the next area starts right after");
    assert_eq!(c, b + PAGE_SIZE + 7 * PAGE_SIZE, "seven unmapped pages after b");
    for guard in (1..8).map(|i| b + i * PAGE_SIZE) {
        assert_eq!(d.server().translate(guard), None, "guard page {guard:#x} is unmapped");
    }
    // B was charged its six extra guard pages, as address space it took.
    assert_eq!(d.server().usage(B).used, 7 * PAGE_SIZE);
    for (caller, addr) in [(A, a), (B, b), (A, c)] {
        vfree(&mut d, caller, addr);
    }
}

#[test]
fn guard_pages_count_against_the_byte_quota() {
    let mut d = dispatcher();
    register_quota(&mut d, A, Quota::bytes(16 * PAGE_SIZE));
    let too_wide = VmallocOptions { guard_pages: 17, ..VmallocOptions::DEFAULT };
    let before = snapshot(d.server());
    assert_eq!(vmalloc_with(&mut d, A, PAGE_SIZE, too_wide), Err(ErrorCode::QuotaExceeded));
    assert_eq!(snapshot(d.server()), before);
    let fits = VmallocOptions { guard_pages: 16, ..VmallocOptions::DEFAULT };
    let addr = vmalloc_with(&mut d, A, PAGE_SIZE, fits).expect("1 page and 15 charged guard pages fit 16 pages");
    vfree(&mut d, A, addr);
}

#[test]
fn no_purge_fails_where_a_purge_would_make_room_and_the_ordinary_request_purges() {
    let mut d = three_spaces();
    // One page followed by guard pages over (nearly) the whole vmalloc
    // area: once freed, only a purge gives the address space back.
    let a = register_quota(&mut d, Badge(0x102), Quota::bytes(Area::Vmalloc.size()));
    assert!(a > 0);
    let hog = Badge(0x102);
    let guard_pages = (Area::Vmalloc.size() / PAGE_SIZE - 1) as u32;
    let wide = vmalloc_with(&mut d, hog, PAGE_SIZE, VmallocOptions { guard_pages, ..VmallocOptions::DEFAULT });
    let wide = wide.expect("the whole area");
    vfree(&mut d, hog, wide);
    let no_purge = VmallocOptions { no_purge: true, ..VmallocOptions::DEFAULT };
    let before = snapshot(d.server());
    assert_eq!(vmalloc_with(&mut d, A, PAGE_SIZE, no_purge), Err(ErrorCode::OutOfMemory));
    assert_eq!(snapshot(d.server()), before, "a non-blocking request neither purges nor maps");
    let addr = vmalloc_with(&mut d, A, PAGE_SIZE, VmallocOptions::DEFAULT).expect("the ordinary request purges");
    assert!(mapped_everywhere(&d, addr, false));
    vfree(&mut d, A, addr);
}

#[test]
fn no_purge_fails_where_the_callers_freed_areas_hold_its_quota() {
    let mut d = dispatcher();
    register_quota(&mut d, A, Quota::bytes(8 * PAGE_SIZE));
    let first = vmalloc_with(&mut d, A, 8 * PAGE_SIZE, VmallocOptions::DEFAULT).expect("the whole quota");
    vfree(&mut d, A, first);
    let no_purge = VmallocOptions { no_purge: true, ..VmallocOptions::DEFAULT };
    assert_eq!(vmalloc_with(&mut d, A, PAGE_SIZE, no_purge), Err(ErrorCode::QuotaExceeded));
    assert!(vmalloc_with(&mut d, A, PAGE_SIZE, VmallocOptions::DEFAULT).is_ok(), "purges its own and retries");
}

#[test]
fn large_pages_at_a_one_gib_alignment() {
    let mut d = three_spaces();
    let options = VmallocOptions { align: GIB, large_pages: true, ..VmallocOptions::DEFAULT };
    let small = vmalloc_with(&mut d, A, PAGE_SIZE, VmallocOptions::DEFAULT).expect("small");
    let addr = vmalloc_with(&mut d, A, 4 * LARGE_PAGE_SIZE, options).expect("large");
    assert_eq!(addr % GIB, 0);
    assert!((0..4).all(|i| mapped_everywhere(&d, addr + i * LARGE_PAGE_SIZE, true)));
    vfree(&mut d, A, addr);
    vfree(&mut d, A, small);
}
