//! Staging message words for IPC: the first four in the CPU's message
//! registers (so short messages take the fastpath), the rest in the IPC
//! buffer; and reading a received message's words back the same way.

use super::abi::{size::MSG_MAX_LENGTH, Word, MSG_REGISTERS_IN_CPU};
use super::ipc_buffer;
use super::message_info::MessageInfo;
use super::syscall::{CpuMrs, SyscallResult};

/// Places `words` (at most `seL4_MsgMaxLength` of them: the rest is cut)
/// for a message with `label` and `caps` capabilities: words beyond the
/// fourth go to the IPC buffer; returns the tag and the register words.
pub fn stage(label: u64, words: &[Word], caps: u64) -> (MessageInfo, CpuMrs) {
    let words = words.get(..MSG_MAX_LENGTH).unwrap_or(words);
    let mut cpu = [0; MSG_REGISTERS_IN_CPU];
    for (i, &w) in words.iter().enumerate() {
        match cpu.get_mut(i) {
            Some(r) => *r = w,
            None => ipc_buffer::set_mr(i, w),
        }
    }
    (MessageInfo::new(label, 0, caps, words.len() as u64), cpu)
}

/// Word `i` of the message `result` received: one of the first four from
/// the registers, any other from the IPC buffer (0 past
/// `seL4_MsgMaxLength`, where no message has words).
pub fn word(result: &SyscallResult, i: usize) -> Word {
    match result.mrs.get(i) {
        Some(&w) => w,
        None if i < MSG_MAX_LENGTH => ipc_buffer::mr(i),
        None => 0,
    }
}
