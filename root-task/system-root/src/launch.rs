//! Booting the described system as the boot contract says: the memory
//! server, the shared endpoints, then every program loaded with its
//! stack, heap and capabilities and, for a client, its space registered
//! with its quota and its faults routed to the server; the programs start
//! last, in the description's order.

use crate::alloc::vec::Vec;
use client_lib::boot_contract::{
    slot, Start, CLIENT_BASE, CNODE_BITS, FRAMES_BITS, HEAP, MAX_FRAMES, MAX_HEAP, MAX_STACK, STACK_TOP,
};
use client_lib::{Quota, Registration};
use sel4_launch::allocator::Allocator;
use sel4_launch::fault_route::FaultRoute;
use sel4_launch::memserver_process::{MemServerProcess, Placement, UntypedGrant};
use sel4_launch::process::{Process, ProcessSpec};
use sel4_launch::vspace::VSpace;
use sel4_layer::abi::{size, CPtr, ObjectType};

/// Bytes of a frame.
const PAGE: u64 = 1 << size::PAGE_BITS;
use sel4_layer::CapRights;
use system_image::{Program, SystemImage};
use system_root::grant;
use system_root::outcome::Outcome;
use system_root::sender::{fault_badge, program_badge, MAX_PROGRAMS};

/// The booted system.
pub struct Running {
    /// The memory server, if the system has one.
    pub server: Option<MemServerProcess>,
    /// The programs, in the description's order.
    pub programs: Vec<Launched>,
    /// The launcher's endpoint (verdicts, and faults of programs that are
    /// not registered clients).
    pub endpoint: CPtr,
}

/// A program the launcher started.
pub struct Launched {
    /// Its name.
    pub name: &'static str,
    /// Its process.
    pub process: Process,
    /// Its fault endpoint.
    pub route: FaultRoute,
    /// Its space's registration while it is a registered client.
    pub registration: Option<Registration>,
    /// What became of it.
    pub outcome: Outcome,
}

/// Boots `system`, with `endpoint` as the launcher's endpoint.
pub fn boot(alloc: &mut Allocator, root: &mut VSpace, system: &SystemImage<'static>, endpoint: CPtr) -> Running {
    assert!(system.programs.len() <= MAX_PROGRAMS, "launcher: more than {MAX_PROGRAMS} programs");
    let server = system.memserver.as_ref().map(|s| {
        let pieces = grant::pieces(s.memory)
            .unwrap_or_else(|| panic!("launcher: {} bytes cannot be given to the memory server", s.memory));
        let grant = UntypedGrant { count: pieces.count, bits: u64::from(pieces.bits) };
        let placement = Placement { priority: s.priority, cpu: u64::from(s.cpu) };
        MemServerProcess::launch_placed(alloc, root, s.elf, endpoint, grant, placement)
    });
    let shared: Vec<CPtr> = system.endpoints.iter().map(|_| alloc.retype(ObjectType::Endpoint, 0)).collect();
    let programs = system
        .programs
        .iter()
        .enumerate()
        .map(|(i, p)| load(alloc, root, i, p, server.as_ref(), &shared, endpoint))
        .collect();
    let running = Running { server, programs, endpoint };
    for (i, (launched, p)) in running.programs.iter().zip(&system.programs).enumerate() {
        let heap = (p.heap != 0).then_some((HEAP, p.heap));
        let start = Start { heap, index: i as u64 };
        let cpu = u64::from(p.cpu);
        let tcb = launched.process.main.tcb;
        tcb.set_affinity(cpu).unwrap_or_else(|e| panic!("{}: affinity {cpu}: {e:?}", p.name));
        launched.process.start(&launched.process.main, start.to_args());
    }
    running
}

/// Loads program `i` and gives it what the boot contract says; a client
/// is registered with `server`.
fn load(
    alloc: &mut Allocator,
    root: &mut VSpace,
    i: usize,
    p: &Program<&'static str, &'static [u8]>,
    server: Option<&MemServerProcess>,
    shared: &[CPtr],
    endpoint: CPtr,
) -> Launched {
    let spec = ProcessSpec {
        name: p.name,
        image: p.elf,
        priority: p.priority,
        cnode_bits: CNODE_BITS,
        fault_slot: slot::FAULT,
    };
    assert!(
        p.stack <= MAX_STACK && p.heap <= MAX_HEAP && p.frames <= MAX_FRAMES,
        "{}: more stack, heap or frames than the launcher gives",
        p.name
    );
    let mut process = Process::load(alloc, root, &spec);
    process.give_stack(alloc, STACK_TOP, p.stack);
    if p.heap != 0 {
        process.map_memory(alloc, HEAP, p.heap);
    }
    process.give(slot::LAUNCHER, endpoint, CapRights::SEND_GRANT, program_badge(i));
    for (k, &e) in p.endpoints.iter().enumerate() {
        let shared_endpoint = *shared.get(e as usize).unwrap_or_else(|| panic!("{}: no endpoint {e}", p.name));
        process.give(slot::endpoint(k as u64), shared_endpoint, CapRights::ALL, 0);
    }
    let route = FaultRoute::new(alloc);
    route.route(&process, endpoint, fault_badge(i));
    let registration = p.quota.map(|q| {
        let server = server.unwrap_or_else(|| panic!("{}: a client in a system without a memory server", p.name));
        let client = CLIENT_BASE + i as u64;
        process.give(slot::MEMSERVER, server.endpoint, CapRights::SEND_GRANT, client);
        let quota = Quota { bytes: q.bytes, frames: q.frames, structures: q.structures, areas: q.areas };
        let registration = server
            .admin
            .register_with_quota(client, quota, process.vspace.pml4)
            .unwrap_or_else(|e| panic!("{}: registering its space: {e:?}", p.name));
        route.route(&process, server.endpoint, registration.fault_badge);
        if p.frames != 0 {
            let given = process.give_frames(alloc, slot::FRAMES, FRAMES_BITS, p.frames / PAGE);
            let granted = server.admin.grant_frames(client, given.start, given.bytes);
            granted.unwrap_or_else(|e| panic!("{}: frame grant: {e:?}", p.name));
        }
        registration
    });
    Launched { name: p.name, process, route, registration, outcome: Outcome::Running }
}
