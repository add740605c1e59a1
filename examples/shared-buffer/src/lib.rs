//! What the writer and the reader agree on: the buffers' sizes, the bytes
//! they hold, and the messages they exchange over their shared endpoint
//! `pipe` (slot `boot_contract::slot::endpoint(0)`).
//!
//! For each of its [`BUFFERS`] buffers (vmalloced memory, then its own
//! frames vmapped), the writer calls `pipe` with [`SHARE`] and three words: the buffer's
//! address, its length and the pattern's seed; the reader answers with
//! [`CHECKED`] and one word, the number of bytes that differed from the
//! pattern (0 when the reader saw exactly what the writer wrote).
#![no_std]

/// Bytes of the vmalloced buffer: 64 KiB, sixteen pages.
pub const BUFFER_BYTES: u64 = 64 << 10;
/// The writer's own frames (`frames` in `system.toml`), vmapped as the
/// second buffer.
pub const FRAMES: u32 = 4;
/// Buffers the writer shares: the vmalloced one, then its frames.
pub const BUFFERS: usize = 2;
/// The label of the writer's message.
pub const SHARE: u64 = 1;
/// The label of the reader's answer.
pub const CHECKED: u64 = 2;

/// The byte at offset `i` of a buffer filled with `seed`.
pub fn pattern(seed: u64, i: u64) -> u8 {
    (seed.wrapping_mul(0x9e37_79b9_7f4a_7c15).wrapping_add(i.wrapping_mul(31)) >> 24) as u8
}

/// Failure codes of the verdicts (each program's own).
pub mod code {
    /// `MemClient::connect` failed.
    pub const CONNECT: u64 = 1;
    /// `vmalloc` failed.
    pub const VMALLOC: u64 = 2;
    /// The reader's answer was not `CHECKED`.
    pub const ANSWER: u64 = 3;
    /// The reader saw other bytes.
    pub const MISMATCH: u64 = 4;
    /// `vfree` failed.
    pub const VFREE: u64 = 5;
    /// The writer's message was not `SHARE`.
    pub const MESSAGE: u64 = 6;
    /// The heap the launcher gave is not there or not writable.
    pub const HEAP: u64 = 7;
    /// `vmap_given` of the writer's frames failed.
    pub const VMAP: u64 = 8;
}
