//! Scenario `stress`: `AGENTS` client spaces run `ROUNDS` rounds of `OPS`
//! pseudo-random requests each, concurrently, a quarter of them on a second
//! CPU; one of them is greedy and runs into its quota while the others
//! never do. `LATE` agents are registered only while the others run their
//! second round, so their spaces join while mappings change around them.
//! Between rounds each agent's published area is checked through other
//! spaces. At the end nothing is lost or corrupted, no sync was missed,
//! every agent made at least `MIN_REQUESTS` requests, percpu allocations
//! were written and checked in at least `MIN_PERCPU_CHUNKS` chunks, and
//! once everything is freed and the crowd unregistered the server's
//! resources are what they were before the crowd came.

use super::{check, unchanged, Resources, World};
use crate::fail;
use crate::verdict::{Context, Reason, Verdict};
use memserver_protocol::Quota;
use root_task::agent::{gather, Agent};
use root_task::agent_protocol::{Command, Outcome};
use root_task::inbox::Inbox;
use root_task::stress_plan::{StressPlan, StressSummary, RANGES, RANGE_STRIDE};
use sel4_launch::memserver_process::MemServerProcess;
use sel4_layer::println;

/// Client spaces of the crowd (the last one greedy).
pub const AGENTS: usize = 16;
/// Agents registered only during the second round.
const LATE: usize = 4;
/// Rounds, and requests per agent per round.
const ROUNDS: u32 = 3;
const OPS: u32 = 500;
/// Requests every agent, late ones included, must have made.
const MIN_REQUESTS: u32 = 1000;
/// percpu chunks the crowd's allocations (written and checked) must span.
const MIN_PERCPU_CHUNKS: u32 = 3;
const MIB: u64 = 1 << 20;
/// An ordinary agent's quota: ample for what a run can hold at once, its
/// freed areas awaiting the purge included (they count until it; with
/// little room for them, every few frees would purge).
const QUOTA: Quota = Quota { bytes: 16 * MIB, frames: 1024, structures: 4096, areas: 64 };
/// The greedy agent's: six 4-page areas' worth of frames.
const GREEDY_QUOTA: Quota = Quota { bytes: 16 * MIB, frames: 24, structures: 4096, areas: 8 };
/// Every `REMOTE_EVERY`-th agent runs on a second CPU, the others on the
/// memory server's (0): canaries, mappings and TLB shootdowns then cross
/// CPUs. Under QEMU's TCG, busy vCPUs spin against each other in the kernel
/// lock and its cross-CPU calls, so the more of the crowd runs elsewhere,
/// the slower it gets (on a 2-core host, 4 vCPUs: about 3 s for the whole
/// crowd on CPU 0, 46 s with half of it on CPU 1).
const REMOTE_EVERY: usize = 4;
/// First pfn of the crowd's vmemmap windows.
const PFN_BASE: u64 = 1 << 22;

const _: () = assert!((ROUNDS - 1) * OPS >= MIN_REQUESTS, "late agents must make MIN_REQUESTS too");

pub fn run(w: &mut World) -> Verdict {
    w.server.admin.purge().context("purge")?;
    let baseline = Resources::of(&w.stats()?);
    let remote_cpu = u64::from(w.cpus > 1);
    // Every agent is started (connected) now; the late ones are registered
    // only in the second round.
    for (i, agent) in w.crowd.iter_mut().take(AGENTS).enumerate() {
        let cpu = if i % REMOTE_EVERY == 1 { remote_cpu } else { 0 };
        agent.pin(cpu).context(agent.name)?;
        agent.start().context(agent.name)?;
        if i < AGENTS - LATE {
            register(w.server, agent, i)?;
        }
    }
    let mut totals = [0u32; AGENTS];
    let mut percpu_chunks = 0u32;
    for round in 0..ROUNDS {
        for (i, agent) in w.crowd.iter_mut().enumerate().take(AGENTS) {
            if i >= AGENTS - LATE {
                match round {
                    0 => continue,
                    // Registered while the early agents' requests run.
                    1 => register(w.server, agent, i)?,
                    _ => {}
                }
            }
            let seed = 0x5eed_0000 + (round as u64) * 0x100 + i as u64;
            let pfn_base = PFN_BASE + i as u64 * RANGES as u64 * RANGE_STRIDE;
            agent.send(Command::Stress(StressPlan { seed, ops: OPS, pfn_base, greedy: greedy(i), announce: 0 }));
        }
        let active = if round == 0 { AGENTS - LATE } else { AGENTS };
        let crowd: heapless::Vec<&Agent, AGENTS> = w.crowd.iter().take(active).collect();
        let summaries = summaries(&crowd, w.inbox)?;
        println!("stress: round {round}: {active} agents done");
        for ((i, s), total) in summaries.iter().enumerate().zip(totals.iter_mut()) {
            judge(i, s, round)?;
            *total += s.requests;
            percpu_chunks |= s.percpu_chunks;
        }
        // Every published area, seen through the next agent's space and A's.
        for (i, s) in summaries.iter().enumerate() {
            let Some((addr, len, seed)) = s.published else { fail!("S{i} published nothing") };
            let other = crowd.get((i + 1) % crowd.len()).copied().ok_or_else(|| reason("no crowd"))?;
            check(other, addr, len, seed)?;
            check(&w.agents[0], addr, len, seed)?;
        }
    }
    let crowd: heapless::Vec<&Agent, AGENTS> = w.crowd.iter().take(AGENTS).collect();
    for agent in &crowd {
        agent.send(Command::Release);
    }
    for (i, s) in summaries(&crowd, w.inbox)?.iter().enumerate() {
        if s.corrupt != 0 || s.unexpected.is_some() || s.refused != 0 {
            fail!("S{i} releasing: {s:?}");
        }
    }
    drop(crowd);
    let (fewest, least) = totals.iter().copied().enumerate().min_by_key(|&(_, n)| n).unwrap_or((0, 0));
    if least < MIN_REQUESTS {
        fail!("S{fewest} made only {least} requests");
    }
    if percpu_chunks.count_ones() < MIN_PERCPU_CHUNKS {
        fail!("percpu allocations were only in chunks {percpu_chunks:#b}");
    }
    w.server.admin.purge().context("purge")?;
    let stats = w.stats()?;
    if stats.missed_syncs != 0 {
        fail!("{} missed syncs", stats.missed_syncs);
    }
    for agent in w.crowd.iter_mut().take(AGENTS) {
        agent.unregister(&w.server.admin).context(agent.name)?;
    }
    let requests: u32 = totals.iter().sum();
    println!(
        "stress: {AGENTS} spaces, {requests} requests (at least {least} each), percpu chunks {percpu_chunks:#b}, 0 lost or corrupted canaries"
    );
    unchanged(w, &baseline, format_args!("after the crowd freed everything and left"))
}

/// The last agent of the crowd is the greedy one.
fn greedy(i: usize) -> bool {
    i == AGENTS - 1
}

/// Registers crowd agent `i` with its quota.
fn register(server: &MemServerProcess, agent: &mut Agent, i: usize) -> Verdict {
    let quota = if greedy(i) { GREEDY_QUOTA } else { QUOTA };
    agent.register_with_quota(&server.admin, quota).context(agent.name).map(drop)
}

fn reason(what: &str) -> Reason {
    crate::verdict::reason(format_args!("{what}"))
}

/// One stress summary from each of `crowd`, in its order.
fn summaries(crowd: &[&Agent], inbox: Inbox) -> Result<heapless::Vec<StressSummary, AGENTS>, Reason> {
    let outcomes = gather::<AGENTS>(crowd, inbox).context("gathering the crowd")?;
    let mut out = heapless::Vec::new();
    for (i, outcome) in outcomes.iter().take(crowd.len()).enumerate() {
        match outcome {
            Some(Outcome::Stressed(s)) => {
                // Capacity is AGENTS.
                let _ = out.push(*s);
            }
            other => fail!("S{i}: {other:?}"),
        }
    }
    Ok(out)
}

/// An ordinary agent is never refused and sees no corruption; the greedy
/// one is refused for its quota and nothing else.
fn judge(i: usize, s: &StressSummary, round: u32) -> Verdict {
    let starved = if greedy(i) { s.over_quota == 0 } else { s.over_quota != 0 };
    if s.requests < OPS || s.corrupt != 0 || s.unexpected.is_some() || s.refused != 0 || starved {
        fail!("S{i} round {round}: {s:?}");
    }
    Ok(())
}
