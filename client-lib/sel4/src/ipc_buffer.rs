//! The calling thread's IPC buffer: message registers beyond the first
//! four, capabilities to transfer, and the receive slot.
//!
//! seL4 x86-64 loads each thread's GS base with its IPC buffer address on
//! every return to user mode, so every access here is GS-relative and
//! per-thread by construction. The buffer's `userData` word holds the
//! buffer's own address (set by [`init`]), as libsel4 does.

use super::abi::{ipc_layout, size, CPtr, Word};

/// Reads the word at byte `offset` of this thread's IPC buffer.
fn read(offset: usize) -> Word {
    let value: Word;
    // SAFETY: GS points at this thread's IPC buffer (the kernel sets it on
    // each return to user mode); every caller passes an in-bounds,
    // 8-aligned offset of the 1 KiB buffer.
    unsafe {
        core::arch::asm!("mov {v}, qword ptr gs:[{o}]", v = out(reg) value, o = in(reg) offset, options(nostack, readonly, preserves_flags))
    };
    value
}

/// Writes the word at byte `offset` of this thread's IPC buffer.
fn write(offset: usize, value: Word) {
    // SAFETY: as in `read`; the IPC buffer is this thread's own memory.
    unsafe {
        core::arch::asm!("mov qword ptr gs:[{o}], {v}", v = in(reg) value, o = in(reg) offset, options(nostack, preserves_flags))
    };
}

/// Records the IPC buffer's address in its `userData` word (once per
/// thread, at start-up).
pub fn init(buffer_address: Word) {
    write(ipc_layout::USER_DATA, buffer_address);
}

/// Message register `i` (`i < seL4_MsgMaxLength`).
pub fn mr(i: usize) -> Word {
    assert!(i < size::MSG_MAX_LENGTH, "message register {i} out of range");
    read(ipc_layout::MSG + 8 * i)
}

/// Sets message register `i` (`i < seL4_MsgMaxLength`).
pub fn set_mr(i: usize, value: Word) {
    assert!(i < size::MSG_MAX_LENGTH, "message register {i} out of range");
    write(ipc_layout::MSG + 8 * i, value);
}

/// Capability (or received badge) `i` of the message.
pub fn cap_or_badge(i: usize) -> Word {
    assert!(i < size::MSG_MAX_EXTRA_CAPS, "extra cap {i} out of range");
    read(ipc_layout::CAPS_OR_BADGES + 8 * i)
}

/// Sets the capability `i` to transfer with the next message.
pub fn set_cap(i: usize, cap: CPtr) {
    assert!(i < size::MSG_MAX_EXTRA_CAPS, "extra cap {i} out of range");
    write(ipc_layout::CAPS_OR_BADGES + 8 * i, cap);
}

/// Where a capability received with the next message is stored: slot
/// `index` at `depth` bits in the CNode `cnode` (0, 0, 0 to receive none).
pub fn set_receive_path(cnode: CPtr, index: CPtr, depth: Word) {
    write(ipc_layout::RECEIVE_CNODE, cnode);
    write(ipc_layout::RECEIVE_INDEX, index);
    write(ipc_layout::RECEIVE_DEPTH, depth);
}
