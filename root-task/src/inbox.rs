//! The root task's endpoint, and the notification bound to its thread:
//! what arrives, classified by badge. Agents report outcomes; the memory
//! server signals that fault reports of client threads wait, and the inbox
//! takes them from it; the kernel sends the memory server's own faults,
//! and those of agents whose space is not registered.

use crate::agent_protocol::{Outcome, FAULT_BADGE_BASE, MAX_AGENTS, OUTCOME_BADGE_BASE};
use client_lib::transport;
use client_lib::AdminClient;
use memserver_protocol::bootstrap::badge;
use memserver_protocol::{FaultReport, MAX_WORDS};
use sel4_layer::abi::CPtr;
use sel4_layer::syscall;

/// A message on the root task's endpoint.
#[derive(Debug)]
pub enum Event {
    /// Agent `index` reports.
    Outcome {
        /// The agent's index.
        index: u64,
        /// What it reports.
        outcome: Outcome,
    },
    /// The memory server could not repair a client thread's fault.
    Fault(FaultReport),
    /// A thread of agent `index`, whose space is not registered, faulted:
    /// the kernel's fault message (fault type and registers).
    AgentFault {
        /// The agent's index.
        index: u64,
        /// The fault type (the message label).
        kind: u64,
        /// The first message registers of the fault message.
        mrs: [u64; 4],
    },
    /// The memory server itself faulted (fault type and registers).
    ServerFault {
        /// The fault type (the message label).
        kind: u64,
        /// The first message registers of the fault message.
        mrs: [u64; 4],
    },
    /// Anything else: a bug somewhere.
    Unexpected {
        /// The badge it came with.
        badge: u64,
        /// Its label.
        label: u64,
    },
}

impl core::fmt::Display for Event {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        match self {
            Event::Outcome { index, outcome } => write!(f, "outcome {outcome:?} from agent {index}"),
            Event::Fault(r) => write!(
                f,
                "{:?} at {:#x} (ip {:#x}) in space {} ({} reports dropped before)",
                r.kind, r.addr, r.ip, r.space, r.dropped
            ),
            Event::AgentFault { index, kind, mrs } => {
                write!(f, "fault of unregistered agent {index} (type {kind}, registers {mrs:x?})")
            }
            Event::ServerFault { kind, mrs } => write!(f, "memory server fault (type {kind}, registers {mrs:x?})"),
            Event::Unexpected { badge, label } => write!(f, "unexpected message (badge {badge:#x}, label {label})"),
        }
    }
}

/// Where the root task's events come from: its endpoint, and the memory
/// server it takes fault reports from.
#[derive(Clone, Copy, Debug)]
pub struct Inbox {
    /// The root task's endpoint.
    pub endpoint: CPtr,
    admin: AdminClient,
}

impl Inbox {
    /// The inbox of `endpoint`, taking reports through `admin`.
    pub fn new(endpoint: CPtr, admin: AdminClient) -> Inbox {
        Inbox { endpoint, admin }
    }

    /// Waits for the next event. The server's notice that reports wait
    /// becomes the report it takes (a notice that finds none is skipped).
    pub fn next(&self) -> Event {
        loop {
            let msg = syscall::recv(self.endpoint);
            let label = msg.info.label();
            let agent = |base: u64| (base..base + MAX_AGENTS).contains(&msg.badge).then(|| msg.badge - base);
            return match msg.badge {
                badge::REPORT_NOTICE => match self.admin.take_fault() {
                    Ok(Some(report)) => Event::Fault(report),
                    Ok(None) => continue,
                    Err(_) => Event::Unexpected { badge: msg.badge, label },
                },
                badge::SERVER_FAULT => Event::ServerFault { kind: label, mrs: msg.mrs },
                _ => match (agent(FAULT_BADGE_BASE), agent(OUTCOME_BADGE_BASE)) {
                    (Some(index), _) => Event::AgentFault { index, kind: label, mrs: msg.mrs },
                    (_, Some(index)) => match transport::received::<MAX_WORDS>(&msg).decode::<Outcome>(u32::MAX) {
                        Ok(outcome) => Event::Outcome { index, outcome },
                        Err(_) => Event::Unexpected { badge: msg.badge, label },
                    },
                    _ => Event::Unexpected { badge: msg.badge, label },
                },
            };
        }
    }
}
