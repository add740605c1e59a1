//! What the owner and the viewers agree on: the area's size, the canaries
//! in it, and the messages over their shared endpoint `pipe` (slot
//! `boot_contract::slot::endpoint(0)`).
//!
//! The owner vmallocs [`AREA`] bytes with large pages (one 1 GiB page)
//! and writes a canary at every [`STEP`] bytes and in the last word; then,
//! once per viewer, it calls `pipe` with [`SHARE`] and the area's address.
//! A viewer reads the canaries at that address in its own address space
//! and answers with [`CHECKED`] and the number that differed.
#![no_std]

/// Bytes of the area: 1 GiB, one 1 GiB page.
pub const AREA: u64 = 1 << 30;
/// Bytes between canaries: 2 MiB, so each 2 MiB of the page holds one.
pub const STEP: u64 = 2 << 20;
/// Viewers the owner shares the area with.
pub const VIEWERS: usize = 2;
/// The label of the owner's message.
pub const SHARE: u64 = 1;
/// The label of a viewer's answer.
pub const CHECKED: u64 = 2;

/// The offsets of the canaries in the area: every [`STEP`], and the last
/// word.
pub fn canary_offsets() -> impl Iterator<Item = u64> {
    (0..AREA).step_by(STEP as usize).chain(core::iter::once(AREA - 8))
}

/// The canary at `offset` of the area at `addr`.
pub fn canary(addr: u64, offset: u64) -> u64 {
    (addr + offset).wrapping_mul(0x9e37_79b9_7f4a_7c15) | 1
}

/// Failure codes of the verdicts (each program's own).
pub mod code {
    /// `MemClient::connect` failed.
    pub const CONNECT: u64 = 1;
    /// `vmalloc` failed.
    pub const VMALLOC: u64 = 2;
    /// The area is not mapped with a 1 GiB page.
    pub const NOT_HUGE: u64 = 3;
    /// A viewer's answer was not `CHECKED`.
    pub const ANSWER: u64 = 4;
    /// A viewer saw other canaries.
    pub const MISMATCH: u64 = 5;
    /// `vfree` failed.
    pub const VFREE: u64 = 6;
    /// The owner's message was not `SHARE`.
    pub const MESSAGE: u64 = 7;
}
