//! The root task: the first user program seL4 starts. It summarises
//! bootinfo, runs the hello-child self-test, starts the memory server and
//! the client agents in their own address spaces, registers the agents'
//! spaces, runs the scenarios and ends QEMU with the outcome.
#![no_std]
#![no_main]
#![allow(
    clippy::result_large_err,
    reason = "a scenario's failure carries its reason as a fixed-size string (no allocator); the root task's stack has room"
)]

mod hello;
mod scenarios;
mod verdict;

use client_lib::MemClient;
use root_task::agent::Agent;
use root_task::inbox::Inbox;
use scenarios::World;
use sel4_launch::allocator::Allocator;
use sel4_launch::memserver_process::MemServerProcess;
use sel4_launch::vspace::VSpace;
use sel4_layer::abi::{init_cap, ObjectType};
use sel4_layer::bootinfo::BootInfo;
use sel4_layer::println;
use sel4_layer::runtime::{self, StartRegs};

/// The memory server's and the client agents' ELF images, built by
/// `images` before this program.
static MEMSERVER: &[u8] = include_bytes!(env!("ROOT_TASK_MEMSERVER_ELF"));
static AGENT: &[u8] = include_bytes!(env!("ROOT_TASK_AGENT_ELF"));

fn bootinfo(regs: StartRegs) -> &'static BootInfo {
    // SAFETY: seL4 starts the root task with rdi pointing at the bootinfo
    // frame, mapped read-only for the task's whole life.
    unsafe { &*(regs.rdi as *const BootInfo) }
}

sel4_layer::sel4_program!(main, ipc_buffer = |regs| bootinfo(regs).ipc_buffer);

fn main(regs: StartRegs) -> ! {
    runtime::set_exit_capability(init_cap::IO_PORT);
    let bootinfo = bootinfo(regs);
    let (empty, untyped, cpus) = (bootinfo.empty, bootinfo.untyped, bootinfo.num_nodes);
    println!(
        "root-task: {} untypeds ({} MiB RAM), empty slots {:#x}..{:#x}, {} CPUs",
        untyped.end - untyped.start,
        bootinfo.ram_bytes() >> 20,
        { empty.start },
        { empty.end },
        cpus
    );
    let mut alloc = Allocator::new(bootinfo);
    let mut root_vspace = VSpace::root_task();
    hello::run(&mut alloc, &mut root_vspace);

    let (scenarios, grant) = scenarios::selected();
    let root_endpoint = alloc.retype(ObjectType::Endpoint, 0);
    let server = MemServerProcess::launch(&mut alloc, &mut root_vspace, MEMSERVER, root_endpoint, grant);
    println!("root-task: memory server launched");
    let region = *MemClient::connect(server.admin_endpoint())
        .unwrap_or_else(|e| panic!("the memory server does not answer: {e:?}"))
        .region();
    let inbox = Inbox::new(root_endpoint, server.admin);
    let mut load = |name, index| Agent::load(&mut alloc, &mut root_vspace, name, AGENT, index, server.endpoint, inbox);
    let mut agents = [load("A", 0), load("B", 1), load("C", 2)];
    let late = load("D", 3);
    let crowd = scenarios::CROWD_NAMES.iter().zip(4..).map(|(name, index)| load(name, index)).collect();
    for agent in &mut agents {
        agent.give_frames(&mut alloc, scenarios::AGENT_FRAMES);
        agent.start().unwrap_or_else(|e| panic!("starting {}: {e}", agent.name));
        let registered = agent.register(&server.admin, scenarios::AGENT_QUOTA);
        registered.unwrap_or_else(|e| panic!("registering {}: {e:?}", agent.name));
    }
    let machine = (cpus, bootinfo.arch_info);
    let mut world = World::new(&mut alloc, &mut root_vspace, &server, region, agents, late, crowd, inbox, machine);
    let all_ok = scenarios::run_all(&mut world, scenarios);
    println!("root-task: {}", if all_ok { "all scenarios ok" } else { "some scenarios FAILED" });
    runtime::exit(all_ok)
}
