//! The contract between the program that starts the memory server (the
//! root task) and the server: which capability sits in which slot of the
//! server's CNode, what the start-up registers carry, which badges mean
//! what, and how the server reports a real fault.

use crate::sel4::abi::Word;

/// Slots of the memory server's CNode.
pub mod server_slot {
    /// The endpoint the server receives requests and client faults on.
    pub const ENDPOINT: u64 = 1;
    /// The server's own CNode (unguarded, so indices resolve `SERVER_CNODE_BITS`).
    pub const CNODE: u64 = 2;
    /// The server's own VSpace (PML4), for its scratch mappings.
    pub const VSPACE: u64 = 3;
    /// The starter's endpoint, badged [`super::badge::SERVER_REPORT`]: real faults are reported here.
    pub const REPORT: u64 = 4;
    /// The server thread's own fault endpoint (the starter's, badged).
    pub const FAULT: u64 = 5;
    /// The first of the untyped capabilities the server may use.
    pub const UNTYPED_START: u64 = 16;
}

/// Slots in the server's CNode: 2^18.
pub const SERVER_CNODE_BITS: u64 = 18;

/// CPUs the memory server keeps percpu units for: the most the kernel
/// runs (`CONFIG_MAX_NUM_NODES` of the `images` build).
pub const MAX_CPUS: usize = 4;

/// What the memory server's start-up registers carry besides its IPC
/// buffer: rsi = number of untyped caps from `server_slot::UNTYPED_START`
/// (low 32 bits) and their size in bits (high 32), rdx = first free slot.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ServerStart {
    /// How many untyped capabilities follow `server_slot::UNTYPED_START`.
    pub untypeds: u32,
    /// The size of each, in bits.
    pub untyped_bits: u32,
    /// The first empty slot of the server's CNode after them.
    pub first_free_slot: u64,
}

impl ServerStart {
    /// The values for rsi, rdx and rcx.
    pub fn to_args(self) -> [Word; 3] {
        [self.untypeds as Word | ((self.untyped_bits as Word) << 32), self.first_free_slot, 0]
    }

    /// Reads the values of rsi and rdx.
    pub fn from_args([rsi, rdx, _]: [Word; 3]) -> ServerStart {
        ServerStart { untypeds: rsi as u32, untyped_bits: (rsi >> 32) as u32, first_free_slot: rdx }
    }
}

/// Badges on endpoints to the memory server and to the starter.
pub mod badge {
    /// The administrator (the root task) calling the server.
    pub const ADMIN: u64 = 0x1;
    /// First client badge; client `i` calls with `CLIENT_BASE + i`.
    pub const CLIENT_BASE: u64 = 0x100;
    /// Faults of a registered space's threads reach the server with
    /// `SPACE_FAULT | space`.
    pub const SPACE_FAULT: u64 = 0x1000;
    /// The server's fault reports to the starter.
    pub const SERVER_REPORT: u64 = 0x2000;
    /// The server's own faults, at the starter.
    pub const SERVER_FAULT: u64 = 0x2001;
}

/// What kind of real fault the server reports.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FaultKind {
    /// A read of an address nothing maps.
    UnmappedRead,
    /// A write of an address nothing maps.
    UnmappedWrite,
    /// A write of a read-only mapping.
    ReadOnlyWrite,
    /// Any other exception (invalid opcode, ...): the thread is broken.
    Exception,
}

impl FaultKind {
    const ALL: [FaultKind; 4] =
        [FaultKind::UnmappedRead, FaultKind::UnmappedWrite, FaultKind::ReadOnlyWrite, FaultKind::Exception];
}

/// Label of a fault report message.
pub const FAULT_REPORT_LABEL: u64 = 0xfa;

/// A real fault the server could not repair, as sent to the starter.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct FaultReport {
    /// The faulting thread's space id.
    pub space: u8,
    /// The address it touched (for exceptions: its instruction pointer).
    pub addr: u64,
    /// Its instruction pointer.
    pub ip: u64,
    /// What kind of fault it was.
    pub kind: FaultKind,
}

impl FaultReport {
    /// The report as four message words.
    pub fn to_words(self) -> [Word; 4] {
        [self.space as Word, self.addr, self.ip, self.kind as Word]
    }

    /// Reads a report from four message words.
    pub fn from_words(words: [Word; 4]) -> Option<FaultReport> {
        let kind = *FaultKind::ALL.get(words[3] as usize)?;
        Some(FaultReport { space: u8::try_from(words[0]).ok()?, addr: words[1], ip: words[2], kind })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn start_arguments_round_trip() {
        let start = ServerStart { untypeds: 4, untyped_bits: 24, first_free_slot: 20 };
        assert_eq!(ServerStart::from_args(start.to_args()), start);
    }

    #[test]
    fn fault_reports_round_trip_and_reject_bad_words() {
        for kind in FaultKind::ALL {
            let r = FaultReport { space: 7, addr: 0x7000_0000_1000, ip: 0x201234, kind };
            assert_eq!(FaultReport::from_words(r.to_words()), Some(r));
        }
        assert_eq!(FaultReport::from_words([0, 0, 0, 4]), None);
        assert_eq!(FaultReport::from_words([256, 0, 0, 0]), None);
    }
}
