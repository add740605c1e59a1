//! Scenario `client-death`: agent E runs a long stress loop on another CPU
//! and is killed in the middle of it (thread suspended, TCB deleted); the
//! root task unregisters its space, and the server reclaims everything E
//! held: its resources are back to what they were before E registered,
//! and the other agents keep working.

use super::{check, done, run_done, unchanged, vmalloc, Resources, World, AGENT_QUOTA, KIB};
use crate::fail;
use crate::verdict::{Context, Verdict};
use memserver_protocol::{Quota, Request};
use root_task::agent_protocol::{Command, Outcome};
use root_task::stress_plan::StressPlan;

/// Requests E would make if left alone: far more than it gets to.
const OPS: u32 = 1_000_000;
/// Requests E makes before it says it is working (and is killed).
const ANNOUNCE: u32 = 200;

pub fn run(w: &mut World) -> Verdict {
    w.server.admin.purge().context("purge")?;
    let baseline = Resources::of(&w.stats()?);
    let cpu = if w.cpus > 1 { 1 } else { 0 };
    let e = w.crowd.last_mut().ok_or_else(|| crate::verdict::reason(format_args!("no agent E")))?;
    e.register_with_quota(&w.server.admin, Quota::bytes(AGENT_QUOTA)).context("registering E")?;
    e.pin(cpu).context("pinning E")?;
    e.start().context("starting E")?;
    let plan = StressPlan { seed: 0xdead, ops: OPS, pfn_base: 1 << 26, greedy: false, announce: ANNOUNCE };
    e.send(Command::Stress(plan));
    match e.wait() {
        Ok(Outcome::Working) => {}
        other => fail!("E did not start working: {other:?}"),
    }
    e.kill().context("killing E")?;
    let held = Resources::of(&w.stats()?);
    let count = |r: &Resources| r.vmalloc_areas + r.vmemmap_ranges + r.percpu_allocs;
    if count(&held) <= count(&baseline) {
        fail!("E held nothing when it died");
    }
    let e = w.crowd.last_mut().ok_or_else(|| crate::verdict::reason(format_args!("no agent E")))?;
    e.unregister(&w.server.admin).context("unregistering E")?;
    unchanged(w, &baseline, format_args!("after E died and was unregistered"))?;
    // The others keep working.
    let [a, b, _] = &w.agents;
    let addr = vmalloc(a, 64 * KIB)?;
    run_done(a, Command::Fill { addr, len: 64 * KIB, seed: 0xe })?;
    check(b, addr, 64 * KIB, 0xe)?;
    check(&w.late, addr, 64 * KIB, 0xe)?;
    done(a, Request::Vfree { addr })
}
