//! Scenario `vmap`: frames a client was given, mapped in every space.
//! The root task gave A, B and C 16 frames each (as a launcher gives a
//! program its `frames`: copies in a CNode in the boot contract's
//! `FRAMES` slot, the originals kept) and grants A's and B's memory here.
//!
//! - A vmaps its 16 frames and writes them; B and C read what A wrote,
//!   the canonical table maps A's frames in order, the page after them is
//!   a guard page (unmapped in B).
//! - Freed and purged, the area faults in C; vmapped again, the frames
//!   show what A wrote (the server never frees or zeroes them).
//! - Read-only: B reads, a write from C is a reported fault, and the area
//!   cannot be made writable.
//! - Refused, each changing nothing: 0 pages, empty slots past A's frames
//!   (`NotAFrame`), a slot where the root task put an endpoint nobody
//!   receives on (`NotAFrame`: the server never invokes a capability it
//!   does not know to be a frame, so it answers the next request), a slot
//!   holding one of B's frames (`ForeignFrame`), and C, whose memory was
//!   never granted (`ForeignFrame`).
//!
//! - memmap_on_memory: A's first frame backs the descriptors of the 64
//!   pfns of the memory around it; B reads what A writes there, and A's
//!   frame, vmapped, holds it (also once depopulated, when the
//!   descriptor faults in C).
//!
//! No access is repaired: the missed-sync count stays as it was.

use super::{check, done, expect_error, expect_fault, read, run_done, translate, World, AGENT_FRAMES, KIB};
use crate::fail;
use crate::verdict::{Context, Reason, Verdict};
use memserver_protocol::{ErrorCode, FaultKind, Protection, Reply, Request};
use root_task::agent::Agent;
use root_task::agent_protocol::{Command, Outcome};
use sel4_launch::process::GivenFrames;
use sel4_layer::abi::{init_cap, ObjectType};
use sel4_layer::{CNode, CapRights};

/// A's frames CNode slot the root task puts an endpoint in.
const ENDPOINT_SLOT: u64 = 200;
/// A's frames CNode slot the root task puts one of B's frames in.
const FOREIGN_SLOT: u64 = 201;
const PAGE: u64 = 4 * KIB;
/// Bytes of a page descriptor.
const DESCRIPTOR: u64 = 64;

/// The frames the root task gave `agent`.
fn given(agent: &Agent) -> Result<GivenFrames, Reason> {
    match agent.frames {
        Some(frames) => Ok(frames),
        None => fail!("{} was given no frames", agent.name),
    }
}

/// `agent`'s vmap of `pages` of its frames from `first`: the area.
fn vmap(agent: &Agent, first: u64, pages: u32, protection: Protection) -> Result<u64, Reason> {
    match agent.run(Command::Vmap { first, pages, protection }) {
        Ok(Outcome::Reply(Ok(Reply::Address(addr)))) => Ok(addr),
        other => fail!("{}: vmap of frames {first}..+{pages}: {other:?}", agent.name),
    }
}

pub(super) fn run(w: &mut World) -> Verdict {
    let missed_before = w.stats()?.missed_syncs;
    let [a, b, c] = &w.agents;
    let (mine, theirs) = (given(a)?, given(b)?);
    for (agent, frames) in [(a, mine), (b, theirs)] {
        w.server.admin.grant_frames(agent.client_badge(), frames.start, frames.bytes).context("grant")?;
    }
    let root = CNode::root_task(init_cap::CNODE);
    let endpoint = w.alloc.retype(ObjectType::Endpoint, 0);
    let planted = [(ENDPOINT_SLOT, endpoint), (FOREIGN_SLOT, theirs.first)];
    for (slot, cap) in planted {
        mine.cnode.copy(slot, root, cap, CapRights::READ_WRITE).context("the root task's copy")?;
    }
    let pages = AGENT_FRAMES as u32;
    let len = AGENT_FRAMES * PAGE;
    let addr = vmap(a, 0, pages, Protection::ReadWrite)?;
    run_done(a, Command::Fill { addr, len, seed: 0x61 })?;
    check(b, addr, len, 0x61)?;
    check(c, addr, len, 0x61)?;
    for i in [0, AGENT_FRAMES - 1] {
        let paddr = translate(c, addr + i * PAGE)?.paddr;
        if paddr != mine.start + i * PAGE {
            fail!("page {i} of the vmap maps {paddr:#x}, not A's frame at {:#x}", mine.start + i * PAGE);
        }
    }
    expect_fault(b, Command::Read { addr: addr + len }, addr + len, FaultKind::UnmappedRead)?;
    done(a, Request::Vfree { addr })?;
    w.server.admin.purge().context("purge")?;
    expect_fault(c, Command::Read { addr }, addr, FaultKind::UnmappedRead)?;
    let again = vmap(a, 0, pages, Protection::ReadOnly)?;
    check(b, again, len, 0x61)?;
    let at = again + 3 * PAGE + 8;
    expect_fault(c, Command::Write { addr: at, value: 1 }, at, FaultKind::ReadOnlyWrite)?;
    let writable = Command::Request(Request::Protect { addr: again, protection: Protection::ReadWrite });
    expect_error(a, "protect of frames given read-only", writable, ErrorCode::InvalidArgument)?;
    refused(a, c)?;
    if read(b, again + 8)? == 0 {
        fail!("B reads 0 from A's frames after the refused vmaps");
    }
    done(a, Request::Vfree { addr: again })?;
    w.server.admin.purge().context("purge")?;
    on_memory([a, b, c], mine.start / PAGE, w.region.vmemmap_start)?;
    for slot in [ENDPOINT_SLOT, FOREIGN_SLOT] {
        mine.cnode.delete(slot).context("the root task's delete")?;
    }
    if w.stats()?.missed_syncs != missed_before {
        fail!("an access was repaired: some space missed a change");
    }
    Ok(())
}

/// memmap_on_memory: A's first frame backs the descriptors of the 64
/// pfns around it (`frame_pfn`'s block), the memory it is part of. A
/// writes a descriptor; B reads it; A's frame, vmapped, holds it; once
/// depopulated the descriptor faults in C, and the frame still holds it.
fn on_memory([a, b, c]: [&Agent; 3], frame_pfn: u64, vmemmap_start: u64) -> Verdict {
    let start_pfn = frame_pfn - frame_pfn % 64;
    let populate = |start_pfn, nr_pages| Command::VmemmapFrom { first: 0, start_pfn, nr_pages };
    expect_error(a, "descriptors of other memory", populate(start_pfn + 64, 64), ErrorCode::InvalidArgument)?;
    expect_error(a, "an unaligned range", populate(start_pfn + 1, 64), ErrorCode::InvalidArgument)?;
    match a.run(populate(start_pfn, 64)) {
        Ok(Outcome::Reply(Ok(Reply::Done))) => {}
        other => fail!("A: descriptors of pfns {start_pfn:#x}.. on its own frame: {other:?}"),
    }
    let pfn = start_pfn + 5;
    let descriptor = vmemmap_start + pfn * DESCRIPTOR;
    run_done(a, Command::Write { addr: descriptor, value: 0xd35c })?;
    if read(b, descriptor)? != 0xd35c {
        fail!("B does not read A's descriptor of pfn {pfn:#x}");
    }
    if translate(c, descriptor)?.paddr != frame_pfn * PAGE {
        fail!("the descriptor of pfn {pfn:#x} is not in A's frame");
    }
    let mapped = vmap(a, 0, 1, Protection::ReadOnly)?;
    if read(c, mapped + 5 * DESCRIPTOR)? != 0xd35c {
        fail!("A's frame, vmapped, does not hold the descriptor");
    }
    done(a, Request::VmemmapDepopulate { start_pfn, nr_pages: 64 })?;
    expect_fault(c, Command::Read { addr: descriptor }, descriptor, FaultKind::UnmappedRead)?;
    if read(b, mapped + 5 * DESCRIPTOR)? != 0xd35c {
        fail!("A's frame lost the descriptor when depopulated");
    }
    done(a, Request::Vfree { addr: mapped })
}

/// The vmaps that must be refused.
fn refused(a: &Agent, c: &Agent) -> Verdict {
    let rw = Protection::ReadWrite;
    let frames = AGENT_FRAMES;
    let bad = [
        (a, "no frames", 0, 0, ErrorCode::InvalidArgument),
        (a, "slots past the frames", frames - 1, 2, ErrorCode::NotAFrame),
        (a, "an endpoint", ENDPOINT_SLOT, 1, ErrorCode::NotAFrame),
        (a, "B's frame", FOREIGN_SLOT, 1, ErrorCode::ForeignFrame),
        (c, "frames never granted", 0, 1, ErrorCode::ForeignFrame),
    ];
    for (agent, what, first, pages, code) in bad {
        expect_error(agent, what, Command::Vmap { first, pages, protection: rw }, code)?;
    }
    Ok(())
}
