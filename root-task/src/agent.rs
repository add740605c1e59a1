//! Client agents as the root task drives them: loading, registering with
//! the memory server and unregistering (and with it, where their threads'
//! faults go), commands and their outcomes, and recovery of an agent whose
//! access was reported as a real fault.
#![allow(
    clippy::result_large_err,
    reason = "a Trouble carries the whole event that broke a command (server statistics included); the root task's stack has room"
)]

use crate::agent_protocol::{role, slot, Command, Outcome, FAULT_BADGE_BASE, OUTCOME_BADGE_BASE};
use crate::inbox::{Event, Inbox};
use client_lib::{boot_contract, transport};
use client_lib::{server_answer, AdminClient, ClientError};
use core::fmt;
use memserver_protocol::bootstrap::badge;
use memserver_protocol::words::Words;
use memserver_protocol::{ErrorCode, FaultReport, Quota, Registration, Reply, Request};
use sel4_launch::allocator::Allocator;
use sel4_launch::fault_route::FaultRoute;
use sel4_launch::process::{GivenFrames, Process, ProcessSpec, Thread};
use sel4_launch::vspace::VSpace;
use sel4_layer::abi::{init_cap, CPtr, ObjectType};
use sel4_layer::{syscall, CNode, CapRights, Sel4Error};

/// Agents' thread priority: below the memory server's.
const PRIORITY: u8 = 150;

/// Why a command did not produce an outcome.
#[derive(Debug)]
pub enum Trouble {
    /// The memory server reported a real fault of the agent (the agent was
    /// restarted and is ready again).
    Faulted(FaultReport),
    /// A thread of the agent faulted while its space was not registered:
    /// the kernel's message (fault type and registers) reached the root
    /// task itself (the agent was restarted and is ready again).
    KernelFault {
        /// The fault type (the message label).
        kind: u64,
        /// The first message registers of the fault message.
        mrs: [u64; 4],
    },
    /// The agent found the memory server's answer to its request wrong
    /// (not a refusal: a reply of the wrong kind, or no reply at all).
    Client(ClientError),
    /// Something else arrived, or the agent could not be restarted.
    Broken(Event),
}

impl fmt::Display for Trouble {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Trouble::Faulted(r) => write!(f, "reported fault: {}", Event::Fault(*r)),
            Trouble::KernelFault { kind, mrs } => write!(f, "fault without a registered space: type {kind}, {mrs:x?}"),
            Trouble::Client(e) => write!(f, "the agent's call: {e}"),
            Trouble::Broken(e) => write!(f, "{e}"),
        }
    }
}

/// A client agent.
pub struct Agent {
    /// Its name in the scenarios' output.
    pub name: &'static str,
    index: u64,
    /// Its address space, CSpace and command thread.
    pub process: Process,
    command: CPtr,
    inbox: Inbox,
    mem_endpoint: CPtr,
    /// Where the agent's faults go (its fault capability is a copy of one
    /// the root task keeps, so routing them elsewhere takes it back).
    fault_route: FaultRoute,
    /// The space id and fault badge the memory server gave it.
    pub registration: Option<Registration>,
    /// Frames the agent was given to vmap (the boot contract's `FRAMES`).
    pub frames: Option<GivenFrames>,
}

impl Agent {
    /// Loads agent `index` from `image`, connected to the memory server's
    /// `mem_endpoint` and reporting to the endpoint of `inbox`, where its
    /// threads' faults go too until its space is registered. Not yet
    /// started.
    pub fn load(
        alloc: &mut Allocator,
        root: &mut VSpace,
        name: &'static str,
        image: &[u8],
        index: u64,
        mem_endpoint: CPtr,
        inbox: Inbox,
    ) -> Agent {
        let spec = ProcessSpec { name, image, priority: PRIORITY, cnode_bits: 12, fault_slot: slot::FAULT };
        let process = Process::load(alloc, root, &spec);
        let command = alloc.retype(ObjectType::Endpoint, 0);
        process.give(slot::MEMSERVER, mem_endpoint, CapRights::SEND_GRANT, badge::CLIENT_BASE + index);
        process.give(slot::COMMAND, command, CapRights::ALL, 0);
        process.give(slot::OUTCOME, inbox.endpoint, CapRights::SEND, OUTCOME_BADGE_BASE + index);
        let agent = Agent {
            name,
            index,
            process,
            command,
            inbox,
            mem_endpoint,
            fault_route: FaultRoute::new(alloc),
            registration: None,
            frames: None,
        };
        agent.route_faults(inbox.endpoint, FAULT_BADGE_BASE + index);
        agent
    }

    /// Gives the agent `count` frames of its own to vmap, as a launcher
    /// gives a program its `frames`.
    pub fn give_frames(&mut self, alloc: &mut Allocator, count: u64) {
        let given = self.process.give_frames(alloc, boot_contract::slot::FRAMES, boot_contract::FRAMES_BITS, count);
        self.frames = Some(given);
    }

    /// The badge the agent calls the memory server with.
    pub fn client_badge(&self) -> u64 {
        badge::CLIENT_BASE + self.index
    }

    /// The space id the memory server gave it.
    pub fn space(&self) -> Option<u16> {
        self.registration.map(|r| r.space)
    }

    /// Registers the agent's VSpace with the memory server, with a quota,
    /// and routes its threads' faults to the server.
    pub fn register(&mut self, admin: &AdminClient, quota_bytes: u64) -> Result<u16, ClientError> {
        self.register_with_quota(admin, Quota::bytes(quota_bytes))
    }

    /// Registers the agent's VSpace with limits on bytes, frames,
    /// structures and areas, and routes its threads' faults to the server
    /// (badged with the new space: an agent can be registered again after
    /// it was unregistered).
    pub fn register_with_quota(&mut self, admin: &AdminClient, quota: Quota) -> Result<u16, ClientError> {
        let registration = admin.register_with_quota(self.client_badge(), quota, self.process.vspace.pml4)?;
        self.route_faults(self.mem_endpoint, registration.fault_badge);
        self.registration = Some(registration);
        Ok(registration.space)
    }

    /// Unregisters the agent's space and takes its fault identity back:
    /// the fault capability is revoked, and the agent's threads' faults
    /// reach the root task itself from then on.
    ///
    /// # Panics
    /// If the agent is not registered (a scenario's mistake).
    pub fn unregister(&mut self, admin: &AdminClient) -> Result<(), ClientError> {
        let space = self.space().unwrap_or_else(|| panic!("unregistering {}, which is not registered", self.name));
        admin.unregister(space)?;
        self.registration = None;
        self.route_faults(self.inbox.endpoint, FAULT_BADGE_BASE + self.index);
        Ok(())
    }

    /// Makes the agent's fault endpoint `endpoint` with `badge`, with the
    /// rights a fault endpoint needs (Send and Grant, no Receive). The
    /// previous one is revoked first, so no copy of it stays anywhere.
    fn route_faults(&self, endpoint: CPtr, badge: u64) {
        self.fault_route.route(&self.process, endpoint, badge);
    }

    /// Lends the agent an endpoint to the memory server with `badge`, in
    /// `slot::LENT`, until [`Agent::take_back`].
    pub fn lend(&self, badge: u64) {
        self.process.give(slot::LENT, self.mem_endpoint, CapRights::SEND_GRANT, badge);
    }

    /// Takes back what [`Agent::lend`] lent.
    pub fn take_back(&self) -> Result<(), Sel4Error> {
        self.process.cnode.delete(slot::LENT)
    }

    /// Starts (or restarts) the agent's command thread and waits until it
    /// is connected.
    pub fn start(&self) -> Result<(), Trouble> {
        self.process.start(&self.process.main, [role::AGENT, 0, 0]);
        match self.wait()? {
            Outcome::Ready(Ok(())) => Ok(()),
            other => Err(Trouble::Broken(Event::Outcome { index: self.index, outcome: other })),
        }
    }

    /// Starts a percpu worker thread on `cpu` that increments the counter
    /// at `addr` `times` times.
    pub fn start_worker(&mut self, alloc: &mut Allocator, cpu: u64, addr: u64, times: u64) -> Thread {
        self.start_thread(alloc, cpu, [role::PERCPU_WORKER, addr, times])
    }

    /// Starts a thread on `cpu` that forges `times` VM faults at `addr` on
    /// the agent's fault endpoint, then reports.
    pub fn start_forger(&mut self, alloc: &mut Allocator, cpu: u64, addr: u64, times: u64) -> Thread {
        self.start_thread(alloc, cpu, [role::FORGER, addr, times])
    }

    /// A new thread of the agent's process, placed on `cpu` before it
    /// first runs (it never migrates), started with `args`.
    fn start_thread(&mut self, alloc: &mut Allocator, cpu: u64, args: [u64; 3]) -> Thread {
        let thread = self.process.add_thread(alloc);
        thread.tcb.set_affinity(cpu).unwrap_or_else(|e| panic!("{}: affinity {cpu}: {e:?}", self.name));
        self.process.start(&thread, args);
        thread
    }

    /// Waits for this agent's next outcome. A real fault of its threads,
    /// reported for its space or, with no space registered, by the kernel,
    /// restarts it.
    pub fn wait(&self) -> Result<Outcome, Trouble> {
        match self.inbox.next() {
            Event::Outcome { index, outcome } if index == self.index => Ok(outcome),
            Event::Fault(report) if Some(report.space) == self.space() => {
                self.start()?;
                Err(Trouble::Faulted(report))
            }
            Event::AgentFault { index, kind, mrs } if index == self.index => {
                self.start()?;
                Err(Trouble::KernelFault { kind, mrs })
            }
            other => Err(Trouble::Broken(other)),
        }
    }

    /// Has the agent carry out `command` and returns its outcome.
    pub fn run(&self, command: Command) -> Result<Outcome, Trouble> {
        self.send(command);
        self.wait()
    }

    /// Gives the agent `command` without waiting for its outcome (see
    /// [`gather`]).
    pub fn send(&self, command: Command) {
        let words = Words::encode(&command).unwrap_or_else(|| panic!("command does not fit a message"));
        let (info, mrs) = transport::stage(&words, 0);
        syscall::send(self.command, info, mrs);
    }

    /// Runs the agent's command thread on `cpu` from now on.
    pub fn pin(&self, cpu: u64) -> Result<(), Sel4Error> {
        self.process.main.tcb.set_affinity(cpu)
    }

    /// Kills the agent wherever it is: its command thread is stopped and
    /// its TCB deleted. Its space stays registered until unregistered.
    pub fn kill(&self) -> Result<(), Sel4Error> {
        self.process.main.tcb.suspend()?;
        CNode::root_task(init_cap::CNODE).delete(self.process.main.tcb.0)
    }

    /// Has the agent send `request` to the memory server: its reply or
    /// refusal (a problem of the exchange is `Trouble::Client`).
    pub fn request(&self, request: Request) -> Result<Result<Reply, ErrorCode>, Trouble> {
        match self.run(Command::Request(request))? {
            Outcome::Reply(reply) => server_answer(reply).map_err(Trouble::Client),
            other => Err(Trouble::Broken(Event::Outcome { index: self.index, outcome: other })),
        }
    }
}

/// Waits for one outcome from each of `agents`, which run concurrently,
/// and returns them in the agents' order.
pub fn gather<const N: usize>(agents: &[&Agent], inbox: Inbox) -> Result<[Option<Outcome>; N], Trouble> {
    let mut outcomes = [None; N];
    for _ in 0..agents.len().min(N) {
        match inbox.next() {
            Event::Outcome { index, outcome } => match agents.iter().position(|a| a.index == index) {
                Some(i) => {
                    if let Some(slot) = outcomes.get_mut(i) {
                        *slot = Some(outcome);
                    }
                }
                None => return Err(Trouble::Broken(Event::Outcome { index, outcome })),
            },
            other => return Err(Trouble::Broken(other)),
        }
    }
    Ok(outcomes)
}
