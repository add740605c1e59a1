//! The root task's commands to client agents, and their outcomes. An agent
//! is a client program in its own address space that carries out, in its
//! own identity and VSpace, what a scenario asks: memory-server requests
//! and memory accesses.

use crate::stress_plan::{StressPlan, StressSummary};
use client_lib::ClientError;
use memserver_protocol::{Protection, Reply, Request};
use serde::{Deserialize, Serialize};

/// What an agent thread does, given in its rsi at start.
pub mod role {
    /// Carry out commands from the root task.
    pub const AGENT: u64 = 0;
    /// Increment the percpu counter at rdx, rcx times, then report.
    pub const PERCPU_WORKER: u64 = 1;
    /// Send rcx forged VM faults at the address in rdx on the agent's
    /// fault endpoint (slot::FAULT), claiming [`super::FORGED_IP`], then
    /// report.
    pub const FORGER: u64 = 2;
}

/// The instruction address forged faults claim.
pub const FORGED_IP: u64 = 0xbad_0000;

/// Slots of an agent's CNode.
pub mod slot {
    /// Endpoint to the memory server, badged with the agent's identity
    /// (Send and Grant: it can call, not receive).
    pub const MEMSERVER: u64 = 1;
    /// Fault endpoint: while the agent's space is registered, the memory
    /// server's with the space's fault badge; otherwise the root task's,
    /// badged `FAULT_BADGE_BASE + i`.
    pub const FAULT: u64 = 2;
    /// Endpoint the agent receives commands on.
    pub const COMMAND: u64 = 3;
    /// Endpoint to the root task, badged with the agent's identity (Send
    /// only: an agent cannot receive others' outcomes or faults there).
    pub const OUTCOME: u64 = 4;
    /// An endpoint to the memory server with a badge the root task chose,
    /// lent for a scenario step.
    pub const LENT: u64 = 5;
}

/// Agent `i` reports to the root task with badge `OUTCOME_BADGE_BASE + i`.
pub const OUTCOME_BADGE_BASE: u64 = 0x400;
/// While agent `i`'s space is not registered, its threads' faults reach
/// the root task with badge `FAULT_BADGE_BASE + i`.
pub const FAULT_BADGE_BASE: u64 = 0x800;
/// Agents each of those badge ranges has room for.
pub const MAX_AGENTS: u64 = 0x400;

/// A command from the root task.
#[derive(Clone, Copy, Debug, Serialize, Deserialize)]
pub enum Command {
    /// Send `Request` to the memory server and return its reply.
    Request(Request),
    /// Send the first `len` of `words` to the memory server as they are.
    Raw {
        /// The message words.
        words: [u64; 4],
        /// How many of them to send.
        len: u8,
    },
    /// Send `RawMessage` as it is; report `Outcome::Done`, or, if it is a
    /// call, `Outcome::Answered`.
    Message(RawMessage),
    /// Receive on the agent's endpoint in slot `from`; report
    /// `Outcome::Received`.
    Receive {
        /// The agent's slot of the endpoint.
        from: u64,
    },
    /// Write the pattern of `seed` over `len` bytes at `addr` (8-aligned).
    Fill {
        /// First byte.
        addr: u64,
        /// Bytes (a multiple of 8).
        len: u64,
        /// The pattern's seed.
        seed: u64,
    },
    /// Check the pattern of `seed` over `len` bytes at `addr`.
    Check {
        /// First byte.
        addr: u64,
        /// Bytes (a multiple of 8).
        len: u64,
        /// The pattern's seed.
        seed: u64,
    },
    /// Write one word.
    Write {
        /// Where (8-aligned).
        addr: u64,
        /// What.
        value: u64,
    },
    /// Read one word.
    Read {
        /// Where (8-aligned).
        addr: u64,
    },
    /// Make the pseudo-random requests of `StressPlan`, keeping what is
    /// live at the end; report `Outcome::Stressed`.
    Stress(StressPlan),
    /// Free all a stress run holds (canaries checked first); report
    /// `Outcome::Stressed`.
    Release,
    /// Send one batch of `ops`, with `insert` put in at its position if
    /// given, and keep the replies; report `Outcome::Batched`.
    Batch {
        /// The operations.
        ops: BatchOps,
        /// One more operation and the position it takes.
        insert: Option<(u8, Request)>,
    },
    /// The reply to operation `index` of the last batch: report
    /// `Outcome::Reply`.
    BatchReply {
        /// Its position in the batch.
        index: u8,
    },
    /// Back the descriptors of `nr_pages` pfns from `start_pfn` with the
    /// agent's given frames from its `first`
    /// (`MemClient::vmemmap_populate_given`); report `Outcome::Reply`.
    VmemmapFrom {
        /// The first frame's slot in the frames CNode.
        first: u64,
        /// First pfn.
        start_pfn: u64,
        /// Pfns.
        nr_pages: u64,
    },
    /// vmap `pages` of the agent's given frames from its `first`
    /// (`MemClient::vmap_given`); report `Outcome::Reply` (the address).
    Vmap {
        /// The first frame's slot in the frames CNode.
        first: u64,
        /// How many frames.
        pages: u32,
        /// The area's rights.
        protection: Protection,
    },
}

/// The operations of a [`Command::Batch`].
#[derive(Clone, Copy, Debug, Serialize, Deserialize)]
pub enum BatchOps {
    /// `request`, `count` times.
    Repeat {
        /// The request.
        request: Request,
        /// How many times.
        count: u8,
    },
    /// A vfree of every area the last batch's replies name, in order, as
    /// many as fit in one batch (with the inserted operation).
    FreeMade,
}

/// A message as seL4 carries it, for a client that sends what it likes.
#[derive(Clone, Copy, Debug, Serialize, Deserialize)]
pub struct RawMessage {
    /// The agent's slot of the endpoint to send on.
    pub to: u64,
    /// The label.
    pub label: u64,
    /// Message words; the first `len` are sent.
    pub words: [u64; 4],
    /// How many words.
    pub len: u8,
    /// The agent's slots of the capabilities to attach, in order, up to
    /// the first 0.
    pub caps: [u64; 2],
    /// Call (and wait for the answer) rather than send.
    pub call: bool,
    /// How many times to send it, one after the other.
    pub times: u32,
}

/// What an agent reports.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum Outcome {
    /// Started and connected (or not) to the memory server.
    Ready(Result<(), ClientError>),
    /// The memory server's reply (or why there is none).
    Reply(Result<Reply, ClientError>),
    /// The label and length of the answer to the last call of a
    /// `RawMessage`.
    Answered {
        /// The answer's label.
        label: u64,
        /// Its length in words.
        length: u64,
    },
    /// The badge and label of what a `Command::Receive` received.
    Received {
        /// The badge it came with.
        badge: u64,
        /// Its label.
        label: u64,
    },
    /// A word read.
    Value(u64),
    /// A pattern check: `None` if every word matched, else the first
    /// offset that did not.
    Checked(Option<u64>),
    /// A write or fill finished; a percpu worker finished.
    Done,
    /// A stress run reached its announcement point and goes on.
    Working,
    /// A stress run or release finished.
    Stressed(StressSummary),
    /// A batch was answered: how many replies, how many of them errors
    /// (or why there was no answer).
    Batched(Result<(u8, u8), ClientError>),
}

/// The pattern word at byte `offset` for `seed`.
pub const fn pattern(seed: u64, offset: u64) -> u64 {
    (seed ^ offset).wrapping_mul(0x9e37_79b9_7f4a_7c15)
}

#[cfg(test)]
mod tests {
    use super::*;
    use client_lib::Undecodable;
    use memserver_protocol::words::Words;
    use memserver_protocol::ErrorCode;

    #[test]
    fn patterns_differ_by_seed_and_offset() {
        assert_ne!(pattern(1, 0), pattern(2, 0));
        assert_ne!(pattern(1, 0), pattern(1, 8));
    }

    #[test]
    fn every_command_and_outcome_fits_a_message() {
        let request =
            Request::VmemmapPopulate { start_pfn: u64::MAX, nr_pages: u64::MAX, compound_order: 255, huge: false };
        for command in [
            Command::Request(request),
            Command::Raw { words: [u64::MAX; 4], len: 4 },
            Command::Message(RawMessage {
                to: u64::MAX,
                label: u64::MAX,
                words: [u64::MAX; 4],
                len: 4,
                caps: [u64::MAX; 2],
                call: true,
                times: u32::MAX,
            }),
            Command::Check { addr: u64::MAX, len: u64::MAX, seed: u64::MAX },
            Command::Stress(StressPlan {
                seed: u64::MAX,
                ops: u32::MAX,
                pfn_base: u64::MAX,
                greedy: true,
                announce: u32::MAX,
            }),
        ] {
            assert!(Words::encode(&command).is_some());
        }
        let undecodable = ClientError::Undecodable {
            why: Undecodable::Malformed,
            label: u64::MAX,
            length: u64::MAX,
            first_word: u64::MAX,
        };
        let wrong = ClientError::WrongReply { request: u32::MAX, reply: u32::MAX };
        for error in [ClientError::Server(ErrorCode::NotRegistered), undecodable, wrong] {
            assert!(Words::encode(&Outcome::Reply(Err(error))).is_some());
        }
        assert!(Words::encode(&Outcome::Answered { label: u64::MAX, length: u64::MAX }).is_some());
        let summary = StressSummary {
            requests: u32::MAX,
            refused: u32::MAX,
            over_quota: u32::MAX,
            unexpected: Some(undecodable),
            corrupt: u32::MAX,
            published: Some((u64::MAX, u64::MAX, u64::MAX)),
            percpu_chunks: u32::MAX,
        };
        assert!(Words::encode(&Outcome::Stressed(summary)).is_some());
    }
}
