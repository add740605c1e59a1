//! Scenario `area-options`: the vmalloc requests beyond plain vmalloc and
//! vfree, made by A and checked from the spaces of B and C (other clients,
//! each its own VSpace).
//!
//! - `VmallocWith`: an area aligned to 1 MiB, one of 2 MiB pages aligned
//!   to 2 MiB, and one with three guard pages, whose every guard page is
//!   an unmapped fault in B's space.
//! - `Vrealloc`: two 64 KiB areas without guard pages, 64 KiB aligned, the
//!   second right after the first (the allocator takes the lowest range
//!   that fits, and both need the same); the first then cannot grow in
//!   place and moves with its contents (its old place faults in B), the
//!   second shrinks and grows in place, its contents kept and its new
//!   tail zeroed.
//! - `Protect`: the second area read-only: B and C still read it, and a
//!   write from A, B or C is a reported fault, not a repair; writable
//!   again, C's write is what B reads.
//! - Zeroing off: A fills an area and frees it; A's next area without
//!   zeroing may show, in B's and C's spaces alike, what A left; then B's
//!   area without zeroing on the frames A freed shows none of A's data.
//! - Bad requests: an alignment that is not a power of two or is above 1
//!   GiB, a resize to zero, another client's protect and vrealloc.
//!
//! No access is repaired: the missed-sync count stays as it was.

use super::{check, done, expect_error, expect_fault, read, run_done, translate, zero_in, World, KIB, MIB};
use crate::fail;
use crate::verdict::{Context, Reason, Verdict};
use memserver_protocol::{ErrorCode, FaultKind, Page, Protection, Realloc, Reply, Request, VmallocOptions};
use root_task::agent::Agent;
use root_task::agent_protocol::{pattern, Command};
use sel4_layer::println;

/// The two areas `Vrealloc` works on: their size and alignment.
const PAIR: u64 = 64 * KIB;

/// `agent`'s vmalloc of `size` bytes with `options`.
fn vmalloc_with(agent: &Agent, size: u64, options: VmallocOptions) -> Result<u64, Reason> {
    match agent.request(Request::VmallocWith { size, options }).context(agent.name)? {
        Ok(Reply::Address(addr)) => Ok(addr),
        other => fail!("{}: vmalloc({size}, {options:?}) answered {other:?}", agent.name),
    }
}

/// `agent`'s vrealloc of the area at `addr` to `size` bytes.
fn vrealloc(agent: &Agent, addr: u64, size: u64) -> Result<Realloc, Reason> {
    match agent.request(Request::Vrealloc { addr, size }).context(agent.name)? {
        Ok(Reply::Realloc(realloc)) => Ok(realloc),
        other => fail!("{}: vrealloc({addr:#x}, {size}) answered {other:?}", agent.name),
    }
}

pub(super) fn run(w: &mut World) -> Verdict {
    let missed_before = w.stats()?.missed_syncs;
    unzeroed(w)?;
    let [a, b, c] = &w.agents;
    let areas = placed(a, b, c)?;
    let (moved, kept) = resized(a, b, c)?;
    protected(a, b, c, kept)?;
    refused(a, b, kept)?;
    for addr in areas.into_iter().chain([moved, kept]) {
        done(a, Request::Vfree { addr })?;
    }
    if w.stats()?.missed_syncs != missed_before {
        fail!("an access was repaired: some space missed a change");
    }
    Ok(())
}

/// Aligned areas and guard pages; returns the areas.
fn placed(a: &Agent, b: &Agent, c: &Agent) -> Result<[u64; 3], Reason> {
    let aligned = vmalloc_with(a, 24 * KIB, VmallocOptions { guard_pages: 0, ..VmallocOptions::aligned(MIB) })?;
    let large = vmalloc_with(a, 4 * MIB, VmallocOptions { large_pages: true, ..VmallocOptions::aligned(2 * MIB) })?;
    if !aligned.is_multiple_of(MIB) || !large.is_multiple_of(2 * MIB) {
        fail!("areas at {aligned:#x} and {large:#x} are not aligned to 1 and 2 MiB");
    }
    if translate(b, large + 3 * MIB)?.page != Page::Large {
        fail!("the 2 MiB-page area at {large:#x} is not mapped with 2 MiB pages");
    }
    let guarded = vmalloc_with(a, 8 * KIB, VmallocOptions { guard_pages: 3, ..VmallocOptions::DEFAULT })?;
    for (addr, len, seed) in [(aligned, 24 * KIB, 0x41), (large, 4 * MIB, 0x42), (guarded, 8 * KIB, 0x43)] {
        run_done(a, Command::Fill { addr, len, seed })?;
        check(b, addr, len, seed)?;
        check(c, addr, len, seed)?;
    }
    for guard in 0..3 {
        let addr = guarded + 8 * KIB + guard * 4 * KIB;
        expect_fault(b, Command::Read { addr }, addr, FaultKind::UnmappedRead)?;
    }
    Ok([aligned, large, guarded])
}

/// The pair of areas: the first moves as it grows, the second shrinks
/// and grows in place. Returns both, where they are now.
fn resized(a: &Agent, b: &Agent, c: &Agent) -> Result<(u64, u64), Reason> {
    let pair = VmallocOptions { guard_pages: 0, ..VmallocOptions::aligned(PAIR) };
    let first = vmalloc_with(a, PAIR, pair)?;
    let second = vmalloc_with(a, PAIR, pair)?;
    if second != first + PAIR {
        fail!("the second area is at {second:#x}, not right after the first at {first:#x}");
    }
    run_done(a, Command::Fill { addr: first, len: PAIR, seed: 0x51 })?;
    run_done(a, Command::Fill { addr: second, len: PAIR, seed: 0x52 })?;
    let moved = vrealloc(a, first, 2 * PAIR)?;
    if !moved.moved || !moved.addr.is_multiple_of(PAIR) {
        fail!("the first area, blocked by the second, grew to {moved:?}: not moved to a {PAIR}-aligned place");
    }
    for reader in [b, c] {
        check(reader, moved.addr, PAIR, 0x51)?;
    }
    zero_in(&[b, c], moved.addr + 2 * PAIR - 8)?;
    expect_fault(b, Command::Read { addr: first }, first, FaultKind::UnmappedRead)?;
    check(c, second, PAIR, 0x52)?;
    if vrealloc(a, second, 16 * KIB)? != (Realloc { addr: second, moved: false }) {
        fail!("a shrink moved the area at {second:#x}");
    }
    expect_fault(c, Command::Read { addr: second + 16 * KIB }, second + 16 * KIB, FaultKind::UnmappedRead)?;
    if vrealloc(a, second, 48 * KIB)? != (Realloc { addr: second, moved: false }) {
        fail!("the area at {second:#x} did not grow into the free addresses after it");
    }
    check(b, second, 16 * KIB, 0x52)?;
    zero_in(&[b, c], second + 16 * KIB)?;
    zero_in(&[b, c], second + 48 * KIB - 8)?;
    Ok((moved.addr, second))
}

/// The area of [`unzeroed`]: 16 pages.
const UNZEROED: u64 = 64 * KIB;

/// Whether `word`, the first of a page, is one of the first words of the
/// pages of [`UNZEROED`] bytes filled with `seed`.
fn filled_by(seed: u64, word: u64) -> bool {
    (0..UNZEROED).step_by(4096).any(|offset| pattern(seed, offset) == word)
}

/// Areas without zeroing: A's may show what A left (A holds a page
/// throughout: a client that held nothing is a new holder), B's none of
/// A's data.
fn unzeroed(w: &World) -> Verdict {
    let [a, b, c] = &w.agents;
    let no_zeroing = VmallocOptions { zero: false, ..VmallocOptions::DEFAULT };
    let seed = 0x61;
    let held = vmalloc_with(a, 4 * KIB, VmallocOptions::DEFAULT)?;
    let filled = vmalloc_with(a, UNZEROED, VmallocOptions::DEFAULT)?;
    run_done(a, Command::Fill { addr: filled, len: UNZEROED, seed })?;
    done(a, Request::Vfree { addr: filled })?;
    w.server.admin.purge().context("purge")?;
    let again = vmalloc_with(a, UNZEROED, no_zeroing)?;
    let (mut as_left, mut unzeroed) = (0, 0);
    for page in (again..again + UNZEROED).step_by(4096) {
        let (seen, also) = (read(b, page)?, read(c, page)?);
        if seen != also {
            fail!("A's area without zeroing shows {seen:#x} to B and {also:#x} to C at {page:#x}");
        }
        as_left += usize::from(filled_by(seed, seen));
        unzeroed += usize::from(seen != 0);
    }
    done(a, Request::Vfree { addr: again })?;
    w.server.admin.purge().context("purge")?;
    let other = vmalloc_with(b, UNZEROED, no_zeroing)?;
    for page in (other..other + UNZEROED).step_by(4096) {
        let seen = read(c, page)?;
        if filled_by(seed, seen) {
            fail!("B's area without zeroing shows A's data {seen:#x} at {page:#x}");
        }
    }
    done(b, Request::Vfree { addr: other })?;
    done(a, Request::Vfree { addr: held })?;
    println!(
        "area-options: A's area without zeroing: {unzeroed} of 16 pages not zeroed, {as_left} of them as A's last fill left them; B's: none of that fill"
    );
    Ok(())
}

/// The area at `addr` read-only, then writable again.
fn protected(a: &Agent, b: &Agent, c: &Agent, addr: u64) -> Verdict {
    done(a, Request::Protect { addr, protection: Protection::ReadOnly })?;
    if translate(b, addr + 40 * KIB)?.writable {
        fail!("the read-only area at {addr:#x} is still writable in the canonical table");
    }
    for reader in [b, c] {
        check(reader, addr, 16 * KIB, 0x52)?;
    }
    for writer in [a, b, c] {
        let at = addr + 8 * KIB + 8;
        expect_fault(writer, Command::Write { addr: at, value: 1 }, at, FaultKind::ReadOnlyWrite)?;
    }
    done(a, Request::Protect { addr, protection: Protection::ReadWrite })?;
    run_done(c, Command::Write { addr: addr + 40 * KIB, value: 0xc0de })?;
    match read(b, addr + 40 * KIB)? {
        0xc0de => Ok(()),
        seen => fail!("B reads {seen:#x} where C wrote 0xc0de in the writable-again area"),
    }
}

/// Requests that must be refused.
fn refused(a: &Agent, b: &Agent, theirs: u64) -> Verdict {
    let req = Command::Request;
    for align in [3 * KIB, 2 << 30] {
        let bad = req(Request::VmallocWith { size: 4 * KIB, options: VmallocOptions::aligned(align) });
        expect_error(a, "an alignment that is not a power of two or above 1 GiB", bad, ErrorCode::InvalidArgument)?;
    }
    expect_error(a, "a resize to zero", req(Request::Vrealloc { addr: theirs, size: 0 }), ErrorCode::InvalidArgument)?;
    let protect = req(Request::Protect { addr: theirs, protection: Protection::ReadOnly });
    expect_error(b, "protecting another client's area", protect, ErrorCode::NotOwner)?;
    let grow = req(Request::Vrealloc { addr: theirs, size: MIB });
    expect_error(b, "resizing another client's area", grow, ErrorCode::NotOwner)
}
