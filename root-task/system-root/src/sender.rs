//! Who sent a message to the launcher's endpoint, by its badge: program
//! `i` sends its console lines and its verdict with `PROGRAM_BADGE_BASE +
//! i`; while it is not a
//! registered client, its thread's faults come from the kernel with
//! `FAULT_BADGE_BASE + i`; the memory server signals waiting fault reports
//! and the kernel sends the server's own faults with the bootstrap
//! contract's badges.

use memserver_protocol::bootstrap::badge;

/// Program `i`'s messages carry `PROGRAM_BADGE_BASE + i`.
pub const PROGRAM_BADGE_BASE: u64 = 0x4000;
/// Program `i`'s faults, while it is not a registered client, carry
/// `FAULT_BADGE_BASE + i`.
pub const FAULT_BADGE_BASE: u64 = 0x8000;
/// The most programs a system may have: each badge range holds them.
pub const MAX_PROGRAMS: usize = 0x4000;

// The ranges do not overlap each other or the contract's badges, and fit
// the 28 bits of an endpoint badge below a space's fault badges.
const _: () = assert!(PROGRAM_BADGE_BASE + MAX_PROGRAMS as u64 <= FAULT_BADGE_BASE);
const _: () = assert!(FAULT_BADGE_BASE + MAX_PROGRAMS as u64 <= badge::SPACE_FAULT);
const _: () = assert!(badge::REPORT_NOTICE < PROGRAM_BADGE_BASE && badge::SERVER_FAULT < PROGRAM_BADGE_BASE);

/// Who sent a message.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Sender {
    /// The memory server: fault reports wait.
    ReportNotice,
    /// The kernel: the memory server faulted.
    ServerFault,
    /// Program `i`: a console line or its verdict.
    Program(usize),
    /// The kernel: program `i`'s thread faulted while it was not a
    /// registered client.
    Fault(usize),
    /// No one the launcher gave a badge to.
    Unknown(u64),
}

/// The badge of program `i`'s messages.
pub const fn program_badge(i: usize) -> u64 {
    PROGRAM_BADGE_BASE + i as u64
}

/// The badge of program `i`'s faults while it is not a registered client.
pub const fn fault_badge(i: usize) -> u64 {
    FAULT_BADGE_BASE + i as u64
}

/// Who sent a message with `badge`.
pub fn sender(badge: u64) -> Sender {
    let index = |base: u64| (base..base + MAX_PROGRAMS as u64).contains(&badge).then(|| (badge - base) as usize);
    match badge {
        badge::REPORT_NOTICE => Sender::ReportNotice,
        badge::SERVER_FAULT => Sender::ServerFault,
        _ => match (index(PROGRAM_BADGE_BASE), index(FAULT_BADGE_BASE)) {
            (Some(i), _) => Sender::Program(i),
            (_, Some(i)) => Sender::Fault(i),
            _ => Sender::Unknown(badge),
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_program_s_badges_name_it_and_nothing_else_does() {
        for i in [0, 1, 17, MAX_PROGRAMS - 1] {
            assert_eq!(sender(program_badge(i)), Sender::Program(i));
            assert_eq!(sender(fault_badge(i)), Sender::Fault(i));
        }
        assert_eq!(sender(badge::REPORT_NOTICE), Sender::ReportNotice);
        assert_eq!(sender(badge::SERVER_FAULT), Sender::ServerFault);
        for other in [0, badge::ADMIN, badge::CLIENT_BASE, fault_badge(MAX_PROGRAMS), badge::SPACE_FAULT | 3] {
            assert_eq!(sender(other), Sender::Unknown(other), "{other:#x}");
        }
    }
}
