//! Scenario `batch`: A sends batched requests (one IPC each, with up to
//! all of seL4's message registers) and B and C check what they made from
//! their own spaces.
//!
//! - 64 one-page vmallocs in one batch: 64 distinct addresses, each mapped
//!   in every space (A writes a pattern into each; B and C read it).
//! - 63 of the 64 vfrees in one batch with a vfree of B's area in the
//!   middle: that one fails alone (`NotOwner`), the 63 are done, and B's
//!   area is intact for C; after a purge the freed pages fault in B.
//! - A bad vmalloc (size 0) between two good ones: it fails in its place
//!   (`InvalidArgument`), the others stand (B reads the zeroes of the
//!   last one's page).
//!
//! No access is repaired.

use super::{check, done, expect_fault, run_done, vmalloc, zero_in, World, KIB};
use crate::fail;
use crate::verdict::{Context, Reason, Verdict};
use client_lib::MAX_BATCH_OPS;
use memserver_protocol::{ErrorCode, FaultKind, Reply, Request};
use root_task::agent::Agent;
use root_task::agent_protocol::{BatchOps, Command, Outcome};

const ONE_PAGE: Request = Request::Vmalloc { size: 4 * KIB, large_pages: false };

/// `agent` sends a batch; the number of its replies and of its errors.
fn batch(agent: &Agent, ops: BatchOps, insert: Option<(u8, Request)>) -> Result<(u8, u8), Reason> {
    match agent.run(Command::Batch { ops, insert }) {
        Ok(Outcome::Batched(Ok(counts))) => Ok(counts),
        other => fail!("{}: batch {ops:?} with {insert:?}: {other:?}", agent.name),
    }
}

/// The reply to operation `index` of `agent`'s last batch.
fn reply(agent: &Agent, index: u8) -> Result<Reply, Reason> {
    match agent.run(Command::BatchReply { index }) {
        Ok(Outcome::Reply(Ok(reply))) => Ok(reply),
        other => fail!("{}: reply {index} of the last batch: {other:?}", agent.name),
    }
}

pub(super) fn run(w: &mut World) -> Verdict {
    let missed_before = w.stats()?.missed_syncs;
    let [a, b, c] = &w.agents;
    let count = MAX_BATCH_OPS as u8;
    if batch(a, BatchOps::Repeat { request: ONE_PAGE, count }, None)? != (count, 0) {
        fail!("a batch of {count} one-page vmallocs did not make them all");
    }
    let mut areas = heapless::Vec::<u64, MAX_BATCH_OPS>::new();
    for i in 0..count {
        let Reply::Address(addr) = reply(a, i)? else { fail!("vmalloc {i} of the batch gave no address") };
        if areas.contains(&addr) || areas.push(addr).is_err() {
            fail!("vmalloc {i} of the batch gave {addr:#x} again");
        }
        run_done(a, Command::Fill { addr, len: 4 * KIB, seed: 0xb0 + u64::from(i) })?;
    }
    for (i, &addr) in areas.iter().enumerate() {
        check(b, addr, 4 * KIB, 0xb0 + i as u64)?;
        check(c, addr, 4 * KIB, 0xb0 + i as u64)?;
    }
    let theirs = vmalloc(b, 4 * KIB)?;
    run_done(b, Command::Fill { addr: theirs, len: 4 * KIB, seed: 0xbb })?;
    let middle = count / 2;
    if batch(a, BatchOps::FreeMade, Some((middle, Request::Vfree { addr: theirs })))? != (count, 1) {
        fail!("the batch of vfrees with one bad one in the middle did not free all the others");
    }
    // The one that did not fit.
    let last = areas[areas.len() - 1];
    done(a, Request::Vfree { addr: last })?;
    for i in 0..count {
        let expected = if i == middle { Reply::Error(ErrorCode::NotOwner) } else { Reply::Done };
        if reply(a, i)? != expected {
            fail!("operation {i} of the vfree batch: {:?}, not {expected:?}", reply(a, i)?);
        }
    }
    check(c, theirs, 4 * KIB, 0xbb)?;
    w.server.admin.purge().context("purge")?;
    for addr in [areas[0], areas[usize::from(middle)], last] {
        expect_fault(b, Command::Read { addr }, addr, FaultKind::UnmappedRead)?;
    }
    let bad = Request::Vmalloc { size: 0, large_pages: false };
    if batch(a, BatchOps::Repeat { request: ONE_PAGE, count: 2 }, Some((1, bad)))? != (3, 1) {
        fail!("a batch with a bad vmalloc between two good ones");
    }
    let Reply::Address(kept) = reply(a, 2)? else { fail!("the vmalloc after the bad one gave no address") };
    if reply(a, 1)? != Reply::Error(ErrorCode::InvalidArgument) {
        fail!("the bad vmalloc of the batch: {:?}", reply(a, 1)?);
    }
    zero_in(&[b], kept)?;
    batch(a, BatchOps::FreeMade, None)?;
    done(b, Request::Vfree { addr: theirs })?;
    if w.stats()?.missed_syncs != missed_before {
        fail!("an access was repaired: some space missed a change");
    }
    Ok(())
}
