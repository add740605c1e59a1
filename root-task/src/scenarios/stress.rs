//! Scenario `stress`: `AGENTS` client spaces (some registered late) run
//! `ROUNDS` rounds of `OPS` pseudo-random requests each, concurrently, on
//! every CPU; one of them is greedy and runs into its quota while the
//! others never do. Between rounds each agent's published area is checked
//! through another space. At the end nothing is lost or corrupted, no sync
//! was missed, and once everything is freed and the crowd unregistered the
//! server's resources are back to what they were before.

use super::{check, unchanged, Resources, World};
use crate::fail;
use crate::verdict::{Context, Reason, Verdict};
use client_lib::println;
use client_lib::protocol::Quota;
use root_task::agent::{gather, Agent};
use root_task::agent_protocol::{Command, Outcome};
use root_task::stress::{StressPlan, StressSummary, RANGES, RANGE_STRIDE};

/// Client spaces of the crowd (the last one greedy).
pub const AGENTS: usize = 16;
/// Agents registered only after the first round.
const LATE: usize = 4;
/// Rounds, and requests per agent per round.
const ROUNDS: u32 = 2;
const OPS: u32 = 130;
const MIB: u64 = 1 << 20;
/// An ordinary agent's quota: ample for what a run can hold at once.
const QUOTA: Quota = Quota { bytes: 16 * MIB, frames: 1024, structures: 4096, areas: 16 };
/// The greedy agent's: six 4-page areas' worth of frames.
const GREEDY_QUOTA: Quota = Quota { bytes: 16 * MIB, frames: 24, structures: 4096, areas: 8 };
/// First pfn of the crowd's vmemmap windows.
const PFN_BASE: u64 = 1 << 22;

pub fn run(w: &mut World) -> Verdict {
    w.server.admin.purge().context("purge")?;
    let baseline = Resources::of(&w.stats()?);
    let cpus = w.cpus.max(1);
    for (i, agent) in w.crowd.iter_mut().take(AGENTS).enumerate() {
        let quota = if i == AGENTS - 1 { GREEDY_QUOTA } else { QUOTA };
        if i < AGENTS - LATE {
            enrol(w.server, agent, quota, i as u64 % cpus)?;
        }
    }
    let mut requests = 0u64;
    for round in 0..ROUNDS {
        if round == 1 {
            for (i, agent) in w.crowd.iter_mut().enumerate().take(AGENTS).skip(AGENTS - LATE) {
                let quota = if i == AGENTS - 1 { GREEDY_QUOTA } else { QUOTA };
                enrol(w.server, agent, quota, i as u64 % cpus)?;
            }
        }
        let active = if round == 0 { AGENTS - LATE } else { AGENTS };
        let crowd: heapless::Vec<&Agent, AGENTS> = w.crowd.iter().take(active).collect();
        for (i, agent) in crowd.iter().enumerate() {
            let seed = 0x5eed_0000 + (round as u64) * 0x100 + i as u64;
            let greedy = i == AGENTS - 1;
            let pfn_base = PFN_BASE + i as u64 * RANGES as u64 * RANGE_STRIDE;
            agent.send(Command::Stress(StressPlan { seed, ops: OPS, pfn_base, greedy, announce: 0 }));
        }
        let summaries = summaries(&crowd, w.root_endpoint)?;
        println!("stress: round {round}: {active} agents done");
        for (i, s) in summaries.iter().enumerate() {
            judge(i, s, i == AGENTS - 1, round)?;
            requests += u64::from(s.requests);
        }
        // Every published area, seen through the next agent's space.
        for (i, s) in summaries.iter().enumerate() {
            let Some((addr, len, seed)) = s.published else { fail!("S{i} published nothing") };
            let other = crowd.get((i + 1) % crowd.len()).copied().ok_or_else(|| reason("no crowd"))?;
            check(other, addr, len, seed)?;
            check(&w.agents[1], addr, len, seed)?;
        }
    }
    let crowd: heapless::Vec<&Agent, AGENTS> = w.crowd.iter().take(AGENTS).collect();
    for agent in &crowd {
        agent.send(Command::Release);
    }
    for (i, s) in summaries(&crowd, w.root_endpoint)?.iter().enumerate() {
        if s.corrupt != 0 || s.unexpected.is_some() || s.refused != 0 {
            fail!("S{i} releasing: {s:?}");
        }
    }
    w.server.admin.purge().context("purge")?;
    let stats = w.stats()?;
    if stats.missed_syncs != 0 {
        fail!("{} missed syncs", stats.missed_syncs);
    }
    for agent in w.crowd.iter().take(AGENTS) {
        let space = agent.space.ok_or_else(|| reason("an unregistered crowd agent"))?;
        w.server.admin.unregister(space).context("unregister")?;
    }
    println!("stress: {AGENTS} spaces, {requests} requests, 0 lost or corrupted canaries");
    unchanged(w, &baseline, format_args!("after the crowd freed everything and left"))
}

fn reason(what: &str) -> Reason {
    crate::verdict::reason(format_args!("{what}"))
}

/// Registers `agent` with `quota`, pins it to `cpu` and starts it.
fn enrol(
    server: &root_task::memserver_process::MemServerProcess,
    agent: &mut Agent,
    quota: Quota,
    cpu: u64,
) -> Verdict {
    agent.register_with_quota(&server.admin, quota).context(agent.name)?;
    agent.pin(cpu).context(agent.name)?;
    agent.start().context(agent.name)
}

/// One stress summary from each of `crowd`, in its order.
fn summaries(crowd: &[&Agent], root_endpoint: u64) -> Result<heapless::Vec<StressSummary, AGENTS>, Reason> {
    let outcomes = gather::<AGENTS>(crowd, root_endpoint).context("gathering the crowd")?;
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
fn judge(i: usize, s: &StressSummary, greedy: bool, round: u32) -> Verdict {
    let starved = if greedy { s.over_quota == 0 } else { s.over_quota != 0 };
    if s.requests < OPS || s.corrupt != 0 || s.unexpected.is_some() || s.refused != 0 || starved {
        fail!("S{i} round {round}: {s:?}");
    }
    Ok(())
}
