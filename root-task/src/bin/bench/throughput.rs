//! Throughput under contention: the stress workload (pseudo-random
//! vmalloc/vfree, vmemmap and percpu requests with their canaries, as the
//! `stress` scenario runs it) of [`AGENTS`] client agents spread over 1, 2
//! and 4 CPUs, against the one memory server thread on CPU 0. Guest time is
//! instructions (`-icount`), of every CPU: the figure is requests per 10^9
//! of them.

use client_lib::AdminClient;
use memserver_protocol::Quota;
use root_task::agent::{gather, Agent};
use root_task::agent_protocol::{Command, Outcome};
use root_task::inbox::Inbox;
use root_task::stress_plan::{StressPlan, RANGES, RANGE_STRIDE};
use sel4_launch::allocator::Allocator;
use sel4_launch::vspace::VSpace;
use sel4_layer::println;
use sel4_layer::time_stamp::cycles;

/// The agents' image, built by `images` before this program.
static AGENT: &[u8] = include_bytes!(env!("ROOT_TASK_AGENT_ELF"));

/// Client agents.
const AGENTS: usize = 4;
/// Requests each agent makes in a run.
const OPS: u32 = 200;
/// Client CPUs of each run: agent `i` runs on CPU `i % cpus`, so with 4
/// CPUs one agent shares CPU 0 with the server.
const CPUS: [u64; 3] = [1, 2, 4];
/// First pfn of the agents' vmemmap windows.
const PFN_BASE: u64 = 1 << 22;
/// Each agent's quota: ample for its workload.
const QUOTA: Quota = Quota::bytes(64 << 20);

/// Loads, registers and runs the agents on 1, 2 and 4 CPUs; prints one
/// `bench throughput` line per run.
pub fn run(alloc: &mut Allocator, root: &mut VSpace, endpoint: u64, admin: AdminClient, inbox_endpoint: u64) {
    let inbox = Inbox::new(inbox_endpoint, admin);
    let names = ["T0", "T1", "T2", "T3"];
    let mut agents: [Agent; AGENTS] =
        core::array::from_fn(|i| Agent::load(alloc, root, names[i], AGENT, i as u64, endpoint, inbox));
    for agent in &mut agents {
        agent.start().unwrap_or_else(|e| panic!("starting {}: {e}", agent.name));
        agent.register_with_quota(&admin, QUOTA).unwrap_or_else(|e| panic!("registering {}: {e:?}", agent.name));
    }
    for (run, cpus) in CPUS.into_iter().enumerate() {
        for (i, agent) in agents.iter().enumerate() {
            agent.pin(i as u64 % cpus).unwrap_or_else(|e| panic!("pinning {}: {e:?}", agent.name));
        }
        let start = cycles();
        for (i, agent) in agents.iter().enumerate() {
            let seed = 0x7a11_0000 + (run * AGENTS + i) as u64;
            let pfn_base = PFN_BASE + i as u64 * RANGES as u64 * RANGE_STRIDE;
            agent.send(Command::Stress(StressPlan { seed, ops: OPS, pfn_base, greedy: false, announce: 0 }));
        }
        let requests = finished(&agents, inbox);
        let elapsed = cycles() - start;
        for agent in &agents {
            agent.send(Command::Release);
        }
        finished(&agents, inbox);
        println!(
            "bench throughput cpus={cpus} agents={AGENTS} requests={requests} cycles={elapsed} per_gcycle={}",
            requests * 1_000_000_000 / elapsed.max(1)
        );
    }
    for agent in &mut agents {
        agent.unregister(&admin).unwrap_or_else(|e| panic!("unregistering {}: {e:?}", agent.name));
    }
}

/// Waits for every agent's stress summary; the requests they made.
fn finished(agents: &[Agent; AGENTS], inbox: Inbox) -> u64 {
    let all: [&Agent; AGENTS] = core::array::from_fn(|i| &agents[i]);
    let outcomes = gather::<AGENTS>(&all, inbox).unwrap_or_else(|e| panic!("gathering the agents: {e}"));
    outcomes
        .iter()
        .map(|outcome| match outcome {
            Some(Outcome::Stressed(s)) if s.corrupt == 0 && s.unexpected.is_none() && s.refused == 0 => {
                u64::from(s.requests)
            }
            other => panic!("an agent's stress run: {other:?}"),
        })
        .sum()
}
