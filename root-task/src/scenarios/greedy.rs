//! Scenario `greedy`: no client can starve another. Crowd agent S0,
//! registered with a byte quota and the server's default share of every
//! other kind (`Quota::bytes`: its structures and records are bounded by a
//! sixteenth of the server's memory), exhausts what its quota allows, kind
//! by kind, each time until the server answers `QuotaExceeded` (never
//! `OutOfMemory`: the server still has memory):
//!
//! - paging structures: one-page areas each aligned to 2 MiB, so each
//!   needs a page table in every registered space;
//! - areas: percpu allocations of 16 bytes, until the count runs out;
//! - bytes: 1 MiB vmallocs;
//! - vmemmap ranges: 64 pfns each, side by side.
//!
//! After each, A and B each make one request of every kind (vmalloc,
//! percpu alloc, vmemmap populate), all of which succeed (each one's area
//! read by D through its own space), and S0 is unregistered, which
//! reclaims all it held. At the end every resource is as before.

use super::{check, done, run_done, unchanged, Resources, World, AGENT_QUOTA, KIB, MIB};
use crate::fail;
use crate::verdict::{Context, Reason, Verdict};
use memserver_protocol::{ErrorCode, Quota, Reply, Request, VmallocOptions};
use root_task::agent::Agent;
use root_task::agent_protocol::Command;
use sel4_layer::println;

/// More requests of one kind than any share allows.
const MAX_REQUESTS: u32 = 40_000;
/// Where S0's vmemmap ranges go (apart from every other scenario's).
const GREEDY_PFN: u64 = 5 << 30;
/// Where A's and B's go.
const OTHER_PFN: u64 = 6 << 30;

/// S0, registered anew, makes `request(i)` for i = 0, 1, ... until
/// refused; the refusal must be its quota, and A and B must then still be
/// served. Unregistering S0 (its only space) reclaims all it made.
fn exhaust(w: &mut World, what: &str, request: impl Fn(u64) -> Request) -> Verdict {
    let g = s0(&mut w.crowd)?;
    g.register_with_quota(&w.server.admin, Quota::bytes(AGENT_QUOTA)).context("registering S0")?;
    let mut made = 0u32;
    let refusal = loop {
        if made == MAX_REQUESTS {
            fail!("{what}: {made} requests and S0 is not refused");
        }
        match g.request(request(made.into())).context(g.name)? {
            Ok(Reply::Address(_) | Reply::Offset(_) | Reply::Done) => made += 1,
            Ok(other) => fail!("{what}: {other:?}"),
            Err(code) => break code,
        }
    };
    if refusal != ErrorCode::QuotaExceeded {
        fail!("{what}: S0 was refused {refusal:?} after {made}, not by its quota");
    }
    others_served(w, what)?;
    s0(&mut w.crowd)?.unregister(&w.server.admin).context("unregistering S0")?;
    w.server.admin.purge().context("purge")?;
    println!("greedy: {what}: S0 refused by its quota after {made} requests; A and B served");
    Ok(())
}

/// S0, the first of the crowd.
fn s0(crowd: &mut [Agent]) -> Result<&mut Agent, Reason> {
    crowd.first_mut().ok_or_else(|| crate::verdict::reason(format_args!("no crowd")))
}

/// A and B each make one request of every kind, which must succeed; D
/// reads their areas.
fn others_served(w: &World, what: &str) -> Verdict {
    let [a, b, _] = &w.agents;
    for (i, x) in [a, b].into_iter().enumerate() {
        let area = match x.request(Request::Vmalloc { size: 16 * KIB, large_pages: false }).context(x.name)? {
            Ok(Reply::Address(addr)) => addr,
            other => fail!("{what}: {}'s vmalloc answered {other:?}", x.name),
        };
        run_done(x, Command::Fill { addr: area, len: 16 * KIB, seed: 0x9e + i as u64 })?;
        check(&w.late, area, 16 * KIB, 0x9e + i as u64)?;
        let offset = match x.request(Request::PercpuAlloc { size: 64, align: 8 }).context(x.name)? {
            Ok(Reply::Offset(offset)) => offset,
            other => fail!("{what}: {}'s percpu alloc answered {other:?}", x.name),
        };
        let pfn = OTHER_PFN + i as u64 * 64;
        done(x, Request::VmemmapPopulate { start_pfn: pfn, nr_pages: 64, compound_order: 0, huge: false })?;
        done(x, Request::VmemmapDepopulate { start_pfn: pfn, nr_pages: 64 })?;
        done(x, Request::PercpuFree { offset })?;
        done(x, Request::Vfree { addr: area })?;
    }
    Ok(())
}

pub(super) fn run(w: &mut World) -> Verdict {
    w.server.admin.purge().context("purge")?;
    let baseline = Resources::of(&w.stats()?);
    let aligned = VmallocOptions { guard_pages: 0, ..VmallocOptions::aligned(2 * MIB) };
    exhaust(w, "structures", |_| Request::VmallocWith { size: 4 * KIB, options: aligned })?;
    exhaust(w, "areas", |_| Request::PercpuAlloc { size: 16, align: 16 })?;
    exhaust(w, "bytes", |_| Request::Vmalloc { size: MIB, large_pages: false })?;
    exhaust(w, "vmemmap ranges", |i| Request::VmemmapPopulate {
        start_pfn: GREEDY_PFN + i * 64,
        nr_pages: 64,
        compound_order: 0,
        huge: false,
    })?;
    unchanged(w, &baseline, format_args!("after S0 was unregistered"))
}
