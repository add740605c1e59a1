//! Scenario `fault-injection`: a multi-page vmalloc, a vmemmap populate, a
//! registration and a protect, each tried with the server's k-th Untyped
//! Retype, CNode Copy, or Map (a Page Map or Remap or a paging-structure
//! Map) invocation from the request on failing, for k = 1, 2, ... until
//! the request succeeds. (A
//! request that needs fewer than k such invocations succeeds with the
//! failure still armed; it is disarmed at once. Objects retyped ahead or
//! recycled cost no Retype, so a Retype failure is often never reached.)
//! After every failed try the server's resources and every space's view
//! (a reference pattern, the vmemmap head descriptors; for the protect of
//! the reference area, that it is still writable in every space) are as
//! before.

use super::{check, done, read, vmalloc, Resources, World, AGENT_QUOTA, KIB};
use crate::fail;
use crate::verdict::{Context, Verdict};
use client_lib::server_answer;
use memserver_protocol::{ErrorCode, FailurePoint, FaultKind, Protection, Quota, Reply, Request};
use root_task::agent_protocol::Command;
use sel4_layer::println;

/// Tries before giving up on a request ever succeeding.
const MAX_TRIES: u32 = 4096;
/// The reference area's pattern seed.
const SEED: u64 = 0xfa;
/// A vmemmap range that needs new structures: far from every other range.
const FRESH_PFN: u64 = 3 << 30;

/// A request under test: it either succeeds (and is then undone) or fails.
#[derive(Clone, Copy, Debug)]
enum Target {
    Vmalloc,
    VmemmapPopulate,
    Register,
    /// The reference area made read-only.
    Protect,
}

pub fn run(w: &mut World) -> Verdict {
    let verdict = try_everything(w);
    // Whatever happened, nothing stays armed for the scenarios after.
    for point in [FailurePoint::Retype, FailurePoint::Copy, FailurePoint::Map] {
        w.server.admin.inject_failure(point, 0).context("disarm")?;
    }
    verdict
}

fn try_everything(w: &mut World) -> Verdict {
    // A request short of memory purges lazily freed areas and tries again,
    // which would hide the injected failure: nothing awaits a purge.
    w.server.admin.purge().context("purge")?;
    let reference = vmalloc(&w.agents[0], 16 * KIB)?;
    super::run_done(&w.agents[0], Command::Fill { addr: reference, len: 16 * KIB, seed: SEED })?;
    for target in [Target::Vmalloc, Target::VmemmapPopulate, Target::Register, Target::Protect] {
        let mut tries = [0; 3];
        for (point, tried) in [FailurePoint::Retype, FailurePoint::Copy, FailurePoint::Map].into_iter().zip(&mut tries)
        {
            *tried = until_success(w, target, point, reference)?;
        }
        println!("fault-injection: {target:?} succeeded at try {tries:?} (Retype, Copy, Map)");
    }
    done(&w.agents[0], Request::Vfree { addr: reference })
}

/// Tries `target` with the k-th `point` invocation failing, k = 1, 2, ...;
/// returns the k at which it succeeded.
fn until_success(
    w: &mut World,
    target: Target,
    point: FailurePoint,
    reference: u64,
) -> Result<u32, crate::verdict::Reason> {
    for k in 1..=MAX_TRIES {
        let before = Resources::of(&w.stats()?);
        w.server.admin.inject_failure(point, k).context("inject")?;
        match attempt(w, target, reference)? {
            Ok(undo) => {
                w.server.admin.inject_failure(point, 0).context("disarm")?;
                undo_success(w, target, undo)?;
                return Ok(k);
            }
            Err(ErrorCode::OutOfMemory | ErrorCode::Kernel) => {
                let what = format_args!("{target:?} with {point:?} #{k} failing");
                super::unchanged(w, &before, what)?;
                views_intact(w, reference)?;
                if matches!(target, Target::Protect) {
                    writable_everywhere(w, reference)?;
                }
            }
            Err(other) => fail!("{target:?} with {point:?} #{k} failing answered {other:?}"),
        }
    }
    fail!("{target:?} still fails after {MAX_TRIES} tries with {point:?} failures")
}

/// Makes the request; `Ok` carries what undoing it needs.
fn attempt(w: &mut World, target: Target, reference: u64) -> Result<Result<u64, ErrorCode>, crate::verdict::Reason> {
    let a = &w.agents[0];
    let answer = match target {
        Target::Vmalloc => a.request(Request::Vmalloc { size: 8 * 4 * KIB, large_pages: false }).context("A")?,
        Target::VmemmapPopulate => {
            let populate =
                Request::VmemmapPopulate { start_pfn: FRESH_PFN, nr_pages: 1024, compound_order: 0, huge: false };
            a.request(populate).context("A")?
        }
        Target::Register => {
            let c = &w.agents[2];
            let quota = Quota::bytes(AGENT_QUOTA);
            let registered = w.server.admin.register_with_quota(c.client_badge(), quota, c.process.vspace.pml4);
            return server_answer(registered.map(|r| u64::from(r.space))).context("registering C");
        }
        Target::Protect => {
            let protect = Request::Protect { addr: reference, protection: Protection::ReadOnly };
            return Ok(a.request(protect).context("A")?.map(|_| reference));
        }
    };
    Ok(match answer {
        Ok(Reply::Address(addr)) => Ok(addr),
        Ok(Reply::Done) => Ok(FRESH_PFN),
        Ok(other) => fail!("{target:?} answered {other:?}"),
        Err(code) => Err(code),
    })
}

/// Checks what succeeded through another space, then takes it back.
fn undo_success(w: &mut World, target: Target, made: u64) -> Verdict {
    let (a, b) = (&w.agents[0], &w.agents[1]);
    match target {
        Target::Vmalloc => {
            super::run_done(a, Command::Fill { addr: made, len: 32 * KIB, seed: 1 })?;
            check(b, made, 32 * KIB, 1)?;
            done(a, Request::Vfree { addr: made })?;
            w.server.admin.purge().context("purge")
        }
        Target::VmemmapPopulate => {
            let head = w.region.descriptor_address(made);
            super::run_done(a, Command::Write { addr: head, value: 7 })?;
            if read(b, head)? != 7 {
                fail!("B does not see A's descriptor write at {head:#x}");
            }
            done(a, Request::VmemmapDepopulate { start_pfn: made, nr_pages: 1024 })
        }
        Target::Register => w.server.admin.unregister(made as u16).context("unregister C again"),
        Target::Protect => {
            let at = made + 8;
            super::expect_fault(b, Command::Write { addr: at, value: 1 }, at, FaultKind::ReadOnlyWrite)?;
            done(a, Request::Protect { addr: made, protection: Protection::ReadWrite })
        }
    }
}

/// A, B and D can still write the reference area (they write its own
/// pattern again).
fn writable_everywhere(w: &World, reference: u64) -> Verdict {
    for agent in [&w.agents[0], &w.agents[1], &w.late] {
        super::run_done(agent, Command::Fill { addr: reference, len: 16 * KIB, seed: SEED })?;
    }
    Ok(())
}

/// Every registered agent's view is as before: B and D see the reference
/// pattern, A the head descriptors.
fn views_intact(w: &World, reference: u64) -> Verdict {
    check(&w.agents[1], reference, 16 * KIB, SEED)?;
    check(&w.late, reference, 16 * KIB, SEED)?;
    for &(head, value) in &w.heads {
        if read(&w.agents[0], head)? != value {
            fail!("A lost head {head:#x}");
        }
    }
    Ok(())
}
