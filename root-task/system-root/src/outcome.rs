//! What became of a program: still running, succeeded, or failed, with
//! why (its own failure code, a malformed verdict, a fault the memory
//! server could not repair, a fault while it was not a client).

use client_lib::boot_contract::VERDICT_LABEL;
use client_lib::FaultReport;
use core::fmt;
use memserver_protocol::fault;

/// A program's outcome.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Outcome {
    /// No verdict yet.
    Running,
    /// It reported success.
    Succeeded,
    /// It failed.
    Failed(Failure),
}

/// Why a program failed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Failure {
    /// It reported failure with this code.
    Code(u64),
    /// Its verdict message was not one (label and length).
    MalformedVerdict {
        /// The message's label.
        label: u64,
        /// Its length in words.
        length: u64,
    },
    /// The memory server reported a fault it could not repair.
    Fault(FaultReport),
    /// The kernel reported a fault of its thread (the fault type).
    KernelFault {
        /// seL4's fault type (the message's label).
        kind: u64,
        /// The fault message's first words.
        mrs: [u64; 4],
    },
}

impl Outcome {
    /// The outcome a verdict message (`label`, `length` words, the first
    /// `word`) means.
    pub fn of_verdict(label: u64, length: u64, word: u64) -> Outcome {
        match (label, length, word) {
            (VERDICT_LABEL, 1, 0) => Outcome::Succeeded,
            (VERDICT_LABEL, 1, code) => Outcome::Failed(Failure::Code(code)),
            _ => Outcome::Failed(Failure::MalformedVerdict { label, length }),
        }
    }
}

impl fmt::Display for Outcome {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Outcome::Running => write!(f, "no verdict"),
            Outcome::Succeeded => write!(f, "ok"),
            Outcome::Failed(failure) => write!(f, "FAILED ({failure})"),
        }
    }
}

impl fmt::Display for Failure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Failure::Code(code) => write!(f, "failure code {code:#x}"),
            Failure::MalformedVerdict { label, length } => {
                write!(f, "a message with label {label:#x} and {length} words is not a verdict")
            }
            Failure::Fault(r) => write!(f, "{:?} at {:#x}, instruction {:#x}", r.kind, r.addr, r.ip),
            Failure::KernelFault { kind: fault::VM_FAULT, mrs } => {
                write!(f, "VM fault at {:#x}, instruction {:#x}", mrs[fault::VM_FAULT_ADDR], mrs[fault::IP])
            }
            Failure::KernelFault { kind, mrs } => write!(f, "fault type {kind}, message {mrs:x?}"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_the_verdict_label_with_one_zero_word_is_success() {
        assert_eq!(Outcome::of_verdict(VERDICT_LABEL, 1, 0), Outcome::Succeeded);
        assert_eq!(Outcome::of_verdict(VERDICT_LABEL, 1, 9), Outcome::Failed(Failure::Code(9)));
        for (label, length) in [(VERDICT_LABEL, 0), (VERDICT_LABEL, 2), (0, 1), (VERDICT_LABEL + 1, 1)] {
            assert_eq!(
                Outcome::of_verdict(label, length, 0),
                Outcome::Failed(Failure::MalformedVerdict { label, length })
            );
        }
    }
}
