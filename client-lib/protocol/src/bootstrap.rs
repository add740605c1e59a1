//! The contract between the program that starts the memory server (the
//! root task) and the server: which capability sits in which slot of the
//! server's CNode, what the start-up registers carry, which badges mean
//! what, and how faults of client threads reach the server and how the
//! server reports the real ones.
//!
//! # Faults of client threads
//! seL4 5.0.0 without MCS finds a thread's fault endpoint by a capability
//! address in the thread's own CSpace when the fault happens, so that
//! capability sits in the client's CSpace and the client can send on it
//! too. The contract makes what a client can send there harmless:
//! - The administrator mints the server's endpoint into that slot with the
//!   badge [`Request::Register`](crate::Request::Register)
//!   returned ([`FaultBadge`]: the space id and the registration's
//!   generation) and the rights
//!   `CapRights::SEND_GRANT` (sel4-layer): Send
//!   and Grant, both of which the kernel requires of a fault endpoint, and
//!   no Receive, so the client cannot take messages meant for the server.
//!   seL4 5.0.0 has no Grant-Reply right, so a client can attach a
//!   capability to what it sends; the server deletes whatever arrives in
//!   its receive slot, on any message, before it receives the next.
//! - On a fault badge the server accepts only messages shaped as the
//!   kernel's fault messages (a fault label, exactly the kernel's length
//!   for it, no capability) and only with the generation of the space's
//!   current registration; anything else is dropped unanswered. A VM fault
//!   is repaired only by installing what the canonical table maps, into
//!   the badge's own space; otherwise it becomes a report naming that
//!   space. A forged fault can so do only what a real fault of one of the
//!   client's own threads could.
//! - Reporting never blocks the server: reports wait in a bounded queue
//!   per space, and a full queue drops the newest and counts it in the next
//!   report it gives (so a client flooding forged faults loses only its own
//!   reports, and never silently). While reports wait, the server signals
//!   the notification in [`server_slot::REPORT`] (badge
//!   [`badge::REPORT_NOTICE`]); a signal never blocks. The administrator
//!   takes the reports with
//!   [`Request::TakeFault`](crate::Request::TakeFault); the root
//!   task binds that notification to its thread, so its receive on its own
//!   endpoint wakes for it too.
//! - `Unregister` ends the identity: from then on the server drops what
//!   the old badge carries (a later registration of the id has another
//!   generation) and forgets the space's pending reports, and the
//!   administrator revokes the old fault capability before it hands the
//!   slot anything else (the root task then routes the threads' faults to
//!   itself).

use crate::words::Word;

/// Slots of the memory server's CNode 0 (the server's CPtr of each is
/// [`cspace::cptr`] of it).
pub mod server_slot {
    /// The endpoint the server receives requests and client faults on.
    pub const ENDPOINT: u64 = 1;
    /// CNode 0 itself, unguarded: the server invokes it as
    /// [`super::cspace::ROOT`] and names its slots from it by
    /// [`super::cspace::address`].
    pub const CNODE: u64 = 2;
    /// The server's own VSpace (PML4), for its scratch mappings.
    pub const VSPACE: u64 = 3;
    /// The starter's notification (Send right only), badged
    /// [`super::badge::REPORT_NOTICE`]: signalled while fault reports wait.
    pub const REPORT: u64 = 4;
    /// The server thread's own fault endpoint (the starter's, badged
    /// [`super::badge::SERVER_FAULT`]). The server's first message there
    /// is its start's outcome: [`super::READY_LABEL`] once it serves, or
    /// the fault that ended a start that failed (a panic's `ud2`).
    pub const FAULT: u64 = 5;
    /// The first of the untyped capabilities the server may use.
    pub const UNTYPED_START: u64 = 16;
}

/// Slots in each CNode of the server's CSpace: 2^16 (2 MiB of kernel
/// memory, one of the server's granules).
pub const SERVER_CNODE_BITS: u64 = 16;

/// The server's CSpace. Its root is CNode 0, the starter's, of
/// 2^[`SERVER_CNODE_BITS`] slots, with the contract's capabilities in its
/// first slots ([`server_slot`]); as the thread's CSpace root it has a guard
/// of [`ROOT_GUARD_SIZE`](cspace::ROOT_GUARD_SIZE) bits, so a CPtr names slot
/// `k` of CNode 0 in its bits 16 to 31 ([`cptr`](cspace::cptr)), in one
/// level. A slot of CNode 0 may hold a CNode of as many slots that the
/// server made from its own memory: its slot `i` (from 1) is CPtr
/// `k << 16 | i`, in two levels. So the server's slots are bounded by its
/// memory, and a CPtr fits 32 bits.
pub mod cspace {
    use super::{server_slot, SERVER_CNODE_BITS as BITS};
    use crate::words::Word;

    /// The guard size of CNode 0 as the root of the server's CSpace (its
    /// guard is 0): what a CPtr has above its two levels' indices.
    pub const ROOT_GUARD_SIZE: Word = Word::BITS as Word - 2 * BITS;
    const MASK: Word = (1 << BITS) - 1;

    /// The server's CPtr of its capability to CNode 0 (unguarded, in slot
    /// [`server_slot::CNODE`]): through that slot, slot `CNODE` of CNode 0
    /// again, which holds it (a CPtr that stopped at the slot would go on
    /// into the CNode).
    pub const ROOT: Word = in_cnode(server_slot::CNODE, server_slot::CNODE);

    /// The server's CPtr of slot `slot` of CNode 0.
    pub const fn cptr(slot: Word) -> Word {
        slot << BITS
    }

    /// The server's CPtr of slot `i` (from 1) of the CNode in slot `holder`
    /// of CNode 0.
    pub const fn in_cnode(holder: Word, i: Word) -> Word {
        holder << BITS | (i & MASK)
    }

    /// The slot of CNode 0 that holds the CNode of the server's slot
    /// `cptr` (`None`: CNode 0 itself), and its index there.
    pub const fn split(cptr: Word) -> (Option<Word>, Word) {
        match cptr & MASK {
            0 => (None, (cptr >> BITS) & MASK),
            i => (Some((cptr >> BITS) & MASK), i),
        }
    }

    /// How a CNode operation names the server's slot `cptr` from an
    /// unguarded capability to CNode 0 ([`ROOT`]): index and depth (one
    /// level or two).
    pub const fn address(cptr: Word) -> (Word, Word) {
        match split(cptr) {
            (None, k) => (k, BITS),
            (Some(_), _) => (cptr & (MASK << BITS | MASK), 2 * BITS),
        }
    }

    /// The `n`-th slot from `first` in a run of slots of one CNode.
    pub const fn nth(first: Word, n: Word) -> Word {
        match split(first) {
            (None, _) => first + (n << BITS),
            (Some(_), _) => first + n,
        }
    }
}

/// CPUs (seL4 nodes) the kernel is built for (`CONFIG_MAX_NUM_NODES`, set
/// by the `images` build from this): the most the memory server keeps
/// percpu units for (it keeps them for the CPUs the kernel booted,
/// [`ServerStart::cpus`]).
pub const KERNEL_CPUS: usize = 4;

/// What the memory server's start-up registers carry besides its IPC
/// buffer: rsi = number of untyped caps from `server_slot::UNTYPED_START`
/// (low 32 bits) and their size in bits (high 32), rdx = first free slot,
/// rcx = the CPUs the kernel booted (bootinfo's `numNodes`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ServerStart {
    /// How many untyped capabilities follow `server_slot::UNTYPED_START`.
    pub untypeds: u32,
    /// The size of each, in bits.
    pub untyped_bits: u32,
    /// The first empty slot of the server's CNode after them.
    pub first_free_slot: u64,
    /// The CPUs the kernel booted: the server keeps a percpu unit for each.
    pub cpus: u32,
}

impl ServerStart {
    /// The values for rsi, rdx and rcx.
    pub fn to_args(self) -> [Word; 3] {
        [self.untypeds as Word | ((self.untyped_bits as Word) << 32), self.first_free_slot, self.cpus as Word]
    }

    /// Reads the values of rsi, rdx and rcx.
    pub fn from_args([rsi, rdx, rcx]: [Word; 3]) -> ServerStart {
        ServerStart { untypeds: rsi as u32, untyped_bits: (rsi >> 32) as u32, first_free_slot: rdx, cpus: rcx as u32 }
    }
}

/// The label of the message the server sends on its fault endpoint
/// ([`server_slot::FAULT`]) once it is started and serves, before it
/// receives its first request; no seL4 fault has it. The starter waits for
/// it (or for the fault of a start that failed), so a failed start is told
/// at once rather than as a call that never returns.
pub const READY_LABEL: u64 = 0x5eed;

/// Badges on endpoints to the memory server and to the starter. seL4
/// 5.0.0 keeps 28 bits of an endpoint badge.
pub mod badge {
    /// The administrator (the root task) calling the server.
    pub const ADMIN: u64 = 0x1;
    /// First client badge; client `i` calls with `CLIENT_BASE + i`. Client
    /// badges are below [`SPACE_FAULT`] (the server refuses others).
    pub const CLIENT_BASE: u64 = 0x100;
    /// The bit that marks a fault badge ([`super::FaultBadge`]), the
    /// highest an endpoint badge has.
    pub const SPACE_FAULT: u64 = 1 << 27;
    /// The server's signal to the starter that fault reports wait (the
    /// badge of the notification in [`super::server_slot::REPORT`]).
    pub const REPORT_NOTICE: u64 = 0x2000;
    /// The server's own faults, at the starter.
    pub const SERVER_FAULT: u64 = 0x2001;
}

/// The badge of a registered space's fault endpoint: [`badge::SPACE_FAULT`],
/// the space id in bits 0-12 and the registration's generation in bits
/// 13-26 (it wraps after 2^14 registrations of one id). Every badge word
/// with bit 27 as its highest is one. The 13 bits of the id bound the
/// server's registry at [`FaultBadge::SPACES`], twice seL4 x86-64's 4,096
/// ASIDs (every registered VSpace needs one).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct FaultBadge {
    /// Below [`FaultBadge::SPACES`].
    space: u16,
    /// Below 2^14.
    generation: u32,
}

impl FaultBadge {
    const SPACE_BITS: u32 = 13;
    const GENERATION_MASK: u32 = (1 << (27 - Self::SPACE_BITS)) - 1;
    /// Space ids a fault badge can name.
    pub const SPACES: usize = 1 << Self::SPACE_BITS;

    /// The identity of registration `generation` (modulo 2^14) of space
    /// `space` (modulo [`FaultBadge::SPACES`]).
    pub const fn new(space: u16, generation: u32) -> FaultBadge {
        FaultBadge { space: space & (Self::SPACES as u16 - 1), generation: generation & Self::GENERATION_MASK }
    }

    /// The space id.
    pub const fn space(self) -> u16 {
        self.space
    }

    /// The badge word.
    pub const fn word(self) -> u64 {
        badge::SPACE_FAULT | ((self.generation as u64) << Self::SPACE_BITS) | self.space as u64
    }

    /// The fault badge `word` is, if it is one.
    pub const fn from_word(word: u64) -> Option<FaultBadge> {
        if word & !(badge::SPACE_FAULT - 1) != badge::SPACE_FAULT {
            return None;
        }
        Some(FaultBadge::new(word as u16, (word >> Self::SPACE_BITS) as u32))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn start_arguments_round_trip() {
        let start = ServerStart { untypeds: 4, untyped_bits: 24, first_free_slot: 20, cpus: 2 };
        assert_eq!(ServerStart::from_args(start.to_args()), start);
    }

    #[test]
    fn the_servers_cptrs_name_cnode_0_in_one_level_and_its_cnodes_in_two() {
        assert_eq!(cspace::ROOT_GUARD_SIZE + 2 * SERVER_CNODE_BITS, 64, "a CPtr resolves the whole word");
        assert_eq!(cspace::split(cspace::cptr(5)), (None, 5));
        assert_eq!(cspace::address(cspace::cptr(5)), (5, 16));
        let node_slot = cspace::in_cnode(65535, 7);
        assert_eq!(cspace::split(node_slot), (Some(65535), 7));
        assert_eq!(cspace::address(node_slot), (node_slot, 32));
        assert_eq!(cspace::split(cspace::ROOT), (Some(server_slot::CNODE), server_slot::CNODE));
        assert!(node_slot < 1 << 32, "a CPtr fits 32 bits");
        assert_eq!(cspace::nth(cspace::cptr(100), 3), cspace::cptr(103));
        assert_eq!(cspace::nth(cspace::in_cnode(9, 1), 3), cspace::in_cnode(9, 4));
    }

    #[test]
    fn fault_badges_round_trip_fit_an_endpoint_badge_and_reject_other_badges() {
        for (space, generation) in [(0, 0), (31, 1), (4095, 7), (8191, (1 << 14) - 1)] {
            let b = FaultBadge::new(space, generation);
            assert_eq!(FaultBadge::from_word(b.word()), Some(b));
            assert!(b.word() < 1 << 28, "seL4 5.0.0 keeps 28 bits of a badge");
        }
        assert_eq!(FaultBadge::new(3, 1 << 14), FaultBadge::new(3, 0), "generations wrap");
        for other in [badge::ADMIN, badge::CLIENT_BASE + 7, 0, badge::SPACE_FAULT << 1 | badge::SPACE_FAULT, 1 << 26] {
            assert_eq!(FaultBadge::from_word(other), None, "{other:#x}");
        }
    }
}
