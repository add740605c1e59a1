//! The root task's endpoint: what arrives on it, classified by badge.
//! Agents report outcomes; the memory server reports real faults of
//! client threads; the memory server's own faults arrive too.

use crate::agent_protocol::{Outcome, OUTCOME_BADGE_BASE};
use client_lib::bootstrap::{badge, FaultReport, FAULT_REPORT_LABEL};
use client_lib::sel4::abi::CPtr;
use client_lib::sel4::syscall;
use client_lib::transport;

/// A message on the root task's endpoint.
#[derive(Debug)]
pub enum Event {
    /// Agent `index` reports.
    Outcome { index: u64, outcome: Outcome },
    /// The memory server could not repair a client thread's fault.
    Fault(FaultReport),
    /// The memory server itself faulted (fault type and registers).
    ServerFault { kind: u64, mrs: [u64; 4] },
    /// Anything else: a bug somewhere.
    Unexpected { badge: u64, label: u64 },
}

impl core::fmt::Display for Event {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        match self {
            Event::Outcome { index, outcome } => write!(f, "outcome {outcome:?} from agent {index}"),
            Event::Fault(r) => write!(f, "{:?} at {:#x} (ip {:#x}) in space {}", r.kind, r.addr, r.ip, r.space),
            Event::ServerFault { kind, mrs } => write!(f, "memory server fault (type {kind}, registers {mrs:x?})"),
            Event::Unexpected { badge, label } => write!(f, "unexpected message (badge {badge:#x}, label {label})"),
        }
    }
}

/// Waits for the next message on `endpoint`.
pub fn next(endpoint: CPtr) -> Event {
    let msg = syscall::recv(endpoint);
    let label = msg.info.label();
    match msg.badge {
        badge::SERVER_REPORT if label == FAULT_REPORT_LABEL => match FaultReport::from_words(msg.mrs) {
            Some(report) => Event::Fault(report),
            None => Event::Unexpected { badge: msg.badge, label },
        },
        badge::SERVER_FAULT => Event::ServerFault { kind: label, mrs: msg.mrs },
        b if b >= OUTCOME_BADGE_BASE => match transport::received(&msg).decode::<Outcome>(u32::MAX) {
            Ok(outcome) => Event::Outcome { index: b - OUTCOME_BADGE_BASE, outcome },
            Err(_) => Event::Unexpected { badge: msg.badge, label },
        },
        _ => Event::Unexpected { badge: msg.badge, label },
    }
}
